/*
 * outcome.h -- the decision that turns one attempt's outcome into the
 * settle op written to Redis. Pure: no loop, no Redis, no clock (now and
 * the random draw are inputs), so it is unit-tested on its own.
 */
#ifndef DROVER_WORKER_OUTCOME_H
#define DROVER_WORKER_OUTCOME_H

#include <stddef.h>
#include <stdint.h>

#include "drover/config.h"
#include "drover/queue.h"
#include "drover/tg.h"

#define DRV_OUTCOME_TEXT_MAX 8192  /* bytes of error text kept */

/* What decide reads; every pointer borrowed for the call. */
struct drv_outcome_in {
    const struct drv_config_policy *policy; /* the job type's; the
                                        pipeline's for a parallel step;
                                        NULL for a job that cannot run */
    int64_t result_ttl_ms;           /* keep the result this long (the
                                        pipeline's for any of its steps) */
    const struct drv_tg_outcome *o;  /* the attempt's outcome */
    uint64_t attempt;                /* attempts already made before it */
    int64_t now_ms;                  /* Unix ms */
    uint64_t (*random)(void);        /* uniform random source for the
                                        jitter, called only for a retry */
    int64_t retry_after_ms;          /* the handler's floor for a retry's
                                        delay; 0 = backoff only */
    int lost;                        /* the lease was lost */
    int cancel_requested;            /* drover cancel asked for it */
    size_t nsteps;                   /* pipeline steps; 0 = not one */
    int64_t step;                    /* pipeline step index */
    const struct drv_config_step *parallel; /* a parallel step (its
                                        members are o->child's tasks in
                                        order), else NULL */
};

/* What decide returns. */
struct drv_decision {
    int drop;                /* 1: write nothing (another worker owns it) */
    struct drv_settle_op op; /* kind, attempts, due_ms, count_failed,
                                result_ttl_ms, pipeline, step, text; the
                                caller fills entry_id, job_id and
                                started_at_ms */
    char *text;              /* owned: op.text (result or error); NULL =
                                none. Free with drv_decision_fini */
};

/*
 * drv_outcome_decide -- the settle op for in:
 *   OK          ACK with the result (a parallel step: {"type": result,
 *               ...} in declared order); NEXT for a pipeline step that
 *               is not the last
 *   FAILED      DEAD at once for DRV_EPERMANENT and DRV_EBADJOB, else
 *               RETRY while attempts <= retries (delay: backoff with
 *               jitter, at least retry_after_ms), then DEAD; the text is
 *               the handler's error, or the outcome's message (a parallel
 *               step: every member's state and error)
 *   TIMED_OUT   as a retried failure, "timed out after N ms"
 *   CANCELLED   REQUEUE (no attempt counted); drop when lost
 * With cancel_requested, any outcome but OK is CANCEL (not retried, the
 * attempt counted; drop when lost); an OK stays OK.
 * A DEAD op keeps its result result_ttl_ms, or DRV_QUEUE_DEAD_TTL_MS
 * when that is 0. Error text is cut at DRV_OUTCOME_TEXT_MAX bytes.
 */
void drv_outcome_decide(const struct drv_outcome_in *in,
                        struct drv_decision *out);

/* drv_decision_fini -- free out's text. */
void drv_decision_fini(struct drv_decision *out);

#endif
