/*
 * sentinel.c -- the Sentinel deployment of sentinel.h: two data nodes and
 * three sentinels, all redis-server processes started with
 * drv_test_spawn (so the watchdog kills them if a test hangs).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sentinel.h"
#include "drover/redis_sentinel.h"

/* Field name of INFO replication of port as text into out ("" if none). */
static void
info_field(int port, const char *name, char *out, size_t n)
{
    redisReply *r = drv_test_ask(port, "INFO replication");
    const char *p = NULL;
    size_t len = strlen(name);

    out[0] = '\0';
    if (r == NULL)
        return;
    for (p = r->type == REDIS_REPLY_STRING ? r->str : NULL;
         p != NULL && *p != '\0'; p = strchr(p, '\n')) {
        if (*p == '\n')
            p++;
        if (strncmp(p, name, len) == 0 && p[len] == ':') {
            snprintf(out, n, "%.*s", (int)strcspn(p + len + 1, "\r\n"),
                     p + len + 1);
            break;
        }
    }
    freeReplyObject(r);
}

/* ROLE of the node on port is "master". */
static int
is_master(int port)
{
    redisReply *r = drv_test_ask(port, "ROLE");
    int m = drv_redis_sentinel_parse_role(r, NULL) == 1;

    if (r != NULL)
        freeReplyObject(r);
    return m;
}

/* Write text to dir/name; asserts. */
static void
write_conf(const char *dir, const char *name, const char *text)
{
    char path[512];

    snprintf(path, sizeof path, "%s/%s", dir, name);
    assert_int_equal(drv_test_write_file(path, text), 0);
}

static void
start_node(struct drv_test_sentinels *s, int i)
{
    char dir[400], conf[512], log[512], text[1024], replica[64] = "";
    const char *argv[3] = {"redis-server", conf, NULL};

    snprintf(dir, sizeof dir, "%s/node%d", s->dir, i);
    assert_int_equal(mkdir(dir, 0700), 0);
    if (i > 0)
        snprintf(replica, sizeof replica, "replicaof 127.0.0.1 %d\n",
                 s->node_port[0]);
    snprintf(text, sizeof text,
             "port %d\nbind 127.0.0.1\nsave \"\"\nappendonly no\n"
             "dir %s\ndaemonize no\nloglevel notice\nprotected-mode yes\n"
             "repl-diskless-sync yes\nrepl-diskless-sync-delay 0\n%s",
             s->node_port[i], dir, replica);
    write_conf(dir, "redis.conf", text);
    snprintf(conf, sizeof conf, "%s/redis.conf", dir);
    snprintf(log, sizeof log, "%s/node%d.log", s->dir, i);
    assert_int_equal(drv_test_spawn(&s->node[i], argv, log, NULL), 0);
    wait_until(drv_test_pings(s->node_port[i]),
               "data node %d to answer (see %s)", i, log);
}

static void
start_sentinel(struct drv_test_sentinels *s, int i)
{
    char dir[400], conf[512], log[512], text[1024];
    const char *argv[4] = {"redis-server", conf, "--sentinel", NULL};
    redisReply *r = NULL;

    snprintf(dir, sizeof dir, "%s/sentinel%d", s->dir, i);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(text, sizeof text,
             "port %d\nbind 127.0.0.1\ndaemonize no\ndir %s\n"
             "sentinel monitor %s 127.0.0.1 %d 2\n"
             "sentinel down-after-milliseconds %s 1000\n"
             "sentinel failover-timeout %s 10000\n",
             s->port[i], dir, DRV_TEST_SENTINEL_MASTER, s->node_port[0],
             DRV_TEST_SENTINEL_MASTER, DRV_TEST_SENTINEL_MASTER);
    write_conf(dir, "sentinel.conf", text);
    snprintf(conf, sizeof conf, "%s/sentinel.conf", dir);
    snprintf(log, sizeof log, "%s/sentinel%d.log", s->dir, i);
    assert_int_equal(drv_test_spawn(&s->sentinel[i], argv, log, NULL), 0);
    wait_until(drv_test_pings(s->port[i]), "sentinel %d to answer (see %s)",
               i, log);
    /* INFO every second instead of ten: a forced failover then finds the
     * replica's INFO fresh (else it answers NOGOODSLAVE for a while) */
    r = drv_test_ask(s->port[i], "SENTINEL DEBUG info-period 1000");
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("SENTINEL DEBUG: %s", r->str);
    freeReplyObject(r);
}

/* Field name of SENTINEL MASTER mymaster on sentinel port, as a number
 * (-1 when absent or no answer). */
static long long
master_field(int port, const char *name)
{
    redisReply *r = drv_test_ask(port, "SENTINEL MASTER %s",
                                 DRV_TEST_SENTINEL_MASTER);
    long long v = -1;
    size_t i;

    for (i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY &&
                i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(r->element[i]->str, name) == 0 &&
            r->element[i + 1]->type == REDIS_REPLY_STRING)
            v = atoll(r->element[i + 1]->str);
    if (r != NULL)
        freeReplyObject(r);
    return v;
}

void
drv_test_sentinels_start(struct drv_test_sentinels *s)
{
    char link[32];
    size_t o = 0;
    int i;

    memset(s, 0, sizeof *s);
    assert_int_equal(drv_test_tmpdir("drover-sentinel", s->dir,
                                     sizeof s->dir), 0);
    for (i = 0; i < DRV_TEST_NODES; i++) {
        s->node_port[i] = drv_test_free_port();
        assert_true(s->node_port[i] > 0);
    }
    for (i = 0; i < DRV_TEST_NODES; i++)
        start_node(s, i);
    wait_until((info_field(s->node_port[1], "master_link_status", link,
                           sizeof link), strcmp(link, "up") == 0),
               "the replica's link to the primary (status \"%s\")", link);
    o += (size_t)snprintf(s->addrs, sizeof s->addrs, "[");
    for (i = 0; i < DRV_TEST_SENTINELS; i++) {
        s->port[i] = drv_test_free_port();
        assert_true(s->port[i] > 0);
        o += (size_t)snprintf(s->addrs + o, sizeof s->addrs - o,
                              "%s\"127.0.0.1:%d\"", i > 0 ? ", " : "",
                              s->port[i]);
        start_sentinel(s, i);
    }
    snprintf(s->addrs + o, sizeof s->addrs - o, "]");
    for (i = 0; i < DRV_TEST_SENTINELS; i++) {
        wait_until(drv_test_sentinels_primary(s, i) == s->node_port[0],
                   "sentinel %d to name the primary", i);
        wait_until_num(master_field(s->port[i], "num-slaves"), ==, 1,
                       "replicas sentinel knows");
        wait_until_num(master_field(s->port[i], "num-other-sentinels"), ==,
                       DRV_TEST_SENTINELS - 1, "other sentinels it knows");
    }
}

void
drv_test_sentinels_stop(struct drv_test_sentinels *s)
{
    const char *keep = getenv("DROVER_TEST_KEEP");
    int i;

    for (i = 0; i < DRV_TEST_SENTINELS; i++)
        drv_test_kill(&s->sentinel[i], SIGKILL);
    for (i = 0; i < DRV_TEST_NODES; i++)
        drv_test_kill(&s->node[i], SIGKILL);
    if (s->dir[0] != '\0' && !(keep != NULL && strcmp(keep, "1") == 0))
        drv_test_rm_rf(s->dir);
    else if (s->dir[0] != '\0')
        fprintf(stderr, "sentinel deployment kept in %s\n", s->dir);
}

redisContext *
drv_test_sentinels_node(const struct drv_test_sentinels *s, int i)
{
    redisContext *c = drv_test_connect_port(s->node_port[i]);

    assert_non_null(c);
    return c;
}

int
drv_test_sentinels_primary(const struct drv_test_sentinels *s, int i)
{
    struct drv_redis_sentinel_addr a;
    redisReply *r = NULL;
    int port = 0;

    if (s->sentinel[i].pid <= 0)
        return 0;
    r = drv_test_ask(s->port[i], "SENTINEL get-master-addr-by-name %s",
            DRV_TEST_SENTINEL_MASTER);
    if (drv_redis_sentinel_parse_master(r, &a, NULL) == 0)
        port = a.port;
    if (r != NULL)
        freeReplyObject(r);
    return port;
}

int
drv_test_sentinels_node_of(const struct drv_test_sentinels *s, int port)
{
    int i;

    for (i = 0; i < DRV_TEST_NODES; i++)
        if (s->node_port[i] == port)
            return i;
    return -1;
}

/* Run a command on sentinel port that must answer +OK. */
static void
sentinel_ok(int port, const char *fmt, const char *a, int b)
{
    redisReply *r = drv_test_ask(port, fmt, a, b);

    assert_non_null(r);
    if (r->type != REDIS_REPLY_STATUS)
        fail_msg("sentinel %d: %s: %s", port, fmt,
                 r->str != NULL ? r->str : "?");
    freeReplyObject(r);
}

void
drv_test_sentinels_forget(struct drv_test_sentinels *s)
{
    int i;

    for (i = 0; i < DRV_TEST_SENTINELS; i++)
        if (s->sentinel[i].pid > 0)
            sentinel_ok(s->port[i], "SENTINEL REMOVE %s",
                        DRV_TEST_SENTINEL_MASTER, 0);
}

void
drv_test_sentinels_monitor(struct drv_test_sentinels *s, int i, int n)
{
    redisReply *r = drv_test_ask(s->port[i], "SENTINEL REMOVE %s",
                        DRV_TEST_SENTINEL_MASTER);

    if (r != NULL)          /* ERR No such master after _forget */
        freeReplyObject(r);
    sentinel_ok(s->port[i], "SENTINEL MONITOR %s 127.0.0.1 %d 2",
                DRV_TEST_SENTINEL_MASTER, s->node_port[n]);
    sentinel_ok(s->port[i], "SENTINEL SET %s down-after-milliseconds %d",
                DRV_TEST_SENTINEL_MASTER, 1000);
    wait_until_num(drv_test_sentinels_primary(s, i), ==, s->node_port[n],
                   "port the sentinel names");
}

void
drv_test_sentinels_kill(struct drv_test_sentinels *s, int i)
{
    drv_test_kill(&s->sentinel[i], SIGKILL);
}

/* SENTINEL FAILOVER on port: 1 when accepted, 0 when it should be asked
 * again (NOGOODSLAVE, INPROG), fails the test on anything else. */
static int
failover_accepted(int port)
{
    redisReply *r = drv_test_ask(port, "SENTINEL FAILOVER %s",
                        DRV_TEST_SENTINEL_MASTER);
    int ok = 0;

    assert_non_null(r);
    if (r->type == REDIS_REPLY_STATUS)
        ok = 1;
    else if (r->type != REDIS_REPLY_ERROR ||
             (strncmp(r->str, "-NOGOODSLAVE", 12) != 0 &&
              strncmp(r->str, "NOGOODSLAVE", 11) != 0 &&
              strncmp(r->str, "-INPROG", 7) != 0 &&
              strncmp(r->str, "INPROG", 6) != 0))
        fail_msg("SENTINEL FAILOVER: %s", r->str ? r->str : "?");
    freeReplyObject(r);
    return ok;
}

/* A client on sentinel i subscribed to +switch-master. */
static redisContext *
switch_subscribe(const struct drv_test_sentinels *s, int i)
{
    struct timeval tv = {DRV_TEST_WAIT_MS / 1000, 0};
    redisContext *sub = drv_test_connect_port(s->port[i]);
    redisReply *r = NULL;

    assert_non_null(sub);
    r = redisCommand(sub, "SUBSCRIBE +switch-master");
    assert_non_null(r);
    freeReplyObject(r);
    redisSetTimeout(sub, tv);
    return sub;
}

/* Wait for the +switch-master message on sub (then freed): the index of
 * the new primary, once it answers ROLE master; *switch_ms the arrival. */
static int
switch_wait(const struct drv_test_sentinels *s, redisContext *sub,
            int64_t *switch_ms)
{
    struct drv_redis_sentinel_switch sw;
    redisReply *r = NULL;
    void *msg = NULL;
    int n = -1;

    if (redisGetReply(sub, &msg) != REDIS_OK)
        fail_msg("no +switch-master: %s", sub->errstr);
    if (switch_ms != NULL)
        *switch_ms = drv_test_now_ms();
    r = msg;
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 3);
    assert_int_equal(drv_redis_sentinel_parse_switch(r->element[2]->str,
                                                     r->element[2]->len, &sw,
                                                     NULL), 0);
    assert_string_equal(sw.name, DRV_TEST_SENTINEL_MASTER);
    n = drv_test_sentinels_node_of(s, sw.to.port);
    assert_true(n >= 0);
    assert_int_not_equal(sw.from.port, sw.to.port);
    freeReplyObject(r);
    redisFree(sub);
    wait_until(is_master(s->node_port[n]), "new primary %d to say ROLE "
               "master", n);
    return n;
}

int
drv_test_sentinels_failover(struct drv_test_sentinels *s, int i,
                            int64_t *switch_ms)
{
    redisContext *sub = switch_subscribe(s, i);

    wait_until(failover_accepted(s->port[i]),
               "sentinel %d to accept SENTINEL FAILOVER", i);
    return switch_wait(s, sub, switch_ms);
}

int
drv_test_sentinels_crash(struct drv_test_sentinels *s, int n, int i,
                         int64_t *switch_ms)
{
    redisContext *sub = switch_subscribe(s, i);

    drv_test_kill(&s->node[n], SIGKILL);
    return switch_wait(s, sub, switch_ms);
}

void
drv_test_sentinels_wait_all(const struct drv_test_sentinels *s, int n)
{
    int i;

    for (i = 0; i < DRV_TEST_SENTINELS; i++)
        if (s->sentinel[i].pid > 0)
            wait_until_num(drv_test_sentinels_primary(s, i), ==,
                           s->node_port[n], "port sentinel names");
    wait_until(is_master(s->node_port[n]), "node %d to say ROLE master", n);
}

void
drv_test_sentinels_wait_replica(const struct drv_test_sentinels *s, int i)
{
    char link[32];

    wait_until((info_field(s->node_port[i], "master_link_status", link,
                           sizeof link), strcmp(link, "up") == 0),
               "node %d to replicate again (link \"%s\")", i, link);
}
