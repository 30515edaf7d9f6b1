/*
 * httpbench.c -- make bench: the http handler (webhooks) against a local
 * server, and that server alone.
 *
 *   httpbench --sock SOCKET --droverd BIN --tools DIR --work DIR
 *             --json FILE [--runs N] [--n N] [--batch B]
 *
 * Against the redis-server on SOCKET (bench.sh starts a private one) and
 * tools/httpserver (a fresh one per run, on a free loopback port), two
 * cases, N jobs each (default 20,000), the median of N runs (default 3):
 *
 *   h1  N http POST jobs (the default JSON body of the job's fields) to a
 *       server answering after 100 ms, worker concurrency 500: jobs/s
 *       against the bound 500 / 0.1 s = 5,000/s (and, for context, what
 *       tools/httpload gets from the server alone right after);
 *   h2  the same at 20 ms, against what the server serves alone in the
 *       same run: tools/httpload, 500 keep-alive connections, N POSTs of
 *       the same size (the two alternate, the order flipping each run).
 *
 * droverd's configuration is what a new user writes: concurrency 500, the
 * default batch (--batch B sets worker.batch), one job type (handler
 * http, method POST, the server's URL, retries 0).
 *
 * drover is timed like make bench's other batch cases: droverd idle and
 * reading first, then the N jobs XADDed at once; from the first XADD
 * until the stream is empty (every job settled). droverd's CPU is the sum
 * of its threads' schedstat over that window; the connections are the
 * ones the server accepted (its count, printed when it stops). Each case
 * prints rows: measured, target, met.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#define BENCH_PROG "httpbench"
#include "bench.h"

extern char **environ;

#define KEY "drover:{bench}:jobs"
#define CONCURRENCY 500
#define MAXRUNS 15

static struct {
    const char *sock, *droverd, *tools, *work, *json;
    int runs;
    long n;
    int batch;                  /* worker.batch; 0 = drover's default */
} opt = {NULL, NULL, NULL, NULL, NULL, 3, 20000, 0};


/* prog argv with stdout and stderr appended to log; returns its pid. */
static pid_t
start(const char *const *argv, const char *log)
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    int rc;

    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log,
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        bench_die("start %s: %s", argv[0], strerror(rc));
    bench_kid_add(pid);
    return pid;
}

/* Stop pid with sig (0: wait for it) and wait; its exit status. */
static int
stop(pid_t pid, int sig)
{
    int st = 0;

    if (sig != 0)
        kill(pid, sig);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    bench_kid_del(pid);
    return st;
}

/* The whole of a (small) log file, NUL-terminated, in buf. */
static void
slurp(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    size_t got = 0;

    if (f != NULL) {
        got = fread(buf, 1, n - 1, f);
        fclose(f);
    }
    buf[got] = '\0';
}

/* CPU seconds of every thread of pid so far (schedstat, ns). */
static double
cpu_of(pid_t pid)
{
    char path[64], p2[600];
    struct dirent *e;
    double s = 0;
    DIR *d;

    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    if ((d = opendir(path)) == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        unsigned long long ns = 0;
        FILE *f;

        if (e->d_name[0] == '.')
            continue;
        snprintf(p2, sizeof p2, "%s/%s/schedstat", path, e->d_name);
        if ((f = fopen(p2, "r")) == NULL)
            continue;
        if (fscanf(f, "%llu", &ns) == 1)
            s += (double)ns / 1e9;
        fclose(f);
    }
    closedir(d);
    return s;
}

/* ------------------------------------------------------------ server */

struct server {
    pid_t pid;
    int port;
    char log[512];
};

static void
server_start(struct server *s, int delay_ms, const char *name)
{
    char path[512], delay[16], out[256];
    const char *argv[] = {path, "--delay-ms", delay, NULL};
    const char *p;
    int i;

    snprintf(path, sizeof path, "%s/httpserver", opt.tools);
    snprintf(delay, sizeof delay, "%d", delay_ms);
    snprintf(s->log, sizeof s->log, "%s/%s.log", opt.work, name);
    s->pid = start(argv, s->log);
    for (i = 0; i < 5000; i++) {
        slurp(s->log, out, sizeof out);
        if ((p = strstr(out, "listening 127.0.0.1:")) != NULL &&
            strchr(p, '\n') != NULL) {
            s->port = atoi(p + 20);
            return;
        }
        bench_sleep_ms(1);
    }
    bench_die("httpserver did not start (see %s)", s->log);
}

/* Stop it; the connections it accepted and the answers it sent. */
static void
server_stop(struct server *s, long long *accepted, long long *served)
{
    char out[1024];
    const char *p;
    int st = stop(s->pid, SIGTERM);

    slurp(s->log, out, sizeof out);
    p = strstr(out, "accepted ");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || p == NULL ||
        sscanf(p, "accepted %lld served %lld", accepted, served) != 2)
        bench_die("httpserver failed (see %s)", s->log);
}

/* ------------------------------------------------------------- drover */

struct drun {
    double rate;                /* jobs/s */
    double cpu_per_k;           /* droverd CPU s per 1,000 jobs */
    double redis_per_k;         /* Redis CPU s per 1,000 jobs */
    double server_per_k;        /* server CPU s per 1,000 answers */
    long long conns;            /* connections the server accepted */
};

/* droverd is reading once its fetch connection blocks in XREADGROUP. */
static void
wait_reading(redisContext *c, pid_t pid, const char *log)
{
    char name[64];
    int i;

    snprintf(name, sizeof name, "name=drover-fetch-%d ", (int)pid);
    for (i = 0; i < 5000; i++) {
        redisReply *r = redisCommand(c, "CLIENT LIST");
        const char *p = r != NULL ? strstr(r->str, name) : NULL;
        const char *eol = p ? strchr(p, '\n') : NULL;
        const char *cmd = p ? strstr(p, "cmd=xreadgroup") : NULL;
        int ok = cmd != NULL && (eol == NULL || cmd < eol);

        if (r != NULL)
            freeReplyObject(r);
        if (ok)
            return;
        if (waitpid(pid, NULL, WNOHANG) == pid)
            bench_die("droverd exited at start (see %s)", log);
        bench_sleep_ms(2);
    }
    bench_die("droverd not reading after 10 s (see %s)", log);
}

static void
run_drover(redisContext *c, int delay_ms, struct drun *out)
{
    char conf[512], log[512], name[32], batch[32] = "";
    const char *argv[] = {opt.droverd, "-c", conf, NULL};
    struct server s;
    long long served = 0;
    double t0, cpu0, rcpu0, scpu0;
    pid_t pid;
    FILE *f;
    long i, sent = 0, got = 0;

    snprintf(name, sizeof name, "httpserver-%d", delay_ms);
    server_start(&s, delay_ms, name);
    snprintf(conf, sizeof conf, "%s/http.yaml", opt.work);
    snprintf(log, sizeof log, "%s/droverd-http.log", opt.work);
    if ((f = fopen(conf, "w")) == NULL)
        bench_die("%s: %s", conf, strerror(errno));
    if (opt.batch > 0)
        snprintf(batch, sizeof batch, "  batch: %d\n", opt.batch);
    fprintf(f,
            "redis:\n  url: unix://%s\n  prefix: drover\n"
            "worker:\n  concurrency: %d\n%s  shutdown_timeout: 5s\n"
            "queues: [bench]\n"
            "jobs:\n  hook:\n    handler: http\n    method: POST\n"
            "    url: http://127.0.0.1:%d/hook\n    retries: 0\n",
            opt.sock, CONCURRENCY, batch, s.port);
    fclose(f);
    bench_num(c, "FLUSHALL");
    pid = start(argv, log);
    wait_reading(c, pid, log);
    cpu0 = cpu_of(pid);
    rcpu0 = bench_redis_cpu(c);
    scpu0 = cpu_of(s.pid);
    t0 = bench_now_s();
    /* XADD pipelined, 1000 a write: droverd starts on the first ones */
    while (got < opt.n) {
        while (sent < opt.n && sent - got < 1000) {
            redisAppendCommand(c, "XADD %s * job hook id j%ld n %ld", KEY,
                               sent, sent);
            sent++;
        }
        for (i = got; i < sent; i++) {
            void *r = NULL;

            if (redisGetReply(c, &r) != REDIS_OK || r == NULL)
                bench_die("XADD: %s", c->errstr);
            freeReplyObject(r);
        }
        got = sent;
    }
    while (bench_num(c, "XLEN %s", KEY) > 0) {
        if (bench_now_s() - t0 > 600)
            bench_die("not drained after 600 s (see %s)", log);
        if (waitpid(pid, NULL, WNOHANG) == pid)
            bench_die("droverd exited (see %s)", log);
        bench_sleep_ms(1);
    }
    out->rate = (double)opt.n / (bench_now_s() - t0);
    out->cpu_per_k = (cpu_of(pid) - cpu0) / (double)opt.n * 1000;
    out->redis_per_k = (bench_redis_cpu(c) - rcpu0) / (double)opt.n * 1000;
    out->server_per_k = (cpu_of(s.pid) - scpu0) / (double)opt.n * 1000;
    if (bench_num(c, "HGET drover:{bench}:stats processed") != opt.n ||
        bench_num(c, "HGET drover:{bench}:stats dead") != 0)
        bench_die("not every job succeeded (see %s)", log);
    i = stop(pid, SIGTERM);
    if (!WIFEXITED(i) || WEXITSTATUS(i) != 0)
        bench_die("droverd did not stop cleanly (see %s)", log);
    server_stop(&s, &out->conns, &served);
    if (served != opt.n)
        bench_die("the server answered %lld requests for %ld jobs", served,
                  opt.n);
}

/* httpload against a fresh server: what the server serves alone. */
static double
run_alone(int delay_ms, double *server_per_k)
{
    char path[512], port[16], n[24], log[512], out[512];
    const char *argv[] = {path, "--port", port, "--conns", "500",
                          "--requests", n, NULL};
    struct server s;
    long long acc = 0, served = 0;
    double rate = 0, scpu0;
    const char *p;
    int st;

    server_start(&s, delay_ms, "httpserver-alone");
    snprintf(path, sizeof path, "%s/httpload", opt.tools);
    snprintf(port, sizeof port, "%d", s.port);
    snprintf(n, sizeof n, "%ld", opt.n);
    snprintf(log, sizeof log, "%s/httpload.log", opt.work);
    scpu0 = cpu_of(s.pid);
    st = stop(start(argv, log), 0);
    *server_per_k = (cpu_of(s.pid) - scpu0) / (double)opt.n * 1000;
    slurp(log, out, sizeof out);
    p = strstr(out, "req/s ");
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || p == NULL ||
        sscanf(p, "req/s %lf", &rate) != 1)
        bench_die("httpload failed (see %s)", log);
    server_stop(&s, &acc, &served);
    return rate;
}

/* ------------------------------------------------------------- report */

struct row {
    const char *cas, *label, *name;
    int prec;
    double v[MAXRUNS];
    int n;
    const char *target;         /* NULL: no target */
    int ge;                     /* met when >= t (else <= t) */
    double t;
};

static struct row rows[16];
static int nrows;

static struct row *
row(const char *cas, const char *label, const char *name, int prec,
    const char *target, int ge, double t)
{
    struct row *r = &rows[nrows++];

    memset(r, 0, sizeof *r);
    r->cas = cas;
    r->label = label;
    r->name = name;
    r->prec = prec;
    r->target = target;
    r->ge = ge;
    r->t = t;
    return r;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double
median(const struct row *r)
{
    double s[MAXRUNS];

    memcpy(s, r->v, (size_t)r->n * sizeof *s);
    qsort(s, (size_t)r->n, sizeof *s, cmp_double);
    return r->n % 2 ? s[r->n / 2] : (s[r->n / 2 - 1] + s[r->n / 2]) / 2;
}

static int
met(const struct row *r, double m)
{
    return r->ge ? m >= r->t : m <= r->t;
}

static void
report(void)
{
    FILE *f = fopen(opt.json, "w");
    int i, k;

    if (f == NULL)
        bench_die("%s: %s", opt.json, strerror(errno));
    printf("\nwebhooks: %ld http POST jobs, worker concurrency %d, median "
           "of %d runs\n\n", opt.n, CONCURRENCY, opt.runs);
    printf("%-3s %-50s %-30s %10s  %-10s %s\n", "#", "case", "metric",
           "median", "target", "met");
    fprintf(f, "{\n  \"n\": %ld,\n  \"concurrency\": %d,\n  \"metrics\": [",
            opt.n, CONCURRENCY);
    for (i = 0; i < nrows; i++) {
        const struct row *r = &rows[i];
        int first = i == 0 || strcmp(rows[i - 1].cas, r->cas) != 0;
        double m = median(r);

        if (first && i > 0)
            printf("\n");
        printf("%-3s %-50s %-30s %10.*f", first ? r->cas : "",
               first ? r->label : "", r->name, r->prec, m);
        if (r->target != NULL)
            printf("  %-10s %s", r->target, met(r, m) ? "yes" : "NO");
        printf("\n");
        fprintf(f, "%s\n    {\"case\": \"%s\", \"label\": \"%s\", "
                "\"metric\": \"%s\", \"median\": %.6g, \"runs\": [",
                i ? "," : "", r->cas, r->label, r->name, m);
        for (k = 0; k < r->n; k++)
            fprintf(f, "%s%.6g", k ? ", " : "", r->v[k]);
        fprintf(f, "]");
        if (r->target != NULL)
            fprintf(f, ", \"target\": \"%s\", \"met\": %s", r->target,
                    met(r, m) ? "true" : "false");
        fprintf(f, "}");
    }
    fprintf(f, "\n  ]\n}\n");
    fclose(f);
    printf("\nJSON: %s\n", opt.json);
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    static const char l1[] = "http POST, answer after 100 ms, conc. 500";
    static const char l2[] = "http POST, answer after 20 ms, conc. 500";
    struct row *h1_rate, *h1_bound, *h1_alone, *h1_ratio, *h1_conn, *h1_cpu;
    struct row *h2_alone, *h2_rate, *h2_ratio, *h2_conn, *h2_cpu, *h2_redis,
        *h2_srv;
    redisContext *c;
    int i, r;

    for (i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];

        if (strcmp(a, "--sock") == 0) opt.sock = v;
        else if (strcmp(a, "--droverd") == 0) opt.droverd = v;
        else if (strcmp(a, "--tools") == 0) opt.tools = v;
        else if (strcmp(a, "--work") == 0) opt.work = v;
        else if (strcmp(a, "--json") == 0) opt.json = v;
        else if (strcmp(a, "--runs") == 0) opt.runs = atoi(v);
        else if (strcmp(a, "--n") == 0) opt.n = atol(v);
        else if (strcmp(a, "--batch") == 0) opt.batch = atoi(v);
        else break;
    }
    if (i < argc || !opt.sock || !opt.droverd || !opt.tools || !opt.work ||
        !opt.json || opt.runs < 1 || opt.runs > MAXRUNS || opt.n < 1) {
        fprintf(stderr, "usage: httpbench --sock SOCKET --droverd BIN "
                "--tools DIR --work DIR --json FILE [--runs 1-15] [--n N] "
                "[--batch B]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    c = redisConnectUnix(opt.sock);
    if (c == NULL || c->err)
        bench_die("connect %s", opt.sock);

    h1_rate = row("h1", l1, "jobs/s", 0, NULL, 0, 0);
    h1_bound = row("h1", l1, "of the bound 5,000/s", 3, ">= 0.90", 1, 0.9);
    h1_alone = row("h1", l1, "server alone (httpload) req/s", 0, NULL, 0, 0);
    h1_ratio = row("h1", l1, "drover / server alone", 3, NULL, 0, 0);
    h1_conn = row("h1", l1, "connections opened", 0, "<= 500", 0,
                  CONCURRENCY);
    h1_cpu = row("h1", l1, "droverd CPU s / 1,000 jobs", 4, NULL, 0, 0);
    h2_alone = row("h2", l2, "server alone (httpload) req/s", 0, NULL, 0, 0);
    h2_rate = row("h2", l2, "jobs/s", 0, NULL, 0, 0);
    h2_ratio = row("h2", l2, "drover / server alone", 3, ">= 0.90", 1, 0.9);
    h2_conn = row("h2", l2, "connections opened", 0, "<= 500", 0,
                  CONCURRENCY);
    h2_cpu = row("h2", l2, "droverd CPU s / 1,000 jobs", 4, "<= 0.050", 0,
                 0.05);
    h2_redis = row("h2", l2, "Redis CPU s / 1,000 jobs", 4, NULL, 0, 0);
    h2_srv = row("h2", l2, "server CPU s / 1,000 (drover)", 4, NULL, 0, 0);

    for (r = 0; r < opt.runs; r++) {
        struct drun d;
        double alone, sk;

        fprintf(stderr, "case h1: run %d\n", r + 1);
        run_drover(c, 100, &d);
        /* context: on a busy machine the server alone misses the bound */
        alone = run_alone(100, &sk);
        h1_rate->v[h1_rate->n++] = d.rate;
        h1_bound->v[h1_bound->n++] = d.rate / (CONCURRENCY / 0.1);
        h1_alone->v[h1_alone->n++] = alone;
        h1_ratio->v[h1_ratio->n++] = d.rate / alone;
        h1_conn->v[h1_conn->n++] = (double)d.conns;
        h1_cpu->v[h1_cpu->n++] = d.cpu_per_k;
        fprintf(stderr, "  [h1] %.0f jobs/s, %lld connections, %.4f CPU s "
                "per 1,000\n", d.rate, d.conns, d.cpu_per_k);

        fprintf(stderr, "case h2: run %d\n", r + 1);
        if (r % 2 == 0) {
            alone = run_alone(20, &sk);
            run_drover(c, 20, &d);
        } else {
            run_drover(c, 20, &d);
            alone = run_alone(20, &sk);
        }
        h2_alone->v[h2_alone->n++] = alone;
        h2_rate->v[h2_rate->n++] = d.rate;
        h2_ratio->v[h2_ratio->n++] = d.rate / alone;
        h2_conn->v[h2_conn->n++] = (double)d.conns;
        h2_cpu->v[h2_cpu->n++] = d.cpu_per_k;
        h2_redis->v[h2_redis->n++] = d.redis_per_k;
        h2_srv->v[h2_srv->n++] = d.server_per_k;
        fprintf(stderr, "  [h2] alone %.0f req/s (server %.4f CPU s per "
                "1,000), drover %.0f jobs/s, %lld connections, %.4f CPU s "
                "per 1,000\n", alone, sk, d.rate, d.conns, d.cpu_per_k);
    }
    report();
    redisFree(c);
    return 0;
}
