/*
 * config.c -- load the YAML config: the public API, the top level,
 * `redis:`, `worker:` and `queues:`. Job types and pipelines are in
 * config_jobs.c, the index of their names in config_names.c, the node
 * helpers in config_yaml.c.
 *
 * DESIGN
 * libyaml's document API parses the whole file into a node tree (every
 * node with its start mark), so the checks can look at a mapping as a
 * whole: find `handler:` before judging the other keys of a job type, and
 * read `pipelines:` after `jobs:` wherever they stand in the file. A
 * syntax error stops libyaml, so it is the only error of such a file;
 * otherwise the walk goes on after each error and reports all of them,
 * sorted by place. The config is built as the walk goes; when any error
 * was reported it is freed and the caller gets only the errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "drover/common.h"
#include "drover/config.h"
#include "drover/error.h"
#include "drover/parse.h"
#include "drover/redis.h"
#include "drover/redis_cluster.h"
#include "drover/redis_sentinel.h"

#include "config_int.h"

/* Chunk size of reads of the config file. */
#define READ_CHUNK 65536
/* Largest TCP port of worker.metrics. */
#define PORT_MAX 65535

static const char *const handler_names[DRV_HKIND_COUNT] = {
#define HKIND_NAME(kind, name) [DRV_HKIND_##kind] = #name,
    DRV_HKIND_LIST(HKIND_NAME)
#undef HKIND_NAME
};

/* ------------------------------------------------------------ checks */

int
drv_config_check_queue(const char *name, struct drv_err *err)
{
    if (name == NULL || name[0] == '\0')
        return drv_err_set(err, -EINVAL, "queue name must not be empty");
    if (strpbrk(name, "{}") != NULL)
        return drv_err_set(err, -EINVAL,
                           "queue name must not contain '{' or '}'");
    return 0;
}

int
drv_config_check_redis_url(const char *url, struct drv_err *err)
{
    if (url != NULL && (strncmp(url, "redis://", strlen("redis://")) == 0 ||
                        strncmp(url, "rediss://", strlen("rediss://")) == 0 ||
                        strncmp(url, "unix://", strlen("unix://")) == 0))
        return 0;
    return drv_err_set(err, -EINVAL,
                       "must start with redis://, rediss:// or unix://");
}

int
drv_config_secret_readable(const char *path, const struct drv_config *cfg)
{
    struct stat st;
    size_t n;
    char *red;
    int has_password;

    if (path == NULL || cfg == NULL || cfg->redis.url == NULL)
        return 0;
    /* redaction changes the URL exactly when it holds a password */
    n = strlen(cfg->redis.url) + 16;
    red = drv_xmalloc(n);
    drv_redis_url_redact(cfg->redis.url, red, n);
    has_password = strcmp(red, cfg->redis.url) != 0;
    free(red);
    if (!has_password || stat(path, &st) < 0)
        return 0;
    return (st.st_mode & (S_IRGRP | S_IROTH)) != 0;
}

static int
check_prefix(const char *s, struct drv_err *err)
{
    if (strpbrk(s, "{}") != NULL)
        return drv_err_set(err, -EINVAL, "must not contain '{' or '}'");
    return 0;
}

/* worker.metrics: HOST:PORT, HOST may be [v6]; PORT 1..65535. */
static int
check_metrics(const char *s, struct drv_err *err)
{
    const char *colon = strrchr(s, ':');
    int64_t port = 0;

    if (colon == NULL || colon == s ||
        drv_parse_int(colon + 1, 1, PORT_MAX, &port) < 0)
        return drv_err_set(err, -EINVAL,
                           "must be HOST:PORT, e.g. 127.0.0.1:9464");
    return 0;
}

const char *
drv_hkind_name(enum drv_hkind kind)
{
    if ((unsigned)kind >= DRV_HKIND_COUNT)
        return "?";
    return handler_names[kind];
}

/* ------------------------------------------------------------ errors */

void
drv_config_errors_init(struct drv_config_errors *errs)
{
    memset(errs, 0, sizeof *errs);
    errs->magic = DRV_CONFIG_ERRORS_MAGIC;
}

void
drv_config_errors_fini(struct drv_config_errors *errs)
{
    size_t i;

    DRV_CHECK_OBJ(errs, DRV_CONFIG_ERRORS_MAGIC);
    for (i = 0; i < errs->n; i++) {
        free(errs->v[i].path);
        free(errs->v[i].msg);
        free(errs->v[i].text);
    }
    free(errs->v);
    drv_config_errors_init(errs); /* empty, as new */
}

void
drv_config_errors_print(const struct drv_config_errors *errs, FILE *fp)
{
    size_t i;

    DRV_CHECK_OBJ(errs, DRV_CONFIG_ERRORS_MAGIC);
    for (i = 0; i < errs->n; i++)
        fprintf(fp, "%s\n", errs->v[i].text);
}

/* ------------------------------------------------------------- redis */

static const struct drv__config_field redis_fields[] = {
    {.name = "url", .kind = DRV__CONFIG_STRING,
     .off = offsetof(struct drv_config_redis, url),
     .flags = DRV__CONFIG_NONEMPTY, .check = drv_config_check_redis_url},
    {.name = "prefix", .kind = DRV__CONFIG_STRING,
     .off = offsetof(struct drv_config_redis, prefix),
     .flags = DRV__CONFIG_NONEMPTY, .check = check_prefix},
    {.name = "sentinel", .kind = DRV__CONFIG_SPECIAL},
    {.name = "cluster", .kind = DRV__CONFIG_SPECIAL},
    {.name = "tls", .kind = DRV__CONFIG_SPECIAL},
};

/* redis.cluster.nodes[i]: HOST[:PORT] or [IPv6][:PORT]. */
static int
check_cluster_node(const char *s, struct drv_err *err)
{
    struct drv_redis_sentinel_addr a;

    return drv_redis_cluster_addr_parse(s, &a, err);
}

static const struct drv__config_field cluster_fields[] = {
    {.name = "nodes", .kind = DRV__CONFIG_STRSEQ,
     .off = offsetof(struct drv_config_cluster, nodes),
     .count_off = offsetof(struct drv_config_cluster, nnodes),
     .flags = DRV__CONFIG_NONEMPTY | DRV__CONFIG_REQUIRED,
     .check = check_cluster_node},
};

/* redis.sentinel.addrs[i]: HOST[:PORT] or [IPv6][:PORT]. */
static int
check_sentinel_addr(const char *s, struct drv_err *err)
{
    struct drv_redis_sentinel_addr a;

    return drv_redis_sentinel_addr_parse(s, &a, err);
}

/* redis.sentinel.master: one word (it goes into SENTINEL commands and is
 * matched against +switch-master messages, which split on spaces). */
static int
check_master_name(const char *s, struct drv_err *err)
{
    if (strlen(s) >= DRV_REDIS_SENTINEL_NAME_MAX)
        return drv_err_set(err, -EINVAL, "must be shorter than %d bytes",
                           DRV_REDIS_SENTINEL_NAME_MAX);
    if (strpbrk(s, " \t\r\n") != NULL)
        return drv_err_set(err, -EINVAL, "must not contain white space");
    return 0;
}

static const struct drv__config_field sentinel_fields[] = {
    {.name = "master", .kind = DRV__CONFIG_STRING,
     .off = offsetof(struct drv_config_sentinel, master),
     .flags = DRV__CONFIG_NONEMPTY | DRV__CONFIG_REQUIRED,
     .check = check_master_name},
    {.name = "addrs", .kind = DRV__CONFIG_STRSEQ,
     .off = offsetof(struct drv_config_sentinel, addrs),
     .count_off = offsetof(struct drv_config_sentinel, naddrs),
     .flags = DRV__CONFIG_NONEMPTY | DRV__CONFIG_REQUIRED,
     .check = check_sentinel_addr},
    {.name = "user", .kind = DRV__CONFIG_STRING,
     .off = offsetof(struct drv_config_sentinel, user),
     .flags = DRV__CONFIG_NONEMPTY},
};

#define TLS_OFF(m) offsetof(struct drv_config_redis_tls, m)

/* A row of tls_fields: key KEY, a string that must not be empty, in
 * member M. */
#define TLS_STRING(KEY, M)                                               \
    {.name = KEY, .kind = DRV__CONFIG_STRING, .off = TLS_OFF(M),         \
     .flags = DRV__CONFIG_NONEMPTY}

static const struct drv__config_field tls_fields[] = {
    TLS_STRING("ca_file", ca_file),
    TLS_STRING("cert_file", cert_file),
    TLS_STRING("key_file", key_file),
    TLS_STRING("server_name", server_name),
    {.name = "verify", .kind = DRV__CONFIG_BOOL, .off = TLS_OFF(verify)},
};

#define WORKER_OFF(m) offsetof(struct drv_config_worker, m)

/* A row of worker_fields: key KEY, a number of kind DRV__CONFIG_##KIND
 * that must be at least 1, in member M. */
#define WORKER_NUM(KEY, KIND, M)                                         \
    {.name = KEY, .kind = DRV__CONFIG_##KIND, .min = 1,                  \
     .off = WORKER_OFF(M)}

static const struct drv__config_field worker_fields[] = {
    WORKER_NUM("concurrency", INT, concurrency),
    WORKER_NUM("batch", INT, batch),
    WORKER_NUM("threads", INT, threads),
    WORKER_NUM("shutdown_timeout", DURATION, shutdown_timeout_ms),
    WORKER_NUM("visibility_timeout", DURATION, visibility_timeout_ms),
    WORKER_NUM("max_deliveries", INT, max_deliveries),
    WORKER_NUM("max_job_bytes", SIZE, max_job_bytes),
    WORKER_NUM("dead_max", INT, dead_max),
    WORKER_NUM("dead_max_age", DURATION, dead_max_age_ms),
    WORKER_NUM("http_idle_timeout", DURATION, http_idle_timeout_ms),
    {.name = "metrics", .kind = DRV__CONFIG_STRING,
     .off = WORKER_OFF(metrics),
     .flags = DRV__CONFIG_NONEMPTY, .check = check_metrics},
};

static void
set_field(struct drv__config_ctx *c, const struct drv__config_field *f,
          yaml_node_t *knode DRV_UNUSED, yaml_node_t *vnode, void *target)
{
    drv__config_field_set(c, f, vnode, target);
}

/* Read a mapping whose keys are all plain fields of table. */
static void
read_fields(struct drv__config_ctx *c, yaml_node_t *node,
            const struct drv__config_field *table, size_t n, void *target)
{
    drv__config_each_field(c, node, table, n, 0, set_field, target);
}

/* A part of redis: kept only when whole (sentinel, cluster): its table,
 * and where it stands in struct drv_config_redis. */
struct redis_part {
    const struct drv__config_field *table;
    size_t n;
    size_t off;
    size_t size;
};

static const struct redis_part sentinel_part = {
    sentinel_fields, DRV_ARRAY_LEN(sentinel_fields),
    offsetof(struct drv_config_redis, sentinel),
    sizeof(struct drv_config_sentinel),
};

static const struct redis_part cluster_part = {
    cluster_fields, DRV_ARRAY_LEN(cluster_fields),
    offsetof(struct drv_config_redis, cluster),
    sizeof(struct drv_config_cluster),
};

static void *
part_target(struct drv_config_redis *red, const struct redis_part *s)
{
    return (char *)red + s->off;
}

/* Free what the part holds; it is empty after. */
static void
part_clear(struct drv_config_redis *red, const struct redis_part *s)
{
    void *target = part_target(red, s);

    drv__config_fields_free(s->table, s->n, target);
    memset(target, 0, s->size);
}

/* Missing required keys of table in the mapping vnode (knode its key). */
static void
check_required(struct drv__config_ctx *c, yaml_node_t *knode,
               yaml_node_t *vnode, const struct drv__config_field *table,
               size_t n)
{
    size_t i;

    if (vnode->type != YAML_MAPPING_NODE)
        return;
    for (i = 0; i < n; i++)
        if ((table[i].flags & DRV__CONFIG_REQUIRED) &&
            drv__config_find_value(c, vnode, table[i].name) == NULL)
            drv__config_report(c, knode, "missing required key \"%s\"",
                               table[i].name);
}

/* `redis.sentinel:` or `redis.cluster:` (vnode; knode is its key): the
 * key with nothing is no part; any error in it clears it all. */
static void
read_part(struct drv__config_ctx *c, yaml_node_t *knode,
          yaml_node_t *vnode, const struct redis_part *s)
{
    struct drv_config_redis *red = &c->cfg->redis;
    size_t before = c->errs->n;

    if (drv__config_is_null(vnode))
        return;
    read_fields(c, vnode, s->table, s->n, part_target(red, s));
    check_required(c, knode, vnode, s->table, s->n);
    if (c->errs->n > before)
        part_clear(red, s);
}

/* `redis:`: plain fields, and `tls:` (a mapping of its own). */
struct redis_read {
    yaml_node_t *tls_key;       /* borrowed: the `tls` key, if present */
};

static void
redis_pair(struct drv__config_ctx *c, const struct drv__config_field *f,
           yaml_node_t *knode, yaml_node_t *vnode, void *arg)
{
    struct redis_read *rr = arg;
    struct drv_config_redis *red = &c->cfg->redis;

    if (strcmp(f->name, "sentinel") == 0) {
        read_part(c, knode, vnode, &sentinel_part);
    } else if (strcmp(f->name, "cluster") == 0) {
        read_part(c, knode, vnode, &cluster_part);
    } else if (f->kind == DRV__CONFIG_SPECIAL) {
        rr->tls_key = knode;
        if (!drv__config_is_null(vnode))
            read_fields(c, vnode, tls_fields, DRV_ARRAY_LEN(tls_fields),
                        &red->tls);
    } else {
        drv__config_field_set(c, f, vnode, red);
    }
}

/*
 * With a sentinel or a cluster the URL carries only the scheme, the user
 * and the db (redis:///0; a cluster has db 0 only): a host there is an
 * error, and the default URL (which names 127.0.0.1) becomes "redis:///0".
 * The two exclude each other.
 */
static void
check_hostless_url(struct drv__config_ctx *c, yaml_node_t *node)
{
    struct drv_config_redis *r = &c->cfg->redis;
    yaml_node_t *url = NULL;
    yaml_node_t *sn = NULL;
    yaml_node_t *cn = NULL;
    struct drv_err err;
    size_t mark;
    int rc;

    /* the URL is judged even when the sections have errors */
    sn = drv__config_find_value(c, node, "sentinel");
    if (sn != NULL && drv__config_is_null(sn))
        sn = NULL;
    cn = drv__config_find_value(c, node, "cluster");
    if (cn != NULL && drv__config_is_null(cn))
        cn = NULL;
    if (sn == NULL && cn == NULL)
        return;
    if (sn != NULL && cn != NULL) {
        mark = drv__config_path_push_key(c, "cluster");
        drv__config_report(c, cn, "redis.sentinel and redis.cluster "
                           "exclude each other: keep one");
        drv__config_path_pop(c, mark);
        part_clear(r, &cluster_part);
    }
    url = drv__config_find_value(c, node, "url");
    if (url == NULL) {
        free(r->url);
        r->url = drv_xstrdup("redis:///0");
        return;
    }
    /* a URL refused by its own check was not stored: nothing to add */
    if (url->type != YAML_SCALAR_NODE ||
        strcmp((const char *)url->data.scalar.value, r->url) != 0)
        return;
    drv_err_clear(&err);
    if (sn != NULL)
        rc = drv_redis_sentinel_url_check(r->url, &err);
    else
        rc = drv_redis_cluster_url_check(r->url, &err);
    if (rc < 0) {
        mark = drv__config_path_push_key(c, "url");
        drv__config_report(c, url, "%s", err.msg);
        drv__config_path_pop(c, mark);
    }
}

static void
read_redis(struct drv__config_ctx *c, yaml_node_t *node)
{
    struct drv_config_redis_tls *t = &c->cfg->redis.tls;
    struct redis_read rr = {NULL};
    size_t mark;

    if (drv__config_each_field(c, node, redis_fields,
                               DRV_ARRAY_LEN(redis_fields), 0, redis_pair,
                               &rr) < 0)
        return;
    check_hostless_url(c, node);
    if (rr.tls_key == NULL)
        return;
    mark = drv__config_path_push_key(c, "tls");
    if (strncmp(c->cfg->redis.url, "rediss://", strlen("rediss://")) != 0)
        drv__config_report(c, rr.tls_key, "TLS settings need a rediss:// "
                           "url (redis.url is not one)");
    else if (t->key_file != NULL && t->cert_file == NULL)
        drv__config_report(c, rr.tls_key, "key_file needs cert_file");
    drv__config_path_pop(c, mark);
}

void
drv_config_redis_tls(const struct drv_config *cfg, struct drv_redis_tls *out)
{
    const struct drv_config_redis_tls *t = &cfg->redis.tls;

    DRV_CHECK_OBJ(cfg, DRV_CONFIG_MAGIC);
    memset(out, 0, sizeof *out);
    out->ca_file = t->ca_file;
    out->cert_file = t->cert_file;
    out->key_file = t->key_file;
    out->server_name = t->server_name;
    out->no_verify = !t->verify;
}

/* ------------------------------------------------------------ queues */

/* A weight of the map form of queues: a positive integer. */
static const struct drv__config_field weight_field = {
    .name = "weight", .kind = DRV__CONFIG_INT, .min = 1,
};

/* The queues read so far: names and (map form) weights. */
struct queues_read {
    char **names;       /* owned: NULL-terminated */
    int *weights;       /* owned: map form only, else NULL */
    size_t n;
    int bad;            /* an error was reported */
};

/* Check name (at node e) and add it to r unless it is bad or listed
 * already; 0 when added. */
static int
queue_add(struct drv__config_ctx *c, yaml_node_t *e, const char *name,
          struct queues_read *r)
{
    char buf[DRV__CONFIG_QUOTE_BUF];
    struct drv_err err;
    size_t j;

    drv_err_clear(&err);
    if (drv_config_check_queue(name, &err) < 0) {
        drv__config_report(c, e, "%s", err.msg);
        r->bad = 1;
        return -1;
    }
    for (j = 0; j < r->n && strcmp(r->names[j], name) != 0; j++)
        ;
    if (j < r->n) {
        drv__config_report(c, e, "duplicate queue %s",
                           drv__config_quote(buf, name, strlen(name)));
        r->bad = 1;
        return -1;
    }
    r->names[r->n++] = drv_xstrdup(name);
    return 0;
}

/* One `name: weight` of the map form. */
static void
queue_weight_pair(struct drv__config_ctx *c, const char *key,
                  yaml_node_t *knode, yaml_node_t *vnode, void *arg)
{
    struct queues_read *r = arg;
    int weight = 0;

    if (drv__config_field_set(c, &weight_field, vnode, &weight) < 0)
        r->bad = 1;
    if (queue_add(c, knode, key, r) == 0)
        r->weights[r->n - 1] = weight;
}

/* The map form, `{critical: 6, default: 3, low: 1}`: weighted queues. */
static void
read_queue_weights(struct drv__config_ctx *c, yaml_node_t *node,
                   struct queues_read *r)
{
    size_t max = (size_t)(node->data.mapping.pairs.top -
                          node->data.mapping.pairs.start);

    if (max == 0) {
        drv__config_report(c, node, "must list at least one queue");
        r->bad = 1;
        return;
    }
    r->names = drv_xcalloc(max + 1, sizeof *r->names);
    r->weights = drv_xcalloc(max, sizeof *r->weights);
    drv__config_each_pair(c, node, queue_weight_pair, r);
}

/* The list form, `[default, low]`: strict priority. */
static void
read_queue_list(struct drv__config_ctx *c, yaml_node_t *node,
                struct queues_read *r)
{
    yaml_node_item_t *item;
    size_t i = 0;

    if (node->data.sequence.items.start == node->data.sequence.items.top) {
        drv__config_report(c, node, "must list at least one queue");
        r->bad = 1;
        return;
    }
    r->names = drv_xcalloc((size_t)(node->data.sequence.items.top -
                                    node->data.sequence.items.start) + 1,
                           sizeof *r->names);
    for (item = node->data.sequence.items.start;
         item < node->data.sequence.items.top; item++, i++) {
        yaml_node_t *e = drv__config_node(c, *item);
        size_t old = drv__config_path_push_index(c, i);
        const char *s = drv__config_scalar(c, e, "a queue name");

        if (s == NULL)
            r->bad = 1;
        else
            queue_add(c, e, s, r);
        drv__config_path_pop(c, old);
    }
}

/* `queues:`, a list (by priority) or a map (queue: weight). */
static void
read_queues(struct drv__config_ctx *c, yaml_node_t *node)
{
    struct drv_config *cfg = c->cfg;
    struct queues_read r = {NULL, NULL, 0, 0};
    char buf[DRV__CONFIG_QUOTE_BUF];

    if (node->type == YAML_MAPPING_NODE) {
        read_queue_weights(c, node, &r);
    } else if (node->type == YAML_SEQUENCE_NODE) {
        read_queue_list(c, node, &r);
    } else {
        drv__config_report(c, node, "expected a sequence (by priority) or "
                           "a mapping (queue: weight), got %s",
                           drv__config_describe(node, buf));
        return;
    }
    if (r.bad || r.n == 0) {
        drv_strv_free(r.names, r.n);
        free(r.weights);
        return;
    }
    drv_strv_free(cfg->queues, cfg->nqueues);
    free(cfg->queue_weights);
    cfg->queues = r.names;
    cfg->queue_weights = r.weights;
    cfg->nqueues = r.n;
}

/* ------------------------------------------------------------- top */

enum section {
    SEC_REDIS,
    SEC_WORKER,
    SEC_QUEUES,
    SEC_JOBS,
    SEC_PIPELINES,
    SEC_SCHEDULES,
    SEC_COUNT
};

static const char *const section_names[SEC_COUNT] = {
    [SEC_REDIS] = "redis",
    [SEC_WORKER] = "worker",
    [SEC_QUEUES] = "queues",
    [SEC_JOBS] = "jobs",
    [SEC_PIPELINES] = "pipelines",
    [SEC_SCHEDULES] = "schedules",
};

/* Note a top-level key's section node in arg (yaml_node_t *[SEC_COUNT]). */
static void
root_pair(struct drv__config_ctx *c, const char *key, yaml_node_t *knode,
          yaml_node_t *vnode, void *arg)
{
    yaml_node_t **sections = arg;
    int i;

    for (i = 0; i < SEC_COUNT; i++)
        if (strcmp(key, section_names[i]) == 0)
            break;
    if (i == SEC_COUNT)
        drv__config_report(c, knode, "unknown key (valid: redis, "
                           "worker, queues, jobs, pipelines, schedules)");
    else if (!drv__config_is_null(vnode))
        sections[i] = vnode;    /* null = absent: the defaults hold */
}

static void
read_root(struct drv__config_ctx *c, yaml_node_t *root)
{
    yaml_node_t *sections[SEC_COUNT] = {NULL};
    size_t mark = 0;
    int i;

    if (root->type != YAML_MAPPING_NODE) {
        char buf[DRV__CONFIG_QUOTE_BUF];

        drv__config_report(c, root, "expected a mapping at the top, got %s",
                           drv__config_describe(root, buf));
        return;
    }
    drv__config_each_pair(c, root, root_pair, sections);

    /* fixed order: pipelines need every job type read first, schedules
     * every queue, job type and pipeline */
    for (i = 0; i < SEC_COUNT; i++) {
        if (sections[i] == NULL)
            continue;
        mark = drv__config_path_push_key(c, section_names[i]);
        switch (i) {
        case SEC_REDIS:
            read_redis(c, sections[i]);
            break;
        case SEC_WORKER:
            read_fields(c, sections[i], worker_fields,
                        DRV_ARRAY_LEN(worker_fields), &c->cfg->worker);
            break;
        case SEC_QUEUES:
            read_queues(c, sections[i]);
            break;
        case SEC_JOBS:
            drv__config_jobs(c, sections[i]);
            break;
        case SEC_PIPELINES:
            drv__config_pipelines(c, sections[i]);
            break;
        default:
            drv__config_schedules(c, sections[i]);
            break;
        }
        drv__config_path_pop(c, mark);
    }
}

/* ---------------------------------------------------------- lifecycle */

static struct drv_config *
config_create(const char *name)
{
    struct drv_config *cfg = NULL;
    struct drv_config_worker *w = NULL;

    DRV_ALLOC_OBJ(cfg, DRV_CONFIG_MAGIC);
    cfg->file = drv_xstrdup(name);
    cfg->redis.url = drv_xstrdup(DRV_CONFIG_REDIS_URL);
    cfg->redis.prefix = drv_xstrdup(DRV_CONFIG_REDIS_PREFIX);
    cfg->redis.tls.verify = true;
    w = &cfg->worker;
    w->concurrency = DRV_CONFIG_CONCURRENCY;
    w->batch = DRV_CONFIG_BATCH;
    w->threads = DRV_CONFIG_THREADS;
    w->shutdown_timeout_ms = DRV_CONFIG_SHUTDOWN_TIMEOUT_MS;
    w->visibility_timeout_ms = DRV_CONFIG_VISIBILITY_TIMEOUT_MS;
    w->max_deliveries = DRV_CONFIG_MAX_DELIVERIES;
    w->max_job_bytes = DRV_CONFIG_MAX_JOB_BYTES;
    w->dead_max = DRV_CONFIG_DEAD_MAX;
    w->dead_max_age_ms = DRV_CONFIG_DEAD_MAX_AGE_MS;
    w->http_idle_timeout_ms = DRV_CONFIG_HTTP_IDLE_TIMEOUT_MS;
    w->metrics = NULL;
    cfg->queues = drv_xcalloc(2, sizeof *cfg->queues);
    cfg->queues[0] = drv_xstrdup(DRV_CONFIG_QUEUE);
    cfg->nqueues = 1;
    cfg->_names = drv__config_names_create(DRV__CONFIG_NAMES_MIN);
    return cfg;
}

void
drv_config_set_redis_url(struct drv_config *cfg, const char *url)
{
    DRV_CHECK_OBJ(cfg, DRV_CONFIG_MAGIC);
    free(cfg->redis.url);
    cfg->redis.url = drv_xstrdup(url);
    if (cfg->redis.sentinel.master != NULL &&
        drv_redis_sentinel_url_check(url, NULL) < 0)
        part_clear(&cfg->redis, &sentinel_part);
    if (cfg->redis.cluster.nnodes > 0 &&
        drv_redis_cluster_url_check(url, NULL) < 0)
        part_clear(&cfg->redis, &cluster_part);
}

void
drv_config_free(struct drv_config *cfg)
{
    size_t i;

    if (DRV_NO_OBJ(cfg, DRV_CONFIG_MAGIC))
        return;
    free(cfg->file);
    drv__config_fields_free(redis_fields, DRV_ARRAY_LEN(redis_fields),
                            &cfg->redis);
    drv__config_fields_free(tls_fields, DRV_ARRAY_LEN(tls_fields),
                            &cfg->redis.tls);
    part_clear(&cfg->redis, &sentinel_part);
    part_clear(&cfg->redis, &cluster_part);
    drv__config_fields_free(worker_fields, DRV_ARRAY_LEN(worker_fields),
                            &cfg->worker);
    drv_strv_free(cfg->queues, cfg->nqueues);
    free(cfg->queue_weights);
    drv__config_names_free(cfg->_names);
    for (i = 0; i < cfg->njobs; i++)
        drv__config_job_free(cfg->jobs[i]);
    free(cfg->jobs);
    for (i = 0; i < cfg->npipelines; i++)
        drv__config_pipeline_free(cfg->pipelines[i]);
    free(cfg->pipelines);
    for (i = 0; i < cfg->nschedules; i++)
        drv__config_schedule_free(cfg->schedules[i]);
    free(cfg->schedules);
    DRV_FREE_OBJ(cfg);
}

const struct drv_config_job *
drv_config_job(const struct drv_config *cfg, const char *name)
{
    DRV_CHECK_OBJ(cfg, DRV_CONFIG_MAGIC);
    return drv__config_names_find(cfg->_names, name)->job;
}

const struct drv_config_pipeline *
drv_config_pipeline(const struct drv_config *cfg, const char *name)
{
    DRV_CHECK_OBJ(cfg, DRV_CONFIG_MAGIC);
    return drv__config_names_find(cfg->_names, name)->pipeline;
}

/* --------------------------------------------------------------- load */

/* Report libyaml's error: one place, no key path. */
static void
report_syntax(struct drv__config_ctx *c, const yaml_parser_t *parser,
              const char *text, size_t len)
{
    yaml_mark_t mark = parser->problem_mark;
    char msg[DRV_ERR_MSG_MAX];
    const char *problem = parser->problem ? parser->problem : "error";

    if (parser->error == YAML_MEMORY_ERROR) {
        fprintf(stderr, "level=error msg=\"out of memory\" in=libyaml\n");
        abort();
    }
    /* a reader error (bad encoding) carries a byte offset, not a mark */
    if (parser->error == YAML_READER_ERROR) {
        size_t i;

        memset(&mark, 0, sizeof mark);
        for (i = 0; i < parser->problem_offset && i < len; i++) {
            if (text[i] == '\n') {
                mark.line++;
                mark.column = 0;
            } else {
                mark.column++;
            }
        }
    }
    drv__config_mark_clamp(&mark, text, len);
    if (parser->context != NULL)
        snprintf(msg, sizeof msg, "YAML syntax error: %s (%s at line %d, "
                 "column %d)", problem, parser->context,
                 (int)parser->context_mark.line + 1,
                 (int)parser->context_mark.column + 1);
    else
        snprintf(msg, sizeof msg, "YAML syntax error: %s", problem);
    drv__config_error_add(c->errs, c->file, (int)mark.line + 1,
                          (int)mark.column + 1, "", msg);
}

/* Parse the text and walk the first document; report a second one. */
static void
parse(struct drv__config_ctx *c, const char *text, size_t len)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_document_t extra;
    yaml_node_t *root = NULL;

    DRV_AN(yaml_parser_initialize(&parser));
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        report_syntax(c, &parser, text, len);
        yaml_parser_delete(&parser);
        return;
    }
    c->doc = &doc;
    root = yaml_document_get_root_node(&doc);
    if (root != NULL) {
        read_root(c, root);
        /* a second document would be ignored silently: say so */
        if (!yaml_parser_load(&parser, &extra)) {
            report_syntax(c, &parser, text, len);
        } else {
            yaml_node_t *r2 = yaml_document_get_root_node(&extra);

            if (r2 != NULL)
                drv__config_report(c, r2, "only one YAML document is "
                                   "allowed in a config file");
            yaml_document_delete(&extra);
        }
    }
    c->doc = NULL;
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
}

int
drv_config_load_string(const char *name, const char *text, size_t len,
                       struct drv_config **out,
                       struct drv_config_errors *errs)
{
    struct drv_config_errors local;
    struct drv__config_ctx c;
    size_t before;
    int rc = 0;

    *out = NULL;
    drv_config_errors_init(&local);
    if (errs == NULL)
        errs = &local;
    DRV_CHECK_OBJ(errs, DRV_CONFIG_ERRORS_MAGIC);
    before = errs->n;
    errs->_base = before;       /* sort this load's errors among themselves */

    memset(&c, 0, sizeof c);
    c.magic = DRV__CONFIG_CTX_MAGIC;
    c.file = name;
    c.cfg = config_create(name);
    c.errs = errs;
    c.text = text;
    c.len = len;
    drv__config_path_init(&c.path);

    parse(&c, text, len);

    drv__config_path_fini(&c.path);
    if (errs->n > before) {
        drv_config_free(c.cfg);
        rc = DRV_ECONFIG;
    } else {
        *out = c.cfg;
    }
    c.magic = 0;
    drv_config_errors_fini(&local);
    return rc;
}

/* Read all of path into a new buffer; 0 or -errno. */
static int
read_file(const char *path, char **text, size_t *len)
{
    struct stat st;
    char *buf = NULL;
    size_t n = 0;
    size_t cap = 0;
    int fd = -1;
    int rc = 0;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        rc = -EISDIR;
        goto out;
    }
    for (;;) {
        ssize_t r;

        if (cap - n < READ_CHUNK) {
            cap += READ_CHUNK;
            buf = drv_xrealloc(buf, cap);
        }
        r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > DRV_CONFIG_FILE_MAX) {
            rc = -EFBIG;
            goto out;
        }
    }
    *text = buf;
    *len = n;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

int
drv_config_load(const char *path, struct drv_config **out,
                struct drv_config_errors *errs)
{
    char msg[DRV_ERR_MSG_MAX];
    char *text = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    rc = read_file(path, &text, &len);
    if (rc < 0) {
        if (errs != NULL) {
            DRV_CHECK_OBJ(errs, DRV_CONFIG_ERRORS_MAGIC);
            errs->_base = errs->n;
            snprintf(msg, sizeof msg, "cannot read: %s", drv_strerror(rc));
            drv__config_error_add(errs, path, 0, 0, "", msg);
        }
        return rc;
    }
    rc = drv_config_load_string(path, text, len, out, errs);
    free(text);
    return rc;
}
