/*
 * worker_http.c -- the http handler (INTERFACE.md "http"): one job, one
 * HTTP request, made by the worker's drv_http client (pkg/http) on the
 * loop.
 *
 * DESIGN
 * The client is created by drv__worker_http_init when any job type has
 * `handler: http` (lazily at the first such job otherwise) and lives in
 * w->http until drv__worker_http_fini; all jobs share it, hence its
 * connection and TLS session cache. Each job is a LOOP task: start builds
 * the request from the job type's settings and the job's fields and calls
 * drv_http_request; the completion calls drv_tg_task_done. Per-job state
 * (struct hjob: the call handle) is j->hdata, freed with the job.
 *
 * Request:
 *   method   `method`, default GET.
 *   url      `url` with each `{field}` replaced by the field's value
 *            percent-encoded (RFC 3986 unreserved bytes kept), so a value
 *            can never add a path segment, a query parameter or a host.
 *   headers  each `headers` entry, "Name: value", the value templated
 *            as is (an empty value is sent empty, not dropped); a value
 *            that would hold a NUL, CR or LF is a bad job (no header
 *            injection).
 *   body     `body` templated, bytes as they are, sent whatever the
 *            method (HEAD excepted), with no Content-Type unless
 *            `headers` names one. Without `body`, POST, PUT and PATCH send
 *            the job's argument fields (job, id, attempt, pipeline, step
 *            left out) as one JSON object of strings, as Content-Type
 *            application/json unless `headers` names one; other methods
 *            send no body.
 *   fields   any field of the entry; `{id}` and `{attempt}` fall back to
 *            the job's id and attempts-already-made when the entry lacks
 *            them, so "Idempotency-Key: {id}" always works. A template
 *            naming a field the job lacks: dead at once, "missing field
 *            NAME".
 *
 * Outcome:
 *   2xx                 ok; the result is the response body, cut at
 *                       `output_max` bytes.
 *   429, 5xx            failure, retried: "HTTP 503 Service Unavailable:
 *                       <first 200 bytes of the body>"; a Retry-After
 *                       (delta-seconds or HTTP-date) sets
 *                       j->retry_after_ms, which floors the backoff.
 *   no response         failure, retried: "connection refused: <curl's
 *                       text>" (refused, reset, DNS, TLS ...).
 *   any other status    permanent (DRV_EPERM, dead at once): "HTTP 404 Not
 *                       Found: <body snippet>"; a 3xx adds its Location.
 *   bad URL             permanent: "bad url: ...".
 *
 * Redirects are not followed. A job's target is configuration: following
 * would re-send headers such as Authorization to wherever the server
 * points, may turn a POST into a GET, and would hide a moved endpoint
 * the operator should fix. So a 3xx is dead at once, naming the status
 * and the Location.
 *
 * Timeouts: the job type's `timeout` is the task's timeout; the task
 * group fires it ("timed out after N ms", retried like any handler's
 * timeout) and the cancel hook aborts the transfer. curl itself gets
 * timeout + 1 s, only as a backstop, so it is the group's timer that
 * fires and the error reads the same for every handler.
 *
 * Cancellation (timeout, shutdown, lease lost, a parallel sibling's
 * failure): drv_http_cancel aborts the transfer at once -- its HTTP/1
 * connection is closed, an HTTP/2 stream reset -- and the -ECANCELED
 * completion finishes the task on a later loop callback.
 *
 * Loop thread only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "drover/buf.h"
#include "drover/common.h"
#include "drover/http.h"
#include "drover/log.h"
#include "drover/template.h"
#include "drover/tg.h"
#include "worker_int.h"

#define SNIPPET_MAX 200         /* body bytes quoted in an error */
#define CURL_SLACK_MS 1000      /* curl's timeout = task timeout + this */

/* Per-job state: j->hdata. */
struct hjob {
    unsigned magic;
#define HJOB_MAGIC 0x477b10b5U
    struct drv_http_call *call; /* borrowed: valid until its callback */
};

/* What a template may name. */
struct lookup {
    const struct drv_job *job;  /* borrowed: the job */
    char attempt[24];           /* attempts made, for `{attempt}` */
};

/* The request being built; every pointer owned, freed by req_fini. */
struct hreq {
    char *url;                  /* expanded, escaped */
    char **headers;             /* "Name: value" lines */
    size_t nheaders;            /* lines in headers */
    char *body;                 /* NULL = none */
    size_t body_len;            /* bytes of body */
};

static void
hjob_free(void *p)
{
    struct hjob *hj;

    DRV_CAST(hj, p, HJOB_MAGIC);
    hj->magic = 0;
    free(hj);
}

static struct drv_http *
client_of(struct drv_worker *w)
{
    return w->http; /* void * in the worker: opaque outside this file */
}

/* ------------------------------------------------------------ request */

static int
lookup_field(const char *name, size_t name_len, const char **value,
             size_t *value_len, void *ctx)
{
    struct lookup *lk = ctx;
    const struct drv_job *job = lk->job;
    size_t i;

    for (i = job->nfields; i > 0; i--) {
        const struct drv_field *f = &job->fields[i - 1];
        if (f->name_len == name_len && memcmp(f->name, name, name_len) == 0) {
            *value = f->value;
            *value_len = f->value_len;
            return 0;
        }
    }
    if (name_len == 2 && memcmp(name, "id", 2) == 0) {
        *value = job->id;
        *value_len = strlen(job->id);
        return 0;
    }
    if (name_len == 7 && memcmp(name, "attempt", 7) == 0) {
        *value = lk->attempt;
        *value_len = strlen(lk->attempt);
        return 0;
    }
    return -ENOENT;
}

static void
req_fini(struct hreq *rq)
{
    size_t i;

    free(rq->url);
    for (i = 0; i < rq->nheaders; i++)
        free(rq->headers[i]);
    free(rq->headers);
    free(rq->body);
    memset(rq, 0, sizeof *rq);
}

static int
method_has_body(const char *m)
{
    return strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 ||
           strcmp(m, "PATCH") == 0;
}

/* W3C trace context: the job's field traceparent, unchanged, as header
 * traceparent, unless the type's headers name it. A value holding a CR,
 * LF or NUL would split the request and is left out. */
static void
add_traceparent(struct hreq *rq, const struct drv_job *job)
{
    const struct drv_field *f = drv_job_field(job, "traceparent");
    struct drv_buf b;
    size_t i;

    if (f == NULL || f->value_len == 0 ||
        memchr(f->value, '\r', f->value_len) != NULL ||
        memchr(f->value, '\n', f->value_len) != NULL ||
        memchr(f->value, '\0', f->value_len) != NULL)
        return;
    for (i = 0; i < rq->nheaders; i++)
        if (strncasecmp(rq->headers[i], "traceparent", 11) == 0 &&
            (rq->headers[i][11] == ':' || rq->headers[i][11] == ';'))
            return;
    drv_buf_init(&b);
    drv_buf_adds(&b, "traceparent: ");
    drv_buf_add(&b, f->value, f->value_len);
    rq->headers[rq->nheaders++] = drv_buf_take(&b, NULL);
}

/* Build the request of job j of type type. Returns 0, or DRV_EBADJOB
 * with err saying which field or header is wrong. */
static int
req_build(const struct drv_config_job *type, const struct drv_job *job,
          struct hreq *rq, struct drv_err *err)
{
    const struct drv_config_http *ht = &type->http;
    struct lookup lk;
    int rc, ctype = 0;
    size_t i;

    memset(rq, 0, sizeof *rq);
    lk.job = job;
    snprintf(lk.attempt, sizeof lk.attempt, "%llu",
             (unsigned long long)job->attempt);
    rc = drv_template_expand(ht->url, DRV_TEMPLATE_URL_ESCAPE, lookup_field,
                             &lk, &rq->url, NULL, err);
    if (rc < 0)
        goto bad;
    rq->headers = drv_xcalloc(ht->nheaders + 3, sizeof *rq->headers);
    for (i = 0; i < ht->nheaders; i++) {
        const struct drv_config_kv *kv = &ht->headers[i];
        char *value = NULL;
        size_t len = 0;
        struct drv_buf b;

        rc = drv_template_expand(kv->value, DRV_TEMPLATE_NO_NUL, lookup_field,
                                 &lk, &value, &len, err);
        if (rc < 0)
            goto bad;
        if (memchr(value, '\r', len) != NULL ||
            memchr(value, '\n', len) != NULL) {
            free(value);
            rc = drv_err_set(err, DRV_EBADJOB, "header %s: value holds a "
                             "line break", kv->key);
            goto bad;
        }
        drv_buf_init(&b);
        if (len == 0)   /* curl drops "Name: "; "Name;" sends it empty */
            drv_buf_addf(&b, "%s;", kv->key);
        else
            drv_buf_addf(&b, "%s: %s", kv->key, value);
        free(value);
        rq->headers[rq->nheaders++] = drv_buf_take(&b, NULL);
        ctype |= strcasecmp(kv->key, "Content-Type") == 0;
    }
    add_traceparent(rq, job);
    if (ht->body != NULL) {
        rc = drv_template_expand(ht->body, 0, lookup_field, &lk, &rq->body,
                                 &rq->body_len, err);
        if (rc < 0)
            goto bad;
    } else if (method_has_body(ht->method)) {
        rq->body = drv__worker_fields_json(job, 1, &rq->body_len);
        if (!ctype)
            rq->headers[rq->nheaders++] =
                drv_xstrdup("Content-Type: application/json");
    }
    return 0;
bad:
    req_fini(rq);
    if (err != NULL)
        err->code = DRV_EBADJOB;
    return DRV_EBADJOB;
}

/* ------------------------------------------------------------ outcome */

/* Finish j's task with a failure: text is the error written to Redis. */
static void
fail(struct wjob *j, int code, const char *text, size_t len)
{
    drv__worker_job_set_text(j, text, len);
    drv_tg_task_done(j->task, code, text, NULL);
}

/* "connection refused" etc.: the kind of a failure without a response. */
static const char *
no_response_kind(int code)
{
    switch (code) {
    case -ECONNREFUSED:
        return "connection refused";
    case -ETIMEDOUT:
        return "timed out";
    case -ECONNRESET:
        return "connection reset";
    case -EHOSTUNREACH:
        return "host unreachable";
    case -ENETUNREACH:
        return "network unreachable";
    case -EINVAL:
        return "bad url";
    case -ENOMEM:
        return "out of memory";
    case DRV_EPROTO:
        return "bad response";
    default:
        return "request failed";
    }
}

/* Append up to SNIPPET_MAX bytes of the body, as ": <text>". */
static void
add_snippet(struct drv_buf *b, const struct drv_http_resp *r)
{
    size_t n = r->body_len < SNIPPET_MAX ? r->body_len : SNIPPET_MAX;

    while (n > 0 && (r->body[n - 1] == '\n' || r->body[n - 1] == '\r'))
        n--;
    if (n == 0)
        return;
    drv_buf_adds(b, ": ");
    drv_buf_add(b, r->body, n);
}

static void
on_http_done(struct drv_http_call *call, int code,
             const struct drv_http_resp *r, void *ctx)
{
    struct wjob *j;
    struct hjob *hj;
    struct drv_buf b;
    size_t keep;
    int rc;

    (void)call;
    DRV_CAST(j, ctx, WJOB_MAGIC);
    DRV_CAST(hj, j->hdata, HJOB_MAGIC);
    hj->call = NULL;
    if (code == -ECANCELED) {
        drv_tg_task_done(j->task, -ECANCELED, NULL, NULL);
        return;
    }
    drv_buf_init(&b);
    if (code < 0) {
        drv_buf_addf(&b, "%s: %s", no_response_kind(code), r->error);
        /* a URL curl cannot use will not work next time either */
        rc = code == -EINVAL ? DRV_EPERM : code;
        fail(j, rc, b.data, b.len);
    } else if (r->status >= 200 && r->status < 300) {
        keep = r->body_len;
        if ((int64_t)keep > j->type->cfg->output_max)
            keep = (size_t)j->type->cfg->output_max;
        free(j->op_text);
        j->op_text = drv_xstrndup(r->body, keep);
        j->op_text_len = keep;
        drv_tg_task_done(j->task, 0, NULL, NULL);
    } else {
        int retry = r->status == 429 || (r->status >= 500 && r->status < 600);

        drv_buf_addf(&b, "HTTP %d", r->status);
        if (r->reason[0] != '\0')
            drv_buf_addf(&b, " %s", r->reason);
        if (r->location != NULL)
            drv_buf_addf(&b, " (Location: %s)", r->location);
        add_snippet(&b, r);
        if (retry && r->retry_after_ms >= 0)
            j->retry_after_ms = r->retry_after_ms;
        fail(j, retry ? DRV_EHANDLER : DRV_EPERM, b.data, b.len);
    }
    drv_buf_fini(&b);
}

/* -------------------------------------------------------------- hooks */

static void
start_http(struct drv_tg_task *t, void *ctx)
{
    struct wjob *j;
    struct drv_worker *w;
    const struct drv_config_job *type;
    struct hjob *hj;
    struct hreq rq;
    struct drv_http_req req;
    struct drv_err err;
    char msg[DRV_ERR_MSG_MAX + 64];
    int rc;

    DRV_CAST(j, ctx, WJOB_MAGIC);
    drv__worker_job_started(t, j);
    w = j->w;
    type = j->type->cfg;
    DRV_ASSERT(j->hdata == NULL);
    DRV_ALLOC_OBJ(hj, HJOB_MAGIC);
    j->hdata = hj;
    j->hdata_free = hjob_free;
    drv_err_clear(&err);
    if (client_of(w) == NULL) {
        /* init made none (it failed, or had no http type): make it now */
        rc = drv__worker_http_init(w, &err);
        if (rc < 0 || client_of(w) == NULL) {
            snprintf(msg, sizeof msg, "http client: %s",
                     rc < 0 ? err.msg : "not created");
            fail(j, DRV_EHANDLER, msg, strlen(msg));
            return;
        }
    }
    rc = req_build(type, j->job, &rq, &err);
    if (rc < 0) {
        drv_tg_task_done(t, DRV_EBADJOB, err.msg, NULL);
        return;
    }
    memset(&req, 0, sizeof req);
    req.method = type->http.method;
    req.url = rq.url;
    req.headers = (const char *const *)rq.headers;
    req.nheaders = rq.nheaders;
    req.body = rq.body;
    req.body_len = rq.body_len;
    req.timeout_ms = type->timeout_ms + CURL_SLACK_MS;
    /* enough for the result, and for an error's snippet */
    req.body_max = type->output_max > SNIPPET_MAX ? (size_t)type->output_max
                                                  : SNIPPET_MAX;
    rc = drv_http_request(client_of(w), &req, on_http_done, j, &hj->call);
    if (rc < 0) {
        if (rc == -EINVAL)
            snprintf(msg, sizeof msg, "bad url: %s", rq.url);
        else
            snprintf(msg, sizeof msg, "http request: %s", drv_strerror(rc));
        fail(j, rc == -EINVAL ? DRV_EPERM : DRV_EHANDLER, msg, strlen(msg));
    }
    req_fini(&rq);
}

static void
cancel_http(struct drv_tg_task *t, enum drv_tg_cause cause, void *ctx)
{
    struct wjob *j;
    struct hjob *hj = NULL;

    (void)cause;
    DRV_CAST(j, ctx, WJOB_MAGIC);
    if (j->hdata != NULL)
        DRV_CAST(hj, j->hdata, HJOB_MAGIC);
    if (hj != NULL && hj->call != NULL)
        drv_http_cancel(hj->call); /* on_http_done finishes the task */
    else
        drv_tg_task_done(t, -ECANCELED, NULL, NULL);
}

/* drv__worker_http_init -- make the shared client if any job type has
 * handler http (else nothing). Returns 0, or the client's error with err
 * filled ("http client: ..."). Loop thread. */
int
drv__worker_http_init(struct drv_worker *w, struct drv_err *err)
{
    const struct drv_config *cfg = w->cfg;
    struct drv_http *h = NULL;
    size_t i;
    int rc;

    if (w->http != NULL)
        return 0;
    for (i = 0; i < cfg->njobs; i++)
        if (cfg->jobs[i]->handler == DRV_HANDLER_HTTP)
            break;
    if (i == cfg->njobs)
        return 0; /* no http job type: no client */
    rc = drv_http_create(w->loop, NULL, &h);
    if (rc < 0)
        return drv_err_set(err, rc, "http client: %s", drv_strerror(rc));
    w->http = h;
    DRV_LOG_DEBUG("http client ready", "worker=%s async_dns=%d", w->id,
                  drv_http_async_dns());
    return 0;
}

/* drv__worker_http_fini -- free the client; NULL does nothing. Requests
 * still in flight complete with -ECANCELED from inside (their tasks end
 * CANCELLED). Loop thread, outside the client's callbacks. */
void
drv__worker_http_fini(struct drv_worker *w)
{
    struct drv_http *h = client_of(w);

    /* completes what is still in flight with -ECANCELED (on_http_done) */
    w->http = NULL;
    drv_http_free(h);
}

/* drv__worker_http_task -- j runs as a LOOP task: start_http builds and
 * sends the request, cancel_http aborts it. The timeout, name and permits
 * are the caller's (worker_run.c handler_opts). */
void
drv__worker_http_task(struct drv_worker *w, struct wjob *j,
                      struct drv_tg_task_opts *to)
{
    (void)w;
    (void)j;
    to->kind = DRV_TG_LOOP;
    to->start = start_http;
    to->cancel = cancel_http;
}
