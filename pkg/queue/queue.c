/*
 * queue.c -- key names, the job record, argv building and script calls.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "drover/common.h"
#include "drover/parse.h"
#include "drover/queue.h"

#include "queue_int.h"

/* ---------------------------------------------------------------- keys */

/* Write "P:{Q}:suffix" at *at, move *at past its NUL, return the key. */
static char *
put_key(char **at, const char *prefix, const char *queue, const char *suffix)
{
    char *k = *at;

    *at += sprintf(k, "%s:{%s}:%s", prefix, queue, suffix) + 1;
    return k;
}

void
drv_queue_keys_init(struct drv_queue_keys *k, const char *prefix,
                    const char *queue)
{
    /* ten names, none longer than P:{Q}:result: (the longest suffix) */
    size_t max = strlen(prefix) + strlen(queue) + sizeof ":{}:result:";
    char *at = drv_xmalloc(10 * max);

    k->name = at;
    at += sprintf(at, "%s", queue) + 1;
    k->jobs = put_key(&at, prefix, queue, "jobs");
    k->delayed = put_key(&at, prefix, queue, "delayed");
    k->dead = put_key(&at, prefix, queue, "dead");
    k->stats = put_key(&at, prefix, queue, "stats");
    k->paused = put_key(&at, prefix, queue, "paused");
    k->job_prefix = put_key(&at, prefix, queue, "job:");
    k->result_prefix = put_key(&at, prefix, queue, "result:");
    k->cancel = put_key(&at, prefix, queue, "cancel");
    k->due = at;
    sprintf(k->due, "%s:due", prefix);
}

void
drv_queue_keys_fini(struct drv_queue_keys *k)
{
    free(k->name); /* the one allocation holding every name */
    memset(k, 0, sizeof *k);
}

char *
drv_queue_workers_key(const char *prefix)
{
    size_t n = strlen(prefix) + 16;
    char *k = drv_xmalloc(n);

    snprintf(k, n, "%s:workers", prefix);
    return k;
}

/* ---------------------------------------------------------------- jobs */

/*
 * One allocation per job: the struct, then the field array, then the
 * NUL-terminated names and values. job->id points at the id field's
 * value in there, or at entry_id.
 */
struct drv_job *
drv_job_from_fields(const char *entry_id, const redisReply *fv,
                    struct drv_err *err)
{
    struct drv_job *job = NULL;
    size_t i, total = 0, off = 0, nfields = 0, idlen = strlen(entry_id);
    const struct drv_field *f;
    char *mem, *idval = NULL;
    size_t idval_len = 0;

    if (idlen >= sizeof job->entry_id) {
        drv_err_set(err, DRV_EPROTO, "entry id of unexpected length");
        return NULL;
    }
    if (fv->type == REDIS_REPLY_ARRAY) {
        if (fv->elements % 2 != 0) {
            drv_err_set(err, DRV_EPROTO, "entry %s: fields of unexpected "
                        "shape", entry_id);
            return NULL;
        }
        for (i = 0; i < fv->elements; i++) {
            if (fv->element[i]->type != REDIS_REPLY_STRING) {
                drv_err_set(err, DRV_EPROTO, "entry %s: field %zu not a "
                            "string", entry_id, i);
                return NULL;
            }
            total += fv->element[i]->len + 1;
        }
        nfields = fv->elements / 2;
    } else if (fv->type != REDIS_REPLY_NIL) {
        drv_err_set(err, DRV_EPROTO, "entry %s: fields of unexpected "
                    "shape", entry_id);
        return NULL;
    }
    mem = drv_xcalloc(1, sizeof *job + nfields * sizeof *job->fields +
                             total);
    job = (struct drv_job *)(void *)mem;
    job->magic = DRV_JOB_MAGIC;
    job->queue_index = -1;
    memcpy(job->entry_id, entry_id, idlen + 1);
    job->id = job->entry_id;
    job->id_len = idlen;
    if (fv->type == REDIS_REPLY_NIL) {
        job->payload_gone = 1;
        return job;
    }
    job->nfields = nfields;
    job->fields = (struct drv_field *)(void *)(mem + sizeof *job);
    job->buf = mem + sizeof *job + nfields * sizeof *job->fields;
    for (i = 0; i < fv->elements; i++) {
        const redisReply *e = fv->element[i];
        char *p = job->buf + off;

        memcpy(p, e->str, e->len);
        p[e->len] = '\0';
        off += e->len + 1;
        job->bytes += e->len;
        if (i % 2 == 0) {
            job->fields[i / 2].name = p;
            job->fields[i / 2].name_len = e->len;
        } else {
            job->fields[i / 2].value = p;
            job->fields[i / 2].value_len = e->len;
            /* the last id field wins; empty counts as absent */
            if (job->fields[i / 2].name_len == 2 &&
                memcmp(job->fields[i / 2].name, "id", 2) == 0) {
                idval = e->len > 0 ? p : NULL;
                idval_len = e->len;
            }
        }
    }
    if (idval != NULL) {
        job->id = idval; /* in buf, every byte (NULs too) */
        job->id_len = idval_len;
    }
    f = drv_job_field(job, "attempt");
    if (f != NULL) {
        uint64_t a = 0;
        if (drv_parse_uint(f->value, f->value_len, UINT32_MAX, &a) == 0)
            job->attempt = a;
        else
            job->attempt_bad = 1;
    }
    return job;
}

struct drv_job *
drv_job_from_entry(const redisReply *entry, struct drv_err *err)
{
    char eid[48];

    if (entry == NULL || entry->type != REDIS_REPLY_ARRAY ||
        entry->elements != 2 || entry->element[0]->type != REDIS_REPLY_STRING
        || entry->element[0]->len >= sizeof eid ||
        memchr(entry->element[0]->str, '\0', entry->element[0]->len)) {
        drv_err_set(err, DRV_EPROTO, "stream entry of unexpected shape");
        return NULL;
    }
    memcpy(eid, entry->element[0]->str, entry->element[0]->len);
    eid[entry->element[0]->len] = '\0';
    return drv_job_from_fields(eid, entry->element[1], err);
}

void
drv_job_free(struct drv_job *job)
{
    if (DRV_NO_OBJ(job, DRV_JOB_MAGIC))
        return;
    job->magic = 0;
    free(job); /* fields, names, values and id live in the same block */
}

const struct drv_field *
drv_job_field(const struct drv_job *job, const char *name)
{
    size_t n = strlen(name);
    size_t i;

    for (i = job->nfields; i > 0; i--) {
        const struct drv_field *f = &job->fields[i - 1];
        if (f->name_len == n && memcmp(f->name, name, n) == 0)
            return f;
    }
    return NULL;
}

char *
drv_job_field_str(const struct drv_job *job, const char *name)
{
    const struct drv_field *f = drv_job_field(job, name);

    return f ? drv_xstrndup(f->value, f->value_len) : NULL;
}

int
drv_field_name_in(const struct drv_field *f, const char *const *names,
                  size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (f->name_len == strlen(names[i]) &&
            memcmp(f->name, names[i], f->name_len) == 0)
            return 1;
    return 0;
}

/* ------------------------------------------------------- script calls */

void
drv_script_call_init(struct drv_script_call *c,
                     const struct drv_queue_script *script)
{
    c->script = script;
    drv_argv_init(&c->keys);
    drv_argv_init(&c->args);
}

void
drv_script_call_fini(struct drv_script_call *c)
{
    drv_argv_fini(&c->keys);
    drv_argv_fini(&c->args);
}

void
drv_script_call_eval(const struct drv_script_call *c, struct drv_argv *out)
{
    int i;

    drv_argv_reset(out);
    drv_argv_adds(out, "EVAL");
    drv_argv_adds(out, c->script->text);
    drv_argv_addll(out, c->keys.argc);
    for (i = 0; i < c->keys.argc; i++)
        drv_argv_add(out, c->keys.argv[i], c->keys.argvlen[i]);
    for (i = 0; i < c->args.argc; i++)
        drv_argv_add(out, c->args.argv[i], c->args.argvlen[i]);
}

/* ------------------------------------------------------------ settle */

/* ARGV: group, consumer, now, nops, ack_min, ack_max, dead_max,
 * dead_minid, then the ops. */
#define SETTLE_NOPS_ARG 3
#define SETTLE_MIN_ARG 4
#define SETTLE_MAX_ARG 5

static const char *const settle_kinds[] = {"ack", "retry", "dead",
                                           "requeue", "next", "cancel"};

/* nops, ack_min and ack_max change with every op: they live in buffers
 * of FIXED_MAX bytes, rewritten in place (an argument of that length or
 * more gets its own allocation). */
#define FIXED_MAX 48

static void
fixed_buf(struct drv_argv *a, int i)
{
    char *p = drv_xmalloc(FIXED_MAX);

    memcpy(p, a->argv[i], a->argvlen[i] + 1);
    free(a->argv[i]);
    a->argv[i] = p;
}

static void
set_fixed_arg(struct drv_argv *a, int i, const char *s, size_t len)
{
    if (len >= FIXED_MAX) {
        free(a->argv[i]);
        a->argv[i] = drv_xstrndup(s, len);
        a->argvlen[i] = len;
        return;
    }
    if (a->argvlen[i] >= FIXED_MAX) { /* held a long one */
        free(a->argv[i]);
        a->argv[i] = drv_xmalloc(FIXED_MAX);
    }
    memcpy(a->argv[i], s, len);
    a->argv[i][len] = '\0';
    a->argvlen[i] = len;
}

/* The two trim arguments of a script that writes dead entries: the most
 * entries kept and the oldest id kept (ms), "0" for no bound. */
static void
add_dead_bound(struct drv_argv *a, const struct drv_queue_dead_bound *dead,
               int64_t now_ms)
{
    int64_t max = 0, minid = 0;

    if (dead != NULL) {
        max = dead->max > 0 ? dead->max : 0;
        if (dead->max_age_ms > 0 && now_ms > dead->max_age_ms)
            minid = now_ms - dead->max_age_ms;
    }
    drv_argv_addll(a, (long long)max);
    drv_argv_addll(a, (long long)minid);
}

void
drv_settle_init(struct drv_script_call *c, const struct drv_queue_keys *k,
                const char *consumer, int64_t now_ms,
                const struct drv_queue_dead_bound *dead)
{
    drv_script_call_init(c, &drv_queue_settle_script);
    drv__queue_adds(&c->keys, k->jobs, k->delayed, k->dead, k->stats, NULL);
    drv_argv_adds(&c->args, DRV_QUEUE_GROUP);
    drv_argv_adds(&c->args, consumer);
    drv_argv_addll(&c->args, (long long)now_ms);
    /* nops, ack_min, ack_max: rewritten in place by drv_settle_add */
    drv_argv_adds(&c->args, "0");
    drv_argv_add(&c->args, "", 0);
    drv_argv_add(&c->args, "", 0);
    fixed_buf(&c->args, SETTLE_NOPS_ARG);
    fixed_buf(&c->args, SETTLE_MIN_ARG);
    fixed_buf(&c->args, SETTLE_MAX_ARG);
    add_dead_bound(&c->args, dead, now_ms);
}

int
drv_settle_nops(const struct drv_script_call *c)
{
    return atoi(c->args.argv[SETTLE_NOPS_ARG]);
}

/* "MS-SEQ" -> its two numbers; anything malformed reads as 0-0 (the
 * script's range then starts at the beginning and still covers it). */
static void
id_parse(const char *s, uint64_t *ms, uint64_t *seq)
{
    *ms = 0;
    *seq = 0;
    while (*s >= '0' && *s <= '9')
        *ms = *ms * 10 + (uint64_t)(*s++ - '0');
    if (*s++ != '-')
        return;
    while (*s >= '0' && *s <= '9')
        *seq = *seq * 10 + (uint64_t)(*s++ - '0');
}

static int id_cmp_parsed(const char *a, const char *b);

/* Digits at s, and whether they are canonical (no leading zero). */
static size_t
id_digits(const char *s, int *canon)
{
    size_t n = 0;

    while (s[n] >= '0' && s[n] <= '9')
        n++;
    *canon = n > 0 && (s[0] != '0' || n == 1);
    return n;
}

/* Two canonical decimal numbers of na and nb digits. */
static int
num_cmp(const char *a, size_t na, const char *b, size_t nb)
{
    int c;

    if (na != nb)
        return na < nb ? -1 : 1;
    c = memcmp(a, b, na);
    return (c > 0) - (c < 0);
}

int
drv_queue_id_cmp(const char *a, const char *b)
{
    int ca, cb, sa, sb;
    size_t am = id_digits(a, &ca), bm = id_digits(b, &cb), as, bs;

    /* ids as Redis prints them: compared as text, digit counts first */
    if (ca && cb && a[am] == '-' && b[bm] == '-') {
        as = id_digits(a + am + 1, &sa);
        bs = id_digits(b + bm + 1, &sb);
        if (sa && sb && a[am + 1 + as] == '\0' && b[bm + 1 + bs] == '\0') {
            int c = num_cmp(a, am, b, bm);

            return c != 0 ? c : num_cmp(a + am + 1, as, b + bm + 1, bs);
        }
    }
    return id_cmp_parsed(a, b);
}

static int
id_cmp_parsed(const char *a, const char *b)
{
    uint64_t am, as, bm, bs;

    id_parse(a, &am, &as);
    id_parse(b, &bm, &bs);
    if (am != bm)
        return am < bm ? -1 : 1;
    return as < bs ? -1 : as > bs;
}

int
drv_settle_plain(const struct drv_settle_op *op)
{
    return op->kind == DRV_SETTLE_ACK && op->result_ttl_ms <= 0 &&
           op->entry_id[0] >= '0' && op->entry_id[0] <= '9';
}

void
drv_settle_add(struct drv_script_call *c, const struct drv_queue_keys *k,
               const struct drv_settle_op *op)
{
    char n[32];
    int len;

    DRV_ASSERT(op->kind <= DRV_SETTLE_CANCEL);
    if (drv_settle_plain(op)) {
        /* a plain ack: its entry id alone; the script settles these
         * together (an id starts with a digit, a kind never does) */
        size_t idlen = strlen(op->entry_id);

        drv_argv_add(&c->args, op->entry_id, idlen);
        if (c->args.argvlen[SETTLE_MIN_ARG] == 0 ||
            drv_queue_id_cmp(op->entry_id,
                             c->args.argv[SETTLE_MIN_ARG]) < 0)
            set_fixed_arg(&c->args, SETTLE_MIN_ARG, op->entry_id, idlen);
        if (c->args.argvlen[SETTLE_MAX_ARG] == 0 ||
            drv_queue_id_cmp(op->entry_id,
                             c->args.argv[SETTLE_MAX_ARG]) > 0)
            set_fixed_arg(&c->args, SETTLE_MAX_ARG, op->entry_id, idlen);
    } else {
        drv_argv_addcat(&c->keys, k->result_prefix, op->job_id,
                        op->job_id_len);
        drv_argv_addcat(&c->keys, k->job_prefix, op->job_id,
                        op->job_id_len);
        drv_argv_adds(&c->args, settle_kinds[op->kind]);
        drv_argv_adds(&c->args, op->entry_id);
        drv_argv_add(&c->args, op->job_id, op->job_id_len);
        drv_argv_addll(&c->args, (long long)op->attempts);
        drv_argv_addll(&c->args, (long long)op->result_ttl_ms);
        drv_argv_addll(&c->args, (long long)op->due_ms);
        drv_argv_adds(&c->args, op->count_failed ? "1" : "0");
        drv_argv_addll(&c->args, op->pipeline ? (long long)op->step : -1);
        drv_argv_addll(&c->args, (long long)op->started_at_ms);
        drv_argv_add(&c->args, op->text ? op->text : "",
                     op->text ? op->text_len : 0);
        if (op->has_rusage) {
            drv_argv_addll(&c->args, (long long)op->cpu_ms);
            drv_argv_addll(&c->args, (long long)op->max_rss_kb);
        } else {
            drv_argv_add(&c->args, "", 0);
            drv_argv_add(&c->args, "", 0);
        }
    }
    len = snprintf(n, sizeof n, "%d", drv_settle_nops(c) + 1);
    set_fixed_arg(&c->args, SETTLE_NOPS_ARG, n, (size_t)len);
}

int
drv_settle_parse(const redisReply *reply, int nops, int *codes,
                 struct drv_err *err)
{
    int i, rc;

    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER &&
        reply->integer == nops) {
        /* every op applied: the script says so with one integer */
        for (i = 0; i < nops; i++)
            codes[i] = DRV_QUEUE_DONE;
        return 0;
    }
    rc = drv__queue_check_ints(reply, (size_t)nops, "settle", err);
    for (i = 0; rc == 0 && i < nops; i++)
        codes[i] = (int)reply->element[i]->integer;
    return rc;
}

/* ------------------------------------------------------ other scripts */

void
drv_queue_mover(struct drv_script_call *c, const struct drv_queue_keys *k,
                int64_t now_ms, int limit)
{
    drv_script_call_init(c, &drv_queue_mover_script);
    drv__queue_adds(&c->keys, k->jobs, k->delayed, NULL);
    drv_argv_addll(&c->args, (long long)now_ms);
    drv_argv_addll(&c->args, limit);
    drv_argv_adds(&c->args, k->job_prefix);
}

void
drv_queue_reclaim(struct drv_script_call *c, const struct drv_queue_keys *k,
                  const char *consumer, int64_t min_idle_ms, int count,
                  int64_t max_deliveries, int64_t now_ms,
                  const struct drv_queue_dead_bound *dead)
{
    drv_script_call_init(c, &drv_queue_reclaim_script);
    drv__queue_adds(&c->keys, k->jobs, k->dead, k->stats, NULL);
    drv_argv_adds(&c->args, DRV_QUEUE_GROUP);
    drv_argv_adds(&c->args, consumer);
    drv_argv_addll(&c->args, (long long)min_idle_ms);
    drv_argv_addll(&c->args, count);
    drv_argv_addll(&c->args, (long long)max_deliveries);
    drv_argv_addll(&c->args, (long long)now_ms);
    add_dead_bound(&c->args, dead, now_ms);
}

void
drv_queue_reclaim_limit(struct drv_script_call *c, int64_t max_job_bytes)
{
    drv_argv_addll(&c->args, (long long)max_job_bytes);
}

void
drv_queue_reclaim_ttl(struct drv_script_call *c, int pipeline,
                      const char *name, int64_t result_ttl_ms)
{
    if (result_ttl_ms <= 0)
        return; /* the script's default applies */
    drv_argv_addcat(&c->args, pipeline ? "p" : "j", name, strlen(name));
    drv_argv_addll(&c->args, (long long)result_ttl_ms);
}

void
drv_queue_reclaim_pipeline(struct drv_script_call *c, const char *name,
                           int graph)
{
    drv_argv_addcat(&c->args, graph ? "g" : "s", name, strlen(name));
    drv_argv_adds(&c->args, "1");
}

int
drv_queue_reclaim_ended(const redisReply *r, size_t i, struct drv_job **job,
                        struct drv_err *why, struct drv_err *err)
{
    const redisReply *v, *e;
    char eid[48];

    if (job != NULL)
        *job = NULL;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 6 ||
        r->element[5]->type != REDIS_REPLY_ARRAY)
        return 0; /* a script of an older version: nothing ended */
    v = r->element[5];
    if (job == NULL || i >= v->elements)
        return (int)v->elements;
    e = v->element[i];
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 3 ||
        e->element[0]->type != REDIS_REPLY_STRING ||
        e->element[0]->len >= sizeof eid ||
        memchr(e->element[0]->str, '\0', e->element[0]->len) ||
        e->element[2]->type != REDIS_REPLY_STRING)
        return drv_err_set(err, DRV_EPROTO, "reclaim: ended entry of "
                           "unexpected shape");
    memcpy(eid, e->element[0]->str, e->element[0]->len);
    eid[e->element[0]->len] = '\0';
    *job = drv_job_from_fields(eid, e->element[1], err);
    if (*job == NULL)
        return err->code;
    drv_err_set(why, DRV_EBADJOB, "%.*s", (int)e->element[2]->len,
                e->element[2]->str);
    return (int)v->elements;
}

void
drv_queue_renew(struct drv_script_call *c, const struct drv_queue_keys *k,
                const char *consumer)
{
    drv_script_call_init(c, &drv_queue_renew_script);
    drv_argv_adds(&c->keys, k->jobs);
    drv_argv_adds(&c->args, DRV_QUEUE_GROUP);
    drv_argv_adds(&c->args, consumer);
}

void
drv_queue_dead_retry(struct drv_script_call *c,
                     const struct drv_queue_keys *k, const char *id)
{
    drv_script_call_init(c, &drv_queue_dead_retry_script);
    drv__queue_adds(&c->keys, k->dead, k->jobs, NULL);
    drv_argv_adds(&c->args, id ? id : "");
}

void
drv_queue_prepare(struct drv_script_call *c, const struct drv_queue_keys *k)
{
    drv_script_call_init(c, &drv_queue_prepare_script);
    drv__queue_adds(&c->keys, k->jobs, k->delayed, k->dead, k->stats, NULL);
    drv_argv_adds(&c->args, DRV_QUEUE_GROUP);
}

static void
adds_v(struct drv_argv *a, va_list ap)
{
    const char *s;

    while ((s = va_arg(ap, const char *)) != NULL)
        drv_argv_adds(a, s);
}

void
drv__queue_adds(struct drv_argv *a, ...)
{
    va_list ap;

    va_start(ap, a);
    adds_v(a, ap);
    va_end(ap);
}

void
drv__queue_command(struct drv_argv *out, ...)
{
    va_list ap;

    drv_argv_reset(out);
    va_start(ap, out);
    adds_v(out, ap);
    va_end(ap);
}

void
drv_queue_group_create(const struct drv_queue_keys *k, struct drv_argv *out)
{
    drv__queue_command(out, "XGROUP", "CREATE", k->jobs, DRV_QUEUE_GROUP,
                       "0", "MKSTREAM", NULL);
}

/* ----------------------------------------------------------- fetching */

void
drv_queue_read(struct drv_argv *out, const char *consumer, int count,
               int64_t block_ms, const struct drv_queue_keys *const *qs,
               size_t n)
{
    size_t i;

    drv_argv_reset(out);
    drv_argv_adds(out, "XREADGROUP");
    drv_argv_adds(out, "GROUP");
    drv_argv_adds(out, DRV_QUEUE_GROUP);
    drv_argv_adds(out, consumer);
    drv_argv_adds(out, "COUNT");
    drv_argv_addll(out, count);
    if (block_ms >= 0) {
        drv_argv_adds(out, "BLOCK");
        drv_argv_addll(out, (long long)block_ms);
    }
    drv_argv_adds(out, "STREAMS");
    for (i = 0; i < n; i++)
        drv_argv_adds(out, qs[i]->jobs);
    for (i = 0; i < n; i++)
        drv_argv_adds(out, ">");
}

void
drv_queue_paused_read(struct drv_argv *out,
                      const struct drv_queue_keys *const *qs, size_t n)
{
    size_t i;

    drv_argv_reset(out);
    drv_argv_adds(out, "MGET");
    for (i = 0; i < n; i++)
        drv_argv_adds(out, qs[i]->paused);
}

int
drv_queue_paused_parse(const redisReply *reply, size_t n, int *paused)
{
    size_t i;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != n)
        return DRV_EPROTO;
    for (i = 0; i < n; i++)
        paused[i] = reply->element[i]->type != REDIS_REPLY_NIL;
    return 0;
}
