/*
 * test_graph_run.c -- the parse and the JSON of a graph run's read
 * (pkg/queue/queue_graph_run.c), fed with replies made by hiredis's own
 * reader from RESP text: the shapes the read script replies, the ones it
 * never should (refused with DRV_EPROTO), a Redis error, and hostile
 * bytes in the JSON. What Redis replies is tested against a real server
 * in tests/integration/test_graph_view.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include "harness.h"
#include "drover/buf.h"
#include "drover/json.h"
#include "drover/queue_graph.h"

/* --------------------------------------------------------------- helpers */

/* One reply from RESP text (freeReplyObject it). */
static redisReply *
resp(const char *text, size_t len)
{
    redisReader *rd = redisReaderCreate();
    void *r = NULL;

    assert_non_null(rd);
    assert_int_equal(redisReaderFeed(rd, text, len), REDIS_OK);
    assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
    assert_non_null(r);
    redisReaderFree(rd);
    return r;
}

static redisReply *
respz(const char *text)
{
    return resp(text, strlen(text));
}

static void
bulk(struct drv_buf *b, const char *s, size_t n)
{
    drv_buf_addf(b, "$%zu\r\n", n);
    drv_buf_add(b, s, n);
    drv_buf_adds(b, "\r\n");
}

static void
bulkz(struct drv_buf *b, const char *s)
{
    bulk(b, s, strlen(s));
}

/* The read's reply for a run of pipeline p: a (no needs) -> b (a fan-out
 * of 4, 1 done), undo (on_failure); a's error holds hostile bytes. */
static redisReply *
good_reply(void)
{
    static const char err[] = "no \"way\"\n<b>\xff";
    struct drv_buf b;
    redisReply *r;

    drv_buf_init(&b);
    drv_buf_adds(&b, "*2\r\n*16\r\n");
    bulkz(&b, "pipeline");
    bulkz(&b, "p");
    bulkz(&b, "status");
    bulkz(&b, "running");
    bulkz(&b, "created_at");
    bulkz(&b, "1700000000000");
    bulkz(&b, "a.state");
    bulkz(&b, "ok");
    bulkz(&b, "a.error");
    bulk(&b, err, sizeof err - 1);
    bulkz(&b, "b.state");
    bulkz(&b, "running");
    bulkz(&b, "b.items");
    bulkz(&b, "4");
    bulkz(&b, "b.done");
    bulkz(&b, "1");
    drv_buf_adds(&b, "*3\r\n*4\r\n");
    bulkz(&b, "a");
    bulkz(&b, "");
    drv_buf_adds(&b, ":0\r\n:0\r\n*4\r\n");
    bulkz(&b, "b");
    bulkz(&b, "a");
    drv_buf_adds(&b, ":0\r\n:1\r\n*4\r\n");
    bulkz(&b, "undo");
    bulkz(&b, "");
    drv_buf_adds(&b, ":1\r\n:0\r\n");
    r = resp(b.data, b.len);
    drv_buf_fini(&b);
    return r;
}

/* ----------------------------------------------------------------- tests */

static void
test_graph_run_parse_and_json(void **st)
{
    struct drv_queue_graph_run run;
    struct drv_err err;
    struct drv_json j;
    struct drv_buf b;
    redisReply *r = good_reply();

    (void)st;
    assert_int_equal(drv_queue_graph_run_parse(r, &run, &err), 0);
    freeReplyObject(r);     /* the run is a copy */
    assert_non_null(run.hash);
    assert_int_equal(run.nnodes, 3);
    assert_string_equal(run.nodes[0].name, "a");
    assert_int_equal(run.nodes[0].nneeds, 0);
    assert_string_equal(run.nodes[1].name, "b");
    assert_int_equal(run.nodes[1].nneeds, 1);
    assert_string_equal(run.nodes[1].needs[0], "a");
    assert_true(run.nodes[1].for_each);
    assert_false(run.nodes[1].on_failure);
    assert_true(run.nodes[2].on_failure);
    assert_null(drv_queue_graph_run_final(&run));
    assert_int_equal(drv_queue_graph_node_num(&run, "b", "items"), 4);
    assert_int_equal(drv_queue_graph_node_num(&run, "b", "attempts"), -1);
    assert_int_equal(drv_queue_graph_node_num(&run, NULL, "created_at"),
                     1700000000000LL);

    drv_buf_init(&b);
    drv_json_init(&j, &b);
    drv_queue_graph_run_json(&j, "default", "r\"1", &run, NULL);
    drv_json_fini(&j);
    assert_non_null(strstr(b.data, "{\"queue\":\"default\",\"id\":\"r\\\"1\","
                           "\"pipeline\":\"p\",\"status\":\"running\","
                           "\"created_at\":1700000000000,"
                           "\"finished_at\":null,"));
    assert_non_null(strstr(b.data, "{\"name\":\"b\",\"state\":\"running\","
                           "\"queue\":null,\"needs\":[\"a\"],"
                           "\"on_failure\":false,\"for_each\":true,"));
    assert_non_null(strstr(b.data, "\"items\":4,\"items_done\":1,"));
    assert_non_null(strstr(b.data, "{\"name\":\"undo\",\"state\":null,"
                           "\"queue\":null,\"needs\":[],"
                           "\"on_failure\":true,\"for_each\":false,"));
    /* quotes and the newline escaped; the byte 0xff not raw UTF-8 and its
     * exact bytes in error_b64 */
    assert_non_null(strstr(b.data, "\"error\":\"no \\\"way\\\"\\n<b>"));
    assert_non_null(strstr(b.data, "\"error_b64\":\""));
    assert_null(strchr(b.data, '\n'));
    drv_buf_fini(&b);
    drv_queue_graph_run_fini(&run);
}

static void
test_graph_run_final_states(void **st)
{
    static const char *const finals[] = {"ok", "dead", "cancelled"};
    struct drv_queue_graph_run run;
    struct drv_err err;
    struct drv_buf b;
    redisReply *r;
    size_t i;

    (void)st;
    for (i = 0; i < 3; i++) {
        drv_buf_init(&b);
        drv_buf_adds(&b, "*2\r\n*2\r\n");
        bulkz(&b, "status");
        bulkz(&b, finals[i]);
        drv_buf_adds(&b, "*0\r\n");
        r = resp(b.data, b.len);
        assert_int_equal(drv_queue_graph_run_parse(r, &run, &err), 0);
        assert_string_equal(drv_queue_graph_run_final(&run), finals[i]);
        assert_int_equal(run.nnodes, 0);
        drv_queue_graph_run_fini(&run);
        freeReplyObject(r);
        drv_buf_fini(&b);
    }
}

static void
test_graph_run_none_and_bad_replies(void **st)
{
    static const char *const bad[] = {
        "$2\r\nno\r\n",                            /* not an array */
        "*1\r\n*0\r\n",                            /* one element */
        "*2\r\n:1\r\n*0\r\n",                      /* hash not an array */
        "*2\r\n*1\r\n$1\r\nx\r\n*0\r\n",           /* odd field list */
        "*2\r\n*2\r\n$1\r\nx\r\n$1\r\ny\r\n*1\r\n:1\r\n", /* node not array */
        "*2\r\n*2\r\n$1\r\nx\r\n$1\r\ny\r\n*1\r\n*3\r\n$1\r\na\r\n"
        "$0\r\n\r\n:0\r\n",                        /* node of 3 */
        "*2\r\n*2\r\n$1\r\nx\r\n$1\r\ny\r\n*2\r\n*4\r\n$1\r\na\r\n"
        "$0\r\n\r\n:0\r\n:0\r\n*4\r\n:7\r\n$0\r\n\r\n:0\r\n:0\r\n",
                                                   /* name not a string */
    };
    struct drv_queue_graph_run run;
    struct drv_err err;
    redisReply *r;
    size_t i;

    (void)st;
    /* no run: both arrays empty */
    r = respz("*2\r\n*0\r\n*0\r\n");
    assert_int_equal(drv_queue_graph_run_parse(r, &run, &err), 0);
    assert_null(run.hash);
    assert_null(drv_queue_graph_run_final(&run));
    drv_queue_graph_run_fini(&run);
    freeReplyObject(r);
    /* Redis said no */
    r = respz("-WRONGTYPE key t:{q}:run:x holds a string\r\n");
    assert_int_equal(drv_queue_graph_run_parse(r, &run, &err), DRV_EREDIS);
    assert_non_null(strstr(err.msg, "WRONGTYPE"));
    freeReplyObject(r);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = respz(bad[i]);
        drv_err_clear(&err);
        if (drv_queue_graph_run_parse(r, &run, &err) != DRV_EPROTO)
            fail_msg("bad reply %zu was not refused", i);
        assert_null(run.hash);
        assert_int_equal(run.nnodes, 0);
        freeReplyObject(r);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graph_run_parse_and_json),
        cmocka_unit_test(test_graph_run_final_states),
        cmocka_unit_test(test_graph_run_none_and_bad_replies),
    };

    drv_test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
