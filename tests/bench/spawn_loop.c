/*
 * spawn_loop.c -- the cost of a child process, without drover.
 *
 *   spawn_loop N PROGRAM [ARG...]
 *
 * posix_spawn + waitpid, one after the other, N times. make bench compares
 * drover's exec handler (pipes, process group, pidfd, environment, Redis)
 * with this tight loop on the same machine in the same run.
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define BENCH_PROG "spawn_loop"
#include "bench.h"

extern char **environ;

int
main(int argc, char **argv)
{
    long n, i;

    if (argc < 3) {
        fprintf(stderr, "usage: spawn_loop N PROGRAM [ARG...]\n");
        return 2;
    }
    n = strtol(argv[1], NULL, 10);
    for (i = 0; i < n; i++) {
        pid_t pid;
        int st, rc;

        rc = posix_spawn(&pid, argv[2], NULL, NULL, argv + 2, environ);
        if (rc != 0)
            bench_die("%s: %s", argv[2], strerror(rc));
        if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
            WEXITSTATUS(st) != 0)
            bench_die("%s failed", argv[2]);
    }
    printf("%ld\n", n);
    return 0;
}
