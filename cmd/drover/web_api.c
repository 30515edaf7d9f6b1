/*
 * web_api.c -- the dashboard's JSON API, the page's only data source:
 *
 *   GET  /api/session                      the CSRF token, queues, Redis
 *   GET  /api/queues                       per queue counts
 *   GET  /api/workers                      the worker registry
 *   GET  /api/queues/Q/dead?count=N&after=ENTRY_ID
 *   POST /api/queues/Q/dead/retry          {"id": ID} or {"all": true}
 *   POST /api/queues/Q/dead/purge
 *   POST /api/queues/Q/pause | /resume
 *   GET  /api/queues/Q/jobs/ID             404 when drover knows nothing
 *   POST /api/queues/Q/jobs/ID/cancel      404 when no unfinished job
 *                                          has that id
 *   GET  /api/queues/Q/runs/ID             a graph pipeline run, as
 *                                          drover pipeline --json; 404
 *                                          when there is no such run
 *
 * Q must be one of the config's queues (404 otherwise), so a request can
 * only reach the keys of the queues drover web was started for. Every
 * Redis command comes from pkg/queue's builders and every reply goes
 * through its parsers; this file only sends them (one pipeline per
 * request) and writes JSON. Values from Redis are byte strings: the JSON
 * writer escapes them, and the page inserts them as text.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "drover/clock.h"
#include "drover/queue_cancel.h"
#include "drover/common.h"
#include "drover/json.h"
#include "drover/parse.h"
#include "drover/queue.h"
#include "drover/queue_graph.h"

#include "web.h"

/* A request body's members that the POST endpoints know. */
struct body {
    char *id;       /* owned: "id", or NULL */
    int all;        /* "all": true */
    int has_all;    /* "all" was given */
};

/* ------------------------------------------------------ request bodies */

/*
 * A small strict JSON reader for the POST bodies: one object whose
 * members are strings, booleans, null or numbers (nothing nested). Enough
 * for {"id": "..."} and {"all": true}; anything else is a 400.
 */
struct jreader {
    const char *p;      /* next byte */
    const char *end;    /* one past the last byte */
};

static void
skip_ws(struct jreader *r)
{
    while (r->p < r->end &&
           (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int
hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    int i;

    for (i = 0; i < 4; i++) {
        v <<= 4;
        if (p[i] >= '0' && p[i] <= '9')
            v |= (unsigned)(p[i] - '0');
        else if (p[i] >= 'a' && p[i] <= 'f')
            v |= (unsigned)(p[i] - 'a' + 10);
        else if (p[i] >= 'A' && p[i] <= 'F')
            v |= (unsigned)(p[i] - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static void
put_utf8(struct drv_buf *b, unsigned cp)
{
    char u[4];
    size_t n;

    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    drv_buf_add(b, u, n);
}

/* A string literal at r->p into out (decoded); 0 or -EINVAL. */
static int
read_string(struct jreader *r, struct drv_buf *out)
{
    unsigned cp, lo;
    char c;

    if (r->p >= r->end || *r->p != '"')
        return -EINVAL;
    r->p++;
    while (r->p < r->end && *r->p != '"') {
        c = *r->p++;
        if ((unsigned char)c < 0x20)
            return -EINVAL;
        if (c != '\\') {
            drv_buf_add(out, &c, 1);
            continue;
        }
        if (r->p >= r->end)
            return -EINVAL;
        c = *r->p++;
        switch (c) {
        case '"': case '\\': case '/':
            drv_buf_add(out, &c, 1);
            break;
        case 'b': drv_buf_add(out, "\b", 1); break;
        case 'f': drv_buf_add(out, "\f", 1); break;
        case 'n': drv_buf_add(out, "\n", 1); break;
        case 'r': drv_buf_add(out, "\r", 1); break;
        case 't': drv_buf_add(out, "\t", 1); break;
        case 'u':
            if (r->end - r->p < 4 || hex4(r->p, &cp) < 0)
                return -EINVAL;
            r->p += 4;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return -EINVAL;           /* a lone low surrogate */
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (r->end - r->p < 6 || r->p[0] != '\\' ||
                    r->p[1] != 'u' || hex4(r->p + 2, &lo) < 0 ||
                    lo < 0xdc00 || lo > 0xdfff)
                    return -EINVAL;
                r->p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            put_utf8(out, cp);
            break;
        default:
            return -EINVAL;
        }
    }
    if (r->p >= r->end)
        return -EINVAL;
    r->p++;
    return 0;
}

/* Skip a literal word (true, false, null) or a number; 0 or -EINVAL. */
static int
skip_scalar(struct jreader *r, int *boolean)
{
    static const char *const words[] = {"true", "false", "null"};
    size_t i, n;
    const char *s = r->p;

    *boolean = -1;
    for (i = 0; i < DRV_ARRAY_LEN(words); i++) {
        n = strlen(words[i]);
        if ((size_t)(r->end - r->p) >= n && memcmp(r->p, words[i], n) == 0) {
            r->p += n;
            *boolean = i == 0 ? 1 : i == 1 ? 0 : -1;
            return 0;
        }
    }
    if (r->p < r->end && *r->p == '-')
        r->p++;
    while (r->p < r->end &&
           ((*r->p >= '0' && *r->p <= '9') || *r->p == '.' ||
            *r->p == 'e' || *r->p == 'E' || *r->p == '+' || *r->p == '-'))
        r->p++;
    return r->p > s && (r->p[-1] >= '0' && r->p[-1] <= '9') ? 0 : -EINVAL;
}

/* Parse body text into b; 0, or -EINVAL with why set. */
static int
parse_body(const char *text, size_t len, struct body *b, const char **why)
{
    struct jreader r = {text, text + len};
    struct drv_buf key, val;
    int boolean, rc = -EINVAL;

    memset(b, 0, sizeof *b);
    drv_buf_init(&key);
    drv_buf_init(&val);
    *why = "the body must be a JSON object";
    skip_ws(&r);
    if (r.p >= r.end || *r.p != '{')
        goto out;
    r.p++;
    skip_ws(&r);
    if (r.p < r.end && *r.p == '}') {
        r.p++;
        goto done;
    }
    for (;;) {
        drv_buf_reset(&key);
        drv_buf_reset(&val);
        skip_ws(&r);
        if (read_string(&r, &key) < 0)
            goto out;
        skip_ws(&r);
        if (r.p >= r.end || *r.p++ != ':')
            goto out;
        skip_ws(&r);
        if (r.p < r.end && *r.p == '"') {
            if (read_string(&r, &val) < 0)
                goto out;
            boolean = -2;
        } else if (skip_scalar(&r, &boolean) < 0) {
            *why = "member values must be strings, booleans, numbers or "
                   "null";
            goto out;
        }
        if (key.len == 2 && memcmp(key.data, "id", 2) == 0) {
            *why = "\"id\" must be a non-empty string";
            if (boolean != -2 || val.len == 0 ||
                memchr(val.data, '\0', val.len) != NULL)
                goto out;
            free(b->id);
            b->id = drv_buf_take(&val, NULL);
        } else if (key.len == 3 && memcmp(key.data, "all", 3) == 0) {
            *why = "\"all\" must be true or false";
            if (boolean < 0)
                goto out;
            b->all = boolean;
            b->has_all = 1;
        } else {
            *why = "unknown member (this endpoint takes \"id\" or \"all\")";
            goto out;
        }
        *why = "the body must be a JSON object";
        skip_ws(&r);
        if (r.p < r.end && *r.p == ',') {
            r.p++;
            continue;
        }
        if (r.p < r.end && *r.p == '}') {
            r.p++;
            break;
        }
        goto out;
    }
done:
    skip_ws(&r);
    if (r.p != r.end)
        goto out;
    rc = 0;
out:
    if (rc < 0) {
        free(b->id);
        b->id = NULL;
    }
    drv_buf_fini(&key);
    drv_buf_fini(&val);
    return rc;
}

/* ------------------------------------------------------------- Redis */

/*
 * Send the batch and hand back its replies (*out, c->n of them, freed
 * with drv__cli_free_replies). A broken connection is dropped so the next
 * request connects anew; the request gets 503. With redis.sentinel a
 * connection older than a second is dropped too, so the sentinels are
 * asked again and a failover is followed within about a second.
 */
static int
run_batch(struct drv_web *web, struct evhttp_request *req,
          const struct drv_queue_cmds *c, redisReply ***out)
{
    struct drv_cli *cli = web->cli;
    int rc;

    *out = NULL;
    if (cli->rs != NULL && (drv_redis_sync_broken(cli->rs) ||
                            drv__cli_sentinel_stale(cli))) {
        drv_redis_sync_free(cli->rs);
        cli->rs = NULL;
    }
    rc = drv__cli_connect(cli);
    if (rc == 0)
        rc = drv__cli_run(cli, c, out);
    if (rc < 0) {
        drv_redis_sync_free(cli->rs);
        cli->rs = NULL;
        drv__web_error(req, 503, "Redis at %s is not answering",
                       cli->url_shown);
    }
    return rc;
}

/* ------------------------------------------------------- one exchange */

/*
 * Every data endpoint is one exchange: build a batch (the caller), send
 * it, parse the replies into ctx, write ctx as JSON. A parse callback
 * returns 0, a negative code (Redis said no or answered oddly: 502), or an
 * HTTP status with err->msg set (the thing asked for is not there: 404).
 */
typedef int web_parse_fn(redisReply **out, size_t n, void *ctx,
                         struct drv_err *err);
typedef void web_write_fn(struct drv_json *j, void *ctx);

static void
serve(struct drv_web *web, struct evhttp_request *req,
      const struct drv_queue_cmds *c, web_parse_fn *parse,
      web_write_fn *write, void *ctx)
{
    redisReply **out = NULL;
    struct drv_err err;
    struct drv_json j;
    struct drv_buf b;
    int rc;

    drv_buf_init(&b);
    if (run_batch(web, req, c, &out) < 0)
        goto out;
    drv_err_clear(&err);
    rc = parse(out, c->n, ctx, &err);
    if (rc < 0) {
        drv__web_error(req, 502, "Redis: %s", err.msg[0] != '\0'
                       ? err.msg : drv_strerror(rc));
    } else if (rc > 0) {
        drv__web_error(req, rc, "%s", err.msg);
    } else {
        drv_json_init(&j, &b);
        write(&j, ctx);
        drv_json_fini(&j);
        drv_buf_add(&b, "\n", 1);
        drv__web_json(req, 200, &b);
    }
out:
    drv__cli_free_replies(c->n, out);
    drv_buf_fini(&b);
}

/* ---------------------------------------------------------- endpoints */

/* GET /api/session: what the page needs before anything else. */
static void
get_session(struct drv_web *web, struct evhttp_request *req)
{
    struct drv_config *cfg = web->cli->cfg;
    struct drv_json j;
    struct drv_buf b;
    size_t i;

    drv_buf_init(&b);
    drv_json_init(&j, &b);
    drv_json_object_begin(&j);
    drv_json_member_strz(&j, "csrf", web->csrf);
    drv_json_member_strz(&j, "redis", web->cli->url_shown);
    drv_json_member_strz(&j, "prefix", cfg->redis.prefix);
    drv_json_member_bool(&j, "token", web->token != NULL);
    drv_json_member_int(&j, "time", drv_clock_unix_ms(), 0);
    drv_json_key(&j, "queues");
    drv_json_array_begin(&j);
    for (i = 0; i < cfg->nqueues; i++)
        drv_json_strz(&j, cfg->queues[i]);
    drv_json_array_end(&j);
    drv_json_object_end(&j);
    drv_json_fini(&j);
    drv_buf_add(&b, "\n", 1);
    drv__web_json(req, 200, &b);
    drv_buf_fini(&b);
}

/* GET /api/queues: {"time", "queues": [stats of each config queue]}. */
struct queues_ctx {
    const struct drv_config *cfg;  /* borrowed */
    struct drv_queue_stats *s;     /* owned: one per config queue */
};

static int
queues_parse(redisReply **out, size_t n, void *ctx, struct drv_err *err)
{
    struct queues_ctx *q = ctx;
    size_t i;
    int rc = 0;

    DRV_ASSERT(n == q->cfg->nqueues * DRV_QUEUE_STATS_CMDS);
    for (i = 0; i < q->cfg->nqueues && rc == 0; i++) {
        rc = drv_queue_stats_parse(out + i * DRV_QUEUE_STATS_CMDS,
                                   DRV_QUEUE_STATS_CMDS, &q->s[i], err);
        q->s[i].dead_max = q->cfg->worker.dead_max;
    }
    return rc;
}

static void
queues_write(struct drv_json *j, void *ctx)
{
    struct queues_ctx *q = ctx;
    size_t i;

    drv_json_object_begin(j);
    drv_json_member_int(j, "time", drv_clock_unix_ms(), 0);
    drv_json_key(j, "queues");
    drv_json_array_begin(j);
    for (i = 0; i < q->cfg->nqueues; i++)
        drv_queue_stats_json(j, q->cfg->queues[i], &q->s[i]);
    drv_json_array_end(j);
    drv_json_object_end(j);
}

static void
get_queues(struct drv_web *web, struct evhttp_request *req)
{
    struct drv_config *cfg = web->cli->cfg;
    struct queues_ctx q = {cfg, NULL};
    struct drv_queue_keys k;
    struct drv_queue_cmds c;
    size_t i;

    drv_queue_cmds_init(&c);
    q.s = drv_xcalloc(cfg->nqueues, sizeof *q.s);
    for (i = 0; i < cfg->nqueues; i++) {
        drv_queue_keys_init(&k, cfg->redis.prefix, cfg->queues[i]);
        drv_queue_stats_build(&c, &k);
        drv_queue_keys_fini(&k);
    }
    serve(web, req, &c, queues_parse, queues_write, &q);
    free(q.s);
    drv_queue_cmds_fini(&c);
}

/* GET /api/workers: the registry, stale entries marked. */
static int
workers_parse(redisReply **out, size_t n, void *ctx, struct drv_err *err)
{
    return drv_queue_workers_parse(out, n, ctx, err);
}

static void
workers_write(struct drv_json *j, void *ctx)
{
    drv_queue_workers_json(j, ctx, drv_clock_unix_ms());
}

static void
get_workers(struct drv_web *web, struct evhttp_request *req)
{
    struct drv_queue_workers ws;
    struct drv_queue_cmds c;

    memset(&ws, 0, sizeof ws);
    drv_queue_cmds_init(&c);
    drv_queue_workers_build(&c, web->cli->cfg->redis.prefix);
    serve(web, req, &c, workers_parse, workers_write, &ws);
    drv_queue_workers_fini(&ws);
    drv_queue_cmds_fini(&c);
}

/* An entry id as XRANGE takes it: MS or MS-SEQ, digits only. */
static int
entry_id_ok(const char *s)
{
    size_t n = strspn(s, "0123456789");

    if (n == 0 || n > 20)
        return 0;
    if (s[n] == '\0')
        return 1;
    if (s[n] != '-')
        return 0;
    s += n + 1;
    n = strspn(s, "0123456789");
    return n > 0 && n <= 20 && s[n] == '\0';
}

/* GET /api/queues/Q/dead?count=N&after=ENTRY_ID: one page, oldest
 * first; "next" is the after of the following page (null at the end). */
struct dead_ctx {
    const char *queue;                 /* borrowed */
    int64_t count;                     /* page size asked for */
    struct drv_queue_dead_page page;   /* owned */
};

static int
dead_parse(redisReply **out, size_t n, void *ctx, struct drv_err *err)
{
    struct dead_ctx *d = ctx;

    return drv_queue_dead_list_parse(out, n, d->count, &d->page, err);
}

static void
dead_write(struct drv_json *j, void *ctx)
{
    struct dead_ctx *d = ctx;

    drv_queue_dead_page_json(j, d->queue, &d->page);
}

static void
get_dead(struct drv_web *web, struct evhttp_request *req,
         const struct drv_queue_keys *k, const char *arg DRV_UNUSED)
{
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(
                                                 req));
    const char *count_s = NULL, *after = NULL;
    struct dead_ctx d;
    struct drv_queue_cmds c;
    struct evkeyvalq q;

    memset(&d, 0, sizeof d);
    d.queue = k->name;
    d.count = DRV_WEB_DEAD_COUNT;
    TAILQ_INIT(&q);
    drv_queue_cmds_init(&c);
    if (query != NULL && evhttp_parse_query_str(query, &q) < 0) {
        drv__web_error(req, 400, "bad query string");
        goto out;
    }
    count_s = evhttp_find_header(&q, "count");
    after = evhttp_find_header(&q, "after");
    /* n < 1 checked too: drv_parse_int does not apply min to numbers
     * without a '-' */
    if (count_s != NULL &&
        (drv_parse_int(count_s, 1, DRV_WEB_DEAD_MAX, &d.count) < 0 ||
         d.count < 1)) {
        drv__web_error(req, 400, "count must be a number from 1 to %d",
                       DRV_WEB_DEAD_MAX);
        goto out;
    }
    if (after != NULL && after[0] != '\0' && !entry_id_ok(after)) {
        drv__web_error(req, 400, "after must be a stream entry id "
                       "(MS-SEQ)");
        goto out;
    }
    drv_queue_dead_list_build(&c, k, after, d.count);
    serve(web, req, &c, dead_parse, dead_write, &d);
out:
    drv_queue_dead_page_fini(&d.page);
    evhttp_clear_headers(&q);
    drv_queue_cmds_fini(&c);
}

/* The POST body as a struct body; on failure a 400 was sent. */
static int
read_body(struct evhttp_request *req, struct body *body)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *why = NULL;
    char *text = NULL;
    int rc;

    memset(body, 0, sizeof *body);
    if (len == 0)
        return 0;
    text = (char *)evbuffer_pullup(in, -1);
    rc = parse_body(text, len, body, &why);
    if (rc < 0)
        drv__web_error(req, 400, "bad JSON body: %s", why);
    return rc;
}

/*
 * A change (retry, purge, pause, resume), answered {"queue": Q, what: v}:
 * a count, or for pause and resume a boolean. A retry of one id that
 * moved nothing is a 404.
 */
struct change_ctx {
    const char *queue;       /* borrowed */
    const char *op;          /* "retry", "purge", "pause", "resume" */
    const char *id;          /* retry of one id, or NULL */
    int64_t v;               /* the outcome */
};

static int
change_parse(redisReply **out, size_t n, void *ctx, struct drv_err *err)
{
    struct change_ctx *ch = ctx;
    int was = 0, rc;

    if (strcmp(ch->op, "retry") == 0) {
        rc = drv_queue_dead_retry_parse(out, n, &ch->v, err);
        if (rc == 0 && ch->id != NULL && ch->v == 0) {
            drv_err_set(err, -ENOENT, "no dead entry with id %s in %s",
                        ch->id, ch->queue);
            return 404;
        }
        return rc;
    }
    if (strcmp(ch->op, "purge") == 0)
        return drv_queue_dead_purge_parse(out, n, &ch->v, err);
    if (strcmp(ch->op, "resume") == 0) {
        rc = drv_queue_resume_parse(out, n, &was, err);
        ch->v = was;
        return rc;
    }
    ch->v = 1;
    return drv_queue_pause_parse(out, n, err);
}

static void
change_write(struct drv_json *j, void *ctx)
{
    struct change_ctx *ch = ctx;

    drv_json_object_begin(j);
    drv_json_member_strz(j, "queue", ch->queue);
    if (strcmp(ch->op, "retry") == 0)
        drv_json_member_int(j, "moved", ch->v, 0);
    else if (strcmp(ch->op, "purge") == 0)
        drv_json_member_int(j, "purged", ch->v, 0);
    else if (strcmp(ch->op, "pause") == 0)
        drv_json_member_bool(j, "paused", 1);
    else
        drv_json_member_bool(j, "was_paused", ch->v != 0);
    drv_json_object_end(j);
}

/* POST /api/queues/Q/dead/retry|purge, /pause, /resume. */
static void
post_change(struct drv_web *web, struct evhttp_request *req,
            const struct drv_queue_keys *k, const char *op)
{
    struct change_ctx ch = {k->name, op, NULL, 0};
    struct drv_queue_cmds c;
    struct body body;

    if (read_body(req, &body) < 0)
        return;
    drv_queue_cmds_init(&c);
    if (strcmp(op, "retry") == 0) {
        if ((body.id == NULL) == !(body.has_all && body.all)) {
            drv__web_error(req, 400, "give either {\"id\": ID} or "
                           "{\"all\": true}");
            goto out;
        }
        ch.id = body.id;
        drv_queue_dead_retry_build(&c, k, body.id);
    } else if (strcmp(op, "purge") == 0) {
        drv_queue_dead_purge_build(&c, k, DRV_QUEUE_DEAD_ALL);
    } else if (strcmp(op, "pause") == 0) {
        drv_queue_pause_build(&c, k, drv_clock_unix_ms());
    } else {
        drv_queue_resume_build(&c, k);
    }
    serve(web, req, &c, change_parse, change_write, &ch);
out:
    drv_queue_cmds_fini(&c);
    free(body.id);
}

/* ---------------------------------------------- one job or run by ID */

/*
 * GET jobs/ID, POST jobs/ID/cancel and GET runs/ID are one exchange on
 * the ID of the path: its batch, its replies parsed into one member of
 * by_id.u, a 404 naming the ID when it names nothing, else the JSON
 * (as drover result --json, cancel --json and pipeline --json print it).
 * serve_by_id runs the one of a kind.
 */
enum by_id_kind {
    NOT_BY_ID,      /* (a route served otherwise) */
    BY_ID_JOB,      /* GET jobs/ID: its result and where it waits */
    BY_ID_CANCEL,   /* POST jobs/ID/cancel */
    BY_ID_RUN,      /* GET runs/ID: a graph run */
};

struct by_id {
    enum by_id_kind kind;
    const char *queue;              /* borrowed */
    const char *id;                 /* borrowed: from the path */
    union {
        struct drv_queue_lookup l;      /* BY_ID_JOB; owned */
        struct drv_queue_cancel cn;     /* BY_ID_CANCEL */
        struct drv_queue_graph_run run; /* BY_ID_RUN; owned */
    } u;
};

/* The replies into b->u, as a web_parse_fn: 404 (with err) when the ID
 * names nothing there. */
static int
by_id_parse(redisReply **out, size_t n, void *ctx, struct drv_err *err)
{
    struct by_id *b = ctx;
    int rc = 0;

    switch (b->kind) {
    case BY_ID_JOB:
        rc = drv_queue_lookup_parse(out, n, &b->u.l, err);
        if (rc == 0 && b->u.l.result == NULL &&
            b->u.l.where == DRV_QUEUE_NOWHERE) {
            drv_err_set(err, -ENOENT, "drover knows nothing of job %s in "
                        "%s%s", b->id, b->queue, b->u.l.scan_incomplete
                        ? " (the streams are longer than a lookup reads)"
                        : "");
            return 404;
        }
        break;
    case BY_ID_CANCEL:
        rc = drv_queue_cancel_parse(out, n, &b->u.cn, err);
        if (rc == 0 && drv_queue_cancel_total(&b->u.cn) == 0) {
            drv_err_set(err, -ENOENT, "no unfinished job %s in %s", b->id,
                        b->queue);
            return 404;
        }
        break;
    case BY_ID_RUN:
        DRV_ASSERT(n == DRV_QUEUE_GRAPH_RUN_CMDS);
        rc = drv_queue_graph_run_parse(out[0], &b->u.run, err);
        if (rc == 0 && b->u.run.hash == NULL) {
            drv_err_set(err, -ENOENT, "no pipeline run %s on queue %s (a "
                        "run's state is kept result_ttl, or a day, after it "
                        "ends)", b->id, b->queue);
            return 404;
        }
        break;
    case NOT_BY_ID:
        DRV_ASSERT(!"a by-ID kind");
    }
    return rc;
}

/* b->u as JSON, as a web_write_fn. */
static void
by_id_write(struct drv_json *j, void *ctx)
{
    const struct by_id *b = ctx;

    if (b->kind == BY_ID_JOB)
        drv_queue_lookup_json(j, b->queue, b->id, &b->u.l);
    else if (b->kind == BY_ID_CANCEL)
        drv_queue_cancel_json(j, b->queue, b->id, &b->u.cn);
    else
        drv_queue_graph_run_json(j, b->queue, b->id, &b->u.run, NULL);
}

static void
serve_by_id(struct drv_web *web, struct evhttp_request *req,
            const struct drv_queue_keys *k, const char *id,
            enum by_id_kind kind)
{
    struct by_id b;
    struct drv_queue_cmds c;

    memset(&b, 0, sizeof b);
    b.kind = kind;
    b.queue = k->name;
    b.id = id;
    drv_queue_cmds_init(&c);
    if (kind == BY_ID_JOB)
        drv_queue_lookup_build(&c, k, id);
    else if (kind == BY_ID_CANCEL)
        drv_queue_cancel_build(&c, k, id, strlen(id));
    else
        drv_queue_graph_run_build(&c, web->cli->cfg->redis.prefix, k->name,
                                  id, strlen(id));
    serve(web, req, &c, by_id_parse, by_id_write, &b);
    if (kind == BY_ID_JOB)
        drv_queue_lookup_fini(&b.u.l);
    else if (kind == BY_ID_RUN)
        drv_queue_graph_run_fini(&b.u.run);
    drv_queue_cmds_fini(&c);
}

/* ------------------------------------------------------------- routing */

/* The config's queue named name, or NULL. */
static const char *
find_queue(const struct drv_web *web, const char *name)
{
    const struct drv_config *cfg = web->cli->cfg;
    size_t i;

    for (i = 0; i < cfg->nqueues; i++)
        if (strcmp(cfg->queues[i], name) == 0)
            return cfg->queues[i];
    return NULL;
}

static int
is(const char *seg, const char *word)
{
    return strcmp(seg, word) == 0;
}

/*
 * A queue's endpoints: the path after /api/queues/Q, "*" standing for a
 * job or run ID. A by-ID endpoint is served by serve_by_id with its
 * kind; any other by fn, with arg the last segment (the change's op).
 */
typedef void queue_api_fn(struct drv_web *web, struct evhttp_request *req,
                          const struct drv_queue_keys *k, const char *arg);

static const struct queue_route {
    const char *path[3];             /* segments, NULL after the last */
    int post;                        /* POST, else GET */
    queue_api_fn *fn;                /* or NULL: a by-ID endpoint */
    enum by_id_kind by_id;           /* its kind, or NOT_BY_ID */
} queue_routes[] = {
    {{"dead", NULL, NULL}, 0, get_dead, NOT_BY_ID},
    {{"dead", "retry", NULL}, 1, post_change, NOT_BY_ID},
    {{"dead", "purge", NULL}, 1, post_change, NOT_BY_ID},
    {{"pause", NULL, NULL}, 1, post_change, NOT_BY_ID},
    {{"resume", NULL, NULL}, 1, post_change, NOT_BY_ID},
    {{"jobs", "*", NULL}, 0, NULL, BY_ID_JOB},
    {{"jobs", "*", "cancel"}, 1, NULL, BY_ID_CANCEL},
    {{"runs", "*", NULL}, 0, NULL, BY_ID_RUN},
};

/* The route of segs (what follows /api/queues/Q), or NULL. */
static const struct queue_route *
find_route(char **segs, size_t n)
{
    const struct queue_route *r;
    size_t i, j;

    for (i = 0; i < DRV_ARRAY_LEN(queue_routes); i++) {
        r = &queue_routes[i];
        for (j = 0; j < n && j < DRV_ARRAY_LEN(r->path); j++)
            if (r->path[j] == NULL ||
                (!is(r->path[j], "*") && !is(segs[j], r->path[j])))
                break;
        if (j == n && (j == DRV_ARRAY_LEN(r->path) || r->path[j] == NULL))
            return r;
    }
    return NULL;
}

static void
queue_api(struct drv_web *web, struct evhttp_request *req,
          const struct drv_queue_keys *k, char **segs, size_t n)
{
    const struct queue_route *r = find_route(segs, n);
    enum evhttp_cmd_type m = evhttp_request_get_command(req);

    if (r == NULL)
        drv__web_error(req, 404, "no such API path");
    else if (m != (r->post ? EVHTTP_REQ_POST : EVHTTP_REQ_GET))
        drv__web_error(req, 405, r->post ? "use POST" : "use GET");
    else if (r->by_id != NOT_BY_ID)
        serve_by_id(web, req, k, segs[1], r->by_id);
    else
        r->fn(web, req, k, segs[n - 1]);
}

void
drv__web_api(struct drv_web *web, struct evhttp_request *req, char **segs,
             size_t n)
{
    struct drv_queue_keys k;
    const char *queue = NULL;
    int get = evhttp_request_get_command(req) != EVHTTP_REQ_POST;

    DRV_CHECK_OBJ(web, DRV_WEB_MAGIC);
    if (n == 1 && (is(segs[0], "session") || is(segs[0], "queues") ||
                   is(segs[0], "workers"))) {
        if (!get)
            drv__web_error(req, 405, "use GET");
        else if (is(segs[0], "session"))
            get_session(web, req);
        else if (is(segs[0], "queues"))
            get_queues(web, req);
        else
            get_workers(web, req);
        return;
    }
    if (n < 3 || !is(segs[0], "queues")) {
        drv__web_error(req, 404, "no such API path");
        return;
    }
    queue = find_queue(web, segs[1]);
    if (queue == NULL) {
        drv__web_error(req, 404, "no queue named %s in the config",
                       segs[1]);
        return;
    }
    drv_queue_keys_init(&k, web->cli->cfg->redis.prefix, queue);
    queue_api(web, req, &k, segs + 2, n - 2);
    drv_queue_keys_fini(&k);
}
