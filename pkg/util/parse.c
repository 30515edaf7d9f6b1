/*
 * parse.c -- strict parsers for durations, sizes and plain integers.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "drover/parse.h"

/* Parse leading digits of s; *end points past them. -ERANGE when they
 * overflow (*end is still set: text after them may be bad, which the
 * caller reports first as -EINVAL). */
static int
digits(const char *s, const char **end, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;
    int rc = 0;

    if (*p < '0' || *p > '9')
        return -EINVAL;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            rc = -ERANGE;
        else
            v = v * 10 + (uint64_t)(*p - '0');
    }
    *end = p;
    *out = v;
    return rc;
}

static int
scale(uint64_t v, uint64_t mult, int64_t *out)
{
    if (mult != 0 && v > (uint64_t)INT64_MAX / mult)
        return -ERANGE;
    *out = (int64_t)(v * mult);
    return 0;
}

/* A unit suffix and what one of it counts. */
struct unit {
    const char *suffix;
    uint64_t mult;
};

/* Digits of s followed by exactly one of the n suffixes of units; the
 * value times that suffix's multiplier into *out. */
static int
with_unit(const char *s, const struct unit *units, size_t n, int64_t *out)
{
    const char *end = NULL;
    uint64_t v = 0;
    size_t i;
    int rc;

    if (s == NULL)
        return -EINVAL;
    rc = digits(s, &end, &v);
    if (rc == -EINVAL)
        return rc;
    for (i = 0; i < n; i++)
        if (strcmp(end, units[i].suffix) == 0)
            return rc < 0 ? rc : scale(v, units[i].mult, out);
    return -EINVAL;
}

int
drv_parse_duration_ms(const char *s, int64_t *out_ms)
{
    static const struct unit units[] = {
        {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000},
        {"h", 3600000}, {"d", 86400000},
    };

    return with_unit(s, units, sizeof units / sizeof units[0], out_ms);
}

int
drv_parse_size(const char *s, int64_t *out)
{
    static const struct unit units[] = {
        {"", 1}, {"B", 1},
        {"K", 1024}, {"KiB", 1024}, {"KB", 1000},
        {"M", 1048576}, {"MiB", 1048576}, {"MB", 1000000},
        {"G", 1073741824}, {"GiB", 1073741824}, {"GB", 1000000000},
    };

    return with_unit(s, units, sizeof units / sizeof units[0], out);
}

/* RFC 9110 tchar: a letter, a digit or one of !#$%&'*+-.^_`|~. */
static int
is_tchar(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
           (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

int
drv_parse_is_token(const char *s)
{
    const char *p;

    if (s == NULL || s[0] == '\0')
        return 0;
    for (p = s; *p != '\0'; p++)
        if (!is_tchar((unsigned char)*p))
            return 0;
    return 1;
}

int
drv_parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    size_t i;
    int over = 0;

    if (s == NULL || len == 0)
        return -EINVAL;
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL; /* bad text wins over a value too large */
        if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
            over = 1;
        else
            v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (over || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

int
drv_parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    uint64_t v = 0;
    int neg = 0;
    int rc;

    if (s == NULL)
        return -EINVAL;
    if (*s == '-') {
        neg = 1;
        s++;
    }
    /* a '-' reaches one further: INT64_MIN is -(INT64_MAX + 1) */
    rc = drv_parse_uint(s, strlen(s), (uint64_t)INT64_MAX + (uint64_t)neg,
                        &v);
    if (rc < 0)
        return rc;
    {
        int64_t x = !neg ? (int64_t)v : v == 0 ? 0 : -(int64_t)(v - 1) - 1;

        if (x < min || x > max)
            return -ERANGE;
        *out = x;
    }
    return 0;
}

int
drv_parse_hostport(const char *s, char *host, size_t hostn, int *port)
{
    const char *colon = strrchr(s, ':'), *h = s;
    int64_t p;
    size_t hl;

    if (colon == NULL || colon == s)
        return -EINVAL;
    hl = (size_t)(colon - s);
    if (s[0] == '[') {
        if (colon[-1] != ']')
            return -EINVAL;
        h = s + 1;
        hl -= 2;
    }
    if (hl == 0 || hl >= hostn ||
        drv_parse_int(colon + 1, 0, 65535, &p) < 0)
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}
