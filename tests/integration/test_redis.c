/*
 * test_redis.c -- pkg/redis against a real redis-server (group setup):
 * connect by TCP and unix socket, AUTH (password and ACL user) and SELECT,
 * a 1000-command pipeline, per-command timeouts, server kill and restart,
 * start while the server is down, a stopped (SIGSTOP) server, EVALSHA
 * fallback, MULTI/EXEC, free inside callbacks, and a blocking connection
 * ended by CLIENT UNBLOCK; host names (localhost, a name from /etc/hosts,
 * one that does not resolve). The connection tests run a second time
 * against a TLS-only server (rediss://, the "tls" group), which adds the
 * TLS failures (wrong CA, wrong name) and session resumption.
 *
 * Every test runs the real loop under a guard timer that ticks every 10 ms:
 * it runs the test's poll hook, fails the test past a generous limit (a
 * hang guard, never a speed check), and, once the test is done, waits for
 * the base to hold nothing but itself before it lets the loop end. After
 * the loop, nothing may be left on the base.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "harness.h"
#include "drover/common.h"
#include "drover/log.h"
#include "drover/loop.h"
#include "drover/redis.h"

#define NCMD 1000
#define NKILL 50


struct state;
typedef void step_fn(struct state *s, struct drv_redis *r,
                     enum drv_redis_state st);
typedef void poll_fn(struct state *s);

struct state {
    struct drv_loop *loop;
    struct event_base *base;
    struct event *guard;        /* hang guard and poll tick */
    int64_t limit_at_ms;        /* guard deadline */
    int done;                   /* test finished: wait for an empty base */
    int hung;                   /* guard deadline passed */
    struct drv_redis *a, *b, *c; /* clients; NULL once freed */
    struct drv_redis *d;        /* a client without on_state */
    step_fn *on_state;          /* test's state hook */
    poll_fn *poll;              /* test's tick hook */
    int ready[3], down[3];      /* on_state counts per client a, b, c */
    int checkpoint;             /* progress */
    int phase;                  /* test-specific step */
    int in_call;                /* inside a drv_redis_* call */
    int calls[NCMD];            /* callback counts per command */
    int errors;                 /* failed callbacks seen */
    int64_t t0_ms;              /* a start time */
    int order[8];               /* event order record */
    int norder;
};

/* r's drv_redis_get_info, to read one field in an assertion */
static struct drv_redis_info
info(const struct drv_redis *r)
{
    struct drv_redis_info ri;

    drv_redis_get_info(r, &ri);
    return ri;
}

/* -------------------------------------------------------------- fixture */

static int
group_setup(void **st)
{
    unsetenv("DROVER_REDIS_PASSWORD");
    drv_log_set_level(getenv("DROVER_TEST_LOG") ? getenv("DROVER_TEST_LOG")
                                                : "error");
    return drv_test_redis_group_setup(st);
}

static int
setup(void **st)
{
    struct drv_loop_opts lo = {.lag_interval_ms = -1};
    struct state *s = calloc(1, sizeof *s);

    drv_test_redis_fresh();
    s->loop = drv_loop_create(&lo);
    assert_non_null(s->loop);
    s->base = drv_loop_base(s->loop);
    *st = s;
    return 0;
}

static void
free_clients(struct state *s)
{
    struct drv_redis **c[] = {&s->a, &s->b, &s->c, &s->d};
    size_t i;

    for (i = 0; i < DRV_ARRAY_LEN(c); i++) {
        drv_redis_free(*c[i]);
        *c[i] = NULL;
    }
}

static int
teardown(void **st)
{
    struct state *s = *st;

    if (drv_test_srv.pid > 0)
        kill(drv_test_srv.pid, SIGCONT); /* a failed SIGSTOP test */
    free_clients(s);
    if (s->guard != NULL) {
        event_free(s->guard);
        s->guard = NULL;
    }
    drv_loop_run(s->loop); /* finish deferred teardowns */
    drv_loop_free(s->loop);
    free(s);
    return 0;
}

static void
on_guard(evutil_socket_t fd, short what, void *arg)
{
    struct state *s = arg;

    (void)fd;
    (void)what;
    if (drv_test_now_ms() > s->limit_at_ms) {
        s->hung = 1;
        event_del(s->guard);
        event_base_loopbreak(s->base);
        return;
    }
    if (!s->done && s->poll != NULL)
        s->poll(s);
    if (s->done &&
        event_base_get_num_events(s->base, EVENT_BASE_COUNT_ADDED) == 1 &&
        event_base_get_num_events(s->base, EVENT_BASE_COUNT_ACTIVE) == 0)
        event_del(s->guard); /* only the guard is left: let the loop end */
}

/* Run the loop until the test is done and the base is empty. */
static void
run(struct state *s)
{
    struct timeval tick = {0, 10 * 1000};

    s->guard = event_new(s->base, -1, EV_PERSIST, on_guard, s);
    assert_non_null(s->guard);
    s->limit_at_ms = drv_test_now_ms() + DRV_TEST_WAIT_MS;
    assert_int_equal(event_add(s->guard, &tick), 0);
    assert_int_equal(drv_loop_run(s->loop), 0);
    if (s->hung)
        fail_msg("test hung (phase %d, checkpoint %d)", s->phase,
                 s->checkpoint);
    assert_true(s->done);
    event_free(s->guard);
    s->guard = NULL;
    /* nothing is left on the base */
    assert_int_equal(event_base_get_num_events(
                         s->base, EVENT_BASE_COUNT_ADDED |
                                      EVENT_BASE_COUNT_ACTIVE), 0);
}

static void
finish(struct state *s)
{
    free_clients(s);
    s->done = 1;
}

static int
idx(struct state *s, struct drv_redis *r)
{
    if (r == s->a)
        return 0;
    if (r == s->b)
        return 1;
    assert_ptr_equal(r, s->c);
    return 2;
}

static void
on_state(struct drv_redis *r, enum drv_redis_state st, void *ctx)
{
    struct state *s = ctx;

    assert_int_equal(s->in_call, 0);
    if (st == DRV_REDIS_READY) {
        assert_int_equal(drv_redis_state(r), DRV_REDIS_READY);
        assert_true(info(r).client_id > 0);
        s->ready[idx(s, r)]++;
    } else {
        assert_int_equal(st, DRV_REDIS_DOWN);
        s->down[idx(s, r)]++;
    }
    if (s->on_state != NULL)
        s->on_state(s, r, st);
}

/* TLS settings for the TLS group's server: its CA. */
static struct drv_redis_tls srv_tls;

static struct drv_redis *
client_opts(struct state *s, struct drv_redis_opts *o)
{
    struct drv_redis *r = NULL;
    struct drv_err err = {0, ""};

    if (o->tls == NULL && drv_test_srv.tls) {
        srv_tls.ca_file = drv_test_srv.ca;
        o->tls = &srv_tls;
    }
    o->on_state = on_state;
    o->ctx = s;
    if (o->backoff_initial_ms == 0)
        o->backoff_initial_ms = 20;
    if (o->backoff_max_ms == 0)
        o->backoff_max_ms = 200;
    assert_drv_ok(drv_redis_create(s->loop, o, &r, &err), &err);
    return r;
}

static struct drv_redis *
client(struct state *s, const char *url, const char *name)
{
    struct drv_redis_opts o;

    memset(&o, 0, sizeof o);
    o.url = url;
    o.name = name;
    return client_opts(s, &o);
}

/* Issue a command from strings; asserts the call itself succeeded. */
#define CMD(r, cb, ctx, ...)                                            \
    do {                                                                \
        s->in_call = 1;                                                 \
        assert_int_equal(drv_redis_cmd((r), (cb), (ctx), __VA_ARGS__,   \
                                       (char *)NULL), 0);               \
        s->in_call = 0;                                                 \
    } while (0)

static void
expect_ok(int status, const redisReply *reply)
{
    struct drv_err err;
    int rc = drv_redis_result(status, reply, &err);

    if (rc != 0)
        fail_msg("command failed: %d %s", rc, err.msg);
}

static redisReply *
sync_cmd(redisContext *c, const char *fmt, const char *arg)
{
    return drv_test_redis_cmd(c, fmt, arg);
}

/* ------------------------------------------------------ connect, setup */

static void
on_getname(struct drv_redis *r, int status, const redisReply *reply,
           void *ctx)
{
    struct state *s = ctx;

    assert_int_equal(s->in_call, 0);
    expect_ok(status, reply);
    assert_int_equal(reply->type, REDIS_REPLY_STRING);
    assert_string_equal(reply->str, "drover-test-cmd");
    s->checkpoint++;
}

static void
on_get_v(struct drv_redis *r, int status, const redisReply *reply,
         void *ctx)
{
    struct state *s = ctx;

    expect_ok(status, reply);
    assert_int_equal(reply->type, REDIS_REPLY_STRING);
    assert_int_equal(reply->len, 3);
    assert_memory_equal(reply->str, "v\0w", 3);
    s->checkpoint++;
    finish(s);
}

static void
on_set(struct drv_redis *r, int status, const redisReply *reply, void *ctx)
{
    struct state *s = ctx;

    if (s->done)
        return; /* the test ended: freeing cancels what is in flight */
    expect_ok(status, reply);
    s->checkpoint++;
}

static void
tcp_ready(struct state *s, struct drv_redis *r, enum drv_redis_state st)
{
    static const char *const set[] = {"SET", "k", "v\0w"};
    static const size_t setlen[] = {3, 1, 3};

    assert_int_equal(st, DRV_REDIS_READY);
    CMD(r, on_getname, s, "CLIENT", "GETNAME");
    s->in_call = 1;
    assert_int_equal(drv_redis_command(r, 3, set, setlen, on_set, s), 0);
    s->in_call = 0;
    CMD(r, on_get_v, s, "GET", "k");
}

static void
test_redis_connect_tcp(void **st)
{
    struct state *s = *st;

    s->on_state = tcp_ready;
    s->a = client(s, drv_test_srv.url, "drover-test-cmd");
    assert_int_equal(drv_redis_state(s->a), DRV_REDIS_DOWN);
    run(s);
    assert_int_equal(s->checkpoint, 3);
    assert_int_equal(s->ready[0], 1);
    assert_int_equal(s->down[0], 0);
}

/* max_string_bytes 8: a longer string (in an array too) arrives empty
 * with its length kept, a short one whole, an error reply whole. */
static void
on_cut_hget(struct drv_redis *r, int status, const redisReply *reply,
            void *ctx)
{
    struct state *s = ctx;

    assert_int_equal(status, 0);
    assert_int_equal(reply->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(reply->str, "WRONGTYPE"));
    s->checkpoint++;
    finish(s);
}

static void
on_cut_mget(struct drv_redis *r, int status, const redisReply *reply,
            void *ctx)
{
    struct state *s = ctx;

    expect_ok(status, reply);
    assert_int_equal(reply->type, REDIS_REPLY_ARRAY);
    assert_int_equal(reply->elements, 2);
    assert_string_equal(reply->element[0]->str, "abcdefgh");
    assert_int_equal(drv_redis_reply_len(reply->element[0]), 8);
    assert_int_equal(reply->element[1]->type, REDIS_REPLY_STRING);
    assert_int_equal(reply->element[1]->len, 0);
    assert_int_equal(drv_redis_reply_len(reply->element[1]), 100000);
    s->checkpoint++;
}

static void
cut_ready(struct state *s, struct drv_redis *r, enum drv_redis_state st)
{
    CMD(r, on_cut_mget, s, "MGET", "short", "long");
    CMD(r, on_cut_hget, s, "HGET", "long", "f");
}

static void
test_redis_max_string_cuts_long_strings(void **st)
{
    struct state *s = *st;
    struct drv_redis_opts o;
    redisContext *c = drv_test_redis_connect(&drv_test_srv);
    char *big = malloc(100000);

    assert_non_null(c);
    assert_non_null(big);
    memset(big, 'x', 100000);
    drv_test_redis_ok(c, "SET short abcdefgh");
    drv_test_redis_ok(c, "SET long %b", big, (size_t)100000);
    free(big);
    redisFree(c);
    memset(&o, 0, sizeof o);
    o.url = drv_test_srv.url;
    o.max_string_bytes = 8;
    s->on_state = cut_ready;
    s->a = client_opts(s, &o);
    run(s);
    assert_int_equal(s->checkpoint, 2);
}

/* A SET answered: count it and end the test. */
static void
on_unix_set(struct drv_redis *r, int status, const redisReply *reply,
            void *ctx)
{
    struct state *s = ctx;

    expect_ok(status, reply);
    s->checkpoint++;
    finish(s);
}

static void
unix_ready(struct state *s, struct drv_redis *r, enum drv_redis_state st)
{
    CMD(r, on_unix_set, s, "SET", "via-unix", "1");
}

/* EXISTS key on the blocking connection c. */
static long long
exists(redisContext *c, const char *key)
{
    redisReply *r = drv_test_redis_cmd(c, "EXISTS %s", key);
    long long n = r->integer;

    freeReplyObject(r);
    return n;
}

/* drv_redis_flush writes what is queued at once: the server has the SET
 * while the callback that sent it still runs (without the flush it goes
 * out at the loop's next turn, after the callback returned). */
static void
flush_ready(struct state *s, struct drv_redis *r, enum drv_redis_state st)
{
    redisContext *c = drv_test_redis_connect(&drv_test_srv);

    assert_non_null(c);
    CMD(r, on_unix_set, s, "SET", "flushed", "1");
    drv_redis_flush(r);
    /* the loop does not turn until this returns */
    wait_until_num(exists(c, "flushed"), ==, 1, "the SET at the server");
    redisFree(c);
    s->checkpoint++;
}

static void
test_redis_flush_writes_now(void **st)
{
    struct state *s = *st;

    s->on_state = flush_ready;
    s->a = client(s, drv_test_srv.url, "drover-test-flush");
    run(s);
    assert_int_equal(s->checkpoint, 2);
}

static void
test_redis_connect_unix_db(void **st)
{
    struct state *s = *st;
    char url[512];
    redisContext *c;
    redisReply *rep;

    if (drv_test_srv.external)
        skip();
    snprintf(url, sizeof url, "%s?db=3", drv_test_srv.sock_url);
    s->on_state = unix_ready;
    s->a = client(s, url, NULL);
    run(s);
    assert_int_equal(s->checkpoint, 1);
    /* it went to db 3, not 0 */
    c = drv_test_redis_connect(&drv_test_srv);
    assert_non_null(c);
    rep = sync_cmd(c, "EXISTS %s", "via-unix");
    assert_int_equal(rep->integer, 0);
    freeReplyObject(rep);
    freeReplyObject(drv_test_redis_cmd(c, "SELECT 3"));
    rep = sync_cmd(c, "EXISTS %s", "via-unix");
    assert_int_equal(rep->integer, 1);
    freeReplyObject(rep);
    redisFree(c);
}

#define PW "s3cret pw@/:"

static void
on_whoami(struct drv_redis *r, int status, const redisReply *reply,
          void *ctx)
{
    struct state *s = ctx;

    expect_ok(status, reply);
    assert_int_equal(reply->type, REDIS_REPLY_STRING);
    assert_string_equal(reply->str, idx(s, r) == 2 ? "alice" : "default");
    s->checkpoint++;
}

static void
auth_ready(struct state *s, struct drv_redis *r, enum drv_redis_state st)
{
    CMD(r, on_whoami, s, "ACL", "WHOAMI");
    CMD(r, on_set, s, "SET", idx(s, r) == 0 ? "from-url" : "from-env", "1");
}

static void
auth_poll(struct state *s)
{
    struct drv_redis_stats bad;

    /* a, b, c authenticated; the wrong password (d) keeps retrying */
    drv_redis_get_stats(s->d, &bad);
    if (s->checkpoint < 6 || s->ready[0] + s->ready[1] + s->ready[2] != 3 ||
        bad.attempts < 3)
        return;
    assert_int_equal(drv_redis_state(s->c), DRV_REDIS_READY);
    assert_int_not_equal(drv_redis_state(s->d), DRV_REDIS_READY);
    assert_int_equal(bad.connects, 0);
    finish(s);
}

static int
auth_teardown(void **st)
{
    redisContext *c = drv_test_redis_connect(&drv_test_srv);

    if (c != NULL) {
        freeReplyObject(drv_test_redis_cmd(c, "AUTH %s", PW));
        freeReplyObject(drv_test_redis_cmd(c, "ACL DELUSER alice"));
        freeReplyObject(drv_test_redis_cmd(c, "CONFIG SET requirepass %s",
                                           ""));
        redisFree(c);
    }
    unsetenv("DROVER_REDIS_PASSWORD");
    return teardown(st);
}

static void
test_redis_auth_and_select(void **st)
{
    struct state *s = *st;
    struct drv_redis_opts o;
    char url[512];
    redisContext *c;
    redisReply *rep;

    if (drv_test_srv.external)
        skip();
    c = drv_test_redis_connect(&drv_test_srv);
    assert_non_null(c);
    freeReplyObject(drv_test_redis_cmd(
        c, "ACL SETUSER alice on >alicepw ~* &* +@all"));
    freeReplyObject(sync_cmd(c, "CONFIG SET requirepass %s", PW));
    redisFree(c);

    /* password in the URL, percent-encoded (space) and raw (@ / :) */
    snprintf(url, sizeof url, "redis://:s3cret%%20pw@/:@127.0.0.1:%d/2",
             drv_test_srv.port);
    s->on_state = auth_ready;
    s->poll = auth_poll;
    s->a = client(s, url, "auth-url");
    /* password from the environment, URL without one */
    setenv("DROVER_REDIS_PASSWORD", PW, 1);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/2", drv_test_srv.port);
    s->b = client(s, url, "auth-env");
    /* an ACL user: AUTH alice alicepw (env is ignored: URL has one) */
    snprintf(url, sizeof url, "redis://alice:alicepw@127.0.0.1:%d/2",
             drv_test_srv.port);
    s->c = client(s, url, "auth-acl");
    unsetenv("DROVER_REDIS_PASSWORD");
    /* a wrong password: setup fails, it keeps retrying */
    memset(&o, 0, sizeof o);
    snprintf(url, sizeof url, "redis://:nope@127.0.0.1:%d", drv_test_srv.port);
    o.url = url;
    o.backoff_initial_ms = 10;
    o.backoff_max_ms = 20;
    s->d = client_opts(s, &o);
    run(s);
    assert_int_equal(s->checkpoint, 6);

    c = drv_test_redis_connect(&drv_test_srv);
    assert_non_null(c);
    freeReplyObject(sync_cmd(c, "AUTH %s", PW));
    freeReplyObject(drv_test_redis_cmd(c, "SELECT 2"));
    rep = drv_test_redis_cmd(c, "EXISTS from-url from-env");
    assert_int_equal(rep->integer, 2);
    freeReplyObject(rep);
    redisFree(c);
}

/* ------------------------------------------------------------ pipeline */

static struct state *pipe_s; /* the running pipeline test */

static void
on_pipe(struct drv_redis *r, int status, const redisReply *reply, void *ctx)
{
    struct state *s = pipe_s;
    int *slot = ctx;
    int i = (int)(slot - s->calls);

    assert_int_equal(s->in_call, 0);
    expect_ok(status, reply);
    assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
    /* in order: the i-th INCR sees i + 1 */
    assert_int_equal(reply->integer, i + 1);
    assert_int_equal(s->checkpoint, i);
    (*slot)++;
    s->checkpoint++;
    if (s->checkpoint == NCMD)
        finish(s);
}

static void
pipe_ready(struct state *s, struct drv_redis *r, enum drv_redis_state st)
{
    static const char *const argv[] = {"INCR", "counter"};
    int i;

    s->in_call = 1;
    for (i = 0; i < NCMD; i++)
        assert_int_equal(drv_redis_command(r, 2, argv, NULL, on_pipe,
                                           &s->calls[i]), 0);
    s->in_call = 0;
}

static void
test_redis_pipeline_1000(void **st)
{
    struct state *s = *st;
    int i;

    pipe_s = s;
    s->on_state = pipe_ready;
    s->a = client(s, drv_test_srv.url, NULL);
    run(s);
    assert_int_equal(s->checkpoint, NCMD);
    for (i = 0; i < NCMD; i++)
        assert_int_equal(s->calls[i], 1);
}

/* ---------------------------------------------------------- timeouts */

static void
on_blpop_timeout(struct drv_redis *r, int status, const redisReply *reply,
                 void *ctx)
{
    struct state *s = ctx;

    assert_int_equal(status, -ETIMEDOUT);
    assert_null(reply);
    /* never before its deadline */
    assert_true(drv_test_now_ms() - s->t0_ms >= 199);
    s->order[s->norder++] = 1;
}

static void
on_behind(struct drv_redis *r, int status, const redisReply *reply,
          void *ctx)
{
    struct state *s = ctx;

    /* pipelined behind the late one: dropped with the connection */
    assert_int_equal(status, DRV_EDOWN);
    s->order[s->norder++] = 2;
}

static void
on_after(struct drv_redis *r, int status, const redisReply *reply,
         void *ctx)
{
    struct state *s = ctx;

    expect_ok(status, reply);
    s->checkpoint++;
    finish(s);
}

static void
timeout_state(struct state *s, struct drv_redis *r, enum drv_redis_state st)
{
    static const char *const blpop[] = {"BLPOP", "nothing", "0"};

    if (st == DRV_REDIS_DOWN) {
        s->order[s->norder++] = 3;
        return;
    }
    if (s->ready[0] == 1) {
        s->t0_ms = drv_test_now_ms();
        s->in_call = 1;
        assert_int_equal(drv_redis_command_timeout(r, 200, 3, blpop, NULL,
                                                   on_blpop_timeout, s), 0);
        s->in_call = 0;
        CMD(r, on_behind, s, "PING");
        return;
    }
    /* reconnected by itself: the next command works */
    CMD(r, on_after, s, "PING");
}

static void
test_redis_command_timeout(void **st)
{
    struct state *s = *st;

    s->on_state = timeout_state;
    s->a = client(s, drv_test_srv.url, NULL);
    run(s);
    assert_int_equal(s->ready[0], 2);
    assert_int_equal(s->down[0], 1);
    /* both callbacks ran once, in order, before on_state(DOWN) */
    assert_int_equal(s->norder, 3);
    assert_int_equal(s->order[0], 1);
    assert_int_equal(s->order[1], 2);
    assert_int_equal(s->order[2], 3);
}

/* SIGSTOP: a server that accepts (kernel backlog) but never answers. */
static void
on_stalled(struct drv_redis *r, int status, const redisReply *reply,
           void *ctx)
{
    struct state *s = ctx;

    assert_int_equal(status, -ETIMEDOUT);
    s->checkpoint++;
    s->phase = 2;
    s->t0_ms = drv_test_now_ms();
}

static void
stop_state(struct state *s, struct drv_redis *r, enum drv_redis_state st)
{
    if (st != DRV_REDIS_READY)
        return;
    if (s->ready[0] == 1) {
        assert_int_equal(kill(drv_test_srv.pid, SIGSTOP), 0);
        s->phase = 1;
        CMD(r, on_stalled, s, "GET", "x");
        return;
    }
    /* continued: a generous deadline, the machine may be slow */
    s->in_call = 1;
    assert_int_equal(drv_redis_command_timeout(r, 10000, 1,
                                               (const char *const[]){"PING"},
                                               NULL, on_after, s), 0);
    s->in_call = 0;
}

static void
stop_poll(struct state *s)
{
    struct drv_redis_stats stats;

    if (s->phase != 2)
        return;
    drv_redis_get_stats(s->a, &stats);
    /* reconnects connect (backlog) but their setup times out */
    if (stats.timeouts >= 3) {
        assert_int_equal(kill(drv_test_srv.pid, SIGCONT), 0);
        s->phase = 3;
    }
}

static void
test_redis_stopped_server(void **st)
{
    struct state *s = *st;
    struct drv_redis_opts o;

    if (drv_test_srv.external)
        skip();
    memset(&o, 0, sizeof o);
    o.url = drv_test_srv.url;
    o.command_timeout_ms = 150;
    o.connect_timeout_ms = 150;
    s->on_state = stop_state;
    s->poll = stop_poll;
    s->a = client_opts(s, &o);
    run(s);
    assert_int_equal(s->checkpoint, 2);
    assert_int_equal(s->ready[0], 2);
    assert_int_equal(s->down[0], 1);
}

/* ------------------------------------------------------- kill, restart */

static void
on_killed(struct drv_redis *r, int status, const redisReply *reply,
          void *ctx)
{
    int *slot = ctx;

    assert_int_equal(status, DRV_EDOWN);
    assert_null(reply);
    (*slot)++;
}

/* blocked_clients from INFO, over a side connection. */
static int
blocked_clients(void)
{
    redisContext *c = drv_test_redis_connect(&drv_test_srv);
    redisReply *rep;
    const char *p;
    int n = -1;

    if (c == NULL)
        return -1;
    rep = drv_test_redis_cmd(c, "INFO clients");
    p = rep->type == REDIS_REPLY_STRING ? strstr(rep->str, "blocked_clients:")
                                        : NULL;
    if (p != NULL)
        n = atoi(p + strlen("blocked_clients:"));
    freeReplyObject(rep);
    redisFree(c);
    return n;
}

static void
kill_poll(struct state *s)
{
    int i;

    if (s->phase != 1 || blocked_clients() < 1)
        return;
    /* the BLPOP is blocked in the server; queue more behind it, then
     * crash the server before the loop even writes them */
    s->in_call = 1;
    for (i = 1; i <= NKILL; i++)
        assert_int_equal(drv_redis_cmd(s->a, on_killed, &s->calls[i], "SET",
                                       "k", "v", (char *)NULL), 0);
    s->in_call = 0;
    drv_test_redis_kill(&drv_test_srv);
    s->phase = 2;
}

static void
restart_server(evutil_socket_t fd, short what, void *arg)
{
    struct state *s = arg;

    (void)fd;
    (void)what;
    assert_int_equal(drv_test_redis_restart(&drv_test_srv), 0);
    s->phase = 3;
}

static void
kill_state(struct state *s, struct drv_redis *r, enum drv_redis_state st)
{
    static const char *const blpop[] = {"BLPOP", "nothing", "0"};
    struct timeval later = {0, 50 * 1000};
    int i;

    if (st == DRV_REDIS_DOWN) {
        /* every pending callback already ran, exactly once */
        for (i = 0; i <= NKILL; i++)
            assert_int_equal(s->calls[i], 1);
        assert_int_equal(event_base_once(s->base, -1, EV_TIMEOUT,
                                         restart_server, s, &later), 0);
        return;
    }
    if (s->ready[0] == 1) {
        s->in_call = 1;
        assert_int_equal(drv_redis_command_timeout(r, 10000, 3, blpop, NULL,
                                                   on_killed, &s->calls[0]),
                         0);
        s->in_call = 0;
        s->phase = 1;
        return;
    }
    CMD(r, on_after, s, "PING");
}

static void
test_redis_server_killed_and_restarted(void **st)
{
    struct state *s = *st;
    int i;

    if (drv_test_srv.external)
        skip();
    s->on_state = kill_state;
    s->poll = kill_poll;
    s->a = client(s, drv_test_srv.url, NULL);
    run(s);
    assert_int_equal(s->phase, 3);
    assert_int_equal(s->ready[0], 2);
    assert_int_equal(s->down[0], 1);
    assert_int_equal(s->checkpoint, 1);
    for (i = 0; i <= NKILL; i++)
        assert_int_equal(s->calls[i], 1);
}

static void
on_fail_fast(struct drv_redis *r, int status, const redisReply *reply,
             void *ctx)
{
    struct state *s = ctx;

    assert_int_equal(s->in_call, 0); /* never inside the call */
    assert_int_equal(status, DRV_EDOWN);
    assert_null(reply);
    s->errors++;
}

static void
down_state(struct state *s, struct drv_redis *r, enum drv_redis_state st)
{
    assert_int_equal(st, DRV_REDIS_READY);
    CMD(r, on_set, s, "SET", idx(s, r) == 0 ? "tcp" : "unix", "1");
}

static struct drv_redis_script *down_script;

static void
down_poll(struct state *s)
{
    struct drv_redis_stats sa, sb;

    drv_redis_get_stats(s->a, &sa);
    drv_redis_get_stats(s->b, &sb);
    if (s->phase == 0 && sa.attempts >= 3 && sb.attempts >= 3) {
        /* DOWN, or CONNECTING an attempt that will be refused */
        assert_int_not_equal(drv_redis_state(s->a), DRV_REDIS_READY);
        assert_int_not_equal(drv_redis_state(s->b), DRV_REDIS_READY);
        /* fail fast while down, callback on a later turn */
        CMD(s->a, on_fail_fast, s, "GET", "x");
        s->in_call = 1;
        {
            struct drv_argv keys, args;

            drv_argv_init(&keys);
            drv_argv_init(&args);
            drv_argv_adds(&keys, "k");
            assert_int_equal(drv_redis_eval(s->a, down_script, 0, &keys,
                                            &args, on_fail_fast, s), 0);
            drv_argv_fini(&keys);
            drv_argv_fini(&args);
        }
        s->in_call = 0;
        assert_int_equal(s->errors, 0);
        assert_int_equal(drv_test_redis_restart(&drv_test_srv), 0);
        s->phase = 1;
    }
    if (s->phase == 1 && s->checkpoint == 2) {
        assert_int_equal(s->errors, 2);
        finish(s);
    }
}

static void
test_redis_start_while_down(void **st)
{
    struct state *s = *st;

    if (drv_test_srv.external)
        skip();
    drv_test_redis_kill(&drv_test_srv);
    down_script = drv_redis_script_create("return 1", 8);
    s->on_state = down_state;
    s->poll = down_poll;
    s->a = client(s, drv_test_srv.url, NULL);      /* refused: async failure */
    s->b = client(s, drv_test_srv.sock_url, NULL); /* stale socket: sync
                                                    * failure */
    run(s);
    drv_redis_script_free(down_script);
    down_script = NULL;
    assert_int_equal(s->ready[0], 1);
    assert_int_equal(s->ready[1], 1);
    assert_int_equal(s->down[0] + s->down[1], 0); /* never was READY */
}

/*
 * Connect timeout: a listener with backlog 0 whose accept queue is already
 * full drops new SYNs, so a connect neither succeeds nor fails by itself.
 */
static int
full_listener(int *port, int *filler)
{
    int lfd = drv_test_listen(0, port);

    /* fills the queue: completes, never accepted */
    *filler = drv_test_dial(*port, DRV_TEST_WAIT_MS);
    assert_true(*filler >= 0);
    return lfd;
}

static void
ctmo_poll(struct state *s)
{
    struct drv_redis_stats stats;

    drv_redis_get_stats(s->a, &stats);
    if (stats.timeouts < 2)
        return;
    assert_int_equal(stats.connects, 0);
    assert_true(stats.attempts >= 2);
    assert_int_not_equal(drv_redis_state(s->a), DRV_REDIS_READY);
    finish(s);
}

static void
test_redis_connect_timeout(void **st)
{
    struct state *s = *st;
    struct drv_redis_opts o;
    char url[128];
    int lfd, filler, port;

    lfd = full_listener(&port, &filler);
    snprintf(url, sizeof url, "%s://127.0.0.1:%d",
             drv_test_srv.tls ? "rediss" : "redis", port);
    memset(&o, 0, sizeof o);
    o.url = url;
    o.connect_timeout_ms = 100;
    s->poll = ctmo_poll;
    s->a = client_opts(s, &o);
    run(s);
    assert_int_equal(s->ready[0], 0);
    close(filler);
    close(lfd);
}

/* ------------------------------------------------------------- scripts */

static struct drv_redis_script *script;
/* SHA1 of script_step's text: what EVALSHA and SCRIPT LOAD name it by */
#define SCRIPT_SHA "d006f1a90249474274c76f5be725b8f5804a346b"

static void script_step(struct state *s, struct drv_redis *r);

static void
on_script_step(struct drv_redis *r, int status, const redisReply *reply,
               void *ctx)
{
    struct state *s = ctx;

    expect_ok(status, reply);
    switch (s->phase) {
    case 1: /* SCRIPT EXISTS after FLUSH */
    case 4: /* SCRIPT EXISTS after the fallback */
        assert_int_equal(reply->type, REDIS_REPLY_ARRAY);
        assert_int_equal(reply->element[0]->integer, s->phase == 4);
        break;
    case 2: /* SCRIPT FLUSH */
        break;
    case 3: /* EVAL via fallback */
    case 5: /* EVALSHA directly */
        assert_int_equal(reply->type, REDIS_REPLY_ARRAY);
        assert_int_equal(reply->elements, 2);
        assert_string_equal(reply->element[0]->str, "key1");
        assert_int_equal(reply->element[1]->len, 3);
        assert_memory_equal(reply->element[1]->str, "a\0b", 3);
        s->checkpoint++;
        break;
    case 6: /* SCRIPT LOAD agrees with our SHA1 */
        assert_int_equal(reply->type, REDIS_REPLY_STRING);
        assert_string_equal(reply->str, SCRIPT_SHA);
        finish(s);
        return;
    }
    script_step(s, r);
}

static void
script_step(struct state *s, struct drv_redis *r)
{
    static const char *const args[] = {"key1", "a\0b"};
    static const size_t lens[] = {4, 3};
    const char *text = "return {KEYS[1], ARGV[1]}";

    s->phase++;
    s->in_call = 1;
    switch (s->phase) {
    case 1:
    case 4:
        assert_int_equal(drv_redis_cmd(r, on_script_step, s, "SCRIPT",
                                       "EXISTS", SCRIPT_SHA,
                                       (char *)NULL), 0);
        break;
    case 2:
        assert_int_equal(drv_redis_cmd(r, on_script_step, s, "SCRIPT",
                                       "FLUSH", (char *)NULL), 0);
        break;
    case 3:
    case 5:
    {
        struct drv_argv k, a;

        drv_argv_init(&k);
        drv_argv_init(&a);
        drv_argv_add(&k, args[0], lens[0]);
        drv_argv_add(&a, args[1], lens[1]);
        assert_int_equal(drv_redis_eval(r, script, 0, &k, &a,
                                        on_script_step, s), 0);
        drv_argv_fini(&k);
        drv_argv_fini(&a);
        break;
    }
    case 6:
        assert_int_equal(drv_redis_cmd(r, on_script_step, s, "SCRIPT",
                                       "LOAD", text, (char *)NULL), 0);
        break;
    }
    s->in_call = 0;
}

static void
script_ready(struct state *s, struct drv_redis *r, enum drv_redis_state st)
{
    script_step(s, r);
}

static void
test_redis_evalsha_noscript_fallback(void **st)
{
    struct state *s = *st;
    const char *text = "return {KEYS[1], ARGV[1]}";

    script = drv_redis_script_create(text, strlen(text));
    s->on_state = script_ready;
    s->a = client(s, drv_test_srv.url, NULL);
    run(s);
    drv_redis_script_free(script);
    script = NULL;
    assert_int_equal(s->checkpoint, 2);
}

/* --------------------------------------------------------- MULTI/EXEC */

static void
on_exec(struct drv_redis *r, int status, const redisReply *reply, void *ctx)
{
    struct state *s = ctx;

    expect_ok(status, reply);
    assert_int_equal(reply->type, REDIS_REPLY_ARRAY);
    assert_int_equal(reply->elements, 3);
    assert_string_equal(reply->element[0]->str, "OK");
    assert_int_equal(reply->element[1]->integer, 2);
    assert_string_equal(reply->element[2]->str, "2");
    s->checkpoint++;
}

static void
on_execabort(struct drv_redis *r, int status, const redisReply *reply,
             void *ctx)
{
    struct state *s = ctx;

    assert_int_equal(status, 0);
    assert_true(drv_redis_reply_error_is(reply, "EXECABORT"));
    s->checkpoint++;
    finish(s);
}

static void
multi_ready(struct state *s, struct drv_redis *r, enum drv_redis_state st)
{
    static const char *const cmds[][4] = {
        {"SET", "m", "1", NULL}, {"INCR", "m", NULL}, {"GET", "m", NULL},
        {"INCR", "m", NULL}, {"SET", "m", NULL} /* wrong arity */,
        {"MULTI", NULL}};
    struct drv_argv v[6];
    const struct drv_argv *ok = &v[0], *abort_ = &v[3], *nested = &v[5];
    size_t i, k;

    for (i = 0; i < 6; i++) {
        drv_argv_init(&v[i]);
        for (k = 0; cmds[i][k] != NULL; k++)
            drv_argv_adds(&v[i], cmds[i][k]);
    }
    s->in_call = 1;
    assert_int_equal(drv_redis_multi(r, 0, 3, ok, on_exec, s), 0);
    assert_int_equal(drv_redis_multi(r, 0, 2, abort_, on_execabort, s), 0);
    assert_int_equal(drv_redis_multi(r, 0, 1, nested, on_exec, s), -EINVAL);
    assert_int_equal(drv_redis_multi(r, 0, 0, ok, on_exec, s), -EINVAL);
    for (i = 0; i < 6; i++)
        drv_argv_fini(&v[i]);
    assert_int_equal(drv_redis_cmd(r, on_exec, s, "SUBSCRIBE", "ch",
                                   (char *)NULL), -EINVAL);
    s->in_call = 0;
}

static void
test_redis_multi_exec(void **st)
{
    struct state *s = *st;

    s->on_state = multi_ready;
    s->a = client(s, drv_test_srv.url, NULL);
    run(s);
    assert_int_equal(s->checkpoint, 2);
}

/* ------------------------------------------------------ free in callback */

static void
on_cancelled(struct drv_redis *r, int status, const redisReply *reply,
             void *ctx)
{
    int *slot = ctx;

    assert_int_equal(status, -ECANCELED);
    assert_null(reply);
    (*slot)++;
}

static void
on_free_me(struct drv_redis *r, int status, const redisReply *reply,
           void *ctx)
{
    struct state *s = ctx;

    expect_ok(status, reply);
    s->checkpoint++;
    drv_redis_free(r);
    s->a = NULL;
    /* after free: calls fail at once, a second free does nothing */
    assert_int_equal(drv_redis_cmd(r, on_set, s, "PING", (char *)NULL),
                     -ECANCELED);
    drv_redis_free(r);
}

static void
free_state(struct state *s, struct drv_redis *r, enum drv_redis_state st)
{
    int i;

    assert_int_equal(st, DRV_REDIS_READY);
    if (r == s->a) {
        /* a: freed inside the reply of its 3rd command of 10 */
        s->in_call = 1;
        for (i = 0; i < 10; i++)
            assert_int_equal(
                drv_redis_cmd(r, i == 2 ? on_free_me : i < 2 ? on_set
                                                             : on_cancelled,
                              i == 2 || i < 2 ? (void *)s
                                              : (void *)&s->calls[i],
                              "PING", (char *)NULL), 0);
        s->in_call = 0;
        return;
    }
    /* b: freed inside its own on_state(READY), a command pending */
    CMD(r, on_cancelled, &s->calls[20], "PING");
    drv_redis_free(r);
    s->b = NULL;
}

static void
free_poll(struct state *s)
{
    if (s->a == NULL && s->b == NULL)
        s->done = 1;
}

static void
test_redis_free_inside_callbacks(void **st)
{
    struct state *s = *st;
    int i;

    s->on_state = free_state;
    s->poll = free_poll;
    s->a = client(s, drv_test_srv.url, NULL);
    s->b = client(s, drv_test_srv.url, NULL);
    run(s);
    assert_int_equal(s->checkpoint, 3);
    for (i = 3; i < 10; i++)
        assert_int_equal(s->calls[i], 1);
    assert_int_equal(s->calls[20], 1);
    assert_int_equal(s->ready[0], 1);
    assert_int_equal(s->ready[1], 1);
}

/* --------------------------------------------------- blocking + unblock */

static void
on_xread(struct drv_redis *r, int status, const redisReply *reply,
         void *ctx)
{
    struct state *s = ctx;

    /* CLIENT UNBLOCK in its default mode: like a timeout, a nil reply */
    expect_ok(status, reply);
    assert_int_equal(reply->type, REDIS_REPLY_NIL);
    assert_int_equal(s->phase, 2);
    assert_int_equal(s->checkpoint, 101); /* after all of A's work */
    s->checkpoint++;
    finish(s);
}

static void
on_unblock(struct drv_redis *r, int status, const redisReply *reply,
           void *ctx)
{
    struct state *s = ctx;

    expect_ok(status, reply);
    assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
    assert_int_equal(reply->integer, 1);
    s->checkpoint++;
}

static void
on_a_step(struct drv_redis *r, int status, const redisReply *reply,
          void *ctx)
{
    struct state *s = ctx;

    expect_ok(status, reply);
    /* B's read is still blocked while A goes on */
    s->checkpoint++;
    if (s->checkpoint < 100) {
        CMD(r, on_a_step, s, "INCR", "a-steps");
        return;
    }
    s->in_call = 1;
    assert_int_equal(drv_redis_unblock(r, s->b, on_unblock, s), 0);
    s->in_call = 0;
}

static void
on_b_id(struct drv_redis *r, int status, const redisReply *reply, void *ctx)
{
    /* B's CLIENT ID went behind nothing: B is not yet blocked */
    expect_ok(status, reply);
    assert_int_equal(reply->integer, info(r).client_id);
}

static void
on_short_block(struct drv_redis *r, int status, const redisReply *reply,
               void *ctx)
{
    struct state *s = ctx;

    /* BLOCK 100 under a deadline of 100 ms plus a margin (5 s: a busy
     * machine may be slow to answer): Redis's own timeout wins, a nil
     * reply, the connection stays up */
    expect_ok(status, reply);
    assert_int_equal(reply->type, REDIS_REPLY_NIL);
    assert_int_equal(s->phase, 0);
    s->phase = 1;
}

static void
block_state(struct state *s, struct drv_redis *r, enum drv_redis_state st)
{
    static const char *const xread[] = {"XREAD", "BLOCK", "0", "STREAMS",
                                        "jobs", "$"};
    static const char *const xshort[] = {"XREAD", "BLOCK", "100",
                                         "STREAMS", "jobs", "$"};

    assert_int_equal(st, DRV_REDIS_READY);
    if (s->ready[0] != 1 || s->ready[1] != 1)
        return; /* wait for both */
    assert_true(info(s->a).client_id != info(s->b).client_id);
    CMD(s->b, on_b_id, s, "CLIENT", "ID");
    s->in_call = 1;
    assert_int_equal(drv_redis_command_timeout(s->b, 100 + 5000, 6, xshort,
                                               NULL, on_short_block, s), 0);
    /* then BLOCK 0, ended by CLIENT UNBLOCK; a worker would pass BLOCK ms
     * plus a margin as above */
    assert_int_equal(drv_redis_command_timeout(s->b, 30000, 6, xread, NULL,
                                               on_xread, s), 0);
    s->in_call = 0;
}

static void
block_poll(struct state *s)
{
    /* once B's BLOCK 0 sits in the server, A works undelayed */
    if (s->phase == 1 && blocked_clients() >= 1) {
        s->phase = 2;
        CMD(s->a, on_a_step, s, "INCR", "a-steps");
    }
}

static void
test_redis_blocking_connection_unblock(void **st)
{
    struct state *s = *st;

    s->on_state = block_state;
    s->poll = block_poll;
    s->a = client(s, drv_test_srv.url, "drover-cmd");
    s->b = client(s, drv_test_srv.url, "drover-block");
    run(s);
    assert_int_equal(s->checkpoint, 102);
}

/* ------------------------------------------------------------ host names */

/* Client a (a name that resolves) pings on; b (one that does not) keeps
 * failing: both make progress, so resolving never holds up the loop. */
static void
names_poll(struct state *s)
{
    struct drv_redis_stats st;

    if (s->ready[0] > 0 && s->phase == 0) {
        s->phase = 1;
        s->in_call = 1;
        assert_int_equal(drv_redis_cmd(s->a, on_set, s, "PING",
                                       (char *)NULL), 0);
        s->in_call = 0;
    }
    if (s->phase == 1 && s->checkpoint > 0 &&
        drv_redis_state(s->a) == DRV_REDIS_READY) {
        s->checkpoint = 0;
        s->calls[0]++;
        s->in_call = 1;
        assert_int_equal(drv_redis_cmd(s->a, on_set, s, "PING",
                                       (char *)NULL), 0);
        s->in_call = 0;
    }
    drv_redis_get_stats(s->b, &st);
    if (st.attempts >= 4 && s->calls[0] >= 4) {
        char peer[64];

        /* the name was looked up, not taken for an address */
        snprintf(peer, sizeof peer, "127.0.0.1:%d", drv_test_srv.port);
        assert_string_equal(info(s->a).peer, peer);
        drv_redis_get_stats(s->a, &st);
        assert_true(st.resolves >= 1);
        drv_redis_get_stats(s->b, &st);
        assert_true(st.resolves >= 4);
        assert_int_equal(drv_redis_state(s->b) == DRV_REDIS_READY, 0);
        if (strstr(info(s->b).last_error,
                   "cannot resolve host 'no-such-host.invalid'") == NULL)
            fail_msg("last error: '%s'", info(s->b).last_error);
        finish(s);
    }
}

static void
test_redis_host_names(void **st)
{
    struct state *s = *st;
    struct drv_redis_opts o;
    char url[256];

    if (drv_test_srv.external)
        skip();
    /* localhost: a name (resolved by getaddrinfo through /etc/hosts); the
     * TLS server's certificate names it too */
    snprintf(url, sizeof url, "%s://localhost:%d/0",
             drv_test_srv.tls ? "rediss" : "redis", drv_test_srv.port);
    s->a = client(s, url, "by-name");
    memset(&o, 0, sizeof o);
    o.url = "redis://no-such-host.invalid:6379";
    o.backoff_initial_ms = 10;
    o.backoff_max_ms = 40;
    s->b = client_opts(s, &o);
    s->poll = names_poll;
    run(s);
    assert_int_equal(s->ready[1], 0);
}

#define HOSTS_NAME DRV_TEST_HOSTS_NAME

static void
hosts_ready(struct state *s, struct drv_redis *r, enum drv_redis_state st)
{
    char peer[64];

    snprintf(peer, sizeof peer, "127.0.0.1:%d", drv_test_srv.port);
    assert_string_equal(info(r).peer, peer);
    CMD(r, on_unix_set, s, "SET", "via-etc-hosts", "1");
}

static void
test_redis_host_name_etc_hosts(void **st)
{
    struct state *s = *st;
    char url[256];
    int rc;

    if (drv_test_srv.external)
        skip();
    rc = drv_test_hosts_entry();
    if (rc < 0) {
        printf("skipped: cannot add '127.0.0.1 " HOSTS_NAME "' to "
               "/etc/hosts: %s\n", strerror(-rc));
        skip();
    }
    snprintf(url, sizeof url, "%s://" HOSTS_NAME ":%d/0",
             drv_test_srv.tls ? "rediss" : "redis", drv_test_srv.port);
    s->on_state = hosts_ready;
    s->a = client(s, url, NULL);
    run(s);
    assert_int_equal(s->checkpoint, 1);
}

/* ------------------------------------------------------------------ TLS */

/* Two TLS connections in a row: the second resumes the first session. */
static void
resume_state(struct state *s, struct drv_redis *r, enum drv_redis_state st)
{
    struct drv_redis_stats rs;
    redisContext *c;

    if (st != DRV_REDIS_READY)
        return;
    drv_redis_get_stats(r, &rs);
    if (s->ready[0] == 1) {
        assert_int_equal(rs.tls_handshakes, 1);
        assert_int_equal(rs.tls_resumed, 0);
        /* the server drops us; on the way back we resume */
        c = drv_test_redis_connect(&drv_test_srv);
        assert_non_null(c);
        freeReplyObject(drv_test_redis_cmd(c, "CLIENT KILL ID %lld",
                                           (long long)info(r).client_id));
        redisFree(c);
        return;
    }
    assert_int_equal(rs.tls_handshakes, 2);
    assert_int_equal(rs.tls_resumed, 1);
    finish(s);
}

static void
test_redis_tls_session_resumed(void **st)
{
    struct state *s = *st;

    s->on_state = resume_state;
    s->a = client(s, drv_test_srv.url, NULL);
    run(s);
    assert_int_equal(s->ready[0], 2);
}

/* Poll: b keeps failing with the expected text, never READY. */
static void
refused_poll(struct state *s)
{
    struct drv_redis_stats st;

    drv_redis_get_stats(s->a, &st);
    if (st.attempts < 3)
        return;
    /* the reason is OpenSSL's; the frame is ours */
    if (strncmp(info(s->a).last_error,
                "TLS: certificate verify failed: ",
                strlen("TLS: certificate verify failed: ")) != 0 ||
        strstr(info(s->a).last_error, s->phase == 0
               ? "(host 127.0.0.1)"
               : "hostname mismatch (host wrong.example)") == NULL)
        fail_msg("last error: '%s'", info(s->a).last_error);
    finish(s);
}

static void
test_redis_tls_verify_fails(void **st)
{
    struct state *s = *st;
    struct drv_redis_tls tls = {0};
    struct drv_redis_opts o;
    char other[400];

    /* a CA that did not sign the server's certificate */
    snprintf(other, sizeof other, "%s/other-ca.pem", drv_test_srv.certs);
    tls.ca_file = other;
    memset(&o, 0, sizeof o);
    o.url = drv_test_srv.url;
    o.tls = &tls;
    s->poll = refused_poll;
    s->a = client_opts(s, &o);
    run(s);
    assert_int_equal(s->ready[0], 0);
    teardown(st);
    setup(st);
    s = *st;

    /* the right CA, but the certificate does not name what we ask for */
    tls.ca_file = drv_test_srv.ca;
    tls.server_name = "wrong.example";
    memset(&o, 0, sizeof o);
    o.url = drv_test_srv.url;
    o.tls = &tls;
    s->phase = 1;
    s->poll = refused_poll;
    s->a = client_opts(s, &o);
    run(s);
    assert_int_equal(s->ready[0], 0);
}

static int
tls_group_setup(void **st)
{
    unsetenv("DROVER_REDIS_PASSWORD");
    if (getenv("DROVER_TEST_REDIS_URL") != NULL) {
        printf("skipped: the TLS group needs its own server\n");
        return -1;
    }
    return drv_test_redis_tls_group_setup(st);
}

/* A test of both groups: the same function over plain TCP and over TLS. */
#define BOTH(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_redis_connect_tcp, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redis_flush_writes_now, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redis_max_string_cuts_long_strings,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_connect_unix_db, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redis_auth_and_select, setup,
                                        auth_teardown),
        cmocka_unit_test_setup_teardown(test_redis_pipeline_1000, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redis_command_timeout, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redis_stopped_server, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_redis_server_killed_and_restarted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_start_while_down, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redis_connect_timeout, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_redis_evalsha_noscript_fallback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_redis_multi_exec, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_redis_free_inside_callbacks,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_redis_blocking_connection_unblock, setup, teardown),
        BOTH(test_redis_host_names),
        BOTH(test_redis_host_name_etc_hosts),
    };
    /* the same over TLS (rediss://), plus what only TLS has */
    const struct CMUnitTest tls_tests[] = {
        BOTH(test_redis_connect_tcp),
        BOTH(test_redis_pipeline_1000),
        BOTH(test_redis_command_timeout),
        BOTH(test_redis_stopped_server),
        BOTH(test_redis_server_killed_and_restarted),
        BOTH(test_redis_connect_timeout),
        BOTH(test_redis_evalsha_noscript_fallback),
        BOTH(test_redis_multi_exec),
        BOTH(test_redis_free_inside_callbacks),
        BOTH(test_redis_blocking_connection_unblock),
        BOTH(test_redis_host_names),
        BOTH(test_redis_host_name_etc_hosts),
        BOTH(test_redis_tls_session_resumed),
        BOTH(test_redis_tls_verify_fails),
    };
    int rc;

    drv_test_filter_from_env();
    rc = cmocka_run_group_tests_name("plain", tests, group_setup,
                                     drv_test_redis_group_teardown);
    if (getenv("DROVER_TEST_REDIS_URL") == NULL)
        rc |= cmocka_run_group_tests_name("tls", tls_tests, tls_group_setup,
                                          drv_test_redis_group_teardown);
    return rc;
}
