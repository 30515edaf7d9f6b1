/*
 * worker_int.h -- declarations shared by the worker's files.
 */
#ifndef DROVER_WORKER_INT_H
#define DROVER_WORKER_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <hiredis/hiredis.h>

#include "drover/error.h"

struct drv_config;
struct drv_config_job;
struct drv_job;

/* Validate a fetched job against the config; on success *type is its job
 * type, or for a pipeline job *pipe and *step (the step to run). Returns
 * DRV_EBADJOB with err naming the field otherwise. */
struct drv_config_pipeline;
int drv__worker_job_validate(const struct drv_config *cfg,
                             const struct drv_job *job,
                             const struct drv_config_job **type,
                             const struct drv_config_pipeline **pipe,
                             int64_t *step, struct drv_err *err);

/* Field ms of a validated sleep/block job. */
int64_t drv__worker_job_ms(const struct drv_job *job);

/* 1 if a validated fail job has permanent=1. */
int drv__worker_job_permanent(const struct drv_job *job);

/* The fields as a JSON object (caller frees); args_only drops job, id,
 * attempt, pipeline, step. */
char *drv__worker_fields_json(const struct drv_job *job, int args_only,
                              size_t *len);

/* exec's stdin JSON: every field, with id and attempt (caller frees). */
char *drv__worker_exec_stdin(const struct drv_job *job, size_t *len);

/* exec's argv from the command templates (caller frees with
 * drv__worker_strv_free); NULL with err DRV_EBADJOB "missing field X". */
char **drv__worker_exec_argv(const struct drv_config_job *type,
                             const struct drv_job *job, struct drv_err *err);

/* The worker's environment without secrets (caller frees). */
char **drv__worker_base_env(char *const *environ_, const char *redis_url);

/* A child's environment: base + DROVER_JOB_ID, DROVER_JOB, DROVER_QUEUE,
 * DROVER_ATTEMPT + the job type's env map (caller frees). */
char **drv__worker_exec_env(char *const *base,
                            const struct drv_config_job *type,
                            const struct drv_job *job, const char *queue);

void drv__worker_strv_free(char **v);

/* ================================================================ state */

#include <event2/event.h>

#include "drover/config.h"
#include "drover/queue.h"
#include "drover/worker.h"

struct drv_loop;
struct drv_pool;
struct drv_proc;
struct drv_proc_mgr;
struct drv_redis;
struct drv_redis_script;
struct drv_sem;
struct drv_tg;
struct drv_tg_task;
struct drv_tg_task_opts;

enum wstate {
    W_NEW = 0,      /* created, not started */
    W_RUNNING,      /* fetching and running */
    W_DRAINING,     /* graceful stop: no fetching, running jobs finish */
    W_STOPPED       /* on_stopped delivered (or pending) */
};

/* A job type as the worker runs it. */
struct wtype {
    const struct drv_config_job *cfg; /* borrowed: config */
    struct drv_sem *sem;              /* owned: jobs.X.concurrency, NULL if
                                         unlimited */
    void *plugin;                     /* owned by worker_plugin.c: the
                                         loaded plugin of a plugin type */
};

/* One job from fetch to settle. */
struct wjob {
    unsigned magic;
#define WJOB_MAGIC 0x3a0b3a0bU
    struct drv_worker *w;         /* borrowed: owner */
    struct drv_job *job;          /* owned: the entry's copy */
    int qi;                       /* queue index */
    struct wtype *type;           /* borrowed: NULL for a bad job */
    struct drv_err bad;           /* why the job is bad (code != 0) */
    struct wbatch *batch;         /* borrowed: its task group */
    struct drv_tg_task *task;     /* borrowed: valid until released */
    int refs;                     /* task side + settle side */
    int started;                  /* the handler was started */
    int running;                  /* counted in stats.running */
    int lost;                     /* lease lost: outcome discarded */
    int64_t start_ns;             /* when the handler started */
    /* handler state */
    struct event *timer;          /* owned: sleep handler's timer */
    struct drv_proc *proc;        /* owned: exec handler's child */
    int64_t block_ms;             /* block handler's duration */
    void *hdata;                  /* owned: http/plugin per-job state */
    void (*hdata_free)(void *);   /* frees hdata with the job */
    int64_t retry_after_ms;       /* a retry waits at least this (http
                                     Retry-After); 0 = backoff only */
    /* pipelines */
    const struct drv_config_pipeline *pipe; /* borrowed: NULL if a job */
    int64_t step;                 /* pipeline step index */
    int64_t started_ms;           /* Unix ms the attempt started */
    struct wjob *parent;          /* borrowed: member of a parallel step */
    int member_index;             /* ... its index in the step */
    int job_borrowed;             /* job belongs to the parent */
    char **mtext;                 /* owned: parallel members' result or
                                     error text, by index */
    size_t *mtext_len;            /* owned: their lengths */
    int nmembers;                 /* members of a parallel step */
    /* settle */
    int settle_pending;           /* queued in its queue's settle list */
    struct drv_settle_op op;      /* the decided op; text owned below */
    char *op_text;                /* owned: result or error */
    size_t op_text_len;
    struct wjob *prev, *next;     /* borrowed: worker's live list */
    /* resources of an exec child, for the result hash */
    int has_rusage;               /* the fields below are known */
    int64_t cpu_ms;               /* user+system CPU */
    int64_t max_rss_kb;           /* peak resident set */
    void *mcell;                  /* borrowed: its metric series, found
                                     when it started (worker_metrics.c) */
};

/* One fetched batch: a task group. */
struct wbatch {
    unsigned magic;
#define WBATCH_MAGIC 0xba7cba7cU
    struct drv_worker *w;         /* borrowed: owner */
    struct drv_tg *tg;            /* owned */
    int njobs;                    /* tasks spawned */
    struct wbatch *prev, *next;   /* borrowed: worker's batch list */
};

struct wqueue {
    struct drv_queue_keys keys;   /* key names */
    int paused;                   /* P:{Q}:paused exists */
    struct wjob **pend;           /* owned array: jobs awaiting settle */
    int npend, cappend;
    int settle_inflight;          /* a settle call is out */
    int mover_inflight;           /* a mover call is out */
    int reclaim_inflight;         /* a reclaim call is out */
};

struct drv_worker {
    unsigned magic;
#define DRV_WORKER_MAGIC 0x30b3e30bU
    const struct drv_config *cfg;   /* borrowed */
    struct drv_loop *loop;          /* borrowed */
    struct event_base *base;        /* borrowed: loop's */
    char id[160];                   /* worker id = consumer name */
    char host[64];                  /* for the registry */
    int64_t started_ms;             /* Unix ms */
    enum wstate state;
    int hard;                       /* stop was immediate */
    drv_worker_stopped_fn *on_stopped;
    void *ctx;                      /* borrowed: for on_stopped */

    struct drv_redis *cmd;          /* owned: commands, scripts */
    struct drv_redis *blk;          /* owned: blocking reads */
    struct drv_redis_script *scripts[5]; /* owned: settle, mover, reclaim,
                                            renew, dead_retry */
    int groups_ready;               /* XGROUP CREATE done since READY */
    int groups_pending;             /* replies still due */

    struct drv_pool *pool;          /* owned: thread pool */
    struct drv_proc_mgr *procs;     /* owned: children */
    struct drv_sem *sem;            /* owned: worker.concurrency */
    struct drv_sem *thread_sem;     /* owned: pool threads, for pool jobs */
    int inflight;                   /* jobs fetched, task not released */
    struct wtype *types;            /* owned: per job type */
    size_t ntypes;
    struct wqueue *queues;          /* owned: by priority */
    size_t nqueues;
    char **base_env;                /* owned: env for exec children */
    void *http;                     /* owned by worker_http.c: the HTTP
                                       client, NULL until first needed */
    char *workers_key;              /* owned: P:workers */
    void *metrics;                  /* owned by worker_metrics.c: metrics
                                       and the HTTP endpoint, NULL when
                                       worker.metrics is unset */

    struct wjob *live;              /* list of jobs not yet settled */
    struct wbatch *batches;         /* list of live task groups */

    /* fetching */
    int fetch_inflight;             /* reads out on blk */
    int fetch_blocking;             /* one of them is the BLOCK read */
    int fetch_hot;                  /* last read returned entries */
    int fetch_reserved;             /* permits the passes out may fill */
    int unblock_sent;               /* CLIENT UNBLOCK sent this stop */

    /* timers */
    struct event *tick_ev;          /* every 250 ms: pause, mover, ... */
    struct event *defer_ev;         /* settle flush + fetch, next turn */
    struct event *drain_ev;         /* shutdown_timeout deadline */
    int drain_expired;              /* drain_ev fired */
    struct event *stop_ev;          /* deliver on_stopped */
    int64_t next_beat_ns;           /* registry heartbeat */
    int64_t next_reclaim_ns;        /* reclaim pass */
    int64_t next_renew_ns;          /* lease renewal */
    int64_t next_pause_ns;          /* paused keys check */
    int64_t next_mover_ns;          /* delayed mover */
    int pause_inflight;             /* MGET of the paused keys out */
    int pause_known;                /* the paused keys were read once */
    int renew_inflight;             /* renew calls out */
    int beat_inflight;              /* heartbeat out */

    struct drv_worker_stats stats;
    FILE *trace;                    /* owned: DROVER_TRACE_START file, or
                                       NULL (diagnostics, see README) */
};

/* worker.c */
void drv__worker_kick(struct drv_worker *w);
void drv__worker_check_stopped(struct drv_worker *w);
int drv__worker_free_permits(struct drv_worker *w);

/* worker_fetch.c */
void drv__worker_fetch(struct drv_worker *w);
void drv__worker_create_groups(struct drv_worker *w);
int drv__worker_entries(struct drv_worker *w, const redisReply *streams,
                        int by_name, int qi);

/* worker_run.c */
int drv__worker_spawn_batch(struct drv_worker *w, struct wjob **jobs, int n);
void drv__worker_cancel_all(struct drv_worker *w, int pending_only);
void drv__worker_job_unref(struct wjob *j);
void drv__worker_cancel_job(struct wjob *j);

void drv__worker_job_started(struct drv_tg_task *t, struct wjob *j);

/* worker.c: one "unix_us queue entry_id" line for a started job, when
 * DROVER_TRACE_START names a file. */
void drv__worker_trace_start(struct drv_worker *w, const struct wjob *j);
void drv__worker_job_set_text(struct wjob *j, const char *s, size_t n);

/*
 * Handler hooks, one file per handler family. _task fills the task
 * options of job j (kind, start/cancel or work, extra sems) for its
 * handler; a start function must call drv__worker_job_started(t, j)
 * first. Results and errors go through drv__worker_job_set_text (the
 * bytes written to Redis) and drv_tg_task_done (the outcome; DRV_EPERM =
 * permanent, dead at once; DRV_EBADJOB = bad input, dead at once; other
 * negative = retried).
 */
/* worker_plugin.c */
int drv__worker_plugins_load(struct drv_worker *w, struct drv_err *err);
void drv__worker_plugins_unload(struct drv_worker *w);
void drv__worker_plugin_task(struct drv_worker *w, struct wjob *j,
                             struct drv_tg_task_opts *to);
/* worker_http.c */
int drv__worker_http_init(struct drv_worker *w, struct drv_err *err);
void drv__worker_http_fini(struct drv_worker *w);
void drv__worker_http_task(struct drv_worker *w, struct wjob *j,
                           struct drv_tg_task_opts *to);

/* worker_metrics.c: each hook does nothing when metrics are off */
struct drv_proc_result;
struct drv_tg_outcome;
int drv__worker_metrics_init(struct drv_worker *w, struct drv_err *err);
void drv__worker_metrics_fini(struct drv_worker *w);
/* The handler started (after j->start_ns and j->started_ms are set). */
void drv__worker_metrics_started(struct wjob *j);
/* An exec child was reaped: keep its resources for the result hash. */
void drv__worker_metrics_rusage(struct wjob *j,
                                const struct drv_proc_result *res);
/* The outcome is decided (j->op filled, not yet queued for settle): count
 * it; copies the child's resources into j->op. */
void drv__worker_metrics_outcome(struct wjob *j,
                                 const struct drv_tg_outcome *o);
/* A member of a parallel step finished. */
void drv__worker_metrics_member_done(struct wjob *j,
                                     const struct drv_tg_outcome *o);

/* worker_settle.c */
void drv__worker_settle_queue(struct wjob *j);
/* Off the live list, settle-side reference dropped (settled, or lost). */
void drv__worker_job_settled(struct wjob *j);
void drv__worker_settle_flush(struct drv_worker *w);
void drv__worker_maintain(struct drv_worker *w, int64_t now_ns);
struct drv_script_call;
int drv__worker_script(struct drv_worker *w, int which,
                       struct drv_script_call *call,
                       void (*cb)(struct drv_redis *, int, const redisReply *,
                                  void *),
                       void *ctx);

#define SCRIPT_SETTLE 0
#define SCRIPT_MOVER 1
#define SCRIPT_RECLAIM 2
#define SCRIPT_RENEW 3
#define SCRIPT_DEAD_RETRY 4

#endif
