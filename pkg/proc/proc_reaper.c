/*
 * proc_reaper.c -- the reaper: kills the children's process groups when
 * the worker dies.
 *
 * DESIGN
 * PR_SET_PDEATHSIG (proc_child.c) kills a direct child when the worker
 * dies, but not what that child started: `sh -c 'sleep 1000 & ...'`
 * leaves its grandchildren running. A kill -9 of the worker runs no code
 * of it, so another process must do the group kill: the reaper, forked by
 * drv_proc_reaper_start early in droverd's start (before any thread
 * exists, so the copy is small and holds no lock).
 *
 *   worker ---- pipe (write end: the worker only, close-on-exec) ----> reaper
 *   child (between clone and exec): "started PGID"
 *   worker (group leader exited, not yet reaped): "ended PGID"
 *   worker (clean exit): "quit", then close
 *
 * The reaper keeps the live pgids in a bitmap (one bit per possible pid,
 * pid_max <= 2^22: 512 KiB of address space, pages touched only where
 * bits are set). At EOF -- the worker is gone, however it died -- it
 * sends SIGKILL to every pgid still listed and exits. Records are 8
 * bytes, written whole (below PIPE_BUF: never interleaved), in the order
 * things happened, so an "ended" never precedes its "started" and a reused
 * pgid number is listed again only after its predecessor left the list.
 *
 * The child registers itself before its exec, so no process of a job can
 * run unlisted; the worker removes a group while its leader is an
 * unreaped zombie, so the number it removes is still that group's.
 *
 * The reaper must outlive the worker by the time of its duty: it runs in
 * its own process group (a signal to the worker's group, a Ctrl-C, a kill
 * -9 of the group, do not reach it), ignores SIGTERM, SIGINT, SIGHUP and
 * SIGQUIT, and exits only at EOF or on "quit". Its own PR_SET_PDEATHSIG
 * is SIGUSR1, a handler that only interrupts its read: should the pipe's
 * write end ever leak into a process that outlives the worker (a plugin
 * that forks without exec), the reaper still sees its parent change and
 * does its work. Under systemd (KillMode=mixed or process) it gets no
 * SIGTERM; with control-group it ignores the SIGTERM and exits on EOF.
 *
 * Not covered: a process that left the group (setsid, setpgid) -- only a
 * cgroup can follow it; and a reaper killed by SIGKILL itself (the worker
 * logs that once; the direct children still die by PR_SET_PDEATHSIG).
 *
 * Process-wide state: start and stop from the main thread while no
 * manager spawns; the record writes run on the loop thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "drover/common.h"
#include "drover/log.h"
#include "drover/proc.h"
#include "proc_int.h"

#define PID_SPACE (1u << 22)       /* PID_MAX_LIMIT on 64-bit Linux */
#define PDEATH_SIG SIGUSR1         /* the reaper's parent-death signal */
#define PAUSE_NS 20000000L         /* after a read: let records pile up */

static int reaper_wfd = -1;        /* write end; -1: no reaper */
static pid_t reaper_pid = -1;      /* the reaper, until reaped */

/* ------------------------------------------------------- the reaper */

struct reaper {
    uint64_t *bits;                /* owned (mmap): live pgids */
    long groups;                   /* bits set */
    int quit;                      /* the worker said quit */
};

static void
on_pdeath(int sig)
{
    (void)sig; /* only interrupts read(2) */
}

static void
apply(struct reaper *r, uint32_t op, uint32_t pgid)
{
    uint64_t bit;
    uint64_t *w;

    if (op == DRV__REAPER_QUIT) {
        r->quit = 1;
        return;
    }
    if (pgid == 0 || pgid >= PID_SPACE)
        return;
    w = &r->bits[pgid / 64];
    bit = (uint64_t)1 << (pgid % 64);
    if (op == DRV__REAPER_STARTED && !(*w & bit)) {
        *w |= bit;
        r->groups++;
    } else if (op == DRV__REAPER_ENDED && (*w & bit)) {
        *w &= ~bit;
        r->groups--;
    }
}

/* Read records until EOF, quit, or the worker is gone (then what is
 * already in the pipe is still read). */
static void
listen_pipe(struct reaper *r, int fd, pid_t owner)
{
    uint32_t buf[1024];
    size_t have = 0, i, whole;
    ssize_t n;
    int gone = getppid() != owner, full;

    while (!r->quit) {
        if (gone)
            (void)fcntl(fd, F_SETFL, O_NONBLOCK);
        n = read(fd, (char *)buf + have, sizeof buf - have);
        if (n == 0 || (n < 0 && errno != EINTR))
            return; /* EOF; EAGAIN once gone; or a broken pipe */
        if (n < 0) {
            gone = getppid() != owner;
            continue;
        }
        full = (size_t)n == sizeof buf - have; /* more may be waiting */
        have += (size_t)n;
        whole = have / (2 * sizeof buf[0]);
        for (i = 0; i < whole && !r->quit; i++)
            apply(r, buf[2 * i], buf[2 * i + 1]);
        have -= whole * 2 * sizeof buf[0];
        memmove(buf, buf + 2 * whole, have);
        /* The list is only needed once the worker is gone: pause, so
         * that one read takes the records of many children instead of
         * this process waking twice per child. The pipe holds 8,192
         * records (400,000 a second at this pause); the parent-death
         * signal cuts the pause short, and a clean stop waits for it. */
        if (!gone && !r->quit && !full) {
            struct timespec pause = {0, PAUSE_NS};

            if (nanosleep(&pause, NULL) < 0)
                gone = getppid() != owner;
        }
    }
}

__attribute__((noreturn)) static void
reaper_main(int fd, pid_t owner)
{
    struct reaper r;
    struct sigaction sa;
    sigset_t none;
    long killed = 0;
    uint32_t pgid;
    int sig, nul;
    const int ignored[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE,
                           SIGTSTP, SIGTTIN, SIGTTOU, SIGUSR2};
    size_t i;

    memset(&r, 0, sizeof r);
    (void)setpgid(0, 0);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    for (sig = 1; sig < NSIG; sig++)
        (void)sigaction(sig, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    for (i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
        (void)sigaction(ignored[i], &sa, NULL);
    sa.sa_handler = on_pdeath; /* no SA_RESTART: read returns EINTR */
    (void)sigaction(PDEATH_SIG, &sa, NULL);
    DRV_AZ(sigemptyset(&none));
    (void)sigprocmask(SIG_SETMASK, &none, NULL);
    (void)prctl(PR_SET_PDEATHSIG, PDEATH_SIG, 0, 0, 0);
    /* named last: the name says the signals above are set (a test waits
     * for it before it reads them) */
    (void)prctl(PR_SET_NAME, "drover-reaper", 0, 0, 0);

    /* Nothing of the worker's but stderr (for the log line) and the
     * pipe: fd 3. */
    nul = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (nul >= 0) {
        (void)dup2(nul, 0);
        (void)dup2(nul, 1);
    }
    if (fd != 3) {
        (void)dup2(fd, 3);
        fd = 3;
    }
    if (syscall(SYS_close_range, 4, ~0U, 0) < 0)
        for (sig = 4; sig < 1024; sig++)
            (void)close(sig);

    r.bits = mmap(NULL, PID_SPACE / 8, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (r.bits == MAP_FAILED)
        _exit(1);
    listen_pipe(&r, fd, owner);
    for (pgid = 1; pgid < PID_SPACE; pgid++) {
        if (r.bits[pgid / 64] == 0) {
            pgid |= 63; /* skip the empty word */
            continue;
        }
        if ((r.bits[pgid / 64] >> (pgid % 64)) & 1)
            killed += kill(-(pid_t)pgid, SIGKILL) == 0;
    }
    if (!r.quit)
        DRV_LOG_WARN("worker gone: killed the process groups of its "
                     "children", "worker_pid=%ld groups=%ld killed=%ld",
                     (long)owner, r.groups, killed);
    else if (r.groups > 0)
        DRV_LOG_WARN("worker exited with children left: killed their "
                     "process groups", "worker_pid=%ld groups=%ld "
                     "killed=%ld", (long)owner, r.groups, killed);
    _exit(0);
}

/* ------------------------------------------------------- the worker */

int
drv_proc_reaper_start(struct drv_err *err)
{
    int fds[2], i;
    pid_t owner = getpid(), pid;

    drv_err_clear(err);
    if (reaper_wfd >= 0)
        return 0;
    if (pipe2(fds, O_CLOEXEC) < 0)
        return drv_err_set(err, -errno, "reaper: pipe: %s",
                           drv_strerror(-errno));
    for (i = 0; i < 2; i++)
        fds[i] = drv__proc_above_stdio(fds[i]);
    if (fds[0] < 0 || fds[1] < 0) {
        if (fds[0] >= 0)
            close(fds[0]);
        if (fds[1] >= 0)
            close(fds[1]);
        return drv_err_set(err, -EMFILE, "reaper: out of fds");
    }
    pid = fork();
    if (pid < 0) {
        i = -errno;
        close(fds[0]);
        close(fds[1]);
        return drv_err_set(err, i, "reaper: fork: %s", drv_strerror(i));
    }
    if (pid == 0) {
        close(fds[1]);
        reaper_main(fds[0], owner);
    }
    close(fds[0]);
    reaper_wfd = fds[1];
    reaper_pid = pid;
    return 0;
}

/* Write one record; on failure the reaper is gone: say so once. */
static void
send_record(uint32_t op, pid_t pgid)
{
    uint32_t rec[2] = {op, (uint32_t)pgid};
    ssize_t n;
    int e;
    char qe[DRV_LOG_Q_MAX];

    if (reaper_wfd < 0)
        return;
    do {
        n = drv__proc_write_nosigpipe(reaper_wfd, rec, sizeof rec);
    } while (n < 0 && errno == EINTR);
    if (n == (ssize_t)sizeof rec)
        return;
    e = n < 0 ? errno : EIO;
    close(reaper_wfd);
    reaper_wfd = -1;
    if (op == DRV__REAPER_QUIT)
        return;
    DRV_LOG_ERROR("reaper gone: grandchildren of running jobs would outlive "
                  "a crash of this worker", "reaper_pid=%ld error=%s",
                  (long)reaper_pid, drv_log_q(qe, sizeof qe, strerror(e)));
    if (reaper_pid > 0 && waitpid(reaper_pid, NULL, WNOHANG) == reaper_pid)
        reaper_pid = -1;
}

void
drv_proc_reaper_stop(void)
{
    if (reaper_wfd >= 0) {
        send_record(DRV__REAPER_QUIT, 0);
        if (reaper_wfd >= 0)
            close(reaper_wfd);
        reaper_wfd = -1;
    }
    if (reaper_pid > 0)
        while (waitpid(reaper_pid, NULL, 0) < 0 && errno == EINTR)
            ;
    reaper_pid = -1;
}

pid_t
drv_proc_reaper_pid(void)
{
    return reaper_wfd >= 0 ? reaper_pid : -1;
}

int
drv__proc_reaper_fd(void)
{
    return reaper_wfd;
}

void
drv__proc_reaper_ended(pid_t pgid)
{
    send_record(DRV__REAPER_ENDED, pgid);
}
