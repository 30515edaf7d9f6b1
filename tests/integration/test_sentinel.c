/*
 * test_sentinel.c -- droverd and drover on a Redis Sentinel deployment
 * (tests/harness/sentinel.h: a primary, a replica, three sentinels), each
 * test on a fresh one: jobs run through the sentinels with the first
 * sentinel down, or with one naming the replica; a forced failover, and a
 * crash of the primary, in the middle of a 2,000-job run lose no job, and
 * droverd works on the new primary soon after the switch (measured and
 * printed: the time from the sentinel's +switch-master to the first job
 * acknowledged on the new primary); `drover stats` and `drover web` work
 * through the sentinels before and after; `drover doctor` reports each
 * sentinel that is unreachable, names another primary, or sees fewer
 * sentinels than its quorum.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "droverd.h"
#include "sentinel.h"

#define NJOBS 2000
#define Q "default"

static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-st",
    .prefix = "t",
    .log_level = "info",
    .worker_defaults = "",
    .body_head = NULL,
    .tail_lines = 60,
};

/* One test's world: the deployment, a stand-in for the fixture's server
 * (node 0, where it starts), and the droverd fixture on it. */
struct world {
    struct drv_test_sentinels s;
    struct drv_test_redis srv;
    struct drv_test_droverd *t;
};

static int
setup(void **st)
{
    struct world *w = calloc(1, sizeof *w);

    assert_non_null(w);
    drv_test_watchdog_start(DRV_TEST_WATCHDOG_S);
    drv_test_sentinels_start(&w->s);
    drv_test_redis_external(&w->srv, w->s.node_port[0]);
    w->t = drv_test_droverd_new(&w->srv, &opts);
    *st = w;
    return 0;
}

static int
teardown(void **st)
{
    struct world *w = *st;

    drv_test_droverd_free(w->t);
    drv_test_sentinels_stop(&w->s);
    drv_test_watchdog_stop();
    free(w);
    return 0;
}

/* Write the droverd config: the sentinels, no host in the URL. */
static void
write_config(struct world *w, const char *worker, const char *jobs)
{
    char sentinel[512], body[4096];

    snprintf(sentinel, sizeof sentinel,
             "  sentinel:\n    master: %s\n    addrs: %s\n",
             DRV_TEST_SENTINEL_MASTER, w->s.addrs);
    snprintf(body, sizeof body, "queues: [" Q "]\njobs:\n%s", jobs);
    drv_test_droverd_config_redis(w->t, "redis:///0", sentinel, worker,
                                  body);
}

/* The queue's processed counter on c's server. */
static long long
processed(redisContext *c)
{
    return drv_test_num_on(c, "HGET t:{" Q "}:stats processed");
}

/* How many clients named drover-* are connected to c's server. */
static int
drover_clients(redisContext *c)
{
    struct drv_test_client cl[DRV_TEST_CLIENTS_MAX];
    int i, n = drv_test_clients(c, cl, DRV_TEST_CLIENTS_MAX), k = 0;

    for (i = 0; i < n; i++)
        if (strncmp(cl[i].name, "drover-", 7) == 0)
            k++;
    return k;
}

/* `drover -c CFG stats` exits 0 and names the queue and the count of
 * processed jobs, at least min. */
static void
cli_stats(struct world *w, long long min)
{
    static const char *const args[] = {"--json", "stats", NULL};
    char *out = drv_test_cli_out(w->t->dir, w->t->cfg, 0, args);
    const char *p = NULL;

    assert_non_null(strstr(out, "\"" Q "\""));
    p = strstr(out, "\"processed\":");
    assert_non_null(p);
    if (atoll(p + strlen("\"processed\":")) < min)
        fail_msg("drover stats: processed < %lld: %s", min, out);
    fprintf(stderr, "drover stats through the sentinels: %.200s\n", out);
    free(out);
}

/* GET /api/queues of the dashboard on port (with curl): it answers and
 * names the queue. */
static void
web_queues(int port)
{
    char url[128], out[8192];
    const char *argv[] = {"curl", "-sSf", "--max-time", "30", url, NULL};
    int rc;

    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/queues", port);
    rc = drv_test_run(argv, out, sizeof out, DRV_TEST_WAIT_MS);
    if (rc != 0)
        fail_msg("GET /api/queues: curl exit %d: %s", rc, out);
    assert_non_null(strstr(out, "\"" Q "\""));
    fprintf(stderr, "drover web through the sentinels: %.160s\n", out);
}

/* ---------------------------------------------------------------- tests */

static void
test_sentinel_runs_jobs_first_sentinel_down(void **st)
{
    struct world *w = *st;
    redisContext *primary = NULL;
    redisContext *replica = NULL;
    int i;

    /* the first sentinel of the list is down from the start: skipped */
    drv_test_sentinels_kill(&w->s, 0);
    write_config(w, "  concurrency: 8\n",
                 "  e: {handler: echo, result_ttl: 1h}\n");
    drv_test_droverd_start(w->t, 0);
    for (i = 0; i < 50; i++)
        freeReplyObject(drv_test_redis_cmd(w->t->c, "XADD t:{" Q "}:jobs * "
                                           "job e id j%d n %d", i, i));
    primary = drv_test_sentinels_node(&w->s, 0);
    wait_until_num(processed(primary), ==, 50, "jobs processed on the "
                   "primary");
    wait_until_num(drv_test_num_on(primary, "EXISTS t:{" Q "}:result:j49"),
                   ==, 1, "result of the last job");
    assert_true(drv_test_file_contains(w->t->log,
                                       "redis primary found (sentinel)"));
    /* both connections on the primary, none on the replica */
    wait_until_num(drover_clients(primary), >=, 2, "droverd clients on the "
                   "primary");
    replica = drv_test_sentinels_node(&w->s, 1);
    assert_int_equal(drover_clients(replica), 0);
    cli_stats(w, 50);
    drv_test_droverd_stop(w->t, 0, 0);
    redisFree(primary);
    redisFree(replica);
}

/* INFO section of c as text into out (size n). */
static void
info(redisContext *c, const char *section, char *out, size_t n)
{
    redisReply *r = redisCommand(c, "INFO %s", section);

    assert_non_null(r);
    snprintf(out, n, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
}

static void
test_sentinel_skips_a_sentinel_naming_a_replica(void **st)
{
    struct world *w = *st;
    redisContext *primary = drv_test_sentinels_node(&w->s, 0);
    redisContext *replica = drv_test_sentinels_node(&w->s, 1);
    static const char *const args[] = {"enqueue", Q, "e", NULL};
    char text[8192];
    int i;

    /* sentinel 0, asked first, names the replica; the others cannot
     * answer until it has been asked (stopped: their connections never
     * get ready) */
    drv_test_sentinels_monitor(&w->s, 0, 1);
    kill(w->s.sentinel[1].pid, SIGSTOP);
    kill(w->s.sentinel[2].pid, SIGSTOP);
    write_config(w, "  concurrency: 8\n",
                 "  e: {handler: echo, result_ttl: 1h}\n");
    drv_test_droverd_start(w->t, 0);
    for (i = 0; i < 20; i++)
        freeReplyObject(drv_test_redis_cmd(primary, "XADD t:{" Q "}:jobs * "
                                           "job e id j%d", i));
    drv_test_wait_log(w->t, "node named by the sentinel is not the primary",
                      1);
    kill(w->s.sentinel[1].pid, SIGCONT);
    kill(w->s.sentinel[2].pid, SIGCONT);
    wait_until_num(processed(primary), ==, 20,
                   "jobs processed on the primary");
    /* nothing of the queue ever ran on the replica */
    info(replica, "commandstats", text, sizeof text);
    assert_null(strstr(text, "cmdstat_xreadgroup"));
    assert_null(strstr(text, "cmdstat_evalsha"));
    info(replica, "errorstats", text, sizeof text);
    assert_null(strstr(text, "READONLY"));
    /* a write through the CLI reaches the primary too (on the replica it
     * would be refused) */
    free(drv_test_cli_out(w->t->dir, w->t->cfg, 0, args));
    wait_until_num(processed(primary), ==, 21,
                   "jobs processed on the primary");
    drv_test_droverd_stop(w->t, 0, 0);
    redisFree(primary);
    redisFree(replica);
}

static void
test_sentinel_readonly_finds_the_primary_again(void **st)
{
    struct world *w = *st;
    redisContext *n0 = drv_test_sentinels_node(&w->s, 0);
    redisContext *n1 = drv_test_sentinels_node(&w->s, 1);
    int i;

    write_config(w, "  concurrency: 8\n",
                 "  e: {handler: echo, result_ttl: 1h}\n");
    drv_test_droverd_start(w->t, 0);
    for (i = 0; i < 10; i++)
        freeReplyObject(drv_test_redis_cmd(n0, "XADD t:{" Q "}:jobs * "
                                           "job e id j%d", i));
    wait_until_num(processed(n0), ==, 10, "jobs processed on node 0");
    /* the roles swap behind the sentinels' back (they name no primary
     * meanwhile): node 0 refuses droverd's writes with READONLY */
    drv_test_sentinels_forget(&w->s);
    freeReplyObject(drv_test_redis_cmd(n1, "REPLICAOF NO ONE"));
    freeReplyObject(drv_test_redis_cmd(n0, "REPLICAOF 127.0.0.1 %d",
                                       w->s.node_port[1]));
    drv_test_wait_log(w->t, "READONLY reply: the node is a replica", 1);
    /* the sentinels name node 1 again: droverd works there */
    for (i = 0; i < DRV_TEST_SENTINELS; i++)
        drv_test_sentinels_monitor(&w->s, i, 1);
    for (i = 10; i < 20; i++)
        freeReplyObject(drv_test_redis_cmd(n1, "XADD t:{" Q "}:jobs * "
                                           "job e id j%d", i));
    wait_until_num(processed(n1), >=, 20, "jobs processed on node 1");
    assert_int_equal(drv_test_num_on(n1, "EXISTS t:{" Q "}:result:j19"), 1);
    drv_test_droverd_stop(w->t, 0, 0);
    redisFree(n0);
    redisFree(n1);
}

/* The kinds of job of the failover run, by number. */
static char
kind_of(int i)
{
    if (i % 10 == 0)
        return 'f';         /* fails once, retried once, then dead */
    if (i % 3 == 0)
        return 's';         /* sleeps 20..49 ms */
    return 'e';             /* echo: at once */
}

/* Count the result keys and the dead entries (by job id) on c into
 * results[i] / dead[i]. */
static void
tally(redisContext *c, int *results, int *dead)
{
    redisReply *r = NULL;
    size_t k, f;

    memset(results, 0, NJOBS * sizeof *results);
    memset(dead, 0, NJOBS * sizeof *dead);
    r = redisCommand(c, "KEYS t:{" Q "}:result:j*");
    assert_non_null(r);
    for (k = 0; k < r->elements; k++) {
        int i = atoi(strstr(r->element[k]->str, ":result:j") + 9);

        if (i >= 0 && i < NJOBS)
            results[i]++;
    }
    freeReplyObject(r);
    r = redisCommand(c, "XRANGE t:{" Q "}:dead - +");
    assert_non_null(r);
    for (k = 0; k < r->elements; k++) {
        redisReply *fv = r->element[k]->element[1];

        for (f = 0; f + 1 < fv->elements; f += 2)
            if (strcmp(fv->element[f]->str, "id") == 0) {
                int i = atoi(fv->element[f + 1]->str + 1);

                if (i >= 0 && i < NJOBS)
                    dead[i]++;
            }
    }
    freeReplyObject(r);
}

/* Jobs that reached their end on c: a result (e, s) or a dead entry (f). */
static int
ended(redisContext *c, int *results, int *dead)
{
    int i, n = 0;

    tally(c, results, dead);
    for (i = 0; i < NJOBS; i++)
        n += kind_of(i) == 'f' ? dead[i] > 0 : results[i] > 0;
    return n;
}

/* Enqueue the NJOBS jobs on c and wait until the replica has them; the
 * entry id of each into entry. */
static void
enqueue_all(redisContext *c, char (*entry)[48])
{
    redisReply *r = NULL;
    int i;

    for (i = 0; i < NJOBS; i++) {
        char k = kind_of(i);

        if (k == 's')
            redisAppendCommand(c, "XADD t:{" Q "}:jobs * job s id j%d ms %d",
                               i, 20 + i % 30);
        else
            redisAppendCommand(c, "XADD t:{" Q "}:jobs * job %s id j%d",
                               k == 'f' ? "f" : "e", i);
    }
    for (i = 0; i < NJOBS; i++) {
        if (redisGetReply(c, (void **)&r) != REDIS_OK)
            fail_msg("XADD %d: %s", i, c->errstr);
        if (r->type != REDIS_REPLY_STRING)
            fail_msg("XADD %d: %s", i, r->type == REDIS_REPLY_ERROR ?
                                       r->str : "not an id");
        snprintf(entry[i], sizeof entry[i], "%s", r->str);
        freeReplyObject(r);
    }
    /* a failover may lose only what did not reach the replica */
    assert_int_equal(drv_test_num_on(c, "WAIT 1 10000"), 1);
}

/* Extra starts of echo and sleep jobs in the trace (they are never
 * re-enqueued, so a second start of their entry is a redelivery); all
 * starts into *total. */
static int
duplicate_runs(const char *trace, char (*entry)[48], int *total)
{
    static int starts[NJOBS];
    char line[256];
    FILE *fp = fopen(trace, "r");
    int i, dup = 0;

    assert_non_null(fp);
    memset(starts, 0, sizeof starts);
    *total = 0;
    while (fgets(line, sizeof line, fp) != NULL) {
        char *id = strrchr(line, ' ');

        (*total)++;
        if (id == NULL)
            continue;
        id[strcspn(id, "\n")] = '\0';
        for (i = 0; i < NJOBS; i++)
            if (kind_of(i) != 'f' && strcmp(entry[i], id + 1) == 0) {
                starts[i]++;
                break;
            }
    }
    fclose(fp);
    for (i = 0; i < NJOBS; i++)
        dup += starts[i] > 1 ? starts[i] - 1 : 0;
    return dup;
}

/* READONLY error replies data node i has sent. */
static long long
readonly_replies(struct world *w, int i)
{
    redisContext *c = drv_test_sentinels_node(&w->s, i);
    redisReply *e = redisCommand(c, "INFO errorstats");
    const char *p = NULL;
    long long n = 0;

    assert_non_null(e);
    p = strstr(e->str, "errorstat_READONLY:count=");
    if (p != NULL)
        n = atoll(p + strlen("errorstat_READONLY:count="));
    freeReplyObject(e);
    redisFree(c);
    return n;
}

/*
 * A run of NJOBS jobs across a failover: forced with SENTINEL FAILOVER, or
 * (crash) the primary SIGKILLed and the sentinels failing over on their
 * own. Every job must end exactly once on the new primary (a result, or a
 * dead entry for the failing kind); extra runs are counted and printed.
 */
static void
failover_run(struct world *w, int crash)
{
    static int results[NJOBS], dead[NJOBS];
    static char entry[NJOBS][48];
    const char *how = crash ? "primary killed" : "SENTINEL FAILOVER";
    redisContext *c = w->t->c;
    redisContext *np = NULL;
    struct drv_test_proc web;
    char web_log[420];
    int64_t t0, t_switch, t_ack;
    long long before, acked, readonly = 0;
    int i, n, wport, lost = 0, dup_runs, dup_dead = 0, starts;

    write_config(w,
                 "  concurrency: 4\n  visibility_timeout: 3s\n"
                 "  max_deliveries: 10\n  shutdown_timeout: 5s\n",
                 "  e: {handler: echo, result_ttl: 1h}\n"
                 "  s: {handler: sleep, result_ttl: 1h}\n"
                 "  f: {handler: fail, retries: 1, backoff: 100ms, "
                 "backoff_max: 200ms}\n");
    enqueue_all(c, entry);
    drv_test_droverd_start(w->t, 0);
    cli_stats(w, 0);
    wport = drv_test_web_start(w->t, &web, web_log, sizeof web_log);
    web_queues(wport);
    wait_until_num(processed(c), >=, NJOBS / 5,
                   "jobs processed before the failover");
    before = processed(c);
    t0 = drv_test_now_ms();
    n = crash ? drv_test_sentinels_crash(&w->s, 0, 1, &t_switch)
              : drv_test_sentinels_failover(&w->s, 1, &t_switch);
    assert_int_equal(n, 1);
    np = drv_test_sentinels_node(&w->s, n);
    acked = processed(np);
    wait_until_num(processed(np), >, acked, "a job acked on the new "
                   "primary");
    t_ack = drv_test_now_ms();
    fprintf(stderr, "failover (%s): %lld jobs processed before; switch "
            "%lld ms after; first job acked on the new primary %lld ms "
            "after the switch\n", how, before, (long long)(t_switch - t0),
            (long long)(t_ack - t_switch));

    wait_until_num(ended(np, results, dead), ==, NJOBS,
                   "jobs ended on the new primary");
    wait_until_num(drv_test_num_on(np, "XPENDING t:{" Q "}:jobs drover"),
                   ==, 0, "pending entries");
    if (!crash)     /* the old primary became a replica of the new one */
        drv_test_sentinels_wait_replica(&w->s, 0);
    cli_stats(w, NJOBS / 2);
    web_queues(wport);
    drv_test_kill(&web, SIGTERM);
    assert_int_equal(drv_test_wait(&web, DRV_TEST_WAIT_MS), 0);
    drv_test_droverd_stop(w->t, 0, 0);

    /* every job ended exactly once; extra runs only from at-least-once */
    tally(np, results, dead);
    for (i = 0; i < NJOBS; i++) {
        if (kind_of(i) == 'f') {
            lost += dead[i] == 0;
            dup_dead += dead[i] > 1 ? dead[i] - 1 : 0;
            /* a dead job keeps a result too: it must say dead */
            if (results[i] > 0)
                assert_int_equal(drv_test_num_on(np, "EVAL %s 1 "
                    "t:{" Q "}:result:j%d", "return redis.call('HGET', "
                    "KEYS[1], 'status') == 'dead' and 1 or 0", i), 1);
        } else {
            lost += results[i] == 0;
            assert_int_equal(dead[i], 0);
        }
    }
    dup_runs = duplicate_runs(w->t->trace, entry, &starts);
    /* droverd never ran a write on a replica: no READONLY anywhere */
    if (!crash)
        readonly = readonly_replies(w, 0);
    fprintf(stderr, "failover run (%s): %d jobs, %d lost, %d duplicate "
            "runs of echo/sleep jobs, %d duplicate dead entries, %d starts "
            "in all, %lld READONLY replies on the demoted primary\n", how,
            NJOBS, lost, dup_runs, dup_dead, starts, readonly);
    assert_int_equal(lost, 0);
    assert_int_equal(readonly, 0);
    redisFree(np);
}

static void
test_sentinel_failover_mid_run_loses_nothing(void **st)
{
    failover_run(*st, 0);
}

static void
test_sentinel_primary_crash_mid_run_loses_nothing(void **st)
{
    failover_run(*st, 1);
}

/* `drover -c CFG doctor`: its stdout into out (size n); its exit code. */
static int
doctor(struct world *w, char *out, size_t n)
{
    static const char *const args[] = {"doctor", NULL};
    struct drv_test_cli r;
    int rc;

    drv_test_cli_run(&r, w->t->dir, w->t->cfg, NULL, args);
    snprintf(out, n, "%s", r.out);
    rc = r.status;
    drv_test_cli_fini(&r);
    fprintf(stderr, "drover doctor (exit %d):\n%s", rc, out);
    return rc;
}

#define assert_has(text, ...)                                             \
    do {                                                                  \
        char want_[512];                                                  \
        snprintf(want_, sizeof want_, __VA_ARGS__);                       \
        if (strstr((text), want_) == NULL)                                \
            fail_msg("doctor's report lacks '%s'", want_);                \
    } while (0)

static void
test_sentinel_doctor_reports_each_sentinel(void **st)
{
    struct world *w = *st;
    char out[16384];
    redisContext *c;
    redisReply *r;

    write_config(w, "", "  e: {handler: echo}\n");
    /* a healthy deployment: every sentinel agrees */
    doctor(w, out, sizeof out);
    assert_has(out, "ok: the 3 sentinels of %s answer, each names "
               "127.0.0.1:%d as the primary and sees 3 sentinels (quorum "
               "2)", DRV_TEST_SENTINEL_MASTER, w->s.node_port[0]);
    assert_null(strstr(out, "problem: sentinel"));

    /* sentinel 1 with a quorum it can never reach */
    c = redisConnect("127.0.0.1", w->s.port[1]);
    assert_true(c != NULL && c->err == 0);
    r = redisCommand(c, "SENTINEL SET %s quorum 4", DRV_TEST_SENTINEL_MASTER);
    assert_true(r != NULL && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(c);
    /* sentinel 2 naming the replica (a stale or misconfigured one) */
    drv_test_sentinels_monitor(&w->s, 2, 1);
    /* sentinel 0 down */
    drv_test_sentinels_kill(&w->s, 0);

    assert_int_equal(doctor(w, out, sizeof out), 1);
    assert_has(out, "problem: sentinel 127.0.0.1:%d: unreachable: ",
               w->s.port[0]);
    assert_has(out, "problem: sentinel 127.0.0.1:%d sees 3 sentinels "
               "(itself included), fewer than its quorum 4", w->s.port[1]);
    assert_has(out, "problem: sentinel 127.0.0.1:%d names 127.0.0.1:%d as "
               "the primary of %s, not 127.0.0.1:%d", w->s.port[2],
               w->s.node_port[1], DRV_TEST_SENTINEL_MASTER,
               w->s.node_port[0]);
    assert_null(strstr(out, "ok: the 3 sentinels"));

    /* no sentinel names a primary: the sentinels' lines say why */
    drv_test_sentinels_forget(&w->s);
    assert_int_equal(doctor(w, out, sizeof out), 1);
    assert_has(out, "problem: sentinel 127.0.0.1:%d: it monitors no master "
               "of that name", w->s.port[1]);
    assert_has(out, "problem: sentinel 127.0.0.1:%d: it monitors no master "
               "of that name", w->s.port[2]);
    assert_has(out, "problem: only 0 of the 3 sentinels of %s name a "
               "primary", DRV_TEST_SENTINEL_MASTER);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_sentinel_runs_jobs_first_sentinel_down, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_sentinel_skips_a_sentinel_naming_a_replica, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_sentinel_readonly_finds_the_primary_again, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_sentinel_failover_mid_run_loses_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_sentinel_primary_crash_mid_run_loses_nothing, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_sentinel_doctor_reports_each_sentinel, setup, teardown),
    };

    drv_test_filter_from_env();
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
