/*
 * fuzz_resp.h -- replies from bytes, for the targets that test what
 * drover makes of Redis replies (fuzz_job.c, fuzz_resp.c).
 *
 * fuzz_reader() is hiredis's own RESP reader (redisReaderCreate), so the
 * reply trees are exactly what the worker and the CLI get, with one limit:
 * an array header above FUZZ_RESP_MAX_ELEMENTS or below -1 is refused as
 * out of memory. hiredis 0.14 would otherwise allocate whatever a
 * `*2147483647` asks for (a sanitizer "allocation too big" report in
 * hiredis, not in drover), and passes a negative count on as is.
 *
 * fuzz_check_job() holds everything drv_job_from_entry promises about
 * the job it copies out of a stream entry.
 */
#ifndef DROVER_FUZZ_RESP_H
#define DROVER_FUZZ_RESP_H

#include <inttypes.h>

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include "drover/parse.h"
#include "drover/queue.h"
#include "fuzz.h"

#define FUZZ_RESP_MAX_ELEMENTS 4096

static redisReplyObjectFunctions fuzz_resp_fns;
static void *(*fuzz_resp_array)(const redisReadTask *, int);

static void *
fuzz_resp_create_array(const redisReadTask *task, int elements)
{
    if (elements < 0 || elements > FUZZ_RESP_MAX_ELEMENTS)
        return NULL;
    return fuzz_resp_array(task, elements);
}

/* A reader (redisReaderFree) with the array limit above. */
static inline redisReader *
fuzz_reader(void)
{
    redisReader *r = redisReaderCreate();

    if (r == NULL)
        abort();
    if (fuzz_resp_array == NULL) {
        fuzz_resp_fns = *r->fn;
        fuzz_resp_array = fuzz_resp_fns.createArray;
        fuzz_resp_fns.createArray = fuzz_resp_create_array;
    }
    r->fn = &fuzz_resp_fns;
    return r;
}

/* 1 if e has the shape drv_job_from_entry accepts: [id, [f, v, ...]] or
 * [id, nil], id a bulk string shorter than entry_id, fields all bulk
 * strings. */
static inline int
fuzz_entry_ok(const redisReply *e)
{
    const redisReply *fv;
    size_t i;

    if (e == NULL || e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING ||
        e->element[0]->len >= sizeof ((struct drv_job *)0)->entry_id ||
        memchr(e->element[0]->str, '\0', e->element[0]->len) != NULL)
        return 0; /* an entry id never holds a NUL: refused as bad shape */
    fv = e->element[1];
    if (fv->type == REDIS_REPLY_NIL)
        return 1;
    if (fv->type != REDIS_REPLY_ARRAY || fv->elements % 2 != 0)
        return 0;
    for (i = 0; i < fv->elements; i++)
        if (fv->element[i]->type != REDIS_REPLY_STRING)
            return 0;
    return 1;
}

/* The last value of field name (NUL-terminated) in the entry, or NULL. */
static inline const redisReply *
fuzz_entry_field(const redisReply *fv, const char *name)
{
    const redisReply *v = NULL;
    size_t i, n = strlen(name);

    for (i = 0; i + 1 < fv->elements; i += 2)
        if (fv->element[i]->len == n &&
            memcmp(fv->element[i]->str, name, n) == 0)
            v = fv->element[i + 1];
    return v;
}

/*
 * Run drv_job_from_entry on e and check the job against e: shape
 * accepted exactly as fuzz_entry_ok says, every field copied in order with
 * its bytes, id, attempt and lookups as documented. names[0..nnames) are
 * extra field names to look up.
 */
static inline void
fuzz_check_job(const redisReply *e, const char *const *names, size_t nnames)
{
    struct drv_err err;
    struct drv_job *job;
    const redisReply *id, *fv, *v;
    size_t i, k, nlook, bytes = 0;

    drv_err_clear(&err);
    job = drv_job_from_entry(e, &err);
    FUZZ_CHECK((job != NULL) == fuzz_entry_ok(e), "drv_job_from_entry "
               "%s an entry the shape rules %s", job ? "took" : "refused",
               job ? "refuse" : "allow");
    if (job == NULL) {
        FUZZ_CHECK(err.code == DRV_EPROTO && err.msg[0] != '\0',
                   "refused entry without DRV_EPROTO and a message");
        return;
    }
    id = e->element[0];
    fv = e->element[1];
    FUZZ_CHECK(job->magic == DRV_JOB_MAGIC, "job magic");
    FUZZ_CHECK(memcmp(job->entry_id, id->str, id->len) == 0 &&
               job->entry_id[id->len] == '\0', "entry_id not copied");
    if (fv->type == REDIS_REPLY_NIL) {
        FUZZ_CHECK(job->payload_gone && job->nfields == 0 &&
                   job->id == job->entry_id, "nil payload");
        drv_job_free(job);
        return;
    }
    FUZZ_CHECK(!job->payload_gone && job->nfields == fv->elements / 2,
               "%zu fields for %zu elements", job->nfields, fv->elements);
    for (i = 0; i < job->nfields; i++) {
        const struct drv_field *f = &job->fields[i];
        const redisReply *n = fv->element[2 * i], *val = fv->element[2 * i + 1];

        FUZZ_CHECK(f->name_len == n->len && f->value_len == val->len &&
                   memcmp(f->name, n->str, n->len) == 0 &&
                   memcmp(f->value, val->str, val->len) == 0 &&
                   f->name[f->name_len] == '\0' &&
                   f->value[f->value_len] == '\0',
                   "field %zu not copied byte for byte", i);
        bytes += n->len + val->len;
    }
    FUZZ_CHECK(job->bytes == bytes, "bytes %zu, expected %zu", job->bytes,
               bytes);
    /* the id: the last non-empty id field's value, else the entry id */
    v = fuzz_entry_field(fv, "id");
    if (v != NULL && v->len > 0) {
        FUZZ_CHECK(job->id_len == v->len &&
                   memcmp(job->id, v->str, v->len) == 0 &&
                   job->id[job->id_len] == '\0',
                   "job id is not the id field, byte for byte");
    } else {
        FUZZ_CHECK(job->id == job->entry_id &&
                   job->id_len == strlen(job->entry_id),
                   "job id is not the entry id");
    }
    /* attempt: plain digits up to UINT32_MAX, else attempt_bad */
    v = fuzz_entry_field(fv, "attempt");
    if (v == NULL) {
        FUZZ_CHECK(job->attempt == 0 && !job->attempt_bad, "no attempt "
                   "field, yet attempt %" PRIu64 "/%d", job->attempt,
                   job->attempt_bad);
    } else {
        uint64_t a = 0;
        int ok = drv_parse_uint(v->str, v->len, UINT32_MAX, &a) == 0;

        FUZZ_CHECK(ok ? job->attempt == a && !job->attempt_bad
                      : job->attempt_bad == 1, "attempt field misread");
    }
    /* lookups: the first 32 field names without NUL (each lookup is
     * linear: all of them would make long entries quadratic), and the
     * extra names */
    nlook = job->nfields < 32 ? job->nfields : 32;
    for (i = 0; i < nlook + nnames; i++) {
        const char *name = i < nlook ? job->fields[i].name
                                     : names[i - nlook];
        const struct drv_field *f;
        char *s;

        if (i < nlook &&
            memchr(name, '\0', job->fields[i].name_len) != NULL)
            continue;
        f = drv_job_field(job, name);
        v = fuzz_entry_field(fv, name);
        s = drv_job_field_str(job, name);
        if (v == NULL) {
            FUZZ_CHECK(f == NULL && s == NULL, "found absent field %s",
                       name);
            continue;
        }
        FUZZ_CHECK(f != NULL && f->value_len == v->len &&
                   memcmp(f->value, v->str, v->len) == 0 &&
                   f >= job->fields && f < job->fields + job->nfields,
                   "drv_job_field(%s) is not the last field so named", name);
        for (k = (size_t)(f - job->fields) + 1; k < job->nfields; k++)
            FUZZ_CHECK(job->fields[k].name_len != strlen(name) ||
                       memcmp(job->fields[k].name, name, strlen(name)) != 0,
                       "drv_job_field(%s): a later field has that name",
                       name);
        FUZZ_CHECK(s != NULL && memcmp(s, v->str, v->len) == 0 &&
                   s[v->len] == '\0', "drv_job_field_str(%s)", name);
        free(s);
    }
    drv_job_free(job);
}

#endif
