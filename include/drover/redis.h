/*
 * drover/redis.h -- an async Redis connection on the libevent loop. It
 * knows nothing of jobs.
 *
 * The transport is drover's own: a libevent bufferevent per connection,
 * a plain socket (TCP or unix) or OpenSSL on top of one (rediss://), one
 * code path for all three. hiredis (0.14.1) is used only for its RESP
 * reader and its command formatting.
 *
 * One struct drv_redis is one connection with one role: the worker makes
 * two, a "command" connection (XACK, scripts, XAUTOCLAIM) and a
 * "blocking" one (XREADGROUP BLOCK), so a blocking read never delays a
 * command. Each connection:
 *
 *   - connects by URL (drv_redis_url_parse): redis://[user:pass@]HOST:port/db,
 *     rediss://... (TLS) or unix:///path[?db=N]. HOST is a name or an IP
 *     literal. A name is resolved with getaddrinfo on a short-lived thread
 *     (never on the loop), again before every attempt, and every address
 *     it gives is tried in order; what a name resolved to is logged once
 *     per change;
 *   - with TLS, verifies the server's certificate (the CA file or the
 *     system store) and its name or IP (or opts.tls->server_name), sends
 *     SNI for names, presents a client certificate when one is set,
 *     requires TLS 1.2 or later, and resumes the previous session on a
 *     reconnect. A failed verification is a connection error like any
 *     other ("TLS: certificate verify failed: ..."), retried with backoff;
 *   - asks where to connect before each attempt: the target comes from the
 *     URL, from drv_redis_set_target, or from opts.locate (see "Where to
 *     connect" below) -- the hook Sentinel discovery and Cluster nodes use;
 *   - runs its setup after each connect: AUTH (user from the URL, password
 *     from the URL or else $DROVER_REDIS_PASSWORD), SELECT db (when != 0),
 *     CLIENT SETNAME (when a name is given), CLIENT ID (stored); then it is
 *     READY and the owner's on_state(READY) runs -- after every reconnect;
 *   - gives every command its own deadline. When one passes the whole
 *     connection is dropped (a Redis connection is a FIFO: a late reply
 *     cannot be skipped), that command fails with -ETIMEDOUT and every
 *     other one pending on the connection with DRV_EDOWN;
 *   - reconnects by itself with exponential backoff and jitter. The
 *     connect timeout bounds each address's connect and TLS handshake, and
 *     the name resolution;
 *   - on Redis Cluster, once attached to a route (drv_redis_cluster_
 *     attach), follows -ASK: the command goes again, after ASKING, to the
 *     node named, on a companion connection, and its callback gets that
 *     node's reply (stats.asks counts them).
 *
 * Commands issued while the connection is not READY fail fast: the call
 * returns 0 and the callback runs on a later loop turn with DRV_EDOWN.
 * Nothing is queued across a reconnect; callers retry after
 * on_state(READY). Any failed command (-ETIMEDOUT, DRV_EDOWN) may or may
 * not have been applied by Redis: make writes idempotent.
 *
 * Threads: everything here runs on the loop thread only (the resolver
 * thread touches nothing but its own request and, under a lock, the
 * loop's event to wake it).
 *
 * SIGPIPE: a write to a dead server raises SIGPIPE; the process must
 * ignore it (signal(SIGPIPE, SIG_IGN)) or it is killed.
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
/* drv_argv_addcat -- one argument: prefix (NUL-terminated) followed by
 * s[0..len) (binary-safe: a key name built from a job id). */
void drv_argv_addcat(struct drv_argv *a, const char *prefix, const char *s,
                     size_t len);

/* ------------------------------------------------------------------ URL */

#define DRV_REDIS_HOST_MAX 256 /* a DNS name or an IP literal, without
                                  brackets, and its NUL */
#define DRV_REDIS_PATH_MAX 108 /* sizeof sun_path */
#define DRV_REDIS_CRED_MAX 256 /* user name or password, decoded */

/* A parsed URL. Plain value: no heap, copy freely; wipe it when it holds a
 * password you are done with (explicit_bzero). */
struct drv_redis_url {
    int is_unix;                        /* 1: unix socket, 0: TCP */
    int tls;                            /* 1: rediss:// (TLS over TCP) */
    char host[DRV_REDIS_HOST_MAX];      /* TCP: name or IPv4/IPv6 literal */
    int port;                           /* TCP: 1..65535 (default 6379) */
    char path[DRV_REDIS_PATH_MAX];      /* unix: absolute socket path */
    int db;                             /* SELECT db; 0 = default */
    char user[DRV_REDIS_CRED_MAX];      /* ACL user; "" = none */
    char password[DRV_REDIS_CRED_MAX];  /* "" = none; never log it */
};

/*
 * drv_redis_url_parse -- parse url into *out. Accepted forms:
 *
 *   redis://HOST[:PORT][/DB]          HOST: a name, IPv4 or [IPv6]
 *   redis://[USER][:PASS]@HOST[:PORT][/DB]
 *   rediss://...                      the same, over TLS
 *   unix:///abs/path.sock[?db=N]
 *   unix://[USER][:PASS]@/abs/path.sock[?db=N]
 *
 * USER, PASS and the path may be percent-encoded (%40 for '@'). The
 * user info ends at the last '@', so a raw '@', ':' or '/' inside the
 * password still parses. A name must be a DNS name (letters, digits, '-',
 * '_' and dots; labels of 1..63, at most 253 in all); nothing is resolved
 * here. Returns 0, or DRV_ECONFIG with err->msg naming the problem (the
 * URL in the message is redacted). Any thread.
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

/* ------------------------------------------------------------ TLS */

/*
 * struct drv_redis_tls -- TLS settings of a rediss:// connection (the
 * config's redis.tls). Every string is borrowed by the call it is passed
 * to and copied or used before it returns; NULL or "" means unset.
 */
struct drv_redis_tls {
    const char *ca_file;      /* PEM CAs to trust; unset = the system store */
    const char *cert_file;    /* PEM client certificate (chain); unset = none */
    const char *key_file;     /* its private key; unset = cert_file */
    const char *server_name;  /* name to verify and send as SNI; unset = the
                                 host connected to */
    int no_verify;            /* 1 = do not verify the server (verify:
                                 false); 0 (default) = verify */
};

/* ------------------------------------------------------- where to connect */

/*
 * struct drv_redis_target -- one place to connect to: a TCP host (a name
 * or an IP literal) and port, or a unix socket path. TLS, the user, the
 * password and the db always come from the URL.
 */
struct drv_redis_target {
    int is_unix;                        /* 1: path, 0: host and port */
    char host[DRV_REDIS_HOST_MAX];      /* TCP: name or IP literal */
    int port;                           /* TCP: 1..65535 */
    char path[DRV_REDIS_PATH_MAX];      /* unix: absolute socket path */
};

/*
 * drv_redis_locate_fn -- "where to connect", asked on the loop thread
 * before every connection attempt (the first and each reconnect), with
 * *target holding the current target (the URL's, or the last one set).
 * Change *target and return 0 to connect there; return a negative code
 * (e.g. -EAGAIN: not known yet) to skip this attempt: it counts as a
 * failed attempt and the next one comes after the usual backoff (or at
 * once after drv_redis_reconnect). Must not call drv_redis_free on r (it
 * may issue commands on other connections, and call drv_redis_set_target
 * on r).
 */
struct drv_redis;
typedef int drv_redis_locate_fn(struct drv_redis *r,
                                struct drv_redis_target *target, void *ctx);

/*
 * drv_redis_url_scrub -- overwrite the password in url in place (an
 * argv string: afterwards ps and /proc/PID/cmdline show
 * redis://user:***@host, the bytes freed at the end set to NUL; a
 * password shorter than "***" becomes as many '*'). Copy the URL first.
 */
void drv_redis_url_scrub(char *url);

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
    const struct drv_redis_tls *tls; /* rediss:// settings; NULL = the
                                   defaults (system store, verify); only
                                   read during drv_redis_create */
    size_t max_string_bytes;    /* a string reply (also inside an array)
                                   longer than this arrives empty, its
                                   length kept (drv_redis_reply_len);
                                   0 = no limit */
    drv_redis_state_fn *on_state; /* may be NULL */
    void *ctx;                  /* borrowed: for on_state */
    drv_redis_locate_fn *locate; /* where to connect; NULL = the target */
    void *locate_ctx;           /* borrowed: for locate */
};

struct drv_redis_stats {
    uint64_t attempts;    /* connection attempts started */
    uint64_t connects;    /* times READY was reached */
    uint64_t disconnects; /* READY connections lost */
    uint64_t timeouts;    /* connections dropped by a deadline */
    uint64_t commands;    /* commands written to the connection */
    uint64_t failed_fast; /* commands failed with DRV_EDOWN while down */
    uint64_t resolves;    /* name resolutions started */
    uint64_t tls_handshakes; /* TLS handshakes completed */
    uint64_t tls_resumed; /* of which resumed a previous session */
    uint64_t asks;        /* Cluster: commands sent again after -ASK */
};

/*
 * drv_redis_create -- make a connection on loop and store it in *out.
 * Returns at once; connecting starts on the first loop turn and goes on
 * (with backoff) until READY, and again after every loss. opts and its
 * strings are copied; opts->ctx is borrowed until drv_redis_free. Returns
 * 0; DRV_ECONFIG with err filled for a bad URL or option, or TLS files
 * that cannot be loaded (*out stays NULL). $DROVER_REDIS_PASSWORD is read
 * here, and the TLS CAs and client certificate are loaded here (a
 * changed file is read again only by a new drv_redis). Loop thread.
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
 * loop turn, outside any I/O callback: every pending command callback
 * runs with -ECANCELED (replies that arrive in between are discarded and
 * reported -ECANCELED too), then the memory is freed. The loop must run
 * for that (drv_loop_run does not return before it is done). A second
 * drv_redis_free of the same r before then does nothing.
 */
void drv_redis_free(struct drv_redis *r);

/*
 * drv_redis_command -- send one command, binary-safe: argc arguments
 * argv[i] of argvlen[i] bytes (argvlen NULL: strlen). argv is copied into
 * the connection's output buffer before returning. Default deadline
 * (command_timeout_ms). Commands issued in one loop turn go out in one
 * write, and replies come back in order.
 *
 * SUBSCRIBE-family, MONITOR, HELLO and RESET are refused (-EINVAL): they
 * change the connection's protocol or undo its setup. Do not send SELECT
 * or CLIENT REPLY either: the db is reapplied on reconnect from the URL
 * only, and every command must get exactly one reply. Replies nested
 * deeper than 7 levels are a protocol error of hiredis 0.14's reader and
 * drop the connection (pending commands get DRV_EDOWN). Loop thread only.
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

/*
 * Where to connect. A connection's target starts as the URL's host and
 * port (or socket path). drv_redis_set_target replaces it for every later
 * attempt (a Cluster node, a primary found through Sentinel); it does not
 * touch the current connection. Called right after drv_redis_create, it
 * decides the first attempt too. opts.locate, when set, is asked before
 * each attempt and may change the target once more. With TLS the target's
 * host is the name verified (unless tls->server_name is set).
 */

/* drv_redis_set_target -- use t from the next attempt on (copied).
 * 0, or -EINVAL for an empty host/path or a bad port. Loop thread. */
int drv_redis_set_target(struct drv_redis *r,
                         const struct drv_redis_target *t);

/* drv_redis_get_target -- copy the current target into *out. */
void drv_redis_get_target(const struct drv_redis *r,
                          struct drv_redis_target *out);

/*
 * drv_redis_reconnect -- drop the current connection, if any (its pending
 * commands complete with DRV_EDOWN on a later turn, on_state(DOWN) runs if
 * it was READY), and start a new attempt on the next loop turn without
 * waiting for the backoff. why (static text) goes to the log. Never drops
 * anything from inside this call. Returns 0, or -ECANCELED if r is being
 * freed. Loop thread.
 */
int drv_redis_reconnect(struct drv_redis *r, const char *why);

/* drv_redis_state -- the current state. Loop thread. */
enum drv_redis_state drv_redis_state(const struct drv_redis *r);

/* drv_redis_flush -- write the commands queued on r now, instead of at
 * the loop's next turn (a plain socket that is READY; otherwise, and for
 * what the socket does not take, nothing changes). Loop thread. */
void drv_redis_flush(struct drv_redis *r);

/* What a connection says of itself; the strings are borrowed until its
 * next state change (name: for its lifetime). */
struct drv_redis_info {
    enum drv_redis_state state; /* as drv_redis_state */
    int64_t client_id;  /* CLIENT ID of the connection, read during setup;
                           -1 when not READY */
    const char *peer;   /* the address of the connection, numeric:
                           "127.0.0.1:6379", "[::1]:6379" or
                           "/path/to.sock"; "" when not connected */
    const char *last_error; /* why the last attempt failed or the last
                               connection was lost ("connect to
                               10.0.0.5:6379: Connection refused",
                               "cannot resolve host 'redis': Name or
                               service not known", "TLS: certificate verify
                               failed: ..."); "" while none has */
    const char *name;   /* the label given in opts ("redis" if none) */
};

/* drv_redis_get_info -- fill out with r's state, client id, peer, last
 * error and name. Loop thread. */
void drv_redis_get_info(const struct drv_redis *r, struct drv_redis_info *out);

/* drv_redis_get_stats -- counters since create. Loop thread. */
void drv_redis_get_stats(const struct drv_redis *r,
                         struct drv_redis_stats *out);

/* ------------------------------------------------------ blocking client */

/*
 * A blocking connection for short conversations (the admin CLI, the
 * dashboard): the same URLs, host names (resolved with getaddrinfo, which
 * blocks: not for a loop that must stay responsive), every address tried
 * in order, TLS settings and checks as the async connection, AUTH and
 * SELECT at connect. Not thread-safe; one thread at a time.
 */
struct drv_redis_sync;

/*
 * drv_redis_sync_connect -- connect to url (TLS with tls for rediss://,
 * NULL = defaults) and run AUTH (password from the URL or else
 * $DROVER_REDIS_PASSWORD) and SELECT. timeout_ms (0 = 5000) bounds the
 * whole connect and, later, each read or write. Returns 0 with *out (free
 * with drv_redis_sync_free), or with err (required) filled: DRV_ECONFIG
 * (bad URL or TLS files), DRV_EDOWN or -ETIMEDOUT (cannot connect, TLS
 * refused: "TLS: certificate verify failed: ..."), DRV_EREDIS ("AUTH
 * refused: ...").
 */
int drv_redis_sync_connect(const char *url, const struct drv_redis_tls *tls,
                           int64_t timeout_ms, struct drv_redis_sync **out,
                           struct drv_err *err);

/*
 * drv_redis_sync_run -- send the n commands of cmds in one write and read
 * their n replies into replies[0..n-1] (each owned by the caller:
 * freeReplyObject; error replies are replies). 0, or <0 with err filled
 * and every replies[i] NULL: the connection is then broken.
 */
int drv_redis_sync_run(struct drv_redis_sync *s, size_t n,
                       const struct drv_argv *cmds, redisReply **replies,
                       struct drv_err *err);

/*
 * drv_redis_sync_read -- read one more reply that no command of ours
 * asked for (a pub/sub message after SUBSCRIBE), waiting at most
 * timeout_ms for it. 0 with *reply (caller frees), or <0 (-ETIMEDOUT when
 * nothing came) with err filled: the connection is then broken.
 */
int drv_redis_sync_read(struct drv_redis_sync *s, int64_t timeout_ms,
                        redisReply **reply, struct drv_err *err);

/* drv_redis_sync_broken -- an I/O error or timeout happened: free it. */
int drv_redis_sync_broken(const struct drv_redis_sync *s);

/*
 * drv_redis_sync_cert_expiry -- the notAfter of the certificate the
 * server showed on this TLS connection, as Unix seconds, into *out.
 * Returns 0; -ENOTCONN on a plain connection; -ENOENT when the server
 * showed none or its date does not read (*out is then -1).
 */
int drv_redis_sync_cert_expiry(const struct drv_redis_sync *s, int64_t *out);

/* drv_redis_sync_free -- close; NULL does nothing. */
void drv_redis_sync_free(struct drv_redis_sync *s);

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
