/*
 * tg.c -- task groups: limits, timeouts, cancellation, one report.
 *
 * DESIGN
 * A group owns its tasks (one allocation each, kept in spawn order until
 * the group is freed) and a semaphore for its own limit. A task takes its
 * permits in a fixed order -- group limit, then each shared semaphore --
 * trying first, else queueing its one embedded waiter (FIFO hand-off in
 * pkg/sem); holding all of them it is marked ready and queued to start.
 * Every user callback except a LOOP cancel hook (synchronous, so a
 * cancel reaches the work at once) runs from the group's "kick" event: a
 * user event activated with event_active (coalescing) that drains the
 * attention FIFO. So nothing runs inside drv_tg_spawn/close or a task's
 * own done call, and recursion stays flat however many tasks end
 * synchronously.
 * Exactly once: each state change is one function asserting the old
 * state; every path that could end a task checks the state first; a
 * task's timer is deleted when it ends. For THREAD tasks drv_pool_cancel
 * settles the race: queued (never runs), running (abandoned: permits
 * kept until it returns) or already returned (-EALREADY: its real result
 * wins, delivered this turn).
 * Threads: all of this is loop-thread code. A pool thread touches only
 * its task's work/ctx/deadlines (set before submit), the thr_* output
 * (read after the pool's done callback, ordered by the pool mutex) and
 * the atomic cancel_flag. Task memory outlives the thread: a group is
 * freed only when every task is released, and a THREAD task is released
 * only after its pool done callback.
 * Invariants: n_released <= n_reported <= n_tasks; permits are held only
 * while WAITING, RUNNING or ABANDONED; limit in_use == RUNNING + ABANDONED
 * + ready. Lock order: no locks here (pool and sem locks are never held
 * across a call into this file).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/error.h"
#include "drover/log.h"
#include "drover/loop.h"
#include "drover/pool.h"
#include "drover/sem.h"
#include "drover/tg.h"

#define DRV_TG_MAGIC 0x7a5c0001U
#define DRV_TG_TASK_MAGIC 0x7a5c0002U

#define NAME_LOG_MAX 128 /* quoted names in log lines */

struct drv_tg_task {
    unsigned magic;
    struct drv_tg *tg;               /* borrowed: owner group */
    enum drv_tg_state state;         /* lifecycle (loop thread) */
    enum drv_tg_kind kind;           /* LOOP, THREAD or GROUP */
    drv_tg_start_fn *start;          /* LOOP */
    drv_tg_cancel_fn *cancel;        /* LOOP */
    drv_tg_work_fn *work;            /* THREAD: read by the pool thread */
    drv_tg_outcome_fn *on_outcome;   /* may be NULL */
    drv_tg_release_fn *release;      /* may be NULL */
    void *ctx;                       /* borrowed: spawner's, until release */
    int64_t timeout_ms;              /* 0 = none */
    int64_t deadline_ns;             /* RUNNING: own expiry (then the
                                        cancel grace expiry), 0 = none */
    int64_t own_deadline_ns;         /* start + timeout, 0 = none; set
                                        before submit, read by threads */
    int shield;                      /* immune to group-level cancel */
    struct drv_sem *sems[1 + DRV_TG_MAX_SEMS]; /* borrowed: group limit
                                        first, then the shared ones */
    int n_need;                      /* entries used in sems */
    int n_held;                      /* permits held: sems[0 .. n_held) */
    int ready;                       /* WAITING with every permit */
    int cancel_req;                  /* RUNNING: cancel or timeout asked */
    int timed_out;                   /* LOOP: that was its own timeout */
    enum drv_tg_cause cause;         /* sticky first cause */
    atomic_int cancel_flag;          /* drv_tg_task_cancelled, any thread */
    int busy;                        /* body physically active */
    int abandoned;                   /* terminal while busy (counted) */
    int work_cancelled;              /* THREAD: unlinked before it ran */
    int reported;                    /* on_outcome delivered */
    int released;                    /* release delivered */
    int in_q;                        /* on the attention queue */
    struct drv_tg_task *q_next;      /* borrowed: attention queue link */
    int thr_code;                    /* THREAD output (pool thread) */
    char *thr_msg;                   /* owned: THREAD output message */
    char *res;                       /* owned: drv_tg_task_set_result
                                        bytes (+ NUL), until recorded */
    size_t res_len;                  /* bytes of res */
    char *msg_owned;                 /* owned: out.msg when allocated */
    char *result_owned;              /* owned: out.result */
    struct drv_tg *child;            /* owned: GROUP kind */
    struct drv_pool_work pw;         /* embedded: THREAD */
    struct drv_sem_waiter waiter;    /* embedded: one permit at a time */
    struct event timer;              /* embedded: own timeout, then grace */
    int timer_armed;                 /* timer added, not fired or deleted:
                                        a task that ends before its start
                                        hook returns never touches it */
    struct drv_tg_outcome out;       /* the record in the report */
    char name[];                     /* NUL-terminated copy */
};

struct drv_tg {
    unsigned magic;
    struct drv_loop *loop;           /* borrowed */
    struct event_base *base;         /* borrowed: the loop's */
    struct drv_pool *pool;           /* borrowed: may be NULL */
    struct drv_tg *parent;           /* borrowed: NULL for a root */
    struct drv_tg_task *entry;       /* borrowed: our task in parent */
    enum drv_tg_policy policy;       /* COLLECT or FAIL_FAST */
    int64_t deadline_ns;             /* 0 = none */
    int64_t grace_ms;                /* LOOP cancel grace */
    drv_tg_done_fn *on_done;         /* may be NULL */
    drv_tg_quiesced_fn *on_quiesced; /* may be NULL */
    void *ctx;                       /* borrowed */
    struct drv_sem *limit_sem;       /* owned: the group limit */
    struct drv_tg_task **tasks;      /* owned: spawn order, report.n_tasks */
    size_t cap;                      /* allocated entries in tasks */
    struct drv_tg_task *q_head;      /* borrowed: attention FIFO */
    struct drv_tg_task *q_tail;      /* borrowed: attention FIFO tail */
    size_t q_len;                    /* entries in the FIFO */
    struct event kick_ev;            /* embedded: drains the FIFO */
    struct event deadline_ev;        /* embedded: group deadline */
    int closed;                      /* no more spawns */
    int done_fired;                  /* on_done delivered */
    int quiesced_fired;              /* on_quiesced delivered */
    int in_callback;                 /* inside on_kick */
    int freeing;                     /* drv_tg_free called */
    size_t n_reported;               /* tasks REPORTED */
    size_t n_released;               /* tasks RELEASED */
    size_t n_waiting;                /* tasks WAITING */
    size_t n_running;                /* tasks RUNNING */
    size_t n_abandoned;              /* terminal, body still running */
    struct drv_tg_report report;     /* counts; tasks via report_at */
    char name[];                     /* NUL-terminated copy */
};

static void task_cancel(struct drv_tg_task *t, enum drv_tg_cause cause);
static void task_to_cancelled(struct drv_tg_task *t, enum drv_tg_cause cause);
static void run_work(struct drv_pool_work *w);
static void on_work_done(struct drv_pool_work *w, int status);
static void tg_cancel(struct drv_tg *tg, enum drv_tg_cause cause);
static void entry_child_done(struct drv_tg_task *e);

/* ---------------------------------------------------------------- names */

const char *
drv_tg_state_name(enum drv_tg_state s)
{
    switch (s) {
    case DRV_TG_NEW:
        return "new";
    case DRV_TG_WAITING:
        return "waiting";
    case DRV_TG_RUNNING:
        return "running";
    case DRV_TG_OK:
        return "ok";
    case DRV_TG_FAILED:
        return "failed";
    case DRV_TG_TIMED_OUT:
        return "timed_out";
    case DRV_TG_CANCELLED:
        return "cancelled";
    }
    return "unknown";
}

const char *
drv_tg_cause_name(enum drv_tg_cause c)
{
    switch (c) {
    case DRV_TG_CAUSE_NONE:
        return "none";
    case DRV_TG_CAUSE_SIBLING_FAILED:
        return "sibling_failed";
    case DRV_TG_CAUSE_GROUP_DEADLINE:
        return "group_deadline";
    case DRV_TG_CAUSE_PARENT_CANCELLED:
        return "parent_cancelled";
    case DRV_TG_CAUSE_SHUTDOWN:
        return "shutdown";
    case DRV_TG_CAUSE_EXPLICIT:
        return "explicit";
    case DRV_TG_CAUSE_TIMEOUT:
        return "timeout";
    }
    return "unknown";
}

static int
is_terminal(enum drv_tg_state s)
{
    return s == DRV_TG_OK || s == DRV_TG_FAILED || s == DRV_TG_TIMED_OUT ||
           s == DRV_TG_CANCELLED;
}

static int
refusing(const struct drv_tg *tg)
{
    return tg->closed || tg->report.cause != DRV_TG_CAUSE_NONE ||
           tg->done_fired || tg->freeing;
}

static void
log_task(enum drv_log_level lvl, const char *msg, const struct drv_tg_task *t,
         int code)
{
    char qg[NAME_LOG_MAX], qt[NAME_LOG_MAX];

    if (!drv_log_enabled(lvl))
        return;
    drv_log(lvl, msg, "group=%s task=%s outcome=%s cause=%s code=%d",
            drv_log_quote(qg, sizeof qg, t->tg->name, strlen(t->tg->name)),
            drv_log_quote(qt, sizeof qt, t->name, strlen(t->name)),
            drv_tg_state_name(t->state), drv_tg_cause_name(t->cause), code);
}

/* ------------------------------------------------------ attention queue */

static void
kick(struct drv_tg *tg)
{
    event_active(&tg->kick_ev, EV_READ, 0);
}

static void
enqueue(struct drv_tg_task *t)
{
    struct drv_tg *tg = t->tg;

    if (!t->in_q) {
        t->in_q = 1;
        t->q_next = NULL;
        if (tg->q_tail != NULL)
            tg->q_tail->q_next = t;
        else
            tg->q_head = t;
        tg->q_tail = t;
        tg->q_len++;
    }
    kick(tg);
}

static struct drv_tg_task *
dequeue(struct drv_tg *tg)
{
    struct drv_tg_task *t = tg->q_head;

    if (t == NULL)
        return NULL;
    tg->q_head = t->q_next;
    if (tg->q_head == NULL)
        tg->q_tail = NULL;
    tg->q_len--;
    t->q_next = NULL;
    t->in_q = 0;
    return t;
}

/* ---------------------------------------------------------------- permits */

static void
release_permits(struct drv_tg_task *t)
{
    while (t->n_held > 0) {
        t->n_held--;
        drv_sem_release(t->sems[t->n_held]);
    }
}

/* libevent adds tv to its cached loop time, which lags the clock by the
 * time this loop turn has run; refresh it so a timer never fires before
 * deadline_ns (the callbacks re-check and re-arm anyway). */
static void
arm_at(struct event_base *base, struct event *ev, int64_t deadline_ns)
{
    struct timeval tv;

    (void)event_base_update_cache_time(base);
    tv = drv_clock_tv_until(deadline_ns);
    DRV_AZ(event_add(ev, &tv));
}

static void
arm_timer_at(struct drv_tg_task *t, int64_t deadline_ns)
{
    t->deadline_ns = deadline_ns;
    t->timer_armed = 1;
    arm_at(t->tg->base, &t->timer, deadline_ns);
}

/* Delete the task's timer if it is armed (event_del takes the base's
 * lock even for an event that is not pending). */
static void
disarm_timer(struct drv_tg_task *t)
{
    if (t->timer_armed) {
        t->timer_armed = 0;
        event_del(&t->timer);
    }
}

/* ---------------------------------------------------------- transitions */

/* NEW -> WAITING */
static void
task_wait(struct drv_tg_task *t)
{
    DRV_ASSERT(t->state == DRV_TG_NEW);
    t->state = t->out.state = DRV_TG_WAITING;
    t->tg->n_waiting++;
}

/* WAITING -> RUNNING: the body starts (on the kick event's stack). */
static void
task_run(struct drv_tg_task *t)
{
    struct drv_tg *tg = t->tg;
    int rc;

    DRV_ASSERT(t->state == DRV_TG_WAITING && t->ready);
    DRV_ASSERT(t->n_held == t->n_need);
    tg->n_waiting--;
    tg->n_running++;
    t->state = t->out.state = DRV_TG_RUNNING;
    t->ready = 0;
    t->busy = 1;
    if (t->timeout_ms > 0) {
        /* the timeout starts now, not at spawn: permit waits are free */
        t->own_deadline_ns = drv_clock_mono_ns() +
                             t->timeout_ms * DRV_NS_PER_MS;
        if (t->kind != DRV_TG_LOOP)
            arm_timer_at(t, t->own_deadline_ns);
    }
    switch (t->kind) {
    case DRV_TG_LOOP:
        t->start(t, t->ctx);
        /* armed only once the hook returned: a task that finished inside
         * it (noop, a refused job) never adds and deletes a timer; no
         * timer can fire before this anyway (same loop turn) */
        if (t->state == DRV_TG_RUNNING && t->own_deadline_ns != 0 &&
            !t->timer_armed)
            arm_timer_at(t, t->own_deadline_ns);
        break;
    case DRV_TG_THREAD:
        rc = drv_pool_submit(tg->pool, &t->pw, run_work, on_work_done);
        if (rc != 0) {
            /* the pool is shutting down: the body never runs */
            t->busy = 0;
            release_permits(t);
            task_to_cancelled(t, DRV_TG_CAUSE_SHUTDOWN);
        }
        break;
    case DRV_TG_GROUP:
        break;
    }
}

/* Common part of the four terminal transitions. */
static void
task_record(struct drv_tg_task *t, enum drv_tg_state st)
{
    struct drv_tg *tg = t->tg;
    struct drv_tg_report *r = &tg->report;

    if (t->state == DRV_TG_WAITING)
        tg->n_waiting--;
    else
        tg->n_running--;
    t->state = t->out.state = st;
    disarm_timer(t);
    if (t->busy && !t->work_cancelled) {
        t->abandoned = 1;
        tg->n_abandoned++;
    }
    switch (st) {
    case DRV_TG_OK:
        r->n_ok++;
        break;
    case DRV_TG_FAILED:
        r->n_failed++;
        break;
    case DRV_TG_TIMED_OUT:
        r->n_timed_out++;
        break;
    default:
        r->n_cancelled++;
        break;
    }
    enqueue(t);
    if (st == DRV_TG_FAILED || st == DRV_TG_TIMED_OUT) {
        if (r->first_error < 0)
            r->first_error = (int64_t)t->out.index;
        /* cancellation is not a failure; these are */
        if (tg->policy == DRV_TG_FAIL_FAST)
            tg_cancel(tg, DRV_TG_CAUSE_SIBLING_FAILED);
    }
}

/* The task's output bytes (drv_tg_task_set_result) into its outcome. */
static void
take_result(struct drv_tg_task *t)
{
    t->result_owned = t->res;
    t->out.result = t->res;
    t->out.result_len = t->res_len;
    t->res = NULL;
    t->res_len = 0;
}

/* RUNNING -> OK, with the output bytes set so far. */
static void
task_to_ok(struct drv_tg_task *t)
{
    DRV_ASSERT(t->state == DRV_TG_RUNNING);
    take_result(t);
    t->out.code = 0;
    t->out.msg = "";
    task_record(t, DRV_TG_OK);
}

/* RUNNING -> FAILED; takes ownership of msg (NULL = drv_strerror). */
static void
task_to_failed(struct drv_tg_task *t, int code, char *msg)
{
    DRV_ASSERT(t->state == DRV_TG_RUNNING);
    take_result(t);
    t->msg_owned = msg;
    t->out.code = code;
    t->out.msg = msg != NULL ? msg : drv_strerror(code);
    task_record(t, DRV_TG_FAILED);
}

/* RUNNING -> TIMED_OUT */
static void
task_to_timed_out(struct drv_tg_task *t)
{
    DRV_ASSERT(t->state == DRV_TG_RUNNING);
    t->out.code = -ETIMEDOUT;
    t->out.msg = "timed out";
    task_record(t, DRV_TG_TIMED_OUT);
}

/* WAITING|RUNNING -> CANCELLED */
static void
task_to_cancelled(struct drv_tg_task *t, enum drv_tg_cause cause)
{
    DRV_ASSERT(t->state == DRV_TG_WAITING || t->state == DRV_TG_RUNNING);
    if (t->cause == DRV_TG_CAUSE_NONE)
        t->cause = cause;
    t->out.cause = t->cause;
    t->out.code = -ECANCELED;
    t->out.msg = "cancelled";
    task_record(t, DRV_TG_CANCELLED);
}

/* busy -> stopped (ABANDONED -> REAPED for a thread): permits go back. */
static void
task_reap(struct drv_tg_task *t)
{
    struct drv_tg *tg = t->tg;

    DRV_ASSERT(t->busy);
    t->busy = 0;
    if (t->abandoned) {
        t->abandoned = 0;
        tg->n_abandoned--;
    }
    release_permits(t);
    enqueue(t);
}

/* terminal -> REPORTED (kick event only) */
static void
task_report(struct drv_tg_task *t)
{
    DRV_ASSERT(is_terminal(t->state) && !t->reported);
    t->reported = 1;
    t->tg->n_reported++;
    if (t->on_outcome != NULL)
        t->on_outcome(t, &t->out, t->ctx);
}

/* REPORTED + stopped -> RELEASED (kick event only) */
static void
task_release(struct drv_tg_task *t)
{
    void *ctx = t->ctx;

    DRV_ASSERT(t->reported && !t->busy && !t->released && t->n_held == 0);
    t->released = 1;
    t->tg->n_released++;
    t->ctx = NULL;
    if (t->release != NULL)
        t->release(t, ctx);
}

/* ------------------------------------------------------------ threads */

/* Pool thread: run the task's work, keep its output for the loop. */
static void
run_work(struct drv_pool_work *w)
{
    struct drv_tg_task *t = drv_container_of(w, struct drv_tg_task, pw);
    struct drv_err err;
    int code;

    DRV_CHECK_OBJ(t, DRV_TG_TASK_MAGIC);
    drv_err_clear(&err);
    code = t->work(t, &err, t->ctx);
    t->thr_code = code;
    if (code != 0)
        t->thr_msg = drv_xstrdup(err.msg[0] != '\0' ? err.msg
                                                   : drv_strerror(code));
}

/* Loop thread, pool done callback: the thread returned (or never ran). */
static void
on_work_done(struct drv_pool_work *w, int status)
{
    struct drv_tg_task *t = drv_container_of(w, struct drv_tg_task, pw);

    DRV_CHECK_OBJ(t, DRV_TG_TASK_MAGIC);
    if (t->state == DRV_TG_RUNNING) {
        if (status == -ECANCELED) {
            /* the pool was freed with the job still queued */
            t->work_cancelled = 1;
            task_to_cancelled(t, DRV_TG_CAUSE_SHUTDOWN);
        } else if (t->thr_code == 0) {
            task_to_ok(t);
        } else {
            task_to_failed(t, t->thr_code, t->thr_msg);
            t->thr_msg = NULL;
        }
    } else if (status == 0) {
        /* abandoned at its timeout or cancel: the outcome stands */
        log_task(DRV_LOG_WARN, "late completion ignored", t, t->thr_code);
    }
    free(t->thr_msg);
    free(t->res);
    t->thr_msg = t->res = NULL;
    task_reap(t);
}

/* Stop a RUNNING thread task: unlink it from the pool queue if it has not
 * started, else abandon it (its permits stay until it returns). */
static void
thread_stop(struct drv_tg_task *t, enum drv_tg_state st,
            enum drv_tg_cause cause)
{
    int rc;

    rc = drv_pool_cancel(&t->pw);
    if (rc == -EALREADY)
        return; /* it already returned: its real result wins, this turn */
    if (rc == 0) {
        /* it will never run: nothing holds the permits any more */
        t->work_cancelled = 1;
        release_permits(t);
    } else {
        DRV_ASSERT(rc == -EBUSY);
    }
    if (st == DRV_TG_TIMED_OUT)
        task_to_timed_out(t);
    else
        task_to_cancelled(t, cause);
}

/* ---------------------------------------------------------------- timer */

static void
on_timer(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv_tg_task *t;
    struct drv_tg *tg;

    DRV_CAST(t, arg, DRV_TG_TASK_MAGIC);
    tg = t->tg;
    t->timer_armed = 0; /* fired: no longer pending */
    if (t->state != DRV_TG_RUNNING)
        return; /* the completion ran first this turn */
    if (drv_clock_mono_ns() < t->deadline_ns) {
        arm_timer_at(t, t->deadline_ns); /* early by the cached time */
        return;
    }
    if (t->cancel_req) {
        /* a LOOP task that did not finish within cancel_grace */
        DRV_ASSERT(t->kind == DRV_TG_LOOP);
        if (t->timed_out)
            task_to_timed_out(t);
        else
            task_to_cancelled(t, t->cause);
        log_task(DRV_LOG_ERROR, "task missed cancel grace; force-finished",
                 t, t->out.code);
        task_reap(t);
        return;
    }
    /* its own timeout */
    t->cancel_req = 1;
    atomic_store(&t->cancel_flag, 1);
    if (t->kind == DRV_TG_LOOP) {
        t->timed_out = 1;
        arm_timer_at(t, drv_clock_mono_ns() + tg->grace_ms * DRV_NS_PER_MS);
        t->cancel(t, DRV_TG_CAUSE_TIMEOUT, t->ctx);
    } else {
        thread_stop(t, DRV_TG_TIMED_OUT, DRV_TG_CAUSE_NONE);
    }
}

/* ---------------------------------------------------------------- cancel */

static void
task_cancel(struct drv_tg_task *t, enum drv_tg_cause cause)
{
    struct drv_tg *tg = t->tg;

    switch (t->state) {
    case DRV_TG_WAITING:
        /* never started and never will: drop the wait, give back what
         * it holds (a permit already handed to it passes on) */
        t->cause = cause;
        atomic_store(&t->cancel_flag, 1);
        (void)drv_sem_cancel(&t->waiter);
        release_permits(t);
        t->ready = 0;
        task_to_cancelled(t, cause);
        return;
    case DRV_TG_RUNNING:
        if (t->cancel_req)
            return; /* sticky: the first request stands */
        t->cancel_req = 1;
        t->cause = cause;
        atomic_store(&t->cancel_flag, 1);
        switch (t->kind) {
        case DRV_TG_LOOP:
            arm_timer_at(t, drv_clock_mono_ns() +
                                tg->grace_ms * DRV_NS_PER_MS);
            t->cancel(t, cause, t->ctx);
            break;
        case DRV_TG_THREAD:
            thread_stop(t, DRV_TG_CANCELLED, cause);
            break;
        case DRV_TG_GROUP:
            tg_cancel(t->child, DRV_TG_CAUSE_PARENT_CANCELLED);
            break;
        }
        return;
    default:
        return; /* finished: nothing to do */
    }
}

/* A cause a caller of drv_tg_cancel or drv_tg_task_cancel may give: not
 * NONE, and not TIMEOUT, which only a task's own timer gives. */
static enum drv_tg_cause
asked_cause(enum drv_tg_cause cause)
{
    DRV_ASSERT(cause > DRV_TG_CAUSE_NONE && cause < DRV_TG_CAUSE_TIMEOUT);
    return cause;
}

static void
tg_cancel(struct drv_tg *tg, enum drv_tg_cause cause)
{
    struct drv_tg_task *t;
    size_t i;

    if (tg->report.cause != DRV_TG_CAUSE_NONE || tg->done_fired)
        return;
    tg->report.cause = cause; /* sticky: the first cause wins */
    tg->closed = 1;
    event_del(&tg->deadline_ev);
    /* spawns are refused from here on, so n_tasks is stable */
    for (i = 0; i < tg->report.n_tasks; i++) {
        t = tg->tasks[i];
        if (!t->shield)
            task_cancel(t, cause);
    }
    kick(tg);
}

static void
on_deadline(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv_tg *tg;

    DRV_CAST(tg, arg, DRV_TG_MAGIC);
    if (drv_clock_mono_ns() < tg->deadline_ns) {
        arm_at(tg->base, &tg->deadline_ev, tg->deadline_ns);
        return;
    }
    tg_cancel(tg, DRV_TG_CAUSE_GROUP_DEADLINE);
}

/* ---------------------------------------------------------------- drain */

static void tg_destroy(struct drv_tg *tg);

static void
check_done(struct drv_tg *tg)
{
    if (!tg->closed || tg->done_fired || tg->n_reported < tg->report.n_tasks)
        return;
    tg->done_fired = 1;
    event_del(&tg->deadline_ev);
    if (tg->on_done != NULL)
        tg->on_done(tg, &tg->report, tg->ctx);
    if (tg->parent != NULL)
        entry_child_done(tg->entry);
}

static void
check_quiesced(struct drv_tg *tg)
{
    if (!tg->done_fired || tg->quiesced_fired ||
        tg->n_released < tg->report.n_tasks)
        return;
    tg->quiesced_fired = 1;
    if (tg->on_quiesced != NULL)
        tg->on_quiesced(tg, tg->ctx);
    if (tg->parent != NULL)
        task_reap(tg->entry);
}

static void
on_kick(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv_tg *tg;
    struct drv_tg_task *t;
    size_t n;

    DRV_CAST(tg, arg, DRV_TG_MAGIC);
    tg->in_callback++;
    /* only what was queued before this turn; the rest gets a new kick */
    n = tg->q_len;
    while (n-- > 0 && !tg->freeing && (t = dequeue(tg)) != NULL) {
        if (t->state == DRV_TG_WAITING && t->ready) {
            task_run(t);
            continue; /* if it ended inside start it is queued again */
        }
        if (is_terminal(t->state) && !t->reported)
            task_report(t);
        if (!tg->freeing && t->reported && !t->busy && !t->released)
            task_release(t);
    }
    if (!tg->freeing)
        check_done(tg);
    if (!tg->freeing)
        check_quiesced(tg);
    tg->in_callback--;
    if (tg->freeing) {
        if (tg->in_callback == 0)
            tg_destroy(tg);
        return;
    }
    if (tg->q_head != NULL)
        kick(tg);
}

/* -------------------------------------------------------- child groups */

/* The child is outcome-complete: its entry in the parent ends. */
static void
entry_child_done(struct drv_tg_task *e)
{
    const struct drv_tg *c = e->child;
    const struct drv_tg_report *r = &c->report;
    const struct drv_tg_outcome *fo;
    char buf[DRV_ERR_MSG_MAX];

    DRV_ASSERT(e->state == DRV_TG_RUNNING);
    if (r->first_error >= 0) {
        /* real errors win over cancellation */
        fo = &c->tasks[r->first_error]->out;
        if (fo->name[0] != '\0')
            snprintf(buf, sizeof buf, "%s: %s", fo->name, fo->msg);
        else
            snprintf(buf, sizeof buf, "%s", fo->msg);
        task_to_failed(e, fo->code, drv_xstrdup(buf));
    } else if (e->cancel_req) {
        task_to_cancelled(e, e->cause);
    } else if (r->cause == DRV_TG_CAUSE_GROUP_DEADLINE) {
        task_to_timed_out(e); /* the child's own deadline is its timeout */
    } else if (r->cause != DRV_TG_CAUSE_NONE) {
        task_to_cancelled(e, r->cause);
    } else if (r->n_cancelled > 0) {
        task_to_cancelled(e, DRV_TG_CAUSE_EXPLICIT);
    } else {
        task_to_ok(e);
    }
}

/* ---------------------------------------------------------------- create */

static int
check_opts(const struct drv_tg_opts *o)
{
    if (o == NULL)
        return -EINVAL;
    if (o->policy != DRV_TG_COLLECT && o->policy != DRV_TG_FAIL_FAST)
        return -EINVAL;
    if (o->limit == 0 || o->limit < -1)
        return -EINVAL;
    if (o->deadline_ns < 0 || o->cancel_grace_ms < 0)
        return -EINVAL;
    return 0;
}

static int
tg_new(struct drv_loop *loop, struct drv_pool *pool,
       const struct drv_tg_opts *o, struct drv_tg *parent,
       struct drv_tg **out)
{
    struct drv_tg *tg = NULL;
    const char *name = o->name != NULL ? o->name : "tg";
    size_t len = strlen(name);
    int rc;

    *out = NULL;
    tg = drv_xcalloc(1, sizeof *tg + len + 1);
    tg->magic = DRV_TG_MAGIC;
    memcpy(tg->name, name, len + 1);
    rc = drv_sem_create(loop, o->limit, &tg->limit_sem);
    if (rc != 0) {
        DRV_FREE_OBJ(tg);
        return rc;
    }
    tg->loop = loop;
    tg->base = drv_loop_base(loop);
    tg->pool = pool;
    tg->parent = parent;
    tg->policy = o->policy;
    tg->deadline_ns = o->deadline_ns;
    tg->grace_ms = o->cancel_grace_ms > 0 ? o->cancel_grace_ms
                                          : DRV_TG_GRACE_DEFAULT_MS;
    tg->on_done = o->on_done;
    tg->on_quiesced = o->on_quiesced;
    tg->ctx = o->ctx;
    tg->report.first_error = -1;
    tg->report._tg = tg;
    DRV_AZ(event_assign(&tg->kick_ev, tg->base, -1, 0, on_kick, tg));
    DRV_AZ(evtimer_assign(&tg->deadline_ev, tg->base, on_deadline, tg));
    if (tg->deadline_ns > 0)
        arm_at(tg->base, &tg->deadline_ev, tg->deadline_ns);
    *out = tg;
    return 0;
}

static struct drv_tg_task *
task_new(struct drv_tg *tg, const char *name, enum drv_tg_kind kind)
{
    struct drv_tg_task *t = NULL;
    size_t len = name != NULL ? strlen(name) : 0;

    t = drv_xcalloc(1, sizeof *t + len + 1);
    t->magic = DRV_TG_TASK_MAGIC;
    if (len > 0)
        memcpy(t->name, name, len);
    t->name[len] = '\0';
    t->tg = tg;
    t->kind = kind;
    t->state = DRV_TG_NEW;
    atomic_init(&t->cancel_flag, 0);
    t->out.state = DRV_TG_NEW;
    t->out.msg = "";
    t->out.name = t->name;
    t->out.index = tg->report.n_tasks;
    DRV_AZ(evtimer_assign(&t->timer, tg->base, on_timer, t));
    if (tg->report.n_tasks == tg->cap) {
        tg->cap = tg->cap != 0 ? tg->cap * 2 : 16;
        tg->tasks = drv_xrealloc(tg->tasks, tg->cap * sizeof *tg->tasks);
    }
    tg->tasks[tg->report.n_tasks++] = t;
    return t;
}

/* Take the permits still missing, in order; queue the start when done. */
static void on_permit(struct drv_sem_waiter *w, int status, void *ctx);

static void
acquire_next(struct drv_tg_task *t)
{
    struct drv_sem *s;

    while (t->n_held < t->n_need) {
        s = t->sems[t->n_held];
        if (drv_sem_try_acquire(s) == 0) {
            t->n_held++;
            continue;
        }
        if (drv_sem_acquire(s, &t->waiter, on_permit, t) == 0)
            return; /* on_permit continues */
        task_cancel(t, DRV_TG_CAUSE_SHUTDOWN); /* the sem is being freed */
        return;
    }
    t->ready = 1;
    enqueue(t);
}

static void
on_permit(struct drv_sem_waiter *w DRV_UNUSED, int status, void *ctx)
{
    struct drv_tg_task *t;

    DRV_CAST(t, ctx, DRV_TG_TASK_MAGIC);
    DRV_ASSERT(t->state == DRV_TG_WAITING && !t->ready);
    if (status < 0) {
        task_cancel(t, DRV_TG_CAUSE_SHUTDOWN);
        return;
    }
    t->n_held++;
    acquire_next(t);
}

static int
check_task_opts(const struct drv_tg *tg, const struct drv_tg_task_opts *o)
{
    int i;

    if (o == NULL || o->nsems < 0 || o->nsems > DRV_TG_MAX_SEMS ||
        o->timeout_ms < 0)
        return -EINVAL;
    for (i = 0; i < o->nsems; i++)
        if (o->sems[i] == NULL)
            return -EINVAL;
    switch (o->kind) {
    case DRV_TG_LOOP:
        return o->start != NULL && o->cancel != NULL ? 0 : -EINVAL;
    case DRV_TG_THREAD:
        return o->work != NULL && tg->pool != NULL ? 0 : -EINVAL;
    default:
        return -EINVAL;
    }
}

static int
spawn(struct drv_tg *tg, const struct drv_tg_task_opts *o, int try_only,
      struct drv_tg_task **out)
{
    struct drv_sem *sems[1 + DRV_TG_MAX_SEMS];
    struct drv_tg_task *t = NULL;
    int i, n, rc;

    if (out != NULL)
        *out = NULL;
    DRV_CHECK_OBJ(tg, DRV_TG_MAGIC);
    if (refusing(tg))
        return -ESHUTDOWN;
    rc = check_task_opts(tg, o);
    if (rc != 0)
        return rc;
    sems[0] = tg->limit_sem;
    for (i = 0; i < o->nsems; i++)
        sems[1 + i] = o->sems[i];
    n = 1 + o->nsems;
    if (try_only) {
        /* all or nothing: nobody waits on a sem we took from (try_acquire
         * refuses while anyone waits), so giving back hands nothing on */
        for (i = 0; i < n; i++) {
            if (drv_sem_try_acquire(sems[i]) != 0) {
                while (i-- > 0)
                    drv_sem_release(sems[i]);
                return -EAGAIN;
            }
        }
    }
    t = task_new(tg, o->name, o->kind);
    t->start = o->start;
    t->cancel = o->cancel;
    t->work = o->work;
    t->on_outcome = o->on_outcome;
    t->release = o->release;
    t->ctx = o->ctx;
    t->timeout_ms = o->timeout_ms;
    t->shield = o->shield;
    memcpy(t->sems, sems, (size_t)n * sizeof sems[0]);
    t->n_need = n;
    t->n_held = try_only ? n : 0;
    task_wait(t);
    acquire_next(t);
    if (out != NULL)
        *out = t;
    return 0;
}

static void
tg_destroy(struct drv_tg *tg)
{
    struct drv_tg_task *t;
    size_t i;

    for (i = 0; i < tg->report.n_tasks; i++) {
        t = tg->tasks[i];
        DRV_ASSERT(t->released && t->n_held == 0);
        if (t->child != NULL)
            tg_destroy(t->child);
        disarm_timer(t);
        free(t->msg_owned);
        free(t->result_owned);
        free(t->thr_msg);
        free(t->res);
        DRV_FREE_OBJ(t);
    }
    free(tg->tasks);
    event_del(&tg->kick_ev);
    event_del(&tg->deadline_ev);
    drv_sem_free(tg->limit_sem);
    DRV_FREE_OBJ(tg);
}

/* ---------------------------------------------------------------- public */

int
drv_tg_create(struct drv_loop *loop, struct drv_pool *pool,
              const struct drv_tg_opts *opts, struct drv_tg **out)
{
    int rc;

    *out = NULL;
    rc = check_opts(opts);
    if (rc != 0)
        return rc;
    return tg_new(loop, pool, opts, NULL, out);
}

int
drv_tg_create_child(struct drv_tg *parent, const struct drv_tg_opts *opts,
                    const struct drv_tg_task_opts *to,
                    struct drv_tg **out_child, struct drv_tg_task **out_task)
{
    struct drv_tg *child = NULL;
    struct drv_tg_task *t = NULL;
    int rc;

    *out_child = NULL;
    if (out_task != NULL)
        *out_task = NULL;
    DRV_CHECK_OBJ(parent, DRV_TG_MAGIC);
    if (refusing(parent))
        return -ESHUTDOWN;
    rc = check_opts(opts);
    if (rc != 0)
        return rc;
    if (to != NULL && (to->nsems != 0 || to->timeout_ms != 0))
        return -EINVAL; /* a child's bound is its own deadline */
    rc = tg_new(parent->loop, parent->pool, opts, parent, &child);
    if (rc != 0)
        return rc;
    t = task_new(parent, to != NULL ? to->name : opts->name, DRV_TG_GROUP);
    if (to != NULL) {
        t->on_outcome = to->on_outcome;
        t->release = to->release;
        t->ctx = to->ctx;
        t->shield = to->shield;
    }
    t->child = child;
    child->entry = t;
    t->out.child = &child->report;
    /* no permit of the parent's limit: its own tasks take their own */
    task_wait(t);
    t->ready = 1;
    task_run(t);
    *out_child = child;
    if (out_task != NULL)
        *out_task = t;
    return 0;
}

void
drv_tg_free(struct drv_tg *tg)
{
    if (DRV_NO_OBJ(tg, DRV_TG_MAGIC))
        return;
    DRV_ASSERT(tg->parent == NULL); /* children go with their parent */
    if (tg->freeing)
        return;
    /* quiesced (or never given a task): no thread holds a pointer in */
    DRV_ASSERT(tg->n_released == tg->report.n_tasks);
    tg->on_done = NULL;
    tg->on_quiesced = NULL;
    if (drv_free_now(&tg->freeing, tg->in_callback))
        tg_destroy(tg); /* else on_kick destroys it on its way out */
}

int
drv_tg_spawn(struct drv_tg *tg, const struct drv_tg_task_opts *o,
             struct drv_tg_task **out)
{
    return spawn(tg, o, 0, out);
}

int
drv_tg_try_spawn(struct drv_tg *tg, const struct drv_tg_task_opts *o,
                 struct drv_tg_task **out)
{
    return spawn(tg, o, 1, out);
}

void
drv_tg_close(struct drv_tg *tg)
{
    DRV_CHECK_OBJ(tg, DRV_TG_MAGIC);
    if (tg->closed)
        return;
    tg->closed = 1;
    kick(tg);
}

void
drv_tg_cancel(struct drv_tg *tg, enum drv_tg_cause cause)
{
    DRV_CHECK_OBJ(tg, DRV_TG_MAGIC);
    tg_cancel(tg, asked_cause(cause));
}

int
drv_tg_set_limit(struct drv_tg *tg, int limit)
{
    DRV_CHECK_OBJ(tg, DRV_TG_MAGIC);
    if (limit == 0 || limit < -1)
        return -EINVAL;
    return drv_sem_set_limit(tg->limit_sem, limit);
}

const struct drv_tg_report *
drv_tg_report(const struct drv_tg *tg)
{
    DRV_CHECK_OBJ(tg, DRV_TG_MAGIC);
    return &tg->report;
}

const struct drv_tg_outcome *
drv_tg_report_at(const struct drv_tg_report *r, size_t i)
{
    DRV_AN(r != NULL);
    DRV_CHECK_OBJ(r->_tg, DRV_TG_MAGIC);
    DRV_ASSERT(i < r->n_tasks);
    return &r->_tg->tasks[i]->out;
}

void
drv_tg_get_stats(const struct drv_tg *tg, struct drv_tg_stats *out)
{
    struct drv_sem_stats ss;

    DRV_CHECK_OBJ(tg, DRV_TG_MAGIC);
    drv_sem_get_stats(tg->limit_sem, &ss);
    out->waiting = tg->n_waiting;
    out->running = tg->n_running;
    out->abandoned = tg->n_abandoned;
    out->permits_in_use = ss.in_use;
    out->permits_hwm = ss.hwm;
    out->quiesced = tg->quiesced_fired;
}

int
drv_tg_task_done(struct drv_tg_task *t, int code, const char *msg,
                 const char *result)
{
    DRV_CHECK_OBJ(t, DRV_TG_TASK_MAGIC);
    DRV_ASSERT(t->kind == DRV_TG_LOOP);
    if (is_terminal(t->state)) {
        log_task(DRV_LOG_WARN, "late completion ignored", t, code);
        return -EALREADY;
    }
    DRV_ASSERT(t->state == DRV_TG_RUNNING);
    if (t->cancel_req) {
        /* asked to stop first: that decides the outcome */
        if (t->timed_out)
            task_to_timed_out(t);
        else
            task_to_cancelled(t, t->cause);
    } else if (code == 0) {
        if (result != NULL)
            drv_tg_task_set_result(t, result, strlen(result));
        task_to_ok(t);
    } else {
        task_to_failed(t, code, msg != NULL ? drv_xstrdup(msg) : NULL);
    }
    task_reap(t);
    return 0;
}

void
drv_tg_task_cancel(struct drv_tg_task *t, enum drv_tg_cause cause)
{
    DRV_CHECK_OBJ(t, DRV_TG_TASK_MAGIC);
    task_cancel(t, asked_cause(cause));
}

int
drv_tg_task_cancelled(const struct drv_tg_task *t)
{
    return atomic_load(&((struct drv_tg_task *)t)->cancel_flag) != 0;
}

void
drv_tg_task_set_result(struct drv_tg_task *t, const void *data, size_t len)
{
    DRV_CHECK_OBJ(t, DRV_TG_TASK_MAGIC);
    free(t->res);
    t->res = NULL;
    t->res_len = 0;
    if (data == NULL)
        return;
    t->res = drv_xmalloc(len + 1);
    memcpy(t->res, data, len);
    t->res[len] = '\0';
    t->res_len = len;
}

int64_t
drv_tg_task_deadline_ns(const struct drv_tg_task *t)
{
    const struct drv_tg *g;
    int64_t d;

    DRV_CHECK_OBJ(t, DRV_TG_TASK_MAGIC);
    d = t->own_deadline_ns;
    /* deadlines are fixed at creation: safe to read from a pool thread */
    for (g = t->tg; g != NULL; g = g->parent)
        if (g->deadline_ns > 0 && (d == 0 || g->deadline_ns < d))
            d = g->deadline_ns;
    return d;
}

const struct drv_tg_outcome *
drv_tg_task_outcome(const struct drv_tg_task *t)
{
    DRV_CHECK_OBJ(t, DRV_TG_TASK_MAGIC);
    return &t->out;
}

struct drv_tg *
drv_tg_task_group(const struct drv_tg_task *t)
{
    DRV_CHECK_OBJ(t, DRV_TG_TASK_MAGIC);
    return t->tg;
}
