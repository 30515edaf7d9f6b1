/*
 * http_url.c -- the plain http:// URLs the own client takes without
 * libcurl's URL parser, so a worker whose requests are all such URLs
 * never loads libcurl (http_curl.c loads it at its first call).
 *
 * Only URLs that libcurl's parser (curl_url_set without flags) would
 * leave as they are: "http://" in any case, a host that is a plain ASCII
 * name in lower case (not one libcurl would read as an IPv4 number, such
 * as "127.1" or "0x7f.1"), a dotted-quad IPv4 address or a bracketed IPv6
 * address in their canonical forms, an optional port of 1 to 65535
 * without leading zeros, and a path (none is "/") and query of printable
 * ASCII with no
 * dot segment, no fragment and no byte that libcurl would reject or
 * change. Anything else (user:password@, an IDN name, a zone id, "..",
 * "#", a space, an empty query...) is left to libcurl's parser, which may
 * still send it through the own client (url_target in http.c).
 *
 * Pure; any thread.
 */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "drover/common.h"
#include "http_int.h"

#define HOST_MAX 253            /* longest name taken */

/* 1 if ch may stand in a path or query as it is: RFC 3986 unreserved,
 * sub-delims, ':', '@', '/', '?' (query) and '%' (an escape, kept). */
static int
url_char(char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
        (ch >= '0' && ch <= '9'))
        return 1;
    return ch != '\0' && strchr("-._~!$&'()*+,;=:@/%", ch) != NULL;
}

/* 1 if s[0..n) is a number as libcurl reads an IPv4 part: decimal,
 * octal (leading 0) or hexadecimal (0x). */
static int
ipv4_part(const char *s, size_t n)
{
    size_t i = 0;

    if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        for (i = 2; i < n; i++)
            if (!((s[i] >= '0' && s[i] <= '9') ||
                  ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'f')))
                return 0;
        return 1;
    }
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return n > 0;
}

/* 1 if name (NUL-terminated) would be read by libcurl as an IPv4
 * address in one of its shorter forms (1 to 4 numbers). */
static int
ipv4_like(const char *name)
{
    const char *p = name, *dot;
    int parts = 0;

    for (;;) {
        dot = strchr(p, '.');
        if (!ipv4_part(p, dot != NULL ? (size_t)(dot - p) : strlen(p)))
            return 0;
        parts++;
        if (dot == NULL)
            return parts <= 4;
        p = dot + 1;
    }
}

/* 1 if name is a lower-case name libcurl keeps as it is: letters, digits,
 * '-', '_', dots between labels (a trailing one too). */
static int
plain_lower_name(const char *name)
{
    const char *p;

    if (name[0] == '\0' || name[0] == '.' || strstr(name, "..") != NULL)
        return 0;
    for (p = name; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return 0;
    return 1;
}

/* 1 if s[0..n) holds a segment "." or ".." (libcurl would remove it). */
static int
has_dot_segment(const char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t j = i;

        while (j < n && s[j] != '/')
            j++;
        if ((j - i == 1 && s[i] == '.') ||
            (j - i == 2 && s[i] == '.' && s[i + 1] == '.'))
            return 1;
        i = j + 1;
    }
    return 0;
}

int
drv__http_url_lean(const char *url, struct drv__h1_target *t)
{
    char host[HOST_MAX + 1], canon[INET6_ADDRSTRLEN];
    char path[DRV__H1_URL_MAX], *query = NULL;
    const char *p, *a, *end;
    unsigned port = 80;
    int port_given = 0;
    size_t n, i;
    unsigned char bin[16];

    if (strncasecmp(url, "http://", 7) != 0)
        return 0;
    a = url + 7;
    end = a + strcspn(a, "/?#");
    if (*end == '?' || *end == '#' || strchr(end, '#') != NULL)
        return 0;
    /* host, bracketed or not, then :port */
    if (*a == '[') {
        const char *rb = memchr(a, ']', (size_t)(end - a));

        if (rb == NULL || (size_t)(rb - a - 1) > HOST_MAX)
            return 0;
        n = (size_t)(rb - a - 1);
        memcpy(host, a + 1, n);
        host[n] = '\0';
        if (inet_pton(AF_INET6, host, bin) != 1 ||
            inet_ntop(AF_INET6, bin, canon, sizeof canon) == NULL ||
            strcmp(canon, host) != 0)
            return 0;
        p = rb + 1;
    } else {
        p = a + strcspn(a, ":/");
        if (p > end)
            p = end;
        n = (size_t)(p - a);
        if (n == 0 || n > HOST_MAX)
            return 0;
        memcpy(host, a, n);
        host[n] = '\0';
        if (!plain_lower_name(host))
            return 0;
        if (ipv4_like(host) &&
            (inet_pton(AF_INET, host, bin) != 1 ||
             inet_ntop(AF_INET, bin, canon, sizeof canon) == NULL ||
             strcmp(canon, host) != 0))
            return 0;
    }
    if (p < end) {
        if (*p != ':' || p + 1 == end || p[1] == '0' || end - p - 1 > 5)
            return 0;
        port = 0;
        for (++p; p < end; p++) {
            if (*p < '0' || *p > '9')
                return 0;
            port = port * 10 + (unsigned)(*p - '0');
        }
        if (port > 65535)
            return 0;
        port_given = 1;
    }
    /* path and query */
    n = strlen(end);
    if (n >= sizeof path)
        return 0;
    for (i = 0; i < n; i++) {
        if (end[i] == '?' && query == NULL) {
            path[i] = '\0';
            query = path + i + 1;
            continue;
        }
        if (!url_char(end[i]) && !(query != NULL && end[i] == '?'))
            return 0;
        path[i] = end[i];
    }
    path[n] = '\0';
    if (query != NULL && *query == '\0')
        return 0; /* "x?": how libcurl sends it is its own business */
    if (has_dot_segment(path, strlen(path)))
        return 0;
    return drv__h1_target_set(t, host, port, port_given, path, query) == 0;
}
