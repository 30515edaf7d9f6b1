/*
 * settle.c -- an attempt's outcome becomes a settle op (outcome.c decides
 * it), and the ops are written in pipelined settle script calls.
 *
 * DESIGN
 * An outcome becomes a settle op queued on its queue at once. The
 * deferred pass (drv__worker_kick) sends, per queue, one settle script
 * call holding every op queued since the last one (at most SETTLE_MAX),
 * so at load many jobs settle in one round trip while a lone job settles
 * on the next loop turn. One call per queue is out at a time; ops that
 * arrive meanwhile wait for the next one (coalescing).
 *
 * A failed call (connection lost, timeout) puts its jobs back in the
 * queue's list; they are sent again when the connection is READY. The
 * script checks ownership, so a resend after an unknown outcome cannot
 * apply twice: the second run finds the entry acked and reports LOST.
 * Until settled a job stays on the live list, so its lease is renewed and
 * no other worker reclaims it while we retry.
 *
 * A call Redis answers with an error (it ran nothing: the scripts check
 * key types before they write, and out of memory refuses the first
 * write) is not sent again at once: the queue's next call waits
 * REFUSED_BASE_MS doubling to REFUSED_MAX_MS, with jitter, and the
 * queue fetches nothing while its outcomes wait. WRONGTYPE concerns one
 * queue (it is skipped, worker.c); any other error (OOM, NOPERM,
 * READONLY, ...) all of Redis: the worker stops fetching, the mover and
 * reclaim wait, and one line says when it began and one when it ended.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "drover/buf.h"
#include "drover/clock.h"
#include "drover/common.h"
#include "drover/log.h"
#include "drover/redis.h"
#include "worker_int.h"

#define SETTLE_MAX 512
#define REFUSED_BASE_MS 100
#define REFUSED_MAX_MS 5000
#define REDIRECT_RETRY_NS (50 * DRV_NS_PER_MS) /* ASK, TRYAGAIN: again */

/* ------------------------------------------------------------- settle */

static void
settle_queue(struct wjob *j)
{
    struct drv_worker *w = j->w;
    struct wqueue *q = &w->queues[j->qi];

    DRV_ASSERT(!j->settle_pending);
    if (q->npend == q->cappend) {
        q->cappend = q->cappend ? q->cappend * 2 : 64;
        q->pend = drv_xrealloc(q->pend, (size_t)q->cappend * sizeof *q->pend);
    }
    q->pend[q->npend++] = j;
    w->settle_waiting++;
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

/* Outcomes not yet written, on every queue. */
static int
waiting(const struct drv_worker *w)
{
    return w->settle_waiting;
}

/* Redis answered c with an error: its jobs wait with backoff. */
static void
settle_refused(struct settle_call *c, const redisReply *reply,
               const struct drv_err *err)
{
    struct drv_worker *w = c->w;
    struct wqueue *q = &w->queues[c->qi];
    int64_t now = drv_clock_mono_ns();
    int i;
    char qe[DRV_LOG_Q_MAX];

    for (i = 0; i < c->n; i++) {
        c->jobs[i]->settle_pending = 0;
        settle_queue(c->jobs[i]);
    }
    q->settle_fails++;
    q->settle_retry_ns = now + drv_backoff_ms(q->settle_fails,
                                              REFUSED_BASE_MS, REFUSED_MAX_MS,
                                              drv_random64()) * DRV_NS_PER_MS;
    if (drv_redis_reply_error_is(reply, "WRONGTYPE")) {
        drv__worker_queue_bad(w, c->qi, err->msg);
        return;
    }
    if (drv_redis_reply_error_is(reply, "NOGROUP"))
        drv__worker_prepare(w, c->qi);
    if (w->refused_ns != 0)
        return;
    w->refused_ns = now;
    w->refused_waiting = waiting(w);
    DRV_LOG_ERROR("Redis refuses writes: outcomes wait, retried with "
                  "backoff; fetching paused", "queue=%s waiting=%d "
                  "error=%s", q->keys.name, w->refused_waiting,
                  drv_log_q(qe, sizeof qe, err->msg));
}

/* A call went through: the end of a refusal, if there was one. */
static void
settle_accepted(struct settle_call *c)
{
    struct drv_worker *w = c->w;
    struct wqueue *q = &w->queues[c->qi];
    int64_t now = drv_clock_mono_ns();

    q->settle_fails = 0;
    q->settle_retry_ns = 0;
    if (w->refused_ns == 0)
        return;
    DRV_LOG_INFO("Redis accepts writes again", "queue=%s after_s=%.1f "
                 "written=%d waiting=%d", q->keys.name,
                 (double)(now - w->refused_ns) / DRV_NS_PER_SEC, c->n,
                 waiting(w));
    w->refused_ns = 0;
}

static void
on_settled(struct drv_redis *r DRV_UNUSED, int status, const redisReply *reply,
           void *ctx)
{
    struct settle_call *c;
    struct drv_worker *w;
    struct wqueue *q;
    struct drv_err err;
    int *codes = NULL;
    int i, rc;
    char qe[DRV_LOG_Q_MAX];

    DRV_CAST(c, ctx, SETTLE_CALL_MAGIC);
    if (status == -ECANCELED) {
        /* the worker is being freed: the entries stay pending in Redis */
        free(c->jobs);
        DRV_FREE_OBJ(c);
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
    if (rc < 0 && drv__worker_redis_error(w, status, reply)) {
        /* a cluster redirection: not applied; send again once the slot's
         * connection points at its owner (MOVED), or after a short pause
         * (ASK, TRYAGAIN: the slot is being migrated) */
        q->settle_retry_ns = drv_clock_mono_ns() + REDIRECT_RETRY_NS;
        for (i = 0; i < c->n; i++) {
            c->jobs[i]->settle_pending = 0;
            settle_queue(c->jobs[i]);
        }
    } else if (rc == DRV_EREDIS && status == 0 &&
               reply->type == REDIS_REPLY_ERROR) {
        settle_refused(c, reply, &err);
    } else if (rc < 0) {
        /* unknown whether it applied: keep the jobs and send again */
        if (rc != DRV_EDOWN)
            DRV_LOG_WARN("settle failed: will retry", "queue=%s jobs=%d "
                         "error=%s", q->keys.name, c->n,
                         drv_log_q(qe, sizeof qe, err.msg));
        for (i = 0; i < c->n; i++) {
            c->jobs[i]->settle_pending = 0;
            settle_queue(c->jobs[i]);
        }
    } else {
        settle_accepted(c);
        for (i = 0; i < c->n; i++) {
            struct wjob *j = c->jobs[i];
            char qid[256];

            if (codes[i] != DRV_QUEUE_DONE)
                drv_log_quote(qid, sizeof qid, j->job->id, j->job->id_len);
            if (codes[i] == DRV_QUEUE_LOST) {
                w->stats.lost++;
                DRV_LOG_WARN("lost lease: outcome not written", "queue=%s "
                             "job=%s id=%s entry=%s", q->keys.name,
                             j->type ? j->type->ht.cfg->name : "-",
                             qid, j->job->entry_id);
            } else if (codes[i] == DRV_QUEUE_GONE) {
                DRV_LOG_WARN("payload gone: entry acked", "queue=%s id=%s",
                             q->keys.name, qid);
            } else if (codes[i] == DRV_QUEUE_CANCELLED) {
                w->stats.cancelled++;
                DRV_LOG_INFO("job cancelled (drover cancel) instead of "
                             "its next run", "queue=%s id=%s", q->keys.name,
                             qid);
            }
            drv__job_settled(j);
        }
    }
    free(codes);
    free(c->jobs);
    DRV_FREE_OBJ(c);
    drv__worker_kick(w);
}

static int
cmp_plain(const void *a, const void *b)
{
    const struct wjob *x = *(struct wjob *const *)a;
    const struct wjob *y = *(struct wjob *const *)b;

    return drv_queue_id_cmp(x->dec.op.entry_id, y->dec.op.entry_id);
}

/* The call's ops in the order the script settles cheapest: the full ops
 * as they came, then the plain acks in entry id order (jobs finish
 * mostly in fetch order, so they are usually sorted already). */
static void
order_ops(struct wjob **jobs, int n)
{
    int i, nfull = 0, sorted = 1;
    struct wjob *t;

    for (i = 0; i < n; i++)
        if (!drv_settle_plain(&jobs[i]->dec.op)) {
            /* stable: rotate the full op down over the acks before it */
            t = jobs[i];
            memmove(jobs + nfull + 1, jobs + nfull,
                    (size_t)(i - nfull) * sizeof *jobs);
            jobs[nfull++] = t;
        }
    for (i = nfull + 1; i < n && sorted; i++)
        sorted = cmp_plain(&jobs[i - 1], &jobs[i]) <= 0;
    if (!sorted)
        qsort(jobs + nfull, (size_t)(n - nfull), sizeof *jobs, cmp_plain);
}

static void
flush_queue(struct drv_worker *w, int qi)
{
    struct wqueue *q = &w->queues[qi];
    struct drv_script_call call;
    struct settle_call *c;
    int i, n;

    if (q->settle_inflight || q->npend == 0 ||
        drv_redis_state(q->cmd) != DRV_REDIS_READY)
        return;
    if (q->settle_retry_ns != 0 && drv_clock_mono_ns() < q->settle_retry_ns)
        return; /* refused: the tick kicks again */
    n = q->npend < SETTLE_MAX ? q->npend : SETTLE_MAX;
    DRV_ALLOC_OBJ(c, SETTLE_CALL_MAGIC);
    c->w = w;
    c->qi = qi;
    c->n = n;
    c->jobs = drv_xmalloc((size_t)n * sizeof *c->jobs);
    drv_settle_init(&call, &q->keys, w->id, drv_clock_unix_ms(),
                    &w->dead_bound);
    memcpy(c->jobs, q->pend, (size_t)n * sizeof *c->jobs);
    order_ops(c->jobs, n);
    for (i = 0; i < n; i++)
        drv_settle_add(&call, &q->keys, &c->jobs[i]->dec.op);
    if (w->admit != NULL)
        drv__admit_settle_tail(w, &call, c->jobs, n);
    memmove(q->pend, q->pend + n, (size_t)(q->npend - n) * sizeof *q->pend);
    q->npend -= n;
    w->settle_waiting -= n;
    q->settle_inflight = 1;
    if (drv__worker_script(w, qi, SCRIPT_SETTLE, &call, on_settled, c) < 0) {
        q->settle_inflight = 0;
        for (i = 0; i < n; i++) {
            c->jobs[i]->settle_pending = 0;
            settle_queue(c->jobs[i]);
        }
        free(c->jobs);
        DRV_FREE_OBJ(c);
    }
}

void
drv__worker_settle_flush(struct drv_worker *w)
{
    size_t i;

    for (i = 0; i < w->nqueues; i++)
        flush_queue(w, (int)i);
}

/* Send a script call built by pkg/queue on queue qi's command
 * connection. */
int
drv__worker_script(struct drv_worker *w, int qi, int which,
                   struct drv_script_call *call, drv_redis_reply_fn *cb,
                   void *ctx)
{
    int rc = drv_redis_eval(w->queues[qi].cmd, w->scripts[which], 0,
                            &call->keys, &call->args, cb, ctx);

    drv_script_call_fini(call);
    return rc;
}

/* ------------------------------------------------------------ outcome */

/* Log a failure that is retried or dead-lettered. */
static void
log_failure(const struct wjob *j)
{
    const struct drv_settle_op *op = &j->dec.op;
    char qid[256], qerr[1024];
    const char *name;

    name = j->pipe ? j->pipe->name : j->type ? j->type->ht.cfg->name : "-";
    drv_log_quote(qid, sizeof qid, j->job->id, j->job->id_len);
    drv_log_quote(qerr, sizeof qerr, op->text != NULL ? op->text : "",
                  op->text_len);
    DRV_LOG_WARN(op->kind == DRV_SETTLE_RETRY ? "job failed: retrying"
                                              : "job failed: dead",
                 "queue=%s %s=%s id=%s attempt=%llu error=%s",
                 j->w->queues[j->qi].keys.name,
                 j->pipe ? "pipeline" : "job", name, qid,
                 (unsigned long long)op->attempts, qerr);
}

void
drv__worker_on_outcome(struct drv_tg_task *t DRV_UNUSED,
                       const struct drv_tg_outcome *o, void *ctx)
{
    struct drv_outcome_in in;
    struct drv_worker *w;
    struct wjob *j;

    DRV_CAST(j, ctx, WJOB_MAGIC);
    w = j->w;
    if (j->running) {
        j->running = 0;
        w->stats.running--;
    }
    memset(&in, 0, sizeof in);
    in.o = o;
    if (j->type != NULL)
        in.policy = &j->type->ht.cfg->policy;
    if (j->pipe != NULL && j->pipe->ngraph > 0) {
        in.policy = drv__graph_policy(j);
    } else if (j->pipe != NULL) {
        if (j->type == NULL)
            in.policy = &j->pipe->policy; /* a parallel step */
        in.result_ttl_ms = j->pipe->policy.result_ttl_ms;
        in.nsteps = j->pipe->nsteps;
        if (j->pipe->steps[j->step].parallel && j->type == NULL &&
            j->bad.code == 0)
            in.parallel = &j->pipe->steps[j->step];
    } else if (j->type != NULL) {
        in.result_ttl_ms = j->type->ht.cfg->policy.result_ttl_ms;
    } else { /* cannot run: the ttl of the type it names, if known */
        in.result_ttl_ms = drv__worker_named_ttl(w->cfg, j->job);
    }
    in.step = j->step;
    in.attempt = j->job->attempt;
    in.now_ms = drv_clock_unix_ms();
    in.random = drv_random64;
    in.retry_after_ms = j->run.retry_after_ms;
    in.lost = j->lost;
    in.cancel_requested = j->cancel_req;
    drv_outcome_decide(&in, &j->dec);
    if (j->run.has_rusage) { /* an exec child's resources: result hash */
        j->dec.op.has_rusage = 1;
        j->dec.op.cpu_ms = j->run.cpu_ns / DRV_NS_PER_MS;
        j->dec.op.max_rss_kb = j->run.max_rss_kb;
    }
    drv__worker_metrics_outcome(j, o);
    drv__worker_progress_end(j);
    if (j->dec.drop) {
        drv__job_settled(j);
        drv__worker_kick(w);
        return;
    }
    j->dec.op.entry_id = j->job->entry_id;
    j->dec.op.job_id = j->job->id;
    j->dec.op.job_id_len = j->job->id_len;
    j->dec.op.started_at_ms = j->started_ms;
    switch (j->dec.op.kind) {
    case DRV_SETTLE_ACK:
    case DRV_SETTLE_NEXT:
        w->stats.ok++;
        break;
    case DRV_SETTLE_RETRY:
        w->stats.retried++;
        log_failure(j);
        drv__worker_due_retry(w, j->qi, j->dec.op.due_ms);
        break;
    case DRV_SETTLE_DEAD:
        w->stats.dead++;
        log_failure(j);
        break;
    case DRV_SETTLE_REQUEUE:
        w->stats.requeued++;
        break;
    case DRV_SETTLE_CANCEL:
        w->stats.cancelled++;
        break;
    }
    if (drv__graph_settles(j))
        drv__graph_settle(j);
    else
        settle_queue(j);
}

