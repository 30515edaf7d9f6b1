/*
 * queue_admin.c -- the admin operations on a queue: enqueue, stats, dead
 * letters, pause and resume, result and job lookup. Each is a builder
 * (commands appended to a struct drv_queue_cmds) and a parser (those
 * replies into a plain struct). The worker registry is in
 * queue_registry.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/parse.h"
#include "drover/queue.h"
#include "queue_int.h"

/* ------------------------------------------------------------- batch */

void
drv_queue_cmds_init(struct drv_queue_cmds *c)
{
    memset(c, 0, sizeof *c);
}

void
drv_queue_cmds_fini(struct drv_queue_cmds *c)
{
    while (c->n > 0)
        drv_argv_fini(&c->cmd[--c->n]);
    free(c->cmd);
    memset(c, 0, sizeof *c);
}

struct drv_argv *
drv_queue_cmds_add(struct drv_queue_cmds *c)
{
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 8;
        c->cmd = drv_xrealloc(c->cmd, c->cap * sizeof *c->cmd);
    }
    drv_argv_init(&c->cmd[c->n]);
    return &c->cmd[c->n++];
}

struct drv_argv *
drv__queue_add_cmd(struct drv_queue_cmds *c, const char *name,
                   const char *key)
{
    struct drv_argv *a = drv_queue_cmds_add(c);

    drv_argv_adds(a, name);
    if (key != NULL)
        drv_argv_adds(a, key);
    return a;
}

void
drv__queue_cmds_eval(struct drv_queue_cmds *c, struct drv_script_call *call)
{
    drv_script_call_eval(call, drv_queue_cmds_add(c));
    drv_script_call_fini(call);
}

/* --------------------------------------------------------- reply checks */

int
drv__queue_check_n(size_t n, size_t want, const char *what, struct drv_err *err)
{
    if (n != want)
        return drv_err_set(err, DRV_EPROTO, "%s: %zu replies, want %zu",
                           what, n, want);
    return 0;
}

int
drv__queue_check_reply(const redisReply *r, int want, const char *what,
            struct drv_err *err)
{
    if (r == NULL)
        return drv_err_set(err, DRV_EPROTO, "%s: no reply", what);
    if (r->type == REDIS_REPLY_ERROR)
        return drv_err_set(err, DRV_EREDIS, "%s: %.*s", what, (int)r->len,
                           r->str);
    if (want >= 0 && r->type != want)
        return drv_err_set(err, DRV_EPROTO, "%s: unexpected reply (type "
                           "%d)", what, r->type);
    return 0;
}

int
drv__queue_check_each(struct redisReply *const *r,
                      const struct drv__queue_want *want, size_t n,
                      struct drv_err *err)
{
    size_t i;
    int rc = 0;

    for (i = 0; i < n && rc == 0; i++)
        rc = drv__queue_check_reply(r[i], want[i].type, want[i].what, err);
    return rc;
}

int
drv__queue_check_ints(const redisReply *r, size_t n, const char *what,
                      struct drv_err *err)
{
    size_t i;
    int rc = drv__queue_check_reply(r, REDIS_REPLY_ARRAY, what, err);

    if (rc == 0 && r->elements != n)
        return drv_err_set(err, DRV_EPROTO, "%s: %zu values, want %zu",
                           what, r->elements, n);
    for (i = 0; rc == 0 && i < n; i++)
        if (r->element[i]->type != REDIS_REPLY_INTEGER)
            return drv_err_set(err, DRV_EPROTO, "%s: value %zu is no "
                               "integer", what, i);
    return rc;
}

int
drv__queue_check_one(struct redisReply *const *r, size_t n, int want,
                     const char *what, struct drv_err *err)
{
    int rc = drv__queue_check_n(n, 1, what, err);

    return rc == 0 ? drv__queue_check_reply(r[0], want, what, err) : rc;
}

int
drv__queue_strings(const redisReply *e, size_t n)
{
    size_t i;

    if (e == NULL || e->type != REDIS_REPLY_ARRAY || e->elements != n)
        return 0;
    for (i = 0; i < n; i++)
        if (e->element[i]->type != REDIS_REPLY_STRING)
            return 0;
    return 1;
}

int
drv__queue_check_int(struct redisReply *const *r, size_t n, const char *what,
                     int64_t *v, struct drv_err *err)
{
    int rc = drv__queue_check_one(r, n, REDIS_REPLY_INTEGER, what, err);

    *v = rc == 0 ? r[0]->integer : 0;
    return rc;
}

/* The replies of MULTI ... EXEC: each queued command, then EXEC's array
 * of nexec results; 0 or the first error. */
static int
check_transaction(struct redisReply *const *r, size_t n, size_t nexec,
                  const char *what, struct drv_err *err)
{
    size_t i;
    int rc = 0;

    /* a command refused while queueing shows as its own error reply
     * (then EXEC says EXECABORT); check them in order */
    for (i = 0; i < n && rc == 0; i++)
        rc = drv__queue_check_reply(r[i], -1, what, err);
    if (rc == 0 && (r[n - 1]->type != REDIS_REPLY_ARRAY ||
                    r[n - 1]->elements != nexec))
        rc = drv_err_set(err, DRV_EPROTO, "%s: transaction not run", what);
    for (i = 0; rc == 0 && i < nexec; i++)
        rc = drv__queue_check_reply(r[n - 1]->element[i], -1, what, err);
    return rc;
}

/* ------------------------------------------------------------ enqueue */

/* The entry's fields in order: kind name, the fields, id ID. */
static void
add_fields(struct drv_argv *a, const struct drv_queue_enqueue *e,
           const char *id)
{
    int i;

    drv_argv_adds(a, e->kind);
    drv_argv_adds(a, e->name);
    for (i = 0; e->fields != NULL && i < e->fields->argc; i++)
        drv_argv_add(a, e->fields->argv[i], e->fields->argvlen[i]);
    if (id != NULL) {
        drv_argv_adds(a, "id");
        drv_argv_adds(a, id);
    }
}

int
drv_queue_enqueue_build(struct drv_queue_cmds *c,
                        const struct drv_queue_keys *k,
                        const struct drv_queue_enqueue *e)
{
    struct drv_script_call call;
    struct drv_argv *a = NULL;
    char tag[48];

    if (e->due_ms <= 0) {
        a = drv__queue_add_cmd(c, "XADD", k->jobs);
        drv_argv_adds(a, "*");
        add_fields(a, e, e->id);
        return 1;
    }
    if (e->id == NULL || e->id[0] == '\0')
        return -EINVAL;
    drv_script_call_init(&call, &drv_queue_enqueue_script);
    drv_argv_adds(&call.keys, k->delayed);
    drv_argv_addcat(&call.keys, k->job_prefix, e->id, strlen(e->id));
    drv_argv_addll(&call.args, (long long)e->due_ms);
    drv_argv_adds(&call.args, e->id);
    drv_queue_job_id_new(tag, sizeof tag, drv_clock_unix_ms());
    drv_argv_adds(&call.args, tag);
    add_fields(&call.args, e, e->id);
    drv__queue_cmds_eval(c, &call);
    /* then the due index, so a worker moves it on time */
    drv_queue_due_note(drv_queue_cmds_add(c), k, e->due_ms);
    return 2;
}

int
drv_queue_enqueue_parse(struct redisReply *const *r, size_t n,
                        const struct drv_queue_enqueue *e, char **id,
                        struct drv_err *err)
{
    static const struct drv__queue_want due[] = {
        {REDIS_REPLY_STRING, "enqueue"},
        {REDIS_REPLY_INTEGER, "ZADD due"},
    };
    int rc;

    *id = NULL;
    if (e->due_ms > 0) {
        rc = drv__queue_check_n(n, DRV_ARRAY_LEN(due), "enqueue", err);
        if (rc == 0)
            rc = drv__queue_check_each(r, due, DRV_ARRAY_LEN(due), err);
        if (rc == 0)
            *id = drv_xstrdup(e->id);
        return rc;
    }
    rc = drv__queue_check_one(r, n, REDIS_REPLY_STRING, "XADD", err);
    if (rc == 0)
        *id = e->id != NULL ? drv_xstrdup(e->id)
                            : drv_xstrndup(r[0]->str, r[0]->len);
    return rc;
}

void
drv_queue_job_id_new(char *buf, size_t n, int64_t now_ms)
{
    /* the '.' keeps it from looking like a stream entry id (ms-seq) */
    snprintf(buf, n, "%" PRId64 ".%016" PRIx64, now_ms, drv_random64());
}

/* -------------------------------------------------------------- stats */

/* A stats hash value: a decimal string, or nil for 0; -1 if neither. */
static int64_t
counter(const redisReply *r)
{
    int64_t v;

    if (r->type == REDIS_REPLY_NIL)
        return 0;
    if (r->type == REDIS_REPLY_STRING &&
        drv_parse_int(r->str, 0, INT64_MAX, &v) == 0)
        return v;
    if (r->type == REDIS_REPLY_INTEGER)
        return r->integer;
    return -1;
}

/* The value of field name in a flat [name, value, ...] array, or NULL. */
static const redisReply *
map_get(const redisReply *m, const char *name)
{
    size_t i, len = strlen(name);

    if (m->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (i = 0; i + 1 < m->elements; i += 2)
        if (m->element[i]->type == REDIS_REPLY_STRING &&
            m->element[i]->len == len &&
            memcmp(m->element[i]->str, name, len) == 0)
            return m->element[i + 1];
    return NULL;
}

int
drv_queue_stats_build(struct drv_queue_cmds *c, const struct drv_queue_keys *k)
{
    struct drv_argv *a = NULL;

    drv__queue_add_cmd(c, "XLEN", k->jobs);
    a = drv__queue_add_cmd(c, "XINFO", "GROUPS");
    drv_argv_adds(a, k->jobs);
    drv__queue_add_cmd(c, "ZCARD", k->delayed);
    drv__queue_add_cmd(c, "XLEN", k->dead);
    a = drv__queue_add_cmd(c, "HMGET", k->stats);
    drv_argv_adds(a, "processed");
    drv_argv_adds(a, "failed");
    drv_argv_adds(a, "retried");
    drv_argv_adds(a, "dead");
    drv_argv_adds(a, "deduped");
    drv_argv_adds(a, "cancelled");
    drv__queue_add_cmd(c, "EXISTS", k->paused);
    return DRV_QUEUE_STATS_CMDS;
}

/* Fill ready and running from XLEN and XINFO GROUPS. */
static int
ready_running(const redisReply *xlen, const redisReply *groups,
              struct drv_queue_stats *s, struct drv_err *err)
{
    const redisReply *g = NULL, *name, *pending, *lag;
    size_t i;
    int rc;

    rc = drv__queue_check_reply(xlen, REDIS_REPLY_INTEGER, "XLEN", err);
    if (rc < 0)
        return rc;
    if (groups->type == REDIS_REPLY_ERROR && xlen->integer == 0) {
        /* "no such key": nothing was ever enqueued */
        s->ready = 0;
        s->running = 0;
        return 0;
    }
    rc = drv__queue_check_reply(groups, REDIS_REPLY_ARRAY, "XINFO GROUPS", err);
    if (rc < 0)
        return rc;
    for (i = 0; i < groups->elements && g == NULL; i++) {
        name = map_get(groups->element[i], "name");
        if (name != NULL && name->type == REDIS_REPLY_STRING &&
            strcmp(name->str, DRV_QUEUE_GROUP) == 0)
            g = groups->element[i];
    }
    if (g == NULL) {
        /* no worker has created the group yet: nothing delivered */
        s->ready = xlen->integer;
        s->running = 0;
        return 0;
    }
    pending = map_get(g, "pending");
    lag = map_get(g, "lag");
    s->running = pending != NULL && pending->type == REDIS_REPLY_INTEGER
                     ? pending->integer : -1;
    if (lag != NULL && lag->type == REDIS_REPLY_INTEGER)
        s->ready = lag->integer;
    else if (s->running >= 0)
        s->ready = xlen->integer > s->running ? xlen->integer - s->running
                                               : 0;
    else
        s->ready = -1;
    return 0;
}

int
drv_queue_stats_parse(struct redisReply *const *r, size_t n,
                      struct drv_queue_stats *s, struct drv_err *err)
{
    /* the replies after XLEN and XINFO GROUPS (ready_running) */
    static const struct drv__queue_want counts[] = {
        {REDIS_REPLY_INTEGER, "ZCARD"},
        {REDIS_REPLY_INTEGER, "XLEN"},
        {REDIS_REPLY_ARRAY, "HMGET"},
        {REDIS_REPLY_INTEGER, "EXISTS"},
    };
    const redisReply *h = NULL;
    int rc;

    memset(s, 0, sizeof *s);
    s->dead_max = -1;
    rc = drv__queue_check_n(n, DRV_QUEUE_STATS_CMDS, "stats", err);
    if (rc == 0)
        rc = ready_running(r[0], r[1], s, err);
    if (rc == 0)
        rc = drv__queue_check_each(r + 2, counts, DRV_ARRAY_LEN(counts), err);
    if (rc < 0)
        return rc;
    h = r[4];
    if (h->elements != 6)
        return drv_err_set(err, DRV_EPROTO, "HMGET: unexpected reply");
    s->delayed = r[2]->integer;
    s->dead = r[3]->integer;
    s->processed = counter(h->element[0]);
    s->failed = counter(h->element[1]);
    s->retried = counter(h->element[2]);
    s->dead_total = counter(h->element[3]);
    s->deduped = counter(h->element[4]);
    s->cancelled = counter(h->element[5]);
    s->paused = r[5]->integer > 0;
    return 0;
}

/* ---------------------------------------------------------- dead list */

int
drv_queue_dead_list_build(struct drv_queue_cmds *c,
                          const struct drv_queue_keys *k, const char *after,
                          int64_t count)
{
    struct drv_argv *a = drv__queue_add_cmd(c, "XRANGE", k->dead);

    if (after != NULL && after[0] != '\0')
        drv_argv_addf(a, "(%s", after); /* exclusive: the next one on */
    else
        drv_argv_adds(a, "-");
    drv_argv_adds(a, "+");
    if (count > 0) {
        drv_argv_adds(a, "COUNT");
        drv_argv_addll(a, (long long)count);
    }
    drv__queue_add_cmd(c, "XLEN", k->dead);
    return 2;
}

void
drv_queue_dead_page_fini(struct drv_queue_dead_page *p)
{
    size_t i;

    for (i = 0; i < p->n; i++)
        drv_job_free(p->entry[i]);
    free(p->entry);
    memset(p, 0, sizeof *p);
}

int
drv_queue_dead_list_parse(struct redisReply *const *r, size_t n,
                          int64_t count, struct drv_queue_dead_page *p,
                          struct drv_err *err)
{
    static const struct drv__queue_want want[] = {
        {REDIS_REPLY_ARRAY, "XRANGE"},
        {REDIS_REPLY_INTEGER, "XLEN"},
    };
    const redisReply *list = NULL;
    size_t i;
    int rc;

    memset(p, 0, sizeof *p);
    rc = drv__queue_check_n(n, DRV_ARRAY_LEN(want), "dead list", err);
    if (rc == 0)
        rc = drv__queue_check_each(r, want, DRV_ARRAY_LEN(want), err);
    if (rc < 0)
        return rc;
    list = r[0];
    p->total = r[1]->integer;
    p->entry = drv_xcalloc(list->elements + 1, sizeof *p->entry);
    for (i = 0; i < list->elements; i++) {
        p->entry[i] = drv_job_from_entry(list->element[i], err);
        if (p->entry[i] == NULL) {
            drv_queue_dead_page_fini(p);
            return DRV_EPROTO;
        }
        p->n++;
    }
    if (count > 0 && p->n == (size_t)count)
        snprintf(p->next, sizeof p->next, "%s",
                 p->entry[p->n - 1]->entry_id);
    return 0;
}

/* ----------------------------------------------------- dead retry, purge */

int
drv_queue_dead_retry_build(struct drv_queue_cmds *c,
                           const struct drv_queue_keys *k, const char *id)
{
    struct drv_script_call call;

    drv_queue_dead_retry(&call, k, id);
    drv__queue_cmds_eval(c, &call);
    return 1;
}

int
drv_queue_dead_retry_parse(struct redisReply *const *r, size_t n,
                           int64_t *moved, struct drv_err *err)
{
    return drv__queue_check_int(r, n, "dead retry", moved, err);
}

int
drv_queue_dead_purge_build(struct drv_queue_cmds *c,
                           const struct drv_queue_keys *k, int64_t before_ms)
{
    struct drv_argv *a = NULL;

    if (before_ms == DRV_QUEUE_DEAD_ALL) {
        /* count and delete in one transaction, so the count is what went */
        drv__queue_add_cmd(c, "MULTI", NULL);
        drv__queue_add_cmd(c, "XLEN", k->dead);
        drv__queue_add_cmd(c, "DEL", k->dead);
        drv__queue_add_cmd(c, "EXEC", NULL);
        return 4;
    }
    /* exact (no '~'): every entry older than the bound goes, none newer */
    a = drv__queue_add_cmd(c, "XTRIM", k->dead);
    drv_argv_adds(a, "MINID");
    drv_argv_addll(a, (long long)(before_ms > 0 ? before_ms : 0));
    return 1;
}

int
drv_queue_dead_purge_parse(struct redisReply *const *r, size_t n,
                           int64_t *purged, struct drv_err *err)
{
    int rc;

    if (n == 1) /* XTRIM */
        return drv__queue_check_int(r, n, "purge", purged, err);
    *purged = 0;
    rc = drv__queue_check_n(n, 4, "purge", err);
    if (rc == 0)
        rc = check_transaction(r, n, 2, "purge", err);
    if (rc == 0 && r[3]->element[0]->type != REDIS_REPLY_INTEGER)
        rc = drv_err_set(err, DRV_EPROTO, "purge: unexpected reply");
    if (rc == 0)
        *purged = r[3]->element[0]->integer;
    return rc;
}

/* ------------------------------------------------------- pause, resume */

int
drv_queue_pause_build(struct drv_queue_cmds *c,
                      const struct drv_queue_keys *k, int64_t now_ms)
{
    /* the value is informative only (since when); presence is the flag */
    drv_argv_addll(drv__queue_add_cmd(c, "SET", k->paused), (long long)now_ms);
    return 1;
}

int
drv_queue_pause_parse(struct redisReply *const *r, size_t n,
                      struct drv_err *err)
{
    return drv__queue_check_one(r, n, REDIS_REPLY_STATUS, "pause", err);
}

int
drv_queue_resume_build(struct drv_queue_cmds *c,
                       const struct drv_queue_keys *k)
{
    drv__queue_add_cmd(c, "DEL", k->paused);
    return 1;
}

int
drv_queue_resume_parse(struct redisReply *const *r, size_t n,
                       int *was_paused, struct drv_err *err)
{
    int64_t deleted;
    int rc = drv__queue_check_int(r, n, "resume", &deleted, err);

    *was_paused = deleted > 0;
    return rc;
}

/* ------------------------------------------------- result, job lookup */

int
drv_queue_result_build(struct drv_queue_cmds *c,
                       const struct drv_queue_keys *k, const char *id)
{
    struct drv_argv *a = drv__queue_add_cmd(c, "HGETALL", NULL);

    drv_argv_addcat(a, k->result_prefix, id, strlen(id));
    return 1;
}

int
drv_queue_result_parse(struct redisReply *const *r, size_t n,
                       struct drv_job **result, struct drv_err *err)
{
    int rc = drv__queue_check_one(r, n, REDIS_REPLY_ARRAY, "result", err);

    *result = NULL;
    if (rc < 0 || r[0]->elements == 0)
        return rc;
    *result = drv_job_from_fields("", r[0], err);
    return *result != NULL ? 0 : DRV_EPROTO;
}

const char *
drv_queue_where_name(enum drv_queue_where w)
{
    static const char *const names[] = {"none", "ready", "running",
                                        "delayed", "dead"};

    return (size_t)w < DRV_ARRAY_LEN(names) ? names[w] : "?";
}

int
drv_queue_lookup_build(struct drv_queue_cmds *c,
                       const struct drv_queue_keys *k, const char *id)
{
    struct drv_script_call call;

    drv_queue_result_build(c, k, id);
    drv_script_call_init(&call, &drv_queue_lookup_script);
    drv_argv_adds(&call.keys, k->delayed);
    drv_argv_addcat(&call.keys, k->job_prefix, id, strlen(id));
    drv__queue_adds(&call.keys, k->jobs, k->dead, NULL);
    drv__queue_scan_args(&call.args, id, strlen(id));
    drv__queue_cmds_eval(c, &call);
    return 2;
}

void
drv__queue_scan_args(struct drv_argv *args, const char *id, size_t id_len)
{
    drv_argv_add(args, id, id_len);
    drv_argv_addll(args, DRV_QUEUE_LOOKUP_SCAN);
    drv_argv_adds(args, DRV_QUEUE_GROUP);
}

void
drv_queue_lookup_fini(struct drv_queue_lookup *l)
{
    drv_job_free(l->result);
    drv_job_free(l->job);
    memset(l, 0, sizeof *l);
}

/* The script's reply: {where, entry id, fields, due, consumer,
 * deliveries, incomplete}. */
static int
parse_where(const redisReply *s, struct drv_queue_lookup *l,
            struct drv_err *err)
{
    static const int types[7] = {
        REDIS_REPLY_STRING, REDIS_REPLY_STRING, REDIS_REPLY_ARRAY,
        REDIS_REPLY_STRING, REDIS_REPLY_STRING, REDIS_REPLY_INTEGER,
        REDIS_REPLY_INTEGER,
    };
    char eid[48];
    size_t i;
    int w;

    if (s->elements != 7)
        return drv_err_set(err, DRV_EPROTO, "lookup: unexpected reply");
    for (i = 0; i < 7; i++)
        if (s->element[i]->type != types[i])
            return drv_err_set(err, DRV_EPROTO, "lookup: unexpected reply");
    for (w = DRV_QUEUE_DEAD; w > DRV_QUEUE_NOWHERE; w--)
        if (strcmp(s->element[0]->str, drv_queue_where_name(w)) == 0)
            break;
    l->where = (enum drv_queue_where)w;
    if (l->where == DRV_QUEUE_NOWHERE)
        return 0;
    snprintf(eid, sizeof eid, "%s", s->element[1]->str);
    l->job = drv_job_from_fields(eid, s->element[2], err);
    if (l->job == NULL)
        return DRV_EPROTO;
    if (l->where == DRV_QUEUE_DELAYED &&
        drv_parse_int(s->element[3]->str, 0, INT64_MAX, &l->due_ms) < 0)
        l->due_ms = -1;
    snprintf(l->consumer, sizeof l->consumer, "%s", s->element[4]->str);
    l->deliveries = s->element[5]->integer;
    l->scan_incomplete = s->element[6]->integer != 0;
    return 0;
}

int
drv_queue_lookup_parse(struct redisReply *const *r, size_t n,
                       struct drv_queue_lookup *l, struct drv_err *err)
{
    int rc;

    memset(l, 0, sizeof *l);
    rc = drv__queue_check_n(n, 2, "lookup", err);
    if (rc == 0)
        rc = drv_queue_result_parse(r, 1, &l->result, err);
    if (rc == 0)
        rc = drv__queue_check_reply(r[1], REDIS_REPLY_ARRAY, "lookup", err);
    if (rc == 0)
        rc = parse_where(r[1], l, err);
    if (rc < 0)
        drv_queue_lookup_fini(l);
    return rc;
}
