/*
 * admit.c -- admission across every worker: deduplication by id
 * (jobs.X.unique_for), fleet-wide concurrency (global_concurrency) and
 * rate limits (rate), optionally per value of a job field (limit_key).
 * The Redis side is pkg/queue/queue_admit.c.
 *
 * DESIGN
 * Only job types that set one of those keys pass through here; with none
 * in the config w->admit is NULL and the job path is untouched (one NULL
 * test per fetched batch, nothing added to any Redis call).
 *
 * A fetched (or reclaimed) batch: run.c hands it to drv__admit_take,
 * which takes out the jobs of limited types and sends ONE admit script
 * call per queue for them (the other jobs of the batch are admitted at
 * once as before). The script answers per job:
 *   RUN      start after delay_ms (0, or its rate slot, at most a second
 *            ahead): handed back to run.c then (a local timer), which
 *            spawns its task with the usual permits;
 *   DEDUPED  a duplicate: Redis acked it; the record is settled here;
 *   WAIT     over the rate (delay_ms: when a slot is within reach) or no
 *            fleet-wide slot free (-1: asked again after 50 ms doubling
 *            to 1 s, and at once when a job of this worker holding such
 *            a slot settles -- its release went out first on the same
 *            connection);
 *   LOST     the entry is no longer ours: dropped.
 * A job held here has a record on the live list (so the lease renewal
 * covers its entry), counts in w->inflight (so fetching never takes more
 * than the process limit) and holds no semaphore permit. The held list
 * holds every job between take and hand-over: in a call, waiting, or
 * waiting for its slot. One timer (the earliest due) drives them; no
 * call is sent before a job's due time, so nothing polls Redis.
 *
 * What an admitted job holds in Redis (its id claim, its lease) is
 * renewed with the lease renewal (drv__admit_renew, every
 * visibility_timeout / 3) and released inside its settle script run
 * (drv__admit_settle_tail): no extra round trip. A worker killed -9
 * loses its leases within visibility_timeout (they expire), its claims
 * within twice that.
 *
 * Draining: jobs held here go back to their queue at once (requeue, no
 * attempt counted), like jobs still waiting for a permit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/buf.h"
#include "drover/clock.h"
#include "drover/common.h"
#include "drover/log.h"
#include "drover/queue_admit.h"
#include "drover/redis.h"
#include "drover/tg.h"
#include "worker_int.h"

#define CONC_BASE_MS 50     /* first re-ask when no fleet-wide slot */
#define CONC_MAX_MS 1000    /* and the most between re-asks */
#define RETRY_MS 250        /* re-ask after a failed call */
#define HORIZON_MS 1000     /* a rate slot at most this far ahead is taken */

enum astate {
    A_CALL = 0,     /* in an admit call */
    A_WAIT,         /* asks again at due_ns */
    A_SLOT,         /* admitted: starts at due_ns (its rate slot) */
    A_RUN           /* handed to run.c: no longer held here */
};

/* A job's admission state (j->admit). */
struct wadmit {
    unsigned magic;
#define WADMIT_MAGIC 0xad317adU
    char *ukey;                 /* owned: its unique key, or NULL */
    size_t ulen;
    char *ckey;                 /* owned: its conc key, or NULL */
    size_t clen;
    char *rkey;                 /* owned: its rate key, or NULL */
    size_t rlen;
    char *member;               /* owned: ENTRY@CONSUMER with ckey */
    int claimed;                /* the id claim may name this entry */
    int lease;                  /* a fleet-wide slot is held */
    enum astate state;
    int64_t due_ns;             /* A_WAIT, A_SLOT: monotonic */
    unsigned refused;           /* conc refusals in a row (backoff) */
    struct wjob *job;           /* borrowed: whose state this is */
    LIST_ENTRY(wadmit) link;    /* on the held list until A_RUN */
};

/* The worker's admission (w->admit). */
struct wadmits {
    unsigned magic;
#define WADMITS_MAGIC 0xad31750aU
    struct drv_worker *w;           /* borrowed: owner */
    struct drv_redis_script *admit, *renew; /* owned */
    struct event *timer;            /* owned: the earliest due */
    LIST_HEAD(, wadmit) held;       /* the states of the jobs held here */
};

/* One admit call out: the jobs it decides. */
struct acall {
    unsigned magic;
#define ACALL_MAGIC 0xacaca11U
    struct drv_worker *w;   /* borrowed */
    struct wjob **jobs;     /* owned array of borrowed (held) jobs */
    int n;
};

static void
acall_free(struct acall *c)
{
    free(c->jobs);
    DRV_FREE_OBJ(c);
}

static struct wadmits *
admits(struct drv_worker *w)
{
    struct wadmits *a;

    DRV_CAST(a, w->admit, WADMITS_MAGIC);
    return a;
}

static struct wadmit *
state_of(const struct wjob *j)
{
    struct wadmit *s;

    DRV_CAST(s, j->admit, WADMIT_MAGIC);
    return s;
}

static int
limited(const struct drv_config_job *t)
{
    return t->unique_for_ms > 0 || t->rate_n > 0 ||
           t->global_concurrency > 0;
}

/* ------------------------------------------------------------ held list */

/* Off the held list: the job leaves admission (A_RUN). */
static void
unhold(struct wjob *j)
{
    struct wadmit *s = state_of(j);

    LIST_REMOVE(s, link);
    s->state = A_RUN;
}

/* Arm the timer for the earliest due of a waiting job. */
static void
arm(struct wadmits *a)
{
    int64_t first = 0, now = drv_clock_mono_ns();
    struct timeval tv;
    struct wadmit *s;

    LIST_FOREACH(s, &a->held, link)
        if (s->state != A_CALL && (first == 0 || s->due_ns < first))
            first = s->due_ns;
    event_del(a->timer);
    if (first == 0)
        return;
    tv = drv_clock_tv_from_ns(first > now ? first - now : 0);
    DRV_AZ(event_add(a->timer, &tv));
}

/* ------------------------------------------------------------ outcomes */

/* Out of the held list and into run.c (permits, task). */
static void
hand_over(struct wadmits *a, struct wjobs *run, struct wjob *j)
{
    unhold(j);
    a->w->inflight--; /* run.c counts it again */
    drv__jobs_add(run, j);
}

/* Back to its queue without an attempt counted (a lost lease: dropped),
 * as a job that waited for a permit at a stop; what it holds is released
 * by its settle run. */
static void
give_back(struct wjob *j)
{
    struct drv_tg_outcome o;

    unhold(j);
    memset(&o, 0, sizeof o);
    o.state = DRV_TG_CANCELLED;
    o.cause = DRV_TG_CAUSE_SHUTDOWN;
    o.code = -ECANCELED;
    drv__worker_on_outcome(NULL, &o, j);
    drv__worker_on_release(NULL, j);
}

/* A debug line about j; slot_ms (when not 0): when it may start. */
static void
log_job(struct drv_worker *w, const struct wjob *j, const char *msg,
        int64_t slot_ms)
{
    char qid[256];

    if (!drv_log_enabled(DRV_LOG_DEBUG))
        return;
    drv_log_quote(qid, sizeof qid, j->job->id, j->job->id_len);
    DRV_LOG_DEBUG(msg, "queue=%s job=%s id=%s entry=%s slot_ms=%lld",
                  w->queues[j->qi].keys.name, j->type->ht.cfg->name, qid,
                  j->job->entry_id, (long long)slot_ms);
}

/* Redis acked the duplicate: the record goes. */
static void
deduped(struct wadmits *a, struct wjob *j)
{
    struct drv_worker *w = a->w;

    unhold(j);
    state_of(j)->claimed = 0;
    w->stats.deduped++;
    drv__worker_metrics_deduped(j);
    log_job(w, j, "duplicate acked without running", 0);
    drv__worker_on_release(NULL, j);
    drv__job_settled(j);
}

/* ---------------------------------------------------------------- calls */

static void ask(struct wadmits *a, int qi, struct wjob **v, int n);

static void
on_admitted(struct drv_redis *r DRV_UNUSED, int status,
            const redisReply *reply, void *ctx)
{
    struct drv_queue_admit_answer *ans = NULL;
    struct wjobs run = {NULL, 0, 0};
    struct wadmits *a;
    struct acall *c;
    struct drv_err err;
    int64_t now;
    int i, rc;
    char qe[DRV_LOG_Q_MAX];

    DRV_CAST(c, ctx, ACALL_MAGIC);
    if (status == -ECANCELED) {
        /* the worker is being freed: drv__admit_fini frees the jobs */
        acall_free(c);
        return;
    }
    a = admits(c->w);
    now = drv_clock_mono_ns();
    rc = drv_redis_result(status, reply, &err);
    if (rc == 0) {
        ans = drv_xcalloc((size_t)c->n, sizeof *ans);
        rc = drv_queue_admit_parse(reply, c->n, ans, &err);
    }
    if (rc < 0) {
        drv__worker_redis_error(c->w, status, reply);
        if (rc != DRV_EDOWN)
            DRV_LOG_WARN("admission call failed: asking again", "jobs=%d "
                         "error=%s", c->n, drv_log_q(qe, sizeof qe, err.msg));
    }
    for (i = 0; i < c->n; i++) {
        struct wjob *j = c->jobs[i];
        struct wadmit *s = state_of(j);

        s->state = A_WAIT;
        s->due_ns = now + RETRY_MS * DRV_NS_PER_MS;
        if (rc < 0)
            continue;
        switch (ans[i].code) {
        case DRV_QUEUE_ADMIT_DEDUPED:
            deduped(a, j);
            continue;
        case DRV_QUEUE_ADMIT_LOST:
            j->lost = 1;
            give_back(j);
            continue;
        case DRV_QUEUE_ADMIT_RUN:
            log_job(c->w, j, "job admitted", ans[i].at_ms);
            s->claimed = s->ukey != NULL;
            s->lease = s->ckey != NULL;
            s->refused = 0;
            s->state = A_SLOT;
            s->due_ns = now + (ans[i].delay_ms > 0 ?
                               ans[i].delay_ms * DRV_NS_PER_MS : 0);
            break;
        case DRV_QUEUE_ADMIT_WAIT:
            s->claimed = s->ukey != NULL;
            if (ans[i].delay_ms >= 0) {
                s->due_ns = now + ans[i].delay_ms * DRV_NS_PER_MS;
            } else {
                if (s->refused == 0)
                    log_job(c->w, j, "no fleet-wide slot free: waiting",
                            0);
                s->refused++;
                s->due_ns = now + drv_backoff_ms(s->refused, CONC_BASE_MS,
                                                 CONC_MAX_MS,
                                                 drv_random64()) *
                                  DRV_NS_PER_MS;
            }
            break;
        }
        if (c->w->state != W_RUNNING || j->lost)
            give_back(j);
        else if (s->state == A_SLOT && s->due_ns <= now)
            hand_over(a, &run, j);
    }
    free(ans);
    acall_free(c);
    if (run.n > 0)
        drv__worker_admit_now(a->w, &run);
    drv__jobs_fini(&run);
    arm(a);
}

/* Ask Redis about the n held jobs v (all of queue qi): one script run. */
static void
ask(struct wadmits *a, int qi, struct wjob **v, int n)
{
    struct drv_worker *w = a->w;
    struct drv_script_call call;
    struct acall *c;
    int i, rc;

    DRV_ALLOC_OBJ(c, ACALL_MAGIC);
    c->w = w;
    c->n = n;
    c->jobs = drv_xmalloc((size_t)n * sizeof *c->jobs);
    drv_queue_admit_init(&call, &w->queues[qi].keys, w->id,
                         w->cfg->worker.visibility_timeout_ms);
    for (i = 0; i < n; i++) {
        struct wjob *j = v[i];
        struct wadmit *s = state_of(j);
        const struct drv_config_job *t = j->type->ht.cfg;
        struct drv_queue_admit_job q;
        int64_t period_us = t->rate_period_ms * 1000;

        memset(&q, 0, sizeof q);
        q.entry_id = j->job->entry_id;
        q.job_id = j->job->id;
        q.job_id_len = j->job->id_len;
        q.attempt = j->job->attempt;
        q.unique_key = s->ukey;
        q.unique_len = s->ulen;
        q.conc_key = s->ckey;
        q.conc_len = s->clen;
        q.conc_n = t->global_concurrency;
        q.member = s->member;
        q.rate_key = s->rkey;
        q.rate_len = s->rlen;
        if (s->rkey != NULL) {
            q.rate_interval_us = (period_us + t->rate_n - 1) / t->rate_n;
            q.rate_horizon_us = (t->rate_period_ms < HORIZON_MS ?
                                 t->rate_period_ms : HORIZON_MS) * 1000;
        }
        drv_queue_admit_add(&call, &q);
        s->state = A_CALL;
        c->jobs[i] = j;
    }
    rc = drv_redis_state(w->queues[qi].cmd) == DRV_REDIS_READY
         ? drv_redis_eval(w->queues[qi].cmd, a->admit, 0, &call.keys, &call.args,
                          on_admitted, c)
         : -ENOTCONN;
    drv_script_call_fini(&call);
    if (rc < 0) {
        int64_t due = drv_clock_mono_ns() + RETRY_MS * DRV_NS_PER_MS;

        for (i = 0; i < n; i++) {
            state_of(v[i])->state = A_WAIT;
            state_of(v[i])->due_ns = due;
        }
        acall_free(c);
    }
}

/* Ask about every held job of queue qi in the given state that is due
 * (A_CALL: just taken), then hand over the due slots. */
static void
ask_due(struct wadmits *a, int64_t now)
{
    struct drv_worker *w = a->w;
    struct wjobs run = {NULL, 0, 0};
    struct wjob **v = NULL, *j;
    struct wadmit *s, *next;
    size_t qi;
    int n;

    for (qi = 0; qi < w->nqueues; qi++) {
        n = 0;
        for (s = LIST_FIRST(&a->held); s != NULL; s = next) {
            next = LIST_NEXT(s, link);
            j = s->job;
            if ((int)qi != j->qi || s->state == A_CALL || s->due_ns > now)
                continue;
            if (w->state != W_RUNNING || j->lost) {
                give_back(j);
            } else if (s->state == A_SLOT) {
                hand_over(a, &run, j);
            } else {
                v = drv_xrealloc(v, (size_t)(n + 1) * sizeof *v);
                v[n++] = j;
            }
        }
        if (n > 0)
            ask(a, (int)qi, v, n);
    }
    free(v);
    if (run.n > 0)
        drv__worker_admit_now(w, &run);
    drv__jobs_fini(&run);
}

static void
on_timer(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct wadmits *a;

    DRV_CAST(a, arg, WADMITS_MAGIC);
    ask_due(a, drv_clock_mono_ns());
    arm(a);
}

/* ------------------------------------------------------------- taking */

/* The admission state of j, of limited type t: its keys. */
static struct wadmit *
state_create(struct drv_worker *w, struct wjob *j,
             const struct drv_config_job *t)
{
    const struct drv_queue_keys *k = &w->queues[j->qi].keys;
    const struct drv_field *f = NULL;
    const char *val = NULL;
    size_t vlen = 0, n;
    struct wadmit *s;

    DRV_ALLOC_OBJ(s, WADMIT_MAGIC);
    s->job = j;
    /* an id field makes duplicates possible; without one the id is the
     * entry id, never shared: nothing to hold. Pipeline steps carry the
     * pipeline's id: deduplication applies to plain jobs only */
    if (t->unique_for_ms > 0 && j->pipe == NULL &&
        j->job->id != j->job->entry_id)
        s->ukey = drv_queue_admit_key(k, "unique", t->name, j->job->id,
                                      j->job->id_len, &s->ulen);
    if (t->limit_field != NULL) {
        f = drv_job_field(j->job, t->limit_field);
        val = f != NULL ? f->value : "";
        vlen = f != NULL ? f->value_len : 0;
    }
    if (t->global_concurrency > 0) {
        s->ckey = drv_queue_admit_key(k, "conc", t->name, val, vlen,
                                      &s->clen);
        n = strlen(j->job->entry_id) + 1 + strlen(w->id) + 1;
        s->member = drv_xmalloc(n);
        snprintf(s->member, n, "%s@%s", j->job->entry_id, w->id);
    }
    if (t->rate_n > 0)
        s->rkey = drv_queue_admit_key(k, "rate", t->name, val, vlen,
                                      &s->rlen);
    return s;
}

void
drv__admit_take(struct drv_worker *w, struct wjobs *jobs)
{
    struct wadmits *a = admits(w);
    int i, kept = 0, taken = 0;
    size_t qi;

    for (i = 0; i < jobs->n; i++) {
        struct wjob *j = jobs->v[i];
        const struct drv_config_job *t = NULL;
        struct drv_err err;

        drv_err_clear(&err);
        if (drv__worker_job_validate(w->cfg, j->job, &t, &j->pipe, &j->step,
                                     &err) < 0 ||
            (j->pipe != NULL && j->pipe->steps[j->step].parallel) ||
            !limited(j->pipe != NULL ? j->pipe->steps[j->step].jobs[0]
                                     : t)) {
            j->pipe = NULL;
            j->step = -1;
            jobs->v[kept++] = j; /* admitted at once, as before */
            continue;
        }
        if (j->pipe != NULL)
            t = j->pipe->steps[j->step].jobs[0];
        j->type = drv__worker_type(w, t);
        j->admit = state_create(w, j, t);
        state_of(j)->state = A_WAIT;
        state_of(j)->due_ns = 0;
        w->inflight++;
        LIST_INSERT_HEAD(&a->held, state_of(j), link);
        taken++;
    }
    jobs->n = kept;
    if (taken == 0)
        return;
    /* one call per queue for what was just taken (due 0) */
    for (qi = 0; qi < w->nqueues; qi++) {
        struct wjob **v = NULL;
        struct wadmit *s;
        int n = 0;

        LIST_FOREACH(s, &a->held, link)
            if (s->job->qi == (int)qi && s->state == A_WAIT &&
                s->due_ns == 0) {
                v = drv_xrealloc(v, (size_t)(n + 1) * sizeof *v);
                v[n++] = s->job;
            }
        if (n > 0)
            ask(a, (int)qi, v, n);
        free(v);
    }
    arm(a);
}

/* --------------------------------------------------------------- settle */

void
drv__admit_settle_tail(struct drv_worker *w, struct drv_script_call *call,
                       struct wjob **jobs, int n)
{
    struct wadmits *a = admits(w);
    int64_t now_ms = drv_clock_unix_ms();
    int64_t hold = 2 * w->cfg->worker.visibility_timeout_ms;
    int i, count = 0, freed = 0;

    for (i = 0; i < n; i++)
        if (jobs[i]->admit != NULL && (state_of(jobs[i])->claimed ||
                                       state_of(jobs[i])->lease))
            count++;
    if (count == 0)
        return;
    drv_queue_admit_settle_begin(call, count);
    for (i = 0; i < n; i++) {
        struct wjob *j = jobs[i];
        struct wadmit *s;
        const struct drv_settle_op *op = &j->dec.op;
        int64_t uf, ttl = 0;
        char set[32];
        const char *uset = NULL;

        if (j->admit == NULL)
            continue;
        s = state_of(j);
        if (!s->claimed && !s->lease)
            continue;
        uf = j->type->ht.cfg->unique_for_ms;
        switch (op->kind) {
        case DRV_SETTLE_ACK:
            uset = "ok";
            ttl = uf;
            break;
        case DRV_SETTLE_RETRY:
        case DRV_SETTLE_REQUEUE:
            /* the job waits (delayed, or on the stream): its next entry,
             * with this attempt, takes the id over */
            snprintf(set, sizeof set, "w:%llu", (unsigned long long)
                     (op->kind == DRV_SETTLE_RETRY ? op->attempts
                                                   : j->job->attempt));
            uset = set;
            ttl = (uf > hold ? uf : hold) +
                  (op->kind == DRV_SETTLE_RETRY && op->due_ms > now_ms ?
                   op->due_ms - now_ms : 0);
            break;
        default:
            /* dead (or anything else that ends the job): the id is free */
            uset = NULL;
            break;
        }
        drv_queue_admit_settle_add(call, i + 1, j->job->entry_id,
                                   s->claimed ? s->ukey : NULL, s->ulen,
                                   uset, ttl, s->lease ? s->ckey : NULL,
                                   s->clen, s->member);
        freed += s->lease;
    }
    if (freed == 0)
        return;
    /* slots come free with this run: jobs waiting for one ask again on
     * the next turn, after it (same connection, in order) */
    {
        struct wadmit *s;
        int64_t now = drv_clock_mono_ns();

        LIST_FOREACH(s, &a->held, link)
            if (s->state == A_WAIT && s->ckey != NULL && s->refused > 0) {
                s->due_ns = now;
                s->refused = 0;
            }
        arm(a);
    }
}

/* ---------------------------------------------------------------- renew */

void
drv__admit_renew(struct drv_worker *w)
{
    struct wadmits *a = admits(w);
    size_t qi;

    for (qi = 0; qi < w->nqueues; qi++) {
        struct drv_script_call call;
        struct wjob *j;
        int n = 0;

        drv_queue_admit_renew_init(&call,
                                   w->cfg->worker.visibility_timeout_ms);
        LIST_FOREACH(j, &w->live, link) {
            struct wadmit *s;

            if (j->qi != (int)qi || j->admit == NULL || j->lost)
                continue;
            s = state_of(j);
            if (!s->claimed && !s->lease)
                continue;
            drv_queue_admit_renew_add(&call, j->job->entry_id,
                                      s->claimed ? s->ukey : NULL, s->ulen,
                                      s->lease ? s->ckey : NULL, s->clen,
                                      s->member);
            n++;
        }
        if (n > 0)
            drv_redis_eval(w->queues[qi].cmd, a->renew, 0, &call.keys, &call.args,
                           NULL, NULL);
        drv_script_call_fini(&call);
    }
}

/* ------------------------------------------------------------ lifecycle */

void
drv__admit_drain(struct drv_worker *w)
{
    struct wadmits *a;
    struct wadmit *s, *next;

    if (w->admit == NULL)
        return;
    a = admits(w);
    for (s = LIST_FIRST(&a->held); s != NULL; s = next) {
        next = LIST_NEXT(s, link);
        if (s->state != A_CALL)
            give_back(s->job); /* in a call: given back at its reply */
    }
    arm(a);
}

/* The admission of w, one of whose job types is limited (freed by
 * drv__admit_fini). */
static struct wadmits *
admits_create(struct drv_worker *w)
{
    struct wadmits *a = NULL;

    DRV_ALLOC_OBJ(a, WADMITS_MAGIC);
    a->w = w;
    LIST_INIT(&a->held);
    a->admit = drv_redis_script_create(drv_queue_admit_script.text,
                                       strlen(drv_queue_admit_script.text));
    a->renew = drv_redis_script_create(
        drv_queue_admit_renew_script.text,
        strlen(drv_queue_admit_renew_script.text));
    a->timer = evtimer_new(w->base, on_timer, a);
    DRV_AN(a->timer);
    return a;
}

void
drv__admit_init(struct drv_worker *w)
{
    size_t i;

    w->admit = NULL;
    for (i = 0; i < w->cfg->njobs; i++)
        if (limited(w->cfg->jobs[i])) {
            w->admit = admits_create(w);
            return;
        }
}

void
drv__admit_fini(struct drv_worker *w)
{
    struct wadmits *a = w->admit;

    if (DRV_NO_OBJ(a, WADMITS_MAGIC))
        return;
    /* the jobs still held: their entries stay pending in Redis */
    while (!LIST_EMPTY(&a->held)) {
        struct wjob *j = LIST_FIRST(&a->held)->job;

        unhold(j);
        drv__job_unref(j); /* task side */
        drv__job_unref(j); /* settle side (already off the live list) */
    }
    event_free(a->timer);
    drv_redis_script_free(a->admit);
    drv_redis_script_free(a->renew);
    DRV_FREE_OBJ(a);
    w->admit = NULL;
}

void
drv__admit_job_free(struct wjob *j)
{
    struct wadmit *s;

    if (j->admit == NULL)
        return;
    s = state_of(j);
    j->admit = NULL;
    free(s->ukey);
    free(s->ckey);
    free(s->rkey);
    free(s->member);
    DRV_FREE_OBJ(s);
}
