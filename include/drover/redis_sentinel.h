/*
 * drover/redis_sentinel.h -- finding the Redis primary through Redis
 * Sentinel. It knows nothing of jobs.
 *
 * With `redis.sentinel` configured, the URL names no host: it carries the
 * scheme, the user and the db (redis:///0, redis://drover@/2). The host
 * and port of the primary come from the sentinels:
 *
 *   1. ask the sentinels, one after the other, SENTINEL
 *      get-master-addr-by-name MASTER; an unreachable sentinel is skipped
 *      (every connect and command has a deadline), the first address
 *      answered is taken, and the sentinel that answered is asked first
 *      next time;
 *   2. connect there and check ROLE: a node whose first ROLE element is not
 *      "master" is never used (a sentinel that has not yet heard of a
 *      failover still names the old primary): ask again after a short
 *      pause;
 *   3. keep asking while connected (every DRV_REDIS_SENTINEL_POLL_MS) and
 *      move when the answer changes, so a switch is followed even while
 *      the old primary still accepts connections; ask at once when a data
 *      connection is lost or a command gets READONLY.
 *
 * This file holds the pure parts (address and URL forms, the replies of
 * SENTINEL get-master-addr-by-name and ROLE, the +switch-master message),
 * usable from any thread, and the discovery object that owns the
 * connections to the sentinels (loop thread only).
 */
#ifndef DROVER_REDIS_SENTINEL_H
#define DROVER_REDIS_SENTINEL_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "drover/error.h"

#define DRV_REDIS_SENTINEL_PORT 26379  /* default port of a sentinel */
#define DRV_REDIS_SENTINEL_HOST_MAX 256 /* host name or address + NUL */
#define DRV_REDIS_SENTINEL_NAME_MAX 128 /* master name + NUL */

/* A host and port: what a sentinel names, or a sentinel's own address. */
struct drv_redis_sentinel_addr {
    char host[DRV_REDIS_SENTINEL_HOST_MAX]; /* name, IPv4 or IPv6 (no
                                               brackets) */
    int port;                               /* 1..65535 */
};

/*
 * drv_redis_sentinel_addr_parse -- parse "HOST[:PORT]" or "[IPv6][:PORT]"
 * (the form of redis.sentinel.addrs) into *out; the port defaults to
 * DRV_REDIS_SENTINEL_PORT. Returns 0 or -EINVAL with err (may be NULL)
 * saying why. Any thread.
 */
int drv_redis_sentinel_addr_parse(const char *s,
                                  struct drv_redis_sentinel_addr *out,
                                  struct drv_err *err);

/*
 * drv_redis_sentinel_url_check -- 0 when url fits a sentinel setup: scheme
 * redis:// or rediss://, optional user info, NO host and no port (the
 * sentinels give them), optional /DB: "redis://", "redis:///2",
 * "rediss://drover@/0". Else -EINVAL with err (may be NULL). Any thread.
 */
int drv_redis_sentinel_url_check(const char *url, struct drv_err *err);

/*
 * drv_redis_sentinel_url_at -- the URL of the node at a: url (which passed
 * drv_redis_sentinel_url_check) with the host and port put in, into out
 * (size n): "redis://drover@/2" at 10.0.0.5:6380 gives
 * "redis://drover@10.0.0.5:6380/2"; an IPv6 address gets brackets.
 * Returns 0, or -ENAMETOOLONG when out is too small. Any thread.
 */
int drv_redis_sentinel_url_at(const char *url,
                              const struct drv_redis_sentinel_addr *a,
                              char *out, size_t n);

/*
 * drv_redis_sentinel_conn_url -- the URL of the sentinel at a, into out
 * (size n): the scheme of data_url (redis:// or rediss://), user (NULL or
 * "" = none) and the password from $DROVER_SENTINEL_PASSWORD (both
 * percent-encoded), no db. Returns 0, or -ENAMETOOLONG (out wiped). Any
 * thread. Wipe out when done: it may hold a password.
 */
int drv_redis_sentinel_conn_url(const char *data_url, const char *user,
                                const struct drv_redis_sentinel_addr *a,
                                char *out, size_t n);

/*
 * drv_redis_sentinel_parse_master -- the reply of SENTINEL
 * get-master-addr-by-name: a two-element array [host, port] fills *out and
 * gives 0; nil (the sentinel does not monitor that name) gives -ENOENT;
 * an error reply DRV_EREDIS; anything else DRV_EPROTO. err (may be NULL)
 * says which. Any thread.
 */
int drv_redis_sentinel_parse_master(const redisReply *reply,
                                    struct drv_redis_sentinel_addr *out,
                                    struct drv_err *err);

/*
 * drv_redis_sentinel_parse_role -- the reply of ROLE: 1 when its first
 * element is "master", 0 when it is anything else ("slave", "sentinel"),
 * DRV_EREDIS for an error reply, DRV_EPROTO for another shape. err (may
 * be NULL) names the role found or the problem. Any thread.
 */
int drv_redis_sentinel_parse_role(const redisReply *reply,
                                  struct drv_err *err);

/* A +switch-master event: "<name> <old-ip> <old-port> <new-ip> <new-port>". */
struct drv_redis_sentinel_switch {
    char name[DRV_REDIS_SENTINEL_NAME_MAX]; /* the master's name */
    struct drv_redis_sentinel_addr from;    /* the old primary */
    struct drv_redis_sentinel_addr to;      /* the new primary */
};

/*
 * drv_redis_sentinel_parse_switch -- parse the payload of a message on a
 * sentinel's +switch-master channel (len bytes of text) into *out.
 * Returns 0 or DRV_EPROTO with err (may be NULL). Any thread.
 */
int drv_redis_sentinel_parse_switch(const char *text, size_t len,
                                    struct drv_redis_sentinel_switch *out,
                                    struct drv_err *err);

/* ----------------------------------------------------------- discovery */

struct drv_loop;
struct drv_redis;
struct drv_redis_opts;
struct drv_redis_target;
struct drv_redis_tls;
struct drv_redis_sentinel;

#define DRV_REDIS_SENTINEL_POLL_MS 500 /* default period of the asking */

struct drv_redis_sentinel_opts {
    const char *url;            /* required: the host-less data URL
                                   (drv_redis_sentinel_url_check); copied */
    const char *master;         /* required: the monitored name; copied */
    const char *const *addrs;   /* required: "HOST[:PORT]" of each
                                   sentinel, in the order to ask; copied */
    size_t naddrs;              /* entries of addrs, >= 1 */
    const char *user;           /* ACL user on the sentinels; NULL = none;
                                   the password is read from
                                   $DROVER_SENTINEL_PASSWORD; copied */
    const struct drv_redis_tls *tls; /* for rediss://: used for the
                                   sentinels and the ROLE check; NULL =
                                   defaults; only read during create */
    const char *name;           /* label for logs and CLIENT SETNAME;
                                   NULL = "sentinel"; copied */
    int64_t poll_ms;            /* period of the asking; 0 = default */
    int64_t timeout_ms;         /* connect and command deadline of the
                                   sentinel and ROLE connections;
                                   0 = 1000 */
};

/*
 * drv_redis_sentinel_create -- start finding the primary: connections to
 * every sentinel and one to check ROLE, and a timer that asks every
 * poll_ms. Returns 0 with *out set, or DRV_ECONFIG with err (a bad URL,
 * address or option; *out stays NULL). Loop thread.
 *
 * Data connections follow it: created with options pointed at it
 * (drv_redis_sentinel_conn_opts), then attached
 * (drv_redis_sentinel_attach).
 */
int drv_redis_sentinel_create(struct drv_loop *loop,
                              const struct drv_redis_sentinel_opts *opts,
                              struct drv_redis_sentinel **out,
                              struct drv_err *err);

/*
 * drv_redis_sentinel_free -- stop and release ds; NULL does nothing. Every
 * attached connection must have been detached (or freed after it was
 * detached) first; nothing of ds runs afterwards. Loop thread.
 */
void drv_redis_sentinel_free(struct drv_redis_sentinel *ds);

/*
 * drv_redis_sentinel_conn_opts -- point the options of a data connection
 * at ds: url (the host-less URL with a placeholder host in the reserved
 * .invalid domain, never connected to; borrowed for ds's lifetime),
 * locate (drv_redis_sentinel_locate: the target always comes from it)
 * and locate_ctx (ds).
 */
void drv_redis_sentinel_conn_opts(struct drv_redis_sentinel *ds,
                                  struct drv_redis_opts *o);

/*
 * drv_redis_sentinel_locate -- a drv_redis_locate_fn (ctx = ds): the
 * primary confirmed last (ROLE master), or -EAGAIN while none is known.
 * Each call also asks the sentinels again soon (on a later turn), so
 * every reconnect checks where the primary is.
 */
int drv_redis_sentinel_locate(struct drv_redis *r,
                              struct drv_redis_target *target, void *ctx);

/*
 * drv_redis_sentinel_attach -- r (borrowed until detached) follows ds:
 * when the primary moves, or ds learns that the node r uses is no longer
 * the primary, r is reconnected (drv_redis_reconnect) and its locate
 * call then gives the new place. Loop thread.
 */
void drv_redis_sentinel_attach(struct drv_redis_sentinel *ds,
                               struct drv_redis *r);

/* drv_redis_sentinel_detach -- ds forgets r (before r is freed). */
void drv_redis_sentinel_detach(struct drv_redis_sentinel *ds,
                               struct drv_redis *r);

/*
 * drv_redis_sentinel_suspect -- a command got READONLY (or another sign
 * that the node is not the primary): forget the primary, reconnect the
 * attached connections (they wait in locate until the sentinels and ROLE
 * confirm a primary again) and ask at once. why is static text for the
 * log. Loop thread.
 */
void drv_redis_sentinel_suspect(struct drv_redis_sentinel *ds,
                                const char *why);

#endif
