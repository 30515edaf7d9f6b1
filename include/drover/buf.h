/*
 * drover/buf.h -- a growable byte buffer, and JSON writing into it.
 *
 * Job fields are byte strings; JSON needs UTF-8. drv_buf_json_str writes
 * valid UTF-8 sequences as they are and escapes every other byte as
 * \u00XX (documented in doc/exec.md: such bytes reach exec children as the
 * Latin-1 code point of the byte).
 */
#ifndef DROVER_BUF_H
#define DROVER_BUF_H

#include <stddef.h>
#include <stdint.h>

/* A zeroed drv_buf is an empty one (drv_buf_init zeroes it), so a struct
 * zeroed as a whole holds empty buffers. */
struct drv_buf {
    char *data;   /* owned: always NUL-terminated when len > 0 */
    size_t len;   /* bytes used */
    size_t cap;   /* bytes allocated */
};

void drv_buf_init(struct drv_buf *b);
void drv_buf_fini(struct drv_buf *b);
void drv_buf_reset(struct drv_buf *b);
void drv_buf_add(struct drv_buf *b, const void *p, size_t n);
void drv_buf_adds(struct drv_buf *b, const char *s);
void drv_buf_addf(struct drv_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* drv_buf_take -- hand the bytes to the caller (NUL-terminated, caller
 * frees) and reset b. *len gets the length (may be NULL). */
char *drv_buf_take(struct drv_buf *b, size_t *len);

/* drv_buf_json_str -- append s[0..n) as a JSON string literal. */
void drv_buf_json_str(struct drv_buf *b, const char *s, size_t n);

/* drv_utf8_valid -- 1 when s[0..n) is valid UTF-8 (no overlong forms,
 * no surrogates), else 0. */
int drv_utf8_valid(const char *s, size_t n);

/* drv_utf8_char_len -- length of the valid UTF-8 character at s (n > 0
 * bytes left), 0 when s does not start one. */
size_t drv_utf8_char_len(const char *s, size_t n);

/*
 * drv_buf_logfmt -- append s[0..len) as a logfmt value: bare when it is
 * valid UTF-8 without control bytes, space, '"', '=' and '\\', else in
 * double quotes with \" \\ \n \t \r and \xNN escapes (\xNN for every
 * other control byte and every byte that is not part of a valid UTF-8
 * character: NUL is \x00, a lone 0xff \xff). At most max bytes of s are
 * written (0 = all); a cut value ends in "...". Every byte of s can be
 * read back from the result (drv_logfmt_get).
 */
void drv_buf_logfmt(struct drv_buf *b, const char *s, size_t len,
                    size_t max);

/* drv_logfmt_needs_quotes -- 1 when drv_buf_logfmt would quote s. */
int drv_logfmt_needs_quotes(const char *s, size_t len);

/*
 * drv_logfmt_char -- the logfmt form (inside quotes) of the character at
 * s (n > 0 bytes left) into out (DRV_LOGFMT_CHAR_MAX bytes, not
 * NUL-terminated): its length is returned and *used says how many bytes
 * of s it stands for (a valid UTF-8 character is kept whole).
 */
#define DRV_LOGFMT_CHAR_MAX 8
size_t drv_logfmt_char(const char *s, size_t n, char *out, size_t *used);

/*
 * drv_logfmt_get -- the value of key in the logfmt line s[0..len)
 * (key=value pairs, space-separated), unquoted and unescaped (the escapes
 * drv_buf_logfmt writes), appended to val. Returns 1 when found, 0 when
 * absent (val untouched). The first pair named key counts.
 */
int drv_logfmt_get(const char *s, size_t len, const char *key,
                   struct drv_buf *val);

/*
 * drv_backoff_ms -- delay before retry number `retry` (1 = first retry):
 * base * 2^(retry-1), capped at max, then "equal jitter": a uniform pick
 * in [d/2, d]. rnd is a uniform random 64-bit value (caller's source).
 */
int64_t drv_backoff_ms(uint64_t retry, int64_t base_ms, int64_t max_ms,
                       uint64_t rnd);

/* drv_random64 -- a random 64-bit value (getrandom, else time-seeded). */
uint64_t drv_random64(void);

#endif
