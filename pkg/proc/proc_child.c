/*
 * proc_child.c -- the spawn path: a child that dies with its worker.
 *
 * DESIGN
 * posix_spawn cannot set PR_SET_PDEATHSIG, so the child is started by
 * hand: clone(CLONE_VM | CLONE_VFORK) on a stack the manager owns, the
 * way glibc's posix_spawn does. No page tables are copied (a fork of a
 * large worker costs far more) and the calling thread sleeps until the
 * child has exec'd or exited. Under ThreadSanitizer, libc's own clone is
 * called (looked up with dlsym): TSan's clone interceptor treats every
 * clone as a fork and would reset its state, shared with a CLONE_VM
 * child, from inside the child.
 *
 * Between clone and execve the child shares the parent's memory, so it
 * runs only raw system calls through syscall(2) (which only sets the
 * suspended thread's errno): no libc function that takes a lock,
 * allocates or is intercepted by a sanitizer, and its two functions are
 * built without sanitizer instrumentation. Its steps, in order:
 *   1. its own process group (pgid = pid);
 *   2. PR_SET_PDEATHSIG = SIGKILL, then getppid() against the pid taken
 *      before the clone: if the worker died before the prctl, the signal
 *      will never come, so the child exits instead;
 *   3. one "started PGID" record into the reaper's pipe (see
 *      proc_reaper.c), before any code of the job runs, so no process of
 *      the group can exist unregistered;
 *   4. stdio onto the pipes, chdir, every other fd closed;
 *   5. every signal to SIG_DFL (a handler of the parent must never run on
 *      the shared memory), the mask emptied, then execve along the
 *      candidate paths (PATH resolved in the parent, execvp's rules).
 * A failure stores the errno in the spawn's record, which the child
 * shares with the parent (the way glibc's posix_spawn reports it; no
 * pipe to create and close per spawn), and exits 127: the parent resumes
 * only once the child has exec'd or exited (CLONE_VFORK), so it reads
 * the record after the child's last write to it.
 *
 * PR_SET_PDEATHSIG fires when the *thread* that created the child exits,
 * not the process: spawn only from a thread that lives as long as its
 * children may (droverd spawns from the loop thread, its main thread). It
 * reaches the direct child only and is cleared by execve of a set-user-ID
 * or file-capability program; the process-group kill of the reaper covers
 * both gaps.
 */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sched.h>

#include "drover/common.h"
#include "proc_int.h"

#define CHILD_STACK_SIZE (64 * 1024) /* the child's frames are small */
#define CLOSE_FALLBACK_MAX 65536     /* fds closed one by one at most */

#if defined(__SANITIZE_THREAD__)
#define USE_LIBC_CLONE 1       /* bypass TSan's clone interceptor */
#include <dlfcn.h>
#else
#define USE_LIBC_CLONE 0
#endif

/* Code that runs in the CLONE_VM child: no sanitizer instrumentation
 * (it would update the parent's per-thread sanitizer state). */
#define CHILD_CODE __attribute__((no_sanitize_address, no_sanitize_thread))

typedef int clone_fn(int (*fn)(void *), void *stack, int flags, void *arg,
                     ...);

/* The kernel's struct sigaction for rt_sigaction(2), as on x86_64. Only
 * the handler is ever nonzero, so architectures whose struct has no
 * sa_restorer (the mask then sits where restorer is) read the same. */
struct ksigaction {
    void *handler;            /* SIG_DFL */
    unsigned long flags;      /* 0 */
    void *restorer;           /* NULL */
    uint64_t mask;            /* empty */
};

/* --------------------------------------------------------- the child */

/* Report errno e to the parent and exit. Never returns. */
__attribute__((noreturn)) CHILD_CODE static void
child_fail(struct drv__proc_child *c, int e)
{
    *(volatile int *)&c->err = e;
    (void)syscall(SYS_exit_group, 127);
    for (;;)
        ;
}

/* The child between clone and exec: raw system calls only (see DESIGN). */
CHILD_CODE static int
child_main(void *arg)
{
    struct drv__proc_child *c = arg;
    struct ksigaction dfl = {SIG_DFL, 0, NULL, 0};
    uint64_t empty = 0;
    uint32_t rec[2];
    struct rlimit rl;
    long pid, i, max, first;
    int e, eacces = 0, closed = 0;

    /* 1. own group */
    if (syscall(SYS_setpgid, 0, 0) < 0)
        child_fail(c, errno);
    /* 2. die with the worker; it may be gone already */
    if (syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        child_fail(c, errno);
    if (syscall(SYS_getppid) != c->parent)
        (void)syscall(SYS_exit_group, 127);
    /* 3. register the group with the reaper; a reaper that is gone is
     * droverd's concern (it sees EPIPE on its own writes). SIGPIPE is
     * blocked here and discarded below when set to SIG_IGN. */
    pid = syscall(SYS_getpid);
    if (c->reaper_fd >= 0) {
        rec[0] = DRV__REAPER_STARTED;
        rec[1] = (uint32_t)pid;
        (void)syscall(SYS_write, c->reaper_fd, rec, sizeof rec);
    }
    /* 4. stdio, cwd, no other fd (the pipe ends are all above 2) */
    for (i = 0; i < 3; i++)
        if (syscall(SYS_dup3, c->fd[i], i, 0) < 0)
            child_fail(c, errno);
    if (c->cwd != NULL && syscall(SYS_chdir, c->cwd) < 0)
        child_fail(c, errno);
    /* fd3 (> 3) is kept as fd 3 */
    first = 3;
    if (c->fd3 >= 0) {
        if (syscall(SYS_dup3, c->fd3, 3, 0) < 0)
            child_fail(c, errno);
        first = 4;
    }
#ifdef SYS_close_range
    closed = syscall(SYS_close_range, first, ~0U, 0) == 0;
#endif
    if (!closed) {
        max = CLOSE_FALLBACK_MAX;
        if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, NULL, &rl) == 0 &&
            rl.rlim_cur < (rlim_t)max)
            max = (long)rl.rlim_cur;
        for (i = first; i < max; i++)
            (void)syscall(SYS_close, i);
    }
    /* 5. signals: SIG_IGN first discards a pending SIGPIPE of step 3 */
    dfl.handler = SIG_IGN;
    (void)syscall(SYS_rt_sigaction, SIGPIPE, &dfl, NULL, sizeof empty);
    dfl.handler = SIG_DFL;
    for (i = 1; i < 65; i++)
        if (i != SIGKILL && i != SIGSTOP)
            (void)syscall(SYS_rt_sigaction, i, &dfl, NULL, sizeof empty);
    (void)syscall(SYS_rt_sigprocmask, SIG_SETMASK, &empty, NULL,
                  sizeof empty);
    e = ENOENT;
    for (i = 0; c->paths[i] != NULL; i++) {
        (void)syscall(SYS_execve, c->paths[i], c->argv, c->envp);
        e = errno;
        /* execvp's rules: go on past a miss, remember a refusal */
        if (e == EACCES)
            eacces = 1;
        else if (e != ENOENT && e != ENOTDIR && e != ESTALE && e != ENODEV &&
                 e != ETIMEDOUT)
            break;
    }
    child_fail(c, c->paths[i] == NULL && eacces ? EACCES : e);
    return 127;
}

/* ------------------------------------------------------- the parent */

#if USE_LIBC_CLONE
static pthread_once_t libc_clone_once = PTHREAD_ONCE_INIT;
static clone_fn *libc_clone_fn;

static void
find_libc_clone(void)
{
    void *libc = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);

    DRV_AN(libc);
    *(void **)&libc_clone_fn = dlsym(libc, "clone");
    DRV_AN(libc_clone_fn);
}
#endif

/* clone(2) of libc itself (see DESIGN). */
static clone_fn *
libc_clone(void)
{
#if USE_LIBC_CLONE
    DRV_AZ(pthread_once(&libc_clone_once, find_libc_clone));
    return libc_clone_fn;
#else
    return clone;
#endif
}

void *
drv__proc_child_stack_create(void)
{
    void *st;

    st = mmap(NULL, CHILD_STACK_SIZE, PROT_READ | PROT_WRITE,
              MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    return st == MAP_FAILED ? NULL : st;
}

void
drv__proc_child_stack_free(void *stack)
{
    if (stack != NULL)
        DRV_AZ(munmap(stack, CHILD_STACK_SIZE));
}

char **
drv__proc_child_paths(const char *cmd)
{
    const char *path, *p, *end;
    size_t n = 2, bytes, clen = strlen(cmd), len, k = 0;
    char **v, *s;

    if (strchr(cmd, '/') != NULL) {
        v = drv_xmalloc(2 * sizeof *v + clen + 1);
        v[0] = (char *)(v + 2);
        memcpy(v[0], cmd, clen + 1);
        v[1] = NULL;
        return v;
    }
    path = getenv("PATH");
    if (path == NULL)
        path = "/bin:/usr/bin"; /* glibc's default, as execvp uses */
    for (p = path; *p != '\0'; p++)
        if (*p == ':')
            n++;
    bytes = n * sizeof *v + strlen(path) + n * (clen + 2);
    v = drv_xmalloc(bytes);
    s = (char *)(v + n);
    for (p = path;; p = end + 1) {
        end = strchr(p, ':');
        if (end == NULL)
            end = p + strlen(p);
        len = (size_t)(end - p);
        v[k++] = s;
        /* an empty entry is the current directory */
        if (len > 0) {
            memcpy(s, p, len);
            s[len++] = '/';
        }
        memcpy(s + len, cmd, clen + 1);
        s += len + clen + 1;
        if (*end == '\0')
            break;
    }
    v[k] = NULL;
    return v;
}

int
drv__proc_child_spawn(struct drv__proc_child *c, void *stack, pid_t *pid)
{
    sigset_t all, old;
    int rc = 0;
    pid_t child;

    if (stack == NULL)
        return -ENOMEM; /* the manager could not map one */
    c->err = 0;
    c->parent = getpid();
    /* No handler may run in the child before its dispositions are reset;
     * it unblocks right before execve. */
    DRV_AZ(sigfillset(&all));
    DRV_AZ(pthread_sigmask(SIG_SETMASK, &all, &old));
    child = libc_clone()(child_main, (char *)stack + CHILD_STACK_SIZE,
                         CLONE_VM | CLONE_VFORK | SIGCHLD, c);
    if (child < 0)
        rc = -errno;
    DRV_AZ(pthread_sigmask(SIG_SETMASK, &old, NULL));
    if (rc < 0)
        return rc;
    /* The child has exec'd or exited (CLONE_VFORK): 0, or its errno. */
    *pid = child;
    rc = *(volatile int *)&c->err;
    return rc > 0 ? -rc : 0;
}
