/*
 * upkeep.c -- the periodic work that keeps the queues healthy, run from
 * the worker's tick (drv__worker_maintain), each on its own schedule and
 * never twice at once:
 *
 *   pause     every PAUSE_MS: which queues are paused (fetching waits for
 *             the first answer)
 *   mover     due delayed jobs back to their stream, on the queues that
 *             have some falling due (upkeep_due.c says which and when)
 *   renew     every visibility_timeout / 3: refresh the lease of every
 *             live job; an entry found owned by another worker cancels
 *             its job (lease lost: its outcome is dropped)
 *   reclaim   every visibility_timeout / 4 (1 s .. 10 s) on a queue with
 *             entries pending, every visibility_timeout on one without
 *             (upkeep_due.c): claim entries of dead workers, as many as
 *             there are free permits; the claimed jobs are admitted like
 *             fetched ones (run.c)
 *   prepare   a queue not ready (after a connect, a lost group, a key
 *             of the wrong type): again every second (worker.c)
 *   registry  every BEAT_MS: this worker's line in the workers hash, and
 *             removal of stale lines (DRV_QUEUE_WORKER_STALE_MS)
 *   schedules every tick: the due schedule ticks (schedule.c)
 *   graph     Redis Cluster only: the boxes of graph hand-offs between
 *             slots, every visibility_timeout / 4 (graph_xslot.c)
 *
 * The tick comes every TICK_MS while anything runs or waits; an idle
 * worker (drv__worker_idle_until) ticks on the PAUSE_MS grid, and sooner
 * only when one of the times above falls due. While its paused flags'
 * read, the due index's read and the heartbeat ride on the blocking read
 * (drv__worker_upkeep_ride), the tick does not do them and comes every
 * 5 s (worker.c), or when a mover, look, reclaim or renewal falls due.
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

#define MOVER_LIMIT 1000
#define PAUSE_MS 500
#define BEAT_MS 5000

/* ------------------------------------------------------------- upkeep */

/* A per-queue upkeep call: the worker, the queue, and the in-flight count
 * it holds (the queue's flag, or the worker's renew count). */
struct qctx {
    unsigned magic;
#define QCTX_MAGIC 0x0c7c0c7cU
    struct drv_worker *w;   /* borrowed */
    int qi;                 /* queue index */
    int *inflight;          /* borrowed: raised while the call is out */
};

static void
qctx_free(struct qctx *c)
{
    DRV_FREE_OBJ(c);
}

/* Send script call `which` for queue qi, counted in *inflight until its
 * reply. The call is consumed. */
static void
qcall(struct drv_worker *w, int qi, int *inflight, int which,
      struct drv_script_call *call, drv_redis_reply_fn *cb)
{
    struct qctx *c;

    DRV_ALLOC_OBJ(c, QCTX_MAGIC);
    c->w = w;
    c->qi = qi;
    c->inflight = inflight;
    (*inflight)++;
    if (drv__worker_script(w, qi, which, call, cb, c) < 0) {
        (*inflight)--;
        qctx_free(c);
    }
}

/* The start of every per-queue reply; frees the call's context: NULL
 * when the worker is being freed, or when the call failed (logged as
 * what, unless Redis is down) or its reply is not of type `type`; else
 * the worker, with the call's queue index in *qi. */
static struct drv_worker *
qreply(int status, const redisReply *reply, void *ctx, int type,
       const char *what, int *qi)
{
    struct qctx *c;
    struct drv_worker *w;
    struct drv_err err;
    char qe[DRV_LOG_Q_MAX];

    DRV_CAST(c, ctx, QCTX_MAGIC);
    if (status == -ECANCELED) {
        qctx_free(c);
        return NULL;
    }
    (*c->inflight)--;
    if (drv_redis_result(status, reply, &err) == 0 && reply->type != type)
        drv_err_set(&err, DRV_EPROTO, "unexpected reply type %d",
                    reply->type);
    if (err.code < 0) {
        struct wqueue *q = &c->w->queues[c->qi];
        int64_t now = drv_clock_mono_ns();

        /* a cluster redirection (a migration) is not worth a warning:
         * the next tick sends it again, on the right node */
        int redirected = drv__worker_redis_error(c->w, status, reply);

        if (drv_redis_reply_error_is(reply, "WRONGTYPE")) {
            drv__worker_queue_bad(c->w, c->qi, err.msg);
        } else if (drv_redis_reply_error_is(reply, "NOGROUP")) {
            drv__worker_prepare(c->w, c->qi);
        } else if (status != DRV_EDOWN && !redirected &&
                   (q->upkeep_logged_ns == 0 ||
                    now - q->upkeep_logged_ns >= BAD_LOG_NS)) {
            /* at most every BAD_LOG_NS: Redis refusing writes fails
             * these on every turn */
            q->upkeep_logged_ns = now;
            DRV_LOG_WARN(what, "queue=%s error=%s", q->keys.name,
                         drv_log_q(qe, sizeof qe, err.msg));
        }
        qctx_free(c);
        return NULL;
    }
    w = c->w;
    *qi = c->qi;
    qctx_free(c);
    return w;
}

static void
on_moved(struct drv_redis *r DRV_UNUSED, int status, const redisReply *reply,
         void *ctx)
{
    int qi;
    struct drv_worker *w = qreply(status, reply, ctx, REDIS_REPLY_INTEGER,
                                  "delayed mover failed", &qi);

    if (w == NULL)
        return;
    if (reply->integer > 0) {
        DRV_LOG_DEBUG("delayed jobs due", "queue=%s n=%lld",
                      w->queues[qi].keys.name, reply->integer);
        w->fetch_hot = 1;
    }
    /* more are due: again next tick; else look when the next falls due */
    drv__worker_due_moved(w, qi, reply->integer >= MOVER_LIMIT);
}

void
drv__worker_run_mover(struct drv_worker *w, size_t qi)
{
    struct wqueue *q = &w->queues[qi];
    struct drv_script_call call;
    struct drv_argv a;
    int i;

    /* should the call fail, the head look finds the jobs again soon */
    if (q->head_at_ns > drv_clock_mono_ns() + DRV_NS_PER_SEC)
        q->head_at_ns = drv_clock_mono_ns() + DRV_NS_PER_SEC;
    drv_queue_mover(&call, &q->keys, drv_clock_unix_ms(), MOVER_LIMIT);
    qcall(w, (int)qi, &q->mover_inflight, SCRIPT_MOVER, &call, on_moved);
    if (q->hints.argc == 0)
        return;
    /* after the mover on the same connection: the jobs they stand for
     * are moved by then */
    drv_argv_init(&a);
    drv_argv_adds(&a, "ZREM");
    drv_argv_adds(&a, q->keys.due);
    for (i = 0; i < q->hints.argc; i++)
        drv_argv_add(&a, q->hints.argv[i], q->hints.argvlen[i]);
    drv_redis_send(w->cmd, 0, &a, NULL, NULL);
    drv_argv_fini(&a);
    drv_argv_reset(&q->hints);
}

/* The graph nodes a reclaim found poison (or too large) and handed back
 * instead of sending them to dead: each becomes a job that runs nothing
 * and ends dead with the reclaim's error through the graph script,
 * which ends its run (run.c, graph.c). Not held for admission: no
 * handler runs. */
static void
admit_ended(struct drv_worker *w, int qi, const redisReply *reply)
{
    struct wjobs ended = {NULL, 0, 0};
    struct drv_err why, err;
    struct drv_job *job;
    char qe[DRV_LOG_Q_MAX];
    int i, n;

    drv_err_clear(&err);
    n = drv_queue_reclaim_ended(reply, 0, NULL, &why, &err);
    for (i = 0; i < n; i++) {
        struct wjob *j;

        drv_err_clear(&why);
        if (drv_queue_reclaim_ended(reply, (size_t)i, &job, &why,
                                    &err) < 0) {
            DRV_LOG_ERROR("unreadable stream entry", "queue=%s error=%s",
                          w->queues[qi].keys.name,
                          drv_log_q(qe, sizeof qe, err.msg));
            continue;
        }
        job->queue_index = qi;
        j = drv__job_create(w, job, qi);
        j->ended = 1;
        j->bad = why;
        drv__jobs_add(&ended, j);
    }
    if (ended.n > 0)
        DRV_LOG_WARN("graph nodes poison or too large: ending their runs",
                     "queue=%s n=%d", w->queues[qi].keys.name, ended.n);
    drv__worker_admit_now(w, &ended);
    drv__jobs_fini(&ended);
}

/* Claimed entries are admitted like fetched ones. */
static void
on_reclaimed(struct drv_redis *r DRV_UNUSED, int status,
             const redisReply *reply, void *ctx)
{
    struct wjobs jobs = {NULL, 0, 0};
    int qi;
    struct drv_worker *w = qreply(status, reply, ctx, REDIS_REPLY_ARRAY,
                                  "reclaim failed", &qi);

    if (w == NULL)
        return;
    /* the script's answer: [entries, poisoned count, gone count,
     * oversized count]; a reply of another shape (a script from another
     * version) is ignored */
    if (reply->elements < 3 ||
        reply->element[1]->type != REDIS_REPLY_INTEGER)
        return;
    if (reply->element[1]->integer > 0)
        DRV_LOG_WARN("poison jobs dead-lettered", "queue=%s n=%lld",
                     w->queues[qi].keys.name, reply->element[1]->integer);
    if (reply->elements >= 4 && reply->element[3]->type ==
        REDIS_REPLY_INTEGER && reply->element[3]->integer > 0)
        DRV_LOG_WARN("jobs larger than max_job_bytes dead-lettered",
                     "queue=%s n=%lld", w->queues[qi].keys.name,
                     reply->element[3]->integer);
    drv__worker_due_reclaimed(w, qi, reply->elements >= 5 &&
                              reply->element[4]->type == REDIS_REPLY_INTEGER
                              ? reply->element[4]->integer : -1);
    drv__worker_entries(w, reply->element[0], 0, qi, &jobs);
    if (jobs.n > 0)
        DRV_LOG_INFO("reclaimed jobs of a dead worker", "queue=%s n=%d",
                     w->queues[qi].keys.name, jobs.n);
    drv__worker_admit(w, &jobs);
    drv__jobs_fini(&jobs);
    admit_ended(w, qi, reply);
}

void
drv__worker_run_reclaim(struct drv_worker *w, size_t qi, int n)
{
    struct drv_script_call call;
    size_t i;

    drv_queue_reclaim(&call, &w->queues[qi].keys, w->id,
                      w->cfg->worker.visibility_timeout_ms, n,
                      w->cfg->worker.max_deliveries, drv_clock_unix_ms(),
                      &w->dead_bound);
    drv_queue_reclaim_limit(&call, w->cfg->worker.max_job_bytes);
    for (i = 0; i < w->cfg->njobs; i++)
        drv_queue_reclaim_ttl(&call, 0, w->cfg->jobs[i]->name,
                              w->cfg->jobs[i]->policy.result_ttl_ms);
    for (i = 0; i < w->cfg->npipelines; i++) {
        drv_queue_reclaim_ttl(&call, 1, w->cfg->pipelines[i]->name,
                              w->cfg->pipelines[i]->policy.result_ttl_ms);
        drv_queue_reclaim_pipeline(&call, w->cfg->pipelines[i]->name,
                                   w->cfg->pipelines[i]->ngraph > 0);
    }
    qcall(w, (int)qi, &w->queues[qi].reclaim_inflight, SCRIPT_RECLAIM,
          &call, on_reclaimed);
}

/* Entries this worker no longer owns: their jobs lost the lease. */
static void
on_renewed(struct drv_redis *r DRV_UNUSED, int status, const redisReply *reply,
           void *ctx)
{
    size_t i;
    struct wjob *j;
    int qi;
    struct drv_worker *w = qreply(status, reply, ctx, REDIS_REPLY_ARRAY,
                                  "lease renewal failed", &qi);

    if (w == NULL)
        return;
    for (i = 0; i < reply->elements; i++) {
        const redisReply *id = reply->element[i];

        if (id->type != REDIS_REPLY_STRING)
            continue; /* the script answers entry ids only */
        LIST_FOREACH(j, &w->live, link) {
            char qid[256];

            if (j->qi != qi || j->lost ||
                strcmp(j->job->entry_id, id->str) != 0)
                continue;
            drv_log_quote(qid, sizeof qid, j->job->id, j->job->id_len);
            DRV_LOG_WARN("lease lost: job reclaimed by another worker",
                         "queue=%s id=%s entry=%s",
                         w->queues[qi].keys.name, qid,
                         j->job->entry_id);
            j->lost = 1;
            drv__worker_cancel_job(j);
            break;
        }
    }
}

static void
run_renew(struct drv_worker *w)
{
    size_t i;

    for (i = 0; i < w->nqueues; i++) {
        struct drv_script_call call;
        struct wjob *j;
        int n = 0;

        if (w->queues[i].bad[0] != '\0')
            continue; /* its stream may be gone: the jobs wait */
        drv_queue_renew(&call, &w->queues[i].keys, w->id);
        LIST_FOREACH(j, &w->live, link)
            if (j->qi == (int)i && !j->lost) {
                drv_argv_adds(&call.args, j->job->entry_id);
                n++;
            }
        if (n == 0) {
            drv_script_call_fini(&call);
            continue;
        }
        qcall(w, (int)i, &w->renew_inflight, SCRIPT_RENEW, &call,
              on_renewed);
    }
}

static void
on_paused(struct drv_redis *r DRV_UNUSED, int status, const redisReply *reply,
          void *ctx)
{
    struct drv_worker *w = drv__worker_of_reply(status, ctx);
    int *paused;
    size_t i;

    if (w == NULL)
        return;
    w->pause_inflight = 0;
    if (w->upkeep_rides) {
        /* the answer of a read that rode on the blocking read: the next
         * one (riding again, or the tick's) within PAUSE_MS */
        int64_t now = drv_clock_mono_ns();

        w->upkeep_rides = 0;
        w->next_pause_ns = (now / (PAUSE_MS * DRV_NS_PER_MS) + 1) *
                           (PAUSE_MS * DRV_NS_PER_MS);
        w->next_due_read_ns = w->next_pause_ns;
        drv__worker_tick_rearm(w);
    }
    paused = drv_xcalloc(w->nqueues, sizeof *paused);
    if (status < 0 ||
        drv_queue_paused_parse(reply, w->nqueues, paused) < 0) {
        free(paused);
        return;
    }
    w->pause_known = 1; /* fetching waits for this first answer */
    for (i = 0; i < w->nqueues; i++) {
        if (paused[i] != w->queues[i].paused)
            DRV_LOG_INFO(paused[i] ? "queue paused" : "queue resumed",
                         "queue=%s", w->queues[i].keys.name);
        w->queues[i].paused = paused[i];
    }
    free(paused);
    drv__worker_kick(w);
}

/* One queue's paused key on a cluster (keys of several slots cannot go
 * into one MGET): the answers fill the queues one by one. */
static void
on_paused_one(struct drv_redis *r DRV_UNUSED, int status,
              const redisReply *reply, void *ctx)
{
    int qi, paused = 0;
    struct drv_worker *w = drv__worker_of_queue_reply(status, ctx, &qi);
    struct wqueue *q;
    size_t i;

    if (w == NULL)
        return;
    q = &w->queues[qi];
    w->pause_inflight--;
    if (status < 0 || drv_queue_paused_parse(reply, 1, &paused) < 0) {
        drv__worker_redis_error(w, status, reply);
        return;
    }
    if (paused != q->paused)
        DRV_LOG_INFO(paused ? "queue paused" : "queue resumed", "queue=%s",
                     q->keys.name);
    q->paused = paused;
    q->pause_known = 1;
    for (i = 0; i < w->nqueues; i++)
        if (!w->queues[i].pause_known)
            break;
    w->pause_known = i == w->nqueues;
    drv__worker_kick(w);
}

static void
check_paused_cluster(struct drv_worker *w)
{
    struct drv_argv a;
    size_t i;

    drv_argv_init(&a);
    for (i = 0; i < w->nqueues; i++) {
        const struct drv_queue_keys *k = &w->queues[i].keys;

        drv_argv_reset(&a);
        drv_queue_paused_read(&a, &k, 1);
        if (drv_redis_send(w->queues[i].cmd, 0, &a, on_paused_one,
                           &w->queues[i].conn) == 0)
            w->pause_inflight++;
    }
    drv_argv_fini(&a);
}

/* The paused flags' read, on conn (the command connection, or the
 * blocking one when it rides on the blocking read). */
static void
check_paused(struct drv_worker *w, struct drv_redis *conn)
{
    struct drv_argv a;
    size_t i;

    if (w->cluster != NULL) {
        check_paused_cluster(w);
        return;
    }

    for (i = 0; i < w->nqueues; i++)
        w->qkeys[i] = &w->queues[i].keys;
    drv_argv_init(&a);
    drv_queue_paused_read(&a, w->qkeys, w->nqueues);
    w->pause_inflight = 1;
    if (drv_redis_send(conn, 0, &a, on_paused, w) < 0)
        w->pause_inflight = 0;
    drv_argv_fini(&a);
}

static void
on_beat(struct drv_redis *r DRV_UNUSED, int status,
        const redisReply *reply DRV_UNUSED, void *ctx)
{
    struct drv_worker *w = drv__worker_of_reply(status, ctx);

    if (w != NULL)
        w->beat_inflight = 0;
}

static void
on_workers(struct drv_redis *r DRV_UNUSED, int status, const redisReply *reply,
           void *ctx)
{
    struct drv_worker *w = drv__worker_of_reply(status, ctx);
    size_t i;
    int64_t now = drv_clock_unix_ms();

    if (w == NULL || status < 0 || reply->type != REDIS_REPLY_ARRAY)
        return;
    /* remove entries of workers whose beat is stale */
    for (i = 0; i + 1 < reply->elements; i += 2) {
        if (reply->element[i]->type != REDIS_REPLY_STRING ||
            reply->element[i + 1]->type != REDIS_REPLY_STRING)
            continue;
        if (drv_queue_worker_line_stale(reply->element[i + 1]->str,
                                        reply->element[i + 1]->len, now)) {
            DRV_LOG_INFO("removing stale worker entry", "worker=%s",
                         reply->element[i]->str);
            struct drv_argv del;

            drv_argv_init(&del);
            drv_queue_worker_remove(&del, w->workers_key,
                                    reply->element[i]->str,
                                    reply->element[i]->len);
            drv_redis_send(w->cmd, 0, &del, on_beat, w);
            drv_argv_fini(&del);
        }
    }
}

static void
heartbeat(struct drv_worker *w, struct drv_redis *conn)
{
    char qs[512];
    struct drv_argv a;
    size_t i, o = 0;

    qs[0] = '\0';
    for (i = 0; i < w->nqueues && o + 2 < sizeof qs; i++)
        o += (size_t)snprintf(qs + o, sizeof qs - o, "%s%s", i ? "," : "",
                              w->queues[i].keys.name);
    drv_argv_init(&a);
    drv_queue_worker_beat(&a, w->workers_key, w->id,
                          &(struct drv_queue_worker){
        .host = w->host, .pid = getpid(), .started_ms = w->started_ms,
        .queues = qs, .busy = w->stats.running,
        .beat_ms = drv_clock_unix_ms()});
    w->beat_inflight = 1;
    if (drv_redis_send(conn, 0, &a, on_beat, w) < 0)
        w->beat_inflight = 0;
    drv_queue_workers_read(&a, w->workers_key);
    drv_redis_send(conn, 0, &a, on_workers, w);
    drv_argv_fini(&a);
}

static int64_t
min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

int64_t
drv__worker_idle_until(const struct drv_worker *w)
{
    int64_t t;
    size_t i;

    /* anything that runs or waits, or needs the tick's every look:
     * schedules, graph runs, a cluster (movers every tick), queues not
     * prepared, Redis down or refusing writes, due notes to write */
    if (w->state != W_RUNNING || w->inflight > 0 || !LIST_EMPTY(&w->live) ||
        !LIST_EMPTY(&w->batches) || w->schedules != NULL || w->graph != NULL ||
        w->cluster != NULL || w->refused_ns != 0 ||
        w->groups_ready < (int)w->nqueues || w->due_notes.argc > 0 ||
        drv_redis_state(w->cmd) != DRV_REDIS_READY)
        return -1;
    t = min64(w->next_beat_ns, w->next_renew_ns);
    if (w->upkeep_rides) {
        /* the paused flags and the due index are read when the blocking
         * read returns, and a beat falling due before the next read
         * returns goes with it: the tick does them only should no read
         * ride again */
        int64_t fallback = w->ride_end_ns + 2 * PAUSE_MS * DRV_NS_PER_MS;

        if (t == w->next_beat_ns && t < fallback)
            t = min64(fallback, w->next_renew_ns);
    } else {
        t = min64(t, min64(w->next_pause_ns, w->next_due_read_ns));
    }
    for (i = 0; i < w->nqueues; i++) {
        const struct wqueue *q = &w->queues[i];

        t = min64(t, min64(q->mover_at_ns,
                           min64(q->head_at_ns, q->reclaim_at_ns)));
    }
    return t;
}

void
drv__worker_maintain(struct drv_worker *w, int64_t now)
{
    int64_t vt = w->cfg->worker.visibility_timeout_ms * DRV_NS_PER_MS;

    if (drv_redis_state(w->cmd) != DRV_REDIS_READY)
        return;
    drv__worker_prepare_due(w, now);
    drv__worker_schedules(w);
    if (now >= w->next_pause_ns && !w->pause_inflight) {
        check_paused(w, w->cmd);
        /* on the PAUSE_MS grid, with the read of the due index, so the
         * two replies wake the worker once */
        w->next_pause_ns = (now / (PAUSE_MS * DRV_NS_PER_MS) + 1) *
                           (PAUSE_MS * DRV_NS_PER_MS);
    }
    drv__worker_cancel_check(w, now);
    drv__worker_progress_flush(w, now);
    drv__graph_upkeep(w, now);
    /* the mover and reclaim, on the queues that need them */
    drv__worker_due_tick(w, now);
    if (now >= w->next_renew_ns && w->renew_inflight == 0) {
        run_renew(w);
        if (w->admit != NULL)
            drv__admit_renew(w);
        w->next_renew_ns = now + vt / 3;
    }
    if (now >= w->next_beat_ns && !w->beat_inflight &&
        w->state == W_RUNNING) {
        heartbeat(w, w->cmd);
        /* every BEAT_MS, on the PAUSE_MS grid: sent with the paused
         * flags' read, so the replies wake an idle worker once */
        w->next_beat_ns = (now + BEAT_MS * DRV_NS_PER_MS) /
                          (PAUSE_MS * DRV_NS_PER_MS) *
                          (PAUSE_MS * DRV_NS_PER_MS);
    }
}

/*
 * An idle worker's upkeep reads ride on its blocking read: sent on the
 * blocking connection right behind the XREADGROUP ... BLOCK, they wait in
 * Redis until the read returns (a job, or BLOCK's timeout after block_ms)
 * and their answers come in the same write as the read's. So the paused
 * flags, the due index and, when it falls due before the read returns,
 * the heartbeat cost no wakeup of a timer of their own: an idle worker
 * wakes once per blocking read. A pause is still seen within block_ms of
 * being set (and the read after it leaves the queue out); the due index is
 * read for the members falling due within DUE_AHEAD_MS of when Redis runs
 * the read, as the tick's read is.
 */
int
drv__worker_upkeep_can_ride(const struct drv_worker *w)
{
    return w->cluster == NULL && !w->pause_inflight &&
           drv__worker_idle_until(w) >= 0;
}

void
drv__worker_upkeep_ride(struct drv_worker *w, int64_t block_ms)
{
    int64_t now = drv_clock_mono_ns();

    if (!drv__worker_upkeep_can_ride(w))
        return;
    check_paused(w, w->blk);
    if (!w->pause_inflight)
        return;
    w->upkeep_rides = 1;
    w->ride_end_ns = now + block_ms * DRV_NS_PER_MS;
    drv__worker_due_ride(w, block_ms);
    if (!w->beat_inflight && w->next_beat_ns <= w->ride_end_ns) {
        heartbeat(w, w->blk);
        w->next_beat_ns = now + BEAT_MS * DRV_NS_PER_MS;
    }
    drv__worker_tick_rearm(w);
}
