/*
 * gate.c -- the gate of gate.h.
 */
#include "gate.h"

#include "harness.h"

void
drv_test_gate_init(struct drv_test_gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->open = 0;
}

void
drv_test_gate_fini(struct drv_test_gate *g)
{
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
}

void
drv_test_gate_wait(struct drv_test_gate *g)
{
    pthread_mutex_lock(&g->mu);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

void
drv_test_gate_open(struct drv_test_gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void *
open_when_stopping(void *arg)
{
    struct drv_test_opener *o = arg;

    drv_test_pool_wait_stopping(o->pool);
    drv_test_gate_open(o->gate);
    return NULL;
}

void
drv_test_opener_start(struct drv_test_opener *o, struct drv_test_gate *g,
                      struct drv_pool *pool)
{
    o->gate = g;
    o->pool = pool;
    assert_int_equal(pthread_create(&o->th, NULL, open_when_stopping, o),
                     0);
}

void
drv_test_opener_join(struct drv_test_opener *o)
{
    pthread_join(o->th, NULL);
}
