/*
 * fuzz_job.c -- job field decoding: drv_job_from_entry, drv_job_field and
 * drv_job_field_str (pkg/queue) on stream entries read by hiredis's RESP
 * reader, checked by fuzz_check_job (fuzz_resp.h).
 *
 * Input: a mode byte, then
 *   bit 0 clear: an entry built from the input -- pieces split at 0xfe:
 *     the entry id, then field name, value, name, value ... (any bytes,
 *     NUL included) -- encoded as RESP and read back, so the fuzzer
 *     spends its time on field contents. Mode bits: 1 = the payload is
 *     nil (a deleted entry), 2 = keep an odd last piece (fields of bad
 *     shape), 3 = the id as a status reply instead of a bulk string,
 *     4 = wrapped as an XREADGROUP reply [[stream, [entry]]];
 *   bit 0 set: raw RESP bytes; every reply, each of its elements, and
 *     the entries of XREADGROUP-shaped replies go through the checks.
 */
#include <stdint.h>
#include <string.h>

#include "drover/buf.h"
#include "fuzz_resp.h"

#define MAX_PIECES 512

static const char *const extra_names[] = {"id", "attempt", "job", "ms", "",
                                          "missing", "step", "pipeline"};
#define NEXTRA (sizeof extra_names / sizeof extra_names[0])

static void
add_bulk(struct drv_buf *b, const char *s, size_t n)
{
    drv_buf_addf(b, "$%zu\r\n", n);
    drv_buf_add(b, s, n);
    drv_buf_adds(b, "\r\n");
}

/* Every entry of a reply, the way the worker walks them. */
static void
check_reply(const redisReply *r, int depth)
{
    size_t i, j;

    fuzz_check_job(r, extra_names, NEXTRA);
    if (r->type != REDIS_REPLY_ARRAY || depth > 3)
        return;
    for (i = 0; i < r->elements; i++) {
        const redisReply *st = r->element[i];

        check_reply(st, depth + 1);
        /* [stream, [entry...]] */
        if (st->type == REDIS_REPLY_ARRAY && st->elements == 2 &&
            st->element[1]->type == REDIS_REPLY_ARRAY)
            for (j = 0; j < st->element[1]->elements; j++)
                fuzz_check_job(st->element[1]->element[j], extra_names,
                               NEXTRA);
    }
}

static void
read_all(const char *buf, size_t len)
{
    redisReader *rd = fuzz_reader();
    void *reply = NULL;
    int n = 0;

    redisReaderFeed(rd, buf, len);
    while (n++ < 64 && redisReaderGetReply(rd, &reply) == REDIS_OK &&
           reply != NULL) {
        check_reply(reply, 0);
        freeReplyObject(reply);
        reply = NULL;
    }
    redisReaderFree(rd);
}

static void
built_entry(struct fuzz_in *in, unsigned mode)
{
    const char *piece[MAX_PIECES];
    size_t plen[MAX_PIECES], n = 0, i;
    struct drv_buf b;
    size_t nfields;

    while (in->n > 0 && n < MAX_PIECES) {
        piece[n] = fuzz_piece(in, 0xfe, &plen[n]);
        n++;
    }
    if (n == 0) {
        piece[0] = "";
        plen[0] = 0;
        n = 1;
    }
    nfields = n - 1;
    if (nfields % 2 != 0 && !(mode & 4))
        nfields--;
    drv_buf_init(&b);
    if (mode & 16) {
        drv_buf_adds(&b, "*1\r\n*2\r\n");
        add_bulk(&b, "drover:{default}:jobs", 21);
        drv_buf_adds(&b, "*1\r\n");
    }
    drv_buf_adds(&b, "*2\r\n");
    if ((mode & 8) && memchr(piece[0], '\r', plen[0]) == NULL &&
        memchr(piece[0], '\n', plen[0]) == NULL) {
        drv_buf_adds(&b, "+");
        drv_buf_add(&b, piece[0], plen[0]);
        drv_buf_adds(&b, "\r\n");
    } else {
        add_bulk(&b, piece[0], plen[0]);
    }
    if (mode & 2) {
        drv_buf_adds(&b, "*-1\r\n");
    } else {
        drv_buf_addf(&b, "*%zu\r\n", nfields);
        for (i = 1; i <= nfields; i++)
            add_bulk(&b, piece[i], plen[i]);
    }
    read_all(b.data, b.len);
    drv_buf_fini(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    unsigned mode = fuzz_byte(&in);

    if (mode & 1)
        read_all((const char *)in.p, in.n);
    else
        built_entry(&in, mode);
    return 0;
}
