/*
 * badabi.c -- broken plugins for the loader's error paths (test only).
 *
 *   bad_abi    a table of ABI version 99
 *   bad_size   a table whose size is smaller than any version's
 *   bad_null   an entry that returns no table
 *   bad_init   a valid table whose init() fails with a message
 *   bad_cancel an async plugin that never finishes its jobs: start()
 *              leaves the job pending, cancel() ignores the request (the
 *              host must force-finish it and keep its view inert)
 */
#include <errno.h>
#include <stdio.h>

#include "drover/handler.h"

static int
ok_start(void *state, struct drv_job_view *job)
{
    (void)state;
    (void)job;
    return DRV_HANDLER_PERMANENT;
}

static int
ok_run(void *state, struct drv_job_view *job)
{
    (void)state;
    (void)job;
    return DRV_HANDLER_PERMANENT;
}

const struct drv_handler *bad_abi(void);
const struct drv_handler *bad_size(void);
const struct drv_handler *bad_null(void);
const struct drv_handler *bad_init(void);

const struct drv_handler *
bad_abi(void)
{
    static struct drv_handler h;

    DRV_HANDLER_INIT(&h);
    h.abi_version = 99;
    h.start = ok_start;
    h.run = ok_run;
    return &h;
}

const struct drv_handler *
bad_size(void)
{
    static struct drv_handler h;

    DRV_HANDLER_INIT(&h);
    h.size = 8; /* as if built against a header that predates the ABI */
    h.start = ok_start;
    h.run = ok_run;
    return &h;
}

const struct drv_handler *
bad_null(void)
{
    return NULL;
}

static int
failing_init(const struct drv_host *host, const char *job_type, void **state,
             char *err, size_t err_size)
{
    (void)host;
    (void)state;
    snprintf(err, err_size, "job type %s: BADINIT_HOME is not set",
             job_type);
    return -EINVAL;
}

const struct drv_handler *
bad_init(void)
{
    static struct drv_handler h;

    DRV_HANDLER_INIT(&h);
    h.name = "bad_init";
    h.init = failing_init;
    h.start = ok_start;
    h.run = ok_run;
    return &h;
}

static int
pending_start(void *state, struct drv_job_view *job)
{
    (void)state;
    (void)job;
    return DRV_HANDLER_OK; /* "started" -- and done never comes */
}

static void
deaf_cancel(void *state, struct drv_job_view *job)
{
    (void)state;
    (void)job;
}

const struct drv_handler *bad_cancel(void);

const struct drv_handler *
bad_cancel(void)
{
    static struct drv_handler h;

    DRV_HANDLER_INIT(&h);
    h.name = "bad_cancel";
    h.start = pending_start;
    h.cancel = deaf_cancel;
    return &h;
}
