/*
 * graph_int.h -- the worker's graph state, shared by graph.c (settles)
 * and graph_xslot.c (hand-offs between slots on Redis Cluster).
 */
#ifndef DROVER_WORKER_GRAPH_INT_H
#define DROVER_WORKER_GRAPH_INT_H

#include <stdint.h>

#include <event2/event.h>

#include "drover/queue_graph.h"
#include "drover/redis.h"
#include "worker_int.h"

struct gstep;
struct gconn;

/* The worker's graph state (w->graph). */
struct wgraph {
    unsigned magic;
#define WGRAPH_MAGIC 0x9a4f9a4fU
    struct drv_worker *w;           /* borrowed: owner */
    struct drv_redis_script *script; /* owned: the graph script */
    char **specs;                   /* owned: spec JSON per pipeline of
                                       the config (NULL for steps) */
    struct wjob **retry;            /* owned array of borrowed jobs whose
                                       call failed: sent again */
    int nretry, capretry;
    struct event *retry_ev;         /* owned: RETRY_MS timer */
    int64_t logged_ns;              /* last log of a failed call (at most
                                       every BAD_LOG_NS) */
    /* Redis Cluster only (graph_xslot.c) */
    struct drv_redis_script *handoff; /* owned: the hand-off script */
    struct drv_redis_script *scan;  /* owned: the box scan script */
    struct gconn *conns;            /* owned: connections to the slots of
                                       queues this worker does not serve */
    struct gstep *later;            /* owned: steps sent again after
                                       STEP_RETRY_MS (a connection down,
                                       a redirection) */
    struct event *later_ev;         /* owned: their timer */
    int *scan_inflight;             /* owned: per queue, a scan is out */
    int64_t next_scan_ns;           /* next scan of the boxes */
    int64_t xlogged_ns;             /* last log of a refused step */
};

/* graph_xslot.c: _init/_fini with the graph state; _deliver takes the
 * steps of each box of b (copied), whose records sit in the slot of queue
 * src; _upkeep scans the boxes of the worker's queues now and then. On
 * one Redis (no cluster) they do nothing. */
void drv__graph_xslot_init(struct wgraph *g);
void drv__graph_xslot_fini(struct wgraph *g);
void drv__graph_deliver(struct wgraph *g, const char *src,
                        const struct drv_queue_graph_boxes *b);

#endif
