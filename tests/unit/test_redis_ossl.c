/*
 * test_redis_ossl.c -- OpenSSL is loaded only for rediss://, and when it
 * cannot be loaded a rediss:// connection is refused with a clear error
 * while plain redis:// still works. Its own process: the load is tried
 * once per process, here with the library's name pointed at a file that
 * does not exist.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "harness.h"
#include "drover/common.h"
#include "drover/loop.h"
#include "drover/redis.h"
#include "../../pkg/redis/redis_int.h"

#define MISSING "libdrover-test-no-such-openssl.so.3"

static void
test_redis_ossl_missing_library(void **st)
{
    struct drv_loop_opts lo = {.lag_interval_ms = -1};
    struct drv_loop *loop = drv_loop_create(&lo);
    struct drv_redis_opts o;
    struct drv_redis *r = NULL;
    struct drv_err err = {0, ""};
    int i;

    (void)st;
    assert_non_null(loop);
    drv__redis_ossl_soname = MISSING;
    memset(&o, 0, sizeof o);
    /* plain redis:// needs no OpenSSL */
    o.url = "redis://127.0.0.1:1";
    assert_drv_ok(drv_redis_create(loop, &o, &r, &err), &err);
    drv_redis_free(r);
    assert_int_equal(drv_loop_run(loop), 0); /* the free completes */
    r = NULL;
    /* rediss:// says what is missing, every time it is asked */
    o.url = "rediss://127.0.0.1:1";
    for (i = 0; i < 2; i++) {
        assert_int_equal(drv_redis_create(loop, &o, &r, &err), DRV_ECONFIG);
        assert_null(r);
        if (strstr(err.msg, "rediss:// needs OpenSSL") == NULL ||
            strstr(err.msg, "cannot load " MISSING) == NULL)
            fail_msg("error '%s' does not say what is missing", err.msg);
    }
    /* and so does the version line (drover --version -v) */
    if (strstr(OpenSSL_version(OPENSSL_VERSION), MISSING) == NULL)
        fail_msg("OpenSSL_version: '%s'", OpenSSL_version(OPENSSL_VERSION));
    drv_loop_free(loop);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_ossl_missing_library),
    };

    drv_test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
