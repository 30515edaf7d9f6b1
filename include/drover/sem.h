/*
 * drover/sem.h -- a counting semaphore on the loop thread.
 *
 * Permits are handed out FIFO by direct hand-off: when a permit frees up
 * it is given to the oldest waiter at once (counted in in_use), and that
 * waiter's callback runs on a later loop turn. Nobody can barge in
 * between: drv_sem_try_acquire fails while anyone is waiting. A waiter
 * withdrawn with drv_sem_cancel after it was handed a permit passes the
 * permit on to the next waiter, so no permit is lost or duplicated
 * (the asyncio.Semaphore wakeup-then-cancel lesson).
 *
 * The limit may change at run time: it applies to future acquisitions
 * only (holders keep their permits even when in_use > limit). limit -1
 * means unlimited. Many task groups may draw from one semaphore.
 *
 * Every function runs on the loop thread.
 */
#ifndef DROVER_SEM_H
#define DROVER_SEM_H

#include <stdint.h>
#include <sys/queue.h>

struct drv_loop;
struct drv_sem;
struct drv_sem_waiter;

/* Runs on the loop thread: status 0 (w now holds one permit; give it back
 * with drv_sem_release) or -ECANCELED (the semaphore is being freed). */
typedef void drv_sem_fn(struct drv_sem_waiter *w, int status, void *ctx);

/*
 * Embedded in the caller's struct (find it with drv_container_of). Zero
 * it before first use; members are private to the semaphore.
 */
struct drv_sem_waiter {
    unsigned _magic;              /* DRV_SEM_WAITER_MAGIC once used */
    int _state;                   /* idle / waiting / granted */
    struct drv_sem *_sem;         /* borrowed: the semaphore waited on */
    drv_sem_fn *_fn;              /* callback */
    void *_ctx;                   /* borrowed: the caller's */
    TAILQ_ENTRY(drv_sem_waiter) _link; /* on the wait or grant list */
};

struct drv_sem_stats {
    int limit;          /* current limit, -1 unlimited */
    int in_use;         /* permits held, including handed-off ones whose
                           callback has not run yet */
    int waiting;        /* waiters without a permit */
    int hwm;            /* highest in_use seen */
    uint64_t acquired;  /* permits granted in total */
};

/*
 * drv_sem_create -- a semaphore of limit permits (-1 = unlimited; 0 =
 * nothing is granted until the limit is raised). *out is owned by the
 * caller (drv_sem_free). Returns 0, -EINVAL (limit < -1) or -ENOMEM.
 */
int drv_sem_create(struct drv_loop *loop, int limit, struct drv_sem **out);

/*
 * drv_sem_free -- free s; NULL does nothing. Every pending waiter's
 * callback runs with -ECANCELED from inside this call (teardown drops no
 * callback); a handed-off permit whose callback had not run is taken
 * back. Then no permit may be held: freeing a semaphore whose permits are
 * out is an assertion failure. Safe from inside a waiter callback.
 */
void drv_sem_free(struct drv_sem *s);

/*
 * drv_sem_try_acquire -- take a permit now: 0, or -EAGAIN when none is
 * free or someone is already waiting (no barging).
 */
int drv_sem_try_acquire(struct drv_sem *s);

/*
 * drv_sem_acquire -- wait for a permit in FIFO order. w is borrowed until
 * its callback has run or drv_sem_cancel withdrew it.
 * Contracts: (a) on error fn never runs; (b) otherwise fn runs exactly
 * once, on the loop thread, on a later loop turn (never inside this call,
 * even when a permit is free now) -- unless drv_sem_cancel withdraws w
 * first, after which fn never runs; (c) drv_sem_free runs it with
 * -ECANCELED. Returns 0, or -ESHUTDOWN while s is being freed.
 */
int drv_sem_acquire(struct drv_sem *s, struct drv_sem_waiter *w,
                    drv_sem_fn *fn, void *ctx);

/*
 * drv_sem_cancel -- withdraw w synchronously: after it returns fn never
 * runs (like event_del). Returns 0 when w was pending; if w had already
 * been handed a permit, that permit passes to the next waiter. Returns
 * -ENOENT when w is not pending (never queued, or its callback ran).
 */
int drv_sem_cancel(struct drv_sem_waiter *w);

/*
 * drv_sem_release -- give one permit back; it goes to the oldest waiter
 * if the limit allows. Releasing more than was acquired is an assertion
 * failure.
 */
void drv_sem_release(struct drv_sem *s);

/*
 * drv_sem_set_limit -- change the limit (-1 unlimited, 0 pause). Applies
 * to future acquisitions only: a lower limit revokes nothing, a higher
 * one hands permits to waiters at once. Returns 0 or -EINVAL.
 */
int drv_sem_set_limit(struct drv_sem *s, int limit);

/* drv_sem_get_stats -- current numbers. */
void drv_sem_get_stats(struct drv_sem *s, struct drv_sem_stats *out);

#endif
