/*
 * cli_stats.c -- `drover stats` (per queue counts) and `drover workers`
 * (the worker registry). pkg/queue builds the commands and parses the
 * replies; this file sends them and prints a table, or JSON (--json).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/json.h"
#include "drover/queue.h"

#include "cli.h"

/* ---------------------------------------------------------------- stats */

static void
add_row(struct drv_cli_table *t, const char *queue,
        const struct drv_queue_stats *s)
{
    const int64_t v[10] = {s->ready, s->running, s->delayed, s->dead,
                          s->processed, s->failed, s->retried, s->dead_max,
                          s->deduped, s->cancelled};
    char num[10][24];
    const char *cells[12];
    size_t i;

    cells[0] = queue;
    for (i = 0; i < 10; i++) {
        if (v[i] < 0)
            snprintf(num[i], sizeof num[i], "?");
        else
            snprintf(num[i], sizeof num[i], "%" PRId64, v[i]);
        cells[i + 1] = num[i];
    }
    /* PAUSED before DEAD_MAX: the columns a script read before DEAD_MAX
     * was added keep their places */
    cells[8] = s->paused ? "yes" : "no";
    cells[9] = num[7];
    cells[10] = num[8]; /* DEDUPED: added after DEAD_MAX, likewise */
    cells[11] = num[9]; /* CANCELLED: added last, likewise */
    drv__cli_table_add(t, cells);
}

/* Parse the replies of every queue, then print them all (nothing is
 * printed when one fails). */
static int
print_stats(struct drv_cli *cli, const char *const *queues, size_t nq,
            redisReply **out)
{
    static const char *const header[12] = {
        "QUEUE", "READY", "RUNNING", "DELAYED", "DEAD", "PROCESSED",
        "FAILED", "RETRIED", "PAUSED", "DEAD_MAX", "DEDUPED", "CANCELLED",
    };
    struct drv_queue_stats *s = drv_xcalloc(nq + 1, sizeof *s);
    struct drv_cli_table t;
    struct drv_json *j;
    struct drv_err err;
    size_t i;
    int rc = 0;

    for (i = 0; rc == 0 && i < nq; i++) {
        rc = drv_queue_stats_parse(out + i * DRV_QUEUE_STATS_CMDS,
                                   DRV_QUEUE_STATS_CMDS, &s[i], &err);
        if (rc < 0)
            fprintf(stderr, "%s: %s: %s\n", cli->prog, queues[i], err.msg);
        s[i].dead_max = cli->cfg->worker.dead_max;
    }
    if (rc == 0 && cli->json) {
        j = drv__cli_json_begin(cli);
        drv_json_object_begin(j);
        drv_json_key(j, "queues");
        drv_json_array_begin(j);
        for (i = 0; i < nq; i++)
            drv_queue_stats_json(j, queues[i], &s[i]);
        drv_json_array_end(j);
        drv_json_object_end(j);
    } else if (rc == 0) {
        /* numbers right-aligned */
        drv__cli_table_init(&t, 12, 0xfeu | (7u << 9));
        drv__cli_table_add(&t, header);
        for (i = 0; i < nq; i++)
            add_row(&t, queues[i], &s[i]);
        drv__cli_table_print(&t, stdout);
        drv__cli_table_fini(&t);
    }
    free(s);
    return rc;
}

int
drv__cli_stats(struct drv_cli *cli, int argc, char **argv)
{
    struct drv_queue_keys k;
    struct drv_queue_cmds c;
    redisReply **out = NULL;
    const char *const *queues = NULL;
    size_t nq = 0, i;
    int rest = 0, rc;

    rc = drv__cli_args_connect(cli, argc, argv, "QUEUE...", &rest, NULL);
    if (rc < 0)
        return rc;
    if (rest < argc) {
        queues = (const char *const *)argv + rest;
        nq = (size_t)(argc - rest);
    } else {
        queues = (const char *const *)cli->cfg->queues;
        nq = cli->cfg->nqueues;
    }
    drv_queue_cmds_init(&c);
    for (i = 0; i < nq; i++) {
        drv_queue_keys_init(&k, cli->cfg->redis.prefix, queues[i]);
        drv_queue_stats_build(&c, &k);
        drv_queue_keys_fini(&k);
    }
    rc = drv__cli_run(cli, &c, &out);
    if (rc == 0)
        rc = print_stats(cli, queues, nq, out);
    drv__cli_free_replies(c.n, out);
    drv_queue_cmds_fini(&c);
    return rc;
}

/* ------------------------------------------------------------- workers */

static void
add_worker(struct drv_cli_table *t, const struct drv_queue_worker *w,
           int64_t now)
{
    const int64_t num[2] = {w->pid, w->busy};
    char started_s[40], beat_s[40], num_s[2][24];
    const char *cells[8], *state = "ok";
    size_t i;

    for (i = 0; i < 2; i++) {
        if (num[i] >= 0)
            snprintf(num_s[i], sizeof num_s[i], "%" PRId64, num[i]);
        else
            snprintf(num_s[i], sizeof num_s[i], "?");
    }
    if (w->started_ms >= 0)
        drv__cli_time(w->started_ms, started_s, sizeof started_s);
    else
        snprintf(started_s, sizeof started_s, "?");
    if (w->beat_ms >= 0) {
        drv__cli_age(now - w->beat_ms, beat_s, sizeof beat_s);
        strncat(beat_s, " ago", sizeof beat_s - strlen(beat_s) - 1);
        if (drv_queue_worker_stale(w, now))
            state = "stale";
    } else {
        snprintf(beat_s, sizeof beat_s, "?");
        state = "unknown";
    }
    cells[0] = w->id;
    cells[1] = w->host != NULL ? w->host : "?";
    cells[2] = num_s[0];
    cells[3] = w->queues != NULL ? w->queues : "?";
    cells[4] = num_s[1];
    cells[5] = started_s;
    cells[6] = beat_s;
    cells[7] = state;
    drv__cli_table_add(t, cells);
}

static void
print_workers(struct drv_cli *cli, const struct drv_queue_workers *ws)
{
    static const char *const header[8] = {
        "ID", "HOST", "PID", "QUEUES", "BUSY", "STARTED", "BEAT", "STATE",
    };
    int64_t now = drv_clock_unix_ms();
    struct drv_cli_table t;
    size_t i;

    if (cli->json) {
        drv_queue_workers_json(drv__cli_json_begin(cli), ws, now);
        return;
    }
    drv__cli_table_init(&t, 8, (1u << 2) | (1u << 4));
    drv__cli_table_add(&t, header);
    for (i = 0; i < ws->n; i++)
        add_worker(&t, &ws->w[i], now);
    drv__cli_table_print(&t, stdout);
    drv__cli_table_fini(&t);
}

int
drv__cli_workers(struct drv_cli *cli, int argc, char **argv)
{
    struct drv_queue_workers ws;
    struct drv_queue_cmds c;
    struct drv_err err;
    redisReply **out = NULL;
    int rc;

    rc = drv__cli_args_connect(cli, argc, argv, "", NULL);
    if (rc < 0)
        return rc;
    drv_queue_cmds_init(&c);
    drv_queue_workers_build(&c, cli->cfg->redis.prefix);
    rc = drv__cli_run(cli, &c, &out);
    if (rc == 0)
        rc = drv__cli_parsed(cli, drv_queue_workers_parse(out, c.n, &ws,
                                                          &err), &err);
    if (rc == 0) {
        print_workers(cli, &ws);
        drv_queue_workers_fini(&ws);
    }
    drv__cli_free_replies(c.n, out);
    drv_queue_cmds_fini(&c);
    return rc;
}
