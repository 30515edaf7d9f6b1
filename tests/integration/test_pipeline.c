/*
 * test_pipeline.c -- pipelines on real droverd and redis-server: results
 * passed step to step, a parallel step's failure cancelling its slow
 * sibling with every error collected, a kill -9 between steps that
 * neither loses nor repeats a finished step's transition, and a step the
 * reclaim finds poison ending dead.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "droverd.h"

/* every test's config starts its body with the one queue */
static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-pt",
    .prefix = "t",
    .log_level = "debug",
    .worker_defaults = "  shutdown_timeout: 5s\n",
    .body_head = "queues: [default]\n",
    .tail_lines = 30,
};

static void
test_pipeline_three_steps_pass_results(void **st)
{
    struct drv_test_droverd *t = *st;
    char id[64], key[128];
    char *v;

    drv_test_droverd_config(t, "",
                            "jobs:\n"
                            "  a:\n    handler: exec\n"
                            "    command: [sh, -c, 'printf \"A:%s\" \"$1\"', "
                            "sh, \"{x}\"]\n"
                            "  b:\n    handler: exec\n"
                            "    command: [sh, -c, 'printf \"B:%s\" \"$1\"', "
                            "sh, \"{input}\"]\n"
                            "  c:\n    handler: echo\n"
                            "pipelines:\n"
                            "  p:\n    steps: [a, b, c]\n    result_ttl: 1m\n");
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", id, sizeof id, "pipeline", "p", "x", "1 2",
                  NULL);
    drv_test_wait_stat(t, "default", "processed", 1);
    snprintf(key, sizeof key, "t:{default}:result:%s", id);
    v = drv_test_hget(t, key, "result");
    assert_non_null(v);
    /* step c (echo) saw x and the input of step b, which saw step a's */
    assert_string_equal(v, "{\"x\":\"1 2\",\"input\":\"B:A:1 2\"}");
    free(v);
    drv_test_expect_hget(t, key, "status", "ok");
    drv_test_expect_hget(t, key, "step.0.status", "ok");
    drv_test_expect_hget(t, key, "step.1.attempts", "1");
    v = drv_test_hget(t, key, "step.2.finished_at");
    assert_non_null(v);
    free(v);
    assert_int_equal(drv_test_stat(t, "default", "dead"), 0);
    drv_test_droverd_stop(t, 0, 0);
}

static void
test_pipeline_parallel_failure_cancels_sibling(void **st)
{
    struct drv_test_droverd *t = *st;
    char body[2048], pidf[400], id[64], v[4096];
    long pid = 0;
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
    drv_test_droverd_config(t, "", body);
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", id, sizeof id, "pipeline", "p", NULL);
    drv_test_wait_stat(t, "default", "dead", 1);
    drv_test_dead_field(t, "default", NULL, NULL, "pipeline", v, sizeof v);
    assert_string_equal(v, "p");
    drv_test_dead_field(t, "default", NULL, NULL, "step", v, sizeof v);
    assert_string_equal(v, "1");
    drv_test_dead_field(t, "default", NULL, NULL, "error", v, sizeof v);
    assert_true(v[0] != '\0');
    assert_non_null(strstr(v, "parallel step 1 failed: "));
    assert_non_null(strstr(v, "bad: failed: exit status 3: boom"));
    assert_non_null(strstr(v, "slow: cancelled (sibling_failed)"));
    drv_test_dead_field(t, "default", NULL, NULL, "id", v, sizeof v);
    assert_string_equal(v, id);
    /* the slow sibling's child was killed, long before its 60 s */
    f = fopen(pidf, "r");
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%ld", &pid), 1);
    fclose(f);
    wait_until(!drv_test_pid_alive(pid), "slow's child %ld to die", pid);
    drv_test_droverd_stop(t, 0, 0);
}

static void
test_pipeline_parallel_success_combines_results(void **st)
{
    struct drv_test_droverd *t = *st;
    char id[64], key[128];

    drv_test_droverd_config(t, "",
                            "jobs:\n"
                            "  u:\n    handler: exec\n"
                            "    command: [printf, up]\n"
                            "  n:\n    handler: exec\n"
                            "    command: [printf, \"n{k}\"]\n"
                            "  last:\n    handler: echo\n"
                            "pipelines:\n"
                            "  p:\n    steps: [{parallel: [u, n]}, last]\n"
                            "    result_ttl: 1m\n");
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", id, sizeof id, "pipeline", "p", "k", "1", NULL);
    drv_test_wait_stat(t, "default", "processed", 1);
    snprintf(key, sizeof key, "t:{default}:result:%s", id);
    drv_test_expect_hget(t, key, "result",
                         "{\"k\":\"1\",\"input\":"
                           "\"{\\\"u\\\":\\\"up\\\",\\\"n\\\":\\\"n1\\\"}\"}");
    drv_test_droverd_stop(t, 0, 0);
}

/* 1 if q's stream holds exactly one entry, and its field step is 1. */
static int
only_entry_at_step1(struct drv_test_droverd *t)
{
    redisReply *r = redisCommand(t->c, "XRANGE t:{default}:jobs - +");
    int at = 0;

    assert_non_null(r);
    if (r->elements == 1) {
        redisReply *fv = r->element[0]->element[1];
        size_t k;
        for (k = 0; k + 1 < fv->elements; k += 2)
            if (strcmp(fv->element[k]->str, "step") == 0 &&
                strcmp(fv->element[k + 1]->str, "1") == 0)
                at = 1;
    }
    freeReplyObject(r);
    return at;
}

static void
test_pipeline_kill9_between_steps_repeats_nothing(void **st)
{
    struct drv_test_droverd *t = *st;
    char body[2048], log[400];
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
    drv_test_droverd_config(t, "  visibility_timeout: 1s\n", body);
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "pipeline", "p", "ms", "3000", NULL);
    /* wait until step 1 (sleep) is running: its entry has step=1, and
     * droverd has started a second job (step 0, then step 1) */
    wait_until(only_entry_at_step1(t), "the one entry to reach step 1");
    drv_test_wait_started(t, 2);
    drv_test_kill(&t->w[0], SIGKILL);
    drv_test_droverd_start(t, 1);
    drv_test_wait_stat(t, "default", "processed", 1);
    f = fopen(log, "r");
    assert_non_null(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    assert_string_equal(buf, "02"); /* step 0 ran once, step 2 once */
    assert_int_equal(drv_test_stat(t, "default", "dead"), 0);
    drv_test_droverd_stop(t, 1, 0);
}

/* Field f of job id's result hash contains want. */
static void
expect_result(struct drv_test_droverd *t, const char *id, const char *f,
              const char *want)
{
    char *v = drv_test_result(t, "default", id, f);

    if (v == NULL || strstr(v, want) == NULL)
        fail_msg("%s %s: %s, not %s", id, f, v != NULL ? v : "(nil)", want);
    free(v);
}

/*
 * A step's entry delivered twice to workers that died (max_deliveries
 * 2): the first entry (step 0) and a later step's (step 1, as the settle
 * of step 0 writes it). The reclaim sends each to dead; its result hash
 * says dead with the poison error and the step's record, and drover wait
 * on its id returns 1.
 */
static void
test_pipeline_poisoned_step_ends_dead(void **st)
{
    struct drv_test_droverd *t = *st;
    const char *w0[] = {"wait", "default", "L0", "--timeout", "60s", NULL};
    const char *w1[] = {"wait", "default", "L1", "--timeout", "60s", NULL};
    char e0[64], e1[64];
    int i;

    drv_test_droverd_config(t, "  visibility_timeout: 1s\n"
                               "  max_deliveries: 2\n",
                            "jobs:\n"
                            "  s:\n    handler: exec\n"
                            "    command: [printf, fine]\n"
                            "pipelines:\n"
                            "  lp:\n    steps: [s, s]\n"
                            "    result_ttl: 1h\n");
    drv_test_redis_ok(t->c, "XGROUP CREATE t:{default}:jobs drover 0 "
                      "MKSTREAM");
    drv_test_xadd(t, "default", e0, sizeof e0, "pipeline", "lp", "id",
                  "L0", NULL);
    drv_test_deliver_twice(t, "default", e0);
    drv_test_xadd(t, "default", e1, sizeof e1, "pipeline", "lp", "id",
                  "L1", "step", "1", "input", "fine", NULL);
    drv_test_deliver_twice(t, "default", e1);
    drv_test_droverd_start(t, 0);
    drv_test_wait_stat(t, "default", "dead", 2);
    for (i = 0; i < 2; i++) {
        char f[32];
        char *o = drv_test_cli_out(t->dir, t->cfg, 1, i ? w1 : w0);

        if (strstr(o, "status: dead\n") == NULL ||
            strstr(o, "error: poison: delivered 2 times") == NULL)
            fail_msg("drover wait L%d printed: %s", i, o);
        free(o);
        snprintf(f, sizeof f, "step.%d.status", i);
        expect_result(t, i ? "L1" : "L0", f, "dead");
        snprintf(f, sizeof f, "step.%d.error", i);
        expect_result(t, i ? "L1" : "L0", f, "poison: delivered 2 times");
    }
    /* kept the pipeline's result_ttl (1h), not the default day */
    assert_true(drv_test_num(t, "PTTL t:{default}:result:L1") <=
                3600 * 1000);
    assert_int_equal(drv_test_stat(t, "default", "processed"), 0);
    drv_test_droverd_stop(t, 0, 0);
}

/*
 * Step 1's entry is larger than max_job_bytes (its input, step 0's
 * result, is 2,000 bytes): the worker that fetches it ends it dead naming
 * its size, as step 1, and the result keeps step 0's record.
 */
static void
test_pipeline_oversized_step_keeps_the_record(void **st)
{
    struct drv_test_droverd *t = *st;
    const char *args[] = {"wait", "default", "B", "--timeout", "60s", NULL};
    char step[8], *o;

    drv_test_droverd_config(t, "  max_job_bytes: 1KiB\n",
                            "jobs:\n"
                            "  big:\n    handler: exec\n"
                            "    command: [sh, -c, 'head -c 2000 /dev/zero "
                            "| tr \"\\\\0\" x']\n"
                            "  s:\n    handler: exec\n"
                            "    command: [printf, fine]\n"
                            "pipelines:\n"
                            "  lp:\n    steps: [big, s]\n"
                            "    result_ttl: 1h\n");
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "pipeline", "lp", "id", "B", NULL);
    drv_test_wait_stat(t, "default", "dead", 1);
    o = drv_test_cli_out(t->dir, t->cfg, 1, args);
    if (strstr(o, "status: dead\n") == NULL ||
        strstr(o, "more than max_job_bytes 1024") == NULL)
        fail_msg("drover wait B printed: %s", o);
    free(o);
    expect_result(t, "B", "step.0.status", "ok");
    expect_result(t, "B", "step.1.status", "dead");
    expect_result(t, "B", "step.1.error", "more than max_job_bytes 1024");
    /* the dead entry names its step too */
    drv_test_dead_field(t, "default", "id", "B", "step", step, sizeof step);
    assert_string_equal(step, "1");
    drv_test_droverd_stop(t, 0, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        TD(test_pipeline_three_steps_pass_results),
        TD(test_pipeline_parallel_failure_cancels_sibling),
        TD(test_pipeline_parallel_success_combines_results),
        TD(test_pipeline_kill9_between_steps_repeats_nothing),
        TD(test_pipeline_poisoned_step_ends_dead),
        TD(test_pipeline_oversized_step_keeps_the_record),
    };
#undef T

    drv_test_droverd_fixture = &opts;
    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, drv_test_redis_group_setup,
                                  drv_test_redis_group_teardown);
}
