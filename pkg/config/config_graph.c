/*
 * config_graph.c -- `graph:` of a pipeline: named nodes and their needs.
 *
 * Read in three passes over the mapping: the node names first (so a need
 * may name a node declared further down), then each node's keys, then
 * the checks of the whole graph: every need resolved, no cycle, and no
 * node that can never run (one behind a cycle, or one that needs an
 * on_failure node). Every problem is reported with file:line:column at
 * the node, key or need at fault, and the load carries on to find the
 * others.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "drover/buf.h"
#include "drover/common.h"
#include "drover/config.h"
#include "drover/error.h"
#include "drover/template.h"

#include "config_int.h"

/* The keys of one node as read, before the job type's policy is known:
 * -1 = not given. */
struct gread {
    char *job;              /* owned: `job:` */
    char *queue;            /* owned: `queue:` */
    char *when;             /* owned: `when:` as written */
    char *for_each;         /* owned: `for_each:` as written */
    int64_t timeout_ms;     /* `timeout:` */
    int64_t backoff_ms;     /* `backoff:` */
    int64_t backoff_max_ms; /* `backoff_max:` */
    int retries;            /* `retries:` */
    int max_parallel;       /* `max_parallel:` */
    bool on_failure;        /* `on_failure:` */
};

#define GR_OFF(m) offsetof(struct gread, m)

static int check_queue(const char *s, struct drv_err *err);

static const struct drv__config_field node_fields[] = {
    {.name = "job", .kind = DRV__CONFIG_STRING, .off = GR_OFF(job),
     .flags = DRV__CONFIG_NONEMPTY | DRV__CONFIG_REQUIRED},
    {.name = "needs", .kind = DRV__CONFIG_SPECIAL},
    {.name = "queue", .kind = DRV__CONFIG_STRING, .off = GR_OFF(queue),
     .check = check_queue},
    DRV__CONFIG_RETRY_FIELDS(GR_OFF, ),
    {.name = "when", .kind = DRV__CONFIG_STRING, .off = GR_OFF(when),
     .flags = DRV__CONFIG_NONEMPTY},
    {.name = "on_failure", .kind = DRV__CONFIG_BOOL,
     .off = GR_OFF(on_failure)},
    {.name = "for_each", .kind = DRV__CONFIG_STRING,
     .off = GR_OFF(for_each), .flags = DRV__CONFIG_NONEMPTY},
    {.name = "max_parallel", .kind = DRV__CONFIG_INT, .min = 1,
     .off = GR_OFF(max_parallel)},
};

/* Where each node was written, for the checks after reading. */
struct gplace {
    yaml_node_t *key;       /* borrowed: the node's name */
    yaml_node_t *needs;     /* borrowed: `needs:` value, or NULL */
    yaml_node_t *for_each;  /* borrowed: `for_each:` key, or NULL */
    yaml_node_t *maxp;      /* borrowed: `max_parallel:` key, or NULL */
    yaml_node_t *on_failure; /* borrowed: `on_failure:` key, or NULL */
    int bad;                /* node could not be read: skip its checks */
};

/* The graph being read. */
struct graph_read {
    struct drv_config_pipeline *pl;
    struct gplace *at;      /* owned: one per node */
    struct gread cur;       /* the node being read */
    size_t i;               /* its index */
};

/* ------------------------------------------------------------- checks */

static int
check_queue(const char *s, struct drv_err *err)
{
    return drv_config_check_queue(s, err);
}

/* A node name: letters, digits, '_' and '-' (it goes into job ids, key
 * fields and `{input.NAME}` paths). */
static int
check_node_name(const char *s, struct drv_err *err)
{
    const char *p;

    if (s[0] == '\0')
        return drv_err_set(err, -EINVAL, "node name must not be empty");
    for (p = s; *p != '\0'; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-')
            return drv_err_set(err, -EINVAL, "node name must be letters, "
                               "digits, '_' or '-'");
    return 0;
}

/* A field path a graph template may name: `input`, `input.a.b` (each
 * part non-empty), or a field of the run (a plain name). */
static int
check_path(const char *name, size_t len)
{
    size_t i, part = 0;

    if (len == 0)
        return -EINVAL;
    for (i = 0; i < len; i++) {
        if (name[i] == '.') {
            if (part == 0 || i + 1 == len)
                return -EINVAL;
            part = 0;
            continue;
        }
        part++;
    }
    if (memchr(name, '.', len) != NULL &&
        (len < 6 || memcmp(name, "input.", 6) != 0))
        return -EINVAL;
    return 0;
}

/* Lookup of drv_template_expand that only checks each name. */
static int
path_lookup(const char *name, size_t name_len, const char **value,
            size_t *value_len, void *ctx)
{
    int *bad = ctx;

    if (check_path(name, name_len) < 0)
        (*bad)++;
    *value = "";
    *value_len = 0;
    return 0;
}

/* `when:` text -> op, templated side and literal; 0 or -EINVAL with
 * err saying what is wrong. */
static int
parse_when(const char *s, struct drv_config_gnode *n, struct drv_err *err)
{
    const char *op = NULL, *p;
    char *lhs = NULL, *rhs = NULL, *out = NULL;
    size_t a, b, len;
    int depth = 0, bad = 0, rc = 0;

    for (p = s; *p != '\0' && op == NULL; p++) {
        if (*p == '{')
            depth++;
        else if (*p == '}')
            depth--;
        else if (depth <= 0 && (p[0] == '=' || p[0] == '!') && p[1] == '=')
            op = p;
    }
    if (op == NULL)
        return drv_err_set(err, -EINVAL, "must be one comparison: "
                           "\"{input.FIELD} == VALUE\" or \"... != ...\"");
    for (a = 0; isspace((unsigned char)s[a]); a++)
        ;
    for (b = (size_t)(op - s); b > a && isspace((unsigned char)s[b - 1]); b--)
        ;
    lhs = drv_xstrndup(s + a, b - a);
    for (p = op + 2; isspace((unsigned char)*p); p++)
        ;
    len = strlen(p);
    while (len > 0 && isspace((unsigned char)p[len - 1]))
        len--;
    if (len >= 2 && (p[0] == '"' || p[0] == '\'') && p[len - 1] == p[0])
        rhs = drv_xstrndup(p + 1, len - 2);
    else
        rhs = drv_xstrndup(p, len);
    if (lhs[0] == '\0' || strchr(lhs, '{') == NULL) {
        rc = drv_err_set(err, -EINVAL, "the left side must be a {field} "
                         "template such as {input.status}");
    } else if (strstr(rhs, "==") != NULL || strstr(rhs, "!=") != NULL) {
        rc = drv_err_set(err, -EINVAL, "only one comparison is allowed");
    } else if (drv_template_check(lhs, err) < 0) {
        rc = -EINVAL;
    } else if (drv_template_expand(lhs, 0, path_lookup, &bad, &out, NULL,
                                   err) < 0 || bad > 0) {
        rc = drv_err_set(err, -EINVAL, "a field must be {input}, "
                         "{input.NAME...} or a field of the run");
    }
    free(out);
    if (rc < 0) {
        free(lhs);
        free(rhs);
        return rc;
    }
    n->when.op = op[0] == '=' ? DRV_CONFIG_WHEN_EQ : DRV_CONFIG_WHEN_NE;
    n->when.value = lhs;
    n->when.literal = rhs;
    return 0;
}

/* `for_each:` text -> the path after input ("" or ".a.b"), or NULL. */
static char *
parse_for_each(const char *s)
{
    size_t len = strlen(s);

    if (len < 7 || s[0] != '{' || s[len - 1] != '}' ||
        memcmp(s + 1, "input", 5) != 0)
        return NULL;
    if (len == 7)
        return drv_xstrdup("");
    if (s[6] != '.' || check_path(s + 1, len - 2) < 0 ||
        memchr(s + 1, '{', len - 2) != NULL ||
        memchr(s + 1, '}', len - 2) != NULL)
        return NULL;
    return drv_xstrndup(s + 6, len - 7);
}

/* ------------------------------------------------------------ reading */

/* The names, first pass: node i's name and place. */
static void
name_pair(struct drv__config_ctx *c, const char *key, yaml_node_t *k,
          yaml_node_t *v DRV_UNUSED, void *arg)
{
    struct graph_read *r = arg;
    struct drv_config_gnode *n = &r->pl->graph[r->pl->ngraph];
    struct drv_err err;

    n->name = drv_xstrdup(key);
    n->max_parallel = DRV_CONFIG_GRAPH_MAX_PARALLEL;
    r->at[r->pl->ngraph].key = k;
    if (check_node_name(key, &err) < 0) {
        drv__config_report(c, k, "%s", err.msg);
        r->at[r->pl->ngraph].bad = 1;
    }
    r->pl->ngraph++;
}

/* `needs:` of node i: a name or a sequence of names (resolved into
 * indexes once every node is read). */
static void
read_needs(struct drv__config_ctx *c, struct graph_read *r, yaml_node_t *v)
{
    struct drv_config_gnode *n = &r->pl->graph[r->i];
    size_t k = 1;

    if (v->type != YAML_SCALAR_NODE) {
        if (drv__config_expect_seq(c, v) < 0)
            return;
        k = (size_t)(v->data.sequence.items.top -
                     v->data.sequence.items.start);
    }
    r->at[r->i].needs = v;
    n->needs = drv_xcalloc(k > 0 ? k : 1, sizeof *n->needs);
}

static void
node_pair(struct drv__config_ctx *c, const struct drv__config_field *f,
          yaml_node_t *k, yaml_node_t *v, void *arg)
{
    struct graph_read *r = arg;
    const char *key = f->name;

    if (strcmp(key, "for_each") == 0)
        r->at[r->i].for_each = k;
    else if (strcmp(key, "max_parallel") == 0)
        r->at[r->i].maxp = k;
    else if (strcmp(key, "on_failure") == 0)
        r->at[r->i].on_failure = k;
    if (f->kind == DRV__CONFIG_SPECIAL)
        read_needs(c, r, v);
    else if (drv__config_field_set(c, f, v, &r->cur) == 0 &&
             strcmp(key, "when") == 0) {
        struct drv_err err;

        if (parse_when(r->cur.when, &r->pl->graph[r->i], &err) < 0)
            drv__config_report(c, v, "%s", err.msg);
    } else if (strcmp(key, "for_each") == 0 && r->cur.for_each != NULL) {
        char *path = parse_for_each(r->cur.for_each);

        if (path == NULL) {
            char buf[DRV__CONFIG_QUOTE_BUF];

            drv__config_report(c, v, "%s must be {input} or "
                               "{input.FIELD} (a JSON array in the input)",
                               drv__config_quote(buf, r->cur.for_each,
                                                 strlen(r->cur.for_each)));
        }
        free(r->pl->graph[r->i].for_each);
        r->pl->graph[r->i].for_each = path;
    }
}

/* The keys of node i (value node v), second pass. */
static void
read_node(struct drv__config_ctx *c, struct graph_read *r, yaml_node_t *v)
{
    struct drv_config_gnode *n = &r->pl->graph[r->i];
    struct gplace *at = &r->at[r->i];
    const struct drv_config_job *job = NULL;

    memset(&r->cur, 0, sizeof r->cur);
    r->cur.timeout_ms = -1;
    r->cur.backoff_ms = -1;
    r->cur.backoff_max_ms = -1;
    r->cur.retries = -1;
    r->cur.max_parallel = -1;
    if (drv__config_each_field(c, v, node_fields, DRV_ARRAY_LEN(node_fields),
                               0, node_pair, r) < 0) {
        at->bad = 1;
        return;
    }
    if (r->cur.job == NULL) {
        drv__config_report(c, at->key, "missing required key \"job\"");
        at->bad = 1;
    } else if ((job = drv_config_job(c->cfg, r->cur.job)) == NULL) {
        char buf[DRV__CONFIG_QUOTE_BUF];
        size_t mark = drv__config_path_push_key(c, "job");

        drv__config_report(c, drv__config_find_value(c, v, "job"),
                           "job type %s is not declared under jobs",
                           drv__config_quote(buf, r->cur.job,
                                             strlen(r->cur.job)));
        drv__config_path_pop(c, mark);
        at->bad = 1;
    } else {
        n->job = job;
        n->policy = job->policy;
    }
    n->policy.result_ttl_ms = r->pl->policy.result_ttl_ms;
    if (r->cur.timeout_ms >= 0)
        n->policy.timeout_ms = r->cur.timeout_ms;
    if (r->cur.retries >= 0)
        n->policy.retries = r->cur.retries;
    if (r->cur.backoff_ms >= 0)
        n->policy.backoff_ms = r->cur.backoff_ms;
    if (r->cur.backoff_max_ms >= 0)
        n->policy.backoff_max_ms = r->cur.backoff_max_ms;
    if (r->cur.max_parallel > 0)
        n->max_parallel = r->cur.max_parallel;
    n->on_failure = r->cur.on_failure;
    n->queue = r->cur.queue;
    r->cur.queue = NULL;
    free(r->cur.job);
    free(r->cur.when);
    free(r->cur.for_each);
}

/* --------------------------------------------------------- the graph */

/* Need e (a name) of node i: its index appended, or reported when
 * unknown, repeated, the node itself or an on_failure node. */
static void
resolve_need(struct drv__config_ctx *c, struct graph_read *r, size_t i,
             yaml_node_t *e)
{
    struct drv_config_gnode *n = &r->pl->graph[i];
    char buf[DRV__CONFIG_QUOTE_BUF];
    const char *s = drv__config_scalar(c, e, "a node name");
    const struct drv_config_gnode *t = NULL;
    size_t j = 0, k;

    if (s == NULL)
        return;
    t = drv_config_gnode(r->pl, s, &j);
    for (k = 0; t != NULL && k < n->nneeds; k++)
        if (n->needs[k] == j)
            break;
    if (t == NULL)
        drv__config_report(c, e, "%s is not a node of this graph",
                           drv__config_quote(buf, s, strlen(s)));
    else if (j == i)
        drv__config_report(c, e, "a node cannot need itself");
    else if (k < n->nneeds)
        drv__config_report(c, e, "%s is needed twice",
                           drv__config_quote(buf, s, strlen(s)));
    else if (t->on_failure)
        drv__config_report(c, e, "unreachable: %s is an on_failure node, "
                           "which nothing waits for",
                           drv__config_quote(buf, s, strlen(s)));
    else
        n->needs[n->nneeds++] = j;
}

/* Resolve the needs of node i. */
static void
resolve_needs(struct drv__config_ctx *c, struct graph_read *r, size_t i)
{
    yaml_node_t *v = r->at[i].needs;
    yaml_node_item_t *item;
    size_t mark = drv__config_path_push_key(c, r->pl->graph[i].name);
    size_t mark2 = drv__config_path_push_key(c, "needs");
    size_t idx = 0;

    if (v->type == YAML_SCALAR_NODE) {
        resolve_need(c, r, i, v);
    } else {
        for (item = v->data.sequence.items.start;
             item < v->data.sequence.items.top; item++, idx++) {
            size_t old = drv__config_path_push_index(c, idx);

            resolve_need(c, r, i, drv__config_node(c, *item));
            drv__config_path_pop(c, old);
        }
    }
    drv__config_path_pop(c, mark2);
    drv__config_path_pop(c, mark);
}

/* Report at node i's name under the graph's path. */
static void
report_at(struct drv__config_ctx *c, struct graph_read *r, size_t i,
          yaml_node_t *where, const char *msg)
{
    size_t mark = drv__config_path_push_key(c, r->pl->graph[i].name);

    drv__config_report(c, where != NULL ? where : r->at[i].key, "%s", msg);
    drv__config_path_pop(c, mark);
}

/* The per-node rules that need the whole node: for_each, max_parallel,
 * on_failure. */
static void
check_node(struct drv__config_ctx *c, struct graph_read *r, size_t i)
{
    const struct drv_config_gnode *n = &r->pl->graph[i];
    const struct gplace *at = &r->at[i];

    if (n->on_failure && at->needs != NULL)
        report_at(c, r, i, at->on_failure, "an on_failure node takes no "
                  "needs: it runs when the run ends dead");
    if (at->for_each != NULL && at->needs == NULL)
        report_at(c, r, i, at->for_each, "for_each needs a node with "
                  "needs: it fans out over their result");
    if (at->maxp != NULL && at->for_each == NULL)
        report_at(c, r, i, at->maxp, "max_parallel is only valid with "
                  "for_each");
}

/*
 * Cycles and nodes behind one: Kahn's order over the good nodes; what it
 * cannot order is on a cycle or needs one. Each cycle is reported once,
 * at its first node in file order, as "cycle: a -> b -> a".
 */
static void
check_order(struct drv__config_ctx *c, struct graph_read *r)
{
    struct drv_config_pipeline *pl = r->pl;
    size_t n = pl->ngraph, i, k, done = 0;
    size_t *left = drv_xcalloc(n, sizeof *left);
    int *ordered = drv_xcalloc(n, sizeof *ordered);
    int *reported = drv_xcalloc(n, sizeof *reported);
    int progress = 1;

    for (i = 0; i < n; i++)
        left[i] = pl->graph[i].nneeds;
    while (progress) {
        progress = 0;
        for (i = 0; i < n; i++) {
            if (ordered[i] || left[i] > 0)
                continue;
            ordered[i] = 1;
            done++;
            progress = 1;
            for (k = 0; k < n; k++) {
                size_t m;

                for (m = 0; m < pl->graph[k].nneeds; m++)
                    if (pl->graph[k].needs[m] == i)
                        left[k]--;
            }
        }
    }
    for (i = 0; i < n && done < n; i++) {
        size_t *path = NULL;
        size_t cur = i, steps = 0, at = 0, x;
        struct drv_buf b;
        int *seen;

        if (ordered[i] || reported[i])
            continue;
        /* walk unordered needs from i until a node repeats: every
         * unordered node has one, so the walk ends on a cycle */
        seen = drv_xcalloc(n, sizeof *seen);
        path = drv_xcalloc(n + 1, sizeof *path);
        while (!seen[cur]) {
            seen[cur] = 1;
            path[steps++] = cur;
            for (k = 0; k < pl->graph[cur].nneeds; k++)
                if (!ordered[pl->graph[cur].needs[k]])
                    break;
            DRV_ASSERT(k < pl->graph[cur].nneeds);
            cur = pl->graph[cur].needs[k];
        }
        drv_buf_init(&b);
        if (cur == i) {
            drv_buf_addf(&b, "cycle: ");
            for (at = 0; at < steps; at++) {
                x = path[at];
                reported[x] = 1;
                drv_buf_addf(&b, "%s -> ", pl->graph[x].name);
            }
            drv_buf_addf(&b, "%s (each needs the next)", pl->graph[i].name);
        } else {
            drv_buf_addf(&b, "unreachable: it needs %s, which is on a "
                         "cycle or behind one", pl->graph[cur].name);
        }
        report_at(c, r, i, NULL, b.data);
        drv_buf_fini(&b);
        free(seen);
        free(path);
    }
    free(left);
    free(ordered);
    free(reported);
}

void
drv__config_graph(struct drv__config_ctx *c, yaml_node_t *node,
                  struct drv_config_pipeline *pl)
{
    struct graph_read r;
    struct drv__config_iter it;
    const char *key;
    yaml_node_t *k, *v;
    size_t count, i, mark, roots = 0;
    int bad = 0;

    if (drv__config_expect_map(c, node) < 0)
        return;
    count = (size_t)(node->data.mapping.pairs.top -
                     node->data.mapping.pairs.start);
    if (count == 0) {
        drv__config_report(c, node, "must declare at least one node");
        return;
    }
    DRV_ASSERT(pl->graph == NULL); /* a second graph: is a duplicate key */
    memset(&r, 0, sizeof r);
    r.pl = pl;
    r.at = drv_xcalloc(count, sizeof *r.at);
    pl->graph = drv_xcalloc(count, sizeof *pl->graph);
    drv__config_each_pair(c, node, name_pair, &r);
    /* keys, in the same order as the names (the iterator skips the same
     * bad or repeated keys both times) */
    drv__config_iter_init(&it, node);
    for (i = 0; drv__config_iter_next(c, &it, &key, &k, &v, &mark); i++) {
        r.i = i;
        if (i < pl->ngraph)
            read_node(c, &r, v);
        drv__config_path_pop(c, mark);
    }
    for (i = 0; i < pl->ngraph; i++) {
        if (r.at[i].bad) {
            bad = 1;
            continue;
        }
        if (r.at[i].needs != NULL)
            resolve_needs(c, &r, i);
        check_node(c, &r, i);
        if (r.at[i].needs == NULL && !pl->graph[i].on_failure)
            roots++;
    }
    if (!bad)
        check_order(c, &r);
    if (roots == 0 && !bad)
        drv__config_report(c, node, "no node can start: every node has "
                           "needs or is on_failure");
    free(r.at);
}

void
drv__config_graph_free(struct drv_config_pipeline *pl)
{
    size_t i;

    for (i = 0; i < pl->ngraph; i++) {
        struct drv_config_gnode *n = &pl->graph[i];

        free(n->name);
        free(n->needs);
        free(n->queue);
        free(n->when.value);
        free(n->when.literal);
        free(n->for_each);
    }
    free(pl->graph);
    pl->graph = NULL;
    pl->ngraph = 0;
}

const struct drv_config_gnode *
drv_config_gnode(const struct drv_config_pipeline *pl, const char *name,
                 size_t *index)
{
    size_t i;

    for (i = 0; i < pl->ngraph; i++) {
        if (pl->graph[i].name != NULL &&
            strcmp(pl->graph[i].name, name) == 0) {
            if (index != NULL)
                *index = i;
            return &pl->graph[i];
        }
    }
    return NULL;
}
