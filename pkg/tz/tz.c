/*
 * tz.c -- a TZif reader (RFC 8536) and POSIX TZ rules, without touching
 * the process's own time zone.
 *
 * DESIGN
 * A zone is the file's transitions (sorted instants, each with the type
 * in force from it on), its types (offset only: drover needs no
 * abbreviations) and the footer's rule. An offset is looked up by binary
 * search among the transitions; from the last transition on, the rule
 * decides (its two yearly changes are computed for the years around the
 * instant, so a rule-only zone costs a few calendar calculations per
 * lookup). Before the first transition the first type holds (RFC 8536,
 * section 3.2). Everything is read into one object at load; it never
 * changes after, so lookups need no lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drover/common.h"
#include "drover/tz.h"

#define SECS_PER_DAY INT64_C(86400)
#define SECS_PER_HOUR 3600
/* TZif offsets lie in (-2^31, 2^31); real ones within a day or so. */
#define OFFSET_LIMIT (26 * SECS_PER_HOUR)
/* Rule times may run from -167h to 167h (TZif version 3). */
#define RULE_TIME_LIMIT (167 * SECS_PER_HOUR)
/* The default time of day of a rule change: 02:00. */
#define RULE_TIME_DEFAULT (2 * SECS_PER_HOUR)
#define HEADER_LEN 44

/* One yearly change of a POSIX rule. */
struct rule_date {
    char kind;          /* 'J' (1..365, no Feb 29), 'D' (0..365), 'M' */
    int day;            /* J, D: the day; M: the weekday 0..6 */
    int week;           /* M: 1..5 (5 = last) */
    int month;          /* M: 1..12 */
    int32_t time;       /* seconds after local midnight */
};

/* The footer: standard offset, and DST with its two changes if any. */
struct rule {
    int present;        /* a footer rule was given */
    int32_t std_off;    /* seconds east of UTC */
    int has_dst;        /* the zone observes DST under this rule */
    int32_t dst_off;
    struct rule_date start, end;
};

struct drv_tz {
    unsigned magic;
#define DRV_TZ_MAGIC 0x7a7a7a01U
    char *name;             /* owned */
    int64_t *trans;         /* owned: transition instants, ascending */
    uint8_t *trans_type;    /* owned: type index per transition */
    size_t ntrans;
    int32_t *type_off;      /* owned: offset of each type */
    size_t ntypes;          /* >= 1 */
    struct rule rule;       /* from the footer */
    int32_t min_off, max_off;
};

/* ------------------------------------------------------ civil calendar */

/* Days from civil and back: H. Hinnant's algorithms (public domain),
 * exact over the whole int64 range used here. */
int64_t
drv_tz_days_from_civil(int64_t y, int m, int d)
{
    int64_t era;
    int64_t yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void
drv_tz_civil(int64_t s, struct drv_tz_civil *c)
{
    int64_t z = s >= 0 ? s / SECS_PER_DAY
                       : -((-s + SECS_PER_DAY - 1) / SECS_PER_DAY);
    int64_t sod = s - z * SECS_PER_DAY;
    int64_t era, doe, yoe, doy, mp;

    c->wday = (int)((z % 7 + 11) % 7);  /* 1970-01-01 was a Thursday */
    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    c->day = (int)(doy - (153 * mp + 2) / 5 + 1);
    c->month = (int)(mp < 10 ? mp + 3 : mp - 9);
    c->year = yoe + era * 400 + (c->month <= 2);
    c->hour = (int)(sod / SECS_PER_HOUR);
    c->minute = (int)(sod / 60 % 60);
    c->second = (int)(sod % 60);
}

static int
is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int
drv_tz_month_days(int64_t y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31};

    return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* ------------------------------------------------------------ rules */

/* The day (days since 1970) on which d falls in year y. */
static int64_t
rule_day(const struct rule_date *d, int64_t y)
{
    int64_t jan1 = drv_tz_days_from_civil(y, 1, 1);
    int64_t first, day;
    int wd1, mdays;

    if (d->kind == 'J')
        return jan1 + d->day - 1 + (is_leap(y) && d->day >= 60);
    if (d->kind == 'D')
        return jan1 + d->day;
    first = drv_tz_days_from_civil(y, d->month, 1);
    wd1 = (int)(((first % 7) + 11) % 7);
    day = first + (d->day - wd1 + 7) % 7 + 7 * (d->week - 1);
    mdays = drv_tz_month_days(y, d->month);
    while (day >= first + mdays)
        day -= 7;
    return day;
}

/* The rule's changes of years y-1 .. y+1, in time order: instants into
 * at[], the offset from each on into off[]. Returns how many (6). An end
 * and a start at the same instant (DST all year) keep the start last. */
static int
rule_changes(const struct rule *r, int64_t y, int64_t at[6], int32_t off[6])
{
    int n = 0;
    int64_t k;
    int i, j;

    for (k = y - 1; k <= y + 1; k++) {
        at[n] = rule_day(&r->end, k) * SECS_PER_DAY + r->end.time -
                r->dst_off;
        off[n++] = r->std_off;
        at[n] = rule_day(&r->start, k) * SECS_PER_DAY + r->start.time -
                r->std_off;
        off[n++] = r->dst_off;
    }
    /* insertion sort, stable: six entries */
    for (i = 1; i < n; i++) {
        int64_t a = at[i];
        int32_t o = off[i];

        for (j = i; j > 0 && at[j - 1] > a; j--) {
            at[j] = at[j - 1];
            off[j] = off[j - 1];
        }
        at[j] = a;
        off[j] = o;
    }
    return n;
}

/* The rule's offset at t and its next change after t. */
static int32_t
rule_offset(const struct rule *r, int64_t t, int64_t *next)
{
    struct drv_tz_civil c;
    int64_t at[6];
    int32_t off[6];
    int32_t cur = r->std_off;
    int n, i;

    *next = INT64_MAX;
    if (!r->has_dst)
        return r->std_off;
    drv_tz_civil(t + r->std_off, &c);
    n = rule_changes(r, c.year, at, off);
    /* before the first change of year-1 the end of year-2 holds: std
     * unless the start of year-2 came after its end (southern zones) */
    if (rule_day(&r->start, c.year - 2) * SECS_PER_DAY + r->start.time -
            r->std_off >
        rule_day(&r->end, c.year - 2) * SECS_PER_DAY + r->end.time -
            r->dst_off)
        cur = r->dst_off;
    for (i = 0; i < n; i++) {
        if (at[i] > t) {
            *next = at[i];
            break;
        }
        cur = off[i];
    }
    return cur;
}

/* ------------------------------------------------- POSIX TZ strings */

/* Parse [+-]hh[:mm[:ss]] at *p into *secs (hours up to max_h). */
static int
parse_hms(const char **p, int max_h, int32_t *secs)
{
    const char *s = *p;
    int sign = 1;
    int32_t v = 0;
    int part, k;

    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    for (part = 0; part < 3; part++) {
        int n = 0;

        if (part > 0) {
            if (*s != ':')
                break;
            s++;
        }
        if (*s < '0' || *s > '9')
            return -EINVAL;
        for (k = 0; *s >= '0' && *s <= '9' && k < 3; k++)
            n = n * 10 + (*s++ - '0');
        if ((part == 0 && n > max_h) || (part > 0 && n > 59))
            return -EINVAL;
        v += n * (part == 0 ? SECS_PER_HOUR : part == 1 ? 60 : 1);
    }
    *secs = sign * v;
    *p = s;
    return 0;
}

/* A zone abbreviation: 3+ letters, or <...> of letters, digits, + and -. */
static int
parse_abbr(const char **p)
{
    const char *s = *p;
    size_t n = 0;

    if (*s == '<') {
        for (s++; *s != '>'; s++, n++)
            if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
                  (*s >= '0' && *s <= '9') || *s == '+' || *s == '-'))
                return -EINVAL;
        s++;
    } else {
        for (; (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'); s++)
            n++;
    }
    if (n < 3)
        return -EINVAL;
    *p = s;
    return 0;
}

static int
parse_num(const char **p, int lo, int hi, int *out)
{
    const char *s = *p;
    int n = 0, k;

    if (*s < '0' || *s > '9')
        return -EINVAL;
    for (k = 0; *s >= '0' && *s <= '9' && k < 4; k++)
        n = n * 10 + (*s++ - '0');
    if (n < lo || n > hi)
        return -EINVAL;
    *out = n;
    *p = s;
    return 0;
}

/* ",Jn[/time]" / ",n[/time]" / ",Mm.w.d[/time]" at *p. */
static int
parse_rule_date(const char **p, struct rule_date *d)
{
    const char *s = *p;

    if (*s++ != ',')
        return -EINVAL;
    if (*s == 'J') {
        s++;
        d->kind = 'J';
        if (parse_num(&s, 1, 365, &d->day) < 0)
            return -EINVAL;
    } else if (*s == 'M') {
        s++;
        d->kind = 'M';
        if (parse_num(&s, 1, 12, &d->month) < 0 || *s++ != '.' ||
            parse_num(&s, 1, 5, &d->week) < 0 || *s++ != '.' ||
            parse_num(&s, 0, 6, &d->day) < 0)
            return -EINVAL;
    } else {
        d->kind = 'D';
        if (parse_num(&s, 0, 365, &d->day) < 0)
            return -EINVAL;
    }
    d->time = RULE_TIME_DEFAULT;
    if (*s == '/') {
        s++;
        if (parse_hms(&s, RULE_TIME_LIMIT / SECS_PER_HOUR, &d->time) < 0)
            return -EINVAL;
    }
    *p = s;
    return 0;
}

/* Parse a footer such as "CET-1CEST,M3.5.0,M10.5.0/3" into *r. */
static int
parse_rule(const char *s, struct rule *r)
{
    int32_t v = 0;

    memset(r, 0, sizeof *r);
    if (parse_abbr(&s) < 0 || parse_hms(&s, 24, &v) < 0)
        return -EINVAL;
    r->std_off = -v;        /* POSIX counts west of UTC */
    r->present = 1;
    if (*s == '\0')
        return 0;
    if (parse_abbr(&s) < 0)
        return -EINVAL;
    r->has_dst = 1;
    r->dst_off = r->std_off + SECS_PER_HOUR;
    if (*s != ',' && *s != '\0') {
        if (parse_hms(&s, 24, &v) < 0)
            return -EINVAL;
        r->dst_off = -v;
    }
    if (*s == '\0') {
        /* no rule given: the US rule POSIX implementations assume */
        r->start = (struct rule_date){'M', 0, 2, 3, RULE_TIME_DEFAULT};
        r->end = (struct rule_date){'M', 0, 1, 11, RULE_TIME_DEFAULT};
        return 0;
    }
    if (parse_rule_date(&s, &r->start) < 0 ||
        parse_rule_date(&s, &r->end) < 0 || *s != '\0')
        return -EINVAL;
    return 0;
}

/* ------------------------------------------------------------- TZif */

static uint32_t
be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

static int64_t
be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* The counts of one TZif header. */
struct counts {
    uint32_t isut, isstd, leap, time, type, chr;
};

static int
read_header(const unsigned char *p, size_t len, struct counts *c,
            int *version)
{
    if (len < HEADER_LEN || memcmp(p, "TZif", 4) != 0)
        return -EINVAL;
    *version = p[4] == 0 ? 1 : p[4] - '0';
    c->isut = be32(p + 20);
    c->isstd = be32(p + 24);
    c->leap = be32(p + 28);
    c->time = be32(p + 32);
    c->type = be32(p + 36);
    c->chr = be32(p + 40);
    if (*version < 1 || *version > 9 || c->type == 0 || c->type > 256 ||
        c->time > 100000 || c->chr > 100000 || c->leap > 100000 ||
        (c->isut != 0 && c->isut != c->type) ||
        (c->isstd != 0 && c->isstd != c->type))
        return -EINVAL;
    return 0;
}

/* Bytes of the data block after a header, with tsize-byte times. */
static size_t
block_len(const struct counts *c, size_t tsize)
{
    return (size_t)c->time * (tsize + 1) + (size_t)c->type * 6 + c->chr +
           (size_t)c->leap * (tsize + 4) + c->isstd + c->isut;
}

static void
tz_free_parts(struct drv_tz *tz)
{
    free(tz->name);
    free(tz->trans);
    free(tz->trans_type);
    free(tz->type_off);
}

void
drv_tz_free(struct drv_tz *tz)
{
    if (DRV_NO_OBJ(tz, DRV_TZ_MAGIC))
        return;
    tz_free_parts(tz);
    DRV_FREE_OBJ(tz);
}

static void
set_range(struct drv_tz *tz)
{
    size_t i;

    tz->min_off = tz->max_off = tz->type_off[0];
    for (i = 1; i < tz->ntypes; i++) {
        if (tz->type_off[i] < tz->min_off)
            tz->min_off = tz->type_off[i];
        if (tz->type_off[i] > tz->max_off)
            tz->max_off = tz->type_off[i];
    }
    if (tz->rule.present) {
        int32_t o[2] = {tz->rule.std_off,
                        tz->rule.has_dst ? tz->rule.dst_off
                                         : tz->rule.std_off};

        for (i = 0; i < 2; i++) {
            if (o[i] < tz->min_off)
                tz->min_off = o[i];
            if (o[i] > tz->max_off)
                tz->max_off = o[i];
        }
    }
}

/* UTC as a zone with one type and no transitions. */
static struct drv_tz *
tz_utc(const char *name)
{
    struct drv_tz *tz = NULL;

    DRV_ALLOC_OBJ(tz, DRV_TZ_MAGIC);
    tz->name = drv_xstrdup(name);
    tz->type_off = drv_xcalloc(1, sizeof *tz->type_off);
    tz->ntypes = 1;
    set_range(tz);
    return tz;
}

int
drv_tz_parse(const char *name, const unsigned char *data, size_t len,
             struct drv_tz **out, struct drv_err *err)
{
    struct drv_tz *tz = NULL;
    struct counts c;
    const unsigned char *p = data;
    size_t tsize = 4, need, i;
    int version = 0;

    *out = NULL;
    if (read_header(p, len, &c, &version) < 0)
        return drv_err_set(err, DRV_EPROTO, "not a TZif file");
    if (version >= 2) {
        /* skip the 32-bit block: the 64-bit one follows */
        need = HEADER_LEN + block_len(&c, 4);
        if (len < need || read_header(p + need, len - need, &c,
                                      &version) < 0)
            return drv_err_set(err, DRV_EPROTO, "truncated TZif file");
        p += need + HEADER_LEN;
        len -= need + HEADER_LEN;
        tsize = 8;
    } else {
        p += HEADER_LEN;
        len -= HEADER_LEN;
    }
    if (c.leap != 0)
        return drv_err_set(err, DRV_EPROTO, "zone counts leap seconds "
                           "(a right/ zone); Unix time does not");
    need = block_len(&c, tsize);
    if (len < need)
        return drv_err_set(err, DRV_EPROTO, "truncated TZif file");

    DRV_ALLOC_OBJ(tz, DRV_TZ_MAGIC);
    tz->name = drv_xstrdup(name);
    tz->ntrans = c.time;
    tz->ntypes = c.type;
    tz->trans = drv_xcalloc(c.time ? c.time : 1, sizeof *tz->trans);
    tz->trans_type = drv_xcalloc(c.time ? c.time : 1, 1);
    tz->type_off = drv_xcalloc(c.type, sizeof *tz->type_off);
    for (i = 0; i < c.time; i++) {
        tz->trans[i] = tsize == 8 ? be64(p + i * 8)
                                  : (int64_t)(int32_t)be32(p + i * 4);
        if (i > 0 && tz->trans[i] <= tz->trans[i - 1])
            goto bad;
    }
    p += (size_t)c.time * tsize;
    for (i = 0; i < c.time; i++) {
        tz->trans_type[i] = p[i];
        if (p[i] >= c.type)
            goto bad;
    }
    p += c.time;
    for (i = 0; i < c.type; i++) {
        int32_t off = (int32_t)be32(p + i * 6);

        if (off <= -OFFSET_LIMIT || off >= OFFSET_LIMIT || p[i * 6 + 4] > 1)
            goto bad;
        tz->type_off[i] = off;
    }
    p += (size_t)c.type * 6;
    p += need - (size_t)c.time * (tsize + 1) - (size_t)c.type * 6;
    len -= need;
    /* the footer: "\nRULE\n" (version 2+) */
    if (version >= 2 && len >= 2 && p[0] == '\n') {
        const unsigned char *nl = memchr(p + 1, '\n', len - 1);
        char rule[128];
        size_t n;

        if (nl == NULL)
            goto bad;
        n = (size_t)(nl - p - 1);
        if (n >= sizeof rule)
            goto bad;
        memcpy(rule, p + 1, n);
        rule[n] = '\0';
        if (n > 0 && parse_rule(rule, &tz->rule) < 0) {
            drv_tz_free(tz);
            return drv_err_set(err, DRV_EPROTO, "TZif footer \"%s\" is "
                               "not a POSIX TZ rule drover can read", rule);
        }
        if (tz->rule.present &&
            (tz->rule.std_off <= -OFFSET_LIMIT ||
             tz->rule.std_off >= OFFSET_LIMIT ||
             tz->rule.dst_off <= -OFFSET_LIMIT ||
             tz->rule.dst_off >= OFFSET_LIMIT))
            goto bad;
    }
    set_range(tz);
    *out = tz;
    return 0;
bad:
    drv_tz_free(tz);
    return drv_err_set(err, DRV_EPROTO, "malformed TZif file");
}

/* ------------------------------------------------------------- load */

/* A zone name: relative, no "." or ".." part, [A-Za-z0-9/_+-.] only. */
static int
name_ok(const char *name)
{
    const char *p;

    if (name[0] == '\0' || name[0] == '/' || strlen(name) > 200)
        return 0;
    for (p = name; *p != '\0'; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
              (*p >= '0' && *p <= '9') || strchr("/_+-.", *p) != NULL))
            return 0;
    for (p = name; p != NULL; p = strchr(p, '/')) {
        if (*p == '/')
            p++;
        if (*p == '.' || *p == '/' || *p == '\0')
            return 0;   /* ".", "..", ".hidden", "a//b", "a/" */
    }
    return 1;
}

int
drv_tz_load(const char *name, struct drv_tz **out, struct drv_err *err)
{
    const char *dir = getenv("TZDIR");
    unsigned char *buf = NULL;
    char path[512];
    struct stat st;
    ssize_t got = 0;
    size_t n = 0;
    int fd = -1;
    int rc;

    *out = NULL;
    if (name == NULL || !name_ok(name))
        return drv_err_set(err, -EINVAL, "not a time zone name (use an "
                           "IANA name such as Europe/Berlin or UTC)");
    if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0) {
        *out = tz_utc(name);
        return 0;
    }
    if (dir == NULL || dir[0] == '\0')
        dir = DRV_TZ_DIR;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        rc = drv_err_set(err, -ENOENT, "unknown time zone (no file %s; "
                         "is the tzdata package installed?)", path);
        goto out;
    }
    if (st.st_size > DRV_TZ_FILE_MAX) {
        rc = drv_err_set(err, DRV_EPROTO, "%s is too large for a zone "
                         "file", path);
        goto out;
    }
    buf = drv_xmalloc((size_t)st.st_size + 1);
    while (n < (size_t)st.st_size) {
        got = read(fd, buf + n, (size_t)st.st_size - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        n += (size_t)got;
    }
    rc = drv_tz_parse(name, buf, n, out, err);
    if (rc < 0) {
        char why[DRV_ERR_MSG_MAX];

        snprintf(why, sizeof why, "%s", err != NULL ? err->msg : "");
        drv_err_set(err, rc, "%s: %s", path, why);
    }
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* ----------------------------------------------------------- lookup */

const char *
drv_tz_name(const struct drv_tz *tz)
{
    DRV_CHECK_OBJ(tz, DRV_TZ_MAGIC);
    return tz->name;
}

void
drv_tz_offset_range(const struct drv_tz *tz, int32_t *min, int32_t *max)
{
    DRV_CHECK_OBJ(tz, DRV_TZ_MAGIC);
    *min = tz->min_off;
    *max = tz->max_off;
}

int32_t
drv_tz_offset(const struct drv_tz *tz, int64_t t, int64_t *next)
{
    int64_t nx = INT64_MAX;
    int32_t off;
    size_t lo, hi;

    DRV_CHECK_OBJ(tz, DRV_TZ_MAGIC);
    if (tz->ntrans > 0 && t < tz->trans[0]) {
        off = tz->type_off[0];
        nx = tz->trans[0];
    } else if (tz->ntrans == 0 ||
               t >= tz->trans[tz->ntrans - 1]) {
        if (tz->rule.present)
            off = rule_offset(&tz->rule, t, &nx);
        else
            off = tz->type_off[tz->ntrans > 0
                                   ? tz->trans_type[tz->ntrans - 1] : 0];
    } else {
        /* trans[lo] <= t < trans[hi] */
        lo = 0;
        hi = tz->ntrans - 1;
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;

            if (tz->trans[mid] <= t)
                lo = mid;
            else
                hi = mid;
        }
        off = tz->type_off[tz->trans_type[lo]];
        nx = tz->trans[hi];
    }
    if (next != NULL)
        *next = nx;
    return off;
}
