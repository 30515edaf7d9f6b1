/*
 * logfmt.c -- writing and reading logfmt values (key=value pairs, a value
 * in double quotes when it needs them) in a struct drv_buf.
 */
#include <stdio.h>
#include <string.h>

#include "drover/buf.h"

static int
needs_quotes(const char *s, size_t len)
{
    size_t i;

    if (len == 0)
        return 1;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
            return 1;
    }
    return 0;
}

void
drv_buf_logfmt(struct drv_buf *b, const char *s, size_t len, size_t max)
{
    int cut = (max > 0 && len > max);
    size_t i, n = cut ? max : len;
    char hex[8];

    if (!cut && !needs_quotes(s, n)) {
        drv_buf_add(b, s, n);
        return;
    }
    drv_buf_add(b, "\"", 1);
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        switch (c) {
        case '"':  drv_buf_add(b, "\\\"", 2); break;
        case '\\': drv_buf_add(b, "\\\\", 2); break;
        case '\n': drv_buf_add(b, "\\n", 2); break;
        case '\t': drv_buf_add(b, "\\t", 2); break;
        case '\r': drv_buf_add(b, "\\r", 2); break;
        default:
            if (c < ' ' || c == 0x7f) {
                snprintf(hex, sizeof hex, "\\x%02x", c);
                drv_buf_adds(b, hex);
            } else {
                drv_buf_add(b, (const char *)&s[i], 1);
            }
        }
    }
    if (cut)
        drv_buf_adds(b, "...");
    drv_buf_add(b, "\"", 1);
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The quoted value starting after its '"' at s[*i]; unescaped into val
 * when val is not NULL. *i ends past the closing quote (or at end). */
static void
quoted(const char *s, size_t end, size_t *i, struct drv_buf *val)
{
    char c;
    int hi, lo;

    while (*i < end && s[*i] != '"') {
        c = s[(*i)++];
        if (c == '\\' && *i < end) {
            c = s[(*i)++];
            switch (c) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'x':
                hi = *i + 1 < end ? hexval(s[*i]) : -1;
                lo = *i + 1 < end ? hexval(s[*i + 1]) : -1;
                if (hi >= 0 && lo >= 0) {
                    c = (char)(hi << 4 | lo);
                    *i += 2;
                }
                break;
            default: break; /* \" \\ and anything else: the byte */
            }
        }
        if (val != NULL)
            drv_buf_add(val, &c, 1);
    }
    if (*i < end)
        (*i)++; /* the closing quote */
}

int
drv_logfmt_get(const char *s, size_t len, const char *key,
               struct drv_buf *val)
{
    size_t klen = strlen(key), i = 0, start;
    int match;

    while (i < len) {
        while (i < len && s[i] == ' ')
            i++;
        start = i;
        while (i < len && s[i] != '=' && s[i] != ' ')
            i++;
        match = (i - start == klen && memcmp(s + start, key, klen) == 0 &&
                 i < len && s[i] == '=');
        if (i >= len || s[i] != '=')
            continue; /* a bare word: no value */
        i++;
        if (i < len && s[i] == '"') {
            i++;
            quoted(s, len, &i, match ? val : NULL);
        } else {
            start = i;
            while (i < len && s[i] != ' ')
                i++;
            if (match)
                drv_buf_add(val, s + start, i - start);
        }
        if (match)
            return 1;
    }
    return 0;
}
