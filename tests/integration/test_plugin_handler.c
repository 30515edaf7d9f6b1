/*
 * test_plugin_handler.c -- `handler: plugin` end to end: real droverd
 * processes running the reference plugin (libexample.so from
 * $DROVER_PLUGIN_DIR) against a real redis-server. Both modes return
 * results and fail as asked; timeouts reach the plugin (async: its cancel
 * hook; blocking: host->cancelled); a blocking job that ignores its
 * cancellation keeps its thread permit until it returns; a graceful stop
 * requeues running plugin jobs; a plugin that ignores cancel is
 * force-finished without harm; a bad plugin config exits 2 naming the
 * library and symbol. Waits poll Redis, the log or the fixture's
 * start trace with generous deadlines (hang guards, never speed checks).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "droverd.h"

static char plugin_dir[4096];     /* absolute $DROVER_PLUGIN_DIR */

/* worker defaults unless a test's worker keys name them */
static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-ph",
    .prefix = "t",
    .log_level = "debug",
    .worker_defaults = "  shutdown_timeout: 5s\n  visibility_timeout: 3s\n",
    .body_head = NULL,
    .tail_lines = 60,
};

static int
group_setup(void **st)
{
    const char *d = getenv("DROVER_PLUGIN_DIR");

    if (realpath(d != NULL ? d : "build/release/plugins", plugin_dir) ==
        NULL) {
        fprintf(stderr, "test_plugin_handler: no plugin dir "
                "(DROVER_PLUGIN_DIR)\n");
        return -1;
    }
    return drv_test_redis_group_setup(st);
}

/* The config (drv_test_droverd_config) with $P in body standing for the
 * plugin dir. */
static void
write_config(struct drv_test_droverd *t, const char *worker_extra,
             const char *body)
{
    char jobs[6144];
    const char *p;
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
    drv_test_droverd_config(t, worker_extra, jobs);
}

/* Wait until processed + dead reaches want. */
static void
wait_settled(struct drv_test_droverd *t, long long want)
{
    wait_until_num(drv_test_stat(t, "default", "processed") +
                       drv_test_stat(t, "default", "dead"),
                   >=, want, "jobs settled (processed + dead)");
}

static void
assert_result(struct drv_test_droverd *t, const char *id, const char *field,
              const char *want)
{
    char *v = drv_test_result(t, "default", id, field);

    if (v == NULL || strcmp(v, want) != 0) {
        drv_test_dump_log(t, t->log);
        fail_msg("t:{default}:result:%s %s is \"%s\", wanted \"%s\"", id,
                 field, v ? v : "(nil)", want);
    }
    free(v);
}

static long long
result_num(struct drv_test_droverd *t, const char *id, const char *field)
{
    char *v = drv_test_result(t, "default", id, field);
    long long n;

    assert_non_null(v);
    n = atoll(v);
    free(v);
    return n;
}

/* ------------------------------------------------------------- tests */

static void
test_plugin_handler_both_modes_return_results_and_fail(void **st)
{
    struct drv_test_droverd *t = *st;
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
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", a_ok, sizeof a_ok, "job", "a", "ms", "50",
                  "echo", "hi there", NULL);
    drv_test_xadd(t, "default", a_bad, sizeof a_bad, "job", "a", "ms", "abc",
                  NULL);
    drv_test_xadd(t, "default", a_fail, sizeof a_fail, "job", "a", "fail",
                  "boom", NULL);
    drv_test_xadd(t, "default", b_ok, sizeof b_ok, "job", "b", "data", "hello",
                  "ms", "20", NULL);
    drv_test_xadd(t, "default", b_perm, sizeof b_perm, "job", "b", "fail",
                  "no way", "permanent", "1", NULL);
    drv_test_wait_stat(t, "default", "processed", 2);
    drv_test_wait_stat(t, "default", "dead", 3);

    assert_result(t, a_ok, "status", "ok");
    assert_result(t, a_ok, "result", "hi there");
    assert_result(t, b_ok, "status", "ok");
    assert_result(t, b_ok, "result", "fnv1a64=a430d84680aabd0b");

    /* a bad field: dead at once, naming the field */
    drv_test_dead_field(t, "default", "id", a_bad, "error", v, sizeof v);
    assert_non_null(strstr(v, "field ms: \"abc\""));
    drv_test_dead_field(t, "default", "id", a_bad, "attempts", v, sizeof v);
    assert_string_equal(v, "1");
    /* a retried failure: both attempts made, the plugin's text kept */
    drv_test_dead_field(t, "default", "id", a_fail, "error", v, sizeof v);
    assert_string_equal(v, "boom");
    drv_test_dead_field(t, "default", "id", a_fail, "attempts", v, sizeof v);
    assert_string_equal(v, "2");
    /* permanent: dead at once */
    drv_test_dead_field(t, "default", "id", b_perm, "error", v, sizeof v);
    assert_string_equal(v, "no way");
    drv_test_dead_field(t, "default", "id", b_perm, "attempts", v, sizeof v);
    assert_string_equal(v, "1");
    assert_int_equal(drv_test_stat(t, "default", "retried"), 1);
    assert_true(drv_test_file_contains(t->log, "msg=\"example: ready for "
                                               "job type a\""));
    drv_test_droverd_stop(t, 0, 0);
    /* shutdown ran for both types at the clean exit */
    assert_true(drv_test_file_contains(t->log, "example: job type a done"));
    assert_true(drv_test_file_contains(t->log, "example: job type b done"));
}

static void
test_plugin_handler_async_timeout_runs_cancel_hook(void **st)
{
    struct drv_test_droverd *t = *st;
    char id[64], v[1024];

    write_config(t, "",
                 "queues: [default]\n"
                 "jobs:\n"
                 "  a:\n    handler: plugin\n"
                 "    library: $P/libexample.so\n"
                 "    symbol: example_async\n"
                 "    timeout: 300ms\n    retries: 0\n");
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", id, sizeof id, "job", "a", "ms", "60000", NULL);
    drv_test_wait_stat(t, "default", "dead", 1);
    drv_test_dead_field(t, "default", "id", id, "error", v, sizeof v);
    assert_string_equal(v, "timed out after 300 ms");
    assert_true(drv_test_file_contains(t->log, "example: cancelled while "
                                               "waiting 60000 ms"));
    assert_false(drv_test_file_contains(t->log, "missed cancel grace"));
    /* the worker still runs jobs of the type */
    drv_test_xadd(t, "default", NULL, 0, "job", "a", "ms", "1", NULL);
    drv_test_wait_stat(t, "default", "processed", 1);
    drv_test_droverd_stop(t, 0, 0);
}

static void
test_plugin_handler_blocking_timeout_polls_cancelled(void **st)
{
    struct drv_test_droverd *t = *st;
    char id[64], id2[64], v[1024];

    write_config(t, "  threads: 1\n",
                 "queues: [default]\n"
                 "jobs:\n"
                 "  b:\n    handler: plugin\n"
                 "    library: $P/libexample.so\n"
                 "    symbol: example_blocking\n    blocking: true\n"
                 "    timeout: 300ms\n    retries: 0\n    result_ttl: 1m\n");
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", id, sizeof id, "job", "b", "ms", "60000", NULL);
    drv_test_wait_stat(t, "default", "dead", 1);
    drv_test_dead_field(t, "default", "id", id, "error", v, sizeof v);
    assert_string_equal(v, "timed out after 300 ms");
    /* the thread saw cancelled() and returned long before its 60 s */
    drv_test_wait_log(t, "example: stopped early: cancelled", 1);
    /* its one thread is free again: the next job runs */
    drv_test_xadd(t, "default", id2, sizeof id2, "job", "b", "data", "hello",
                  NULL);
    drv_test_wait_stat(t, "default", "processed", 1);
    assert_result(t, id2, "result", "fnv1a64=a430d84680aabd0b");
    drv_test_droverd_stop(t, 0, 0);
}

static void
test_plugin_handler_blocking_ignoring_cancel_keeps_permit(void **st)
{
    struct drv_test_droverd *t = *st;
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
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", a, sizeof a, "job", "b", "ms", "1500",
                  "ignore_cancel", "1", NULL);
    drv_test_wait_pending(t, "default", 1);
    drv_test_xadd(t, "default", b, sizeof b, "job", "b", "data", "hello", NULL);
    wait_settled(t, 2);
    /* had A's abandoned thread given its permit back, B would have been
     * handed to the (busy) pool at once and timed out waiting there */
    drv_test_dead_field(t, "default", "id", b, "error", v, sizeof v);
    if (v[0] != '\0') {
        drv_test_dump_log(t, t->log);
        fail_msg("B is dead (\"%s\"): A's abandoned thread did not keep "
                 "its permit until run() returned", v);
    }
    drv_test_wait_stat(t, "default", "dead", 1);
    drv_test_wait_stat(t, "default", "processed", 1);
    drv_test_dead_field(t, "default", "id", a, "error", v, sizeof v);
    assert_string_equal(v, "timed out after 300 ms");
    drv_test_dead_field(t, "default", "id", a, "failed_at", v, sizeof v);
    failed_at = atoll(v);
    assert_result(t, b, "result", "fnv1a64=a430d84680aabd0b");
    finished_at = result_num(t, b, "finished_at");
    /* A failed at ~300 ms but its thread ran to ~1500 ms, holding the
     * permit: B finished after that (a lower bound, not a speed check) */
    if (finished_at < failed_at + 1000) {
        drv_test_dump_log(t, t->log);
        fail_msg("B finished %lld ms after A failed: A's thread permit was "
                 "not held until its run() returned",
                 finished_at - failed_at);
    }
    assert_true(drv_test_file_contains(t->log, "example: uninterruptible "
                                               "work returned"));
    assert_true(drv_test_file_contains(t->log, "late completion ignored"));
    drv_test_droverd_stop(t, 0, 0);
}

static void
test_plugin_handler_graceful_stop_requeues_running(void **st)
{
    struct drv_test_droverd *t = *st;

    write_config(t, "  threads: 2\n  shutdown_timeout: 300ms\n",
                 "queues: [default]\n"
                 "jobs:\n"
                 "  a:\n    handler: plugin\n"
                 "    library: $P/libexample.so\n"
                 "    symbol: example_async\n"
                 "  b:\n    handler: plugin\n"
                 "    library: $P/libexample.so\n"
                 "    symbol: example_blocking\n    blocking: true\n");
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "job", "a", "ms", "60000", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "b", "ms", "60000", NULL);
    drv_test_wait_pending(t, "default", 2);
    /* both really running (the async one has armed its timer) */
    drv_test_wait_started(t, 2);
    drv_test_droverd_stop(t, 0, 0);
    assert_int_equal(drv_test_given_back(t, "default", 2), 2);
    assert_true(drv_test_file_contains(t->log, "example: cancelled while "
                                               "waiting 60000 ms"));
}

static void
test_plugin_handler_plugin_ignoring_cancel_is_force_finished(void **st)
{
    struct drv_test_droverd *t = *st;
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
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", id, sizeof id, "job", "deaf", NULL);
    /* the task group's cancel grace (5 s) ends it without the plugin */
    drv_test_wait_stat(t, "default", "dead", 1);
    drv_test_dead_field(t, "default", "id", id, "error", v, sizeof v);
    assert_string_equal(v, "timed out after 200 ms");
    drv_test_wait_log(t, "plugin never called done; job view kept until exit",
                      1);
    /* the worker is fine: other plugin jobs run, and it stops cleanly
     * (the parked view is freed at unload: ASan would see a leak) */
    drv_test_xadd(t, "default", NULL, 0, "job", "a", "echo", "still here",
                  NULL);
    drv_test_wait_stat(t, "default", "processed", 1);
    drv_test_droverd_stop(t, 0, 0);
}

/* droverd on body must exit 2 and its log name every needle. */
static void
expect_exit_2(struct drv_test_droverd *t, const char *body,
              const char *const *needles)
{
    int rc, i;

    write_config(t, "", body);
    drv_test_droverd_start(t, 0);
    rc = drv_test_wait(&t->w[0], DRV_TEST_WAIT_MS);
    t->w[0].pid = 0;
    if (rc != 2) {
        drv_test_dump_log(t, t->log);
        fail_msg("droverd exit %d, wanted 2", rc);
    }
    for (i = 0; needles[i] != NULL; i++)
        if (!drv_test_file_contains(t->log, needles[i])) {
            drv_test_dump_log(t, t->log);
            fail_msg("droverd's error lacks \"%s\"", needles[i]);
        }
}

static void
test_plugin_handler_bad_plugin_config_exits_2(void **st)
{
    struct drv_test_droverd *t = *st;
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
    const struct CMUnitTest tests[] = {
        TD(test_plugin_handler_both_modes_return_results_and_fail),
        TD(test_plugin_handler_async_timeout_runs_cancel_hook),
        TD(test_plugin_handler_blocking_timeout_polls_cancelled),
        TD(test_plugin_handler_blocking_ignoring_cancel_keeps_permit),
        TD(test_plugin_handler_graceful_stop_requeues_running),
        TD(test_plugin_handler_plugin_ignoring_cancel_is_force_finished),
        TD(test_plugin_handler_bad_plugin_config_exits_2),
    };
#undef T

    drv_test_droverd_fixture = &opts;
    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, group_setup,
                                  drv_test_redis_group_teardown);
}
