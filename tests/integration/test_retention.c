/*
 * test_retention.c -- the dead stream stays bounded: a real droverd
 * against a real redis-server, worker.dead_max and worker.dead_max_age
 * applied by the scripts that write dead entries. Waits poll Redis with
 * generous deadlines (guards against hangs, never speed checks).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "droverd.h"
#include "drover/clock.h"

static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-rt",
    .prefix = "t",
    .log_level = "info",
    .worker_defaults = "  shutdown_timeout: 5s\n  visibility_timeout: 3s\n",
    .body_head = NULL,
    .tail_lines = 40,
};

/* Enqueue jobs from..to-1 of type f (fail, permanent: dead at once), each
 * with n = its number; pipelined, one reply read per job. */
static void
enqueue_failing(struct drv_test_droverd *t, int from, int to)
{
    redisReply *r = NULL;
    int i;

    for (i = from; i < to; i++)
        assert_int_equal(redisAppendCommand(t->c, "XADD t:{default}:jobs * "
                                            "job f permanent 1 error boom "
                                            "n %d", i), REDIS_OK);
    for (i = from; i < to; i++) {
        assert_int_equal(redisGetReply(t->c, (void **)&r), REDIS_OK);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        freeReplyObject(r);
    }
}

/* The n field of every entry of the dead stream: the lowest into *lo,
 * and into seen[n - base] a mark for each n in [base, base + nseen). */
static void
dead_ns(struct drv_test_droverd *t, long *lo, char *seen, long base,
        long nseen)
{
    redisReply *r = redisCommand(t->c, "XRANGE t:{default}:dead - +");
    size_t i, j;

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    *lo = -1;
    for (i = 0; i < r->elements; i++) {
        const redisReply *f = r->element[i]->element[1];

        for (j = 0; j + 1 < f->elements; j += 2) {
            long n;

            if (strcmp(f->element[j]->str, "n") != 0)
                continue;
            n = atol(f->element[j + 1]->str);
            if (*lo < 0 || n < *lo)
                *lo = n;
            if (n >= base && n < base + nseen)
                seen[n - base] = 1;
        }
    }
    freeReplyObject(r);
}

/*
 * 20,000 jobs go dead with dead_max 1000, in 20 waves of 1000 (each wave
 * dead before the next is enqueued, so "newest" is well defined by wave):
 * about 1000 entries are left (MAXLEN ~ drops whole stream nodes only, so
 * up to one node more), every job of the last wave is among them and
 * nothing older than the wave before it.
 */
static void
test_retention_dead_max_keeps_the_newest(void **st)
{
    struct drv_test_droverd *t = *st;
    char seen[1000];
    long long len, mem;
    long lo = -1;
    int wave, i;

    drv_test_droverd_config(t, "  dead_max: 1000\n",
                            "queues: [default]\n"
                            "jobs:\n  f:\n    handler: fail\n");
    drv_test_droverd_start(t, 0);
    for (wave = 0; wave < 20; wave++) {
        enqueue_failing(t, wave * 1000, (wave + 1) * 1000);
        drv_test_wait_stat(t, "default", "dead", (wave + 1) * 1000LL);
        len = drv_test_num(t, "XLEN t:{default}:dead");
        assert_true(len <= 1100);
    }
    len = drv_test_num(t, "XLEN t:{default}:dead");
    mem = drv_test_num(t, "MEMORY USAGE t:{default}:dead");
    fprintf(stderr, "# 20000 dead jobs, dead_max 1000: %lld entries kept, "
            "%lld bytes\n", len, mem);
    assert_true(len >= 1000 && len <= 1100);
    memset(seen, 0, sizeof seen);
    dead_ns(t, &lo, seen, 19000, 1000);
    for (i = 0; i < 1000; i++)
        if (!seen[i])
            fail_msg("job %d of the last wave is not kept", 19000 + i);
    assert_true(lo >= 18000);
    assert_int_equal(drv_test_stat(t, "default", "dead"), 20000);
    drv_test_droverd_stop(t, 0, 0);
}

/*
 * dead_max_age: entries written by hand with ids 200 days old (three
 * stream nodes and more) and 10 days old; one new dead entry trims
 * MINID ~ now - 30d: the old ones go but for at most one stream node
 * (MINID ~ drops whole nodes only; it holds at most 100 entries), the
 * recent and the new ones all stay.
 */
static void
test_retention_dead_max_age_trims_old_entries(void **st)
{
    struct drv_test_droverd *t = *st;
    long long now = drv_clock_unix_ms(), old;
    redisReply *r;
    int i;

    drv_test_droverd_config(t, "  dead_max_age: 30d\n",
                            "queues: [default]\n"
                            "jobs:\n  f:\n    handler: fail\n");
    for (i = 0; i < 350; i++) {
        r = redisCommand(t->c, "XADD t:{default}:dead %lld-%d job f n old "
                         "error e", now - 200LL * 86400000, i);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        freeReplyObject(r);
    }
    for (i = 0; i < 5; i++) {
        r = redisCommand(t->c, "XADD t:{default}:dead %lld-%d job f n recent "
                         "error e", now - 10LL * 86400000, i);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        freeReplyObject(r);
    }
    /* nothing trims before a dead entry is written */
    assert_int_equal(drv_test_num(t, "XLEN t:{default}:dead"), 355);
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "job", "f", "permanent", "1",
                  "n", "new", NULL);
    drv_test_wait_stat(t, "default", "dead", 1);
    old = drv_test_num(t, "XLEN t:{default}:dead") - 6;
    fprintf(stderr, "# dead_max_age 30d: %lld of 350 entries 200 days old "
            "left\n", old);
    assert_true(old >= 0 && old < 100);
    /* the recent and the new entries all stay */
    r = redisCommand(t->c, "XRANGE t:{default}:dead %lld +",
                     now - 31LL * 86400000);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 6);
    freeReplyObject(r);
    drv_test_droverd_stop(t, 0, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        TD(test_retention_dead_max_keeps_the_newest),
        TD(test_retention_dead_max_age_trims_old_entries),
    };
#undef T

    drv_test_droverd_fixture = &opts;
    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, drv_test_redis_group_setup,
                                  drv_test_redis_group_teardown);
}
