/*
 * sentinel.h -- a Redis Sentinel deployment for integration tests: a
 * primary, one replica (replicaof) and three sentinels monitoring them as
 * "mymaster", all redis-server processes (the sentinels run as
 * `redis-server sentinel.conf --sentinel`) on private loopback ports, in
 * one temp dir (removed at the end unless DROVER_TEST_KEEP=1). Started and
 * stopped by the test; every process is registered with the watchdog.
 *
 * Tuned for speed, not for production: quorum 2, down-after 1000 ms,
 * diskless replication without delay, and the sentinels' INFO period
 * lowered to 1 s (SENTINEL DEBUG) so a forced failover finds its replica
 * fresh at once. The hello period stays the default 2 s: a sentinel that
 * did not lead a failover learns of it as slowly as in production, and
 * the old primary is turned into a replica as late (about 8 s after the
 * switch) -- a client must follow the sentinels, not wait for that.
 */
#ifndef DROVER_TEST_SENTINEL_H
#define DROVER_TEST_SENTINEL_H

#include "harness.h"

#define DRV_TEST_SENTINEL_MASTER "mymaster" /* the monitored name */
#define DRV_TEST_SENTINELS 3                /* sentinel processes */
#define DRV_TEST_NODES 2                    /* primary + replica */

struct drv_test_sentinels {
    char dir[256];                            /* temp dir of everything */
    int node_port[DRV_TEST_NODES];            /* [0] starts as primary */
    struct drv_test_proc node[DRV_TEST_NODES]; /* the data nodes */
    int port[DRV_TEST_SENTINELS];             /* sentinel ports */
    struct drv_test_proc sentinel[DRV_TEST_SENTINELS]; /* pid 0: down */
    char addrs[256];                          /* YAML flow list of the
                                                 sentinels' addresses */
};

/* drv_test_sentinels_start -- write the configs, start both nodes and the
 * three sentinels, and wait until every sentinel names node 0 as primary
 * and knows the replica (asserts each step). */
void drv_test_sentinels_start(struct drv_test_sentinels *s);

/* drv_test_sentinels_stop -- stop every process still running and remove
 * the temp dir unless DROVER_TEST_KEEP=1. Safe on a zeroed struct. */
void drv_test_sentinels_stop(struct drv_test_sentinels *s);

/* drv_test_sentinels_node -- a blocking client on data node i (asserts). */
redisContext *drv_test_sentinels_node(const struct drv_test_sentinels *s,
                                      int i);

/* drv_test_sentinels_primary -- the port sentinel i names as primary now
 * (0 when it does not answer). */
int drv_test_sentinels_primary(const struct drv_test_sentinels *s, int i);

/* drv_test_sentinels_node_of -- the index of the data node on port, or -1. */
int drv_test_sentinels_node_of(const struct drv_test_sentinels *s, int port);

/* drv_test_sentinels_monitor -- make sentinel i monitor data node n as
 * the primary (SENTINEL REMOVE, then MONITOR): a misconfigured or stale
 * sentinel when n is a replica. Waits until it names n; asserts. */
void drv_test_sentinels_monitor(struct drv_test_sentinels *s, int i, int n);

/* drv_test_sentinels_forget -- SENTINEL REMOVE the master on every
 * running sentinel: none names a primary until _monitor. Asserts. */
void drv_test_sentinels_forget(struct drv_test_sentinels *s);

/* drv_test_sentinels_kill -- SIGKILL sentinel i (it stays down). */
void drv_test_sentinels_kill(struct drv_test_sentinels *s, int i);

/*
 * drv_test_sentinels_failover -- force a failover with SENTINEL FAILOVER
 * on sentinel i (again while it answers NOGOODSLAVE: its view of the
 * replica is not fresh yet), having subscribed to +switch-master there
 * first; wait for that message and return the index of the new primary.
 * *switch_ms (may be NULL) gets drv_test_now_ms() at the moment the
 * message arrived. Then the new primary answers ROLE master. Asserts.
 */
int drv_test_sentinels_failover(struct drv_test_sentinels *s, int i,
                                int64_t *switch_ms);

/*
 * drv_test_sentinels_crash -- SIGKILL data node n (the primary) having
 * subscribed to +switch-master on sentinel i, and wait until the sentinels
 * have failed over on their own (down-after, quorum, election) and i
 * announces it; returns the new primary as drv_test_sentinels_failover.
 */
int drv_test_sentinels_crash(struct drv_test_sentinels *s, int n, int i,
                             int64_t *switch_ms);

/* drv_test_sentinels_wait_all -- wait until every running sentinel names
 * data node n as primary and node n's ROLE is master. */
void drv_test_sentinels_wait_all(const struct drv_test_sentinels *s, int n);

/* drv_test_sentinels_wait_replica -- wait until data node i is a replica
 * whose link to its primary is up (the old primary, demoted). */
void drv_test_sentinels_wait_replica(const struct drv_test_sentinels *s,
                                     int i);

#endif
