/*
 * example.c -- the reference plugin: how to write a drover handler in C.
 *
 * Built by `make` as build/<variant>/plugins/libexample.so. It shows both
 * modes of include/drover/handler.h with two entry points:
 *
 *   example_async     (blocking: false) waits field `ms` milliseconds on
 *                     the event loop with a host timer, then succeeds with
 *                     the value of field `echo` (or "waited N ms"). Its
 *                     cancel() stops the wait at once.
 *   example_blocking  (blocking: true) runs on a pool thread: the 64-bit
 *                     FNV-1a checksum of field `data` ("fnv1a64=<hex>"),
 *                     after "working" for `ms` milliseconds in 10 ms steps,
 *                     polling host->cancelled between steps. Field
 *                     `ignore_cancel: 1` makes it ignore cancellation (it
 *                     stands for code that cannot be interrupted).
 *
 * Progress (a host of ABI minor 1 or later, checked with DRV_HOST_HAS):
 * example_async reports field `progress` (a percent) with the message
 * "waiting" when it starts; example_blocking reports how far its steps
 * are after each one ("working"), 100 times a second: the host writes
 * the last report at most every 250 ms.
 *
 * Both: field `fail` makes the job fail with that text as its error
 * (retried), and `permanent: 1` with it makes the failure permanent (dead
 * at once). A bad `ms` is a permanent failure naming the field.
 *
 * The plugin includes nothing of drover but handler.h and links against
 * nothing of drover: everything it uses comes through the host table that
 * init() receives. Build your own the same way:
 *
 *     cc -std=c11 -O2 -fPIC -shared -I<drover>/include -o libx.so x.c
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drover/handler.h"

/* ------------------------------------------------- per job type state */

/*
 * init() runs once per job type that uses a table; what it stores in
 * *state comes back in every call for that type. Blocking jobs of one
 * type may run on several pool threads at once, so the state is either
 * read-only after init or atomic, as here.
 */
struct example_state {
    const struct drv_host *host;   /* borrowed: valid until shutdown */
    char job_type[128];            /* copy, for the shutdown log line */
    atomic_ulong jobs;             /* jobs finished, any outcome */
};

static int
example_init(const struct drv_host *host, const char *job_type, void **state,
             char *err, size_t err_size)
{
    struct example_state *st;
    char line[256];

    /* a host older than this plugin would lack members we call */
    if (!DRV_HOST_HAS(host, log)) {
        snprintf(err, err_size, "host too old (host table %zu bytes)",
                 host->size);
        return -ENOTSUP;
    }
    st = calloc(1, sizeof *st);
    if (st == NULL) {
        snprintf(err, err_size, "out of memory");
        return -ENOMEM;
    }
    st->host = host;
    snprintf(st->job_type, sizeof st->job_type, "%s", job_type);
    atomic_init(&st->jobs, 0);
    snprintf(line, sizeof line, "example: ready for job type %s", job_type);
    host->log(host, NULL, DRV_HANDLER_LOG_INFO, line);
    *state = st;
    return 0;
}

static void
example_shutdown(void *state)
{
    struct example_state *st = state;
    char line[256];

    snprintf(line, sizeof line, "example: job type %s done, %lu jobs",
             st->job_type, (unsigned long)atomic_load(&st->jobs));
    st->host->log(st->host, NULL, DRV_HANDLER_LOG_INFO, line);
    free(st);
}

/* ------------------------------------------------------------ helpers */

/*
 * Field ms as milliseconds: absent = 0; digits only, at most one day.
 * On a bad value, set the job's error (naming the field) and return -1.
 */
static int
field_ms(const struct drv_host *host, struct drv_job_view *job,
         uint64_t *out)
{
    const char *v;
    size_t len = 0, i;
    uint64_t ms = 0;
    char msg[200];

    *out = 0;
    v = host->field(job, "ms", &len);
    if (v == NULL)
        return 0;
    for (i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9' || ms > 86400000u) {
            snprintf(msg, sizeof msg, "field ms: \"%.40s\" is not a number "
                     "of milliseconds up to 86400000", v);
            host->set_error(job, msg);
            return -1;
        }
        ms = ms * 10 + (uint64_t)(v[i] - '0');
    }
    if (len == 0 || ms > 86400000u) {
        snprintf(msg, sizeof msg, "field ms: \"%.40s\" is not a number of "
                 "milliseconds up to 86400000", v);
        host->set_error(job, msg);
        return -1;
    }
    *out = ms;
    return 0;
}

/* 1 if field name is exactly "1". */
static int
field_is_1(const struct drv_host *host, struct drv_job_view *job,
           const char *name)
{
    size_t len = 0;
    const char *v = host->field(job, name, &len);

    return v != NULL && len == 1 && v[0] == '1';
}

/*
 * The requested failure, if the job has field `fail`: sets the error text
 * and returns the outcome (PERMANENT with `permanent: 1`, else RETRY);
 * returns DRV_HANDLER_OK when the job should succeed.
 */
static int
requested_failure(const struct drv_host *host, struct drv_job_view *job)
{
    const char *fail = host->field(job, "fail", NULL);

    if (fail == NULL)
        return DRV_HANDLER_OK;
    host->set_error(job, fail[0] != '\0' ? fail : "failed on request");
    return field_is_1(host, job, "permanent") ? DRV_HANDLER_PERMANENT
                                              : DRV_HANDLER_RETRY;
}

/* ------------------------------------------------- async: example_async */

/*
 * Per-job data of an async job: how long it waits. It reaches the timer
 * callback and cancel() through host->set_data / host->data; the host
 * frees it with the job (free_fn), so no path can leak it.
 */
struct wait {
    uint64_t ms;                   /* the wait, from field ms */
};

/* Loop thread, ms after start: the job is still unfinished (the host
 * deletes timers of finished or cancelled jobs). */
static void
on_wait_over(struct drv_job_view *job, void *arg)
{
    struct example_state *st = arg;
    const struct drv_host *host = st->host;
    const struct wait *wt = host->data(job);
    const char *echo;
    size_t len = 0;
    char text[64];
    int status;

    status = requested_failure(host, job);
    if (status == DRV_HANDLER_OK) {
        echo = host->field(job, "echo", &len);
        if (echo != NULL) {
            host->set_result(job, echo, len);   /* binary-safe copy */
        } else {
            snprintf(text, sizeof text, "waited %" PRIu64 " ms", wt->ms);
            host->set_result(job, text, strlen(text));
        }
    }
    atomic_fetch_add(&st->jobs, 1);
    host->done(job, status);       /* the view is invalid from here on */
}

/* Loop thread: must not block. Arm a timer and return; done() comes from
 * the timer, or from cancel(). */
static int
async_start(void *state, struct drv_job_view *job)
{
    struct example_state *st = state;
    const struct drv_host *host = st->host;
    struct wait *wt;
    uint64_t ms;
    int rc;

    if (field_ms(host, job, &ms) < 0)
        return DRV_HANDLER_PERMANENT;  /* not started: done is not called */
    wt = calloc(1, sizeof *wt);
    if (wt == NULL) {
        host->set_error(job, "out of memory");
        return DRV_HANDLER_RETRY;
    }
    wt->ms = ms;
    host->set_data(job, wt, free);
    if (DRV_HOST_HAS(host, progress) && host->field(job, "progress", NULL))
        host->progress(job, atoi(host->field(job, "progress", NULL)),
                       "waiting");
    rc = host->timer(job, ms, on_wait_over, st);
    if (rc != 0) {
        host->set_error(job, "cannot arm a timer");
        return DRV_HANDLER_RETRY;
    }
    return DRV_HANDLER_OK;         /* started: done() follows */
}

/* Loop thread: the job timed out or droverd is stopping. The host has
 * deleted our timer already; there is nothing else to stop, so report at
 * once (the host turns it into "timed out" or a requeue). */
static void
async_cancel(void *state, struct drv_job_view *job)
{
    struct example_state *st = state;
    const struct drv_host *host = st->host;
    const struct wait *wt = host->data(job);
    char line[128];

    snprintf(line, sizeof line, "example: cancelled while waiting %" PRIu64
             " ms", wt != NULL ? wt->ms : 0);
    host->log(host, job, DRV_HANDLER_LOG_INFO, line);
    host->set_error(job, "cancelled");
    atomic_fetch_add(&st->jobs, 1);
    host->done(job, DRV_HANDLER_RETRY);
}

/* The entry point `symbol: example_async` names. The table is filled once
 * (init macro first: it zeroes the table and sets size and ABI version);
 * droverd calls this on its main thread and copies the table. */
const struct drv_handler *example_async(void);

const struct drv_handler *
example_async(void)
{
    static struct drv_handler h;

    if (h.size == 0) {
        DRV_HANDLER_INIT(&h);
        h.name = "example_async";
        h.init = example_init;
        h.shutdown = example_shutdown;
        h.start = async_start;
        h.cancel = async_cancel;
    }
    return &h;
}

/* ------------------------------------------- blocking: example_blocking */

/* 64-bit FNV-1a over len bytes: stands for CPU-bound work. */
static uint64_t
fnv1a64(const unsigned char *p, size_t len)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    size_t i;

    for (i = 0; i < len; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static void
sleep_ms(uint64_t ms)
{
    struct timespec ts, rem;

    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&ts, &rem) != 0 && errno == EINTR)
        ts = rem;
}

/* A pool thread: may block. Several run() calls may be in flight at once,
 * so touch only the job, locals and the atomic counter. */
static int
blocking_run(void *state, struct drv_job_view *job)
{
    struct example_state *st = state;
    const struct drv_host *host = st->host;
    const char *data;
    size_t len = 0;
    uint64_t ms, waited = 0, sum;
    int status, poll = !field_is_1(host, job, "ignore_cancel");
    char text[64];

    if (field_ms(host, job, &ms) < 0)
        return DRV_HANDLER_PERMANENT;
    data = host->field(job, "data", &len);
    sum = fnv1a64((const unsigned char *)(data != NULL ? data : ""), len);
    /* long work: in steps, checking between them whether to stop */
    while (waited < ms) {
        uint64_t step = ms - waited < 10 ? ms - waited : 10;

        if (poll && host->cancelled(job)) {
            host->log(host, job, DRV_HANDLER_LOG_INFO,
                      "example: stopped early: cancelled");
            host->set_error(job, "cancelled");
            atomic_fetch_add(&st->jobs, 1);
            return DRV_HANDLER_RETRY;  /* ignored: the host has decided */
        }
        sleep_ms(step);
        waited += step;
        if (DRV_HOST_HAS(host, progress))
            host->progress(job, (int)(waited * 100 / ms), "working");
    }
    atomic_fetch_add(&st->jobs, 1);
    status = requested_failure(host, job);
    if (status != DRV_HANDLER_OK)
        return status;
    snprintf(text, sizeof text, "fnv1a64=%016" PRIx64, sum);
    host->set_result(job, text, strlen(text));
    if (!poll)
        host->log(host, job, DRV_HANDLER_LOG_INFO,
                  "example: uninterruptible work returned");
    return DRV_HANDLER_OK;
}

/* The entry point `symbol: example_blocking` names (needs blocking: true:
 * the table has no start function). */
const struct drv_handler *example_blocking(void);

const struct drv_handler *
example_blocking(void)
{
    static struct drv_handler h;

    if (h.size == 0) {
        DRV_HANDLER_INIT(&h);
        h.name = "example_blocking";
        h.init = example_init;
        h.shutdown = example_shutdown;
        h.run = blocking_run;
    }
    return &h;
}
