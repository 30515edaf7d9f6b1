/*
 * test_cluster.c -- droverd and drover on a three-master Redis Cluster
 * (tests/harness/cluster.h), each test on a fresh one: the slot drover
 * computes for a queue is the one the cluster gives; queues whose slots
 * live on different masters all drain, each on its own master; a slot
 * moved (IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE) while its queue's
 * jobs run loses none of them, and droverd follows the MOVED replies
 * to the new owner; the CLI works on every queue's node.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "droverd.h"
#include "drover/common.h"
#include "drover/redis_cluster.h"

static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-cl",
    .prefix = "t",
    .log_level = "info",
    .worker_defaults = "",
    .body_head = NULL,
    .tail_lines = 80,
};

/* One test's world: the cluster, a stand-in for the fixture's server
 * (node 0), the droverd fixture, and three queue names whose slots are
 * served by node 0, 1 and 2. */
struct world {
    struct drv_test_cluster cl;
    struct drv_test_redis srv;
    struct drv_test_droverd *t;
    char q[DRV_TEST_CLUSTER_NODES][16];
    int slot[DRV_TEST_CLUSTER_NODES];
};

/* The slot of queue q's keys: that of its hash tag {q}. */
static int
queue_slot(const char *q)
{
    return drv_redis_cluster_slot(q, strlen(q));
}

static int
setup(void **st)
{
    struct world *w = calloc(1, sizeof *w);
    int i, found = 0;

    assert_non_null(w);
    drv_test_watchdog_start(DRV_TEST_WATCHDOG_S);
    drv_test_cluster_start(&w->cl);
    w->srv.port = w->cl.port[0];
    w->srv.external = 1;
    snprintf(w->srv.url, sizeof w->srv.url, "redis://127.0.0.1:%d/0",
             w->srv.port);
    w->t = drv_test_droverd_new(&w->srv, &opts);
    /* q<n>: the first name served by each node */
    for (i = 0; found < DRV_TEST_CLUSTER_NODES && i < 1000; i++) {
        char name[16];
        int k;

        snprintf(name, sizeof name, "q%d", i);
        k = drv_test_cluster_owner(&w->cl, 0, queue_slot(name));
        assert_true(k >= 0);
        if (w->q[k][0] == '\0') {
            snprintf(w->q[k], sizeof w->q[k], "%s", name);
            w->slot[k] = queue_slot(name);
            found++;
        }
    }
    assert_int_equal(found, DRV_TEST_CLUSTER_NODES);
    *st = w;
    return 0;
}

static int
teardown(void **st)
{
    struct world *w = *st;

    drv_test_droverd_free(w->t);
    drv_test_cluster_stop(&w->cl);
    drv_test_watchdog_stop();
    free(w);
    return 0;
}

/* ---------------------------------------------------------------- tests */

static void
test_cluster_slots_match_keyslot(void **st)
{
    struct world *w = *st;
    const char *keys[] = {"t:{default}:jobs", "t:{q1}:delayed",
                          "drover:{emails}:stats", "t:workers",
                          "{}x", "a{b", "123456789"};
    size_t i;
    int k;

    for (i = 0; i < DRV_ARRAY_LEN(keys); i++)
        assert_int_equal(drv_redis_cluster_slot(keys[i], strlen(keys[i])),
                         drv_test_cluster_keyslot(&w->cl, keys[i]));
    /* the three queues of the world live on three masters */
    for (k = 0; k < DRV_TEST_CLUSTER_NODES; k++) {
        char key[64];

        snprintf(key, sizeof key, "t:{%s}:jobs", w->q[k]);
        assert_int_equal(drv_test_cluster_keyslot(&w->cl, key), w->slot[k]);
        assert_int_equal(drv_test_cluster_owner(&w->cl, 1, w->slot[k]), k);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cluster_slots_match_keyslot,
                                        setup, teardown),
    };

    drv_test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
