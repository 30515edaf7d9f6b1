/*
 * metrics_process.c -- the standard process_* metrics, read from /proc.
 *
 *   process_cpu_seconds_total      utime + stime of /proc/self/stat
 *   process_resident_memory_bytes  rss pages * page size
 *   process_virtual_memory_bytes   vsize
 *   process_open_fds               entries of /proc/self/fd
 *   process_max_fds                RLIMIT_NOFILE soft limit
 *   process_start_time_seconds     btime of /proc/stat + starttime
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "drover/common.h"
#include "drover/metrics.h"

struct drv_metrics_process {
    unsigned magic;
#define PROCESS_MAGIC 0x9a0c9a0cU
    struct drv_metrics_series *cpu;   /* borrowed: registry's */
    struct drv_metrics_series *rss;
    struct drv_metrics_series *vsize;
    struct drv_metrics_series *fds;
    struct drv_metrics_series *max_fds;
    struct drv_metrics_series *start;
    long ticks;                       /* sysconf(_SC_CLK_TCK) */
    long page;                        /* sysconf(_SC_PAGESIZE) */
};

/* The fields of /proc/self/stat after the command name: field 3 (state)
 * is out[0]. Returns the number read. */
static int
read_stat(unsigned long long *out, int n)
{
    char buf[1024], *p;
    size_t len;
    FILE *fp = fopen("/proc/self/stat", "r");
    int i = 0;

    if (fp == NULL)
        return 0;
    len = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[len] = '\0';
    p = strrchr(buf, ')'); /* the name may hold spaces and parens */
    if (p == NULL)
        return 0;
    p += 2;
    /* field 3 is the state letter: skip it */
    out[i++] = 0;
    p = strchr(p, ' ');
    while (p != NULL && i < n) {
        char *end;
        out[i++] = strtoull(p + 1, &end, 10);
        p = *end == ' ' ? end : NULL;
    }
    return i;
}

static long long
boot_time(void)
{
    char line[256];
    long long bt = 0;
    FILE *fp = fopen("/proc/stat", "r");

    if (fp == NULL)
        return 0;
    while (fgets(line, sizeof line, fp) != NULL)
        if (sscanf(line, "btime %lld", &bt) == 1)
            break;
    fclose(fp);
    return bt;
}

struct drv_metrics_process *
drv_metrics_process_add(struct drv_metrics *m)
{
    struct drv_metrics_process *p;
    unsigned long long st[22];

    DRV_ALLOC_OBJ(p, PROCESS_MAGIC);
    p->ticks = sysconf(_SC_CLK_TCK);
    p->page = sysconf(_SC_PAGESIZE);
#define ONE(field, name, help, type)                                     \
    p->field = drv_metrics_series_add(                                   \
        drv_metrics_family_add(m, name, help, type, NULL, NULL, 0), NULL)
    ONE(cpu, "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        DRV_METRICS_COUNTER);
    ONE(rss, "process_resident_memory_bytes", "Resident memory size in bytes.",
        DRV_METRICS_GAUGE);
    ONE(vsize, "process_virtual_memory_bytes",
        "Virtual memory size in bytes.", DRV_METRICS_GAUGE);
    ONE(fds, "process_open_fds", "Number of open file descriptors.",
        DRV_METRICS_GAUGE);
    ONE(max_fds, "process_max_fds",
        "Maximum number of open file descriptors.", DRV_METRICS_GAUGE);
    ONE(start, "process_start_time_seconds",
        "Start time of the process since unix epoch in seconds.",
        DRV_METRICS_GAUGE);
#undef ONE
    /* starttime is field 22: out[19] */
    if (read_stat(st, 22) >= 20 && p->ticks > 0)
        drv_metrics_set(p->start, (double)boot_time() +
                                      (double)st[19] / (double)p->ticks);
    drv_metrics_process_update(p);
    return p;
}

void
drv_metrics_process_update(struct drv_metrics_process *p)
{
    unsigned long long st[22];
    struct rlimit rl;
    struct dirent *de;
    DIR *d;
    int n = 0;

    DRV_CHECK_OBJ(p, PROCESS_MAGIC);
    /* utime 14, stime 15, vsize 23, rss 24: out[11], out[12], out[20],
     * out[21] */
    if (read_stat(st, 22) >= 22 && p->ticks > 0) {
        drv_metrics_set(p->cpu, (double)(st[11] + st[12]) /
                                    (double)p->ticks);
        drv_metrics_set(p->vsize, (double)st[20]);
        drv_metrics_set(p->rss, (double)st[21] * (double)p->page);
    }
    d = opendir("/proc/self/fd");
    if (d != NULL) {
        while ((de = readdir(d)) != NULL)
            if (de->d_name[0] != '.')
                n++;
        closedir(d);
        drv_metrics_set(p->fds, (double)(n - 1)); /* minus the dir's own */
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        drv_metrics_set(p->max_fds, rl.rlim_cur == RLIM_INFINITY
                                        ? -1.0 : (double)rl.rlim_cur);
}

void
drv_metrics_process_free(struct drv_metrics_process *p)
{
    if (DRV_NO_OBJ(p, PROCESS_MAGIC))
        return;
    DRV_FREE_OBJ(p);
}
