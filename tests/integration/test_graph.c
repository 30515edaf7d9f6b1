/*
 * test_graph.c -- graph pipelines on real droverd processes and a real
 * redis-server: a diamond whose middle nodes run on two workers and whose
 * join starts once; a fan-out of 1,000 items never more than
 * max_parallel at a time, results in order; a node on another queue
 * served by another worker; a false `when` skipping a node; a dead node
 * running the on_failure node once and a dead item stopping its fan-out;
 * kill -9 of workers over and over while runs hand off, losing and
 * repeating nothing; a node the reclaim finds poison ending its run.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drover/buf.h"
#include "droverd.h"

/* each test writes its own queues */
static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-gt",
    .prefix = "t",
    .log_level = "debug",
    .worker_defaults = "  shutdown_timeout: 5s\n",
    .body_head = NULL,
    .tail_lines = 30,
};

/* ------------------------------------------------------------ helpers */

/* Field f of run r (enqueued on default): a copy, or NULL. */
static char *
run_get(struct drv_test_droverd *t, const char *r, const char *f)
{
    char key[128];

    snprintf(key, sizeof key, "t:{default}:run:%s", r);
    return drv_test_hget(t, key, f);
}

/* 1 when field f of run r equals want. */
static int
run_is(struct drv_test_droverd *t, const char *r, const char *f,
       const char *want)
{
    char key[128];

    snprintf(key, sizeof key, "t:{default}:run:%s", r);
    return drv_test_hget_is(t, key, f, want);
}

/* 1 when run r exists and has ended (ok or dead). */
static int
run_ended(struct drv_test_droverd *t, const char *r)
{
    return run_is(t, r, "status", "ok") || run_is(t, r, "status", "dead");
}

/* Assert field f of run r equals want. */
static void
assert_run(struct drv_test_droverd *t, const char *r, const char *f,
           const char *want)
{
    char key[128];

    snprintf(key, sizeof key, "t:{default}:run:%s", r);
    drv_test_expect_hget(t, key, f, want);
}

/* Node b of run r ended dead after attempts: wait for the on_failure
 * node undo1 to run, and assert the run ended dead with b, and c after
 * b cancelled. */
static void
assert_b_ended_run(struct drv_test_droverd *t, const char *r,
                   const char *attempts)
{
    wait_until(run_is(t, r, "undo1.state", "ok"), "undo1 to run");
    assert_run(t, r, "status", "dead");
    assert_run(t, r, "dead_node", "b");
    assert_run(t, r, "b.state", "dead");
    assert_run(t, r, "b.attempts", attempts);
    assert_run(t, r, "c.state", "cancelled");
    assert_run(t, r, "undo1.enqueued", "1");
}

/* Start run r of pipeline p on queue default. */
static void
start_run(struct drv_test_droverd *t, const char *p, const char *r)
{
    drv_test_xadd(t, "default", NULL, 0, "pipeline", p, "id", r, NULL);
}

/* ---------------------------------------------------------------- tests */

static void
test_graph_diamond_two_workers_join_once(void **st)
{
    struct drv_test_droverd *t = *st;
    char body[4096], path[512];
    long pb, pc;

    /* one job at a time per worker, and b and c each wait until both
     * have started: they can only both run on two different workers */
    snprintf(body, sizeof body,
             "queues: [default]\n"
             "jobs:\n"
             "  first:\n    handler: exec\n"
             "    command: [sh, -c, 'printf A']\n"
             "  mid:\n    handler: exec\n"
             "    command: [sh, -c, 'printf %%s \"$PPID\" > %s/$1.pid; "
             "n=0; while [ ! -s %s/b.pid ] || [ ! -s %s/c.pid ]; do "
             "n=$((n+1)); [ $n -gt 3000 ] && exit 9; sleep 0.01; done; "
             "printf %%s \"$1\"', sh, '{node}']\n"
             "  join:\n    handler: exec\n"
             "    command: [sh, -c, 'echo $PPID >> %s/d.runs; "
             "printf %%s \"$1\"', sh, '{input}']\n"
             "pipelines:\n"
             "  p:\n    retries: 0\n    graph:\n"
             "      a: {job: first}\n"
             "      b: {job: mid, needs: a}\n"
             "      c: {job: mid, needs: [a]}\n"
             "      d: {job: join, needs: [b, c]}\n",
             t->dir, t->dir, t->dir, t->dir);
    drv_test_droverd_config(t, "  concurrency: 1\n", body);
    drv_test_droverd_start(t, 0);
    drv_test_droverd_start(t, 1);
    start_run(t, "p", "r1");
    wait_until(run_ended(t, "r1"), "run r1 to end");
    assert_run(t, "r1", "status", "ok");
    assert_run(t, "r1", "a.result", "A");
    assert_run(t, "r1", "d.result", "{\"b\":\"b\",\"c\":\"c\"}");
    assert_run(t, "r1", "result", "{\"b\":\"b\",\"c\":\"c\"}");
    assert_run(t, "r1", "d.enqueued", "1");
    /* b and c ran on the two workers, one each */
    pb = drv_test_file_num(t->dir, "b.pid");
    pc = drv_test_file_num(t->dir, "c.pid");
    assert_true(pb == t->w[0].pid || pb == t->w[1].pid);
    assert_true(pc == t->w[0].pid || pc == t->w[1].pid);
    assert_true(pb != pc);
    /* d started exactly once: one run of its job, and four jobs started
     * in all (the traces are complete once the workers stopped) */
    snprintf(path, sizeof path, "%s/d.runs", t->dir);
    assert_int_equal(drv_test_file_lines(path), 1);
    drv_test_droverd_stop(t, 0, 0);
    drv_test_droverd_stop(t, 1, 0);
    assert_int_equal(drv_test_started(t), 4);
    assert_int_equal(drv_test_stat(t, "default", "processed"), 4);
    assert_int_equal(drv_test_stat(t, "default", "dead"), 0);
}

/* Most "s" lines not yet matched by "e" lines, in time order, in the
 * file of "s NS" / "e NS" lines each item wrote. */
static int
max_overlap(const char *path)
{
    long long *ts = NULL;
    int *d = NULL;
    size_t n = 0, cap = 0, i, j;
    char kind;
    long long ns;
    int cur = 0, max = 0;
    FILE *f = fopen(path, "r");

    assert_non_null(f);
    while (fscanf(f, " %c %lld", &kind, &ns) == 2) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            ts = realloc(ts, cap * sizeof *ts);
            d = realloc(d, cap * sizeof *d);
        }
        ts[n] = ns;
        d[n++] = kind == 's' ? 1 : -1;
    }
    fclose(f);
    /* insertion sort by time, ends before starts at the same time */
    for (i = 1; i < n; i++) {
        for (j = i; j > 0 && (ts[j - 1] > ts[j] ||
                              (ts[j - 1] == ts[j] && d[j - 1] > d[j]));
             j--) {
            long long x = ts[j];
            int y = d[j];

            ts[j] = ts[j - 1];
            d[j] = d[j - 1];
            ts[j - 1] = x;
            d[j - 1] = y;
        }
    }
    for (i = 0; i < n; i++) {
        cur += d[i];
        if (cur > max)
            max = cur;
    }
    free(ts);
    free(d);
    return max;
}

/* One look at run big's fan node (one HMGET: a consistent view):
 * released minus finished items is within max_parallel (10), the most
 * seen kept in *max_seen, and the run is not dead; 1 once it is ok. */
static int
fan_look(struct drv_test_droverd *t, int *max_seen)
{
    redisReply *r = redisCommand(t->c, "HMGET t:{default}:run:big "
                                 "fan.next fan.done status");
    int ok = 0;

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    if (r->element[0]->type == REDIS_REPLY_STRING &&
        r->element[1]->type == REDIS_REPLY_STRING) {
        int out = atoi(r->element[0]->str) - atoi(r->element[1]->str);

        assert_true(out >= 0 && out <= 10);
        if (out > *max_seen)
            *max_seen = out;
    }
    if (r->element[2]->type == REDIS_REPLY_STRING) {
        assert_string_not_equal(r->element[2]->str, "dead");
        ok = strcmp(r->element[2]->str, "ok") == 0;
    }
    freeReplyObject(r);
    return ok;
}

static void
test_graph_for_each_1000_max_parallel_10(void **st)
{
    struct drv_test_droverd *t = *st;
    char body[4096], path[512];
    struct drv_buf want;
    char *v;
    int i, max_seen = 0;

    snprintf(path, sizeof path, "%s/ov", t->dir);
    snprintf(body, sizeof body,
             "queues: [default]\n"
             "jobs:\n"
             "  list:\n    handler: exec\n"
             "    command: [sh, -c, 'printf \"[\"; seq -s, 0 999; "
             "printf \"]\"']\n"
             "  item:\n    handler: exec\n"
             "    command: [sh, -c, 'echo \"s $(date +%%s%%N)\" >> %s; "
             "sleep 0.05; echo \"e $(date +%%s%%N)\" >> %s; "
             "printf \"r%%s\" \"$1\"', sh, '{item}']\n"
             "  done:\n    handler: exec\n"
             "    command: [sh, -c, 'printf ok']\n"
             "pipelines:\n"
             "  p:\n    graph:\n"
             "      fetch: {job: list}\n"
             "      fan: {job: item, needs: fetch, for_each: \"{input}\", "
             "max_parallel: 10}\n"
             "      end: {job: done, needs: fan}\n",
             path, path);
    drv_test_droverd_config(t, "", body);
    drv_test_droverd_start(t, 0);
    drv_test_droverd_start(t, 1);
    drv_test_droverd_start(t, 2);
    start_run(t, "p", "big");
    /* from the run state, while it runs: released minus finished items
     * never passes max_parallel (the 1000 items take minutes on a busy
     * machine: the test's watchdog is the only hang guard) */
    wait_until_ms(DRV_TEST_WATCHDOG_S * 1000, fan_look(t, &max_seen),
                  "run big to end ok (most items out at once: %d)",
                  max_seen);
    assert_true(max_seen >= 1);
    assert_run(t, "big", "fan.enqueued", "1000");
    assert_run(t, "big", "fan.items", "1000");
    assert_run(t, "big", "end.result", "ok");
    /* the results in item order */
    drv_buf_init(&want);
    drv_buf_adds(&want, "[");
    for (i = 0; i < 1000; i++)
        drv_buf_addf(&want, "%s\"r%d\"", i > 0 ? "," : "", i);
    drv_buf_adds(&want, "]");
    v = run_get(t, "big", "fan.result");
    assert_non_null(v);
    assert_string_equal(v, want.data);
    free(v);
    drv_buf_fini(&want);
    /* the items themselves: never more than 10 at once, and some at
     * once (the measure sees parallel work) */
    i = max_overlap(path);
    assert_true(i <= 10);
    assert_true(i >= 2);
    assert_int_equal(drv_test_file_count(path, "s "), 1000);
    /* the item keys are gone once the node finished */
    assert_int_equal(drv_test_num(t, "EXISTS t:{default}:run:big:items:fan"),
                     0);
    assert_int_equal(drv_test_num(t, "EXISTS t:{default}:run:big:res:fan"),
                     0);
    drv_test_droverd_stop(t, 0, 0);
    drv_test_droverd_stop(t, 1, 0);
    drv_test_droverd_stop(t, 2, 0);
}

/* the other-queue test config: its queues, the temp dir */
#define OQ_FMT \
    "queues: [%s]\n" \
    "jobs:\n" \
    "  who:\n    handler: exec\n" \
    "    command: [sh, -c, 'printf %%s \"$PPID\" > %s/$1.pid; " \
    "printf \"%%s<%%s>\" \"$1\" \"$2\"', sh, '{node}', '{input}']\n" \
    "pipelines:\n" \
    "  p:\n    graph:\n" \
    "      a: {job: who}\n" \
    "      g: {job: who, needs: a, queue: gpu}\n" \
    "      z: {job: who, needs: g}\n"

static void
test_graph_node_on_other_queue(void **st)
{
    struct drv_test_droverd *t = *st;
    char body[4096];

    /* worker 0 serves default only, worker 1 gpu only */
    snprintf(body, sizeof body, OQ_FMT, "default", t->dir);
    drv_test_droverd_config(t, "", body);
    drv_test_droverd_start(t, 0);
    /* worker 0 has read its config before the second one is written */
    drv_test_wait_log(t, "queue ready", 1);
    snprintf(body, sizeof body, OQ_FMT, "gpu", t->dir);
    drv_test_droverd_config(t, "", body);
    drv_test_droverd_start(t, 1);
    drv_test_xadd(t, "default", NULL, 0, "pipeline", "p", "id", "x",
                  "input", "seed", NULL);
    wait_until(run_ended(t, "x"), "run x to end");
    assert_run(t, "x", "status", "ok");
    assert_run(t, "x", "g.queue", "gpu");
    assert_run(t, "x", "z.result", "z<g<a<seed>>>");
    assert_int_equal(drv_test_file_num(t->dir, "a.pid"), t->w[0].pid);
    assert_int_equal(drv_test_file_num(t->dir, "g.pid"), t->w[1].pid);
    assert_int_equal(drv_test_file_num(t->dir, "z.pid"), t->w[0].pid);
    assert_int_equal(drv_test_stat(t, "gpu", "processed"), 1);
    drv_test_droverd_stop(t, 0, 0);
    drv_test_droverd_stop(t, 1, 0);
}

static void
test_graph_false_when_skips(void **st)
{
    struct drv_test_droverd *t = *st;
    char body[4096], path[512];

    snprintf(body, sizeof body,
             "queues: [default]\n"
             "jobs:\n"
             "  say:\n    handler: exec\n"
             "    command: [sh, -c, 'printf \"{{\\\"status\\\": \\\"no\\\"}}\"']\n"
             "  mark:\n    handler: exec\n"
             "    command: [sh, -c, 'echo $1 >> %s/ran; printf \"%%s\" "
             "\"$2\"', sh, '{node}', '{input}']\n"
             "pipelines:\n"
             "  p:\n    graph:\n"
             "      a: {job: say}\n"
             "      s: {job: mark, needs: a, "
             "when: \"{input.status} == yes\"}\n"
             "      after: {job: mark, needs: s}\n"
             "      u: {job: mark, needs: a, "
             "when: \"{input.status} != 'yes'\"}\n",
             t->dir);
    drv_test_droverd_config(t, "", body);
    drv_test_droverd_start(t, 0);
    start_run(t, "p", "w");
    wait_until(run_ended(t, "w"), "run w to end");
    assert_run(t, "w", "status", "ok");
    assert_run(t, "w", "s.state", "skipped");
    assert_run(t, "w", "s.result", "null");
    assert_run(t, "w", "after.state", "ok");
    assert_run(t, "w", "after.result", "null");
    assert_run(t, "w", "u.state", "ok");
    assert_run(t, "w", "u.result", "{\"status\": \"no\"}");
    /* the skipped node's job never ran, its dependant's did */
    snprintf(path, sizeof path, "%s/ran", t->dir);
    assert_int_equal(drv_test_file_count(path, "s\n"), 0);
    assert_int_equal(drv_test_file_count(path, "after\n"), 1);
    assert_int_equal(drv_test_file_count(path, "u\n"), 1);
    drv_test_droverd_stop(t, 0, 0);
}

static void
test_graph_dead_node_runs_on_failure_once(void **st)
{
    struct drv_test_droverd *t = *st;
    char body[4096], path[512];

    snprintf(path, sizeof path, "%s/undo", t->dir);
    snprintf(body, sizeof body,
             "queues: [default]\n"
             "jobs:\n"
             "  ok:\n    handler: exec\n"
             "    command: [sh, -c, 'printf fine']\n"
             "  bad:\n    handler: exec\n    retries: 5\n"
             "    command: [sh, -c, 'echo boom >&2; exit 3']\n"
             "  undo:\n    handler: exec\n"
             "    command: [sh, -c, 'printf \"%%s\\n\" \"$1\" >> %s', sh, "
             "'{input}']\n"
             "pipelines:\n"
             "  p:\n    graph:\n"
             "      a: {job: ok}\n"
             "      b: {job: bad, needs: a, retries: 1, backoff: 10ms}\n"
             "      c: {job: ok, needs: b}\n"
             "      side: {job: ok, needs: a}\n"
             "      undo1: {job: undo, on_failure: true}\n",
             path);
    drv_test_droverd_config(t, "", body);
    drv_test_droverd_start(t, 0);
    start_run(t, "p", "f");
    /* the node's retries (1) overrode the job type's (5) */
    assert_b_ended_run(t, "f", "2");
    assert_int_equal(drv_test_file_lines(path), 1);
    assert_true(drv_test_file_contains(path, "\"node\":\"b\""));
    assert_true(drv_test_file_contains(path, "boom"));
    assert_int_equal(drv_test_stat(t, "default", "dead"), 1);
    drv_test_droverd_stop(t, 0, 0);
    /* nothing ran after: c never, undo1 once */
    assert_int_equal(drv_test_file_lines(path), 1);
    assert_null(run_get(t, "f", "c.enqueued"));
}

/*
 * Run g's state is deleted while its node b runs (as when it expired or
 * was deleted by hand): b's failures have no run to tell, so b is settled
 * as a plain job would be: tried again as its retries allow (once), then
 * kept in the dead stream with its error, and counted; never dropped. c
 * never runs.
 */
static void
test_graph_node_of_gone_run_goes_dead(void **st)
{
    struct drv_test_droverd *t = *st;
    char body[4096], runs[512], go[512];
    const redisReply *fv;
    redisReply *r;

    snprintf(runs, sizeof runs, "%s/runs", t->dir);
    snprintf(go, sizeof go, "%s/go", t->dir);
    snprintf(body, sizeof body,
             "queues: [default]\n"
             "jobs:\n"
             "  ok:\n    handler: exec\n    command: [printf, fine]\n"
             "  hold:\n    handler: exec\n"
             "    command: [sh, -c, 'echo run >> %s; while [ ! -e %s ]; do "
             "sleep 0.02; done; echo boom >&2; exit 3']\n"
             "pipelines:\n"
             "  p:\n    graph:\n"
             "      a: {job: ok}\n"
             "      b: {job: hold, needs: a, retries: 1, backoff: 10ms}\n"
             "      c: {job: ok, needs: b}\n", runs, go);
    drv_test_droverd_config(t, "", body);
    drv_test_droverd_start(t, 0);
    start_run(t, "p", "g");
    wait_until(drv_test_file_lines(runs) == 1, "b to start");
    drv_test_redis_ok(t->c, "DEL t:{default}:run:g");
    assert_int_equal(drv_test_write_file(go, ""), 0);
    drv_test_wait_stat(t, "default", "dead", 1);
    assert_int_equal(drv_test_file_lines(runs), 2);
    assert_int_equal(drv_test_stat(t, "default", "retried"), 1);
    assert_int_equal(drv_test_stat(t, "default", "failed"), 2);
    r = drv_test_redis_cmd(t->c, "XRANGE t:{default}:dead - +");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 1);
    fv = r->element[0]->element[1];
    assert_string_equal(drv_test_field(fv, "node")->str, "b");
    assert_non_null(strstr(drv_test_field(fv, "error")->str, "boom"));
    assert_string_equal(drv_test_field(fv, "attempts")->str, "2");
    freeReplyObject(r);
    assert_int_equal(drv_test_num(t, "XLEN t:{default}:jobs"), 0);
    assert_int_equal(drv_test_num(t, "XPENDING t:{default}:jobs drover"), 0);
    assert_int_equal(drv_test_num(t, "ZCARD t:{default}:delayed"), 0);
    drv_test_droverd_stop(t, 0, 0);
    assert_int_equal(drv_test_file_lines(runs), 2);
    assert_int_equal(drv_test_num(t, "EXISTS t:{default}:run:g"), 0);
}

static void
test_graph_dead_item_stops_fan_out(void **st)
{
    struct drv_test_droverd *t = *st;
    char body[4096];
    char *v;

    snprintf(body, sizeof body,
             "queues: [default]\n"
             "jobs:\n"
             "  list:\n    handler: exec\n"
             "    command: [sh, -c, 'printf \"[\"; seq -s, 0 49; "
             "printf \"]\"']\n"
             "  item:\n    handler: exec\n"
             "    command: [sh, -c, '[ \"$1\" = 3 ] && exit 4; "
             "printf \"%%s\" \"$1\"', sh, '{item}']\n"
             "pipelines:\n"
             "  p:\n    graph:\n"
             "      fetch: {job: list}\n"
             "      fan: {job: item, needs: fetch, for_each: \"{input}\", "
             "max_parallel: 2, retries: 0}\n");
    drv_test_droverd_config(t, "", body);
    drv_test_droverd_start(t, 0);
    start_run(t, "p", "i");
    wait_until(run_ended(t, "i"), "run i to end");
    assert_run(t, "i", "status", "dead");
    assert_run(t, "i", "fan.state", "dead");
    v = run_get(t, "i", "fan.error");
    assert_non_null(v);
    assert_non_null(strstr(v, "item 3: "));
    free(v);
    /* items 0-3 and whatever the other slot went through while item 3
     * ran (a number that depends on the machine's speed) were released,
     * never all 50: the rest were cancelled when item 3 died */
    v = run_get(t, "i", "fan.enqueued");
    assert_non_null(v);
    fprintf(stderr, "# items released: %s of 50\n", v);
    assert_true(atoi(v) >= 4 && atoi(v) < 50);
    free(v);
    drv_test_droverd_stop(t, 0, 0);
}

/* 1 when every run r0..r(n-1) has status ok. */
static int
all_ok(struct drv_test_droverd *t, int n)
{
    char r[16];
    int i;

    for (i = 0; i < n; i++) {
        snprintf(r, sizeof r, "r%d", i);
        if (!run_is(t, r, "status", "ok"))
            return 0;
    }
    return 1;
}

static void
test_graph_kill9_loop_loses_and_repeats_nothing(void **st)
{
    struct drv_test_droverd *t = *st;
    enum { RUNS = 30, KILLS = 24 };
    char body[4096], r[16];
    int i, k;

    snprintf(body, sizeof body,
             "queues: [default]\n"
             "jobs:\n"
             "  three:\n    handler: exec\n"
             "    command: [printf, \"[1,2,3]\"]\n"
             "  one:\n    handler: exec\n"
             "    command: [sh, -c, 'printf \"%%s\" \"$1\"', sh, "
             "'{node}']\n"
             "  it:\n    handler: exec\n"
             "    command: [sh, -c, 'printf \"f%%s\" \"$1\"', sh, "
             "'{item}']\n"
             "  join:\n    handler: exec\n"
             "    command: [sh, -c, 'printf \"%%s\" \"$1\"', sh, "
             "'{input}']\n"
             "pipelines:\n"
             "  p:\n    graph:\n"
             "      a: {job: three}\n"
             "      b: {job: one, needs: a}\n"
             "      c: {job: one, needs: a}\n"
             "      f: {job: it, needs: a, for_each: \"{input}\", "
             "max_parallel: 2}\n"
             "      d: {job: join, needs: [b, c, f]}\n");
    drv_test_droverd_config(t, "  visibility_timeout: 1s\n"
                            "  max_deliveries: 1000\n", body);
    drv_test_droverd_start(t, 0);
    drv_test_droverd_start(t, 1);
    for (i = 0; i < RUNS; i++) {
        snprintf(r, sizeof r, "r%d", i);
        start_run(t, "p", r);
    }
    /* kill a worker at varying moments while the runs hand off: at a
     * settle, between a settle and its reply, in a job */
    srand(7);
    for (k = 0; k < KILLS && !all_ok(t, RUNS); k++) {
        drv_test_sleep_ms(5 + rand() % 120);
        drv_test_kill(&t->w[k % 2], SIGKILL);
        drv_test_droverd_start(t, k % 2);
    }
    wait_until(all_ok(t, RUNS), "every run to end ok");
    for (i = 0; i < RUNS; i++) {
        snprintf(r, sizeof r, "r%d", i);
        assert_run(t, r, "a.enqueued", "1");
        assert_run(t, r, "b.enqueued", "1");
        assert_run(t, r, "c.enqueued", "1");
        assert_run(t, r, "f.enqueued", "3");
        assert_run(t, r, "d.enqueued", "1");
        assert_run(t, r, "f.result", "[\"f1\",\"f2\",\"f3\"]");
        assert_run(t, r, "d.result",
                   "{\"b\":\"b\",\"c\":\"c\",\"f\":[\"f1\",\"f2\",\"f3\"]}");
    }
    assert_int_equal(drv_test_stat(t, "default", "dead"), 0);
    /* every entry was settled: nothing waits, nothing pending */
    wait_until_num(drv_test_num(t, "XLEN t:{default}:jobs"), ==, 0,
                   "entries left in the stream");
    drv_test_droverd_stop(t, 0, 0);
    drv_test_droverd_stop(t, 1, 0);
}

static void
test_graph_connection_kills_lose_and_repeat_nothing(void **st)
{
    struct drv_test_droverd *t = *st;
    enum { RUNS = 20 };
    char body[4096], r[16];
    redisReply *rep;
    int i, k;

    snprintf(body, sizeof body,
             "queues: [default]\n"
             "jobs:\n"
             "  three:\n    handler: exec\n"
             "    command: [printf, \"[1,2,3,4]\"]\n"
             "  e:\n    handler: echo\n"
             "pipelines:\n"
             "  p:\n    graph:\n"
             "      a: {job: three}\n"
             "      f: {job: e, needs: a, for_each: \"{input}\", "
             "max_parallel: 2}\n"
             "      b: {job: e, needs: a}\n"
             "      d: {job: e, needs: [f, b]}\n");
    drv_test_droverd_config(t, "  visibility_timeout: 1s\n"
                            "  max_deliveries: 1000\n", body);
    drv_test_droverd_start(t, 0);
    for (i = 0; i < RUNS; i++) {
        snprintf(r, sizeof r, "r%d", i);
        start_run(t, "p", r);
    }
    /* drop droverd's connections while settles are out: a call lost
     * with its connection is sent again, and applies once */
    for (k = 0; k < 30 && !all_ok(t, RUNS); k++) {
        drv_test_sleep_ms(10 + k % 7 * 10);
        rep = redisCommand(t->c, "CLIENT KILL TYPE normal SKIPME yes");
        assert_non_null(rep);
        freeReplyObject(rep);
    }
    wait_until(all_ok(t, RUNS), "every run to end ok");
    for (i = 0; i < RUNS; i++) {
        snprintf(r, sizeof r, "r%d", i);
        assert_run(t, r, "f.enqueued", "4");
        assert_run(t, r, "b.enqueued", "1");
        assert_run(t, r, "d.enqueued", "1");
        assert_run(t, r, "f.items", "4");
        assert_run(t, r, "f.done", "4");
    }
    assert_int_equal(drv_test_stat(t, "default", "dead"), 0);
    wait_until_num(drv_test_num(t, "XLEN t:{default}:jobs"), ==, 0,
                   "entries left in the stream");
    drv_test_droverd_stop(t, 0, 0);
}

/* drover pipeline QUEUE ID [args...] with the fixture's config: exit
 * code, stdout into out. */
static int
drover_pipeline(struct drv_test_droverd *t, const char *id, const char *a1,
                const char *a2, char *out, size_t n)
{
    char bin[512];
    const char *argv[] = {drv_test_bin("drover", bin, sizeof bin), "-c",
                          t->cfg, "pipeline", "default", id, a1, a2, NULL};

    return drv_test_run(argv, out, n, DRV_TEST_WAIT_MS);
}

static void
test_graph_view_and_cancel(void **st)
{
    struct drv_test_droverd *t = *st;
    char body[4096], out[8192], path[512];

    snprintf(path, sizeof path, "%s/ran", t->dir);
    snprintf(body, sizeof body,
             "queues: [default]\n"
             "jobs:\n"
             "  three:\n    handler: exec\n"
             "    command: [printf, \"[1,2,3,4,5,6]\"]\n"
             "  hold:\n    handler: exec\n"
             "    command: [sh, -c, 'echo $DROVER_JOB_ID >> %s; "
             "while [ ! -e %s/release ]; do sleep 0.02; done']\n"
             "  mark:\n    handler: exec\n"
             "    command: [sh, -c, 'echo after >> %s']\n"
             "pipelines:\n"
             "  p:\n    graph:\n"
             "      a: {job: three}\n"
             "      h: {job: hold, needs: a, when: \"{input.0} == 1\"}\n"
             "      after: {job: mark, needs: h}\n"
             "      f: {job: hold, needs: a, for_each: \"{input}\", "
             "max_parallel: 2}\n",
             path, t->dir, path);
    drv_test_droverd_config(t, "", body);
    drv_test_droverd_start(t, 0);
    start_run(t, "p", "c1");
    wait_until(drv_test_file_lines(path) >= 3, "h and two items to run");
    /* the view while it runs */
    assert_int_equal(drover_pipeline(t, "c1", NULL, NULL, out, sizeof out),
                     0);
    assert_non_null(strstr(out, "status running"));
    assert_non_null(strstr(out, "after  waiting"));
    assert_non_null(strstr(out, "0/6"));
    assert_int_equal(drover_pipeline(t, "c1", "--json", NULL, out,
                                     sizeof out), 0);
    assert_non_null(strstr(out, "\"status\":\"running\""));
    assert_non_null(strstr(out, "{\"name\":\"h\",\"state\":\"queued\""));
    /* cancel: waiting nodes cancelled, running entries marked */
    assert_int_equal(drover_pipeline(t, "c1", "--cancel", NULL, out,
                                     sizeof out), 0);
    assert_non_null(strstr(out, "3 running entries marked"));
    assert_run(t, "c1", "status", "cancelled");
    assert_run(t, "c1", "after.state", "cancelled");
    assert_run(t, "c1", "f.state", "cancelled");
    /* a second cancel changes nothing: exit 1 */
    assert_int_equal(drover_pipeline(t, "c1", "--cancel", "--json", out,
                                     sizeof out), 1);
    assert_non_null(strstr(out, "\"cancelled\":false"));
    /* the running jobs end: nothing more is released or handed off */
    snprintf(out, sizeof out, "%s/release", t->dir);
    drv_test_write_file(out, "");
    wait_until_num(drv_test_num(t, "XLEN t:{default}:jobs"), ==, 0,
                   "the entries to settle");
    wait_until_num(drv_test_num(t, "ZCARD t:{default}:cancel"), ==, 0,
                   "the marks to go with their entries");
    drv_test_droverd_stop(t, 0, 0);
    assert_int_equal(drv_test_file_lines(path), 3);
    assert_int_equal(drv_test_file_count(path, "after"), 0);
    assert_run(t, "c1", "f.enqueued", "2");
    assert_run(t, "c1", "status", "cancelled");
    /* no such run: exit 1 */
    assert_int_equal(drover_pipeline(t, "nope", NULL, NULL, out, sizeof out),
                     1);
}

/* drover cancel of a running graph run: the run ends cancelled, its
 * running node entries are cancelled on the worker (the exec children are
 * killed: nothing releases them here), nothing more starts. */
static void
test_graph_drover_cancel_stops_running_nodes(void **st)
{
    struct drv_test_droverd *t = *st;
    char body[4096], out[8192], path[512], bin[512];
    const char *argv[] = {drv_test_bin("drover", bin, sizeof bin), "-c",
                          NULL, "cancel", "default", "c2", NULL};

    snprintf(path, sizeof path, "%s/ran", t->dir);
    snprintf(body, sizeof body,
             "queues: [default]\n"
             "jobs:\n"
             "  three:\n    handler: exec\n"
             "    command: [printf, \"[1,2,3,4,5,6]\"]\n"
             "  hold:\n    handler: exec\n    timeout: 1h\n"
             "    command: [sh, -c, 'echo $DROVER_JOB_ID >> %s; "
             "exec sleep 3600']\n"
             "  mark:\n    handler: exec\n"
             "    command: [sh, -c, 'echo after >> %s']\n"
             "pipelines:\n"
             "  p:\n    graph:\n"
             "      a: {job: three}\n"
             "      h: {job: hold, needs: a}\n"
             "      after: {job: mark, needs: h}\n"
             "      f: {job: hold, needs: a, for_each: \"{input}\", "
             "max_parallel: 2}\n",
             path, path);
    drv_test_droverd_config(t, "", body);
    argv[2] = t->cfg;
    drv_test_droverd_start(t, 0);
    start_run(t, "p", "c2");
    wait_until(drv_test_file_lines(path) >= 3, "h and two items to run");
    assert_int_equal(drv_test_run(argv, out, sizeof out, DRV_TEST_WAIT_MS),
                     0);
    assert_run(t, "c2", "status", "cancelled");
    /* the sleeping children are killed by their worker: the entries
     * settle without anything releasing them */
    wait_until_num(drv_test_num(t, "XLEN t:{default}:jobs"), ==, 0,
                   "the running node entries to be cancelled");
    wait_until_num(drv_test_num(t, "ZCARD t:{default}:cancel"), ==, 0,
                   "the marks to go with their entries");
    drv_test_droverd_stop(t, 0, 0);
    assert_int_equal(drv_test_file_lines(path), 3);
    assert_int_equal(drv_test_file_count(path, "after"), 0);
    assert_run(t, "c2", "f.enqueued", "2");
    assert_run(t, "c2", "status", "cancelled");
    /* again: nothing unfinished has that id now */
    assert_int_equal(drv_test_run(argv, out, sizeof out, DRV_TEST_WAIT_MS),
                     1);
}

static void
test_graph_example_runs(void **st)
{
    struct drv_test_droverd *t = *st;
    char text[8192], file[512], *body = NULL, *v = NULL;
    FILE *f = fopen("config/graph-example.yaml", "r");
    size_t n;

    /* the example as shipped, but for its redis: section */
    assert_non_null(f);
    n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    assert_true(n > 0 && n < sizeof text - 1);
    text[n] = '\0';
    body = strstr(text, "\nqueues:");
    assert_non_null(body);
    drv_test_droverd_config(t, "", body + 1);
    snprintf(file, sizeof file, "%s/text", t->dir);
    assert_int_equal(drv_test_write_file(file, "B a b, c\nb a.\n"), 0);
    drv_test_droverd_start(t, 0);
    drv_test_droverd_start(t, 1);
    drv_test_xadd(t, "default", NULL, 0, "pipeline", "wordcount", "id", "e1",
                  "file", file, NULL);
    wait_until(run_ended(t, "e1"), "run e1 to end");
    assert_run(t, "e1", "status", "ok");
    assert_run(t, "e1", "fetch.result", "{\"words\": [\"b\",\"a\",\"c\"]}");
    assert_run(t, "e1", "count.result",
               "[{\"word\": \"b\", \"n\": 3},{\"word\": \"a\", \"n\": 2},"
               "{\"word\": \"c\", \"n\": 1}]");
    assert_run(t, "e1", "total.result", "6");
    assert_run(t, "e1", "top.result", "3 b\n2 a\n1 c\n");
    assert_run(t, "e1", "note.result", "run e1 counted 6 words\n");
    assert_run(t, "e1", "undo.state", "standby");
    v = run_get(t, "e1", "report.result");
    assert_non_null(v);
    assert_non_null(strstr(v, "\"input\":\"{\\\"total\\\":6,"));
    free(v);
    drv_test_droverd_stop(t, 0, 0);
    drv_test_droverd_stop(t, 1, 0);
}

/*
 * SIGTERM while Redis refuses a graph settle (out of memory): droverd
 * stops after its shutdown_timeout instead of waiting for Redis forever;
 * the entry stays pending (a later worker takes it), nothing is lost.
 */
static void
test_graph_stop_while_settle_refused(void **st)
{
    struct drv_test_droverd *t = *st;

    drv_test_droverd_config(t, "  shutdown_timeout: 1s\n",
                            "queues: [default]\n"
                            "jobs:\n  e: {handler: echo}\n"
                            "pipelines:\n"
                            "  p:\n    graph:\n"
                            "      a: {job: e}\n");
    drv_test_redis_ok(t->c, "SET t:{default}:paused 1");
    drv_test_droverd_start(t, 0);
    drv_test_wait_log(t, "queue paused", 1);
    start_run(t, "p", "r");
    drv_test_redis_ok(t->c, "CONFIG SET maxmemory-policy noeviction");
    drv_test_redis_ok(t->c, "CONFIG SET maxmemory 1");
    drv_test_redis_ok(t->c, "DEL t:{default}:paused");
    drv_test_wait_log(t, "graph settle failed: will retry", 1);
    drv_test_droverd_stop(t, 0, 0);
    assert_int_equal(drv_test_file_count(t->log, "stopping with outcomes "
                                         "Redis refused"), 1);
    drv_test_redis_ok(t->c, "CONFIG SET maxmemory 0");
    assert_int_equal(drv_test_num(t, "XPENDING t:{default}:jobs drover"),
                     1);
    assert_int_equal(drv_test_num(t, "EXISTS t:{default}:run:r"), 0);
}

/* a -> b (on queue slow) -> c, with a compensation node; the reclaim
 * looks every visibility_timeout / 4 for entries idle that long */
#define POISON_FMT \
    "queues: [%s]\n" \
    "jobs:\n" \
    "  ok:\n    handler: exec\n    command: [printf, fine]\n" \
    "  undo:\n    handler: exec\n" \
    "    command: [sh, -c, 'printf \"%%s\\n\" \"$1\" >> %s', sh, " \
    "'{input}']\n" \
    "pipelines:\n" \
    "  p:\n    graph:\n" \
    "      a: {job: ok}\n" \
    "      b: {job: ok, needs: a, queue: slow}\n" \
    "      c: {job: ok, needs: b}\n" \
    "      undo1: {job: undo, on_failure: true}\n"
#define POISON_WORKER "  visibility_timeout: 1s\n  max_deliveries: 2\n"

/*
 * Node b's entry, on queue slow, was delivered twice to workers that
 * died (its job crashed them): the reclaim of slow's worker ends b dead
 * as its retries would, with the poison error; the run ends dead, undo1
 * runs once, c is never enqueued, and a drover wait that was waiting
 * returns 1.
 */
static void
test_graph_poisoned_node_ends_its_run(void **st)
{
    struct drv_test_droverd *t = *st;
    struct drv_test_proc wp;
    char body[4096], undo[512], bin[400], out[512], *eid, *o, *v;
    const char *argv[] = {drv_test_bin("drover", bin, sizeof bin), "-c",
                          t->cfg, "wait", "default", "r", "--timeout",
                          "90s", NULL};
    int rc;

    snprintf(undo, sizeof undo, "%s/undo", t->dir);
    snprintf(out, sizeof out, "%s/wait.out", t->dir);
    drv_test_redis_ok(t->c, "XGROUP CREATE t:{slow}:jobs drover 0 "
                      "MKSTREAM");
    /* worker 0 serves default; nobody serves slow yet */
    snprintf(body, sizeof body, POISON_FMT, "default", undo);
    drv_test_droverd_config(t, POISON_WORKER, body);
    drv_test_droverd_start(t, 0);
    drv_test_wait_log(t, "queue ready", 1);
    start_run(t, "p", "r");
    wait_until(run_is(t, "r", "b.state", "queued"), "b to be handed off");
    eid = run_get(t, "r", "b.entry");
    assert_non_null(eid);
    drv_test_deliver_twice(t, "slow", eid);
    free(eid);
    assert_int_equal(drv_test_spawn_io(&wp, argv, out, NULL, NULL), 0);
    wait_until(drv_test_numsub(t, "t:{default}:done") >= 1,
               "drover wait to subscribe");

    snprintf(body, sizeof body, POISON_FMT, "slow", undo);
    drv_test_droverd_config(t, POISON_WORKER, body);
    drv_test_droverd_start(t, 1);
    assert_b_ended_run(t, "r", "1");
    v = run_get(t, "r", "b.error");
    if (v == NULL || strncmp(v, "poison: delivered 2 times", 25) != 0)
        fail_msg("b.error: %s", v != NULL ? v : "(nil)");
    free(v);
    rc = drv_test_wait(&wp, DRV_TEST_WAIT_MS);
    o = drv_test_slurp(out, NULL);
    if (rc != 1 || o == NULL || strstr(o, "status: dead\n") == NULL ||
        strstr(o, "dead_node: b\n") == NULL ||
        strstr(o, "error: poison: delivered 2 times") == NULL)
        fail_msg("drover wait exited %d, printed: %s", rc, o ? o : "");
    free(o);
    /* b's entry went to slow's dead stream, as a node dead by its
     * retries does, and left no result of its own */
    assert_int_equal(drv_test_stat(t, "slow", "dead"), 1);
    assert_int_equal(drv_test_num(t, "XLEN t:{slow}:dead"), 1);
    assert_int_equal(drv_test_num(t, "XLEN t:{slow}:jobs"), 0);
    assert_int_equal(drv_test_num(t, "XPENDING t:{slow}:jobs drover"), 0);
    assert_int_equal(drv_test_num(t, "EXISTS t:{slow}:result:r/b"), 0);
    drv_test_droverd_stop(t, 1, 0);
    drv_test_droverd_stop(t, 0, 0);
    /* undo1 ran once, told of b and its error; c never */
    assert_int_equal(drv_test_file_lines(undo), 1);
    assert_true(drv_test_file_contains(undo, "\"node\":\"b\""));
    assert_true(drv_test_file_contains(undo, "poison: delivered 2 times"));
    assert_null(run_get(t, "r", "c.enqueued"));
    assert_int_equal(drv_test_stat(t, "default", "processed"), 2);
}

/*
 * Node b's entry is larger than max_job_bytes (its input, a's result, is
 * 2,000 bytes): the worker that fetches it ends it dead naming its size,
 * and the run with it, as a node dead by its retries.
 */
static void
test_graph_oversized_node_ends_its_run(void **st)
{
    struct drv_test_droverd *t = *st;
    char body[4096], undo[512], big[2001], *v;

    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    snprintf(undo, sizeof undo, "%s/undo", t->dir);
    snprintf(body, sizeof body,
             "queues: [default]\n"
             "jobs:\n"
             "  ok:\n    handler: exec\n    command: [printf, fine]\n"
             "  big:\n    handler: exec\n"
             "    command: [sh, -c, 'head -c 2000 /dev/zero | tr \"\\\\0\" x']\n"
             "  undo:\n    handler: exec\n"
             "    command: [sh, -c, 'printf \"%%s\\n\" \"$1\" >> %s', sh, "
             "'{input}']\n"
             "pipelines:\n"
             "  p:\n    graph:\n"
             "      a: {job: big}\n"
             "      b: {job: ok, needs: a}\n"
             "      c: {job: ok, needs: b}\n"
             "      undo1: {job: undo, on_failure: true}\n", undo);
    drv_test_droverd_config(t, "  max_job_bytes: 1KiB\n", body);
    drv_test_droverd_start(t, 0);
    start_run(t, "p", "o");
    assert_b_ended_run(t, "o", "1");
    v = run_get(t, "o", "b.error");
    if (v == NULL || strstr(v, "more than max_job_bytes 1024") == NULL)
        fail_msg("b.error: %s", v != NULL ? v : "(nil)");
    free(v);
    assert_int_equal(drv_test_num(t, "XLEN t:{default}:dead"), 1);
    assert_int_equal(drv_test_num(t, "EXISTS t:{default}:result:o/b"), 0);
    /* a run's first entry that large goes dead as a job and starts no
     * run */
    drv_test_xadd(t, "default", NULL, 0, "pipeline", "p", "id", "o2",
                  "pad", big, NULL);
    drv_test_wait_stat(t, "default", "dead", 2);
    assert_int_equal(drv_test_num(t, "EXISTS t:{default}:run:o2"), 0);
    v = drv_test_result(t, "default", "o2", "error");
    if (v == NULL || strstr(v, "more than max_job_bytes 1024") == NULL)
        fail_msg("o2's error: %s", v != NULL ? v : "(nil)");
    free(v);
    drv_test_droverd_stop(t, 0, 0);
    assert_int_equal(drv_test_file_lines(undo), 1);
    assert_null(run_get(t, "o", "c.enqueued"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        TD(test_graph_diamond_two_workers_join_once),
        TD(test_graph_for_each_1000_max_parallel_10),
        TD(test_graph_node_on_other_queue),
        TD(test_graph_false_when_skips),
        TD(test_graph_dead_node_runs_on_failure_once),
        TD(test_graph_node_of_gone_run_goes_dead),
        TD(test_graph_dead_item_stops_fan_out),
        TD(test_graph_kill9_loop_loses_and_repeats_nothing),
        TD(test_graph_connection_kills_lose_and_repeat_nothing),
        TD(test_graph_view_and_cancel),
        TD(test_graph_drover_cancel_stops_running_nodes),
        TD(test_graph_example_runs),
        TD(test_graph_stop_while_settle_refused),
        TD(test_graph_poisoned_node_ends_its_run),
        TD(test_graph_oversized_node_ends_its_run),
    };
#undef T

    drv_test_droverd_fixture = &opts;
    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, drv_test_redis_group_setup,
                                  drv_test_redis_group_teardown);
}
