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

/* Expand tmpl with the job fields: it must give want. */
static void
expect_expand(const char *tmpl, unsigned flags, const char *want)
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
    assert_string_equal(out, want);
    free(out);
}

/* Expand tmpl with f's fields: it must fail with code, saying msg, and
 * give no output. */
static void
expect_expand_error(const char *tmpl, unsigned flags, struct fields *f,
                    int code, const char *msg)
{
    struct drv_err err;
    char *out = NULL;

    drv_err_clear(&err);
    assert_int_equal(drv_template_expand(tmpl, flags, lookup, f, &out, NULL,
                                         &err), code);
    assert_null(out);
    assert_string_equal(err.msg, msg);
}

static void
test_template_expand_fields(void **state)
{
    (void)state;
    expect_expand("{path}.out.png", 0, "/tmp/a b.png.out.png");
    expect_expand("-resize {width}x{width}", 0, "-resize 640x640");
    expect_expand("no fields at all", 0, "no fields at all");
    expect_expand("", 0, "");
}

static void
test_template_literal_braces(void **state)
{
    (void)state;
    expect_expand("{{path}} is {path}", 0, "{path} is /tmp/a b.png");
    expect_expand("a}}b{{c", 0, "a}b{c");
    expect_expand("{{{width}}}", 0, "{640}");
}

static void
test_template_url_escape(void **state)
{
    (void)state;
    expect_expand("https://x.test/s?q={q}&p={path}",
                  DRV_TEMPLATE_URL_ESCAPE,
                  "https://x.test/s?q=x%26y%3Dz%2F%C3%A9~"
                  "&p=%2Ftmp%2Fa%20b.png");
}

static void
test_template_missing_field(void **state)
{
    struct fields f = job_fields();

    (void)state;
    expect_expand_error("{path} {height}", 0, &f, DRV_EBADJOB,
                        "missing field height");
}

static void
test_template_lookup_error(void **state)
{
    struct fields f = job_fields();

    (void)state;
    f.fail_with = -ENOMEM;
    expect_expand_error("x{path}", 0, &f, -ENOMEM,
                        "field path: Cannot allocate memory");
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

    expect_expand_error("<{a}>", DRV_TEMPLATE_NO_NUL, &f, DRV_EBADJOB,
                        "field a holds a NUL byte");

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

    (void)state;
    expect_expand_error("{path} {width", 0, &f, -EINVAL,
                        "unmatched '{' at byte 8");
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
