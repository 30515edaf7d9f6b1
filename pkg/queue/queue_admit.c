/*
 * queue_admit.c -- the admission scripts (deduplication, fleet-wide
 * concurrency, rate limits) and their builders; see drover/queue_admit.h.
 *
 * The scripts use only commands the documented ACL rule already grants
 * (expired leases are found with ZRANGEBYSCORE and removed with ZREM).
 *
 * Numbers: Lua numbers are doubles, exact up to 2^53; Redis time in
 * microseconds (about 1.8e15) fits. Lua 5.1 prints a double with 14
 * digits, so every number written back to Redis goes through
 * string.format('%.0f').
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "drover/common.h"
#include "drover/queue_admit.h"

#include "queue_int.h"


/*
 * admit: KEYS = jobs, delayed, stats, then per job its unique, conc and
 * rate keys (those it has, in that order). ARGV = group, consumer,
 * lease_ms, then per job: entry id, job id, attempt, unique ('1'/'0'),
 * conc_n (0 = none), rate interval us (0 = none), rate horizon us,
 * lease member. Returns {code, delay_ms, at_ms} per job, flattened
 * (at_ms: when it may start, Redis time).
 */
const struct drv_queue_script drv_queue_admit_script = {
    "admit",
    "local jobs, delayed, stats = KEYS[1], KEYS[2], KEYS[3]\n"
    "local group, me, lease = ARGV[1], ARGV[2], tonumber(ARGV[3])\n"
    "local t = redis.call('TIME')\n"
    "local nowus = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local now = math.floor(nowus / 1000)\n"
    "local function num(x) return string.format('%.0f', x) end\n"
    "local out, deduped = {}, 0\n"
    "local b, k = 4, 4\n"
    "while ARGV[b] do\n"
    "  local eid, jid, att = ARGV[b], ARGV[b+1], ARGV[b+2]\n"
    "  local uniq, cn = ARGV[b+3] == '1', tonumber(ARGV[b+4])\n"
    "  local iv, hz, mem = tonumber(ARGV[b+5]), tonumber(ARGV[b+6]), ARGV[b+7]\n"
    "  b = b + 8\n"
    "  local uk, ck, rk\n"
    "  if uniq then uk = KEYS[k]; k = k + 1 end\n"
    "  if cn > 0 then ck = KEYS[k]; k = k + 1 end\n"
    "  if iv > 0 then rk = KEYS[k]; k = k + 1 end\n"
    "  local code, delay, at, leased = 1, 0, now, false\n"
    "  if uk then\n"
    "    local v = redis.call('GET', uk)\n"
    "    if v == eid or v == 'w:' .. att or\n"
    "       (not v and not redis.call('ZSCORE', delayed, jid)) then\n"
    "      redis.call('SET', uk, eid, 'PX', 2 * lease)\n"
    "    else\n"
    "      local p = redis.call('XPENDING', jobs, group, eid, eid, 1)\n"
    "      if p[1] ~= nil and p[1][2] == me then\n"
    "        redis.call('XACK', jobs, group, eid)\n"
    "        redis.call('XDEL', jobs, eid)\n"
    "        deduped = deduped + 1\n"
    "        code = 2\n"
    "      else\n"
    "        code = 0\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  if code == 1 and ck then\n"
    "    local old = redis.call('ZRANGEBYSCORE', ck, '-inf', now)\n"
    "    if #old > 0 then redis.call('ZREM', ck, unpack(old)) end\n"
    "    if redis.call('ZSCORE', ck, mem) or\n"
    "       redis.call('ZCARD', ck) < cn then\n"
    "      redis.call('ZADD', ck, now + lease, mem)\n"
    "      redis.call('PEXPIRE', ck, 2 * lease)\n"
    "      leased = true\n"
    "    else\n"
    "      code, delay = 3, -1\n"
    "    end\n"
    "  end\n"
    "  if code == 1 and rk then\n"
    "    local tat = tonumber(redis.call('GET', rk) or '0') or 0\n"
    "    local slot = math.max(tat, nowus)\n"
    "    if slot - nowus > hz then\n"
    "      code, delay = 3, math.ceil((slot - hz - nowus) / 1000)\n"
    "      if leased then redis.call('ZREM', ck, mem) end\n"
    "    else\n"
    "      redis.call('SET', rk, num(slot + iv), 'PX',\n"
    "        num(math.ceil((slot + iv - nowus) / 1000) + 1000))\n"
    "      delay = math.ceil((slot - nowus) / 1000)\n"
    "      at = math.floor(slot / 1000)\n"
    "    end\n"
    "  end\n"
    "  out[#out+1] = code\n"
    "  out[#out+1] = delay\n"
    "  out[#out+1] = at\n"
    "end\n"
    "if deduped > 0 then redis.call('HINCRBY', stats, 'deduped', deduped) end\n"
    "return out\n"
};

/*
 * admit renew: KEYS = per job its unique key and conc key (those it
 * has). ARGV = lease_ms, then per job: entry id, unique ('1'/'0'), lease
 * member ('' = none).
 */
const struct drv_queue_script drv_queue_admit_renew_script = {
    "admit_renew",
    "local lease = tonumber(ARGV[1])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local b, k, n = 2, 1, 0\n"
    "while ARGV[b] do\n"
    "  local eid, uniq, mem = ARGV[b], ARGV[b+1] == '1', ARGV[b+2]\n"
    "  b = b + 3\n"
    "  if uniq then\n"
    "    if redis.call('GET', KEYS[k]) == eid then\n"
    "      redis.call('PEXPIRE', KEYS[k], 2 * lease)\n"
    "    end\n"
    "    k = k + 1\n"
    "  end\n"
    "  if mem ~= '' then\n"
    "    if redis.call('ZADD', KEYS[k], 'XX', 'CH', now + lease, mem) == 1 then\n"
    "      n = n + 1\n"
    "    end\n"
    "    redis.call('PEXPIRE', KEYS[k], 2 * lease)\n"
    "    k = k + 1\n"
    "  end\n"
    "end\n"
    "return n\n"
};

/* unique free: KEYS = the unique key. */
const struct drv_queue_script drv_queue_unique_free_script = {
    "unique_free",
    "local v = redis.call('GET', KEYS[1])\n"
    "if v and v ~= 'ok' then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  return 1\n"
    "end\n"
    "return 0\n"
};

/* The Lua block the settle script ends with (queue_scripts.c): after
 * the ops, ARGV may go on with 'admit', count, then per record: op index,
 * entry id, unique action ('' none, '-' free, else the value to set),
 * ttl_ms, lease member ('' none); KEYS go on with the record's unique
 * key (when it has an action) and conc key (when it has a member). */

/* ---------------------------------------------------------- builders */

char *
drv_queue_admit_key(const struct drv_queue_keys *k, const char *kind,
                    const char *type, const char *val, size_t val_len,
                    size_t *len)
{
    /* job_prefix is P:{Q}:job: -- the queue's base is all but "job:" */
    size_t base = strlen(k->job_prefix) - strlen("job:");
    size_t n = base + strlen(kind) + 1 + strlen(type) +
               (val != NULL ? 1 + val_len : 0);
    char *s = drv_xmalloc(n + 1);
    size_t o = 0;

    memcpy(s, k->job_prefix, base);
    o = base;
    o += (size_t)sprintf(s + o, "%s:%s", kind, type);
    if (val != NULL) {
        s[o++] = ':';
        memcpy(s + o, val, val_len);
        o += val_len;
    }
    s[o] = '\0';
    *len = o;
    return s;
}

void
drv_queue_admit_init(struct drv_script_call *c,
                     const struct drv_queue_keys *k, const char *consumer,
                     int64_t lease_ms)
{
    drv_script_call_init(c, &drv_queue_admit_script);
    drv__queue_adds(&c->keys, k->jobs, k->delayed, k->stats, NULL);
    drv_argv_adds(&c->args, DRV_QUEUE_GROUP);
    drv_argv_adds(&c->args, consumer);
    drv_argv_addll(&c->args, (long long)lease_ms);
}

void
drv_queue_admit_add(struct drv_script_call *c,
                    const struct drv_queue_admit_job *a)
{
    if (a->unique_key != NULL)
        drv_argv_add(&c->keys, a->unique_key, a->unique_len);
    if (a->conc_key != NULL)
        drv_argv_add(&c->keys, a->conc_key, a->conc_len);
    if (a->rate_key != NULL)
        drv_argv_add(&c->keys, a->rate_key, a->rate_len);
    drv_argv_adds(&c->args, a->entry_id);
    drv_argv_add(&c->args, a->job_id, a->job_id_len);
    drv_argv_addll(&c->args, (long long)a->attempt);
    drv_argv_adds(&c->args, a->unique_key != NULL ? "1" : "0");
    drv_argv_addll(&c->args, a->conc_key != NULL ? a->conc_n : 0);
    drv_argv_addll(&c->args, a->rate_key != NULL ?
                   (long long)a->rate_interval_us : 0);
    drv_argv_addll(&c->args, (long long)a->rate_horizon_us);
    drv_argv_adds(&c->args, a->member != NULL ? a->member : "");
}

int
drv_queue_admit_parse(const redisReply *reply, int n,
                      struct drv_queue_admit_answer *out,
                      struct drv_err *err)
{
    int i, rc = drv__queue_check_ints(reply, (size_t)n * 3, "admit", err);

    for (i = 0; rc == 0 && i < n; i++) {
        long long code = reply->element[3 * i]->integer;

        if (code < 0 || code > DRV_QUEUE_ADMIT_WAIT)
            return drv_err_set(err, DRV_EPROTO, "admit: job %d: code %lld",
                               i, code);
        out[i].code = (enum drv_queue_admit_code)code;
        out[i].delay_ms = reply->element[3 * i + 1]->integer;
        out[i].at_ms = reply->element[3 * i + 2]->integer;
    }
    return rc;
}

void
drv_queue_admit_settle_begin(struct drv_script_call *c, int count)
{
    drv_argv_adds(&c->args, "admit");
    drv_argv_addll(&c->args, count);
}

void
drv_queue_admit_settle_add(struct drv_script_call *c, int op,
                           const char *entry_id, const char *unique_key,
                           size_t unique_len, const char *unique_set,
                           int64_t ttl_ms, const char *conc_key,
                           size_t conc_len, const char *member)
{
    drv_argv_addll(&c->args, op);
    drv_argv_adds(&c->args, entry_id);
    if (unique_key != NULL) {
        drv_argv_add(&c->keys, unique_key, unique_len);
        drv_argv_adds(&c->args, unique_set != NULL ? unique_set : "-");
    } else {
        drv_argv_add(&c->args, "", 0);
    }
    drv_argv_addll(&c->args, (long long)(ttl_ms > 0 ? ttl_ms : 1));
    if (conc_key != NULL) {
        drv_argv_add(&c->keys, conc_key, conc_len);
        drv_argv_adds(&c->args, member);
    } else {
        drv_argv_add(&c->args, "", 0);
    }
}

void
drv_queue_admit_renew_init(struct drv_script_call *c, int64_t lease_ms)
{
    drv_script_call_init(c, &drv_queue_admit_renew_script);
    drv_argv_addll(&c->args, (long long)lease_ms);
}

void
drv_queue_admit_renew_add(struct drv_script_call *c, const char *entry_id,
                          const char *unique_key, size_t unique_len,
                          const char *conc_key, size_t conc_len,
                          const char *member)
{
    if (unique_key != NULL)
        drv_argv_add(&c->keys, unique_key, unique_len);
    if (conc_key != NULL)
        drv_argv_add(&c->keys, conc_key, conc_len);
    drv_argv_adds(&c->args, entry_id);
    drv_argv_adds(&c->args, unique_key != NULL ? "1" : "0");
    drv_argv_adds(&c->args, conc_key != NULL ? member : "");
}

void
drv_queue_unique_free(struct drv_script_call *c, const char *unique_key,
                      size_t unique_len)
{
    drv_script_call_init(c, &drv_queue_unique_free_script);
    drv_argv_add(&c->keys, unique_key, unique_len);
}
