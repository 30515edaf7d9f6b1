/*
 * fuzz_metrics_http.c -- the request path of droverd's health and metrics
 * server (pkg/metrics/metrics_http.c): raw bytes from one client
 * connection through libevent's evhttp parser into its routing and
 * replies (/healthz, /readyz, /metrics, HEAD, 404, 405), with the limits
 * the server sets on headers and bodies. metrics_http.c is included so
 * the target serves with the server's own evhttp.
 *
 * Input: a mode byte, then the bytes the client sends. Mode bit 0: the
 * health check fails; bit 1: the readiness check fails. Properties: every
 * status on the wire is one this server (or evhttp's own error replies)
 * uses; for an input holding one request whose request line is
 * `GET /healthz` or `GET /readyz`, a failing check never answers 200 and
 * a passing one never answers 503; a 200 to `GET /metrics` carries the
 * registry's rendering.
 */
#include "../../pkg/metrics/metrics_http.c"

#include "fuzz_evhttp.h"

static struct {
    struct drv_loop *loop;
    struct drv_metrics *metrics;
    struct drv_metrics_http *h;
    struct fuzz_evhttp_addr addr;
    int sick;       /* health check fails */
    int unready;    /* readiness check fails */
} fx;

static int
health(char *buf, size_t n, void *ctx)
{
    (void)ctx;
    if (!fx.sick)
        return 0;
    snprintf(buf, n, "event loop blocked for 6.0 s");
    return 1;
}

static int
ready(char *buf, size_t n, void *ctx)
{
    (void)ctx;
    if (!fx.unready)
        return 0;
    snprintf(buf, n, "redis connection \"cmd\" is down");
    return 1;
}

static void
fixture_init(void)
{
    static const char *const labels[] = {"queue", "job", NULL};
    static const char *const values[] = {"default", "we\"ird\\\n", NULL};
    struct drv_metrics_http_opts o;
    struct drv_metrics_family *f;
    struct drv_err err;

    fx.loop = drv_loop_create(NULL);
    fx.metrics = drv_metrics_create();
    f = drv_metrics_family_add(fx.metrics, "drover_jobs_processed_total",
                               "attempts that succeeded",
                               DRV_METRICS_COUNTER, labels, NULL, 0);
    drv_metrics_add(drv_metrics_series_add(f, values), 3);
    memset(&o, 0, sizeof o);
    o.listen = "127.0.0.1:0";
    o.metrics = fx.metrics;
    o.health = health;
    o.ready = ready;
    if (drv_metrics_http_start(fx.loop, &o, &fx.h, &err) < 0)
        FUZZ_FAIL("metrics server: %s", err.msg);
    fuzz_evhttp_listen(fx.h->http, &fx.addr);
}

/* The path of the input's only request line "GET PATH HTTP/1.x", or NULL
 * (another method, or more than one request). */
static const char *
only_get(const uint8_t *data, size_t n, char *path, size_t pn)
{
    const char *s = (const char *)data, *sp, *v;
    size_t len;

    if (n < 14 || memcmp(s, "GET /", 5) != 0)
        return NULL;
    v = memmem(s, n, " HTTP/1.", 8);
    if (v == NULL || memmem(v + 8, n - (size_t)(v + 8 - s), "HTTP/1.", 7))
        return NULL;
    sp = memchr(s + 4, ' ', n - 4);
    len = (size_t)(sp - (s + 4));
    if (sp != v || len >= pn || memchr(s, '\n', (size_t)(v - s)) != NULL)
        return NULL;
    memcpy(path, s + 4, len);
    path[len] = '\0';
    return path;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int known[] = {200, 400, 404, 405, 408, 411, 413, 414,
                                417, 431, 500, 501, 503, 505};
    struct drv_buf out;
    char pathbuf[64];
    const char *path;
    int codes[64];
    size_t ncodes, i, k;

    if (fx.loop == NULL)
        fixture_init();
    if (size == 0)
        return 0;
    fx.sick = data[0] & 1;
    fx.unready = (data[0] >> 1) & 1;
    data++;
    size--;
    drv_buf_init(&out);
    fuzz_evhttp_exchange(drv_loop_base(fx.loop), &fx.addr, data, size, &out);
    fuzz_evhttp_statuses(out.data, out.len, codes, 64, &ncodes);
    path = only_get(data, size, pathbuf, sizeof pathbuf);
    for (i = 0; i < ncodes; i++) {
        for (k = 0; k < sizeof known / sizeof known[0]; k++)
            if (known[k] == codes[i])
                break;
        FUZZ_CHECK(k < sizeof known / sizeof known[0], "status %d",
                   codes[i]);
        if (path == NULL || ncodes != 1)
            continue;
        if (strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0) {
            int fails = path[1] == 'h' ? fx.sick : fx.unready;

            FUZZ_CHECK(!(fails && codes[i] == 200), "%s: 200 while failing",
                       path);
            FUZZ_CHECK(!(!fails && codes[i] == 503), "%s: 503 while fine",
                       path);
        }
        if (strcmp(path, "/metrics") == 0 && codes[i] == 200)
            FUZZ_CHECK(memmem(out.data, out.len,
                              "drover_jobs_processed_total{queue=\"default\","
                              "job=\"we\\\"ird\\\\\\n\"} 3", 60) != NULL,
                       "/metrics without the series");
    }
    drv_buf_fini(&out);
    return 0;
}
