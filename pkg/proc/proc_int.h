/*
 * proc_int.h -- pkg/proc internals shared with its tests.
 */
#ifndef DROVER_PROC_INT_H
#define DROVER_PROC_INT_H

#include <stddef.h>
#include <sys/types.h>

/*
 * drv__proc_pidfd_open -- how a pidfd is opened: returns the fd or
 * -errno. Swappable for fault injection (rule 33): a test points it at a
 * function returning -ENOSYS to run the poll-timer fallback of kernels
 * before 5.3 or seccomp filters that refuse pidfd_open. Loop thread only;
 * set it before spawning.
 */
extern int (*drv__proc_pidfd_open)(pid_t pid);

/* drv__proc_pidfd_open_sys -- the real one (the default). */
int drv__proc_pidfd_open_sys(pid_t pid);


/* ------------------------------------------------------------ spawning */

/* One spawn, filled by proc.c; read by the child between clone and exec
 * (proc_child.c). Pointers are borrowed for the call. */
struct drv__proc_child {
    char *const *paths;       /* candidate files, NULL-terminated */
    char *const *argv;        /* NULL-terminated */
    char *const *envp;        /* NULL-terminated */
    const char *cwd;          /* NULL = the worker's */
    int fd[3];                /* become the child's 0, 1, 2 (all > 2) */
    int reaper_fd;            /* the reaper's pipe, or -1 */
    int fd3;                  /* becomes the child's fd 3 (> 3), or -1 */
    int err;                  /* set by the child: the errno of its
                                 failed step or exec, 0 if it exec'd */
    pid_t parent;             /* set by the spawn: the worker's pid */
};

/*
 * drv__proc_child_spawn -- start the child described by c (see
 * proc_child.c: own group, PR_SET_PDEATHSIG, registered with the reaper,
 * then execve). stack comes from drv__proc_child_stack_create. Returns 0
 * and the pid in *pid once the child has exec'd; -errno if it could not
 * be created, or the errno of its failed step or exec: the child then
 * exited with 127 and *pid holds it, still to be reaped by the caller.
 * Loop thread only (PR_SET_PDEATHSIG follows the spawning thread).
 */
int drv__proc_child_spawn(struct drv__proc_child *c, void *stack,
                          pid_t *pid);

/* drv__proc_child_stack_create -- the child's stack (NULL when out of
 * memory); one per manager.
 * drv__proc_child_stack_free releases it (NULL: nothing). */
void *drv__proc_child_stack_create(void);
void drv__proc_child_stack_free(void *stack);

/* drv__proc_child_paths -- the files execve tries for cmd: cmd itself
 * when it holds a '/', else each PATH entry (the worker's PATH, or
 * /bin:/usr/bin) joined with cmd. One allocation: free() it. */
char **drv__proc_child_paths(const char *cmd);

/* drv__proc_above_stdio -- fd moved to a close-on-exec fd above 2 (the
 * old one closed) when it is 0, 1 or 2. Returns the fd or -errno. */
int drv__proc_above_stdio(int fd);

/* ------------------------------------------------------------ reaper */

/* Records on the reaper's pipe: two uint32 (op, pgid), written whole
 * (below PIPE_BUF, so never interleaved). */
#define DRV__REAPER_STARTED 1u  /* a child made group pgid (the child) */
#define DRV__REAPER_ENDED 2u    /* group pgid is done (the worker) */
#define DRV__REAPER_QUIT 3u     /* the worker exits cleanly */

/* drv__proc_reaper_fd -- the write end of the reaper's pipe, or -1 when
 * no reaper runs. Loop thread. */
int drv__proc_reaper_fd(void);

/*
 * drv__proc_reaper_ended -- tell the reaper that pgid is done. Called
 * while the group's leader is still an unreaped zombie (so the number
 * cannot have been reused). Loop thread. A reaper found gone is logged
 * once and forgotten.
 */
void drv__proc_reaper_ended(pid_t pgid);

/* drv__proc_write_nosigpipe -- write(2) that cannot raise SIGPIPE in
 * the process (blocked in this thread, a pending one consumed). */
ssize_t drv__proc_write_nosigpipe(int fd, const void *buf, size_t n);

#endif
