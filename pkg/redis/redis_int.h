/*
 * redis_int.h -- pkg/redis declarations shared between its files and
 * reached by its unit tests. Not a public interface.
 */
#ifndef DROVER_REDIS_INT_H
#define DROVER_REDIS_INT_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event_struct.h>
#include <openssl/ssl.h>

#include "drover/error.h"
#include "drover/redis.h"

struct addrinfo;
struct event;

#define DRV__REDIS_SHA1_HEX 41 /* 40 hex digits and a NUL */

/* drv__redis_sha1_hex -- SHA1 of data as lowercase hex into out. */
void drv__redis_sha1_hex(const void *data, size_t len,
                         char out[DRV__REDIS_SHA1_HEX]);

/* ----------------------------------------------------- redis_ossl.c */

/*
 * drv__redis_tls_load -- open OpenSSL and libevent's OpenSSL bufferevent
 * (dlopen, once per process; drover does not link them). 0, or
 * DRV_ECONFIG with err saying what could not be loaded. Called by
 * drv__redis_tls_ctx before any other OpenSSL call. Any thread.
 */
int drv__redis_tls_load(struct drv_err *err);

/* drv__redis_ossl_soname -- what drv__redis_tls_load opens. Swappable for
 * fault injection: a test names a library that does not exist, before
 * the first load. */
extern const char *drv__redis_ossl_soname;

/* ------------------------------------------------------ redis_tls.c */

/*
 * drv__redis_tls_ctx -- a client SSL_CTX for tls (NULL = defaults): TLS
 * 1.2 at least; unless tls->no_verify, peer verification against
 * tls->ca_file or else the system store; the client certificate and key
 * when cert_file is set. Returns NULL with err (DRV_ECONFIG, naming the
 * file and OpenSSL's reason) when a file cannot be used or OpenSSL
 * cannot be loaded (drv__redis_tls_load); -ENOMEM aborts.
 * The caller frees it with SSL_CTX_free. Any thread.
 */
SSL_CTX *drv__redis_tls_ctx(const struct drv_redis_tls *tls,
                            struct drv_err *err);

/*
 * drv__redis_tls_ssl -- an SSL for one connection made from ctx, in
 * client mode: name is what the certificate must match (an IP literal is
 * checked as an IP address, anything else as a DNS name, also sent as
 * SNI). NULL on out of memory. The caller owns it.
 */
SSL *drv__redis_tls_ssl(SSL_CTX *ctx, const char *name);

/*
 * drv__redis_tls_describe -- the text of a failed TLS handshake or I/O
 * into buf: "TLS: certificate verify failed: REASON (host NAME)" when the
 * peer's certificate was refused, else "TLS: " and OpenSSL's reason (ossl
 * = an error code from the error queue, 0 for none), else "TLS: " and
 * strerror(sys) (sys = errno, 0 for "connection closed"). early: it
 * happened before the first reply (then, without a client certificate,
 * the text says the server may want one). Clears the thread's OpenSSL
 * error queue.
 */
void drv__redis_tls_describe(SSL *ssl, unsigned long ossl, int sys,
                             int early, const char *name, char *buf,
                             size_t n);

/* -------------------------------------------------- redis_resolve.c */

struct drv__redis_resolve;

/*
 * drv__redis_resolve_start -- resolve host:port (TCP) with getaddrinfo on
 * a new detached thread, which calls event_active(done_ev) when it has
 * the answer (done_ev belongs to the caller and must stay valid until
 * drv__redis_resolve_take or _abandon). Returns the request, or NULL with
 * *rc = -errno when the thread cannot start. Loop thread.
 */
struct drv__redis_resolve *drv__redis_resolve_start(const char *host,
                                                    int port,
                                                    struct event *done_ev,
                                                    int *rc);

/*
 * drv__redis_resolve_take -- after done_ev fired: 1 with *ai (owned by
 * the caller: freeaddrinfo) or *gai (getaddrinfo's code, *ai NULL), and
 * the request is released; 0 when the answer is not there yet (a stale
 * wake-up; the request stays).
 */
int drv__redis_resolve_take(struct drv__redis_resolve *q,
                            struct addrinfo **ai, int *gai);

/*
 * drv__redis_resolve_abandon -- the caller no longer wants the answer:
 * done_ev is never touched again and the thread frees everything when it
 * ends. q is gone on return.
 */
void drv__redis_resolve_abandon(struct drv__redis_resolve *q);

/*
 * drv__redis_hostless_url_check -- the URL of a setup whose nodes come from
 * elsewhere (Sentinel, Cluster): redis:// or rediss://, optional user
 * info, no host, optional /DB. Returns the db (0 when absent), or -EINVAL
 * with err (may be NULL) naming `what` (the config key, "redis.sentinel")
 * and `givers` (who gives the host, "sentinels").
 */
int drv__redis_hostless_url_check(const char *url, const char *what,
                                  const char *givers, struct drv_err *err);

/*
 * drv__redis_follow_ask -- from now on, a command of r answered "-ASK
 * slot host:port" (Redis Cluster: the slot is being migrated and the key
 * is on the importing node) is sent again, after ASKING, to that node on
 * a companion connection with r's settings, and its callback gets the
 * reply from there (redis.c, "ASK"). Costs a copy of each command's
 * bytes. Loop thread.
 */
void drv__redis_follow_ask(struct drv_redis *r);

/* ---------------------------------------------------- redis_arena.c */

/* The reply objects of one connection's reader (see redis_arena.c). */
struct drv__redis_arena {
    struct drv__redis_chunk *chunks; /* owned: kept across resets */
    struct drv__redis_chunk *cur;    /* borrowed from chunks: filling */
    struct drv__redis_chunk *big;    /* owned: blocks of large pieces */
    size_t max_string;               /* longer strings arrive empty;
                                        0 = no limit */
};

/* drv__redis_arena_init -- an empty arena (allocates nothing yet). */
void drv__redis_arena_init(struct drv__redis_arena *a, size_t max_string);
/* drv__redis_arena_reader -- a hiredis reader whose replies come from a
 * (NULL on out of memory). Its replies must not be passed to
 * freeReplyObject: they live until drv__redis_arena_reset. */
struct redisReader;
struct redisReader *drv__redis_arena_reader(struct drv__redis_arena *a);
/* drv__redis_arena_reset -- every reply of a is gone; call it only
 * between complete replies. */
void drv__redis_arena_reset(struct drv__redis_arena *a);
void drv__redis_arena_fini(struct drv__redis_arena *a);

/* ---------------------------------------------------- redis_watch.c */

struct drv_loop;
struct drv_redis_sentinel_addr;

/*
 * drv__redis_watch_fn -- the pass of a layer that follows where the data
 * lives: run on the loop thread by its watch on every poll, once after
 * drv__redis_watch_soon (ready NULL), and when one of the watch's own
 * connections becomes READY (ready = that connection).
 */
typedef void drv__redis_watch_fn(void *ctx, struct drv_redis *ready);

/* The part a cluster or sentinel layer is built on (redis_watch.c):
 * embedded in the layer, zeroed with it. */
struct drv__redis_watch {
    unsigned magic;
#define DRV__REDIS_WATCH_MAGIC 0x3a7c4e55U
    struct drv_loop *loop;           /* borrowed */
    char *name;                      /* owned: the layer's log label */
    char *data_url;                  /* owned: the URL data connections
                                        are made with (the layer's
                                        locate points them) */
    const struct drv_redis_tls *tls; /* borrowed until the last
                                        drv__redis_watch_conn: own
                                        connections' rediss:// settings */
    int64_t timeout_ms;              /* own connections: connect and
                                        command deadline */
    drv__redis_watch_fn *pass;       /* the layer's pass */
    void *ctx;                       /* borrowed: for pass and the own
                                        connections' locate */
    struct drv_redis **conns;        /* owned: the own connections, each
                                        owned */
    size_t nconns;                   /* entries of conns */
    struct event poll_ev;            /* embedded: every poll_ms */
    struct event soon_ev;            /* embedded: a pass soon (activated) */
};

/*
 * drv__redis_watch_init -- w (zeroed or not) made a watch on loop for the
 * layer named name, whose data connections use data_url (both copied),
 * whose poll runs pass(ctx, NULL) every poll_ms (> 0) from the next loop
 * turn on; its own connections will use tls (NULL = defaults) and
 * timeout_ms (> 0).
 */
void drv__redis_watch_init(struct drv__redis_watch *w, struct drv_loop *loop,
                           const char *name, const char *data_url,
                           const struct drv_redis_tls *tls,
                           int64_t timeout_ms, int64_t poll_ms,
                           drv__redis_watch_fn *pass, void *ctx);

/* drv__redis_watch_fini -- free the own connections (their pending
 * callbacks run later with -ECANCELED: the layer's reply callbacks test
 * for it before touching the layer), the events, name and data_url. A
 * zeroed w (never initialised) is fine. */
void drv__redis_watch_fini(struct drv__redis_watch *w);

/*
 * drv__redis_watch_conn -- create an own connection to url (NULL = the
 * watch's data_url), named NAME-suffix after the watch, owned by w, into
 * *out (borrowed by the caller until drv__redis_watch_fini): the watch's
 * timeout_ms for connecting and commands, a backoff of 100 ms to 2 s, its
 * tls; locate (with its ctx; NULL = the URL's target) picks where each
 * attempt goes. Returns drv_redis_create's code.
 */
int drv__redis_watch_conn(struct drv__redis_watch *w, const char *url,
                          const char *suffix, drv_redis_locate_fn *locate,
                          struct drv_redis **out, struct drv_err *err);

/* drv__redis_watch_soon -- run the pass on a coming loop turn (once, however
 * often it is asked before). */
void drv__redis_watch_soon(struct drv__redis_watch *w);

/* drv__redis_addr_same -- 1 when a and b are the same host and port. */
int drv__redis_addr_same(const struct drv_redis_sentinel_addr *a,
                         const struct drv_redis_sentinel_addr *b);

/* drv__redis_target_is -- 1 when t is the TCP target at host and port a. */
int drv__redis_target_is(const struct drv_redis_target *t,
                         const struct drv_redis_sentinel_addr *a);

/* drv__redis_addr_str -- "host:port" (brackets around an IPv6 host) into
 * buf (size n); returns buf. */
const char *drv__redis_addr_str(const struct drv_redis_sentinel_addr *a,
                                char *buf, size_t n);

/* drv__redis_locate_at -- how a locate hook ends: *t pointed at a and 0,
 * or -EAGAIN (wait: nowhere known yet) when a is NULL. */
int drv__redis_locate_at(struct drv_redis_target *t,
                         const struct drv_redis_sentinel_addr *a);

/* drv__redis_target_at -- *t (wiped first) pointed at host and port a
 * (redis_sentinel_parse.c). */
void drv__redis_target_at(struct drv_redis_target *t,
                          const struct drv_redis_sentinel_addr *a);

#endif
