/*
 * handler_plugin.c -- the plugin handler: adapts a plugin's table (the
 * public ABI, include/drover/handler.h) to drover's handler table, and
 * gives the plugin its host table.
 *
 * DESIGN. load opens the job type's library (pkg/plugin) into one set
 * shared by every plugin type (host->plugins) and keeps a `struct ptype`
 * in ht->state: the loaded instance and the host table handed to it
 * (embedded, so host->log finds its type by container_of).
 *
 * Each run gets a `struct drv_job_view` -- the plugin's only handle on
 * the job -- in r->state, made when the attempt starts and freed by fini
 * on the loop thread. It reads the job through r, immutable while the
 * task lives, so a pool thread may read it.
 *
 *   async    a LOOP task: start calls h->start; host->done ends the
 *            attempt (0 / DRV_EPERMANENT / DRV_EHANDLER) with the text
 *            the plugin set. The cancel hook (timeout, shutdown) clears
 *            the job's host timers, then calls h->cancel, which calls
 *            done. A plugin that never calls done is force-finished by
 *            the task group after its cancel grace; its view is then
 *            parked as a "zombie" (inert, done -> -EALREADY) until the
 *            plugins are unloaded, so a late call is no use-after-free.
 *   blocking a THREAD task: work calls h->run on the pool thread and hands
 *            the result or error text to the task group
 *            (drv_hrun_output), which keeps it only if the task has not
 *            timed out or been cancelled meanwhile (an abandoned thread's
 *            text is dropped). Nothing waits for the loop.
 *
 * Teardown: unload frees a type's zombies (their data_free may be plugin
 * code); shutdown then frees the set (the libraries' shutdown() may still
 * log through any type's host) and only then the types.
 */
#include <errno.h>
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
#include "handler_int.h"

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
    struct drv_hrun *r;            /* borrowed: owner (this is r->state);
                                      NULL once a zombie */
    const char *queue;             /* borrowed: lives as long as the
                                      worker */
    struct drv_tg_task *task;      /* borrowed: the task (blocking: read
                                      on its pool thread) */
    int blocking;                  /* run on the pool */
    int started;                   /* async: h->start was called */
    int finished;                  /* async: done ran (or we finished) */
    char *result;                  /* owned: set_result bytes */
    size_t result_len;             /* length of result */
    char *error;                   /* owned: set_error text */
    void *data;                    /* the plugin's (set_data) */
    drv_handler_free_fn *data_free; /* frees data; may be NULL */
    struct ptimer *timers;         /* owned: pending host timers */
    struct drv_job_view *next;     /* borrowed: zombie list */
};

/* A plugin job type: ht->state. */
struct ptype {
    unsigned magic;
#define PTYPE_MAGIC 0x9111e003U
    struct drv_host host;          /* handed to the plugin; embedded */
    struct drv_htype *ht;          /* borrowed: its handler type */
    const struct drv_config_job *cfg; /* borrowed: config */
    struct drv_plugin *plugin;     /* borrowed: owned by the set */
    const struct drv_handler *h;   /* borrowed: the checked table */
    void *state;                   /* the plugin's per-type state */
    struct drv_job_view *zombies;  /* owned: never-finished async views */
    struct ptype *next;            /* borrowed: list in drv_hplugins */
};

/* Every plugin type of a worker: host->plugins. */
struct drv_hplugins {
    unsigned magic;
#define HPLUGINS_MAGIC 0x9111e004U
    struct drv_plugin_set *set;    /* owned: every loaded library */
    struct ptype *types;           /* owned: list, freed after the set */
};

/* ---------------------------------------------------------- helpers */

static struct drv_job_view *
view_of(const struct drv_job_view *cv)
{
    struct drv_job_view *v = (struct drv_job_view *)(uintptr_t)cv;

    DRV_CHECK_OBJ(v, VIEW_MAGIC);
    return v;
}

/* A plugin status as a task code: 0, DRV_EPERMANENT (dead at once) or
 * DRV_EHANDLER (retried). */
static int
status_code(int status)
{
    if (status == DRV_HANDLER_OK)
        return 0;
    return status == DRV_HANDLER_PERMANENT ? DRV_EPERMANENT : DRV_EHANDLER;
}

static const char *
error_text(const struct drv_job_view *v, int code)
{
    if (v->error != NULL)
        return v->error;
    return code == DRV_EPERMANENT ? "plugin failed permanently (no error set)"
                                  : "plugin failed (no error set)";
}

static void
timers_clear(struct drv_job_view *v)
{
    struct ptimer *pt;

    while ((pt = v->timers) != NULL) {
        v->timers = pt->next;
        event_free(pt->ev);
        DRV_FREE_OBJ(pt);
    }
}

/* Loop thread, async: end the attempt with the plugin's status and text
 * (the group drops the text if the task was cancelled meanwhile). */
static void
finish(struct drv_job_view *v, int status)
{
    int code = status_code(status);
    const char *e;

    v->finished = 1;
    timers_clear(v);
    if (code == 0) {
        drv_hrun_ok(v->r, v->result, v->result_len);
        return;
    }
    e = error_text(v, code);
    drv_hrun_fail(v->r, code, e, strlen(e));
}

/* ------------------------------------------------------ the host table */

static const char *
h_field(const struct drv_job_view *job, const char *name, size_t *len)
{
    struct drv_job_view *v = view_of(job);
    const char *value = NULL;
    size_t n = 0;

    if (v->r == NULL || name == NULL ||
        drv_hrun_lookup(name, strlen(name), &value, &n, v->r) < 0)
        return NULL;
    if (len != NULL)
        *len = n;
    return value;
}

static size_t
h_nfields(const struct drv_job_view *job)
{
    struct drv_job_view *v = view_of(job);

    return v->r != NULL ? v->r->job->nfields : 0;
}

static const char *
h_field_at(const struct drv_job_view *job, size_t i, const char **name,
           size_t *name_len, size_t *value_len)
{
    struct drv_job_view *v = view_of(job);
    const struct drv_field *f;

    if (v->r == NULL || i >= v->r->job->nfields)
        return NULL;
    f = &v->r->job->fields[i];
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

    return v->r != NULL ? v->r->job->id : "";
}

/* The job id as a logfmt value into buf (every byte, escaped). */
static const char *
quote_id(const struct drv_job_view *job, char *buf, size_t n)
{
    struct drv_job_view *v = view_of(job);

    if (v->r == NULL)
        return drv_log_quote(buf, n, "", 0);
    return drv_log_quote(buf, n, v->r->job->id, v->r->job->id_len);
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

    return v->r != NULL ? v->r->job->entry_id : "";
}

static uint64_t
h_attempt(const struct drv_job_view *job)
{
    struct drv_job_view *v = view_of(job);

    return v->r != NULL ? v->r->job->attempt + 1 : 0;
}

static int
h_set_result(struct drv_job_view *job, const void *data, size_t len)
{
    struct drv_job_view *v = view_of(job);

    if (v->r == NULL || (data == NULL && len > 0))
        return -EINVAL;
    if ((int64_t)len > v->pt->ht->host->max_job_bytes)
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

    if (v->r == NULL || msg == NULL)
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
    if (v->r == NULL || v->finished || v->r->task == NULL) {
        quote_id(v, qid, sizeof qid);
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

    if (v->r == NULL || (!v->blocking && v->finished))
        return 1;
    if (!v->blocking)   /* loop thread: NULL once the task is released */
        return v->r->task == NULL || drv_tg_task_cancelled(v->r->task);
    return drv_tg_task_cancelled(v->task);
}

static int
h_progress(struct drv_job_view *job, int percent, const char *msg)
{
    struct drv_job_view *v = view_of(job);

    if (v->r == NULL || (!v->blocking && v->finished))
        return -EINVAL;
    drv_hrun_progress(v->r, percent, msg, msg != NULL ? strlen(msg) : 0);
    return 0;
}

static void
on_ptimer(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct ptimer *pt, **pp;
    struct drv_job_view *v;
    drv_handler_timer_fn *fn;
    void *parg;

    DRV_CAST(pt, arg, PTIMER_MAGIC);
    v = pt->v;
    fn = pt->fn;
    parg = pt->arg;
    for (pp = &v->timers; *pp != pt; pp = &(*pp)->next)
        DRV_AN(*pp);
    *pp = pt->next;
    event_free(pt->ev);
    DRV_FREE_OBJ(pt);
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
    if (v->r == NULL || v->finished)
        return -EALREADY;
    if (ms > (uint64_t)INT64_MAX / (uint64_t)DRV_NS_PER_MS)
        return -EINVAL;
    DRV_ALLOC_OBJ(pt, PTIMER_MAGIC);
    pt->v = v;
    pt->fn = fn;
    pt->arg = arg;
    pt->ev = evtimer_new(drv_loop_base(v->pt->ht->host->loop), on_ptimer,
                         pt);
    if (pt->ev == NULL) {
        DRV_FREE_OBJ(pt);
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
        quote_id(job, qid, sizeof qid);
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
    h->progress = h_progress;
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
    DRV_FREE_OBJ(v);
}

static struct drv_job_view *
view_create(struct drv_hrun *r)
{
    struct drv_job_view *v;

    DRV_ALLOC_OBJ(v, VIEW_MAGIC);
    DRV_CAST(v->pt, r->ht->state, PTYPE_MAGIC);
    v->r = r;
    v->queue = r->queue;
    v->task = r->task;
    v->blocking = r->ht->cfg->blocking;
    r->state = v;
    return v;
}

/* fini: the job is gone (loop thread). An async job the plugin never
 * finished (force-finished after cancel grace) may still be held by the
 * plugin: park its view, inert, until unload. */
static void
fini_plugin(struct drv_hrun *r)
{
    struct drv_job_view *v;
    char qid[160];

    DRV_CAST(v, r->state, VIEW_MAGIC);
    if (v->blocking || !v->started || v->finished) {
        view_free(v);
        return;
    }
    drv_log_quote(qid, sizeof qid, r->job->id, r->job->id_len);
    DRV_LOG_ERROR("plugin never called done; job view kept until exit",
                  "job=%s plugin=%s id=%s", v->pt->cfg->name,
                  v->pt->cfg->plugin.symbol, qid);
    timers_clear(v);
    v->r = NULL;
    v->task = NULL;
    v->finished = 1;
    v->next = v->pt->zombies;
    v->pt->zombies = v;
}

/* ---------------------------------------------------------- async mode */

static void
start_plugin(struct drv_hrun *r)
{
    struct drv_job_view *v = view_create(r);
    int rc;

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
cancel_plugin(struct drv_hrun *r, enum drv_tg_cause cause DRV_UNUSED)
{
    struct drv_job_view *v;

    DRV_CAST(v, r->state, VIEW_MAGIC);
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

/* Pool thread: run the plugin and hand its text to the task group. */
static int
work_plugin(struct drv_hrun *r, struct drv_err *err)
{
    struct drv_job_view *v = view_create(r);
    const char *e;
    int code;

    code = status_code(v->pt->h->run(v->pt->state, v));
    if (code == 0) {
        if (v->result != NULL)
            drv_hrun_output(r, v->result, v->result_len);
        return 0;
    }
    e = error_text(v, code);
    drv_hrun_output(r, e, strlen(e));
    snprintf(err->msg, sizeof err->msg, "%s", e);
    return code;
}

/* ------------------------------------------------------ load / unload */

static int
load_plugin(struct drv_htype *ht, struct drv_err *err)
{
    struct drv_handler_host *host = ht->host;
    const struct drv_config_job *cfg = ht->cfg;
    struct drv_hplugins *hp = host->plugins;
    struct drv_plugin_opts po;
    const struct drv_plugin_info *info = NULL;
    struct ptype *pt;
    int rc;

    if (hp == NULL) {
        DRV_ALLOC_OBJ(hp, HPLUGINS_MAGIC);
        hp->set = drv_plugin_set_create();
        host->plugins = hp;
    }
    DRV_ALLOC_OBJ(pt, PTYPE_MAGIC);
    host_init(&pt->host);
    pt->ht = ht;
    pt->cfg = cfg;
    pt->next = hp->types;
    hp->types = pt;
    ht->state = pt;
    memset(&po, 0, sizeof po);
    po.library = cfg->plugin.library;
    po.symbol = cfg->plugin.symbol;
    po.config_file = host->config_file;
    po.job_type = cfg->name;
    po.blocking = cfg->blocking;
    po.host = &pt->host;
    rc = drv_plugin_load(hp->set, &po, &pt->plugin, err);
    if (rc < 0)
        return DRV_ECONFIG;
    info = drv_plugin_info(pt->plugin);
    pt->h = info->handler;
    pt->state = info->state;
    DRV_LOG_INFO("plugin loaded", "job=%s library=%s symbol=%s mode=%s",
                 cfg->name, info->path, cfg->plugin.symbol,
                 cfg->blocking ? "blocking" : "async");
    return 0;
}

/* Zombies first: their data_free may be plugin code. */
static void
unload_plugin(struct drv_htype *ht)
{
    struct drv_job_view *v;
    struct ptype *pt;

    DRV_CAST(pt, ht->state, PTYPE_MAGIC);
    while ((v = pt->zombies) != NULL) {
        pt->zombies = v->next;
        view_free(v);
    }
}

/* The libraries' shutdown() may log through a type's host: the types
 * outlive the set. */
static void
shutdown_plugin(struct drv_handler_host *host)
{
    struct drv_hplugins *hp = host->plugins;
    struct ptype *pt;

    if (DRV_NO_OBJ(hp, HPLUGINS_MAGIC))
        return;
    drv_plugin_set_free(hp->set);
    while ((pt = hp->types) != NULL) {
        hp->types = pt->next;
        if (pt->ht != NULL)
            pt->ht->state = NULL;
        DRV_FREE_OBJ(pt);
    }
    DRV_FREE_OBJ(hp);
    host->plugins = NULL;
}

const struct drv_handler_ops drv__handler_plugin = {
    .type = {.load = load_plugin, .unload = unload_plugin,
             .shutdown = shutdown_plugin},
    .run = {.start = start_plugin, .cancel = cancel_plugin,
            .work = work_plugin, .fini = fini_plugin},
};
