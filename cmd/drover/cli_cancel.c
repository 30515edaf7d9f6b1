/*
 * cli_cancel.c -- drover cancel QUEUE ID [--json]: one cancel script run
 * (pkg/queue/queue_cancel.c), after the graph cancel script for a graph
 * pipeline run of that id (pkg/queue/queue_graph.c; nothing when there
 * is none). Exit 0 when an unfinished job or a running run had that id,
 * 1 when none had.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "drover/buf.h"
#include "drover/json.h"
#include "drover/queue_cancel.h"
#include "drover/queue_graph.h"

#include "cli.h"

int
drv__cli_cancel(struct drv_cli *cli, int argc, char **argv)
{
    const char *queue = NULL, *id = NULL;
    struct drv_queue_cancel cn;
    struct drv_queue_keys k;
    struct drv_queue_cmds c;
    struct drv_err err;
    redisReply **r = NULL;
    struct drv_queue_graph_cancelled gc = {0};
    int rc;

    rc = drv__cli_args_connect(cli, argc, argv, "QUEUE ID", &queue, &id,
                               NULL);
    if (rc < 0)
        return rc;
    drv_queue_keys_init(&k, cli->cfg->redis.prefix, queue);
    drv_queue_cmds_init(&c);
    /* first a graph pipeline run of that id, if there is one: its
     * waiting nodes never start, its items stop being released */
    drv__cli_graph_cancel(cli, &c, queue, id);
    drv_queue_cancel_build(&c, &k, id, strlen(id));
    rc = drv__cli_run(cli, &c, &r);
    if (rc == 0) {
        rc = drv__cli_graph_cancelled(cli, r[0], &gc, &err);
        if (rc == 0)
            rc = drv_queue_cancel_parse(r + 1, c.n - 1, &cn, &err);
        rc = drv__cli_parsed(cli, rc, &err);
    }
    if (rc == 0 && cli->json) {
        drv_queue_cancel_json(drv__cli_json_begin(cli), queue, id, &cn);
    } else if (rc == 0 && drv_queue_cancel_total(&cn) > 0) {
        printf("cancelled: %lld waiting, %lld delayed removed; %lld running "
               "(its worker stops it within a second)\n",
               (long long)cn.ready, (long long)cn.delayed,
               (long long)cn.running);
    }
    if (rc == 0 && gc.changed && !cli->json &&
        drv_queue_cancel_total(&cn) == 0)
        printf("cancelled: the pipeline run (no job entry was out)\n");
    if (rc == 0 && drv_queue_cancel_total(&cn) == 0 && !gc.changed) {
        if (!cli->json)
            fprintf(stderr, "%s: no unfinished job %s in queue %s%s\n",
                    cli->prog, id, queue, cn.scan_incomplete
                    ? " (the stream is longer than the part looked at)"
                    : "");
        rc = -ENOENT;
    }
    drv_queue_graph_cancelled_fini(&gc);
    drv__cli_free_replies(c.n, r);
    drv_queue_cmds_fini(&c);
    drv_queue_keys_fini(&k);
    return rc;
}
