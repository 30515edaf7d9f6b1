/*
 * test_cluster_ask.c -- pkg/redis follows -ASK on a real three-master
 * Redis Cluster (tests/harness/cluster.h), with a connection set up as
 * droverd sets up its queue connections (a route of the slot map,
 * attached): a slot in migration (IMPORTING on the target, MIGRATING on
 * the owner, its keys MIGRATEd) answers -ASK, and the command comes back
 * with the importing node's reply, exactly once: a plain command, a
 * script the importing node has not loaded (NOSCRIPT there: EVAL), a
 * MULTI block; a forwarded command whose node is stopped ends with
 * -ETIMEDOUT at its deadline; a connection freed inside the callback of
 * one forwarded command completes the other with -ECANCELED. Only the
 * importing node counts ASKING calls.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cluster.h"
#include "drover/common.h"
#include "drover/log.h"
#include "drover/loop.h"
#include "drover/redis.h"
#include "drover/redis_cluster.h"

#define KEY "{ask}:k"
#define SCRIPT "return redis.call('GET', KEYS[1])"

struct state {
    struct drv_test_cluster cl;
    struct drv_loop *loop;
    struct event_base *base;
    struct drv_redis_cluster *c;
    struct drv_redis_cluster_route *route;
    struct drv_redis *r;
    struct drv_redis_script *script;
    int slot, from, to;
    int phase;                  /* what the test does next */
    int calls[8];               /* callbacks per command tag */
    int status[8];              /* their status */
    char got[8][32];            /* string replies, "ERR ..." for errors */
};

/* Tags of the commands, index of calls[]. */
enum { T_GET, T_EVAL, T_MULTI, T_TIMEOUT, T_FREE1, T_FREE2 };

static void
record(struct state *s, int tag, int status, const redisReply *reply)
{
    s->calls[tag]++;
    s->status[tag] = status;
    if (reply == NULL)
        return;
    if (reply->type == REDIS_REPLY_STRING ||
        reply->type == REDIS_REPLY_ERROR)
        snprintf(s->got[tag], sizeof s->got[tag], "%s%.*s",
                 reply->type == REDIS_REPLY_ERROR ? "ERR " : "",
                 (int)reply->len, reply->str);
    else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1 &&
             reply->element[0]->type == REDIS_REPLY_STRING)
        snprintf(s->got[tag], sizeof s->got[tag], "[%s]",
                 reply->element[0]->str);
}

static void next_phase(struct state *s);

static void
on_get(struct drv_redis *r, int status, const redisReply *reply, void *ctx)
{
    struct state *s = ctx;

    (void)r;
    record(s, T_GET, status, reply);
    next_phase(s);
}

static void
on_eval(struct drv_redis *r, int status, const redisReply *reply, void *ctx)
{
    struct state *s = ctx;

    (void)r;
    record(s, T_EVAL, status, reply);
    next_phase(s);
}

static void
on_multi(struct drv_redis *r, int status, const redisReply *reply,
         void *ctx)
{
    struct state *s = ctx;

    (void)r;
    record(s, T_MULTI, status, reply);
    next_phase(s);
}

static void
on_timeout(struct drv_redis *r, int status, const redisReply *reply,
           void *ctx)
{
    struct state *s = ctx;

    (void)r;
    record(s, T_TIMEOUT, status, reply);
    kill(s->cl.node[s->to].pid, SIGCONT);
    next_phase(s);
}

static void
on_free2(struct drv_redis *r, int status, const redisReply *reply,
         void *ctx)
{
    struct state *s = ctx;

    (void)r;
    record(s, T_FREE2, status, reply);
    drv_loop_stop(s->loop); /* the last callback */
}

static void
on_free1(struct drv_redis *r, int status, const redisReply *reply,
         void *ctx)
{
    struct state *s = ctx;

    record(s, T_FREE1, status, reply);
    /* free inside the callback of a forwarded command: the other one,
     * forwarded too, must still complete once */
    drv_redis_cluster_detach(s->route);
    drv_redis_free(r);
    s->r = NULL;
}

static void
next_phase(struct state *s)
{
    struct drv_argv a, keys, args, multi[1];

    drv_argv_init(&a);
    drv_argv_init(&keys);
    drv_argv_init(&args);
    switch (s->phase++) {
    case 0:
        drv_argv_adds(&a, "GET");
        drv_argv_adds(&a, KEY);
        assert_int_equal(drv_redis_send(s->r, 0, &a, on_get, s), 0);
        break;
    case 1:
        drv_argv_adds(&keys, KEY);
        assert_int_equal(drv_redis_eval(s->r, s->script, 0, &keys, &args,
                                        on_eval, s), 0);
        break;
    case 2:
        drv_argv_init(&multi[0]);
        drv_argv_adds(&multi[0], "GET");
        drv_argv_adds(&multi[0], KEY);
        assert_int_equal(drv_redis_multi(s->r, 0, 1, multi, on_multi, s),
                         0);
        drv_argv_fini(&multi[0]);
        break;
    case 3:
        /* the importing node stopped: the forwarded command ends at its
         * deadline */
        kill(s->cl.node[s->to].pid, SIGSTOP);
        drv_argv_adds(&a, "GET");
        drv_argv_adds(&a, KEY);
        assert_int_equal(drv_redis_send(s->r, 300, &a, on_timeout, s), 0);
        break;
    case 4:
        drv_argv_adds(&a, "GET");
        drv_argv_adds(&a, KEY);
        assert_int_equal(drv_redis_send(s->r, 0, &a, on_free1, s), 0);
        assert_int_equal(drv_redis_send(s->r, 0, &a, on_free2, s), 0);
        break;
    default:
        break;
    }
    drv_argv_fini(&a);
    drv_argv_fini(&keys);
    drv_argv_fini(&args);
}

static void
on_state(struct drv_redis *r, enum drv_redis_state st, void *ctx)
{
    struct state *s = ctx;

    (void)r;
    if (st == DRV_REDIS_READY && s->phase == 0)
        next_phase(s);
}

static void
test_cluster_ask_followed_exactly_once(void **st)
{
    struct state *s = *st;
    struct drv_loop_opts lo = {.lag_interval_ms = -1};
    struct drv_redis_cluster_opts co;
    struct drv_redis_opts ro;
    struct drv_err err;
    const char *nodes[1];
    char node0[32];
    long long asking_before[DRV_TEST_CLUSTER_NODES];
    redisContext *ctx;
    int i, rc;

    s->slot = drv_redis_cluster_slot(KEY, strlen(KEY));
    s->from = drv_test_cluster_owner(&s->cl, 0, s->slot);
    s->to = (s->from + 1) % DRV_TEST_CLUSTER_NODES;
    ctx = drv_test_cluster_node(&s->cl, s->from);
    drv_test_redis_ok(ctx, "SET %s v1", KEY);
    redisFree(ctx);
    /* the key moves; the slot stays in migration */
    drv_test_cluster_migrate_begin(&s->cl, s->slot, s->to);
    assert_int_equal(drv_test_cluster_migrate_keys(&s->cl, s->slot, s->to),
                     1);
    ctx = drv_test_cluster_node(&s->cl, s->to);
    drv_test_redis_ok(ctx, "SCRIPT FLUSH"); /* NOSCRIPT there */
    redisFree(ctx);
    for (i = 0; i < DRV_TEST_CLUSTER_NODES; i++)
        asking_before[i] = drv_test_cluster_cmd_calls(&s->cl, i, "asking");

    s->loop = drv_loop_create(&lo);
    assert_non_null(s->loop);
    s->base = drv_loop_base(s->loop);
    s->script = drv_redis_script_create(SCRIPT, strlen(SCRIPT));
    snprintf(node0, sizeof node0, "127.0.0.1:%d", s->cl.port[0]);
    nodes[0] = node0;
    memset(&co, 0, sizeof co);
    co.url = "redis://";
    co.nodes = nodes;
    co.nnodes = 1;
    co.name = "ask-test";
    assert_int_equal(drv_redis_cluster_create(s->loop, &co, &s->c, &err),
                     0);
    s->route = drv_redis_cluster_route(s->c, s->slot);
    memset(&ro, 0, sizeof ro);
    drv_redis_cluster_route_opts(s->route, &ro);
    ro.name = "ask-test-q";
    ro.on_state = on_state;
    ro.ctx = s;
    assert_int_equal(drv_redis_create(s->loop, &ro, &s->r, &err), 0);
    drv_redis_cluster_attach(s->route, s->r);

    rc = drv_test_loop_run(s->loop, DRV_TEST_WAIT_MS);
    kill(s->cl.node[s->to].pid, SIGCONT);
    if (rc != 0)
        fail_msg("test hung in phase %d", s->phase);
    drv_redis_cluster_free(s->c);
    s->c = NULL;
    drv_redis_script_free(s->script);
    drv_loop_run(s->loop); /* the deferred teardowns */
    assert_int_equal(event_base_get_num_events(
                         s->base, EVENT_BASE_COUNT_ADDED |
                                      EVENT_BASE_COUNT_ACTIVE), 0);
    drv_loop_free(s->loop);
    s->loop = NULL;

    fprintf(stderr, "ASK: GET %s (%d) EVAL %s (%d) MULTI %s (%d) "
            "stopped node: %s (%d) freed: %d then %s\n",
            s->got[T_GET], s->status[T_GET], s->got[T_EVAL],
            s->status[T_EVAL], s->got[T_MULTI], s->status[T_MULTI],
            drv_strerror(s->status[T_TIMEOUT]), s->calls[T_TIMEOUT],
            s->status[T_FREE1], drv_strerror(s->status[T_FREE2]));
    /* every callback exactly once, with the importing node's answer */
    for (i = T_GET; i <= T_FREE2; i++)
        assert_int_equal(s->calls[i], 1);
    assert_int_equal(s->status[T_GET], 0);
    assert_string_equal(s->got[T_GET], "v1");
    assert_int_equal(s->status[T_EVAL], 0);
    assert_string_equal(s->got[T_EVAL], "v1");
    assert_int_equal(s->status[T_MULTI], 0);
    assert_string_equal(s->got[T_MULTI], "[v1]");
    assert_int_equal(s->status[T_TIMEOUT], -ETIMEDOUT);
    assert_int_equal(s->status[T_FREE1], 0);
    assert_string_equal(s->got[T_FREE1], "v1");
    assert_int_equal(s->status[T_FREE2], -ECANCELED);
    /* ASKING went to the importing node only; the script was loaded
     * there by the EVAL fallback */
    for (i = 0; i < DRV_TEST_CLUSTER_NODES; i++) {
        long long n = drv_test_cluster_cmd_calls(&s->cl, i, "asking") - asking_before[i];

        if (i == s->to)
            assert_true(n >= 4);
        else
            assert_int_equal(n, 0);
    }
    assert_true(drv_test_cluster_cmd_calls(&s->cl, s->to, "eval") >= 1);
    drv_test_cluster_migrate_end(&s->cl, s->slot, s->to);
}

static int
setup(void **st)
{
    struct state *s = calloc(1, sizeof *s);

    assert_non_null(s);
    drv_log_set_level(getenv("DROVER_TEST_LOG") ? getenv("DROVER_TEST_LOG")
                                                : "error");
    drv_test_watchdog_start(DRV_TEST_WATCHDOG_S);
    drv_test_cluster_start(&s->cl);
    *st = s;
    return 0;
}

static int
teardown(void **st)
{
    struct state *s = *st;
    int i;

    for (i = 0; i < DRV_TEST_CLUSTER_NODES; i++)
        if (s->cl.node[i].pid > 0)
            kill(s->cl.node[i].pid, SIGCONT);
    drv_test_cluster_stop(&s->cl);
    drv_test_watchdog_stop();
    free(s);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_cluster_ask_followed_exactly_once, setup, teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    drv_test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
