/*
 * queue_registry.c -- the worker registry P:workers: the one writer of a
 * registry line (the worker's heartbeat calls drv_queue_worker_format)
 * and the one reader (the CLI, the dashboard and the worker's own stale
 * sweep call drv_queue_worker_parse).
 *
 * A line is logfmt: `host=H pid=N started=MS queues=a,b busy=N beat=MS`,
 * a value in double quotes (with backslash escapes) when it holds a
 * space, '"', '=', '\\' or a control byte.
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "drover/common.h"
#include "drover/parse.h"
#include "drover/queue.h"
#include "queue_int.h"

/* ------------------------------------------------------------ one line */

void
drv_queue_worker_format(const struct drv_queue_worker *w, struct drv_buf *b)
{
    const char *host = w->host != NULL ? w->host : "";
    const char *queues = w->queues != NULL ? w->queues : "";

    drv_buf_adds(b, "host=");
    drv_buf_logfmt(b, host, strlen(host), 0);
    drv_buf_addf(b, " pid=%lld started=%lld queues=", (long long)w->pid,
                 (long long)w->started_ms);
    drv_buf_logfmt(b, queues, strlen(queues), 0);
    drv_buf_addf(b, " busy=%lld beat=%lld", (long long)w->busy,
                 (long long)w->beat_ms);
}

/* The number in key's value, or -1. */
static int64_t
number(const char *line, size_t len, const char *key, struct drv_buf *tmp)
{
    int64_t v;

    drv_buf_reset(tmp);
    if (!drv_logfmt_get(line, len, key, tmp) ||
        drv_parse_int(tmp->data, 0, INT64_MAX, &v) < 0)
        return -1;
    return v;
}

void
drv_queue_worker_parse(const char *id, size_t id_len, const char *line,
                       size_t len, struct drv_queue_worker *w)
{
    struct drv_buf tmp, mem;
    size_t queues_off = 0, id_off = 0;
    int has_host, has_queues;

    memset(w, 0, sizeof *w);
    drv_buf_init(&tmp);
    drv_buf_init(&mem);
    /* the strings in one block: host NUL queues NUL id NUL */
    has_host = drv_logfmt_get(line, len, "host", &mem);
    drv_buf_add(&mem, "", 1);
    queues_off = mem.len;
    has_queues = drv_logfmt_get(line, len, "queues", &mem);
    drv_buf_add(&mem, "", 1);
    id_off = mem.len;
    if (id != NULL)
        drv_buf_add(&mem, id, id_len);
    drv_buf_add(&mem, "", 1);
    w->_mem = drv_buf_take(&mem, NULL);
    w->host = has_host ? w->_mem : NULL;
    w->queues = has_queues ? w->_mem + queues_off : NULL;
    w->id = id != NULL ? w->_mem + id_off : NULL;
    w->pid = number(line, len, "pid", &tmp);
    w->started_ms = number(line, len, "started", &tmp);
    w->busy = number(line, len, "busy", &tmp);
    w->beat_ms = number(line, len, "beat", &tmp);
    drv_buf_fini(&tmp);
}

void
drv_queue_worker_fini(struct drv_queue_worker *w)
{
    free(w->_mem);
    memset(w, 0, sizeof *w);
}

int
drv_queue_worker_stale(const struct drv_queue_worker *w, int64_t now_ms)
{
    return w->beat_ms >= 0 && now_ms - w->beat_ms > DRV_QUEUE_WORKER_STALE_MS;
}

int
drv_queue_worker_line_stale(const char *line, size_t len, int64_t now_ms)
{
    struct drv_queue_worker w;
    int stale;

    drv_queue_worker_parse(NULL, 0, line, len, &w);
    stale = drv_queue_worker_stale(&w, now_ms);
    drv_queue_worker_fini(&w);
    return stale;
}

/* ------------------------------------------------------ the whole hash */

void
drv_queue_worker_beat(struct drv_argv *out, const char *workers_key,
                      const char *id, const struct drv_queue_worker *w)
{
    struct drv_buf line;

    drv_buf_init(&line);
    drv_queue_worker_format(w, &line);
    drv_argv_reset(out);
    drv_argv_adds(out, "HSET");
    drv_argv_adds(out, workers_key);
    drv_argv_adds(out, id);
    drv_argv_add(out, line.data, line.len);
    drv_buf_fini(&line);
}

void
drv_queue_worker_remove(struct drv_argv *out, const char *workers_key,
                        const char *id, size_t id_len)
{
    drv_argv_reset(out);
    drv_argv_adds(out, "HDEL");
    drv_argv_adds(out, workers_key);
    drv_argv_add(out, id, id_len);
}

void
drv_queue_workers_read(struct drv_argv *out, const char *workers_key)
{
    drv__queue_command(out, "HGETALL", workers_key, NULL);
}

int
drv_queue_workers_build(struct drv_queue_cmds *c, const char *prefix)
{
    struct drv_argv *a = drv_queue_cmds_add(c);

    drv_argv_adds(a, "HGETALL");
    drv_argv_addf(a, "%s:workers", prefix);
    return 1;
}

static int
cmp_workers(const void *a, const void *b)
{
    const struct drv_queue_worker *x = a, *y = b;

    return strcmp(x->id, y->id);
}

int
drv_queue_workers_parse(struct redisReply *const *r, size_t n,
                        struct drv_queue_workers *ws, struct drv_err *err)
{
    const redisReply *h = NULL, *id, *line;
    size_t i;
    int rc;

    memset(ws, 0, sizeof *ws);
    rc = drv__queue_check_one(r, n, REDIS_REPLY_ARRAY, "workers", err);
    if (rc < 0)
        return rc;
    h = r[0];
    if (h->elements % 2 != 0)
        return drv_err_set(err, DRV_EPROTO, "HGETALL: unexpected reply");
    for (i = 0; i < h->elements; i++)
        if (h->element[i]->type != REDIS_REPLY_STRING)
            return drv_err_set(err, DRV_EPROTO, "HGETALL: unexpected "
                               "reply");
    ws->w = drv_xcalloc(h->elements / 2 + 1, sizeof *ws->w);
    for (i = 0; i + 1 < h->elements; i += 2) {
        id = h->element[i];
        line = h->element[i + 1];
        drv_queue_worker_parse(id->str, id->len, line->str, line->len,
                               &ws->w[ws->n++]);
    }
    qsort(ws->w, ws->n, sizeof *ws->w, cmp_workers);
    return 0;
}

void
drv_queue_workers_fini(struct drv_queue_workers *ws)
{
    size_t i;

    for (i = 0; i < ws->n; i++)
        drv_queue_worker_fini(&ws->w[i]);
    free(ws->w);
    memset(ws, 0, sizeof *ws);
}
