/*
 * util.c -- allocation that cannot fail, assertions, error texts, clocks,
 * non-blocking reads.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/error.h"
#include "drover/log.h"

/* ---------------------------------------------------------------- asserts */

void
drv_assert_fail(const char *expr, const char *file, int line, const char *func)
{
    char qe[DRV_LOG_Q_MAX];

    /* expr is source text: it may hold a string literal's quotes */
    fprintf(stderr, "ts=- level=error msg=\"assertion failed\" "
            "expr=%s at=%s:%d func=%s\n", drv_log_q(qe, sizeof qe, expr),
            file, line, func);
    fflush(stderr);
    abort();
}

/* ------------------------------------------------------------ allocation */

static void
oom(size_t n)
{
    fprintf(stderr, "level=error msg=\"out of memory\" bytes=%zu\n", n);
    abort();
}

void *
drv_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);

    if (p == NULL)
        oom(n);
    return p;
}

void *
drv_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (p == NULL)
        oom(n * size);
    return p;
}

void *
drv_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (q == NULL)
        oom(n);
    return q;
}

char *
drv_xstrdup(const char *s)
{
    return drv_xstrndup(s, strlen(s));
}

char *
drv_xstrndup(const char *s, size_t n)
{
    char *p = drv_xmalloc(n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void
drv_strv_free(char **v, size_t n)
{
    size_t i;

    if (v == NULL)
        return;
    for (i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* ------------------------------------------------------------------ reads */

ssize_t
drv_read_nb(int fd, void *buf, size_t len)
{
    ssize_t n;

    do {
        n = read(fd, buf, len);
    } while (n < 0 && errno == EINTR);
    if (n >= 0)
        return n;
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

/* ---------------------------------------------------------------- errors */

const char *
drv_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
    case DRV_EREDIS:
        return "redis error reply";
    case DRV_EPROTO:
        return "protocol error: unexpected reply or input shape";
    case DRV_ECONFIG:
        return "invalid configuration";
    case DRV_EHANDLER:
        return "handler failed";
    case DRV_EDOWN:
        return "redis connection is down";
    case DRV_EPERMANENT:
        return "permanent failure";
    case DRV_EBADJOB:
        return "bad job";
    case -ETIMEDOUT:
        return "timed out";
    case -ECANCELED:
        return "cancelled";
    case -ESHUTDOWN:
        return "shutting down";
    default:
        break;
    }
    if (code < 0 && code > -4000)
        return strerrordesc_np(-code) ? strerrordesc_np(-code)
                                      : "unknown error";
    return "unknown error";
}

int
drv_err_set(struct drv_err *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return code;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void
drv_err_clear(struct drv_err *err)
{
    if (err == NULL)
        return;
    err->code = 0;
    err->msg[0] = '\0';
}

/* ---------------------------------------------------------------- clocks */

int64_t
drv_clock_mono_ns(void)
{
    struct timespec ts;

    DRV_AZ(clock_gettime(CLOCK_MONOTONIC, &ts));
    return (int64_t)ts.tv_sec * DRV_NS_PER_SEC + ts.tv_nsec;
}

int64_t
drv_clock_unix_ms(void)
{
    struct timespec ts;

    DRV_AZ(clock_gettime(CLOCK_REALTIME, &ts));
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timeval
drv_clock_tv_from_ns(int64_t ns)
{
    struct timeval tv;

    if (ns < 0)
        ns = 0;
    tv.tv_sec = (time_t)(ns / DRV_NS_PER_SEC);
    /* round up so a timer never fires before its deadline */
    tv.tv_usec = (suseconds_t)((ns % DRV_NS_PER_SEC + 999) / 1000);
    if (tv.tv_usec >= 1000000) {
        tv.tv_sec++;
        tv.tv_usec -= 1000000;
    }
    return tv;
}

struct timeval
drv_clock_tv_until(int64_t deadline_ns)
{
    return drv_clock_tv_from_ns(deadline_ns - drv_clock_mono_ns());
}
