/*
 * drover/handlers.h -- the handlers a job type can name (`handler:`), as
 * one table of operations per handler.
 *
 * The worker runs every job through the same few steps and asks the
 * table for the rest:
 *
 *   worker create   ops->type.load(ht)  once per job type (open a plugin,
 *                                       make a shared client); optional
 *   fetch/validate  ops->check(type, job) the fields this handler needs,
 *                                       so a bad job is dead at once
 *   task runs       LOOP types:   ops->run.start(r), drv_hrun_cancel(r,
 *                                 cause) -> ops->run.cancel;
 *                                 the handler ends the attempt with
 *                                 drv_hrun_ok / drv_hrun_fail
 *                   THREAD types: ops->run.work(r, err) on a pool
 *                                 thread, returning 0 or a negative
 *                                 code; its output goes through
 *                                 drv_hrun_output
 *   job freed       ops->run.fini(r)    per-run state; loop thread
 *   worker free     ops->type.unload(ht), then ops->type.shutdown(host)
 *                                       once
 *
 * A type runs on the pool (THREAD) when its config says `blocking` (the
 * block handler always, a plugin when asked); else on the loop (LOOP).
 *
 * Results and errors travel through the task group's outcome: the bytes
 * (pointer + length) become the outcome's result, so a handler never
 * writes into the worker's job record. Codes: 0 ok; DRV_EPERMANENT and
 * DRV_EBADJOB dead at once; any other negative code retried.
 *
 * This module knows the job, its type and the task; it does not know
 * Redis or the queue's keys. Loop thread, except ops->run.work.
 */
#ifndef DROVER_HANDLERS_H
#define DROVER_HANDLERS_H

#include <stddef.h>
#include <stdint.h>

#include "drover/config.h"
#include "drover/error.h"
#include "drover/tg.h"

struct drv_handler_ops;
struct drv_job;
struct drv_http;
struct drv_loop;
struct drv_hplugins;
struct drv_proc_mgr;

/* What every handler may use; filled by the worker, lives as long. */
struct drv_handler_host {
    unsigned magic;
#define DRV_HANDLER_HOST_MAGIC 0x4a0d1e55U
    struct drv_loop *loop;          /* borrowed */
    struct drv_proc_mgr *procs;     /* borrowed: exec's children */
    const char *redis_url;          /* borrowed: never shown to children */
    char **base_env;                /* owned by exec.c: children's env
                                       without secrets, NULL until an
                                       exec type */
    const char *config_file;        /* borrowed: plugin paths resolve
                                       against its directory */
    int64_t max_job_bytes;          /* largest result a plugin may set */
    int concurrency;                /* most tasks running at once (a
                                       parallel step's members each
                                       count): sizes shared caches */
    int64_t http_idle_ms;           /* http: a kept connection idle this
                                       long closes; 0 = the client's */
    struct drv_http *http;          /* owned by http.c: the shared
                                       client, NULL until an http type */
    struct drv_hplugins *plugins;   /* owned by plugin.c: the loaded
                                       libraries, NULL until a plugin type */
};

/* One job type as its handler runs it. */
struct drv_htype {
    unsigned magic;
#define DRV_HTYPE_MAGIC 0x4a7e0001U
    const struct drv_handler_ops *ops; /* borrowed: static table */
    const struct drv_config_job *cfg;  /* borrowed: the config */
    struct drv_handler_host *host;     /* borrowed */
    void *state;                       /* owned by ops->type.load/unload */
};

/* One attempt of one job, as its handler sees it (caller memory). */
#define DRV_HRUN_PROGRESS_MSG_MAX 256  /* bytes of a progress message kept */

struct drv_hprogress;

struct drv_hrun {
    unsigned magic;
#define DRV_HRUN_MAGIC 0x4a7e0002U
    struct drv_htype *ht;          /* borrowed: its job type */
    const struct drv_job *job;     /* borrowed: immutable while it runs,
                                      so a pool thread may read it */
    const char *queue;             /* borrowed: the queue's name */
    struct drv_tg_task *task;      /* borrowed: set before start/work */
    void *state;                   /* owned by the handler: freed by
                                      ops->run.fini */
    int64_t retry_after_ms;        /* set by the handler: a retry waits
                                      at least this long; 0 = backoff */
    char attempt[24];              /* this attempt's number, from 1 */
    /* set by a handler that ran a child process (exec), once reaped */
    int has_rusage;                /* 1: the two below are known */
    int64_t cpu_ns;                /* the child's user+system CPU */
    int64_t max_rss_kb;            /* its peak resident set, KiB */
    struct drv_hprogress *progress; /* owned: the last report
                                      (drv_hrun_progress, any thread),
                                      allocated by the first one; read
                                      and set atomically; NULL = none */
};

/* A handler's table; its name and kind are its line of DRV_HKIND_LIST
 * (config.h). The operations are grouped by what they serve: a job
 * (check), a job type from worker create to free (type), an attempt
 * (run). */
struct drv_handler_ops {
    /* The fields this handler needs, present and well-formed: 0, or
     * DRV_EBADJOB with err naming the field. NULL = any job runs. */
    int (*check)(const struct drv_config_job *type,
                 const struct drv_job *job, struct drv_err *err);
    struct drv_handler_type_ops {
        /* Per job type at worker create; NULL = nothing to do. */
        int (*load)(struct drv_htype *ht, struct drv_err *err);
        /* Per job type at worker free, before shutdown; may be NULL. */
        void (*unload)(struct drv_htype *ht);
        /* Once per table at worker free, after every unload; may be
         * NULL. */
        void (*shutdown)(struct drv_handler_host *host);
    } type;
    struct drv_handler_run_ops {
        /* LOOP: begin the attempt; end it with drv_hrun_ok/_fail, now or
         * later. */
        void (*start)(struct drv_hrun *r);
        /* LOOP: stop it (timeout, shutdown, lease lost, a sibling
         * failed); the attempt must still end with
         * drv_hrun_ok/_fail/_cancelled. Called only while r->state is
         * set (drv_hrun_cancel); NULL = the handler never has anything
         * pending once start returns. */
        void (*cancel)(struct drv_hrun *r, enum drv_tg_cause cause);
        /* THREAD: run it on a pool thread; 0 or a negative code,
         * err->msg the short reason. Touches no loop object. NULL for
         * loop-only types. */
        int (*work)(struct drv_hrun *r, struct drv_err *err);
        /* Free r->state (loop thread, after the task was released);
         * NULL when the handler keeps none. */
        void (*fini)(struct drv_hrun *r);
    } run;
};

/* ------------------------------------------------------------ the table */

/* drv_handler_ops_of -- the table of kind; never NULL for a valid kind. */
const struct drv_handler_ops *drv_handler_ops_of(enum drv_hkind kind);

/*
 * drv_htype_load -- ht for job type cfg: its table, then ops->type.load.
 * Returns 0, or the load's code with err filled ("jobs.X: ..."). Call
 * drv_htype_unload even after a failure.
 */
int drv_htype_load(struct drv_htype *ht, struct drv_handler_host *host,
                   const struct drv_config_job *cfg, struct drv_err *err);
void drv_htype_unload(struct drv_htype *ht);

/* drv_handler_host_fini -- every table's shutdown (after every unload). */
void drv_handler_host_fini(struct drv_handler_host *host);

/* drv_handler_check -- the check of type's handler (0 when it has none). */
int drv_handler_check(const struct drv_config_job *type,
                      const struct drv_job *job, struct drv_err *err);

/* ------------------------------------------------------------- a run */

/* drv_hrun_init -- r for one attempt of job (all borrowed). */
void drv_hrun_init(struct drv_hrun *r, struct drv_htype *ht,
                   const struct drv_job *job, const char *queue);

/* drv_hrun_fini -- ops->run.fini when the handler kept state; idempotent. */
void drv_hrun_fini(struct drv_hrun *r);

/* drv_hrun_ok -- a LOOP attempt succeeded with len bytes of result (data
 * may be NULL: no result). */
void drv_hrun_ok(struct drv_hrun *r, const void *data, size_t len);

/*
 * drv_hrun_fail -- a LOOP attempt failed with code (negative): text is
 * the error written to Redis (len bytes; its start is also the outcome's
 * short message).
 */
void drv_hrun_fail(struct drv_hrun *r, int code, const char *text,
                   size_t len);

/*
 * drv_hrun_cancel -- stop a LOOP attempt. With no ops->run.cancel, or no
 * r->state yet (nothing was started), nothing is pending: the attempt
 * ends cancelled now. Otherwise ops->run.cancel(r, cause).
 */
void drv_hrun_cancel(struct drv_hrun *r, enum drv_tg_cause cause);

/* drv_hrun_cancelled -- a LOOP attempt ended cancelled (-ECANCELED). */
void drv_hrun_cancelled(struct drv_hrun *r);

/*
 * drv_hrun_output -- a THREAD attempt's result (ok) or error text
 * (failure), len bytes; from work() on its pool thread.
 */
void drv_hrun_output(struct drv_hrun *r, const void *data, size_t len);

/*
 * drv_hrun_lookup -- the one field lookup of templates and plugins
 * (a drv_template_lookup_fn; ctx is the struct drv_hrun): the field's
 * last value; `{id}` is always the job's id (its id field, else the
 * entry id) and `{attempt}` always this attempt's number from 1, as
 * DROVER_ATTEMPT. -ENOENT when the job has no such field.
 */
int drv_hrun_lookup(const char *name, size_t name_len, const char **value,
                    size_t *value_len, void *ctx);

/*
 * drv_hrun_progress -- the job reports pct (clamped to 0..100) and msg
 * (len bytes, cut at DRV_HRUN_PROGRESS_MSG_MAX; NULL = none). Any thread
 * while the run lives; the last report wins.
 */
void drv_hrun_progress(struct drv_hrun *r, int pct, const char *msg,
                       size_t len);

/*
 * drv_hrun_progress_line -- one line an exec child wrote to its progress
 * pipe, "PERCENT [MESSAGE]" (len bytes, no newline): PERCENT a decimal
 * number (a fraction is cut), MESSAGE the rest after one space. Returns
 * 0, or -EINVAL (nothing reported) for a line that does not start with a
 * number.
 */
int drv_hrun_progress_line(struct drv_hrun *r, const char *line,
                           size_t len);

/*
 * drv_hrun_progress_take -- loop thread: when a report came since *seq,
 * copy it (pct, msg into buf of DRV_HRUN_PROGRESS_MSG_MAX bytes, its
 * length into *len), update *seq and return 1; else 0. A run that never
 * reports costs one atomic load here and nothing else (the report's
 * store is allocated by the first report).
 */
int drv_hrun_progress_take(struct drv_hrun *r, unsigned *seq, int *pct,
                           char *buf, size_t *len);

/* ----------------------------------------------------------- job fields */

/*
 * drv_handler_uint_field -- a plain decimal field at most max into *out:
 * 0; 1 when absent and not required; DRV_EBADJOB with err (may be NULL)
 * naming the field otherwise.
 */
int drv_handler_uint_field(const struct drv_job *job, const char *name,
                           uint64_t max, int required, uint64_t *out,
                           struct drv_err *err);

/*
 * drv_handler_fields_json -- the fields as one JSON object of strings:
 * each name once, at its first place, with its last value. args_only
 * leaves out the worker's own fields (job, pipeline, id, attempt, step).
 * Caller frees; *len its length.
 */
char *drv_handler_fields_json(const struct drv_job *job, int args_only,
                              size_t *len);

#endif
