/* test_pool.c -- thread pool: done-list, one wakeup per batch, cancel,
 * stats, shutdown joins, signal mask. Real libevent loop, real threads. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "gate.h"
#include "harness.h"
#include "drover/common.h"
#include "drover/loop.h"
#include "drover/pool.h"

/* ---------------------------------------------------------------- state */

struct state {
    struct drv_loop *loop;
    struct drv_pool *pool;
    pthread_t loop_thread;
    int checkpoint;       /* done() calls */
    int n_cancelled;      /* done() calls with -ECANCELED */
    struct drv_test_gate gate;     /* blocking jobs wait on it */
};

struct job {
    unsigned magic;
#define JOB_MAGIC 0x10b0001U
    struct drv_pool_work w;     /* embedded */
    struct state *s;            /* borrowed */
    int block;                  /* wait on s->gate */
    int sleep_us;               /* sleep in work */
    atomic_int ran;             /* work() ran */
    atomic_int returned;        /* work() returned */
    int done_status;            /* status passed to done, 1 = not yet */
    int sig_ok;                 /* signal mask as expected in work */
    pthread_t thread;           /* thread that ran work */
};

static int
setup(void **st)
{
    struct state *s = calloc(1, sizeof *s);
    struct drv_loop_opts lo = {.lag_interval_ms = -1};

    s->loop = drv_loop_create(&lo);
    assert_non_null(s->loop);
    s->loop_thread = pthread_self();
    drv_test_gate_init(&s->gate);
    drv_test_watchdog_start(DRV_TEST_WATCHDOG_S);
    *st = s;
    return 0;
}

static int
teardown(void **st)
{
    struct state *s = *st;
    struct event_base *base = drv_loop_base(s->loop);

    drv_test_watchdog_stop();
    drv_test_gate_open(&s->gate); /* never leave a pool thread blocked */
    /* nothing may be left on the loop */
    assert_int_equal(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED |
                                               EVENT_BASE_COUNT_ACTIVE), 0);
    drv_test_gate_fini(&s->gate);
    drv_loop_free(s->loop);
    free(s);
    return 0;
}

static void
make_pool(struct state *s, int n)
{
    struct drv_pool_opts o = {.nthreads = n, .name = "tpool"};

    assert_int_equal(drv_pool_create(s->loop, &o, &s->pool), 0);
}

static void
job_init(struct job *j, struct state *s)
{
    memset(j, 0, sizeof *j);
    j->magic = JOB_MAGIC;
    j->s = s;
    j->done_status = 1;
}

static void
job_work(struct drv_pool_work *w)
{
    struct job *j = drv_container_of(w, struct job, w);
    sigset_t cur;

    DRV_CHECK_OBJ(j, JOB_MAGIC);
    atomic_store(&j->ran, 1);
    j->thread = pthread_self();
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    j->sig_ok = sigismember(&cur, SIGTERM) && sigismember(&cur, SIGINT) &&
                sigismember(&cur, SIGHUP) && sigismember(&cur, SIGCHLD) &&
                sigismember(&cur, SIGPIPE);
    if (j->block)
        drv_test_gate_wait(&j->s->gate);
    if (j->sleep_us > 0)
        usleep((useconds_t)j->sleep_us);
    atomic_store(&j->returned, 1);
}

static void
job_done(struct drv_pool_work *w, int status)
{
    struct job *j = drv_container_of(w, struct job, w);

    DRV_CHECK_OBJ(j, JOB_MAGIC);
    assert_true(pthread_equal(pthread_self(), j->s->loop_thread));
    assert_int_equal(j->done_status, 1); /* exactly once */
    j->done_status = status;
    j->s->checkpoint++;
    if (status == -ECANCELED)
        j->s->n_cancelled++;
}

static void
wait_for(struct drv_pool *p, int (*pred)(const struct drv_pool_stats *, int),
         int arg)
{
    struct drv_pool_stats ps;

    wait_until((drv_pool_get_stats(p, &ps), pred(&ps, arg)),
               "pool stats (last seen busy=%d queued=%d done_pending=%d)",
               ps.busy, ps.queued, ps.done_pending);
}

static int
pred_done_pending(const struct drv_pool_stats *ps, int n)
{
    return ps->done_pending == n;
}

static int
pred_busy(const struct drv_pool_stats *ps, int n)
{
    return ps->busy == n;
}

static int
pred_busy_queued(const struct drv_pool_stats *ps, int n)
{
    return ps->busy == n / 100 && ps->queued == n % 100;
}

/* ---------------------------------------------------------------- tests */

static void
test_pool_runs_work_off_loop_and_done_on_loop(void **st)
{
    struct state *s = *st;
    struct job jobs[100];
    struct drv_pool_stats ps;
    size_t i;

    make_pool(s, 4);
    for (i = 0; i < DRV_ARRAY_LEN(jobs); i++) {
        job_init(&jobs[i], s);
        assert_int_equal(drv_pool_submit(s->pool, &jobs[i].w, job_work,
                                          job_done), 0);
    }
    assert_int_equal(s->checkpoint, 0); /* never inside submit */
    assert_int_equal(drv_loop_run(s->loop), 0);
    assert_int_equal(s->checkpoint, 100);
    for (i = 0; i < DRV_ARRAY_LEN(jobs); i++) {
        assert_int_equal(jobs[i].done_status, 0);
        assert_false(pthread_equal(jobs[i].thread, s->loop_thread));
    }
    drv_pool_get_stats(s->pool, &ps);
    assert_int_equal(ps.nthreads, 4);
    assert_int_equal(ps.submitted, 100);
    assert_int_equal(ps.completed, 100);
    assert_int_equal(ps.queued, 0);
    assert_int_equal(ps.busy, 0);
    assert_int_equal(ps.done_pending, 0);
    /* batching: never more wakeups than completions */
    assert_true(ps.wakeups <= 100 && ps.wakeups >= 1);
    drv_pool_free(s->pool);
}

static void
test_pool_one_wakeup_per_batch(void **st)
{
    struct state *s = *st;
    struct job jobs[50];
    struct drv_pool_stats ps;
    size_t i;

    make_pool(s, 4);
    /* the loop is not running: every completion lands on the done-list */
    for (i = 0; i < DRV_ARRAY_LEN(jobs); i++) {
        job_init(&jobs[i], s);
        assert_int_equal(drv_pool_submit(s->pool, &jobs[i].w, job_work,
                                          job_done), 0);
    }
    wait_for(s->pool, pred_done_pending, 50);
    drv_pool_get_stats(s->pool, &ps);
    assert_int_equal(ps.completed, 50);
    assert_int_equal(ps.wakeups, 1); /* only the empty->non-empty push */
    assert_int_equal(drv_loop_run(s->loop), 0);
    assert_int_equal(s->checkpoint, 50);
    drv_pool_get_stats(s->pool, &ps);
    assert_int_equal(ps.wakeups, 1);
    assert_int_equal(ps.drains, 1); /* one drain delivered all 50 */
    drv_pool_free(s->pool);
}

static void
test_pool_cancel_queued_and_running(void **st)
{
    struct state *s = *st;
    struct job a, b, c, idle;
    struct drv_pool_stats ps;

    make_pool(s, 1);
    job_init(&a, s);
    job_init(&b, s);
    job_init(&c, s);
    job_init(&idle, s);
    a.block = 1;
    assert_int_equal(drv_pool_cancel(&idle.w), -ENOENT);
    assert_int_equal(drv_pool_submit(s->pool, &a.w, job_work, job_done), 0);
    assert_int_equal(drv_pool_submit(s->pool, &b.w, job_work, job_done), 0);
    assert_int_equal(drv_pool_submit(s->pool, &c.w, job_work, job_done), 0);
    wait_for(s->pool, pred_busy, 1); /* a runs, b and c are queued */
    assert_int_equal(drv_pool_cancel(&a.w), -EBUSY);
    assert_int_equal(drv_pool_cancel(&b.w), 0);
    assert_int_equal(s->checkpoint, 0); /* done never inside cancel */
    assert_int_equal(b.done_status, 1);
    assert_int_equal(drv_pool_cancel(&b.w), -EALREADY); /* idempotent */
    drv_pool_get_stats(s->pool, &ps);
    assert_int_equal(ps.queued, 1);
    assert_int_equal(ps.cancelled, 1);
    drv_test_gate_open(&s->gate);
    assert_int_equal(drv_loop_run(s->loop), 0);
    assert_int_equal(s->checkpoint, 3);
    assert_int_equal(a.done_status, 0);
    assert_int_equal(b.done_status, -ECANCELED);
    assert_int_equal(atomic_load(&b.ran), 0); /* work never ran */
    assert_int_equal(c.done_status, 0);
    assert_int_equal(drv_pool_cancel(&c.w), -ENOENT); /* delivered */
    drv_pool_free(s->pool);
}

static void
test_pool_stats_queue_depth_and_busy(void **st)
{
    struct state *s = *st;
    struct job jobs[5];
    struct drv_pool_stats ps;
    size_t i;

    make_pool(s, 2);
    for (i = 0; i < DRV_ARRAY_LEN(jobs); i++) {
        job_init(&jobs[i], s);
        jobs[i].block = 1;
        assert_int_equal(drv_pool_submit(s->pool, &jobs[i].w, job_work,
                                          job_done), 0);
    }
    wait_for(s->pool, pred_busy_queued, 2 * 100 + 3);
    drv_pool_get_stats(s->pool, &ps);
    assert_int_equal(ps.busy, 2);
    assert_int_equal(ps.queued, 3);
    assert_int_equal(ps.submitted, 5);
    assert_int_equal(ps.completed, 0);
    drv_test_gate_open(&s->gate);
    assert_int_equal(drv_loop_run(s->loop), 0);
    drv_pool_get_stats(s->pool, &ps);
    assert_int_equal(ps.busy, 0);
    assert_int_equal(ps.queued, 0);
    assert_int_equal(ps.completed, 5);
    assert_int_equal(s->checkpoint, 5);
    drv_pool_free(s->pool);
}

static void
test_pool_free_joins_running_and_cancels_queued(void **st)
{
    struct state *s = *st;
    struct job a, b;
    struct drv_test_opener opener;

    make_pool(s, 1);
    job_init(&a, s);
    job_init(&b, s);
    a.block = 1;
    assert_int_equal(drv_pool_submit(s->pool, &a.w, job_work, job_done), 0);
    assert_int_equal(drv_pool_submit(s->pool, &b.w, job_work, job_done), 0);
    wait_for(s->pool, pred_busy, 1);
    drv_test_opener_start(&opener, &s->gate, s->pool);
    /* blocks until a returns; b never runs; both done()s run inside */
    drv_pool_free(s->pool);
    assert_int_equal(atomic_load(&a.returned), 1);
    assert_int_equal(a.done_status, 0);
    assert_int_equal(b.done_status, -ECANCELED);
    assert_int_equal(atomic_load(&b.ran), 0);
    assert_int_equal(s->checkpoint, 2);
    drv_test_opener_join(&opener);
}

static void
test_pool_threads_block_signals(void **st)
{
    struct state *s = *st;
    struct job j;
    sigset_t cur;

    make_pool(s, 2);
    /* the creating thread's own mask is restored */
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    assert_false(sigismember(&cur, SIGTERM));
    job_init(&j, s);
    assert_int_equal(drv_pool_submit(s->pool, &j.w, job_work, job_done), 0);
    assert_int_equal(drv_loop_run(s->loop), 0);
    assert_int_equal(j.sig_ok, 1);
    drv_pool_free(s->pool);
}

/* free from inside a done(): the rest is still delivered, then released */
struct freeing_ctx {
    struct state *s;
    struct job jobs[3];
    int submit_rc;
};

static struct freeing_ctx fctx;

static void
done_then_free(struct drv_pool_work *w, int status)
{
    struct job *j = drv_container_of(w, struct job, w);
    struct job extra;

    job_done(w, status);
    if (j == &fctx.jobs[0]) {
        drv_pool_free(fctx.s->pool);
    } else {
        /* the pool is stopping: new work is refused */
        job_init(&extra, fctx.s);
        fctx.submit_rc = drv_pool_submit(fctx.s->pool, &extra.w, job_work,
                                         job_done);
    }
}

static void
test_pool_free_inside_done(void **st)
{
    struct state *s = *st;
    size_t i;

    make_pool(s, 1);
    memset(&fctx, 0, sizeof fctx);
    fctx.s = s;
    for (i = 0; i < DRV_ARRAY_LEN(fctx.jobs); i++) {
        job_init(&fctx.jobs[i], s);
        assert_int_equal(drv_pool_submit(s->pool, &fctx.jobs[i].w, job_work,
                                          done_then_free), 0);
    }
    assert_int_equal(drv_loop_run(s->loop), 0);
    assert_int_equal(s->checkpoint, 3); /* nothing dropped */
    assert_int_equal(fctx.submit_rc, -ESHUTDOWN);
    for (i = 0; i < DRV_ARRAY_LEN(fctx.jobs); i++)
        assert_int_not_equal(fctx.jobs[i].done_status, 1);
}

static void
test_pool_create_rejects_zero_threads(void **st)
{
    struct state *s = *st;
    struct drv_pool_opts o = {.nthreads = 0};
    struct drv_pool *p = NULL;

    assert_int_equal(drv_pool_create(s->loop, &o, &p), -EINVAL);
    assert_null(p);
    drv_pool_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_pool_runs_work_off_loop_and_done_on_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_one_wakeup_per_batch,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_cancel_queued_and_running,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_stats_queue_depth_and_busy,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_pool_free_joins_running_and_cancels_queued, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_pool_threads_block_signals,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_free_inside_done, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_pool_create_rejects_zero_threads, setup, teardown),
    };

    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, NULL, NULL);
}
