/*
 * fuzz_parse.c -- durations, sizes and plain integers (drover/parse.h).
 *
 * Input: one mode byte, then
 *   mode even: text. Each parser's answer is compared with a reference
 *     written here from the documented grammar (digits, then one unit of
 *     the parser's table; -? for drv_parse_int), with exact 128-bit
 *     arithmetic: accepted exactly when the text is in the grammar and the
 *     value fits, and then with the same value; -EINVAL for text outside
 *     the grammar, -ERANGE for a value that does not fit.
 *   mode odd: numbers. A value is formatted with every unit whose
 *     multiple it is, then parsed back: parse(format(x)) == x.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "drover/parse.h"
#include "fuzz.h"

struct unit {
    const char *name;
    uint64_t mult;
};

static const struct unit duration_units[] = {
    {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000},
    {"h", 3600000}, {"d", 86400000},
};

static const struct unit size_units[] = {
    {"", 1}, {"B", 1},
    {"K", 1024}, {"KiB", 1024}, {"KB", 1000},
    {"M", 1048576}, {"MiB", 1048576}, {"MB", 1000000},
    {"G", 1073741824}, {"GiB", 1073741824}, {"GB", 1000000000},
};

#define NUNITS(t) (sizeof(t) / sizeof((t)[0]))

/* A value too large for anything we compare with (saturates there). */
#define BIG ((unsigned __int128)1 << 100)

/* Reference: leading decimal digits of s[0..n) (saturating at BIG);
 * *nd gets how many there are. */
static unsigned __int128
ref_digits(const char *s, size_t n, size_t *nd)
{
    unsigned __int128 v = 0;
    size_t i;

    for (i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        if (v < BIG)
            v = v * 10 + (unsigned)(s[i] - '0');
    *nd = i;
    return v;
}

/* Reference for "digits unit": 0 with *out, -EINVAL, or -ERANGE. */
static int
ref_unit(const char *s, const struct unit *units, size_t nunits,
         int64_t *out)
{
    size_t nd, i, n = strlen(s);
    unsigned __int128 v = ref_digits(s, n, &nd);

    if (nd == 0)
        return -EINVAL;
    for (i = 0; i < nunits; i++) {
        if (strcmp(s + nd, units[i].name) != 0)
            continue;
        v *= units[i].mult;
        if (v > INT64_MAX)
            return -ERANGE;
        *out = (int64_t)v;
        return 0;
    }
    return -EINVAL;
}

static void
check_unit_parser(const char *what, const char *s,
                  int (*parse)(const char *, int64_t *),
                  const struct unit *units, size_t nunits)
{
    int64_t got = -1, want = -1;
    int rc = parse(s, &got);
    int ref = ref_unit(s, units, nunits, &want);

    FUZZ_CHECK(rc == ref, "%s(\"%s\") returned %d, the grammar says %d",
               what, s, rc, ref);
    if (rc == 0)
        FUZZ_CHECK(got == want, "%s(\"%s\") = %" PRId64 ", expected %"
                   PRId64, what, s, got, want);
}

static void
check_text(const char *s, size_t n, uint64_t max, int64_t lo, int64_t hi)
{
    uint64_t u = 0;
    int64_t i = 0;
    size_t nd;
    unsigned __int128 v;
    int rc, ref;

    check_unit_parser("drv_parse_duration_ms", s, drv_parse_duration_ms,
                      duration_units, NUNITS(duration_units));
    check_unit_parser("drv_parse_size", s, drv_parse_size, size_units,
                      NUNITS(size_units));

    /* drv_parse_uint reads s[0..n), NUL bytes included */
    v = ref_digits(s, n, &nd);
    ref = nd == 0 || nd != n ? -EINVAL : v > max ? -ERANGE : 0;
    rc = drv_parse_uint(s, n, max, &u);
    FUZZ_CHECK(rc == ref, "drv_parse_uint(len %zu, max %" PRIu64
               ") returned %d, expected %d", n, max, rc, ref);
    if (rc == 0)
        FUZZ_CHECK(u == (uint64_t)v, "drv_parse_uint value %" PRIu64, u);

    /* drv_parse_int: -?digits within [lo, hi] */
    {
        int neg = s[0] == '-';
        const char *d = s + neg;
        size_t dn = strlen(d);
        __int128 x;

        v = ref_digits(d, dn, &nd);
        x = neg ? -(__int128)v : (__int128)v;
        ref = nd == 0 || nd != dn ? -EINVAL
              : (x < lo || x > hi) ? -ERANGE : 0;
        rc = drv_parse_int(s, lo, hi, &i);
        FUZZ_CHECK(rc == ref, "drv_parse_int(\"%s\", %" PRId64 ", %" PRId64
                   ") returned %d, expected %d", s, lo, hi, rc, ref);
        if (rc == 0)
            FUZZ_CHECK(i == (int64_t)x, "drv_parse_int(\"%s\") = %" PRId64,
                       s, i);
    }
}

/* parse(format(x)) == x for every unit x is a multiple of. */
static void
round_trip_units(const char *what, int (*parse)(const char *, int64_t *),
                 const struct unit *units, size_t nunits, uint64_t raw)
{
    char text[64];
    size_t i;

    for (i = 0; i < nunits; i++) {
        uint64_t v = raw % ((uint64_t)INT64_MAX / units[i].mult + 1);
        int64_t want = (int64_t)(v * units[i].mult), got = -1;
        int rc;

        snprintf(text, sizeof text, "%" PRIu64 "%s", v, units[i].name);
        rc = parse(text, &got);
        FUZZ_CHECK(rc == 0 && got == want, "%s(\"%s\") = %d, %" PRId64
                   " (expected %" PRId64 ")", what, text, rc, got, want);
    }
}

static void
round_trip(struct fuzz_in *in)
{
    uint64_t raw = fuzz_u64(in);
    int64_t x = (int64_t)fuzz_u64(in), got = 0;
    uint64_t u = 0;
    char text[64];
    int len, rc;

    round_trip_units("drv_parse_duration_ms", drv_parse_duration_ms,
                     duration_units, NUNITS(duration_units), raw);
    round_trip_units("drv_parse_size", drv_parse_size, size_units,
                     NUNITS(size_units), raw);

    len = snprintf(text, sizeof text, "%" PRIu64, raw);
    rc = drv_parse_uint(text, (size_t)len, UINT64_MAX, &u);
    FUZZ_CHECK(rc == 0 && u == raw, "drv_parse_uint(\"%s\") = %d", text, rc);
    rc = drv_parse_uint(text, (size_t)len, raw, &u);
    FUZZ_CHECK(rc == 0 && u == raw, "drv_parse_uint(\"%s\", max itself)",
               text);
    if (raw > 0)
        FUZZ_CHECK(drv_parse_uint(text, (size_t)len, raw - 1, &u) ==
                   -ERANGE, "drv_parse_uint(\"%s\", max below)", text);

    snprintf(text, sizeof text, "%" PRId64, x);
    rc = drv_parse_int(text, INT64_MIN, INT64_MAX, &got);
    FUZZ_CHECK(rc == 0 && got == x, "drv_parse_int(\"%s\") = %d, %" PRId64,
               text, rc, got);
    rc = drv_parse_int(text, x, x, &got);
    FUZZ_CHECK(rc == 0 && got == x, "drv_parse_int(\"%s\", [x, x]) = %d",
               text, rc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    uint8_t mode = fuzz_byte(&in);

    if (mode & 1) {
        round_trip(&in);
    } else {
        /* the bounds come from the mode byte, so they vary cheaply */
        static const uint64_t maxes[] = {UINT64_MAX, UINT32_MAX, 65535, 0,
                                         1000000, (uint64_t)INT64_MAX, 9, 10};
        static const int64_t los[] = {INT64_MIN, 0, -1, INT32_MIN};
        static const int64_t his[] = {INT64_MAX, 0, 65535, INT32_MAX};
        char *s = fuzz_strndup((const char *)in.p, in.n);

        check_text(s, in.n, maxes[(mode >> 1) & 7], los[(mode >> 4) & 3],
                   his[(mode >> 6) & 3]);
        free(s);
    }
    return 0;
}
