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
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "drover/buf.h"
#include "../../pkg/http/http_int.h"
#include "fuzz.h"

/* The target libcurl's parts give (as url_target in http.c does); 0, or
 * -1 when libcurl does not take the URL or h1 could not use it. */
static int
curl_target(const char *url, struct drv__h1_target *t)
{
    char *host = NULL, *port = NULL, *path = NULL, *query = NULL, *p;
    CURLU *u = curl_url();
    size_t n;
    int rc = -1;

    if (u == NULL)
        abort();
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK) {
        (void)curl_url_get(u, CURLUPART_PORT, &port, 0);
        (void)curl_url_get(u, CURLUPART_QUERY, &query, 0);
        p = host;
        n = strlen(p);
        if (n >= 2 && p[0] == '[' && p[n - 1] == ']') {
            p[n - 1] = '\0';
            p++;
        }
        rc = drv__h1_target_set(t, p, port != NULL ? (unsigned)atoi(port)
                                                   : 80,
                                port != NULL, path, query);
    }
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(u);
    return rc;
}

static const char *
or_empty(const struct drv_buf *b)
{
    return b->data != NULL ? b->data : "";
}

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
        FUZZ_CHECK(curl_target(url.data, &b) == 0,
                   "%s: taken here, not by libcurl", url.data);
        FUZZ_CHECK(strcmp(or_empty(&a.host), or_empty(&b.host)) == 0 &&
                       strcmp(or_empty(&a.path), or_empty(&b.path)) == 0 &&
                       strcmp(or_empty(&a.name), or_empty(&b.name)) == 0 &&
                       a.port == b.port && a.naddr == b.naddr &&
                       (a.naddr == 0 ||
                        (a.addrs[0].len == b.addrs[0].len &&
                         memcmp(&a.addrs[0].ss, &b.addrs[0].ss,
                                a.addrs[0].len) == 0)),
                   "%s: Host %s, target %s, port %u here; Host %s, target "
                   "%s, port %u by libcurl", url.data, or_empty(&a.host),
                   or_empty(&a.path), a.port, or_empty(&b.host),
                   or_empty(&b.path), b.port);
    }
    drv__h1_target_fini(&a);
    drv__h1_target_fini(&b);
    drv_buf_fini(&url);
    return 0;
}
