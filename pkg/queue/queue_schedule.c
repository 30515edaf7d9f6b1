/*
 * queue_schedule.c -- a schedule's tick, enqueued exactly once, and what
 * `drover schedules` reads (see "schedules" in queue.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "drover/common.h"
#include "drover/json.h"
#include "drover/parse.h"
#include "drover/queue.h"

#include "queue_int.h"

/*
 * schedule: KEYS = the schedule key, the queue's stream. ARGV = tick
 * (Unix ms), then the entry's field, value pairs. The stored tick only
 * grows: a tick at or before it is a tick some worker already enqueued
 * (or one older than the newest enqueued, which must not come after it).
 *
 * Redis's clock is the judge of "ahead": a tick more than
 * DRV_QUEUE_SCHEDULE_AHEAD_MS after Redis's TIME comes from a worker
 * whose clock runs fast; it is refused (-1) and stores nothing, so it
 * cannot fence out every real tick until its time comes. A stored tick
 * that far ahead (written before this check, or by hand) is no fence:
 * the tick replaces it (2). A stored value that is not a number is
 * replaced (1).
 */
const struct drv_queue_script drv_queue_schedule_script = {
    "schedule",
    "local t = redis.call('TIME')\n"
    "local ahead = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "    + " DRV_STR(DRV_QUEUE_SCHEDULE_AHEAD_MS) "\n"
    "local last = tonumber(redis.call('GET', KEYS[1]) or '')\n"
    "local tick = tonumber(ARGV[1])\n"
    "if tick > ahead then return -1 end\n"
    "local rc = 1\n"
    "if last ~= nil and last > ahead then rc = 2\n"
    "elseif last ~= nil and last >= tick then return 0 end\n"
    "redis.call('SET', KEYS[1], ARGV[1])\n"
    "redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))\n"
    "return rc\n",
};

char *
drv_queue_schedule_key(const char *prefix, const char *queue,
                       const char *name)
{
    size_t n = strlen(prefix) + strlen(queue) + strlen(name) + 16;
    char *s = drv_xmalloc(n);

    snprintf(s, n, "%s:{%s}:sched:%s", prefix, queue, name);
    return s;
}

void
drv_queue_schedule_tick(struct drv_script_call *c,
                        const struct drv_queue_keys *k,
                        const char *sched_key,
                        const struct drv_queue_tick *t)
{
    int i;

    drv_script_call_init(c, &drv_queue_schedule_script);
    drv__queue_adds(&c->keys, sched_key, k->jobs, NULL);
    drv_argv_addll(&c->args, (long long)t->tick_ms);
    drv_argv_adds(&c->args, t->kind);
    drv_argv_adds(&c->args, t->target);
    for (i = 0; t->fields != NULL && i < t->fields->argc; i++)
        drv_argv_add(&c->args, t->fields->argv[i], t->fields->argvlen[i]);
    drv_argv_adds(&c->args, "schedule");
    drv_argv_adds(&c->args, t->schedule);
    drv_argv_adds(&c->args, "id");
    drv_argv_addf(&c->args, "%s@%lld", t->schedule, (long long)t->tick_ms);
}

int
drv_queue_schedule_last_build(struct drv_queue_cmds *c, const char *sched_key)
{
    drv__queue_command(drv_queue_cmds_add(c), "GET", sched_key, NULL);
    return 1;
}

int
drv_queue_schedule_last_parse(struct redisReply *const *r, size_t n,
                              int64_t *last_ms, struct drv_err *err)
{
    int rc;

    *last_ms = -1;
    rc = drv__queue_check_n(n, 1, "schedule", err);
    if (rc == 0)
        rc = drv__queue_check_reply(r[0], -1, "schedule", err);
    if (rc < 0)
        return rc;
    if (r[0]->type == REDIS_REPLY_STRING &&
        drv_parse_int(r[0]->str, 0, INT64_MAX, last_ms) < 0)
        *last_ms = -1;  /* not a tick: shown as never */
    return 0;
}

void
drv_queue_schedule_json(struct drv_json *j,
                        const struct drv_queue_schedule_info *s)
{
    drv_json_object_begin(j);
    drv_json_member_strz(j, "name", s->name);
    drv_json_member_strz(j, "cron", s->cron);
    drv_json_member_int(j, "every_ms", s->every_ms > 0 ? s->every_ms : -1,
                        1);
    drv_json_member_strz(j, "timezone", s->timezone);
    drv_json_member_strz(j, "queue", s->queue);
    drv_json_member_strz(j, "job", s->job);
    drv_json_member_strz(j, "pipeline", s->pipeline);
    drv_json_member_int(j, "last_tick_at", s->last_ms, 1);
    drv_json_member_int(j, "next_tick_at", s->next_ms, 1);
    drv_json_object_end(j);
}
