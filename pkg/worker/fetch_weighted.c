/*
 * fetch_weighted.c -- the fetch pass of weighted queues (the map form of
 * `queues`, `{critical: 6, default: 3, low: 1}`): while every queue has
 * jobs waiting, the jobs a worker starts split in proportion to the
 * weights; an empty or paused queue's share goes to the others.
 *
 * DESIGN
 * A pass hands the free permits it reserved (fetch.c) out one by one
 * with smooth weighted round robin (the nginx upstream algorithm): each
 * pick adds every candidate queue's weight to its credit, gives the
 * permit to the queue with the most credit and takes the candidates'
 * total weight off that queue. The credits live across passes, so the
 * split is exact over any run of permits, however few each pass has
 * (one permit at a time when jobs finish one by one), and no queue with
 * jobs waiting waits more than total/weight picks.
 *
 * The pass then sends one XREADGROUP per queue with a share, sized by
 * its share, all at once on the fetch connection: one round trip per
 * pass, as a strict-priority pass whose first queue fills it. A queue
 * that returns fewer entries than asked is empty for now ("cold"): its
 * leftover permits go, in a next round of the same pass, to the queues
 * that returned all they were asked for, again by weight. A cold queue
 * is left out of the next passes' plans for COLD_NS, so an empty queue
 * does not cost a read and a second round on every pass while the
 * others are busy; when every queue is cold they are all read (and
 * when all are empty the idle blocking read of fetch.c covers them,
 * taking one entry per queue).
 *
 * The credits are those of smooth weighted round robin: they sum to 0
 * over the candidates of each pick and stay within the total weight, so
 * a queue that was empty for a long time comes back with its share, not
 * with a hoard that would starve the others.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/redis.h"
#include "worker_int.h"

/* A queue that returned short is left out of plans this long. */
#define COLD_NS (10 * DRV_NS_PER_MS)

struct wweights {
    unsigned magic;
#define WWEIGHTS_MAGIC 0x3e16b7e5U
    const int *weight;        /* borrowed: cfg->queue_weights */
    int64_t *credit;          /* owned: smooth WRR credit per queue */
    int64_t *cold_until;      /* owned: monotonic ns a queue found empty
                                 is planned again; 0 = has jobs */
};

/* A weighted pass: its rounds of reads, and what it still wants. */
struct wpass {
    unsigned magic;
#define WPASS_MAGIC 0x3e16ba55U
    struct drv_worker *w;     /* borrowed */
    int need;                 /* reserved permits not filled yet */
    int got;                  /* entries so far */
    int out;                  /* reads of this round still out */
    int full;                 /* reads of this round that got all they
                                 asked for */
};

/* One XREADGROUP of a pass: queue qi, `count` entries. */
struct wread {
    unsigned magic;
#define WREAD_MAGIC 0x3e16bead
    struct wpass *p;          /* borrowed: its pass */
    size_t qi;
    int count;
};

void
drv__worker_weighted_init(struct drv_worker *w)
{
    struct wweights *ww;

    if (w->cfg->queue_weights == NULL)
        return;
    DRV_ALLOC_OBJ(ww, WWEIGHTS_MAGIC);
    ww->weight = w->cfg->queue_weights;
    ww->credit = drv_xcalloc(w->nqueues, sizeof *ww->credit);
    ww->cold_until = drv_xcalloc(w->nqueues, sizeof *ww->cold_until);
    w->weighted = ww;
}

void
drv__worker_weighted_fini(struct drv_worker *w)
{
    struct wweights *ww = w->weighted;

    if (DRV_NO_OBJ(ww, WWEIGHTS_MAGIC))
        return;
    free(ww->credit);
    free(ww->cold_until);
    DRV_FREE_OBJ(ww);
    w->weighted = NULL;
}

/* Candidates of a plan: active queues, and unless `any` only those not
 * cold at now. Their flags into cand; returns how many. */
static size_t
candidates(struct drv_worker *w, int64_t now, int any, char *cand)
{
    struct wweights *ww = w->weighted;
    size_t i, n = 0;

    for (i = 0; i < w->nqueues; i++) {
        cand[i] = drv__worker_queue_active(w, i) &&
                  w->queues[i].npend < SETTLE_BACKLOG &&
                  (any || ww->cold_until[i] <= now);
        n += (size_t)cand[i];
    }
    return n;
}

/* Share `want` permits out among the candidates by smooth weighted round
 * robin: plan[i] permits for queue i. */
static void
plan_shares(struct wweights *ww, size_t nq, const char *cand, int want,
            int *plan)
{
    int64_t total = 0;
    size_t i;
    int k;

    memset(plan, 0, nq * sizeof *plan);
    for (i = 0; i < nq; i++)
        if (cand[i])
            total += ww->weight[i];
    for (k = 0; k < want; k++) {
        size_t best = nq;

        for (i = 0; i < nq; i++) {
            if (!cand[i])
                continue;
            ww->credit[i] += ww->weight[i];
            if (best == nq || ww->credit[i] > ww->credit[best])
                best = i;
        }
        ww->credit[best] -= total;
        plan[best]++;
    }
}

static void on_wread(struct drv_redis *r, int status,
                     const redisReply *reply, void *ctx);

/* Send the reads of one round: the pass's need shared out among the
 * candidates. Returns the reads sent (p->out raised). */
static int
send_round(struct wpass *p, const char *cand)
{
    struct drv_worker *w = p->w;
    int *plan = drv_xcalloc(w->nqueues, sizeof *plan);
    struct drv_argv a;
    size_t i;
    int sent = 0;

    plan_shares(w->weighted, w->nqueues, cand, p->need, plan);
    p->full = 0;
    drv_argv_init(&a);
    for (i = 0; i < w->nqueues; i++) {
        struct wread *rd;

        if (plan[i] == 0)
            continue;
        DRV_ALLOC_OBJ(rd, WREAD_MAGIC);
        rd->p = p;
        rd->qi = i;
        rd->count = plan[i];
        w->qkeys[0] = &w->queues[i].keys;
        drv_queue_read(&a, w->id, plan[i], -1, w->qkeys, 1);
        if (drv_redis_send(w->queues[i].fetch, 0, &a, on_wread, rd) < 0) {
            DRV_FREE_OBJ(rd);
            continue;
        }
        p->out++;
        sent++;
    }
    drv_argv_fini(&a);
    free(plan);
    return sent;
}

/* The round's last reply is in: another round for what is still wanted,
 * among the queues not found empty, or the end of the pass. */
static void
round_done(struct wpass *p)
{
    struct drv_worker *w = p->w;
    char *cand;

    if (p->need > 0 && p->full > 0 && w->state == W_RUNNING) {
        cand = drv_xcalloc(w->nqueues, 1);
        if (candidates(w, drv_clock_mono_ns(), 0, cand) > 0 &&
            send_round(p, cand) > 0) {
            free(cand);
            return;
        }
        free(cand);
    }
    w->fetch_inflight--;
    w->fetch_reserved -= p->need;
    w->fetch_hot = p->got > 0;
    DRV_FREE_OBJ(p);
    drv__worker_kick(w);
}

static void
on_wread(struct drv_redis *r DRV_UNUSED, int status, const redisReply *reply,
         void *ctx)
{
    struct wread *rd;
    struct wpass *p;
    struct drv_worker *w;
    struct wjobs jobs = {NULL, 0, 0};
    size_t qi;
    int count;

    DRV_CAST(rd, ctx, WREAD_MAGIC);
    p = rd->p;
    qi = rd->qi;
    count = rd->count;
    DRV_FREE_OBJ(rd);
    DRV_CHECK_OBJ(p, WPASS_MAGIC);
    p->out--;
    if (status == -ECANCELED) {
        /* the worker is being freed: p->w is gone */
        if (p->out == 0) {
            DRV_FREE_OBJ(p);
        }
        return;
    }
    w = p->w;
    if (drv__worker_read_result(w, status, reply, (int)qi) == 0 &&
        reply->type != REDIS_REPLY_NIL) {
        drv__worker_entries(w, reply, 1, -1, &jobs);
        drv__worker_admit(w, &jobs);
    }
    if (jobs.n > count)
        jobs.n = count; /* cannot happen: COUNT was count */
    /* the entries now count as inflight: no longer reserved */
    p->need -= jobs.n;
    p->got += jobs.n;
    w->fetch_reserved -= jobs.n;
    if (jobs.n < count) {
        w->weighted->cold_until[qi] = drv_clock_mono_ns() + COLD_NS;
    } else {
        w->weighted->cold_until[qi] = 0;
        p->full++;
    }
    drv__jobs_fini(&jobs);
    if (p->out == 0)
        round_done(p);
}

int
drv__worker_fetch_weighted(struct drv_worker *w, int want)
{
    struct wpass *p;
    char *cand = drv_xcalloc(w->nqueues, 1);
    int64_t now = drv_clock_mono_ns();

    DRV_CHECK_OBJ(w->weighted, WWEIGHTS_MAGIC);
    /* every candidate cold: read them all (an empty pass ends hot
     * fetching, and the idle read covers every queue) */
    if (candidates(w, now, 0, cand) == 0 &&
        candidates(w, now, 1, cand) == 0) {
        free(cand);
        return -1;
    }
    DRV_ALLOC_OBJ(p, WPASS_MAGIC);
    p->w = w;
    p->need = want;
    w->fetch_reserved += want;
    w->fetch_inflight++;
    if (send_round(p, cand) == 0) {
        w->fetch_reserved -= want;
        w->fetch_inflight--;
        DRV_FREE_OBJ(p);
        free(cand);
        return -1;
    }
    free(cand);
    return 0;
}
