/*
 * worker_plugin.c -- the plugin handler (INTERFACE.md "plugin",
 * include/drover/handler.h): loading each plugin job type at start, and
 * running its jobs through the host table.
 *
 * DESIGN. w->types[i].plugin of a plugin job type is a `struct ptype`:
 * the loaded instance (pkg/plugin) and the host table handed to it
 * (embedded, so host->log finds its type by container_of). One plugin set
 * (every dlopen'ed library) is owned by the first plugin type.
 *
 * Each job gets a `struct drv_job_view` -- the plugin's only handle on it
 * -- created when its task is spawned, kept in j->hdata and freed with the
 * job (hdata_free), on the loop thread. It reads the job from j->job,
 * which is immutable while the job lives, so a pool thread may read it.
 *
 *   async    a LOOP task: start_plugin calls h->start; host->done maps
 *            the plugin's status to drv_tg_task_done (0 / DRV_EPERM /
 *            DRV_EHANDLER). The tg cancel hook (timeout, shutdown) clears
 *            the job's host timers, then calls h->cancel, which calls
 *            done. A plugin that never calls done is force-finished by
 *            the task group after its cancel grace; its view is then
 *            parked as a "zombie" (inert, done -> -EALREADY) until the
 *            plugins are unloaded, so a late call is no use-after-free.
 *   blocking a THREAD task holding a w->thread_sem permit: work_plugin
 *            calls h->run on the pool thread. At timeout or cancel the
 *            task group abandons the thread (host->cancelled turns 1;
 *            the permit stays until it returns; the late result is
 *            dropped by the group).
 *
 * Result and error text reach Redis through j->op_text, which the
 * worker's on_outcome reads on the loop thread. A pool thread must not
 * write it: an abandoned thread would race on_outcome. So when run()
 * returns, the thread hands the text to the loop (drv_loop_defer) and
 * waits until the loop has taken it: on the loop, the copy is made only
 * while the task is still RUNNING, i.e. before any outcome exists; an
 * abandoned task's text is dropped. The wait is one loop turn; the loop
 * always runs while a task is unreleased.
 *
 * Lock order: view->mu only (leaf; held for the hand-off flag).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/handler.h"
#include "drover/log.h"
#include "drover/loop.h"
#include "drover/plugin.h"
#include "drover/tg.h"
#include "worker_int.h"

#define ERROR_MAX 4096      /* host->set_error keeps this much */

struct ptype;

/* A pending host->timer of an async job. */
struct ptimer {
    unsigned magic;
#define PTIMER_MAGIC 0x9111e001U
    struct drv_job_view *v;        /* borrowed: its job */
    struct event *ev;              /* owned: one-shot timer */
    drv_handler_timer_fn *fn;      /* the plugin's callback */
    void *arg;                     /* the plugin's: never freed here */
    struct ptimer *next;           /* borrowed: the view's list */
};

/* One job, as the plugin sees it. */
struct drv_job_view {
    unsigned magic;
#define VIEW_MAGIC 0x9111e002U
    struct ptype *pt;              /* borrowed: its job type */
    struct wjob *j;                /* borrowed: owner (this is j->hdata);
                                      NULL once a zombie */
    const struct drv_job *job;     /* borrowed: j->job; NULL as zombie */
    const char *queue;             /* borrowed: the worker's queue name */
    struct drv_tg_task *task;      /* borrowed: set by start (loop) or
                                      work (its pool thread) */
    int blocking;                  /* run on the pool */
    int started;                   /* async: h->start was called */
    int finished;                  /* async: done ran (or we finished) */
    int code;                      /* blocking: outcome for the hand-off */
    char *result;                  /* owned: set_result bytes */
    size_t result_len;             /* length of result */
    char *error;                   /* owned: set_error text */
    void *data;                    /* the plugin's (set_data) */
    drv_handler_free_fn *data_free; /* frees data; may be NULL */
    struct ptimer *timers;         /* owned: pending host timers */
    pthread_mutex_t mu;            /* blocking: guards handed */
    pthread_cond_t cv;             /* blocking: handed turned 1 */
    int handed;                    /* blocking: the loop took the text */
    struct drv_job_view *next;     /* borrowed: zombie list */
};

/* A plugin job type. */
struct ptype {
    unsigned magic;
#define PTYPE_MAGIC 0x9111e003U
    struct drv_host host;          /* handed to the plugin; embedded */
    struct drv_worker *w;          /* borrowed: owner */
    const struct drv_config_job *cfg; /* borrowed: config */
    struct drv_plugin *plugin;     /* borrowed: owned by set; NULL until
                                      loaded */
    const struct drv_handler *h;   /* borrowed: the checked table */
    void *state;                   /* the plugin's per-type state */
    struct drv_plugin_set *set;    /* borrowed, or owned if owns_set */
    int owns_set;                  /* 1 for the first plugin type */
    struct drv_job_view *zombies;  /* owned: never-finished async views */
};

/* ---------------------------------------------------------- helpers */

static struct drv_job_view *
view_of(const struct drv_job_view *cv)
{
    struct drv_job_view *v = (struct drv_job_view *)(uintptr_t)cv;

    DRV_CHECK_OBJ(v, VIEW_MAGIC);
    return v;
}

/* A plugin status as a task code: 0, DRV_EPERM (dead at once) or
 * DRV_EHANDLER (retried). */
static int
status_code(int status)
{
    if (status == DRV_HANDLER_OK)
        return 0;
    return status == DRV_HANDLER_PERMANENT ? DRV_EPERM : DRV_EHANDLER;
}

static const char *
error_text(const struct drv_job_view *v, int code)
{
    if (v->error != NULL)
        return v->error;
    return code == DRV_EPERM ? "plugin failed permanently (no error set)"
                             : "plugin failed (no error set)";
}

/* Loop thread: the outcome's text into the job (j->op_text). */
static void
publish(struct drv_job_view *v, int code)
{
    const char *e;

    if (code == 0) {
        if (v->result != NULL)
            drv__worker_job_set_text(v->j, v->result, v->result_len);
        return;
    }
    e = error_text(v, code);
    drv__worker_job_set_text(v->j, e, strlen(e));
}

static void
timers_clear(struct drv_job_view *v)
{
    struct ptimer *pt;

    while ((pt = v->timers) != NULL) {
        v->timers = pt->next;
        event_free(pt->ev);
        pt->magic = 0;
        free(pt);
    }
}

/* Loop thread, async: end the job with the plugin's status. */
static void
finish(struct drv_job_view *v, int status)
{
    struct drv_tg_task *t = v->j->task;
    int code = status_code(status);

    v->finished = 1;
    timers_clear(v);
    DRV_AN(t);
    /* cancelled: the group decides (timed out / requeued); keep no text */
    if (!drv_tg_task_cancelled(t))
        publish(v, code);
    drv_tg_task_done(t, code, code != 0 ? error_text(v, code) : NULL, NULL);
}

/* ------------------------------------------------------ the host table */

static const char *
h_field(const struct drv_job_view *job, const char *name, size_t *len)
{
    struct drv_job_view *v = view_of(job);
    const struct drv_field *f;

    if (v->job == NULL || name == NULL)
        return NULL;
    f = drv_job_field(v->job, name);
    if (f == NULL)
        return NULL;
    if (len != NULL)
        *len = f->value_len;
    return f->value;
}

static size_t
h_nfields(const struct drv_job_view *job)
{
    struct drv_job_view *v = view_of(job);

    return v->job != NULL ? v->job->nfields : 0;
}

static const char *
h_field_at(const struct drv_job_view *job, size_t i, const char **name,
           size_t *name_len, size_t *value_len)
{
    struct drv_job_view *v = view_of(job);
    const struct drv_field *f;

    if (v->job == NULL || i >= v->job->nfields)
        return NULL;
    f = &v->job->fields[i];
    if (name != NULL)
        *name = f->name;
    if (name_len != NULL)
        *name_len = f->name_len;
    if (value_len != NULL)
        *value_len = f->value_len;
    return f->value;
}

static const char *
h_id(const struct drv_job_view *job)
{
    struct drv_job_view *v = view_of(job);

    return v->job != NULL ? v->job->id : "";
}

static const char *
h_queue(const struct drv_job_view *job)
{
    return view_of(job)->queue;
}

static const char *
h_job_type(const struct drv_job_view *job)
{
    return view_of(job)->pt->cfg->name;
}

static const char *
h_entry_id(const struct drv_job_view *job)
{
    struct drv_job_view *v = view_of(job);

    return v->job != NULL ? v->job->entry_id : "";
}

static uint64_t
h_attempt(const struct drv_job_view *job)
{
    struct drv_job_view *v = view_of(job);

    return v->job != NULL ? v->job->attempt + 1 : 0;
}

static int
h_set_result(struct drv_job_view *job, const void *data, size_t len)
{
    struct drv_job_view *v = view_of(job);

    if (v->j == NULL || (data == NULL && len > 0))
        return -EINVAL;
    if ((int64_t)len > v->pt->w->cfg->worker.max_job_bytes)
        return -E2BIG;
    free(v->result);
    v->result = drv_xstrndup(len > 0 ? data : "", len);
    v->result_len = len;
    return 0;
}

static int
h_set_error(struct drv_job_view *job, const char *msg)
{
    struct drv_job_view *v = view_of(job);

    if (v->j == NULL || msg == NULL)
        return -EINVAL;
    free(v->error);
    v->error = drv_xstrndup(msg, strnlen(msg, ERROR_MAX));
    return 0;
}

static int
h_done(struct drv_job_view *job, int status)
{
    struct drv_job_view *v = view_of(job);
    char qid[160];

    if (v->blocking)
        return -EINVAL;
    if (v->j == NULL || v->finished || v->j->task == NULL) {
        drv_log_quote(qid, sizeof qid, h_id(v), strlen(h_id(v)));
        DRV_LOG_WARN("plugin called done on a finished job; ignored",
                     "job=%s plugin=%s id=%s", v->pt->cfg->name,
                     v->pt->cfg->plugin.symbol, qid);
        return -EALREADY;
    }
    finish(v, status);
    return 0;
}

static int
h_cancelled(const struct drv_job_view *job)
{
    struct drv_job_view *v = view_of(job);

    if (v->j == NULL || (!v->blocking && v->finished))
        return 1;
    return v->task != NULL && drv_tg_task_cancelled(v->task);
}

static void
on_ptimer(evutil_socket_t fd, short what, void *arg)
{
    struct ptimer *pt, **pp;
    struct drv_job_view *v;
    drv_handler_timer_fn *fn;
    void *parg;

    (void)fd;
    (void)what;
    DRV_CAST(pt, arg, PTIMER_MAGIC);
    v = pt->v;
    fn = pt->fn;
    parg = pt->arg;
    for (pp = &v->timers; *pp != pt; pp = &(*pp)->next)
        DRV_AN(*pp);
    *pp = pt->next;
    event_free(pt->ev);
    pt->magic = 0;
    free(pt);
    /* finished jobs have no timers left: this job is live */
    fn(v, parg);
}

static int
h_timer(struct drv_job_view *job, uint64_t ms, drv_handler_timer_fn *fn,
        void *arg)
{
    struct drv_job_view *v = view_of(job);
    struct ptimer *pt;
    struct timeval tv;

    if (v->blocking || fn == NULL)
        return -EINVAL;
    if (v->j == NULL || v->finished)
        return -EALREADY;
    if (ms > (uint64_t)INT64_MAX / (uint64_t)DRV_NS_PER_MS)
        return -EINVAL;
    DRV_ALLOC_OBJ(pt, PTIMER_MAGIC);
    pt->v = v;
    pt->fn = fn;
    pt->arg = arg;
    pt->ev = evtimer_new(v->pt->w->base, on_ptimer, pt);
    if (pt->ev == NULL) {
        free(pt);
        return -ENOMEM;
    }
    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
    DRV_AZ(event_add(pt->ev, &tv));
    pt->next = v->timers;
    v->timers = pt;
    return 0;
}

static void
h_set_data(struct drv_job_view *job, void *data, drv_handler_free_fn *free_fn)
{
    struct drv_job_view *v = view_of(job);

    if (v->data_free != NULL && v->data != NULL && v->data != data)
        v->data_free(v->data);
    v->data = data;
    v->data_free = free_fn;
}

static void *
h_data(const struct drv_job_view *job)
{
    return view_of(job)->data;
}

static void
h_log(const struct drv_host *host, const struct drv_job_view *job, int level,
      const char *msg)
{
    const struct ptype *pt;
    char qid[160];

    DRV_AN(host);
    pt = drv_container_of(host, struct ptype, host);
    DRV_CHECK_OBJ(pt, PTYPE_MAGIC);
    if (level < DRV_LOG_ERROR)
        level = DRV_LOG_ERROR;
    if (level > DRV_LOG_DEBUG)
        level = DRV_LOG_DEBUG;
    if (!drv_log_enabled(level))
        return;
    if (job != NULL) {
        const char *id = h_id(job);
        drv_log_quote(qid, sizeof qid, id, strlen(id));
        drv_log((enum drv_log_level)level, msg != NULL ? msg : "",
                "job=%s plugin=%s id=%s", pt->cfg->name,
                pt->cfg->plugin.symbol, qid);
    } else {
        drv_log((enum drv_log_level)level, msg != NULL ? msg : "",
                "job=%s plugin=%s", pt->cfg->name, pt->cfg->plugin.symbol);
    }
}

static void
host_init(struct drv_host *h)
{
    memset(h, 0, sizeof *h);
    h->size = sizeof *h;
    h->abi_version = DRV_HANDLER_ABI_VERSION;
    h->field = h_field;
    h->nfields = h_nfields;
    h->field_at = h_field_at;
    h->id = h_id;
    h->queue = h_queue;
    h->job_type = h_job_type;
    h->entry_id = h_entry_id;
    h->attempt = h_attempt;
    h->set_result = h_set_result;
    h->set_error = h_set_error;
    h->done = h_done;
    h->cancelled = h_cancelled;
    h->timer = h_timer;
    h->set_data = h_set_data;
    h->data = h_data;
    h->log = h_log;
}

/* ----------------------------------------------------------- job views */

static void
view_free(struct drv_job_view *v)
{
    timers_clear(v);
    if (v->data_free != NULL && v->data != NULL)
        v->data_free(v->data);
    free(v->result);
    free(v->error);
    if (v->blocking) {
        DRV_AZ(pthread_mutex_destroy(&v->mu));
        DRV_AZ(pthread_cond_destroy(&v->cv));
    }
    v->magic = 0;
    free(v);
}

/* j->hdata_free: the job is gone (loop thread). An async job the plugin
 * never finished (force-finished after cancel grace) may still be held by
 * the plugin: park its view, inert, until unload. */
static void
view_release(void *p)
{
    struct drv_job_view *v;
    char qid[160];

    DRV_CAST(v, p, VIEW_MAGIC);
    if (v->blocking || !v->started || v->finished) {
        view_free(v);
        return;
    }
    drv_log_quote(qid, sizeof qid, v->job->id, strlen(v->job->id));
    DRV_LOG_ERROR("plugin never called done; job view kept until exit",
                  "job=%s plugin=%s id=%s", v->pt->cfg->name,
                  v->pt->cfg->plugin.symbol, qid);
    timers_clear(v);
    v->j = NULL;
    v->job = NULL;
    v->task = NULL;
    v->finished = 1;
    v->next = v->pt->zombies;
    v->pt->zombies = v;
}

static struct drv_job_view *
view_create(struct ptype *pt, struct wjob *j)
{
    struct drv_job_view *v;

    DRV_ALLOC_OBJ(v, VIEW_MAGIC);
    v->pt = pt;
    v->j = j;
    v->job = j->job;
    v->queue = pt->w->queues[j->qi].keys.name;
    v->blocking = pt->cfg->blocking;
    if (v->blocking) {
        DRV_AZ(pthread_mutex_init(&v->mu, NULL));
        DRV_AZ(pthread_cond_init(&v->cv, NULL));
    }
    return v;
}

/* ---------------------------------------------------------- async mode */

static void
start_plugin(struct drv_tg_task *t, void *ctx)
{
    struct wjob *j;
    struct drv_job_view *v;
    int rc;

    DRV_CAST(j, ctx, WJOB_MAGIC);
    drv__worker_job_started(t, j);
    DRV_CAST(v, j->hdata, VIEW_MAGIC);
    v->task = t;
    v->started = 1;
    rc = v->pt->h->start(v->pt->state, v);
    if (rc == DRV_HANDLER_OK)
        return; /* done follows (or already ran) */
    if (!v->finished) {
        finish(v, rc);
        return;
    }
    DRV_LOG_WARN("plugin start failed after calling done; ignored",
                 "job=%s plugin=%s status=%d", v->pt->cfg->name,
                 v->pt->cfg->plugin.symbol, rc);
}

static void
cancel_plugin(struct drv_tg_task *t, enum drv_tg_cause cause, void *ctx)
{
    struct wjob *j;
    struct drv_job_view *v;

    (void)t;
    (void)cause;
    DRV_CAST(j, ctx, WJOB_MAGIC);
    DRV_CAST(v, j->hdata, VIEW_MAGIC);
    timers_clear(v);
    if (v->finished)
        return; /* its done is on the way */
    if (v->pt->h->cancel != NULL) {
        v->pt->h->cancel(v->pt->state, v); /* calls done, now or soon */
        return;
    }
    /* no cancel hook: nothing of the plugin's is pending but timers */
    finish(v, DRV_HANDLER_RETRY);
}

/* ------------------------------------------------------- blocking mode */

/* Loop thread: the thread's text, taken only while no outcome exists. */
static void
on_handoff(void *ctx)
{
    struct drv_job_view *v;

    DRV_CAST(v, ctx, VIEW_MAGIC);
    if (drv_tg_task_outcome(v->task)->state == DRV_TG_RUNNING)
        publish(v, v->code);
    DRV_AZ(pthread_mutex_lock(&v->mu));
    v->handed = 1;
    DRV_AZ(pthread_cond_signal(&v->cv));
    DRV_AZ(pthread_mutex_unlock(&v->mu));
}

/* Pool thread: run the plugin, then hand its text to the loop. */
static int
work_plugin(struct drv_tg_task *t, struct drv_err *err, void *ctx)
{
    struct wjob *j;
    struct drv_job_view *v;
    int code;

    /* the magics and these pointers are immutable while the task runs */
    DRV_CAST(j, ctx, WJOB_MAGIC);
    DRV_CAST(v, j->hdata, VIEW_MAGIC);
    v->task = t;
    code = status_code(v->pt->h->run(v->pt->state, v));
    v->code = code;
    /* an abandoned task's text is never used: skip the round trip */
    if (!drv_tg_task_cancelled(t)) {
        if (drv_loop_defer(v->pt->w->loop, on_handoff, v) == 0) {
            DRV_AZ(pthread_mutex_lock(&v->mu));
            while (!v->handed)
                DRV_AZ(pthread_cond_wait(&v->cv, &v->mu));
            DRV_AZ(pthread_mutex_unlock(&v->mu));
        } else if (code == 0) {
            snprintf(err->msg, sizeof err->msg, "cannot hand the plugin's "
                     "result to the loop: out of memory");
            return DRV_EHANDLER;
        }
    }
    if (code != 0)
        snprintf(err->msg, sizeof err->msg, "%s", error_text(v, code));
    return code;
}

/* ---------------------------------------------------------------- hooks */

void
drv__worker_plugin_task(struct drv_worker *w, struct wjob *j,
                        struct drv_tg_task_opts *to)
{
    struct ptype *pt;
    struct drv_job_view *v;

    DRV_CAST(pt, j->type->plugin, PTYPE_MAGIC);
    DRV_ASSERT(j->hdata == NULL);
    v = view_create(pt, j);
    j->hdata = v;
    j->hdata_free = view_release;
    if (v->blocking) {
        to->kind = DRV_TG_THREAD;
        to->work = work_plugin;
        to->start = NULL;
        to->cancel = NULL;
        to->sems[to->nsems++] = w->thread_sem;
    } else {
        to->kind = DRV_TG_LOOP;
        to->start = start_plugin;
        to->cancel = cancel_plugin;
    }
}

static struct ptype *
ptype_create(struct drv_worker *w, const struct drv_config_job *cfg)
{
    struct ptype *pt;

    DRV_ALLOC_OBJ(pt, PTYPE_MAGIC);
    host_init(&pt->host);
    pt->w = w;
    pt->cfg = cfg;
    return pt;
}

int
drv__worker_plugins_load(struct drv_worker *w, struct drv_err *err)
{
    struct drv_plugin_set *set = NULL;
    struct drv_plugin_opts po;
    struct drv_err e;
    size_t i;
    int rc;

    for (i = 0; i < w->ntypes; i++) {
        const struct drv_config_job *cfg = w->types[i].cfg;
        struct ptype *pt;

        if (cfg->handler != DRV_HANDLER_PLUGIN)
            continue;
        pt = ptype_create(w, cfg);
        w->types[i].plugin = pt;
        if (set == NULL) {
            set = drv_plugin_set_create();
            pt->owns_set = 1;
        }
        pt->set = set;
        memset(&po, 0, sizeof po);
        po.library = cfg->plugin.library;
        po.symbol = cfg->plugin.symbol;
        po.config_file = w->cfg->file;
        po.job_type = cfg->name;
        po.blocking = cfg->blocking;
        po.host = &pt->host;
        drv_err_clear(&e);
        rc = drv_plugin_load(set, &po, &pt->plugin, &e);
        if (rc < 0)
            return drv_err_set(err, DRV_ECONFIG, "jobs.%s: %s", cfg->name,
                               e.msg);
        pt->h = drv_plugin_handler(pt->plugin);
        pt->state = drv_plugin_state(pt->plugin);
        DRV_LOG_INFO("plugin loaded", "job=%s library=%s symbol=%s mode=%s",
                     cfg->name, drv_plugin_path(pt->plugin),
                     cfg->plugin.symbol, cfg->blocking ? "blocking"
                                                       : "async");
    }
    return 0;
}

void
drv__worker_plugins_unload(struct drv_worker *w)
{
    struct drv_plugin_set *set = NULL;
    struct drv_job_view *v;
    struct ptype *pt;
    size_t i;

    if (w->types == NULL)
        return;
    /* zombies first: their data_free may be plugin code */
    for (i = 0; i < w->ntypes; i++) {
        if ((pt = w->types[i].plugin) == NULL)
            continue;
        DRV_CHECK_OBJ(pt, PTYPE_MAGIC);
        while ((v = pt->zombies) != NULL) {
            pt->zombies = v->next;
            view_free(v);
        }
        if (pt->owns_set)
            set = pt->set;
    }
    /* shutdown() may log through a type's host: types outlive the set */
    drv_plugin_set_free(set);
    for (i = 0; i < w->ntypes; i++) {
        if ((pt = w->types[i].plugin) == NULL)
            continue;
        pt->magic = 0;
        free(pt);
        w->types[i].plugin = NULL;
    }
}
