/*
 * test_redis_url.c -- Redis URL parsing and redaction, script SHA1
 * vectors, reply helpers, and option checks of drv_redis_create (no
 * server needed: nothing connects before the loop runs).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "harness.h"
#include "drover/common.h"
#include "drover/loop.h"
#include "drover/redis.h"

#include "../../pkg/redis/redis_int.h"

static void
parse_ok(const char *url, struct drv_redis_url *u)
{
    struct drv_err err = {0, ""};
    int rc = drv_redis_url_parse(url, u, &err);

    if (rc != 0)
        fail_msg("parse '%s': %d %s", url, rc, err.msg);
}

static void
parse_bad(const char *url, const char *needle)
{
    struct drv_redis_url u;
    struct drv_err err = {0, ""};
    int rc = drv_redis_url_parse(url, &u, &err);

    if (rc != DRV_ECONFIG)
        fail_msg("parse '%s' gave %d, want DRV_ECONFIG", url ? url : "NULL",
                 rc);
    assert_int_equal(err.code, DRV_ECONFIG);
    if (needle != NULL && strstr(err.msg, needle) == NULL)
        fail_msg("parse '%s': message '%s' lacks '%s'", url, err.msg,
                 needle);
}

static void
test_redis_url_tcp(void **st)
{
    struct drv_redis_url u;

    (void)st;
    parse_ok("redis://127.0.0.1:6380/2", &u);
    assert_int_equal(u.is_unix, 0);
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "");

    parse_ok("redis://10.1.2.3", &u);
    assert_string_equal(u.host, "10.1.2.3");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);

    parse_ok("redis://10.1.2.3/", &u);
    assert_int_equal(u.db, 0);

    /* names are kept as they are: resolved at connect time, off the loop */
    parse_ok("REDIS://localhost:7000", &u);
    assert_string_equal(u.host, "localhost");
    assert_int_equal(u.port, 7000);
    assert_int_equal(u.tls, 0);

    parse_ok("redis://redis-master.default.svc.cluster.local:6380/1", &u);
    assert_string_equal(u.host, "redis-master.default.svc.cluster.local");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 1);

    parse_ok("redis://my_redis_1/", &u); /* compose-style service name */
    assert_string_equal(u.host, "my_redis_1");
    assert_int_equal(u.port, 6379);

    parse_ok("redis://redis.example.com.:6379", &u); /* absolute name */
    assert_string_equal(u.host, "redis.example.com.");

    parse_ok("redis://[::1]:7001/3", &u);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 7001);
    assert_int_equal(u.db, 3);

    parse_ok("redis://[fe80::1]", &u);
    assert_string_equal(u.host, "fe80::1");
    assert_int_equal(u.port, 6379);
}

static void
test_redis_url_tls(void **st)
{
    struct drv_redis_url u;

    (void)st;
    parse_ok("rediss://drover:pw@redis.example:6380/2", &u);
    assert_int_equal(u.tls, 1);
    assert_int_equal(u.is_unix, 0);
    assert_string_equal(u.host, "redis.example");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 2);
    assert_string_equal(u.user, "drover");
    assert_string_equal(u.password, "pw");

    parse_ok("REDISS://10.0.0.1", &u);
    assert_int_equal(u.tls, 1);
    assert_string_equal(u.host, "10.0.0.1");
    assert_int_equal(u.port, 6379);

    parse_ok("rediss://[::1]:7000", &u);
    assert_int_equal(u.tls, 1);
    assert_string_equal(u.host, "::1");

    parse_ok("redis://10.0.0.1", &u);
    assert_int_equal(u.tls, 0);
    parse_ok("unix:///tmp/r.sock", &u);
    assert_int_equal(u.tls, 0);
}

static void
test_redis_url_host_names(void **st)
{
    char name[300], url[400];

    (void)st;
    parse_bad("redis://redis example:6379", "neither an IP address nor");
    parse_bad("redis://bad!host", "neither an IP address nor");
    parse_bad("redis://-redis", "valid host name");
    parse_bad("redis://redis-.example", "valid host name");
    parse_bad("redis://a..b", "valid host name");
    parse_bad("redis://.example", "valid host name");
    parse_bad("redis://a.b..", "valid host name");
    parse_bad("rediss://exa%41mple", "valid host name");
    /* a label of 63 is fine, 64 is not */
    memset(name, 'a', 64);
    name[63] = '\0';
    snprintf(url, sizeof url, "redis://%s.example:1", name);
    {
        struct drv_redis_url u;

        parse_ok(url, &u);
        assert_string_equal(u.port == 1 ? "ok" : "bad", "ok");
    }
    name[63] = 'a';
    name[64] = '\0';
    snprintf(url, sizeof url, "redis://%s.example:1", name);
    parse_bad(url, "valid host name");
    /* 253 bytes in all at most */
    memset(name, 'a', sizeof name);
    for (int i = 50; i < 299; i += 51)
        name[i] = '.';
    name[299] = '\0';
    snprintf(url, sizeof url, "redis://%s", name);
    parse_bad(url, NULL); /* "host too long" (cut: the URL comes first) */
    name[254] = '\0';
    snprintf(url, sizeof url, "redis://%s", name);
    parse_bad(url, NULL); /* 254 bytes: not a valid host name */
    name[252] = '\0';
    snprintf(url, sizeof url, "redis://%s", name);
    {
        struct drv_redis_url u;

        parse_ok(url, &u);
        assert_int_equal(strlen(u.host), 252);
    }
}

static void
test_redis_url_credentials(void **st)
{
    struct drv_redis_url u;

    (void)st;
    parse_ok("redis://:secret@127.0.0.1", &u);
    assert_string_equal(u.user, "");
    assert_string_equal(u.password, "secret");

    parse_ok("redis://alice:s3cr3t@127.0.0.1:6379/1", &u);
    assert_string_equal(u.user, "alice");
    assert_string_equal(u.password, "s3cr3t");
    assert_int_equal(u.db, 1);

    parse_ok("redis://alice@127.0.0.1", &u);
    assert_string_equal(u.user, "alice");
    assert_string_equal(u.password, "");

    /* raw '@', '/' and ':' in the password: user info ends at the last @ */
    parse_ok("redis://u:p@ss/w:rd@127.0.0.1/4", &u);
    assert_string_equal(u.user, "u");
    assert_string_equal(u.password, "p@ss/w:rd");
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.db, 4);

    parse_ok("redis://us%65r:p%40ss%3a@1.2.3.4", &u);
    assert_string_equal(u.user, "user");
    assert_string_equal(u.password, "p@ss:");
}

static void
test_redis_url_unix(void **st)
{
    struct drv_redis_url u;

    (void)st;
    parse_ok("unix:///tmp/r.sock", &u);
    assert_int_equal(u.is_unix, 1);
    assert_string_equal(u.path, "/tmp/r.sock");
    assert_int_equal(u.db, 0);

    parse_ok("unix:///tmp/r.sock?db=5", &u);
    assert_string_equal(u.path, "/tmp/r.sock");
    assert_int_equal(u.db, 5);

    parse_ok("unix://:pw@/var/run/redis.sock?db=1", &u);
    assert_string_equal(u.password, "pw");
    assert_string_equal(u.path, "/var/run/redis.sock");
    assert_int_equal(u.db, 1);

    parse_ok("unix://bob:p@w@/tmp/x.sock", &u);
    assert_string_equal(u.user, "bob");
    assert_string_equal(u.password, "p@w");
    assert_string_equal(u.path, "/tmp/x.sock");

    parse_ok("unix:///tmp/a%20b.sock", &u);
    assert_string_equal(u.path, "/tmp/a b.sock");
}

static void
test_redis_url_errors(void **st)
{
    char longp[200];

    (void)st;
    parse_bad(NULL, "empty");
    parse_bad("", "empty");
    parse_bad("127.0.0.1:6379", "expected");
    parse_bad("http://1.2.3.4", "unknown scheme");
    parse_bad("rediss:/1.2.3.4", "expected");
    parse_bad("redisss://1.2.3.4", "unknown scheme");
    parse_bad("redis://", "missing host");
    parse_bad("redis://:6379", "missing host");
    parse_bad("redis://1.2.3.4:0", "port");
    parse_bad("redis://1.2.3.4:65536", "port");
    parse_bad("redis://1.2.3.4:", "port");
    parse_bad("redis://1.2.3.4:x1", "port");
    parse_bad("redis://1.2.3.4:+1", "port");
    parse_bad("redis://1.2.3.4/x", "database");
    parse_bad("redis://1.2.3.4/1/2", "database");
    parse_bad("redis://1.2.3.4/-1", "database");
    parse_bad("redis://::1:6379", "brackets");
    parse_bad("redis://[::1", "]");
    parse_bad("redis://[::1]x", "junk");
    parse_bad("redis://[1.2.3.4]", "not an IP");
    parse_bad("redis://1.2.3.4?db=1", "query");
    parse_bad("unix://relative.sock", "absolute");
    parse_bad("unix://", "absolute");
    parse_bad("unix:///", "missing socket path");
    parse_bad("unix:///tmp/s?foo=1", "db=N");
    parse_bad("unix:///tmp/s?db=1&x=2", "db=N");
    parse_bad("unix:///tmp/s?db=x", "database");
    parse_bad("redis://u:%zz@1.2.3.4", "password");
    parse_bad("redis://u:%4@1.2.3.4", "password");
    parse_bad("redis://u:%00@1.2.3.4", "password");
    parse_bad("redis://u%:x@1.2.3.4", "user");
    memset(longp, 'a', sizeof longp);
    memcpy(longp, "unix:///", 8);
    longp[sizeof longp - 1] = '\0';
    parse_bad(longp, "longer than");
}

static void
test_redis_url_error_hides_password(void **st)
{
    struct drv_redis_url u;
    struct drv_err err = {0, ""};

    (void)st;
    assert_int_equal(drv_redis_url_parse("redis://u:topsecret@db.example/x",
                                         &u, &err), DRV_ECONFIG);
    assert_null(strstr(err.msg, "topsecret"));
    assert_non_null(strstr(err.msg, "u:***@db.example/x"));
}

static void
redact_is(const char *url, const char *want)
{
    char buf[256];

    drv_redis_url_redact(url, buf, sizeof buf);
    if (strcmp(buf, want) != 0)
        fail_msg("redact '%s' = '%s', want '%s'", url, buf, want);
}

static void
test_redis_url_redact(void **st)
{
    char small[12];

    (void)st;
    redact_is("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0");
    redact_is("redis://:pw@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0");
    redact_is("redis://alice:pw@10.0.0.1/2", "redis://alice:***@10.0.0.1/2");
    redact_is("redis://alice@10.0.0.1/2", "redis://alice@10.0.0.1/2");
    redact_is("redis://u:p@ss/w:rd@1.2.3.4/1", "redis://u:***@1.2.3.4/1");
    redact_is("unix://:pw@/tmp/r.sock?db=1", "unix://:***@/tmp/r.sock?db=1");
    redact_is("unix:///tmp/r.sock", "unix:///tmp/r.sock");
    redact_is("junk:pw@host", "***@host");
    redact_is("", "");
    redact_is(NULL, "");
    /* cut but terminated, and never the password */
    drv_redis_url_redact("redis://u:secret@1.2.3.4", small, sizeof small);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_null(strstr(small, "sec"));
    drv_redis_url_redact("x", small, 0); /* n == 0 touches nothing */
}

static void
sha_is(const char *data, size_t len, const char *want)
{
    char hex[DRV__REDIS_SHA1_HEX];

    drv__redis_sha1_hex(data, len, hex);
    if (strcmp(hex, want) != 0)
        fail_msg("sha1 of %zu bytes = %s, want %s", len, hex, want);
}

static void
test_redis_sha1_vectors(void **st)
{
    static const struct {
        size_t n;
        const char *sha;
    } as[] = {
        {55, "c1c8bbdc22796e28c0e15163d20899b65621d65a"},
        {56, "c2db330f6083854c99d4b5bfb6e8f29f201be699"},
        {63, "03f09f5b158a7a8cdad920bddc29b81c18a551f5"},
        {64, "0098ba824b5c16427bd7a1122a5a442a25ec644d"},
        {65, "11655326c708d70319be2610e8a57d9a5b959d3b"},
        {1000000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f"},
    };
    struct drv_redis_script *s;
    char *a = malloc(1000000);
    size_t i;

    (void)st;
    sha_is("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    sha_is("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
    sha_is("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
           "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    assert_non_null(a);
    memset(a, 'a', 1000000);
    for (i = 0; i < DRV_ARRAY_LEN(as); i++)
        sha_is(a, as[i].n, as[i].sha);
    free(a);
    sha_is("return 1", 8, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    s = drv_redis_script_create("return 1", 8);
    drv_redis_script_free(s);
    drv_redis_script_free(NULL);
}

static void
test_redis_reply_helpers(void **st)
{
    redisReply e, ok;
    struct drv_err err;
    char text[] = "NOSCRIPT No matching script. Please use EVAL.";

    (void)st;
    memset(&e, 0, sizeof e);
    e.type = REDIS_REPLY_ERROR;
    e.str = text;
    e.len = strlen(text);
    memset(&ok, 0, sizeof ok);
    ok.type = REDIS_REPLY_INTEGER;
    ok.integer = 7;

    assert_true(drv_redis_reply_is_error(&e));
    assert_false(drv_redis_reply_is_error(&ok));
    assert_false(drv_redis_reply_is_error(NULL));
    assert_true(drv_redis_reply_error_is(&e, "NOSCRIPT"));
    assert_false(drv_redis_reply_error_is(&e, "NOSCRIP"));
    assert_false(drv_redis_reply_error_is(&e, "BUSYGROUP"));
    assert_false(drv_redis_reply_error_is(&ok, "NOSCRIPT"));

    assert_int_equal(drv_redis_result(0, &ok, &err), 0);
    assert_int_equal(err.code, 0);
    assert_int_equal(drv_redis_result(0, &e, &err), DRV_EREDIS);
    assert_string_equal(err.msg, text);
    assert_int_equal(drv_redis_result(-ETIMEDOUT, NULL, &err), -ETIMEDOUT);
    assert_int_equal(err.code, -ETIMEDOUT);
    assert_int_equal(drv_redis_result(DRV_EDOWN, NULL, NULL), DRV_EDOWN);
}

static void
create_bad(struct drv_loop *loop, const struct drv_redis_opts *o,
           const char *needle)
{
    struct drv_redis *r = (struct drv_redis *)&r;
    struct drv_err err = {0, ""};

    assert_int_equal(drv_redis_create(loop, o, &r, &err), DRV_ECONFIG);
    assert_null(r);
    if (strstr(err.msg, needle) == NULL)
        fail_msg("create error '%s' lacks '%s'", err.msg, needle);
}

static void
test_redis_create_rejects_bad_options(void **st)
{
    struct drv_loop_opts lo = {.lag_interval_ms = -1};
    struct drv_loop *loop = drv_loop_create(&lo);
    struct drv_redis_opts o;
    struct drv_redis *r = NULL;
    struct drv_err err;

    (void)st;
    assert_non_null(loop);
    memset(&o, 0, sizeof o);
    create_bad(loop, &o, "url is required");
    create_bad(loop, NULL, "url is required");
    o.url = "redis://exa_mple!.org";
    create_bad(loop, &o, "nor a valid host name");
    o.url = "rediss://127.0.0.1:1";
    o.tls = &(struct drv_redis_tls){.ca_file = "/nonexistent/ca.pem"};
    create_bad(loop, &o, "ca_file '/nonexistent/ca.pem'");
    o.tls = &(struct drv_redis_tls){.key_file = "/nonexistent/key.pem"};
    create_bad(loop, &o, "key_file is set but cert_file is not");
    o.tls = NULL;
    o.url = "redis://127.0.0.1:1";
    o.name = "has space";
    create_bad(loop, &o, "name");
    o.name = "";
    create_bad(loop, &o, "name");
    o.name = "ok";
    o.command_timeout_ms = -1;
    create_bad(loop, &o, ">= 0");
    o.command_timeout_ms = 0;

    /* a good one, freed before it ever connects */
    assert_drv_ok(drv_redis_create(loop, &o, &r, &err), &err);
    assert_int_equal(drv_redis_state(r), DRV_REDIS_DOWN);
    {
        struct drv_redis_info ri;

        drv_redis_get_info(r, &ri);
        assert_int_equal(ri.state, DRV_REDIS_DOWN);
        assert_int_equal(ri.client_id, -1);
        assert_string_equal(ri.name, "ok");
        assert_string_equal(ri.peer, "");
        assert_string_equal(ri.last_error, "");
    }
    {
        struct drv_redis_target t;

        /* the target starts as the URL's; set_target checks its input */
        drv_redis_get_target(r, &t);
        assert_int_equal(t.is_unix, 0);
        assert_string_equal(t.host, "127.0.0.1");
        assert_int_equal(t.port, 1);
        t.port = 0;
        assert_int_equal(drv_redis_set_target(r, &t), -EINVAL);
        t.port = 6380;
        t.host[0] = '\0';
        assert_int_equal(drv_redis_set_target(r, &t), -EINVAL);
        snprintf(t.host, sizeof t.host, "redis-2.example");
        assert_int_equal(drv_redis_set_target(r, &t), 0);
        t.is_unix = 1;
        snprintf(t.path, sizeof t.path, "relative.sock");
        assert_int_equal(drv_redis_set_target(r, &t), -EINVAL);
        drv_redis_get_target(r, &t);
        assert_int_equal(t.is_unix, 0);
        assert_string_equal(t.host, "redis-2.example");
        assert_int_equal(t.port, 6380);
    }
    drv_redis_free(r);
    assert_int_equal(drv_loop_run(loop), 0);
    assert_int_equal(event_base_get_num_events(
                         drv_loop_base(loop), EVENT_BASE_COUNT_ADDED), 0);
    drv_loop_free(loop);
}

/* scrub: the password overwritten in place, the rest kept */
static void
scrub_case(const char *url, const char *want)
{
    char buf[256];
    size_t len = strlen(url);

    memset(buf, 'Z', sizeof buf);
    memcpy(buf, url, len + 1);
    drv_redis_url_scrub(buf);
    assert_string_equal(buf, want);
    /* the bytes after the new end up to the old end are NULs */
    assert_null(memchr(buf, 'Z', len + 1));
}

static void
test_redis_url_scrub(void **st)
{
    scrub_case("redis://drover:s3cretpw@127.0.0.1:6379/0",
               "redis://drover:***@127.0.0.1:6379/0");
    scrub_case("redis://:s3cretpw@127.0.0.1", "redis://:***@127.0.0.1");
    scrub_case("unix://u:p%40ss@/run/redis.sock",
               "unix://u:***@/run/redis.sock");
    /* shorter than "***": starred, same length */
    scrub_case("redis://:ab@127.0.0.1", "redis://:**@127.0.0.1");
    scrub_case("redis://u:x@127.0.0.1", "redis://u:*@127.0.0.1");
    /* nothing to hide */
    scrub_case("redis://drover@127.0.0.1:6379", "redis://drover@127.0.0.1:6379");
    scrub_case("redis://127.0.0.1", "redis://127.0.0.1");
    drv_redis_url_scrub(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_url_tcp),
        cmocka_unit_test(test_redis_url_tls),
        cmocka_unit_test(test_redis_url_host_names),
        cmocka_unit_test(test_redis_url_credentials),
        cmocka_unit_test(test_redis_url_unix),
        cmocka_unit_test(test_redis_url_errors),
        cmocka_unit_test(test_redis_url_error_hides_password),
        cmocka_unit_test(test_redis_url_redact),
        cmocka_unit_test(test_redis_url_scrub),
        cmocka_unit_test(test_redis_sha1_vectors),
        cmocka_unit_test(test_redis_reply_helpers),
        cmocka_unit_test(test_redis_create_rejects_bad_options),
    };

    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, NULL, NULL);
}
