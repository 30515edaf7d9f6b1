/*
 * drover/error.h -- error codes and the detailed error record.
 *
 * int functions return 0 on success or a negative code: -errno where it
 * fits (-ENOMEM, -EINVAL, -ETIMEDOUT, -ECANCELED, -EAGAIN, -ESHUTDOWN), or
 * one of drover's own codes below -4000. drv_strerror() names either kind.
 */
#ifndef DROVER_ERROR_H
#define DROVER_ERROR_H

#include <stdarg.h>

enum {
    DRV_EREDIS = -4001,   /* Redis answered with an error reply */
    DRV_EPROTO = -4002,   /* a reply or input of unexpected shape */
    DRV_ECONFIG = -4003,  /* invalid configuration */
    DRV_EHANDLER = -4004, /* a handler failed */
    DRV_EDOWN = -4005,    /* Redis connection is down */
    DRV_EPERMANENT = -4006, /* permanent failure: do not retry */
    DRV_EBADJOB = -4008   /* a job that cannot run: bad or missing field */
};

#define DRV_ERR_MSG_MAX 256

/* Detail for errors that need more than a code. */
struct drv_err {
    int code;                   /* 0 or a negative code */
    char msg[DRV_ERR_MSG_MAX];  /* human text, NUL-terminated */
};

/*
 * drv_strerror -- static text naming code (negative errno or DRV_E*).
 * Thread-safe; never returns NULL.
 */
const char *drv_strerror(int code);

/*
 * drv_err_set -- fill err (may be NULL) with code and a printf message;
 * returns code so callers can `return drv_err_set(err, -EINVAL, ...)`.
 */
int drv_err_set(struct drv_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* drv_err_clear -- reset err to "no error". */
void drv_err_clear(struct drv_err *err);

#endif
