/*
 * pipeline.c -- a pipeline's parallel step: one FAIL_FAST child group in
 * the batch, one member task per job type of the step, the group's
 * deadline the pipeline's timeout. The step's job gets ONE outcome, the
 * child group's (settle.c turns it into one op: every member's result,
 * or every member's state and error; see outcome.c). Members read their
 * results from the child group's report, which lives as long as the
 * batch, so nothing is copied between them.
 *
 * A plain step (one job type) runs like any job (run.c); the settle
 * script enqueues the next step.
 */
#include <string.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/tg.h"
#include "worker_int.h"

/* A member finished: it no longer holds a process permit. */
static void
on_member_outcome(struct drv_tg_task *t DRV_UNUSED,
                  const struct drv_tg_outcome *o, void *ctx)
{
    struct wjob *m;

    DRV_CAST(m, ctx, WJOB_MAGIC);
    if (m->running) {
        m->running = 0;
        m->w->stats.running--;
    }
    drv__worker_metrics_member_done(m, o);
}

static void
on_member_release(struct drv_tg_task *t DRV_UNUSED, void *ctx)
{
    struct wjob *m;

    DRV_CAST(m, ctx, WJOB_MAGIC);
    m->task = NULL;
    m->run.task = NULL;
    drv__job_unref(m); /* and its reference on the step's job */
}

void
drv__worker_spawn_parallel(struct drv_worker *w, struct drv_tg *tg,
                           struct wjob *j)
{
    const struct drv_config_step *st = &j->pipe->steps[j->step];
    struct drv_tg_opts go;
    struct drv_tg_task_opts to;
    struct drv_tg *child = NULL;
    size_t i;

    memset(&go, 0, sizeof go);
    go.policy = DRV_TG_FAIL_FAST;
    go.limit = -1;
    go.deadline_ns = drv_clock_mono_ns() +
                     j->pipe->policy.timeout_ms * DRV_NS_PER_MS;
    go.name = "parallel";
    memset(&to, 0, sizeof to);
    to.name = j->pipe->name;
    to.on_outcome = drv__worker_on_outcome;
    to.release = drv__worker_on_release;
    to.ctx = j;
    DRV_AZ(drv_tg_create_child(tg, &go, &to, &child, &j->task));
    j->started = 1;
    j->started_ms = drv_clock_unix_ms();
    for (i = 0; i < st->njobs; i++) {
        struct wjob *m = drv__job_member(j, drv__worker_type(w, st->jobs[i]));

        memset(&to, 0, sizeof to);
        drv__worker_task_opts(w, m, &to);
        to.on_outcome = on_member_outcome;
        to.release = on_member_release;
        drv__worker_spawn(child, &to, m);
    }
    drv_tg_close(child);
}
