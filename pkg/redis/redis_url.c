/*
 * redis_url.c -- parse and redact Redis connection URLs.
 *
 * The user info (user:password) runs from after "://" to the LAST '@'
 * (for unix:, the last "@/"), so a password with a raw '@', ':' or '/'
 * still parses; the redactor uses the same rule, widened to any last '@',
 * so it hides at least what the parser would read as a password.
 *
 * A host is an IP literal or a DNS name; names are only checked for
 * shape here. The connection resolves them off the event loop (redis.c).
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "drover/common.h"
#include "drover/error.h"
#include "drover/parse.h"
#include "drover/redis.h"

#define DB_MAX 1000000 /* far above any "databases" setting */

/* ---------------------------------------------------------------- redact */

struct out {
    char *buf;  /* borrowed: destination */
    size_t n;   /* its size */
    size_t o;   /* bytes written */
};

static void
put(struct out *w, const char *s, size_t len)
{
    size_t room;

    if (w->n == 0)
        return;
    room = w->n - 1 - w->o;
    if (len > room)
        len = room;
    memcpy(w->buf + w->o, s, len);
    w->o += len;
    w->buf[w->o] = '\0';
}

/* Last occurrence of c in [s, s+len), or NULL. */
static const char *
last_char(const char *s, size_t len, char c)
{
    const char *p = NULL;
    size_t i;

    for (i = 0; i < len; i++)
        if (s[i] == c)
            p = s + i;
    return p;
}

char *
drv_redis_url_redact(const char *url, char *buf, size_t n)
{
    struct out w = {buf, n, 0};
    const char *rest, *at, *colon;
    size_t len;

    if (n == 0)
        return buf;
    buf[0] = '\0';
    if (url == NULL)
        return buf;
    len = strlen(url);
    rest = strstr(url, "://");
    rest = rest != NULL ? rest + 3 : url;
    at = last_char(rest, len - (size_t)(rest - url), '@');
    if (at == NULL) {
        put(&w, url, len);
        return buf;
    }
    colon = memchr(rest, ':', (size_t)(at - rest));
    if (rest == url) {
        /* no scheme: we cannot tell user from password; hide it all */
        put(&w, "***", 3);
        put(&w, at, strlen(at));
        return buf;
    }
    if (colon == NULL) {
        put(&w, url, len); /* a user name, no password */
        return buf;
    }
    put(&w, url, (size_t)(colon + 1 - url));
    put(&w, "***", 3);
    put(&w, at, strlen(at));
    return buf;
}

void
drv_redis_url_scrub(char *url)
{
    size_t len, rl, i, tail;
    char *red;

    if (url == NULL)
        return;
    len = strlen(url);
    red = drv_xmalloc(len + 8);
    drv_redis_url_redact(url, red, len + 8);
    rl = strlen(red);
    if (strcmp(red, url) == 0) {
        ; /* no password */
    } else if (rl <= len) {
        memcpy(url, red, rl);
        memset(url + rl, 0, len - rl);
    } else {
        /* the password is shorter than "***": red and url share what
         * comes before it and what follows "***" */
        for (i = 0; i < len && url[i] == red[i]; i++)
            ;
        tail = rl - i - 3;
        memset(url + i, '*', len - tail - i);
    }
    explicit_bzero(red, len + 8);
    free(red);
}

/* ----------------------------------------------------------------- parse */

/*
 * A DNS name: labels of letters, digits, '-' and '_' (service names in
 * container networks use it), 1..63 bytes each, not starting or ending
 * with '-', at most 253 bytes in all; one trailing dot is allowed.
 */
static int
valid_name(const char *h)
{
    size_t n = strlen(h), label = 0, i;

    if (n > 0 && h[n - 1] == '.')
        n--;
    if (n == 0 || n > 253)
        return 0;
    for (i = 0; i < n; i++) {
        char c = h[i];

        if (c == '.') {
            if (label == 0 || h[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return 0;
        if (c == '-' && label == 0)
            return 0;
        if (++label > 63)
            return 0;
    }
    return label > 0 && h[n - 1] != '-';
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

/*
 * Percent-decode [s, s+len) into dst (size dstsz). Returns 0, -EINVAL for
 * a bad escape or an encoded NUL, -ERANGE when it does not fit.
 */
static int
pct_decode(const char *s, size_t len, char *dst, size_t dstsz)
{
    size_t i, o = 0;
    int hi, lo;
    char c;

    for (i = 0; i < len; i++) {
        c = s[i];
        if (c == '%') {
            if (i + 2 >= len)
                return -EINVAL;
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -EINVAL;
            c = (char)(hi << 4 | lo);
            i += 2;
        }
        if (o + 1 >= dstsz)
            return -ERANGE;
        dst[o++] = c;
    }
    dst[o] = '\0';
    return 0;
}

static int
parse_userinfo(const char *ui, size_t len, struct drv_redis_url *u,
               struct drv_err *err, const char *red)
{
    const char *colon = memchr(ui, ':', len);
    size_t ulen = colon != NULL ? (size_t)(colon - ui) : len;
    int rc;

    rc = pct_decode(ui, ulen, u->user, sizeof u->user);
    if (rc < 0)
        return drv_err_set(err, DRV_ECONFIG,
                           "redis url '%s': bad user name (%s)", red,
                           rc == -ERANGE ? "too long" : "bad %-escape");
    if (colon == NULL)
        return 0;
    rc = pct_decode(colon + 1, len - ulen - 1, u->password,
                    sizeof u->password);
    if (rc < 0)
        return drv_err_set(err, DRV_ECONFIG,
                           "redis url '%s': bad password (%s)", red,
                           rc == -ERANGE ? "too long" : "bad %-escape");
    return 0;
}

static int
parse_db(const char *s, size_t len, struct drv_redis_url *u,
         struct drv_err *err, const char *red)
{
    uint64_t v;

    if (len == 0 || drv_parse_uint(s, len, DB_MAX, &v) != 0)
        return drv_err_set(err, DRV_ECONFIG,
                           "redis url '%s': database must be a number "
                           "0..%d", red, DB_MAX);
    u->db = (int)v;
    return 0;
}

static int
parse_tcp(const char *rest, struct drv_redis_url *u, struct drv_err *err,
          const char *red)
{
    const char *hp, *at, *slash, *end, *hs, *he, *ps = NULL, *colon;
    size_t hlen;
    uint64_t port;
    unsigned char addr[16];
    int rc, v6 = 0;

    at = last_char(rest, strlen(rest), '@');
    if (at != NULL) {
        rc = parse_userinfo(rest, (size_t)(at - rest), u, err, red);
        if (rc < 0)
            return rc;
        hp = at + 1;
    } else {
        hp = rest;
    }
    if (strchr(hp, '?') != NULL || strchr(hp, '#') != NULL)
        return drv_err_set(err, DRV_ECONFIG,
                           "redis url '%s': query parameters are not "
                           "supported for redis:// (put the db in the "
                           "path: redis://host:port/db)", red);
    slash = strchr(hp, '/');
    end = slash != NULL ? slash : hp + strlen(hp);
    if (*hp == '[') {
        hs = hp + 1;
        he = memchr(hs, ']', (size_t)(end - hs));
        if (he == NULL)
            return drv_err_set(err, DRV_ECONFIG,
                               "redis url '%s': missing ']' after IPv6 "
                               "address", red);
        if (he + 1 < end && he[1] != ':')
            return drv_err_set(err, DRV_ECONFIG,
                               "redis url '%s': junk after ']'", red);
        if (he + 1 < end)
            ps = he + 2;
        v6 = 1;
    } else {
        hs = hp;
        colon = memchr(hp, ':', (size_t)(end - hp));
        he = colon != NULL ? colon : end;
        if (colon != NULL) {
            ps = colon + 1;
            if (memchr(ps, ':', (size_t)(end - ps)) != NULL)
                return drv_err_set(err, DRV_ECONFIG,
                                   "redis url '%s': an IPv6 address must "
                                   "be in brackets: redis://[::1]:6379",
                                   red);
        }
    }
    hlen = (size_t)(he - hs);
    if (hlen == 0)
        return drv_err_set(err, DRV_ECONFIG, "redis url '%s': missing host",
                           red);
    if (hlen >= sizeof u->host)
        return drv_err_set(err, DRV_ECONFIG,
                           "redis url '%s': host too long", red);
    memcpy(u->host, hs, hlen);
    u->host[hlen] = '\0';
    if (v6 && inet_pton(AF_INET6, u->host, addr) != 1)
        return drv_err_set(err, DRV_ECONFIG,
                           "redis url '%s': '%s' in brackets is not an "
                           "IPv6 address", red, u->host);
    if (!v6 && inet_pton(AF_INET, u->host, addr) != 1 &&
        !valid_name(u->host))
        return drv_err_set(err, DRV_ECONFIG,
                           "redis url '%s': host '%s' is neither an IP "
                           "address nor a valid host name", red, u->host);
    if (ps != NULL) {
        if (ps == end ||
            drv_parse_uint(ps, (size_t)(end - ps), 65535, &port) != 0 ||
            port == 0)
            return drv_err_set(err, DRV_ECONFIG,
                               "redis url '%s': port must be 1..65535",
                               red);
        u->port = (int)port;
    }
    if (slash != NULL && slash[1] != '\0')
        return parse_db(slash + 1, strlen(slash + 1), u, err, red);
    return 0;
}

/* Last occurrence of "@/" in s, or NULL. */
static const char *
last_at_slash(const char *s)
{
    const char *p = NULL, *q = s;

    while ((q = strstr(q, "@/")) != NULL)
        p = q++;
    return p;
}

static int
parse_unix(const char *rest, struct drv_redis_url *u, struct drv_err *err,
           const char *red)
{
    const char *ps = rest, *at, *q;
    size_t plen;
    int rc;

    if (*rest != '/') {
        at = last_at_slash(rest);
        if (at == NULL)
            return drv_err_set(err, DRV_ECONFIG,
                               "redis url '%s': the socket path must be "
                               "absolute: unix:///path/to.sock", red);
        rc = parse_userinfo(rest, (size_t)(at - rest), u, err, red);
        if (rc < 0)
            return rc;
        ps = at + 1;
    }
    q = strchr(ps, '?');
    plen = q != NULL ? (size_t)(q - ps) : strlen(ps);
    rc = pct_decode(ps, plen, u->path, sizeof u->path);
    if (rc < 0)
        return drv_err_set(err, DRV_ECONFIG,
                           "redis url '%s': bad socket path (%s)", red,
                           rc == -ERANGE ? "longer than 107 bytes"
                                         : "bad %-escape");
    if (u->path[0] != '/' || u->path[1] == '\0')
        return drv_err_set(err, DRV_ECONFIG,
                           "redis url '%s': missing socket path", red);
    if (q == NULL)
        return 0;
    if (strncmp(q + 1, "db=", 3) != 0 || strchr(q + 1, '&') != NULL)
        return drv_err_set(err, DRV_ECONFIG,
                           "redis url '%s': the only query parameter is "
                           "db=N", red);
    return parse_db(q + 4, strlen(q + 4), u, err, red);
}

int
drv_redis_url_parse(const char *url, struct drv_redis_url *out,
                    struct drv_err *err)
{
    char red[320];
    const char *sep;
    size_t slen;

    memset(out, 0, sizeof *out);
    out->port = 6379;
    if (url == NULL || *url == '\0')
        return drv_err_set(err, DRV_ECONFIG, "redis url is empty");
    drv_redis_url_redact(url, red, sizeof red);
    sep = strstr(url, "://");
    if (sep == NULL)
        return drv_err_set(err, DRV_ECONFIG,
                           "redis url '%s': expected redis://host:port/db, "
                           "rediss://host:port/db or unix:///path", red);
    slen = (size_t)(sep - url);
    if (slen == 5 && strncasecmp(url, "redis", 5) == 0)
        return parse_tcp(sep + 3, out, err, red);
    if (slen == 6 && strncasecmp(url, "rediss", 6) == 0) {
        out->tls = 1;
        return parse_tcp(sep + 3, out, err, red);
    }
    if (slen == 4 && strncasecmp(url, "unix", 4) == 0) {
        out->is_unix = 1;
        out->port = 0;
        return parse_unix(sep + 3, out, err, red);
    }
    return drv_err_set(err, DRV_ECONFIG,
                       "redis url '%s': unknown scheme (expected redis://, "
                       "rediss:// or unix://)", red);
}
