/* test_template.c -- `{field}` templates: syntax and expansion. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "drover/common.h"
#include "drover/error.h"
#include "drover/template.h"

/* Fields of a fake job: name/value pairs, value lengths given. */
struct fields {
    const char *const *kv;  /* borrowed: name, value, name, value, ... */
    const size_t *lens;     /* borrowed: value lengths, NULL = strlen */
    size_t n;               /* pairs */
    int calls;              /* lookups made */
    int fail_with;          /* != 0: every lookup returns this */
};

static int
lookup(const char *name, size_t name_len, const char **value,
       size_t *value_len, void *ctx)
{
    struct fields *f = ctx;
    size_t i;

    f->calls++;
    if (f->fail_with != 0)
        return f->fail_with;
    for (i = 0; i < f->n; i++) {
        const char *k = f->kv[2 * i];

        if (strlen(k) == name_len && memcmp(k, name, name_len) == 0) {
            *value = f->kv[2 * i + 1];
            *value_len = f->lens ? f->lens[i] : strlen(*value);
            return 0;
        }
    }
    return -ENOENT;
}

static const char *const job_kv[] = {
    "path", "/tmp/a b.png",
    "width", "640",
    "q", "x&y=z/\xc3\xa9~",
};

static struct fields
job_fields(void)
{
    struct fields f;

    memset(&f, 0, sizeof f);
    f.kv = job_kv;
    f.n = DRV_ARRAY_LEN(job_kv) / 2;
    return f;
}

/* Expand tmpl with the job fields; returns the result (caller frees). */
static char *
expand_ok(const char *tmpl, unsigned flags)
{
    struct fields f = job_fields();
    struct drv_err err;
    char *out = NULL;
    size_t len = 0;
    int rc;

    drv_err_clear(&err);
    rc = drv_template_expand(tmpl, flags, lookup, &f, &out, &len, &err);
    assert_drv_ok(rc, &err);
    assert_non_null(out);
    assert_int_equal(len, strlen(out));
    return out;
}

static void
test_template_expand_fields(void **state)
{
    char *s = NULL;

    (void)state;
    s = expand_ok("{path}.out.png", 0);
    assert_string_equal(s, "/tmp/a b.png.out.png");
    free(s);
    s = expand_ok("-resize {width}x{width}", 0);
    assert_string_equal(s, "-resize 640x640");
    free(s);
    s = expand_ok("no fields at all", 0);
    assert_string_equal(s, "no fields at all");
    free(s);
    s = expand_ok("", 0);
    assert_string_equal(s, "");
    free(s);
}

static void
test_template_literal_braces(void **state)
{
    char *s = NULL;

    (void)state;
    s = expand_ok("{{path}} is {path}", 0);
    assert_string_equal(s, "{path} is /tmp/a b.png");
    free(s);
    s = expand_ok("a}}b{{c", 0);
    assert_string_equal(s, "a}b{c");
    free(s);
    s = expand_ok("{{{width}}}", 0);
    assert_string_equal(s, "{640}");
    free(s);
}

static void
test_template_url_escape(void **state)
{
    char *s = NULL;

    (void)state;
    s = expand_ok("https://x.test/s?q={q}&p={path}",
                  DRV_TEMPLATE_URL_ESCAPE);
    assert_string_equal(s, "https://x.test/s?q=x%26y%3Dz%2F%C3%A9~"
                           "&p=%2Ftmp%2Fa%20b.png");
    free(s);
}

static void
test_template_missing_field(void **state)
{
    struct fields f = job_fields();
    struct drv_err err;
    char *out = NULL;
    int rc;

    (void)state;
    drv_err_clear(&err);
    rc = drv_template_expand("{path} {height}", 0, lookup, &f, &out, NULL,
                             &err);
    assert_int_equal(rc, DRV_EBADJOB);
    assert_null(out);
    assert_string_equal(err.msg, "missing field height");
}

static void
test_template_lookup_error(void **state)
{
    struct fields f = job_fields();
    struct drv_err err;
    char *out = NULL;
    int rc;

    (void)state;
    f.fail_with = -ENOMEM;
    drv_err_clear(&err);
    rc = drv_template_expand("x{path}", 0, lookup, &f, &out, NULL, &err);
    assert_int_equal(rc, -ENOMEM);
    assert_null(out);
    assert_string_equal(err.msg, "field path: Cannot allocate memory");
}

static void
test_template_nul_in_value(void **state)
{
    static const char *const kv[] = {"a", "x\0y"};
    static const size_t lens[] = {3};
    struct fields f;
    struct drv_err err;
    char *out = NULL;
    size_t len = 0;
    int rc;

    (void)state;
    memset(&f, 0, sizeof f);
    f.kv = kv;
    f.lens = lens;
    f.n = 1;
    drv_err_clear(&err);
    rc = drv_template_expand("<{a}>", 0, lookup, &f, &out, &len, &err);
    assert_drv_ok(rc, &err);
    assert_int_equal(len, 5);
    assert_memory_equal(out, "<x\0y>", 5);
    free(out);

    rc = drv_template_expand("<{a}>", DRV_TEMPLATE_NO_NUL, lookup, &f, &out,
                             &len, &err);
    assert_int_equal(rc, DRV_EBADJOB);
    assert_null(out);
    assert_string_equal(err.msg, "field a holds a NUL byte");

    rc = drv_template_expand("{a}", DRV_TEMPLATE_URL_ESCAPE, lookup, &f,
                             &out, &len, &err);
    assert_drv_ok(rc, &err);
    assert_string_equal(out, "x%00y");
    free(out);
}

static void
test_template_check_syntax(void **state)
{
    static const struct {
        const char *tmpl;
        const char *msg;    /* NULL = valid */
    } cases[] = {
        {"plain", NULL},
        {"{a}{b}", NULL},
        {"{{}}", NULL},
        {"{ spaced name }", NULL},
        {"{path", "unmatched '{' at byte 1"},
        {"ab{", "unmatched '{' at byte 3"},
        {"a}b", "unmatched '}' at byte 2"},
        {"{a}}", "unmatched '}' at byte 4"},
        {"{}", "empty field name at byte 1"},
        {"x{a{b}}", "'{' inside a field name at byte 4"},
    };
    struct drv_err err;
    size_t i;

    (void)state;
    for (i = 0; i < DRV_ARRAY_LEN(cases); i++) {
        int rc;

        drv_err_clear(&err);
        rc = drv_template_check(cases[i].tmpl, &err);
        if (cases[i].msg == NULL) {
            assert_drv_ok(rc, &err);
            continue;
        }
        assert_int_equal(rc, -EINVAL);
        assert_string_equal(err.msg, cases[i].msg);
    }
}

static void
test_template_expand_rejects_bad_syntax(void **state)
{
    struct fields f = job_fields();
    struct drv_err err;
    char *out = NULL;
    int rc;

    (void)state;
    drv_err_clear(&err);
    rc = drv_template_expand("{path} {width", 0, lookup, &f, &out, NULL,
                             &err);
    assert_int_equal(rc, -EINVAL);
    assert_null(out);
    assert_string_equal(err.msg, "unmatched '{' at byte 8");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_template_expand_fields),
        cmocka_unit_test(test_template_literal_braces),
        cmocka_unit_test(test_template_url_escape),
        cmocka_unit_test(test_template_missing_field),
        cmocka_unit_test(test_template_lookup_error),
        cmocka_unit_test(test_template_nul_in_value),
        cmocka_unit_test(test_template_check_syntax),
        cmocka_unit_test(test_template_expand_rejects_bad_syntax),
    };

    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, NULL, NULL);
}
