/*
 * test_progress.c -- a job's progress reports kept in its run: an exec
 * child's "PERCENT [MESSAGE]" lines parsed, reports from two threads,
 * the worker's take (only new reports, the last one wins), and a run that
 * never reports allocating nothing.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "harness.h"
#include "drover/common.h"
#include "drover/handlers.h"

static struct drv_htype ht;   /* the run only needs one to point at */

/* A run with no job: progress needs none. */
static void
run_init(struct drv_hrun *r)
{
    memset(&ht, 0, sizeof ht);
    ht.magic = DRV_HTYPE_MAGIC;
    memset(r, 0, sizeof *r);
    r->magic = DRV_HRUN_MAGIC;
    r->ht = &ht;
}

static int
take(struct drv_hrun *r, unsigned *seq, int *pct, char *msg)
{
    size_t len = 0;
    int got = drv_hrun_progress_take(r, seq, pct, msg, &len);

    msg[got ? len : 0] = '\0';
    return got;
}

static void
test_progress_lines(void **st)
{
    static const struct {
        const char *line;
        int rc, pct;
        const char *msg;
    } cases[] = {
        {"42 half way", 0, 42, "half way"},
        {"7", 0, 7, ""},
        {"  13%  spaced ", 0, 13, " spaced"},
        {"99.9 nearly", 0, 99, "nearly"},
        {"250 too much", 0, 100, "too much"},
        {"50\r", 0, 50, ""},
        {"x 50", -EINVAL, -1, NULL},
        {"50x", -EINVAL, -1, NULL},
        {"", -EINVAL, -1, NULL},
    };
    char msg[DRV_HRUN_PROGRESS_MSG_MAX + 1];
    struct drv_hrun r;
    unsigned seq = 0;
    size_t i;
    int pct;

    (void)st;
    run_init(&r);
    for (i = 0; i < DRV_ARRAY_LEN(cases); i++) {
        assert_int_equal(drv_hrun_progress_line(&r, cases[i].line,
                                                strlen(cases[i].line)),
                         cases[i].rc);
        if (cases[i].rc < 0) {
            assert_int_equal(take(&r, &seq, &pct, msg), 0);
            continue;
        }
        assert_int_equal(take(&r, &seq, &pct, msg), 1);
        assert_int_equal(pct, cases[i].pct);
        assert_string_equal(msg, cases[i].msg);
    }
    drv_hrun_fini(&r);
}

static void
test_progress_nothing_until_reported(void **st)
{
    char msg[DRV_HRUN_PROGRESS_MSG_MAX + 1], big[600];
    struct drv_hrun r;
    unsigned seq = 0;
    int pct = -1;

    (void)st;
    run_init(&r);
    assert_int_equal(take(&r, &seq, &pct, msg), 0);
    assert_null(r.progress);     /* nothing allocated without a report */
    drv_hrun_progress(&r, 10, "a", 1);
    drv_hrun_progress(&r, 20, "b", 1);  /* coalesced: the last one wins */
    assert_int_equal(take(&r, &seq, &pct, msg), 1);
    assert_int_equal(pct, 20);
    assert_string_equal(msg, "b");
    assert_int_equal(take(&r, &seq, &pct, msg), 0); /* nothing new */
    memset(big, 'm', sizeof big);
    drv_hrun_progress(&r, -5, big, sizeof big);
    assert_int_equal(take(&r, &seq, &pct, msg), 1);
    assert_int_equal(pct, 0);
    assert_int_equal(strlen(msg), DRV_HRUN_PROGRESS_MSG_MAX);
    drv_hrun_fini(&r);
    assert_null(r.progress);
}

/* Two threads report at once, the first reports of a run included: one
 * store, every report counted, no race (TSan). */
struct reporter {
    struct drv_hrun *r;
    int base;
};

static void *
reporter_main(void *arg)
{
    struct reporter *rp = arg;
    int i;

    for (i = 0; i < 1000; i++)
        drv_hrun_progress(rp->r, rp->base + i % 50, "t", 1);
    return NULL;
}

static void
test_progress_threads(void **st)
{
    char msg[DRV_HRUN_PROGRESS_MSG_MAX + 1];
    struct reporter a, b;
    struct drv_hrun r;
    pthread_t ta, tb;
    unsigned seq = 0;
    int pct = 0, n = 0;

    (void)st;
    run_init(&r);
    a.r = b.r = &r;
    a.base = 0;
    b.base = 50;
    assert_int_equal(pthread_create(&ta, NULL, reporter_main, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, reporter_main, &b), 0);
    /* the worker's side takes meanwhile, as its tick does */
    while (seq < 2000) {
        if (!take(&r, &seq, &pct, msg))
            continue;
        n++;
        assert_true(pct >= 0 && pct < 100);
        assert_string_equal(msg, "t");
    }
    assert_true(n >= 1);
    assert_int_equal(pthread_join(ta, NULL), 0);
    assert_int_equal(pthread_join(tb, NULL), 0);
    assert_int_equal(take(&r, &seq, &pct, msg), 0);
    drv_hrun_fini(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_progress_lines),
        cmocka_unit_test(test_progress_nothing_until_reported),
        cmocka_unit_test(test_progress_threads),
    };

    drv_test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
