/*
 * test_faults.c -- droverd against a real redis-server that misbehaves:
 * out of memory (maxmemory with noeviction) and an ACL that forbids the
 * scripts (outcomes wait with backoff, one log line per episode), queue
 * keys of the wrong type (only that queue stops, the others flow, nothing
 * is half written), connections killed or paused, and a job far larger
 * than max_job_bytes. Waits poll Redis or droverd's log (wait_until) with
 * generous deadlines: guards against hangs, never speed checks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "droverd.h"

static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-ft",
    .prefix = "t",
    .log_level = "debug",
    .worker_defaults = "  shutdown_timeout: 5s\n  visibility_timeout: 3s\n",
    .body_head = NULL,
    .tail_lines = 60,
};

/* ------------------------------------------------------------ helpers */

/* Run a command on the test's client and check it did not fail. */
static void
ok_cmd(struct drv_test_droverd *t, const char *fmt, ...)
{
    redisReply *r;
    va_list ap;

    va_start(ap, fmt);
    r = redisvCommand(t->c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("%s: %s", fmt, r->str);
    freeReplyObject(r);
}

/* EVALSHA calls Redis saw, executed or rejected (INFO commandstats). */
static long long
evalsha_calls(struct drv_test_droverd *t)
{
    redisReply *r = redisCommand(t->c, "INFO commandstats");
    long long n = 0;
    const char *p, *q;

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    p = strstr(r->str, "cmdstat_evalsha:");
    if (p != NULL) {
        q = strstr(p, "calls=");
        if (q != NULL)
            n += atoll(q + 6);
        q = strstr(p, "rejected_calls=");
        if (q != NULL)
            n += atoll(q + 15);
    }
    freeReplyObject(r);
    return n;
}

/* The pending count of queue q's group. */
static long long
pending(struct drv_test_droverd *t, const char *q)
{
    return drv_test_num(t, "XPENDING t:{%s}:jobs drover", q);
}

/* ---------------------------------------------------- refused writes */

/*
 * Redis refuses writes while jobs run (refuse: the command that makes it
 * so; accept: the one that ends it). 40 jobs that go dead (the dead XADD
 * is the settle's first write, so it is refused) with concurrency 4: the
 * log says so once, the settle calls back off (a few EVALSHA calls, not
 * thousands), no more jobs are fetched than can run, and once Redis
 * accepts writes every outcome is written: 40 dead, nothing pending.
 */
static void
refused_writes(struct drv_test_droverd *t, const char *refuse,
               const char *accept)
{
    long long calls0, calls, held;
    int n = 40, i;

    drv_test_droverd_config(t, "  concurrency: 4\n",
                            "queues: [default]\n"
                            "jobs:\n  f:\n    handler: fail\n");
    ok_cmd(t, "SET t:{default}:paused 1");
    drv_test_droverd_start(t, 0);
    drv_test_wait_log(t, "queue paused", 1);
    for (i = 0; i < n; i++)
        drv_test_xadd(t, "default", NULL, 0, "job", "f", "permanent", "1",
                      "error", "boom", NULL);
    ok_cmd(t, refuse);
    calls0 = evalsha_calls(t);
    ok_cmd(t, "DEL t:{default}:paused");
    drv_test_wait_log(t, "Redis refuses writes", 1);
    /* pacing: let the worker retry for a while (it would spin thousands
     * of times a second if it did not back off) */
    drv_test_sleep_ms(1000);
    held = pending(t, "default");
    drv_test_sleep_ms(2000);
    calls = evalsha_calls(t) - calls0;
    fprintf(stderr, "# %s: %lld EVALSHA calls in 3 s of refused writes\n",
            refuse, calls);
    assert_true(calls < 60);
    assert_int_equal(drv_test_file_count(t->log, "Redis refuses writes"), 1);
    assert_int_equal(drv_test_file_count(t->log, "settle failed"), 0);
    /* fetching paused: what was taken before the first refusal came
     * back (a few batches) and nothing since */
    assert_true(held > 0 && held < n);
    assert_int_equal(pending(t, "default"), held);
    assert_int_equal(drv_test_stat(t, "default", "dead"), 0);

    ok_cmd(t, accept);
    drv_test_wait_stat(t, "default", "dead", n);
    drv_test_wait_log(t, "Redis accepts writes again", 1);
    assert_int_equal(drv_test_num(t, "XLEN t:{default}:dead"), n);
    wait_until_num(pending(t, "default"), ==, 0, "pending entries");
    assert_int_equal(drv_test_num(t, "XLEN t:{default}:jobs"), 0);
    assert_int_equal(drv_test_file_count(t->log, "Redis refuses writes"), 1);
    assert_int_equal(drv_test_file_count(t->log,
                                         "Redis accepts writes again"), 1);
    drv_test_droverd_stop(t, 0, 0);
}

static void
test_faults_oom_outcomes_wait_with_backoff(void **st)
{
    struct drv_test_droverd *t = *st;

    /* noeviction is Redis's default policy; 1 byte is below any use */
    ok_cmd(t, "CONFIG SET maxmemory-policy noeviction");
    refused_writes(t, "CONFIG SET maxmemory 1", "CONFIG SET maxmemory 0");
}

static void
test_faults_noperm_outcomes_wait_with_backoff(void **st)
{
    struct drv_test_droverd *t = *st;

    refused_writes(t, "ACL SETUSER default -evalsha -eval",
                   "ACL SETUSER default +@all");
}

/* -------------------------------------------------------------- main */

static int
setup(void **st)
{
    return drv_test_droverd_setup(st);
}

static int
teardown(void **st)
{
    struct drv_test_droverd *t = *st;
    redisReply *r;

    /* whatever a failed test left refused */
    r = redisCommand(t->c, "CONFIG SET maxmemory 0");
    freeReplyObject(r);
    r = redisCommand(t->c, "ACL SETUSER default +@all");
    freeReplyObject(r);
    r = redisCommand(t->c, "CLIENT UNPAUSE");
    freeReplyObject(r);
    return drv_test_droverd_teardown(st);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_faults_oom_outcomes_wait_with_backoff),
        T(test_faults_noperm_outcomes_wait_with_backoff),
    };
#undef T

    drv_test_droverd_fixture = &opts;
    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, drv_test_redis_group_setup,
                                  drv_test_redis_group_teardown);
}
