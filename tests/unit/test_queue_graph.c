/*
 * test_queue_graph.c -- the graph replies pkg/queue reads, built by hand:
 * a settle reply with and without hand-offs to other slots (Redis
 * Cluster), a box scan, a cancel naming entries on other slots, and the
 * shapes and errors each refuses. (What Redis does with the scripts is
 * tested against real servers in tests/integration/test_graph*.c.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "drover/error.h"
#include "drover/queue_graph.h"

/* ------------------------------------------------------------ replies */

static redisReply
r_int(long long v)
{
    redisReply r;

    memset(&r, 0, sizeof r);
    r.type = REDIS_REPLY_INTEGER;
    r.integer = v;
    return r;
}

static redisReply
r_str(int type, const char *s, size_t len)
{
    redisReply r;

    memset(&r, 0, sizeof r);
    r.type = type;
    r.str = (char *)s;
    r.len = len;
    return r;
}

static redisReply
r_arr(redisReply **v, size_t n)
{
    redisReply r;

    memset(&r, 0, sizeof r);
    r.type = REDIS_REPLY_ARRAY;
    r.element = v;
    r.elements = n;
    return r;
}

/* ---------------------------------------------------------------- tests */

static void
test_queue_graph_reply_integer_has_no_boxes(void **state)
{
    struct drv_queue_graph_boxes b = {NULL, 0, 0, 0};
    struct drv_err err;
    long long code = -1;
    redisReply r = r_int(1);

    (void)state;
    assert_int_equal(drv_queue_graph_reply(&r, &code, &b, &err), 0);
    assert_int_equal(code, 1);
    assert_int_equal(b.n, 0);
    drv_queue_graph_boxes_fini(&b);
}

static void
test_queue_graph_reply_boxes_kept_byte_for_byte(void **state)
{
    static const char rec[] = "[\"gpu\",\0\xff]";
    struct drv_queue_graph_boxes b = {NULL, 0, 0, 0};
    struct drv_err err;
    long long code = -1;
    redisReply code_r = r_int(1);
    redisReply o0 = r_str(REDIS_REPLY_STRING, "out", 3);
    redisReply o1 = r_str(REDIS_REPLY_STRING, "gpu", 3);
    redisReply o2 = r_str(REDIS_REPLY_STRING, "t:{gpu}:handoff:m", 17);
    redisReply o3 = r_str(REDIS_REPLY_STRING, rec, sizeof rec - 1);
    redisReply *ov[] = {&o0, &o1, &o2, &o3};
    redisReply out = r_arr(ov, 4);
    redisReply i0 = r_str(REDIS_REPLY_STRING, "in", 2);
    redisReply i1 = r_str(REDIS_REPLY_STRING, "default", 7);
    redisReply i2 = r_str(REDIS_REPLY_STRING, "t:{default}:run:r", 17);
    redisReply i3 = r_str(REDIS_REPLY_STRING, "[]", 2);
    redisReply *iv[] = {&i0, &i1, &i2, &i3};
    redisReply in = r_arr(iv, 4);
    redisReply *v[] = {&code_r, &out, &in};
    redisReply r = r_arr(v, 3);

    (void)state;
    assert_int_equal(drv_queue_graph_reply(&r, &code, &b, &err), 0);
    assert_int_equal(code, 1);
    assert_int_equal(b.n, 2);
    assert_int_equal(b.v[0].in, 0);
    assert_string_equal(b.v[0].queue, "gpu");
    assert_string_equal(b.v[0].key, "t:{gpu}:handoff:m");
    assert_int_equal(b.v[0].rec_len, sizeof rec - 1);
    assert_memory_equal(b.v[0].rec, rec, sizeof rec - 1);
    assert_int_equal(b.v[1].in, 1);
    assert_string_equal(b.v[1].queue, "default");
    assert_string_equal(b.v[1].key, "t:{default}:run:r");
    /* a scan answers the same tuples without the code */
    {
        struct drv_queue_graph_boxes s = {NULL, 0, 0, 0};
        redisReply *sv[] = {&in, &out};
        redisReply sr = r_arr(sv, 2);

        assert_int_equal(drv_queue_graph_scan_parse(&sr, &s, &err), 0);
        assert_int_equal(s.n, 2);
        assert_int_equal(s.v[0].in, 1);
        assert_int_equal(s.v[1].in, 0);
        drv_queue_graph_boxes_fini(&s);
    }
    drv_queue_graph_boxes_fini(&b);
    assert_int_equal(b.n, 0);
    assert_null(b.v);
}

/* A record the connection cut (longer than its max_string_bytes: empty,
 * its length kept) is left out and counted, the others delivered. */
static void
test_queue_graph_reply_counts_cut_records(void **state)
{
    struct drv_queue_graph_boxes b = {NULL, 0, 0, 0};
    struct drv_err err;
    long long code = -1;
    redisReply code_r = r_int(1);
    redisReply o0 = r_str(REDIS_REPLY_STRING, "out", 3);
    redisReply o1 = r_str(REDIS_REPLY_STRING, "gpu", 3);
    redisReply o2 = r_str(REDIS_REPLY_STRING, "m", 1);
    redisReply cut = r_str(REDIS_REPLY_STRING, "", 0);
    redisReply whole = r_str(REDIS_REPLY_STRING, "[]", 2);
    redisReply *cv[] = {&o0, &o1, &o2, &cut};
    redisReply *wv[] = {&o0, &o1, &o2, &whole};
    redisReply c = r_arr(cv, 4), w = r_arr(wv, 4);
    redisReply *v[] = {&code_r, &c, &w};
    redisReply r = r_arr(v, 3);

    (void)state;
    cut.integer = 5000000; /* how pkg/redis marks a cut string */
    assert_int_equal(drv_queue_graph_reply(&r, &code, &b, &err), 0);
    assert_int_equal(b.n, 1);
    assert_int_equal(b.oversized, 1);
    assert_memory_equal(b.v[0].rec, "[]", 2);
    drv_queue_graph_boxes_fini(&b);
}

static void
test_queue_graph_reply_refuses_other_shapes(void **state)
{
    struct drv_queue_graph_boxes b = {NULL, 0, 0, 0};
    struct drv_err err;
    long long code;
    redisReply e = r_str(REDIS_REPLY_ERROR, "OOM no", 6);
    redisReply s = r_str(REDIS_REPLY_STRING, "x", 1);
    redisReply one = r_int(1);
    redisReply *short_v[] = {&s, &s};
    redisReply short_t = r_arr(short_v, 2);
    redisReply *bad_v[] = {&one, &short_t};
    redisReply bad = r_arr(bad_v, 2);
    redisReply *nocode_v[] = {&s};
    redisReply nocode = r_arr(nocode_v, 1);

    (void)state;
    assert_int_equal(drv_queue_graph_reply(&e, &code, &b, &err),
                     DRV_EREDIS);
    assert_non_null(strstr(err.msg, "OOM no"));
    assert_int_equal(drv_queue_graph_reply(&s, &code, &b, &err),
                     DRV_EPROTO);
    assert_int_equal(drv_queue_graph_reply(NULL, &code, &b, &err),
                     DRV_EPROTO);
    assert_int_equal(drv_queue_graph_reply(&bad, &code, &b, &err),
                     DRV_EPROTO);
    assert_int_equal(drv_queue_graph_reply(&nocode, &code, &b, &err),
                     DRV_EPROTO);
    assert_int_equal(drv_queue_graph_scan_parse(&one, &b, &err),
                     DRV_EPROTO);
    assert_int_equal(drv_queue_graph_scan_parse(&e, &b, &err),
                     DRV_EREDIS);
    drv_queue_graph_boxes_fini(&b);
}

static void
test_queue_graph_cancel_names_entries_away(void **state)
{
    static const char jid[] = "r\0x/g";
    struct drv_queue_graph_cancelled gc;
    struct drv_err err;
    redisReply st = r_str(REDIS_REPLY_STRING, "cancelled", 9);
    redisReply n0 = r_int(1), n1 = r_int(0), n2 = r_int(2), n3 = r_int(1);
    redisReply a0 = r_str(REDIS_REPLY_STRING, "gpu", 3);
    redisReply a1 = r_str(REDIS_REPLY_STRING, "t:{gpu}:handoff:m", 17);
    redisReply a2 = r_str(REDIS_REPLY_STRING, jid, sizeof jid - 1);
    redisReply *av[] = {&a0, &a1, &a2};
    redisReply a = r_arr(av, 3);
    redisReply *awayv[] = {&a};
    redisReply away = r_arr(awayv, 1);
    redisReply *v[] = {&st, &n0, &n1, &n2, &n3, &away};
    redisReply r = r_arr(v, 6);
    redisReply r5 = r_arr(v, 5);
    redisReply *badv[] = {&st, &n0, &n1, &n2, &n3, &st};
    redisReply bad = r_arr(badv, 6);

    (void)state;
    assert_int_equal(drv_queue_graph_cancel_parse(&r, &gc, &err), 0);
    assert_string_equal(gc.status, "cancelled");
    assert_int_equal(gc.removed, 1);
    assert_int_equal(gc.marked, 2);
    assert_int_equal(gc.changed, 1);
    assert_int_equal(gc.naway, 1);
    assert_string_equal(gc.away[0].queue, "gpu");
    assert_string_equal(gc.away[0].marker, "t:{gpu}:handoff:m");
    assert_int_equal(gc.away[0].job_id_len, sizeof jid - 1);
    assert_memory_equal(gc.away[0].job_id, jid, sizeof jid - 1);
    drv_queue_graph_cancelled_fini(&gc);
    assert_int_equal(gc.naway, 0);
    /* one Redis: five elements, nothing away */
    assert_int_equal(drv_queue_graph_cancel_parse(&r5, &gc, &err), 0);
    assert_int_equal(gc.naway, 0);
    drv_queue_graph_cancelled_fini(&gc);
    assert_int_equal(drv_queue_graph_cancel_parse(&bad, &gc, &err),
                     DRV_EPROTO);
    drv_queue_graph_cancelled_fini(&gc);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_graph_reply_integer_has_no_boxes),
        cmocka_unit_test(test_queue_graph_reply_boxes_kept_byte_for_byte),
        cmocka_unit_test(test_queue_graph_reply_counts_cut_records),
        cmocka_unit_test(test_queue_graph_reply_refuses_other_shapes),
        cmocka_unit_test(test_queue_graph_cancel_names_entries_away),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
