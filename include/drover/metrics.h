/*
 * drover/metrics.h -- counters, gauges and histograms, rendered in the
 * Prometheus text exposition format 0.0.4, and a small HTTP server for
 * /healthz, /readyz and /metrics on the event loop.
 *
 * The registry knows nothing of Redis or jobs: its owner declares the
 * families and every series (label values) up front, keeps the series
 * pointers it got back and updates them directly. Updating is a plain
 * add on the owner's thread (no locks, no lookups): the owner must be the
 * only thread that touches its series, and rendering runs on that same
 * thread. Because every series exists from the start, the number of
 * series never depends on input.
 *
 *   struct drv_metrics *m = drv_metrics_create();
 *   struct drv_metrics_family *f = drv_metrics_family_add(m,
 *       "drover_jobs_processed_total", "Attempts that succeeded.",
 *       DRV_METRICS_COUNTER, labels, NULL, 0);
 *   struct drv_metrics_series *s = drv_metrics_series_add(f, values);
 *   drv_metrics_inc(s);
 *   drv_metrics_render(m, &buf);
 *
 * Histograms have fixed buckets (upper bounds, ascending, +Inf implied);
 * a histogram series keeps one count per bucket and cumulates them when
 * rendered.
 */
#ifndef DROVER_METRICS_H
#define DROVER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "drover/error.h"

struct drv_buf;
struct drv_loop;
struct drv_metrics;
struct drv_metrics_family;

enum drv_metrics_type {
    DRV_METRICS_COUNTER = 0,
    DRV_METRICS_GAUGE,
    DRV_METRICS_HISTOGRAM
};

/* Most labels of one family. */
#define DRV_METRICS_LABELS_MAX 4
/* Most buckets of one histogram (+Inf not counted). */
#define DRV_METRICS_BUCKETS_MAX 24

/*
 * One series: a family with one set of label values. Public so the update
 * functions can be inlined into the hot path; touch the `_` members only
 * through the functions below.
 */
struct drv_metrics_series {
    unsigned magic;
#define DRV_METRICS_SERIES_MAGIC 0x5e7e5e7eU
    double _value;                    /* counter, gauge: the value;
                                         histogram: the sum */
    uint64_t _count;                  /* histogram: observations */
    const struct drv_metrics_family *_family; /* borrowed: owner */
    uint64_t *_buckets;               /* owned: histogram: per bucket
                                         (not cumulative), +Inf last */
    char *_labels;                    /* owned: `a="x",b="y"` rendered */
    size_t _labels_len;
    struct drv_metrics_series *_next; /* family's list, in add order */
};

/* drv_metrics_create -- an empty registry (never NULL: out of memory
 * aborts). */
struct drv_metrics *drv_metrics_create(void);

/* drv_metrics_free -- the registry, its families and series; NULL does
 * nothing. Series pointers are invalid afterwards. */
void drv_metrics_free(struct drv_metrics *m);

/*
 * drv_metrics_family_add -- declare a family. name and label names must
 * match [a-zA-Z_:][a-zA-Z0-9_:]* and [a-zA-Z_][a-zA-Z0-9_]* (asserted:
 * they are the program's constants, not input); labels is NULL-terminated
 * (NULL = no labels, at most DRV_METRICS_LABELS_MAX); buckets ascending
 * (histograms only, at most DRV_METRICS_BUCKETS_MAX, +Inf implied).
 * Strings and buckets are copied. Families render in the order added.
 */
struct drv_metrics_family *drv_metrics_family_add(
    struct drv_metrics *m, const char *name, const char *help,
    enum drv_metrics_type type, const char *const *labels,
    const double *buckets, size_t nbuckets);

/*
 * drv_metrics_series_add -- a series of f with one value per label of the
 * family (values may hold any bytes; they are escaped when rendered).
 * Values are copied. Returns the series, owned by the registry, valid
 * until drv_metrics_free. Series render in the order added.
 */
struct drv_metrics_series *drv_metrics_series_add(
    struct drv_metrics_family *f, const char *const *values);

/* Counter or gauge: add 1 / add v (a counter takes v >= 0) / set v. */
static inline void
drv_metrics_inc(struct drv_metrics_series *s)
{
    s->_value += 1.0;
}

static inline void
drv_metrics_add(struct drv_metrics_series *s, double v)
{
    s->_value += v;
}

static inline void
drv_metrics_set(struct drv_metrics_series *s, double v)
{
    s->_value = v;
}

/* drv_metrics_value -- a counter's or gauge's value; a histogram's sum. */
static inline double
drv_metrics_value(const struct drv_metrics_series *s)
{
    return s->_value;
}

/* drv_metrics_observe -- a histogram observation (seconds, bytes, ...). */
void drv_metrics_observe(struct drv_metrics_series *s, double v);

/* drv_metrics_count -- a histogram's number of observations. */
static inline uint64_t
drv_metrics_count(const struct drv_metrics_series *s)
{
    return s->_count;
}

/*
 * drv_metrics_render -- append every family in the text format 0.0.4:
 * `# HELP`, `# TYPE`, then one line per series (histograms: _bucket lines
 * with `le`, cumulative, then _sum and _count; a histogram series with no
 * observation yet is left out, which keeps a scrape of many label
 * combinations small: its buckets would all read 0). Label values escape \, "
 * and newline; help text escapes \ and newline.
 */
void drv_metrics_render(const struct drv_metrics *m, struct drv_buf *out);

/* drv_metrics_process -- add the standard process_* families
 * (process_cpu_seconds_total, process_resident_memory_bytes,
 * process_open_fds, process_max_fds, process_virtual_memory_bytes,
 * process_start_time_seconds) to m; drv_metrics_process_update reads
 * /proc/self and sets them (call it before rendering). */
struct drv_metrics_process;
struct drv_metrics_process *drv_metrics_process_add(struct drv_metrics *m);
void drv_metrics_process_update(struct drv_metrics_process *p);
/* drv_metrics_process_free -- the reader (its series stay in the
 * registry); NULL does nothing. */
void drv_metrics_process_free(struct drv_metrics_process *p);

/* ---------------------------------------------------------------- HTTP */

/*
 * The HTTP endpoint, on the loop's libevent base (evhttp; no thread).
 *
 *   GET /healthz  200 "ok" (503 when health() returns a reason)
 *   GET /readyz   200 "ready", or 503 with the reason ready() returns
 *   GET /metrics  collect(), then the registry rendered, with
 *                 Content-Type: text/plain; version=0.0.4
 *
 * HEAD works like GET without a body. Any other path is 404, any other
 * method 405. Headers larger than 8 KiB, a body larger than 1 KiB and a
 * connection that stays silent longer than its timeout are refused (4xx
 * or the connection closed); none of them ever blocks the loop.
 */

/* A reason for not being healthy/ready into buf (one line, NUL-ended),
 * returning 1; or 0 when all is well. */
typedef int drv_metrics_check_fn(char *buf, size_t n, void *ctx);
/* Refresh sampled values just before rendering. */
typedef void drv_metrics_collect_fn(void *ctx);

struct drv_metrics_http_opts {
    const char *listen;             /* "HOST:PORT", HOST may be [v6] */
    struct drv_metrics *metrics;    /* borrowed: outlives the server */
    drv_metrics_check_fn *health;   /* NULL = always healthy */
    drv_metrics_check_fn *ready;    /* NULL = always ready */
    drv_metrics_collect_fn *collect; /* may be NULL */
    void *ctx;                      /* borrowed: for the callbacks */
    int64_t timeout_ms;             /* idle connection; 0 = 5000 */
    struct drv_metrics_series *scrape_seconds; /* borrowed, may be NULL: a
                                       gauge set to the seconds each
                                       scrape took to collect and render
                                       (the next scrape shows it) */
};

struct drv_metrics_http;

/*
 * drv_metrics_http_start -- bind and serve. Returns 0, or -errno (address
 * in use, bad address) with err saying which address. The callbacks run
 * on the loop thread, from the loop, never inside this call.
 */
int drv_metrics_http_start(struct drv_loop *loop,
                           const struct drv_metrics_http_opts *opts,
                           struct drv_metrics_http **out,
                           struct drv_err *err);

/* drv_metrics_http_stop -- close the listener and every connection;
 * NULL does nothing. No callback runs afterwards. Loop thread. */
void drv_metrics_http_stop(struct drv_metrics_http *h);

/* drv_metrics_http_port -- the bound port (useful with port 0). */
int drv_metrics_http_port(const struct drv_metrics_http *h);

#endif
