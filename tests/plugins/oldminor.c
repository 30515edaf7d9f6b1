/*
 * oldminor.c -- a plugin built against the host table of ABI version 1,
 * minor 0 (tests/plugins/abi_1_0/handler.h: no host->progress). droverd
 * of a newer minor must load it and run its jobs: the host table only
 * grew at its end, and the plugin never looks past the members it knows.
 *
 *   oldminor_async  succeeds at once with "host size N, mine M": the size
 *                   droverd's host table says it has, and the size of the
 *                   table this plugin was compiled against.
 */
#include <stdio.h>
#include <string.h>

#include "abi_1_0/handler.h"

static const struct drv_host *the_host;

static int
old_init(const struct drv_host *host, const char *job_type, void **state,
         char *err, size_t err_size)
{
    (void)job_type;
    (void)state;
    if (host->abi_version != DRV_HANDLER_ABI_VERSION ||
        host->size < sizeof(struct drv_host)) {
        snprintf(err, err_size, "host table too old");
        return -1;
    }
    the_host = host;
    return 0;
}

static int
old_start(void *state, struct drv_job_view *job)
{
    char text[80];

    (void)state;
    snprintf(text, sizeof text, "host size %zu, mine %zu",
             the_host->size, sizeof(struct drv_host));
    the_host->set_result(job, text, strlen(text));
    the_host->done(job, DRV_HANDLER_OK);
    return DRV_HANDLER_OK;
}

const struct drv_handler *oldminor_async(void);

const struct drv_handler *
oldminor_async(void)
{
    static struct drv_handler h;

    if (h.size == 0) {
        DRV_HANDLER_INIT(&h);
        h.name = "oldminor_async";
        h.init = old_init;
        h.start = old_start;
    }
    return &h;
}
