/*
 * cli_wait.c -- drover wait QUEUE ID [--timeout D] [--json]: block until
 * job ID has its final outcome, then print it like drover result.
 *
 * No polling. A worker's settle script (and a cancel) PUBLISHes the
 * result key on P:{Q}:done when it writes a final status (ok, dead,
 * cancelled). wait SUBSCRIBEs on one connection FIRST, then reads, on a
 * second one, where the job is and its result: an outcome written before
 * the subscription is in the result; one written after it comes as a
 * message, upon which the result is read again. Exit 0 for ok, 1 for any
 * other outcome, a timeout, or a job drover knows nothing of.
 *
 * ID may also be a graph pipeline run (the id its first entry was
 * enqueued with). Each read also reads the run (pkg/queue's
 * drv_queue_graph_run_build, as drover pipeline does); once the run
 * exists, wait is for the run. The graph scripts PUBLISH the run's key
 * on the same channel when the run ends (ok, dead, cancelled), so the
 * same subscription serves both: a waiter that found the run's first
 * entry still waiting is woken by the run's end. Same exit codes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/buf.h"
#include "drover/clock.h"
#include "drover/common.h"
#include "drover/json.h"
#include "drover/parse.h"
#include "drover/queue_cancel.h"
#include "drover/queue_graph.h"
#include "drover/redis.h"

#include "cli.h"

#define WAIT_DEFAULT_MS 30000
#define WAIT_FOREVER_STEP_MS 3600000

/* The result's status when it is final (ok, dead, cancelled), else NULL. */
static const char *
final_status(const struct drv_job *res)
{
    static const char *const finals[] = {"ok", "dead", "cancelled"};
    const struct drv_field *st;
    size_t i;

    if (res == NULL || (st = drv_job_field(res, "status")) == NULL)
        return NULL;
    for (i = 0; i < sizeof finals / sizeof finals[0]; i++)
        if (st->value_len == strlen(finals[i]) &&
            memcmp(st->value, finals[i], st->value_len) == 0)
            return finals[i];
    return NULL;
}

/* The job's result is final and no graph run has its id (a run's end is
 * what a wait for it waits for: a start that found the run existing
 * keeps a dead result of its own under the run's id). */
static int
job_final(const struct drv_queue_lookup *l,
          const struct drv_queue_graph_run *run)
{
    return run->hash == NULL && final_status(l->result) != NULL;
}

/* Where job id waits, its result and the graph run of that id, read in
 * that order (a job that settles, or a run that starts, between the reads
 * then shows its later state). */
static int
look(struct drv_cli *cli, const struct drv_queue_keys *k, const char *id,
     struct drv_queue_lookup *l, struct drv_queue_graph_run *run)
{
    struct drv_queue_cmds c;
    struct drv_err err;
    redisReply **r = NULL, *swapped[2];
    int rc;

    memset(l, 0, sizeof *l);
    memset(run, 0, sizeof *run);
    drv_queue_cmds_init(&c);
    drv_queue_lookup_build(&c, k, id);
    /* the builder puts the result first: send the lookup first */
    {
        struct drv_argv t = c.cmd[0];

        c.cmd[0] = c.cmd[1];
        c.cmd[1] = t;
    }
    drv_queue_graph_run_build(&c, cli->cfg->redis.prefix, k->name, id,
                              strlen(id));
    rc = drv__cli_run(cli, &c, &r);
    if (rc == 0) {
        swapped[0] = r[1];
        swapped[1] = r[0];
        rc = drv_queue_lookup_parse(swapped, 2, l, &err);
        if (rc == 0)
            rc = drv_queue_graph_run_parse(r[2], run, &err);
        if (rc < 0)
            drv__cli_failed(cli, &err);
    }
    drv__cli_free_replies(c.n, r);
    drv_queue_cmds_fini(&c);
    return rc;
}

/* A running job's progress on stderr, when it changed since last (a
 * "PCT% MSG" text kept in last). */
static void
show_progress(struct drv_cli *cli, const struct drv_job *res,
              struct drv_buf *last)
{
    const struct drv_field *p, *m;
    struct drv_buf now;

    if (res == NULL || (p = drv_job_field(res, "progress")) == NULL)
        return;
    m = drv_job_field(res, "progress_msg");
    drv_buf_init(&now);
    drv_buf_add(&now, p->value, p->value_len);
    drv_buf_adds(&now, "% ");
    if (m != NULL)
        drv_buf_logfmt(&now, m->value, m->value_len, 200);
    if (last->len != now.len || memcmp(last->data, now.data, now.len) != 0) {
        fprintf(stderr, "%s: progress %s\n", cli->prog, now.data);
        drv_buf_reset(last);
        drv_buf_add(last, now.data, now.len);
    }
    drv_buf_fini(&now);
}

/* A message on the subscribed channel that names key. */
static int
names_key(const redisReply *m, const char *key, size_t len)
{
    return m->type == REDIS_REPLY_ARRAY && m->elements == 3 &&
           m->element[0]->type == REDIS_REPLY_STRING &&
           strcmp(m->element[0]->str, "message") == 0 &&
           m->element[2]->type == REDIS_REPLY_STRING &&
           m->element[2]->len == len &&
           memcmp(m->element[2]->str, key, len) == 0;
}

/* Nodes of the run that have settled (ok, dead, skipped, cancelled). */
static size_t
settled_nodes(const struct drv_queue_graph_run *run)
{
    static const char *const done[] = {"ok", "dead", "skipped",
                                       "cancelled"};
    const struct drv_field *f;
    size_t i, k, n = 0;

    for (i = 0; i < run->nnodes; i++) {
        f = drv_queue_graph_node_field(run, run->nodes[i].name, "state");
        for (k = 0; f != NULL && k < DRV_ARRAY_LEN(done); k++)
            if (f->value_len == strlen(done[k]) &&
                memcmp(f->value, done[k], f->value_len) == 0) {
                n++;
                break;
            }
    }
    return n;
}

/* A finished run as drover wait prints it: "name: value" lines like a
 * job's result, then each node's state. */
static void
print_run(const struct drv_queue_graph_run *run)
{
    static const char *const names[] = {"status", "result", "error",
                                        "dead_node", "created_at",
                                        "finished_at"};
    const struct drv_field *f;
    struct drv_buf b;
    size_t i;

    for (i = 0; i < DRV_ARRAY_LEN(names); i++) {
        f = drv_queue_graph_node_field(run, NULL, names[i]);
        if (f != NULL)
            drv__cli_print_field(names[i], f->value, f->value_len);
    }
    drv_buf_init(&b);
    for (i = 0; i < run->nnodes; i++) {
        f = drv_queue_graph_node_field(run, run->nodes[i].name, "state");
        drv_buf_addf(&b, "%s%s=", i > 0 ? " " : "", run->nodes[i].name);
        if (f != NULL)
            drv_buf_add(&b, f->value, f->value_len);
        else
            drv_buf_adds(&b, "-");
    }
    drv__cli_print_field("nodes", b.data != NULL ? b.data : "", b.len);
    drv_buf_fini(&b);
}

/* The --json document: a job's outcome, or a run's (when run->hash). */
static void
print_json(struct drv_json *j, const char *queue, const char *id,
           int timed_out, const struct drv_queue_lookup *l,
           const struct drv_queue_graph_run *run)
{
    drv_json_object_begin(j);
    drv_json_member_bytes(j, "queue", queue, strlen(queue));
    drv_json_member_bytes(j, "id", id, strlen(id));
    drv_json_member_bool(j, "timed_out", timed_out);
    if (run->hash != NULL) {
        drv_json_member_strz(j, "status", drv_queue_graph_run_final(run));
        drv_json_key(j, "run");
        drv_queue_graph_run_json(j, queue, id, run, NULL);
    } else {
        drv_json_member_strz(j, "status", final_status(l->result));
        drv_json_member_strz(j, "where", drv_queue_where_name(l->where));
        drv_json_key(j, "result");
        drv_queue_result_json(j, l->result);
    }
    drv_json_object_end(j);
}

/* SUBSCRIBE sub to the queue's done channel. */
static int
subscribe(struct drv_cli *cli, struct drv_redis_sync *sub,
          const struct drv_queue_keys *k)
{
    struct drv_argv a;
    struct drv_err err;
    redisReply *r = NULL;
    char *chan = drv_queue_done_channel(k);
    int rc;

    drv_argv_init(&a);
    drv_argv_adds(&a, "SUBSCRIBE");
    drv_argv_adds(&a, chan);
    rc = drv_redis_sync_run(sub, 1, &a, &r, &err);
    if (rc == 0 && (r->type != REDIS_REPLY_ARRAY || r->elements != 3)) {
        drv_err_set(&err, DRV_EREDIS, "SUBSCRIBE %s: %s", chan,
                    r->type == REDIS_REPLY_ERROR ? r->str
                                                 : "unexpected reply");
        rc = DRV_EREDIS;
    }
    if (rc < 0)
        drv__cli_failed(cli, &err);
    if (r != NULL)
        freeReplyObject(r);
    drv_argv_fini(&a);
    free(chan);
    return rc;
}

/* Wait for the message that names rkey or runkey, until deadline_ns (0 =
 * never). 0 when it came, -ETIMEDOUT, or another error (printed). */
static int
await_done(struct drv_cli *cli, struct drv_redis_sync *sub,
           const struct drv_buf *rkey, const char *runkey,
           int64_t deadline_ns)
{
    struct drv_err err;
    redisReply *m = NULL;
    int64_t left;
    int rc, hit;

    for (;;) {
        left = WAIT_FOREVER_STEP_MS;
        if (deadline_ns != 0) {
            left = (deadline_ns - drv_clock_mono_ns()) / DRV_NS_PER_MS;
            if (left <= 0)
                return -ETIMEDOUT;
        }
        rc = drv_redis_sync_read(sub, left, &m, &err);
        if (rc == -ETIMEDOUT && deadline_ns == 0) {
            /* one quiet hour of waiting forever: subscribe again */
            return -EAGAIN;
        }
        if (rc < 0) {
            if (rc != -ETIMEDOUT)
                drv__cli_failed(cli, &err);
            return rc;
        }
        hit = names_key(m, rkey->data, rkey->len) ||
              names_key(m, runkey, strlen(runkey));
        freeReplyObject(m);
        if (hit)
            return 0;
    }
}

int
drv__cli_wait(struct drv_cli *cli, int argc, char **argv)
{
    const char *queue = NULL, *id = NULL, *timeout = NULL, *st;
    struct drv_redis_sync *sub = NULL;
    struct drv_queue_lookup l;
    struct drv_queue_graph_run run;
    struct drv_queue_keys k;
    struct drv_buf rkey, shown;
    char *runkey = NULL;
    int64_t timeout_ms = WAIT_DEFAULT_MS, deadline = 0;
    int rc, timed_out = 0;

    rc = drv__cli_args(cli, argc, argv, "QUEUE ID --timeout=", &queue, &id,
                       &timeout, NULL);
    if (rc < 0)
        return rc;
    if (timeout != NULL && drv_parse_duration_ms(timeout, &timeout_ms) < 0)
        return drv__cli_usage_error(cli, "--timeout \"%s\": not a duration "
                                    "(250ms, 30s, 5m, 1h, 1d; 0 = "
                                    "forever)", timeout);
    if (timeout_ms > 0)
        deadline = drv_clock_mono_ns() + timeout_ms * DRV_NS_PER_MS;
    /* two connections: the subscriber, then the one for commands */
    rc = drv__cli_connect(cli);
    if (rc < 0)
        return rc;
    sub = cli->rs;
    cli->rs = NULL;
    rc = drv__cli_connect(cli);
    if (rc < 0) {
        drv_redis_sync_free(sub);
        return rc;
    }
    memset(&l, 0, sizeof l);
    memset(&run, 0, sizeof run);
    drv_queue_keys_init(&k, cli->cfg->redis.prefix, queue);
    runkey = drv_queue_run_key(cli->cfg->redis.prefix, queue, id,
                               strlen(id));
    drv_buf_init(&rkey);
    drv_buf_init(&shown);
    drv_buf_adds(&rkey, k.result_prefix);
    drv_buf_adds(&rkey, id);
    rc = subscribe(cli, sub, &k);
    while (rc == 0) {
        drv_queue_lookup_fini(&l);
        drv_queue_graph_run_fini(&run);
        rc = look(cli, &k, id, &l, &run);
        if (rc < 0 || job_final(&l, &run) ||
            drv_queue_graph_run_final(&run) != NULL)
            break;
        if (!cli->json)
            show_progress(cli, l.result, &shown);
        if (l.result == NULL && l.where == DRV_QUEUE_NOWHERE &&
            run.hash == NULL) {
            rc = -ENOENT;
            if (!cli->json)
                fprintf(stderr, "%s: drover knows no job or pipeline run "
                        "%s in queue %s (no result kept, not waiting "
                        "anywhere)\n", cli->prog, id, queue);
            break;
        }
        rc = await_done(cli, sub, &rkey, runkey, deadline);
        if (rc == -EAGAIN) {
            drv_redis_sync_free(sub);
            sub = NULL;
            rc = drv__cli_connect(cli) < 0 ? DRV_EDOWN : 0;
            /* the fresh connection is the subscriber now */
            if (rc == 0) {
                sub = cli->rs;
                cli->rs = NULL;
                rc = drv__cli_connect(cli);
            }
            if (rc == 0)
                rc = subscribe(cli, sub, &k);
        } else if (rc == -ETIMEDOUT) {
            timed_out = 1;
            drv_queue_lookup_fini(&l);
            drv_queue_graph_run_fini(&run);
            rc = look(cli, &k, id, &l, &run) < 0 ? DRV_EDOWN
                                                     : -ETIMEDOUT;
            if (rc == -ETIMEDOUT && (job_final(&l, &run) ||
                                     drv_queue_graph_run_final(&run) != NULL))
                rc = 0; /* it ended just as time ran out */
            else
                break;
        }
    }
    st = run.hash != NULL ? drv_queue_graph_run_final(&run)
                          : final_status(l.result);
    if (cli->json && (rc == 0 || rc == -ENOENT || rc == -ETIMEDOUT)) {
        print_json(drv__cli_json_begin(cli), queue, id,
                   timed_out && st == NULL, &l, &run);
    } else if (run.hash != NULL && rc == 0 && st != NULL) {
        print_run(&run);
    } else if (run.hash != NULL && rc == -ETIMEDOUT) {
        fprintf(stderr, "%s: timed out after %s; pipeline run %s is "
                "running (%zu of %zu nodes settled)\n", cli->prog,
                timeout != NULL ? timeout : "30s", id,
                settled_nodes(&run), run.nnodes);
    } else if (rc == 0 && st != NULL) {
        drv__cli_print_result(l.result);
    } else if (rc == -ETIMEDOUT) {
        fprintf(stderr, "%s: timed out after %s; job %s is %s\n", cli->prog,
                timeout != NULL ? timeout : "30s", id,
                l.where != DRV_QUEUE_NOWHERE ? drv_queue_where_name(l.where)
                                             : "not finished");
    }
    if (rc == 0 && (st == NULL || strcmp(st, "ok") != 0))
        rc = -ECANCELED; /* an outcome other than ok: exit 1 */
    drv_buf_fini(&rkey);
    drv_buf_fini(&shown);
    drv_queue_lookup_fini(&l);
    drv_queue_graph_run_fini(&run);
    drv_queue_keys_fini(&k);
    drv_redis_sync_free(sub);
    free(runkey);
    return rc;
}
