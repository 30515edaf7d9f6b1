/*
 * redis_sentinel.c -- finding and following the primary through Redis
 * Sentinel: a layer above single connections (drover/redis_sentinel.h).
 *
 * DESIGN
 * One struct drv_redis_sentinel is built on a watch (redis_watch.c) that
 * owns a drv_redis connection to each sentinel, one "probe" connection
 * that checks ROLE on the node the sentinels name, and a poll timer. It
 * hands the confirmed primary to the
 * data connections through their locate hook and reconnects them when it
 * changes; it never issues anything on them.
 *
 * A round (never two at once: `asking`):
 *   1. ask the READY sentinels one after the other, starting with the one
 *      that answered last (`first`), SENTINEL get-master-addr-by-name; a
 *      sentinel that is down, refuses or does not know the name is
 *      skipped. The first address answered is the candidate;
 *   2. point the probe at the candidate (set by its locate hook; a
 *      reconnect when it pointed elsewhere) and send ROLE once it is READY;
 *   3. "master": the candidate is confirmed; when it differs from the
 *      primary known so far, the attached connections are reconnected (a
 *      READY one is dropped even though the old node still answers: after
 *      a failover the old primary stays writable until the sentinels turn
 *      it into a replica, seconds later, and writes there are lost).
 *      Anything else: when it was the known primary, it is forgotten and
 *      the attached connections wait in locate (-EAGAIN) for the next
 *      round, which starts with the sentinel after the one that named
 *      this node (it may be stale or misconfigured).
 * A round starts every poll_ms, at once when a sentinel connection
 * becomes READY while no primary is known, on every locate call (every
 * data connection attempt), and on drv_redis_sentinel_suspect (READONLY).
 * The poll timer abandons a round whose probe attempt failed (the probe
 * is DOWN again while ROLE waits to be sent) or that has taken longer
 * than round_ns, and starts the next one.
 *
 * Every command's reply comes to on_reply with ds; it tests status ==
 * -ECANCELED (ds is being freed) before touching it, and tells ROLE from
 * get-master-addr-by-name by the connection. Loop thread only.
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
#include "drover/redis_sentinel.h"
#include "redis_int.h"

#define DEFAULT_TIMEOUT_MS 1000
#define URL_MAX 1024
/* Where data connections point until a primary is known: a reserved
 * domain that never resolves (they are never sent there: locate). */
#define PLACEHOLDER_HOST "primary-from-sentinel.invalid"

struct sent {
    struct drv_redis *r;                /* borrowed from ds->watch:
                                           connection to it */
    struct drv_redis_sentinel_addr addr; /* where it is */
};

struct drv_redis_sentinel {
    unsigned magic;
#define DRV_REDIS_SENTINEL_MAGIC 0x5e471e1aU
    struct drv__redis_watch watch;  /* owns the connections, polls; name
                                       and data_url */
    char *master;                   /* owned: the monitored name */
    struct sent *s;                 /* owned: the sentinels */
    size_t ns;                      /* entries of s */
    size_t first;                   /* sentinel asked first */
    struct drv_redis *probe;        /* borrowed from watch: the ROLE
                                       check connection */
    int64_t round_ns;               /* how long a round may take */
    int asking;                     /* a round is under way */
    size_t asked;                   /* sentinels tried in this round */
    int64_t round_deadline_ns;      /* when the poll abandons it */
    int have_cand;                  /* cand is set */
    struct drv_redis_sentinel_addr cand;    /* named by a sentinel */
    int role_pending;               /* ROLE to send once probe is READY */
    int role_sent;                  /* ROLE in flight on the probe */
    int have_primary;               /* primary is confirmed */
    struct drv_redis_sentinel_addr primary; /* the confirmed primary */
    int none_logged;                /* "no sentinel answered" was said */
    int64_t created_ns;             /* when ds was made (monotonic) */
    struct drv_redis **conns;       /* owned array of borrowed
                                       connections that follow ds */
    size_t nconns;                  /* entries of conns */
};

static void round_start(struct drv_redis_sentinel *ds);
static void on_reply(struct drv_redis *r, int status,
                     const redisReply *reply, void *ctx);

/* ------------------------------------------------------------ helpers */

/* The index in ds->s of the sentinel that r connects to. */
static size_t
sent_of(const struct drv_redis_sentinel *ds, const struct drv_redis *r)
{
    size_t i;

    for (i = 0; i < ds->ns; i++)
        if (ds->s[i].r == r)
            return i;
    DRV_ASSERT(!"a reply on a connection that is no sentinel's");
    return 0;
}

/* ------------------------------------------------------ the followers */

/* Reconnect every attached connection not already on its way to the
 * primary (or, with none known, every connected one). */
static void
steer(struct drv_redis_sentinel *ds, const char *why)
{
    struct drv_redis_target t;
    size_t i;

    for (i = 0; i < ds->nconns; i++) {
        struct drv_redis *r = ds->conns[i];
        enum drv_redis_state st = drv_redis_state(r);

        drv_redis_get_target(r, &t);
        if (ds->have_primary && st != DRV_REDIS_DOWN &&
            drv__redis_target_is(&t, &ds->primary))
            continue;       /* already there (or connecting there) */
        if (!ds->have_primary && st == DRV_REDIS_DOWN)
            continue;       /* waits in locate for a primary */
        drv_redis_reconnect(r, why);
    }
}

static void
confirm(struct drv_redis_sentinel *ds, const struct drv_redis_sentinel_addr *a)
{
    char now[DRV_REDIS_SENTINEL_HOST_MAX + 16];
    char was[DRV_REDIS_SENTINEL_HOST_MAX + 16];

    if (ds->have_primary && drv__redis_addr_same(&ds->primary, a))
        return;
    if (ds->have_primary)
        DRV_LOG_WARN("redis primary moved (sentinel)",
                     "conn=%s master=%s primary=%s was=%s", ds->watch.name,
                     ds->master, drv__redis_addr_str(a, now, sizeof now),
                     drv__redis_addr_str(&ds->primary, was, sizeof was));
    else
        DRV_LOG_INFO("redis primary found (sentinel)",
                     "conn=%s master=%s primary=%s", ds->watch.name,
                     ds->master, drv__redis_addr_str(a, now, sizeof now));
    ds->primary = *a;
    ds->have_primary = 1;
    steer(ds, "sentinel: the primary moved");
}

static void
forget(struct drv_redis_sentinel *ds, const char *why)
{
    char was[DRV_REDIS_SENTINEL_HOST_MAX + 16];
    char qe[DRV_LOG_Q_MAX];

    if (!ds->have_primary)
        return;
    DRV_LOG_WARN("redis primary forgotten (sentinel)",
                 "conn=%s master=%s was=%s why=%s", ds->watch.name, ds->master,
                 drv__redis_addr_str(&ds->primary, was, sizeof was),
                 drv_log_q(qe, sizeof qe, why));
    ds->have_primary = 0;
    steer(ds, why);
}

/* ------------------------------------------------------------- rounds */

static void
round_end(struct drv_redis_sentinel *ds)
{
    ds->asking = 0;
    ds->role_pending = 0;
}

/* ROLE answered on the probe: rc is drv_redis_sentinel_parse_role's (or
 * the failed status), err says why. */
static void
got_role(struct drv_redis_sentinel *ds, int rc, const struct drv_err *err)
{
    char buf[DRV_REDIS_SENTINEL_HOST_MAX + 16];
    char qe[DRV_LOG_Q_MAX];

    ds->role_sent = 0;
    if (rc == 1) {
        confirm(ds, &ds->cand);
    } else if (rc == 0) {
        DRV_LOG_WARN("node named by the sentinel is not the primary",
                     "conn=%s master=%s node=%s role=%s", ds->watch.name,
                     ds->master,
                     drv__redis_addr_str(&ds->cand, buf, sizeof buf),
                     drv_log_q(qe, sizeof qe, err->msg));
        if (ds->have_primary && drv__redis_addr_same(&ds->primary, &ds->cand))
            forget(ds, "sentinel: ROLE is not master");
        /* that sentinel may be stale: the next round asks another first */
        ds->first = (ds->first + 1) % ds->ns;
    } else {
        DRV_LOG_DEBUG("ROLE check failed", "conn=%s node=%s error=%s",
                      ds->watch.name,
                      drv__redis_addr_str(&ds->cand, buf, sizeof buf),
                      drv_log_q(qe, sizeof qe, err->msg));
    }
    round_end(ds);
}

/* Send ROLE on the probe if it is READY on the candidate. */
static void
role_send(struct drv_redis_sentinel *ds)
{
    struct drv_redis_target t;

    if (!ds->role_pending || ds->role_sent ||
        drv_redis_state(ds->probe) != DRV_REDIS_READY)
        return;
    drv_redis_get_target(ds->probe, &t);
    if (!drv__redis_target_is(&t, &ds->cand)) {
        drv_redis_reconnect(ds->probe, "sentinel: check another node");
        return;
    }
    ds->role_pending = 0;
    if (drv_redis_cmd(ds->probe, on_reply, ds, "ROLE", (char *)NULL) == 0)
        ds->role_sent = 1;
    else
        round_end(ds);
}

/* A candidate: check its ROLE on the probe. */
static void
role_check(struct drv_redis_sentinel *ds,
           const struct drv_redis_sentinel_addr *a)
{
    struct drv_redis_target t;

    ds->cand = *a;
    ds->have_cand = 1;
    ds->role_pending = 1;
    drv_redis_get_target(ds->probe, &t);
    if (drv_redis_state(ds->probe) == DRV_REDIS_DOWN ||
        !drv__redis_target_is(&t, a))
        drv_redis_reconnect(ds->probe, "sentinel: check the named node");
    else
        role_send(ds);
}

static void ask_next(struct drv_redis_sentinel *ds);

/* get-master-addr-by-name answered by sentinel i: rc is
 * drv_redis_sentinel_parse_master's (or the failed status) with the
 * address in a, err says why not. */
static void
got_addr(struct drv_redis_sentinel *ds, size_t i, int rc,
         const struct drv_redis_sentinel_addr *a, const struct drv_err *err)
{
    char buf[DRV_REDIS_SENTINEL_HOST_MAX + 16];
    char qe[DRV_LOG_Q_MAX];

    if (rc < 0) {
        DRV_LOG_DEBUG("sentinel gave no primary",
                      "conn=%s sentinel=%s error=%s", ds->watch.name,
                      drv__redis_addr_str(&ds->s[i].addr, buf, sizeof buf),
                      drv_log_q(qe, sizeof qe, err->msg));
        ask_next(ds);
        return;
    }
    ds->first = i;
    ds->none_logged = 0;
    role_check(ds, a);
}

/* Every reply of ds's commands: ROLE on the probe, get-master-addr-by-name
 * on a sentinel connection. */
static void
on_reply(struct drv_redis *r, int status, const redisReply *reply, void *ctx)
{
    struct drv_redis_sentinel_addr a;
    struct drv_redis_sentinel *ds;
    struct drv_err err;

    if (status == -ECANCELED)
        return;             /* ds is being freed */
    DRV_CAST(ds, ctx, DRV_REDIS_SENTINEL_MAGIC);
    drv_err_clear(&err);
    if (status < 0)
        drv_err_set(&err, status, "%s", drv_strerror(status));
    if (r == ds->probe)
        got_role(ds, status < 0 ? status
                                : drv_redis_sentinel_parse_role(reply, &err),
                 &err);
    else
        got_addr(ds, sent_of(ds, r),
                 status < 0 ? status
                            : drv_redis_sentinel_parse_master(reply, &a,
                                                              &err),
                 &a, &err);
}

/* Ask the next READY sentinel of this round; end it when none is left. */
static void
ask_next(struct drv_redis_sentinel *ds)
{
    while (ds->asked < ds->ns) {
        struct sent *s = &ds->s[(ds->first + ds->asked) % ds->ns];

        ds->asked++;
        if (drv_redis_state(s->r) != DRV_REDIS_READY)
            continue;       /* unreachable (its connection retries) */
        if (drv_redis_cmd(s->r, on_reply, ds, "SENTINEL",
                          "get-master-addr-by-name", ds->master,
                          (char *)NULL) == 0)
            return;
    }
    /* at start the sentinel connections are still being made: quiet */
    if (!ds->none_logged &&
        drv_clock_mono_ns() - ds->created_ns > ds->round_ns)
        DRV_LOG_WARN("no sentinel named the primary",
                     "conn=%s master=%s sentinels=%zu", ds->watch.name,
                     ds->master, ds->ns);
    ds->none_logged = drv_clock_mono_ns() - ds->created_ns > ds->round_ns;
    round_end(ds);
}

static void
round_start(struct drv_redis_sentinel *ds)
{
    if (ds->asking)
        return;
    ds->asking = 1;
    ds->asked = 0;
    ds->round_deadline_ns = drv_clock_mono_ns() + ds->round_ns;
    ask_next(ds);
}

static void
ask_soon(struct drv_redis_sentinel *ds)
{
    if (!ds->asking)
        drv__redis_watch_soon(&ds->watch);
}

/* The watch's pass: the probe READY sends ROLE; a sentinel READY with no
 * primary known starts a round soon; a poll or that round (ready NULL)
 * abandons a stuck round and starts the next. */
static void
on_watch(void *ctx, struct drv_redis *ready)
{
    struct drv_redis_sentinel *ds;

    DRV_CAST(ds, ctx, DRV_REDIS_SENTINEL_MAGIC);
    if (ready == ds->probe) {
        role_send(ds);
        return;
    }
    if (ready != NULL) {
        if (!ds->have_primary)
            ask_soon(ds);
        return;
    }
    /* the probe's attempt on the candidate failed (it is DOWN again,
     * waiting for its backoff), or the round took too long: give up on
     * this candidate and ask the sentinels again now -- the answer may
     * have changed (a crashed primary is being replaced) */
    if (ds->asking && !ds->role_sent &&
        ((ds->role_pending &&
          drv_redis_state(ds->probe) == DRV_REDIS_DOWN) ||
         drv_clock_mono_ns() > ds->round_deadline_ns))
        round_end(ds);
    round_start(ds);
}

/* ----------------------------------------------------------- callbacks */

/* The probe's locate: the candidate. */
static int
probe_locate(struct drv_redis *r DRV_UNUSED, struct drv_redis_target *target,
             void *ctx)
{
    struct drv_redis_sentinel *ds;

    DRV_CAST(ds, ctx, DRV_REDIS_SENTINEL_MAGIC);
    return drv__redis_locate_at(target, ds->have_cand ? &ds->cand : NULL);
}

int
drv_redis_sentinel_locate(struct drv_redis *r DRV_UNUSED,
                          struct drv_redis_target *target, void *ctx)
{
    struct drv_redis_sentinel *ds;

    DRV_CAST(ds, ctx, DRV_REDIS_SENTINEL_MAGIC);
    ask_soon(ds);           /* every (re)connect checks again */
    return drv__redis_locate_at(target,
                                ds->have_primary ? &ds->primary : NULL);
}

/* ------------------------------------------------------------ lifecycle */

int
drv_redis_sentinel_create(struct drv_loop *loop,
                          const struct drv_redis_sentinel_opts *o,
                          struct drv_redis_sentinel **out,
                          struct drv_err *err)
{
    static const struct drv_redis_sentinel_addr placeholder = {
        PLACEHOLDER_HOST, 6379};
    struct drv_redis_sentinel *ds = NULL;
    struct drv_err aerr;
    char url[URL_MAX];
    char label[32];
    int64_t timeout_ms = o->timeout_ms > 0 ? o->timeout_ms
                                           : DEFAULT_TIMEOUT_MS;
    size_t i;
    int rc;

    *out = NULL;
    if (o->url == NULL || drv_redis_sentinel_url_check(o->url, &aerr) < 0)
        return drv_err_set(err, DRV_ECONFIG, "sentinel: %s",
                           o->url == NULL ? "no url" : aerr.msg);
    if (o->master == NULL || o->master[0] == '\0' || o->naddrs == 0)
        return drv_err_set(err, DRV_ECONFIG,
                           "sentinel: a master name and at least one "
                           "sentinel address are required");
    if (drv_redis_sentinel_url_at(o->url, &placeholder, url, sizeof url) < 0)
        return drv_err_set(err, DRV_ECONFIG, "sentinel: url too long");
    DRV_ALLOC_OBJ(ds, DRV_REDIS_SENTINEL_MAGIC);
    ds->created_ns = drv_clock_mono_ns();
    ds->master = drv_xstrdup(o->master);
    drv__redis_watch_init(&ds->watch, loop,
                          o->name != NULL ? o->name : "sentinel", url,
                          o->tls, timeout_ms,
                          o->poll_ms > 0 ? o->poll_ms
                                         : DRV_REDIS_SENTINEL_POLL_MS,
                          on_watch, ds);
    ds->round_ns = 3 * timeout_ms * DRV_NS_PER_MS;
    /* the probe (ROLE on the primary), then one per sentinel */
    rc = drv__redis_watch_conn(&ds->watch, NULL, "role", probe_locate,
                               &ds->probe, err);
    if (rc < 0)
        goto fail;
    ds->s = drv_xcalloc(o->naddrs, sizeof *ds->s);
    for (i = 0; i < o->naddrs; i++) {
        struct sent *s = &ds->s[i];

        rc = drv_redis_sentinel_addr_parse(o->addrs[i], &s->addr, &aerr);
        if (rc < 0) {
            rc = drv_err_set(err, DRV_ECONFIG, "sentinel address %zu: %s",
                             i, aerr.msg);
            goto fail;
        }
        if (drv_redis_sentinel_conn_url(o->url, o->user, &s->addr, url,
                                        sizeof url) < 0) {
            rc = drv_err_set(err, DRV_ECONFIG, "sentinel address %zu: URL "
                             "too long", i);
            goto fail;
        }
        snprintf(label, sizeof label, "s%zu", i);
        rc = drv__redis_watch_conn(&ds->watch, url, label, NULL, &s->r,
                                   err);
        explicit_bzero(url, sizeof url);
        if (rc < 0)
            goto fail;
        ds->ns++;
    }
    *out = ds;
    return 0;
fail:
    drv_redis_sentinel_free(ds);
    return rc;
}

void
drv_redis_sentinel_free(struct drv_redis_sentinel *ds)
{
    if (DRV_NO_OBJ(ds, DRV_REDIS_SENTINEL_MAGIC))
        return;
    DRV_ASSERT(ds->nconns == 0);
    drv__redis_watch_fini(&ds->watch);
    free(ds->s);
    free(ds->conns);
    free(ds->master);
    DRV_FREE_OBJ(ds);
}

void
drv_redis_sentinel_conn_opts(struct drv_redis_sentinel *ds,
                             struct drv_redis_opts *o)
{
    DRV_CHECK_OBJ(ds, DRV_REDIS_SENTINEL_MAGIC);
    o->url = ds->watch.data_url;
    o->locate = drv_redis_sentinel_locate;
    o->locate_ctx = ds;
}

void
drv_redis_sentinel_attach(struct drv_redis_sentinel *ds, struct drv_redis *r)
{
    DRV_CHECK_OBJ(ds, DRV_REDIS_SENTINEL_MAGIC);
    ds->conns = drv_xrealloc(ds->conns, (ds->nconns + 1) * sizeof *ds->conns);
    ds->conns[ds->nconns++] = r;
}

void
drv_redis_sentinel_detach(struct drv_redis_sentinel *ds, struct drv_redis *r)
{
    size_t i;

    DRV_CHECK_OBJ(ds, DRV_REDIS_SENTINEL_MAGIC);
    for (i = 0; i < ds->nconns; i++)
        if (ds->conns[i] == r) {
            ds->conns[i] = ds->conns[--ds->nconns];
            return;
        }
}

void
drv_redis_sentinel_suspect(struct drv_redis_sentinel *ds, const char *why)
{
    DRV_CHECK_OBJ(ds, DRV_REDIS_SENTINEL_MAGIC);
    forget(ds, why);
    ask_soon(ds);
}
