/*
 * test_redis_cluster.c -- the pure parts of Redis Cluster support: CRC16
 * and hash slots (against values Redis itself gives), node addresses, the
 * host-less URL, the slot map of CLUSTER SLOTS and MOVED/ASK parsing.
 * Replies are built by hiredis's own reader from RESP text.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "drover/common.h"
#include "drover/redis_cluster.h"

/* The reply hiredis reads from RESP text (caller frees). */
static redisReply *
resp(const char *text)
{
    redisReader *rd = redisReaderCreate();
    void *out = NULL;

    assert_non_null(rd);
    assert_int_equal(redisReaderFeed(rd, text, strlen(text)), REDIS_OK);
    assert_int_equal(redisReaderGetReply(rd, &out), REDIS_OK);
    assert_non_null(out);
    redisReaderFree(rd);
    return out;
}

static void
test_redis_cluster_crc16(void **state)
{
    (void)state;
    /* the check value of CRC16/XMODEM, and the Redis Cluster spec's */
    assert_int_equal(drv_redis_cluster_crc16("123456789", 9), 0x31C3);
    assert_int_equal(drv_redis_cluster_crc16("", 0), 0);
    /* CLUSTER KEYSLOT answers (Redis 7.0) */
    assert_int_equal(drv_redis_cluster_slot("foo", 3), 12182);
    assert_int_equal(drv_redis_cluster_slot("bar", 3), 5061);
    assert_int_equal(drv_redis_cluster_slot("hello", 5), 866);
    assert_int_equal(drv_redis_cluster_slot("123456789", 9), 12739);
}

static void
test_redis_cluster_hash_tag(void **state)
{
    int q = drv_redis_cluster_slot("Q", 1);

    (void)state;
    /* the part in the first {...} counts */
    assert_int_equal(drv_redis_cluster_slot("drover:{Q}:jobs", 15), q);
    assert_int_equal(drv_redis_cluster_slot("x{Q}y{z}", 8), q);
    assert_int_equal(drv_redis_cluster_slot("{user1000}.following", 20),
                     drv_redis_cluster_slot("user1000", 8));
    /* an empty tag or no '}' after the first '{': the whole key */
    assert_int_equal(drv_redis_cluster_slot("{}Q", 3),
                     drv_redis_cluster_crc16("{}Q", 3) & 16383);
    assert_int_equal(drv_redis_cluster_slot("a{Q", 3),
                     drv_redis_cluster_crc16("a{Q", 3) & 16383);
    assert_int_equal(drv_redis_cluster_slot("{}{Q}", 5),
                     drv_redis_cluster_crc16("{}{Q}", 5) & 16383);
}

/* A command's slot is its first key's, wherever the command keeps it. */
static void
test_redis_cluster_cmd_slot(void **state)
{
    static const struct {
        const char *words;     /* space-separated command */
        const char *key;       /* its first key, NULL: none */
    } cases[] = {
        {"HSET d:{Q}:job:1 a b", "Q"},
        {"xadd d:{Q}:jobs * f v", "Q"},
        {"EVALSHA abc 2 d:{Q}:jobs d:{R}:x 7", "Q"},
        {"EVAL return 0", NULL},
        {"EVAL return 0 0 arg", NULL},
        {"XREADGROUP GROUP g c COUNT 5 STREAMS d:{Q}:jobs >", "Q"},
        {"XREAD BLOCK 5 STREAMS {R}a 0", "R"},
        {"XREAD COUNT 5", NULL},
        {"XINFO GROUPS d:{Q}:jobs", "Q"},
        {"XGROUP CREATE d:{Q}:jobs g $", "Q"},
        {"OBJECT ENCODING", NULL},
        {"PING", NULL},
        {"MULTI", NULL},
        {"INFO replication", NULL},
        {"CLUSTER SLOTS", NULL},
    };
    size_t i;

    (void)state;
    for (i = 0; i < DRV_ARRAY_LEN(cases); i++) {
        char *copy = strdup(cases[i].words), *save = NULL, *w;
        char *argv[16];
        size_t len[16];
        int argc = 0, want;

        for (w = strtok_r(copy, " ", &save); w != NULL;
             w = strtok_r(NULL, " ", &save)) {
            argv[argc] = w;
            len[argc++] = strlen(w);
        }
        want = cases[i].key == NULL ? -1
               : drv_redis_cluster_slot(cases[i].key,
                                        strlen(cases[i].key));
        if (drv_redis_cluster_cmd_slot(argc, argv, len) != want)
            fail_msg("%s: slot %d, want %d", cases[i].words,
                     drv_redis_cluster_cmd_slot(argc, argv, len), want);
        free(copy);
    }
}

static void
test_redis_cluster_addr(void **state)
{
    struct drv_redis_sentinel_addr a;
    struct drv_err err;

    (void)state;
    assert_int_equal(drv_redis_cluster_addr_parse("10.0.0.1:7000", &a,
                                                  &err), 0);
    assert_string_equal(a.host, "10.0.0.1");
    assert_int_equal(a.port, 7000);
    assert_int_equal(drv_redis_cluster_addr_parse("redis-0.svc", &a, &err),
                     0);
    assert_int_equal(a.port, 6379);
    assert_int_equal(drv_redis_cluster_addr_parse("[::1]", &a, &err), 0);
    assert_string_equal(a.host, "::1");
    assert_int_equal(a.port, 6379);
    assert_int_equal(drv_redis_cluster_addr_parse("[::1]:7001", &a, &err),
                     0);
    assert_int_equal(a.port, 7001);
    assert_int_equal(drv_redis_cluster_addr_parse("h:0", &a, &err),
                     -EINVAL);
    assert_string_equal(err.msg, "port must be 1..65535");
}

static void
test_redis_cluster_url(void **state)
{
    struct drv_err err;

    (void)state;
    assert_int_equal(drv_redis_cluster_url_check("redis://", &err), 0);
    assert_int_equal(drv_redis_cluster_url_check("rediss://drover@/0",
                                                 &err), 0);
    assert_int_equal(drv_redis_cluster_url_check("redis:///2", &err),
                     -EINVAL);
    assert_string_equal(err.msg, "a Redis Cluster has only database 0: "
                        "write redis:/// or redis:///0");
    assert_int_equal(drv_redis_cluster_url_check("redis://h:7000/0", &err),
                     -EINVAL);
    assert_string_equal(err.msg, "with redis.cluster the url names no host "
                        "(the nodes give it): write redis:///DB or "
                        "redis://USER@/DB");
    assert_int_equal(drv_redis_cluster_url_check("unix:///s", &err),
                     -EINVAL);
}

static void
test_redis_cluster_map(void **state)
{
    struct drv_redis_cluster_map *m = malloc(sizeof *m);
    struct drv_redis_sentinel_addr asked = {"127.0.0.9", 7009};
    const struct drv_redis_sentinel_addr *a;
    struct drv_err err;
    redisReply *r;

    (void)state;
    assert_non_null(m);
    /* two masters, the second serving two ranges; one range of a node
     * that does not know its address; replicas after the master */
    r = resp("*3\r\n"
             "*4\r\n:0\r\n:5460\r\n"
             "*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$2\r\nid\r\n"
             "*3\r\n$9\r\n127.0.0.1\r\n:7100\r\n$2\r\nir\r\n"
             "*3\r\n:5461\r\n:10922\r\n"
             "*2\r\n$9\r\n127.0.0.2\r\n:7001\r\n"
             "*3\r\n:10923\r\n:16383\r\n"
             "*2\r\n$1\r\n?\r\n:7002\r\n");
    assert_int_equal(drv_redis_cluster_map_parse(m, r, &asked, &err), 0);
    freeReplyObject(r);
    assert_int_equal(m->nnodes, 3);
    a = drv_redis_cluster_map_node(m, 0);
    assert_string_equal(a->host, "127.0.0.1");
    assert_int_equal(a->port, 7000);
    assert_int_equal(drv_redis_cluster_map_node(m, 5460)->port, 7000);
    assert_int_equal(drv_redis_cluster_map_node(m, 5461)->port, 7001);
    a = drv_redis_cluster_map_node(m, 16383);
    assert_string_equal(a->host, "127.0.0.9");
    assert_int_equal(a->port, 7002);

    /* a MOVED moves one slot */
    assert_int_equal(drv_redis_cluster_map_set(m, 5461, &asked), 0);
    assert_int_equal(drv_redis_cluster_map_node(m, 5461)->port, 7009);
    assert_int_equal(drv_redis_cluster_map_node(m, 5462)->port, 7001);

    /* a cluster with an unserved range */
    r = resp("*1\r\n*3\r\n:0\r\n:100\r\n*2\r\n$1\r\nh\r\n:1\r\n");
    assert_int_equal(drv_redis_cluster_map_parse(m, r, NULL, &err), 0);
    freeReplyObject(r);
    assert_non_null(drv_redis_cluster_map_node(m, 100));
    assert_null(drv_redis_cluster_map_node(m, 101));

    /* errors */
    r = resp("-ERR This instance has cluster support disabled\r\n");
    assert_int_equal(drv_redis_cluster_map_parse(m, r, NULL, &err),
                     DRV_EREDIS);
    assert_string_equal(err.msg, "CLUSTER SLOTS: ERR This instance has "
                        "cluster support disabled");
    freeReplyObject(r);
    r = resp("*1\r\n*3\r\n:9\r\n:3\r\n*2\r\n$1\r\nh\r\n:1\r\n");
    assert_int_equal(drv_redis_cluster_map_parse(m, r, NULL, &err),
                     DRV_EPROTO);
    freeReplyObject(r);
    r = resp("*1\r\n*3\r\n:0\r\n:3\r\n*2\r\n$0\r\n\r\n:1\r\n");
    assert_int_equal(drv_redis_cluster_map_parse(m, r, NULL, &err),
                     DRV_EPROTO);
    freeReplyObject(r);
    free(m);
}

static void
test_redis_cluster_redirect(void **state)
{
    struct drv_redis_cluster_redirect rd;
    redisReply *r;

    (void)state;
    r = resp("-MOVED 3999 127.0.0.1:6381\r\n");
    assert_int_equal(drv_redis_cluster_redirect_parse(r, &rd), 1);
    assert_int_equal(rd.ask, 0);
    assert_int_equal(rd.slot, 3999);
    assert_string_equal(rd.to.host, "127.0.0.1");
    assert_int_equal(rd.to.port, 6381);
    freeReplyObject(r);
    r = resp("-ASK 16383 ::1:7000\r\n");
    assert_int_equal(drv_redis_cluster_redirect_parse(r, &rd), 1);
    assert_int_equal(rd.ask, 1);
    assert_int_equal(rd.slot, 16383);
    assert_string_equal(rd.to.host, "::1");
    assert_int_equal(rd.to.port, 7000);
    freeReplyObject(r);
    r = resp("-MOVED 16384 h:1\r\n");
    assert_int_equal(drv_redis_cluster_redirect_parse(r, &rd), 0);
    freeReplyObject(r);
    r = resp("-ERR MOVED 1 h:1\r\n");
    assert_int_equal(drv_redis_cluster_redirect_parse(r, &rd), 0);
    freeReplyObject(r);
    r = resp("+MOVED 1 h:1\r\n");
    assert_int_equal(drv_redis_cluster_redirect_parse(r, &rd), 0);
    freeReplyObject(r);
    assert_int_equal(drv_redis_cluster_redirect_parse(NULL, &rd), 0);
}

static void
test_redis_cluster_ask_to(void **state)
{
    struct drv_redis_sentinel_addr to, queued = {"10.0.0.9", 7002};
    redisReply *r;

    (void)state;
    r = resp("-ASK 3999 127.0.0.1:6381\r\n");
    assert_int_equal(drv_redis_cluster_ask_to(r, NULL, &to), 1);
    assert_string_equal(to.host, "127.0.0.1");
    assert_int_equal(to.port, 6381);
    /* the reply's own node wins over a queued one */
    assert_int_equal(drv_redis_cluster_ask_to(r, &queued, &to), 1);
    assert_int_equal(to.port, 6381);
    freeReplyObject(r);
    /* MOVED is not an ASK, even after a queued ASK */
    r = resp("-MOVED 3999 127.0.0.1:6381\r\n");
    assert_int_equal(drv_redis_cluster_ask_to(r, &queued, &to), 0);
    freeReplyObject(r);
    /* a MULTI block aborted for an ASKed command goes to that node */
    r = resp("-EXECABORT Transaction discarded because of previous "
             "errors.\r\n");
    memset(&to, 0, sizeof to);
    assert_int_equal(drv_redis_cluster_ask_to(r, &queued, &to), 1);
    assert_string_equal(to.host, "10.0.0.9");
    assert_int_equal(to.port, 7002);
    /* aborted for another reason: the caller gets it */
    assert_int_equal(drv_redis_cluster_ask_to(r, NULL, &to), 0);
    freeReplyObject(r);
    r = resp("-EXECABORTED x\r\n");
    assert_int_equal(drv_redis_cluster_ask_to(r, &queued, &to), 0);
    freeReplyObject(r);
    /* not an error, or a bad ASK: nothing to follow */
    r = resp("+ASK 1 h:1\r\n");
    assert_int_equal(drv_redis_cluster_ask_to(r, &queued, &to), 0);
    freeReplyObject(r);
    r = resp("-ASK 1 h:0\r\n");
    assert_int_equal(drv_redis_cluster_ask_to(r, NULL, &to), 0);
    freeReplyObject(r);
    r = resp("-TRYAGAIN Multiple keys request during rehashing of slot\r\n");
    assert_int_equal(drv_redis_cluster_ask_to(r, NULL, &to), 0);
    freeReplyObject(r);
    assert_int_equal(drv_redis_cluster_ask_to(NULL, &queued, &to), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_cluster_crc16),
        cmocka_unit_test(test_redis_cluster_hash_tag),
        cmocka_unit_test(test_redis_cluster_cmd_slot),
        cmocka_unit_test(test_redis_cluster_addr),
        cmocka_unit_test(test_redis_cluster_url),
        cmocka_unit_test(test_redis_cluster_map),
        cmocka_unit_test(test_redis_cluster_redirect),
        cmocka_unit_test(test_redis_cluster_ask_to),
    };

    drv_test_filter_from_env();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
