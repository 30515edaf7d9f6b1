/*
 * evhttp.h -- helpers for tests that run a libevent HTTP server (the
 * other end of drover's HTTP client and handler).
 */
#ifndef DROVER_TEST_EVHTTP_H
#define DROVER_TEST_EVHTTP_H

#include <event2/http.h>

/* drv_test_method_name -- "GET", "POST", ... for cmd; "?" for one this
 * does not name. */
const char *drv_test_method_name(enum evhttp_cmd_type cmd);

#endif
