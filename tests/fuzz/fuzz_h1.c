/*
 * fuzz_h1.c -- the response parser of pkg/http's own HTTP/1.1 path
 * (drv__h1_parse, drv__h1_parse_eof; pkg/http/http_int.h) on any bytes.
 *
 * Input: a byte giving body_max (0-255, or 64 KiB for 255), a flags byte
 * (bit 0: the request was HEAD; bits 1-7: a seed for where the bytes are
 * cut), then the bytes a server sent. They are parsed twice: whole, and
 * in pieces the way a connection reads them (what the parser leaves
 * untaken is offered again with the next piece), then the end of the
 * input is the server's close. Properties:
 *   - both ways give the same outcome: error or not, status, version,
 *     reason, keep-alive, Retry-After, Location, the body kept and
 *     "truncated", and the bytes left after a whole response;
 *   - the body kept is at most body_max bytes; a whole response has a
 *     final status (200-999), version 10 or 11, and a reason without CR,
 *     LF or NUL inside its buffer; a HEAD response or a 204/304 keeps no
 *     body;
 *   - an error has a text.
 */
#include <errno.h>
#include <stdlib.h>

#include "drover/buf.h"
#include "drover/common.h"
#include "drover/error.h"
#include "../../pkg/http/http_int.h"

#include "fuzz.h"

struct outcome {
    int rc;                     /* 1 whole, <0 error */
    size_t left;                /* bytes after a whole response */
    struct drv__h1_parser p;
    struct drv_buf body;
};

/* Parse data[0..n) cut at the places seed picks; the close at the end. */
static void
run(struct outcome *o, const uint8_t *data, size_t n, size_t body_max,
    int head_only, unsigned seed)
{
    char *buf = malloc(n + 1);
    size_t have = 0, off = 0, used;
    int rc = 0;

    drv_buf_init(&o->body);
    o->left = 0;
    memset(&o->p, 0, sizeof o->p);
    drv_buf_init(&o->p.location);
    drv__h1_parser_init(&o->p, &o->body, body_max, head_only);
    while (off < n) {
        size_t piece = n - off;

        if (seed != 0) {
            seed = seed * 1103515245u + 12345u;
            piece = 1 + (seed >> 16) % 37;
            if (piece > n - off)
                piece = n - off;
        }
        memcpy(buf + have, data + off, piece);
        have += piece;
        off += piece;
        rc = drv__h1_parse(&o->p, buf, have, &used);
        FUZZ_CHECK(used <= have, "took %zu of %zu bytes", used, have);
        memmove(buf, buf + used, have - used);
        have -= used;
        if (rc != 0)
            break;
    }
    if (rc == 1)
        o->left = have + (n - off);
    if (rc == 0)
        rc = drv__h1_parse_eof(&o->p);
    o->rc = rc;
    free(buf);
}

static void
fini(struct outcome *o)
{
    drv__h1_parser_fini(&o->p);
    drv_buf_fini(&o->body);
}

static void
check_one(const struct outcome *o, size_t body_max, int head_only)
{
    size_t i;

    FUZZ_CHECK(o->body.len <= body_max, "kept %zu > %zu", o->body.len,
               body_max);
    if (o->rc < 0) {
        FUZZ_CHECK(o->p.error != NULL && o->p.error[0] != '\0',
                   "an error without a text");
        FUZZ_CHECK(o->rc == DRV_EPROTO || o->rc == -ECONNRESET, "rc %d",
                   o->rc);
        return;
    }
    FUZZ_CHECK(o->rc == 1, "rc %d", o->rc);
    FUZZ_CHECK(o->p.status >= 200 && o->p.status <= 999, "status %d",
               o->p.status);
    FUZZ_CHECK(o->p.version == 10 || o->p.version == 11, "version %d",
               o->p.version);
    for (i = 0; i < sizeof o->p.reason && o->p.reason[i] != '\0'; i++)
        FUZZ_CHECK(o->p.reason[i] != '\r' && o->p.reason[i] != '\n',
                   "CR or LF in the reason");
    FUZZ_CHECK(i < sizeof o->p.reason, "reason not terminated");
    if (head_only || o->p.status == 204 || o->p.status == 304)
        FUZZ_CHECK(o->body.len == 0 && !o->p.truncated,
                   "a body where there is none");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome a, b;
    size_t body_max;
    int head_only;
    unsigned seed;

    if (size < 2)
        return 0;
    body_max = data[0] == 255 ? 65536 : data[0];
    head_only = data[1] & 1;
    seed = (data[1] >> 1) | 1u;
    run(&a, data + 2, size - 2, body_max, head_only, 0);
    run(&b, data + 2, size - 2, body_max, head_only, seed);
    check_one(&a, body_max, head_only);
    check_one(&b, body_max, head_only);
    FUZZ_CHECK(a.rc == b.rc, "whole %d, in pieces %d", a.rc, b.rc);
    if (a.rc == 1) {
        FUZZ_CHECK(a.p.status == b.p.status && a.p.version == b.p.version &&
                       a.p.keep_alive == b.p.keep_alive &&
                       (a.p.retry_after_ms < 0) ==
                           (b.p.retry_after_ms < 0) &&
                       llabs(a.p.retry_after_ms - b.p.retry_after_ms) <=
                           1000 && /* a date against a moving now */
                       a.p.truncated == b.p.truncated && a.left == b.left,
                   "whole and in pieces differ");
        FUZZ_CHECK(strcmp(a.p.reason, b.p.reason) == 0, "reasons differ");
        FUZZ_CHECK(a.body.len == b.body.len &&
                       (a.body.len == 0 ||
                        memcmp(a.body.data, b.body.data, a.body.len) == 0),
                   "bodies differ");
        FUZZ_CHECK(a.p.location.len == b.p.location.len &&
                       (a.p.location.len == 0 ||
                        memcmp(a.p.location.data, b.p.location.data,
                               a.p.location.len) == 0),
                   "Locations differ");
    }
    fini(&a);
    fini(&b);
    return 0;
}
