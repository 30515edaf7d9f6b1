/*
 * worker_job.c -- what the worker checks and builds from a fetched job,
 * before any handler runs: validation (so a bad job is dead-lettered at
 * once with an error naming the field), the fields as JSON (echo's result,
 * exec's stdin), and the argv and environment of an exec child.
 *
 * Pure functions over a job and its job type: no loop, no Redis.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/buf.h"
#include "drover/common.h"
#include "drover/config.h"
#include "drover/parse.h"
#include "drover/queue.h"
#include "drover/template.h"
#include "worker_int.h"

/* Fields the worker sets itself: not arguments of the job. */
static int
is_worker_field(const struct drv_field *f)
{
    static const char *const names[] = {"job", "pipeline", "id", "attempt",
                                        "step"};
    size_t i;

    for (i = 0; i < DRV_ARRAY_LEN(names); i++)
        if (f->name_len == strlen(names[i]) &&
            memcmp(f->name, names[i], f->name_len) == 0)
            return 1;
    return 0;
}

/* A plain decimal field (ms, permanent, ...): DRV_EBADJOB naming it. */
static int
uint_field(const struct drv_job *job, const char *name, uint64_t max,
           int required, uint64_t *out, struct drv_err *err)
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

/* The fields a job type's handler needs, present and well-formed. */
static int
check_handler_fields(const struct drv_config_job *type,
                     const struct drv_job *job, struct drv_err *err)
{
    uint64_t v;
    int rc = 0;

    switch (type->handler) {
    case DRV_HANDLER_SLEEP:
    case DRV_HANDLER_BLOCK:
        rc = uint_field(job, "ms", (uint64_t)INT32_MAX, 1, &v, err);
        break;
    case DRV_HANDLER_FAIL:
        rc = uint_field(job, "permanent", 1, 0, &v, err);
        break;
    default:
        break;
    }
    return rc < 0 ? rc : 0;
}

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

static int
validate_pipeline(const struct drv_config *cfg, const struct drv_job *job,
                  const struct drv_field *f,
                  const struct drv_config_pipeline **pipe_out,
                  int64_t *step_out, struct drv_err *err)
{
    const struct drv_config_pipeline *pipe;
    const struct drv_config_step *st;
    char name[256];
    uint64_t step = 0;
    size_t i;
    int rc;

    rc = name_field(f, name, sizeof name, err);
    if (rc < 0)
        return rc;
    pipe = drv_config_pipeline(cfg, name);
    if (pipe == NULL)
        return drv_err_set(err, DRV_EBADJOB, "field pipeline: unknown "
                           "pipeline \"%s\"", name);
    rc = uint_field(job, "step", (uint64_t)INT32_MAX, 0, &step, err);
    if (rc < 0)
        return rc;
    if (step >= pipe->nsteps)
        return drv_err_set(err, DRV_EBADJOB, "field step: %llu is out of "
                           "range (pipeline %s has %zu steps)",
                           (unsigned long long)step, name, pipe->nsteps);
    st = &pipe->steps[step];
    for (i = 0; i < st->njobs; i++) {
        rc = check_handler_fields(st->jobs[i], job, err);
        if (rc < 0)
            return rc;
    }
    *pipe_out = pipe;
    *step_out = (int64_t)step;
    return 0;
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
    char name[256];
    int rc;

    *type_out = NULL;
    *pipe_out = NULL;
    *step_out = -1;
    if (job->payload_gone)
        return drv_err_set(err, DRV_EBADJOB, "payload deleted from the "
                           "stream");
    if ((int64_t)job->bytes > cfg->worker.max_job_bytes)
        return drv_err_set(err, DRV_EBADJOB,
                           "job is %zu bytes, more than max_job_bytes %lld",
                           job->bytes, (long long)cfg->worker.max_job_bytes);
    if (job->attempt_bad)
        return drv_err_set(err, DRV_EBADJOB, "field attempt: not a plain "
                           "decimal integer");
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
                           "\"%s\"", name);
    rc = check_handler_fields(type, job, err);
    if (rc < 0)
        return rc;
    *type_out = type;
    return 0;
}

int64_t
drv__worker_job_ms(const struct drv_job *job)
{
    uint64_t v = 0;

    if (uint_field(job, "ms", (uint64_t)INT32_MAX, 1, &v, NULL) < 0)
        return 0;
    return (int64_t)v;
}

int
drv__worker_job_permanent(const struct drv_job *job)
{
    uint64_t v = 0;

    return uint_field(job, "permanent", 1, 0, &v, NULL) == 0 && v == 1;
}

/*
 * The fields as one JSON object of strings: each name once, at its first
 * place, with its last value (a field given twice counts with its last
 * value). args_only leaves out the worker's own fields.
 */
char *
drv__worker_fields_json(const struct drv_job *job, int args_only,
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
            seen = job->fields[j].name_len == f->name_len &&
                   memcmp(job->fields[j].name, f->name, f->name_len) == 0;
        if (seen)
            continue;
        last = f;
        for (j = i + 1; j < job->nfields; j++)
            if (job->fields[j].name_len == f->name_len &&
                memcmp(job->fields[j].name, f->name, f->name_len) == 0)
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

/* exec's stdin: every field, with job, id and attempt as the worker sees
 * them (id and attempt are added when the entry lacks them). */
char *
drv__worker_exec_stdin(const struct drv_job *job, size_t *len)
{
    struct drv_buf b;
    char *obj;
    size_t n = 0;
    char num[32];

    obj = drv__worker_fields_json(job, 0, &n);
    drv_buf_init(&b);
    drv_buf_add(&b, obj, n - 1); /* without the closing brace */
    free(obj);
    if (drv_job_field(job, "id") == NULL ||
        drv_job_field(job, "id")->value_len == 0) {
        drv_buf_adds(&b, n > 2 ? ",\"id\":" : "\"id\":");
        drv_buf_json_str(&b, job->id, strlen(job->id));
        n = 3;
    }
    if (drv_job_field(job, "attempt") == NULL) {
        snprintf(num, sizeof num, "%llu", (unsigned long long)job->attempt);
        drv_buf_adds(&b, n > 2 ? ",\"attempt\":" : "\"attempt\":");
        drv_buf_json_str(&b, num, strlen(num));
    }
    drv_buf_add(&b, "}", 1);
    return drv_buf_take(&b, len);
}

static int
lookup_field(const char *name, size_t name_len, const char **value,
             size_t *value_len, void *ctx)
{
    const struct drv_job *job = ctx;
    size_t i;

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

char **
drv__worker_exec_argv(const struct drv_config_job *type,
                      const struct drv_job *job, struct drv_err *err)
{
    char **argv = drv_xcalloc(type->exec.ncommand + 1, sizeof *argv);
    size_t i;
    int rc;

    for (i = 0; i < type->exec.ncommand; i++) {
        rc = drv_template_expand(type->exec.command[i], DRV_TEMPLATE_NO_NUL,
                                 lookup_field, (void *)job, &argv[i], NULL,
                                 err);
        if (rc < 0) {
            if (err != NULL)
                err->code = DRV_EBADJOB;
            drv__worker_strv_free(argv);
            return NULL;
        }
    }
    return argv;
}

void
drv__worker_strv_free(char **v)
{
    size_t i;

    if (v == NULL)
        return;
    for (i = 0; v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

/* Is this variable of the worker's environment a secret for children? */
static int
is_secret(const char *kv, const char *redis_url)
{
    static const char *const names[] = {"DROVER_REDIS_PASSWORD=",
                                        "DROVER_REDIS_URL=", "REDISCLI_AUTH="};
    size_t i;

    for (i = 0; i < DRV_ARRAY_LEN(names); i++)
        if (strncmp(kv, names[i], strlen(names[i])) == 0)
            return 1;
    /* the Redis URL is never passed, under whatever name */
    return redis_url != NULL && *redis_url != '\0' &&
           strstr(kv, redis_url) != NULL;
}

char **
drv__worker_base_env(char *const *environ_, const char *redis_url)
{
    size_t n = 0, i, o = 0;
    char **env;

    while (environ_ != NULL && environ_[n] != NULL)
        n++;
    env = drv_xcalloc(n + 1, sizeof *env);
    for (i = 0; i < n; i++) {
        if (strncmp(environ_[i], "DROVER_JOB", 10) == 0 ||
            strncmp(environ_[i], "DROVER_QUEUE=", 13) == 0 ||
            strncmp(environ_[i], "DROVER_ATTEMPT=", 15) == 0 ||
            is_secret(environ_[i], redis_url))
            continue;
        env[o++] = drv_xstrdup(environ_[i]);
    }
    return env;
}

/* Replace or add NAME=value in a NULL-terminated vector (grown). */
static char **
env_set(char **env, size_t *n, const char *name, const char *value)
{
    size_t nl = strlen(name), i;
    size_t len = nl + strlen(value) + 2;
    char *kv = drv_xmalloc(len);

    snprintf(kv, len, "%s=%s", name, value);
    for (i = 0; i < *n; i++) {
        if (strncmp(env[i], name, nl) == 0 && env[i][nl] == '=') {
            free(env[i]);
            env[i] = kv;
            return env;
        }
    }
    env = drv_xrealloc(env, (*n + 2) * sizeof *env);
    env[(*n)++] = kv;
    env[*n] = NULL;
    return env;
}

/* W3C trace context: the job's field traceparent, unchanged, as
 * TRACEPARENT (a value holding a NUL cannot be an environment value and
 * is left out). */
static char **
env_traceparent(char **env, size_t *n, const struct drv_job *job)
{
    const struct drv_field *f = drv_job_field(job, "traceparent");
    char *v;

    if (f == NULL || memchr(f->value, '\0', f->value_len) != NULL)
        return env;
    v = drv_xstrndup(f->value, f->value_len);
    env = env_set(env, n, "TRACEPARENT", v);
    free(v);
    return env;
}

char **
drv__worker_exec_env(char *const *base, const struct drv_config_job *type,
                     const struct drv_job *job, const char *queue)
{
    size_t n = 0, i;
    char **env;
    char num[32];

    while (base[n] != NULL)
        n++;
    env = drv_xcalloc(n + 1, sizeof *env);
    for (i = 0; i < n; i++)
        env[i] = drv_xstrdup(base[i]);
    env = env_set(env, &n, "DROVER_JOB_ID", job->id);
    env = env_set(env, &n, "DROVER_JOB", type->name);
    env = env_set(env, &n, "DROVER_QUEUE", queue);
    snprintf(num, sizeof num, "%llu",
             (unsigned long long)(job->attempt + 1));
    env = env_set(env, &n, "DROVER_ATTEMPT", num);
    env = env_traceparent(env, &n, job);
    for (i = 0; i < type->exec.nenv; i++)
        env = env_set(env, &n, type->exec.env[i].key,
                      type->exec.env[i].value);
    return env;
}
