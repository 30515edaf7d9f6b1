/*
 * drover/queue_admit.h -- admission in Redis: deduplication by id
 * (unique_for), fleet-wide concurrency (global_concurrency) and rate
 * limits (rate), each per job type of a queue and optionally per value of
 * a job field (limit_key).
 *
 * Keys (P = prefix, Q = queue, T = job type, V = the limit_key field's
 * value; all share the queue's hash tag {Q}, so they live on its cluster
 * slot and every script names each key it touches in KEYS):
 *
 *   P:{Q}:unique:T:ID   string: who holds job id ID of type T --
 *                       an entry id (that entry is admitted: running or
 *                       about to), "w:A" (the job waits for a retry or on
 *                       the stream after a requeue: the next entry of that
 *                       id with attempt A takes it over), "ok" (succeeded:
 *                       kept unique_for). Every form expires.
 *   P:{Q}:conc:T[:V]    zset: lease member (ENTRY@CONSUMER) -> expiry
 *                       (Redis time, ms); expired members do not count.
 *                       The key expires 2 leases after its last write.
 *   P:{Q}:rate:T[:V]    string: the theoretical arrival time of GCRA
 *                       (Redis time, microseconds); expires once it lies
 *                       in the past.
 *
 * Every time is Redis's own (TIME inside the scripts), so workers with
 * different clocks share one timeline.
 *
 * Like the rest of pkg/queue this builds script calls and parses replies;
 * it sends nothing.
 */
#ifndef DROVER_QUEUE_ADMIT_H
#define DROVER_QUEUE_ADMIT_H

#include <stddef.h>
#include <stdint.h>

#include "drover/error.h"
#include "drover/queue.h"

struct redisReply;

extern const struct drv_queue_script drv_queue_admit_script;
extern const struct drv_queue_script drv_queue_admit_renew_script;
extern const struct drv_queue_script drv_queue_unique_free_script;

/*
 * drv_queue_admit_key -- "P:{Q}:KIND:TYPE" (val NULL) or
 * "P:{Q}:KIND:TYPE:VAL" (val_len bytes, any) into a new string (caller
 * frees; it may hold NULs: *len is its length). kind is "unique", "conc"
 * or "rate".
 */
char *drv_queue_admit_key(const struct drv_queue_keys *k, const char *kind,
                          const char *type, const char *val, size_t val_len,
                          size_t *len);

/* One job asking to start. Strings borrowed for the call. */
struct drv_queue_admit_job {
    const char *entry_id;     /* its stream entry */
    const char *job_id;       /* its id (job_id_len bytes) */
    size_t job_id_len;
    uint64_t attempt;         /* its attempt field (0 = none) */
    const char *unique_key;   /* P:{Q}:unique:T:ID (unique_len bytes), or
                                 NULL: no deduplication */
    size_t unique_len;
    const char *conc_key;     /* P:{Q}:conc:..., or NULL */
    size_t conc_len;
    int conc_n;               /* global_concurrency */
    const char *member;       /* its lease member ENTRY@CONSUMER */
    const char *rate_key;     /* P:{Q}:rate:..., or NULL */
    size_t rate_len;
    int64_t rate_interval_us; /* period / N, rounded up */
    int64_t rate_horizon_us;  /* a slot at most this far ahead is taken */
};

/* What the admit script answers per job. */
enum drv_queue_admit_code {
    DRV_QUEUE_ADMIT_LOST = 0,    /* deduplicated but no longer ours:
                                    nothing written */
    DRV_QUEUE_ADMIT_RUN = 1,     /* start after delay_ms (its rate slot;
                                    0 = now); its lease and id are held */
    DRV_QUEUE_ADMIT_DEDUPED = 2, /* a duplicate: acked (XACK + XDEL),
                                    stats deduped + 1 */
    DRV_QUEUE_ADMIT_WAIT = 3     /* ask again after delay_ms (rate: until
                                    a slot is near), or -1 (no fleet-wide
                                    slot free: when one may be) */
};

struct drv_queue_admit_answer {
    enum drv_queue_admit_code code;
    int64_t delay_ms;
    int64_t at_ms;            /* RUN: when it may start (Redis time, Unix
                                 ms: its rate slot, or now) */
};

/*
 * drv_queue_admit_init -- start one admit script run for queue k (one
 * round trip for every job added): lease_ms is how long a lease and an
 * id claim last without renewal (visibility_timeout).
 * drv_queue_admit_add -- add one job, in order. Within the run the jobs
 * are decided one after another, each seeing the others' effects:
 *   1. unique: the id is free, held by this very entry, or held by "w:A"
 *      with A its attempt -> claimed (for 2 * lease_ms, renewed); held
 *      otherwise, or another job of that id waits in the delayed set ->
 *      deduplicated (acked, when this consumer still owns the entry);
 *   2. conc: expired leases dropped; fewer than conc_n left (or it holds
 *      one already) -> a lease until now + lease_ms; else WAIT -1;
 *   3. rate (GCRA, no burst: starts at least interval apart, so no window
 *      of the period holds more than N): its slot is max(TAT, now); more
 *      than horizon ahead -> WAIT until it is within reach (its lease, if
 *      just taken, given back); else TAT = slot + interval, RUN after
 *      slot - now.
 */
void drv_queue_admit_init(struct drv_script_call *c,
                          const struct drv_queue_keys *k,
                          const char *consumer, int64_t lease_ms);
void drv_queue_admit_add(struct drv_script_call *c,
                         const struct drv_queue_admit_job *a);

/* drv_queue_admit_parse -- the reply of a run of n jobs into out[n].
 * 0, or DRV_EREDIS (an error reply) / DRV_EPROTO. */
int drv_queue_admit_parse(const struct redisReply *reply, int n,
                          struct drv_queue_admit_answer *out,
                          struct drv_err *err);

/*
 * The admission part of a settle run (appended after every op of
 * drv_settle_add): for the op at index op (from 1), release what its job
 * holds, in the same script run as its op.
 * drv_queue_admit_settle_begin -- count records follow.
 * drv_queue_admit_settle_add -- unique_key (or NULL): when the key still
 * names entry_id and the op applied (not LOST), set it to unique_set for
 * ttl_ms, or delete it when unique_set is NULL (the id is free again);
 * conc_key (or NULL): remove member from it (whatever the op's code).
 */
void drv_queue_admit_settle_begin(struct drv_script_call *c, int count);
void drv_queue_admit_settle_add(struct drv_script_call *c, int op,
                                const char *entry_id,
                                const char *unique_key, size_t unique_len,
                                const char *unique_set, int64_t ttl_ms,
                                const char *conc_key, size_t conc_len,
                                const char *member);

/*
 * drv_queue_admit_renew_init / _add -- extend what live jobs hold: an id
 * claim still naming entry_id lives 2 * lease_ms again, a lease still
 * present ends lease_ms from now (a lease already expired is not taken
 * back: its slot may be someone else's). Reply: integer, ignored.
 */
void drv_queue_admit_renew_init(struct drv_script_call *c,
                                int64_t lease_ms);
void drv_queue_admit_renew_add(struct drv_script_call *c,
                               const char *entry_id,
                               const char *unique_key, size_t unique_len,
                               const char *conc_key, size_t conc_len,
                               const char *member);

/*
 * drv_queue_unique_free -- free the id held in unique_key unless its job
 * succeeded ("ok" stays until unique_for ends): for a job cancelled while
 * it waited or was delayed. Reply: integer 1 freed, 0 nothing held.
 */
void drv_queue_unique_free(struct drv_script_call *c,
                           const char *unique_key, size_t unique_len);

#endif
