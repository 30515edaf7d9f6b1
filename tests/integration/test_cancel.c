/*
 * test_cancel.c -- drover cancel, drover wait and job progress against
 * real droverd processes and a real redis-server.
 *
 * Cancel: a waiting and a delayed job are removed and never start; a
 * running exec job's child is killed (its pid, which it wrote, is gone)
 * on whichever of two droverd runs it, and the job is not retried; a
 * plugin job's cancel hook ends it and a blocking (pool) plugin job sees
 * the flag; the result hash says cancelled and stats count it; exit 0
 * when found, 1 when not. Wait: exit 0 for ok, 1 for dead and for a
 * timeout; every path to dead keeps a result that wait returns at once. Progress: an exec child's and a plugin's progress are in the
 * result hash (and drover result) while the job runs.
 *
 * Every wait polls something observable (wait_until); nothing asserts a
 * duration.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "droverd.h"

static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-cancel",
    .prefix = "t",
    .log_level = "debug",
    .worker_defaults = "  shutdown_timeout: 5s\n  visibility_timeout: 30s\n",
    .body_head = NULL,
    .tail_lines = 60,
};

static char plugin_dir[4096]; /* absolute $DROVER_PLUGIN_DIR */

/* drover -c CFG ARGS... must exit with want; its stdout is returned
 * (caller frees). */
#define CLI_EXIT(t, want, ...)                                            \
    ({                                                                    \
        const char *const a_[] = {__VA_ARGS__, NULL};                     \
        drv_test_cli_out((t)->dir, (t)->cfg, (want), a_);                 \
    })

static void
config(struct drv_test_droverd *t, const char *worker_extra)
{
    char body[16384];

    snprintf(body, sizeof body,
             "queues: [default]\n"
             "jobs:\n"
             "  long:\n    handler: exec\n    retries: 3\n"
             "    backoff: 10ms\n    kill_grace: 200ms\n"
             "    result_ttl: 1h\n"
             "    command: [sh, -c, \"echo $$ > %s/pid.tmp && "
             "mv %s/pid.tmp %s/pid; exec sleep 1000\"]\n"
             "  quick:\n    handler: echo\n    result_ttl: 1h\n"
             "  bad:\n    handler: fail\n    retries: 0\n"
             "    result_ttl: 1h\n"
             "  async:\n    handler: plugin\n"
             "    library: %s/libexample.so\n"
             "    symbol: example_async\n    retries: 3\n"
             "    result_ttl: 1h\n"
             "  pooled:\n    handler: plugin\n"
             "    library: %s/libexample.so\n"
             "    symbol: example_blocking\n    blocking: true\n"
             "    retries: 3\n    result_ttl: 1h\n"
             "  prog:\n    handler: exec\n    kill_grace: 200ms\n"
             "    command: [sh, -c, \"echo '42 half way' >&$DROVER_PROGRESS_FD"
             " && echo $$ > %s/ppid.tmp && mv %s/ppid.tmp %s/ppid; "
             "exec sleep 1000\"]\n"
             "  old:\n    handler: plugin\n"
             "    library: %s/liboldminor.so\n"
             "    symbol: oldminor_async\n    result_ttl: 1h\n",
             t->dir, t->dir, t->dir, plugin_dir, plugin_dir, t->dir, t->dir,
             t->dir, plugin_dir);
    drv_test_droverd_config(t, worker_extra, body);
}

/* ------------------------------------------------------------- cancel */

static void
test_cancel_waiting_and_delayed(void **st)
{
    struct drv_test_droverd *t = *st;
    char *o;

    config(t, NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "quick", "id", "w1", NULL);
    o = CLI_EXIT(t, 0, "enqueue", "default", "quick", "--delay", "1h",
                 "--id", "d1");
    free(o);
    assert_int_equal(drv_test_num(t, "ZCARD t:{default}:delayed"), 1);

    o = CLI_EXIT(t, 0, "cancel", "default", "w1");
    assert_non_null(strstr(o, "1 waiting"));
    free(o);
    assert_int_equal(drv_test_num(t, "XLEN t:{default}:jobs"), 0);
    drv_test_expect_result(t, "default", "w1", "status", "cancelled");

    o = CLI_EXIT(t, 0, "cancel", "default", "d1", "--json");
    assert_non_null(strstr(o, "\"delayed\":1"));
    assert_non_null(strstr(o, "\"found\":true"));
    free(o);
    assert_int_equal(drv_test_num(t, "ZCARD t:{default}:delayed"), 0);
    assert_int_equal(drv_test_num(t, "EXISTS t:{default}:job:d1"), 0);
    drv_test_expect_result(t, "default", "d1", "status", "cancelled");
    assert_int_equal(drv_test_stat(t, "default", "cancelled"), 2);

    /* nothing unfinished has these ids any more */
    free(CLI_EXIT(t, 1, "cancel", "default", "w1"));
    free(CLI_EXIT(t, 1, "cancel", "default", "nope"));
    o = CLI_EXIT(t, 0, "stats", "--json");
    assert_non_null(strstr(o, "\"cancelled\":2"));
    free(o);

    /* a worker started now runs the next job only: the cancelled ones
     * never start */
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "job", "quick", "id", "after",
                  NULL);
    drv_test_wait_stat(t, "default", "processed", 1);
    drv_test_expect_result(t, "default", "after", "status", "ok");
    drv_test_wait_started(t, 1);
    assert_int_equal(drv_test_started(t), 1);
    drv_test_droverd_stop(t, 0, 0);
}

/* A running exec job, two workers: its child dies, it is not retried. */
static void
test_cancel_running_exec(void **st)
{
    struct drv_test_droverd *t = *st;
    long pid;
    char *o;

    config(t, NULL);
    drv_test_droverd_start(t, 0);
    drv_test_droverd_start(t, 1);
    drv_test_xadd(t, "default", NULL, 0, "job", "long", "id", "r1", NULL);
    pid = drv_test_wait_file_num(t->dir, "pid");
    assert_true(pid > 1);
    assert_int_equal(kill((pid_t)pid, 0), 0);

    o = CLI_EXIT(t, 0, "cancel", "default", "r1");
    assert_non_null(strstr(o, "1 running"));
    free(o);
    wait_until(kill((pid_t)pid, 0) < 0 && errno == ESRCH,
               "the child %ld to be gone", pid);
    drv_test_wait_stat(t, "default", "cancelled", 1);
    drv_test_expect_result(t, "default", "r1", "status", "cancelled");
    assert_int_equal(drv_test_num(t, "XLEN t:{default}:jobs"), 0);
    assert_int_equal(drv_test_num(t, "ZCARD t:{default}:delayed"), 0);
    assert_int_equal(drv_test_num(t, "XLEN t:{default}:dead"), 0);
    assert_int_equal(drv_test_num(t, "ZCARD t:{default}:cancel"), 0);
    assert_int_equal(drv_test_stat(t, "default", "retried"), 0);
    /* and it never ran again: one start over both workers */
    drv_test_xadd(t, "default", NULL, 0, "job", "quick", "id", "q", NULL);
    drv_test_wait_stat(t, "default", "processed", 1);
    drv_test_wait_started(t, 2);
    assert_int_equal(drv_test_started(t), 2);
    free(CLI_EXIT(t, 1, "cancel", "default", "r1"));
    drv_test_droverd_stop(t, 0, 0);
    drv_test_droverd_stop(t, 1, 0);
}

/* Plugin jobs: the async one's cancel hook ends it, the pool one polls
 * the flag; neither is retried. */
static void
test_cancel_running_plugin(void **st)
{
    struct drv_test_droverd *t = *st;

    config(t, NULL);
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "job", "async", "id", "pa", "ms",
                  "3600000", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "pooled", "id", "pb", "ms",
                  "3600000", NULL);
    drv_test_wait_started(t, 2);
    free(CLI_EXIT(t, 0, "cancel", "default", "pa"));
    free(CLI_EXIT(t, 0, "cancel", "default", "pb"));
    drv_test_wait_stat(t, "default", "cancelled", 2);
    drv_test_expect_result(t, "default", "pa", "status", "cancelled");
    drv_test_expect_result(t, "default", "pb", "status", "cancelled");
    assert_int_equal(drv_test_num(t, "XLEN t:{default}:jobs"), 0);
    assert_int_equal(drv_test_num(t, "ZCARD t:{default}:delayed"), 0);
    assert_int_equal(drv_test_stat(t, "default", "retried"), 0);
    /* the pool thread ended too: the worker stops cleanly at once */
    drv_test_droverd_stop(t, 0, 0);
    assert_int_equal(drv_test_started(t), 2);
}

/* A marker that comes while the outcome is on its way: the settle
 * script turns the retry into the cancel. Simulated exactly: the entry
 * is delivered to a consumer that is no worker, marked, then a droverd
 * reclaims it (its check finds the marker). */
static void
test_cancel_reclaimed_entry(void **st)
{
    struct drv_test_droverd *t = *st;
    char *o;

    config(t, "  visibility_timeout: 1s\n");
    drv_test_xadd(t, "default", NULL, 0, "job", "long", "id", "gone", NULL);
    freeReplyObject(redisCommand(t->c, "XGROUP CREATE t:{default}:jobs "
                                 "drover 0 MKSTREAM"));
    freeReplyObject(redisCommand(t->c, "XREADGROUP GROUP drover ghost "
                                 "COUNT 1 STREAMS t:{default}:jobs >"));
    o = CLI_EXIT(t, 0, "cancel", "default", "gone");
    assert_non_null(strstr(o, "1 running"));
    free(o);
    assert_int_equal(drv_test_num(t, "ZCARD t:{default}:cancel"), 1);
    /* the owner died: a worker reclaims it after visibility_timeout and
     * sees the marker (before or after starting it) */
    drv_test_droverd_start(t, 0);
    drv_test_wait_stat(t, "default", "cancelled", 1);
    drv_test_expect_result(t, "default", "gone", "status", "cancelled");
    assert_int_equal(drv_test_num(t, "ZCARD t:{default}:cancel"), 0);
    assert_int_equal(drv_test_num(t, "XLEN t:{default}:jobs"), 0);
    drv_test_droverd_stop(t, 0, 0);
}

/* --------------------------------------------------------------- wait */

static void
test_wait_exit_codes(void **st)
{
    struct drv_test_droverd *t = *st;
    char *o;

    config(t, NULL);
    drv_test_droverd_start(t, 0);
    /* ok, already finished: printed at once */
    drv_test_xadd(t, "default", NULL, 0, "job", "quick", "id", "k1", NULL);
    drv_test_wait_stat(t, "default", "processed", 1);
    o = CLI_EXIT(t, 0, "wait", "default", "k1");
    assert_non_null(strstr(o, "status: ok"));
    free(o);
    /* dead */
    drv_test_xadd(t, "default", NULL, 0, "job", "bad", "id", "x1", NULL);
    o = CLI_EXIT(t, 1, "wait", "default", "x1", "--json");
    assert_non_null(strstr(o, "\"status\":\"dead\""));
    assert_non_null(strstr(o, "\"timed_out\":false"));
    free(o);
    /* timeout: a job delayed an hour */
    free(CLI_EXIT(t, 0, "enqueue", "default", "quick", "--delay", "1h",
                  "--id", "later"));
    o = CLI_EXIT(t, 1, "wait", "default", "later", "--timeout", "300ms",
                 "--json");
    assert_non_null(strstr(o, "\"timed_out\":true"));
    assert_non_null(strstr(o, "\"where\":\"delayed\""));
    free(o);
    /* unknown */
    free(CLI_EXIT(t, 1, "wait", "default", "nobody"));
    /* cancelled while waited for: exit 1 with its status */
    drv_test_xadd(t, "default", NULL, 0, "job", "long", "id", "c1", NULL);
    (void)drv_test_wait_file_num(t->dir, "pid");
    {
        char bin[400], out[400], err[400];
        const char *argv[] = {drv_test_bin("drover", bin, sizeof bin), "-c",
                              t->cfg, "wait", "default", "c1", "--timeout",
                              "60s", NULL};
        struct drv_test_proc p;

        snprintf(out, sizeof out, "%s/wait.out", t->dir);
        snprintf(err, sizeof err, "%s/wait.err", t->dir);
        assert_int_equal(drv_test_spawn_io(&p, argv, out, err, NULL), 0);
        /* it blocks, subscribed, without asking Redis again */
        wait_until(drv_test_numsub(t, "t:{default}:done") == 1,
                   "drover wait to subscribe");
        free(CLI_EXIT(t, 0, "cancel", "default", "c1"));
        assert_int_equal(drv_test_wait(&p, DRV_TEST_WAIT_MS), 1);
        o = drv_test_slurp(out, NULL);
        if (strstr(o, "status: cancelled") == NULL)
            fail_msg("drover wait printed: %s", o);
        free(o);
    }
    drv_test_droverd_stop(t, 0, 0);
}

/* -------------------------------------------------------- dead results
 *
 * Every job that ends dead keeps a result (status dead, its error) and
 * announces it on P:{Q}:done, so drover wait returns at once with exit 1
 * and drover result shows it. The paths to dead, each checked: a job of
 * an unknown type, a job whose fields its type refuses, a job that fails
 * for good whose type keeps no result (kept a day), a poisoned job and
 * one larger than max_job_bytes (dead-lettered by the reclaim script),
 * and a graph start whose run id exists already (the existing run is
 * left as it was; wait reports the run: its outcome, or it waits for it
 * while it runs). Every wait is given an hour: one that runs to its
 * timeout is killed by the harness and fails the test.
 */

#define DAY_MS 86400000LL
#define HOUR_MS 3600000LL

#define DEAD_BODY                                                         \
    "queues: [default]\n"                                                 \
    "jobs:\n"                                                             \
    "  quick:\n    handler: echo\n    result_ttl: 1h\n"                   \
    "  slow:\n    handler: sleep\n    result_ttl: 1h\n"                   \
    "  bad:\n    handler: fail\n    retries: 0\n"                         \
    "pipelines:\n"                                                        \
    "  g:\n    result_ttl: 1h\n    graph:\n"                              \
    "      a: {job: quick}\n"                                             \
    "  h:\n    result_ttl: 1h\n    graph:\n"                              \
    "      a: {job: slow}\n"

/* The result of id: status dead, an error holding err, kept more than 0
 * and at most max_ms; returned: its PTTL. */
static long long
expect_dead(struct drv_test_droverd *t, const char *id, const char *err,
            long long max_ms)
{
    char *v;
    long long ttl;

    drv_test_expect_result(t, "default", id, "status", "dead");
    v = drv_test_result(t, "default", id, "error");
    if (v == NULL || strstr(v, err) == NULL)
        fail_msg("result error of %s: \"%s\", want one with \"%s\"", id,
                 v != NULL ? v : "(none)", err);
    free(v);
    ttl = drv_test_num(t, "PTTL t:{default}:result:%s", id);
    if (ttl <= 0 || ttl > max_ms)
        fail_msg("result of %s kept %lld ms, want 1..%lld", id, ttl, max_ms);
    return ttl;
}

/* o (a CLI's stdout, freed here) holds a and, unless NULL, b. */
static void
out_has(char *o, const char *a, const char *b)
{
    if (strstr(o, a) == NULL || (b != NULL && strstr(o, b) == NULL))
        fail_msg("want \"%s\"%s%s%s in: %s", a, b ? " and \"" : "",
                 b ? b : "", b ? "\"" : "", o);
    free(o);
}

/* drover wait on id, given an hour: exit 1 with status dead and err. */
static void
wait_dead(struct drv_test_droverd *t, const char *id, const char *err)
{
    out_has(CLI_EXIT(t, 1, "wait", "default", id, "--timeout", "1h"),
            "status: dead", err);
    out_has(CLI_EXIT(t, 0, "result", "default", id, "--field", "status"),
            "dead", NULL);
}

/* A job that cannot run (unknown type, refused fields) and one that fails
 * for good with no result_ttl of its own. */
static void
test_dead_at_admission_keeps_a_result(void **st)
{
    struct drv_test_droverd *t = *st;

    drv_test_droverd_config(t, NULL, DEAD_BODY);
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "job", "nosuch", "id", "u1", NULL);
    drv_test_xadd(t, "default", NULL, 0, "id", "m1", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "slow", "ms", "12abc", "id",
                  "v1", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "bad", "id", "f1", NULL);
    drv_test_wait_stat(t, "default", "dead", 4);
    wait_dead(t, "u1", "unknown job type \"nosuch\"");
    wait_dead(t, "m1", "missing field job");
    wait_dead(t, "v1", "field ms");
    wait_dead(t, "f1", "status: dead");
    /* no type: a day; the type's result_ttl when it has one; a type that
     * keeps none: a day */
    assert_true(expect_dead(t, "u1", "unknown job type", DAY_MS) > HOUR_MS);
    assert_true(expect_dead(t, "m1", "missing field job", DAY_MS) > HOUR_MS);
    (void)expect_dead(t, "v1", "field ms", HOUR_MS);
    assert_true(expect_dead(t, "f1", "", DAY_MS) > HOUR_MS);
    drv_test_droverd_stop(t, 0, 0);
}

/* A consumer that died holding entries: one delivered max_deliveries
 * times (poison), one larger than max_job_bytes; the reclaim sends both
 * to dead, and a wait that started before is woken. */
static void
test_dead_by_reclaim_keeps_a_result(void **st)
{
    struct drv_test_droverd *t = *st;
    char big[2048], bin[400], out[400], err[400];
    const char *argv[] = {drv_test_bin("drover", bin, sizeof bin), "-c",
                          t->cfg, "wait", "default", "p1", "--timeout",
                          "1h", NULL};
    struct drv_test_proc p;
    char *o;

    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    drv_test_droverd_config(t, "  visibility_timeout: 1s\n"
                               "  max_deliveries: 2\n"
                               "  max_job_bytes: 1KiB\n", DEAD_BODY);
    freeReplyObject(redisCommand(t->c, "XGROUP CREATE t:{default}:jobs "
                                 "drover 0 MKSTREAM"));
    drv_test_xadd(t, "default", NULL, 0, "job", "quick", "id", "p1", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "nosuch", "id", "p2", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "quick", "id", "b1", "data",
                  big, NULL);
    /* ghost took all three; ghost2 took p1 and p2 again: delivered twice */
    freeReplyObject(redisCommand(t->c, "XREADGROUP GROUP drover ghost "
                                 "COUNT 3 STREAMS t:{default}:jobs >"));
    {
        redisReply *r = redisCommand(t->c, "XRANGE t:{default}:jobs - + "
                                     "COUNT 2");

        assert_non_null(r);
        assert_int_equal(r->elements, 2);
        freeReplyObject(redisCommand(t->c, "XCLAIM t:{default}:jobs drover "
                                     "ghost2 0 %s %s",
                                     r->element[0]->element[0]->str,
                                     r->element[1]->element[0]->str));
        freeReplyObject(r);
    }
    snprintf(out, sizeof out, "%s/wait.out", t->dir);
    snprintf(err, sizeof err, "%s/wait.err", t->dir);
    assert_int_equal(drv_test_spawn_io(&p, argv, out, err, NULL), 0);
    wait_until(drv_test_numsub(t, "t:{default}:done") == 1,
               "drover wait to subscribe");
    drv_test_droverd_start(t, 0);
    drv_test_wait_stat(t, "default", "dead", 3);
    assert_int_equal(drv_test_wait(&p, DRV_TEST_WAIT_MS), 1);
    o = drv_test_slurp(out, NULL);
    if (strstr(o, "status: dead") == NULL || strstr(o, "poison") == NULL)
        fail_msg("drover wait printed: %s", o);
    free(o);
    wait_dead(t, "p2", "poison: delivered 2 times");
    wait_dead(t, "b1", "more than max_job_bytes 1024");
    (void)expect_dead(t, "p1", "poison: delivered 2 times", HOUR_MS);
    assert_true(expect_dead(t, "p2", "poison", DAY_MS) > HOUR_MS);
    (void)expect_dead(t, "b1", "more than max_job_bytes", HOUR_MS);
    drv_test_expect_result(t, "default", "p1", "attempts", "1");
    drv_test_droverd_stop(t, 0, 0);
}

/* A second start of run r1: dead, with a result of its own under r1;
 * the run r1 keeps its state, and drover wait r1 reports the run. */
static void
test_graph_start_of_an_existing_run(void **st)
{
    struct drv_test_droverd *t = *st;
    long long run_ttl;

    drv_test_droverd_config(t, NULL, DEAD_BODY);
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "pipeline", "g", "id", "r1", NULL);
    out_has(CLI_EXIT(t, 0, "wait", "default", "r1", "--timeout", "1h"),
            "status: ok", NULL);
    drv_test_xadd(t, "default", NULL, 0, "pipeline", "g", "id", "r1", NULL);
    drv_test_wait_stat(t, "default", "dead", 1);
    /* kept no longer than the run it names (the run's TTL read first:
     * both count down) */
    run_ttl = drv_test_num(t, "PTTL t:{default}:run:r1");
    assert_true(run_ttl > 0);
    assert_true(expect_dead(t, "r1", "run r1 exists already", HOUR_MS) <=
                run_ttl);
    drv_test_expect_hget(t, "t:{default}:run:r1", "status", "ok");
    out_has(CLI_EXIT(t, 0, "wait", "default", "r1", "--timeout", "1h"),
            "status: ok", NULL);
    out_has(CLI_EXIT(t, 0, "result", "default", "r1"), "status: dead",
            "run r1 exists already");
    /* while the run still runs, wait is for the run, not the dead start */
    drv_test_xadd(t, "default", NULL, 0, "pipeline", "h", "id", "r2", "ms",
                  "600000", NULL);
    drv_test_wait_started(t, 1);
    drv_test_xadd(t, "default", NULL, 0, "pipeline", "h", "id", "r2", NULL);
    drv_test_wait_stat(t, "default", "dead", 2);
    (void)expect_dead(t, "r2", "run r2 exists already", HOUR_MS);
    out_has(CLI_EXIT(t, 1, "wait", "default", "r2", "--timeout", "300ms",
                     "--json"), "\"timed_out\":true", "\"run\"");
    free(CLI_EXIT(t, 0, "cancel", "default", "r2"));
    out_has(CLI_EXIT(t, 1, "wait", "default", "r2", "--timeout", "1h"),
            "status: cancelled", NULL);
    drv_test_droverd_stop(t, 0, 0);
}

/* ----------------------------------------------------------- progress */

/* The result field of id once it equals want (waits for it). */
static void
wait_result(struct drv_test_droverd *t, const char *id, const char *field,
            const char *want)
{
    char *v = NULL;

    wait_until((free(v), v = drv_test_result(t, "default", id, field),
                v != NULL && strcmp(v, want) == 0),
               "result %s of %s to be %s (is %s)", field, id, want,
               v != NULL ? v : "(none)");
    free(v);
}

/* An exec child's progress line, while it runs: in the result hash, in
 * drover result and drover wait; a job that reports nothing has no
 * result hash while it runs (result_ttl 0 here: none afterwards
 * either). */
static void
test_progress_exec(void **st)
{
    struct drv_test_droverd *t = *st;
    char bin[400], out[400], err[400], *v;
    const char *argv[10];
    struct drv_test_proc p;
    long pid, quiet;
    char *o;

    config(t, NULL);
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "job", "long", "id", "quiet", NULL);
    quiet = drv_test_wait_file_num(t->dir, "pid");
    drv_test_xadd(t, "default", NULL, 0, "job", "prog", "id", "p1", NULL);
    pid = drv_test_wait_file_num(t->dir, "ppid");
    wait_result(t, "p1", "progress", "42");
    drv_test_expect_result(t, "default", "p1", "status", "running");
    drv_test_expect_result(t, "default", "p1", "progress_msg", "half way");
    v = drv_test_result(t, "default", "p1", "worker");
    assert_non_null(v);
    assert_non_null(strstr(v, ":"));
    free(v);
    v = drv_test_result(t, "default", "p1", "started_at");
    assert_non_null(v);
    assert_true(strtoll(v, NULL, 10) > 1700000000000LL);
    free(v);
    assert_true(drv_test_num(t, "PTTL t:{default}:result:p1") > 0);
    /* the quiet job, running as long, wrote nothing */
    assert_int_equal(drv_test_num(t, "EXISTS t:{default}:result:quiet"), 0);

    o = CLI_EXIT(t, 0, "result", "default", "p1");
    assert_non_null(strstr(o, "status: running"));
    assert_non_null(strstr(o, "progress: 42"));
    assert_non_null(strstr(o, "progress_msg: half way"));
    free(o);
    o = CLI_EXIT(t, 0, "result", "default", "p1", "--field", "progress");
    assert_string_equal(o, "42");
    free(o);
    o = CLI_EXIT(t, 0, "result", "default", "p1", "--json");
    assert_non_null(strstr(o, "\"status\":\"running\""));
    assert_non_null(strstr(o, "\"name\":\"progress_msg\",\"value\":"
                              "\"half way\""));
    free(o);

    /* drover wait shows it, then the outcome */
    argv[0] = drv_test_bin("drover", bin, sizeof bin);
    argv[1] = "-c";
    argv[2] = t->cfg;
    argv[3] = "wait";
    argv[4] = "default";
    argv[5] = "p1";
    argv[6] = NULL;
    snprintf(out, sizeof out, "%s/waitp.out", t->dir);
    snprintf(err, sizeof err, "%s/waitp.err", t->dir);
    assert_int_equal(drv_test_spawn_io(&p, argv, out, err, NULL), 0);
    wait_until(drv_test_file_contains(err, "progress 42% \"half way\""),
               "drover wait to show the progress");
    free(CLI_EXIT(t, 0, "cancel", "default", "p1"));
    assert_int_equal(drv_test_wait(&p, DRV_TEST_WAIT_MS), 1);
    wait_until(kill((pid_t)pid, 0) < 0 && errno == ESRCH, "child gone");
    drv_test_expect_result(t, "default", "p1", "status", "cancelled");
    /* the final result replaced the progress fields */
    assert_null(drv_test_result(t, "default", "p1", "progress"));
    free(CLI_EXIT(t, 0, "cancel", "default", "quiet"));
    wait_until(kill((pid_t)quiet, 0) < 0 && errno == ESRCH, "child gone");
    drv_test_wait_stat(t, "default", "cancelled", 2);
    drv_test_droverd_stop(t, 0, 0);
}

/* A plugin's host->progress (async and blocking), and a plugin built
 * against the host table of minor 0 still loads and runs. */
static void
test_progress_plugin(void **st)
{
    struct drv_test_droverd *t = *st;
    char *v;

    config(t, NULL);
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "job", "old", "id", "o1", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "async", "id", "pa", "ms",
                  "3600000", "progress", "17", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "pooled", "id", "pb", "ms",
                  "3600000", NULL);
    wait_result(t, "pa", "progress", "17");
    drv_test_expect_result(t, "default", "pa", "progress_msg", "waiting");
    drv_test_expect_result(t, "default", "pa", "status", "running");
    wait_result(t, "pb", "progress_msg", "working");
    drv_test_expect_result(t, "default", "pb", "status", "running");
    drv_test_wait_stat(t, "default", "processed", 1);
    v = drv_test_result(t, "default", "o1", "result");
    assert_non_null(v);
    {
        size_t host = 0, mine = 0;

        assert_int_equal(sscanf(v, "host size %zu, mine %zu", &host, &mine),
                         2);
        assert_true(host > mine); /* a newer host than the plugin knew */
    }
    free(v);
    free(CLI_EXIT(t, 0, "cancel", "default", "pa"));
    free(CLI_EXIT(t, 0, "cancel", "default", "pb"));
    drv_test_wait_stat(t, "default", "cancelled", 2);
    drv_test_droverd_stop(t, 0, 0);
}

int
main(void)
{
    const char *d = getenv("DROVER_PLUGIN_DIR");
    const struct CMUnitTest tests[] = {
        TD(test_cancel_waiting_and_delayed),
        TD(test_cancel_running_exec),
        TD(test_cancel_running_plugin),
        TD(test_cancel_reclaimed_entry),
        TD(test_wait_exit_codes),
        TD(test_dead_at_admission_keeps_a_result),
        TD(test_dead_by_reclaim_keeps_a_result),
        TD(test_graph_start_of_an_existing_run),
        TD(test_progress_exec),
        TD(test_progress_plugin),
    };
#undef T

    if (realpath(d != NULL ? d : "build/release/plugins", plugin_dir) ==
        NULL) {
        fprintf(stderr, "test_cancel: no plugin dir (DROVER_PLUGIN_DIR)\n");
        return 1;
    }
    drv_test_droverd_fixture = &opts;
    drv_test_filter_from_env();
    return cmocka_run_group_tests(tests, drv_test_redis_group_setup,
                                  drv_test_redis_group_teardown);
}
