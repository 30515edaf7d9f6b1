/*
 * test_worker.c -- real droverd processes against a real redis-server:
 * the job path, bad input, retries, timeouts, limits, the thread pool,
 * graceful stop, kill -9, a Redis restart, poison jobs and exec's
 * argument handling. Waits poll Redis with generous deadlines (they guard
 * against hangs; they are never speed checks).
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define WAIT_MS 30000

static struct drv_test_redis srv;

struct wt {
    char dir[256];            /* temp dir: config, logs, job files */
    char cfg[400];            /* config path */
    redisContext *c;          /* blocking client */
    struct drv_test_proc w[2]; /* droverd processes */
    int nstarted;
};

static int
group_setup(void **st)
{
    (void)st;
    return drv_test_redis_start(&srv) == 0 ? 0 : -1;
}

static int
group_teardown(void **st)
{
    (void)st;
    drv_test_redis_cleanup(&srv);
    return 0;
}

static int
setup(void **st)
{
    struct wt *t = calloc(1, sizeof *t);

    if (srv.pid == 0 && !srv.external)
        assert_int_equal(drv_test_redis_restart(&srv), 0);
    drv_test_redis_flush(&srv);
    assert_int_equal(drv_test_tmpdir("drover-wt", t->dir, sizeof t->dir), 0);
    t->c = drv_test_redis_connect(&srv);
    assert_non_null(t->c);
    *st = t;
    return 0;
}

static void
dump_log(const struct drv_test_proc *p)
{
    char cmd[600];

    snprintf(cmd, sizeof cmd, "tail -n 40 '%s' >&2", p->log);
    if (system(cmd) != 0)
        return;
}

static int
teardown(void **st)
{
    struct wt *t = *st;
    int i;
    const char *keep = getenv("DROVER_TEST_KEEP");

    for (i = 0; i < 2; i++)
        if (t->w[i].pid > 0) {
            dump_log(&t->w[i]);
            drv_test_kill(&t->w[i], SIGKILL);
        }
    if (t->c != NULL)
        redisFree(t->c);
    if (!(keep && strcmp(keep, "1") == 0))
        drv_test_rm_rf(t->dir);
    free(t);
    return 0;
}

/* Write the config: the redis section and worker defaults for tests, then
 * `body` (more worker keys start with two spaces; then queues/jobs). */
static void
write_config(struct wt *t, const char *worker_extra, const char *body)
{
    char text[8192];

    snprintf(t->cfg, sizeof t->cfg, "%s/drover.yaml", t->dir);
    const char *x = worker_extra ? worker_extra : "";

    snprintf(text, sizeof text,
             "redis:\n  url: %s\n  prefix: t\n"
             "worker:\n%s%s%s%s",
             srv.url,
             strstr(x, "shutdown_timeout") ? "" : "  shutdown_timeout: 5s\n",
             strstr(x, "visibility_timeout") ? ""
                                             : "  visibility_timeout: 3s\n",
             x, body);
    assert_int_equal(drv_test_write_file(t->cfg, text), 0);
}

static void
start_worker(struct wt *t, int i)
{
    char bin[300], log[400];
    const char *argv[6];

    drv_test_bin("droverd", bin, sizeof bin);
    snprintf(log, sizeof log, "%s/droverd%d.log", t->dir, t->nstarted++);
    argv[0] = bin;
    argv[1] = "-c";
    argv[2] = t->cfg;
    argv[3] = "--log-level";
    argv[4] = "debug";
    argv[5] = NULL;
    assert_int_equal(drv_test_spawn(&t->w[i], argv, log, NULL), 0);
}

static void
stop_worker(struct wt *t, int i, int want_exit)
{
    int rc;

    drv_test_kill(&t->w[i], SIGTERM);
    rc = drv_test_wait(&t->w[i], WAIT_MS);
    if (rc != want_exit) {
        dump_log(&t->w[i]);
        fail_msg("droverd exit %d, wanted %d", rc, want_exit);
    }
}

/* XADD to queue q: NULL-terminated field, value list. Returns entry id in
 * id (may be NULL). */
static void
xadd(struct wt *t, const char *q, char *id, size_t idn, ...)
{
    const char *argv[64];
    size_t lens[64];
    char key[128];
    int argc = 0;
    const char *s;
    va_list ap;
    redisReply *r;

    snprintf(key, sizeof key, "t:{%s}:jobs", q);
    argv[argc++] = "XADD";
    argv[argc++] = key;
    argv[argc++] = "*";
    va_start(ap, idn);
    while ((s = va_arg(ap, const char *)) != NULL && argc < 64)
        argv[argc++] = s;
    va_end(ap);
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    r = redisCommandArgv(t->c, argc, argv, lens);
    assert_non_null(r);
    if (r->type != REDIS_REPLY_STRING)
        fail_msg("XADD failed: %s", r->str ? r->str : "?");
    if (id != NULL)
        snprintf(id, idn, "%s", r->str);
    freeReplyObject(r);
}

static long long
num(struct wt *t, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    long long v = 0;

    va_start(ap, fmt);
    r = redisvCommand(t->c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r->type == REDIS_REPLY_STRING)
        v = atoll(r->str);
    else if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
             r->element[0]->type == REDIS_REPLY_INTEGER)
        v = r->element[0]->integer; /* XPENDING summary: count */
    freeReplyObject(r);
    return v;
}

static long long
stat_of(struct wt *t, const char *q, const char *name)
{
    return num(t, "HGET t:{%s}:stats %s", q, name);
}

/* Wait until stat `name` of q reaches want. */
static void
wait_stat(struct wt *t, const char *q, const char *name, long long want)
{
    int64_t deadline = drv_test_now_ms() + WAIT_MS;
    long long v = 0;

    while (drv_test_now_ms() < deadline) {
        v = stat_of(t, q, name);
        if (v >= want)
            break;
        drv_test_sleep_ms(20);
    }
    if (v != want) {
        if (t->w[0].pid > 0)
            dump_log(&t->w[0]);
        fail_msg("stat %s of %s is %lld, wanted %lld", name, q, v, want);
    }
}

/* Wait until the group's pending count of q is at least want. */
static void
wait_pending(struct wt *t, const char *q, long long want)
{
    int64_t deadline = drv_test_now_ms() + WAIT_MS;
    long long v = 0;

    while (drv_test_now_ms() < deadline) {
        redisReply *r = redisCommand(t->c, "XPENDING t:{%s}:jobs drover", q);
        v = (r && r->type == REDIS_REPLY_ARRAY) ? r->element[0]->integer : 0;
        freeReplyObject(r);
        if (v >= want)
            return;
        drv_test_sleep_ms(10);
    }
    fail_msg("pending of %s is %lld, wanted %lld", q, v, want);
}

/* The dead entries' field `name`, joined with '|'. */
static void
dead_fields(struct wt *t, const char *q, const char *name, char *out,
            size_t n)
{
    redisReply *r = redisCommand(t->c, "XRANGE t:{%s}:dead - +", q);
    size_t i, k, o = 0;

    out[0] = '\0';
    assert_non_null(r);
    for (i = 0; i < r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        for (k = 0; k + 1 < f->elements; k += 2)
            if (strcmp(f->element[k]->str, name) == 0)
                o += (size_t)snprintf(out + o, n - o, "%s|",
                                      f->element[k + 1]->str);
    }
    freeReplyObject(r);
}

static char *
hget(struct wt *t, const char *key, const char *field)
{
    redisReply *r = redisCommand(t->c, "HGET %s %s", key, field);
    char *v = (r && r->type == REDIS_REPLY_STRING) ? strdup(r->str) : NULL;

    freeReplyObject(r);
    return v;
}

/* ------------------------------------------------------------- tests */

static void
test_worker_runs_jobs_enqueued_before_and_after_start(void **st)
{
    struct wt *t = *st;
    char id[64], key[128];
    char *v;
    int i;

    write_config(t, "",
                 "queues: [default]\n"
                 "jobs:\n  e:\n    handler: echo\n    result_ttl: 1m\n");
    /* before any worker: the stream exists, no group yet */
    for (i = 0; i < 5; i++)
        xadd(t, "default", NULL, 0, "job", "e", "n", "before", NULL);
    start_worker(t, 0);
    for (i = 0; i < 4; i++)
        xadd(t, "default", NULL, 0, "job", "e", "n", "after", NULL);
    xadd(t, "default", id, sizeof id, "job", "e", "a", "1", "b", "x y",
         NULL);
    wait_stat(t, "default", "processed", 10);
    snprintf(key, sizeof key, "t:{default}:result:%s", id);
    v = hget(t, key, "result");
    assert_non_null(v);
    assert_string_equal(v, "{\"a\":\"1\",\"b\":\"x y\"}");
    free(v);
    v = hget(t, key, "status");
    assert_string_equal(v, "ok");
    free(v);
    assert_int_equal(num(t, "XLEN t:{default}:jobs"), 0);
    /* registered (heartbeat), and gone after a clean stop */
    for (i = 0; i < 1000 && num(t, "HLEN t:workers") != 1; i++)
        drv_test_sleep_ms(20);
    assert_int_equal(num(t, "HLEN t:workers"), 1);
    stop_worker(t, 0, 0);
    assert_int_equal(num(t, "HLEN t:workers"), 0);
}

static void
test_worker_bad_jobs_dead_with_reasons(void **st)
{
    struct wt *t = *st;
    char errs[4096];

    write_config(t, "",
                 "queues: [default]\n"
                 "jobs:\n"
                 "  e:\n    handler: echo\n"
                 "  s:\n    handler: sleep\n"
                 "  x:\n    handler: exec\n    command: [echo, \"{path}\"]\n");
    xadd(t, "default", NULL, 0, "foo", "bar", NULL);
    xadd(t, "default", NULL, 0, "job", "nosuch", NULL);
    xadd(t, "default", NULL, 0, "job", "s", "ms", "12abc", NULL);
    xadd(t, "default", NULL, 0, "job", "s", NULL);
    xadd(t, "default", NULL, 0, "job", "x", NULL);
    xadd(t, "default", NULL, 0, "job", "s", "ms", "99999999999999999999",
         NULL);
    xadd(t, "default", NULL, 0, "job", "e", NULL);
    xadd(t, "default", NULL, 0, "job", "s", "ms", "5", NULL);
    xadd(t, "default", NULL, 0, "job", "x", "path", "ok", NULL);
    start_worker(t, 0);
    wait_stat(t, "default", "dead", 6);
    wait_stat(t, "default", "processed", 3);
    dead_fields(t, "default", "error", errs, sizeof errs);
    assert_non_null(strstr(errs, "missing field job|"));
    assert_non_null(strstr(errs, "unknown job type \"nosuch\""));
    assert_non_null(strstr(errs, "field ms: \"12abc\" is not a plain"));
    assert_non_null(strstr(errs, "missing field ms|"));
    assert_non_null(strstr(errs, "missing field path|"));
    assert_non_null(strstr(errs, "field ms: 99999999999999999999 is out of "
                                 "range"));
    /* the bad job's own fields are kept */
    dead_fields(t, "default", "foo", errs, sizeof errs);
    assert_string_equal(errs, "bar|");
    stop_worker(t, 0, 0);
}

static void
test_worker_retries_end_in_dead_with_attempts(void **st)
{
    struct wt *t = *st;
    char v[1024];

    write_config(t, "",
                 "queues: [default]\n"
                 "jobs:\n"
                 "  f:\n    handler: fail\n    retries: 2\n"
                 "    backoff: 10ms\n    backoff_max: 50ms\n"
                 "  t75:\n    handler: exec\n    retries: 1\n"
                 "    backoff: 10ms\n    command: [sh, -c, \"exit 75\"]\n"
                 "  t65:\n    handler: exec\n    retries: 5\n"
                 "    command: [sh, -c, \"echo no >&2; exit 65\"]\n");
    start_worker(t, 0);
    xadd(t, "default", NULL, 0, "job", "f", "error", "boom", NULL);
    wait_stat(t, "default", "dead", 1);
    dead_fields(t, "default", "attempts", v, sizeof v);
    assert_string_equal(v, "3|");
    dead_fields(t, "default", "error", v, sizeof v);
    assert_string_equal(v, "boom|");
    assert_int_equal(stat_of(t, "default", "failed"), 3);
    assert_int_equal(stat_of(t, "default", "retried"), 2);
    /* permanent: dead at once */
    xadd(t, "default", NULL, 0, "job", "f", "error", "perm", "permanent",
         "1", NULL);
    wait_stat(t, "default", "dead", 2);
    assert_int_equal(stat_of(t, "default", "retried"), 2);
    /* exec 75: retried (1 retry), exec 65: dead at once */
    xadd(t, "default", NULL, 0, "job", "t75", NULL);
    wait_stat(t, "default", "dead", 3);
    assert_int_equal(stat_of(t, "default", "retried"), 3);
    xadd(t, "default", NULL, 0, "job", "t65", NULL);
    wait_stat(t, "default", "dead", 4);
    assert_int_equal(stat_of(t, "default", "retried"), 3);
    dead_fields(t, "default", "error", v, sizeof v);
    assert_non_null(strstr(v, "exit status 65 (permanent failure): no|"));
    assert_non_null(strstr(v, "exit status 75 (temporary failure)|"));
    stop_worker(t, 0, 0);
}

static int
proc_alive(long pid)
{
    char path[64], buf[512];
    FILE *f;
    char *p;

    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    p = fgets(buf, sizeof buf, f);
    fclose(f);
    if (p == NULL)
        return 0;
    p = strrchr(buf, ')');
    return p != NULL && p[2] != 'Z'; /* a zombie is dead */
}

static void
test_worker_exec_timeout_kills_child_and_grandchild(void **st)
{
    struct wt *t = *st;
    char body[2048], pidf[400], v[1024];
    long gc = 0;
    int64_t deadline;
    FILE *f;

    snprintf(pidf, sizeof pidf, "%s/gc.pid", t->dir);
    snprintf(body, sizeof body,
             "queues: [default]\n"
             "jobs:\n"
             "  slow:\n    handler: exec\n    timeout: 500ms\n"
             "    retries: 0\n    kill_grace: 200ms\n"
             "    command: [sh, -c, \"sleep 60 & echo $! > %s; wait\"]\n",
             pidf);
    write_config(t, "", body);
    start_worker(t, 0);
    xadd(t, "default", NULL, 0, "job", "slow", NULL);
    wait_stat(t, "default", "dead", 1);
    dead_fields(t, "default", "error", v, sizeof v);
    assert_non_null(strstr(v, "timed out"));
    f = fopen(pidf, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld", &gc), 1);
    fclose(f);
    deadline = drv_test_now_ms() + 5000;
    while (proc_alive(gc) && drv_test_now_ms() < deadline)
        drv_test_sleep_ms(20);
    assert_false(proc_alive(gc));
    stop_worker(t, 0, 0);
}

static long
read_max(const char *dir)
{
    char path[400];
    FILE *f;
    long v = 0;

    snprintf(path, sizeof path, "%s/max", dir);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld", &v) != 1)
        v = -1;
    fclose(f);
    return v;
}

static void
test_worker_concurrency_limits_hold_and_are_used(void **st)
{
    struct wt *t = *st;
    char body[4096], prog[300], da[300], db[300], dall[300];
    int i;

    drv_test_prog("drv_concur", prog, sizeof prog);
    snprintf(da, sizeof da, "%s/a", t->dir);
    snprintf(db, sizeof db, "%s/b", t->dir);
    snprintf(dall, sizeof dall, "%s/all", t->dir);
    mkdir(da, 0700);
    mkdir(db, 0700);
    mkdir(dall, 0700);
    snprintf(body, sizeof body,
             "queues: [default]\n"
             "jobs:\n"
             "  a:\n    handler: exec\n    concurrency: 2\n"
             "    command: [%s, %s, %s, \"300\"]\n"
             "  b:\n    handler: exec\n    concurrency: 10\n"
             "    command: [%s, %s, %s, \"300\"]\n",
             prog, da, dall, prog, db, dall);
    write_config(t, "  concurrency: 4\n", body);
    for (i = 0; i < 8; i++) {
        xadd(t, "default", NULL, 0, "job", "a", NULL);
        xadd(t, "default", NULL, 0, "job", "b", NULL);
    }
    start_worker(t, 0);
    wait_stat(t, "default", "processed", 16);
    assert_int_equal(read_max(da), 2);   /* the type limit, reached */
    assert_int_equal(read_max(dall), 4); /* the process limit, reached */
    assert_true(read_max(db) <= 4);
    stop_worker(t, 0, 0);
}

static int64_t
finished_at(struct wt *t, const char *id)
{
    char key[128];
    char *v;
    int64_t r;

    snprintf(key, sizeof key, "t:{default}:result:%s", id);
    v = hget(t, key, "finished_at");
    assert_non_null(v);
    r = atoll(v);
    free(v);
    return r;
}

static void
test_worker_blocking_jobs_do_not_delay_loop_jobs(void **st)
{
    struct wt *t = *st;
    char blk[2][64], ech[20][64];
    int64_t last_echo = 0, first_block;
    int i;

    write_config(t, "  threads: 2\n",
                 "queues: [default]\n"
                 "jobs:\n"
                 "  blk:\n    handler: block\n    result_ttl: 1m\n"
                 "  e:\n    handler: echo\n    result_ttl: 1m\n");
    start_worker(t, 0);
    for (i = 0; i < 2; i++)
        xadd(t, "default", blk[i], sizeof blk[i], "job", "blk", "ms", "1500",
             NULL);
    wait_pending(t, "default", 2);
    for (i = 0; i < 20; i++)
        xadd(t, "default", ech[i], sizeof ech[i], "job", "e", NULL);
    wait_stat(t, "default", "processed", 22);
    first_block = finished_at(t, blk[0]);
    if (finished_at(t, blk[1]) < first_block)
        first_block = finished_at(t, blk[1]);
    for (i = 0; i < 20; i++)
        if (finished_at(t, ech[i]) > last_echo)
            last_echo = finished_at(t, ech[i]);
    /* every loop job finished while the pool jobs still blocked */
    assert_true(last_echo < first_block);
    stop_worker(t, 0, 0);
}

static void
test_worker_graceful_stop_drains_running_jobs(void **st)
{
    struct wt *t = *st;
    int i;

    write_config(t, "",
                 "queues: [default]\n"
                 "jobs:\n  s:\n    handler: sleep\n");
    start_worker(t, 0);
    for (i = 0; i < 5; i++)
        xadd(t, "default", NULL, 0, "job", "s", "ms", "400", NULL);
    wait_pending(t, "default", 5);
    stop_worker(t, 0, 0);
    assert_int_equal(stat_of(t, "default", "processed"), 5);
    assert_int_equal(num(t, "XLEN t:{default}:jobs"), 0);
}

static void
test_worker_graceful_stop_requeues_unfinished(void **st)
{
    struct wt *t = *st;
    redisReply *r;
    size_t i, k;
    int with_id = 0;

    write_config(t, "  concurrency: 2\n  shutdown_timeout: 300ms\n",
                 "queues: [default]\n"
                 "jobs:\n  s:\n    handler: sleep\n");
    start_worker(t, 0);
    for (i = 0; i < 5; i++)
        xadd(t, "default", NULL, 0, "job", "s", "ms", "60000", NULL);
    wait_pending(t, "default", 2);
    stop_worker(t, 0, 0);
    /* all five back, undelivered, no attempt counted */
    assert_int_equal(num(t, "XLEN t:{default}:jobs"), 5);
    assert_int_equal(num(t, "XPENDING t:{default}:jobs drover"), 0);
    assert_int_equal(stat_of(t, "default", "processed"), 0);
    assert_int_equal(stat_of(t, "default", "failed"), 0);
    r = redisCommand(t->c, "XRANGE t:{default}:jobs - +");
    for (i = 0; i < r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        for (k = 0; k + 1 < f->elements; k += 2) {
            assert_string_not_equal(f->element[k]->str, "attempt");
            if (strcmp(f->element[k]->str, "id") == 0)
                with_id++;
        }
    }
    freeReplyObject(r);
    /* the two that ran were re-created carrying their id; the three never
     * fetched are untouched */
    assert_int_equal(with_id, 2);
}

static void
test_worker_kill9_loses_no_job(void **st)
{
    struct wt *t = *st;
    int i;

    write_config(t, "  visibility_timeout: 1s\n",
                 "queues: [default]\n"
                 "jobs:\n  s:\n    handler: sleep\n");
    start_worker(t, 0);
    for (i = 0; i < 6; i++)
        xadd(t, "default", NULL, 0, "job", "s", "ms", "1000", NULL);
    wait_pending(t, "default", 6);
    drv_test_kill(&t->w[0], SIGKILL);
    start_worker(t, 1);
    wait_stat(t, "default", "processed", 6);
    assert_int_equal(stat_of(t, "default", "dead"), 0);
    assert_int_equal(num(t, "XLEN t:{default}:jobs"), 0);
    stop_worker(t, 1, 0);
}

static void
test_worker_redis_restart_loses_no_job(void **st)
{
    struct wt *t = *st;
    redisReply *r;
    int i;

    if (srv.external)
        skip();
    /* persistence, so the restart keeps streams, groups and PELs */
    freeReplyObject(redisCommand(t->c, "CONFIG SET appendonly yes"));
    freeReplyObject(redisCommand(t->c, "CONFIG SET appendfsync always"));
    freeReplyObject(redisCommand(t->c, "CONFIG REWRITE"));
    write_config(t, "",
                 "queues: [default]\n"
                 "jobs:\n  s:\n    handler: sleep\n  e:\n    handler: echo\n");
    start_worker(t, 0);
    for (i = 0; i < 6; i++)
        xadd(t, "default", NULL, 0, "job", "s", "ms", "1500", NULL);
    wait_pending(t, "default", 6);
    redisFree(t->c);
    t->c = NULL;
    /* wait for the AOF rewrite to finish, then restart */
    drv_test_sleep_ms(300);
    assert_int_equal(drv_test_redis_restart(&srv), 0);
    t->c = drv_test_redis_connect(&srv);
    assert_non_null(t->c);
    wait_stat(t, "default", "processed", 6);
    /* the same worker fetches again after the restart */
    assert_true(t->w[0].pid > 0);
    xadd(t, "default", NULL, 0, "job", "e", NULL);
    wait_stat(t, "default", "processed", 7);
    stop_worker(t, 0, 0);
    r = redisCommand(t->c, "CONFIG SET appendonly no");
    freeReplyObject(r);
    freeReplyObject(redisCommand(t->c, "CONFIG REWRITE"));
}

static void
test_worker_poison_job_dead_lettered(void **st)
{
    struct wt *t = *st;
    char id[64], v[1024];

    write_config(t, "  visibility_timeout: 500ms\n  max_deliveries: 2\n",
                 "queues: [default]\n"
                 "jobs:\n  e:\n    handler: echo\n");
    xadd(t, "default", id, sizeof id, "job", "e", "k", "v", NULL);
    freeReplyObject(redisCommand(t->c, "XGROUP CREATE t:{default}:jobs "
                                       "drover 0"));
    /* delivered twice to workers that died */
    freeReplyObject(redisCommand(t->c, "XREADGROUP GROUP drover ghost1 "
                                       "COUNT 1 STREAMS t:{default}:jobs >"));
    freeReplyObject(redisCommand(t->c, "XCLAIM t:{default}:jobs drover "
                                       "ghost2 0 %s", id));
    start_worker(t, 0);
    wait_stat(t, "default", "dead", 1);
    dead_fields(t, "default", "error", v, sizeof v);
    assert_non_null(strstr(v, "poison: delivered 2 times"));
    dead_fields(t, "default", "k", v, sizeof v);
    assert_string_equal(v, "v|");
    assert_int_equal(stat_of(t, "default", "processed"), 0);
    stop_worker(t, 0, 0);
}

static void
test_worker_exec_gets_fields_literally(void **st)
{
    struct wt *t = *st;
    char body[2048], path[400], pwned[400], envf[400];
    FILE *f;
    char buf[4096];
    size_t n;

    snprintf(pwned, sizeof pwned, "%s/pwned", t->dir);
    snprintf(body, sizeof body,
             "queues: [default]\n"
             "jobs:\n"
             "  lit:\n    handler: exec\n    result_ttl: 1m\n"
             "    env: {EXTRA: \"yes\"}\n"
             "    command: [sh, -c, \"printf %%s \\\"$1\\\" > %s/arg; "
             "cat > %s/stdin; env > %s/env; echo done\", sh, \"{arg}\"]\n",
             t->dir, t->dir, t->dir);
    write_config(t, "", body);
    {
        char bin[300], log[400];
        const char *argv[] = {NULL, "-c", t->cfg, NULL};
        const char *env[] = {NULL, NULL};
        char url_env[500];

        drv_test_bin("droverd", bin, sizeof bin);
        argv[0] = bin;
        snprintf(log, sizeof log, "%s/droverd-lit.log", t->dir);
        snprintf(url_env, sizeof url_env, "DROVER_REDIS_URL=%s", srv.url);
        env[0] = url_env;
        assert_int_equal(drv_test_spawn(&t->w[0], argv, log, env), 0);
    }
    snprintf(buf, sizeof buf, "$(touch %s)", pwned);
    xadd(t, "default", NULL, 0, "job", "lit", "arg", buf, "other", "a\"b",
         NULL);
    wait_stat(t, "default", "processed", 1);
    snprintf(path, sizeof path, "%s/arg", t->dir);
    f = fopen(path, "r");
    assert_non_null(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    assert_true(strncmp(buf, "$(touch ", 8) == 0);
    assert_int_equal(access(pwned, F_OK), -1); /* nothing ran it */
    snprintf(path, sizeof path, "%s/stdin", t->dir);
    assert_true(drv_test_file_contains(path, "\"job\":\"lit\""));
    assert_true(drv_test_file_contains(path, "\"arg\":\"$(touch "));
    assert_true(drv_test_file_contains(path, "\"other\":\"a\\\"b\""));
    assert_true(drv_test_file_contains(path, "\"attempt\":\"0\""));
    assert_true(drv_test_file_contains(path, "\"id\":\""));
    snprintf(envf, sizeof envf, "%s/env", t->dir);
    assert_true(drv_test_file_contains(envf, "DROVER_ATTEMPT=1\n"));
    assert_true(drv_test_file_contains(envf, "DROVER_QUEUE=default\n"));
    assert_true(drv_test_file_contains(envf, "DROVER_JOB=lit\n"));
    assert_true(drv_test_file_contains(envf, "DROVER_JOB_ID="));
    assert_true(drv_test_file_contains(envf, "EXTRA=yes\n"));
    assert_false(drv_test_file_contains(envf, "DROVER_REDIS_URL"));
    assert_false(drv_test_file_contains(envf, srv.url));
    stop_worker(t, 0, 0);
}

static void
test_worker_bad_usage_and_config_exit_2(void **st)
{
    struct wt *t = *st;
    char bin[300], out[4096], path[400];
    const char *argv[] = {NULL, "-c", NULL, NULL};
    const char *noarg[] = {NULL, NULL};

    drv_test_bin("droverd", bin, sizeof bin);
    argv[0] = bin;
    noarg[0] = bin;
    assert_int_equal(drv_test_run(noarg, out, sizeof out, WAIT_MS), 2);
    snprintf(path, sizeof path, "%s/bad.yaml", t->dir);
    assert_int_equal(drv_test_write_file(path, "worker:\n  threads: 0\n"),
                     0);
    argv[2] = path;
    assert_int_equal(drv_test_run(argv, out, sizeof out, WAIT_MS), 2);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_worker_runs_jobs_enqueued_before_and_after_start),
        T(test_worker_bad_jobs_dead_with_reasons),
        T(test_worker_retries_end_in_dead_with_attempts),
        T(test_worker_exec_timeout_kills_child_and_grandchild),
        T(test_worker_concurrency_limits_hold_and_are_used),
        T(test_worker_blocking_jobs_do_not_delay_loop_jobs),
        T(test_worker_graceful_stop_drains_running_jobs),
        T(test_worker_graceful_stop_requeues_unfinished),
        T(test_worker_kill9_loses_no_job),
        T(test_worker_redis_restart_loses_no_job),
        T(test_worker_poison_job_dead_lettered),
        T(test_worker_exec_gets_fields_literally),
        T(test_worker_bad_usage_and_config_exit_2),
    };
#undef T

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
