/*
 * redis_cluster.c -- the slot map of a Redis Cluster and the routes of the
 * data connections (drover/redis_cluster.h).
 *
 * DESIGN
 * One struct drv_redis_cluster is built on a watch (redis_watch.c) that
 * owns its "seed" drv_redis connection (its locate hook walks the
 * configured nodes: each attempt goes to the next one, so a dead seed is
 * skipped), a poll timer and a "soon" event. The seed asks CLUSTER SLOTS
 * when it becomes READY, on every poll, and soon after a data connection
 * attempt or a redirection. A reply replaces the
 * map; every route whose slot got another owner than the one its
 * connection was pointed at is reconnected (a route still waiting for a
 * first owner too). A MOVED reply updates its slot in the map at once,
 * before the next CLUSTER SLOTS confirms it.
 *
 * The data connections never carry anything of this layer: a single
 * Redis setup has no cluster object and pays nothing. Callbacks of the
 * seed carry c; they test status == -ECANCELED (c is being freed)
 * before touching it. Loop thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/log.h"
#include "drover/loop.h"
#include "drover/redis.h"
#include "drover/redis_cluster.h"
#include "redis_int.h"

#define DEFAULT_TIMEOUT_MS 2000
#define URL_MAX 1024

struct drv_redis_cluster_route {
    unsigned magic;
#define ROUTE_MAGIC 0x7a0e7a0eU
    struct drv_redis_cluster *c;        /* borrowed: the owner */
    int slot;                           /* 0..16383 */
    struct drv_redis *r;                /* borrowed: attached connection,
                                           or NULL */
    struct drv_redis_sentinel_addr at;  /* where locate pointed r last */
    int located;                        /* at is set */
    int64_t unserved_logged_ns;         /* last "served by no master" */
    struct drv_redis_cluster_route *next; /* owned: c's list */
};

struct drv_redis_cluster {
    unsigned magic;
#define DRV_REDIS_CLUSTER_MAGIC 0xc1a5c1a5U
    struct drv_redis_sentinel_addr *seeds; /* owned: the configured nodes */
    size_t nseeds;
    size_t next_seed;                   /* tried by the next attempt */
    struct drv_redis_sentinel_addr seed_at; /* where the seed points */
    struct drv__redis_watch watch;      /* owns seed, polls; name and
                                           data_url */
    struct drv_redis *seed;             /* borrowed from watch: asks
                                           CLUSTER SLOTS */
    struct drv_redis_cluster_map *map;  /* owned */
    int known;                          /* map read once */
    int asking;                         /* CLUSTER SLOTS out */
    struct drv_redis_cluster_route *routes; /* owned list */
    int64_t migrating_logged_ns;        /* last "being migrated" line */
};

#define MIGRATING_LOG_NS (10 * DRV_NS_PER_SEC)

/* Point every route whose slot has another owner than where its
 * connection went at the new one. */
static void
reroute(struct drv_redis_cluster *c)
{
    struct drv_redis_cluster_route *rt;

    for (rt = c->routes; rt != NULL; rt = rt->next) {
        const struct drv_redis_sentinel_addr *a =
            drv_redis_cluster_map_node(c->map, rt->slot);

        if (rt->r == NULL || a == NULL)
            continue;
        if (rt->located && drv__redis_addr_same(a, &rt->at))
            continue;
        if (rt->located)
            DRV_LOG_INFO("cluster slot served elsewhere: reconnecting",
                         "name=%s slot=%d node=%s:%d", c->watch.name, rt->slot,
                         a->host, a->port);
        drv_redis_reconnect(rt->r, "cluster slot moved");
    }
}

static void
on_slots(struct drv_redis *r DRV_UNUSED, int status, const redisReply *reply,
         void *ctx)
{
    struct drv_redis_cluster *c;
    struct drv_redis_cluster_map *m;
    struct drv_err err;
    char qe[DRV_LOG_Q_MAX];

    if (status == -ECANCELED)
        return;
    DRV_CAST(c, ctx, DRV_REDIS_CLUSTER_MAGIC);
    c->asking = 0;
    if (drv_redis_result(status, reply, &err) < 0) {
        if (status != DRV_EDOWN)
            DRV_LOG_WARN("CLUSTER SLOTS failed", "name=%s error=%s",
                         c->watch.name, drv_log_q(qe, sizeof qe, err.msg));
        return;
    }
    m = drv_xmalloc(sizeof *m);
    if (drv_redis_cluster_map_parse(m, reply, &c->seed_at, &err) < 0) {
        DRV_LOG_WARN("CLUSTER SLOTS unreadable", "name=%s error=%s",
                     c->watch.name, drv_log_q(qe, sizeof qe, err.msg));
        free(m);
        return;
    }
    if (!c->known)
        DRV_LOG_INFO("cluster slot map read", "name=%s masters=%d",
                     c->watch.name, m->nnodes);
    free(c->map);
    c->map = m;
    c->known = 1;
    reroute(c);
}

/* The watch's pass (a poll, a refresh soon, the seed READY). */
static void
ask_slots(void *ctx, struct drv_redis *ready DRV_UNUSED)
{
    struct drv_redis_cluster *c;
    struct drv_argv a;

    DRV_CAST(c, ctx, DRV_REDIS_CLUSTER_MAGIC);
    if (c->asking || drv_redis_state(c->seed) != DRV_REDIS_READY)
        return;
    drv_argv_init(&a);
    drv_argv_adds(&a, "CLUSTER");
    drv_argv_adds(&a, "SLOTS");
    if (drv_redis_send(c->seed, 0, &a, on_slots, c) == 0)
        c->asking = 1;
    drv_argv_fini(&a);
}

/* The seed's locate: the configured nodes in turn. */
static int
seed_locate(struct drv_redis *r DRV_UNUSED, struct drv_redis_target *target,
            void *ctx)
{
    struct drv_redis_cluster *c;

    DRV_CAST(c, ctx, DRV_REDIS_CLUSTER_MAGIC);
    c->seed_at = c->seeds[c->next_seed];
    c->next_seed = (c->next_seed + 1) % c->nseeds;
    return drv__redis_locate_at(target, &c->seed_at);
}

int
drv_redis_cluster_locate(struct drv_redis *r, struct drv_redis_target *target,
                         void *ctx)
{
    struct drv_redis_cluster_route *rt;
    const struct drv_redis_sentinel_addr *a;

    DRV_CAST(rt, ctx, ROUTE_MAGIC);
    /* every (re)connect checks the map again */
    drv__redis_watch_soon(&rt->c->watch);
    a = rt->c->known ? drv_redis_cluster_map_node(rt->c->map, rt->slot)
                     : NULL;
    if (a == NULL) {
        /* before the first map: quiet (the seed says why it has none);
         * a map without an owner for the slot is a problem to show,
         * every MIGRATING_LOG_NS */
        int64_t now = drv_clock_mono_ns();
        struct drv_redis_info ri;

        if (rt->c->known && (rt->unserved_logged_ns == 0 ||
                             now - rt->unserved_logged_ns >=
                                 MIGRATING_LOG_NS)) {
            rt->unserved_logged_ns = now;
            drv_redis_get_info(r, &ri);
            DRV_LOG_WARN("cluster slot served by no master: waiting",
                         "name=%s slot=%d conn=%s", rt->c->watch.name,
                         rt->slot, ri.name);
        }
        rt->located = 0;
    } else {
        rt->at = *a;
        rt->located = 1;
    }
    return drv__redis_locate_at(target, a);
}

int
drv_redis_cluster_create(struct drv_loop *loop,
                         const struct drv_redis_cluster_opts *o,
                         struct drv_redis_cluster **out, struct drv_err *err)
{
    struct drv_redis_cluster *c = NULL;
    struct drv_err aerr;
    char url[URL_MAX];
    size_t i;
    int rc;

    *out = NULL;
    if (o->url == NULL || drv_redis_cluster_url_check(o->url, &aerr) < 0)
        return drv_err_set(err, DRV_ECONFIG, "cluster: %s",
                           o->url == NULL ? "no url" : aerr.msg);
    if (o->nnodes == 0)
        return drv_err_set(err, DRV_ECONFIG, "cluster: at least one node "
                           "address is required");
    DRV_ALLOC_OBJ(c, DRV_REDIS_CLUSTER_MAGIC);
    c->seeds = drv_xcalloc(o->nnodes, sizeof *c->seeds);
    c->map = drv_xmalloc(sizeof *c->map);
    drv_redis_cluster_map_init(c->map);
    for (i = 0; i < o->nnodes; i++) {
        rc = drv_redis_cluster_addr_parse(o->nodes[i], &c->seeds[i], &aerr);
        if (rc < 0) {
            rc = drv_err_set(err, DRV_ECONFIG, "cluster node %zu: %s", i,
                             aerr.msg);
            goto fail;
        }
        c->nseeds++;
    }
    if (drv_redis_sentinel_url_at(o->url, &c->seeds[0], url,
                                  sizeof url) < 0) {
        rc = drv_err_set(err, DRV_ECONFIG, "cluster: url too long");
        goto fail;
    }
    drv__redis_watch_init(&c->watch, loop,
                          o->name != NULL ? o->name : "cluster", url, o->tls,
                          o->timeout_ms > 0 ? o->timeout_ms
                                            : DEFAULT_TIMEOUT_MS,
                          DRV_REDIS_CLUSTER_POLL_MS, ask_slots, c);
    rc = drv__redis_watch_conn(&c->watch, NULL, "slots", seed_locate,
                               &c->seed, err);
    if (rc < 0)
        goto fail;
    *out = c;
    return 0;
fail:
    drv_redis_cluster_free(c);
    return rc;
}

void
drv_redis_cluster_free(struct drv_redis_cluster *c)
{
    struct drv_redis_cluster_route *rt, *next;

    if (DRV_NO_OBJ(c, DRV_REDIS_CLUSTER_MAGIC))
        return;
    drv__redis_watch_fini(&c->watch);
    for (rt = c->routes; rt != NULL; rt = next) {
        DRV_ASSERT(rt->r == NULL);
        next = rt->next;
        DRV_FREE_OBJ(rt);
    }
    free(c->seeds);
    free(c->map);
    DRV_FREE_OBJ(c);
}

struct drv_redis_cluster_route *
drv_redis_cluster_route(struct drv_redis_cluster *c, int slot)
{
    struct drv_redis_cluster_route *rt;

    DRV_CHECK_OBJ(c, DRV_REDIS_CLUSTER_MAGIC);
    DRV_ASSERT(slot >= 0 && slot < DRV_REDIS_CLUSTER_SLOTS);
    DRV_ALLOC_OBJ(rt, ROUTE_MAGIC);
    rt->c = c;
    rt->slot = slot;
    rt->next = c->routes;
    c->routes = rt;
    return rt;
}

void
drv_redis_cluster_route_opts(struct drv_redis_cluster_route *route,
                             struct drv_redis_opts *o)
{
    DRV_CHECK_OBJ(route, ROUTE_MAGIC);
    o->url = route->c->watch.data_url;
    o->locate = drv_redis_cluster_locate;
    o->locate_ctx = route;
}

void
drv_redis_cluster_attach(struct drv_redis_cluster_route *route,
                         struct drv_redis *r)
{
    DRV_CHECK_OBJ(route, ROUTE_MAGIC);
    route->r = r;
    drv__redis_follow_ask(r);
}

void
drv_redis_cluster_detach(struct drv_redis_cluster_route *route)
{
    DRV_CHECK_OBJ(route, ROUTE_MAGIC);
    route->r = NULL;
}

int
drv_redis_cluster_redirected(struct drv_redis_cluster *c,
                             const redisReply *reply)
{
    struct drv_redis_cluster_redirect rd;

    DRV_CHECK_OBJ(c, DRV_REDIS_CLUSTER_MAGIC);
    if (!drv_redis_cluster_transient(reply))
        return 0;
    if (drv_redis_cluster_redirect_parse(reply, &rd) && !rd.ask) {
        DRV_LOG_INFO("MOVED: following the slot", "name=%s slot=%d "
                     "node=%s:%d", c->watch.name, rd.slot, rd.to.host,
                     rd.to.port);
        if (drv_redis_cluster_map_set(c->map, rd.slot, &rd.to) == 0)
            reroute(c);
    }
    if (strncmp(reply->str, "ASK ", 4) != 0 &&
        strncmp(reply->str, "TRYAGAIN", 8) != 0) {
        drv__redis_watch_soon(&c->watch);
    } else {
        /* said at most every MIGRATING_LOG_NS: a migration left half
         * done holds its queue, and that must show */
        int64_t now = drv_clock_mono_ns();

        if (c->migrating_logged_ns == 0 ||
            now - c->migrating_logged_ns >= MIGRATING_LOG_NS) {
            c->migrating_logged_ns = now;
            DRV_LOG_INFO("cluster slot being migrated: its commands wait "
                         "for the migration to end", "name=%s reply=\"%.80s\"",
                         c->watch.name, reply->str);
        }
    }
    return 1;
}

int
drv_redis_cluster_known(const struct drv_redis_cluster *c)
{
    DRV_CHECK_OBJ(c, DRV_REDIS_CLUSTER_MAGIC);
    return c->known;
}
