/*
 * test_dead_result.c -- every job that ends dead keeps a result (status
 * dead, its error) and announces it on P:{Q}:done, so drover wait
 * returns at once with exit 1 and drover result shows it, against real
 * droverd processes and a real redis-server.
 *
 * The paths to dead, each checked: a job of an unknown type, a job whose
 * fields its type refuses, a job that fails for good whose type keeps no
 * result (kept a day), a poisoned job and one larger than max_job_bytes
 * (dead-lettered by the reclaim script), and a graph start whose run id
 * exists already (the existing run is left as it was; wait reports the
 * run: its outcome, or it waits for it while it runs).
 * Every wait is given an hour: one that runs to its timeout is killed by
 * the harness and fails the test. Nothing asserts a duration.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "droverd.h"

static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-deadres",
    .prefix = "t",
    .log_level = "debug",
    .worker_defaults = "  shutdown_timeout: 5s\n",
    .body_head = NULL,
    .tail_lines = 60,
};

#define DAY_MS 86400000LL
#define HOUR_MS 3600000LL

#define BODY                                                              \
    "queues: [default]\n"                                                 \
    "jobs:\n"                                                             \
    "  quick:\n    handler: echo\n    result_ttl: 1h\n"                   \
    "  slow:\n    handler: sleep\n    result_ttl: 1h\n"                   \
    "  bad:\n    handler: fail\n    retries: 0\n"                         \
    "pipelines:\n"                                                        \
    "  g:\n    result_ttl: 1h\n    graph:\n"                              \
    "      a: {job: quick}\n"                                          \
    "  h:\n    result_ttl: 1h\n    graph:\n"                              \
    "      a: {job: slow}\n"

/* drover -c CFG ARGS... must exit with want; its stdout is returned
 * (caller frees). */
#define CLI_EXIT(t, want, ...)                                            \
    ({                                                                    \
        const char *const a_[] = {__VA_ARGS__, NULL};                     \
        drv_test_cli_out((t)->dir, (t)->cfg, (want), a_);                 \
    })

/* The result of id: status dead, an error holding err, kept more than 0
 * and at most max_ms; returned: its PTTL. */
static long long
expect_dead(struct drv_test_droverd *t, const char *id, const char *err,
            long long max_ms)
{
    char *v = drv_test_result(t, "default", id, "status");
    long long ttl;

    if (v == NULL || strcmp(v, "dead") != 0)
        fail_msg("result status of %s: \"%s\", want \"dead\"", id,
                 v != NULL ? v : "(none)");
    free(v);
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

/* drover wait on id, given an hour: exit 1 with status dead and err. */
static void
wait_dead(struct drv_test_droverd *t, const char *id, const char *err)
{
    char *o = CLI_EXIT(t, 1, "wait", "default", id, "--timeout", "1h");

    if (strstr(o, "status: dead") == NULL || strstr(o, err) == NULL)
        fail_msg("drover wait %s printed: %s", id, o);
    free(o);
    o = CLI_EXIT(t, 0, "result", "default", id, "--field", "status");
    assert_string_equal(o, "dead");
    free(o);
}

/* A job that cannot run (unknown type, refused fields) and one that fails
 * for good with no result_ttl of its own. */
static void
test_dead_at_admission_keeps_a_result(void **st)
{
    struct drv_test_droverd *t = *st;

    drv_test_droverd_config(t, NULL, BODY);
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
                               "  max_job_bytes: 1KiB\n", BODY);
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
    o = drv_test_result(t, "default", "p1", "attempts");
    assert_string_equal(o, "1");
    free(o);
    drv_test_droverd_stop(t, 0, 0);
}

/* A second start of run r1: dead, with a result of its own under r1;
 * the run r1 keeps its state, and drover wait r1 reports the run. */
static void
test_graph_start_of_an_existing_run(void **st)
{
    struct drv_test_droverd *t = *st;
    char *o;

    drv_test_droverd_config(t, NULL, BODY);
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "pipeline", "g", "id", "r1", NULL);
    o = CLI_EXIT(t, 0, "wait", "default", "r1", "--timeout", "1h");
    assert_non_null(strstr(o, "status: ok"));
    free(o);
    drv_test_xadd(t, "default", NULL, 0, "pipeline", "g", "id", "r1", NULL);
    drv_test_wait_stat(t, "default", "dead", 1);
    (void)expect_dead(t, "r1", "run r1 exists already", HOUR_MS);
    o = drv_test_hget(t, "t:{default}:run:r1", "status");
    assert_string_equal(o, "ok");
    free(o);
    o = CLI_EXIT(t, 0, "wait", "default", "r1", "--timeout", "1h");
    assert_non_null(strstr(o, "status: ok"));
    free(o);
    o = CLI_EXIT(t, 0, "result", "default", "r1");
    assert_non_null(strstr(o, "status: dead"));
    assert_non_null(strstr(o, "run r1 exists already"));
    free(o);
    /* while the run still runs, wait is for the run, not the dead start */
    drv_test_xadd(t, "default", NULL, 0, "pipeline", "h", "id", "r2", "ms",
                  "600000", NULL);
    drv_test_wait_started(t, 1);
    drv_test_xadd(t, "default", NULL, 0, "pipeline", "h", "id", "r2", NULL);
    drv_test_wait_stat(t, "default", "dead", 2);
    (void)expect_dead(t, "r2", "run r2 exists already", HOUR_MS);
    o = CLI_EXIT(t, 1, "wait", "default", "r2", "--timeout", "300ms",
                 "--json");
    assert_non_null(strstr(o, "\"timed_out\":true"));
    assert_non_null(strstr(o, "\"run\""));
    free(o);
    free(CLI_EXIT(t, 0, "cancel", "default", "r2"));
    o = CLI_EXIT(t, 1, "wait", "default", "r2", "--timeout", "1h");
    assert_non_null(strstr(o, "status: cancelled"));
    free(o);
    drv_test_droverd_stop(t, 0, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        TD(test_dead_at_admission_keeps_a_result),
        TD(test_dead_by_reclaim_keeps_a_result),
        TD(test_graph_start_of_an_existing_run),
    };

    drv_test_droverd_fixture = &opts;
    drv_test_filter_from_env();
    return cmocka_run_group_tests(tests, drv_test_redis_group_setup,
                                  drv_test_redis_group_teardown);
}
