/*
 * drover/cron.h -- five-field cron specs and when they fire, in a time
 * zone.
 *
 *   minute hour day-of-month month day-of-week
 *   0-59   0-23 1-31         1-12  0-7 (0 and 7 = Sunday)
 *
 * Each field is `*` or a list `a,b,c` of numbers, ranges `a-b` and steps
 * `*` + `/n` or `a-b/n`; months may be written JAN..DEC and days SUN..SAT
 * (any case, also in ranges: MON-FRI). `@hourly`, `@daily` (`@midnight`),
 * `@weekly`, `@monthly` and `@yearly` (`@annually`) stand for their
 * usual five fields.
 *
 * Days follow Vixie cron: when both day-of-month and day-of-week are
 * restricted (neither field starts with `*`), a day matches if EITHER
 * matches ("0 0 1 * MON": the 1st and every Monday); otherwise both must.
 *
 * Daylight saving time follows Vixie cron as well. A spec whose minute or
 * hour field starts with `*` is "wildcard"; the others are "fixed-time".
 *  - Spring forward (a gap in local time, 02:00 -> 03:00): a fixed-time
 *    spec that names a time inside the gap fires once, at the instant
 *    the gap begins (03:00 local, the first valid time after it), however
 *    many of its times fell into the gap; a wildcard spec simply has no
 *    ticks in the hour that does not exist.
 *  - Fall back (an hour of local time repeats): a fixed-time spec fires
 *    only at the first occurrence of its time; a wildcard spec fires in
 *    both (an every-minute spec ticks each real minute).
 *
 * A parsed spec is immutable: any thread may use it.
 */
#ifndef DROVER_CRON_H
#define DROVER_CRON_H

#include <stdint.h>

#include "drover/error.h"

struct drv_cron;
struct drv_tz;

/*
 * drv_cron_parse -- parse text. Returns 0 with *out set (caller frees
 * with drv_cron_free), or -EINVAL with err naming the field and the bad
 * token: `hour field: "25" is out of range 0-23`. A spec that can never
 * fire (day 30 in February only) is refused too.
 */
int drv_cron_parse(const char *text, struct drv_cron **out,
                   struct drv_err *err);

/* drv_cron_free -- NULL does nothing. */
void drv_cron_free(struct drv_cron *c);

/* drv_cron_text -- the spec as it was given; borrowed from c. */
const char *drv_cron_text(const struct drv_cron *c);

/*
 * drv_cron_next -- the first tick of c in zone tz strictly after
 * after_ms (Unix ms) into *out_ms (a whole second; a minute boundary in
 * every zone with whole-minute offsets). 0, or -ENOENT when none comes
 * within 41 years. A spec that parses has a tick within that (the
 * longest wait, 29 February that must also be a given weekday, is 40
 * years) unless it has a `*`-led minute or hour and every time it names
 * falls in an hour that daylight saving skips in tz: the config refuses
 * such a schedule at load.
 */
int drv_cron_next(const struct drv_cron *c, const struct drv_tz *tz,
                  int64_t after_ms, int64_t *out_ms);

/*
 * drv_every_next -- the first tick of an `every: interval_ms` schedule
 * strictly after after_ms: the next multiple of interval_ms since the
 * Unix epoch, so every worker computes the same ticks.
 */
int64_t drv_every_next(int64_t interval_ms, int64_t after_ms);

#endif
