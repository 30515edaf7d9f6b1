/*
 * graph.c -- the worker's side of graph pipelines (doc/pipeline-graphs.md).
 *
 * DESIGN. A graph entry is a job like any other until its outcome:
 *   - the run's first entry (field pipeline names a graph, no field run)
 *     runs no handler: its task succeeds at once, and its settle creates
 *     the run and enqueues the nodes without needs;
 *   - a node's entry (fields run, node, home) runs the node's job type
 *     with the node's timeout; its outcome is decided with the node's
 *     retries and backoff (outcome.c).
 * Every outcome of a graph entry except a requeue (shutdown: the entry
 * goes back as it is, through settle.c) is written by ONE graph script
 * call (pkg/queue/queue_graph.c), which checks ownership, records the
 * node, hands off to the nodes that became ready and acknowledges the
 * entry, atomically. A call that fails (connection lost, Redis refusing)
 * is sent again after RETRY_MS until Redis answers: the script is
 * idempotent for an entry (once it ran, the entry is no longer ours and
 * a second run changes nothing), and the job stays on the live list
 * meanwhile, so its lease keeps being renewed. A call Redis refused
 * (OOM, NOPERM) marks the job graph_refused, so a graceful stop past its
 * deadline does not wait for it (worker.c).
 *
 * On Redis Cluster a hand-off to or from a node on another queue (another
 * slot) comes back in the reply as a box record (pkg/queue/
 * queue_graph_xslot.c); graph_xslot.c takes the steps that deliver it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/handlers.h"
#include "drover/log.h"
#include "drover/queue_graph.h"
#include "drover/redis.h"
#include "drover/tg.h"
#include "graph_int.h"
#include "worker_int.h"

#define RETRY_MS 250

/* One graph call out. */
struct gcall {
    unsigned magic;
#define GCALL_MAGIC 0x9ca119caU
    struct wjob *j;                 /* borrowed: settle-side reference */
};

static void send_settle(struct wjob *j);

/* ------------------------------------------------------------ helpers */

static int
is_graph(const struct wjob *j)
{
    return j->pipe != NULL && j->pipe->ngraph > 0;
}

/* The value of field name of j (borrowed), or NULL. */
static const struct drv_field *
field(const struct wjob *j, const char *name)
{
    return drv_job_field(j->job, name);
}

static void
on_retry(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *ctx)
{
    struct wgraph *g;
    struct wjob **v;
    int i, n;

    DRV_CAST(g, ctx, WGRAPH_MAGIC);
    v = g->retry;
    n = g->nretry;
    g->retry = NULL;
    g->nretry = 0;
    g->capretry = 0;
    for (i = 0; i < n; i++)
        send_settle(v[i]);
    free(v);
}

static void
retry_later(struct wgraph *g, struct wjob *j)
{
    struct timeval tv = {0, RETRY_MS * 1000};

    if (g->nretry == g->capretry) {
        g->capretry = g->capretry ? g->capretry * 2 : 8;
        g->retry = drv_xrealloc(g->retry,
                                (size_t)g->capretry * sizeof *g->retry);
    }
    g->retry[g->nretry++] = j;
    if (g->nretry == 1)
        DRV_AZ(event_add(g->retry_ev, &tv));
}

/* ------------------------------------------------------------- public */

void
drv__worker_graph_init(struct drv_worker *w)
{
    const struct drv_config *cfg = w->cfg;
    struct wgraph *g = NULL;
    size_t i;

    for (i = 0; i < cfg->npipelines; i++)
        if (cfg->pipelines[i]->ngraph > 0)
            break;
    if (i == cfg->npipelines)
        return;
    DRV_ALLOC_OBJ(g, WGRAPH_MAGIC);
    g->w = w;
    g->script = drv_redis_script_create(drv_queue_graph_script.text,
                                        strlen(drv_queue_graph_script.text));
    g->specs = drv_xcalloc(cfg->npipelines, sizeof *g->specs);
    for (i = 0; i < cfg->npipelines; i++)
        if (cfg->pipelines[i]->ngraph > 0)
            g->specs[i] = drv_queue_graph_spec(cfg->pipelines[i]);
    g->retry_ev = event_new(w->base, -1, 0, on_retry, g);
    DRV_AN(g->retry_ev);
    w->graph = g;
    drv__graph_xslot_init(g);
}

void
drv__worker_graph_fini(struct drv_worker *w)
{
    struct wgraph *g = w->graph;

    if (DRV_NO_OBJ(g, WGRAPH_MAGIC))
        return;
    drv__graph_xslot_fini(g);
    event_free(g->retry_ev);
    /* jobs waiting for a resend stay pending in Redis: job.c detaches
     * them with every live job */
    free(g->retry);
    drv_redis_script_free(g->script);
    drv_strv_free(g->specs, w->cfg->npipelines);
    DRV_FREE_OBJ(g);
    w->graph = NULL;
}

int
drv__graph_validate(const struct drv_job *job,
                    const struct drv_config_pipeline *pipe,
                    int64_t *step_out, struct drv_err *err)
{
    const struct drv_config_gnode *n = NULL;
    const struct drv_field *f = drv_job_field(job, "node");
    char name[128];
    size_t idx = 0;

    *step_out = -1;
    if (drv_job_field(job, "run") == NULL)
        return 0; /* the run's first entry */
    if (f == NULL || drv_job_field(job, "home") == NULL)
        return drv_err_set(err, DRV_EBADJOB, "a graph entry needs fields "
                           "node and home");
    if (f->value_len >= sizeof name || memchr(f->value, 0, f->value_len))
        return drv_err_set(err, DRV_EBADJOB, "field node: not a name");
    memcpy(name, f->value, f->value_len);
    name[f->value_len] = '\0';
    n = drv_config_gnode(pipe, name, &idx);
    if (n == NULL)
        return drv_err_set(err, DRV_EBADJOB, "field node: pipeline %s has "
                           "no node %s", pipe->name, name);
    *step_out = (int64_t)idx;
    return drv_handler_check(n->job, job, err);
}

/* The first entry's task: nothing to run, its settle starts the run. */
static void
start_run(struct drv_tg_task *t, void *ctx DRV_UNUSED)
{
    drv_tg_task_done(t, 0, NULL, NULL);
}

/* Nothing to stop: start_run finishes it at once. */
static void
cancel_run(struct drv_tg_task *t DRV_UNUSED,
           enum drv_tg_cause cause DRV_UNUSED, void *ctx DRV_UNUSED)
{
}

void
drv__graph_task_opts(struct drv_worker *w, struct wjob *j,
                     struct drv_tg_task_opts *to)
{
    const struct drv_config_gnode *n = NULL;

    if (j->step < 0) {
        to->kind = DRV_TG_LOOP;
        to->name = j->pipe->name;
        to->start = start_run;
        to->cancel = cancel_run;
        to->ctx = j;
        return;
    }
    n = &j->pipe->graph[j->step];
    j->type = drv__worker_type(w, n->job);
    drv__worker_task_opts(w, j, to);
    to->timeout_ms = n->policy.timeout_ms;
}

const struct drv_config_policy *
drv__graph_policy(const struct wjob *j)
{
    if (j->step < 0)
        return NULL;
    return &j->pipe->graph[j->step].policy;
}

int
drv__graph_settles(const struct wjob *j)
{
    return is_graph(j) && j->dec.op.kind != DRV_SETTLE_REQUEUE;
}

/* --------------------------------------------------------------- settle */

static void
on_settled(struct drv_redis *r DRV_UNUSED, int status, const redisReply *reply,
           void *ctx)
{
    struct gcall *c;
    struct wjob *j;
    struct drv_worker *w;
    struct drv_err err;
    struct drv_queue_graph_boxes boxes = {NULL, 0, 0, 0};
    long long code = 0;
    char qid[256];
    int rc;
    char qe[DRV_LOG_Q_MAX];

    DRV_CAST(c, ctx, GCALL_MAGIC);
    j = c->j;
    DRV_FREE_OBJ(c);
    if (status == -ECANCELED)
        return; /* the worker is being freed: the entry stays pending */
    w = j->w;
    rc = drv_redis_result(status, reply, &err);
    if (rc == 0)
        rc = drv_queue_graph_reply(reply, &code, &boxes, &err);
    if (rc < 0) {
        /* Redis answered with an error (not a redirection): refused */
        j->graph_refused = !drv__worker_redis_error(w, status, reply) &&
                           status == 0 && reply != NULL &&
                           reply->type == REDIS_REPLY_ERROR;
        drv_queue_graph_boxes_fini(&boxes);
        DRV_LOG_DEBUG("graph settle: no answer, sent again later",
                      "entry=%s error=%s", j->job->entry_id,
                      drv_log_q(qe, sizeof qe, err.msg));
        if (rc != DRV_EDOWN &&
            drv_clock_mono_ns() - w->graph->logged_ns >= BAD_LOG_NS) {
            w->graph->logged_ns = drv_clock_mono_ns();
            DRV_LOG_WARN("graph settle failed: will retry", "queue=%s "
                         "entry=%s error=%s", w->queues[j->qi].keys.name,
                         j->job->entry_id, drv_log_q(qe, sizeof qe, err.msg));
        }
        retry_later(w->graph, j);
        drv__worker_check_stopped(w);
        return;
    }
    j->graph_refused = 0;
    /* hand-offs to other slots (Cluster): delivered from here on */
    drv__graph_deliver(w->graph, w->queues[j->qi].keys.name, &boxes);
    drv_queue_graph_boxes_fini(&boxes);
    if (code == DRV_QUEUE_LOST) {
        w->stats.lost++;
        drv_log_quote(qid, sizeof qid, j->job->id, j->job->id_len);
        DRV_LOG_WARN("lost lease: outcome not written", "queue=%s "
                     "pipeline=%s id=%s entry=%s", w->queues[j->qi].keys.name,
                     j->pipe->name, qid, j->job->entry_id);
    }
    drv__job_settled(j);
    drv__worker_kick(w);
}

/* The graph op of a decided settle kind. REQUEUE never comes here; any
 * other kind (a cancel of the entry) ends the node cancelled. */
static enum drv_graph_kind
kind_of(enum drv_settle_kind k)
{
    switch (k) {
    case DRV_SETTLE_ACK:
    case DRV_SETTLE_NEXT:
        return DRV_GRAPH_OK;
    case DRV_SETTLE_RETRY:
        return DRV_GRAPH_RETRY;
    case DRV_SETTLE_DEAD:
        return DRV_GRAPH_DEAD;
    default:
        return DRV_GRAPH_CANCEL;
    }
}

/* Build and send j's graph call; on failure to send, retried later. */
static void
send_settle(struct wjob *j)
{
    struct drv_worker *w = j->w;
    struct wgraph *g = w->graph;
    const struct drv_settle_op *d = &j->dec.op;
    const struct drv_field *run = field(j, "run");
    const struct drv_field *home = field(j, "home");
    struct drv_script_call call;
    struct drv_graph_op op;
    struct gcall *c = NULL;
    char *homez = NULL;
    size_t pi;

    memset(&op, 0, sizeof op);
    op.kind = kind_of(d->kind);
    op.entry_id = j->job->entry_id;
    op.job_id = j->job->id;
    op.job_id_len = j->job->id_len;
    op.attempts = d->attempts;
    op.text = d->text;
    op.text_len = d->text != NULL ? d->text_len : 0;
    op.due_ms = d->due_ms;
    op.started_at_ms = j->started_ms;
    op.state_ttl_ms = j->pipe->policy.result_ttl_ms;
    op.dead_max = w->dead_bound.max;
    op.xslot = w->cluster != NULL;
    if (run == NULL) {
        /* the run's first entry: the run is its job id, on this queue */
        for (pi = 0; w->cfg->pipelines[pi] != j->pipe; pi++)
            ;
        op.kind = DRV_GRAPH_START;
        op.spec = g->specs[pi];
        op.home = w->queues[j->qi].keys.name;
        op.run_id = j->job->id;
        op.run_id_len = j->job->id_len;
    } else {
        homez = drv_xstrndup(home != NULL ? home->value : "",
                             home != NULL ? home->value_len : 0);
        op.home = homez;
        op.run_id = run->value;
        op.run_id_len = run->value_len;
    }
    drv_queue_graph_settle(&call, &w->queues[j->qi].keys,
                           w->cfg->redis.prefix, w->id, drv_clock_unix_ms(),
                           &op);
    free(homez);
    DRV_ALLOC_OBJ(c, GCALL_MAGIC);
    c->j = j;
    if (drv_redis_eval(w->queues[j->qi].cmd, g->script, 0, &call.keys,
                       &call.args,
                       on_settled, c) < 0) {
        DRV_FREE_OBJ(c);
        retry_later(g, j);
    }
    drv_script_call_fini(&call);
}

void
drv__graph_settle(struct wjob *j)
{
    DRV_ASSERT(is_graph(j));
    send_settle(j);
}
