/* test_loop.c -- deferred calls from threads, lag meter (and its idle
 * period), empty-loop exit. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <event2/event.h>

#include "harness.h"
#include "drover/loop.h"

struct state {
    struct drv_loop *loop;
    int checkpoint;
};

static int
setup(void **st)
{
    struct state *s = calloc(1, sizeof *s);

    s->loop = drv_loop_create(NULL);
    assert_non_null(s->loop);
    *st = s;
    return 0;
}

static int
teardown(void **st)
{
    struct state *s = *st;

    drv_loop_free(s->loop);
    free(s);
    return 0;
}

static void
bump(void *ctx)
{
    struct state *s = ctx;

    s->checkpoint++;
}

static void *
defer_many(void *arg)
{
    struct state *s = arg;
    int i;

    for (i = 0; i < 1000; i++)
        assert_int_equal(drv_loop_defer(s->loop, bump, s), 0);
    return NULL;
}

static void
on_guard(evutil_socket_t fd, short w, void *arg)
{
    struct state *s = arg;

    (void)fd;
    (void)w;
    if (s->checkpoint < 2000) {
        struct event *ev = event_base_get_running_event(
            drv_loop_base(s->loop));
        struct timeval tv = {0, 1000};
        event_add(ev, &tv);
    }
}

static void
test_loop_defer_from_threads(void **st)
{
    struct state *s = *st;
    pthread_t a, b;
    struct event *guard;
    struct timeval tv = {0, 1000};

    /* a timer keeps the loop alive until all 2000 defers ran */
    guard = evtimer_new(drv_loop_base(s->loop), on_guard, s);
    event_add(guard, &tv);
    assert_int_equal(pthread_create(&a, NULL, defer_many, s), 0);
    assert_int_equal(pthread_create(&b, NULL, defer_many, s), 0);
    assert_int_equal(drv_loop_run(s->loop), 0);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    /* anything deferred after the last guard tick runs on one more turn */
    assert_int_equal(drv_loop_run(s->loop), 0);
    assert_int_equal(s->checkpoint, 2000);
    event_free(guard);
}

static void
block_loop(void *ctx)
{
    struct state *s = ctx;

    usleep(300 * 1000); /* a blocking callback: the meter must notice */
    s->checkpoint++;
}

static void
on_after(evutil_socket_t fd, short w, void *arg)
{
    (void)fd;
    (void)w;
    (void)arg;
}

static void
test_loop_lag_meter_warns(void **st)
{
    struct state *s = *st;
    struct drv_loop_stats stats;
    struct event *after;
    struct timeval tv = {0, 500 * 1000};

    after = evtimer_new(drv_loop_base(s->loop), on_after, s);
    event_add(after, &tv);
    assert_int_equal(drv_loop_defer(s->loop, block_loop, s), 0);
    assert_int_equal(drv_loop_run(s->loop), 0);
    drv_loop_get_stats(s->loop, &stats);
    assert_int_equal(s->checkpoint, 1);
    assert_true(stats.lag_warnings >= 1);
    /* it was blocked 300 ms; the meter saw at least most of that */
    assert_true(stats.lag_max_ns >= 200 * 1000000LL);
    event_free(after);
}

static void
count_lag(int64_t lag_ns, void *ctx)
{
    struct state *s = ctx;

    (void)lag_ns;
    s->checkpoint++;
}

/* A stretched meter ticks on its own grid: in a run of T seconds at most
 * one tick per 500 ms instant, T / 0.5 + 1 (the default 100 ms would give
 * five times as many). */
static void
test_loop_lag_interval_stretched(void **st)
{
    struct state *s = *st;
    struct event *after;
    struct timeval tv = {1, 200 * 1000};
    int64_t t0, t1;

    drv_loop_on_lag(s->loop, count_lag, s);
    drv_loop_set_lag_interval(s->loop, 500);
    after = evtimer_new(drv_loop_base(s->loop), on_after, s);
    event_add(after, &tv);
    t0 = drv_loop_now_ns(s->loop);
    assert_int_equal(drv_loop_run(s->loop), 0);
    t1 = drv_loop_now_ns(s->loop);
    assert_in_range(s->checkpoint, 1, (t1 - t0) / 500000000 + 1);
    event_free(after);
}

/* A meter that is off stays off. */
static void
test_loop_lag_interval_meter_off(void **st)
{
    struct drv_loop_opts o = {.lag_interval_ms = -1};
    struct drv_loop *loop = drv_loop_create(&o);
    struct state *s = *st;
    struct event *after;
    struct timeval tv = {0, 300 * 1000};

    assert_non_null(loop);
    drv_loop_on_lag(loop, count_lag, s);
    drv_loop_set_lag_interval(loop, 100);
    after = evtimer_new(drv_loop_base(loop), on_after, s);
    event_add(after, &tv);
    assert_int_equal(drv_loop_run(loop), 0);
    assert_int_equal(s->checkpoint, 0);
    event_free(after);
    drv_loop_free(loop);
}

static void
test_loop_exits_when_empty(void **st)
{
    struct state *s = *st;

    /* nothing but the meter: run returns at once */
    assert_int_equal(drv_loop_run(s->loop), 0);
}

static void
on_sig(struct drv_loop *loop, int signo, void *ctx)
{
    struct state *s = ctx;

    assert_int_equal(signo, SIGUSR1);
    s->checkpoint++;
    drv_loop_stop(loop);
}

static void
raise_usr1(void *ctx)
{
    (void)ctx;
    raise(SIGUSR1);
}

static void
test_loop_signal_on_loop_thread(void **st)
{
    struct state *s = *st;

    assert_int_equal(drv_loop_on_signal(s->loop, SIGUSR1, on_sig, s), 0);
    assert_int_equal(drv_loop_defer(s->loop, raise_usr1, NULL), 0);
    assert_int_equal(drv_loop_run(s->loop), 0);
    assert_int_equal(s->checkpoint, 1);
}

/* A signal the process cannot catch (sigaction refuses SIGKILL): the
 * registration fails with -EINVAL and leaves nothing behind (its record
 * freed -- the sanitizer build would see a leak -- and no event on the
 * loop); one that can be caught still registers after it. */
static void
test_loop_signal_refused(void **st)
{
    struct state *s = *st;
    struct event_base *base = drv_loop_base(s->loop);
    int before = event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED);

    assert_int_equal(drv_loop_on_signal(s->loop, SIGKILL, on_sig, s),
                     -EINVAL);
    assert_int_equal(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED),
                     before);
    assert_int_equal(drv_loop_on_signal(s->loop, SIGUSR1, on_sig, s), 0);
    assert_int_equal(drv_loop_defer(s->loop, raise_usr1, NULL), 0);
    assert_int_equal(drv_loop_run(s->loop), 0);
    assert_int_equal(s->checkpoint, 1);
}

static void
on_never(evutil_socket_t fd, short what, void *arg)
{
    fail_msg("a freed event ran");
}

/* drv_loop_event_free takes NULL (a create that failed part way), and
 * frees a pending event: it never runs and the loop has nothing left. */
static void
test_loop_event_free(void **st)
{
    struct state *s = *st;
    struct timeval tv = {0, 0};
    struct event *ev = NULL;

    drv_loop_event_free(NULL);
    ev = evtimer_new(drv_loop_base(s->loop), on_never, NULL);
    assert_non_null(ev);
    assert_int_equal(evtimer_add(ev, &tv), 0);
    drv_loop_event_free(ev);
    assert_int_equal(drv_loop_run(s->loop), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_loop_defer_from_threads, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_loop_lag_meter_warns, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_loop_lag_interval_stretched,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_lag_interval_meter_off,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_exits_when_empty, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_loop_signal_on_loop_thread,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_event_free, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_loop_signal_refused, setup,
                                        teardown),
    };

    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, NULL, NULL);
}
