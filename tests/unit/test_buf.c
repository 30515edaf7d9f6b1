/* test_buf.c -- buffer, JSON escaping, backoff bounds. */
#include <string.h>

#include "harness.h"
#include "drover/buf.h"

static void
test_buf_json_escapes(void **st)
{
    struct drv_buf b;

    (void)st;
    drv_buf_init(&b);
    drv_buf_json_str(&b, "a\"b\\c\n\x01", 7);
    assert_string_equal(b.data, "\"a\\\"b\\\\c\\n\\u0001\"");
    drv_buf_reset(&b);
    drv_buf_json_str(&b, "$(touch x)", 10);
    assert_string_equal(b.data, "\"$(touch x)\"");
    drv_buf_reset(&b);
    /* valid UTF-8 kept, a lone 0xff escaped, NUL escaped */
    drv_buf_json_str(&b, "\xc3\xa9\xff\0z", 5);
    assert_string_equal(b.data, "\"\xc3\xa9\\u00ff\\u0000z\"");
    drv_buf_fini(&b);
}

static void
test_buf_backoff_bounds(void **st)
{
    uint64_t r;

    (void)st;
    for (r = 0; r < 1000; r += 7) {
        int64_t d1 = drv_backoff_ms(1, 1000, 60000, r);
        int64_t d3 = drv_backoff_ms(3, 1000, 60000, r);
        int64_t dmax = drv_backoff_ms(40, 1000, 60000, r * 7919);
        assert_true(d1 >= 500 && d1 <= 1000);
        assert_true(d3 >= 2000 && d3 <= 4000);
        assert_true(dmax >= 30000 && dmax <= 60000);
    }
    assert_int_equal(drv_backoff_ms(1, 0, 1000, 5), 0);
}

static void
test_buf_take_and_format(void **st)
{
    struct drv_buf b;
    size_t len = 0;
    char *p;

    (void)st;
    drv_buf_init(&b);
    drv_buf_addf(&b, "%d-%s", 42, "x");
    p = drv_buf_take(&b, &len);
    assert_string_equal(p, "42-x");
    assert_int_equal(len, 4);
    assert_null(b.data);
    free(p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_json_escapes),
        cmocka_unit_test(test_buf_backoff_bounds),
        cmocka_unit_test(test_buf_take_and_format),
    };

    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, NULL, NULL);
}
