/*
 * handler.c -- the table of handlers, and what every handler shares: how
 * an attempt ends (drv_hrun_ok/_fail/_output), the one field lookup of
 * templates and plugins, and the fields as JSON.
 *
 * Adding a handler (doc/handlers.md): write pkg/handler/handler_<name>.c
 * defining `const struct drv_handler_ops drv__handler_<name>`, and add
 * its line to DRV_HKIND_LIST (include/drover/config.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/buf.h"
#include "drover/common.h"
#include "drover/handlers.h"
#include "drover/parse.h"
#include "handler_int.h"

/* Each handler's table, one per line of DRV_HKIND_LIST (config.h). */
#define HKIND_DECL(kind, name) \
    extern const struct drv_handler_ops drv__handler_##name;
DRV_HKIND_LIST(HKIND_DECL)
#undef HKIND_DECL

static const struct drv_handler_ops *const table[DRV_HKIND_COUNT] = {
#define HKIND_ENTRY(kind, name) [DRV_HKIND_##kind] = &drv__handler_##name,
    DRV_HKIND_LIST(HKIND_ENTRY)
#undef HKIND_ENTRY
};

/* ------------------------------------------------------------ the table */

const struct drv_handler_ops *
drv_handler_ops_of(enum drv_hkind kind)
{
    DRV_ASSERT((unsigned)kind < DRV_HKIND_COUNT && table[kind] != NULL);
    return table[kind];
}

int
drv_htype_load(struct drv_htype *ht, struct drv_handler_host *host,
               const struct drv_config_job *cfg, struct drv_err *err)
{
    struct drv_err e;
    int rc;

    memset(ht, 0, sizeof *ht);
    ht->magic = DRV_HTYPE_MAGIC;
    ht->ops = drv_handler_ops_of(cfg->handler);
    ht->cfg = cfg;
    ht->host = host;
    if (ht->ops->type.load == NULL)
        return 0;
    drv_err_clear(&e);
    rc = ht->ops->type.load(ht, &e);
    if (rc < 0)
        return drv_err_set(err, rc, "jobs.%s: %s", cfg->name, e.msg);
    return 0;
}

void
drv_htype_unload(struct drv_htype *ht)
{
    if (ht->magic != DRV_HTYPE_MAGIC)
        return; /* never loaded */
    if (ht->ops->type.unload != NULL)
        ht->ops->type.unload(ht);
    ht->magic = 0;
}

void
drv_handler_host_fini(struct drv_handler_host *host)
{
    size_t i;

    for (i = 0; i < DRV_HKIND_COUNT; i++)
        if (table[i]->type.shutdown != NULL)
            table[i]->type.shutdown(host);
}

int
drv_handler_check(const struct drv_config_job *type,
                  const struct drv_job *job, struct drv_err *err)
{
    const struct drv_handler_ops *ops = drv_handler_ops_of(type->handler);

    return ops->check != NULL ? ops->check(type, job, err) : 0;
}

/* ------------------------------------------------------------- a run */

/* v in decimal into out (at least 21 bytes); snprintf costs more on the
 * path every job takes. */
static void
u64_str(uint64_t v, char *out)
{
    char tmp[24];
    size_t n = 0, i;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    for (i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
}

void
drv_hrun_init(struct drv_hrun *r, struct drv_htype *ht,
              const struct drv_job *job, const char *queue)
{
    memset(r, 0, sizeof *r);
    r->magic = DRV_HRUN_MAGIC;
    r->ht = ht;
    r->job = job;
    r->queue = queue;
    u64_str(job->attempt + 1, r->attempt);
}

void
drv_hrun_fini(struct drv_hrun *r)
{
    if (r->magic != DRV_HRUN_MAGIC)
        return;
    if (r->state != NULL && r->ht->ops->run.fini != NULL)
        r->ht->ops->run.fini(r);
    r->state = NULL;
    drv__hrun_progress_free(r);
    r->magic = 0;
}

void
drv_hrun_ok(struct drv_hrun *r, const void *data, size_t len)
{
    if (data != NULL)
        drv_tg_task_set_result(r->task, data, len);
    drv_tg_task_done(r->task, 0, NULL, NULL);
}

void
drv_hrun_fail(struct drv_hrun *r, int code, const char *text, size_t len)
{
    char msg[DRV_ERR_MSG_MAX];

    DRV_ASSERT(code < 0);
    snprintf(msg, sizeof msg, "%.*s",
             (int)(len < sizeof msg ? len : sizeof msg - 1), text);
    drv_tg_task_set_result(r->task, text, len);
    drv_tg_task_done(r->task, code, msg, NULL);
}

void
drv_hrun_cancel(struct drv_hrun *r, enum drv_tg_cause cause)
{
    if (r->ht->ops->run.cancel == NULL || r->state == NULL)
        drv_hrun_cancelled(r);
    else
        r->ht->ops->run.cancel(r, cause);
}

void
drv_hrun_cancelled(struct drv_hrun *r)
{
    drv_tg_task_done(r->task, -ECANCELED, NULL, NULL);
}

void
drv_hrun_output(struct drv_hrun *r, const void *data, size_t len)
{
    drv_tg_task_set_result(r->task, data, len);
}

int
drv_hrun_lookup(const char *name, size_t name_len, const char **value,
                size_t *value_len, void *ctx)
{
    const struct drv_hrun *r = ctx;
    const struct drv_job *job = r->job;
    size_t i;

    if (name_len == 2 && memcmp(name, "id", 2) == 0) {
        *value = job->id;
        *value_len = job->id_len;
        return 0;
    }
    if (name_len == 7 && memcmp(name, "attempt", 7) == 0) {
        *value = r->attempt;
        *value_len = strlen(r->attempt);
        return 0;
    }
    for (i = job->nfields; i > 0; i--) {
        const struct drv_field *f = &job->fields[i - 1];
        if (f->name_len == name_len && memcmp(f->name, name, name_len) == 0) {
            *value = f->value;
            *value_len = f->value_len;
            return 0;
        }
    }
    return -ENOENT;
}

/* ----------------------------------------------------------- job fields */

int
drv_handler_uint_field(const struct drv_job *job, const char *name,
                       uint64_t max, int required, uint64_t *out,
                       struct drv_err *err)
{
    const struct drv_field *f = drv_job_field(job, name);
    int rc;

    if (f == NULL) {
        if (!required)
            return 1;
        return drv_err_set(err, DRV_EBADJOB, "missing field %s", name);
    }
    rc = drv_parse_uint(f->value, f->value_len, max, out);
    if (rc == -ERANGE)
        return drv_err_set(err, DRV_EBADJOB,
                           "field %s: %.*s is out of range (at most %llu)",
                           name, (int)(f->value_len > 40 ? 40 : f->value_len),
                           f->value, (unsigned long long)max);
    if (rc < 0)
        return drv_err_set(err, DRV_EBADJOB,
                           "field %s: \"%.*s\" is not a plain decimal "
                           "integer", name,
                           (int)(f->value_len > 40 ? 40 : f->value_len),
                           f->value);
    return 0;
}

/* Fields the worker sets itself: not arguments of the job. */
static int
is_worker_field(const struct drv_field *f)
{
    static const char *const names[] = {"job", "pipeline", "id", "attempt",
                                        "step"};

    return drv_field_name_in(f, names, DRV_ARRAY_LEN(names));
}

static int
same_name(const struct drv_field *a, const struct drv_field *b)
{
    return a->name_len == b->name_len &&
           memcmp(a->name, b->name, a->name_len) == 0;
}

char *
drv_handler_fields_json(const struct drv_job *job, int args_only,
                        size_t *len)
{
    struct drv_buf b;
    size_t i, j;
    int first = 1;

    drv_buf_init(&b);
    drv_buf_add(&b, "{", 1);
    for (i = 0; i < job->nfields; i++) {
        const struct drv_field *f = &job->fields[i], *last;
        int seen = 0;

        if (args_only && is_worker_field(f))
            continue;
        for (j = 0; j < i && !seen; j++)
            seen = same_name(&job->fields[j], f);
        if (seen)
            continue;
        last = f;
        for (j = i + 1; j < job->nfields; j++)
            if (same_name(&job->fields[j], f))
                last = &job->fields[j];
        if (!first)
            drv_buf_add(&b, ",", 1);
        first = 0;
        drv_buf_json_str(&b, f->name, f->name_len);
        drv_buf_add(&b, ":", 1);
        drv_buf_json_str(&b, last->value, last->value_len);
    }
    drv_buf_add(&b, "}", 1);
    return drv_buf_take(&b, len);
}
