/*
 * queue_graph_run.c -- a graph run as drover shows it: the one read of a
 * run (its hash and the graph's shape), its parse, its final status and
 * its JSON. `drover pipeline`, `drover wait` and the dashboard all go
 * through these, so the run's data model has one owner.
 *
 * The read is one script run: HGETALL of the run's hash plus, from the
 * spec the run keeps (the JSON drv_queue_graph_spec wrote when it
 * started), each node's name, needs and kind in the pipeline's order.
 * Redis decodes the spec (cjson), so there is no JSON reader here. The
 * script runs TYPE and HGETALL only (what an ACL user for drover may).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "drover/common.h"
#include "drover/json.h"
#include "drover/parse.h"
#include "drover/queue_graph.h"
#include "queue_int.h"

/*
 * graph view: KEYS = the run's hash. Returns {HGETALL of the run, {{name,
 * needs joined with ',', on_failure 0/1, for_each 0/1}, ...}}; two empty
 * arrays when there is no run.
 */
static const struct drv_queue_script graph_view_script = {
    "graph_view",
    "local run = KEYS[1]\n"
    "local t = redis.call('TYPE', run)['ok']\n"
    "if t == 'none' then return {{}, {}} end\n"
    "if t ~= 'hash' then\n"
    "  return redis.error_reply('WRONGTYPE key ' .. run .. ' holds a ' .. t ..\n"
    "    ', not a hash')\n"
    "end\n"
    "local h = redis.call('HGETALL', run)\n"
    "local text = ''\n"
    "for i = 1, #h, 2 do if h[i] == 'spec' then text = h[i+1] end end\n"
    "local nodes = {}\n"
    "local ok, spec = pcall(cjson.decode, text)\n"
    "if ok and type(spec) == 'table' and type(spec.order) == 'table' then\n"
    "  for _, n in ipairs(spec.order) do\n"
    "    local nd = spec.nodes[n] or {}\n"
    "    local needs = {}\n"
    "    if type(nd.needs) == 'table' then needs = nd.needs end\n"
    "    nodes[#nodes+1] = {n, table.concat(needs, ','),\n"
    "      (nd.of and nd.of ~= cjson.null) and 1 or 0,\n"
    "      (nd.fe and nd.fe ~= cjson.null) and 1 or 0}\n"
    "  end\n"
    "end\n"
    "return {h, nodes}\n"
};

int
drv_queue_graph_run_build(struct drv_queue_cmds *c, const char *prefix,
                          const char *queue, const char *run, size_t run_len)
{
    struct drv_script_call call;
    char *key = drv_queue_run_key(prefix, queue, run, run_len);

    drv_script_call_init(&call, &graph_view_script);
    drv_argv_adds(&call.keys, key);
    drv__queue_cmds_eval(c, &call);
    free(key);
    return DRV_QUEUE_GRAPH_RUN_CMDS;
}

/* A string element of r (index i) as a new string; NULL when it is not a
 * string. */
static char *
elem_str(const redisReply *r, size_t i)
{
    const redisReply *e = r->element[i];

    if (e->type != REDIS_REPLY_STRING)
        return NULL;
    return drv_xstrndup(e->str, e->len);
}

/* Node n's needs "a,b" into n->needs. */
static void
split_needs(struct drv_queue_graph_node *n, const char *s)
{
    const char *p = s, *comma;

    while (*p != '\0') {
        comma = strchr(p, ',');
        if (comma == NULL)
            comma = p + strlen(p);
        n->needs = drv_xrealloc(n->needs, (n->nneeds + 1) * sizeof *n->needs);
        n->needs[n->nneeds++] = drv_xstrndup(p, (size_t)(comma - p));
        p = *comma == ',' ? comma + 1 : comma;
    }
}

int
drv_queue_graph_run_parse(const redisReply *r, struct drv_queue_graph_run *out,
                          struct drv_err *err)
{
    const redisReply *nodes;
    size_t i;
    int rc = 0;

    memset(out, 0, sizeof *out);
    if (r != NULL && r->type == REDIS_REPLY_ERROR)
        return drv_err_set(err, DRV_EREDIS, "run: %.*s", (int)r->len,
                           r->str);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_ARRAY ||
        r->element[1]->type != REDIS_REPLY_ARRAY)
        return drv_err_set(err, DRV_EPROTO, "run: reply of unexpected shape");
    if (r->element[0]->elements == 0)
        return 0;           /* no run */
    out->hash = drv_job_from_fields("", r->element[0], err);
    if (out->hash == NULL)
        return err->code;
    nodes = r->element[1];
    out->nodes = drv_xcalloc(nodes->elements + 1, sizeof *out->nodes);
    for (i = 0; i < nodes->elements && rc == 0; i++) {
        const redisReply *e = nodes->element[i];
        struct drv_queue_graph_node *n = &out->nodes[i];
        char *needs = NULL;

        if (e->type != REDIS_REPLY_ARRAY || e->elements != 4 ||
            e->element[2]->type != REDIS_REPLY_INTEGER ||
            e->element[3]->type != REDIS_REPLY_INTEGER ||
            (n->name = elem_str(e, 0)) == NULL ||
            (needs = elem_str(e, 1)) == NULL) {
            rc = drv_err_set(err, DRV_EPROTO, "run: node %zu: reply of "
                             "unexpected shape", i);
        } else {
            split_needs(n, needs);
            n->on_failure = e->element[2]->integer == 1;
            n->for_each = e->element[3]->integer == 1;
        }
        free(needs);
        out->nnodes++;
    }
    if (rc < 0)
        drv_queue_graph_run_fini(out);
    return rc;
}

void
drv_queue_graph_run_fini(struct drv_queue_graph_run *r)
{
    size_t i, k;

    for (i = 0; i < r->nnodes; i++) {
        for (k = 0; k < r->nodes[i].nneeds; k++)
            free(r->nodes[i].needs[k]);
        free(r->nodes[i].needs);
        free(r->nodes[i].name);
    }
    free(r->nodes);
    drv_job_free(r->hash);
    memset(r, 0, sizeof *r);
}

const char *
drv_queue_graph_run_final(const struct drv_queue_graph_run *r)
{
    static const char *const finals[] = {"ok", "dead", "cancelled"};
    const struct drv_field *st;
    size_t i;

    if (r->hash == NULL || (st = drv_job_field(r->hash, "status")) == NULL)
        return NULL;
    for (i = 0; i < DRV_ARRAY_LEN(finals); i++)
        if (st->value_len == strlen(finals[i]) &&
            memcmp(st->value, finals[i], st->value_len) == 0)
            return finals[i];
    return NULL;
}

const struct drv_field *
drv_queue_graph_node_field(const struct drv_queue_graph_run *r,
                           const char *node, const char *what)
{
    char key[DRV_QUEUE_GRAPH_NAME_MAX + 32];

    if (r->hash == NULL)
        return NULL;
    if (node == NULL)
        return drv_job_field(r->hash, what);
    snprintf(key, sizeof key, "%.*s.%s", DRV_QUEUE_GRAPH_NAME_MAX, node,
             what);
    return drv_job_field(r->hash, key);
}

int64_t
drv_queue_graph_node_num(const struct drv_queue_graph_run *r,
                         const char *node, const char *what)
{
    const struct drv_field *f = drv_queue_graph_node_field(r, node, what);
    uint64_t v = 0;

    if (f == NULL || drv_parse_uint(f->value, f->value_len, INT64_MAX,
                                    &v) < 0)
        return -1;
    return (int64_t)v;
}

/* ------------------------------------------------------------- JSON */

/* member key: the number of node's (or the run's) field what, null when
 * absent */
static void
member_num(struct drv_json *j, const struct drv_queue_graph_run *r,
           const char *node, const char *key, const char *what)
{
    int64_t v = drv_queue_graph_node_num(r, node, what);

    drv_json_key(j, key);
    if (v < 0)
        drv_json_null(j);
    else
        drv_json_int(j, v);
}

/* member key: the bytes of node's (or the run's) field what, null when
 * absent */
static void
member_field(struct drv_json *j, const struct drv_queue_graph_run *r,
             const char *node, const char *key, const char *what)
{
    const struct drv_field *f = drv_queue_graph_node_field(r, node, what);

    drv_json_member_bytes(j, key, f != NULL ? f->value : NULL,
                          f != NULL ? f->value_len : 0);
}

void
drv_queue_graph_run_json(struct drv_json *j, const char *queue,
                         const char *id, const struct drv_queue_graph_run *r,
                         const struct drv_queue_graph_cancelled *cancel)
{
    size_t i, k;

    drv_json_object_begin(j);
    drv_json_member_bytes(j, "queue", queue, strlen(queue));
    drv_json_member_bytes(j, "id", id, strlen(id));
    member_field(j, r, NULL, "pipeline", "pipeline");
    member_field(j, r, NULL, "status", "status");
    member_num(j, r, NULL, "created_at", "created_at");
    member_num(j, r, NULL, "finished_at", "finished_at");
    member_field(j, r, NULL, "error", "error");
    member_field(j, r, NULL, "dead_node", "dead_node");
    member_field(j, r, NULL, "result", "result");
    if (cancel != NULL) {
        drv_json_key(j, "cancel");
        drv_json_object_begin(j);
        drv_json_member_bool(j, "cancelled", cancel->changed);
        drv_json_member_int(j, "removed", cancel->removed, 0);
        drv_json_member_int(j, "delayed", cancel->delayed, 0);
        drv_json_member_int(j, "marked", cancel->marked, 0);
        drv_json_object_end(j);
    }
    drv_json_key(j, "nodes");
    drv_json_array_begin(j);
    for (i = 0; i < r->nnodes; i++) {
        const struct drv_queue_graph_node *n = &r->nodes[i];

        drv_json_object_begin(j);
        drv_json_member_bytes(j, "name", n->name, strlen(n->name));
        member_field(j, r, n->name, "state", "state");
        member_field(j, r, n->name, "queue", "queue");
        drv_json_key(j, "needs");
        drv_json_array_begin(j);
        for (k = 0; k < n->nneeds; k++)
            drv_json_str(j, n->needs[k], strlen(n->needs[k]));
        drv_json_array_end(j);
        drv_json_member_bool(j, "on_failure", n->on_failure);
        drv_json_member_bool(j, "for_each", n->for_each);
        member_num(j, r, n->name, "attempts", "attempts");
        member_num(j, r, n->name, "started_at", "started_at");
        member_num(j, r, n->name, "finished_at", "finished_at");
        member_field(j, r, n->name, "error", "error");
        member_num(j, r, n->name, "enqueued", "enqueued");
        member_num(j, r, n->name, "items", "items");
        member_num(j, r, n->name, "items_done", "done");
        member_field(j, r, n->name, "result", "result");
        drv_json_object_end(j);
    }
    drv_json_array_end(j);
    drv_json_object_end(j);
}
