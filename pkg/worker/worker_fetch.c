/*
 * worker_fetch.c -- fetching: XREADGROUP on the blocking connection, never
 * more than the free process permits.
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
 *    free permits.
 *  - an idle read: one XREADGROUP ... BLOCK over every unpaused queue,
 *    COUNT = wanted / queues (at least 1), only when nothing else is out.
 *    It returns as soon as any queue has an entry. With fewer free
 *    permits than queues it may fetch up to one job per queue; those
 *    wait for a permit with their lease renewed (documented in README).
 * BLOCK is short (PAUSE_BLOCK_MS) so a pause or a stop is noticed within a
 * second even without CLIENT UNBLOCK, and the read has its own deadline
 * (BLOCK + margin): a dead server cannot hold fetching forever. After a
 * reconnect the READY callback kicks fetching again, so a restart or a
 * failover never leaves the worker silently idle.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/common.h"
#include "drover/log.h"
#include "drover/redis.h"
#include "worker_int.h"

#define BLOCK_MS 500
#define BLOCK_MARGIN_MS 3000
#define FETCH_DEPTH 2   /* passes out at once while hot */

static int
active(const struct drv_worker *w, size_t qi)
{
    return !w->queues[qi].paused;
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

/* Turn the entries of one XREADGROUP/XCLAIM-style reply into jobs and run
 * them as one batch. reply: [[stream, [entry...]]...] when by_name, else a
 * plain [entry...] of queue qi. Returns the number of entries. */
int
drv__worker_entries(struct drv_worker *w, const redisReply *reply,
                    int by_name, int qi)
{
    struct wjob **jobs = NULL;
    int n = 0, cap = 0;
    size_t s, e, nstreams;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
        return 0;
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
            struct wjob *j;

            drv_err_clear(&err);
            job = drv_job_from_entry(entries->element[e], &err);
            if (job == NULL) {
                DRV_LOG_ERROR("unreadable stream entry", "queue=%s "
                              "error=\"%s\"", w->queues[q].keys.name,
                              err.msg);
                continue;
            }
            job->queue_index = q;
            DRV_ALLOC_OBJ(j, WJOB_MAGIC);
            j->w = w;
            j->job = job;
            j->qi = q;
            j->refs = 2;
            j->next = w->live;
            if (w->live != NULL)
                w->live->prev = j;
            w->live = j;
            w->stats.live++;
            w->stats.fetched++;
            if (n == cap) {
                cap = cap ? cap * 2 : 32;
                jobs = drv_xrealloc(jobs, (size_t)cap * sizeof *jobs);
            }
            jobs[n++] = j;
        }
    }
    if (n > 0)
        drv__worker_spawn_batch(w, jobs, n);
    free(jobs);
    return n;
}

/* One XREADGROUP out on blk: an idle read, or a pass over the queues. */
struct fetch_read {
    unsigned magic;
#define FETCH_READ_MAGIC 0xfe7c4ead
    struct drv_worker *w;   /* borrowed */
    int blocking;           /* the idle BLOCK read */
    size_t qi;              /* pass: the queue being read */
    int need;               /* pass: still wanted (reserved permits) */
    int got;                /* pass: entries so far */
};

static int send_read(struct drv_worker *w, struct fetch_read *f,
                     int count);

static void
end_read(struct drv_worker *w, struct fetch_read *f, int hot)
{
    w->fetch_inflight--;
    if (f->blocking)
        w->fetch_blocking = 0;
    else
        w->fetch_reserved -= f->need;
    w->fetch_hot = hot;
    f->magic = 0;
    free(f);
    drv__worker_kick(w);
}

static void
on_read(struct drv_redis *r, int status, const redisReply *reply, void *ctx)
{
    struct fetch_read *f;
    struct drv_worker *w;
    struct drv_err err;
    int rc, got;
    size_t qi;

    (void)r;
    DRV_CAST(f, ctx, FETCH_READ_MAGIC);
    if (status == -ECANCELED) {
        /* the worker is being freed */
        f->magic = 0;
        free(f);
        return;
    }
    w = f->w;
    rc = drv_redis_result(status, reply, &err);
    if (rc < 0) {
        if (rc == DRV_EREDIS && (drv_redis_reply_error_is(reply, "NOGROUP")
                                 || drv_redis_reply_error_is(reply,
                                                             "UNBLOCKED"))) {
            /* stream or group gone (flush, restart without persistence):
             * create them again, then fetch */
            DRV_LOG_WARN("consumer group missing: recreating",
                         "error=\"%s\"", err.msg);
            drv__worker_create_groups(w);
        } else if (rc != DRV_EDOWN) {
            DRV_LOG_WARN("fetch failed", "error=\"%s\"", err.msg);
        }
        end_read(w, f, 0);
        return;
    }
    if (reply->type == REDIS_REPLY_NIL) {
        /* BLOCK timed out, or CLIENT UNBLOCK; a pass queue was empty */
        got = 0;
    } else {
        got = drv__worker_entries(w, reply, 1, -1);
    }
    if (!f->blocking) {
        /* the entries now count as inflight: no longer reserved */
        if (got > f->need)
            got = f->need; /* cannot happen: COUNT was need */
        f->need -= got;
        f->got += got;
        w->fetch_reserved -= got;
    }
    if (!f->blocking && w->state == W_RUNNING) {
        /* a pass: go on with the next queue while something is wanted */
        for (qi = f->qi + 1; qi < w->nqueues; qi++)
            if (active(w, qi))
                break;
        if (f->need > 0 && qi < w->nqueues) {
            f->qi = qi;
            if (send_read(w, f, f->need) == 0)
                return;
        }
        end_read(w, f, f->got > 0);
        return;
    }
    end_read(w, f, f->blocking ? got > 0 : f->got > 0);
}

/* Send f's read (on f->qi for a pass, on every active queue when
 * blocking). 0, or -1 when it could not be sent (f untouched). */
static int
send_read(struct drv_worker *w, struct fetch_read *f, int count)
{
    struct drv_argv a;
    size_t i;
    int nq = 0, rc;

    drv_argv_init(&a);
    drv_argv_adds(&a, "XREADGROUP");
    drv_argv_adds(&a, "GROUP");
    drv_argv_adds(&a, DRV_QUEUE_GROUP);
    drv_argv_adds(&a, w->id);
    drv_argv_adds(&a, "COUNT");
    drv_argv_addll(&a, count);
    if (f->blocking) {
        drv_argv_adds(&a, "BLOCK");
        drv_argv_addll(&a, BLOCK_MS);
    }
    drv_argv_adds(&a, "STREAMS");
    if (f->blocking) {
        for (i = 0; i < w->nqueues; i++)
            if (active(w, i)) {
                drv_argv_adds(&a, w->queues[i].keys.jobs);
                nq++;
            }
        for (i = 0; i < (size_t)nq; i++)
            drv_argv_adds(&a, ">");
    } else {
        drv_argv_adds(&a, w->queues[f->qi].keys.jobs);
        drv_argv_adds(&a, ">");
    }
    rc = drv_redis_command_timeout(w->blk,
                                   f->blocking ? BLOCK_MS + BLOCK_MARGIN_MS
                                               : 0,
                                   a.argc, (const char *const *)a.argv,
                                   a.argvlen, on_read, f);
    drv_argv_fini(&a);
    return rc < 0 ? -1 : 0;
}

/* Start a read: a pass from queue `first` wanting `want`, or the idle
 * read with COUNT `want`. */
static int
start_read(struct drv_worker *w, int blocking, size_t first, int want)
{
    struct fetch_read *f;

    DRV_ALLOC_OBJ(f, FETCH_READ_MAGIC);
    f->w = w;
    f->blocking = blocking;
    f->qi = first;
    f->need = blocking ? 0 : want;
    if (send_read(w, f, want) < 0) {
        f->magic = 0;
        free(f);
        return -1;
    }
    w->fetch_inflight++;
    if (blocking)
        w->fetch_blocking = 1;
    else
        w->fetch_reserved += want;
    return 0;
}

void
drv__worker_fetch(struct drv_worker *w)
{
    int free_permits, want, nactive = 0;
    size_t i, first = w->nqueues;

    if (w->state != W_RUNNING || w->fetch_blocking || !w->groups_ready ||
        !w->pause_known || drv_redis_state(w->blk) != DRV_REDIS_READY)
        return;
    for (i = 0; i < w->nqueues; i++)
        if (active(w, i)) {
            nactive++;
            if (first == w->nqueues)
                first = i;
        }
    if (nactive == 0)
        return; /* all paused: the tick looks again */
    while (w->fetch_inflight < FETCH_DEPTH) {
        free_permits = drv__worker_free_permits(w) - w->fetch_reserved;
        if (free_permits <= 0)
            return;
        want = free_permits < w->cfg->worker.batch ? free_permits
                                                   : w->cfg->worker.batch;
        if (!w->fetch_hot) {
            /* idle: one blocking read, and only when nothing is out */
            if (w->fetch_inflight == 0)
                start_read(w, 1, first,
                           want / nactive > 0 ? want / nactive : 1);
            return;
        }
        if (start_read(w, 0, first, want) < 0)
            return;
    }
}
