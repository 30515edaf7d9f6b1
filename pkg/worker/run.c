/*
 * run.c -- admission: each batch of fetched (or reclaimed) jobs becomes
 * one task group (COLLECT), each job a task that runs its handler through
 * the handler table, with its type's timeout, holding a permit of its job
 * type's semaphore (if limited), of the thread semaphore (pool jobs) and
 * of the process semaphore, in that global order.
 *
 * The task's outcome goes to settle.c at once (drv__worker_on_outcome),
 * so a finished job never waits for a slow batch-mate; the batch's report
 * is logged when the group is outcome-complete.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/log.h"
#include "drover/sem.h"
#include "drover/tg.h"
#include "worker_int.h"

/* --------------------------------------------------------- task hooks */

void
drv__worker_job_started(struct wjob *j)
{
    j->running = 1;
    j->started = 1;
    j->started_ms = drv_clock_unix_ms();
    j->w->stats.running++;
    j->w->stats.started++;
    drv__worker_metrics_started(j);
    if (j->w->trace != NULL)
        drv__worker_trace_start(j->w, j);
}

/* LOOP: count the job as running, then its handler's start. */
static void
start_task(struct drv_tg_task *t DRV_UNUSED, void *ctx)
{
    struct wjob *j;

    DRV_CAST(j, ctx, WJOB_MAGIC);
    drv__worker_job_started(j);
    j->run.ht->ops->run.start(&j->run);
}

static void
cancel_task(struct drv_tg_task *t DRV_UNUSED, enum drv_tg_cause cause,
            void *ctx)
{
    struct wjob *j;

    DRV_CAST(j, ctx, WJOB_MAGIC);
    drv_hrun_cancel(&j->run, cause);
}

/* THREAD: the handler's work, on a pool thread. The job's run record is
 * immutable while the task lives. */
static int
work_task(struct drv_tg_task *t DRV_UNUSED, struct drv_err *err, void *ctx)
{
    struct wjob *j = ctx;

    return j->run.ht->ops->run.work(&j->run, err);
}

/* A job that cannot run: fails at once, naming the field. */
static void
start_bad(struct drv_tg_task *t, void *ctx)
{
    struct wjob *j;

    DRV_CAST(j, ctx, WJOB_MAGIC);
    drv__worker_job_started(j);
    drv_tg_task_done(t, DRV_EBADJOB, j->bad.msg, NULL);
}

static void
cancel_bad(struct drv_tg_task *t, enum drv_tg_cause cause DRV_UNUSED,
           void *ctx DRV_UNUSED)
{
    drv_tg_task_done(t, -ECANCELED, NULL, NULL);
}

void
drv__worker_on_release(struct drv_tg_task *t DRV_UNUSED, void *ctx)
{
    struct wjob *j;
    struct drv_worker *w;

    DRV_CAST(j, ctx, WJOB_MAGIC);
    w = j->w;
    j->task = NULL;
    j->run.task = NULL;
    if (w != NULL) {
        w->inflight--;
        drv__worker_kick(w); /* a permit is free: fetch more */
    }
    drv__job_unref(j);
}

struct wtype *
drv__worker_type(struct drv_worker *w, const struct drv_config_job *cfg)
{
    size_t i;

    for (i = 0; i < w->ntypes; i++)
        if (w->types[i].ht.cfg == cfg)
            return &w->types[i];
    DRV_ASSERT(!"job type not in the worker's table");
    return NULL;
}

void
drv__worker_task_opts(struct drv_worker *w, struct wjob *j,
                      struct drv_tg_task_opts *to)
{
    const struct drv_config_job *type = j->type->ht.cfg;

    drv_hrun_init(&j->run, &j->type->ht, j->job, w->queues[j->qi].keys.name);
    to->name = type->name;
    to->timeout_ms = type->policy.timeout_ms;
    to->ctx = j;
    if (j->type->sem != NULL)
        to->sems[to->nsems++] = j->type->sem;
    if (type->blocking) {
        to->kind = DRV_TG_THREAD;
        to->work = work_task;
        to->sems[to->nsems++] = w->thread_sem;
    } else {
        to->kind = DRV_TG_LOOP;
        to->start = start_task;
        to->cancel = cancel_task;
    }
    to->sems[to->nsems++] = w->sem;
}

/* ------------------------------------------------------------ batches */

static void
on_batch_done(struct drv_tg *tg DRV_UNUSED, const struct drv_tg_report *r,
              void *ctx)
{
    struct wbatch *b;

    DRV_CAST(b, ctx, WBATCH_MAGIC);
    DRV_LOG_INFO("batch done", "worker=%s jobs=%zu ok=%zu failed=%zu "
                 "timed_out=%zu cancelled=%zu", b->w->id, r->n_tasks,
                 r->n_ok, r->n_failed, r->n_timed_out, r->n_cancelled);
}

static void
on_batch_quiesced(struct drv_tg *tg, void *ctx)
{
    struct wbatch *b;
    struct drv_worker *w;

    DRV_CAST(b, ctx, WBATCH_MAGIC);
    w = b->w;
    LIST_REMOVE(b, link);
    drv_tg_free(tg);
    DRV_FREE_OBJ(b);
    drv__worker_kick(w);
}

static struct drv_tg *
batch_create(struct drv_worker *w)
{
    struct drv_tg_opts go;
    struct wbatch *b;

    DRV_ALLOC_OBJ(b, WBATCH_MAGIC);
    b->w = w;
    memset(&go, 0, sizeof go);
    go.policy = DRV_TG_COLLECT;
    go.limit = -1; /* the shared semaphores limit it */
    go.on_done = on_batch_done;
    go.on_quiesced = on_batch_quiesced;
    go.ctx = b;
    go.name = "batch";
    DRV_AZ(drv_tg_create(w->loop, w->pool, &go, &b->tg));
    LIST_INSERT_HEAD(&w->batches, b, link);
    return b->tg;
}

/* Validate j (its job type or pipeline and step into *type, j->pipe,
 * j->step): 0, or < 0 with j->bad set. A job the reclaim handed back to
 * end (j->ended) is found its pipeline and node but never runs: it fails
 * with the reclaim's error, and its settle ends it dead (a graph node's
 * ends its run, graph.c). */
static int
validate(struct drv_worker *w, struct wjob *j,
         const struct drv_config_job **type)
{
    struct drv_err ignored;

    if (!j->ended) {
        drv_err_clear(&j->bad);
        return drv__worker_job_validate(w->cfg, j->job, type, &j->pipe,
                                        &j->step, &j->bad);
    }
    drv_err_clear(&ignored);
    (void)drv__worker_job_validate(w->cfg, j->job, type, &j->pipe, &j->step,
                                   &ignored);
    return j->bad.code;
}

/* Admit one job into tg: validate it, then spawn its task. */
static void
admit_one(struct drv_worker *w, struct drv_tg *tg, struct wjob *j)
{
    const struct drv_config_job *type = NULL;
    struct drv_tg_task_opts to;

    memset(&to, 0, sizeof to);
    w->inflight++;
    if (validate(w, j, &type) < 0) {
        to.kind = DRV_TG_LOOP;
        to.name = "bad";
        to.start = start_bad;
        to.cancel = cancel_bad;
        to.ctx = j;
    } else if (j->pipe != NULL && j->pipe->ngraph > 0) {
        drv__graph_task_opts(w, j, &to);
    } else if (j->pipe != NULL && j->pipe->steps[j->step].parallel) {
        drv__worker_spawn_parallel(w, tg, j);
        return;
    } else {
        if (j->pipe != NULL)
            type = j->pipe->steps[j->step].jobs[0];
        j->type = drv__worker_type(w, type);
        drv__worker_task_opts(w, j, &to);
    }
    to.on_outcome = drv__worker_on_outcome;
    to.release = drv__worker_on_release;
    drv__worker_spawn(tg, &to, j);
}

void
drv__worker_spawn(struct drv_tg *tg, const struct drv_tg_task_opts *to,
                  struct wjob *j)
{
    DRV_AZ(drv_tg_spawn(tg, to, &j->task));
    j->run.task = j->task;
    if (to->kind == DRV_TG_THREAD)
        drv__worker_job_started(j); /* RUNNING once submitted */
}

void
drv__worker_admit(struct drv_worker *w, struct wjobs *jobs)
{
    if (w->admit != NULL && jobs->n > 0)
        drv__admit_take(w, jobs); /* limited types ask Redis first */
    drv__worker_admit_now(w, jobs);
}

void
drv__worker_admit_now(struct drv_worker *w, struct wjobs *jobs)
{
    struct drv_tg *tg;
    int i;

    if (jobs->n == 0)
        return;
    tg = batch_create(w);
    for (i = 0; i < jobs->n; i++)
        admit_one(w, tg, jobs->v[i]);
    drv_tg_close(tg);
}

/* ------------------------------------------------------------- cancel */

void
drv__worker_cancel_job(struct wjob *j)
{
    if (j->task != NULL)
        drv_tg_task_cancel(j->task, DRV_TG_CAUSE_EXPLICIT);
}

void
drv__worker_cancel_all(struct drv_worker *w, int pending_only)
{
    struct wjob *j, *next;
    struct wbatch *b, *bn;

    if (pending_only)
        drv__admit_drain(w); /* jobs waiting for admission: back too */
    if (!pending_only) {
        for (b = LIST_FIRST(&w->batches); b != NULL; b = bn) {
            bn = LIST_NEXT(b, link);
            drv_tg_cancel(b->tg, DRV_TG_CAUSE_SHUTDOWN);
        }
        return;
    }
    for (j = LIST_FIRST(&w->live); j != NULL; j = next) {
        next = LIST_NEXT(j, link);
        if (j->task != NULL && !j->started &&
            drv_tg_task_outcome(j->task)->state <= DRV_TG_WAITING)
            drv_tg_task_cancel(j->task, DRV_TG_CAUSE_SHUTDOWN);
    }
}
