/*
 * outcome.c -- drv_outcome_decide: one attempt's outcome -> one settle
 * op. Pure (see outcome.h); the loop side is settle.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/buf.h"
#include "drover/common.h"
#include "drover/queue_cancel.h"
#include "outcome.h"

static void
set_text(struct drv_decision *d, const char *s, size_t n)
{
    free(d->text);
    d->text = drv_xstrndup(s != NULL ? s : "", s != NULL ? n : 0);
    d->op.text = d->text;
    d->op.text_len = n;
}

/* One member of a parallel step into b: its job type's name and its
 * outcome (m NULL: the group reported none). */
typedef void member_fn(struct drv_buf *b, const char *name,
                       const struct drv_tg_outcome *m);

/* Every member of the parallel step, in declared order, sep between. */
static void
each_member(const struct drv_outcome_in *in, struct drv_buf *b,
            const char *sep, member_fn *fn)
{
    const struct drv_config_step *st = in->parallel;
    size_t i;

    for (i = 0; i < st->njobs; i++) {
        if (i > 0)
            drv_buf_adds(b, sep);
        fn(b, st->jobs[i]->name,
           in->o->child ? drv_tg_report_at(in->o->child, i) : NULL);
    }
}

/* b becomes the decision's text; b is empty after. */
static void
take_text(struct drv_decision *d, struct drv_buf *b)
{
    set_text(d, b->data, b->len);
    drv_buf_fini(b);
}

static void
result_member(struct drv_buf *b, const char *name,
              const struct drv_tg_outcome *m)
{
    drv_buf_json_str(b, name, strlen(name));
    drv_buf_adds(b, ":");
    if (m != NULL && m->result != NULL)
        drv_buf_json_str(b, m->result, m->result_len);
    else
        drv_buf_json_str(b, "", 0);
}

/* A parallel step's result: member job type -> its result, in declared
 * order, as one JSON object. */
static void
parallel_result(const struct drv_outcome_in *in, struct drv_decision *d)
{
    struct drv_buf b;

    drv_buf_init(&b);
    drv_buf_adds(&b, "{");
    each_member(in, &b, ",", result_member);
    drv_buf_adds(&b, "}");
    take_text(d, &b);
}

static void
error_member(struct drv_buf *b, const char *name,
             const struct drv_tg_outcome *m)
{
    drv_buf_addf(b, "%s: ", name);
    if (m == NULL) {
        drv_buf_adds(b, "no outcome");
        return;
    }
    drv_buf_adds(b, drv_tg_state_name(m->state));
    if (m->state == DRV_TG_CANCELLED)
        drv_buf_addf(b, " (%s)", drv_tg_cause_name(m->cause));
    if (m->state == DRV_TG_FAILED || m->state == DRV_TG_TIMED_OUT) {
        drv_buf_adds(b, ": ");
        if (m->result != NULL && m->result_len > 0)
            drv_buf_add(b, m->result, m->result_len);
        else
            drv_buf_adds(b, m->msg);
    }
}

/* A parallel step's failure: every member's outcome, like an
 * ExceptionGroup: "parallel step 1 failed: a: failed: boom; b: cancelled
 * (sibling_failed)". */
static void
parallel_errors(const struct drv_outcome_in *in, struct drv_decision *d)
{
    struct drv_buf b;

    drv_buf_init(&b);
    drv_buf_addf(&b, "parallel step %lld failed: ", (long long)in->step);
    each_member(in, &b, "; ", error_member);
    take_text(d, &b);
}

/* Error text is kept up to DRV_OUTCOME_TEXT_MAX bytes. */
static void
cut_text(struct drv_decision *d)
{
    if (d->op.text_len > DRV_OUTCOME_TEXT_MAX) {
        d->op.text_len = DRV_OUTCOME_TEXT_MAX;
        d->text[DRV_OUTCOME_TEXT_MAX] = '\0';
    }
}

/* A failed or timed-out attempt: retried while retries are left. */
static void
retry_or_dead(const struct drv_config_policy *p,
              const struct drv_outcome_in *in, struct drv_decision *d)
{
    uint64_t attempts = in->attempt + 1;

    if (attempts <= (uint64_t)p->retries) {
        int64_t delay = drv_backoff_ms(attempts, p->backoff_ms,
                                       p->backoff_max_ms, in->random());

        if (in->retry_after_ms > delay)
            delay = in->retry_after_ms;
        d->op.kind = DRV_SETTLE_RETRY;
        d->op.due_ms = in->now_ms + delay;
    } else {
        d->op.kind = DRV_SETTLE_DEAD;
        d->op.count_failed = 1;
    }
}

void
drv_outcome_decide(const struct drv_outcome_in *in, struct drv_decision *d)
{
    static const struct drv_config_policy none = {0, 0, 0, 0, 0};
    const struct drv_config_policy *policy = in->policy ? in->policy : &none;
    const struct drv_tg_outcome *o = in->o;
    char buf[160];

    memset(d, 0, sizeof *d);
    d->op.attempts = in->attempt + 1;
    d->op.result_ttl_ms = in->result_ttl_ms;
    d->op.pipeline = in->nsteps > 0;
    d->op.step = in->step;
    if (in->cancel_requested && o->state != DRV_TG_OK) {
        /* the error (or "cancelled") is the result's error */
        d->op.kind = DRV_SETTLE_CANCEL;
        d->drop = in->lost;
        if (o->state == DRV_TG_FAILED && o->result != NULL)
            set_text(d, o->result, o->result_len);
        else
            set_text(d, "cancelled", strlen("cancelled"));
        if (d->op.result_ttl_ms < DRV_QUEUE_CANCEL_TTL_MS)
            d->op.result_ttl_ms = DRV_QUEUE_CANCEL_TTL_MS;
        cut_text(d);
        return;
    }
    switch (o->state) {
    case DRV_TG_OK:
        d->op.kind = DRV_SETTLE_ACK;
        if (in->nsteps > 0 && (size_t)in->step + 1 < in->nsteps)
            d->op.kind = DRV_SETTLE_NEXT;
        if (in->parallel != NULL)
            parallel_result(in, d);
        else if (o->result != NULL)
            set_text(d, o->result, o->result_len);
        /* no result: op.text stays NULL, written as "" */
        return;
    case DRV_TG_FAILED:
        if (in->parallel != NULL)
            parallel_errors(in, d);
        else if (o->result != NULL && o->code != DRV_EBADJOB)
            set_text(d, o->result, o->result_len);
        else
            set_text(d, o->msg, strlen(o->msg));
        if (o->code == DRV_EPERMANENT || o->code == DRV_EBADJOB) {
            d->op.kind = DRV_SETTLE_DEAD;
            d->op.count_failed = 1;
        } else {
            retry_or_dead(policy, in, d);
        }
        break;
    case DRV_TG_TIMED_OUT:
        snprintf(buf, sizeof buf, "timed out after %lld ms",
                 (long long)policy->timeout_ms);
        set_text(d, buf, strlen(buf));
        retry_or_dead(policy, in, d);
        break;
    case DRV_TG_CANCELLED:
    default:
        /* shutdown (or any other cancel): back on the queue, no attempt
         * counted; a lost lease: another worker owns it, write nothing */
        d->op.kind = DRV_SETTLE_REQUEUE;
        d->drop = in->lost;
        return;
    }
    /* a dead job always keeps a result (drover wait, drover result) */
    if (d->op.kind == DRV_SETTLE_DEAD && d->op.result_ttl_ms <= 0)
        d->op.result_ttl_ms = DRV_QUEUE_DEAD_TTL_MS;
    cut_text(d);
}

void
drv_decision_fini(struct drv_decision *d)
{
    free(d->text);
    d->text = NULL;
    d->op.text = NULL;
}
