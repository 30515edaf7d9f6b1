/*
 * cli_stats.c -- `drover stats` (per queue counts) and `drover workers`.
 *
 * stats sends, for every queue, in one pipeline:
 *
 *   XLEN P:{Q}:jobs           entries in the stream
 *   XINFO GROUPS P:{Q}:jobs   the group's pending count and lag
 *   ZCARD P:{Q}:delayed       waiting for a retry or their time
 *   XLEN P:{Q}:dead           dead entries
 *   HMGET P:{Q}:stats processed failed retried
 *   EXISTS P:{Q}:paused
 *
 * READY (not yet delivered) and RUNNING (delivered, not acked) come from
 * the first two as drv_queue_sample_ready_running reads them (the group's
 * lag, else XLEN - pending; no group yet: all of XLEN).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/parse.h"
#include "drover/queue.h"

#include "cli.h"

#define STATS_CMDS 6    /* commands per queue, in the order above */

/* The numbers of one queue; -1 = unknown (shown "?"). */
struct queue_stats {
    int64_t ready;      /* not yet delivered */
    int64_t running;    /* delivered, not acked */
    int64_t delayed;    /* ZCARD delayed */
    int64_t dead;       /* XLEN dead */
    int64_t processed;  /* stats hash */
    int64_t failed;     /* stats hash */
    int64_t retried;    /* stats hash */
    int paused;         /* the paused key exists */
};

/* A stats hash value: a decimal string, or nil for 0. */
static int64_t
counter(const redisReply *r)
{
    int64_t v;

    if (r->type == REDIS_REPLY_NIL)
        return 0;
    if (r->type == REDIS_REPLY_STRING &&
        drv_parse_int(r->str, 0, INT64_MAX, &v) == 0)
        return v;
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    return -1;
}

/* Fill ready and running from XLEN and XINFO GROUPS (pkg/queue's rule,
 * the same the worker's metrics use); 0 or an error, said on stderr. */
static int
ready_running(struct drv_cli *cli, const char *queue, const redisReply *xlen,
              const redisReply *groups, struct queue_stats *s)
{
    struct drv_queue_sample qs;
    struct drv_err err;
    int rc;

    drv_err_clear(&err);
    rc = drv_queue_sample_ready_running(xlen, groups, &qs, &err);
    if (rc < 0) {
        fprintf(stderr, "%s: %s: %s\n", cli->prog, queue, err.msg);
        return rc;
    }
    s->ready = qs.ready;
    s->running = qs.running;
    return 0;
}

static int
parse_queue(struct drv_cli *cli, const char *queue, redisReply **r,
            struct queue_stats *s)
{
    const redisReply *h = r[4];

    if (ready_running(cli, queue, r[0], r[1], s) < 0 ||
        drv__cli_reply_check(cli, r[2], REDIS_REPLY_INTEGER, queue) < 0 ||
        drv__cli_reply_check(cli, r[3], REDIS_REPLY_INTEGER, queue) < 0 ||
        drv__cli_reply_check(cli, h, REDIS_REPLY_ARRAY, queue) < 0 ||
        drv__cli_reply_check(cli, r[5], REDIS_REPLY_INTEGER, queue) < 0)
        return DRV_EREDIS;
    if (h->elements != 3) {
        fprintf(stderr, "%s: %s: unexpected HMGET reply\n", cli->prog,
                queue);
        return DRV_EPROTO;
    }
    s->delayed = r[2]->integer;
    s->dead = r[3]->integer;
    s->processed = counter(h->element[0]);
    s->failed = counter(h->element[1]);
    s->retried = counter(h->element[2]);
    s->paused = r[5]->integer > 0;
    return 0;
}

static void
add_row(struct drv_cli_table *t, const char *queue,
        const struct queue_stats *s)
{
    const int64_t v[7] = {s->ready, s->running, s->delayed, s->dead,
                          s->processed, s->failed, s->retried};
    char num[7][24];
    const char *cells[9];
    size_t i;

    cells[0] = queue;
    for (i = 0; i < 7; i++) {
        if (v[i] < 0)
            snprintf(num[i], sizeof num[i], "?");
        else
            snprintf(num[i], sizeof num[i], "%" PRId64, v[i]);
        cells[i + 1] = num[i];
    }
    cells[8] = s->paused ? "yes" : "no";
    drv__cli_table_add(t, cells);
}

int
drv__cli_stats(struct drv_cli *cli, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"redis", required_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    static const char *const header[9] = {
        "QUEUE", "READY", "RUNNING", "DELAYED", "DEAD", "PROCESSED",
        "FAILED", "RETRIED", "PAUSED",
    };
    struct drv_queue_keys *keys = NULL;
    struct drv_argv *cmds = NULL;
    redisReply **out = NULL;
    struct drv_cli_table t;
    struct queue_stats s;
    const char *const *queues = NULL;
    size_t nq = 0, i, j;
    int first = 1, c, rc = 0;

    c = drv__cli_getopt(cli, argc, argv, "", longopts, &first);
    if (c != -1)
        return c < 0 ? c : -EINVAL; /* no options of its own */
    for (i = (size_t)optind; i < (size_t)argc; i++) {
        rc = drv__cli_check_queue(cli, argv[i]);
        if (rc < 0)
            return rc;
    }
    rc = drv__cli_connect(cli);
    if (rc < 0)
        return rc;
    if (optind < argc) {
        queues = (const char *const *)argv + optind;
        nq = (size_t)(argc - optind);
    } else {
        queues = (const char *const *)cli->cfg->queues;
        nq = cli->cfg->nqueues;
    }
    keys = drv_xcalloc(nq, sizeof *keys);
    cmds = drv_xcalloc(nq * STATS_CMDS, sizeof *cmds);
    out = drv_xcalloc(nq * STATS_CMDS, sizeof *out);
    for (i = 0; i < nq; i++) {
        struct drv_argv *a = &cmds[i * STATS_CMDS];

        drv_queue_keys_init(&keys[i], cli->cfg->redis.prefix, queues[i]);
        for (j = 0; j < STATS_CMDS; j++)
            drv_argv_init(&a[j]);
        drv_argv_adds(&a[0], "XLEN");
        drv_argv_adds(&a[0], keys[i].jobs);
        drv_argv_adds(&a[1], "XINFO");
        drv_argv_adds(&a[1], "GROUPS");
        drv_argv_adds(&a[1], keys[i].jobs);
        drv_argv_adds(&a[2], "ZCARD");
        drv_argv_adds(&a[2], keys[i].delayed);
        drv_argv_adds(&a[3], "XLEN");
        drv_argv_adds(&a[3], keys[i].dead);
        drv_argv_adds(&a[4], "HMGET");
        drv_argv_adds(&a[4], keys[i].stats);
        drv_argv_adds(&a[4], "processed");
        drv_argv_adds(&a[4], "failed");
        drv_argv_adds(&a[4], "retried");
        drv_argv_adds(&a[5], "EXISTS");
        drv_argv_adds(&a[5], keys[i].paused);
    }
    rc = drv__cli_pipeline(cli, nq * STATS_CMDS, cmds, out);
    drv__cli_table_init(&t, 9, 0xfeu); /* numbers right-aligned */
    drv__cli_table_add(&t, header);
    for (i = 0; rc == 0 && i < nq; i++) {
        memset(&s, 0, sizeof s);
        rc = parse_queue(cli, queues[i], &out[i * STATS_CMDS], &s);
        if (rc == 0)
            add_row(&t, queues[i], &s);
    }
    if (rc == 0)
        drv__cli_table_print(&t, stdout);
    drv__cli_table_fini(&t);
    drv__cli_free_replies(nq * STATS_CMDS, out);
    for (i = 0; i < nq; i++) {
        for (j = 0; j < STATS_CMDS; j++)
            drv_argv_fini(&cmds[i * STATS_CMDS + j]);
        drv_queue_keys_fini(&keys[i]);
    }
    free(out);
    free(cmds);
    free(keys);
    return rc;
}

/* ------------------------------------------------------------- workers */

/* One parsed entry of P:workers. */
struct worker_row {
    char *id;          /* owned */
    char *line;        /* owned: the raw logfmt line */
};

static int
cmp_rows(const void *a, const void *b)
{
    const struct worker_row *x = a, *y = b;

    return strcmp(x->id, y->id);
}

/*
 * The value of key in a logfmt line (key=value, space-separated; a value
 * may be "quoted" -- then it is returned without its quotes, escapes
 * left as they are). Returns a new string, or NULL when absent.
 */
static char *
logfmt_get(const char *line, const char *key)
{
    size_t klen = strlen(key), n;
    const char *p = line, *v, *end;

    while (*p != '\0') {
        while (*p == ' ')
            p++;
        if (strncmp(p, key, klen) == 0 && p[klen] == '=') {
            v = p + klen + 1;
            if (*v == '"') {
                v++;
                for (end = v; *end != '\0' && *end != '"'; end++)
                    if (*end == '\\' && end[1] != '\0')
                        end++;
            } else {
                end = v + strcspn(v, " ");
            }
            n = (size_t)(end - v);
            return drv_xstrndup(v, n);
        }
        /* skip this pair, quoted value included */
        while (*p != '\0' && *p != ' ') {
            if (*p == '"') {
                for (p++; *p != '\0' && *p != '"'; p++)
                    if (*p == '\\' && p[1] != '\0')
                        p++;
                if (*p == '"')
                    p++;
            } else {
                p++;
            }
        }
    }
    return NULL;
}

static void
add_worker(struct drv_cli_table *t, const struct worker_row *w,
           int64_t now)
{
    static const char *const keys[] = {"host", "pid", "queues", "busy"};
    char *val[4] = {NULL, NULL, NULL, NULL};
    char *started = NULL, *beat = NULL;
    char started_s[40], beat_s[40];
    const char *cells[8], *state = "ok";
    int64_t ms;
    size_t i;

    for (i = 0; i < 4; i++)
        val[i] = logfmt_get(w->line, keys[i]);
    started = logfmt_get(w->line, "started");
    beat = logfmt_get(w->line, "beat");
    if (started != NULL && drv_parse_int(started, 0, INT64_MAX, &ms) == 0)
        drv__cli_time(ms, started_s, sizeof started_s);
    else
        snprintf(started_s, sizeof started_s, "?");
    if (beat != NULL && drv_parse_int(beat, 0, INT64_MAX, &ms) == 0) {
        drv__cli_age(now - ms, beat_s, sizeof beat_s);
        strncat(beat_s, " ago", sizeof beat_s - strlen(beat_s) - 1);
        if (now - ms > DRV_CLI_STALE_MS)
            state = "stale";
    } else {
        snprintf(beat_s, sizeof beat_s, "?");
        state = "unknown";
    }
    cells[0] = w->id;
    for (i = 0; i < 4; i++)
        cells[i + 1] = val[i] != NULL ? val[i] : "?";
    cells[5] = started_s;
    cells[6] = beat_s;
    cells[7] = state;
    drv__cli_table_add(t, cells);
    for (i = 0; i < 4; i++)
        free(val[i]);
    free(started);
    free(beat);
}

int
drv__cli_workers(struct drv_cli *cli, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"redis", required_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    static const char *const header[8] = {
        "ID", "HOST", "PID", "QUEUES", "BUSY", "STARTED", "BEAT", "STATE",
    };
    struct worker_row *rows = NULL;
    struct drv_cli_table t;
    redisReply *r = NULL;
    char *key = NULL;
    size_t n = 0, i;
    int64_t now;
    int first = 1, c, rc;

    c = drv__cli_getopt(cli, argc, argv, "", longopts, &first);
    if (c != -1)
        return c < 0 ? c : -EINVAL; /* no options of its own */
    if (optind < argc)
        return drv__cli_usage_error(cli, "unexpected argument \"%s\"",
                                    argv[optind]);
    rc = drv__cli_connect(cli);
    if (rc < 0)
        return rc;
    key = drv_queue_workers_key(cli->cfg->redis.prefix);
    r = drv__cli_cmd(cli, "HGETALL", key, (char *)NULL);
    free(key);
    if (r == NULL)
        return DRV_EDOWN;
    rc = drv__cli_reply_check(cli, r, REDIS_REPLY_ARRAY, "HGETALL");
    if (rc < 0)
        goto out;
    n = r->elements / 2;
    rows = drv_xcalloc(n + 1, sizeof *rows);
    for (i = 0; i < n; i++) {
        rows[i].id = drv_xstrndup(r->element[2 * i]->str,
                                  r->element[2 * i]->len);
        rows[i].line = drv_xstrndup(r->element[2 * i + 1]->str,
                                    r->element[2 * i + 1]->len);
    }
    qsort(rows, n, sizeof *rows, cmp_rows);
    now = drv_clock_unix_ms();
    drv__cli_table_init(&t, 8, (1u << 2) | (1u << 4));
    drv__cli_table_add(&t, header);
    for (i = 0; i < n; i++)
        add_worker(&t, &rows[i], now);
    drv__cli_table_print(&t, stdout);
    drv__cli_table_fini(&t);
    for (i = 0; i < n; i++) {
        free(rows[i].id);
        free(rows[i].line);
    }
    free(rows);
out:
    freeReplyObject(r);
    return rc;
}
