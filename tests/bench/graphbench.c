/*
 * graphbench.c -- make bench: graph pipelines against the same work as
 * plain jobs.
 *
 *   graphbench --sock SOCKET --droverd BIN --work DIR [--runs N]
 *
 * Against the redis-server on SOCKET (bench.sh starts a private one), one
 * droverd, each case timed from the first XADD until the queue's
 * `processed` count reaches the number of jobs (a graph node counts once
 * it succeeded), the median of N runs (default 3):
 *
 *   chain3     300 runs of a 3-node chain a -> b -> c (echo jobs), against
 *              900 plain echo jobs
 *   fanout100  10 runs of fetch (exec printf of a 100-item array) -> 100
 *              items (echo, max_parallel 100) -> join (echo), against 10
 *              exec + 1,000 echo + 10 echo plain jobs
 *
 * Per node (or plain job): Lua script calls (EVALSHA/EVAL), fetches
 * (XREADGROUP), every command Redis ran (INFO commandstats, those the
 * scripts run included; the bench's own polling taken out) and Redis CPU.
 * Every run starts from FLUSHALL.
 */
#include <errno.h>
#include <fcntl.h>
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

#define BENCH_PROG "graphbench"
#include "bench.h"

extern char **environ;

#define MAXRUNS 15

static const char *opt_sock, *opt_droverd, *opt_work;
static int opt_runs = 3;

/* Redis's counters: calls of the commands we follow, all calls, CPU. */
struct counters {
    long long lua, fetch, hget, info, total;
    double cpu;
};

static void
counters_read(redisContext *c, struct counters *k)
{
    redisReply *r = bench_cmd(c, "INFO commandstats");
    char *line, *save = NULL, *text = strdup(r->str);
    double user = 0, sys = 0;

    memset(k, 0, sizeof *k);
    for (line = strtok_r(text, "\r\n", &save); line != NULL;
         line = strtok_r(NULL, "\r\n", &save)) {
        char name[64];
        long long calls;

        if (sscanf(line, "cmdstat_%63[^:]:calls=%lld", name, &calls) != 2)
            continue;
        k->total += calls;
        if (strcmp(name, "evalsha") == 0 || strcmp(name, "eval") == 0)
            k->lua += calls;
        else if (strcmp(name, "xreadgroup") == 0)
            k->fetch += calls;
        else if (strcmp(name, "hget") == 0)
            k->hget += calls;
        else if (strcmp(name, "info") == 0)
            k->info += calls;
    }
    free(text);
    freeReplyObject(r);
    r = bench_cmd(c, "INFO cpu");
    sscanf(strstr(r->str, "used_cpu_sys:"), "used_cpu_sys:%lf", &sys);
    sscanf(strstr(r->str, "used_cpu_user:"), "used_cpu_user:%lf", &user);
    k->cpu = sys + user;
    freeReplyObject(r);
}

static long long
processed(redisContext *c)
{
    redisReply *r = bench_cmd(c, "HGET drover:{bench}:stats processed");
    long long v = r->type == REDIS_REPLY_STRING ? atoll(r->str) : 0;

    freeReplyObject(r);
    return v;
}

static const char config_head[] =
    "redis:\n  url: unix://%s\n  prefix: drover\n"
    "worker:\n  concurrency: 64\n"
    "queues: [bench]\n"
    "jobs:\n"
    "  e: {handler: echo}\n"
    "  list:\n    handler: exec\n"
    "    command: [sh, -c, 'printf \"[\"; seq -s, 0 99; printf \"]\"']\n"
    "pipelines:\n"
    "  chain: {graph: {a: {job: e}, b: {job: e, needs: a},"
    " c: {job: e, needs: b}}}\n"
    "  fan:\n    graph:\n"
    "      fetch: {job: list}\n"
    "      items: {job: e, needs: fetch, for_each: \"{input}\","
    " max_parallel: 100}\n"
    "      join: {job: e, needs: items}\n";

static pid_t
start_droverd(redisContext *c)
{
    char cfg[512], log[512], c_opt[] = "-c", l_opt[] = "--log-level",
         level[] = "error";
    char *argv[] = {(char *)opt_droverd, c_opt, cfg, l_opt, level, NULL};
    posix_spawn_file_actions_t fa;
    pid_t pid;
    FILE *f;
    int i;

    snprintf(cfg, sizeof cfg, "%s/graphbench.yaml", opt_work);
    snprintf(log, sizeof log, "%s/graphbench.log", opt_work);
    f = fopen(cfg, "w");
    if (f == NULL)
        bench_die("cannot write the config");
    fprintf(f, config_head, opt_sock);
    fclose(f);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT |
                                     O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    if (posix_spawn(&pid, opt_droverd, &fa, NULL, argv, environ) != 0)
        bench_die("cannot start droverd");
    posix_spawn_file_actions_destroy(&fa);
    /* ready once its consumer group exists */
    for (i = 0; i < 5000; i++) {
        redisReply *r = redisCommand(c, "XINFO GROUPS drover:{bench}:jobs");
        int ok = r != NULL && r->type == REDIS_REPLY_ARRAY &&
                 r->elements > 0;

        if (r != NULL)
            freeReplyObject(r);
        if (ok)
            return pid;
        usleep(2000);
    }
    bench_die("droverd did not get ready");
    return -1;
}

static void
stop_droverd(pid_t pid)
{
    int st;

    kill(pid, SIGTERM);
    waitpid(pid, &st, 0);
}

/* One measured run. */
struct result {
    double secs;
    long long units;            /* nodes, or plain jobs */
    struct counters d;          /* counters after - before */
};

/* Enqueue one case (graph or plain), wait until processed reaches want. */
static void
run_case(redisContext *c, int fan, int graph, struct result *out)
{
    struct counters a, b;
    long long want, polls = 0;
    double t0;
    pid_t pid;
    int i, k;

    freeReplyObject(bench_cmd(c, "FLUSHALL"));
    pid = start_droverd(c);
    counters_read(c, &a);
    t0 = bench_now_s();
    if (!fan && graph) {
        for (i = 0; i < 300; i++)
            freeReplyObject(bench_cmd(c, "XADD drover:{bench}:jobs * "
                                      "pipeline chain id r%d", i));
        want = 900;
    } else if (!fan) {
        for (i = 0; i < 900; i++)
            freeReplyObject(bench_cmd(c, "XADD drover:{bench}:jobs * "
                                      "job e n %d", i));
        want = 900;
    } else if (graph) {
        for (i = 0; i < 10; i++)
            freeReplyObject(bench_cmd(c, "XADD drover:{bench}:jobs * "
                                      "pipeline fan id f%d", i));
        want = 1020;
    } else {
        for (i = 0; i < 10; i++) {
            freeReplyObject(bench_cmd(c, "XADD drover:{bench}:jobs * "
                                      "job list"));
            for (k = 0; k < 100; k++)
                freeReplyObject(bench_cmd(c, "XADD drover:{bench}:jobs * "
                                          "job e item %d index %d", k, k));
            freeReplyObject(bench_cmd(c, "XADD drover:{bench}:jobs * job e"));
        }
        want = 1020;
    }
    while (processed(c) < want) {
        polls++;
        usleep(2000);
    }
    out->secs = bench_now_s() - t0;
    polls++;
    counters_read(c, &b);
    stop_droverd(pid);
    out->units = want;
    out->d.lua = b.lua - a.lua;
    out->d.fetch = b.fetch - a.fetch;
    /* the bench's own HGETs and INFOs are not the workload's */
    out->d.hget = b.hget - a.hget - polls;
    out->d.total = b.total - a.total - polls - (b.info - a.info);
    out->d.cpu = b.cpu - a.cpu;
}

static int
by_secs(const void *x, const void *y)
{
    const struct result *p = x, *q = y;

    return p->secs < q->secs ? -1 : p->secs > q->secs;
}

static void
report(redisContext *c, const char *name, int fan, int graph)
{
    struct result r[MAXRUNS], *m;
    int i;

    for (i = 0; i < opt_runs; i++)
        run_case(c, fan, graph, &r[i]);
    qsort(r, (size_t)opt_runs, sizeof *r, by_secs);
    m = &r[opt_runs / 2];
    printf("%-10s %-6s %6lld %8.3f %9.0f %9.2f %9.2f %9.1f %9.1f\n", name,
           graph ? "graph" : "plain", m->units, m->secs,
           (double)m->units / m->secs, (double)m->d.lua / (double)m->units,
           (double)m->d.fetch / (double)m->units,
           (double)m->d.total / (double)m->units,
           m->d.cpu * 1e6 / (double)m->units);
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    redisContext *c;
    int i;

    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--sock") == 0)
            opt_sock = argv[i + 1];
        else if (strcmp(argv[i], "--droverd") == 0)
            opt_droverd = argv[i + 1];
        else if (strcmp(argv[i], "--work") == 0)
            opt_work = argv[i + 1];
        else if (strcmp(argv[i], "--runs") == 0)
            opt_runs = atoi(argv[i + 1]);
        else
            bench_die("usage: graphbench --sock S --droverd BIN --work DIR "
                      "[--runs N]");
    }
    if (opt_sock == NULL || opt_droverd == NULL || opt_work == NULL)
        bench_die("usage: graphbench --sock S --droverd BIN --work DIR "
                  "[--runs N]");
    if (opt_runs < 1 || opt_runs > MAXRUNS)
        bench_die("--runs must be 1 to 15");
    c = redisConnectUnix(opt_sock);
    if (c == NULL || c->err)
        bench_die("cannot connect to redis");
    printf("graph pipelines vs plain jobs (median of %d runs; per node or "
           "plain job)\n", opt_runs);
    printf("%-10s %-6s %6s %8s %9s %9s %9s %9s %9s\n", "case", "kind",
           "units", "seconds", "units/s", "lua/u", "fetch/u", "redis/u",
           "cpu_us/u");
    report(c, "chain3", 0, 1);
    report(c, "chain3", 0, 0);
    report(c, "fanout100", 1, 1);
    report(c, "fanout100", 1, 0);
    redisFree(c);
    return 0;
}
