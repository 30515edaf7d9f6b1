/*
 * drover/worker.h -- the worker: fetches jobs from Redis Streams, runs
 * each fetched batch in a task group, settles every outcome (ack, retry,
 * dead, requeue) in pipelined script calls, and keeps the queue healthy
 * (delayed mover, reclaim of dead workers' jobs, lease renewal, registry).
 *
 * It composes the modules below it (loop, redis, tg, sem, pool, proc,
 * queue, config) and is what droverd runs. Loop thread only.
 *
 * Life:
 *   drv_worker_create --> drv_worker_start --> RUNNING
 *      RUNNING --drv_worker_stop(0)--> DRAINING: no fetching; jobs waiting
 *              for a permit are requeued at once; running jobs get until
 *              shutdown_timeout, then are cancelled and requeued
 *      DRAINING --all settled--> STOPPED: on_stopped(w, 0)
 *      any --drv_worker_stop(1)--> STOPPED at once: on_stopped(w, 1);
 *              unfinished jobs stay pending and are reclaimed later
 */
#ifndef DROVER_WORKER_H
#define DROVER_WORKER_H

#include <stdint.h>

#include "drover/error.h"

struct drv_config;
struct drv_loop;
struct drv_worker;

/* on_stopped: the worker has stopped; hard = 1 after drv_worker_stop(1). */
typedef void drv_worker_stopped_fn(struct drv_worker *w, int hard,
                                   void *ctx);

struct drv_worker_opts {
    const struct drv_config *cfg; /* borrowed: outlives the worker */
    struct drv_loop *loop;        /* borrowed: outlives the worker */
    const char *id;               /* worker id; NULL = host:pid:random */
    drv_worker_stopped_fn *on_stopped; /* required */
    void *ctx;                    /* borrowed: for on_stopped */
};

/* Counters, for logs, metrics and tests. */
struct drv_worker_stats {
    uint64_t fetched;      /* entries delivered to this worker */
    uint64_t started;      /* handlers started */
    uint64_t ok;           /* outcomes: success */
    uint64_t retried;      /* outcomes: retry scheduled */
    uint64_t dead;         /* outcomes: dead-lettered */
    uint64_t requeued;     /* outcomes: put back at shutdown */
    uint64_t lost;         /* settle found the entry owned by another */
    uint64_t deduped;      /* duplicates acked without running
                              (unique_for) */
    uint64_t cancelled;    /* outcomes: cancelled (drover cancel) */
    int running;           /* jobs holding a process permit now */
    int live;              /* jobs fetched and not yet settled */
    int unreleased;        /* tasks not yet quiesced (abandoned pool
                              threads included) */
};

/*
 * drv_worker_create -- build the worker (Redis connections start on the
 * first loop turn after drv_worker_start). Returns 0, or a negative code
 * with err filled (bad URL, a plugin that does not load, ...).
 */
int drv_worker_create(const struct drv_worker_opts *opts,
                      struct drv_worker **out, struct drv_err *err);

/* drv_worker_start -- connect and start fetching. */
int drv_worker_start(struct drv_worker *w);

/*
 * drv_worker_stop -- graceful (hard = 0) or immediate (hard = 1) stop;
 * on_stopped runs once, on a later loop turn, never inside this call. A
 * hard stop after a graceful one cuts the drain short.
 */
void drv_worker_stop(struct drv_worker *w, int hard);

/*
 * drv_worker_free -- release everything; NULL does nothing. After
 * on_stopped (or before start). The loop must then run until it is empty
 * so the Redis connections finish closing.
 */
void drv_worker_free(struct drv_worker *w);

/* drv_worker_get_stats -- the counters. */
void drv_worker_get_stats(const struct drv_worker *w,
                          struct drv_worker_stats *out);

/* drv_worker_id -- the worker id (consumer name); borrowed. */
const char *drv_worker_id(const struct drv_worker *w);

#endif
