/*
 * drover/tz.h -- IANA time zones read from the system's TZif files, and
 * the civil-calendar arithmetic schedules need.
 *
 * A zone is loaded once (drv_tz_load: /usr/share/zoneinfo/NAME, or
 * $TZDIR/NAME) into an immutable object that any thread may query at the
 * same time: no process-global state (TZ, tzset, localtime_r) is touched,
 * so a worker can serve schedules of many zones at once. The reader takes
 * TZif version 2 and later (64-bit times; a version 1 file is read from its
 * 32-bit block) and the footer's POSIX TZ rule, which gives the offsets
 * after the file's last transition (files built "slim" carry almost no
 * transitions and rely on it). Leap-second zones ("right/...") are
 * refused: Unix time has no leap seconds.
 *
 * Times are Unix seconds; an offset is seconds east of UTC (Berlin in
 * winter: +3600), so local wall time = t + offset.
 */
#ifndef DROVER_TZ_H
#define DROVER_TZ_H

#include <stddef.h>
#include <stdint.h>

#include "drover/error.h"

struct drv_tz;

/* Where zone files are looked up unless $TZDIR names another place. */
#define DRV_TZ_DIR "/usr/share/zoneinfo"
/* Largest zone file read. */
#define DRV_TZ_FILE_MAX (256 * 1024)

/*
 * drv_tz_load -- load the zone called name ("Europe/Berlin"; "UTC" and
 * "Etc/UTC" need no file). Returns 0 with *out set (caller frees with
 * drv_tz_free), or -EINVAL (a name that is not a zone name: empty,
 * absolute, "..", odd characters), -ENOENT (no such zone) or DRV_EPROTO
 * (not a TZif file, or a malformed one), err saying which. Any thread.
 */
int drv_tz_load(const char *name, struct drv_tz **out, struct drv_err *err);

/*
 * drv_tz_parse -- as drv_tz_load from the bytes of a TZif file
 * data[0..len); name is only kept for drv_tz_name. 0 or DRV_EPROTO.
 */
int drv_tz_parse(const char *name, const unsigned char *data, size_t len,
                 struct drv_tz **out, struct drv_err *err);

/* drv_tz_free -- free tz; NULL does nothing. */
void drv_tz_free(struct drv_tz *tz);

/* drv_tz_name -- the name it was loaded as; borrowed from tz. */
const char *drv_tz_name(const struct drv_tz *tz);

/*
 * drv_tz_offset -- the UTC offset in force at instant t. When next is
 * not NULL, *next is the first instant after t at which the zone's
 * offset or rule may change (a transition), or INT64_MAX when none
 * follows. The offset holds on all of [t, *next).
 */
int32_t drv_tz_offset(const struct drv_tz *tz, int64_t t, int64_t *next);

/* drv_tz_offset_range -- the least and the largest offset the zone ever
 * uses (its types and its rule). */
void drv_tz_offset_range(const struct drv_tz *tz, int32_t *min,
                         int32_t *max);

/* ------------------------------------------------------ civil calendar */

/* A civil (proleptic Gregorian) date and time of day. */
struct drv_tz_civil {
    int64_t year;
    int month;      /* 1..12 */
    int day;        /* 1..31 */
    int hour;       /* 0..23 */
    int minute;     /* 0..59 */
    int second;     /* 0..59 */
    int wday;       /* 0..6, 0 = Sunday */
};

/* drv_tz_days_from_civil -- days since 1970-01-01 of y-m-d (m 1..12). */
int64_t drv_tz_days_from_civil(int64_t y, int m, int d);

/* drv_tz_civil -- the civil time of s seconds since 1970-01-01 00:00
 * (a wall time: an instant plus an offset) into *c. */
void drv_tz_civil(int64_t s, struct drv_tz_civil *c);

/* drv_tz_month_days -- days of month m (1..12) of year y. */
int drv_tz_month_days(int64_t y, int m);

#endif
