/*
 * metrics_http.c -- /healthz, /readyz and /metrics over libevent's evhttp,
 * on the loop thread.
 *
 * evhttp reads each request into memory before calling us, so the limits
 * here are what keep hostile clients harmless: headers over 8 KiB and
 * bodies over 1 KiB are refused by evhttp itself (413 or a closed
 * connection), an idle or trickling connection is closed after the
 * timeout, and a reply is built in one go from data already in memory
 * (the registry), so no request ever waits on anything. Methods evhttp
 * knows but we do not serve get 405 here; ones it does not know it
 * answers 400 itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "drover/buf.h"
#include "drover/clock.h"
#include "drover/common.h"
#include "drover/loop.h"
#include "drover/metrics.h"
#include "drover/parse.h"

#define HEADERS_MAX 8192
#define BODY_MAX 1024
#define TIMEOUT_MS 5000
#define WRITE_MAX (4 * 1024 * 1024)

struct drv_metrics_http {
    unsigned magic;
#define HTTP_MAGIC 0x47e747e7U
    struct evhttp *http;                 /* owned */
    struct evhttp_bound_socket *sock;    /* borrowed: http's */
    struct drv_metrics_http_opts o;      /* callbacks; strings not kept */
    struct drv_buf out;                  /* render buffer, reused */
    int port;
};

static void
reply_text(struct evhttp_request *req, int code, const char *reason,
           const char *body, size_t len)
{
    struct evbuffer *b = evbuffer_new();

    DRV_AN(b);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; charset=utf-8");
    evhttp_add_header(evhttp_request_get_output_headers(req),
                      "Cache-Control", "no-store");
    if (evhttp_request_get_command(req) != EVHTTP_REQ_HEAD)
        evbuffer_add(b, body, len); /* evhttp would send it for HEAD */
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

/* 200 with ok_text, or 503 with the reason check() gives. */
static void
reply_check(struct drv_metrics_http *h, struct evhttp_request *req,
            drv_metrics_check_fn *check, const char *ok_text)
{
    char why[256];
    size_t n;

    if (check == NULL || !check(why, sizeof why - 1, h->o.ctx)) {
        reply_text(req, 200, "OK", ok_text, strlen(ok_text));
        return;
    }
    why[sizeof why - 2] = '\0';
    n = strlen(why);
    why[n++] = '\n';
    reply_text(req, 503, "Service Unavailable", why, n);
}

static void
reply_metrics(struct drv_metrics_http *h, struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();
    struct bufferevent *bev;
    int64_t t0;

    DRV_AN(b);
    t0 = drv_clock_mono_ns();
    if (h->o.collect != NULL)
        h->o.collect(h->o.ctx);
    drv_buf_reset(&h->out);
    drv_metrics_render(h->o.metrics, &h->out);
    if (h->o.scrape_seconds != NULL)
        drv_metrics_set(h->o.scrape_seconds,
                        (double)(drv_clock_mono_ns() - t0) / 1e9);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    if (evhttp_request_get_command(req) != EVHTTP_REQ_HEAD)
        evbuffer_add(b, h->out.data, h->out.len);
    /* a bufferevent writes at most 16 KiB per loop turn by default: a
     * scrape of many series would take dozens of turns */
    bev = evhttp_connection_get_bufferevent(
        evhttp_request_get_connection(req));
    if (bev != NULL)
        bufferevent_set_max_single_write(bev, WRITE_MAX);
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void
on_request(struct evhttp_request *req, void *arg)
{
    struct drv_metrics_http *h;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

    DRV_CAST(h, arg, HTTP_MAGIC);
    if (path == NULL)
        path = "";
    if (strcmp(path, "/healthz") != 0 && strcmp(path, "/readyz") != 0 &&
        strcmp(path, "/metrics") != 0) {
        reply_text(req, 404, "Not Found", "not found\n", 10);
        return;
    }
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          "GET, HEAD");
        reply_text(req, 405, "Method Not Allowed", "method not allowed\n",
                   19);
        return;
    }
    if (strcmp(path, "/healthz") == 0)
        reply_check(h, req, h->o.health, "ok\n");
    else if (strcmp(path, "/readyz") == 0)
        reply_check(h, req, h->o.ready, "ready\n");
    else
        reply_metrics(h, req);
}

int
drv_metrics_http_start(struct drv_loop *loop,
                       const struct drv_metrics_http_opts *opts,
                       struct drv_metrics_http **out, struct drv_err *err)
{
    struct drv_metrics_http *h;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    struct timeval tv;
    char host[256];
    int port, rc;

    *out = NULL;
    rc = drv_parse_hostport(opts->listen, host, sizeof host, &port);
    if (rc < 0)
        return drv_err_set(err, rc, "metrics: \"%s\" is not HOST:PORT",
                           opts->listen);
    DRV_ALLOC_OBJ(h, HTTP_MAGIC);
    h->o = *opts;
    h->o.listen = NULL;
    drv_buf_init(&h->out);
    h->http = evhttp_new(drv_loop_base(loop));
    DRV_AN(h->http);
    evhttp_set_max_headers_size(h->http, HEADERS_MAX);
    evhttp_set_max_body_size(h->http, BODY_MAX);
    tv.tv_sec = (opts->timeout_ms > 0 ? opts->timeout_ms : TIMEOUT_MS) / 1000;
    tv.tv_usec = (opts->timeout_ms > 0 ? opts->timeout_ms : TIMEOUT_MS) %
                 1000 * 1000;
    evhttp_set_timeout_tv(h->http, &tv);
    /* every method evhttp parses reaches on_request, which answers 405
     * (instead of evhttp's 501 for a disallowed one) */
    evhttp_set_allowed_methods(h->http, 0xffff);
    evhttp_set_gencb(h->http, on_request, h);
    errno = 0;
    h->sock = evhttp_bind_socket_with_handle(h->http, host,
                                             (ev_uint16_t)port);
    if (h->sock == NULL) {
        rc = errno != 0 ? -errno : -EADDRNOTAVAIL;
        drv_err_set(err, rc, "metrics: cannot listen on %s: %s",
                    opts->listen, strerror(-rc));
        drv_metrics_http_stop(h);
        return rc;
    }
    if (getsockname(evhttp_bound_socket_get_fd(h->sock),
                    (struct sockaddr *)&ss, &sl) == 0)
        h->port = ss.ss_family == AF_INET6
                      ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                      : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    *out = h;
    return 0;
}

void
drv_metrics_http_stop(struct drv_metrics_http *h)
{
    if (DRV_NO_OBJ(h, HTTP_MAGIC))
        return;
    evhttp_free(h->http);
    drv_buf_fini(&h->out);
    DRV_FREE_OBJ(h);
}

int
drv_metrics_http_port(const struct drv_metrics_http *h)
{
    DRV_CHECK_OBJ(h, HTTP_MAGIC);
    return h->port;
}
