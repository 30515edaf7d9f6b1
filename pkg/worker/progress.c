/*
 * progress.c -- a running job's progress, written to its result hash.
 *
 * A handler keeps the last report in the run (drv_hrun_progress, any
 * thread). On the worker's tick (every 100 ms) each running job is
 * looked at: one atomic load when it reported nothing new, so a job that
 * never reports costs no Redis command and no lock. A new report is
 * written when the job's last write is at least DRV_QUEUE_PROGRESS_MS
 * old (reports in between are coalesced into the last one): HSET,
 * PEXPIRE and PUBLISH on the command connection, pipelined with whatever
 * else goes out on that turn, no reply waited for.
 *
 * Nothing is written once the outcome is decided (the job is no longer
 * running), so every progress write is on the connection before the
 * settle call that writes the final result over it. A job that wrote
 * progress and whose type keeps no result (result_ttl 0) has the hash
 * deleted when its outcome is decided (drv__worker_progress_end).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/handlers.h"
#include "drover/log.h"
#include "drover/queue_cancel.h"
#include "drover/redis.h"
#include "worker_int.h"

static void
on_written(struct drv_redis *r DRV_UNUSED, int status DRV_UNUSED,
           const redisReply *reply DRV_UNUSED, void *ctx DRV_UNUSED)
{
    /* nothing to do: the next report (or the settle) writes again */
}

/* Send c on r (the connection of the job's queue). */
static void
send_cmds(struct drv_redis *r, struct drv_queue_cmds *c)
{
    size_t i;

    for (i = 0; i < c->n; i++)
        (void)drv_redis_send(r, 0, &c->cmd[i], on_written, NULL);
}

static int64_t
result_ttl(const struct wjob *j)
{
    if (j->pipe != NULL)
        return j->pipe->policy.result_ttl_ms;
    return j->type != NULL ? j->type->ht.cfg->policy.result_ttl_ms : 0;
}

static void
write_one(struct drv_worker *w, struct wjob *j, int pct, const char *msg,
          size_t len)
{
    struct drv_queue_cmds c;
    int64_t ttl = result_ttl(j);

    drv_queue_cmds_init(&c);
    drv_queue_progress_build(&c, &w->queues[j->qi].keys,
                             &(struct drv_queue_progress){
        .id = j->job->id, .id_len = j->job->id_len, .pct = pct,
        .msg = msg, .msg_len = len, .worker = w->id,
        .started_ms = j->started_ms,
        .ttl_ms = ttl > DRV_QUEUE_PROGRESS_TTL_MS
                      ? ttl : DRV_QUEUE_PROGRESS_TTL_MS});
    send_cmds(w->queues[j->qi].cmd, &c);
    drv_queue_cmds_fini(&c);
    j->progress_written = 1;
}

void
drv__worker_progress_flush(struct drv_worker *w, int64_t now)
{
    char msg[DRV_HRUN_PROGRESS_MSG_MAX];
    struct wjob *j;
    size_t len;
    int pct;

    LIST_FOREACH(j, &w->live, link) {
        if (!j->running || j->lost || j->type == NULL ||
            now < j->progress_next_ns)
            continue;
        if (!drv_hrun_progress_take(&j->run, &j->progress_seq, &pct, msg,
                                    &len))
            continue;
        write_one(w, j, pct, msg, len);
        j->progress_next_ns = now + DRV_QUEUE_PROGRESS_MS * DRV_NS_PER_MS;
    }
}

void
drv__worker_progress_end(struct wjob *j)
{
    struct drv_argv a;
    struct drv_worker *w = j->w;

    if (!j->progress_written || j->dec.drop || j->dec.op.result_ttl_ms > 0)
        return;
    drv_argv_init(&a);
    drv_argv_adds(&a, "DEL");
    drv_argv_addcat(&a, w->queues[j->qi].keys.result_prefix, j->job->id,
                    j->job->id_len);
    (void)drv_redis_send(w->queues[j->qi].cmd, 0, &a, on_written, NULL);
    drv_argv_fini(&a);
}
