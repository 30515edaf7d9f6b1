/*
 * test_admit.c -- admission across workers against a real redis-server
 * and three real droverd processes: deduplication by id (unique_for),
 * fleet-wide concurrency (global_concurrency) and its recovery after a
 * kill -9, rate limits (rate), limits per job field (limit_key), and a
 * job type that uses none of them costing no admission command at all.
 *
 * Jobs that must overlap run tests/progs/drv_concur (it keeps the most
 * of its kind that ran at once in DIR/max). Rate slots are read from the
 * workers' debug lines "job admitted ... slot_ms=" (Redis time): the
 * limit holds on those, and each job's start (the trace) comes no
 * earlier than its slot. Counting windows over slots does not depend on
 * how fast the machine is.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "droverd.h"

#define NJOBS_MAX 512

static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-admit",
    .prefix = "t",
    .log_level = "debug",
    .worker_defaults = "  shutdown_timeout: 5s\n",
    .body_head = NULL,
    .tail_lines = 40,
};

/* Start droverd 0..n-1. */
static void
start_all(struct drv_test_droverd *t, int n)
{
    int i;

    for (i = 0; i < n; i++)
        drv_test_droverd_start(t, i);
}

static void
stop_all(struct drv_test_droverd *t, int n)
{
    int i;

    for (i = 0; i < n; i++)
        if (t->w[i].pid != 0)
            drv_test_droverd_stop(t, i, 0);
}

/* The number in file dir/name, 0 when it is missing. */
static long
file_num(const char *dir, const char *name)
{
    char path[512];
    FILE *f;
    long v = 0;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "r");
    if (f != NULL) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v;
}

/* calls= of `INFO commandstats` for command name (0 when never run). */
static long long
cmd_calls(struct drv_test_droverd *t, const char *name)
{
    redisReply *r = drv_test_redis_cmd(t->c, "INFO commandstats");
    char needle[64];
    const char *p;
    long long v = 0;

    snprintf(needle, sizeof needle, "cmdstat_%s:calls=", name);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    p = strstr(r->str, needle);
    if (p != NULL)
        v = atoll(p + strlen(needle));
    freeReplyObject(r);
    return v;
}

/* Pause queue q, so entries added now are fetched all at once after
 * resume(). */
static void
pause_q(struct drv_test_droverd *t, const char *q)
{
    drv_test_redis_ok(t->c, "SET t:{%s}:paused 1", q);
}

static void
resume_q(struct drv_test_droverd *t, const char *q)
{
    freeReplyObject(drv_test_redis_cmd(t->c, "DEL t:{%s}:paused", q));
}

/* ------------------------------------------------------------- dedupe */

/*
 * Ten entries with one id, released at once to three workers: exactly
 * one runs, nine are acked as duplicates. Within unique_for after its
 * success the id stays taken; a job of another id that ends dead frees
 * it, so the next entry of that id runs.
 */
static void
test_admit_dedupe(void **st)
{
    struct drv_test_droverd *t = *st;
    char prog[300], body[1024];
    int i;

    (void)drv_test_prog("drv_concur", prog, sizeof prog);
    snprintf(body, sizeof body,
             "jobs:\n"
             "  once:\n"
             "    handler: exec\n"
             "    command: [\"%s\", \"{dir}\", \"{ms}\"]\n"
             "    unique_for: 1h\n"
             "  maybe:\n"
             "    handler: exec\n"
             "    command: [sh, -c, \"sleep 0.2; exit $0\", \"{code}\"]\n"
             "    unique_for: 1h\n"
             "    retries: 0\n", prog);
    drv_test_droverd_config(t, NULL, body);
    start_all(t, 3);
    pause_q(t, "default");
    for (i = 0; i < 10; i++)
        drv_test_xadd(t, "default", NULL, 0, "job", "once", "id", "dup-1",
                      "dir", t->dir, "ms", "300", NULL);
    resume_q(t, "default");
    drv_test_wait_stat(t, "default", "deduped", 9);
    drv_test_wait_stat(t, "default", "processed", 1);
    assert_int_equal(file_num(t->dir, "max"), 1);
    assert_int_equal(drv_test_started(t), 1);

    /* succeeded less than unique_for ago: still a duplicate */
    drv_test_xadd(t, "default", NULL, 0, "job", "once", "id", "dup-1",
                  "dir", t->dir, "ms", "1", NULL);
    drv_test_wait_stat(t, "default", "deduped", 10);
    assert_int_equal(drv_test_stat(t, "default", "processed"), 1);
    assert_true(drv_test_num(t, "PTTL t:{default}:unique:once:dup-1") >
                3000000);

    /* dead frees the id: the next entry of it runs */
    drv_test_xadd(t, "default", NULL, 0, "job", "maybe", "id", "dup-2",
                  "code", "3", NULL);
    drv_test_wait_stat(t, "default", "dead", 1);
    assert_int_equal(drv_test_num(t, "EXISTS t:{default}:unique:maybe:dup-2"),
                     0);
    drv_test_xadd(t, "default", NULL, 0, "job", "maybe", "id", "dup-2",
                  "code", "0", NULL);
    drv_test_wait_stat(t, "default", "processed", 2);
    assert_int_equal(drv_test_stat(t, "default", "deduped"), 10);
    /* an entry without an id field cannot have a duplicate: no key */
    drv_test_xadd(t, "default", NULL, 0, "job", "maybe", "code", "0", NULL);
    drv_test_wait_stat(t, "default", "processed", 3);
    assert_int_equal(drv_test_num(t, "EVAL %s 0 %s",
                                  "return(#redis.call('KEYS',ARGV[1]))",
                                  "t:{default}:unique:*"), 2);
    stop_all(t, 3);
}

/* -------------------------------------------------------------- cost */

/*
 * A job type that sets no admission key costs what it cost before, even
 * when another type of the config sets them: no admission script runs
 * (only they call TIME) and its settle calls carry nothing more.
 */
static void
test_admit_unlimited_cost(void **st)
{
    struct drv_test_droverd *t = *st;
    int i;

    drv_test_droverd_config(t, NULL,
                            "jobs:\n"
                            "  plain: {handler: noop}\n"
                            "  limited: {handler: noop, unique_for: 1m,\n"
                            "            rate: 1000/s,\n"
                            "            global_concurrency: 2}\n");
    drv_test_droverd_start(t, 0);
    pause_q(t, "default");
    for (i = 0; i < 200; i++)
        drv_test_xadd(t, "default", NULL, 0, "job", "plain", "id", "x",
                      NULL);
    freeReplyObject(drv_test_redis_cmd(t->c, "CONFIG RESETSTAT"));
    resume_q(t, "default");
    drv_test_wait_stat(t, "default", "processed", 200);
    assert_int_equal(cmd_calls(t, "time"), 0);
    assert_int_equal(cmd_calls(t, "get"), 0);
    /* and one limited job does call it */
    drv_test_xadd(t, "default", NULL, 0, "job", "limited", "id", "y", NULL);
    drv_test_wait_stat(t, "default", "processed", 201);
    assert_true(cmd_calls(t, "time") >= 1);
    drv_test_droverd_stop(t, 0, 0);
}

/* ------------------------------------------------------------ fixture */

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_admit_dedupe,
                                        drv_test_droverd_setup,
                                        drv_test_droverd_teardown),
        cmocka_unit_test_setup_teardown(test_admit_unlimited_cost,
                                        drv_test_droverd_setup,
                                        drv_test_droverd_teardown),
    };

    drv_test_droverd_fixture = &opts;
    return cmocka_run_group_tests(tests, drv_test_redis_group_setup,
                                  drv_test_redis_group_teardown);
}
