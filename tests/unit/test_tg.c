/* test_tg.c -- task groups on a real libevent loop with fake LOOP and
 * THREAD tasks: limits, FIFO, timeouts, deadlines, cancellation causes,
 * abandoned threads, nested groups, the report, and scale. Each test ends
 * with the group freed and nothing left on the loop (teardown). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "gate.h"
#include "harness.h"
#include "drover/clock.h"
#include "drover/common.h"
#include "drover/loop.h"
#include "drover/pool.h"
#include "drover/sem.h"
#include "drover/tg.h"

#define MS DRV_NS_PER_MS
#define ORDER_MAX 2048

/* ---------------------------------------------------------------- state */

struct ft;

struct state {
    struct drv_loop *loop;
    struct event_base *base;
    struct drv_pool *pool;          /* 16 threads */
    pthread_t loop_thread;
    struct drv_tg *tg;              /* root under test; NULL once freed */
    struct drv_tg *tg2;             /* a second root, when used */
    int n_done;                     /* tg on_done calls */
    int n_done2;                    /* tg2 on_done calls */
    int n_quiesced;                 /* tg on_quiesced calls */
    int n_child_done;               /* child groups' on_done calls */
    int64_t done_ns;                /* when tg's on_done ran */
    int in_task;                    /* > 0 inside a task's own code */
    int in_spawn;                   /* > 0 inside drv_tg_spawn */
    int running;                    /* LOOP tasks between start and done */
    int running_max;                /* highest running */
    int run_type[2];                /* running per type (shared sems test) */
    int run_type_max[2];            /* highest run_type */
    int order[ORDER_MAX];           /* task ids in start order */
    int n_started;                  /* entries in order */
    struct drv_test_gate gate;               /* blocking thread tasks wait here */
    atomic_int thr_running;         /* thread tasks inside work() */
    atomic_int thr_hwm;             /* highest thr_running */
    struct ft *fts;                 /* owned: the fake tasks */
    size_t n_fts;                   /* entries in fts */
    void (*done_hook)(struct state *s, struct drv_tg *tg,
                      const struct drv_tg_report *r);
};

enum cancel_mode {
    CM_NOW = 0,   /* stop and call done inside the hook */
    CM_IGNORE,    /* stop its timer but never call done (a buggy task) */
    CM_LATER,     /* stop, then call done 10 ms later */
    CM_RECORD     /* note the call only; its completion timer goes on */
};

/* A fake task: LOOP behaviour from run_ms/cancel_mode, THREAD from
 * block/poll_cancel/wait_hwm; observations filled by the callbacks. */
struct ft {
    unsigned magic;
#define FT_MAGIC 0xf7a5c001U
    struct state *s;                /* borrowed */
    int id;                         /* label, also the order entry */
    int type;                       /* 0/1: shared sems test */
    char name[32];                  /* task name */
    enum drv_tg_kind kind;          /* LOOP or THREAD */
    struct drv_tg_task *t;          /* borrowed: the handle */
    struct drv_tg *g;               /* borrowed: its group */
    int64_t run_ms;                 /* LOOP: done after run_ms; 0 = inside
                                       start; -1 = only when cancelled */
    int code;                       /* finish with this code */
    const char *msg;                /* and message */
    const char *result;             /* and result */
    enum cancel_mode cancel_mode;   /* LOOP: behaviour of the hook */
    struct event *ev;               /* owned: LOOP completion timer */
    struct ft *cancel_after_done;   /* borrowed: cancel it after done */
    void (*start_hook)(struct ft *f);
    void (*outcome_hook)(struct ft *f);
    int block;                      /* THREAD: wait on s->gate */
    int poll_cancel;                /* THREAD: return once cancelled */
    int wait_hwm;                   /* THREAD: wait until thr_hwm >= it */
    int sleep_us;                   /* THREAD: sleep in work */
    atomic_int ran;                 /* THREAD: work started */
    atomic_int returned;            /* THREAD: work returned */
    atomic_int saw_cancel;          /* THREAD: saw drv_tg_task_cancelled */
    int started;                    /* start calls */
    int cancel_calls;               /* cancel hook calls */
    enum drv_tg_cause cancel_cause; /* cause given to the hook */
    int outcomes;                   /* on_outcome calls */
    int releases;                   /* release calls */
    int in_own;                     /* inside its own start/done */
    struct drv_tg_outcome out;      /* copy of the outcome (no pointers) */
    char out_msg[DRV_ERR_MSG_MAX];  /* copy of out.msg */
    char out_result[64];            /* copy of out.result, "" if NULL */
    int64_t start_ns;               /* when start ran */
    int64_t outcome_ns;             /* when on_outcome ran */
    int64_t cancel_ns;              /* when the hook ran */
    int64_t deadline_ns;            /* drv_tg_task_deadline_ns at start */
    int64_t thr_deadline_ns;        /* the same, read in work() */
};

static int
setup(void **st)
{
    struct state *s = calloc(1, sizeof *s);
    struct drv_loop_opts lo = {.lag_interval_ms = -1};
    struct drv_pool_opts po = {.nthreads = 16, .name = "ttg"};

    s->loop = drv_loop_create(&lo);
    assert_non_null(s->loop);
    s->base = drv_loop_base(s->loop);
    s->loop_thread = pthread_self();
    assert_int_equal(drv_pool_create(s->loop, &po, &s->pool), 0);
    drv_test_gate_init(&s->gate);
    drv_test_watchdog_start(DRV_TEST_WATCHDOG_S);
    *st = s;
    return 0;
}

static int
teardown(void **st)
{
    struct state *s = *st;

    drv_test_watchdog_stop();
    drv_test_gate_open(&s->gate); /* never leave a pool thread blocked */
    if (s->tg != NULL || s->tg2 != NULL) {
        /* the test failed half-way: leak rather than hang or abort */
        fprintf(stderr, "teardown: group not freed, leaking the fixture\n");
        return -1;
    }
    drv_pool_free(s->pool);
    /* the groups were freed (in on_quiesced), and nothing is left */
    assert_int_equal(event_base_get_num_events(s->base,
                                               EVENT_BASE_COUNT_ADDED |
                                               EVENT_BASE_COUNT_ACTIVE), 0);
    drv_test_gate_fini(&s->gate);
    free(s->fts);
    drv_loop_free(s->loop);
    free(s);
    return 0;
}

static struct ft *
ft_new(struct state *s, size_t n)
{
    size_t i;

    s->fts = drv_xcalloc(n, sizeof *s->fts);
    s->n_fts = n;
    for (i = 0; i < n; i++) {
        s->fts[i].magic = FT_MAGIC;
        s->fts[i].s = s;
        s->fts[i].id = (int)i;
        s->fts[i].kind = DRV_TG_LOOP;
        s->fts[i].run_ms = -1;
        snprintf(s->fts[i].name, sizeof s->fts[i].name, "t%zu", i);
    }
    return s->fts;
}

static void
on_loop_thread(const struct state *s)
{
    assert_true(pthread_equal(pthread_self(), s->loop_thread));
}

/* ------------------------------------------------------ fake task code */

static void
ft_stop_timer(struct ft *f)
{
    if (f->ev != NULL) {
        event_free(f->ev);
        f->ev = NULL;
    }
}

static void
ft_finish(struct ft *f)
{
    struct state *s = f->s;

    ft_stop_timer(f);
    s->running--;
    s->run_type[f->type]--;
    s->in_task++;
    f->in_own++;
    assert_int_equal(drv_tg_task_done(f->t, f->code, f->msg, f->result), 0);
    f->in_own--;
    s->in_task--;
    if (f->cancel_after_done != NULL)
        drv_tg_task_cancel(f->cancel_after_done->t, DRV_TG_CAUSE_EXPLICIT);
}

static void
ft_on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct ft *f;

    (void)fd;
    (void)what;
    DRV_CAST(f, arg, FT_MAGIC);
    ft_finish(f);
}

static void
ft_arm(struct ft *f, int64_t ms)
{
    struct timeval tv;

    ft_stop_timer(f);
    event_base_update_cache_time(f->s->base);
    tv = drv_clock_tv_from_ns(ms * MS);
    f->ev = evtimer_new(f->s->base, ft_on_timer, f);
    assert_non_null(f->ev);
    assert_int_equal(event_add(f->ev, &tv), 0);
}

static void
ft_start(struct drv_tg_task *t, void *ctx)
{
    struct ft *f;
    struct state *s;

    DRV_CAST(f, ctx, FT_MAGIC);
    assert_ptr_equal(t, f->t);
    s = f->s;
    on_loop_thread(s);
    assert_int_equal(f->started, 0);
    assert_int_equal(s->in_spawn, 0); /* never inside drv_tg_spawn */
    f->started++;
    f->start_ns = drv_clock_mono_ns();
    f->deadline_ns = drv_tg_task_deadline_ns(t);
    if (s->n_started < ORDER_MAX)
        s->order[s->n_started] = f->id;
    s->n_started++;
    if (++s->running > s->running_max)
        s->running_max = s->running;
    if (++s->run_type[f->type] > s->run_type_max[f->type])
        s->run_type_max[f->type] = s->run_type[f->type];
    s->in_task++;
    f->in_own++;
    if (f->start_hook != NULL)
        f->start_hook(f);
    if (f->run_ms == 0)
        ft_finish(f); /* synchronously, inside start */
    else if (f->run_ms > 0)
        ft_arm(f, f->run_ms);
    f->in_own--;
    s->in_task--;
}

static void
ft_cancel(struct drv_tg_task *t, enum drv_tg_cause cause, void *ctx)
{
    struct ft *f;

    DRV_CAST(f, ctx, FT_MAGIC);
    on_loop_thread(f->s);
    assert_ptr_equal(t, f->t);
    assert_int_equal(f->cancel_calls, 0); /* at most once */
    f->cancel_calls++;
    f->cancel_cause = cause;
    f->cancel_ns = drv_clock_mono_ns();
    f->s->in_task++;
    switch (f->cancel_mode) {
    case CM_NOW:
        ft_finish(f);
        break;
    case CM_IGNORE:
        ft_stop_timer(f);
        break;
    case CM_LATER:
        ft_arm(f, 10);
        break;
    case CM_RECORD:
        break;
    }
    f->s->in_task--;
}

static int
ft_work(struct drv_tg_task *t, struct drv_err *err, void *ctx)
{
    struct ft *f = ctx;
    struct state *s = f->s;
    int now, prev;

    /* pool thread: no cmocka asserts here */
    DRV_CHECK_OBJ(f, FT_MAGIC);
    DRV_ASSERT(!pthread_equal(pthread_self(), s->loop_thread));
    atomic_store(&f->ran, 1);
    f->thr_deadline_ns = drv_tg_task_deadline_ns(t);
    now = atomic_fetch_add(&s->thr_running, 1) + 1;
    prev = atomic_load(&s->thr_hwm);
    while (now > prev && !atomic_compare_exchange_weak(&s->thr_hwm, &prev,
                                                        now))
        ;
    while (f->wait_hwm > 0 && atomic_load(&s->thr_hwm) < f->wait_hwm)
        usleep(500);
    if (f->block)
        drv_test_gate_wait(&s->gate);
    while (f->poll_cancel && !drv_tg_task_cancelled(t))
        usleep(1000);
    if (drv_tg_task_cancelled(t))
        atomic_store(&f->saw_cancel, 1);
    if (f->sleep_us > 0)
        usleep((useconds_t)f->sleep_us);
    atomic_fetch_sub(&s->thr_running, 1);
    if (f->result != NULL)
        drv_tg_task_set_result(t, f->result, strlen(f->result));
    atomic_store(&f->returned, 1);
    if (f->code != 0 && f->msg != NULL)
        snprintf(err->msg, sizeof err->msg, "%s", f->msg);
    return f->code;
}

static void
ft_outcome(struct drv_tg_task *t, const struct drv_tg_outcome *o, void *ctx)
{
    struct ft *f;
    struct state *s;

    DRV_CAST(f, ctx, FT_MAGIC);
    s = f->s;
    on_loop_thread(s);
    assert_ptr_equal(t, f->t);
    assert_int_equal(s->in_task, 0);  /* never in a task's own stack */
    assert_int_equal(s->in_spawn, 0); /* never inside drv_tg_spawn */
    assert_int_equal(f->outcomes, 0); /* exactly once */
    assert_true(o->state >= DRV_TG_OK);
    f->outcomes++;
    f->out = *o;
    f->out.msg = f->out.result = f->out.name = NULL;
    f->out.child = NULL;
    snprintf(f->out_msg, sizeof f->out_msg, "%s", o->msg);
    snprintf(f->out_result, sizeof f->out_result, "%s",
             o->result != NULL ? o->result : "");
    f->outcome_ns = drv_clock_mono_ns();
    if (f->outcome_hook != NULL)
        f->outcome_hook(f);
}

static void
ft_release(struct drv_tg_task *t DRV_UNUSED, void *ctx)
{
    struct ft *f;

    DRV_CAST(f, ctx, FT_MAGIC);
    on_loop_thread(f->s);
    assert_int_equal(f->outcomes, 1);  /* after the outcome */
    assert_int_equal(f->releases, 0);  /* exactly once */
    if (f->kind == DRV_TG_THREAD && atomic_load(&f->ran))
        assert_int_equal(atomic_load(&f->returned), 1); /* quiesced */
    f->releases++;
}

/* ---------------------------------------------------- group callbacks */

static void
g_done(struct drv_tg *tg, const struct drv_tg_report *r, void *ctx)
{
    struct state *s = ctx;
    size_t i;

    on_loop_thread(s);
    assert_int_equal(s->in_task, 0);
    assert_int_equal(s->in_spawn, 0);
    assert_ptr_equal(tg, s->tg);
    assert_int_equal(s->n_done, 0);
    s->n_done++;
    s->done_ns = drv_clock_mono_ns();
    assert_int_equal(r->n_ok + r->n_failed + r->n_timed_out + r->n_cancelled,
                     r->n_tasks);
    /* every task has delivered its outcome before on_done */
    for (i = 0; i < s->n_fts; i++)
        if (s->fts[i].g == tg)
            assert_int_equal(s->fts[i].outcomes, 1);
    if (s->done_hook != NULL)
        s->done_hook(s, tg, r);
}

static void
g_quiesced(struct drv_tg *tg, void *ctx)
{
    struct state *s = ctx;
    struct drv_tg_stats ts;

    on_loop_thread(s);
    assert_ptr_equal(tg, s->tg);
    assert_int_equal(s->n_done, 1);
    assert_int_equal(s->n_quiesced, 0);
    drv_tg_get_stats(tg, &ts);
    assert_true(ts.quiesced);
    s->n_quiesced++;
    drv_tg_free(tg); /* from inside its own callback */
    s->tg = NULL;
}

static void
g2_done(struct drv_tg *tg, const struct drv_tg_report *r, void *ctx)
{
    struct state *s = ctx;

    assert_ptr_equal(tg, s->tg2);
    s->n_done2++;
}

static void
g2_quiesced(struct drv_tg *tg, void *ctx)
{
    struct state *s = ctx;

    drv_tg_free(tg);
    s->tg2 = NULL;
}

static void
child_done(struct drv_tg *tg, const struct drv_tg_report *r, void *ctx)
{
    struct state *s = ctx;

    on_loop_thread(s);
    assert_int_equal(s->in_task, 0);
    s->n_child_done++;
}

static struct drv_tg_opts
gopts(struct state *s, enum drv_tg_policy policy, int limit)
{
    struct drv_tg_opts o;

    memset(&o, 0, sizeof o);
    o.policy = policy;
    o.limit = limit;
    o.on_done = g_done;
    o.on_quiesced = g_quiesced;
    o.ctx = s;
    o.name = "test";
    return o;
}

static void
make_tg(struct state *s, enum drv_tg_policy policy, int limit)
{
    struct drv_tg_opts o = gopts(s, policy, limit);

    assert_int_equal(drv_tg_create(s->loop, s->pool, &o, &s->tg), 0);
}

static struct drv_tg_task_opts
topts(struct ft *f, int64_t timeout_ms)
{
    struct drv_tg_task_opts o;

    memset(&o, 0, sizeof o);
    o.kind = f->kind;
    o.name = f->name;
    o.start = ft_start;
    o.cancel = ft_cancel;
    o.work = ft_work;
    o.on_outcome = ft_outcome;
    o.release = ft_release;
    o.ctx = f;
    o.timeout_ms = timeout_ms;
    return o;
}

static int
spawn_o(struct drv_tg *tg, struct ft *f, const struct drv_tg_task_opts *o,
        int try_only)
{
    int rc;

    f->s->in_spawn++;
    rc = try_only ? drv_tg_try_spawn(tg, o, &f->t)
                  : drv_tg_spawn(tg, o, &f->t);
    f->s->in_spawn--;
    if (rc == 0)
        f->g = tg;
    return rc;
}

static void
spawn_ok(struct drv_tg *tg, struct ft *f, int64_t timeout_ms)
{
    struct drv_tg_task_opts o = topts(f, timeout_ms);

    assert_int_equal(spawn_o(tg, f, &o, 0), 0);
    assert_non_null(f->t);
}

/* Run fn(arg) on the loop after ms (libevent frees the event itself). */
static void
later(struct state *s, int64_t ms, event_callback_fn fn, void *arg)
{
    struct timeval tv = drv_clock_tv_from_ns(ms * MS);

    assert_int_equal(event_base_once(s->base, -1, EV_TIMEOUT, fn, arg, &tv),
                     0);
}

static void
run(struct state *s)
{
    assert_int_equal(drv_loop_run(s->loop), 0);
}

static void
assert_outcome(const struct ft *f, enum drv_tg_state st,
               enum drv_tg_cause cause)
{
    if (f->outcomes != 1 || f->out.state != st || f->out.cause != cause)
        fail_msg("task %s: outcomes=%d state=%s cause=%s, want %s/%s "
                 "(code %d %s: %s)", f->name, f->outcomes,
                 drv_tg_state_name(f->out.state),
                 drv_tg_cause_name(f->out.cause), drv_tg_state_name(st),
                 drv_tg_cause_name(cause), f->out.code,
                 drv_strerror(f->out.code), f->out_msg);
    assert_int_equal(f->releases, 1);
}

/* ------------------------------------------------- 7: COLLECT, order */

static void
done_collect(struct state *s, struct drv_tg *tg,
             const struct drv_tg_report *r)
{
    const struct drv_tg_outcome *o;
    char want[16];
    size_t i;

    assert_int_equal(r->n_tasks, 10);
    assert_int_equal(r->n_ok, 9);
    assert_int_equal(r->n_failed, 1);
    assert_int_equal(r->first_error, 3);
    assert_int_equal(r->cause, DRV_TG_CAUSE_NONE);
    for (i = 0; i < 10; i++) {
        o = drv_tg_report_at(r, i);
        assert_int_equal(o->index, i);
        snprintf(want, sizeof want, "t%zu", i);
        assert_string_equal(o->name, want);
        if (i == 3) {
            assert_int_equal(o->state, DRV_TG_FAILED);
            assert_int_equal(o->code, DRV_EPERMANENT);
            assert_string_equal(o->msg, "bad input");
            assert_null(o->result);
        } else {
            assert_int_equal(o->state, DRV_TG_OK);
            snprintf(want, sizeof want, "r%zu", i);
            assert_string_equal(o->result, want);
            assert_string_equal(o->msg, "");
        }
    }
}

static void
test_tg_collect_results_in_spawn_order(void **st)
{
    struct state *s = *st;
    static char results[10][8];
    struct ft *f = ft_new(s, 10);
    int i;

    make_tg(s, DRV_TG_COLLECT, -1);
    for (i = 0; i < 10; i++) {
        f[i].run_ms = (10 - i) * 5; /* finish in reverse spawn order */
        snprintf(results[i], sizeof results[i], "r%d", i);
        f[i].result = results[i];
        if (i == 3) {
            f[i].code = DRV_EPERMANENT; /* caller-defined: permanent */
            f[i].msg = "bad input";
        }
        spawn_ok(s->tg, &f[i], 0);
    }
    assert_int_equal(s->n_started, 0); /* never inside spawn */
    drv_tg_close(s->tg);
    s->done_hook = done_collect;
    run(s);
    assert_int_equal(s->n_done, 1);
    assert_int_equal(s->n_quiesced, 1);
    for (i = 0; i < 10; i++)
        assert_outcome(&f[i], i == 3 ? DRV_TG_FAILED : DRV_TG_OK,
                       DRV_TG_CAUSE_NONE);
    /* a failure does not affect siblings: all of them ran to the end */
    for (i = 0; i < 10; i++)
        assert_int_equal(f[i].cancel_calls, 0);
    assert_true(f[9].outcome_ns <= f[0].outcome_ns);
}

/* ------------------------------ 1, 2: deferral, exactly once, on_done */

static void
test_tg_callbacks_deferred_never_in_own_stack(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 5);
    int i;

    make_tg(s, DRV_TG_COLLECT, 2);
    for (i = 0; i < 5; i++) {
        f[i].run_ms = 0; /* drv_tg_task_done from inside start */
        spawn_ok(s->tg, &f[i], 1000);
    }
    drv_tg_close(s->tg);
    assert_int_equal(s->n_done, 0); /* never inside close */
    run(s);
    assert_int_equal(s->n_done, 1);
    for (i = 0; i < 5; i++)
        assert_outcome(&f[i], DRV_TG_OK, DRV_TG_CAUSE_NONE);
}

static void
test_tg_empty_group_done_via_defer(void **st)
{
    struct state *s = *st;

    make_tg(s, DRV_TG_FAIL_FAST, 4);
    drv_tg_close(s->tg);
    drv_tg_close(s->tg); /* idempotent */
    assert_int_equal(s->n_done, 0);
    run(s);
    assert_int_equal(s->n_done, 1);
    assert_int_equal(s->n_quiesced, 1);
}

static void
test_tg_free_unused_group(void **st)
{
    struct state *s = *st;
    struct drv_tg *tg = NULL;
    struct drv_tg_opts o = gopts(s, DRV_TG_COLLECT, 1);

    assert_int_equal(drv_tg_create(s->loop, NULL, &o, &tg), 0);
    drv_tg_free(tg); /* never given a task: allowed */
    drv_tg_free(NULL);
}

/* --------------------------------------------- 2, 12: -ESHUTDOWN etc. */

static void
done_spawn_refused(struct state *s, struct drv_tg *tg,
                   const struct drv_tg_report *r)
{
    struct ft extra = {.magic = FT_MAGIC, .s = s};
    struct drv_tg_task_opts o = topts(&extra, 0);
    struct drv_tg *child = NULL;
    struct drv_tg_opts co = gopts(s, DRV_TG_COLLECT, -1);

    assert_int_equal(drv_tg_spawn(tg, &o, NULL), -ESHUTDOWN);
    assert_int_equal(drv_tg_try_spawn(tg, &o, NULL), -ESHUTDOWN);
    assert_int_equal(drv_tg_create_child(tg, &co, NULL, &child, NULL),
                     -ESHUTDOWN);
    assert_null(child);
}

static void
test_tg_spawn_refused_after_close_cancel_done(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 3);
    struct drv_tg_task_opts o;
    struct drv_tg_opts bad;
    struct drv_tg *tg = NULL, *tg3 = NULL;

    /* invalid options */
    bad = gopts(s, DRV_TG_COLLECT, 0);
    assert_int_equal(drv_tg_create(s->loop, s->pool, &bad, &tg), -EINVAL);
    bad.limit = -2;
    assert_int_equal(drv_tg_create(s->loop, s->pool, &bad, &tg), -EINVAL);
    assert_null(tg);

    make_tg(s, DRV_TG_COLLECT, 1);
    o = topts(&f[0], 0);
    o.start = NULL;
    assert_int_equal(spawn_o(s->tg, &f[0], &o, 0), -EINVAL);
    o = topts(&f[0], 0);
    o.nsems = DRV_TG_MAX_SEMS + 1;
    assert_int_equal(spawn_o(s->tg, &f[0], &o, 0), -EINVAL);
    assert_int_equal(drv_tg_set_limit(s->tg, 0), -EINVAL);

    /* a THREAD task needs a pool */
    bad = gopts(s, DRV_TG_COLLECT, -1);
    bad.on_quiesced = NULL;
    bad.on_done = NULL;
    assert_int_equal(drv_tg_create(s->loop, NULL, &bad, &tg3), 0);
    f[2].kind = DRV_TG_THREAD;
    o = topts(&f[2], 0);
    assert_int_equal(spawn_o(tg3, &f[2], &o, 0), -EINVAL);
    /* cancelled: refused (level-triggered) */
    drv_tg_cancel(tg3, DRV_TG_CAUSE_SHUTDOWN);
    f[2].kind = DRV_TG_LOOP;
    o = topts(&f[2], 0);
    assert_int_equal(spawn_o(tg3, &f[2], &o, 0), -ESHUTDOWN);
    f[2].t = NULL;

    f[0].run_ms = 5;
    spawn_ok(s->tg, &f[0], 0);
    drv_tg_close(s->tg);
    o = topts(&f[1], 0);
    assert_int_equal(spawn_o(s->tg, &f[1], &o, 0), -ESHUTDOWN);
    assert_int_equal(spawn_o(s->tg, &f[1], &o, 1), -ESHUTDOWN);
    f[1].t = NULL;
    s->done_hook = done_spawn_refused;
    run(s);
    assert_int_equal(s->n_done, 1);
    assert_outcome(&f[0], DRV_TG_OK, DRV_TG_CAUSE_NONE);
    assert_int_equal(f[1].started, 0);
    drv_tg_free(tg3); /* cancelled before any task: empty */
}

/* ------------------------------- 3: limit, high-water mark, threads */

static void
test_tg_limit_1000_threads_hwm_exactly_10(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 1000);
    struct drv_tg_stats ts;
    int i;

    make_tg(s, DRV_TG_COLLECT, 10);
    for (i = 0; i < 1000; i++) {
        f[i].kind = DRV_TG_THREAD;
        /* the first ten hold on until ten run at once: the limit must
         * let exactly ten in, and never an eleventh */
        if (i < 10)
            f[i].wait_hwm = 10;
        spawn_ok(s->tg, &f[i], 0);
    }
    drv_tg_get_stats(s->tg, &ts);
    assert_int_equal(ts.permits_in_use, 10);
    assert_int_equal(ts.waiting, 1000);
    drv_tg_close(s->tg);
    run(s);
    assert_int_equal(atomic_load(&s->thr_hwm), 10);
    for (i = 0; i < 1000; i++)
        assert_outcome(&f[i], DRV_TG_OK, DRV_TG_CAUSE_NONE);
}

/* --------------------------------------- 4: FIFO start order, loop */

static void
test_tg_fifo_start_order(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 200);
    int i;

    make_tg(s, DRV_TG_COLLECT, 3);
    for (i = 0; i < 200; i++) {
        f[i].run_ms = 1 + i % 3;
        spawn_ok(s->tg, &f[i], 0);
    }
    drv_tg_close(s->tg);
    run(s);
    assert_int_equal(s->n_started, 200);
    for (i = 0; i < 200; i++)
        assert_int_equal(s->order[i], i);
    assert_int_equal(s->running_max, 3);
}

/* ------------------------------ shared semaphores across two groups */

static void
test_tg_shared_sems_across_groups(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 41);
    struct drv_sem *proc = NULL, *type_a = NULL, *type_b = NULL;
    struct drv_tg_opts o2 = gopts(s, DRV_TG_COLLECT, 10);
    struct drv_tg_task_opts to;
    struct drv_sem_stats ss;
    struct drv_tg_stats ts_before, ts_after;
    int i;

    assert_int_equal(drv_sem_create(s->loop, 4, &proc), 0);
    assert_int_equal(drv_sem_create(s->loop, 2, &type_a), 0);
    assert_int_equal(drv_sem_create(s->loop, 3, &type_b), 0);
    make_tg(s, DRV_TG_COLLECT, 10);
    o2.on_done = g2_done;
    o2.on_quiesced = g2_quiesced;
    assert_int_equal(drv_tg_create(s->loop, s->pool, &o2, &s->tg2), 0);
    for (i = 0; i < 40; i++) {
        f[i].type = i < 20 ? 0 : 1;
        f[i].run_ms = 2;
        to = topts(&f[i], 0);
        /* job-type semaphore first, then the process-wide one */
        to.sems[0] = f[i].type == 0 ? type_a : type_b;
        to.sems[1] = proc;
        to.nsems = 2;
        assert_int_equal(spawn_o(f[i].type == 0 ? s->tg : s->tg2, &f[i],
                                 &to, 0), 0);
    }
    /* "full": type_a has no permit free; nothing may stay taken */
    drv_tg_get_stats(s->tg, &ts_before);
    to = topts(&f[40], 0);
    to.sems[0] = type_a;
    to.sems[1] = proc;
    to.nsems = 2;
    assert_int_equal(spawn_o(s->tg, &f[40], &to, 1), -EAGAIN);
    f[40].t = NULL;
    drv_tg_get_stats(s->tg, &ts_after);
    assert_int_equal(ts_after.permits_in_use, ts_before.permits_in_use);
    drv_tg_close(s->tg);
    drv_tg_close(s->tg2);
    run(s);
    assert_int_equal(s->n_done2, 1);
    assert_int_equal(s->running_max, 4);     /* the process limit */
    assert_int_equal(s->run_type_max[0], 2); /* type a limit */
    assert_int_equal(s->run_type_max[1], 3); /* type b limit */
    drv_sem_get_stats(proc, &ss);
    assert_int_equal(ss.hwm, 4);
    assert_int_equal(ss.in_use, 0);
    for (i = 0; i < 40; i++)
        assert_outcome(&f[i], DRV_TG_OK, DRV_TG_CAUSE_NONE);
    drv_sem_free(proc);
    drv_sem_free(type_a);
    drv_sem_free(type_b);
}

/* ---------------------------------------------------- try_spawn: full */

static void
test_tg_try_spawn_eagain(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 6);
    struct drv_sem *x = NULL;
    struct drv_tg_task_opts to;
    struct drv_tg_stats ts;
    int i;

    assert_int_equal(drv_sem_create(s->loop, 1, &x), 0);
    make_tg(s, DRV_TG_COLLECT, 3);
    for (i = 0; i < 6; i++)
        f[i].run_ms = 5;
    assert_int_equal(spawn_o(s->tg, &f[0], &(struct drv_tg_task_opts){0}, 1),
                     -EINVAL);
    to = topts(&f[0], 0);
    assert_int_equal(spawn_o(s->tg, &f[0], &to, 1), 0);
    to = topts(&f[1], 0);
    assert_int_equal(spawn_o(s->tg, &f[1], &to, 1), 0);
    /* a shared sem is full: -EAGAIN, and the group permit is given back */
    assert_int_equal(drv_sem_try_acquire(x), 0);
    to = topts(&f[2], 0);
    to.sems[0] = x;
    to.nsems = 1;
    assert_int_equal(spawn_o(s->tg, &f[2], &to, 1), -EAGAIN);
    drv_tg_get_stats(s->tg, &ts);
    assert_int_equal(ts.permits_in_use, 2);
    drv_sem_release(x);
    assert_int_equal(spawn_o(s->tg, &f[2], &to, 1), 0);
    /* the group is full */
    to = topts(&f[3], 0);
    assert_int_equal(spawn_o(s->tg, &f[3], &to, 1), -EAGAIN);
    f[3].t = NULL;
    /* a plain spawn queues instead */
    spawn_ok(s->tg, &f[4], 0);
    spawn_ok(s->tg, &f[5], 0);
    drv_tg_close(s->tg);
    run(s);
    for (i = 0; i < 6; i++)
        if (i != 3)
            assert_outcome(&f[i], DRV_TG_OK, DRV_TG_CAUSE_NONE);
    assert_int_equal(f[3].started, 0);
    assert_int_equal(s->running_max, 3);
    drv_sem_free(x);
}

/* ------------------- 10: abandoned thread keeps its permit until return */

static struct ft *abandon_a, *abandon_b;

static void
open_gate_cb(evutil_socket_t fd, short what, void *arg)
{
    struct state *s = arg;

    (void)fd;
    (void)what;
    drv_test_gate_open(&s->gate);
}

static void
abandon_a_outcome(struct ft *f)
{
    struct state *s = f->s;
    struct drv_tg_stats ts;

    assert_int_equal(f->out.state, DRV_TG_TIMED_OUT);
    assert_int_equal(f->out.code, -ETIMEDOUT);
    assert_true(drv_tg_task_cancelled(f->t));
    /* recorded at once, while its thread still runs */
    assert_int_equal(atomic_load(&f->returned), 0);
    drv_tg_get_stats(s->tg, &ts);
    assert_int_equal(ts.abandoned, 1);
    assert_int_equal(ts.permits_in_use, 1); /* the permit is still held */
    assert_int_equal(abandon_b->started, 0);
    assert_false(ts.quiesced);
    later(s, 100, open_gate_cb, s);
}

static void
abandon_b_start(struct ft *f)
{
    /* B got the permit only after A's thread really returned */
    assert_int_equal(atomic_load(&abandon_a->returned), 1);
}

static void
test_tg_abandoned_thread_keeps_permit(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 2);

    abandon_a = &f[0];
    abandon_b = &f[1];
    make_tg(s, DRV_TG_COLLECT, 1);
    f[0].kind = DRV_TG_THREAD;
    f[0].block = 1;
    f[0].result = "late result"; /* returned after the timeout: ignored */
    f[0].outcome_hook = abandon_a_outcome;
    f[1].run_ms = 5;
    f[1].start_hook = abandon_b_start;
    spawn_ok(s->tg, &f[0], 50);
    spawn_ok(s->tg, &f[1], 0);
    drv_tg_close(s->tg);
    run(s);
    assert_outcome(&f[0], DRV_TG_TIMED_OUT, DRV_TG_CAUSE_NONE);
    assert_string_equal(f[0].out_result, "");
    assert_int_equal(atomic_load(&f[0].saw_cancel), 1);
    assert_outcome(&f[1], DRV_TG_OK, DRV_TG_CAUSE_NONE);
    assert_true(f[1].start_ns > f[0].outcome_ns);
}

/* freeing before quiescence is an assertion failure (death test) */
static void
test_tg_free_before_quiesced_aborts(void **st)
{
    struct state *s = *st;
    int status = 0;
    pid_t pid;

    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct drv_loop_opts lo = {.lag_interval_ms = -1};
        struct drv_loop *loop = drv_loop_create(&lo);
        struct drv_tg_opts o;
        struct drv_tg_task_opts to;
        struct drv_tg *tg = NULL;
        struct ft f;

        /* keep the expected abort quiet and free of leak reports */
        if (freopen("/dev/null", "w", stderr) == NULL)
            _exit(3);
        memset(&o, 0, sizeof o);
        o.limit = -1;
        memset(&f, 0, sizeof f);
        f.magic = FT_MAGIC;
        to = topts(&f, 0);
        if (loop == NULL || drv_tg_create(loop, NULL, &o, &tg) != 0 ||
            drv_tg_spawn(tg, &to, NULL) != 0)
            _exit(2);
        drv_tg_free(tg); /* a task is not released: must abort */
        _exit(0);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    (void)s;
}

/* ------------------------- 4, 24: cancel reaches a queued pool job */

struct qcancel {
    struct state *s;
    struct drv_pool *p1;
    struct ft *a, *b;
};

static void
qcancel_poll(evutil_socket_t fd, short what, void *arg)
{
    struct qcancel *q = arg;
    struct drv_pool_stats ps;

    (void)fd;
    (void)what;
    drv_pool_get_stats(q->p1, &ps);
    if (ps.busy != 1 || ps.queued != 1) {
        later(q->s, 1, qcancel_poll, q); /* not there yet */
        return;
    }
    drv_tg_task_cancel(q->b->t, DRV_TG_CAUSE_EXPLICIT);
    /* recorded at once; delivered later */
    assert_int_equal(drv_tg_task_outcome(q->b->t)->state, DRV_TG_CANCELLED);
    assert_int_equal(q->b->outcomes, 0);
    assert_true(drv_tg_task_cancelled(q->b->t));
    drv_test_gate_open(&q->s->gate);
}

static void
test_tg_cancel_queued_pool_job_never_runs(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 2);
    struct drv_pool_opts po = {.nthreads = 1, .name = "one"};
    struct drv_tg_opts o = gopts(s, DRV_TG_COLLECT, -1);
    struct drv_pool_stats ps;
    struct qcancel q;

    memset(&q, 0, sizeof q);
    assert_int_equal(drv_pool_create(s->loop, &po, &q.p1), 0);
    assert_int_equal(drv_tg_create(s->loop, q.p1, &o, &s->tg), 0);
    q.s = s;
    q.a = &f[0];
    q.b = &f[1];
    f[0].kind = f[1].kind = DRV_TG_THREAD;
    f[0].block = 1;
    spawn_ok(s->tg, &f[0], 0);
    spawn_ok(s->tg, &f[1], 0);
    drv_tg_close(s->tg);
    later(s, 1, qcancel_poll, &q);
    run(s);
    assert_outcome(&f[0], DRV_TG_OK, DRV_TG_CAUSE_NONE);
    assert_outcome(&f[1], DRV_TG_CANCELLED, DRV_TG_CAUSE_EXPLICIT);
    assert_int_equal(atomic_load(&f[1].ran), 0); /* its work never ran */
    drv_pool_get_stats(q.p1, &ps);
    assert_int_equal(ps.cancelled, 1);
    drv_pool_free(q.p1);
}

/* pool shut down under a group: queued work ends CANCELLED(SHUTDOWN) */

static void
pool_free_poll(evutil_socket_t fd, short what, void *arg)
{
    struct qcancel *q = arg;
    struct drv_pool_stats ps;
    struct drv_test_opener o;

    (void)fd;
    (void)what;
    drv_pool_get_stats(q->p1, &ps);
    if (ps.busy != 1 || ps.queued != 1) {
        later(q->s, 1, pool_free_poll, q);
        return;
    }
    drv_test_opener_start(&o, &q->s->gate, q->p1);
    drv_pool_free(q->p1); /* joins a, completes b with -ECANCELED */
    q->p1 = NULL;
    drv_test_opener_join(&o);
}

static void
test_tg_pool_shutdown_cancels_queued_tasks(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 2);
    struct drv_pool_opts po = {.nthreads = 1, .name = "one"};
    struct drv_tg_opts o = gopts(s, DRV_TG_COLLECT, -1);
    struct qcancel q;

    memset(&q, 0, sizeof q);
    assert_int_equal(drv_pool_create(s->loop, &po, &q.p1), 0);
    assert_int_equal(drv_tg_create(s->loop, q.p1, &o, &s->tg), 0);
    q.s = s;
    f[0].kind = f[1].kind = DRV_TG_THREAD;
    f[0].block = 1;
    spawn_ok(s->tg, &f[0], 0);
    spawn_ok(s->tg, &f[1], 0);
    drv_tg_close(s->tg);
    later(s, 1, pool_free_poll, &q);
    run(s);
    assert_null(q.p1);
    assert_outcome(&f[0], DRV_TG_OK, DRV_TG_CAUSE_NONE);
    assert_outcome(&f[1], DRV_TG_CANCELLED, DRV_TG_CAUSE_SHUTDOWN);
    assert_int_equal(atomic_load(&f[1].ran), 0);
}

/* ------------------------------------------- 6: FAIL_FAST, siblings */

static struct ft *ff_tasks;

static void
ff_fail_outcome(struct ft *f)
{
    struct ft extra;
    struct drv_tg_task_opts o;

    /* the group is aborting: spawns are refused */
    memset(&extra, 0, sizeof extra);
    extra.magic = FT_MAGIC;
    extra.s = f->s;
    o = topts(&extra, 0);
    assert_int_equal(drv_tg_spawn(f->s->tg, &o, NULL), -ESHUTDOWN);
    assert_int_equal(drv_tg_report(f->s->tg)->cause, DRV_TG_CAUSE_SIBLING_FAILED);
}

static void
test_tg_fail_fast_cancels_siblings(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 6);
    int i;

    ff_tasks = f;
    make_tg(s, DRV_TG_FAIL_FAST, 3);
    f[0].run_ms = 20;
    f[0].code = -EIO;
    f[0].msg = "disk on fire";
    f[0].outcome_hook = ff_fail_outcome;
    f[1].cancel_mode = CM_NOW;
    f[2].cancel_mode = CM_LATER;
    /* f[3..5] wait for the limit and must never start */
    for (i = 0; i < 6; i++)
        spawn_ok(s->tg, &f[i], 0);
    drv_tg_close(s->tg);
    run(s);
    assert_outcome(&f[0], DRV_TG_FAILED, DRV_TG_CAUSE_NONE);
    assert_int_equal(f[0].out.code, -EIO);
    assert_string_equal(f[0].out_msg, "disk on fire");
    for (i = 1; i < 6; i++)
        assert_outcome(&f[i], DRV_TG_CANCELLED,
                       DRV_TG_CAUSE_SIBLING_FAILED);
    assert_int_equal(f[1].cancel_cause, DRV_TG_CAUSE_SIBLING_FAILED);
    assert_int_equal(f[2].cancel_cause, DRV_TG_CAUSE_SIBLING_FAILED);
    for (i = 3; i < 6; i++)
        assert_int_equal(f[i].started, 0); /* no further task starts */
    assert_int_equal(s->n_started, 3);
}

/* two thread failures land in the same drain: both are recorded */
static void
block_until_two_done(evutil_socket_t fd, short what, void *arg)
{
    struct state *s = arg;
    struct drv_pool_stats ps;

    (void)fd;
    (void)what;
    drv_test_gate_open(&s->gate);
    /* keep the loop busy until both failures sit on the done-list */
    wait_until_num((drv_pool_get_stats(s->pool, &ps), ps.done_pending), >=, 2,
                   "pool results waiting for the loop");
}

static void
ff_blocker_start(struct ft *f)
{
    later(f->s, 0, block_until_two_done, f->s);
}

static void
done_concurrent(struct state *s, struct drv_tg *tg,
                const struct drv_tg_report *r)
{
    assert_int_equal(r->n_failed, 2);
    assert_int_equal(r->n_cancelled, 1);
    assert_true(r->first_error == 0 || r->first_error == 1);
    assert_int_equal(r->cause, DRV_TG_CAUSE_SIBLING_FAILED);
}

static void
test_tg_fail_fast_collects_concurrent_failures(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 3);

    make_tg(s, DRV_TG_FAIL_FAST, -1);
    f[0].kind = f[1].kind = DRV_TG_THREAD;
    f[0].block = f[1].block = 1;
    f[0].code = -EIO;
    f[0].msg = "first";
    f[1].code = -EPIPE;
    f[1].msg = "second";
    f[2].cancel_mode = CM_NOW;
    f[2].start_hook = ff_blocker_start;
    spawn_ok(s->tg, &f[0], 0);
    spawn_ok(s->tg, &f[1], 0);
    spawn_ok(s->tg, &f[2], 0);
    drv_tg_close(s->tg);
    s->done_hook = done_concurrent;
    run(s);
    assert_outcome(&f[0], DRV_TG_FAILED, DRV_TG_CAUSE_NONE);
    assert_outcome(&f[1], DRV_TG_FAILED, DRV_TG_CAUSE_NONE);
    assert_int_equal(f[0].out.code, -EIO);
    assert_string_equal(f[0].out_msg, "first");
    assert_int_equal(f[1].out.code, -EPIPE);
    assert_string_equal(f[1].out_msg, "second");
    assert_outcome(&f[2], DRV_TG_CANCELLED, DRV_TG_CAUSE_SIBLING_FAILED);
}

/* ------------------------- 8: timeout vs completion in the same turn */

static void
sleep_then_done(evutil_socket_t fd, short what, void *arg)
{
    struct ft *f = arg;

    (void)fd;
    (void)what;
    usleep(60 * 1000); /* past the 20 ms timeout: both are due now */
    ft_finish(f);
}

static void
race_complete_first_start(struct ft *f)
{
    later(f->s, 0, sleep_then_done, f);
}

static void
sleep_then_arm(evutil_socket_t fd, short what, void *arg)
{
    struct ft *f = arg;

    (void)fd;
    (void)what;
    usleep(100 * 1000);
    /* due after the task's timer, both expired at the next turn */
    ft_arm(f, 50);
}

static void
race_timeout_first_start(struct ft *f)
{
    later(f->s, 0, sleep_then_arm, f);
}

static void
test_tg_timeout_vs_completion_same_turn(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 2);

    make_tg(s, DRV_TG_COLLECT, -1);
    /* a: the completion runs first; the overdue timer never fires */
    f[0].start_hook = race_complete_first_start;
    f[0].result = "done";
    /* b: the timer runs first; the completion that follows is a no-op
     * for the outcome (the task was asked to stop first) */
    f[1].start_hook = race_timeout_first_start;
    f[1].cancel_mode = CM_RECORD;
    spawn_ok(s->tg, &f[0], 20);
    spawn_ok(s->tg, &f[1], 20);
    drv_tg_close(s->tg);
    run(s);
    assert_outcome(&f[0], DRV_TG_OK, DRV_TG_CAUSE_NONE);
    assert_string_equal(f[0].out_result, "done");
    assert_int_equal(f[0].cancel_calls, 0);
    assert_outcome(&f[1], DRV_TG_TIMED_OUT, DRV_TG_CAUSE_NONE);
    assert_int_equal(f[1].cancel_calls, 1);
    assert_int_equal(f[1].cancel_cause, DRV_TG_CAUSE_TIMEOUT);
}

/* thread version: its result and its timer are due in the same turn */
static void
wait_done_then_sleep(evutil_socket_t fd, short what, void *arg)
{
    struct ft *f = arg;
    struct drv_pool_stats ps;

    (void)fd;
    (void)what;
    wait_until_num((drv_pool_get_stats(f->s->pool, &ps), ps.done_pending), >=,
                   1, "pool results waiting for the loop");
    usleep(60 * 1000); /* past the thread task's 20 ms timeout */
    ft_finish(f);
}

static void
race_thread_start(struct ft *f)
{
    later(f->s, 0, wait_done_then_sleep, f);
}

static void
test_tg_thread_timeout_vs_completion_exactly_one(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 2);

    make_tg(s, DRV_TG_COLLECT, -1);
    f[0].kind = DRV_TG_THREAD;
    f[0].result = "r";
    f[1].start_hook = race_thread_start;
    spawn_ok(s->tg, &f[0], 20);
    spawn_ok(s->tg, &f[1], 0);
    drv_tg_close(s->tg);
    run(s);
    /* whichever ran first decided; exactly one outcome either way */
    assert_int_equal(f[0].outcomes, 1);
    assert_int_equal(f[0].releases, 1);
    assert_true(f[0].out.state == DRV_TG_OK ||
                f[0].out.state == DRV_TG_TIMED_OUT);
    if (f[0].out.state == DRV_TG_OK)
        assert_string_equal(f[0].out_result, "r");
    assert_outcome(&f[1], DRV_TG_OK, DRV_TG_CAUSE_NONE);
}

/* --------------------------- 8: the timeout starts at RUNNING */

static void
test_tg_timeout_starts_when_running(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 3);

    make_tg(s, DRV_TG_COLLECT, 1);
    f[0].run_ms = 300;   /* holds the only permit for 300 ms */
    f[1].run_ms = 20;    /* waits ~300 ms, then runs 20 ms: OK */
    f[2].cancel_mode = CM_NOW; /* never finishes on its own */
    spawn_ok(s->tg, &f[0], 0);
    spawn_ok(s->tg, &f[1], 200);
    spawn_ok(s->tg, &f[2], 50);
    drv_tg_close(s->tg);
    run(s);
    assert_outcome(&f[0], DRV_TG_OK, DRV_TG_CAUSE_NONE);
    assert_outcome(&f[1], DRV_TG_OK, DRV_TG_CAUSE_NONE);
    /* b waited longer than its own timeout, and still ended OK */
    assert_true(f[1].start_ns - f[0].start_ns >= 250 * MS);
    assert_outcome(&f[2], DRV_TG_TIMED_OUT, DRV_TG_CAUSE_NONE);
    assert_int_equal(f[2].out.code, -ETIMEDOUT);
    assert_int_equal(f[2].cancel_cause, DRV_TG_CAUSE_TIMEOUT);
    /* no earlier than its timeout, counted from its start */
    assert_true(f[2].deadline_ns >= f[2].start_ns + 50 * MS - MS);
    assert_true(f[2].deadline_ns <= f[2].start_ns + 50 * MS);
    assert_true(f[2].cancel_ns >= f[2].deadline_ns);
}

/* ------------------------------------------------ 9: group deadline */

static void
test_tg_group_deadline(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 3);
    struct drv_tg_opts o = gopts(s, DRV_TG_COLLECT, 2);
    int64_t deadline = drv_clock_mono_ns() + 150 * MS;
    int i;

    o.deadline_ns = deadline;
    assert_int_equal(drv_tg_create(s->loop, s->pool, &o, &s->tg), 0);
    f[0].cancel_mode = CM_NOW;
    f[1].kind = DRV_TG_THREAD;
    f[1].poll_cancel = 1;
    f[1].result = "ignored";
    /* f[2] waits for the limit: never starts */
    for (i = 0; i < 3; i++)
        spawn_ok(s->tg, &f[i], 0);
    drv_tg_close(s->tg);
    run(s);
    for (i = 0; i < 3; i++)
        assert_outcome(&f[i], DRV_TG_CANCELLED, DRV_TG_CAUSE_GROUP_DEADLINE);
    assert_int_equal(f[0].cancel_cause, DRV_TG_CAUSE_GROUP_DEADLINE);
    assert_int_equal(atomic_load(&f[1].saw_cancel), 1);
    assert_string_equal(f[1].out_result, "");
    assert_int_equal(f[2].started, 0);
    assert_true(s->done_ns >= deadline);
    assert_true(f[0].cancel_ns >= deadline);
    /* the job's own bound is the group deadline (no task timeout) */
    assert_true(f[0].deadline_ns == deadline);
    assert_true(f[1].thr_deadline_ns == deadline);
}

static struct ft *grace_ignorer;

static void
done_grace(struct state *s, struct drv_tg *tg, const struct drv_tg_report *r)
{
    /* force-finished: a late done changes nothing */
    assert_int_equal(drv_tg_task_done(grace_ignorer->t, 0, NULL, "x"),
                     -EALREADY);
    assert_int_equal(r->cause, DRV_TG_CAUSE_GROUP_DEADLINE);
    assert_int_equal(r->n_cancelled, 2);
}

static void
test_tg_cancel_grace_force_finishes(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 2);
    struct drv_tg_opts o = gopts(s, DRV_TG_COLLECT, -1);
    int64_t deadline = drv_clock_mono_ns() + 100 * MS;

    o.deadline_ns = deadline;
    o.cancel_grace_ms = 100;
    assert_int_equal(drv_tg_create(s->loop, s->pool, &o, &s->tg), 0);
    grace_ignorer = &f[0];
    f[0].cancel_mode = CM_IGNORE; /* never calls done: forced */
    f[1].cancel_mode = CM_LATER;  /* done 10 ms after the cancel */
    spawn_ok(s->tg, &f[0], 0);
    spawn_ok(s->tg, &f[1], 0);
    drv_tg_close(s->tg);
    s->done_hook = done_grace;
    run(s);
    assert_outcome(&f[0], DRV_TG_CANCELLED, DRV_TG_CAUSE_GROUP_DEADLINE);
    assert_outcome(&f[1], DRV_TG_CANCELLED, DRV_TG_CAUSE_GROUP_DEADLINE);
    assert_true(f[0].outcome_ns >= deadline + 100 * MS);
    assert_true(f[1].outcome_ns < f[0].outcome_ns);
    assert_true(s->done_ns >= deadline + 100 * MS);
}

/* ------------------------------------------------ 11: nested groups */

static void
done_nested(struct state *s, struct drv_tg *tg, const struct drv_tg_report *r)
{
    const struct drv_tg_outcome *c, *g, *o;

    assert_int_equal(r->n_tasks, 2);
    assert_int_equal(r->n_ok, 1);
    assert_int_equal(r->n_failed, 1);
    assert_int_equal(r->first_error, 1);
    o = drv_tg_report_at(r, 0);
    assert_int_equal(o->state, DRV_TG_OK);
    assert_null(o->child);
    c = drv_tg_report_at(r, 1);   /* the child: ONE entry */
    assert_int_equal(c->state, DRV_TG_FAILED);
    assert_int_equal(c->code, -EIO);
    assert_string_equal(c->name, "child");
    assert_string_equal(c->msg, "grand: g1: disk");
    assert_non_null(c->child);
    assert_int_equal(c->child->n_tasks, 3);
    assert_int_equal(c->child->n_ok, 1);
    assert_int_equal(c->child->n_failed, 1);
    assert_int_equal(c->child->n_cancelled, 1);
    assert_int_equal(c->child->cause, DRV_TG_CAUSE_SIBLING_FAILED);
    o = drv_tg_report_at(c->child, 1);
    assert_int_equal(o->state, DRV_TG_CANCELLED);
    assert_int_equal(o->cause, DRV_TG_CAUSE_SIBLING_FAILED);
    g = drv_tg_report_at(c->child, 2); /* the grandchild */
    assert_int_equal(g->state, DRV_TG_FAILED);
    assert_string_equal(g->msg, "g1: disk");
    assert_non_null(g->child);
    assert_int_equal(g->child->n_tasks, 2);
    assert_int_equal(g->child->n_failed, 1);
    assert_int_equal(g->child->n_ok, 1);
    o = drv_tg_report_at(g->child, 0);
    assert_int_equal(o->state, DRV_TG_FAILED);
    assert_string_equal(o->msg, "disk");
    assert_int_equal(s->n_child_done, 2); /* children finished first */
}

static void
test_tg_nested_groups_report(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 5);
    struct drv_tg *child = NULL, *grand = NULL;
    struct drv_tg_task *entry = NULL;
    struct drv_tg_opts co = gopts(s, DRV_TG_FAIL_FAST, -1);
    struct drv_tg_opts go = gopts(s, DRV_TG_COLLECT, -1);
    struct drv_tg_task_opts to;

    make_tg(s, DRV_TG_COLLECT, -1);
    co.on_done = go.on_done = child_done;
    co.on_quiesced = go.on_quiesced = NULL;
    f[0].run_ms = 5;               /* root: ok */
    spawn_ok(s->tg, &f[0], 0);
    memset(&to, 0, sizeof to);
    to.name = "child";
    assert_int_equal(drv_tg_create_child(s->tg, &co, &to, &child, &entry),
                     0);
    assert_int_equal(drv_tg_task_outcome(entry)->state, DRV_TG_RUNNING);
    f[1].run_ms = 1;               /* child: ok */
    spawn_ok(child, &f[1], 0);
    f[2].cancel_mode = CM_NOW;     /* child: cancelled by the failure */
    spawn_ok(child, &f[2], 0);
    to.name = "grand";
    assert_int_equal(drv_tg_create_child(child, &go, &to, &grand, NULL), 0);
    snprintf(f[3].name, sizeof f[3].name, "g1");
    f[3].run_ms = 20;
    f[3].code = -EIO;
    f[3].msg = "disk";
    spawn_ok(grand, &f[3], 0);
    f[4].run_ms = 5;
    spawn_ok(grand, &f[4], 0);
    drv_tg_close(grand);
    drv_tg_close(child);
    drv_tg_close(s->tg);
    s->done_hook = done_nested;
    run(s);
    assert_outcome(&f[0], DRV_TG_OK, DRV_TG_CAUSE_NONE);
    assert_outcome(&f[1], DRV_TG_OK, DRV_TG_CAUSE_NONE);
    assert_outcome(&f[2], DRV_TG_CANCELLED, DRV_TG_CAUSE_SIBLING_FAILED);
    assert_outcome(&f[3], DRV_TG_FAILED, DRV_TG_CAUSE_NONE);
    assert_outcome(&f[4], DRV_TG_OK, DRV_TG_CAUSE_NONE);
}

static struct drv_tg *tree_child;

static void
cancel_root(evutil_socket_t fd, short what, void *arg)
{
    struct state *s = arg;
    struct drv_tg_task_opts o;

    (void)fd;
    (void)what;
    drv_tg_cancel(s->tg, DRV_TG_CAUSE_EXPLICIT);
    /* level-triggered: the cancelled child refuses new work */
    o = topts(&s->fts[4], 0);
    assert_int_equal(spawn_o(tree_child, &s->fts[4], &o, 0), -ESHUTDOWN);
}

static void
done_cancel_tree(struct state *s, struct drv_tg *tg,
                 const struct drv_tg_report *r)
{
    const struct drv_tg_outcome *c, *g;

    assert_int_equal(r->cause, DRV_TG_CAUSE_EXPLICIT);
    c = drv_tg_report_at(r, 1);
    assert_int_equal(c->state, DRV_TG_CANCELLED);
    assert_int_equal(c->cause, DRV_TG_CAUSE_EXPLICIT);
    assert_int_equal(c->child->cause, DRV_TG_CAUSE_PARENT_CANCELLED);
    g = drv_tg_report_at(c->child, 1);
    assert_int_equal(g->state, DRV_TG_CANCELLED);
    assert_int_equal(g->cause, DRV_TG_CAUSE_PARENT_CANCELLED);
    assert_int_equal(g->child->cause, DRV_TG_CAUSE_PARENT_CANCELLED);
    assert_int_equal(g->child->n_cancelled, 2);
}

static void
test_tg_cancel_reaches_grandchildren(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 5);
    struct drv_tg *child = NULL, *grand = NULL;
    struct drv_tg_opts co = gopts(s, DRV_TG_COLLECT, -1);
    int i;

    make_tg(s, DRV_TG_COLLECT, -1);
    co.on_done = child_done;
    co.on_quiesced = NULL;
    for (i = 0; i < 5; i++)
        f[i].cancel_mode = CM_NOW;
    spawn_ok(s->tg, &f[0], 0);
    assert_int_equal(drv_tg_create_child(s->tg, &co, NULL, &child, NULL), 0);
    tree_child = child;
    spawn_ok(child, &f[1], 0);
    assert_int_equal(drv_tg_create_child(child, &co, NULL, &grand, NULL), 0);
    spawn_ok(grand, &f[2], 0);
    f[3].kind = DRV_TG_THREAD;
    f[3].poll_cancel = 1;
    spawn_ok(grand, &f[3], 0);
    later(s, 30, cancel_root, s);
    s->done_hook = done_cancel_tree;
    run(s);
    assert_outcome(&f[0], DRV_TG_CANCELLED, DRV_TG_CAUSE_EXPLICIT);
    assert_outcome(&f[1], DRV_TG_CANCELLED, DRV_TG_CAUSE_PARENT_CANCELLED);
    assert_outcome(&f[2], DRV_TG_CANCELLED, DRV_TG_CAUSE_PARENT_CANCELLED);
    assert_outcome(&f[3], DRV_TG_CANCELLED, DRV_TG_CAUSE_PARENT_CANCELLED);
    assert_int_equal(f[2].cancel_cause, DRV_TG_CAUSE_PARENT_CANCELLED);
    assert_int_equal(atomic_load(&f[3].saw_cancel), 1);
    /* cancel closed the groups: no explicit close was needed */
    assert_int_equal(s->n_child_done, 2);
    assert_int_equal(f[4].started, 0);
}

/* ------------------------------------------- 14: cancel idempotent */

static struct ft *idem;

static void
cancel_twice(evutil_socket_t fd, short what, void *arg)
{
    struct state *s = arg;

    (void)fd;
    (void)what;
    drv_tg_cancel(s->tg, DRV_TG_CAUSE_EXPLICIT);
    drv_tg_cancel(s->tg, DRV_TG_CAUSE_SHUTDOWN); /* first cause wins */
    drv_tg_task_cancel(idem[1].t, DRV_TG_CAUSE_SHUTDOWN);
    assert_int_equal(drv_tg_report(s->tg)->cause, DRV_TG_CAUSE_EXPLICIT);
}

static void
done_idem(struct state *s, struct drv_tg *tg, const struct drv_tg_report *r)
{
    /* from inside on_done: nothing changes, nothing breaks */
    drv_tg_cancel(tg, DRV_TG_CAUSE_SHUTDOWN);
    drv_tg_task_cancel(idem[0].t, DRV_TG_CAUSE_SHUTDOWN);
    drv_tg_task_cancel(idem[2].t, DRV_TG_CAUSE_SHUTDOWN);
    assert_int_equal(r->cause, DRV_TG_CAUSE_EXPLICIT);
    assert_int_equal(drv_tg_report_at(r, 0)->cause, DRV_TG_CAUSE_EXPLICIT);
    assert_int_equal(drv_tg_report_at(r, 2)->state, DRV_TG_OK);
}

static void
test_tg_cancel_idempotent(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 3);

    idem = f;
    make_tg(s, DRV_TG_COLLECT, -1);
    f[0].cancel_mode = CM_NOW;
    f[1].cancel_mode = CM_LATER;
    f[2].run_ms = 1;
    spawn_ok(s->tg, &f[0], 0);
    spawn_ok(s->tg, &f[1], 0);
    spawn_ok(s->tg, &f[2], 0);
    later(s, 30, cancel_twice, s);
    s->done_hook = done_idem;
    run(s);
    assert_outcome(&f[0], DRV_TG_CANCELLED, DRV_TG_CAUSE_EXPLICIT);
    assert_outcome(&f[1], DRV_TG_CANCELLED, DRV_TG_CAUSE_EXPLICIT);
    assert_outcome(&f[2], DRV_TG_OK, DRV_TG_CAUSE_NONE);
    assert_int_equal(f[0].cancel_calls, 1);
    assert_int_equal(f[1].cancel_calls, 1);
    assert_int_equal(f[2].cancel_calls, 0);
}

/* ------------------------- 4, 5, 12: wakeup-then-cancel, level cancel */

static void
test_tg_wakeup_then_cancel_passes_permit(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 3);
    struct drv_tg_stats ts;

    make_tg(s, DRV_TG_COLLECT, 1);
    f[0].run_ms = 20;
    /* a finishes (its permit is handed to b), then b is cancelled
     * before its wakeup runs: c must get the permit */
    f[0].cancel_after_done = &f[1];
    f[1].run_ms = 5;
    f[2].run_ms = 5;
    spawn_ok(s->tg, &f[0], 0);
    spawn_ok(s->tg, &f[1], 0);
    spawn_ok(s->tg, &f[2], 0);
    drv_tg_close(s->tg);
    drv_tg_get_stats(s->tg, &ts);
    assert_int_equal(ts.waiting, 3);
    run(s);
    assert_outcome(&f[0], DRV_TG_OK, DRV_TG_CAUSE_NONE);
    assert_outcome(&f[1], DRV_TG_CANCELLED, DRV_TG_CAUSE_EXPLICIT);
    assert_int_equal(f[1].started, 0);
    assert_outcome(&f[2], DRV_TG_OK, DRV_TG_CAUSE_NONE);
    assert_int_equal(s->running_max, 1);
}

static void
test_tg_cancelled_waiting_task_never_starts(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 3);

    make_tg(s, DRV_TG_COLLECT, 1);
    f[0].run_ms = 30;
    f[1].run_ms = 1;
    f[2].run_ms = 1;
    spawn_ok(s->tg, &f[0], 0);
    spawn_ok(s->tg, &f[1], 0);
    spawn_ok(s->tg, &f[2], 0);
    drv_tg_task_cancel(f[1].t, DRV_TG_CAUSE_EXPLICIT);
    drv_tg_task_cancel(f[1].t, DRV_TG_CAUSE_SHUTDOWN); /* sticky */
    assert_true(drv_tg_task_cancelled(f[1].t));
    assert_int_equal(f[1].outcomes, 0); /* delivered later */
    drv_tg_close(s->tg);
    run(s);
    assert_outcome(&f[0], DRV_TG_OK, DRV_TG_CAUSE_NONE);
    assert_outcome(&f[1], DRV_TG_CANCELLED, DRV_TG_CAUSE_EXPLICIT);
    assert_int_equal(f[1].started, 0); /* even after permits freed up */
    assert_outcome(&f[2], DRV_TG_OK, DRV_TG_CAUSE_NONE);
}

/* -------------------------------------------------- 13: shielding */

static void
test_tg_shield_blocks_group_cancel_not_own_timeout(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 3);
    struct drv_tg_opts o = gopts(s, DRV_TG_COLLECT, -1);
    struct drv_tg_task_opts to;

    o.deadline_ns = drv_clock_mono_ns() + 50 * MS;
    assert_int_equal(drv_tg_create(s->loop, s->pool, &o, &s->tg), 0);
    f[0].run_ms = 150;          /* shielded: outlives the deadline, OK */
    to = topts(&f[0], 0);
    to.shield = 1;
    assert_int_equal(spawn_o(s->tg, &f[0], &to, 0), 0);
    f[1].cancel_mode = CM_NOW;  /* not shielded */
    spawn_ok(s->tg, &f[1], 0);
    f[2].cancel_mode = CM_NOW;  /* shielded, but its own timeout applies */
    to = topts(&f[2], 100);
    to.shield = 1;
    assert_int_equal(spawn_o(s->tg, &f[2], &to, 0), 0);
    drv_tg_close(s->tg);
    run(s);
    assert_outcome(&f[0], DRV_TG_OK, DRV_TG_CAUSE_NONE);
    assert_outcome(&f[1], DRV_TG_CANCELLED, DRV_TG_CAUSE_GROUP_DEADLINE);
    assert_outcome(&f[2], DRV_TG_TIMED_OUT, DRV_TG_CAUSE_NONE);
    assert_true(s->done_ns >= f[0].outcome_ns);
}

/* ------------------- per-task outcome without waiting for the slowest */

static void
fast_outcome(struct ft *f)
{
    /* the slow batch-mate is still running */
    assert_int_equal(f->s->fts[1].outcomes, 0);
    assert_int_equal(f->s->n_done, 0);
}

static void
test_tg_outcome_per_task_before_batch_done(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 2);

    make_tg(s, DRV_TG_COLLECT, -1);
    f[0].run_ms = 5;
    f[0].outcome_hook = fast_outcome;
    f[1].run_ms = 300;
    spawn_ok(s->tg, &f[0], 0);
    spawn_ok(s->tg, &f[1], 0);
    drv_tg_close(s->tg);
    run(s);
    assert_outcome(&f[0], DRV_TG_OK, DRV_TG_CAUSE_NONE);
    assert_outcome(&f[1], DRV_TG_OK, DRV_TG_CAUSE_NONE);
    assert_true(f[0].outcome_ns < f[1].outcome_ns);
}

/* ------------------------------------------------ run-time limit */

static void
raise_limit(struct ft *f)
{
    if (f->id == 0)
        assert_int_equal(drv_tg_set_limit(f->s->tg, 3), 0);
}

static void
test_tg_set_limit_applies_to_future(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 12);
    int i;

    make_tg(s, DRV_TG_COLLECT, 1);
    for (i = 0; i < 12; i++) {
        f[i].run_ms = 5;
        spawn_ok(s->tg, &f[i], 0);
    }
    f[0].start_hook = raise_limit;
    drv_tg_close(s->tg);
    run(s);
    assert_int_equal(s->running_max, 3);
    for (i = 0; i < 12; i++)
        assert_int_equal(s->order[i], i);
}

/* ---------------------------------------------------- scale: 10,000 */

static void
test_tg_10000_concurrent_tasks(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 10000);
    struct drv_tg_stats ts;
    int i;

    make_tg(s, DRV_TG_COLLECT, -1);
    for (i = 0; i < 10000; i++) {
        f[i].cancel_mode = CM_NOW;
        spawn_ok(s->tg, &f[i], 50); /* every one times out */
    }
    drv_tg_close(s->tg);
    drv_tg_get_stats(s->tg, &ts);
    assert_int_equal(ts.waiting, 10000);
    run(s);
    assert_int_equal(s->running_max, 10000); /* all ran at once */
    for (i = 0; i < 10000; i++)
        assert_outcome(&f[i], DRV_TG_TIMED_OUT, DRV_TG_CAUSE_NONE);
}

static void
test_tg_10000_tasks_through_limit_100(void **st)
{
    struct state *s = *st;
    struct ft *f = ft_new(s, 10000);
    int i;

    make_tg(s, DRV_TG_FAIL_FAST, 100);
    for (i = 0; i < 10000; i++) {
        f[i].run_ms = 0; /* done inside start: recursion must stay flat */
        spawn_ok(s->tg, &f[i], 0);
    }
    drv_tg_close(s->tg);
    run(s);
    assert_int_equal(s->n_started, 10000);
    for (i = 0; i < ORDER_MAX; i++)
        assert_int_equal(s->order[i], i);
    for (i = 0; i < 10000; i++)
        assert_outcome(&f[i], DRV_TG_OK, DRV_TG_CAUSE_NONE);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_tg_collect_results_in_spawn_order),
        T(test_tg_callbacks_deferred_never_in_own_stack),
        T(test_tg_empty_group_done_via_defer),
        T(test_tg_free_unused_group),
        T(test_tg_spawn_refused_after_close_cancel_done),
        T(test_tg_limit_1000_threads_hwm_exactly_10),
        T(test_tg_fifo_start_order),
        T(test_tg_shared_sems_across_groups),
        T(test_tg_try_spawn_eagain),
        T(test_tg_abandoned_thread_keeps_permit),
        T(test_tg_free_before_quiesced_aborts),
        T(test_tg_cancel_queued_pool_job_never_runs),
        T(test_tg_pool_shutdown_cancels_queued_tasks),
        T(test_tg_fail_fast_cancels_siblings),
        T(test_tg_fail_fast_collects_concurrent_failures),
        T(test_tg_timeout_vs_completion_same_turn),
        T(test_tg_thread_timeout_vs_completion_exactly_one),
        T(test_tg_timeout_starts_when_running),
        T(test_tg_group_deadline),
        T(test_tg_cancel_grace_force_finishes),
        T(test_tg_nested_groups_report),
        T(test_tg_cancel_reaches_grandchildren),
        T(test_tg_cancel_idempotent),
        T(test_tg_wakeup_then_cancel_passes_permit),
        T(test_tg_cancelled_waiting_task_never_starts),
        T(test_tg_shield_blocks_group_cancel_not_own_timeout),
        T(test_tg_outcome_per_task_before_batch_done),
        T(test_tg_set_limit_applies_to_future),
        T(test_tg_10000_concurrent_tasks),
        T(test_tg_10000_tasks_through_limit_100),
    };

    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, NULL, NULL);
}
