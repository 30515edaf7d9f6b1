/*
 * upkeep_due.c -- which queues the delayed mover and the reclaim look at,
 * and when, so that an idle worker's cost does not grow with its number
 * of queues.
 *
 * DESIGN
 * The mover of a queue runs only when a job there is known to fall due
 * (mover_at_ns). A worker learns that from:
 *  - its own retries: it knows their due time (drv__worker_due_retry);
 *  - the due index P:due, one read every DUE_EVERY_NS for the whole
 *    worker, of the members falling due within DUE_AHEAD_MS: every
 *    delayed enqueue (drover enqueue --delay) and every retry of any
 *    worker adds a member "QUEUE@DUE_MS" (drover/queue.h says why no job
 *    can be missed); a member of one of this worker's queues makes that
 *    mover run when the member falls due, and is removed right after
 *    that mover call (which is followed by a head look: any job not yet
 *    due then is found by it);
 *  - a look at the head of the queue's delayed set (the next job to fall
 *    due, one cheap ZRANGEBYSCORE ... LIMIT 0 1): at start, after every
 *    mover run (to learn the next due time exactly), and otherwise with a
 *    backoff from HEAD_MIN_NS doubling to HEAD_MAX_NS (jittered, so a
 *    thousand queues do not look at once). This look finds what no index
 *    member announced (a delayed job written by hand, or by a process that
 *    died between its two commands); a fetch that finds jobs in a queue
 *    brings its backoff back to HEAD_MIN_NS.
 * No command names the keys of two queues: the index is a key of its own.
 * On a Redis Cluster the index is not used (its key lives in a slot of
 * its own, maybe on another node): every queue's mover runs every tick,
 * as the head looks still do with their backoff.
 *
 * The reclaim of a queue runs every visibility_timeout / 4 (1 s .. 10 s)
 * while entries are pending there, and every visibility_timeout when its
 * last call found none: an entry delivered after that call cannot have
 * been idle for visibility_timeout before that much time has passed, so
 * a dead worker's job is reclaimed as promptly as before.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/log.h"
#include "drover/redis.h"
#include "worker_int.h"

#define HEAD_MIN_NS (1 * DRV_NS_PER_SEC)
#define HEAD_MAX_NS (60 * DRV_NS_PER_SEC)
#define DUE_READ_LIMIT 256
/* the due index is read this often (with the paused flags, so both
 * replies wake the worker once), for members falling due this far
 * ahead: a job delayed by DUE_AHEAD_MS or more is moved when due */
#define DUE_EVERY_NS (500 * DRV_NS_PER_MS)
#define DUE_AHEAD_MS 600
/* an index member of a queue no worker here serves, this old, is removed
 * (whoever serves that queue finds its jobs by the head look) */
#define DUE_STALE_MS (60 * 1000)

void
drv__worker_due_init(struct drv_worker *w)
{
    size_t i;

    drv_argv_init(&w->due_notes);
    for (i = 0; i < w->nqueues; i++) {
        struct wqueue *q = &w->queues[i];

        q->mover_at_ns = INT64_MAX;
        q->head_at_ns = 0;              /* look once at start */
        q->head_ivl_ns = HEAD_MAX_NS / 2;
        q->reclaim_at_ns = 0;
        drv_argv_init(&q->hints);
    }
}

void
drv__worker_due_fini(struct drv_worker *w)
{
    size_t i;

    drv_argv_fini(&w->due_notes);
    for (i = 0; i < w->nqueues; i++)
        drv_argv_fini(&w->queues[i].hints);
}

/* A delay of ivl, jittered into [ivl/2, ivl]. */
static int64_t
jitter(int64_t ivl)
{
    return ivl / 2 + (int64_t)(drv_random64() % (uint64_t)(ivl / 2 + 1));
}

/* A due time further ahead than this counts as this far: the mover then
 * runs early, finds nothing due, and the head look after it learns the
 * time again (a score may be any number: no overflow). */
#define DUE_HORIZON_MS (3600 * 1000)

/* A zset score as Unix ms: Redis writes scores as doubles ("1e+20",
 * "inf" for the far future), so read them as one, within +-2^62. */
static int64_t
score_ms(const char *s)
{
    double v = strtod(s, NULL);

    if (!(v > -4.6e18))
        return -((int64_t)1 << 62);
    if (v > 4.6e18)
        return (int64_t)1 << 62;
    return (int64_t)v;
}

/* The monotonic time of Unix ms t (now_ns and now_ms: the same instant). */
static int64_t
mono_of(int64_t t_ms, int64_t now_ns, int64_t now_ms)
{
    if (t_ms <= now_ms)
        return now_ns;
    if (t_ms - now_ms > DUE_HORIZON_MS)
        t_ms = now_ms + DUE_HORIZON_MS;
    return now_ns + (t_ms - now_ms) * DRV_NS_PER_MS;
}

static void
want_mover(struct wqueue *q, int64_t at_ns)
{
    if (at_ns < q->mover_at_ns)
        q->mover_at_ns = at_ns;
}

void
drv__worker_due_retry(struct drv_worker *w, int qi, int64_t due_ms)
{
    struct wqueue *q = &w->queues[qi];
    char ms[24];

    want_mover(q, mono_of(due_ms, drv_clock_mono_ns(), drv_clock_unix_ms()));
    /* for the other workers too (in case this one stops first): sent at
     * the next tick, after the settle call that delays the job */
    if (w->due_notes.argc == 0) {
        drv_argv_adds(&w->due_notes, "ZADD");
        drv_argv_adds(&w->due_notes, q->keys.due);
    }
    snprintf(ms, sizeof ms, "%lld", (long long)due_ms);
    drv_argv_adds(&w->due_notes, ms);
    drv_argv_addf(&w->due_notes, "%s@%s", q->keys.name, ms);
}

void
drv__worker_due_busy(struct drv_worker *w, int qi)
{
    struct wqueue *q = &w->queues[qi];
    int64_t at = drv_clock_mono_ns() + HEAD_MIN_NS;

    q->head_ivl_ns = HEAD_MIN_NS;
    if (at < q->head_at_ns)
        q->head_at_ns = at;
}

void
drv__worker_due_moved(struct drv_worker *w, int qi, int more)
{
    struct wqueue *q = &w->queues[qi];

    if (more)
        want_mover(q, 0);
    else
        q->head_at_ns = 0; /* learn when the next one falls due */
}

void
drv__worker_due_reclaimed(struct drv_worker *w, int qi, long long left)
{
    int64_t vt = w->cfg->worker.visibility_timeout_ms * DRV_NS_PER_MS;

    if (left == 0)
        w->queues[qi].reclaim_at_ns = drv_clock_mono_ns() + vt;
}

/* --------------------------------------------------------- head look */

/* One look at a queue's head: the worker and the queue. */
struct head_call {
    unsigned magic;
#define HEAD_CALL_MAGIC 0x4eadca11U
    struct drv_worker *w;   /* borrowed */
    int qi;
};

static void
on_head(struct drv_redis *r DRV_UNUSED, int status, const redisReply *reply,
        void *ctx)
{
    struct head_call *c;
    struct drv_worker *w;
    struct wqueue *q;
    int64_t now = drv_clock_mono_ns();

    DRV_CAST(c, ctx, HEAD_CALL_MAGIC);
    w = c->w;
    q = status == -ECANCELED ? NULL : &w->queues[c->qi];
    DRV_FREE_OBJ(c);
    if (q == NULL)
        return; /* the worker is being freed */
    q->head_inflight = 0;
    if (status < 0 || reply->type != REDIS_REPLY_ARRAY) {
        /* a failure (a key of the wrong type, Redis down): look again
         * later; the mover call logs what is wrong */
        q->head_at_ns = now + HEAD_MIN_NS;
        if (status == 0)
            drv__worker_redis_error(w, status, reply);
        return;
    }
    if (reply->elements >= 2 && reply->element[1]->type ==
        REDIS_REPLY_STRING) {
        int64_t due = score_ms(reply->element[1]->str);

        want_mover(q, mono_of(due, now, drv_clock_unix_ms()));
    }
    q->head_ivl_ns *= 2;
    if (q->head_ivl_ns > HEAD_MAX_NS)
        q->head_ivl_ns = HEAD_MAX_NS;
    q->head_at_ns = now + jitter(q->head_ivl_ns);
}

static void
look_at_head(struct drv_worker *w, size_t qi)
{
    struct wqueue *q = &w->queues[qi];
    struct head_call *c;
    struct drv_argv a;

    DRV_ALLOC_OBJ(c, HEAD_CALL_MAGIC);
    c->w = w;
    c->qi = (int)qi;
    drv_argv_init(&a);
    drv_queue_delayed_head(&a, &q->keys);
    q->head_inflight = 1;
    if (drv_redis_send(q->cmd, 0, &a, on_head, c) < 0) {
        q->head_inflight = 0;
        DRV_FREE_OBJ(c);
    }
    drv_argv_fini(&a);
}

/* --------------------------------------------------------- due index */

static int
queue_named(const struct drv_worker *w, const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < w->nqueues; i++)
        if (strlen(w->queues[i].keys.name) == len &&
            memcmp(w->queues[i].keys.name, name, len) == 0)
            return (int)i;
    return -1;
}

/* Note member m for queue q's next mover call (once). */
static void
add_hint(struct wqueue *q, const redisReply *m)
{
    int i;

    for (i = 0; i < q->hints.argc; i++)
        if (q->hints.argvlen[i] == m->len &&
            memcmp(q->hints.argv[i], m->str, m->len) == 0)
            return;
    drv_argv_add(&q->hints, m->str, m->len);
}

/* The mover writes: it waits while Redis refuses writes (the settle
 * retries find out when it accepts them again). */
static int
writing(const struct drv_worker *w)
{
    return w->state == W_RUNNING && w->refused_ns == 0;
}

/* Run the mover of every ready queue whose next job is due by now. */
static void
run_movers(struct drv_worker *w, int64_t now)
{
    size_t i;

    if (!writing(w))
        return;
    for (i = 0; i < w->nqueues; i++) {
        struct wqueue *q = &w->queues[i];

        if (q->ready && !q->mover_inflight && now >= q->mover_at_ns) {
            q->mover_at_ns = INT64_MAX; /* until learned again */
            drv__worker_run_mover(w, i);
        }
    }
}

static void
on_due(struct drv_redis *r DRV_UNUSED, int status, const redisReply *reply,
       void *ctx)
{
    struct drv_worker *w = drv__worker_of_reply(status, ctx);
    struct drv_argv stale;
    int64_t now_ms;
    size_t i;

    if (w == NULL)
        return;
    w->due_inflight = 0;
    if (status < 0 || reply->type != REDIS_REPLY_ARRAY)
        return; /* the head looks still find the jobs */
    now_ms = drv_clock_unix_ms();
    drv_argv_init(&stale);
    for (i = 0; i + 1 < reply->elements; i += 2) {
        const redisReply *m = reply->element[i];
        long qlen;
        int qi;

        if (m->type != REDIS_REPLY_STRING ||
            reply->element[i + 1]->type != REDIS_REPLY_STRING)
            continue;
        qlen = drv_queue_due_member_queue(m->str, m->len);
        qi = qlen < 0 ? -1 : queue_named(w, m->str, (size_t)qlen);
        if (qi >= 0) {
            add_hint(&w->queues[qi], m);
            want_mover(&w->queues[qi],
                       mono_of(score_ms(reply->element[i + 1]->str),
                               drv_clock_mono_ns(), now_ms));
        } else if (score_ms(reply->element[i + 1]->str) <
                   now_ms - DUE_STALE_MS) {
            if (stale.argc == 0) {
                drv_argv_adds(&stale, "ZREM");
                drv_argv_adds(&stale, w->queues[0].keys.due);
            }
            drv_argv_add(&stale, m->str, m->len);
        }
    }
    if (stale.argc > 0)
        drv_redis_send(w->cmd, 0, &stale, NULL, NULL);
    drv_argv_fini(&stale);
    run_movers(w, drv_clock_mono_ns()); /* now, not at the next tick */
}

/* Send the read of the due index on conn, for the members falling due
 * within ahead_ms from now: until the next read has run, and a margin. */
static void
read_due(struct drv_worker *w, struct drv_redis *conn, int64_t ahead_ms)
{
    struct drv_argv a;

    drv_argv_init(&a);
    drv_queue_due_read(&a, w->queues[0].keys.due,
                       drv_clock_unix_ms() + ahead_ms, DUE_READ_LIMIT);
    w->due_inflight = 1;
    if (drv_redis_send(conn, 0, &a, on_due, w) < 0)
        w->due_inflight = 0;
    drv_argv_fini(&a);
}

/* Behind a blocking read of BLOCK block_ms, Redis runs this read when
 * that one returns, and the next one (riding on the next read) within
 * block_ms after that: it looks 2 * block_ms ahead, plus the tick's
 * margin (DUE_AHEAD_MS - DUE_EVERY_NS). */
void
drv__worker_due_ride(struct drv_worker *w, int64_t block_ms)
{
    if (w->cluster == NULL && writing(w) && !w->due_inflight)
        read_due(w, w->blk, 2 * block_ms + DUE_AHEAD_MS -
                            DUE_EVERY_NS / DRV_NS_PER_MS);
}

/* -------------------------------------------------------------- tick */

/* Reclaim at most every visibility_timeout / 4, at least every second,
 * at most every 10 s: a dead worker's job waits little more than
 * visibility_timeout. */
static int64_t
reclaim_every(const struct drv_worker *w)
{
    int64_t vt4 = w->cfg->worker.visibility_timeout_ms * DRV_NS_PER_MS / 4;

    return vt4 < DRV_NS_PER_SEC ? DRV_NS_PER_SEC
           : vt4 > 10 * DRV_NS_PER_SEC ? 10 * DRV_NS_PER_SEC : vt4;
}

void
drv__worker_due_tick(struct drv_worker *w, int64_t now)
{
    int free_permits = drv__worker_free_permits(w);
    size_t i;

    if (w->cluster != NULL) {
        /* on a cluster the index is a key of another slot, maybe on
         * another node: not used; each queue's mover runs every tick */
        drv_argv_reset(&w->due_notes);
        for (i = 0; i < w->nqueues; i++)
            want_mover(&w->queues[i], now);
    } else if (w->due_notes.argc > 0 &&
               drv_redis_send(w->cmd, 0, &w->due_notes, NULL, NULL) == 0) {
        drv_argv_reset(&w->due_notes);
    }
    if (w->cluster == NULL && writing(w) && !w->due_inflight &&
        now >= w->next_due_read_ns) {
        read_due(w, w->cmd, DUE_AHEAD_MS);
        /* on the grid of the paused flags' check: one wakeup for both */
        w->next_due_read_ns = (now / DUE_EVERY_NS + 1) * DUE_EVERY_NS;
    }
    run_movers(w, now);
    for (i = 0; i < w->nqueues; i++) {
        struct wqueue *q = &w->queues[i];

        if (!q->ready)
            continue;
        if (w->state == W_RUNNING && !q->head_inflight &&
            now >= q->head_at_ns)
            look_at_head(w, i);
        if (writing(w) && free_permits > 0 && !q->reclaim_inflight &&
            now >= q->reclaim_at_ns && drv__worker_queue_active(w, i)) {
            q->reclaim_at_ns = now + reclaim_every(w);
            drv__worker_run_reclaim(w, i, free_permits < w->cfg->worker.batch
                                          ? free_permits
                                          : w->cfg->worker.batch);
        }
    }
}
