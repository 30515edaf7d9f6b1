/*
 * test_worker_job.c -- the pure job logic of the worker and the handlers:
 * validation of fetched jobs (errors name the field; pkg/worker/
 * validate.c), fields as JSON (last value wins), the one field lookup
 * with its `{id}` and `{attempt}` (pkg/handler/handler.c), exec's stdin,
 * argv and environment (no secrets; pkg/handler/handler_exec.c).
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "drover/config.h"
#include "drover/queue.h"
#include "drover/handlers.h"
#include "../../pkg/handler/handler_int.h"
#include "../../pkg/worker/worker_int.h"

static const char yaml[] =
    "redis:\n  url: redis://127.0.0.1:1/0\n"
    "worker:\n  max_job_bytes: 100\n"
    "jobs:\n"
    "  e:\n    handler: echo\n"
    "  s:\n    handler: sleep\n"
    "  f:\n    handler: fail\n"
    "  x:\n    handler: exec\n    command: [run, \"{a}-{{lit}}\", \"{b}\"]\n"
    "    env: {K: v}\n"
    "pipelines:\n"
    "  p:\n    steps:\n      - e\n      - parallel: [s, e]\n"
    "  g:\n    graph:\n      a: {job: e}\n      b: {job: e, needs: a}\n";

/* A job from name/value pairs (NULL-terminated), as the fetch builds it. */
static struct drv_job *
mkjob(const char *const *kv)
{
    redisReply id = {0}, fv = {0}, entry = {0};
    redisReply *els[2], *items[32], cells[32];
    struct drv_job *j;
    size_t n = 0;

    memset(cells, 0, sizeof cells);
    for (; kv[n] != NULL; n++) {
        cells[n].type = REDIS_REPLY_STRING;
        cells[n].str = (char *)kv[n];
        cells[n].len = strlen(kv[n]);
        items[n] = &cells[n];
    }
    id.type = REDIS_REPLY_STRING;
    id.str = (char *)"1-1";
    id.len = 3;
    fv.type = REDIS_REPLY_ARRAY;
    fv.elements = n;
    fv.element = items;
    els[0] = &id;
    els[1] = &fv;
    entry.type = REDIS_REPLY_ARRAY;
    entry.elements = 2;
    entry.element = els;
    j = drv_job_from_entry(&entry, NULL);
    assert_non_null(j);
    return j;
}

static int
setup(void **st)
{
    struct drv_config *cfg = NULL;

    assert_int_equal(drv_config_load_string("t.yaml", yaml, strlen(yaml),
                                            &cfg, NULL), 0);
    *st = cfg;
    return 0;
}

static int
teardown(void **st)
{
    drv_config_free(*st);
    return 0;
}

/* kv is refused with msg. With check_pipe, it is also known as step
 * `step` of pipeline pipe_name (a graph's node index), or as no pipeline
 * step when pipe_name is NULL: its settle writes the step's record or
 * ends its run. */
static void
refused(const struct drv_config *cfg, const char *const *kv,
        const char *msg, int check_pipe, const char *pipe_name,
        int64_t step)
{
    struct drv_job *j = mkjob(kv);
    const struct drv_config_job *type = NULL;
    const struct drv_config_pipeline *pipe = NULL;
    int64_t got = -1;
    struct drv_err err;

    drv_err_clear(&err);
    assert_int_equal(drv__worker_job_validate(cfg, j, &type, &pipe, &got,
                                              &err), DRV_EBADJOB);
    assert_string_equal(err.msg, msg);
    assert_null(type);
    if (check_pipe && pipe_name == NULL) {
        assert_null(pipe);
    } else if (check_pipe) {
        assert_non_null(pipe);
        assert_string_equal(pipe->name, pipe_name);
        assert_int_equal(got, step);
    }
    drv_job_free(j);
}

static void
expect_bad(const struct drv_config *cfg, const char *const *kv,
           const char *msg)
{
    refused(cfg, kv, msg, 0, NULL, -1);
}

static void
expect_refused_step(const struct drv_config *cfg, const char *const *kv,
                    const char *msg, const char *pipe_name, int64_t step)
{
    refused(cfg, kv, msg, 1, pipe_name, step);
}

static void
test_worker_job_validate_names_the_field(void **st)
{
    const struct drv_config *cfg = *st;
    const char *const none[] = {"a", "1", NULL};
    const char *const unknown[] = {"job", "zz", NULL};
    const char *const hostile[] = {"job", "z\xff\r\n\"\\", NULL};
    const char *const noms[] = {"job", "s", NULL};
    const char *const badms[] = {"job", "s", "ms", "-5", NULL};
    const char *const perm[] = {"job", "f", "permanent", "2", NULL};
    const char *const att[] = {"job", "e", "attempt", "x", NULL};
    const char *const big[] = {"job", "e", "pad",
        "0123456789012345678901234567890123456789012345678901234567890123456"
        "789012345678901234567890123456789", NULL};

    expect_bad(cfg, none, "missing field job");
    expect_bad(cfg, unknown, "field job: unknown job type \"zz\"");
    /* the name as the job held it, escaped: no raw CR/LF or 0xff */
    expect_bad(cfg, hostile, "field job: unknown job type "
                             "\"z\\xff\\r\\n\\\"\\\\\"");
    expect_bad(cfg, noms, "missing field ms");
    expect_bad(cfg, badms, "field ms: \"-5\" is not a plain decimal integer");
    expect_bad(cfg, perm, "field permanent: 2 is out of range (at most 1)");
    expect_bad(cfg, att, "field attempt: not a plain decimal integer");
    expect_bad(cfg, big, "job is 107 bytes, more than max_job_bytes 100");
}

static void
test_worker_job_validate_pipeline_jobs(void **st)
{
    const struct drv_config *cfg = *st;
    const char *const unknown[] = {"pipeline", "zz", NULL};
    const char *const both[] = {"pipeline", "p", "job", "e", NULL};
    const char *const far[] = {"pipeline", "p", "step", "2", NULL};
    const char *const nomsg[] = {"pipeline", "p", "step", "1", NULL};
    const char *const ok[] = {"pipeline", "p", "step", "1", "ms", "5",
                              NULL};
    const char *const bigstep[] = {"pipeline", "p", "step", "1", "pad",
        "0123456789012345678901234567890123456789012345678901234567890123456"
        "789012345678901234567890123456789", NULL};
    const char *const badatt[] = {"pipeline", "p", "step", "1", "attempt",
                                  "2x", NULL};
    const char *const gnode[] = {"pipeline", "g", "run", "r", "node", "b",
                                 "home", "default", "attempt", "2x", NULL};
    const char *const gfirst[] = {"pipeline", "g", "id", "r", "attempt",
                                  "2x", NULL};
    const struct drv_config_job *type = NULL;
    const struct drv_config_pipeline *pipe = NULL;
    int64_t step = -1;
    struct drv_job *j;

    expect_bad(cfg, unknown, "field pipeline: unknown pipeline \"zz\"");
    expect_bad(cfg, both, "fields job and pipeline: give one, not both");
    expect_bad(cfg, far, "field step: 2 is out of range (pipeline p has 2 "
                         "steps)");
    /* a parallel step checks every member's fields */
    expect_bad(cfg, nomsg, "missing field ms");
    j = mkjob(ok);
    assert_int_equal(drv__worker_job_validate(cfg, j, &type, &pipe, &step,
                                              NULL), 0);
    assert_null(type);
    assert_non_null(pipe);
    assert_string_equal(pipe->name, "p");
    assert_int_equal(step, 1);
    drv_job_free(j);
    /* too large: refused, but still known as step 1 of p, so that its
     * settle keeps the pipeline's record */
    expect_refused_step(cfg, bigstep, "job is 117 bytes, more than "
                        "max_job_bytes 100", "p", 1);
    /* so is one whose attempt is not a number */
    expect_refused_step(cfg, badatt, "field attempt: not a plain decimal "
                        "integer", "p", 1);
    /* a graph node whose attempt is not a number: known as its node
     * (b, index 1), so that its settle ends its run; the run's first
     * entry (no field run) is left a plain job */
    expect_refused_step(cfg, gnode, "field attempt: not a plain decimal "
                        "integer", "g", 1);
    expect_refused_step(cfg, gfirst, "field attempt: not a plain decimal "
                        "integer", NULL, -1);
}

static void
test_worker_job_validate_ok(void **st)
{
    const struct drv_config *cfg = *st;
    const char *const kv[] = {"job", "s", "ms", "250", "job", "s", NULL};
    struct drv_job *j = mkjob(kv);
    const struct drv_config_job *type = NULL;
    const struct drv_config_pipeline *pipe = NULL;
    int64_t step = 0;

    assert_int_equal(drv__worker_job_validate(cfg, j, &type, &pipe, &step,
                                              NULL), 0);
    assert_null(pipe);
    assert_non_null(type);
    assert_string_equal(type->name, "s");
    {
        uint64_t ms = 0;

        assert_int_equal(drv_handler_uint_field(j, "ms", 1000, 1, &ms, NULL),
                         0);
        assert_int_equal(ms, 250);
    }
    drv_job_free(j);
}

static void
test_worker_job_json_last_value_wins(void **st)
{
    const char *const kv[] = {"job", "e", "a", "1", "b", "x\"y", "a", "2",
                              "id", "myid", NULL};
    struct drv_job *j = mkjob(kv);
    size_t n = 0;
    char *s;

    (void)st;
    s = drv_handler_fields_json(j, 1, &n);
    assert_string_equal(s, "{\"a\":\"2\",\"b\":\"x\\\"y\"}");
    assert_int_equal(n, strlen(s));
    free(s);
    s = drv__exec_stdin(j, &n);
    assert_string_equal(s, "{\"job\":\"e\",\"a\":\"2\",\"b\":\"x\\\"y\","
                           "\"id\":\"myid\",\"attempt\":\"0\"}");
    free(s);
    drv_job_free(j);
}

/* Look name up in r: the value, or NULL when absent. */
static const char *
lookup(struct drv_hrun *r, const char *name, char *buf, size_t n)
{
    const char *v = NULL;
    size_t len = 0;

    if (drv_hrun_lookup(name, strlen(name), &v, &len, r) < 0)
        return NULL;
    snprintf(buf, n, "%.*s", (int)len, v);
    return buf;
}

static void
test_worker_job_lookup_id_and_attempt(void **st)
{
    const struct drv_config *cfg = *st;
    const char *const bare[] = {"job", "x", "a", "1", "a", "2", NULL};
    const char *const full[] = {"job", "x", "id", "myid", "attempt", "2",
                                NULL};
    struct drv_htype ht = {.magic = DRV_HTYPE_MAGIC,
                           .cfg = drv_config_job(cfg, "x")};
    struct drv_job *b = mkjob(bare), *f = mkjob(full);
    struct drv_hrun r;
    char buf[64];

    /* no id field: the entry id; no attempt field: the first attempt */
    drv_hrun_init(&r, &ht, b, "default");
    assert_string_equal(lookup(&r, "id", buf, sizeof buf), "1-1");
    assert_string_equal(lookup(&r, "attempt", buf, sizeof buf), "1");
    assert_string_equal(lookup(&r, "a", buf, sizeof buf), "2");
    assert_null(lookup(&r, "zz", buf, sizeof buf));
    /* attempt=2 means two made: this is the third, as DROVER_ATTEMPT */
    drv_hrun_init(&r, &ht, f, "default");
    assert_string_equal(lookup(&r, "id", buf, sizeof buf), "myid");
    assert_string_equal(lookup(&r, "attempt", buf, sizeof buf), "3");
    drv_job_free(b);
    drv_job_free(f);
}

static void
test_worker_job_exec_argv_and_env(void **st)
{
    const struct drv_config *cfg = *st;
    const char *const kv[] = {"job", "x", "a", "$(touch y)", "b", "two words",
                              NULL};
    const char *const missing[] = {"job", "x", "a", "1", NULL};
    char *const environ_[] = {(char *)"PATH=/bin",
                              (char *)"DROVER_REDIS_PASSWORD=secret",
                              (char *)"DROVER_SENTINEL_PASSWORD=secret2",
                              (char *)"OTHER=redis://127.0.0.1:1/0",
                              (char *)"DROVER_JOB=stale",
                              (char *)"MY_REDIS_PW=secret", NULL};
    struct drv_htype ht = {.magic = DRV_HTYPE_MAGIC,
                           .cfg = drv_config_job(cfg, "x")};
    struct drv_job *j = mkjob(kv), *m = mkjob(missing);
    struct drv_hrun r, rm;
    struct drv_err err;
    char **argv, **base, **env;
    size_t i;
    int seen_k = 0, seen_attempt = 0;

    drv_hrun_init(&r, &ht, j, "default");
    drv_hrun_init(&rm, &ht, m, "default");
    argv = drv__exec_argv(&r, &err);
    assert_non_null(argv);
    assert_string_equal(argv[0], "run");
    assert_string_equal(argv[1], "$(touch y)-{lit}");
    assert_string_equal(argv[2], "two words");
    assert_null(argv[3]);
    drv__strv_free(argv);
    assert_null(drv__exec_argv(&rm, &err));
    assert_int_equal(err.code, DRV_EBADJOB);
    assert_string_equal(err.msg, "missing field b");

    base = drv__exec_base_env(environ_, "redis://127.0.0.1:1/0");
    assert_string_equal(base[0], "PATH=/bin");
    /* the password (by name, and its value under any other name), the
     * URL and stale DROVER_* dropped */
    assert_null(base[1]);
    drv__strv_free(base);
    /* the URL's password, under any name */
    {
        char *const e2[] = {(char *)"PATH=/bin", (char *)"PW2=hunter2",
                            (char *)"NOTPW=hunter", NULL};

        base = drv__exec_base_env(e2, "redis://u:hunter2@127.0.0.1:1/0");
        assert_string_equal(base[0], "PATH=/bin");
        assert_string_equal(base[1], "NOTPW=hunter");
        assert_null(base[2]);
        drv__strv_free(base);
    }
    base = drv__exec_base_env(environ_, "redis://127.0.0.1:1/0");
    env = drv__exec_env(base, &r);
    for (i = 0; env[i] != NULL; i++) {
        seen_k += strcmp(env[i], "K=v") == 0;
        seen_attempt += strcmp(env[i], "DROVER_ATTEMPT=1") == 0;
        assert_null(strstr(env[i], "secret"));
    }
    assert_int_equal(seen_k, 1);
    assert_int_equal(seen_attempt, 1);
    drv__strv_free(base);
    drv__strv_free(env);
    drv_job_free(j);
    drv_job_free(m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_job_validate_names_the_field),
        cmocka_unit_test(test_worker_job_validate_ok),
        cmocka_unit_test(test_worker_job_validate_pipeline_jobs),
        cmocka_unit_test(test_worker_job_json_last_value_wins),
        cmocka_unit_test(test_worker_job_lookup_id_and_attempt),
        cmocka_unit_test(test_worker_job_exec_argv_and_env),
    };

    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, setup, teardown);
}
