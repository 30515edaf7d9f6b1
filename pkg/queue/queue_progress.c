/*
 * queue_progress.c -- the commands that write a running job's progress
 * to its result hash (see drover/queue_cancel.h).
 */
#include <stdlib.h>
#include <string.h>

#include "drover/common.h"
#include "drover/queue_cancel.h"

void
drv_queue_progress_build(struct drv_queue_cmds *c,
                         const struct drv_queue_keys *k,
                         const struct drv_queue_progress *p)
{
    struct drv_argv *a;
    char *chan;

    a = drv_queue_cmds_add(c);
    drv_argv_adds(a, "HSET");
    drv_argv_addcat(a, k->result_prefix, p->id, p->id_len);
    drv_argv_adds(a, "status");
    drv_argv_adds(a, "running");
    drv_argv_adds(a, "progress");
    drv_argv_addll(a, p->pct);
    drv_argv_adds(a, "progress_msg");
    drv_argv_add(a, p->msg != NULL ? p->msg : "", p->msg_len);
    drv_argv_adds(a, "worker");
    drv_argv_adds(a, p->worker);
    drv_argv_adds(a, "started_at");
    drv_argv_addll(a, (long long)p->started_ms);
    a = drv_queue_cmds_add(c);
    drv_argv_adds(a, "PEXPIRE");
    drv_argv_addcat(a, k->result_prefix, p->id, p->id_len);
    drv_argv_addll(a, (long long)p->ttl_ms);
    chan = drv_queue_done_channel(k);
    a = drv_queue_cmds_add(c);
    drv_argv_adds(a, "PUBLISH");
    drv_argv_adds(a, chan);
    drv_argv_addcat(a, k->result_prefix, p->id, p->id_len);
    free(chan);
}
