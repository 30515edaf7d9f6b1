/*
 * test_graph_view.c -- a graph run as people look at it, on a real
 * droverd and a real redis-server: `drover wait` on a run (waiting from
 * before the run starts until it ends; ok, dead, cancelled, timed out,
 * with the job case's exit codes), and the dashboard's
 * GET /api/queues/Q/runs/ID from a real `drover web` (node states,
 * needs, fan-out progress, compensation, hostile ids and errors escaped,
 * 404 for no run). The page's drawing of it is checked in chromium by
 * tests/browser/test_dashboard.py.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "droverd.h"

static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-gv",
    .prefix = "t",
    .log_level = "debug",
    .worker_defaults = "  shutdown_timeout: 5s\n",
    .body_head = NULL,
    .tail_lines = 30,
};

/* a diamond with a fan-out in the middle and a compensation node; a
 * pipeline whose only node dies; one whose node holds until released */
static void
config(struct drv_test_droverd *t)
{
    char body[4096];

    snprintf(body, sizeof body,
             "queues: [default]\n"
             "jobs:\n"
             "  first: {handler: exec, command: [printf, '[1,2,3]']}\n"
             "  item: {handler: exec, command: [sh, -c, 'printf \"i%%s\" "
             "\"$1\"', sh, '{item}']}\n"
             "  plain: {handler: exec, command: [printf, c]}\n"
             "  join: {handler: exec, command: [printf, d]}\n"
             "  undo: {handler: exec, command: [printf, undone]}\n"
             "  bad:\n    handler: exec\n"
             "    command: [sh, -c, 'echo \"no \\\"way\\\" <b>here</b>\" "
             ">&2; exit 3']\n"
             "  hold:\n    handler: exec\n"
             "    command: [sh, -c, 'while [ ! -e %s/release ]; do "
             "sleep 0.02; done']\n"
             "pipelines:\n"
             "  diamond:\n    retries: 0\n    graph:\n"
             "      a: {job: first}\n"
             "      b: {job: item, needs: a, for_each: \"{input}\", "
             "max_parallel: 2}\n"
             "      c: {job: plain, needs: a}\n"
             "      d: {job: join, needs: [b, c]}\n"
             "      undo: {job: undo, on_failure: true}\n"
             "  broken:\n    retries: 0\n    graph:\n"
             "      x: {job: bad}\n"
             "      y: {job: plain, needs: x}\n"
             "      undo: {job: undo, on_failure: true}\n"
             "  held:\n    graph:\n"
             "      h: {job: hold}\n"
             "      after: {job: plain, needs: h}\n",
             t->dir);
    drv_test_droverd_config(t, "  concurrency: 2\n", body);
}

/* ------------------------------------------------------------ helpers */

/* Start `drover -c CFG wait default ID [A1 [A2 [--json]]]` in the
 * background; its stdout to dir/NAME.out, stderr to dir/NAME.err. NAME
 * ending in "j" adds --json. */
static void
wait_spawn(struct drv_test_droverd *t, struct drv_test_proc *p,
           const char *name, const char *id, const char *a1, const char *a2)
{
    char bin[400], out[400], err[400];
    int json = name[strlen(name) - 1] == 'j';
    const char *argv[] = {drv_test_bin("drover", bin, sizeof bin), "-c",
                          t->cfg, "wait", "default", id,
                          json ? "--json" : a1, json ? a1 : a2,
                          json ? a2 : NULL, NULL};

    snprintf(out, sizeof out, "%s/%s.out", t->dir, name);
    snprintf(err, sizeof err, "%s/%s.err", t->dir, name);
    assert_int_equal(drv_test_spawn_io(p, argv, out, err, NULL), 0);
}

/* drover wait default ID ARGS to completion (NAME ending in "j" adds
 * --json, as for wait_spawn): its exit code; stdout and stderr into *out
 * and *err (caller frees). */
static int
wait_run(struct drv_test_droverd *t, const char *name, const char *id,
         const char *a1, const char *a2, char **out, char **err)
{
    int json = name[strlen(name) - 1] == 'j';
    const char *args[] = {"wait", "default", id, json ? "--json" : a1,
                          json ? a1 : a2, json ? a2 : NULL, NULL};
    struct drv_test_cli r;

    drv_test_cli_run(&r, t->dir, t->cfg, NULL, args);
    *out = r.out;
    *err = r.err;
    return r.status;
}

static void
expect_in(const char *what, const char *text, const char *needle)
{
    if (strstr(text, needle) == NULL)
        fail_msg("%s lacks %s; it is: %s", what, needle, text);
}

static int
run_status_is(struct drv_test_droverd *t, const char *id, const char *want)
{
    char key[256];

    snprintf(key, sizeof key, "t:{default}:run:%s", id);
    return drv_test_hget_is(t, key, "status", want);
}

/* `drover web` on t's config, listening on a free loopback port. */
struct web {
    struct drv_test_proc proc;
    char log[400];
    int port;
};

static void
web_start(struct drv_test_droverd *t, struct web *w)
{
    char bin[400], listen[64];
    const char *argv[] = {drv_test_bin("drover", bin, sizeof bin), "-c",
                          t->cfg, "web", "--listen", listen, NULL};
    struct drv_test_poll poll;

    w->port = drv_test_free_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%d", w->port);
    snprintf(w->log, sizeof w->log, "%s/web.log", t->dir);
    assert_int_equal(drv_test_spawn(&w->proc, argv, w->log, NULL), 0);
    drv_test_poll_init(&poll, DRV_TEST_WAIT_MS);
    /* the log appears when drover web first writes to it */
    while (!drv_test_file_contains(w->log, "dashboard at "))
        if (!drv_test_poll_next(&poll))
            fail_msg("drover web printed no URL (log %s)", w->log);
}

static void
web_stop(struct web *w)
{
    drv_test_kill(&w->proc, SIGTERM);
    assert_int_equal(drv_test_wait(&w->proc, DRV_TEST_WAIT_MS), 0);
}

/* GET path: the status; the body (after the head) into out. */
static int
get(const struct web *w, const char *path, char *out, size_t n)
{
    char *raw = malloc(1 << 16), *body;
    int st = drv_test_http(w->port, "GET", path, NULL, NULL, raw, 1 << 16);

    body = strstr(raw, "\r\n\r\n");
    snprintf(out, n, "%s", body != NULL ? body + 4 : "");
    free(raw);
    return st;
}

/* ---------------------------------------------------------------- tests */

/*
 * drover wait on a run enqueued while no worker runs: it waits through
 * the run's start (its first entry leaves the stream) to its end, then
 * prints the outcome and each node's state; exit 0. The dashboard's API
 * shows the same run, node by node.
 */
static void
test_graph_view_wait_and_api_diamond(void **st)
{
    struct drv_test_droverd *t = *st;
    struct drv_test_proc p;
    struct web w;
    char path[400], body[16384];
    char *out = NULL, *err = NULL;

    config(t);
    drv_test_xadd(t, "default", NULL, 0, "pipeline", "diamond", "id", "r1",
                  NULL);
    wait_spawn(t, &p, "w1", "r1", "--timeout", "60s");
    wait_until(drv_test_numsub(t, "t:{default}:done") == 1,
               "drover wait to subscribe");
    drv_test_droverd_start(t, 0);
    assert_int_equal(drv_test_wait(&p, DRV_TEST_WAIT_MS), 0);
    snprintf(path, sizeof path, "%s/w1.out", t->dir);
    out = drv_test_slurp(path, NULL);
    expect_in("drover wait r1", out, "status: ok\n");
    expect_in("drover wait r1", out, "result: d\n");
    expect_in("drover wait r1", out,
              "nodes: a=ok b=ok c=ok d=ok undo=standby\n");
    free(out);
    assert_true(run_status_is(t, "r1", "ok"));

    /* a finished run: at once, and as JSON */
    assert_int_equal(wait_run(t, "w2j", "r1", NULL, NULL, &out, &err), 0);
    expect_in("drover wait --json", out, "\"status\":\"ok\"");
    expect_in("drover wait --json", out, "\"timed_out\":false");
    expect_in("drover wait --json", out, "\"run\":{\"queue\":\"default\"");
    free(out);
    free(err);

    /* the dashboard's API: every node with its state, needs and kind */
    web_start(t, &w);
    assert_int_equal(get(&w, "/api/queues/default/runs/r1", body,
                         sizeof body), 200);
    expect_in("run JSON", body, "\"id\":\"r1\"");
    expect_in("run JSON", body, "\"pipeline\":\"diamond\"");
    expect_in("run JSON", body, "\"status\":\"ok\"");
    expect_in("run JSON", body, "{\"name\":\"a\",\"state\":\"ok\","
              "\"queue\":\"default\",\"needs\":[],\"on_failure\":false,"
              "\"for_each\":false,\"attempts\":1,");
    expect_in("run JSON", body, "{\"name\":\"b\",\"state\":\"ok\","
              "\"queue\":\"default\",\"needs\":[\"a\"],"
              "\"on_failure\":false,\"for_each\":true,");
    expect_in("run JSON", body, "\"items\":3,\"items_done\":3,"
              "\"result\":\"[\\\"i1\\\",\\\"i2\\\",\\\"i3\\\"]\"");
    expect_in("run JSON", body, "{\"name\":\"c\",\"state\":\"ok\"");
    expect_in("run JSON", body, "{\"name\":\"d\",\"state\":\"ok\","
              "\"queue\":\"default\",\"needs\":[\"b\",\"c\"],");
    expect_in("run JSON", body, "{\"name\":\"undo\",\"state\":\"standby\","
              "\"queue\":null,\"needs\":[],\"on_failure\":true,");
    /* drover pipeline --json is the same model */
    {
        char bin[400], cli[16384];
        const char *argv[] = {drv_test_bin("drover", bin, sizeof bin), "-c",
                              t->cfg, "pipeline", "default", "r1", "--json",
                              NULL};

        assert_int_equal(drv_test_run(argv, cli, sizeof cli,
                                      DRV_TEST_WAIT_MS), 0);
        assert_string_equal(cli, body);
    }
    /* no such run, no such queue */
    assert_int_equal(get(&w, "/api/queues/default/runs/nope", body,
                         sizeof body), 404);
    expect_in("404", body, "no pipeline run nope on queue default");
    assert_int_equal(get(&w, "/api/queues/other/runs/r1", body,
                         sizeof body), 404);
    web_stop(&w);
    drv_test_droverd_stop(t, 0, 0);
}

/*
 * A run that ends dead: drover wait exits 1 and shows why; the API shows
 * the dead node, the cancelled one after it and the compensation node
 * that ran, with a hostile run id and error escaped.
 */
static void
test_graph_view_dead_run_escaped(void **st)
{
    struct drv_test_droverd *t = *st;
    struct web w;
    char body[16384];
    char *out = NULL, *err = NULL;
    const char *id = "r\"<2>\\";

    config(t);
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "pipeline", "broken", "id", id,
                  NULL);
    assert_int_equal(wait_run(t, "d1", id, "--timeout", "60s", &out, &err),
                     1);
    expect_in("drover wait (dead)", out, "status: dead\n");
    expect_in("drover wait (dead)", out, "dead_node: x\n");
    expect_in("drover wait (dead)", out, "nodes: x=dead y=cancelled undo=");
    free(out);
    free(err);
    /* the compensation node runs once the run is dead */
    wait_until(drv_test_stat(t, "default", "processed") == 1,
               "undo to run");

    web_start(t, &w);
    assert_int_equal(get(&w, "/api/queues/default/runs/r%22%3C2%3E%5C",
                         body, sizeof body), 200);
    expect_in("run JSON", body, "\"id\":\"r\\\"<2>\\\\\"");
    expect_in("run JSON", body, "\"status\":\"dead\"");
    expect_in("run JSON", body, "\"dead_node\":\"x\"");
    expect_in("run JSON", body, "{\"name\":\"x\",\"state\":\"dead\"");
    expect_in("run JSON", body, "{\"name\":\"y\",\"state\":\"cancelled\"");
    expect_in("run JSON", body, "{\"name\":\"undo\",\"state\":\"ok\"");
    /* the error's quotes escaped, its markup left as text for the page */
    expect_in("run JSON", body, "no \\\"way\\\" <b>here</b>");
    /* one line: no raw newline inside */
    assert_true(strchr(body, '\n') == body + strlen(body) - 1);
    web_stop(&w);
    drv_test_droverd_stop(t, 0, 0);
}

/*
 * A run that does not end in time: exit 1, timed_out, and how far it
 * got; one cancelled while waited for: exit 1 with status cancelled (the
 * cancel announces the end too).
 */
static void
test_graph_view_wait_timeout_and_cancel(void **st)
{
    struct drv_test_droverd *t = *st;
    struct drv_test_proc p;
    char path[400];
    char *out = NULL, *err = NULL;

    config(t);
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "pipeline", "held", "id", "h1",
                  NULL);
    wait_until(run_status_is(t, "h1", "running"), "run h1 to start");

    assert_int_equal(wait_run(t, "t1", "h1", "--timeout", "300ms", &out,
                              &err), 1);
    expect_in("drover wait (timeout)", err,
              "pipeline run h1 is running (0 of 2 nodes settled)");
    free(out);
    free(err);
    assert_int_equal(wait_run(t, "t2j", "h1", "--timeout", "300ms", &out,
                              &err), 1);
    expect_in("drover wait --json (timeout)", out, "{\"queue\":\"default\","
              "\"id\":\"h1\",\"timed_out\":true,\"status\":null,\"run\":{");
    expect_in("drover wait --json (timeout)", out,
              "{\"name\":\"h\",\"state\":\"queued\"");
    free(out);
    free(err);

    wait_spawn(t, &p, "c1", "h1", "--timeout", "60s");
    wait_until(drv_test_numsub(t, "t:{default}:done") == 1,
               "drover wait to subscribe");
    {
        char bin[400], o[4096];
        const char *argv[] = {drv_test_bin("drover", bin, sizeof bin), "-c",
                              t->cfg, "cancel", "default", "h1", NULL};

        assert_int_equal(drv_test_run(argv, o, sizeof o, DRV_TEST_WAIT_MS),
                         0);
    }
    assert_int_equal(drv_test_wait(&p, DRV_TEST_WAIT_MS), 1);
    snprintf(path, sizeof path, "%s/c1.out", t->dir);
    out = drv_test_slurp(path, NULL);
    expect_in("drover wait (cancelled)", out, "status: cancelled\n");
    expect_in("drover wait (cancelled)", out, "nodes: h=");
    free(out);
    snprintf(path, sizeof path, "%s/release", t->dir);
    drv_test_write_file(path, "");
    drv_test_droverd_stop(t, 0, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        TD(test_graph_view_wait_and_api_diamond),
        TD(test_graph_view_dead_run_escaped),
        TD(test_graph_view_wait_timeout_and_cancel),
    };
#undef T

    drv_test_droverd_fixture = &opts;
    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, drv_test_redis_group_setup,
                                  drv_test_redis_group_teardown);
}
