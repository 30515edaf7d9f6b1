/*
 * test_cli.c -- the admin CLI (bin/drover) as a user runs it: the real
 * binary of this build variant (drv_test_bin honours $DROVER_BIN_DIR, so
 * the ASan run tests the ASan binary) in a child process, its stdout,
 * stderr and exit status captured, against the harness's redis-server;
 * what it wrote is checked with a blocking hiredis client.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "drover/clock.h"
#include "drover/common.h"
#include "drover/queue.h"

static char tmpdir[256];       /* config files and captured output */

struct state {
    redisContext *c;           /* owned: blocking client, db 0 */
};

/* Run bin/drover with args (NULL-terminated); env "NAME=value" (or NULL)
 * is added to the child's environment. */
static void
run_argv(struct drv_test_cli *r, const char *env, const char *const *args)
{
    const char *envv[] = {env, NULL};

    drv_test_cli_run(r, tmpdir, NULL, envv, args);
}

/* Run with args ended by NULL, no extra environment. */
#define RUN(r, ...)                                                       \
    do {                                                                  \
        const char *const a_[] = {__VA_ARGS__, NULL};                     \
        run_argv((r), NULL, a_);                                          \
    } while (0)

/* RUN against the test server: --redis URL first. */
#define RUN_R(r, ...) RUN((r), "--redis", drv_test_srv.url, __VA_ARGS__)

/* Assert the exit status, showing what the CLI said when it differs. */
static void
expect_status(const struct drv_test_cli *r, int want)
{
    if (r->status != want)
        fail_msg("exit %d, want %d\nstdout: %s\nstderr: %s", r->status,
                 want, r->out, r->err);
}

static void
expect_contains(const char *text, const char *part)
{
    if (strstr(text, part) == NULL)
        fail_msg("\"%s\" not found in:\n%s", part, text);
}

/* Write a config file in tmpdir; returns its path (static buffer). */
static const char *
write_config(const char *name, const char *text)
{
    static char path[400];

    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    assert_int_equal(drv_test_write_file(path, text), 0);
    return path;
}

static redisReply *
cmd(struct state *s, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;

    va_start(ap, fmt);
    r = redisvCommand(s->c, fmt, ap);
    va_end(ap);
    if (r == NULL)
        fail_msg("redis: %s: %s", fmt, s->c->errstr);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("redis: %s: %s", fmt, r->str);
    return r;
}

static long long
int_of(struct state *s, const char *fmt, const char *arg)
{
    redisReply *r = cmd(s, fmt, arg);
    long long v = -1;

    if (r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r->type == REDIS_REPLY_STRING)
        v = atoll(r->str);
    freeReplyObject(r);
    return v;
}

/* Assert a flat [f, v, ...] reply equals want (NULL-terminated). */
static void
expect_fields(const redisReply *f, const char *const *want)
{
    size_t i, n = 0;

    while (want[n] != NULL)
        n++;
    assert_int_equal(f->type, REDIS_REPLY_ARRAY);
    if (f->elements != n)
        fail_msg("%zu fields, want %zu", f->elements, n);
    for (i = 0; i < n; i++) {
        if (f->element[i]->len != strlen(want[i]) ||
            memcmp(f->element[i]->str, want[i], f->element[i]->len) != 0)
            fail_msg("field %zu: \"%s\", want \"%s\"", i,
                     f->element[i]->str, want[i]);
    }
}

/* The one entry of a stream: its fields (the reply stays owned by *hold). */
static const redisReply *
only_entry(struct state *s, const char *key, redisReply **hold)
{
    redisReply *r = cmd(s, "XRANGE %s - +", key);

    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    if (r->elements != 1)
        fail_msg("%s: %zu entries, want 1", key, r->elements);
    *hold = r;
    return r->element[0]->element[1];
}

/* Chomp the trailing newline of a one-line output. */
static char *
line1(char *out)
{
    char *nl = strchr(out, '\n');

    assert_non_null(nl);
    assert_int_equal(nl[1], '\0');
    *nl = '\0';
    return out;
}

/* ---------------------------------------------------------------- setup */

static int
group_setup(void **st)
{
    /* the CLI runs with this environment: no password from outside */
    unsetenv("DROVER_REDIS_PASSWORD");
    if (drv_test_tmpdir("drover-cli", tmpdir, sizeof tmpdir) < 0)
        return -1;
    return drv_test_redis_group_setup(st);
}

static int
group_teardown(void **st)
{
    const char *keep = getenv("DROVER_TEST_KEEP");

    drv_test_redis_group_teardown(st);
    if (!(keep && strcmp(keep, "1") == 0))
        drv_test_rm_rf(tmpdir);
    return 0;
}

static int
setup(void **st)
{
    struct state *s = calloc(1, sizeof *s);

    assert_non_null(s);
    drv_test_redis_fresh();
    s->c = drv_test_redis_connect(&drv_test_srv);
    assert_non_null(s->c);
    *st = s;
    return 0;
}

static int
teardown(void **st)
{
    struct state *s = *st;

    redisFree(s->c);
    free(s);
    return 0;
}

/* -------------------------------------------------------------- enqueue */

static void
test_cli_enqueue_fields_literal(void **st)
{
    struct state *s = *st;
    static const char *const want[] = {
        "job", "resize", "path", "/tmp/a b.png", "cmd", NULL /* below */,
        "eq", "a=b=c", "empty", "", "name", "x y  z", NULL,
    };
    const char *fields[13];
    char shell[1024], trap[400];
    const redisReply *f;
    redisReply *hold = NULL;
    struct drv_test_cli r;

    /* a value a shell would run must land as it is and run nothing */
    snprintf(trap, sizeof trap, "%s/pwned", tmpdir);
    snprintf(shell, sizeof shell, "cmd=$(touch %s)`touch %s`;", trap, trap);
    RUN_R(&r, "enqueue", "default", "resize", "path=/tmp/a b.png", shell,
          "eq=a=b=c", "empty=", "name=x y  z");
    expect_status(&r, 0);
    assert_string_equal(r.err, "");
    memcpy(fields, want, sizeof fields);
    fields[5] = shell + strlen("cmd=");
    f = only_entry(s, "drover:{default}:jobs", &hold);
    expect_fields(f, fields);
    /* no --id: the printed id is the new entry's id */
    assert_string_equal(line1(r.out), hold->element[0]->element[0]->str);
    assert_int_equal(access(trap, F_OK), -1);
    freeReplyObject(hold);
    drv_test_cli_fini(&r);
}

static void
test_cli_enqueue_id(void **st)
{
    struct state *s = *st;
    static const char *const want1[] = {"job", "echo", "a", "1", "id",
                                        "my-id", NULL};
    static const char *const want2[] = {"job", "echo", "id", "from-field",
                                        NULL};
    const redisReply *f;
    redisReply *hold = NULL;
    struct drv_test_cli r;

    RUN_R(&r, "enqueue", "q1", "echo", "--id", "my-id", "a=1");
    expect_status(&r, 0);
    assert_string_equal(r.out, "my-id\n");
    f = only_entry(s, "drover:{q1}:jobs", &hold);
    expect_fields(f, want1);
    freeReplyObject(hold);
    drv_test_cli_fini(&r);

    /* id=... as a field works as --id; the last one counts */
    RUN_R(&r, "enqueue", "q2", "echo", "id=first", "id=from-field");
    expect_status(&r, 0);
    assert_string_equal(r.out, "from-field\n");
    f = only_entry(s, "drover:{q2}:jobs", &hold);
    expect_fields(f, want2);
    freeReplyObject(hold);
    drv_test_cli_fini(&r);

    /* an empty id counts as absent: not allowed as --id */
    RUN_R(&r, "enqueue", "q3", "echo", "--id", "");
    expect_status(&r, 2);
    assert_int_equal(int_of(s, "EXISTS %s", "drover:{q3}:jobs"), 0);
    drv_test_cli_fini(&r);
}

static void
test_cli_enqueue_delay(void **st)
{
    struct state *s = *st;
    static const char *const want[] = {"job", "resize", "path", "/a b",
                                       "eq", "x=y", "id", NULL, NULL};
    const char *fields[9];
    struct drv_script_call call;
    struct drv_queue_keys k;
    struct drv_argv a;
    const redisReply *f;
    redisReply *rep = NULL, *hold = NULL;
    char key[512], *id = NULL;
    int64_t before, after, score;
    struct drv_test_cli r;

    before = drv_clock_unix_ms();
    RUN_R(&r, "enqueue", "default", "resize", "path=/a b", "--delay", "10s",
          "eq=x=y");
    after = drv_clock_unix_ms();
    expect_status(&r, 0);
    id = strdup(line1(r.out));
    assert_true(id[0] != '\0');
    /* waiting: nothing in the stream, the hash and the zset member */
    assert_int_equal(int_of(s, "EXISTS %s", "drover:{default}:jobs"), 0);
    snprintf(key, sizeof key, "drover:{default}:job:%s", id);
    memcpy(fields, want, sizeof fields);
    fields[7] = id;
    rep = cmd(s, "HGETALL %s", key);
    expect_fields(rep, fields);
    freeReplyObject(rep);
    rep = cmd(s, "ZSCORE drover:{default}:delayed %s", id);
    assert_int_equal(rep->type, REDIS_REPLY_STRING);
    score = atoll(rep->str);
    freeReplyObject(rep);
    assert_true(score >= before + 10000 && score <= after + 10000);

    /* the worker's mover script takes it when due, fields and id intact */
    drv_queue_keys_init(&k, "drover", "default");
    drv_script_call_init(&call, &drv_queue_mover_script);
    drv_queue_mover(&call, &k, score - 1, 100);
    drv_argv_init(&a);
    drv_script_call_eval(&call, &a);
    rep = redisCommandArgv(s->c, a.argc, (const char **)a.argv, a.argvlen);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    assert_int_equal(rep->integer, 0); /* not due yet */
    freeReplyObject(rep);
    drv_script_call_fini(&call);
    drv_script_call_init(&call, &drv_queue_mover_script);
    drv_queue_mover(&call, &k, score, 100);
    drv_script_call_eval(&call, &a);
    rep = redisCommandArgv(s->c, a.argc, (const char **)a.argv, a.argvlen);
    assert_non_null(rep);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    assert_int_equal(rep->integer, 1);
    freeReplyObject(rep);
    drv_script_call_fini(&call);
    drv_argv_fini(&a);
    drv_queue_keys_fini(&k);
    f = only_entry(s, "drover:{default}:jobs", &hold);
    expect_fields(f, fields);
    freeReplyObject(hold);
    assert_int_equal(int_of(s, "EXISTS %s", key), 0);
    assert_int_equal(int_of(s, "ZCARD %s", "drover:{default}:delayed"), 0);
    free(id);
    drv_test_cli_fini(&r);
}

/* Two delayed jobs with the same id are two jobs: the first waits under
 * member d1 (hash job:d1), the second under d1#TOKEN with its own hash. */
static void
test_cli_enqueue_delay_same_id_two_jobs(void **st)
{
    struct state *s = *st;
    static const char *const first[] = {"job", "echo", "a", "1", "id", "d1",
                                        NULL};
    static const char *const second[] = {"job", "echo", "b", "2", "id",
                                         "d1", NULL};
    redisReply *rep = NULL, *m = NULL;
    struct drv_test_cli r;

    RUN_R(&r, "enqueue", "default", "echo", "--id", "d1", "--delay", "1h",
          "a=1");
    expect_status(&r, 0);
    assert_string_equal(r.out, "d1\n");
    drv_test_cli_fini(&r);
    RUN_R(&r, "enqueue", "default", "echo", "b=2", "--delay", "2h", "--id",
          "d1");
    expect_status(&r, 0);
    assert_string_equal(r.out, "d1\n");
    drv_test_cli_fini(&r);
    rep = cmd(s, "HGETALL drover:{default}:job:d1");
    expect_fields(rep, first); /* kept, not replaced or merged */
    freeReplyObject(rep);
    assert_int_equal(int_of(s, "ZCARD %s", "drover:{default}:delayed"), 2);
    m = cmd(s, "ZRANGE drover:{default}:delayed 1 1");
    assert_int_equal(m->type, REDIS_REPLY_ARRAY);
    assert_int_equal(m->elements, 1);
    assert_true(strncmp(m->element[0]->str, "d1#", 3) == 0);
    rep = cmd(s, "HGETALL drover:{default}:job:%s", m->element[0]->str);
    expect_fields(rep, second);
    freeReplyObject(rep);
    freeReplyObject(m);

    /* generated ids differ */
    RUN_R(&r, "enqueue", "default", "echo", "--delay", "1s");
    expect_status(&r, 0);
    drv_test_cli_fini(&r);
    RUN_R(&r, "enqueue", "default", "echo", "--delay", "1s");
    expect_status(&r, 0);
    drv_test_cli_fini(&r);
    assert_int_equal(int_of(s, "ZCARD %s", "drover:{default}:delayed"), 4);
}

static void
test_cli_enqueue_pipeline(void **st)
{
    struct state *s = *st;
    static const char *const want[] = {"pipeline", "thumb", "path", "/p",
                                       NULL};
    const redisReply *f;
    redisReply *hold = NULL;
    struct drv_test_cli r;

    RUN_R(&r, "enqueue", "default", "--pipeline", "thumb", "path=/p");
    expect_status(&r, 0);
    f = only_entry(s, "drover:{default}:jobs", &hold);
    expect_fields(f, want);
    freeReplyObject(hold);
    drv_test_cli_fini(&r);
}

static void
test_cli_enqueue_checks_config(void **st)
{
    struct state *s = *st;
    const char *cfg = write_config("jobs.yaml",
                                   "redis: {prefix: app}\n"
                                   "queues: [main]\n"
                                   "jobs:\n"
                                   "  resize: {handler: noop}\n"
                                   "pipelines:\n"
                                   "  p: {steps: [resize]}\n");
    struct drv_test_cli r;

    RUN_R(&r, "-c", cfg, "enqueue", "main", "nosuch", "a=1");
    expect_status(&r, 2);
    expect_contains(r.err, "\"nosuch\"");
    assert_string_equal(r.out, "");
    drv_test_cli_fini(&r);
    RUN_R(&r, "-c", cfg, "enqueue", "main", "--pipeline", "nope");
    expect_status(&r, 2);
    expect_contains(r.err, "\"nope\"");
    drv_test_cli_fini(&r);
    assert_int_equal(int_of(s, "EXISTS %s", "app:{main}:jobs"), 0);

    /* declared: accepted, under the config's prefix; -c may follow */
    RUN_R(&r, "enqueue", "main", "resize", "a=1", "-c", cfg);
    expect_status(&r, 0);
    drv_test_cli_fini(&r);
    RUN_R(&r, "-c", cfg, "enqueue", "main", "--pipeline", "p");
    expect_status(&r, 0);
    drv_test_cli_fini(&r);
    assert_int_equal(int_of(s, "XLEN %s", "app:{main}:jobs"), 2);
}

/* ---------------------------------------------------------------- stats */

/* The row of queue in stats output: its 8 numbers and PAUSED. */
static void
stats_row(const char *out, const char *queue, long long v[7], char *paused)
{
    const char *p = out;
    char name[64];
    int n;

    while (p != NULL && *p != '\0') {
        n = sscanf(p, "%63s %lld %lld %lld %lld %lld %lld %lld %7s", name,
                   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], paused);
        if (n == 9 && strcmp(name, queue) == 0)
            return;
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    fail_msg("no row for %s in:\n%s", queue, out);
}

static void
test_cli_stats(void **st)
{
    struct state *s = *st;
    const char *cfg = write_config("stats.yaml",
                                   "queues: [default, low, fresh]\n");
    redisReply *rep = NULL;
    long long v[7];
    char paused[8], *eid = NULL;
    struct drv_test_cli r;
    int i;

    /* default: 5 added, 3 delivered, 1 of them acked and deleted (as the
     * worker does) -> 2 ready, 2 running */
    for (i = 0; i < 5; i++)
        freeReplyObject(cmd(s, "XADD drover:{default}:jobs * job echo n %d",
                            i));
    freeReplyObject(cmd(s, "XGROUP CREATE drover:{default}:jobs drover 0"));
    rep = cmd(s, "XREADGROUP GROUP drover c1 COUNT 3 STREAMS "
              "drover:{default}:jobs >");
    eid = strdup(rep->element[0]->element[1]->element[0]->element[0]->str);
    freeReplyObject(rep);
    freeReplyObject(cmd(s, "XACK drover:{default}:jobs drover %s", eid));
    freeReplyObject(cmd(s, "XDEL drover:{default}:jobs %s", eid));
    free(eid);
    freeReplyObject(cmd(s, "ZADD drover:{default}:delayed 1 a 2 b 3 c"));
    freeReplyObject(cmd(s, "XADD drover:{default}:dead * job echo error x"));
    freeReplyObject(cmd(s, "HSET drover:{default}:stats processed 17 "
                        "failed 4 retried 3 dead 1"));
    /* low: paused, nothing else; fresh: 2 added, no group yet */
    freeReplyObject(cmd(s, "SET drover:{low}:paused 1"));
    freeReplyObject(cmd(s, "XADD drover:{fresh}:jobs * job echo"));
    freeReplyObject(cmd(s, "XADD drover:{fresh}:jobs * job echo"));

    RUN_R(&r, "-c", cfg, "stats");
    expect_status(&r, 0);
    /* the header, and one line per configured queue in order */
    {
        static const char header[] = "QUEUE    READY  RUNNING  DELAYED  "
                                     "DEAD  PROCESSED  FAILED  RETRIED  "
                                     "PAUSED  DEAD_MAX  DEDUPED  CANCELLED\n"
                                     "default ";

        assert_true(strncmp(r.out, header, strlen(header)) == 0);
    }
    expect_contains(r.out, "\nlow ");
    expect_contains(r.out, "\nfresh ");
    stats_row(r.out, "default", v, paused);
    assert_int_equal(v[0], 2);   /* ready */
    assert_int_equal(v[1], 2);   /* running */
    assert_int_equal(v[2], 3);   /* delayed */
    assert_int_equal(v[3], 1);   /* dead */
    assert_int_equal(v[4], 17);  /* processed */
    assert_int_equal(v[5], 4);   /* failed */
    assert_int_equal(v[6], 3);   /* retried */
    assert_string_equal(paused, "no");
    /* DEAD_MAX, DEDUPED, then CANCELLED, the last columns:
     * worker.dead_max, 10000 by default, no duplicates, none cancelled */
    {
        const char *l = strstr(r.out, "\ndefault "), *e = NULL;

        assert_non_null(l);
        e = strchr(l + 1, '\n');
        assert_non_null(e);
        while (e[-1] == ' ')
            e--;
        e--; /* the 0 of CANCELLED, right-aligned */
        assert_true(e[0] == '0' && e[-1] == ' ');
        while (e[-1] == ' ')
            e--;
        e--; /* the 0 of DEDUPED */
        assert_true(e[0] == '0' && e[-1] == ' ');
        while (e[-1] == ' ')
            e--;
        assert_true(e - l > 6 && memcmp(e - 6, " 10000", 6) == 0);
    }
    stats_row(r.out, "low", v, paused);
    for (i = 0; i < 7; i++)
        assert_int_equal(v[i], 0);
    assert_string_equal(paused, "yes");
    stats_row(r.out, "fresh", v, paused);
    assert_int_equal(v[0], 2);
    assert_int_equal(v[1], 0);
    drv_test_cli_fini(&r);

    /* queues named on the command line instead of the config's */
    RUN_R(&r, "stats", "fresh");
    expect_status(&r, 0);
    stats_row(r.out, "fresh", v, paused);
    assert_int_equal(v[0], 2);
    assert_null(strstr(r.out, "default"));
    drv_test_cli_fini(&r);

    /* no config: the default queue */
    RUN_R(&r, "stats");
    expect_status(&r, 0);
    stats_row(r.out, "default", v, paused);
    assert_int_equal(v[0], 2);
    drv_test_cli_fini(&r);
}

/* ----------------------------------------------------------------- dead */

static void
add_dead(struct state *s)
{
    freeReplyObject(cmd(s, "XADD drover:{default}:dead * job resize id j1 "
                        "path %s error %s attempts 3 failed_at "
                        "1700000000000", "/x y", "exit 1: boom"));
    freeReplyObject(cmd(s, "XADD drover:{default}:dead * job resize id j2 "
                        "w 640 attempt 2 error e attempts 3 failed_at "
                        "1700000000000"));
    freeReplyObject(cmd(s, "XADD drover:{default}:dead * job echo id j3 "
                        "error e attempts 1 failed_at 1700000000000"));
}

static void
test_cli_dead_list(void **st)
{
    struct state *s = *st;
    char *big = NULL;
    struct drv_test_cli r;
    char *l2;

    RUN_R(&r, "dead", "list", "default");
    expect_status(&r, 0);
    assert_string_equal(r.out, "");
    drv_test_cli_fini(&r);

    add_dead(s);
    RUN_R(&r, "dead", "list", "default");
    expect_status(&r, 0);
    expect_contains(r.out, " id=j1 job=resize attempts=3 "
                    "failed_at=2023-11-14T22:13:20.000Z "
                    "error=\"exit 1: boom\" path=\"/x y\"\n");
    expect_contains(r.out, " id=j2 ");
    expect_contains(r.out, " id=j3 job=echo ");
    l2 = strchr(r.out, '\n');
    assert_non_null(l2);
    l2 = strchr(l2 + 1, '\n');
    assert_non_null(l2);
    l2 = strchr(l2 + 1, '\n');
    assert_non_null(l2);
    assert_int_equal(l2[1], '\0'); /* three lines */
    drv_test_cli_fini(&r);

    RUN_R(&r, "dead", "list", "default", "--count", "1");
    expect_status(&r, 0);
    expect_contains(r.out, "id=j1");
    assert_null(strstr(r.out, "id=j2"));
    drv_test_cli_fini(&r);

    /* a huge argument is cut in the listing */
    big = malloc(5000);
    memset(big, 'a', 4999);
    big[4999] = '\0';
    freeReplyObject(cmd(s, "DEL drover:{default}:dead"));
    freeReplyObject(cmd(s, "XADD drover:{default}:dead * job echo id j9 "
                        "blob %s error e", big));
    RUN_R(&r, "dead", "list", "default");
    expect_status(&r, 0);
    expect_contains(r.out, "aaa...\"\n");
    assert_true(strlen(r.out) < 1200);
    drv_test_cli_fini(&r);
    free(big);
}

static void
test_cli_dead_retry(void **st)
{
    struct state *s = *st;
    static const char *const want[] = {"job", "resize", "w", "640", "id",
                                       "j2", NULL};
    const redisReply *f;
    redisReply *hold = NULL;
    struct drv_test_cli r;

    add_dead(s);
    RUN_R(&r, "dead", "retry", "default", "j2");
    expect_status(&r, 0);
    assert_string_equal(r.out, "moved 1 dead entry back to default\n");
    drv_test_cli_fini(&r);
    assert_int_equal(int_of(s, "XLEN %s", "drover:{default}:dead"), 2);
    /* same id; error, attempts, failed_at and attempt dropped */
    f = only_entry(s, "drover:{default}:jobs", &hold);
    expect_fields(f, want);
    freeReplyObject(hold);

    RUN_R(&r, "dead", "retry", "default", "nosuch");
    expect_status(&r, 1);
    expect_contains(r.err, "nosuch");
    drv_test_cli_fini(&r);
    assert_int_equal(int_of(s, "XLEN %s", "drover:{default}:dead"), 2);

    RUN_R(&r, "dead", "retry", "default", "--all");
    expect_status(&r, 0);
    assert_string_equal(r.out, "moved 2 dead entries back to default\n");
    drv_test_cli_fini(&r);
    assert_int_equal(int_of(s, "XLEN %s", "drover:{default}:dead"), 0);
    assert_int_equal(int_of(s, "XLEN %s", "drover:{default}:jobs"), 3);

    /* --all with nothing dead is not an error */
    RUN_R(&r, "dead", "retry", "default", "--all");
    expect_status(&r, 0);
    assert_string_equal(r.out, "moved 0 dead entries back to default\n");
    drv_test_cli_fini(&r);
}

static void
test_cli_dead_purge(void **st)
{
    struct state *s = *st;
    struct drv_test_cli r;

    add_dead(s);
    RUN_R(&r, "dead", "purge", "default");
    expect_status(&r, 0);
    assert_string_equal(r.out, "purged 3 dead entries from default\n");
    drv_test_cli_fini(&r);
    assert_int_equal(int_of(s, "EXISTS %s", "drover:{default}:dead"), 0);
    RUN_R(&r, "dead", "purge", "default");
    expect_status(&r, 0);
    assert_string_equal(r.out, "purged 0 dead entries from default\n");
    drv_test_cli_fini(&r);
}

/* --older-than: an exact trim by entry id (its write time); the entries
 * written later than the bound all stay, whatever stream node they share
 * with the old ones. */
static void
test_cli_dead_purge_older_than(void **st)
{
    struct state *s = *st;
    int64_t now = drv_clock_unix_ms();
    char id[64];
    struct drv_test_cli r;
    int i;

    /* 150 entries written 10 days ago, 7 written an hour ago */
    for (i = 0; i < 150; i++) {
        snprintf(id, sizeof id, "%lld-%d",
                 (long long)(now - 10LL * 86400000), i);
        freeReplyObject(cmd(s, "XADD drover:{default}:dead %s job old "
                            "error e", id));
    }
    for (i = 0; i < 7; i++) {
        snprintf(id, sizeof id, "%lld-%d", (long long)(now - 3600000), i);
        freeReplyObject(cmd(s, "XADD drover:{default}:dead %s job new "
                            "error e", id));
    }
    RUN_R(&r, "dead", "purge", "default", "--older-than", "1d");
    expect_status(&r, 0);
    assert_string_equal(r.out, "purged 150 dead entries older than 1d from "
                        "default\n");
    drv_test_cli_fini(&r);
    assert_int_equal(int_of(s, "XLEN %s", "drover:{default}:dead"), 7);
    /* nothing older left: the next run removes none */
    RUN_R(&r, "dead", "purge", "default", "--older-than", "1d");
    expect_status(&r, 0);
    assert_string_equal(r.out, "purged 0 dead entries older than 1d from "
                        "default\n");
    drv_test_cli_fini(&r);
    RUN_R(&r, "dead", "purge", "default", "--older-than", "30m");
    expect_status(&r, 0);
    assert_string_equal(r.out, "purged 7 dead entries older than 30m from "
                        "default\n");
    drv_test_cli_fini(&r);
    assert_int_equal(int_of(s, "XLEN %s", "drover:{default}:dead"), 0);
    RUN_R(&r, "dead", "purge", "default", "--older-than", "a week");
    expect_status(&r, 2);
    expect_contains(r.err, "--older-than \"a week\" is not a duration");
    drv_test_cli_fini(&r);
}

/* ------------------------------------------------------- pause, resume */

static void
test_cli_pause_resume(void **st)
{
    struct state *s = *st;
    int64_t before = drv_clock_unix_ms(), v;
    struct drv_test_cli r;

    RUN_R(&r, "pause", "low");
    expect_status(&r, 0);
    assert_string_equal(r.out, "paused low\n");
    drv_test_cli_fini(&r);
    v = int_of(s, "GET %s", "drover:{low}:paused");
    assert_true(v >= before && v <= drv_clock_unix_ms());

    RUN_R(&r, "resume", "low");
    expect_status(&r, 0);
    assert_string_equal(r.out, "resumed low\n");
    drv_test_cli_fini(&r);
    assert_int_equal(int_of(s, "EXISTS %s", "drover:{low}:paused"), 0);

    RUN_R(&r, "resume", "low");
    expect_status(&r, 0);
    assert_string_equal(r.out, "low was not paused\n");
    drv_test_cli_fini(&r);
}

/* -------------------------------------------------------------- workers */

static void
test_cli_workers(void **st)
{
    struct state *s = *st;
    int64_t now = drv_clock_unix_ms();
    char fresh[256], old[256];
    const char *l;
    struct drv_test_cli r;

    RUN_R(&r, "workers");
    expect_status(&r, 0);
    assert_true(strncmp(r.out, "ID  HOST  PID", 13) == 0);
    drv_test_cli_fini(&r);

    snprintf(fresh, sizeof fresh, "host=box1 pid=4242 started=%lld "
             "queues=default,low busy=7 beat=%lld", (long long)now - 60000,
             (long long)now - 2000);
    snprintf(old, sizeof old, "host=box2 pid=99 started=%lld "
             "queues=default busy=0 beat=%lld", (long long)now - 900000,
             (long long)now - 61000);
    freeReplyObject(cmd(s, "HSET drover:workers w-fresh %s w-old %s", fresh,
                        old));
    RUN_R(&r, "workers");
    expect_status(&r, 0);
    expect_contains(r.out, "ID       HOST   PID  QUEUES       BUSY  "
                    "STARTED");
    l = strstr(r.out, "\nw-fresh ");
    assert_non_null(l);
    expect_contains(l, "box1  4242  default,low     7");
    assert_non_null(strstr(l, " ok\n"));
    l = strstr(r.out, "\nw-old ");
    assert_non_null(l);
    expect_contains(l, "box2    99  default         0");
    expect_contains(l, " stale\n");
    drv_test_cli_fini(&r);
}

/* --------------------------------------------------------------- result */

static void
test_cli_result(void **st)
{
    struct state *s = *st;
    struct drv_test_cli r;

    freeReplyObject(cmd(s, "HSET drover:{default}:result:r1 status ok "
                        "result %s error %s attempts 2 finished_at "
                        "1700000000123", "{\"a\":\"1\"}", ""));
    RUN_R(&r, "result", "default", "r1");
    expect_status(&r, 0);
    assert_string_equal(r.out, "status: ok\n"
                               "attempts: 2\n"
                               "finished_at: 2023-11-14T22:13:20.123Z\n"
                               "error: \n"
                               "result: {\"a\":\"1\"}\n");
    drv_test_cli_fini(&r);

    freeReplyObject(cmd(s, "HSET drover:{default}:result:r2 status ok "
                        "result %s", "line1\nline2\n"));
    RUN_R(&r, "result", "default", "r2");
    expect_status(&r, 0);
    assert_string_equal(r.out, "status: ok\nresult:\n  line1\n  line2\n");
    drv_test_cli_fini(&r);
    RUN_R(&r, "result", "default", "r2", "--field", "result");
    expect_status(&r, 0);
    assert_string_equal(r.out, "line1\nline2\n");
    drv_test_cli_fini(&r);

    /* a pipeline's step records: sorted by name, times readable */
    freeReplyObject(cmd(s, "HSET drover:{default}:result:p1 status running "
                        "step.1.status ok step 2 step.0.status ok "
                        "step.0.finished_at 0"));
    RUN_R(&r, "result", "default", "p1");
    expect_status(&r, 0);
    assert_string_equal(r.out, "status: running\nstep: 2\n"
                               "step.0.finished_at: 1970-01-01T00:00:00.000Z\n"
                               "step.0.status: ok\nstep.1.status: ok\n");
    drv_test_cli_fini(&r);

    RUN_R(&r, "result", "default", "gone");
    expect_status(&r, 1);
    assert_string_equal(r.out, "");
    expect_contains(r.err, "no result for gone (result_ttl 0 keeps none, "
                    "or it expired)");
    drv_test_cli_fini(&r);
}

/* --------------------------------------------------------- check-config */

static void
test_cli_check_config(void **st)
{
    const char *good = NULL, *bad = NULL;
    char want[512], badp[400];
    struct drv_test_cli r;

    (void)st;
    good = write_config("good.yaml", "queues: [a]\n"
                                     "jobs:\n"
                                     "  r: {handler: noop}\n");
    RUN(&r, "check-config", good);
    expect_status(&r, 0);
    snprintf(want, sizeof want, "%s: ok\n", good);
    assert_string_equal(r.out, want);
    drv_test_cli_fini(&r);

    bad = write_config("bad.yaml", "queues: [a]\n"
                                   "jobs:\n"
                                   "  r:\n"
                                   "    handler: noop\n"
                                   "    timeout: 30x\n"
                                   "  s: {handler: bogus}\n");
    snprintf(badp, sizeof badp, "%s", bad);
    RUN(&r, "check-config", badp);
    expect_status(&r, 2);
    snprintf(want, sizeof want, "%s:5:14: jobs.r.timeout", badp);
    expect_contains(r.err, want);
    snprintf(want, sizeof want, "%s:6:16: jobs.s.handler", badp);
    expect_contains(r.err, want);
    assert_string_equal(r.out, "");
    drv_test_cli_fini(&r);

    /* a bad -c file stops any command with the same errors */
    RUN_R(&r, "-c", badp, "stats");
    expect_status(&r, 2);
    expect_contains(r.err, "jobs.r.timeout");
    drv_test_cli_fini(&r);

    RUN(&r, "check-config", "/nonexistent/drover.yaml");
    expect_status(&r, 2);
    expect_contains(r.err, "/nonexistent/drover.yaml");
    drv_test_cli_fini(&r);
}

/* ------------------------------------------------------- help and usage */

static void
test_cli_help(void **st)
{
    static const char *const cmds[] = {
        "enqueue", "stats", "dead", "pause", "resume", "workers", "result",
        "check-config",
    };
    char want[64];
    struct drv_test_cli r;
    size_t i;

    (void)st;
    RUN(&r, "--help");
    expect_status(&r, 0);
    expect_contains(r.out, "usage: drover [-c FILE] [--redis URL] COMMAND");
    for (i = 0; i < DRV_ARRAY_LEN(cmds); i++)
        expect_contains(r.out, cmds[i]);
    assert_string_equal(r.err, "");
    drv_test_cli_fini(&r);
    for (i = 0; i < DRV_ARRAY_LEN(cmds); i++) {
        RUN(&r, cmds[i], "--help");
        expect_status(&r, 0);
        snprintf(want, sizeof want, "usage: drover %s", cmds[i]);
        expect_contains(r.out, want);
        drv_test_cli_fini(&r);
    }
    RUN(&r, "help", "dead");
    expect_status(&r, 0);
    expect_contains(r.out, "drover dead retry QUEUE (ID|--all)");
    drv_test_cli_fini(&r);
    RUN(&r, "dead", "list", "-h");
    expect_status(&r, 0);
    drv_test_cli_fini(&r);
}

static void
test_cli_bad_usage(void **st)
{
    /* each must exit 2 with a usage line, and touch nothing: the URL
     * points nowhere, so contacting Redis would exit 1 instead */
    static const char *const cases[][8] = {
        {NULL},
        {"frobnicate", NULL},
        {"--bogus", "stats", NULL},
        {"-c", NULL},
        {"enqueue", NULL},
        {"enqueue", "q", NULL},
        {"enqueue", "q", "job", "noequals", NULL},
        {"enqueue", "q", "job", "=value", NULL},
        {"enqueue", "q", "a=1", NULL},
        {"enqueue", "q", "job", "job=x", NULL},
        {"enqueue", "q", "job", "--delay", "10x", NULL},
        {"enqueue", "q", "job", "--delay", NULL},
        {"enqueue", "q", "job", "--bogus", NULL},
        {"enqueue", "{q}", "job", NULL},
        {"enqueue", "", "job", NULL},
        {"stats", "--bogus", NULL},
        {"stats", "b{a}d", NULL},
        {"dead", NULL},
        {"dead", "bury", "q", NULL},
        {"dead", "list", NULL},
        {"dead", "list", "q", "extra", NULL},
        {"dead", "list", "q", "--count", "0", NULL},
        {"dead", "list", "q", "--count", "x", NULL},
        {"dead", "retry", "q", NULL},
        {"dead", "retry", "q", "id1", "--all", NULL},
        {"dead", "retry", NULL},
        {"dead", "purge", NULL},
        {"dead", "purge", "q", "x", NULL},
        {"pause", NULL},
        {"pause", "a", "b", NULL},
        {"resume", NULL},
        {"workers", "x", NULL},
        {"result", "q", NULL},
        {"result", "q", "id", "x", NULL},
        /* an empty ID, in every command that takes one */
        {"result", "q", "", NULL},
        {"cancel", "q", "", NULL},
        {"wait", "q", "", NULL},
        {"pipeline", "q", "", NULL},
        {"dead", "retry", "q", "", NULL},
        {"check-config", NULL},
        {"check-config", "a", "b", NULL},
        {"help", "nosuch", NULL},
    };
    const char *args[12];
    struct drv_test_cli r;
    size_t i, j;

    (void)st;
    for (i = 0; i < DRV_ARRAY_LEN(cases); i++) {
        args[0] = "--redis";
        args[1] = "redis://127.0.0.1:1/0";
        for (j = 0; cases[i][j] != NULL; j++)
            args[j + 2] = cases[i][j];
        args[j + 2] = NULL;
        run_argv(&r, NULL, args);
        if (r.status != 2 || strstr(r.err, "usage: drover") == NULL)
            fail_msg("case %zu (%s %s): exit %d, want 2 with usage\n"
                     "stderr: %s", i, cases[i][0] ? cases[i][0] : "",
                     cases[i][0] && cases[i][1] ? cases[i][1] : "",
                     r.status, r.err);
        assert_string_equal(r.out, "");
        drv_test_cli_fini(&r);
    }
    /* a --redis that is not a Redis URL is bad usage too */
    RUN(&r, "--redis", "http://127.0.0.1/", "stats");
    expect_status(&r, 2);
    drv_test_cli_fini(&r);
}

/* ------------------------------------------------------ the connection */

static void
test_cli_unreachable(void **st)
{
    struct drv_test_cli r;

    (void)st;
    RUN(&r, "--redis", "redis://someone:hunter2@127.0.0.1:1/0", "stats");
    expect_status(&r, 1);
    expect_contains(r.err, "redis://someone:***@127.0.0.1:1/0");
    assert_null(strstr(r.err, "hunter2"));
    assert_string_equal(r.out, "");
    drv_test_cli_fini(&r);
    RUN(&r, "--redis", "redis://127.0.0.1:1/0", "enqueue", "q", "j");
    expect_status(&r, 1);
    expect_contains(r.err, "127.0.0.1:1");
    drv_test_cli_fini(&r);
    RUN(&r, "--redis", "unix:///nonexistent/redis.sock", "workers");
    expect_status(&r, 1);
    expect_contains(r.err, "unix:///nonexistent/redis.sock");
    drv_test_cli_fini(&r);
}

static void
test_cli_auth_select(void **st)
{
    struct state *s = *st;
    char url[512];
    const char *args[8];
    redisReply *rep = NULL;
    struct drv_test_cli r;

    freeReplyObject(cmd(s, "ACL SETUSER clitest on >s3cret ~* &* +@all"));

    /* user and password in the URL, db 3 */
    snprintf(url, sizeof url, "redis://clitest:s3cret@127.0.0.1:%d/3",
             drv_test_srv.port);
    RUN(&r, "--redis", url, "enqueue", "default", "echo", "--id", "in3");
    expect_status(&r, 0);
    drv_test_cli_fini(&r);
    assert_int_equal(int_of(s, "EXISTS %s", "drover:{default}:jobs"), 0);
    freeReplyObject(cmd(s, "SELECT 3"));
    assert_int_equal(int_of(s, "XLEN %s", "drover:{default}:jobs"), 1);
    freeReplyObject(cmd(s, "SELECT 0"));

    /* the password from $DROVER_REDIS_PASSWORD */
    snprintf(url, sizeof url, "redis://clitest@127.0.0.1:%d/0",
             drv_test_srv.port);
    args[0] = "--redis";
    args[1] = url;
    args[2] = "pause";
    args[3] = "q";
    args[4] = NULL;
    run_argv(&r, "DROVER_REDIS_PASSWORD=s3cret", args);
    expect_status(&r, 0);
    drv_test_cli_fini(&r);
    assert_int_equal(int_of(s, "EXISTS %s", "drover:{q}:paused"), 1);

    /* a wrong password: exit 1, the password not shown */
    snprintf(url, sizeof url, "redis://clitest:wrong@127.0.0.1:%d/0",
             drv_test_srv.port);
    RUN(&r, "--redis", url, "resume", "q");
    expect_status(&r, 1);
    expect_contains(r.err, "AUTH");
    assert_null(strstr(r.err, "wrong@"));
    drv_test_cli_fini(&r);
    assert_int_equal(int_of(s, "EXISTS %s", "drover:{q}:paused"), 1);

    rep = cmd(s, "ACL DELUSER clitest");
    freeReplyObject(rep);
}

static void
test_cli_unix_socket(void **st)
{
    struct state *s = *st;
    struct drv_test_cli r;

    if (drv_test_srv.external)
        skip();
    RUN(&r, "--redis", drv_test_srv.sock_url, "pause", "viasock");
    expect_status(&r, 0);
    drv_test_cli_fini(&r);
    assert_int_equal(int_of(s, "EXISTS %s", "drover:{viasock}:paused"), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cli_enqueue_fields_literal,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_enqueue_id, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cli_enqueue_delay, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_cli_enqueue_delay_same_id_two_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_enqueue_pipeline, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cli_enqueue_checks_config,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_dead_list, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cli_dead_retry, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cli_dead_purge_older_than,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_dead_purge, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cli_pause_resume, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cli_workers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_result, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli_check_config, setup,
                                        teardown),
        cmocka_unit_test(test_cli_help),
        cmocka_unit_test(test_cli_bad_usage),
        cmocka_unit_test(test_cli_unreachable),
        cmocka_unit_test_setup_teardown(test_cli_auth_select, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cli_unix_socket, setup,
                                        teardown),
    };

    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
