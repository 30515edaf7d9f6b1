/*
 * drover/pool.h -- a fixed pool of threads for blocking work.
 *
 * Modelled on libuv's src/threadpool.c. The caller embeds a struct
 * drv_pool_work in its own object and finds the object again with
 * drv_container_of. work(w) runs on a pool thread and must not touch loop
 * objects; done(w, status) runs afterwards on the loop thread, unlocked,
 * from the pool's own event callback (never inside drv_pool_submit or
 * drv_pool_cancel). Completions are pushed onto a done-list and the loop
 * is woken once per batch: the eventfd is written only when the done-list
 * goes from empty to non-empty, and the loop drains the whole list.
 *
 * status is 0 when work(w) ran, -ECANCELED when it never ran (cancelled
 * while queued, or still queued at drv_pool_free).
 *
 * Threads: drv_pool_create, _submit, _cancel, _free run on the loop thread
 * (the thread that runs the loop). drv_pool_get_stats may be called from
 * any thread. Pool threads block SIGTERM, SIGINT, SIGHUP, SIGCHLD and
 * SIGPIPE, so those are delivered to the loop thread and a job's system
 * calls are not interrupted by them.
 *
 * While work is outstanding (submitted, done not yet called) the pool
 * keeps one event added on the loop, so drv_loop_run does not return
 * before every done has run.
 */
#ifndef DROVER_POOL_H
#define DROVER_POOL_H

#include <stdint.h>
#include <sys/queue.h>

struct drv_loop;
struct drv_pool;
struct drv_pool_work;

/* Runs on a pool thread. */
typedef void drv_pool_work_fn(struct drv_pool_work *w);
/* Runs on the loop thread; status is 0 or -ECANCELED. */
typedef void drv_pool_done_fn(struct drv_pool_work *w, int status);

/*
 * Embedded in the caller's struct (no allocation per job). Zero it before the
 * first submit; members are private to the pool.
 */
struct drv_pool_work {
    unsigned _magic;             /* DRV_POOL_WORK_MAGIC while submitted */
    int _state;                  /* idle/queued/running/done (pool lock) */
    int _status;                 /* 0 or -ECANCELED, set with _state */
    drv_pool_work_fn *_work;     /* runs on a pool thread */
    drv_pool_done_fn *_done;     /* runs on the loop thread */
    struct drv_pool *_pool;      /* borrowed: the pool it was submitted to */
    TAILQ_ENTRY(drv_pool_work) _link; /* on the pool's queue or done-list */
};

struct drv_pool_opts {
    int nthreads;     /* number of threads, >= 1 */
    const char *name; /* thread name prefix (<= 10 chars used); NULL = "drv" */
};

struct drv_pool_stats {
    int nthreads;           /* threads started */
    int queued;             /* submitted, waiting for a thread */
    int busy;               /* threads running work(w) now */
    int done_pending;       /* finished, done() not yet called */
    int stopping;           /* drv_pool_free has begun: queued work will
                             * not start (observable from any thread) */
    uint64_t submitted;     /* drv_pool_submit calls accepted */
    uint64_t completed;     /* work(w) calls that returned */
    uint64_t cancelled;     /* jobs completed with -ECANCELED */
    uint64_t wakeups;       /* eventfd writes (empty->non-empty) */
    uint64_t drains;        /* loop callbacks that detached the list */
};

/*
 * drv_pool_create -- start a pool of opts->nthreads threads whose
 * completions are delivered on loop. On success *out is an owned pool
 * (free with drv_pool_free). Returns 0, -EINVAL (nthreads < 1), -ENOMEM,
 * or -errno from eventfd/pthread_create (then no thread is left running).
 * Loop thread.
 */
int drv_pool_create(struct drv_loop *loop, const struct drv_pool_opts *opts,
                    struct drv_pool **out);

/*
 * drv_pool_free -- stop the pool; NULL does nothing. Loop thread only.
 * Work still queued never runs: it is completed with -ECANCELED. Work
 * that is running cannot be interrupted: this call blocks until it
 * returns, then joins every thread. Every done() not yet delivered is
 * then called from inside this call (teardown: no callback is
 * dropped). Safe from inside a done() callback: the pool is
 * then released when that drain returns. Submits made from those done()
 * callbacks fail with -ESHUTDOWN.
 */
void drv_pool_free(struct drv_pool *p);

/*
 * drv_pool_submit -- queue w: work(w) runs on a pool thread, then done(w,
 * status) on the loop thread. w is borrowed until done() has been called
 * and must not be submitted again before that. Loop thread only.
 * Contracts: (a) on error done never runs; (b) otherwise done runs exactly
 * once, on the loop thread, never from inside this call or drv_pool_cancel;
 * (c) drv_pool_free completes it with -ECANCELED if it never ran.
 * Returns 0 or -ESHUTDOWN (the pool is being freed).
 */
int drv_pool_submit(struct drv_pool *p, struct drv_pool_work *w,
                    drv_pool_work_fn *work, drv_pool_done_fn *done);

/*
 * drv_pool_cancel -- withdraw w if it is still queued. Loop thread only.
 * Returns 0 when w was queued: it is unlinked, work never runs, and
 * done(w, -ECANCELED) runs on a later loop turn (never inside this call).
 * Returns -EBUSY when work(w) is running (it cannot be interrupted),
 * -EALREADY when work(w) has returned or w was already cancelled but done
 * has not run yet, -ENOENT when w is not submitted. In the non-zero cases
 * nothing changes: done still runs exactly once with its own status.
 */
int drv_pool_cancel(struct drv_pool_work *w);

/* drv_pool_get_stats -- a consistent snapshot (taken under the lock).
 * Any thread. */
void drv_pool_get_stats(struct drv_pool *p, struct drv_pool_stats *out);

#endif
