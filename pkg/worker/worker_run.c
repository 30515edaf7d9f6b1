/*
 * worker_run.c -- running jobs: each fetched batch is one task group
 * (COLLECT), each job a task with its type's timeout, holding a permit of
 * its job type's semaphore (if limited), of the thread semaphore (pool
 * jobs) and of the process semaphore, in that global order. The handlers
 * live here: noop, echo, sleep, fail on the loop; block on the pool; exec
 * as a child process.
 *
 * An outcome becomes a settle op at once (on_outcome), so a finished job
 * never waits for a slow batch-mate; the batch's report is logged when the
 * group is outcome-complete.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "drover/buf.h"
#include "drover/clock.h"
#include "drover/common.h"
#include "drover/log.h"
#include "drover/proc.h"
#include "drover/sem.h"
#include "drover/tg.h"
#include "worker_int.h"

#define ERR_TEXT_MAX 8192

/* ----------------------------------------------------------- job life */

static void
wjob_free(struct wjob *j)
{
    if (j->hdata_free != NULL)
        j->hdata_free(j->hdata);
    if (j->timer != NULL)
        event_free(j->timer);
    drv_proc_free(j->proc);
    if (!j->job_borrowed)
        drv_job_free(j->job);
    if (j->mtext != NULL) {
        int i;
        for (i = 0; i < j->nmembers; i++)
            free(j->mtext[i]);
        free(j->mtext);
        free(j->mtext_len);
    }
    free(j->op_text);
    j->magic = 0;
    free(j);
}

void
drv__worker_job_unref(struct wjob *j)
{
    DRV_CHECK_OBJ(j, WJOB_MAGIC);
    DRV_ASSERT(j->refs > 0);
    if (--j->refs == 0)
        wjob_free(j);
}

void
drv__worker_job_set_text(struct wjob *j, const char *s, size_t n)
{
    free(j->op_text);
    if (n > ERR_TEXT_MAX && j->op.kind != DRV_SETTLE_ACK)
        n = ERR_TEXT_MAX;
    j->op_text = drv_xstrndup(s, n);
    j->op_text_len = n;
}

/* --------------------------------------------------------------- noop */

static void
start_noop(struct drv_tg_task *t, void *ctx)
{
    (void)ctx;
    drv_tg_task_done(t, 0, NULL, NULL);
}

/* A loop task that has nothing to stop: its done already ran or runs. */
static void
cancel_nothing(struct drv_tg_task *t, enum drv_tg_cause cause, void *ctx)
{
    (void)cause;
    (void)ctx;
    drv_tg_task_done(t, -ECANCELED, NULL, NULL);
}

/* A job that cannot run: fails permanently at once, naming the field. */
static void
start_bad(struct drv_tg_task *t, void *ctx)
{
    struct wjob *j;

    DRV_CAST(j, ctx, WJOB_MAGIC);
    drv_tg_task_done(t, DRV_EBADJOB, j->bad.msg, NULL);
}

/* --------------------------------------------------------------- echo */

static void
start_echo(struct drv_tg_task *t, void *ctx)
{
    struct wjob *j;
    size_t n = 0;
    char *json;

    DRV_CAST(j, ctx, WJOB_MAGIC);
    json = drv__worker_fields_json(j->job, 1, &n);
    free(j->op_text);
    j->op_text = json;
    j->op_text_len = n;
    drv_tg_task_done(t, 0, NULL, NULL);
}

/* --------------------------------------------------------------- fail */

static void
start_fail(struct drv_tg_task *t, void *ctx)
{
    struct wjob *j;
    const struct drv_field *f;
    char msg[DRV_ERR_MSG_MAX];

    DRV_CAST(j, ctx, WJOB_MAGIC);
    f = drv_job_field(j->job, "error");
    if (f != NULL) {
        drv__worker_job_set_text(j, f->value, f->value_len);
        snprintf(msg, sizeof msg, "%.*s",
                 (int)(f->value_len < sizeof msg ? f->value_len
                                                 : sizeof msg - 1),
                 f->value);
    } else {
        drv__worker_job_set_text(j, "failed", 6);
        snprintf(msg, sizeof msg, "failed");
    }
    drv_tg_task_done(t, drv__worker_job_permanent(j->job) ? DRV_EPERM
                                                          : DRV_EHANDLER,
                     msg, NULL);
}

/* -------------------------------------------------------------- sleep */

static void
on_sleep_done(evutil_socket_t fd, short what, void *arg)
{
    struct wjob *j;

    (void)fd;
    (void)what;
    DRV_CAST(j, arg, WJOB_MAGIC);
    drv_tg_task_done(j->task, 0, NULL, NULL);
}

static void
start_sleep(struct drv_tg_task *t, void *ctx)
{
    struct wjob *j;
    struct timeval tv;

    (void)t;
    DRV_CAST(j, ctx, WJOB_MAGIC);
    tv = drv_clock_tv_from_ns(drv__worker_job_ms(j->job) * DRV_NS_PER_MS);
    j->timer = evtimer_new(j->w->base, on_sleep_done, j);
    DRV_AN(j->timer);
    DRV_AZ(event_add(j->timer, &tv));
}

static void
cancel_sleep(struct drv_tg_task *t, enum drv_tg_cause cause, void *ctx)
{
    struct wjob *j;

    (void)cause;
    DRV_CAST(j, ctx, WJOB_MAGIC);
    if (j->timer != NULL)
        event_del(j->timer);
    drv_tg_task_done(t, -ECANCELED, NULL, NULL);
}

/* -------------------------------------------------------------- block */

/* Runs on a pool thread: blocks for the whole time (it stands for work
 * that cannot be interrupted), touching only its own numbers. */
static int
work_block(struct drv_tg_task *t, struct drv_err *err, void *ctx)
{
    int64_t ms = *(const int64_t *)ctx;
    struct timespec ts, rem;

    (void)t;
    (void)err;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &rem) != 0 && errno == EINTR)
        ts = rem;
    return 0;
}

/* --------------------------------------------------------------- exec */

static void
on_exec_done(struct drv_proc *p, int code, const struct drv_proc_result *res,
             void *ctx)
{
    struct wjob *j;
    struct drv_buf b;
    char how[128];
    int rc;

    (void)p;
    DRV_CAST(j, ctx, WJOB_MAGIC);
    if (code == 0)
        drv__worker_metrics_rusage(j, res);
    if (code == 0 && res->exit_code == 0 && !res->killed) {
        free(j->op_text);
        j->op_text = drv_xstrndup(res->out, res->out_len);
        j->op_text_len = res->out_len;
        drv_tg_task_done(j->task, 0, NULL, NULL);
        return;
    }
    drv_buf_init(&b);
    drv_proc_describe(res, how, sizeof how);
    if (res->exit_code == 75)
        drv_buf_addf(&b, "exit status 75 (temporary failure)");
    else if (res->exit_code == 65)
        drv_buf_addf(&b, "exit status 65 (permanent failure)");
    else
        drv_buf_adds(&b, how);
    if (res->err_len > 0) {
        drv_buf_adds(&b, ": ");
        drv_buf_add(&b, res->err, res->err_len);
        while (b.len > 0 && (b.data[b.len - 1] == '\n'))
            b.data[--b.len] = '\0';
    }
    drv__worker_job_set_text(j, b.data, b.len);
    rc = res->exit_code == 65 ? DRV_EPERM : DRV_EHANDLER;
    if (code < 0)
        rc = code;
    drv_tg_task_done(j->task, rc, b.data, NULL);
    drv_buf_fini(&b);
}

static void
start_exec(struct drv_tg_task *t, void *ctx)
{
    struct wjob *j;
    const struct drv_config_job *type;
    struct drv_proc_opts po;
    struct drv_err err;
    char **argv = NULL, **env = NULL, *in = NULL;
    size_t in_len = 0;
    int rc;

    DRV_CAST(j, ctx, WJOB_MAGIC);
    type = j->type->cfg;
    drv_err_clear(&err);
    argv = drv__worker_exec_argv(type, j->job, &err);
    if (argv == NULL) {
        drv_tg_task_done(t, DRV_EBADJOB, err.msg, NULL);
        return;
    }
    env = drv__worker_exec_env(j->w->base_env, type, j->job,
                               j->w->queues[j->qi].keys.name);
    in = drv__worker_exec_stdin(j->job, &in_len);
    memset(&po, 0, sizeof po);
    po.argv = (const char *const *)argv;
    po.envp = (const char *const *)env;
    po.cwd = type->exec.cwd;
    po.in = in;
    po.in_len = in_len;
    po.output_max = (size_t)type->output_max;
    po.kill_grace_ms = type->exec.kill_grace_ms > 0 ? type->exec.kill_grace_ms
                                                    : -1;
    rc = drv_proc_spawn(j->w->procs, &po, on_exec_done, j, &j->proc, &err);
    drv__worker_strv_free(argv);
    drv__worker_strv_free(env);
    free(in);
    if (rc < 0) {
        char msg[DRV_ERR_MSG_MAX + 32];
        snprintf(msg, sizeof msg, "cannot start: %s", err.msg);
        drv__worker_job_set_text(j, msg, strlen(msg));
        drv_tg_task_done(t, rc, msg, NULL);
    }
}

static void
cancel_exec(struct drv_tg_task *t, enum drv_tg_cause cause, void *ctx)
{
    struct wjob *j;

    (void)cause;
    DRV_CAST(j, ctx, WJOB_MAGIC);
    /* the child's completion calls done; a kill after it exited is a
     * no-op and its done is already on its way */
    if (j->proc == NULL || drv_proc_kill(j->proc) == -ESRCH) {
        if (j->proc == NULL)
            drv_tg_task_done(t, -ECANCELED, NULL, NULL);
    }
}

/* ----------------------------------------------------------- outcomes */

/* Retry settings: a parallel step uses its pipeline's, anything else
 * its job type's. */
static void
policy(const struct wjob *j, int *retries, int64_t *backoff,
       int64_t *backoff_max, int64_t *timeout)
{
    if (j->type == NULL && j->pipe != NULL) {
        *retries = j->pipe->retries;
        *backoff = j->pipe->backoff_ms;
        *backoff_max = j->pipe->backoff_max_ms;
        *timeout = j->pipe->timeout_ms;
    } else {
        *retries = j->type->cfg->retries;
        *backoff = j->type->cfg->backoff_ms;
        *backoff_max = j->type->cfg->backoff_max_ms;
        *timeout = j->type->cfg->timeout_ms;
    }
}

static void
retry_or_dead(struct wjob *j, const char *err, size_t err_len)
{
    uint64_t attempts = j->job->attempt + 1;
    int retries;
    int64_t backoff, backoff_max, timeout;

    policy(j, &retries, &backoff, &backoff_max, &timeout);
    j->op.attempts = attempts;
    if (attempts <= (uint64_t)retries) {
        int64_t delay = drv_backoff_ms(attempts, backoff, backoff_max,
                                       drv_random64());

        if (j->retry_after_ms > delay)
            delay = j->retry_after_ms;
        j->op.kind = DRV_SETTLE_RETRY;
        j->op.due_ms = drv_clock_unix_ms() + delay;
        j->w->stats.retried++;
    } else {
        j->op.kind = DRV_SETTLE_DEAD;
        j->op.count_failed = 1;
        j->w->stats.dead++;
    }
    if (j->op_text == NULL || err != NULL)
        drv__worker_job_set_text(j, err ? err : "failed", err ? err_len : 6);
}

/* A parallel step's result: member job type -> its result, in declared
 * order, as one JSON object. */
static void
parallel_result(struct wjob *j)
{
    const struct drv_config_step *st = &j->pipe->steps[j->step];
    struct drv_buf b;
    int i;

    drv_buf_init(&b);
    drv_buf_add(&b, "{", 1);
    for (i = 0; i < j->nmembers; i++) {
        if (i > 0)
            drv_buf_add(&b, ",", 1);
        drv_buf_json_str(&b, st->jobs[i]->name, strlen(st->jobs[i]->name));
        drv_buf_add(&b, ":", 1);
        drv_buf_json_str(&b, j->mtext[i] ? j->mtext[i] : "",
                         j->mtext[i] ? j->mtext_len[i] : 0);
    }
    drv_buf_add(&b, "}", 1);
    free(j->op_text);
    j->op_text = drv_buf_take(&b, &j->op_text_len);
}

/* A parallel step's failure: every member's outcome, like an
 * ExceptionGroup: "parallel step 1 failed: a: failed: boom; b: cancelled
 * (sibling_failed)". */
static void
parallel_errors(struct wjob *j, const struct drv_tg_outcome *o)
{
    const struct drv_config_step *st = &j->pipe->steps[j->step];
    struct drv_buf b;
    int i;

    drv_buf_init(&b);
    drv_buf_addf(&b, "parallel step %lld failed: ", (long long)j->step);
    for (i = 0; i < j->nmembers; i++) {
        const struct drv_tg_outcome *m =
            o->child ? drv_tg_report_at(o->child, (size_t)i) : NULL;
        if (i > 0)
            drv_buf_adds(&b, "; ");
        drv_buf_addf(&b, "%s: ", st->jobs[i]->name);
        if (m == NULL) {
            drv_buf_adds(&b, "no outcome");
            continue;
        }
        drv_buf_adds(&b, drv_tg_state_name(m->state));
        if (m->state == DRV_TG_CANCELLED)
            drv_buf_addf(&b, " (%s)", drv_tg_cause_name(m->cause));
        if (m->state == DRV_TG_FAILED || m->state == DRV_TG_TIMED_OUT) {
            drv_buf_adds(&b, ": ");
            if (j->mtext[i] != NULL && j->mtext_len[i] > 0)
                drv_buf_add(&b, j->mtext[i], j->mtext_len[i]);
            else
                drv_buf_adds(&b, m->msg);
        }
    }
    drv__worker_job_set_text(j, b.data, b.len);
    drv_buf_fini(&b);
}

static void
on_outcome(struct drv_tg_task *t, const struct drv_tg_outcome *o, void *ctx)
{
    struct wjob *j;
    struct drv_worker *w;
    char buf[160], qid[256], qerr[1024];
    const char *jobname;

    (void)t;
    DRV_CAST(j, ctx, WJOB_MAGIC);
    w = j->w;
    if (j->running) {
        j->running = 0;
        w->stats.running--;
    }
    memset(&j->op, 0, sizeof j->op);
    j->op.entry_id = j->job->entry_id;
    j->op.job_id = j->job->id;
    j->op.attempts = j->job->attempt + 1;
    j->op.result_ttl_ms = j->pipe ? j->pipe->result_ttl_ms
                        : j->type ? j->type->cfg->result_ttl_ms : 0;
    j->op.pipeline = j->pipe != NULL;
    j->op.step = j->step;
    j->op.started_at_ms = j->started_ms;
    jobname = j->pipe ? j->pipe->name : j->type ? j->type->cfg->name : "-";
    if (j->nmembers > 0 && o->state == DRV_TG_OK)
        parallel_result(j);
    else if (j->nmembers > 0 && o->state == DRV_TG_FAILED)
        parallel_errors(j, o);
    switch (o->state) {
    case DRV_TG_OK:
        j->op.kind = DRV_SETTLE_ACK;
        if (j->pipe != NULL && (size_t)j->step + 1 < j->pipe->nsteps)
            j->op.kind = DRV_SETTLE_NEXT;
        /* no result text: op.text stays NULL, written as "" (no
         * allocation per job) */
        w->stats.ok++;
        break;
    case DRV_TG_FAILED:
        if (j->bad.code != 0 || o->code == DRV_EPERM ||
            o->code == DRV_EBADJOB) {
            j->op.kind = DRV_SETTLE_DEAD;
            j->op.count_failed = 1;
            w->stats.dead++;
            if (j->op_text == NULL || o->code == DRV_EBADJOB)
                drv__worker_job_set_text(j, o->msg, strlen(o->msg));
        } else {
            retry_or_dead(j, j->op_text ? NULL : o->msg, strlen(o->msg));
        }
        break;
    case DRV_TG_TIMED_OUT: {
        int retries;
        int64_t backoff, backoff_max, timeout;

        policy(j, &retries, &backoff, &backoff_max, &timeout);
        snprintf(buf, sizeof buf, "timed out after %lld ms",
                 (long long)timeout);
        retry_or_dead(j, buf, strlen(buf));
        break;
    }
    case DRV_TG_CANCELLED:
    default:
        if (j->lost) {
            /* another worker owns the entry now: write nothing */
            j->op.kind = DRV_SETTLE_REQUEUE;
            goto drop;
        }
        /* shutdown (or any other cancel): back on the queue, no attempt
         * counted */
        j->op.kind = DRV_SETTLE_REQUEUE;
        w->stats.requeued++;
        break;
    }
    drv__worker_metrics_outcome(j, o);
    if (j->op.kind == DRV_SETTLE_RETRY || j->op.kind == DRV_SETTLE_DEAD) {
        drv_log_quote(qid, sizeof qid, j->job->id, strlen(j->job->id));
        drv_log_quote(qerr, sizeof qerr, j->op_text, j->op_text_len);
        DRV_LOG_WARN(j->op.kind == DRV_SETTLE_RETRY ? "job failed: retrying"
                                                    : "job failed: dead",
                     "queue=%s %s=%s id=%s attempt=%llu error=%s",
                     w->queues[j->qi].keys.name,
                     j->pipe ? "pipeline" : "job", jobname, qid,
                     (unsigned long long)j->op.attempts, qerr);
    }
    if (j->op_text != NULL) {
        j->op.text = j->op_text;
        j->op.text_len = j->op_text_len;
    }
    drv__worker_settle_queue(j);
    return;
drop:
    drv__worker_metrics_outcome(j, o);
    drv__worker_job_settled(j);
    drv__worker_kick(w);
}

static void
on_release(struct drv_tg_task *t, void *ctx)
{
    struct wjob *j;
    struct drv_worker *w;

    (void)t;
    DRV_CAST(j, ctx, WJOB_MAGIC);
    w = j->w;
    j->task = NULL;
    if (w != NULL) {
        w->inflight--;
        drv__worker_kick(w); /* a permit is free: fetch more */
    }
    drv__worker_job_unref(j);
}

/* ------------------------------------------------------------ batches */

static void
on_batch_done(struct drv_tg *tg, const struct drv_tg_report *r, void *ctx)
{
    struct wbatch *b;

    (void)tg;
    DRV_CAST(b, ctx, WBATCH_MAGIC);
    DRV_LOG_INFO("batch done", "worker=%s jobs=%zu ok=%zu failed=%zu "
                 "timed_out=%zu cancelled=%zu", b->w->id, r->n_tasks,
                 r->n_ok, r->n_failed, r->n_timed_out, r->n_cancelled);
}

static void
on_batch_quiesced(struct drv_tg *tg, void *ctx)
{
    struct wbatch *b;
    struct drv_worker *w;

    DRV_CAST(b, ctx, WBATCH_MAGIC);
    w = b->w;
    if (b->prev != NULL)
        b->prev->next = b->next;
    else
        w->batches = b->next;
    if (b->next != NULL)
        b->next->prev = b->prev;
    drv_tg_free(tg);
    b->magic = 0;
    free(b);
    drv__worker_kick(w);
}

void
drv__worker_job_started(struct drv_tg_task *t, struct wjob *j)
{
    j->task = t;
    j->running = 1;
    j->started = 1;
    j->start_ns = drv_clock_mono_ns();
    j->started_ms = drv_clock_unix_ms();
    j->w->stats.running++;
    j->w->stats.started++;
    drv__worker_metrics_started(j);
    if (j->w->trace != NULL)
        drv__worker_trace_start(j->w, j);
}

/* Each start wrapper counts the job as running, then runs the handler. */
#define START_WRAPPER(name, inner)                                         \
    static void name(struct drv_tg_task *t, void *ctx)                     \
    {                                                                      \
        struct wjob *j;                                                    \
        DRV_CAST(j, ctx, WJOB_MAGIC);                                      \
        drv__worker_job_started(t, j);                                     \
        inner(t, ctx);                                                     \
    }
START_WRAPPER(run_noop, start_noop)
START_WRAPPER(run_echo, start_echo)
START_WRAPPER(run_fail, start_fail)
START_WRAPPER(run_sleep, start_sleep)
START_WRAPPER(run_exec, start_exec)
START_WRAPPER(run_bad, start_bad)

static int
run_block(struct drv_tg_task *t, struct drv_err *err, void *ctx)
{
    struct wjob *j = ctx;

    /* pool thread: touch only the job's own immutable number */
    return work_block(t, err, &j->block_ms);
}

static struct wtype *
wtype_of(struct drv_worker *w, const struct drv_config_job *cfg)
{
    size_t i;

    for (i = 0; i < w->ntypes; i++)
        if (w->types[i].cfg == cfg)
            return &w->types[i];
    DRV_ASSERT(!"job type not in the worker's table");
    return NULL;
}

/* Task options for j's handler: kind, start/cancel or work, timeout and
 * permits (job type, then pool threads for pool jobs, then process). */
static void
handler_opts(struct drv_worker *w, struct wjob *j, struct drv_tg_task_opts *to)
{
    const struct drv_config_job *type = j->type->cfg;

    to->kind = DRV_TG_LOOP;
    to->cancel = cancel_nothing;
    to->name = type->name;
    to->timeout_ms = type->timeout_ms;
    if (j->type->sem != NULL)
        to->sems[to->nsems++] = j->type->sem;
    switch (type->handler) {
    case DRV_HANDLER_NOOP:
        to->start = run_noop;
        break;
    case DRV_HANDLER_ECHO:
        to->start = run_echo;
        break;
    case DRV_HANDLER_FAIL:
        to->start = run_fail;
        break;
    case DRV_HANDLER_SLEEP:
        to->start = run_sleep;
        to->cancel = cancel_sleep;
        break;
    case DRV_HANDLER_EXEC:
        to->start = run_exec;
        to->cancel = cancel_exec;
        break;
    case DRV_HANDLER_HTTP:
        drv__worker_http_task(w, j, to);
        break;
    case DRV_HANDLER_PLUGIN:
        drv__worker_plugin_task(w, j, to);
        break;
    case DRV_HANDLER_BLOCK:
    default:
        to->kind = DRV_TG_THREAD;
        to->work = run_block;
        to->start = NULL;
        to->cancel = NULL;
        j->block_ms = drv__worker_job_ms(j->job);
        to->sems[to->nsems++] = w->thread_sem;
        break;
    }
    to->sems[to->nsems++] = w->sem;
}

/* A member of a parallel step finished: keep its result or error text in
 * the step's job (the member may be released before the step's own
 * outcome runs). */
static void
on_member_outcome(struct drv_tg_task *t, const struct drv_tg_outcome *o,
                  void *ctx)
{
    struct wjob *m, *p;
    int i;

    (void)t;
    DRV_CAST(m, ctx, WJOB_MAGIC);
    p = m->parent;
    i = m->member_index;
    if (m->running) {
        m->running = 0;
        m->w->stats.running--;
    }
    drv__worker_metrics_member_done(m, o);
    if (m->op_text != NULL) {
        p->mtext[i] = m->op_text;
        p->mtext_len[i] = m->op_text_len;
        m->op_text = NULL;
    } else if (o->state != DRV_TG_OK) {
        p->mtext[i] = drv_xstrdup(o->msg);
        p->mtext_len[i] = strlen(o->msg);
    }
}

static void
on_member_release(struct drv_tg_task *t, void *ctx)
{
    struct wjob *m;

    (void)t;
    DRV_CAST(m, ctx, WJOB_MAGIC);
    m->task = NULL;
    drv__worker_job_unref(m->parent);
    drv__worker_job_unref(m);
}

/* A parallel step: one FAIL_FAST child group in the batch, a member task
 * per job type; the group's deadline is the pipeline's timeout. */
static void
spawn_parallel(struct drv_worker *w, struct wbatch *b, struct wjob *j)
{
    const struct drv_config_step *st = &j->pipe->steps[j->step];
    struct drv_tg_opts go;
    struct drv_tg_task_opts to;
    struct drv_tg *child = NULL;
    size_t i;
    int rc;

    memset(&go, 0, sizeof go);
    go.policy = DRV_TG_FAIL_FAST;
    go.limit = -1;
    go.deadline_ns = drv_clock_mono_ns() +
                     j->pipe->timeout_ms * DRV_NS_PER_MS;
    go.name = "parallel";
    memset(&to, 0, sizeof to);
    to.name = j->pipe->name;
    to.on_outcome = on_outcome;
    to.release = on_release;
    to.ctx = j;
    rc = drv_tg_create_child(b->tg, &go, &to, &child, &j->task);
    DRV_AZ(rc);
    j->started = 1;
    j->started_ms = drv_clock_unix_ms();
    j->nmembers = (int)st->njobs;
    j->mtext = drv_xcalloc(st->njobs, sizeof *j->mtext);
    j->mtext_len = drv_xcalloc(st->njobs, sizeof *j->mtext_len);
    for (i = 0; i < st->njobs; i++) {
        struct wjob *m;

        DRV_ALLOC_OBJ(m, WJOB_MAGIC);
        m->w = w;
        m->job = j->job;
        m->job_borrowed = 1;
        m->qi = j->qi;
        m->type = wtype_of(w, st->jobs[i]);
        m->parent = j;
        m->member_index = (int)i;
        m->refs = 1;
        j->refs++; /* each member keeps the step's job alive */
        memset(&to, 0, sizeof to);
        handler_opts(w, m, &to);
        to.on_outcome = on_member_outcome;
        to.release = on_member_release;
        to.ctx = m;
        rc = drv_tg_spawn(child, &to, &m->task);
        DRV_AZ(rc);
        if (to.kind == DRV_TG_THREAD)
            drv__worker_job_started(m->task, m);
    }
    drv_tg_close(child);
}

int
drv__worker_spawn_batch(struct drv_worker *w, struct wjob **jobs, int n)
{
    struct drv_tg_opts go;
    struct wbatch *b;
    int i, rc;

    DRV_ALLOC_OBJ(b, WBATCH_MAGIC);
    b->w = w;
    memset(&go, 0, sizeof go);
    go.policy = DRV_TG_COLLECT;
    go.limit = -1; /* the shared semaphores limit it */
    go.on_done = on_batch_done;
    go.on_quiesced = on_batch_quiesced;
    go.ctx = b;
    go.name = "batch";
    rc = drv_tg_create(w->loop, w->pool, &go, &b->tg);
    DRV_AZ(rc);
    b->next = w->batches;
    if (w->batches != NULL)
        w->batches->prev = b;
    w->batches = b;
    for (i = 0; i < n; i++) {
        struct wjob *j = jobs[i];
        struct drv_tg_task_opts to;
        const struct drv_config_job *type = NULL;

        memset(&to, 0, sizeof to);
        to.on_outcome = on_outcome;
        to.release = on_release;
        to.ctx = j;
        j->batch = b;
        drv_err_clear(&j->bad);
        w->inflight++;
        if (drv__worker_job_validate(w->cfg, j->job, &type, &j->pipe,
                                     &j->step, &j->bad) < 0) {
            to.kind = DRV_TG_LOOP;
            to.name = "bad";
            to.start = run_bad;
            to.cancel = cancel_nothing;
        } else if (j->pipe != NULL && j->pipe->steps[j->step].parallel) {
            spawn_parallel(w, b, j);
            continue;
        } else {
            if (j->pipe != NULL)
                type = j->pipe->steps[j->step].jobs[0];
            j->type = wtype_of(w, type);
            handler_opts(w, j, &to);
        }
        rc = drv_tg_spawn(b->tg, &to, &j->task);
        DRV_AZ(rc);
        if (to.kind == DRV_TG_THREAD)
            drv__worker_job_started(j->task, j); /* RUNNING once submitted */
    }
    b->njobs = n;
    drv_tg_close(b->tg);
    return 0;
}

void
drv__worker_cancel_job(struct wjob *j)
{
    if (j->task != NULL)
        drv_tg_task_cancel(j->task, DRV_TG_CAUSE_EXPLICIT);
}

void
drv__worker_cancel_all(struct drv_worker *w, int pending_only)
{
    struct wjob *j, *next;
    struct wbatch *b, *bn;

    if (!pending_only) {
        for (b = w->batches; b != NULL; b = bn) {
            bn = b->next;
            drv_tg_cancel(b->tg, DRV_TG_CAUSE_SHUTDOWN);
        }
        return;
    }
    for (j = w->live; j != NULL; j = next) {
        next = j->next;
        if (j->task != NULL && !j->started &&
            drv_tg_task_outcome(j->task)->state <= DRV_TG_WAITING)
            drv_tg_task_cancel(j->task, DRV_TG_CAUSE_SHUTDOWN);
    }
}
