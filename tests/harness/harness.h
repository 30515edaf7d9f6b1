/*
 * harness.h -- shared helpers for drover's cmocka tests.
 *
 * A real redis-server per test binary (group setup): a private temp dir
 * with a redis.conf (loopback port chosen free, unix socket, no
 * persistence), started and PINGed; stopped and removed at teardown unless
 * DROVER_TEST_KEEP=1. DROVER_TEST_REDIS_URL selects an external server
 * instead (then restart/kill tests skip).
 */
#ifndef DROVER_TEST_HARNESS_H
#define DROVER_TEST_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <sys/types.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>

#include "drover/error.h"

struct drv_test_redis {
    char dir[256];      /* private temp dir (conf, socket, log) */
    char sock[300];     /* unix socket path */
    char url[400];      /* redis://127.0.0.1:PORT/0 */
    char sock_url[400]; /* unix://SOCK */
    int port;           /* loopback TCP port */
    pid_t pid;          /* server pid, 0 when stopped or external */
    int external;       /* 1 when DROVER_TEST_REDIS_URL is used */
};

/* drv_test_redis_start -- start a private redis-server (or adopt the
 * external one); 0 or negative errno. */
int drv_test_redis_start(struct drv_test_redis *r);

/* drv_test_redis_stop -- SIGTERM the server and wait; keep=1 keeps the dir. */
void drv_test_redis_stop(struct drv_test_redis *r);

/* drv_test_redis_kill -- SIGKILL the server (crash) and reap it. */
void drv_test_redis_kill(struct drv_test_redis *r);

/* drv_test_redis_restart -- start again on the same port and socket. */
int drv_test_redis_restart(struct drv_test_redis *r);

/* drv_test_redis_cleanup -- stop and remove the temp dir. */
void drv_test_redis_cleanup(struct drv_test_redis *r);

/* drv_test_redis_connect -- a blocking hiredis client (TCP); NULL on error. */
redisContext *drv_test_redis_connect(const struct drv_test_redis *r);

/* drv_test_redis_cmd -- run a command on a blocking client, return the
 * reply (caller frees with freeReplyObject). Asserts the reply is not NULL. */
redisReply *drv_test_redis_cmd(redisContext *c, const char *fmt, ...);

/* drv_test_redis_flush -- FLUSHALL on the test server. */
void drv_test_redis_flush(const struct drv_test_redis *r);

/* drv_test_tmpdir -- mkdtemp under $TMPDIR with a prefix; returns a static
 * buffer copy into out (size n). 0 or -errno. */
int drv_test_tmpdir(const char *prefix, char *out, size_t n);

/* drv_test_rm_rf -- remove a tree (tests' temp dirs only). */
void drv_test_rm_rf(const char *path);

/* drv_test_write_file -- write text to path; 0 or -errno. */
int drv_test_write_file(const char *path, const char *text);

/* drv_test_bin -- path of a drover binary (droverd, drover) for this
 * build variant: $DROVER_BIN_DIR/name, default bin/name. */
const char *drv_test_bin(const char *name, char *buf, size_t n);

/* drv_test_prog -- path of a helper program built from tests/progs/. */
const char *drv_test_prog(const char *name, char *buf, size_t n);

/* drv_test_free_port -- a loopback TCP port that was free a moment ago
 * (bound, read back, released); -1 on error. */
int drv_test_free_port(void);

/* drv_test_now_ms -- monotonic ms, for watchdogs (never speed checks). */
int64_t drv_test_now_ms(void);

/* assert_drv_ok -- assert rc == 0, printing drv_strerror and err->msg. */
#define assert_drv_ok(rc, err)                                            \
    do {                                                                  \
        int rc_ = (rc);                                                   \
        const struct drv_err *e_ = (err);                                 \
        if (rc_ != 0)                                                     \
            fail_msg("%s = %d (%s) %s", #rc, rc_, drv_strerror(rc_),      \
                     e_ ? e_->msg : "");                                  \
    } while (0)

#endif

/* ------------------------------------------------ child processes */

struct drv_test_proc {
    pid_t pid;          /* 0 when not running */
    char log[400];      /* stdout+stderr of the child */
    int status;         /* wait status once reaped */
};

/*
 * drv_test_spawn -- start argv (NULL-terminated) with stdout and stderr
 * appended to log_path; env_extra (may be NULL) is a NULL-terminated list
 * of NAME=VALUE set in the child. 0 or -errno.
 */
int drv_test_spawn(struct drv_test_proc *p, const char *const *argv,
                   const char *log_path, const char *const *env_extra);

/* drv_test_wait -- wait up to timeout_ms for the child to exit; returns
 * its exit code, 128+signal when signalled, or -ETIMEDOUT. */
int drv_test_wait(struct drv_test_proc *p, int64_t timeout_ms);

/* drv_test_kill -- send sig; then, if sig is SIGKILL, reap. */
void drv_test_kill(struct drv_test_proc *p, int sig);

/* drv_test_run -- run argv to completion (timeout_ms), capturing stdout
 * into out (size n, NUL-terminated); returns the exit code or <0. */
int drv_test_run(const char *const *argv, char *out, size_t n,
                 int64_t timeout_ms);

/* drv_test_file_contains -- 1 if the file at path contains needle. */
int drv_test_file_contains(const char *path, const char *needle);

/* drv_test_sleep_ms -- sleep. */
void drv_test_sleep_ms(int64_t ms);
