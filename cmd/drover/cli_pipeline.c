/*
 * cli_pipeline.c -- `drover pipeline QUEUE ID [--cancel] [--json]`: the
 * state of a graph pipeline run (its hash P:{QUEUE}:run:ID, read with one
 * HGETALL), and its cancel (one graph cancel script run, before the
 * read).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "drover/buf.h"
#include "drover/clock.h"
#include "drover/common.h"
#include "drover/json.h"
#include "drover/parse.h"
#include "drover/queue.h"
#include "drover/queue_graph.h"

#include "cli.h"

/* Longest node name shown; names are letters, digits, '_' and '-'. */
#define NAME_MAX_LEN 128

/* Field name of the run (NUL-terminated copy; NULL when absent). */
static char *
get(const struct drv_job *run, const char *name)
{
    return drv_job_field_str(run, name);
}

/* Field NODE.what of the run (borrowed), or NULL. */
static const struct drv_field *
node_field(const struct drv_job *run, const char *node, const char *what)
{
    char key[NAME_MAX_LEN + 32];

    snprintf(key, sizeof key, "%s.%s", node, what);
    return drv_job_field(run, key);
}

/* A number field of node (or of the run when node is NULL), -1 when
 * absent or not a number. */
static int64_t
num(const struct drv_job *run, const char *node, const char *what)
{
    const struct drv_field *f = node != NULL ? node_field(run, node, what)
                                             : drv_job_field(run, what);
    uint64_t v = 0;

    if (f == NULL || drv_parse_uint(f->value, f->value_len, INT64_MAX,
                                    &v) < 0)
        return -1;
    return (int64_t)v;
}

/* Each node name of the run's order field, in order, into names (owned
 * strings, NULL-terminated; free with free_names). */
static char **
node_names(const struct drv_job *run)
{
    char *order = get(run, "order");
    char **v = NULL;
    size_t n = 0;
    char *p, *save = NULL;

    v = drv_xcalloc(1, sizeof *v);
    if (order == NULL)
        return v;
    for (p = strtok_r(order, ",", &save); p != NULL;
         p = strtok_r(NULL, ",", &save)) {
        v = drv_xrealloc(v, (n + 2) * sizeof *v);
        v[n++] = drv_xstrndup(p, strnlen(p, NAME_MAX_LEN));
        v[n] = NULL;
    }
    free(order);
    return v;
}

static void
free_names(char **v)
{
    size_t i;

    for (i = 0; v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

/* "-" for an absent time, else the time. */
static const char *
time_cell(int64_t ms, char *buf, size_t n)
{
    if (ms < 0)
        return "-";
    return drv__cli_time(ms, buf, n);
}

/* A text cell of a value from Redis: its bytes, a line break and any
 * control byte as a space, cut at max bytes. */
static char *
text_cell(const struct drv_field *f, size_t max)
{
    size_t i, n;
    char *s;

    if (f == NULL || f->value_len == 0)
        return drv_xstrdup("-");
    n = f->value_len < max ? f->value_len : max;
    s = drv_xstrndup(f->value, n);
    for (i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            s[i] = ' ';
    return s;
}

static void
print_text(const char *id, const struct drv_job *run, char **names)
{
    static const char *const head[] = {"NODE", "STATE", "ATTEMPTS",
                                       "QUEUE", "STARTED", "FINISHED",
                                       "ITEMS", "ERROR"};
    struct drv_cli_table t;
    char *pl = get(run, "pipeline"), *st = get(run, "status");
    char b1[64], b2[64], att[32], items[64];
    char *err = NULL;
    size_t i;

    printf("run %s  pipeline %s  status %s\n", id, pl ? pl : "-",
           st ? st : "-");
    printf("created %s  finished %s\n",
           time_cell(num(run, NULL, "created_at"), b1, sizeof b1),
           time_cell(num(run, NULL, "finished_at"), b2, sizeof b2));
    err = text_cell(drv_job_field(run, "error"), 200);
    if (strcmp(err, "-") != 0)
        printf("error %s\n", err);
    free(err);
    free(pl);
    free(st);
    drv__cli_table_init(&t, DRV_ARRAY_LEN(head), 1u << 2);
    drv__cli_table_add(&t, head);
    for (i = 0; names[i] != NULL; i++) {
        const char *n = names[i];
        const char *cells[DRV_ARRAY_LEN(head)];
        char *state = text_cell(node_field(run, n, "state"), 32);
        char *queue = text_cell(node_field(run, n, "queue"), 64);
        char *nerr = text_cell(node_field(run, n, "error"), 80);
        int64_t a = num(run, n, "attempts"), ni = num(run, n, "items");

        snprintf(att, sizeof att, "%lld", a < 0 ? 0LL : (long long)a);
        if (ni >= 0)
            snprintf(items, sizeof items, "%lld/%lld",
                     (long long)(num(run, n, "done") < 0
                                     ? 0 : num(run, n, "done")),
                     (long long)ni);
        else
            snprintf(items, sizeof items, "-");
        cells[0] = n;
        cells[1] = state;
        cells[2] = att;
        cells[3] = queue;
        cells[4] = time_cell(num(run, n, "started_at"), b1, sizeof b1);
        cells[5] = time_cell(num(run, n, "finished_at"), b2, sizeof b2);
        cells[6] = items;
        cells[7] = nerr;
        drv__cli_table_add(&t, cells);
        free(state);
        free(queue);
        free(nerr);
    }
    drv__cli_table_print(&t, stdout);
    drv__cli_table_fini(&t);
}

/* member key: the number of node's (or the run's) field, null when
 * absent */
static void
member_num(struct drv_json *j, const struct drv_job *run, const char *node,
           const char *key, const char *what)
{
    int64_t v = num(run, node, what);

    drv_json_key(j, key);
    if (v < 0)
        drv_json_null(j);
    else
        drv_json_int(j, v);
}

/* member key: the bytes of a field (null when absent) */
static void
member_field(struct drv_json *j, const char *key, const struct drv_field *f)
{
    drv_json_member_bytes(j, key, f != NULL ? f->value : NULL,
                          f != NULL ? f->value_len : 0);
}

static void
print_json(const char *queue, const char *id, const struct drv_job *run,
           char **names, const struct drv_queue_graph_cancelled *cancel)
{
    struct drv_json j;
    struct drv_buf b;
    size_t i;

    drv_buf_init(&b);
    drv_json_init(&j, &b);
    drv_json_object_begin(&j);
    drv_json_member_strz(&j, "queue", queue);
    drv_json_member_strz(&j, "id", id);
    member_field(&j, "pipeline", drv_job_field(run, "pipeline"));
    member_field(&j, "status", drv_job_field(run, "status"));
    member_num(&j, run, NULL, "created_at", "created_at");
    member_num(&j, run, NULL, "finished_at", "finished_at");
    member_field(&j, "error", drv_job_field(run, "error"));
    member_field(&j, "dead_node", drv_job_field(run, "dead_node"));
    member_field(&j, "result", drv_job_field(run, "result"));
    if (cancel != NULL) {
        drv_json_key(&j, "cancel");
        drv_json_object_begin(&j);
        drv_json_member_bool(&j, "cancelled", cancel->changed);
        drv_json_member_int(&j, "removed", cancel->removed, 0);
        drv_json_member_int(&j, "delayed", cancel->delayed, 0);
        drv_json_member_int(&j, "marked", cancel->marked, 0);
        drv_json_object_end(&j);
    }
    drv_json_key(&j, "nodes");
    drv_json_array_begin(&j);
    for (i = 0; names[i] != NULL; i++) {
        const char *n = names[i];

        drv_json_object_begin(&j);
        drv_json_member_strz(&j, "name", n);
        member_field(&j, "state", node_field(run, n, "state"));
        member_field(&j, "queue", node_field(run, n, "queue"));
        member_num(&j, run, n, "attempts", "attempts");
        member_num(&j, run, n, "started_at", "started_at");
        member_num(&j, run, n, "finished_at", "finished_at");
        member_field(&j, "error", node_field(run, n, "error"));
        member_num(&j, run, n, "enqueued", "enqueued");
        member_num(&j, run, n, "items", "items");
        member_num(&j, run, n, "items_done", "done");
        member_field(&j, "result", node_field(run, n, "result"));
        drv_json_object_end(&j);
    }
    drv_json_array_end(&j);
    drv_json_object_end(&j);
    drv_json_fini(&j);
    drv__cli_json_print(&b);
    drv_buf_fini(&b);
}

int
drv__cli_graph_takeback(struct drv_cli *cli,
                        struct drv_queue_graph_cancelled *gc,
                        struct drv_err *err)
{
    struct drv_queue_cmds c;
    struct drv_script_call call;
    redisReply **out = NULL;
    size_t i;
    int rc;

    if (gc->naway == 0)
        return 0;
    drv_queue_cmds_init(&c);
    for (i = 0; i < gc->naway; i++) {
        drv_queue_graph_takeback(&call, cli->cfg->redis.prefix,
                                 &gc->away[i], drv_clock_unix_ms());
        drv_script_call_eval(&call, drv_queue_cmds_add(&c));
        drv_script_call_fini(&call);
    }
    rc = drv__cli_run(cli, &c, &out);
    for (i = 0; rc == 0 && i < c.n; i++) {
        if (out[i]->type != REDIS_REPLY_INTEGER) {
            rc = drv_err_set(err, out[i]->type == REDIS_REPLY_ERROR
                             ? DRV_EREDIS : DRV_EPROTO, "cancel: take-back "
                             "on queue %s: %s", gc->away[i].queue,
                             out[i]->type == REDIS_REPLY_ERROR ? out[i]->str
                             : "reply of unexpected shape");
            break;
        }
        if (out[i]->integer == 1)
            gc->removed++;
        else if (out[i]->integer == 2)
            gc->delayed++;
        else if (out[i]->integer == 3)
            gc->marked++;
    }
    if (rc == DRV_EDOWN)
        drv_err_set(err, rc, "cancel: the take-back on other queues was "
                    "not sent (Redis down)");
    drv__cli_free_replies(c.n, out);
    drv_queue_cmds_fini(&c);
    return rc;
}

int
drv__cli_pipeline(struct drv_cli *cli, int argc, char **argv)
{
    static const char *const names[] = {"QUEUE", "ID", NULL};
    const char *cancel = NULL, *ops[2] = {NULL, NULL};
    const struct drv_cli_opt opts[] = {
        {"cancel", 0, 0, &cancel},
        {NULL, 0, 0, NULL},
    };
    struct drv_queue_cmds c;
    struct drv_script_call call;
    struct drv_job *run = NULL;
    struct drv_err err;
    redisReply **out = NULL;
    struct drv_queue_graph_cancelled gc;
    const struct drv_queue_graph_cancelled *cr = NULL;
    char **nodes = NULL;
    char *key = NULL;
    size_t hi = 0;
    int rc;

    memset(&gc, 0, sizeof gc);
    rc = drv__cli_args(cli, argc, argv, opts, names, 2, ops, NULL);
    if (rc < 0)
        return rc;
    if (ops[1][0] == '\0')
        return drv__cli_usage_error(cli, "ID must not be empty");
    rc = drv__cli_connect(cli);
    if (rc < 0)
        return rc;
    key = drv_queue_run_key(cli->cfg->redis.prefix, ops[0], ops[1],
                            strlen(ops[1]));
    drv_queue_cmds_init(&c);
    if (cancel != NULL) {
        drv_queue_graph_cancel(&call, cli->cfg->redis.prefix, ops[0],
                               ops[1], strlen(ops[1]), drv_clock_unix_ms(),
                               cli->cfg->redis.cluster.nnodes > 0);
        drv_script_call_eval(&call, drv_queue_cmds_add(&c));
        drv_script_call_fini(&call);
        hi = 1;
    }
    drv_argv_adds(drv_queue_cmds_add(&c), "HGETALL");
    drv_argv_adds(&c.cmd[c.n - 1], key);
    rc = drv__cli_run(cli, &c, &out);
    if (rc < 0)
        goto done;
    if (cancel != NULL) {
        if (drv_queue_graph_cancel_parse(out[0], &gc, &err) < 0 ||
            drv__cli_graph_takeback(cli, &gc, &err) < 0) {
            rc = drv__cli_failed(cli, &err);
            goto done;
        }
        cr = &gc;
    }
    run = drv_job_from_fields("", out[hi], &err);
    if (run == NULL) {
        rc = drv__cli_failed(cli, &err);
        goto done;
    }
    if (run->nfields == 0) {
        fprintf(stderr, "%s: no pipeline run %s on queue %s (a graph run's "
                "state is kept result_ttl, or a day, after it ends)\n",
                cli->prog, ops[1], ops[0]);
        rc = -ENOENT;
        goto done;
    }
    nodes = node_names(run);
    if (cli->json) {
        print_json(ops[0], ops[1], run, nodes, cr);
    } else {
        if (cr != NULL && cr->changed)
            printf("cancelled: %lld waiting entries removed, %lld delayed "
                   "retries removed, %lld running entries marked\n",
                   cr->removed, cr->delayed, cr->marked);
        else if (cr != NULL)
            printf("not cancelled: the run is %s\n", cr->status);
        print_text(ops[1], run, nodes);
    }
    if (cr != NULL && !cr->changed)
        rc = -EALREADY;
done:
    if (nodes != NULL)
        free_names(nodes);
    drv_job_free(run);
    drv_queue_graph_cancelled_fini(&gc);
    drv__cli_free_replies(c.n, out);
    drv_queue_cmds_fini(&c);
    free(key);
    return rc;
}
