/* test_parse.c -- durations, sizes and plain integers. */
#include <errno.h>

#include "harness.h"
#include "drover/parse.h"
#include "drover/log.h"

static void
test_parse_duration_forms(void **state)
{
    int64_t ms = 0;

    (void)state;
    assert_int_equal(drv_parse_duration_ms("250ms", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(drv_parse_duration_ms("30s", &ms), 0);
    assert_int_equal(ms, 30000);
    assert_int_equal(drv_parse_duration_ms("5m", &ms), 0);
    assert_int_equal(ms, 300000);
    assert_int_equal(drv_parse_duration_ms("1h", &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(drv_parse_duration_ms("1d", &ms), 0);
    assert_int_equal(ms, 86400000);
    assert_int_equal(drv_parse_duration_ms("7", &ms), 0);
    assert_int_equal(ms, 7000);
}

static void
test_parse_duration_rejects(void **state)
{
    int64_t ms = 0;

    (void)state;
    assert_int_equal(drv_parse_duration_ms("30x", &ms), -EINVAL);
    assert_int_equal(drv_parse_duration_ms("", &ms), -EINVAL);
    assert_int_equal(drv_parse_duration_ms("-1s", &ms), -EINVAL);
    assert_int_equal(drv_parse_duration_ms(" 1s", &ms), -EINVAL);
    assert_int_equal(drv_parse_duration_ms("1s ", &ms), -EINVAL);
    assert_int_equal(drv_parse_duration_ms("99999999999999999999d", &ms),
                     -ERANGE);
}

static void
test_parse_size_forms(void **state)
{
    int64_t n = 0;

    (void)state;
    assert_int_equal(drv_parse_size("512", &n), 0);
    assert_int_equal(n, 512);
    assert_int_equal(drv_parse_size("64KiB", &n), 0);
    assert_int_equal(n, 65536);
    assert_int_equal(drv_parse_size("16MiB", &n), 0);
    assert_int_equal(n, 16 * 1048576);
    assert_int_equal(drv_parse_size("1GiB", &n), 0);
    assert_int_equal(n, 1073741824);
    assert_int_equal(drv_parse_size("1XB", &n), -EINVAL);
}

static void
test_parse_uint_strict(void **state)
{
    uint64_t v = 0;

    (void)state;
    assert_int_equal(drv_parse_uint("123", 3, 1000, &v), 0);
    assert_int_equal(v, 123);
    assert_int_equal(drv_parse_uint("12a", 3, 1000, &v), -EINVAL);
    assert_int_equal(drv_parse_uint("+1", 2, 1000, &v), -EINVAL);
    assert_int_equal(drv_parse_uint("1001", 4, 1000, &v), -ERANGE);
    assert_int_equal(drv_parse_uint("", 0, 1000, &v), -EINVAL);
}

static void
test_parse_int_both_bounds(void **state)
{
    int64_t v = 0;

    (void)state;
    assert_int_equal(drv_parse_int("0", 1, 10, &v), -ERANGE);
    assert_int_equal(drv_parse_int("11", 1, 10, &v), -ERANGE);
    assert_int_equal(drv_parse_int("-3", -5, 10, &v), 0);
    assert_int_equal(v, -3);
    assert_int_equal(drv_parse_int("-6", -5, 10, &v), -ERANGE);
    assert_int_equal(drv_parse_int("7", 1, 10, &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(drv_parse_int("x", 1, 10, &v), -EINVAL);
    /* both ends of int64_t (INT64_MIN has no positive twin) */
    assert_int_equal(drv_parse_int("-9223372036854775808", INT64_MIN,
                                   INT64_MAX, &v), 0);
    assert_true(v == INT64_MIN);
    assert_int_equal(drv_parse_int("9223372036854775807", INT64_MIN,
                                   INT64_MAX, &v), 0);
    assert_true(v == INT64_MAX);
    assert_int_equal(drv_parse_int("-9223372036854775809", INT64_MIN,
                                   INT64_MAX, &v), -ERANGE);
}

static void
test_parse_bad_text_wins_over_range(void **state)
{
    int64_t v = 0;
    uint64_t u = 0;

    /* many digits then a bad unit: not a duration or size, whatever the
     * number (config then says "is not a duration", not "too large") */
    (void)state;
    assert_int_equal(drv_parse_duration_ms("99999999999999999999x", &v),
                     -EINVAL);
    assert_int_equal(drv_parse_size("99999999999999999999d", &v), -EINVAL);
    assert_int_equal(drv_parse_size("99999999999999999999KiB", &v),
                     -ERANGE);
    assert_int_equal(drv_parse_uint("99999999999999999999x", 21, 10, &u),
                     -EINVAL);
    assert_int_equal(drv_parse_uint("99999999999999999999", 20, UINT64_MAX,
                                    &u), -ERANGE);
}

static void
test_log_quote(void **state)
{
    char buf[64];

    (void)state;
    assert_string_equal(drv_log_quote(buf, sizeof buf, "abc", 3), "abc");
    assert_string_equal(drv_log_quote(buf, sizeof buf, "a b", 3), "\"a b\"");
    assert_string_equal(drv_log_quote(buf, sizeof buf, "a\"b\n", 4),
                        "\"a\\\"b\\n\"");
    assert_string_equal(drv_log_quote(buf, sizeof buf, "", 0), "\"\"");
    /* NUL, bytes outside UTF-8, CR/LF, quotes, backslashes: escaped */
    assert_string_equal(drv_log_quote(buf, sizeof buf, "\0\xff\"\\\r\n", 6),
                        "\"\\x00\\xff\\\"\\\\\\r\\n\"");
    assert_string_equal(drv_log_quote(buf, sizeof buf, "a\xff" "b", 3),
                        "\"a\\xffb\"");
    /* valid UTF-8 stays as it is (bare when nothing else needs quotes) */
    assert_string_equal(drv_log_quote(buf, sizeof buf, "\xc3\xa9t\xc3\xa9",
                                      5), "\xc3\xa9t\xc3\xa9");
    assert_string_equal(drv_log_quote(buf, sizeof buf, "\xc3\xa9 \xc3", 4),
                        "\"\xc3\xa9 \\xc3\"");
    /* cut at the buffer: never half an escape, always closed */
    assert_string_equal(drv_log_quote(buf, 8, "\xff\xff\xff", 3),
                        "\"\\xff\"");
}

static void
test_parse_hostport(void **st)
{
    char host[64];
    int port = -1;

    (void)st;
    assert_int_equal(drv_parse_hostport("127.0.0.1:9464", host, sizeof host,
                                        &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 9464);
    assert_int_equal(drv_parse_hostport("[::1]:0", host, sizeof host, &port),
                     0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    assert_int_equal(drv_parse_hostport("0.0.0.0:65535", host, sizeof host,
                                        &port), 0);
    assert_int_equal(port, 65535);
    assert_int_equal(drv_parse_hostport("9464", host, sizeof host, &port),
                     -EINVAL);
    assert_int_equal(drv_parse_hostport(":9464", host, sizeof host, &port),
                     -EINVAL);
    assert_int_equal(drv_parse_hostport("h:", host, sizeof host, &port),
                     -EINVAL);
    assert_int_equal(drv_parse_hostport("h:65536", host, sizeof host, &port),
                     -EINVAL);
    assert_int_equal(drv_parse_hostport("h:12x", host, sizeof host, &port),
                     -EINVAL);
    assert_int_equal(drv_parse_hostport("[::1:80", host, sizeof host, &port),
                     -EINVAL);
    assert_int_equal(drv_parse_hostport("h:80", host, 1, &port), -EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_duration_forms),
        cmocka_unit_test(test_parse_duration_rejects),
        cmocka_unit_test(test_parse_size_forms),
        cmocka_unit_test(test_parse_uint_strict),
        cmocka_unit_test(test_parse_int_both_bounds),
        cmocka_unit_test(test_parse_bad_text_wins_over_range),
        cmocka_unit_test(test_log_quote),
        cmocka_unit_test(test_parse_hostport),
    };

    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, NULL, NULL);
}
