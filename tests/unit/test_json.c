/*
 * test_json.c -- the JSON writer (nesting, commas, the byte rule and its
 * NAME_b64 companion), base64, logfmt values, and the worker registry
 * line (what the heartbeat writes, the CLI and the dashboard read).
 */
#include <string.h>

#include "harness.h"
#include "drover/buf.h"
#include "drover/json.h"
#include "drover/queue.h"

static void
test_json_nesting_and_values(void **st)
{
    struct drv_json j;
    struct drv_buf b;

    (void)st;
    drv_buf_init(&b);
    drv_json_init(&j, &b);
    drv_json_object_begin(&j);
    drv_json_member_int(&j, "n", -3, 0);
    drv_json_member_int(&j, "unknown", -1, 1);
    drv_json_member_strz(&j, "none", NULL);
    drv_json_key(&j, "list");
    drv_json_array_begin(&j);
    drv_json_int(&j, 1);
    drv_json_bool(&j, 0);
    drv_json_object_begin(&j);
    drv_json_object_end(&j);
    drv_json_array_begin(&j);
    drv_json_array_end(&j);
    drv_json_strz(&j, "x");
    drv_json_array_end(&j);
    drv_json_member_bool(&j, "t", 1);
    drv_json_object_end(&j);
    drv_json_fini(&j);
    assert_string_equal(b.data, "{\"n\":-3,\"unknown\":null,\"none\":null,"
                                "\"list\":[1,false,{},[],\"x\"],"
                                "\"t\":true}");
    drv_buf_fini(&b);
}

static void
test_json_bytes_rule(void **st)
{
    struct drv_json j;
    struct drv_buf b;

    (void)st;
    drv_buf_init(&b);
    drv_json_init(&j, &b);
    drv_json_object_begin(&j);
    /* valid UTF-8 (with NUL and controls): no companion */
    drv_json_member_bytes(&j, "a", "\xc3\xa9\0\t\x7f", 5);
    /* 0xff is not UTF-8: \u00ff plus the exact bytes in base64 */
    drv_json_member_bytes(&j, "b", "a\0b\xff\"\n", 6);
    drv_json_member_bytes(&j, "c", NULL, 0);
    drv_json_member_bytes(&j, "d", "", 0);
    drv_json_object_end(&j);
    drv_json_fini(&j);
    assert_string_equal(b.data,
                        "{\"a\":\"\xc3\xa9\\u0000\\t\\u007f\","
                        "\"b\":\"a\\u0000b\\u00ff\\\"\\n\","
                        "\"b_b64\":\"YQBi/yIK\","
                        "\"c\":null,\"d\":\"\"}");
    drv_buf_fini(&b);
}

static void
test_json_base64(void **st)
{
    static const char *const cases[][2] = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
    };
    struct drv_buf b;
    size_t i;

    (void)st;
    drv_buf_init(&b);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        drv_buf_reset(&b);
        drv_base64(&b, cases[i][0], strlen(cases[i][0]));
        drv_buf_add(&b, "", 0);
        assert_string_equal(b.data, cases[i][1]);
    }
    drv_buf_fini(&b);
}

/* What drv_buf_logfmt writes, drv_logfmt_get reads back byte for byte. */
static void
test_json_logfmt_round_trip(void **st)
{
    static const char v[] = "a b=\"c\"\\\n\t\r\x01\xff\0\xc3\xa9\xe2\x82";
    struct drv_buf line, got;

    (void)st;
    drv_buf_init(&line);
    drv_buf_init(&got);
    drv_buf_adds(&line, "k=");
    drv_buf_logfmt(&line, v, sizeof v - 1, 0);
    /* raw only what is printable UTF-8; every other byte escaped */
    assert_non_null(strstr(line.data, "\\x01\\xff\\x00\xc3\xa9\\xe2\\x82\""));
    assert_null(memchr(line.data, '\0', line.len));
    drv_buf_adds(&line, " bare=x other=");
    drv_buf_logfmt(&line, "", 0, 0);
    assert_int_equal(drv_logfmt_get(line.data, line.len, "k", &got), 1);
    assert_int_equal(got.len, sizeof v - 1);
    assert_memory_equal(got.data, v, sizeof v - 1);
    drv_buf_reset(&got);
    assert_int_equal(drv_logfmt_get(line.data, line.len, "bare", &got), 1);
    assert_string_equal(got.data, "x");
    drv_buf_reset(&got);
    assert_int_equal(drv_logfmt_get(line.data, line.len, "other", &got), 1);
    assert_int_equal(got.len, 0);
    assert_int_equal(drv_logfmt_get(line.data, line.len, "b", &got), 0);
    assert_int_equal(drv_logfmt_get(line.data, line.len, "x", &got), 0);
    drv_buf_fini(&line);
    drv_buf_fini(&got);
}

/* The heartbeat's line parses back to what it said; quoting included. */
static void
test_json_registry_line(void **st)
{
    struct drv_queue_worker w = {
        .host = "box 1", .queues = "default,low", .pid = 4242,
        .started_ms = 1700000000000, .busy = 7, .beat_ms = 1700000005000,
    };
    struct drv_queue_worker back;
    struct drv_buf line;

    (void)st;
    drv_buf_init(&line);
    drv_queue_worker_format(&w, &line);
    assert_string_equal(line.data, "host=\"box 1\" pid=4242 "
                        "started=1700000000000 queues=default,low busy=7 "
                        "beat=1700000005000");
    drv_queue_worker_parse("w1", 2, line.data, line.len, &back);
    assert_string_equal(back.id, "w1");
    assert_string_equal(back.host, "box 1");
    assert_string_equal(back.queues, "default,low");
    assert_int_equal(back.pid, 4242);
    assert_int_equal(back.started_ms, 1700000000000);
    assert_int_equal(back.busy, 7);
    assert_int_equal(back.beat_ms, 1700000005000);
    assert_false(drv_queue_worker_stale(&back, 1700000005000 +
                                        DRV_QUEUE_WORKER_STALE_MS));
    assert_true(drv_queue_worker_stale(&back, 1700000005001 +
                                       DRV_QUEUE_WORKER_STALE_MS));
    drv_queue_worker_fini(&back);
    /* a line that lacks things: unknown, never stale */
    drv_queue_worker_parse(NULL, 0, "pid=x", 5, &back);
    assert_null(back.id);
    assert_null(back.host);
    assert_int_equal(back.pid, -1);
    assert_int_equal(back.beat_ms, -1);
    assert_false(drv_queue_worker_line_stale("pid=x", 5, INT64_MAX));
    drv_queue_worker_fini(&back);
    drv_buf_fini(&line);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_nesting_and_values),
        cmocka_unit_test(test_json_bytes_rule),
        cmocka_unit_test(test_json_base64),
        cmocka_unit_test(test_json_logfmt_round_trip),
        cmocka_unit_test(test_json_registry_line),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
