/*
 * test_http_handler.c -- the http handler end to end: a real droverd, the
 * harness's real redis-server, and an HTTP server (libevent's evhttp on
 * 127.0.0.1, its own event_base in a thread of this process) that records
 * what it receives. Covers the status mapping (2xx result, cut at
 * output_max; 5xx retried then dead, 404 and 302 dead at once,
 * connection refused), Retry-After
 * delaying the retry (read from the delayed zset's score, not from
 * wall-clock speed), templating (URL escaping, headers, body, the
 * default JSON body, missing fields, header injection) and cancellation
 * (a timeout and a graceful stop close the connection of a request the
 * server never answers), kept connections closed once idle for
 * worker.http_idle_timeout, and libcurl loaded only by the first job
 * whose URL needs it.
 *
 * The server's routes:
 *   /ok/...          200 "hello <uri>"
 *   /echo/...        200, the request body as the response body
 *   /status/N        status N, body "status N body"
 *   /redirect        302, Location: /ok/moved
 *   /throttle/...    first hit 429 with Retry-After: 1, then 200 "finally"
 *   /hang            never answers (an EV_CLOSED watch sees the close:
 *                    evhttp itself cannot, libevent #78)
 *   /slow/...        200 "slow", sent SLOW_MS after the request arrived
 * and counts the connections it accepts (connection reuse) and those
 * the client closed.
 *
 * Waits poll Redis or the server's record (wait_until) with generous
 * deadlines: hang guards, never speed checks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>

#include "droverd.h"
#include "evhttp.h"

#define MAX_REQS 256
#define MAX_HELD 32
#define SLOW_MS 20                /* /slow/ answers this late */

/* ------------------------------------------------------------ server */

/* One request as the server saw it (copied under the lock). */
struct seen {
    char method[16];
    char uri[512];
    char xjob[128];               /* X-Job, "(none)" if absent */
    char xtoken[128];             /* X-Token */
    char xevil[128];              /* X-Evil: must never arrive */
    char ctype[128];              /* Content-Type */
    char body[1024];              /* first bytes of the body */
    size_t body_len;              /* full length */
};

/* A request the server never answers. Server thread only. */
struct held {
    struct evhttp_connection *evcon; /* borrowed: evhttp's */
    struct event *close_ev;       /* owned: EV_CLOSED on its socket */
};

static struct {
    pthread_t thr;
    struct event_base *base;      /* the server thread's */
    struct evhttp *http;
    int port;
    struct held held[MAX_HELD];   /* server thread only */
    pthread_mutex_t mu;           /* guards what follows */
    struct seen reqs[MAX_REQS];
    int nreqs;
    int hang_seen;                /* /hang requests received */
    int hang_closed;              /* ... whose connection the client closed */
    char throttled[MAX_REQS][256]; /* /throttle URIs hit once already */
    int nthrottled;
    long long throttled_ms;       /* wall clock (ms) of the last 429 */
    int accepted;                 /* connections accepted */
    int conn_closed;              /* connections that carried a request,
                                     closed */
    int slow_done;                /* /slow/ responses sent */
} hs;

static void
copy_hdr(char *dst, size_t n, struct evhttp_request *req, const char *name)
{
    const char *v = evhttp_find_header(evhttp_request_get_input_headers(req),
                                       name);
    snprintf(dst, n, "%s", v ? v : "(none)");
}

static void
on_held_closed(evutil_socket_t fd, short what, void *arg)
{
    struct held *hd = arg;
    struct evhttp_connection *evcon = hd->evcon;

    (void)fd;
    (void)what;
    event_free(hd->close_ev);
    memset(hd, 0, sizeof *hd);
    evhttp_connection_free(evcon); /* and the unanswered request */
    pthread_mutex_lock(&hs.mu);
    hs.hang_closed++;
    pthread_mutex_unlock(&hs.mu);
}

static void
hold(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    evutil_socket_t fd =
        bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
    int i;

    for (i = 0; i < MAX_HELD && hs.held[i].evcon != NULL; i++)
        ;
    if (i == MAX_HELD)
        abort();
    hs.held[i].evcon = evcon;
    hs.held[i].close_ev = event_new(hs.base, fd, EV_CLOSED, on_held_closed,
                                    &hs.held[i]);
    event_add(hs.held[i].close_ev, NULL);
}

/* evhttp's bufferevent factory: called once per accepted connection. */
static struct bufferevent *
on_accept_bev(struct event_base *base, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&hs.mu);
    hs.accepted++;
    pthread_mutex_unlock(&hs.mu);
    return bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
}

/* evhttp frees a connection (here: the client closed it). */
static void
on_conn_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    (void)arg;
    pthread_mutex_lock(&hs.mu);
    hs.conn_closed++;
    pthread_mutex_unlock(&hs.mu);
}

/* The delayed answer of a /slow/ request. */
static void
on_slow_timer(evutil_socket_t fd, short what, void *arg)
{
    struct evhttp_request *req = arg;
    struct evbuffer *out = evbuffer_new();

    (void)fd;
    (void)what;
    pthread_mutex_lock(&hs.mu);
    hs.slow_done++;
    pthread_mutex_unlock(&hs.mu);
    evbuffer_add_printf(out, "slow");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

static void
on_request(struct evhttp_request *req, void *arg)
{
    const char *uri = evhttp_request_get_uri(req);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    struct evbuffer *out = evbuffer_new();
    struct seen *s = NULL;
    size_t len = evbuffer_get_length(in);
    int i, first = 1;

    (void)arg;
    evhttp_connection_set_closecb(evhttp_request_get_connection(req),
                                  on_conn_closed, NULL);
    pthread_mutex_lock(&hs.mu);
    if (hs.nreqs < MAX_REQS) {
        s = &hs.reqs[hs.nreqs++];
        memset(s, 0, sizeof *s);
        snprintf(s->method, sizeof s->method, "%s",
                 drv_test_method_name(evhttp_request_get_command(req)));
        snprintf(s->uri, sizeof s->uri, "%s", uri);
        copy_hdr(s->xjob, sizeof s->xjob, req, "X-Job");
        copy_hdr(s->xtoken, sizeof s->xtoken, req, "X-Token");
        copy_hdr(s->xevil, sizeof s->xevil, req, "X-Evil");
        copy_hdr(s->ctype, sizeof s->ctype, req, "Content-Type");
        s->body_len = len;
        evbuffer_copyout(in, s->body,
                         len < sizeof s->body - 1 ? len : sizeof s->body - 1);
    }
    if (strncmp(uri, "/throttle/", 10) == 0) {
        for (i = 0; i < hs.nthrottled; i++)
            if (strcmp(hs.throttled[i], uri) == 0)
                first = 0;
        if (first && hs.nthrottled < MAX_REQS)
            snprintf(hs.throttled[hs.nthrottled++], sizeof hs.throttled[0],
                     "%s", uri);
        if (first) {
            struct timespec ts;

            clock_gettime(CLOCK_REALTIME, &ts);
            hs.throttled_ms = (long long)ts.tv_sec * 1000 +
                              ts.tv_nsec / 1000000;
        }
    }
    if (strcmp(uri, "/hang") == 0)
        hs.hang_seen++;
    pthread_mutex_unlock(&hs.mu);

    if (strncmp(uri, "/ok/", 4) == 0) {
        evbuffer_add_printf(out, "hello %s", uri);
        evhttp_send_reply(req, 200, "OK", out);
    } else if (strncmp(uri, "/echo/", 6) == 0) {
        evbuffer_add_buffer(out, in);
        evhttp_send_reply(req, 200, "OK", out);
    } else if (strncmp(uri, "/status/", 8) == 0) {
        int code = atoi(uri + 8);
        evbuffer_add_printf(out, "status %d body", code);
        evhttp_send_reply(req, code, NULL, out);
    } else if (strcmp(uri, "/redirect") == 0) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Location",
                          "/ok/moved");
        evhttp_send_reply(req, 302, "Found", out);
    } else if (strncmp(uri, "/throttle/", 10) == 0) {
        if (first) {
            evhttp_add_header(evhttp_request_get_output_headers(req),
                              "Retry-After", "1");
            evbuffer_add_printf(out, "slow down");
            evhttp_send_reply(req, 429, "Too Many Requests", out);
        } else {
            evbuffer_add_printf(out, "finally");
            evhttp_send_reply(req, 200, "OK", out);
        }
    } else if (strcmp(uri, "/hang") == 0) {
        hold(req);
    } else if (strncmp(uri, "/slow/", 6) == 0) {
        struct timeval tv = {0, SLOW_MS * 1000};

        if (event_base_once(hs.base, -1, EV_TIMEOUT, on_slow_timer, req,
                            &tv) != 0)
            abort();
    } else {
        evhttp_send_reply(req, 404, NULL, out);
    }
    evbuffer_free(out);
}

static void *
server_main(void *arg)
{
    (void)arg;
    event_base_dispatch(hs.base);
    return NULL;
}

static int
server_start(void)
{
    struct evhttp_bound_socket *bs;
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;

    if (evthread_use_pthreads() != 0)
        return -1;
    pthread_mutex_init(&hs.mu, NULL);
    hs.base = event_base_new();
    hs.http = evhttp_new(hs.base);
    if (hs.base == NULL || hs.http == NULL)
        return -1;
    evhttp_set_allowed_methods(hs.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_PATCH);
    evhttp_set_gencb(hs.http, on_request, NULL);
    evhttp_set_bevcb(hs.http, on_accept_bev, NULL);
    bs = evhttp_bind_socket_with_handle(hs.http, "127.0.0.1", 0);
    if (bs == NULL ||
        getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin,
                    &len) != 0)
        return -1;
    hs.port = ntohs(sin.sin_port);
    return pthread_create(&hs.thr, NULL, server_main, NULL) == 0 ? 0 : -1;
}

static void
server_stop(void)
{
    int i;

    event_base_loopbreak(hs.base);
    pthread_join(hs.thr, NULL);
    for (i = 0; i < MAX_HELD; i++)
        if (hs.held[i].close_ev != NULL)
            event_free(hs.held[i].close_ev);
    evhttp_free(hs.http);
    event_base_free(hs.base);
    pthread_mutex_destroy(&hs.mu);
}

static void
server_reset(void)
{
    pthread_mutex_lock(&hs.mu);
    hs.nreqs = 0;
    hs.hang_seen = 0;
    hs.hang_closed = 0;
    hs.nthrottled = 0;
    hs.throttled_ms = 0;
    hs.accepted = 0;
    hs.conn_closed = 0;
    hs.slow_done = 0;
    pthread_mutex_unlock(&hs.mu);
}

/* The recorded request whose URI starts with prefix, copied; 0 if none. */
static int
server_find(const char *prefix, struct seen *out)
{
    int i, found = 0;

    pthread_mutex_lock(&hs.mu);
    for (i = 0; i < hs.nreqs && !found; i++)
        if (strncmp(hs.reqs[i].uri, prefix, strlen(prefix)) == 0) {
            *out = hs.reqs[i];
            found = 1;
        }
    pthread_mutex_unlock(&hs.mu);
    return found;
}

/* Requests whose URI starts with prefix. */
static int
server_count(const char *prefix)
{
    int i, n = 0;

    pthread_mutex_lock(&hs.mu);
    for (i = 0; i < hs.nreqs; i++)
        n += strncmp(hs.reqs[i].uri, prefix, strlen(prefix)) == 0;
    pthread_mutex_unlock(&hs.mu);
    return n;
}

static int
server_get(const int *field)
{
    int v;

    pthread_mutex_lock(&hs.mu);
    v = *field;
    pthread_mutex_unlock(&hs.mu);
    return v;
}

static void
wait_server(const int *field, int want, const char *what)
{
    wait_until_num(server_get(field), >=, want, what);
}

/* ------------------------------------------------------------ fixture */

/* every config: the queue, then the jobs; worker defaults unless a test's
 * worker keys name them */
static void setup(struct drv_test_droverd *t);

static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-ht",
    .prefix = "t",
    .log_level = "debug",
    .worker_defaults = "  visibility_timeout: 10s\n  shutdown_timeout: 5s\n",
    .body_head = "queues: [default]\njobs:\n",
    .tail_lines = 40,
    .setup = setup,
};

static int
group_setup(void **st)
{
    if (server_start() != 0)
        return -1;
    return drv_test_redis_group_setup(st);
}

static int
group_teardown(void **st)
{
    drv_test_redis_group_teardown(st);
    server_stop();
    return 0;
}

static void
setup(struct drv_test_droverd *t)
{
    server_reset();
}

/* The config (drv_test_droverd_config; extra NULL: the defaults) with the
 * jobs printf'd from jobs_fmt (the server's port in each "%d"). */
static void
write_config(struct drv_test_droverd *t, const char *extra,
             const char *jobs_fmt, ...)
{
    char jobs[6144];
    va_list ap;

    va_start(ap, jobs_fmt);
    vsnprintf(jobs, sizeof jobs, jobs_fmt, ap);
    va_end(ap);
    drv_test_droverd_config(t, extra, jobs);
}

/* -------------------------------------------------------------- tests */

static void
test_http_handler_status_mapping(void **st)
{
    struct drv_test_droverd *t = *st;
    char v[1024];
    int p = hs.port;

    write_config(t, NULL,
                 "  ok:\n    handler: http\n"
                 "    url: http://127.0.0.1:%d/ok/{name}\n"
                 "    result_ttl: 1m\n"
                 "  boom:\n    handler: http\n"
                 "    url: http://127.0.0.1:%d/status/500\n"
                 "    retries: 2\n    backoff: 10ms\n    backoff_max: 20ms\n"
                 "  gone:\n    handler: http\n"
                 "    url: http://127.0.0.1:%d/status/404\n"
                 "    retries: 3\n    result_ttl: 1m\n"
                 "  moved:\n    handler: http\n"
                 "    url: http://127.0.0.1:%d/redirect\n    retries: 3\n"
                 "  refused:\n    handler: http\n"
                 "    url: http://127.0.0.1:%d/x\n"
                 "    retries: 1\n    backoff: 10ms\n    backoff_max: 20ms\n"
                 "  short:\n    handler: http\n"
                 "    url: http://127.0.0.1:%d/ok/{name}\n"
                 "    output_max: 8\n    result_ttl: 1m\n"
                 "  named:\n    handler: http\n"
                 "    url: http://localhost:%d/ok/{name}\n"
                 "    result_ttl: 1m\n"
                 "  noname:\n    handler: http\n"
                 "    url: http://no-such-host.invalid/x\n"
                 "    retries: 1\n    backoff: 10ms\n    backoff_max: 20ms\n",
                 p, p, p, p, drv_test_free_port(), p, p);
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "job", "ok", "id", "ok-1", "name",
                  "world", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "boom", "id", "boom-1", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "gone", "id", "gone-1", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "moved", "id", "moved-1", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "refused", "id", "ref-1", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "short", "id", "short-1",
                  "name", "longer-than-eight", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "named", "id", "named-1",
                  "name", "host", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "noname", "id", "noname-1",
                  NULL);
    drv_test_wait_stat(t, "default", "processed", 3);
    drv_test_wait_stat(t, "default", "dead", 5);

    /* 2xx: the body is the result */
    drv_test_expect_result(t, "default", "ok-1", "result", "hello /ok/world");
    drv_test_expect_result(t, "default", "ok-1", "status", "ok");
    /* a body longer than output_max: the result is its first bytes */
    drv_test_expect_result(t, "default", "short-1", "result", "hello /o");
    /* a host name in the URL */
    drv_test_expect_result(t, "default", "named-1", "result",
                           "hello /ok/host");

    /* 5xx: retried, then dead with every attempt counted */
    drv_test_dead_field(t, "default", "job", "boom", "attempts", v, sizeof v);
    assert_string_equal(v, "3");
    drv_test_dead_field(t, "default", "job", "boom", "error", v, sizeof v);
    if (strstr(v, "HTTP 500 Internal Server Error: status 500 body") == NULL)
        fail_msg("boom error: %s", v);
    assert_int_equal(server_count("/status/500"), 3);

    /* 404: dead at once, naming the status */
    drv_test_dead_field(t, "default", "job", "gone", "attempts", v, sizeof v);
    assert_string_equal(v, "1");
    drv_test_dead_field(t, "default", "job", "gone", "error", v, sizeof v);
    if (strstr(v, "HTTP 404 Not Found") == NULL)
        fail_msg("gone error: %s", v);
    assert_int_equal(server_count("/status/404"), 1);
    drv_test_expect_result(t, "default", "gone-1", "status", "dead");

    /* 3xx: not followed, dead at once with the Location */
    drv_test_dead_field(t, "default", "job", "moved", "attempts", v, sizeof v);
    assert_string_equal(v, "1");
    drv_test_dead_field(t, "default", "job", "moved", "error", v, sizeof v);
    if (strstr(v, "HTTP 302 Found") == NULL || strstr(v, "/ok/moved") == NULL)
        fail_msg("moved error: %s", v);
    assert_int_equal(server_count("/ok/moved"), 0);

    /* no server: retried, then dead */
    drv_test_dead_field(t, "default", "job", "refused", "attempts", v,
                        sizeof v);
    assert_string_equal(v, "2");
    drv_test_dead_field(t, "default", "job", "refused", "error", v, sizeof v);
    if (strncmp(v, "connection refused: ", 20) != 0)
        fail_msg("refused error: %s", v);
    /* a name that does not resolve: retried, then dead, naming it */
    drv_test_dead_field(t, "default", "job", "noname", "attempts", v,
                        sizeof v);
    assert_string_equal(v, "2");
    drv_test_dead_field(t, "default", "job", "noname", "error", v, sizeof v);
    if (strstr(v, "cannot resolve no-such-host.invalid: ") == NULL)
        fail_msg("noname error: %s", v);

    assert_int_equal(drv_test_num(t, "HGET t:{default}:stats retried"), 4);
    drv_test_droverd_stop(t, 0, 0);
}

static void
test_http_handler_retry_after_delays_retry(void **st)
{
    struct drv_test_droverd *t = *st;
    long long score = 0, sent_ms;

    /* backoff alone would retry within 1 ms */
    write_config(t, NULL,
                 "  thr:\n    handler: http\n"
                 "    url: http://127.0.0.1:%d/throttle/{k}\n"
                 "    retries: 2\n    backoff: 1ms\n    backoff_max: 1ms\n"
                 "    result_ttl: 1m\n",
                 hs.port);
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "job", "thr", "id", "thr-1", "k", "a",
                  NULL);
    /* the retry waits in the delayed zset: due at least 1 s after the 429
     * was sent (the score is the due time, wall clock ms, as the server's
     * record of the 429), whatever the machine's speed */
    wait_until_num(score = drv_test_num(t, "ZSCORE t:{default}:delayed "
                                           "thr-1"),
                   >, 0, "score of the retry in the delayed zset");
    pthread_mutex_lock(&hs.mu);
    sent_ms = hs.throttled_ms;
    pthread_mutex_unlock(&hs.mu);
    assert_true(sent_ms > 0);
    if (score - sent_ms < 1000)
        fail_msg("retry due %lld ms after the 429, wanted >= 1000 "
                 "(Retry-After: 1)", score - sent_ms);
    drv_test_wait_stat(t, "default", "processed", 1);
    drv_test_expect_result(t, "default", "thr-1", "result", "finally");
    assert_int_equal(server_count("/throttle/a"), 2);
    assert_int_equal(drv_test_num(t, "HGET t:{default}:stats retried"), 1);
    drv_test_droverd_stop(t, 0, 0);
}

static void
test_http_handler_templating(void **st)
{
    struct drv_test_droverd *t = *st;
    struct seen s;
    char v[1024];
    char *res;
    int p = hs.port;

    write_config(t, NULL,
                 "  get_t:\n    handler: http\n"
                 "    url: http://127.0.0.1:%d/echo/{name}?q={q}\n"
                 "    headers:\n      X-Job: \"id-{id} attempt-{attempt}\"\n"
                 "      X-Token: \"{tok}\"\n"
                 "    result_ttl: 1m\n"
                 "  post_default:\n    handler: http\n    method: POST\n"
                 "    url: http://127.0.0.1:%d/echo/post\n"
                 "    result_ttl: 1m\n"
                 "  put_t:\n    handler: http\n    method: PUT\n"
                 "    url: http://127.0.0.1:%d/echo/put\n"
                 "    headers: {Content-Type: text/plain}\n"
                 "    body: \"name={name};n={n}\"\n"
                 "    result_ttl: 1m\n"
                 "  missing:\n    handler: http\n"
                 "    url: http://127.0.0.1:%d/echo/{nosuch}\n"
                 "  inject:\n    handler: http\n"
                 "    url: http://127.0.0.1:%d/echo/inject\n"
                 "    headers: {X-Token: \"{v}\"}\n",
                 p, p, p, p, p);
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "job", "get_t", "id", "g1", "name",
                  "a b", "q", "x y&z=1/2", "tok", "s3cr3t", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "post_default", "id", "p1",
                  "name", "alice", "n", "3", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "put_t", "id", "u1", "name",
                  "bob", "n", "7", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "missing", "id", "m1", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "inject", "id", "i1", "v",
                  "x\r\nX-Evil: 1", NULL);
    drv_test_wait_stat(t, "default", "processed", 3);
    drv_test_wait_stat(t, "default", "dead", 2);

    /* url: values escaped, the template's own text kept; GET: no body */
    assert_true(server_find("/echo/a", &s));
    assert_string_equal(s.method, "GET");
    assert_string_equal(s.uri, "/echo/a%20b?q=x%20y%26z%3D1%2F2");
    /* {attempt}: this attempt's number from 1, as DROVER_ATTEMPT */
    assert_string_equal(s.xjob, "id-g1 attempt-1");
    assert_string_equal(s.xtoken, "s3cr3t");
    assert_string_equal(s.ctype, "(none)");
    assert_int_equal(s.body_len, 0);

    /* POST without body: the argument fields as JSON */
    assert_true(server_find("/echo/post", &s));
    assert_string_equal(s.method, "POST");
    assert_string_equal(s.body, "{\"name\":\"alice\",\"n\":\"3\"}");
    assert_string_equal(s.ctype, "application/json");
    drv_test_expect_result(t, "default", "p1", "result",
                           "{\"name\":\"alice\",\"n\":\"3\"}");

    /* body template and a configured Content-Type */
    assert_true(server_find("/echo/put", &s));
    assert_string_equal(s.method, "PUT");
    assert_string_equal(s.body, "name=bob;n=7");
    assert_string_equal(s.ctype, "text/plain");
    res = drv_test_result(t, "default", "u1", "result");
    assert_string_equal(res, "name=bob;n=7");
    free(res);

    /* a missing field and a header injection: dead at once, nothing sent */
    drv_test_dead_field(t, "default", "job", "missing", "error", v, sizeof v);
    assert_string_equal(v, "missing field nosuch");
    drv_test_dead_field(t, "default", "job", "inject", "error", v, sizeof v);
    if (strstr(v, "line break") == NULL)
        fail_msg("inject error: %s", v);
    assert_int_equal(server_count("/echo/inject"), 0);
    drv_test_droverd_stop(t, 0, 0);
}

static void
test_http_handler_timeout_and_stop_cancel(void **st)
{
    struct drv_test_droverd *t = *st;
    char v[1024];

    write_config(t, "  shutdown_timeout: 1s\n",
                 "  hang:\n    handler: http\n"
                 "    url: http://127.0.0.1:%d/hang\n"
                 "    timeout: 300ms\n    retries: 0\n"
                 "  hang_long:\n    handler: http\n"
                 "    url: http://127.0.0.1:%d/hang\n"
                 "    timeout: 10m\n    retries: 0\n",
                 hs.port, hs.port);
    drv_test_droverd_start(t, 0);
    /* the task group's timeout cancels the request: connection closed */
    drv_test_xadd(t, "default", NULL, 0, "job", "hang", "id", "h1", NULL);
    drv_test_wait_stat(t, "default", "dead", 1);
    drv_test_dead_field(t, "default", "job", "hang", "error", v, sizeof v);
    if (strstr(v, "timed out") == NULL)
        fail_msg("hang error: %s", v);
    wait_server(&hs.hang_closed, 1, "closed hang connections");

    /* a graceful stop cancels it after shutdown_timeout: closed, and the
     * job is back on its queue */
    drv_test_xadd(t, "default", NULL, 0, "job", "hang_long", "id", "h2", NULL);
    wait_server(&hs.hang_seen, 2, "hang requests");
    drv_test_droverd_stop(t, 0, 0);
    wait_server(&hs.hang_closed, 2, "closed hang connections");
    assert_int_equal(drv_test_num(t, "XLEN t:{default}:jobs"), 1);
    assert_int_equal(drv_test_num(t, "HGET t:{default}:stats dead"), 1);
}

/*
 * n jobs at worker concurrency c against /slow/, all queued before droverd
 * starts so that c requests are in flight from the first fetch on; returns
 * the connections the server accepted.
 */
static int
connections_for(struct drv_test_droverd *t, int n, int c)
{
    char extra[64], id[32];
    int i, accepted;

    snprintf(extra, sizeof extra, "  concurrency: %d\n  batch: %d\n", c, c);
    write_config(t, extra,
                 "  slow:\n    handler: http\n"
                 "    url: http://127.0.0.1:%d/slow/{id}\n"
                 "    timeout: 10m\n    retries: 0\n",
                 hs.port);
    for (i = 0; i < n; i++) {
        snprintf(id, sizeof id, "s%d", i);
        drv_test_xadd(t, "default", NULL, 0, "job", "slow", "id", id, NULL);
    }
    drv_test_droverd_start(t, 0);
    drv_test_wait_stat(t, "default", "processed", n);
    drv_test_droverd_stop(t, 0, 0);
    assert_int_equal(drv_test_stat(t, "default", "dead"), 0);
    accepted = server_get(&hs.accepted);
    fprintf(stderr, "# %d jobs at concurrency %d: %d connections\n", n, c,
            accepted);
    return accepted;
}

/* Jobs to one host reuse their connections whatever the concurrency:
 * at most one connection per job that may run at once, never one per job
 * (a connection cache smaller than the jobs in flight closes nearly every
 * connection after one request). A finished job's connection is back in
 * curl's cache before its task lets the next job start, so N jobs at
 * concurrency C open at most C. Counts only, no timing: on a slow machine
 * fewer requests overlap, which opens fewer connections, never more. */
static void
test_http_handler_connections_reused(void **st)
{
    struct drv_test_droverd *t = *st;
    enum { N = 600, C = 100, C_SMALL = 10 };
    int got;

    got = connections_for(t, N, C);
    if (got < 1 || got > C)
        fail_msg("%d jobs at concurrency %d opened %d connections, wanted "
                 "at most %d", N, C, got, C);
    assert_int_equal(server_get(&hs.slow_done), N);

    /* the second run on a fresh droverd */
    server_reset();
    drv_test_num(t, "DEL t:{default}:stats");
    got = connections_for(t, N, C_SMALL);
    if (got < 1 || got > C_SMALL)
        fail_msg("%d jobs at concurrency %d opened %d connections, wanted "
                 "at most %d", N, C_SMALL, got, C_SMALL);
    assert_int_equal(server_get(&hs.slow_done), N);
}

/* worker.http_idle_timeout: a job's connection is kept for the next job
 * while it has been idle for less (one connection for both), and closed
 * once idle for longer, by droverd with nothing to do (the server sees
 * the close), so the job after that opens a new one. Waiting for the
 * limit to pass is what is tested: the assertions count connections,
 * never time. */
static void
test_http_handler_idle_connection_closed(void **st)
{
    struct drv_test_droverd *t = *st;

    write_config(t, "  http_idle_timeout: 3s\n",
                 "  ping:\n    handler: http\n"
                 "    url: http://127.0.0.1:%d/ok/{id}\n"
                 "    timeout: 10s\n    retries: 0\n",
                 hs.port);
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "job", "ping", "id", "a", NULL);
    drv_test_wait_stat(t, "default", "processed", 1);
    drv_test_xadd(t, "default", NULL, 0, "job", "ping", "id", "b", NULL);
    drv_test_wait_stat(t, "default", "processed", 2);
    assert_int_equal(server_get(&hs.accepted), 1); /* reused */
    assert_int_equal(server_get(&hs.conn_closed), 0);
    /* no job: droverd closes it once it has been idle 3 s */
    wait_server(&hs.conn_closed, 1, "the idle connection closed");
    drv_test_xadd(t, "default", NULL, 0, "job", "ping", "id", "c", NULL);
    drv_test_wait_stat(t, "default", "processed", 3);
    assert_int_equal(server_get(&hs.accepted), 2); /* a new one */
    assert_int_equal(drv_test_stat(t, "default", "dead"), 0);
    drv_test_droverd_stop(t, 0, 0);
}

/* A droverd whose jobs so far went to plain http:// URLs has not loaded
 * libcurl (nor what it pulls in); the first https:// job loads it (the
 * TLS handshake with the plain server fails: "request failed"). */
static void
test_http_handler_libcurl_loaded_when_needed(void **st)
{
    struct drv_test_droverd *t = *st;
    char v[1024], maps[64];

    write_config(t, NULL,
                 "  plain:\n    handler: http\n"
                 "    url: http://127.0.0.1:%d/ok/{id}\n"
                 "    timeout: 10s\n    retries: 0\n"
                 "  tls:\n    handler: http\n"
                 "    url: https://127.0.0.1:%d/ok/{id}\n"
                 "    timeout: 10s\n    retries: 0\n",
                 hs.port, hs.port);
    drv_test_droverd_start(t, 0);
    snprintf(maps, sizeof maps, "/proc/%d/maps", (int)t->w[0].pid);
    drv_test_xadd(t, "default", NULL, 0, "job", "plain", "id", "p1", NULL);
    drv_test_wait_stat(t, "default", "processed", 1);
    assert_int_equal(drv_test_stat(t, "default", "dead"), 0);
    assert_false(drv_test_file_contains(maps, "libcurl"));
    drv_test_xadd(t, "default", NULL, 0, "job", "tls", "id", "t1", NULL);
    drv_test_wait_stat(t, "default", "dead", 1);
    drv_test_dead_field(t, "default", "job", "tls", "error", v, sizeof v);
    if (strstr(v, "request failed") == NULL)
        fail_msg("tls error: %s", v);
    assert_true(drv_test_file_contains(maps, "libcurl"));
    drv_test_droverd_stop(t, 0, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        TD(test_http_handler_status_mapping),
        TD(test_http_handler_retry_after_delays_retry),
        TD(test_http_handler_templating),
        TD(test_http_handler_timeout_and_stop_cancel),
        TD(test_http_handler_connections_reused),
        TD(test_http_handler_idle_connection_closed),
        TD(test_http_handler_libcurl_loaded_when_needed),
    };
#undef T

    signal(SIGPIPE, SIG_IGN);
    drv_test_droverd_fixture = &opts;
    drv_test_filter_from_env();
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
