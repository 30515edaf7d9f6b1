/*
 * handler_int.h -- declarations shared by the handler files: exec's pure
 * helpers (unit-tested). Each handler's table is declared in handler.c
 * from DRV_HKIND_LIST.
 */
#ifndef DROVER_HANDLER_INT_H
#define DROVER_HANDLER_INT_H

#include <stddef.h>

#include "drover/handlers.h"
#include "drover/queue.h"

/* exec's stdin JSON: every field, with id and attempt added when the
 * entry lacks them (caller frees). */
char *drv__exec_stdin(const struct drv_job *job, size_t *len);

/* exec's argv from the command templates through drv_hrun_lookup (caller
 * frees with drv__strv_free); NULL with err DRV_EBADJOB "missing field
 * X". */
char **drv__exec_argv(const struct drv_hrun *r, struct drv_err *err);

/* The worker's environment without secrets (caller frees). */
char **drv__exec_base_env(char *const *environ_, const char *redis_url);

/* A child's environment: base + DROVER_JOB_ID, DROVER_JOB, DROVER_QUEUE,
 * DROVER_ATTEMPT + the job type's env map (caller frees). */
char **drv__exec_env(char *const *base, const struct drv_hrun *r);

void drv__strv_free(char **v);

/* The run's progress store (handler_progress.c): freed with the run, once
 * no thread can report any more. */
void drv__hrun_progress_free(struct drv_hrun *r);

/*
 * exec's progress pipe (handler_exec_progress.c): a pipe whose read end
 * is read on the loop, each line a report to r (drv_hrun_progress_line).
 * *child_fd is the write end for the child's fd 3: close it once the
 * child is spawned. 0 or -errno. _free closes the read end (NULL: no-op).
 */
struct drv__exec_progress;
int drv__exec_progress_open(struct drv_hrun *r,
                            struct drv__exec_progress **out, int *child_fd);
void drv__exec_progress_free(struct drv__exec_progress *p);

/* The number of the progress pipe in an exec child (DROVER_PROGRESS_FD). */
#define DRV__EXEC_PROGRESS_FD "3"

#endif
