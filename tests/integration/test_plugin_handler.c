/*
 * test_plugin_handler.c -- `handler: plugin` end to end: real droverd
 * processes running the reference plugin (libexample.so from
 * $DROVER_PLUGIN_DIR) against a real redis-server. Both modes return
 * results and fail as asked; timeouts reach the plugin (async: its cancel
 * hook; blocking: host->cancelled); a blocking job that ignores its
 * cancellation keeps its thread permit until it returns; a graceful stop
 * requeues running plugin jobs; a plugin that ignores cancel is
 * force-finished without harm; a bad plugin config exits 2 naming the
 * library and symbol. Waits poll Redis or the log with generous deadlines
 * (hang guards, never speed checks).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define WAIT_MS 30000

static struct drv_test_redis srv;
static char plugin_dir[4096];     /* absolute $DROVER_PLUGIN_DIR */

struct ht {
    char dir[256];                /* temp dir: config, logs */
    char cfg[400];                /* config path */
    redisContext *c;              /* blocking client */
    struct drv_test_proc w;       /* droverd */
    char log[400];                /* its log */
    int nstarted;
};

static int
group_setup(void **st)
{
    const char *d = getenv("DROVER_PLUGIN_DIR");

    (void)st;
    if (realpath(d != NULL ? d : "build/release/plugins", plugin_dir) ==
        NULL) {
        fprintf(stderr, "test_plugin_handler: no plugin dir "
                "(DROVER_PLUGIN_DIR)\n");
        return -1;
    }
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
    struct ht *t = calloc(1, sizeof *t);

    assert_non_null(t);
    drv_test_redis_flush(&srv);
    assert_int_equal(drv_test_tmpdir("drover-ph", t->dir, sizeof t->dir), 0);
    t->c = drv_test_redis_connect(&srv);
    assert_non_null(t->c);
    *st = t;
    return 0;
}

static void
dump_log(const struct ht *t)
{
    char cmd[600];

    snprintf(cmd, sizeof cmd, "tail -n 60 '%s' >&2", t->log);
    if (system(cmd) != 0)
        return;
}

static int
teardown(void **st)
{
    struct ht *t = *st;
    const char *keep = getenv("DROVER_TEST_KEEP");

    if (t->w.pid > 0) {
        dump_log(t);
        drv_test_kill(&t->w, SIGKILL);
    }
    if (t->c != NULL)
        redisFree(t->c);
    if (!(keep && strcmp(keep, "1") == 0))
        drv_test_rm_rf(t->dir);
    free(t);
    return 0;
}

/* The config: redis and test worker defaults, worker_extra (lines of two
 * spaces), then body (queues and jobs). $P in body stands for the plugin
 * dir. */
static void
write_config(struct ht *t, const char *worker_extra, const char *body)
{
    char text[8192], jobs[6144];
    const char *p, *x;
    size_t o = 0;

    for (p = body; *p != '\0' && o + 1 < sizeof jobs; p++) {
        if (p[0] == '$' && p[1] == 'P') {
            o += (size_t)snprintf(jobs + o, sizeof jobs - o, "%s",
                                  plugin_dir);
            p++;
        } else {
            jobs[o++] = *p;
        }
    }
    jobs[o] = '\0';
    snprintf(t->cfg, sizeof t->cfg, "%s/drover.yaml", t->dir);
    x = worker_extra != NULL ? worker_extra : "";
    snprintf(text, sizeof text,
             "redis:\n  url: %s\n  prefix: t\n"
             "worker:\n%s  visibility_timeout: 3s\n%s%s",
             srv.url,
             strstr(x, "shutdown_timeout") ? "" : "  shutdown_timeout: 5s\n",
             x, jobs);
    assert_int_equal(drv_test_write_file(t->cfg, text), 0);
}

static void
start_worker(struct ht *t)
{
    char bin[300];
    const char *argv[6];

    drv_test_bin("droverd", bin, sizeof bin);
    snprintf(t->log, sizeof t->log, "%s/droverd%d.log", t->dir,
             t->nstarted++);
    argv[0] = bin;
    argv[1] = "-c";
    argv[2] = t->cfg;
    argv[3] = "--log-level";
    argv[4] = "debug";
    argv[5] = NULL;
    assert_int_equal(drv_test_spawn(&t->w, argv, t->log, NULL), 0);
}

static void
stop_worker(struct ht *t, int want_exit)
{
    int rc;

    drv_test_kill(&t->w, SIGTERM);
    rc = drv_test_wait(&t->w, WAIT_MS);
    if (rc != want_exit) {
        dump_log(t);
        fail_msg("droverd exit %d, wanted %d", rc, want_exit);
    }
    t->w.pid = 0;
}

/* XADD to queue default: NULL-terminated field, value list; the entry id
 * into id (may be NULL). */
static void
xadd(struct ht *t, char *id, size_t idn, ...)
{
    const char *argv[64];
    size_t lens[64];
    const char *s;
    int argc = 0, i;
    va_list ap;
    redisReply *r;

    argv[argc++] = "XADD";
    argv[argc++] = "t:{default}:jobs";
    argv[argc++] = "*";
    va_start(ap, idn);
    while ((s = va_arg(ap, const char *)) != NULL && argc < 64)
        argv[argc++] = s;
    va_end(ap);
    for (i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    r = redisCommandArgv(t->c, argc, argv, lens);
    assert_non_null(r);
    if (r->type != REDIS_REPLY_STRING)
        fail_msg("XADD failed: %s", r->str ? r->str : "?");
    if (id != NULL)
        snprintf(id, idn, "%s", r->str);
    freeReplyObject(r);
}

static long long
num(struct ht *t, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    long long v = 0;

    va_start(ap, fmt);
    r = redisvCommand(t->c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r->type == REDIS_REPLY_STRING)
        v = atoll(r->str);
    else if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
             r->element[0]->type == REDIS_REPLY_INTEGER)
        v = r->element[0]->integer; /* XPENDING summary: count */
    freeReplyObject(r);
    return v;
}

static long long
stat_of(struct ht *t, const char *name)
{
    return num(t, "HGET t:{default}:stats %s", name);
}

/* Wait until stat name reaches want (and check it is not above). */
static void
wait_stat(struct ht *t, const char *name, long long want)
{
    int64_t deadline = drv_test_now_ms() + WAIT_MS;
    long long v = 0;

    while (drv_test_now_ms() < deadline) {
        v = stat_of(t, name);
        if (v >= want)
            break;
        drv_test_sleep_ms(20);
    }
    if (v != want) {
        dump_log(t);
        fail_msg("stat %s is %lld, wanted %lld", name, v, want);
    }
}

/* Wait until processed + dead reaches want. */
static void
wait_settled(struct ht *t, long long want)
{
    int64_t deadline = drv_test_now_ms() + WAIT_MS;

    while (drv_test_now_ms() < deadline) {
        if (stat_of(t, "processed") + stat_of(t, "dead") >= want)
            return;
        drv_test_sleep_ms(20);
    }
    dump_log(t);
    fail_msg("fewer than %lld jobs settled", want);
}

static void
wait_pending(struct ht *t, long long want)
{
    int64_t deadline = drv_test_now_ms() + WAIT_MS;
    long long v = 0;

    while (drv_test_now_ms() < deadline) {
        v = num(t, "XPENDING t:{default}:jobs drover");
        if (v >= want)
            return;
        drv_test_sleep_ms(10);
    }
    dump_log(t);
    fail_msg("pending is %lld, wanted %lld", v, want);
}

/* Wait until droverd's log contains needle. */
static void
wait_log(struct ht *t, const char *needle)
{
    int64_t deadline = drv_test_now_ms() + WAIT_MS;

    while (drv_test_now_ms() < deadline) {
        if (drv_test_file_contains(t->log, needle))
            return;
        drv_test_sleep_ms(20);
    }
    dump_log(t);
    fail_msg("log never said \"%s\"", needle);
}

static char *
hget(struct ht *t, const char *key, const char *field)
{
    redisReply *r = redisCommand(t->c, "HGET %s %s", key, field);
    char *v = (r && r->type == REDIS_REPLY_STRING) ? strdup(r->str) : NULL;

    freeReplyObject(r);
    return v;
}

static void
assert_result(struct ht *t, const char *id, const char *field,
              const char *want)
{
    char key[160];
    char *v;

    snprintf(key, sizeof key, "t:{default}:result:%s", id);
    v = hget(t, key, field);
    if (v == NULL || strcmp(v, want) != 0) {
        dump_log(t);
        fail_msg("%s %s is \"%s\", wanted \"%s\"", key, field,
                 v ? v : "(nil)", want);
    }
    free(v);
}

static long long
result_num(struct ht *t, const char *id, const char *field)
{
    char key[160];
    char *v;
    long long n;

    snprintf(key, sizeof key, "t:{default}:result:%s", id);
    v = hget(t, key, field);
    assert_non_null(v);
    n = atoll(v);
    free(v);
    return n;
}

/* The dead entry whose id field is id: field name into out ("" if none). */
static void
dead_field(struct ht *t, const char *id, const char *name, char *out,
           size_t n)
{
    redisReply *r = redisCommand(t->c, "XRANGE t:{default}:dead - +");
    size_t i, k;

    out[0] = '\0';
    assert_non_null(r);
    for (i = 0; i < r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        const char *val = NULL;
        int match = 0;

        for (k = 0; k + 1 < f->elements; k += 2) {
            if (strcmp(f->element[k]->str, "id") == 0 &&
                strcmp(f->element[k + 1]->str, id) == 0)
                match = 1;
            if (strcmp(f->element[k]->str, name) == 0)
                val = f->element[k + 1]->str;
        }
        if (match && val != NULL)
            snprintf(out, n, "%s", val);
    }
    freeReplyObject(r);
}

/* ------------------------------------------------------------- tests */

static void
test_plugin_handler_both_modes_return_results_and_fail(void **st)
{
    struct ht *t = *st;
    char link[400], a_ok[64], a_bad[64], a_fail[64], b_ok[64], b_perm[64];
    char v[1024];

    /* the async type names its library relative to the config's dir */
    snprintf(link, sizeof link, "%s/plugins", t->dir);
    assert_int_equal(symlink(plugin_dir, link), 0);
    write_config(t, "",
                 "queues: [default]\n"
                 "jobs:\n"
                 "  a:\n    handler: plugin\n"
                 "    library: plugins/libexample.so\n"
                 "    symbol: example_async\n"
                 "    retries: 1\n    backoff: 10ms\n    result_ttl: 1m\n"
                 "  b:\n    handler: plugin\n"
                 "    library: $P/libexample.so\n"
                 "    symbol: example_blocking\n    blocking: true\n"
                 "    retries: 1\n    backoff: 10ms\n    result_ttl: 1m\n");
    start_worker(t);
    xadd(t, a_ok, sizeof a_ok, "job", "a", "ms", "50", "echo", "hi there",
         NULL);
    xadd(t, a_bad, sizeof a_bad, "job", "a", "ms", "abc", NULL);
    xadd(t, a_fail, sizeof a_fail, "job", "a", "fail", "boom", NULL);
    xadd(t, b_ok, sizeof b_ok, "job", "b", "data", "hello", "ms", "20",
         NULL);
    xadd(t, b_perm, sizeof b_perm, "job", "b", "fail", "no way",
         "permanent", "1", NULL);
    wait_stat(t, "processed", 2);
    wait_stat(t, "dead", 3);

    assert_result(t, a_ok, "status", "ok");
    assert_result(t, a_ok, "result", "hi there");
    assert_result(t, b_ok, "status", "ok");
    assert_result(t, b_ok, "result", "fnv1a64=a430d84680aabd0b");

    /* a bad field: dead at once, naming the field */
    dead_field(t, a_bad, "error", v, sizeof v);
    assert_non_null(strstr(v, "field ms: \"abc\""));
    dead_field(t, a_bad, "attempts", v, sizeof v);
    assert_string_equal(v, "1");
    /* a retried failure: both attempts made, the plugin's text kept */
    dead_field(t, a_fail, "error", v, sizeof v);
    assert_string_equal(v, "boom");
    dead_field(t, a_fail, "attempts", v, sizeof v);
    assert_string_equal(v, "2");
    /* permanent: dead at once */
    dead_field(t, b_perm, "error", v, sizeof v);
    assert_string_equal(v, "no way");
    dead_field(t, b_perm, "attempts", v, sizeof v);
    assert_string_equal(v, "1");
    assert_int_equal(stat_of(t, "retried"), 1);
    assert_true(drv_test_file_contains(t->log, "msg=\"example: ready for "
                                               "job type a\""));
    stop_worker(t, 0);
    /* shutdown ran for both types at the clean exit */
    assert_true(drv_test_file_contains(t->log, "example: job type a done"));
    assert_true(drv_test_file_contains(t->log, "example: job type b done"));
}

static void
test_plugin_handler_async_timeout_runs_cancel_hook(void **st)
{
    struct ht *t = *st;
    char id[64], v[1024];

    write_config(t, "",
                 "queues: [default]\n"
                 "jobs:\n"
                 "  a:\n    handler: plugin\n"
                 "    library: $P/libexample.so\n"
                 "    symbol: example_async\n"
                 "    timeout: 300ms\n    retries: 0\n");
    start_worker(t);
    xadd(t, id, sizeof id, "job", "a", "ms", "60000", NULL);
    wait_stat(t, "dead", 1);
    dead_field(t, id, "error", v, sizeof v);
    assert_string_equal(v, "timed out after 300 ms");
    assert_true(drv_test_file_contains(t->log, "example: cancelled while "
                                               "waiting 60000 ms"));
    assert_false(drv_test_file_contains(t->log, "missed cancel grace"));
    /* the worker still runs jobs of the type */
    xadd(t, NULL, 0, "job", "a", "ms", "1", NULL);
    wait_stat(t, "processed", 1);
    stop_worker(t, 0);
}

static void
test_plugin_handler_blocking_timeout_polls_cancelled(void **st)
{
    struct ht *t = *st;
    char id[64], id2[64], v[1024];

    write_config(t, "  threads: 1\n",
                 "queues: [default]\n"
                 "jobs:\n"
                 "  b:\n    handler: plugin\n"
                 "    library: $P/libexample.so\n"
                 "    symbol: example_blocking\n    blocking: true\n"
                 "    timeout: 300ms\n    retries: 0\n    result_ttl: 1m\n");
    start_worker(t);
    xadd(t, id, sizeof id, "job", "b", "ms", "60000", NULL);
    wait_stat(t, "dead", 1);
    dead_field(t, id, "error", v, sizeof v);
    assert_string_equal(v, "timed out after 300 ms");
    /* the thread saw cancelled() and returned long before its 60 s */
    wait_log(t, "example: stopped early: cancelled");
    /* its one thread is free again: the next job runs */
    xadd(t, id2, sizeof id2, "job", "b", "data", "hello", NULL);
    wait_stat(t, "processed", 1);
    assert_result(t, id2, "result", "fnv1a64=a430d84680aabd0b");
    stop_worker(t, 0);
}

static void
test_plugin_handler_blocking_ignoring_cancel_keeps_permit(void **st)
{
    struct ht *t = *st;
    char a[64], b[64], v[1024];
    long long failed_at, finished_at;

    /* one pool thread: B can only run once A's thread has returned */
    write_config(t, "  threads: 1\n",
                 "queues: [default]\n"
                 "jobs:\n"
                 "  b:\n    handler: plugin\n"
                 "    library: $P/libexample.so\n"
                 "    symbol: example_blocking\n    blocking: true\n"
                 "    timeout: 300ms\n    retries: 0\n    result_ttl: 1m\n");
    start_worker(t);
    xadd(t, a, sizeof a, "job", "b", "ms", "1500", "ignore_cancel", "1",
         NULL);
    wait_pending(t, 1);
    xadd(t, b, sizeof b, "job", "b", "data", "hello", NULL);
    wait_settled(t, 2);
    /* had A's abandoned thread given its permit back, B would have been
     * handed to the (busy) pool at once and timed out waiting there */
    dead_field(t, b, "error", v, sizeof v);
    if (v[0] != '\0') {
        dump_log(t);
        fail_msg("B is dead (\"%s\"): A's abandoned thread did not keep "
                 "its permit until run() returned", v);
    }
    wait_stat(t, "dead", 1);
    wait_stat(t, "processed", 1);
    dead_field(t, a, "error", v, sizeof v);
    assert_string_equal(v, "timed out after 300 ms");
    dead_field(t, a, "failed_at", v, sizeof v);
    failed_at = atoll(v);
    assert_result(t, b, "result", "fnv1a64=a430d84680aabd0b");
    finished_at = result_num(t, b, "finished_at");
    /* A failed at ~300 ms but its thread ran to ~1500 ms, holding the
     * permit: B finished after that (a lower bound, not a speed check) */
    if (finished_at < failed_at + 1000) {
        dump_log(t);
        fail_msg("B finished %lld ms after A failed: A's thread permit was "
                 "not held until its run() returned",
                 finished_at - failed_at);
    }
    assert_true(drv_test_file_contains(t->log, "example: uninterruptible "
                                               "work returned"));
    assert_true(drv_test_file_contains(t->log, "late completion ignored"));
    stop_worker(t, 0);
}

static void
test_plugin_handler_graceful_stop_requeues_running(void **st)
{
    struct ht *t = *st;
    redisReply *r;
    size_t i, k;
    int with_id = 0;

    write_config(t, "  threads: 2\n  shutdown_timeout: 300ms\n",
                 "queues: [default]\n"
                 "jobs:\n"
                 "  a:\n    handler: plugin\n"
                 "    library: $P/libexample.so\n"
                 "    symbol: example_async\n"
                 "  b:\n    handler: plugin\n"
                 "    library: $P/libexample.so\n"
                 "    symbol: example_blocking\n    blocking: true\n");
    start_worker(t);
    xadd(t, NULL, 0, "job", "a", "ms", "60000", NULL);
    xadd(t, NULL, 0, "job", "b", "ms", "60000", NULL);
    wait_pending(t, 2);
    /* both really running (the async one has armed its timer) */
    drv_test_sleep_ms(100);
    stop_worker(t, 0);
    assert_int_equal(num(t, "XLEN t:{default}:jobs"), 2);
    assert_int_equal(num(t, "XPENDING t:{default}:jobs drover"), 0);
    assert_int_equal(stat_of(t, "processed"), 0);
    assert_int_equal(stat_of(t, "failed"), 0);
    assert_true(drv_test_file_contains(t->log, "example: cancelled while "
                                               "waiting 60000 ms"));
    r = redisCommand(t->c, "XRANGE t:{default}:jobs - +");
    assert_non_null(r);
    for (i = 0; i < r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        for (k = 0; k + 1 < f->elements; k += 2) {
            assert_string_not_equal(f->element[k]->str, "attempt");
            if (strcmp(f->element[k]->str, "id") == 0)
                with_id++;
        }
    }
    freeReplyObject(r);
    assert_int_equal(with_id, 2);
}

static void
test_plugin_handler_plugin_ignoring_cancel_is_force_finished(void **st)
{
    struct ht *t = *st;
    char id[64], v[1024];

    write_config(t, "",
                 "queues: [default]\n"
                 "jobs:\n"
                 "  deaf:\n    handler: plugin\n"
                 "    library: $P/libbadabi.so\n"
                 "    symbol: bad_cancel\n"
                 "    timeout: 200ms\n    retries: 0\n"
                 "  a:\n    handler: plugin\n"
                 "    library: $P/libexample.so\n"
                 "    symbol: example_async\n");
    start_worker(t);
    xadd(t, id, sizeof id, "job", "deaf", NULL);
    /* the task group's cancel grace (5 s) ends it without the plugin */
    wait_stat(t, "dead", 1);
    dead_field(t, id, "error", v, sizeof v);
    assert_string_equal(v, "timed out after 200 ms");
    wait_log(t, "plugin never called done; job view kept until exit");
    /* the worker is fine: other plugin jobs run, and it stops cleanly
     * (the parked view is freed at unload: ASan would see a leak) */
    xadd(t, NULL, 0, "job", "a", "echo", "still here", NULL);
    wait_stat(t, "processed", 1);
    stop_worker(t, 0);
}

/* droverd on body must exit 2 and its log name every needle. */
static void
expect_exit_2(struct ht *t, const char *body, const char *const *needles)
{
    int rc, i;

    write_config(t, "", body);
    start_worker(t);
    rc = drv_test_wait(&t->w, WAIT_MS);
    t->w.pid = 0;
    if (rc != 2) {
        dump_log(t);
        fail_msg("droverd exit %d, wanted 2", rc);
    }
    for (i = 0; needles[i] != NULL; i++)
        if (!drv_test_file_contains(t->log, needles[i])) {
            dump_log(t);
            fail_msg("droverd's error lacks \"%s\"", needles[i]);
        }
}

static void
test_plugin_handler_bad_plugin_config_exits_2(void **st)
{
    struct ht *t = *st;
    char lib[4200], sym[4300];
    const char *missing[] = {"jobs.x: cannot load /nonexistent/libnope.so: ",
                             "No such file", NULL};
    const char *nosym[] = {sym, NULL};
    const char *abi[] = {"jobs.x: bad_abi in ", "libbadabi.so",
                         "handler ABI version 99", NULL};
    const char *mode[] = {"jobs.x: example_async in ",
                          "blocking: true needs a run function", NULL};
    const char *init[] = {"jobs.x: bad_init in ", "init failed: ",
                          "BADINIT_HOME is not set", NULL};

    snprintf(lib, sizeof lib, "%s/libexample.so", plugin_dir);
    snprintf(sym, sizeof sym, "jobs.x: symbol crunch not found in %s", lib);
    expect_exit_2(t,
                  "queues: [default]\njobs:\n  x:\n    handler: plugin\n"
                  "    library: /nonexistent/libnope.so\n"
                  "    symbol: crunch\n", missing);
    expect_exit_2(t,
                  "queues: [default]\njobs:\n  x:\n    handler: plugin\n"
                  "    library: $P/libexample.so\n"
                  "    symbol: crunch\n", nosym);
    expect_exit_2(t,
                  "queues: [default]\njobs:\n  x:\n    handler: plugin\n"
                  "    library: $P/libbadabi.so\n"
                  "    symbol: bad_abi\n", abi);
    expect_exit_2(t,
                  "queues: [default]\njobs:\n  x:\n    handler: plugin\n"
                  "    library: $P/libexample.so\n"
                  "    symbol: example_async\n    blocking: true\n", mode);
    expect_exit_2(t,
                  "queues: [default]\njobs:\n"
                  "  ok:\n    handler: plugin\n"
                  "    library: $P/libexample.so\n"
                  "    symbol: example_async\n"
                  "  x:\n    handler: plugin\n"
                  "    library: $P/libbadabi.so\n"
                  "    symbol: bad_init\n", init);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_plugin_handler_both_modes_return_results_and_fail),
        T(test_plugin_handler_async_timeout_runs_cancel_hook),
        T(test_plugin_handler_blocking_timeout_polls_cancelled),
        T(test_plugin_handler_blocking_ignoring_cancel_keeps_permit),
        T(test_plugin_handler_graceful_stop_requeues_running),
        T(test_plugin_handler_plugin_ignoring_cancel_is_force_finished),
        T(test_plugin_handler_bad_plugin_config_exits_2),
    };
#undef T

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
