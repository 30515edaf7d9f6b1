/*
 * test_acl.c -- droverd, every drover command and `drover web` under the
 * ACL rule the documentation gives, and `drover doctor` against a Redis
 * set up well and one set up badly.
 *
 * The harness's redis-server gets, per test, the user drover created
 * from drv_queue_acl_rule (the same function `drover doctor --acl-rule`
 * prints and the documentation's line is compared with), an admin user,
 * and the default user switched off, so nothing can fall back to it
 * (connections made before keep working: the fixture's client is one,
 * and the teardown switches default on again with it). droverd and drover
 * connect as redis://drover@127.0.0.1:PORT with the password in
 * DROVER_REDIS_PASSWORD.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "droverd.h"
#include "drover/buf.h"
#include "drover/common.h"
#include "drover/doctor.h"

#define PW "acl-Pw-7f3e0c"
#define ADMIN_PW "admin-Pw-91c2d4"
/* the documents that show the rule line: it must be exactly the tested one */
static const char *const docs[] = {"doc/redis-deployments-acl.md"};

static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-acl",
    .prefix = "drover",
    .log_level = "info",
    .worker_defaults = "  shutdown_timeout: 300ms\n"
                       "  visibility_timeout: 1s\n",
    .body_head = NULL,
    .tail_lines = 60,
};

static const char body[] =
    "queues: [default, low]\n"
    "jobs:\n"
    "  ok: {handler: echo, result_ttl: 1h}\n"
    "  bad: {handler: fail, retries: 1, backoff: 10ms, result_ttl: 1h}\n"
    "  s: {handler: sleep}\n"
    "  list: {handler: exec, command: [printf, \"[1,2]\"]}\n"
    "pipelines:\n"
    "  p: {steps: [ok, ok], result_ttl: 1h}\n"
    "  g:\n    graph:\n"
    "      a: {job: list}\n"
    "      f: {job: ok, needs: a, for_each: \"{input}\"}\n"
    "      z: {job: ok, needs: f}\n";

/* drv_test_srv, with the drover user's URL (the fixture writes it into
 * the config). */
static struct drv_test_redis acl_srv;

/* ----------------------------------------------------------------- users */

/* Run a command given as one line of words (no quoting) on t's client;
 * assert +OK. */
static void
cmd_words(struct drv_test_droverd *t, const char *line)
{
    char *copy = strdup(line), *w, *save = NULL;
    const char *argv[128];
    redisReply *r;
    int n = 0;

    for (w = strtok_r(copy, " ", &save); w != NULL && n < 128;
         w = strtok_r(NULL, " ", &save))
        argv[n++] = w;
    r = redisCommandArgv(t->c, n, argv, NULL);
    assert_non_null(r);
    if (r->type != REDIS_REPLY_STATUS)
        fail_msg("%s: %s", line, r->str ? r->str : "?");
    freeReplyObject(r);
    free(copy);
}

/*
 * The drover user from the documented rule (without the rule word
 * leave_out, when not NULL), an admin, and the default user off.
 */
static void
create_users(struct drv_test_droverd *t, const char *leave_out)
{
    struct drv_buf b;
    char *p;

    drv_buf_init(&b);
    drv_queue_acl_rule(&b, "drover", PW, "drover");
    if (leave_out != NULL) {
        p = strstr(b.data, leave_out);
        assert_non_null(p);
        assert_true(p[-1] == ' ' &&
                    (p[strlen(leave_out)] == ' ' ||
                     p[strlen(leave_out)] == '\0'));
        memset(p, ' ', strlen(leave_out));
    }
    cmd_words(t, b.data);
    drv_buf_fini(&b);
    cmd_words(t, "ACL SETUSER admin on >" ADMIN_PW " ~* &* +@all");
    cmd_words(t, "ACL SETUSER default off");
}

static int
setup(void **st)
{
    struct drv_test_droverd *t;

    acl_srv = drv_test_srv;
    snprintf(acl_srv.url, sizeof acl_srv.url,
             "redis://drover@127.0.0.1:%d/0", drv_test_srv.port);
    t = drv_test_droverd_new(&acl_srv, &opts);
    drv_test_droverd_config(t, NULL, body);
    assert_int_equal(setenv("DROVER_REDIS_PASSWORD", PW, 1), 0);
    *st = t;
    return 0;
}

static int
teardown(void **st)
{
    struct drv_test_droverd *t = *st;

    /* the fixture's client predates the ACL change: still default's */
    cmd_words(t, "ACL SETUSER default on nopass ~* &* +@all");
    freeReplyObject(redisCommand(t->c, "ACL DELUSER drover admin"));
    freeReplyObject(redisCommand(t->c, "CONFIG SET maxmemory-policy "
                                 "noeviction"));
    freeReplyObject(redisCommand(t->c, "CONFIG SET appendonly no"));
    unsetenv("DROVER_REDIS_PASSWORD");
    drv_test_droverd_free(t);
    return 0;
}

/* ----------------------------------------------------------------- drover */

/*
 * Run bin/drover -c CFG ARGS... (NULL-terminated args); assert it exits
 * with want and that its stderr says nothing of missing permissions.
 * Its stdout (caller frees).
 */
static char *
cli_run(struct drv_test_droverd *t, int want, const char *const *args)
{
    struct drv_test_cli r;

    drv_test_cli_run(&r, t->dir, t->cfg, NULL, args);
    if (strstr(r.err, "NOPERM") != NULL ||
        strstr(r.err, "no permissions") != NULL)
        fail_msg("drover %s: a command was refused\nstderr: %s", args[0],
                 r.err);
    return drv_test_cli_take(&r, want);
}

#define CLI(t, want, ...)                                                 \
    ({                                                                    \
        const char *const a_[] = {__VA_ARGS__, NULL};                     \
        cli_run((t), (want), a_);                                         \
    })

/* CLI, asserting that stdout holds part. */
#define CLI_HAS(t, part, ...)                                             \
    do {                                                                  \
        char *o_ = CLI((t), 0, __VA_ARGS__);                              \
        if (strstr(o_, (part)) == NULL)                                   \
            fail_msg("no \"%s\" in: %s", (part), o_);                     \
        free(o_);                                                         \
    } while (0)

/* No log of t's droverd processes says a permission was missing. */
static void
assert_no_noperm(struct drv_test_droverd *t)
{
    char path[512];
    int i;

    for (i = 0; i < t->nstarted; i++) {
        snprintf(path, sizeof path, "%s/droverd%d.log", t->dir, i);
        if (drv_test_file_contains(path, "NOPERM") ||
            drv_test_file_contains(path, "no permissions")) {
            drv_test_dump_log(t, path);
            fail_msg("%s: a permission was missing", path);
        }
    }
}

/* ------------------------------------------------------------------ web */

/* drover web on a free port: its process and port. */
static int
web_start(struct drv_test_droverd *t, struct drv_test_proc *p, char *log,
          size_t logn)
{
    char bin[400], *text = NULL, *at;
    const char *argv[] = {drv_test_bin("drover", bin, sizeof bin), "-c",
                          t->cfg, "web", "--listen", "127.0.0.1:0", NULL};
    int port = 0;

    snprintf(log, logn, "%s/web.log", t->dir);
    assert_int_equal(drv_test_spawn(p, argv, log, NULL), 0);
    wait_until(drv_test_file_contains(log, "dashboard at http://127.0.0.1:"),
               "drover web to print its URL");
    text = drv_test_slurp(log, NULL);
    at = strstr(text, "dashboard at http://127.0.0.1:");
    port = atoi(at + strlen("dashboard at http://127.0.0.1:"));
    free(text);
    assert_true(port > 0);
    return port;
}

/* ------------------------------------------------------------------ tests */

/*
 * Everything drover does, as the drover user: jobs that succeed, fail and
 * retry, die, wait (delayed), run as a pipeline; every CLI command and
 * its --json; pause and resume; a graceful stop that requeues; a reclaim
 * after kill -9; the dashboard's API and a dead retry through it.
 */
static void
test_acl_everything_works_under_the_rule(void **st)
{
    struct drv_test_droverd *t = *st;
    struct drv_test_proc web;
    char *o, buf[65536], hdr[160], weblog[400], csrf[80];
    const char *p;
    int port;

    create_users(t, NULL);
    drv_test_droverd_start(t, 0);

    /* jobs: ok, fail then dead, delayed, pipeline */
    o = CLI(t, 0, "enqueue", "default", "ok", "a=1", "--id", "j1");
    assert_string_equal(o, "j1\n");
    free(o);
    free(CLI(t, 0, "enqueue", "default", "bad", "--id", "b1"));
    free(CLI(t, 0, "enqueue", "default", "ok", "--delay", "300ms", "--id",
             "d1"));
    free(CLI(t, 0, "enqueue", "default", "--pipeline", "p", "--id", "p1"));
    drv_test_wait_stat(t, "default", "processed", 3);
    drv_test_wait_stat(t, "default", "dead", 1);
    assert_int_equal(drv_test_stat(t, "default", "retried"), 1);

    /* the read commands, text and JSON */
    CLI_HAS(t, "ok", "result", "default", "j1");
    CLI_HAS(t, "\"status\":\"ok\"", "result", "default", "p1", "--json");
    CLI_HAS(t, "DEAD_MAX", "stats");
    CLI_HAS(t, "\"dead_max\":10000", "stats", "--json");
    CLI_HAS(t, "STATE", "workers");
    CLI_HAS(t, "\"state\":\"ok\"", "workers", "--json");
    CLI_HAS(t, "id=b1 job=bad", "dead", "list", "default");
    CLI_HAS(t, "\"total\":1", "dead", "list", "default", "--json");
    /* dead retry: it fails again and comes back dead */
    CLI_HAS(t, "1", "dead", "retry", "default", "b1");
    drv_test_wait_stat(t, "default", "dead", 2);
    CLI_HAS(t, "0", "dead", "purge", "default", "--older-than", "1h");
    CLI_HAS(t, "1", "dead", "purge", "default");
    free(CLI(t, 0, "dead", "retry", "default", "--all"));

    /* pause and resume */
    CLI_HAS(t, "paused low", "pause", "low");
    drv_test_wait_log(t, "queue paused", 1);
    free(CLI(t, 0, "enqueue", "low", "ok", "--id", "l1"));
    CLI_HAS(t, "resumed low", "resume", "low");
    drv_test_wait_stat(t, "low", "processed", 1);

    /* the dashboard: its API, and a dead retry through it */
    free(CLI(t, 0, "enqueue", "default", "bad", "--id", "b2"));
    drv_test_wait_stat(t, "default", "dead", 3);
    port = web_start(t, &web, weblog, sizeof weblog);
    assert_int_equal(drv_test_http(port, "GET", "/api/queues", NULL, NULL,
                                   buf, sizeof buf), 200);
    assert_non_null(strstr(buf, "\"name\":\"default\""));
    assert_int_equal(drv_test_http(port, "GET", "/api/workers", NULL, NULL,
                                   buf, sizeof buf), 200);
    assert_int_equal(drv_test_http(port, "GET", "/api/queues/default/dead",
                                   NULL, NULL, buf, sizeof buf), 200);
    assert_non_null(strstr(buf, "b2"));
    assert_int_equal(drv_test_http(port, "GET", "/api/session", NULL, NULL,
                                   buf, sizeof buf), 200);
    p = strstr(buf, "\"csrf\":\"");
    assert_non_null(p);
    snprintf(csrf, sizeof csrf, "%.64s", p + 8);
    snprintf(hdr, sizeof hdr, "X-CSRF-Token: %s\r\n", csrf);
    assert_int_equal(drv_test_http(port, "POST",
                                   "/api/queues/default/dead/retry", hdr,
                                   "{\"id\": \"b2\"}", buf, sizeof buf),
                     200);
    drv_test_wait_stat(t, "default", "dead", 4);
    drv_test_kill(&web, SIGTERM);
    assert_int_equal(drv_test_wait(&web, DRV_TEST_WAIT_MS), 0);
    assert_false(drv_test_file_contains(weblog, "NOPERM"));

    /* a graceful stop puts the running jobs back */
    free(CLI(t, 0, "enqueue", "default", "s", "ms=60000"));
    free(CLI(t, 0, "enqueue", "default", "s", "ms=60000"));
    drv_test_wait_pending(t, "default", 2);
    drv_test_droverd_stop(t, 0, 0);
    assert_int_equal(drv_test_num(t, "XLEN drover:{default}:jobs"), 2);
    assert_int_equal(drv_test_num(t, "XPENDING drover:{default}:jobs "
                                  "drover"), 0);

    /* reclaim: the jobs of a worker killed with -9 run elsewhere */
    freeReplyObject(redisCommand(t->c, "XTRIM drover:{default}:jobs "
                                 "MAXLEN 0"));
    free(CLI(t, 0, "enqueue", "default", "s", "ms=1500"));
    free(CLI(t, 0, "enqueue", "default", "s", "ms=1500"));
    drv_test_droverd_start(t, 0);
    drv_test_wait_pending(t, "default", 2);
    drv_test_kill(&t->w[0], SIGKILL);
    drv_test_droverd_start(t, 1);
    drv_test_wait_stat(t, "default", "processed", 5);
    drv_test_droverd_stop(t, 1, 0);
    assert_no_noperm(t);
}

/* A user missing one command: droverd's log names it (NOPERM), and so
 * does the CLI's error. */
/* 1 when graph run g1 has ended (ok or dead). */
static int
g1_ended(struct drv_test_droverd *t)
{
    return drv_test_hget_is(t, "drover:{default}:run:g1", "status", "ok") ||
           drv_test_hget_is(t, "drover:{default}:run:g1", "status", "dead");
}

/* A graph pipeline (fan-out, fan-in, its view and cancel) as the drover
 * user: the graph scripts' own calls are in the rule. */
static void
test_acl_graph_runs_under_the_rule(void **st)
{
    struct drv_test_droverd *t = *st;

    create_users(t, NULL);
    drv_test_droverd_start(t, 0);
    free(CLI(t, 0, "enqueue", "default", "--pipeline", "g", "--id", "g1"));
    wait_until(g1_ended(t), "graph run g1 to end");
    drv_test_expect_hget(t, "drover:{default}:run:g1", "status", "ok");
    assert_int_equal(drv_test_stat(t, "default", "dead"), 0);
    CLI_HAS(t, "f", "pipeline", "default", "g1");
    free(CLI(t, 1, "pipeline", "default", "g1", "--cancel"));
    drv_test_droverd_stop(t, 0, 0);
}

static void
test_acl_missing_command_is_named(void **st)
{
    struct drv_test_droverd *t = *st;
    const char *const args[] = {"stats", NULL};
    struct drv_test_cli r;

    create_users(t, "+xreadgroup");
    drv_test_droverd_start(t, 0);
    drv_test_wait_log(t, "NOPERM", 1);
    assert_true(drv_test_file_contains(t->log, "'xreadgroup' command"));
    drv_test_droverd_stop(t, 0, 0);

    cmd_words(t, "ACL SETUSER drover -xlen");
    drv_test_cli_run(&r, t->dir, t->cfg, NULL, args);
    assert_int_equal(r.status, 1);
    if (strstr(r.err, "NOPERM") == NULL || strstr(r.err, "'xlen'") == NULL)
        fail_msg("stderr does not name xlen: %s", r.err);
    drv_test_cli_fini(&r);
}

/* The line the documentation shows is the rule these tests use. */
static void
test_acl_doc_line_is_the_rule(void **st)
{
    struct drv_buf b;
    char *doc, *p, *out;
    const char *const args[] = {"doctor", "--acl-rule", NULL};
    struct drv_test_droverd *t = *st;
    size_t i;

    drv_buf_init(&b);
    drv_queue_acl_rule(&b, "drover", "PASSWORD", "drover");
    for (i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        doc = drv_test_slurp(docs[i], NULL); /* run from the source tree */
        p = strstr(doc, b.data);
        if (p == NULL || (p != doc && p[-1] != '\n' && p[-1] != ' ') ||
            p[b.len] != '\n')
            fail_msg("%s lacks the line\n%s", docs[i], b.data);
        free(doc);
    }
    /* and `drover doctor --acl-rule` prints it (the config's prefix is
     * drover) */
    out = cli_run(t, 0, args);
    assert_true(strncmp(out, b.data, b.len) == 0 && out[b.len] == '\n');
    free(out);
    drv_buf_fini(&b);
}

/* Run drover doctor ARGS as the admin, checking the drover user; its
 * stdout (caller frees). */
static char *
doctor_admin(struct drv_test_droverd *t, int want)
{
    char url[200];

    snprintf(url, sizeof url, "redis://admin:" ADMIN_PW "@127.0.0.1:%d/0",
             drv_test_srv.port);
    return CLI(t, want, "--redis", url, "doctor", "--user", "drover");
}

static int
count(const char *s, const char *needle)
{
    int n = 0;

    while ((s = strstr(s, needle)) != NULL) {
        n++;
        s += strlen(needle);
    }
    return n;
}

/* allkeys-lru, no AOF and a user without HSET: three problems, each
 * named, exit 1. */
static void
test_acl_doctor_finds_problems(void **st)
{
    struct drv_test_droverd *t = *st;
    char *o;

    create_users(t, "+hset");
    cmd_words(t, "CONFIG SET maxmemory-policy allkeys-lru");
    cmd_words(t, "CONFIG SET appendonly no");
    o = doctor_admin(t, 1);
    if (strstr(o, "problem: maxmemory-policy allkeys-lru") == NULL ||
        strstr(o, "problem: appendonly no") == NULL ||
        strstr(o, "problem: ACL user drover may not run hset") == NULL ||
        count(o, "problem:") != 3)
        fail_msg("doctor said:\n%s", o);
    free(o);
}

/* noeviction, AOF, the full rule, a worker running: exit 0. */
static void
test_acl_doctor_passes_a_good_redis(void **st)
{
    struct drv_test_droverd *t = *st;
    char *o;

    create_users(t, NULL);
    cmd_words(t, "CONFIG SET maxmemory-policy noeviction");
    cmd_words(t, "CONFIG SET appendonly yes");
    drv_test_droverd_start(t, 0);
    wait_until_num(drv_test_num(t, "HLEN drover:workers"), ==, 1,
                   "registered workers");
    wait_until_num(drv_test_num(t, "EXISTS drover:{default}:jobs "
                                "drover:{low}:jobs"), ==, 2,
                   "the queues' streams");
    o = doctor_admin(t, 0);
    if (count(o, "problem:") != 0 ||
        strstr(o, "ok: ACL user drover may run the") == NULL ||
        strstr(o, "ok: appendonly yes") == NULL ||
        strstr(o, "ok: maxmemory-policy noeviction") == NULL ||
        strstr(o, "ok: queue default: keys of the right types, consumer "
               "group drover") == NULL ||
        strstr(o, "ok: 1 worker beating") == NULL)
        fail_msg("doctor said:\n%s", o);
    free(o);
    /* as the drover user itself: everything but its own ACL checked */
    o = CLI(t, 0, "doctor");
    if (count(o, "problem:") != 0 ||
        strstr(o, "unchecked: the permissions of ACL user drover") == NULL ||
        strstr(o, "ok: Redis ") == NULL)
        fail_msg("doctor (as drover) said:\n%s", o);
    free(o);
    drv_test_droverd_stop(t, 0, 0);
    assert_no_noperm(t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_acl_everything_works_under_the_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acl_graph_runs_under_the_rule,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_acl_missing_command_is_named,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_acl_doc_line_is_the_rule,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_acl_doctor_finds_problems,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_acl_doctor_passes_a_good_redis,
                                        setup, teardown),
    };

    drv_test_filter_from_env();
    return cmocka_run_group_tests(tests, drv_test_redis_group_setup,
                                  drv_test_redis_group_teardown);
}
