/*
 * cli_dead.c -- `drover dead list|retry|purge QUEUE`: the dead stream
 * P:{Q}:dead, whose entries hold the job's fields plus error, attempts and
 * failed_at (INTERFACE.md "Redis keys").
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/buf.h"
#include "drover/common.h"
#include "drover/parse.h"
#include "drover/queue.h"

#include "cli.h"

/* argument values longer than this are cut in `dead list` */
#define LIST_VALUE_MAX 1024

static const char list_usage[] =
    "usage: drover dead list QUEUE [--count N]\n";
static const char retry_usage[] =
    "usage: drover dead retry QUEUE (ID|--all)\n";
static const char purge_usage[] =
    "usage: drover dead purge QUEUE\n";

/* Fields shown first, in this order, each once (its last value). */
static const char *const lead_fields[] = {
    "id", "job", "pipeline", "step", "attempts", "failed_at", "error",
};

static int
is_lead(const redisReply *name)
{
    size_t i;

    for (i = 0; i < DRV_ARRAY_LEN(lead_fields); i++)
        if (name->len == strlen(lead_fields[i]) &&
            memcmp(name->str, lead_fields[i], name->len) == 0)
            return 1;
    return 0;
}

/* The last value of field name in a flat [f, v, ...] array, or NULL. */
static const redisReply *
last_field(const redisReply *f, const char *name)
{
    const redisReply *v = NULL;
    size_t i;

    for (i = 0; i + 1 < f->elements; i += 2)
        if (f->element[i]->len == strlen(name) &&
            memcmp(f->element[i]->str, name, f->element[i]->len) == 0)
            v = f->element[i + 1];
    return v;
}

static void
print_entry(struct drv_buf *b, const redisReply *e)
{
    const redisReply *f = e->element[1], *v;
    char when[40];
    int64_t ms;
    size_t i;

    drv_buf_reset(b);
    drv_buf_add(b, e->element[0]->str, e->element[0]->len);
    if (f->type != REDIS_REPLY_ARRAY) {
        drv_buf_adds(b, " (no fields)");
        printf("%s\n", b->data);
        return;
    }
    for (i = 0; i < DRV_ARRAY_LEN(lead_fields); i++) {
        v = last_field(f, lead_fields[i]);
        if (v == NULL)
            continue;
        drv_buf_addf(b, " %s=", lead_fields[i]);
        if (strcmp(lead_fields[i], "failed_at") == 0 &&
            drv_parse_int(v->str, 0, INT64_MAX, &ms) == 0)
            drv_buf_adds(b, drv__cli_time(ms, when, sizeof when));
        else
            drv__cli_quote(b, v->str, v->len, 0);
    }
    for (i = 0; i + 1 < f->elements; i += 2) {
        if (is_lead(f->element[i]))
            continue;
        drv_buf_add(b, " ", 1);
        drv__cli_quote(b, f->element[i]->str, f->element[i]->len, 0);
        drv_buf_add(b, "=", 1);
        drv__cli_quote(b, f->element[i + 1]->str, f->element[i + 1]->len,
                       LIST_VALUE_MAX);
    }
    fwrite(b->data, 1, b->len, stdout);
    fputc('\n', stdout);
}

/* Entry replies are [id, [f, v, ...]]; check the shape before use. */
static int
entry_ok(const redisReply *e)
{
    size_t i;
    const redisReply *f;

    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
        e->element[0]->type != REDIS_REPLY_STRING)
        return 0;
    f = e->element[1];
    if (f->type == REDIS_REPLY_NIL)
        return 1;
    if (f->type != REDIS_REPLY_ARRAY)
        return 0;
    for (i = 0; i < f->elements; i++)
        if (f->element[i]->type != REDIS_REPLY_STRING)
            return 0;
    return 1;
}

static int
dead_list(struct drv_cli *cli, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"count", required_argument, NULL, 'n'},
        {"config", required_argument, NULL, 'c'},
        {"redis", required_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    struct drv_queue_keys k;
    struct drv_argv a;
    struct drv_buf b;
    redisReply *r = NULL;
    const char *queue = NULL, *count = NULL;
    int64_t n = 0;
    size_t i;
    int first = 1, c, rc;

    while ((c = drv__cli_getopt(cli, argc, argv, "n:", longopts,
                                &first)) != -1) {
        if (c != 'n')
            return c < 0 ? c : -EINVAL;
        count = optarg;
    }
    if (optind >= argc)
        return drv__cli_usage_error(cli, "missing QUEUE");
    if (optind + 1 < argc)
        return drv__cli_usage_error(cli, "unexpected argument \"%s\"",
                                    argv[optind + 1]);
    queue = argv[optind];
    rc = drv__cli_check_queue(cli, queue);
    if (rc < 0)
        return rc;
    /* n < 1 checked here too: drv_parse_int does not apply min to
     * numbers without a '-' */
    if (count != NULL &&
        (drv_parse_int(count, 1, INT64_MAX, &n) < 0 || n < 1))
        return drv__cli_usage_error(cli, "--count \"%s\" is not a number "
                                    "above 0", count);
    rc = drv__cli_connect(cli);
    if (rc < 0)
        return rc;
    drv_queue_keys_init(&k, cli->cfg->redis.prefix, queue);
    drv_argv_init(&a);
    drv_argv_adds(&a, "XRANGE");
    drv_argv_adds(&a, k.dead);
    drv_argv_adds(&a, "-");
    drv_argv_adds(&a, "+");
    if (count != NULL) {
        drv_argv_adds(&a, "COUNT");
        drv_argv_addll(&a, (long long)n);
    }
    r = drv__cli_command(cli, &a);
    drv_argv_fini(&a);
    drv_buf_init(&b);
    if (r == NULL) {
        rc = DRV_EDOWN;
        goto out;
    }
    rc = drv__cli_reply_check(cli, r, REDIS_REPLY_ARRAY, "XRANGE");
    for (i = 0; rc == 0 && i < r->elements; i++) {
        if (!entry_ok(r->element[i])) {
            fprintf(stderr, "%s: XRANGE: unexpected reply\n", cli->prog);
            rc = DRV_EPROTO;
            break;
        }
        print_entry(&b, r->element[i]);
    }
    if (rc == 0 && r->elements == 0)
        fprintf(stderr, "%s: no dead entries in %s\n", cli->prog, queue);
out:
    if (r != NULL)
        freeReplyObject(r);
    drv_buf_fini(&b);
    drv_queue_keys_fini(&k);
    return rc;
}

static int
dead_retry(struct drv_cli *cli, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"all", no_argument, NULL, 'a'},
        {"config", required_argument, NULL, 'c'},
        {"redis", required_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    struct drv_script_call call;
    struct drv_queue_keys k;
    struct drv_argv a;
    redisReply *r = NULL;
    const char *queue = NULL, *id = NULL;
    int first = 1, all = 0, c, rc;

    while ((c = drv__cli_getopt(cli, argc, argv, "", longopts,
                                &first)) != -1) {
        if (c != 'a')
            return c < 0 ? c : -EINVAL;
        all = 1;
    }
    if (optind >= argc)
        return drv__cli_usage_error(cli, "missing QUEUE");
    queue = argv[optind];
    if (optind + 1 < argc)
        id = argv[optind + 1];
    if (optind + 2 < argc)
        return drv__cli_usage_error(cli, "unexpected argument \"%s\"",
                                    argv[optind + 2]);
    rc = drv__cli_check_queue(cli, queue);
    if (rc < 0)
        return rc;
    if (all && id != NULL)
        return drv__cli_usage_error(cli, "give either ID or --all");
    if (!all && id == NULL)
        return drv__cli_usage_error(cli, "missing ID (or --all)");
    if (id != NULL && id[0] == '\0')
        return drv__cli_usage_error(cli, "ID must not be empty");
    rc = drv__cli_connect(cli);
    if (rc < 0)
        return rc;
    drv_queue_keys_init(&k, cli->cfg->redis.prefix, queue);
    drv_script_call_init(&call, &drv_queue_dead_retry_script);
    drv_queue_dead_retry(&call, &k, id);
    drv_argv_init(&a);
    drv_script_call_eval(&call, &a);
    r = drv__cli_command(cli, &a);
    drv_argv_fini(&a);
    drv_script_call_fini(&call);
    if (r == NULL) {
        rc = DRV_EDOWN;
        goto out;
    }
    rc = drv__cli_reply_check(cli, r, REDIS_REPLY_INTEGER, "dead retry");
    if (rc < 0)
        goto out;
    if (id != NULL && r->integer == 0) {
        fprintf(stderr, "%s: no dead entry with id %s in %s\n", cli->prog,
                id, queue);
        rc = -ENOENT;
        goto out;
    }
    printf("moved %lld dead %s back to %s\n", r->integer,
           r->integer == 1 ? "entry" : "entries", queue);
out:
    if (r != NULL)
        freeReplyObject(r);
    drv_queue_keys_fini(&k);
    return rc;
}

static int
dead_purge(struct drv_cli *cli, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"redis", required_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    struct drv_queue_keys k;
    struct drv_argv cmds[4];
    redisReply *out[4];
    const redisReply *res = NULL;
    const char *queue = NULL;
    size_t i;
    int first = 1, c, rc;

    c = drv__cli_getopt(cli, argc, argv, "", longopts, &first);
    if (c != -1)
        return c < 0 ? c : -EINVAL; /* no options of its own */
    if (optind >= argc)
        return drv__cli_usage_error(cli, "missing QUEUE");
    if (optind + 1 < argc)
        return drv__cli_usage_error(cli, "unexpected argument \"%s\"",
                                    argv[optind + 1]);
    queue = argv[optind];
    rc = drv__cli_check_queue(cli, queue);
    if (rc < 0)
        return rc;
    rc = drv__cli_connect(cli);
    if (rc < 0)
        return rc;
    /* count and delete in one transaction, so the count is what went */
    drv_queue_keys_init(&k, cli->cfg->redis.prefix, queue);
    for (i = 0; i < DRV_ARRAY_LEN(cmds); i++)
        drv_argv_init(&cmds[i]);
    drv_argv_adds(&cmds[0], "MULTI");
    drv_argv_adds(&cmds[1], "XLEN");
    drv_argv_adds(&cmds[1], k.dead);
    drv_argv_adds(&cmds[2], "DEL");
    drv_argv_adds(&cmds[2], k.dead);
    drv_argv_adds(&cmds[3], "EXEC");
    rc = drv__cli_pipeline(cli, DRV_ARRAY_LEN(cmds), cmds, out);
    for (i = 0; i < DRV_ARRAY_LEN(cmds); i++)
        drv_argv_fini(&cmds[i]);
    drv_queue_keys_fini(&k);
    if (rc < 0)
        return rc;
    for (i = 0; i < DRV_ARRAY_LEN(out) && rc == 0; i++)
        rc = drv__cli_reply_check(cli, out[i], -1, "purge");
    if (rc == 0) {
        res = out[3];
        if (res->type != REDIS_REPLY_ARRAY || res->elements != 2 ||
            res->element[0]->type != REDIS_REPLY_INTEGER) {
            fprintf(stderr, "%s: EXEC: unexpected reply\n", cli->prog);
            rc = DRV_EPROTO;
        }
    }
    if (rc == 0)
        printf("purged %lld dead %s from %s\n", res->element[0]->integer,
               res->element[0]->integer == 1 ? "entry" : "entries", queue);
    drv__cli_free_replies(DRV_ARRAY_LEN(out), out);
    return rc;
}

int
drv__cli_dead(struct drv_cli *cli, int argc, char **argv)
{
    static const struct {
        const char *name;        /* subcommand */
        const char *prog;        /* for messages */
        const char *usage;       /* its usage line */
        drv_cli_run_fn *run;     /* it */
    } subs[] = {
        {"list", "drover dead list", list_usage, dead_list},
        {"retry", "drover dead retry", retry_usage, dead_retry},
        {"purge", "drover dead purge", purge_usage, dead_purge},
    };
    size_t i;

    if (argc < 2)
        return drv__cli_usage_error(cli, "missing list, retry or purge");
    for (i = 0; i < DRV_ARRAY_LEN(subs); i++)
        if (strcmp(argv[1], subs[i].name) == 0) {
            cli->prog = subs[i].prog;
            cli->usage = subs[i].usage;
            return subs[i].run(cli, argc - 1, argv + 1);
        }
    return drv__cli_usage_error(cli, "unknown subcommand \"%s\" (list, "
                                "retry or purge)", argv[1]);
}
