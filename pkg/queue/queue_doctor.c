/*
 * queue_doctor.c -- what drover needs from a Redis: the list of commands
 * an ACL user must be allowed (and the rule made from it), and the
 * checks of `drover doctor`. Builders and judges only: nothing here
 * sends a command (see drover/doctor.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <hiredis/hiredis.h>

#include "drover/common.h"
#include "drover/doctor.h"
#include "drover/parse.h"
#include "drover/queue.h"
#include "drover/redis_cluster.h"
#include "queue_int.h"

/* ------------------------------------------------------------- the ACL */

/*
 * Every command droverd, drover and `drover web` send, each under a
 * comment saying what for (the table of doc/redis-deployments-acl.md).
 * The Lua scripts' own calls are here too: Redis checks a script's
 * redis.call against the caller's ACL. AUTH needs no rule (it is always
 * allowed). Keep the list sorted by purpose (the groups under the "--"
 * comments), then name.
 */
const struct drv_queue_acl_cmd drv_queue_acl_cmds[] = {
    /* -- connection setup */
    /* names each connection (CLIENT LIST shows which is droverd's) */
    {"+client|setname", "CLIENT SETNAME drover"},
    /* the blocking connection's id, for CLIENT UNBLOCK */
    {"+client|id", "CLIENT ID"},
    /* a graceful stop wakes the blocked fetch at once */
    {"+client|unblock", "CLIENT UNBLOCK 1"},
    /* a URL ending in /N (N > 0) selects database N */
    {"+select", "SELECT 0"},

    /* -- fetching */
    /* creates each queue's consumer group */
    {"+xgroup|create", "XGROUP CREATE KEY drover 0 MKSTREAM"},
    /* fetches jobs */
    {"+xreadgroup", "XREADGROUP GROUP drover c COUNT 1 STREAMS KEY >"},
    /* reads the queues' paused flags */
    {"+mget", "MGET KEY"},

    /* -- the scripts (settle, mover, reclaim, renew, dead retry, lookup) */
    /* runs the scripts */
    {"+evalsha", "EVALSHA 0000000000000000000000000000000000000000 1 KEY"},
    /* runs a script Redis does not know yet (NOSCRIPT), and the CLI's */
    {"+eval", "EVAL x 1 KEY"},
    /* deletes settled job hashes, a dead stream (purge), the paused flag
     * (resume) */
    {"+del", "DEL KEY"},
    /* reads delayed jobs, results and the worker registry */
    {"+hgetall", "HGETALL KEY"},
    /* counts processed, failed, retried, dead */
    {"+hincrby", "HINCRBY KEY f 1"},
    /* writes delayed jobs, results and the worker registry */
    {"+hset", "HSET KEY f v"},
    /* expires results after result_ttl */
    {"+pexpire", "PEXPIRE KEY 1"},
    /* acknowledges finished jobs */
    {"+xack", "XACK KEY drover 0-1"},
    /* enqueues jobs, retries, requeues and dead letters */
    {"+xadd", "XADD KEY * f v"},
    /* takes over the jobs of a dead worker, renews leases */
    {"+xclaim", "XCLAIM KEY drover c 0 0-1"},
    /* deletes settled entries */
    {"+xdel", "XDEL KEY 0-1"},
    /* checks ownership, finds idle jobs */
    {"+xpending", "XPENDING KEY drover"},
    /* reads dead letters and looks jobs up */
    {"+xrange", "XRANGE KEY - +"},
    /* keeps the dead streams bounded */
    {"+xtrim", "XTRIM KEY MAXLEN ~ 1"},
    /* delays retries and scheduled jobs */
    {"+zadd", "ZADD KEY 1 m"},
    /* finds due delayed jobs */
    {"+zrangebyscore", "ZRANGEBYSCORE KEY 0 1"},
    /* moves due delayed jobs back */
    {"+zrem", "ZREM KEY m"},
    /* looks a delayed job up */
    {"+zscore", "ZSCORE KEY m"},
    /* finds delayed jobs sharing an id */
    {"+zscan", "ZSCAN KEY 0 MATCH m"},

    /* -- graph pipelines (the graph scripts) */
    /* reads a graph run's state */
    {"+hget", "HGET KEY f"},
    /* keeps a fan-out item's result once */
    {"+hsetnx", "HSETNX KEY f v"},
    /* reads the next item of a fan-out */
    {"+lindex", "LINDEX KEY 0"},
    /* keeps a fan-out's items in a list */
    {"+rpush", "RPUSH KEY v"},
    /* reads a schedule's last tick, an id's holder (unique_for), a rate's
     * state */
    {"+get", "GET KEY"},
    /* with Sentinel: checks a node really is the primary */
    {"+role", "ROLE"},
    /* on a Redis Cluster: finds the master of each queue's slot */
    {"+cluster|slots", "CLUSTER SLOTS"},
    /* on a Redis Cluster: droverd and the CLI follow an ASK during a slot
     * migration */
    {"+asking", "ASKING"},

    /* -- stats, the CLI, the dashboard, the metrics */
    /* tells whether a queue is paused */
    {"+exists", "EXISTS KEY"},
    /* removes a worker from the registry */
    {"+hdel", "HDEL KEY f"},
    /* reads a queue's counters */
    {"+hmget", "HMGET KEY f"},
    /* reads a queue's counts at one instant */
    {"+multi", "MULTI"},
    /* ends that MULTI */
    {"+exec", "EXEC"},
    /* pauses a queue; holds an id (unique_for), a rate's state */
    {"+set", "SET KEY 1"},
    /* counts ready and running jobs */
    {"+xinfo|groups", "XINFO GROUPS KEY"},
    /* counts the entries of a stream */
    {"+xlen", "XLEN KEY"},
    /* counts delayed jobs and fleet-wide leases */
    {"+zcard", "ZCARD KEY"},

    /* -- drover doctor */
    /* drover doctor: version, eviction policy, AOF */
    {"+info", "INFO server"},
    /* Redis's clock for the schedule, cancel and admission scripts;
     * drover doctor: the workers' clock skew */
    {"+time", "TIME"},
    /* drover doctor on a Redis Cluster: the cluster's state */
    {"+cluster|info", "CLUSTER INFO"},
    /* checks each queue key's type before writing; drover doctor names a
     * wrong one */
    {"+type", "TYPE KEY"},

    /* -- cancel and wait (channels P:{Q}:done, allowed by &P:*) */
    /* reads a queue's cancel markers */
    {"+zrange", "ZRANGE KEY 0 -1"},
    /* announces a job's final outcome */
    {"+publish", "PUBLISH KEY m"},
    /* drover wait: hears of the outcome */
    {"+subscribe", "SUBSCRIBE KEY"},
};

const size_t drv_queue_acl_ncmds =
    sizeof drv_queue_acl_cmds / sizeof drv_queue_acl_cmds[0];

void
drv_queue_acl_rule(struct drv_buf *b, const char *user,
                   const char *password, const char *prefix)
{
    size_t i;

    drv_buf_addf(b, "ACL SETUSER %s on >%s ~%s:* &%s:* -@all", user,
                 password, prefix, prefix);
    for (i = 0; i < drv_queue_acl_ncmds; i++)
        drv_buf_addf(b, " %s", drv_queue_acl_cmds[i].rule);
}

/* ------------------------------------------------------------ the report */

void
drv_queue_doctor_report_init(struct drv_queue_doctor_report *rep)
{
    memset(rep, 0, sizeof *rep);
    rep->magic = DRV_QUEUE_DOCTOR_REPORT_MAGIC;
    drv_buf_init(&rep->text);
}

void
drv_queue_doctor_report_fini(struct drv_queue_doctor_report *rep)
{
    DRV_CHECK_OBJ(rep, DRV_QUEUE_DOCTOR_REPORT_MAGIC);
    drv_buf_fini(&rep->text);
    memset(rep, 0, sizeof *rep);
}

void
drv_queue_doctor_say(struct drv_queue_doctor_report *rep,
                     enum drv_queue_doctor_level level, const char *fmt,
                     ...)
{
    static const char *const names[] = {"ok", "unchecked", "problem"};
    char line[1024];
    va_list ap;

    DRV_CHECK_OBJ(rep, DRV_QUEUE_DOCTOR_REPORT_MAGIC);
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    drv_buf_addf(&rep->text, "%s: %s\n", names[level], line);
    if (level == DRV_QUEUE_DOCTOR_PROBLEM)
        rep->problems++;
    else if (level == DRV_QUEUE_DOCTOR_UNCHECKED)
        rep->unchecked++;
}

/* ------------------------------------------------------------- helpers */

/* A Redis error reply's text (NULL when r is no error). */
static const char *
error_text(const redisReply *r)
{
    if (r == NULL)
        return "no reply";
    return r->type == REDIS_REPLY_ERROR ? r->str : NULL;
}

/*
 * The value of field name in an INFO reply ("name:value\r\n" lines) into
 * out (size n); 0, or -ENOENT when absent.
 */
static int
info_field(const redisReply *r, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name), len;
    const char *p, *end, *eol;

    if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)
        return -ENOENT;
    p = r->str;
    end = r->str + r->len;
    while (p < end) {
        eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if ((size_t)(eol - p) > nl && memcmp(p, name, nl) == 0 &&
            p[nl] == ':') {
            p += nl + 1;
            len = (size_t)(eol - p);
            if (len > 0 && p[len - 1] == '\r')
                len--;
            if (len >= n)
                len = n - 1;
            memcpy(out, p, len);
            out[len] = '\0';
            return 0;
        }
        p = eol + 1;
    }
    return -ENOENT;
}

/*
 * An INFO reply's field, or a line saying why it cannot be read:
 * 0 with the value in out, else -1 after an "unchecked" line about what.
 */
static int
info_or_say(const redisReply *r, const char *section, const char *name,
            const char *what, char *out, size_t n,
            struct drv_queue_doctor_report *rep)
{
    const char *e = error_text(r);

    if (e != NULL) {
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_UNCHECKED,
                             "%s: INFO %s refused (%s)", what, section, e);
        return -1;
    }
    if (info_field(r, name, out, n) < 0) {
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_UNCHECKED,
                             "%s: INFO %s has no %s field", what, section,
                             name);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------- version */

/* Redis 6.2 brought XPENDING IDLE and XTRIM MINID, which drover uses. */
#define NEED_MAJOR 6
#define NEED_MINOR 2

/* v: INFO server's redis_version */
static void
version_judge(const char *v, const redisReply *info DRV_UNUSED,
              struct drv_queue_doctor_report *rep)
{
    int major = 0, minor = 0;

    if (sscanf(v, "%d.%d", &major, &minor) != 2) {
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_UNCHECKED,
                             "the Redis version: \"%s\" does not read as "
                             "MAJOR.MINOR", v);
        return;
    }
    if (major < NEED_MAJOR || (major == NEED_MAJOR && minor < NEED_MINOR))
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_PROBLEM,
                             "Redis %s is too old: drover needs %d.%d or "
                             "newer (XPENDING IDLE, XTRIM MINID); upgrade "
                             "Redis", v, NEED_MAJOR, NEED_MINOR);
    else
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_OK,
                             "Redis %s (drover needs %d.%d or newer)", v,
                             NEED_MAJOR, NEED_MINOR);
}

/* ------------------------------------------------------------ eviction */

/* policy: INFO memory's maxmemory_policy */
static void
eviction_judge(const char *policy, const redisReply *info,
               struct drv_queue_doctor_report *rep)
{
    char mem[64];

    if (info_field(info, "maxmemory_human", mem, sizeof mem) < 0)
        snprintf(mem, sizeof mem, "?");
    if (strcmp(policy, "noeviction") == 0)
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_OK,
                             "maxmemory-policy noeviction (maxmemory %s): "
                             "a full Redis refuses writes, it never drops "
                             "a job", mem);
    else
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_PROBLEM,
                             "maxmemory-policy %s (maxmemory %s): when "
                             "memory runs short Redis silently evicts keys, "
                             "jobs and their queues included; set "
                             "maxmemory-policy noeviction (redis.conf, or "
                             "CONFIG SET maxmemory-policy noeviction)",
                             policy, mem);
}

/* --------------------------------------------------------- persistence */

/* aof: INFO persistence's aof_enabled */
static void
persistence_judge(const char *aof, const redisReply *info DRV_UNUSED,
                  struct drv_queue_doctor_report *rep)
{
    if (strcmp(aof, "1") == 0)
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_OK,
                             "appendonly yes: an enqueued job survives a "
                             "restart (appendfsync decides how much of the "
                             "last second)");
    else
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_PROBLEM,
                             "appendonly no: a restart loses jobs acked as "
                             "enqueued since the last RDB save; set "
                             "appendonly yes (appendfsync everysec)");
}

/* ----------------------------------------------------------------- ACL */

/* The key ACL DRYRUN names for KEY: the first queue's stream. */
static char *
sample_key(const struct drv_queue_doctor_opts *o)
{
    struct drv_queue_keys k;
    char *key;

    drv_queue_keys_init(&k, o->prefix,
                        o->nqueues > 0 ? o->queues[0] : "default");
    key = drv_xstrdup(k.jobs);
    drv_queue_keys_fini(&k);
    return key;
}

static size_t
acl_build(struct drv_queue_cmds *c, const struct drv_queue_doctor_opts *o)
{
    char *key = sample_key(o), *words, *w, *save = NULL;
    struct drv_argv *a;
    size_t i;

    for (i = 0; i < drv_queue_acl_ncmds; i++) {
        a = drv__queue_add_cmd(c, "ACL", "DRYRUN");
        drv_argv_adds(a, o->acl_user);
        words = drv_xstrdup(drv_queue_acl_cmds[i].dryrun);
        for (w = strtok_r(words, " ", &save); w != NULL;
             w = strtok_r(NULL, " ", &save))
            drv_argv_adds(a, strcmp(w, "KEY") == 0 ? key : w);
        free(words);
    }
    free(key);
    return drv_queue_acl_ncmds;
}

/* The first reply is an error: ACL DRYRUN itself did not run. */
static void
acl_refused(const char *e, const struct drv_queue_doctor_opts *o,
            struct drv_queue_doctor_report *rep)
{
    if (strstr(e, "not found") != NULL)
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_PROBLEM,
                             "ACL user %s does not exist: create it "
                             "(`drover doctor --acl-rule` prints the rule)",
                             o->acl_user);
    else if (strncmp(e, "NOPERM", 6) == 0)
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_UNCHECKED,
                             "the permissions of ACL user %s: this "
                             "connection may not run ACL DRYRUN (%s); run "
                             "drover doctor as an admin (--redis "
                             "redis://ADMIN@HOST) with --user %s",
                             o->acl_user, e, o->acl_user);
    else if (strstr(e, "nknown subcommand") != NULL ||
             strstr(e, "nknown command") != NULL)
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_UNCHECKED,
                             "the permissions of ACL user %s: ACL DRYRUN "
                             "needs Redis 7.0 or newer", o->acl_user);
    else
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_UNCHECKED,
                             "the permissions of ACL user %s: ACL DRYRUN "
                             "failed: %s", o->acl_user, e);
}

static void
acl_judge(struct redisReply *const *r, size_t n,
          const struct drv_queue_doctor_opts *o,
          struct drv_queue_doctor_report *rep)
{
    struct drv_buf names, rules;
    const char *e;
    char *key = NULL;
    size_t i, missing = 0;
    int key_denied = 0;

    DRV_ASSERT(n == drv_queue_acl_ncmds);
    for (i = 0; i < n; i++) {
        e = error_text(r[i]);
        if (e != NULL) {
            acl_refused(e, o, rep);
            return;
        }
    }
    drv_buf_init(&names);
    drv_buf_init(&rules);
    for (i = 0; i < n; i++) {
        /* allowed: +OK; denied: a bulk string saying why */
        if (r[i]->type == REDIS_REPLY_STATUS && strcmp(r[i]->str, "OK") == 0)
            continue;
        if (r[i]->type == REDIS_REPLY_STRING &&
            strstr(r[i]->str, "access the") != NULL) {
            key_denied = 1;
            continue;
        }
        drv_buf_addf(&names, "%s%s", missing ? ", " : "",
                     drv_queue_acl_cmds[i].rule + 1);
        drv_buf_addf(&rules, " %s", drv_queue_acl_cmds[i].rule);
        missing++;
    }
    if (missing > 0)
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_PROBLEM,
                             "ACL user %s may not run %s: drover needs "
                             "%s; grant %s: ACL SETUSER %s%s",
                             o->acl_user, names.len ? names.data : "",
                             missing == 1 ? "it" : "them",
                             missing == 1 ? "it" : "them", o->acl_user,
                             rules.len ? rules.data : "");
    if (key_denied) {
        key = sample_key(o);
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_PROBLEM,
                             "ACL user %s may not access the key %s: grant "
                             "the prefix's keys: ACL SETUSER %s ~%s:*",
                             o->acl_user, key, o->acl_user, o->prefix);
        free(key);
    }
    if (missing == 0 && !key_denied)
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_OK,
                             "ACL user %s may run the %zu commands drover "
                             "sends on keys %s:*", o->acl_user, n,
                             o->prefix);
    drv_buf_fini(&names);
    drv_buf_fini(&rules);
}

/* -------------------------------------------------------------- queues */

/* The keys of a queue doctor looks at, and the type each must have. */
enum { K_JOBS, K_DELAYED, K_DEAD, K_STATS, K_PAUSED, NKEYS };
static const char *const key_type[NKEYS] = {
    "stream", "zset", "stream", "hash", "string",
};
/* per queue: TYPE of each key, XINFO GROUPS jobs, XLEN dead */
#define QUEUE_CMDS (NKEYS + 2)

static const char *
key_of(const struct drv_queue_keys *k, int i)
{
    const char *const keys[NKEYS] = {k->jobs, k->delayed, k->dead, k->stats,
                                     k->paused};

    return keys[i];
}

static size_t
queues_build(struct drv_queue_cmds *c, const struct drv_queue_doctor_opts *o)
{
    struct drv_queue_keys k;
    size_t q;
    int i;

    for (q = 0; q < o->nqueues; q++) {
        drv_queue_keys_init(&k, o->prefix, o->queues[q]);
        for (i = 0; i < NKEYS; i++)
            drv__queue_add_cmd(c, "TYPE", key_of(&k, i));
        drv_argv_adds(drv__queue_add_cmd(c, "XINFO", "GROUPS"), k.jobs);
        drv__queue_add_cmd(c, "XLEN", k.dead);
        drv_queue_keys_fini(&k);
    }
    return o->nqueues * QUEUE_CMDS;
}

/* 1 when an XINFO GROUPS reply lists the group drover. */
static int
has_group(const redisReply *r)
{
    const redisReply *g;
    size_t i, j;

    for (i = 0; i < r->elements; i++) {
        g = r->element[i];
        if (g->type != REDIS_REPLY_ARRAY)
            continue;
        for (j = 0; j + 1 < g->elements; j += 2)
            if (g->element[j]->type == REDIS_REPLY_STRING &&
                strcmp(g->element[j]->str, "name") == 0 &&
                g->element[j + 1]->type == REDIS_REPLY_STRING &&
                strcmp(g->element[j + 1]->str, DRV_QUEUE_GROUP) == 0)
                return 1;
    }
    return 0;
}

/* One queue's replies (QUEUE_CMDS of them); returns problems found. */
static int
queue_judge(const char *queue, struct redisReply *const *r,
            const struct drv_queue_doctor_opts *o,
            struct drv_queue_doctor_report *rep)
{
    struct drv_queue_keys k;
    const char *e, *t;
    char group[96], dead[96];
    int i, bad = 0, any = 0, jobs_ok = 0;

    drv_queue_keys_init(&k, o->prefix, queue);
    for (i = 0; i < NKEYS; i++) {
        e = error_text(r[i]);
        if (e != NULL || r[i]->type != REDIS_REPLY_STATUS) {
            drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_UNCHECKED,
                                 "queue %s: the type of %s: %s", queue,
                                 key_of(&k, i), e ? e : "odd TYPE reply");
            continue;
        }
        t = r[i]->str;
        if (strcmp(t, "none") == 0)
            continue;
        any = 1;
        if (strcmp(t, key_type[i]) == 0) {
            if (i == K_JOBS)
                jobs_ok = 1;
            continue;
        }
        bad++;
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_PROBLEM,
                             "queue %s: key %s is a %s, not a %s "
                             "(WRONGTYPE): drover cannot use the queue "
                             "while it is; save what it holds and delete "
                             "it "
                             "(DEL %s)", queue, key_of(&k, i), t,
                             key_type[i], key_of(&k, i));
    }
    /* the consumer group, when the stream exists */
    group[0] = '\0';
    e = error_text(r[NKEYS]);
    if (jobs_ok && e == NULL && r[NKEYS]->type == REDIS_REPLY_ARRAY) {
        if (has_group(r[NKEYS])) {
            snprintf(group, sizeof group, ", consumer group %s",
                     DRV_QUEUE_GROUP);
        } else {
            bad++;
            drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_PROBLEM,
                                 "queue %s: the stream %s has no consumer "
                                 "group %s, so no worker ever served it: "
                                 "its jobs wait until a droverd with queue "
                                 "%s starts", queue, k.jobs,
                                 DRV_QUEUE_GROUP, queue);
        }
    } else if (jobs_ok) {
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_UNCHECKED,
                             "queue %s: its consumer group: %s", queue,
                             e ? e : "odd XINFO GROUPS reply");
    }
    /* how much of the dead stream is kept */
    dead[0] = '\0';
    e = error_text(r[NKEYS + 1]);
    if (e == NULL && r[NKEYS + 1]->type == REDIS_REPLY_INTEGER) {
        long long d = r[NKEYS + 1]->integer;

        /* the trims are approximate (XTRIM ~): up to one stream node
         * (100 entries) more may stay */
        if (o->dead_max > 0 && d > o->dead_max + 100) {
            bad++;
            drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_PROBLEM,
                                 "queue %s: %lld dead entries kept, more "
                                 "than worker.dead_max %" PRId64 ": the "
                                 "workers run with a larger dead_max, or "
                                 "none has written a dead entry since; "
                                 "`drover dead purge %s --older-than "
                                 "DURATION` trims it now", queue, d,
                                 o->dead_max, queue);
        } else if (o->dead_max > 0) {
            snprintf(dead, sizeof dead, ", dead %lld/%" PRId64 " kept", d,
                     o->dead_max);
        } else {
            snprintf(dead, sizeof dead, ", dead %lld kept", d);
        }
    }
    if (bad == 0)
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_OK, "queue %s: %s%s%s",
                             queue, any ? "keys of the right types"
                                        : "no keys yet",
                             group, dead);
    drv_queue_keys_fini(&k);
    return bad;
}

static void
queues_judge(struct redisReply *const *r, size_t n,
             const struct drv_queue_doctor_opts *o,
             struct drv_queue_doctor_report *rep)
{
    size_t q;

    DRV_ASSERT(n == o->nqueues * QUEUE_CMDS);
    for (q = 0; q < o->nqueues; q++)
        queue_judge(o->queues[q], r + q * QUEUE_CMDS, o, rep);
}

/* ------------------------------------------------------------- workers */

/* Workers beat this often; a beat older than it plus the allowed skew
 * means a clock behind Redis's, or a stuck worker. */
#define BEAT_EVERY_MS 5000

static size_t
workers_build(struct drv_queue_cmds *c, const struct drv_queue_doctor_opts *o)
{
    char *key = drv_queue_workers_key(o->prefix);

    drv__queue_add_cmd(c, "TIME", NULL);
    drv__queue_add_cmd(c, "HGETALL", key);
    free(key);
    return 2;
}

/* Redis's TIME reply as Unix ms; -1 when it does not read. */
static int64_t
time_ms(const redisReply *r)
{
    int64_t s, us;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_STRING ||
        drv_parse_int(r->element[0]->str, 0, INT64_MAX / 1000, &s) < 0 ||
        drv_parse_int(r->element[1]->str, 0, 999999, &us) < 0)
        return -1;
    return s * 1000 + us / 1000;
}

/* One worker against Redis's clock; 1 when it is a problem. */
static int
worker_judge(const struct drv_queue_worker *w, int64_t now,
             const struct drv_queue_doctor_opts *o,
             struct drv_queue_doctor_report *rep)
{
    char who[256];
    int64_t age;

    snprintf(who, sizeof who, "worker %s (host %s, pid %" PRId64 ")", w->id,
             w->host ? w->host : "?", w->pid);
    if (w->beat_ms < 0) {
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_PROBLEM,
                             "%s: its registry entry has no beat time; a "
                             "program other than droverd wrote it", who);
        return 1;
    }
    age = now - w->beat_ms;
    if (-age > o->skew_max_ms) {
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_PROBLEM,
                             "%s: its clock is %.1f s ahead of Redis's "
                             "(more than %.1f s): retry delays, leases and "
                             "dead ages come from the workers' clocks; sync "
                             "it (NTP)", who, (double)-age / 1000.0,
                             (double)o->skew_max_ms / 1000.0);
        return 1;
    }
    if (age > DRV_QUEUE_WORKER_STALE_MS) {
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_PROBLEM,
                             "%s is stale: its last beat is %" PRId64 " s "
                             "old by Redis's clock; if it still runs its "
                             "clock is far behind or it is stuck, else it "
                             "died without a clean stop (its jobs are "
                             "reclaimed, its entry is removed by the next "
                             "worker that beats)", who, age / 1000);
        return 1;
    }
    if (age > BEAT_EVERY_MS + o->skew_max_ms) {
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_PROBLEM,
                             "%s: its last beat is %.1f s old but workers "
                             "beat every %d s: its clock is %.1f to %.1f s "
                             "behind Redis's, or it is stuck; sync it "
                             "(NTP)", who, (double)age / 1000.0,
                             BEAT_EVERY_MS / 1000,
                             (double)(age - BEAT_EVERY_MS) / 1000.0,
                             (double)age / 1000.0);
        return 1;
    }
    return 0;
}

static void
workers_judge(struct redisReply *const *r, size_t n,
              const struct drv_queue_doctor_opts *o,
              struct drv_queue_doctor_report *rep)
{
    struct drv_queue_workers ws;
    struct drv_err err;
    const char *e;
    int64_t now;
    size_t i;
    int bad = 0;

    DRV_ASSERT(n == 2);
    e = error_text(r[0]);
    now = e == NULL ? time_ms(r[0]) : -1;
    if (now < 0) {
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_UNCHECKED,
                             "the workers' clocks: Redis's TIME: %s",
                             e ? e : "odd reply");
        return;
    }
    if (drv_queue_workers_parse(&r[1], 1, &ws, &err) < 0) {
        /* a registry key of another type is a problem; a refused
         * HGETALL only leaves the clocks unchecked */
        drv_queue_doctor_say(rep, strstr(err.msg, "WRONGTYPE") != NULL
                                 ? DRV_QUEUE_DOCTOR_PROBLEM
                                 : DRV_QUEUE_DOCTOR_UNCHECKED,
                             "the worker registry: %s", err.msg);
        return;
    }
    for (i = 0; i < ws.n; i++)
        bad += worker_judge(&ws.w[i], now, o, rep);
    if (ws.n == 0)
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_OK,
                             "no workers registered");
    else if (bad == 0)
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_OK,
                             "%zu worker%s beating, clock%s within %.1f s "
                             "of Redis's", ws.n, ws.n == 1 ? "" : "s",
                             ws.n == 1 ? "" : "s",
                             (double)o->skew_max_ms / 1000.0);
    drv_queue_workers_fini(&ws);
}

/* ----------------------------------------------------------- sentinels */

/* The text of reply r's string, or NULL when r is no string. */
static const char *
str_of(const redisReply *r)
{
    return r != NULL && (r->type == REDIS_REPLY_STRING ||
                         r->type == REDIS_REPLY_STATUS)
               ? r->str
               : NULL;
}

void
drv_queue_doctor_sentinel_parse(struct drv_queue_doctor_sentinel *s,
                                const redisReply *addr_r,
                                const redisReply *master_r)
{
    const char *e, *k, *v;
    int64_t num;
    size_t i;

    s->quorum = s->known = -1;
    e = error_text(addr_r);
    if (e != NULL) {
        snprintf(s->error, sizeof s->error,
                 "SENTINEL get-master-addr-by-name: %s", e);
        return;
    }
    if (addr_r->type == REDIS_REPLY_NIL) {
        snprintf(s->error, sizeof s->error,
                 "it monitors no master of that name");
        return;
    }
    if (addr_r->type != REDIS_REPLY_ARRAY || addr_r->elements != 2 ||
        str_of(addr_r->element[0]) == NULL ||
        str_of(addr_r->element[1]) == NULL) {
        snprintf(s->error, sizeof s->error,
                 "SENTINEL get-master-addr-by-name: an odd reply");
        return;
    }
    snprintf(s->primary, sizeof s->primary, "%s:%s",
             addr_r->element[0]->str, addr_r->element[1]->str);
    e = error_text(master_r);
    if (e != NULL) {
        snprintf(s->error, sizeof s->error, "SENTINEL master: %s", e);
        return;
    }
    if (master_r->type != REDIS_REPLY_ARRAY) {
        snprintf(s->error, sizeof s->error, "SENTINEL master: an odd reply");
        return;
    }
    for (i = 0; i + 1 < master_r->elements; i += 2) {
        k = str_of(master_r->element[i]);
        v = str_of(master_r->element[i + 1]);
        if (k == NULL || v == NULL)
            continue;
        if (strcmp(k, "quorum") == 0 &&
            drv_parse_int(v, 0, INT32_MAX, &num) == 0)
            s->quorum = num;
        else if (strcmp(k, "num-other-sentinels") == 0 &&
                 drv_parse_int(v, 0, INT32_MAX, &num) == 0)
            s->known = num + 1;
        else if (strcmp(k, "flags") == 0)
            snprintf(s->flags, sizeof s->flags, "%s", v);
    }
}

/* One sentinel that answered against the primary the others (or the
 * connection) agree on; 1 when it is a problem. */
static int
sentinel_judge(const struct drv_queue_doctor_sentinel *s, const char *want,
               const struct drv_queue_doctor_opts *o,
               struct drv_queue_doctor_report *rep)
{
    int bad = 0;

    if (want != NULL && strcmp(s->primary, want) != 0) {
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_PROBLEM,
                             "sentinel %s names %s as the primary of %s, "
                             "not %s: it has not heard of a failover, or it "
                             "watches another deployment; point it at the "
                             "primary (SENTINEL REMOVE %s, then SENTINEL "
                             "MONITOR %s ...)", s->addr, s->primary,
                             o->sentinel_master, want, o->sentinel_master,
                             o->sentinel_master);
        bad = 1;
    }
    if (s->quorum >= 0 && s->known >= 0 && s->known < s->quorum) {
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_PROBLEM,
                             "sentinel %s sees %lld sentinel%s (itself "
                             "included), fewer than its quorum %lld: it can "
                             "never agree that the primary is down, so no "
                             "failover starts; let the sentinels reach each "
                             "other (their port, announce-ip) or lower the "
                             "quorum", s->addr, s->known,
                             s->known == 1 ? "" : "s", s->quorum);
        bad = 1;
    }
    if (strstr(s->flags, "s_down") != NULL ||
        strstr(s->flags, "o_down") != NULL) {
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_PROBLEM,
                             "sentinel %s sees the primary %s as down "
                             "(flags %s)", s->addr, s->primary, s->flags);
        bad = 1;
    }
    return bad;
}

static void
sentinels_judge(struct redisReply *const *r DRV_UNUSED, size_t n,
                const struct drv_queue_doctor_opts *o,
                struct drv_queue_doctor_report *rep)
{
    const struct drv_queue_doctor_sentinel *first = NULL;
    const char *want = o->primary;
    size_t i, answered = 0;
    int bad = 0;

    DRV_ASSERT(n == 0);
    if (o->nsentinels == 0)
        return;
    for (i = 0; i < o->nsentinels; i++) {
        const struct drv_queue_doctor_sentinel *s = &o->sentinels[i];

        if (s->error[0] != '\0') {
            int down = strncmp(s->error, "unreachable", 11) == 0;

            drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_PROBLEM,
                                 "sentinel %s: %s: it takes no part in "
                                 "finding the primary or in a failover; "
                                 "%s%s%s, or fix redis.sentinel", s->addr,
                                 s->error,
                                 down ? "start it" : "make it monitor ",
                                 down ? "" : o->sentinel_master,
                                 down ? "" : " (SENTINEL MONITOR)");
            bad++;
            continue;
        }
        answered++;
        if (first == NULL)
            first = s;
        if (want == NULL)
            want = s->primary; /* no connection: the first answer */
        bad += sentinel_judge(s, want, o, rep);
    }
    if (answered * 2 <= o->nsentinels) {
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_PROBLEM,
                             "only %zu of the %zu sentinels of %s name a "
                             "primary: a failover needs a majority of them",
                             answered, o->nsentinels, o->sentinel_master);
        bad++;
    }
    if (bad == 0 && first != NULL)
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_OK,
                             "the %zu sentinels of %s answer, each names "
                             "%s as the primary and sees %lld sentinels "
                             "(quorum %lld)", o->nsentinels,
                             o->sentinel_master, want, first->known,
                             first->quorum);
}

/* ----------------------------------------------------------------- TLS */

static void
tls_judge(struct redisReply *const *r DRV_UNUSED, size_t n,
          const struct drv_queue_doctor_opts *o,
          struct drv_queue_doctor_report *rep)
{
    time_t t = (time_t)o->cert_not_after;
    int64_t left = o->cert_not_after - o->now_s;
    char date[64];
    struct tm tm;

    DRV_ASSERT(n == 0);
    if (!o->tls)
        return;
    if (o->cert_not_after < 0 || gmtime_r(&t, &tm) == NULL) {
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_UNCHECKED,
                             "the server certificate's expiry: the TLS "
                             "connection showed no readable certificate");
        return;
    }
    strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", &tm);
    if (left <= 0)
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_PROBLEM,
                             "the server certificate expired on %s (%.1f "
                             "days ago): every client that verifies it is "
                             "refused; renew it", date,
                             (double)-left / 86400.0);
    else if (left < o->cert_warn_s)
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_PROBLEM,
                             "the server certificate expires on %s, in "
                             "%.1f days (less than %" PRId64 "): renew it "
                             "before every client that verifies it is "
                             "refused", date, (double)left / 86400.0,
                             o->cert_warn_s / 86400);
    else
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_OK,
                             "the server certificate is valid until %s "
                             "(%" PRId64 " days)", date, left / 86400);
}

/* ----------------------------------------------------------- cluster */

/* On a cluster: CLUSTER INFO and CLUSTER SLOTS (nothing otherwise). */
static size_t
cluster_build(struct drv_queue_cmds *c, const struct drv_queue_doctor_opts *o)
{
    if (!o->cluster)
        return 0;
    drv__queue_add_cmd(c, "CLUSTER", "INFO");
    drv__queue_add_cmd(c, "CLUSTER", "SLOTS");
    return 2;
}

/* cluster_state:ok, and every queue's slot served by a master. */
static void
cluster_judge(struct redisReply *const *r, size_t n,
              const struct drv_queue_doctor_opts *o,
              struct drv_queue_doctor_report *rep)
{
    struct drv_redis_cluster_map *m = NULL;
    const struct drv_redis_sentinel_addr *a;
    char state[32];
    struct drv_err err;
    size_t i;

    if (n == 0)
        return;
    DRV_ASSERT(n == 2);
    if (info_or_say(r[0], "cluster", "cluster_state", "the cluster's state",
                    state, sizeof state, rep) == 0) {
        if (strcmp(state, "ok") == 0)
            drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_OK,
                                 "cluster_state ok");
        else
            drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_PROBLEM,
                                 "cluster_state %s: the cluster refuses "
                                 "commands (a slot without a master, or "
                                 "no majority of masters); see CLUSTER "
                                 "INFO and CLUSTER NODES", state);
    }
    m = drv_xmalloc(sizeof *m);
    drv_err_clear(&err);
    if (drv_redis_cluster_map_parse(m, r[1], NULL, &err) < 0) {
        drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_UNCHECKED,
                             "the queues' slots: %s", err.msg);
        free(m);
        return;
    }
    for (i = 0; i < o->nqueues; i++) {
        int slot = drv_redis_cluster_slot(o->queues[i],
                                          strlen(o->queues[i]));

        a = drv_redis_cluster_map_node(m, slot);
        if (a == NULL)
            drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_PROBLEM,
                                 "queue %s: its hash slot %d is served by "
                                 "no master: assign it (CLUSTER "
                                 "ADDSLOTS %d on a master, or redis-cli "
                                 "--cluster fix)", o->queues[i], slot,
                                 slot);
        else
            drv_queue_doctor_say(rep, DRV_QUEUE_DOCTOR_OK,
                                 "queue %s: hash slot %d on master %s:%d",
                                 o->queues[i], slot, a->host, a->port);
    }
    free(m);
}

/* ------------------------------------------------------------ the table */

/*
 * The checks, in the order their lines appear. Add a check here: its
 * builder and its judge, or for one field of INFO the section, the field,
 * what it tells and the judge of its value. The checks that judge what
 * the caller learnt elsewhere have no builder.
 */
const struct drv_queue_doctor_check drv_queue_doctor_checks[] = {
    {.name = "version", .info = "server", .field = "redis_version",
     .what = "the Redis version", .judge_info = version_judge},
    {.name = "eviction", .info = "memory", .field = "maxmemory_policy",
     .what = "the eviction policy", .judge_info = eviction_judge},
    {.name = "persistence", .info = "persistence", .field = "aof_enabled",
     .what = "persistence", .judge_info = persistence_judge},
    {.name = "acl", .build = acl_build, .judge = acl_judge},
    {.name = "queues", .build = queues_build, .judge = queues_judge},
    {.name = "workers", .build = workers_build, .judge = workers_judge},
    {.name = "sentinels", .judge = sentinels_judge},
    {.name = "tls", .judge = tls_judge},
    {.name = "cluster", .build = cluster_build, .judge = cluster_judge},
    {.name = NULL},
};

size_t
drv_queue_doctor_check_build(const struct drv_queue_doctor_check *ck,
                             struct drv_queue_cmds *c,
                             const struct drv_queue_doctor_opts *o)
{
    if (ck->info != NULL) {
        drv__queue_add_cmd(c, "INFO", ck->info);
        return 1;
    }
    return ck->build != NULL ? ck->build(c, o) : 0;
}

void
drv_queue_doctor_check_judge(const struct drv_queue_doctor_check *ck,
                             struct redisReply *const *r, size_t n,
                             const struct drv_queue_doctor_opts *o,
                             struct drv_queue_doctor_report *rep)
{
    char v[64];

    if (ck->info == NULL) {
        ck->judge(r, n, o, rep);
        return;
    }
    DRV_ASSERT(n == 1);
    if (info_or_say(r[0], ck->info, ck->field, ck->what, v, sizeof v,
                    rep) == 0)
        ck->judge_info(v, r[0], rep);
}

size_t
drv_queue_doctor_nchecks(void)
{
    size_t n = 0;

    while (drv_queue_doctor_checks[n].name != NULL)
        n++;
    return n;
}

void
drv_queue_doctor_build(struct drv_queue_cmds *c,
                       const struct drv_queue_doctor_opts *o,
                       size_t *counts)
{
    size_t i, before;

    for (i = 0; drv_queue_doctor_checks[i].name != NULL; i++) {
        before = c->n;
        counts[i] = drv_queue_doctor_check_build(&drv_queue_doctor_checks[i],
                                                 c, o);
        DRV_ASSERT(c->n - before == counts[i]);
    }
}

void
drv_queue_doctor_judge(struct redisReply *const *r, size_t n,
                       const struct drv_queue_doctor_opts *o,
                       const size_t *counts,
                       struct drv_queue_doctor_report *rep)
{
    size_t i, off = 0;

    for (i = 0; drv_queue_doctor_checks[i].name != NULL; i++) {
        DRV_ASSERT(off + counts[i] <= n);
        drv_queue_doctor_check_judge(&drv_queue_doctor_checks[i], r + off,
                                     counts[i], o, rep);
        off += counts[i];
    }
    DRV_ASSERT(off == n);
}
