/*
 * cli_enqueue.c -- `drover enqueue`: add a job (or a pipeline) to a queue.
 *
 * The arguments become a struct drv_queue_enqueue; pkg/queue builds the
 * commands (a new stream entry now, or the delayed set and hash the
 * worker's mover reads). The id printed is --id, else the new entry's id
 * (a job's id defaults to the entry id of its first enqueue). A delayed
 * job always has an id: one is generated when none is given.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/buf.h"
#include "drover/clock.h"
#include "drover/common.h"
#include "drover/config.h"
#include "drover/parse.h"
#include "drover/queue.h"

#include "cli.h"

struct enqueue {
    const char *queue;     /* borrowed from argv */
    const char *kind;      /* "job" or "pipeline" (static) */
    const char *name;      /* borrowed from argv: the job type/pipeline */
    const char *id;        /* borrowed from argv: --id or the last id=
                              field; NULL = none */
    int has_delay;         /* --delay given */
    int64_t delay_ms;      /* its value */
    struct drv_argv fields; /* owned: name, value pairs (no id) */
};

/* The field name arg[0..eq) is name. */
static int
name_is(const char *arg, const char *eq, const char *name)
{
    size_t len = (size_t)(eq - arg);

    return len == strlen(name) && memcmp(arg, name, len) == 0;
}

/* Check the arguments; 0 or -EINVAL (usage printed). */
static int
parse_args(struct drv_cli *cli, struct enqueue *e, int argc, char **argv)
{
    const char *delay = NULL, *id_opt = NULL, *pipeline = NULL;
    const char *eq = NULL;
    int rc, i;

    e->kind = "job";
    rc = drv__cli_args(cli, argc, argv,
                       "QUEUE ARG... --delay= --id= --pipeline=", &e->queue,
                       &i, &delay, &id_opt, &pipeline, NULL);
    if (rc < 0)
        return rc;
    if (pipeline != NULL) {
        e->kind = "pipeline";
        e->name = pipeline;
    }
    if (e->name == NULL) {
        if (i >= argc)
            return drv__cli_usage_error(cli, "missing JOB");
        e->name = argv[i++];
        if (strchr(e->name, '=') != NULL)
            return drv__cli_usage_error(cli, "missing JOB: \"%s\" is a "
                                        "field; give the job type first",
                                        e->name);
    }
    if (e->name[0] == '\0')
        return drv__cli_usage_error(cli, "the %s name must not be empty",
                                    e->kind);
    for (; i < argc; i++) {
        eq = strchr(argv[i], '=');
        if (eq == NULL)
            return drv__cli_usage_error(cli, "\"%s\" is not field=value",
                                        argv[i]);
        if (eq == argv[i])
            return drv__cli_usage_error(cli, "\"%s\": the field name must "
                                        "not be empty", argv[i]);
        if (name_is(argv[i], eq, "job"))
            return drv__cli_usage_error(cli, "give the job type as JOB, "
                                        "not as a field");
        if (name_is(argv[i], eq, "pipeline"))
            return drv__cli_usage_error(cli, "give the pipeline with "
                                        "--pipeline, not as a field");
        if (name_is(argv[i], eq, "id")) {
            /* the same as --id (the last one counts; empty = absent) */
            e->id = eq[1] != '\0' ? eq + 1 : NULL;
            continue;
        }
        drv_argv_add(&e->fields, argv[i], (size_t)(eq - argv[i]));
        drv_argv_adds(&e->fields, eq + 1);
    }
    if (id_opt != NULL) {
        if (id_opt[0] == '\0')
            return drv__cli_usage_error(cli, "--id must not be empty");
        e->id = id_opt;
    }
    if (delay != NULL) {
        if (drv_parse_duration_ms(delay, &e->delay_ms) < 0)
            return drv__cli_usage_error(cli, "--delay \"%s\" is not a "
                                        "duration (250ms, 30s, 5m, 1h, 1d)",
                                        delay);
        e->has_delay = 1;
    }
    return 0;
}

/* With a config file: the job type or pipeline must be declared there. */
static int
check_declared(struct drv_cli *cli, const struct enqueue *e)
{
    size_t i;

    if (cli->file == NULL)
        return 0;
    if (strcmp(e->kind, "job") == 0 &&
        drv_config_job(cli->cfg, e->name) == NULL) {
        fprintf(stderr, "%s: job type \"%s\" is not declared under jobs: "
                "in %s\n", cli->prog, e->name, cli->file);
        return DRV_ECONFIG;
    }
    if (strcmp(e->kind, "pipeline") == 0 &&
        drv_config_pipeline(cli->cfg, e->name) == NULL) {
        fprintf(stderr, "%s: pipeline \"%s\" is not declared under "
                "pipelines: in %s\n", cli->prog, e->name, cli->file);
        return DRV_ECONFIG;
    }
    for (i = 0; i < cli->cfg->nqueues; i++)
        if (strcmp(cli->cfg->queues[i], e->queue) == 0)
            return 0;
    /* not an error: droverd --queues may name it */
    fprintf(stderr, "%s: warning: queue \"%s\" is not in the queues of %s\n",
            cli->prog, e->queue, cli->file);
    return 0;
}

static int
send(struct drv_cli *cli, const struct enqueue *e,
     const struct drv_queue_keys *k)
{
    struct drv_queue_enqueue q = {e->kind, e->name, &e->fields, e->id, 0};
    struct drv_queue_cmds c;
    struct drv_err err;
    redisReply **out = NULL;
    char gen[64], *id = NULL;
    int rc;

    if (e->has_delay) {
        if (q.id == NULL) {
            drv_queue_job_id_new(gen, sizeof gen, drv_clock_unix_ms());
            q.id = gen;
        }
        q.due_ms = drv_clock_unix_ms() + e->delay_ms;
    }
    drv_queue_cmds_init(&c);
    rc = drv_queue_enqueue_build(&c, k, &q);
    DRV_ASSERT(rc > 0); /* a delayed job has its id by now */
    rc = drv__cli_run(cli, &c, &out);
    if (rc == 0)
        rc = drv__cli_parsed(cli, drv_queue_enqueue_parse(out, c.n, &q, &id,
                                                          &err), &err);
    if (rc == 0)
        printf("%s\n", id);
    free(id);
    drv__cli_free_replies(c.n, out);
    drv_queue_cmds_fini(&c);
    return rc;
}

int
drv__cli_enqueue(struct drv_cli *cli, int argc, char **argv)
{
    struct drv_queue_keys k;
    struct enqueue e;
    int rc, have_keys = 0;

    memset(&e, 0, sizeof e);
    drv_argv_init(&e.fields);
    rc = parse_args(cli, &e, argc, argv);
    if (rc < 0)
        goto out;
    rc = drv__cli_config(cli);
    if (rc < 0)
        goto out;
    rc = check_declared(cli, &e);
    if (rc < 0)
        goto out;
    rc = drv__cli_connect(cli);
    if (rc < 0)
        goto out;
    drv_queue_keys_init(&k, cli->cfg->redis.prefix, e.queue);
    have_keys = 1;
    rc = send(cli, &e, &k);
out:
    if (have_keys)
        drv_queue_keys_fini(&k);
    drv_argv_fini(&e.fields);
    return rc;
}
