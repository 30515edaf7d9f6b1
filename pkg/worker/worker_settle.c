/*
 * worker_settle.c -- writing outcomes, and the periodic upkeep of the
 * queues: delayed mover, reclaim, lease renewal, pause checks, registry.
 *
 * DESIGN
 * An outcome becomes a settle op queued on its queue (drv__worker_settle_
 * queue). The deferred pass (drv__worker_kick) sends, per queue, one
 * settle script call holding every op queued since the last one (at most
 * SETTLE_MAX), so at load many jobs settle in one round trip while a lone
 * job settles on the next loop turn. One call per queue is out at a time;
 * ops that arrive meanwhile wait for the next one (coalescing).
 *
 * A failed call (connection lost, timeout) puts its jobs back in the
 * queue's list; they are sent again when the connection is READY. The
 * script checks ownership, so a resend after an unknown outcome cannot
 * apply twice: the second run finds the entry acked and reports LOST.
 * Until settled a job stays on the live list, so its lease is renewed and
 * no other worker reclaims it while we retry.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/log.h"
#include "drover/redis.h"
#include "drover/sem.h"
#include "worker_int.h"

#define SETTLE_MAX 512
#define MOVER_LIMIT 1000
#define MOVER_MS 100
#define PAUSE_MS 500
#define BEAT_MS 5000

/* ------------------------------------------------------------- settle */

void
drv__worker_settle_queue(struct wjob *j)
{
    struct drv_worker *w = j->w;
    struct wqueue *q = &w->queues[j->qi];

    DRV_ASSERT(!j->settle_pending);
    if (q->npend == q->cappend) {
        q->cappend = q->cappend ? q->cappend * 2 : 64;
        q->pend = drv_xrealloc(q->pend, (size_t)q->cappend * sizeof *q->pend);
    }
    q->pend[q->npend++] = j;
    j->settle_pending = 1;
    drv__worker_kick(w);
}

/* A settle call in flight: the jobs whose ops it carries. */
struct settle_call {
    unsigned magic;
#define SETTLE_CALL_MAGIC 0x5e771e00U
    struct drv_worker *w;   /* borrowed */
    int qi;                 /* queue */
    struct wjob **jobs;     /* owned array of borrowed jobs */
    int n;
};

/* The job's settle side is done: off the live list, drop its reference. */
void
drv__worker_job_settled(struct wjob *j)
{
    struct drv_worker *w = j->w;

    j->settle_pending = 0;
    if (j->prev != NULL)
        j->prev->next = j->next;
    else
        w->live = j->next;
    if (j->next != NULL)
        j->next->prev = j->prev;
    j->prev = j->next = NULL;
    w->stats.live--;
    drv__worker_job_unref(j);
}

static void
on_settled(struct drv_redis *r, int status, const redisReply *reply,
           void *ctx)
{
    struct settle_call *c;
    struct drv_worker *w;
    struct wqueue *q;
    struct drv_err err;
    int *codes = NULL;
    int i, rc;

    (void)r;
    DRV_CAST(c, ctx, SETTLE_CALL_MAGIC);
    if (status == -ECANCELED) {
        /* the worker is being freed: the entries stay pending in Redis */
        free(c->jobs);
        c->magic = 0;
        free(c);
        return;
    }
    w = c->w;
    q = &w->queues[c->qi];
    q->settle_inflight = 0;
    rc = drv_redis_result(status, reply, &err);
    if (rc == 0) {
        codes = drv_xcalloc((size_t)c->n, sizeof *codes);
        rc = drv_settle_parse(reply, c->n, codes, &err);
    }
    if (rc < 0) {
        /* unknown whether it applied: keep the jobs and send again */
        if (rc != DRV_EDOWN)
            DRV_LOG_WARN("settle failed: will retry", "queue=%s jobs=%d "
                         "error=\"%s\"", q->keys.name, c->n, err.msg);
        for (i = 0; i < c->n; i++) {
            c->jobs[i]->settle_pending = 0;
            drv__worker_settle_queue(c->jobs[i]);
        }
    } else {
        for (i = 0; i < c->n; i++) {
            struct wjob *j = c->jobs[i];
            if (codes[i] == DRV_QUEUE_LOST) {
                w->stats.lost++;
                DRV_LOG_WARN("lost lease: outcome not written", "queue=%s "
                             "job=%s id=%s entry=%s", q->keys.name,
                             j->type ? j->type->cfg->name : "-",
                             j->job->id, j->job->entry_id);
            } else if (codes[i] == DRV_QUEUE_GONE) {
                DRV_LOG_WARN("payload gone: entry acked", "queue=%s id=%s",
                             q->keys.name, j->job->id);
            }
            drv__worker_job_settled(j);
        }
    }
    free(codes);
    free(c->jobs);
    c->magic = 0;
    free(c);
    drv__worker_kick(w);
}

static void
flush_queue(struct drv_worker *w, int qi)
{
    struct wqueue *q = &w->queues[qi];
    struct drv_script_call call;
    struct settle_call *c;
    int i, n;

    if (q->settle_inflight || q->npend == 0 ||
        drv_redis_state(w->cmd) != DRV_REDIS_READY)
        return;
    n = q->npend < SETTLE_MAX ? q->npend : SETTLE_MAX;
    DRV_ALLOC_OBJ(c, SETTLE_CALL_MAGIC);
    c->w = w;
    c->qi = qi;
    c->n = n;
    c->jobs = drv_xmalloc((size_t)n * sizeof *c->jobs);
    drv_settle_init(&call, &q->keys, w->id, drv_clock_unix_ms());
    for (i = 0; i < n; i++) {
        c->jobs[i] = q->pend[i];
        drv_settle_add(&call, &q->keys, &q->pend[i]->op);
    }
    memmove(q->pend, q->pend + n, (size_t)(q->npend - n) * sizeof *q->pend);
    q->npend -= n;
    q->settle_inflight = 1;
    if (drv__worker_script(w, SCRIPT_SETTLE, &call, on_settled, c) < 0) {
        q->settle_inflight = 0;
        for (i = 0; i < n; i++) {
            c->jobs[i]->settle_pending = 0;
            drv__worker_settle_queue(c->jobs[i]);
        }
        free(c->jobs);
        free(c);
    }
}

void
drv__worker_settle_flush(struct drv_worker *w)
{
    size_t i;

    for (i = 0; i < w->nqueues; i++)
        flush_queue(w, (int)i);
}

/* Send a script call built by pkg/queue on the command connection. */
int
drv__worker_script(struct drv_worker *w, int which,
                   struct drv_script_call *call, drv_redis_reply_fn *cb,
                   void *ctx)
{
    int argc = call->keys.argc + call->args.argc;
    const char **argv = drv_xmalloc((size_t)(argc ? argc : 1) *
                                    sizeof *argv);
    size_t *lens = drv_xmalloc((size_t)(argc ? argc : 1) * sizeof *lens);
    int i, rc;

    for (i = 0; i < call->keys.argc; i++) {
        argv[i] = call->keys.argv[i];
        lens[i] = call->keys.argvlen[i];
    }
    for (i = 0; i < call->args.argc; i++) {
        argv[call->keys.argc + i] = call->args.argv[i];
        lens[call->keys.argc + i] = call->args.argvlen[i];
    }
    rc = drv_redis_eval(w->cmd, w->scripts[which], 0, call->keys.argc, argc,
                        argv, lens, cb, ctx);
    free(argv);
    free(lens);
    drv_script_call_fini(call);
    return rc;
}

/* ------------------------------------------------------------- upkeep */

/* Per-queue upkeep calls carry the worker and the queue index. */
struct qctx {
    unsigned magic;
#define QCTX_MAGIC 0x0c7c0c7cU
    struct drv_worker *w;
    int qi;
};

static struct qctx *
qctx_new(struct drv_worker *w, int qi)
{
    struct qctx *c;

    DRV_ALLOC_OBJ(c, QCTX_MAGIC);
    c->w = w;
    c->qi = qi;
    return c;
}

static void
qctx_free(struct qctx *c)
{
    c->magic = 0;
    free(c);
}

static void
on_moved(struct drv_redis *r, int status, const redisReply *reply, void *ctx)
{
    struct qctx *c;
    struct drv_worker *w;
    struct drv_err err;

    (void)r;
    DRV_CAST(c, ctx, QCTX_MAGIC);
    if (status == -ECANCELED) {
        qctx_free(c);
        return;
    }
    w = c->w;
    w->queues[c->qi].mover_inflight = 0;
    if (drv_redis_result(status, reply, &err) < 0) {
        if (status != DRV_EDOWN)
            DRV_LOG_WARN("delayed mover failed", "queue=%s error=\"%s\"",
                         w->queues[c->qi].keys.name, err.msg);
    } else if (reply->type == REDIS_REPLY_INTEGER && reply->integer > 0) {
        DRV_LOG_DEBUG("delayed jobs due", "queue=%s n=%lld",
                      w->queues[c->qi].keys.name, reply->integer);
        if (reply->integer >= MOVER_LIMIT)
            w->next_mover_ns = 0; /* more are due: again next tick */
        w->fetch_hot = 1;
    }
    qctx_free(c);
}

static void
run_mover(struct drv_worker *w)
{
    struct drv_script_call call;
    size_t i;

    for (i = 0; i < w->nqueues; i++) {
        struct qctx *c;

        if (w->queues[i].mover_inflight)
            continue;
        drv_queue_mover(&call, &w->queues[i].keys, drv_clock_unix_ms(),
                        MOVER_LIMIT);
        c = qctx_new(w, (int)i);
        w->queues[i].mover_inflight = 1;
        if (drv__worker_script(w, SCRIPT_MOVER, &call, on_moved, c) < 0) {
            w->queues[i].mover_inflight = 0;
            qctx_free(c);
        }
    }
}

static void
on_reclaimed(struct drv_redis *r, int status, const redisReply *reply,
             void *ctx)
{
    struct qctx *c;
    struct drv_worker *w;
    struct drv_err err;
    int n;

    (void)r;
    DRV_CAST(c, ctx, QCTX_MAGIC);
    if (status == -ECANCELED) {
        qctx_free(c);
        return;
    }
    w = c->w;
    w->queues[c->qi].reclaim_inflight = 0;
    if (drv_redis_result(status, reply, &err) < 0) {
        if (status != DRV_EDOWN)
            DRV_LOG_WARN("reclaim failed", "queue=%s error=\"%s\"",
                         w->queues[c->qi].keys.name, err.msg);
        qctx_free(c);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
        qctx_free(c);
        return;
    }
    if (reply->element[1]->integer > 0)
        DRV_LOG_WARN("poison jobs dead-lettered", "queue=%s n=%lld",
                     w->queues[c->qi].keys.name, reply->element[1]->integer);
    n = drv__worker_entries(w, reply->element[0], 0, c->qi);
    if (n > 0)
        DRV_LOG_INFO("reclaimed jobs of a dead worker", "queue=%s n=%d",
                     w->queues[c->qi].keys.name, n);
    qctx_free(c);
}

static void
run_reclaim(struct drv_worker *w)
{
    struct drv_script_call call;
    size_t i;
    int free_permits = drv__worker_free_permits(w);

    for (i = 0; i < w->nqueues && free_permits > 0; i++) {
        struct qctx *c;
        int n = free_permits < w->cfg->worker.batch ? free_permits
                                                    : w->cfg->worker.batch;

        if (w->queues[i].reclaim_inflight || w->queues[i].paused)
            continue;
        drv_queue_reclaim(&call, &w->queues[i].keys, w->id,
                          w->cfg->worker.visibility_timeout_ms, n,
                          w->cfg->worker.max_deliveries, drv_clock_unix_ms());
        c = qctx_new(w, (int)i);
        w->queues[i].reclaim_inflight = 1;
        if (drv__worker_script(w, SCRIPT_RECLAIM, &call, on_reclaimed, c) <
            0) {
            w->queues[i].reclaim_inflight = 0;
            qctx_free(c);
        }
    }
}

static void
on_renewed(struct drv_redis *r, int status, const redisReply *reply,
           void *ctx)
{
    struct qctx *c;
    struct drv_worker *w;
    struct drv_err err;
    size_t i;
    struct wjob *j;

    (void)r;
    DRV_CAST(c, ctx, QCTX_MAGIC);
    if (status == -ECANCELED) {
        qctx_free(c);
        return;
    }
    w = c->w;
    w->renew_inflight--;
    if (drv_redis_result(status, reply, &err) < 0 ||
        reply->type != REDIS_REPLY_ARRAY) {
        if (status != DRV_EDOWN)
            DRV_LOG_WARN("lease renewal failed", "queue=%s error=\"%s\"",
                         w->queues[c->qi].keys.name, err.msg);
        qctx_free(c);
        return;
    }
    for (i = 0; i < reply->elements; i++) {
        const redisReply *id = reply->element[i];
        for (j = w->live; j != NULL; j = j->next) {
            if (j->qi != c->qi || j->lost ||
                strcmp(j->job->entry_id, id->str) != 0)
                continue;
            DRV_LOG_WARN("lease lost: job reclaimed by another worker",
                         "queue=%s id=%s entry=%s",
                         w->queues[c->qi].keys.name, j->job->id,
                         j->job->entry_id);
            j->lost = 1;
            drv__worker_cancel_job(j);
            break;
        }
    }
    qctx_free(c);
}

static void
run_renew(struct drv_worker *w)
{
    size_t i;

    for (i = 0; i < w->nqueues; i++) {
        struct drv_script_call call;
        struct wjob *j;
        struct qctx *c;
        int n = 0;

        drv_queue_renew(&call, &w->queues[i].keys, w->id);
        for (j = w->live; j != NULL; j = j->next)
            if (j->qi == (int)i && !j->lost) {
                drv_argv_adds(&call.args, j->job->entry_id);
                n++;
            }
        if (n == 0) {
            drv_script_call_fini(&call);
            continue;
        }
        c = qctx_new(w, (int)i);
        w->renew_inflight++;
        if (drv__worker_script(w, SCRIPT_RENEW, &call, on_renewed, c) < 0) {
            w->renew_inflight--;
            qctx_free(c);
        }
    }
}

static void
on_paused(struct drv_redis *r, int status, const redisReply *reply,
          void *ctx)
{
    struct drv_worker *w;
    size_t i;

    (void)r;
    if (status == -ECANCELED)
        return;
    DRV_CAST(w, ctx, DRV_WORKER_MAGIC);
    w->pause_inflight = 0;
    if (status < 0 || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != w->nqueues)
        return;
    w->pause_known = 1; /* fetching waits for this first answer */
    for (i = 0; i < w->nqueues; i++) {
        int p = reply->element[i]->type != REDIS_REPLY_NIL;
        if (p != w->queues[i].paused)
            DRV_LOG_INFO(p ? "queue paused" : "queue resumed", "queue=%s",
                         w->queues[i].keys.name);
        w->queues[i].paused = p;
    }
    drv__worker_kick(w);
}

static void
check_paused(struct drv_worker *w)
{
    struct drv_argv a;
    size_t i;

    drv_argv_init(&a);
    drv_argv_adds(&a, "MGET");
    for (i = 0; i < w->nqueues; i++)
        drv_argv_adds(&a, w->queues[i].keys.paused);
    w->pause_inflight = 1;
    if (drv_redis_command(w->cmd, a.argc, (const char *const *)a.argv,
                          a.argvlen, on_paused, w) < 0)
        w->pause_inflight = 0;
    drv_argv_fini(&a);
}

static void
on_beat(struct drv_redis *r, int status, const redisReply *reply, void *ctx)
{
    struct drv_worker *w;

    (void)r;
    (void)reply;
    if (status == -ECANCELED)
        return;
    DRV_CAST(w, ctx, DRV_WORKER_MAGIC);
    w->beat_inflight = 0;
}

static void
on_workers(struct drv_redis *r, int status, const redisReply *reply,
           void *ctx)
{
    struct drv_worker *w;
    size_t i;
    int64_t now = drv_clock_unix_ms();

    (void)r;
    if (status == -ECANCELED)
        return;
    DRV_CAST(w, ctx, DRV_WORKER_MAGIC);
    if (status < 0 || reply->type != REDIS_REPLY_ARRAY)
        return;
    /* remove entries of workers whose beat is stale */
    for (i = 0; i + 1 < reply->elements; i += 2) {
        if (drv_queue_worker_line_stale(reply->element[i + 1]->str,
                                        reply->element[i + 1]->len, now)) {
            DRV_LOG_INFO("removing stale worker entry", "worker=%s",
                         reply->element[i]->str);
            drv_redis_cmd(w->cmd, on_beat, w, "HDEL", w->workers_key,
                          reply->element[i]->str, (char *)NULL);
        }
    }
}

static void
heartbeat(struct drv_worker *w)
{
    char qs[512];
    struct drv_buf line;
    size_t i, o = 0;

    qs[0] = '\0';
    for (i = 0; i < w->nqueues && o + 2 < sizeof qs; i++)
        o += (size_t)snprintf(qs + o, sizeof qs - o, "%s%s", i ? "," : "",
                              w->queues[i].keys.name);
    drv_buf_init(&line);
    drv_queue_worker_format(&(struct drv_queue_worker){
        .host = w->host, .pid = getpid(), .started_ms = w->started_ms,
        .queues = qs, .busy = w->stats.running,
        .beat_ms = drv_clock_unix_ms()}, &line);
    w->beat_inflight = 1;
    if (drv_redis_cmd(w->cmd, on_beat, w, "HSET", w->workers_key, w->id,
                      line.data, (char *)NULL) < 0)
        w->beat_inflight = 0;
    drv_buf_fini(&line);
    drv_redis_cmd(w->cmd, on_workers, w, "HGETALL", w->workers_key,
                  (char *)NULL);
}

void
drv__worker_maintain(struct drv_worker *w, int64_t now)
{
    int64_t vt = w->cfg->worker.visibility_timeout_ms * DRV_NS_PER_MS;

    if (drv_redis_state(w->cmd) != DRV_REDIS_READY)
        return;
    if (!w->groups_ready && w->groups_pending <= 0 &&
        now >= w->next_reclaim_ns) {
        /* a group creation failed: try again now and then */
        drv__worker_create_groups(w);
        return;
    }
    if (!w->groups_ready)
        return;
    if (now >= w->next_pause_ns && !w->pause_inflight) {
        check_paused(w);
        w->next_pause_ns = now + PAUSE_MS * DRV_NS_PER_MS;
    }
    if (now >= w->next_mover_ns && w->state == W_RUNNING) {
        run_mover(w);
        w->next_mover_ns = now + MOVER_MS * DRV_NS_PER_MS;
    }
    if (now >= w->next_renew_ns && w->renew_inflight == 0) {
        run_renew(w);
        w->next_renew_ns = now + vt / 3;
    }
    if (now >= w->next_reclaim_ns && w->state == W_RUNNING) {
        run_reclaim(w);
        /* often enough that a dead worker's job waits little more than
         * visibility_timeout; at least every second, at most every 10 s */
        w->next_reclaim_ns = now + (vt / 4 < DRV_NS_PER_SEC ? DRV_NS_PER_SEC
                                    : vt / 4 > 10 * DRV_NS_PER_SEC
                                    ? 10 * DRV_NS_PER_SEC : vt / 4);
    }
    if (now >= w->next_beat_ns && !w->beat_inflight &&
        w->state == W_RUNNING) {
        heartbeat(w);
        w->next_beat_ns = now + BEAT_MS * DRV_NS_PER_MS;
    }
}
