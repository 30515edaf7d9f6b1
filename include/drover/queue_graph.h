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

/* What a graph entry's attempt came to. */
enum drv_graph_kind {
    DRV_GRAPH_START = 0,    /* a run's first entry: create the run */
    DRV_GRAPH_OK,           /* the node (or item) succeeded */
    DRV_GRAPH_RETRY,        /* failed attempt: delayed with attempt+1 */
    DRV_GRAPH_DEAD,         /* dead: the run ends dead */
    DRV_GRAPH_CANCEL        /* cancelled (a cancel of the entry was
                               asked): the run ends cancelled */
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
};

/*
 * drv_queue_graph_settle -- the graph script call for op on the entry's
 * queue k (prefix P) by consumer, at now_ms: one atomic script run that
 * checks the entry is still the consumer's (else changes nothing and
 * replies DRV_QUEUE_LOST), records the outcome in the run, hands off to
 * the nodes that became ready (each new entry written once: the entry
 * being settled is acknowledged in the same run), releases the next item
 * of a fan-out and acknowledges the entry. Reply: integer DRV_QUEUE_*.
 * c is initialised here (drv_script_call_fini it).
 */
void drv_queue_graph_settle(struct drv_script_call *c,
                            const struct drv_queue_keys *k,
                            const char *prefix, const char *consumer,
                            int64_t now_ms, const struct drv_graph_op *op);

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
 * "none" for no run) and changed 1 when this call cancelled it. c is
 * initialised here.
 */
void drv_queue_graph_cancel(struct drv_script_call *c, const char *prefix,
                            const char *queue, const char *run,
                            size_t run_len, int64_t now_ms);

/* What a graph cancel call did (its reply, parsed). */
struct drv_queue_graph_cancelled {
    char status[16];     /* the run's status after the call: cancelled,
                            ok, dead, none (no run) */
    long long removed;   /* node entries not yet delivered, deleted */
    long long delayed;   /* delayed retries removed */
    long long marked;    /* delivered entries marked for their workers */
    int changed;         /* 1: this call cancelled the run */
};

/* drv_queue_graph_cancel_parse -- the graph cancel call's reply r into
 * *out: 0, or DRV_EREDIS (Redis refused it) / DRV_EPROTO (a reply of
 * another shape) with err set. */
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
