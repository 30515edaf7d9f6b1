/*
 * handler_builtin.c -- the handlers that need nothing outside drover,
 * for tests, benchmarks and smoke checks:
 *
 *   noop   succeeds at once, no result
 *   echo   succeeds with the job's argument fields as a JSON object
 *   sleep  succeeds after field `ms` milliseconds (a loop timer)
 *   block  succeeds after `ms` ms on a pool thread (work that cannot be
 *          interrupted: a timeout abandons the thread)
 *   fail   fails with field `error` (default "failed"); `permanent=1`
 *          makes it dead at once
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/loop.h"
#include "handler_int.h"

/* `ms` of a checked sleep/block job. */
static int64_t
job_ms(const struct drv_job *job)
{
    uint64_t v = 0;

    if (drv_handler_uint_field(job, "ms", (uint64_t)INT32_MAX, 1, &v,
                               NULL) < 0)
        return 0;
    return (int64_t)v;
}

static int
check_ms(const struct drv_config_job *type DRV_UNUSED,
         const struct drv_job *job, struct drv_err *err)
{
    uint64_t v;
    int rc;

    rc = drv_handler_uint_field(job, "ms", (uint64_t)INT32_MAX, 1, &v, err);
    return rc < 0 ? rc : 0;
}

/* --------------------------------------------------------------- noop */

static void
start_noop(struct drv_hrun *r)
{
    drv_hrun_ok(r, NULL, 0);
}

const struct drv_handler_ops drv__handler_noop = {
    .run = {.start = start_noop},
};

/* --------------------------------------------------------------- echo */

static void
start_echo(struct drv_hrun *r)
{
    size_t n = 0;
    char *json = drv_handler_fields_json(r->job, 1, &n);

    drv_hrun_ok(r, json, n);
    free(json);
}

const struct drv_handler_ops drv__handler_echo = {
    .run = {.start = start_echo},
};

/* -------------------------------------------------------------- sleep */

static void
on_sleep_done(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv_hrun *r;

    DRV_CAST(r, arg, DRV_HRUN_MAGIC);
    drv_hrun_ok(r, NULL, 0);
}

static void
start_sleep(struct drv_hrun *r)
{
    struct timeval tv;
    struct event *ev;

    tv = drv_clock_tv_from_ns(job_ms(r->job) * DRV_NS_PER_MS);
    ev = evtimer_new(drv_loop_base(r->ht->host->loop), on_sleep_done, r);
    DRV_AN(ev);
    r->state = ev;
    DRV_AZ(event_add(ev, &tv));
}

static void
cancel_sleep(struct drv_hrun *r, enum drv_tg_cause cause DRV_UNUSED)
{
    event_del(r->state);
    drv_hrun_cancelled(r);
}

static void
fini_sleep(struct drv_hrun *r)
{
    event_free(r->state);
}

const struct drv_handler_ops drv__handler_sleep = {
    .check = check_ms,
    .run = {.start = start_sleep, .cancel = cancel_sleep, .fini = fini_sleep},
};

/* -------------------------------------------------------------- block */

/* Pool thread: blocks for the whole time, reading only the job. */
static int
work_block(struct drv_hrun *r, struct drv_err *err DRV_UNUSED)
{
    int64_t ms = job_ms(r->job);
    struct timespec ts, rem;

    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &rem) != 0 && errno == EINTR)
        ts = rem;
    return 0;
}

const struct drv_handler_ops drv__handler_block = {
    .check = check_ms,
    .run = {.work = work_block},
};

/* --------------------------------------------------------------- fail */

static int
check_fail(const struct drv_config_job *type DRV_UNUSED,
           const struct drv_job *job, struct drv_err *err)
{
    uint64_t v;
    int rc;

    rc = drv_handler_uint_field(job, "permanent", 1, 0, &v, err);
    return rc < 0 ? rc : 0;
}

static void
start_fail(struct drv_hrun *r)
{
    const struct drv_field *f = drv_job_field(r->job, "error");
    uint64_t permanent = 0;
    int code;

    if (drv_handler_uint_field(r->job, "permanent", 1, 0, &permanent,
                               NULL) != 0)
        permanent = 0;
    code = permanent == 1 ? DRV_EPERMANENT : DRV_EHANDLER;
    if (f != NULL)
        drv_hrun_fail(r, code, f->value, f->value_len);
    else
        drv_hrun_fail(r, code, "failed", 6);
}

const struct drv_handler_ops drv__handler_fail = {
    .check = check_fail,
    .run = {.start = start_fail},
};
