/*
 * cli_pipeline.c -- `drover pipeline QUEUE ID [--cancel] [--json]`: the
 * state of a graph pipeline run (read and parsed by pkg/queue's
 * drv_queue_graph_run_*, as the dashboard and drover wait read it), and
 * its cancel (one graph cancel script run, before the read).
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

/* A number field of node (or of the run when node is NULL), -1 when
 * absent or not a number. */
static int64_t
num(const struct drv_queue_graph_run *run, const char *node,
    const char *what)
{
    return drv_queue_graph_node_num(run, node, what);
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
print_text(const char *id, const struct drv_queue_graph_run *run)
{
    static const char *const head[] = {"NODE", "STATE", "ATTEMPTS",
                                       "QUEUE", "STARTED", "FINISHED",
                                       "ITEMS", "ERROR"};
    struct drv_cli_table t;
    char *pl = text_cell(drv_queue_graph_node_field(run, NULL, "pipeline"),
                         128);
    char *st = text_cell(drv_queue_graph_node_field(run, NULL, "status"),
                         32);
    char b1[64], b2[64], att[32], items[64];
    char *err = NULL;
    size_t i;

    printf("run %s  pipeline %s  status %s\n", id, pl, st);
    printf("created %s  finished %s\n",
           time_cell(num(run, NULL, "created_at"), b1, sizeof b1),
           time_cell(num(run, NULL, "finished_at"), b2, sizeof b2));
    err = text_cell(drv_queue_graph_node_field(run, NULL, "error"), 200);
    if (strcmp(err, "-") != 0)
        printf("error %s\n", err);
    free(err);
    free(pl);
    free(st);
    drv__cli_table_init(&t, DRV_ARRAY_LEN(head), 1u << 2);
    drv__cli_table_add(&t, head);
    for (i = 0; i < run->nnodes; i++) {
        const char *n = run->nodes[i].name;
        const char *cells[DRV_ARRAY_LEN(head)];
        char *state = text_cell(drv_queue_graph_node_field(run, n, "state"),
                                32);
        char *queue = text_cell(drv_queue_graph_node_field(run, n, "queue"),
                                64);
        char *nerr = text_cell(drv_queue_graph_node_field(run, n, "error"),
                               80);
        int64_t a = num(run, n, "attempts"), ni = num(run, n, "items");
        int64_t nd = num(run, n, "done");

        snprintf(att, sizeof att, "%lld", a < 0 ? 0LL : (long long)a);
        if (ni >= 0)
            snprintf(items, sizeof items, "%lld/%lld",
                     (long long)(nd < 0 ? 0 : nd), (long long)ni);
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

void
drv__cli_graph_cancel(struct drv_cli *cli, struct drv_queue_cmds *c,
                      const char *queue, const char *id)
{
    struct drv_script_call call;

    drv_queue_graph_cancel(&call, cli->cfg->redis.prefix, queue, id,
                           strlen(id), drv_clock_unix_ms(),
                           cli->cfg->redis.cluster.nnodes > 0);
    drv_script_call_eval(&call, drv_queue_cmds_add(c));
    drv_script_call_fini(&call);
}

/* On Redis Cluster, after a graph cancel: take back gc's entries on other
 * queues. As drv__cli_graph_cancelled. */
static int
takeback(struct drv_cli *cli, struct drv_queue_graph_cancelled *gc,
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
drv__cli_graph_cancelled(struct drv_cli *cli, const redisReply *r,
                         struct drv_queue_graph_cancelled *gc,
                         struct drv_err *err)
{
    int rc = drv_queue_graph_cancel_parse(r, gc, err);

    return rc < 0 ? rc : takeback(cli, gc, err);
}

int
drv__cli_pipeline(struct drv_cli *cli, int argc, char **argv)
{
    const char *queue = NULL, *id = NULL, *cancel = NULL;
    struct drv_queue_cmds c;
    struct drv_queue_graph_run run;
    struct drv_err err;
    redisReply **out = NULL;
    struct drv_queue_graph_cancelled gc;
    const struct drv_queue_graph_cancelled *cr = NULL;
    size_t hi = 0;
    int rc;

    memset(&gc, 0, sizeof gc);
    rc = drv__cli_args(cli, argc, argv, "QUEUE ID --cancel", &queue, &id,
                       &cancel, NULL);
    if (rc < 0)
        return rc;
    rc = drv__cli_connect(cli);
    if (rc < 0)
        return rc;
    memset(&run, 0, sizeof run);
    drv_queue_cmds_init(&c);
    if (cancel != NULL) {
        drv__cli_graph_cancel(cli, &c, queue, id);
        hi = 1;
    }
    drv_queue_graph_run_build(&c, cli->cfg->redis.prefix, queue, id,
                              strlen(id));
    rc = drv__cli_run(cli, &c, &out);
    if (rc < 0)
        goto done;
    if (cancel != NULL) {
        if (drv__cli_graph_cancelled(cli, out[0], &gc, &err) < 0) {
            rc = drv__cli_failed(cli, &err);
            goto done;
        }
        cr = &gc;
    }
    if (drv_queue_graph_run_parse(out[hi], &run, &err) < 0) {
        rc = drv__cli_failed(cli, &err);
        goto done;
    }
    if (run.hash == NULL) {
        fprintf(stderr, "%s: no pipeline run %s on queue %s (a graph run's "
                "state is kept result_ttl, or a day, after it ends)\n",
                cli->prog, id, queue);
        rc = -ENOENT;
        goto done;
    }
    if (cli->json) {
        drv_queue_graph_run_json(drv__cli_json_begin(cli), queue, id,
                                 &run, cr);
    } else {
        if (cr != NULL && cr->changed)
            printf("cancelled: %lld waiting entries removed, %lld delayed "
                   "retries removed, %lld running entries marked\n",
                   cr->removed, cr->delayed, cr->marked);
        else if (cr != NULL)
            printf("not cancelled: the run is %s\n", cr->status);
        print_text(id, &run);
    }
    if (cr != NULL && !cr->changed)
        rc = -EALREADY;
done:
    drv_queue_graph_run_fini(&run);
    drv_queue_graph_cancelled_fini(&gc);
    drv__cli_free_replies(c.n, out);
    drv_queue_cmds_fini(&c);
    return rc;
}
