/*
 * drover/config.h -- the YAML configuration.
 *
 * drv_config_load reads a file into a struct drv_config with every default
 * filled in, or collects every error of the file (not just the first) as
 *
 *   FILE:LINE:COL: KEYPATH: message
 *   drover.yaml:7:18: jobs.resize.timeout: "30x" is not a duration (use
 *   250ms, 30s, 5m, 1h)
 *
 * LINE and COL (from 1) point at the offending key or value; an error
 * about a missing key points at the key of the mapping that lacks it.
 * Key paths read `jobs.resize.timeout`, `queues[1]`,
 * `pipelines.thumbnail.steps[1].parallel[0]`.
 *
 * The structs below are public because the worker and the CLI read many
 * fields; treat a loaded config as read-only, except that
 * cmd/ may replace a field for a command-line override (a string field
 * then gets a drv_xstrdup copy, the old one freed). Every string and
 * array is owned by the config and freed by drv_config_free. Durations are
 * milliseconds, sizes bytes. A loaded config is immutable, so any thread
 * may read it.
 */
#ifndef DROVER_CONFIG_H
#define DROVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "drover/error.h"

struct drv_cron;
struct drv_tz;
struct drv__config_names;

/* ------------------------------------------------------------ defaults */

#define DRV_CONFIG_REDIS_URL "redis://127.0.0.1:6379/0"
#define DRV_CONFIG_REDIS_PREFIX "drover"
#define DRV_CONFIG_QUEUE "default"

#define DRV_CONFIG_CONCURRENCY 64
#define DRV_CONFIG_BATCH 32
#define DRV_CONFIG_THREADS 4
#define DRV_CONFIG_SHUTDOWN_TIMEOUT_MS 30000        /* 30s */
#define DRV_CONFIG_VISIBILITY_TIMEOUT_MS 300000     /* 5m */
#define DRV_CONFIG_MAX_DELIVERIES 5
#define DRV_CONFIG_MAX_JOB_BYTES (16 * 1024 * 1024) /* 16MiB */
#define DRV_CONFIG_DEAD_MAX 10000
#define DRV_CONFIG_DEAD_MAX_AGE_MS (180LL * 86400000)  /* 180d */
#define DRV_CONFIG_HTTP_IDLE_TIMEOUT_MS 118000      /* 118s, as libcurl */

#define DRV_CONFIG_JOB_TIMEOUT_MS 1800000           /* 30m */
#define DRV_CONFIG_JOB_RETRIES 3
#define DRV_CONFIG_JOB_BACKOFF_MS 1000              /* 1s */
#define DRV_CONFIG_JOB_BACKOFF_MAX_MS 3600000       /* 1h */
#define DRV_CONFIG_JOB_OUTPUT_MAX (1024 * 1024)     /* 1MiB */
#define DRV_CONFIG_JOB_KILL_GRACE_MS 5000           /* 5s */
#define DRV_CONFIG_RATE_MAX 1000000                 /* most N of rate: N/period */
#define DRV_CONFIG_HTTP_METHOD "GET"

/* Largest config file read, so a wrong path cannot eat the memory. */
#define DRV_CONFIG_FILE_MAX (16 * 1024 * 1024)

/* --------------------------------------------------------------- types */

/*
 * The handlers a job type can name (`handler:`), one line each:
 * X(KIND, name). This list is the one table of handlers: it makes enum
 * drv_hkind (DRV_HKIND_KIND), the names the config accepts (config.c) and
 * the handler table (pkg/handler/handler.c: &drv__handler_name, defined
 * in pkg/handler/handler_*.c). Order is the enum's.
 */
#define DRV_HKIND_LIST(X) \
    X(NOOP, noop)         \
    X(ECHO, echo)         \
    X(SLEEP, sleep)       \
    X(BLOCK, block)       \
    X(FAIL, fail)         \
    X(EXEC, exec)         \
    X(HTTP, http)         \
    X(PLUGIN, plugin)

/* The handler of a job type: DRV_HKIND_NOOP, DRV_HKIND_ECHO, ... */
enum drv_hkind {
#define DRV_HKIND_ENUM(kind, name) DRV_HKIND_##kind,
    DRV_HKIND_LIST(DRV_HKIND_ENUM)
#undef DRV_HKIND_ENUM
    DRV_HKIND_COUNT     /* number of kinds, not a kind */
};

/* One `key: value` of an env or headers map, in file order. */
struct drv_config_kv {
    char *key;      /* owned */
    char *value;    /* owned; a header value is a template */
};

/* `redis.sentinel:` -- find the primary through Redis Sentinel. */
struct drv_config_sentinel {
    char *master;   /* owned: the name the sentinels monitor; NULL = no
                       sentinel (connect to redis.url's host) */
    char **addrs;   /* owned: "HOST[:PORT]" of each sentinel, in order,
                       NULL-terminated */
    size_t naddrs;  /* entries of addrs, >= 1 when master is set */
    char *user;     /* owned: ACL user on the sentinels, NULL = none
                       (password: $DROVER_SENTINEL_PASSWORD) */
};

/* `redis.cluster:` -- Redis Cluster: the slot map comes from any of the
 * seed nodes; each queue is served by the master of its slot. */
struct drv_config_cluster {
    char **nodes;   /* owned: "HOST[:PORT]" of each seed node, in order,
                       NULL-terminated; NULL = no cluster */
    size_t nnodes;  /* entries of nodes, >= 1 when set */
};

/* `redis.tls:` (for rediss:// URLs); unset strings are NULL */
struct drv_config_redis_tls {
    char *ca_file;      /* owned: PEM CAs; NULL = the system store */
    char *cert_file;    /* owned: PEM client certificate, or NULL */
    char *key_file;     /* owned: its key; NULL = in cert_file */
    char *server_name;  /* owned: name to verify and send (SNI); NULL =
                           the host of the URL */
    bool verify;        /* verify the server (default true) */
};

/* `redis:` */
struct drv_config_redis {
    char *url;      /* owned: redis://..., rediss://... or unix://...;
                       with a sentinel only scheme, user and db:
                       redis:///0 */
    char *prefix;   /* owned: key prefix P, no braces */
    struct drv_config_redis_tls tls; /* `tls:` */
    struct drv_config_sentinel sentinel; /* `sentinel:`; master NULL when
                                            absent */
    struct drv_config_cluster cluster; /* `cluster:`; nnodes 0 when absent;
                                          never set with sentinel (the url
                                          then has db 0) */
};


/* `worker:` */
struct drv_config_worker {
    int concurrency;                /* jobs running at once, > 0 */
    int batch;                      /* most jobs fetched at once, > 0 */
    int threads;                    /* thread pool size, > 0 */
    int64_t shutdown_timeout_ms;    /* > 0 */
    int64_t visibility_timeout_ms;  /* > 0 */
    int max_deliveries;             /* > 0 */
    int64_t max_job_bytes;          /* > 0 */
    int dead_max;                   /* dead entries kept per queue, > 0 */
    int64_t dead_max_age_ms;        /* older dead entries trimmed, > 0 */
    int64_t http_idle_timeout_ms;   /* a kept http connection idle this
                                       long is closed, > 0 */
    char *metrics;                  /* owned: "host:port", NULL = off */
};

/* exec-only settings of a job type (handler exec). */
struct drv_config_exec {
    char **command;             /* owned: argv templates, NULL-terminated */
    size_t ncommand;            /* entries before the NULL, >= 1 */
    struct drv_config_kv *env;  /* owned: added to the child's env */
    size_t nenv;                /* entries of env */
    char *cwd;                  /* owned: working directory, NULL = ours */
    int64_t kill_grace_ms;      /* SIGTERM -> SIGKILL, >= 0 */
};

/* http-only settings of a job type (handler http). */
struct drv_config_http {
    char *method;                   /* owned: "GET" unless set */
    char *url;                      /* owned: template (values URL-escaped) */
    struct drv_config_kv *headers;  /* owned: values are templates */
    size_t nheaders;                /* entries of headers */
    char *body;                     /* owned: template, NULL = fields as
                                       JSON for methods with a body */
};

/* plugin-only settings of a job type (handler plugin). */
struct drv_config_plugin {
    char *library;  /* owned: path of the shared library */
    char *symbol;   /* owned: exported name of the handler table */
};

/*
 * How attempts of a job type (or of a pipeline's parallel steps) are
 * bounded and retried; the same keys under jobs.X and pipelines.X.
 */
struct drv_config_policy {
    int64_t timeout_ms;             /* per attempt, > 0 */
    int retries;                    /* retries after the first attempt */
    int64_t backoff_ms;             /* base of the exponential backoff */
    int64_t backoff_max_ms;         /* cap of the backoff */
    int64_t result_ttl_ms;          /* keep the result key, 0 = keep none */
};

/* One entry of `jobs:`. */
struct drv_config_job {
    unsigned magic;
#define DRV_CONFIG_JOB_MAGIC 0x10b7c0f9U
    char *name;                     /* owned: the key under jobs: */
    enum drv_hkind handler;  /* `handler:` */
    struct drv_config_policy policy; /* timeout, retries, backoff,
                                        result_ttl */
    int concurrency;                /* most running at once, 0 = no limit */
    /* admission across every worker (pkg/worker/admit.c); 0/NULL = off */
    int64_t unique_for_ms;          /* `unique_for`: dedupe by id */
    char *rate;                     /* owned: `rate` as written, "N/s" */
    int rate_n;                     /* its N (starts per period) */
    int64_t rate_period_ms;         /* its period: 1000, 60000, 3600000 */
    int global_concurrency;         /* `global_concurrency`: fleet-wide */
    char *limit_field;              /* owned: FIELD of `limit_key`
                                       ("{FIELD}") */
    bool blocking;                  /* runs on the thread pool: always for
                                       block, `blocking:` for plugin */
    int64_t output_max;             /* result bytes kept (exec, http) */
    struct drv_config_exec exec;    /* handler exec only, else zeroed */
    struct drv_config_http http;    /* handler http only, else zeroed */
    struct drv_config_plugin plugin; /* handler plugin only, else zeroed */
};

/* One step of a pipeline: a job type, or `parallel: [...]`. */
struct drv_config_step {
    bool parallel;                  /* written as `parallel: [...]` */
    const struct drv_config_job **jobs; /* owned array of borrowed jobs
                                           (they live in the config) */
    size_t njobs;                   /* 1 for a plain step, >= 1 parallel */
};

/* `when:` of a graph node: `TEMPLATE == LITERAL` or `TEMPLATE != LITERAL`. */
enum drv_config_when_op {
    DRV_CONFIG_WHEN_NONE = 0,       /* no `when:`: the node always runs */
    DRV_CONFIG_WHEN_EQ,             /* == */
    DRV_CONFIG_WHEN_NE              /* != */
};

struct drv_config_when {
    enum drv_config_when_op op;     /* DRV_CONFIG_WHEN_NONE = no when */
    char *value;                    /* owned: the templated side (a
                                       {field} template) */
    char *literal;                  /* owned: the literal side (quotes
                                       removed) */
};

/* Most for_each items of one node in flight at once, unless set. */
#define DRV_CONFIG_GRAPH_MAX_PARALLEL 10

/*
 * One node of a pipeline's `graph:` (see doc/pipeline-graphs.md). Its
 * needs are indexes into the pipeline's graph array; the config loader
 * has proved the graph acyclic and every node reachable.
 */
struct drv_config_gnode {
    char *name;                     /* owned: the key under graph: */
    const struct drv_config_job *job; /* borrowed: `job:` (in the config) */
    size_t *needs;                  /* owned: indexes of `needs:`, in
                                       file order */
    size_t nneeds;                  /* entries of needs */
    char *queue;                    /* owned: `queue:`, NULL = the queue
                                       the run was enqueued on */
    struct drv_config_policy policy; /* the job type's, with the node's
                                        timeout, retries, backoff and
                                        backoff_max over it; result_ttl
                                        the pipeline's */
    struct drv_config_when when;    /* `when:` */
    char *for_each;                 /* owned: `for_each:` path after
                                       "input" ("" for {input}, ".a.b" for
                                       {input.a.b}); NULL = no fan-out */
    int max_parallel;               /* for_each items in flight, >= 1 */
    bool on_failure;                /* runs once when the run ends dead */
};

/* One entry of `pipelines:`. */
struct drv_config_pipeline {
    unsigned magic;
#define DRV_CONFIG_PIPELINE_MAGIC 0x919e11e5U
    char *name;                     /* owned: the key under pipelines: */
    struct drv_config_step *steps;  /* owned: in order */
    size_t nsteps;                  /* >= 1 for a `steps:` pipeline, 0
                                       for a `graph:` one */
    struct drv_config_gnode *graph; /* owned: `graph:` nodes in file
                                       order, NULL for `steps:` */
    size_t ngraph;                  /* entries of graph (0 = steps) */
    struct drv_config_policy policy; /* timeout, retries and backoff of
                                        its parallel steps; result_ttl of
                                        its final result */
};

/*
 * One entry of `schedules:`: a job (or pipeline) enqueued on a queue at
 * each tick of a cron spec in a time zone, or every interval.
 */
struct drv_config_schedule {
    unsigned magic;
#define DRV_CONFIG_SCHEDULE_MAGIC 0x5c4ed01eU
    char *name;                     /* owned: the key under schedules: */
    struct drv_cron *cron;          /* owned: `cron:`, NULL for every */
    int64_t every_ms;               /* `every:`, 0 for cron */
    struct drv_tz *tz;              /* owned: `timezone:` (default UTC) */
    char *queue;                    /* owned: `queue:` (default: the first
                                       of queues) */
    const struct drv_config_job *job;     /* borrowed: `job:`, or NULL */
    const struct drv_config_pipeline *pipeline; /* borrowed: `pipeline:`,
                                                   or NULL */
    struct drv_config_kv *fields;   /* owned: `fields:`, in file order */
    size_t nfields;                 /* entries of fields */
};

/* A loaded configuration. */
struct drv_config {
    unsigned magic;
#define DRV_CONFIG_MAGIC 0xc0f19c0fU
    char *file;                     /* owned: the name it was loaded as */
    struct drv_config_redis redis;  /* `redis:` */
    struct drv_config_worker worker; /* `worker:` */
    char **queues;                  /* owned: by priority (list form) or
                                       in file order (map form),
                                       NULL-terminated */
    int *queue_weights;             /* owned: the map form's weight of
                                       each queue (> 0), in the order of
                                       queues; NULL for the list form
                                       (strict priority) */
    size_t nqueues;                 /* >= 1 */
    struct drv_config_job **jobs;   /* owned: in file order */
    size_t njobs;                   /* entries of jobs */
    struct drv_config_pipeline **pipelines; /* owned: in file order */
    size_t npipelines;              /* entries of pipelines */
    struct drv_config_schedule **schedules; /* owned: in file order */
    size_t nschedules;              /* entries of schedules */
    struct drv__config_names *_names; /* owned: private to pkg/config,
                                         the index drv_config_job and
                                         drv_config_pipeline look names
                                         up in */
};

/* One error found in a config file. */
struct drv_config_error {
    int line;       /* from 1; 0 when the error has no place (no file) */
    int col;        /* from 1; 0 likewise */
    char *path;     /* owned: key path, "" for none (syntax, I/O) */
    char *msg;      /* owned: what is wrong */
    char *text;     /* owned: "FILE:LINE:COL: PATH: MSG", the parts that
                       are missing left out */
};

/* The errors of one load, in caller memory (_init/_fini). */
struct drv_config_errors {
    unsigned magic;
#define DRV_CONFIG_ERRORS_MAGIC 0xe7705e77U
    struct drv_config_error *v; /* owned: in load order; each load's
                                   errors sorted by line, then column */
    size_t n;                   /* entries of v */
    size_t cap;                 /* allocated entries of v */
    size_t _base;               /* first entry of the current load */
};

/* ----------------------------------------------------------------- API */

/*
 * drv_config_load -- read and check the YAML file at path. On success set
 * *out to a new config (owned by the caller: drv_config_free) and return
 * 0. Otherwise *out is NULL, every error is appended to errs (may be NULL
 * to discard them; call drv_config_errors_init first) and the result is
 * DRV_ECONFIG for a bad file, or -errno when it cannot be read (the error
 * text then names the file: "FILE: cannot read: No such file or
 * directory"). Any thread; no global state.
 */
int drv_config_load(const char *path, struct drv_config **out,
                    struct drv_config_errors *errs);

/*
 * drv_config_load_string -- as drv_config_load for text[0..len), which
 * need not be NUL-terminated; name stands for the file in messages.
 * Returns 0 or DRV_ECONFIG.
 */
int drv_config_load_string(const char *name, const char *text, size_t len,
                           struct drv_config **out,
                           struct drv_config_errors *errs);

/* drv_config_free -- free cfg and everything it owns; NULL does nothing. */
void drv_config_free(struct drv_config *cfg);

/*
 * drv_config_job -- the job type called name, or NULL (also when name is
 * a pipeline's). Borrowed: valid until drv_config_free. One hash lookup,
 * however many job types and pipelines the config holds: the worker asks
 * for every job it fetches.
 */
const struct drv_config_job *drv_config_job(const struct drv_config *cfg,
                                            const char *name);

/* drv_config_pipeline -- the pipeline called name, or NULL (as above). */
const struct drv_config_pipeline *
drv_config_pipeline(const struct drv_config *cfg, const char *name);

/*
 * drv_config_gnode -- the node called name of graph pipeline pl, or NULL;
 * its index into pl->graph in *index (may be NULL). Borrowed as above.
 */
const struct drv_config_gnode *
drv_config_gnode(const struct drv_config_pipeline *pl, const char *name,
                 size_t *index);

/*
 * drv_config_check_queue -- 0 if name can be a queue (non-empty, no '{'
 * or '}', which would break the {Q} hash tag), else -EINVAL with err (may
 * be NULL) saying why. For --queues on the command line.
 */
int drv_config_check_queue(const char *name, struct drv_err *err);

/*
 * drv_config_check_redis_url -- 0 if url starts with redis://, rediss://
 * or unix://, else -EINVAL with err (may be NULL). For --redis.
 */
int drv_config_check_redis_url(const char *url, struct drv_err *err);

/*
 * drv_config_set_redis_url -- a command-line override of redis.url: url
 * replaces it (copied). With redis.sentinel set, a url that names a host
 * means that server: the sentinel settings are dropped; a url without a
 * host (redis:///2) keeps them. redis.cluster likewise (a url with a
 * host or a db other than 0 drops it). Check url with drv_config_check_redis_url
 * first.
 */
void drv_config_set_redis_url(struct drv_config *cfg, const char *url);

/*
 * drv_config_redis_tls -- cfg's redis.tls as the settings pkg/redis
 * takes (out borrows cfg's strings: valid while cfg is).
 */
struct drv_redis_tls;
void drv_config_redis_tls(const struct drv_config *cfg,
                          struct drv_redis_tls *out);

/*
 * drv_config_secret_readable -- 1 when cfg's redis.url (as loaded from
 * the file at path, before any --redis) holds a password and that file
 * may be read by its group or by others; 0 otherwise (also when the file
 * cannot be stat'ed). droverd and drover then warn once at start.
 */
int drv_config_secret_readable(const char *path,
                               const struct drv_config *cfg);

/* drv_hkind_name -- "noop", "echo", ... ("?" when out of range). */
const char *drv_hkind_name(enum drv_hkind kind);

/* drv_config_errors_init -- an empty error list. */
void drv_config_errors_init(struct drv_config_errors *errs);

/* drv_config_errors_fini -- free the errors; the list is empty after. */
void drv_config_errors_fini(struct drv_config_errors *errs);

/* drv_config_errors_print -- write each error's text and a newline. */
void drv_config_errors_print(const struct drv_config_errors *errs, FILE *fp);

#endif
