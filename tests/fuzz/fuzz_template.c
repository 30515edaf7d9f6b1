/*
 * fuzz_template.c -- `{field}` templates (drover/template.h).
 *
 * Input: a flags byte, the template up to the first NUL byte, then the
 * fields as name 0x01 value 0x01 name 0x01 value ... (values may hold any
 * byte but 0x01, NUL included).
 *
 * Checked:
 *   - drv_template_expand agrees with a reference expander written here
 *     from the syntax in template.h: same code, same output;
 *   - drv_template_check fails exactly when the syntax is bad, then so
 *     does the expansion (with check's message when it fails on the
 *     syntax), and "at byte N" names a brace;
 *   - lookup is called once per `{name}`, with a name inside the template
 *     holding no brace;
 *   - with DRV_TEMPLATE_URL_ESCAPE every value comes out as unreserved
 *     bytes and %XX only; with DRV_TEMPLATE_NO_NUL a value holding NUL is
 *     DRV_EBADJOB;
 *   - doubling every brace of any text gives a template that expands to
 *     the text itself, without one lookup.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drover/buf.h"
#include "drover/error.h"
#include "drover/template.h"
#include "fuzz.h"

#define MAX_FIELDS 32

struct fields {
    size_t n;
    const char *name[MAX_FIELDS];
    size_t name_len[MAX_FIELDS];
    const char *value[MAX_FIELDS];
    size_t value_len[MAX_FIELDS];
    int fail_missing;           /* 1: a missing field is -EIO, not ENOENT */
    const char *tmpl;           /* the template being expanded */
    size_t tmpl_len;
    size_t calls;               /* lookups made */
};

static int
find(const struct fields *f, const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < f->n; i++)
        if (f->name_len[i] == len && memcmp(f->name[i], name, len) == 0)
            return (int)i;
    return -1;
}

static int
lookup(const char *name, size_t name_len, const char **value,
       size_t *value_len, void *ctx)
{
    struct fields *f = ctx;
    int i;

    f->calls++;
    FUZZ_CHECK(name_len > 0, "lookup of an empty name");
    FUZZ_CHECK(name >= f->tmpl && name + name_len <= f->tmpl + f->tmpl_len,
               "lookup name outside the template");
    FUZZ_CHECK(memchr(name, '{', name_len) == NULL &&
               memchr(name, '}', name_len) == NULL,
               "lookup name holds a brace");
    i = find(f, name, name_len);
    if (i < 0)
        return f->fail_missing ? -EIO : -ENOENT;
    *value = f->value[i];
    *value_len = f->value_len[i];
    return 0;
}

/* Upper-case hex digit value, or -1 (escapes are upper case). */
static int
hexval(char c)
{
    static const char digits[] = "0123456789ABCDEF";
    const char *p = c != '\0' ? strchr(digits, c) : NULL;

    return p != NULL ? (int)(p - digits) : -1;
}

/*
 * The reference: 0 with the expansion in out, -EINVAL for bad syntax,
 * DRV_EBADJOB for a missing field or a NUL under NO_NUL, -EIO for a
 * missing field under fail_missing. The text is read from the start and
 * the first problem met decides: a missing field before a syntax error is
 * reported as missing (templates from the config are checked at load).
 */
static int
ref_expand(const char *t, unsigned flags, const struct fields *f,
           struct drv_buf *out)
{
    size_t i, j, k;
    int idx;

    for (i = 0; t[i] != '\0';) {
        if ((t[i] == '{' || t[i] == '}') && t[i + 1] == t[i]) {
            drv_buf_add(out, &t[i], 1);
            i += 2;
            continue;
        }
        if (t[i] == '}')
            return -EINVAL;
        if (t[i] != '{') {
            drv_buf_add(out, &t[i], 1);
            i++;
            continue;
        }
        for (j = i + 1; t[j] != '\0' && t[j] != '{' && t[j] != '}'; j++)
            ;
        if (t[j] != '}' || j == i + 1)
            return -EINVAL;
        idx = find(f, t + i + 1, j - i - 1);
        i = j + 1;
        if (idx < 0)
            return f->fail_missing ? -EIO : DRV_EBADJOB;
        if ((flags & DRV_TEMPLATE_NO_NUL) &&
            memchr(f->value[idx], '\0', f->value_len[idx]) != NULL)
            return DRV_EBADJOB;
        for (k = 0; k < f->value_len[idx]; k++) {
            unsigned char c = (unsigned char)f->value[idx][k];

            if ((flags & DRV_TEMPLATE_URL_ESCAPE) && !fuzz_unreserved(c))
                drv_buf_addf(out, "%%%02X", c);
            else
                drv_buf_add(out, &c, 1);
        }
    }
    return 0;
}

/* "... at byte N" must name a brace of t. */
static void
check_position(const char *t, const char *msg)
{
    const char *at = strstr(msg, "at byte ");
    unsigned long n;

    FUZZ_CHECK(at != NULL, "syntax error without a place: %s", msg);
    n = strtoul(at + 8, NULL, 10);
    FUZZ_CHECK(n >= 1 && n <= strlen(t) && (t[n - 1] == '{' ||
               t[n - 1] == '}'), "\"%s\" does not point at a brace", msg);
}

static void
check_template(const char *t, unsigned flags, struct fields *f)
{
    struct drv_err cerr, eerr;
    struct drv_buf want;
    char *out = (char *)1;
    size_t out_len = 12345, nnames = 0, i;
    int crc, erc, ref;

    drv_err_clear(&cerr);
    drv_err_clear(&eerr);
    f->tmpl = t;
    f->tmpl_len = strlen(t);
    f->calls = 0;
    crc = drv_template_check(t, &cerr);
    erc = drv_template_expand(t, flags, lookup, f, &out, &out_len, &eerr);
    drv_buf_init(&want);
    ref = ref_expand(t, flags, f, &want);

    FUZZ_CHECK(erc == ref, "expand returned %d (%s), the reference %d",
               erc, eerr.msg, ref);
    FUZZ_CHECK(crc == 0 || crc == -EINVAL, "check returned %d", crc);
    /* a bad template fails expand too (with -EINVAL unless a field
     * before the bad spot failed first) */
    FUZZ_CHECK(crc == 0 || erc < 0, "check %d but expand %d", crc, erc);
    if (erc == -EINVAL) {
        FUZZ_CHECK(crc == -EINVAL && strcmp(cerr.msg, eerr.msg) == 0,
                   "check says \"%s\", expand \"%s\"", cerr.msg, eerr.msg);
    }
    if (crc < 0)
        check_position(t, cerr.msg);
    if (erc < 0) {
        FUZZ_CHECK(out == NULL && out_len == 0, "failed expand left output");
        FUZZ_CHECK(eerr.code == erc && eerr.msg[0] != '\0',
                   "error record %d \"%s\" for %d", eerr.code, eerr.msg,
                   erc);
    } else {
        FUZZ_CHECK(out != NULL && out[out_len] == '\0', "output not "
                   "terminated");
        FUZZ_CHECK(out_len == want.len && (out_len == 0 ||
                   memcmp(out, want.data, out_len) == 0), "expansion differs from the reference (%zu vs %zu "
                   "bytes)", out_len, want.len);
        /* one lookup per {name}: count the names of a valid template */
        for (i = 0; t[i] != '\0'; i++) {
            if ((t[i] == '{' || t[i] == '}') && t[i + 1] == t[i])
                i++;
            else if (t[i] == '{')
                nnames++;
        }
        FUZZ_CHECK(f->calls == nnames, "%zu lookups for %zu names",
                   f->calls, nnames);
    }
    free(out);
    drv_buf_fini(&want);
}

/* Doubling every brace of text: a template that expands to text. */
static void
check_escaped(const char *text, unsigned flags, struct fields *f)
{
    struct drv_buf t;
    char *out = NULL, *tmpl;
    size_t out_len = 0, i;
    int rc;

    drv_buf_init(&t);
    for (i = 0; text[i] != '\0'; i++) {
        drv_buf_add(&t, &text[i], 1);
        if (text[i] == '{' || text[i] == '}')
            drv_buf_add(&t, &text[i], 1);
    }
    tmpl = drv_buf_take(&t, NULL);
    f->tmpl = tmpl;
    f->tmpl_len = strlen(tmpl);
    f->calls = 0;
    FUZZ_CHECK(drv_template_check(tmpl, NULL) == 0, "escaped text is not "
               "a valid template");
    rc = drv_template_expand(tmpl, flags, lookup, f, &out, &out_len, NULL);
    FUZZ_CHECK(rc == 0 && f->calls == 0, "escaped text: %d, %zu lookups",
               rc, f->calls);
    FUZZ_CHECK(out_len == strlen(text) && strcmp(out, text) == 0,
               "escaped text does not expand to itself");
    free(out);
    free(tmpl);
}

/* One field through URL escaping: unreserved and %XX only, and
 * decoding gives the value back. */
static void
check_url_escape(struct fields *f)
{
    static const char tmpl[] = "{v}";
    const char *name = "v";
    char *out = NULL;
    size_t out_len = 0, i, o = 0;
    int rc;

    if (f->n == 0)
        return;
    f->name[0] = name;
    f->name_len[0] = 1;
    f->tmpl = tmpl;
    f->tmpl_len = 3;
    rc = drv_template_expand(tmpl, DRV_TEMPLATE_URL_ESCAPE, lookup, f, &out,
                             &out_len, NULL);
    FUZZ_CHECK(rc == 0, "URL escape of a present field failed: %d", rc);
    for (i = 0; i < out_len; i++) {
        char c = out[i];

        if (c == '%') {
            FUZZ_CHECK(i + 2 < out_len && hexval(out[i + 1]) >= 0 &&
                       hexval(out[i + 2]) >= 0, "bad %%-escape in URL "
                       "output");
            c = (char)(hexval(out[i + 1]) << 4 | hexval(out[i + 2]));
            FUZZ_CHECK(!fuzz_unreserved((unsigned char)c), "an unreserved byte "
                       "was escaped");
            i += 2;
        } else {
            FUZZ_CHECK(fuzz_unreserved((unsigned char)c), "byte 0x%02x not "
                       "escaped", (unsigned char)c);
        }
        FUZZ_CHECK(o < f->value_len[0] && f->value[0][o] == c,
                   "URL output does not decode to the value");
        o++;
    }
    FUZZ_CHECK(o == f->value_len[0], "URL output decodes short");
    free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    unsigned flags = fuzz_byte(&in);
    struct fields f;
    const char *t;
    char *tmpl;
    size_t tlen;

    memset(&f, 0, sizeof f);
    f.fail_missing = (flags & 0x80) != 0;
    t = fuzz_piece(&in, 0, &tlen);
    tmpl = fuzz_strndup(t, tlen);
    while (in.n > 0 && f.n < MAX_FIELDS) {
        f.name[f.n] = fuzz_piece(&in, 1, &f.name_len[f.n]);
        f.value[f.n] = fuzz_piece(&in, 1, &f.value_len[f.n]);
        f.n++;
    }
    flags &= DRV_TEMPLATE_URL_ESCAPE | DRV_TEMPLATE_NO_NUL;
    check_template(tmpl, flags, &f);
    check_escaped(tmpl, flags, &f);
    check_url_escape(&f);
    free(tmpl);
    return 0;
}
