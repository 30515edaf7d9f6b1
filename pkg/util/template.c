/*
 * template.c -- `{field}` templates: syntax check and expansion.
 *
 * One scanner (walk) serves both: it splits the template into literal
 * spans and field names; drv_template_check passes no sink, so nothing is
 * looked up or copied, drv_template_expand a sink that appends to a
 * drv_buf.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "drover/buf.h"
#include "drover/common.h"
#include "drover/error.h"
#include "drover/template.h"

/* Longest field name quoted in an error message (the rest is cut). */
#define NAME_SHOWN_MAX 64

/* What walk() hands each piece to; NULL sink = syntax check only. */
struct sink {
    unsigned flags;                 /* DRV_TEMPLATE_* */
    drv_template_lookup_fn *lookup; /* field values */
    void *ctx;                      /* borrowed: lookup's ctx */
    struct drv_buf out;             /* the expansion so far */
};

static int
is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

/* Append s[0..n) percent-encoded (RFC 3986: all but unreserved). */
static void
add_escaped(struct drv_buf *b, const char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t run = i;

        while (run < n && is_unreserved((unsigned char)s[run]))
            run++;
        drv_buf_add(b, s + i, run - i);
        if (run < n)
            drv_buf_addf(b, "%%%02X", (unsigned char)s[run++]);
        i = run;
    }
}

/* ------------------------------------------------------------- fields */

static int
put_field(struct sink *s, const char *name, size_t name_len,
          struct drv_err *err)
{
    const char *value = NULL;
    size_t value_len = 0;
    int shown = (int)(name_len < NAME_SHOWN_MAX ? name_len : NAME_SHOWN_MAX);
    int rc;

    rc = s->lookup(name, name_len, &value, &value_len, s->ctx);
    if (rc == -ENOENT)
        return drv_err_set(err, DRV_EBADJOB, "missing field %.*s", shown,
                           name);
    if (rc < 0)
        return drv_err_set(err, rc, "field %.*s: %s", shown, name,
                           drv_strerror(rc));
    if ((s->flags & DRV_TEMPLATE_NO_NUL) && value_len > 0 &&
        memchr(value, '\0', value_len) != NULL)
        return drv_err_set(err, DRV_EBADJOB, "field %.*s holds a NUL byte",
                           shown, name);
    if (s->flags & DRV_TEMPLATE_URL_ESCAPE)
        add_escaped(&s->out, value, value_len);
    else
        drv_buf_add(&s->out, value, value_len);
    return 0;
}

/*
 * walk -- scan tmpl; with a sink, append literals and field values to
 * sink->out. Returns 0 or a negative code with err filled.
 */
static int
walk(const char *tmpl, struct sink *s, struct drv_err *err)
{
    const char *p = tmpl;
    const char *lit = tmpl;   /* start of the pending literal span */
    int rc;

    while (*p != '\0') {
        if (*p != '{' && *p != '}') {
            p++;
            continue;
        }
        if (s != NULL)
            drv_buf_add(&s->out, lit, (size_t)(p - lit));
        if (p[0] == p[1]) {
            /* `{{` or `}}`: the second brace starts the next literal */
            lit = p + 1;
            p += 2;
            continue;
        }
        if (*p == '}')
            return drv_err_set(err, -EINVAL, "unmatched '}' at byte %zu",
                               (size_t)(p - tmpl) + 1);
        {
            const char *name = p + 1;
            size_t n = strcspn(name, "{}");

            if (name[n] == '{')
                return drv_err_set(err, -EINVAL,
                                   "'{' inside a field name at byte %zu",
                                   (size_t)(name + n - tmpl) + 1);
            if (name[n] == '\0')
                return drv_err_set(err, -EINVAL,
                                   "unmatched '{' at byte %zu",
                                   (size_t)(p - tmpl) + 1);
            if (n == 0)
                return drv_err_set(err, -EINVAL,
                                   "empty field name at byte %zu",
                                   (size_t)(p - tmpl) + 1);
            if (s != NULL) {
                rc = put_field(s, name, n, err);
                if (rc < 0)
                    return rc;
            }
            p = name + n + 1;
            lit = p;
        }
    }
    if (s != NULL)
        drv_buf_add(&s->out, lit, (size_t)(p - lit));
    return 0;
}

/* ---------------------------------------------------------------- API */

int
drv_template_check(const char *tmpl, struct drv_err *err)
{
    if (tmpl == NULL)
        return drv_err_set(err, -EINVAL, "no template");
    return walk(tmpl, NULL, err);
}

int
drv_template_expand(const char *tmpl, unsigned flags,
                    drv_template_lookup_fn *lookup, void *ctx, char **out,
                    size_t *out_len, struct drv_err *err)
{
    struct sink s;
    int rc;

    *out = NULL;
    if (out_len != NULL)
        *out_len = 0;
    if (tmpl == NULL || lookup == NULL)
        return drv_err_set(err, -EINVAL, "no template");
    memset(&s, 0, sizeof s);
    s.flags = flags;
    s.lookup = lookup;
    s.ctx = ctx;
    drv_buf_init(&s.out);
    rc = walk(tmpl, &s, err);
    if (rc < 0) {
        drv_buf_fini(&s.out);
        return rc;
    }
    *out = drv_buf_take(&s.out, out_len);
    return 0;
}
