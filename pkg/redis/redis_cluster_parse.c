/*
 * redis_cluster_parse.c -- the pure parts of Redis Cluster support: CRC16
 * and hash slots, node addresses, the host-less URL of a cluster setup,
 * the slot map of CLUSTER SLOTS and the MOVED/ASK redirections. Nothing
 * here does I/O.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "drover/error.h"
#include "drover/common.h"
#include "drover/parse.h"
#include "drover/redis_cluster.h"
#include "redis_int.h"

/* ------------------------------------------------------------- slots */

/* CRC16-CCITT (XMODEM), one table entry per byte value. */
static uint16_t crc16_table[256];
static int crc16_ready;

static void
crc16_init(void)
{
    unsigned i, b;

    for (i = 0; i < 256; i++) {
        uint16_t c = (uint16_t)(i << 8);

        for (b = 0; b < 8; b++)
            c = (uint16_t)((c & 0x8000U) ? ((unsigned)c << 1) ^ 0x1021U
                                          : (unsigned)c << 1);
        crc16_table[i] = c;
    }
    crc16_ready = 1;
}

uint16_t
drv_redis_cluster_crc16(const void *buf, size_t len)
{
    const unsigned char *p = buf;
    uint16_t crc = 0;
    size_t i;

    if (!crc16_ready)
        crc16_init(); /* idempotent: two threads compute the same table */
    for (i = 0; i < len; i++)
        crc = (uint16_t)((crc << 8) ^ crc16_table[((crc >> 8) ^ p[i]) &
                                                  0xffU]);
    return crc;
}

int
drv_redis_cluster_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);

    if (open != NULL) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);

        if (close != NULL && close > open + 1)
            return drv_redis_cluster_crc16(open + 1,
                                           (size_t)(close - open - 1)) &
                   (DRV_REDIS_CLUSTER_SLOTS - 1);
    }
    return drv_redis_cluster_crc16(key, len) & (DRV_REDIS_CLUSTER_SLOTS - 1);
}

/* Commands whose arguments hold no key (any node serves them). */
static int
cmd_keyless(int argc, char *const *argv)
{
    static const char *const words[] = {
        "MULTI", "EXEC", "DISCARD", "PING", "INFO", "CONFIG", "ACL",
        "SCRIPT", "CLUSTER", "CLIENT", "TIME", "ROLE", "DBSIZE", "COMMAND",
        "HELLO", "AUTH", "SELECT", "WAIT", "LASTSAVE", "MEMORY"};
    size_t i;

    if (argc < 2)
        return 1;
    for (i = 0; i < DRV_ARRAY_LEN(words); i++)
        if (strcasecmp(argv[0], words[i]) == 0)
            return 1;
    return 0;
}

int
drv_redis_cluster_cmd_slot(int argc, char *const *argv,
                           const size_t *argvlen)
{
    int i, k = 1;                       /* where the first key stands */

    if (cmd_keyless(argc, argv))
        return -1;
    if (strcasecmp(argv[0], "EVALSHA") == 0 ||
        strcasecmp(argv[0], "EVAL") == 0) {
        if (argc < 4 || strcmp(argv[2], "0") == 0)
            return -1;
        k = 3;
    } else if (strcasecmp(argv[0], "XREADGROUP") == 0 ||
               strcasecmp(argv[0], "XREAD") == 0) {
        for (k = -1, i = 1; i + 1 < argc && k < 0; i++)
            if (strcasecmp(argv[i], "STREAMS") == 0)
                k = i + 1;
        if (k < 0)
            return -1;
    } else if (strcasecmp(argv[0], "XINFO") == 0 ||
               strcasecmp(argv[0], "XGROUP") == 0 ||
               strcasecmp(argv[0], "OBJECT") == 0) {
        if (argc < 3)
            return -1;
        k = 2;
    }
    return drv_redis_cluster_slot(argv[k], argvlen[k]);
}

/* --------------------------------------------------------- addresses */

int
drv_redis_cluster_addr_parse(const char *s,
                             struct drv_redis_sentinel_addr *out,
                             struct drv_err *err)
{
    int rc = drv_redis_sentinel_addr_parse(s, out, err);
    const char *close;

    if (rc < 0)
        return rc;
    /* the sentinel form defaults to the sentinel port: a node's is 6379 */
    close = strrchr(s, ']');
    if (strchr(close != NULL ? close : s, ':') == NULL)
        out->port = DRV_REDIS_CLUSTER_PORT;
    return 0;
}

int
drv_redis_cluster_url_check(const char *url, struct drv_err *err)
{
    int db = drv__redis_hostless_url_check(url, "redis.cluster", "nodes",
                                           err);

    if (db > 0)
        return drv_err_set(err, -EINVAL, "a Redis Cluster has only "
                           "database 0: write redis:/// or redis:///0");
    return db;
}

/* --------------------------------------------------------------- map */

void
drv_redis_cluster_map_init(struct drv_redis_cluster_map *m)
{
    memset(m, 0, sizeof *m);
    m->magic = DRV_REDIS_CLUSTER_MAP_MAGIC;
    memset(m->owner, 0xff, sizeof m->owner);
}

/* Index of a in m's nodes, added when new; -E2BIG when full. */
static int
node_index(struct drv_redis_cluster_map *m,
           const struct drv_redis_sentinel_addr *a)
{
    int i;

    for (i = 0; i < m->nnodes; i++)
        if (m->nodes[i].port == a->port &&
            strcmp(m->nodes[i].host, a->host) == 0)
            return i;
    if (m->nnodes == DRV_REDIS_CLUSTER_NODES_MAX)
        return -E2BIG;
    m->nodes[m->nnodes] = *a;
    return m->nnodes++;
}

int
drv_redis_cluster_map_set(struct drv_redis_cluster_map *m, int slot,
                          const struct drv_redis_sentinel_addr *a)
{
    int i;

    DRV_CHECK_OBJ(m, DRV_REDIS_CLUSTER_MAP_MAGIC);
    if (slot < 0 || slot >= DRV_REDIS_CLUSTER_SLOTS)
        return -EINVAL;
    i = node_index(m, a);
    if (i < 0)
        return i;
    m->owner[slot] = (uint16_t)i;
    return 0;
}

const struct drv_redis_sentinel_addr *
drv_redis_cluster_map_node(const struct drv_redis_cluster_map *m, int slot)
{
    DRV_CHECK_OBJ(m, DRV_REDIS_CLUSTER_MAP_MAGIC);
    if (slot < 0 || slot >= DRV_REDIS_CLUSTER_SLOTS ||
        m->owner[slot] == DRV_REDIS_CLUSTER_NONE)
        return NULL;
    return &m->nodes[m->owner[slot]];
}

/* The master of one CLUSTER SLOTS range, [host, port, ...], into *a. */
static int
range_master(const redisReply *n, const struct drv_redis_sentinel_addr *asked,
             struct drv_redis_sentinel_addr *a, struct drv_err *err)
{
    if (n->type != REDIS_REPLY_ARRAY || n->elements < 2 ||
        n->element[0]->type != REDIS_REPLY_STRING ||
        n->element[1]->type != REDIS_REPLY_INTEGER ||
        n->element[1]->integer < 1 || n->element[1]->integer > 65535)
        return drv_err_set(err, DRV_EPROTO, "CLUSTER SLOTS: a master is "
                           "not [host, port, ...]");
    memset(a, 0, sizeof *a);
    if (n->element[0]->len == 0 || strcmp(n->element[0]->str, "?") == 0) {
        if (asked == NULL)
            return drv_err_set(err, DRV_EPROTO, "CLUSTER SLOTS: a master "
                               "names no address");
        snprintf(a->host, sizeof a->host, "%s", asked->host);
    } else if (n->element[0]->len >= sizeof a->host) {
        return drv_err_set(err, DRV_EPROTO, "CLUSTER SLOTS: host too "
                           "long");
    } else {
        memcpy(a->host, n->element[0]->str, n->element[0]->len);
    }
    a->port = (int)n->element[1]->integer;
    return 0;
}

int
drv_redis_cluster_map_parse(struct drv_redis_cluster_map *m,
                            const redisReply *reply,
                            const struct drv_redis_sentinel_addr *asked,
                            struct drv_err *err)
{
    size_t i;

    drv_redis_cluster_map_init(m);
    if (reply == NULL)
        return drv_err_set(err, DRV_EPROTO, "CLUSTER SLOTS: no reply");
    if (reply->type == REDIS_REPLY_ERROR)
        return drv_err_set(err, DRV_EREDIS, "CLUSTER SLOTS: %s",
                           reply->str);
    if (reply->type != REDIS_REPLY_ARRAY)
        return drv_err_set(err, DRV_EPROTO, "CLUSTER SLOTS: not an array");
    for (i = 0; i < reply->elements; i++) {
        const redisReply *r = reply->element[i];
        struct drv_redis_sentinel_addr a;
        long long s;
        int rc, ni;

        if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
            r->element[0]->type != REDIS_REPLY_INTEGER ||
            r->element[1]->type != REDIS_REPLY_INTEGER ||
            r->element[0]->integer < 0 ||
            r->element[1]->integer >= DRV_REDIS_CLUSTER_SLOTS ||
            r->element[0]->integer > r->element[1]->integer)
            return drv_err_set(err, DRV_EPROTO, "CLUSTER SLOTS: a range "
                               "is not [start, end, master, ...]");
        rc = range_master(r->element[2], asked, &a, err);
        if (rc < 0)
            return rc;
        ni = node_index(m, &a);
        if (ni < 0)
            return drv_err_set(err, ni, "CLUSTER SLOTS: more than %d "
                               "masters", DRV_REDIS_CLUSTER_NODES_MAX);
        for (s = r->element[0]->integer; s <= r->element[1]->integer; s++)
            m->owner[s] = (uint16_t)ni;
    }
    return 0;
}

/* ------------------------------------------------------ redirections */

int
drv_redis_cluster_redirect_parse(const redisReply *reply,
                                 struct drv_redis_cluster_redirect *out)
{
    const char *p, *sp;
    uint64_t slot = 0;
    size_t skip;

    memset(out, 0, sizeof *out);
    if (reply == NULL || reply->type != REDIS_REPLY_ERROR)
        return 0;
    if (strncmp(reply->str, "MOVED ", 6) == 0) {
        skip = 6;
    } else if (strncmp(reply->str, "ASK ", 4) == 0) {
        skip = 4;
        out->ask = 1;
    } else {
        return 0;
    }
    p = reply->str + skip;
    sp = strchr(p, ' ');
    if (sp == NULL || drv_parse_uint(p, (size_t)(sp - p),
                                     DRV_REDIS_CLUSTER_SLOTS - 1, &slot) != 0
        || strchr(sp + 1, ':') == NULL)
        return 0;
    out->slot = (int)slot;
    /* "host:port", an IPv6 host unbracketed: the port follows the last ':' */
    {
        const char *colon = strrchr(sp + 1, ':');
        size_t hl = (size_t)(colon - sp - 1);
        uint64_t port = 0;

        if (hl == 0 || hl >= sizeof out->to.host ||
            drv_parse_uint(colon + 1, strlen(colon + 1), 65535, &port) != 0
            || port == 0)
            return 0;
        memcpy(out->to.host, sp + 1, hl);
        out->to.host[hl] = '\0';
        out->to.port = (int)port;
    }
    return 1;
}

int
drv_redis_cluster_ask_to(const redisReply *reply,
                         const struct drv_redis_sentinel_addr *queued,
                         struct drv_redis_sentinel_addr *to)
{
    struct drv_redis_cluster_redirect rd;

    if (drv_redis_cluster_redirect_parse(reply, &rd)) {
        if (!rd.ask)
            return 0;
        *to = rd.to;
        return 1;
    }
    if (queued != NULL && reply != NULL &&
        reply->type == REDIS_REPLY_ERROR && reply->str != NULL &&
        strncmp(reply->str, "EXECABORT", 9) == 0 &&
        (reply->str[9] == ' ' || reply->str[9] == '\0')) {
        *to = *queued;
        return 1;
    }
    return 0;
}

int
drv_redis_cluster_transient(const redisReply *reply)
{
    static const char *const codes[] = {"MOVED ", "ASK ", "TRYAGAIN",
                                        "CLUSTERDOWN"};
    size_t i;

    if (reply == NULL || reply->type != REDIS_REPLY_ERROR ||
        reply->str == NULL)
        return 0;
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strncmp(reply->str, codes[i], strlen(codes[i])) == 0)
            return 1;
    return 0;
}
