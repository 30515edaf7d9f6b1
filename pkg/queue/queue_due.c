/*
 * queue_due.c -- the due index P:due (see drover/queue.h) and the look at
 * the head of a queue's delayed set: the commands that let a worker run
 * the mover only for queues that have a job falling due.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "drover/common.h"
#include "drover/queue.h"
#include "drover/redis.h"

#include "queue_int.h"

void
drv_queue_due_note(struct drv_argv *out, const struct drv_queue_keys *k,
                   int64_t due_ms)
{
    char ms[24];

    snprintf(ms, sizeof ms, "%" PRId64, due_ms);
    drv__queue_command(out, "ZADD", k->due, ms, NULL);
    drv_argv_addf(out, "%s@%s", k->name, ms);
}

void
drv_queue_due_read(struct drv_argv *out, const char *due_key, int64_t now_ms,
                   int limit)
{
    drv_argv_reset(out);
    drv_argv_adds(out, "ZRANGEBYSCORE");
    drv_argv_adds(out, due_key);
    drv_argv_adds(out, "-inf");
    drv_argv_addll(out, (long long)now_ms);
    drv_argv_adds(out, "WITHSCORES");
    drv_argv_adds(out, "LIMIT");
    drv_argv_adds(out, "0");
    drv_argv_addll(out, limit);
}

long
drv_queue_due_member_queue(const char *member, size_t len)
{
    size_t i;

    for (i = len; i > 0; i--)
        if (member[i - 1] == '@')
            return (long)(i - 1);
    return -1;
}

void
drv_queue_delayed_head(struct drv_argv *out, const struct drv_queue_keys *k)
{
    drv__queue_command(out, "ZRANGEBYSCORE", k->delayed, "-inf", "+inf",
                       "WITHSCORES", "LIMIT", "0", "1", NULL);
}
