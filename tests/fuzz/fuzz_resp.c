/*
 * fuzz_resp.c -- arbitrary bytes from "Redis" through hiredis's reader,
 * then every reply (and every element of it, down to the reader's depth
 * limit) into each reply parser of pkg/queue and pkg/redis:
 *
 *   drv_settle_parse      0 only for an array of exactly nops integers
 *                         (then codes[] holds them) or the integer nops
 *                         (every op applied: codes[] all DONE), and
 *                         nothing past nops is written; DRV_EREDIS for an
 *                         error reply, DRV_EPROTO otherwise; the record
 *                         agrees;
 *   drv_job_from_entry    fuzz_check_job (fuzz_resp.h), also on the
 *                         entries of XREADGROUP- and reclaim-shaped
 *                         replies;
 *   drv_redis_result      0 unless the status is < 0 or the reply is an
 *                         error (then its text, cut to fit);
 *   drv_redis_reply_is_error, drv_redis_reply_error_is
 *                         as documented, for the codes drover asks about.
 *
 * Input: one byte (nops for the settle parser, besides the reply's own
 * element count and 0), then the bytes the reader is fed, in two feeds
 * split where the second byte says (a reply cut across reads).
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "drover/redis.h"
#include "fuzz_resp.h"

#define MAX_NOPS 300
#define CANARY 0x5a5a5a5a

static void
check_settle(const redisReply *r, int nops)
{
    static int codes[MAX_NOPS + 4];
    struct drv_err err;
    size_t i;
    int rc, ok;

    if (nops < 0 || nops > MAX_NOPS)
        return;
    for (i = 0; i < MAX_NOPS + 4; i++)
        codes[i] = CANARY;
    drv_err_clear(&err);
    rc = drv_settle_parse(r, nops, codes, &err);
    ok = r->type == REDIS_REPLY_ARRAY && r->elements == (size_t)nops;
    for (i = 0; ok && i < r->elements; i++)
        ok = r->element[i]->type == REDIS_REPLY_INTEGER;
    if (r->type == REDIS_REPLY_INTEGER && r->integer == nops) {
        FUZZ_CHECK(rc == 0, "settle's all-applied answer refused: %s",
                   err.msg);
        for (i = 0; i < (size_t)nops; i++)
            FUZZ_CHECK(codes[i] == DRV_QUEUE_DONE, "code %zu", i);
    } else if (ok) {
        FUZZ_CHECK(rc == 0, "settle reply of good shape refused: %s",
                   err.msg);
        for (i = 0; i < (size_t)nops; i++)
            FUZZ_CHECK(codes[i] == (int)r->element[i]->integer,
                       "code %zu", i);
    } else {
        FUZZ_CHECK(rc == (r->type == REDIS_REPLY_ERROR ? DRV_EREDIS
                                                       : DRV_EPROTO),
                   "settle reply of bad shape: %d", rc);
        FUZZ_CHECK(err.code == rc && err.msg[0] != '\0',
                   "settle error without its record");
    }
    for (i = (size_t)nops; i < MAX_NOPS + 4; i++)
        FUZZ_CHECK(codes[i] == CANARY, "settle wrote code %zu of %d", i,
                   nops);
}

static void
check_redis(const redisReply *r)
{
    static const char *const codes[] = {"NOSCRIPT", "BUSYGROUP", "NOGROUP",
                                        "ERR", "OOM", "WRONGTYPE",
                                        "NOPERM", "BUSY", ""};
    struct drv_err err;
    size_t i;
    int is_err = r->type == REDIS_REPLY_ERROR, rc;

    FUZZ_CHECK(drv_redis_reply_is_error(r) == is_err, "is_error");
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        size_t n = strlen(codes[i]);
        int want = is_err && r->len >= n &&
                   memcmp(r->str, codes[i], n) == 0 &&
                   (r->len == n || r->str[n] == ' ');

        FUZZ_CHECK(drv_redis_reply_error_is(r, codes[i]) == want,
                   "error_is(%s)", codes[i]);
    }
    drv_err_clear(&err);
    rc = drv_redis_result(0, r, &err);
    if (is_err) {
        size_t shown = r->len < DRV_ERR_MSG_MAX - 1 ? r->len
                                                    : DRV_ERR_MSG_MAX - 1;

        shown = strnlen(r->str, shown);
        FUZZ_CHECK(rc == DRV_EREDIS && err.code == DRV_EREDIS &&
                   strlen(err.msg) == shown &&
                   memcmp(err.msg, r->str, shown) == 0,
                   "drv_redis_result on an error reply");
    } else {
        FUZZ_CHECK(rc == 0 && err.code == 0, "drv_redis_result on a reply "
                   "of type %d", r->type);
    }
    rc = drv_redis_result(-ETIMEDOUT, r, &err);
    FUZZ_CHECK(rc == -ETIMEDOUT && err.code == -ETIMEDOUT,
               "a failed status must win over the reply");
}

static void
check_all(const redisReply *r, int nops, int depth)
{
    size_t i, j;

    check_settle(r, nops);
    check_settle(r, 0);
    check_settle(r, 1);
    if (r->type == REDIS_REPLY_ARRAY && r->elements <= MAX_NOPS)
        check_settle(r, (int)r->elements);
    check_redis(r);
    fuzz_check_job(r, NULL, 0);
    if (r->type != REDIS_REPLY_ARRAY)
        return;
    /* XREADGROUP [[stream, [entry...]]...]; reclaim [[entry...], n, n] */
    for (i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];

        if (e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
            e->element[1]->type == REDIS_REPLY_ARRAY)
            for (j = 0; j < e->element[1]->elements; j++)
                fuzz_check_job(e->element[1]->element[j], NULL, 0);
        if (i == 0 && e->type == REDIS_REPLY_ARRAY)
            for (j = 0; j < e->elements; j++)
                fuzz_check_job(e->element[j], NULL, 0);
        if (depth < 8)
            check_all(e, nops, depth + 1);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    int nops = fuzz_byte(&in);
    size_t cut = fuzz_byte(&in);
    redisReader *rd = fuzz_reader();
    void *reply = NULL;
    int n = 0;

    if (cut > in.n)
        cut = in.n;
    /* a reply split across two reads; a reply is taken after each */
    redisReaderFeed(rd, (const char *)in.p, cut);
    if (redisReaderGetReply(rd, &reply) == REDIS_OK && reply != NULL) {
        check_all(reply, nops, 0);
        freeReplyObject(reply);
        reply = NULL;
    }
    redisReaderFeed(rd, (const char *)in.p + cut, in.n - cut);
    while (n++ < 64 && redisReaderGetReply(rd, &reply) == REDIS_OK &&
           reply != NULL) {
        check_all(reply, nops, 0);
        freeReplyObject(reply);
        reply = NULL;
    }
    redisReaderFree(rd);
    return 0;
}
