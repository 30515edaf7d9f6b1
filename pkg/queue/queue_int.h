/*
 * queue_int.h -- declarations shared by the files of pkg/queue.
 */
#ifndef DROVER_QUEUE_INT_H
#define DROVER_QUEUE_INT_H

#include <stddef.h>
#include <stdint.h>

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

/* What a parser expects of one reply: its type (-1: any but an error)
 * and the name its errors give. */
struct drv__queue_want {
    int type;
    const char *what;
};

/* drv__queue_check_each -- drv__queue_check_reply of r[i] against
 * want[i] for each of the n; 0 or the first error. */
int drv__queue_check_each(struct redisReply *const *r,
                          const struct drv__queue_want *want, size_t n,
                          struct drv_err *err);

/* drv__queue_check_one -- both: one reply, of type want. */
int drv__queue_check_one(struct redisReply *const *r, size_t n, int want,
                         const char *what, struct drv_err *err);

/* drv__queue_strings -- 1 when e is an array of exactly n strings. */
int drv__queue_strings(const redisReply *e, size_t n);

/* drv__queue_check_int -- drv__queue_check_one for one integer: 0 with
 * *v, or the error with *v = 0. */
int drv__queue_check_int(struct redisReply *const *r, size_t n,
                         const char *what, int64_t *v, struct drv_err *err);

/* drv__queue_check_ints -- 0 when r is an array of n integers; else
 * DRV_EREDIS with the error text, or DRV_EPROTO (what names the
 * operation). */
int drv__queue_check_ints(const redisReply *r, size_t n, const char *what,
                          struct drv_err *err);

/* drv__queue_json_job_begin -- open the object of an answer about one
 * job: its "queue", "id" and "found" members. */
struct drv_json;
void drv__queue_json_job_begin(struct drv_json *j, const char *queue,
                               const char *id, int found);

/* drv__queue_add_cmd -- a new command of batch c: name, then key (or
 * another argument; NULL = none). Returns it for more arguments (valid
 * until the next command is added). */
struct drv_queue_cmds;
struct drv_argv *drv__queue_add_cmd(struct drv_queue_cmds *c,
                                    const char *name, const char *key);

/* drv__queue_cmds_eval -- call (its EVAL) appended to batch c, and
 * finished (drv_script_call_fini). */
struct drv_script_call;
void drv__queue_cmds_eval(struct drv_queue_cmds *c,
                          struct drv_script_call *call);

/* drv__queue_scan_args -- the arguments of a script that finds job id
 * wherever it is (lookup, cancel): the id, DRV_QUEUE_LOOKUP_SCAN and the
 * group. */
void drv__queue_scan_args(struct drv_argv *args, const char *id,
                          size_t id_len);

/* drv__queue_adds -- add the strings that follow (ended by NULL) to a:
 * a script's keys, a command's arguments. */
struct drv_argv;
void drv__queue_adds(struct drv_argv *a, ...) __attribute__((sentinel));

/* drv__queue_command -- out emptied, then the strings that follow (a
 * command and its arguments, ended by NULL) added. */
void drv__queue_command(struct drv_argv *out, ...)
    __attribute__((sentinel));

#endif
