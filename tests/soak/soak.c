/*
 * tests/soak/soak.c -- what `make soak` runs (doc/soak.md).
 *
 *   soak --droverd PATH [--jobs N] [--csv FILE]
 *
 * One run, start to end, on this machine:
 *
 *   1. a private redis-server in a temporary directory (unix socket, no
 *      TCP, AOF on with `appendfsync always`, no RDB), a small HTTP server
 *      on a thread of this process (libevent's evhttp on 127.0.0.1) for
 *      the http jobs, and two droverd processes on one config;
 *   2. N jobs of mixed outcomes (the table `kinds` below: ok, fail and
 *      retry then dead, fail then retry then ok, timeout, exec, http,
 *      pipelines, the thread pool) enqueued by a thread that keeps the
 *      stream below a backlog, each with its own id s0 .. s(N-1); the
 *      first WARM_PCT of them drained and idled on: the baseline sample;
 *   3. at 35% of the jobs enqueued the producer SIGKILLs redis-server
 *      while a chunk of its XADDs is in flight (sent, not answered) and
 *      sends the unanswered ones again once Redis is back on its AOF; at
 *      60% droverd number 2 is killed with SIGKILL and started again (its
 *      jobs are reclaimed);
 *   4. every second: RSS, open fds (and how many are connections to the
 *      HTTP server) and threads of each droverd, from /proc, and the
 *      queue's counters, into the CSV;
 *   5. once everything is settled (stream, delayed set and pending list
 *      empty) and the workers have idled a while: the end sample; every
 *      id is looked up in Redis (its result hash, and the dead stream for
 *      the jobs made to fail for good), the workers stopped with SIGTERM.
 *
 * Pass: no id lost (each has its designed outcome: status ok, or dead
 * with an entry in the dead stream whose error says the designed reason),
 * and for each droverd alive at the end, against the baseline of its
 * slot: RSS at most 10% higher, no more fds other than the HTTP
 * connections (libcurl's keep-alive cache, held to its bound instead), no
 * more threads. Exit 0 when every criterion holds, 1 when one fails, 2 on
 * bad usage or when the set-up fails.
 *
 * Environment: SOAK_JOBS (N, default 1000000), SOAK_FSYNC (appendfsync,
 * default always), SOAK_KEEP=1 (keep the directory: configs, logs, AOF).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <hiredis/hiredis.h>

#include "harness.h"

#define QKEY(s) "soak:{soak}:" s /* the queue's keys (prefix soak) */
#define NWORKERS 2
#define CHUNK 500          /* XADDs sent in one pipeline */
#define BACKLOG 20000      /* enqueue only while the stream is shorter */
#define WARM_PCT 5         /* warm-up: this share of N first, drained */
#define IDLE_S 10          /* idle after a drain before the sample that
                            * counts (baseline, end) */
#define CONCURRENCY 128    /* worker.concurrency of each droverd */
#define HTTP_KEPT (CONCURRENCY + 64) /* curl's connection cache of a
                            * droverd: one per task, 64 idle more */
#define STALL_S 300        /* no progress this long while draining: fail */
#define RSS_SLACK 1.10     /* end RSS at most this times warm-up RSS */

/* ------------------------------------------------------------ the mix */

/* One kind of job: its share of every 100 ids, the fields it is enqueued
 * with after `job`/`pipeline` and `id`, and its designed outcome. */
struct kind {
    const char *name;   /* job type or pipeline */
    int pipeline;       /* 1: enqueued as `pipeline NAME` */
    int share;          /* ids out of every 100 */
    const char *f1, *v1; /* one argument field (or NULL) */
    const char *f2, *v2; /* another */
    const char *dead;   /* NULL: ends ok; else ends dead and its error
                         * contains this */
};

static const struct kind kinds[] = {
    {"echo", 0, 25, "n", "#", NULL, NULL, NULL},
    {"noop", 0, 8, NULL, NULL, NULL, NULL, NULL},
    {"sleep", 0, 10, "ms", "%20", NULL, NULL, NULL},
    {"block", 0, 4, "ms", "1", NULL, NULL, NULL},
    {"http_ok", 0, 10, NULL, NULL, NULL, NULL, NULL},
    {"http_flaky", 0, 5, NULL, NULL, NULL, NULL, NULL}, /* 503, then ok */
    {"http_gone", 0, 1, NULL, NULL, NULL, NULL, "HTTP 404"},
    {"pipe", 1, 8, "n", "#", NULL, NULL, NULL},
    {"exec_ok", 0, 2, "n", "#", NULL, NULL, NULL},
    {"exec_perm", 0, 1, NULL, NULL, NULL, NULL, "exit status 65"},
    {"fail_retry", 0, 10, "error", "soak: designed failure", NULL, NULL,
     "soak: designed failure"},
    {"fail_perm", 0, 3, "error", "soak: permanent failure", "permanent",
     "1", "soak: permanent failure"},
    {"timeout", 0, 3, "ms", "5000", NULL, NULL, "timed out"},
    {"echo_late", 0, 10, "n", "#", NULL, NULL, NULL},
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

static const struct kind *kind_by_slot[100];

static void
kinds_init(void)
{
    size_t k;
    int slot = 0;

    for (k = 0; k < NKINDS; k++)
        for (int j = 0; j < kinds[k].share; j++)
            kind_by_slot[slot++] = &kinds[k];
    if (slot != 100) {
        fprintf(stderr, "soak: the shares add up to %d, not 100\n", slot);
        exit(2);
    }
}

/* The kind of id i: spread so that every run of 100 ids holds the mix. */
static const struct kind *
kind_of(long i)
{
    return kind_by_slot[(i * 37) % 100];
}

/* ------------------------------------------------------------ state */

struct sample {
    double t;                 /* seconds since the start */
    long enq;                 /* ids enqueued (Redis answered) */
    long long processed, dead, failed, stream, delayed;
    struct {
        long pid;
        long rss_kb, fds, threads; /* -1: not running */
        long http;            /* of fds: TCP connections to the HTTP
                               * server (curl's connection cache) */
    } w[NWORKERS];
    char event[48];           /* what happened just before, or "" */
};

static struct {
    long jobs;
    char droverd[640];
    char dir[256];
    char sock[320];
    char conf[320];     /* redis.conf */
    char cfg[320];      /* drover.yaml */
    char csv[512];
    const char *fsync;
    int http_port;
    int64_t t0;

    pid_t redis;
    pid_t worker[NWORKERS];
    int wstarts;        /* droverd starts so far (log names) */

    pthread_mutex_t mu; /* samples, worker pids, event */
    struct sample *samples;
    size_t nsamples, cap;
    char event[48];
    FILE *csvf;

    atomic_long enqueued;
    atomic_long resent; /* XADDs sent again after no answer came */
    atomic_long limit;  /* the producer stops before this id */
    atomic_long kill_at; /* the producer kills Redis while the XADD of
                         * this id is in flight */
    atomic_int redis_killed;
    atomic_int enq_done;
    atomic_int stop;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void
say(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "soak: %7.1fs ",
            (double)(drv_test_now_ms() - S.t0) / 1000.0);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void
mark(const char *event)
{
    pthread_mutex_lock(&S.mu);
    size_t n = strlen(S.event);

    snprintf(S.event + n, sizeof S.event - n, "%s%s", n ? "," : "", event);
    pthread_mutex_unlock(&S.mu);
    say("%s", event);
}

/* ------------------------------------------------------------ processes */

/* Start argv with stdout and stderr appended to log; the pid or -1. */
static pid_t
spawn(const char *const argv[], const char *log)
{
    pid_t pid = fork();

    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        /* nothing of this process (its Redis and HTTP sockets, the CSV)
         * may count in the child's fds */
        close_range(3, ~0U, 0);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

/* Send sig to pid and, unless it is 0, reap it; its exit status. */
static int
stop_proc(pid_t pid, int sig)
{
    int st = 0;

    if (pid <= 0)
        return -1;
    kill(pid, sig);
    if (waitpid(pid, &st, 0) < 0)
        return -1;
    return st;
}

/* A blocking client on the unix socket, 5 s timeouts; NULL if none. */
static redisContext *
connect_redis(void)
{
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectUnixWithTimeout(S.sock, tv);

    if (c == NULL)
        return NULL;
    if (c->err) {
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    return c;
}

/* A number from a command (integer or numeric string), -1 on error. */
static long long
num(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    redisReply *r;
    long long v = -1;

    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r == NULL)
        return -1;
    if (r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r->type == REDIS_REPLY_STRING)
        v = strtoll(r->str, NULL, 10);
    else if (r->type == REDIS_REPLY_NIL)
        v = 0;
    else if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
             r->element[0]->type == REDIS_REPLY_INTEGER)
        v = r->element[0]->integer; /* XPENDING summary: the count */
    freeReplyObject(r);
    return v;
}

/* Start redis-server on S.conf and wait until it answers PING (it loads
 * its AOF first); 0 or -1. */
static int
redis_start(void)
{
    char log[400];
    const char *argv[] = {"redis-server", S.conf, NULL};
    int64_t until = drv_test_now_ms() + 120000;

    snprintf(log, sizeof log, "%s/redis.out", S.dir);
    unlink(S.sock);
    S.redis = spawn(argv, log);
    if (S.redis < 0)
        return -1;
    while (drv_test_now_ms() < until) {
        redisContext *c = connect_redis();

        if (c != NULL) {
            redisReply *r = redisCommand(c, "PING");
            int up = r && r->type == REDIS_REPLY_STATUS;

            freeReplyObject(r);
            redisFree(c);
            if (up)
                return 0;
        }
        if (waitpid(S.redis, NULL, WNOHANG) == S.redis) {
            S.redis = 0;
            return -1;
        }
        drv_test_sleep_ms(20);
    }
    return -1;
}

static int
worker_start(int i)
{
    char log[400];
    const char *argv[] = {S.droverd, "-c", S.cfg, "--log-level", "info",
                          NULL};
    pid_t pid;

    snprintf(log, sizeof log, "%s/droverd%d.log", S.dir, ++S.wstarts);
    pid = spawn(argv, log);
    if (pid < 0)
        return -1;
    pthread_mutex_lock(&S.mu);
    S.worker[i] = pid;
    pthread_mutex_unlock(&S.mu);
    return 0;
}

static void
cleanup(void)
{
    for (int i = 0; i < NWORKERS; i++)
        if (S.worker[i] > 0)
            stop_proc(S.worker[i], SIGKILL);
    if (S.redis > 0)
        stop_proc(S.redis, SIGKILL);
    if (getenv("SOAK_KEEP") && strcmp(getenv("SOAK_KEEP"), "1") == 0) {
        fprintf(stderr, "soak: kept %s\n", S.dir);
    } else if (S.dir[0]) {
        char cmd[400];

        snprintf(cmd, sizeof cmd, "rm -rf '%s'", S.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "soak: could not remove %s\n", S.dir);
    }
}

/* ------------------------------------------------------------ /proc */

/* VmRSS (kB) and Threads of pid; -1 when it is gone. */
static void
proc_status(long pid, long *rss_kb, long *threads)
{
    char path[64], line[256];
    FILE *f;

    *rss_kb = *threads = -1;
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            *rss_kb = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "Threads:", 8) == 0)
            *threads = strtol(line + 8, NULL, 10);
    }
    fclose(f);
}

static int
cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;

    return x < y ? -1 : x > y;
}

/* How many of pid's fds are TCP connections to the HTTP server: socket
 * inodes of /proc/PID/fd whose remote port in /proc/net/tcp{,6} is it. */
static long
proc_http_conns(long pid)
{
    static const char *tables[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    char path[64], link[64], line[512];
    long inodes[8192], n = 0, found = 0;
    struct dirent *e;
    DIR *d;

    snprintf(path, sizeof path, "/proc/%ld/fd", pid);
    d = opendir(path);
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL && n < 8192) {
        char fdp[400];
        ssize_t len;

        snprintf(fdp, sizeof fdp, "%s/%s", path, e->d_name);
        len = readlink(fdp, link, sizeof link - 1);
        if (len <= 0)
            continue;
        link[len] = '\0';
        if (strncmp(link, "socket:[", 8) == 0)
            inodes[n++] = strtol(link + 8, NULL, 10);
    }
    closedir(d);
    qsort(inodes, (size_t)n, sizeof inodes[0], cmp_long);
    for (int t = 0; t < 2; t++) {
        FILE *f = fopen(tables[t], "r");

        if (f == NULL)
            continue;
        while (fgets(line, sizeof line, f) != NULL) {
            char rem[64];
            unsigned port;
            long inode;

            /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
            if (sscanf(line, "%*s %*s %63s %*s %*s %*s %*s %*s %*s %ld",
                       rem, &inode) != 2)
                continue;
            if (strchr(rem, ':') == NULL ||
                sscanf(strchr(rem, ':') + 1, "%x", &port) != 1 ||
                (int)port != S.http_port)
                continue;
            if (bsearch(&inode, inodes, (size_t)n, sizeof inodes[0],
                        cmp_long) != NULL)
                found++;
        }
        fclose(f);
    }
    return found;
}

/* ------------------------------------------------------------ sampler */

static void
csv_row(const struct sample *s)
{
    fprintf(S.csvf, "%.1f,%ld,%lld,%lld,%lld,%lld,%lld", s->t, s->enq,
            s->processed, s->failed, s->dead, s->stream, s->delayed);
    for (int i = 0; i < NWORKERS; i++)
        fprintf(S.csvf, ",%ld,%ld,%ld,%ld,%ld", s->w[i].pid,
                s->w[i].rss_kb, s->w[i].fds, s->w[i].http,
                s->w[i].threads);
    fprintf(S.csvf, ",%s\n", s->event);
    fflush(S.csvf);
}

/* Every second: each worker from /proc, the queue from Redis (its own
 * connection, again after every failure: Redis restarts meanwhile). */
static void *
sampler_main(void *arg)
{
    redisContext *c = NULL;
    int64_t next = drv_test_now_ms();

    (void)arg;
    while (!atomic_load(&S.stop)) {
        struct sample s;

        memset(&s, 0, sizeof s);
        if (c == NULL)
            c = connect_redis();
        s.processed = s.dead = s.failed = s.stream = s.delayed = -1;
        if (c != NULL) {
            s.processed = num(c, "HGET " QKEY("stats") " processed");
            s.failed = num(c, "HGET " QKEY("stats") " failed");
            s.dead = num(c, "XLEN " QKEY("dead"));
            s.stream = num(c, "XLEN " QKEY("jobs"));
            s.delayed = num(c, "ZCARD " QKEY("delayed"));
            if (c->err) {
                redisFree(c);
                c = NULL;
            }
        }
        s.enq = atomic_load(&S.enqueued);
        pthread_mutex_lock(&S.mu);
        s.t = (double)(drv_test_now_ms() - S.t0) / 1000.0;
        for (int i = 0; i < NWORKERS; i++) {
            s.w[i].pid = S.worker[i];
            proc_status(s.w[i].pid, &s.w[i].rss_kb, &s.w[i].threads);
            s.w[i].fds = drv_test_fd_count(s.w[i].pid);
            s.w[i].http = proc_http_conns(s.w[i].pid);
        }
        snprintf(s.event, sizeof s.event, "%s", S.event);
        S.event[0] = '\0';
        if (S.nsamples == S.cap) {
            S.cap = S.cap ? S.cap * 2 : 1024;
            S.samples = realloc(S.samples, S.cap * sizeof *S.samples);
            if (S.samples == NULL)
                abort();
        }
        S.samples[S.nsamples++] = s;
        pthread_mutex_unlock(&S.mu);
        csv_row(&s);
        next += 1000;
        if (next > drv_test_now_ms())
            drv_test_sleep_ms(next - drv_test_now_ms());
        else
            next = drv_test_now_ms();
    }
    if (c != NULL)
        redisFree(c);
    return NULL;
}

/* ------------------------------------------------------------ HTTP */

/* /ok/ID: 200; /flaky?attempt=N: 503 on the first attempt, then 200;
 * /gone/ID: 404. Kept alive; answers at once. */
static void
on_http(struct evhttp_request *req, void *arg)
{
    const char *uri = evhttp_request_get_uri(req);
    struct evbuffer *out = evhttp_request_get_output_buffer(req);

    (void)arg;
    if (strncmp(uri, "/ok/", 4) == 0) {
        evbuffer_add_printf(out, "ok %s", uri + 4);
        evhttp_send_reply(req, 200, "OK", NULL);
    } else if (strncmp(uri, "/flaky?attempt=", 15) == 0) {
        if (strcmp(uri + 15, "0") == 0) {
            evhttp_send_reply(req, 503, "Service Unavailable", NULL);
        } else {
            evbuffer_add_printf(out, "ok after %s", uri + 15);
            evhttp_send_reply(req, 200, "OK", NULL);
        }
    } else if (strncmp(uri, "/gone/", 6) == 0) {
        evhttp_send_reply(req, 404, "Not Found", NULL);
    } else {
        evhttp_send_reply(req, 400, "Bad Request", NULL);
    }
}

static void *
http_main(void *arg)
{
    event_base_dispatch(arg);
    return NULL;
}

/* The server on a thread of its own; its port into S.http_port. */
static int
http_start(void)
{
    struct event_base *base = event_base_new();
    struct evhttp *http;
    struct evhttp_bound_socket *bs;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    pthread_t thr;

    if (base == NULL || (http = evhttp_new(base)) == NULL)
        return -1;
    evhttp_set_gencb(http, on_http, NULL);
    bs = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
    if (bs == NULL ||
        getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss,
                    &len) != 0)
        return -1;
    S.http_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (pthread_create(&thr, NULL, http_main, base) != 0)
        return -1;
    pthread_detach(thr);
    return 0;
}

/* ------------------------------------------------------------ enqueue */

/* The XADD of id i into argv/lens (storage in buf); its argc. */
static int
xadd_args(long i, const char **argv, size_t *lens, char bufs[4][32])
{
    const struct kind *k = kind_of(i);
    int n = 0;
    const char *fv[4] = {k->f1, k->v1, k->f2, k->v2};

    argv[n++] = "XADD";
    argv[n++] = QKEY("jobs");
    argv[n++] = "*";
    argv[n++] = k->pipeline ? "pipeline" : "job";
    argv[n++] = k->name;
    argv[n++] = "id";
    snprintf(bufs[0], 32, "s%ld", i);
    argv[n++] = bufs[0];
    for (int f = 0; f < 4; f += 2) {
        if (fv[f] == NULL)
            continue;
        argv[n++] = fv[f];
        if (strcmp(fv[f + 1], "#") == 0) {
            snprintf(bufs[1 + f / 2], 32, "%ld", i);
            argv[n++] = bufs[1 + f / 2];
        } else if (fv[f + 1][0] == '%') {
            snprintf(bufs[1 + f / 2], 32, "%ld",
                     i % strtol(fv[f + 1] + 1, NULL, 10));
            argv[n++] = bufs[1 + f / 2];
        } else {
            argv[n++] = fv[f + 1];
        }
    }
    for (int a = 0; a < n; a++)
        lens[a] = strlen(argv[a]);
    return n;
}

/* Send ids [from, to) in one pipeline; returns the first id without a
 * good reply (to when all were added). */
static long
xadd_chunk(redisContext *c, long from, long to)
{
    long i, ok = to;

    for (i = from; i < to; i++) {
        const char *argv[16];
        size_t lens[16];
        char bufs[4][32];
        int n = xadd_args(i, argv, lens, bufs);

        redisAppendCommandArgv(c, n, argv, lens);
    }
    long kill_at = atomic_load(&S.kill_at);

    if (from <= kill_at && kill_at < to) {
        int done = 0;

        /* the Redis kill lands while this chunk is in flight: all of it
         * written, part of it maybe applied, no reply read yet */
        while (!done && redisBufferWrite(c, &done) == REDIS_OK)
            ;
        drv_test_sleep_ms(1);
        kill(S.redis, SIGKILL);
        atomic_store(&S.kill_at, -1); /* once: not when sent again */
        atomic_store(&S.redis_killed, 1);
    }
    for (i = from; i < to; i++) {
        redisReply *r = NULL;

        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            /* no answer: these may have been added before Redis died */
            atomic_fetch_add(&S.resent, to - i);
            if (ok == to)
                ok = i;
            break;
        }
        if (r->type != REDIS_REPLY_STRING && ok == to)
            ok = i; /* LOADING, an error: sent again */
        if (ok == to)
            atomic_fetch_add(&S.enqueued, 1);
        freeReplyObject(r);
    }
    return ok;
}

/*
 * The producer: ids in order, CHUNK at a time, while the stream holds
 * fewer than BACKLOG entries. An XADD whose reply did not come (Redis
 * was killed) is sent again once Redis is back: it may then exist twice,
 * two jobs with the same id (at-least-once enqueue, as any producer that
 * retries), which the check counts as one id.
 */
static void *
enqueue_main(void *arg)
{
    redisContext *c = NULL;
    long next = 0;

    (void)arg;
    while (next < S.jobs && !atomic_load(&S.stop)) {
        long to, got, limit = atomic_load(&S.limit);

        if (c == NULL && (c = connect_redis()) == NULL) {
            drv_test_sleep_ms(100);
            continue;
        }
        if (next >= limit || num(c, "XLEN " QKEY("jobs")) >= BACKLOG) {
            drv_test_sleep_ms(20);
        } else if (!c->err) {
            to = next + CHUNK < limit ? next + CHUNK : limit;
            got = xadd_chunk(c, next, to);
            if (got < to)
                drv_test_sleep_ms(100); /* Redis is loading, or gone */
            next = got;
        }
        if (c->err) {
            redisFree(c);
            c = NULL;
        }
    }
    if (c != NULL)
        redisFree(c);
    atomic_store(&S.enq_done, 1);
    return NULL;
}

/* ------------------------------------------------------------ set-up */

static int
write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return -1;
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -1;
}

/* Run a copy of droverd from the directory, so that a build during the
 * run (make replaces bin/droverd) cannot change the program started
 * again after the kill. 0 or -1. */
static int
copy_droverd(void)
{
    char to[600], buf[65536];
    FILE *in = fopen(S.droverd, "rb"), *out;
    size_t n;
    int rc = 0;

    if (in == NULL)
        return -1;
    snprintf(to, sizeof to, "%s/droverd", S.dir);
    out = fopen(to, "wb");
    if (out == NULL) {
        fclose(in);
        return -1;
    }
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = -1;
    if (ferror(in))
        rc = -1;
    fclose(in);
    if (fclose(out) != 0 || chmod(to, 0755) != 0)
        rc = -1;
    snprintf(S.droverd, sizeof S.droverd, "%s", to);
    return rc;
}

static int
write_configs(void)
{
    char text[6000];

    snprintf(S.sock, sizeof S.sock, "%s/redis.sock", S.dir);
    snprintf(S.conf, sizeof S.conf, "%s/redis.conf", S.dir);
    snprintf(S.cfg, sizeof S.cfg, "%s/drover.yaml", S.dir);
    snprintf(text, sizeof text,
             "port 0\nunixsocket %s\nunixsocketperm 700\ndir %s\n"
             "save \"\"\nappendonly yes\nappendfsync %s\n"
             "daemonize no\nlogfile %s/redis.log\n",
             S.sock, S.dir, S.fsync, S.dir);
    if (write_file(S.conf, text) != 0)
        return -1;
    snprintf(text, sizeof text,
"redis:\n"
"  url: unix://%s\n"
"  prefix: soak\n"
"worker:\n"
"  concurrency: %d\n"
"  batch: 64\n"
"  threads: 2\n"
"  shutdown_timeout: 10s\n"
"  visibility_timeout: 10s\n"
"  dead_max: 100000000\n"
"queues: [soak]\n"
"jobs:\n"
"  echo: {handler: echo, result_ttl: 1d}\n"
"  echo_late: {handler: echo, result_ttl: 1d}\n"
"  noop: {handler: noop, result_ttl: 1d}\n"
"  sleep: {handler: sleep, result_ttl: 1d}\n"
"  block: {handler: block, result_ttl: 1d}\n"
"  http_ok: {handler: http, url: \"http://127.0.0.1:%d/ok/{id}\",\n"
"            timeout: 10s, result_ttl: 1d}\n"
"  http_flaky: {handler: http,\n"
"               url: \"http://127.0.0.1:%d/flaky?attempt={attempt}\",\n"
"               retries: 3, backoff: 10ms, backoff_max: 100ms,\n"
"               timeout: 10s, result_ttl: 1d}\n"
"  http_gone: {handler: http, url: \"http://127.0.0.1:%d/gone/{id}\",\n"
"              timeout: 10s, result_ttl: 1d}\n"
"  exec_ok: {handler: exec, command: [/bin/echo, \"{n}\"],\n"
"            concurrency: 16, timeout: 30s, result_ttl: 1d}\n"
"  exec_perm: {handler: exec, command: [/bin/sh, -c, \"exit 65\"],\n"
"              concurrency: 16, timeout: 30s, result_ttl: 1d}\n"
"  fail_retry: {handler: fail, retries: 2, backoff: 10ms,\n"
"               backoff_max: 100ms, result_ttl: 1d}\n"
"  fail_perm: {handler: fail, result_ttl: 1d}\n"
"  timeout: {handler: sleep, timeout: 50ms, retries: 1, backoff: 10ms,\n"
"            result_ttl: 1d}\n"
"  p_first: {handler: echo}\n"
"  p_a: {handler: noop}\n"
"  p_b: {handler: echo}\n"
"  p_last: {handler: echo}\n"
"pipelines:\n"
"  pipe:\n"
"    steps: [p_first, {parallel: [p_a, p_b]}, p_last]\n"
"    result_ttl: 1d\n",
             S.sock, CONCURRENCY, S.http_port, S.http_port, S.http_port);
    return write_file(S.cfg, text);
}

/* ------------------------------------------------------------ checks */

struct tally {
    long ok, dead, lost, wrong, no_dead_entry, bad_reason, unexpected_dead,
        dup_dead;
};

static long
id_num(const char *s, size_t len)
{
    char buf[32];
    char *end;
    long v;

    if (len < 2 || len >= sizeof buf || s[0] != 's')
        return -1;
    memcpy(buf, s + 1, len - 1);
    buf[len - 1] = '\0';
    v = strtol(buf, &end, 10);
    return *end == '\0' && v >= 0 && v < S.jobs ? v : -1;
}

/* Every id's result status, in pipelines of 10,000 HGETs. */
static int
check_results(redisContext *c, struct tally *t)
{
    for (long from = 0; from < S.jobs; from += 10000) {
        long to = from + 10000 < S.jobs ? from + 10000 : S.jobs;

        for (long i = from; i < to; i++)
            redisAppendCommand(c, "HGET " QKEY("result:s%ld") " status", i);
        for (long i = from; i < to; i++) {
            redisReply *r;
            const struct kind *k = kind_of(i);

            if (redisGetReply(c, (void **)&r) != REDIS_OK)
                return -1;
            if (r->type != REDIS_REPLY_STRING) {
                if (t->lost++ < 10)
                    say("lost: s%ld (%s): no result", i, k->name);
            } else if (strcmp(r->str, k->dead ? "dead" : "ok") == 0) {
                if (k->dead)
                    t->dead++;
                else
                    t->ok++;
            } else if (t->wrong++ < 10) {
                say("wrong: s%ld (%s): status %s", i, k->name, r->str);
            }
            freeReplyObject(r);
        }
    }
    return 0;
}

/* Walk the dead stream: each designed-dead id has an entry with its
 * reason, nothing else is there. */
static int
check_dead(redisContext *c, struct tally *t)
{
    unsigned char *seen = calloc((size_t)S.jobs, 1);
    char after[64] = "-";

    if (seen == NULL)
        return -1;
    for (;;) {
        redisReply *r = redisCommand(c, "XRANGE " QKEY("dead") " %s + COUNT "
                                     "5000", after);
        size_t e;

        if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
            freeReplyObject(r);
            free(seen);
            return -1;
        }
        if (r->elements == 0) {
            freeReplyObject(r);
            break;
        }
        for (e = 0; e < r->elements; e++) {
            redisReply *ent = r->element[e], *kv = ent->element[1];
            const char *err = "";
            long i = -1;

            for (size_t f = 0; f + 1 < kv->elements; f += 2) {
                if (strcmp(kv->element[f]->str, "id") == 0)
                    i = id_num(kv->element[f + 1]->str,
                               kv->element[f + 1]->len);
                else if (strcmp(kv->element[f]->str, "error") == 0)
                    err = kv->element[f + 1]->str;
            }
            if (i < 0 || kind_of(i)->dead == NULL) {
                if (t->unexpected_dead++ < 10)
                    say("unexpected dead entry: id s%ld error %s", i, err);
                continue;
            }
            if (strstr(err, kind_of(i)->dead) == NULL &&
                t->bad_reason++ < 10)
                say("dead s%ld: error \"%s\" lacks \"%s\"", i, err,
                    kind_of(i)->dead);
            if (seen[i] < 255)
                seen[i]++;
        }
        snprintf(after, sizeof after, "(%s",
                 r->element[r->elements - 1]->element[0]->str);
        freeReplyObject(r);
    }
    for (long i = 0; i < S.jobs; i++) {
        if (kind_of(i)->dead == NULL)
            continue;
        if (seen[i] == 0 && t->no_dead_entry++ < 10)
            say("dead s%ld (%s) has no dead entry", i, kind_of(i)->name);
        if (seen[i] > 1)
            t->dup_dead++;
    }
    free(seen);
    return 0;
}

/* ------------------------------------------------------------ report */

static void
print_row(const struct sample *s, const char *note)
{
    printf("%6.0f %8ld %8lld %7lld %6lld", s->t, s->enq, s->processed,
           s->dead, s->stream);
    for (int w = 0; w < NWORKERS; w++) {
        if (s->w[w].rss_kb < 0)
            printf("  %6s %4s %4s %3s", "-", "-", "-", "-");
        else
            printf("  %6.1f %4ld %4ld %3ld", (double)s->w[w].rss_kb / 1024.0,
                   s->w[w].fds, s->w[w].http, s->w[w].threads);
    }
    printf("  %s%s%s\n", s->event, s->event[0] && note[0] ? "," : "", note);
}

/* About 24 rows spread over the run, and every row with an event. */
static void
print_table(size_t base, size_t end)
{
    size_t step = S.nsamples / 24 ? S.nsamples / 24 : 1;

    printf("\n%6s %8s %8s %7s %6s  %-21s  %-21s  %s\n", "t s", "enqueued",
           "processed", "dead", "stream", "droverd 1", "droverd 2", "event");
    printf("%6s %8s %8s %7s %6s  %6s %4s %4s %3s  %6s %4s %4s %3s\n", "", "",
           "", "", "", "RSS MB", "fds", "http", "thr", "RSS MB", "fds",
           "http", "thr");
    for (size_t s = 0; s < S.nsamples; s++) {
        const struct sample *sp = &S.samples[s];
        const char *note = s == base ? "BASELINE" : s == end ? "END" : "";

        if (s % step == 0 || sp->event[0] || note[0] ||
            s + 1 == S.nsamples)
            print_row(sp, note);
    }
}

/* Slot w at the end against its baseline (a droverd started again
 * afterwards, in slot 2, is held to the baseline of the one it replaced:
 * same config, same work). The number of failed criteria. */
static int
judge(int w, const struct sample *b, const struct sample *e)
{
    long b_other = b->w[w].fds - b->w[w].http;
    long e_other = e->w[w].fds - e->w[w].http;
    int rss_ok, fd_ok, http_ok, thr_ok;

    if (e->w[w].rss_kb < 0 || b->w[w].rss_kb < 0) {
        printf("droverd %d: not running at the baseline or the end\n", w + 1);
        return 1;
    }
    rss_ok = e->w[w].rss_kb <= b->w[w].rss_kb * RSS_SLACK;
    fd_ok = e_other <= b_other;
    http_ok = e->w[w].http <= HTTP_KEPT;
    thr_ok = e->w[w].threads <= b->w[w].threads;
    printf("droverd %d (pid %ld%s): RSS %.1f -> %.1f MB (%+.1f%%, at most "
           "+%.0f%%) %s; fds other than HTTP connections %ld -> %ld %s; "
           "kept HTTP connections %ld -> %ld (at most %d) %s; threads "
           "%ld -> %ld %s\n", w + 1, e->w[w].pid,
           e->w[w].pid != b->w[w].pid ? ", started again" : "",
           (double)b->w[w].rss_kb / 1024.0, (double)e->w[w].rss_kb / 1024.0,
           100.0 * ((double)e->w[w].rss_kb / (double)b->w[w].rss_kb - 1.0),
           100.0 * (RSS_SLACK - 1.0), rss_ok ? "ok" : "FAIL", b_other,
           e_other, fd_ok ? "ok" : "FAIL", b->w[w].http, e->w[w].http,
           HTTP_KEPT, http_ok ? "ok" : "FAIL", b->w[w].threads,
           e->w[w].threads, thr_ok ? "ok" : "FAIL");
    return !rss_ok + !fd_ok + !http_ok + !thr_ok;
}

/* ------------------------------------------------------------ main */

static void
usage(void)
{
    fprintf(stderr, "usage: soak --droverd PATH [--jobs N] [--csv FILE]\n");
    exit(2);
}

/* Wait until every id below the producer's limit is enqueued and the
 * stream, the delayed set and the pending list are empty (twice, a
 * second apart); 0, or -1 when nothing moved for STALL_S seconds. */
static int
drain(void)
{
    redisContext *c = NULL;
    int64_t last_progress = drv_test_now_ms();
    long long last_left = -1;
    int quiet = 0, rc = 0;

    while (quiet < 2) {
        long long left;

        drv_test_sleep_ms(1000);
        if (c != NULL && c->err) {
            redisFree(c);
            c = NULL;
        }
        if (c == NULL && (c = connect_redis()) == NULL)
            continue;
        left = num(c, "XLEN " QKEY("jobs")) +
               num(c, "ZCARD " QKEY("delayed")) +
               num(c, "XPENDING " QKEY("jobs") " drover") +
               (atomic_load(&S.limit) - atomic_load(&S.enqueued));
        quiet = left == 0 ? quiet + 1 : 0;
        if (left != last_left) {
            last_left = left;
            last_progress = drv_test_now_ms();
        } else if (drv_test_now_ms() - last_progress > STALL_S * 1000) {
            say("stuck: %lld entries left for %d s", left, STALL_S);
            rc = -1;
            break;
        }
    }
    if (c != NULL)
        redisFree(c);
    return rc;
}

/* Let the workers idle IDLE_S seconds, then the index of a sample taken
 * after that. */
static size_t
idle_sample(const char *what)
{
    size_t n;

    drv_test_sleep_ms(IDLE_S * 1000);
    mark(what);
    pthread_mutex_lock(&S.mu);
    n = S.nsamples;
    pthread_mutex_unlock(&S.mu);
    for (;;) {
        drv_test_sleep_ms(200);
        pthread_mutex_lock(&S.mu);
        if (S.nsamples > n) {
            pthread_mutex_unlock(&S.mu);
            return n;
        }
        pthread_mutex_unlock(&S.mu);
    }
}

/* Let the producer go up to limit_pct of the ids and wait until pct of
 * them are enqueued (with limit_pct > pct it is still sending). */
static void
enqueue_until(long pct, long limit_pct)
{
    atomic_store(&S.limit, S.jobs * limit_pct / 100);
    while (atomic_load(&S.enqueued) < S.jobs * pct / 100)
        drv_test_sleep_ms(5);
}

int
main(int argc, char **argv)
{
    pthread_t sampler, enq;
    struct tally t = {0};
    redisContext *c;
    size_t base, end;
    int fails = 0;
    char tmpl[] = "/tmp/drover-soak.XXXXXX";

    kinds_init();
    S.jobs = getenv("SOAK_JOBS") ? strtol(getenv("SOAK_JOBS"), NULL, 10)
                                 : 1000000;
    S.fsync = getenv("SOAK_FSYNC") ? getenv("SOAK_FSYNC") : "always";
    snprintf(S.csv, sizeof S.csv, "soak-samples.csv");
    for (int a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--droverd") == 0 && a + 1 < argc)
            snprintf(S.droverd, sizeof S.droverd, "%s", argv[++a]);
        else if (strcmp(argv[a], "--jobs") == 0 && a + 1 < argc)
            S.jobs = strtol(argv[++a], NULL, 10);
        else if (strcmp(argv[a], "--csv") == 0 && a + 1 < argc)
            snprintf(S.csv, sizeof S.csv, "%s", argv[++a]);
        else
            usage();
    }
    if (!S.droverd[0] || S.jobs < 1000)
        usage();
    if (mkdtemp(tmpl) == NULL) {
        perror("soak: mkdtemp");
        return 2;
    }
    snprintf(S.dir, sizeof S.dir, "%s", tmpl);
    if (copy_droverd() != 0) {
        fprintf(stderr, "soak: cannot copy %s into %s\n", S.droverd, S.dir);
        cleanup();
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();
    S.t0 = drv_test_now_ms();
    S.csvf = fopen(S.csv, "w");
    if (S.csvf == NULL) {
        perror(S.csv);
        return 2;
    }
    fprintf(S.csvf, "t_s,enqueued,processed,failed,dead,stream,delayed");
    for (int w = 1; w <= NWORKERS; w++)
        fprintf(S.csvf, ",w%d_pid,w%d_rss_kb,w%d_fds,w%d_http_conns,"
                "w%d_threads", w, w, w, w, w);
    fprintf(S.csvf, ",event\n");
    if (http_start() != 0 || write_configs() != 0 || redis_start() != 0) {
        fprintf(stderr, "soak: set-up failed (%s)\n", S.dir);
        cleanup();
        return 2;
    }
    say("%ld jobs, appendfsync %s, dir %s, HTTP port %d", S.jobs, S.fsync,
        S.dir, S.http_port);
    for (int w = 0; w < NWORKERS; w++)
        if (worker_start(w) != 0) {
            cleanup();
            return 2;
        }
    c = connect_redis();
    for (int i = 0; c && i < 300 && num(c, "HLEN soak:workers") < NWORKERS;
         i++)
        drv_test_sleep_ms(100);
    if (c)
        redisFree(c);
    pthread_create(&sampler, NULL, sampler_main, NULL);
    atomic_store(&S.kill_at, -1);
    pthread_create(&enq, NULL, enqueue_main, NULL);

    /* warm-up: the first ids, drained, then the baseline at rest */
    mark("warm-up");
    enqueue_until(WARM_PCT, WARM_PCT);
    fails += drain() != 0;
    base = idle_sample("baseline");

    /* the load, with the faults at 35% and 60% of the ids enqueued */
    atomic_store(&S.kill_at, S.jobs * 35 / 100 + CHUNK / 2);
    atomic_store(&S.limit, S.jobs);
    while (!atomic_load(&S.redis_killed))
        drv_test_sleep_ms(5);
    mark("redis-kill-9");
    stop_proc(S.redis, SIGKILL);
    S.redis = 0;
    drv_test_sleep_ms(1000);
    if (redis_start() != 0) {
        fprintf(stderr, "soak: redis-server did not come back\n");
        atomic_store(&S.stop, 1);
        cleanup();
        return 2;
    }
    mark("redis-back");
    enqueue_until(60, 100);
    mark("droverd2-kill-9");
    stop_proc(S.worker[1], SIGKILL);
    pthread_mutex_lock(&S.mu);
    S.worker[1] = 0;
    pthread_mutex_unlock(&S.mu);
    drv_test_sleep_ms(2000);
    if (worker_start(1) != 0) {
        atomic_store(&S.stop, 1);
        cleanup();
        return 2;
    }
    mark("droverd2-back");
    pthread_join(enq, NULL);
    mark("enqueued");
    fails += drain() != 0;
    mark("drained");
    end = idle_sample("end");
    atomic_store(&S.stop, 1);
    pthread_join(sampler, NULL);

    c = connect_redis();
    if (c == NULL || check_results(c, &t) != 0 || check_dead(c, &t) != 0) {
        fprintf(stderr, "soak: could not read the outcomes\n");
        fails++;
    }
    if (c)
        redisFree(c);
    for (int w = 0; w < NWORKERS; w++) {
        int st = stop_proc(S.worker[w], SIGTERM);

        S.worker[w] = 0;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            say("droverd %d did not exit 0 on SIGTERM (status %d)", w + 1,
                st);
            fails++;
        }
    }

    print_table(base, end);
    printf("\n%ld jobs (%ld XADDs sent again after the Redis kill), %zu "
           "samples in %s\n", S.jobs, atomic_load(&S.resent), S.nsamples,
           S.csv);
    printf("outcomes: %ld ok, %ld dead as designed, %ld lost, %ld with the "
           "wrong status, %ld designed-dead without a dead entry, %ld dead "
           "entries without their reason, %ld unexpected dead entries "
           "(%ld ids dead twice)\n", t.ok, t.dead, t.lost, t.wrong,
           t.no_dead_entry, t.bad_reason, t.unexpected_dead, t.dup_dead);
    printf("runs: the queue's stats count %lld processed and %lld dead: "
           "%lld successful runs and %ld dead entries more than ids, the "
           "duplicates at-least-once delivery allows (an XADD sent again "
           "after no answer, a job of a killed worker run again)\n",
           S.samples[end].processed, S.samples[end].dead,
           S.samples[end].processed - t.ok, t.dup_dead);
    if (t.lost || t.wrong || t.no_dead_entry || t.bad_reason ||
        t.unexpected_dead)
        fails++;
    for (int w = 0; w < NWORKERS; w++)
        fails += judge(w, &S.samples[base], &S.samples[end]);
    printf("soak: %s\n", fails ? "FAIL" : "pass");
    fclose(S.csvf);
    cleanup();
    return fails ? 1 : 0;
}
