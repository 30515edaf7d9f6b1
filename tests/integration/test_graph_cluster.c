/*
 * test_graph_cluster.c -- graph pipelines whose nodes run on another
 * queue, on a three-master Redis Cluster (tests/harness/cluster.h): the
 * run's queue H and the node's queue T live on different masters, so
 * every hand-off between them crosses slots (outbox, marker, inbox).
 * Real droverd processes: some serve only H, one only T. A chain
 * a (H) -> g (T) -> z (H) runs each node once and passes the results
 * along; kill -9 of the workers over and over while runs hand off writes
 * every entry exactly once (the streams' entries-added counters) and
 * loses none; a cancel takes back the waiting entries on both slots and
 * marks the running one.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "droverd.h"
#include "drover/common.h"
#include "drover/redis_cluster.h"

static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-gc",
    .prefix = "t",
    .log_level = "debug",
    .worker_defaults = "",
    .body_head = NULL,
    .tail_lines = 40,
};

/* The group's cluster, and the two queues: H served by node 0, T by 1. */
static struct drv_test_cluster cl;
static char qh[16], qt[16];

/* One test's world. */
struct world {
    struct drv_test_redis srv;   /* stands for node 0 */
    struct drv_test_droverd *t;
    char cfg_h[400], cfg_t[400]; /* configs: serving H, serving T */
};

static int
group_setup(void **st)
{
    int i;

    (void)st;
    drv_test_watchdog_start(DRV_TEST_WATCHDOG_S);
    drv_test_cluster_start(&cl);
    drv_test_watchdog_stop();
    for (i = 0; i < 1000 && (qh[0] == '\0' || qt[0] == '\0'); i++) {
        char name[16];
        int k;

        snprintf(name, sizeof name, "q%d", i);
        k = drv_test_cluster_owner(&cl, 0, drv_redis_cluster_slot(
                                       name, strlen(name)));
        if (k == 0 && qh[0] == '\0')
            snprintf(qh, sizeof qh, "%s", name);
        if (k == 1 && qt[0] == '\0')
            snprintf(qt, sizeof qt, "%s", name);
    }
    assert_true(qh[0] != '\0' && qt[0] != '\0');
    return 0;
}

static int
group_teardown(void **st)
{
    (void)st;
    drv_test_cluster_stop(&cl);
    return 0;
}

static int
setup(void **st)
{
    struct world *w = calloc(1, sizeof *w);
    int i;

    assert_non_null(w);
    for (i = 0; i < DRV_TEST_CLUSTER_NODES; i++) {
        redisContext *c = drv_test_cluster_node(&cl, i);

        drv_test_redis_ok(c, "FLUSHALL");
        redisFree(c);
    }
    drv_test_redis_external(&w->srv, cl.port[0]);
    w->t = drv_test_droverd_new(&w->srv, &opts);
    snprintf(w->cfg_h, sizeof w->cfg_h, "%s/h.yaml", w->t->dir);
    snprintf(w->cfg_t, sizeof w->cfg_t, "%s/t.yaml", w->t->dir);
    *st = w;
    return 0;
}

static int
teardown(void **st)
{
    struct world *w = *st;

    drv_test_droverd_free(w->t);
    free(w);
    return 0;
}

/* ------------------------------------------------------------ helpers */

/* The two configs: the same jobs and pipelines (body), one serving H,
 * one T. */
static void
write_configs(struct world *w, const char *worker, const char *body)
{
    char text[8192];
    int k;

    for (k = 0; k < 2; k++) {
        snprintf(text, sizeof text,
                 "redis:\n"
                 "  url: redis:///0\n"
                 "  prefix: t\n"
                 "  cluster:\n"
                 "    nodes: %s\n"
                 "worker:\n"
                 "  shutdown_timeout: 5s\n%s"
                 "queues: [%s]\n"
                 "%s",
                 cl.nodes, worker, k == 0 ? qh : qt, body);
        assert_int_equal(drv_test_write_file(k == 0 ? w->cfg_h : w->cfg_t,
                                             text), 0);
    }
}

/* Start droverd i serving H (to_t 0) or T (1). */
static void
start(struct world *w, int i, int to_t)
{
    snprintf(w->t->cfg, sizeof w->t->cfg, "%s", to_t ? w->cfg_t : w->cfg_h);
    drv_test_droverd_start(w->t, i);
}

/* A client on the node serving queue q (H on node 0, T on node 1). */
static redisContext *
node_of(const char *q)
{
    return drv_test_cluster_node(&cl, q == qh ? 0 : 1);
}

/* Field f of run r (on H) equals want. */
static int
run_is(const char *r, const char *f, const char *want)
{
    redisContext *c = node_of(qh);
    char key[128];
    int is;

    snprintf(key, sizeof key, "t:{%s}:run:%s", qh, r);
    is = drv_test_hget_is_on(c, key, f, want);
    redisFree(c);
    return is;
}

/* Fail the test unless field f of run r (on H) equals want. */
static void
assert_run(const char *r, const char *f, const char *want)
{
    redisContext *c = node_of(qh);
    char key[128];

    snprintf(key, sizeof key, "t:{%s}:run:%s", qh, r);
    drv_test_expect_hget_on(c, key, f, want);
    redisFree(c);
}

/* Field f of run r (on H), or NULL; the caller frees it. */
static char *
run_get(const char *r, const char *f)
{
    redisContext *c = node_of(qh);
    char key[128];
    char *v;

    snprintf(key, sizeof key, "t:{%s}:run:%s", qh, r);
    v = drv_test_hget_on(c, key, f);
    redisFree(c);
    return v;
}

/* A number from a command on queue q's node (fmt may use %s for q). */
static long long
qnum(const char *q, const char *fmt)
{
    redisContext *c = node_of(q);
    long long v = drv_test_num_on(c, fmt, q);

    redisFree(c);
    return v;
}

/* Entries ever written to queue q's stream (XINFO STREAM entries-added):
 * counts every hand-off, also of entries acknowledged since. */
static long long
entries_added(const char *q)
{
    redisContext *c = node_of(q);
    redisReply *r = drv_test_redis_cmd(c, "XINFO STREAM t:{%s}:jobs", q);
    const redisReply *f = drv_test_field(r, "entries-added");
    long long v = f != NULL ? f->integer : -1;

    freeReplyObject(r);
    redisFree(c);
    assert_true(v >= 0);
    return v;
}

/* Start run r of pipeline p on H, with field input. */
static void
start_run(const char *r, const char *input)
{
    redisContext *c = node_of(qh);
    redisReply *rep = drv_test_redis_cmd(c, "XADD t:{%s}:jobs * pipeline p "
                                         "id %s input %s", qh, r, input);

    if (rep->type == REDIS_REPLY_ERROR)
        fail_msg("XADD: %s", rep->str);
    freeReplyObject(rep);
    redisFree(c);
}

/* Put record into the hand-off box ("outbox" or "inbox") of queue q, as
 * a worker that crashed half-way leaves it. */
static void
box_add(const char *q, const char *box, const char *record)
{
    redisContext *c = node_of(q);

    freeReplyObject(drv_test_redis_cmd(c, "ZADD t:{%s}:graph:%s 0 %s", q,
                                       box, record));
    redisFree(c);
}

/* The fleet of the chain tests: two workers serve H, one serves T (the
 * only one that may run g); then n runs, r0 with input s0 and so on. */
static void
start_fleet_and_runs(struct world *w, int n)
{
    char r[16], in[16];
    int i;

    start(w, 0, 0);
    start(w, 1, 1);
    start(w, 2, 0);
    for (i = 0; i < n; i++) {
        snprintf(r, sizeof r, "r%d", i);
        snprintf(in, sizeof in, "s%d", i);
        start_run(r, in);
    }
}

static int
all_ok(int n)
{
    char r[16];
    int i;

    for (i = 0; i < n; i++) {
        snprintf(r, sizeof r, "r%d", i);
        if (!run_is(r, "status", "ok"))
            return 0;
    }
    return 1;
}

/* The boxes of both queues are empty. */
static int
boxes_empty(void)
{
    return qnum(qh, "ZCARD t:{%s}:graph:outbox") == 0 &&
           qnum(qh, "ZCARD t:{%s}:graph:inbox") == 0 &&
           qnum(qt, "ZCARD t:{%s}:graph:outbox") == 0 &&
           qnum(qt, "ZCARD t:{%s}:graph:inbox") == 0;
}

/* a (H) -> g (T) -> z (H): each prints its node, its pid into DIR/N.pid
 * and its input in brackets */
#define CHAIN \
    "jobs:\n" \
    "  noop: {handler: echo}\n" \
    "  who:\n    handler: exec\n" \
    "    command: [sh, -c, 'printf %%s \"$PPID\" > %s/$1.pid; " \
    "printf \"%%s<%%s>\" \"$1\" \"$2\"', sh, '{node}', '{input}']\n" \
    "pipelines:\n" \
    "  p:\n    graph:\n" \
    "      a: {job: who}\n" \
    "      g: {job: who, needs: a, queue: %s}\n" \
    "      z: {job: who, needs: g}\n"

/* ---------------------------------------------------------------- tests */

static void
test_graph_cluster_node_on_another_slot(void **st)
{
    struct world *w = *st;
    enum { RUNS = 10 };
    char body[4096], r[16], want[64];
    int i;

    snprintf(body, sizeof body, CHAIN, w->t->dir, qt);
    write_configs(w, "  visibility_timeout: 4s\n", body);
    start_fleet_and_runs(w, RUNS);
    wait_until(all_ok(RUNS), "every run to end ok");
    for (i = 0; i < RUNS; i++) {
        snprintf(r, sizeof r, "r%d", i);
        snprintf(want, sizeof want, "z<g<a<s%d>>>", i);
        assert_run(r, "z.result", want);
        assert_run(r, "result", want);
        assert_run(r, "g.queue", qt);
        assert_run(r, "g.enqueued", "1");
        assert_run(r, "z.enqueued", "1");
        assert_run(r, "g.state", "ok");
    }
    /* g ran on the worker of T */
    assert_int_equal(drv_test_file_num(w->t->dir, "g.pid"),
                     w->t->w[1].pid);
    /* each entry written once: runs + a + z on H, g on T */
    assert_int_equal(entries_added(qh), 3 * RUNS);
    assert_int_equal(entries_added(qt), RUNS);
    wait_until(boxes_empty(), "the hand-off boxes to empty");
    assert_int_equal(qnum(qt, "HGET t:{%s}:stats processed"), RUNS);
    assert_int_equal(qnum(qh, "XLEN t:{%s}:jobs"), 0);
    assert_int_equal(qnum(qt, "XLEN t:{%s}:jobs"), 0);

    /* what a crash leaves in a box is delivered by the workers' scan, and
     * a record delivered twice writes once: an outbox record (as a
     * worker killed after the settle leaves it) twice */
    snprintf(body, sizeof body, "[\"%s\",\"t:{%s}:handoff:probe\",60000,"
             "[\"job\",\"noop\",\"id\",\"probe\"]]", qt, qt);
    for (i = 0; i < 2; i++) {
        box_add(qh, "outbox", body);
        wait_until(boxes_empty(), "the outbox record to be delivered");
        wait_until_num(qnum(qt, "HGET t:{%s}:stats processed"), ==,
                       RUNS + 1, "the hand-off's entry processed");
        assert_int_equal(entries_added(qt), RUNS + 1);
    }
    /* an inbox record of g of r0 applied again changes nothing */
    snprintf(body, sizeof body, "[\"%s\",\"r0\",\"g\",\"\",\"ok\",\"1\","
             "\"again\",\"0\",\"0\",\"0-1\"]", qh);
    box_add(qt, "inbox", body);
    wait_until(boxes_empty(), "the inbox record to be applied");
    assert_run("r0", "g.result", "g<a<s0>>");
    assert_run("r0", "z.enqueued", "1");
    assert_int_equal(entries_added(qh), 3 * RUNS);

    drv_test_droverd_stop(w->t, 0, 0);
    drv_test_droverd_stop(w->t, 1, 0);
    drv_test_droverd_stop(w->t, 2, 0);
    /* every node started exactly once: 3 jobs per run (and the probe) */
    assert_int_equal(drv_test_started(w->t), 3 * RUNS + 1);
    assert_int_equal(qnum(qh, "XLEN t:{%s}:dead"), 0);
    assert_int_equal(qnum(qt, "XLEN t:{%s}:dead"), 0);
}

static void
test_graph_cluster_kill9_loses_and_repeats_nothing(void **st)
{
    struct world *w = *st;
    enum { RUNS = 16, KILLS = 9 };
    char body[4096], r[16], want[64];
    int i, k;

    snprintf(body, sizeof body, CHAIN, w->t->dir, qt);
    write_configs(w, "  visibility_timeout: 1s\n  max_deliveries: 1000\n",
                  body);
    start_fleet_and_runs(w, RUNS);
    /* kill each worker in turn at varying moments while runs hand off:
     * in a settle, between a settle and its hand-off, between the
     * hand-off and the box's cleanup, in a job */
    srand(11);
    for (k = 0; k < KILLS && !all_ok(RUNS); k++) {
        drv_test_sleep_ms(5 + rand() % 150);
        drv_test_kill(&w->t->w[k % 3], SIGKILL);
        start(w, k % 3, k % 3 == 1);
    }
    wait_until(all_ok(RUNS), "every run to end ok");
    for (i = 0; i < RUNS; i++) {
        snprintf(r, sizeof r, "r%d", i);
        snprintf(want, sizeof want, "z<g<a<s%d>>>", i);
        assert_run(r, "z.result", want);
        assert_run(r, "g.enqueued", "1");
        assert_run(r, "z.enqueued", "1");
    }
    /* nothing handed off twice: each entry was written once */
    assert_int_equal(entries_added(qh), 3 * RUNS);
    assert_int_equal(entries_added(qt), RUNS);
    wait_until(boxes_empty(), "the hand-off boxes to empty");
    wait_until_num(qnum(qh, "XLEN t:{%s}:jobs"), ==, 0, "entries left on H");
    wait_until_num(qnum(qt, "XLEN t:{%s}:jobs"), ==, 0, "entries left on T");
    assert_int_equal(qnum(qh, "XLEN t:{%s}:dead"), 0);
    assert_int_equal(qnum(qt, "XLEN t:{%s}:dead"), 0);
    drv_test_droverd_stop(w->t, 0, 0);
    drv_test_droverd_stop(w->t, 1, 0);
    drv_test_droverd_stop(w->t, 2, 0);
}

/*
 * g's entry on T was delivered twice to workers that died (max_deliveries
 * 2): the reclaim of T's worker ends g dead with the poison error, and
 * the outcome crosses to H as a dead node's does (T's inbox, the apply on
 * H): the run ends dead, z never runs, undo1 runs once.
 */
static void
test_graph_cluster_poisoned_node_ends_its_run(void **st)
{
    struct world *w = *st;
    char body[4096], *v;
    redisContext *c;
    redisReply *r;

    snprintf(body, sizeof body,
             CHAIN "      undo1: {job: noop, on_failure: true}\n",
             w->t->dir, qt);
    write_configs(w, "  visibility_timeout: 1s\n  max_deliveries: 2\n",
                  body);
    c = node_of(qt);
    drv_test_redis_ok(c, "XGROUP CREATE t:{%s}:jobs drover 0 MKSTREAM", qt);
    start(w, 0, 0);
    start_run("x", "in");
    wait_until(qnum(qt, "XLEN t:{%s}:jobs") == 1 && boxes_empty(),
               "g to be handed off to T");
    /* delivered to ghost1, claimed by ghost2: twice */
    r = drv_test_redis_cmd(c, "XREADGROUP GROUP drover ghost1 COUNT 1 "
                           "STREAMS t:{%s}:jobs >", qt);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    v = strdup(r->element[0]->element[1]->element[0]->element[0]->str);
    freeReplyObject(r);
    freeReplyObject(drv_test_redis_cmd(c, "XCLAIM t:{%s}:jobs drover "
                                       "ghost2 0 %s", qt, v));
    free(v);
    redisFree(c);
    start(w, 1, 1);
    wait_until(run_is("x", "undo1.state", "ok"), "undo1 to run");
    assert_run("x", "status", "dead");
    assert_run("x", "dead_node", "g");
    assert_run("x", "g.state", "dead");
    assert_run("x", "g.attempts", "1");
    assert_run("x", "z.state", "cancelled");
    assert_run("x", "undo1.enqueued", "1");
    v = run_get("x", "g.error");
    if (v == NULL || strncmp(v, "poison: delivered 2 times", 25) != 0)
        fail_msg("g.error: %s", v ? v : "(nil)");
    free(v);
    wait_until(boxes_empty(), "the hand-off boxes to empty");
    /* g's entry went to T's dead stream; nothing is left pending */
    assert_int_equal(qnum(qt, "XLEN t:{%s}:dead"), 1);
    assert_int_equal(qnum(qt, "XLEN t:{%s}:jobs"), 0);
    assert_int_equal(qnum(qt, "XPENDING t:{%s}:jobs drover"), 0);
    drv_test_droverd_stop(w->t, 1, 0);
    drv_test_droverd_stop(w->t, 0, 0);
    assert_null(run_get("x", "z.enqueued"));
}

static void
test_graph_cluster_cancel_takes_back_both_slots(void **st)
{
    struct world *w = *st;
    const char *cancel[] = {"pipeline", qh, "x", "--cancel", NULL};
    struct drv_test_cli r;
    char body[4096], *out;

    /* one job at a time on H: of c and c2 one runs, one waits in H's
     * stream; no worker serves T, so g waits in T's stream */
    snprintf(body, sizeof body,
             "jobs:\n"
             "  quick:\n    handler: exec\n    command: [printf, A]\n"
             "  slow:\n    handler: exec\n"
             "    command: [sh, -c, 'echo 1 > %s/$1.started; sleep 60', sh, "
             "'{node}']\n"
             "pipelines:\n"
             "  p:\n    graph:\n"
             "      a: {job: quick}\n"
             "      g: {job: quick, needs: a, queue: %s}\n"
             "      c: {job: slow, needs: a}\n"
             "      c2: {job: slow, needs: a}\n"
             "      z: {job: quick, needs: [g, c, c2]}\n", w->t->dir, qt);
    write_configs(w, "  concurrency: 1\n", body);
    start(w, 0, 0);
    start_run("x", "in");
    /* g handed off to T, one of c and c2 running */
    wait_until(qnum(qt, "XLEN t:{%s}:jobs") == 1 &&
               (drv_test_file_num(w->t->dir, "c.started") >= 0 ||
                drv_test_file_num(w->t->dir, "c2.started") >= 0) &&
               boxes_empty(), "g on T and c or c2 running");
    drv_test_cli_run(&r, w->t->dir, w->cfg_h, NULL, cancel);
    out = drv_test_cli_take(&r, 0);
    if (strstr(out, "cancelled: 2 waiting entries removed, 0 delayed "
               "retries removed, 1 running entries marked") == NULL)
        fail_msg("cancel output: %s", out);
    free(out);
    assert_run("x", "status", "cancelled");
    assert_run("x", "g.state", "cancelled");
    assert_run("x", "z.state", "cancelled");
    /* the waiting entries are gone from both slots; the running one is
     * cancelled by its worker */
    assert_int_equal(qnum(qt, "XLEN t:{%s}:jobs"), 0);
    wait_until_num(qnum(qh, "XLEN t:{%s}:jobs"), ==, 0, "entries on H");
    wait_until_num(qnum(qh, "HGET t:{%s}:stats cancelled"), ==, 1,
                   "the running node cancelled");
    /* a worker of T now finds nothing to run */
    start(w, 1, 1);
    drv_test_wait_log(w->t, "queue ready", 1);
    drv_test_droverd_stop(w->t, 1, 0);
    assert_int_equal(qnum(qt, "HGET t:{%s}:stats processed"), 0);
    drv_test_droverd_stop(w->t, 0, 0);
    /* only a and one of c, c2 ever started */
    assert_int_equal(drv_test_started(w->t), 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_graph_cluster_node_on_another_slot),
        T(test_graph_cluster_kill9_loses_and_repeats_nothing),
        T(test_graph_cluster_cancel_takes_back_both_slots),
        T(test_graph_cluster_poisoned_node_ends_its_run),
    };
#undef T

    drv_test_droverd_fixture = &opts;
    drv_test_filter_from_env();
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
