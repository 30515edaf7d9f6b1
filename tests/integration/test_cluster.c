/*
 * test_cluster.c -- droverd and drover on a three-master Redis Cluster
 * (tests/harness/cluster.h), each test on a fresh one: the slot drover
 * computes for a queue is the one the cluster gives; queues whose slots
 * live on different masters all drain, each on its own master; a slot
 * moved (IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE) while its queue's
 * jobs run loses none of them and starts none twice, droverd following
 * the ASK replies while the slot is half-migrated (ASKING counted on the
 * importing node) and the MOVED replies after; the CLI and the
 * dashboard's API work on every queue's node; the doctor reports an
 * unserved slot at once; /metrics shows each queue's gauges sampled on
 * its own master, round after round, and a queue paused and resumed with
 * the CLI is seen by the worker.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "droverd.h"
#include "http.h"
#include "drover/common.h"
#include "drover/redis_cluster.h"

static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-cl",
    .prefix = "t",
    .log_level = "info",
    .worker_defaults = "",
    .body_head = NULL,
    .tail_lines = 80,
};

/* One test's world: the cluster, a stand-in for the fixture's server
 * (node 0), the droverd fixture, and three queue names whose slots are
 * served by node 0, 1 and 2. */
struct world {
    struct drv_test_cluster cl;
    struct drv_test_redis srv;
    struct drv_test_droverd *t;
    char q[DRV_TEST_CLUSTER_NODES][16];
    int slot[DRV_TEST_CLUSTER_NODES];
};

/* The slot of queue q's keys: that of its hash tag {q}. */
static int
queue_slot(const char *q)
{
    return drv_redis_cluster_slot(q, strlen(q));
}

static int
setup(void **st)
{
    struct world *w = calloc(1, sizeof *w);
    int i, found = 0;

    assert_non_null(w);
    drv_test_watchdog_start(DRV_TEST_WATCHDOG_S);
    drv_test_cluster_start(&w->cl);
    drv_test_redis_external(&w->srv, w->cl.port[0]);
    w->t = drv_test_droverd_new(&w->srv, &opts);
    /* q<n>: the first name served by each node */
    for (i = 0; found < DRV_TEST_CLUSTER_NODES && i < 1000; i++) {
        char name[16];
        int k;

        snprintf(name, sizeof name, "q%d", i);
        k = drv_test_cluster_owner(&w->cl, 0, queue_slot(name));
        assert_true(k >= 0);
        if (w->q[k][0] == '\0') {
            snprintf(w->q[k], sizeof w->q[k], "%s", name);
            w->slot[k] = queue_slot(name);
            found++;
        }
    }
    assert_int_equal(found, DRV_TEST_CLUSTER_NODES);
    *st = w;
    return 0;
}

static int
teardown(void **st)
{
    struct world *w = *st;

    drv_test_droverd_free(w->t);
    drv_test_cluster_stop(&w->cl);
    drv_test_watchdog_stop();
    free(w);
    return 0;
}

/* Write the droverd config: the cluster's nodes, no host in the URL, the
 * world's three queues. */
static void
write_config(struct world *w, const char *worker, const char *jobs)
{
    char nodes[512], body[4096];

    snprintf(nodes, sizeof nodes, "  cluster:\n    nodes: %s\n",
             w->cl.nodes);
    snprintf(body, sizeof body, "queues: [%s, %s, %s]\njobs:\n%s",
             w->q[0], w->q[1], w->q[2], jobs);
    drv_test_droverd_config_redis(w->t, "redis:///0", nodes, worker, body);
}

/* A blocking client on the node that serves queue k now. */
static redisContext *
queue_node(struct world *w, int k)
{
    int owner = drv_test_cluster_owner(&w->cl, 0, w->slot[k]);

    assert_true(owner >= 0);
    return drv_test_cluster_node(&w->cl, owner);
}

/* HGET t:{Q}:stats FIELD of queue k, on the node that serves it now. */
static long long
qstat(struct world *w, int k, const char *field)
{
    redisContext *c = queue_node(w, k);
    long long v = drv_test_num_on(c, "HGET t:{%s}:stats %s", w->q[k], field);

    redisFree(c);
    return v;
}

/* XADD n jobs "e" with ids <prefix><i> to queue k, on its node. */
static void
add_jobs(struct world *w, int k, const char *prefix, int from, int n)
{
    redisContext *c = queue_node(w, k);
    int i;

    for (i = from; i < from + n; i++) {
        redisReply *r = drv_test_redis_cmd(c, "XADD t:{%s}:jobs * job e "
                                           "id %s%d", w->q[k], prefix, i);

        if (r->type == REDIS_REPLY_ERROR)
            fail_msg("XADD: %s", r->str);
        freeReplyObject(r);
    }
    redisFree(c);
}

/* ---------------------------------------------------------------- tests */

static void
test_cluster_slots_match_keyslot(void **st)
{
    struct world *w = *st;
    const char *keys[] = {"t:{default}:jobs", "t:{q1}:delayed",
                          "drover:{emails}:stats", "t:workers",
                          "{}x", "a{b", "123456789"};
    size_t i;
    int k;

    for (i = 0; i < DRV_ARRAY_LEN(keys); i++)
        assert_int_equal(drv_redis_cluster_slot(keys[i], strlen(keys[i])),
                         drv_test_cluster_keyslot(&w->cl, keys[i]));
    /* the three queues of the world live on three masters */
    for (k = 0; k < DRV_TEST_CLUSTER_NODES; k++) {
        char key[64];

        snprintf(key, sizeof key, "t:{%s}:jobs", w->q[k]);
        assert_int_equal(drv_test_cluster_keyslot(&w->cl, key), w->slot[k]);
        assert_int_equal(drv_test_cluster_owner(&w->cl, 1, w->slot[k]), k);
    }
}

static void
test_cluster_queues_drain_on_their_masters(void **st)
{
    struct world *w = *st;
    int k;

    write_config(w, "  concurrency: 16\n",
                 "  e: {handler: echo, result_ttl: 1h}\n");
    drv_test_droverd_start(w->t, 0);
    for (k = 0; k < DRV_TEST_CLUSTER_NODES; k++)
        add_jobs(w, k, "j", 0, 300);
    for (k = 0; k < DRV_TEST_CLUSTER_NODES; k++)
        wait_until_num(qstat(w, k, "processed"), ==, 300,
                       "jobs processed of the queue");
    for (k = 0; k < DRV_TEST_CLUSTER_NODES; k++) {
        redisContext *c = drv_test_cluster_node(&w->cl, k);

        /* each queue's keys are on its own master, nothing pending */
        assert_int_equal(drv_test_num_on(c, "EXISTS t:{%s}:result:j299",
                                         w->q[k]), 1);
        assert_int_equal(drv_test_num_on(c, "XLEN t:{%s}:dead", w->q[k]),
                         0);
        redisFree(c);
        assert_int_equal(qstat(w, k, "failed"), 0);
    }
    drv_test_droverd_stop(w->t, 0, 0);
    /* the data connections waited for the slot map quietly: no failed
     * attempts to warn about at start */
    assert_false(drv_test_file_contains(w->t->log, "redis connect failed"));
}

/* Run `drover -c CFG ARGS...` (NULL-terminated, at most 15); its exit
 * code, its stdout into out. */
static int
cli(struct world *w, char *out, size_t n, ...)
{
    const char *args[16];
    struct drv_test_cli r;
    va_list ap;
    int i = 0, status;

    va_start(ap, n);
    while (i < 15 && (args[i] = va_arg(ap, const char *)) != NULL)
        i++;
    va_end(ap);
    args[i] = NULL;
    drv_test_cli_run(&r, w->t->dir, w->t->cfg, NULL, args);
    snprintf(out, n, "%s", r.out);
    status = r.status;
    drv_test_cli_fini(&r);
    return status;
}

/* `drover ARGS...` must exit 0; its stdout into out. */
#define CLI_OK(w, out, ...)                                               \
    do {                                                                  \
        int rc_ = cli((w), (out), sizeof(out), __VA_ARGS__, NULL);        \
        if (rc_ != 0)                                                     \
            fail_msg("drover exit %d: %s", rc_, (out));                   \
    } while (0)

static void
test_cluster_cli_on_every_queue(void **st)
{
    struct world *w = *st;
    char out[16384], key[64];
    int k;

    write_config(w, "  concurrency: 4\n",
                 "  e: {handler: echo, result_ttl: 1h}\n"
                 "  f: {handler: fail, retries: 0}\n");
    /* enqueue through the CLI: each job lands on its queue's master */
    for (k = 0; k < DRV_TEST_CLUSTER_NODES; k++) {
        char id[32];
        redisContext *c = drv_test_cluster_node(&w->cl, k);

        snprintf(id, sizeof id, "c%d", k);
        CLI_OK(w, out, "enqueue", w->q[k], "e", "x=1", "--id", id);
        CLI_OK(w, out, "enqueue", w->q[k], "f", "--id", "bad");
        snprintf(key, sizeof key, "t:{%s}:jobs", w->q[k]);
        assert_int_equal(drv_test_num_on(c, "XLEN %s", key), 2);
        redisFree(c);
    }
    /* nothing runs yet: stats of the three queues, from three masters */
    CLI_OK(w, out, "stats", "--json");
    for (k = 0; k < DRV_TEST_CLUSTER_NODES; k++)
        assert_non_null(strstr(out, w->q[k]));
    assert_non_null(strstr(out, "\"ready\":2"));
    assert_null(strstr(out, "\"ready\":0"));
    drv_test_droverd_start(w->t, 0);
    for (k = 0; k < DRV_TEST_CLUSTER_NODES; k++) {
        wait_until_num(qstat(w, k, "processed"), ==, 1, "processed");
        wait_until_num(qstat(w, k, "dead"), ==, 1, "dead");
    }
    for (k = 0; k < DRV_TEST_CLUSTER_NODES; k++) {
        char id[32];

        snprintf(id, sizeof id, "c%d", k);
        CLI_OK(w, out, "result", w->q[k], id, "--json");
        assert_non_null(strstr(out, "x"));
        CLI_OK(w, out, "dead", "list", w->q[k], "--json");
        assert_non_null(strstr(out, "\"bad\""));
        CLI_OK(w, out, "dead", "retry", w->q[k], "--all");
    }
    /* retried: failed and dead once more */
    for (k = 0; k < DRV_TEST_CLUSTER_NODES; k++)
        wait_until_num(qstat(w, k, "dead"), ==, 2, "dead");
    CLI_OK(w, out, "workers", "--json");
    assert_non_null(strstr(out, w->q[2]));
    drv_test_droverd_stop(w->t, 0, 0);
    /* doctor: the cluster is ok and names each queue's master (its exit
     * may be 1 for the test nodes' missing AOF) */
    (void)cli(w, out, sizeof out, "doctor", NULL);
    fprintf(stderr, "drover doctor on the cluster:\n%s", out);
    assert_non_null(strstr(out, "ok: cluster_state ok"));
    for (k = 0; k < DRV_TEST_CLUSTER_NODES; k++) {
        char line[128];

        snprintf(line, sizeof line, "ok: queue %s: hash slot %d on master "
                 "127.0.0.1:%d", w->q[k], w->slot[k], w->cl.port[k]);
        assert_non_null(strstr(out, line));
    }
    /* a slot no master serves (forgotten by every node): the doctor says
     * so */
    {
        char line[128];

        drv_test_cluster_forget_slot(&w->cl, w->slot[2]);
        /* every node refuses commands now (CLUSTERDOWN): the doctor
         * reports it at once instead of waiting for the cluster */
        wait_until(cli(w, out, sizeof out, "doctor", NULL) == 1 &&
                   strstr(out, "served by no master") != NULL,
                   "doctor to find the slot unserved: %s", out);
        assert_non_null(strstr(out, "problem: cluster_state fail"));
        snprintf(line, sizeof line, "problem: queue %s: its hash slot %d is "
                 "served by no master", w->q[2], w->slot[2]);
        assert_non_null(strstr(out, line));
    }
}

/* GET (or POST with the CSRF header) on drover web: status 200 wanted;
 * the body into out. */
static void
web_call(int port, const char *method, const char *path, const char *hdrs,
         const char *body, char *out, size_t n)
{
    int st = drv_test_http(port, method, path, hdrs, body, out, n);

    if (st != 200)
        fail_msg("%s %s: status %d: %s", method, path, st, out);
}

static void
test_cluster_web_api_on_every_queue(void **st)
{
    struct world *w = *st;
    struct drv_test_proc web;
    static char out[65536];
    char path[128], want[128], hdr[160], csrf[80], log[400];
    const char *p;
    int k, port;

    write_config(w, "  concurrency: 4\n",
                 "  e: {handler: echo, result_ttl: 1h}\n"
                 "  f: {handler: fail, retries: 0}\n");
    /* per queue: one done job, one dead, then 2 + k waiting */
    drv_test_droverd_start(w->t, 0);
    for (k = 0; k < DRV_TEST_CLUSTER_NODES; k++) {
        redisContext *c = queue_node(w, k);

        drv_test_redis_ok(c, "XADD t:{%s}:jobs * job e id done%d x 1",
                          w->q[k], k);
        drv_test_redis_ok(c, "XADD t:{%s}:jobs * job f id bad%d", w->q[k],
                          k);
        redisFree(c);
    }
    for (k = 0; k < DRV_TEST_CLUSTER_NODES; k++) {
        wait_until_num(qstat(w, k, "processed"), ==, 1, "processed");
        wait_until_num(qstat(w, k, "dead"), ==, 1, "dead");
    }
    drv_test_droverd_stop(w->t, 0, 0);
    for (k = 0; k < DRV_TEST_CLUSTER_NODES; k++)
        add_jobs(w, k, "w", 0, 2 + k);

    memset(&web, 0, sizeof web);
    port = drv_test_web_start(w->t, &web, log, sizeof log);
    /* counts of three queues, each read on its own master */
    web_call(port, "GET", "/api/queues", NULL, NULL, out, sizeof out);
    for (k = 0; k < DRV_TEST_CLUSTER_NODES; k++) {
        snprintf(want, sizeof want, "{\"name\":\"%s\",\"ready\":%d,"
                 "\"running\":0,\"delayed\":0,\"dead\":1,", w->q[k], 2 + k);
        if (strstr(out, want) == NULL)
            fail_msg("/api/queues has no %s: %s", want, out);
    }
    web_call(port, "GET", "/api/workers", NULL, NULL, out, sizeof out);
    for (k = 0; k < DRV_TEST_CLUSTER_NODES; k++) {
        snprintf(path, sizeof path, "/api/queues/%s/dead", w->q[k]);
        web_call(port, "GET", path, NULL, NULL, out, sizeof out);
        snprintf(want, sizeof want, "\"bad%d\"", k);
        assert_non_null(strstr(out, want));
        snprintf(path, sizeof path, "/api/queues/%s/jobs/done%d", w->q[k],
                 k);
        web_call(port, "GET", path, NULL, NULL, out, sizeof out);
        assert_non_null(strstr(out, "done"));
    }
    /* a write, on the third queue's master */
    web_call(port, "GET", "/api/session", NULL, NULL, out, sizeof out);
    p = strstr(out, "\"csrf\":\"");
    assert_non_null(p);
    snprintf(csrf, sizeof csrf, "%.64s", p + 8);
    snprintf(hdr, sizeof hdr, "X-CSRF-Token: %s\r\n", csrf);
    snprintf(path, sizeof path, "/api/queues/%s/dead/retry", w->q[2]);
    web_call(port, "POST", path, hdr, "{\"all\":true}", out, sizeof out);
    web_call(port, "GET", "/api/queues", NULL, NULL, out, sizeof out);
    snprintf(want, sizeof want, "{\"name\":\"%s\",\"ready\":5,"
             "\"running\":0,\"delayed\":0,\"dead\":0,", w->q[2]);
    if (strstr(out, want) == NULL)
        fail_msg("/api/queues after the retry has no %s: %s", want, out);
    drv_test_kill(&web, SIGTERM);
    assert_int_equal(drv_test_wait(&web, DRV_TEST_WAIT_MS), 0);
}

/* Queue k's delayed set on its master: n more members (due in the year
 * 5138), named <prefix><i>. */
static void
add_delayed(struct world *w, int k, const char *prefix, int n)
{
    redisContext *c = queue_node(w, k);
    int i;

    for (i = 0; i < n; i++)
        drv_test_redis_ok(c, "ZADD t:{%s}:delayed 99999999999999 %s%d",
                          w->q[k], prefix, i);
    redisFree(c);
}

/* Wait until /metrics on port shows drover_queue_delayed of queue k at
 * want. */
static void
wait_delayed(struct world *w, int port, int k, int want)
{
    char series[96];

    snprintf(series, sizeof series, "drover_queue_delayed{queue=\"%s\"}",
             w->q[k]);
    drv_test_wait_metric(port, series, want);
}

static void
test_cluster_metrics_sample_every_queue(void **st)
{
    struct world *w = *st;
    char out[4096], worker[128], line[96];
    int k, port = drv_test_free_port();
    const int paused = 1;

    snprintf(worker, sizeof worker, "  concurrency: 4\n"
             "  metrics: 127.0.0.1:%d\n", port);
    write_config(w, worker, "  e: {handler: echo}\n");
    /* queue k: 2 + 3k delayed jobs on its own master, a count no other
     * queue has */
    for (k = 0; k < DRV_TEST_CLUSTER_NODES; k++)
        add_delayed(w, k, "d", 2 + 3 * k);
    drv_test_droverd_start(w->t, 0);
    /* each queue's sample comes back on its own connection, from its own
     * master, into its own gauges */
    for (k = 0; k < DRV_TEST_CLUSTER_NODES; k++)
        wait_delayed(w, port, k, 2 + 3 * k);

    /* pause one queue with the CLI: the worker reads the paused key on
     * that queue's master, and only that queue is paused */
    CLI_OK(w, out, "pause", w->q[paused]);
    snprintf(line, sizeof line, "msg=\"queue paused\" queue=%s",
             w->q[paused]);
    drv_test_wait_log(w->t, line, 1);
    for (k = 0; k < DRV_TEST_CLUSTER_NODES; k++) {
        snprintf(line, sizeof line, "msg=\"queue paused\" queue=%s",
                 w->q[k]);
        assert_int_equal(drv_test_file_contains(w->t->log, line),
                         k == paused);
    }
    CLI_OK(w, out, "resume", w->q[paused]);
    snprintf(line, sizeof line, "msg=\"queue resumed\" queue=%s",
             w->q[paused]);
    drv_test_wait_log(w->t, line, 1);

    /* later rounds sample again: queue k gets k + 1 more */
    for (k = 0; k < DRV_TEST_CLUSTER_NODES; k++)
        add_delayed(w, k, "more", k + 1);
    for (k = 0; k < DRV_TEST_CLUSTER_NODES; k++)
        wait_delayed(w, port, k, 2 + 3 * k + k + 1);
    drv_test_droverd_stop(w->t, 0, 0);
}

#define NJOBS 1500

/* Results of queue k's jobs j<i> on the node serving it now, by number,
 * into results[]; how many jobs have one. */
static int
tally(struct world *w, int k, int *results)
{
    redisContext *c = queue_node(w, k);
    redisReply *r = redisCommand(c, "KEYS t:{%s}:result:j*", w->q[k]);
    size_t i;
    int n = 0;

    assert_non_null(r);
    memset(results, 0, NJOBS * sizeof *results);
    for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        int j = atoi(strstr(r->element[i]->str, ":result:j") + 9);

        if (j >= 0 && j < NJOBS && results[j]++ == 0)
            n++;
    }
    freeReplyObject(r);
    redisFree(c);
    return n;
}

/* Extra starts of job entries in the trace (none is re-enqueued, so a
 * second start is a redelivery); all starts into *total. */
static int
duplicate_starts(const char *trace, int *total)
{
    char line[256], (*seen)[48] = calloc(4 * NJOBS, sizeof *seen);
    FILE *fp = fopen(trace, "r");
    int n = 0, i, dup = 0;

    assert_non_null(fp);
    assert_non_null(seen);
    *total = 0;
    while (fgets(line, sizeof line, fp) != NULL) {
        char *id = strrchr(line, ' ');

        (*total)++;
        if (id == NULL)
            continue;
        id[strcspn(id, "\n")] = '\0';
        for (i = 0; i < n; i++)
            if (strcmp(seen[i], id + 1) == 0)
                break;
        if (i < n)
            dup++;
        else if (n < 4 * NJOBS)
            snprintf(seen[n++], sizeof seen[0], "%s", id + 1);
    }
    fclose(fp);
    free(seen);
    return dup;
}

/* A client named drover-cmd-*-q<k> (queue k's command connection) is
 * connected to node i. */
static int
queue_conn_on(struct world *w, int i, int k)
{
    redisContext *c = drv_test_cluster_node(&w->cl, i);
    struct drv_test_client cl[DRV_TEST_CLIENTS_MAX];
    int j, n = drv_test_clients(c, cl, DRV_TEST_CLIENTS_MAX), found = 0;
    char want[32];

    snprintf(want, sizeof want, "-q%d", k);
    for (j = 0; j < n; j++) {
        size_t len = strlen(cl[j].name);

        if (strncmp(cl[j].name, "drover-cmd-", 11) == 0 &&
            len > strlen(want) &&
            strcmp(cl[j].name + len - strlen(want), want) == 0)
            found = 1;
    }
    redisFree(c);
    return found;
}

static void
test_cluster_slot_migration_loses_no_job(void **st)
{
    struct world *w = *st;
    static int results[NJOBS];
    const int to = 1;
    int i, moved, total, dup;
    long long asking0, asked;
    redisContext *c;

    write_config(w, "  concurrency: 8\n",
                 "  s: {handler: sleep, result_ttl: 1h}\n"
                 "  e: {handler: echo, result_ttl: 1h}\n");
    drv_test_droverd_start(w->t, 0);
    /* queue 0 (on node 0): NJOBS jobs of 10..29 ms, about 4 s of work */
    c = queue_node(w, 0);
    for (i = 0; i < NJOBS - 100; i++)
        redisAppendCommand(c, "XADD t:{%s}:jobs * job s id j%d ms %d",
                           w->q[0], i, 10 + i % 20);
    for (i = 0; i < NJOBS - 100; i++) {
        redisReply *r = NULL;

        assert_int_equal(redisGetReply(c, (void **)&r), REDIS_OK);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        freeReplyObject(r);
    }
    redisFree(c);
    wait_until_num(qstat(w, 0, "processed"), >=, 200,
                   "jobs processed before the migration");
    /* move the queue's slot to node 1 while its jobs run */
    asking0 = drv_test_cluster_cmd_calls(&w->cl, to, "asking");
    drv_test_cluster_migrate_begin(&w->cl, w->slot[0], to);
    moved = drv_test_cluster_migrate_keys(&w->cl, w->slot[0], to);
    /* the keys are on node 1, the slot still node 0's: droverd's
     * commands get -ASK there and go to node 1 after ASKING (nobody else
     * sends ASKING here) */
    wait_until_num(drv_test_cluster_cmd_calls(&w->cl, to, "asking") - asking0, >, 0,
                   "ASKING calls on the importing node");
    wait_until(drv_test_file_contains(w->t->log, "ASK: sending the "
                                      "command to the node importing"),
               "droverd to log the ASK it followed");
    asked = drv_test_cluster_cmd_calls(&w->cl, to, "asking") - asking0;
    drv_test_cluster_migrate_end(&w->cl, w->slot[0], to);
    fprintf(stderr, "slot %d moved to node %d with %d keys while jobs ran "
            "(%lld processed, %lld ASKING from droverd)\n", w->slot[0], to,
            moved, qstat(w, 0, "processed"), asked);
    assert_true(moved > 0);
    /* droverd follows the slot: MOVED, then its connections on node 1 */
    wait_until(queue_conn_on(w, to, 0), "queue 0's connection on node %d",
               to);
    /* jobs enqueued on the new owner run too */
    add_jobs(w, 0, "j", NJOBS - 100, 100);
    wait_until_num(tally(w, 0, results), ==, NJOBS,
                   "jobs with a result on the new owner");
    wait_until_num(qstat(w, 0, "processed"), >=, NJOBS, "processed");
    c = drv_test_cluster_node(&w->cl, to);
    wait_until_num(drv_test_num_on(c, "XLEN t:{%s}:dead", w->q[0]), ==, 0,
                   "dead entries");
    redisFree(c);
    drv_test_droverd_stop(w->t, 0, 0);
    dup = duplicate_starts(w->t->trace, &total);
    fprintf(stderr, "slot migration run: %d jobs, 0 lost, %d duplicate "
            "starts (%d starts), %lld processed\n", NJOBS, dup, total,
            qstat(w, 0, "processed"));
    assert_int_equal(dup, 0);
    assert_true(drv_test_file_contains(w->t->log, "cluster slot served "
                                       "elsewhere: reconnecting") ||
                drv_test_file_contains(w->t->log, "MOVED: following"));
    /* nothing of the queue is left on node 0 */
    c = drv_test_cluster_node(&w->cl, 0);
    assert_int_equal(drv_test_num_on(c, "CLUSTER COUNTKEYSINSLOT %d",
                                     w->slot[0]), 0);
    redisFree(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cluster_slots_match_keyslot,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_cluster_queues_drain_on_their_masters, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_cluster_slot_migration_loses_no_job, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_cli_on_every_queue,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_cluster_web_api_on_every_queue,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_cluster_metrics_sample_every_queue, setup, teardown),
    };

    drv_test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
