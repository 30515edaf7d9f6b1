/*
 * worker_metrics.c -- the worker's metrics and its HTTP endpoint
 * (worker.metrics: HOST:PORT): /healthz, /readyz, /metrics.
 *
 * DESIGN
 * Every series exists from the start, built from the config: for each
 * queue and each label value -- every job type, every pipeline, and
 * "_unknown" for a job whose `job` field names nothing the config
 * declares -- one cell of series. A job finds its cell by index (queue
 * index, job type index), so the job path is a few additions on the loop
 * thread: no lookup, no lock, no allocation, and no input can add a
 * series.
 *
 * The job path calls three hooks (all do nothing when metrics are off):
 *   drv__worker_metrics_started   handler started: running+1, wait time
 *   drv__worker_metrics_outcome   the attempt's outcome is decided:
 *                                 running-1, run time, processed / failed
 *                                 (reason) / retried / dead, an exec
 *                                 child's CPU (and its resources copied
 *                                 into the settle op for the result hash)
 *   drv__worker_metrics_member_done  a parallel step's member finished
 *
 * Queue gauges come from Redis: every SAMPLE_MS one MULTI per queue of
 * the stats commands pkg/queue builds (those `drover stats` sends), all
 * written in one loop turn (one round trip), never per scrape. Redis, pool and process gauges are read
 * when a scrape asks.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/log.h"
#include "drover/loop.h"
#include "drover/metrics.h"
#include "drover/pool.h"
#include "drover/proc.h"
#include "drover/redis.h"
#include "drover/tg.h"
#include "worker_int.h"

#define SAMPLE_MS 5000
#define RETRY_MS 250
#define HEALTH_LAG_NS (5 * DRV_NS_PER_SEC)

/* Upper bounds, seconds. */
static const double run_buckets[] = {
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
    300, 900, 1800, 3600,
};
static const double wait_buckets[] = {
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
    300, 900, 3600,
};
static const double lag_buckets[] = {
    0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5,
};

#define UNKNOWN_LABEL "_unknown"

/* The series of one queue x job label. */
struct cell {
    struct drv_metrics_series *processed;
    struct drv_metrics_series *failed_error;
    struct drv_metrics_series *failed_timeout;
    struct drv_metrics_series *retried;
    struct drv_metrics_series *dead;
    struct drv_metrics_series *running;
    struct drv_metrics_series *duration;
    struct drv_metrics_series *cpu;
    struct drv_metrics_series *deduped;
    struct drv_metrics_series *cancelled;
};

/* The series of one queue. */
struct qcell {
    struct drv_metrics_series *wait;
    struct drv_metrics_series *ready;
    struct drv_metrics_series *running;
    struct drv_metrics_series *delayed;
    struct drv_metrics_series *dead;
};

struct wmetrics {
    unsigned magic;
#define WMETRICS_MAGIC 0x3e7a3e7aU
    struct drv_worker *w;             /* borrowed: owner */
    struct drv_metrics *reg;          /* owned */
    struct drv_metrics_process *proc; /* owned */
    struct drv_metrics_http *http;    /* owned */
    size_t nlabels;                   /* job types + pipelines + unknown */
    struct cell *cells;               /* owned: [queue * nlabels + label] */
    struct qcell *qcells;             /* owned: per queue */
    struct drv_metrics_series *concurrency, *pool_busy, *lag, *scrape;
    struct drv_metrics_series *up[2], *reconnects[2]; /* cmd, fetch */
    struct drv_metrics_series **ticks; /* owned array: per schedule */
    struct event *sample_ev;          /* owned: sample timer */
    struct event *now_ev;             /* owned: ends the cached now */
    int64_t now_ns;                   /* cached monotonic now ... */
    int now_valid;                    /* ... while this is set */
    int sample_sent;                  /* queues asked this round */
    int sample_inflight;              /* queue replies still due */
};

/* ------------------------------------------------------------ labels */

/* The label index of a job: its job type, else its pipeline, else the
 * job type its `job` field names (a job that failed validation), else
 * _unknown. */
static size_t
label_of(const struct wmetrics *m, const struct wjob *j)
{
    const struct drv_config *cfg = m->w->cfg;
    const struct drv_field *f;
    size_t i;

    if (j->type != NULL)
        return (size_t)(j->type - m->w->types);
    if (j->pipe != NULL) {
        for (i = 0; i < cfg->npipelines; i++)
            if (cfg->pipelines[i] == j->pipe)
                return cfg->njobs + i;
    }
    f = drv_job_field(j->job, "job");
    for (i = 0; f != NULL && i < cfg->njobs; i++)
        if (strlen(cfg->jobs[i]->name) == f->value_len &&
            memcmp(cfg->jobs[i]->name, f->value, f->value_len) == 0)
            return i;
    return m->nlabels - 1;
}

static struct cell *
cell_of(const struct wmetrics *m, const struct wjob *j)
{
    return &m->cells[(size_t)j->qi * m->nlabels + label_of(m, j)];
}

/* ------------------------------------------------------------- hooks */

/*
 * The end of an attempt, for its run time. Reading the clock costs about
 * 100 ns on a virtual machine (kvm-clock), a few percent of a noop job's
 * whole cost, so outcomes that arrive in one burst of callbacks share one
 * reading: the first takes it and activates now_ev, which runs after the
 * callbacks already queued and ends the burst. A run time is then late by
 * at most the burst's length (typically well under a millisecond, the
 * first bucket).
 */
static void
on_now_expired(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct wmetrics *m;

    DRV_CAST(m, arg, WMETRICS_MAGIC);
    m->now_valid = 0;
}

static int64_t
burst_now_ns(struct wmetrics *m)
{
    if (!m->now_valid) {
        m->now_ns = drv_clock_mono_ns();
        m->now_valid = 1;
        event_active(m->now_ev, EV_TIMEOUT, 0);
    }
    return m->now_ns;
}

/* Run time of j's attempt into c's histogram (never negative). */
static void
observe_duration(struct wmetrics *m, struct cell *c, const struct wjob *j)
{
    int64_t d = burst_now_ns(m) - j->mstart_ns;

    drv_metrics_observe(c->duration, d > 0 ? (double)d / 1e9 : 0.0);
}

void
drv__worker_metrics_started(struct wjob *j)
{
    struct wmetrics *m = j->w->metrics;
    int64_t enq_ms = 0;
    const char *p;

    if (m == NULL)
        return;
    j->mcell = cell_of(m, j);
    j->mstart_ns = burst_now_ns(m);
    drv_metrics_inc(((struct cell *)j->mcell)->running);
    /* the entry id's time part: when it was added to the stream */
    for (p = j->job->entry_id; *p >= '0' && *p <= '9'; p++)
        enq_ms = enq_ms * 10 + (*p - '0');
    if (enq_ms > 0 && j->started_ms >= enq_ms)
        drv_metrics_observe(m->qcells[j->qi].wait,
                            (double)(j->started_ms - enq_ms) / 1e3);
}

void
drv__worker_metrics_outcome(struct wjob *j, const struct drv_tg_outcome *o)
{
    struct wmetrics *m = j->w->metrics;
    struct cell *c;

    if (m == NULL)
        return;
    c = j->mcell != NULL ? j->mcell : cell_of(m, j);
    if (j->run.has_rusage)
        drv_metrics_add(c->cpu, (double)j->run.cpu_ns / 1e9);
    if (j->mcell != NULL) { /* counted by drv__worker_metrics_started */
        drv_metrics_add(c->running, -1.0);
        if (o->state != DRV_TG_CANCELLED)
            observe_duration(m, c, j);
    }
    if (o->state == DRV_TG_OK)
        drv_metrics_inc(c->processed);
    else if (o->state == DRV_TG_FAILED)
        drv_metrics_inc(c->failed_error);
    else if (o->state == DRV_TG_TIMED_OUT)
        drv_metrics_inc(c->failed_timeout);
    if (j->dec.op.kind == DRV_SETTLE_CANCEL)
        drv_metrics_inc(c->cancelled);
    if (o->state == DRV_TG_CANCELLED)
        return;
    if (j->dec.op.kind == DRV_SETTLE_RETRY)
        drv_metrics_inc(c->retried);
    else if (j->dec.op.kind == DRV_SETTLE_DEAD)
        drv_metrics_inc(c->dead);
}

void
drv__worker_metrics_deduped(struct wjob *j)
{
    struct wmetrics *m = j->w->metrics;

    if (m != NULL)
        drv_metrics_inc(cell_of(m, j)->deduped);
}

void
drv__worker_metrics_member_done(struct wjob *j,
                                const struct drv_tg_outcome *o)
{
    struct wmetrics *m = j->w->metrics;
    struct cell *c;

    if (m == NULL || j->mcell == NULL)
        return;
    c = j->mcell;
    if (j->run.has_rusage)
        drv_metrics_add(c->cpu, (double)j->run.cpu_ns / 1e9);
    drv_metrics_add(c->running, -1.0);
    if (o->state != DRV_TG_CANCELLED)
        observe_duration(m, c, j);
}

/* ---------------------------------------------------------- sampling */

/* The reply of queue qi's MULTI into its gauges. */
static void
sample_apply(struct wmetrics *m, size_t qi, int status,
             const redisReply *reply)
{
    struct qcell *q = &m->qcells[qi];
    struct drv_queue_stats s;
    struct drv_err err;
    int rc = DRV_EPROTO;
    char qe[DRV_LOG_Q_MAX];

    drv_err_clear(&err);
    if (status == 0 && reply->type == REDIS_REPLY_ARRAY)
        rc = drv_queue_stats_parse(reply->element, reply->elements, &s,
                                   &err);
    if (rc < 0) {
        DRV_LOG_DEBUG("queue sample failed", "queue=%s error=%s",
                      m->w->queues[qi].keys.name,
                      drv_log_q(qe, sizeof qe, status < 0
                                ? drv_strerror(status) : err.msg));
        return; /* keep the last known numbers */
    }
    drv_metrics_set(q->ready, (double)s.ready);
    drv_metrics_set(q->running, (double)s.running);
    drv_metrics_set(q->delayed, (double)s.delayed);
    drv_metrics_set(q->dead, (double)s.dead);
}

static void
on_sample(struct drv_redis *r DRV_UNUSED, int status, const redisReply *reply,
          void *ctx)
{
    struct wmetrics *m;
    size_t qi;

    if (status == -ECANCELED)
        return; /* the worker is being freed */
    DRV_CAST(m, ctx, WMETRICS_MAGIC);
    qi = (size_t)(m->sample_sent - m->sample_inflight);
    m->sample_inflight--;
    sample_apply(m, qi, status, reply);
}

/* A cluster's sample: each queue on its own connection, so the replies
 * come in any order; ctx names the queue. */
static void
on_sample_q(struct drv_redis *r DRV_UNUSED, int status,
            const redisReply *reply, void *ctx)
{
    int qi;
    struct drv_worker *w = drv__worker_of_queue_reply(status, ctx, &qi);
    struct wmetrics *m;

    if (w == NULL)
        return; /* the worker is being freed */
    DRV_CAST(m, w->metrics, WMETRICS_MAGIC);
    m->sample_inflight--;
    sample_apply(m, (size_t)qi, status, reply);
}

/* One round: per queue, one MULTI of pkg/queue's stats commands (one hash
 * tag, so also on a Redis Cluster), all written in this loop turn. The
 * next round is due SAMPLE_MS later, or soon when Redis was not ready. */
static void
on_sample_tick(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct wmetrics *m;
    struct drv_queue_cmds c;
    struct timeval tv = {0, RETRY_MS * 1000};
    size_t qi;

    DRV_CAST(m, arg, WMETRICS_MAGIC);
    if (m->sample_inflight > 0 ||
        drv_redis_state(m->w->cmd) != DRV_REDIS_READY) {
        DRV_AZ(event_add(m->sample_ev, &tv));
        return;
    }
    /* replies come back in order: the n-th answers queue n */
    m->sample_sent = 0;
    for (qi = 0; qi < m->w->nqueues; qi++) {
        drv_queue_cmds_init(&c);
        DRV_ASSERT(drv_queue_stats_build(&c, &m->w->queues[qi].keys) ==
                   DRV_QUEUE_STATS_CMDS && c.n == DRV_QUEUE_STATS_CMDS);
        if (m->w->cluster != NULL) {
            struct wqueue *q = &m->w->queues[qi];

            if (drv_redis_multi(q->cmd, 0, c.n, c.cmd, on_sample_q,
                                &q->conn) == 0)
                m->sample_inflight++;
            drv_queue_cmds_fini(&c);
            continue;
        }
        if (drv_redis_multi(m->w->cmd, 0, c.n, c.cmd, on_sample, m) < 0) {
            drv_queue_cmds_fini(&c);
            break; /* the rest waits for the next round */
        }
        drv_queue_cmds_fini(&c);
        m->sample_sent++;
        m->sample_inflight++;
    }
    tv.tv_sec = SAMPLE_MS / 1000;
    tv.tv_usec = 0;
    DRV_AZ(event_add(m->sample_ev, &tv));
}

/* ------------------------------------------------------------ scrape */

static void
on_lag(int64_t lag_ns, void *ctx)
{
    struct wmetrics *m;

    DRV_CAST(m, ctx, WMETRICS_MAGIC);
    drv_metrics_observe(m->lag, (double)lag_ns / 1e9);
}

static void
collect(void *ctx)
{
    struct wmetrics *m;
    struct drv_redis_stats rs;
    struct drv_pool_stats ps;
    struct drv_redis *conns[2];
    int i;

    DRV_CAST(m, ctx, WMETRICS_MAGIC);
    conns[0] = m->w->cmd;
    conns[1] = m->w->blk;
    for (i = 0; i < 2; i++) {
        drv_metrics_set(m->up[i], drv_redis_state(conns[i]) ==
                                      DRV_REDIS_READY);
        drv_redis_get_stats(conns[i], &rs);
        drv_metrics_set(m->reconnects[i],
                        rs.connects > 1 ? (double)(rs.connects - 1) : 0.0);
    }
    drv_pool_get_stats(m->w->pool, &ps);
    drv_metrics_set(m->pool_busy, (double)ps.busy);
    drv_metrics_process_update(m->proc);
}

static int
check_health(char *buf, size_t n, void *ctx)
{
    struct wmetrics *m;
    struct drv_loop_stats ls;

    DRV_CAST(m, ctx, WMETRICS_MAGIC);
    drv_loop_get_stats(m->w->loop, &ls);
    if (ls.lag_last_ns <= HEALTH_LAG_NS)
        return 0;
    snprintf(buf, n, "event loop blocked for %lld ms",
             (long long)(ls.lag_last_ns / DRV_NS_PER_MS));
    return 1;
}

static int
check_ready(char *buf, size_t n, void *ctx)
{
    struct wmetrics *m;
    struct drv_worker *w;

    DRV_CAST(m, ctx, WMETRICS_MAGIC);
    w = m->w;
    if (w->state == W_DRAINING || w->state == W_STOPPED)
        snprintf(buf, n, "graceful stop begun");
    else if (drv_redis_state(w->cmd) != DRV_REDIS_READY)
        snprintf(buf, n, "redis down: command connection not ready");
    else if (drv_redis_state(w->blk) != DRV_REDIS_READY)
        snprintf(buf, n, "redis down: fetch connection not ready");
    else if ((size_t)w->groups_ready < w->nqueues)
        snprintf(buf, n, "queues not ready: %zu of %zu (consumer groups "
                 "not created yet, or a queue key of the wrong type)",
                 w->nqueues - (size_t)w->groups_ready, w->nqueues);
    else
        return 0;
    return 1;
}

/* -------------------------------------------------------------- build */

static const char *const qj[] = {"queue", "job", NULL};
static const char *const qjr[] = {"queue", "job", "reason", NULL};
static const char *const q[] = {"queue", NULL};

/* A family to declare: drv_metrics_family_add's arguments. A row states
 * what differs from the defaults: a counter, the table's labels, no
 * buckets. */
struct family {
    const char *name;
    const char *help;
    enum drv_metrics_type type;
    const char *const *labels;
    const double *buckets;
    size_t nbuckets;
};

/* The families of a cell (queue x job label), in struct cell's order
 * (failed_* share one family, split by reason); labels qj. */
static const struct family cell_families[] = {
    {.name = "drover_jobs_processed_total",
     .help = "Attempts that succeeded."},
    {.name = "drover_jobs_failed_total", .labels = qjr,
     .help = "Attempts that failed (reason error or timeout)."},
    {.name = "drover_jobs_retried_total", .help = "Retries scheduled."},
    {.name = "drover_jobs_dead_total", .help = "Jobs moved to dead."},
    {.name = "drover_jobs_running", .type = DRV_METRICS_GAUGE,
     .help = "Jobs running in this process now."},
    {.name = "drover_job_duration_seconds", .type = DRV_METRICS_HISTOGRAM,
     .help = "Run time of each finished attempt.",
     .buckets = run_buckets, .nbuckets = DRV_ARRAY_LEN(run_buckets)},
    {.name = "drover_job_cpu_seconds_total",
     .help = "User and system CPU of exec jobs' child processes."},
    {.name = "drover_jobs_deduped_total",
     .help = "Duplicates acked without running (unique_for)."},
    {.name = "drover_jobs_cancelled_total",
     .help = "Jobs cancelled (drover cancel) while this process held them."},
};

/* The families of a queue, in struct qcell's order; labels q. */
static const struct family queue_families[] = {
    {.name = "drover_job_wait_seconds", .type = DRV_METRICS_HISTOGRAM,
     .help = "Enqueue (the stream entry id's time) to start.",
     .buckets = wait_buckets, .nbuckets = DRV_ARRAY_LEN(wait_buckets)},
    {.name = "drover_queue_ready", .type = DRV_METRICS_GAUGE,
     .help = "Jobs in the stream not yet delivered (sampled)."},
    {.name = "drover_queue_running", .type = DRV_METRICS_GAUGE,
     .help = "Jobs delivered and not yet acked, all workers (sampled)."},
    {.name = "drover_queue_delayed", .type = DRV_METRICS_GAUGE,
     .help = "Jobs waiting for a retry or their time (sampled)."},
    {.name = "drover_queue_dead", .type = DRV_METRICS_GAUGE,
     .help = "Dead-lettered jobs (sampled)."},
};

/* Declare the n families of table into out[]; labels where a row names
 * none. */
static void
families_add(struct drv_metrics *r, const struct family *table, size_t n,
             const char *const *labels, struct drv_metrics_family **out)
{
    size_t i;

    for (i = 0; i < n; i++)
        out[i] = drv_metrics_family_add(
            r, table[i].name, table[i].help, table[i].type,
            table[i].labels != NULL ? table[i].labels : labels,
            table[i].buckets, table[i].nbuckets);
}

static void
build(struct wmetrics *m)
{
    static const char *const conn[] = {"conn", NULL};
    const struct drv_config *cfg = m->w->cfg;
    struct drv_metrics *r = m->reg;
    struct drv_metrics_family *f[DRV_ARRAY_LEN(cell_families)];
    struct drv_metrics_family *qf[DRV_ARRAY_LEN(queue_families)];
    struct drv_metrics_family *up, *rc, *ticks;
    size_t qi, li, i;

    families_add(r, cell_families, DRV_ARRAY_LEN(cell_families), qj, f);
    families_add(r, queue_families, DRV_ARRAY_LEN(queue_families), q, qf);
    m->concurrency = drv_metrics_series_add(drv_metrics_family_add(r,
        "drover_worker_concurrency", "The process limit of running jobs.",
        DRV_METRICS_GAUGE, NULL, NULL, 0), NULL);
    drv_metrics_set(m->concurrency, cfg->worker.concurrency);
    m->pool_busy = drv_metrics_series_add(drv_metrics_family_add(r,
        "drover_pool_threads_busy", "Thread-pool threads running a job.",
        DRV_METRICS_GAUGE, NULL, NULL, 0), NULL);
    m->lag = drv_metrics_series_add(drv_metrics_family_add(r,
        "drover_event_loop_lag_seconds", "Measured event loop lag.",
        DRV_METRICS_HISTOGRAM, NULL, lag_buckets,
        DRV_ARRAY_LEN(lag_buckets)), NULL);
    m->scrape = drv_metrics_series_add(drv_metrics_family_add(r,
        "drover_scrape_duration_seconds",
        "Time the previous scrape took to collect and render.",
        DRV_METRICS_GAUGE, NULL, NULL, 0), NULL);
    up = drv_metrics_family_add(r, "drover_redis_up",
        "1 when that Redis connection is up.", DRV_METRICS_GAUGE, conn,
        NULL, 0);
    rc = drv_metrics_family_add(r, "drover_redis_reconnects_total",
        "Redis connections made again after a loss.", DRV_METRICS_COUNTER,
        conn, NULL, 0);
    for (i = 0; i < 2; i++) {
        const char *v[] = {i == 0 ? "cmd" : "fetch", NULL};
        m->up[i] = drv_metrics_series_add(up, v);
        m->reconnects[i] = drv_metrics_series_add(rc, v);
    }

    m->nlabels = cfg->njobs + cfg->npipelines + 1;
    m->cells = drv_xcalloc(cfg->nqueues * m->nlabels, sizeof *m->cells);
    m->qcells = drv_xcalloc(cfg->nqueues, sizeof *m->qcells);
    for (qi = 0; qi < cfg->nqueues; qi++) {
        const char *qv[] = {cfg->queues[qi], NULL};
        struct qcell *qc = &m->qcells[qi];

        qc->wait = drv_metrics_series_add(qf[0], qv);
        qc->ready = drv_metrics_series_add(qf[1], qv);
        qc->running = drv_metrics_series_add(qf[2], qv);
        qc->delayed = drv_metrics_series_add(qf[3], qv);
        qc->dead = drv_metrics_series_add(qf[4], qv);
        for (li = 0; li < m->nlabels; li++) {
            struct cell *c = &m->cells[qi * m->nlabels + li];
            const char *job = li < cfg->njobs ? cfg->jobs[li]->name
                            : li < cfg->njobs + cfg->npipelines
                                ? cfg->pipelines[li - cfg->njobs]->name
                                : UNKNOWN_LABEL;
            const char *v[] = {cfg->queues[qi], job, NULL, NULL};

            c->processed = drv_metrics_series_add(f[0], v);
            v[2] = "error";
            c->failed_error = drv_metrics_series_add(f[1], v);
            v[2] = "timeout";
            c->failed_timeout = drv_metrics_series_add(f[1], v);
            v[2] = NULL;
            c->retried = drv_metrics_series_add(f[2], v);
            c->dead = drv_metrics_series_add(f[3], v);
            c->running = drv_metrics_series_add(f[4], v);
            c->duration = drv_metrics_series_add(f[5], v);
            c->cpu = drv_metrics_series_add(f[6], v);
            c->deduped = drv_metrics_series_add(f[7], v);
            c->cancelled = drv_metrics_series_add(f[8], v);
        }
    }
    ticks = drv_metrics_family_add(r, "drover_schedule_ticks_total",
        "Schedule ticks this worker enqueued (first to the tick).",
        DRV_METRICS_COUNTER, (const char *const[]){"schedule", NULL}, NULL,
        0);
    m->ticks = drv_xcalloc(cfg->nschedules + 1, sizeof *m->ticks);
    for (i = 0; i < cfg->nschedules; i++) {
        const char *v[] = {cfg->schedules[i]->name, NULL};

        m->ticks[i] = drv_metrics_series_add(ticks, v);
    }
    m->proc = drv_metrics_process_add(r);
}

void
drv__worker_metrics_schedule_tick(struct drv_worker *w, size_t i)
{
    struct wmetrics *m = w->metrics;

    if (m != NULL)
        drv_metrics_inc(m->ticks[i]);
}

int
drv__worker_metrics_init(struct drv_worker *w, struct drv_err *err)
{
    struct drv_metrics_http_opts ho;
    struct wmetrics *m;
    struct timeval tv = {0, RETRY_MS * 1000};
    int rc;
    char qe[DRV_LOG_Q_MAX];

    if (w->cfg->worker.metrics == NULL)
        return 0;
    DRV_ALLOC_OBJ(m, WMETRICS_MAGIC);
    m->w = w;
    m->reg = drv_metrics_create();
    build(m);
    memset(&ho, 0, sizeof ho);
    ho.listen = w->cfg->worker.metrics;
    ho.metrics = m->reg;
    ho.health = check_health;
    ho.ready = check_ready;
    ho.collect = collect;
    ho.ctx = m;
    ho.scrape_seconds = m->scrape;
    w->metrics = m;
    rc = drv_metrics_http_start(w->loop, &ho, &m->http, err);
    if (rc < 0)
        return rc; /* drv__worker_metrics_fini frees the rest */
    m->now_ev = event_new(w->base, -1, 0, on_now_expired, m);
    DRV_AN(m->now_ev);
    m->sample_ev = evtimer_new(w->base, on_sample_tick, m);
    DRV_AN(m->sample_ev);
    DRV_AZ(event_add(m->sample_ev, &tv));
    drv_loop_on_lag(w->loop, on_lag, m);
    DRV_LOG_INFO("metrics endpoint listening", "listen=%s port=%d",
                 drv_log_q(qe, sizeof qe, w->cfg->worker.metrics),
                 drv_metrics_http_port(m->http));
    return 0;
}

void
drv__worker_metrics_fini(struct drv_worker *w)
{
    struct wmetrics *m = w->metrics;

    if (DRV_NO_OBJ(m, WMETRICS_MAGIC))
        return;
    drv_loop_on_lag(w->loop, NULL, NULL);
    drv_loop_event_free(m->sample_ev);
    drv_loop_event_free(m->now_ev);
    drv_metrics_http_stop(m->http);
    drv_metrics_process_free(m->proc);
    drv_metrics_free(m->reg);
    free(m->cells);
    free(m->qcells);
    free(m->ticks);
    DRV_FREE_OBJ(m);
    w->metrics = NULL;
}
