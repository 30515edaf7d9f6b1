/*
 * config_int.h -- private to pkg/config: the load context, the YAML node
 * helpers (config_yaml.c) and the sections (config.c, config_jobs.c).
 *
 * Every helper that finds a problem reports it through drv__config_report
 * (at a node's start mark, under the current key path) and returns
 * DRV_ECONFIG; the caller carries on with the next key, so one load
 * collects every error of the file. Values are stored only when valid, so
 * a field keeps its default after an error.
 */
#ifndef DROVER_CONFIG_INT_H
#define DROVER_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yaml.h>

#include "drover/config.h"
#include "drover/error.h"

/* Longest user text quoted in a message; longer text is cut with "...". */
#define DRV__CONFIG_QUOTE_MAX 60
/* Buffer for one quoted text: quotes, escapes (4 bytes each), "...". */
#define DRV__CONFIG_QUOTE_BUF (4 * DRV__CONFIG_QUOTE_MAX + 8)

/* The key path being checked, e.g. "jobs.resize.command[1]". */
struct drv__config_path {
    char *s;        /* owned: NUL-terminated */
    size_t len;     /* bytes before the NUL */
    size_t cap;     /* bytes allocated */
};

/* State of one load. */
struct drv__config_ctx {
    unsigned magic;
#define DRV__CONFIG_CTX_MAGIC 0xc7c7c0f1U
    const char *file;               /* borrowed: name used in messages */
    yaml_document_t *doc;           /* borrowed: the parsed document */
    struct drv_config *cfg;         /* borrowed: being filled */
    struct drv_config_errors *errs; /* borrowed: where errors go */
    struct drv__config_path path;   /* current key path */
    const char *text;               /* borrowed: the file's text */
    size_t len;                     /* its bytes */
};

/* What a table-driven field holds. */
enum drv__config_kind {
    DRV__CONFIG_INT,        /* int, plain decimal */
    DRV__CONFIG_DURATION,   /* int64_t ms */
    DRV__CONFIG_SIZE,       /* int64_t bytes */
    DRV__CONFIG_BOOL,       /* bool: true or false */
    DRV__CONFIG_STRING,     /* char *, owned */
    DRV__CONFIG_STRSEQ,     /* char ** NULL-terminated + size_t count */
    DRV__CONFIG_STRMAP,     /* struct drv_config_kv * + size_t count */
    DRV__CONFIG_SPECIAL     /* handled by the section's own code */
};

/* Flags of a field. */
enum {
    DRV__CONFIG_NONEMPTY = 1 << 0,  /* strings (and seq entries) not "" */
    DRV__CONFIG_TEMPLATE = 1 << 1,  /* strings / entries / map values are
                                       {field} templates */
    DRV__CONFIG_REQUIRED = 1 << 2   /* must be present (with its handler) */
};

/*
 * The retry keys of a job type, a pipeline and a graph node, as field
 * table rows: OFF is the table's offset macro and P what comes before
 * the member names (`policy.`, or nothing for a graph node).
 */
#define DRV__CONFIG_RETRY_FIELDS(OFF, P)                                  \
    {.name = "timeout", .kind = DRV__CONFIG_DURATION, .min = 1,          \
     .off = OFF(P timeout_ms)},                                          \
    {.name = "retries", .kind = DRV__CONFIG_INT, .min = 0,               \
     .off = OFF(P retries)},                                             \
    {.name = "backoff", .kind = DRV__CONFIG_DURATION, .min = 0,          \
     .off = OFF(P backoff_ms)},                                          \
    {.name = "backoff_max", .kind = DRV__CONFIG_DURATION, .min = 0,      \
     .off = OFF(P backoff_max_ms)}

/* Extra check of a string: 0, or -EINVAL with err->msg saying why. */
typedef int drv__config_check_fn(const char *s, struct drv_err *err);

/* One key of a mapping section and how to read it. */
struct drv__config_field {
    const char *name;           /* the key */
    enum drv__config_kind kind; /* what it holds */
    size_t off;                 /* offset of the value in the target */
    size_t count_off;           /* STRSEQ/STRMAP: offset of the count */
    int64_t min;                /* INT, DURATION, SIZE: least value */
    unsigned flags;             /* DRV__CONFIG_* */
    unsigned handlers;          /* job keys: mask of 1 << handler kind,
                                   0 = every handler */
    drv__config_check_fn *check;     /* extra check of the string, of
                                        each entry, or of map values */
    const char *key_name;       /* STRMAP: what a key is ("variable
                                   name"); an empty key is an error */
    drv__config_check_fn *key_check; /* STRMAP: check of each key */
};

/* Walks the pairs of a mapping node. */
struct drv__config_iter {
    yaml_node_t *map;           /* borrowed: the mapping */
    yaml_node_pair_t *pair;     /* borrowed: next pair to look at */
};

/* ------------------------------------------------------ config_yaml.c */

void drv__config_path_init(struct drv__config_path *p);
void drv__config_path_fini(struct drv__config_path *p);
/* push ".key" (or "key" at the top) / "[i]"; return the length to pop to */
size_t drv__config_path_push_key(struct drv__config_ctx *c, const char *key);
size_t drv__config_path_push_index(struct drv__config_ctx *c, size_t i);
void drv__config_path_pop(struct drv__config_ctx *c, size_t len);

/* drv__config_report -- add an error at node's start under the current
 * path; returns DRV_ECONFIG. */
int drv__config_report(struct drv__config_ctx *c, const yaml_node_t *node,
                       const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* drv__config_mark_clamp -- a mark past the end of text moved to the
 * end: libyaml ends the stream with a line break of its own, so for a
 * text whose last line has no line break its marks at the end name a
 * line after the last. */
void drv__config_mark_clamp(yaml_mark_t *mark, const char *text,
                            size_t len);

/* drv__config_error_add -- add an error at (line, col) (from 1, or 0 for
 * none) with path (may be ""); keeps errs sorted by place. */
void drv__config_error_add(struct drv_config_errors *errs, const char *file,
                           int line, int col, const char *path,
                           const char *msg);

/* drv__config_quote -- s as a double-quoted, escaped, cut text in buf
 * (DRV__CONFIG_QUOTE_BUF bytes); returns buf. */
char *drv__config_quote(char *buf, const char *s, size_t len);

/* drv__config_node -- the node of id (never NULL for ids libyaml made). */
yaml_node_t *drv__config_node(struct drv__config_ctx *c, int id);

/* drv__config_is_null -- node is a plain `~`, `null` or empty scalar. */
bool drv__config_is_null(const yaml_node_t *node);

/* drv__config_describe -- "a mapping", "a sequence", "null" or the
 * quoted scalar, for "expected X, got Y" messages. */
const char *drv__config_describe(const yaml_node_t *node, char *buf);

/* drv__config_expect_map / _seq -- 0 when node is of that kind, else
 * report "expected a mapping/sequence, got ..." and DRV_ECONFIG. */
int drv__config_expect_map(struct drv__config_ctx *c, yaml_node_t *node);
int drv__config_expect_seq(struct drv__config_ctx *c, yaml_node_t *node);

/* drv__config_scalar -- node's text (borrowed from the document) when it
 * is a non-null scalar without NUL bytes, else report (what = "a string",
 * "a duration", ...) and return NULL. */
const char *drv__config_scalar(struct drv__config_ctx *c, yaml_node_t *node,
                               const char *what);

/*
 * drv__config_iter_init / _next -- walk a mapping's pairs in file order.
 * _next skips (and reports) keys that are not scalars and keys given
 * twice, and pushes the key onto the path: the caller pops it with
 * drv__config_path_pop(c, *mark) after handling the pair. Returns false
 * at the end.
 */
void drv__config_iter_init(struct drv__config_iter *it, yaml_node_t *map);
bool drv__config_iter_next(struct drv__config_ctx *c,
                           struct drv__config_iter *it, const char **key,
                           yaml_node_t **knode, yaml_node_t **vnode,
                           size_t *mark);

/* What drv__config_each_pair calls for each pair; the path names key. */
typedef void drv__config_pair_fn(struct drv__config_ctx *c, const char *key,
                                 yaml_node_t *knode, yaml_node_t *vnode,
                                 void *arg);

/*
 * drv__config_each_pair -- walk mapping node with drv__config_iter_*,
 * calling fn(c, key, knode, vnode, arg) for each pair it yields, with the
 * key pushed onto the path. Returns 0, or DRV_ECONFIG (reported, fn never
 * called) when node is not a mapping.
 */
int drv__config_each_pair(struct drv__config_ctx *c, yaml_node_t *node,
                          drv__config_pair_fn *fn, void *arg);

/* What drv__config_each_field calls for each known key (its field f);
 * the path names the key. */
typedef void drv__config_field_fn(struct drv__config_ctx *c,
                                  const struct drv__config_field *f,
                                  yaml_node_t *knode, yaml_node_t *vnode,
                                  void *arg);

/*
 * drv__config_each_field -- drv__config_each_pair over a mapping whose
 * keys are the fields of table: fn(c, f, knode, vnode, arg) for each key
 * found there; any other key is reported by drv__config_unknown_key
 * (handler_mask). Returns what drv__config_each_pair returns.
 */
int drv__config_each_field(struct drv__config_ctx *c, yaml_node_t *node,
                           const struct drv__config_field *table, size_t n,
                           unsigned handler_mask, drv__config_field_fn *fn,
                           void *arg);

/* drv__config_find_value -- the value of the scalar key called name in
 * mapping map (no report, no path change), or NULL. */
yaml_node_t *drv__config_find_value(struct drv__config_ctx *c,
                                    yaml_node_t *map, const char *name);

/* drv__config_field_find -- the field called key in table, or NULL. */
const struct drv__config_field *
drv__config_field_find(const struct drv__config_field *table, size_t n,
                       const char *key);

/*
 * drv__config_field_set -- read val (the path names its key) as field f
 * into target + f->off; frees a string it replaces. Returns 0 or
 * DRV_ECONFIG (reported; the old value is kept).
 */
int drv__config_field_set(struct drv__config_ctx *c,
                          const struct drv__config_field *f,
                          yaml_node_t *val, void *target);

/*
 * drv__config_unknown_key -- report "unknown key (valid: a, b, ...)" at
 * knode, listing the fields of table allowed for handler mask (0 = all
 * fields). Returns DRV_ECONFIG.
 */
int drv__config_unknown_key(struct drv__config_ctx *c,
                            const yaml_node_t *knode,
                            const struct drv__config_field *table, size_t n,
                            unsigned handler_mask);

/* drv__config_kv_free -- free what a STRMAP holds (drv_strv_free a
 * STRSEQ). */
/* Free what the STRING, STRSEQ and STRMAP fields of table hold in
 * target; they are left dangling (free or zero target after). */
void drv__config_fields_free(const struct drv__config_field *table,
                             size_t n, void *target);
void drv__config_kv_free(struct drv_config_kv *v, size_t n);

/* ------------------------------------------------------ config_jobs.c */

/* drv__config_jobs -- read `jobs:` (node) into c->cfg->jobs. */
void drv__config_jobs(struct drv__config_ctx *c, yaml_node_t *node);

/* drv__config_pipelines -- read `pipelines:`; runs after the jobs. */
void drv__config_pipelines(struct drv__config_ctx *c, yaml_node_t *node);

/* drv__config_job_free / _pipeline_free -- free one entry; NULL is ok. */
void drv__config_job_free(struct drv_config_job *job);
void drv__config_pipeline_free(struct drv_config_pipeline *pl);

/* ------------------------------------------------------ config_graph.c */

/* drv__config_graph -- read `graph:` (node) of pipeline pl; runs after
 * the jobs. */
void drv__config_graph(struct drv__config_ctx *c, yaml_node_t *node,
                       struct drv_config_pipeline *pl);

/* drv__config_graph_free -- free pl's graph nodes. */
void drv__config_graph_free(struct drv_config_pipeline *pl);

/* ------------------------------------------------------ config_names.c */

/* Slots of a new name index (a power of two). */
#define DRV__CONFIG_NAMES_MIN 8

/*
 * One name of the namespace that job types and pipelines share. A good
 * config has one kind under a name; a load that reports "name is already
 * used by a job type" holds both until it frees the config.
 */
struct drv__config_name {
    const char *name;       /* borrowed from its job type or pipeline
                               (freed with the config); NULL: free slot */
    struct drv_config_job *job;           /* borrowed: or NULL */
    struct drv_config_pipeline *pipeline; /* borrowed: or NULL */
};

/* The name index of a config (cfg->_names): a hash table, open
 * addressing with linear probing, at most half full. One allocation. */
struct drv__config_names {
    unsigned magic;
#define DRV__CONFIG_NAMES_MAGIC 0x9a3e51d0U
    size_t cap;                     /* slots: a power of two, >= 2 * n */
    size_t n;                       /* names held */
    struct drv__config_name slots[]; /* cap entries */
};

/* drv__config_names_create / _free -- an empty index of cap slots (a
 * power of two); NULL is ok for _free, which leaves the job types and
 * pipelines alone. */
struct drv__config_names *drv__config_names_create(size_t cap);
void drv__config_names_free(struct drv__config_names *ix);

/* drv__config_names_hash -- FNV-1a of name's bytes; a name goes to slot
 * hash & (cap - 1), or the first free one after it. */
uint64_t drv__config_names_hash(const char *name);

/* drv__config_names_find -- the entry of name, or a free slot (every
 * member NULL) when ix does not hold it. Borrowed until the next put. */
const struct drv__config_name *
drv__config_names_find(const struct drv__config_names *ix, const char *name);

/*
 * drv__config_names_put -- the entry of name in *ixp, made (both kinds
 * NULL) when it is not there yet; the caller sets its kind. name is
 * borrowed for as long as the index lives. When the table would get more
 * than half full, *ixp is replaced by one twice as large (the old one
 * freed): a pointer from an earlier find or put is then stale.
 */
struct drv__config_name *
drv__config_names_put(struct drv__config_names **ixp, const char *name);

/* -------------------------------------------------- config_schedules.c */

/* drv__config_schedules -- read `schedules:`; runs after queues, jobs and
 * pipelines. */
void drv__config_schedules(struct drv__config_ctx *c, yaml_node_t *node);

/* drv__config_schedule_free -- free one entry; NULL is ok. */
void drv__config_schedule_free(struct drv_config_schedule *s);

#endif
