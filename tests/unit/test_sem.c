/* test_sem.c -- semaphore: FIFO hand-off, no barging, wakeup-then-cancel,
 * try-acquire, run-time limit changes, unlimited mode, stats, teardown. */
#include <errno.h>
#include <string.h>

#include <event2/event.h>

#include "harness.h"
#include "drover/common.h"
#include "drover/loop.h"
#include "drover/sem.h"

struct state {
    struct drv_loop *loop;
    struct drv_sem *sem;
    int order[16];      /* waiter ids in callback order */
    int n_order;        /* entries in order */
    int n_cancelled;    /* callbacks with -ECANCELED */
    int release_in_cb;  /* callbacks release their permit at once */
};

struct waiter {
    unsigned magic;
#define WAITER_MAGIC 0x3a17e001U
    struct drv_sem_waiter w;  /* embedded */
    struct state *s;          /* borrowed */
    int id;                   /* test label */
    int calls;                /* callback runs */
    int status;               /* last status */
};

static int
setup(void **st)
{
    struct state *s = calloc(1, sizeof *s);
    struct drv_loop_opts lo = {.lag_interval_ms = -1};

    s->loop = drv_loop_create(&lo);
    assert_non_null(s->loop);
    *st = s;
    return 0;
}

static int
teardown(void **st)
{
    struct state *s = *st;
    struct event_base *base = drv_loop_base(s->loop);

    drv_sem_free(s->sem);
    assert_int_equal(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED |
                                               EVENT_BASE_COUNT_ACTIVE), 0);
    drv_loop_free(s->loop);
    free(s);
    return 0;
}

static void
on_permit(struct drv_sem_waiter *w, int status, void *ctx)
{
    struct waiter *x;

    DRV_CAST(x, ctx, WAITER_MAGIC);
    assert_ptr_equal(w, &x->w);
    x->calls++;
    x->status = status;
    if (status == 0) {
        x->s->order[x->s->n_order++] = x->id;
        if (x->s->release_in_cb)
            drv_sem_release(x->s->sem);
    } else {
        x->s->n_cancelled++;
    }
}

static void
winit(struct waiter *x, struct state *s, int id)
{
    memset(x, 0, sizeof *x);
    x->magic = WAITER_MAGIC;
    x->s = s;
    x->id = id;
}

static void
wait_on(struct state *s, struct waiter *x)
{
    assert_int_equal(drv_sem_acquire(s->sem, &x->w, on_permit, x), 0);
}

static void
test_sem_fifo_handoff(void **st)
{
    struct state *s = *st;
    struct waiter x[5];
    struct drv_sem_stats ss;
    int i;

    assert_int_equal(drv_sem_create(s->loop, 1, &s->sem), 0);
    assert_int_equal(drv_sem_try_acquire(s->sem), 0);
    for (i = 0; i < 5; i++) {
        winit(&x[i], s, i);
        wait_on(s, &x[i]);
    }
    drv_sem_get_stats(s->sem, &ss);
    assert_int_equal(ss.waiting, 5);
    assert_int_equal(ss.in_use, 1);
    s->release_in_cb = 1;
    drv_sem_release(s->sem);
    assert_int_equal(s->n_order, 0); /* never on the releaser's stack */
    assert_int_equal(drv_loop_run(s->loop), 0);
    assert_int_equal(s->n_order, 5);
    for (i = 0; i < 5; i++) {
        assert_int_equal(s->order[i], i);
        assert_int_equal(x[i].calls, 1);
    }
    drv_sem_get_stats(s->sem, &ss);
    assert_int_equal(ss.in_use, 0);
    assert_int_equal(ss.waiting, 0);
    assert_int_equal(ss.hwm, 1);
    assert_int_equal(ss.acquired, 6);
}

static void
test_sem_no_barging(void **st)
{
    struct state *s = *st;
    struct waiter a;

    assert_int_equal(drv_sem_create(s->loop, 1, &s->sem), 0);
    assert_int_equal(drv_sem_try_acquire(s->sem), 0);
    assert_int_equal(drv_sem_try_acquire(s->sem), -EAGAIN); /* full */
    winit(&a, s, 1);
    wait_on(s, &a);
    drv_sem_release(s->sem);
    /* the permit already belongs to a, though its callback has not run */
    assert_int_equal(drv_sem_try_acquire(s->sem), -EAGAIN);
    assert_int_equal(drv_loop_run(s->loop), 0);
    assert_int_equal(a.calls, 1);
    assert_int_equal(drv_sem_try_acquire(s->sem), -EAGAIN);
    drv_sem_release(s->sem);
    assert_int_equal(drv_sem_try_acquire(s->sem), 0);
    drv_sem_release(s->sem);
}

static void
test_sem_acquire_free_permit_is_deferred(void **st)
{
    struct state *s = *st;
    struct waiter a;

    assert_int_equal(drv_sem_create(s->loop, 2, &s->sem), 0);
    winit(&a, s, 1);
    wait_on(s, &a);
    assert_int_equal(a.calls, 0); /* not from inside acquire */
    assert_int_equal(drv_loop_run(s->loop), 0);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, 0);
    drv_sem_release(s->sem);
}

static void
test_sem_wakeup_then_cancel_passes_permit(void **st)
{
    struct state *s = *st;
    struct waiter a, b, c;
    struct drv_sem_stats ss;

    assert_int_equal(drv_sem_create(s->loop, 1, &s->sem), 0);
    assert_int_equal(drv_sem_try_acquire(s->sem), 0);
    winit(&a, s, 1);
    winit(&b, s, 2);
    winit(&c, s, 3);
    wait_on(s, &a);
    wait_on(s, &b);
    wait_on(s, &c);
    drv_sem_release(s->sem);     /* handed to a */
    assert_int_equal(drv_sem_cancel(&a.w), 0); /* woken, then cancelled */
    drv_sem_get_stats(s->sem, &ss);
    assert_int_equal(ss.in_use, 1); /* passed to b, not lost */
    assert_int_equal(ss.waiting, 1);
    assert_int_equal(drv_sem_cancel(&a.w), -ENOENT);
    assert_int_equal(drv_loop_run(s->loop), 0);
    assert_int_equal(a.calls, 0); /* never runs after cancel */
    assert_int_equal(b.calls, 1);
    assert_int_equal(c.calls, 0);
    drv_sem_release(s->sem);     /* b -> c */
    assert_int_equal(drv_loop_run(s->loop), 0);
    assert_int_equal(c.calls, 1);
    assert_int_equal(drv_sem_cancel(&c.w), -ENOENT);
    drv_sem_get_stats(s->sem, &ss);
    assert_int_equal(ss.in_use, 1);
    assert_int_equal(ss.hwm, 1); /* never duplicated */
    drv_sem_release(s->sem);
}

static void
test_sem_cancel_waiting(void **st)
{
    struct state *s = *st;
    struct waiter a, b;

    assert_int_equal(drv_sem_create(s->loop, 1, &s->sem), 0);
    assert_int_equal(drv_sem_try_acquire(s->sem), 0);
    winit(&a, s, 1);
    winit(&b, s, 2);
    wait_on(s, &a);
    wait_on(s, &b);
    assert_int_equal(drv_sem_cancel(&a.w), 0);
    drv_sem_release(s->sem);
    assert_int_equal(drv_loop_run(s->loop), 0);
    assert_int_equal(a.calls, 0);
    assert_int_equal(b.calls, 1);
    drv_sem_release(s->sem);
}

static void
test_sem_limit_change_applies_to_future(void **st)
{
    struct state *s = *st;
    struct waiter a, b, c;
    struct drv_sem_stats ss;

    assert_int_equal(drv_sem_create(s->loop, 3, &s->sem), 0);
    assert_int_equal(drv_sem_try_acquire(s->sem), 0);
    assert_int_equal(drv_sem_try_acquire(s->sem), 0);
    assert_int_equal(drv_sem_try_acquire(s->sem), 0);
    /* lower below in_use: nothing revoked, nothing crashes */
    assert_int_equal(drv_sem_set_limit(s->sem, 1), 0);
    assert_int_equal(drv_sem_set_limit(s->sem, -2), -EINVAL);
    drv_sem_get_stats(s->sem, &ss);
    assert_int_equal(ss.in_use, 3);
    assert_int_equal(ss.limit, 1);
    winit(&a, s, 1);
    winit(&b, s, 2);
    winit(&c, s, 3);
    wait_on(s, &a);
    drv_sem_release(s->sem);
    drv_sem_release(s->sem);   /* in_use 1 == limit: a still waits */
    assert_int_equal(drv_loop_run(s->loop), 0);
    assert_int_equal(a.calls, 0);
    drv_sem_release(s->sem);   /* in_use 0 < 1: a gets it */
    assert_int_equal(drv_loop_run(s->loop), 0);
    assert_int_equal(a.calls, 1);
    /* pause, then raise: waiters are served at once */
    assert_int_equal(drv_sem_set_limit(s->sem, 0), 0);
    wait_on(s, &b);
    wait_on(s, &c);
    drv_sem_release(s->sem);
    assert_int_equal(drv_loop_run(s->loop), 0);
    assert_int_equal(b.calls + c.calls, 0);
    assert_int_equal(drv_sem_set_limit(s->sem, 2), 0);
    assert_int_equal(drv_loop_run(s->loop), 0);
    assert_int_equal(b.calls, 1);
    assert_int_equal(c.calls, 1);
    drv_sem_release(s->sem);
    drv_sem_release(s->sem);
}

static void
test_sem_unlimited(void **st)
{
    struct state *s = *st;
    struct drv_sem_stats ss;
    int i;

    assert_int_equal(drv_sem_create(s->loop, -1, &s->sem), 0);
    for (i = 0; i < 1000; i++)
        assert_int_equal(drv_sem_try_acquire(s->sem), 0);
    drv_sem_get_stats(s->sem, &ss);
    assert_int_equal(ss.limit, -1);
    assert_int_equal(ss.in_use, 1000);
    assert_int_equal(ss.hwm, 1000);
    for (i = 0; i < 1000; i++)
        drv_sem_release(s->sem);
    drv_sem_get_stats(s->sem, &ss);
    assert_int_equal(ss.in_use, 0);
    assert_int_equal(ss.hwm, 1000);
}

static void
test_sem_free_cancels_waiters(void **st)
{
    struct state *s = *st;
    struct waiter a, b;
    struct drv_sem *sem = NULL;

    assert_int_equal(drv_sem_create(s->loop, 1, &sem), 0);
    assert_int_equal(drv_sem_create(s->loop, -5, &s->sem), -EINVAL);
    assert_int_equal(drv_sem_try_acquire(sem), 0);
    s->sem = sem;
    winit(&a, s, 1);
    winit(&b, s, 2);
    wait_on(s, &a);
    wait_on(s, &b);
    drv_sem_release(sem); /* a is handed the permit, not yet told */
    drv_sem_free(sem);    /* both told -ECANCELED, a's permit taken back */
    s->sem = NULL;
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, -ECANCELED);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.status, -ECANCELED);
    assert_int_equal(s->n_cancelled, 2);
    assert_int_equal(drv_loop_run(s->loop), 0);
}

/* free from inside a waiter callback, after giving the permit back */
static void
on_permit_free(struct drv_sem_waiter *w, int status, void *ctx)
{
    struct waiter *x;

    on_permit(w, status, ctx);
    DRV_CAST(x, ctx, WAITER_MAGIC);
    if (status == 0 && x->id == 1) {
        drv_sem_release(x->s->sem);
        drv_sem_free(x->s->sem);
        x->s->sem = NULL;
    }
}

static void
test_sem_free_inside_callback(void **st)
{
    struct state *s = *st;
    struct waiter a, b;

    assert_int_equal(drv_sem_create(s->loop, 1, &s->sem), 0);
    winit(&a, s, 1);
    winit(&b, s, 2);
    assert_int_equal(drv_sem_acquire(s->sem, &a.w, on_permit_free, &a), 0);
    assert_int_equal(drv_sem_acquire(s->sem, &b.w, on_permit_free, &b), 0);
    assert_int_equal(drv_loop_run(s->loop), 0);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.status, 0);
    assert_int_equal(b.calls, 1); /* handed a's permit, then freed */
    assert_int_equal(b.status, -ECANCELED);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sem_fifo_handoff, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sem_no_barging, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_sem_acquire_free_permit_is_deferred, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_sem_wakeup_then_cancel_passes_permit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sem_cancel_waiting, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_sem_limit_change_applies_to_future, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sem_unlimited, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sem_free_cancels_waiters, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sem_free_inside_callback, setup,
                                        teardown),
    };

    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, NULL, NULL);
}
