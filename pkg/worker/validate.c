/*
 * validate.c -- what the worker checks of a fetched job before any
 * handler runs, so a bad job is dead-lettered at once with an error
 * naming the field: its size, its job type or pipeline and step, and the
 * fields its handler needs (the handler's check).
 *
 * Pure functions over a job and the config: no loop, no Redis.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/buf.h"
#include "drover/common.h"
#include "drover/config.h"
#include "drover/handlers.h"
#include "drover/queue.h"
#include "worker_int.h"

/* A field's value as a name (no NUL, short): into buf, or DRV_EBADJOB. */
static int
name_field(const struct drv_field *f, char *buf, size_t n,
           struct drv_err *err)
{
    if (f->value_len >= n || memchr(f->value, '\0', f->value_len))
        return drv_err_set(err, DRV_EBADJOB, "field %.*s: not a name",
                           (int)f->name_len, f->name);
    memcpy(buf, f->value, f->value_len);
    buf[f->value_len] = '\0';
    return 0;
}

/* A name from a job (len bytes) in double quotes, every byte that is
 * not printable UTF-8 (and '"', '\\') escaped, into buf (cut to fit): an
 * error text shows what the job held without carrying raw CR/LF or
 * invalid UTF-8 into logs and terminals. */
static const char *
quoted(char *buf, size_t n, const char *s, size_t len)
{
    char esc[DRV_LOGFMT_CHAR_MAX];
    size_t i, o = 0, used, w;

    buf[o++] = '"';
    for (i = 0; i < len; i += used) {
        w = drv_logfmt_char(s + i, len - i, esc, &used);
        if (o + w + 2 > n)
            break;
        memcpy(buf + o, esc, w);
        o += w;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

static int
validate_pipeline(const struct drv_config *cfg, const struct drv_job *job,
                  const struct drv_field *f,
                  const struct drv_config_pipeline **pipe_out,
                  int64_t *step_out, struct drv_err *err)
{
    const struct drv_config_pipeline *pipe;
    const struct drv_config_step *st;
    char name[256], q[256];
    uint64_t step = 0;
    size_t i;
    int rc;

    rc = name_field(f, name, sizeof name, err);
    if (rc < 0)
        return rc;
    pipe = drv_config_pipeline(cfg, name);
    if (pipe == NULL)
        return drv_err_set(err, DRV_EBADJOB, "field pipeline: unknown "
                           "pipeline %s", quoted(q, sizeof q, f->value,
                                                 f->value_len));
    if (pipe->ngraph > 0) { /* set even on error: the run learns of it */
        *pipe_out = pipe;
        return drv__graph_validate(job, pipe, step_out, err);
    }
    rc = drv_handler_uint_field(job, "step", (uint64_t)INT32_MAX, 0, &step,
                                err);
    if (rc < 0)
        return rc;
    if (step >= pipe->nsteps)
        return drv_err_set(err, DRV_EBADJOB, "field step: %llu is out of "
                           "range (pipeline %s has %zu steps)",
                           (unsigned long long)step, name, pipe->nsteps);
    st = &pipe->steps[step];
    for (i = 0; i < st->njobs; i++) {
        rc = drv_handler_check(st->jobs[i], job, err);
        if (rc < 0)
            return rc;
    }
    *pipe_out = pipe;
    *step_out = (int64_t)step;
    return 0;
}

/* A job refused before its fields were looked at (too large, or its
 * attempt field not a number, as a hand-edited entry may be) that names
 * a pipeline: its pipeline and step (a graph's node) into *pipe_out and
 * *step_out when they are known, so that its settle writes the step's
 * record or ends its run. A graph run's first entry (no field run) is
 * left a plain dead job: its settle would start the run. */
static void
refused_step(const struct drv_config *cfg, const struct drv_job *job,
             const struct drv_config_pipeline **pipe_out, int64_t *step_out)
{
    const struct drv_field *f = drv_job_field(job, "pipeline");
    const struct drv_config_pipeline *pipe;
    struct drv_err ignored;
    uint64_t step = 0;
    char name[256];

    drv_err_clear(&ignored);
    if (f == NULL || name_field(f, name, sizeof name, &ignored) < 0 ||
        (pipe = drv_config_pipeline(cfg, name)) == NULL)
        return;
    if (pipe->ngraph > 0) {
        if (drv_job_field(job, "run") == NULL)
            return;
        *pipe_out = pipe;
        (void)drv__graph_validate(job, pipe, step_out, &ignored);
        return;
    }
    if (drv_handler_uint_field(job, "step", (uint64_t)INT32_MAX, 0, &step,
                               &ignored) < 0 || step >= pipe->nsteps)
        return;
    *pipe_out = pipe;
    *step_out = (int64_t)step;
}

int
drv__worker_job_validate(const struct drv_config *cfg,
                         const struct drv_job *job,
                         const struct drv_config_job **type_out,
                         const struct drv_config_pipeline **pipe_out,
                         int64_t *step_out, struct drv_err *err)
{
    const struct drv_config_job *type = NULL;
    const struct drv_field *f, *pf;
    char name[256], q[256];
    int rc;

    *type_out = NULL;
    *pipe_out = NULL;
    *step_out = -1;
    if (job->payload_gone)
        return drv_err_set(err, DRV_EBADJOB, "payload deleted from the "
                           "stream");
    if ((int64_t)job->bytes > cfg->worker.max_job_bytes) {
        refused_step(cfg, job, pipe_out, step_out);
        return drv_err_set(err, DRV_EBADJOB,
                           "job is %zu bytes, more than max_job_bytes %lld",
                           job->bytes, (long long)cfg->worker.max_job_bytes);
    }
    if (job->attempt_bad) {
        refused_step(cfg, job, pipe_out, step_out);
        return drv_err_set(err, DRV_EBADJOB, "field attempt: not a plain "
                           "decimal integer");
    }
    f = drv_job_field(job, "job");
    pf = drv_job_field(job, "pipeline");
    if (f != NULL && pf != NULL)
        return drv_err_set(err, DRV_EBADJOB, "fields job and pipeline: give "
                           "one, not both");
    if (pf != NULL)
        return validate_pipeline(cfg, job, pf, pipe_out, step_out, err);
    if (f == NULL)
        return drv_err_set(err, DRV_EBADJOB, "missing field job");
    rc = name_field(f, name, sizeof name, err);
    if (rc < 0)
        return drv_err_set(err, DRV_EBADJOB, "field job: not a job type "
                           "name");
    type = drv_config_job(cfg, name);
    if (type == NULL)
        return drv_err_set(err, DRV_EBADJOB, "field job: unknown job type "
                           "%s", quoted(q, sizeof q, f->value, f->value_len));
    rc = drv_handler_check(type, job, err);
    if (rc < 0)
        return rc;
    *type_out = type;
    return 0;
}

int64_t
drv__worker_named_ttl(const struct drv_config *cfg, const struct drv_job *job)
{
    const struct drv_config_pipeline *pipe;
    const struct drv_config_job *type;
    const struct drv_field *f;
    struct drv_err err;
    char name[256];

    drv_err_clear(&err);
    if ((f = drv_job_field(job, "pipeline")) != NULL) {
        if (name_field(f, name, sizeof name, &err) < 0 ||
            (pipe = drv_config_pipeline(cfg, name)) == NULL)
            return 0;
        return pipe->policy.result_ttl_ms;
    }
    if ((f = drv_job_field(job, "job")) == NULL ||
        name_field(f, name, sizeof name, &err) < 0 ||
        (type = drv_config_job(cfg, name)) == NULL)
        return 0;
    return type->policy.result_ttl_ms;
}
