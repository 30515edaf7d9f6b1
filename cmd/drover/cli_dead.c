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
 * The shared flow of the three subcommands: dead_begin connects and
 * readies the queue's keys and an empty batch; the subcommand adds its
 * commands, sends them (dead_send) and parses d.out; dead_end frees it
 * all.
 */
struct dead_call {
    struct drv_queue_keys k;  /* the queue's keys */
    struct drv_queue_cmds c;  /* the batch */
    redisReply **out;         /* owned: its replies after dead_send */
    struct drv_err err;       /* a parser's error */
};

/* 0, or the connection's error (printed; nothing to end then) */
static int
dead_begin(struct drv_cli *cli, const char *queue, struct dead_call *d)
{
    int rc = drv__cli_connect(cli);

    if (rc < 0)
        return rc;
    drv_queue_keys_init(&d->k, cli->cfg->redis.prefix, queue);
    drv_queue_cmds_init(&d->c);
    d->out = NULL;
    return 0;
}

static int
dead_send(struct drv_cli *cli, struct dead_call *d)
{
    return drv__cli_run(cli, &d->c, &d->out);
}

static void
dead_end(struct dead_call *d)
{
    drv__cli_free_replies(d->c.n, d->out);
    drv_queue_cmds_fini(&d->c);
    drv_queue_keys_fini(&d->k);
}

/* ----------------------------------------------------------------- list */

static void
print_page(struct drv_cli *cli, const char *queue,
           const struct drv_queue_dead_page *p)
{
    struct drv_buf b;
    size_t i;

    if (cli->json) {
        drv_queue_dead_page_json(drv__cli_json_begin(cli), queue, p);
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
    const char *queue = NULL, *count = NULL, *after = NULL;
    struct drv_queue_dead_page page;
    struct dead_call d;
    int64_t n = 0;
    int rc;

    rc = drv__cli_args(cli, argc, argv, "QUEUE -n|--count= --after=",
                       &queue, &count, &after, NULL);
    if (rc < 0)
        return rc;
    /* n < 1 checked here too: drv_parse_int does not apply min to
     * numbers without a '-' */
    if (count != NULL &&
        (drv_parse_int(count, 1, INT64_MAX, &n) < 0 || n < 1))
        return drv__cli_usage_error(cli, "--count \"%s\" is not a number "
                                    "above 0", count);
    rc = dead_begin(cli, queue, &d);
    if (rc < 0)
        return rc;
    drv_queue_dead_list_build(&d.c, &d.k, after, n);
    rc = dead_send(cli, &d);
    if (rc == 0)
        rc = drv__cli_parsed(cli, drv_queue_dead_list_parse(d.out, d.c.n, n,
                                                            &page, &d.err),
                             &d.err);
    if (rc == 0) {
        print_page(cli, queue, &page);
        drv_queue_dead_page_fini(&page);
    }
    dead_end(&d);
    return rc;
}

/* ---------------------------------------------------------------- retry */

static int
dead_retry(struct drv_cli *cli, int argc, char **argv)
{
    const char *queue = NULL, *id = NULL, *all = NULL;
    struct dead_call d;
    int64_t moved = 0;
    int rc;

    rc = drv__cli_args(cli, argc, argv, "QUEUE [ID] --all", &queue, &id,
                       &all, NULL);
    if (rc < 0)
        return rc;
    if (all != NULL && id != NULL)
        return drv__cli_usage_error(cli, "give either ID or --all");
    if (all == NULL && id == NULL)
        return drv__cli_usage_error(cli, "missing ID (or --all)");
    rc = dead_begin(cli, queue, &d);
    if (rc < 0)
        return rc;
    drv_queue_dead_retry_build(&d.c, &d.k, id);
    rc = dead_send(cli, &d);
    if (rc == 0)
        rc = drv__cli_parsed(cli, drv_queue_dead_retry_parse(d.out, d.c.n,
                                                             &moved, &d.err),
                             &d.err);
    if (rc == 0 && id != NULL && moved == 0) {
        fprintf(stderr, "%s: no dead entry with id %s in %s\n", cli->prog,
                id, queue);
        rc = -ENOENT;
    } else if (rc == 0) {
        printf("moved %" PRId64 " dead %s back to %s\n", moved,
               moved == 1 ? "entry" : "entries", queue);
    }
    dead_end(&d);
    return rc;
}

/* ---------------------------------------------------------------- purge */

static int
dead_purge(struct drv_cli *cli, int argc, char **argv)
{
    const char *queue = NULL, *older = NULL;
    struct dead_call d;
    int64_t age = 0, purged = 0;
    int rc;

    rc = drv__cli_args(cli, argc, argv, "QUEUE --older-than=", &queue,
                       &older, NULL);
    if (rc < 0)
        return rc;
    if (older != NULL && drv_parse_duration_ms(older, &age) < 0)
        return drv__cli_usage_error(cli, "--older-than \"%s\" is not a "
                                    "duration (use 30s, 5m, 1h, 7d)", older);
    rc = dead_begin(cli, queue, &d);
    if (rc < 0)
        return rc;
    /* an entry id is its write time (Redis's clock, in ms) */
    drv_queue_dead_purge_build(&d.c, &d.k,
                               older != NULL ? drv_clock_unix_ms() - age
                                             : DRV_QUEUE_DEAD_ALL);
    rc = dead_send(cli, &d);
    if (rc == 0)
        rc = drv__cli_parsed(cli, drv_queue_dead_purge_parse(d.out, d.c.n,
                                                             &purged, &d.err),
                             &d.err);
    if (rc == 0 && older != NULL)
        printf("purged %" PRId64 " dead %s older than %s from %s\n", purged,
               purged == 1 ? "entry" : "entries", older, queue);
    else if (rc == 0)
        printf("purged %" PRId64 " dead %s from %s\n", purged,
               purged == 1 ? "entry" : "entries", queue);
    dead_end(&d);
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
