/*
 * queue_graph.c -- graph pipelines in Redis: the graph settle script,
 * its call, and the graph's spec as the script reads it.
 *
 * DESIGN. A run's state is one hash in the slot of its home queue (see
 * drover/queue_graph.h). Every graph entry is settled by ONE run of the
 * graph script, which first checks that the caller still owns the entry
 * in the PEL (a reclaimed entry is the new owner's to settle), then,
 * atomically with the entry's XACK and XDEL:
 *   - records the node's outcome in the run hash;
 *   - on success decrements N.pending of each dependant and writes the
 *     entry of each that reached 0 (its input built from the results in
 *     the hash), or skips it (a false `when`) and goes on downstream;
 *   - for an item of a fan-out, keeps its result under its index,
 *     releases the next item (so at most max_parallel are out across all
 *     workers) and, after the last one, finishes the node with the
 *     results in order;
 *   - on a dead node ends the run dead: waiting nodes are cancelled, no
 *     item is released any more, the on_failure nodes are enqueued.
 * When a run ends (and when a cancel ends it), the script PUBLISHes the
 * run's key on its home queue's P:{Q}:done, the channel drover wait
 * listens on (as it does for a job's result key).
 * A hand-off therefore happens exactly when the entry that causes it is
 * acknowledged: a crash before the script leaves the entry pending (it is
 * reclaimed and run again, and settled then), a crash after it finds the
 * hand-off done. The node state also guards it: an outcome for a node
 * that is no longer queued (or an item of a fan-out no longer running)
 * only acknowledges its entry, so nothing is handed off twice.
 *
 * The script builds the keys of the run's hash, its item keys and the
 * streams of nodes on other queues from the prefix: on one Redis that
 * is one atomic run. On Redis Cluster (ARGV xslot) a node on another
 * queue is in another slot: its entry goes into the run queue's outbox
 * instead, the settle of its entry puts the outcome into its own queue's
 * inbox, and the same script applies that record to the run later (kind
 * apply); the steps between are in queue_graph_xslot.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "drover/buf.h"
#include "drover/common.h"
#include "drover/json.h"
#include "drover/queue_graph.h"
#include "queue_int.h"

/*
 * graph: KEYS = jobs, delayed, dead, stats (of the entry's queue), the
 * delayed-job hash of the job id, the run's hash. ARGV = kind (start, ok,
 * retry, dead, cancel, apply), group, consumer, entry id, job id, now_ms, prefix,
 * attempts, text, due_ms, started_at_ms, state ttl ms, spec (start
 * only), dead_max, home queue (start only), xslot ("1" on Redis
 * Cluster), the inbox record (apply only; KEYS are then the run queue's
 * and the run's hash twice). Returns DRV_QUEUE_*, or with hand-offs put
 * in a box [DRV_QUEUE_*, [kind, queue, key, record]...].
 */
const struct drv_queue_script drv_queue_graph_script = {
    "graph",
    "local jobs, delayed, dead, stats, hkey, run =\n"
    "  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]\n"
    "local kind, group, me, eid, jid, now = ARGV[1], ARGV[2], ARGV[3], ARGV[4],\n"
    "  ARGV[5], ARGV[6]\n"
    "local P, attempts, text, due, started = ARGV[7], ARGV[8], ARGV[9],\n"
    "  ARGV[10], ARGV[11]\n"
    "local ttl, deadmax = tonumber(ARGV[12]), tonumber(ARGV[14])\n"
    "-- xslot: on Redis Cluster (a node on another queue is in another slot);\n"
    "-- apply: the outcome of such a node, recorded in its queue's inbox\n"
    "-- (ARGV[17]), applied to the run: no entry of this slot is touched\n"
    "local xslot, applying = ARGV[16] == '1', kind == 'apply'\n"
    "-- hand-offs to other slots this run wrote into a box: {'out', queue,\n"
    "-- marker, record} (an entry for another queue), {'in', home, run key,\n"
    "-- record} (an outcome for a run in another slot)\n"
    "local outs = {}\n"
    "local function reply(code)\n"
    "  if #outs == 0 then return code end\n"
    "  local r = {code}\n"
    "  for i = 1, #outs do r[#r+1] = outs[i] end\n"
    "  return r\n"
    "end\n"
    "for _, kt in ipairs({{jobs, 'stream'}, {delayed, 'zset'}, {dead, 'stream'},\n"
    "                     {stats, 'hash'}, {run, 'hash'}}) do\n"
    "  local t = redis.call('TYPE', kt[1])['ok']\n"
    "  if t ~= 'none' and t ~= kt[2] then\n"
    "    return redis.error_reply('WRONGTYPE key ' .. kt[1] .. ' holds a ' .. t ..\n"
    "      ', not a ' .. kt[2])\n"
    "  end\n"
    "end\n"
    "-- the entry must still be ours: an entry another worker reclaimed is\n"
    "-- settled by that worker, so nothing here runs twice\n"
    "local f, rec = nil, nil\n"
    "if applying then\n"
    "  rec = cjson.decode(ARGV[17])\n"
    "else\n"
    "  local pe = redis.call('XPENDING', jobs, group, eid, eid, 1)\n"
    "  if pe[1] == nil or pe[1][2] ~= me then return 0 end\n"
    "  local fe = redis.call('XRANGE', jobs, eid, eid)\n"
    "  f = fe[1] and fe[1][2]\n"
    "end\n"
    "local function done_entry()\n"
    "  if applying then return end\n"
    "  redis.call('XACK', jobs, group, eid)\n"
    "  redis.call('XDEL', jobs, eid)\n"
    "end\n"
    "if f == nil and not applying then\n"
    "  done_entry()\n"
    "  return 2\n"
    "end\n"
    "local function fget(name)\n"
    "  local v\n"
    "  for i = 1, #f, 2 do if f[i] == name then v = f[i+1] end end\n"
    "  return v\n"
    "end\n"
    "-- f without the fields named in drop, then the pairs of add\n"
    "local function rebuild(drop, add)\n"
    "  local r = {}\n"
    "  for i = 1, #f, 2 do\n"
    "    if not drop[f[i]] then r[#r+1] = f[i]; r[#r+1] = f[i+1] end\n"
    "  end\n"
    "  for i = 1, #add do r[#r+1] = add[i] end\n"
    "  return r\n"
    "end\n"
    "local ctl = {id = true, attempt = true, pipeline = true, step = true,\n"
    "             run = true, node = true, home = true, item = true,\n"
    "             index = true}\n"
    "\n"
    "-- ------------------------------------------------------------ the run\n"
    "local rid, node, idx, home\n"
    "if applying then\n"
    "  home, rid, node, idx = rec[1], rec[2], rec[3], rec[4]\n"
    "  if idx == '' then idx = nil end\n"
    "  kind, attempts, text, started, now = rec[5], rec[6], rec[7], rec[8], rec[9]\n"
    "else\n"
    "  rid, node, idx = fget('run'), fget('node'), fget('index')\n"
    "  home = fget('home')\n"
    "end\n"
    "if kind == 'start' then rid, home = jid, ARGV[15] end\n"
    "local function R(field) return redis.call('HGET', run, field) end\n"
    "local function RS(...) redis.call('HSET', run, ...) end\n"
    "local spec, fields\n"
    "\n"
    "local function qkey(q, what) return P .. ':{' .. q .. '}:' .. what end\n"
    "-- a run ended: drover wait (subscribed on the home queue's done\n"
    "-- channel) reads it again\n"
    "local function announce() redis.call('PUBLISH', qkey(home, 'done'), run) end\n"
    "local function embed(s)\n"
    "  if s == nil or s == false then return 'null' end\n"
    "  if pcall(cjson.decode, s) then return s end\n"
    "  return cjson.encode(s)\n"
    "end\n"
    "local function str(v)\n"
    "  if v == nil or v == cjson.null then return 'null' end\n"
    "  local t = type(v)\n"
    "  if t == 'string' then return v end\n"
    "  if t == 'boolean' then return tostring(v) end\n"
    "  if t == 'number' then\n"
    "    if v == math.floor(v) and math.abs(v) < 1e15 then\n"
    "      return string.format('%d', v)\n"
    "    end\n"
    "    return tostring(v)\n"
    "  end\n"
    "  return cjson.encode(v)\n"
    "end\n"
    "local function decoded(input)\n"
    "  local ok, v = pcall(cjson.decode, input)\n"
    "  if ok then return v end\n"
    "  return input\n"
    "end\n"
    "-- `input`, `input.a.b` (a number picks an array element, from 0) or a\n"
    "-- field of the run\n"
    "local function lookup(path, input)\n"
    "  if path ~= 'input' and string.sub(path, 1, 6) ~= 'input.' then\n"
    "    for i = 1, #fields, 2 do\n"
    "      if fields[i] == path then return fields[i+1] end\n"
    "    end\n"
    "    return nil\n"
    "  end\n"
    "  local v = decoded(input or '')\n"
    "  for seg in string.gmatch(string.sub(path, 7), '[^.]+') do\n"
    "    if type(v) ~= 'table' then return nil end\n"
    "    local nv = v[seg]\n"
    "    if nv == nil and tonumber(seg) then nv = v[tonumber(seg) + 1] end\n"
    "    v = nv\n"
    "  end\n"
    "  return v\n"
    "end\n"
    "local function expand(t, input)\n"
    "  local out, i = {}, 1\n"
    "  while i <= #t do\n"
    "    local c, d = string.sub(t, i, i), string.sub(t, i + 1, i + 1)\n"
    "    if (c == '{' or c == '}') and d == c then\n"
    "      out[#out+1] = c\n"
    "      i = i + 2\n"
    "    elseif c == '{' then\n"
    "      local j = string.find(t, '}', i, true)\n"
    "      out[#out+1] = str(lookup(string.sub(t, i + 1, j - 1), input))\n"
    "      i = j + 1\n"
    "    else\n"
    "      out[#out+1] = c\n"
    "      i = i + 1\n"
    "    end\n"
    "  end\n"
    "  return table.concat(out)\n"
    "end\n"
    "\n"
    "-- the node entry of node n (item i of a fan-out when i is given) on its\n"
    "-- queue; returns the entry id\n"
    "local function enqueue(n, input, i, item)\n"
    "  local nd = spec.nodes[n]\n"
    "  local q = nd.queue or home\n"
    "  local id = rid .. '/' .. n\n"
    "  local add = {'pipeline', spec.name, 'run', rid, 'node', n, 'home', home}\n"
    "  if i ~= nil then\n"
    "    id = id .. '/' .. i\n"
    "    add[#add+1] = 'item'; add[#add+1] = item\n"
    "    add[#add+1] = 'index'; add[#add+1] = i\n"
    "  elseif input ~= nil then\n"
    "    add[#add+1] = 'input'; add[#add+1] = input\n"
    "  end\n"
    "  add[#add+1] = 'id'; add[#add+1] = id\n"
    "  local e = {}\n"
    "  for k = 1, #fields, 2 do\n"
    "    if not ctl[fields[k]] and not (input ~= nil and fields[k] == 'input')\n"
    "    then\n"
    "      e[#e+1] = fields[k]; e[#e+1] = fields[k+1]\n"
    "    end\n"
    "  end\n"
    "  for k = 1, #add do e[#e+1] = add[k] end\n"
    "  if q ~= home and xslot then\n"
    "    -- another slot: into the run's outbox; the worker XADDs it there\n"
    "    -- once (guarded by the marker) and then takes it out of the box\n"
    "    local tail = n\n"
    "    if i ~= nil then tail = n .. '/' .. i end\n"
    "    local marker = qkey(q, 'handoff:') .. #home .. ':' .. home .. ':' ..\n"
    "      (R('nonce') or rid) .. ':' .. tail\n"
    "    local mttl = ttl\n"
    "    if mttl < 86400000 then mttl = 86400000 end\n"
    "    local r = cjson.encode({q, marker, mttl, e})\n"
    "    redis.call('ZADD', qkey(home, 'graph:outbox'), now, r)\n"
    "    outs[#outs+1] = {'out', q, marker, r}\n"
    "    RS(n .. '.queue', q)\n"
    "    redis.call('HINCRBY', run, n .. '.enqueued', 1)\n"
    "    return ''\n"
    "  end\n"
    "  local x = redis.call('XADD', qkey(q, 'jobs'), '*', unpack(e))\n"
    "  RS(n .. '.entry', x, n .. '.queue', q)\n"
    "  redis.call('HINCRBY', run, n .. '.enqueued', 1)\n"
    "  return x\n"
    "end\n"
    "\n"
    "local function input_of(needs)\n"
    "  if #needs == 1 then return R(needs[1] .. '.result') or 'null' end\n"
    "  local parts = {}\n"
    "  for k, m in ipairs(needs) do\n"
    "    parts[k] = cjson.encode(m) .. ':' .. embed(R(m .. '.result'))\n"
    "  end\n"
    "  return '{' .. table.concat(parts, ',') .. '}'\n"
    "end\n"
    "\n"
    "local finish\n"
    "\n"
    "local function ikey(n, what) return run .. ':' .. what .. ':' .. n end\n"
    "\n"
    "-- release the next item of fan-out node n, if any is left\n"
    "local function release(n)\n"
    "  if R('status') ~= 'running' then return end\n"
    "  local nx = tonumber(R(n .. '.next'))\n"
    "  if nx >= tonumber(R(n .. '.items')) then return end\n"
    "  RS(n .. '.next', nx + 1)\n"
    "  local x = enqueue(n, nil, nx, redis.call('LINDEX', ikey(n, 'items'), nx))\n"
    "  redis.call('HSET', ikey(n, 'live'), nx, x)\n"
    "end\n"
    "\n"
    "-- every need of n finished: run it, skip it, or fan it out\n"
    "local function ready(n)\n"
    "  local nd = spec.nodes[n]\n"
    "  local input = nil\n"
    "  if #nd.needs > 0 then input = input_of(nd.needs) end\n"
    "  if nd.when then\n"
    "    local v = expand(nd.when.v, input)\n"
    "    if (v == nd.when.lit) ~= (nd.when.op == '==') then\n"
    "      RS(n .. '.state', 'skipped')\n"
    "      finish(n, 'skipped', 'null')\n"
    "      return\n"
    "    end\n"
    "  end\n"
    "  if nd.fe then\n"
    "    local arr = lookup('input' .. nd.fe, input)\n"
    "    if type(arr) ~= 'table' then\n"
    "      return 'for_each: {input' .. nd.fe .. '} is ' .. str(arr) ..\n"
    "        ', not a JSON array'\n"
    "    end\n"
    "    local k, count = ikey(n, 'items'), #arr\n"
    "    redis.call('DEL', k, ikey(n, 'res'), ikey(n, 'live'))\n"
    "    for s = 1, count, 1000 do\n"
    "      local chunk = {}\n"
    "      for t = s, math.min(s + 999, count) do chunk[#chunk+1] = str(arr[t]) end\n"
    "      redis.call('RPUSH', k, unpack(chunk))\n"
    "    end\n"
    "    RS(n .. '.state', 'running', n .. '.items', count, n .. '.next', 0,\n"
    "      n .. '.done', 0, n .. '.started_at', now)\n"
    "    if count == 0 then\n"
    "      finish(n, 'ok', '[]')\n"
    "      return\n"
    "    end\n"
    "    for _ = 1, math.min(nd.mp, count) do release(n) end\n"
    "    return\n"
    "  end\n"
    "  RS(n .. '.state', 'queued')\n"
    "  enqueue(n, input, nil, nil)\n"
    "end\n"
    "\n"
    "-- results of the nodes nothing needs: the run's result\n"
    "local function run_result()\n"
    "  local leaves = {}\n"
    "  for _, n in ipairs(spec.order) do\n"
    "    local nd = spec.nodes[n]\n"
    "    if #nd.deps == 0 and not nd.of then leaves[#leaves+1] = n end\n"
    "  end\n"
    "  return input_of(leaves)\n"
    "end\n"
    "\n"
    "local function expire()\n"
    "  local ms = ttl\n"
    "  if ms <= 0 then ms = 86400000 end\n"
    "  redis.call('PEXPIRE', run, ms)\n"
    "end\n"
    "\n"
    "-- node n ended the run (status dead or cancelled) with err: the nodes\n"
    "-- still waiting never run, the fan-outs release no more items, and for a\n"
    "-- dead run the on_failure nodes start\n"
    "local function runend(n, err, status)\n"
    "  if R('status') ~= 'running' then return end\n"
    "  RS('status', status, 'error', err, 'dead_node', n, 'finished_at', now)\n"
    "  announce()\n"
    "  local input = cjson.encode({node = n, error = err})\n"
    "  for _, m in ipairs(spec.order) do\n"
    "    local st = R(m .. '.state')\n"
    "    if spec.nodes[m].of and status ~= 'dead' then\n"
    "      RS(m .. '.state', 'cancelled')\n"
    "    elseif spec.nodes[m].of then\n"
    "      RS(m .. '.state', 'queued')\n"
    "      enqueue(m, input, nil, nil)\n"
    "    elseif st == 'waiting' or (st == 'running' and m ~= n) then\n"
    "      RS(m .. '.state', 'cancelled')\n"
    "    end\n"
    "    redis.call('DEL', ikey(m, 'items'), ikey(m, 'res'), ikey(m, 'live'))\n"
    "  end\n"
    "  expire()\n"
    "end\n"
    "local function rundead(n, err) runend(n, err, 'dead') end\n"
    "\n"
    "-- node n reached state st (ok or skipped) with result res: record it and\n"
    "-- hand off to its dependants (each starts when its last need finished)\n"
    "finish = function(n, st, res)\n"
    "  RS(n .. '.state', st, n .. '.result', res, n .. '.finished_at', now)\n"
    "  if R('status') ~= 'running' or spec.nodes[n].of then return end\n"
    "  for _, d in ipairs(spec.nodes[n].deps) do\n"
    "    if redis.call('HINCRBY', run, d .. '.pending', -1) == 0 then\n"
    "      local err = ready(d)\n"
    "      if err then\n"
    "        RS(d .. '.state', 'dead', d .. '.error', err, d .. '.finished_at',\n"
    "          now)\n"
    "        rundead(d, err)\n"
    "        return\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if redis.call('HINCRBY', run, 'left', -1) == 0 and\n"
    "     R('status') == 'running' then\n"
    "    RS('status', 'ok', 'result', run_result(), 'finished_at', now)\n"
    "    announce()\n"
    "    expire()\n"
    "  end\n"
    "end\n"
    "\n"
    "-- ------------------------------------------------------------ the ops\n"
    "local function load_run()\n"
    "  spec = cjson.decode(R('spec'))\n"
    "  fields = cjson.decode(R('fields'))\n"
    "end\n"
    "\n"
    "if kind == 'start' then\n"
    "  if redis.call('EXISTS', run) == 1 then\n"
    "    local why = 'run ' .. rid .. ' exists already'\n"
    "    redis.call('XADD', dead, '*', unpack(rebuild({id = true, error = true},\n"
    "      {'id', jid, 'error', why, 'attempts', attempts, 'failed_at', now})))\n"
    "    redis.call('HINCRBY', stats, 'dead', 1)\n"
    "    -- this start's own result (the run's hash is not touched)\n"
    "    local qp = string.sub(stats, 1, #stats - 5)\n"
    "    local rk = qp .. 'result:' .. jid\n"
    "    redis.call('DEL', rk)\n"
    "    redis.call('HSET', rk, 'status', 'dead', 'result', '', 'error', why,\n"
    "      'attempts', attempts, 'finished_at', now)\n"
    "    -- kept no longer than the run it names: once the run's hash is\n"
    "    -- gone, wait and result would read this one as the run's end\n"
    "    local keep = ttl > 0 and ttl or " DRV_QUEUE_DEAD_TTL_STR "\n"
    "    local left = redis.call('PTTL', run)\n"
    "    if left > 0 and left < keep then keep = left end\n"
    "    redis.call('PEXPIRE', rk, keep)\n"
    "    redis.call('PUBLISH', qp .. 'done', rk)\n"
    "    done_entry()\n"
    "    return 1\n"
    "  end\n"
    "  spec = cjson.decode(ARGV[13])\n"
    "  fields = rebuild(ctl, {})\n"
    "  local left = 0\n"
    "  RS('pipeline', spec.name, 'status', 'running', 'created_at', now,\n"
    "    'spec', ARGV[13], 'fields', cjson.encode(fields), 'home', home,\n"
    "    'run', rid, 'ttl', ttl, 'order', table.concat(spec.order, ','),\n"
    "    'nonce', eid)\n"
    "  for _, n in ipairs(spec.order) do\n"
    "    local nd = spec.nodes[n]\n"
    "    if nd.of then\n"
    "      RS(n .. '.state', 'standby')\n"
    "    else\n"
    "      left = left + 1\n"
    "      RS(n .. '.state', 'waiting', n .. '.pending', #nd.needs)\n"
    "    end\n"
    "  end\n"
    "  RS('left', left)\n"
    "  for _, n in ipairs(spec.order) do\n"
    "    local nd = spec.nodes[n]\n"
    "    if #nd.needs == 0 and not nd.of and R(n .. '.state') == 'waiting' then\n"
    "      ready(n)\n"
    "    end\n"
    "  end\n"
    "  done_entry()\n"
    "  return reply(1)\n"
    "end\n"
    "\n"
    "local marks = string.sub(jobs, 1, #jobs - 4) .. 'cancel'\n"
    "local function dead_entry()\n"
    "  redis.call('XADD', dead, '*', unpack(rebuild({id = true, error = true,\n"
    "    attempts = true, failed_at = true}, {'id', jid, 'error', text,\n"
    "    'attempts', attempts, 'failed_at', now})))\n"
    "  redis.call('HINCRBY', stats, 'dead', 1)\n"
    "  redis.call('HINCRBY', stats, 'failed', 1)\n"
    "  if deadmax > 0 then\n"
    "    redis.call('XTRIM', dead, 'MAXLEN', '~', deadmax)\n"
    "  end\n"
    "end\n"
    "local function retry_entry()\n"
    "  redis.call('HINCRBY', stats, 'failed', 1)\n"
    "  redis.call('HINCRBY', stats, 'retried', 1)\n"
    "  redis.call('HSET', hkey, unpack(rebuild({id = true, attempt = true},\n"
    "    {'id', jid, 'attempt', attempts})))\n"
    "  redis.call('ZADD', delayed, due, jid)\n"
    "end\n"
    "if not applying and xslot and qkey(home, 'jobs') ~= jobs then\n"
    "  -- a node on another queue than its run's, on Redis Cluster: the run is\n"
    "  -- in another slot. The entry is settled here; its outcome goes into\n"
    "  -- this queue's inbox, and the worker applies it to the run (guarded by\n"
    "  -- the node's state there) and then takes it out of the box\n"
    "  if kind == 'retry' and redis.call('ZSCORE', marks, eid) then\n"
    "    kind = 'cancel'\n"
    "  end\n"
    "  redis.call('ZREM', marks, eid)\n"
    "  if kind == 'retry' then\n"
    "    retry_entry()\n"
    "    done_entry()\n"
    "    return 1\n"
    "  end\n"
    "  if kind == 'dead' then dead_entry() end\n"
    "  if kind == 'ok' then redis.call('HINCRBY', stats, 'processed', 1) end\n"
    "  if kind == 'cancel' then redis.call('HINCRBY', stats, 'cancelled', 1) end\n"
    "  local r = cjson.encode({home, rid, node, idx or '', kind, attempts, text,\n"
    "    started, now, eid})\n"
    "  redis.call('ZADD', string.sub(jobs, 1, #jobs - 4) .. 'graph:inbox', now, r)\n"
    "  outs[#outs+1] = {'in', home, qkey(home, 'run:') .. rid, r}\n"
    "  done_entry()\n"
    "  return reply(1)\n"
    "end\n"
    "\n"
    "-- a cancel asked for this entry (drover cancel marks a delivered entry\n"
    "-- in P:{Q}:cancel): a retry becomes a cancel\n"
    "if not applying then\n"
    "  if kind == 'retry' and redis.call('ZSCORE', marks, eid) then\n"
    "    kind = 'cancel'\n"
    "  end\n"
    "  redis.call('ZREM', marks, eid)\n"
    "end\n"
    "if redis.call('EXISTS', run) == 0 then\n"
    "  -- the run's state expired (or never was): nothing to hand off. The\n"
    "  -- entry is settled as a plain job's would be: counted, a retry tried\n"
    "  -- again, a dead one kept in dead with its error (applying: its own\n"
    "  -- slot did that)\n"
    "  if not applying then\n"
    "    if kind == 'retry' then retry_entry() end\n"
    "    if kind == 'dead' then dead_entry() end\n"
    "    if kind == 'ok' then redis.call('HINCRBY', stats, 'processed', 1) end\n"
    "    if kind == 'cancel' then\n"
    "      redis.call('HINCRBY', stats, 'cancelled', 1)\n"
    "    end\n"
    "  end\n"
    "  done_entry()\n"
    "  return 1\n"
    "end\n"
    "load_run()\n"
    "if applying then ttl = tonumber(R('ttl') or '0') end\n"
    "local st = R(node .. '.state')\n"
    "local nd = spec.nodes[node]\n"
    "local live = (idx == nil and st == 'queued') or\n"
    "             (idx ~= nil and st == 'running' and R('status') == 'running')\n"
    "if nd == nil then live = false end\n"
    "\n"
    "if idx ~= nil and kind ~= 'retry' then\n"
    "  redis.call('HDEL', ikey(node, 'live'), idx)\n"
    "end\n"
    "\n"
    "if kind == 'cancel' then\n"
    "  if not applying then redis.call('HINCRBY', stats, 'cancelled', 1) end\n"
    "  if live then\n"
    "    RS(node .. '.state', 'cancelled', node .. '.finished_at', now)\n"
    "    if not nd.of then runend(node, 'cancelled', 'cancelled') end\n"
    "  end\n"
    "  done_entry()\n"
    "  return reply(1)\n"
    "end\n"
    "\n"
    "if kind == 'retry' then\n"
    "  if not live and idx ~= nil then\n"
    "    -- an item of a fan-out that ended: never started again\n"
    "    redis.call('HINCRBY', stats, 'failed', 1)\n"
    "    done_entry()\n"
    "    return 1\n"
    "  end\n"
    "  if live then\n"
    "    RS(node .. '.attempts', attempts, node .. '.error', text)\n"
    "  end\n"
    "  retry_entry()\n"
    "  done_entry()\n"
    "  return 1\n"
    "end\n"
    "\n"
    "if kind == 'dead' then\n"
    "  if not applying then dead_entry() end\n"
    "  if live then\n"
    "    local err = text\n"
    "    if idx ~= nil then err = 'item ' .. idx .. ': ' .. text end\n"
    "    RS(node .. '.state', 'dead', node .. '.error', err,\n"
    "      node .. '.attempts', attempts, node .. '.finished_at', now)\n"
    "    if idx == nil then RS(node .. '.started_at', started) end\n"
    "    if not nd.of then rundead(node, err) end\n"
    "  end\n"
    "  done_entry()\n"
    "  return reply(1)\n"
    "end\n"
    "\n"
    "-- ok\n"
    "if not applying then redis.call('HINCRBY', stats, 'processed', 1) end\n"
    "if live and idx == nil then\n"
    "  RS(node .. '.attempts', attempts, node .. '.started_at', started)\n"
    "  finish(node, 'ok', text)\n"
    "elseif live then\n"
    "  if redis.call('HSETNX', ikey(node, 'res'), idx, text) == 1 then\n"
    "    local nd2 = redis.call('HINCRBY', run, node .. '.done', 1)\n"
    "    local count = tonumber(R(node .. '.items'))\n"
    "    release(node)\n"
    "    if nd2 == count then\n"
    "      local parts = {}\n"
    "      for s = 0, count - 1, 1000 do\n"
    "        local want = {}\n"
    "        for t = s, math.min(s + 999, count - 1) do want[#want+1] = t end\n"
    "        local got = redis.call('HMGET', ikey(node, 'res'), unpack(want))\n"
    "        for t = 1, #want do parts[#parts+1] = embed(got[t]) end\n"
    "      end\n"
    "      redis.call('DEL', ikey(node, 'items'), ikey(node, 'res'),\n"
    "        ikey(node, 'live'))\n"
    "      finish(node, 'ok', '[' .. table.concat(parts, ',') .. ']')\n"
    "    end\n"
    "  end\n"
    "end\n"
    "done_entry()\n"
    "return reply(1)\n"
};

/*
 * graph cancel: KEYS = the run's hash. ARGV = prefix, now_ms, group,
 * xslot ("1" on Redis Cluster). A
 * running run becomes cancelled: waiting nodes never start, fan-outs
 * release no more items, and each node entry out is taken back: a
 * delayed retry removed, an entry not yet delivered deleted, a delivered
 * one marked in its queue's P:{Q}:cancel for its worker; with xslot
 * (Redis Cluster) the node entries on other queues are returned for a
 * take-back in their slots instead. Returns {status after, removed,
 * delayed, marked, changed (1: this run cancelled it), [[queue, marker,
 * job id]...]}.
 */
const struct drv_queue_script drv_queue_graph_cancel_script = {
    "graph_cancel",
    "local run = KEYS[1]\n"
    "local P, now, group, xslot = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'\n"
    "local t = redis.call('TYPE', run)['ok']\n"
    "if t ~= 'hash' then return {'none', 0, 0, 0, 0, {}} end\n"
    "local function R(f) return redis.call('HGET', run, f) end\n"
    "local status = R('status')\n"
    "if status ~= 'running' then return {status or 'none', 0, 0, 0, 0, {}} end\n"
    "local spec = cjson.decode(R('spec'))\n"
    "local rid, home, ttl = R('run'), R('home'), tonumber(R('ttl') or '0')\n"
    "redis.call('HSET', run, 'status', 'cancelled', 'error', 'cancelled',\n"
    "  'finished_at', now)\n"
    "local removed, delayed, marked = 0, 0, 0\n"
    "-- on Redis Cluster, entries on another queue are in another slot: each\n"
    "-- is returned as {queue, marker, job id} for a take-back there\n"
    "local away = {}\n"
    "local nonce = R('nonce') or rid\n"
    "local function qkey(q, what) return P .. ':{' .. q .. '}:' .. what end\n"
    "-- the job jid of queue q, whose entry was eid: out of the delayed set, out\n"
    "-- of the stream when not delivered, else marked for its worker\n"
    "local function drop(q, eid, jid, tail)\n"
    "  if xslot and q ~= home then\n"
    "    away[#away+1] = {q, qkey(q, 'handoff:') .. #home .. ':' .. home .. ':' ..\n"
    "      nonce .. ':' .. tail, jid}\n"
    "    return\n"
    "  end\n"
    "  if redis.call('ZREM', qkey(q, 'delayed'), jid) == 1 then\n"
    "    redis.call('DEL', qkey(q, 'job:') .. jid)\n"
    "    delayed = delayed + 1\n"
    "    return\n"
    "  end\n"
    "  if eid == nil or eid == false or eid == '' then return end\n"
    "  local p = redis.pcall('XPENDING', qkey(q, 'jobs'), group, eid, eid, 1)\n"
    "  if type(p) == 'table' and p.err == nil and p[1] then\n"
    "    redis.call('ZADD', qkey(q, 'cancel'), now, eid)\n"
    "    marked = marked + 1\n"
    "  elseif redis.call('XDEL', qkey(q, 'jobs'), eid) == 1 then\n"
    "    removed = removed + 1\n"
    "  end\n"
    "end\n"
    "for _, n in ipairs(spec.order) do\n"
    "  local st = R(n .. '.state')\n"
    "  local q = R(n .. '.queue') or home\n"
    "  local base = run .. ':'\n"
    "  if st == 'waiting' or st == 'standby' then\n"
    "    redis.call('HSET', run, n .. '.state', 'cancelled')\n"
    "  elseif st == 'queued' then\n"
    "    drop(q, R(n .. '.entry'), rid .. '/' .. n, n)\n"
    "    redis.call('HSET', run, n .. '.state', 'cancelled')\n"
    "  elseif st == 'running' then\n"
    "    local live = redis.call('HGETALL', base .. 'live:' .. n)\n"
    "    for i = 1, #live, 2 do\n"
    "      drop(q, live[i+1], rid .. '/' .. n .. '/' .. live[i],\n"
    "        n .. '/' .. live[i])\n"
    "    end\n"
    "    redis.call('HSET', run, n .. '.state', 'cancelled')\n"
    "    redis.call('DEL', base .. 'items:' .. n, base .. 'res:' .. n,\n"
    "      base .. 'live:' .. n)\n"
    "  end\n"
    "end\n"
    "if ttl <= 0 then ttl = 86400000 end\n"
    "redis.call('PEXPIRE', run, ttl)\n"
    "redis.call('PUBLISH', qkey(home, 'done'), run)\n"
    "return {'cancelled', removed, delayed, marked, 1, away}\n"
};

static const char *const kinds[] = {"start", "ok", "retry", "dead",
                                    "cancel", "apply"};

char *
drv_queue_run_key(const char *prefix, const char *queue, const char *run,
                  size_t run_len)
{
    struct drv_buf b;

    drv_buf_init(&b);
    drv_buf_addf(&b, "%s:{%s}:run:", prefix, queue);
    drv_buf_add(&b, run, run_len);
    return drv_buf_take(&b, NULL);
}

void
drv_queue_graph_settle(struct drv_script_call *c,
                       const struct drv_queue_keys *k, const char *prefix,
                       const char *consumer, int64_t now_ms,
                       const struct drv_graph_op *op)
{
    char *run = drv_queue_run_key(prefix, op->home, op->run_id,
                                  op->run_id_len);
    /* Cluster, an entry whose run is on another queue: the run's key is
     * in another slot, not passed (the script puts the outcome in this
     * queue's inbox); the job's hash stands in (a hash of this slot) */
    int away = op->xslot && op->kind != DRV_GRAPH_START &&
               strcmp(op->home, k->name) != 0;

    DRV_ASSERT(op->kind < DRV_GRAPH_APPLY);
    drv_script_call_init(c, &drv_queue_graph_script);
    drv_argv_adds(&c->keys, k->jobs);
    drv_argv_adds(&c->keys, k->delayed);
    drv_argv_adds(&c->keys, k->dead);
    drv_argv_adds(&c->keys, k->stats);
    drv_argv_addcat(&c->keys, k->job_prefix, op->job_id, op->job_id_len);
    if (away)
        drv_argv_addcat(&c->keys, k->job_prefix, op->job_id, op->job_id_len);
    else
        drv_argv_adds(&c->keys, run);
    free(run);
    drv_argv_adds(&c->args, kinds[op->kind]);
    drv_argv_adds(&c->args, DRV_QUEUE_GROUP);
    drv_argv_adds(&c->args, consumer);
    drv_argv_adds(&c->args, op->entry_id);
    drv_argv_add(&c->args, op->job_id, op->job_id_len);
    drv_argv_addll(&c->args, (long long)now_ms);
    drv_argv_adds(&c->args, prefix);
    drv_argv_addll(&c->args, (long long)op->attempts);
    drv_argv_add(&c->args, op->text != NULL ? op->text : "",
                 op->text != NULL ? op->text_len : 0);
    drv_argv_addll(&c->args, (long long)op->due_ms);
    drv_argv_addll(&c->args, (long long)op->started_at_ms);
    drv_argv_addll(&c->args, (long long)op->state_ttl_ms);
    drv_argv_adds(&c->args, op->spec != NULL ? op->spec : "");
    drv_argv_addll(&c->args, (long long)op->dead_max);
    drv_argv_adds(&c->args, op->kind == DRV_GRAPH_START ? op->home : "");
    drv_argv_adds(&c->args, op->xslot ? "1" : "0");
}

char *
drv_queue_graph_spec(const struct drv_config_pipeline *pl)
{
    struct drv_buf b;
    struct drv_json j;
    size_t i, k, m;

    drv_buf_init(&b);
    drv_json_init(&j, &b);
    drv_json_object_begin(&j);
    drv_json_member_strz(&j, "name", pl->name);
    drv_json_key(&j, "order");
    drv_json_array_begin(&j);
    for (i = 0; i < pl->ngraph; i++)
        drv_json_strz(&j, pl->graph[i].name);
    drv_json_array_end(&j);
    drv_json_key(&j, "nodes");
    drv_json_object_begin(&j);
    for (i = 0; i < pl->ngraph; i++) {
        const struct drv_config_gnode *n = &pl->graph[i];

        drv_json_key(&j, n->name);
        drv_json_object_begin(&j);
        drv_json_key(&j, "needs");
        drv_json_array_begin(&j);
        for (k = 0; k < n->nneeds; k++)
            drv_json_strz(&j, pl->graph[n->needs[k]].name);
        drv_json_array_end(&j);
        drv_json_key(&j, "deps");
        drv_json_array_begin(&j);
        for (k = 0; k < pl->ngraph; k++)
            for (m = 0; m < pl->graph[k].nneeds; m++)
                if (pl->graph[k].needs[m] == i)
                    drv_json_strz(&j, pl->graph[k].name);
        drv_json_array_end(&j);
        if (n->queue != NULL)
            drv_json_member_strz(&j, "queue", n->queue);
        if (n->when.op != DRV_CONFIG_WHEN_NONE) {
            drv_json_key(&j, "when");
            drv_json_object_begin(&j);
            drv_json_member_strz(&j, "v", n->when.value);
            drv_json_member_strz(&j, "op", n->when.op == DRV_CONFIG_WHEN_EQ
                                           ? "==" : "!=");
            drv_json_member_strz(&j, "lit", n->when.literal);
            drv_json_object_end(&j);
        }
        if (n->for_each != NULL)
            drv_json_member_strz(&j, "fe", n->for_each);
        drv_json_key(&j, "mp");
        drv_json_int(&j, n->max_parallel);
        if (n->on_failure)
            drv_json_member_bool(&j, "of", 1);
        drv_json_object_end(&j);
    }
    drv_json_object_end(&j);
    drv_json_object_end(&j);
    drv_json_fini(&j);
    return drv_buf_take(&b, NULL);
}

void
drv_queue_graph_cancel(struct drv_script_call *c, const char *prefix,
                       const char *queue, const char *run, size_t run_len,
                       int64_t now_ms, int xslot)
{
    char *key = drv_queue_run_key(prefix, queue, run, run_len);

    drv_script_call_init(c, &drv_queue_graph_cancel_script);
    drv_argv_adds(&c->keys, key);
    free(key);
    drv_argv_adds(&c->args, prefix);
    drv_argv_addll(&c->args, (long long)now_ms);
    drv_argv_adds(&c->args, DRV_QUEUE_GROUP);
    drv_argv_adds(&c->args, xslot ? "1" : "0");
}

void
drv_queue_graph_cancelled_fini(struct drv_queue_graph_cancelled *out)
{
    while (out->naway > 0) {
        struct drv_queue_graph_away *a = &out->away[--out->naway];

        free(a->queue);
        free(a->marker);
        free(a->job_id);
    }
    free(out->away);
    out->away = NULL;
}

/* A string element of a reply as a new NUL-terminated copy, or NULL. */
static char *
dup_str(const redisReply *e)
{
    if (e == NULL || e->type != REDIS_REPLY_STRING)
        return NULL;
    return drv_xstrndup(e->str, e->len);
}

/* The 6th element of a cancel reply: [[queue, marker, job id]...]. */
static int
parse_away(const redisReply *r, struct drv_queue_graph_cancelled *out,
           struct drv_err *err)
{
    size_t i;

    if (r->type != REDIS_REPLY_ARRAY)
        return drv_err_set(err, DRV_EPROTO, "cancel: reply of unexpected "
                           "shape");
    if (r->elements == 0)
        return 0;
    out->away = drv_xcalloc(r->elements, sizeof *out->away);
    for (i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        struct drv_queue_graph_away *a = &out->away[out->naway];

        if (!drv__queue_strings(e, 3))
            return drv_err_set(err, DRV_EPROTO, "cancel: reply of "
                               "unexpected shape");
        a->queue = dup_str(e->element[0]);
        a->marker = dup_str(e->element[1]);
        a->job_id = dup_str(e->element[2]);
        a->job_id_len = e->element[2]->len;
        out->naway++;
    }
    return 0;
}

int
drv_queue_graph_cancel_parse(const redisReply *r,
                             struct drv_queue_graph_cancelled *out,
                             struct drv_err *err)
{
    size_t i;

    memset(out, 0, sizeof *out);
    if (r != NULL && r->type == REDIS_REPLY_ERROR)
        return drv_err_set(err, DRV_EREDIS, "cancel: %.*s", (int)r->len,
                           r->str);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 5 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return drv_err_set(err, DRV_EPROTO, "cancel: reply of unexpected "
                           "shape");
    for (i = 1; i < 5; i++)
        if (r->element[i]->type != REDIS_REPLY_INTEGER)
            return drv_err_set(err, DRV_EPROTO, "cancel: reply of "
                               "unexpected shape");
    snprintf(out->status, sizeof out->status, "%.*s",
             (int)r->element[0]->len, r->element[0]->str);
    out->removed = r->element[1]->integer;
    out->delayed = r->element[2]->integer;
    out->marked = r->element[3]->integer;
    out->changed = r->element[4]->integer == 1;
    if (r->elements >= 6)
        return parse_away(r->element[5], out, err);
    return 0;
}
