/* test_config.c -- loading the YAML config: values, defaults, errors, and
 * the index that finds job types and pipelines by name. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "drover/buf.h"
#include "drover/common.h"
#include "drover/config.h"
#include "drover/redis.h"
#include "drover/error.h"
#include "drover/tz.h"

#include "../../pkg/config/config_int.h"

/* The name every string config is loaded as. */
#define NAME "drover.yaml"

/* The complete example of doc/configuration.md (keep the two in step),
 * with the job types its pipeline names. */
static const char example[] =
    "redis:\n"
    "  url: redis://127.0.0.1:6379/0    # or unix:///path/redis.sock\n"
    "  prefix: drover\n"
    "worker:\n"
    "  concurrency: 64          # jobs running at once in this process\n"
    "  batch: 32                # most jobs fetched in one round trip\n"
    "  threads: 4               # thread pool for blocking jobs\n"
    "  shutdown_timeout: 30s\n"
    "  visibility_timeout: 5m\n"
    "  max_deliveries: 5\n"
    "  max_job_bytes: 16MiB\n"
    "  metrics: 127.0.0.1:9464  # optional HTTP /metrics and /healthz\n"
    "queues: [default, low]     # order = priority\n"
    "jobs:\n"
    "  resize:\n"
    "    handler: exec\n"
    "    command: [convert, \"{path}\", -resize, \"{width}\", "
    "\"{path}.out.png\"]\n"
    "    timeout: 30s           # per attempt\n"
    "    retries: 5             # retries after the first attempt\n"
    "    backoff: 1s            # base of exponential backoff\n"
    "    backoff_max: 10m\n"
    "    concurrency: 4         # most of this type running at once\n"
    "    result_ttl: 24h        # keep P:{Q}:result:ID (0 = keep none)\n"
    "    env: {MAGICK_THREAD_LIMIT: \"1\"}   # exec only\n"
    "    cwd: /srv/images       # exec only\n"
    "    output_max: 1MiB       # exec only: stdout kept as the result\n"
    "    kill_grace: 5s         # exec only: SIGTERM -> SIGKILL\n"
    "  crunch:\n"
    "    handler: plugin\n"
    "    library: ./plugins/libcrunch.so\n"
    "    symbol: crunch\n"
    "    blocking: true         # runs on the thread pool\n"
    "  upload:\n"
    "    handler: http\n"
    "    method: PUT\n"
    "    url: \"https://store.test/put?path={path}\"\n"
    "    headers: {Authorization: \"Bearer {token}\", X-Req: \"1\"}\n"
    "    body: \"{input}\"\n"
    "    output_max: 64KiB\n"
    "  notify: {handler: echo}\n"
    "  cleanup: {handler: noop}\n"
    "pipelines:\n"
    "  thumbnail:\n"
    "    steps:\n"
    "      - resize\n"
    "      - parallel: [upload, notify]   # all must succeed\n"
    "      - cleanup\n"
    "    retries: 1\n"
    "    timeout: 2m\n";

/* ------------------------------------------------------------ helpers */

/* Load text, which must be valid; the caller frees the config. */
static struct drv_config *
load_ok(const char *text)
{
    struct drv_config_errors errs;
    struct drv_config *cfg = NULL;
    int rc;

    drv_config_errors_init(&errs);
    rc = drv_config_load_string(NAME, text, strlen(text), &cfg, &errs);
    if (rc != 0) {
        drv_config_errors_print(&errs, stderr);
        drv_config_errors_fini(&errs);
        fail_msg("load failed: %d (%s)", rc, drv_strerror(rc));
    }
    assert_int_equal(errs.n, 0);
    assert_non_null(cfg);
    drv_config_errors_fini(&errs);
    return cfg;
}

/*
 * Load text, which must be invalid, and compare every error text, one a
 * line, with want.
 */
static void
expect_errors(const char *text, const char *want)
{
    struct drv_config_errors errs;
    struct drv_config *cfg = NULL;
    struct drv_buf got;
    size_t i;
    int rc;

    drv_config_errors_init(&errs);
    drv_buf_init(&got);
    rc = drv_config_load_string(NAME, text, strlen(text), &cfg, &errs);
    assert_int_equal(rc, DRV_ECONFIG);
    assert_null(cfg);
    for (i = 0; i < errs.n; i++) {
        drv_buf_adds(&got, errs.v[i].text);
        drv_buf_adds(&got, "\n");
    }
    assert_string_equal(got.data ? got.data : "", want);
    drv_buf_fini(&got);
    drv_config_errors_fini(&errs);
}

/* ------------------------------------------------------- valid configs */

static void
test_config_example_loads(void **state)
{
    struct drv_config *cfg = load_ok(example);
    const struct drv_config_job *j = NULL;
    const struct drv_config_pipeline *p = NULL;

    (void)state;
    assert_string_equal(cfg->file, NAME);
    assert_string_equal(cfg->redis.url, "redis://127.0.0.1:6379/0");
    assert_string_equal(cfg->redis.prefix, "drover");
    assert_int_equal(cfg->worker.concurrency, 64);
    assert_int_equal(cfg->worker.batch, 32);
    assert_int_equal(cfg->worker.threads, 4);
    assert_int_equal(cfg->worker.shutdown_timeout_ms, 30000);
    assert_int_equal(cfg->worker.visibility_timeout_ms, 300000);
    assert_int_equal(cfg->worker.max_deliveries, 5);
    assert_int_equal(cfg->worker.max_job_bytes, 16 * 1024 * 1024);
    assert_string_equal(cfg->worker.metrics, "127.0.0.1:9464");
    assert_int_equal(cfg->nqueues, 2);
    assert_string_equal(cfg->queues[0], "default");
    assert_string_equal(cfg->queues[1], "low");
    assert_null(cfg->queues[2]);
    assert_int_equal(cfg->njobs, 5);
    assert_int_equal(cfg->npipelines, 1);

    j = drv_config_job(cfg, "resize");
    assert_non_null(j);
    assert_ptr_equal(j, cfg->jobs[0]);
    assert_string_equal(j->name, "resize");
    assert_int_equal(j->handler, DRV_HKIND_EXEC);
    assert_int_equal(j->exec.ncommand, 5);
    assert_string_equal(j->exec.command[0], "convert");
    assert_string_equal(j->exec.command[1], "{path}");
    assert_string_equal(j->exec.command[4], "{path}.out.png");
    assert_null(j->exec.command[5]);
    assert_int_equal(j->policy.timeout_ms, 30000);
    assert_int_equal(j->policy.retries, 5);
    assert_int_equal(j->policy.backoff_ms, 1000);
    assert_int_equal(j->policy.backoff_max_ms, 600000);
    assert_int_equal(j->concurrency, 4);
    assert_int_equal(j->policy.result_ttl_ms, 24 * 3600 * 1000);
    assert_int_equal(j->exec.nenv, 1);
    assert_string_equal(j->exec.env[0].key, "MAGICK_THREAD_LIMIT");
    assert_string_equal(j->exec.env[0].value, "1");
    assert_string_equal(j->exec.cwd, "/srv/images");
    assert_int_equal(j->output_max, 1024 * 1024);
    assert_int_equal(j->exec.kill_grace_ms, 5000);
    assert_false(j->blocking);

    j = drv_config_job(cfg, "crunch");
    assert_non_null(j);
    assert_int_equal(j->handler, DRV_HKIND_PLUGIN);
    assert_string_equal(j->plugin.library, "./plugins/libcrunch.so");
    assert_string_equal(j->plugin.symbol, "crunch");
    assert_true(j->blocking);

    j = drv_config_job(cfg, "upload");
    assert_non_null(j);
    assert_int_equal(j->handler, DRV_HKIND_HTTP);
    assert_string_equal(j->http.method, "PUT");
    assert_string_equal(j->http.url, "https://store.test/put?path={path}");
    assert_int_equal(j->http.nheaders, 2);
    assert_string_equal(j->http.headers[0].key, "Authorization");
    assert_string_equal(j->http.headers[0].value, "Bearer {token}");
    assert_string_equal(j->http.headers[1].key, "X-Req");
    assert_string_equal(j->http.body, "{input}");
    assert_int_equal(j->output_max, 65536);

    assert_null(drv_config_job(cfg, "thumbnail"));
    assert_null(drv_config_pipeline(cfg, "resize"));
    p = drv_config_pipeline(cfg, "thumbnail");
    assert_non_null(p);
    assert_string_equal(p->name, "thumbnail");
    assert_int_equal(p->nsteps, 3);
    assert_false(p->steps[0].parallel);
    assert_int_equal(p->steps[0].njobs, 1);
    assert_ptr_equal(p->steps[0].jobs[0], drv_config_job(cfg, "resize"));
    assert_true(p->steps[1].parallel);
    assert_int_equal(p->steps[1].njobs, 2);
    assert_string_equal(p->steps[1].jobs[0]->name, "upload");
    assert_string_equal(p->steps[1].jobs[1]->name, "notify");
    assert_false(p->steps[2].parallel);
    assert_string_equal(p->steps[2].jobs[0]->name, "cleanup");
    assert_int_equal(p->policy.retries, 1);
    assert_int_equal(p->policy.timeout_ms, 120000);
    assert_int_equal(p->policy.backoff_ms, 1000);
    assert_int_equal(p->policy.backoff_max_ms, 3600000);
    assert_int_equal(p->policy.result_ttl_ms, 0);

    drv_config_free(cfg);
}

static void
test_config_defaults(void **state)
{
    struct drv_config *cfg = load_ok("# nothing but a comment\n");
    const struct drv_config_job *j = NULL;

    (void)state;
    assert_string_equal(cfg->redis.url, DRV_CONFIG_REDIS_URL);
    assert_string_equal(cfg->redis.url, "redis://127.0.0.1:6379/0");
    assert_string_equal(cfg->redis.prefix, "drover");
    assert_int_equal(cfg->worker.concurrency, 64);
    assert_int_equal(cfg->worker.batch, 32);
    assert_int_equal(cfg->worker.threads, 4);
    assert_int_equal(cfg->worker.shutdown_timeout_ms, 30000);
    assert_int_equal(cfg->worker.visibility_timeout_ms, 300000);
    assert_int_equal(cfg->worker.max_deliveries, 5);
    assert_int_equal(cfg->worker.max_job_bytes, 16777216);
    assert_int_equal(cfg->worker.dead_max, 10000);
    assert_true(cfg->worker.dead_max_age_ms == 180LL * 86400 * 1000);
    assert_int_equal(cfg->worker.http_idle_timeout_ms, 118000);
    assert_null(cfg->worker.metrics);
    assert_int_equal(cfg->nqueues, 1);
    assert_string_equal(cfg->queues[0], "default");
    assert_int_equal(cfg->njobs, 0);
    assert_int_equal(cfg->npipelines, 0);
    drv_config_free(cfg);

    cfg = load_ok("redis: {prefix: app}\n"
                  "worker:\n"
                  "  batch: 8\n"
                  "queues:\n"
                  "jobs:\n"
                  "  e: {handler: exec, command: [true]}\n"
                  "  h: {handler: http, url: \"http://x.test/\"}\n"
                  "  b: {handler: block}\n"
                  "pipelines:\n"
                  "  p: {steps: [e, b]}\n");
    assert_string_equal(cfg->redis.url, "redis://127.0.0.1:6379/0");
    assert_string_equal(cfg->redis.prefix, "app");
    assert_int_equal(cfg->worker.batch, 8);
    assert_int_equal(cfg->worker.concurrency, 64);
    assert_int_equal(cfg->nqueues, 1);

    j = drv_config_job(cfg, "e");
    assert_int_equal(j->policy.timeout_ms, 30 * 60 * 1000);
    assert_int_equal(j->policy.retries, 3);
    assert_int_equal(j->policy.backoff_ms, 1000);
    assert_int_equal(j->policy.backoff_max_ms, 3600 * 1000);
    assert_int_equal(j->concurrency, 0);
    assert_int_equal(j->policy.result_ttl_ms, 0);
    assert_false(j->blocking);
    assert_int_equal(j->output_max, 1048576);
    assert_int_equal(j->exec.kill_grace_ms, 5000);
    assert_int_equal(j->exec.nenv, 0);
    assert_null(j->exec.env);
    assert_null(j->exec.cwd);

    j = drv_config_job(cfg, "h");
    assert_string_equal(j->http.method, "GET");
    assert_null(j->http.body);
    assert_int_equal(j->http.nheaders, 0);

    j = drv_config_job(cfg, "b");
    assert_true(j->blocking);      /* block always runs on the pool */

    assert_int_equal(drv_config_pipeline(cfg, "p")->policy.retries, 3);
    assert_int_equal(drv_config_pipeline(cfg, "p")->policy.timeout_ms, 1800000);
    assert_int_equal(drv_config_pipeline(cfg, "p")->policy.backoff_ms, 1000);
    assert_int_equal(drv_config_pipeline(cfg, "p")->policy.backoff_max_ms,
                     3600000);
    assert_int_equal(drv_config_pipeline(cfg, "p")->policy.result_ttl_ms, 0);
    drv_config_free(cfg);
}

static void
test_config_value_forms(void **state)
{
    struct drv_config *cfg = NULL;
    const struct drv_config_job *j = NULL;

    (void)state;
    cfg = load_ok("redis: {url: \"unix:///run/redis.sock\"}\n"
                  "worker: {shutdown_timeout: 7, visibility_timeout: 250ms,"
                  " max_job_bytes: 512}\n"
                  "jobs:\n"
                  "  a:\n"
                  "    handler: plugin\n"
                  "    library: x.so\n"
                  "    symbol: y\n"
                  "    blocking: false\n"
                  "    retries: 0\n"
                  "    timeout: 1d\n"
                  "    result_ttl: 0\n"
                  "  b: &simple {handler: echo, retries: \"2\"}\n"
                  "  c: *simple\n");
    assert_string_equal(cfg->redis.url, "unix:///run/redis.sock");
    assert_int_equal(cfg->worker.shutdown_timeout_ms, 7000);
    assert_int_equal(cfg->worker.visibility_timeout_ms, 250);
    assert_int_equal(cfg->worker.max_job_bytes, 512);
    j = drv_config_job(cfg, "a");
    assert_false(j->blocking);
    assert_int_equal(j->policy.retries, 0);
    assert_int_equal(j->policy.timeout_ms, 86400000);
    assert_string_equal(drv_hkind_name(j->handler), "plugin");
    /* an alias is a copy of its anchor's value; quoted numbers count */
    assert_int_equal(drv_config_job(cfg, "c")->handler, DRV_HKIND_ECHO);
    assert_int_equal(drv_config_job(cfg, "c")->policy.retries, 2);
    assert_string_equal(drv_config_job(cfg, "c")->name, "c");
    drv_config_free(cfg);
}

static void
test_config_demo_file_loads(void **state)
{
    struct drv_config_errors errs;
    struct drv_config *cfg = NULL;
    const struct drv_config_job *j = NULL;
    int rc;

    (void)state;
    drv_config_errors_init(&errs);
    rc = drv_config_load("config/drover.yaml", &cfg, &errs);
    if (rc != 0)
        drv_config_errors_print(&errs, stderr);
    assert_int_equal(rc, 0);
    assert_int_equal(errs.n, 0);
    assert_int_equal(cfg->nqueues, 2);
    assert_string_equal(cfg->queues[0], "default");
    assert_string_equal(cfg->queues[1], "low");
    assert_string_equal(cfg->redis.url, "redis://127.0.0.1:6379/0");
    assert_int_equal(drv_config_job(cfg, "demo-echo")->handler,
                     DRV_HKIND_ECHO);
    assert_int_equal(drv_config_job(cfg, "demo-sleep")->handler,
                     DRV_HKIND_SLEEP);
    assert_int_equal(drv_config_job(cfg, "demo-block")->handler,
                     DRV_HKIND_BLOCK);
    assert_int_equal(drv_config_job(cfg, "demo-fail")->handler,
                     DRV_HKIND_FAIL);
    j = drv_config_job(cfg, "demo-exec");
    assert_int_equal(j->handler, DRV_HKIND_EXEC);
    assert_int_equal(j->exec.ncommand, 2);
    assert_string_equal(j->exec.command[0], "echo");
    assert_string_equal(j->exec.command[1], "hello {name}");
    assert_int_equal(drv_config_job(cfg, "demo-echo")->policy.result_ttl_ms,
                     3600000);
    drv_config_free(cfg);
    drv_config_errors_fini(&errs);
}

/* -------------------------------------------------------------- errors */

static void
test_config_missing_file(void **state)
{
    struct drv_config_errors errs;
    struct drv_config *cfg = NULL;
    int rc;

    (void)state;
    drv_config_errors_init(&errs);
    rc = drv_config_load("no/such/drover.yaml", &cfg, &errs);
    assert_int_equal(rc, -ENOENT);
    assert_null(cfg);
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.v[0].text, "no/such/drover.yaml: cannot read: "
                                        "No such file or directory");
    assert_int_equal(errs.v[0].line, 0);
    drv_config_errors_fini(&errs);

    /* without an error list the code still says what happened */
    rc = drv_config_load("no/such/drover.yaml", &cfg, NULL);
    assert_int_equal(rc, -ENOENT);
    assert_null(cfg);
}

static void
test_config_syntax_error(void **state)
{
    struct drv_config_errors errs;
    struct drv_config *cfg = NULL;
    static const char text[] = "jobs:\n"
                               "  a:\n"
                               "    handler: noop\n"
                               "   bad: 1\n";
    int rc;

    (void)state;
    expect_errors(text,
                  NAME ":4:4: YAML syntax error: did not find expected key "
                  "(while parsing a block mapping at line 2, column 3)\n");
    expect_errors("queues: [a, b\n",
                  NAME ":2:1: YAML syntax error: did not find expected ',' "
                  "or ']' (while parsing a flow sequence at line 1, "
                  "column 9)\n");
    expect_errors("worker:\n\tbatch: 1\n",
                  NAME ":2:1: YAML syntax error: found character that "
                  "cannot start any token (while scanning for the next "
                  "token at line 2, column 1)\n");

    drv_config_errors_init(&errs);
    rc = drv_config_load_string(NAME, text, strlen(text), &cfg, &errs);
    assert_int_equal(rc, DRV_ECONFIG);
    assert_int_equal(errs.n, 1);
    assert_int_equal(errs.v[0].line, 4);
    assert_int_equal(errs.v[0].col, 4);
    assert_string_equal(errs.v[0].path, "");
    drv_config_errors_fini(&errs);
}

static void
test_config_bad_encoding(void **state)
{
    (void)state;
    expect_errors("redis:\n  url: \"ab\xff\"\n",
                  NAME ":2:11: YAML syntax error: invalid leading UTF-8 "
                  "octet\n");
}

static void
test_config_unknown_key(void **state)
{
    (void)state;
    expect_errors("redis:\n"
                  "  host: x\n"
                  "workers: {}\n"
                  "jobs:\n"
                  "  a:\n"
                  "    handler: echo\n"
                  "    timout: 1s\n"
                  "pipelines:\n"
                  "  p: {steps: [a], stepz: 1}\n",
                  NAME ":2:3: redis.host: unknown key (valid: url, prefix, "
                  "sentinel, cluster, tls)\n"
                  NAME ":3:1: workers: unknown key (valid: redis, worker, "
                  "queues, jobs, pipelines, schedules)\n"
                  NAME ":7:5: jobs.a.timout: unknown key (valid: handler, "
                  "timeout, retries, backoff, backoff_max, result_ttl, "
                  "concurrency, unique_for, rate, global_concurrency, "
                  "limit_key)\n"
                  NAME ":9:19: pipelines.p.stepz: unknown key (valid: steps, "
                  "graph, timeout, retries, backoff, backoff_max, "
                  "result_ttl)\n");
}

static void
test_config_duplicate_key(void **state)
{
    (void)state;
    expect_errors("worker:\n"
                  "  batch: 1\n"
                  "  batch: 2\n",
                  NAME ":3:3: worker.batch: duplicate key (first at line "
                  "2)\n");
}

static void
test_config_wrong_type(void **state)
{
    (void)state;
    expect_errors("redis:\n"
                  "  url: {a: b}\n"
                  "worker:\n"
                  "  concurrency: many\n"
                  "  threads: 2.5\n"
                  "  batch: [1]\n"
                  "  max_deliveries: 99999999999\n"
                  "queues: default\n"
                  "jobs: [a]\n",
                  NAME ":2:8: redis.url: expected a string, got a mapping\n"
                  NAME ":4:16: worker.concurrency: \"many\" is not an "
                  "integer\n"
                  NAME ":5:12: worker.threads: \"2.5\" is not an integer\n"
                  NAME ":6:10: worker.batch: expected an integer, got a "
                  "sequence\n"
                  NAME ":7:19: worker.max_deliveries: \"99999999999\" is out "
                  "of range (at most 2147483647)\n"
                  NAME ":8:9: queues: expected a sequence (by priority) or a "
                  "mapping (queue: weight), got \"default\"\n"
                  NAME ":9:7: jobs: expected a mapping, got a sequence\n");
    expect_errors("jobs:\n"
                  "  a: echo\n"
                  "  b:\n"
                  "    handler: exec\n"
                  "    command: convert\n"
                  "    timeout:\n"
                  "    env: {A: [1]}\n",
                  NAME ":2:6: jobs.a: expected a mapping, got \"echo\"\n"
                  NAME ":5:14: jobs.b.command: expected a sequence, got "
                  "\"convert\"\n"
                  NAME ":6:13: jobs.b.timeout: expected a duration, got "
                  "null\n"
                  NAME ":7:14: jobs.b.env.A: expected a string, got a "
                  "sequence\n");
}

static void
test_config_bad_duration(void **state)
{
    (void)state;
    expect_errors("jobs:\n"
                  "  resize:\n"
                  "    handler: exec\n"
                  "    command: [convert]\n"
                  "    retries: 5\n"
                  "    backoff: 1s\n"
                  "    timeout:     30x\n"
                  "    backoff_max: -1s\n"
                  "    kill_grace: 99999999999999999999d\n",
                  NAME ":7:18: jobs.resize.timeout: \"30x\" is not a duration "
                  "(use 250ms, 30s, 5m, 1h)\n"
                  NAME ":8:18: jobs.resize.backoff_max: \"-1s\" is not a "
                  "duration (use 250ms, 30s, 5m, 1h)\n"
                  NAME ":9:17: jobs.resize.kill_grace: "
                  "\"99999999999999999999d\" is too large\n");
}

static void
test_config_bad_size(void **state)
{
    (void)state;
    expect_errors("worker:\n"
                  "  max_job_bytes: 16MB!\n"
                  "jobs:\n"
                  "  e: {handler: exec, command: [x], output_max: lots}\n",
                  NAME ":2:18: worker.max_job_bytes: \"16MB!\" is not a size "
                  "(use 512, 64KiB, 16MiB, 1GiB)\n"
                  NAME ":4:48: jobs.e.output_max: \"lots\" is not a size "
                  "(use 512, 64KiB, 16MiB, 1GiB)\n");
}

static void
test_config_bad_bool(void **state)
{
    (void)state;
    expect_errors("jobs:\n"
                  "  p:\n"
                  "    handler: plugin\n"
                  "    library: x.so\n"
                  "    symbol: y\n"
                  "    blocking: yes\n",
                  NAME ":6:15: jobs.p.blocking: \"yes\" is not a boolean "
                  "(use true or false)\n");
}

static void
test_config_not_positive(void **state)
{
    (void)state;
    expect_errors("worker:\n"
                  "  concurrency: 0\n"
                  "  batch: -1\n"
                  "  threads: 0\n"
                  "  shutdown_timeout: 0s\n"
                  "  visibility_timeout: 0\n"
                  "  max_deliveries: 0\n"
                  "  max_job_bytes: 0MiB\n"
                  "jobs:\n"
                  "  a:\n"
                  "    handler: noop\n"
                  "    concurrency: 0\n"
                  "    timeout: 0ms\n"
                  "    retries: -1\n",
                  NAME ":2:16: worker.concurrency: must be greater than 0\n"
                  NAME ":3:10: worker.batch: must be greater than 0\n"
                  NAME ":4:12: worker.threads: must be greater than 0\n"
                  NAME ":5:21: worker.shutdown_timeout: must be greater "
                  "than 0\n"
                  NAME ":6:23: worker.visibility_timeout: must be greater "
                  "than 0\n"
                  NAME ":7:19: worker.max_deliveries: must be greater than "
                  "0\n"
                  NAME ":8:18: worker.max_job_bytes: must be greater than "
                  "0\n"
                  NAME ":12:18: jobs.a.concurrency: must be greater than 0\n"
                  NAME ":13:14: jobs.a.timeout: must be greater than 0\n"
                  NAME ":14:14: jobs.a.retries: must not be negative\n");
}

/* unique_for, rate, global_concurrency, limit_key: read, then bad. */
static void
test_config_admission(void **state)
{
    struct drv_config *cfg = load_ok("jobs:\n"
                                     "  a:\n"
                                     "    handler: noop\n"
                                     "    unique_for: 1h\n"
                                     "    rate: 20/s\n"
                                     "    global_concurrency: 4\n"
                                     "    limit_key: \"{tenant}\"\n"
                                     "  b: {handler: noop, rate: 7/m}\n"
                                     "  c: {handler: noop, rate: 1/h}\n"
                                     "  d: {handler: noop}\n");
    const struct drv_config_job *j;

    (void)state;
    j = drv_config_job(cfg, "a");
    assert_true(j->unique_for_ms == 3600000);
    assert_int_equal(j->rate_n, 20);
    assert_true(j->rate_period_ms == 1000);
    assert_int_equal(j->global_concurrency, 4);
    assert_string_equal(j->limit_field, "tenant");
    j = drv_config_job(cfg, "b");
    assert_int_equal(j->rate_n, 7);
    assert_true(j->rate_period_ms == 60000);
    j = drv_config_job(cfg, "c");
    assert_true(j->rate_period_ms == 3600000);
    j = drv_config_job(cfg, "d");
    assert_true(j->unique_for_ms == 0);
    assert_int_equal(j->rate_n, 0);
    assert_int_equal(j->global_concurrency, 0);
    assert_null(j->limit_field);
    drv_config_free(cfg);

    expect_errors("jobs:\n"
                  "  a:\n"
                  "    handler: noop\n"
                  "    unique_for: 0s\n"
                  "    rate: 20/d\n"
                  "    global_concurrency: 0\n"
                  "    limit_key: tenant\n"
                  "  b: {handler: noop, rate: 0/s, limit_key: \"{a}{b}\"}\n"
                  "  c: {handler: noop, rate: x/s, limit_key: \"{}\"}\n"
                  "  d: {handler: noop, limit_key: \"{t}\"}\n",
                  NAME ":4:17: jobs.a.unique_for: must be greater than 0\n"
                  NAME ":5:11: jobs.a.rate: \"20/d\" is not a rate (use "
                  "N/s, N/m or N/h, N from 1 to 1000000)\n"
                  NAME ":6:25: jobs.a.global_concurrency: must be greater "
                  "than 0\n"
                  NAME ":7:16: jobs.a.limit_key: must name one job field, "
                  "written {FIELD}\n"
                  NAME ":8:28: jobs.b.rate: \"0/s\" is not a rate (use "
                  "N/s, N/m or N/h, N from 1 to 1000000)\n"
                  NAME ":8:44: jobs.b.limit_key: must name one job field, "
                  "written {FIELD}\n"
                  NAME ":9:28: jobs.c.rate: \"x/s\" is not a rate (use "
                  "N/s, N/m or N/h, N from 1 to 1000000)\n"
                  NAME ":9:44: jobs.c.limit_key: must name one job field, "
                  "written {FIELD}\n"
                  NAME ":10:33: jobs.d.limit_key: needs rate or "
                  "global_concurrency\n");
}

/* worker.dead_max and worker.dead_max_age: set, then every bad form. */
static void
test_config_dead_bounds(void **state)
{
    struct drv_config *cfg = load_ok("worker:\n"
                                     "  dead_max: 1000\n"
                                     "  dead_max_age: 7d\n");

    (void)state;
    assert_int_equal(cfg->worker.dead_max, 1000);
    assert_true(cfg->worker.dead_max_age_ms == 7LL * 86400 * 1000);
    drv_config_free(cfg);
    expect_errors("worker:\n"
                  "  dead_max: 0\n"
                  "  dead_max_age: 0s\n",
                  NAME ":2:13: worker.dead_max: must be greater than 0\n"
                  NAME ":3:17: worker.dead_max_age: must be greater than "
                  "0\n");
    expect_errors("worker:\n"
                  "  dead_max: lots\n"
                  "  dead_max_age: 6mo\n",
                  NAME ":2:13: worker.dead_max: \"lots\" is not an integer\n"
                  NAME ":3:17: worker.dead_max_age: \"6mo\" is not a "
                  "duration (use 250ms, 30s, 5m, 1h)\n");
    expect_errors("worker:\n"
                  "  dead_max: -5\n"
                  "  dead_max_age: [180d]\n",
                  NAME ":2:13: worker.dead_max: must be greater than 0\n"
                  NAME ":3:17: worker.dead_max_age: expected a duration, "
                  "got a sequence\n");
}

/* worker.http_idle_timeout: set, then bad forms. */
static void
test_config_http_idle_timeout(void **state)
{
    struct drv_config *cfg = load_ok("worker:\n"
                                     "  http_idle_timeout: 50s\n");

    (void)state;
    assert_int_equal(cfg->worker.http_idle_timeout_ms, 50000);
    drv_config_free(cfg);
    expect_errors("worker:\n"
                  "  http_idle_timeout: 0s\n",
                  NAME ":2:22: worker.http_idle_timeout: must be greater "
                  "than 0\n");
    expect_errors("worker:\n"
                  "  http_idle_timeout: soon\n",
                  NAME ":2:22: worker.http_idle_timeout: \"soon\" is not a "
                  "duration (use 250ms, 30s, 5m, 1h)\n");
}

static void
test_config_unknown_handler(void **state)
{
    (void)state;
    expect_errors("jobs:\n"
                  "  a:\n"
                  "    handler: shell\n"
                  "    command: [ls]\n"
                  "  b:\n"
                  "    handler: {x: 1}\n",
                  NAME ":3:14: jobs.a.handler: unknown handler \"shell\" "
                  "(use noop, echo, sleep, block, fail, exec, http, "
                  "plugin)\n"
                  NAME ":6:14: jobs.b.handler: expected a handler name, got "
                  "a mapping\n");
}

static void
test_config_missing_required_key(void **state)
{
    (void)state;
    expect_errors("jobs:\n"
                  "  resize:\n"
                  "    handler: exec\n"
                  "    timeout: 30s\n"
                  "  fetch: {handler: http, method: POST}\n"
                  "  crunch:\n"
                  "    handler: plugin\n"
                  "    symbol: crunch\n"
                  "  nothing:\n"
                  "    timeout: 1s\n"
                  "pipelines:\n"
                  "  p: {retries: 1}\n",
                  NAME ":2:3: jobs.resize: handler exec requires key "
                  "\"command\"\n"
                  NAME ":5:3: jobs.fetch: handler http requires key \"url\"\n"
                  NAME ":6:3: jobs.crunch: handler plugin requires key "
                  "\"library\"\n"
                  NAME ":9:3: jobs.nothing: missing required key "
                  "\"handler\"\n"
                  NAME ":12:3: pipelines.p: missing required key "
                  "\"steps\"\n");
}

static void
test_config_key_of_other_handler(void **state)
{
    (void)state;
    expect_errors("jobs:\n"
                  "  x:\n"
                  "    handler: echo\n"
                  "    command: [ls]\n"
                  "    output_max: 1KiB\n"
                  "  h:\n"
                  "    handler: http\n"
                  "    url: http://x.test/\n"
                  "    cwd: /tmp\n"
                  "    blocking: true\n"
                  "  e:\n"
                  "    handler: exec\n"
                  "    command: [ls]\n"
                  "    headers: {A: b}\n",
                  NAME ":4:5: jobs.x.command: key is only valid for handler "
                  "exec\n"
                  NAME ":5:5: jobs.x.output_max: key is only valid for "
                  "handlers exec and http\n"
                  NAME ":9:5: jobs.h.cwd: key is only valid for handler "
                  "exec\n"
                  NAME ":10:5: jobs.h.blocking: key is only valid for handler "
                  "plugin\n"
                  NAME ":14:5: jobs.e.headers: key is only valid for handler "
                  "http\n");
}

static void
test_config_exec_checks(void **state)
{
    (void)state;
    expect_errors("jobs:\n"
                  "  a:\n"
                  "    handler: exec\n"
                  "    command: []\n"
                  "    cwd: \"\"\n"
                  "    env: {\"A=B\": x, \"\": y}\n"
                  "  b:\n"
                  "    handler: exec\n"
                  "    command: [convert, [x], {y: 1}]\n",
                  NAME ":4:14: jobs.a.command: must not be an empty list\n"
                  NAME ":5:10: jobs.a.cwd: must not be empty\n"
                  NAME ":6:11: jobs.a.env.A=B: variable name must not contain "
                  "'='\n"
                  NAME ":6:21: jobs.a.env.\"\": variable name must not be "
                  "empty\n"
                  NAME ":9:24: jobs.b.command[1]: expected a string, got a "
                  "sequence\n"
                  NAME ":9:29: jobs.b.command[2]: expected a string, got a "
                  "mapping\n");
}

static void
test_config_bad_template(void **state)
{
    (void)state;
    expect_errors("jobs:\n"
                  "  resize:\n"
                  "    handler: exec\n"
                  "    command:\n"
                  "      - convert\n"
                  "      - \"{path\"\n"
                  "      - \"{{ok}} {w}}\"\n"
                  "      - \"{}\"\n"
                  "  fetch:\n"
                  "    handler: http\n"
                  "    url: \"https://x.test/{a{b}\"\n"
                  "    headers: {X-A: \"{t\"}\n"
                  "    body: \"}\"\n",
                  NAME ":6:9: jobs.resize.command[1]: bad template \"{path\": "
                  "unmatched '{' at byte 1\n"
                  NAME ":7:9: jobs.resize.command[2]: bad template "
                  "\"{{ok}} {w}}\": unmatched '}' at byte 11\n"
                  NAME ":8:9: jobs.resize.command[3]: bad template \"{}\": "
                  "empty field name at byte 1\n"
                  NAME ":11:10: jobs.fetch.url: bad template "
                  "\"https://x.test/{a{b}\": '{' inside a field name at byte "
                  "18\n"
                  NAME ":12:20: jobs.fetch.headers.X-A: bad template \"{t\": "
                  "unmatched '{' at byte 1\n"
                  NAME ":13:11: jobs.fetch.body: bad template \"}\": "
                  "unmatched '}' at byte 1\n");
}

static void
test_config_http_checks(void **state)
{
    (void)state;
    expect_errors("jobs:\n"
                  "  a:\n"
                  "    handler: http\n"
                  "    method: get\n"
                  "    url: \"ftp://x.test/{p}\"\n"
                  "    headers: {\"Bad Name\": x, Ok: \"a\\r\\nb\", \"\": y}\n",
                  NAME ":4:13: jobs.a.method: \"get\" is not an HTTP method "
                  "(use GET, POST, PUT, PATCH, DELETE, HEAD)\n"
                  NAME ":5:10: jobs.a.url: must start with http:// or "
                  "https://\n"
                  NAME ":6:15: jobs.a.headers.Bad Name: header name must be "
                  "a token (letters, digits, !#$%&'*+-.^_`|~)\n"
                  NAME ":6:34: jobs.a.headers.Ok: header value must not "
                  "contain a line break\n"
                  NAME ":6:44: jobs.a.headers.\"\": header name must not be "
                  "empty\n");
}

static void
test_config_undeclared_step(void **state)
{
    (void)state;
    expect_errors("pipelines:\n"
                  "  thumbnail:\n"
                  "    steps:\n"
                  "      - resize\n"
                  "      - parallel: [resize, upload]\n"
                  "jobs:\n"
                  "  resize: {handler: noop}\n",
                  NAME ":5:28: pipelines.thumbnail.steps[1].parallel[1]: job "
                  "type \"upload\" is not declared under jobs\n");
    expect_errors("jobs:\n"
                  "  a: {handler: noop}\n"
                  "pipelines:\n"
                  "  p:\n"
                  "    steps: [a, b, [a], {}]\n",
                  NAME ":5:16: pipelines.p.steps[1]: job type \"b\" is not "
                  "declared under jobs\n"
                  NAME ":5:19: pipelines.p.steps[2]: expected a job type "
                  "name or parallel: [...], got a sequence\n"
                  NAME ":5:24: pipelines.p.steps[3]: missing required key "
                  "\"parallel\"\n");
}

static void
test_config_empty_steps(void **state)
{
    (void)state;
    expect_errors("jobs: {a: {handler: noop}}\n"
                  "pipelines:\n"
                  "  p:\n"
                  "    steps: []\n"
                  "  q:\n"
                  "    steps:\n"
                  "      - parallel: []\n"
                  "      - parallel: a\n",
                  NAME ":4:12: pipelines.p.steps: must list at least one "
                  "step\n"
                  NAME ":7:19: pipelines.q.steps[0].parallel: must list at "
                  "least one job type\n"
                  NAME ":8:19: pipelines.q.steps[1].parallel: expected a "
                  "sequence, got \"a\"\n");
}

static void
test_config_nested_parallel(void **state)
{
    (void)state;
    expect_errors("jobs: {a: {handler: noop}, b: {handler: echo}}\n"
                  "pipelines:\n"
                  "  p:\n"
                  "    steps:\n"
                  "      - a\n"
                  "      - parallel: [a, {parallel: [b]}, b, a]\n",
                  NAME ":6:23: pipelines.p.steps[1].parallel[1]: parallel "
                  "steps cannot be nested\n"
                  NAME ":6:43: pipelines.p.steps[1].parallel[3]: job type "
                  "\"a\" is listed twice\n");
}

static void
test_config_queue_names(void **state)
{
    (void)state;
    expect_errors("queues: [default, low, \"\", \"a{b}\", low, \"}\"]\n",
                  NAME ":1:24: queues[2]: queue name must not be empty\n"
                  NAME ":1:28: queues[3]: queue name must not contain '{' or "
                  "'}'\n"
                  NAME ":1:36: queues[4]: duplicate queue \"low\"\n"
                  NAME ":1:41: queues[5]: queue name must not contain '{' or "
                  "'}'\n");
    expect_errors("queues: []\n",
                  NAME ":1:9: queues: must list at least one queue\n");
}

/* The map form of queues: weights in file order; the list form has
 * none. */
static void
test_config_queue_weights(void **state)
{
    struct drv_config *cfg;

    (void)state;
    cfg = load_ok("queues: {critical: 6, default: 3, low: 1}\n");
    assert_int_equal(cfg->nqueues, 3);
    assert_string_equal(cfg->queues[0], "critical");
    assert_string_equal(cfg->queues[1], "default");
    assert_string_equal(cfg->queues[2], "low");
    assert_null(cfg->queues[3]);
    assert_non_null(cfg->queue_weights);
    assert_int_equal(cfg->queue_weights[0], 6);
    assert_int_equal(cfg->queue_weights[1], 3);
    assert_int_equal(cfg->queue_weights[2], 1);
    drv_config_free(cfg);

    cfg = load_ok("queues:\n"
                  "  low: 1\n"
                  "  high: 2147483647\n");
    assert_int_equal(cfg->nqueues, 2);
    assert_string_equal(cfg->queues[0], "low");
    assert_int_equal(cfg->queue_weights[1], 2147483647);
    drv_config_free(cfg);

    cfg = load_ok("queues: [a, b]\n");
    assert_null(cfg->queue_weights);
    drv_config_free(cfg);
    cfg = load_ok("# defaults\n");
    assert_null(cfg->queue_weights);
    drv_config_free(cfg);
}

static void
test_config_queue_weight_errors(void **state)
{
    (void)state;
    expect_errors("queues:\n"
                  "  a: 0\n"
                  "  b: -2\n"
                  "  c: 1.5\n"
                  "  d: many\n"
                  "  e:\n"
                  "  f: [1]\n"
                  "  \"g{x}\": 1\n"
                  "  \"\": 1\n"
                  "  h: 99999999999\n"
                  "  a: 2\n",
                  NAME ":2:6: queues.a: must be greater than 0\n"
                  NAME ":3:6: queues.b: must be greater than 0\n"
                  NAME ":4:6: queues.c: \"1.5\" is not an integer\n"
                  NAME ":5:6: queues.d: \"many\" is not an integer\n"
                  NAME ":6:5: queues.e: expected an integer, got null\n"
                  NAME ":7:6: queues.f: expected an integer, got a "
                  "sequence\n"
                  NAME ":8:3: queues.g{x}: queue name must not contain '{' "
                  "or '}'\n"
                  NAME ":9:3: queues.\"\": queue name must not be empty\n"
                  NAME ":10:6: queues.h: \"99999999999\" is out of range "
                  "(at most 2147483647)\n"
                  NAME ":11:3: queues.a: duplicate key (first at line 2)\n");
    expect_errors("queues: {}\n",
                  NAME ":1:9: queues: must list at least one queue\n");
    expect_errors("queues: 3\n",
                  NAME ":1:9: queues: expected a sequence (by priority) or a "
                  "mapping (queue: weight), got \"3\"\n");
    /* a schedule's queue must be one of the map's */
    expect_errors("queues: {a: 1}\n"
                  "jobs: {r: {handler: noop}}\n"
                  "schedules:\n"
                  "  s: {every: 1m, job: r, queue: b}\n",
                  NAME ":4:33: schedules.s.queue: queue \"b\" is not listed "
                  "under queues\n");
}

static void
test_config_name_clash(void **state)
{
    (void)state;
    expect_errors("jobs:\n"
                  "  resize: {handler: noop}\n"
                  "pipelines:\n"
                  "  resize:\n"
                  "    steps: [resize]\n",
                  NAME ":4:3: pipelines.resize: name is already used by a "
                  "job type\n");
    /* the clashing pipeline is still declared: a schedule may name it, or
     * the job type, without a second error */
    expect_errors("jobs:\n"
                  "  resize: {handler: noop}\n"
                  "pipelines:\n"
                  "  resize:\n"
                  "    steps: [resize]\n"
                  "schedules:\n"
                  "  a: {every: 1m, pipeline: resize}\n"
                  "  b: {every: 1m, job: resize}\n",
                  NAME ":4:3: pipelines.resize: name is already used by a "
                  "job type\n");
}

static void
test_config_redis_checks(void **state)
{
    (void)state;
    expect_errors("redis:\n"
                  "  url: http://127.0.0.1:6379\n"
                  "  prefix: \"a{b\"\n"
                  "worker:\n"
                  "  metrics: 9464\n",
                  NAME ":2:8: redis.url: must start with redis://, "
                  "rediss:// or unix://\n"
                  NAME ":3:11: redis.prefix: must not contain '{' or '}'\n"
                  NAME ":5:12: worker.metrics: must be HOST:PORT, e.g. "
                  "127.0.0.1:9464\n");
}

static void
test_config_sentinel(void **state)
{
    struct drv_config *cfg = NULL;

    (void)state;
    /* no url: the default URL's host gives way to the sentinels */
    cfg = load_ok("redis:\n"
                  "  sentinel:\n"
                  "    master: mymaster\n"
                  "    addrs: [\"10.0.0.1:26379\", \"s2.example\", "
                  "\"[::1]:5000\"]\n");
    assert_string_equal(cfg->redis.url, "redis:///0");
    assert_string_equal(cfg->redis.sentinel.master, "mymaster");
    assert_int_equal(cfg->redis.sentinel.naddrs, 3);
    assert_string_equal(cfg->redis.sentinel.addrs[1], "s2.example");
    assert_null(cfg->redis.sentinel.addrs[3]);
    assert_null(cfg->redis.sentinel.user);
    drv_config_free(cfg);

    /* the url carries user and db only */
    cfg = load_ok("redis:\n"
                  "  url: redis://drover@/2\n"
                  "  sentinel: {master: m, addrs: [127.0.0.1], "
                  "user: watcher}\n");
    assert_string_equal(cfg->redis.url, "redis://drover@/2");
    assert_string_equal(cfg->redis.sentinel.user, "watcher");
    drv_config_free(cfg);

    /* a command-line URL without a host keeps the sentinels; with a host
     * it means that server */
    cfg = load_ok("redis: {sentinel: {master: m, addrs: [a]}}\n");
    drv_config_set_redis_url(cfg, "redis:///3");
    assert_string_equal(cfg->redis.url, "redis:///3");
    assert_string_equal(cfg->redis.sentinel.master, "m");
    drv_config_set_redis_url(cfg, "redis://10.0.0.2:6379/0");
    assert_string_equal(cfg->redis.url, "redis://10.0.0.2:6379/0");
    assert_null(cfg->redis.sentinel.master);
    assert_int_equal(cfg->redis.sentinel.naddrs, 0);
    drv_config_free(cfg);

    /* absent or null: no sentinel, the url as before */
    cfg = load_ok("redis: {url: redis://10.1.1.1:7000/0, sentinel: ~}\n");
    assert_null(cfg->redis.sentinel.master);
    assert_int_equal(cfg->redis.sentinel.naddrs, 0);
    drv_config_free(cfg);
}

static void
test_config_sentinel_example_loads(void **state)
{
    struct drv_config_errors errs;
    struct drv_config *cfg = NULL;
    int rc;

    (void)state;
    drv_config_errors_init(&errs);
    rc = drv_config_load("config/drover-sentinel.yaml", &cfg, &errs);
    if (rc != 0)
        drv_config_errors_print(&errs, stderr);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg->redis.url, "redis://drover@/0");
    assert_string_equal(cfg->redis.sentinel.master, "mymaster");
    assert_int_equal(cfg->redis.sentinel.naddrs, 3);
    drv_config_free(cfg);
    drv_config_errors_fini(&errs);
}

static void
test_config_sentinel_errors(void **state)
{
    (void)state;
    expect_errors("redis:\n"
                  "  url: redis://10.0.0.9:6379/0\n"
                  "  sentinel:\n"
                  "    master: m\n"
                  "    addrs: [\"10.0.0.1:0\", \"::1\", \"\", h:26379]\n",
                  NAME ":2:8: redis.url: with redis.sentinel the url names "
                  "no host (the sentinels give it): write redis:///DB or "
                  "redis://USER@/DB\n"
                  NAME ":5:13: redis.sentinel.addrs[0]: port must be "
                  "1..65535\n"
                  NAME ":5:27: redis.sentinel.addrs[1]: an IPv6 address "
                  "must be in brackets: [::1]:26379\n"
                  NAME ":5:34: redis.sentinel.addrs[2]: must not be "
                  "empty\n");
    expect_errors("redis:\n"
                  "  sentinel:\n"
                  "    addrs: []\n"
                  "    master: \"my master\"\n"
                  "    password: x\n",
                  NAME ":3:12: redis.sentinel.addrs: must not be an empty "
                  "list\n"
                  NAME ":4:13: redis.sentinel.master: must not contain "
                  "white space\n"
                  NAME ":5:5: redis.sentinel.password: unknown key (valid: "
                  "master, addrs, user)\n");
    expect_errors("redis:\n"
                  "  sentinel: {master: m}\n"
                  "  url: \"unix:///run/redis.sock\"\n",
                  NAME ":2:3: redis.sentinel: missing required key "
                  "\"addrs\"\n"
                  NAME ":3:8: redis.url: with redis.sentinel the url must "
                  "start with redis:// or rediss://\n");
    expect_errors("redis:\n"
                  "  sentinel: {master: m, addrs: [a]}\n"
                  "  url: redis:///x\n",
                  NAME ":3:8: redis.url: database must be a number "
                  "0..1000000 (redis:///DB)\n");
    expect_errors("redis:\n"
                  "  sentinel: [a, b]\n",
                  NAME ":2:13: redis.sentinel: expected a mapping, got a "
                  "sequence\n");
}

static void
test_config_cluster(void **state)
{
    struct drv_config *cfg = NULL;

    (void)state;
    /* no url: the default URL's host gives way to the nodes */
    cfg = load_ok("redis:\n"
                  "  cluster:\n"
                  "    nodes: [\"10.0.0.1:7000\", redis-1.svc, "
                  "\"[::1]:7002\"]\n");
    assert_string_equal(cfg->redis.url, "redis:///0");
    assert_int_equal(cfg->redis.cluster.nnodes, 3);
    assert_string_equal(cfg->redis.cluster.nodes[1], "redis-1.svc");
    assert_null(cfg->redis.cluster.nodes[3]);
    assert_null(cfg->redis.sentinel.master);
    drv_config_free(cfg);

    /* the url carries scheme and user; db 0 */
    cfg = load_ok("redis:\n"
                  "  url: rediss://drover@/0\n"
                  "  cluster: {nodes: [127.0.0.1:7000]}\n");
    assert_string_equal(cfg->redis.url, "rediss://drover@/0");
    assert_int_equal(cfg->redis.cluster.nnodes, 1);
    /* a command-line URL without a host keeps the nodes; with a host it
     * means that server */
    drv_config_set_redis_url(cfg, "redis:///0");
    assert_int_equal(cfg->redis.cluster.nnodes, 1);
    drv_config_set_redis_url(cfg, "redis://10.0.0.2:6379/0");
    assert_int_equal(cfg->redis.cluster.nnodes, 0);
    assert_null(cfg->redis.cluster.nodes);
    drv_config_free(cfg);

    /* absent or null: no cluster */
    cfg = load_ok("redis: {url: redis://10.1.1.1:7000/0, cluster: ~}\n");
    assert_int_equal(cfg->redis.cluster.nnodes, 0);
    drv_config_free(cfg);
}

static void
test_config_cluster_example_loads(void **state)
{
    struct drv_config_errors errs;
    struct drv_config *cfg = NULL;
    int rc;

    (void)state;
    drv_config_errors_init(&errs);
    rc = drv_config_load("config/drover-cluster.yaml", &cfg, &errs);
    if (rc != 0)
        drv_config_errors_print(&errs, stderr);
    assert_int_equal(rc, 0);
    assert_string_equal(cfg->redis.url, "redis://drover@/0");
    assert_int_equal(cfg->redis.cluster.nnodes, 3);
    assert_int_equal(cfg->nqueues, 3);
    drv_config_free(cfg);
    drv_config_errors_fini(&errs);
}

static void
test_config_cluster_errors(void **state)
{
    (void)state;
    expect_errors("redis:\n"
                  "  url: redis://10.0.0.9:6379/0\n"
                  "  cluster:\n"
                  "    nodes: [\"10.0.0.1:0\", \"::1\", \"\"]\n",
                  NAME ":2:8: redis.url: with redis.cluster the url names "
                  "no host (the nodes give it): write redis:///DB or "
                  "redis://USER@/DB\n"
                  NAME ":4:13: redis.cluster.nodes[0]: port must be "
                  "1..65535\n"
                  NAME ":4:27: redis.cluster.nodes[1]: an IPv6 address "
                  "must be in brackets: [::1]:26379\n"
                  NAME ":4:34: redis.cluster.nodes[2]: must not be "
                  "empty\n");
    expect_errors("redis:\n"
                  "  url: redis:///3\n"
                  "  cluster: {nodes: [a]}\n",
                  NAME ":2:8: redis.url: a Redis Cluster has only "
                  "database 0: write redis:/// or redis:///0\n");
    expect_errors("redis:\n"
                  "  cluster: {seeds: [a]}\n",
                  NAME ":2:3: redis.cluster: missing required key "
                  "\"nodes\"\n"
                  NAME ":2:13: redis.cluster.seeds: unknown key (valid: "
                  "nodes)\n");
    expect_errors("redis:\n"
                  "  sentinel: {master: m, addrs: [a]}\n"
                  "  cluster: {nodes: [b]}\n",
                  NAME ":3:12: redis.cluster: redis.sentinel and "
                  "redis.cluster exclude each other: keep one\n");
    expect_errors("redis:\n"
                  "  cluster: [a, b]\n",
                  NAME ":2:12: redis.cluster: expected a mapping, got a "
                  "sequence\n");
}

static void
test_config_redis_tls(void **state)
{
    struct drv_config *cfg;
    struct drv_redis_tls t;

    (void)state;
    /* absent: verify on, nothing set */
    cfg = load_ok("redis: {url: \"rediss://redis.example:6380/0\"}\n");
    assert_true(cfg->redis.tls.verify);
    assert_null(cfg->redis.tls.ca_file);
    drv_config_redis_tls(cfg, &t);
    assert_int_equal(t.no_verify, 0);
    assert_null(t.ca_file);
    drv_config_free(cfg);

    cfg = load_ok("redis:\n"
                  "  tls:\n"
                  "    ca_file: /etc/drover/ca.pem\n"
                  "    cert_file: /etc/drover/client.pem\n"
                  "    key_file: /etc/drover/client.key\n"
                  "    server_name: redis.internal\n"
                  "    verify: false\n"
                  "  url: rediss://drover@10.0.0.5:6380/1\n");
    assert_string_equal(cfg->redis.tls.ca_file, "/etc/drover/ca.pem");
    assert_string_equal(cfg->redis.tls.cert_file, "/etc/drover/client.pem");
    assert_string_equal(cfg->redis.tls.key_file, "/etc/drover/client.key");
    assert_string_equal(cfg->redis.tls.server_name, "redis.internal");
    assert_false(cfg->redis.tls.verify);
    drv_config_redis_tls(cfg, &t);
    assert_string_equal(t.ca_file, "/etc/drover/ca.pem");
    assert_string_equal(t.cert_file, "/etc/drover/client.pem");
    assert_string_equal(t.key_file, "/etc/drover/client.key");
    assert_string_equal(t.server_name, "redis.internal");
    assert_int_equal(t.no_verify, 1);
    drv_config_free(cfg);

    /* an empty tls: mapping is allowed (the defaults) */
    cfg = load_ok("redis: {url: \"rediss://r:6379\", tls: {}}\n");
    assert_true(cfg->redis.tls.verify);
    drv_config_free(cfg);

    expect_errors("redis:\n"
                  "  url: redis://10.0.0.5:6379\n"
                  "  tls: {ca_file: /ca.pem}\n",
                  NAME ":3:3: redis.tls: TLS settings need a rediss:// url "
                  "(redis.url is not one)\n");
    expect_errors("redis:\n"
                  "  url: rediss://10.0.0.5:6379\n"
                  "  tls:\n"
                  "    key_file: /k.pem\n"
                  "    verify: maybe\n"
                  "    ca_file: \"\"\n"
                  "    cafile: /x\n",
                  NAME ":3:3: redis.tls: key_file needs cert_file\n"
                  NAME ":5:13: redis.tls.verify: \"maybe\" is not a boolean "
                  "(use true or false)\n"
                  NAME ":6:14: redis.tls.ca_file: must not be empty\n"
                  NAME ":7:5: redis.tls.cafile: unknown key (valid: "
                  "ca_file, cert_file, key_file, server_name, verify)\n");
    expect_errors("redis:\n"
                  "  url: rediss://10.0.0.5:6379\n"
                  "  tls: [a]\n",
                  NAME ":3:8: redis.tls: expected a mapping, got a "
                  "sequence\n");
}

static void
test_config_top_level_shape(void **state)
{
    (void)state;
    expect_errors("- a\n- b\n",
                  NAME ":1:1: expected a mapping at the top, got a "
                  "sequence\n");
    expect_errors("worker: {batch: 1}\n"
                  "---\n"
                  "worker: {batch: 2}\n",
                  NAME ":3:1: only one YAML document is allowed in a config "
                  "file\n");
}

static void
test_config_many_errors(void **state)
{
    struct drv_config_errors errs;
    struct drv_config *cfg = NULL;
    static const char text[] =
        "pipelines:\n"
        "  p: {steps: [nope]}\n"
        "redis: {url: tcp://x}\n"
        "worker:\n"
        "  batch: 0\n"
        "  bogus: 1\n"
        "jobs:\n"
        "  a: {handler: exec}\n"
        "  b: {handler: sleep, timeout: 5x}\n";
    FILE *fp = NULL;
    char *printed = NULL;
    size_t printed_len = 0;
    int rc;

    (void)state;
    /* every error is reported, sorted by place whatever the read order */
    expect_errors(text,
                  NAME ":2:15: pipelines.p.steps[0]: job type \"nope\" is "
                  "not declared under jobs\n"
                  NAME ":3:14: redis.url: must start with redis://, "
                  "rediss:// or unix://\n"
                  NAME ":5:10: worker.batch: must be greater than 0\n"
                  NAME ":6:3: worker.bogus: unknown key (valid: concurrency, "
                  "batch, threads, shutdown_timeout, visibility_timeout, "
                  "max_deliveries, max_job_bytes, dead_max, dead_max_age, "
                  "http_idle_timeout, metrics)\n"
                  NAME ":8:3: jobs.a: handler exec requires key "
                  "\"command\"\n"
                  NAME ":9:32: jobs.b.timeout: \"5x\" is not a duration (use "
                  "250ms, 30s, 5m, 1h)\n");

    /* drv_config_errors_print writes the same lines */
    drv_config_errors_init(&errs);
    rc = drv_config_load_string(NAME, text, strlen(text), &cfg, &errs);
    assert_int_equal(rc, DRV_ECONFIG);
    assert_int_equal(errs.n, 6);
    assert_int_equal(errs.v[2].line, 5);
    assert_int_equal(errs.v[2].col, 10);
    assert_string_equal(errs.v[2].path, "worker.batch");
    assert_string_equal(errs.v[2].msg, "must be greater than 0");
    fp = open_memstream(&printed, &printed_len);
    assert_non_null(fp);
    drv_config_errors_print(&errs, fp);
    fclose(fp);
    assert_non_null(strstr(printed, NAME ":5:10: worker.batch: must be "
                                    "greater than 0\n"));
    assert_int_equal(printed[printed_len - 1], '\n');
    free(printed);
    drv_config_errors_fini(&errs);

    /* errs may be NULL: the code alone says the config is bad */
    rc = drv_config_load_string(NAME, text, strlen(text), &cfg, NULL);
    assert_int_equal(rc, DRV_ECONFIG);
    assert_null(cfg);
}

static void
test_config_errors_accumulate(void **state)
{
    struct drv_config_errors errs;
    struct drv_config *cfg = NULL;
    static const char first[] = "worker: {batch: 0}\n"
                                "queues: []\n";
    static const char second[] = "queues: []\n"
                                 "worker: {batch: 0}\n";
    int rc;

    (void)state;
    /* a second load appends its own errors, sorted among themselves */
    drv_config_errors_init(&errs);
    rc = drv_config_load_string("a.yaml", first, strlen(first), &cfg, &errs);
    assert_int_equal(rc, DRV_ECONFIG);
    rc = drv_config_load_string("b.yaml", second, strlen(second), &cfg,
                                &errs);
    assert_int_equal(rc, DRV_ECONFIG);
    rc = drv_config_load("no/such/c.yaml", &cfg, &errs);
    assert_int_equal(rc, -ENOENT);
    assert_int_equal(errs.n, 5);
    assert_string_equal(errs.v[0].text, "a.yaml:1:17: worker.batch: must "
                                        "be greater than 0");
    assert_string_equal(errs.v[1].text, "a.yaml:2:9: queues: must list at "
                                        "least one queue");
    assert_string_equal(errs.v[2].text, "b.yaml:1:9: queues: must list at "
                                        "least one queue");
    assert_string_equal(errs.v[3].text, "b.yaml:2:17: worker.batch: must "
                                        "be greater than 0");
    assert_string_equal(errs.v[4].text, "no/such/c.yaml: cannot read: No "
                                        "such file or directory");
    drv_config_errors_fini(&errs);
    assert_int_equal(errs.n, 0);
    drv_config_errors_fini(&errs);  /* twice is harmless */
}

static void
test_config_check_helpers(void **state)
{
    struct drv_err err;

    (void)state;
    drv_err_clear(&err);
    assert_int_equal(drv_config_check_queue("default", &err), 0);
    assert_int_equal(drv_config_check_queue("", &err), -EINVAL);
    assert_string_equal(err.msg, "queue name must not be empty");
    assert_int_equal(drv_config_check_queue("a}", &err), -EINVAL);
    assert_int_equal(drv_config_check_redis_url("unix:///s", &err), 0);
    assert_int_equal(drv_config_check_redis_url("redis://h:1/0", &err), 0);
    assert_int_equal(drv_config_check_redis_url("rediss://h", &err), 0);
    assert_int_equal(drv_config_check_redis_url("http://h", &err),
                     -EINVAL);
    assert_string_equal(drv_hkind_name(DRV_HKIND_NOOP), "noop");
    assert_string_equal(drv_hkind_name(DRV_HKIND_HTTP), "http");
    assert_string_equal(drv_hkind_name(DRV_HKIND_COUNT), "?");
}

/* ---------------------------------------------------------- schedules */

static void
test_config_schedules(void **state)
{
    struct drv_config *cfg = NULL;
    const struct drv_config_schedule *s = NULL;

    (void)state;
    cfg = load_ok("queues: [default, low]\n"
                  "jobs:\n"
                  "  report: {handler: echo}\n"
                  "pipelines:\n"
                  "  p: {steps: [report]}\n"
                  "schedules:\n"
                  "  nightly:\n"
                  "    cron: \"0 3 * * *\"\n"
                  "    timezone: Europe/Berlin\n"
                  "    queue: low\n"
                  "    job: report\n"
                  "    fields: {kind: daily, n: 5}\n"
                  "  often:\n"
                  "    every: 10m\n"
                  "    pipeline: p\n");
    assert_int_equal(cfg->nschedules, 2);
    s = cfg->schedules[0];
    assert_string_equal(s->name, "nightly");
    assert_non_null(s->cron);
    assert_int_equal(s->every_ms, 0);
    assert_string_equal(drv_tz_name(s->tz), "Europe/Berlin");
    assert_string_equal(s->queue, "low");
    assert_ptr_equal(s->job, drv_config_job(cfg, "report"));
    assert_null(s->pipeline);
    assert_int_equal(s->nfields, 2);
    assert_string_equal(s->fields[1].key, "n");
    assert_string_equal(s->fields[1].value, "5");
    s = cfg->schedules[1];
    assert_null(s->cron);
    assert_int_equal(s->every_ms, 600000);
    assert_string_equal(drv_tz_name(s->tz), "UTC");  /* defaults */
    assert_string_equal(s->queue, "default");
    assert_null(s->job);
    assert_ptr_equal(s->pipeline, drv_config_pipeline(cfg, "p"));
    drv_config_free(cfg);
}

static void
test_config_schedule_errors(void **state)
{
    (void)state;
    expect_errors("jobs:\n"
                  "  report: {handler: echo}\n"
                  "schedules:\n"
                  "  a: {cron: \"61 * * * *\", job: report}\n"
                  "  b: {cron: \"0 3 * * *\", timezone: Mars/Olympus, "
                  "job: report}\n"
                  "  c: {every: 1m, queue: nope, job: nope}\n"
                  "  d: {cron: \"* * * * *\", every: 1m, job: report, "
                  "pipeline: report}\n"
                  "  e: {timezone: UTC}\n"
                  "  f: {every: 500ms, job: report, fields: {id: x, \"\": y}}\n"
                  "  g@x: {every: 1s, job: report, when: now}\n"
                  "  h: {cron: \"* 2 8-14 3 */7\", timezone: "
                  "America/New_York, job: report}\n",
                  NAME ":4:13: schedules.a.cron: minute field: \"61\" is "
                  "out of range 0-59\n"
                  NAME ":5:36: schedules.b.timezone: time zone "
                  "\"Mars/Olympus\": unknown time zone (no file "
                  "/usr/share/zoneinfo/Mars/Olympus; is the tzdata "
                  "package installed?)\n"
                  NAME ":6:25: schedules.c.queue: queue \"nope\" is not "
                  "listed under queues\n"
                  NAME ":6:36: schedules.c.job: job type \"nope\" is not "
                  "declared under jobs\n"
                  NAME ":7:26: schedules.d.every: give \"cron\" or "
                  "\"every\", not both\n"
                  NAME ":7:50: schedules.d.pipeline: give \"job\" or "
                  "\"pipeline\", not both\n"
                  NAME ":7:60: schedules.d.pipeline: pipeline \"report\" "
                  "is not declared under pipelines\n"
                  NAME ":8:3: schedules.e: missing required key \"cron\" or "
                  "\"every\"\n"
                  NAME ":8:3: schedules.e: missing required key \"job\" or "
                  "\"pipeline\"\n"
                  NAME ":9:14: schedules.f.every: must be at least 1s\n"
                  NAME ":9:43: schedules.f.fields.id: field \"id\" is set "
                  "by the schedule itself\n"
                  NAME ":9:50: schedules.f.fields.\"\": field name must not "
                  "be empty\n"
                  NAME ":10:3: schedules.g@x: schedule name must not "
                  "contain spaces, control characters, '{', '}' or '@'\n"
                  NAME ":10:33: schedules.g@x.when: unknown key (valid: "
                  "cron, every, timezone, queue, job, pipeline, fields)\n"
                  NAME ":11:7: schedules.h.cron: never fires in "
                  "America/New_York: every time it names falls in a "
                  "skipped daylight-saving hour\n");
}

/* ------------------------------------------------------------- graphs */

static void
test_config_graph_loads(void **state)
{
    struct drv_config *cfg = NULL;
    const struct drv_config_pipeline *p = NULL;
    const struct drv_config_gnode *n = NULL;
    size_t i = 0;

    (void)state;
    cfg = load_ok("jobs:\n"
                  "  dl: {handler: echo, timeout: 10s, retries: 5}\n"
                  "  work: {handler: echo}\n"
                  "pipelines:\n"
                  "  publish:\n"
                  "    result_ttl: 1h\n"
                  "    graph:\n"
                  "      fetch: {job: dl}\n"
                  "      thumbs: {job: work, needs: [fetch], "
                  "for_each: \"{input.images}\", max_parallel: 20}\n"
                  "      gpu: {job: work, needs: fetch, queue: gpu, "
                  "timeout: 2h, retries: 0, backoff: 3s}\n"
                  "      index: {job: work, needs: [thumbs, gpu]}\n"
                  "      notify: {job: work, needs: [index], "
                  "when: \"{input.status} == 'ready'\"}\n"
                  "      undo: {job: work, on_failure: true}\n");
    p = drv_config_pipeline(cfg, "publish");
    assert_non_null(p);
    assert_int_equal(p->nsteps, 0);
    assert_int_equal(p->ngraph, 6);
    n = drv_config_gnode(p, "fetch", &i);
    assert_int_equal(i, 0);
    assert_int_equal(n->nneeds, 0);
    assert_int_equal(n->policy.timeout_ms, 10000);
    assert_int_equal(n->policy.retries, 5);
    assert_int_equal(n->policy.result_ttl_ms, 3600000);
    assert_null(n->queue);
    n = drv_config_gnode(p, "thumbs", &i);
    assert_string_equal(n->for_each, ".images");
    assert_int_equal(n->max_parallel, 20);
    assert_int_equal(n->nneeds, 1);
    assert_int_equal(n->needs[0], 0);
    n = drv_config_gnode(p, "gpu", NULL);
    assert_string_equal(n->queue, "gpu");
    assert_int_equal(n->policy.timeout_ms, 7200000);
    assert_int_equal(n->policy.retries, 0);
    assert_int_equal(n->policy.backoff_ms, 3000);
    assert_int_equal(n->nneeds, 1);
    assert_null(n->for_each);
    assert_int_equal(n->max_parallel, DRV_CONFIG_GRAPH_MAX_PARALLEL);
    n = drv_config_gnode(p, "index", NULL);
    assert_int_equal(n->nneeds, 2);
    assert_int_equal(n->needs[0], 1);
    assert_int_equal(n->needs[1], 2);
    n = drv_config_gnode(p, "notify", NULL);
    assert_int_equal(n->when.op, DRV_CONFIG_WHEN_EQ);
    assert_string_equal(n->when.value, "{input.status}");
    assert_string_equal(n->when.literal, "ready");
    n = drv_config_gnode(p, "undo", NULL);
    assert_true(n->on_failure);
    assert_int_equal(n->when.op, DRV_CONFIG_WHEN_NONE);
    assert_null(drv_config_gnode(p, "nope", NULL));
    drv_config_free(cfg);
}

static void
test_config_graph_errors(void **state)
{
    (void)state;
    /* unknown needs, self, twice, cycle, node behind a cycle */
    expect_errors("jobs:\n"
                  "  a: {handler: echo}\n"
                  "pipelines:\n"
                  "  p:\n"
                  "    graph:\n"
                  "      s: {job: a}\n"
                  "      x: {job: a, needs: [s, nope, x, s]}\n"
                  "      c1: {job: a, needs: [c2]}\n"
                  "      c2: {job: a, needs: [c3]}\n"
                  "      c3: {job: a, needs: [c1]}\n"
                  "      d: {job: a, needs: [c3]}\n",
                  NAME ":7:30: pipelines.p.graph.x.needs[1]: \"nope\" is "
                  "not a node of this graph\n"
                  NAME ":7:36: pipelines.p.graph.x.needs[2]: a node cannot "
                  "need itself\n"
                  NAME ":7:39: pipelines.p.graph.x.needs[3]: \"s\" is "
                  "needed twice\n"
                  NAME ":8:7: pipelines.p.graph.c1: cycle: c1 -> c2 -> c3 "
                  "-> c1 (each needs the next)\n"
                  NAME ":11:7: pipelines.p.graph.d: unreachable: it needs "
                  "c3, which is on a cycle or behind one\n");
    /* for_each without needs, bad for_each, max_parallel alone, bad
     * when, unknown job, missing job, on_failure rules */
    expect_errors("jobs:\n"
                  "  a: {handler: echo}\n"
                  "pipelines:\n"
                  "  p:\n"
                  "    graph:\n"
                  "      r: {job: a, for_each: \"{input.x}\"}\n"
                  "      f: {job: a, needs: r, for_each: \"{items}\"}\n"
                  "      m: {job: a, needs: r, max_parallel: 3}\n"
                  "      w1: {job: a, needs: r, when: \"{input.x}\"}\n"
                  "      w2: {job: a, needs: r, when: \"x == 1\"}\n"
                  "      w3: {job: a, needs: r, when: \"{a.b} != 1\"}\n"
                  "      w4: {job: a, needs: r, when: \"{input} == 1 == 2\"}\n"
                  "      j: {job: zz}\n"
                  "      k: {queue: q}\n"
                  "      u: {job: a, on_failure: true, needs: [r]}\n"
                  "      v: {job: a, needs: [u]}\n"
                  "      bad.name: {job: a}\n",
                  NAME ":6:19: pipelines.p.graph.r: for_each needs a node "
                  "with needs: it fans out over their result\n"
                  NAME ":7:39: pipelines.p.graph.f.for_each: \"{items}\" "
                  "must be {input} or {input.FIELD} (a JSON array in the "
                  "input)\n"
                  NAME ":8:29: pipelines.p.graph.m: max_parallel is only "
                  "valid with for_each\n"
                  NAME ":9:36: pipelines.p.graph.w1.when: must be one "
                  "comparison: \"{input.FIELD} == VALUE\" or \"... != ...\"\n"
                  NAME ":10:36: pipelines.p.graph.w2.when: the left side "
                  "must be a {field} template such as {input.status}\n"
                  NAME ":11:36: pipelines.p.graph.w3.when: a field must be "
                  "{input}, {input.NAME...} or a field of the run\n"
                  NAME ":12:36: pipelines.p.graph.w4.when: only one "
                  "comparison is allowed\n"
                  NAME ":13:16: pipelines.p.graph.j.job: job type \"zz\" is "
                  "not declared under jobs\n"
                  NAME ":14:7: pipelines.p.graph.k: missing required key "
                  "\"job\"\n"
                  NAME ":15:19: pipelines.p.graph.u: an on_failure node "
                  "takes no needs: it runs when the run ends dead\n"
                  NAME ":16:27: pipelines.p.graph.v.needs[0]: unreachable: "
                  "\"u\" is an on_failure node, which nothing waits for\n"
                  NAME ":17:7: pipelines.p.graph.bad.name: node name must "
                  "be letters, digits, '_' or '-'\n");
    /* graph and steps, an empty graph, no node that can start */
    expect_errors("jobs:\n"
                  "  a: {handler: echo}\n"
                  "pipelines:\n"
                  "  p: {steps: [a], graph: {x: {job: a}}}\n"
                  "  q: {graph: {}}\n"
                  "  r: {graph: {u: {job: a, on_failure: true}}}\n",
                  NAME ":4:19: pipelines.p: give steps or graph, not both\n"
                  NAME ":5:14: pipelines.q.graph: must declare at least one "
                  "node\n"
                  NAME ":6:14: pipelines.r.graph: no node can start: every "
                  "node has needs or is on_failure\n");
}

/* ---------------------------------------------------------- name index */

/* Fill names[0..n) with names whose hash picks the last slot of a table
 * of DRV__CONFIG_NAMES_MIN slots. */
static void
last_slot_names(char (*names)[16], size_t n)
{
    const uint64_t last = DRV__CONFIG_NAMES_MIN - 1;
    size_t found = 0;
    unsigned i;

    for (i = 0; found < n; i++) {
        snprintf(names[found], sizeof names[found], "n%u", i);
        if ((drv__config_names_hash(names[found]) & last) == last)
            found++;
    }
}

static void
test_config_names_collide(void **state)
{
    struct drv__config_names *ix = NULL;
    struct drv__config_name *e = NULL;
    const struct drv__config_name *f = NULL;
    struct drv_config_job jobs[3];
    char names[4][16];
    size_t i;

    (void)state;
    last_slot_names(names, 4);
    ix = drv__config_names_create(DRV__CONFIG_NAMES_MIN);
    /* three names fit without growing: linear probing from the last slot
     * wraps around to slots 0 and 1 */
    for (i = 0; i < 3; i++) {
        e = drv__config_names_put(&ix, names[i]);
        assert_null(e->job);
        assert_null(e->pipeline);
        e->job = &jobs[i];
    }
    assert_int_equal(ix->cap, DRV__CONFIG_NAMES_MIN);
    assert_int_equal(ix->n, 3);
    assert_ptr_equal(drv__config_names_find(ix, names[0]),
                     &ix->slots[DRV__CONFIG_NAMES_MIN - 1]);
    assert_ptr_equal(drv__config_names_find(ix, names[1]), &ix->slots[0]);
    assert_ptr_equal(drv__config_names_find(ix, names[2]), &ix->slots[1]);
    for (i = 0; i < 3; i++) {
        f = drv__config_names_find(ix, names[i]);
        assert_ptr_equal(f->name, names[i]);
        assert_ptr_equal(f->job, &jobs[i]);
        /* a second put of a name is its entry, kinds kept */
        assert_ptr_equal(drv__config_names_put(&ix, names[i]), f);
        assert_ptr_equal(f->job, &jobs[i]);
    }
    assert_int_equal(ix->n, 3);
    /* a fourth name of that slot, absent: the probe passes the three and
     * stops at the free slot 2 */
    f = drv__config_names_find(ix, names[3]);
    assert_ptr_equal(f, &ix->slots[2]);
    assert_null(f->name);
    assert_null(f->job);
    assert_null(f->pipeline);
    drv__config_names_free(ix);
}

static void
test_config_names_grow(void **state)
{
    enum { N = 400 };
    struct drv__config_names *ix = NULL;
    const struct drv__config_name *f = NULL;
    struct drv_config_pipeline *pls = NULL;
    char (*names)[16] = NULL;
    size_t cap = DRV__CONFIG_NAMES_MIN;
    int rehashes = 0;
    size_t i;
    size_t k;

    (void)state;
    pls = calloc(N, sizeof *pls);
    names = calloc(N, sizeof *names);
    assert_non_null(pls);
    assert_non_null(names);
    ix = drv__config_names_create(DRV__CONFIG_NAMES_MIN);
    for (i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "name%zu", i);
        drv__config_names_put(&ix, names[i])->pipeline = &pls[i];
        assert_int_equal(ix->n, i + 1);
        assert_true(2 * ix->n <= ix->cap);
        if (ix->cap != cap) {
            assert_int_equal(ix->cap, 2 * cap);
            cap = ix->cap;
            rehashes++;
            /* every entry moved, with its kind */
            for (k = 0; k <= i; k++) {
                f = drv__config_names_find(ix, names[k]);
                assert_ptr_equal(f->name, names[k]);
                assert_ptr_equal(f->pipeline, &pls[k]);
                assert_null(f->job);
            }
        }
    }
    /* 8 -> 16 -> ... -> 1024: the first size at most half full */
    assert_int_equal(rehashes, 7);
    assert_int_equal(ix->cap, 1024);
    for (i = 0; i < N; i++)
        assert_ptr_equal(drv__config_names_find(ix, names[i])->pipeline,
                         &pls[i]);
    assert_null(drv__config_names_find(ix, "name400")->name);
    assert_null(drv__config_names_find(ix, "name")->name);
    assert_null(drv__config_names_find(ix, "")->name);
    drv__config_names_free(ix);
    free(names);
    free(pls);
}

/* 200 job types t0..t199 and 200 pipelines p0..p199 (pI runs tI), with
 * names that are prefixes of others (t1, t10, t100), looked up through
 * the config. */
static void
test_config_lookup_many(void **state)
{
    enum { N = 200 };
    static const char *const absent[] = {
        "t200", "p200", "t", "p", "", "t1 ", "T1", "P1", "t01", "resize",
    };
    struct drv_config *cfg = NULL;
    struct drv_buf text;
    char name[16];
    size_t i;

    (void)state;
    drv_buf_init(&text);
    drv_buf_adds(&text, "jobs:\n");
    for (i = 0; i < N; i++)
        drv_buf_addf(&text, "  t%zu: {handler: noop}\n", i);
    drv_buf_adds(&text, "pipelines:\n");
    for (i = 0; i < N; i++)
        drv_buf_addf(&text, "  p%zu: {steps: [t%zu]}\n", i, i);
    drv_buf_adds(&text, "schedules:\n"
                        "  a: {every: 1m, pipeline: p199}\n"
                        "  b: {every: 1m, job: t0}\n");
    cfg = load_ok(text.data);
    drv_buf_fini(&text);

    assert_int_equal(cfg->njobs, N);
    assert_int_equal(cfg->npipelines, N);
    for (i = 0; i < N; i++) {
        /* file order kept */
        snprintf(name, sizeof name, "t%zu", i);
        assert_string_equal(cfg->jobs[i]->name, name);
        assert_ptr_equal(drv_config_job(cfg, name), cfg->jobs[i]);
        assert_null(drv_config_pipeline(cfg, name));
        snprintf(name, sizeof name, "p%zu", i);
        assert_string_equal(cfg->pipelines[i]->name, name);
        assert_ptr_equal(drv_config_pipeline(cfg, name), cfg->pipelines[i]);
        assert_null(drv_config_job(cfg, name));
        /* looked up while loading */
        assert_ptr_equal(cfg->pipelines[i]->steps[0].jobs[0], cfg->jobs[i]);
    }
    assert_ptr_equal(cfg->schedules[0]->pipeline, cfg->pipelines[N - 1]);
    assert_ptr_equal(cfg->schedules[1]->job, cfg->jobs[0]);
    for (i = 0; i < DRV_ARRAY_LEN(absent); i++) {
        assert_null(drv_config_job(cfg, absent[i]));
        assert_null(drv_config_pipeline(cfg, absent[i]));
    }
    drv_config_free(cfg);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_example_loads),
        cmocka_unit_test(test_config_defaults),
        cmocka_unit_test(test_config_value_forms),
        cmocka_unit_test(test_config_demo_file_loads),
        cmocka_unit_test(test_config_missing_file),
        cmocka_unit_test(test_config_syntax_error),
        cmocka_unit_test(test_config_bad_encoding),
        cmocka_unit_test(test_config_unknown_key),
        cmocka_unit_test(test_config_duplicate_key),
        cmocka_unit_test(test_config_wrong_type),
        cmocka_unit_test(test_config_bad_duration),
        cmocka_unit_test(test_config_bad_size),
        cmocka_unit_test(test_config_bad_bool),
        cmocka_unit_test(test_config_not_positive),
        cmocka_unit_test(test_config_dead_bounds),
        cmocka_unit_test(test_config_http_idle_timeout),
        cmocka_unit_test(test_config_admission),
        cmocka_unit_test(test_config_unknown_handler),
        cmocka_unit_test(test_config_missing_required_key),
        cmocka_unit_test(test_config_key_of_other_handler),
        cmocka_unit_test(test_config_exec_checks),
        cmocka_unit_test(test_config_bad_template),
        cmocka_unit_test(test_config_http_checks),
        cmocka_unit_test(test_config_undeclared_step),
        cmocka_unit_test(test_config_empty_steps),
        cmocka_unit_test(test_config_nested_parallel),
        cmocka_unit_test(test_config_queue_names),
        cmocka_unit_test(test_config_queue_weights),
        cmocka_unit_test(test_config_queue_weight_errors),
        cmocka_unit_test(test_config_name_clash),
        cmocka_unit_test(test_config_names_collide),
        cmocka_unit_test(test_config_names_grow),
        cmocka_unit_test(test_config_lookup_many),
        cmocka_unit_test(test_config_redis_checks),
        cmocka_unit_test(test_config_sentinel),
        cmocka_unit_test(test_config_sentinel_errors),
        cmocka_unit_test(test_config_cluster),
        cmocka_unit_test(test_config_cluster_example_loads),
        cmocka_unit_test(test_config_cluster_errors),
        cmocka_unit_test(test_config_sentinel_example_loads),
        cmocka_unit_test(test_config_redis_tls),
        cmocka_unit_test(test_config_top_level_shape),
        cmocka_unit_test(test_config_many_errors),
        cmocka_unit_test(test_config_errors_accumulate),
        cmocka_unit_test(test_config_check_helpers),
        cmocka_unit_test(test_config_schedules),
        cmocka_unit_test(test_config_schedule_errors),
        cmocka_unit_test(test_config_graph_loads),
        cmocka_unit_test(test_config_graph_errors),
    };

    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, NULL, NULL);
}
