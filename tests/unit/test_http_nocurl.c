/*
 * test_http_nocurl.c -- the HTTP client without libcurl: plain http://
 * requests work and never load it; a request that needs libcurl fails at
 * once with -ELIBACC, every time. Its own process: libcurl's load is
 * tried once per process, here with its name pointed at a file that does
 * not exist.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "harness.h"
#include "drover/common.h"
#include "drover/http.h"
#include "drover/loop.h"
#include "drover/version.h"
#include "../../pkg/http/http_int.h"

#define MISSING "libdrover-test-no-such-curl.so.4"

struct state {
    struct drv_loop *loop;
    int done;                   /* completions */
    int code;                   /* the last one's */
    int status;
};

static void
on_request(struct evhttp_request *req, void *arg)
{
    struct evbuffer *out = evbuffer_new();

    (void)arg;
    evbuffer_add_printf(out, "ok");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

static void
on_done(struct drv_http_call *call, int code, const struct drv_http_resp *r,
        void *ctx)
{
    struct state *s = ctx;

    (void)call;
    s->done++;
    s->code = code;
    s->status = r->status;
    drv_loop_stop(s->loop);
}

static void
test_http_nocurl_plain_works_others_fail(void **st)
{
    struct drv_loop_opts lo = {.lag_interval_ms = -1};
    struct state s = {0};
    struct evhttp *srv;
    struct evhttp_bound_socket *bs;
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    struct drv_http *h = NULL;
    struct drv_http_req rq;
    char url[128];
    static const char *const need_curl[] = {
        "https://127.0.0.1:1/x", "http://user:pw@127.0.0.1:1/x",
        "http://127.1:1/x", "not a url",
    };
    size_t i;
    int round;

    (void)st;
    drv__curl_soname = MISSING;
    s.loop = drv_loop_create(&lo);
    assert_non_null(s.loop);
    srv = evhttp_new(drv_loop_base(s.loop));
    assert_non_null(srv);
    evhttp_set_gencb(srv, on_request, NULL);
    bs = evhttp_bind_socket_with_handle(srv, "127.0.0.1", 0);
    assert_non_null(bs);
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs),
                                 (struct sockaddr *)&sin, &len), 0);
    assert_int_equal(drv_http_create(s.loop, NULL, &h), 0);
    memset(&rq, 0, sizeof rq);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x?y=1",
             ntohs(sin.sin_port));
    rq.url = url;
    rq.timeout_ms = 20000;
    rq.body_max = 100;
    for (round = 0; round < 2; round++) {
        /* plain http://: the own client, no libcurl */
        assert_int_equal(drv_http_request(h, &rq, on_done, &s, NULL), 0);
        assert_int_equal(drv_loop_run(s.loop), 0);
        assert_int_equal(s.done, round + 1);
        assert_int_equal(s.code, 0);
        assert_int_equal(s.status, 200);
        /* those that need libcurl: refused at once, no callback */
        for (i = 0; i < DRV_ARRAY_LEN(need_curl); i++) {
            struct drv_http_req bad = rq;

            bad.url = need_curl[i];
            if (drv_http_request(h, &bad, on_done, &s, NULL) != -ELIBACC)
                fail_msg("%s: not -ELIBACC", need_curl[i]);
        }
    }
    assert_int_equal(s.done, 2);
    /* a Retry-After date is read without libcurl */
    assert_int_equal(drv_http_parse_retry_after(
                         "Thu, 01 Jan 1970 00:00:10 GMT", 29, 0), 10000);
    assert_int_equal(drv__curl_loaded(), 0);
    drv_http_free(h);
    evhttp_free(srv);
    drv_loop_free(s.loop);
}

/* drover --version --verbose names libcurl's state when it cannot be
 * loaded (it dereferenced the missing version record before) */
static void
test_http_nocurl_version_verbose(void **st)
{
    char buf[4096];
    FILE *fp;
    size_t n;

    (void)st;
    drv__curl_soname = MISSING;
    fp = fmemopen(buf, sizeof buf - 1, "w");
    assert_non_null(fp);
    assert_int_equal(drv_version_print(fp, "droverd", true), 0);
    n = (size_t)ftell(fp);
    fclose(fp);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "libcurl   cannot be loaded"));
    assert_non_null(strstr(buf, "libevent"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_nocurl_plain_works_others_fail),
        cmocka_unit_test(test_http_nocurl_version_verbose),
    };

    drv_test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
