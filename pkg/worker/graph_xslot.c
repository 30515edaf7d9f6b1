/*
 * graph_xslot.c -- graph hand-offs between hash slots on Redis Cluster
 * (doc/pipeline-graphs.md, "A node on another queue, and Redis Cluster";
 * the scripts are in pkg/queue/queue_graph_xslot.c).
 *
 * DESIGN. A graph settle (or apply) that hands off to another slot
 * answers with box records; each becomes a step chain here:
 *   out (an entry for queue T, in the outbox of src):
 *       HANDOFF on T's slot (XADD unless the marker is there), then
 *       UNBOX on src's slot (ZREM from the outbox);
 *   in  (an outcome for the run on queue H, in the inbox of src):
 *       APPLY on H's slot (the graph script, guarded by the node's
 *       state; its reply may carry new out records, of H's outbox), then
 *       UNBOX on src's slot.
 * Every step is safe to repeat, so the chain never needs to finish: a
 * step whose connection is down or redirected is sent again after
 * STEP_RETRY_MS (at most STEP_TRIES times), one Redis refuses is dropped
 * (logged), and the record waits in its box, where the scan of a worker
 * serving that queue finds it once it was not tried for SCAN_AGE (every
 * record is re-scored when scanned, so two workers seldom take the same
 * one). Queues this worker does not serve get a connection of their own,
 * made on first use and routed to their slot's master.
 *
 * Nothing here runs on one Redis: there, the graph script writes every
 * hand-off itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/log.h"
#include "drover/loop.h"
#include "drover/redis_cluster.h"
#include "graph_int.h"

#define STEP_RETRY_MS 200
#define STEP_TRIES 50           /* then the box scan takes over */
#define SCAN_LIMIT 100          /* records of each box per scan */
#define SCAN_MIN_MS 1000
#define SCAN_MAX_MS 10000

enum gkind { STEP_HANDOFF, STEP_APPLY, STEP_UNBOX };

/* One step of delivering a box record. */
struct gstep {
    unsigned magic;
#define GSTEP_MAGIC 0x65e9a65eU
    struct wgraph *g;               /* borrowed: NULL once the worker is
                                       being freed */
    enum gkind kind;
    char *src;                      /* owned: the queue of the record's
                                       box */
    struct drv_queue_graph_box box; /* owned strings */
    int tries;                      /* sends so far */
    struct gstep *next;             /* g->later list */
};

/* A connection to the slot of a queue this worker does not serve. */
struct gconn {
    char *queue;                    /* owned */
    struct drv_redis *r;            /* owned */
    struct drv_redis_cluster_route *route; /* borrowed: the cluster's */
    struct gconn *next;
};

static void send_step(struct gstep *s);

/* ------------------------------------------------------------ helpers */

static void
step_free(struct gstep *s)
{
    free(s->src);
    free(s->box.queue);
    free(s->box.key);
    free(s->box.rec);
    DRV_FREE_OBJ(s);
}

/* The scan period: that of reclaim, visibility_timeout / 4 in 1..10 s. */
static int64_t
scan_ms(const struct drv_worker *w)
{
    int64_t ms = w->cfg->worker.visibility_timeout_ms / 4;

    if (ms < SCAN_MIN_MS)
        ms = SCAN_MIN_MS;
    if (ms > SCAN_MAX_MS)
        ms = SCAN_MAX_MS;
    return ms;
}

/* Frees c, its connection detached from its route first (steps out on it
 * get -ECANCELED). */
static void
gconn_free(struct gconn *c)
{
    drv_redis_cluster_detach(c->route);
    drv_redis_free(c->r);
    free(c->queue);
    free(c);
}

/* The command connection for queue's slot: the queue's own when served,
 * else one made for it (NULL: it could not be made). */
static struct drv_redis *
conn_for(struct wgraph *g, const char *queue)
{
    struct drv_worker *w = g->w;
    struct drv_redis_opts ro;
    struct drv_redis_tls tls;
    struct drv_err err;
    struct gconn *c;
    char name[200];
    size_t i;
    int n = 0;
    char qe[DRV_LOG_Q_MAX];

    for (i = 0; i < w->nqueues; i++)
        if (strcmp(w->queues[i].keys.name, queue) == 0)
            return w->queues[i].cmd;
    for (c = g->conns; c != NULL; c = c->next, n++)
        if (strcmp(c->queue, queue) == 0)
            return c->r;
    c = drv_xcalloc(1, sizeof *c);
    c->queue = drv_xstrdup(queue);
    {
        struct drv_queue_keys k;

        drv_queue_keys_init(&k, w->cfg->redis.prefix, queue);
        c->route = drv_redis_cluster_route(w->cluster,
                                           drv_redis_cluster_slot(
                                               k.jobs, strlen(k.jobs)));
        drv_queue_keys_fini(&k);
    }
    memset(&ro, 0, sizeof ro);
    drv_config_redis_tls(w->cfg, &tls);
    drv_redis_cluster_route_opts(c->route, &ro);
    ro.tls = &tls;
    ro.max_string_bytes = (size_t)w->cfg->worker.max_job_bytes;
    snprintf(name, sizeof name, "drover-graph-%d-%d", (int)getpid(), n);
    ro.name = name;
    if (drv_redis_create(w->loop, &ro, &c->r, &err) < 0) {
        DRV_LOG_WARN("graph: no connection for another queue", "queue=%s "
                     "error=%s", queue, drv_log_q(qe, sizeof qe, err.msg));
        gconn_free(c);
        return NULL;
    }
    drv_redis_cluster_attach(c->route, c->r);
    c->next = g->conns;
    g->conns = c;
    return c->r;
}

static void
on_later(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *ctx)
{
    struct wgraph *g;
    struct gstep *s, *next;

    DRV_CAST(g, ctx, WGRAPH_MAGIC);
    /* the whole list at once: a step put off again starts a new one */
    s = g->later;
    g->later = NULL;
    for (; s != NULL; s = next) {
        next = s->next;
        s->next = NULL;
        send_step(s);
    }
}

/* s again after STEP_RETRY_MS, or given up to the box scan. */
static void
step_later(struct gstep *s)
{
    struct wgraph *g = s->g;
    struct timeval tv = {0, STEP_RETRY_MS * 1000};

    if (s->tries >= STEP_TRIES) {
        step_free(s);
        return;
    }
    s->next = g->later;
    g->later = s;
    if (s->next == NULL)
        DRV_AZ(event_add(g->later_ev, &tv));
}

/* ---------------------------------------------------------------- steps */

static void
on_step(struct drv_redis *r DRV_UNUSED, int status, const redisReply *reply,
        void *ctx)
{
    struct gstep *s;
    struct wgraph *g;
    struct drv_queue_graph_boxes more = {NULL, 0, 0, 0};
    struct drv_err err;
    long long code;
    int rc;
    char qe[DRV_LOG_Q_MAX];

    DRV_CAST(s, ctx, GSTEP_MAGIC);
    if (status == -ECANCELED) {
        step_free(s); /* the worker is being freed: the record waits */
        return;
    }
    g = s->g;
    rc = drv_redis_result(status, reply, &err);
    if (rc == 0 && s->kind == STEP_APPLY)
        rc = drv_queue_graph_reply(reply, &code, &more, &err);
    else if (rc == 0 && s->kind == STEP_HANDOFF &&
             reply->type != REDIS_REPLY_STRING)
        rc = drv_err_set(&err, DRV_EPROTO, "reply of unexpected shape");
    if (rc < 0) {
        int64_t now = drv_clock_mono_ns();

        drv_queue_graph_boxes_fini(&more);
        if (drv__worker_redis_error(g->w, status, reply) ||
            rc == DRV_EDOWN || rc == -ETIMEDOUT) {
            step_later(s);
            return;
        }
        if (now - g->xlogged_ns >= BAD_LOG_NS) {
            g->xlogged_ns = now;
            DRV_LOG_WARN("graph hand-off to another slot failed: its box "
                         "is tried again later", "queue=%s error=%s",
                         s->kind == STEP_UNBOX ? s->src : s->box.queue,
                         drv_log_q(qe, sizeof qe, err.msg));
        }
        step_free(s);
        return;
    }
    if (s->kind == STEP_UNBOX) {
        step_free(s);
        return;
    }
    if (s->kind == STEP_APPLY) {
        /* the outcome made hand-offs: they sit in the outbox of the run's
         * queue */
        drv__graph_deliver(g, s->box.queue, &more);
        drv_queue_graph_boxes_fini(&more);
        drv__worker_kick(g->w);
    }
    s->kind = STEP_UNBOX;
    s->tries = 0;
    send_step(s);
}

static void
send_step(struct gstep *s)
{
    struct wgraph *g = s->g;
    struct drv_worker *w = g->w;
    const char *prefix = w->cfg->redis.prefix;
    struct drv_script_call call;
    struct drv_argv a;
    struct drv_redis *r;
    int rc;

    r = conn_for(g, s->kind == STEP_UNBOX ? s->src : s->box.queue);
    if (r == NULL) {
        step_free(s);
        return;
    }
    s->tries++;
    if (s->kind == STEP_UNBOX) {
        drv_argv_init(&a);
        drv_queue_graph_unbox(&a, prefix, s->src, &s->box);
        rc = drv_redis_send(r, 0, &a, on_step, s);
        drv_argv_fini(&a);
    } else {
        if (s->kind == STEP_HANDOFF)
            drv_queue_graph_handoff(&call, prefix, &s->box);
        else
            drv_queue_graph_apply(&call, prefix, &s->box,
                                  drv_clock_unix_ms());
        rc = drv_redis_eval(r, s->kind == STEP_HANDOFF ? g->handoff
                            : g->script, 0, &call.keys, &call.args,
                            on_step, s);
        drv_script_call_fini(&call);
    }
    if (rc < 0)
        step_later(s);
}

/* ------------------------------------------------------------- public */

void
drv__graph_deliver(struct wgraph *g, const char *src,
                   const struct drv_queue_graph_boxes *b)
{
    size_t i;

    if (b->oversized > 0)
        DRV_LOG_ERROR("graph hand-off between slots larger than "
                      "worker.max_job_bytes: it stays in its box until "
                      "max_job_bytes is raised", "queue=%s n=%zu", src,
                      b->oversized);
    for (i = 0; i < b->n; i++) {
        const struct drv_queue_graph_box *x = &b->v[i];
        struct gstep *s = NULL;

        DRV_ALLOC_OBJ(s, GSTEP_MAGIC);
        s->g = g;
        s->kind = x->in ? STEP_APPLY : STEP_HANDOFF;
        s->src = drv_xstrdup(src);
        s->box.in = x->in;
        s->box.queue = drv_xstrdup(x->queue);
        s->box.key = drv_xstrdup(x->key);
        s->box.rec = drv_xmalloc(x->rec_len + 1);
        memcpy(s->box.rec, x->rec, x->rec_len);
        s->box.rec[x->rec_len] = '\0';
        s->box.rec_len = x->rec_len;
        send_step(s);
    }
}

struct gscan {
    unsigned magic;
#define GSCAN_MAGIC 0x5ca45ca4U
    struct wgraph *g;               /* borrowed */
    int qi;                         /* the queue scanned */
};

static void
on_scanned(struct drv_redis *r DRV_UNUSED, int status, const redisReply *reply,
           void *ctx)
{
    struct gscan *c;
    struct wgraph *g;
    const char *queue;
    struct drv_queue_graph_boxes b = {NULL, 0, 0, 0};
    struct drv_err err;

    DRV_CAST(c, ctx, GSCAN_MAGIC);
    g = c->g;
    if (status == -ECANCELED) {
        DRV_FREE_OBJ(c);
        return;
    }
    g->scan_inflight[c->qi] = 0;
    queue = g->w->queues[c->qi].keys.name;
    if (drv_redis_result(status, reply, &err) == 0 &&
        drv_queue_graph_scan_parse(reply, &b, &err) == 0) {
        if (b.n > 0)
            DRV_LOG_INFO("graph: hand-offs between slots left in a box, "
                         "delivered again", "queue=%s n=%zu", queue, b.n);
        drv__graph_deliver(g, queue, &b);
    } else {
        drv__worker_redis_error(g->w, status, reply);
    }
    drv_queue_graph_boxes_fini(&b);
    DRV_FREE_OBJ(c);
}

void
drv__graph_upkeep(struct drv_worker *w, int64_t now_ns)
{
    struct wgraph *g = w->graph;
    int64_t ivl, now_ms;
    size_t i;

    if (g == NULL || w->cluster == NULL || now_ns < g->next_scan_ns)
        return;
    ivl = scan_ms(w);
    g->next_scan_ns = now_ns + ivl * DRV_NS_PER_MS;
    now_ms = drv_clock_unix_ms();
    for (i = 0; i < w->nqueues; i++) {
        struct drv_script_call call;
        struct gscan *c = NULL;

        if (g->scan_inflight[i] || !w->queues[i].ready)
            continue;
        DRV_ALLOC_OBJ(c, GSCAN_MAGIC);
        c->g = g;
        c->qi = (int)i;
        drv_queue_graph_scan(&call, w->cfg->redis.prefix,
                             w->queues[i].keys.name, now_ms - ivl, now_ms,
                             SCAN_LIMIT);
        if (drv_redis_eval(w->queues[i].cmd, g->scan, 0, &call.keys,
                           &call.args, on_scanned, c) == 0) {
            g->scan_inflight[i] = 1;
        } else {
            DRV_FREE_OBJ(c);
        }
        drv_script_call_fini(&call);
    }
}

void
drv__graph_xslot_init(struct wgraph *g)
{
    struct drv_worker *w = g->w;

    if (w->cluster == NULL)
        return;
    g->handoff = drv_redis_script_create(
        drv_queue_graph_handoff_script.text,
        strlen(drv_queue_graph_handoff_script.text));
    g->scan = drv_redis_script_create(drv_queue_graph_scan_script.text,
                                      strlen(drv_queue_graph_scan_script.text));
    g->scan_inflight = drv_xcalloc(w->nqueues ? w->nqueues : 1,
                                   sizeof *g->scan_inflight);
    g->later_ev = event_new(w->base, -1, 0, on_later, g);
    DRV_AN(g->later_ev);
}

void
drv__graph_xslot_fini(struct wgraph *g)
{
    while (g->later != NULL) {
        struct gstep *s = g->later;

        g->later = s->next;
        step_free(s);
    }
    while (g->conns != NULL) {
        struct gconn *c = g->conns;

        g->conns = c->next;
        gconn_free(c);
    }
    drv_loop_event_free(g->later_ev);
    drv_redis_script_free(g->handoff);
    drv_redis_script_free(g->scan);
    free(g->scan_inflight);
}
