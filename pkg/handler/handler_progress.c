/*
 * handler_progress.c -- progress a job reports while it runs: an exec
 * child's lines on its DROVER_PROGRESS_FD pipe, a plugin's
 * host->progress. The report is kept in the run (the last one wins) and
 * the worker takes it on its tick, at most every 250 ms per job, to write
 * it to the result hash.
 *
 * A run that never reports costs nothing: the store (a mutex and the
 * message) is allocated by the first report and published with an
 * atomic compare-and-swap (a pool thread and the loop may race to it);
 * the worker's look is one atomic load of a NULL pointer.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "drover/common.h"
#include "drover/handlers.h"
#include "handler_int.h"

struct drv_hprogress {
    unsigned magic;
#define DRV_HPROGRESS_MAGIC 0x9e0c9e0dU
    pthread_mutex_t mu;
    unsigned seq;                  /* reports so far; read atomically */
    int pct;                       /* 0..100 (under mu) */
    size_t len;                    /* bytes of msg (under mu) */
    char msg[DRV_HRUN_PROGRESS_MSG_MAX];
};

static void
store_free(struct drv_hprogress *p)
{
    if (DRV_NO_OBJ(p, DRV_HPROGRESS_MAGIC))
        return;
    DRV_AZ(pthread_mutex_destroy(&p->mu));
    DRV_FREE_OBJ(p);
}

static struct drv_hprogress *
store_of(struct drv_hrun *r)
{
    struct drv_hprogress *p = __atomic_load_n(&r->progress,
                                              __ATOMIC_ACQUIRE);
    struct drv_hprogress *none = NULL;

    if (p != NULL)
        return p;
    DRV_ALLOC_OBJ(p, DRV_HPROGRESS_MAGIC);
    DRV_AZ(pthread_mutex_init(&p->mu, NULL));
    if (__atomic_compare_exchange_n(&r->progress, &none, p, 0,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        return p;
    /* another thread's report got there first: use its store */
    store_free(p);
    return none;
}

void
drv_hrun_progress(struct drv_hrun *r, int pct, const char *msg, size_t len)
{
    struct drv_hprogress *p;

    DRV_CHECK_OBJ(r, DRV_HRUN_MAGIC);
    p = store_of(r);
    if (pct < 0)
        pct = 0;
    if (pct > 100)
        pct = 100;
    if (msg == NULL)
        len = 0;
    if (len > DRV_HRUN_PROGRESS_MSG_MAX)
        len = DRV_HRUN_PROGRESS_MSG_MAX;
    DRV_AZ(pthread_mutex_lock(&p->mu));
    p->pct = pct;
    if (len > 0)
        memcpy(p->msg, msg, len);
    p->len = len;
    __atomic_add_fetch(&p->seq, 1, __ATOMIC_RELEASE);
    DRV_AZ(pthread_mutex_unlock(&p->mu));
}

int
drv_hrun_progress_line(struct drv_hrun *r, const char *line, size_t len)
{
    size_t i = 0;
    long pct = 0;

    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
        len--;
    while (i < len && line[i] == ' ')
        i++;
    if (i == len || line[i] < '0' || line[i] > '9')
        return -EINVAL;
    while (i < len && line[i] >= '0' && line[i] <= '9') {
        if (pct <= 100)
            pct = pct * 10 + (line[i] - '0');
        i++;
    }
    if (i < len && line[i] == '.') /* a fraction: cut */
        for (i++; i < len && line[i] >= '0' && line[i] <= '9'; i++)
            ;
    if (i < len && line[i] == '%')
        i++;
    if (i < len && line[i] != ' ' && line[i] != '\t')
        return -EINVAL;
    if (i < len)
        i++;
    drv_hrun_progress(r, (int)(pct > 100 ? 100 : pct), line + i, len - i);
    return 0;
}

int
drv_hrun_progress_take(struct drv_hrun *r, unsigned *seq, int *pct,
                       char *buf, size_t *len)
{
    struct drv_hprogress *p = __atomic_load_n(&r->progress,
                                              __ATOMIC_ACQUIRE);

    if (p == NULL || __atomic_load_n(&p->seq, __ATOMIC_ACQUIRE) == *seq)
        return 0;
    DRV_AZ(pthread_mutex_lock(&p->mu));
    *seq = p->seq;
    *pct = p->pct;
    *len = p->len;
    memcpy(buf, p->msg, p->len);
    DRV_AZ(pthread_mutex_unlock(&p->mu));
    return 1;
}

void
drv__hrun_progress_free(struct drv_hrun *r)
{
    store_free(r->progress);
    r->progress = NULL;
}
