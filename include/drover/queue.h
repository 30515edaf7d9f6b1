/*
 * drover/queue.h -- the queue's data model in Redis: key names, the job
 * record, and the Lua scripts that move a job between states atomically.
 *
 * Keys (P = prefix, Q = queue; every key of a queue shares the hash tag
 * {Q}, so a queue lives on one cluster slot):
 *
 *   P:{Q}:jobs      stream of ready jobs, consumer group "drover"
 *   P:{Q}:delayed   zset: member -> due time (Unix ms); the member is
 *                   the job id, or ID#TAG when a job with that id
 *                   already waits (two jobs sharing an id each wait)
 *   P:{Q}:job:M     hash: the fields of the delayed job of member M,
 *                   its id included, while it waits
 *   P:{Q}:dead      stream of dead-lettered jobs
 *   P:{Q}:result:ID hash: status, result, error, attempts, finished_at
 *   P:{Q}:stats     hash: processed, failed, retried, dead, cancelled
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
 * nothing itself, so the worker (async), the CLI (blocking) and the
 * dashboard share it. The admin operations (enqueue, stats, dead letters,
 * pause, workers, result and job lookup) each come as a builder that
 * appends its commands to a struct drv_queue_cmds (sent pipelined, in
 * order) and a parser that turns exactly those replies, in the same
 * order, into a plain struct; see "admin operations" below.
 */
#ifndef DROVER_QUEUE_H
#define DROVER_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "drover/buf.h"
#include "drover/error.h"
#include "drover/redis.h"

struct redisReply;

#define DRV_QUEUE_GROUP "drover"

/* ---------------------------------------------------------------- keys */

/* Every name is in one allocation, owned through name: free none alone. */
struct drv_queue_keys {
    char *name;       /* owned: queue name Q, and the names below */
    char *jobs;       /* P:{Q}:jobs */
    char *delayed;    /* P:{Q}:delayed */
    char *dead;       /* P:{Q}:dead */
    char *stats;      /* P:{Q}:stats */
    char *paused;     /* P:{Q}:paused */
    char *job_prefix; /* P:{Q}:job: */
    char *result_prefix; /* P:{Q}:result: */
    char *due;        /* P:due, the fleet's index of when delayed jobs fall
                         due (not a key of the queue's slot) */
    char *cancel;     /* P:{Q}:cancel (drover/queue_cancel.h) */
};

/* drv_queue_keys_init -- fill k for prefix and queue (caller memory). */
void drv_queue_keys_init(struct drv_queue_keys *k, const char *prefix,
                         const char *queue);
void drv_queue_keys_fini(struct drv_queue_keys *k);

/* drv_queue_workers_key -- "P:workers" into a new string (caller frees). */
char *drv_queue_workers_key(const char *prefix);

/* A worker whose beat is older than this is stale: it is gone, and anyone
 * may remove its registry entry. Workers beat every 5 s. */
#define DRV_QUEUE_WORKER_STALE_MS 60000

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
                                 entry_id (not separately allocated);
                                 NUL-terminated, but a byte string: it
                                 may hold NULs, id_len is its length */
    size_t id_len;            /* bytes of id */
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

/*
 * drv_job_from_fields -- like drv_job_from_entry for a flat [f, v, ...]
 * array (a hash's HGETALL, or an entry's fields), with entry_id (may be
 * "") as the entry id. NULL and err (DRV_EPROTO) on a malformed reply.
 */
struct drv_job *drv_job_from_fields(const char *entry_id,
                                    const struct redisReply *fv,
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

/* drv_field_name_in -- 1 if f's name is one of names[0..n), else 0. */
int drv_field_name_in(const struct drv_field *f, const char *const *names,
                      size_t n);

/* -------------------------------------------------------------- scripts */

struct drv_queue_script {
    const char *name;   /* for logs */
    const char *text;   /* Lua source */
};

extern const struct drv_queue_script drv_queue_settle_script;
extern const struct drv_queue_script drv_queue_mover_script;
extern const struct drv_queue_script drv_queue_reclaim_script;
extern const struct drv_queue_script drv_queue_renew_script;
extern const struct drv_queue_script drv_queue_prepare_script;
extern const struct drv_queue_script drv_queue_dead_retry_script;
extern const struct drv_queue_script drv_queue_lookup_script;
extern const struct drv_queue_script drv_queue_enqueue_script;

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

/* How long a dead job's result hash is kept when no result_ttl applies
 * (its type keeps none, or it names no known type): 24 h. Every job
 * that ends dead gets a result with status dead and its error. */
#define DRV_QUEUE_DEAD_TTL_MS 86400000
#define DRV_QUEUE_DEAD_TTL_STR "86400000"

enum drv_settle_kind {
    DRV_SETTLE_ACK = 0,   /* success: XACK+XDEL, processed+1, result ok */
    DRV_SETTLE_RETRY,     /* failed attempt: delayed with attempt+1 */
    DRV_SETTLE_DEAD,      /* dead-lettered */
    DRV_SETTLE_REQUEUE,   /* unfinished at shutdown: new entry, same attempt */
    DRV_SETTLE_NEXT,      /* pipeline step done: ack + the next step's entry
                             (step+1, input = text, attempt reset) */
    DRV_SETTLE_CANCEL     /* cancelled (drover cancel): acked, not retried,
                             result status cancelled, stats cancelled+1 */
};

/* Result codes per op, as the settle script returns them. */
enum {
    DRV_QUEUE_LOST = 0,   /* not owned by us (reclaimed): nothing changed */
    DRV_QUEUE_DONE = 1,   /* applied */
    DRV_QUEUE_GONE = 2,   /* owned, but the payload was deleted: acked
                             (ops that need the payload, and acks that keep
                             a result; a plain ack reports DONE) */
    DRV_QUEUE_CANCELLED = 3 /* a retry, requeue or next step applied as a
                             cancel: a cancel of the entry was asked
                             (drover/queue_cancel.h) */
};

/*
 * One settle op. Text fields are borrowed until drv_settle_add returns
 * (it copies them).
 */
struct drv_settle_op {
    enum drv_settle_kind kind;
    const char *entry_id;   /* stream entry */
    const char *job_id;     /* the job's id (job_id_len bytes, any) */
    size_t job_id_len;
    uint64_t attempts;      /* attempts made, this one included (RETRY:
                               becomes the delayed job's attempt field) */
    int64_t result_ttl_ms;  /* 0 = keep no result (a DEAD op always
                               keeps one: DRV_QUEUE_DEAD_TTL_MS) */
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
 * How much of the dead stream a script that writes dead entries keeps
 * (worker.dead_max, worker.dead_max_age): the newest max entries, none
 * older than max_age_ms. 0 in a field = no bound of that kind. The trims
 * run inside the same script, right after its dead entries are written.
 */
struct drv_queue_dead_bound {
    int64_t max;         /* entries kept, 0 = any number */
    int64_t max_age_ms;  /* age of the oldest kept, 0 = any age */
};

/*
 * drv_settle_init -- start a batch of settle ops for ONE queue, run as one
 * script call (atomic per op, one round trip for the batch). A plain ack
 * (DRV_SETTLE_ACK, result_ttl_ms <= 0) costs two arguments, and all the
 * plain acks of a call share one ownership query, one XACK and one XDEL.
 * A call that writes dead entries trims the dead stream to dead (NULL =
 * not trimmed).
 */
void drv_settle_init(struct drv_script_call *c,
                     const struct drv_queue_keys *k, const char *consumer,
                     int64_t now_ms, const struct drv_queue_dead_bound *dead);
void drv_settle_add(struct drv_script_call *c,
                    const struct drv_queue_keys *k,
                    const struct drv_settle_op *op);
/* drv_settle_nops -- ops added so far. */
int drv_settle_nops(const struct drv_script_call *c);
/*
 * drv_settle_plain -- 1 if op is a plain ack (success, no result kept),
 * which the script settles together with the call's other plain acks.
 * They cost least added last, in entry id order (drv_queue_id_cmp): the
 * script then proves ownership of all of them with one comparison of
 * this consumer's pending entries against its arguments. Any other order
 * is settled the same, only with more work inside Redis.
 */
int drv_settle_plain(const struct drv_settle_op *op);
/* drv_queue_id_cmp -- <0, 0, >0 as stream entry id a is below, equal to
 * or above b ("MS-SEQ"; malformed reads as 0-0). */
int drv_queue_id_cmp(const char *a, const char *b);

/*
 * drv_settle_parse -- the reply of a settle run: an array of nops integers
 * (DRV_QUEUE_*), or the integer nops when every op was applied (DONE),
 * into codes[nops]. 0 or DRV_EPROTO / DRV_EREDIS.
 */
int drv_settle_parse(const struct redisReply *reply, int nops, int *codes,
                     struct drv_err *err);

/* ------------------------------------------------------- other scripts */

/*
 * drv_queue_mover -- move up to limit due jobs (score <= now_ms) from the
 * delayed set back to the stream: the hash P:{Q}:job:MEMBER of each due
 * member, whatever the member's form. Reply: integer, jobs moved.
 */
void drv_queue_mover(struct drv_script_call *c,
                     const struct drv_queue_keys *k, int64_t now_ms,
                     int limit);

/*
 * drv_queue_reclaim -- claim up to count entries idle longer than
 * min_idle_ms for consumer; an entry already delivered max_deliveries
 * times goes to dead with "poison: ..." (the dead stream then trimmed to
 * dead; NULL = not trimmed). Reply: [claimed entries,
 * poisoned count, gone count, oversized count, entries still pending,
 * ended]; claimed entries are [id, fields] pairs. No entry pending means
 * none can be idle longer than min_idle_ms before min_idle_ms from now.
 * ended: nodes of graph runs (see drv_queue_reclaim_pipeline) that were
 * poison or too large, claimed for consumer and not sent to dead, to be
 * settled dead through the graph script (drv_queue_reclaim_ended).
 */
void drv_queue_reclaim(struct drv_script_call *c,
                       const struct drv_queue_keys *k, const char *consumer,
                       int64_t min_idle_ms, int count,
                       int64_t max_deliveries, int64_t now_ms,
                       const struct drv_queue_dead_bound *dead);

/*
 * The due index P:due: a zset whoever delays a job also writes (a
 * separate command after the job's own, never in the same script: it is
 * not in the queue's slot), member "QUEUE@DUE_MS", score DUE_MS. Workers
 * read the members due with one command per tick instead of looking at
 * every queue's delayed set, run the mover of the queues named and
 * remove the members they handled. A member is written after its job is
 * in the delayed set, and a writer's DUE_MS is always later than when it
 * writes, so a member a worker read and handled can never stand for a
 * job written after that worker's mover ran.
 */

/* drv_queue_due_note -- out: ZADD P:due DUE_MS QUEUE@DUE_MS. */
void drv_queue_due_note(struct drv_argv *out, const struct drv_queue_keys *k,
                        int64_t due_ms);

/* drv_queue_due_read -- out: the members due by now_ms, at most limit,
 * with scores (ZRANGEBYSCORE P:due -inf NOW WITHSCORES LIMIT 0 N). */
void drv_queue_due_read(struct drv_argv *out, const char *due_key,
                        int64_t now_ms, int limit);

/* drv_queue_due_member_queue -- the queue part of a member (the bytes
 * before its last '@'): its length, or -1 when member has no '@'. */
long drv_queue_due_member_queue(const char *member, size_t len);

/* drv_queue_delayed_head -- out: the first member of P:{Q}:delayed with
 * its score (the next job to fall due). */
void drv_queue_delayed_head(struct drv_argv *out,
                            const struct drv_queue_keys *k);

/*
 * drv_queue_reclaim_limit -- right after drv_queue_reclaim: a claimed
 * entry whose fields hold more than max_job_bytes bytes goes to dead
 * inside Redis ("job is N bytes, more than max_job_bytes M") instead of
 * being returned; the reply gets a 4th element, their count.
 */
void drv_queue_reclaim_limit(struct drv_script_call *c,
                             int64_t max_job_bytes);

/*
 * drv_queue_reclaim_ttl -- after drv_queue_reclaim_limit, once per job
 * type (pipeline 0) or pipeline (1) name: a job that the reclaim sends
 * to dead (poison, or too large) and whose fields name it keeps its
 * result hash (status dead, its error) result_ttl_ms; one that names
 * none given here keeps it DRV_QUEUE_DEAD_TTL_MS. A ttl <= 0 adds
 * nothing (the default applies).
 */
void drv_queue_reclaim_ttl(struct drv_script_call *c, int pipeline,
                           const char *name, int64_t result_ttl_ms);

/*
 * drv_queue_reclaim_pipeline -- after drv_queue_reclaim_limit, once per
 * pipeline of the config: graph 1 for a graph pipeline, 0 for a steps
 * one. An entry of a steps pipeline without field step that the reclaim
 * sends to dead is its step 0 (its result keeps step.0.*). A node of a
 * graph run that is poison or too large is not sent to dead: the reclaim
 * claims it (its delivery count unchanged) and returns it in ended, so
 * that the caller ends its run; should the caller die first, the entry
 * stays pending and the next reclaim returns it again.
 */
void drv_queue_reclaim_pipeline(struct drv_script_call *c, const char *name,
                                int graph);

/*
 * drv_queue_reclaim_ended -- the entries of a reclaim's reply (reply r)
 * that it handed back to be ended: their count; with job not NULL and
 * i < that count, also entry i as a new job (the caller frees it) of its
 * control fields (id, attempt, pipeline, run, node, home, index: enough
 * to settle it) into *job, and why it ends
 * (poison, too large) into why (code DRV_EBADJOB). Returns the count, or
 * a negative code and err (DRV_EPROTO) for an entry of another shape.
 */
int drv_queue_reclaim_ended(const struct redisReply *r, size_t i,
                            struct drv_job **job, struct drv_err *why,
                            struct drv_err *err);

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

/*
 * drv_queue_prepare -- check the types of the queue's keys (jobs,
 * delayed, dead, stats) and create its consumer group when missing
 * (without writing when it exists). Reply: integer 1 created, 0 existed;
 * or an error reply "WRONGTYPE key K holds a T, not a U".
 */
void drv_queue_prepare(struct drv_script_call *c,
                       const struct drv_queue_keys *k);

/* drv_queue_group_create -- XGROUP CREATE jobs drover 0 MKSTREAM into out
 * (-BUSYGROUP means it exists already: fine). */
void drv_queue_group_create(const struct drv_queue_keys *k,
                            struct drv_argv *out);

/* ----------------------------------------------------------- fetching */

/*
 * drv_queue_read -- `XREADGROUP GROUP drover consumer COUNT count [BLOCK
 * block_ms] STREAMS <jobs of each of qs[0..n)> > ...` into out (reset
 * first); block_ms < 0 leaves BLOCK out. The reply, per stream: [name,
 * [[entry id, [field, value, ...]], ...]], or nil when nothing came.
 */
void drv_queue_read(struct drv_argv *out, const char *consumer, int count,
                    int64_t block_ms, const struct drv_queue_keys *const *qs,
                    size_t n);

/*
 * drv_queue_paused_read -- `MGET <paused key of each of qs[0..n)>` into
 * out (reset first). drv_queue_paused_parse reads its reply into
 * paused[0..n) (1 = the queue is paused); 0, or DRV_EPROTO when the reply
 * is not an array of n.
 */
void drv_queue_paused_read(struct drv_argv *out,
                           const struct drv_queue_keys *const *qs, size_t n);
int drv_queue_paused_parse(const struct redisReply *reply, size_t n,
                           int *paused);

/* ===================================================== admin operations
 *
 * Each operation: drv_queue_<op>_build appends its commands to a
 * struct drv_queue_cmds and returns how many it appended (or a negative
 * code for bad input); the caller sends them (pipelined, in order; many
 * operations may share one batch) and hands exactly those replies, in
 * that order, to drv_queue_<op>_parse. Parsers never print: a Redis error
 * reply gives DRV_EREDIS with the text in err, a reply of unexpected
 * shape DRV_EPROTO. Reply pointers are borrowed for the call; everything
 * a parser returns is a copy the caller owns (free it with the matching
 * _fini). Values from Redis are byte strings and stay byte strings
 * (pointer + length; NUL, 0xff and newlines kept).
 *
 * Any thread may build and parse; nothing here is shared.
 */

/* A batch of commands, to send pipelined. */
struct drv_queue_cmds {
    struct drv_argv *cmd;  /* owned: n commands */
    size_t n;              /* commands in the batch */
    size_t cap;            /* allocated */
};

void drv_queue_cmds_init(struct drv_queue_cmds *c);
void drv_queue_cmds_fini(struct drv_queue_cmds *c);
/* drv_queue_cmds_add -- append an empty command and return it (valid
 * until the next _add or _fini). */
struct drv_argv *drv_queue_cmds_add(struct drv_queue_cmds *c);

/* ------------------------------------------------------------ enqueue */

struct drv_queue_enqueue {
    const char *kind;             /* "job" or "pipeline" */
    const char *name;             /* the job type or pipeline name */
    const struct drv_argv *fields; /* borrowed: name, value pairs (NULL =
                                     none); never job, pipeline or id */
    const char *id;               /* the job's id; NULL = the new entry's
                                     id (only when not delayed) */
    int64_t due_ms;               /* 0 = now; else Unix ms before which
                                     it must not run (delayed) */
};

/*
 * drv_queue_enqueue_build -- add a job. Now: one XADD P:{Q}:jobs of kind
 * name, the fields, id ID. Delayed: the job waits as a retry does, in
 * the zset P:{Q}:delayed (score due_ms) and a hash holding every field
 * of the future entry, written by one script run: member ID and hash
 * P:{Q}:job:ID, or, when a job with the same id already waits there,
 * member ID#TOKEN and hash P:{Q}:job:ID#TOKEN (both jobs run). A delayed
 * job needs an id (-EINVAL otherwise; drv_queue_job_id_new makes one).
 */
int drv_queue_enqueue_build(struct drv_queue_cmds *c,
                            const struct drv_queue_keys *k,
                            const struct drv_queue_enqueue *e);

/* drv_queue_enqueue_parse -- *id: the job's id (e->id, or the new entry's
 * id), a new string the caller frees. */
int drv_queue_enqueue_parse(struct redisReply *const *r, size_t n,
                            const struct drv_queue_enqueue *e, char **id,
                            struct drv_err *err);

/* drv_queue_job_id_new -- a new job id into buf: Unix ms, '.', 64 random
 * bits in hex (unique, sorts by time, never looks like an entry id). */
void drv_queue_job_id_new(char *buf, size_t n, int64_t now_ms);

/* -------------------------------------------------------------- stats */

/* The numbers of one queue; -1 = Redis could not tell. */
struct drv_queue_stats {
    int64_t ready;       /* in the stream, not yet delivered */
    int64_t running;     /* delivered, not acked (the group's PEL) */
    int64_t delayed;     /* waiting for a retry or their time */
    int64_t dead;        /* entries in the dead stream now */
    int64_t processed;   /* stats hash: jobs that succeeded */
    int64_t failed;      /* stats hash: attempts that failed */
    int64_t retried;     /* stats hash: retries scheduled */
    int64_t dead_total;  /* stats hash: jobs dead-lettered (all time) */
    int64_t deduped;     /* stats hash: duplicates acked without running
                            (unique_for; all time) */
    int64_t cancelled;   /* stats hash: jobs cancelled (all time) */
    int paused;          /* 1: the paused key exists */
    int64_t dead_max;    /* not from Redis: the dead entries the workers
                            keep (worker.dead_max), set by the caller
                            from its config; -1 = not known (as parsed) */
};

/*
 * drv_queue_stats_build -- the counts of one queue. READY is the group's
 * lag when Redis knows it, else stream length minus pending (settled
 * entries are deleted); with no group yet (no worker ever ran) every
 * entry is ready. Appends DRV_QUEUE_STATS_CMDS commands.
 */
#define DRV_QUEUE_STATS_CMDS 6
int drv_queue_stats_build(struct drv_queue_cmds *c,
                          const struct drv_queue_keys *k);
int drv_queue_stats_parse(struct redisReply *const *r, size_t n,
                          struct drv_queue_stats *s, struct drv_err *err);

/* ---------------------------------------------------------- dead list */

/* One page of the dead stream, oldest first. */
struct drv_queue_dead_page {
    struct drv_job **entry;  /* owned: n dead entries (entry_id, fields
                                binary-safe, duplicates kept) */
    size_t n;                /* entries on this page */
    int64_t total;           /* entries in the dead stream */
    char next[48];           /* the last entry's id when the page is
                                full (pass as after for the next page),
                                else "" */
};

/*
 * drv_queue_dead_list_build -- up to count entries (count <= 0: all)
 * after the entry id after (NULL or "": from the start), and the
 * stream's length. 2 commands.
 */
int drv_queue_dead_list_build(struct drv_queue_cmds *c,
                              const struct drv_queue_keys *k,
                              const char *after, int64_t count);
int drv_queue_dead_list_parse(struct redisReply *const *r, size_t n,
                              int64_t count, struct drv_queue_dead_page *p,
                              struct drv_err *err);
void drv_queue_dead_page_fini(struct drv_queue_dead_page *p);

/*
 * drv_queue_dead_retry_build -- move the dead entry whose job id (or
 * entry id) is id, or every one when id is NULL, back to the stream:
 * same id, fields error, attempts, failed_at and attempt dropped. One
 * script run (EVAL). The parser gives the number moved.
 */
int drv_queue_dead_retry_build(struct drv_queue_cmds *c,
                               const struct drv_queue_keys *k,
                               const char *id);
int drv_queue_dead_retry_parse(struct redisReply *const *r, size_t n,
                               int64_t *moved, struct drv_err *err);

/*
 * drv_queue_dead_purge_build -- delete the dead entries written before
 * before_ms (Unix ms; an entry id is its write time): one exact XTRIM
 * MINID. DRV_QUEUE_DEAD_ALL deletes the whole dead stream instead, its
 * entries counted in the same transaction. The parser (given the replies
 * of what the build appended) gives how many went.
 */
#define DRV_QUEUE_DEAD_ALL INT64_MAX
int drv_queue_dead_purge_build(struct drv_queue_cmds *c,
                               const struct drv_queue_keys *k,
                               int64_t before_ms);
int drv_queue_dead_purge_parse(struct redisReply *const *r, size_t n,
                               int64_t *purged, struct drv_err *err);

/* ------------------------------------------------------- pause, resume */

/* drv_queue_pause_build -- set P:{Q}:paused (value: now_ms, since when);
 * workers stop fetching from Q within a second. */
int drv_queue_pause_build(struct drv_queue_cmds *c,
                          const struct drv_queue_keys *k, int64_t now_ms);
int drv_queue_pause_parse(struct redisReply *const *r, size_t n,
                          struct drv_err *err);

/* drv_queue_resume_build -- delete P:{Q}:paused; the parser's
 * *was_paused says whether it existed. */
int drv_queue_resume_build(struct drv_queue_cmds *c,
                           const struct drv_queue_keys *k);
int drv_queue_resume_parse(struct redisReply *const *r, size_t n,
                           int *was_paused, struct drv_err *err);

/* ------------------------------------------------------------ workers */

/*
 * One entry of the worker registry P:workers: worker id -> a logfmt line
 * `host= pid= started= queues= busy= beat=` (times Unix ms; queues
 * joined with ','). Strings are NULL and numbers -1 when the line lacks
 * them or they do not parse.
 */
struct drv_queue_worker {
    const char *id;       /* the hash field (not part of the line) */
    const char *host;
    const char *queues;   /* "default,low" */
    int64_t pid;
    int64_t started_ms;
    int64_t busy;         /* jobs running */
    int64_t beat_ms;      /* last heartbeat */
    char *_mem;           /* owned when parsed: the strings above */
};

/* drv_queue_worker_format -- the registry line of w (id not included)
 * into b (appended). Values that need it are quoted (logfmt). */
void drv_queue_worker_format(const struct drv_queue_worker *w,
                             struct drv_buf *b);

/* drv_queue_worker_parse -- worker id (id_len bytes; NULL: none) and
 * its registry line into w; free with drv_queue_worker_fini. Never
 * fails: what is missing stays unknown. */
void drv_queue_worker_parse(const char *id, size_t id_len,
                            const char *line, size_t len,
                            struct drv_queue_worker *w);
void drv_queue_worker_fini(struct drv_queue_worker *w);

/* drv_queue_worker_stale -- 1 when w's beat is known and older than
 * DRV_QUEUE_WORKER_STALE_MS at now_ms. */
int drv_queue_worker_stale(const struct drv_queue_worker *w, int64_t now_ms);

/* drv_queue_worker_line_stale -- drv_queue_worker_stale of a raw line. */
int drv_queue_worker_line_stale(const char *line, size_t len,
                                int64_t now_ms);

/*
 * The worker's own registry commands, each into out (reset first):
 * drv_queue_worker_beat -- `HSET P:workers id LINE` (w's line);
 * drv_queue_worker_remove -- `HDEL P:workers id` (id_len bytes);
 * drv_queue_workers_read -- `HGETALL P:workers` (field, line, ...).
 * workers_key is drv_queue_workers_key's string.
 */
void drv_queue_worker_beat(struct drv_argv *out, const char *workers_key,
                           const char *id, const struct drv_queue_worker *w);
void drv_queue_worker_remove(struct drv_argv *out, const char *workers_key,
                             const char *id, size_t id_len);
void drv_queue_workers_read(struct drv_argv *out, const char *workers_key);

struct drv_queue_workers {
    struct drv_queue_worker *w;  /* owned: n entries, sorted by id */
    size_t n;
};

/* drv_queue_workers_build -- read the registry (1 command). */
int drv_queue_workers_build(struct drv_queue_cmds *c, const char *prefix);
int drv_queue_workers_parse(struct redisReply *const *r, size_t n,
                            struct drv_queue_workers *ws,
                            struct drv_err *err);
void drv_queue_workers_fini(struct drv_queue_workers *ws);

/* ------------------------------------------------- result, job lookup */

/* drv_queue_result_build -- the result hash of job id (1 command); the
 * parser's *result is NULL when there is none (no result_ttl, expired,
 * or unknown id), else its fields (entry_id ""). */
int drv_queue_result_build(struct drv_queue_cmds *c,
                           const struct drv_queue_keys *k, const char *id);
int drv_queue_result_parse(struct redisReply *const *r, size_t n,
                           struct drv_job **result, struct drv_err *err);

/* Where a job waits. */
enum drv_queue_where {
    DRV_QUEUE_NOWHERE = 0, /* not waiting anywhere drover looks */
    DRV_QUEUE_READY,       /* in the stream, not delivered */
    DRV_QUEUE_RUNNING,     /* in the stream, delivered (pending) */
    DRV_QUEUE_DELAYED,     /* in the delayed set */
    DRV_QUEUE_DEAD         /* in the dead stream */
};

/* drv_queue_where_name -- "none", "ready", "running", "delayed", "dead". */
const char *drv_queue_where_name(enum drv_queue_where w);

struct drv_queue_lookup {
    struct drv_job *result;    /* owned: the result hash, or NULL */
    enum drv_queue_where where; /* where the job waits */
    struct drv_job *job;       /* owned: its fields there (entry_id set
                                  for a stream entry), or NULL */
    int64_t due_ms;            /* DELAYED: when it may run */
    int64_t deliveries;        /* RUNNING: times delivered */
    char consumer[128];        /* RUNNING: the worker holding it */
    int scan_incomplete;       /* 1: a stream was longer than the scan
                                  limit and the job was not found in
                                  the part read */
};

/*
 * drv_queue_lookup_build -- everything drover knows of job id (its id
 * field, or its entry id): the result hash, and where it waits -- the
 * delayed set, else the stream, else the dead stream (first match; at
 * most DRV_QUEUE_LOOKUP_SCAN entries of each stream are read, in one
 * script run). 2 commands. Nothing known: result NULL and NOWHERE.
 */
#define DRV_QUEUE_LOOKUP_SCAN 100000
int drv_queue_lookup_build(struct drv_queue_cmds *c,
                           const struct drv_queue_keys *k, const char *id);
int drv_queue_lookup_parse(struct redisReply *const *r, size_t n,
                           struct drv_queue_lookup *l, struct drv_err *err);
void drv_queue_lookup_fini(struct drv_queue_lookup *l);

/* ------------------------------------------------------------- JSON */

/*
 * The JSON shape of each operation's answer, written with a struct
 * drv_json, so the CLI's --json and the dashboard's API say the same
 * thing. Byte values use drv_json_member_bytes (a NAME_b64 member joins
 * a value that is not valid UTF-8). Times are Unix ms; a count Redis
 * could not tell is null. The shapes are documented in doc/cli-json.md.
 */
struct drv_json;

/* drv_queue_stats_json -- {"name", "ready", "running", "delayed",
 * "dead", "dead_max", "processed", "failed", "retried", "dead_total",
 * "cancelled",
 * "paused"}; dead_max is null when not known. */
void drv_queue_stats_json(struct drv_json *j, const char *queue,
                          const struct drv_queue_stats *s);

/* drv_queue_job_json -- the members of a job record: "entry_id" (null
 * when it has none), "id", and "fields": [{"name", "value"}, ...] in
 * order, duplicates kept (call inside an open object). */
void drv_queue_job_json(struct drv_json *j, const struct drv_job *job);

/* drv_queue_dead_page_json -- {"queue", "total", "count", "next",
 * "entries": [{entry_id, id, job, error, attempts, failed_at, fields}]}.
 */
void drv_queue_dead_page_json(struct drv_json *j, const char *queue,
                              const struct drv_queue_dead_page *p);

/* drv_queue_workers_json -- {"stale_after_ms", "workers": [{"id",
 * "host", "pid", "queues": [...], "busy", "started_at", "beat_at",
 * "state"}]}; state is ok, stale or unknown at now_ms. */
void drv_queue_workers_json(struct drv_json *j,
                            const struct drv_queue_workers *ws,
                            int64_t now_ms);

/* drv_queue_result_json -- a result hash as an object: "status",
 * "result", "error", "attempts", "finished_at", and "fields" (all of it);
 * null for NULL. */
void drv_queue_result_json(struct drv_json *j, const struct drv_job *r);

/* drv_queue_lookup_json -- {"queue", "id", "found", "result": (as
 * drv_queue_result_json), "where", "job": {entry_id, id, fields} or null,
 * "due_at", "consumer", "deliveries", "scan_incomplete"}. */
void drv_queue_lookup_json(struct drv_json *j, const char *queue,
                           const char *id, const struct drv_queue_lookup *l);

/* ----------------------------------------------------------- schedules
 *
 * A schedule (config `schedules:`) enqueues one entry per tick on its
 * queue. Each tick goes through ONE script run on the key
 * P:{Q}:sched:NAME, which holds the schedule's last enqueued tick (Unix
 * ms): if the stored tick is older, the script stores the new one and
 * adds the entry; otherwise it does nothing. However many workers try the
 * same tick, exactly one entry is added, and a worker that comes late
 * (a slow clock, a long pause) can never add an older tick after a newer
 * one. The key shares the queue's hash tag {Q}. No leader is needed.
 *
 * Redis's clock (TIME) bounds the other side: a tick more than
 * DRV_QUEUE_SCHEDULE_AHEAD_MS ahead of it comes from a worker whose clock
 * runs fast and is refused, so such a worker cannot store a tick that
 * would fence out the real ones until its time comes.
 */
#define DRV_QUEUE_SCHEDULE_AHEAD_MS 10000

/* drv_queue_schedule_key -- "P:{Q}:sched:NAME" into a new string (caller
 * frees). */
char *drv_queue_schedule_key(const char *prefix, const char *queue,
                             const char *name);

extern const struct drv_queue_script drv_queue_schedule_script;

/* One tick of a schedule. Strings borrowed for the call. */
struct drv_queue_tick {
    const char *schedule;          /* the schedule's name */
    const char *kind;              /* "job" or "pipeline" */
    const char *target;            /* the job type or pipeline */
    const struct drv_argv *fields; /* name, value pairs (NULL = none) */
    int64_t tick_ms;               /* the tick's time, Unix ms */
};

/*
 * drv_queue_schedule_tick -- the script run that enqueues tick t on queue
 * k once: the entry is `kind target`, the fields, `schedule NAME` and
 * `id NAME@TICK_MS`. Reply: integer 1 = this call added it, 0 = the tick
 * (or a later one) was already enqueued, -1 = refused: the tick is more
 * than DRV_QUEUE_SCHEDULE_AHEAD_MS ahead of Redis's clock (nothing
 * stored), 2 = added, replacing a stored tick that far ahead.
 */
void drv_queue_schedule_tick(struct drv_script_call *c,
                             const struct drv_queue_keys *k,
                             const char *sched_key,
                             const struct drv_queue_tick *t);

/* drv_queue_schedule_last_build -- read a schedule's last tick (1
 * command); the parser's *last_ms is -1 when it never ticked. */
int drv_queue_schedule_last_build(struct drv_queue_cmds *c,
                                  const char *sched_key);
int drv_queue_schedule_last_parse(struct redisReply *const *r, size_t n,
                                  int64_t *last_ms, struct drv_err *err);

/* What `drover schedules` shows of one schedule. */
struct drv_queue_schedule_info {
    const char *name;
    const char *cron;      /* the cron spec, or NULL */
    int64_t every_ms;      /* the interval, or 0 */
    const char *timezone;
    const char *queue;
    const char *job;       /* or NULL */
    const char *pipeline;  /* or NULL */
    int64_t last_ms;       /* last tick enqueued, -1 = never */
    int64_t next_ms;       /* next tick, -1 = none */
};

/* drv_queue_schedule_json -- {"name", "cron" (or null), "every_ms" (or
 * null), "timezone", "queue", "job", "pipeline", "last_tick_at",
 * "next_tick_at"} (times Unix ms, null when unknown). */
void drv_queue_schedule_json(struct drv_json *j,
                             const struct drv_queue_schedule_info *s);

#endif
