/*
 * job.c -- the job record (struct wjob): the only place that allocates,
 * links, unlinks and frees one.
 *
 * A fetched job is created with two references (task side, settle side)
 * and put on the worker's live list, where it stays until its settle op
 * was applied (or dropped): lease renewal walks that list, so a job is
 * covered while it runs AND while its outcome waits to be written. A
 * member of a parallel step is not on the list (its step's job is); it
 * holds one reference of its own and one on the step's job.
 */
#include <stdlib.h>
#include <string.h>

#include "drover/common.h"
#include "worker_int.h"

struct wjob *
drv__job_create(struct drv_worker *w, struct drv_job *job, int qi)
{
    struct wjob *j;

    DRV_ALLOC_OBJ(j, WJOB_MAGIC);
    j->w = w;
    j->job = job;
    j->qi = qi;
    j->step = -1;
    j->refs = 2;
    LIST_INSERT_HEAD(&w->live, j, link);
    w->stats.live++;
    w->stats.fetched++;
    return j;
}

struct wjob *
drv__job_member(struct wjob *parent, struct wtype *type)
{
    struct wjob *m;

    DRV_ALLOC_OBJ(m, WJOB_MAGIC);
    m->w = parent->w;
    m->job = parent->job;
    m->qi = parent->qi;
    m->type = type;
    m->pipe = parent->pipe;
    m->step = parent->step;
    m->parent = parent;
    m->refs = 1;
    parent->refs++;
    return m;
}

static void
job_free(struct wjob *j)
{
    struct wjob *parent = j->parent;

    drv_hrun_fini(&j->run);
    drv__admit_job_free(j);
    if (parent == NULL)
        drv_job_free(j->job);
    drv_decision_fini(&j->dec);
    DRV_FREE_OBJ(j);
    if (parent != NULL)
        drv__job_unref(parent);
}

void
drv__job_unref(struct wjob *j)
{
    DRV_CHECK_OBJ(j, WJOB_MAGIC);
    DRV_ASSERT(j->refs > 0);
    if (--j->refs == 0)
        job_free(j);
}

void
drv__job_settled(struct wjob *j)
{
    struct drv_worker *w = j->w;

    j->settle_pending = 0;
    LIST_REMOVE(j, link);
    w->stats.live--;
    drv__job_unref(j);
}

void
drv__job_detach_all(struct drv_worker *w)
{
    while (!LIST_EMPTY(&w->live)) {
        struct wjob *j = LIST_FIRST(&w->live);

        LIST_REMOVE(j, link);
        j->w = NULL;
    }
}

void
drv__jobs_add(struct wjobs *v, struct wjob *j)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 32;
        v->v = drv_xrealloc(v->v, (size_t)v->cap * sizeof *v->v);
    }
    v->v[v->n++] = j;
}

void
drv__jobs_fini(struct wjobs *v)
{
    free(v->v);
    memset(v, 0, sizeof *v);
}
