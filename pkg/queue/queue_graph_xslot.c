/*
 * queue_graph_xslot.c -- graph hand-offs between hash slots on Redis
 * Cluster (doc/pipeline-graphs.md, "A node on another queue, and Redis
 * Cluster").
 *
 * DESIGN. One script may touch one slot, and a node on another queue T
 * lives in another slot than its run (on queue H). So a hand-off between
 * them is cut in steps, each one script or command in one slot, each
 * safe to repeat:
 *   H -> T  the settle (or apply) script that makes the node ready puts
 *           the entry in H's outbox (atomically with what caused it);
 *           the handoff script in T writes it only while its marker is
 *           absent, and sets the marker to the new entry id in the same
 *           run; a ZREM takes the record out of the outbox.
 *   T -> H  the settle script of the node's entry, in T, acknowledges it
 *           and puts the outcome in T's inbox; the graph script applies
 *           it to the run in H, guarded by the node's state (an outcome
 *           applied twice changes nothing the second time); a ZREM takes
 *           it out of the inbox.
 * A crash between the steps leaves the record in its box; the scan
 * script gives every worker serving the box's queue the records not
 * tried for a while, and the steps are taken again. The marker makes a
 * repeated XADD a no-op, the node's state a repeated apply. A cancel
 * sets the marker of a node not yet handed off to "cancelled", so its
 * hand-off never writes it.
 *
 * Like the rest of pkg/queue, this builds commands and parses replies.
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "drover/buf.h"
#include "drover/common.h"
#include "drover/queue_graph.h"
#include "drover/redis.h"

/*
 * graph_handoff: KEYS = the target queue's jobs, the marker. ARGV = the
 * outbox record. Returns the entry id (the one written before, if any) or
 * "cancelled".
 */
const struct drv_queue_script drv_queue_graph_handoff_script = {
    "graph_handoff",
    "local jobs, marker = KEYS[1], KEYS[2]\n"
    "local t = redis.call('TYPE', jobs)['ok']\n"
    "if t ~= 'none' and t ~= 'stream' then\n"
    "  return redis.error_reply('WRONGTYPE key ' .. jobs .. ' holds a ' .. t ..\n"
    "    ', not a stream')\n"
    "end\n"
    "-- the marker says the entry was written (its id) or taken back\n"
    "-- (\"cancelled\"): a hand-off sent again writes nothing\n"
    "local x = redis.call('GET', marker)\n"
    "if x then return x end\n"
    "local r = cjson.decode(ARGV[1])\n"
    "x = redis.call('XADD', jobs, '*', unpack(r[4]))\n"
    "redis.call('SET', marker, x, 'PX', r[3])\n"
    "return x\n"
};

/*
 * graph_takeback: KEYS = delayed, jobs, cancel of the entry's queue, its
 * job hash, the marker. ARGV = group, now_ms, ttl of a "cancelled"
 * marker, job id. Returns 0 (nothing out), 1 deleted, 2 delayed retry
 * removed, 3 marked for its worker.
 */
const struct drv_queue_script drv_queue_graph_takeback_script = {
    "graph_takeback",
    "local delayed, jobs, marks, hkey, marker =\n"
    "  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]\n"
    "local group, now, ttl, jid = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "local eid = redis.call('GET', marker)\n"
    "if not eid then\n"
    "  -- not handed off yet: it never will be now\n"
    "  redis.call('SET', marker, 'cancelled', 'PX', ttl)\n"
    "  return 0\n"
    "end\n"
    "if eid == 'cancelled' then return 0 end\n"
    "if redis.call('ZREM', delayed, jid) == 1 then\n"
    "  redis.call('DEL', hkey)\n"
    "  return 2\n"
    "end\n"
    "local p = redis.pcall('XPENDING', jobs, group, eid, eid, 1)\n"
    "if type(p) == 'table' and p.err == nil and p[1] then\n"
    "  redis.call('ZADD', marks, now, eid)\n"
    "  return 3\n"
    "end\n"
    "if redis.call('XDEL', jobs, eid) == 1 then return 1 end\n"
    "return 0\n"
};

/*
 * graph_scan: KEYS = the queue's outbox, inbox. ARGV = prefix, cutoff_ms,
 * now_ms, limit. Returns [[kind, queue, key, record]...] of the records
 * last tried at or before cutoff_ms (each marked tried now).
 */
const struct drv_queue_script drv_queue_graph_scan_script = {
    "graph_scan",
    "local P, cutoff, now, limit = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "local res = {}\n"
    "for _, kb in ipairs({{KEYS[1], 'out'}, {KEYS[2], 'in'}}) do\n"
    "  local t = redis.call('TYPE', kb[1])['ok']\n"
    "  if t ~= 'none' and t ~= 'zset' then\n"
    "    return redis.error_reply('WRONGTYPE key ' .. kb[1] .. ' holds a ' .. t ..\n"
    "      ', not a zset')\n"
    "  end\n"
    "  local m = redis.call('ZRANGEBYSCORE', kb[1], '-inf', cutoff, 'LIMIT', 0,\n"
    "    limit)\n"
    "  for _, rec in ipairs(m) do\n"
    "    -- not looked at again before the next cutoff\n"
    "    redis.call('ZADD', kb[1], 'XX', now, rec)\n"
    "    local r = cjson.decode(rec)\n"
    "    if kb[2] == 'out' then\n"
    "      res[#res+1] = {'out', r[1], r[2], rec}\n"
    "    else\n"
    "      res[#res+1] = {'in', r[1], P .. ':{' .. r[1] .. '}:run:' .. r[2], rec}\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return res\n"
};

#define MARKER_CANCELLED_TTL_MS (7LL * 86400000) /* a taken-back marker */

static char *
qkey(const char *prefix, const char *queue, const char *what)
{
    struct drv_buf b;

    drv_buf_init(&b);
    drv_buf_addf(&b, "%s:{%s}:%s", prefix, queue, what);
    return drv_buf_take(&b, NULL);
}

void
drv_queue_graph_boxes_fini(struct drv_queue_graph_boxes *b)
{
    size_t i;

    for (i = 0; i < b->n; i++) {
        free(b->v[i].queue);
        free(b->v[i].key);
        free(b->v[i].rec);
    }
    free(b->v);
    memset(b, 0, sizeof *b);
}

/* [kind, queue, key, record] into out. */
static int
add_box(const redisReply *e, struct drv_queue_graph_boxes *out,
        struct drv_err *err)
{
    struct drv_queue_graph_box *b;
    size_t i;

    if (e->type != REDIS_REPLY_ARRAY || e->elements != 4)
        return drv_err_set(err, DRV_EPROTO, "graph: hand-off of unexpected "
                           "shape");
    for (i = 0; i < 4; i++)
        if (e->element[i]->type != REDIS_REPLY_STRING)
            return drv_err_set(err, DRV_EPROTO, "graph: hand-off of "
                               "unexpected shape");
    if (drv_redis_reply_len(e->element[3]) > e->element[3]->len) {
        /* cut by the connection's max_string_bytes: it stays in its box */
        out->oversized++;
        return 0;
    }
    if (out->n == out->cap) {
        out->cap = out->cap ? out->cap * 2 : 4;
        out->v = drv_xrealloc(out->v, out->cap * sizeof *out->v);
    }
    b = &out->v[out->n++];
    b->in = strcmp(e->element[0]->str, "in") == 0;
    b->queue = drv_xstrndup(e->element[1]->str, e->element[1]->len);
    b->key = drv_xstrndup(e->element[2]->str, e->element[2]->len);
    b->rec = drv_xstrndup(e->element[3]->str, e->element[3]->len);
    b->rec_len = e->element[3]->len;
    return 0;
}

/* Elements from..end of array r, each [kind, queue, key, record], into
 * out. */
static int
add_boxes(const redisReply *r, size_t from, struct drv_queue_graph_boxes *out,
          struct drv_err *err)
{
    size_t i;
    int rc;

    for (i = from; i < r->elements; i++) {
        rc = add_box(r->element[i], out, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int
drv_queue_graph_reply(const redisReply *r, long long *code,
                      struct drv_queue_graph_boxes *out, struct drv_err *err)
{
    if (r != NULL && r->type == REDIS_REPLY_ERROR)
        return drv_err_set(err, DRV_EREDIS, "graph: %.*s", (int)r->len,
                           r->str);
    if (r != NULL && r->type == REDIS_REPLY_INTEGER) {
        *code = r->integer;
        return 0;
    }
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
        r->element[0]->type != REDIS_REPLY_INTEGER)
        return drv_err_set(err, DRV_EPROTO, "graph: reply of unexpected "
                           "shape");
    *code = r->element[0]->integer;
    return add_boxes(r, 1, out, err);
}

int
drv_queue_graph_scan_parse(const redisReply *r,
                           struct drv_queue_graph_boxes *out,
                           struct drv_err *err)
{
    if (r != NULL && r->type == REDIS_REPLY_ERROR)
        return drv_err_set(err, DRV_EREDIS, "graph scan: %.*s", (int)r->len,
                           r->str);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return drv_err_set(err, DRV_EPROTO, "graph scan: reply of "
                           "unexpected shape");
    return add_boxes(r, 0, out, err);
}

void
drv_queue_graph_apply(struct drv_script_call *c, const char *prefix,
                      const struct drv_queue_graph_box *b, int64_t now_ms)
{
    struct drv_queue_keys k;
    int i;

    DRV_ASSERT(b->in);
    drv_queue_keys_init(&k, prefix, b->queue);
    drv_script_call_init(c, &drv_queue_graph_script);
    drv_argv_adds(&c->keys, k.jobs);
    drv_argv_adds(&c->keys, k.delayed);
    drv_argv_adds(&c->keys, k.dead);
    drv_argv_adds(&c->keys, k.stats);
    drv_argv_adds(&c->keys, b->key); /* no job hash: the run stands in */
    drv_argv_adds(&c->keys, b->key);
    drv_argv_adds(&c->args, "apply");
    drv_argv_adds(&c->args, DRV_QUEUE_GROUP);
    for (i = 0; i < 3; i++)
        drv_argv_adds(&c->args, ""); /* consumer, entry, job id */
    drv_argv_addll(&c->args, (long long)now_ms);
    drv_argv_adds(&c->args, prefix);
    for (i = 0; i < 8; i++)
        drv_argv_adds(&c->args, "0"); /* ARGV[8..15]: unused */
    drv_argv_adds(&c->args, "1");
    drv_argv_add(&c->args, b->rec, b->rec_len);
    drv_queue_keys_fini(&k);
}

void
drv_queue_graph_handoff(struct drv_script_call *c, const char *prefix,
                        const struct drv_queue_graph_box *b)
{
    char *jobs = qkey(prefix, b->queue, "jobs");

    DRV_ASSERT(!b->in);
    drv_script_call_init(c, &drv_queue_graph_handoff_script);
    drv_argv_adds(&c->keys, jobs);
    drv_argv_adds(&c->keys, b->key);
    drv_argv_add(&c->args, b->rec, b->rec_len);
    free(jobs);
}

void
drv_queue_graph_unbox(struct drv_argv *a, const char *prefix,
                      const char *queue, const struct drv_queue_graph_box *b)
{
    char *box = qkey(prefix, queue, b->in ? "graph:inbox" : "graph:outbox");

    drv_argv_reset(a);
    drv_argv_adds(a, "ZREM");
    drv_argv_adds(a, box);
    drv_argv_add(a, b->rec, b->rec_len);
    free(box);
}

void
drv_queue_graph_scan(struct drv_script_call *c, const char *prefix,
                     const char *queue, int64_t cutoff_ms, int64_t now_ms,
                     int limit)
{
    char *out = qkey(prefix, queue, "graph:outbox");
    char *in = qkey(prefix, queue, "graph:inbox");

    drv_script_call_init(c, &drv_queue_graph_scan_script);
    drv_argv_adds(&c->keys, out);
    drv_argv_adds(&c->keys, in);
    drv_argv_adds(&c->args, prefix);
    drv_argv_addll(&c->args, (long long)cutoff_ms);
    drv_argv_addll(&c->args, (long long)now_ms);
    drv_argv_addll(&c->args, (long long)limit);
    free(out);
    free(in);
}

void
drv_queue_graph_takeback(struct drv_script_call *c, const char *prefix,
                         const struct drv_queue_graph_away *a,
                         int64_t now_ms)
{
    struct drv_queue_keys k;

    drv_queue_keys_init(&k, prefix, a->queue);
    drv_script_call_init(c, &drv_queue_graph_takeback_script);
    drv_argv_adds(&c->keys, k.delayed);
    drv_argv_adds(&c->keys, k.jobs);
    drv_argv_adds(&c->keys, k.cancel);
    drv_argv_addcat(&c->keys, k.job_prefix, a->job_id, a->job_id_len);
    drv_argv_adds(&c->keys, a->marker);
    drv_argv_adds(&c->args, DRV_QUEUE_GROUP);
    drv_argv_addll(&c->args, (long long)now_ms);
    drv_argv_addll(&c->args, MARKER_CANCELLED_TTL_MS);
    drv_argv_add(&c->args, a->job_id, a->job_id_len);
    drv_queue_keys_fini(&k);
}
