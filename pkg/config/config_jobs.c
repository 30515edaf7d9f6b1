/*
 * config_jobs.c -- `jobs:` (job types) and `pipelines:` of the config.
 *
 * Which keys a job type may have depends on its handler, so each job
 * mapping is read in two passes: the first finds `handler:`, the second
 * reads the other keys and rejects those of another handler. Pipelines
 * are read after every job type, so steps resolve to job pointers at once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "drover/common.h"
#include "drover/config.h"
#include "drover/error.h"
#include "drover/parse.h"

#include "config_int.h"

/* Room for "handlers exec and http" in a message. */
#define HANDLER_LIST_MAX 128

#define HMASK(k) (1u << (DRV_HKIND_##k))

/* ------------------------------------------------------------- checks */

/* 0 when s holds none of the characters of set; else -EINVAL saying
 * msg. */
static int
check_none_of(const char *s, const char *set, const char *msg,
              struct drv_err *err)
{
    return strpbrk(s, set) == NULL ? 0 : drv_err_set(err, -EINVAL, "%s",
                                                     msg);
}

/* env: a variable name (not empty: see .key_name): no '='. */
static int
check_env_name(const char *s, struct drv_err *err)
{
    return check_none_of(s, "=", "variable name must not contain '='", err);
}

static int
check_header_name(const char *s, struct drv_err *err)
{
    if (!drv_parse_is_token(s))
        return drv_err_set(err, -EINVAL,
                           "header name must be a token (letters, "
                           "digits, !#$%%&'*+-.^_`|~)");
    return 0;
}

static int
check_header_value(const char *s, struct drv_err *err)
{
    return check_none_of(s, "\r\n",
                         "header value must not contain a line break", err);
}

/* method: an upper-case token such as GET, POST or PURGE. */
static int
check_method(const char *s, struct drv_err *err)
{
    char buf[DRV__CONFIG_QUOTE_BUF];
    const char *p;

    for (p = s; *p != '\0'; p++)
        if (!(*p >= 'A' && *p <= 'Z'))
            break;
    if (s[0] != '\0' && *p == '\0')
        return 0;
    return drv_err_set(err, -EINVAL, "%s is not an HTTP method (use GET, "
                       "POST, PUT, PATCH, DELETE, HEAD)",
                       drv__config_quote(buf, s, strlen(s)));
}

static int
check_http_url(const char *s, struct drv_err *err)
{
    if (strncasecmp(s, "http://", strlen("http://")) == 0 ||
        strncasecmp(s, "https://", strlen("https://")) == 0)
        return 0;
    return drv_err_set(err, -EINVAL, "must start with http:// or https://");
}

/* rate: N/s, N/m or N/h with N a positive integer. */
static int
parse_rate(const char *s, int *n, int64_t *period_ms)
{
    const char *slash = strchr(s, '/');
    uint64_t v = 0;

    if (slash == NULL || slash == s ||
        drv_parse_uint(s, (size_t)(slash - s), DRV_CONFIG_RATE_MAX, &v) < 0
        || v == 0)
        return -EINVAL;
    if (strcmp(slash + 1, "s") == 0)
        *period_ms = 1000;
    else if (strcmp(slash + 1, "m") == 0)
        *period_ms = 60000;
    else if (strcmp(slash + 1, "h") == 0)
        *period_ms = 3600000;
    else
        return -EINVAL;
    *n = (int)v;
    return 0;
}

static int
check_rate(const char *s, struct drv_err *err)
{
    char buf[DRV__CONFIG_QUOTE_BUF];
    int64_t period;
    int n;

    if (parse_rate(s, &n, &period) == 0)
        return 0;
    return drv_err_set(err, -EINVAL, "%s is not a rate (use N/s, N/m or "
                       "N/h, N from 1 to %d)",
                       drv__config_quote(buf, s, strlen(s)),
                       DRV_CONFIG_RATE_MAX);
}

/* limit_key: exactly one field, written {FIELD}. */
static int
check_limit_key(const char *s, struct drv_err *err)
{
    size_t n = strlen(s);

    if (n >= 3 && s[0] == '{' && s[n - 1] == '}' &&
        strcspn(s + 1, "{}") == n - 2)
        return 0;
    return drv_err_set(err, -EINVAL, "must name one job field, written "
                       "{FIELD}");
}

/* The defaults of a job type's and a pipeline's policy. */
static void
policy_defaults(struct drv_config_policy *p)
{
    p->timeout_ms = DRV_CONFIG_JOB_TIMEOUT_MS;
    p->retries = DRV_CONFIG_JOB_RETRIES;
    p->backoff_ms = DRV_CONFIG_JOB_BACKOFF_MS;
    p->backoff_max_ms = DRV_CONFIG_JOB_BACKOFF_MAX_MS;
    p->result_ttl_ms = 0;
}

/* ------------------------------------------------------------- tables */

/* The keys of the policy, the same in a job type and a pipeline; OFF(m)
 * is the offset of m in the struct that holds `policy`. */
#define POLICY_FIELDS(OFF)                                               \
    DRV__CONFIG_RETRY_FIELDS(OFF, policy.),                              \
    {.name = "result_ttl", .kind = DRV__CONFIG_DURATION, .min = 0,       \
     .off = OFF(policy.result_ttl_ms)}

#define JOB_OFF(m) offsetof(struct drv_config_job, m)

static const struct drv__config_field job_fields[] = {
    {.name = "handler", .kind = DRV__CONFIG_SPECIAL},
    POLICY_FIELDS(JOB_OFF),
    {.name = "concurrency", .kind = DRV__CONFIG_INT, .min = 1,
     .off = JOB_OFF(concurrency)},
    {.name = "unique_for", .kind = DRV__CONFIG_DURATION, .min = 1,
     .off = JOB_OFF(unique_for_ms)},
    {.name = "rate", .kind = DRV__CONFIG_STRING, .off = JOB_OFF(rate),
     .check = check_rate},
    {.name = "global_concurrency", .kind = DRV__CONFIG_INT, .min = 1,
     .off = JOB_OFF(global_concurrency)},
    {.name = "limit_key", .kind = DRV__CONFIG_STRING,
     .off = JOB_OFF(limit_field), .check = check_limit_key},
    {.name = "blocking", .kind = DRV__CONFIG_BOOL,
     .off = JOB_OFF(blocking), .handlers = HMASK(PLUGIN)},
    {.name = "output_max", .kind = DRV__CONFIG_SIZE, .min = 0,
     .off = JOB_OFF(output_max), .handlers = HMASK(EXEC) | HMASK(HTTP)},
    {.name = "command", .kind = DRV__CONFIG_STRSEQ,
     .off = JOB_OFF(exec.command), .count_off = JOB_OFF(exec.ncommand),
     .flags = DRV__CONFIG_NONEMPTY | DRV__CONFIG_TEMPLATE |
              DRV__CONFIG_REQUIRED,
     .handlers = HMASK(EXEC)},
    {.name = "env", .kind = DRV__CONFIG_STRMAP,
     .off = JOB_OFF(exec.env), .count_off = JOB_OFF(exec.nenv),
     .handlers = HMASK(EXEC), .key_name = "variable name",
     .key_check = check_env_name},
    {.name = "cwd", .kind = DRV__CONFIG_STRING, .off = JOB_OFF(exec.cwd),
     .flags = DRV__CONFIG_NONEMPTY, .handlers = HMASK(EXEC)},
    {.name = "kill_grace", .kind = DRV__CONFIG_DURATION, .min = 0,
     .off = JOB_OFF(exec.kill_grace_ms), .handlers = HMASK(EXEC)},
    {.name = "method", .kind = DRV__CONFIG_STRING,
     .off = JOB_OFF(http.method), .handlers = HMASK(HTTP),
     .check = check_method},
    {.name = "url", .kind = DRV__CONFIG_STRING, .off = JOB_OFF(http.url),
     .flags = DRV__CONFIG_NONEMPTY | DRV__CONFIG_TEMPLATE |
              DRV__CONFIG_REQUIRED,
     .handlers = HMASK(HTTP), .check = check_http_url},
    {.name = "headers", .kind = DRV__CONFIG_STRMAP,
     .off = JOB_OFF(http.headers), .count_off = JOB_OFF(http.nheaders),
     .flags = DRV__CONFIG_TEMPLATE, .handlers = HMASK(HTTP),
     .check = check_header_value, .key_name = "header name",
     .key_check = check_header_name},
    {.name = "body", .kind = DRV__CONFIG_STRING, .off = JOB_OFF(http.body),
     .flags = DRV__CONFIG_TEMPLATE, .handlers = HMASK(HTTP)},
    {.name = "library", .kind = DRV__CONFIG_STRING,
     .off = JOB_OFF(plugin.library),
     .flags = DRV__CONFIG_NONEMPTY | DRV__CONFIG_REQUIRED,
     .handlers = HMASK(PLUGIN)},
    {.name = "symbol", .kind = DRV__CONFIG_STRING,
     .off = JOB_OFF(plugin.symbol),
     .flags = DRV__CONFIG_NONEMPTY | DRV__CONFIG_REQUIRED,
     .handlers = HMASK(PLUGIN)},
};

#define PIPE_OFF(m) offsetof(struct drv_config_pipeline, m)

static const struct drv__config_field pipeline_fields[] = {
    {.name = "steps", .kind = DRV__CONFIG_SPECIAL,
     .flags = DRV__CONFIG_REQUIRED},
    {.name = "graph", .kind = DRV__CONFIG_SPECIAL},
    POLICY_FIELDS(PIPE_OFF),
};

static const struct drv__config_field step_fields[] = {
    {.name = "parallel", .kind = DRV__CONFIG_SPECIAL},
};

/* ---------------------------------------------------------- job types */

void
drv__config_job_free(struct drv_config_job *job)
{
    if (DRV_NO_OBJ(job, DRV_CONFIG_JOB_MAGIC))
        return;
    free(job->name);
    drv__config_fields_free(job_fields, DRV_ARRAY_LEN(job_fields), job);
    DRV_FREE_OBJ(job);
}

static struct drv_config_job *
job_create(const char *name)
{
    struct drv_config_job *job = NULL;

    DRV_ALLOC_OBJ(job, DRV_CONFIG_JOB_MAGIC);
    job->name = drv_xstrdup(name);
    job->handler = DRV_HKIND_NOOP;
    policy_defaults(&job->policy);
    job->concurrency = 0;
    job->blocking = false;
    job->output_max = DRV_CONFIG_JOB_OUTPUT_MAX;
    job->exec.kill_grace_ms = DRV_CONFIG_JOB_KILL_GRACE_MS;
    return job;
}

/* "handler exec" / "handlers exec and http" for the kinds in mask. */
static const char *
handler_list(unsigned mask, char *buf, size_t n)
{
    unsigned count = (unsigned)__builtin_popcount(mask);
    unsigned seen = 0;
    size_t len = 0;
    int k;

    len += (size_t)snprintf(buf, n, "%s", count > 1 ? "handlers" : "handler");
    for (k = 0; k < DRV_HKIND_COUNT && len < n; k++) {
        const char *sep = ", ";

        if (!(mask & (1u << k)))
            continue;
        seen++;
        if (seen == 1)
            sep = " ";
        else if (seen == count)
            sep = " and ";
        len += (size_t)snprintf(buf + len, n - len, "%s%s", sep,
                                drv_hkind_name(
                                    (enum drv_hkind)k));
    }
    return buf;
}

/*
 * First pass over a job mapping: read `handler:`. Returns the kind, or -1
 * when it is missing (*present = false) or bad (reported).
 */
static int
read_handler(struct drv__config_ctx *c, yaml_node_t *map, bool *present)
{
    char buf[DRV__CONFIG_QUOTE_BUF];
    yaml_node_t *val = drv__config_find_value(c, map, "handler");
    const char *s = NULL;
    size_t mark;
    int kind = -1;
    int k;

    *present = false;
    if (val == NULL)
        return -1;
    *present = true;
    mark = drv__config_path_push_key(c, "handler");
    s = drv__config_scalar(c, val, "a handler name");
    if (s != NULL) {
        for (k = 0; k < DRV_HKIND_COUNT; k++)
            if (strcmp(s, drv_hkind_name((enum drv_hkind)k))
                == 0)
                kind = k;
        if (kind < 0)
            drv__config_report(c, val, "unknown handler %s (use noop, echo, "
                               "sleep, block, fail, exec, http, plugin)",
                               drv__config_quote(buf, s, strlen(s)));
    }
    drv__config_path_pop(c, mark);
    return kind;
}

/* A job type's mapping being read: its handler mask and keys seen. */
struct job_read {
    struct drv_config_job *job;
    unsigned mask;                          /* 1 << handler, 0 = unknown */
    bool seen[DRV_ARRAY_LEN(job_fields)];   /* by index in job_fields */
};

/* Second pass over a job mapping: one key other than `handler:`. */
static void
job_pair(struct drv__config_ctx *c, const struct drv__config_field *f,
         yaml_node_t *k, yaml_node_t *v, void *arg)
{
    struct job_read *r = arg;
    char list[HANDLER_LIST_MAX];

    if (f->kind == DRV__CONFIG_SPECIAL)
        ;   /* handler: read by the first pass */
    else if (r->mask != 0 && f->handlers != 0 && !(f->handlers & r->mask))
        drv__config_report(c, k, "key is only valid for %s",
                           handler_list(f->handlers, list, sizeof list));
    else {
        r->seen[f - job_fields] = true;
        drv__config_field_set(c, f, v, r->job);
    }
}

/* Read job type `name` (key knode, value node); the path ends in name. */
static void
read_job(struct drv__config_ctx *c, const char *name, yaml_node_t *knode,
         yaml_node_t *node, void *arg DRV_UNUSED)
{
    struct drv_config *cfg = c->cfg;
    struct job_read r = {.mask = 0};
    struct drv_config_job *job = NULL;
    bool present = false;
    size_t i;
    int kind;

    /* kept even when bad, so pipeline steps naming it resolve quietly */
    job = job_create(name);
    cfg->jobs = drv_xrealloc(cfg->jobs, (cfg->njobs + 1) * sizeof *cfg->jobs);
    cfg->jobs[cfg->njobs++] = job;
    drv__config_names_put(&cfg->_names, job->name)->job = job;
    r.job = job;

    if (name[0] == '\0')
        drv__config_report(c, knode, "job type name must not be empty");
    if (drv__config_expect_map(c, node) < 0)
        return;
    kind = read_handler(c, node, &present);
    if (kind >= 0) {
        job->handler = (enum drv_hkind)kind;
        r.mask = 1u << kind;
    }

    drv__config_each_field(c, node, job_fields, DRV_ARRAY_LEN(job_fields),
                           r.mask, job_pair, &r);

    if (!present) {
        drv__config_report(c, knode, "missing required key \"handler\"");
        return;
    }
    for (i = 0; r.mask != 0 && i < DRV_ARRAY_LEN(job_fields); i++)
        if ((job_fields[i].flags & DRV__CONFIG_REQUIRED) &&
            (job_fields[i].handlers & r.mask) && !r.seen[i])
            drv__config_report(c, knode, "handler %s requires key \"%s\"",
                               drv_hkind_name(job->handler),
                               job_fields[i].name);
    if (job->rate != NULL)
        DRV_AZ(parse_rate(job->rate, &job->rate_n, &job->rate_period_ms));
    if (job->limit_field != NULL) {
        /* read as written, "{FIELD}" (check_limit_key): keep FIELD */
        size_t n = strlen(job->limit_field);

        memmove(job->limit_field, job->limit_field + 1, n - 2);
        job->limit_field[n - 2] = '\0';
        if (job->rate == NULL && job->global_concurrency == 0) {
            size_t mark = drv__config_path_push_key(c, "limit_key");

            drv__config_report(c, drv__config_find_value(c, node,
                                                         "limit_key"),
                               "needs rate or global_concurrency");
            drv__config_path_pop(c, mark);
        }
    }
    if (job->handler == DRV_HKIND_BLOCK)
        job->blocking = true;
    if (job->handler == DRV_HKIND_HTTP && job->http.method == NULL)
        job->http.method = drv_xstrdup(DRV_CONFIG_HTTP_METHOD);
}

void
drv__config_jobs(struct drv__config_ctx *c, yaml_node_t *node)
{
    drv__config_each_pair(c, node, read_job, NULL);
}

/* ---------------------------------------------------------- pipelines */

/* Free n steps (each one's array of jobs) and their array. */
static void
steps_free(struct drv_config_step *steps, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free((void *)steps[i].jobs);
    free(steps);
}

void
drv__config_pipeline_free(struct drv_config_pipeline *pl)
{
    if (DRV_NO_OBJ(pl, DRV_CONFIG_PIPELINE_MAGIC))
        return;
    free(pl->name);
    steps_free(pl->steps, pl->nsteps);
    drv__config_graph_free(pl);
    DRV_FREE_OBJ(pl);
}

/* The job type a step names, or NULL (reported). */
static const struct drv_config_job *
resolve(struct drv__config_ctx *c, yaml_node_t *node)
{
    char buf[DRV__CONFIG_QUOTE_BUF];
    const struct drv_config_job *job = NULL;
    const char *s = drv__config_scalar(c, node, "a job type name");

    if (s == NULL)
        return NULL;
    job = drv_config_job(c->cfg, s);
    if (job == NULL)
        drv__config_report(c, node, "job type %s is not declared under jobs",
                           drv__config_quote(buf, s, strlen(s)));
    return job;
}

/* Read the sequence of `parallel:` into step; 0 or DRV_ECONFIG. */
static int
read_members(struct drv__config_ctx *c, yaml_node_t *node,
             struct drv_config_step *step)
{
    const struct drv_config_job **jobs = NULL;
    yaml_node_item_t *item;
    size_t n = 0;
    size_t i = 0;
    int rc = 0;

    if (drv__config_expect_seq(c, node) < 0)
        return DRV_ECONFIG;
    if (node->data.sequence.items.start == node->data.sequence.items.top)
        return drv__config_report(c, node,
                                  "must list at least one job type");
    jobs = drv_xcalloc((size_t)(node->data.sequence.items.top -
                                node->data.sequence.items.start),
                       sizeof *jobs);
    for (item = node->data.sequence.items.start;
         item < node->data.sequence.items.top; item++, i++) {
        char buf[DRV__CONFIG_QUOTE_BUF];
        yaml_node_t *e = drv__config_node(c, *item);
        size_t old = drv__config_path_push_index(c, i);
        const struct drv_config_job *job = NULL;
        size_t j;

        if (e->type == YAML_MAPPING_NODE && drv__config_find_value(c, e, "parallel") != NULL) {
            rc = drv__config_report(c, e,
                                    "parallel steps cannot be nested");
        } else {
            job = resolve(c, e);
            for (j = 0; job != NULL && j < n && jobs[j] != job; j++)
                ;
            if (job == NULL) {
                rc = DRV_ECONFIG;
            } else if (j < n) {
                rc = drv__config_report(c, e, "job type %s is listed twice",
                                        drv__config_quote(buf, job->name,
                                                          strlen(job->name)));
            } else {
                jobs[n++] = job;
            }
        }
        drv__config_path_pop(c, old);
    }
    if (rc < 0) {
        free((void *)jobs);
        return rc;
    }
    step->parallel = true;
    step->jobs = jobs;
    step->njobs = n;
    return 0;
}

/* A step written as a mapping being read. */
struct parallel_read {
    struct drv_config_step *step;
    bool present;       /* `parallel:` was there */
    int rc;             /* 0 or DRV_ECONFIG */
};

static void
parallel_pair(struct drv__config_ctx *c, const char *key, yaml_node_t *k,
              yaml_node_t *v, void *arg)
{
    struct parallel_read *r = arg;

    if (strcmp(key, "parallel") == 0) {
        r->present = true;
        if (read_members(c, v, r->step) < 0)
            r->rc = DRV_ECONFIG;
    } else {
        r->rc = drv__config_unknown_key(c, k, step_fields,
                                        DRV_ARRAY_LEN(step_fields), 0);
    }
}

/* Read a step written as a mapping: `parallel: [a, b]`. */
static int
read_parallel(struct drv__config_ctx *c, yaml_node_t *node,
              struct drv_config_step *step)
{
    struct parallel_read r = {.step = step, .present = false, .rc = 0};

    drv__config_each_pair(c, node, parallel_pair, &r);
    if (!r.present)
        r.rc = drv__config_report(c, node,
                                  "missing required key \"parallel\"");
    return r.rc;
}

static void
read_steps(struct drv__config_ctx *c, yaml_node_t *node,
           struct drv_config_pipeline *pl)
{
    yaml_node_item_t *item;
    size_t i = 0;

    if (drv__config_expect_seq(c, node) < 0)
        return;
    if (node->data.sequence.items.start == node->data.sequence.items.top) {
        drv__config_report(c, node, "must list at least one step");
        return;
    }
    /* a second `steps:` is a duplicate key: never read twice */
    DRV_ASSERT(pl->steps == NULL);
    pl->steps = drv_xcalloc((size_t)(node->data.sequence.items.top -
                                     node->data.sequence.items.start),
                            sizeof *pl->steps);
    for (item = node->data.sequence.items.start;
         item < node->data.sequence.items.top; item++, i++) {
        char buf[DRV__CONFIG_QUOTE_BUF];
        struct drv_config_step *step = &pl->steps[pl->nsteps];
        yaml_node_t *e = drv__config_node(c, *item);
        size_t old = drv__config_path_push_index(c, i);
        const struct drv_config_job *job = NULL;

        if (e->type == YAML_MAPPING_NODE) {
            if (read_parallel(c, e, step) == 0) {
                pl->nsteps++;
            } else {
                /* members may have been read before a bad key */
                free((void *)step->jobs);
                memset(step, 0, sizeof *step);
            }
        } else if (e->type == YAML_SEQUENCE_NODE) {
            drv__config_report(c, e, "expected a job type name or "
                               "parallel: [...], got %s",
                               drv__config_describe(e, buf));
        } else if ((job = resolve(c, e)) != NULL) {
            step->jobs = drv_xcalloc(1, sizeof *step->jobs);
            step->jobs[0] = job;
            step->njobs = 1;
            pl->nsteps++;
        }
        drv__config_path_pop(c, old);
    }
}

/* A pipeline's mapping being read. */
struct pipeline_read {
    struct drv_config_pipeline *pl;
    bool steps;         /* `steps:` was there */
    yaml_node_t *graph; /* `graph:` key (config_graph.c), or NULL */
};

static void
pipeline_pair(struct drv__config_ctx *c, const struct drv__config_field *f,
              yaml_node_t *k, yaml_node_t *v, void *arg)
{
    struct pipeline_read *r = arg;

    if (strcmp(f->name, "graph") == 0) {
        r->graph = k;
        drv__config_graph(c, v, r->pl);
    } else if (f->kind == DRV__CONFIG_SPECIAL) {
        r->steps = true;
        read_steps(c, v, r->pl);
    } else {
        drv__config_field_set(c, f, v, r->pl);
    }
}

/* Read pipeline `name` (key knode, value node); the path ends in name. */
static void
read_pipeline(struct drv__config_ctx *c, const char *name,
              yaml_node_t *knode, yaml_node_t *node, void *arg DRV_UNUSED)
{
    struct drv_config *cfg = c->cfg;
    struct pipeline_read r = {.steps = false, .graph = NULL};

    DRV_ALLOC_OBJ(r.pl, DRV_CONFIG_PIPELINE_MAGIC);
    r.pl->name = drv_xstrdup(name);
    policy_defaults(&r.pl->policy);
    cfg->pipelines = drv_xrealloc(cfg->pipelines, (cfg->npipelines + 1) *
                                  sizeof *cfg->pipelines);
    cfg->pipelines[cfg->npipelines++] = r.pl;
    drv__config_names_put(&cfg->_names, r.pl->name)->pipeline = r.pl;

    if (name[0] == '\0')
        drv__config_report(c, knode, "pipeline name must not be empty");
    else if (drv_config_job(cfg, name) != NULL)
        drv__config_report(c, knode, "name is already used by a job type");
    if (drv__config_each_field(c, node, pipeline_fields,
                               DRV_ARRAY_LEN(pipeline_fields), 0,
                               pipeline_pair, &r) < 0)
        return;
    if (r.steps && r.graph != NULL)
        drv__config_report(c, r.graph, "give steps or graph, not both");
    else if (!r.steps && r.graph == NULL)
        drv__config_report(c, knode, "missing required key \"steps\"");
}

void
drv__config_pipelines(struct drv__config_ctx *c, yaml_node_t *node)
{
    drv__config_each_pair(c, node, read_pipeline, NULL);
}
