/*
 * redis_limit.c -- the Redis limit for a reliable stream consumer.
 *
 *   redis_limit SOCKET KEY COUNT [trim]
 *
 * Drains stream KEY through consumer group "drover" doing only the Redis
 * work a reliable consumer must do per job, and nothing else: XREADGROUP
 * COUNT k, then XACK + XDEL of exactly those ids. Pipelined: the XACK and
 * XDEL of batch i go out in the same write as the XREADGROUP of batch i+1,
 * so a batch costs one round trip. No job logic, no ownership check, no
 * stats, no allocation per job beyond hiredis' reply. Exits 0 when a read
 * comes back empty, printing the number of entries it acked.
 *
 * With "trim", the deletion is the one drover's settle script uses: XACK
 * of the ids, then XTRIM MINID to the batch's last id and XDEL of that
 * one (valid here because this is the only consumer, so nothing older
 * is pending; drover asks XPENDING for the oldest pending entry first).
 *
 * make bench times this program from spawn to exit on the same N jobs it
 * gives droverd: the throughput drover is compared against.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#define BENCH_PROG "redis_limit"
#include "bench.h"

/* Fail naming what, with Redis's error (or the connection's). */
static void
die(const char *what, const redisContext *c, const redisReply *r)
{
    bench_die("%s: %s", what, r != NULL && r->type == REDIS_REPLY_ERROR
              ? r->str : c != NULL && c->err ? c->errstr
              : "unexpected reply");
}

static redisReply *
get_reply(redisContext *c)
{
    void *r = NULL;

    if (redisGetReply(c, &r) != REDIS_OK || r == NULL)
        die("reply", c, NULL);
    return r;
}

int
main(int argc, char **argv)
{
    const char *sock, *key;
    redisContext *c = NULL;
    redisReply *r = NULL, *prev = NULL;
    const char **av = NULL;
    size_t *avl = NULL;
    long count;
    long long total = 0;
    size_t nprev = 0, i;
    char countbuf[32];
    int trim;

    if (argc != 4 && !(argc == 5 && strcmp(argv[4], "trim") == 0)) {
        fprintf(stderr, "usage: redis_limit SOCKET KEY COUNT [trim]\n");
        return 2;
    }
    trim = argc == 5;
    sock = argv[1];
    key = argv[2];
    count = strtol(argv[3], NULL, 10);
    if (count <= 0)
        count = 256;
    snprintf(countbuf, sizeof countbuf, "%ld", count);
    c = redisConnectUnix(sock);
    if (c == NULL || c->err)
        die("connect", c, NULL);
    r = redisCommand(c, "XGROUP CREATE %s drover 0 MKSTREAM", key);
    if (r == NULL ||
        (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9)))
        die("XGROUP CREATE", c, r);
    freeReplyObject(r);

    av = malloc(((size_t)count + 8) * sizeof *av);
    avl = malloc(((size_t)count + 8) * sizeof *avl);
    if (av == NULL || avl == NULL)
        die("out of memory", NULL, NULL);
    for (;;) {
        const redisReply *entries = NULL;

        if (nprev > 0) {
            /* ack and delete the previous batch, in the same write as the
             * next read */
            const redisReply *ents = prev->element[0]->element[1];

            av[0] = "XACK"; av[1] = key; av[2] = "drover";
            for (i = 0; i < nprev; i++) {
                av[3 + i] = ents->element[i]->element[0]->str;
                avl[3 + i] = ents->element[i]->element[0]->len;
            }
            for (i = 0; i < 3; i++)
                avl[i] = strlen(av[i]);
            redisAppendCommandArgv(c, (int)(3 + nprev), av, avl);
            if (trim) {
                const redisReply *last = ents->element[nprev - 1]->element[0];

                redisAppendCommand(c, "XTRIM %s MINID %b", key, last->str,
                                   last->len);
                redisAppendCommand(c, "XDEL %s %b", key, last->str,
                                   last->len);
            } else {
                av[0] = "XDEL"; av[1] = key;
                avl[0] = 4; avl[1] = strlen(key);
                for (i = 0; i < nprev; i++) {
                    av[2 + i] = ents->element[i]->element[0]->str;
                    avl[2 + i] = ents->element[i]->element[0]->len;
                }
                redisAppendCommandArgv(c, (int)(2 + nprev), av, avl);
            }
            freeReplyObject(prev); /* the argv was copied by append */
            prev = NULL;
        }
        redisAppendCommand(c, "XREADGROUP GROUP drover limit COUNT %s "
                           "STREAMS %s >", countbuf, key);
        if (nprev > 0) {
            r = get_reply(c); /* XACK */
            if (r->type != REDIS_REPLY_INTEGER ||
                (size_t)r->integer != nprev)
                die("XACK", c, r);
            freeReplyObject(r);
            for (i = 0; i < (trim ? 2u : 1u); i++) {
                r = get_reply(c); /* XDEL, or XTRIM and XDEL */
                if (r->type != REDIS_REPLY_INTEGER)
                    die(trim ? "XTRIM/XDEL" : "XDEL", c, r);
                freeReplyObject(r);
            }
            total += (long long)nprev;
        }
        r = get_reply(c); /* XREADGROUP: nil or [[key, [[id, f]...]]] */
        if (r->type == REDIS_REPLY_NIL) {
            freeReplyObject(r);
            break;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 1)
            die("XREADGROUP", c, r);
        entries = r->element[0]->element[1];
        nprev = entries->elements;
        if (nprev == 0) {
            freeReplyObject(r);
            break;
        }
        prev = r;
    }
    printf("%lld\n", total);
    free(av);
    free(avl);
    redisFree(c);
    return 0;
}
