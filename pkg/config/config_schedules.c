/*
 * config_schedules.c -- `schedules:` of the config: periodic jobs.
 *
 *   schedules:
 *     nightly-report:
 *       cron: "0 3 * * *"        # or every: 10m
 *       timezone: Europe/Berlin  # default UTC
 *       queue: default           # default: the first of queues
 *       job: report              # or pipeline: NAME
 *       fields: {kind: daily}
 *
 * Everything a schedule names is checked here, at load: the cron spec is
 * parsed, the zone's file read, the queue, job type or pipeline looked
 * up, so a worker never meets a schedule it cannot run. Read after
 * queues, jobs and pipelines.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/config.h"
#include "drover/cron.h"
#include "drover/error.h"
#include "drover/parse.h"
#include "drover/tz.h"

#include "config_int.h"

/* The shortest `every:`: a tick costs a Redis call on every worker. */
#define EVERY_MIN_MS 1000

#define SCHED_OFF(m) offsetof(struct drv_config_schedule, m)

/* Fields the worker writes into the entry itself. */
static const char *const reserved_fields[] = {
    "job", "pipeline", "id", "schedule", "attempt", "step", "input",
};

/* A name under `fields:`: not one the worker writes into the entry. */
static int
check_field_name(const char *s, struct drv_err *err)
{
    size_t i;

    for (i = 0; i < DRV_ARRAY_LEN(reserved_fields); i++)
        if (strcmp(s, reserved_fields[i]) == 0)
            return drv_err_set(err, -EINVAL, "field \"%s\" is set by the "
                               "schedule itself", s);
    return 0;
}

/* A schedule name: it becomes part of a key and of each tick's id
 * (NAME@UNIX_MS), so no braces, no '@', nothing invisible. */
static int
check_name(const char *s, struct drv_err *err)
{
    const unsigned char *p;

    if (s[0] == '\0')
        return drv_err_set(err, -EINVAL, "schedule name must not be empty");
    for (p = (const unsigned char *)s; *p != '\0'; p++)
        if (*p <= ' ' || *p == 0x7f || *p == '{' || *p == '}' || *p == '@')
            return drv_err_set(err, -EINVAL, "schedule name must not "
                               "contain spaces, control characters, '{', "
                               "'}' or '@'");
    return 0;
}

static const struct drv__config_field schedule_fields[] = {
    {.name = "cron", .kind = DRV__CONFIG_SPECIAL},
    {.name = "every", .kind = DRV__CONFIG_SPECIAL},
    {.name = "timezone", .kind = DRV__CONFIG_SPECIAL},
    {.name = "queue", .kind = DRV__CONFIG_SPECIAL},
    {.name = "job", .kind = DRV__CONFIG_SPECIAL},
    {.name = "pipeline", .kind = DRV__CONFIG_SPECIAL},
    {.name = "fields", .kind = DRV__CONFIG_STRMAP,
     .off = SCHED_OFF(fields), .count_off = SCHED_OFF(nfields),
     .key_name = "field name", .key_check = check_field_name},
};

void
drv__config_schedule_free(struct drv_config_schedule *s)
{
    if (DRV_NO_OBJ(s, DRV_CONFIG_SCHEDULE_MAGIC))
        return;
    free(s->name);
    drv_cron_free(s->cron);
    drv_tz_free(s->tz);
    free(s->queue);
    drv__config_fields_free(schedule_fields, DRV_ARRAY_LEN(schedule_fields),
                            s);
    DRV_FREE_OBJ(s);
}

/* A schedule's mapping being read: which keys came, at which nodes. */
struct schedule_read {
    struct drv_config_schedule *s;
    yaml_node_t *cron, *every;      /* key nodes, NULL if absent */
    yaml_node_t *job, *pipeline;    /* key nodes, NULL if absent */
};

static void
read_cron(struct drv__config_ctx *c, yaml_node_t *v, struct schedule_read *r)
{
    const char *text = drv__config_scalar(c, v, "a cron spec");
    struct drv_err err;

    drv_err_clear(&err);
    if (text != NULL && drv_cron_parse(text, &r->s->cron, &err) < 0)
        drv__config_report(c, v, "%s", err.msg);
}

static void
read_every(struct drv__config_ctx *c, yaml_node_t *v, struct schedule_read *r)
{
    char buf[DRV__CONFIG_QUOTE_BUF];
    const char *text = drv__config_scalar(c, v, "a duration");
    int64_t ms = 0;

    if (text == NULL)
        return;
    if (drv_parse_duration_ms(text, &ms) < 0)
        drv__config_report(c, v, "%s is not a duration (use 30s, 10m, 1h, "
                           "1d)", drv__config_quote(buf, text,
                                                    strlen(text)));
    else if (ms < EVERY_MIN_MS)
        drv__config_report(c, v, "must be at least 1s");
    else
        r->s->every_ms = ms;
}

static void
read_timezone(struct drv__config_ctx *c, yaml_node_t *v,
              struct schedule_read *r)
{
    char buf[DRV__CONFIG_QUOTE_BUF];
    const char *name = drv__config_scalar(c, v, "a time zone name");
    struct drv_tz *tz = NULL;
    struct drv_err err;

    drv_err_clear(&err);
    if (name == NULL)
        return;
    if (drv_tz_load(name, &tz, &err) < 0) {
        drv__config_report(c, v, "time zone %s: %s",
                           drv__config_quote(buf, name, strlen(name)),
                           err.msg);
        return;
    }
    drv_tz_free(r->s->tz);
    r->s->tz = tz;
}

static void
read_queue(struct drv__config_ctx *c, yaml_node_t *v, struct schedule_read *r)
{
    char buf[DRV__CONFIG_QUOTE_BUF];
    const char *name = drv__config_scalar(c, v, "a queue name");
    size_t i;

    if (name == NULL)
        return;
    for (i = 0; i < c->cfg->nqueues; i++)
        if (strcmp(c->cfg->queues[i], name) == 0)
            break;
    if (i == c->cfg->nqueues) {
        drv__config_report(c, v, "queue %s is not listed under queues",
                           drv__config_quote(buf, name, strlen(name)));
        return;
    }
    r->s->queue = drv_xstrdup(name);
}

static void
read_target(struct drv__config_ctx *c, yaml_node_t *v,
            struct schedule_read *r, int pipeline)
{
    char buf[DRV__CONFIG_QUOTE_BUF];
    const char *name = drv__config_scalar(c, v, pipeline ? "a pipeline name"
                                                         : "a job type name");

    if (name == NULL) {
        return;
    } else if (pipeline) {
        r->s->pipeline = drv_config_pipeline(c->cfg, name);
        if (r->s->pipeline == NULL) {
            drv__config_report(c, v, "pipeline %s is not declared under "
                               "pipelines",
                               drv__config_quote(buf, name, strlen(name)));
        }
    } else {
        r->s->job = drv_config_job(c->cfg, name);
        if (r->s->job == NULL) {
            drv__config_report(c, v, "job type %s is not declared under "
                               "jobs", drv__config_quote(buf, name,
                                                         strlen(name)));
        }
    }
}

static void
schedule_pair(struct drv__config_ctx *c, const struct drv__config_field *f,
              yaml_node_t *k, yaml_node_t *v, void *arg)
{
    struct schedule_read *r = arg;
    const char *key = f->name;

    if (strcmp(key, "cron") == 0) {
        r->cron = k;
        read_cron(c, v, r);
    } else if (strcmp(key, "every") == 0) {
        r->every = k;
        read_every(c, v, r);
    } else if (strcmp(key, "timezone") == 0) {
        read_timezone(c, v, r);
    } else if (strcmp(key, "queue") == 0) {
        read_queue(c, v, r);
    } else if (strcmp(key, "job") == 0) {
        r->job = k;
        read_target(c, v, r, 0);
    } else if (strcmp(key, "pipeline") == 0) {
        r->pipeline = k;
        read_target(c, v, r, 1);
    } else {
        drv__config_field_set(c, f, v, r->s);   /* fields: */
    }
}

/* Report "give A or B, not both" at the later of the two keys (each key
 * under the path of its own name), or "missing A or B" at knode. */
static void
one_of(struct drv__config_ctx *c, yaml_node_t *knode, yaml_node_t *a,
       const char *an, yaml_node_t *b, const char *bn)
{
    yaml_node_t *second = NULL;
    size_t mark;

    if (a == NULL && b == NULL) {
        drv__config_report(c, knode, "missing required key \"%s\" or "
                           "\"%s\"", an, bn);
        return;
    }
    if (a == NULL || b == NULL)
        return;
    second = a->start_mark.index > b->start_mark.index ? a : b;
    mark = drv__config_path_push_key(c, second == a ? an : bn);
    drv__config_report(c, second, "give \"%s\" or \"%s\", not both", an,
                       bn);
    drv__config_path_pop(c, mark);
}

/* Read schedule `name` (key knode, value node); the path ends in name. */
static void
read_schedule(struct drv__config_ctx *c, const char *name,
              yaml_node_t *knode, yaml_node_t *node, void *arg DRV_UNUSED)
{
    struct drv_config *cfg = c->cfg;
    struct schedule_read r = {.s = NULL};
    struct drv_config_schedule *s = NULL;
    struct drv_err err;
    int64_t next = 0;

    DRV_ALLOC_OBJ(s, DRV_CONFIG_SCHEDULE_MAGIC);
    s->name = drv_xstrdup(name);
    r.s = s;
    cfg->schedules = drv_xrealloc(cfg->schedules, (cfg->nschedules + 1) *
                                  sizeof *cfg->schedules);
    cfg->schedules[cfg->nschedules++] = s;

    drv_err_clear(&err);
    if (check_name(name, &err) < 0)
        drv__config_report(c, knode, "%s", err.msg);
    if (drv__config_each_field(c, node, schedule_fields,
                               DRV_ARRAY_LEN(schedule_fields), 0,
                               schedule_pair, &r) < 0)
        return;
    one_of(c, knode, r.cron, "cron", r.every, "every");
    one_of(c, knode, r.job, "job", r.pipeline, "pipeline");
    if (s->tz == NULL)
        DRV_AZ(drv_tz_load("UTC", &s->tz, NULL));
    /* a spec can parse and still never fire in its zone: a wildcard one
     * whose every time falls in a skipped daylight-saving hour (minute
     * `*`, hour 2, days 8-14 of March and-ed with Sundays by a `*`-led
     * weekday step, in New York) */
    if (s->cron != NULL && r.cron != NULL &&
        drv_cron_next(s->cron, s->tz, drv_clock_unix_ms(), &next) < 0) {
        size_t mark = drv__config_path_push_key(c, "cron");

        drv__config_report(c, r.cron, "never fires in %s: every time it "
                           "names falls in a skipped daylight-saving hour",
                           drv_tz_name(s->tz));
        drv__config_path_pop(c, mark);
    }
    if (s->queue == NULL)
        s->queue = drv_xstrdup(cfg->queues[0]);
}

void
drv__config_schedules(struct drv__config_ctx *c, yaml_node_t *node)
{
    drv__config_each_pair(c, node, read_schedule, NULL);
}
