/*
 * drv_burn.c -- an exec job of known cost, for the resource accounting
 * test: `drv_burn CPU_MS MB` spins until it has used CPU_MS of CPU (its
 * own user+system time, so a busy machine changes the wall time, not the
 * CPU), touches MB MiB of memory page by page (so they are resident),
 * prints "burned" and exits 0. Plain libc.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static long long
cpu_ms(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

int
main(int argc, char **argv)
{
    long long want, mb;
    volatile unsigned long spin = 0;
    volatile char *mem; /* volatile: the writes must happen */
    size_t i, n;

    if (argc != 3) {
        fprintf(stderr, "usage: drv_burn CPU_MS MB\n");
        return 2;
    }
    want = atoll(argv[1]);
    mb = atoll(argv[2]);
    n = (size_t)mb * 1024 * 1024;
    mem = malloc(n ? n : 1);
    if (mem == NULL)
        return 1;
    for (i = 0; i < n; i += 4096)
        mem[i] = (char)i;
    while (cpu_ms() < want)
        for (i = 0; i < 100000; i++)
            spin += i;
    printf("burned\n");
    free((char *)mem);
    return 0;
}
