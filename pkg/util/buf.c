/*
 * buf.c -- growable buffer, JSON string escaping, backoff with jitter.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "drover/buf.h"
#include "drover/common.h"

void
drv_buf_init(struct drv_buf *b)
{
    memset(b, 0, sizeof *b);
}

void
drv_buf_fini(struct drv_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void
drv_buf_reset(struct drv_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

static void
reserve(struct drv_buf *b, size_t more)
{
    size_t need = b->len + more + 1;

    if (need <= b->cap)
        return;
    if (b->cap == 0)
        b->cap = 64;
    while (b->cap < need)
        b->cap *= 2;
    b->data = drv_xrealloc(b->data, b->cap);
}

void
drv_buf_add(struct drv_buf *b, const void *p, size_t n)
{
    reserve(b, n);
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void
drv_buf_adds(struct drv_buf *b, const char *s)
{
    drv_buf_add(b, s, strlen(s));
}

void
drv_buf_addf(struct drv_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *
drv_buf_take(struct drv_buf *b, size_t *len)
{
    char *p;

    if (b->data == NULL)
        reserve(b, 0), b->data[0] = '\0';
    p = b->data;
    if (len != NULL)
        *len = b->len;
    memset(b, 0, sizeof *b);
    return p;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
    uint32_t cp;
    size_t len, i;

    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

size_t
drv_utf8_char_len(const char *s, size_t n)
{
    return n > 0 ? utf8_len((const unsigned char *)s, n) : 0;
}

int
drv_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, l;

    while (i < n) {
        l = utf8_len(p + i, n - i);
        if (l == 0)
            return 0;
        i += l;
    }
    return 1;
}

void
drv_buf_json_str(struct drv_buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run;

    reserve(b, n + 2);
    drv_buf_add(b, "\"", 1);
    while (i < n) {
        unsigned char c = p[i];
        char esc[8];

        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            drv_buf_add(b, esc, 2);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            switch (c) {
            case '\n': drv_buf_add(b, "\\n", 2); break;
            case '\r': drv_buf_add(b, "\\r", 2); break;
            case '\t': drv_buf_add(b, "\\t", 2); break;
            default:
                snprintf(esc, sizeof esc, "\\u%04x", c);
                drv_buf_add(b, esc, 6);
            }
            i++;
        } else if (c < 0x80) {
            /* copy a run of plain ASCII at once */
            run = i;
            while (run < n && p[run] >= 0x20 && p[run] < 0x7f &&
                   p[run] != '"' && p[run] != '\\')
                run++;
            drv_buf_add(b, s + i, run - i);
            i = run;
        } else {
            size_t l = utf8_len(p + i, n - i);
            if (l > 0) {
                drv_buf_add(b, s + i, l);
                i += l;
            } else {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                drv_buf_add(b, esc, 6);
                i++;
            }
        }
    }
    drv_buf_add(b, "\"", 1);
}

int64_t
drv_backoff_ms(uint64_t retry, int64_t base_ms, int64_t max_ms, uint64_t rnd)
{
    int64_t d = base_ms > 0 ? base_ms : 0;
    uint64_t i;
    int64_t half;

    for (i = 1; i < retry && d < max_ms; i++) {
        if (d > INT64_MAX / 2) {
            d = max_ms;
            break;
        }
        d *= 2;
    }
    if (max_ms > 0 && d > max_ms)
        d = max_ms;
    half = d / 2;
    if (d - half <= 0)
        return d;
    return half + (int64_t)(rnd % (uint64_t)(d - half + 1));
}

uint64_t
drv_random64(void)
{
    uint64_t v;
    struct timespec ts;

    if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v)
        return v;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_nsec * 6364136223846793005ULL ^
           (uint64_t)ts.tv_sec;
}
