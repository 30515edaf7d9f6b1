/*
 * drover/loop.h -- the event loop: one libevent base per process.
 *
 * The base is created after evthread_use_pthreads() (so other threads may
 * call event_active / drv_loop_defer) with EVENT_BASE_FLAG_PRECISE_TIMER
 * (CLOCK_MONOTONIC, timerfd: sub-millisecond timers).
 *
 * Modules attach their own events to drv_loop_base(); every event add/del
 * happens on the loop thread. Other threads may only call drv_loop_defer()
 * (and event_active on events they were given).
 *
 * Lag meter: a periodic timer every lag_interval_ms measures how late it
 * fires; when the loop was blocked longer than lag_warn_ms it logs
 *   level=warn msg="event loop blocked" lag_ms=... threshold_ms=...
 * (the C form of asyncio's slow-callback warning) and keeps max/last lag.
 */
#ifndef DROVER_LOOP_H
#define DROVER_LOOP_H

#include <stdint.h>
#include <sys/time.h>

struct event;
struct event_base;
struct drv_loop;

typedef void drv_loop_fn(void *ctx);
typedef void drv_loop_signal_fn(struct drv_loop *loop, int signo, void *ctx);

struct drv_loop_opts {
    int64_t lag_interval_ms; /* lag meter period; 0 = default 100 ms,
                                <0 = lag meter off */
    int64_t lag_warn_ms;     /* warn above this lag; 0 = default 50 ms */
};

struct drv_loop_stats {
    int64_t lag_last_ns;  /* lag of the last meter tick */
    int64_t lag_max_ns;   /* worst lag seen since start */
    uint64_t lag_warnings; /* times a lag above the threshold was logged */
};

/*
 * drv_loop_create -- make the loop (opts may be NULL for defaults).
 * Returns NULL only when out of memory or libevent fails. Loop thread:
 * the thread that calls drv_loop_run.
 */
struct drv_loop *drv_loop_create(const struct drv_loop_opts *opts);

/* drv_loop_free -- free the loop; NULL does nothing. Callbacks still
 * deferred are dropped (their ctx is the caller's). Loop thread only,
 * outside drv_loop_run. */
void drv_loop_free(struct drv_loop *loop);

/* drv_loop_base -- the libevent base, borrowed for the loop's lifetime. */
struct event_base *drv_loop_base(struct drv_loop *loop);

/* drv_loop_event_free -- event_free(ev), and NULL does nothing (libevent's
 * own would crash), for the _free of an object whose create may have
 * failed before making all its events. Thread of ev's base. */
void drv_loop_event_free(struct event *ev);

/*
 * drv_loop_run -- dispatch until drv_loop_stop() or until no events are
 * left (the lag meter does not count as work: it stops with the loop).
 * Returns 0, or -EIO if libevent failed.
 */
int drv_loop_run(struct drv_loop *loop);

/* drv_loop_stop -- make drv_loop_run return after the current callback's
 * turn. Loop thread only. */
void drv_loop_stop(struct drv_loop *loop);

/*
 * drv_loop_defer -- run fn(ctx) once on the loop thread, on a later loop
 * turn, never from inside this call. Any thread may call it. Returns 0 or
 * -ENOMEM; on error fn never runs. fn is dropped (not run) if the loop is
 * freed first.
 */
int drv_loop_defer(struct drv_loop *loop, drv_loop_fn *fn, void *ctx);

/*
 * drv_loop_on_signal -- call fn on the loop thread each time signo arrives
 * (libevent signal event, persistent). Returns 0 or -errno. Only the loop
 * of the process should register signals.
 */
int drv_loop_on_signal(struct drv_loop *loop, int signo,
                       drv_loop_signal_fn *fn, void *ctx);

/* drv_loop_signals_clear -- remove every signal event registered with
 * drv_loop_on_signal (so the loop can run empty at teardown). */
void drv_loop_signals_clear(struct drv_loop *loop);

/*
 * drv_loop_grid_delay -- the time from now_ns (monotonic) to the next
 * multiple of interval_ns (> 0) after it, as a timeval; its monotonic
 * time into *due_ns (may be NULL). Periodic timers of the same interval
 * armed this way fire at the same instants, so the process wakes once
 * for all of them (the lag meter uses it).
 */
struct timeval drv_loop_grid_delay(int64_t now_ns, int64_t interval_ns,
                                   int64_t *due_ns);

/* drv_loop_stats -- lag meter numbers; loop thread. */
void drv_loop_get_stats(struct drv_loop *loop, struct drv_loop_stats *out);

/*
 * drv_loop_on_lag -- call fn(lag_ns, ctx) on the loop thread after every
 * lag meter tick (for a histogram); fn NULL removes it. One observer.
 */
typedef void drv_loop_lag_fn(int64_t lag_ns, void *ctx);
void drv_loop_on_lag(struct drv_loop *loop, drv_loop_lag_fn *fn, void *ctx);

/*
 * drv_loop_set_lag_interval -- the lag meter's period from now on:
 * interval_ms > 0, or 0 for the one given at create (an owner with
 * nothing to do stretches it so an idle process wakes less; a meter
 * that is off stays off). A running meter moves to the new grid at once.
 * Loop thread.
 */
void drv_loop_set_lag_interval(struct drv_loop *loop, int64_t interval_ms);

/* drv_loop_now_ns -- monotonic now (fresh read, not the cached time). */
int64_t drv_loop_now_ns(struct drv_loop *loop);

#endif
