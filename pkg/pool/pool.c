/*
 * pool.c -- fixed thread pool with a done-list and one wakeup per batch.
 *
 * DESIGN
 * N threads share one mutex (mu), one condvar (cond) and a FIFO work
 * queue (doubly linked so a queued job can be unlinked in O(1) by
 * drv_pool_cancel). A thread pops the head, marks it RUNNING, drops the
 * lock and calls work(w). When work returns it retakes the lock and
 * appends w to the done-list; only when the done-list goes from empty to
 * non-empty does it write the eventfd, so a burst of completions costs
 * one loop wakeup (libuv's uv__work_done shape). The loop callback reads
 * the eventfd, detaches the whole done-list under the lock, and calls
 * every done(w, status) with the lock released.
 *
 * A job's _state moves IDLE -> QUEUED -> RUNNING -> DONE -> IDLE and is
 * only read or written under mu, except the final DONE -> IDLE that the
 * loop does after detaching (no thread can reach a detached job).
 * Cancelled queued jobs go QUEUED -> DONE with status -ECANCELED through
 * the same done-list, so their done also runs on a later loop turn.
 *
 * Loop-side bookkeeping (outstanding, ev_added, in_callback, freeing) is
 * touched by the loop thread only. The eventfd event is added while any
 * job is outstanding, which keeps event_base_loop from returning early,
 * and deleted when the last done has run.
 *
 * Invariants: queued == length(queue); every submitted job is delivered
 * exactly once; no thread touches a job after pushing it to the done-list.
 *
 * Lock order: mu only. The eventfd write happens under mu (a syscall on
 * a non-blocking fd, no other lock). No libevent call is made by a pool
 * thread. done() callbacks run with mu released.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/event.h>

#include "drover/common.h"
#include "drover/log.h"
#include "drover/loop.h"
#include "drover/pool.h"

#define DRV_POOL_MAGIC 0x9001c0deU
#define DRV_POOL_WORK_MAGIC 0x9001f00dU

enum work_state {
    WORK_IDLE = 0,    /* not submitted (or done delivered) */
    WORK_QUEUED,      /* on the queue */
    WORK_RUNNING,     /* a thread runs work(w) */
    WORK_DONE         /* on the done-list, or detached and being delivered */
};

TAILQ_HEAD(work_list, drv_pool_work);

struct drv_pool {
    unsigned magic;
    struct drv_loop *loop;          /* borrowed: must outlive the pool */
    pthread_mutex_t mu;             /* guards everything down to wakeups */
    pthread_cond_t cond;            /* signalled on new work and stop */
    pthread_t *threads;             /* owned: nstarted joinable threads */
    int nthreads;                   /* requested */
    int nstarted;                   /* actually started */
    int stopping;                   /* set by drv_pool_free (mu) */
    struct work_list queue;         /* borrowed: work to run (mu) */
    struct work_list done;          /* borrowed: done-list (mu) */
    struct drv_pool_stats st;       /* lengths of queue (queued) and done
                                       (done_pending), busy threads and
                                       the counters (mu); nthreads and
                                       stopping are the fields above */
    int efd;                        /* owned: eventfd, -1 when none */
    struct event *ev;               /* owned: EV_READ|EV_PERSIST on efd */
    size_t outstanding;             /* loop: submitted, done not yet run */
    int ev_added;                   /* loop: ev is added */
    int in_callback;                /* loop: inside the drain */
    int freeing;                    /* loop: drv_pool_free called */
    char name[16];                  /* thread name prefix */
};

/* ---------------------------------------------------------------- lists */

/* Append w to the done-list (mu held); wake the loop on empty->non-empty. */
static void
push_done(struct drv_pool *p, struct drv_pool_work *w, int status)
{
    uint64_t one = 1;
    ssize_t n;

    w->_state = WORK_DONE;
    w->_status = status;
    if (TAILQ_EMPTY(&p->done)) {
        /* the only wakeup: the loop drains everything pushed until it
         * detaches, and anything pushed after finds the list empty */
        n = write(p->efd, &one, sizeof one);
        DRV_ASSERT(n == (ssize_t)sizeof one || errno == EAGAIN);
        p->st.wakeups++;
    }
    TAILQ_INSERT_TAIL(&p->done, w, _link);
    p->st.done_pending++;
}

/* Unlink w from the queue (mu held). */
static void
queue_unlink(struct drv_pool *p, struct drv_pool_work *w)
{
    TAILQ_REMOVE(&p->queue, w, _link);
    p->st.queued--;
}

/* ---------------------------------------------------------------- thread */

static void *
worker(void *arg)
{
    struct drv_pool *p;
    struct drv_pool_work *w;

    DRV_CAST(p, arg, DRV_POOL_MAGIC);
    DRV_AZ(pthread_mutex_lock(&p->mu));
    for (;;) {
        while (TAILQ_EMPTY(&p->queue) && !p->stopping)
            DRV_AZ(pthread_cond_wait(&p->cond, &p->mu));
        /* drv_pool_free moved the queue to the done-list before setting
         * stopping, so there is nothing left to run */
        if (p->stopping)
            break;
        w = TAILQ_FIRST(&p->queue);
        queue_unlink(p, w);
        w->_state = WORK_RUNNING;
        p->st.busy++;
        DRV_AZ(pthread_mutex_unlock(&p->mu));

        w->_work(w);

        DRV_AZ(pthread_mutex_lock(&p->mu));
        p->st.busy--;
        p->st.completed++;
        push_done(p, w, 0);
    }
    DRV_AZ(pthread_mutex_unlock(&p->mu));
    return NULL;
}

/* ---------------------------------------------------------------- loop */

static void
ev_update(struct drv_pool *p)
{
    if (p->outstanding > 0 && !p->ev_added) {
        DRV_AZ(event_add(p->ev, NULL));
        p->ev_added = 1;
    } else if (p->outstanding == 0 && p->ev_added) {
        DRV_AZ(event_del(p->ev));
        p->ev_added = 0;
    }
}

/* Detach the done-list and call every done(); returns how many ran. */
static size_t
drain_once(struct drv_pool *p)
{
    struct work_list batch;
    struct drv_pool_work *w;
    size_t n = 0;

    TAILQ_INIT(&batch);
    DRV_AZ(pthread_mutex_lock(&p->mu));
    TAILQ_CONCAT(&batch, &p->done, _link);
    p->st.done_pending = 0;
    if (!TAILQ_EMPTY(&batch))
        p->st.drains++;
    DRV_AZ(pthread_mutex_unlock(&p->mu));

    while ((w = TAILQ_FIRST(&batch)) != NULL) {
        TAILQ_REMOVE(&batch, w, _link);
        DRV_ASSERT(w->_state == WORK_DONE);
        w->_state = WORK_IDLE;
        DRV_ASSERT(p->outstanding > 0);
        p->outstanding--;
        n++;
        /* w may be resubmitted or freed by its owner from here on */
        w->_done(w, w->_status);
    }
    return n;
}

static void finish_free(struct drv_pool *p);

static void
on_wakeup(evutil_socket_t fd, short what DRV_UNUSED, void *arg)
{
    struct drv_pool *p;
    uint64_t v;
    ssize_t n;

    DRV_CAST(p, arg, DRV_POOL_MAGIC);
    /* reset the counter before detaching: a push after the detach finds
     * the list empty and writes again */
    n = read(fd, &v, sizeof v);
    DRV_ASSERT(n == (ssize_t)sizeof v || errno == EAGAIN);
    p->in_callback++;
    (void)drain_once(p);
    p->in_callback--;
    if (p->freeing && p->in_callback == 0) {
        finish_free(p);
        return;
    }
    ev_update(p);
}

/* ---------------------------------------------------------------- public */

static void
stop_threads(struct drv_pool *p)
{
    struct drv_pool_work *w;
    int i;

    DRV_AZ(pthread_mutex_lock(&p->mu));
    /* queued work never runs: complete it with -ECANCELED */
    while ((w = TAILQ_FIRST(&p->queue)) != NULL) {
        queue_unlink(p, w);
        p->st.cancelled++;
        push_done(p, w, -ECANCELED);
    }
    p->stopping = 1;
    DRV_AZ(pthread_cond_broadcast(&p->cond));
    DRV_AZ(pthread_mutex_unlock(&p->mu));
    /* blocks until running work returns */
    for (i = 0; i < p->nstarted; i++)
        DRV_AZ(pthread_join(p->threads[i], NULL));
    p->nstarted = 0;
}

static void
finish_free(struct drv_pool *p)
{
    /* teardown: deliver what is left (cancelled jobs, late completions)
     * from inside drv_pool_free: teardown drops no callback */
    p->in_callback++;
    while (drain_once(p) > 0)
        ;
    p->in_callback--;
    DRV_ASSERT(p->outstanding == 0);
    if (p->ev != NULL) {
        if (p->ev_added)
            DRV_AZ(event_del(p->ev));
        event_free(p->ev);
    }
    if (p->efd >= 0)
        close(p->efd);
    DRV_AZ(pthread_cond_destroy(&p->cond));
    DRV_AZ(pthread_mutex_destroy(&p->mu));
    free(p->threads);
    DRV_FREE_OBJ(p);
}

int
drv_pool_create(struct drv_loop *loop, const struct drv_pool_opts *opts,
                struct drv_pool **out)
{
    struct drv_pool *p = NULL;
    sigset_t block, old;
    char tname[32];
    int i, rc = 0;

    *out = NULL;
    if (opts == NULL || opts->nthreads < 1)
        return -EINVAL;
    DRV_ALLOC_OBJ(p, DRV_POOL_MAGIC);
    TAILQ_INIT(&p->queue);
    TAILQ_INIT(&p->done);
    p->loop = loop;
    p->nthreads = opts->nthreads;
    p->efd = -1;
    snprintf(p->name, sizeof p->name, "%.10s",
             opts->name != NULL ? opts->name : "drv");
    DRV_AZ(pthread_mutex_init(&p->mu, NULL));
    DRV_AZ(pthread_cond_init(&p->cond, NULL));
    p->threads = drv_xcalloc((size_t)p->nthreads, sizeof *p->threads);
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd < 0) {
        rc = -errno;
        goto fail;
    }
    p->ev = event_new(drv_loop_base(loop), p->efd, EV_READ | EV_PERSIST,
                      on_wakeup, p);
    if (p->ev == NULL) {
        rc = -ENOMEM;
        goto fail;
    }

    /* threads inherit the mask: block process signals before creating
     * them so they are handled on the loop thread */
    DRV_AZ(sigemptyset(&block));
    DRV_AZ(sigaddset(&block, SIGTERM));
    DRV_AZ(sigaddset(&block, SIGINT));
    DRV_AZ(sigaddset(&block, SIGHUP));
    DRV_AZ(sigaddset(&block, SIGCHLD));
    DRV_AZ(sigaddset(&block, SIGPIPE));
    DRV_AZ(pthread_sigmask(SIG_BLOCK, &block, &old));
    for (i = 0; i < p->nthreads; i++) {
        rc = -pthread_create(&p->threads[i], NULL, worker, p);
        if (rc != 0)
            break;
        p->nstarted++;
        snprintf(tname, sizeof tname, "%s-%d", p->name, i);
        tname[15] = '\0'; /* the kernel's limit for a thread name */
        (void)pthread_setname_np(p->threads[i], tname);
    }
    DRV_AZ(pthread_sigmask(SIG_SETMASK, &old, NULL));
    if (rc != 0)
        goto fail;
    *out = p;
    return 0;
fail:
    stop_threads(p);
    finish_free(p);
    return rc;
}

void
drv_pool_free(struct drv_pool *p)
{
    if (!DRV_FREE_ONCE(p, DRV_POOL_MAGIC))
        return;
    stop_threads(p);
    /* else called from a done(): the drain on the stack finishes it */
    if (p->in_callback == 0)
        finish_free(p);
}

int
drv_pool_submit(struct drv_pool *p, struct drv_pool_work *w,
                drv_pool_work_fn *work, drv_pool_done_fn *done)
{
    DRV_CHECK_OBJ(p, DRV_POOL_MAGIC);
    DRV_AN(w != NULL && work != NULL && done != NULL);
    if (p->freeing || p->stopping)
        return -ESHUTDOWN;
    DRV_AZ(pthread_mutex_lock(&p->mu));
    DRV_ASSERT(w->_state == WORK_IDLE);
    w->_magic = DRV_POOL_WORK_MAGIC;
    w->_work = work;
    w->_done = done;
    w->_pool = p;
    w->_status = 0;
    TAILQ_INSERT_TAIL(&p->queue, w, _link);
    w->_state = WORK_QUEUED;
    p->st.queued++;
    p->st.submitted++;
    DRV_AZ(pthread_cond_signal(&p->cond));
    DRV_AZ(pthread_mutex_unlock(&p->mu));
    p->outstanding++;
    ev_update(p);
    return 0;
}

int
drv_pool_cancel(struct drv_pool_work *w)
{
    struct drv_pool *p;
    int rc;

    DRV_AN(w != NULL);
    if (w->_magic != DRV_POOL_WORK_MAGIC || w->_pool == NULL)
        return -ENOENT;
    DRV_CAST(p, w->_pool, DRV_POOL_MAGIC);
    DRV_AZ(pthread_mutex_lock(&p->mu));
    switch (w->_state) {
    case WORK_QUEUED:
        queue_unlink(p, w);
        p->st.cancelled++;
        /* done runs from the loop callback, never from here */
        push_done(p, w, -ECANCELED);
        rc = 0;
        break;
    case WORK_RUNNING:
        rc = -EBUSY;
        break;
    case WORK_DONE:
        rc = -EALREADY;
        break;
    default:
        rc = -ENOENT;
        break;
    }
    DRV_AZ(pthread_mutex_unlock(&p->mu));
    return rc;
}

void
drv_pool_get_stats(struct drv_pool *p, struct drv_pool_stats *out)
{
    DRV_CHECK_OBJ(p, DRV_POOL_MAGIC);
    DRV_AZ(pthread_mutex_lock(&p->mu));
    *out = p->st;
    out->nthreads = p->nstarted;
    out->stopping = p->stopping;
    DRV_AZ(pthread_mutex_unlock(&p->mu));
}
