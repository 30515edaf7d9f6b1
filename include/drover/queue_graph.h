/*
 * drover/queue_graph.h -- the Redis side of graph pipelines: the run's
 * state, the settle script of graph entries, and the graph's spec.
 *
 * Keys (P = prefix, Q = the queue the run was enqueued on, its home):
 *
 *   P:{Q}:run:RUN           hash: the run (status, spec, fields, result)
 *                           and per node N: N.state, N.pending (needs not
 *                           yet finished), N.result, N.error,
 *                           N.attempts, N.started_at, N.finished_at,
 *                           N.entry, N.queue, N.enqueued (hand-offs
 *                           made: 1, or the items released for a
 *                           fan-out), and for a fan-out N.items, N.next,
 *                           N.done
 *   P:{Q}:run:RUN:items:N   list: the items of fan-out node N
 *   P:{Q}:run:RUN:res:N     hash: index -> result of each finished item
 *
 * On Redis Cluster (a node on another queue T is in another slot), a
 * hand-off between slots goes through a box in the slot that makes it:
 *
 *   P:{Q}:graph:outbox      zset: entries for other queues written by a
 *                           settle of a run of Q (record: [T, marker,
 *                           marker ttl ms, [field, value...]]), scored
 *                           by when they were last tried
 *   P:{T}:graph:inbox       zset: outcomes of node entries of T whose
 *                           run is on another queue (record: [home, run,
 *                           node, index or "", kind, attempts, text,
 *                           started_at, finished_at, entry])
 *   P:{T}:handoff:LEN:HOME:NONCE:N[/I]
 *                           string: the entry id written for node N
 *                           (item I) of the run with that nonce (the id
 *                           of its first entry), or "cancelled": an
 *                           entry is written to T only while it is
 *                           absent
 *
 * A run starts from a plain entry whose field pipeline names a graph
 * pipeline (the run id is its job id); every node is then an entry of
 * its own with fields pipeline, run, node, home and id RUN/N (RUN/N/I
 * for item I of a fan-out). Node states: waiting -> queued (its entry
 * exists) -> ok | dead, or skipped (when: false), cancelled (the run
 * ended dead first); a fan-out node is running while its items are out;
 * an on_failure node is standby until the run ends dead.
 * A run's end is announced with PUBLISH P:{Q}:done RUNKEY (Q = home),
 * for drover wait.
 *
 * Like pkg/queue, this builds commands and parses replies; it sends
 * nothing.
 */
#ifndef DROVER_QUEUE_GRAPH_H
#define DROVER_QUEUE_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "drover/buf.h"
#include "drover/config.h"
#include "drover/error.h"
#include "drover/queue.h"

struct redisReply;

extern const struct drv_queue_script drv_queue_graph_script;
extern const struct drv_queue_script drv_queue_graph_cancel_script;
extern const struct drv_queue_script drv_queue_graph_handoff_script;
extern const struct drv_queue_script drv_queue_graph_takeback_script;
extern const struct drv_queue_script drv_queue_graph_scan_script;

/* What a graph entry's attempt came to. */
enum drv_graph_kind {
    DRV_GRAPH_START = 0,    /* a run's first entry: create the run */
    DRV_GRAPH_OK,           /* the node (or item) succeeded */
    DRV_GRAPH_RETRY,        /* failed attempt: delayed with attempt+1 */
    DRV_GRAPH_DEAD,         /* dead: the run ends dead */
    DRV_GRAPH_CANCEL,       /* cancelled (a cancel of the entry was
                               asked): the run ends cancelled */
    DRV_GRAPH_APPLY         /* an inbox record applied to its run (no
                               entry: drv_queue_graph_apply) */
};

/* One graph settle. Text fields are borrowed for the builder's call. */
struct drv_graph_op {
    enum drv_graph_kind kind;
    const char *entry_id;   /* the stream entry */
    const char *job_id;     /* its job id (job_id_len bytes) */
    size_t job_id_len;
    const char *home;       /* the run's queue (START: this queue) */
    const char *run_id;     /* the run (START: the job id) */
    size_t run_id_len;
    uint64_t attempts;      /* attempts made, this one included */
    const char *text;       /* OK: result; RETRY, DEAD: error */
    size_t text_len;
    int64_t due_ms;         /* RETRY: when to run again (Unix ms) */
    int64_t started_at_ms;  /* when the attempt started (Unix ms) */
    int64_t state_ttl_ms;   /* keep the run's state this long after it
                               ends; 0 = one day */
    const char *spec;       /* START: drv_queue_graph_spec of the
                               pipeline; else NULL */
    int64_t dead_max;       /* dead entries kept, 0 = any number */
    int xslot;              /* Redis Cluster: hand-offs to another slot
                               go through the boxes; an entry whose run
                               is on another queue is settled here and
                               its outcome put in this queue's inbox */
};

/*
 * drv_queue_graph_settle -- the graph script call for op on the entry's
 * queue k (prefix P) by consumer, at now_ms: one atomic script run that
 * checks the entry is still the consumer's (else changes nothing and
 * replies DRV_QUEUE_LOST), records the outcome in the run, hands off to
 * the nodes that became ready (each new entry written once: the entry
 * being settled is acknowledged in the same run), releases the next item
 * of a fan-out and acknowledges the entry. Reply: integer DRV_QUEUE_*,
 * or with op->xslot and hand-offs to other slots put in a box the array
 * drv_queue_graph_reply reads.
 * c is initialised here (drv_script_call_fini it).
 */
void drv_queue_graph_settle(struct drv_script_call *c,
                            const struct drv_queue_keys *k,
                            const char *prefix, const char *consumer,
                            int64_t now_ms, const struct drv_graph_op *op);

/* One hand-off to another slot, out of a graph reply or a box scan. */
struct drv_queue_graph_box {
    int in;                 /* 0: an entry for queue (in an outbox); 1:
                               an outcome for the run on queue (in an
                               inbox) */
    char *queue;            /* owned: the target queue, or the run's */
    char *key;              /* owned: the marker key, or the run's key */
    char *rec;              /* owned: the record (rec_len bytes) */
    size_t rec_len;
};

/* A list of them (owned). */
struct drv_queue_graph_boxes {
    struct drv_queue_graph_box *v;
    size_t n, cap;
    size_t oversized;       /* records the reply left out: longer than
                               the connection's max_string_bytes (they
                               stay in their box) */
};

/* drv_queue_graph_boxes_fini -- free every box of b (b itself is the
 * caller's); b is empty after. */
void drv_queue_graph_boxes_fini(struct drv_queue_graph_boxes *b);

/*
 * drv_queue_graph_reply -- a graph settle or apply reply r: its code
 * (DRV_QUEUE_*) into *code and, on Redis Cluster, the hand-offs it put in
 * a box appended to out (the reply is an integer when there are none,
 * else [code, [kind, queue, key, record]...]). 0, or DRV_EREDIS /
 * DRV_EPROTO with err.
 */
int drv_queue_graph_reply(const struct redisReply *r, long long *code,
                          struct drv_queue_graph_boxes *out,
                          struct drv_err *err);

/*
 * drv_queue_graph_apply -- the graph script call that applies the inbox
 * record of box b (b->in) to its run on queue b->queue (prefix P) at
 * now_ms: guarded by the node's state, so a record applied twice changes
 * the run once. Reply as drv_queue_graph_reply (1, with the hand-offs
 * the outcome made). c is initialised here.
 */
void drv_queue_graph_apply(struct drv_script_call *c, const char *prefix,
                           const struct drv_queue_graph_box *b,
                           int64_t now_ms);

/*
 * drv_queue_graph_handoff -- the call that writes the entry of outbox
 * record b (!b->in) to its queue b->queue: XADD only when the marker is
 * absent, and the marker set to the new entry id in the same run.
 * Reply: the entry id (or "cancelled": the run was cancelled first). c
 * is initialised here.
 */
void drv_queue_graph_handoff(struct drv_script_call *c, const char *prefix,
                             const struct drv_queue_graph_box *b);

/* drv_queue_graph_unbox -- ZREM of record b from the box it came from,
 * on queue (the queue whose slot holds that box) into a. */
void drv_queue_graph_unbox(struct drv_argv *a, const char *prefix,
                           const char *queue,
                           const struct drv_queue_graph_box *b);

/*
 * drv_queue_graph_scan -- the call that returns the records of queue's
 * outbox and inbox last tried at or before cutoff_ms (at most limit of
 * each), and marks them tried at now_ms. Reply: [[kind, queue, key,
 * record]...], parsed with drv_queue_graph_scan_parse. c is initialised
 * here.
 */
void drv_queue_graph_scan(struct drv_script_call *c, const char *prefix,
                          const char *queue, int64_t cutoff_ms,
                          int64_t now_ms, int limit);
int drv_queue_graph_scan_parse(const struct redisReply *r,
                               struct drv_queue_graph_boxes *out,
                               struct drv_err *err);

/*
 * drv_queue_graph_spec -- the graph of pipeline pl as the JSON the
 * script keeps in the run: {"name", "order": [names], "nodes": {name:
 * {"needs", "deps", "queue"?, "when"?, "fe"?, "mp", "of"?}}}. A new
 * string (caller frees).
 */
char *drv_queue_graph_spec(const struct drv_config_pipeline *pl);

/*
 * drv_queue_graph_cancel -- the graph cancel script call for run (run_len
 * bytes) enqueued on queue: one atomic run that ends a running run as
 * cancelled (waiting nodes cancelled, no more items released) and takes
 * back each node entry out: a delayed retry removed, an undelivered entry
 * deleted, a delivered one marked in its queue's P:{Q}:cancel (the
 * worker that runs it cancels it when it reads the mark). Reply:
 * [status, removed, delayed, marked, changed]: the run's status after
 * the call ("cancelled", or "ok", "dead" for a run that had ended,
 * "none" for no run) and changed 1 when this call cancelled it, and
 * with xslot (Redis Cluster) the entries on other queues, for
 * drv_queue_graph_takeback. c is initialised here.
 */
void drv_queue_graph_cancel(struct drv_script_call *c, const char *prefix,
                            const char *queue, const char *run,
                            size_t run_len, int64_t now_ms, int xslot);

/* A node entry of a cancelled run on another slot (Redis Cluster): taken
 * back with drv_queue_graph_takeback. */
struct drv_queue_graph_away {
    char *queue;         /* owned: its queue */
    char *marker;        /* owned: its hand-off marker */
    char *job_id;        /* owned: its job id (job_id_len bytes) */
    size_t job_id_len;
};

/* What a graph cancel call did (its reply, parsed). */
struct drv_queue_graph_cancelled {
    char status[16];     /* the run's status after the call: cancelled,
                            ok, dead, none (no run) */
    long long removed;   /* node entries not yet delivered, deleted */
    long long delayed;   /* delayed retries removed */
    long long marked;    /* delivered entries marked for their workers */
    int changed;         /* 1: this call cancelled the run */
    struct drv_queue_graph_away *away; /* owned: with xslot, the entries
                                          on other slots to take back */
    size_t naway;
};

/* drv_queue_graph_cancelled_fini -- free out's list of entries away. */
void drv_queue_graph_cancelled_fini(struct drv_queue_graph_cancelled *out);

/*
 * drv_queue_graph_takeback -- the call that takes back the entry a of a
 * cancelled run, in its queue's slot, at now_ms: a delayed retry removed,
 * an entry not yet delivered deleted, a delivered one marked for its
 * worker; not yet handed off: the marker set to "cancelled", so the
 * hand-off never writes it. Reply: 0 nothing out, 1 deleted, 2 delayed
 * removed, 3 marked. c is initialised here.
 */
void drv_queue_graph_takeback(struct drv_script_call *c, const char *prefix,
                              const struct drv_queue_graph_away *a,
                              int64_t now_ms);

/* drv_queue_graph_cancel_parse -- the graph cancel call's reply r into
 * *out (drv_queue_graph_cancelled_fini it, also after an error): 0, or
 * DRV_EREDIS (Redis refused it) / DRV_EPROTO (a reply of another shape)
 * with err set. */
int drv_queue_graph_cancel_parse(const struct redisReply *r,
                                 struct drv_queue_graph_cancelled *out,
                                 struct drv_err *err);

/* drv_queue_run_key -- "P:{Q}:run:RUN" (run_len bytes) into a new
 * string (caller frees). */
char *drv_queue_run_key(const char *prefix, const char *queue,
                        const char *run, size_t run_len);

/* ------------------------------------------------------- a run, shown */

/* Longest node name read back (config names are letters, digits, '_'
 * and '-'). */
#define DRV_QUEUE_GRAPH_NAME_MAX 128

/* One node of a run as drover shows it (its state is in the run's hash,
 * fields NAME.state, NAME.attempts, ...). */
struct drv_queue_graph_node {
    char *name;          /* owned */
    char **needs;        /* owned: nneeds owned names */
    size_t nneeds;
    int on_failure;      /* 1: a compensation node (on_failure: true) */
    int for_each;        /* 1: a fan-out node */
};

/* A run, read (drv_queue_graph_run_parse); fini it. */
struct drv_queue_graph_run {
    struct drv_job *hash;               /* owned: the run's hash; NULL
                                           when there is no such run */
    struct drv_queue_graph_node *nodes; /* owned: in the pipeline's
                                           order */
    size_t nnodes;
};

/*
 * drv_queue_graph_run_build -- the read of run (run_len bytes) enqueued
 * on queue: one script run that replies the run's hash and each node's
 * name, needs and kind from the graph the run keeps. Appends
 * DRV_QUEUE_GRAPH_RUN_CMDS commands to c.
 */
#define DRV_QUEUE_GRAPH_RUN_CMDS 1
int drv_queue_graph_run_build(struct drv_queue_cmds *c, const char *prefix,
                              const char *queue, const char *run,
                              size_t run_len);

/*
 * drv_queue_graph_run_parse -- that reply r into *out (out->hash NULL
 * when there is no run): 0, or DRV_EREDIS / DRV_EPROTO with err set (out
 * then holds nothing). The caller owns *out (drv_queue_graph_run_fini).
 */
int drv_queue_graph_run_parse(const struct redisReply *r,
                              struct drv_queue_graph_run *out,
                              struct drv_err *err);
void drv_queue_graph_run_fini(struct drv_queue_graph_run *r);

/* drv_queue_graph_run_final -- "ok", "dead" or "cancelled" when the run
 * has ended, else NULL (running, or no run). */
const char *drv_queue_graph_run_final(const struct drv_queue_graph_run *r);

/* drv_queue_graph_node_field -- field NODE.what of the run (the run's own
 * field what when node is NULL), borrowed from r; NULL when absent. */
const struct drv_field *drv_queue_graph_node_field(
    const struct drv_queue_graph_run *r, const char *node, const char *what);

/* drv_queue_graph_node_num -- that field as a number, -1 when absent or
 * not a number. */
int64_t drv_queue_graph_node_num(const struct drv_queue_graph_run *r,
                                 const char *node, const char *what);

/*
 * drv_queue_graph_run_json -- the run as JSON (drover pipeline --json,
 * the dashboard's /api/queues/Q/runs/ID): queue, id, pipeline, status,
 * created_at, finished_at, error, dead_node, result, cancel (when cancel
 * is not NULL) and nodes: [{name, state, queue, needs, on_failure,
 * for_each, attempts, started_at, finished_at, error, enqueued, items,
 * items_done, result}]. Values from Redis are written as bytes (escaped;
 * a _b64 twin for bytes that are not UTF-8); absent numbers are null.
 */
struct drv_json;
void drv_queue_graph_run_json(struct drv_json *j, const char *queue,
                              const char *id,
                              const struct drv_queue_graph_run *r,
                              const struct drv_queue_graph_cancelled *cancel);

#endif
