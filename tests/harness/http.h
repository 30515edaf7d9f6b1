/*
 * http.h -- a hand-written HTTP/1.1 client for tests of droverd's HTTP
 * endpoint (worker.metrics): raw requests whose every byte the test
 * controls, a GET that keeps the body, and the reading of one series of
 * a Prometheus scrape (/metrics), once or until it reaches a value.
 * Everything talks to 127.0.0.1:port over TCP, one connection a request
 * (Connection: close). The waits poll with DRV_TEST_WAIT_MS as a hang
 * guard, never as a speed check.
 */
#ifndef DROVER_TEST_HTTP_H
#define DROVER_TEST_HTTP_H

#include <stddef.h>
#include <sys/types.h>

#include "harness.h"

#define DRV_TEST_BODY_MAX (4 * 1024 * 1024) /* the largest answer read */

/* drv_test_send_all -- write all n bytes of p to fd; stops quietly when
 * the server closes (the caller sees it when reading). */
void drv_test_send_all(int fd, const char *p, size_t n);

/* drv_test_read_all -- read until EOF (or fd's receive timeout) into out
 * (size n, NUL-ended); the bytes read (a reset counts as EOF), -1 on a
 * timeout before EOF. */
ssize_t drv_test_read_all(int fd, char *out, size_t n);

/* drv_test_http_status -- the status of a raw response ("HTTP/1.1 200
 * ..."), 0 for none. */
int drv_test_http_status(const char *resp);

/* drv_test_http_raw -- send the raw request bytes req (len) to port and
 * read the whole answer into out (size n): its status, 0 when the server
 * closed without answering, -1 when the connection was refused. Fails
 * the test when the server neither answers nor closes. */
int drv_test_http_raw(int port, const char *req, size_t len, char *out,
                      size_t n);

/* drv_test_http_get -- `METHOD path` with no body (the request
 * drv_test_http_request builds): the status (as drv_test_http_raw), the
 * body (after the blank line) into body (size n) unless body is NULL. */
int drv_test_http_get(int port, const char *method, const char *path,
                      char *body, size_t n);

/* drv_test_wait_http -- poll GET path until it answers want (and its body
 * contains needle, when not NULL). */
void drv_test_wait_http(int port, const char *path, int want,
                        const char *needle);

/* drv_test_scrape -- the body of GET /metrics (caller frees); fails the
 * test unless it answers 200. */
char *drv_test_scrape(int port);

/* drv_test_metric -- the value of the series written exactly as series
 * (name{labels}) in a scrape's body, NAN when it has no such line. */
double drv_test_metric(const char *body, const char *series);

/* drv_test_metricf -- drv_test_metric with a printf-formed series. */
double drv_test_metricf(const char *body, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* drv_test_scraped -- the value of series in a scrape of port now; NAN
 * when the scrape is refused or fails, or has no such line. */
double drv_test_scraped(int port, const char *series);

/* drv_test_wait_metric -- poll the scrape of port until series equals
 * want (refused, not yet sampled or another value: try again). */
void drv_test_wait_metric(int port, const char *series, double want);

#endif
