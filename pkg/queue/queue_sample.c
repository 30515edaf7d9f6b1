/*
 * queue_sample.c -- the commands that measure a queue (ready, running,
 * delayed, dead) and the parsing of their replies.
 *
 * Per queue, four commands on keys of one hash tag (so they may go in one
 * MULTI, also on a Redis Cluster):
 *
 *   XLEN P:{Q}:jobs           entries in the stream
 *   XINFO GROUPS P:{Q}:jobs   the group's pending count and lag
 *   ZCARD P:{Q}:delayed       waiting for a retry or their time
 *   XLEN P:{Q}:dead           dead entries
 *
 * READY (not yet delivered) is the group's lag when Redis knows it (7.0+;
 * nil when deletions make it unknown), else XLEN - pending: every settle
 * deletes its entry, so what remains in the stream is ready or pending.
 * Without the group (no worker ever started) it is all of XLEN. RUNNING
 * is the group's pending count (delivered, not acked).
 */
#include <string.h>

#include <hiredis/hiredis.h>

#include "drover/common.h"
#include "drover/queue.h"

void
drv_queue_sample_cmds(const struct drv_queue_keys *k,
                      struct drv_argv cmds[DRV_QUEUE_SAMPLE_CMDS])
{
    int i;

    for (i = 0; i < DRV_QUEUE_SAMPLE_CMDS; i++)
        drv_argv_reset(&cmds[i]);
    drv_argv_adds(&cmds[0], "XLEN");
    drv_argv_adds(&cmds[0], k->jobs);
    drv_argv_adds(&cmds[1], "XINFO");
    drv_argv_adds(&cmds[1], "GROUPS");
    drv_argv_adds(&cmds[1], k->jobs);
    drv_argv_adds(&cmds[2], "ZCARD");
    drv_argv_adds(&cmds[2], k->delayed);
    drv_argv_adds(&cmds[3], "XLEN");
    drv_argv_adds(&cmds[3], k->dead);
}

const struct redisReply *
drv_queue_reply_map_get(const struct redisReply *m, const char *name)
{
    size_t i;

    if (m == NULL || m->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (i = 0; i + 1 < m->elements; i += 2)
        if (m->element[i]->type == REDIS_REPLY_STRING &&
            strcmp(m->element[i]->str, name) == 0)
            return m->element[i + 1];
    return NULL;
}

static int
int_reply(const redisReply *r, int64_t *out, const char *what,
          struct drv_err *err)
{
    if (r->type == REDIS_REPLY_INTEGER) {
        *out = r->integer;
        return 0;
    }
    if (r->type == REDIS_REPLY_ERROR)
        return drv_err_set(err, DRV_EREDIS, "%s: %.*s", what, (int)r->len,
                           r->str);
    return drv_err_set(err, DRV_EPROTO, "%s: not an integer", what);
}

int
drv_queue_sample_ready_running(const redisReply *xlen,
                               const redisReply *groups,
                               struct drv_queue_sample *s,
                               struct drv_err *err)
{
    const redisReply *g = NULL, *name, *pending, *lag;
    int64_t len;
    size_t i;
    int rc;

    rc = int_reply(xlen, &len, "XLEN", err);
    if (rc < 0)
        return rc;
    s->ready = len;
    s->running = 0;
    if (groups->type == REDIS_REPLY_ERROR && len == 0)
        return 0; /* "no such key": nothing was ever enqueued */
    if (groups->type != REDIS_REPLY_ARRAY)
        return int_reply(groups, &len, "XINFO GROUPS", err);
    for (i = 0; i < groups->elements && g == NULL; i++) {
        name = drv_queue_reply_map_get(groups->element[i], "name");
        if (name != NULL && name->type == REDIS_REPLY_STRING &&
            strcmp(name->str, DRV_QUEUE_GROUP) == 0)
            g = groups->element[i];
    }
    if (g == NULL)
        return 0; /* no worker created the group yet: nothing delivered */
    pending = drv_queue_reply_map_get(g, "pending");
    lag = drv_queue_reply_map_get(g, "lag");
    s->running = pending != NULL && pending->type == REDIS_REPLY_INTEGER
                     ? pending->integer : -1;
    if (lag != NULL && lag->type == REDIS_REPLY_INTEGER)
        s->ready = lag->integer;
    else if (s->running >= 0)
        s->ready = len > s->running ? len - s->running : 0;
    else
        s->ready = -1;
    return 0;
}

int
drv_queue_sample_parse(const redisReply *reply, struct drv_queue_sample *s,
                       struct drv_err *err)
{
    int rc;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != DRV_QUEUE_SAMPLE_CMDS) {
        if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
            return drv_err_set(err, DRV_EREDIS, "%.*s", (int)reply->len,
                               reply->str);
        return drv_err_set(err, DRV_EPROTO, "queue sample: reply of "
                           "unexpected shape");
    }
    rc = drv_queue_sample_ready_running(reply->element[0],
                                        reply->element[1], s, err);
    if (rc == 0)
        rc = int_reply(reply->element[2], &s->delayed, "ZCARD", err);
    if (rc == 0)
        rc = int_reply(reply->element[3], &s->dead, "XLEN", err);
    return rc;
}
