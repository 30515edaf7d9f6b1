/*
 * fetch.c -- fetching: reads on the blocking connection (built by
 * drv_queue_read), never more than the free process permits; each reply
 * becomes job records that run.c admits.
 *
 * DESIGN
 * Two kinds of read:
 *  - a pass: non-blocking reads queue by queue in priority order, each
 *    asking for what is still wanted, so earlier queues fill the batch
 *    first. Used while the last read found work ("hot"). Up to
 *    FETCH_DEPTH passes are out at once, so Redis already works on the
 *    next batch while this one is parsed and run (one pass at a time
 *    left Redis and the worker waiting for each other: half the drain
 *    throughput). The permits a pass may still fill are reserved
 *    (fetch_reserved), so the passes together never fetch more than the
 *    free permits. A pass's next read (its next queue) is sent, and
 *    written at once, before the entries it got are admitted and run;
 *    when they came from a later queue, a probe (a pass that stops short
 *    of that queue) reads the earlier ones first, so a job of a first
 *    queue does not wait for a busy later queue's batch to run.
 *  - an idle read: one XREADGROUP ... BLOCK over every unpaused queue,
 *    COUNT = wanted / queues (at least 1), only when nothing else is out.
 *    It returns as soon as any queue has an entry. With fewer free
 *    permits than queues it may fetch up to one job per queue; those
 *    wait for a permit with their lease renewed.
 * On a Redis Cluster every queue has its own connections, to the master
 * of its slot, and streams of several slots cannot go into one read: the
 * idle read is one BLOCK read per active queue, each on its queue's
 * blocking connection, and the passes read on each queue's command
 * connection (so they need not wait for the BLOCK reads to end).
 *
 * With weighted queues (the map form of `queues`) a pass is the one of
 * fetch_weighted.c instead: every queue with a share at once.
 * BLOCK is short (BLOCK_MS) so a pause or a stop is noticed within a
 * second even without CLIENT UNBLOCK, and the read has its own deadline
 * (BLOCK + margin): a dead server cannot hold fetching forever. After a
 * reconnect the READY callback kicks fetching again, so a restart or a
 * failover never leaves the worker silently idle. An idle worker's read
 * carries the paused flags' read behind it (upkeep.c,
 * drv__worker_upkeep_ride), which sees a pause when the read returns: that
 * read blocks RIDE_BLOCK_MS.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/log.h"
#include "drover/redis.h"
#include "worker_int.h"

#define BLOCK_MS 500
/* an idle read that carries the paused flags' read (upkeep.c): a pause is
 * seen when it returns, so it may block longer and still see a pause well
 * within the second */
#define RIDE_BLOCK_MS 800
#define BLOCK_MARGIN_MS 3000
#define FETCH_DEPTH 2   /* passes out at once while hot */
#define PROBE_SHARE 8   /* a probe asks for batch / PROBE_SHARE at most */

#define REDIRECT_PAUSE_NS (50 * DRV_NS_PER_MS) /* after ASK, TRYAGAIN */

static int
active(const struct drv_worker *w, size_t qi)
{
    return drv__worker_queue_active(w, qi) &&
           w->queues[qi].npend < SETTLE_BACKLOG &&
           (w->cluster == NULL ||
            drv_clock_mono_ns() >= w->queues[qi].fetch_retry_ns);
}

static int
queue_of(const struct drv_worker *w, const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < w->nqueues; i++) {
        const char *k = w->queues[i].keys.jobs;
        if (strlen(k) == len && memcmp(k, name, len) == 0)
            return (int)i;
    }
    return -1;
}

/* Bytes of an entry's field names and values; 0 unless it has the shape
 * [id, [f, v, ...]] of strings. */
static size_t
entry_bytes(const redisReply *entry)
{
    const redisReply *f;
    size_t i, n = 0;

    if (entry == NULL || entry->type != REDIS_REPLY_ARRAY ||
        entry->elements != 2 || entry->element[0]->type != REDIS_REPLY_STRING
        || entry->element[1]->type != REDIS_REPLY_ARRAY)
        return 0;
    f = entry->element[1];
    for (i = 0; i < f->elements; i++) {
        if (f->element[i]->type != REDIS_REPLY_STRING)
            return 0;
        n += drv_redis_reply_len(f->element[i]);
    }
    return n;
}

/* The fields an oversized entry keeps: what names it, and what its
 * settle needs (a pipeline step's or a graph node's, validate.c). */
static const char *const control[] = {"id", "attempt", "pipeline", "step",
                                      "run", "node", "home", "index"};
#define NCONTROL (sizeof control / sizeof control[0])

/*
 * An entry larger than max_job_bytes (both connections cut its strings
 * longer than that: they arrive empty, see max_string_bytes) becomes a
 * job record of its entry id and its control fields alone (each when it
 * is short), with bytes set to its real size, so validation refuses it
 * and it goes dead naming its size and the limit; a pipeline step or a
 * graph node is still known as one, so its pipeline's record (or its
 * run) learns of it. The rest is never copied: the dead-lettering copies
 * the whole entry inside Redis (the settle script reads it from the
 * stream).
 */
static struct drv_job *
job_oversized(const redisReply *entry, size_t bytes, struct drv_err *err)
{
    const redisReply *f = entry->element[1];
    redisReply small, *kept[2 * NCONTROL];
    const redisReply *at[NCONTROL][2];
    struct drv_job *job;
    char eid[48];
    size_t i, k;

    if (entry->element[0]->len >= sizeof eid)
        return drv_job_from_entry(entry, err); /* refuses it */
    memcpy(eid, entry->element[0]->str, entry->element[0]->len);
    eid[entry->element[0]->len] = '\0';
    memset(at, 0, sizeof at);
    for (i = 0; i + 1 < f->elements; i += 2) /* the last one of a name wins */
        for (k = 0; k < NCONTROL; k++)
            if (f->element[i]->len == strlen(control[k]) &&
                memcmp(f->element[i]->str, control[k],
                       f->element[i]->len) == 0 &&
                drv_redis_reply_len(f->element[i + 1]) <= 1024) {
                at[k][0] = f->element[i];
                at[k][1] = f->element[i + 1];
            }
    memset(&small, 0, sizeof small);
    small.type = REDIS_REPLY_ARRAY;
    small.element = kept;
    for (k = 0; k < NCONTROL; k++)
        if (at[k][0] != NULL) {
            kept[small.elements++] = (redisReply *)at[k][0];
            kept[small.elements++] = (redisReply *)at[k][1];
        }
    job = drv_job_from_fields(eid, &small, err);
    if (job != NULL)
        job->bytes = bytes;
    return job;
}

void
drv__worker_entries(struct drv_worker *w, const redisReply *reply,
                    int by_name, int qi, struct wjobs *out)
{
    size_t s, e, nstreams;
    char qe[DRV_LOG_Q_MAX];

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
        return;
    nstreams = by_name ? reply->elements : 1;
    for (s = 0; s < nstreams; s++) {
        const redisReply *entries = reply;
        int q = qi;

        if (by_name) {
            const redisReply *st = reply->element[s];
            if (st->type != REDIS_REPLY_ARRAY || st->elements != 2 ||
                st->element[0]->type != REDIS_REPLY_STRING)
                continue;
            q = queue_of(w, st->element[0]->str, st->element[0]->len);
            entries = st->element[1];
            if (q < 0 || entries->type != REDIS_REPLY_ARRAY)
                continue;
        }
        for (e = 0; e < entries->elements; e++) {
            struct drv_err err;
            struct drv_job *job;

            size_t bytes = entry_bytes(entries->element[e]);

            drv_err_clear(&err);
            if ((int64_t)bytes > w->cfg->worker.max_job_bytes)
                job = job_oversized(entries->element[e], bytes, &err);
            else
                job = drv_job_from_entry(entries->element[e], &err);
            if (job == NULL) {
                DRV_LOG_ERROR("unreadable stream entry", "queue=%s "
                              "error=%s", w->queues[q].keys.name,
                              drv_log_q(qe, sizeof qe, err.msg));
                continue;
            }
            job->queue_index = q;
            drv__jobs_add(out, drv__job_create(w, job, q));
            if (e == 0)
                drv__worker_due_busy(w, q);
        }
    }
}

/* One XREADGROUP out on blk: an idle read, or a pass over the queues. */
struct fetch_read {
    unsigned magic;
#define FETCH_READ_MAGIC 0xfe7c4ead
    struct drv_worker *w;   /* borrowed */
    int blocking;           /* the idle BLOCK read */
    int block_ms;           /* its BLOCK */
    size_t qi;              /* pass: the queue being read; cluster: the
                               queue of a BLOCK read */
    size_t stop;            /* pass: reads the queues before this one */
    int need;               /* pass: still wanted (reserved permits) */
    int got;                /* pass: entries so far */
};

static int send_read(struct drv_worker *w, struct fetch_read *f,
                     int count);
static int start_read(struct drv_worker *w, int blocking, size_t first,
                      int want, int block_ms, size_t stop);

static void
end_read(struct drv_worker *w, struct fetch_read *f, int hot)
{
    w->fetch_inflight--;
    if (f->blocking)
        w->fetch_blocking--;
    else
        w->fetch_reserved -= f->need;
    w->fetch_hot = hot;
    DRV_FREE_OBJ(f);
    drv__worker_kick(w);
}

int
drv__worker_read_result(struct drv_worker *w, int status,
                        const redisReply *reply, int qi)
{
    struct drv_err err;
    int rc;
    char qe[DRV_LOG_Q_MAX];

    rc = drv_redis_result(status, reply, &err);
    if (rc == 0)
        return 0;
    if (drv__worker_redis_error(w, status, reply)) {
        /* not served here now (a migration): read it again soon */
        if (qi >= 0)
            w->queues[qi].fetch_retry_ns = drv_clock_mono_ns() +
                                           REDIRECT_PAUSE_NS;
    } else if (rc == DRV_EREDIS && (drv_redis_reply_error_is(reply, "NOGROUP") ||
                             drv_redis_reply_error_is(reply, "UNBLOCKED") ||
                             drv_redis_reply_error_is(reply, "WRONGTYPE"))) {
        /* stream or group gone (flush, restart without persistence) or a
         * stream key replaced by another type: prepare the queues read
         * again (key types checked, group created), then fetch; a queue
         * with a bad key stays out */
        DRV_LOG_WARN("consumer group or stream missing: preparing the "
                     "queue again", "queue=%s error=%s",
                     qi < 0 ? "*" : w->queues[qi].keys.name,
                     drv_log_q(qe, sizeof qe, err.msg));
        drv__worker_prepare(w, qi);
    } else if (rc != DRV_EDOWN) {
        DRV_LOG_WARN("fetch failed", "error=%s",
                     drv_log_q(qe, sizeof qe, err.msg));
    }
    return rc;
}

/* A pass that found entries in queue qi ended: before they run, read the
 * active queues before qi (strict priority, no cluster) for what the free
 * permits allow, in a pass that stops short of qi. 1 when it was sent. */
static int
probe_earlier(struct drv_worker *w, size_t qi)
{
    int want = drv__worker_free_permits(w) - w->fetch_reserved;
    size_t first;

    if (w->state != W_RUNNING || w->cluster != NULL || w->weighted != NULL ||
        w->fetch_inflight - w->fetch_blocking >= FETCH_DEPTH || want <= 0)
        return 0;
    for (first = 0; first < qi; first++)
        if (active(w, first))
            break;
    if (first >= qi)
        return 0;
    /* a few: it is there for what came meanwhile, and the permits it
     * holds until it returns are not the later queue's passes' to fill
     * (a backlog of the earlier queues is the next pass's, which reads
     * them first) */
    if (want > (w->cfg->worker.batch + PROBE_SHARE - 1) / PROBE_SHARE)
        want = (w->cfg->worker.batch + PROBE_SHARE - 1) / PROBE_SHARE;
    return start_read(w, 0, first, want, 0, qi) == 0;
}

static void
on_read(struct drv_redis *r DRV_UNUSED, int status, const redisReply *reply,
        void *ctx)
{
    struct wjobs jobs = {NULL, 0, 0};
    struct fetch_read *f;
    struct drv_worker *w;
    int got, sent = 0;
    size_t qi, read_qi;

    DRV_CAST(f, ctx, FETCH_READ_MAGIC);
    if (status == -ECANCELED) {
        /* the worker is being freed */
        DRV_FREE_OBJ(f);
        return;
    }
    w = f->w;
    /* a blocking read covers every queue, except on a cluster */
    if (drv__worker_read_result(w, status, reply,
                                f->blocking && w->cluster == NULL
                                ? -1 : (int)f->qi) < 0) {
        end_read(w, f, 0);
        return;
    }
    got = 0; /* nil: BLOCK timed out, or CLIENT UNBLOCK; queue empty */
    if (reply->type != REDIS_REPLY_NIL)
        drv__worker_entries(w, reply, 1, -1, &jobs);
    got = jobs.n;
    if (f->blocking) {
        drv__worker_admit(w, &jobs);
        drv__jobs_fini(&jobs);
        end_read(w, f, got > 0);
        return;
    }
    /* a pass. The entries stay reserved until they count as inflight
     * (admitted), so what is started before that cannot fetch past the
     * permits. */
    if (got > f->need)
        got = f->need; /* cannot happen: COUNT was need */
    f->need -= got;
    f->got += got;
    read_qi = f->qi;
    for (qi = f->qi + 1; qi < f->stop; qi++)
        if (w->state == W_RUNNING && active(w, qi))
            break;
    if (w->state == W_RUNNING && f->need > 0 && qi < f->stop &&
        (f->qi = qi, send_read(w, f, f->need)) == 0) {
        sent = 1; /* the pass goes on with the next queue */
    } else {
        /* a probe (below) that found nothing says nothing of the queues
         * the passes read */
        end_read(w, f, f->got > 0 ||
                       (f->stop < w->nqueues && w->fetch_hot));
        /* entries of a later queue: a job that came into an earlier one
         * meanwhile need not wait until they have run (and the read after
         * them comes back) before it is read */
        if (got * PROBE_SHARE >= w->cfg->worker.batch)
            sent = probe_earlier(w, read_qi);
    }
    /* with entries to run first, the read goes out now, not after them
     * (with none, the loop's next turn writes it as soon) */
    if (sent && got > 0 && w->cluster == NULL)
        drv_redis_flush(w->blk); /* every pass reads there */
    drv__worker_admit(w, &jobs);
    drv__jobs_fini(&jobs);
    w->fetch_reserved -= got; /* the entries now count as inflight */
}

/* Send f's read (on f->qi for a pass or a cluster's BLOCK read, on every
 * active queue for the one BLOCK read). 0, or -1 when it could not be
 * sent (f untouched). */
static int
send_read(struct drv_worker *w, struct fetch_read *f, int count)
{
    struct wqueue *q = &w->queues[f->qi];
    struct drv_argv a;
    size_t i, nq = 0;
    int rc;

    if (f->blocking && w->cluster == NULL) {
        for (i = 0; i < w->nqueues; i++)
            if (active(w, i))
                w->qkeys[nq++] = &w->queues[i].keys;
    } else {
        w->qkeys[nq++] = &q->keys;
    }
    drv_argv_init(&a);
    drv_queue_read(&a, w->id, count, f->blocking ? f->block_ms : -1,
                   w->qkeys, nq);
    rc = drv_redis_send(f->blocking ? q->blk : q->fetch,
                        f->blocking ? f->block_ms + BLOCK_MARGIN_MS : 0, &a,
                        on_read, f);
    drv_argv_fini(&a);
    return rc < 0 ? -1 : 0;
}

/* Start a read: a pass from queue `first` wanting `want`, or the idle
 * read with COUNT `want`. */
static int
start_read(struct drv_worker *w, int blocking, size_t first, int want,
           int block_ms, size_t stop)
{
    struct fetch_read *f;

    DRV_ALLOC_OBJ(f, FETCH_READ_MAGIC);
    f->w = w;
    f->blocking = blocking;
    f->block_ms = block_ms;
    f->stop = stop;
    f->qi = first;
    f->need = blocking ? 0 : want;
    if (send_read(w, f, want) < 0) {
        DRV_FREE_OBJ(f);
        return -1;
    }
    w->fetch_inflight++;
    if (blocking)
        w->fetch_blocking++;
    else
        w->fetch_reserved += want;
    return 0;
}

/* The idle reads of a cluster: a BLOCK read of COUNT `count` on each
 * active queue whose blocking connection is READY. */
static void
start_blocking_each(struct drv_worker *w, int count)
{
    size_t i;

    for (i = 0; i < w->nqueues; i++)
        if (active(w, i) &&
            drv_redis_state(w->queues[i].blk) == DRV_REDIS_READY)
            start_read(w, 1, i, count, BLOCK_MS, w->nqueues);
}

void
drv__worker_fetch(struct drv_worker *w)
{
    int free_permits, want, nactive = 0;
    size_t i, first = w->nqueues;

    if (w->state != W_RUNNING || !w->groups_ready || !w->pause_known)
        return;
    if (w->cluster == NULL && (w->fetch_blocking ||
                               drv_redis_state(w->blk) != DRV_REDIS_READY))
        return;
    for (i = 0; i < w->nqueues; i++)
        if (active(w, i)) {
            nactive++;
            if (first == w->nqueues)
                first = i;
        }
    if (nactive == 0)
        return; /* all paused: the tick looks again */
    /* the passes out (a cluster's BLOCK reads do not count) */
    while (w->fetch_inflight - w->fetch_blocking < FETCH_DEPTH) {
        free_permits = drv__worker_free_permits(w) - w->fetch_reserved;
        if (free_permits <= 0)
            return;
        want = free_permits < w->cfg->worker.batch ? free_permits
                                                   : w->cfg->worker.batch;
        if (!w->fetch_hot) {
            /* idle: one blocking read (a cluster: one per queue), and only
             * when nothing is out; weighted queues take one entry each
             * from it, so a burst that ends the idle time is split by
             * weight too */
            int ride;

            if (w->fetch_inflight > 0)
                return;
            ride = w->cluster == NULL && drv__worker_upkeep_can_ride(w);
            if (w->cluster != NULL)
                start_blocking_each(w, w->weighted != NULL ||
                                       want / nactive < 1
                                       ? 1 : want / nactive);
            else if (start_read(w, 1, first, w->weighted != NULL ||
                                want / nactive < 1 ? 1 : want / nactive,
                                ride ? RIDE_BLOCK_MS : BLOCK_MS,
                                w->nqueues) == 0 &&
                     ride)
                drv__worker_upkeep_ride(w, RIDE_BLOCK_MS);
            return;
        }
        if ((w->weighted != NULL ? drv__worker_fetch_weighted(w, want)
                                 : start_read(w, 0, first, want, 0,
                                              w->nqueues)) < 0)
            return;
    }
}
