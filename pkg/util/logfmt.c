/*
 * logfmt.c -- writing and reading logfmt values (key=value pairs, a value
 * in double quotes when it needs them) in a struct drv_buf.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/buf.h"

int
drv_logfmt_needs_quotes(const char *s, size_t len)
{
    size_t i;

    if (len == 0)
        return 1;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
            return 1;
    }
    return !drv_utf8_valid(s, len);
}

size_t
drv_logfmt_char(const char *s, size_t n, char *out, size_t *used)
{
    unsigned char c = (unsigned char)s[0];
    size_t l;

    *used = 1;
    switch (c) {
    case '"':  memcpy(out, "\\\"", 2); return 2;
    case '\\': memcpy(out, "\\\\", 2); return 2;
    case '\n': memcpy(out, "\\n", 2); return 2;
    case '\t': memcpy(out, "\\t", 2); return 2;
    case '\r': memcpy(out, "\\r", 2); return 2;
    default: break;
    }
    if (c >= ' ' && c < 0x7f) {
        out[0] = (char)c;
        return 1;
    }
    if (c >= 0x80) {
        l = drv_utf8_char_len(s, n);
        if (l > 0) { /* a whole valid UTF-8 character: as it is */
            memcpy(out, s, l);
            *used = l;
            return l;
        }
    }
    /* a control byte, or a byte that starts no valid UTF-8 character */
    snprintf(out, 5, "\\x%02x", c);
    return 4;
}

void
drv_buf_logfmt(struct drv_buf *b, const char *s, size_t len, size_t max)
{
    int cut = (max > 0 && len > max);
    size_t i, n = cut ? max : len, used, w;
    char esc[DRV_LOGFMT_CHAR_MAX];

    if (!cut && !drv_logfmt_needs_quotes(s, n)) {
        drv_buf_add(b, s, n);
        return;
    }
    drv_buf_add(b, "\"", 1);
    for (i = 0; i < n; i += used) {
        w = drv_logfmt_char(s + i, n - i, esc, &used);
        drv_buf_add(b, esc, w);
    }
    if (cut)
        drv_buf_adds(b, "...");
    drv_buf_add(b, "\"", 1);
}

/* The byte written \xNN at s[0..2) when both are hex digits, else -1. */
static int
hex_byte(const char *s)
{
    char hex[3] = {s[0], s[1], '\0'};

    if (!isxdigit((unsigned char)s[0]) || !isxdigit((unsigned char)s[1]))
        return -1;
    return (int)strtoul(hex, NULL, 16);
}

/* The quoted value starting after its '"' at s[*i]; unescaped into val
 * when val is not NULL. *i ends past the closing quote (or at end). */
static void
quoted(const char *s, size_t end, size_t *i, struct drv_buf *val)
{
    char c;
    int v;

    while (*i < end && s[*i] != '"') {
        c = s[(*i)++];
        if (c == '\\' && *i < end) {
            c = s[(*i)++];
            switch (c) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'x':
                v = *i + 1 < end ? hex_byte(s + *i) : -1;
                if (v >= 0) {
                    c = (char)v;
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
