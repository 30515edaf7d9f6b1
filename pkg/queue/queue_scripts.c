/*
 * queue_scripts.c -- the Lua scripts that move jobs between states.
 *
 * Each script is atomic: a job's transition (ack, retry, dead, requeue,
 * reclaim) happens whole or not at all, and every transition of an entry
 * in the PEL first checks the caller still owns it (XACK alone does not).
 * Scripts validate before they write: they never fail halfway.
 */
#include "drover/queue.h"
#include "drover/queue_cancel.h"

/* Shared Lua helpers, prepended to the scripts that need them. */
#define LUA_HELPERS                                                        \
    "local function owned(jobs, group, id, me)\n"                          \
    "  local p = redis.call('XPENDING', jobs, group, id, id, 1)\n"        \
    "  return p[1] ~= nil and p[1][2] == me\n"                             \
    "end\n"                                                                \
    "local function payload(jobs, id)\n"                                   \
    "  local e = redis.call('XRANGE', jobs, id, id)\n"                     \
    "  if e[1] == nil then return nil end\n"                               \
    "  return e[1][2]\n"                                                   \
    "end\n"                                                                \
    /* f minus every field named in repl, then repl's pairs in order */    \
    "local function rebuild(f, repl, strip)\n"                             \
    "  local drop = {}\n"                                                  \
    "  for i = 1, #repl, 2 do drop[repl[i]] = true end\n"                  \
    "  if strip then for _, n in ipairs(strip) do drop[n] = true end end\n"\
    "  local r = {}\n"                                                     \
    "  for i = 1, #f, 2 do\n"                                              \
    "    if not drop[f[i]] then r[#r+1] = f[i]; r[#r+1] = f[i+1] end\n"    \
    "  end\n"                                                              \
    "  for i = 1, #repl do r[#r+1] = repl[i] end\n"                        \
    "  return r\n"                                                         \
    "end\n"

/*
 * Key types, checked before a script writes anything: a key of another
 * type would make a write fail halfway through the script (Redis keeps
 * the writes before the failing one). checktypes(key, type, ...) returns
 * nil, or an error text naming the first key that exists with another
 * type; the script returns it as an error reply starting with WRONGTYPE.
 */
#define LUA_CHECK_TYPES                                                    \
    "local function checktypes(...)\n"                                    \
    "  local a = {...}\n"                                                 \
    "  for i = 1, #a, 2 do\n"                                             \
    "    local t = redis.call('TYPE', a[i])['ok']\n"                      \
    "    if t ~= 'none' and t ~= a[i+1] then\n"                           \
    "      return 'WRONGTYPE key ' .. a[i] .. ' holds a ' .. t ..\n"      \
    "        ', not a ' .. a[i+1]\n"                                      \
    "    end\n"                                                           \
    "  end\n"                                                             \
    "end\n"

/*
 * Bound the dead stream after dead entries were written: keep the newest
 * maxn entries (0 = any number) and none older than minid (a ms time,
 * '0' = any age). Both trims are cheap: XTRIM with '~' drops whole stream
 * nodes only, so it keeps up to one node (stream-node-max-entries, 100 by
 * default) more than asked. Below 1000 entries that slack would be more
 * than a tenth of the bound, so a small maxn is trimmed exactly; a write
 * trims about one entry then, which costs no more than the XADD.
 */
#define LUA_DEAD_TRIM                                                      \
    "local function trimdead(dead, maxn, minid)\n"                         \
    "  if maxn >= 1000 then\n"                                             \
    "    redis.call('XTRIM', dead, 'MAXLEN', '~', maxn)\n"                 \
    "  elseif maxn > 0 then\n"                                             \
    "    redis.call('XTRIM', dead, 'MAXLEN', maxn)\n"                      \
    "  end\n"                                                              \
    "  if minid ~= '0' then\n"                                             \
    "    redis.call('XTRIM', dead, 'MINID', '~', minid)\n"                 \
    "  end\n"                                                              \
    "end\n"

/*
 * Where a job waits in the delayed set: the member for job id jid and the
 * key of its hash. hkey is P:{Q}:job:JID, so its prefix is P:{Q}:job:.
 * The member is jid itself while no waiting job holds that member (the
 * usual case: the documented P:{Q}:job:ID), else jid .. '#' .. tag, tag
 * being the stream entry id of the entry being retried (never reused in
 * a stream) or a new token for a delayed enqueue; should even that be
 * taken (an id written to look like one), '#2', '#3', ... follow. A
 * member is never written over another, so two jobs that share an id
 * keep a life each. Whatever its form, the mover takes a member as it
 * is: the hash at prefix .. member holds the job's fields, id included.
 * (A job type that asks for deduplication would decide here to keep the
 * waiting job instead of adding one.)
 */
#define LUA_DELAYED_SLOT                                                   \
    "local function slot(delayed, hkey, jid, tag)\n"                       \
    "  local pre = string.sub(hkey, 1, #hkey - #jid)\n"                    \
    "  local m, n = jid, 1\n"                                              \
    "  while redis.call('ZSCORE', delayed, m) or\n"                        \
    "        redis.call('EXISTS', pre .. m) == 1 do\n"                     \
    "    n = n + 1\n"                                                      \
    "    m = jid .. '#' .. tag\n"                                          \
    "    if n > 2 then m = m .. '#' .. n end\n"                            \
    "  end\n"                                                              \
    "  return m, pre .. m\n"                                               \
    "end\n"

/*
 * What a settled job held through admission (drover/queue_admit.h),
 * released in the same run as its op: after the ops, ARGV may go on with
 * 'admit', count, then per record: op index, entry id, unique action (''
 * none, '-' free the id, else the value to set for ttl ms), ttl, lease
 * member ('' none); KEYS go on with the record's unique key (when it has
 * an action) and its conc key (when it has a member). The id moves on
 * only when the op applied and the key still names this entry; the
 * lease goes whatever the op's code. Runs without admission add nothing:
 * one comparison per run.
 */
#define LUA_SETTLE_ADMIT                                                   \
    "if ARGV[b] == 'admit' then\n"                                         \
    "  local m = tonumber(ARGV[b+1])\n"                                    \
    "  b = b + 2\n"                                                        \
    "  for r = 1, m do\n"                                                  \
    "    local i, eid, ua = tonumber(ARGV[b]), ARGV[b+1], ARGV[b+2]\n"     \
    "    local ttl, mem = ARGV[b+3], ARGV[b+4]\n"                          \
    "    b = b + 5\n"                                                      \
    "    if ua ~= '' then\n"                                               \
    "      if out[i] ~= 0 and redis.call('GET', KEYS[k]) == eid then\n"    \
    "        if ua == '-' then redis.call('DEL', KEYS[k])\n"               \
    "        else redis.call('SET', KEYS[k], ua, 'PX', ttl) end\n"         \
    "      end\n"                                                          \
    "      k = k + 1\n"                                                    \
    "    end\n"                                                            \
    "    if mem ~= '' then\n"                                              \
    "      redis.call('ZREM', KEYS[k], mem)\n"                             \
    "      k = k + 1\n"                                                    \
    "    end\n"                                                            \
    "  end\n"                                                              \
    "end\n"

/*
 * settle: KEYS = jobs, delayed, dead, stats, then per full op: result
 * key, delayed-job hash key of the job id (a retry waits there, or under
 * another member when that is taken: see slot). ARGV = group, consumer, now_ms, nops,
 * ack_min, ack_max, dead_max, dead_minid (the dead stream's bounds, see
 * trimdead), then the ops in order, each one of:
 *  - a plain ack (success, no result kept): its entry id alone (an entry
 *    id starts with a digit, a kind never does);
 *  - a full op, 12 values: kind, entry id, job id, attempts,
 *    result_ttl_ms, due_ms, count_failed, step (-1 = not a pipeline step),
 *    started_at_ms, text, cpu_ms, max_rss_kb (the last two '' unless an
 *    exec child's resources are known; then the result hash gets them).
 * ack_min/ack_max bound the plain acks' entry ids ('' when there are
 * none). Returns one code per op, in order (DRV_QUEUE_*), or nops.
 *
 * Plain acks are the hot path and are settled together. When they come
 * last (the worker sends them so) and no other consumer of the group has
 * an entry pending (XPENDING's summary names the consumers that do), a
 * pending ack can only be ours: ONE XACK of all of them is the proof and
 * the ack, and no Lua table is built per ack. It acks every id when all
 * were pending; when fewer, the ones it acked are the ones whose entries
 * still exist (every settle deletes the entry it acks, so an entry
 * reclaimed and settled by another worker, or acked by an earlier run of
 * a call sent again, is gone) and the others are LOST. Otherwise ONE
 * XPENDING over this consumer's PEL between ack_min and ack_max proves
 * ownership of all of them (a truncated answer falls back to one check
 * per id it did not cover), then ONE XACK carries every owned id. Deleting them: every
 * entry older than both the newest id acked here and the oldest entry
 * still pending (any consumer) was delivered and is pending nowhere, so
 * it was settled and must go; one XTRIM MINID removes those by whole
 * stream nodes (an XDEL walks a node's listpack for every id: the largest
 * cost of a drain). Acked ids at or above that bound are XDELed. A plain
 * ack needs no payload, so it reports DONE or LOST, never GONE (the entry
 * is deleted either way). On the sole-consumer path the bound is the
 * oldest entry still pending after the XACK (every ack below it goes with
 * the trim: the usual case in a drain, where newer jobs still run), or
 * with nothing pending the last ack; when the trim removed fewer entries
 * than were acked, the acks are XDELed too, so whatever their order every
 * acked entry goes. Full ops check ownership one by one as before.
 * When the plain acks come last and in id order (the worker sends them
 * so: drv_settle_plain), and this consumer's pending entries in the range
 * are exactly those ids, the proof is one comparison per id against
 * ARGV, and ARGV itself feeds XACK: no Lua table is built per ack. Any
 * other order or answer takes the general path (a table of the acks).
 * When every op was applied the script returns the integer nops instead
 * of nops codes of 1 (most calls: one reply object, not one per job).
 *
 * Pipeline steps keep one result hash for the whole pipeline: it is not
 * reset between steps, and each step adds step.K.status, .attempts,
 * .started_at, .finished_at (and .error).
 *
 * Cancel (drover/queue_cancel.h): a full op 'cancel' acks the entry, its
 * result gets status cancelled (kept at least DRV_QUEUE_CANCEL_TTL_MS)
 * and stats cancelled+1; its marker in P:{Q}:cancel goes. A retry,
 * requeue or next op of an entry that has a marker becomes that cancel
 * (code DRV_QUEUE_CANCELLED), so a cancel asked while the outcome was on
 * its way is not lost. Both keys are named from the stats key (same
 * slot). Plain acks never look at the markers.
 *
 * A result written with a final status (ok, dead, cancelled) is
 * announced with PUBLISH P:{Q}:done RESULT_KEY, for drover wait: one
 * more call per op that keeps a result, none for plain acks.
 */
const struct drv_queue_script drv_queue_settle_script = {
    "settle",
    LUA_DELAYED_SLOT
    LUA_HELPERS
    LUA_DEAD_TRIM
    LUA_CHECK_TYPES
    "local jobs, delayed, dead, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4]\n"
    "local group, me, now = ARGV[1], ARGV[2], ARGV[3]\n"
    "local nops = tonumber(ARGV[4])\n"
    "local cancelk = string.sub(stats, 1, #stats - 5) .. 'cancel'\n"
    "local donech = string.sub(stats, 1, #stats - 5) .. 'done'\n"
    "local kinds = {ack = true, retry = true, dead = true, requeue = true,\n"
    "               next = true, cancel = true}\n"
    "local bad = checktypes(jobs, 'stream', delayed, 'zset', dead, 'stream',\n"
    "  stats, 'hash')\n"
    "do -- a pipeline step's result hash is written without a DEL first\n"
    "  local b, k, ckc = 9, 5, false\n"
    "  for i = 1, nops do\n"
    "    if bad then break end\n"
    "    if not kinds[ARGV[b]] then b = b + 1 else\n"
    "      if not ckc then -- full ops may read the cancel markers\n"
    "        ckc = true\n"
    "        bad = checktypes(cancelk, 'zset')\n"
    "      end\n"
    "      if not bad and tonumber(ARGV[b+7]) >= 0 and\n"
    "         tonumber(ARGV[b+4]) > 0 then\n"
    "        bad = checktypes(KEYS[k], 'hash')\n"
    "      end\n"
    "      b, k = b + 12, k + 2\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if bad then return redis.error_reply(bad) end\n"
    "local out = {}\n"
    "local processed, failed, retried, ndead, ncancel = 0, 0, 0, 0, 0\n"
    "local function result(rkey, ttl, status, res, err, attempts, step,\n"
    "                      started, cpu, rss)\n"
    "  if tonumber(ttl) <= 0 then return end\n"
    "  if step < 0 then\n"
    "    redis.call('DEL', rkey)\n"
    "  else\n"
    "    local p = 'step.' .. step .. '.'\n"
    "    local st = status\n"
    "    if st == 'next' then st = 'ok' end\n"
    "    redis.call('HSET', rkey, 'step', step, p .. 'status', st,\n"
    "      p .. 'attempts', attempts, p .. 'started_at', started,\n"
    "      p .. 'finished_at', now, p .. 'error', err)\n"
    "    if status == 'next' then\n"
    "      redis.call('HSET', rkey, 'status', 'running', 'step', step + 1)\n"
    "      redis.call('PEXPIRE', rkey, ttl)\n"
    "      return\n"
    "    end\n"
    "  end\n"
    "  redis.call('HSET', rkey, 'status', status, 'result', res,\n"
    "    'error', err, 'attempts', attempts, 'finished_at', now)\n"
    "  if cpu ~= '' then\n"
    "    redis.call('HSET', rkey, 'cpu_ms', cpu, 'max_rss_kb', rss)\n"
    "  end\n"
    "  redis.call('PEXPIRE', rkey, ttl)\n"
    "  -- a final outcome: tell drover wait (the message is the key)\n"
    "  if status ~= 'failed' then redis.call('PUBLISH', donech, rkey) end\n"
    "end\n"
    "local function full(b, rkey, hkey)\n"
    "  local kind, eid, jid = ARGV[b], ARGV[b+1], ARGV[b+2]\n"
    "  local attempts, ttl, due = ARGV[b+3], ARGV[b+4], ARGV[b+5]\n"
    "  local cf, step, started = ARGV[b+6], tonumber(ARGV[b+7]), ARGV[b+8]\n"
    "  local text, cpu, rss = ARGV[b+9], ARGV[b+10], ARGV[b+11]\n"
    "  local stepf = {}\n"
    "  if step >= 0 then stepf = {'step', step} end\n"
    "  if not owned(jobs, group, eid, me) then return 0 end\n"
    "  local f = payload(jobs, eid)\n"
    "  local code = 1\n"
    "  if f == nil then code = 2 end\n"
    "  -- a cancel asked while the attempt ran: nothing comes after it\n"
    "  if (kind == 'retry' or kind == 'requeue' or kind == 'next') and\n"
    "     redis.call('ZSCORE', cancelk, eid) then\n"
    "    if kind ~= 'retry' then text = '' end\n"
    "    kind, code = 'cancel', 3\n"
    "  end\n"
    "  if kind == 'cancel' then\n"
    "    ncancel = ncancel + 1\n"
    "    if text == '' then text = 'cancelled' end\n"
    "    if tonumber(ttl) < " DRV_QUEUE_CANCEL_TTL_STR " then\n"
    "      ttl = " DRV_QUEUE_CANCEL_TTL_STR "\n"
    "    end\n"
    "    redis.call('ZREM', cancelk, eid)\n"
    "    result(rkey, ttl, 'cancelled', '', text, attempts, step, started,\n"
    "      cpu, rss)\n"
    "  elseif kind == 'ack' then\n"
    "    processed = processed + 1\n"
    "    result(rkey, ttl, 'ok', text, '', attempts, step, started, cpu,\n"
    "      rss)\n"
    "  elseif kind == 'next' then\n"
    "    if f ~= nil then\n"
    "      redis.call('XADD', jobs, '*', unpack(rebuild(f, {'id', jid,\n"
    "        'step', step + 1, 'input', text}, {'attempt'})))\n"
    "    end\n"
    "    result(rkey, ttl, 'next', '', '', attempts, step, started, cpu,\n"
    "      rss)\n"
    "  elseif kind == 'retry' then\n"
    "    failed = failed + 1\n"
    "    if f ~= nil then\n"
    "      retried = retried + 1\n"
    "      local repl = {'id', jid, 'attempt', attempts}\n"
    "      for _, v in ipairs(stepf) do repl[#repl+1] = v end\n"
    "      local m, mkey = slot(delayed, hkey, jid, eid)\n"
    "      redis.call('HSET', mkey, unpack(rebuild(f, repl)))\n"
    "      redis.call('ZADD', delayed, due, m)\n"
    "    end\n"
    "    result(rkey, ttl, 'failed', '', text, attempts, step, started,\n"
    "      cpu, rss)\n"
    "  elseif kind == 'dead' then\n"
    "    if cf == '1' then failed = failed + 1 end\n"
    "    ndead = ndead + 1\n"
    "    local repl = {'id', jid}\n"
    "    for _, v in ipairs(stepf) do repl[#repl+1] = v end\n"
    "    for _, v in ipairs({'error', text, 'attempts', attempts,\n"
    "                        'failed_at', now}) do repl[#repl+1] = v end\n"
    "    redis.call('XADD', dead, '*', unpack(rebuild(f or {}, repl)))\n"
    "    result(rkey, ttl, 'dead', '', text, attempts, step, started,\n"
    "      cpu, rss)\n"
    "  elseif kind == 'requeue' then\n"
    "    if f ~= nil then\n"
    "      redis.call('XADD', jobs, '*', unpack(rebuild(f, {'id', jid})))\n"
    "    end\n"
    "  end\n"
    "  redis.call('XACK', jobs, group, eid)\n"
    "  redis.call('XDEL', jobs, eid)\n"
    "  return code\n"
    "end\n"
    "-- stream ids as Redis prints them (canonical decimal, no leading\n"
    "-- zeros): exact for any 64-bit value, whatever the collation\n"
    "local function numlt(x, y)\n"
    "  if #x ~= #y then return #x < #y end\n"
    "  for n = 1, #x do\n"
    "    local cx, cy = string.byte(x, n), string.byte(y, n)\n"
    "    if cx ~= cy then return cx < cy end\n"
    "  end\n"
    "  return false\n"
    "end\n"
    "local function idlt(x, y)\n"
    "  local i, j = string.find(x, '-', 1, true), string.find(y, '-', 1, true)\n"
    "  local mx, my = string.sub(x, 1, i - 1), string.sub(y, 1, j - 1)\n"
    "  if mx ~= my then return numlt(mx, my) end\n"
    "  return numlt(string.sub(x, i + 1), string.sub(y, j + 1))\n"
    "end\n"
    "-- full ops one by one; plain acks only counted here. The worker puts\n"
    "-- them last, in id order (a0: the first one's ARGV index, tail: no\n"
    "-- full op after it)\n"
    "local na, a0, tail, alldone = 0, nil, true, true\n"
    "local b, k = 9, 5\n"
    "for i = 1, nops do\n"
    "  if kinds[ARGV[b]] then\n"
    "    out[i] = full(b, KEYS[k], KEYS[k+1])\n"
    "    if out[i] ~= 1 then alldone = false end\n"
    "    if a0 then tail = false end\n"
    "    b = b + 12\n"
    "    k = k + 2\n"
    "  else\n"
    "    na = na + 1\n"
    "    if not a0 then a0 = b end\n"
    "    b = b + 1\n"
    "  end\n"
    "end\n"
    "local bend = b -- where the admission records start\n"
    "-- sole: no other consumer has an entry pending, so every pending ack\n"
    "-- is ours and one XACK both proves and acks them\n"
    "local sole = false\n"
    "if na > 0 and tail then\n"
    "  local s = redis.call('XPENDING', jobs, group)\n"
    "  sole = s[1] == 0 or (#s[4] == 1 and s[4][1][1] == me)\n"
    "end\n"
    "if sole then\n"
    "  local last = a0 + na - 1\n"
    "  local nok = redis.call('XACK', jobs, group, unpack(ARGV, a0, last))\n"
    "  local ok, hi = nil, ARGV[last]\n"
    "  if nok < na then\n"
    "    -- some were pending nowhere (a lease that expired and was settled\n"
    "    -- elsewhere, a call sent again). Every settle deletes the entry it\n"
    "    -- acks, so the ones just acked are those that still exist\n"
    "    ok, hi = {}, nil\n"
    "    for j = 1, na do\n"
    "      local id = ARGV[a0 + j - 1]\n"
    "      if nok > 0 and redis.call('XRANGE', jobs, id, id)[1] then\n"
    "        out[nops - na + j] = 1\n"
    "        ok[#ok + 1] = id\n"
    "        hi = id\n"
    "      else\n"
    "        out[nops - na + j] = 0\n"
    "        alldone = false\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  processed = processed + nok\n"
    "  if hi then\n"
    "    -- delete as below: entries older than the oldest pending one (or,\n"
    "    -- with nothing pending, than hi) were settled. The trim counts\n"
    "    -- what it removed: fewer than the acks (some at or above the\n"
    "    -- bound, in any order) and they are XDELed\n"
    "    local s = redis.call('XPENDING', jobs, group)\n"
    "    local t, want = 0, ok and #ok or na\n"
    "    if s[1] > 0 then\n"
    "      t = redis.call('XTRIM', jobs, 'MINID', s[2])\n"
    "    else -- hi stays: the trim keeps its bound\n"
    "      t = redis.call('XTRIM', jobs, 'MINID', hi) +\n"
    "        redis.call('XDEL', jobs, hi)\n"
    "    end\n"
    "    if t ~= want then\n"
    "      if ok then redis.call('XDEL', jobs, unpack(ok))\n"
    "      else redis.call('XDEL', jobs, unpack(ARGV, a0, last)) end\n"
    "    end\n"
    "  end\n"
    "elseif na > 0 then\n"
    "  local lim = na * 2 + 16\n"
    "  local p = redis.call('XPENDING', jobs, group, ARGV[5], ARGV[6], lim, me)\n"
    "  -- fast path: this consumer's pending entries in [ack_min, ack_max]\n"
    "  -- are exactly the acks, in the same (id) order: all owned\n"
    "  local same = tail and #p == na\n"
    "  if same then\n"
    "    for j = 1, na do\n"
    "      if p[j][1] ~= ARGV[a0 + j - 1] then same = false; break end\n"
    "    end\n"
    "  end\n"
    "  local ok, nok, hi, extra = nil, 0, nil, {}\n"
    "  if same then\n"
    "    nok, hi = na, ARGV[a0 + na - 1]\n"
    "    redis.call('XACK', jobs, group, unpack(ARGV, a0, a0 + na - 1))\n"
    "  else\n"
    "    -- any order: one code per ack, from the same answer (a truncated\n"
    "    -- answer falls back to one check per id it did not cover)\n"
    "    local aidx, aids, want, done = {}, {}, {}, {}\n"
    "    local m = 0\n"
    "    b = 9\n"
    "    for i = 1, nops do\n"
    "      if kinds[ARGV[b]] then b = b + 12 else\n"
    "        m = m + 1\n"
    "        aidx[m], aids[m] = i, ARGV[b]\n"
    "        want[ARGV[b]] = m\n"
    "        b = b + 1\n"
    "      end\n"
    "    end\n"
    "    ok = {}\n"
    "    for _, e in ipairs(p) do\n"
    "      local j = want[e[1]]\n"
    "      if j then\n"
    "        done[j] = true\n"
    "        nok = nok + 1\n"
    "        ok[nok] = e[1]\n"
    "        hi = e[1]\n"
    "      end\n"
    "    end\n"
    "    for j = 1, na do\n"
    "      if done[j] then\n"
    "        out[aidx[j]] = 1\n"
    "      elseif #p >= lim and owned(jobs, group, aids[j], me) then\n"
    "        out[aidx[j]] = 1\n"
    "        nok = nok + 1\n"
    "        ok[nok] = aids[j]\n"
    "        extra[#extra+1] = aids[j]\n"
    "      else\n"
    "        out[aidx[j]] = 0\n"
    "        alldone = false\n"
    "      end\n"
    "    end\n"
    "    if nok > 0 then redis.call('XACK', jobs, group, unpack(ok)) end\n"
    "  end\n"
    "  if nok > 0 then\n"
    "    processed = processed + nok\n"
    "    local function delok()\n"
    "      if ok then return redis.call('XDEL', jobs, unpack(ok)) end\n"
    "      return redis.call('XDEL', jobs, unpack(ARGV, a0, a0 + na - 1))\n"
    "    end\n"
    "    if hi == nil then\n"
    "      delok()\n"
    "    else\n"
    "      -- Every entry older than both hi (ours, so delivered) and the\n"
    "      -- oldest entry still pending was delivered and is pending nowhere:\n"
    "      -- it was settled, and every settle deletes its entry. One XTRIM\n"
    "      -- MINID therefore removes ours, by whole stream nodes, instead of\n"
    "      -- a listpack walk per id (XDEL); it never touches a pending or an\n"
    "      -- undelivered entry.\n"
    "      local s = redis.call('XPENDING', jobs, group)\n"
    "      if s[1] > 0 and idlt(s[2], hi) then\n"
    "        redis.call('XTRIM', jobs, 'MINID', s[2])\n"
    "        delok()\n"
    "      else\n"
    "        redis.call('XTRIM', jobs, 'MINID', hi)\n"
    "        redis.call('XDEL', jobs, hi, unpack(extra))\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "b = bend\n"
    "if processed > 0 then redis.call('HINCRBY', stats, 'processed', processed) end\n"
    "if failed > 0 then redis.call('HINCRBY', stats, 'failed', failed) end\n"
    "if retried > 0 then redis.call('HINCRBY', stats, 'retried', retried) end\n"
    "if ncancel > 0 then redis.call('HINCRBY', stats, 'cancelled', ncancel) end\n"
    "if ndead > 0 then\n"
    "  redis.call('HINCRBY', stats, 'dead', ndead)\n"
    "  trimdead(dead, tonumber(ARGV[7]), ARGV[8])\n"
    "end\n"
    LUA_SETTLE_ADMIT
    "-- every op applied (the hot path): one integer, not nops of them\n"
    "if alldone then return nops end\n"
    "for i = 1, nops do out[i] = out[i] or 1 end\n"
    "return out\n"
};

/*
 * enqueue (delayed): KEYS = delayed, the job hash key of the id. ARGV =
 * due_ms, id, tag (a new token: see slot), then the fields of the future
 * entry. The job waits under its own member, whatever else waits with
 * the same id. Returns the member.
 */
const struct drv_queue_script drv_queue_enqueue_script = {
    "enqueue",
    LUA_DELAYED_SLOT
    "local m, mkey = slot(KEYS[1], KEYS[2], ARGV[2], ARGV[3])\n"
    "redis.call('HSET', mkey, unpack(ARGV, 4))\n"
    "redis.call('ZADD', KEYS[1], ARGV[1], m)\n"
    "return m\n"
};

/* mover: KEYS = jobs, delayed. ARGV = now_ms, limit, job hash prefix. */
const struct drv_queue_script drv_queue_mover_script = {
    "mover",
    LUA_CHECK_TYPES
    "local bad = checktypes(KEYS[1], 'stream', KEYS[2], 'zset')\n"
    "if bad then return redis.error_reply(bad) end\n"
    "local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1],\n"
    "  'LIMIT', 0, ARGV[2])\n"
    "for _, jid in ipairs(due) do\n"
    "  local hkey = ARGV[3] .. jid\n"
    "  local f = redis.call('HGETALL', hkey)\n"
    "  if #f > 0 then redis.call('XADD', KEYS[1], '*', unpack(f)) end\n"
    "  redis.call('DEL', hkey)\n"
    "  redis.call('ZREM', KEYS[2], jid)\n"
    "end\n"
    "return #due\n"
};

/*
 * reclaim: KEYS = jobs, dead, stats. ARGV = group, consumer, min_idle_ms,
 * count, max_deliveries, now_ms, dead_max, dead_minid (see trimdead),
 * and optionally max_job_bytes: a claimed entry larger than that goes to
 * dead here, copied inside Redis, instead of crossing the network in the
 * reply. Then optionally pairs of 'j' .. job type or 'p' .. pipeline and
 * its result_ttl ms, and 'g' .. graph pipeline or 's' .. steps pipeline
 * and '1'. Returns {claimed entries, poisoned, gone, oversized, entries
 * still pending, ended}.
 *
 * Each job sent to dead here gets a result as the settle script writes
 * one (status dead, error, attempts, finished_at; published on
 * P:{Q}:done): kept the result_ttl of the type or pipeline its fields
 * name when one was given, else DRV_QUEUE_DEAD_TTL_MS. A pipeline
 * step's result hash keeps its step records (a steps pipeline's first
 * entry, which has no field step, is its step 0).
 *
 * A node of a graph run (fields run, node, home, and pipeline naming a
 * 'g' pipeline) is not sent to dead here: its run must end with it, and
 * only the graph script does that (the run may be in another slot). It
 * is claimed for the caller instead (XCLAIM JUSTID: its delivery count
 * stays) and returned in ended as {entry id, its control fields, why};
 * the caller settles it dead through the graph script, as a node dead by
 * its retries. A caller that dies first leaves it pending with its count:
 * the next reclaim finds it again and hands it back again.
 */
const struct drv_queue_script drv_queue_reclaim_script = {
    "reclaim",
    LUA_HELPERS
    LUA_DEAD_TRIM
    LUA_CHECK_TYPES
    "local jobs, dead, stats = KEYS[1], KEYS[2], KEYS[3]\n"
    "local bad = checktypes(jobs, 'stream', dead, 'stream', stats, 'hash')\n"
    "if bad then return redis.error_reply(bad) end\n"
    "local group, me, idle = ARGV[1], ARGV[2], ARGV[3]\n"
    "local maxd, now = tonumber(ARGV[5]), ARGV[6]\n"
    "local maxb = tonumber(ARGV[9] or '0')\n"
    "local p = redis.call('XPENDING', jobs, group, 'IDLE', idle, '-', '+',\n"
    "  ARGV[4])\n"
    "local claimed, poisoned, gone, big, ended = {}, 0, 0, 0, {}\n"
    "local ttls, qp = {}, string.sub(stats, 1, #stats - 5)\n"
    "-- result ttls ('j'/'p' .. name) and pipeline kinds ('g'/'s' .. name)\n"
    "for i = 10, #ARGV - 1, 2 do ttls[ARGV[i]] = ARGV[i+1] end\n"
    "-- the dead job's result, kept its type's result_ttl or a day\n"
    "local function deadresult(jid, ttl, step, why, att)\n"
    "  local rkey = qp .. 'result:' .. jid\n"
    "  local t = redis.call('TYPE', rkey)['ok']\n"
    "  if not step or t ~= 'hash' then redis.call('DEL', rkey) end\n"
    "  if step then\n"
    "    local p = 'step.' .. step .. '.'\n"
    "    redis.call('HSET', rkey, 'step', step, p .. 'status', 'dead',\n"
    "      p .. 'attempts', att, p .. 'finished_at', now, p .. 'error', why)\n"
    "  end\n"
    "  redis.call('HSET', rkey, 'status', 'dead', 'result', '', 'error', why,\n"
    "    'attempts', att, 'finished_at', now)\n"
    "  redis.call('PEXPIRE', rkey, ttl or " DRV_QUEUE_DEAD_TTL_STR ")\n"
    "  redis.call('PUBLISH', qp .. 'done', rkey)\n"
    "end\n"
    "local function todead(id, f, why)\n"
    "  local jid, att, ttl, step, pl = id, 0, nil, nil, nil\n"
    "  for i = 1, #f, 2 do\n"
    "    if f[i] == 'id' and f[i+1] ~= '' then jid = f[i+1] end\n"
    "    if f[i] == 'attempt' then att = tonumber(f[i+1]) or 0 end\n"
    "    if f[i] == 'job' then ttl = ttls['j' .. f[i+1]] end\n"
    "    if f[i] == 'pipeline' then ttl, pl = ttls['p' .. f[i+1]], f[i+1] end\n"
    "    if f[i] == 'step' then step = tonumber(f[i+1]) end\n"
    "  end\n"
    "  if step == nil and pl and ttls['s' .. pl] then step = 0 end\n"
    "  redis.call('XADD', dead, '*', unpack(rebuild(f, {'id', jid,\n"
    "    'error', why, 'attempts', att + 1, 'failed_at', now})))\n"
    "  deadresult(jid, ttl, step, why, att + 1)\n"
    "  redis.call('XACK', jobs, group, id)\n"
    "  redis.call('XDEL', jobs, id)\n"
    "end\n"
    "-- a node of a graph run: {id, control fields, why} into ended (true),\n"
    "-- or false for any other entry\n"
    "local ctl = {id = true, attempt = true, pipeline = true, run = true,\n"
    "             node = true, home = true, index = true}\n"
    "local function tonode(id, f, why)\n"
    "  local c, v = {}, {}\n"
    "  for i = 1, #f, 2 do\n"
    "    if ctl[f[i]] then\n"
    "      c[#c+1] = f[i]; c[#c+1] = f[i+1]\n"
    "      v[f[i]] = f[i+1]\n"
    "    end\n"
    "  end\n"
    "  if not (v.run and v.node and v.home and v.pipeline and\n"
    "          ttls['g' .. v.pipeline]) then\n"
    "    return false\n"
    "  end\n"
    "  ended[#ended+1] = {id, c, why}\n"
    "  return true\n"
    "end\n"
    "for _, e in ipairs(p) do\n"
    "  local id, cnt = e[1], tonumber(e[4])\n"
    "  if cnt >= maxd then\n"
    "    local f = payload(jobs, id) or {}\n"
    "    local why = 'poison: delivered ' .. cnt ..\n"
    "      ' times without an outcome (max_deliveries ' .. maxd .. ')'\n"
    "    if tonode(id, f, why) then\n"
    "      redis.call('XCLAIM', jobs, group, me, 0, id, 'JUSTID')\n"
    "    else\n"
    "      todead(id, f, why)\n"
    "      poisoned = poisoned + 1\n"
    "    end\n"
    "  else\n"
    "    local r = redis.call('XCLAIM', jobs, group, me, idle, id)\n"
    "    local n = 0\n"
    "    if r[1] and maxb > 0 then\n"
    "      for _, v in ipairs(r[1][2]) do n = n + #v end\n"
    "    end\n"
    "    if not r[1] then\n"
    "      gone = gone + 1\n"
    "    elseif n > maxb then\n"
    "      local why = 'job is ' .. n .. ' bytes, more than max_job_bytes ' ..\n"
    "        maxb\n"
    "      if not tonode(id, r[1][2], why) then\n"
    "        todead(id, r[1][2], why)\n"
    "        big = big + 1\n"
    "      end\n"
    "    else\n"
    "      claimed[#claimed+1] = r[1]\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if poisoned + big > 0 then\n"
    "  redis.call('HINCRBY', stats, 'dead', poisoned + big)\n"
    "  trimdead(dead, tonumber(ARGV[7]), ARGV[8])\n"
    "end\n"
    "local left = redis.call('XPENDING', jobs, group)[1]\n"
    "return {claimed, poisoned, gone, big, left, ended}\n"
};

/* renew: KEYS = jobs. ARGV = group, consumer, ids... */
const struct drv_queue_script drv_queue_renew_script = {
    "renew",
    LUA_HELPERS
    LUA_CHECK_TYPES
    "local bad = checktypes(KEYS[1], 'stream')\n"
    "if bad then return redis.error_reply(bad) end\n"
    "local lost = {}\n"
    "for i = 3, #ARGV do\n"
    "  if owned(KEYS[1], ARGV[1], ARGV[i], ARGV[2]) then\n"
    "    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i],\n"
    "      'JUSTID')\n"
    "  else\n"
    "    lost[#lost+1] = ARGV[i]\n"
    "  end\n"
    "end\n"
    "return lost\n"
};

/*
 * prepare: KEYS = jobs, delayed, dead, stats. ARGV = group. A queue is
 * ready for the worker when its keys have the right types and its stream
 * has the group: creates the group (and the stream) when missing and
 * returns 1, returns 0 when it exists (no write: this works while Redis
 * refuses writes, out of memory), or a WRONGTYPE error naming the key.
 */
const struct drv_queue_script drv_queue_prepare_script = {
    "prepare",
    LUA_CHECK_TYPES
    "local bad = checktypes(KEYS[1], 'stream', KEYS[2], 'zset', KEYS[3],\n"
    "  'stream', KEYS[4], 'hash')\n"
    "if bad then return redis.error_reply(bad) end\n"
    "if redis.call('EXISTS', KEYS[1]) == 1 then\n"
    "  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do\n"
    "    if g[2] == ARGV[1] then return 0 end\n"
    "  end\n"
    "end\n"
    "redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')\n"
    "return 1\n"
};

/* dead retry: KEYS = dead, jobs. ARGV = id (job id or entry id) or ''
 * for all. */
const struct drv_queue_script drv_queue_dead_retry_script = {
    "dead_retry",
    LUA_HELPERS
    "local want = ARGV[1]\n"
    "local moved = 0\n"
    "local cursor = '-'\n"
    "while true do\n"
    "  local batch = redis.call('XRANGE', KEYS[1], cursor, '+', 'COUNT', 500)\n"
    "  if #batch == 0 then break end\n"
    "  for _, e in ipairs(batch) do\n"
    "    local eid, f = e[1], e[2]\n"
    "    local jid = eid\n"
    "    for i = 1, #f, 2 do\n"
    "      if f[i] == 'id' and f[i+1] ~= '' then jid = f[i+1] end\n"
    "    end\n"
    "    if want == '' or want == jid or want == eid then\n"
    "      redis.call('XADD', KEYS[2], '*', unpack(rebuild(f, {'id', jid},\n"
    "        {'error', 'attempts', 'failed_at', 'attempt'})))\n"
    "      redis.call('XDEL', KEYS[1], eid)\n"
    "      moved = moved + 1\n"
    "    end\n"
    "  end\n"
    "  cursor = '(' .. batch[#batch][1]\n"
    "end\n"
    "return moved\n"
};

/*
 * lookup: KEYS = delayed, the job's delayed hash, jobs, dead. ARGV = id,
 * most entries read per stream (and members of the delayed set), group.
 * Where job id (its id field, or its entry id) waits: {where, entry id,
 * fields, due, consumer, deliveries, incomplete}, where = delayed | ready
 * | running | dead | none; incomplete = 1 when a stream or the delayed
 * set had more than were read. A delayed job is found under member id,
 * else under a member id#... (see slot) whose hash holds that id. Reads
 * only.
 */
const struct drv_queue_script drv_queue_lookup_script = {
    "lookup",
    "local id, maxn, group = ARGV[1], tonumber(ARGV[2]), ARGV[3]\n"
    "local incomplete = 0\n"
    "local pre = string.sub(KEYS[2], 1, #KEYS[2] - #id)\n"
    "local function waiting(m)\n"
    "  local f = redis.call('HGETALL', pre .. m)\n"
    "  local jid = m\n"
    "  for i = 1, #f, 2 do\n"
    "    if f[i] == 'id' and f[i+1] ~= '' then jid = f[i+1] end\n"
    "  end\n"
    "  if jid == id then return f end\n"
    "  return nil\n"
    "end\n"
    "local due = redis.call('ZSCORE', KEYS[1], id)\n"
    "local f = due and waiting(id)\n"
    "if not f then\n"
    "  local pat = (string.gsub(id, '[%*%?%[%]\\\\]', '\\\\%0')) .. '#*'\n"
    "  local cur, seen = '0', 0\n"
    "  repeat\n"
    "    local r = redis.call('ZSCAN', KEYS[1], cur, 'MATCH', pat,\n"
    "      'COUNT', 1000)\n"
    "    cur = r[1]\n"
    "    for i = 1, #r[2], 2 do\n"
    "      if not f then\n"
    "        f = waiting(r[2][i])\n"
    "        due = r[2][i+1]\n"
    "      end\n"
    "    end\n"
    "    seen = seen + 1000\n"
    "  until f or cur == '0' or seen >= maxn\n"
    "  if not f and cur ~= '0' then incomplete = 1 end\n"
    "end\n"
    "if f then return {'delayed', '', f, due, '', 0, incomplete} end\n"
    "local function find(key)\n"
    "  local cursor, seen = '-', 0\n"
    "  while seen < maxn do\n"
    "    local batch = redis.call('XRANGE', key, cursor, '+', 'COUNT', 500)\n"
    "    if #batch == 0 then return nil end\n"
    "    for _, e in ipairs(batch) do\n"
    "      local jid = e[1]\n"
    "      for i = 1, #e[2], 2 do\n"
    "        if e[2][i] == 'id' and e[2][i+1] ~= '' then jid = e[2][i+1] end\n"
    "      end\n"
    "      if jid == id or e[1] == id then return e end\n"
    "    end\n"
    "    seen = seen + #batch\n"
    "    cursor = '(' .. batch[#batch][1]\n"
    "  end\n"
    "  incomplete = 1\n"
    "  return nil\n"
    "end\n"
    "local e = find(KEYS[3])\n"
    "if e then\n"
    "  local p = redis.pcall('XPENDING', KEYS[3], group, e[1], e[1], 1)\n"
    "  if type(p) == 'table' and p.err == nil and p[1] then\n"
    "    return {'running', e[1], e[2], '', p[1][2], p[1][4], incomplete}\n"
    "  end\n"
    "  return {'ready', e[1], e[2], '', '', 0, incomplete}\n"
    "end\n"
    "e = find(KEYS[4])\n"
    "if e then return {'dead', e[1], e[2], '', '', 0, incomplete} end\n"
    "return {'none', '', {}, '', '', 0, incomplete}\n"
};
