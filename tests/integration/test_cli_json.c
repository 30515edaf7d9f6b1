/*
 * test_cli_json.c -- `--json` of the CLI's read commands (stats, workers,
 * dead list, result), run as a user runs them: the real bin/drover of
 * this build variant against the harness's redis-server, after a real
 * droverd has run a known set of jobs. Every document is parsed by
 * Python's json module (strict: control characters in strings, trailing
 * data and invalid UTF-8 are errors), and its values are read back by
 * path and compared with what the jobs must have left.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "droverd.h"
#include "drover/clock.h"
#include "drover/common.h"

#define OUT_MAX (256 * 1024)   /* the most output a run may give */

static struct drv_test_redis srv;

static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-json",
    .prefix = "t",
    .log_level = "info",
    .worker_defaults = "  shutdown_timeout: 5s\n",
    .body_head = NULL,
    .tail_lines = 40,
};

/* The config: echo succeeds and keeps a result, boom dies at once. */
static const char body[] =
    "queues: [default, low]\n"
    "jobs:\n"
    "  echo: {handler: echo, result_ttl: 1h}\n"
    "  boom: {handler: fail, retries: 0, result_ttl: 1h}\n";

/* Parse the file argv[1] strictly, print the value at the dotted path
 * argv[2] (array indices as numbers; "" = the whole document; "#" as the
 * last part = its length) as JSON, or MISSING. */
static const char py_get[] =
    "import json, sys\n"
    "raw = open(sys.argv[1], 'rb').read()\n"
    "v = json.loads(raw.decode('utf-8'))\n"
    "for p in [p for p in sys.argv[2].split('.') if p]:\n"
    "    if p == '#':\n"
    "        v = len(v)\n"
    "    elif isinstance(v, list):\n"
    "        v = v[int(p)] if int(p) < len(v) else 'MISSING'\n"
    "    elif isinstance(v, dict) and p in v:\n"
    "        v = v[p]\n"
    "    else:\n"
    "        print('MISSING'); sys.exit(0)\n"
    "print(json.dumps(v, sort_keys=True))\n";

struct cli_json {
    int status;          /* exit status of drover */
    char path[512];      /* its stdout, saved for the parser */
};

/* Run bin/drover -c CFG ARGS... (NULL-terminated); stdout to a file. */
static void
run_cli(struct drv_test_droverd *t, struct cli_json *r, const char *name,
        const char *const *args)
{
    char bin[512], *out = malloc(OUT_MAX);
    const char *argv[24];
    int n = 0;

    assert_non_null(out);
    drv_test_bin("drover", bin, sizeof bin);
    argv[n++] = bin;
    argv[n++] = "-c";
    argv[n++] = t->cfg;
    while (*args != NULL && n < 23)
        argv[n++] = *args++;
    argv[n] = NULL;
    r->status = drv_test_run(argv, out, OUT_MAX, DRV_TEST_WAIT_MS);
    snprintf(r->path, sizeof r->path, "%s/%s.json", t->dir, name);
    assert_int_equal(drv_test_write_file(r->path, out), 0);
    free(out);
}

#define CLI(t, r, name, ...)                                              \
    do {                                                                  \
        const char *const a_[] = {__VA_ARGS__, NULL};                     \
        run_cli((t), (r), (name), a_);                                    \
    } while (0)

/* The value at path in r's document, as compact JSON (sorted keys). */
static char *
get(const struct cli_json *r, const char *path)
{
    const char *argv[] = {"python3", "-c", py_get, r->path, path, NULL};
    char *out = malloc(OUT_MAX);
    size_t n;
    int rc;

    assert_non_null(out);
    rc = drv_test_run(argv, out, OUT_MAX, DRV_TEST_WAIT_MS);
    if (rc != 0)
        fail_msg("%s is not one valid JSON document (python3 exit %d)",
                 r->path, rc);
    n = strlen(out);
    if (n > 0 && out[n - 1] == '\n')
        out[n - 1] = '\0';
    return out;
}

/* Assert the value at path is want (compact JSON, as json.dumps). */
static void
expect(const struct cli_json *r, const char *path, const char *want)
{
    char *v = get(r, path);

    if (strcmp(v, want) != 0)
        fail_msg("%s: %s = %s, want %s", r->path, path, v, want);
    free(v);
}

/* The integer at path. */
static long long
get_int(const struct cli_json *r, const char *path)
{
    char *v = get(r, path), *end = NULL;
    long long n = strtoll(v, &end, 10);

    if (end == v || *end != '\0')
        fail_msg("%s: %s = %s, want an integer", r->path, path, v);
    free(v);
    return n;
}

static int
group_setup(void **st)
{
    (void)st;
    return drv_test_redis_start(&srv) == 0 ? 0 : -1;
}

static int
group_teardown(void **st)
{
    (void)st;
    drv_test_redis_cleanup(&srv);
    return 0;
}

static int
setup(void **st)
{
    struct drv_test_droverd *t = drv_test_droverd_new(&srv, &opts);

    drv_test_droverd_config(t, NULL, body);
    *st = t;
    return 0;
}

static int
teardown(void **st)
{
    drv_test_droverd_free(*st);
    return 0;
}

/* A dead job whose blob holds NUL, 0xff, a quote and a newline. */
static const char blob[] = "a\0b\xff\"\n";
#define BLOB_LEN 6
#define BLOB_JSON "\"a\\u0000b\\u00ff\\\"\\n\""
#define BLOB_B64 "\"YQBi/yIK\""

/*
 * Three echo jobs succeed, one boom job dies with a binary field, then
 * droverd keeps running (its registry entry is live) while a delayed
 * job and a paused queue's job wait.
 */
static void
run_known_jobs(struct drv_test_droverd *t)
{
    struct cli_json r;
    redisReply *rep = NULL;
    int64_t deadline;

    CLI(t, &r, "e1", "enqueue", "default", "echo", "--id", "e1", "n=1");
    assert_int_equal(r.status, 0);
    CLI(t, &r, "e2", "enqueue", "default", "echo", "--id", "e2");
    assert_int_equal(r.status, 0);
    CLI(t, &r, "e3", "enqueue", "default", "echo", "--id", "e3");
    assert_int_equal(r.status, 0);
    rep = drv_test_redis_cmd(t->c, "XADD t:{default}:jobs * job boom id f1 "
                             "error %s blob %b", "it broke", blob,
                             (size_t)BLOB_LEN);
    freeReplyObject(rep);
    /* paused before droverd starts: it never fetches from low */
    CLI(t, &r, "pause", "pause", "low");
    assert_int_equal(r.status, 0);
    CLI(t, &r, "l1", "enqueue", "low", "echo", "--id", "l1");
    assert_int_equal(r.status, 0);
    drv_test_droverd_start(t, 0);
    drv_test_wait_stat(t, "default", "processed", 3);
    drv_test_wait_stat(t, "default", "dead", 1);
    /* the heartbeat's registry entry */
    deadline = drv_test_now_ms() + DRV_TEST_WAIT_MS;
    while (drv_test_num(t, "HLEN t:workers") < 1) {
        if (drv_test_now_ms() > deadline)
            fail_msg("no registry entry after %d ms", DRV_TEST_WAIT_MS);
        drv_test_sleep_ms(20);
    }
    CLI(t, &r, "d1", "enqueue", "default", "echo", "--id", "d1", "--delay",
        "1h");
    assert_int_equal(r.status, 0);
}

/* ---------------------------------------------------------------- stats */

static void
test_cli_json_stats(void **st)
{
    struct drv_test_droverd *t = *st;
    struct cli_json r;

    run_known_jobs(t);
    CLI(t, &r, "stats", "stats", "--json");
    assert_int_equal(r.status, 0);
    expect(&r, "queues.#", "2");
    expect(&r, "queues.0.name", "\"default\"");
    expect(&r, "queues.0.ready", "0");
    expect(&r, "queues.0.running", "0");
    expect(&r, "queues.0.delayed", "1");
    expect(&r, "queues.0.dead", "1");
    expect(&r, "queues.0.processed", "3");
    expect(&r, "queues.0.failed", "1");
    expect(&r, "queues.0.retried", "0");
    expect(&r, "queues.0.dead_total", "1");
    expect(&r, "queues.0.paused", "false");
    expect(&r, "queues.1.name", "\"low\"");
    expect(&r, "queues.1.ready", "1");
    expect(&r, "queues.1.paused", "true");
    expect(&r, "queues.1.processed", "0");

    /* --json also before the command, and for named queues */
    CLI(t, &r, "stats-low", "--json", "stats", "low");
    assert_int_equal(r.status, 0);
    expect(&r, "queues.#", "1");
    expect(&r, "queues.0.name", "\"low\"");
    drv_test_droverd_stop(t, 0, 0);
}

/* -------------------------------------------------------------- workers */

static void
test_cli_json_workers(void **st)
{
    struct drv_test_droverd *t = *st;
    struct cli_json r;
    char pid[32];
    long long beat, started, now;

    run_known_jobs(t);
    CLI(t, &r, "workers", "workers", "--json");
    now = (long long)drv_clock_unix_ms();
    assert_int_equal(r.status, 0);
    expect(&r, "stale_after_ms", "60000");
    expect(&r, "workers.#", "1");
    snprintf(pid, sizeof pid, "%ld", (long)t->w[0].pid);
    expect(&r, "workers.0.pid", pid);
    expect(&r, "workers.0.queues", "[\"default\", \"low\"]");
    expect(&r, "workers.0.busy", "0");
    expect(&r, "workers.0.state", "\"ok\"");
    beat = get_int(&r, "workers.0.beat_at");
    started = get_int(&r, "workers.0.started_at");
    assert_true(started <= beat && beat <= now);
    assert_true(beat > now - 60000);
    {
        char *host = get(&r, "workers.0.host");

        assert_string_not_equal(host, "null");
        free(host);
    }

    /* a stale entry written by hand, with a host that needs quoting */
    freeReplyObject(drv_test_redis_cmd(t->c, "HSET t:workers zz-old %s",
                                       "host=\"a \\\"b\\\"\" pid=7 "
                                       "started=1 queues=q busy=0 beat=2"));
    CLI(t, &r, "workers2", "workers", "--json");
    assert_int_equal(r.status, 0);
    expect(&r, "workers.#", "2");
    expect(&r, "workers.1.id", "\"zz-old\"");
    expect(&r, "workers.1.host", "\"a \\\"b\\\"\"");
    expect(&r, "workers.1.state", "\"stale\"");
    expect(&r, "workers.1.beat_at", "2");
    drv_test_droverd_stop(t, 0, 0);
}

/* ------------------------------------------------------------ dead list */

static void
test_cli_json_dead_list(void **st)
{
    struct drv_test_droverd *t = *st;
    struct cli_json r;
    char *next = NULL, after[64];

    run_known_jobs(t);
    drv_test_droverd_stop(t, 0, 0);
    CLI(t, &r, "dead", "dead", "list", "default", "--json");
    assert_int_equal(r.status, 0);
    expect(&r, "queue", "\"default\"");
    expect(&r, "total", "1");
    expect(&r, "count", "1");
    expect(&r, "next", "null");
    expect(&r, "entries.0.id", "\"f1\"");
    expect(&r, "entries.0.job", "\"boom\"");
    expect(&r, "entries.0.pipeline", "null");
    expect(&r, "entries.0.error", "\"it broke\"");
    expect(&r, "entries.0.attempts", "1");
    assert_true(get_int(&r, "entries.0.failed_at") > 1700000000000LL);
    /* the job's fields byte for byte, in order */
    expect(&r, "entries.0.fields.0", "{\"name\": \"job\", "
           "\"value\": \"boom\"}");
    expect(&r, "entries.0.fields.1.name", "\"blob\"");
    expect(&r, "entries.0.fields.1.value", BLOB_JSON);
    expect(&r, "entries.0.fields.1.value_b64", BLOB_B64);
    expect(&r, "entries.0.fields.0.value_b64", "MISSING");

    /* pages: two more dead entries, two at a time */
    freeReplyObject(drv_test_redis_cmd(t->c, "XADD t:{default}:dead * "
                                       "job echo id x2 error e"));
    freeReplyObject(drv_test_redis_cmd(t->c, "XADD t:{default}:dead * "
                                       "job echo id x3 error e"));
    CLI(t, &r, "page1", "dead", "list", "default", "--count", "2",
        "--json");
    assert_int_equal(r.status, 0);
    expect(&r, "total", "3");
    expect(&r, "count", "2");
    expect(&r, "entries.1.id", "\"x2\"");
    next = get(&r, "next");
    assert_true(strlen(next) > 2 && next[0] == '"');
    snprintf(after, sizeof after, "%.*s", (int)strlen(next) - 2, next + 1);
    free(next);
    CLI(t, &r, "page2", "dead", "list", "default", "--count", "2",
        "--after", after, "--json");
    assert_int_equal(r.status, 0);
    expect(&r, "count", "1");
    expect(&r, "entries.0.id", "\"x3\"");
    expect(&r, "next", "null");

    /* an empty queue: a document with no entries, exit 0 */
    CLI(t, &r, "none", "dead", "list", "low", "--json");
    assert_int_equal(r.status, 0);
    expect(&r, "entries", "[]");
    expect(&r, "total", "0");
}

/* --------------------------------------------------------------- result */

static void
test_cli_json_result(void **st)
{
    struct drv_test_droverd *t = *st;
    long long now = (long long)drv_clock_unix_ms();
    struct cli_json r;
    char eid[64];

    run_known_jobs(t);
    drv_test_droverd_stop(t, 0, 0);

    CLI(t, &r, "e1", "result", "default", "e1", "--json");
    assert_int_equal(r.status, 0);
    expect(&r, "found", "true");
    expect(&r, "id", "\"e1\"");
    expect(&r, "result.status", "\"ok\"");
    expect(&r, "result.result", "\"{\\\"n\\\":\\\"1\\\"}\"");
    expect(&r, "result.attempts", "1");
    assert_true(get_int(&r, "result.finished_at") >= now - 600000);
    expect(&r, "where", "\"none\"");
    expect(&r, "job", "null");

    CLI(t, &r, "f1", "result", "default", "f1", "--json");
    assert_int_equal(r.status, 0);
    expect(&r, "result.status", "\"dead\"");
    expect(&r, "where", "\"dead\"");
    expect(&r, "job.id", "\"f1\"");
    expect(&r, "job.fields.1.value_b64", BLOB_B64);

    /* no result yet: exit 1, and the document says where it waits */
    CLI(t, &r, "d1", "result", "default", "d1", "--json");
    assert_int_equal(r.status, 1);
    expect(&r, "found", "true");
    expect(&r, "result", "null");
    expect(&r, "where", "\"delayed\"");
    assert_true(get_int(&r, "due_at") >= now + 3500 * 1000);
    expect(&r, "job.fields.0", "{\"name\": \"job\", \"value\": \"echo\"}");

    CLI(t, &r, "l1", "result", "low", "l1", "--json");
    assert_int_equal(r.status, 1);
    expect(&r, "where", "\"ready\"");
    expect(&r, "deliveries", "null");

    /* delivered and not acked: running, with its consumer */
    drv_test_xadd(t, "mid", eid, sizeof eid, "job", "echo", "id", "m1",
                  NULL);
    freeReplyObject(drv_test_redis_cmd(t->c, "XGROUP CREATE t:{mid}:jobs "
                                       "drover 0"));
    freeReplyObject(drv_test_redis_cmd(t->c, "XREADGROUP GROUP drover c1 "
                                       "COUNT 1 STREAMS t:{mid}:jobs >"));
    CLI(t, &r, "m1", "result", "mid", "m1", "--json");
    assert_int_equal(r.status, 1);
    expect(&r, "where", "\"running\"");
    expect(&r, "consumer", "\"c1\"");
    expect(&r, "deliveries", "1");
    {
        char want[80];

        snprintf(want, sizeof want, "\"%s\"", eid);
        expect(&r, "job.entry_id", want);
    }

    CLI(t, &r, "gone", "result", "default", "nosuch", "--json");
    assert_int_equal(r.status, 1);
    expect(&r, "found", "false");
    expect(&r, "where", "\"none\"");
}

/* The text output says where a job without a result waits. */
static void
test_cli_json_result_text_where(void **st)
{
    struct drv_test_droverd *t = *st;
    char bin[512], cmdline[1500], out[4096];
    const char *argv[] = {"/bin/sh", "-c", cmdline, NULL};
    int rc;

    freeReplyObject(drv_test_redis_cmd(t->c, "ZADD t:{default}:delayed "
                                       "4102444800000 w1"));
    freeReplyObject(drv_test_redis_cmd(t->c, "HSET t:{default}:job:w1 "
                                       "job echo id w1"));
    drv_test_bin("drover", bin, sizeof bin);
    snprintf(cmdline, sizeof cmdline, "exec '%s' -c '%s' result default w1 "
             "2>&1", bin, t->cfg);
    rc = drv_test_run(argv, out, sizeof out, DRV_TEST_WAIT_MS);
    assert_int_equal(rc, 1);
    if (strstr(out, "no result for w1 yet: it is delayed until "
                    "2100-01-01T00:00:00.000Z") == NULL)
        fail_msg("unexpected output: %s", out);
}

/* ----------------------------------------------------- usage and help */

static void
test_cli_json_usage(void **st)
{
    struct drv_test_droverd *t = *st;
    static const char *const cmds[][4] = {
        {"stats", "--help", NULL},
        {"workers", "--help", NULL},
        {"dead", "list", "--help", NULL},
        {"result", "--help", NULL},
    };
    struct cli_json r;
    size_t i;

    for (i = 0; i < DRV_ARRAY_LEN(cmds); i++) {
        const char *a[5] = {cmds[i][0], cmds[i][1], cmds[i][2], NULL, NULL};

        run_cli(t, &r, "help", a);
        assert_int_equal(r.status, 0);
        assert_true(drv_test_file_contains(r.path, "--json"));
    }
    /* commands that change things take no --json: bad usage, exit 2 */
    CLI(t, &r, "bad1", "pause", "q", "--json");
    assert_int_equal(r.status, 2);
    CLI(t, &r, "bad2", "--json", "enqueue", "q", "echo");
    assert_int_equal(r.status, 2);
    CLI(t, &r, "bad3", "dead", "purge", "q", "--json");
    assert_int_equal(r.status, 2);
    CLI(t, &r, "bad4", "result", "q", "id", "--json", "--field", "x");
    assert_int_equal(r.status, 2);
    assert_int_equal(drv_test_num(t, "EXISTS t:{q}:paused"), 0);
    assert_int_equal(drv_test_num(t, "EXISTS t:{q}:jobs"), 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_cli_json_stats),
        T(test_cli_json_workers),
        T(test_cli_json_dead_list),
        T(test_cli_json_result),
        T(test_cli_json_result_text_where),
        T(test_cli_json_usage),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
