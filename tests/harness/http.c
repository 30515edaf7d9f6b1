/*
 * http.c -- the HTTP client and scrape readers of http.h.
 */
#include "http.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void
drv_test_send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return; /* the server closed: the caller sees it when reading */
        p += w;
        n -= (size_t)w;
    }
}

ssize_t
drv_test_read_all(int fd, char *out, size_t n)
{
    size_t got = 0;

    for (;;) {
        ssize_t r = recv(fd, out + got, n - 1 - got, 0);
        if (r == 0)
            break;
        if (r < 0) {
            if (errno == EINTR)
                continue;
            out[got] = '\0';
            return errno == ECONNRESET ? (ssize_t)got : -1;
        }
        got += (size_t)r;
        if (got == n - 1)
            break;
    }
    out[got] = '\0';
    return (ssize_t)got;
}

int
drv_test_http_status(const char *resp)
{
    int code = 0;

    if (sscanf(resp, "HTTP/1.%*d %d", &code) != 1)
        return 0;
    return code;
}

int
drv_test_http_raw(int port, const char *req, size_t len, char *out,
                  size_t n)
{
    int fd = drv_test_dial(port, DRV_TEST_WAIT_MS);
    ssize_t r;

    out[0] = '\0';
    if (fd < 0)
        return -1;
    drv_test_send_all(fd, req, len);
    r = drv_test_read_all(fd, out, n);
    close(fd);
    assert_true(r >= 0); /* an answer or a close, never a hang */
    return drv_test_http_status(out);
}

int
drv_test_http_get(int port, const char *method, const char *path,
                  char *body, size_t n)
{
    size_t len;
    char *req = drv_test_http_request(port, method, path, NULL, NULL, &len);
    char *resp = malloc(DRV_TEST_BODY_MAX);
    const char *b;
    int code;

    assert_non_null(resp);
    code = drv_test_http_raw(port, req, len, resp, DRV_TEST_BODY_MAX);
    free(req);
    b = strstr(resp, "\r\n\r\n");
    if (body != NULL)
        snprintf(body, n, "%s", b != NULL ? b + 4 : "");
    free(resp);
    return code;
}

void
drv_test_wait_http(int port, const char *path, int want, const char *needle)
{
    char body[4096] = "";
    int code = 0;

    wait_until((code = drv_test_http_get(port, "GET", path, body,
                                         sizeof body)) == want &&
                   (needle == NULL || strstr(body, needle)),
               "%s to answer %d (%s); last %d \"%s\"", path, want,
               needle ? needle : "", code, body);
}

char *
drv_test_scrape(int port)
{
    char *body = malloc(DRV_TEST_BODY_MAX);

    assert_non_null(body);
    assert_int_equal(drv_test_http_get(port, "GET", "/metrics", body,
                                       DRV_TEST_BODY_MAX), 200);
    return body;
}

double
drv_test_metric(const char *body, const char *series)
{
    size_t n = strlen(series);
    const char *p = body;

    while ((p = strstr(p, series)) != NULL) {
        if ((p == body || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p += n;
    }
    return NAN;
}

double
drv_test_metricf(const char *body, const char *fmt, ...)
{
    char series[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(series, sizeof series, fmt, ap);
    va_end(ap);
    return drv_test_metric(body, series);
}

double
drv_test_scraped(int port, const char *series)
{
    char *b = malloc(DRV_TEST_BODY_MAX);
    double v = NAN;

    assert_non_null(b);
    if (drv_test_http_get(port, "GET", "/metrics", b, DRV_TEST_BODY_MAX) ==
        200)
        v = drv_test_metric(b, series);
    free(b);
    return v;
}

void
drv_test_wait_metric(int port, const char *series, double want)
{
    double v = NAN;

    wait_until((v = drv_test_scraped(port, series)) == want,
               "%s to be %g; last %g", series, want, v);
}
