/*
 * cli_admin.c -- `drover pause|resume QUEUE`, `drover result QUEUE ID`
 * and `drover check-config FILE`.
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
#include "drover/json.h"
#include "drover/parse.h"
#include "drover/queue.h"

#include "cli.h"

/* ------------------------------------------------------- pause, resume */

/*
 * pause and resume: parse "COMMAND QUEUE", send the one command, report.
 * resume != 0: resume.
 */
static int
pause_resume(struct drv_cli *cli, int argc, char **argv, int resume)
{
    struct drv_queue_keys k;
    struct drv_queue_cmds c;
    struct drv_err err;
    redisReply **r = NULL;
    const char *queue = NULL;
    int rc, was_paused = 0;

    rc = drv__cli_args_connect(cli, argc, argv, "QUEUE", &queue, NULL);
    if (rc < 0)
        return rc;
    drv_queue_keys_init(&k, cli->cfg->redis.prefix, queue);
    drv_queue_cmds_init(&c);
    if (resume)
        drv_queue_resume_build(&c, &k);
    else
        drv_queue_pause_build(&c, &k, drv_clock_unix_ms());
    rc = drv__cli_run(cli, &c, &r);
    if (rc == 0 && resume)
        rc = drv__cli_parsed(cli, drv_queue_resume_parse(r, c.n, &was_paused,
                                                         &err), &err);
    else if (rc == 0)
        rc = drv__cli_parsed(cli, drv_queue_pause_parse(r, c.n, &err), &err);
    if (rc < 0)
        ;
    else if (!resume)
        printf("paused %s\n", queue);
    else if (was_paused)
        printf("resumed %s\n", queue);
    else
        printf("%s was not paused\n", queue);
    drv__cli_free_replies(c.n, r);
    drv_queue_cmds_fini(&c);
    drv_queue_keys_fini(&k);
    return rc;
}

int
drv__cli_pause(struct drv_cli *cli, int argc, char **argv)
{
    return pause_resume(cli, argc, argv, 0);
}

int
drv__cli_resume(struct drv_cli *cli, int argc, char **argv)
{
    return pause_resume(cli, argc, argv, 1);
}

/* -------------------------------------------------------------- result */

/* Fields shown first, in this order; any others follow, sorted. */
static const char *const result_fields[] = {
    "status", "attempts", "finished_at", "cpu_ms", "max_rss_kb", "error",
    "result",
};

/*
 * v[0..len) on stdout as text a terminal shows safely: valid UTF-8 and
 * quotes as they are, a backslash as \\, every control byte (but '\n',
 * which the caller lays out) and every byte outside a valid UTF-8
 * character as an escape (\t, \r, \xNN), so a NUL or a terminal escape
 * sequence in a result is seen, not obeyed, and the bytes can be told
 * apart.
 */
static void
put_escaped(const char *v, size_t len)
{
    char esc[DRV_LOGFMT_CHAR_MAX];
    size_t i, used, w;

    for (i = 0; i < len; i += used) {
        if (v[i] == '"') {
            fputc('"', stdout);
            used = 1;
            continue;
        }
        w = drv_logfmt_char(v + i, len - i, esc, &used);
        fwrite(esc, 1, w, stdout);
    }
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
        put_escaped(v, len);
        fputc('\n', stdout);
        return;
    }
    printf("%s:\n", name);
    for (i = 0; i <= len; i++) {
        if (i < len && v[i] != '\n')
            continue;
        if (i > start || i < len) {
            fputs("  ", stdout);
            put_escaped(v + start, i - start);
            fputc('\n', stdout);
        }
        start = i + 1;
    }
}

void
drv__cli_print_field(const char *name, const char *v, size_t len)
{
    print_field(name, v, len);
}

static int
cmp_names(const void *a, const void *b)
{
    const struct drv_field *x = *(const struct drv_field *const *)a;
    const struct drv_field *y = *(const struct drv_field *const *)b;

    return strcmp(x->name, y->name);
}

void
drv__cli_print_result(const struct drv_job *res)
{
    const struct drv_field **rest = NULL, *f;
    size_t i, n = 0;

    for (i = 0; i < DRV_ARRAY_LEN(result_fields); i++) {
        f = drv_job_field(res, result_fields[i]);
        if (f != NULL)
            print_field(result_fields[i], f->value, f->value_len);
    }
    /* the rest (a pipeline's step, step.K.*) sorted by name */
    rest = drv_xcalloc(res->nfields + 1, sizeof *rest);
    for (i = 0; i < res->nfields; i++)
        if (!drv_field_name_in(&res->fields[i], result_fields,
                               DRV_ARRAY_LEN(result_fields)) &&
            drv_job_field(res, res->fields[i].name) == &res->fields[i])
            rest[n++] = &res->fields[i];
    qsort(rest, n, sizeof *rest, cmp_names);
    for (i = 0; i < n; i++)
        print_field(rest[i]->name, rest[i]->value, rest[i]->value_len);
    free(rest);
}

/* No result kept: say so, and where the job waits if it does. */
static void
print_no_result(struct drv_cli *cli, const char *id,
                const struct drv_queue_lookup *l)
{
    struct drv_buf b;
    char when[40];
    const struct drv_field *err = NULL;

    drv_buf_init(&b);
    switch (l->where) {
    case DRV_QUEUE_NOWHERE:
        drv_buf_adds(&b, "(result_ttl 0 keeps none, or it expired)");
        break;
    case DRV_QUEUE_DELAYED:
        drv_buf_addf(&b, "yet: it is delayed until %s",
                     drv__cli_time(l->due_ms, when, sizeof when));
        break;
    case DRV_QUEUE_READY:
        drv_buf_addf(&b, "yet: it is ready in the stream (entry %s)",
                     l->job->entry_id);
        break;
    case DRV_QUEUE_RUNNING:
        drv_buf_addf(&b, "yet: it is running (entry %s, delivered %lld "
                     "times, to ", l->job->entry_id,
                     (long long)l->deliveries);
        drv_buf_logfmt(&b, l->consumer, strlen(l->consumer), 0);
        drv_buf_adds(&b, ")");
        break;
    case DRV_QUEUE_DEAD:
        err = drv_job_field(l->job, "error");
        drv_buf_addf(&b, "yet: it is dead (entry %s)", l->job->entry_id);
        if (err != NULL) {
            drv_buf_adds(&b, ": error=");
            drv_buf_logfmt(&b, err->value, err->value_len, 200);
        }
        break;
    }
    fprintf(stderr, "%s: no result for %s %s\n", cli->prog, id, b.data);
    drv_buf_fini(&b);
}

/* Ask Redis for job id's result (into l->result) or, with lookup, for
 * everything drover knows of it (into l); 0 or an error (printed). */
static int
fetch(struct drv_cli *cli, const struct drv_queue_keys *k, const char *id,
      int lookup, struct drv_queue_lookup *l)
{
    struct drv_queue_cmds c;
    struct drv_err err;
    redisReply **r = NULL;
    int rc;

    memset(l, 0, sizeof *l);
    drv_queue_cmds_init(&c);
    if (lookup)
        drv_queue_lookup_build(&c, k, id);
    else
        drv_queue_result_build(&c, k, id);
    rc = drv__cli_run(cli, &c, &r);
    if (rc == 0 && lookup)
        rc = drv__cli_parsed(cli, drv_queue_lookup_parse(r, c.n, l, &err),
                             &err);
    else if (rc == 0)
        rc = drv__cli_parsed(cli, drv_queue_result_parse(r, c.n, &l->result,
                                                         &err), &err);
    drv__cli_free_replies(c.n, r);
    drv_queue_cmds_fini(&c);
    return rc;
}

int
drv__cli_result(struct drv_cli *cli, int argc, char **argv)
{
    const char *queue = NULL, *id = NULL, *field = NULL;
    struct drv_queue_lookup l;
    struct drv_queue_keys k;
    const struct drv_field *v = NULL;
    int rc;

    rc = drv__cli_args(cli, argc, argv, "QUEUE ID --field=", &queue, &id,
                       &field, NULL);
    if (rc < 0)
        return rc;
    if (field != NULL && cli->json)
        return drv__cli_usage_error(cli, "give either --field or --json");
    rc = drv__cli_connect(cli);
    if (rc < 0)
        return rc;
    drv_queue_keys_init(&k, cli->cfg->redis.prefix, queue);
    /* the result alone first: where a job waits costs a scan, asked
     * only when there is no result (or for --json, which always says) */
    rc = fetch(cli, &k, id, cli->json, &l);
    if (rc == 0 && l.result == NULL && !cli->json) {
        rc = fetch(cli, &k, id, 1, &l);
        if (rc == 0)
            print_no_result(cli, id, &l);
        if (rc == 0)
            rc = -ENOENT;
    } else if (rc == 0 && cli->json) {
        drv_queue_lookup_json(drv__cli_json_begin(cli), queue, id, &l);
        if (l.result == NULL)
            rc = -ENOENT;
    } else if (rc == 0 && field != NULL) {
        /* raw bytes, nothing added: for scripts */
        v = drv_job_field(l.result, field);
        if (v == NULL) {
            fprintf(stderr, "%s: the result of %s has no field \"%s\"\n",
                    cli->prog, id, field);
            rc = -ENOENT;
        } else {
            fwrite(v->value, 1, v->value_len, stdout);
        }
    } else if (rc == 0) {
        drv__cli_print_result(l.result);
    }
    drv_queue_lookup_fini(&l);
    drv_queue_keys_fini(&k);
    return rc;
}

/* -------------------------------------------------------- check-config */

int
drv__cli_check_config(struct drv_cli *cli, int argc, char **argv)
{
    struct drv_config_errors errs;
    struct drv_config *cfg = NULL;
    const char *file = NULL;
    int rc;

    rc = drv__cli_args(cli, argc, argv, "[FILE]", &file, NULL);
    if (rc < 0)
        return rc;
    /* FILE, else the -c file: `drover -c FILE check-config` reads well */
    if (file == NULL)
        file = cli->file;
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
