/*
 * metrics.c -- the registry and its rendering in the Prometheus text
 * format 0.0.4.
 *
 * DESIGN
 * A family holds its series in a list; a series keeps its label pairs
 * already rendered (`queue="a",job="b"`), so rendering is mostly memcpy:
 * a scrape of thousands of series costs well under a millisecond.
 * Integral values (every counter of events, every bucket count) are
 * written with a small integer formatter; only fractional values go
 * through snprintf (the shortest form that reads back exactly).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/buf.h"
#include "drover/common.h"
#include "drover/metrics.h"

struct drv_metrics_family {
    unsigned magic;
#define FAMILY_MAGIC 0xfa3117faU
    char *name;                          /* owned */
    char *help;                          /* owned */
    enum drv_metrics_type type;
    char *labels[DRV_METRICS_LABELS_MAX]; /* owned: label names */
    size_t nlabels;
    double buckets[DRV_METRICS_BUCKETS_MAX]; /* upper bounds */
    char *le[DRV_METRICS_BUCKETS_MAX + 1];   /* owned: `le="0.5"`, +Inf */
    size_t nbuckets;
    struct drv_metrics_series *series;   /* owned: list head */
    struct drv_metrics_series **tail;    /* where the next one links */
    struct drv_metrics_family *next;     /* owned by the registry list */
};

struct drv_metrics {
    unsigned magic;
#define DRV_METRICS_MAGIC 0x3e7c3e7cU
    struct drv_metrics_family *families; /* owned: list, in add order */
    struct drv_metrics_family **tail;
};

/* ------------------------------------------------------------- names */

static int
name_ok(const char *s, int colon)
{
    size_t i;

    if (s == NULL || s[0] == '\0' || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (i = 0; s[i] != '\0'; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || (colon && c == ':')))
            return 0;
    }
    return 1;
}

/* ---------------------------------------------------------- registry */

struct drv_metrics *
drv_metrics_create(void)
{
    struct drv_metrics *m;

    DRV_ALLOC_OBJ(m, DRV_METRICS_MAGIC);
    m->tail = &m->families;
    return m;
}

static void
family_free(struct drv_metrics_family *f)
{
    struct drv_metrics_series *s, *sn;
    size_t i;

    for (s = f->series; s != NULL; s = sn) {
        sn = s->_next;
        free(s->_buckets);
        free(s->_labels);
        DRV_FREE_OBJ(s);
    }
    for (i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    for (i = 0; i <= f->nbuckets; i++)
        free(f->le[i]);
    free(f->name);
    free(f->help);
    DRV_FREE_OBJ(f);
}

void
drv_metrics_free(struct drv_metrics *m)
{
    struct drv_metrics_family *f, *fn;

    if (DRV_NO_OBJ(m, DRV_METRICS_MAGIC))
        return;
    for (f = m->families; f != NULL; f = fn) {
        fn = f->next;
        family_free(f);
    }
    DRV_FREE_OBJ(m);
}

/* A double as Prometheus reads it: integers plainly, +Inf, -Inf, NaN,
 * else the shortest of "%.15g" .. "%.17g" that reads back exactly. Returns the length written into buf
 * (at least 32 bytes). */
static size_t
fmt_double(char *buf, double v)
{
    int prec, n;

    if (isnan(v))
        return (size_t)snprintf(buf, 32, "NaN");
    if (isinf(v))
        return (size_t)snprintf(buf, 32, v > 0 ? "+Inf" : "-Inf");
    if (v == floor(v) && fabs(v) < 9007199254740992.0) /* 2^53 */
        return (size_t)snprintf(buf, 32, "%lld", (long long)v);
    for (prec = 15; prec < 17; prec++) {
        /* the shortest form that reads back exactly */
        n = snprintf(buf, 32, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return (size_t)n;
    }
    return (size_t)snprintf(buf, 32, "%.17g", v);
}

struct drv_metrics_family *
drv_metrics_family_add(struct drv_metrics *m, const char *name,
                       const char *help, enum drv_metrics_type type,
                       const char *const *labels, const double *buckets,
                       size_t nbuckets)
{
    struct drv_metrics_family *f;
    char num[32];
    size_t i;

    DRV_CHECK_OBJ(m, DRV_METRICS_MAGIC);
    DRV_ASSERT(name_ok(name, 1));
    DRV_ASSERT(nbuckets <= DRV_METRICS_BUCKETS_MAX);
    DRV_ASSERT(type == DRV_METRICS_HISTOGRAM || nbuckets == 0);
    DRV_ALLOC_OBJ(f, FAMILY_MAGIC);
    f->name = drv_xstrdup(name);
    f->help = drv_xstrdup(help != NULL ? help : "");
    f->type = type;
    for (i = 0; labels != NULL && labels[i] != NULL; i++) {
        DRV_ASSERT(i < DRV_METRICS_LABELS_MAX);
        DRV_ASSERT(name_ok(labels[i], 0) && strcmp(labels[i], "le") != 0);
        f->labels[i] = drv_xstrdup(labels[i]);
    }
    f->nlabels = i;
    for (i = 0; i < nbuckets; i++) {
        DRV_ASSERT(i == 0 || buckets[i] > buckets[i - 1]);
        f->buckets[i] = buckets[i];
        fmt_double(num, buckets[i]);
        f->le[i] = drv_xmalloc(strlen(num) + 8);
        sprintf(f->le[i], "le=\"%s\"", num);
    }
    f->nbuckets = nbuckets;
    f->le[nbuckets] = drv_xstrdup("le=\"+Inf\"");
    f->tail = &f->series;
    *m->tail = f;
    m->tail = &f->next;
    return f;
}

/* A label value with \, " and newline escaped. */
static void
add_label_value(struct drv_buf *b, const char *v)
{
    const char *p;

    for (p = v; *p != '\0'; p++) {
        if (*p == '\\')
            drv_buf_add(b, "\\\\", 2);
        else if (*p == '"')
            drv_buf_add(b, "\\\"", 2);
        else if (*p == '\n')
            drv_buf_add(b, "\\n", 2);
        else
            drv_buf_add(b, p, 1);
    }
}

struct drv_metrics_series *
drv_metrics_series_add(struct drv_metrics_family *f,
                       const char *const *values)
{
    struct drv_metrics_series *s;
    struct drv_buf b;
    size_t i;

    DRV_CHECK_OBJ(f, FAMILY_MAGIC);
    DRV_ALLOC_OBJ(s, DRV_METRICS_SERIES_MAGIC);
    s->_family = f;
    if (f->type == DRV_METRICS_HISTOGRAM)
        s->_buckets = drv_xcalloc(f->nbuckets + 1, sizeof *s->_buckets);
    drv_buf_init(&b);
    for (i = 0; i < f->nlabels; i++) {
        if (i > 0)
            drv_buf_add(&b, ",", 1);
        drv_buf_adds(&b, f->labels[i]);
        drv_buf_add(&b, "=\"", 2);
        add_label_value(&b, values[i] != NULL ? values[i] : "");
        drv_buf_add(&b, "\"", 1);
    }
    s->_labels = drv_buf_take(&b, &s->_labels_len);
    if (s->_labels == NULL)
        s->_labels = drv_xstrdup("");
    *f->tail = s;
    f->tail = &s->_next;
    return s;
}

void
drv_metrics_observe(struct drv_metrics_series *s, double v)
{
    const struct drv_metrics_family *f = s->_family;
    size_t i = 0;

    /* linear: a dozen or two bounds, the small ones hit first */
    while (i < f->nbuckets && v > f->buckets[i])
        i++;
    s->_buckets[i]++;
    s->_count++;
    s->_value += v;
}

/* ----------------------------------------------------------- render */

static const char *const type_names[] = {"counter", "gauge", "histogram"};

/* Append an unsigned integer without printf. */
static void
add_u64(struct drv_buf *b, uint64_t v)
{
    char tmp[24];
    size_t n = sizeof tmp;

    do {
        tmp[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    drv_buf_add(b, tmp + n, sizeof tmp - n);
}

static void
add_double(struct drv_buf *b, double v)
{
    char num[32];

    if (v >= 0 && v == floor(v) && v < 9007199254740992.0) {
        add_u64(b, (uint64_t)v);
        return;
    }
    drv_buf_add(b, num, fmt_double(num, v));
}

/* HELP text: \ and newline escaped. */
static void
add_help(struct drv_buf *b, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            drv_buf_add(b, "\\\\", 2);
        else if (*s == '\n')
            drv_buf_add(b, "\\n", 2);
        else
            drv_buf_add(b, s, 1);
    }
}

/* NAME[SUFFIX]{LABELS[,EXTRA]} */
static void
add_head(struct drv_buf *b, const struct drv_metrics_family *f,
         const char *suffix, size_t suffix_len,
         const struct drv_metrics_series *s, const char *extra)
{
    int any = s->_labels_len > 0 || extra != NULL;

    drv_buf_adds(b, f->name);
    drv_buf_add(b, suffix, suffix_len);
    if (any)
        drv_buf_add(b, "{", 1);
    drv_buf_add(b, s->_labels, s->_labels_len);
    if (extra != NULL) {
        if (s->_labels_len > 0)
            drv_buf_add(b, ",", 1);
        drv_buf_adds(b, extra);
    }
    drv_buf_add(b, any ? "} " : " ", any ? 2 : 1);
}

static void
render_histogram(struct drv_buf *b, const struct drv_metrics_family *f,
                 const struct drv_metrics_series *s)
{
    uint64_t cum = 0;
    size_t i;

    for (i = 0; i <= f->nbuckets; i++) {
        cum += s->_buckets[i];
        add_head(b, f, "_bucket", 7, s, f->le[i]);
        add_u64(b, cum);
        drv_buf_add(b, "\n", 1);
    }
    add_head(b, f, "_sum", 4, s, NULL);
    add_double(b, s->_value);
    drv_buf_add(b, "\n", 1);
    add_head(b, f, "_count", 6, s, NULL);
    add_u64(b, s->_count);
    drv_buf_add(b, "\n", 1);
}

void
drv_metrics_render(const struct drv_metrics *m, struct drv_buf *out)
{
    const struct drv_metrics_family *f;
    const struct drv_metrics_series *s;

    DRV_CHECK_OBJ(m, DRV_METRICS_MAGIC);
    for (f = m->families; f != NULL; f = f->next) {
        drv_buf_add(out, "# HELP ", 7);
        drv_buf_adds(out, f->name);
        if (f->help[0] != '\0') {
            drv_buf_add(out, " ", 1);
            add_help(out, f->help);
        }
        drv_buf_add(out, "\n# TYPE ", 8);
        drv_buf_adds(out, f->name);
        drv_buf_add(out, " ", 1);
        drv_buf_adds(out, type_names[f->type]);
        drv_buf_add(out, "\n", 1);
        for (s = f->series; s != NULL; s = s->_next) {
            if (f->type == DRV_METRICS_HISTOGRAM) {
                if (s->_count > 0)
                    render_histogram(out, f, s);
                continue;
            }
            add_head(out, f, "", 0, s, NULL);
            add_double(out, s->_value);
            drv_buf_add(out, "\n", 1);
        }
    }
}
