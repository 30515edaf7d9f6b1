/*
 * redis_argv.c -- struct drv_argv: a growable, owning, binary-safe
 * argument vector, the one form every command takes on its way to Redis
 * (built by pkg/queue, sent by drv_redis_send, drv_redis_eval and
 * drv_redis_multi, or by the CLI's blocking client).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/common.h"
#include "drover/redis.h"

/* ------------------------------------------------------------- argv */

void
drv_argv_init(struct drv_argv *a)
{
    memset(a, 0, sizeof *a);
}

void
drv_argv_reset(struct drv_argv *a)
{
    int i;

    for (i = 0; i < a->argc; i++)
        free(a->argv[i]);
    a->argc = 0;
}

void
drv_argv_fini(struct drv_argv *a)
{
    drv_argv_reset(a);
    free(a->argv);
    free(a->argvlen);
    memset(a, 0, sizeof *a);
}

void
drv_argv_add(struct drv_argv *a, const char *s, size_t len)
{
    if (a->argc == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->argv = drv_xrealloc(a->argv, (size_t)a->cap * sizeof *a->argv);
        a->argvlen = drv_xrealloc(a->argvlen,
                                  (size_t)a->cap * sizeof *a->argvlen);
    }
    a->argv[a->argc] = drv_xstrndup(s, len);
    a->argvlen[a->argc] = len;
    a->argc++;
}

void
drv_argv_adds(struct drv_argv *a, const char *s)
{
    drv_argv_add(a, s, strlen(s));
}

void
drv_argv_addcat(struct drv_argv *a, const char *prefix, const char *s,
                size_t len)
{
    size_t plen = strlen(prefix);
    char *p = drv_xmalloc(plen + len + 1);

    memcpy(p, prefix, plen);
    memcpy(p + plen, s, len);
    p[plen + len] = '\0';
    drv_argv_add(a, p, plen + len);
    free(p);
}

void
drv_argv_addf(struct drv_argv *a, const char *fmt, ...)
{
    char buf[512], *big = NULL;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    DRV_ASSERT(n >= 0);
    if ((size_t)n < sizeof buf) {
        drv_argv_add(a, buf, (size_t)n);
        return;
    }
    /* longer (a key built from a long job id): format again on the heap */
    big = drv_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    drv_argv_add(a, big, (size_t)n);
    free(big);
}

void
drv_argv_addll(struct drv_argv *a, long long v)
{
    drv_argv_addf(a, "%lld", v);
}
