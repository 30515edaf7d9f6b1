/*
 * drover/queue_cancel.h -- cancelling jobs, a running job's progress, and
 * the notice of a settled job that `drover wait` listens for.
 *
 * Keys (every one in the queue's slot {Q}):
 *
 *   P:{Q}:cancel   zset: stream entry id -> Unix ms the cancel was asked.
 *                  A marker for an entry that is delivered (running, or
 *                  fetched and waiting for a permit) on some worker.
 *
 * One cancel is ONE script run (drv_queue_cancel_build), atomic against
 * every other move of the job (fetch, settle, mover, reclaim):
 *
 *   - a waiting entry (in the stream, not delivered) is deleted: no
 *     worker can read it afterwards;
 *   - a delayed job (retry or --delay) is removed from the delayed set
 *     with its hash;
 *   - a delivered entry gets a marker in P:{Q}:cancel. The worker that
 *     holds it reads the markers of its queue every
 *     DRV_QUEUE_CANCEL_CHECK_MS while it holds a job of that queue, and
 *     cancels the job's task; the settle script turns any later retry,
 *     requeue or next pipeline step of a marked entry into a cancel (so
 *     a marker that comes while the outcome is on its way, or while the
 *     entry is reclaimed by another worker, is not lost). A job that
 *     succeeds before its worker saw the marker stays ok; one that ends
 *     dead stays dead.
 *
 * Every unfinished job whose id field (or entry id) equals the id is
 * cancelled: the steps of a pipeline run share the run's id, so one
 * cancel ends the run. Each removed job's result hash gets `status
 * cancelled` (kept DRV_QUEUE_CANCEL_TTL_MS, or the job type's result_ttl
 * when longer) and the queue's stats `cancelled` counts it.
 */
#ifndef DROVER_QUEUE_CANCEL_H
#define DROVER_QUEUE_CANCEL_H

#include <stdint.h>

#include "drover/queue.h"

/* How long a cancelled job's result hash is kept at least: 24 h. */
#define DRV_QUEUE_CANCEL_TTL_MS 86400000
#define DRV_QUEUE_CANCEL_TTL_STR "86400000"

/* How often a worker holding jobs of a queue reads its cancel markers. */
#define DRV_QUEUE_CANCEL_CHECK_MS 250

/* A marker older than this whose entry is no longer pending anywhere (its
 * job ended before its worker saw the marker) is removed by the next
 * cancel on the queue. */
#define DRV_QUEUE_CANCEL_STALE_MS 3600000

extern const struct drv_queue_script drv_queue_cancel_script;

/* What one cancel found. */
struct drv_queue_cancel {
    int64_t ready;    /* waiting entries deleted */
    int64_t delayed;  /* delayed jobs removed */
    int64_t running;  /* delivered entries marked for their worker */
    int scan_incomplete; /* 1: the stream was longer than the scan limit
                            (DRV_QUEUE_LOOKUP_SCAN) and not all of it was
                            looked at */
};

/*
 * drv_queue_cancel_build -- cancel every unfinished job of queue k whose
 * id (or stream entry id) is id (id_len bytes): one script run (EVAL).
 * The parser fills what it found; all zero = nothing unfinished had that
 * id.
 */
int drv_queue_cancel_build(struct drv_queue_cmds *c,
                           const struct drv_queue_keys *k, const char *id,
                           size_t id_len);
int drv_queue_cancel_parse(struct redisReply *const *r, size_t n,
                           struct drv_queue_cancel *out,
                           struct drv_err *err);

/* drv_queue_cancel_total -- jobs a cancel found (ready + delayed +
 * running). */
int64_t drv_queue_cancel_total(const struct drv_queue_cancel *cn);

/* drv_queue_cancel_read -- `ZRANGE P:{Q}:cancel 0 -1` into out (reset
 * first): the entry ids marked for cancelling (the worker's check). */
void drv_queue_cancel_read(struct drv_argv *out,
                           const struct drv_queue_keys *k);

/*
 * drv_queue_done_channel -- "P:{Q}:done" into a new string (caller
 * frees): the channel on which a final outcome (ok, dead, cancelled)
 * written to a result hash is announced, the message being the result
 * key P:{Q}:result:ID. drover wait subscribes to it.
 */
char *drv_queue_done_channel(const struct drv_queue_keys *k);

/* ------------------------------------------------------------ progress
 *
 * While a job that reports progress runs, its worker writes the last
 * report to P:{Q}:result:ID at most every DRV_QUEUE_PROGRESS_MS: status
 * running, progress (0..100), progress_msg, worker, started_at; the hash
 * expires after the job type's result_ttl, at least
 * DRV_QUEUE_PROGRESS_TTL_MS after the last report (a worker that died
 * leaves no "running" for ever). The settle of the job writes its final
 * result over it (or deletes it when the type keeps no result). Each
 * write is announced on P:{Q}:done like a final outcome, so drover wait
 * can show it.
 */
#define DRV_QUEUE_PROGRESS_MS 250
#define DRV_QUEUE_PROGRESS_TTL_MS 3600000

/* A progress report, as the worker writes it. Borrowed for the call. */
struct drv_queue_progress {
    const char *id;        /* the job id, id_len bytes */
    size_t id_len;
    int pct;               /* 0..100 */
    const char *msg;       /* msg_len bytes */
    size_t msg_len;
    const char *worker;    /* the worker id */
    int64_t started_ms;    /* when the attempt started */
    int64_t ttl_ms;        /* the hash's expiry */
};

/* drv_queue_progress_build -- HSET, PEXPIRE, PUBLISH of report p (3
 * commands, sent pipelined with whatever else goes out). */
#define DRV_QUEUE_PROGRESS_CMDS 3
void drv_queue_progress_build(struct drv_queue_cmds *c,
                              const struct drv_queue_keys *k,
                              const struct drv_queue_progress *p);

/* drv_queue_cancel_json -- {"queue", "id", "found", "ready", "delayed",
 * "running", "scan_incomplete"}. */
struct drv_json;
void drv_queue_cancel_json(struct drv_json *j, const char *queue,
                           const char *id, const struct drv_queue_cancel *cn);

#endif
