/*
 * log.c -- logfmt lines on stderr, one write(2) each so lines from
 * several threads never interleave.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "drover/buf.h"
#include "drover/log.h"

int drv_log_level_current = DRV_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

int
drv_log_level_parse(const char *name)
{
    int i;

    if (name == NULL)
        return -EINVAL;
    for (i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    if (strcmp(name, "warning") == 0)
        return DRV_LOG_WARN;
    return -EINVAL;
}

int
drv_log_set_level(const char *name)
{
    int lvl = drv_log_level_parse(name);

    if (lvl < 0)
        return lvl;
    drv_log_level_current = lvl;
    return 0;
}

void
drv_log_reopen(void)
{
    /* stderr is owned by the supervisor (systemd, container runtime); it
     * reopens nothing. Kept so SIGHUP has a defined meaning. */
}

char *
drv_log_quote(char *buf, size_t bufsz, const char *value, size_t len)
{
    char esc[DRV_LOGFMT_CHAR_MAX];
    size_t i, o = 0, used, w;

    if (bufsz == 0)
        return buf;
    if (!drv_logfmt_needs_quotes(value, len)) {
        o = len < bufsz - 1 ? len : bufsz - 1;
        memcpy(buf, value, o);
        buf[o] = '\0';
        return buf;
    }
    if (o + 1 < bufsz)
        buf[o++] = '"';
    for (i = 0; i < len; i += used) {
        w = drv_logfmt_char(value + i, len - i, esc, &used);
        if (o + w + 2 > bufsz)
            break; /* cut: room is kept for the closing quote */
        memcpy(buf + o, esc, w);
        o += w;
    }
    if (o + 1 < bufsz)
        buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

const char *
drv_log_q(char *buf, size_t bufsz, const char *s)
{
    if (s == NULL)
        s = "";
    return drv_log_quote(buf, bufsz, s, strlen(s));
}

void
drv_log(enum drv_log_level lvl, const char *msg, const char *fmt, ...)
{
    char line[4096];
    char qmsg[512];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int w;
    va_list ap;

    if (!drv_log_enabled(lvl))
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    drv_log_quote(qmsg, sizeof qmsg, msg, strlen(msg));
    if (qmsg[0] != '"') {
        /* msg is always quoted, for grep-friendly `msg="..."` */
        snprintf(qmsg, sizeof qmsg, "\"%s\"", msg);
    }
    w = snprintf(line, sizeof line,
                 "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=%s",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                 level_names[lvl], qmsg);
    n = (w > 0 && (size_t)w < sizeof line) ? (size_t)w : sizeof line - 1;
    if (fmt != NULL && fmt[0] != '\0' && n + 2 < sizeof line) {
        line[n++] = ' ';
        va_start(ap, fmt);
        w = vsnprintf(line + n, sizeof line - n, fmt, ap);
        va_end(ap);
        if (w > 0)
            n += (size_t)w < sizeof line - n ? (size_t)w
                                             : sizeof line - n - 1;
    }
    if (n >= sizeof line - 1)
        n = sizeof line - 2;
    line[n++] = '\n';
    while (write(STDERR_FILENO, line, n) < 0 && errno == EINTR)
        ;
}
