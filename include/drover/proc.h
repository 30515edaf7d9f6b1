/*
 * drover/proc.h -- child processes on the event loop.
 *
 * A drv_proc is one child started from an argv array (never a shell) and
 * an explicit environment, in its own process group, with three pipes:
 * stdin is written from a caller buffer, stdout is kept up to output_max
 * bytes, and the last DRV_PROC_ERR_TAIL bytes of stderr are kept.
 * Everything runs on the loop thread without blocking it.
 *
 * No child outlives its worker. Each child is started with
 * PR_SET_PDEATHSIG = SIGKILL (it dies with the thread that spawned it:
 * the loop thread), and, when drv_proc_reaper_start was called, its
 * process group is listed with the reaper, a small process that SIGKILLs
 * every listed group when the worker dies, by kill -9 included
 * (pkg/proc/proc_reaper.c). Grandchildren that stay in the job's group
 * die with it; a process that leaves the group (setsid) does not.
 *
 * A drv_proc_mgr owns the bookkeeping of every live child of one loop and
 * is the teardown point: drv_proc_mgr_free SIGKILLs and reaps whatever is
 * left. Exit is detected per child with a pidfd (Linux >= 5.3; where
 * pidfd_open is refused -- older kernels, seccomp, valgrind -- a per-child
 * timer polls waitid instead), so there is no SIGCHLD handler and no
 * waitpid(-1): children that other code started are never reaped here. SIGCHLD must not be set to SIG_IGN in the
 * process (the kernel would then reap children behind our back).
 *
 * Life of a child:
 *
 *   drv_proc_spawn --> RUNNING --(exit seen)--> EXITED --(stdout and stderr
 *        |               |       group SIGKILL,   at EOF, or drain_ms
 *        | error:        |       child reaped     passed)--> DONE: callback
 *        | no callback   +-- drv_proc_kill / deadline: SIGTERM to the
 *                            group, SIGKILL after kill_grace_ms
 *
 * A job is its process group: when the main child exits, anything still
 * in its group is SIGKILLed at once (like systemd's KillMode=control-group)
 * so no work outlives its job unseen by the concurrency limit. A process
 * that left the group (setsid, setpgid) is not ours to kill; if it holds
 * stdout or stderr open, the pipes are closed drain_ms after the exit.
 * Such escaped processes are re-parented to init; a worker that runs as
 * PID 1 (a container without --init) would collect their zombies, since
 * it only ever waits for its own children by pid.
 *
 * Loop thread only, every function.
 */
#ifndef DROVER_PROC_H
#define DROVER_PROC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "drover/error.h"

struct drv_loop;
struct drv_proc;
struct drv_proc_mgr;

#define DRV_PROC_ERR_TAIL 4096                       /* stderr bytes kept */
#define DRV_PROC_OUTPUT_MAX_DEFAULT ((size_t)1 << 20) /* 1 MiB of stdout */
#define DRV_PROC_KILL_GRACE_DEFAULT_MS 5000           /* SIGTERM -> SIGKILL */
#define DRV_PROC_DRAIN_DEFAULT_MS 500  /* wait for pipe EOF after the exit */

/* What to run. Pointers are borrowed for the duration of drv_proc_spawn. */
struct drv_proc_opts {
    const char *const *argv;  /* NULL-terminated; argv[0] is the command,
                                 searched in the worker's PATH when it has
                                 no '/' (execvp's rules); a
                                 relative path with '/' is resolved in
                                 cwd, as by the child's execve */
    const char *const *envp;  /* NULL-terminated: the child's whole
                                 environment, nothing is added; NULL =
                                 empty environment */
    const char *cwd;          /* working directory; NULL = the worker's */
    const void *in;           /* stdin bytes, copied; NULL/0 = EOF at once */
    size_t in_len;            /* bytes at in */
    size_t output_max;        /* stdout bytes kept, the rest is read and
                                 dropped; 0 = DRV_PROC_OUTPUT_MAX_DEFAULT */
    int64_t kill_grace_ms;    /* SIGTERM -> SIGKILL delay; 0 = default 5 s,
                                 < 0 = SIGKILL at once */
    int64_t drain_ms;         /* after the exit, wait this long for pipe
                                 EOF; 0 = DRV_PROC_DRAIN_DEFAULT_MS */
    int64_t deadline_ns;      /* monotonic deadline: then the child is
                                 killed as by drv_proc_kill and timed_out
                                 is set; 0 = none */
    int fd3;                  /* > 0: an fd of the worker the child gets
                                 as its fd 3 (a pipe's write end; the
                                 caller keeps and closes its own); 0 =
                                 none (fd 3 closed like every other) */
};

/* The outcome, borrowed by the callback until it returns. */
struct drv_proc_result {
    pid_t pid;                /* the child's pid (reaped: do not signal) */
    int exit_code;            /* exit status 0..255, or -1 if signalled or
                                 unknown */
    int term_signal;          /* signal that ended it, 0 if it exited */
    int core_dumped;          /* 1 if the signal dumped core */
    int killed;               /* 1 if we signalled it (drv_proc_kill,
                                 deadline, free, manager teardown) before
                                 its exit was seen */
    int timed_out;            /* 1 if opts.deadline_ns fired */
    const char *out;          /* borrowed: stdout bytes, NUL-terminated
                                 (may hold NULs itself); never NULL */
    size_t out_len;           /* bytes at out, <= output_max */
    int out_truncated;        /* 1 if stdout had more than output_max */
    const char *err;          /* borrowed: the last bytes of stderr,
                                 NUL-terminated; never NULL */
    size_t err_len;           /* bytes at err, <= DRV_PROC_ERR_TAIL */
    uint64_t err_total;       /* stderr bytes seen in all */
    size_t in_written;        /* stdin bytes the child's pipe accepted
                                 (up to its capacity are written before
                                 the child starts) */
    int in_code;              /* 0, or -EPIPE etc. if stdin was cut short */
    int64_t wall_ns;          /* spawn to exit */
    int64_t user_cpu_ns;      /* rusage of the child (and the descendants
                                 it waited for) */
    int64_t sys_cpu_ns;       /* same, system time */
    int64_t max_rss_kb;       /* peak resident set, KiB */
};

/*
 * drv_proc_done_fn -- completion of a child. code is
 *   0            the child ran; res says how it ended;
 *   -ECANCELED   completion was forced by drv_proc_mgr_free (the child was
 *                SIGKILLed unless it had exited; res is still filled);
 *   -ECHILD      someone else reaped the child (SIGCHLD ignored or a
 *                waitpid(-1) elsewhere): status unknown, exit_code -1.
 * res and everything it points to is borrowed until the callback returns.
 * The callback may call drv_proc_free(p) and drv_proc_spawn.
 */
typedef void drv_proc_done_fn(struct drv_proc *p, int code,
                              const struct drv_proc_result *res, void *ctx);

/*
 * drv_proc_mgr_create -- the child registry of loop (borrowed; it must
 * outlive the manager). One per loop is enough; more are harmless.
 * Never returns NULL (out of memory aborts).
 */
struct drv_proc_mgr *drv_proc_mgr_create(struct drv_loop *loop);

/*
 * drv_proc_mgr_free -- teardown; NULL does nothing. Every child not yet
 * completed gets SIGKILL on its process group and is reaped (a blocking
 * wait for processes already SIGKILLed), its pipes are read once more and
 * closed, and its callback runs with -ECANCELED from inside this call
 * (rule 16c: no callback is dropped, except those of procs the caller
 * already freed). Spawns from those callbacks fail with -ESHUTDOWN.
 * Handles of completed procs stay valid for drv_proc_free. Call it before
 * drv_loop_free, outside any callback of this manager.
 */
void drv_proc_mgr_free(struct drv_proc_mgr *mgr);

/*
 * drv_proc_mgr_kill_all -- drv_proc_kill on every running child (graceful
 * stop: SIGTERM, SIGKILL after each one's grace). Callbacks run later, as
 * usual.
 */
void drv_proc_mgr_kill_all(struct drv_proc_mgr *mgr);

/* drv_proc_mgr_live -- children spawned and not yet completed (including
 * ones freed early that are still being reaped). */
size_t drv_proc_mgr_live(const struct drv_proc_mgr *mgr);

/*
 * drv_proc_reaper_start -- fork the reaper of this process's children:
 * from then on, when this process exits without drv_proc_reaper_stop
 * (a crash, kill -9, _exit), the reaper SIGKILLs the process group of
 * every child of every manager that had not been reaped, and logs it.
 * Call it once, early, from the main thread, before other threads exist
 * (the reaper is a fork of the process at that moment); a second call
 * does nothing. Returns 0, or -errno with err set (no reaper: children
 * still die with the worker by PR_SET_PDEATHSIG, their own children do
 * not).
 */
int drv_proc_reaper_start(struct drv_err *err);

/*
 * drv_proc_reaper_stop -- clean exit: tell the reaper to quit and wait
 * for it (it SIGKILLs any group still listed, which a freed manager never
 * leaves). Call after every manager is freed, from the main thread;
 * without a reaper it does nothing.
 */
void drv_proc_reaper_stop(void);

/* drv_proc_reaper_pid -- the reaper's pid, or -1 when none runs (never
 * started, stopped, or found gone). */
pid_t drv_proc_reaper_pid(void);

/*
 * drv_proc_spawn -- start opts->argv as a child of mgr and call
 * cb(p, code, res, ctx) when it has exited and its output is collected.
 *
 * The child: its own process group (pgid = pid); PR_SET_PDEATHSIG =
 * SIGKILL (so the calling thread must live as long as the child may: the
 * loop thread); signal mask empty and every signal at its default
 * disposition; fds 0/1/2 are the pipes and every other fd is closed;
 * environment exactly opts->envp.
 *
 * Returns 0 and the handle in *out (owned by the caller, free it with
 * drv_proc_free; out may be NULL: the proc then frees itself after the
 * callback and cannot be killed). Errors, with err (may be NULL) naming
 * the command or directory:
 *   -EINVAL bad opts; -ESHUTDOWN manager being freed;
 *   -ENOENT command not found or cwd missing; -EACCES, -ENOTDIR, -ENOEXEC,
 *   -E2BIG ... as execve(2) would fail; -EMFILE/-ENFILE/-EAGAIN/-ENOMEM
 *   out of fds or processes.
 * Exec failures are synchronous: the child reports its exec errno
 * through a close-on-exec pipe before this call returns.
 *
 * Contracts (rule 16): (a) on error cb never runs and nothing is left;
 * (b) otherwise cb runs exactly once, on the loop thread, never from
 * inside this call; (c) drv_proc_mgr_free completes it with -ECANCELED.
 */
int drv_proc_spawn(struct drv_proc_mgr *mgr, const struct drv_proc_opts *opts,
                   drv_proc_done_fn *cb, void *ctx, struct drv_proc **out,
                   struct drv_err *err);

/*
 * drv_proc_kill -- ask the child to stop: SIGTERM to its process group,
 * then SIGKILL to the group after kill_grace_ms if it has not exited (at
 * once when kill_grace_ms < 0). The callback then reports killed = 1.
 * Returns 0 when the kill started (or was already under way), -ESRCH when
 * the child had already exited (its pipes are then closed without waiting
 * for drain_ms) or the callback already ran. Never runs the callback
 * itself.
 */
int drv_proc_kill(struct drv_proc *p);

/* drv_proc_pid -- the child's pid (also its process group id). */
pid_t drv_proc_pid(const struct drv_proc *p);

/*
 * drv_proc_free -- release a handle; NULL does nothing. Safe inside the
 * proc's own callback (it is freed when the callback returns) and after
 * it. Before completion, the callback is cleared and never runs (the
 * caller gave up on it), the group gets SIGKILL, and the manager reaps
 * the child in the background and releases it then.
 */
void drv_proc_free(struct drv_proc *p);

/*
 * drv_proc_describe -- a short human text of how res ended, written to
 * buf (size n): "exit status 3", "killed by signal SIGKILL",
 * "timed out (killed by signal SIGTERM)". Returns buf.
 */
const char *drv_proc_describe(const struct drv_proc_result *res, char *buf,
                              size_t n);

#endif
