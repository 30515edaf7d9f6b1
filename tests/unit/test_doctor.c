/*
 * test_doctor.c -- the ACL rule and the checks of `drover doctor`, fed
 * with replies made by hiredis's own reader from RESP text (what Redis
 * says is tested against a real server in tests/integration/test_acl.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include "harness.h"
#include "drover/buf.h"
#include "drover/doctor.h"
#include "drover/queue.h"

/* --------------------------------------------------------------- helpers */

/* One reply from RESP text (freeReplyObject it). */
static redisReply *
resp(const char *text)
{
    redisReader *rd = redisReaderCreate();
    void *r = NULL;

    assert_non_null(rd);
    assert_int_equal(redisReaderFeed(rd, text, strlen(text)), REDIS_OK);
    assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
    assert_non_null(r);
    redisReaderFree(rd);
    return r;
}

/* A bulk string reply holding s. */
static char *
bulk(const char *s)
{
    size_t n = strlen(s) + 32;
    char *t = malloc(n);

    assert_non_null(t);
    snprintf(t, n, "$%zu\r\n%s\r\n", strlen(s), s);
    return t;
}

static const struct drv_queue_doctor_check *
check_named(const char *name)
{
    size_t i;

    for (i = 0; drv_queue_doctor_checks[i].name != NULL; i++)
        if (strcmp(drv_queue_doctor_checks[i].name, name) == 0)
            return &drv_queue_doctor_checks[i];
    fail_msg("no check %s", name);
    return NULL;
}

static const char *const queues[] = {"default", "low"};

static void
opts_init(struct drv_queue_doctor_opts *o, size_t nqueues)
{
    memset(o, 0, sizeof *o);
    o->prefix = "drover";
    o->queues = queues;
    o->nqueues = nqueues;
    o->acl_user = "drover";
    o->dead_max = 10000;
    o->skew_max_ms = 2000;
}

/*
 * Run check name on the replies texts[0..n) (RESP each) into rep (fresh),
 * after checking that its builder asks for exactly n commands.
 */
static void
run_check(const char *name, const char *const *texts, size_t n,
          const struct drv_queue_doctor_opts *o,
          struct drv_queue_doctor_report *rep)
{
    const struct drv_queue_doctor_check *ck = check_named(name);
    struct drv_queue_cmds c;
    redisReply **r = calloc(n + 1, sizeof *r);
    size_t i;

    assert_non_null(r);
    drv_queue_cmds_init(&c);
    assert_int_equal(drv_queue_doctor_check_build(ck, &c, o), n);
    assert_int_equal(c.n, n);
    drv_queue_cmds_fini(&c);
    for (i = 0; i < n; i++)
        r[i] = resp(texts[i]);
    drv_queue_doctor_report_init(rep);
    drv_queue_doctor_check_judge(ck, r, n, o, rep);
    for (i = 0; i < n; i++)
        freeReplyObject(r[i]);
    free(r);
}

static void
expect_text(const struct drv_queue_doctor_report *rep, const char *part)
{
    if (rep->text.len == 0 || strstr(rep->text.data, part) == NULL)
        fail_msg("no \"%s\" in the report:\n%.*s", part, (int)rep->text.len,
                 rep->text.data ? rep->text.data : "");
}

static void
expect_counts(const struct drv_queue_doctor_report *rep, int problems,
              int unchecked)
{
    if (rep->problems != problems || rep->unchecked != unchecked)
        fail_msg("want %d problems, %d unchecked; got %d, %d:\n%.*s",
                 problems, unchecked, rep->problems, rep->unchecked,
                 (int)rep->text.len, rep->text.data ? rep->text.data : "");
}

/* ------------------------------------------------------------------- ACL */

static void
test_doctor_acl_rule(void **st)
{
    struct drv_buf b;
    char word[64];
    size_t i, j;

    drv_buf_init(&b);
    drv_queue_acl_rule(&b, "drover", "PASSWORD", "app");
    assert_true(strncmp(b.data, "ACL SETUSER drover on >PASSWORD ~app:* "
                        "-@all +", 38) == 0);
    for (i = 0; i < drv_queue_acl_ncmds; i++) {
        /* each rule once, nothing else granted */
        snprintf(word, sizeof word, " %s", drv_queue_acl_cmds[i].rule);
        assert_non_null(strstr(b.data, word));
        assert_true(drv_queue_acl_cmds[i].rule[0] == '+');
        assert_null(strchr(drv_queue_acl_cmds[i].rule, '@'));
        assert_null(strchr(drv_queue_acl_cmds[i].rule, ' '));
        for (j = i + 1; j < drv_queue_acl_ncmds; j++)
            assert_string_not_equal(drv_queue_acl_cmds[i].rule,
                                    drv_queue_acl_cmds[j].rule);
    }
    assert_null(strstr(b.data, "+@"));
    drv_buf_fini(&b);
}

/* ACL DRYRUN drover CMD ARGS..., KEY replaced by the first queue's key */
static void
test_doctor_acl_build(void **st)
{
    struct drv_queue_doctor_opts o;
    struct drv_queue_cmds c;
    size_t i;
    int j, keyed = 0;

    opts_init(&o, 2);
    drv_queue_cmds_init(&c);
    assert_int_equal(drv_queue_doctor_check_build(check_named("acl"), &c, &o),
                     drv_queue_acl_ncmds);
    for (i = 0; i < c.n; i++) {
        assert_true(c.cmd[i].argc >= 4);
        assert_string_equal(c.cmd[i].argv[0], "ACL");
        assert_string_equal(c.cmd[i].argv[1], "DRYRUN");
        assert_string_equal(c.cmd[i].argv[2], "drover");
        for (j = 3; j < c.cmd[i].argc; j++) {
            assert_string_not_equal(c.cmd[i].argv[j], "KEY");
            if (strcmp(c.cmd[i].argv[j], "drover:{default}:jobs") == 0)
                keyed++;
        }
    }
    assert_true(keyed > 20);
    drv_queue_cmds_fini(&c);
}

static void
test_doctor_acl_judge(void **st)
{
    struct drv_queue_doctor_opts o;
    struct drv_queue_doctor_report rep;
    const char **t = calloc(drv_queue_acl_ncmds, sizeof *t);
    char *denied = bulk("This user has no permissions to run the 'hset' "
                        "command");
    char *nokey = bulk("This user has no permissions to access the "
                       "'drover:{default}:jobs' key");
    size_t i, hset = 0;

    opts_init(&o, 1);
    for (i = 0; i < drv_queue_acl_ncmds; i++) {
        t[i] = "+OK\r\n";
        if (strcmp(drv_queue_acl_cmds[i].rule, "+hset") == 0)
            hset = i;
    }
    run_check("acl", t, drv_queue_acl_ncmds, &o, &rep);
    expect_counts(&rep, 0, 0);
    expect_text(&rep, "ok: ACL user drover may run the");
    drv_queue_doctor_report_fini(&rep);

    /* one command missing: named, with the rule that grants it */
    t[hset] = denied;
    run_check("acl", t, drv_queue_acl_ncmds, &o, &rep);
    expect_counts(&rep, 1, 0);
    expect_text(&rep, "problem: ACL user drover may not run hset");
    expect_text(&rep, "ACL SETUSER drover +hset\n");
    drv_queue_doctor_report_fini(&rep);

    /* the keys refused */
    t[hset] = nokey;
    run_check("acl", t, drv_queue_acl_ncmds, &o, &rep);
    expect_counts(&rep, 1, 0);
    expect_text(&rep, "may not access the key drover:{default}:jobs");
    expect_text(&rep, "ACL SETUSER drover ~drover:*");
    drv_queue_doctor_report_fini(&rep);

    /* ACL DRYRUN refused to this connection: unchecked, no problem */
    for (i = 0; i < drv_queue_acl_ncmds; i++)
        t[i] = "-NOPERM this user has no permissions to run the "
               "'acl|dryrun' command\r\n";
    run_check("acl", t, drv_queue_acl_ncmds, &o, &rep);
    expect_counts(&rep, 0, 1);
    expect_text(&rep, "unchecked: the permissions of ACL user drover");
    expect_text(&rep, "--user drover");
    drv_queue_doctor_report_fini(&rep);

    /* Redis 6.2: no ACL DRYRUN */
    for (i = 0; i < drv_queue_acl_ncmds; i++)
        t[i] = "-ERR Unknown subcommand or wrong number of arguments for "
               "'DRYRUN'. Try ACL HELP.\r\n";
    run_check("acl", t, drv_queue_acl_ncmds, &o, &rep);
    expect_counts(&rep, 0, 1);
    expect_text(&rep, "needs Redis 7.0");
    drv_queue_doctor_report_fini(&rep);

    /* no such user */
    for (i = 0; i < drv_queue_acl_ncmds; i++)
        t[i] = "-ERR User 'drover' not found\r\n";
    run_check("acl", t, drv_queue_acl_ncmds, &o, &rep);
    expect_counts(&rep, 1, 0);
    expect_text(&rep, "problem: ACL user drover does not exist");
    drv_queue_doctor_report_fini(&rep);

    free(denied);
    free(nokey);
    free(t);
}

/* ------------------------------------------------------ INFO-based checks */

static void
test_doctor_info_checks(void **st)
{
    struct drv_queue_doctor_opts o;
    struct drv_queue_doctor_report rep;
    const char *t[1];
    char *r;

    opts_init(&o, 1);
    r = bulk("# Server\r\nredis_git_sha1:00000000\r\nredis_version:7.0.15"
             "\r\nredis_mode:standalone\r\n");
    t[0] = r;
    run_check("version", t, 1, &o, &rep);
    expect_counts(&rep, 0, 0);
    expect_text(&rep, "ok: Redis 7.0.15 (drover needs 6.2 or newer)");
    drv_queue_doctor_report_fini(&rep);
    free(r);

    r = bulk("# Server\r\nredis_version:6.0.9\r\n");
    t[0] = r;
    run_check("version", t, 1, &o, &rep);
    expect_counts(&rep, 1, 0);
    expect_text(&rep, "problem: Redis 6.0.9 is too old: drover needs 6.2");
    drv_queue_doctor_report_fini(&rep);
    free(r);

    /* INFO refused: unchecked, with Redis's words */
    t[0] = "-NOPERM this user has no permissions to run the 'info' "
           "command\r\n";
    run_check("version", t, 1, &o, &rep);
    expect_counts(&rep, 0, 1);
    expect_text(&rep, "unchecked: the Redis version: INFO server refused "
                "(NOPERM");
    drv_queue_doctor_report_fini(&rep);

    r = bulk("# Memory\r\nmaxmemory:104857600\r\nmaxmemory_human:100.00M\r\n"
             "maxmemory_policy:allkeys-lru\r\n");
    t[0] = r;
    run_check("eviction", t, 1, &o, &rep);
    expect_counts(&rep, 1, 0);
    expect_text(&rep, "problem: maxmemory-policy allkeys-lru (maxmemory "
                "100.00M)");
    expect_text(&rep, "set maxmemory-policy noeviction");
    drv_queue_doctor_report_fini(&rep);
    free(r);

    r = bulk("# Memory\r\nmaxmemory_policy:noeviction\r\n");
    t[0] = r;
    run_check("eviction", t, 1, &o, &rep);
    expect_counts(&rep, 0, 0);
    expect_text(&rep, "ok: maxmemory-policy noeviction");
    drv_queue_doctor_report_fini(&rep);
    free(r);

    /* a managed Redis hiding the field */
    r = bulk("# Memory\r\nused_memory:1\r\n");
    t[0] = r;
    run_check("eviction", t, 1, &o, &rep);
    expect_counts(&rep, 0, 1);
    expect_text(&rep, "no maxmemory_policy field");
    drv_queue_doctor_report_fini(&rep);
    free(r);

    r = bulk("# Persistence\r\nloading:0\r\naof_enabled:0\r\n");
    t[0] = r;
    run_check("persistence", t, 1, &o, &rep);
    expect_counts(&rep, 1, 0);
    expect_text(&rep, "problem: appendonly no: a restart loses jobs acked "
                "as enqueued since the last RDB save");
    drv_queue_doctor_report_fini(&rep);
    free(r);

    r = bulk("# Persistence\r\naof_enabled:1\r\n");
    t[0] = r;
    run_check("persistence", t, 1, &o, &rep);
    expect_counts(&rep, 0, 0);
    expect_text(&rep, "ok: appendonly yes");
    drv_queue_doctor_report_fini(&rep);
    free(r);
}

/* ---------------------------------------------------------------- queues */

/* XINFO GROUPS with one group named name */
static char *
groups(const char *name)
{
    char *t = malloc(256);

    assert_non_null(t);
    snprintf(t, 256, "*1\r\n*4\r\n$4\r\nname\r\n$%zu\r\n%s\r\n"
             "$9\r\nconsumers\r\n:1\r\n", strlen(name), name);
    return t;
}

static void
test_doctor_queues(void **st)
{
    struct drv_queue_doctor_opts o;
    struct drv_queue_doctor_report rep;
    char *g = groups("drover"), *other = groups("someone");
    /* TYPE jobs, delayed, dead, stats, paused; XINFO GROUPS; XLEN dead */
    const char *good[7] = {"+stream\r\n", "+zset\r\n", "+stream\r\n",
                           "+hash\r\n", "+none\r\n", g, ":5\r\n"};
    const char *t[14];

    opts_init(&o, 1);
    run_check("queues", good, 7, &o, &rep);
    expect_counts(&rep, 0, 0);
    expect_text(&rep, "ok: queue default: keys of the right types, "
                "consumer group drover, dead 5/10000 kept\n");
    drv_queue_doctor_report_fini(&rep);

    /* nothing there yet */
    {
        const char *none[7] = {"+none\r\n", "+none\r\n", "+none\r\n",
                               "+none\r\n", "+none\r\n",
                               "-ERR no such key\r\n", ":0\r\n"};

        run_check("queues", none, 7, &o, &rep);
        expect_counts(&rep, 0, 0);
        expect_text(&rep, "ok: queue default: no keys yet, dead 0/10000");
        drv_queue_doctor_report_fini(&rep);
    }

    /* two queues: a wrong type in the second, named; no group; too many
     * dead entries */
    opts_init(&o, 2);
    memcpy(t, good, sizeof good);
    memcpy(t + 7, good, sizeof good);
    t[8] = "+string\r\n";
    run_check("queues", t, 14, &o, &rep);
    expect_counts(&rep, 1, 0);
    expect_text(&rep, "ok: queue default:");
    expect_text(&rep, "problem: queue low: key drover:{low}:delayed is a "
                "string, not a zset (WRONGTYPE)");
    drv_queue_doctor_report_fini(&rep);

    t[8] = "+zset\r\n";
    t[12] = other;
    t[13] = ":20000\r\n";
    run_check("queues", t, 14, &o, &rep);
    expect_counts(&rep, 2, 0);
    expect_text(&rep, "problem: queue low: the stream drover:{low}:jobs has "
                "no consumer group drover");
    expect_text(&rep, "problem: queue low: 20000 dead entries kept, more "
                "than worker.dead_max 10000");
    drv_queue_doctor_report_fini(&rep);

    /* within the slack of the approximate trims: fine */
    t[12] = g;
    t[13] = ":10050\r\n";
    run_check("queues", t, 14, &o, &rep);
    expect_counts(&rep, 0, 0);
    drv_queue_doctor_report_fini(&rep);

    free(g);
    free(other);
}

/* --------------------------------------------------------------- workers */

/* HGETALL P:workers with one worker beating at beat_ms */
static char *
registry(long long beat_ms)
{
    char line[256], *t = malloc(512);

    assert_non_null(t);
    snprintf(line, sizeof line, "host=box pid=42 started=1 queues=default "
             "busy=0 beat=%lld", beat_ms);
    snprintf(t, 512, "*2\r\n$2\r\nw1\r\n$%zu\r\n%s\r\n", strlen(line), line);
    return t;
}

static void
test_doctor_workers(void **st)
{
    struct drv_queue_doctor_opts o;
    struct drv_queue_doctor_report rep;
    /* Redis's TIME: 1700000000.500000 -> 1700000000500 ms */
    const char *now = "*2\r\n$10\r\n1700000000\r\n$6\r\n500000\r\n";
    const long long now_ms = 1700000000500LL;
    const char *t[2] = {now, "*0\r\n"};
    char *r;

    opts_init(&o, 1);
    run_check("workers", t, 2, &o, &rep);
    expect_counts(&rep, 0, 0);
    expect_text(&rep, "ok: no workers registered");
    drv_queue_doctor_report_fini(&rep);

    r = registry(now_ms - 3000);
    t[1] = r;
    run_check("workers", t, 2, &o, &rep);
    expect_counts(&rep, 0, 0);
    expect_text(&rep, "ok: 1 worker beating, clock within 2.0 s");
    drv_queue_doctor_report_fini(&rep);
    free(r);

    /* ahead by 3.5 s */
    r = registry(now_ms + 3500);
    t[1] = r;
    run_check("workers", t, 2, &o, &rep);
    expect_counts(&rep, 1, 0);
    expect_text(&rep, "problem: worker w1 (host box, pid 42): its clock is "
                "3.5 s ahead of Redis's");
    drv_queue_doctor_report_fini(&rep);
    free(r);

    /* a beat 20 s old: behind, or stuck */
    r = registry(now_ms - 20000);
    t[1] = r;
    run_check("workers", t, 2, &o, &rep);
    expect_counts(&rep, 1, 0);
    expect_text(&rep, "its clock is 15.0 to 20.0 s behind Redis's");
    drv_queue_doctor_report_fini(&rep);
    free(r);

    r = registry(now_ms - 3600 * 1000);
    t[1] = r;
    run_check("workers", t, 2, &o, &rep);
    expect_counts(&rep, 1, 0);
    expect_text(&rep, "problem: worker w1 (host box, pid 42) is stale: its "
                "last beat is 3600 s old");
    drv_queue_doctor_report_fini(&rep);
    free(r);

    /* the registry of another type; TIME refused */
    t[1] = "-WRONGTYPE Operation against a key holding the wrong kind of "
           "value\r\n";
    run_check("workers", t, 2, &o, &rep);
    expect_counts(&rep, 1, 0);
    expect_text(&rep, "problem: the worker registry:");
    drv_queue_doctor_report_fini(&rep);
    t[0] = "-NOPERM this user has no permissions to run the 'time' "
           "command\r\n";
    run_check("workers", t, 2, &o, &rep);
    expect_counts(&rep, 0, 1);
    drv_queue_doctor_report_fini(&rep);
}

/* ------------------------------------------------------------ the table */

/* ------------------------------------------------- sentinels and TLS */

/* A sentinel at addr parsed from RESP texts of its two replies. */
static void
sentinel_from(struct drv_queue_doctor_sentinel *s, const char *addr,
              const char *addr_text, const char *master_text)
{
    redisReply *a = resp(addr_text), *m = resp(master_text);

    memset(s, 0, sizeof *s);
    s->addr = addr;
    drv_queue_doctor_sentinel_parse(s, a, m);
    freeReplyObject(a);
    freeReplyObject(m);
}

#define ADDR_P "*2\r\n$8\r\n10.0.0.5\r\n$4\r\n6379\r\n"
#define ADDR_R "*2\r\n$8\r\n10.0.0.6\r\n$4\r\n6379\r\n"
/* SENTINEL master: flags, num-other-sentinels, quorum (and a field
 * the check ignores) */
#define MASTER(flags, others, quorum)                                    \
    "*8\r\n$5\r\nflags\r\n$" flags "\r\n"                              \
    "$19\r\nnum-other-sentinels\r\n$1\r\n" others "\r\n"                 \
    "$6\r\nquorum\r\n$1\r\n" quorum "\r\n"                               \
    "$4\r\nname\r\n$8\r\nmymaster\r\n"

static void
judge_sentinels(const struct drv_queue_doctor_sentinel *s, size_t n,
                const char *primary, struct drv_queue_doctor_report *rep)
{
    struct drv_queue_doctor_opts o;

    opts_init(&o, 1);
    o.sentinel_master = "mymaster";
    o.sentinels = s;
    o.nsentinels = n;
    o.primary = primary;
    run_check("sentinels", NULL, 0, &o, rep);
}

static void
test_doctor_sentinels(void **st)
{
    struct drv_queue_doctor_sentinel s[3];
    struct drv_queue_doctor_report rep;

    /* the replies read */
    sentinel_from(&s[0], "a:26379", ADDR_P, MASTER("6\r\nmaster", "2", "2"));
    assert_string_equal(s[0].primary, "10.0.0.5:6379");
    assert_int_equal(s[0].known, 3);
    assert_int_equal(s[0].quorum, 2);
    assert_string_equal(s[0].flags, "master");
    assert_string_equal(s[0].error, "");
    sentinel_from(&s[1], "b:26379", "$-1\r\n",
                  MASTER("6\r\nmaster", "2", "2"));
    assert_non_null(strstr(s[1].error, "monitors no master of that name"));
    sentinel_from(&s[1], "b:26379", "-NOPERM no\r\n",
                  MASTER("6\r\nmaster", "2", "2"));
    assert_non_null(strstr(s[1].error, "NOPERM no"));
    sentinel_from(&s[1], "b:26379", ADDR_P, "-ERR No such master\r\n");
    assert_non_null(strstr(s[1].error, "SENTINEL master: ERR No such"));

    /* all agree: one ok line */
    sentinel_from(&s[1], "b:26379", ADDR_P, MASTER("6\r\nmaster", "2", "2"));
    sentinel_from(&s[2], "c:26379", ADDR_P, MASTER("6\r\nmaster", "2", "2"));
    judge_sentinels(s, 3, "10.0.0.5:6379", &rep);
    expect_counts(&rep, 0, 0);
    expect_text(&rep, "ok: the 3 sentinels of mymaster answer, each names "
                "10.0.0.5:6379 as the primary and sees 3 sentinels "
                "(quorum 2)");
    drv_queue_doctor_report_fini(&rep);

    /* one unreachable, one naming another node, one below its quorum
     * and seeing the primary down */
    memset(&s[0], 0, sizeof s[0]);
    s[0].addr = "a:26379";
    snprintf(s[0].error, sizeof s[0].error, "unreachable: refused");
    sentinel_from(&s[1], "b:26379", ADDR_R, MASTER("6\r\nmaster", "2", "2"));
    sentinel_from(&s[2], "c:26379", ADDR_P,
                  MASTER("13\r\nmaster,s_down", "0", "2"));
    judge_sentinels(s, 3, "10.0.0.5:6379", &rep);
    expect_counts(&rep, 4, 0);
    expect_text(&rep, "problem: sentinel a:26379: unreachable: refused");
    expect_text(&rep, "problem: sentinel b:26379 names 10.0.0.6:6379 as the "
                "primary of mymaster, not 10.0.0.5:6379");
    expect_text(&rep, "problem: sentinel c:26379 sees 1 sentinel (itself "
                "included), fewer than its quorum 2");
    expect_text(&rep, "problem: sentinel c:26379 sees the primary "
                "10.0.0.5:6379 as down (flags master,s_down)");
    drv_queue_doctor_report_fini(&rep);

    /* no connection to compare with: the first answer is the reference;
     * only one of three answering is no majority */
    s[2] = s[0];
    s[2].addr = "c:26379";
    judge_sentinels(s, 3, NULL, &rep);
    expect_counts(&rep, 3, 0);
    expect_text(&rep,
                "only 1 of the 3 sentinels of mymaster name a primary");
    drv_queue_doctor_report_fini(&rep);

    /* no sentinels configured: no line */
    judge_sentinels(s, 0, NULL, &rep);
    assert_int_equal(rep.text.len, 0);
    drv_queue_doctor_report_fini(&rep);
    (void)st;
}

static void
judge_tls(int tls, int64_t not_after, struct drv_queue_doctor_report *rep)
{
    struct drv_queue_doctor_opts o;

    opts_init(&o, 1);
    o.tls = tls;
    o.cert_not_after = not_after;
    o.now_s = 1800000000;        /* 2027-01-15 08:00:00 UTC */
    o.cert_warn_s = DRV_QUEUE_DOCTOR_CERT_WARN_S;
    run_check("tls", NULL, 0, &o, rep);
}

static void
test_doctor_tls(void **st)
{
    struct drv_queue_doctor_report rep;

    judge_tls(1, 1800000000 + 90 * 86400 + 5, &rep);
    expect_counts(&rep, 0, 0);
    expect_text(&rep, "ok: the server certificate is valid until 2027-04-15 "
                "08:00:05 UTC (90 days)");
    drv_queue_doctor_report_fini(&rep);

    judge_tls(1, 1800000000 + 3 * 86400, &rep);
    expect_counts(&rep, 1, 0);
    expect_text(&rep, "problem: the server certificate expires on "
                "2027-01-18 08:00:00 UTC, in 3.0 days (less than 14)");
    drv_queue_doctor_report_fini(&rep);

    /* the boundary: exactly 14 days left is fine, a second less is not */
    judge_tls(1, 1800000000 + 14 * 86400, &rep);
    expect_counts(&rep, 0, 0);
    drv_queue_doctor_report_fini(&rep);
    judge_tls(1, 1800000000 + 14 * 86400 - 1, &rep);
    expect_counts(&rep, 1, 0);
    drv_queue_doctor_report_fini(&rep);

    judge_tls(1, 1800000000 - 86400 / 2, &rep);
    expect_counts(&rep, 1, 0);
    expect_text(&rep, "problem: the server certificate expired on "
                "2027-01-14 20:00:00 UTC (0.5 days ago)");
    drv_queue_doctor_report_fini(&rep);

    judge_tls(1, -1, &rep);
    expect_counts(&rep, 0, 1);
    expect_text(&rep, "unchecked: the server certificate's expiry");
    drv_queue_doctor_report_fini(&rep);

    /* a plain connection: no line */
    judge_tls(0, -1, &rep);
    assert_int_equal(rep.text.len, 0);
    drv_queue_doctor_report_fini(&rep);
    (void)st;
}

/* build and judge over the whole table: each check gets its own replies */
static void
test_doctor_table(void **st)
{
    struct drv_queue_doctor_opts o;
    struct drv_queue_doctor_report rep;
    struct drv_queue_cmds c;
    size_t *counts = calloc(drv_queue_doctor_nchecks(), sizeof *counts);
    redisReply **r;
    size_t i;

    opts_init(&o, 2);
    drv_queue_cmds_init(&c);
    drv_queue_doctor_build(&c, &o, counts);
    /* INFO x3, ACL, 7 per queue, TIME + HGETALL */
    assert_int_equal(c.n, 3 + drv_queue_acl_ncmds + 14 + 2);
    r = calloc(c.n, sizeof *r);
    for (i = 0; i < c.n; i++)
        r[i] = resp("-NOPERM refused\r\n");
    drv_queue_doctor_report_init(&rep);
    drv_queue_doctor_judge(r, c.n, &o, counts, &rep);
    /* everything refused: every check says it could not tell */
    assert_int_equal(rep.problems, 0);
    assert_true(rep.unchecked >= 6);
    drv_queue_doctor_report_fini(&rep);
    for (i = 0; i < c.n; i++)
        freeReplyObject(r[i]);
    free(r);
    drv_queue_cmds_fini(&c);
    free(counts);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doctor_acl_rule),
        cmocka_unit_test(test_doctor_acl_build),
        cmocka_unit_test(test_doctor_acl_judge),
        cmocka_unit_test(test_doctor_info_checks),
        cmocka_unit_test(test_doctor_queues),
        cmocka_unit_test(test_doctor_workers),
        cmocka_unit_test(test_doctor_sentinels),
        cmocka_unit_test(test_doctor_tls),
        cmocka_unit_test(test_doctor_table),
    };

    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, NULL, NULL);
}
