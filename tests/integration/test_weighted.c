/*
 * test_weighted.c -- weighted queues (the map form of `queues`) with a
 * real droverd against a real redis-server: while every queue has jobs
 * waiting, the jobs started split by weight; an empty or paused queue's
 * share goes to the others; the list form stays strict priority.
 *
 * Shares are counted from droverd's start trace (one line per job
 * started, in start order), over the first N starts: a window in which
 * every queue still has jobs waiting, because each queue holds more jobs
 * than its share of N. Nothing is timed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "droverd.h"

static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-wq",
    .prefix = "t",
    .log_level = "info",
    .worker_defaults = "  shutdown_timeout: 5s\n",
    .body_head = NULL,
    .tail_lines = 40,
};

#define NQ_MAX 4

/* n jobs of type e on queue q, pipelined. */
static void
enqueue_many(struct drv_test_droverd *t, const char *q, int n)
{
    redisReply *r;
    int i;

    for (i = 0; i < n; i++)
        redisAppendCommand(t->c, "XADD t:{%s}:jobs * job e n %d", q, i);
    for (i = 0; i < n; i++) {
        assert_int_equal(redisGetReply(t->c, (void **)&r), REDIS_OK);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        freeReplyObject(r);
    }
}

/*
 * The queue of each of the first n starts of the trace: counts per queue
 * of names (nq of them) into count; order[i] the index of start i's
 * queue (order may be NULL). Fails on a line naming another queue.
 */
static void
count_starts(const struct drv_test_droverd *t, int n, const char *const *names,
             int nq, int *count, int *order)
{
    FILE *f = fopen(t->trace, "r");
    char line[256], q[64];
    int i, k;

    assert_non_null(f);
    memset(count, 0, (size_t)nq * sizeof *count);
    for (i = 0; i < n; i++) {
        assert_non_null(fgets(line, sizeof line, f));
        assert_int_equal(sscanf(line, "%*s %63s", q), 1);
        for (k = 0; k < nq && strcmp(names[k], q) != 0; k++)
            ;
        if (k == nq)
            fail_msg("start %d of queue %s", i, q);
        count[k]++;
        if (order != NULL)
            order[i] = k;
    }
    fclose(f);
}

/* Share of count[k] in n within want +- 0.02 (two percentage points). */
static void
assert_share(const char *q, int count, int n, double want)
{
    double got = (double)count / n;

    fprintf(stderr, "  queue %s: %d of %d starts = %.4f (weight share "
            "%.4f)\n", q, count, n, got, want);
    if (got < want - 0.02 || got > want + 0.02)
        fail_msg("queue %s: share %.4f, want %.4f +- 0.02", q, got, want);
}

/* Config worker (worker: lines) and queues, noop jobs; per[k] jobs on
 * names[k], enqueued in that order; one droverd until window jobs
 * started; the starts per queue of the window into count. */
static void
backlog_run(struct drv_test_droverd *t, const char *worker,
            const char *queues, const char *const *names, const int *per,
            int nq, int window, int *count)
{
    char body[256];
    int k;

    snprintf(body, sizeof body, "queues: %s\njobs:\n  e:\n    handler: "
             "noop\n", queues);
    drv_test_droverd_config(t, worker, body);
    for (k = 0; k < nq; k++)
        enqueue_many(t, names[k], per[k]);
    drv_test_droverd_start(t, 0);
    drv_test_wait_started(t, window);
    drv_test_droverd_stop(t, 0, 0);
    count_starts(t, window, names, nq, count, NULL);
}

static void
test_weighted_shares_follow_weights(void **st)
{
    struct drv_test_droverd *t = *st;
    static const char *const names[] = {"critical", "default", "low"};
    static const int per[] = {2500, 2500, 2500};
    const int window = 3000;
    int count[3];

    /* few permits and small batches: many fetches, each sharing out a
     * few permits. critical's share of the window (1800) is less than it
     * holds: all three stay backlogged through it */
    backlog_run(t, "  concurrency: 8\n  batch: 4\n",
                "{critical: 6, default: 3, low: 1}", names, per, 3, window,
                count);
    assert_share("critical", count[0], window, 0.6);
    assert_share("default", count[1], window, 0.3);
    assert_share("low", count[2], window, 0.1);
}

/* Two droverd on the same queues: each splits its own starts by weight,
 * so the starts of both do too. Counted from the queues' processed
 * counters (the two workers' trace lines would share one file), with
 * backlogs far larger than what runs before both have stopped. */
static void
test_weighted_shares_two_workers(void **st)
{
    struct drv_test_droverd *t = *st;
    static const char *const names[] = {"critical", "default", "low"};
    char body[256];
    long long done[3], total = 0;
    int k;

    snprintf(body, sizeof body, "queues: {critical: 6, default: 3, low: 1}"
             "\njobs:\n  e:\n    handler: noop\n");
    drv_test_droverd_config(t, "  concurrency: 8\n  batch: 4\n", body);
    for (k = 0; k < 3; k++)
        enqueue_many(t, names[k], 20000);
    drv_test_droverd_start(t, 0);
    drv_test_droverd_start(t, 1);
    drv_test_wait_started(t, 3000);
    drv_test_droverd_stop(t, 0, 0);
    drv_test_droverd_stop(t, 1, 0);
    /* both took part: each logged batches it ran */
    assert_true(drv_test_file_count(t->w[0].log, "batch done") > 0);
    assert_true(drv_test_file_count(t->w[1].log, "batch done") > 0);
    for (k = 0; k < 3; k++) {
        done[k] = drv_test_stat(t, names[k], "processed");
        total += done[k];
    }
    /* every queue still had jobs waiting when both had stopped */
    assert_true(done[0] < 20000);
    assert_share("critical", (int)done[0], (int)total, 0.6);
    assert_share("default", (int)done[1], (int)total, 0.3);
    assert_share("low", (int)done[2], (int)total, 0.1);
}

/* With larger batches: one fetch shares out many permits at once. */
static void
test_weighted_shares_large_batches(void **st)
{
    struct drv_test_droverd *t = *st;
    static const char *const names[] = {"a", "b"};
    static const int per[] = {2000, 2000};
    const int window = 2000;
    int count[2];

    backlog_run(t, "  concurrency: 64\n  batch: 32\n", "{a: 1, b: 3}",
                names, per, 2, window, count);
    assert_share("a", count[0], window, 0.25);
    assert_share("b", count[1], window, 0.75);
}

/* An empty queue and a paused one get nothing: their shares go to the
 * others, which keep their ratio to each other. */
static void
test_weighted_empty_and_paused_shares_go_to_others(void **st)
{
    struct drv_test_droverd *t = *st;
    static const char *const names[] = {"default", "low", "critical",
                                        "empty"};
    const int window = 2000;
    int count[4];

    drv_test_droverd_config(t, "  concurrency: 8\n  batch: 4\n",
                            "queues: {critical: 6, empty: 10, default: 3, "
                            "low: 1}\n"
                            "jobs:\n  e:\n    handler: noop\n");
    freeReplyObject(redisCommand(t->c, "SET t:{critical}:paused 1"));
    enqueue_many(t, "critical", 500);
    enqueue_many(t, "default", 2500);
    enqueue_many(t, "low", 2500);
    drv_test_droverd_start(t, 0);
    drv_test_wait_started(t, window);
    drv_test_droverd_stop(t, 0, 0);
    count_starts(t, window, names, 4, count, NULL);
    assert_int_equal(count[2], 0);
    assert_int_equal(count[3], 0);
    assert_share("default", count[0], window, 0.75);
    assert_share("low", count[1], window, 0.25);
    assert_int_equal(drv_test_num(t, "XLEN t:{critical}:jobs"), 500);
}

/* n sleep jobs of 2 ms on queue q, pipelined. */
static void
enqueue_sleeps(struct drv_test_droverd *t, const char *q, int n)
{
    redisReply *r;
    int i;

    for (i = 0; i < n; i++)
        redisAppendCommand(t->c, "XADD t:{%s}:jobs * job e ms 2", q);
    for (i = 0; i < n; i++) {
        assert_int_equal(redisGetReply(t->c, (void **)&r), REDIS_OK);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        freeReplyObject(r);
    }
}

/* A queue that was empty and fills up again while the others are busy
 * gets its share back from its first start on. */
static void
test_weighted_queue_refilled_gets_its_share(void **st)
{
    struct drv_test_droverd *t = *st;
    static const char *const names[] = {"hi", "lo"};
    const int window = 1000;
    int count[2], c[2] = {0, 0}, *order, first_hi = -1, k, n;

    /* sleep jobs: lo stays backlogged for seconds */
    drv_test_droverd_config(t, "  concurrency: 4\n  batch: 2\n",
                            "queues: {hi: 4, lo: 1}\n"
                            "jobs:\n  e:\n    handler: sleep\n");
    enqueue_sleeps(t, "lo", 3000);
    drv_test_droverd_start(t, 0);
    drv_test_wait_started(t, 50);
    /* hi was empty: lo had every start. Now hi fills up */
    enqueue_sleeps(t, "hi", 1000);
    wait_until(drv_test_file_contains(t->trace, " hi "), "hi started");
    n = drv_test_started(t);
    order = calloc((size_t)n, sizeof *order);
    assert_non_null(order);
    count_starts(t, n, names, 2, count, order);
    for (k = 0; k < n && first_hi < 0; k++)
        if (order[k] == 0)
            first_hi = k;
    free(order);
    assert_true(first_hi >= 50);
    /* the window from hi's first start: hi holds 1000 and takes ~800 of
     * it, lo ~200 of its ~2900 */
    n = first_hi + window;
    drv_test_wait_started(t, n);
    drv_test_droverd_stop(t, 0, 0);
    order = calloc((size_t)n, sizeof *order);
    assert_non_null(order);
    count_starts(t, n, names, 2, count, order);
    for (k = first_hi; k < n; k++)
        c[order[k]]++;
    free(order);
    assert_share("hi", c[0], window, 0.8);
    assert_share("lo", c[1], window, 0.2);
}

/* The list form: strict priority. Only the first (idle, blocking) read
 * may take from every queue, at most its COUNT each (batch / queues);
 * after it a later queue gets nothing while an earlier one has jobs. */
static void
test_list_form_stays_strict(void **st)
{
    struct drv_test_droverd *t = *st;
    /* enqueued in the reverse of priority order */
    static const char *const names[] = {"c", "b", "a"};
    static const int per[] = {1000, 1000, 1000};
    const int per_queue = 1000;
    int cba[3], count[3];

    backlog_run(t, "  concurrency: 8\n  batch: 6\n", "[a, b, c]", names, per,
                3, per_queue, cba);
    count[0] = cba[2];
    count[1] = cba[1];
    count[2] = cba[0];
    fprintf(stderr, "  first %d starts: a %d, b %d, c %d\n", per_queue,
            count[0], count[1], count[2]);
    assert_true(count[1] <= 2);
    assert_true(count[2] <= 2);
    assert_true(count[0] >= per_queue - 4);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        TD(test_weighted_shares_follow_weights),
        TD(test_weighted_shares_two_workers),
        TD(test_weighted_shares_large_batches),
        TD(test_weighted_empty_and_paused_shares_go_to_others),
        TD(test_weighted_queue_refilled_gets_its_share),
        TD(test_list_form_stays_strict),
    };
#undef T

    drv_test_droverd_fixture = &opts;
    drv_test_filter_from_env();
    return cmocka_run_group_tests(tests, drv_test_redis_group_setup,
                                  drv_test_redis_group_teardown);
}
