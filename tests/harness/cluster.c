/*
 * cluster.c -- the Redis Cluster of cluster.h: three masters formed by
 * hand (ADDSLOTSRANGE, SET-CONFIG-EPOCH, MEET), which is quicker than
 * redis-cli --cluster create and needs no answer to a prompt.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cluster.h"
#include "drover/redis_cluster.h"

/* One command on node port that must not fail; returns the reply. */
static redisReply *
must(int port, const char *fmt, ...)
{
    redisContext *ctx = drv_test_connect_port(port);
    redisReply *r = NULL;
    va_list ap;

    assert_non_null(ctx);
    va_start(ap, fmt);
    r = redisvCommand(ctx, fmt, ap);
    va_end(ap);
    redisFree(ctx);
    if (r == NULL)
        fail_msg("node on port %d: no answer to %s", port, fmt);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("node on port %d: %s: %s", port, fmt, r->str);
    return r;
}

/* Start node i on a free port, its bus on another, and read its id. */
static void
start_node(struct drv_test_cluster *c, int i)
{
    char dir[400], conf[512], log[512], text[1024];
    const char *argv[3] = {"redis-server", conf, NULL};
    redisReply *r;

    c->port[i] = drv_test_free_port();
    c->bus[i] = drv_test_free_port();
    assert_true(c->port[i] > 0 && c->bus[i] > 0 && c->port[i] != c->bus[i]);
    snprintf(dir, sizeof dir, "%s/node%d", c->dir, i);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(text, sizeof text,
             "port %d\nbind 127.0.0.1\nsave \"\"\nappendonly no\n"
             "dir %s\ndaemonize no\nloglevel notice\n"
             "cluster-enabled yes\ncluster-config-file nodes.conf\n"
             "cluster-port %d\ncluster-node-timeout 5000\n"
             "cluster-require-full-coverage yes\n",
             c->port[i], dir, c->bus[i]);
    snprintf(conf, sizeof conf, "%s/redis.conf", dir);
    assert_int_equal(drv_test_write_file(conf, text), 0);
    snprintf(log, sizeof log, "%s/node%d.log", c->dir, i);
    assert_int_equal(drv_test_spawn(&c->node[i], argv, log, NULL), 0);
    wait_until(drv_test_pings(c->port[i]), "cluster node %d to answer "
               "(see %s)", i, log);
    r = must(c->port[i], "CLUSTER MYID");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    snprintf(c->id[i], sizeof c->id[i], "%s", r->str);
    freeReplyObject(r);
}

/* Node i's CLUSTER INFO has cluster_state:ok and it knows every node. */
static int
node_ok(const struct drv_test_cluster *c, int i)
{
    redisReply *r = drv_test_ask(c->port[i], "CLUSTER INFO");
    char want[64];
    int ok;

    snprintf(want, sizeof want, "cluster_known_nodes:%d",
             DRV_TEST_CLUSTER_NODES);
    ok = r != NULL && r->type == REDIS_REPLY_STRING &&
         strstr(r->str, "cluster_state:ok") != NULL &&
         strstr(r->str, want) != NULL;
    if (r != NULL)
        freeReplyObject(r);
    return ok;
}

/* Every node names node k the owner of slot. */
static int
all_agree(const struct drv_test_cluster *c, int slot, int k)
{
    int i;

    for (i = 0; i < DRV_TEST_CLUSTER_NODES; i++)
        if (drv_test_cluster_owner(c, i, slot) != k)
            return 0;
    return 1;
}

void
drv_test_cluster_start(struct drv_test_cluster *c)
{
    const int per = DRV_REDIS_CLUSTER_SLOTS / DRV_TEST_CLUSTER_NODES;
    size_t o = 0;
    int i;

    memset(c, 0, sizeof *c);
    assert_int_equal(drv_test_tmpdir("drover-cluster", c->dir,
                                     sizeof c->dir), 0);
    o += (size_t)snprintf(c->nodes, sizeof c->nodes, "[");
    for (i = 0; i < DRV_TEST_CLUSTER_NODES; i++) {
        int last = i == DRV_TEST_CLUSTER_NODES - 1;

        start_node(c, i);
        o += (size_t)snprintf(c->nodes + o, sizeof c->nodes - o,
                              "%s\"127.0.0.1:%d\"", i > 0 ? ", " : "",
                              c->port[i]);
        freeReplyObject(must(c->port[i], "CLUSTER SET-CONFIG-EPOCH %d",
                             i + 1));
        freeReplyObject(must(c->port[i], "CLUSTER ADDSLOTSRANGE %d %d",
                             i * per, last ? DRV_REDIS_CLUSTER_SLOTS - 1
                                           : (i + 1) * per - 1));
    }
    snprintf(c->nodes + o, sizeof c->nodes - o, "]");
    for (i = 1; i < DRV_TEST_CLUSTER_NODES; i++)
        freeReplyObject(must(c->port[0], "CLUSTER MEET 127.0.0.1 %d %d",
                             c->port[i], c->bus[i]));
    for (i = 0; i < DRV_TEST_CLUSTER_NODES; i++)
        wait_until(node_ok(c, i), "cluster node %d to be ok", i);
    for (i = 0; i < DRV_TEST_CLUSTER_NODES; i++) {
        wait_until(all_agree(c, i * per, i), "every node to see node %d's "
                   "slots", i);
    }
    wait_until(all_agree(c, DRV_REDIS_CLUSTER_SLOTS - 1,
                         DRV_TEST_CLUSTER_NODES - 1), "the last slot");
}

void
drv_test_cluster_stop(struct drv_test_cluster *c)
{
    const char *keep = getenv("DROVER_TEST_KEEP");
    int i;

    for (i = 0; i < DRV_TEST_CLUSTER_NODES; i++)
        drv_test_kill(&c->node[i], SIGKILL);
    if (c->dir[0] != '\0' && !(keep != NULL && strcmp(keep, "1") == 0))
        drv_test_rm_rf(c->dir);
    else if (c->dir[0] != '\0')
        fprintf(stderr, "cluster kept in %s\n", c->dir);
}

redisContext *
drv_test_cluster_node(const struct drv_test_cluster *c, int i)
{
    redisContext *ctx = drv_test_connect_port(c->port[i]);

    assert_non_null(ctx);
    return ctx;
}

int
drv_test_cluster_keyslot(const struct drv_test_cluster *c, const char *key)
{
    redisReply *r = must(c->port[0], "CLUSTER KEYSLOT %s", key);
    int slot;

    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    slot = (int)r->integer;
    freeReplyObject(r);
    return slot;
}

long long
drv_test_cluster_cmd_calls(const struct drv_test_cluster *c, int i,
                           const char *name)
{
    redisContext *ctx = drv_test_cluster_node(c, i);
    long long n = drv_test_redis_calls(ctx, name, 0);

    redisFree(ctx);
    return n;
}

int
drv_test_cluster_owner(const struct drv_test_cluster *c, int asked,
                       int slot)
{
    struct drv_redis_cluster_map *m = malloc(sizeof *m);
    const struct drv_redis_sentinel_addr *a;
    redisReply *r = drv_test_ask(c->port[asked], "CLUSTER SLOTS");
    int i, k = -1;

    assert_non_null(m);
    if (drv_redis_cluster_map_parse(m, r, NULL, NULL) == 0 &&
        (a = drv_redis_cluster_map_node(m, slot)) != NULL)
        for (i = 0; i < DRV_TEST_CLUSTER_NODES; i++)
            if (a->port == c->port[i])
                k = i;
    if (r != NULL)
        freeReplyObject(r);
    free(m);
    return k;
}

/* Node i names no owner of slot and says cluster_state:fail; when it
 * still names one (it took an old claim of the owner's after it forgot),
 * it is told to forget the slot again, and this try fails. */
static int
forgotten_by(const struct drv_test_cluster *c, int i, int slot)
{
    redisReply *r;
    int failed;

    if (drv_test_cluster_owner(c, i, slot) >= 0) {
        freeReplyObject(must(c->port[i], "CLUSTER DELSLOTS %d", slot));
        return 0;
    }
    r = must(c->port[i], "CLUSTER INFO");
    failed = r->type == REDIS_REPLY_STRING &&
             strstr(r->str, "cluster_state:fail\r") != NULL;
    freeReplyObject(r);
    return failed;
}

/* Every node passes forgotten_by, all in one round. */
static int
all_forgot(const struct drv_test_cluster *c, int slot)
{
    int i;

    for (i = 0; i < DRV_TEST_CLUSTER_NODES; i++)
        if (!forgotten_by(c, i, slot))
            return 0;
    return 1;
}

void
drv_test_cluster_forget_slot(struct drv_test_cluster *c, int slot)
{
    int owner = drv_test_cluster_owner(c, 0, slot), i;

    assert_true(owner >= 0);
    freeReplyObject(must(c->port[owner], "CLUSTER DELSLOTS %d", slot));
    for (i = 0; i < DRV_TEST_CLUSTER_NODES; i++)
        if (i != owner)
            freeReplyObject(must(c->port[i], "CLUSTER DELSLOTS %d", slot));
    wait_until(all_forgot(c, slot), "every node to forget slot %d and say "
               "cluster_state:fail", slot);
}

void
drv_test_cluster_migrate_begin(struct drv_test_cluster *c, int slot, int to)
{
    int from = drv_test_cluster_owner(c, to, slot);

    assert_true(from >= 0 && from != to);
    freeReplyObject(must(c->port[to], "CLUSTER SETSLOT %d IMPORTING %s",
                         slot, c->id[from]));
    freeReplyObject(must(c->port[from], "CLUSTER SETSLOT %d MIGRATING %s",
                         slot, c->id[to]));
}

int
drv_test_cluster_migrate_keys(struct drv_test_cluster *c, int slot, int to)
{
    int from = drv_test_cluster_owner(c, to, slot);
    int moved = 0;

    assert_true(from >= 0 && from != to);
    for (;;) {
        redisReply *keys = must(c->port[from],
                                "CLUSTER GETKEYSINSLOT %d 100", slot);
        const char **argv = NULL;
        size_t *lens = NULL, i, n;
        char port[16];
        redisContext *ctx;
        redisReply *r;

        assert_int_equal(keys->type, REDIS_REPLY_ARRAY);
        if (keys->elements == 0) {
            freeReplyObject(keys);
            return moved;
        }
        /* MIGRATE host port "" 0 timeout KEYS k1 k2 ... */
        n = 7 + keys->elements;
        argv = calloc(n, sizeof *argv);
        lens = calloc(n, sizeof *lens);
        assert_true(argv != NULL && lens != NULL);
        snprintf(port, sizeof port, "%d", c->port[to]);
        argv[0] = "MIGRATE";
        argv[1] = "127.0.0.1";
        argv[2] = port;
        argv[3] = "";
        argv[4] = "0";
        argv[5] = "10000";
        argv[6] = "KEYS";
        for (i = 0; i < keys->elements; i++) {
            argv[7 + i] = keys->element[i]->str;
            lens[7 + i] = keys->element[i]->len;
        }
        for (i = 0; i < 7; i++)
            lens[i] = strlen(argv[i]);
        ctx = drv_test_connect_port(c->port[from]);
        assert_non_null(ctx);
        r = redisCommandArgv(ctx, (int)n, argv, lens);
        assert_non_null(r);
        if (r->type == REDIS_REPLY_ERROR)
            fail_msg("MIGRATE: %s", r->str);
        moved += (int)keys->elements;
        freeReplyObject(r);
        redisFree(ctx);
        free(argv);
        free(lens);
        freeReplyObject(keys);
    }
}

void
drv_test_cluster_migrate_end(struct drv_test_cluster *c, int slot, int to)
{
    int i;

    freeReplyObject(must(c->port[to], "CLUSTER SETSLOT %d NODE %s", slot,
                         c->id[to]));
    for (i = 0; i < DRV_TEST_CLUSTER_NODES; i++)
        if (i != to)
            freeReplyObject(must(c->port[i], "CLUSTER SETSLOT %d NODE %s",
                                 slot, c->id[to]));
    wait_until(all_agree(c, slot, to), "every node to name node %d the "
               "owner of slot %d", to, slot);
}
