/*
 * harness.h -- shared helpers for drover's cmocka tests.
 *
 * A real redis-server per test binary (the Redis fixture, group setup): a
 * private temp dir with a redis.conf (loopback port chosen free, unix
 * socket, no persistence), started and PINGed; stopped and removed at
 * teardown unless DROVER_TEST_KEEP=1. DROVER_TEST_REDIS_URL selects an
 * external server instead (then restart/kill tests skip). Child
 * processes with their output in files; one watchdog against hangs; one
 * wait_until that polls a condition with a deadline.
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
    int tls;            /* 1: TLS only on TCP (url is rediss://; the unix
                           socket stays plain, the harness's own clients
                           use it) */
    char certs[300];    /* TLS: dir/certs, see drv_test_make_certs */
    char ca[340];       /* TLS: certs/ca.pem, the CA that signed the
                           server's certificate */
    char tls_yaml[1200]; /* TLS: "  tls:\n    ca_file: ...\n", the lines
                           a config's redis: section needs; "" if plain */
};

/* drv_test_redis_start -- start a private redis-server (or adopt the
 * external one); 0 or negative errno. */
int drv_test_redis_start(struct drv_test_redis *r);

/*
 * drv_test_redis_start_tls -- like drv_test_redis_start, but the server
 * speaks TLS only on TCP (port 0, tls-port PORT) with certificates made by
 * drv_test_make_certs in dir/certs; auth_clients: it requires a client
 * certificate (tls-auth-clients yes). 0 or negative errno. Skips (returns
 * -ENOTSUP) with an external server.
 */
int drv_test_redis_start_tls(struct drv_test_redis *r, int auth_clients);

/*
 * drv_test_make_certs -- with the openssl command, in dir: ca.pem/ca.key
 * (a test CA), server.pem/server.key (signed by it; SANs IP:127.0.0.1,
 * DNS:localhost, DNS:drover-test-redis), client.pem/client.key (signed by
 * it, for client authentication) and other-ca.pem (an unrelated CA). 0 or
 * -EIO (the openssl output is printed).
 */
int drv_test_make_certs(const char *dir);

/*
 * drv_test_make_server_cert -- in dir (made by drv_test_make_certs): a new
 * server.pem/server.key, the same names, signed by the same CA, valid for
 * days days from now (a short-lived certificate for expiry checks); the
 * server reads it when it starts again (drv_test_redis_restart). 0 or
 * -EIO.
 */
int drv_test_make_server_cert(const char *dir, int days);

/* drv_test_redis_tls_group_setup -- group setup with drv_test_srv over
 * TLS (drv_test_redis_start_tls, no client certificates required). */
int drv_test_redis_tls_group_setup(void **st);

/* A host name for 127.0.0.1 that drv_test_hosts_entry puts into
 * /etc/hosts; the TLS server's certificate names it. */
#define DRV_TEST_HOSTS_NAME "drover-test-redis"

/*
 * drv_test_hosts_entry -- add "127.0.0.1 drover-test-redis" to /etc/hosts
 * unless a line names it already (it is never removed: other tests may be
 * using it). 0, or -errno when /etc/hosts cannot be read or written (the
 * caller skips, saying why).
 */
int drv_test_hosts_entry(void);

/* drv_test_redis_stop -- SIGTERM the server and wait; keep=1 keeps the dir. */
void drv_test_redis_stop(struct drv_test_redis *r);

/* drv_test_redis_kill -- SIGKILL the server (crash) and reap it. */
void drv_test_redis_kill(struct drv_test_redis *r);

/* drv_test_redis_restart -- start again on the same port and socket. */
int drv_test_redis_restart(struct drv_test_redis *r);

/* drv_test_redis_cleanup -- stop and remove the temp dir. */
void drv_test_redis_cleanup(struct drv_test_redis *r);

/* drv_test_redis_connect -- a blocking hiredis client (TCP; the unix
 * socket for a TLS server); NULL on error. */
redisContext *drv_test_redis_connect(const struct drv_test_redis *r);

/* drv_test_redis_cmd -- run a command on a blocking client, return the
 * reply (caller frees with freeReplyObject). Asserts the reply is not NULL. */
redisReply *drv_test_redis_cmd(redisContext *c, const char *fmt, ...);

/* drv_test_redis_ok -- run a command on a blocking client and fail the
 * test, naming the command and the error, unless Redis answered without
 * an error; the reply is freed. drv_test_redis_vok: the same with a
 * va_list. */
void drv_test_redis_ok(redisContext *c, const char *fmt, ...);
void drv_test_redis_vok(redisContext *c, const char *fmt, va_list ap);

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

/* drv_test_listen -- a TCP socket listening on 127.0.0.1 (backlog) on a
 * port the kernel picked, that port in *port (asserts each step). */
int drv_test_listen(int backlog, int *port);

/* drv_test_now_ms -- monotonic ms, for watchdogs (never speed checks). */
int64_t drv_test_now_ms(void);

/* drv_test_file_count -- how many times needle occurs in the file at path
 * (0 when it cannot be read). */
int drv_test_file_count(const char *path, const char *needle);

/* drv_test_file_lines -- the number of complete lines in the file at path
 * (0 when it cannot be read). */
int drv_test_file_lines(const char *path);

/* drv_test_file_num -- the number the file dir/name starts with (a pid or
 * a count a job wrote), or -1 when it is missing or holds none. */
long drv_test_file_num(const char *dir, const char *name);

/* drv_test_redis_info -- field name of INFO on c as a number (-1 when
 * INFO has no such field). Asserts a reply. */
long long drv_test_redis_info(redisContext *c, const char *name);

/* drv_test_field -- the value of field name in a flat [name, value, ...]
 * array reply (an XRANGE entry's fields, XINFO's answer): the last one
 * so named, or NULL. Asserts fv is an array. */
const redisReply *drv_test_field(const redisReply *fv, const char *name);

/* drv_test_hget_on -- HGET key field on c: a copy the caller frees, or
 * NULL (no such field, or no reply). drv_test_hget_is_on: 1 when it
 * equals want (a wait's condition). drv_test_expect_hget_on: fail the
 * test, naming key, field, the value found ("(none)") and want, unless it
 * equals want. droverd.h has the three on the fixture's client. */
char *drv_test_hget_on(redisContext *c, const char *key, const char *field);
int drv_test_hget_is_on(redisContext *c, const char *key, const char *field,
                        const char *want);
void drv_test_expect_hget_on(redisContext *c, const char *key,
                             const char *field, const char *want);

/* drv_test_redis_calls -- how many times the server of c ran command name
 * (calls= of cmdstat_NAME in INFO commandstats; "client|list" for a
 * subcommand), plus, with rejected, the calls it refused before running
 * them (rejected_calls=); 0 when never. name NULL: the calls of every
 * command but INFO itself (scripts' own commands included). Asserts a
 * reply. */
long long drv_test_redis_calls(redisContext *c, const char *name,
                               int rejected);

/* One connection of a server's CLIENT LIST. */
struct drv_test_client {
    long long id;   /* CLIENT ID */
    char name[128]; /* its CLIENT SETNAME ("" when none) */
    char cmd[64];   /* the last command it ran ("xreadgroup") */
    long long qbuf; /* bytes in its query buffer not yet run */
};

/* drv_test_clients -- the connections of c's server (CLIENT LIST, c's
 * own included) into out; returns how many. Fails the test when there
 * are more than n, or no reply. */
#define DRV_TEST_CLIENTS_MAX 256 /* an out of this size is enough */
int drv_test_clients(redisContext *c, struct drv_test_client *out, int n);

/*
 * T(name) -- an entry of a file's CMUnitTest table: the test with the
 * file's own per-test fixture, its functions setup and teardown (the
 * droverd fixture's entries are TD(name), droverd.h).
 */
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

/* assert_drv_ok -- assert rc == 0, printing drv_strerror and err->msg. */
#define assert_drv_ok(rc, err)                                            \
    do {                                                                  \
        int rc_ = (rc);                                                   \
        const struct drv_err *e_ = (err);                                 \
        if (rc_ != 0)                                                     \
            fail_msg("%s = %d (%s) %s", #rc, rc_, drv_strerror(rc_),      \
                     e_ ? e_->msg : "");                                  \
    } while (0)

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

/*
 * drv_test_spawn_io -- drv_test_spawn with stdout truncated into out_path
 * and stderr into err_path (either NULL: /dev/null). 0 or -errno.
 */
int drv_test_spawn_io(struct drv_test_proc *p, const char *const *argv,
                      const char *out_path, const char *err_path,
                      const char *const *env_extra);

/* drv_test_wait -- wait up to timeout_ms for the child to exit; returns
 * its exit code, 128+signal when signalled, or -ETIMEDOUT. */
int drv_test_wait(struct drv_test_proc *p, int64_t timeout_ms);

/* drv_test_kill -- send sig; then, if sig is SIGKILL, reap. */
void drv_test_kill(struct drv_test_proc *p, int sig);

/* drv_test_run -- run argv to completion (timeout_ms), capturing stdout
 * into out (size n, NUL-terminated); returns the exit code or <0. */
int drv_test_run(const char *const *argv, char *out, size_t n,
                 int64_t timeout_ms);

/* drv_test_pid_alive -- 1 if pid runs (/proc/PID/stat); a zombie or a
 * process being torn down is dead (in a container, pid 1 may not reap
 * orphans). */
int drv_test_pid_alive(long pid);

/* drv_test_pid_pgid -- the process group of pid, or -1 when it does not
 * run. */
long drv_test_pid_pgid(long pid);

/* drv_test_pgid_alive -- how many processes of process group pgid run
 * (zombies do not count), from /proc/PID/stat of every process. */
int drv_test_pgid_alive(long pgid);

/* drv_test_child_named -- the pid of a running child of ppid whose name
 * (/proc/PID/comm) is comm, or -1. */
long drv_test_child_named(long ppid, const char *comm);

/* drv_test_zombie_children -- how many children of ppid are zombies
 * (exited, not yet reaped by it). */
int drv_test_zombie_children(long ppid);

/* drv_test_fd_count -- open fds of process pid (/proc/PID/fd; the
 * caller's own count leaves out the fd used to read it), -1 if none. */
int drv_test_fd_count(long pid);

/* drv_test_file_contains -- 1 if the file at path contains needle. */
int drv_test_file_contains(const char *path, const char *needle);

/* drv_test_sleep_ms -- sleep: for pacing only (a test that waits for
 * something uses wait_until on what it can observe). */
void drv_test_sleep_ms(int64_t ms);

/* drv_test_filter_from_env -- run only the tests whose names match
 * $DROVER_TEST_FILTER (cmocka's pattern: * and ? wildcards), when set;
 * call it in main before cmocka_run_group_tests. */
void drv_test_filter_from_env(void);

/*
 * drv_test_http -- one HTTP/1.1 request to 127.0.0.1:port (Connection:
 * close): method, path, extra header lines (each "Name: value\r\n"; may
 * be NULL) and a body (may be NULL; sent as application/json). The whole
 * answer, head and body, into out (size n, NUL-terminated, cut when
 * longer); returns its status code, or 0 when none came (refused,
 * closed, or nothing within DRV_TEST_WAIT_MS).
 */
int drv_test_http(int port, const char *method, const char *path,
                  const char *hdrs, const char *body, char *out, size_t n);

/* drv_test_dial -- a TCP socket connected to 127.0.0.1:port, reads and
 * writes bounded by timeout_ms each; -errno when the connect fails. */
int drv_test_dial(int port, int64_t timeout_ms);

/* drv_test_http_request -- the bytes drv_test_http sends for those
 * arguments (caller frees), their length in *len. */
char *drv_test_http_request(int port, const char *method, const char *path,
                            const char *hdrs, const char *body, size_t *len);

/* ------------------------------------------------ files and the CLI */

/* drv_test_slurp -- the whole file at path, NUL-terminated (caller
 * frees), its length in *len (len may be NULL); fails the test when the
 * file cannot be read. */
char *drv_test_slurp(const char *path, size_t *len);

/* drv_test_wait_file_num -- wait_until the file dir/name holds a number
 * (drv_test_file_num: a pid or a count a job wrote), and return it. */
long drv_test_wait_file_num(const char *dir, const char *name);

/* One run of the drover CLI. */
struct drv_test_cli {
    char cmd[64]; /* the command (its first argument), for messages */
    int status; /* exit code, or 128+signal */
    char *out;  /* owned: all it wrote on stdout */
    char *err;  /* owned: all it wrote on stderr */
};

/*
 * drv_test_cli_run -- run bin/drover (drv_test_bin) with args
 * (NULL-terminated, at most 60), after "-c CFG" when cfg is not NULL,
 * with env (NAME=VALUE, NULL-terminated; may be NULL) added, to its end.
 * Its stdout and stderr go through dir/cliN.out and dir/cliN.err (left
 * there for a look after a failure) into r; free with drv_test_cli_fini.
 * A run still going after DRV_TEST_WAIT_MS is killed and fails the test.
 */
void drv_test_cli_run(struct drv_test_cli *r, const char *dir,
                      const char *cfg, const char *const *env,
                      const char *const *args);

/* drv_test_cli_fini -- free r's out and err. */
void drv_test_cli_fini(struct drv_test_cli *r);

/* drv_test_cli_take -- fail the test, showing stdout and stderr, unless
 * r's exit code is want; else r's stdout (caller frees), the rest of r
 * freed. */
char *drv_test_cli_take(struct drv_test_cli *r, int want);

/* drv_test_cli_out -- drv_test_cli_run without env, then
 * drv_test_cli_take. */
char *drv_test_cli_out(const char *dir, const char *cfg, int want,
                       const char *const *args);

/* ------------------------------------------------ the Redis fixture */

/*
 * One private redis-server per test binary, for cmocka's group setup:
 *
 *     return cmocka_run_group_tests(tests, drv_test_redis_group_setup,
 *                                   drv_test_redis_group_teardown);
 *
 * and drv_test_redis_fresh() in each test's setup (a test may stop, kill
 * or restart the server: the port and socket stay); it also arms the
 * watchdog for the test. A file with more to set up calls the two from its
 * own group functions.
 * DROVER_TEST_REDIS_URL adopts an external server instead (tests that stop
 * it skip); DROVER_TEST_KEEP=1 keeps the temp dir.
 */

/* drv_test_srv -- the binary's server (valid after the group setup). */
extern struct drv_test_redis drv_test_srv;

/* drv_test_redis_group_setup -- start drv_test_srv, ignore SIGPIPE; 0, or
 * -1 (cmocka then fails the group) with the reason on stderr. */
int drv_test_redis_group_setup(void **st);

/* drv_test_redis_group_teardown -- stop the watchdog and drv_test_srv,
 * remove the server's dir. */
int drv_test_redis_group_teardown(void **st);

/* drv_test_redis_fresh -- a clean server for the next test: started again
 * if a test left it stopped, then FLUSHALL (asserts both); then the
 * watchdog armed for DRV_TEST_WATCHDOG_S. */
void drv_test_redis_fresh(void);

/* ------------------------------------------------ watchdog */

/*
 * One guard against hangs (never a speed check): a thread that, unless
 * drv_test_watchdog_stop comes first, says the test hung, SIGKILLs every
 * child the harness started (drv_test_spawn, drv_test_run, redis-server)
 * and aborts the binary after secs seconds. Arm it in a test's setup, stop
 * it in the teardown (cmocka runs the teardown after a failed test too);
 * starting it again re-arms it. drv_test_redis_fresh and the droverd
 * fixture arm it.
 */
#define DRV_TEST_WATCHDOG_S 300 /* default guard of one test */

/* drv_test_watchdog_start -- arm the guard for secs seconds. */
void drv_test_watchdog_start(int secs);

/* drv_test_watchdog_stop -- disarm it and join its thread. */
void drv_test_watchdog_stop(void);

/* ------------------------------------------------ servers by port */

/* drv_test_connect_port -- a blocking client on 127.0.0.1:port (2 s
 * timeouts), NULL when it cannot connect. */
redisContext *drv_test_connect_port(int port);

/* drv_test_ask -- one command on a fresh connection to port: the reply
 * (caller frees), or NULL when the server does not answer. */
redisReply *drv_test_ask(int port, const char *fmt, ...);

/* drv_test_redis_external -- *r (zeroed first) stands for a server the
 * test started itself on 127.0.0.1:port (db 0): the fixtures use it,
 * never stop it. */
void drv_test_redis_external(struct drv_test_redis *r, int port);

/* drv_test_pings -- the server on port answers PING with PONG. */
int drv_test_pings(int port);

/* ------------------------------------------------ wait_until */

#define DRV_TEST_WAIT_MS 30000 /* deadline of every wait (hang guard) */

/* One wait's progress: its deadline and the next pause between tries. */
struct drv_test_poll {
    int64_t start_ms;    /* when the wait began */
    int64_t deadline_ms; /* when it gives up */
    int delay_ms;        /* next pause: 1 ms, doubling up to 50 ms */
    int tries;           /* conditions evaluated so far */
};

/* drv_test_poll_init -- a wait of at most timeout_ms from now. */
void drv_test_poll_init(struct drv_test_poll *p, int64_t timeout_ms);

/* drv_test_poll_next -- pause before the next try: 1, or 0 once the
 * deadline has passed (then the condition gets no more tries). */
int drv_test_poll_next(struct drv_test_poll *p);

/* drv_test_wait_failed -- fail the test: "FILE:LINE: timed out after N ms
 * waiting for WHAT" (what is a printf format), after running the
 * diagnostics hook (drv_test_on_wait_fail). Does not return. */
void drv_test_wait_failed(const char *file, int line,
                          const struct drv_test_poll *p, const char *what,
                          ...) __attribute__((format(printf, 4, 5)));

/* drv_test_on_wait_fail -- fn(arg) runs when a wait times out, before the
 * test fails (a fixture shows its logs); NULL removes it. */
void drv_test_on_wait_fail(void (*fn)(void *arg), void *arg);

/*
 * wait_until -- evaluate cond until it holds, pausing between tries, for
 * at most DRV_TEST_WAIT_MS (a hang guard: nothing is ever slow enough to
 * fail it on a healthy run). On timeout the test fails naming what: a
 * printf format and arguments evaluated after the last try, so they can
 * show the value last seen (Redis's wait_for_condition is the model):
 *
 *     wait_until(drv_test_file_contains(log, "ready"), "%s to say ready",
 *                log);
 */
#define wait_until(cond, ...)                                             \
    wait_until_ms(DRV_TEST_WAIT_MS, cond, __VA_ARGS__)

/* wait_until_ms -- wait_until with a hang guard of timeout_ms instead
 * (for a wait on something long, such as a thousand jobs). */
#define wait_until_ms(timeout_ms, cond, ...)                              \
    do {                                                                  \
        struct drv_test_poll p_;                                          \
        drv_test_poll_init(&p_, (timeout_ms));                            \
        while (!(cond))                                                   \
            if (!drv_test_poll_next(&p_))                                 \
                drv_test_wait_failed(__FILE__, __LINE__, &p_,             \
                                     __VA_ARGS__);                        \
    } while (0)

/*
 * wait_until_num -- wait_until for a number: evaluate expr (a long long)
 * until `value op want` holds; on timeout the message names what, the
 * comparison and the last value seen:
 *
 *     wait_until_num(drv_test_num(c, "XLEN q"), >=, 3, "length of q");
 */
#define wait_until_num(expr, op, want, what)                              \
    do {                                                                  \
        long long v_ = 0;                                                 \
        long long w_ = (want);                                            \
        wait_until((v_ = (expr)) op w_, "%s %s %lld (last seen %lld)",     \
                   (what), #op, w_, v_);                                  \
    } while (0)

/*
 * drv_test_pool_wait_stopping -- poll pool's stats until drv_pool_free has
 * begun (stopping), for at most DRV_TEST_WAIT_MS; 1 when it has, 0 on
 * timeout. It asserts nothing, so a helper thread may call it.
 */
struct drv_pool;
int drv_test_pool_wait_stopping(struct drv_pool *pool);

/*
 * drv_test_loop_run -- drv_loop_run(loop) under the same hang guard as
 * wait_until: a timer on the loop's base stops the loop after timeout_ms
 * (DRV_TEST_WAIT_MS). For a loop whose callbacks end it with
 * drv_loop_stop (the guard's pending timer keeps it from running out of
 * events). 0 when the callbacks stopped it, -ETIMEDOUT when the guard
 * did; the guard's timer is gone from the base either way.
 */
struct drv_loop;
int drv_test_loop_run(struct drv_loop *loop, int64_t timeout_ms);

#endif
