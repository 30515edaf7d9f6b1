/*
 * cli_admin.c -- `drover pause|resume QUEUE`, `drover result QUEUE ID`
 * and `drover check-config FILE`.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/config.h"
#include "drover/parse.h"
#include "drover/queue.h"

#include "cli.h"

/* Parse "COMMAND QUEUE" with no options of its own; 0 or -EINVAL. */
static int
one_queue(struct drv_cli *cli, int argc, char **argv, const char **queue)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"redis", required_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    int first = 1, c;

    c = drv__cli_getopt(cli, argc, argv, "", longopts, &first);
    if (c != -1)
        return c < 0 ? c : -EINVAL;
    if (optind >= argc)
        return drv__cli_usage_error(cli, "missing QUEUE");
    if (optind + 1 < argc)
        return drv__cli_usage_error(cli, "unexpected argument \"%s\"",
                                    argv[optind + 1]);
    *queue = argv[optind];
    return drv__cli_check_queue(cli, *queue);
}

/* ------------------------------------------------------- pause, resume */

int
drv__cli_pause(struct drv_cli *cli, int argc, char **argv)
{
    struct drv_queue_keys k;
    redisReply *r = NULL;
    const char *queue = NULL;
    char now[32];
    int rc;

    rc = one_queue(cli, argc, argv, &queue);
    if (rc < 0)
        return rc;
    rc = drv__cli_connect(cli);
    if (rc < 0)
        return rc;
    /* the value is informative only (since when); presence is the flag */
    snprintf(now, sizeof now, "%" PRId64, drv_clock_unix_ms());
    drv_queue_keys_init(&k, cli->cfg->redis.prefix, queue);
    r = drv__cli_cmd(cli, "SET", k.paused, now, (char *)NULL);
    drv_queue_keys_fini(&k);
    if (r == NULL)
        return DRV_EDOWN;
    rc = drv__cli_reply_check(cli, r, REDIS_REPLY_STATUS, "SET");
    if (rc == 0)
        printf("paused %s\n", queue);
    freeReplyObject(r);
    return rc;
}

int
drv__cli_resume(struct drv_cli *cli, int argc, char **argv)
{
    struct drv_queue_keys k;
    redisReply *r = NULL;
    const char *queue = NULL;
    int rc;

    rc = one_queue(cli, argc, argv, &queue);
    if (rc < 0)
        return rc;
    rc = drv__cli_connect(cli);
    if (rc < 0)
        return rc;
    drv_queue_keys_init(&k, cli->cfg->redis.prefix, queue);
    r = drv__cli_cmd(cli, "DEL", k.paused, (char *)NULL);
    drv_queue_keys_fini(&k);
    if (r == NULL)
        return DRV_EDOWN;
    rc = drv__cli_reply_check(cli, r, REDIS_REPLY_INTEGER, "DEL");
    if (rc == 0 && r->integer > 0)
        printf("resumed %s\n", queue);
    else if (rc == 0)
        printf("%s was not paused\n", queue);
    freeReplyObject(r);
    return rc;
}

/* -------------------------------------------------------------- result */

/* Fields shown first, in this order; any others follow as stored. */
static const char *const result_fields[] = {
    "status", "attempts", "finished_at", "cpu_ms", "max_rss_kb", "error",
    "result",
};

static int
is_result_field(const redisReply *name)
{
    size_t i;

    for (i = 0; i < DRV_ARRAY_LEN(result_fields); i++)
        if (name->len == strlen(result_fields[i]) &&
            memcmp(name->str, result_fields[i], name->len) == 0)
            return 1;
    return 0;
}

/*
 * "name: value". A value of several lines (a program's output) goes on
 * the lines below, each indented by two spaces, so it stays readable and
 * the next field is still found at the start of a line.
 */
static void
print_field(const char *name, const char *v, size_t len)
{
    size_t i, start = 0;
    char when[40];
    int64_t ms;

    /* times (finished_at, step.K.started_at, ...) are Unix ms */
    if (strlen(name) > 3 && strcmp(name + strlen(name) - 3, "_at") == 0 &&
        drv_parse_int(v, 0, INT64_MAX, &ms) == 0) {
        printf("%s: %s\n", name, drv__cli_time(ms, when, sizeof when));
        return;
    }
    if (memchr(v, '\n', len) == NULL) {
        printf("%s: ", name);
        fwrite(v, 1, len, stdout);
        fputc('\n', stdout);
        return;
    }
    printf("%s:\n", name);
    for (i = 0; i <= len; i++) {
        if (i < len && v[i] != '\n')
            continue;
        if (i > start || i < len) {
            fputs("  ", stdout);
            fwrite(v + start, 1, i - start, stdout);
            fputc('\n', stdout);
        }
        start = i + 1;
    }
}

static int
cmp_names(const void *a, const void *b)
{
    const redisReply *x = *(const redisReply *const *)a;
    const redisReply *y = *(const redisReply *const *)b;

    return strcmp(x->str, y->str);
}

/* The value of field name in an HGETALL reply, or NULL. */
static const redisReply *
hash_get(const redisReply *h, const char *name)
{
    size_t i;

    for (i = 0; i + 1 < h->elements; i += 2)
        if (h->element[i]->len == strlen(name) &&
            memcmp(h->element[i]->str, name, h->element[i]->len) == 0)
            return h->element[i + 1];
    return NULL;
}

int
drv__cli_result(struct drv_cli *cli, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"field", required_argument, NULL, 'f'},
        {"config", required_argument, NULL, 'c'},
        {"redis", required_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    struct drv_queue_keys k;
    const redisReply *v = NULL;
    redisReply *r = NULL;
    const char *queue = NULL, *id = NULL, *field = NULL;
    char *key = NULL;
    size_t i;
    int first = 1, c, rc;

    while ((c = drv__cli_getopt(cli, argc, argv, "", longopts,
                                &first)) != -1) {
        if (c != 'f')
            return c < 0 ? c : -EINVAL;
        field = optarg;
    }
    if (optind + 2 > argc)
        return drv__cli_usage_error(cli, optind >= argc ? "missing QUEUE"
                                                        : "missing ID");
    if (optind + 2 < argc)
        return drv__cli_usage_error(cli, "unexpected argument \"%s\"",
                                    argv[optind + 2]);
    queue = argv[optind];
    id = argv[optind + 1];
    rc = drv__cli_check_queue(cli, queue);
    if (rc < 0)
        return rc;
    if (id[0] == '\0')
        return drv__cli_usage_error(cli, "ID must not be empty");
    rc = drv__cli_connect(cli);
    if (rc < 0)
        return rc;
    drv_queue_keys_init(&k, cli->cfg->redis.prefix, queue);
    key = drv_xmalloc(strlen(k.result_prefix) + strlen(id) + 1);
    strcpy(key, k.result_prefix);
    strcat(key, id);
    drv_queue_keys_fini(&k);
    r = drv__cli_cmd(cli, "HGETALL", key, (char *)NULL);
    free(key);
    if (r == NULL)
        return DRV_EDOWN;
    rc = drv__cli_reply_check(cli, r, REDIS_REPLY_ARRAY, "HGETALL");
    if (rc < 0)
        goto out;
    if (r->elements == 0) {
        fprintf(stderr, "%s: no result for %s (result_ttl 0 keeps none, or "
                "it expired)\n", cli->prog, id);
        rc = -ENOENT;
        goto out;
    }
    if (field != NULL) {
        /* raw bytes, nothing added: for scripts */
        v = hash_get(r, field);
        if (v == NULL) {
            fprintf(stderr, "%s: the result of %s has no field \"%s\"\n",
                    cli->prog, id, field);
            rc = -ENOENT;
            goto out;
        }
        fwrite(v->str, 1, v->len, stdout);
        goto out;
    }
    for (i = 0; i < DRV_ARRAY_LEN(result_fields); i++) {
        v = hash_get(r, result_fields[i]);
        if (v != NULL)
            print_field(result_fields[i], v->str, v->len);
    }
    /* the rest (a pipeline's step, step.K.*) sorted by name */
    {
        const redisReply **names = drv_xcalloc(r->elements / 2 + 1,
                                               sizeof *names);
        size_t n = 0, j;

        for (i = 0; i + 1 < r->elements; i += 2)
            if (!is_result_field(r->element[i]))
                names[n++] = r->element[i];
        qsort(names, n, sizeof *names, cmp_names);
        for (j = 0; j < n; j++) {
            v = hash_get(r, names[j]->str);
            print_field(names[j]->str, v->str, v->len);
        }
        free(names);
    }
out:
    freeReplyObject(r);
    return rc;
}

/* -------------------------------------------------------- check-config */

int
drv__cli_check_config(struct drv_cli *cli, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"redis", required_argument, NULL, 'R'},
        {NULL, 0, NULL, 0},
    };
    struct drv_config_errors errs;
    struct drv_config *cfg = NULL;
    const char *file = NULL;
    int first = 1, c, rc;

    c = drv__cli_getopt(cli, argc, argv, "", longopts, &first);
    if (c != -1)
        return c < 0 ? c : -EINVAL; /* no options of its own */
    if (optind + 1 < argc)
        return drv__cli_usage_error(cli, "unexpected argument \"%s\"",
                                    argv[optind + 1]);
    /* FILE, else the -c file: `drover -c FILE check-config` reads well */
    file = optind < argc ? argv[optind] : cli->file;
    if (file == NULL)
        return drv__cli_usage_error(cli, "missing FILE");
    drv_config_errors_init(&errs);
    rc = drv_config_load(file, &cfg, &errs);
    if (rc < 0) {
        drv_config_errors_print(&errs, stderr);
        rc = DRV_ECONFIG;
    } else {
        printf("%s: ok\n", file);
    }
    drv_config_errors_fini(&errs);
    drv_config_free(cfg);
    return rc;
}
