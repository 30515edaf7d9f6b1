/*
 * schedule.c -- the config's schedules: each tick enqueued once across
 * every worker, from the worker's tick (drv__worker_schedules).
 *
 * DESIGN
 * Every worker runs every schedule of its config (whatever its --queues):
 * on each tick it looks at each schedule's next tick, and once that is
 * due it sends ONE script run (pkg/queue: drv_queue_schedule_tick) that
 * adds the entry only if the schedule's key in Redis holds an older tick.
 * All workers compute the same tick times (cron in the schedule's zone,
 * `every:` aligned to the Unix epoch), so whichever gets there first adds
 * the entry and the others' runs change nothing. No leader, no lock.
 *
 * Missed ticks are not caught up. A tick is fired only while it is at
 * most GRACE old (60 s, or the interval of a shorter `every:`); when a
 * worker finds several ticks due (it started, or Redis or the loop was
 * away for a while), it fires only the most recent one that is still in
 * grace and skips the rest; if none is, it skips them all. A worker
 * started 30 s after a 03:00 tick that no worker enqueued still enqueues
 * it; one started at 03:05 waits for the next.
 *
 * A failed run (Redis down, an error reply) leaves the tick due: it is
 * tried again a second later while still in grace (its warning logged at
 * most every 10 s). At most one run per schedule is out at a time.
 *
 * A worker whose clock runs ahead of Redis's by more than
 * DRV_QUEUE_SCHEDULE_AHEAD_MS has its ticks refused by the script (so it
 * cannot store a future tick that would silence the schedule); it warns
 * at most every 10 s and moves on to its next tick.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/cron.h"
#include "drover/log.h"
#include "drover/redis.h"
#include "worker_int.h"

/* How late a tick may still be enqueued. */
#define GRACE_MS INT64_C(60000)
/* After a failed run: the next try, and the quiet time of its warning. */
#define RETRY_MS INT64_C(1000)
#define WARN_EVERY_MS INT64_C(10000)

/* One schedule as the worker runs it. */
struct wsched {
    unsigned magic;
#define WSCHED_MAGIC 0x5c4e0d01U
    struct wscheds *all;            /* borrowed: owner */
    const struct drv_config_schedule *cfg; /* borrowed: from w->cfg */
    struct drv_queue_keys keys;     /* its queue's keys */
    char *key;                      /* owned: P:{Q}:sched:NAME */
    struct drv_argv fields;         /* the config's fields as pairs */
    int64_t grace_ms;               /* see GRACE_MS */
    int64_t next_ms;                /* next tick to fire; -1 = not yet
                                       computed */
    int64_t firing_ms;              /* the tick of the run out */
    int64_t retry_ms;               /* after a failed run: not before */
    int64_t warned_ms;              /* the last failure logged */
    int inflight;                   /* a run is out */
    int qi;                         /* its queue among the worker's (its
                                       connection on a cluster), or -1 */
};

struct wscheds {
    unsigned magic;
#define WSCHEDS_MAGIC 0x5c4e0d00U
    struct drv_worker *w;           /* borrowed: owner */
    struct drv_redis_script *script; /* owned: the schedule script */
    struct wsched *v;               /* owned: one per config schedule */
    size_t n;
};

/* The first tick of s strictly after after_ms; INT64_MAX if none. */
static int64_t
next_tick(const struct wsched *s, int64_t after_ms)
{
    int64_t out = INT64_MAX;

    if (s->cfg->every_ms > 0)
        return drv_every_next(s->cfg->every_ms, after_ms);
    if (drv_cron_next(s->cfg->cron, s->cfg->tz, after_ms, &out) < 0)
        return INT64_MAX;
    return out;
}

void
drv__worker_schedules_init(struct drv_worker *w)
{
    const struct drv_config *cfg = w->cfg;
    struct wscheds *all = NULL;
    size_t i, f;

    if (cfg->nschedules == 0)
        return;
    DRV_ALLOC_OBJ(all, WSCHEDS_MAGIC);
    all->w = w;
    all->script = drv_redis_script_create(
        drv_queue_schedule_script.text,
        strlen(drv_queue_schedule_script.text));
    all->v = drv_xcalloc(cfg->nschedules, sizeof *all->v);
    all->n = cfg->nschedules;
    for (i = 0; i < all->n; i++) {
        struct wsched *s = &all->v[i];
        const struct drv_config_schedule *sc = cfg->schedules[i];

        s->magic = WSCHED_MAGIC;
        s->all = all;
        s->cfg = sc;
        drv_queue_keys_init(&s->keys, cfg->redis.prefix, sc->queue);
        s->key = drv_queue_schedule_key(cfg->redis.prefix, sc->queue,
                                        sc->name);
        drv_argv_init(&s->fields);
        for (f = 0; f < sc->nfields; f++) {
            drv_argv_adds(&s->fields, sc->fields[f].key);
            drv_argv_adds(&s->fields, sc->fields[f].value);
        }
        s->grace_ms = sc->every_ms > 0 && sc->every_ms < GRACE_MS
                          ? sc->every_ms : GRACE_MS;
        s->next_ms = -1;
        s->qi = -1;
        for (f = 0; f < w->nqueues; f++)
            if (strcmp(w->queues[f].keys.name, sc->queue) == 0)
                s->qi = (int)f;
    }
    w->schedules = all;
}

void
drv__worker_schedules_fini(struct drv_worker *w)
{
    struct wscheds *all = w->schedules;
    size_t i;

    if (DRV_NO_OBJ(all, WSCHEDS_MAGIC))
        return;
    for (i = 0; i < all->n; i++) {
        drv_queue_keys_fini(&all->v[i].keys);
        free(all->v[i].key);
        drv_argv_fini(&all->v[i].fields);
        all->v[i].magic = 0;
    }
    free(all->v);
    drv_redis_script_free(all->script);
    DRV_FREE_OBJ(all);
    w->schedules = NULL;
}

static void
on_tick_enqueued(struct drv_redis *r DRV_UNUSED, int status,
                 const redisReply *reply, void *ctx)
{
    struct wsched *s;
    struct drv_err err;
    char qe[DRV_LOG_Q_MAX];

    if (status == -ECANCELED)
        return;     /* the worker is being freed */
    DRV_CAST(s, ctx, WSCHED_MAGIC);
    s->inflight = 0;
    if (drv_redis_result(status, reply, &err) == 0 &&
        reply->type != REDIS_REPLY_INTEGER)
        drv_err_set(&err, DRV_EPROTO, "unexpected reply type %d",
                    reply->type);
    if (err.code < 0) {
        /* the tick stays due: tried again in a second while in grace
         * (a key of the wrong type fails every time: warn now and then) */
        int64_t now = drv_clock_unix_ms();

        if (status != DRV_EDOWN && now - s->warned_ms >= WARN_EVERY_MS) {
            DRV_LOG_WARN("schedule tick not enqueued", "schedule=%s "
                         "queue=%s tick=%lld error=%s", s->cfg->name,
                         s->cfg->queue, (long long)s->firing_ms,
                         drv_log_q(qe, sizeof qe, err.msg));
            s->warned_ms = now;
        }
        s->next_ms = s->firing_ms;
        s->retry_ms = now + RETRY_MS;
        return;
    }
    if (reply->integer == -1) {
        /* this worker's clock runs fast: its ticks are refused until it
         * is set right (the other workers' ticks go on) */
        int64_t now = drv_clock_unix_ms();

        if (now - s->warned_ms >= WARN_EVERY_MS) {
            DRV_LOG_WARN("schedule tick refused: this worker's clock is "
                         "ahead of Redis's", "schedule=%s queue=%s "
                         "tick=%lld limit_ms=%d", s->cfg->name,
                         s->cfg->queue, (long long)s->firing_ms,
                         DRV_QUEUE_SCHEDULE_AHEAD_MS);
            s->warned_ms = now;
        }
    } else if (reply->integer >= 1) {
        if (reply->integer == 2)
            DRV_LOG_WARN("schedule key held a tick ahead of Redis's "
                         "clock: replaced", "schedule=%s queue=%s "
                         "tick=%lld", s->cfg->name, s->cfg->queue,
                         (long long)s->firing_ms);
        DRV_LOG_DEBUG("schedule tick enqueued", "schedule=%s queue=%s "
                      "tick=%lld", s->cfg->name, s->cfg->queue,
                      (long long)s->firing_ms);
        drv__worker_metrics_schedule_tick(s->all->w,
                                          (size_t)(s - s->all->v));
    }
    s->next_ms = next_tick(s, s->firing_ms);
}

/* Fire the due tick of s, if any (see DESIGN for which). */
static void
run_schedule(struct wsched *s, int64_t now)
{
    struct drv_worker *w = s->all->w;
    struct drv_queue_tick t;
    struct drv_script_call call;
    int64_t tick, nt;

    if (s->inflight || now < s->retry_ms)
        return;
    if (s->next_ms < 0)
        s->next_ms = next_tick(s, now - s->grace_ms - 1);
    if (now < s->next_ms)
        return;
    /* the first tick still in grace */
    tick = s->next_ms >= now - s->grace_ms
               ? s->next_ms : next_tick(s, now - s->grace_ms - 1);
    /* then the most recent due one */
    while (tick <= now && (nt = next_tick(s, tick)) <= now)
        tick = nt;
    if (tick != s->next_ms)
        DRV_LOG_INFO("schedule ticks missed: not caught up", "schedule=%s "
                     "missed_from=%lld next=%lld", s->cfg->name,
                     (long long)s->next_ms, (long long)tick);
    if (tick > now) {
        s->next_ms = tick;
        return;
    }
    memset(&t, 0, sizeof t);
    t.schedule = s->cfg->name;
    t.kind = s->cfg->job != NULL ? "job" : "pipeline";
    t.target = s->cfg->job != NULL ? s->cfg->job->name
                                   : s->cfg->pipeline->name;
    t.fields = &s->fields;
    t.tick_ms = tick;
    drv_queue_schedule_tick(&call, &s->keys, s->key, &t);
    s->firing_ms = tick;
    s->inflight = 1;
    if (drv_redis_eval(s->qi >= 0 ? w->queues[s->qi].cmd : w->cmd,
                       s->all->script, 0, &call.keys, &call.args,
                       on_tick_enqueued, s) < 0) {
        s->inflight = 0;
        s->next_ms = tick;  /* due again next time */
    }
    drv_script_call_fini(&call);
}

void
drv__worker_schedules(struct drv_worker *w)
{
    struct wscheds *all = w->schedules;
    int64_t now = drv_clock_unix_ms();
    size_t i;

    if (all == NULL || w->state != W_RUNNING)
        return;
    for (i = 0; i < all->n; i++)
        run_schedule(&all->v[i], now);
}
