/*
 * cluster.h -- a Redis Cluster for integration tests: three masters, no
 * replicas, each a redis-server with cluster-enabled on a private
 * loopback port (and a private bus port), in one temp dir (removed at the
 * end unless DROVER_TEST_KEEP=1). The slots are assigned by hand (node i
 * serves the i-th third, CLUSTER ADDSLOTSRANGE), the nodes introduced by
 * CLUSTER MEET, each with its own config epoch; start returns once every
 * node sees cluster_state:ok and the same three ranges. Every process is
 * registered with the watchdog.
 */
#ifndef DROVER_TEST_CLUSTER_H
#define DROVER_TEST_CLUSTER_H

#include "harness.h"

#define DRV_TEST_CLUSTER_NODES 3

struct drv_test_cluster {
    char dir[256];                              /* temp dir of everything */
    int port[DRV_TEST_CLUSTER_NODES];           /* client ports */
    int bus[DRV_TEST_CLUSTER_NODES];            /* cluster bus ports */
    char id[DRV_TEST_CLUSTER_NODES][48];        /* node ids */
    struct drv_test_proc node[DRV_TEST_CLUSTER_NODES];
    char nodes[256];                            /* YAML flow list of the
                                                   nodes' addresses */
};

/* drv_test_cluster_start -- start the three masters and form the cluster
 * (asserts each step). */
void drv_test_cluster_start(struct drv_test_cluster *c);

/* drv_test_cluster_stop -- kill every node and remove the temp dir unless
 * DROVER_TEST_KEEP=1. Safe on a zeroed struct. */
void drv_test_cluster_stop(struct drv_test_cluster *c);

/* drv_test_cluster_node -- a blocking client on node i (asserts). */
redisContext *drv_test_cluster_node(const struct drv_test_cluster *c,
                                    int i);

/* drv_test_cluster_keyslot -- CLUSTER KEYSLOT key as node 0 answers it. */
int drv_test_cluster_keyslot(const struct drv_test_cluster *c,
                             const char *key);

/* drv_test_cluster_cmd_calls -- "calls=N" of cmdstat_NAME in node i's
 * INFO commandstats ("asking": how many ASKING it was sent), or 0. */
long long drv_test_cluster_cmd_calls(const struct drv_test_cluster *c,
                                     int i, const char *name);

/* drv_test_cluster_owner -- the index of the node that node `asked` says
 * serves slot (CLUSTER SLOTS), or -1. */
int drv_test_cluster_owner(const struct drv_test_cluster *c, int asked,
                           int slot);

/*
 * drv_test_cluster_forget_slot -- make slot served by no master: CLUSTER
 * DELSLOTS on its owner, then on the others, then wait until every node
 * names no owner and says cluster_state:fail (a full cover is required).
 * The owner goes first because every ping and pong a node sends claims
 * its slots, and a node that has forgotten a slot takes the claim of
 * anyone who still makes it (Redis 7.0 keeps it then even after the
 * claimer forgets). A claim the owner sent just before it forgot may
 * still arrive after the others forgot: the wait tells such a node to
 * forget again, and holds until a round of the nodes finds every one
 * already without an owner.
 */
void drv_test_cluster_forget_slot(struct drv_test_cluster *c, int slot);

/*
 * Moving a slot from its owner to node `to`, in the steps an operator (or
 * redis-cli --cluster reshard) takes, so a test can run jobs between them:
 *   _migrate_begin: SETSLOT IMPORTING on `to`, MIGRATING on the owner;
 *   _migrate_keys:  MIGRATE the slot's keys (GETKEYSINSLOT, in batches)
 *                   until none is left on the owner; returns how many moved;
 *   _migrate_end:   SETSLOT NODE on `to`, then on the others, and waits
 *                   until every node names `to` as the owner.
 * Each asserts its commands succeed.
 */
void drv_test_cluster_migrate_begin(struct drv_test_cluster *c, int slot,
                                    int to);
int drv_test_cluster_migrate_keys(struct drv_test_cluster *c, int slot,
                                  int to);
void drv_test_cluster_migrate_end(struct drv_test_cluster *c, int slot,
                                  int to);

#endif
