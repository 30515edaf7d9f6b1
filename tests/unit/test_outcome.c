/*
 * test_outcome.c -- the outcome decision (pkg/worker/outcome.c) without a
 * running droverd: which settle op an attempt's outcome becomes (ack,
 * retry with backoff, dead after the last retry, dead at once when
 * permanent or bad, requeue on stop, dropped when the lease was lost, the
 * next pipeline step, a parallel step's results and aggregated failure,
 * a timeout) and what text it carries.
 */
#include <errno.h>
#include <string.h>

#include "harness.h"
#include "drover/loop.h"
#include "drover/queue_cancel.h"
#include "drover/tg.h"
#include "../../pkg/worker/outcome.h"

#define NOW 1700000000000LL

static const struct drv_config_policy policy = {
    .timeout_ms = 3000, .retries = 2, .backoff_ms = 1000,
    .backoff_max_ms = 60000, .result_ttl_ms = 5000,
};

/* An outcome as a task group would report it. */
static struct drv_tg_outcome
outcome(enum drv_tg_state st, int code, const char *msg, const char *result)
{
    struct drv_tg_outcome o;

    memset(&o, 0, sizeof o);
    o.state = st;
    o.code = code;
    o.msg = msg != NULL ? msg : "";
    o.result = result;
    o.result_len = result != NULL ? strlen(result) : 0;
    if (st == DRV_TG_CANCELLED)
        o.cause = DRV_TG_CAUSE_SHUTDOWN;
    return o;
}

/* The random source: 0, the low end of the jitter. */
static uint64_t
zero(void)
{
    return 0;
}

static struct drv_outcome_in
input(const struct drv_tg_outcome *o, uint64_t attempt)
{
    struct drv_outcome_in in;

    memset(&in, 0, sizeof in);
    in.policy = &policy;
    in.result_ttl_ms = policy.result_ttl_ms;
    in.o = o;
    in.attempt = attempt;
    in.now_ms = NOW;
    in.random = zero;
    in.step = -1;
    return in;
}

static void
expect_text(const struct drv_decision *d, const char *text)
{
    assert_non_null(d->op.text);
    assert_int_equal(d->op.text_len, strlen(text));
    assert_memory_equal(d->op.text, text, strlen(text));
}

static void
test_outcome_ok_acks_with_the_result(void **st)
{
    struct drv_tg_outcome o = outcome(DRV_TG_OK, 0, NULL, "r\0x");
    struct drv_outcome_in in;
    struct drv_decision d;

    (void)st;
    o.result_len = 3; /* binary-safe: the NUL is kept */
    in = input(&o, 0);
    drv_outcome_decide(&in, &d);
    assert_false(d.drop);
    assert_int_equal(d.op.kind, DRV_SETTLE_ACK);
    assert_int_equal(d.op.attempts, 1);
    assert_int_equal(d.op.result_ttl_ms, 5000);
    assert_int_equal(d.op.text_len, 3);
    assert_memory_equal(d.op.text, "r\0x", 3);
    assert_false(d.op.pipeline);
    drv_decision_fini(&d);

    /* no result: no text (written as "") */
    o = outcome(DRV_TG_OK, 0, NULL, NULL);
    in = input(&o, 4);
    drv_outcome_decide(&in, &d);
    assert_int_equal(d.op.kind, DRV_SETTLE_ACK);
    assert_int_equal(d.op.attempts, 5);
    assert_null(d.op.text);
    drv_decision_fini(&d);
}

static void
test_outcome_failure_is_retried_with_backoff(void **st)
{
    struct drv_tg_outcome o = outcome(DRV_TG_FAILED, DRV_EHANDLER, "short",
                                      "the handler's error");
    struct drv_outcome_in in = input(&o, 0);
    struct drv_decision d;

    (void)st;
    drv_outcome_decide(&in, &d);
    assert_int_equal(d.op.kind, DRV_SETTLE_RETRY);
    assert_int_equal(d.op.attempts, 1);
    assert_int_equal(d.op.count_failed, 0);
    /* first retry: base 1000 ms with equal jitter, random 0: the low end */
    assert_in_range(d.op.due_ms, NOW + 500, NOW + 1000);
    expect_text(&d, "the handler's error");
    drv_decision_fini(&d);

    /* second retry: 2000 ms; a handler's Retry-After floors it */
    in = input(&o, 1);
    in.retry_after_ms = 30000;
    drv_outcome_decide(&in, &d);
    assert_int_equal(d.op.kind, DRV_SETTLE_RETRY);
    assert_int_equal(d.op.attempts, 2);
    assert_int_equal(d.op.due_ms, NOW + 30000);
    drv_decision_fini(&d);

    /* no text from the handler: the outcome's message */
    o = outcome(DRV_TG_FAILED, DRV_EHANDLER, "handler failed", NULL);
    in = input(&o, 0);
    drv_outcome_decide(&in, &d);
    expect_text(&d, "handler failed");
    drv_decision_fini(&d);
}

static void
test_outcome_dead_after_the_last_retry(void **st)
{
    struct drv_tg_outcome o = outcome(DRV_TG_FAILED, DRV_EHANDLER, "boom",
                                      NULL);
    struct drv_outcome_in in = input(&o, 2); /* retries: 2 -> 3 attempts */
    struct drv_decision d;

    (void)st;
    drv_outcome_decide(&in, &d);
    assert_int_equal(d.op.kind, DRV_SETTLE_DEAD);
    assert_int_equal(d.op.attempts, 3);
    assert_int_equal(d.op.count_failed, 1);
    expect_text(&d, "boom");
    drv_decision_fini(&d);
}

static void
test_outcome_permanent_and_bad_are_dead_at_once(void **st)
{
    struct drv_tg_outcome o = outcome(DRV_TG_FAILED, DRV_EPERMANENT, "404",
                                      "HTTP 404 Not Found");
    struct drv_outcome_in in = input(&o, 0);
    struct drv_decision d;

    (void)st;
    drv_outcome_decide(&in, &d);
    assert_int_equal(d.op.kind, DRV_SETTLE_DEAD);
    assert_int_equal(d.op.attempts, 1);
    assert_int_equal(d.op.count_failed, 1);
    expect_text(&d, "HTTP 404 Not Found");
    drv_decision_fini(&d);

    /* a job that cannot run names the field; no policy needed */
    o = outcome(DRV_TG_FAILED, DRV_EBADJOB, "missing field ms", NULL);
    in = input(&o, 0);
    in.policy = NULL;
    in.result_ttl_ms = 0;
    drv_outcome_decide(&in, &d);
    assert_int_equal(d.op.kind, DRV_SETTLE_DEAD);
    expect_text(&d, "missing field ms");
    /* no result_ttl applies: a dead job keeps its result a day */
    assert_int_equal(d.op.result_ttl_ms, DRV_QUEUE_DEAD_TTL_MS);
    drv_decision_fini(&d);

    /* the type's result_ttl when it has one; other outcomes keep none
     * without one */
    o = outcome(DRV_TG_FAILED, DRV_EPERMANENT, "no", NULL);
    in = input(&o, 0);
    drv_outcome_decide(&in, &d);
    assert_int_equal(d.op.kind, DRV_SETTLE_DEAD);
    assert_int_equal(d.op.result_ttl_ms, policy.result_ttl_ms);
    drv_decision_fini(&d);
    {
        const struct drv_tg_outcome others[2] = {
            outcome(DRV_TG_FAILED, EIO, "again", NULL),
            outcome(DRV_TG_OK, 0, "", "fine")};
        const enum drv_settle_kind kinds[2] = {DRV_SETTLE_RETRY,
                                               DRV_SETTLE_ACK};
        int i;

        for (i = 0; i < 2; i++) {
            in = input(&others[i], 0);
            in.result_ttl_ms = 0;
            drv_outcome_decide(&in, &d);
            assert_int_equal(d.op.kind, kinds[i]);
            assert_int_equal(d.op.result_ttl_ms, 0);
            drv_decision_fini(&d);
        }
    }
}

/* The poison case: reclaim dead-letters an entry delivered too often, in
 * the reclaim script; what reaches the worker is its last delivery,
 * which is decided like any other (here: it fails and has no retry left,
 * so it is dead, counting every attempt). */
static void
test_outcome_poison_last_delivery_is_dead(void **st)
{
    struct drv_tg_outcome o = outcome(DRV_TG_TIMED_OUT, -ETIMEDOUT,
                                      "timed out", NULL);
    struct drv_config_policy none = {.timeout_ms = 3000};
    struct drv_outcome_in in = input(&o, 7);
    struct drv_decision d;

    (void)st;
    in.policy = &none;
    drv_outcome_decide(&in, &d);
    assert_int_equal(d.op.kind, DRV_SETTLE_DEAD);
    assert_int_equal(d.op.attempts, 8);
    assert_int_equal(d.op.count_failed, 1);
    expect_text(&d, "timed out after 3000 ms");
    drv_decision_fini(&d);
}

static void
test_outcome_timeout_is_a_retried_failure(void **st)
{
    struct drv_tg_outcome o = outcome(DRV_TG_TIMED_OUT, -ETIMEDOUT,
                                      "timed out", "partial output");
    struct drv_outcome_in in = input(&o, 0);
    struct drv_decision d;

    (void)st;
    drv_outcome_decide(&in, &d);
    assert_int_equal(d.op.kind, DRV_SETTLE_RETRY);
    expect_text(&d, "timed out after 3000 ms");
    drv_decision_fini(&d);
}

static void
test_outcome_requeue_on_stop_and_drop_when_lost(void **st)
{
    struct drv_tg_outcome o = outcome(DRV_TG_CANCELLED, -ECANCELED,
                                      "cancelled", NULL);
    struct drv_outcome_in in = input(&o, 1);
    struct drv_decision d;

    (void)st;
    drv_outcome_decide(&in, &d);
    assert_false(d.drop);
    assert_int_equal(d.op.kind, DRV_SETTLE_REQUEUE);
    assert_null(d.op.text);
    drv_decision_fini(&d);

    in.lost = 1;
    drv_outcome_decide(&in, &d);
    assert_true(d.drop);
    drv_decision_fini(&d);
}

static void
test_outcome_error_text_is_cut(void **st)
{
    static char big[DRV_OUTCOME_TEXT_MAX + 100];
    struct drv_tg_outcome o;
    struct drv_outcome_in in;
    struct drv_decision d;

    (void)st;
    memset(big, 'e', sizeof big - 1);
    o = outcome(DRV_TG_FAILED, DRV_EHANDLER, "e", big);
    in = input(&o, 0);
    drv_outcome_decide(&in, &d);
    assert_int_equal(d.op.kind, DRV_SETTLE_RETRY);
    assert_int_equal(d.op.text_len, DRV_OUTCOME_TEXT_MAX);
    assert_int_equal(strlen(d.op.text), DRV_OUTCOME_TEXT_MAX);
    drv_decision_fini(&d);

    /* a result is written whole */
    o = outcome(DRV_TG_OK, 0, NULL, big);
    in = input(&o, 0);
    drv_outcome_decide(&in, &d);
    assert_int_equal(d.op.text_len, sizeof big - 1);
    drv_decision_fini(&d);
}

static void
test_outcome_pipeline_step_goes_next(void **st)
{
    struct drv_tg_outcome o = outcome(DRV_TG_OK, 0, NULL, "out");
    struct drv_outcome_in in = input(&o, 0);
    struct drv_decision d;

    (void)st;
    in.nsteps = 3;
    in.step = 1;
    drv_outcome_decide(&in, &d);
    assert_int_equal(d.op.kind, DRV_SETTLE_NEXT);
    assert_true(d.op.pipeline);
    assert_int_equal(d.op.step, 1);
    expect_text(&d, "out");
    drv_decision_fini(&d);

    /* the last step acks the pipeline */
    in.step = 2;
    drv_outcome_decide(&in, &d);
    assert_int_equal(d.op.kind, DRV_SETTLE_ACK);
    assert_true(d.op.pipeline);
    drv_decision_fini(&d);
}

/* ------------------------------------------------------ parallel steps */

/* A real parallel step: a FAIL_FAST child group of three LOOP members,
 * "a" succeeds, "b" fails with its text, "c" waits and is cancelled. */
struct par {
    struct drv_loop *loop;
    struct drv_tg *root;
    int fail;                       /* b fails (else succeeds) */
    struct drv_decision d;          /* decided in the step's outcome */
    int decided;
};

static const struct drv_config_job ja = {.name = (char *)"a"};
static const struct drv_config_job jb = {.name = (char *)"b"};
static const struct drv_config_job jc = {.name = (char *)"c"};
static const struct drv_config_job *const members[] = {&ja, &jb, &jc};
static const struct drv_config_step step = {
    .parallel = true, .jobs = (const struct drv_config_job **)members,
    .njobs = 3};

static void
start_a(struct drv_tg_task *t, void *ctx)
{
    (void)ctx;
    drv_tg_task_set_result(t, "ra", 2);
    drv_tg_task_done(t, 0, NULL, NULL);
}

static void
start_b(struct drv_tg_task *t, void *ctx)
{
    struct par *p = ctx;

    if (p->fail) {
        drv_tg_task_set_result(t, "boom: details", 13);
        drv_tg_task_done(t, DRV_EHANDLER, "boom", NULL);
    } else {
        drv_tg_task_done(t, 0, NULL, "rb");
    }
}

static void
start_c(struct drv_tg_task *t, void *ctx)
{
    struct par *p = ctx;

    if (!p->fail)
        drv_tg_task_done(t, 0, NULL, NULL); /* no result: "" */
}

static void
cancel_any(struct drv_tg_task *t, enum drv_tg_cause cause, void *ctx)
{
    (void)cause;
    (void)ctx;
    drv_tg_task_done(t, -ECANCELED, NULL, NULL);
}

static void
on_step(struct drv_tg_task *t, const struct drv_tg_outcome *o, void *ctx)
{
    struct par *p = ctx;
    struct drv_outcome_in in = input(o, 0);

    (void)t;
    in.nsteps = 2;
    in.step = 0;
    in.parallel = &step;
    drv_outcome_decide(&in, &p->d);
    p->decided = 1;
}

static void
on_root_quiesced(struct drv_tg *tg, void *ctx)
{
    struct par *p = ctx;

    (void)tg;
    drv_loop_stop(p->loop);
}

static void
run_parallel(struct par *p)
{
    drv_tg_start_fn *const starts[] = {start_a, start_b, start_c};
    struct drv_tg_opts go;
    struct drv_tg_task_opts to;
    struct drv_tg *child = NULL;
    size_t i;

    p->loop = drv_loop_create(NULL);
    assert_non_null(p->loop);
    memset(&go, 0, sizeof go);
    go.limit = -1;
    go.on_quiesced = on_root_quiesced;
    go.ctx = p;
    assert_int_equal(drv_tg_create(p->loop, NULL, &go, &p->root), 0);
    memset(&go, 0, sizeof go);
    go.policy = DRV_TG_FAIL_FAST;
    go.limit = -1;
    memset(&to, 0, sizeof to);
    to.on_outcome = on_step;
    to.ctx = p;
    assert_int_equal(drv_tg_create_child(p->root, &go, &to, &child, NULL),
                     0);
    for (i = 0; i < 3; i++) {
        memset(&to, 0, sizeof to);
        to.kind = DRV_TG_LOOP;
        to.name = members[i]->name;
        to.start = starts[i];
        to.cancel = cancel_any;
        to.ctx = p;
        assert_int_equal(drv_tg_spawn(child, &to, NULL), 0);
    }
    drv_tg_close(child);
    drv_tg_close(p->root);
    drv_loop_run(p->loop);
    assert_true(p->decided);
}

static void
par_fini(struct par *p)
{
    drv_decision_fini(&p->d);
    drv_tg_free(p->root);
    drv_loop_free(p->loop);
}

static void
test_outcome_parallel_step_results(void **st)
{
    struct par p;

    (void)st;
    memset(&p, 0, sizeof p);
    run_parallel(&p);
    assert_int_equal(p.d.op.kind, DRV_SETTLE_NEXT);
    expect_text(&p.d, "{\"a\":\"ra\",\"b\":\"rb\",\"c\":\"\"}");
    par_fini(&p);
}

static void
test_outcome_parallel_step_failure_is_aggregated(void **st)
{
    struct par p;

    (void)st;
    memset(&p, 0, sizeof p);
    p.fail = 1;
    run_parallel(&p);
    assert_int_equal(p.d.op.kind, DRV_SETTLE_RETRY);
    expect_text(&p.d, "parallel step 0 failed: a: ok; b: failed: boom: "
                      "details; c: cancelled (sibling_failed)");
    par_fini(&p);
}

/* drover cancel asked for the job: any outcome but OK is a CANCEL (not
 * retried, result kept at least a day); OK stays OK; a lost lease writes
 * nothing. */
static void
test_outcome_cancel_requested(void **st)
{
    struct drv_tg_outcome failed = outcome(DRV_TG_FAILED, -EIO, "x",
                                           "boom");
    struct drv_tg_outcome cancelled = outcome(DRV_TG_CANCELLED, 0, NULL,
                                              NULL);
    struct drv_tg_outcome ok = outcome(DRV_TG_OK, 0, NULL, "fine");
    struct drv_outcome_in in;
    struct drv_decision d;

    (void)st;
    in = input(&failed, 0);
    in.cancel_requested = 1;
    drv_outcome_decide(&in, &d);
    assert_int_equal(d.op.kind, DRV_SETTLE_CANCEL);
    assert_false(d.drop);
    assert_int_equal(d.op.attempts, 1);
    assert_true(d.op.result_ttl_ms >= DRV_QUEUE_CANCEL_TTL_MS);
    expect_text(&d, "boom");
    drv_decision_fini(&d);

    in = input(&cancelled, 2);
    in.cancel_requested = 1;
    drv_outcome_decide(&in, &d);
    assert_int_equal(d.op.kind, DRV_SETTLE_CANCEL);
    expect_text(&d, "cancelled");
    drv_decision_fini(&d);

    in.lost = 1;
    drv_outcome_decide(&in, &d);
    assert_true(d.drop);
    drv_decision_fini(&d);

    in = input(&ok, 0);
    in.cancel_requested = 1;
    drv_outcome_decide(&in, &d);
    assert_int_equal(d.op.kind, DRV_SETTLE_ACK);
    expect_text(&d, "fine");
    drv_decision_fini(&d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outcome_ok_acks_with_the_result),
        cmocka_unit_test(test_outcome_cancel_requested),
        cmocka_unit_test(test_outcome_failure_is_retried_with_backoff),
        cmocka_unit_test(test_outcome_dead_after_the_last_retry),
        cmocka_unit_test(test_outcome_permanent_and_bad_are_dead_at_once),
        cmocka_unit_test(test_outcome_poison_last_delivery_is_dead),
        cmocka_unit_test(test_outcome_timeout_is_a_retried_failure),
        cmocka_unit_test(test_outcome_requeue_on_stop_and_drop_when_lost),
        cmocka_unit_test(test_outcome_error_text_is_cut),
        cmocka_unit_test(test_outcome_pipeline_step_goes_next),
        cmocka_unit_test(test_outcome_parallel_step_results),
        cmocka_unit_test(test_outcome_parallel_step_failure_is_aggregated),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
