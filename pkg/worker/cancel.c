/*
 * cancel.c -- a running job cancelled with `drover cancel`.
 *
 * The cancel script marks a delivered entry in P:{Q}:cancel (entry id ->
 * time). While this worker holds jobs of a queue (fetched, waiting for a
 * permit, running or settling), it reads that queue's markers every
 * DRV_QUEUE_CANCEL_CHECK_MS: one ZRANGE on the command connection,
 * pipelined with whatever else goes out, never a command per job, and
 * nothing at all for a queue it holds no job of. The set holds only the
 * markers of jobs being cancelled right now (the settle of the cancel
 * removes its marker), so the read is small.
 *
 * A marked job gets cancel_req and its task is cancelled through the task
 * group: an exec child's process group is killed, a plugin's cancel hook
 * runs, a pool job's task is flagged (drv_tg_task_cancelled) and
 * abandoned. Its outcome then becomes a CANCEL settle op (outcome.c): not
 * retried, result status cancelled. If the outcome was on its way
 * already, the settle script sees the marker itself and turns a retry,
 * requeue or next step into a cancel.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/log.h"
#include "drover/queue_cancel.h"
#include "drover/redis.h"
#include "worker_int.h"

struct cctx {
    unsigned magic;
#define CCTX_MAGIC 0xcace1cceU
    struct drv_worker *w;   /* borrowed */
    int qi;
};

/* Cancel the live job of queue qi whose entry is eid, if there is one
 * not cancelled yet. */
static void
mark(struct drv_worker *w, int qi, const char *eid, size_t len)
{
    struct wjob *j;
    char qid[256];

    LIST_FOREACH(j, &w->live, link) {
        if (j->qi != qi || j->lost || j->cancel_req ||
            strlen(j->job->entry_id) != len ||
            memcmp(j->job->entry_id, eid, len) != 0)
            continue;
        j->cancel_req = 1;
        drv_log_quote(qid, sizeof qid, j->job->id, j->job->id_len);
        DRV_LOG_INFO("cancelling job (drover cancel)", "queue=%s id=%s "
                     "entry=%s started=%d", w->queues[qi].keys.name, qid,
                     j->job->entry_id, j->started);
        drv__worker_cancel_job(j);
        return;
    }
}

static void
on_markers(struct drv_redis *r DRV_UNUSED, int status, const redisReply *reply,
           void *ctx)
{
    struct cctx *c;
    struct drv_worker *w;
    size_t i;

    DRV_CAST(c, ctx, CCTX_MAGIC);
    w = c->w;
    if (status != -ECANCELED) {
        w->queues[c->qi].cancel_inflight = 0;
        if (status == 0 && reply->type == REDIS_REPLY_ARRAY) {
            for (i = 0; i < reply->elements; i++)
                if (reply->element[i]->type == REDIS_REPLY_STRING)
                    mark(w, c->qi, reply->element[i]->str,
                         reply->element[i]->len);
        } else if (status < 0) {
            drv__worker_redis_error(w, status, reply);
        }
    }
    DRV_FREE_OBJ(c);
}

void
drv__worker_cancel_check(struct drv_worker *w, int64_t now)
{
    struct drv_argv a;
    struct wjob *j;
    size_t qi;

    if (now < w->next_cancel_ns)
        return;
    w->next_cancel_ns = now + DRV_QUEUE_CANCEL_CHECK_MS * DRV_NS_PER_MS;
    drv_argv_init(&a);
    for (qi = 0; qi < w->nqueues; qi++) {
        struct cctx *c;

        if (w->queues[qi].cancel_inflight || w->queues[qi].bad[0] != '\0')
            continue;
        LIST_FOREACH(j, &w->live, link)
            if (j->qi == (int)qi && !j->lost && !j->cancel_req)
                break;
        if (j == NULL)
            continue; /* no job of this queue here: nothing to cancel */
        DRV_ALLOC_OBJ(c, CCTX_MAGIC);
        c->w = w;
        c->qi = (int)qi;
        drv_queue_cancel_read(&a, &w->queues[qi].keys);
        w->queues[qi].cancel_inflight = 1;
        if (drv_redis_send(w->queues[qi].cmd, 0, &a, on_markers, c) < 0) {
            w->queues[qi].cancel_inflight = 0;
            DRV_FREE_OBJ(c);
        }
    }
    drv_argv_fini(&a);
}
