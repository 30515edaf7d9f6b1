/*
 * fuzz.h -- helpers shared by the libFuzzer targets in tests/fuzz/.
 *
 * Each target is one file fuzz_<name>.c defining LLVMFuzzerTestOneInput.
 * A property that does not hold calls FUZZ_FAIL, which prints what broke
 * and aborts: libFuzzer then saves the input as a crash artifact, the same
 * as for a sanitizer report.
 */
#ifndef DROVER_FUZZ_H
#define DROVER_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_FAIL(...)                                                  \
    do {                                                                \
        fprintf(stderr, "fuzz property failed at %s:%d: ", __FILE__,    \
                __LINE__);                                              \
        fprintf(stderr, __VA_ARGS__);                                   \
        fputc('\n', stderr);                                            \
        abort();                                                        \
    } while (0)

/* FUZZ_CHECK(cond, fmt, ...) -- FUZZ_FAIL with the message unless cond. */
#define FUZZ_CHECK(cond, ...)                                           \
    do {                                                                \
        if (!(cond)) {                                                  \
            fprintf(stderr, "check failed: %s\n", #cond);               \
            FUZZ_FAIL(__VA_ARGS__);                                     \
        }                                                               \
    } while (0)

/* A reader over the fuzzer's bytes. */
struct fuzz_in {
    const uint8_t *p;   /* borrowed: next byte */
    size_t n;           /* bytes left */
};

/* Next byte, or 0 once the input is used up. */
static inline uint8_t
fuzz_byte(struct fuzz_in *in)
{
    uint8_t b;

    if (in->n == 0)
        return 0;
    b = in->p[0];
    in->p++;
    in->n--;
    return b;
}

/* Next 8 bytes as an integer (missing bytes read as 0). */
static inline uint64_t
fuzz_u64(struct fuzz_in *in)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < 8; i++)
        v = v << 8 | fuzz_byte(in);
    return v;
}

/*
 * The next piece of the input, up to (not including) the separator byte
 * sep, or the rest of the input when it does not occur. *len gets its
 * length; the separator is consumed.
 */
static inline const char *
fuzz_piece(struct fuzz_in *in, uint8_t sep, size_t *len)
{
    const uint8_t *s = in->p;
    const uint8_t *e = memchr(s, sep, in->n);
    size_t n = e != NULL ? (size_t)(e - s) : in->n;

    *len = n;
    in->p += n;
    in->n -= n;
    if (e != NULL) {
        in->p++;
        in->n--;
    }
    return (const char *)s;
}

/* A NUL-terminated copy of s[0..n) (caller frees). */
static inline char *
fuzz_strndup(const char *s, size_t n)
{
    char *c = malloc(n + 1);

    if (c == NULL)
        abort();
    if (n > 0)
        memcpy(c, s, n);
    c[n] = '\0';
    return c;
}

/* 1 for the bytes RFC 3986 leaves unescaped: A-Z a-z 0-9 - . _ ~ */
static inline int
fuzz_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
           c == '~';
}

#endif
