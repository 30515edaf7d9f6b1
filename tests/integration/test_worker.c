/*
 * test_worker.c -- real droverd processes against a real redis-server:
 * the job path, bad input, retries, timeouts, limits, the thread pool,
 * graceful stop, kill -9, a Redis restart, poison jobs and exec's
 * argument handling. Waits poll Redis, droverd's log or a file
 * (wait_until) with generous deadlines (they guard against hangs; they are
 * never speed checks).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "droverd.h"
#include "drover/buf.h"

/* droverd's config: worker defaults unless a test's worker keys name them */
static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-wt",
    .prefix = "t",
    .log_level = "debug",
    .worker_defaults = "  shutdown_timeout: 5s\n  visibility_timeout: 3s\n",
    .body_head = NULL,
    .tail_lines = 40,
};

/* ------------------------------------------------------------- tests */

static void
test_worker_runs_jobs_enqueued_before_and_after_start(void **st)
{
    struct drv_test_droverd *t = *st;
    char id[64], key[128];
    int i;

    drv_test_droverd_config(t, "",
                            "queues: [default]\n"
                            "jobs:\n  e:\n    handler: echo\n"
                            "    result_ttl: 1m\n");
    /* before any worker: the stream exists, no group yet */
    for (i = 0; i < 5; i++)
        drv_test_xadd(t, "default", NULL, 0, "job", "e", "n", "before", NULL);
    drv_test_droverd_start(t, 0);
    for (i = 0; i < 4; i++)
        drv_test_xadd(t, "default", NULL, 0, "job", "e", "n", "after", NULL);
    drv_test_xadd(t, "default", id, sizeof id, "job", "e", "a", "1", "b", "x y",
                  NULL);
    drv_test_wait_stat(t, "default", "processed", 10);
    snprintf(key, sizeof key, "t:{default}:result:%s", id);
    drv_test_expect_hget(t, key, "result", "{\"a\":\"1\",\"b\":\"x y\"}");
    drv_test_expect_hget(t, key, "status", "ok");
    assert_int_equal(drv_test_num(t, "XLEN t:{default}:jobs"), 0);
    /* registered (heartbeat), and gone after a clean stop */
    wait_until_num(drv_test_num(t, "HLEN t:workers"), ==, 1,
                   "workers registered");
    drv_test_droverd_stop(t, 0, 0);
    assert_int_equal(drv_test_num(t, "HLEN t:workers"), 0);
}

static void
test_worker_bad_jobs_dead_with_reasons(void **st)
{
    struct drv_test_droverd *t = *st;
    char errs[4096];

    drv_test_droverd_config(t, "",
                            "queues: [default]\n"
                            "jobs:\n"
                            "  e:\n    handler: echo\n"
                            "  s:\n    handler: sleep\n"
                            "  x:\n    handler: exec\n"
                            "    command: [echo, \"{path}\"]\n");
    drv_test_xadd(t, "default", NULL, 0, "foo", "bar", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "nosuch", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "s", "ms", "12abc", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "s", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "x", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "s", "ms",
                  "99999999999999999999", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "e", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "s", "ms", "5", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "x", "path", "ok", NULL);
    drv_test_droverd_start(t, 0);
    drv_test_wait_stat(t, "default", "dead", 6);
    drv_test_wait_stat(t, "default", "processed", 3);
    drv_test_dead_fields(t, "default", "error", errs, sizeof errs);
    assert_non_null(strstr(errs, "missing field job|"));
    assert_non_null(strstr(errs, "unknown job type \"nosuch\""));
    assert_non_null(strstr(errs, "field ms: \"12abc\" is not a plain"));
    assert_non_null(strstr(errs, "missing field ms|"));
    assert_non_null(strstr(errs, "missing field path|"));
    assert_non_null(strstr(errs, "field ms: 99999999999999999999 is out of "
                                 "range"));
    /* the bad job's own fields are kept */
    drv_test_dead_fields(t, "default", "foo", errs, sizeof errs);
    assert_string_equal(errs, "bar|");
    drv_test_droverd_stop(t, 0, 0);
}

static void
test_worker_retries_end_in_dead_with_attempts(void **st)
{
    struct drv_test_droverd *t = *st;
    char v[1024];

    drv_test_droverd_config(t, "",
                            "queues: [default]\n"
                            "jobs:\n"
                            "  f:\n    handler: fail\n    retries: 2\n"
                            "    backoff: 10ms\n    backoff_max: 50ms\n"
                            "  t75:\n    handler: exec\n    retries: 1\n"
                            "    backoff: 10ms\n"
                            "    command: [sh, -c, \"exit 75\"]\n"
                            "  t65:\n    handler: exec\n    retries: 5\n"
                            "    command: [sh, -c, \"echo no >&2; "
                            "exit 65\"]\n");
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "job", "f", "error", "boom", NULL);
    drv_test_wait_stat(t, "default", "dead", 1);
    drv_test_dead_fields(t, "default", "attempts", v, sizeof v);
    assert_string_equal(v, "3|");
    drv_test_dead_fields(t, "default", "error", v, sizeof v);
    assert_string_equal(v, "boom|");
    assert_int_equal(drv_test_stat(t, "default", "failed"), 3);
    assert_int_equal(drv_test_stat(t, "default", "retried"), 2);
    /* permanent: dead at once */
    drv_test_xadd(t, "default", NULL, 0, "job", "f", "error", "perm",
                  "permanent", "1", NULL);
    drv_test_wait_stat(t, "default", "dead", 2);
    assert_int_equal(drv_test_stat(t, "default", "retried"), 2);
    /* exec 75: retried (1 retry), exec 65: dead at once */
    drv_test_xadd(t, "default", NULL, 0, "job", "t75", NULL);
    drv_test_wait_stat(t, "default", "dead", 3);
    assert_int_equal(drv_test_stat(t, "default", "retried"), 3);
    drv_test_xadd(t, "default", NULL, 0, "job", "t65", NULL);
    drv_test_wait_stat(t, "default", "dead", 4);
    assert_int_equal(drv_test_stat(t, "default", "retried"), 3);
    drv_test_dead_fields(t, "default", "error", v, sizeof v);
    assert_non_null(strstr(v, "exit status 65 (permanent failure): no|"));
    assert_non_null(strstr(v, "exit status 75 (temporary failure)|"));
    drv_test_droverd_stop(t, 0, 0);
}

static void
test_worker_exec_timeout_kills_child_and_grandchild(void **st)
{
    struct drv_test_droverd *t = *st;
    char body[2048], pidf[400], v[1024];
    long gc = 0;
    FILE *f;

    snprintf(pidf, sizeof pidf, "%s/gc.pid", t->dir);
    snprintf(body, sizeof body,
             "queues: [default]\n"
             "jobs:\n"
             "  slow:\n    handler: exec\n    timeout: 500ms\n"
             "    retries: 0\n    kill_grace: 200ms\n"
             "    command: [sh, -c, \"sleep 60 & echo $! > %s; wait\"]\n",
             pidf);
    drv_test_droverd_config(t, "", body);
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "job", "slow", NULL);
    drv_test_wait_stat(t, "default", "dead", 1);
    drv_test_dead_fields(t, "default", "error", v, sizeof v);
    assert_non_null(strstr(v, "timed out"));
    f = fopen(pidf, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld", &gc), 1);
    fclose(f);
    wait_until(!drv_test_pid_alive(gc), "grandchild %ld to die", gc);
    drv_test_droverd_stop(t, 0, 0);
}

static long
read_max(const char *dir)
{
    return drv_test_file_num(dir, "max");
}

static void
test_worker_concurrency_limits_hold_and_are_used(void **st)
{
    struct drv_test_droverd *t = *st;
    char body[4096], prog[300], da[300], db[300], dall[300];
    int i;

    drv_test_prog("drv_concur", prog, sizeof prog);
    snprintf(da, sizeof da, "%s/a", t->dir);
    snprintf(db, sizeof db, "%s/b", t->dir);
    snprintf(dall, sizeof dall, "%s/all", t->dir);
    mkdir(da, 0700);
    mkdir(db, 0700);
    mkdir(dall, 0700);
    /* each run holds its slot 1 s: the runs started together overlap even
     * when a busy machine is slow to spawn them */
    snprintf(body, sizeof body,
             "queues: [default]\n"
             "jobs:\n"
             "  a:\n    handler: exec\n    concurrency: 2\n"
             "    command: [%s, %s, %s, \"1000\"]\n"
             "  b:\n    handler: exec\n    concurrency: 10\n"
             "    command: [%s, %s, %s, \"1000\"]\n",
             prog, da, dall, prog, db, dall);
    drv_test_droverd_config(t, "  concurrency: 4\n", body);
    for (i = 0; i < 8; i++) {
        drv_test_xadd(t, "default", NULL, 0, "job", "a", NULL);
        drv_test_xadd(t, "default", NULL, 0, "job", "b", NULL);
    }
    drv_test_droverd_start(t, 0);
    drv_test_wait_stat(t, "default", "processed", 16);
    assert_int_equal(read_max(da), 2);   /* the type limit, reached */
    assert_int_equal(read_max(dall), 4); /* the process limit, reached */
    assert_true(read_max(db) <= 4);
    drv_test_droverd_stop(t, 0, 0);
}

static int64_t
finished_at(struct drv_test_droverd *t, const char *id)
{
    char *v;
    int64_t r;

    v = drv_test_result(t, "default", id, "finished_at");
    assert_non_null(v);
    r = atoll(v);
    free(v);
    return r;
}

static void
test_worker_blocking_jobs_do_not_delay_loop_jobs(void **st)
{
    struct drv_test_droverd *t = *st;
    char blk[2][64], ech[20][64];
    int64_t last_echo = 0, first_block;
    int i;

    drv_test_droverd_config(t, "  threads: 2\n",
                            "queues: [default]\n"
                            "jobs:\n"
                            "  blk:\n    handler: block\n    result_ttl: 1m\n"
                            "  e:\n    handler: echo\n    result_ttl: 1m\n");
    drv_test_droverd_start(t, 0);
    /* the pool jobs block 6 s: time enough for 20 loop jobs on a busy
     * machine too */
    for (i = 0; i < 2; i++)
        drv_test_xadd(t, "default", blk[i], sizeof blk[i], "job", "blk",
                      "ms", "6000", NULL);
    drv_test_wait_pending(t, "default", 2);
    for (i = 0; i < 20; i++)
        drv_test_xadd(t, "default", ech[i], sizeof ech[i], "job", "e", NULL);
    drv_test_wait_stat(t, "default", "processed", 22);
    first_block = finished_at(t, blk[0]);
    if (finished_at(t, blk[1]) < first_block)
        first_block = finished_at(t, blk[1]);
    for (i = 0; i < 20; i++)
        if (finished_at(t, ech[i]) > last_echo)
            last_echo = finished_at(t, ech[i]);
    /* every loop job finished while the pool jobs still blocked */
    assert_true(last_echo < first_block);
    drv_test_droverd_stop(t, 0, 0);
}

static void
test_worker_graceful_stop_drains_running_jobs(void **st)
{
    struct drv_test_droverd *t = *st;
    int i;

    drv_test_droverd_config(t, "",
                            "queues: [default]\n"
                            "jobs:\n  s:\n    handler: sleep\n");
    drv_test_droverd_start(t, 0);
    for (i = 0; i < 5; i++)
        drv_test_xadd(t, "default", NULL, 0, "job", "s", "ms", "400", NULL);
    drv_test_wait_pending(t, "default", 5);
    drv_test_droverd_stop(t, 0, 0);
    assert_int_equal(drv_test_stat(t, "default", "processed"), 5);
    assert_int_equal(drv_test_num(t, "XLEN t:{default}:jobs"), 0);
}

static void
test_worker_graceful_stop_requeues_unfinished(void **st)
{
    struct drv_test_droverd *t = *st;
    int i;

    drv_test_droverd_config(t, "  concurrency: 2\n  shutdown_timeout: 300ms\n",
                            "queues: [default]\n"
                            "jobs:\n  s:\n    handler: sleep\n");
    drv_test_droverd_start(t, 0);
    for (i = 0; i < 5; i++)
        drv_test_xadd(t, "default", NULL, 0, "job", "s", "ms", "60000", NULL);
    drv_test_wait_pending(t, "default", 2);
    drv_test_droverd_stop(t, 0, 0);
    /* all five back, undelivered, no attempt counted; the two that ran
     * were re-created carrying their id, the three never fetched are
     * untouched */
    assert_int_equal(drv_test_given_back(t, "default", 5), 2);
}

static void
test_worker_kill9_loses_no_job(void **st)
{
    struct drv_test_droverd *t = *st;
    int i;

    drv_test_droverd_config(t, "  visibility_timeout: 1s\n",
                            "queues: [default]\n"
                            "jobs:\n  s:\n    handler: sleep\n");
    drv_test_droverd_start(t, 0);
    for (i = 0; i < 6; i++)
        drv_test_xadd(t, "default", NULL, 0, "job", "s", "ms", "1000", NULL);
    drv_test_wait_pending(t, "default", 6);
    drv_test_kill(&t->w[0], SIGKILL);
    drv_test_droverd_start(t, 1);
    drv_test_wait_stat(t, "default", "processed", 6);
    assert_int_equal(drv_test_stat(t, "default", "dead"), 0);
    assert_int_equal(drv_test_num(t, "XLEN t:{default}:jobs"), 0);
    drv_test_droverd_stop(t, 1, 0);
}

static void
test_worker_redis_restart_loses_no_job(void **st)
{
    struct drv_test_droverd *t = *st;
    redisReply *r;
    int i;

    if (drv_test_srv.external)
        skip();
    /* persistence, so the restart keeps streams, groups and PELs */
    freeReplyObject(redisCommand(t->c, "CONFIG SET appendonly yes"));
    freeReplyObject(redisCommand(t->c, "CONFIG SET appendfsync always"));
    freeReplyObject(redisCommand(t->c, "CONFIG REWRITE"));
    drv_test_droverd_config(t, "",
                            "queues: [default]\n"
                            "jobs:\n  s:\n    handler: sleep\n"
                            "  e:\n    handler: echo\n");
    drv_test_droverd_start(t, 0);
    for (i = 0; i < 6; i++)
        drv_test_xadd(t, "default", NULL, 0, "job", "s", "ms", "1500", NULL);
    drv_test_wait_pending(t, "default", 6);
    /* wait for the AOF rewrite that appendonly started to finish (the PEL
     * is then on disk: appendfsync always), then restart */
    wait_until_num(drv_test_redis_info(t->c, "aof_rewrite_in_progress") +
                       drv_test_redis_info(t->c, "aof_rewrite_scheduled"),
                   ==, 0, "AOF rewrites running or scheduled");
    wait_until_num(drv_test_redis_info(t->c, "aof_enabled"), ==, 1,
                   "aof_enabled");
    redisFree(t->c);
    t->c = NULL;
    assert_int_equal(drv_test_redis_restart(&drv_test_srv), 0);
    t->c = drv_test_redis_connect(&drv_test_srv);
    assert_non_null(t->c);
    drv_test_wait_stat(t, "default", "processed", 6);
    /* the same worker fetches again after the restart */
    assert_true(t->w[0].pid > 0);
    drv_test_xadd(t, "default", NULL, 0, "job", "e", NULL);
    drv_test_wait_stat(t, "default", "processed", 7);
    drv_test_droverd_stop(t, 0, 0);
    r = redisCommand(t->c, "CONFIG SET appendonly no");
    freeReplyObject(r);
    freeReplyObject(redisCommand(t->c, "CONFIG REWRITE"));
}

static void
test_worker_poison_job_dead_lettered(void **st)
{
    struct drv_test_droverd *t = *st;
    char id[64], v[1024];

    drv_test_droverd_config(t,
                            "  visibility_timeout: 500ms\n"
                            "  max_deliveries: 2\n",
                            "queues: [default]\n"
                            "jobs:\n  e:\n    handler: echo\n");
    drv_test_xadd(t, "default", id, sizeof id, "job", "e", "k", "v", NULL);
    freeReplyObject(redisCommand(t->c, "XGROUP CREATE t:{default}:jobs "
                                       "drover 0"));
    /* delivered twice to workers that died */
    freeReplyObject(redisCommand(t->c, "XREADGROUP GROUP drover ghost1 "
                                       "COUNT 1 STREAMS t:{default}:jobs >"));
    freeReplyObject(redisCommand(t->c, "XCLAIM t:{default}:jobs drover "
                                       "ghost2 0 %s", id));
    drv_test_droverd_start(t, 0);
    drv_test_wait_stat(t, "default", "dead", 1);
    drv_test_dead_fields(t, "default", "error", v, sizeof v);
    assert_non_null(strstr(v, "poison: delivered 2 times"));
    drv_test_dead_fields(t, "default", "k", v, sizeof v);
    assert_string_equal(v, "v|");
    assert_int_equal(drv_test_stat(t, "default", "processed"), 0);
    drv_test_droverd_stop(t, 0, 0);
}

static void
test_worker_exec_gets_fields_literally(void **st)
{
    struct drv_test_droverd *t = *st;
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
    drv_test_droverd_config(t, "", body);
    {
        char bin[300], log[400];
        const char *argv[] = {NULL, "-c", t->cfg, NULL};
        const char *env[] = {NULL, NULL};
        char url_env[500];

        drv_test_bin("droverd", bin, sizeof bin);
        argv[0] = bin;
        snprintf(log, sizeof log, "%s/droverd-lit.log", t->dir);
        snprintf(url_env, sizeof url_env, "DROVER_REDIS_URL=%s",
                 drv_test_srv.url);
        env[0] = url_env;
        assert_int_equal(drv_test_spawn(&t->w[0], argv, log, env), 0);
    }
    snprintf(buf, sizeof buf, "$(touch %s)", pwned);
    drv_test_xadd(t, "default", NULL, 0, "job", "lit", "arg", buf, "other",
                  "a\"b", NULL);
    drv_test_wait_stat(t, "default", "processed", 1);
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
    assert_false(drv_test_file_contains(envf, drv_test_srv.url));
    drv_test_droverd_stop(t, 0, 0);
}

static void
test_worker_paused_queue_is_not_fetched(void **st)
{
    struct drv_test_droverd *t = *st;

    drv_test_droverd_config(t, "",
                            "queues: [hi, lo]\n"
                            "jobs:\n  e:\n    handler: echo\n");
    freeReplyObject(redisCommand(t->c, "SET t:{lo}:paused 1"));
    drv_test_xadd(t, "lo", NULL, 0, "job", "e", NULL);
    drv_test_xadd(t, "hi", NULL, 0, "job", "e", NULL);
    drv_test_droverd_start(t, 0);
    drv_test_wait_stat(t, "hi", "processed", 1);
    /* a paused queue is left alone (a negative check: it gets time). The
     * worker knows lo is paused, then fetches hi twice more: each fetch
     * would have taken lo's job too had it not skipped lo */
    drv_test_wait_log(t, "msg=\"queue paused\" queue=lo", 1);
    drv_test_xadd(t, "hi", NULL, 0, "job", "e", NULL);
    drv_test_wait_stat(t, "hi", "processed", 2);
    drv_test_xadd(t, "hi", NULL, 0, "job", "e", NULL);
    drv_test_wait_stat(t, "hi", "processed", 3);
    assert_int_equal(drv_test_stat(t, "lo", "processed"), 0);
    assert_int_equal(drv_test_num(t, "XLEN t:{lo}:jobs"), 1);
    /* resumed: noticed by the worker, the job runs */
    freeReplyObject(redisCommand(t->c, "DEL t:{lo}:paused"));
    drv_test_wait_stat(t, "lo", "processed", 1);
    drv_test_droverd_stop(t, 0, 0);
}

static void
test_worker_removes_stale_registry_entries(void **st)
{
    struct drv_test_droverd *t = *st;
    char fresh[256];

    drv_test_droverd_config(t, "",
                            "queues: [default]\n"
                            "jobs:\n  e:\n    handler: echo\n");
    /* a worker dead for long (beat in 1970), and one that beat just now */
    freeReplyObject(redisCommand(t->c, "HSET t:workers ghost %s",
                                 "host=x pid=1 started=1 queues=default "
                                 "busy=0 beat=1000"));
    snprintf(fresh, sizeof fresh, "host=y pid=2 started=1 queues=default "
             "busy=0 beat=%lld", (long long)time(NULL) * 1000);
    freeReplyObject(redisCommand(t->c, "HSET t:workers alive %s", fresh));
    drv_test_droverd_start(t, 0);
    wait_until_num(drv_test_num(t, "HEXISTS t:workers ghost"), ==, 0,
                   "ghost worker entry");
    assert_int_equal(drv_test_num(t, "HEXISTS t:workers alive"), 1);
    drv_test_droverd_stop(t, 0, 0);
}

/* A value that may hold anything is written through drv_log_q: a path
 * with a quote, '=' and a newline in it (the DROVER_TRACE_START file,
 * which cannot be opened) leaves the warning one line whose file= and
 * error= read back whole. */
static void
test_worker_log_values_stay_one_pair(void **st)
{
    static const char needle[] =
        "msg=\"DROVER_TRACE_START: cannot open: not tracing\"";
    struct drv_test_droverd *t = *st;
    struct drv_buf got;
    char *log, *line, *end;

    drv_test_droverd_config(t, "",
                            "queues: [default]\n"
                            "jobs:\n  e:\n    handler: echo\n");
    snprintf(t->trace, sizeof t->trace, "%s/no \"such\"\ndir=x/trace",
             t->dir);
    drv_test_droverd_start(t, 0);
    drv_test_wait_log(t, needle, 1);
    drv_test_droverd_stop(t, 0, 0);
    log = drv_test_slurp(t->log, NULL);
    assert_non_null(log);
    line = strstr(log, needle);
    assert_non_null(line);
    while (line > log && line[-1] != '\n')
        line--;
    end = strchr(line, '\n');
    assert_non_null(end);
    drv_buf_init(&got);
    assert_int_equal(drv_logfmt_get(line, (size_t)(end - line), "file",
                                     &got), 1);
    assert_string_equal(got.data, t->trace);
    drv_buf_reset(&got);
    assert_int_equal(drv_logfmt_get(line, (size_t)(end - line), "error",
                                     &got), 1);
    assert_string_equal(got.data, strerror(ENOENT));
    drv_buf_reset(&got);
    assert_int_equal(drv_logfmt_get(line, (size_t)(end - line), "dir",
                                     &got), 0);
    drv_buf_fini(&got);
    free(log);
}

static void
test_worker_started_while_redis_is_down(void **st)
{
    struct drv_test_droverd *t = *st;

    if (drv_test_srv.external)
        skip();
    drv_test_droverd_config(t, "",
                            "queues: [default]\n"
                            "jobs:\n  e:\n    handler: echo\n");
    redisFree(t->c);
    t->c = NULL;
    drv_test_redis_stop(&drv_test_srv);
    drv_test_droverd_start(t, 0);
    /* it keeps running and retrying instead of exiting: its log shows
     * retries after failed connects, and it is still there */
    drv_test_wait_log(t, "msg=\"redis retry scheduled\"", 3);
    assert_int_equal(drv_test_wait(&t->w[0], 10), -ETIMEDOUT);
    assert_int_equal(drv_test_redis_restart(&drv_test_srv), 0);
    t->c = drv_test_redis_connect(&drv_test_srv);
    assert_non_null(t->c);
    drv_test_xadd(t, "default", NULL, 0, "job", "e", NULL);
    drv_test_wait_stat(t, "default", "processed", 1);
    drv_test_droverd_stop(t, 0, 0);
}

static void
test_worker_bad_usage_and_config_exit_2(void **st)
{
    struct drv_test_droverd *t = *st;
    char bin[300], out[4096], path[400];
    const char *argv[] = {NULL, "-c", NULL, NULL};
    const char *noarg[] = {NULL, NULL};

    drv_test_bin("droverd", bin, sizeof bin);
    argv[0] = bin;
    noarg[0] = bin;
    assert_int_equal(drv_test_run(noarg, out, sizeof out, DRV_TEST_WAIT_MS), 2);
    snprintf(path, sizeof path, "%s/bad.yaml", t->dir);
    assert_int_equal(drv_test_write_file(path, "worker:\n  threads: 0\n"),
                     0);
    argv[2] = path;
    assert_int_equal(drv_test_run(argv, out, sizeof out, DRV_TEST_WAIT_MS), 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        TD(test_worker_runs_jobs_enqueued_before_and_after_start),
        TD(test_worker_bad_jobs_dead_with_reasons),
        TD(test_worker_retries_end_in_dead_with_attempts),
        TD(test_worker_exec_timeout_kills_child_and_grandchild),
        TD(test_worker_concurrency_limits_hold_and_are_used),
        TD(test_worker_blocking_jobs_do_not_delay_loop_jobs),
        TD(test_worker_graceful_stop_drains_running_jobs),
        TD(test_worker_graceful_stop_requeues_unfinished),
        TD(test_worker_kill9_loses_no_job),
        TD(test_worker_redis_restart_loses_no_job),
        TD(test_worker_poison_job_dead_lettered),
        TD(test_worker_exec_gets_fields_literally),
        TD(test_worker_paused_queue_is_not_fetched),
        TD(test_worker_removes_stale_registry_entries),
        TD(test_worker_log_values_stay_one_pair),
        TD(test_worker_started_while_redis_is_down),
        TD(test_worker_bad_usage_and_config_exit_2),
    };
#undef T

    drv_test_droverd_fixture = &opts;
    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, drv_test_redis_group_setup,
                                  drv_test_redis_group_teardown);
}
