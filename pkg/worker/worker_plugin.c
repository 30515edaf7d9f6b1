/*
 * worker_http.c -- the plugin handler (INTERFACE.md "plugin").
 *
 * Not implemented yet: a job of a plugin type is dead-lettered at once
 * with an error that says so (nothing is retried forever or dropped).
 */
#include <stdio.h>
#include <string.h>

#include "drover/common.h"
#include "drover/tg.h"
#include "worker_int.h"

static void
start_unsupported(struct drv_tg_task *t, void *ctx)
{
    struct wjob *j;
    static const char msg[] = "handler plugin is not supported by this "
                              "worker yet";

    DRV_CAST(j, ctx, WJOB_MAGIC);
    drv__worker_job_started(t, j);
    drv__worker_job_set_text(j, msg, sizeof msg - 1);
    drv_tg_task_done(t, DRV_EPERM, msg, NULL);
}

int
drv__worker_plugins_load(struct drv_worker *w, struct drv_err *err)
{
    (void)w;
    (void)err;
    return 0;
}

void
drv__worker_plugins_unload(struct drv_worker *w)
{
    (void)w;
}

void
drv__worker_plugin_task(struct drv_worker *w, struct wjob *j,
                        struct drv_tg_task_opts *to)
{
    (void)w;
    (void)j;
    to->start = start_unsupported;
}
