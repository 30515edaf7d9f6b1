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

static void setup(struct drv_test_droverd *t);

static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-json",
    .prefix = "t",
    .log_level = "info",
    .worker_defaults = "  shutdown_timeout: 5s\n",
    .body_head = NULL,
    .tail_lines = 40,
    .setup = setup,
};

/* The config: echo succeeds and keeps a result, boom dies at once. */
static const char body[] =
    "queues: [default, low]\n"
    "jobs:\n"
    "  echo: {handler: echo, result_ttl: 1h}\n"
    "  boom: {handler: fail, retries: 0, result_ttl: 1h}\n";

/*
 * Parse the file argv[1] strictly -- one compact document on one line,
 * UTF-8 -- and print every node as "PATH<tab>JSON" (sorted keys; path
 * parts joined with '.', array indices as numbers, "PATH.#" the length of
 * an array; "" the whole document). One run per document: the C side
 * looks paths up in what it printed.
 */
static const char py_flatten[] =
    "import json, sys\n"
    "raw = open(sys.argv[1], 'rb').read()\n"
    "assert raw.endswith(b'\\n') and raw.count(b'\\n') == 1, 'one line'\n"
    "out = []\n"
    "def walk(p, v):\n"
    "    out.append(p + '\\t' + json.dumps(v, sort_keys=True))\n"
    "    pre = p + '.' if p else ''\n"
    "    if isinstance(v, list):\n"
    "        out.append(pre + '#\\t' + str(len(v)))\n"
    "        for i, x in enumerate(v):\n"
    "            walk(pre + str(i), x)\n"
    "    elif isinstance(v, dict):\n"
    "        for k, x in v.items():\n"
    "            walk(pre + k, x)\n"
    "walk('', json.loads(raw.decode('utf-8')))\n"
    "sys.stdout.write('\\n'.join(out) + '\\n')\n";

struct cli_json {
    char path[512];      /* its stdout, saved for the parser */
    int parsed;          /* flat holds this document's lines */
};

/* The parser's "PATH\tJSON" lines of the document parsed last (one
 * struct cli_json is looked at at a time). */
static char flat[OUT_MAX];

/*
 * Run bin/drover -c CFG ARGS... (NULL-terminated), its stdout saved in
 * dir/NAME.json; assert it exits with want_status.
 */
static void
run_cli(struct drv_test_droverd *t, struct cli_json *r, int want_status,
        const char *name, const char *const *args)
{
    char *out = drv_test_cli_out(t->dir, t->cfg, want_status, args);

    r->parsed = 0;
    snprintf(r->path, sizeof r->path, "%s/%s.json", t->dir, name);
    assert_int_equal(drv_test_write_file(r->path, out), 0);
    free(out);
}

#define CLI(t, r, want_status, name, ...)                                 \
    do {                                                                  \
        const char *const a_[] = {__VA_ARGS__, NULL};                     \
        run_cli((t), (r), (want_status), (name), a_);                     \
    } while (0)

/* The value at path in r's document, as compact JSON (sorted keys), or
 * MISSING; a copy the caller frees. */
static char *
get(struct cli_json *r, const char *path)
{
    const char *argv[] = {"python3", "-c", py_flatten, r->path, NULL};
    size_t plen = strlen(path);
    const char *line = NULL, *end = NULL;
    int rc;

    /* Debian's python3 where it is (a version manager's shim on PATH
     * can take seconds to start) */
    if (access("/usr/bin/python3", X_OK) == 0)
        argv[0] = "/usr/bin/python3";
    if (!r->parsed) {
        rc = drv_test_run(argv, flat, sizeof flat, DRV_TEST_WAIT_MS);
        if (rc != 0)
            fail_msg("%s is not one valid JSON document on one line "
                     "(python3 exit %d)", r->path, rc);
        r->parsed = 1;
    }
    for (line = flat; *line != '\0'; line = end + 1) {
        end = strchr(line, '\n');
        assert_non_null(end);
        if (strncmp(line, path, plen) == 0 && line[plen] == '\t')
            return strndup(line + plen + 1, (size_t)(end - line) - plen - 1);
    }
    return strdup("MISSING");
}

/* Assert the value at path is want (compact JSON, as json.dumps). */
static void
expect(struct cli_json *r, const char *path, const char *want)
{
    char *v = get(r, path);

    if (strcmp(v, want) != 0)
        fail_msg("%s: %s = %s, want %s", r->path, path, v, want);
    free(v);
}

/* Assert every {path, want} of a table. */
static void
expect_all(struct cli_json *r, const char *const (*want)[2], size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        expect(r, want[i][0], want[i][1]);
}

#define EXPECT_ALL(r, ...)                                                \
    do {                                                                  \
        static const char *const w_[][2] = {__VA_ARGS__};                 \
        expect_all((r), w_, DRV_ARRAY_LEN(w_));                           \
    } while (0)

/* The integer at path. */
static long long
get_int(struct cli_json *r, const char *path)
{
    char *v = get(r, path), *end = NULL;
    long long n = strtoll(v, &end, 10);

    if (end == v || *end != '\0')
        fail_msg("%s: %s = %s, want an integer", r->path, path, v);
    free(v);
    return n;
}

/* Every test's config. */
static void
setup(struct drv_test_droverd *t)
{
    drv_test_droverd_config(t, NULL, body);
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
    struct cli_json r = {0};
    redisReply *rep = NULL;

    CLI(t, &r, 0, "e1", "enqueue", "default", "echo", "--id", "e1", "n=1");
    CLI(t, &r, 0, "e2", "enqueue", "default", "echo", "--id", "e2");
    CLI(t, &r, 0, "e3", "enqueue", "default", "echo", "--id", "e3");
    rep = drv_test_redis_cmd(t->c, "XADD t:{default}:jobs * job boom id f1 "
                             "error %s blob %b", "it broke", blob,
                             (size_t)BLOB_LEN);
    freeReplyObject(rep);
    /* paused before droverd starts: it never fetches from low */
    CLI(t, &r, 0, "pause", "pause", "low");
    CLI(t, &r, 0, "l1", "enqueue", "low", "echo", "--id", "l1");
    drv_test_droverd_start(t, 0);
    drv_test_wait_stat(t, "default", "processed", 3);
    drv_test_wait_stat(t, "default", "dead", 1);
    /* the heartbeat's registry entry */
    wait_until_num(drv_test_num(t, "HLEN t:workers"), >=, 1,
                   "registry entries");
    CLI(t, &r, 0, "d1", "enqueue", "default", "echo", "--id", "d1", "--delay",
        "1h");
}

/* ---------------------------------------------------------------- stats */

static void
test_cli_json_stats(void **st)
{
    struct drv_test_droverd *t = *st;
    struct cli_json r = {0};

    run_known_jobs(t);
    CLI(t, &r, 0, "stats", "stats", "--json");
    EXPECT_ALL(&r,
               {"queues.#", "2"},
               {"queues.0.name", "\"default\""},
               {"queues.0.ready", "0"},
               {"queues.0.running", "0"},
               {"queues.0.delayed", "1"},
               {"queues.0.dead", "1"},
               {"queues.0.dead_max", "10000"},
               {"queues.0.processed", "3"},
               {"queues.0.failed", "1"},
               {"queues.0.retried", "0"},
               {"queues.0.dead_total", "1"},
               {"queues.0.paused", "false"},
               {"queues.1.name", "\"low\""},
               {"queues.1.ready", "1"},
               {"queues.1.paused", "true"},
               {"queues.1.processed", "0"});

    /* --json also before the command, and for named queues */
    CLI(t, &r, 0, "stats-low", "--json", "stats", "low");
    expect(&r, "queues.#", "1");
    expect(&r, "queues.0.name", "\"low\"");
    drv_test_droverd_stop(t, 0, 0);
}

/* -------------------------------------------------------------- workers */

static void
test_cli_json_workers(void **st)
{
    struct drv_test_droverd *t = *st;
    struct cli_json r = {0};
    char pid[32];
    long long beat, started, now;

    run_known_jobs(t);
    CLI(t, &r, 0, "workers", "workers", "--json");
    now = (long long)drv_clock_unix_ms();
    expect(&r, "stale_after_ms", "60000");
    expect(&r, "workers.#", "1");
    snprintf(pid, sizeof pid, "%ld", (long)t->w[0].pid);
    expect(&r, "workers.0.pid", pid);
    EXPECT_ALL(&r,
               {"workers.0.queues", "[\"default\", \"low\"]"},
               {"workers.0.busy", "0"},
               {"workers.0.state", "\"ok\""});
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
    CLI(t, &r, 0, "workers2", "workers", "--json");
    EXPECT_ALL(&r,
               {"workers.#", "2"},
               {"workers.1.id", "\"zz-old\""},
               {"workers.1.host", "\"a \\\"b\\\"\""},
               {"workers.1.state", "\"stale\""},
               {"workers.1.beat_at", "2"});
    drv_test_droverd_stop(t, 0, 0);
}

/* ------------------------------------------------------------ dead list */

static void
test_cli_json_dead_list(void **st)
{
    struct drv_test_droverd *t = *st;
    struct cli_json r = {0};
    char *next = NULL, after[64];

    run_known_jobs(t);
    drv_test_droverd_stop(t, 0, 0);
    CLI(t, &r, 0, "dead", "dead", "list", "default", "--json");
    EXPECT_ALL(&r,
               {"queue", "\"default\""},
               {"total", "1"},
               {"count", "1"},
               {"next", "null"},
               {"entries.0.id", "\"f1\""},
               {"entries.0.job", "\"boom\""},
               {"entries.0.pipeline", "null"},
               {"entries.0.error", "\"it broke\""},
               {"entries.0.attempts", "1"});
    assert_true(get_int(&r, "entries.0.failed_at") > 1700000000000LL);
    /* the job's fields byte for byte, in order */
    expect(&r, "entries.0.fields.0", "{\"name\": \"job\", "
           "\"value\": \"boom\"}");
    EXPECT_ALL(&r,
               {"entries.0.fields.1.name", "\"blob\""},
               {"entries.0.fields.1.value", BLOB_JSON},
               {"entries.0.fields.1.value_b64", BLOB_B64},
               {"entries.0.fields.0.value_b64", "MISSING"});

    /* pages: two more dead entries, two at a time */
    freeReplyObject(drv_test_redis_cmd(t->c, "XADD t:{default}:dead * "
                                       "job echo id x2 error e"));
    freeReplyObject(drv_test_redis_cmd(t->c, "XADD t:{default}:dead * "
                                       "job echo id x3 error e"));
    CLI(t, &r, 0, "page1", "dead", "list", "default", "--count", "2",
        "--json");
    EXPECT_ALL(&r,
               {"total", "3"},
               {"count", "2"},
               {"entries.1.id", "\"x2\""});
    next = get(&r, "next");
    assert_true(strlen(next) > 2 && next[0] == '"');
    snprintf(after, sizeof after, "%.*s", (int)strlen(next) - 2, next + 1);
    free(next);
    CLI(t, &r, 0, "page2", "dead", "list", "default", "--count", "2",
        "--after", after, "--json");
    EXPECT_ALL(&r,
               {"count", "1"},
               {"entries.0.id", "\"x3\""},
               {"next", "null"});

    /* --json between dead and list reads the same */
    CLI(t, &r, 0, "page2b", "dead", "--json", "list", "default", "--count",
        "2", "--after", after);
    EXPECT_ALL(&r,
               {"count", "1"},
               {"entries.0.id", "\"x3\""});

    /* an empty queue: a document with no entries, exit 0 */
    CLI(t, &r, 0, "none", "dead", "list", "low", "--json");
    expect(&r, "entries", "[]");
    expect(&r, "total", "0");
}

/* --------------------------------------------------------------- result */

static void
test_cli_json_result(void **st)
{
    struct drv_test_droverd *t = *st;
    long long now = (long long)drv_clock_unix_ms();
    struct cli_json r = {0};
    char eid[64];

    run_known_jobs(t);
    drv_test_droverd_stop(t, 0, 0);

    CLI(t, &r, 0, "e1", "result", "default", "e1", "--json");
    EXPECT_ALL(&r,
               {"found", "true"},
               {"id", "\"e1\""},
               {"result.status", "\"ok\""},
               {"result.result", "\"{\\\"n\\\":\\\"1\\\"}\""},
               {"result.attempts", "1"});
    assert_true(get_int(&r, "result.finished_at") >= now - 600000);
    expect(&r, "where", "\"none\"");
    expect(&r, "job", "null");

    CLI(t, &r, 0, "f1", "result", "default", "f1", "--json");
    EXPECT_ALL(&r,
               {"result.status", "\"dead\""},
               {"where", "\"dead\""},
               {"job.id", "\"f1\""},
               {"job.fields.1.value_b64", BLOB_B64});

    /* no result yet: exit 1, and the document says where it waits */
    CLI(t, &r, 1, "d1", "result", "default", "d1", "--json");
    EXPECT_ALL(&r,
               {"found", "true"},
               {"result", "null"},
               {"where", "\"delayed\""});
    assert_true(get_int(&r, "due_at") >= now + 3500 * 1000);
    expect(&r, "job.fields.0", "{\"name\": \"job\", \"value\": \"echo\"}");

    CLI(t, &r, 1, "l1", "result", "low", "l1", "--json");
    expect(&r, "where", "\"ready\"");
    expect(&r, "deliveries", "null");

    /* delivered and not acked: running, with its consumer */
    drv_test_xadd(t, "mid", eid, sizeof eid, "job", "echo", "id", "m1",
                  NULL);
    freeReplyObject(drv_test_redis_cmd(t->c, "XGROUP CREATE t:{mid}:jobs "
                                       "drover 0"));
    freeReplyObject(drv_test_redis_cmd(t->c, "XREADGROUP GROUP drover c1 "
                                       "COUNT 1 STREAMS t:{mid}:jobs >"));
    CLI(t, &r, 1, "m1", "result", "mid", "m1", "--json");
    EXPECT_ALL(&r,
               {"where", "\"running\""},
               {"consumer", "\"c1\""},
               {"deliveries", "1"});
    {
        char want[80];

        snprintf(want, sizeof want, "\"%s\"", eid);
        expect(&r, "job.entry_id", want);
    }

    CLI(t, &r, 1, "gone", "result", "default", "nosuch", "--json");
    expect(&r, "found", "false");
    expect(&r, "where", "\"none\"");
}

/* The text output says where a job without a result waits. */
static void
test_cli_json_result_text_where(void **st)
{
    struct drv_test_droverd *t = *st;
    const char *const args[] = {"result", "default", "w1", NULL};
    struct drv_test_cli r;

    freeReplyObject(drv_test_redis_cmd(t->c, "ZADD t:{default}:delayed "
                                       "4102444800000 w1"));
    freeReplyObject(drv_test_redis_cmd(t->c, "HSET t:{default}:job:w1 "
                                       "job echo id w1"));
    drv_test_cli_run(&r, t->dir, t->cfg, NULL, args);
    assert_int_equal(r.status, 1);
    if (strstr(r.err, "no result for w1 yet: it is delayed until "
                      "2100-01-01T00:00:00.000Z") == NULL)
        fail_msg("unexpected output: %s", r.err);
    drv_test_cli_fini(&r);
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
    struct cli_json r = {0};
    size_t i;

    for (i = 0; i < DRV_ARRAY_LEN(cmds); i++) {
        const char *a[5] = {cmds[i][0], cmds[i][1], cmds[i][2], NULL, NULL};

        run_cli(t, &r, 0, "help", a);
        assert_true(drv_test_file_contains(r.path, "--json"));
    }
    /* commands that change things take no --json: bad usage, exit 2 */
    CLI(t, &r, 2, "bad1", "pause", "q", "--json");
    CLI(t, &r, 2, "bad2", "--json", "enqueue", "q", "echo");
    CLI(t, &r, 2, "bad3", "dead", "purge", "q", "--json");
    CLI(t, &r, 2, "bad4", "result", "q", "id", "--json", "--field", "x");
    assert_int_equal(drv_test_num(t, "EXISTS t:{q}:paused"), 0);
    assert_int_equal(drv_test_num(t, "EXISTS t:{q}:jobs"), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        TD(test_cli_json_stats),
        TD(test_cli_json_workers),
        TD(test_cli_json_dead_list),
        TD(test_cli_json_result),
        TD(test_cli_json_result_text_where),
        TD(test_cli_json_usage),
    };

    drv_test_droverd_fixture = &opts;
    drv_test_filter_from_env();
    return cmocka_run_group_tests(tests, drv_test_redis_group_setup,
                                  drv_test_redis_group_teardown);
}
