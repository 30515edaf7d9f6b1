/*
 * test_redis_sentinel.c -- the pure parts of Sentinel support: sentinel
 * addresses, the host-less URL and putting an address into it, and the
 * replies of SENTINEL get-master-addr-by-name and ROLE and the
 * +switch-master message (replies built by hand, as hiredis builds them).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "drover/common.h"
#include "drover/redis_sentinel.h"

/* ------------------------------------------------------------ helpers */

/* A reply of type t holding text s (bulk, status, error). */
static redisReply
text_reply(int t, const char *s)
{
    redisReply r;

    memset(&r, 0, sizeof r);
    r.type = t;
    r.str = (char *)s;
    r.len = strlen(s);
    return r;
}

/* An array reply of n elements. */
static redisReply
array_reply(redisReply **el, size_t n)
{
    redisReply r;

    memset(&r, 0, sizeof r);
    r.type = REDIS_REPLY_ARRAY;
    r.element = el;
    r.elements = n;
    return r;
}

static void
addr_ok(const char *s, const char *host, int port)
{
    struct drv_redis_sentinel_addr a;
    struct drv_err err = {0, ""};
    int rc = drv_redis_sentinel_addr_parse(s, &a, &err);

    if (rc != 0)
        fail_msg("parse '%s': %d %s", s, rc, err.msg);
    assert_string_equal(a.host, host);
    assert_int_equal(a.port, port);
}

static void
addr_bad(const char *s, const char *needle)
{
    struct drv_redis_sentinel_addr a;
    struct drv_err err = {0, ""};

    assert_int_equal(drv_redis_sentinel_addr_parse(s, &a, &err), -EINVAL);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("parse '%s': message '%s' lacks '%s'", s ? s : "NULL",
                 err.msg, needle);
}

/* -------------------------------------------------------------- tests */

static void
test_redis_sentinel_addr(void **state)
{
    (void)state;
    addr_ok("10.0.0.1:26379", "10.0.0.1", 26379);
    addr_ok("10.0.0.1", "10.0.0.1", DRV_REDIS_SENTINEL_PORT);
    addr_ok("sentinel-0.sentinel.svc:5000", "sentinel-0.sentinel.svc", 5000);
    addr_ok("[::1]:26380", "::1", 26380);
    addr_ok("[fe80::1]", "fe80::1", DRV_REDIS_SENTINEL_PORT);
    addr_bad(NULL, "must not be empty");
    addr_bad("", "must not be empty");
    addr_bad(":26379", "missing host");
    addr_bad("h:", "port must be 1..65535");
    addr_bad("h:0", "port must be 1..65535");
    addr_bad("h:65536", "port must be 1..65535");
    addr_bad("h:12x", "port must be 1..65535");
    addr_bad("::1", "must be in brackets");
    addr_bad("[::1", "missing ']'");
    addr_bad("[::1]x", "junk after ']'");
    addr_bad("redis://h:1", "must be HOST:PORT");
    addr_bad("a b:1", "must be HOST:PORT");
}

static void
test_redis_sentinel_url(void **state)
{
    static const char *const good[] = {
        "redis://", "redis:///", "redis:///0", "redis:///15",
        "rediss:///2", "redis://drover@/1", "redis://u:p%40ss@/0",
        "REDIS:///3",
    };
    static const char *const bad[] = {
        "redis://10.0.0.1:6379/0", "redis://localhost", "redis://u@h/0",
        "redis://:6379/0",
    };
    struct drv_redis_sentinel_addr a = {"10.0.0.5", 6380};
    struct drv_redis_sentinel_addr v6 = {"fd00::7", 6379};
    struct drv_err err = {0, ""};
    char out[128];
    size_t i;

    (void)state;
    for (i = 0; i < DRV_ARRAY_LEN(good); i++)
        if (drv_redis_sentinel_url_check(good[i], &err) != 0)
            fail_msg("'%s' refused: %s", good[i], err.msg);
    for (i = 0; i < DRV_ARRAY_LEN(bad); i++) {
        assert_int_equal(drv_redis_sentinel_url_check(bad[i], &err),
                         -EINVAL);
        assert_non_null(strstr(err.msg, "names no host"));
    }
    assert_int_equal(drv_redis_sentinel_url_check("unix:///s", &err),
                     -EINVAL);
    assert_non_null(strstr(err.msg, "redis:// or rediss://"));
    assert_int_equal(drv_redis_sentinel_url_check("redis:///x", &err),
                     -EINVAL);
    assert_non_null(strstr(err.msg, "database must be a number"));
    assert_int_equal(drv_redis_sentinel_url_check(NULL, &err), -EINVAL);

    assert_int_equal(drv_redis_sentinel_url_at("redis://drover@/2", &a, out,
                                               sizeof out), 0);
    assert_string_equal(out, "redis://drover@10.0.0.5:6380/2");
    assert_int_equal(drv_redis_sentinel_url_at("rediss://", &a, out,
                                               sizeof out), 0);
    assert_string_equal(out, "rediss://10.0.0.5:6380");
    assert_int_equal(drv_redis_sentinel_url_at("redis://u:a@b@/0", &v6, out,
                                               sizeof out), 0);
    assert_string_equal(out, "redis://u:a@b@[fd00::7]:6379/0");
    assert_int_equal(drv_redis_sentinel_url_at("redis:///0", &a, out, 20),
                     -ENAMETOOLONG);
}

static void
test_redis_sentinel_conn_url(void **state)
{
    struct drv_redis_sentinel_addr a = {"10.0.0.1", 26379};
    struct drv_redis_sentinel_addr v6 = {"::1", 5000};
    char out[128];

    (void)state;
    unsetenv("DROVER_SENTINEL_PASSWORD");
    assert_int_equal(drv_redis_sentinel_conn_url("redis://u:p@/3", NULL, &a,
                                                 out, sizeof out), 0);
    assert_string_equal(out, "redis://10.0.0.1:26379");
    assert_int_equal(drv_redis_sentinel_conn_url("rediss:///0", "watch er",
                                                 &v6, out, sizeof out), 0);
    assert_string_equal(out, "rediss://watch%20er@[::1]:5000");
    setenv("DROVER_SENTINEL_PASSWORD", "p@ss:w/d", 1);
    assert_int_equal(drv_redis_sentinel_conn_url("redis:///0", NULL, &a, out,
                                                 sizeof out), 0);
    assert_string_equal(out, "redis://:p%40ss%3Aw%2Fd@10.0.0.1:26379");
    assert_int_equal(drv_redis_sentinel_conn_url("redis:///0", "w", &a, out,
                                                 sizeof out), 0);
    assert_string_equal(out, "redis://w:p%40ss%3Aw%2Fd@10.0.0.1:26379");
    assert_int_equal(drv_redis_sentinel_conn_url("redis:///0", "w", &a, out,
                                                 20), -ENAMETOOLONG);
    assert_string_equal(out, "");
    unsetenv("DROVER_SENTINEL_PASSWORD");
}

static void
test_redis_sentinel_parse_master(void **state)
{
    struct drv_redis_sentinel_addr a;
    struct drv_err err = {0, ""};
    redisReply host = text_reply(REDIS_REPLY_STRING, "127.0.0.1");
    redisReply port = text_reply(REDIS_REPLY_STRING, "6380");
    redisReply badport = text_reply(REDIS_REPLY_STRING, "http");
    redisReply *el[2] = {&host, &port};
    redisReply *bad_el[2] = {&host, &badport};
    redisReply ok = array_reply(el, 2);
    redisReply short_arr = array_reply(el, 1);
    redisReply bad_port = array_reply(bad_el, 2);
    redisReply nil;
    redisReply e = text_reply(REDIS_REPLY_ERROR,
                              "NOAUTH Authentication required.");

    (void)state;
    memset(&nil, 0, sizeof nil);
    nil.type = REDIS_REPLY_NIL;
    assert_int_equal(drv_redis_sentinel_parse_master(&ok, &a, &err), 0);
    assert_string_equal(a.host, "127.0.0.1");
    assert_int_equal(a.port, 6380);
    assert_int_equal(drv_redis_sentinel_parse_master(&nil, &a, &err),
                     -ENOENT);
    assert_non_null(strstr(err.msg, "does not monitor"));
    assert_int_equal(drv_redis_sentinel_parse_master(&e, &a, &err),
                     DRV_EREDIS);
    assert_non_null(strstr(err.msg, "NOAUTH"));
    assert_int_equal(drv_redis_sentinel_parse_master(&short_arr, &a, &err),
                     DRV_EPROTO);
    assert_int_equal(drv_redis_sentinel_parse_master(&bad_port, &a, &err),
                     DRV_EPROTO);
    assert_int_equal(drv_redis_sentinel_parse_master(&host, &a, &err),
                     DRV_EPROTO);
    assert_int_equal(drv_redis_sentinel_parse_master(NULL, &a, &err),
                     DRV_EPROTO);
}

static void
test_redis_sentinel_parse_role(void **state)
{
    struct drv_err err = {0, ""};
    redisReply master = text_reply(REDIS_REPLY_STRING, "master");
    redisReply slave = text_reply(REDIS_REPLY_STRING, "slave");
    redisReply offset;
    redisReply *m_el[3] = {&master, &offset, NULL};
    redisReply *s_el[1] = {&slave};
    redisReply *bad_el[1] = {&offset};
    redisReply m, s, bad, empty;
    redisReply e = text_reply(REDIS_REPLY_ERROR, "LOADING");

    (void)state;
    memset(&offset, 0, sizeof offset);
    offset.type = REDIS_REPLY_INTEGER;
    offset.integer = 42;
    /* a primary's ROLE: ["master", offset, [replicas]]: only [0] is read */
    m = array_reply(m_el, 2);
    s = array_reply(s_el, 1);
    bad = array_reply(bad_el, 1);
    empty = array_reply(NULL, 0);
    assert_int_equal(drv_redis_sentinel_parse_role(&m, &err), 1);
    assert_int_equal(drv_redis_sentinel_parse_role(&s, &err), 0);
    assert_string_equal(err.msg, "slave");
    assert_int_equal(drv_redis_sentinel_parse_role(&e, &err), DRV_EREDIS);
    assert_int_equal(drv_redis_sentinel_parse_role(&bad, &err), DRV_EPROTO);
    assert_int_equal(drv_redis_sentinel_parse_role(&empty, &err),
                     DRV_EPROTO);
    assert_int_equal(drv_redis_sentinel_parse_role(&master, &err),
                     DRV_EPROTO);
}

static void
test_redis_sentinel_parse_switch(void **state)
{
    static const char msg[] = "mymaster 127.0.0.1 6379 127.0.0.1 6380";
    static const char *const bad[] = {
        "", "mymaster 127.0.0.1 6379 127.0.0.1",
        "mymaster 127.0.0.1 6379 127.0.0.1 6380 extra",
        "mymaster 127.0.0.1 port 127.0.0.1 6380",
        "mymaster 127.0.0.1 6379 127.0.0.1 0",
    };
    struct drv_redis_sentinel_switch sw;
    struct drv_err err = {0, ""};
    size_t i;

    (void)state;
    assert_int_equal(drv_redis_sentinel_parse_switch(msg, strlen(msg), &sw,
                                                     &err), 0);
    assert_string_equal(sw.name, "mymaster");
    assert_string_equal(sw.from.host, "127.0.0.1");
    assert_int_equal(sw.from.port, 6379);
    assert_string_equal(sw.to.host, "127.0.0.1");
    assert_int_equal(sw.to.port, 6380);
    /* the length bounds the text: no NUL needed */
    assert_int_equal(drv_redis_sentinel_parse_switch(msg, 27, &sw, &err),
                     DRV_EPROTO);
    for (i = 0; i < DRV_ARRAY_LEN(bad); i++)
        assert_int_equal(drv_redis_sentinel_parse_switch(bad[i],
                                                         strlen(bad[i]),
                                                         &sw, &err),
                         DRV_EPROTO);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_sentinel_addr),
        cmocka_unit_test(test_redis_sentinel_url),
        cmocka_unit_test(test_redis_sentinel_conn_url),
        cmocka_unit_test(test_redis_sentinel_parse_master),
        cmocka_unit_test(test_redis_sentinel_parse_role),
        cmocka_unit_test(test_redis_sentinel_parse_switch),
    };

    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, NULL, NULL);
}
