/*
 * worker_int.h -- declarations shared by the worker's files.
 *
 * A job moves one way through them:
 *   fetch.c / upkeep.c (reclaim)  a reply becomes job records (job.c)
 *   admit.c                       limited job types: deduplication,
 *                                 rate and fleet-wide slots (Redis)
 *   run.c                         admitted: a batch task group, permits,
 *                                 the handler through its table
 *                                 (pipeline.c for a parallel step)
 *   settle.c                      outcome -> settle op (outcome.c), then
 *                                 pipelined script calls
 *   job.c                         off the live list, freed
 * worker.c holds the life (create, start, tick, stop); upkeep.c the
 * periodic queue work (mover, reclaim, renew, pause, registry).
 */
#ifndef DROVER_WORKER_INT_H
#define DROVER_WORKER_INT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/queue.h>

#include <hiredis/hiredis.h>

#include "drover/error.h"
#include "drover/handlers.h"
#include "outcome.h"

/* ================================================================ state */

#include <event2/event.h>

#include "drover/config.h"
#include "drover/queue.h"
#include "drover/redis.h"
#include "drover/worker.h"

struct drv_redis_sentinel;
struct drv_redis_cluster;
struct drv_redis_cluster_route;

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
struct wscheds;
struct wweights;
struct wgraph;

enum wstate {
    W_NEW = 0,      /* created, not started */
    W_RUNNING,      /* fetching and running */
    W_DRAINING,     /* graceful stop: no fetching, running jobs finish */
    W_STOPPED       /* on_stopped delivered (or pending) */
};

/* A job type as the worker runs it. */
struct wtype {
    struct drv_htype ht;              /* its handler (loaded at create) */
    struct drv_sem *sem;              /* owned: jobs.X.concurrency, NULL if
                                         unlimited */
};

/*
 * One job from fetch to settle (job.c owns its memory). Two references:
 * the task side (dropped when the task group releases the task) and the
 * settle side (dropped when the settle reply came back, or the outcome
 * was dropped). A member of a parallel step holds one reference of its
 * own and one on the step's job (its parent).
 */
struct wjob {
    unsigned magic;
#define WJOB_MAGIC 0x3a0b3a0bU
    struct drv_worker *w;         /* borrowed: owner; NULL once detached */
    struct drv_job *job;          /* owned; a member borrows its parent's */
    int qi;                       /* queue index */
    struct wtype *type;           /* borrowed: NULL for a bad job and a
                                     parallel step */
    struct drv_err bad;           /* why the job cannot run (code != 0) */
    int ended;                    /* the reclaim handed it back to end
                                     dead with bad, running nothing (a
                                     graph node poison or too large) */
    const struct drv_config_pipeline *pipe; /* borrowed: NULL if a job */
    int64_t step;                 /* pipeline step index */
    struct wjob *parent;          /* counted reference: the parallel step
                                     this job is a member of, or NULL */
    struct drv_tg_task *task;     /* borrowed: valid until released */
    int refs;                     /* see above */
    int started;                  /* the handler was started */
    int running;                  /* counted in stats.running */
    int lost;                     /* lease lost: outcome discarded */
    int cancel_req;               /* drover cancel marked its entry: the
                                     outcome becomes a cancel (cancel.c) */
    int graph_refused;            /* its graph settle call was refused by
                                     Redis (OOM, NOPERM): sent again later
                                     (graph.c) */
    unsigned progress_seq;        /* the run's last report taken */
    int64_t progress_next_ns;     /* no progress write before (mono) */
    int progress_written;         /* the result hash holds progress */
    int64_t started_ms;           /* Unix ms the attempt started */
    struct drv_hrun run;          /* the handler's view of the attempt;
                                     its state freed with the job */
    int settle_pending;           /* queued in its queue's settle list */
    struct drv_decision dec;      /* the decided op; its text owned */
    LIST_ENTRY(wjob) link;        /* on the worker's live list */
    void *mcell;                  /* borrowed: its metric series, found
                                     when it started (worker_metrics.c) */
    int64_t mstart_ns;            /* when it started, for its run time
                                     (worker_metrics.c) */
    void *admit;                  /* owned by admit.c: what it asks or
                                     holds fleet-wide, NULL if its type
                                     sets no admission key */
};

/* One fetched batch: a task group. */
struct wbatch {
    unsigned magic;
#define WBATCH_MAGIC 0xba7cba7cU
    struct drv_worker *w;         /* borrowed: owner */
    struct drv_tg *tg;            /* owned */
    LIST_ENTRY(wbatch) link;      /* on the worker's batch list */
};

/* Jobs read by one reply, on their way to admission. */
struct wjobs {
    struct wjob **v;              /* owned array of borrowed jobs */
    int n, cap;
};

/* The connection-state ctx of a queue's own connections (Cluster). */
struct wqconn {
    unsigned magic;
#define WQCONN_MAGIC 0x0c0aa0c0U
    struct drv_worker *w;         /* borrowed: owner */
    int qi;                       /* the queue */
};

struct wqueue {
    struct drv_queue_keys keys;   /* key names */
    /* where the queue's commands go. One Redis: borrowed, the worker's
     * cmd and blk (fetch = blk). Cluster: owned, a command and a blocking
     * connection to the master of the queue's slot (fetch = cmd: the
     * non-blocking reads), each with its route (owned by the cluster
     * object) */
    struct drv_redis *cmd;        /* scripts, pause check */
    struct drv_redis *blk;        /* the BLOCK read */
    struct drv_redis *fetch;      /* the non-blocking reads of a pass */
    struct drv_redis_cluster_route *rcmd, *rblk; /* borrowed: routes */
    struct wqconn conn;           /* ctx of the own connections' states */
    int paused;                   /* P:{Q}:paused exists */
    int pause_known;              /* cluster: paused read once */
    int64_t fetch_retry_ns;       /* cluster: a read was redirected (ASK,
                                     TRYAGAIN during a migration): no read
                                     before this */
    struct wjob **pend;           /* owned array: jobs awaiting settle */
    int npend, cappend;
    int settle_inflight;          /* a settle call is out */
    int mover_inflight;           /* a mover call is out */
    int reclaim_inflight;         /* a reclaim call is out */
    int cancel_inflight;          /* a read of its cancel markers is out
                                     (cancel.c) */
    /* readiness (worker.c): fetch, mover and reclaim run only on a ready
     * queue; the others go on without it */
    int ready;                    /* prepared (key types right, group
                                     there) since the cmd connection
                                     became READY */
    int prepare_inflight;         /* a prepare call is out */
    int64_t next_prepare_ns;      /* retry of a failed prepare */
    char bad[DRV_ERR_MSG_MAX];    /* a key of the wrong type: the error
                                     naming it; "" when none */
    int64_t bad_logged_ns;        /* last log of bad (at most every
                                     BAD_LOG_NS) */
    int64_t upkeep_logged_ns;     /* last log of a failed mover, reclaim
                                     or renew call (same limit) */
    /* when the mover and reclaim look at the queue (upkeep_due.c) */
    int64_t mover_at_ns;          /* run the mover then (monotonic);
                                     INT64_MAX: no job known to fall due */
    int64_t head_at_ns;           /* next look at the delayed set's head */
    int64_t head_ivl_ns;          /* its backoff while nothing changes */
    int head_inflight;            /* that look is out */
    int64_t reclaim_at_ns;        /* next reclaim call */
    struct drv_argv hints;        /* owned: members of the due index that
                                     name this queue, removed once the
                                     next mover call is sent */
    /* settle calls Redis refused (settle.c) */
    unsigned settle_fails;        /* refused in a row: backoff exponent */
    int64_t settle_retry_ns;      /* next settle call not before */
};

/* Outcomes of one queue waiting for a settle call at which that queue
 * is not read (the others are: no head-of-line blocking of a quiet
 * queue behind a busy one): at load Redis is the limit, and jobs fetched
 * faster than their outcomes can be written only pile up (memory, and
 * every walk of the live list); two full settle calls' worth keeps the
 * next call ready. A settle reply kicks fetching again. */
#define SETTLE_BACKLOG 1024

/* Problems that repeat are logged at most this often per queue. */
#define BAD_LOG_NS (10 * DRV_NS_PER_SEC)

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
    struct drv_redis_sentinel *sentinel; /* owned: finds the primary
                                       (redis.sentinel), else NULL */
    struct drv_redis_cluster *cluster; /* owned: the slot map
                                       (redis.cluster), else NULL; cmd and
                                       blk then serve the registry */
    struct drv_redis_cluster_route *rreg_cmd, *rreg_blk; /* borrowed:
                                       routes of cmd and blk (cluster) */
    struct drv_redis_script *scripts[5]; /* owned: by SCRIPT_* */
    const struct drv_queue_keys **qkeys; /* owned array of borrowed keys:
                                       scratch for command builders */
    int groups_ready;               /* queues ready (wqueue.ready) */
    int64_t refused_ns;             /* Redis refuses writes (OOM, NOPERM,
                                       ...): since when (monotonic), 0 when
                                       not; outcomes wait, fetching and
                                       the writing upkeep pause */
    int refused_waiting;            /* outcomes waiting when it began */
    struct drv_queue_dead_bound dead_bound; /* worker.dead_max, _max_age */

    struct drv_pool *pool;          /* owned: thread pool */
    struct drv_proc_mgr *procs;     /* owned: children */
    struct drv_sem *sem;            /* owned: worker.concurrency */
    struct drv_sem *thread_sem;     /* owned: pool threads, for pool jobs */
    int inflight;                   /* jobs fetched, task not released */
    struct wtype *types;            /* owned: per job type */
    size_t ntypes;
    struct wqueue *queues;          /* owned: by priority */
    size_t nqueues;
    struct drv_handler_host hhost;  /* what handlers share (its http
                                       client and plugins owned by them) */
    char *workers_key;              /* owned: P:workers */
    void *metrics;                  /* owned by worker_metrics.c: metrics
                                       and the HTTP endpoint, NULL when
                                       worker.metrics is unset */

    struct wscheds *schedules;      /* owned by schedule.c: the config's
                                       schedules, NULL when none */
    void *admit;                    /* owned by admit.c: deduplication,
                                       rate and fleet-wide limits, NULL
                                       when no job type sets them */
    struct wgraph *graph;           /* owned by graph.c: NULL when the
                                       config has no graph pipeline */

    LIST_HEAD(, wjob) live;         /* jobs not yet settled */
    LIST_HEAD(, wbatch) batches;    /* live task groups */

    /* fetching */
    int fetch_inflight;             /* reads out on blk */
    int fetch_blocking;             /* BLOCK reads among them (one, or on a
                                       cluster one per queue) */
    int fetch_hot;                  /* last read returned entries */
    int fetch_reserved;             /* permits the passes out may fill */
    int settle_waiting;             /* outcomes queued, not yet in a
                                       settle call (all queues) */
    int unblock_sent;               /* CLIENT UNBLOCK sent this stop */
    struct wweights *weighted;      /* owned by fetch_weighted.c: the
                                       share of each queue; NULL for
                                       strict priority */

    /* timers */
    struct event *tick_ev;          /* every TICK_MS: pause, mover, ...
                                       (IDLE_TICK_MS while idle) */
    int tick_idle;                  /* tick_ev is on the idle grid */
    struct event *defer_ev;         /* settle flush + fetch, next turn */
    struct event *drain_ev;         /* shutdown_timeout deadline */
    int drain_expired;              /* drain_ev fired */
    struct event *stop_ev;          /* deliver on_stopped */
    int64_t next_beat_ns;           /* registry heartbeat */
    int64_t next_renew_ns;          /* lease renewal */
    int64_t next_pause_ns;          /* paused keys check */
    int64_t next_cancel_ns;         /* cancel markers check (cancel.c) */
    int pause_inflight;             /* MGET of the paused keys out */
    int upkeep_rides;               /* it rides on the blocking read
                                       (drv__worker_upkeep_ride) */
    int64_t ride_end_ns;            /* when that read returns at the
                                       latest */
    int pause_known;                /* the paused keys were read once */
    int renew_inflight;             /* renew calls out */
    int beat_inflight;              /* heartbeat out */
    int due_inflight;               /* read of the due index out */
    int64_t next_due_read_ns;       /* next read of the due index */
    struct drv_argv due_notes;      /* owned: ZADD of the due index for
                                       retries delayed since the last
                                       tick (upkeep_due.c) */

    struct drv_worker_stats stats;
    FILE *trace;                    /* owned: DROVER_TRACE_START file, or
                                       NULL (diagnostics, worker.c) */
};

/* worker.c */
void drv__worker_kick(struct drv_worker *w);
/* Arm the idle tick again: what it waits for changed (upkeep_rides). */
void drv__worker_tick_rearm(struct drv_worker *w);
void drv__worker_check_stopped(struct drv_worker *w);
int drv__worker_free_permits(struct drv_worker *w);
/* Prepare queue qi again (all when qi < 0): not ready until it answers. */
void drv__worker_prepare(struct drv_worker *w, int qi);
/* A key of queue qi has the wrong type (why names it, from a WRONGTYPE
 * error): the queue is skipped until a prepare finds its keys right;
 * logged at most every BAD_LOG_NS. */
void drv__worker_queue_bad(struct drv_worker *w, int qi, const char *why);
/* A queue can take jobs: ready, not paused, its outcomes not stuck, and
 * Redis not refusing writes. */
int drv__worker_queue_active(const struct drv_worker *w, size_t qi);
/* Prepare the queues not ready whose retry is due (the tick). */
void drv__worker_prepare_due(struct drv_worker *w, int64_t now);
/* One "unix_us queue entry_id" line for a started job, when
 * DROVER_TRACE_START names a file. */
void drv__worker_trace_start(struct drv_worker *w, const struct wjob *j);

/* worker_metrics.c: each hook does nothing when metrics are off */
struct drv_tg_outcome;
int drv__worker_metrics_init(struct drv_worker *w, struct drv_err *err);
void drv__worker_metrics_fini(struct drv_worker *w);
/* The handler started (after j->started_ms is set). */
void drv__worker_metrics_started(struct wjob *j);
/* The outcome is decided (j->dec filled, not yet queued for settle):
 * count it. */
void drv__worker_metrics_outcome(struct wjob *j,
                                 const struct drv_tg_outcome *o);
/* A duplicate was acked without running (admit.c). */
void drv__worker_metrics_deduped(struct wjob *j);
/* Schedule i of the config: this worker enqueued one of its ticks. */
void drv__worker_metrics_schedule_tick(struct drv_worker *w, size_t i);
/* A member of a parallel step finished. */
void drv__worker_metrics_member_done(struct wjob *j,
                                     const struct drv_tg_outcome *o);

/* job.c: the only owner of a job record */
struct wjob *drv__job_create(struct drv_worker *w, struct drv_job *job,
                             int qi);
struct wjob *drv__job_member(struct wjob *parent, struct wtype *type);
void drv__job_unref(struct wjob *j);
/* Off the live list, settle-side reference dropped (settled, or lost). */
void drv__job_settled(struct wjob *j);
/* Worker free: every live job forgets the worker (entries stay pending). */
void drv__job_detach_all(struct drv_worker *w);
void drv__jobs_add(struct wjobs *v, struct wjob *j);
void drv__jobs_fini(struct wjobs *v);

/* validate.c: on success *type is its job type, or for a pipeline job
 * *pipe and *step (the step to run). DRV_EBADJOB with err naming the
 * field otherwise. */
int drv__worker_job_validate(const struct drv_config *cfg,
                             const struct drv_job *job,
                             const struct drv_config_job **type,
                             const struct drv_config_pipeline **pipe,
                             int64_t *step, struct drv_err *err);
/* validate.c: the result_ttl (ms) of the job type or pipeline that a
 * job that cannot run names in its job or pipeline field; 0 when it
 * names none that the config knows. */
int64_t drv__worker_named_ttl(const struct drv_config *cfg,
                              const struct drv_job *job);

/* fetch.c */
void drv__worker_fetch(struct drv_worker *w);
/* The result of a read of queue qi (every queue read when qi < 0): 0, or
 * the error code after logging it and preparing the queues again when
 * their group or stream is gone. */
int drv__worker_read_result(struct drv_worker *w, int status,
                            const redisReply *reply, int qi);

/* fetch_weighted.c: weighted queues (cfg->queue_weights set). _init at
 * create (nothing for the list form), _fini at free. _fetch starts a
 * pass wanting `want` jobs (counted in fetch_inflight, want reserved);
 * -1 when nothing could be sent. */
void drv__worker_weighted_init(struct drv_worker *w);
void drv__worker_weighted_fini(struct drv_worker *w);
int drv__worker_fetch_weighted(struct drv_worker *w, int want);
/* The entries of a reply as new job records into out (nothing runs).
 * reply: [[stream, [entry...]]...] when by_name, else [entry...] of qi. */
void drv__worker_entries(struct drv_worker *w, const redisReply *reply,
                         int by_name, int qi, struct wjobs *out);

/* run.c: _admit passes the jobs of limited types through admit.c first;
 * _admit_now spawns them all at once */
void drv__worker_admit(struct drv_worker *w, struct wjobs *jobs);
void drv__worker_admit_now(struct drv_worker *w, struct wjobs *jobs);
void drv__worker_task_opts(struct drv_worker *w, struct wjob *j,
                           struct drv_tg_task_opts *to);
void drv__worker_job_started(struct wjob *j);
/* Spawn j's task (to is complete) into tg; a pool job counts as started
 * once submitted. */
void drv__worker_spawn(struct drv_tg *tg, const struct drv_tg_task_opts *to,
                       struct wjob *j);
/* The task of a job (or a parallel step) is released: its permit is
 * free, its task-side reference dropped. */
void drv__worker_on_release(struct drv_tg_task *t, void *ctx);
void drv__worker_cancel_all(struct drv_worker *w, int pending_only);
void drv__worker_cancel_job(struct wjob *j);
struct wtype *drv__worker_type(struct drv_worker *w,
                               const struct drv_config_job *cfg);

/* pipeline.c */
void drv__worker_spawn_parallel(struct drv_worker *w, struct drv_tg *tg,
                                struct wjob *j);

/* settle.c */
void drv__worker_on_outcome(struct drv_tg_task *t,
                            const struct drv_tg_outcome *o, void *ctx);
void drv__worker_settle_flush(struct drv_worker *w);
struct drv_script_call;
int drv__worker_script(struct drv_worker *w, int qi, int which,
                       struct drv_script_call *call,
                       void (*cb)(struct drv_redis *, int, const redisReply *,
                                  void *),
                       void *ctx);

/* upkeep.c */
void drv__worker_maintain(struct drv_worker *w, int64_t now_ns);
/* -1 while the worker is busy (a job fetched or running, schedules,
 * graph runs, a cluster, Redis not ready, a queue not prepared): the tick
 * then comes every TICK_MS. Else idle: the earliest monotonic time one of
 * the periodic upkeep calls falls due. */
int64_t drv__worker_idle_until(const struct drv_worker *w);
/* Idle: send the paused flags' read, the due index's read and a heartbeat
 * falling due within block_ms behind the blocking read just sent, so their
 * answers come with its answer (one wakeup). */
void drv__worker_upkeep_ride(struct drv_worker *w, int64_t block_ms);
/* The worker is idle and its upkeep reads can ride (no cluster, the
 * paused flags' read not out already). */
int drv__worker_upkeep_can_ride(const struct drv_worker *w);
/* The mover call for queue qi, then the removal of its due index members
 * (upkeep.c). */
void drv__worker_run_mover(struct drv_worker *w, size_t qi);
/* A reclaim call for queue qi, claiming at most n (upkeep.c). */
void drv__worker_run_reclaim(struct drv_worker *w, size_t qi, int n);

/* upkeep_due.c: which queues the mover and reclaim look at, and when.
 * _init at create; _fini at free; _tick from the upkeep; the others are
 * what the worker learns: a retry it delayed into qi (due Unix ms), a
 * fetch that found jobs in qi, a mover reply (moved: jobs moved, more:
 * the limit was reached), a reclaim reply (left: entries still pending,
 * -1 unknown). */
void drv__worker_due_init(struct drv_worker *w);
void drv__worker_due_fini(struct drv_worker *w);
void drv__worker_due_tick(struct drv_worker *w, int64_t now_ns);
/* The due index's read on the blocking connection, behind the blocking
 * read of BLOCK block_ms just sent. */
void drv__worker_due_ride(struct drv_worker *w, int64_t block_ms);
void drv__worker_due_retry(struct drv_worker *w, int qi, int64_t due_ms);
void drv__worker_due_busy(struct drv_worker *w, int qi);
void drv__worker_due_moved(struct drv_worker *w, int qi, int more);
void drv__worker_due_reclaimed(struct drv_worker *w, int qi, long long left);

/* admit.c (only while w->admit is set, except _init, _fini, _drain):
 * _take moves the jobs of limited types out of a fetched batch and asks
 * Redis about them; _settle_tail appends to a settle call what its jobs
 * hold (after every op); _renew extends it (with the lease renewal);
 * _drain gives held jobs back at a stop; _job_free frees a job's state.
 * _init at create (after the queues), _fini after the command
 * connection is freed. */
void drv__admit_init(struct drv_worker *w);
void drv__admit_fini(struct drv_worker *w);
void drv__admit_take(struct drv_worker *w, struct wjobs *jobs);
void drv__admit_settle_tail(struct drv_worker *w,
                            struct drv_script_call *call,
                            struct wjob **jobs, int n);
void drv__admit_renew(struct drv_worker *w);
void drv__admit_drain(struct drv_worker *w);
void drv__admit_job_free(struct wjob *j);

/* cancel.c: from the upkeep, while Redis is up: every
 * DRV_QUEUE_CANCEL_CHECK_MS, the cancel markers of each queue this worker
 * holds jobs of; a marked job's task is cancelled. */
void drv__worker_cancel_check(struct drv_worker *w, int64_t now_ns);

/* progress.c: from the upkeep, every tick while Redis is up: the new
 * progress reports of running jobs, each job at most every
 * DRV_QUEUE_PROGRESS_MS; _end when j's outcome is decided (deletes a
 * progress-only result hash of a type that keeps no result). */
void drv__worker_progress_flush(struct drv_worker *w, int64_t now_ns);
void drv__worker_progress_end(struct wjob *j);

/* schedule.c: _init at create (never fails), _fini after the command
 * connection is freed; drv__worker_schedules from the upkeep, while
 * Redis is up: enqueues the due ticks. */
void drv__worker_schedules_init(struct drv_worker *w);
void drv__worker_schedules_fini(struct drv_worker *w);
void drv__worker_schedules(struct drv_worker *w);

/* graph.c: graph pipelines. _init at create (never fails), _fini with
 * the worker. A graph entry is validated by drv__graph_validate (step =
 * its node's index, -1 for the run's first entry), admitted with
 * drv__graph_task_opts, decided with drv__graph_policy, and settled by
 * drv__graph_settle when drv__graph_settles(j) (all but a requeue). */
void drv__worker_graph_init(struct drv_worker *w);
void drv__worker_graph_fini(struct drv_worker *w);
int drv__graph_validate(const struct drv_job *job,
                        const struct drv_config_pipeline *pipe,
                        int64_t *step_out, struct drv_err *err);
void drv__graph_task_opts(struct drv_worker *w, struct wjob *j,
                          struct drv_tg_task_opts *to);
const struct drv_config_policy *drv__graph_policy(const struct wjob *j);
int drv__graph_settles(const struct wjob *j);
void drv__graph_settle(struct wjob *j);
/* graph_xslot.c: on Redis Cluster, from the upkeep: the boxes of
 * hand-offs between slots left by a worker that died, delivered. */
void drv__graph_upkeep(struct drv_worker *w, int64_t now_ns);

#define SCRIPT_SETTLE 0
#define SCRIPT_MOVER 1
#define SCRIPT_RECLAIM 2
#define SCRIPT_RENEW 3
#define SCRIPT_PREPARE 4

/*
 * drv__worker_of_reply -- the worker that a reply callback's ctx is, or
 * NULL when status is -ECANCELED (the worker is being freed: touch
 * nothing).
 */
struct drv_worker *drv__worker_of_reply(int status, void *ctx);

/*
 * drv__worker_of_queue_reply -- the same for a reply whose ctx is a
 * queue's wqconn (a command on that queue's own connection), with the
 * queue's index in *qi; NULL when status is -ECANCELED (the worker is
 * being freed: touch nothing).
 */
struct drv_worker *drv__worker_of_queue_reply(int status, void *ctx,
                                              int *qi);

/*
 * drv__worker_redis_error -- look at a failed Redis call: a READONLY
 * error (the node is a replica now) makes the Sentinel layer find the
 * primary again; on a cluster a MOVED points the slot's connections at
 * the new owner. status and reply as the reply callback got them.
 * Returns 1 when the reply was a cluster redirection (MOVED, ASK,
 * TRYAGAIN, CLUSTERDOWN: not applied, to be sent again), else 0.
 */
int drv__worker_redis_error(struct drv_worker *w, int status,
                            const redisReply *reply);

#endif
