/*
 * gate.h -- a gate for thread tests: threads wait on it until it opens,
 * and it stays open. A test blocks pool work on one to hold a thread
 * busy, and opens it to let the work finish (teardown opens it too, so
 * no pool thread is left blocked).
 */
#ifndef DROVER_TEST_GATE_H
#define DROVER_TEST_GATE_H

#include <pthread.h>

struct drv_test_gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;           /* under mu */
};

void drv_test_gate_init(struct drv_test_gate *g);
void drv_test_gate_fini(struct drv_test_gate *g);
/* drv_test_gate_wait -- block until the gate is open. */
void drv_test_gate_wait(struct drv_test_gate *g);
/* drv_test_gate_open -- open it: every waiter goes on, and later ones
 * do not block. */
void drv_test_gate_open(struct drv_test_gate *g);

/*
 * A helper thread that opens a gate once drv_pool_free(pool) has begun,
 * so a test can free a pool whose thread is blocked on the gate (the
 * free must join it). The thread asserts nothing (cmocka asserts only on
 * the test's thread): a wait that times out opens the gate anyway, and
 * the test's own asserts see what went wrong.
 */
struct drv_pool;
struct drv_test_opener {
    struct drv_test_gate *gate;  /* borrowed */
    struct drv_pool *pool;       /* borrowed */
    pthread_t th;
};

/* drv_test_opener_start -- start the thread (asserts it started). */
void drv_test_opener_start(struct drv_test_opener *o,
                           struct drv_test_gate *g, struct drv_pool *pool);
/* drv_test_opener_join -- wait for it to end. */
void drv_test_opener_join(struct drv_test_opener *o);

#endif
