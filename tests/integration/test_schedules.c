/*
 * test_schedules.c -- schedules against a real redis-server and real
 * droverd processes: each tick enqueued exactly once however many
 * workers run, ids NAME@MS on the interval's multiples, missed ticks not
 * caught up, the script's fence on its own, a worker whose clock runs a
 * day ahead (under libfaketime) refused, and `drover schedules`.
 *
 * Ticks are read where they land: the schedule's queue is paused, so no
 * worker fetches its entries and the stream keeps every one (schedules
 * still enqueue on a paused queue). Time-sensitive cases use `every: 1s`;
 * cron and DST are covered by tests/unit/test_cron.c.
 */
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "droverd.h"
#include "drover/clock.h"
#include "drover/common.h"
#include "drover/parse.h"
#include "drover/queue.h"

#define OUT_MAX (64 * 1024)
#define TICKS_MAX 4096

static void setup(struct drv_test_droverd *t);

static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-sched",
    .prefix = "t",
    .log_level = "debug",
    .worker_defaults = "  shutdown_timeout: 5s\n",
    .body_head = NULL,
    .tail_lines = 40,
    .setup = setup,
};

/* Two queues: `work` is run, `sched` is paused (its ticks stay). */
static const char body[] =
    "queues: [work, sched]\n"
    "jobs:\n"
    "  report: {handler: echo, result_ttl: 1h}\n"
    "schedules:\n"
    "  tick:\n"
    "    every: 1s\n"
    "    queue: sched\n"
    "    job: report\n"
    "    fields: {kind: tick, n: \"7\"}\n"
    "  run:\n"
    "    every: 1s\n"
    "    queue: work\n"
    "    job: report\n";

/* The ticks found in a stream: each entry's id field's MS, in order. */
struct ticks {
    int64_t ms[TICKS_MAX];
    int n;
};

/* Fail unless the entry's field name is want. */
static void
field_is(const redisReply *fv, const char *name, const char *want)
{
    const redisReply *v = drv_test_field(fv, name);

    if (v == NULL || strcmp(v->str, want) != 0)
        fail_msg("field %s: \"%s\", want \"%s\"", name,
                 v != NULL ? v->str : "(none)", want);
}

/*
 * Read every entry of t:{q}:jobs; each must be a tick of schedule name:
 * job report, schedule NAME, id NAME@MS with MS a whole second, the
 * extra fields want_kind (NULL: none). Fills out in stream order.
 */
static void
read_ticks(struct drv_test_droverd *t, const char *q, const char *name,
           const char *want_kind, struct ticks *out)
{
    redisReply *r = drv_test_redis_cmd(t->c, "XRANGE t:{%s}:jobs - +", q);
    size_t i, nl = strlen(name);

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    out->n = 0;
    for (i = 0; i < r->elements && out->n < TICKS_MAX; i++) {
        const redisReply *fv = r->element[i]->element[1];
        const redisReply *id = drv_test_field(fv, "id");
        int64_t ms = 0;

        assert_non_null(id);
        if (strncmp(id->str, name, nl) != 0 || id->str[nl] != '@' ||
            drv_parse_int(id->str + nl + 1, 1, INT64_MAX, &ms) < 0)
            fail_msg("entry %zu: id \"%s\" is not %s@MS", i, id->str, name);
        if (ms % 1000 != 0)
            fail_msg("tick %s is not on a whole second", id->str);
        field_is(fv, "schedule", name);
        field_is(fv, "job", "report");
        if (want_kind != NULL) {
            field_is(fv, "kind", want_kind);
            field_is(fv, "n", "7");
        }
        out->ms[out->n++] = ms;
    }
    freeReplyObject(r);
}

/* Fail unless every tick of tk is unique (sorted ascending by stream
 * order, as the fence makes them). */
static void
assert_unique_ascending(const struct ticks *tk)
{
    int i;

    for (i = 1; i < tk->n; i++)
        if (tk->ms[i] <= tk->ms[i - 1])
            fail_msg("tick %d (%lld) after tick %lld: a tick enqueued "
                     "twice or out of order", i, (long long)tk->ms[i],
                     (long long)tk->ms[i - 1]);
}

static void
setup(struct drv_test_droverd *t)
{
    drv_test_droverd_config(t, NULL, body);
    freeReplyObject(drv_test_redis_cmd(t->c, "SET t:{sched}:paused 1"));
}

/* ------------------------------------------------------------- tests */

/* Three workers, about six ticks: each tick in the stream once; the
 * processed ticks of `run` each ran once (a duplicate would count twice
 * in processed but share one result key). */
static void
test_schedules_once_across_three_workers(void **state)
{
    struct drv_test_droverd *t = *state;
    struct ticks tk;
    redisReply *r = NULL;
    long long processed;
    int i;

    for (i = 0; i < 3; i++)
        drv_test_droverd_start(t, i);
    wait_until_num(drv_test_num(t, "XLEN t:{sched}:jobs"), >=, 6,
                   "ticks enqueued");
    wait_until_num(drv_test_stat(t, "work", "processed"), >=, 5,
                   "ticks of run processed");
    for (i = 0; i < 3; i++)
        drv_test_droverd_stop(t, i, 0);

    read_ticks(t, "sched", "tick", "tick", &tk);
    assert_true(tk.n >= 6);
    assert_unique_ascending(&tk);
    /* the key holds the newest tick */
    assert_int_equal(drv_test_num(t, "GET t:{sched}:sched:tick"),
                     tk.ms[tk.n - 1]);

    /* `run` was processed: one result per tick, processed = results */
    processed = drv_test_stat(t, "work", "processed");
    r = drv_test_redis_cmd(t->c, "KEYS t:{work}:result:run@*");
    assert_non_null(r);
    assert_true(processed >= 5);
    assert_int_equal((long long)r->elements, processed);
    freeReplyObject(r);
    assert_int_equal(drv_test_stat(t, "work", "failed"), 0);
}

/* A worker stopped for several intervals: on restart it enqueues only
 * the tick that is still in grace (at most 1 s old), not the ones it
 * missed. */
static void
test_schedules_missed_ticks_not_caught_up(void **state)
{
    struct drv_test_droverd *t = *state;
    struct ticks tk;
    int64_t last, restart;
    int i, n_before;

    drv_test_droverd_start(t, 0);
    wait_until_num(drv_test_num(t, "XLEN t:{sched}:jobs"), >=, 2,
                   "ticks enqueued");
    drv_test_droverd_stop(t, 0, 0);
    read_ticks(t, "sched", "tick", "tick", &tk);
    n_before = tk.n;
    last = tk.ms[tk.n - 1];

    /* pacing: several ticks pass with no worker */
    wait_until(drv_clock_unix_ms() >= last + 4500, "4.5 s after the last "
               "tick (now %lld)", (long long)drv_clock_unix_ms());
    restart = drv_clock_unix_ms();
    drv_test_droverd_start(t, 0);
    wait_until_num(drv_test_num(t, "XLEN t:{sched}:jobs"), >=,
                   n_before + 2, "ticks after the restart");
    drv_test_droverd_stop(t, 0, 0);

    read_ticks(t, "sched", "tick", "tick", &tk);
    assert_unique_ascending(&tk);
    /* the gap holds at least three ticks that could have been caught up:
     * none was; the first tick after it is at most 1 s before restart */
    assert_true(restart - 1000 - last >= 3000);
    for (i = n_before; i < tk.n; i++)
        if (tk.ms[i] < restart - 1000)
            fail_msg("tick %lld caught up after the restart at %lld "
                     "(last before the stop: %lld)", (long long)tk.ms[i],
                     (long long)restart, (long long)last);
}

/* One run of the schedule script for tick on queue k's key; its integer
 * reply. */
static long long
script_tick(struct drv_test_droverd *t, const struct drv_queue_keys *k,
            const char *key, const struct drv_argv *fields, int64_t tick)
{
    struct drv_queue_tick tk = {.schedule = "fence", .kind = "pipeline",
                                .target = "p", .fields = fields,
                                .tick_ms = tick};
    struct drv_script_call call;
    struct drv_argv eval;
    redisReply *r;
    long long n;

    drv_queue_schedule_tick(&call, k, key, &tk);
    drv_argv_init(&eval);
    drv_script_call_eval(&call, &eval);
    r = redisCommandArgv(t->c, eval.argc, (const char **)eval.argv,
                         eval.argvlen);
    assert_non_null(r);
    if (r->type != REDIS_REPLY_INTEGER)
        fail_msg("tick %lld: reply type %d (%s)", (long long)tick, r->type,
                 r->type == REDIS_REPLY_ERROR ? r->str : "");
    n = r->integer;
    freeReplyObject(r);
    drv_argv_fini(&eval);
    drv_script_call_fini(&call);
    return n;
}

/* Redis's clock, Unix ms. */
static int64_t
redis_now_ms(struct drv_test_droverd *t)
{
    redisReply *r = drv_test_redis_cmd(t->c, "TIME");
    int64_t ms;

    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    ms = atoll(r->element[0]->str) * 1000 + atoll(r->element[1]->str) / 1000;
    freeReplyObject(r);
    return ms;
}

/* The script on its own: a tick at or before the stored one adds
 * nothing; a later one adds one entry and moves the key. A tick more
 * than DRV_QUEUE_SCHEDULE_AHEAD_MS ahead of Redis's clock is refused and
 * stores nothing; a stored tick that far ahead is replaced. */
static void
test_schedules_script_fences_ticks(void **state)
{
    struct drv_test_droverd *t = *state;
    static const int64_t tick[] = {2000, 2000, 1000, 3000, 3000, 2500};
    static const long long want[] = {1, 0, 0, 1, 0, 0};
    struct drv_queue_keys k;
    struct drv_argv fields;
    redisReply *r = NULL;
    const redisReply *fv;
    char *key = NULL;
    int64_t now, far;
    long long got;
    size_t i;

    drv_queue_keys_init(&k, "t", "sched");
    key = drv_queue_schedule_key("t", "sched", "fence");
    assert_string_equal(key, "t:{sched}:sched:fence");
    drv_argv_init(&fields);
    drv_argv_adds(&fields, "kind");
    drv_argv_add(&fields, "a\0b", 3);
    for (i = 0; i < DRV_ARRAY_LEN(tick); i++) {
        got = script_tick(t, &k, key, &fields, tick[i]);
        if (got != want[i])
            fail_msg("tick %lld: %lld, want %lld", (long long)tick[i], got,
                     want[i]);
    }
    assert_int_equal(drv_test_num(t, "XLEN t:{sched}:jobs"), 2);
    assert_int_equal(drv_test_num(t, "GET t:{sched}:sched:fence"), 3000);
    /* the entry: pipeline, fields byte for byte, schedule, id */
    r = drv_test_redis_cmd(t->c, "XRANGE t:{sched}:jobs - + COUNT 1");
    assert_non_null(r);
    assert_int_equal(r->element[0]->element[1]->elements, 8);
    fv = r->element[0]->element[1];
    assert_string_equal(drv_test_field(fv, "pipeline")->str, "p");
    assert_int_equal(drv_test_field(fv, "kind")->len, 3);
    assert_memory_equal(drv_test_field(fv, "kind")->str, "a\0b", 3);
    assert_string_equal(drv_test_field(fv, "id")->str,
                        "fence@2000");
    freeReplyObject(r);

    /* a tick from a clock a day ahead: refused, nothing stored */
    now = redis_now_ms(t);
    far = now + INT64_C(86400000);
    assert_int_equal(script_tick(t, &k, key, &fields, far), -1);
    assert_int_equal(drv_test_num(t, "GET t:{sched}:sched:fence"), 3000);
    assert_int_equal(drv_test_num(t, "XLEN t:{sched}:jobs"), 2);
    /* within the limit (a second ahead): accepted */
    assert_int_equal(script_tick(t, &k, key, &fields, now + 1000), 1);
    /* a stored tick a day ahead fences nothing: replaced */
    freeReplyObject(drv_test_redis_cmd(t->c, "SET t:{sched}:sched:fence "
                                       "%lld", (long long)far));
    assert_int_equal(script_tick(t, &k, key, &fields, now + 2000), 2);
    assert_int_equal(drv_test_num(t, "GET t:{sched}:sched:fence"),
                     now + 2000);
    assert_int_equal(drv_test_num(t, "XLEN t:{sched}:jobs"), 4);
    drv_argv_fini(&fields);
    free(key);
    drv_queue_keys_fini(&k);
}

/* "LD_PRELOAD=" and the path of libfaketime's preload library (Debian's
 * libfaketime; `make deps` installs it) into out. */
static void
faketime_preload(char *out, size_t n)
{
    glob_t g;

    if (glob("/usr/lib/*/faketime/libfaketime.so.1", 0, NULL, &g) != 0)
        fail_msg("libfaketime is not installed (make deps installs it)");
    snprintf(out, n, "LD_PRELOAD=%s", g.gl_pathv[0]);
    globfree(&g);
}

/* A worker whose clock is a day ahead of Redis's: the script refuses its
 * ticks (it warns), the schedule key stays clean, and a worker with a
 * right clock beside it enqueues the ticks as before (before the fix the
 * fast worker stored a tick a day ahead and every real tick was fenced
 * out until then). */
static void
test_schedules_fast_clock_refused(void **state)
{
    struct drv_test_droverd *t = *state;
    const char *asan = getenv("ASAN_OPTIONS");
    char preload[300], asan_env[400];
    /* ASan wants its runtime first among the preloaded libraries */
    const char *env[] = {preload, "FAKETIME=+1d",
                         "FAKETIME_DONT_FAKE_MONOTONIC=1", asan_env, NULL};
    struct ticks tk;
    int64_t now;
    int i;

    faketime_preload(preload, sizeof preload);
    snprintf(asan_env, sizeof asan_env,
             "ASAN_OPTIONS=%s%sverify_asan_link_order=0",
             asan != NULL ? asan : "", asan != NULL ? ":" : "");
    drv_test_droverd_start_env(t, 0, NULL, env);
    drv_test_wait_log(t, "schedule tick refused: this worker's clock is "
                      "ahead of Redis's", 1);
    assert_int_equal(drv_test_num(t, "XLEN t:{sched}:jobs"), 0);
    assert_int_equal(drv_test_num(t, "EXISTS t:{sched}:sched:tick"), 0);

    drv_test_droverd_start(t, 1);
    wait_until_num(drv_test_num(t, "XLEN t:{sched}:jobs"), >=, 2,
                   "ticks enqueued by the worker with the right clock");
    drv_test_droverd_stop(t, 1, 0);
    drv_test_droverd_stop(t, 0, 0);
    now = drv_clock_unix_ms();
    read_ticks(t, "sched", "tick", "tick", &tk);
    assert_unique_ascending(&tk);
    for (i = 0; i < tk.n; i++)
        if (tk.ms[i] > now)
            fail_msg("tick %lld enqueued after the stop at %lld: from the "
                     "fast clock", (long long)tk.ms[i], (long long)now);
}

/* Entries of t:{q}:jobs whose id starts with prefix. */
static long long
count_ids(struct drv_test_droverd *t, const char *q, const char *prefix)
{
    redisReply *r = drv_test_redis_cmd(t->c, "XRANGE t:{%s}:jobs - +", q);
    long long n = 0;
    size_t i;

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    for (i = 0; i < r->elements; i++) {
        const redisReply *id = drv_test_field(r->element[i]->element[1], "id");

        if (id != NULL && strncmp(id->str, prefix, strlen(prefix)) == 0)
            n++;
    }
    freeReplyObject(r);
    return n;
}

/* A schedule key of the wrong type: that schedule's ticks fail (warned
 * once per 10 s, not on every try), the other schedule keeps ticking,
 * and once the key is gone the schedule ticks again. */
static void
test_schedules_wrong_type_key_skipped(void **state)
{
    struct drv_test_droverd *t = *state;
    long long n;
    int64_t t0;
    int warned;

    drv_test_droverd_config(t, NULL,
                            "queues: [work, sched]\n"
                            "jobs:\n"
                            "  report: {handler: echo}\n"
                            "schedules:\n"
                            "  bad: {every: 1s, queue: sched, job: report}\n"
                            "  tick: {every: 1s, queue: sched, job: report}\n");
    freeReplyObject(drv_test_redis_cmd(t->c, "HSET t:{sched}:sched:bad a b"));
    drv_test_droverd_start(t, 0);
    drv_test_wait_log(t, "schedule tick not enqueued", 1);
    t0 = drv_test_now_ms();
    assert_true(drv_test_file_contains(t->log, "WRONGTYPE"));
    /* three more ticks of the other schedule: the bad one was tried
     * again meanwhile (every second), and warned once per 10 s at most
     * (normally not again: the ticks take about 3 s) */
    n = count_ids(t, "sched", "tick@");
    wait_until_num(count_ids(t, "sched", "tick@"), >=, n + 3,
                   "ticks of the other schedule");
    warned = drv_test_file_count(t->log, "schedule tick not enqueued");
    if (warned > 1 + (drv_test_now_ms() - t0) / 10000)
        fail_msg("warned %d times in %lld ms", warned,
                 (long long)(drv_test_now_ms() - t0));
    assert_int_equal(count_ids(t, "sched", "bad@"), 0);
    /* the key gone: it ticks again */
    freeReplyObject(drv_test_redis_cmd(t->c, "DEL t:{sched}:sched:bad"));
    wait_until_num(count_ids(t, "sched", "bad@"), >=, 1,
                   "ticks of the repaired schedule");
    drv_test_droverd_stop(t, 0, 0);
}

/* `drover schedules`: the next tick computed, the last tick from Redis
 * ("-" before any), in the schedule's zone; --json the same in ms. */
static void
test_schedules_cli(void **state)
{
    struct drv_test_droverd *t = *state;
    static const char *const text[] = {"schedules", NULL};
    static const char *const json[] = {"schedules", "--json", NULL};
    struct drv_test_cli r;
    char *out = NULL;
    int64_t now = drv_clock_unix_ms();

    drv_test_droverd_config(t, NULL,
                            "queues: [default, low]\n"
                            "jobs:\n"
                            "  report: {handler: echo}\n"
                            "pipelines:\n"
                            "  p: {steps: [report]}\n"
                            "schedules:\n"
                            "  nightly:\n"
                            "    cron: \"30 2 * * *\"\n"
                            "    timezone: Asia/Kolkata\n"
                            "    queue: low\n"
                            "    pipeline: p\n"
                            "  often: {every: 10m, job: report}\n");
    freeReplyObject(drv_test_redis_cmd(t->c, "SET t:{default}:sched:often "
                                       "1796189400000"));
    out = drv_test_cli_out(t->dir, t->cfg, 0, text);
    /* India has no DST: 02:30 is always +05:30 */
    if (strstr(out, "nightly  cron 30 2 * * *  Asia/Kolkata  low") == NULL ||
        strstr(out, "pipeline p") == NULL ||
        strstr(out, "T02:30:00+05:30") == NULL ||
        strstr(out, "often    every 10m") == NULL ||
        strstr(out, "2026-12-02T05:30:00+00:00") == NULL)
        fail_msg("drover schedules printed:\n%s", out);
    /* nightly never ticked */
    assert_non_null(strstr(out, "  -  "));
    free(out);

    out = drv_test_cli_out(t->dir, t->cfg, 0, json);
    if (strstr(out, "\"name\":\"nightly\",\"cron\":\"30 2 * * *\","
                    "\"every_ms\":null,\"timezone\":\"Asia/Kolkata\","
                    "\"queue\":\"low\",\"job\":null,\"pipeline\":\"p\","
                    "\"last_tick_at\":null,\"next_tick_at\":") == NULL ||
        strstr(out, "\"name\":\"often\",\"cron\":null,\"every_ms\":600000,"
                    "\"timezone\":\"UTC\",\"queue\":\"default\","
                    "\"job\":\"report\",\"pipeline\":null,"
                    "\"last_tick_at\":1796189400000,"
                    "\"next_tick_at\":") == NULL)
        fail_msg("drover schedules --json printed:\n%s", out);
    /* next ticks: often on a multiple of 10 min within 10 min; nightly
     * at 21:00 UTC (02:30 +05:30) within a day */
    {
        const char *p = strstr(out, "\"often\"");
        const char *n = strstr(p, "\"next_tick_at\":");
        long long next = atoll(n + strlen("\"next_tick_at\":"));

        assert_int_equal(next % 600000, 0);
        assert_true(next > now && next <= now + 600000 + 5000);
        p = strstr(out, "\"nightly\"");
        n = strstr(p, "\"next_tick_at\":");
        next = atoll(n + strlen("\"next_tick_at\":"));
        assert_int_equal(next % 86400000, 21 * 3600000);
        assert_true(next > now && next <= now + 86400000 + 5000);
    }
    assert_non_null(strstr(out, "{\"schedules\":[{"));
    free(out);

    /* one schedule's key of the wrong type: the other is still listed,
     * the bad one named, and the exit is 1 */
    freeReplyObject(drv_test_redis_cmd(t->c, "DEL t:{low}:sched:nightly"));
    freeReplyObject(drv_test_redis_cmd(t->c, "LPUSH t:{low}:sched:nightly "
                                       "x"));
    drv_test_cli_run(&r, t->dir, t->cfg, NULL, text);
    if (strstr(r.out, "often    every 10m") == NULL ||
        strstr(r.err, "schedule nightly: ") == NULL ||
        strstr(r.err, "WRONGTYPE") == NULL)
        fail_msg("drover schedules printed:\n%s\nand on stderr:\n%s",
                 r.out, r.err);
    free(drv_test_cli_take(&r, 1));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        TD(test_schedules_once_across_three_workers),
        TD(test_schedules_missed_ticks_not_caught_up),
        TD(test_schedules_script_fences_ticks),
        TD(test_schedules_fast_clock_refused),
        TD(test_schedules_wrong_type_key_skipped),
        TD(test_schedules_cli),
    };

    drv_test_droverd_fixture = &opts;
    drv_test_filter_from_env();
    return cmocka_run_group_tests(tests, drv_test_redis_group_setup,
                                  drv_test_redis_group_teardown);
}
