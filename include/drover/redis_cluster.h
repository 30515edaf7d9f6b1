/*
 * drover/redis_cluster.h -- the pure parts of Redis Cluster support: the
 * hash slot of a key (CRC16 and hash tags), node addresses, the host-less
 * URL of a cluster setup, the slot map read from CLUSTER SLOTS, and the
 * MOVED and ASK redirections. Nothing here does I/O and nothing knows of
 * jobs; every function is usable from any thread.
 *
 * A cluster has DRV_REDIS_CLUSTER_SLOTS hash slots; each slot is served by
 * one master. The slot of a key is CRC16(key) mod 16384, where only the
 * part between the first '{' and the next '}' counts when that part is
 * not empty (a hash tag): P:{Q}:jobs and P:{Q}:delayed share the slot of
 * "Q", so a script may touch every key of one queue.
 */
#ifndef DROVER_REDIS_CLUSTER_H
#define DROVER_REDIS_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "drover/error.h"
#include "drover/redis_sentinel.h"

#define DRV_REDIS_CLUSTER_SLOTS 16384  /* hash slots of a cluster */
#define DRV_REDIS_CLUSTER_PORT 6379    /* default port of a node */
#define DRV_REDIS_CLUSTER_NODES_MAX 256 /* masters a map can hold */
#define DRV_REDIS_CLUSTER_NONE 0xffffU /* a slot no master serves */


/* drv_redis_cluster_crc16 -- CRC16-CCITT (XMODEM: poly 0x1021, init 0)
 * of len bytes, as Redis Cluster computes it: "123456789" -> 0x31C3. */
uint16_t drv_redis_cluster_crc16(const void *buf, size_t len);

/* drv_redis_cluster_slot -- the hash slot of a key of len bytes
 * (0..16383), honouring a hash tag. */
int drv_redis_cluster_slot(const char *key, size_t len);

/*
 * drv_redis_cluster_cmd_slot -- the slot of a command's first key (argv[0]
 * is the command's name): the key after STREAMS for XREAD/XREADGROUP, the
 * first of the keys for EVAL/EVALSHA, the third word for XINFO, XGROUP
 * and OBJECT, else the second word. -1 for a command without keys
 * (MULTI, EXEC, PING, INFO, CLUSTER, an EVAL of 0 keys ...): any node
 * serves it.
 */
int drv_redis_cluster_cmd_slot(int argc, char *const *argv,
                               const size_t *argvlen);

/*
 * drv_redis_cluster_addr_parse -- parse "HOST[:PORT]" or "[IPv6][:PORT]"
 * (the form of redis.cluster.nodes) into *out; the port defaults to
 * DRV_REDIS_CLUSTER_PORT. 0 or -EINVAL with err (may be NULL).
 */
int drv_redis_cluster_addr_parse(const char *s,
                                 struct drv_redis_sentinel_addr *out,
                                 struct drv_err *err);

/*
 * drv_redis_cluster_url_check -- 0 when url fits a cluster setup: scheme
 * redis:// or rediss://, optional user info, no host and no port (the
 * nodes give them), db 0 or none ("redis://", "rediss://drover@/0": a
 * cluster has one database). Else -EINVAL with err (may be NULL).
 */
int drv_redis_cluster_url_check(const char *url, struct drv_err *err);

/* Which master serves each slot, and where the masters are. */
struct drv_redis_cluster_map {
    unsigned magic;
#define DRV_REDIS_CLUSTER_MAP_MAGIC 0xc1a57e25U
    int nnodes;                         /* masters in nodes */
    struct drv_redis_sentinel_addr nodes[DRV_REDIS_CLUSTER_NODES_MAX];
    uint16_t owner[DRV_REDIS_CLUSTER_SLOTS]; /* index in nodes, or
                                                DRV_REDIS_CLUSTER_NONE */
};

/* drv_redis_cluster_map_init -- empty: no slot served. */
void drv_redis_cluster_map_init(struct drv_redis_cluster_map *m);

/*
 * drv_redis_cluster_map_parse -- fill *m (initialised first) from the
 * reply of CLUSTER SLOTS: [[start, end, [host, port, id...], replicas...]
 * ...]. A master that names no host ("" or "?": the node does not know its
 * own address) is taken to be at `asked` (the node the command went to;
 * may be NULL). Returns 0, DRV_EREDIS for an error reply, DRV_EPROTO for
 * another shape, -E2BIG past DRV_REDIS_CLUSTER_NODES_MAX masters; err (may
 * be NULL) says which.
 */
int drv_redis_cluster_map_parse(struct drv_redis_cluster_map *m,
                                const redisReply *reply,
                                const struct drv_redis_sentinel_addr *asked,
                                struct drv_err *err);

/*
 * drv_redis_cluster_map_set -- record that slot is served by the master
 * at a (from a MOVED reply), adding a as a node when new. 0, or -E2BIG.
 */
int drv_redis_cluster_map_set(struct drv_redis_cluster_map *m, int slot,
                              const struct drv_redis_sentinel_addr *a);

/* drv_redis_cluster_map_node -- the master serving slot, or NULL. */
const struct drv_redis_sentinel_addr *
drv_redis_cluster_map_node(const struct drv_redis_cluster_map *m, int slot);

/* A redirection: "MOVED 3999 127.0.0.1:6381" or "ASK 3999 ...". */
struct drv_redis_cluster_redirect {
    int ask;                            /* 1: ASK (this command only), 0:
                                           MOVED (the slot moved) */
    int slot;                           /* 0..16383 */
    struct drv_redis_sentinel_addr to;   /* the node to ask */
};

/*
 * drv_redis_cluster_redirect_parse -- 1 and *out filled when reply is a
 * MOVED or ASK error, 0 when it is anything else (NULL included).
 */
int drv_redis_cluster_redirect_parse(const redisReply *reply,
                                     struct drv_redis_cluster_redirect *out);

/*
 * drv_redis_cluster_ask_to -- where an -ASK sends a failed command: 1 and
 * *to filled when reply is "ASK slot host:port", or the EXECABORT of a
 * MULTI block one of whose queued commands got an ASK (queued: that
 * ASK's node, NULL when none did); else 0 (MOVED, any other reply, NULL).
 */
int drv_redis_cluster_ask_to(const redisReply *reply,
                             const struct drv_redis_sentinel_addr *queued,
                             struct drv_redis_sentinel_addr *to);

/*
 * drv_redis_cluster_transient -- 1 when reply is an error that means "not
 * here, not now" on a cluster: MOVED, ASK, TRYAGAIN (a multi-key command
 * during a migration), CLUSTERDOWN. The command was not applied.
 */
int drv_redis_cluster_transient(const redisReply *reply);

/* ----------------------------------------------------------- the map */

/*
 * struct drv_redis_cluster -- keeps the slot map of a cluster and points
 * data connections at the master of their slot (loop thread only):
 *
 *   - one connection of its own to a seed node (the configured nodes,
 *     tried in turn) asks CLUSTER SLOTS when it is READY, every
 *     DRV_REDIS_CLUSTER_POLL_MS, and soon after any redirection or data
 *     connection attempt;
 *   - a data connection is created with options pointed at a route
 *     (drv_redis_cluster_route: one slot; drv_redis_cluster_route_opts),
 *     then attached to the route: before every attempt it is pointed
 *     at the master of its slot (-EAGAIN while the map has no owner);
 *   - when the map changes the owner of a route's slot, its connection is
 *     reconnected (a MOVED reply does this at once: drv_redis_cluster_
 *     redirected records the new owner from the reply itself);
 *   - an attached connection follows -ASK by itself (a slot being
 *     migrated, the key on the importing node): ASKING and the same
 *     command go to that node on a companion connection with the same
 *     settings, under the command's deadline, and the command's callback
 *     gets the reply from there (a script not loaded there falls back to
 *     EVAL; one hop: an -ASK from the importing node reaches the caller).
 * It never sends anything on the data connections.
 */
struct drv_loop;
struct drv_redis;
struct drv_redis_opts;
struct drv_redis_target;
struct drv_redis_tls;
struct drv_redis_cluster;
struct drv_redis_cluster_route;

#define DRV_REDIS_CLUSTER_POLL_MS 5000 /* CLUSTER SLOTS while connected */

struct drv_redis_cluster_opts {
    const char *url;            /* required: the host-less URL
                                   (drv_redis_cluster_url_check); copied */
    const char *const *nodes;   /* required: "HOST[:PORT]" of each seed
                                   node; copied */
    size_t nnodes;              /* >= 1 */
    const struct drv_redis_tls *tls; /* rediss:// settings, or NULL */
    const char *name;           /* log label and CLIENT SETNAME of the seed
                                   connection; NULL = "cluster" */
    int64_t timeout_ms;         /* connect and command timeout of the seed
                                   connection; 0 = 2000 */
};

/* drv_redis_cluster_create -- 0, or DRV_ECONFIG with err for a bad url or
 * node address. Starts connecting to the first seed. */
int drv_redis_cluster_create(struct drv_loop *loop,
                             const struct drv_redis_cluster_opts *o,
                             struct drv_redis_cluster **out,
                             struct drv_err *err);

/* drv_redis_cluster_free -- every route must be detached first (the data
 * connections freed or detached). NULL does nothing. */
void drv_redis_cluster_free(struct drv_redis_cluster *c);

/* drv_redis_cluster_route -- a new route for slot, owned by c (freed with
 * it): the ctx of drv_redis_cluster_locate for one data connection. */
struct drv_redis_cluster_route *
drv_redis_cluster_route(struct drv_redis_cluster *c, int slot);

/* drv_redis_cluster_route_opts -- point the options of a data connection
 * at route: url (the host-less URL with a first seed's address put in,
 * borrowed from the cluster), locate (drv_redis_cluster_locate, which
 * picks the real target) and locate_ctx (route). */
void drv_redis_cluster_route_opts(struct drv_redis_cluster_route *route,
                                  struct drv_redis_opts *o);

/* drv_redis_cluster_attach -- r (created with route_opts) is
 * reconnected when the owner of the route's slot changes, and follows
 * -ASK from now on (see above). _detach before r is freed. */
void drv_redis_cluster_attach(struct drv_redis_cluster_route *route,
                              struct drv_redis *r);
void drv_redis_cluster_detach(struct drv_redis_cluster_route *route);

/* drv_redis_cluster_locate -- the locate hook of data connections (ctx:
 * their route). */
int drv_redis_cluster_locate(struct drv_redis *r,
                             struct drv_redis_target *target, void *ctx);

/*
 * drv_redis_cluster_redirected -- look at a failed command's reply: a
 * MOVED records the slot's new owner (reconnecting the routes of that
 * slot) and asks for the whole map soon; CLUSTERDOWN asks for the map;
 * TRYAGAIN (and an ASK that was not followed) is logged, at most every
 * 10 s, as a migration its commands wait for.
 * Returns drv_redis_cluster_transient(reply).
 */
int drv_redis_cluster_redirected(struct drv_redis_cluster *c,
                                 const redisReply *reply);

/* drv_redis_cluster_known -- 1 once a map has been read. */
int drv_redis_cluster_known(const struct drv_redis_cluster *c);

#endif
