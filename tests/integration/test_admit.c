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
#include <sys/stat.h>
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

/* 1 when string key holds exactly want. */
static int
key_is(struct drv_test_droverd *t, const char *key, const char *want)
{
    redisReply *r = drv_test_redis_cmd(t->c, "GET %s", key);
    int is = r->type == REDIS_REPLY_STRING && strcmp(r->str, want) == 0;

    freeReplyObject(r);
    return is;
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

/* A new directory t->dir/name for drv_concur (its path into out). */
static void
concur_dir(struct drv_test_droverd *t, const char *name, char *out)
{
    snprintf(out, 400, "%s/%s", t->dir, name);
    assert_int_equal(mkdir(out, 0700), 0);
}

/* The jobs: section of one exec type `name` running drv_concur {dir}
 * {ms}, with more keys (lines of four spaces), into body. */
static void
concur_job(char *body, size_t n, const char *name, const char *more)
{
    char prog[300];

    (void)drv_test_prog("drv_concur", prog, sizeof prog);
    snprintf(body, n, "jobs:\n"
                      "  %s:\n"
                      "    handler: exec\n"
                      "    command: [\"%s\", \"{dir}\", \"{ms}\"]\n"
                      "%s", name, prog, more);
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
             "    retries: 0\n"
             "  flaky:\n"
             "    handler: exec\n"
             "    command: [sh, -c, \"exit 1\"]\n"
             "    unique_for: 1h\n"
             "    retries: 1\n"
             "    backoff: 2s\n"
             "  slow:\n"
             "    handler: exec\n"
             "    command: [sh, -c, \"exit 1\"]\n"
             "    unique_for: 1h\n"
             "    retries: 1\n"
             "    backoff: 1h\n", prog);
    drv_test_droverd_config(t, NULL, body);
    start_all(t, 3);
    pause_q(t, "default");
    for (i = 0; i < 10; i++)
        drv_test_xadd(t, "default", NULL, 0, "job", "once", "id", "dup-1",
                      "dir", t->dir, "ms", "300", NULL);
    resume_q(t, "default");
    drv_test_wait_stat(t, "default", "deduped", 9);
    drv_test_wait_stat(t, "default", "processed", 1);
    assert_int_equal(drv_test_file_num(t->dir, "max"), 1);
    assert_int_equal(drv_test_started(t), 1);

    /* succeeded less than unique_for ago: still a duplicate */
    drv_test_xadd(t, "default", NULL, 0, "job", "once", "id", "dup-1",
                  "dir", t->dir, "ms", "1", NULL);
    drv_test_wait_stat(t, "default", "deduped", 10);
    assert_int_equal(drv_test_stat(t, "default", "processed"), 1);
    assert_true(drv_test_num(t, "PTTL t:{default}:unique:once:dup-1") >
                3000000);
    {
        const char *const args[] = {"stats", "--json", NULL};
        char *out = drv_test_cli_out(t->dir, t->cfg, 0, args);

        if (strstr(out, "\"deduped\":10,") == NULL)
            fail_msg("drover stats --json printed:\n%s", out);
        free(out);
    }

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

    /* a retry keeps the id: a duplicate during its delay is dropped; the
     * retry itself runs, and its death frees the id */
    drv_test_xadd(t, "default", NULL, 0, "job", "flaky", "id", "dup-3",
                  NULL);
    drv_test_wait_stat(t, "default", "retried", 1);
    /* held for the retry, whose attempt field will be 1 */
    wait_until(key_is(t, "t:{default}:unique:flaky:dup-3", "w:1"),
               "the retry's id claim");
    drv_test_xadd(t, "default", NULL, 0, "job", "flaky", "id", "dup-3",
                  NULL);
    drv_test_wait_stat(t, "default", "deduped", 11);
    drv_test_wait_stat(t, "default", "dead", 2);
    {
        char att[32];

        drv_test_dead_field(t, "default", "id", "dup-3", "attempts", att,
                            sizeof att);
        assert_string_equal(att, "2");
    }
    assert_int_equal(drv_test_num(t, "EXISTS t:{default}:unique:flaky:"
                                     "dup-3"), 0);

    /* a cancelled retry frees the id too */
    drv_test_xadd(t, "default", NULL, 0, "job", "slow", "id", "dup-4",
                  NULL);
    drv_test_wait_stat(t, "default", "retried", 2);
    wait_until(key_is(t, "t:{default}:unique:slow:dup-4", "w:1"),
               "the delayed retry's id claim");
    {
        const char *const args[] = {"cancel", "default", "dup-4", NULL};

        free(drv_test_cli_out(t->dir, t->cfg, 0, args));
    }
    assert_int_equal(drv_test_num(t, "EXISTS t:{default}:unique:slow:"
                                     "dup-4"), 0);
    stop_all(t, 3);
}

/* -------------------------------------------------- global_concurrency */

/*
 * global_concurrency 4 held by three workers of 4 permits each; then a
 * worker holding all 4 slots (so it fetches no more) is killed -9: the
 * jobs the others hold wait
 * (none starts) until its leases expire (visibility_timeout), then run.
 * Its own entries go dead on reclaim (max_deliveries 1), so only the
 * slots are recovered here, not the jobs.
 */
static void
test_admit_global_concurrency(void **st)
{
    struct drv_test_droverd *t = *st;
    char body[1024], a[400], b[400], c[400];
    int i;

    concur_dir(t, "a", a);
    concur_dir(t, "b", b);
    concur_dir(t, "c", c);
    concur_job(body, sizeof body, "slow", "    global_concurrency: 4\n");
    drv_test_droverd_config(t, "  concurrency: 4\n"
                               "  visibility_timeout: 3s\n"
                               "  max_deliveries: 1\n", body);
    start_all(t, 3);
    pause_q(t, "default");
    for (i = 0; i < 24; i++)
        drv_test_xadd(t, "default", NULL, 0, "job", "slow", "dir", a,
                      "ms", "300", NULL);
    resume_q(t, "default");
    drv_test_wait_stat(t, "default", "processed", 24);
    fprintf(stderr, "most running at once: %ld\n",
            drv_test_file_num(a, "max"));
    assert_true(drv_test_file_num(a, "max") >= 1);
    assert_true(drv_test_file_num(a, "max") <= 4);
    assert_int_equal(drv_test_stat(t, "default", "failed"), 0);

    /* worker 0 alone takes all four slots */
    drv_test_droverd_stop(t, 1, 0);
    drv_test_droverd_stop(t, 2, 0);
    for (i = 0; i < 4; i++)
        drv_test_xadd(t, "default", NULL, 0, "job", "slow", "dir", b,
                      "ms", "600000", NULL);
    wait_until_num(drv_test_file_num(b, "cur"), ==, 4, "long jobs running");
    /* the others fetch eight more and are refused a slot */
    drv_test_droverd_start(t, 1);
    drv_test_droverd_start(t, 2);
    for (i = 0; i < 8; i++)
        drv_test_xadd(t, "default", NULL, 0, "job", "slow", "dir", c,
                      "ms", "100", NULL);
    drv_test_wait_pending(t, "default", 12);
    wait_until(drv_test_file_count(t->w[1].log, "no fleet-wide slot free")
               + drv_test_file_count(t->w[2].log, "no fleet-wide slot free")
               >= 1, "a job refused a slot");
    assert_int_equal(drv_test_file_num(c, "max"), -1); /* none ran */
    assert_int_equal(drv_test_num(t, "ZCARD t:{default}:conc:slow"), 4);

    /* kill -9 the holder: its slots come back within the lease */
    drv_test_kill(&t->w[0], SIGKILL);
    drv_test_wait_stat(t, "default", "processed", 32);
    drv_test_wait_stat(t, "default", "dead", 4);
    assert_true(drv_test_file_num(c, "max") >= 1);
    assert_true(drv_test_file_num(c, "max") <= 4);
    /* settled: no lease left, and an empty zset is no key at all */
    assert_int_equal(drv_test_num(t, "EXISTS t:{default}:conc:slow"), 0);
    stop_all(t, 3);
}

/* ---------------------------------------------------------------- rate */

/* One "job admitted" line: its entry and its slot (Redis time, ms). */
struct slot {
    char entry[48];
    long long ms;
};

static int
slot_cmp(const void *x, const void *y)
{
    const struct slot *a = x, *b = y;

    return (a->ms > b->ms) - (a->ms < b->ms);
}

/* Every "job admitted" line of the logs of droverd 0..n-1 into v. */
static int
read_slots(struct drv_test_droverd *t, int n, struct slot *v, int max)
{
    char line[4096];
    int i, k = 0;

    for (i = 0; i < n; i++) {
        FILE *f = fopen(t->w[i].log, "r");

        assert_non_null(f);
        while (fgets(line, sizeof line, f) != NULL && k < max) {
            const char *e = strstr(line, " entry=");
            const char *m = strstr(line, " slot_ms=");

            if (strstr(line, "msg=\"job admitted\"") == NULL || e == NULL
                || m == NULL)
                continue;
            assert_int_equal(sscanf(e, " entry=%47s", v[k].entry), 1);
            v[k].ms = atoll(m + strlen(" slot_ms="));
            k++;
        }
        fclose(f);
    }
    return k;
}

/* When entry started (the trace, Unix us), or -1. */
static long long
started_us(struct drv_test_droverd *t, const char *entry)
{
    char line[512], q[64], e[64];
    long long us, found = -1;
    FILE *f = fopen(t->trace, "r");

    assert_non_null(f);
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "%lld %63s %63s", &us, q, e) == 3 &&
            strcmp(e, entry) == 0)
            found = us;
    fclose(f);
    return found;
}

/*
 * rate 20/s held by three workers: 100 jobs released at once; every one
 * gets exactly one slot, no 1 s window of slots holds more than 20, the
 * slots span at least 99 intervals, each job starts no earlier than its
 * slot, and nothing fails.
 */
static void
test_admit_rate(void **st)
{
    struct drv_test_droverd *t = *st;
    static struct slot v[NJOBS_MAX];
    int i, n;

    drv_test_droverd_config(t, "  concurrency: 16\n",
                            "jobs:\n"
                            "  tick: {handler: noop, rate: 20/s}\n");
    start_all(t, 3);
    pause_q(t, "default");
    for (i = 0; i < 100; i++)
        drv_test_xadd(t, "default", NULL, 0, "job", "tick", NULL);
    resume_q(t, "default");
    drv_test_wait_stat(t, "default", "processed", 100);
    stop_all(t, 3);
    assert_int_equal(drv_test_stat(t, "default", "failed"), 0);
    assert_int_equal(drv_test_stat(t, "default", "retried"), 0);
    n = read_slots(t, 3, v, NJOBS_MAX);
    assert_int_equal(n, 100);
    qsort(v, (size_t)n, sizeof *v, slot_cmp);
    for (i = 0; i + 20 < n; i++)
        if (v[i + 20].ms - v[i].ms < 1000)
            fail_msg("21 starts within %lld ms (slots %d..%d)",
                     v[i + 20].ms - v[i].ms, i, i + 20);
    assert_true(v[n - 1].ms - v[0].ms >= 99 * 50);
    for (i = 0; i < n; i++) {
        long long us = started_us(t, v[i].entry);

        assert_true(us >= 0);
        if (us / 1000 < v[i].ms)
            fail_msg("entry %s started at %lld ms, before its slot %lld",
                     v[i].entry, us / 1000, v[i].ms);
    }
}

/* ----------------------------------------------------------- limit_key */

/*
 * global_concurrency 1 and a rate per tenant: while tenant A's one slot
 * is held by a long job (its other jobs waiting), tenant B's jobs all
 * run; each tenant has its own keys, and they expire.
 */
static void
test_admit_keyed(void **st)
{
    struct drv_test_droverd *t = *st;
    char body[1024], a[400], a2[400], b[400];
    int i;

    concur_dir(t, "a", a);
    concur_dir(t, "a2", a2);
    concur_dir(t, "b", b);
    concur_job(body, sizeof body, "work", "    global_concurrency: 1\n"
                                          "    rate: 50/s\n"
                                          "    limit_key: \"{tenant}\"\n");
    drv_test_droverd_config(t, "  visibility_timeout: 3s\n", body);
    start_all(t, 3);
    drv_test_xadd(t, "default", NULL, 0, "job", "work", "tenant", "A",
                  "dir", a, "ms", "600000", NULL);
    wait_until_num(drv_test_file_num(a, "cur"), ==, 1, "tenant A's long job");
    for (i = 0; i < 3; i++)
        drv_test_xadd(t, "default", NULL, 0, "job", "work", "tenant", "A",
                      "dir", a2, "ms", "50", NULL);
    for (i = 0; i < 5; i++)
        drv_test_xadd(t, "default", NULL, 0, "job", "work", "tenant", "B",
                      "dir", b, "ms", "50", NULL);
    drv_test_wait_stat(t, "default", "processed", 5);
    assert_int_equal(drv_test_file_num(b, "max"), 1);
    assert_int_equal(drv_test_file_num(a, "cur"), 1);
    assert_int_equal(drv_test_file_num(a2, "max"), -1); /* none ran */
    assert_int_equal(drv_test_num(t, "ZCARD t:{default}:conc:work:A"), 1);
    assert_int_equal(drv_test_num(t, "EXISTS t:{default}:conc:work:B"), 0);
    /* a held slot's key expires 2 leases after its last renewal */
    assert_true(drv_test_num(t, "PTTL t:{default}:conc:work:A") > 0);
    assert_true(drv_test_num(t, "PTTL t:{default}:conc:work:A") <= 6000);
    /* rate keys per tenant expire once idle (a second after their last
     * slot), although tenant A still has jobs waiting */
    wait_until_num(drv_test_num(t, "EXISTS t:{default}:rate:work:A") +
                   drv_test_num(t, "EXISTS t:{default}:rate:work:B"), ==,
                   0, "the tenants' rate keys to expire");
    assert_int_equal(drv_test_file_num(a2, "max"), -1);
    /* a graceful stop gives back the jobs waiting for admission at
     * once, and the long one at shutdown_timeout: all four wait on the
     * stream again, none pending, no attempt counted */
    stop_all(t, 3);
    /* (the workers stop one after the other: when the long job's slot
     * comes free at its worker's stop, a worker still running may admit
     * and run one of A's waiting jobs; that one is processed, not lost) */
    assert_int_equal(drv_test_num(t, "XLEN t:{default}:jobs") +
                     drv_test_stat(t, "default", "processed") - 5, 4);
    assert_int_equal(drv_test_num(t, "XPENDING t:{default}:jobs drover"),
                     0);
    assert_int_equal(drv_test_stat(t, "default", "failed"), 0);
    assert_int_equal(drv_test_num(t, "EXISTS t:{default}:conc:work:A"), 0);
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
    assert_int_equal(drv_test_redis_calls(t->c, "time", 0), 0);
    assert_int_equal(drv_test_redis_calls(t->c, "get", 0), 0);
    /* and one limited job does call it */
    drv_test_xadd(t, "default", NULL, 0, "job", "limited", "id", "y", NULL);
    drv_test_wait_stat(t, "default", "processed", 201);
    assert_true(drv_test_redis_calls(t->c, "time", 0) >= 1);
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
        cmocka_unit_test_setup_teardown(test_admit_global_concurrency,
                                        drv_test_droverd_setup,
                                        drv_test_droverd_teardown),
        cmocka_unit_test_setup_teardown(test_admit_rate,
                                        drv_test_droverd_setup,
                                        drv_test_droverd_teardown),
        cmocka_unit_test_setup_teardown(test_admit_keyed,
                                        drv_test_droverd_setup,
                                        drv_test_droverd_teardown),
        cmocka_unit_test_setup_teardown(test_admit_unlimited_cost,
                                        drv_test_droverd_setup,
                                        drv_test_droverd_teardown),
    };

    drv_test_droverd_fixture = &opts;
    drv_test_filter_from_env();
    return cmocka_run_group_tests(tests, drv_test_redis_group_setup,
                                  drv_test_redis_group_teardown);
}
