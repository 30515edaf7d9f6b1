/*
 * handler_http.c -- the http handler: one job, one HTTP request, made by the
 * shared drv_http client (pkg/http) on the loop.
 *
 * DESIGN
 * The client is made by the first http job type's load and lives in
 * host->http until shutdown; all jobs share it, hence its connection and
 * TLS session cache. The client (libcurl, or its own HTTP/1.1 path for
 * plain http:// to an address) counts the connections in use against
 * that cache, so it holds the worker's concurrency plus IDLE_KEPT: each running
 * job's connection stays open for the next job to the same host (a cache
 * smaller than the jobs in flight would close nearly every connection
 * after one request). Each job is a LOOP task: start builds the request
 * from the job type's settings and the job's fields and calls
 * drv_http_request; the completion ends the attempt. The call handle is
 * r->state (borrowed: valid until its callback, which clears it).
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
 *   fields   any field of the entry, through drv_hrun_lookup: `{id}` is
 *            the job's id and `{attempt}` this attempt's number from 1,
 *            so "Idempotency-Key: {id}" always works. A template
 *            naming a field the job lacks: dead at once, "missing field
 *            NAME".
 *
 * Outcome:
 *   2xx                 ok; the result is the response body, cut at
 *                       `output_max` bytes.
 *   429, 5xx            failure, retried: "HTTP 503 Service Unavailable:
 *                       <first 200 bytes of the body>"; a Retry-After
 *                       (delta-seconds or HTTP-date) sets
 *                       r->retry_after_ms, which floors the backoff.
 *   no response         failure, retried: "connection refused: <the
 *                       client's text>" (refused, reset, DNS, TLS ...).
 *   any other status    permanent (DRV_EPERMANENT, dead at once): "HTTP 404 Not
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
 * timeout) and the cancel hook aborts the transfer. The client itself
 * gets timeout + 1 s, only as a backstop, so it is the group's timer that
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
#include "handler_int.h"

#define SNIPPET_MAX 200         /* body bytes quoted in an error */
#define CURL_SLACK_MS 1000      /* curl's timeout = task timeout + this */
#define IDLE_KEPT 64            /* idle connections kept beyond one per
                                   running task */

/* The request being built; every pointer owned, freed by req_fini. */
struct hreq {
    char *url;                  /* expanded, escaped */
    char **headers;             /* "Name: value" lines */
    size_t nheaders;            /* lines in headers */
    char *body;                 /* NULL = none */
    size_t body_len;            /* bytes of body */
};

/* ------------------------------------------------------------ request */

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

/* Build the request of run r. Returns 0, or DRV_EBADJOB with err saying
 * which field or header is wrong. */
static int
req_build(struct drv_hrun *r, struct hreq *rq, struct drv_err *err)
{
    const struct drv_config_http *ht = &r->ht->cfg->http;
    int rc, ctype = 0;
    size_t i;

    memset(rq, 0, sizeof *rq);
    rc = drv_template_expand(ht->url, DRV_TEMPLATE_URL_ESCAPE,
                             drv_hrun_lookup, r, &rq->url, NULL, err);
    if (rc < 0)
        goto bad;
    rq->headers = drv_xcalloc(ht->nheaders + 3, sizeof *rq->headers);
    for (i = 0; i < ht->nheaders; i++) {
        const struct drv_config_kv *kv = &ht->headers[i];
        char *value = NULL;
        size_t len = 0;
        struct drv_buf b;

        rc = drv_template_expand(kv->value, DRV_TEMPLATE_NO_NUL,
                                 drv_hrun_lookup, r, &value, &len, err);
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
    add_traceparent(rq, r->job);
    if (ht->body != NULL) {
        rc = drv_template_expand(ht->body, 0, drv_hrun_lookup, r, &rq->body,
                                 &rq->body_len, err);
        if (rc < 0)
            goto bad;
    } else if (method_has_body(ht->method)) {
        rq->body = drv_handler_fields_json(r->job, 1, &rq->body_len);
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
add_snippet(struct drv_buf *b, const struct drv_http_resp *resp)
{
    size_t n = resp->body_len < SNIPPET_MAX ? resp->body_len : SNIPPET_MAX;

    while (n > 0 && (resp->body[n - 1] == '\n' || resp->body[n - 1] == '\r'))
        n--;
    if (n == 0)
        return;
    drv_buf_adds(b, ": ");
    drv_buf_add(b, resp->body, n);
}

static void
on_http_done(struct drv_http_call *call, int code,
             const struct drv_http_resp *resp, void *ctx)
{
    struct drv_hrun *r;
    struct drv_buf b;
    size_t keep;

    DRV_CAST(r, ctx, DRV_HRUN_MAGIC);
    DRV_ASSERT(r->state == call);
    r->state = NULL;
    if (code == -ECANCELED) {
        drv_hrun_cancelled(r);
        return;
    }
    drv_buf_init(&b);
    if (code < 0) {
        drv_buf_addf(&b, "%s: %s", no_response_kind(code), resp->error);
        /* a URL curl cannot use will not work next time either */
        drv_hrun_fail(r, code == -EINVAL ? DRV_EPERMANENT : code, b.data,
                      b.len);
    } else if (resp->status >= 200 && resp->status < 300) {
        keep = resp->body_len;
        if ((int64_t)keep > r->ht->cfg->output_max)
            keep = (size_t)r->ht->cfg->output_max;
        drv_hrun_ok(r, resp->body != NULL ? resp->body : "", keep);
    } else {
        int retry = resp->status == 429 ||
                    (resp->status >= 500 && resp->status < 600);

        drv_buf_addf(&b, "HTTP %d", resp->status);
        if (resp->reason[0] != '\0')
            drv_buf_addf(&b, " %s", resp->reason);
        if (resp->location != NULL)
            drv_buf_addf(&b, " (Location: %s)", resp->location);
        add_snippet(&b, resp);
        if (retry && resp->retry_after_ms >= 0)
            r->retry_after_ms = resp->retry_after_ms;
        drv_hrun_fail(r, retry ? DRV_EHANDLER : DRV_EPERMANENT, b.data,
                      b.len);
    }
    drv_buf_fini(&b);
}

/* -------------------------------------------------------------- hooks */

static int
load_http(struct drv_htype *ht, struct drv_err *err)
{
    struct drv_handler_host *h = ht->host;
    struct drv_http_opts o;
    int rc;

    if (h->http != NULL)
        return 0;
    /* curl counts the connections in use against its cache: one per task
     * that may run, plus IDLE_KEPT idle ones for hosts no task is using */
    memset(&o, 0, sizeof o);
    o.max_kept_connections = (long)(h->concurrency > 0 ? h->concurrency : 0) +
                             IDLE_KEPT;
    o.max_idle_ms = h->http_idle_ms; /* worker.http_idle_timeout */
    rc = drv_http_create(h->loop, &o, &h->http);
    if (rc < 0)
        return drv_err_set(err, rc, "http client: %s", drv_strerror(rc));
    /* libcurl is loaded by the first request that needs it */
    DRV_LOG_DEBUG("http client ready", "max_kept=%ld",
                  o.max_kept_connections);
    return 0;
}

/* Requests still in flight complete with -ECANCELED from inside
 * drv_http_free (their tasks end CANCELLED). */
static void
shutdown_http(struct drv_handler_host *h)
{
    struct drv_http *c = h->http;

    h->http = NULL;
    drv_http_free(c);
}

static void
start_http(struct drv_hrun *r)
{
    const struct drv_config_job *type = r->ht->cfg;
    struct drv_http_call *call;
    struct hreq rq;
    struct drv_http_req req;
    struct drv_err err;
    char msg[DRV_ERR_MSG_MAX + 64];
    int rc;

    DRV_AN(r->ht->host->http); /* made by load */
    drv_err_clear(&err);
    rc = req_build(r, &rq, &err);
    if (rc < 0) {
        drv_tg_task_done(r->task, DRV_EBADJOB, err.msg, NULL);
        return;
    }
    memset(&req, 0, sizeof req);
    req.method = type->http.method;
    req.url = rq.url;
    req.headers = (const char *const *)rq.headers;
    req.nheaders = rq.nheaders;
    req.body = rq.body;
    req.body_len = rq.body_len;
    req.timeout_ms = type->policy.timeout_ms + CURL_SLACK_MS;
    /* enough for the result, and for an error's snippet */
    req.body_max = type->output_max > SNIPPET_MAX ? (size_t)type->output_max
                                                  : SNIPPET_MAX;
    rc = drv_http_request(r->ht->host->http, &req, on_http_done, r, &call);
    if (rc == 0) {
        r->state = call; /* on_http_done runs later, never in the call */
    } else {
        if (rc == -EINVAL)
            snprintf(msg, sizeof msg, "bad url: %s", rq.url);
        else if (rc == -ELIBACC)
            snprintf(msg, sizeof msg, "job type %s: libcurl, needed for "
                     "%s, cannot be loaded (install libcurl4; droverd's "
                     "log says why)", type->name, rq.url);
        else
            snprintf(msg, sizeof msg, "http request: %s", drv_strerror(rc));
        drv_hrun_fail(r, rc == -EINVAL ? DRV_EPERMANENT : DRV_EHANDLER, msg,
                      strlen(msg));
    }
    req_fini(&rq);
}

/* Only while the call is out (drv_hrun_cancel): on_http_done ends the
 * task. */
static void
cancel_http(struct drv_hrun *r, enum drv_tg_cause cause DRV_UNUSED)
{
    drv_http_cancel(r->state);
}

const struct drv_handler_ops drv__handler_http = {
    .type = {.load = load_http, .shutdown = shutdown_http},
    .run = {.start = start_http, .cancel = cancel_http},
};
