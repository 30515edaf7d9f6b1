/*
 * proc_int.h -- pkg/proc internals shared with its tests.
 */
#ifndef DROVER_PROC_INT_H
#define DROVER_PROC_INT_H

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

#endif
