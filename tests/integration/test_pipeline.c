/*
 * test_pipeline.c -- pipelines on real droverd and redis-server: results
 * passed step to step, a parallel step's failure cancelling its slow
 * sibling with every error collected, and a kill -9 between steps that
 * neither loses nor repeats a finished step's transition.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define WAIT_MS 30000

static struct drv_test_redis srv;

struct pt {
    char dir[256];
    char cfg[400];
    redisContext *c;
    struct drv_test_proc w[2];
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
    struct pt *t = calloc(1, sizeof *t);

    drv_test_redis_flush(&srv);
    assert_int_equal(drv_test_tmpdir("drover-pt", t->dir, sizeof t->dir), 0);
    t->c = drv_test_redis_connect(&srv);
    assert_non_null(t->c);
    *st = t;
    return 0;
}

static void
dump_log(const struct drv_test_proc *p)
{
    char cmd[600];

    snprintf(cmd, sizeof cmd, "tail -n 30 '%s' >&2", p->log);
    if (system(cmd) != 0)
        return;
}

static int
teardown(void **st)
{
    struct pt *t = *st;
    int i;
    const char *keep = getenv("DROVER_TEST_KEEP");

    for (i = 0; i < 2; i++)
        if (t->w[i].pid > 0) {
            dump_log(&t->w[i]);
            drv_test_kill(&t->w[i], SIGKILL);
        }
    redisFree(t->c);
    if (!(keep && strcmp(keep, "1") == 0))
        drv_test_rm_rf(t->dir);
    free(t);
    return 0;
}

static void
write_config(struct pt *t, const char *worker_extra, const char *body)
{
    char text[8192];

    snprintf(t->cfg, sizeof t->cfg, "%s/drover.yaml", t->dir);
    snprintf(text, sizeof text,
             "redis:\n  url: %s\n  prefix: t\n"
             "worker:\n  shutdown_timeout: 5s\n%s"
             "queues: [default]\n%s",
             srv.url, worker_extra, body);
    assert_int_equal(drv_test_write_file(t->cfg, text), 0);
}

static void
start_worker(struct pt *t, int i)
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
stop_worker(struct pt *t, int i)
{
    int rc;

    drv_test_kill(&t->w[i], SIGTERM);
    rc = drv_test_wait(&t->w[i], WAIT_MS);
    if (rc != 0) {
        dump_log(&t->w[i]);
        fail_msg("droverd exit %d", rc);
    }
}

static void
xadd(struct pt *t, char *id, size_t idn, ...)
{
    const char *argv[32];
    size_t lens[32];
    int argc = 0, i;
    const char *s;
    va_list ap;
    redisReply *r;

    argv[argc++] = "XADD";
    argv[argc++] = "t:{default}:jobs";
    argv[argc++] = "*";
    va_start(ap, idn);
    while ((s = va_arg(ap, const char *)) != NULL && argc < 32)
        argv[argc++] = s;
    va_end(ap);
    for (i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    r = redisCommandArgv(t->c, argc, argv, lens);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    if (id != NULL)
        snprintf(id, idn, "%s", r->str);
    freeReplyObject(r);
}

static long long
stat_of(struct pt *t, const char *name)
{
    redisReply *r = redisCommand(t->c, "HGET t:{default}:stats %s", name);
    long long v = (r && r->type == REDIS_REPLY_STRING) ? atoll(r->str) : 0;

    freeReplyObject(r);
    return v;
}

static void
wait_stat(struct pt *t, const char *name, long long want)
{
    int64_t deadline = drv_test_now_ms() + WAIT_MS;

    while (drv_test_now_ms() < deadline && stat_of(t, name) < want)
        drv_test_sleep_ms(20);
    if (stat_of(t, name) != want) {
        if (t->w[0].pid > 0)
            dump_log(&t->w[0]);
        fail_msg("stat %s is %lld, wanted %lld", name, stat_of(t, name),
                 want);
    }
}

static char *
hget(struct pt *t, const char *key, const char *field)
{
    redisReply *r = redisCommand(t->c, "HGET %s %s", key, field);
    char *v = (r && r->type == REDIS_REPLY_STRING) ? strdup(r->str) : NULL;

    freeReplyObject(r);
    return v;
}

static char *
dead_field(struct pt *t, const char *name)
{
    redisReply *r = redisCommand(t->c, "XRANGE t:{default}:dead - +");
    char *v = NULL;
    size_t k;

    if (r != NULL && r->elements > 0) {
        redisReply *f = r->element[0]->element[1];
        for (k = 0; k + 1 < f->elements; k += 2)
            if (strcmp(f->element[k]->str, name) == 0) {
                free(v);
                v = strdup(f->element[k + 1]->str);
            }
    }
    freeReplyObject(r);
    return v;
}

static void
test_pipeline_three_steps_pass_results(void **st)
{
    struct pt *t = *st;
    char id[64], key[128];
    char *v;

    write_config(t, "",
                 "jobs:\n"
                 "  a:\n    handler: exec\n"
                 "    command: [sh, -c, 'printf \"A:%s\" \"$1\"', sh, "
                 "\"{x}\"]\n"
                 "  b:\n    handler: exec\n"
                 "    command: [sh, -c, 'printf \"B:%s\" \"$1\"', sh, "
                 "\"{input}\"]\n"
                 "  c:\n    handler: echo\n"
                 "pipelines:\n"
                 "  p:\n    steps: [a, b, c]\n    result_ttl: 1m\n");
    start_worker(t, 0);
    xadd(t, id, sizeof id, "pipeline", "p", "x", "1 2", NULL);
    wait_stat(t, "processed", 1);
    snprintf(key, sizeof key, "t:{default}:result:%s", id);
    v = hget(t, key, "result");
    assert_non_null(v);
    /* step c (echo) saw x and the input of step b, which saw step a's */
    assert_string_equal(v, "{\"x\":\"1 2\",\"input\":\"B:A:1 2\"}");
    free(v);
    v = hget(t, key, "status");
    assert_string_equal(v, "ok");
    free(v);
    v = hget(t, key, "step.0.status");
    assert_string_equal(v, "ok");
    free(v);
    v = hget(t, key, "step.1.attempts");
    assert_string_equal(v, "1");
    free(v);
    v = hget(t, key, "step.2.finished_at");
    assert_non_null(v);
    free(v);
    assert_int_equal(stat_of(t, "dead"), 0);
    stop_worker(t, 0);
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
    return p != NULL && p[2] != 'Z';
}

static void
test_pipeline_parallel_failure_cancels_sibling(void **st)
{
    struct pt *t = *st;
    char body[2048], pidf[400], id[64];
    char *v;
    long pid = 0;
    int64_t deadline;
    FILE *f;

    snprintf(pidf, sizeof pidf, "%s/slow.pid", t->dir);
    snprintf(body, sizeof body,
             "jobs:\n"
             "  slow:\n    handler: exec\n    kill_grace: 200ms\n"
             "    command: [sh, -c, 'echo $$ > %s; exec sleep 60']\n"
             "  bad:\n    handler: exec\n"
             "    command: [sh, -c, 'while [ ! -s %s ]; do sleep 0.05; "
             "done; echo boom >&2; exit 3']\n"
             "  ok:\n    handler: echo\n"
             "pipelines:\n"
             "  p:\n    steps: [ok, {parallel: [slow, bad]}]\n"
             "    retries: 0\n",
             pidf, pidf);
    write_config(t, "", body);
    start_worker(t, 0);
    xadd(t, id, sizeof id, "pipeline", "p", NULL);
    wait_stat(t, "dead", 1);
    v = dead_field(t, "pipeline");
    assert_string_equal(v, "p");
    free(v);
    v = dead_field(t, "step");
    assert_string_equal(v, "1");
    free(v);
    v = dead_field(t, "error");
    assert_non_null(v);
    assert_non_null(strstr(v, "parallel step 1 failed: "));
    assert_non_null(strstr(v, "bad: failed: exit status 3: boom"));
    assert_non_null(strstr(v, "slow: cancelled (sibling_failed)"));
    free(v);
    v = dead_field(t, "id");
    assert_string_equal(v, id);
    free(v);
    /* the slow sibling's child was killed, long before its 60 s */
    f = fopen(pidf, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld", &pid), 1);
    fclose(f);
    deadline = drv_test_now_ms() + 5000;
    while (proc_alive(pid) && drv_test_now_ms() < deadline)
        drv_test_sleep_ms(20);
    assert_false(proc_alive(pid));
    stop_worker(t, 0);
}

static void
test_pipeline_parallel_success_combines_results(void **st)
{
    struct pt *t = *st;
    char id[64], key[128];
    char *v;

    write_config(t, "",
                 "jobs:\n"
                 "  u:\n    handler: exec\n    command: [printf, up]\n"
                 "  n:\n    handler: exec\n    command: [printf, \"n{k}\"]\n"
                 "  last:\n    handler: echo\n"
                 "pipelines:\n"
                 "  p:\n    steps: [{parallel: [u, n]}, last]\n"
                 "    result_ttl: 1m\n");
    start_worker(t, 0);
    xadd(t, id, sizeof id, "pipeline", "p", "k", "1", NULL);
    wait_stat(t, "processed", 1);
    snprintf(key, sizeof key, "t:{default}:result:%s", id);
    v = hget(t, key, "result");
    assert_non_null(v);
    assert_string_equal(v, "{\"k\":\"1\",\"input\":"
                           "\"{\\\"u\\\":\\\"up\\\",\\\"n\\\":\\\"n1\\\"}\"}");
    free(v);
    stop_worker(t, 0);
}

static void
test_pipeline_kill9_between_steps_repeats_nothing(void **st)
{
    struct pt *t = *st;
    char body[2048], log[400];
    int64_t deadline;
    redisReply *r;
    FILE *f;
    char buf[64];
    size_t n;

    snprintf(log, sizeof log, "%s/steps", t->dir);
    snprintf(body, sizeof body,
             "jobs:\n"
             "  first:\n    handler: exec\n"
             "    command: [sh, -c, 'printf 0 >> %s']\n"
             "  wait:\n    handler: sleep\n"
             "  last:\n    handler: exec\n"
             "    command: [sh, -c, 'printf 2 >> %s']\n"
             "pipelines:\n"
             "  p:\n    steps: [first, wait, last]\n",
             log, log);
    write_config(t, "  visibility_timeout: 1s\n", body);
    start_worker(t, 0);
    xadd(t, NULL, 0, "pipeline", "p", "ms", "3000", NULL);
    /* wait until step 1 (sleep) is running: its entry has step=1 */
    deadline = drv_test_now_ms() + WAIT_MS;
    for (;;) {
        int running = 0;
        r = redisCommand(t->c, "XRANGE t:{default}:jobs - +");
        if (r != NULL && r->elements == 1) {
            redisReply *fv = r->element[0]->element[1];
            size_t k;
            for (k = 0; k + 1 < fv->elements; k += 2)
                if (strcmp(fv->element[k]->str, "step") == 0 &&
                    strcmp(fv->element[k + 1]->str, "1") == 0)
                    running = 1;
        }
        freeReplyObject(r);
        if (running)
            break;
        assert_true(drv_test_now_ms() < deadline);
        drv_test_sleep_ms(20);
    }
    drv_test_sleep_ms(200); /* delivered and started */
    drv_test_kill(&t->w[0], SIGKILL);
    start_worker(t, 1);
    wait_stat(t, "processed", 1);
    f = fopen(log, "r");
    assert_non_null(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    assert_string_equal(buf, "02"); /* step 0 ran once, step 2 once */
    assert_int_equal(stat_of(t, "dead"), 0);
    stop_worker(t, 1);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_pipeline_three_steps_pass_results),
        T(test_pipeline_parallel_failure_cancels_sibling),
        T(test_pipeline_parallel_success_combines_results),
        T(test_pipeline_kill9_between_steps_repeats_nothing),
    };
#undef T

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
