/*
 * cli_enqueue.c -- `drover enqueue`: add a job (or a pipeline) to a queue.
 *
 * Now: XADD P:{Q}:jobs * job JOB f v ... [id ID]; the id printed is ID,
 * else the new entry's id (INTERFACE.md "A job": the id defaults to the
 * entry id of the first enqueue).
 *
 * Delayed: the job waits exactly as a retry does, in the representation
 * the worker's mover script reads (drv_queue_mover_script): member ID of
 * the zset P:{Q}:delayed scored with the due time (Unix ms), and the hash
 * P:{Q}:job:ID holding every field of the future entry, id included. So a
 * delayed job always has an id; one is generated when none is given. The
 * hash is written fresh (DEL first: a job with the same id that is still
 * waiting is replaced, never merged) in one MULTI/EXEC with the ZADD, so
 * the mover never sees one without the other.
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
    static const struct option longopts[] = {
        {"delay", required_argument, NULL, 'd'},
        {"id", required_argument, NULL, 'i'},
        {"pipeline", required_argument, NULL, 'p'},
        {"config", required_argument, NULL, 'c'},
        {"redis", required_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    const char *delay = NULL, *id_opt = NULL, *eq = NULL;
    int first = 1, c, rc, i;

    e->kind = "job";
    while ((c = drv__cli_getopt(cli, argc, argv, "", longopts,
                                &first)) != -1) {
        switch (c) {
        case 'd':
            delay = optarg;
            break;
        case 'i':
            id_opt = optarg;
            break;
        case 'p':
            e->kind = "pipeline";
            e->name = optarg;
            break;
        default:
            return c < 0 ? c : -EINVAL;
        }
    }
    i = optind;
    if (i >= argc)
        return drv__cli_usage_error(cli, "missing QUEUE");
    e->queue = argv[i++];
    rc = drv__cli_check_queue(cli, e->queue);
    if (rc < 0)
        return rc;
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

/* The entry's fields in order: kind name, the fields, id ID. */
static void
add_fields(const struct enqueue *e, const char *id, struct drv_argv *a)
{
    int i;

    drv_argv_adds(a, e->kind);
    drv_argv_adds(a, e->name);
    for (i = 0; i < e->fields.argc; i++)
        drv_argv_add(a, e->fields.argv[i], e->fields.argvlen[i]);
    if (id != NULL) {
        drv_argv_adds(a, "id");
        drv_argv_adds(a, id);
    }
}

static int
enqueue_now(struct drv_cli *cli, const struct enqueue *e,
            const struct drv_queue_keys *k)
{
    struct drv_argv a;
    redisReply *r = NULL;
    int rc;

    drv_argv_init(&a);
    drv_argv_adds(&a, "XADD");
    drv_argv_adds(&a, k->jobs);
    drv_argv_adds(&a, "*");
    add_fields(e, e->id, &a);
    r = drv__cli_command(cli, &a);
    drv_argv_fini(&a);
    if (r == NULL)
        return DRV_EDOWN;
    rc = drv__cli_reply_check(cli, r, REDIS_REPLY_STRING, "XADD");
    if (rc == 0)
        printf("%s\n", e->id != NULL ? e->id : r->str);
    freeReplyObject(r);
    return rc;
}

static int
enqueue_delayed(struct drv_cli *cli, const struct enqueue *e,
                const struct drv_queue_keys *k)
{
    struct drv_argv cmds[5];
    redisReply *out[5];
    char gen[64], due[32];
    const char *id = e->id;
    size_t i;
    int rc;

    if (id == NULL) {
        /* Unix ms, then 64 random bits: unique, and sorts by time. The
         * '.' keeps it from looking like a stream entry id (ms-seq). */
        snprintf(gen, sizeof gen, "%" PRId64 ".%016" PRIx64,
                 drv_clock_unix_ms(), drv_random64());
        id = gen;
    }
    snprintf(due, sizeof due, "%" PRId64, drv_clock_unix_ms() + e->delay_ms);
    for (i = 0; i < DRV_ARRAY_LEN(cmds); i++)
        drv_argv_init(&cmds[i]);
    drv_argv_adds(&cmds[0], "MULTI");
    drv_argv_adds(&cmds[1], "DEL");
    drv_argv_addf(&cmds[1], "%s%s", k->job_prefix, id);
    drv_argv_adds(&cmds[2], "HSET");
    drv_argv_addf(&cmds[2], "%s%s", k->job_prefix, id);
    add_fields(e, id, &cmds[2]);
    drv_argv_adds(&cmds[3], "ZADD");
    drv_argv_adds(&cmds[3], k->delayed);
    drv_argv_adds(&cmds[3], due);
    drv_argv_adds(&cmds[3], id);
    drv_argv_adds(&cmds[4], "EXEC");
    rc = drv__cli_pipeline(cli, DRV_ARRAY_LEN(cmds), cmds, out);
    for (i = 0; i < DRV_ARRAY_LEN(cmds); i++)
        drv_argv_fini(&cmds[i]);
    if (rc < 0)
        return rc;
    /* a command refused while queueing shows as its own error reply
     * (then EXEC says EXECABORT); check them in order */
    for (i = 0; i < DRV_ARRAY_LEN(cmds) && rc == 0; i++)
        rc = drv__cli_reply_check(cli, out[i], -1,
                                  i + 1 < DRV_ARRAY_LEN(cmds) ? "MULTI"
                                                              : "EXEC");
    if (rc == 0 && out[4]->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "%s: EXEC: transaction not run\n", cli->prog);
        rc = DRV_EPROTO;
    }
    for (i = 0; rc == 0 && i < out[4]->elements; i++)
        rc = drv__cli_reply_check(cli, out[4]->element[i], -1, "EXEC");
    if (rc == 0)
        printf("%s\n", id);
    drv__cli_free_replies(DRV_ARRAY_LEN(out), out);
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
    if (e.has_delay)
        rc = enqueue_delayed(cli, &e, &k);
    else
        rc = enqueue_now(cli, &e, &k);
out:
    if (have_keys)
        drv_queue_keys_fini(&k);
    drv_argv_fini(&e.fields);
    return rc;
}
