/*
 * drover/log.h -- logfmt logging to stderr, one event a line:
 *
 *   ts=2026-11-25T18:40:07.123Z level=info msg="batch done" queue=default n=32
 *
 * drv_log(level, msg, fmt, ...) -- fmt supplies the key=value pairs that
 * follow msg and may be NULL. Values that carry untrusted text (errors,
 * job ids) go through drv_log_quote() into a caller buffer first.
 *
 * Thread-safe: one write(2) per line. Lines above the current level are
 * dropped cheaply.
 */
#ifndef DROVER_LOG_H
#define DROVER_LOG_H

#include <stddef.h>

enum drv_log_level {
    DRV_LOG_ERROR = 0,
    DRV_LOG_WARN = 1,
    DRV_LOG_INFO = 2,
    DRV_LOG_DEBUG = 3
};

extern int drv_log_level_current;

/* drv_log_set_level -- set the level; returns -EINVAL for an unknown name. */
int drv_log_set_level(const char *name);

/* drv_log_level_parse -- name to level, or -EINVAL. */
int drv_log_level_parse(const char *name);

/* drv_log_reopen -- reopen the log destination (SIGHUP); stderr only now. */
void drv_log_reopen(void);

#define drv_log_enabled(lvl) ((int)(lvl) <= drv_log_level_current)

void drv_log(enum drv_log_level lvl, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * drv_log_quote -- write value (len bytes, any) as a logfmt value into
 * buf: bare when it is valid UTF-8 without spaces, quotes, '=', '\\' or
 * control bytes, else quoted with \" \\ \n \t \r and \xNN escapes (NUL
 * and every byte outside a valid UTF-8 character as \xNN); cut at bufsz.
 * Returns buf.
 */
char *drv_log_quote(char *buf, size_t bufsz, const char *value, size_t len);

/*
 * drv_log_q -- drv_log_quote() of a NUL-terminated string (NULL as ""),
 * the one idiom for text that may hold anything (a Redis error, errno
 * text, a path, a config string): the key takes a bare %s and the value
 * comes quoted when it needs it, so a '"' or a newline in it cannot break
 * the line:
 *
 *   char qe[DRV_LOG_Q_MAX];
 *   DRV_LOG_WARN("fetch failed", "error=%s", drv_log_q(qe, sizeof qe, msg));
 *
 * DRV_LOG_Q_MAX holds a 256-byte text escaped at worst (\xNN per byte);
 * longer values are cut. Returns buf.
 */
#define DRV_LOG_Q_MAX 1040
const char *drv_log_q(char *buf, size_t bufsz, const char *s);

#define DRV_LOG_ERROR(msg, ...) drv_log(DRV_LOG_ERROR, msg, __VA_ARGS__)
#define DRV_LOG_WARN(msg, ...) drv_log(DRV_LOG_WARN, msg, __VA_ARGS__)
#define DRV_LOG_INFO(msg, ...)                                          \
    do {                                                                \
        if (drv_log_enabled(DRV_LOG_INFO))                              \
            drv_log(DRV_LOG_INFO, msg, __VA_ARGS__);                    \
    } while (0)
#define DRV_LOG_DEBUG(msg, ...)                                         \
    do {                                                                \
        if (drv_log_enabled(DRV_LOG_DEBUG))                             \
            drv_log(DRV_LOG_DEBUG, msg, __VA_ARGS__);                   \
    } while (0)

#endif
