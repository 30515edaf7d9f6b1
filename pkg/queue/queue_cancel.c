/*
 * queue_cancel.c -- the cancel script, its builder and parser, and the
 * worker's read of the cancel markers (see drover/queue_cancel.h).
 */
#include <string.h>

#include <hiredis/hiredis.h>

#include "drover/common.h"
#include "drover/json.h"
#include "drover/queue_cancel.h"
#include "queue_int.h"

/*
 * cancel: KEYS = jobs, delayed, cancel, stats, result key of the id, the
 * delayed-job hash key of the id. ARGV = id, most entries read of the
 * stream (and members of the delayed set), group, stale_ms.
 * Returns {ready deleted, delayed removed, running marked, incomplete}.
 *
 * A delayed job waits under member id, or id#TAG when another job with
 * that id was waiting already; each such member whose hash holds the id
 * goes. Every stream entry whose id field (or entry id) is the id: not
 * delivered -> XDEL; delivered (in the group's PEL) -> a marker for its
 * worker. The time is Redis's own (TIME), so markers of every client
 * compare.
 */
const struct drv_queue_script drv_queue_cancel_script = {
    "cancel",
    "local jobs, delayed, cancel, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4]\n"
    "local rkey, hkey = KEYS[5], KEYS[6]\n"
    "local id, maxn, group = ARGV[1], tonumber(ARGV[2]), ARGV[3]\n"
    "local stale = tonumber(ARGV[4])\n"
    "for _, kt in ipairs({{jobs, 'stream'}, {delayed, 'zset'},\n"
    "    {cancel, 'zset'}, {stats, 'hash'}, {rkey, 'hash'}}) do\n"
    "  local t = redis.call('TYPE', kt[1])['ok']\n"
    "  if t ~= 'none' and t ~= kt[2] then\n"
    "    return redis.error_reply('WRONGTYPE key ' .. kt[1] .. ' holds a ' ..\n"
    "      t .. ', not a ' .. kt[2])\n"
    "  end\n"
    "end\n"
    "local tm = redis.call('TIME')\n"
    "local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)\n"
    "local incomplete = 0\n"
    "local nready, ndelayed, nrunning, attempts = 0, 0, 0, 0\n"
    "local pre = string.sub(hkey, 1, #hkey - #id)\n"
    "local function jid_of(f, dflt)\n"
    "  local jid, att = dflt, nil\n"
    "  for i = 1, #f, 2 do\n"
    "    if f[i] == 'id' and f[i+1] ~= '' then jid = f[i+1] end\n"
    "    if f[i] == 'attempt' then att = tonumber(f[i+1]) end\n"
    "  end\n"
    "  return jid, att\n"
    "end\n"
    "-- a removed job frees its id for unique_for (a retry waiting in the\n"
    "-- delayed set still holds it); an id that succeeded stays taken\n"
    "local base = string.sub(stats, 1, #stats - 5)\n"
    "local function free_unique(f)\n"
    "  for i = 1, #f, 2 do\n"
    "    if f[i] == 'job' then\n"
    "      local uk = base .. 'unique:' .. f[i+1] .. ':' .. id\n"
    "      local v = redis.pcall('GET', uk)\n"
    "      if type(v) == 'string' and v ~= 'ok' then\n"
    "        redis.call('DEL', uk)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local function unwait(m)\n"
    "  local f = redis.call('HGETALL', pre .. m)\n"
    "  local jid, att = jid_of(f, m)\n"
    "  if jid ~= id then return end\n"
    "  redis.call('DEL', pre .. m)\n"
    "  redis.call('ZREM', delayed, m)\n"
    "  free_unique(f)\n"
    "  ndelayed = ndelayed + 1\n"
    "  if att and att > attempts then attempts = att end\n"
    "end\n"
    "if redis.call('ZSCORE', delayed, id) then unwait(id) end\n"
    "do\n"
    "  local pat = (string.gsub(id, '[%*%?%[%]\\\\]', '\\\\%0')) .. '#*'\n"
    "  local cur, seen, found = '0', 0, {}\n"
    "  repeat\n"
    "    local r = redis.call('ZSCAN', delayed, cur, 'MATCH', pat,\n"
    "      'COUNT', 1000)\n"
    "    cur = r[1]\n"
    "    for i = 1, #r[2], 2 do found[#found+1] = r[2][i] end\n"
    "    seen = seen + 1000\n"
    "  until cur == '0' or seen >= maxn\n"
    "  if cur ~= '0' then incomplete = 1 end\n"
    "  for _, m in ipairs(found) do unwait(m) end\n"
    "end\n"
    "local cursor, seen, hits = '-', 0, {}\n"
    "while true do\n"
    "  if seen >= maxn then incomplete = 1; break end\n"
    "  local batch = redis.call('XRANGE', jobs, cursor, '+', 'COUNT', 500)\n"
    "  if #batch == 0 then break end\n"
    "  for _, e in ipairs(batch) do\n"
    "    local jid, att = jid_of(e[2], e[1])\n"
    "    if jid == id or e[1] == id then\n"
    "      hits[#hits+1] = {e[1], att, e[2]}\n"
    "    end\n"
    "  end\n"
    "  seen = seen + #batch\n"
    "  cursor = '(' .. batch[#batch][1]\n"
    "end\n"
    "for _, h in ipairs(hits) do\n"
    "  local eid = h[1]\n"
    "  local p = redis.pcall('XPENDING', jobs, group, eid, eid, 1)\n"
    "  if type(p) == 'table' and p.err == nil and p[1] then\n"
    "    redis.call('ZADD', cancel, 'NX', now, eid)\n"
    "    nrunning = nrunning + 1\n"
    "  else\n"
    "    redis.call('XDEL', jobs, eid)\n"
    "    nready = nready + 1\n"
    "    free_unique(h[3])\n"
    "    if h[2] and h[2] > attempts then attempts = h[2] end\n"
    "  end\n"
    "end\n"
    "if nready + ndelayed > 0 then\n"
    "  redis.call('DEL', rkey)\n"
    "  redis.call('HSET', rkey, 'status', 'cancelled', 'result', '',\n"
    "    'error', 'cancelled', 'attempts', attempts, 'finished_at', now)\n"
    "  redis.call('PEXPIRE', rkey, " DRV_QUEUE_CANCEL_TTL_STR ")\n"
    "  redis.call('HINCRBY', stats, 'cancelled', nready + ndelayed)\n"
    "  redis.call('PUBLISH', string.sub(stats, 1, #stats - 5) .. 'done',\n"
    "    rkey)\n"
    "end\n"
    "-- markers whose job ended before its worker saw them\n"
    "local old = redis.call('ZRANGEBYSCORE', cancel, '-inf', now - stale,\n"
    "  'LIMIT', 0, 100)\n"
    "for _, eid in ipairs(old) do\n"
    "  local p = redis.pcall('XPENDING', jobs, group, eid, eid, 1)\n"
    "  if type(p) ~= 'table' or p.err ~= nil or not p[1] then\n"
    "    redis.call('ZREM', cancel, eid)\n"
    "  end\n"
    "end\n"
    "return {nready, ndelayed, nrunning, incomplete}\n"
};

int
drv_queue_cancel_build(struct drv_queue_cmds *c,
                       const struct drv_queue_keys *k, const char *id,
                       size_t id_len)
{
    struct drv_script_call call;

    drv_script_call_init(&call, &drv_queue_cancel_script);
    drv__queue_adds(&call.keys, k->jobs, k->delayed, k->cancel, k->stats,
                    NULL);
    drv_argv_addcat(&call.keys, k->result_prefix, id, id_len);
    drv_argv_addcat(&call.keys, k->job_prefix, id, id_len);
    drv__queue_scan_args(&call.args, id, id_len);
    drv_argv_addll(&call.args, DRV_QUEUE_CANCEL_STALE_MS);
    drv__queue_cmds_eval(c, &call);
    return 1;
}

int
drv_queue_cancel_parse(struct redisReply *const *r, size_t n,
                       struct drv_queue_cancel *out, struct drv_err *err)
{
    int rc = drv__queue_check_n(n, 1, "cancel", err);

    memset(out, 0, sizeof *out);
    if (rc == 0)
        rc = drv__queue_check_ints(r[0], 4, "cancel", err);
    if (rc < 0)
        return rc;
    out->ready = r[0]->element[0]->integer;
    out->delayed = r[0]->element[1]->integer;
    out->running = r[0]->element[2]->integer;
    out->scan_incomplete = r[0]->element[3]->integer != 0;
    return 0;
}

int64_t
drv_queue_cancel_total(const struct drv_queue_cancel *cn)
{
    return cn->ready + cn->delayed + cn->running;
}

void
drv_queue_cancel_read(struct drv_argv *out, const struct drv_queue_keys *k)
{
    drv__queue_command(out, "ZRANGE", k->cancel, "0", "-1", NULL);
}

char *
drv_queue_done_channel(const struct drv_queue_keys *k)
{
    /* the stats key is P:{Q}:stats */
    size_t n = strlen(k->stats) - strlen("stats");
    char *s = drv_xmalloc(n + sizeof "done");

    memcpy(s, k->stats, n);
    memcpy(s + n, "done", sizeof "done");
    return s;
}

void
drv_queue_cancel_json(struct drv_json *j, const char *queue, const char *id,
                      const struct drv_queue_cancel *cn)
{
    drv__queue_json_job_begin(j, queue, id, drv_queue_cancel_total(cn) > 0);
    drv_json_member_int(j, "ready", cn->ready, 0);
    drv_json_member_int(j, "delayed", cn->delayed, 0);
    drv_json_member_int(j, "running", cn->running, 0);
    drv_json_member_bool(j, "scan_incomplete", cn->scan_incomplete);
    drv_json_object_end(j);
}
