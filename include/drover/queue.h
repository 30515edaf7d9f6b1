/*
 * drover/queue.h -- the queue's data model in Redis: key names, the job
 * record, and the Lua scripts that move a job between states atomically.
 *
 * Keys (P = prefix, Q = queue; every key of a queue shares the hash tag
 * {Q}, so a queue lives on one cluster slot):
 *
 *   P:{Q}:jobs      stream of ready jobs, consumer group "drover"
 *   P:{Q}:delayed   zset: job id -> due time (Unix ms)
 *   P:{Q}:job:ID    hash: the fields of a delayed job while it waits
 *   P:{Q}:dead      stream of dead-lettered jobs
 *   P:{Q}:result:ID hash: status, result, error, attempts, finished_at
 *   P:{Q}:stats     hash: processed, failed, retried, dead
 *   P:{Q}:paused    string: present = do not fetch
 *   P:workers       hash: worker id -> logfmt status line
 *
 * Lifecycle of one stream entry (each arrow is one script run, atomic):
 *
 *   XADD --> ready --XREADGROUP--> pending (PEL, owner = worker)
 *                                     |-- ack -------> gone (XACK+XDEL)
 *                                     |-- retry -----> delayed --mover--> ready
 *                                     |-- dead ------> P:{Q}:dead
 *                                     |-- requeue ---> ready (new entry)
 *                                     |-- next ------> ready (the next
 *                                     |                pipeline step)
 *                                     '-- reclaim ---> pending (new owner)
 *                                                       or dead (poison)
 *
 * Every settle op first checks that the caller still owns the entry in
 * the PEL (XACK does not); an op on an entry owned by someone else changes
 * nothing and reports DRV_QUEUE_LOST.
 *
 * This module builds command argv vectors and parses replies; it sends
 * nothing itself, so the worker (async) and the CLI (blocking) share it.
 */
#ifndef DROVER_QUEUE_H
#define DROVER_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "drover/error.h"

struct redisReply;

#define DRV_QUEUE_GROUP "drover"

/* ---------------------------------------------------------------- keys */

struct drv_queue_keys {
    char *name;       /* owned: queue name Q */
    char *jobs;       /* owned: P:{Q}:jobs */
    char *delayed;    /* owned: P:{Q}:delayed */
    char *dead;       /* owned: P:{Q}:dead */
    char *stats;      /* owned: P:{Q}:stats */
    char *paused;     /* owned: P:{Q}:paused */
    char *job_prefix; /* owned: P:{Q}:job: */
    char *result_prefix; /* owned: P:{Q}:result: */
};

/* drv_queue_keys_init -- fill k for prefix and queue (caller memory). */
void drv_queue_keys_init(struct drv_queue_keys *k, const char *prefix,
                         const char *queue);
void drv_queue_keys_fini(struct drv_queue_keys *k);

/* drv_queue_workers_key -- "P:workers" into a new string (caller frees). */
char *drv_queue_workers_key(const char *prefix);

/* ---------------------------------------------------------------- jobs */

struct drv_field {
    const char *name;  /* borrowed from the job's buffer */
    size_t name_len;
    const char *value; /* borrowed from the job's buffer */
    size_t value_len;
};

/*
 * A fetched job: a copy of one stream entry (the reply is freed after the
 * callback), in ONE allocation holding the struct, the field array and
 * every name and value.
 */
struct drv_job {
    unsigned magic;
#define DRV_JOB_MAGIC 0x10b10b01U
    char entry_id[48];        /* stream entry id */
    int queue_index;          /* index into the worker's queue list */
    struct drv_field *fields; /* in the job's own block: entry order,
                                 duplicates kept */
    size_t nfields;
    char *buf;                /* in the job's own block: the bytes the
                                 fields point into */
    size_t bytes;             /* total field bytes (names + values) */
    char *id;                 /* job id: the id field's value in buf, or
                                 entry_id (not separately allocated) */
    uint64_t attempt;         /* attempts already made (field attempt) */
    int attempt_bad;          /* 1: field attempt present but invalid */
    int payload_gone;         /* 1: PEL entry whose payload was deleted */
};

/*
 * drv_job_from_entry -- copy an entry reply [id, [f, v, ...]] (or
 * [id, nil]) into a new job. Returns NULL and fills err (DRV_EPROTO) on a
 * malformed reply.
 */
struct drv_job *drv_job_from_entry(const struct redisReply *entry,
                                   struct drv_err *err);

/* drv_job_free -- free the job; NULL does nothing. */
void drv_job_free(struct drv_job *job);

/*
 * drv_job_field -- the field named name (NUL-terminated), last one wins
 * when the entry repeats it; NULL if absent. Borrowed from job.
 */
const struct drv_field *drv_job_field(const struct drv_job *job,
                                      const char *name);

/* drv_job_field_str -- field value as a new NUL-terminated string, or
 * NULL when absent (caller frees). */
char *drv_job_field_str(const struct drv_job *job, const char *name);

/* ------------------------------------------------------- argv builder */

/* A growable argv for redisAsyncCommandArgv / redisCommandArgv. */
struct drv_argv {
    int argc;          /* number of arguments */
    int cap;           /* allocated slots */
    char **argv;       /* owned: each argument (copies) */
    size_t *argvlen;   /* owned: lengths */
};

void drv_argv_init(struct drv_argv *a);
void drv_argv_fini(struct drv_argv *a);
void drv_argv_reset(struct drv_argv *a);
void drv_argv_add(struct drv_argv *a, const char *s, size_t len);
void drv_argv_adds(struct drv_argv *a, const char *s);
void drv_argv_addf(struct drv_argv *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void drv_argv_addll(struct drv_argv *a, long long v);

/* -------------------------------------------------------------- scripts */

struct drv_queue_script {
    const char *name;   /* for logs */
    const char *text;   /* Lua source */
};

extern const struct drv_queue_script drv_queue_settle_script;
extern const struct drv_queue_script drv_queue_mover_script;
extern const struct drv_queue_script drv_queue_reclaim_script;
extern const struct drv_queue_script drv_queue_renew_script;
extern const struct drv_queue_script drv_queue_dead_retry_script;

/*
 * A script run: the script and its KEYS and ARGV. The worker hands it to
 * the redis module (EVALSHA with NOSCRIPT fall-back); the CLI sends EVAL.
 */
struct drv_script_call {
    const struct drv_queue_script *script; /* borrowed: static */
    struct drv_argv keys;                  /* KEYS */
    struct drv_argv args;                  /* ARGV */
};

void drv_script_call_init(struct drv_script_call *c,
                          const struct drv_queue_script *script);
void drv_script_call_fini(struct drv_script_call *c);

/* drv_script_call_eval -- `EVAL text numkeys KEYS... ARGV...` into out. */
void drv_script_call_eval(const struct drv_script_call *c,
                          struct drv_argv *out);

/* ---------------------------------------------------------- settle ops */

enum drv_settle_kind {
    DRV_SETTLE_ACK = 0,   /* success: XACK+XDEL, processed+1, result ok */
    DRV_SETTLE_RETRY,     /* failed attempt: delayed with attempt+1 */
    DRV_SETTLE_DEAD,      /* dead-lettered */
    DRV_SETTLE_REQUEUE,   /* unfinished at shutdown: new entry, same attempt */
    DRV_SETTLE_NEXT       /* pipeline step done: ack + the next step's entry
                             (step+1, input = text, attempt reset) */
};

/* Result codes per op, as the settle script returns them. */
enum {
    DRV_QUEUE_LOST = 0,   /* not owned by us (reclaimed): nothing changed */
    DRV_QUEUE_DONE = 1,   /* applied */
    DRV_QUEUE_GONE = 2    /* owned, but the payload was deleted: acked
                             (ops that need the payload, and acks that keep
                             a result; a plain ack reports DONE) */
};

/*
 * One settle op. Text fields are borrowed until drv_settle_add returns
 * (it copies them).
 */
struct drv_settle_op {
    enum drv_settle_kind kind;
    const char *entry_id;   /* stream entry */
    const char *job_id;     /* the job's id */
    uint64_t attempts;      /* attempts made, this one included (RETRY:
                               becomes the delayed job's attempt field) */
    int64_t result_ttl_ms;  /* 0 = keep no result */
    int64_t due_ms;         /* RETRY: when to run again (Unix ms) */
    int count_failed;       /* DEAD: 1 = also count a failed attempt */
    int pipeline;           /* 1: a pipeline step (step is meaningful) */
    int64_t step;           /* pipeline step index, from 0 */
    int64_t started_at_ms;  /* when the attempt started (Unix ms), for
                               the pipeline's per-step record */
    const char *text;       /* ACK: result; RETRY/DEAD: error */
    size_t text_len;
    int has_rusage;         /* 1: cpu_ms and max_rss_kb are known (exec)
                               and go into the result hash */
    int64_t cpu_ms;         /* the child's user+system CPU, ms */
    int64_t max_rss_kb;     /* the child's peak resident set, KiB */
};

/*
 * drv_settle_init -- start a batch of settle ops for ONE queue, run as one
 * script call (atomic per op, one round trip for the batch). A plain ack
 * (DRV_SETTLE_ACK, result_ttl_ms <= 0) costs two arguments, and all the
 * plain acks of a call share one ownership query, one XACK and one XDEL.
 */
void drv_settle_init(struct drv_script_call *c,
                     const struct drv_queue_keys *k, const char *consumer,
                     int64_t now_ms);
void drv_settle_add(struct drv_script_call *c,
                    const struct drv_queue_keys *k,
                    const struct drv_settle_op *op);
/* drv_settle_nops -- ops added so far. */
int drv_settle_nops(const struct drv_script_call *c);

/*
 * drv_settle_parse -- the reply of a settle run: an array of nops integers
 * (DRV_QUEUE_*) into codes[nops]. 0 or DRV_EPROTO / DRV_EREDIS.
 */
int drv_settle_parse(const struct redisReply *reply, int nops, int *codes,
                     struct drv_err *err);

/* ------------------------------------------------------- other scripts */

/*
 * drv_queue_mover -- move up to limit due jobs (score <= now_ms) from the
 * delayed set back to the stream. Reply: integer, jobs moved.
 */
void drv_queue_mover(struct drv_script_call *c,
                     const struct drv_queue_keys *k, int64_t now_ms,
                     int limit);

/*
 * drv_queue_reclaim -- claim up to count entries idle longer than
 * min_idle_ms for consumer; an entry already delivered max_deliveries
 * times goes to dead with "poison: ...". Reply: [claimed entries,
 * poisoned count, gone count]; claimed entries are [id, fields] pairs.
 */
void drv_queue_reclaim(struct drv_script_call *c,
                       const struct drv_queue_keys *k, const char *consumer,
                       int64_t min_idle_ms, int count,
                       int64_t max_deliveries, int64_t now_ms);

/*
 * drv_queue_renew -- refresh the PEL idle time of entries this consumer
 * still owns (ids added with drv_argv_adds(&c->args, id) after this call).
 * Reply: array of the ids it no longer owns.
 */
void drv_queue_renew(struct drv_script_call *c,
                     const struct drv_queue_keys *k, const char *consumer);

/*
 * drv_queue_dead_retry -- move dead entries back to the stream: the one
 * whose job id (or entry id) is id, or all when id is NULL. Fields error,
 * attempts, failed_at and attempt are dropped; id kept. Reply: integer,
 * entries moved.
 */
void drv_queue_dead_retry(struct drv_script_call *c,
                          const struct drv_queue_keys *k, const char *id);

/* drv_queue_group_create -- XGROUP CREATE jobs drover 0 MKSTREAM into out
 * (-BUSYGROUP means it exists already: fine). */
void drv_queue_group_create(const struct drv_queue_keys *k,
                            struct drv_argv *out);

/* --------------------------------------------------------- sampling */

/* Commands per queue of a sample. */
#define DRV_QUEUE_SAMPLE_CMDS 4

/* A queue's numbers; -1 = unknown. */
struct drv_queue_sample {
    int64_t ready;    /* in the stream, not yet delivered */
    int64_t running;  /* delivered, not acked (the group's pending) */
    int64_t delayed;  /* waiting for a retry or their time */
    int64_t dead;     /* dead-lettered entries */
};

/*
 * drv_queue_sample_cmds -- the commands that measure queue k, into
 * cmds[0..3] (reset first): XLEN jobs, XINFO GROUPS jobs, ZCARD delayed,
 * XLEN dead. Their keys share k's hash tag, so they may run in one MULTI.
 */
void drv_queue_sample_cmds(const struct drv_queue_keys *k,
                           struct drv_argv cmds[DRV_QUEUE_SAMPLE_CMDS]);

/*
 * drv_queue_sample_parse -- EXEC's reply to those four commands into s.
 * 0, or DRV_EREDIS / DRV_EPROTO with err filled.
 */
int drv_queue_sample_parse(const struct redisReply *reply,
                           struct drv_queue_sample *s, struct drv_err *err);

/*
 * drv_queue_sample_ready_running -- ready and running of s from the
 * replies to XLEN jobs and XINFO GROUPS jobs: ready is the group's lag
 * when Redis knows it, else XLEN - pending; without the group, all of
 * XLEN with nothing running. 0 or DRV_EREDIS / DRV_EPROTO.
 */
int drv_queue_sample_ready_running(const struct redisReply *xlen,
                                   const struct redisReply *groups,
                                   struct drv_queue_sample *s,
                                   struct drv_err *err);

/* drv_queue_reply_map_get -- the value after name in a flat [name,
 * value, ...] array reply, or NULL. */
const struct redisReply *drv_queue_reply_map_get(
    const struct redisReply *m, const char *name);

#endif
