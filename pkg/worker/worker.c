/*
 * worker.c -- the worker's life: create, start, the Redis connections, the
 * periodic tick, graceful and immediate stop.
 *
 * DESIGN
 * Everything runs on the loop thread. Two Redis connections: `blk` carries
 * only the fetch reads (XREADGROUP, BLOCK while idle), `cmd` carries all
 * the rest (group creation, settle scripts, mover, reclaim, renewal,
 * registry, pause checks), so a blocked read never delays an outcome.
 *
 * A job is a `struct wjob` (job.c) from the fetch reply until its settle
 * op was applied (or found lost); its path through the files is drawn in
 * worker_int.h.
 *
 * drv__worker_kick() schedules one deferred pass (defer_ev, coalesced) that
 * flushes pending settle ops and tops up fetching; every event that can
 * change either (an outcome, a permit released, a reply, a reconnect)
 * kicks.
 *
 * Stop: DRAINING stops fetching (a BLOCK read is cut short with CLIENT
 * UNBLOCK), cancels jobs still waiting for a permit (they are requeued at
 * once), and arms drain_ev at shutdown_timeout; when it fires every
 * running job is cancelled with cause SHUTDOWN and requeued. When no job
 * is live, on_stopped runs. A hard stop skips all of that.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "drover/buf.h"
#include "drover/clock.h"
#include "drover/common.h"
#include "drover/log.h"
#include "drover/loop.h"
#include "drover/pool.h"
#include "drover/proc.h"
#include "drover/redis.h"
#include "drover/redis_cluster.h"
#include "drover/redis_sentinel.h"
#include "drover/sem.h"
#include "drover/tg.h"
#include "worker_int.h"

#define TICK_MS 100
#define IDLE_TICK_MS 500 /* the paused flags' grid (upkeep.c PAUSE_MS) */
/* idle with the paused flags' read riding on the blocking read: the tick
 * and the lag meter only this often (the loop has nothing to run; the
 * health check's lag limit is 5 s), earlier when an upkeep call is due */
#define RIDE_TICK_MS 5000

/* ------------------------------------------------------------ helpers */

static void
on_defer_ev(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv_worker *w;

    DRV_CAST(w, arg, DRV_WORKER_MAGIC);
    drv__worker_settle_flush(w);
    drv__worker_fetch(w);
    drv__worker_check_stopped(w);
}

static void tick_arm(struct drv_worker *w);

void
drv__worker_kick(struct drv_worker *w)
{
    if (w->defer_ev != NULL)
        event_active(w->defer_ev, EV_TIMEOUT, 0);
    /* work came while the tick was on the idle grid */
    if (w->tick_idle && w->tick_ev != NULL && drv__worker_idle_until(w) < 0)
        tick_arm(w);
}

/* Fetch only what can start now: every job fetched counts until its task
 * is released (an abandoned thread keeps counting until it returns). */
int
drv__worker_free_permits(struct drv_worker *w)
{
    return w->cfg->worker.concurrency - w->inflight;
}

/* -------------------------------------------------------------- trace */

/*
 * DROVER_TRACE_START=FILE (diagnostics): every started job appends one
 * line "UNIX_US QUEUE ENTRY_ID" to FILE, the wall-clock microsecond its
 * handler started. Buffered; flushed every tick and at exit. The entry id
 * names the job, so an enqueuer that noted when it sent each XADD gets
 * the pick-up latency (make bench does). Costs one branch when unset.
 */
static void
trace_open(struct drv_worker *w)
{
    const char *path = getenv("DROVER_TRACE_START");
    char qf[DRV_LOG_Q_MAX], qe[DRV_LOG_Q_MAX];

    if (path == NULL || path[0] == '\0')
        return;
    w->trace = fopen(path, "a");
    if (w->trace == NULL) {
        DRV_LOG_WARN("DROVER_TRACE_START: cannot open: not tracing",
                     "file=%s error=%s", drv_log_q(qf, sizeof qf, path),
                     drv_log_q(qe, sizeof qe, strerror(errno)));
        return;
    }
    setvbuf(w->trace, NULL, _IOFBF, 1 << 16);
}

void
drv__worker_trace_start(struct drv_worker *w, const struct wjob *j)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    fprintf(w->trace, "%lld %s %s\n",
            (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000,
            w->queues[j->qi].keys.name, j->job->entry_id);
}

/* --------------------------------------------------------- Redis setup */

/*
 * Each queue is prepared on its own after every (re)connect (key types
 * checked, group created when missing: drv_queue_prepare), and again
 * after a fetch found its group or stream gone. A queue that fails stays
 * not ready and is tried again every PREPARE_RETRY_NS while the others
 * work; one with a key of the wrong type is logged by name.
 */
#define PREPARE_RETRY_NS DRV_NS_PER_SEC

/* A prepare call out: the worker and its queue. */
struct prep_call {
    unsigned magic;
#define PREP_CALL_MAGIC 0x93e9ca11U
    struct drv_worker *w;   /* borrowed */
    int qi;                 /* queue index */
};

static void
set_ready(struct drv_worker *w, struct wqueue *q, int ready)
{
    if (q->ready == ready)
        return;
    q->ready = ready;
    w->groups_ready += ready ? 1 : -1;
}

void
drv__worker_queue_bad(struct drv_worker *w, int qi, const char *why)
{
    struct wqueue *q = &w->queues[qi];
    int64_t now = drv_clock_mono_ns();
    char qe[DRV_LOG_Q_MAX];

    set_ready(w, q, 0);
    if (q->next_prepare_ns < now + PREPARE_RETRY_NS)
        q->next_prepare_ns = now + PREPARE_RETRY_NS;
    snprintf(q->bad, sizeof q->bad, "%s", why);
    if (q->bad_logged_ns != 0 && now - q->bad_logged_ns < BAD_LOG_NS)
        return;
    q->bad_logged_ns = now;
    DRV_LOG_ERROR("queue key of the wrong type: queue skipped until it is "
                  "fixed", "queue=%s error=%s", q->keys.name,
                  drv_log_q(qe, sizeof qe, why));
}

int
drv__worker_queue_active(const struct drv_worker *w, size_t qi)
{
    const struct wqueue *q = &w->queues[qi];

    return q->ready && !q->paused && q->settle_fails == 0 &&
           w->refused_ns == 0;
}

static void
on_prepared(struct drv_redis *r DRV_UNUSED, int status,
            const redisReply *reply, void *ctx)
{
    struct prep_call *c;
    struct drv_worker *w;
    struct wqueue *q;
    struct drv_err err;
    int64_t now;
    int rc, qi;
    char qe[DRV_LOG_Q_MAX];

    DRV_CAST(c, ctx, PREP_CALL_MAGIC);
    w = c->w;
    qi = c->qi;
    DRV_FREE_OBJ(c);
    if (status == -ECANCELED)
        return; /* the worker is being freed: w is gone */
    q = &w->queues[qi];
    q->prepare_inflight = 0;
    now = drv_clock_mono_ns();
    rc = drv_redis_result(status, reply, &err);
    if (rc < 0)
        drv__worker_redis_error(w, status, reply);
    if (rc == DRV_EREDIS && drv_redis_reply_error_is(reply, "WRONGTYPE")) {
        drv__worker_queue_bad(w, qi, err.msg);
        return;
    }
    if (rc < 0) {
        q->next_prepare_ns = now + PREPARE_RETRY_NS;
        if (rc != DRV_EDOWN && (q->upkeep_logged_ns == 0 ||
                                now - q->upkeep_logged_ns >= BAD_LOG_NS)) {
            q->upkeep_logged_ns = now;
            DRV_LOG_WARN("consumer group not created", "queue=%s "
                         "error=%s", q->keys.name,
                         drv_log_q(qe, sizeof qe, err.msg));
        }
        return;
    }
    if (q->bad[0] != '\0') {
        DRV_LOG_INFO("queue keys fixed: queue resumed", "queue=%s",
                     q->keys.name);
        q->bad[0] = '\0';
        q->bad_logged_ns = 0;
        q->settle_retry_ns = 0; /* stuck outcomes: try them now */
    }
    set_ready(w, q, 1);
    DRV_LOG_DEBUG("queue ready", "queue=%s", q->keys.name);
    /* fetching waits for the paused keys too: read them now */
    w->next_pause_ns = 0;
    drv__worker_maintain(w, now);
    drv__worker_kick(w);
}

static void
prepare_queue(struct drv_worker *w, int qi)
{
    struct wqueue *q = &w->queues[qi];
    struct drv_script_call call;
    struct prep_call *c;

    if (q->prepare_inflight)
        return;
    DRV_ALLOC_OBJ(c, PREP_CALL_MAGIC);
    c->w = w;
    c->qi = qi;
    drv_queue_prepare(&call, &q->keys);
    q->prepare_inflight = 1;
    if (drv__worker_script(w, qi, SCRIPT_PREPARE, &call, on_prepared, c) <
        0) {
        q->prepare_inflight = 0;
        q->next_prepare_ns = drv_clock_mono_ns() + PREPARE_RETRY_NS;
        DRV_FREE_OBJ(c);
    }
}

void
drv__worker_prepare(struct drv_worker *w, int qi)
{
    size_t i;

    for (i = 0; i < w->nqueues; i++) {
        if (qi >= 0 && (size_t)qi != i)
            continue;
        set_ready(w, &w->queues[i], 0);
        w->queues[i].next_prepare_ns = 0;
        prepare_queue(w, (int)i);
    }
}

/* Queues not ready: prepare them again when their retry is due. */
void
drv__worker_prepare_due(struct drv_worker *w, int64_t now)
{
    size_t i;

    for (i = 0; i < w->nqueues; i++) {
        struct wqueue *q = &w->queues[i];

        if (!q->ready && !q->prepare_inflight && now >= q->next_prepare_ns)
            prepare_queue(w, (int)i);
    }
}

/* The command connection of queue qi (-1: of every queue) changed state:
 * prepare the queue after every connect; not ready while it is down. */
static void
queue_cmd_state(struct drv_worker *w, int qi, enum drv_redis_state st)
{
    size_t i;

    if (st == DRV_REDIS_READY) {
        drv__worker_prepare(w, qi);
        w->next_pause_ns = 0;
        drv__worker_kick(w);
        return;
    }
    for (i = 0; i < w->nqueues; i++)
        if (qi < 0 || (size_t)qi == i)
            set_ready(w, &w->queues[i], 0);
}

static void
on_cmd_state(struct drv_redis *r DRV_UNUSED, enum drv_redis_state st,
             void *ctx)
{
    struct drv_worker *w;

    DRV_CAST(w, ctx, DRV_WORKER_MAGIC);
    if (w->cluster != NULL) {
        /* the registry's connection: the queues have their own */
        if (st == DRV_REDIS_READY) {
            w->next_beat_ns = 0;
            drv__worker_kick(w);
        }
        return;
    }
    if (st == DRV_REDIS_READY)
        w->next_beat_ns = 0;
    queue_cmd_state(w, -1, st);
}

/* A queue's own command connection (cluster). */
static void
on_qcmd_state(struct drv_redis *r DRV_UNUSED, enum drv_redis_state st,
              void *ctx)
{
    struct wqconn *qc;

    DRV_CAST(qc, ctx, WQCONN_MAGIC);
    queue_cmd_state(qc->w, qc->qi, st);
}

/* A fetch connection, the worker's or a queue's own (cluster). */
static void
on_blk_state(struct drv_redis *r DRV_UNUSED, enum drv_redis_state st,
             void *ctx)
{
    struct drv_worker *w;

    DRV_CAST(w, ctx, DRV_WORKER_MAGIC);
    if (st == DRV_REDIS_READY)
        drv__worker_kick(w); /* re-arm the read after every reconnect */
}

/* ------------------------------------------------------------ sentinel */

/* redis.sentinel: the object that finds the primary for both
 * connections. */
static int
sentinel_create(struct drv_worker *w, struct drv_loop *loop,
                const struct drv_redis_tls *tls, struct drv_err *err)
{
    const struct drv_config_sentinel *cs = &w->cfg->redis.sentinel;
    char name[64];
    struct drv_redis_sentinel_opts so = {
        .url = w->cfg->redis.url,
        .master = cs->master,
        .addrs = (const char *const *)cs->addrs,
        .naddrs = cs->naddrs,
        .user = cs->user,
        .tls = tls,
        .name = name,
    };

    snprintf(name, sizeof name, "drover-sentinel-%d", (int)getpid());
    return drv_redis_sentinel_create(loop, &so, &w->sentinel, err);
}

struct drv_worker *
drv__worker_of_reply(int status, void *ctx)
{
    struct drv_worker *w;

    if (status == -ECANCELED)
        return NULL;
    DRV_CAST(w, ctx, DRV_WORKER_MAGIC);
    return w;
}

struct drv_worker *
drv__worker_of_queue_reply(int status, void *ctx, int *qi)
{
    struct wqconn *qc;

    if (status == -ECANCELED)
        return NULL;
    DRV_CAST(qc, ctx, WQCONN_MAGIC);
    *qi = qc->qi;
    return qc->w;
}

int
drv__worker_redis_error(struct drv_worker *w, int status,
                        const redisReply *reply)
{
    if (w->cluster != NULL)
        return status == 0 && drv_redis_cluster_redirected(w->cluster,
                                                           reply);
    /* "READONLY You can't write against a read only replica." -- also
     * inside a script's error text */
    if (w->sentinel != NULL && status == 0 && reply != NULL &&
        reply->type == REDIS_REPLY_ERROR && reply->str != NULL &&
        strstr(reply->str, "READONLY") != NULL)
        drv_redis_sentinel_suspect(w->sentinel,
                                   "READONLY reply: the node is a replica");
    return 0;
}

/* ------------------------------------------------------------- cluster */

/* redis.cluster: the slot map object. */
static int
cluster_create(struct drv_worker *w, struct drv_loop *loop,
               const struct drv_redis_tls *tls, struct drv_err *err)
{
    char name[64];
    struct drv_redis_cluster_opts co = {
        .url = w->cfg->redis.url,
        .nodes = (const char *const *)w->cfg->redis.cluster.nodes,
        .nnodes = w->cfg->redis.cluster.nnodes,
        .tls = tls,
        .name = name,
    };

    snprintf(name, sizeof name, "drover-cluster-%d", (int)getpid());
    return drv_redis_cluster_create(loop, &co, &w->cluster, err);
}

/* One connection routed to slot's master: ro (url, tls, limits set) with
 * the route as locate ctx and the given name and state callback. */
static int
cluster_conn(struct drv_worker *w, struct drv_redis_opts *ro, int slot,
             const char *name, drv_redis_state_fn *on_state, void *ctx,
             struct drv_redis_cluster_route **route, struct drv_redis **out,
             struct drv_err *err)
{
    int rc;

    *route = drv_redis_cluster_route(w->cluster, slot);
    drv_redis_cluster_route_opts(*route, ro);
    ro->name = name;
    ro->on_state = on_state;
    ro->ctx = ctx;
    rc = drv_redis_create(w->loop, ro, out, err);
    if (rc == 0)
        drv_redis_cluster_attach(*route, *out);
    return rc;
}

/* The worker's own connection drover-WHAT-PID (cmd or fetch): routed to
 * slot's master on a cluster (*route set), else to redis.url or the
 * primary the sentinel finds. */
static int
worker_conn(struct drv_worker *w, struct drv_redis_opts *ro, int slot,
            const char *what, drv_redis_state_fn *on_state,
            struct drv_redis_cluster_route **route, struct drv_redis **out,
            struct drv_err *err)
{
    char name[64];
    int rc;

    snprintf(name, sizeof name, "drover-%s-%d", what, (int)getpid());
    if (w->cluster != NULL) {
        rc = cluster_conn(w, ro, slot, name, on_state, w, route, out, err);
    } else {
        ro->name = name;
        ro->on_state = on_state;
        rc = drv_redis_create(w->loop, ro, out, err);
        if (rc == 0 && w->sentinel != NULL)
            drv_redis_sentinel_attach(w->sentinel, *out);
    }
    ro->name = NULL; /* name dies here; the connection keeps a copy */
    return rc;
}

/* Frees a connection made by cluster_conn or worker_conn (NULL: nothing),
 * detached first from what reconnects it: its route, or the sentinel. */
static void
conn_free(struct drv_worker *w, struct drv_redis_cluster_route *route,
          struct drv_redis *r)
{
    if (route != NULL)
        drv_redis_cluster_detach(route);
    if (w->sentinel != NULL && r != NULL)
        drv_redis_sentinel_detach(w->sentinel, r);
    drv_redis_free(r);
}

/* Each queue's pair of connections, to the master of its slot. */
static int
cluster_queue_conns(struct drv_worker *w, struct drv_redis_opts *ro,
                    struct drv_err *err)
{
    char name[200];
    size_t i;
    int rc;

    for (i = 0; i < w->nqueues; i++) {
        struct wqueue *q = &w->queues[i];
        int slot = drv_redis_cluster_slot(q->keys.jobs,
                                          strlen(q->keys.jobs));

        q->conn.magic = WQCONN_MAGIC;
        q->conn.w = w;
        q->conn.qi = (int)i;
        snprintf(name, sizeof name, "drover-cmd-%d-q%zu", (int)getpid(), i);
        rc = cluster_conn(w, ro, slot, name, on_qcmd_state, &q->conn,
                          &q->rcmd, &q->cmd, err);
        if (rc < 0)
            return rc;
        snprintf(name, sizeof name, "drover-fetch-%d-q%zu", (int)getpid(),
                 i);
        rc = cluster_conn(w, ro, slot, name, on_blk_state, w, &q->rblk,
                          &q->blk, err);
        if (rc < 0)
            return rc;
        q->fetch = q->cmd;
    }
    return 0;
}

/* -------------------------------------------------------------- create */

int
drv_worker_create(const struct drv_worker_opts *o, struct drv_worker **out,
                  struct drv_err *err)
{
    const struct drv_config *cfg = o->cfg;
    struct drv_worker *w = NULL;
    struct drv_redis_opts ro;
    struct drv_redis_tls tls;
    struct drv_pool_opts po;
    size_t i;
    int slot = -1, rc;

    *out = NULL;
    DRV_ALLOC_OBJ(w, DRV_WORKER_MAGIC);
    w->cfg = cfg;
    w->dead_bound.max = cfg->worker.dead_max;
    w->dead_bound.max_age_ms = cfg->worker.dead_max_age_ms;
    w->loop = o->loop;
    w->base = drv_loop_base(o->loop);
    w->on_stopped = o->on_stopped;
    w->ctx = o->ctx;
    w->started_ms = drv_clock_unix_ms();
    if (gethostname(w->host, sizeof w->host) != 0)
        snprintf(w->host, sizeof w->host, "unknown");
    w->host[sizeof w->host - 1] = '\0';
    if (o->id != NULL)
        snprintf(w->id, sizeof w->id, "%s", o->id);
    else
        snprintf(w->id, sizeof w->id, "%s:%d:%04x", w->host, (int)getpid(),
                 (unsigned)(drv_random64() & 0xffff));

    memset(&ro, 0, sizeof ro);
    ro.url = cfg->redis.url;
    drv_config_redis_tls(cfg, &tls);
    ro.tls = &tls;
    if (cfg->redis.sentinel.master != NULL) {
        rc = sentinel_create(w, o->loop, &tls, err);
        if (rc < 0)
            goto fail;
        drv_redis_sentinel_conn_opts(w->sentinel, &ro);
    }
    ro.ctx = w;
    /* a larger job is refused anyway: never copied out of the reader */
    ro.max_string_bytes = (size_t)cfg->worker.max_job_bytes;
    if (cfg->redis.cluster.nnodes > 0) {
        /* cmd and blk serve the registry: routed to its key's slot */
        char *wk = drv_queue_workers_key(cfg->redis.prefix);

        slot = drv_redis_cluster_slot(wk, strlen(wk));
        free(wk);
        rc = cluster_create(w, o->loop, &tls, err);
        if (rc < 0)
            goto fail;
    }
    rc = worker_conn(w, &ro, slot, "cmd", on_cmd_state, &w->rreg_cmd,
                     &w->cmd, err);
    if (rc < 0)
        goto fail;
    rc = worker_conn(w, &ro, slot, "fetch", on_blk_state, &w->rreg_blk,
                     &w->blk, err);
    if (rc < 0)
        goto fail;
    w->scripts[SCRIPT_SETTLE] = drv_redis_script_create(
        drv_queue_settle_script.text, strlen(drv_queue_settle_script.text));
    w->scripts[SCRIPT_MOVER] = drv_redis_script_create(
        drv_queue_mover_script.text, strlen(drv_queue_mover_script.text));
    w->scripts[SCRIPT_RECLAIM] = drv_redis_script_create(
        drv_queue_reclaim_script.text, strlen(drv_queue_reclaim_script.text));
    w->scripts[SCRIPT_RENEW] = drv_redis_script_create(
        drv_queue_renew_script.text, strlen(drv_queue_renew_script.text));
    w->scripts[SCRIPT_PREPARE] = drv_redis_script_create(
        drv_queue_prepare_script.text, strlen(drv_queue_prepare_script.text));

    memset(&po, 0, sizeof po);
    po.nthreads = cfg->worker.threads;
    po.name = "drv-pool";
    rc = drv_pool_create(o->loop, &po, &w->pool);
    if (rc < 0) {
        drv_err_set(err, rc, "thread pool: %s", drv_strerror(rc));
        goto fail;
    }
    w->procs = drv_proc_mgr_create(o->loop);
    rc = drv_sem_create(o->loop, cfg->worker.concurrency, &w->sem);
    if (rc == 0)
        rc = drv_sem_create(o->loop, cfg->worker.threads, &w->thread_sem);
    if (rc < 0) {
        drv_err_set(err, rc, "semaphore: %s", drv_strerror(rc));
        goto fail;
    }
    w->hhost.magic = DRV_HANDLER_HOST_MAGIC;
    w->hhost.loop = o->loop;
    w->hhost.procs = w->procs;
    w->hhost.redis_url = cfg->redis.url;
    w->hhost.config_file = cfg->file;
    w->hhost.max_job_bytes = cfg->worker.max_job_bytes;
    w->hhost.concurrency = cfg->worker.concurrency;
    w->hhost.http_idle_ms = cfg->worker.http_idle_timeout_ms;
    w->ntypes = cfg->njobs;
    w->types = drv_xcalloc(w->ntypes ? w->ntypes : 1, sizeof *w->types);
    for (i = 0; i < cfg->njobs; i++) {
        rc = drv_htype_load(&w->types[i].ht, &w->hhost, cfg->jobs[i], err);
        if (rc < 0)
            goto fail;
        if (cfg->jobs[i]->concurrency > 0) {
            rc = drv_sem_create(o->loop, cfg->jobs[i]->concurrency,
                                &w->types[i].sem);
            if (rc < 0) {
                drv_err_set(err, rc, "semaphore: %s", drv_strerror(rc));
                goto fail;
            }
        }
    }
    w->nqueues = cfg->nqueues;
    w->queues = drv_xcalloc(w->nqueues, sizeof *w->queues);
    w->qkeys = drv_xcalloc(w->nqueues, sizeof *w->qkeys);
    for (i = 0; i < cfg->nqueues; i++) {
        struct wqueue *q = &w->queues[i];

        drv_queue_keys_init(&q->keys, cfg->redis.prefix, cfg->queues[i]);
        if (w->cluster == NULL) {
            q->cmd = w->cmd;
            q->blk = w->blk;
            q->fetch = w->blk;
        }
    }
    if (w->cluster != NULL) {
        rc = cluster_queue_conns(w, &ro, err);
        if (rc < 0)
            goto fail;
    }
    drv__worker_weighted_init(w);
    drv__worker_due_init(w);
    rc = drv__worker_metrics_init(w, err);
    if (rc < 0)
        goto fail;
    w->workers_key = drv_queue_workers_key(cfg->redis.prefix);
    drv__worker_schedules_init(w);
    drv__admit_init(w);
    drv__worker_graph_init(w);
    w->defer_ev = event_new(w->base, -1, 0, on_defer_ev, w);
    DRV_AN(w->defer_ev);
    trace_open(w);
    *out = w;
    return 0;
fail:
    drv_worker_free(w);
    return rc;
}

/* ---------------------------------------------------------------- tick */

/* The next tick, on the TICK_MS grid of the monotonic clock: the lag
 * meter's instants, so both wake the process once. An idle worker
 * (drv__worker_idle_until) ticks on the IDLE_TICK_MS grid, where the
 * paused flags are read, and the lag meter with it (RIDE_TICK_MS while
 * those reads ride on the blocking read); a periodic call that
 * falls due before then brings the tick forward (on the TICK_MS grid),
 * and work arriving brings back the TICK_MS grid at once
 * (drv__worker_kick). */
static void
tick_arm(struct drv_worker *w)
{
    int64_t now = drv_clock_mono_ns(), at, until = drv__worker_idle_until(w);
    int64_t grid = w->upkeep_rides ? RIDE_TICK_MS : IDLE_TICK_MS;
    struct timeval tv;

    w->tick_idle = until >= 0;
    drv_loop_set_lag_interval(w->loop, w->tick_idle ? grid : 0);
    if (!w->tick_idle) {
        tv = drv_loop_grid_delay(now, TICK_MS * DRV_NS_PER_MS, NULL);
        DRV_AZ(event_add(w->tick_ev, &tv));
        return;
    }
    (void)drv_loop_grid_delay(now, grid * DRV_NS_PER_MS, &at);
    if (until < at) {
        /* the first TICK_MS instant at or after until, and after now */
        (void)drv_loop_grid_delay((until > now ? until : now) - 1,
                                  TICK_MS * DRV_NS_PER_MS, &at);
        if (at <= now)
            (void)drv_loop_grid_delay(now, TICK_MS * DRV_NS_PER_MS, &at);
    }
    tv = drv_clock_tv_from_ns(at - now);
    DRV_AZ(event_add(w->tick_ev, &tv));
}

void
drv__worker_tick_rearm(struct drv_worker *w)
{
    if (w->tick_idle && w->tick_ev != NULL)
        tick_arm(w);
}

static void
on_tick(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv_worker *w;

    DRV_CAST(w, arg, DRV_WORKER_MAGIC);
    drv__worker_maintain(w, drv_clock_mono_ns());
    tick_arm(w); /* after the calls: their next times are set */
    if (w->trace != NULL)
        fflush(w->trace);
    drv__worker_kick(w);
}

int
drv_worker_start(struct drv_worker *w)
{
    DRV_CHECK_OBJ(w, DRV_WORKER_MAGIC);
    DRV_ASSERT(w->state == W_NEW);
    w->state = W_RUNNING;
    w->tick_ev = evtimer_new(w->base, on_tick, w);
    DRV_AN(w->tick_ev);
    tick_arm(w);
    DRV_LOG_INFO("worker started", "worker=%s queues=%zu concurrency=%d "
                 "threads=%d", w->id, w->nqueues, w->cfg->worker.concurrency,
                 w->cfg->worker.threads);
    return 0;
}

/* ---------------------------------------------------------------- stop */

static void
on_stop_ev(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv_worker *w;

    DRV_CAST(w, arg, DRV_WORKER_MAGIC);
    if (w->tick_ev != NULL)
        event_del(w->tick_ev);
    if (w->drain_ev != NULL)
        event_del(w->drain_ev);
    DRV_LOG_INFO("worker stopped", "worker=%s hard=%d", w->id, w->hard);
    w->on_stopped(w, w->hard, w->ctx);
}

static void
deliver_stopped(struct drv_worker *w)
{
    struct timeval tv = {0, 0};

    if (w->stop_ev != NULL)
        return;
    w->state = W_STOPPED;
    w->stop_ev = evtimer_new(w->base, on_stop_ev, w);
    DRV_AN(w->stop_ev);
    DRV_AZ(event_add(w->stop_ev, &tv));
}

static void
on_unregistered(struct drv_redis *r DRV_UNUSED, int status,
                const redisReply *reply DRV_UNUSED, void *ctx)
{
    struct drv_worker *w = drv__worker_of_reply(status, ctx);

    if (w != NULL)
        deliver_stopped(w);
}

/* After the drain deadline: every job still live only waits for an
 * outcome Redis refuses to take (count them into *n). */
static int
only_refused_left(struct drv_worker *w, int *n)
{
    struct wjob *j;

    *n = 0;
    for (j = LIST_FIRST(&w->live); j != NULL; j = LIST_NEXT(j, link), (*n)++)
        if (!j->graph_refused && (!j->settle_pending ||
                                  w->queues[j->qi].settle_fails == 0))
            return 0;
    return 1;
}

void
drv__worker_check_stopped(struct drv_worker *w)
{
    struct drv_argv del;
    int n;

    if (w->state != W_DRAINING || w->stop_ev != NULL)
        return;
    if (!LIST_EMPTY(&w->live) && w->drain_expired && only_refused_left(w, &n) &&
        !w->fetch_inflight) {
        /* Redis refuses them: stop anyway; their entries stay pending
         * and another worker reclaims them (at-least-once) */
        DRV_LOG_WARN("stopping with outcomes Redis refused: their entries "
                     "stay pending and will be reclaimed", "worker=%s "
                     "jobs=%d", w->id, n);
        deliver_stopped(w);
        return;
    }
    if (!LIST_EMPTY(&w->live))
        return;
    /* a pool job abandoned at its timeout still runs: give it until the
     * drain deadline to return, so plugins can shut down cleanly */
    if (w->inflight > 0 && !w->drain_expired)
        return;
    if (w->fetch_inflight)
        return; /* a read may still deliver entries: wait for it */
    /* drained: leave the registry, then report */
    w->state = W_STOPPED;
    drv_argv_init(&del);
    drv_queue_worker_remove(&del, w->workers_key, w->id, strlen(w->id));
    if (drv_redis_state(w->cmd) != DRV_REDIS_READY ||
        drv_redis_send(w->cmd, 0, &del, on_unregistered, w) < 0)
        deliver_stopped(w);
    drv_argv_fini(&del);
}

static void
on_drain_deadline(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED,
                  void *arg)
{
    struct drv_worker *w;

    DRV_CAST(w, arg, DRV_WORKER_MAGIC);
    w->drain_expired = 1;
    DRV_LOG_WARN("shutdown timeout: cancelling running jobs",
                 "worker=%s live=%d", w->id, w->stats.live);
    drv__worker_cancel_all(w, 0);
    drv__worker_kick(w);
}

static void
on_unblocked(struct drv_redis *r DRV_UNUSED, int status DRV_UNUSED,
             const redisReply *reply DRV_UNUSED, void *ctx DRV_UNUSED)
{
}

void
drv_worker_stop(struct drv_worker *w, int hard)
{
    struct timeval tv;

    DRV_CHECK_OBJ(w, DRV_WORKER_MAGIC);
    if (hard) {
        w->hard = 1;
        deliver_stopped(w);
        return;
    }
    if (w->state != W_RUNNING)
        return;
    w->state = W_DRAINING;
    DRV_LOG_INFO("graceful stop: draining", "worker=%s live=%d "
                 "shutdown_timeout_ms=%lld", w->id, w->stats.live,
                 (long long)w->cfg->worker.shutdown_timeout_ms);
    /* on a cluster the per-queue BLOCK reads end within their short BLOCK
     * time by themselves */
    if (w->fetch_inflight && w->fetch_blocking && !w->unblock_sent &&
        w->cluster == NULL) {
        w->unblock_sent = 1;
        drv_redis_unblock(w->cmd, w->blk, on_unblocked, w);
    }
    /* fetched but not started: put back at once */
    drv__worker_cancel_all(w, 1);
    tv = drv_clock_tv_from_ns(w->cfg->worker.shutdown_timeout_ms *
                              DRV_NS_PER_MS);
    w->drain_ev = evtimer_new(w->base, on_drain_deadline, w);
    DRV_AN(w->drain_ev);
    DRV_AZ(event_add(w->drain_ev, &tv));
    drv__worker_kick(w);
}

/* ---------------------------------------------------------------- free */

void
drv_worker_free(struct drv_worker *w)
{
    size_t i;

    if (DRV_NO_OBJ(w, DRV_WORKER_MAGIC))
        return;
    /* jobs still live (hard stop): their entries stay pending in Redis */
    drv__worker_cancel_all(w, 0);
    drv__job_detach_all(w);
    drv__worker_metrics_fini(w);
    drv_proc_mgr_free(w->procs);
    w->procs = NULL;
    drv_pool_free(w->pool);
    w->pool = NULL;
    while (!LIST_EMPTY(&w->batches)) {
        struct wbatch *b = LIST_FIRST(&w->batches);
        LIST_REMOVE(b, link);
        drv_tg_free(b->tg);
        DRV_FREE_OBJ(b);
    }
    if (w->queues != NULL)
        drv__worker_due_fini(w);
    for (i = 0; i < w->nqueues; i++) {
        struct wqueue *q = &w->queues[i];

        if (w->cluster != NULL) {
            conn_free(w, q->rcmd, q->cmd);
            conn_free(w, q->rblk, q->blk);
        }
        free(q->pend);
        drv_queue_keys_fini(&q->keys);
    }
    free(w->queues);
    free(w->qkeys);
    drv__worker_weighted_fini(w);
    for (i = 0; i < w->ntypes; i++) {
        drv_htype_unload(&w->types[i].ht);
        drv_sem_free(w->types[i].sem);
    }
    drv_handler_host_fini(&w->hhost);
    free(w->types);
    drv_sem_free(w->sem);
    drv_sem_free(w->thread_sem);
    conn_free(w, w->rreg_cmd, w->cmd);
    conn_free(w, w->rreg_blk, w->blk);
    drv__worker_schedules_fini(w); /* its runs were cancelled above */
    drv__admit_fini(w);
    drv__worker_graph_fini(w);
    drv_redis_sentinel_free(w->sentinel);
    drv_redis_cluster_free(w->cluster);
    for (i = 0; i < DRV_ARRAY_LEN(w->scripts); i++)
        drv_redis_script_free(w->scripts[i]);
    free(w->workers_key);
    drv_loop_event_free(w->tick_ev);
    drv_loop_event_free(w->defer_ev);
    drv_loop_event_free(w->drain_ev);
    drv_loop_event_free(w->stop_ev);
    if (w->trace != NULL)
        fclose(w->trace);
    DRV_FREE_OBJ(w);
}

void
drv_worker_get_stats(const struct drv_worker *w, struct drv_worker_stats *out)
{
    *out = w->stats;
    out->unreleased = w->inflight;
}

const char *
drv_worker_id(const struct drv_worker *w)
{
    return w->id;
}
