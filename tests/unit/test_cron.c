/*
 * test_cron.c -- cron specs, their next tick in real zones (the system's
 * TZif files) across DST changes, `every:` alignment, and the TZif
 * reader's POSIX rule against the full tables.
 *
 * Instants are fixed Unix seconds, written with their UTC date.
 */
#include <errno.h>
#include <string.h>

#include "harness.h"
#include "drover/common.h"
#include "drover/cron.h"
#include "drover/tz.h"

#define MIN 60
#define HOUR 3600
#define DAY 86400

/* Next tick (Unix seconds) of spec in zone after after_s; fails the test
 * when the spec or the zone do not load. */
static int64_t
next_s(const char *spec, const char *zone, int64_t after_s)
{
    struct drv_cron *c = NULL;
    struct drv_tz *tz = NULL;
    struct drv_err err;
    int64_t out = 0;
    int rc;

    drv_err_clear(&err);
    rc = drv_cron_parse(spec, &c, &err);
    if (rc != 0)
        fail_msg("parse \"%s\": %s", spec, err.msg);
    rc = drv_tz_load(zone, &tz, &err);
    if (rc != 0)
        fail_msg("zone %s: %s", zone, err.msg);
    rc = drv_cron_next(c, tz, after_s * 1000, &out);
    assert_int_equal(rc, 0);
    assert_int_equal(out % 1000, 0);
    drv_cron_free(c);
    drv_tz_free(tz);
    return out / 1000;
}

/* The ticks of spec in zone after after_s, n of them, into out. */
static void
ticks(const char *spec, const char *zone, int64_t after_s, int n,
      int64_t *out)
{
    int i;

    for (i = 0; i < n; i++) {
        out[i] = next_s(spec, zone, after_s);
        after_s = out[i];
    }
}

/* spec fails to parse and its message contains each of want[]. */
static void
bad(const char *spec, const char *want1, const char *want2)
{
    struct drv_cron *c = NULL;
    struct drv_err err;

    drv_err_clear(&err);
    if (drv_cron_parse(spec, &c, &err) != -EINVAL)
        fail_msg("\"%s\" parsed", spec);
    assert_null(c);
    if (strstr(err.msg, want1) == NULL ||
        (want2 != NULL && strstr(err.msg, want2) == NULL))
        fail_msg("\"%s\": message \"%s\" lacks \"%s\"/\"%s\"", spec,
                 err.msg, want1, want2 ? want2 : "");
}

/* ------------------------------------------------------- DST: Berlin */

/* 2026-03-29: 02:00 CET -> 03:00 CEST at 01:00 UTC. A fixed 02:30 runs
 * once, at 03:00 CEST (the gap's start), then 02:30 CEST next day. */
static void
test_cron_berlin_spring_forward_fixed(void **state)
{
    int64_t t[3];

    ticks("30 2 * * *", "Europe/Berlin", 1774699200 /* 03-28 12:00Z */, 3,
          t);
    assert_int_equal(t[0], 1774746000);        /* 03-29 01:00Z = 03:00 */
    assert_int_equal(t[1], 1774830600);        /* 03-30 00:30Z = 02:30 */
    assert_int_equal(t[2], 1774830600 + DAY);
    /* several fixed times in the gap still make one tick */
    ticks("0,15,30,45 2 * * *", "Europe/Berlin", 1774699200, 2, t);
    assert_int_equal(t[0], 1774746000);
    assert_int_equal(t[1], 1774828800);        /* 03-30 00:00Z = 02:00 */
    /* a wildcard hour-2 spec has no ticks in the missing hour */
    ticks("*/15 2 * * *", "Europe/Berlin", 1774699200, 1, t);
    assert_int_equal(t[0], 1774828800);
}

/* 2026-10-25: 03:00 CEST -> 02:00 CET at 01:00 UTC; 02:30 happens at
 * 00:30Z and at 01:30Z. A fixed 02:30 runs at the first only. */
static void
test_cron_berlin_fall_back_fixed(void **state)
{
    int64_t t[2];

    ticks("30 2 * * *", "Europe/Berlin", 1792843200 /* 10-24 12:00Z */, 2,
          t);
    assert_int_equal(t[0], 1792888200);        /* 10-25 00:30Z CEST */
    assert_int_equal(t[1], 1792978200);        /* 10-26 01:30Z CET */
}

/* Every minute is every real minute across both changes. */
static void
test_cron_every_minute_across_dst(void **state)
{
    int64_t t[240];
    int i;

    ticks("* * * * *", "Europe/Berlin", 1774742400 - MIN /* 03-29 */, 240,
          t);
    for (i = 0; i < 240; i++)
        assert_int_equal(t[i], 1774742400 + i * MIN);
    ticks("* * * * *", "Europe/Berlin", 1792882800 - MIN /* 10-24 23Z */,
          240, t);
    for (i = 0; i < 240; i++)
        assert_int_equal(t[i], 1792882800 + i * MIN);
    /* a wildcard every quarter hour: both 02:xx hours on fall-back day */
    ticks("*/15 * * * *", "America/New_York", 1793505600 /* 11-01 04Z */,
          16, t);
    for (i = 0; i < 16; i++)
        assert_int_equal(t[i], 1793505600 + (i + 1) * 15 * MIN);
}

/* ------------------------------------------------- DST: New York */

/* 2026-03-08: 02:00 EST -> 03:00 EDT at 07:00 UTC. */
static void
test_cron_new_york_spring_forward(void **state)
{
    int64_t t[2];

    ticks("30 2 * * *", "America/New_York", 1772884800 /* 03-07 12Z */, 2,
          t);
    assert_int_equal(t[0], 1772953200);        /* 03-08 07:00Z = 03:00 */
    assert_int_equal(t[1], 1773037800);        /* 03-09 06:30Z = 02:30 */
    /* 03:00 itself and the gap's 02:30 are one tick */
    ticks("0,30 2,3 * * *", "America/New_York", 1772884800 + 15 * HOUR, 2,
          t);
    assert_int_equal(t[0], 1772953200);        /* 03:00 EDT */
    assert_int_equal(t[1], 1772953200 + 30 * MIN);
}

/* A wildcard spec whose every time falls in the skipped hour (02:xx on
 * the second Sunday of March, the gap since 2007) has no tick; before
 * 2007 it had one (2000-03-12 02:00 EST). A fixed time there runs at the
 * gap's end. */
static void
test_cron_new_york_only_in_gap(void **state)
{
    struct drv_cron *c = NULL;
    struct drv_tz *tz = NULL;
    int64_t out = 0;

    assert_int_equal(drv_cron_parse("* 2 8-14 3 */7", &c, NULL), 0);
    assert_int_equal(drv_tz_load("America/New_York", &tz, NULL), 0);
    assert_int_equal(drv_cron_next(c, tz, INT64_C(1767225600000), &out),
                     -ENOENT);                 /* after 2026-01-01 */
    assert_int_equal(drv_cron_next(c, tz, INT64_C(946684800000), &out), 0);
    assert_int_equal(out, INT64_C(952844400000)); /* 2000-03-12 07:00Z */
    drv_cron_free(c);
    drv_tz_free(tz);
    assert_int_equal(next_s("30 2 8-14 3 */7", "America/New_York",
                            1767225600), 1772953200); /* 03-08 03:00 EDT */
}

/* 2026-11-01: 02:00 EDT -> 01:00 EST at 06:00 UTC; 01:30 happens at
 * 05:30Z and 06:30Z. */
static void
test_cron_new_york_fall_back(void **state)
{
    int64_t t[3];

    ticks("30 1 * * *", "America/New_York", 1793448000 /* 10-31 12Z */, 2,
          t);
    assert_int_equal(t[0], 1793511000);        /* 11-01 05:30Z EDT */
    assert_int_equal(t[1], 1793601000);        /* 11-02 06:30Z EST */
    /* an hourly wildcard runs in both 01:xx hours */
    ticks("30 * * * *", "America/New_York", 1793511000 - MIN, 3, t);
    assert_int_equal(t[0], 1793511000);
    assert_int_equal(t[1], 1793511000 + HOUR);
    assert_int_equal(t[2], 1793511000 + 2 * HOUR);
}

/* ------------------------------------------------- calendar fields */

static void
test_cron_calendar(void **state)
{
    int64_t t[4];

    /* Feb 29: the next leap year */
    assert_int_equal(next_s("0 0 29 2 *", "UTC", 1735689600 /* 2025 */),
                     1835395200 /* 2028-02-29 */);
    /* day 31 skips months without one */
    assert_int_equal(next_s("0 12 31 * *", "UTC", 1775001600 /* 04-01 */),
                     1780228800 /* 05-31 12:00 */);
    /* weekdays: Friday 2026-12-04 00:00 -> Monday 12-07 */
    assert_int_equal(next_s("0 0 * * MON-FRI", "UTC", 1796342400),
                     1796601600);
    assert_int_equal(next_s("0 0 * * 1-5", "UTC", 1796342400), 1796601600);
    /* names in any case; 0 and 7 are Sunday; MON-SUN is every day */
    assert_int_equal(next_s("0 0 * dec Sun", "UTC", 1796342400),
                     1796342400 + 2 * DAY);    /* Sunday 12-06 */
    assert_int_equal(next_s("0 0 * * 7", "UTC", 1796342400),
                     1796342400 + 2 * DAY);
    assert_int_equal(next_s("0 0 * * mon-sun", "UTC", 1796342400),
                     1796342400 + DAY);
    /* Vixie: both day fields restricted = either one (the 1st, or a
     * Friday); one of them `*`-led = both */
    ticks("0 0 1 * FRI", "UTC", 1796342400 /* Fri 12-04 */, 3, t);
    assert_int_equal(t[0], 1796342400 + 7 * DAY);      /* Fri 12-11 */
    assert_int_equal(t[1], 1796342400 + 14 * DAY);     /* Fri 12-18 */
    assert_int_equal(t[2], 1796342400 + 21 * DAY);     /* Fri 12-25 */
    assert_int_equal(next_s("0 0 1 * FRI", "UTC", 1796342400 + 21 * DAY),
                     1798761600);                      /* Fri 2027-01-01 */
    assert_int_equal(next_s("0 0 */1 * FRI", "UTC", 1796342400),
                     1796342400 + 7 * DAY);            /* AND: Fridays */
    /* AND with a `*`-led weekday step (`*` + `/7`: Sunday): 4 April on a
     * Sunday is 11 years from 2010 to 2021; 29 February on a Sunday 40
     * years from 2184 to 2224 (2200 is not a leap year) */
    assert_int_equal(next_s("0 1 4 4 */7", "UTC", 1270342800),
                     1617498000);
    assert_int_equal(next_s("0 0 29 2 */7", "UTC", 6758294400),
                     8020512000);
    /* steps and ranges */
    ticks("5-20/5 * * * *", "UTC", 1796342400, 4, t);
    assert_int_equal(t[0], 1796342400 + 5 * MIN);
    assert_int_equal(t[3], 1796342400 + 20 * MIN);
    assert_int_equal(next_s("5-20/5 * * * *", "UTC", t[3]),
                     1796342400 + HOUR + 5 * MIN);
    ticks("*/20 9-17/4 * * *", "UTC", 1796342400, 4, t);
    assert_int_equal(t[0], 1796342400 + 9 * HOUR);
    assert_int_equal(t[2], 1796342400 + 9 * HOUR + 40 * MIN);
    assert_int_equal(t[3], 1796342400 + 13 * HOUR);
    /* macros */
    assert_int_equal(next_s("@daily", "UTC", 1796342400), 1796342400 + DAY);
    assert_int_equal(next_s("@hourly", "UTC", 1796342400 + 1),
                     1796342400 + HOUR);
    /* strictly after: a tick exactly at `after` is not returned */
    assert_int_equal(next_s("0 0 * * *", "UTC", 1796342400),
                     1796342400 + DAY);
    /* a zone east of UTC: 03:00 Berlin in winter is 02:00Z */
    assert_int_equal(next_s("0 3 * * *", "Europe/Berlin", 1796342400),
                     1796342400 + 2 * HOUR);
}

static void
test_cron_bad_specs(void **state)
{
    bad("61 * * * *", "minute field", "\"61\" is out of range 0-59");
    bad("* 24 * * *", "hour field", "\"24\"");
    bad("* * 0 * *", "day-of-month field", "\"0\"");
    bad("* * * 13 *", "month field", "\"13\"");
    bad("* * * * 8", "day-of-week field", "\"8\"");
    bad("* * * FOO *", "month field", "\"FOO\"");
    bad("* * * * MON-FOO", "day-of-week field", "\"MON-FOO\"");
    bad("*/0 * * * *", "minute field", "\"*/0\"");
    bad("*/x * * * *", "minute field", "step");
    bad("5/15 * * * *", "minute field", "\"5/15\"");
    bad("30-10 * * * *", "minute field", "backwards");
    bad("1,,2 * * * *", "minute field", "empty");
    bad("1, * * * *", "minute field", "empty");
    bad("x * * * *", "minute field", "\"x\"");
    bad("* * * *", "4 fields", NULL);
    bad("* * * * * *", "more than five", "\"*\"");
    bad("", "0 fields", NULL);
    bad("0 0 30 2 *", "never fires", NULL);
    bad("0 0 31 4,6 *", "never fires", NULL);
    bad("@reboot", "\"@reboot\"", NULL);
}

static void
test_cron_text(void **state)
{
    struct drv_cron *c = NULL;

    assert_int_equal(drv_cron_parse("*/5 2 * * *", &c, NULL), 0);
    assert_string_equal(drv_cron_text(c), "*/5 2 * * *");
    drv_cron_free(c);
    /* the 31st of February or a Monday: fires (OR rule) */
    assert_int_equal(drv_cron_parse("0 0 31 2 MON", &c, NULL), 0);
    drv_cron_free(c);
}

/* ------------------------------------------------------------- every */

static void
test_cron_every_aligned(void **state)
{
    assert_int_equal(drv_every_next(600000, 0), 600000);
    assert_int_equal(drv_every_next(600000, 599999), 600000);
    assert_int_equal(drv_every_next(600000, 600000), 1200000);
    assert_int_equal(drv_every_next(1000, 1796342400123), 1796342401000);
    assert_int_equal(drv_every_next(1000, -1), 0);
}

/* ---------------------------------------------------------------- tz */

static void
test_tz_names(void **state)
{
    struct drv_tz *tz = NULL;
    struct drv_err err;

    assert_int_equal(drv_tz_load("Nowhere/City", &tz, &err), -ENOENT);
    assert_non_null(strstr(err.msg, "unknown time zone"));
    assert_int_equal(drv_tz_load("../etc/passwd", &tz, &err), -EINVAL);
    assert_int_equal(drv_tz_load("/etc/localtime", &tz, &err), -EINVAL);
    assert_int_equal(drv_tz_load("Europe/../Berlin", &tz, &err), -EINVAL);
    assert_int_equal(drv_tz_load("", &tz, &err), -EINVAL);
    assert_int_equal(drv_tz_load("Europe", &tz, &err), -ENOENT);
    assert_null(tz);
    assert_int_equal(drv_tz_load("UTC", &tz, &err), 0);
    assert_int_equal(drv_tz_offset(tz, 1796342400, NULL), 0);
    drv_tz_free(tz);
    assert_int_equal(drv_tz_load("Asia/Kolkata", &tz, &err), 0);
    assert_string_equal(drv_tz_name(tz), "Asia/Kolkata");
    assert_int_equal(drv_tz_offset(tz, 1796342400, NULL), 5 * HOUR + 1800);
    drv_tz_free(tz);
}

/* A TZif v2 file with no transitions, one type and footer rule: the
 * shape of a "slim" build, where the rule decides everything. */
static size_t
slim_file(unsigned char *buf, int32_t off, const char *rule)
{
    size_t n = 0, i;
    int v;

    for (v = 0; v < 2; v++) {
        memset(buf + n, 0, 44);
        memcpy(buf + n, "TZif2", 5);
        buf[n + 39] = 1;                  /* typecnt */
        buf[n + 43] = 4;                  /* charcnt */
        n += 44;
        for (i = 0; i < 4; i++)
            buf[n++] = (unsigned char)((uint32_t)off >> (24 - 8 * i));
        buf[n++] = 0;                     /* isdst */
        buf[n++] = 0;                     /* desigidx */
        memcpy(buf + n, "XXX", 4);
        n += 4;
    }
    buf[n++] = '\n';
    memcpy(buf + n, rule, strlen(rule));
    n += strlen(rule);
    buf[n++] = '\n';
    return n;
}

/* The footer rule alone agrees with the full table, hour by hour over
 * ten years, in a northern and a southern zone. */
static void
test_tz_rule_matches_table(void **state)
{
    static const struct {
        const char *zone, *rule;
        int32_t std;
    } z[] = {
        {"Europe/Berlin", "CET-1CEST,M3.5.0,M10.5.0/3", 3600},
        {"America/New_York", "EST5EDT,M3.2.0,M11.1.0", -5 * 3600},
        {"Australia/Sydney", "AEST-10AEDT,M10.1.0,M4.1.0/3", 10 * 3600},
    };
    unsigned char buf[256];
    struct drv_tz *full = NULL, *slim = NULL;
    struct drv_err err;
    size_t i;
    int64_t t, nf, ns;

    for (i = 0; i < DRV_ARRAY_LEN(z); i++) {
        size_t n = slim_file(buf, z[i].std, z[i].rule);

        assert_int_equal(drv_tz_load(z[i].zone, &full, &err), 0);
        if (drv_tz_parse("slim", buf, n, &slim, &err) != 0)
            fail_msg("%s", err.msg);
        for (t = 1735689600 /* 2025 */; t < 1735689600 + 10 * 365 * DAY;
             t += HOUR) {
            int32_t a = drv_tz_offset(full, t, &nf);
            int32_t b = drv_tz_offset(slim, t, &ns);

            if (a != b)
                fail_msg("%s at %lld: table %d, rule %d", z[i].zone,
                         (long long)t, a, b);
            /* next changes agree once the table is past its end */
            if (nf != ns && nf != INT64_MAX && t > 2200000000)
                fail_msg("%s at %lld: next %lld vs %lld", z[i].zone,
                         (long long)t, (long long)nf, (long long)ns);
        }
        drv_tz_free(full);
        drv_tz_free(slim);
    }
}

static void
test_tz_rejects_garbage(void **state)
{
    unsigned char buf[256];
    struct drv_tz *tz = NULL;
    struct drv_err err;
    size_t n;

    assert_int_equal(drv_tz_parse("x", (const unsigned char *)"hello", 5,
                                  &tz, &err), DRV_EPROTO);
    n = slim_file(buf, 3600, "CET-1CEST,M3.5.0,M10.5.0/3");
    assert_int_equal(drv_tz_parse("x", buf, n - 20, &tz, &err), DRV_EPROTO);
    n = slim_file(buf, 3600, "CET-1CEST,M13.5.0,M10.5.0/3");
    assert_int_equal(drv_tz_parse("x", buf, n, &tz, &err), DRV_EPROTO);
    assert_null(tz);
}

/* Beyond the file's table (2037) the footer rule decides: Berlin's
 * spring change of 2100 is Sunday 03-28 at 01:00Z. */
static void
test_cron_far_future(void **state)
{
    int64_t t[2];

    ticks("30 2 * * *", "Europe/Berlin", 4109832000 /* 2100-03-27 12Z */,
          2, t);
    assert_int_equal(t[0], 4109878800);        /* 03:00 CEST */
    assert_int_equal(t[1], 4109963400);        /* 03-29 00:30Z */
}

static void
test_civil(void **state)
{
    struct drv_tz_civil c;

    drv_tz_civil(1835395200, &c);
    assert_int_equal(c.year, 2028);
    assert_int_equal(c.month, 2);
    assert_int_equal(c.day, 29);
    assert_int_equal(c.wday, 2);    /* a Tuesday */
    drv_tz_civil(-1, &c);
    assert_int_equal(c.year, 1969);
    assert_int_equal(c.hour, 23);
    assert_int_equal(c.wday, 3);
    assert_int_equal(drv_tz_days_from_civil(2028, 2, 29) * DAY, 1835395200);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cron_berlin_spring_forward_fixed),
        cmocka_unit_test(test_cron_berlin_fall_back_fixed),
        cmocka_unit_test(test_cron_every_minute_across_dst),
        cmocka_unit_test(test_cron_new_york_spring_forward),
        cmocka_unit_test(test_cron_new_york_only_in_gap),
        cmocka_unit_test(test_cron_new_york_fall_back),
        cmocka_unit_test(test_cron_calendar),
        cmocka_unit_test(test_cron_bad_specs),
        cmocka_unit_test(test_cron_text),
        cmocka_unit_test(test_cron_every_aligned),
        cmocka_unit_test(test_tz_names),
        cmocka_unit_test(test_tz_rule_matches_table),
        cmocka_unit_test(test_tz_rejects_garbage),
        cmocka_unit_test(test_cron_far_future),
        cmocka_unit_test(test_civil),
    };

    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, NULL, NULL);
}
