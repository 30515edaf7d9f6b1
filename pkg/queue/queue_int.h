/*
 * queue_int.h -- declarations shared by the files of pkg/queue.
 */
#ifndef DROVER_QUEUE_INT_H
#define DROVER_QUEUE_INT_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "drover/error.h"

/* drv__queue_check_n -- 0 when a parser got want replies, else
 * DRV_EPROTO in err (what names the operation). */
int drv__queue_check_n(size_t n, size_t want, const char *what,
                       struct drv_err *err);

/* drv__queue_check_reply -- 0 when r is no error reply and (want >= 0)
 * of type want; else DRV_EREDIS with the error text, or DRV_EPROTO. */
int drv__queue_check_reply(const redisReply *r, int want, const char *what,
                           struct drv_err *err);

/* drv__queue_check_one -- both: one reply, of type want. */
int drv__queue_check_one(struct redisReply *const *r, size_t n, int want,
                         const char *what, struct drv_err *err);

#endif
