/*
 * fuzz_config.c -- the YAML config loader (drv_config_load_string), on
 * any bytes as the file's text.
 *
 * The loader must never crash or leak, and:
 *   - it succeeds exactly when it added no error, else returns
 *     DRV_ECONFIG;
 *   - every error has a place: its text starts "fuzz.yaml:LINE:COL: "
 *     with LINE and COL from 1, LINE within the text's lines; it carries
 *     a message; this load's errors come sorted by place, after (and
 *     without touching) the errors already in the list;
 *   - loading the same text again gives the same errors (nothing depends
 *     on uninitialised memory or earlier loads);
 *   - a loaded config keeps every documented promise: worker limits > 0,
 *     at least one queue, a NULL-terminated queue list of valid names, a
 *     valid Redis URL and prefix, each job type findable by name with
 *     valid templates, argv, env, method, URL and headers, each pipeline
 *     with steps of job types of this config.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "drover/config.h"
#include "drover/error.h"
#include "drover/template.h"
#include "fuzz.h"

#define NAME "fuzz.yaml"

/* An error list holding one error of an earlier load. */
static void
errors_with_earlier(struct drv_config_errors *errs)
{
    struct drv_config *cfg = NULL;
    static const char bad[] = "worker: {concurrency: 0}\n";

    drv_config_errors_init(errs);
    FUZZ_CHECK(drv_config_load_string("earlier.yaml", bad, sizeof bad - 1,
                                      &cfg, errs) == DRV_ECONFIG &&
               errs->n == 1, "the earlier load must fail once");
}

/* Upper bound of the lines libyaml can count in text: every byte that
 * can end a line (LF, CR, and the last byte of NEL, LS, PS) plus one. */
static int
max_line(const uint8_t *text, size_t len)
{
    size_t i;
    int n = 1;

    for (i = 0; i < len; i++)
        n += text[i] == '\n' || text[i] == '\r' || text[i] == 0x85 ||
             text[i] == 0xa8 || text[i] == 0xa9;
    return n;
}

static void
check_errors(const struct drv_config_errors *errs, int lines)
{
    char prefix[64];
    size_t i;

    FUZZ_CHECK(errs->n >= 2 && strncmp(errs->v[0].text, "earlier.yaml:",
                                       13) == 0,
               "an earlier load's error was moved or lost");
    for (i = 1; i < errs->n; i++) {
        const struct drv_config_error *e = &errs->v[i];

        FUZZ_CHECK(e->line >= 1 && e->col >= 1 && e->line <= lines,
                   "error without a place in the text (%d:%d, %d lines): "
                   "%s", e->line, e->col, lines, e->text);
        snprintf(prefix, sizeof prefix, NAME ":%d:%d: ", e->line, e->col);
        FUZZ_CHECK(strncmp(e->text, prefix, strlen(prefix)) == 0,
                   "error text does not start with %s: %s", prefix,
                   e->text);
        FUZZ_CHECK(e->msg != NULL && e->msg[0] != '\0' && e->path != NULL,
                   "error without a message");
        if (i > 1)
            FUZZ_CHECK(errs->v[i - 1].line < e->line ||
                       (errs->v[i - 1].line == e->line &&
                        errs->v[i - 1].col <= e->col),
                       "errors not sorted by place: %s before %s",
                       errs->v[i - 1].text, e->text);
    }
}

static void
check_template(const char *what, const char *t)
{
    struct drv_err err;

    FUZZ_CHECK(t != NULL && drv_template_check(t, &err) == 0,
               "%s: loaded template does not check: %s", what,
               t ? err.msg : "NULL");
}

/* The settings of each handler are checked where they are present: the
 * handler enum and the retry policy fields are left alone so this target
 * does not depend on how they are named. */
static void
check_job(const struct drv_config *cfg, const struct drv_config_job *j)
{
    size_t i;

    FUZZ_CHECK(j != NULL && j->magic == DRV_CONFIG_JOB_MAGIC &&
               j->name != NULL, "job record");
    FUZZ_CHECK(drv_config_job(cfg, j->name) == j, "job %s not found by "
               "name (given twice?)", j->name);
    FUZZ_CHECK(j->concurrency >= 0 && j->output_max >= 0,
               "job %s: a limit out of range", j->name);
    if (j->exec.command != NULL || j->exec.ncommand > 0) {
        FUZZ_CHECK(j->exec.ncommand >= 1 && j->exec.command != NULL &&
                   j->exec.command[j->exec.ncommand] == NULL &&
                   j->exec.kill_grace_ms >= 0, "job %s: command", j->name);
        for (i = 0; i < j->exec.ncommand; i++) {
            FUZZ_CHECK(j->exec.command[i][0] != '\0', "job %s: empty "
                       "argument", j->name);
            check_template(j->name, j->exec.command[i]);
        }
    }
    for (i = 0; i < j->exec.nenv; i++)
        FUZZ_CHECK(j->exec.env[i].key != NULL &&
                   j->exec.env[i].key[0] != '\0' &&
                   strchr(j->exec.env[i].key, '=') == NULL &&
                   j->exec.env[i].value != NULL,
                   "job %s: env entry %zu", j->name, i);
    if (j->http.url != NULL) {
        FUZZ_CHECK(j->http.method != NULL && j->http.method[0] != '\0' &&
                   strspn(j->http.method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") ==
                       strlen(j->http.method),
                   "job %s: method", j->name);
        FUZZ_CHECK(strncasecmp(j->http.url, "http://", 7) == 0 ||
                   strncasecmp(j->http.url, "https://", 8) == 0,
                   "job %s: url scheme", j->name);
        check_template(j->name, j->http.url);
        if (j->http.body != NULL)
            check_template(j->name, j->http.body);
    }
    for (i = 0; i < j->http.nheaders; i++) {
        FUZZ_CHECK(j->http.headers[i].key != NULL &&
                   j->http.headers[i].key[0] != '\0' &&
                   strpbrk(j->http.headers[i].key, ":\r\n ") == NULL,
                   "job %s: header name %zu", j->name, i);
        check_template(j->name, j->http.headers[i].value);
        FUZZ_CHECK(strpbrk(j->http.headers[i].value, "\r\n") == NULL,
                   "job %s: CR or LF in a header value", j->name);
    }
    if (j->plugin.library != NULL || j->plugin.symbol != NULL)
        FUZZ_CHECK(j->plugin.library != NULL && j->plugin.library[0] &&
                   j->plugin.symbol != NULL && j->plugin.symbol[0],
                   "job %s: plugin", j->name);
}

static void
check_config(const struct drv_config *cfg)
{
    struct drv_err err;
    size_t i, k, s;

    FUZZ_CHECK(cfg->magic == DRV_CONFIG_MAGIC && cfg->file != NULL &&
               strcmp(cfg->file, NAME) == 0, "config record");
    FUZZ_CHECK(cfg->redis.url != NULL &&
               drv_config_check_redis_url(cfg->redis.url, &err) == 0,
               "redis url %s", cfg->redis.url ? cfg->redis.url : "NULL");
    FUZZ_CHECK(cfg->redis.prefix != NULL && cfg->redis.prefix[0] != '\0' &&
               strpbrk(cfg->redis.prefix, "{}") == NULL, "redis prefix");
    FUZZ_CHECK(cfg->worker.concurrency > 0 && cfg->worker.batch > 0 &&
               cfg->worker.threads > 0 &&
               cfg->worker.shutdown_timeout_ms > 0 &&
               cfg->worker.visibility_timeout_ms > 0 &&
               cfg->worker.max_deliveries > 0 &&
               cfg->worker.max_job_bytes > 0, "worker limits");
    FUZZ_CHECK(cfg->nqueues >= 1 && cfg->queues[cfg->nqueues] == NULL,
               "queue list");
    for (i = 0; i < cfg->nqueues; i++)
        FUZZ_CHECK(drv_config_check_queue(cfg->queues[i], &err) == 0,
                   "queue %zu: %s", i, err.msg);
    for (i = 0; i < cfg->njobs; i++)
        check_job(cfg, cfg->jobs[i]);
    for (i = 0; i < cfg->npipelines; i++) {
        const struct drv_config_pipeline *p = cfg->pipelines[i];

        FUZZ_CHECK(p != NULL && p->magic == DRV_CONFIG_PIPELINE_MAGIC &&
                   p->name != NULL && drv_config_pipeline(cfg, p->name) == p,
                   "pipeline %zu", i);
        FUZZ_CHECK(p->nsteps >= 1, "pipeline %s: no step", p->name);
        for (s = 0; s < p->nsteps; s++) {
            FUZZ_CHECK(p->steps[s].njobs >= 1 &&
                       (p->steps[s].parallel || p->steps[s].njobs == 1),
                       "pipeline %s: step %zu", p->name, s);
            for (k = 0; k < p->steps[s].njobs; k++)
                FUZZ_CHECK(p->steps[s].jobs[k] != NULL &&
                           drv_config_job(cfg, p->steps[s].jobs[k]->name) ==
                               p->steps[s].jobs[k],
                           "pipeline %s: step %zu names no job of the "
                           "config", p->name, s);
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct drv_config_errors errs, again;
    struct drv_config *cfg = NULL, *cfg2 = NULL;
    size_t i;
    int rc, rc2;

    /* an exact-size copy: ASan sees any read past the text */
    char *text = malloc(size ? size : 1);

    FUZZ_CHECK(text != NULL, "malloc");
    if (size > 0)
        memcpy(text, data, size);
    errors_with_earlier(&errs);
    rc = drv_config_load_string(NAME, text, size, &cfg, &errs);
    if (rc == 0) {
        FUZZ_CHECK(cfg != NULL && errs.n == 1, "success with errors");
        check_config(cfg);
    } else {
        FUZZ_CHECK(rc == DRV_ECONFIG && cfg == NULL && errs.n > 1,
                   "failure %d without its errors", rc);
        check_errors(&errs, max_line(data, size));
    }

    errors_with_earlier(&again);
    rc2 = drv_config_load_string(NAME, text, size, &cfg2, &again);
    FUZZ_CHECK(rc2 == rc && again.n == errs.n, "a second load differs");
    for (i = 0; i < errs.n; i++)
        FUZZ_CHECK(strcmp(errs.v[i].text, again.v[i].text) == 0,
                   "a second load differs: %s / %s", errs.v[i].text,
                   again.v[i].text);

    drv_config_free(cfg);
    drv_config_free(cfg2);
    drv_config_errors_fini(&errs);
    drv_config_errors_fini(&again);
    free(text);
    return 0;
}
