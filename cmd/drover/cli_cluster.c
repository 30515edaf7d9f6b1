/*
 * cli_cluster.c -- the CLI's (and the dashboard's) way to a Redis Cluster:
 * connect to the first configured node that answers and read the slot
 * map (CLUSTER SLOTS); then each batch of commands is cut into segments
 * (one command, or a MULTI ... EXEC block, which pkg/queue only builds on
 * one queue's keys) and each segment runs on the master of its slot (the
 * slot of its first key; a segment without keys on the first node). A
 * MOVED reply records the slot's new owner and the segment is sent
 * there; an ASK reply sends that one command again to the named node,
 * after ASKING; TRYAGAIN and CLUSTERDOWN (a migration under way, a
 * failover) are retried after a pause, for a few seconds (not for `drover
 * doctor`, which reports them: cli->cluster_report). Blocking: a CLI run
 * is one short conversation.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/config.h"
#include "drover/redis.h"
#include "drover/redis_cluster.h"

#include "cli.h"

#define URL_MAX 1024
#define NODES_MAX 32        /* node connections kept open */
#define TRIES 30            /* redirections and pauses per segment */
#define PAUSE_MS 200        /* after TRYAGAIN, CLUSTERDOWN */
#define WAIT_MS 5000        /* pauses of one batch, at most: then the
                               TRYAGAIN or CLUSTERDOWN replies stand */

struct cli_node {
    struct drv_redis_sentinel_addr at;  /* where */
    struct drv_redis_sync *rs;          /* owned */
};

struct drv__cli_cluster {
    unsigned magic;
#define CLI_CLUSTER_MAGIC 0xc1c1a5e7U
    struct drv_redis_cluster_map map;   /* read at connect, MOVED updates */
    struct drv_redis_tls tls;           /* borrows cli->cfg's strings */
    struct cli_node nodes[NODES_MAX];   /* connections by address */
    int nnodes;
    struct drv_redis_sentinel_addr seed; /* the node of cli->rs (the
                                            commands without keys) */
    int64_t wait_until_ns;              /* the current batch's pauses end
                                           (monotonic) */
};

static void
pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int
same_addr(const struct drv_redis_sentinel_addr *a,
          const struct drv_redis_sentinel_addr *b)
{
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

/* The connection to the node at `at` (made when new), or NULL with err. */
static struct drv_redis_sync *
node_conn(struct drv_cli *cli, struct drv__cli_cluster *cl,
          const struct drv_redis_sentinel_addr *at, struct drv_err *err)
{
    struct cli_node *n = NULL;
    char url[URL_MAX];
    int i, rc;

    if (cli->rs != NULL && same_addr(at, &cl->seed))
        return cli->rs;
    for (i = 0; i < cl->nnodes; i++)
        if (same_addr(&cl->nodes[i].at, at))
            n = &cl->nodes[i];
    if (n != NULL && n->rs != NULL && drv_redis_sync_broken(n->rs)) {
        drv_redis_sync_free(n->rs);
        n->rs = NULL;
    }
    if (n != NULL && n->rs != NULL)
        return n->rs;
    if (n == NULL) {
        if (cl->nnodes == NODES_MAX) {
            drv_err_set(err, -E2BIG, "more than %d cluster nodes",
                        NODES_MAX);
            return NULL;
        }
        n = &cl->nodes[cl->nnodes++];
        n->at = *at;
    }
    if (drv_redis_sentinel_url_at(cli->cfg->redis.url, at, url,
                                  sizeof url) < 0) {
        drv_err_set(err, -ENAMETOOLONG, "url too long");
        return NULL;
    }
    rc = drv_redis_sync_connect(url, &cl->tls, DRV_CLI_TIMEOUT_MS, &n->rs,
                                err);
    explicit_bzero(url, sizeof url);
    if (rc < 0) {
        char why[DRV_ERR_MSG_MAX];

        snprintf(why, sizeof why, "%s", err->msg);
        drv_err_set(err, rc, "cluster node %s:%d: %s", at->host, at->port,
                    why);
        return NULL;
    }
    return n->rs;
}

int
drv__cli_cluster_connect(struct drv_cli *cli, const struct drv_redis_tls *tls,
                         struct drv_err *err)
{
    const struct drv_config_cluster *cc = &cli->cfg->redis.cluster;
    struct drv__cli_cluster *cl = NULL;
    struct drv_argv a;
    size_t i;
    int rc = DRV_EDOWN;

    DRV_ALLOC_OBJ(cl, CLI_CLUSTER_MAGIC);
    cl->tls = *tls;
    drv_redis_cluster_map_init(&cl->map);
    drv_argv_init(&a);
    drv_argv_adds(&a, "CLUSTER");
    drv_argv_adds(&a, "SLOTS");
    drv_err_set(err, DRV_EDOWN, "no cluster node configured");
    for (i = 0; i < cc->nnodes; i++) {
        struct drv_redis_sentinel_addr at;
        struct drv_redis_sync *rs;
        redisReply *r = NULL;

        if (drv_redis_cluster_addr_parse(cc->nodes[i], &at, err) < 0)
            continue;
        rs = node_conn(cli, cl, &at, err);
        if (rs == NULL)
            continue;
        rc = drv_redis_sync_run(rs, 1, &a, &r, err);
        if (rc == 0)
            rc = drv_redis_cluster_map_parse(&cl->map, r, &at, err);
        if (r != NULL)
            freeReplyObject(r);
        if (rc == 0) {
            /* the node that answered serves the commands without keys:
             * its connection becomes cli->rs */
            int k;

            for (k = 0; k < cl->nnodes; k++)
                if (cl->nodes[k].rs == rs)
                    cl->nodes[k].rs = NULL;
            cl->seed = at;
            cli->rs = rs;
            break;
        }
    }
    drv_argv_fini(&a);
    if (rc < 0) {
        drv__cli_cluster_free(cl);
        return rc;
    }
    drv__cli_cluster_free(cli->cluster);
    cli->cluster = cl;
    return 0;
}

void
drv__cli_cluster_free(struct drv__cli_cluster *cl)
{
    int i;

    if (DRV_NO_OBJ(cl, CLI_CLUSTER_MAGIC))
        return;
    for (i = 0; i < cl->nnodes; i++)
        drv_redis_sync_free(cl->nodes[i].rs);
    DRV_FREE_OBJ(cl);
}

/* The first redirection among n replies: 'M' (MOVED, *rd filled), 'A'
 * (ASK, *rd filled), 'T' (TRYAGAIN, CLUSTERDOWN), or 0. */
static int
redirection(redisReply **r, size_t n, struct drv_redis_cluster_redirect *rd)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (drv_redis_cluster_redirect_parse(r[i], rd))
            return rd->ask ? 'A' : 'M';
        if (drv_redis_cluster_transient(r[i]))
            return 'T';
    }
    return 0;
}

/* ASKING, then cmd, on the node rd names: cmd's reply into *out. */
static int
run_asking(struct drv_cli *cli, struct drv__cli_cluster *cl,
           const struct drv_argv *cmd,
           const struct drv_redis_cluster_redirect *rd, redisReply **out,
           struct drv_err *err)
{
    struct drv_redis_sync *rs = node_conn(cli, cl, &rd->to, err);
    struct drv_argv two[2];
    redisReply *r[2] = {NULL, NULL};
    int rc;

    if (rs == NULL)
        return err->code;
    drv_argv_init(&two[0]);
    drv_argv_adds(&two[0], "ASKING");
    two[1] = *cmd;              /* borrowed: not finished here */
    rc = drv_redis_sync_run(rs, 2, two, r, err);
    drv_argv_fini(&two[0]);
    if (rc < 0)
        return rc;
    freeReplyObject(r[0]);
    *out = r[1];
    return 0;
}

/* Run the n commands of one segment (slot, or -1: any node) into out. */
static int
run_segment(struct drv_cli *cli, struct drv__cli_cluster *cl, int slot,
            const struct drv_argv *cmds, size_t n, redisReply **out,
            struct drv_err *err)
{
    struct drv_redis_cluster_redirect rd;
    int t, rc;
    size_t i;

    for (t = 0; t < TRIES; t++) {
        const struct drv_redis_sentinel_addr *at =
            slot < 0 ? NULL : drv_redis_cluster_map_node(&cl->map, slot);
        struct drv_redis_sync *rs = cli->rs;

        /* a slot no master serves goes to the first node, which answers
         * CLUSTERDOWN (a reply: the caller reports it) */
        if (at != NULL && (rs = node_conn(cli, cl, at, err)) == NULL)
            return err->code;
        rc = drv_redis_sync_run(rs, n, cmds, out, err);
        if (rc < 0)
            return rc;
        switch (redirection(out, n, &rd)) {
        case 0:
            return 0;
        case 'T':
            if (drv_clock_mono_ns() >= cl->wait_until_ns)
                return 0;   /* the error replies are the answer */
            pause_ms(PAUSE_MS);
            break;
        case 'A':
            if (n == 1) {
                freeReplyObject(out[0]);
                out[0] = NULL;
                return run_asking(cli, cl, &cmds[0], &rd, &out[0], err);
            }
            /* a MULTI block during a migration: wait for its end */
            if (drv_clock_mono_ns() >= cl->wait_until_ns)
                return 0;
            pause_ms(PAUSE_MS);
            break;
        case 'M':
            /* the server knows the key's slot: go by its word */
            (void)drv_redis_cluster_map_set(&cl->map, rd.slot, &rd.to);
            slot = rd.slot;
            break;
        default:
            break;
        }
        for (i = 0; i < n; i++) {
            freeReplyObject(out[i]);
            out[i] = NULL;
        }
    }
    return drv_err_set(err, DRV_EREDIS, "hash slot %d: still redirected "
                       "after %d tries", slot, TRIES);
}

int
drv__cli_cluster_run(struct drv_cli *cli, size_t n,
                     const struct drv_argv *cmds, redisReply **out,
                     struct drv_err *err)
{
    struct drv__cli_cluster *cl = cli->cluster;
    size_t i = 0, k;
    int rc = 0;

    DRV_CHECK_OBJ(cl, CLI_CLUSTER_MAGIC);
    cl->wait_until_ns = drv_clock_mono_ns() +
                        (cli->cluster_report ? 0 : WAIT_MS * DRV_NS_PER_MS);
    while (i < n && rc == 0) {
        size_t end = i + 1;
        int slot = drv_redis_cluster_cmd_slot(cmds[i].argc, cmds[i].argv,
                                              cmds[i].argvlen);

        if (strcasecmp(cmds[i].argv[0], "MULTI") == 0) {
            /* up to its EXEC, on the slot of its first key */
            while (end < n && strcasecmp(cmds[end - 1].argv[0], "EXEC") != 0)
                end++;
            for (k = i; k < end && slot < 0; k++)
                slot = drv_redis_cluster_cmd_slot(cmds[k].argc, cmds[k].argv,
                                               cmds[k].argvlen);
        }
        rc = run_segment(cli, cl, slot, cmds + i, end - i, out + i, err);
        i = end;
    }
    if (rc < 0)
        for (k = 0; k < n; k++)
            if (out[k] != NULL) {
                freeReplyObject(out[k]);
                out[k] = NULL;
            }
    return rc;
}
