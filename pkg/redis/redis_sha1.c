/*
 * redis_sha1.c -- SHA1 (FIPS 180-4) for script digests, so EVALSHA can be
 * tried before the server has ever seen the script. Not for security:
 * Redis names scripts by SHA1, nothing more.
 */
#include <stdint.h>
#include <string.h>

#include "redis_int.h"

struct sha1 {
    uint32_t h[5];       /* chaining state */
    uint64_t len;        /* bytes hashed so far */
    unsigned char buf[64]; /* partial block */
    size_t used;         /* bytes in buf */
};

static uint32_t
rol(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void
sha1_block(struct sha1 *s, const unsigned char *p)
{
    uint32_t w[80], a, b, c, d, e, f, k, t;
    int i;

    for (i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    a = s->h[0];
    b = s->h[1];
    c = s->h[2];
    d = s->h[3];
    e = s->h[4];
    for (i = 0; i < 80; i++) {
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999U;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1U;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdcU;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6U;
        }
        t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = t;
    }
    s->h[0] += a;
    s->h[1] += b;
    s->h[2] += c;
    s->h[3] += d;
    s->h[4] += e;
}

static void
sha1_update(struct sha1 *s, const unsigned char *p, size_t n)
{
    size_t take;

    s->len += n;
    while (n > 0) {
        take = 64 - s->used;
        if (take > n)
            take = n;
        memcpy(s->buf + s->used, p, take);
        s->used += take;
        p += take;
        n -= take;
        if (s->used == 64) {
            sha1_block(s, s->buf);
            s->used = 0;
        }
    }
}

void
drv__redis_sha1_hex(const void *data, size_t len,
                    char out[DRV__REDIS_SHA1_HEX])
{
    static const char hex[] = "0123456789abcdef";
    struct sha1 s = {{0x67452301U, 0xefcdab89U, 0x98badcfeU, 0x10325476U,
                      0xc3d2e1f0U}, 0, {0}, 0};
    unsigned char pad[72], digest[20];
    uint64_t bits;
    size_t padlen;
    int i;

    sha1_update(&s, data, len);
    bits = s.len * 8;
    /* 0x80, zeros up to 56 mod 64, then the bit length big-endian */
    padlen = (s.used < 56 ? 56 : 120) - s.used;
    memset(pad, 0, sizeof pad);
    pad[0] = 0x80;
    for (i = 0; i < 8; i++)
        pad[padlen + (size_t)i] = (unsigned char)(bits >> (56 - 8 * i));
    sha1_update(&s, pad, padlen + 8);
    for (i = 0; i < 20; i++)
        digest[i] = (unsigned char)(s.h[i / 4] >> (24 - 8 * (i % 4)));
    for (i = 0; i < 20; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[40] = '\0';
}
