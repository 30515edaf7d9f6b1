/*
 * bench.h -- what the bench tools share: a fatal error that first kills
 * the children still running, the clocks, and a few blocking Redis
 * calls (hiredis: every tool links it). Each tool is one .c file
 * built on its own (make bench), so the code stands here, static; a tool
 * defines BENCH_PROG, the prefix of its messages, before including it.
 */
#ifndef DROVER_BENCH_H
#define DROVER_BENCH_H

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

#include <hiredis/hiredis.h>

#ifndef BENCH_PROG
#error "define BENCH_PROG (the tool's name) before including bench.h"
#endif

/* Children not reaped yet: bench_die kills them, so a failed run never
 * leaves a droverd or a server running behind the bench. */
static pid_t bench_kids[8];

/* bench_kid_add -- pid runs until bench_kid_del(pid). */
static inline void
bench_kid_add(pid_t pid)
{
    size_t i;

    for (i = 0; i < sizeof bench_kids / sizeof bench_kids[0]; i++)
        if (bench_kids[i] == 0) {
            bench_kids[i] = pid;
            return;
        }
}

/* bench_kid_del -- pid was reaped. */
static inline void
bench_kid_del(pid_t pid)
{
    size_t i;

    for (i = 0; i < sizeof bench_kids / sizeof bench_kids[0]; i++)
        if (bench_kids[i] == pid)
            bench_kids[i] = 0;
}

/* bench_die -- SIGKILL and reap the children, print "PROG: MESSAGE" on
 * stderr, exit 1. */
static inline void bench_die(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static inline void
bench_die(const char *fmt, ...)
{
    va_list ap;
    size_t i;

    for (i = 0; i < sizeof bench_kids / sizeof bench_kids[0]; i++)
        if (bench_kids[i] > 0) {
            kill(bench_kids[i], SIGKILL);
            waitpid(bench_kids[i], NULL, 0);
        }
    fprintf(stderr, BENCH_PROG ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(1);
}

/* bench_die_errno -- bench_die with "WHAT: strerror(errno)". */
static inline void __attribute__((noreturn))
bench_die_errno(const char *what)
{
    int e = errno;

    bench_die("%s: %s", what, strerror(e));
}

/* bench_now_ns -- the monotonic clock in ns. */
static inline int64_t
bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* bench_now_s -- the monotonic clock in seconds. */
static inline double
bench_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* bench_sleep_ms -- sleep ms, through signals. */
static inline void
bench_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* bench_vcmd, bench_cmd -- a command on c: its reply (caller frees);
 * dies when the connection fails or Redis answers an error. */
static inline redisReply *
bench_vcmd(redisContext *c, const char *fmt, va_list ap)
{
    redisReply *r = redisvCommand(c, fmt, ap);

    if (r == NULL)
        bench_die("redis: %s", c->errstr);
    if (r->type == REDIS_REPLY_ERROR)
        bench_die("redis: %s: %s", fmt, r->str);
    return r;
}

static inline redisReply *
bench_cmd(redisContext *c, const char *fmt, ...)
{
    redisReply *r;
    va_list ap;

    va_start(ap, fmt);
    r = bench_vcmd(c, fmt, ap);
    va_end(ap);
    return r;
}

/* bench_num -- bench_cmd's reply as a number: an integer, a string's
 * leading number, else (nil) 0. */
static inline long long
bench_num(redisContext *c, const char *fmt, ...)
{
    redisReply *r;
    long long v = 0;
    va_list ap;

    va_start(ap, fmt);
    r = bench_vcmd(c, fmt, ap);
    va_end(ap);
    if (r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r->type == REDIS_REPLY_STRING)
        v = strtoll(r->str, NULL, 10);
    freeReplyObject(r);
    return v;
}

/* bench_redis_cpu -- Redis's CPU seconds so far (used_cpu_sys +
 * used_cpu_user: every thread). */
static inline double
bench_redis_cpu(redisContext *c)
{
    redisReply *r = bench_cmd(c, "INFO cpu");
    const char *p;
    double v = 0;

    if (r->type != REDIS_REPLY_STRING)
        bench_die("INFO cpu: not a string");
    if ((p = strstr(r->str, "used_cpu_sys:")) != NULL)
        v += strtod(p + 13, NULL);
    if ((p = strstr(r->str, "used_cpu_user:")) != NULL)
        v += strtod(p + 14, NULL);
    freeReplyObject(r);
    return v;
}

/* The command line of the load generators (httpload, evhttpload): what
 * to send, how many at once, how many in all. */
struct bench_load {
    int port;
    long conns;                 /* default 500 */
    long requests;              /* default 20,000 */
    const char *body;           /* default a small JSON object, the size
                                   of an http job's default body */
};

/* bench_load_args -- parse "--port P [--conns C] [--requests N] [--body
 * TEXT]" into *o; 0, or 2 after a usage message. */
static inline int
bench_load_args(int argc, char **argv, struct bench_load *o)
{
    int i;

    o->port = 0;
    o->conns = 500;
    o->requests = 20000;
    o->body = "{\"job\":\"hook\",\"id\":\"123456\",\"n\":\"42\"}";
    for (i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (v != NULL && strcmp(argv[i], "--port") == 0)
            o->port = atoi(v);
        else if (v != NULL && strcmp(argv[i], "--conns") == 0)
            o->conns = atol(v);
        else if (v != NULL && strcmp(argv[i], "--requests") == 0)
            o->requests = atol(v);
        else if (v != NULL && strcmp(argv[i], "--body") == 0)
            o->body = v;
        else {
            fprintf(stderr, "usage: %s --port P [--conns C] "
                    "[--requests N] [--body TEXT]\n", BENCH_PROG);
            return 2;
        }
        i++;
    }
    if (o->port <= 0 || o->port > 65535 || o->conns < 1 || o->requests < 1) {
        fprintf(stderr, "%s: bad --port, --conns or --requests\n",
                BENCH_PROG);
        return 2;
    }
    return 0;
}

/* bench_load_report -- the load generators' one line: "requests N
 * seconds S req/s R connections C cpu_s U", U this process's CPU. */
static inline void
bench_load_report(long done, double t0, double t1, long conns)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    printf("requests %ld seconds %.4f req/s %.1f connections %ld cpu_s %.3f\n",
           done, t1 - t0, (double)done / (t1 - t0), conns,
           (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6);
}

#endif
