/*
 * drover/tg.h -- task groups: structured concurrency on the event loop.
 *
 * A group runs tasks of three kinds and waits for every one of them:
 *   LOOP    callback-driven work on the loop thread: start(t) begins it and
 *           it ends by calling drv_tg_task_done(t, ...), now or later;
 *   THREAD  a blocking function run on a drv_pool thread;
 *   GROUP   a child group (drv_tg_create_child), one entry in its parent.
 * The concurrency core knows nothing of Redis, jobs or YAML.
 *
 * Task lifecycle (each arrow fires at most once; one function per arrow in
 * tg.c asserts the old state):
 *
 *     NEW --task_wait--> WAITING --task_run--> RUNNING --done(0)-----> OK
 *                          |  permits:            |----done(<0)----> FAILED
 *                          |  group limit, then   |----own timeout-> TIMED_OUT
 *                          |  sems[] in order     '----cancel------> CANCELLED
 *                          '----cancel(cause)-----------------------> CANCELLED
 *                                                 (body never invoked)
 *
 *     OK|FAILED|TIMED_OUT|CANCELLED --on_outcome delivered--> REPORTED
 *     REPORTED + stopped --release(ctx)--> RELEASED        (task quiesced)
 *
 * "stopped" is the physical side: a THREAD task whose outcome was recorded
 * (timeout or cancel) while work() still runs is ABANDONED -- it keeps its
 * permits (group limit and shared sems) until the thread really returns
 * (ABANDONED --thread returns--> REAPED); its late result is discarded and
 * logged "late completion ignored". A cancelled LOOP task stays RUNNING
 * until it calls drv_tg_task_done or its cancel_grace expires (then it is
 * force-finished and an error is logged). REPORTED and RELEASED are kept
 * as flags next to the terminal state so the outcome stays readable (a
 * deliberate departure from one enum: clarity wins).
 *
 * Group lifecycle:
 *
 *     OPEN --drv_tg_close / cancel--> CLOSED --all tasks REPORTED--> DONE
 *          --every task RELEASED (abandoned threads returned)--> QUIESCED
 *
 *   DONE     = outcome-complete: on_done(report) runs once, from a fresh
 *              loop callback, never inside a task's own call stack.
 *   QUIESCED = on_quiesced runs once, after on_done; only now may the
 *              group be freed (freeing earlier is an assertion failure).
 *
 * Cancellation carries a sticky cause (first cause wins) and is
 * level-triggered: a cancelled task never starts later, a cancelled,
 * closed or done group refuses spawns with -ESHUTDOWN. Cancellation is not
 * a failure; FAILED and TIMED_OUT are, and in a FAIL_FAST group the first
 * one cancels the rest with cause SIBLING_FAILED. Cancelling a group
 * reaches its child groups (PARENT_CANCELLED), recursively.
 *
 * Timeouts: a task's timeout_ms starts at WAITING -> RUNNING (time spent
 * waiting for permits does not count); the group deadline (absolute
 * monotonic ns) covers queue time too. Whichever is earlier wins:
 * TIMED_OUT for the task's own, CANCELLED(GROUP_DEADLINE) for the group's.
 * For a THREAD task RUNNING starts when it is submitted to the pool: size
 * the pool at least as large as the limits that feed it.
 *
 * Threads: every function runs on the loop thread, except
 * drv_tg_task_cancelled, drv_tg_task_deadline_ns and
 * drv_tg_task_set_result, which a THREAD task's work() may call from its
 * pool thread.
 *
 * Memory: a group keeps every task record (its outcome) until it is
 * freed, so the report can list them in spawn order; a long stream of
 * work uses one group per batch. A task costs one allocation.
 */
#ifndef DROVER_TG_H
#define DROVER_TG_H

#include <stddef.h>
#include <stdint.h>

#include "drover/error.h"

struct drv_loop;
struct drv_pool;
struct drv_sem;
struct drv_tg;
struct drv_tg_task;
struct drv_tg_report;

#define DRV_TG_MAX_SEMS 4              /* shared semaphores per task */
#define DRV_TG_GRACE_DEFAULT_MS 5000   /* cancel_grace_ms when 0 */

enum drv_tg_policy {
    DRV_TG_COLLECT = 0,    /* every task runs to its end (a batch of jobs) */
    DRV_TG_FAIL_FAST = 1   /* first FAILED/TIMED_OUT cancels the rest */
};

enum drv_tg_kind {
    DRV_TG_LOOP = 0,       /* start/cancel callbacks on the loop thread */
    DRV_TG_THREAD = 1,     /* work() on a pool thread */
    DRV_TG_GROUP = 2       /* a child group (drv_tg_create_child only) */
};

enum drv_tg_state {
    DRV_TG_NEW = 0,        /* allocated, not yet asking for permits */
    DRV_TG_WAITING,        /* waiting for permits or for its start turn */
    DRV_TG_RUNNING,        /* body started */
    DRV_TG_OK,             /* terminal: finished with code 0 */
    DRV_TG_FAILED,         /* terminal: finished with a negative code */
    DRV_TG_TIMED_OUT,      /* terminal: its own timeout expired */
    DRV_TG_CANCELLED       /* terminal: cancelled, see cause */
};

enum drv_tg_cause {
    DRV_TG_CAUSE_NONE = 0,
    DRV_TG_CAUSE_SIBLING_FAILED,   /* FAIL_FAST: another task failed */
    DRV_TG_CAUSE_GROUP_DEADLINE,   /* the group's deadline passed */
    DRV_TG_CAUSE_PARENT_CANCELLED, /* the parent group was cancelled */
    DRV_TG_CAUSE_SHUTDOWN,         /* the worker is stopping */
    DRV_TG_CAUSE_EXPLICIT,         /* drv_tg_cancel / drv_tg_task_cancel */
    DRV_TG_CAUSE_TIMEOUT           /* only given to a LOOP cancel hook:
                                      its own timeout (outcome TIMED_OUT) */
};

/* ------------------------------------------------------------- callbacks */

/* LOOP: begin the work on the loop thread; finish with drv_tg_task_done
 * (from inside start or later). */
typedef void drv_tg_start_fn(struct drv_tg_task *t, void *ctx);

/* LOOP: stop timers and I/O, kill a child, then call drv_tg_task_done
 * now or later -- within the group's cancel_grace_ms. cause is why
 * (DRV_TG_CAUSE_TIMEOUT for its own timeout). Called at most once. */
typedef void drv_tg_cancel_fn(struct drv_tg_task *t, enum drv_tg_cause cause,
                              void *ctx);

/* THREAD: runs on a pool thread; returns 0 or a negative code and may
 * fill err->msg (err->code is ignored). Must not touch loop objects; may
 * poll drv_tg_task_cancelled(t) and call drv_tg_task_set_result(t, ...). */
typedef int drv_tg_work_fn(struct drv_tg_task *t, struct drv_err *err,
                           void *ctx);

struct drv_tg_outcome;

/* The task's outcome, once, on the loop thread, from a deferred callback
 * (never inside drv_tg_spawn or the task's own calls). o is borrowed
 * until the group is freed. */
typedef void drv_tg_outcome_fn(struct drv_tg_task *t,
                               const struct drv_tg_outcome *o, void *ctx);

/* The task is quiesced (reported, and its body physically stopped): the
 * group will never use ctx again; free it here. Once, loop thread. */
typedef void drv_tg_release_fn(struct drv_tg_task *t, void *ctx);

/* Outcome-complete: every task has an outcome. r is borrowed until the
 * group is freed. Once, loop thread, fresh loop callback. */
typedef void drv_tg_done_fn(struct drv_tg *tg, const struct drv_tg_report *r,
                            void *ctx);

/* Quiesced: every task released, every abandoned thread returned. The
 * group may be freed from here on (including from inside this call). */
typedef void drv_tg_quiesced_fn(struct drv_tg *tg, void *ctx);

/* ---------------------------------------------------------------- data */

/* One task's outcome; every pointer is owned by the group. */
struct drv_tg_outcome {
    enum drv_tg_state state;    /* OK, FAILED, TIMED_OUT or CANCELLED */
    enum drv_tg_cause cause;    /* CANCELLED: why; otherwise NONE */
    int code;                   /* 0; FAILED: the task's code (caller-
                                   defined, e.g. DRV_EPERMANENT = permanent);
                                   TIMED_OUT: -ETIMEDOUT; CANCELLED:
                                   -ECANCELED */
    const char *msg;            /* never NULL: "" when OK */
    const char *result;         /* OK: the task's result; FAILED: the
                                   detail of its failure, when the task
                                   set one (drv_tg_task_set_result);
                                   else NULL. NUL-terminated, but may
                                   hold NULs: result_len counts */
    size_t result_len;          /* bytes of result */
    const char *name;           /* the task's name, "" when none */
    size_t index;               /* spawn index in its group */
    const struct drv_tg_report *child; /* GROUP: the child's report */
};

/* The aggregated report; counts are final when on_done runs. */
struct drv_tg_report {
    size_t n_tasks;             /* tasks spawned (child groups count one) */
    size_t n_ok;                /* outcomes OK */
    size_t n_failed;            /* outcomes FAILED */
    size_t n_timed_out;         /* outcomes TIMED_OUT */
    size_t n_cancelled;         /* outcomes CANCELLED */
    int64_t first_error;        /* index of the first FAILED/TIMED_OUT by
                                   completion time, -1 when none */
    enum drv_tg_cause cause;    /* why the group was cancelled, or NONE */
    const struct drv_tg *_tg;   /* borrowed: private back-pointer */
};

struct drv_tg_opts {
    enum drv_tg_policy policy;    /* COLLECT or FAIL_FAST */
    int limit;                    /* concurrent tasks, > 0, -1 unlimited */
    int64_t deadline_ns;          /* absolute CLOCK_MONOTONIC ns, 0 none */
    int64_t cancel_grace_ms;      /* LOOP cancel bound; 0 = default */
    drv_tg_done_fn *on_done;      /* may be NULL */
    drv_tg_quiesced_fn *on_quiesced; /* may be NULL */
    void *ctx;                    /* borrowed: for on_done/on_quiesced */
    const char *name;             /* copied; for logs; may be NULL */
};

struct drv_tg_task_opts {
    enum drv_tg_kind kind;        /* DRV_TG_LOOP or DRV_TG_THREAD */
    const char *name;             /* copied; for logs and the report */
    drv_tg_start_fn *start;       /* LOOP: required */
    drv_tg_cancel_fn *cancel;     /* LOOP: required */
    drv_tg_work_fn *work;         /* THREAD: required */
    drv_tg_outcome_fn *on_outcome; /* may be NULL */
    drv_tg_release_fn *release;   /* may be NULL */
    void *ctx;                    /* borrowed until release runs */
    int64_t timeout_ms;           /* from RUNNING; 0 = none */
    struct drv_sem *sems[DRV_TG_MAX_SEMS]; /* borrowed: shared permits,
                                   acquired in this order after the group
                                   limit; must outlive the task's permits.
                                   Use one global order everywhere. */
    int nsems;                    /* entries used in sems */
    int shield;                   /* 1: group-level cancellation (deadline,
                                   sibling failure, parent, drv_tg_cancel)
                                   does not reach it; its own timeout and
                                   drv_tg_task_cancel still do */
};

struct drv_tg_stats {
    size_t waiting;               /* tasks in WAITING */
    size_t running;               /* tasks in RUNNING */
    size_t abandoned;             /* terminal, body still running */
    int permits_in_use;           /* group limit permits held */
    int permits_hwm;              /* highest permits_in_use seen */
    int quiesced;                 /* 1 once on_quiesced has run
                                     (drv_tg_free allowed) */
};

/* ------------------------------------------------------------ the group */

/*
 * drv_tg_create -- make a root group. pool may be NULL when no THREAD task
 * will be spawned (borrowed otherwise, must outlive the group). opts is
 * copied. *out is owned by the caller: free it with drv_tg_free once it is
 * quiesced. Returns 0, -EINVAL (limit 0 or < -1, bad policy, negative
 * deadline or grace) or -ENOMEM.
 * Callback contracts for on_done/on_quiesced: (a) on error they never run;
 * (b) otherwise each runs exactly once, on the loop thread, from a fresh
 * loop callback, never inside a drv_tg_* call -- on_done after
 * drv_tg_close (or a cancel) once every task has an outcome, on_quiesced
 * after on_done once every task is released; (c) drv_tg_free clears them:
 * freeing is only allowed once every task is released, so no task
 * callback is ever dropped.
 */
int drv_tg_create(struct drv_loop *loop, struct drv_pool *pool,
                  const struct drv_tg_opts *opts, struct drv_tg **out);

/*
 * drv_tg_create_child -- a child group run as ONE task of parent: it
 * inherits loop and pool, appears in parent's report as one entry whose
 * child field holds its own report, and does not take a permit of the
 * parent's limit. to may be NULL; only its name, on_outcome, release, ctx
 * and shield are used. The entry ends when the child is outcome-complete
 * (so close the child): FAILED with the code and message of the child's
 * first error if any task failed or timed out; else CANCELLED(cause) if
 * the entry or child was cancelled (or a child task was); TIMED_OUT if
 * the child's own deadline fired; else OK. The child is owned by the
 * parent (freed with it; drv_tg_free on a child is an assertion failure);
 * *out_task may be NULL. Returns 0, -ESHUTDOWN (parent closed, cancelled
 * or done), -EINVAL or -ENOMEM; on error nothing runs.
 */
int drv_tg_create_child(struct drv_tg *parent, const struct drv_tg_opts *opts,
                        const struct drv_tg_task_opts *to,
                        struct drv_tg **out_child,
                        struct drv_tg_task **out_task);

/*
 * drv_tg_free -- free a root group and its child groups; NULL does
 * nothing. Every task must be released (the group quiesced, or never
 * given a task): anything else is an assertion failure. Pending on_done /
 * on_quiesced calls are dropped. Safe from inside on_done, on_quiesced,
 * on_outcome or release (the group then goes when that callback returns).
 */
void drv_tg_free(struct drv_tg *tg);

/*
 * drv_tg_spawn -- add a task. It waits FIFO for a permit of the group
 * limit, then for each of o->sems in order, then starts on a later loop
 * turn (never inside this call). o is copied (name too); o->ctx is
 * borrowed until release runs. *out (may be NULL) is a handle valid
 * until the group is freed.
 * Returns 0, -ESHUTDOWN (group closed, cancelled or done), -EINVAL (bad
 * options; no pool for a THREAD task) or -ENOMEM.
 * Callback contracts (start, cancel, work, on_outcome, release): (a) on
 * error none runs and ctx stays the caller's; (b) otherwise on_outcome
 * runs exactly once and release exactly once after it, on the loop
 * thread, never inside this call; start/work run at most once (never
 * when cancelled before starting), cancel at most once; (c) cancellation
 * and shutdown complete the task with CANCELLED and still deliver both.
 */
int drv_tg_spawn(struct drv_tg *tg, const struct drv_tg_task_opts *o,
                 struct drv_tg_task **out);

/*
 * drv_tg_try_spawn -- drv_tg_spawn, but returns -EAGAIN ("full") instead
 * of queueing when the group limit or any of o->sems has no permit free
 * right now; then nothing is taken. Same contracts.
 */
int drv_tg_try_spawn(struct drv_tg *tg, const struct drv_tg_task_opts *o,
                     struct drv_tg_task **out);

/*
 * drv_tg_close -- no more spawns; on_done may fire once every task has an
 * outcome (at once, via a deferred callback, for an empty group).
 * Idempotent.
 */
void drv_tg_close(struct drv_tg *tg);

/*
 * drv_tg_cancel -- cancel the group with cause (not NONE/TIMEOUT): close
 * it, then cancel every unfinished, unshielded task (WAITING ones never
 * start; LOOP hooks run synchronously; running THREAD tasks are
 * abandoned; child groups get PARENT_CANCELLED). Idempotent: the first
 * cause wins; does nothing once on_done has run (also from inside it).
 */
void drv_tg_cancel(struct drv_tg *tg, enum drv_tg_cause cause);

/* drv_tg_set_limit -- change the group limit (> 0 or -1); applies to
 * future acquisitions only. Returns 0 or -EINVAL. */
int drv_tg_set_limit(struct drv_tg *tg, int limit);

/* drv_tg_report -- the group's report (complete once on_done ran);
 * borrowed until the group is freed. */
const struct drv_tg_report *drv_tg_report(const struct drv_tg *tg);

/* drv_tg_report_at -- outcome of the i-th spawned task (i < n_tasks),
 * borrowed until the group is freed; state is not terminal while the
 * task is unfinished. */
const struct drv_tg_outcome *drv_tg_report_at(const struct drv_tg_report *r,
                                              size_t i);

/* drv_tg_get_stats -- live numbers (RUNNING + ABANDONED <= limit). */
void drv_tg_get_stats(const struct drv_tg *tg, struct drv_tg_stats *out);

/* --------------------------------------------------------------- a task */

/*
 * drv_tg_task_done -- a LOOP task finishes: code 0 (OK; result, if not
 * NULL, is copied as drv_tg_task_set_result would) or negative (FAILED;
 * msg copied, NULL = drv_strerror; result ignored).
 * If the task was cancelled or timed out before, the outcome is that
 * (CANCELLED(cause) / TIMED_OUT), whatever code says. Returns 0, or
 * -EALREADY when the task already has its outcome (force-finished after
 * cancel_grace): logged "late completion ignored", nothing changes.
 * Calling it before start or for a THREAD task is an assertion failure;
 * after release it is a use-after-free.
 */
int drv_tg_task_done(struct drv_tg_task *t, int code, const char *msg,
                     const char *result);

/*
 * drv_tg_task_cancel -- cancel one task with cause (as drv_tg_cancel does
 * for each; ignores shield). Idempotent, first cause wins; no-op on a
 * finished task.
 */
void drv_tg_task_cancel(struct drv_tg_task *t, enum drv_tg_cause cause);

/* drv_tg_task_cancelled -- 1 once cancellation or its timeout reached the
 * task (sticky). Any thread: a THREAD task's work() polls it. */
int drv_tg_task_cancelled(const struct drv_tg_task *t);

/*
 * drv_tg_task_set_result -- the task's output bytes (len bytes at data,
 * copied; last call wins; NULL clears): the result when the task ends OK,
 * the detail of the failure when it ends FAILED, dropped when it times
 * out or is cancelled. A THREAD task calls it from work() on its pool
 * thread; a LOOP task on the loop thread before drv_tg_task_done.
 */
void drv_tg_task_set_result(struct drv_tg_task *t, const void *data,
                            size_t len);
/* drv_tg_task_deadline_ns -- the task's effective absolute deadline on
 * CLOCK_MONOTONIC: the earliest of start + timeout_ms and the deadlines
 * of its group and every ancestor; 0 when none. Any thread once the task
 * runs (hand it to blocking work as its own bound). */
int64_t drv_tg_task_deadline_ns(const struct drv_tg_task *t);

/* drv_tg_task_outcome -- the task's outcome record (state is not
 * terminal while it runs). Loop thread. */
const struct drv_tg_outcome *drv_tg_task_outcome(const struct drv_tg_task *t);

/* drv_tg_task_group -- the group the task belongs to. */
struct drv_tg *drv_tg_task_group(const struct drv_tg_task *t);

/* Names for logs: "ok", "failed", ..., "sibling_failed", ... */
const char *drv_tg_state_name(enum drv_tg_state s);
const char *drv_tg_cause_name(enum drv_tg_cause c);

#endif
