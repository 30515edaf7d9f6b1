/*
 * test_idle.c -- what an idle droverd costs, and that idling loses no
 * promise: the Redis commands it sends do not grow with its number of
 * queues (INFO commandstats deltas), and a delayed job enqueued by
 * another process into a queue idle for a while still moves when due,
 * not when the slow look at idle queues comes round.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "droverd.h"
#include "drover/queue.h"

static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-idle",
    .prefix = "t",
    .log_level = "info",
    .worker_defaults = "  shutdown_timeout: 5s\n  visibility_timeout: 5m\n",
    .body_head = NULL,
    .tail_lines = 40,
};

/* Write the config (body), start droverd 0 and wait until it runs and
 * its queue named last has been prepared. */
static void
start_idle(struct drv_test_droverd *t, const char *body, const char *last)
{
    drv_test_droverd_config(t, "", body);
    drv_test_droverd_start(t, 0);
    drv_test_wait_log(t, "worker started", 1);
    /* its group created: the queue is prepared */
    wait_until_num(drv_test_num(t, "EXISTS t:{%s}:jobs", last), ==, 1,
                   "queues prepared");
}

/* Commands per second an idle droverd with nq queues sends, over 4 s once
 * it has been running for 2 s. */
static double
idle_rate(struct drv_test_droverd *t, int nq)
{
    char *body = malloc((size_t)nq * 16 + 128), last[16];
    size_t o;
    long long n0, n1;
    int q;

    o = (size_t)sprintf(body, "queues: [");
    for (q = 0; q < nq; q++)
        o += (size_t)sprintf(body + o, "%sq%d", q ? ", " : "", q);
    sprintf(body + o, "]\njobs:\n  e:\n    handler: noop\n");
    snprintf(last, sizeof last, "q%d", nq - 1);
    start_idle(t, body, last);
    free(body);
    drv_test_sleep_ms(2000);
    n0 = drv_test_redis_calls(t->c, NULL, 0);
    drv_test_sleep_ms(4000);
    n1 = drv_test_redis_calls(t->c, NULL, 0);
    drv_test_droverd_stop(t, 0, 0);
    fprintf(stderr, "  %d queue(s): %.1f commands/s\n", nq,
            (double)(n1 - n0) / 4);
    return (double)(n1 - n0) / 4;
}

/* 200 idle queues cost about what one does (before: about 25 commands/s
 * more per queue, the mover and its commands every 100 ms). */
static void
test_idle_commands_do_not_grow_with_queues(void **st)
{
    struct drv_test_droverd *t = *st;
    double one, many;

    one = idle_rate(t, 1);
    freeReplyObject(redisCommand(t->c, "FLUSHALL"));
    many = idle_rate(t, 200);
    /* generous: the per-queue cost left is a look every 30-60 s */
    if (many > one * 3 + 30)
        fail_msg("200 idle queues: %.1f commands/s, 1 queue: %.1f", many,
                 one);
}

/* A job delayed by `drover enqueue --delay` into a queue that has been
 * idle: moved when due. Without the due index it would wait for the look
 * at idle queues, 30 s or more after droverd started. */
static void
test_idle_delayed_job_from_cli_moves_when_due(void **st)
{
    struct drv_test_droverd *t = *st;
    const char *const args[] = {"enqueue", "b", "e", "--delay", "1s", NULL};
    char *out;
    long long due, started;
    struct timespec ts;
    redisReply *r;

    start_idle(t, "queues: [a, b, c]\n"
               "jobs:\n  e:\n    handler: echo\n    result_ttl: 1h\n", "c");
    drv_test_sleep_ms(1500); /* idle: the first looks at queues are over */
    clock_gettime(CLOCK_REALTIME, &ts);
    /* the job falls due 1 s after the CLI started, or later */
    due = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1000;
    out = drv_test_cli_out(t->dir, t->cfg, 0, args);
    out[strcspn(out, "\n")] = '\0';
    /* the index holds it until a worker moved it (on a machine so slow
     * that the CLI took over a second to exit, that may have happened
     * already: then the earliest due time above stands) */
    r = redisCommand(t->c, "ZRANGE t:due 0 -1 WITHSCORES");
    assert_non_null(r);
    assert_true(r->elements == 2 || r->elements == 0);
    if (r->elements == 2) {
        assert_true(strtoll(r->element[1]->str, NULL, 10) >= due);
        due = strtoll(r->element[1]->str, NULL, 10);
    } else {
        fprintf(stderr, "  moved before the index was read\n");
    }
    freeReplyObject(r);
    drv_test_wait_stat(t, "b", "processed", 1);
    drv_test_expect_result(t, "b", out, "status", "ok");
    free(out);
    wait_until_num(drv_test_started(t), ==, 1, "start traced");
    {
        FILE *f = fopen(t->trace, "r");

        assert_non_null(f);
        assert_int_equal(fscanf(f, "%lld", &started), 1);
        fclose(f);
    }
    /* not a speed check: the look at idle queues comes 30 s or more after
     * the start, so a job found only by it would be that late */
    fprintf(stderr, "  started %lld ms after it fell due\n",
            started / 1000 - due);
    assert_true(started / 1000 >= due);
    assert_true(started / 1000 - due < 15000);
    wait_until_num(drv_test_num(t, "ZCARD t:due"), ==, 0,
                   "index member removed");
    drv_test_droverd_stop(t, 0, 0);
}

/* A retry is indexed, so another worker moves it when due although it
 * never ran that job and its own look at the queue came before the job
 * existed: the worker that delayed it stops first. */
static void
test_idle_retry_moved_by_other_worker(void **st)
{
    struct drv_test_droverd *t = *st;
    char log0[512];
    int ran;

    drv_test_droverd_config(t, "",
                            "queues: [a, b]\n"
                            "jobs:\n  f:\n    handler: fail\n"
                            "    retries: 1\n    backoff: 4s\n"
                            "    backoff_max: 4s\n");
    drv_test_droverd_start(t, 0); /* logs to droverd0.log */
    drv_test_droverd_start(t, 1); /* logs to droverd1.log */
    drv_test_wait_log(t, "worker started", 1);
    snprintf(log0, sizeof log0, "%s/droverd0.log", t->dir);
    wait_until(drv_test_file_contains(log0, "worker started"),
               "first worker started");
    wait_until_num(drv_test_num(t, "EXISTS t:{b}:jobs"), ==, 1,
                   "queues prepared");
    drv_test_sleep_ms(1500); /* both idle: their first looks are over */
    drv_test_xadd(t, "b", NULL, 0, "job", "f", NULL);
    drv_test_wait_stat(t, "b", "retried", 1);
    wait_until_num(drv_test_num(t, "ZCARD t:due"), ==, 1, "retry indexed");
    ran = drv_test_file_contains(log0, "job failed: retrying") ? 0 : 1;
    drv_test_droverd_stop(t, ran, 0);
    /* moved when due (4 s), not at the other's next look (30 s on) */
    drv_test_wait_stat(t, "b", "dead", 1);
    drv_test_droverd_stop(t, 1 - ran, 0);
}

/* The blocking client of an idle droverd holds more commands in its query
 * buffer (qbuf > 0 on the line of the client blocked in XREADGROUP): the
 * upkeep reads that ride on the blocking read. */
static int
upkeep_rides(struct drv_test_droverd *t)
{
    struct drv_test_client cl[DRV_TEST_CLIENTS_MAX];
    int i, n = drv_test_clients(t->c, cl, DRV_TEST_CLIENTS_MAX);

    for (i = 0; i < n; i++)
        if (strcmp(cl[i].cmd, "xreadgroup") == 0 && cl[i].qbuf > 0)
            return 1;
    return 0;
}

/* The beat of the one line of the workers hash, as pkg/queue parses it
 * (0 while there is none). */
static long long
registry_beat(struct drv_test_droverd *t)
{
    redisReply *r = drv_test_redis_cmd(t->c, "HVALS t:workers");
    struct drv_queue_worker w;
    long long beat = 0;

    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
        r->element[0]->type == REDIS_REPLY_STRING) {
        drv_queue_worker_parse(NULL, 0, r->element[0]->str,
                               r->element[0]->len, &w);
        if (w.beat_ms > 0)
            beat = w.beat_ms;
        drv_queue_worker_fini(&w);
    }
    freeReplyObject(r);
    return beat;
}

/* Idle, the paused flags' read, the due index's read and the heartbeat
 * ride on the blocking read (queued behind it in Redis, answered with it)
 * instead of a timer of their own. Every promise they keep still holds:
 * the worker's registry line is refreshed; a pause is seen and a paused
 * queue left alone, a resume seen; a delayed job moves (the tests
 * above). */
static void
test_idle_upkeep_rides_on_blocking_read(void **st)
{
    struct drv_test_droverd *t = *st;
    long long beat;

    start_idle(t, "queues: [a, b, c]\n"
               "jobs:\n  e:\n    handler: noop\n", "c");
    wait_until(upkeep_rides(t), "the paused flags' read behind the BLOCK");
    /* the registry is refreshed (every 5 s) */
    wait_until_num(registry_beat(t), >, 0, "registry line");
    beat = registry_beat(t);
    wait_until_num(registry_beat(t), >, beat, "registry refreshed");
    beat = registry_beat(t);
    wait_until_num(registry_beat(t), >, beat, "registry refreshed again");
    /* a pause is noticed while idle; the paused queue is left alone while
     * the worker takes two jobs of a, each read of which would have taken
     * b's job too */
    freeReplyObject(redisCommand(t->c, "SET t:{b}:paused 1"));
    drv_test_wait_log(t, "msg=\"queue paused\" queue=b", 1);
    drv_test_xadd(t, "b", NULL, 0, "job", "e", NULL);
    drv_test_xadd(t, "a", NULL, 0, "job", "e", NULL);
    drv_test_wait_stat(t, "a", "processed", 1);
    wait_until(upkeep_rides(t), "idle again");
    drv_test_xadd(t, "a", NULL, 0, "job", "e", NULL);
    drv_test_wait_stat(t, "a", "processed", 2);
    assert_int_equal(drv_test_stat(t, "b", "processed"), 0);
    assert_int_equal(drv_test_num(t, "XLEN t:{b}:jobs"), 1);
    /* resumed: noticed while idle, the job runs */
    wait_until(upkeep_rides(t), "idle again");
    freeReplyObject(redisCommand(t->c, "DEL t:{b}:paused"));
    drv_test_wait_log(t, "msg=\"queue resumed\" queue=b", 1);
    drv_test_wait_stat(t, "b", "processed", 1);
    drv_test_droverd_stop(t, 0, 0);
}

/* Sum of field name (a count) of /proc/PID/task/T/status over the
 * threads of pid. */
static long long
task_status_sum(pid_t pid, const char *name)
{
    char path[64], p2[600], line[256];
    long long sum = 0;
    size_t n = strlen(name);
    struct dirent *e;
    DIR *d;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    d = opendir(path);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p2, sizeof p2, "%s/%s/status", path, e->d_name);
        f = fopen(p2, "r");
        if (f == NULL)
            continue;
        while (fgets(line, sizeof line, f) != NULL)
            if (strncmp(line, name, n) == 0 && line[n] == ':')
                sum += strtoll(line + n + 1, NULL, 10);
        fclose(f);
    }
    closedir(d);
    return sum;
}

/* An idle droverd with no http job type never maps libcurl, without a
 * rediss:// URL never maps OpenSSL, and wakes up about 1.5 times a
 * second: once per blocking read (BLOCK 800 ms), whose answer brings the
 * answers of the paused flags', the due index's and the heartbeat's
 * calls that rode on it; the tick and the lag meter every 5 s; the look
 * at each queue every 30 to 60 s (it was 30, then 14, then 6.2: a tick
 * every 500 ms with a read of its own). */
static void
test_idle_no_libcurl_few_wakeups(void **st)
{
    struct drv_test_droverd *t = *st;
    char maps[64];
    long long v0, v1;

    start_idle(t, "queues: [a, b, c]\n"
               "jobs:\n  e:\n    handler: noop\n"
               "  x:\n    handler: exec\n    command: [/bin/true]\n", "c");
    drv_test_sleep_ms(1000);
    snprintf(maps, sizeof maps, "/proc/%d/maps", (int)t->w[0].pid);
    assert_false(drv_test_file_contains(maps, "libcurl"));
    /* nor OpenSSL without a rediss:// URL */
    assert_false(drv_test_file_contains(maps, "libssl"));
    assert_false(drv_test_file_contains(maps, "libcrypto"));
    v0 = task_status_sum(t->w[0].pid, "voluntary_ctxt_switches");
    drv_test_sleep_ms(5000);
    v1 = task_status_sum(t->w[0].pid, "voluntary_ctxt_switches");
    fprintf(stderr, "  idle: %.1f wakeups/s\n", (double)(v1 - v0) / 5);
    /* generous: a 500 ms tick with a read of its own would be 6 */
    assert_true(v1 - v0 < 4 * 5);
    drv_test_droverd_stop(t, 0, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        TD(test_idle_commands_do_not_grow_with_queues),
        TD(test_idle_delayed_job_from_cli_moves_when_due),
        TD(test_idle_retry_moved_by_other_worker),
        TD(test_idle_no_libcurl_few_wakeups),
        TD(test_idle_upkeep_rides_on_blocking_read),
    };
#undef T

    drv_test_droverd_fixture = &opts;
    drv_test_filter_from_env();
    return cmocka_run_group_tests(tests, drv_test_redis_group_setup,
                                  drv_test_redis_group_teardown);
}
