/*
 * test_queue.c -- the queue's Lua scripts against a real redis-server:
 * ownership-checked settle (ack, retry, dead, requeue), the delayed mover,
 * reclaim with poison detection, lease renewal and dead retry.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "drover/clock.h"
#include "drover/queue.h"

struct state {
    redisContext *c;
    struct drv_queue_keys k;
};

static int
setup(void **st)
{
    struct state *s = calloc(1, sizeof *s);
    struct drv_argv a;
    redisReply *r;

    drv_test_redis_fresh();
    s->c = drv_test_redis_connect(&drv_test_srv);
    assert_non_null(s->c);
    drv_queue_keys_init(&s->k, "t", "q");
    drv_argv_init(&a);
    drv_queue_group_create(&s->k, &a);
    r = redisCommandArgv(s->c, a.argc, (const char **)a.argv, a.argvlen);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    drv_argv_fini(&a);
    *st = s;
    return 0;
}

static int
teardown(void **st)
{
    struct state *s = *st;

    drv_queue_keys_fini(&s->k);
    redisFree(s->c);
    free(s);
    return 0;
}

static redisReply *
run(struct state *s, struct drv_script_call *call)
{
    struct drv_argv a;
    redisReply *r;

    drv_argv_init(&a);
    drv_script_call_eval(call, &a);
    r = redisCommandArgv(s->c, a.argc, (const char **)a.argv, a.argvlen);
    drv_argv_fini(&a);
    drv_script_call_fini(call);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("script error: %s", r->str);
    return r;
}

/* XADD one job, read it as consumer; returns the job (caller frees). */
static struct drv_job *
enqueue_and_read(struct state *s, const char *consumer, const char *extra)
{
    redisReply *r;
    struct drv_job *job;
    struct drv_err err;

    {
        /* split extra on spaces; '' stands for an empty value */
        struct drv_argv a;
        char *copy = strdup(extra), *tok, *save = NULL;

        drv_argv_init(&a);
        drv_argv_adds(&a, "XADD");
        drv_argv_adds(&a, "t:{q}:jobs");
        drv_argv_adds(&a, "*");
        drv_argv_adds(&a, "job");
        drv_argv_adds(&a, "echo");
        drv_argv_adds(&a, "a");
        drv_argv_adds(&a, "1");
        for (tok = strtok_r(copy, " ", &save); tok != NULL;
             tok = strtok_r(NULL, " ", &save))
            drv_argv_adds(&a, strcmp(tok, "''") == 0 ? "" : tok);
        r = redisCommandArgv(s->c, a.argc, (const char **)a.argv,
                             a.argvlen);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        freeReplyObject(r);
        drv_argv_fini(&a);
        free(copy);
    }
    r = drv_test_redis_cmd(s->c, "XREADGROUP GROUP drover %s COUNT 1 "
                           "STREAMS t:{q}:jobs >", consumer);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    job = drv_job_from_entry(r->element[0]->element[1]->element[0], &err);
    assert_non_null(job);
    freeReplyObject(r);
    return job;
}

static int
settle_one(struct state *s, const char *consumer, struct drv_settle_op *op)
{
    struct drv_script_call call;
    redisReply *r;
    int code = -1;
    struct drv_err err;

    drv_settle_init(&call, &s->k, consumer, 1700000000000LL, NULL);
    drv_settle_add(&call, &s->k, op);
    r = run(s, &call);
    assert_int_equal(drv_settle_parse(r, 1, &code, &err), 0);
    freeReplyObject(r);
    return code;
}

static long long
int_cmd(struct state *s, const char *fmt, const char *arg)
{
    redisReply *r = drv_test_redis_cmd(s->c, fmt, arg);
    long long v;

    if (r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r->type == REDIS_REPLY_STRING)
        v = atoll(r->str);
    else
        v = -1;
    freeReplyObject(r);
    return v;
}

static char *
hget(struct state *s, const char *key, const char *field)
{
    redisReply *r = drv_test_redis_cmd(s->c, "HGET %s %s", key, field);
    char *v = r->type == REDIS_REPLY_STRING ? strdup(r->str) : NULL;

    freeReplyObject(r);
    return v;
}

static void
test_queue_ack_checks_ownership(void **st)
{
    struct state *s = *st;
    struct drv_job *job = enqueue_and_read(s, "A", "id myid");
    struct drv_settle_op op = {0};
    char *v;

    assert_string_equal(job->id, "myid");
    op.kind = DRV_SETTLE_ACK;
    op.entry_id = job->entry_id;
    op.job_id = job->id;
    op.job_id_len = job->id_len;
    op.attempts = 1;
    op.result_ttl_ms = 60000;
    op.text = "the result";
    op.text_len = strlen(op.text);
    /* B does not own it: nothing changes */
    assert_int_equal(settle_one(s, "B", &op), DRV_QUEUE_LOST);
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.jobs), 1);
    /* A owns it: acked, deleted, counted, result kept */
    assert_int_equal(settle_one(s, "A", &op), DRV_QUEUE_DONE);
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.jobs), 0);
    assert_int_equal(int_cmd(s, "HGET %s processed", s->k.stats), 1);
    v = hget(s, "t:{q}:result:myid", "result");
    assert_string_equal(v, "the result");
    free(v);
    v = hget(s, "t:{q}:result:myid", "status");
    assert_string_equal(v, "ok");
    free(v);
    assert_true(int_cmd(s, "PTTL %s", "t:{q}:result:myid") > 0);
    /* again: already acked, so no longer owned */
    assert_int_equal(settle_one(s, "A", &op), DRV_QUEUE_LOST);
    drv_job_free(job);
}

static void
test_queue_retry_then_mover(void **st)
{
    struct state *s = *st;
    struct drv_job *job = enqueue_and_read(s, "A", "attempt 0");
    struct drv_settle_op op = {0};
    struct drv_script_call call;
    redisReply *r;
    char *v;

    op.kind = DRV_SETTLE_RETRY;
    op.entry_id = job->entry_id;
    op.job_id = job->id;
    op.job_id_len = job->id_len;
    op.attempts = 1;
    op.due_ms = 5000;
    op.text = "boom";
    op.text_len = 4;
    assert_int_equal(settle_one(s, "A", &op), DRV_QUEUE_DONE);
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.jobs), 0);
    assert_int_equal(int_cmd(s, "ZSCORE t:{q}:delayed %s", job->id), 5000);
    assert_int_equal(int_cmd(s, "HGET %s failed", s->k.stats), 1);
    assert_int_equal(int_cmd(s, "HGET %s retried", s->k.stats), 1);
    /* not due yet at 4999 */
    drv_queue_mover(&call, &s->k, 4999, 100);
    r = run(s, &call);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    drv_queue_mover(&call, &s->k, 5000, 100);
    r = run(s, &call);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_int_equal(int_cmd(s, "ZCARD %s", s->k.delayed), 0);
    drv_job_free(job);
    /* back on the stream with attempt 1 and its id */
    r = drv_test_redis_cmd(s->c, "XREADGROUP GROUP drover A COUNT 1 "
                           "STREAMS t:{q}:jobs >");
    {
        struct drv_err err;
        job = drv_job_from_entry(r->element[0]->element[1]->element[0],
                                 &err);
    }
    freeReplyObject(r);
    assert_non_null(job);
    assert_int_equal(job->attempt, 1);
    v = drv_job_field_str(job, "a");
    assert_string_equal(v, "1");
    free(v);
    assert_int_equal(job->nfields, 4); /* job, a, id, attempt */
    drv_job_free(job);
}

static void
test_queue_dead_keeps_fields(void **st)
{
    struct state *s = *st;
    struct drv_job *job = enqueue_and_read(s, "A", "error userval");
    struct drv_settle_op op = {0};
    redisReply *r;
    size_t i;
    int seen_a = 0, seen_err = 0;

    op.kind = DRV_SETTLE_DEAD;
    op.entry_id = job->entry_id;
    op.job_id = job->id;
    op.job_id_len = job->id_len;
    op.attempts = 3;
    op.count_failed = 1;
    op.text = "permanent: nope";
    op.text_len = strlen(op.text);
    assert_int_equal(settle_one(s, "A", &op), DRV_QUEUE_DONE);
    r = drv_test_redis_cmd(s->c, "XRANGE t:{q}:dead - +");
    assert_int_equal(r->elements, 1);
    {
        redisReply *f = r->element[0]->element[1];
        for (i = 0; i < f->elements; i += 2) {
            if (strcmp(f->element[i]->str, "a") == 0) {
                assert_string_equal(f->element[i + 1]->str, "1");
                seen_a++;
            }
            if (strcmp(f->element[i]->str, "error") == 0) {
                assert_string_equal(f->element[i + 1]->str,
                                    "permanent: nope");
                seen_err++;
            }
            if (strcmp(f->element[i]->str, "attempts") == 0)
                assert_string_equal(f->element[i + 1]->str, "3");
        }
    }
    assert_int_equal(seen_a, 1);
    assert_int_equal(seen_err, 1); /* the job's own `error` was replaced */
    freeReplyObject(r);
    assert_int_equal(int_cmd(s, "HGET %s dead", s->k.stats), 1);
    assert_int_equal(int_cmd(s, "HGET %s failed", s->k.stats), 1);
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.jobs), 0);
    drv_job_free(job);
}

static void
test_queue_requeue_is_undelivered(void **st)
{
    struct state *s = *st;
    struct drv_job *job = enqueue_and_read(s, "A", "attempt 2");
    struct drv_settle_op op = {0};
    redisReply *r;

    op.kind = DRV_SETTLE_REQUEUE;
    op.entry_id = job->entry_id;
    op.job_id = job->id;
    op.job_id_len = job->id_len;
    assert_int_equal(settle_one(s, "A", &op), DRV_QUEUE_DONE);
    r = drv_test_redis_cmd(s->c, "XPENDING t:{q}:jobs drover");
    assert_int_equal(r->element[0]->integer, 0);
    freeReplyObject(r);
    r = drv_test_redis_cmd(s->c, "XREADGROUP GROUP drover B COUNT 1 "
                           "STREAMS t:{q}:jobs >");
    {
        struct drv_err err;
        struct drv_job *j2 = drv_job_from_entry(
            r->element[0]->element[1]->element[0], &err);
        assert_string_equal(j2->id, job->id); /* same id for life */
        assert_int_equal(j2->attempt, 2);     /* no attempt counted */
        drv_job_free(j2);
    }
    freeReplyObject(r);
    drv_job_free(job);
}

static void
test_queue_reclaim_and_poison(void **st)
{
    struct state *s = *st;
    struct drv_job *job = enqueue_and_read(s, "A", "x y");
    struct drv_script_call call;
    redisReply *r;

    /* B reclaims A's idle entry (min idle 0 here) */
    drv_queue_reclaim(&call, &s->k, "B", 0, 10, 3, 1, NULL);
    r = run(s, &call);
    assert_int_equal(r->element[0]->elements, 1);
    assert_int_equal(r->element[1]->integer, 0);
    freeReplyObject(r);
    /* delivered twice now; once more, then the 4th would exceed 3 */
    drv_queue_reclaim(&call, &s->k, "C", 0, 10, 3, 1, NULL);
    r = run(s, &call);
    assert_int_equal(r->element[0]->elements, 1);
    freeReplyObject(r);
    drv_queue_reclaim(&call, &s->k, "B", 0, 10, 3, 1, NULL);
    r = run(s, &call);
    assert_int_equal(r->element[0]->elements, 0);
    assert_int_equal(r->element[1]->integer, 1);
    freeReplyObject(r);
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.dead), 1);
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.jobs), 0);
    r = drv_test_redis_cmd(s->c, "XRANGE t:{q}:dead - +");
    {
        redisReply *f = r->element[0]->element[1];
        size_t i;
        int found = 0;
        for (i = 0; i < f->elements; i += 2)
            if (strcmp(f->element[i]->str, "error") == 0 &&
                strncmp(f->element[i + 1]->str, "poison: ", 8) == 0)
                found = 1;
        assert_true(found);
    }
    freeReplyObject(r);
    drv_job_free(job);
}

/* With a byte limit, the reclaim dead-letters a larger entry inside
 * Redis (every field kept, the error naming both sizes) and claims the
 * smaller one. */
static void
test_queue_reclaim_oversized(void **st)
{
    struct state *s = *st;
    struct drv_job *small = enqueue_and_read(s, "A", "x y"); /* 11 bytes */
    struct drv_job *big = enqueue_and_read(s, "A", "big "
        "0123456789012345678901234567890123456789");       /* 52 bytes */
    struct drv_script_call call;
    redisReply *r;

    drv_queue_reclaim(&call, &s->k, "B", 0, 10, 3, 1, NULL);
    drv_queue_reclaim_limit(&call, 20);
    r = run(s, &call);
    assert_int_equal(r->elements, 6);
    assert_int_equal(r->element[0]->elements, 1);
    assert_string_equal(r->element[0]->element[0]->element[0]->str,
                        small->entry_id);
    assert_int_equal(r->element[3]->integer, 1);
    /* the entry claimed is pending (the big one went dead) */
    assert_int_equal(r->element[4]->integer, 1);
    freeReplyObject(r);
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.dead), 1);
    r = drv_test_redis_cmd(s->c, "XRANGE t:{q}:dead - +");
    assert_string_equal(drv_test_field(r->element[0]->element[1],
                                       "error")->str,
                        "job is 52 bytes, more than max_job_bytes 20");
    assert_int_equal(drv_test_field(r->element[0]->element[1], "big")->len,
                     40);
    freeReplyObject(r);
    assert_int_equal(int_cmd(s, "HGET %s dead", s->k.stats), 1);
    drv_job_free(small);
    drv_job_free(big);
}

/* A poison node of a graph run is not sent to dead by the reclaim: it
 * is claimed for the caller, its delivery count kept, and handed back
 * with its control fields to be ended through the graph script; a caller
 * that dies first leaves it to the next reclaim, which hands it back
 * again. A steps pipeline's first entry goes to dead as its step 0. */
static void
test_queue_reclaim_hands_back_graph_nodes(void **st)
{
    struct state *s = *st;
    struct drv_job *node = enqueue_and_read(s, "A", "pipeline g run r "
                                            "node n home q id r/n input in");
    struct drv_job *step = enqueue_and_read(s, "A", "pipeline s x y");
    struct drv_script_call call;
    struct drv_err why, err;
    struct drv_job *job;
    const struct drv_field *f;
    char key[128];
    redisReply *r;
    int round;

    for (round = 0; round < 2; round++) {
        /* delivered once: max_deliveries 1 makes both poison */
        drv_queue_reclaim(&call, &s->k, round == 0 ? "B" : "C", 0, 10, 1,
                          drv_clock_unix_ms(), NULL);
        drv_queue_reclaim_limit(&call, 1000);
        drv_queue_reclaim_pipeline(&call, "g", 1);
        drv_queue_reclaim_pipeline(&call, "s", 0);
        r = run(s, &call);
        assert_int_equal(r->elements, 6);
        assert_int_equal(r->element[0]->elements, 0);
        assert_int_equal(r->element[1]->integer, round == 0 ? 1 : 0);
        drv_err_clear(&err);
        assert_int_equal(drv_queue_reclaim_ended(r, 0, NULL, &why, &err), 1);
        assert_int_equal(drv_queue_reclaim_ended(r, 0, &job, &why, &err), 1);
        assert_non_null(job);
        assert_string_equal(job->entry_id, node->entry_id);
        assert_string_equal(job->id, "r/n");
        f = drv_job_field(job, "home");
        assert_non_null(f);
        assert_null(drv_job_field(job, "input")); /* control fields only */
        assert_int_equal(why.code, DRV_EBADJOB);
        assert_string_equal(why.msg, "poison: delivered 1 times without an "
                            "outcome (max_deliveries 1)");
        drv_job_free(job);
        freeReplyObject(r);
        /* claimed for the caller, delivered no more often than before */
        r = drv_test_redis_cmd(s->c, "XPENDING t:{q}:jobs drover - + 10");
        assert_int_equal(r->elements, 1);
        assert_string_equal(r->element[0]->element[0]->str, node->entry_id);
        assert_string_equal(r->element[0]->element[1]->str,
                            round == 0 ? "B" : "C");
        assert_int_equal(r->element[0]->element[3]->integer, 1);
        freeReplyObject(r);
        /* only the steps pipeline's entry went to dead */
        assert_int_equal(int_cmd(s, "XLEN %s", s->k.dead), 1);
        assert_int_equal(int_cmd(s, "XLEN %s", s->k.jobs), 1);
    }
    snprintf(key, sizeof key, "t:{q}:result:%s", step->entry_id);
    r = drv_test_redis_cmd(s->c, "HGET %s step.0.status", key);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "dead");
    freeReplyObject(r);
    drv_job_free(node);
    drv_job_free(step);
}

/* The poison path trims the dead stream in the same script: a dead_max
 * below 1000 is exact, and the new poison entry is among those kept. */
static void
test_queue_poison_trims_dead(void **st)
{
    struct state *s = *st;
    const struct drv_queue_dead_bound bound = {3, 0};
    struct drv_job *job;
    struct drv_script_call call;
    redisReply *r;
    int i;

    for (i = 0; i < 6; i++)
        freeReplyObject(drv_test_redis_cmd(s->c, "XADD t:{q}:dead 1-%d "
                                           "job echo n %d", i, i));
    job = enqueue_and_read(s, "A", "n poison");
    /* delivered once: max_deliveries 1 makes it poison at once */
    drv_queue_reclaim(&call, &s->k, "B", 0, 10, 1, drv_clock_unix_ms(),
                      &bound);
    r = run(s, &call);
    assert_int_equal(r->element[1]->integer, 1);
    freeReplyObject(r);
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.dead), 3);
    r = drv_test_redis_cmd(s->c, "XRANGE t:{q}:dead - +");
    assert_int_equal(r->elements, 3);
    assert_string_equal(r->element[0]->element[0]->str, "1-4");
    assert_string_equal(r->element[1]->element[0]->str, "1-5");
    assert_string_not_equal(r->element[2]->element[0]->str, "1-5");
    freeReplyObject(r);
    drv_job_free(job);
}

static void
test_queue_renew_never_steals(void **st)
{
    struct state *s = *st;
    struct drv_job *job = enqueue_and_read(s, "A", "x y");
    struct drv_script_call call;
    redisReply *r;

    drv_queue_renew(&call, &s->k, "A");
    drv_argv_adds(&call.args, job->entry_id);
    r = run(s, &call);
    assert_int_equal(r->elements, 0);
    freeReplyObject(r);
    /* B takes it over; A's renewal must report it lost, not take it back */
    freeReplyObject(drv_test_redis_cmd(s->c, "XCLAIM t:{q}:jobs drover B 0 %s",
                                       job->entry_id));
    drv_queue_renew(&call, &s->k, "A");
    drv_argv_adds(&call.args, job->entry_id);
    r = run(s, &call);
    assert_int_equal(r->elements, 1);
    assert_string_equal(r->element[0]->str, job->entry_id);
    freeReplyObject(r);
    r = drv_test_redis_cmd(s->c, "XPENDING t:{q}:jobs drover - + 10");
    assert_string_equal(r->element[0]->element[1]->str, "B");
    freeReplyObject(r);
    drv_job_free(job);
}

static void
test_queue_dead_retry(void **st)
{
    struct state *s = *st;
    struct drv_script_call call;
    redisReply *r;
    int i;

    for (i = 0; i < 3; i++)
        freeReplyObject(drv_test_redis_cmd(s->c,
            "XADD t:{q}:dead * job echo id j%d error e attempts 3 "
            "failed_at 1 attempt 2", i));
    drv_queue_dead_retry(&call, &s->k, "j1");
    r = run(s, &call);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.dead), 2);
    r = drv_test_redis_cmd(s->c, "XRANGE t:{q}:jobs - +");
    assert_int_equal(r->elements, 1);
    /* job echo id j1: error/attempts/failed_at/attempt dropped */
    assert_int_equal(r->element[0]->element[1]->elements, 4);
    freeReplyObject(r);
    drv_queue_dead_retry(&call, &s->k, NULL);
    r = run(s, &call);
    assert_int_equal(r->integer, 2);
    freeReplyObject(r);
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.dead), 0);
}

/* XADD n jobs, then read them as consumer (COUNT n); the entry ids go to
 * ids[n] (each a static-size string). */
static void
enqueue_n_read(struct state *s, const char *consumer, int n,
               char (*ids)[48])
{
    redisReply *r;
    int i;

    for (i = 0; i < n; i++)
        freeReplyObject(drv_test_redis_cmd(s->c, "XADD t:{q}:jobs * job "
                                           "noop n %d", i));
    r = drv_test_redis_cmd(s->c, "XREADGROUP GROUP drover %s COUNT %d "
                           "STREAMS t:{q}:jobs >", consumer, n);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->element[0]->element[1]->elements, n);
    for (i = 0; i < n; i++)
        snprintf(ids[i], sizeof ids[i], "%s",
                 r->element[0]->element[1]->element[i]->element[0]->str);
    freeReplyObject(r);
}

static void
plain_ack(struct drv_script_call *call, struct state *s, const char *id)
{
    struct drv_settle_op op = {0};

    op.kind = DRV_SETTLE_ACK;
    op.entry_id = id;
    op.job_id = id;
    op.job_id_len = strlen(id);
    op.attempts = 1;
    drv_settle_add(call, &s->k, &op);
}

/* consumer's plain acks of ids[0..n) in one settle call: the code of
 * each into codes. */
static void
settle_acks(struct state *s, const char *consumer, const char *const *ids,
            int n, int *codes)
{
    struct drv_script_call call;
    struct drv_err err;
    redisReply *r;
    int i;

    drv_settle_init(&call, &s->k, consumer, 1700000000000LL, NULL);
    for (i = 0; i < n; i++)
        plain_ack(&call, s, ids[i]);
    r = run(s, &call);
    assert_int_equal(drv_settle_parse(r, n, codes, &err), 0);
    freeReplyObject(r);
}

/* The next read of consumer A gets exactly ids[0..n), whole (each with
 * its two fields). */
static void
expect_delivered_next(struct state *s, const char *const *ids, size_t n)
{
    redisReply *r;
    size_t i;

    r = drv_test_redis_cmd(s->c, "XREADGROUP GROUP drover A COUNT 10 "
                           "STREAMS t:{q}:jobs >");
    assert_int_equal(r->element[0]->element[1]->elements, n);
    for (i = 0; i < n; i++) {
        const redisReply *e = r->element[0]->element[1]->element[i];

        assert_string_equal(e->element[0]->str, ids[i]);
        assert_int_equal(e->element[1]->elements, 4);
    }
    freeReplyObject(r);
}

/* A dead op for entry id (error "boom"): a full op among plain acks. */
static void
dead_op(struct drv_script_call *call, struct state *s, const char *id)
{
    struct drv_settle_op op = {0};

    op.kind = DRV_SETTLE_DEAD;
    op.entry_id = id;
    op.job_id = id;
    op.job_id_len = strlen(id);
    op.attempts = 1;
    op.text = "boom";
    op.text_len = 4;
    drv_settle_add(call, &s->k, &op);
}

/* Plain acks (no result kept) settle together in one XPENDING + XACK +
 * XDEL, still checked one by one for ownership, and mixed in order with
 * full ops. */
static void
test_queue_plain_acks_batch_checks_ownership(void **st)
{
    struct state *s = *st;
    char a1[10][48], b[10][48], a2[10][48];
    struct drv_script_call call;
    int codes[32], i, n = 0;
    struct drv_err err;
    redisReply *r;

    enqueue_n_read(s, "A", 10, a1);
    enqueue_n_read(s, "B", 10, b);  /* inside A's id range */
    enqueue_n_read(s, "A", 10, a2);
    drv_settle_init(&call, &s->k, "A", 1700000000000LL, NULL);
    /* out of order on purpose: the range must still cover them all */
    for (i = 9; i >= 0; i--, n++)
        plain_ack(&call, s, a2[i]);
    for (i = 0; i < 10; i++, n++)
        plain_ack(&call, s, b[i]);     /* B's: lost, untouched */
    dead_op(&call, s, a1[0]);          /* a full op in between */
    n++;
    for (i = 1; i < 10; i++, n++)
        plain_ack(&call, s, a1[i]);
    plain_ack(&call, s, "1-1");        /* not pending at all */
    n++;
    assert_int_equal(drv_settle_nops(&call), n);
    r = run(s, &call);
    assert_int_equal(drv_settle_parse(r, n, codes, &err), 0);
    freeReplyObject(r);
    for (i = 0; i < 10; i++)
        assert_int_equal(codes[i], DRV_QUEUE_DONE);
    for (i = 10; i < 20; i++)
        assert_int_equal(codes[i], DRV_QUEUE_LOST);
    assert_int_equal(codes[20], DRV_QUEUE_DONE);
    for (i = 21; i < 30; i++)
        assert_int_equal(codes[i], DRV_QUEUE_DONE);
    assert_int_equal(codes[30], DRV_QUEUE_LOST);
    /* B's ten are still pending and still B's; A's are gone */
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.jobs), 10);
    r = drv_test_redis_cmd(s->c, "XPENDING t:{q}:jobs drover - + 100 B");
    assert_int_equal(r->elements, 10);
    freeReplyObject(r);
    r = drv_test_redis_cmd(s->c, "XPENDING t:{q}:jobs drover - + 100 A");
    assert_int_equal(r->elements, 0);
    freeReplyObject(r);
    assert_int_equal(int_cmd(s, "HGET %s processed", s->k.stats), 19);
    assert_int_equal(int_cmd(s, "HGET %s dead", s->k.stats), 1);
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.dead), 1);
}

/* Many entries of ours inside the acks' range: the range query is
 * truncated, and the ids it did not reach are checked one by one. */
static void
test_queue_plain_acks_truncated_range(void **st)
{
    struct state *s = *st;
    char a[100][48], b[1][48], a3[1][48];
    struct drv_script_call call;
    int codes[3];
    struct drv_err err;
    redisReply *r;

    enqueue_n_read(s, "A", 100, a);
    enqueue_n_read(s, "B", 1, b);
    enqueue_n_read(s, "A", 1, a3);
    drv_settle_init(&call, &s->k, "A", 1700000000000LL, NULL);
    plain_ack(&call, s, a[0]);
    plain_ack(&call, s, b[0]);
    plain_ack(&call, s, a3[0]);
    r = run(s, &call);
    assert_int_equal(drv_settle_parse(r, 3, codes, &err), 0);
    freeReplyObject(r);
    assert_int_equal(codes[0], DRV_QUEUE_DONE);
    assert_int_equal(codes[1], DRV_QUEUE_LOST);
    assert_int_equal(codes[2], DRV_QUEUE_DONE);
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.jobs), 100);
    assert_int_equal(int_cmd(s, "HGET %s processed", s->k.stats), 2);
}

/* Deleting plain acks trims the stream below the oldest pending entry:
 * another consumer's pending entries (older and newer than ours) and
 * undelivered entries keep their payload; every acked entry is gone. */
static void
test_queue_plain_acks_trim_keeps_pending_and_undelivered(void **st)
{
    struct state *s = *st;
    char a1[5][48], b[2][48], a2[5][48], later[3][48];
    struct drv_script_call call;
    int codes[10], i;
    struct drv_err err;
    redisReply *r;

    enqueue_n_read(s, "A", 5, a1);
    enqueue_n_read(s, "B", 2, b);     /* older than a2, still pending */
    enqueue_n_read(s, "A", 5, a2);
    for (i = 0; i < 3; i++) {         /* never delivered */
        r = drv_test_redis_cmd(s->c, "XADD t:{q}:jobs * job noop u %d", i);
        snprintf(later[i], sizeof later[i], "%s", r->str);
        freeReplyObject(r);
    }
    /* A settles a1 and a2 together: B's two stay, with their payload */
    drv_settle_init(&call, &s->k, "A", 1700000000000LL, NULL);
    for (i = 0; i < 5; i++)
        plain_ack(&call, s, a1[i]);
    for (i = 0; i < 5; i++)
        plain_ack(&call, s, a2[i]);
    r = run(s, &call);
    assert_int_equal(drv_settle_parse(r, 10, codes, &err), 0);
    freeReplyObject(r);
    for (i = 0; i < 10; i++)
        assert_int_equal(codes[i], DRV_QUEUE_DONE);
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.jobs), 5); /* b + later */
    for (i = 0; i < 2; i++) {
        r = drv_test_redis_cmd(s->c, "XRANGE t:{q}:jobs %s %s", b[i], b[i]);
        assert_int_equal(r->elements, 1);
        freeReplyObject(r);
    }
    for (i = 0; i < 5; i++) {
        r = drv_test_redis_cmd(s->c, "XRANGE t:{q}:jobs %s %s", a2[i],
                               a2[i]);
        assert_int_equal(r->elements, 0);
        freeReplyObject(r);
    }
    /* B settles too: now nothing is pending, the undelivered three stay
     * and are delivered next, whole */
    settle_acks(s, "B", (const char *[]){b[1], b[0]}, 2, codes);
    assert_int_equal(codes[0], DRV_QUEUE_DONE);
    assert_int_equal(codes[1], DRV_QUEUE_DONE);
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.jobs), 3);
    expect_delivered_next(s, (const char *[]){later[0], later[1], later[2]},
                          3);
    assert_int_equal(int_cmd(s, "HGET %s processed", s->k.stats), 12);
}

/* The same across several stream nodes (100 entries each by default). */
static void
test_queue_plain_acks_trim_across_nodes(void **st)
{
    struct state *s = *st;
    static char a1[130][48], a2[130][48];
    char b[1][48];
    struct drv_script_call call;
    static int codes[260];
    struct drv_err err;
    redisReply *r;
    int i;

    enqueue_n_read(s, "A", 130, a1);
    enqueue_n_read(s, "B", 1, b);
    enqueue_n_read(s, "A", 130, a2);
    drv_settle_init(&call, &s->k, "A", 1700000000000LL, NULL);
    for (i = 129; i >= 0; i--) {
        plain_ack(&call, s, a2[i]);
        plain_ack(&call, s, a1[i]);
    }
    r = run(s, &call);
    assert_int_equal(drv_settle_parse(r, 260, codes, &err), 0);
    freeReplyObject(r);
    for (i = 0; i < 260; i++)
        assert_int_equal(codes[i], DRV_QUEUE_DONE);
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.jobs), 1);
    r = drv_test_redis_cmd(s->c, "XRANGE t:{q}:jobs - +");
    assert_int_equal(r->elements, 1);
    assert_string_equal(r->element[0]->element[0]->str, b[0]);
    assert_int_equal(r->element[0]->element[1]->elements, 4);
    freeReplyObject(r);
}

/* Entry ids compare as numbers, digit counts first; anything not as Redis
 * prints ids is parsed (malformed reads as 0-0). */
static void
test_queue_id_cmp(void **st)
{
    (void)st;
    assert_true(drv_queue_id_cmp("1-1", "1-2") < 0);
    assert_true(drv_queue_id_cmp("10-0", "9-5") > 0);
    assert_true(drv_queue_id_cmp("5-10", "5-9") > 0);
    assert_int_equal(drv_queue_id_cmp("1700000000000-3", "1700000000000-3"),
                     0);
    assert_true(drv_queue_id_cmp("18446744073709551615-0",
                                 "18446744073709551614-99") > 0);
    assert_true(drv_queue_id_cmp("0-1", "0-0") > 0);
    assert_true(drv_queue_id_cmp("01-5", "1-4") > 0); /* parsed: 1-5 */
    assert_int_equal(drv_queue_id_cmp("x", "0-0"), 0);
    assert_true(drv_queue_id_cmp("2-1x", "2-0") > 0);
}

/* Plain acks last and in id order (as the worker sends them): when they
 * are exactly this consumer's pending entries in their range the script
 * answers with one integer; when as many entries are pending there but
 * not the same ones (one of ours still running, one acked id another
 * consumer's), every code is still right and the running one stays. */
static void
test_queue_plain_acks_in_order_fast_path(void **st)
{
    struct state *s = *st;
    char a[6][48], b[1][48], a2[2][48];
    struct drv_script_call call;
    int codes[8], i;
    struct drv_err err;
    redisReply *r;

    enqueue_n_read(s, "A", 6, a);
    /* a full op first, then the acks in order: all applied, one integer */
    drv_settle_init(&call, &s->k, "A", 1700000000000LL, NULL);
    dead_op(&call, s, a[0]);
    for (i = 1; i < 4; i++)
        plain_ack(&call, s, a[i]);
    r = run(s, &call);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 4);
    memset(codes, 0, sizeof codes);
    assert_int_equal(drv_settle_parse(r, 4, codes, &err), 0);
    freeReplyObject(r);
    for (i = 0; i < 4; i++)
        assert_int_equal(codes[i], DRV_QUEUE_DONE);
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.jobs), 2);
    /* a[4] and a2[0] are A's, b[0] B's, all inside [a[5], a2[1]]: A acks
     * a[5], b[0], a2[1] (three), and three of A's are pending in that
     * range (a[5], a2[0], a2[1]) */
    enqueue_n_read(s, "B", 1, b);
    enqueue_n_read(s, "A", 2, a2);
    drv_settle_init(&call, &s->k, "A", 1700000000000LL, NULL);
    plain_ack(&call, s, a[5]);
    plain_ack(&call, s, b[0]);
    plain_ack(&call, s, a2[1]);
    r = run(s, &call);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(drv_settle_parse(r, 3, codes, &err), 0);
    freeReplyObject(r);
    assert_int_equal(codes[0], DRV_QUEUE_DONE);
    assert_int_equal(codes[1], DRV_QUEUE_LOST);
    assert_int_equal(codes[2], DRV_QUEUE_DONE);
    r = drv_test_redis_cmd(s->c, "XPENDING t:{q}:jobs drover - + 100 A");
    assert_int_equal(r->elements, 2); /* a[4] and a2[0], still running */
    assert_string_equal(r->element[0]->element[0]->str, a[4]);
    assert_string_equal(r->element[1]->element[0]->str, a2[0]);
    freeReplyObject(r);
    r = drv_test_redis_cmd(s->c, "XPENDING t:{q}:jobs drover - + 100 B");
    assert_int_equal(r->elements, 1);
    freeReplyObject(r);
    /* the still-pending three keep their payload */
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.jobs), 3);
    assert_int_equal(int_cmd(s, "HGET %s processed", s->k.stats), 5);
}

/* Plain acks of the only consumer with entries pending: one XACK proves
 * and acks them. An entry claimed by hand (XCLAIM) by another consumer is
 * never acked by the old owner, whether the new owner still holds it or
 * has settled it since; every code is exact and the stream keeps what is
 * pending or undelivered, whatever the order of the acks. */
static void
test_queue_plain_acks_sole_consumer(void **st)
{
    struct state *s = *st;
    char a[4][48], c[5][48], d[4][48], u[48];
    struct drv_script_call call;
    int codes[5], i;
    struct drv_err err;
    redisReply *r;

    /* B holds a[1] (claimed by hand): A is not alone, a[1] is lost */
    enqueue_n_read(s, "A", 4, a);
    freeReplyObject(drv_test_redis_cmd(s->c, "XCLAIM t:{q}:jobs drover B 0 "
                                       "%s JUSTID", a[1]));
    drv_settle_init(&call, &s->k, "A", 1700000000000LL, NULL);
    for (i = 0; i < 4; i++)
        plain_ack(&call, s, a[i]);
    r = run(s, &call);
    assert_int_equal(drv_settle_parse(r, 4, codes, &err), 0);
    freeReplyObject(r);
    assert_int_equal(codes[0], DRV_QUEUE_DONE);
    assert_int_equal(codes[1], DRV_QUEUE_LOST);
    assert_int_equal(codes[2], DRV_QUEUE_DONE);
    assert_int_equal(codes[3], DRV_QUEUE_DONE);
    r = drv_test_redis_cmd(s->c, "XPENDING t:{q}:jobs drover - + 10 B");
    assert_int_equal(r->elements, 1);
    assert_string_equal(r->element[0]->element[0]->str, a[1]);
    freeReplyObject(r);
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.jobs), 1);
    /* B, now the only one with entries pending, settles it: one integer */
    drv_settle_init(&call, &s->k, "B", 1700000000000LL, NULL);
    plain_ack(&call, s, a[1]);
    r = run(s, &call);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.jobs), 0);
    assert_int_equal(int_cmd(s, "HGET %s processed", s->k.stats), 4);

    /* c[1] claimed by hand and settled by B: A is alone again, its XACK
     * takes four of five, and c[1] (gone) is the lost one */
    enqueue_n_read(s, "A", 5, c);
    freeReplyObject(drv_test_redis_cmd(s->c, "XCLAIM t:{q}:jobs drover B 0 "
                                       "%s JUSTID", c[1]));
    drv_settle_init(&call, &s->k, "B", 1700000000000LL, NULL);
    plain_ack(&call, s, c[1]);
    freeReplyObject(run(s, &call));
    drv_settle_init(&call, &s->k, "A", 1700000000000LL, NULL);
    for (i = 0; i < 5; i++)
        plain_ack(&call, s, c[i]);
    r = run(s, &call);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(drv_settle_parse(r, 5, codes, &err), 0);
    freeReplyObject(r);
    for (i = 0; i < 5; i++)
        assert_int_equal(codes[i], i == 1 ? DRV_QUEUE_LOST : DRV_QUEUE_DONE);
    assert_int_equal(int_cmd(s, "HGET %s processed", s->k.stats), 9);
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.jobs), 0);

    /* acks out of order around an entry of ours still running: the
     * one above it goes too */
    enqueue_n_read(s, "A", 3, c);
    drv_settle_init(&call, &s->k, "A", 1700000000000LL, NULL);
    plain_ack(&call, s, c[2]);
    plain_ack(&call, s, c[0]);
    freeReplyObject(run(s, &call));
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.jobs), 1);
    drv_settle_init(&call, &s->k, "A", 1700000000000LL, NULL);
    plain_ack(&call, s, c[1]);
    freeReplyObject(run(s, &call));
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.jobs), 0);
    /* acks out of order, with older and newer entries of ours still
     * running and one entry not delivered: only the acked ones go */
    enqueue_n_read(s, "A", 4, d);
    r = drv_test_redis_cmd(s->c, "XADD t:{q}:jobs * job noop u 1");
    snprintf(u, sizeof u, "%s", r->str);
    freeReplyObject(r);
    drv_settle_init(&call, &s->k, "A", 1700000000000LL, NULL);
    plain_ack(&call, s, d[3]);
    plain_ack(&call, s, d[1]);
    r = run(s, &call);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.jobs), 3); /* d0 d2 u */
    /* a call sent again: nothing of it is pending, nothing is touched */
    settle_acks(s, "A", (const char *[]){d[1]}, 1, codes);
    assert_int_equal(codes[0], DRV_QUEUE_LOST);
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.jobs), 3);
    /* the last two, out of order: nothing is pending after them, the
     * undelivered entry stays and is delivered next, whole */
    settle_acks(s, "A", (const char *[]){d[2], d[0]}, 2, codes);
    assert_int_equal(codes[0], DRV_QUEUE_DONE);
    assert_int_equal(codes[1], DRV_QUEUE_DONE);
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.jobs), 1);
    expect_delivered_next(s, (const char *[]){u}, 1);
    assert_int_equal(int_cmd(s, "HGET %s processed", s->k.stats), 16);
}

/* A long job id (keys longer than any fixed buffer) settles like any
 * other: a retry keeps it, and so does its result key. */
static void
test_queue_long_job_id(void **st)
{
    struct state *s = *st;
    char extra[1100], id[1000], key[1100];
    struct drv_job *job;
    struct drv_settle_op op = {0};

    memset(id, 'x', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    snprintf(extra, sizeof extra, "id %s", id);
    job = enqueue_and_read(s, "A", extra);
    assert_string_equal(job->id, id);
    op.kind = DRV_SETTLE_RETRY;
    op.entry_id = job->entry_id;
    op.job_id = job->id;
    op.job_id_len = job->id_len;
    op.attempts = 1;
    op.due_ms = 5000;
    op.result_ttl_ms = 60000;
    op.text = "boom";
    op.text_len = 4;
    assert_int_equal(settle_one(s, "A", &op), DRV_QUEUE_DONE);
    assert_int_equal(int_cmd(s, "ZSCORE t:{q}:delayed %s", id), 5000);
    snprintf(key, sizeof key, "t:{q}:result:%s", id);
    assert_int_equal(int_cmd(s, "EXISTS %s", key), 1);
    drv_job_free(job);
}

static void
test_queue_job_parse_last_field_wins(void **st)
{
    struct state *s = *st;
    struct drv_job *job = enqueue_and_read(s, "A", "a 2 id '' attempt x");

    (void)s;
    {
        char *v = drv_job_field_str(job, "a");
        assert_string_equal(v, "2");
        free(v);
    }
    assert_string_equal(job->id, job->entry_id); /* empty id = absent */
    assert_int_equal(job->attempt_bad, 1);
    drv_job_free(job);
}

/* Send a batch of admin commands in order; replies into r[0..c->n). */
static void
send_cmds(struct state *s, const struct drv_queue_cmds *c, redisReply **r)
{
    size_t i;

    for (i = 0; i < c->n; i++) {
        r[i] = redisCommandArgv(s->c, c->cmd[i].argc,
                                (const char **)c->cmd[i].argv,
                                c->cmd[i].argvlen);
        assert_non_null(r[i]);
    }
}

/* Enqueue a job of type e with id and field n = nval, due at due_ms. */
static void
enqueue_delayed(struct state *s, const char *id, const char *nval,
                int64_t due_ms)
{
    struct drv_queue_cmds c;
    struct drv_argv f;
    struct drv_queue_enqueue e = {"job", "e", NULL, id, due_ms};
    struct drv_err err;
    redisReply *r[2];
    char *got = NULL, member[64];

    drv_argv_init(&f);
    drv_argv_adds(&f, "n");
    drv_argv_adds(&f, nval);
    e.fields = &f;
    drv_queue_cmds_init(&c);
    /* the script, then the due index */
    assert_int_equal(drv_queue_enqueue_build(&c, &s->k, &e), 2);
    send_cmds(s, &c, r);
    assert_drv_ok(drv_queue_enqueue_parse(r, 2, &e, &got, &err), &err);
    assert_string_equal(got, id);
    free(got);
    freeReplyObject(r[0]);
    freeReplyObject(r[1]);
    snprintf(member, sizeof member, "%s@%lld", s->k.name, (long long)due_ms);
    r[0] = drv_test_redis_cmd(s->c, "ZSCORE %s %s", s->k.due, member);
    assert_int_equal(r[0]->type, REDIS_REPLY_STRING);
    assert_int_equal(atoll(r[0]->str), due_ms);
    freeReplyObject(r[0]);
    drv_queue_cmds_fini(&c);
    drv_argv_fini(&f);
}

/* Look id up; its where and its field n (or "" with no job). */
static enum drv_queue_where
lookup(struct state *s, const char *id, char *n, size_t nn)
{
    struct drv_queue_cmds c;
    struct drv_queue_lookup l;
    struct drv_err err;
    redisReply *r[2];
    enum drv_queue_where w;
    char *v = NULL;

    drv_queue_cmds_init(&c);
    assert_int_equal(drv_queue_lookup_build(&c, &s->k, id), 2);
    send_cmds(s, &c, r);
    assert_drv_ok(drv_queue_lookup_parse(r, 2, &l, &err), &err);
    w = l.where;
    v = l.job != NULL ? drv_job_field_str(l.job, "n") : NULL;
    snprintf(n, nn, "%s", v != NULL ? v : "");
    if (l.job != NULL)
        assert_memory_equal(l.job->id, id, strlen(id) + 1);
    free(v);
    drv_queue_lookup_fini(&l);
    freeReplyObject(r[0]);
    freeReplyObject(r[1]);
    drv_queue_cmds_fini(&c);
    return w;
}

/*
 * Delayed jobs sharing an id each wait under their own member; a lookup
 * by id finds member ID, else a member ID#... whose hash holds that id
 * (never one whose id only looks like it: a job with id "a#x"); the mover
 * moves every form.
 */
static void
test_queue_delayed_same_id_members_and_lookup(void **st)
{
    struct state *s = *st;
    struct drv_script_call call;
    redisReply *r;
    char n[16];

    /* the decoy is due first, so a scan meets it before a#TOKEN */
    enqueue_delayed(s, "a#x", "decoy", 500);
    enqueue_delayed(s, "a", "1", 1000);
    enqueue_delayed(s, "a", "2", 1000);
    assert_int_equal(int_cmd(s, "ZCARD %s", s->k.delayed), 3);
    assert_int_equal(int_cmd(s, "HLEN %s", "t:{q}:job:a"), 3);
    assert_int_equal(lookup(s, "a", n, sizeof n), DRV_QUEUE_DELAYED);
    assert_string_equal(n, "1");
    assert_int_equal(lookup(s, "a#x", n, sizeof n), DRV_QUEUE_DELAYED);
    assert_string_equal(n, "decoy");
    /* the first one gone: the second is found under a#TOKEN */
    freeReplyObject(drv_test_redis_cmd(s->c, "ZREM t:{q}:delayed a"));
    freeReplyObject(drv_test_redis_cmd(s->c, "DEL t:{q}:job:a"));
    assert_int_equal(lookup(s, "a", n, sizeof n), DRV_QUEUE_DELAYED);
    assert_string_equal(n, "2");
    assert_int_equal(lookup(s, "b", n, sizeof n), DRV_QUEUE_NOWHERE);
    drv_queue_mover(&call, &s->k, 1000, 100);
    r = run(s, &call);
    assert_int_equal(r->integer, 2);
    freeReplyObject(r);
    assert_int_equal(int_cmd(s, "XLEN %s", s->k.jobs), 2);
    assert_int_equal(int_cmd(s, "ZCARD %s", s->k.delayed), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_queue_ack_checks_ownership,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_retry_then_mover, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_queue_dead_keeps_fields, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_queue_requeue_is_undelivered,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_reclaim_and_poison, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_queue_reclaim_oversized, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_queue_reclaim_hands_back_graph_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_poison_trims_dead, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_queue_renew_never_steals, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_queue_dead_retry, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_queue_job_parse_last_field_wins,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_queue_plain_acks_batch_checks_ownership, setup, teardown),
        cmocka_unit_test(test_queue_id_cmp),
        cmocka_unit_test_setup_teardown(
            test_queue_plain_acks_in_order_fast_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_plain_acks_truncated_range,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_queue_plain_acks_trim_keeps_pending_and_undelivered, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_queue_plain_acks_trim_across_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_plain_acks_sole_consumer,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_long_job_id, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_queue_delayed_same_id_members_and_lookup, setup, teardown),
    };

    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, drv_test_redis_group_setup,
                                  drv_test_redis_group_teardown);
}
