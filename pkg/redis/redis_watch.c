/*
 * redis_watch.c -- what the layers that follow where the data lives
 * (redis_cluster.c: the slot map; redis_sentinel.c: the primary) are
 * built on (redis_int.h, struct drv__redis_watch).
 *
 * DESIGN
 * A layer embeds one struct drv__redis_watch. The watch owns the layer's
 * own connections (the cluster's seed; the sentinel connections and the
 * ROLE probe), which ask where the data lives and never carry data, a
 * poll timer and a "soon" event. Each of them runs the layer's pass
 * (drv__redis_watch_fn): the timer every poll_ms, the soon event once
 * after drv__redis_watch_soon, and an own connection when it becomes
 * READY (then with that connection, so the pass can tell why it runs).
 * The layer finds its nodes, and reconnects its data connections, from
 * there. Loop thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "drover/common.h"
#include "drover/loop.h"
#include "drover/redis.h"
#include "drover/redis_sentinel.h"
#include "redis_int.h"

static void
on_event(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv__redis_watch *w;

    DRV_CAST(w, arg, DRV__REDIS_WATCH_MAGIC);
    w->pass(w->ctx, NULL);
}

static void
on_state(struct drv_redis *r, enum drv_redis_state st, void *ctx)
{
    struct drv__redis_watch *w;

    DRV_CAST(w, ctx, DRV__REDIS_WATCH_MAGIC);
    if (st == DRV_REDIS_READY)
        w->pass(w->ctx, r);
}

void
drv__redis_watch_init(struct drv__redis_watch *w, struct drv_loop *loop,
                      const char *name, const char *data_url,
                      const struct drv_redis_tls *tls, int64_t timeout_ms,
                      int64_t poll_ms, drv__redis_watch_fn *pass, void *ctx)
{
    struct timeval tv = {(time_t)(poll_ms / 1000),
                         (suseconds_t)(poll_ms % 1000) * 1000};

    *w = (struct drv__redis_watch){.magic = DRV__REDIS_WATCH_MAGIC,
                                   .loop = loop, .name = drv_xstrdup(name),
                                   .data_url = drv_xstrdup(data_url),
                                   .tls = tls, .timeout_ms = timeout_ms,
                                   .pass = pass, .ctx = ctx};
    DRV_AZ(event_assign(&w->poll_ev, drv_loop_base(loop), -1, EV_PERSIST,
                        on_event, w));
    DRV_AZ(event_assign(&w->soon_ev, drv_loop_base(loop), -1, 0, on_event,
                        w));
    DRV_AZ(event_add(&w->poll_ev, &tv));
}

void
drv__redis_watch_fini(struct drv__redis_watch *w)
{
    size_t i;

    if (w->magic == 0)
        return;             /* never initialised */
    DRV_CHECK_OBJ(w, DRV__REDIS_WATCH_MAGIC);
    for (i = 0; i < w->nconns; i++)
        drv_redis_free(w->conns[i]);
    free(w->conns);
    event_del(&w->poll_ev);
    event_del(&w->soon_ev);
    free(w->name);
    free(w->data_url);
    memset(w, 0, sizeof *w);
}

int
drv__redis_watch_conn(struct drv__redis_watch *w, const char *url,
                      const char *suffix, drv_redis_locate_fn *locate,
                      struct drv_redis **out, struct drv_err *err)
{
    struct drv_redis_opts ro;
    char label[160];
    int rc;

    DRV_CHECK_OBJ(w, DRV__REDIS_WATCH_MAGIC);
    snprintf(label, sizeof label, "%s-%s", w->name, suffix);
    memset(&ro, 0, sizeof ro);
    ro.url = url != NULL ? url : w->data_url;
    ro.name = label;
    ro.connect_timeout_ms = w->timeout_ms;
    ro.command_timeout_ms = w->timeout_ms;
    ro.backoff_initial_ms = 100;
    ro.backoff_max_ms = 2000;
    ro.tls = w->tls;
    ro.on_state = on_state;
    ro.ctx = w;
    ro.locate = locate;
    ro.locate_ctx = w->ctx;
    rc = drv_redis_create(w->loop, &ro, out, err);
    if (rc < 0)
        return rc;
    w->conns = drv_xrealloc(w->conns, (w->nconns + 1) * sizeof *w->conns);
    w->conns[w->nconns++] = *out;
    return 0;
}

void
drv__redis_watch_soon(struct drv__redis_watch *w)
{
    DRV_CHECK_OBJ(w, DRV__REDIS_WATCH_MAGIC);
    if (!event_pending(&w->soon_ev, EV_TIMEOUT, NULL))
        event_active(&w->soon_ev, EV_TIMEOUT, 0);
}

/* ------------------------------------------------------- node addresses */

int
drv__redis_addr_same(const struct drv_redis_sentinel_addr *a,
                     const struct drv_redis_sentinel_addr *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

int
drv__redis_target_is(const struct drv_redis_target *t,
                     const struct drv_redis_sentinel_addr *a)
{
    return !t->is_unix && t->port == a->port && strcmp(t->host, a->host) == 0;
}

int
drv__redis_locate_at(struct drv_redis_target *t,
                     const struct drv_redis_sentinel_addr *a)
{
    if (a == NULL)
        return -EAGAIN;
    drv__redis_target_at(t, a);
    return 0;
}

const char *
drv__redis_addr_str(const struct drv_redis_sentinel_addr *a, char *buf,
                    size_t n)
{
    int v6 = strchr(a->host, ':') != NULL;

    snprintf(buf, n, "%s%s%s:%d", v6 ? "[" : "", a->host, v6 ? "]" : "",
             a->port);
    return buf;
}
