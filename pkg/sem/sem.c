/*
 * sem.c -- counting semaphore with FIFO direct hand-off, loop thread only.
 *
 * DESIGN
 * Two intrusive doubly linked FIFOs: `wait` holds waiters without a
 * permit, `grant` holds waiters that were handed a permit and whose
 * callback has not run yet. pump() moves the head of `wait` to `grant`
 * while the limit allows, counting the permit in in_use at that moment:
 * the permit belongs to that waiter from then on (direct hand-off), so
 * try_acquire cannot barge in before the callback runs. A user event
 * (fd -1, activated with event_active, which coalesces) delivers the
 * callbacks of the `grant` list on a later loop turn, never on the
 * releaser's stack -- this also bounds recursion when a callback releases
 * and the next grant follows.
 *
 * Cancelling a `wait` entry unlinks it; cancelling a `grant` entry
 * unlinks it, takes its permit back and pumps, which hands the permit to
 * the next waiter. A waiter's _state says which list it is on.
 *
 * Invariants: in_use == holders + length(grant); a waiter is on at most
 * one list; `wait` is non-empty only while in_use >= limit (pump runs
 * after every change that could free room).
 *
 * Single-threaded (loop thread): no locks. Freeing from inside a delivery
 * callback is deferred to the end of that delivery (in_callback/freeing).
 */
#include <errno.h>
#include <stdlib.h>

#include <event2/event.h>

#include "drover/common.h"
#include "drover/loop.h"
#include "drover/sem.h"

#define DRV_SEM_MAGIC 0x5e3a0001U
#define DRV_SEM_WAITER_MAGIC 0x5e3a0002U

enum waiter_state {
    W_IDLE = 0,   /* not queued */
    W_WAITING,    /* on the wait list, no permit */
    W_GRANTED     /* on the grant list, holds a permit, callback pending */
};

struct wlist {
    TAILQ_HEAD(, drv_sem_waiter) q; /* borrowed: oldest first */
    int len;                        /* number of entries */
};

struct drv_sem {
    unsigned magic;
    struct event *ev;       /* owned: delivery user event */
    int limit;              /* -1 unlimited */
    int in_use;             /* permits out (holders + granted) */
    int hwm;                /* highest in_use */
    uint64_t acquired;      /* permits granted in total */
    struct wlist wait;      /* waiters without a permit */
    struct wlist grant;     /* handed a permit, callback pending */
    int in_callback;        /* inside on_deliver */
    int freeing;            /* drv_sem_free called */
};

/* ---------------------------------------------------------------- lists */

static void
wl_push(struct wlist *l, struct drv_sem_waiter *w)
{
    TAILQ_INSERT_TAIL(&l->q, w, _link);
    l->len++;
}

static void
wl_unlink(struct wlist *l, struct drv_sem_waiter *w)
{
    TAILQ_REMOVE(&l->q, w, _link);
    l->len--;
}

/* Unlink and return the oldest entry of l, or NULL when l is empty. */
static struct drv_sem_waiter *
wl_pop(struct wlist *l)
{
    struct drv_sem_waiter *w = TAILQ_FIRST(&l->q);

    if (w != NULL)
        wl_unlink(l, w);
    return w;
}

/* ---------------------------------------------------------------- core */

static int
has_room(const struct drv_sem *s)
{
    return s->limit < 0 || s->in_use < s->limit;
}

static void
take(struct drv_sem *s)
{
    s->in_use++;
    s->acquired++;
    if (s->in_use > s->hwm)
        s->hwm = s->in_use;
}

/* Hand free permits to the oldest waiters (direct hand-off). */
static void
pump(struct drv_sem *s)
{
    struct drv_sem_waiter *w;
    int granted = 0;

    if (s->freeing)
        return;
    while (has_room(s) && (w = wl_pop(&s->wait)) != NULL) {
        take(s);
        w->_state = W_GRANTED;
        wl_push(&s->grant, w);
        granted = 1;
    }
    if (granted)
        event_active(s->ev, EV_READ, 0);
}

static void finish_free(struct drv_sem *s);

/* Run the callbacks of the n oldest granted waiters: fewer when a callback
 * cancels one of them or frees s. */
static void
deliver(struct drv_sem *s, int n)
{
    struct drv_sem_waiter *w;

    while (n-- > 0 && !s->freeing && (w = wl_pop(&s->grant)) != NULL) {
        DRV_ASSERT(w->_magic == DRV_SEM_WAITER_MAGIC);
        w->_state = W_IDLE;
        w->_fn(w, 0, w->_ctx);
    }
}

static void
on_deliver(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv_sem *s;

    DRV_CAST(s, arg, DRV_SEM_MAGIC);
    s->in_callback++;
    /* only what was granted before this turn; grants made by the callbacks
     * wait for the next turn (fairness to other events) */
    deliver(s, s->grant.len);
    s->in_callback--;
    if (s->freeing && s->in_callback == 0) {
        finish_free(s);
        return;
    }
    if (!TAILQ_EMPTY(&s->grant.q))
        event_active(s->ev, EV_READ, 0);
}

/* Teardown: fail every pending waiter with -ECANCELED, then release. */
static void
finish_free(struct drv_sem *s)
{
    struct drv_sem_waiter *w;

    s->in_callback++;
    for (;;) {
        if ((w = wl_pop(&s->grant)) != NULL)
            s->in_use--; /* the permit was never delivered: take it back */
        else if ((w = wl_pop(&s->wait)) == NULL)
            break;
        w->_state = W_IDLE;
        w->_fn(w, -ECANCELED, w->_ctx);
    }
    s->in_callback--;
    /* a holder would release into freed memory later */
    DRV_ASSERT(s->in_use == 0);
    event_free(s->ev);
    DRV_FREE_OBJ(s);
}

/* ---------------------------------------------------------------- public */

int
drv_sem_create(struct drv_loop *loop, int limit, struct drv_sem **out)
{
    struct drv_sem *s = NULL;

    *out = NULL;
    if (limit < -1)
        return -EINVAL;
    DRV_ALLOC_OBJ(s, DRV_SEM_MAGIC);
    TAILQ_INIT(&s->wait.q);
    TAILQ_INIT(&s->grant.q);
    s->limit = limit;
    s->ev = event_new(drv_loop_base(loop), -1, 0, on_deliver, s);
    if (s->ev == NULL) {
        DRV_FREE_OBJ(s);
        return -ENOMEM;
    }
    *out = s;
    return 0;
}

void
drv_sem_free(struct drv_sem *s)
{
    if (DRV_FREE_NOW(s, DRV_SEM_MAGIC))
        finish_free(s); /* else on_deliver finishes it on its way out */
}

int
drv_sem_try_acquire(struct drv_sem *s)
{
    DRV_CHECK_OBJ(s, DRV_SEM_MAGIC);
    if (s->freeing || !TAILQ_EMPTY(&s->wait.q) || !has_room(s))
        return -EAGAIN;
    take(s);
    return 0;
}

int
drv_sem_acquire(struct drv_sem *s, struct drv_sem_waiter *w, drv_sem_fn *fn,
                void *ctx)
{
    DRV_CHECK_OBJ(s, DRV_SEM_MAGIC);
    DRV_AN(w != NULL && fn != NULL);
    if (s->freeing)
        return -ESHUTDOWN;
    DRV_ASSERT(w->_magic != DRV_SEM_WAITER_MAGIC || w->_state == W_IDLE);
    w->_magic = DRV_SEM_WAITER_MAGIC;
    w->_sem = s;
    w->_fn = fn;
    w->_ctx = ctx;
    w->_state = W_WAITING;
    wl_push(&s->wait, w);
    pump(s);
    return 0;
}

int
drv_sem_cancel(struct drv_sem_waiter *w)
{
    struct drv_sem *s;

    DRV_AN(w != NULL);
    if (w->_magic != DRV_SEM_WAITER_MAGIC || w->_state == W_IDLE)
        return -ENOENT;
    DRV_CAST(s, w->_sem, DRV_SEM_MAGIC);
    if (w->_state == W_WAITING) {
        wl_unlink(&s->wait, w);
    } else {
        DRV_ASSERT(w->_state == W_GRANTED);
        wl_unlink(&s->grant, w);
        /* it owned a permit already: pass it on */
        DRV_ASSERT(s->in_use > 0);
        s->in_use--;
    }
    w->_state = W_IDLE;
    pump(s);
    return 0;
}

void
drv_sem_release(struct drv_sem *s)
{
    DRV_CHECK_OBJ(s, DRV_SEM_MAGIC);
    DRV_ASSERT(s->in_use > s->grant.len);
    s->in_use--;
    pump(s);
}

int
drv_sem_set_limit(struct drv_sem *s, int limit)
{
    DRV_CHECK_OBJ(s, DRV_SEM_MAGIC);
    if (limit < -1)
        return -EINVAL;
    s->limit = limit;
    pump(s);
    return 0;
}

void
drv_sem_get_stats(struct drv_sem *s, struct drv_sem_stats *out)
{
    DRV_CHECK_OBJ(s, DRV_SEM_MAGIC);
    out->limit = s->limit;
    out->in_use = s->in_use;
    out->waiting = s->wait.len;
    out->hwm = s->hwm;
    out->acquired = s->acquired;
}
