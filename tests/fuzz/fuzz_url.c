/*
 * fuzz_url.c -- drv__http_url_lean against libcurl's URL parser.
 *
 * Input: a mode byte, then text T (up to its first NUL). The URL is T
 * itself when the mode byte is odd, else "http://" T. Property: whenever
 * drv__http_url_lean takes the URL (so the own client sends it without
 * asking libcurl), libcurl's parser takes it too and its parts give the
 * same target: Host header, request-target, port, and the same address
 * or name to resolve.
 */
#include <stdint.h>
#include <string.h>

#include "drover/buf.h"
#include "../../pkg/http/http_int.h"
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct drv__h1_target a, b;
    struct drv_buf url;
    size_t n;

    if (size == 0)
        return 0;
    n = strnlen((const char *)data + 1, size - 1);
    drv_buf_init(&url);
    if (!(data[0] & 1))
        drv_buf_adds(&url, "http://");
    drv_buf_add(&url, data + 1, n);
    drv_buf_adds(&url, ""); /* NUL-terminated even when empty */
    drv__h1_target_init(&a);
    drv__h1_target_init(&b);
    if (drv__http_url_lean(url.data, &a) == 1) {
        FUZZ_CHECK(drv__http_url_curl(url.data, &b) == 1,
                   "%s: taken here; libcurl's parts do not go through h1",
                   url.data);
        FUZZ_CHECK(drv__h1_target_same(&a, &b),
                   "%s: Host %s, target %s, port %u here; Host %s, target "
                   "%s, port %u by libcurl", url.data, a.host.data,
                   a.path.data, a.port, b.host.data, b.path.data, b.port);
    }
    drv__h1_target_fini(&a);
    drv__h1_target_fini(&b);
    drv_buf_fini(&url);
    return 0;
}
