/*
 * fuzz_cron.c -- cron specs (drover/cron.h) and the TZif reader
 * (drover/tz.h).
 *
 * Input: one mode byte, then 8 bytes of an instant (Unix ms, folded into
 * 1900..2200), then
 *   mode even: a cron spec (the rest, cut at 300 bytes). A spec that
 *     fails to parse gives -EINVAL and a message; one that parses has,
 *     in UTC, Europe/Berlin or America/New_York (mode / 2 % 3), a next
 *     tick after the instant on a whole second (in UTC always; in the
 *     others a wildcard spec whose every time falls in a skipped hour has
 *     none), and that tick is the next one after any instant between:
 *     next(next - 1 ms) == next; the tick after it comes later.
 *   mode odd: the bytes of a TZif file. A file that fails gives
 *     DRV_EPROTO; one that loads answers every lookup with an offset in
 *     its range, a next change after the instant, and the same offset
 *     until just before that change.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "drover/cron.h"
#include "drover/error.h"
#include "drover/tz.h"
#include "fuzz.h"

#define SPEC_MAX 300
/* 1900-01-01 and 2200-01-01, Unix ms */
#define T_MIN (-2208988800000LL)
#define T_MAX (7258118400000LL)

static const char *const zone_names[3] = {
    "UTC", "Europe/Berlin", "America/New_York",
};
/* Loaded once; a zone whose file is missing falls back to UTC. */
static struct drv_tz *zones[3];

static const struct drv_tz *
zone(unsigned i)
{
    if (zones[i] == NULL && drv_tz_load(zone_names[i], &zones[i], NULL) < 0)
        (void)drv_tz_load("UTC", &zones[i], NULL);
    FUZZ_CHECK(zones[i] != NULL, "UTC does not load");
    return zones[i];
}

static void
fuzz_spec(const char *text, unsigned zi, int64_t after)
{
    struct drv_cron *c = NULL;
    struct drv_err err;
    int64_t t1 = 0, t0 = 0, t2 = 0;
    int rc;

    drv_err_clear(&err);
    rc = drv_cron_parse(text, &c, &err);
    if (rc < 0) {
        FUZZ_CHECK(rc == -EINVAL && c == NULL && err.msg[0] != '\0',
                   "parse \"%s\": rc %d", text, rc);
        return;
    }
    FUZZ_CHECK(c != NULL, "parse \"%s\": no spec", text);
    rc = drv_cron_next(c, zone(zi), after, &t1);
    /* none only where daylight saving skips every time a wildcard spec
     * names (the config refuses those): never in UTC */
    if (rc == -ENOENT && zi != 0) {
        drv_cron_free(c);
        return;
    }
    FUZZ_CHECK(rc == 0, "\"%s\" in %s after %lld: no tick", text,
               zone_names[zi], (long long)after);
    FUZZ_CHECK(t1 > after && t1 % 1000 == 0, "\"%s\": tick %lld after "
               "%lld", text, (long long)t1, (long long)after);
    FUZZ_CHECK(drv_cron_next(c, zone(zi), t1 - 1, &t0) == 0 && t0 == t1,
               "\"%s\" in %s: next(%lld - 1) = %lld", text, zone_names[zi],
               (long long)t1, (long long)t0);
    FUZZ_CHECK(drv_cron_next(c, zone(zi), t1, &t2) == 0 && t2 > t1,
               "\"%s\": tick after %lld is %lld", text, (long long)t1,
               (long long)t2);
    drv_cron_free(c);
}

static void
fuzz_tzif(const uint8_t *p, size_t n, int64_t after)
{
    struct drv_tz *tz = NULL;
    struct drv_err err;
    int32_t mn = 0, mx = 0, off, off2;
    int64_t t = after / 1000, next = 0;
    int rc, i;

    drv_err_clear(&err);
    rc = drv_tz_parse("fuzz", p, n, &tz, &err);
    if (rc < 0) {
        FUZZ_CHECK(rc == DRV_EPROTO && tz == NULL && err.msg[0] != '\0',
                   "tz parse: rc %d", rc);
        return;
    }
    drv_tz_offset_range(tz, &mn, &mx);
    for (i = 0; i < 8; i++) {
        off = drv_tz_offset(tz, t, &next);
        FUZZ_CHECK(off >= mn && off <= mx, "offset %d not in [%d, %d]",
                   off, mn, mx);
        FUZZ_CHECK(next > t, "next change %lld not after %lld",
                   (long long)next, (long long)t);
        if (next == INT64_MAX)
            break;
        off2 = drv_tz_offset(tz, next - 1, NULL);
        FUZZ_CHECK(off2 == off, "offset %d at %lld, %d just before the "
                   "change at %lld", off, (long long)t, off2,
                   (long long)next);
        t = next;
    }
    drv_tz_free(tz);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    char text[SPEC_MAX + 1];
    uint8_t mode = fuzz_byte(&in);
    int64_t after = (int64_t)(fuzz_u64(&in) % (uint64_t)(T_MAX - T_MIN)) +
                    T_MIN;
    size_t n;

    if (mode % 2 == 1) {
        fuzz_tzif(in.p, in.n, after);
        return 0;
    }
    n = in.n < SPEC_MAX ? in.n : SPEC_MAX;
    memcpy(text, in.p, n);
    text[n] = '\0';
    fuzz_spec(text, (unsigned)(mode / 2 % 3), after);
    return 0;
}
