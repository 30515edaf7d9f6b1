/*
 * proc_helper.c -- a child for tests/unit/test_proc.c: `proc_helper MODE
 * ARGS...`. Plain libc, no drover code, so it behaves the same in every
 * build variant.
 *
 *   exit N            exit with status N
 *   signal N          die of signal N
 *   cat               copy stdin to stdout until EOF
 *   argv ARGS...      print each ARG followed by a NUL byte
 *   write N           write N bytes to stdout, byte i = 'a' + i % 26
 *   stderr N          write N bytes to stderr, byte i = 'A' + i % 23
 *   env               print each environment entry and a newline
 *   cwd               print the working directory
 *   sleep MS          sleep MS milliseconds, exit 0
 *   term-ignore READY on SIGTERM write "TERM\n" to stdout and go on; create
 *                     file READY once the handler is in place; wait forever
 *   grandchild READY  fork a grandchild that ignores SIGTERM; print its pid;
 *                     create READY; both wait forever
 *   bg-holder         fork a grandchild holding stdout/stderr until the
 *                     reader closes them (at most 100 s); print its pid;
 *                     exit 0 at once
 *   escape-holder     same, but the grandchild leaves the process group
 *                     (setsid) first and waits at most 60 s
 *   close-stdout MS   close stdout and stderr, sleep MS, exit 7
 *   pgid              print "PID PGID"
 *   pdeathsig         print the parent-death signal (PR_GET_PDEATHSIG)
 *   sigstate          per signal NAME=<D|I|H><0|1>: disposition default,
 *                     ignored or handled, and blocked or not
 *   fds               print the open fd numbers, one a line
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static void
write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    ssize_t w;

    while (n > 0) {
        w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            exit(98);
        p += w;
        n -= (size_t)w;
    }
}

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static void
touch(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    if (fd < 0)
        exit(97);
    close(fd);
}

/* Wait to be killed. Not pause(): under ThreadSanitizer a signal that
 * arrives inside a call TSan does not treat as blocking waits for the
 * next intercepted call before its handler runs, so a SIGTERM handler
 * could stay pending forever; a short sleep loop bounds that to 100 ms. */
static void
forever(void)
{
    for (;;)
        sleep_ms(100);
}

static void
on_term(int sig)
{
    (void)sig;
    write_all(1, "TERM\n", 5);
}

static void
pattern(int fd, long n, char base, int mod)
{
    char buf[65536];
    long i = 0, k;

    while (i < n) {
        for (k = 0; k < (long)sizeof buf && i + k < n; k++)
            buf[k] = (char)(base + (i + k) % mod);
        write_all(fd, buf, (size_t)k);
        i += k;
    }
}

static void
print_pid(pid_t pid)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)pid);

    write_all(1, buf, (size_t)n);
}

static void
sigstate(void)
{
    static const struct {
        int sig;
        const char *name;
    } sigs[] = {{SIGPIPE, "PIPE"}, {SIGTERM, "TERM"}, {SIGINT, "INT"},
                {SIGHUP, "HUP"},   {SIGCHLD, "CHLD"}, {SIGUSR1, "USR1"},
                {SIGUSR2, "USR2"}, {SIGQUIT, "QUIT"}, {SIGALRM, "ALRM"}};
    struct sigaction sa;
    sigset_t mask;
    size_t i;
    char d;

    sigprocmask(SIG_SETMASK, NULL, &mask);
    for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        sigaction(sigs[i].sig, NULL, &sa);
        d = sa.sa_handler == SIG_DFL ? 'D' : sa.sa_handler == SIG_IGN ? 'I'
                                                                      : 'H';
        printf("%s=%c%d\n", sigs[i].name, d,
               sigismember(&mask, sigs[i].sig));
    }
}

static void
fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;

    if (d == NULL)
        exit(96);
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
            continue;
        printf("%s\n", e->d_name);
    }
    closedir(d);
}

/* Fork a grandchild that keeps stdout/stderr open until their reader
 * closes them, at most ms; with escape it first leaves the process group
 * (setsid). Returns once it is set. */
static pid_t
fork_holder(int escape, long ms)
{
    struct pollfd pf;
    int sync[2];
    char c;
    pid_t pid;

    if (pipe(sync) < 0)
        exit(95);
    pid = fork();
    if (pid < 0)
        exit(95);
    if (pid == 0) {
        close(sync[0]);
        if (escape)
            setsid();
        write_all(sync[1], "x", 1);
        close(sync[1]);
        /* until the reader of stdout is gone (POLLERR) or ms passed */
        pf.fd = 1;
        pf.events = 0;
        while (poll(&pf, 1, (int)ms) < 0 && errno == EINTR)
            ;
        _exit(0);
    }
    close(sync[1]);
    while (read(sync[0], &c, 1) < 0 && errno == EINTR)
        ;
    close(sync[0]);
    return pid;
}

int
main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    const char *arg = argc > 2 ? argv[2] : "0";
    char buf[65536], cwd[4096];
    ssize_t n;
    pid_t pid;
    int i;

    if (strcmp(mode, "exit") == 0)
        return atoi(arg);
    if (strcmp(mode, "signal") == 0) {
        signal(atoi(arg), SIG_DFL);
        raise(atoi(arg));
        return 99;
    }
    if (strcmp(mode, "cat") == 0) {
        while ((n = read(0, buf, sizeof buf)) != 0) {
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return 94;
            write_all(1, buf, (size_t)n);
        }
        return 0;
    }
    if (strcmp(mode, "argv") == 0) {
        for (i = 2; i < argc; i++)
            write_all(1, argv[i], strlen(argv[i]) + 1);
        return 0;
    }
    if (strcmp(mode, "write") == 0) {
        pattern(1, atol(arg), 'a', 26);
        return 0;
    }
    if (strcmp(mode, "stderr") == 0) {
        pattern(2, atol(arg), 'A', 23);
        return 0;
    }
    if (strcmp(mode, "env") == 0) {
        for (i = 0; environ[i] != NULL; i++)
            printf("%s\n", environ[i]);
        return 0;
    }
    if (strcmp(mode, "cwd") == 0) {
        if (getcwd(cwd, sizeof cwd) == NULL)
            return 93;
        printf("%s", cwd);
        return 0;
    }
    if (strcmp(mode, "sleep") == 0) {
        sleep_ms(atol(arg));
        return 0;
    }
    if (strcmp(mode, "term-ignore") == 0) {
        struct sigaction sa;

        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_term;
        sigaction(SIGTERM, &sa, NULL);
        touch(arg);
        forever();
    }
    if (strcmp(mode, "grandchild") == 0) {
        /* ignore before the fork so the grandchild never has a window */
        signal(SIGTERM, SIG_IGN);
        pid = fork();
        if (pid < 0)
            return 95;
        if (pid == 0)
            forever();
        signal(SIGTERM, SIG_DFL);
        print_pid(pid);
        touch(arg);
        forever();
    }
    if (strcmp(mode, "bg-holder") == 0) {
        print_pid(fork_holder(0, 100000));
        return 0;
    }
    if (strcmp(mode, "escape-holder") == 0) {
        print_pid(fork_holder(1, 60000));
        return 0;
    }
    if (strcmp(mode, "close-stdout") == 0) {
        close(1);
        close(2);
        sleep_ms(atol(arg));
        return 7;
    }
    if (strcmp(mode, "pgid") == 0) {
        printf("%ld %ld", (long)getpid(), (long)getpgid(0));
        return 0;
    }
    if (strcmp(mode, "pdeathsig") == 0) {
        int sig = -1;

        if (prctl(PR_GET_PDEATHSIG, &sig) < 0)
            return 1;
        printf("%d", sig);
        return 0;
    }
    if (strcmp(mode, "sigstate") == 0) {
        sigstate();
        return 0;
    }
    if (strcmp(mode, "fds") == 0) {
        fds();
        return 0;
    }
    fprintf(stderr, "proc_helper: unknown mode '%s'\n", mode);
    return 2;
}
