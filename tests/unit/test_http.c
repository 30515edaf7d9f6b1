/*
 * test_http.c -- the HTTP client against a real HTTP server on the same
 * loop: libevent's evhttp bound to 127.0.0.1 on a port the kernel picks.
 * Methods, bodies and headers echoed back, status codes and reasons,
 * 3xx not followed, the body cap, Retry-After (delta-seconds and
 * HTTP-date), connection refused, timeout, cancel mid-transfer (the
 * server sees its connection closed), teardown with calls pending, free
 * from inside a callback, 200 concurrent requests over few reused
 * connections, a proxy named in the environment, host names through
 * the own client (one lookup shared and cached, the next address after
 * a refused one, a name that does not resolve, cancel, timeout and
 * teardown while the lookup is pending), kept connections closed once
 * idle for max_idle_ms (by both clients), the plain http:// URLs taken
 * without libcurl's parser (the same parts as libcurl's), and nothing
 * left on the loop afterwards.
 *
 * The server's routes (path, then query):
 *   /echo            200, body "METHOD\nx-test=..\nctype=..\nexpect=..\n
 *                    clen=..\n\n" + the request body
 *   /status?code=N&reason=R   status N (reason R if given), body "status N"
 *   /redirect        302 with Location: /echo
 *   /retry?ra=V      429 with Retry-After: V (URL-decoded)
 *   /big?n=N         200 with N bytes of 'x'
 *   /delay?ms=N      200 "late" after N ms
 *   /hang            never answers; the test sees the peer close
 *   /conn            200 "ok"
 * evhttp cannot see a client close while a request is unanswered
 * (libevent #78, #666), so each unanswered request gets an EV_CLOSED
 * event of our own on its socket.
 *
 * A second server, raw (struct raw, plain sockets on the same loop),
 * sends bytes evhttp never would, for what pkg/http's own HTTP/1.1 path
 * (plain http:// to an address) must cope with: chunked bodies, a body
 * that runs to the close, Connection: close, a server that drops a kept
 * connection as the next request arrives, a response cut short, bytes
 * after the response, an invalid reply. Its routes:
 *   /chunked      200, "hello world" in two chunks (an extension, a
 *                 trailer)
 *   /bigchunks?n=N  200, N bytes of 'y' in chunks of 1000
 *   /close        200 "ok", Connection: close, then closes
 *   /eof          HTTP/1.0 200, no length: "until close", then closes
 *   /partial      Content-Length 100, 5 bytes, then closes
 *   /early        200 "ok" followed by bytes nobody asked for
 *   /drop         closes without a word, unless it is the first request
 *                 on its connection (then 200 "ok")
 *   /dropfirst    closes without a word
 *   /quietclose   200 "ok" (no Connection: close), then closes
 *   /tecl         200 "ok" chunked, with a Content-Length too
 *   /te10         HTTP/1.0 200 "ok" chunked, with keep-alive
 *   /garbage      "garbage" instead of a status line
 *   /head         200 with Content-Length: 5 and no body (for HEAD)
 *   /continue     100 Continue, then 204
 *   /dump...      200, the request's head as it came (the body left out)
 *   /reject       413 as soon as the head is in; the server then stops
 *                 reading that connection (an answer while the client is
 *                 still sending a body it cannot finish)
 *   anything else 200 "ok"
 *
 * Timing: hang guards (drv_test_loop_run, wait_until) only; no speed
 * assertions.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "evhttp.h"
#include "harness.h"
#include "drover/clock.h"
#include "drover/common.h"
#include "drover/http.h"
#include "drover/loop.h"
#include "../../pkg/http/http_int.h"

#define MAX_PORTS 1024
#define MAX_HELD 64
#define RAW_MAX 16

struct state;

/* One connection to the raw server. */
struct raw_conn {
    struct raw *srv;
    int fd;                       /* -1: slot free */
    struct event *ev;             /* owned: EV_READ|EV_PERSIST */
    char buf[65536];              /* request bytes not yet answered */
    size_t len;
    int nreq;                     /* requests seen on it */
    int stalled;                  /* /reject: ev is off, fd kept */
};

/* The raw server: one listener, RAW_MAX connections. */
struct raw {
    struct event_base *base;
    int lfd;                      /* listener */
    int port;
    struct event *lev;            /* owned: accept */
    int accepted;                 /* connections accepted */
    int peer_port;                /* the client's port of the last one */
    int requests;                 /* requests read */
    struct raw_conn conns[RAW_MAX];
};

/* A request the server holds: /hang, or /delay until its timer. */
struct held {
    struct state *s;
    struct evhttp_request *req;   /* borrowed: evhttp's */
    struct evhttp_connection *evcon; /* borrowed: evhttp's */
    struct event *close_ev;       /* owned: EV_CLOSED on the socket */
    struct event *timer;          /* owned: /delay reply, or NULL */
    int live;                     /* slot in use */
};

struct state {
    struct drv_loop *loop;
    struct event_base *base;
    struct drv_http *h;           /* NULL once a test freed it */
    struct evhttp *http;          /* the server */
    int port;                     /* its port */
    int done;                     /* completions seen */
    int want_done;                /* completions that end the run */
    int want_closed;              /* held closes that end the run */
    int requests;                 /* requests the server saw */
    int hang_seen;                /* /hang requests seen */
    int closed;                   /* held requests closed by the peer */
    int ports[MAX_PORTS];         /* distinct client ports seen */
    int nports;
    struct held held[MAX_HELD];   /* unanswered requests */
    struct drv_http_call *cancel_on_hang; /* cancel it when /hang comes */
    int in_cancel;                /* inside drv_http_cancel */
    int events_before;            /* events on the loop before the client */
    struct raw raw;               /* the raw server, when a test starts it */
};

/* One call's outcome, copied out of the callback. */
struct rec {
    struct state *s;
    struct drv_http_call *call;   /* until the callback */
    int ncb;                      /* callbacks run */
    int code;
    int status;
    int version;
    char reason[64];
    char *body;                   /* owned copy */
    size_t body_len;
    int truncated;
    int64_t retry_after_ms;
    char location[256];
    char error[512];
    int cb_in_cancel;             /* the callback ran inside cancel */
    int free_client;              /* call drv_http_free from the cb */
    int retry_rc;                 /* drv_http_request from the cb */
    int try_request;              /* ... attempted */
    struct rec *then;             /* POST /x for it to the raw server
                                     from the cb, once the client's end
                                     of the last raw connection has seen
                                     the server close it */
};

/* The client's stats, for one assertion. */
static struct drv_http_stats
stats_of(const struct drv_http *h)
{
    struct drv_http_stats hs;

    drv_http_get_stats(h, &hs);
    return hs;
}

/* The own client's part of them. */
static struct drv_http_stats
h1_stats_of(const struct drv__h1 *h1)
{
    struct drv_http_stats hs = {0};

    drv__h1_get_stats(h1, &hs);
    return hs;
}

/* ------------------------------------------------------------ server */

static int
count_events(struct event_base *base)
{
    return event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED |
                                               EVENT_BASE_COUNT_ACTIVE);
}

static void
maybe_stop(struct state *s)
{
    if (s->done >= s->want_done && s->closed >= s->want_closed)
        drv_loop_stop(s->loop);
}

static void
held_release(struct held *hd)
{
    if (hd->close_ev != NULL)
        event_free(hd->close_ev);
    if (hd->timer != NULL)
        event_free(hd->timer);
    memset(hd, 0, sizeof *hd);
}

static void
on_held_closed(evutil_socket_t fd, short what, void *arg)
{
    struct held *hd = arg;
    struct state *s = hd->s;
    struct evhttp_connection *evcon = hd->evcon;

    (void)fd;
    (void)what;
    s->closed++;
    held_release(hd);
    evhttp_connection_free(evcon); /* frees the unanswered request too */
    maybe_stop(s);
}

static void
on_delay(evutil_socket_t fd, short what, void *arg)
{
    struct held *hd = arg;
    struct evbuffer *b = evbuffer_new();
    struct evhttp_request *req = hd->req;

    (void)fd;
    (void)what;
    held_release(hd);
    evbuffer_add_printf(b, "late");
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static struct held *
hold(struct state *s, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    evutil_socket_t fd =
        bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
    int i;

    for (i = 0; i < MAX_HELD; i++)
        if (!s->held[i].live)
            break;
    assert_true(i < MAX_HELD);
    s->held[i].live = 1;
    s->held[i].s = s;
    s->held[i].req = req;
    s->held[i].evcon = evcon;
    s->held[i].close_ev = event_new(s->base, fd, EV_CLOSED, on_held_closed,
                                    &s->held[i]);
    assert_non_null(s->held[i].close_ev);
    assert_int_equal(event_add(s->held[i].close_ev, NULL), 0);
    return &s->held[i];
}

static void
note_port(struct state *s, struct evhttp_request *req)
{
    char *addr = NULL;
    ev_uint16_t port = 0;
    int i;

    evhttp_connection_get_peer(evhttp_request_get_connection(req), &addr,
                               &port);
    for (i = 0; i < s->nports; i++)
        if (s->ports[i] == port)
            return;
    if (s->nports < MAX_PORTS)
        s->ports[s->nports++] = port;
}

static const char *
hdr(struct evhttp_request *req, const char *name)
{
    const char *v = evhttp_find_header(evhttp_request_get_input_headers(req),
                                       name);
    return v != NULL ? v : "(none)";
}

static void
on_request(struct evhttp_request *req, void *arg)
{
    struct state *s = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = evhttp_uri_get_path(uri);
    const char *query = evhttp_uri_get_query(uri);
    struct evkeyvalq q;
    struct evbuffer *out = evbuffer_new();
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    const char *v;

    s->requests++;
    note_port(s, req);
    memset(&q, 0, sizeof q);
    if (query != NULL)
        evhttp_parse_query_str(query, &q);
    if (strcmp(path, "/echo") == 0) {
        evbuffer_add_printf(out, "%s\nx-test=%s\nctype=%s\nexpect=%s\n"
                            "clen=%s\n\n",
                            drv_test_method_name(evhttp_request_get_command(req)),
                            hdr(req, "X-Test"), hdr(req, "Content-Type"),
                            hdr(req, "Expect"), hdr(req, "Content-Length"));
        evbuffer_add_buffer(out, in);
        evhttp_send_reply(req, 200, "OK", out);
    } else if (strcmp(path, "/status") == 0) {
        int code = atoi(evhttp_find_header(&q, "code"));
        evbuffer_add_printf(out, "status %d", code);
        evhttp_send_reply(req, code, evhttp_find_header(&q, "reason"), out);
    } else if (strcmp(path, "/redirect") == 0) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Location",
                          "/echo");
        evhttp_send_reply(req, 302, "Found", out);
    } else if (strcmp(path, "/retry") == 0) {
        v = evhttp_find_header(&q, "ra");
        if (v != NULL)
            evhttp_add_header(evhttp_request_get_output_headers(req),
                              "Retry-After", v);
        evbuffer_add_printf(out, "slow down");
        evhttp_send_reply(req, 429, "Too Many Requests", out);
    } else if (strcmp(path, "/big") == 0) {
        long n = atol(evhttp_find_header(&q, "n"));
        char *p = malloc((size_t)n);
        memset(p, 'x', (size_t)n);
        evbuffer_add(out, p, (size_t)n);
        free(p);
        evhttp_send_reply(req, 200, "OK", out);
    } else if (strcmp(path, "/delay") == 0) {
        struct held *hd = hold(s, req);
        struct timeval tv = {0, 0};
        long ms = atol(evhttp_find_header(&q, "ms"));
        tv.tv_sec = ms / 1000;
        tv.tv_usec = (ms % 1000) * 1000;
        hd->timer = evtimer_new(s->base, on_delay, hd);
        assert_int_equal(evtimer_add(hd->timer, &tv), 0);
    } else if (strcmp(path, "/hang") == 0) {
        s->hang_seen++;
        hold(s, req);
        if (s->cancel_on_hang != NULL) {
            struct drv_http_call *c = s->cancel_on_hang;
            s->cancel_on_hang = NULL;
            s->in_cancel = 1;
            drv_http_cancel(c);
            s->in_cancel = 0;
        }
    } else {
        evbuffer_add_printf(out, "ok");
        evhttp_send_reply(req, 200, "OK", out);
    }
    evhttp_clear_headers(&q);
    evbuffer_free(out);
}

/* ------------------------------------------------------- raw server */

static void
raw_close(struct raw_conn *rc)
{
    event_free(rc->ev);
    close(rc->fd);
    rc->fd = -1;
    rc->len = 0;
    rc->nreq = 0;
    rc->stalled = 0;
}

static void
raw_send(struct raw_conn *rc, const char *s, size_t n)
{
    assert_int_equal(send(rc->fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

#define RAW_SEND(rc, lit) raw_send((rc), (lit), sizeof(lit) - 1)

/* Answer one request for path; 1 if the connection was closed. */
static int
raw_answer(struct raw_conn *rc, const char *path, const char *head,
           size_t head_len)
{
    if (strncmp(path, "/dump", 5) == 0) {
        char line[64];
        int n = snprintf(line, sizeof line,
                         "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
                         head_len);

        raw_send(rc, line, (size_t)n);
        raw_send(rc, head, head_len);
    } else if (strcmp(path, "/chunked") == 0) {
        RAW_SEND(rc, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                     "\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\n"
                     "X-Trailer: 1\r\n\r\n");
    } else if (strncmp(path, "/bigchunks?n=", 13) == 0) {
        long n = atol(path + 13);
        char chunk[1000 + 16];

        RAW_SEND(rc, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                     "\r\n");
        while (n > 0) {
            int k = n < 1000 ? (int)n : 1000;
            int h = snprintf(chunk, sizeof chunk, "%x\r\n", k);

            memset(chunk + h, 'y', (size_t)k);
            memcpy(chunk + h + k, "\r\n", 2);
            raw_send(rc, chunk, (size_t)(h + k + 2));
            n -= k;
        }
        RAW_SEND(rc, "0\r\n\r\n");
    } else if (strcmp(path, "/close") == 0) {
        RAW_SEND(rc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                     "Connection: close\r\n\r\nok");
        raw_close(rc);
        return 1;
    } else if (strcmp(path, "/eof") == 0) {
        RAW_SEND(rc, "HTTP/1.0 200 OK\r\n\r\nuntil close");
        raw_close(rc);
        return 1;
    } else if (strcmp(path, "/partial") == 0) {
        RAW_SEND(rc, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"
                     "short");
        raw_close(rc);
        return 1;
    } else if (strcmp(path, "/early") == 0) {
        RAW_SEND(rc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                     "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbad");
    } else if ((strcmp(path, "/drop") == 0 && rc->nreq > 1) ||
               strcmp(path, "/dropfirst") == 0) {
        raw_close(rc);
        return 1;
    } else if (strcmp(path, "/quietclose") == 0) {
        RAW_SEND(rc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        raw_close(rc);
        return 1;
    } else if (strcmp(path, "/tecl") == 0) {
        RAW_SEND(rc, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n");
    } else if (strcmp(path, "/te10") == 0) {
        RAW_SEND(rc, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n");
    } else if (strcmp(path, "/garbage") == 0) {
        RAW_SEND(rc, "garbage\r\n\r\n");
    } else if (strcmp(path, "/head") == 0) {
        RAW_SEND(rc, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
    } else if (strcmp(path, "/continue") == 0) {
        RAW_SEND(rc, "HTTP/1.1 100 Continue\r\n\r\n"
                     "HTTP/1.1 204 No Content\r\n\r\n");
    } else {
        RAW_SEND(rc, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
    return 0;
}

/* The requests in rc's buffer, each answered once whole (head and a
 * Content-Length body). */
static void
on_raw_read(evutil_socket_t fd, short what, void *arg)
{
    struct raw_conn *rc = arg;
    ssize_t n;

    (void)what;
    n = read(fd, rc->buf + rc->len, sizeof rc->buf - rc->len);
    if (n <= 0) {
        raw_close(rc);
        return;
    }
    rc->len += (size_t)n;
    for (;;) {
        char *end = memmem(rc->buf, rc->len, "\r\n\r\n", 4), *cl, path[256];
        char copy[sizeof rc->buf];
        size_t head, body = 0, whole;

        if (end == NULL)
            return;
        head = (size_t)(end - rc->buf) + 4;
        *end = '\0';
        cl = strcasestr(rc->buf, "\r\nContent-Length:");
        if (cl != NULL)
            body = (size_t)atol(cl + 17);
        whole = head + body;
        if (strncmp(rc->buf, "POST /reject ", 13) == 0) {
            /* answered now; the rest of the body is never read */
            rc->srv->requests++;
            RAW_SEND(rc, "HTTP/1.1 413 Content Too Large\r\n"
                         "Content-Length: 0\r\n\r\n");
            assert_int_equal(event_del(rc->ev), 0);
            rc->stalled = 1;
            return;
        }
        if (rc->len < whole) {
            *end = '\r';
            return;
        }
        *end = '\r';
        assert_int_equal(sscanf(rc->buf, "%*s %255s", path), 1);
        memcpy(copy, rc->buf, head);
        rc->srv->requests++;
        rc->nreq++;
        memmove(rc->buf, rc->buf + whole, rc->len - whole);
        rc->len -= whole;
        if (raw_answer(rc, path, copy, head))
            return;
    }
}

static void
on_raw_accept(evutil_socket_t fd, short what, void *arg)
{
    struct raw *srv = arg;
    struct sockaddr_in peer;
    socklen_t plen = sizeof peer;
    int c = accept(fd, (struct sockaddr *)&peer, &plen), i;

    (void)what;
    assert_true(c >= 0);
    srv->peer_port = ntohs(peer.sin_port);
    for (i = 0; i < RAW_MAX && srv->conns[i].fd >= 0; i++)
        ;
    assert_true(i < RAW_MAX);
    srv->accepted++;
    srv->conns[i].srv = srv;
    srv->conns[i].fd = c;
    srv->conns[i].ev = event_new(srv->base, c, EV_READ | EV_PERSIST,
                                 on_raw_read, &srv->conns[i]);
    assert_int_equal(event_add(srv->conns[i].ev, NULL), 0);
}

static void
raw_start(struct state *s)
{
    struct raw *srv = &s->raw;
    int i;

    memset(srv, 0, sizeof *srv);
    srv->base = s->base;
    for (i = 0; i < RAW_MAX; i++)
        srv->conns[i].fd = -1;
    srv->lfd = drv_test_listen(64, &srv->port);
    srv->lev = event_new(s->base, srv->lfd, EV_READ | EV_PERSIST,
                         on_raw_accept, srv);
    assert_int_equal(event_add(srv->lev, NULL), 0);
}

static void
raw_stop(struct state *s)
{
    struct raw *srv = &s->raw;
    int i;

    if (srv->lev == NULL)
        return;
    for (i = 0; i < RAW_MAX; i++)
        if (srv->conns[i].fd >= 0)
            raw_close(&srv->conns[i]);
    event_free(srv->lev);
    close(srv->lfd);
    memset(srv, 0, sizeof *srv);
}

/* Events of the raw server on the loop. */
static int
raw_events(const struct state *s)
{
    int i, n = s->raw.lev != NULL;

    for (i = 0; i < RAW_MAX; i++)
        n += s->raw.lev != NULL && s->raw.conns[i].fd >= 0 &&
             !s->raw.conns[i].stalled;
    return n;
}

/* ------------------------------------------------------- fixtures */

static int
setup(void **st)
{
    struct state *s = calloc(1, sizeof *s);
    struct evhttp_bound_socket *bs;
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;

    assert_non_null(s);
    s->loop = drv_loop_create(NULL);
    assert_non_null(s->loop);
    s->base = drv_loop_base(s->loop);
    s->http = evhttp_new(s->base);
    assert_non_null(s->http);
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_PATCH);
    evhttp_set_gencb(s->http, on_request, s);
    bs = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
    assert_non_null(bs);
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs),
                                 (struct sockaddr *)&sin, &len), 0);
    s->port = ntohs(sin.sin_port);
    s->events_before = count_events(s->base);
    assert_int_equal(drv_http_create(s->loop, NULL, &s->h), 0);
    *st = s;
    return 0;
}

/* Run the loop for a slice of 10 ms; 0 (a wait_until condition that
 * only runs the loop). */
static int
spin(struct state *s)
{
    struct timeval tv = {0, 10000};

    event_base_loopexit(s->base, &tv);
    assert_int_equal(drv_loop_run(s->loop), 0);
    return 0;
}

/* Run the loop in short slices until cond(s) holds (wait_until). */
static void
spin_until(struct state *s, int (*cond)(struct state *), const char *what)
{
    wait_until(cond(s) || spin(s), "%s", what);
}

static int
live_held(const struct state *s)
{
    int i, n = 0;

    for (i = 0; i < MAX_HELD; i++)
        n += s->held[i].live;
    return n;
}

/* Only the server's own events are left: its listener, plus one close
 * watch per held request (the server notices closed keep-alive
 * connections a moment after the client closes them). */
static int
only_server_left(struct state *s)
{
    return count_events(s->base) ==
           s->events_before + live_held(s) + raw_events(s);
}

static int want_hangs; /* hangs_seen's target */

static int
hangs_seen(struct state *s)
{
    return s->hang_seen >= want_hangs;
}

static int
teardown(void **st)
{
    struct state *s = *st;
    int i;

    drv_http_free(s->h);
    /* the client added nothing that outlives it */
    spin_until(s, only_server_left, "the client's events to go");
    raw_stop(s);
    for (i = 0; i < MAX_HELD; i++)
        if (s->held[i].live)
            held_release(&s->held[i]);
    evhttp_free(s->http);
    /* nothing at all is left on the loop */
    assert_int_equal(count_events(s->base), 0);
    drv_loop_free(s->loop);
    free(s);
    return 0;
}

/* Run the loop until want_done completions and want_closed closes. */
static void
run_until(struct state *s, int want_done, int want_closed)
{
    s->want_done = want_done;
    s->want_closed = want_closed;
    if (s->done >= want_done && s->closed >= want_closed)
        return;
    if (drv_test_loop_run(s->loop, DRV_TEST_WAIT_MS) != 0)
        fail_msg("loop hung: %d/%d done, %d/%d closed", s->done, want_done,
                 s->closed, want_closed);
}

static void start_raw(struct state *s, struct rec *rc, const char *host,
                      const char *method, const char *path,
                      const char *const *headers, size_t nheaders,
                      const char *body, size_t body_len, size_t body_max);

/* Wait until the client's socket of the raw server's last connection
 * (found by its port) has the server's close in it. */
static void
client_sees_close(struct state *s)
{
    struct sockaddr_in a;
    socklen_t len;
    int fd;

    for (fd = 3; fd < 1024; fd++) {
        struct pollfd p = {.fd = fd, .events = POLLRDHUP};

        len = sizeof a;
        if (getsockname(fd, (struct sockaddr *)&a, &len) < 0 ||
            a.sin_family != AF_INET || ntohs(a.sin_port) != s->raw.peer_port)
            continue;
        assert_int_equal(poll(&p, 1, DRV_TEST_WAIT_MS), 1);
        assert_true(p.revents & POLLRDHUP);
        return;
    }
    fail_msg("no client socket on port %d", s->raw.peer_port);
}

static void
on_done(struct drv_http_call *call, int code, const struct drv_http_resp *r,
        void *ctx)
{
    struct rec *rc = ctx;
    struct state *s = rc->s;

    assert_ptr_equal(call, rc->call);
    assert_non_null(r);
    rc->ncb++;
    rc->cb_in_cancel = s->in_cancel;
    rc->code = code;
    rc->status = r->status;
    rc->version = r->version;
    snprintf(rc->reason, sizeof rc->reason, "%s", r->reason);
    free(rc->body);
    rc->body = malloc(r->body_len + 1);
    memcpy(rc->body, r->body, r->body_len);
    rc->body[r->body_len] = '\0';
    rc->body_len = r->body_len;
    rc->truncated = r->truncated;
    rc->retry_after_ms = r->retry_after_ms;
    snprintf(rc->location, sizeof rc->location, "%s",
             r->location ? r->location : "");
    snprintf(rc->error, sizeof rc->error, "%s", r->error);
    rc->call = NULL;
    if (rc->try_request) {
        struct drv_http_req rq = {.url = "http://127.0.0.1:1/"};
        rc->retry_rc = drv_http_request(s->h, &rq, on_done, rc, NULL);
    }
    if (rc->then != NULL) {
        client_sees_close(s);
        start_raw(s, rc->then, "127.0.0.1", "POST", "/x", NULL, 0, "{}", 2,
                  100);
    }
    if (rc->free_client) {
        drv_http_free(s->h);
        s->h = NULL;
    }
    s->done++;
    maybe_stop(s);
}

static void
rec_init(struct rec *rc, struct state *s)
{
    memset(rc, 0, sizeof *rc);
    rc->s = s;
    rc->code = 1;
}

static void
rec_fini(struct rec *rc)
{
    free(rc->body);
    rc->body = NULL;
}

/* Start a request to http://host:port path. */
static void
start_url(struct state *s, struct rec *rc, const char *host, int port,
          const char *method, const char *path, const char *const *headers,
          size_t nheaders, const char *body, size_t body_len,
          int64_t timeout_ms, size_t body_max)
{
    char url[512];
    struct drv_http_req rq;

    snprintf(url, sizeof url, "http://%s:%d%s", host, port, path);
    memset(&rq, 0, sizeof rq);
    rq.method = method;
    rq.url = url;
    rq.headers = headers;
    rq.nheaders = nheaders;
    rq.body = body;
    rq.body_len = body_len;
    rq.timeout_ms = timeout_ms;
    rq.body_max = body_max;
    assert_int_equal(drv_http_request(s->h, &rq, on_done, rc, &rc->call), 0);
    assert_non_null(rc->call);
}

/* Start a request to the test server; path is appended to its URL. */
static void
start(struct state *s, struct rec *rc, const char *method, const char *path,
      const char *const *headers, size_t nheaders, const char *body,
      size_t body_len, int64_t timeout_ms, size_t body_max)
{
    start_url(s, rc, "127.0.0.1", s->port, method, path, headers, nheaders,
              body, body_len, timeout_ms, body_max);
}

/* GET http://host:port/path of the test server, host a name for it. */
static void
start_host(struct state *s, struct rec *rc, const char *host,
           const char *path)
{
    char url[400];
    struct drv_http_req rq;

    snprintf(url, sizeof url, "http://%s:%d%s", host, s->port, path);
    memset(&rq, 0, sizeof rq);
    rq.url = url;
    rq.timeout_ms = 20000;
    rq.body_max = 4096;
    assert_int_equal(drv_http_request(s->h, &rq, on_done, rc, &rc->call), 0);
}

/* -------------------------------------------------------------- tests */

static void
test_http_get_and_headers(void **st)
{
    struct state *s = *st;
    struct rec a, b, c;
    const char *hs[] = {"X-Test: hello world", "Accept: text/plain"};
    const char *empty[] = {"X-Test;"};

    rec_init(&a, s);
    rec_init(&b, s);
    rec_init(&c, s);
    start(s, &a, NULL, "/echo", hs, 2, NULL, 0, 10000, 4096);
    start(s, &b, "GET", "/conn", NULL, 0, NULL, 0, 0, 4096);
    start(s, &c, "GET", "/echo", empty, 1, NULL, 0, 0, 4096);
    run_until(s, 3, 0);
    assert_int_equal(a.ncb, 1);
    assert_int_equal(a.code, 0);
    assert_int_equal(a.status, 200);
    assert_string_equal(a.reason, "OK");
    assert_int_equal(a.version, 11);
    assert_string_equal(a.body, "GET\nx-test=hello world\nctype=(none)\n"
                                "expect=(none)\nclen=(none)\n\n");
    assert_int_equal(a.truncated, 0);
    assert_int_equal(a.retry_after_ms, -1);
    assert_string_equal(a.location, "");
    assert_string_equal(a.error, "");
    assert_int_equal(b.code, 0);
    assert_string_equal(b.body, "ok");
    /* "Name;" sends the header with an empty value */
    assert_string_equal(c.body, "GET\nx-test=\nctype=(none)\n"
                                "expect=(none)\nclen=(none)\n\n");
    assert_int_equal(stats_of(s->h).pending, 0);
    rec_fini(&a);
    rec_fini(&b);
    rec_fini(&c);
}

static void
test_http_methods_and_bodies(void **st)
{
    struct state *s = *st;
    struct rec r[7];
    static const char bin[] = "a\0b\r\n{}";
    const char *json[] = {"Content-Type: application/json", "X-Test: 1"};
    size_t big_len = 2 * 1024 * 1024 + 17;
    char *big = malloc(big_len), want[256];
    int i;

    memset(big, 'B', big_len);
    for (i = 0; i < 7; i++)
        rec_init(&r[i], s);
    start(s, &r[0], "POST", "/echo", json, 2, "{\"a\":1}", 7, 10000, 4096);
    start(s, &r[1], "PUT", "/echo", NULL, 0, bin, sizeof bin - 1, 10000,
          4096);
    start(s, &r[2], "PATCH", "/echo", NULL, 0, "p", 1, 10000, 4096);
    start(s, &r[3], "DELETE", "/echo", NULL, 0, NULL, 0, 10000, 4096);
    start(s, &r[4], "POST", "/echo", NULL, 0, NULL, 0, 10000, 4096);
    start(s, &r[5], "HEAD", "/echo", NULL, 0, NULL, 0, 10000, 4096);
    start(s, &r[6], "POST", "/echo", NULL, 0, big, big_len, 30000,
          big_len + 4096);
    run_until(s, 7, 0);
    for (i = 0; i < 7; i++) {
        assert_int_equal(r[i].ncb, 1);
        if (r[i].code != 0)
            fail_msg("request %d: %d %s", i, r[i].code, r[i].error);
        assert_int_equal(r[i].status, 200);
    }
    assert_string_equal(r[0].body, "POST\nx-test=1\nctype=application/json\n"
                                   "expect=(none)\nclen=7\n\n{\"a\":1}");
    /* binary body: NUL and CRLF arrive as they are; no Content-Type */
    snprintf(want, sizeof want, "PUT\nx-test=(none)\nctype=(none)\n"
             "expect=(none)\nclen=%zu\n\n", sizeof bin - 1);
    assert_int_equal(r[1].body_len, strlen(want) + sizeof bin - 1);
    assert_memory_equal(r[1].body, want, strlen(want));
    assert_memory_equal(r[1].body + strlen(want), bin, sizeof bin - 1);
    assert_string_equal(r[2].body, "PATCH\nx-test=(none)\nctype=(none)\n"
                                   "expect=(none)\nclen=1\n\np");
    assert_string_equal(r[3].body, "DELETE\nx-test=(none)\nctype=(none)\n"
                                   "expect=(none)\nclen=(none)\n\n");
    /* POST without a body: an empty one, Content-Length: 0 */
    assert_string_equal(r[4].body, "POST\nx-test=(none)\nctype=(none)\n"
                                   "expect=(none)\nclen=0\n\n");
    /* HEAD: status only */
    assert_int_equal(r[5].body_len, 0);
    /* > 1 MiB: no "Expect: 100-continue" round trip */
    snprintf(want, sizeof want, "POST\nx-test=(none)\nctype=(none)\n"
             "expect=(none)\nclen=%zu\n\n", big_len);
    assert_int_equal(r[6].body_len, strlen(want) + big_len);
    assert_memory_equal(r[6].body, want, strlen(want));
    assert_memory_equal(r[6].body + strlen(want), big, big_len);
    free(big);
    for (i = 0; i < 7; i++)
        rec_fini(&r[i]);
}

static void
test_http_status_codes(void **st)
{
    struct state *s = *st;
    struct rec r[6];
    char loc[128];
    int i;

    for (i = 0; i < 6; i++)
        rec_init(&r[i], s);
    start(s, &r[0], NULL, "/status?code=404", NULL, 0, NULL, 0, 10000, 100);
    start(s, &r[1], NULL, "/status?code=500&reason=Boom", NULL, 0, NULL, 0,
          10000, 100);
    start(s, &r[2], NULL, "/status?code=201", NULL, 0, NULL, 0, 10000, 100);
    start(s, &r[3], NULL, "/status?code=503", NULL, 0, NULL, 0, 10000, 100);
    start(s, &r[4], NULL, "/redirect", NULL, 0, NULL, 0, 10000, 100);
    start(s, &r[5], NULL, "/status?code=418&reason=Teapot", NULL, 0, NULL, 0,
          10000, 100);
    run_until(s, 6, 0);
    for (i = 0; i < 6; i++) {
        assert_int_equal(r[i].ncb, 1);
        assert_int_equal(r[i].code, 0);
    }
    assert_int_equal(r[0].status, 404);
    assert_string_equal(r[0].reason, "Not Found");
    assert_string_equal(r[0].body, "status 404");
    assert_int_equal(r[1].status, 500);
    assert_string_equal(r[1].reason, "Boom");
    assert_int_equal(r[2].status, 201);
    assert_int_equal(r[3].status, 503);
    /* 3xx: not followed; Location made absolute */
    assert_int_equal(r[4].status, 302);
    snprintf(loc, sizeof loc, "http://127.0.0.1:%d/echo", s->port);
    assert_string_equal(r[4].location, loc);
    assert_int_equal(r[5].status, 418);
    assert_string_equal(r[5].reason, "Teapot");
    assert_int_equal(s->requests, 6); /* the redirect was not followed */
    for (i = 0; i < 6; i++)
        rec_fini(&r[i]);
}

static void
test_http_body_cap(void **st)
{
    struct state *s = *st;
    struct rec r[4];
    int i;

    for (i = 0; i < 4; i++)
        rec_init(&r[i], s);
    start(s, &r[0], NULL, "/big?n=100000", NULL, 0, NULL, 0, 10000, 1000);
    run_until(s, 1, 0);
    start(s, &r[1], NULL, "/big?n=1000", NULL, 0, NULL, 0, 10000, 1000);
    run_until(s, 2, 0);
    start(s, &r[2], NULL, "/big?n=1001", NULL, 0, NULL, 0, 10000, 1000);
    run_until(s, 3, 0);
    start(s, &r[3], NULL, "/big?n=5000", NULL, 0, NULL, 0, 10000, 0);
    run_until(s, 4, 0);
    for (i = 0; i < 4; i++) {
        assert_int_equal(r[i].code, 0);
        assert_int_equal(r[i].status, 200);
    }
    assert_int_equal(r[0].body_len, 1000);
    assert_int_equal(r[0].truncated, 1);
    assert_int_equal(r[1].body_len, 1000);
    assert_int_equal(r[1].truncated, 0);
    assert_int_equal(r[2].body_len, 1000);
    assert_int_equal(r[2].truncated, 1);
    assert_int_equal(r[3].body_len, 0);
    assert_int_equal(r[3].truncated, 1);
    assert_string_equal(r[3].body, "");
    /* the rest was read, so one connection served all four */
    assert_int_equal(s->nports, 1);
    for (i = 0; i < 4; i++)
        rec_fini(&r[i]);
}

static void
test_http_retry_after(void **st)
{
    struct state *s = *st;
    struct rec r[5];
    char path[256], date[64], esc[192];
    struct tm tm;
    time_t later = time(NULL) + 5;
    char *e;
    int i;

    for (i = 0; i < 5; i++)
        rec_init(&r[i], s);
    gmtime_r(&later, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    e = evhttp_encode_uri(date);
    snprintf(esc, sizeof esc, "%s", e);
    free(e);
    start(s, &r[0], NULL, "/retry?ra=3", NULL, 0, NULL, 0, 10000, 100);
    snprintf(path, sizeof path, "/retry?ra=%s", esc);
    start(s, &r[1], NULL, path, NULL, 0, NULL, 0, 10000, 100);
    start(s, &r[2], NULL, "/retry?ra=soon", NULL, 0, NULL, 0, 10000, 100);
    start(s, &r[3], NULL, "/retry", NULL, 0, NULL, 0, 10000, 100);
    start(s, &r[4], NULL, "/retry?ra=0", NULL, 0, NULL, 0, 10000, 100);
    run_until(s, 5, 0);
    for (i = 0; i < 5; i++) {
        assert_int_equal(r[i].code, 0);
        assert_int_equal(r[i].status, 429);
        assert_string_equal(r[i].reason, "Too Many Requests");
    }
    assert_int_equal(r[0].retry_after_ms, 3000);
    /* a date 5 s ahead, in whole seconds, seen a moment later */
    if (r[1].retry_after_ms < 2000 || r[1].retry_after_ms > 6000)
        fail_msg("Retry-After %s gave %lld ms", date,
                 (long long)r[1].retry_after_ms);
    assert_int_equal(r[2].retry_after_ms, -1);
    assert_int_equal(r[3].retry_after_ms, -1);
    assert_int_equal(r[4].retry_after_ms, 0);
    for (i = 0; i < 5; i++)
        rec_fini(&r[i]);
}

static void
test_http_parse_retry_after(void **st)
{
    const int64_t now = INT64_C(1700000000000); /* 2023-11-14T22:13:20Z */
    const char *s;

    (void)st;
    assert_int_equal(drv_http_parse_retry_after("120", 3, now), 120000);
    assert_int_equal(drv_http_parse_retry_after(" 7 \r\n", 5, now), 7000);
    assert_int_equal(drv_http_parse_retry_after("0", 1, now), 0);
    assert_int_equal(drv_http_parse_retry_after("", 0, now), -1);
    assert_int_equal(drv_http_parse_retry_after("  ", 2, now), -1);
    assert_int_equal(drv_http_parse_retry_after("-5", 2, now), -1);
    assert_int_equal(drv_http_parse_retry_after("12abc", 5, now), -1);
    assert_int_equal(drv_http_parse_retry_after("1.5", 3, now), -1);
    s = "99999999999999999999999";
    assert_int_equal(drv_http_parse_retry_after(s, strlen(s), now),
                     DRV_HTTP_RETRY_AFTER_MAX_MS);
    /* IMF-fixdate, 100 s after now */
    s = "Tue, 14 Nov 2023 22:15:00 GMT";
    assert_int_equal(drv_http_parse_retry_after(s, strlen(s), now), 100000);
    /* obsolete RFC 850 and asctime forms */
    s = "Tuesday, 14-Nov-23 22:15:00 GMT";
    assert_int_equal(drv_http_parse_retry_after(s, strlen(s), now), 100000);
    s = "Tue Nov 14 22:15:00 2023";
    assert_int_equal(drv_http_parse_retry_after(s, strlen(s), now), 100000);
    /* in the past: at once */
    s = "Tue, 14 Nov 2023 22:00:00 GMT";
    assert_int_equal(drv_http_parse_retry_after(s, strlen(s), now), 0);
    /* far future: capped */
    s = "Fri, 01 Jan 2100 00:00:00 GMT";
    assert_int_equal(drv_http_parse_retry_after(s, strlen(s), now),
                     DRV_HTTP_RETRY_AFTER_MAX_MS);
    s = "tomorrow-ish";
    assert_int_equal(drv_http_parse_retry_after(s, strlen(s), now), -1);
    /* names in any case; asctime's day padded with a blank */
    s = "tue, 14 NOV 2023 22:15:00 gmt";
    assert_int_equal(drv_http_parse_retry_after(s, strlen(s), now), 100000);
    s = "Thu Nov  2 22:15:00 2023"; /* 12 days before now */
    assert_int_equal(drv_http_parse_retry_after(s, strlen(s), now), 0);
    /* RFC 850's year: the latest one ending in those digits at most 50
     * years after now (2023): 00..73 are 20yy, 74..99 19yy */
    s = "Tuesday, 14-Nov-73 22:15:00 GMT";
    assert_int_equal(drv_http_parse_retry_after(s, strlen(s), now),
                     DRV_HTTP_RETRY_AFTER_MAX_MS);
    s = "Thursday, 14-Nov-74 22:15:00 GMT";
    assert_int_equal(drv_http_parse_retry_after(s, strlen(s), now), 0);
    /* ... and in 2080, 30 is 2130 (capped), 31 is 2031 (past) */
    s = "Tuesday, 14-Nov-30 22:15:00 GMT";
    assert_int_equal(drv_http_parse_retry_after(s, strlen(s),
                                                INT64_C(3498000000000)),
                     DRV_HTTP_RETRY_AFTER_MAX_MS);
    s = "Friday, 14-Nov-31 22:15:00 GMT";
    assert_int_equal(drv_http_parse_retry_after(s, strlen(s),
                                                INT64_C(3498000000000)), 0);
    /* not a date: no such day, no zone, something after it, a short
     * field, no weekday */
    s = "Thu, 30 Feb 2023 22:15:00 GMT";
    assert_int_equal(drv_http_parse_retry_after(s, strlen(s), now), -1);
    s = "Wed, 29 Feb 2023 22:15:00 GMT";
    assert_int_equal(drv_http_parse_retry_after(s, strlen(s), now), -1);
    s = "Tue, 14 Nov 2023 24:00:00 GMT";
    assert_int_equal(drv_http_parse_retry_after(s, strlen(s), now), -1);
    s = "Tue, 14 Nov 2023 22:15:00";
    assert_int_equal(drv_http_parse_retry_after(s, strlen(s), now), -1);
    s = "Tue, 14 Nov 2023 22:15:00 GMT+1";
    assert_int_equal(drv_http_parse_retry_after(s, strlen(s), now), -1);
    s = "Tue, 4 Nov 2023 22:15:00 GMT";
    assert_int_equal(drv_http_parse_retry_after(s, strlen(s), now), -1);
    s = "14 Nov 2023 22:15:00 GMT";
    assert_int_equal(drv_http_parse_retry_after(s, strlen(s), now), -1);
    /* a leap day is a day */
    s = "Thu, 29 Feb 2024 00:00:00 GMT";
    assert_int_equal(drv_http_parse_retry_after(s, strlen(s), now),
                     DRV_HTTP_RETRY_AFTER_MAX_MS);
}

/* GET path on a closed port of 127.0.0.1 into r, run until it is done. */
static void
get_closed_port(struct state *s, struct rec *r, const char *path,
                int64_t timeout_ms, size_t body_max)
{
    char url[128];
    struct drv_http_req rq;

    rec_init(r, s);
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", drv_test_free_port(),
             path);
    memset(&rq, 0, sizeof rq);
    rq.url = url;
    rq.timeout_ms = timeout_ms;
    rq.body_max = body_max;
    assert_int_equal(drv_http_request(s->h, &rq, on_done, r, &r->call), 0);
    run_until(s, 1, 0);
}

static void
test_http_connection_refused(void **st)
{
    struct state *s = *st;
    struct rec r;

    get_closed_port(s, &r, "/x", 10000, 0);
    assert_int_equal(r.ncb, 1);
    assert_int_equal(r.code, -ECONNREFUSED);
    assert_int_equal(r.status, 0);
    assert_true(strlen(r.error) > 0);
    rec_fini(&r);
}

static void
test_http_timeout(void **st)
{
    struct state *s = *st;
    struct rec r;

    rec_init(&r, s);
    start(s, &r, NULL, "/delay?ms=30000", NULL, 0, NULL, 0, 300, 100);
    run_until(s, 1, 1); /* the server sees the connection go, too */
    assert_int_equal(r.code, -ETIMEDOUT);
    assert_int_equal(r.status, 0);
    assert_true(strlen(r.error) > 0);
    rec_fini(&r);
}

static void
test_http_cancel_mid_transfer(void **st)
{
    struct state *s = *st;
    struct rec a, b;

    rec_init(&a, s);
    rec_init(&b, s);
    /* cancelled by the server callback once the request has arrived */
    start(s, &a, "POST", "/hang", NULL, 0, "x", 1, 0, 100);
    s->cancel_on_hang = a.call;
    run_until(s, 1, 1);
    assert_int_equal(s->hang_seen, 1);
    assert_int_equal(a.ncb, 1);
    assert_int_equal(a.code, -ECANCELED);
    assert_int_equal(a.cb_in_cancel, 0); /* never inside the call */
    assert_int_equal(a.status, 0);
    /* cancelled before it even connected: completes later, once */
    start(s, &b, NULL, "/hang", NULL, 0, NULL, 0, 0, 100);
    s->in_cancel = 1;
    drv_http_cancel(b.call);
    drv_http_cancel(b.call); /* idempotent until the callback */
    s->in_cancel = 0;
    assert_int_equal(b.ncb, 0);
    run_until(s, 2, 1);
    assert_int_equal(b.ncb, 1);
    assert_int_equal(b.code, -ECANCELED);
    assert_int_equal(b.cb_in_cancel, 0);
    assert_int_equal(stats_of(s->h).pending, 0);
    rec_fini(&a);
    rec_fini(&b);
}

static int
spare_trimmed(struct state *s)
{
    return stats_of(s->h).spare <= 16;
}

static void
test_http_many_concurrent_reuse(void **st)
{
    struct state *s = *st;
    struct drv_http_opts o;
    enum { N = 200 };
    struct rec *r = calloc(2 * N, sizeof *r);
    int i;

    drv_http_free(s->h);
    memset(&o, 0, sizeof o);
    o.max_host_connections = 8;
    assert_int_equal(drv_http_create(s->loop, &o, &s->h), 0);
    for (i = 0; i < N; i++) {
        rec_init(&r[i], s);
        start(s, &r[i], NULL, "/conn", NULL, 0, NULL, 0, 30000, 100);
    }
    assert_int_equal(stats_of(s->h).pending, N);
    run_until(s, N, 0);
    /* the finished calls are kept (64 by default) for the next wave, also
     * while none is pending between the two */
    assert_int_equal(stats_of(s->h).pending, 0);
    assert_int_equal(stats_of(s->h).spare, 64);
    /* a second wave reuses the cached connections */
    for (i = N; i < 2 * N; i++) {
        rec_init(&r[i], s);
        start(s, &r[i], NULL, "/conn", NULL, 0, NULL, 0, 30000, 100);
    }
    run_until(s, 2 * N, 0);
    for (i = 0; i < 2 * N; i++) {
        assert_int_equal(r[i].ncb, 1);
        assert_int_equal(r[i].code, 0);
        assert_string_equal(r[i].body, "ok");
        rec_fini(&r[i]);
    }
    assert_int_equal(s->requests, 2 * N);
    if (s->nports > 8)
        fail_msg("%d connections for %d requests", s->nports, 2 * N);
    /* idle a second: the spare calls go, but for 16 */
    spin_until(s, spare_trimmed, "the spare calls to be cut to 16");
    assert_int_equal(stats_of(s->h).spare, 16);
    free(r);
}

/* One request at a time, so each runs on the call (and easy handle) the
 * one before left: nothing of a request may leak into the next one --
 * method, body, headers, HEAD's no-body, the timeout. */
static void
test_http_reused_call_forgets_last_request(void **st)
{
    struct state *s = *st;
    struct rec r[10];
    const char *json[] = {"Content-Type: application/json", "X-Test: 1",
                          "Expect: 100-continue"};
    static const char plain_get[] = "GET\nx-test=(none)\nctype=(none)\n"
                                    "expect=(none)\nclen=(none)\n\n";
    struct drv_http_req rq;
    char loc[128];
    int i;

    for (i = 0; i < 10; i++)
        rec_init(&r[i], s);
    start(s, &r[0], "POST", "/echo", json, 3, "{\"a\":1}", 7, 10000, 4096);
    run_until(s, 1, 0);
    assert_int_equal(r[0].code, 0);
    assert_string_equal(r[0].body, "POST\nx-test=1\nctype=application/json\n"
                                   "expect=100-continue\nclen=7\n\n{\"a\":1}");
    start(s, &r[1], "GET", "/echo", NULL, 0, NULL, 0, 0, 4096);
    run_until(s, 2, 0);
    assert_string_equal(r[1].body, plain_get);
    start(s, &r[2], "HEAD", "/echo", NULL, 0, NULL, 0, 10000, 4096);
    run_until(s, 3, 0);
    assert_int_equal(r[2].status, 200);
    assert_int_equal(r[2].body_len, 0);
    start(s, &r[3], "DELETE", "/echo", NULL, 0, NULL, 0, 10000, 4096);
    run_until(s, 4, 0);
    assert_string_equal(r[3].body, "DELETE\nx-test=(none)\nctype=(none)\n"
                                   "expect=(none)\nclen=(none)\n\n");
    start(s, &r[4], NULL, "/echo", NULL, 0, NULL, 0, 0, 4096);
    run_until(s, 5, 0);
    assert_string_equal(r[4].body, plain_get);
    /* a short timeout, then none: the next request must not inherit it */
    start(s, &r[5], "GET", "/delay?ms=30000", NULL, 0, NULL, 0, 300, 4096);
    run_until(s, 6, 1);
    assert_int_equal(r[5].code, -ETIMEDOUT);
    start(s, &r[6], "GET", "/delay?ms=600", NULL, 0, NULL, 0, 0, 4096);
    run_until(s, 7, 1);
    assert_int_equal(r[6].code, 0);
    assert_string_equal(r[6].body, "late");
    /* an error text does not stay behind either */
    assert_string_equal(r[6].error, "");
    start(s, &r[7], "PUT", "/echo", NULL, 0, "p", 1, 10000, 4);
    run_until(s, 8, 1);
    assert_int_equal(r[7].code, 0);
    assert_int_equal(r[7].truncated, 1);
    assert_int_equal(r[7].body_len, 4);
    assert_memory_equal(r[7].body, "PUT\n", 4);
    /* a reused call keeps its last URL parsed: a URL curl rejects fails
     * on it, and another URL (another host name) replaces the kept one,
     * the relative Location resolved against it */
    memset(&rq, 0, sizeof rq);
    rq.url = "not a url";
    assert_int_equal(drv_http_request(s->h, &rq, on_done, &r[8], NULL),
                     -EINVAL);
    start_host(s, &r[8], "localhost", "/redirect");
    run_until(s, 9, 1);
    assert_int_equal(r[8].code, 0);
    assert_int_equal(r[8].status, 302);
    snprintf(loc, sizeof loc, "http://localhost:%d/echo", s->port);
    assert_string_equal(r[8].location, loc);
    start(s, &r[9], "GET", "/conn", NULL, 0, NULL, 0, 10000, 4096);
    run_until(s, 10, 1);
    assert_int_equal(r[9].code, 0);
    assert_string_equal(r[9].body, "ok");
    assert_string_equal(r[9].location, "");
    for (i = 0; i < 10; i++) {
        assert_int_equal(r[i].ncb, 1);
        rec_fini(&r[i]);
    }
    assert_int_equal(stats_of(s->h).pending, 0);
}

static void
test_http_unlimited_concurrency(void **st)
{
    struct state *s = *st;
    enum { N = 200 };
    struct rec *r = calloc(N, sizeof *r);
    int i;

    for (i = 0; i < N; i++) {
        rec_init(&r[i], s);
        start(s, &r[i], "POST", "/echo", NULL, 0, "b", 1, 30000, 1000);
    }
    run_until(s, N, 0);
    for (i = 0; i < N; i++) {
        assert_int_equal(r[i].code, 0);
        assert_int_equal(r[i].status, 200);
        rec_fini(&r[i]);
    }
    free(r);
}

static void
test_http_free_completes_pending(void **st)
{
    struct state *s = *st;
    struct rec r[3];
    int i;

    for (i = 0; i < 3; i++) {
        rec_init(&r[i], s);
        r[i].try_request = 1;
        start(s, &r[i], NULL, "/hang", NULL, 0, NULL, 0, 0, 100);
    }
    want_hangs = 3; /* let the requests reach the server */
    spin_until(s, hangs_seen, "3 requests at the server");
    assert_int_equal(stats_of(s->h).pending, 3);
    drv_http_free(s->h); /* callbacks run inside, with -ECANCELED */
    s->h = NULL;
    for (i = 0; i < 3; i++) {
        assert_int_equal(r[i].ncb, 1);
        assert_int_equal(r[i].code, -ECANCELED);
        assert_int_equal(r[i].retry_rc, -ESHUTDOWN);
    }
    run_until(s, 3, 3); /* the server sees all three connections close */
    spin_until(s, only_server_left, "the client's events to go");
    for (i = 0; i < 3; i++)
        rec_fini(&r[i]);
}

static void
test_http_free_inside_callback(void **st)
{
    struct state *s = *st;
    struct rec a, b, c;

    rec_init(&a, s);
    rec_init(&b, s);
    rec_init(&c, s);
    start(s, &b, NULL, "/hang", NULL, 0, NULL, 0, 0, 100);
    start(s, &c, NULL, "/hang", NULL, 0, NULL, 0, 0, 100);
    want_hangs = 2;
    spin_until(s, hangs_seen, "2 requests at the server");
    start(s, &a, NULL, "/conn", NULL, 0, NULL, 0, 10000, 100);
    a.free_client = 1;
    run_until(s, 3, 2);
    assert_null(s->h);
    assert_int_equal(a.ncb, 1);
    assert_int_equal(a.code, 0);
    assert_int_equal(b.ncb, 1);
    assert_int_equal(b.code, -ECANCELED);
    assert_int_equal(c.ncb, 1);
    assert_int_equal(c.code, -ECANCELED);
    spin_until(s, only_server_left, "the client's events to go");
    rec_fini(&a);
    rec_fini(&b);
    rec_fini(&c);
}

static void
test_http_bad_requests(void **st)
{
    struct state *s = *st;
    struct rec r;
    struct drv_http_req rq;
    const char *bad_hdr[] = {"X-A: 1\r\nX-B: 2"};
    const char *bad_lf[] = {"X-A: 1\nX-B: 2"};

    /* none, not http(s), not a URL; and no line break reaches the
     * request head by the URL either */
    static const char *const bad_urls[] = {
        NULL, "ftp://127.0.0.1/x", "file:///etc/passwd", "not a url",
        "http://127.0.0.1:1/x\r\nX-Evil: 1",
        "http://127.0.0.1:1/x HTTP/1.1\nX-Evil: 1",
    };
    size_t i;

    rec_init(&r, s);
    memset(&rq, 0, sizeof rq);
    for (i = 0; i < DRV_ARRAY_LEN(bad_urls); i++) {
        rq.url = bad_urls[i];
        if (drv_http_request(s->h, &rq, on_done, &r, NULL) != -EINVAL)
            fail_msg("%s was taken", bad_urls[i] ? bad_urls[i] : "NULL");
    }
    rq.url = "http://127.0.0.1:1/x";
    rq.headers = bad_lf;
    rq.nheaders = 1;
    assert_int_equal(drv_http_request(s->h, &rq, on_done, &r, NULL),
                     -EINVAL);
    rq.nheaders = 0;
    rq.method = "GE T";
    assert_int_equal(drv_http_request(s->h, &rq, on_done, &r, NULL),
                     -EINVAL);
    rq.method = NULL;
    rq.headers = bad_hdr;
    rq.nheaders = 1;
    assert_int_equal(drv_http_request(s->h, &rq, on_done, &r, NULL),
                     -EINVAL);
    rq.nheaders = 0;
    assert_int_equal(drv_http_request(s->h, &rq, NULL, &r, NULL), -EINVAL);
    /* no callback ever ran, nothing is pending */
    assert_int_equal(stats_of(s->h).pending, 0);
    run_until(s, 0, 0);
    assert_int_equal(r.ncb, 0);
    assert_int_equal(count_events(s->base), s->events_before);
    assert_int_equal(drv_http_create(s->loop,
                                     &(struct drv_http_opts){
                                         .max_host_connections = -1},
                                     &(struct drv_http *){NULL}),
                     -EINVAL);
    rec_fini(&r);
}

/* A proxy named in the environment is used (the client tells curl there
 * is none only when no proxy variable is set): with http_proxy pointing
 * at the test server, a request to a closed port reaches the server. */
static void
test_http_proxy_from_environment(void **st)
{
    struct state *s = *st;
    static const char *const names[] = {"no_proxy", "NO_PROXY",
                                        "all_proxy", "ALL_PROXY"};
    char *saved[DRV_ARRAY_LEN(names)], *saved_http;
    char proxy[64];
    struct rec r;
    size_t i;

    for (i = 0; i < DRV_ARRAY_LEN(names); i++) {
        saved[i] = getenv(names[i]) ? strdup(getenv(names[i])) : NULL;
        unsetenv(names[i]);
    }
    saved_http = getenv("http_proxy") ? strdup(getenv("http_proxy")) : NULL;
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", s->port);
    setenv("http_proxy", proxy, 1);
    drv_http_free(s->h);
    assert_int_equal(drv_http_create(s->loop, NULL, &s->h), 0);

    get_closed_port(s, &r, "/echo", 0, 4096);
    assert_int_equal(r.code, 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "GET\nx-test=(none)\nctype=(none)\n"
                                "expect=(none)\nclen=(none)\n\n");
    assert_int_equal(s->requests, 1);
    rec_fini(&r);
    /* curl reads the variables for each transfer: restored only now */
    for (i = 0; i < DRV_ARRAY_LEN(names); i++)
        if (saved[i] != NULL) {
            setenv(names[i], saved[i], 1);
            free(saved[i]);
        }
    if (saved_http != NULL) {
        setenv("http_proxy", saved_http, 1);
        free(saved_http);
    } else {
        unsetenv("http_proxy");
    }
}

/* A host name other than "localhost" that the system resolves to
 * 127.0.0.1, or NULL. */
static const char *
loopback_name(char *buf, size_t n)
{
    struct addrinfo hints, *res = NULL;
    int ok = 0;

    if (gethostname(buf, n) != 0 || strcmp(buf, "localhost") == 0)
        return NULL;
    buf[n - 1] = '\0';
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(buf, NULL, &hints, &res) == 0 && res != NULL)
        ok = ((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr.s_addr ==
             htonl(INADDR_LOOPBACK);
    if (res != NULL)
        freeaddrinfo(res);
    return ok ? buf : NULL;
}

static void
test_http_names_resolve_off_loop(void **st)
{
    struct state *s = *st;
    struct rec r[2];
    char name[256];
    const char *host;
    int i;

    /* Debian's libcurl: the threaded resolver (https:// and the other
     * requests libcurl makes); plain http:// names: the client's own */
    assert_int_equal(drv_http_async_dns(), 1);
    for (i = 0; i < 2; i++)
        rec_init(&r[i], s);
    start_host(s, &r[0], "localhost", "/conn");
    run_until(s, 1, 0);
    assert_int_equal(r[0].code, 0);
    assert_string_equal(r[0].body, "ok");
    /* a name the resolver thread looks up, if this host has one */
    host = loopback_name(name, sizeof name);
    if (host != NULL) {
        start_host(s, &r[1], host, "/conn");
        run_until(s, 2, 0);
        assert_int_equal(r[1].code, 0);
        assert_string_equal(r[1].body, "ok");
    }
    for (i = 0; i < 2; i++)
        rec_fini(&r[i]);
    if (host == NULL)
        skip();
}

/* ------------------------------------------------- the h1 path, raw */

/* A request to the raw server, host "127.0.0.1" or "localhost" (both
 * pkg/http's own HTTP/1.1 path, unless the client is told otherwise). */
static void
start_raw(struct state *s, struct rec *rc, const char *host,
          const char *method, const char *path, const char *const *headers,
          size_t nheaders, const char *body, size_t body_len,
          size_t body_max)
{
    start_url(s, rc, host, s->raw.port, method, path, headers, nheaders,
              body, body_len, 20000, body_max);
}

/* One request to the raw server over the h1 path, run to its end. */
static void
raw_one(struct state *s, struct rec *rc, const char *method,
        const char *path, size_t body_max)
{
    rec_init(rc, s);
    start_raw(s, rc, "127.0.0.1", method, path, NULL, 0, NULL, 0, body_max);
    run_until(s, s->done + 1, 0);
    assert_int_equal(rc->ncb, 1);
}

/* GET path on the raw server over the h1 path: its code and body (NULL:
 * any), then how many connections and requests the server has seen. */
static void
raw_expect(struct state *s, const char *path, int code, const char *body,
           int accepted, int requests)
{
    struct rec r;

    raw_one(s, &r, NULL, path, 100);
    if (r.code != code)
        fail_msg("%s: code %d (%s), not %d", path, r.code, r.error, code);
    if (code < 0)
        assert_true(strlen(r.error) > 0);
    if (body != NULL)
        assert_string_equal(r.body, body);
    assert_int_equal(s->raw.accepted, accepted);
    assert_int_equal(s->raw.requests, requests);
    rec_fini(&r);
}

/* Bodies in chunks, to the close, Connection: close, HEAD, 1xx: each
 * whole, and the connection kept exactly when it can carry another
 * request. */
static void
test_http_h1_bodies_and_connections(void **st)
{
    struct state *s = *st;
    struct rec r;

    raw_start(s);
    raw_one(s, &r, NULL, "/chunked", 4096);
    assert_int_equal(r.code, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.version, 11);
    assert_string_equal(r.body, "hello world");
    assert_int_equal(r.truncated, 0);
    rec_fini(&r);
    raw_one(s, &r, NULL, "/chunked", 4096);
    assert_string_equal(r.body, "hello world");
    assert_int_equal(s->raw.accepted, 1); /* kept for the second */
    rec_fini(&r);
    /* cut at body_max across chunks; the rest is read, the connection
     * stays */
    raw_one(s, &r, NULL, "/bigchunks?n=5000", 1200);
    assert_int_equal(r.code, 0);
    assert_int_equal(r.body_len, 1200);
    assert_int_equal(r.truncated, 1);
    assert_int_equal(r.body[1199], 'y');
    rec_fini(&r);
    raw_expect(s, "/x", 0, "ok", 1, 4);
    /* Connection: close: the next request opens a new connection */
    raw_expect(s, "/close", 0, "ok", 1, 5);
    raw_expect(s, "/x", 0, "ok", 2, 6);
    /* HTTP/1.0 without a length: the body ends at the close */
    raw_one(s, &r, NULL, "/eof", 100);
    assert_int_equal(r.code, 0);
    assert_int_equal(r.version, 10);
    assert_string_equal(r.body, "until close");
    rec_fini(&r);
    /* HEAD: a Content-Length but no body; the connection stays */
    raw_one(s, &r, "HEAD", "/head", 100);
    assert_int_equal(r.code, 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    rec_fini(&r);
    raw_one(s, &r, NULL, "/continue", 100);
    assert_int_equal(r.code, 0);
    assert_int_equal(r.status, 204);
    assert_string_equal(r.reason, "No Content");
    assert_int_equal(r.body_len, 0);
    rec_fini(&r);
    assert_int_equal(s->raw.accepted, 3);
    assert_int_equal(s->raw.requests, 9);
}

/* A kept connection the server drops after reading a request: a GET
 * (idempotent) goes again, once, on a new connection; a POST, which the
 * server may have acted on, is not sent twice: it fails. A new
 * connection dropped is not retried. */
static void
test_http_h1_stale_connection_retried(void **st)
{
    struct state *s = *st;
    struct rec r;

    raw_start(s);
    raw_expect(s, "/x", 0, "ok", 1, 1);
    raw_expect(s, "/drop", 0, "ok", 2, 3);
    rec_init(&r, s);
    start_raw(s, &r, "127.0.0.1", "POST", "/drop", NULL, 0, "{}", 2, 100);
    run_until(s, s->done + 1, 0);
    assert_int_equal(r.code, -ECONNRESET);
    assert_int_equal(s->raw.accepted, 2);
    assert_int_equal(s->raw.requests, 4);
    rec_fini(&r);
    raw_expect(s, "/x", 0, "ok", 3, 5);
    /* dropped on the kept connection and again on the new one: once */
    raw_expect(s, "/dropfirst", -ECONNRESET, NULL, 4, 7);
    /* a new connection (none is kept now): not retried */
    raw_expect(s, "/dropfirst", -ECONNRESET, NULL, 5, 8);
}

/* A kept connection the server closed before the next request (its
 * keep-alive timeout), the close already in but not yet seen by the
 * loop: the POST goes out once, on a new connection, and succeeds. */
static void
test_http_h1_closed_kept_connection_not_used(void **st)
{
    struct state *s = *st;
    struct rec a, b;

    raw_start(s);
    rec_init(&a, s);
    rec_init(&b, s);
    a.then = &b;
    start_raw(s, &a, "127.0.0.1", NULL, "/quietclose", NULL, 0, NULL, 0,
              100);
    run_until(s, 2, 0);
    assert_int_equal(a.code, 0);
    if (b.code != 0)
        fail_msg("the POST: code %d (%s)", b.code, b.error);
    assert_string_equal(b.body, "ok");
    assert_int_equal(s->raw.accepted, 2);
    assert_int_equal(s->raw.requests, 2);
    rec_fini(&a);
    rec_fini(&b);
}

/* A response cut short, an invalid one, bytes after the response,
 * ambiguous framing. */
static void
test_http_h1_bad_responses(void **st)
{
    struct state *s = *st;

    raw_start(s);
    raw_expect(s, "/partial", -ECONNRESET, "", 1, 1);
    raw_expect(s, "/garbage", DRV_EPROTO, "", 2, 2);
    /* the first response is the answer; the connection is not reused */
    raw_expect(s, "/early", 0, "ok", 3, 3);
    raw_expect(s, "/x", 0, "ok", 4, 4);
    /* framing a response splitter could use (Transfer-Encoding with a
     * Content-Length, or in HTTP/1.0): the body read as chunked, the
     * connection not used again */
    raw_expect(s, "/tecl", 0, "ok", 4, 5);
    raw_expect(s, "/x", 0, "ok", 5, 6);
    raw_expect(s, "/te10", 0, "ok", 5, 7);
    raw_expect(s, "/x", 0, "ok", 6, 8);
}

/* An answer before the request is whole (32 MiB of body, more than the
 * socket buffers hold, and a 413 once the head is in): it is the
 * outcome, and the connection, its request cut short, is not used
 * again. */
static void
test_http_h1_answer_before_body(void **st)
{
    struct state *s = *st;
    size_t n = 32u << 20;
    char *big = malloc(n);
    struct rec r;

    memset(big, 'B', n);
    raw_start(s);
    rec_init(&r, s);
    start_raw(s, &r, "127.0.0.1", "POST", "/reject", NULL, 0, big, n, 100);
    run_until(s, 1, 0);
    assert_int_equal(r.code, 0);
    assert_int_equal(r.status, 413);
    rec_fini(&r);
    free(big);
    raw_expect(s, "/x", 0, "ok", 2, 2);
}

/* The head the h1 path sends is the one libcurl sends: the same request
 * through both (the client s->h, and one told to use libcurl only) gives
 * the same bytes, to a numeric host and to a name. */
static void
test_http_h1_head_as_curl(void **st)
{
    struct state *s = *st;
    static const struct {
        const char *method;
        const char *hs[5];
        size_t nh;
        const char *body;
    } cases[] = {
        {NULL, {NULL}, 0, NULL},
        {"POST", {"Content-Type: application/json", "X-Test: 1"}, 2, "{}"},
        {"POST", {NULL}, 0, NULL},
        {"PUT", {"X-E;", "X-Gone:", "nocolon", "Accept:", "X-A:  2"}, 5,
         "b"},
        {"DELETE", {"User-Agent: me", "Host: elsewhere"}, 2, NULL},
        {"GET", {"Expect: 100-continue"}, 1, "body of a GET"},
        {"HEAD", {NULL}, 0, NULL},
    };
    static const char *const hosts[] = {"127.0.0.1", "localhost"};
    struct drv_http *own = s->h, *curl = NULL;
    struct drv_http_stats hs;
    struct rec a, b;
    size_t i, k;

    raw_start(s);
    assert_int_equal(drv_http_create(s->loop, NULL, &curl), 0);
    drv__http_own_client(curl, 0);
    for (k = 0; k < 2 * DRV_ARRAY_LEN(cases); k++) {
        const char *host = hosts[k / DRV_ARRAY_LEN(cases)];
        const char *m;
        const char *path;

        i = k % DRV_ARRAY_LEN(cases);
        m = cases[i].method;
        path = m != NULL && strcmp(m, "HEAD") == 0 ? "/dump"
                                                    : "/dump/a%20b?q=1&r";
        rec_init(&a, s);
        rec_init(&b, s);
        start_raw(s, &a, host, m, path, cases[i].hs, cases[i].nh,
                  cases[i].body,
                  cases[i].body ? strlen(cases[i].body) : 0, 4096);
        s->h = curl;
        start_raw(s, &b, host, m, path, cases[i].hs, cases[i].nh,
                  cases[i].body,
                  cases[i].body ? strlen(cases[i].body) : 0, 4096);
        s->h = own;
        run_until(s, s->done + 2, 0);
        assert_int_equal(a.code, 0);
        assert_int_equal(b.code, 0);
        if (m != NULL && strcmp(m, "HEAD") == 0) {
            assert_int_equal(a.body_len, 0);
            rec_fini(&a);
            rec_fini(&b);
            continue;
        }
        if (strcmp(a.body, b.body) != 0)
            fail_msg("case %zu (%s): h1 sent\n%s\nlibcurl sent\n%s", i,
                     host, a.body, b.body);
        rec_fini(&a);
        rec_fini(&b);
    }
    /* the name went through the own client (its resolver), not curl */
    drv_http_get_stats(own, &hs);
    assert_int_equal(hs.lookups, 1);
    drv_http_get_stats(curl, &hs);
    assert_int_equal(hs.lookups, 0);
    drv_http_free(curl);
}

/* With nothing to do the client takes its kept connections off the loop,
 * keeping only the timer that closes them once idle too long; the next
 * request checks the connection before it uses it: kept, it is reused;
 * closed meanwhile, a new one. */
static int
only_raw_left(struct state *s)
{
    return count_events(s->base) == s->events_before + raw_events(s);
}

static int
only_raw_and_age_timer_left(struct state *s)
{
    return count_events(s->base) == s->events_before + raw_events(s) + 1;
}

static void
test_http_h1_idle_off_the_loop(void **st)
{
    struct state *s = *st;
    int i;

    raw_start(s);
    raw_expect(s, "/x", 0, "ok", 1, 1);
    spin_until(s, only_raw_and_age_timer_left,
               "the kept connection off the loop");
    raw_expect(s, "/x", 0, "ok", 1, 2);
    spin_until(s, only_raw_and_age_timer_left,
               "the kept connection off the loop");
    for (i = 0; i < RAW_MAX; i++)
        if (s->raw.conns[i].fd >= 0)
            raw_close(&s->raw.conns[i]);
    raw_expect(s, "/x", 0, "ok", 2, 3);
}

static int
raw_none_open(struct state *s)
{
    int i;

    for (i = 0; i < RAW_MAX; i++)
        if (s->raw.conns[i].fd >= 0)
            return 0;
    return 1;
}

static int64_t passed_at_ns; /* time_passed's moment */

static int
time_passed(struct state *s)
{
    (void)s;
    return drv_clock_mono_ns() >= passed_at_ns;
}

/* A kept connection idle for max_idle_ms is never used again. The own
 * client closes it when the time comes, with no request (the server sees
 * the close, and the timer goes with the connection: nothing of the
 * client is left on the loop); one idle for less is reused. libcurl gets
 * the limit in whole seconds (1 here: it reuses a connection idle for
 * less than 2 s, closes one idle longer). Waiting for time to pass is
 * what is tested: the assertions count connections, never time. */
static void
test_http_idle_age_limit(void **st)
{
    struct state *s = *st;
    struct drv_http_opts o;
    struct drv_http *own, *curl = NULL;

    drv_http_free(s->h);
    memset(&o, 0, sizeof o);
    o.max_idle_ms = 1000;
    assert_int_equal(drv_http_create(s->loop, &o, &s->h), 0);
    own = s->h;
    raw_start(s);
    raw_expect(s, "/x", 0, "ok", 1, 1);
    raw_expect(s, "/x", 0, "ok", 1, 2); /* idle for less: reused */
    assert_int_equal(stats_of(own).aged_out, 0);
    spin_until(s, raw_none_open, "the idle connection closed for its age");
    assert_int_equal(stats_of(own).aged_out, 1);
    assert_int_equal(stats_of(own).open, 0);
    spin_until(s, only_raw_left, "the client's events to go");
    raw_expect(s, "/x", 0, "ok", 2, 3); /* a new connection */

    assert_int_equal(drv_http_create(s->loop, &o, &curl), 0);
    drv__http_own_client(curl, 0);
    s->h = curl;
    raw_expect(s, "/x", 0, "ok", 3, 4);
    raw_expect(s, "/x", 0, "ok", 3, 5); /* idle for less: reused */
    passed_at_ns = drv_clock_mono_ns() + 2100 * DRV_NS_PER_MS;
    spin_until(s, time_passed, "2.1 s to pass");
    raw_expect(s, "/x", 0, "ok", 4, 6); /* idle 2 s: a new one */
    s->h = own;
    drv_http_free(curl);
    /* a negative limit is refused */
    o.max_idle_ms = -1;
    assert_int_equal(drv_http_create(s->loop, &o, &curl), -EINVAL);
}

/* drv__http_url_lean takes only plain http:// URLs whose parts libcurl's
 * parser leaves as they are (so a worker whose URLs are all such never
 * loads libcurl): for each it takes, the target (Host, request-target,
 * port, address or name) is the one libcurl's parts give; anything else
 * is left to libcurl. */
static void
test_http_url_lean_as_curl(void **st)
{
    static const char *const taken[] = {
        "http://h", "http://h/", "HTTP://h:8080/a%20b?q=1&r",
        "http://[::1]:9/x", "http://127.0.0.1/x?y=1?z/w",
        "http://a-b_c.example./p;x=1/(y)*'!$,~@:", "http://h:65535/",
        "http://[2001:db8::1]/", "http://h/a//b/.x/..y", "http://h:80/x",
        "http://10.0.0.7:8080/hook", "http://hooks.internal:8080/x",
    };
    static const char *const left[] = {
        "https://h/", "ftp://h/", "http://user@h/", "http://u:p@h/",
        "http://H/", "http://127.1/", "http://0x7f.0.0.1/",
        "http://2130706433/", "http://010.0.0.1/", "http://h/a/../b",
        "http://h/./b", "http://h/a/..", "http://h/#f", "http://h/x#",
        "http://h/a b", "http://h:0/", "http://h:080/", "http://h:/",
        "http://h:65536/", "http://[fe80::1%25eth0]/",
        "http://[::FFFF:1.2.3.4]/", "http://[0:0::1]/", "http://h/x?",
        "http://h?x", "http://\xc3\xbc.de/", "http://h/\x7f", "http://h/{x}",
        "http://.h/", "http://a..b/", "http:///x", "http://",
        "http://h/\\x",
    };
    struct drv__h1_target a, b;
    size_t i;

    (void)st;
    drv__h1_target_init(&a);
    drv__h1_target_init(&b);
    for (i = 0; i < DRV_ARRAY_LEN(taken); i++) {
        if (drv__http_url_lean(taken[i], &a) != 1)
            fail_msg("%s not taken", taken[i]);
        if (drv__http_url_curl(taken[i], &b) != 1)
            fail_msg("%s: libcurl's parts do not go through h1", taken[i]);
        if (!drv__h1_target_same(&a, &b))
            fail_msg("%s: Host %s, target %s, port %u here; Host %s, "
                     "target %s, port %u by libcurl", taken[i], a.host.data,
                     a.path.data, a.port, b.host.data, b.path.data, b.port);
    }
    for (i = 0; i < DRV_ARRAY_LEN(left); i++)
        if (drv__http_url_lean(left[i], &a) != 0)
            fail_msg("%s taken", left[i]);
    drv__h1_target_fini(&a);
    drv__h1_target_fini(&b);
}

/* Requests waiting for a connection (max_host_connections reached) time
 * out and cancel like any other; one that cannot even start connecting
 * reports it from the loop, once. */
static void
test_http_h1_waiting_and_failing_at_once(void **st)
{
    struct state *s = *st;
    struct drv_http_opts o;
    struct drv_http_req rq;
    struct rec a, b, c, d, e;

    drv_http_free(s->h);
    memset(&o, 0, sizeof o);
    o.max_host_connections = 1;
    assert_int_equal(drv_http_create(s->loop, &o, &s->h), 0);
    rec_init(&a, s);
    rec_init(&b, s);
    rec_init(&c, s);
    rec_init(&d, s);
    rec_init(&e, s);
    start(s, &a, NULL, "/hang", NULL, 0, NULL, 0, 0, 100);
    start(s, &b, NULL, "/conn", NULL, 0, NULL, 0, 300, 100);
    start(s, &c, NULL, "/conn", NULL, 0, NULL, 0, 0, 100);
    start(s, &d, NULL, "/conn", NULL, 0, NULL, 0, 0, 100);
    want_hangs = 1;
    spin_until(s, hangs_seen, "the first request at the server");
    /* b waits behind a, and times out there */
    run_until(s, 1, 0);
    assert_int_equal(b.ncb, 1);
    assert_int_equal(b.code, -ETIMEDOUT);
    assert_true(strlen(b.error) > 0);
    /* c is cancelled while waiting; a's cancel frees the connection for
     * d */
    s->in_cancel = 1;
    drv_http_cancel(c.call);
    drv_http_cancel(a.call);
    s->in_cancel = 0;
    assert_int_equal(c.ncb, 0);
    run_until(s, 4, 1);
    assert_int_equal(c.code, -ECANCELED);
    assert_int_equal(c.cb_in_cancel, 0);
    assert_int_equal(a.code, -ECANCELED);
    assert_int_equal(d.code, 0);
    assert_string_equal(d.body, "ok");
    assert_int_equal(s->requests, 2); /* a and d reached the server */
    /* connect() fails at once: reported later, from the loop */
    memset(&rq, 0, sizeof rq);
    rq.url = "http://255.255.255.255:9/x";
    assert_int_equal(drv_http_request(s->h, &rq, on_done, &e, &e.call), 0);
    assert_int_equal(e.ncb, 0);
    run_until(s, 5, 1);
    assert_int_equal(e.ncb, 1);
    assert_true(e.code < 0 && e.code != -ECANCELED);
    assert_true(strlen(e.error) > 0);
    assert_int_equal(stats_of(s->h).pending, 0);
    rec_fini(&a);
    rec_fini(&b);
    rec_fini(&c);
    rec_fini(&d);
    rec_fini(&e);
}

/* max_total_connections counts every host: a request to another host
 * closes an idle connection to make room, and waits while all are busy
 * until one frees up. */
static void
test_http_h1_total_limit_across_hosts(void **st)
{
    struct state *s = *st;
    struct drv_http_opts o;
    struct rec a, b, c;

    raw_start(s);
    drv_http_free(s->h);
    memset(&o, 0, sizeof o);
    o.max_total_connections = 1;
    assert_int_equal(drv_http_create(s->loop, &o, &s->h), 0);
    raw_expect(s, "/x", 0, "ok", 1, 1); /* kept idle */
    /* the evhttp server (another port): the raw one's idle goes */
    rec_init(&a, s);
    start(s, &a, NULL, "/conn", NULL, 0, NULL, 0, 20000, 100);
    run_until(s, s->done + 1, 0);
    assert_int_equal(a.code, 0);
    assert_string_equal(a.body, "ok");
    rec_fini(&a);
    raw_expect(s, "/x", 0, "ok", 2, 2); /* a new one: the old was closed */
    /* all busy: the next host's request waits for the place */
    rec_init(&b, s);
    rec_init(&c, s);
    start(s, &b, NULL, "/hang", NULL, 0, NULL, 0, 0, 100);
    want_hangs = 1;
    spin_until(s, hangs_seen, "the request at the server");
    start_raw(s, &c, "127.0.0.1", NULL, "/x", NULL, 0, NULL, 0, 100);
    spin(s);
    assert_int_equal(c.ncb, 0);
    assert_int_equal(s->raw.requests, 2);
    drv_http_cancel(b.call);
    run_until(s, s->done + 2, 1);
    assert_int_equal(b.code, -ECANCELED);
    assert_int_equal(c.code, 0);
    assert_string_equal(c.body, "ok");
    assert_int_equal(s->raw.requests, 3);
    rec_fini(&b);
    rec_fini(&c);
}

/* ------------------------------------------------- host names, own client */

static uint64_t
lookups(struct state *s)
{
    struct drv_http_stats hs;

    drv_http_get_stats(s->h, &hs);
    return hs.lookups;
}

/* 1 if the system's first address for localhost is not 127.0.0.1 (say
 * ::1, where nothing listens on the raw server's port). */
static int
localhost_first_not_v4(int port)
{
    struct addrinfo hints, *res = NULL;
    char serv[16];
    int v4 = 1;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(serv, sizeof serv, "%d", port);
    if (getaddrinfo("localhost", serv, &hints, &res) == 0 && res != NULL)
        v4 = res->ai_family == AF_INET &&
             ((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr.s_addr ==
                 htonl(INADDR_LOOPBACK);
    if (res != NULL)
        freeaddrinfo(res);
    return !v4;
}

/* A name goes through the own client: looked up once for the requests
 * that wait for it together, then from the cache; per name and port;
 * the connections kept are reused as for an address. */
static void
test_http_h1_names_looked_up_once(void **st)
{
    struct state *s = *st;
    struct drv_http_stats hs;
    struct rec r[5];
    int i;

    raw_start(s);
    for (i = 0; i < 4; i++) {
        rec_init(&r[i], s);
        start_raw(s, &r[i], "localhost", NULL, "/x", NULL, 0, NULL, 0, 100);
    }
    assert_int_equal(lookups(s), 1); /* the four wait for one lookup */
    run_until(s, 4, 0);
    for (i = 0; i < 4; i++) {
        assert_int_equal(r[i].code, 0);
        assert_string_equal(r[i].body, "ok");
        rec_fini(&r[i]);
    }
    assert_int_equal(s->raw.requests, 4);
    assert_int_equal(s->raw.accepted, 4); /* four at once: four */
    /* the cached answer, a kept connection */
    raw_expect(s, "/x", 0, "ok", 4, 5); /* (127.0.0.1: no lookup) */
    rec_init(&r[4], s);
    start_raw(s, &r[4], "localhost", NULL, "/x", NULL, 0, NULL, 0, 100);
    run_until(s, s->done + 1, 0);
    assert_int_equal(r[4].code, 0);
    rec_fini(&r[4]);
    assert_int_equal(lookups(s), 1);
    assert_int_equal(s->raw.accepted, 4);
    /* another port of the same name: its own lookup */
    rec_init(&r[0], s);
    start_host(s, &r[0], "localhost", "/conn");
    run_until(s, s->done + 1, 0);
    assert_int_equal(r[0].code, 0);
    assert_string_equal(r[0].body, "ok");
    rec_fini(&r[0]);
    assert_int_equal(lookups(s), 2);
    /* where the system lists another address of localhost first (::1),
     * nothing listens there: the next one was tried */
    drv_http_get_stats(s->h, &hs);
    if (localhost_first_not_v4(s->raw.port))
        assert_true(hs.next_address >= 1);
}

/* The try-next path on its own: a target whose first address refuses
 * (::1 and 127.0.0.2 on the raw server's port, where nothing listens)
 * is served by its last one (127.0.0.1); a second request goes straight
 * to the kept connection. */
/* One transfer of test_http_h1_next_address. */
struct nx {
    struct drv__h1_xfer x;
    int done;                     /* its hook ran */
    int code;                     /* the status, or the negative code */
};

static void
on_xfer_done(struct drv__h1_xfer *x, int code)
{
    struct nx *n = drv_container_of(x, struct nx, x);

    n->done = 1;
    n->code = code == 0 ? x->parser.status : code;
}

static void
test_http_h1_next_address(void **st)
{
    struct state *s = *st;
    struct drv__h1_opts o = {0, 0, 0, 0};
    struct drv__h1 *h1 = NULL;
    struct drv__h1_target t;
    struct nx n;
    struct drv_buf body;
    static const char head[] = "GET /x HTTP/1.1\r\nHost: n\r\n\r\n";
    static const char *const addrs[] = {"::1", "127.0.0.2", "127.0.0.1"};
    size_t i;
    int round;

    raw_start(s);
    assert_int_equal(drv__h1_create(s->base, &o, &h1), 0);
    drv__h1_target_init(&t);
    for (i = 0; i < DRV_ARRAY_LEN(addrs); i++) {
        struct drv__h1_addr *a = &t.addrs[i];
        struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;

        memset(a, 0, sizeof *a);
        if (strchr(addrs[i], ':') != NULL) {
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons((uint16_t)s->raw.port);
            assert_int_equal(inet_pton(AF_INET6, addrs[i],
                                       &sin6->sin6_addr), 1);
            a->len = sizeof *sin6;
        } else {
            sin->sin_family = AF_INET;
            sin->sin_port = htons((uint16_t)s->raw.port);
            assert_int_equal(inet_pton(AF_INET, addrs[i], &sin->sin_addr),
                             1);
            a->len = sizeof *sin;
        }
    }
    t.naddr = DRV_ARRAY_LEN(addrs);
    drv_buf_adds(&t.host, "n");
    drv__h1_xfer_init(&n.x);
    drv_buf_init(&body);
    for (round = 0; round < 2; round++) {
        drv_buf_reset(&body);
        drv__h1_parser_init(&n.x.parser, &body, 100, 0);
        n.done = 0;
        assert_int_equal(drv__h1_start(h1, &n.x, &t, head, sizeof head - 1,
                                       NULL, 0, 20000, on_xfer_done), 0);
        wait_until(n.done || spin(s), "the transfer to end");
        if (n.code != 200)
            fail_msg("round %d: %d (%s)", round, n.code, n.x.error);
        assert_string_equal(body.data, "ok");
    }
    assert_int_equal(s->raw.accepted, 1);
    assert_int_equal(s->raw.requests, 2);
    /* ::1 and 127.0.0.2 refused the first time; the second went to the
     * kept connection */
    assert_int_equal(h1_stats_of(h1).next_address, 2);
    drv_buf_fini(&body);
    drv__h1_xfer_fini(&n.x);
    drv__h1_target_fini(&t);
    drv__h1_free(h1);
}

/* A name that does not resolve: a connection error (retried) naming the
 * host, from the loop; not cached: the next request asks again. libcurl
 * reports the same code. */
static void
test_http_h1_name_unresolvable(void **st)
{
    struct state *s = *st;
    struct drv_http *curl = NULL, *own = s->h;
    struct rec r, c;

    rec_init(&r, s);
    start_url(s, &r, "no-such-host.invalid", 80, NULL, "/x", NULL, 0, NULL,
              0, 20000, 100);
    assert_int_equal(r.ncb, 0);
    run_until(s, 1, 0);
    assert_int_equal(r.code, DRV_EHANDLER);
    if (strstr(r.error, "cannot resolve no-such-host.invalid: ") == NULL)
        fail_msg("error: %s", r.error);
    assert_int_equal(lookups(s), 1);
    rec_fini(&r);
    rec_init(&r, s);
    start_url(s, &r, "no-such-host.invalid", 80, NULL, "/x", NULL, 0, NULL,
              0, 20000, 100);
    run_until(s, 2, 0);
    assert_int_equal(r.code, DRV_EHANDLER);
    assert_int_equal(lookups(s), 2);
    rec_fini(&r);
    /* libcurl: the same code */
    assert_int_equal(drv_http_create(s->loop, NULL, &curl), 0);
    drv__http_own_client(curl, 0);
    s->h = curl;
    rec_init(&c, s);
    start_url(s, &c, "no-such-host.invalid", 80, NULL, "/x", NULL, 0, NULL,
              0, 20000, 100);
    s->h = own;
    run_until(s, 3, 0);
    assert_int_equal(c.code, DRV_EHANDLER);
    rec_fini(&c);
    drv_http_free(curl);
}

/* A request waiting for its lookup: cancelled (its callback later, from
 * the loop, -ECANCELED; the lookup still fills the cache), timed out
 * (the deadline passed before the answer was used), and completed by
 * drv_http_free. */
static void
test_http_h1_name_cancel_timeout_free(void **st)
{
    struct state *s = *st;
    struct rec a, b, c, d;
    int64_t t0;

    raw_start(s);
    rec_init(&a, s);
    start_raw(s, &a, "localhost", NULL, "/x", NULL, 0, NULL, 0, 100);
    s->in_cancel = 1;
    drv_http_cancel(a.call);
    s->in_cancel = 0;
    assert_int_equal(a.ncb, 0);
    run_until(s, 1, 0);
    assert_int_equal(a.code, -ECANCELED);
    assert_int_equal(a.cb_in_cancel, 0);
    assert_int_equal(s->raw.accepted, 0);
    /* the lookup it started is shared or cached: no second one */
    rec_init(&b, s);
    start_raw(s, &b, "localhost", NULL, "/x", NULL, 0, NULL, 0, 100);
    run_until(s, 2, 0);
    assert_int_equal(b.code, 0);
    assert_int_equal(lookups(s), 1);
    /* a new client (no cache): 1 ms, passed before the loop runs again;
     * the timer or the answer, whichever comes first, ends it */
    drv_http_free(s->h);
    assert_int_equal(drv_http_create(s->loop, NULL, &s->h), 0);
    rec_init(&c, s);
    start_url(s, &c, "localhost", s->raw.port, NULL, "/x", NULL, 0, NULL,
              0, 1, 100);
    t0 = drv_clock_mono_ns();
    wait_until(drv_clock_mono_ns() - t0 > 5 * DRV_NS_PER_MS,
               "the deadline to pass");
    run_until(s, 3, 0);
    assert_int_equal(c.code, -ETIMEDOUT);
    if (strstr(c.error, "Resolving timed out") == NULL)
        fail_msg("error: %s", c.error);
    assert_int_equal(s->raw.requests, 1);
    /* and freed while waiting: completed from inside drv_http_free, the
     * resolver's threads joined */
    drv_http_free(s->h);
    assert_int_equal(drv_http_create(s->loop, NULL, &s->h), 0);
    rec_init(&d, s);
    start_raw(s, &d, "localhost", NULL, "/x", NULL, 0, NULL, 0, 100);
    drv_http_free(s->h);
    s->h = NULL;
    assert_int_equal(d.ncb, 1);
    assert_int_equal(d.code, -ECANCELED);
    rec_fini(&a);
    rec_fini(&b);
    rec_fini(&c);
    rec_fini(&d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_http_get_and_headers),
        T(test_http_methods_and_bodies),
        T(test_http_status_codes),
        T(test_http_body_cap),
        T(test_http_retry_after),
        cmocka_unit_test(test_http_parse_retry_after),
        T(test_http_connection_refused),
        T(test_http_timeout),
        T(test_http_cancel_mid_transfer),
        T(test_http_many_concurrent_reuse),
        T(test_http_reused_call_forgets_last_request),
        T(test_http_unlimited_concurrency),
        T(test_http_free_completes_pending),
        T(test_http_free_inside_callback),
        T(test_http_bad_requests),
        T(test_http_proxy_from_environment),
        T(test_http_names_resolve_off_loop),
        T(test_http_h1_bodies_and_connections),
        T(test_http_h1_stale_connection_retried),
        T(test_http_h1_closed_kept_connection_not_used),
        T(test_http_h1_bad_responses),
        T(test_http_h1_answer_before_body),
        T(test_http_h1_head_as_curl),
        T(test_http_h1_idle_off_the_loop),
        T(test_http_idle_age_limit),
        cmocka_unit_test(test_http_url_lean_as_curl),
        T(test_http_h1_waiting_and_failing_at_once),
        T(test_http_h1_total_limit_across_hosts),
        T(test_http_h1_names_looked_up_once),
        T(test_http_h1_next_address),
        T(test_http_h1_name_unresolvable),
        T(test_http_h1_name_cancel_timeout_free),
    };
#undef T

    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, NULL, NULL);
}
