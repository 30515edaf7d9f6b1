/*
 * proc.c -- child processes: spawn, pipes, pidfd exit watch, kill.
 *
 * DESIGN
 * One struct drv_proc per child, with its six libevent events embedded:
 * stdin writer, stdout and stderr readers (all on non-blocking, O_CLOEXEC
 * parent ends of pipes), the exit watch, the kill timer (first the
 * deadline, then the SIGTERM -> SIGKILL grace) and the drain timer.
 *
 * Exit detection: a pidfd per child (pidfd_open, Linux >= 5.3), readable
 * once the child is a zombie. No SIGCHLD handler (libevent delivers
 * signals to one base only, and a registered signal would keep the loop
 * alive forever) and never waitpid(-1), which would steal other modules'
 * children. If pidfd_open is refused (old kernel, seccomp, out of fds) a
 * per-child timer polls waitid(WNOHANG) at 1 ms doubling to 50 ms.
 *
 * Invariant: a process group is signalled only while its leader is not
 * yet reaped. The zombie pins the pid and so the pgid; once reaped, the
 * number may be reused by a new group (even one of ours). Hence on exit:
 * waitid(WNOWAIT) sees it, SIGKILL goes to whatever is left in the group,
 * the group is taken off the reaper's list, and only then wait4 reaps it
 * (with rusage).
 *
 * Dying with the worker: the child itself is started by proc_child.c
 * (PR_SET_PDEATHSIG, chosen there over posix_spawn, which cannot set it)
 * and its group listed with the reaper of proc_reaper.c, which kills the
 * groups still listed when the worker dies. Their DESIGN comments say why
 * both are needed and what neither covers.
 *
 * States: RUNNING -> EXITED (reaped, pipes draining, drain timer armed)
 * -> DONE (events deleted, fds closed, callback run). The callback runs
 * once, from finish(), under in_callback; drv_proc_free inside it only
 * marks freeing. A proc freed before DONE is "detached": no callback, the
 * group is SIGKILLed and finish() releases it. The manager links every
 * proc not yet DONE, so drv_proc_mgr_free can SIGKILL, reap and complete
 * them all with -ECANCELED.
 *
 * SIGPIPE: a stdin write to a child that closed its stdin must not kill
 * the worker, and the library must not change process-wide dispositions,
 * so the write runs with SIGPIPE blocked in this thread and a SIGPIPE it
 * raised is consumed with sigtimedwait before unblocking.
 *
 * Loop thread only; no locks.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/loop.h"
#include "drover/proc.h"
#include "proc_int.h"

#define READ_BUDGET 16          /* reads per wakeup: fairness between pipes */
#define SCRATCH_SIZE 65536      /* one pipe's worth: dropped or ring bytes */
#define OUT_CAP_FIRST 16384     /* first stdout buffer */
#define POLL_FIRST_US 1000      /* fallback exit poll: first interval */
#define POLL_MAX_US 50000       /* fallback exit poll: longest interval */

enum proc_state {
    ST_RUNNING,                 /* child alive (or exited, not yet seen) */
    ST_EXITED,                  /* reaped; waiting for pipe EOF or drain */
    ST_DONE                     /* completed: callback ran or is running */
};

enum kill_phase {
    KILL_NONE,                  /* not asked; kill_ev is the deadline */
    KILL_TERM,                  /* SIGTERM sent; kill_ev is the grace */
    KILL_KILL                   /* SIGKILL sent */
};

struct drv_proc {
    unsigned magic;
#define DRV_PROC_MAGIC 0x9c0c5e11U
    struct drv_proc_mgr *mgr;   /* borrowed: NULL once DONE */
    LIST_ENTRY(drv_proc) link;  /* on mgr->procs while not DONE */
    enum proc_state state;      /* see DESIGN */
    enum kill_phase kill_phase; /* see enum */
    pid_t pid;                  /* child pid = its pgid */
    int pidfd;                  /* owned: exit watch; -1 if polling/closed */
    int in_fd;                  /* owned: stdin write end; -1 closed */
    int out_fd;                 /* owned: stdout read end; -1 closed */
    int err_fd;                 /* owned: stderr read end; -1 closed */
    struct event in_ev;         /* EV_WRITE|EV_PERSIST on in_fd */
    struct event out_ev;        /* EV_READ|EV_PERSIST on out_fd */
    struct event err_ev;        /* EV_READ|EV_PERSIST on err_fd */
    struct event exit_ev;       /* pidfd EV_READ, or the poll timer */
    struct event kill_ev;       /* deadline, then the kill grace */
    struct event drain_ev;      /* after the exit: stop waiting for EOF */
    drv_proc_done_fn *cb;       /* completion; NULL once detached */
    void *ctx;                  /* borrowed: the caller's */
    char *in_buf;               /* owned: copy of the stdin bytes */
    size_t in_len;              /* bytes at in_buf */
    size_t in_off;              /* bytes written so far */
    int in_code;                /* 0 or -errno that cut stdin short */
    char *out_buf;              /* owned: stdout kept, out_cap + 1 bytes */
    size_t out_len;             /* bytes kept */
    size_t out_cap;             /* usable size of out_buf */
    size_t out_max;             /* most bytes kept */
    int out_truncated;          /* bytes past out_max were dropped */
    uint64_t err_total;         /* stderr bytes seen; ring position */
    char err_ring[DRV_PROC_ERR_TAIL]; /* byte g of stderr at g % size */
    int64_t kill_grace_ms;      /* SIGTERM -> SIGKILL; < 0: SIGKILL only */
    int64_t drain_ms;           /* EOF wait after the exit */
    int64_t spawn_ns;           /* monotonic spawn time */
    int64_t exit_ns;            /* monotonic time the exit was seen */
    int64_t poll_us;            /* fallback poll interval */
    int killed;                 /* we signalled it before its exit */
    int timed_out;              /* the deadline fired */
    int status_lost;            /* reaped by someone else (ECHILD) */
    int wstatus;                /* wait4 status */
    struct rusage ru;           /* wait4 rusage */
    unsigned in_callback : 1;   /* inside cb: drv_proc_free defers */
    unsigned freeing : 1;       /* drv_proc_free was called inside cb */
    unsigned auto_free : 1;     /* no handle given: free after cb */
    unsigned detached : 1;      /* freed before DONE: no cb, self-release */
};

struct drv_proc_mgr {
    unsigned magic;
#define DRV_PROC_MGR_MAGIC 0x9c0c3a61U
    struct drv_loop *loop;      /* borrowed: outlives the manager */
    struct event_base *base;    /* borrowed: the loop's */
    LIST_HEAD(, drv_proc) procs; /* borrowed: procs not DONE (the caller
                                   or, when detached/auto, the proc owns
                                   it); calloc'd empty */
    size_t live;                /* length of the list */
    void *stack;                /* owned: the stack children run on
                                   until their exec (NULL: mmap failed,
                                   retried at the next spawn) */
    int no_pidfd;               /* pidfd_open refused for good: poll */
    int closing;                /* drv_proc_mgr_free is running */
};

int (*drv__proc_pidfd_open)(pid_t pid) = drv__proc_pidfd_open_sys;

static void finish(struct drv_proc *p, int code);

/* --------------------------------------------------------------- helpers */

int
drv__proc_pidfd_open_sys(pid_t pid DRV_UNUSED)
{
#ifdef SYS_pidfd_open
    long fd = syscall(SYS_pidfd_open, pid, 0);

    return fd < 0 ? -errno : (int)fd;
#else
    return -ENOSYS;
#endif
}

static void
close_fd(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* Move a child-side pipe end off 0/1/2 (possible when the worker runs with
 * a closed stdio), so dup2 onto 0/1/2 never meets itself and keeps the
 * close-on-exec flag. Returns the fd or -errno (fd closed). */
int
drv__proc_above_stdio(int fd)
{
    int nfd;

    if (fd > 2)
        return fd;
    nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (nfd < 0)
        nfd = -errno;
    close(fd);
    return nfd;
}

/* A pipe end made by make_pipe has no other status flag to keep (its
 * access mode is not changed by F_SETFL): one call, no F_GETFL. */
static int
set_nonblock(int fd)
{
    if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

/* Send sig to the child's group. Only while the leader is unreaped (see
 * DESIGN). If the leader left its group (setpgid) and the group is empty,
 * signal the leader alone. */
static void
signal_group(struct drv_proc *p, int sig)
{
    DRV_ASSERT(p->state == ST_RUNNING);
    if (kill(-p->pid, sig) < 0 && errno == ESRCH)
        (void)kill(p->pid, sig);
}

static void
arm_timer(struct event *ev, int64_t ms)
{
    struct timeval tv = drv_clock_tv_from_ns(ms * DRV_NS_PER_MS);

    DRV_AZ(event_add(ev, &tv));
}

static void
mgr_link(struct drv_proc_mgr *mgr, struct drv_proc *p)
{
    p->mgr = mgr;
    LIST_INSERT_HEAD(&mgr->procs, p, link);
    mgr->live++;
}

static void
mgr_unlink(struct drv_proc *p)
{
    struct drv_proc_mgr *mgr = p->mgr;

    if (mgr == NULL)
        return;
    LIST_REMOVE(p, link);
    mgr->live--;
    p->mgr = NULL;
}

static void
destroy(struct drv_proc *p)
{
    DRV_ASSERT(p->state == ST_DONE);
    free(p->in_buf);
    free(p->out_buf);
    DRV_FREE_OBJ(p);
}

/* ----------------------------------------------------------------- pipes */

/* Stop watching a parent end of a pipe and close it, once. */
static void
close_watched(struct event *ev, int *fd)
{
    if (*fd < 0)
        return;
    DRV_AZ(event_del(ev));
    close_fd(fd);
}

static void
close_in(struct drv_proc *p)
{
    if (p->in_fd < 0)
        return;
    close_watched(&p->in_ev, &p->in_fd);
    if (p->in_off < p->in_len && p->in_code == 0)
        p->in_code = -EPIPE;
    free(p->in_buf);
    p->in_buf = NULL;
}

/* Complete if the exit is seen and both output pipes are done. Returns 1
 * when it did (p may be gone). */
static int
maybe_done(struct drv_proc *p)
{
    if (p->state != ST_EXITED || p->out_fd >= 0 || p->err_fd >= 0)
        return 0;
    finish(p, 0);
    return 1;
}

/* write(2) that cannot raise SIGPIPE in the worker (see DESIGN). */
ssize_t
drv__proc_write_nosigpipe(int fd, const void *buf, size_t n)
{
    sigset_t pipe_set, old, pending;
    struct timespec zero = {0, 0};
    ssize_t w;
    int saved;

    DRV_AZ(sigemptyset(&pipe_set));
    DRV_AZ(sigaddset(&pipe_set, SIGPIPE));
    DRV_AZ(pthread_sigmask(SIG_BLOCK, &pipe_set, &old));
    w = write(fd, buf, n);
    saved = errno;
    if (w < 0 && saved == EPIPE && !sigismember(&old, SIGPIPE) &&
        sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE))
        (void)sigtimedwait(&pipe_set, NULL, &zero);
    DRV_AZ(pthread_sigmask(SIG_SETMASK, &old, NULL));
    errno = saved;
    return w;
}

static void
on_in(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv_proc *p;
    ssize_t n;

    DRV_CAST(p, arg, DRV_PROC_MAGIC);
    while (p->in_off < p->in_len) {
        n = drv__proc_write_nosigpipe(p->in_fd, p->in_buf + p->in_off,
                            p->in_len - p->in_off);
        if (n > 0) {
            p->in_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        /* EPIPE: the child closed its stdin; that is its right. */
        p->in_code = n < 0 ? -errno : -EIO;
        break;
    }
    close_in(p);
}

static void
out_reserve(struct drv_proc *p)
{
    size_t ncap;

    if (p->out_len < p->out_cap)
        return;
    if (p->out_cap == 0)
        ncap = OUT_CAP_FIRST;
    else if (p->out_cap > p->out_max / 2)
        ncap = p->out_max;
    else
        ncap = p->out_cap * 2;
    if (ncap > p->out_max)
        ncap = p->out_max;
    p->out_buf = drv_xrealloc(p->out_buf, ncap + 1);
    p->out_cap = ncap;
}

/* Read stdout until EAGAIN, EOF or budget; closes the pipe at EOF. */
static void
read_out(struct drv_proc *p, int budget)
{
    char scratch[SCRATCH_SIZE];
    ssize_t n;

    while (p->out_fd >= 0 && budget-- > 0) {
        if (p->out_len < p->out_max) {
            out_reserve(p);
            n = drv_read_nb(p->out_fd, p->out_buf + p->out_len,
                            p->out_cap - p->out_len);
            if (n > 0)
                p->out_len += (size_t)n;
        } else {
            /* over the cap: drain so the child never blocks on us */
            n = drv_read_nb(p->out_fd, scratch, sizeof scratch);
            if (n > 0)
                p->out_truncated = 1;
        }
        if (n > 0)
            continue;
        if (n == -EAGAIN)
            return;
        /* EOF, or an error that ends the stream alike */
        close_watched(&p->out_ev, &p->out_fd);
    }
}

static void
err_append(struct drv_proc *p, const char *b, size_t n)
{
    size_t pos, k;

    if (n > DRV_PROC_ERR_TAIL) {
        p->err_total += n - DRV_PROC_ERR_TAIL;
        b += n - DRV_PROC_ERR_TAIL;
        n = DRV_PROC_ERR_TAIL;
    }
    while (n > 0) {
        pos = (size_t)(p->err_total % DRV_PROC_ERR_TAIL);
        k = DRV_PROC_ERR_TAIL - pos;
        if (k > n)
            k = n;
        memcpy(p->err_ring + pos, b, k);
        b += k;
        n -= k;
        p->err_total += k;
    }
}

static void
read_err(struct drv_proc *p, int budget)
{
    char scratch[SCRATCH_SIZE];
    ssize_t n;

    while (p->err_fd >= 0 && budget-- > 0) {
        n = drv_read_nb(p->err_fd, scratch, sizeof scratch);
        if (n > 0)
            err_append(p, scratch, (size_t)n);
        else if (n == -EAGAIN)
            return;
        else /* EOF, or an error that ends the stream alike */
            close_watched(&p->err_ev, &p->err_fd);
    }
}

/* stdout or stderr is readable (its event is deleted when it closes, so
 * fd is still the open one). */
static void
on_output(evutil_socket_t fd, short what DRV_UNUSED, void *arg)
{
    struct drv_proc *p;

    DRV_CAST(p, arg, DRV_PROC_MAGIC);
    if (fd == p->out_fd)
        read_out(p, READ_BUDGET);
    else
        read_err(p, READ_BUDGET);
    (void)maybe_done(p); /* p may be gone: nothing after this */
}

/* ------------------------------------------------------------------ exit */

/*
 * See whether the child has exited and, if so, kill what is left of its
 * group and reap it. block waits (teardown, after SIGKILL). Returns 1 when
 * the child is reaped (or lost), 0 while it runs.
 */
static int
reap(struct drv_proc *p, int block)
{
    siginfo_t si;
    int rc;

    memset(&si, 0, sizeof si);
    do {
        rc = waitid(P_PID, (id_t)p->pid, &si,
                    WEXITED | WNOWAIT | (block ? 0 : WNOHANG));
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        /* ECHILD: reaped behind our back; the pgid may be reused now,
         * so it must not be signalled any more, by us or the reaper. */
        p->status_lost = 1;
        drv__proc_reaper_ended(p->pid);
        return 1;
    }
    if (si.si_pid == 0)
        return 0;
    /* The zombie still pins the pgid: clear out the rest of the job, and
     * drop it from the reaper's list while the number is still ours. */
    signal_group(p, SIGKILL);
    drv__proc_reaper_ended(p->pid);
    do {
        rc = wait4(p->pid, &p->wstatus, 0, &p->ru);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0)
        p->status_lost = 1;
    return 1;
}

/* The child is reaped: stop the timers, wait for EOF at most drain_ms. */
static void
after_exit(struct drv_proc *p)
{
    p->state = ST_EXITED;
    p->exit_ns = drv_clock_mono_ns();
    DRV_AZ(event_del(&p->exit_ev));
    close_fd(&p->pidfd);
    DRV_AZ(event_del(&p->kill_ev));
    /* Its stdin reader is gone; nothing else of the job may read it. */
    close_in(p);
    if (p->detached) {
        close_watched(&p->out_ev, &p->out_fd);
        close_watched(&p->err_ev, &p->err_fd);
    }
    /* Usually the pipes are at EOF already (the child closed them when it
     * exited): read them now rather than arm the drain timer and come
     * back for their events. */
    read_out(p, READ_BUDGET);
    read_err(p, READ_BUDGET);
    if (maybe_done(p))
        return;
    arm_timer(&p->drain_ev, p->drain_ms);
}

static void
on_exit_ready(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv_proc *p;
    struct timeval tv;

    DRV_CAST(p, arg, DRV_PROC_MAGIC);
    DRV_ASSERT(p->state == ST_RUNNING);
    if (reap(p, 0)) {
        after_exit(p); /* p may be gone: nothing after this */
        return;
    }
    if (p->pidfd >= 0) {
        /* spurious wakeup: watch the pidfd again */
        DRV_AZ(event_add(&p->exit_ev, NULL));
        return;
    }
    p->poll_us *= 2;
    if (p->poll_us > POLL_MAX_US)
        p->poll_us = POLL_MAX_US;
    tv.tv_sec = 0;
    tv.tv_usec = (suseconds_t)p->poll_us;
    DRV_AZ(event_add(&p->exit_ev, &tv));
}

static void
on_drain(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv_proc *p;

    DRV_CAST(p, arg, DRV_PROC_MAGIC);
    DRV_ASSERT(p->state == ST_EXITED);
    /* Whatever is already in the pipes is kept; the writers that still
     * hold them open left the job's group. */
    read_out(p, READ_BUDGET);
    read_err(p, READ_BUDGET);
    close_watched(&p->out_ev, &p->out_fd);
    close_watched(&p->err_ev, &p->err_fd);
    finish(p, 0);
}

/* Watch for the exit: pidfd if the kernel gives one, else a poll timer. */
static void
watch_exit(struct drv_proc_mgr *mgr, struct drv_proc *p)
{
    struct timeval tv;
    int fd = -ENOSYS;

    if (!mgr->no_pidfd)
        fd = drv__proc_pidfd_open(p->pid);
    if (fd >= 0) {
        p->pidfd = fd;
        DRV_AZ(event_assign(&p->exit_ev, mgr->base, fd, EV_READ,
                            on_exit_ready, p));
        if (event_add(&p->exit_ev, NULL) == 0)
            return;
        close_fd(&p->pidfd);
    } else if (fd == -ENOSYS || fd == -EPERM) {
        mgr->no_pidfd = 1; /* for good: do not ask on every spawn */
    }
    p->poll_us = POLL_FIRST_US;
    DRV_AZ(event_assign(&p->exit_ev, mgr->base, -1, 0, on_exit_ready, p));
    tv.tv_sec = 0;
    tv.tv_usec = (suseconds_t)p->poll_us;
    DRV_AZ(event_add(&p->exit_ev, &tv));
}

/* ------------------------------------------------------------------ kill */

static void
start_kill(struct drv_proc *p)
{
    p->killed = 1;
    if (p->kill_grace_ms < 0) {
        signal_group(p, SIGKILL);
        p->kill_phase = KILL_KILL;
        DRV_AZ(event_del(&p->kill_ev));
        return;
    }
    signal_group(p, SIGTERM);
    /* A stopped process acts on SIGTERM only once continued. */
    signal_group(p, SIGCONT);
    p->kill_phase = KILL_TERM;
    arm_timer(&p->kill_ev, p->kill_grace_ms);
}

static void
on_kill_timer(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv_proc *p;

    DRV_CAST(p, arg, DRV_PROC_MAGIC);
    DRV_ASSERT(p->state == ST_RUNNING);
    if (p->kill_phase == KILL_NONE) {
        p->timed_out = 1;
        start_kill(p);
    } else if (p->kill_phase == KILL_TERM) {
        signal_group(p, SIGKILL);
        p->kill_phase = KILL_KILL;
    }
}

/* ---------------------------------------------------------------- finish */

static int64_t
tv_ns(const struct timeval *tv)
{
    return (int64_t)tv->tv_sec * DRV_NS_PER_SEC +
           (int64_t)tv->tv_usec * 1000;
}

static void
fill_result(struct drv_proc *p, struct drv_proc_result *res, char *err_buf)
{
    size_t pos, k;

    memset(res, 0, sizeof *res);
    res->pid = p->pid;
    res->exit_code = -1;
    if (!p->status_lost && WIFEXITED(p->wstatus)) {
        res->exit_code = WEXITSTATUS(p->wstatus);
    } else if (!p->status_lost && WIFSIGNALED(p->wstatus)) {
        res->term_signal = WTERMSIG(p->wstatus);
        res->core_dumped = WCOREDUMP(p->wstatus) ? 1 : 0;
    }
    res->killed = p->killed;
    res->timed_out = p->timed_out;
    if (p->out_buf != NULL) {
        p->out_buf[p->out_len] = '\0';
        res->out = p->out_buf;
    } else {
        res->out = "";
    }
    res->out_len = p->out_len;
    res->out_truncated = p->out_truncated;
    /* Unroll the ring: oldest kept byte first. */
    if (p->err_total <= DRV_PROC_ERR_TAIL) {
        k = (size_t)p->err_total;
        memcpy(err_buf, p->err_ring, k);
    } else {
        pos = (size_t)(p->err_total % DRV_PROC_ERR_TAIL);
        memcpy(err_buf, p->err_ring + pos, DRV_PROC_ERR_TAIL - pos);
        memcpy(err_buf + DRV_PROC_ERR_TAIL - pos, p->err_ring, pos);
        k = DRV_PROC_ERR_TAIL;
    }
    err_buf[k] = '\0';
    res->err = err_buf;
    res->err_len = k;
    res->err_total = p->err_total;
    res->in_written = p->in_off;
    res->in_code = p->in_code;
    res->wall_ns = p->exit_ns - p->spawn_ns;
    res->user_cpu_ns = tv_ns(&p->ru.ru_utime);
    res->sys_cpu_ns = tv_ns(&p->ru.ru_stime);
    res->max_rss_kb = p->ru.ru_maxrss;
}

/* Close everything, leave the manager, run the callback once. */
static void
finish(struct drv_proc *p, int code)
{
    struct drv_proc_result res;
    char err_buf[DRV_PROC_ERR_TAIL + 1];

    DRV_ASSERT(p->state == ST_EXITED);
    close_in(p);
    close_watched(&p->out_ev, &p->out_fd);
    close_watched(&p->err_ev, &p->err_fd);
    DRV_AZ(event_del(&p->exit_ev));
    DRV_AZ(event_del(&p->kill_ev));
    DRV_AZ(event_del(&p->drain_ev));
    close_fd(&p->pidfd);
    p->state = ST_DONE;
    mgr_unlink(p);
    if (code == 0 && p->status_lost)
        code = -ECHILD;
    if (p->cb != NULL) {
        fill_result(p, &res, err_buf);
        p->in_callback = 1;
        p->cb(p, code, &res, p->ctx);
        p->in_callback = 0;
    }
    if (p->freeing || p->auto_free || p->detached)
        destroy(p);
}

/* Teardown of one proc: SIGKILL, blocking reap, last read, -ECANCELED. */
static void
force_finish(struct drv_proc *p)
{
    if (p->state == ST_RUNNING) {
        p->killed = 1;
        signal_group(p, SIGKILL);
        (void)reap(p, 1);
        p->state = ST_EXITED;
        p->exit_ns = drv_clock_mono_ns();
    }
    read_out(p, READ_BUDGET);
    read_err(p, READ_BUDGET);
    finish(p, -ECANCELED);
}

/* --------------------------------------------------------------- manager */

struct drv_proc_mgr *
drv_proc_mgr_create(struct drv_loop *loop)
{
    struct drv_proc_mgr *mgr = NULL;

    DRV_ALLOC_OBJ(mgr, DRV_PROC_MGR_MAGIC);
    mgr->loop = loop;
    mgr->base = drv_loop_base(loop);
    mgr->stack = drv__proc_child_stack_create(); /* NULL: retried later */
    return mgr;
}

void
drv_proc_mgr_free(struct drv_proc_mgr *mgr)
{
    struct drv_proc *p;

    if (DRV_NO_OBJ(mgr, DRV_PROC_MGR_MAGIC))
        return;
    DRV_ASSERT(!mgr->closing);
    mgr->closing = 1;
    /* finish() unlinks p; callbacks may free or detach others, which
     * stay linked until their turn here. */
    while ((p = LIST_FIRST(&mgr->procs)) != NULL)
        force_finish(p);
    DRV_ASSERT(mgr->live == 0);
    drv__proc_child_stack_free(mgr->stack);
    DRV_FREE_OBJ(mgr);
}

void
drv_proc_mgr_kill_all(struct drv_proc_mgr *mgr)
{
    struct drv_proc *p;

    DRV_CHECK_OBJ(mgr, DRV_PROC_MGR_MAGIC);
    LIST_FOREACH(p, &mgr->procs, link) {
        if (p->state == ST_RUNNING && p->kill_phase == KILL_NONE)
            start_kill(p);
    }
}

size_t
drv_proc_mgr_live(const struct drv_proc_mgr *mgr)
{
    DRV_CHECK_OBJ(mgr, DRV_PROC_MGR_MAGIC);
    return mgr->live;
}

/* ----------------------------------------------------------------- spawn */

/* Make one pipe: *parent gets the non-blocking parent end, *child the
 * child end (moved above stdio); both close-on-exec. */
static int
make_pipe(int *parent, int *child, int child_reads)
{
    int fds[2];
    int rc;

    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    *parent = child_reads ? fds[1] : fds[0];
    *child = child_reads ? fds[0] : fds[1];
    *child = drv__proc_above_stdio(*child);
    if (*child < 0) {
        rc = *child;
        close_fd(parent);
        return rc;
    }
    rc = set_nonblock(*parent);
    if (rc < 0) {
        close_fd(parent);
        close_fd(child);
    }
    return rc;
}

static int
spawn_error(struct drv_err *err, int code, const char *cmd)
{
    if (code == -ENOENT && strchr(cmd, '/') == NULL)
        return drv_err_set(err, code, "command not found: %.200s", cmd);
    return drv_err_set(err, code, "cannot run %.200s: %s", cmd,
                       drv_strerror(code));
}

/* Start the child (proc_child.c): 0 or -errno. A child whose exec
 * failed has exited; it is taken off the reaper's list and reaped here. */
static int
do_spawn(struct drv_proc_mgr *mgr, struct drv_proc *p,
         const struct drv_proc_opts *opts, const int child_fd[3])
{
    struct drv__proc_child c;
    char *const empty_env[] = {NULL};
    char **paths = NULL;
    pid_t pid = -1;
    int rc, i;

    if (mgr->stack == NULL)
        mgr->stack = drv__proc_child_stack_create();
    paths = drv__proc_child_paths(opts->argv[0]);
    memset(&c, 0, sizeof c);
    c.paths = paths;
    c.argv = (char *const *)opts->argv;
    c.envp = opts->envp ? (char *const *)opts->envp : empty_env;
    c.cwd = opts->cwd;
    for (i = 0; i < 3; i++)
        c.fd[i] = child_fd[i];
    c.reaper_fd = drv__proc_reaper_fd();
    c.fd3 = -1;
    /* a copy above 3, so the child's dup3 onto 3 never meets itself */
    if (opts->fd3 > 0 &&
        (c.fd3 = fcntl(opts->fd3, F_DUPFD_CLOEXEC, 4)) < 0) {
        free(paths);
        return -errno;
    }
    p->spawn_ns = drv_clock_mono_ns();
    rc = drv__proc_child_spawn(&c, mgr->stack, &pid);
    if (c.fd3 >= 0)
        close(c.fd3);
    free(paths);
    if (rc < 0 && pid > 0) {
        drv__proc_reaper_ended(pid);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
            ;
    }
    if (rc == 0)
        p->pid = pid;
    return rc;
}

int
drv_proc_spawn(struct drv_proc_mgr *mgr, const struct drv_proc_opts *opts,
               drv_proc_done_fn *cb, void *ctx, struct drv_proc **out,
               struct drv_err *err)
{
    struct drv_proc *p = NULL;
    struct stat st;
    struct timeval tv;
    int child_fd[3] = {-1, -1, -1};
    int rc, i, assigned = 0;
    size_t pre = 0;
    ssize_t n;

    DRV_CHECK_OBJ(mgr, DRV_PROC_MGR_MAGIC);
    drv_err_clear(err);
    if (out != NULL)
        *out = NULL;
    if (opts == NULL || opts->argv == NULL || opts->argv[0] == NULL ||
        cb == NULL || (opts->in_len > 0 && opts->in == NULL))
        return drv_err_set(err, -EINVAL, "spawn: no command or callback");
    if (opts->argv[0][0] == '\0')
        return drv_err_set(err, -ENOENT, "command not found: (empty)");
    if (mgr->closing)
        return drv_err_set(err, -ESHUTDOWN, "spawn %.200s: shutting down",
                           opts->argv[0]);
    /* The child's chdir fails with ENOENT too: check first so the message
     * names the right culprit. */
    if (opts->cwd != NULL) {
        if (stat(opts->cwd, &st) < 0) {
            rc = -errno;
            return drv_err_set(err, rc, "cwd %.200s: %s", opts->cwd,
                               drv_strerror(rc));
        }
        if (!S_ISDIR(st.st_mode))
            return drv_err_set(err, -ENOTDIR, "cwd %.200s: %s", opts->cwd,
                               drv_strerror(-ENOTDIR));
    }

    DRV_ALLOC_OBJ(p, DRV_PROC_MAGIC);
    p->state = ST_RUNNING;
    p->pidfd = p->in_fd = p->out_fd = p->err_fd = -1;
    p->cb = cb;
    p->ctx = ctx;
    p->auto_free = out == NULL;
    p->out_max = opts->output_max ? opts->output_max
                                  : DRV_PROC_OUTPUT_MAX_DEFAULT;
    if (p->out_max > SIZE_MAX / 4)
        p->out_max = SIZE_MAX / 4;
    p->kill_grace_ms = opts->kill_grace_ms ? opts->kill_grace_ms
                                           : DRV_PROC_KILL_GRACE_DEFAULT_MS;
    p->drain_ms = opts->drain_ms > 0 ? opts->drain_ms
                                     : DRV_PROC_DRAIN_DEFAULT_MS;

    rc = make_pipe(&p->in_fd, &child_fd[0], 1);
    if (rc == 0)
        rc = make_pipe(&p->out_fd, &child_fd[1], 0);
    if (rc == 0)
        rc = make_pipe(&p->err_fd, &child_fd[2], 0);
    if (rc < 0) {
        drv_err_set(err, rc, "spawn %.200s: pipe: %s", opts->argv[0],
                    drv_strerror(rc));
        goto fail;
    }

    /* Stdin up to the pipe's capacity is written now, while this process
     * holds the read end too (no SIGPIPE possible, no event needed): the
     * child finds it waiting. Only a longer input is written as the child
     * reads. */
    if (opts->in_len > 0) {
        n = write(p->in_fd, opts->in, opts->in_len);
        if (n > 0)
            pre = (size_t)n;
    }

    /* Every event that can fail to add is added before the child exists,
     * so a failure leaves nothing to kill. */
    DRV_AZ(event_assign(&p->in_ev, mgr->base, p->in_fd,
                        EV_WRITE | EV_PERSIST, on_in, p));
    DRV_AZ(event_assign(&p->out_ev, mgr->base, p->out_fd,
                        EV_READ | EV_PERSIST, on_output, p));
    DRV_AZ(event_assign(&p->err_ev, mgr->base, p->err_fd,
                        EV_READ | EV_PERSIST, on_output, p));
    DRV_AZ(event_assign(&p->exit_ev, mgr->base, -1, 0, on_exit_ready, p));
    DRV_AZ(event_assign(&p->kill_ev, mgr->base, -1, 0, on_kill_timer, p));
    DRV_AZ(event_assign(&p->drain_ev, mgr->base, -1, 0, on_drain, p));
    assigned = 1;
    if (event_add(&p->out_ev, NULL) < 0 || event_add(&p->err_ev, NULL) < 0 ||
        (opts->in_len > pre && event_add(&p->in_ev, NULL) < 0)) {
        rc = drv_err_set(err, -ENOMEM, "spawn %.200s: event_add failed",
                         opts->argv[0]);
        goto fail;
    }

    rc = do_spawn(mgr, p, opts, child_fd);
    if (rc < 0) {
        spawn_error(err, rc, opts->argv[0]);
        goto fail;
    }
    for (i = 0; i < 3; i++)
        close_fd(&child_fd[i]);

    p->in_len = opts->in_len;
    p->in_off = pre;
    if (opts->in_len > pre) {
        p->in_buf = drv_xmalloc(opts->in_len);
        memcpy(p->in_buf, opts->in, opts->in_len);
    } else {
        close_fd(&p->in_fd); /* the child reads EOF after the input */
    }
    watch_exit(mgr, p);
    if (opts->deadline_ns > 0) {
        tv = drv_clock_tv_until(opts->deadline_ns);
        DRV_AZ(event_add(&p->kill_ev, &tv));
    }
    mgr_link(mgr, p);
    if (out != NULL)
        *out = p;
    return 0;

fail:
    for (i = 0; i < 3; i++)
        close_fd(&child_fd[i]);
    /* Events may be added (only once assigned: event_del refuses an
     * event without a base). */
    if (assigned) {
        DRV_AZ(event_del(&p->in_ev));
        DRV_AZ(event_del(&p->out_ev));
        DRV_AZ(event_del(&p->err_ev));
    }
    close_fd(&p->in_fd);
    close_fd(&p->out_fd);
    close_fd(&p->err_fd);
    p->state = ST_DONE;
    destroy(p);
    return rc;
}

/* ------------------------------------------------------------ per proc */

int
drv_proc_kill(struct drv_proc *p)
{
    DRV_CHECK_OBJ(p, DRV_PROC_MAGIC);
    if (p->state == ST_DONE)
        return -ESRCH;
    if (p->state == ST_EXITED) {
        /* Exited already: stop waiting for stragglers' EOF, on the next
         * turn (never complete from inside this call). */
        event_active(&p->drain_ev, EV_TIMEOUT, 1);
        return -ESRCH;
    }
    if (p->kill_phase == KILL_NONE)
        start_kill(p);
    return 0;
}

pid_t
drv_proc_pid(const struct drv_proc *p)
{
    DRV_CHECK_OBJ(p, DRV_PROC_MAGIC);
    return p->pid;
}

void
drv_proc_free(struct drv_proc *p)
{
    if (DRV_NO_OBJ(p, DRV_PROC_MAGIC))
        return;
    if (p->in_callback) {
        p->freeing = 1;
        return;
    }
    if (p->state == ST_DONE) {
        destroy(p);
        return;
    }
    /* Given up before completion: clear the callback first (rule 18),
     * kill the job, and let finish() release it once reaped. */
    p->cb = NULL;
    p->ctx = NULL;
    p->detached = 1;
    if (p->state == ST_RUNNING) {
        p->killed = 1;
        signal_group(p, SIGKILL);
        p->kill_phase = KILL_KILL;
        DRV_AZ(event_del(&p->kill_ev));
    } else {
        event_active(&p->drain_ev, EV_TIMEOUT, 1);
    }
}

const char *
drv_proc_describe(const struct drv_proc_result *res, char *buf, size_t n)
{
    char what[96];
    const char *name;

    if (res->exit_code >= 0) {
        snprintf(what, sizeof what, "exit status %d", res->exit_code);
    } else if (res->term_signal > 0) {
        name = sigabbrev_np(res->term_signal);
        if (name != NULL)
            snprintf(what, sizeof what, "killed by signal SIG%s%s", name,
                     res->core_dumped ? " (core dumped)" : "");
        else
            snprintf(what, sizeof what, "killed by signal %d%s",
                     res->term_signal,
                     res->core_dumped ? " (core dumped)" : "");
    } else {
        snprintf(what, sizeof what, "exit status unknown");
    }
    if (res->timed_out)
        snprintf(buf, n, "timed out (%s)", what);
    else if (res->killed)
        snprintf(buf, n, "killed on request (%s)", what);
    else
        snprintf(buf, n, "%s", what);
    return buf;
}
