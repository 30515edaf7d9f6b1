/*
 * cli_dead.c -- `drover dead list|retry|purge QUEUE`: the dead stream
 * P:{Q}:dead, whose entries hold the job's fields plus error, attempts and
 * failed_at. pkg/queue builds the commands and parses the replies.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/buf.h"
#include "drover/clock.h"
#include "drover/common.h"
#include "drover/json.h"
#include "drover/parse.h"
#include "drover/queue.h"

#include "cli.h"

/* argument values longer than this are cut in `dead list` */
#define LIST_VALUE_MAX 1024

static const char list_usage[] =
    "usage: drover dead list QUEUE [--count N] [--after ENTRY_ID] "
    "[--json]\n";
static const char retry_usage[] =
    "usage: drover dead retry QUEUE (ID|--all)\n";
static const char purge_usage[] =
    "usage: drover dead purge QUEUE [--older-than DURATION]\n";

/* Fields shown first, in this order, each once (its last value). */
static const char *const lead_fields[] = {
    "id", "job", "pipeline", "step", "attempts", "failed_at", "error",
};

static void
print_entry(struct drv_buf *b, const struct drv_job *e)
{
    const struct drv_field *v;
    char when[40];
    int64_t ms;
    size_t i;

    drv_buf_reset(b);
    drv_buf_adds(b, e->entry_id);
    if (e->payload_gone) {
        drv_buf_adds(b, " (no fields)");
        printf("%s\n", b->data);
        return;
    }
    for (i = 0; i < DRV_ARRAY_LEN(lead_fields); i++) {
        v = drv_job_field(e, lead_fields[i]);
        if (v == NULL)
            continue;
        drv_buf_addf(b, " %s=", lead_fields[i]);
        if (strcmp(lead_fields[i], "failed_at") == 0 &&
            drv_parse_int(v->value, 0, INT64_MAX, &ms) == 0)
            drv_buf_adds(b, drv__cli_time(ms, when, sizeof when));
        else
            drv_buf_logfmt(b, v->value, v->value_len, 0);
    }
    for (i = 0; i < e->nfields; i++) {
        if (drv_field_name_in(&e->fields[i], lead_fields,
                              DRV_ARRAY_LEN(lead_fields)))
            continue;
        drv_buf_add(b, " ", 1);
        drv_buf_logfmt(b, e->fields[i].name, e->fields[i].name_len, 0);
        drv_buf_add(b, "=", 1);
        drv_buf_logfmt(b, e->fields[i].value, e->fields[i].value_len,
                       LIST_VALUE_MAX);
    }
    fwrite(b->data, 1, b->len, stdout);
    fputc('\n', stdout);
}

/*
 * The shared flow of the three subcommands: connect, build with the
 * queue's keys, send, and hand the replies back (*out, c) to the caller's
 * parser. 0 or an error (printed).
 */
typedef int drv_cli_dead_build_fn(struct drv_queue_cmds *c,
                                  const struct drv_queue_keys *k,
                                  const void *arg);

static int
exchange(struct drv_cli *cli, const char *queue, drv_cli_dead_build_fn *build,
         const void *arg, struct drv_queue_cmds *c, redisReply ***out)
{
    struct drv_queue_keys k;
    int rc;

    drv_queue_cmds_init(c);
    *out = NULL;
    rc = drv__cli_connect(cli);
    if (rc < 0)
        return rc;
    drv_queue_keys_init(&k, cli->cfg->redis.prefix, queue);
    build(c, &k, arg);
    drv_queue_keys_fini(&k);
    return drv__cli_run(cli, c, out);
}

/* ----------------------------------------------------------------- list */

struct list_args {
    const char *after;  /* borrowed: --after, or NULL */
    int64_t count;      /* --count, or 0 = all */
};

static int
build_list(struct drv_queue_cmds *c, const struct drv_queue_keys *k,
           const void *arg)
{
    const struct list_args *a = arg;

    return drv_queue_dead_list_build(c, k, a->after, a->count);
}

static void
print_page(struct drv_cli *cli, const char *queue,
           const struct drv_queue_dead_page *p)
{
    struct drv_cli_json o;
    struct drv_buf b;
    size_t i;

    if (cli->json) {
        drv_queue_dead_page_json(drv__cli_json_begin(&o), queue, p);
        drv__cli_json_end(&o);
        return;
    }
    drv_buf_init(&b);
    for (i = 0; i < p->n; i++)
        print_entry(&b, p->entry[i]);
    if (p->n == 0)
        fprintf(stderr, "%s: no dead entries in %s\n", cli->prog, queue);
    drv_buf_fini(&b);
}

static int
dead_list(struct drv_cli *cli, int argc, char **argv)
{
    static const char *const names[] = {"QUEUE", NULL};
    const char *count = NULL, *queue = NULL;
    struct list_args a = {NULL, 0};
    const struct drv_cli_opt opts[] = {
        {"count", 'n', 1, &count},
        {"after", 0, 1, &a.after},
        {NULL, 0, 0, NULL},
    };
    struct drv_queue_dead_page page;
    struct drv_queue_cmds c;
    struct drv_err err;
    redisReply **out = NULL;
    int rc;

    rc = drv__cli_args(cli, argc, argv, opts, names, 1, &queue, NULL);
    if (rc < 0)
        return rc;
    /* n < 1 checked here too: drv_parse_int does not apply min to
     * numbers without a '-' */
    if (count != NULL &&
        (drv_parse_int(count, 1, INT64_MAX, &a.count) < 0 || a.count < 1))
        return drv__cli_usage_error(cli, "--count \"%s\" is not a number "
                                    "above 0", count);
    rc = exchange(cli, queue, build_list, &a, &c, &out);
    if (rc == 0)
        rc = drv__cli_parsed(cli, drv_queue_dead_list_parse(out, c.n, a.count,
                                                            &page, &err),
                             &err);
    if (rc == 0) {
        print_page(cli, queue, &page);
        drv_queue_dead_page_fini(&page);
    }
    drv__cli_free_replies(c.n, out);
    drv_queue_cmds_fini(&c);
    return rc;
}

/* ---------------------------------------------------------------- retry */

static int
build_retry(struct drv_queue_cmds *c, const struct drv_queue_keys *k,
            const void *id)
{
    return drv_queue_dead_retry_build(c, k, id);
}

static int
dead_retry(struct drv_cli *cli, int argc, char **argv)
{
    static const char *const names[] = {"QUEUE", "ID", NULL};
    const char *all = NULL, *ops[2] = {NULL, NULL};
    const struct drv_cli_opt opts[] = {
        {"all", 0, 0, &all},
        {NULL, 0, 0, NULL},
    };
    struct drv_queue_cmds c;
    struct drv_err err;
    redisReply **out = NULL;
    int64_t moved = 0;
    int rc;

    rc = drv__cli_args(cli, argc, argv, opts, names, 1, ops, NULL);
    if (rc < 0)
        return rc;
    if (all != NULL && ops[1] != NULL)
        return drv__cli_usage_error(cli, "give either ID or --all");
    if (all == NULL && ops[1] == NULL)
        return drv__cli_usage_error(cli, "missing ID (or --all)");
    rc = exchange(cli, ops[0], build_retry, ops[1], &c, &out);
    if (rc == 0)
        rc = drv__cli_parsed(cli, drv_queue_dead_retry_parse(out, c.n, &moved,
                                                             &err), &err);
    if (rc == 0 && ops[1] != NULL && moved == 0) {
        fprintf(stderr, "%s: no dead entry with id %s in %s\n", cli->prog,
                ops[1], ops[0]);
        rc = -ENOENT;
    } else if (rc == 0) {
        printf("moved %" PRId64 " dead %s back to %s\n", moved,
               moved == 1 ? "entry" : "entries", ops[0]);
    }
    drv__cli_free_replies(c.n, out);
    drv_queue_cmds_fini(&c);
    return rc;
}

/* ---------------------------------------------------------------- purge */

/* before: the --older-than bound (Unix ms), or NULL = every entry */
static int
build_purge(struct drv_queue_cmds *c, const struct drv_queue_keys *k,
            const void *arg)
{
    const int64_t *before = arg;

    if (before != NULL)
        return drv_queue_dead_trim_build(c, k, *before);
    return drv_queue_dead_purge_build(c, k);
}

static int
dead_purge(struct drv_cli *cli, int argc, char **argv)
{
    static const char *const names[] = {"QUEUE", NULL};
    const char *older = NULL, *queue = NULL;
    const struct drv_cli_opt opts[] = {
        {"older-than", 0, 1, &older},
        {NULL, 0, 0, NULL},
    };
    struct drv_queue_cmds c;
    struct drv_err err;
    redisReply **out = NULL;
    int64_t age = 0, before = 0, purged = 0;
    int rc;

    rc = drv__cli_args(cli, argc, argv, opts, names, 1, &queue, NULL);
    if (rc < 0)
        return rc;
    if (older != NULL && drv_parse_duration_ms(older, &age) < 0)
        return drv__cli_usage_error(cli, "--older-than \"%s\" is not a "
                                    "duration (use 30s, 5m, 1h, 7d)", older);
    /* an entry id is its write time (Redis's clock, in ms) */
    before = drv_clock_unix_ms() - age;
    rc = exchange(cli, queue, build_purge, older != NULL ? &before : NULL,
                  &c, &out);
    if (rc == 0 && older != NULL)
        rc = drv__cli_parsed(cli, drv_queue_dead_trim_parse(out, c.n, &purged,
                                                            &err), &err);
    else if (rc == 0)
        rc = drv__cli_parsed(cli, drv_queue_dead_purge_parse(out, c.n,
                                                             &purged, &err),
                             &err);
    if (rc == 0 && older != NULL)
        printf("purged %" PRId64 " dead %s older than %s from %s\n", purged,
               purged == 1 ? "entry" : "entries", older, queue);
    else if (rc == 0)
        printf("purged %" PRId64 " dead %s from %s\n", purged,
               purged == 1 ? "entry" : "entries", queue);
    drv__cli_free_replies(c.n, out);
    drv_queue_cmds_fini(&c);
    return rc;
}

int
drv__cli_dead(struct drv_cli *cli, int argc, char **argv)
{
    static const struct {
        const char *name;        /* subcommand */
        const char *prog;        /* for messages */
        const char *usage;       /* its usage line */
        int json;                /* a read command: takes --json */
        drv_cli_run_fn *run;     /* it */
    } subs[] = {
        {"list", "drover dead list", list_usage, 1, dead_list},
        {"retry", "drover dead retry", retry_usage, 0, dead_retry},
        {"purge", "drover dead purge", purge_usage, 0, dead_purge},
    };
    size_t i;
    int k;

    /* Shared options may stand before the subcommand (`drover dead
     * --json list Q`, `drover dead -c F list Q`): move the subcommand to
     * argv[1], so its own parser reads those options (and refuses the
     * ones it does not take) */
    for (k = 1; k < argc && argv[k][0] == '-'; k++)
        if (strcmp(argv[k], "-c") == 0 || strcmp(argv[k], "--config") == 0
            || strcmp(argv[k], "--redis") == 0)
            k++; /* and its value */
    if (k > 1 && k < argc) {
        char *sub = argv[k];

        memmove(argv + 2, argv + 1, (size_t)(k - 1) * sizeof *argv);
        argv[1] = sub;
    }
    if (argc < 2)
        return drv__cli_usage_error(cli, "missing list, retry or purge");
    for (i = 0; i < DRV_ARRAY_LEN(subs); i++)
        if (strcmp(argv[1], subs[i].name) == 0) {
            cli->prog = subs[i].prog;
            cli->usage = subs[i].usage;
            cli->json_ok = subs[i].json;
            return subs[i].run(cli, argc - 1, argv + 1);
        }
    return drv__cli_usage_error(cli, "unknown subcommand \"%s\" (list, "
                                "retry or purge)", argv[1]);
}
