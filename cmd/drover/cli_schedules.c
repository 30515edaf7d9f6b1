/*
 * cli_schedules.c -- `drover schedules`: each schedule of the config, its
 * last tick (from Redis) and its next tick (computed here, as a worker
 * computes it).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/config.h"
#include "drover/cron.h"
#include "drover/json.h"
#include "drover/queue.h"
#include "drover/tz.h"

#include "cli.h"

#define COLS 7

/* An `every:` interval as the largest unit that divides it: 10m, 36h. */
static char *
interval(int64_t ms, char *buf, size_t n)
{
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"},
                 {1000, "s"}, {1, "ms"}};
    size_t i;

    for (i = 0; i < DRV_ARRAY_LEN(units) - 1 && ms % units[i].ms != 0; i++)
        ;
    snprintf(buf, n, "%" PRId64 "%s", ms / units[i].ms, units[i].unit);
    return buf;
}

/* Unix ms as local time in tz with its offset: 2026-12-03T03:00:00+01:00
 * ("-" for -1). */
static char *
local_time(int64_t ms, const struct drv_tz *tz, char *buf, size_t n)
{
    struct drv_tz_civil c;
    int64_t s;
    int32_t off;

    if (ms < 0) {
        snprintf(buf, n, "-");
        return buf;
    }
    s = ms / 1000;
    off = drv_tz_offset(tz, s, NULL);
    drv_tz_civil(s + off, &c);
    snprintf(buf, n, "%04" PRId64 "-%02d-%02dT%02d:%02d:%02d%c%02d:%02d",
             c.year, c.month, c.day, c.hour, c.minute, c.second,
             off < 0 ? '-' : '+', abs(off) / 3600, abs(off) / 60 % 60);
    return buf;
}

/* The info of schedule s; last_ms from Redis. */
static void
info(const struct drv_config_schedule *s, int64_t last_ms, int64_t now,
     struct drv_queue_schedule_info *in)
{
    memset(in, 0, sizeof *in);
    in->name = s->name;
    in->cron = s->cron != NULL ? drv_cron_text(s->cron) : NULL;
    in->every_ms = s->every_ms;
    in->timezone = drv_tz_name(s->tz);
    in->queue = s->queue;
    in->job = s->job != NULL ? s->job->name : NULL;
    in->pipeline = s->pipeline != NULL ? s->pipeline->name : NULL;
    in->last_ms = last_ms;
    if (s->every_ms > 0)
        in->next_ms = drv_every_next(s->every_ms, now);
    else if (drv_cron_next(s->cron, s->tz, now, &in->next_ms) < 0)
        in->next_ms = -1;
}

static void
print_text(const struct drv_config *cfg, const int64_t *last, int64_t now)
{
    static const char *const header[COLS] = {
        "NAME", "SPEC", "TIMEZONE", "QUEUE", "JOB", "LAST", "NEXT",
    };
    struct drv_queue_schedule_info in;
    struct drv_cli_table t;
    char spec[300], job[300], last_s[40], next_s[40], every[32];
    const char *cells[COLS];
    size_t i;

    drv__cli_table_init(&t, COLS, 0);
    drv__cli_table_add(&t, header);
    for (i = 0; i < cfg->nschedules; i++) {
        const struct drv_config_schedule *s = cfg->schedules[i];

        info(s, last[i], now, &in);
        if (in.cron != NULL)
            snprintf(spec, sizeof spec, "cron %s", in.cron);
        else
            snprintf(spec, sizeof spec, "every %s",
                     interval(in.every_ms, every, sizeof every));
        if (in.job != NULL)
            snprintf(job, sizeof job, "%s", in.job);
        else
            snprintf(job, sizeof job, "pipeline %s", in.pipeline);
        cells[0] = in.name;
        cells[1] = spec;
        cells[2] = in.timezone;
        cells[3] = in.queue;
        cells[4] = job;
        cells[5] = local_time(in.last_ms, s->tz, last_s, sizeof last_s);
        cells[6] = local_time(in.next_ms, s->tz, next_s, sizeof next_s);
        drv__cli_table_add(&t, cells);
    }
    drv__cli_table_print(&t, stdout);
    drv__cli_table_fini(&t);
}

/* The --json document into j: every schedule. */
static void
print_json(struct drv_json *j, const struct drv_config *cfg,
           const int64_t *last, int64_t now)
{
    struct drv_queue_schedule_info in;
    size_t i;

    drv_json_object_begin(j);
    drv_json_key(j, "schedules");
    drv_json_array_begin(j);
    for (i = 0; i < cfg->nschedules; i++) {
        info(cfg->schedules[i], last[i], now, &in);
        drv_queue_schedule_json(j, &in);
    }
    drv_json_array_end(j);
    drv_json_object_end(j);
}

int
drv__cli_schedules(struct drv_cli *cli, int argc, char **argv)
{
    const struct drv_config *cfg = NULL;
    struct drv_queue_cmds c;
    struct drv_err err;
    redisReply **out = NULL;
    int64_t *last = NULL;
    size_t i;
    int rc, bad = 0;

    rc = drv__cli_args(cli, argc, argv, "", NULL);
    if (rc == 0)
        rc = drv__cli_config(cli);
    /* nothing to read from Redis without schedules */
    if (rc == 0 && cli->cfg->nschedules > 0)
        rc = drv__cli_connect(cli);
    if (rc < 0)
        return rc;
    cfg = cli->cfg;
    drv_queue_cmds_init(&c);
    for (i = 0; i < cfg->nschedules; i++) {
        char *key = drv_queue_schedule_key(cfg->redis.prefix,
                                           cfg->schedules[i]->queue,
                                           cfg->schedules[i]->name);

        drv_queue_schedule_last_build(&c, key);
        free(key);
    }
    last = drv_xcalloc(cfg->nschedules + 1, sizeof *last);
    if (c.n > 0)
        rc = drv__cli_run(cli, &c, &out);
    /* a schedule whose key cannot be read is named on stderr and shown
     * as never ticked; the others are still listed, and the exit is 1 */
    for (i = 0; rc == 0 && i < cfg->nschedules; i++) {
        if (drv_queue_schedule_last_parse(out + i, 1, &last[i], &err) < 0) {
            fprintf(stderr, "%s: schedule %s: %s\n", cli->prog,
                    cfg->schedules[i]->name, err.msg);
            bad = -EIO;
        }
    }
    if (rc == 0 && cli->json)
        print_json(drv__cli_json_begin(cli), cfg, last, drv_clock_unix_ms());
    else if (rc == 0 && cfg->nschedules == 0)
        printf("no schedules in %s\n", cli->file != NULL
                                           ? cli->file : "the config");
    else if (rc == 0)
        print_text(cfg, last, drv_clock_unix_ms());
    free(last);
    drv__cli_free_replies(c.n, out);
    drv_queue_cmds_fini(&c);
    return rc < 0 ? rc : bad;
}
