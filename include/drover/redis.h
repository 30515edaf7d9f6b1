/*
 * drover/redis.h -- an async Redis connection on the libevent loop
 * (hiredis 0.14.1). It knows nothing of jobs.
 *
 * One struct drv_redis is one connection with one role: the worker makes
 * two, a "command" connection (XACK, scripts, XAUTOCLAIM) and a
 * "blocking" one (XREADGROUP BLOCK), so a blocking read never delays a
 * command. Each connection:
 *
 *   - connects by URL (drv_redis_url_parse): redis://[user:pass@]IP:port/db
 *     or unix:///path[?db=N]. Host names are rejected, never resolved:
 *     hiredis resolves synchronously and would block the loop;
 *     "localhost" is taken as 127.0.0.1;
 *   - runs its setup after each connect: AUTH (user from the URL, password
 *     from the URL or else $DROVER_REDIS_PASSWORD), SELECT db (when != 0),
 *     CLIENT SETNAME (when a name is given), CLIENT ID (stored); then it is
 *     READY and the owner's on_state(READY) runs -- after every reconnect;
 *   - gives every command its own deadline. When one passes the whole
 *     connection is dropped (a Redis connection is a FIFO: a late reply
 *     cannot be skipped), that command fails with -ETIMEDOUT and every
 *     other one pending on the connection with DRV_EDOWN;
 *   - reconnects by itself with exponential backoff and jitter.
 *
 * Commands issued while the connection is not READY fail fast: the call
 * returns 0 and the callback runs on a later loop turn with DRV_EDOWN.
 * Nothing is queued across a reconnect; callers retry after
 * on_state(READY). Any failed command (-ETIMEDOUT, DRV_EDOWN) may or may
 * not have been applied by Redis: make writes idempotent.
 *
 * Threads: everything here runs on the loop thread only.
 *
 * SIGPIPE: hiredis 0.14 writes with write(2); the process must ignore
 * SIGPIPE (signal(SIGPIPE, SIG_IGN)) or a write to a dead server kills it.
 */
#ifndef DROVER_REDIS_H
#define DROVER_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "drover/error.h"

struct drv_loop;
struct drv_redis;
struct drv_redis_script;

/* ------------------------------------------------------- argv builder */

/*
 * struct drv_argv -- a growable argument vector that owns a copy of each
 * argument (binary-safe: pointer + length). Caller memory: _init/_fini;
 * _reset empties it for reuse. Every command reaches Redis in this form.
 */
struct drv_argv {
    int argc;          /* number of arguments */
    int cap;           /* allocated slots */
    char **argv;       /* owned: each argument (copies) */
    size_t *argvlen;   /* owned: lengths */
};

void drv_argv_init(struct drv_argv *a);
void drv_argv_fini(struct drv_argv *a);
void drv_argv_reset(struct drv_argv *a);
void drv_argv_add(struct drv_argv *a, const char *s, size_t len);
void drv_argv_adds(struct drv_argv *a, const char *s);
void drv_argv_addf(struct drv_argv *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void drv_argv_addll(struct drv_argv *a, long long v);

/* ------------------------------------------------------------------ URL */

#define DRV_REDIS_HOST_MAX 64  /* an IP literal, without brackets */
#define DRV_REDIS_PATH_MAX 108 /* sizeof sun_path */
#define DRV_REDIS_CRED_MAX 256 /* user name or password, decoded */

/* A parsed URL. Plain value: no heap, copy freely; wipe it when it holds a
 * password you are done with (explicit_bzero). */
struct drv_redis_url {
    int is_unix;                        /* 1: unix socket, 0: TCP */
    char host[DRV_REDIS_HOST_MAX];      /* TCP: IPv4/IPv6 literal */
    int port;                           /* TCP: 1..65535 (default 6379) */
    char path[DRV_REDIS_PATH_MAX];      /* unix: absolute socket path */
    int db;                             /* SELECT db; 0 = default */
    char user[DRV_REDIS_CRED_MAX];      /* ACL user; "" = none */
    char password[DRV_REDIS_CRED_MAX];  /* "" = none; never log it */
};

/*
 * drv_redis_url_parse -- parse url into *out. Accepted forms:
 *
 *   redis://HOST[:PORT][/DB]          HOST: IPv4, [IPv6] or localhost
 *   redis://[USER][:PASS]@HOST[:PORT][/DB]
 *   unix:///abs/path.sock[?db=N]
 *   unix://[USER][:PASS]@/abs/path.sock[?db=N]
 *
 * USER, PASS and the path may be percent-encoded (%40 for '@'). The
 * user info ends at the last '@', so a raw '@', ':' or '/' inside the
 * password still parses. A host name other than localhost is an error
 * (nothing is resolved). Returns 0, or DRV_ECONFIG with err->msg naming
 * the problem (the URL in the message is redacted). Any thread.
 */
int drv_redis_url_parse(const char *url, struct drv_redis_url *out,
                        struct drv_err *err);

/*
 * drv_redis_url_redact -- copy url into buf (size n, always
 * NUL-terminated, cut if short) with the password replaced by "***", for
 * logs: redis://user:***@10.0.0.1:6379/2. Works on any text, even one that
 * does not parse. Returns buf. Any thread.
 */
char *drv_redis_url_redact(const char *url, char *buf, size_t n);

/* ----------------------------------------------------------- connection */

enum drv_redis_state {
    DRV_REDIS_DOWN = 0,       /* no connection; a retry may be scheduled */
    DRV_REDIS_CONNECTING = 1, /* TCP/unix connect in progress */
    DRV_REDIS_SETUP = 2,      /* connected; AUTH/SELECT/SETNAME/ID running */
    DRV_REDIS_READY = 3       /* setup done: commands are accepted */
};

/*
 * drv_redis_reply_fn -- a command's completion.
 *   status 0:  a reply arrived; reply is non-NULL and may be an error reply
 *              (REDIS_REPLY_ERROR: see drv_redis_reply_err);
 *   status <0: no reply, reply is NULL: -ETIMEDOUT (this command's deadline
 *              passed), DRV_EDOWN (the connection was down or dropped),
 *              -ECANCELED (drv_redis_free), -ENOMEM.
 * reply is borrowed until the callback returns: copy what you keep. The
 * callback may issue commands and may call drv_redis_free on r.
 */
typedef void drv_redis_reply_fn(struct drv_redis *r, int status,
                                const redisReply *reply, void *ctx);

/*
 * drv_redis_state_fn -- the connection became DRV_REDIS_READY (setup done;
 * called after every (re)connect: re-arm blocking reads, re-run setup such
 * as XGROUP CREATE here) or DRV_REDIS_DOWN (a READY connection was lost;
 * called once per loss, after the pending commands' callbacks have run).
 * Never called from inside a drv_redis_* call, nor after drv_redis_free.
 * May issue commands and may call drv_redis_free.
 */
typedef void drv_redis_state_fn(struct drv_redis *r,
                                enum drv_redis_state state, void *ctx);

struct drv_redis_opts {
    const char *url;            /* required; copied */
    const char *name;           /* CLIENT SETNAME and log label; NULL = no
                                   SETNAME, label "redis"; copied; no
                                   spaces */
    int64_t connect_timeout_ms; /* connect phase; 0 = 2000 */
    int64_t command_timeout_ms; /* default per command; 0 = 5000 */
    int64_t backoff_initial_ms; /* retry n waits d = initial * 2^(n-1),
                                   capped, drawn in [d/2, d]; 0 = 100 */
    int64_t backoff_max_ms;     /* cap of d; 0 = 5000 */
    int keepalive_s;            /* TCP keepalive idle; 0 = 15, <0 = off */
    size_t max_string_bytes;    /* a string reply (also inside an array)
                                   longer than this arrives empty, its
                                   length kept (drv_redis_reply_len);
                                   0 = no limit */
    drv_redis_state_fn *on_state; /* may be NULL */
    void *ctx;                  /* borrowed: for on_state */
};

struct drv_redis_stats {
    uint64_t attempts;    /* connection attempts started */
    uint64_t connects;    /* times READY was reached */
    uint64_t disconnects; /* READY connections lost */
    uint64_t timeouts;    /* connections dropped by a deadline */
    uint64_t commands;    /* commands handed to hiredis */
    uint64_t failed_fast; /* commands failed with DRV_EDOWN while down */
};

/*
 * drv_redis_create -- make a connection on loop and store it in *out.
 * Returns at once; connecting starts on the first loop turn and goes on
 * (with backoff) until READY, and again after every loss. opts and its
 * strings are copied; opts->ctx is borrowed until drv_redis_free. Returns
 * 0; DRV_ECONFIG with err filled for a bad URL or option (*out stays
 * NULL). $DROVER_REDIS_PASSWORD is read here. Loop thread.
 *
 * on_state contracts: (a) if create fails it never runs; (b) otherwise it
 * runs on the loop thread, never from inside a drv_redis_* call, once per
 * transition (READY after each successful setup, DOWN once per loss of a
 * READY connection); (c) after drv_redis_free it never runs again.
 */
int drv_redis_create(struct drv_loop *loop, const struct drv_redis_opts *opts,
                     struct drv_redis **out, struct drv_err *err);

/*
 * drv_redis_free -- close and release r; NULL does nothing. Callable from
 * anywhere on the loop thread, including r's own callbacks. Callbacks are
 * cleared first (on_state never runs again); the work finishes on a later
 * loop turn, outside any hiredis callback: every pending command callback
 * runs with -ECANCELED (replies that arrive in between are discarded and
 * reported -ECANCELED too), then the memory is freed. The loop must run
 * for that (drv_loop_run does not return before it is done). A second
 * drv_redis_free of the same r before then does nothing.
 */
void drv_redis_free(struct drv_redis *r);

/*
 * drv_redis_command -- send one command, binary-safe: argc arguments
 * argv[i] of argvlen[i] bytes (argvlen NULL: strlen). argv is copied into
 * hiredis's buffer before returning. Default deadline
 * (command_timeout_ms). Commands issued in one loop turn go out in one
 * write, and replies come back in order.
 *
 * SUBSCRIBE-family, MONITOR, HELLO and RESET are refused (-EINVAL): they
 * change the connection's protocol or undo its setup. Do not send SELECT
 * or CLIENT REPLY either: the db is reapplied on reconnect from the URL
 * only, and every command must get exactly one reply. Replies nested
 * deeper than 7 levels are a protocol error in hiredis 0.14 and drop the
 * connection (pending commands get DRV_EDOWN). Loop thread only.
 *
 * Contracts: (a) on a negative return (-EINVAL bad arguments, -ECANCELED
 * r is being freed, -ENOMEM) cb never runs; (b) otherwise cb runs exactly
 * once, on the loop thread, never from inside this call (when r is not
 * READY it runs on a later turn with DRV_EDOWN); (c) drv_redis_free
 * completes it with -ECANCELED, and a dropped connection with DRV_EDOWN or
 * -ETIMEDOUT; none is ever dropped.
 */
int drv_redis_command(struct drv_redis *r, int argc, const char *const *argv,
                      const size_t *argvlen, drv_redis_reply_fn *cb,
                      void *ctx);

/*
 * drv_redis_command_timeout -- drv_redis_command with its own deadline:
 * timeout_ms > 0 that many ms from now, 0 the default, < 0 none (only for
 * commands that may wait forever by design; a dead peer is then noticed
 * only by TCP keepalive). A blocking read uses BLOCK ms plus a margin.
 * Same contracts (a)(b)(c) as drv_redis_command.
 */
int drv_redis_command_timeout(struct drv_redis *r, int64_t timeout_ms,
                              int argc, const char *const *argv,
                              const size_t *argvlen, drv_redis_reply_fn *cb,
                              void *ctx);

/*
 * drv_redis_cmd -- convenience: a command from NUL-terminated strings,
 * ended by NULL: drv_redis_cmd(r, cb, ctx, "GET", key, (char *)NULL).
 * Default deadline. Same contracts (a)(b)(c) as drv_redis_command.
 */
int drv_redis_cmd(struct drv_redis *r, drv_redis_reply_fn *cb, void *ctx,
                  ...) __attribute__((sentinel));

/*
 * drv_redis_send -- drv_redis_command_timeout with the command in a
 * builder (a is only read; the caller keeps it). Same contracts (a)(b)(c).
 */
int drv_redis_send(struct drv_redis *r, int64_t timeout_ms,
                   const struct drv_argv *a, drv_redis_reply_fn *cb,
                   void *ctx);

/*
 * drv_redis_multi -- MULTI, the n commands, EXEC, appended as one unit in
 * one call (so in one write), with one deadline (timeout_ms as in
 * drv_redis_command_timeout) and one callback: it gets EXEC's reply, an
 * array with one element per command, or an error reply (EXECABORT when
 * a command was refused while queueing). The QUEUED replies are consumed
 * here. Same contracts (a)(b)(c) as drv_redis_command.
 */
int drv_redis_multi(struct drv_redis *r, int64_t timeout_ms, size_t n,
                    const struct drv_argv *cmds,
                    drv_redis_reply_fn *cb, void *ctx);

/*
 * drv_redis_unblock -- send CLIENT UNBLOCK <id of blocked> on via (the
 * command connection), to end a BLOCK pending on the blocking connection
 * early (shutdown). The blocked command then completes with a nil reply,
 * as on its own timeout. cb gets the reply to CLIENT UNBLOCK (integer 1
 * when a client was unblocked, 0 when it was not blocked). Returns DRV_EDOWN
 * at once when blocked has no client id (it is not READY, so nothing is
 * blocked there). Same contracts (a)(b)(c) as drv_redis_command.
 */
int drv_redis_unblock(struct drv_redis *via, const struct drv_redis *blocked,
                      drv_redis_reply_fn *cb, void *ctx);

/* drv_redis_state -- the current state. Loop thread. */
enum drv_redis_state drv_redis_state(const struct drv_redis *r);

/* drv_redis_client_id -- CLIENT ID of the current connection, read during
 * setup; -1 when not READY. Loop thread. */
int64_t drv_redis_client_id(const struct drv_redis *r);

/* drv_redis_name -- the label given in opts ("redis" if none); borrowed
 * for r's lifetime. */
const char *drv_redis_name(const struct drv_redis *r);

/* drv_redis_get_stats -- counters since create. Loop thread. */
void drv_redis_get_stats(const struct drv_redis *r,
                         struct drv_redis_stats *out);

/* ---------------------------------------------------------------- reply */

/* drv_redis_reply_is_error -- reply is an error reply (not NULL). */
int drv_redis_reply_is_error(const redisReply *reply);

/*
 * drv_redis_reply_len -- the length of a string reply as Redis sent it:
 * reply->len, or for a string cut by max_string_bytes (it arrives with
 * len 0) its real length.
 */
size_t drv_redis_reply_len(const redisReply *reply);

/*
 * drv_redis_reply_error_is -- reply is an error reply whose code (first
 * word, e.g. "NOSCRIPT", "BUSYGROUP", "NOGROUP") equals code.
 */
int drv_redis_reply_error_is(const redisReply *reply, const char *code);

/*
 * drv_redis_result -- fold a completion into one code: status if < 0
 * (err->msg: its text); DRV_EREDIS if reply is an error reply (err->msg:
 * the error text, cut to fit); 0 otherwise. err may be NULL.
 */
int drv_redis_result(int status, const redisReply *reply,
                     struct drv_err *err);

/* -------------------------------------------------------------- scripts */

/*
 * drv_redis_script_create -- a Lua script: text (len bytes) copied and its
 * SHA1 computed locally. Never NULL (out of memory aborts). Any thread.
 */
struct drv_redis_script *drv_redis_script_create(const char *text,
                                                 size_t len);

/* drv_redis_script_free -- NULL does nothing. No call using it may be
 * pending (the script is borrowed by drv_redis_eval until its callback). */
void drv_redis_script_free(struct drv_redis_script *s);

/* drv_redis_script_sha -- the 40 lowercase hex digits; borrowed. */
const char *drv_redis_script_sha(const struct drv_redis_script *s);

/*
 * drv_redis_eval -- EVALSHA sha numkeys KEYS... ARGV...: keys and args are
 * copied (once, kept for the fallback), so the caller may free them on
 * return. On -NOSCRIPT (script cache empty: server restart, SCRIPT FLUSH)
 * it is sent again once as EVAL with the text, transparently: cb sees one
 * reply, under the original deadline (timeout_ms as in
 * drv_redis_command_timeout). The retry goes after commands issued in
 * between. s is borrowed until cb has run. Same contracts (a)(b)(c) as
 * drv_redis_command.
 */
int drv_redis_eval(struct drv_redis *r, const struct drv_redis_script *s,
                   int64_t timeout_ms, const struct drv_argv *keys,
                   const struct drv_argv *args, drv_redis_reply_fn *cb,
                   void *ctx);

#endif
