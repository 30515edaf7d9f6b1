/*
 * cron.c -- five-field cron specs: parsing, and the next tick in a zone.
 *
 * DESIGN
 * A spec is five bit sets (minute 0-59, hour 0-23, day 1-31, month 1-12,
 * weekday 0-6) plus which fields start with `*` (the day rule and the DST
 * rule of cron.h depend on that, as in Vixie cron). The next tick is found
 * in two layers:
 *  1. wall clock: the next local minute that matches, skipping whole
 *     months, days and hours that cannot (next_wall);
 *  2. instants: the instants whose local time is that wall time
 *     (wall_instants): one normally, two in a repeated hour, none in a
 *     gap -- then the gap's start instant stands in for fixed-time specs.
 * The scan starts at the earliest wall time an instant after `after` can
 * have (after + the zone's least offset) and stops once no later wall
 * time can map to an earlier instant than the best found (wall - the
 * zone's largest offset), so zones whose offsets differ by an hour cost
 * at most an hour of extra wall minutes.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "drover/common.h"
#include "drover/cron.h"
#include "drover/tz.h"

#define SECS_PER_MIN INT64_C(60)
#define SECS_PER_HOUR INT64_C(3600)
#define SECS_PER_DAY INT64_C(86400)
/* How far ahead drv_cron_next looks. A spec that parses fires within 40
 * years: the longest wait is a day of the month that must also be a
 * given weekday (a `*`-led day-of-week such as `*` + `/7` is and-ed with
 * the day of the month): 4 April on a Sunday comes 11 years apart, 29
 * February on a Sunday up to 40 years (14,609 days) apart when a
 * century year is not a leap year. Days are skipped whole, so the
 * longest scan is about 15,000 steps. */
#define HORIZON_SECS (INT64_C(41) * 366 * SECS_PER_DAY)
/* Most instants one wall time maps to that are kept. */
#define INSTANTS_MAX 4
/* Longest spec kept. */
#define TEXT_MAX 256

enum field { F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, F_COUNT };

struct field_def {
    const char *name;           /* for messages */
    int lo, hi;                 /* accepted numbers */
    const char *const *names;   /* names for lo.. (NULL: none) */
};

static const char *const month_names[] = {
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN",
    "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const day_names[] = {
    "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

static const struct field_def fields[F_COUNT] = {
    [F_MIN] = {"minute", 0, 59, NULL},
    [F_HOUR] = {"hour", 0, 23, NULL},
    [F_DOM] = {"day-of-month", 1, 31, NULL},
    [F_MON] = {"month", 1, 12, month_names},
    [F_DOW] = {"day-of-week", 0, 7, day_names},
};

struct drv_cron {
    unsigned magic;
#define DRV_CRON_MAGIC 0xc7010c70U
    uint64_t bits[F_COUNT];     /* bit v set = value v matches (weekday 7
                                   folded into 0) */
    int star[F_COUNT];          /* the field starts with '*' */
    char text[TEXT_MAX];        /* as given */
};

/* The named specs and what they stand for. */
static const struct {
    const char *name, *spec;
} macros[] = {
    {"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"},
    {"@monthly", "0 0 1 * *"}, {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

static int64_t
floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

/* ------------------------------------------------------------ parse */

/* One number or name of field f at s[0..len) into *v. */
static int
value(enum field f, const char *s, size_t len, int *v)
{
    const struct field_def *d = &fields[f];
    size_t i;
    int n = 0;

    if (len == 0)
        return -EINVAL;
    if (s[0] >= '0' && s[0] <= '9') {
        for (i = 0; i < len; i++) {
            if (s[i] < '0' || s[i] > '9' || i >= 3)
                return -EINVAL;
            n = n * 10 + (s[i] - '0');
        }
        if (n < d->lo || n > d->hi)
            return -ERANGE;
        *v = n;
        return 0;
    }
    for (i = 0; d->names != NULL && d->names[i] != NULL; i++)
        if (len == 3 && strncasecmp(s, d->names[i], 3) == 0) {
            *v = d->lo + (int)i;    /* JAN = 1, SUN = 0 */
            return 0;
        }
    return -EINVAL;
}

/* Report a bad item of field f. */
static int
bad(struct drv_err *err, enum field f, const char *item, size_t len,
    const char *why)
{
    return drv_err_set(err, -EINVAL, "%s field: \"%.*s\" %s",
                       fields[f].name, (int)(len > 40 ? 40 : len), item,
                       why);
}

/* Why value() refused the token at s[0..len). */
static int
bad_value(struct drv_err *err, enum field f, const char *item,
          size_t ilen, const char *s, size_t len, int rc)
{
    char why[160];
    const struct field_def *d = &fields[f];

    if (rc == -ERANGE)
        snprintf(why, sizeof why, "is out of range %d-%d", d->lo, d->hi);
    else if (d->names == NULL)
        snprintf(why, sizeof why, "is not a number: \"%.*s\"",
                 (int)(len > 20 ? 20 : len), s);
    else
        snprintf(why, sizeof why, "has \"%.*s\", not a number or %s",
                 (int)(len > 20 ? 20 : len), s,
                 f == F_MON ? "a month name (JAN-DEC)"
                            : "a day name (SUN-SAT)");
    return bad(err, f, item, ilen, why);
}

/* One list item of field f (`*`, `a`, `a-b`, with `/n` after `*` or a
 * range) into *bits. */
static int
item(enum field f, const char *s, size_t len, uint64_t *bits,
     struct drv_err *err)
{
    const struct field_def *d = &fields[f];
    const char *slash = memchr(s, '/', len);
    size_t blen = slash != NULL ? (size_t)(slash - s) : len;
    const char *dash = memchr(s, '-', blen);
    int a = d->lo, b = d->hi, step = 1;
    int rc, v;

    if (len == 0)
        return bad(err, f, s, len, "is empty (two commas, or a comma at "
                   "an end?)");
    if (blen == 1 && s[0] == '*') {
        /* a = lo, b = hi */
    } else if (dash != NULL) {
        rc = value(f, s, (size_t)(dash - s), &a);
        if (rc < 0)
            return bad_value(err, f, s, len, s, (size_t)(dash - s), rc);
        rc = value(f, dash + 1, blen - (size_t)(dash - s) - 1, &b);
        if (rc < 0)
            return bad_value(err, f, s, len, dash + 1,
                             blen - (size_t)(dash - s) - 1, rc);
        if (f == F_DOW && b == 0 && a > 0)
            b = 7;      /* MON-SUN: Sunday as 7 ends the week */
        if (a > b)
            return bad(err, f, s, len, "is a range that goes backwards");
    } else {
        rc = value(f, s, blen, &a);
        if (rc < 0)
            return bad_value(err, f, s, len, s, blen, rc);
        if (slash != NULL)
            return bad(err, f, s, len, "has a step after a single value "
                       "(a step needs * or a range, e.g. */15 or 5-59/15)");
        b = a;
    }
    if (slash != NULL) {
        size_t slen = len - blen - 1;
        size_t i;

        step = 0;
        for (i = 0; i < slen; i++) {
            if (slash[1 + i] < '0' || slash[1 + i] > '9' || i >= 3)
                return bad(err, f, s, len, "has a step that is not a "
                           "number from 1");
            step = step * 10 + (slash[1 + i] - '0');
        }
        if (slen == 0 || step < 1)
            return bad(err, f, s, len, "has a step that is not a number "
                       "from 1");
    }
    for (v = a; v <= b; v += step)
        *bits |= UINT64_C(1) << (f == F_DOW && v == 7 ? 0 : v);
    return 0;
}

/* Field f at s[0..len): a comma-separated list of items. */
static int
field(enum field f, const char *s, size_t len, struct drv_cron *c,
      struct drv_err *err)
{
    size_t start = 0, i;
    int rc;

    c->star[f] = s[0] == '*';
    for (i = 0; i <= len; i++) {
        if (i < len && s[i] != ',')
            continue;
        rc = item(f, s + start, i - start, &c->bits[f], err);
        if (rc < 0)
            return rc;
        start = i + 1;
    }
    return 0;
}

/* 0 when some day of some month of the spec exists (day-of-month only
 * restricts days when day-of-week is `*`-led). */
static int
can_fire(const struct drv_cron *c, struct drv_err *err)
{
    int m, d;

    if (c->star[F_DOM] || !c->star[F_DOW])
        return 0;
    for (m = 1; m <= 12; m++) {
        if (!(c->bits[F_MON] & (UINT64_C(1) << m)))
            continue;
        for (d = 1; d <= (m == 2 ? 29 : drv_tz_month_days(2001, m)); d++)
            if (c->bits[F_DOM] & (UINT64_C(1) << d))
                return 0;
    }
    return drv_err_set(err, -EINVAL, "never fires: no month of the month "
                       "field has a day of the day-of-month field");
}

int
drv_cron_parse(const char *text, struct drv_cron **out, struct drv_err *err)
{
    struct drv_cron *c = NULL;
    const char *s = text;
    size_t i;
    int f = 0;
    int rc = 0;

    *out = NULL;
    if (text == NULL)
        return drv_err_set(err, -EINVAL, "empty cron spec");
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '@') {
        size_t n = strcspn(s, " \t");

        for (i = 0; i < DRV_ARRAY_LEN(macros); i++)
            if (strlen(macros[i].name) == n &&
                strncasecmp(s, macros[i].name, n) == 0 &&
                s[n + strspn(s + n, " \t")] == '\0')
                break;
        if (i == DRV_ARRAY_LEN(macros))
            return drv_err_set(err, -EINVAL, "\"%.*s\" is not a cron macro "
                               "(use @hourly, @daily, @weekly, @monthly, "
                               "@yearly or five fields)",
                               (int)(n > 40 ? 40 : n), s);
        rc = drv_cron_parse(macros[i].spec, out, err);
        if (rc == 0)
            snprintf((*out)->text, sizeof (*out)->text, "%s", text);
        return rc;
    }
    DRV_ALLOC_OBJ(c, DRV_CRON_MAGIC);
    snprintf(c->text, sizeof c->text, "%s", text);
    while (*s != '\0') {
        size_t n = strcspn(s, " \t");

        if (f == F_COUNT) {
            rc = drv_err_set(err, -EINVAL, "more than five fields (minute "
                             "hour day-of-month month day-of-week); extra "
                             "\"%.*s\"", (int)(n > 40 ? 40 : n), s);
            goto out;
        }
        rc = field((enum field)f, s, n, c, err);
        if (rc < 0)
            goto out;
        f++;
        s += n;
        while (*s == ' ' || *s == '\t')
            s++;
    }
    if (f < F_COUNT) {
        rc = drv_err_set(err, -EINVAL, "%d field%s, need five (minute hour "
                         "day-of-month month day-of-week)", f,
                         f == 1 ? "" : "s");
        goto out;
    }
    rc = can_fire(c, err);
out:
    if (rc < 0)
        drv_cron_free(c);
    else
        *out = c;
    return rc;
}

void
drv_cron_free(struct drv_cron *c)
{
    if (DRV_NO_OBJ(c, DRV_CRON_MAGIC))
        return;
    DRV_FREE_OBJ(c);
}

const char *
drv_cron_text(const struct drv_cron *c)
{
    DRV_CHECK_OBJ(c, DRV_CRON_MAGIC);
    return c->text;
}

/* ------------------------------------------------------------- next */

static int
has(const struct drv_cron *c, enum field f, int v)
{
    return (c->bits[f] >> v) & 1;
}

/* The minute or hour field starts with `*`: the DST rule of cron.h. */
static int
wildcard(const struct drv_cron *c)
{
    return c->star[F_MIN] || c->star[F_HOUR];
}

static int
day_matches(const struct drv_cron *c, const struct drv_tz_civil *cv)
{
    int dom = has(c, F_DOM, cv->day);
    int dow = has(c, F_DOW, cv->wday);

    if (c->star[F_DOM] || c->star[F_DOW])
        return dom && dow;
    return dom || dow;
}

/* The first wall minute >= w (minute-aligned) that matches, or INT64_MAX
 * when none does up to limit. */
static int64_t
next_wall(const struct drv_cron *c, int64_t w, int64_t limit)
{
    struct drv_tz_civil cv;
    int m;

    while (w <= limit) {
        drv_tz_civil(w, &cv);
        if (!has(c, F_MON, cv.month)) {
            w = drv_tz_days_from_civil(cv.year + (cv.month == 12),
                                       cv.month % 12 + 1, 1) * SECS_PER_DAY;
        } else if (!day_matches(c, &cv)) {
            w = (floor_div(w, SECS_PER_DAY) + 1) * SECS_PER_DAY;
        } else if (!has(c, F_HOUR, cv.hour)) {
            w = (floor_div(w, SECS_PER_HOUR) + 1) * SECS_PER_HOUR;
        } else if (!has(c, F_MIN, cv.minute)) {
            for (m = cv.minute + 1; m < 60 && !has(c, F_MIN, m); m++)
                ;
            if (m < 60)
                w += (m - cv.minute) * SECS_PER_MIN;
            else
                w = (floor_div(w, SECS_PER_HOUR) + 1) * SECS_PER_HOUR;
        } else {
            return w;
        }
    }
    return INT64_MAX;
}

/*
 * The instants whose local time in tz is w, ascending, into inst (at
 * most INSTANTS_MAX); returns how many. When there are none because w
 * falls into a gap, *gap is the instant the gap begins (else INT64_MAX).
 * Offsets lie in [mn, mx], so the instants lie in [w - mx, w - mn].
 */
static int
wall_instants(const struct drv_tz *tz, int64_t w, int32_t mn, int32_t mx,
              int64_t *inst, int64_t *gap)
{
    int64_t t = w - mx, end = w - mn, nx = 0;
    int32_t off, off2;
    int n = 0;

    *gap = INT64_MAX;
    for (;;) {
        off = drv_tz_offset(tz, t, &nx);
        if (w - off >= t && w - off < nx && n < INSTANTS_MAX)
            inst[n++] = w - off;
        if (nx > end)
            break;
        off2 = drv_tz_offset(tz, nx, NULL);
        if (off2 > off && w >= nx + off && w < nx + off2)
            *gap = nx;
        t = nx;
    }
    return n;
}

int
drv_cron_next(const struct drv_cron *c, const struct drv_tz *tz,
              int64_t after_ms, int64_t *out_ms)
{
    int64_t a = floor_div(after_ms, 1000);
    int64_t inst[INSTANTS_MAX];
    int64_t best = INT64_MAX, w, limit, gap;
    int32_t mn = 0, mx = 0;
    int wild, n, i;

    DRV_CHECK_OBJ(c, DRV_CRON_MAGIC);
    wild = wildcard(c);
    drv_tz_offset_range(tz, &mn, &mx);
    /* an instant after a has a wall time of at least a + 1 + mn */
    w = floor_div(a + 1 + mn, SECS_PER_MIN) * SECS_PER_MIN;
    limit = a + mx + HORIZON_SECS;
    for (;;) {
        w = next_wall(c, w, limit);
        if (w == INT64_MAX || w - mx > best)
            break;
        n = wall_instants(tz, w, mn, mx, inst, &gap);
        /* fixed-time: the first occurrence only; wildcard: each one */
        for (i = 0; i < (wild ? n : n > 0 ? 1 : 0); i++)
            if (inst[i] > a && inst[i] < best)
                best = inst[i];
        if (n == 0 && !wild && gap > a && gap < best)
            best = gap;
        w += SECS_PER_MIN;
    }
    if (best == INT64_MAX)
        return -ENOENT;
    *out_ms = best * 1000;
    return 0;
}

int64_t
drv_every_next(int64_t interval_ms, int64_t after_ms)
{
    DRV_ASSERT(interval_ms > 0);
    return (floor_div(after_ms, interval_ms) + 1) * interval_ms;
}
