/*
 * loop.c -- the libevent base, deferred calls, signals and the lag meter.
 *
 * DESIGN
 * One event_base per process, created after evthread_use_pthreads() so
 * that drv_loop_defer() may be called from pool threads: it pushes onto a
 * mutex-protected list and activates one user event; event_active
 * coalesces, so many defers cost one wakeup, and the callback drains the
 * whole list (the same done-list shape as libuv's threadpool).
 *
 * The lag meter is a persistent timer. Each tick compares the monotonic
 * time with the time the tick was due; the difference is how long the loop
 * was kept from running timers. It is a "weak" event: the loop must not
 * stay alive for it alone. libevent has no weak events, so a tick that
 * finds nothing else added (signal events aside) and nothing active does
 * not re-arm, and event_base_loop returns as for an empty loop.
 *
 * Lock order: defer_mu only (leaf).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/log.h"
#include "drover/loop.h"

struct deferred {
    drv_loop_fn *fn;        /* callback */
    void *ctx;              /* borrowed: the caller's */
    STAILQ_ENTRY(deferred) link; /* on loop->defers */
};

STAILQ_HEAD(deferred_list, deferred);

struct sig {
    unsigned magic;
#define SIG_MAGIC 0x51a7c0deU
    struct drv_loop *loop;  /* borrowed: owner */
    struct event *ev;       /* owned */
    drv_loop_signal_fn *fn; /* callback */
    void *ctx;              /* borrowed */
    SLIST_ENTRY(sig) link;  /* on loop->sigs */
};

struct drv_loop {
    unsigned magic;
#define DRV_LOOP_MAGIC 0x100b100bU
    struct event_base *base;   /* owned */
    struct event *defer_ev;    /* owned: user event drained on the loop */
    pthread_mutex_t defer_mu;  /* guards defers */
    struct deferred_list defers; /* owned: FIFO of pending defers */
    struct event *lag_ev;      /* owned: meter tick, NULL when off */
    int64_t lag_interval_ns;   /* meter period now */
    int64_t lag_base_ns;       /* the period given at create */
    int64_t lag_warn_ns;       /* warning threshold */
    int64_t lag_due_ns;        /* when the next tick is due */
    struct drv_loop_stats stats; /* lag numbers */
    drv_loop_lag_fn *on_lag;   /* lag observer, or NULL */
    void *on_lag_ctx;          /* borrowed: for on_lag */
    SLIST_HEAD(, sig) sigs;    /* owned: registered signal events */
};

static pthread_once_t evthread_once = PTHREAD_ONCE_INIT;

static void
use_pthreads(void)
{
    DRV_AZ(evthread_use_pthreads());
}

/* ---------------------------------------------------------------- defer */

static void
on_defer(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv_loop *loop;
    struct deferred_list batch = STAILQ_HEAD_INITIALIZER(batch);
    struct deferred *d;

    DRV_CAST(loop, arg, DRV_LOOP_MAGIC);
    DRV_AZ(pthread_mutex_lock(&loop->defer_mu));
    STAILQ_CONCAT(&batch, &loop->defers); /* takes all, empties defers */
    DRV_AZ(pthread_mutex_unlock(&loop->defer_mu));
    while ((d = STAILQ_FIRST(&batch)) != NULL) {
        STAILQ_REMOVE_HEAD(&batch, link);
        d->fn(d->ctx);
        free(d);
    }
}

int
drv_loop_defer(struct drv_loop *loop, drv_loop_fn *fn, void *ctx)
{
    struct deferred *d;
    int was_empty;

    DRV_CHECK_OBJ(loop, DRV_LOOP_MAGIC);
    d = malloc(sizeof *d);
    if (d == NULL)
        return -ENOMEM;
    d->fn = fn;
    d->ctx = ctx;
    DRV_AZ(pthread_mutex_lock(&loop->defer_mu));
    was_empty = STAILQ_EMPTY(&loop->defers);
    STAILQ_INSERT_TAIL(&loop->defers, d, link);
    /* Activate under the lock so a concurrent drain cannot miss it. Only
     * the empty->non-empty transition needs a wakeup. */
    if (was_empty)
        event_active(loop->defer_ev, EV_READ, 0);
    DRV_AZ(pthread_mutex_unlock(&loop->defer_mu));
    return 0;
}

/* ------------------------------------------------------------ lag meter */

static int
signal_events(const struct drv_loop *loop)
{
    int n = 0;
    const struct sig *s;

    SLIST_FOREACH(s, &loop->sigs, link)
        n++;
    return n;
}

static void
on_lag_tick(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv_loop *loop;
    struct timeval tv;
    int64_t now, lag;

    DRV_CAST(loop, arg, DRV_LOOP_MAGIC);
    now = drv_clock_mono_ns();
    lag = now - loop->lag_due_ns;
    if (lag < 0)
        lag = 0;
    loop->stats.lag_last_ns = lag;
    if (lag > loop->stats.lag_max_ns)
        loop->stats.lag_max_ns = lag;
    if (lag > loop->lag_warn_ns) {
        loop->stats.lag_warnings++;
        DRV_LOG_WARN("event loop blocked", "lag_ms=%lld threshold_ms=%lld",
                     (long long)(lag / DRV_NS_PER_MS),
                     (long long)(loop->lag_warn_ns / DRV_NS_PER_MS));
    }
    if (loop->on_lag != NULL)
        loop->on_lag(lag, loop->on_lag_ctx);
    /* The meter alone must not keep the loop alive. */
    if (event_base_get_num_events(loop->base, EVENT_BASE_COUNT_ADDED) <=
            signal_events(loop) &&
        event_base_get_num_events(loop->base, EVENT_BASE_COUNT_ACTIVE) == 0)
        return;
    tv = drv_loop_grid_delay(now, loop->lag_interval_ns, &loop->lag_due_ns);
    DRV_AZ(event_add(loop->lag_ev, &tv));
}

static void
lag_arm(struct drv_loop *loop)
{
    struct timeval tv;

    if (loop->lag_ev == NULL)
        return;
    tv = drv_loop_grid_delay(drv_clock_mono_ns(), loop->lag_interval_ns,
                             &loop->lag_due_ns);
    DRV_AZ(event_add(loop->lag_ev, &tv));
}

struct timeval
drv_loop_grid_delay(int64_t now_ns, int64_t interval_ns, int64_t *due_ns)
{
    int64_t due = (now_ns / interval_ns + 1) * interval_ns;

    if (due_ns != NULL)
        *due_ns = due;
    return drv_clock_tv_from_ns(due - now_ns);
}

/* ---------------------------------------------------------------- public */

struct drv_loop *
drv_loop_create(const struct drv_loop_opts *opts)
{
    struct drv_loop *loop = NULL;
    struct event_config *cfg = NULL;
    int64_t interval_ms = 100, warn_ms = 50;

    DRV_AZ(pthread_once(&evthread_once, use_pthreads));
    if (opts != NULL && opts->lag_interval_ms != 0)
        interval_ms = opts->lag_interval_ms;
    if (opts != NULL && opts->lag_warn_ms > 0)
        warn_ms = opts->lag_warn_ms;
    DRV_ALLOC_OBJ(loop, DRV_LOOP_MAGIC);
    SLIST_INIT(&loop->sigs);
    STAILQ_INIT(&loop->defers);
    DRV_AZ(pthread_mutex_init(&loop->defer_mu, NULL));
    cfg = event_config_new();
    if (cfg == NULL)
        goto fail;
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    loop->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (loop->base == NULL)
        goto fail;
    loop->defer_ev = event_new(loop->base, -1, 0, on_defer, loop);
    if (loop->defer_ev == NULL)
        goto fail;
    if (interval_ms > 0) {
        loop->lag_interval_ns = interval_ms * DRV_NS_PER_MS;
        loop->lag_base_ns = loop->lag_interval_ns;
        loop->lag_warn_ns = warn_ms * DRV_NS_PER_MS;
        loop->lag_ev = evtimer_new(loop->base, on_lag_tick, loop);
        if (loop->lag_ev == NULL)
            goto fail;
    }
    return loop;
fail:
    drv_loop_free(loop);
    return NULL;
}

void
drv_loop_signals_clear(struct drv_loop *loop)
{
    struct sig *s;

    DRV_CHECK_OBJ(loop, DRV_LOOP_MAGIC);
    while ((s = SLIST_FIRST(&loop->sigs)) != NULL) {
        SLIST_REMOVE_HEAD(&loop->sigs, link);
        event_free(s->ev);
        DRV_FREE_OBJ(s);
    }
}

void
drv_loop_free(struct drv_loop *loop)
{
    struct deferred *d;

    if (DRV_NO_OBJ(loop, DRV_LOOP_MAGIC))
        return;
    drv_loop_signals_clear(loop);
    while ((d = STAILQ_FIRST(&loop->defers)) != NULL) {
        STAILQ_REMOVE_HEAD(&loop->defers, link);
        free(d);
    }
    drv_loop_event_free(loop->lag_ev);
    drv_loop_event_free(loop->defer_ev);
    if (loop->base != NULL)
        event_base_free(loop->base);
    DRV_AZ(pthread_mutex_destroy(&loop->defer_mu));
    DRV_FREE_OBJ(loop);
}

struct event_base *
drv_loop_base(struct drv_loop *loop)
{
    DRV_CHECK_OBJ(loop, DRV_LOOP_MAGIC);
    return loop->base;
}

void
drv_loop_event_free(struct event *ev)
{
    if (ev != NULL)
        event_free(ev);
}

int
drv_loop_run(struct drv_loop *loop)
{
    int rc;

    DRV_CHECK_OBJ(loop, DRV_LOOP_MAGIC);
    lag_arm(loop);
    rc = event_base_loop(loop->base, 0);
    if (loop->lag_ev != NULL)
        event_del(loop->lag_ev);
    return rc < 0 ? -EIO : 0;
}

void
drv_loop_stop(struct drv_loop *loop)
{
    DRV_CHECK_OBJ(loop, DRV_LOOP_MAGIC);
    DRV_AZ(event_base_loopbreak(loop->base));
}

static void
on_signal(evutil_socket_t fd, short what DRV_UNUSED, void *arg)
{
    struct sig *s;

    DRV_CAST(s, arg, SIG_MAGIC);
    s->fn(s->loop, (int)fd, s->ctx);
}

int
drv_loop_on_signal(struct drv_loop *loop, int signo, drv_loop_signal_fn *fn,
                   void *ctx)
{
    struct sig *s = NULL;

    DRV_CHECK_OBJ(loop, DRV_LOOP_MAGIC);
    DRV_ALLOC_OBJ(s, SIG_MAGIC);
    s->loop = loop;
    s->fn = fn;
    s->ctx = ctx;
    s->ev = evsignal_new(loop->base, signo, on_signal, s);
    if (s->ev == NULL || event_add(s->ev, NULL) != 0) {
        drv_loop_event_free(s->ev);
        DRV_FREE_OBJ(s);
        return -EINVAL;
    }
    SLIST_INSERT_HEAD(&loop->sigs, s, link);
    return 0;
}

void
drv_loop_get_stats(struct drv_loop *loop, struct drv_loop_stats *out)
{
    DRV_CHECK_OBJ(loop, DRV_LOOP_MAGIC);
    *out = loop->stats;
}

void
drv_loop_set_lag_interval(struct drv_loop *loop, int64_t interval_ms)
{
    int64_t ns;

    DRV_CHECK_OBJ(loop, DRV_LOOP_MAGIC);
    if (loop->lag_ev == NULL)
        return; /* the meter is off */
    ns = interval_ms > 0 ? interval_ms * DRV_NS_PER_MS : loop->lag_base_ns;
    if (ns == loop->lag_interval_ns)
        return;
    loop->lag_interval_ns = ns;
    /* a running meter moves to the new grid now */
    if (event_pending(loop->lag_ev, EV_TIMEOUT, NULL))
        lag_arm(loop);
}

int64_t
drv_loop_now_ns(struct drv_loop *loop DRV_UNUSED)
{
    return drv_clock_mono_ns();
}

void
drv_loop_on_lag(struct drv_loop *loop, drv_loop_lag_fn *fn, void *ctx)
{
    DRV_CHECK_OBJ(loop, DRV_LOOP_MAGIC);
    loop->on_lag = fn;
    loop->on_lag_ctx = ctx;
}
