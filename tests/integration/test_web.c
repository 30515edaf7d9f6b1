/*
 * test_web.c -- `drover web` as a browser or a script meets it: the real
 * bin/drover of this build variant in a child process, a real
 * redis-server (the harness), and real HTTP requests over TCP from a
 * small blocking client below. Two servers run for the whole group: one
 * without a token (loopback), one with --token-file.
 *
 * Covered: every API endpoint and its JSON, the assets and their security
 * headers, token and cookie authentication, the Host check, CSRF refusal
 * (nothing changes), non-loopback --listen without a token (exit 2),
 * hostile input (huge headers, big and bad bodies, unknown paths and
 * queues, methods, a slow client that never finishes its request), and a
 * Redis that goes away and comes back.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "harness.h"
#include "drover/common.h"

#define WATCHDOG_MS 20000      /* a server that does not answer fails */
#define TOKEN "t0k3n-for-the-web-test"

static char tmpdir[256];

/* One running `drover web`. */
struct web {
    struct drv_test_proc proc;  /* the child */
    char log[400];              /* its stdout + stderr */
    int port;                   /* where it listens */
};

static struct web open_web;     /* no token */
static struct web token_web;    /* --token-file */

/* One HTTP exchange. */
struct resp {
    int status;                 /* 0: connection closed without answer */
    char *head;                 /* owned: status line and headers */
    char *body;                 /* owned: NUL-terminated */
    size_t body_len;
};

struct state {
    redisContext *c;            /* owned: blocking client */
    char csrf[80];              /* the open server's CSRF token */
};

/* ------------------------------------------------------------- HTTP */

static int
connect_port(int port)
{
    int fd = drv_test_dial(port, WATCHDOG_MS);

    assert_true(fd >= 0);
    return fd;
}

/* Send raw bytes and read until the server closes; fill r. */
static void
exchange(int port, const char *raw, size_t len, struct resp *r)
{
    size_t cap = 65536, n = 0, off = 0;
    char *buf = malloc(cap), *sep;
    ssize_t got;
    int fd = connect_port(port);

    memset(r, 0, sizeof *r);
    while (off < len) {
        got = send(fd, raw + off, len - off, MSG_NOSIGNAL);
        if (got <= 0)
            break;      /* the server may refuse before reading it all */
        off += (size_t)got;
    }
    for (;;) {
        if (cap - n < 4096)
            buf = realloc(buf, cap *= 2);
        got = recv(fd, buf + n, cap - n - 1, 0);
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    close(fd);
    buf[n] = '\0';
    sep = strstr(buf, "\r\n\r\n");
    if (n > 12 && strncmp(buf, "HTTP/1.", 7) == 0)
        r->status = atoi(buf + 9);
    if (sep != NULL) {
        r->head = strndup(buf, (size_t)(sep - buf) + 2);
        r->body = strdup(sep + 4);
        r->body_len = n - (size_t)(sep + 4 - buf);
    } else {
        r->head = strdup(buf);
        r->body = strdup("");
    }
    free(buf);
}

/*
 * A request: method, path, extra header lines (each ending in \r\n; may
 * be NULL) and a body (may be NULL). Host is the loopback.
 */
static void
request(int port, const char *method, const char *path, const char *hdrs,
        const char *body, struct resp *r)
{
    size_t len;
    char *raw = drv_test_http_request(port, method, path, hdrs, body, &len);

    exchange(port, raw, len, r);
    free(raw);
}

static void
resp_free(struct resp *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* The value of header name in r (case-insensitive name), or NULL. */
static const char *
header(const struct resp *r, const char *name, char *out, size_t n)
{
    const char *p = r->head;
    size_t nl = strlen(name), vl;

    while (p != NULL && (p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            p += nl + 1;
            while (*p == ' ')
                p++;
            vl = strcspn(p, "\r\n");
            if (vl >= n)
                vl = n - 1;
            memcpy(out, p, vl);
            out[vl] = '\0';
            return out;
        }
    }
    return NULL;
}

/* A POST to the open server with the right CSRF token. */
static void
post(struct state *s, const char *path, const char *body, struct resp *r)
{
    char h[160];

    snprintf(h, sizeof h, "X-CSRF-Token: %s\r\n", s->csrf);
    request(open_web.port, "POST", path, h, body, r);
}

static void
get(const char *path, struct resp *r)
{
    request(open_web.port, "GET", path, NULL, NULL, r);
}

/* assert that the body contains needle, showing the body if not */
#define assert_body_has(r, needle)                                        \
    do {                                                                  \
        if (strstr((r)->body, (needle)) == NULL)                          \
            fail_msg("body lacks %s: %s", (needle), (r)->body);           \
    } while (0)

#define assert_status(r, want)                                            \
    do {                                                                  \
        if ((r)->status != (want))                                        \
            fail_msg("status %d, want %d: %s", (r)->status, (want),       \
                     (r)->body ? (r)->body : "");                         \
    } while (0)

/* ------------------------------------------------------------- servers */

static void
write_config(const char *path)
{
    char text[1024];

    snprintf(text, sizeof text,
             "redis:\n  url: %s\n  prefix: drover\n"
             "queues: [default, low]\n"
             "jobs:\n  resize: {handler: noop}\n", drv_test_srv.url);
    assert_int_equal(drv_test_write_file(path, text), 0);
}

/* Start drover web with extra args; wait for its URL line. */
static void
web_start(struct web *w, const char *name, const char *const *extra)
{
    char bin[512], conf[400], *text = NULL, *p, *slash, *colon;
    const char *argv[16];
    size_t i = 0, j;

    snprintf(conf, sizeof conf, "%s/drover.yaml", tmpdir);
    write_config(conf);
    snprintf(w->log, sizeof w->log, "%s/%s.log", tmpdir, name);
    unlink(w->log);
    argv[i++] = drv_test_bin("drover", bin, sizeof bin);
    argv[i++] = "-c";
    argv[i++] = conf;
    argv[i++] = "web";
    for (j = 0; extra[j] != NULL; j++)
        argv[i++] = extra[j];
    argv[i] = NULL;
    assert_int_equal(drv_test_spawn(&w->proc, argv, w->log, NULL), 0);
    /* "dashboard at http://HOST:PORT/ (Redis ...)" */
    wait_until(drv_test_file_contains(w->log, "dashboard at http://") &&
                   drv_test_file_contains(w->log, " (Redis "),
               "drover web (%s) to print its URL", name);
    text = drv_test_slurp(w->log, NULL);
    p = strstr(text, "dashboard at http://");
    slash = strchr(p + 20, '/');
    assert_non_null(slash);
    /* the port after the last ':' of the authority */
    for (colon = slash; colon > p && *colon != ':'; colon--)
        ;
    assert_true(colon > p);
    w->port = atoi(colon + 1);
    free(text);
    assert_true(w->port > 0);
}

/* SIGTERM and wait: its exit status (0 = clean stop; under ASan a leak
 * or a memory error makes it non-zero). */
static int
web_stop(struct web *w)
{
    int rc = 0;

    if (w->proc.pid > 0) {
        drv_test_kill(&w->proc, SIGTERM);
        rc = drv_test_wait(&w->proc, WATCHDOG_MS);
        if (rc < 0)
            drv_test_kill(&w->proc, SIGKILL);
    }
    if (rc != 0)
        fprintf(stderr, "drover web (%s) stopped with status %d\n", w->log,
                rc);
    return rc;
}

static int
group_setup(void **st)
{
    static const char *const open_args[] = {"--listen", "127.0.0.1:0",
                                            NULL};
    char tokfile[400];
    const char *tok_args[] = {"--listen", "127.0.0.1:0", "--token-file",
                              tokfile, NULL};

    if (drv_test_tmpdir("drover-web", tmpdir, sizeof tmpdir) < 0)
        return -1;
    if (drv_test_redis_group_setup(st) != 0)
        return -1;
    snprintf(tokfile, sizeof tokfile, "%s/token", tmpdir);
    if (drv_test_write_file(tokfile, TOKEN "\n") != 0)
        return -1;
    web_start(&open_web, "open", open_args);
    web_start(&token_web, "token", tok_args);
    return 0;
}

static int
group_teardown(void **st)
{
    const char *keep = getenv("DROVER_TEST_KEEP");

    int rc = 0;

    if (web_stop(&open_web) != 0 || web_stop(&token_web) != 0)
        rc = -1;        /* the logs stay for a look */
    drv_test_redis_group_teardown(st);
    if (rc == 0 && (keep == NULL || strcmp(keep, "1") != 0))
        drv_test_rm_rf(tmpdir);
    return rc;
}

/* Per test: a fresh Redis, a client, the open server's CSRF token. */
static int
setup(void **st)
{
    static struct state state;
    struct resp r;
    const char *p;

    drv_test_redis_fresh();
    memset(&state, 0, sizeof state);
    state.c = drv_test_redis_connect(&drv_test_srv);
    assert_non_null(state.c);
    get("/api/session", &r);
    assert_status(&r, 200);
    p = strstr(r.body, "\"csrf\":\"");
    assert_non_null(p);
    snprintf(state.csrf, sizeof state.csrf, "%.64s", p + 8);
    resp_free(&r);
    *st = &state;
    return 0;
}

static int
teardown(void **st)
{
    struct state *s = *st;

    redisFree(s->c);
    s->c = NULL;
    return 0;
}

static void
cmd(struct state *s, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    drv_test_redis_vok(s->c, fmt, ap);
    va_end(ap);
}

static long long
integer(struct state *s, const char *fmt, ...)
{
    redisReply *r;
    long long v;
    va_list ap;

    va_start(ap, fmt);
    r = redisvCommand(s->c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    v = r->integer;
    freeReplyObject(r);
    return v;
}

/* ------------------------------------------------------------- assets */

static void
test_web_assets_and_headers(void **st)
{
    char v[512];
    struct resp r;

    (void)st;
    get("/", &r);
    assert_status(&r, 200);
    assert_body_has(&r, "<script src=\"/app.js\"");
    assert_non_null(header(&r, "Content-Type", v, sizeof v));
    assert_non_null(strstr(v, "text/html"));
    assert_non_null(header(&r, "Content-Security-Policy", v, sizeof v));
    assert_non_null(strstr(v, "default-src 'self'"));
    assert_non_null(strstr(v, "frame-ancestors 'none'"));
    assert_null(strstr(v, "unsafe-inline"));
    assert_non_null(header(&r, "X-Content-Type-Options", v, sizeof v));
    assert_string_equal(v, "nosniff");
    resp_free(&r);
    get("/app.js", &r);
    assert_status(&r, 200);
    assert_body_has(&r, "textContent");
    assert_null(strstr(r.body, "innerHTML"));
    header(&r, "Content-Type", v, sizeof v);
    assert_non_null(strstr(v, "javascript"));
    resp_free(&r);
    get("/style.css", &r);
    assert_status(&r, 200);
    resp_free(&r);
    get("/no-such-file", &r);
    assert_status(&r, 404);
    assert_non_null(header(&r, "Content-Security-Policy", v, sizeof v));
    resp_free(&r);
}

/* ------------------------------------------------------------- reads */

static void
test_web_queues(void **st)
{
    struct state *s = *st;
    struct resp r;

    cmd(s, "XADD drover:{default}:jobs * job resize id a");
    cmd(s, "XADD drover:{default}:jobs * job resize id b");
    cmd(s, "XADD drover:{default}:jobs * job resize id c");
    cmd(s, "XGROUP CREATE drover:{default}:jobs drover 0");
    cmd(s, "XREADGROUP GROUP drover w COUNT 1 STREAMS "
        "drover:{default}:jobs >");
    cmd(s, "ZADD drover:{default}:delayed 99999999999999 later");
    cmd(s, "XADD drover:{default}:dead * job resize id d error x");
    cmd(s, "HSET drover:{default}:stats processed 41 failed 7 retried 5");
    cmd(s, "SET drover:{low}:paused 1");
    get("/api/queues", &r);
    assert_status(&r, 200);
    assert_body_has(&r, "{\"name\":\"default\",\"ready\":2,\"running\":1,"
                    "\"delayed\":1,\"dead\":1,\"dead_max\":10000,"
                    "\"processed\":41,\"failed\":7,\"retried\":5,");
    assert_body_has(&r, "\"paused\":false}");
    assert_body_has(&r, "{\"name\":\"low\",\"ready\":0,");
    assert_body_has(&r, "\"paused\":true}");
    assert_body_has(&r, "\"time\":");
    resp_free(&r);
    get("/api/session", &r);
    assert_body_has(&r, "\"queues\":[\"default\",\"low\"]");
    assert_body_has(&r, "\"token\":false");
    resp_free(&r);
}

static void
test_web_workers(void **st)
{
    struct state *s = *st;
    struct resp r;

    cmd(s, "HSET drover:workers host-a:12 %s",
        "host=host-a pid=12 started=1700000000000 queues=default,low "
        "busy=3 beat=1700000005000");
    get("/api/workers", &r);
    assert_status(&r, 200);
    assert_body_has(&r, "\"id\":\"host-a:12\",\"host\":\"host-a\","
                    "\"pid\":12,\"queues\":[\"default\",\"low\"],"
                    "\"busy\":3,\"started_at\":1700000000000,"
                    "\"beat_at\":1700000005000,\"state\":\"stale\"");
    resp_free(&r);
}

static void
test_web_dead_paged_and_escaped(void **st)
{
    struct state *s = *st;
    struct resp r;
    char path[200], next[64];
    const char *p;
    int i;

    for (i = 0; i < 5; i++)
        cmd(s, "XADD drover:{default}:dead * job resize id d%d error boom "
            "attempts 3", i);
    cmd(s, "XADD drover:{default}:dead * job resize id evil "
        "note %b", "<script>\"x\"\n\xff", (size_t)13);
    get("/api/queues/default/dead?count=2", &r);
    assert_status(&r, 200);
    assert_body_has(&r, "\"total\":6");
    assert_body_has(&r, "{\"name\":\"id\",\"value\":\"d0\"}");
    assert_body_has(&r, "{\"name\":\"id\",\"value\":\"d1\"}");
    assert_null(strstr(r.body, "\"d2\""));
    p = strstr(r.body, "\"next\":\"");
    assert_non_null(p);
    snprintf(next, sizeof next, "%.*s", (int)strcspn(p + 8, "\""), p + 8);
    resp_free(&r);
    snprintf(path, sizeof path, "/api/queues/default/dead?count=2&after=%s",
             next);
    get(path, &r);
    assert_status(&r, 200);
    assert_body_has(&r, "{\"name\":\"id\",\"value\":\"d2\"}");
    assert_body_has(&r, "{\"name\":\"id\",\"value\":\"d3\"}");
    assert_null(strstr(r.body, "\"d1\""));
    resp_free(&r);
    get("/api/queues/default/dead?count=500", &r);
    /* the hostile value arrives as JSON-escaped text */
    assert_body_has(&r, "{\"name\":\"note\",\"value\":\"<script>\\\"x\\\""
                    "\\n\\u00ff\",\"value_b64\":");
    assert_body_has(&r, "\"next\":null");
    resp_free(&r);
    get("/api/queues/default/dead?count=0", &r);
    assert_status(&r, 400);
    resp_free(&r);
    get("/api/queues/default/dead?after=1-0%27", &r);
    assert_status(&r, 400);
    resp_free(&r);
}

static void
test_web_job_lookup(void **st)
{
    struct state *s = *st;
    struct resp r;

    cmd(s, "HSET drover:{default}:result:j1 status running progress 40 "
        "progress_msg halfway");
    get("/api/queues/default/jobs/j1", &r);
    assert_status(&r, 200);
    assert_body_has(&r, "\"result\":{\"status\":\"running\"");
    assert_body_has(&r, "\"where\":\"none\"");
    assert_body_has(&r, "{\"name\":\"progress\",\"value\":\"40\"}");
    assert_body_has(&r, "{\"name\":\"progress_msg\",\"value\":"
                    "\"halfway\"}");
    resp_free(&r);
    cmd(s, "ZADD drover:{default}:delayed 4102444800000 j2");
    cmd(s, "HSET drover:{default}:job:j2 job resize id j2 attempt 1");
    get("/api/queues/default/jobs/j2", &r);
    assert_status(&r, 200);
    assert_body_has(&r, "\"where\":\"delayed\"");
    assert_body_has(&r, "\"due_at\":4102444800000");
    resp_free(&r);
    cmd(s, "XADD drover:{default}:jobs * job resize id j/3");
    get("/api/queues/default/jobs/j%2F3", &r);
    assert_status(&r, 200);
    assert_body_has(&r, "\"where\":\"ready\"");
    assert_body_has(&r, "\"id\":\"j/3\"");
    resp_free(&r);
    get("/api/queues/default/jobs/nobody", &r);
    assert_status(&r, 404);
    assert_body_has(&r, "\"error\":");
    resp_free(&r);
}

/* ------------------------------------------------------------- changes */

static void
test_web_retry_purge(void **st)
{
    struct state *s = *st;
    struct resp r;

    cmd(s, "XADD drover:{default}:dead * job resize id r1 error x "
        "attempts 4");
    cmd(s, "XADD drover:{default}:dead * job resize id r2 error y");
    cmd(s, "XADD drover:{default}:dead * job resize id r3 error z");
    post(s, "/api/queues/default/dead/retry", "{\"id\": \"r1\"}", &r);
    assert_status(&r, 200);
    assert_body_has(&r, "\"moved\":1");
    resp_free(&r);
    assert_int_equal(integer(s, "XLEN drover:{default}:jobs"), 1);
    assert_int_equal(integer(s, "XLEN drover:{default}:dead"), 2);
    post(s, "/api/queues/default/dead/retry", "{\"id\": \"r1\"}", &r);
    assert_status(&r, 404);
    resp_free(&r);
    post(s, "/api/queues/default/dead/retry", "{\"all\": true}", &r);
    assert_status(&r, 200);
    assert_body_has(&r, "\"moved\":2");
    resp_free(&r);
    assert_int_equal(integer(s, "XLEN drover:{default}:jobs"), 3);
    cmd(s, "XADD drover:{low}:dead * job resize id p1");
    cmd(s, "XADD drover:{low}:dead * job resize id p2");
    post(s, "/api/queues/low/dead/purge", NULL, &r);
    assert_status(&r, 200);
    assert_body_has(&r, "\"purged\":2");
    resp_free(&r);
    assert_int_equal(integer(s, "EXISTS drover:{low}:dead"), 0);
}

static void
test_web_pause_resume(void **st)
{
    struct state *s = *st;
    struct resp r;

    post(s, "/api/queues/low/pause", NULL, &r);
    assert_status(&r, 200);
    assert_body_has(&r, "\"paused\":true");
    resp_free(&r);
    assert_int_equal(integer(s, "EXISTS drover:{low}:paused"), 1);
    post(s, "/api/queues/low/resume", "{}", &r);
    assert_status(&r, 200);
    assert_body_has(&r, "\"was_paused\":true");
    resp_free(&r);
    assert_int_equal(integer(s, "EXISTS drover:{low}:paused"), 0);
}

/* ------------------------------------------------------------- security */

static void
test_web_csrf_refused_changes_nothing(void **st)
{
    struct state *s = *st;
    static const char *const paths[] = {
        "/api/queues/default/pause", "/api/queues/default/dead/purge",
        "/api/queues/default/dead/retry",
    };
    char h[300];
    struct resp r;
    size_t i;

    cmd(s, "XADD drover:{default}:dead * job resize id c1");
    for (i = 0; i < DRV_ARRAY_LEN(paths); i++) {
        request(open_web.port, "POST", paths[i], NULL, "{\"all\":true}",
                &r);
        assert_status(&r, 403);
        resp_free(&r);
        request(open_web.port, "POST", paths[i],
                "X-CSRF-Token: 00000000000000000000000000000000000000000000"
                "00000000000000000000\r\n", "{\"all\":true}", &r);
        assert_status(&r, 403);
        resp_free(&r);
        /* the right token from a foreign page (Origin) */
        snprintf(h, sizeof h, "X-CSRF-Token: %s\r\nOrigin: "
                 "http://evil.example\r\n", s->csrf);
        request(open_web.port, "POST", paths[i], h, "{\"all\":true}", &r);
        assert_status(&r, 403);
        resp_free(&r);
    }
    assert_int_equal(integer(s, "EXISTS drover:{default}:paused"), 0);
    assert_int_equal(integer(s, "XLEN drover:{default}:dead"), 1);
    assert_int_equal(integer(s, "EXISTS drover:{default}:jobs"), 0);
    /* the same request with the token and our own Origin works */
    snprintf(h, sizeof h, "X-CSRF-Token: %s\r\nOrigin: "
             "http://127.0.0.1:%d\r\n", s->csrf, open_web.port);
    request(open_web.port, "POST", paths[0], h, NULL, &r);
    assert_status(&r, 200);
    resp_free(&r);
    assert_int_equal(integer(s, "EXISTS drover:{default}:paused"), 1);
}

/* Cancel from the dashboard: a waiting and a delayed job go, the result
 * says cancelled, a POST without the CSRF token changes nothing. */
static void
test_web_cancel(void **st)
{
    struct state *s = *st;
    struct resp r;

    cmd(s, "XADD drover:{default}:jobs * job resize id c/1");
    cmd(s, "ZADD drover:{default}:delayed 4102444800000 c2");
    cmd(s, "HSET drover:{default}:job:c2 job resize id c2 attempt 1");
    request(open_web.port, "POST", "/api/queues/default/jobs/c%2F1/cancel",
            NULL, "{}", &r);
    assert_status(&r, 403);
    resp_free(&r);
    assert_int_equal(integer(s, "XLEN drover:{default}:jobs"), 1);
    post(s, "/api/queues/default/jobs/c%2F1/cancel", NULL, &r);
    assert_status(&r, 200);
    assert_body_has(&r, "\"ready\":1");
    assert_body_has(&r, "\"id\":\"c/1\"");
    resp_free(&r);
    assert_int_equal(integer(s, "XLEN drover:{default}:jobs"), 0);
    post(s, "/api/queues/default/jobs/c2/cancel", NULL, &r);
    assert_status(&r, 200);
    assert_body_has(&r, "\"delayed\":1");
    resp_free(&r);
    assert_int_equal(integer(s, "ZCARD drover:{default}:delayed"), 0);
    assert_int_equal(integer(s, "HINCRBY drover:{default}:stats cancelled 0"),
                     2);
    get("/api/queues/default/jobs/c2", &r);
    assert_status(&r, 200);
    assert_body_has(&r, "\"status\":\"cancelled\"");
    resp_free(&r);
    post(s, "/api/queues/default/jobs/c2/cancel", NULL, &r);
    assert_status(&r, 404);
    resp_free(&r);
    get("/api/queues/default/jobs/c2/cancel", &r);
    assert_status(&r, 405);
    resp_free(&r);
}

static void
test_web_host_header_checked(void **st)
{
    static const char raw[] = "GET /api/queues HTTP/1.1\r\n"
                              "Host: evil.example:8080\r\n"
                              "Connection: close\r\n\r\n";
    struct resp r;

    (void)st;
    exchange(open_web.port, raw, sizeof raw - 1, &r);
    assert_status(&r, 403);
    resp_free(&r);
}

static void
test_web_token_and_cookie(void **st)
{
    int port = token_web.port;
    char v[300], cookie[200];
    struct resp r;

    (void)st;
    request(port, "GET", "/api/queues", NULL, NULL, &r);
    assert_status(&r, 401);
    resp_free(&r);
    request(port, "GET", "/", NULL, NULL, &r);
    assert_status(&r, 401);
    assert_null(strstr(r.body, "<script"));
    resp_free(&r);
    request(port, "GET", "/api/queues", "Authorization: Bearer wrong\r\n",
            NULL, &r);
    assert_status(&r, 401);
    resp_free(&r);
    request(port, "GET", "/api/queues",
            "Authorization: Bearer " TOKEN "\r\n", NULL, &r);
    assert_status(&r, 200);
    assert_body_has(&r, "\"queues\":[");
    resp_free(&r);
    request(port, "GET", "/login?token=wrong", NULL, NULL, &r);
    assert_status(&r, 401);
    assert_null(header(&r, "Set-Cookie", v, sizeof v));
    resp_free(&r);
    request(port, "GET", "/login?token=" TOKEN, NULL, NULL, &r);
    assert_status(&r, 303);
    assert_non_null(header(&r, "Set-Cookie", v, sizeof v));
    assert_non_null(strstr(v, "HttpOnly"));
    assert_non_null(strstr(v, "SameSite=Strict"));
    assert_null(strstr(v, TOKEN));      /* the session is not the token */
    snprintf(cookie, sizeof cookie, "Cookie: other=1; %.*s\r\n",
             (int)strcspn(v, ";"), v);
    resp_free(&r);
    request(port, "GET", "/api/workers", cookie, NULL, &r);
    assert_status(&r, 200);
    resp_free(&r);
    request(port, "GET", "/", cookie, NULL, &r);
    assert_status(&r, 200);
    resp_free(&r);
    request(port, "GET", "/api/workers",
            "Cookie: drover_session=0123456789abcdef\r\n", NULL, &r);
    assert_status(&r, 401);
    resp_free(&r);
    /* with a token, any Host will do (the token is the guard) */
    request(port, "GET", "/api/session",
            "Authorization: Bearer " TOKEN "\r\n", NULL, &r);
    assert_status(&r, 200);
    assert_body_has(&r, "\"token\":true");
    resp_free(&r);
}

static void
test_web_nonloopback_needs_token(void **st)
{
    char bin[512], conf[400], tok[400], out[4096];
    const char *argv[] = {drv_test_bin("drover", bin, sizeof bin), "-c",
                          conf, "web", "--listen", "0.0.0.0:0", NULL, NULL,
                          NULL};
    const char *extra[] = {"--listen", "0.0.0.0:0", "--token-file", tok,
                           NULL};
    struct resp r;
    struct web w;

    (void)st;
    snprintf(conf, sizeof conf, "%s/drover.yaml", tmpdir);
    snprintf(tok, sizeof tok, "%s/token", tmpdir);
    assert_int_equal(drv_test_run(argv, out, sizeof out, WATCHDOG_MS), 2);
    argv[5] = "[::]:0";
    assert_int_equal(drv_test_run(argv, out, sizeof out, WATCHDOG_MS), 2);
    argv[5] = "127.0.0.1:99999";
    assert_int_equal(drv_test_run(argv, out, sizeof out, WATCHDOG_MS), 2);
    argv[5] = "127.0.0.1:0";
    argv[6] = "--token-file";
    argv[7] = "/nonexistent/token";
    assert_int_equal(drv_test_run(argv, out, sizeof out, WATCHDOG_MS), 2);
    /* without --listen: the default (loopback) address, and the same
     * error for the token file (the parser once left --listen NULL) */
    argv[4] = "--token-file";
    argv[5] = "/nonexistent/token";
    argv[6] = NULL;
    assert_int_equal(drv_test_run(argv, out, sizeof out, WATCHDOG_MS), 2);
    /* with a token it serves (and still answers on the loopback) */
    memset(&w, 0, sizeof w);
    web_start(&w, "nonloop", extra);
    request(w.port, "GET", "/api/queues", NULL, NULL, &r);
    assert_status(&r, 401);
    resp_free(&r);
    request(w.port, "GET", "/api/queues",
            "Authorization: Bearer " TOKEN "\r\n", NULL, &r);
    assert_status(&r, 200);
    resp_free(&r);
    assert_int_equal(web_stop(&w), 0);
}

/* ------------------------------------------------------------- hostile */

static void
test_web_hostile_input(void **st)
{
    static const char *const bad_bodies[] = {
        "{\"id\": ", "[1,2]", "{\"id\": {\"a\": 1}}",
        "{\"id\": \"a\\u0000b\"}", "{\"evil\": true}", "{}",
        "{\"id\": \"x\", \"all\": true}", "{\"all\": 1}",
        "{\"id\": \"\\ud800\"}", "{\"id\": \"x\"} trailing",
    };
    static const struct {
        const char *path;
        int status;
    } bad_gets[] = {
        {"/api/nope", 404},
        {"/api/queues/nosuchqueue/dead", 404},
        {"/api/queues/default/dead/", 400},
        {"/api/queues/de%00fault/dead", 400},
        {"/api/queues/default/pause", 405},
        {"/api/queues/default/jobs", 404},
        {"/api/queues/default/dead?count=abc", 400},
    };
    struct state *s = *st;
    char *big = NULL, h[200];
    struct resp r;
    size_t n = 64 * 1024;
    int slow, i;

    /* a client that sends half a request and waits: the server goes on
     * answering others meanwhile */
    slow = connect_port(open_web.port);
    assert_true(send(slow, "GET / HTTP/1.1\r\nHost: 127.", 27, 0) == 27);

    /* headers far over the limit: refused (4xx) or cut off */
    big = malloc(n + 200);
    i = snprintf(big, 200, "GET /api/queues HTTP/1.1\r\nHost: 127.0.0.1"
                 "\r\nX-Big: ");
    memset(big + i, 'a', n);
    memcpy(big + i + n, "\r\n\r\n", 5);
    exchange(open_web.port, big, (size_t)i + n + 4, &r);
    assert_true(r.status == 0 || (r.status >= 400 && r.status < 500));
    resp_free(&r);

    /* a body over the limit (64 KiB) */
    free(big);
    n = 100 * 1024;
    big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    post(s, "/api/queues/default/pause", big, &r);
    if (r.status != 0 && r.status != 413)
        fail_msg("a 64 KiB body got %d", r.status);
    resp_free(&r);
    free(big);
    assert_int_equal(integer(s, "EXISTS drover:{default}:paused"), 0);

    /* bad JSON bodies */
    for (i = 0; i < (int)DRV_ARRAY_LEN(bad_bodies); i++) {
        post(s, "/api/queues/default/dead/retry", bad_bodies[i], &r);
        if (r.status != 400)
            fail_msg("body %s got %d", bad_bodies[i], r.status);
        resp_free(&r);
    }

    /* unknown paths, queues, methods */
    for (i = 0; i < (int)DRV_ARRAY_LEN(bad_gets); i++) {
        get(bad_gets[i].path, &r);
        if (r.status != bad_gets[i].status)
            fail_msg("GET %s got %d, want %d", bad_gets[i].path, r.status,
                     bad_gets[i].status);
        resp_free(&r);
    }
    snprintf(h, sizeof h, "X-CSRF-Token: %s\r\n", s->csrf);
    request(open_web.port, "DELETE", "/api/queues/default/dead", h, NULL,
            &r);
    assert_status(&r, 405);
    resp_free(&r);
    request(open_web.port, "PUT", "/", NULL, NULL, &r);
    assert_status(&r, 405);
    resp_free(&r);
    exchange(open_web.port, "BREW /\r\n\r\n", 10, &r);
    assert_true(r.status == 0 || (r.status >= 400 && r.status < 500));
    resp_free(&r);
    exchange(open_web.port, "\x01\x02\x03 garbage\r\n\r\n", 14, &r);
    assert_true(r.status == 0 || (r.status >= 400 && r.status < 500));
    resp_free(&r);

    /* the slow client is still waiting; the server is not */
    get("/api/queues", &r);
    assert_status(&r, 200);
    resp_free(&r);
    close(slow);
    assert_int_equal(integer(s, "EXISTS drover:{default}:paused"), 0);
}

/* Redis goes away: 503, no crash; it comes back: answers again. */
static void
test_web_redis_down_and_back(void **st)
{
    struct resp r;

    (void)st;
    if (drv_test_srv.external)
        skip();
    get("/api/queues", &r);
    assert_status(&r, 200);
    resp_free(&r);
    drv_test_redis_kill(&drv_test_srv);
    get("/api/queues", &r);
    assert_status(&r, 503);
    assert_body_has(&r, "\"error\":");
    resp_free(&r);
    get("/", &r);                     /* the page itself still loads */
    assert_status(&r, 200);
    resp_free(&r);
    assert_int_equal(drv_test_redis_restart(&drv_test_srv), 0);
    get("/api/queues", &r);
    assert_status(&r, 200);
    resp_free(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_web_assets_and_headers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_web_queues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_web_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_web_dead_paged_and_escaped,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_web_job_lookup, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_web_retry_purge, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_web_pause_resume, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_web_csrf_refused_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_web_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_web_host_header_checked, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_web_token_and_cookie, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_web_nonloopback_needs_token,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_web_hostile_input, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_web_redis_down_and_back, setup,
                                        teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    drv_test_filter_from_env();
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
