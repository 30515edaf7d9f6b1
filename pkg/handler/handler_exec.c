/*
 * handler_exec.c -- the exec handler: one job, one child process (pkg/proc).
 *
 * The child's argv is the job type's `command`, each element a template
 * expanded through drv_hrun_lookup (a field holding a NUL is a bad job);
 * its stdin is every field of the entry as one JSON object (with `id` and
 * `attempt` added when the entry lacks them); its environment is the
 * worker's without secrets (the Redis URL and passwords), plus
 * DROVER_JOB_ID, DROVER_JOB, DROVER_QUEUE, DROVER_ATTEMPT (this attempt,
 * from 1) and the type's `env` map.
 *
 * Outcome: exit 0 succeeds with stdout as the result (cut at output_max);
 * exit 65 is permanent (dead at once); anything else (75 included) is
 * retried, the error naming the exit status or signal and ending with
 * the child's stderr. Cancel kills the process group (SIGTERM, then
 * SIGKILL after kill_grace); the child's exit then ends the task.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drover/buf.h"
#include "drover/common.h"
#include "drover/proc.h"
#include "drover/redis.h"
#include "drover/template.h"
#include "handler_int.h"

#define EXIT_PERMANENT 65   /* EX_DATAERR: dead at once */
#define EXIT_TEMPFAIL 75    /* EX_TEMPFAIL: retried */

/* ------------------------------------------------------------ helpers */

char *
drv__exec_stdin(const struct drv_job *job, size_t *len)
{
    struct drv_buf b;
    const struct drv_field *id;
    char *obj;
    size_t n = 0;
    char num[32];

    obj = drv_handler_fields_json(job, 0, &n);
    drv_buf_init(&b);
    drv_buf_add(&b, obj, n - 1); /* without the closing brace */
    free(obj);
    id = drv_job_field(job, "id");
    if (id == NULL || id->value_len == 0) {
        drv_buf_adds(&b, n > 2 ? ",\"id\":" : "\"id\":");
        drv_buf_json_str(&b, job->id, job->id_len);
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

char **
drv__exec_argv(const struct drv_hrun *r, struct drv_err *err)
{
    const struct drv_config_exec *ex = &r->ht->cfg->exec;
    char **argv = drv_xcalloc(ex->ncommand + 1, sizeof *argv);
    size_t i;
    int rc;

    for (i = 0; i < ex->ncommand; i++) {
        rc = drv_template_expand(ex->command[i], DRV_TEMPLATE_NO_NUL,
                                 drv_hrun_lookup, (void *)r, &argv[i], NULL,
                                 err);
        if (rc < 0) {
            if (err != NULL)
                err->code = DRV_EBADJOB;
            drv__strv_free(argv);
            return NULL;
        }
    }
    return argv;
}

void
drv__strv_free(char **v)
{
    size_t i;

    if (v == NULL)
        return;
    for (i = 0; v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

/* Is this variable of the worker's environment a secret for children?
 * password: the Redis password ("" = none). */
static int
is_secret(const char *kv, const char *redis_url, const char *password)
{
    const char *eq = strchr(kv, '=');
    static const char *const names[] = {"DROVER_REDIS_PASSWORD=",
                                        "DROVER_SENTINEL_PASSWORD=",
                                        "DROVER_REDIS_URL=", "REDISCLI_AUTH="};
    size_t i;

    for (i = 0; i < DRV_ARRAY_LEN(names); i++)
        if (strncmp(kv, names[i], strlen(names[i])) == 0)
            return 1;
    /* nor the password itself, under whatever name */
    if (password[0] != '\0' && eq != NULL && strcmp(eq + 1, password) == 0)
        return 1;
    /* the Redis URL is never passed, under whatever name */
    return redis_url != NULL && *redis_url != '\0' &&
           strstr(kv, redis_url) != NULL;
}

/* The Redis password into pw (size n; "" = none): the URL's, else
 * DROVER_REDIS_PASSWORD of environ_. */
static void
redis_password(char *const *environ_, const char *redis_url, char *pw,
               size_t n)
{
    static const char name[] = "DROVER_REDIS_PASSWORD=";
    struct drv_redis_url url;
    struct drv_err err;
    size_t i;

    pw[0] = '\0';
    memset(&url, 0, sizeof url);
    if (redis_url != NULL && drv_redis_url_parse(redis_url, &url, &err) == 0)
        snprintf(pw, n, "%s", url.password);
    explicit_bzero(&url, sizeof url);
    for (i = 0; pw[0] == '\0' && environ_ != NULL && environ_[i] != NULL;
         i++)
        if (strncmp(environ_[i], name, sizeof name - 1) == 0)
            snprintf(pw, n, "%s", environ_[i] + sizeof name - 1);
}

char **
drv__exec_base_env(char *const *environ_, const char *redis_url)
{
    size_t n = 0, i, o = 0;
    char **env, pw[DRV_REDIS_CRED_MAX];

    redis_password(environ_, redis_url, pw, sizeof pw);
    while (environ_ != NULL && environ_[n] != NULL)
        n++;
    env = drv_xcalloc(n + 1, sizeof *env);
    for (i = 0; i < n; i++) {
        if (strncmp(environ_[i], "DROVER_JOB", 10) == 0 ||
            strncmp(environ_[i], "DROVER_QUEUE=", 13) == 0 ||
            strncmp(environ_[i], "DROVER_ATTEMPT=", 15) == 0 ||
            strncmp(environ_[i], "DROVER_PROGRESS_FD=", 19) == 0 ||
            is_secret(environ_[i], redis_url, pw))
            continue;
        env[o++] = drv_xstrdup(environ_[i]);
    }
    explicit_bzero(pw, sizeof pw);
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
drv__exec_env(char *const *base, const struct drv_hrun *r)
{
    const struct drv_config_job *type = r->ht->cfg;
    size_t n = 0, i;
    char **env;

    while (base[n] != NULL)
        n++;
    env = drv_xcalloc(n + 1, sizeof *env);
    for (i = 0; i < n; i++)
        env[i] = drv_xstrdup(base[i]);
    env = env_set(env, &n, "DROVER_JOB_ID", r->job->id);
    env = env_set(env, &n, "DROVER_JOB", type->name);
    env = env_set(env, &n, "DROVER_QUEUE", r->queue);
    env = env_set(env, &n, "DROVER_ATTEMPT", r->attempt);
    env = env_set(env, &n, "DROVER_PROGRESS_FD", DRV__EXEC_PROGRESS_FD);
    env = env_traceparent(env, &n, r->job);
    for (i = 0; i < type->exec.nenv; i++)
        env = env_set(env, &n, type->exec.env[i].key,
                      type->exec.env[i].value);
    return env;
}

/* ------------------------------------------------------------ the run */

extern char **environ;

/* One run's state (r->state): the child and its progress pipe. */
struct exec_run {
    unsigned magic;
#define EXEC_RUN_MAGIC 0xe8ec0001U
    struct drv_proc *proc;              /* owned */
    struct drv__exec_progress *progress; /* owned */
};

static int
load_exec(struct drv_htype *ht, struct drv_err *err DRV_UNUSED)
{
    struct drv_handler_host *h = ht->host;

    if (h->base_env == NULL)
        h->base_env = drv__exec_base_env(environ, h->redis_url);
    return 0;
}

static void
shutdown_exec(struct drv_handler_host *h)
{
    drv__strv_free(h->base_env);
    h->base_env = NULL;
}

static void
on_exec_done(struct drv_proc *p DRV_UNUSED, int code,
             const struct drv_proc_result *res, void *ctx)
{
    struct drv_hrun *r;
    struct drv_buf b;
    char how[128];
    int rc;

    DRV_CAST(r, ctx, DRV_HRUN_MAGIC);
    if (code == 0) {
        /* reaped with wait4: what the child (and the descendants it
         * waited for) cost, for the result hash and the metrics */
        r->has_rusage = 1;
        r->cpu_ns = res->user_cpu_ns + res->sys_cpu_ns;
        r->max_rss_kb = res->max_rss_kb;
    }
    if (code == 0 && res->exit_code == 0 && !res->killed) {
        drv_hrun_ok(r, res->out, res->out_len);
        return;
    }
    drv_buf_init(&b);
    drv_proc_describe(res, how, sizeof how);
    if (res->exit_code == EXIT_TEMPFAIL)
        drv_buf_addf(&b, "exit status 75 (temporary failure)");
    else if (res->exit_code == EXIT_PERMANENT)
        drv_buf_addf(&b, "exit status 65 (permanent failure)");
    else
        drv_buf_adds(&b, how);
    if (res->err_len > 0) {
        drv_buf_adds(&b, ": ");
        drv_buf_add(&b, res->err, res->err_len);
        while (b.len > 0 && (b.data[b.len - 1] == '\n'))
            b.data[--b.len] = '\0';
    }
    rc = res->exit_code == EXIT_PERMANENT ? DRV_EPERMANENT : DRV_EHANDLER;
    if (code < 0)
        rc = code;
    drv_hrun_fail(r, rc, b.data, b.len);
    drv_buf_fini(&b);
}

static void
start_exec(struct drv_hrun *r)
{
    const struct drv_config_job *type = r->ht->cfg;
    struct drv_proc *proc = NULL;
    struct drv__exec_progress *progress = NULL;
    struct exec_run *er;
    struct drv_proc_opts po;
    struct drv_err err;
    char **argv = NULL, **env = NULL, *in = NULL;
    size_t in_len = 0;
    int rc, pfd = -1;

    drv_err_clear(&err);
    argv = drv__exec_argv(r, &err);
    if (argv == NULL) {
        drv_tg_task_done(r->task, DRV_EBADJOB, err.msg, NULL);
        return;
    }
    env = drv__exec_env(r->ht->host->base_env, r);
    in = drv__exec_stdin(r->job, &in_len);
    memset(&po, 0, sizeof po);
    po.argv = (const char *const *)argv;
    po.envp = (const char *const *)env;
    po.cwd = type->exec.cwd;
    po.in = in;
    po.in_len = in_len;
    po.output_max = (size_t)type->output_max;
    po.kill_grace_ms = type->exec.kill_grace_ms > 0 ? type->exec.kill_grace_ms
                                                    : -1;
    rc = drv__exec_progress_open(r, &progress, &pfd);
    if (rc < 0)
        drv_err_set(&err, rc, "progress pipe: %s", drv_strerror(rc));
    po.fd3 = pfd;
    if (rc == 0)
        rc = drv_proc_spawn(r->ht->host->procs, &po, on_exec_done, r, &proc,
                            &err);
    if (pfd >= 0)
        close(pfd); /* the child holds its copy */
    drv__strv_free(argv);
    drv__strv_free(env);
    free(in);
    if (rc < 0) {
        char msg[DRV_ERR_MSG_MAX + 32];

        drv__exec_progress_free(progress);
        snprintf(msg, sizeof msg, "cannot start: %s", err.msg);
        drv_hrun_fail(r, rc, msg, strlen(msg));
        return;
    }
    DRV_ALLOC_OBJ(er, EXEC_RUN_MAGIC);
    er->proc = proc;
    er->progress = progress;
    r->state = er;
}

static void
cancel_exec(struct drv_hrun *r, enum drv_tg_cause cause DRV_UNUSED)
{
    struct exec_run *er;

    /* the child's exit ends the task; a kill after it exited is a no-op
     * and its completion is already on its way */
    DRV_CAST(er, r->state, EXEC_RUN_MAGIC);
    (void)drv_proc_kill(er->proc);
}

static void
fini_exec(struct drv_hrun *r)
{
    struct exec_run *er;

    DRV_CAST(er, r->state, EXEC_RUN_MAGIC);
    drv_proc_free(er->proc);
    drv__exec_progress_free(er->progress);
    DRV_FREE_OBJ(er);
}

const struct drv_handler_ops drv__handler_exec = {
    .type = {.load = load_exec, .shutdown = shutdown_exec},
    .run = {.start = start_exec, .cancel = cancel_exec, .fini = fini_exec},
};
