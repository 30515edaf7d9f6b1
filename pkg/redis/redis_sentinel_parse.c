/*
 * redis_sentinel_parse.c -- the pure parts of Sentinel support: sentinel
 * addresses, the host-less URL of a sentinel setup, and the replies and
 * messages of sentinels and of ROLE. Nothing here does I/O.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "drover/error.h"
#include "drover/parse.h"
#include "drover/redis_sentinel.h"
#include "redis_int.h"

#define PORT_MAX 65535
#define DB_MAX 1000000 /* as the URL parser: far above any "databases" */

/* ---------------------------------------------------------- addresses */

/* Copy [s, s+len) as a host into out; 0 or -EINVAL. */
static int
set_host(struct drv_redis_sentinel_addr *out, const char *s, size_t len,
         struct drv_err *err)
{
    size_t i;

    if (len == 0)
        return drv_err_set(err, -EINVAL, "missing host");
    if (len >= sizeof out->host)
        return drv_err_set(err, -EINVAL, "host too long");
    for (i = 0; i < len; i++)
        if (s[i] == '/' || s[i] == '@' || s[i] == ' ' || s[i] == '\t' ||
            s[i] == '[' || s[i] == ']')
            return drv_err_set(err, -EINVAL,
                               "must be HOST:PORT, e.g. 10.0.0.1:26379");
    memcpy(out->host, s, len);
    out->host[len] = '\0';
    return 0;
}

/* Parse [s, s+len) as a port into out; 0 or -EINVAL. */
static int
set_port(struct drv_redis_sentinel_addr *out, const char *s, size_t len,
         struct drv_err *err)
{
    uint64_t v = 0;

    if (len == 0 || drv_parse_uint(s, len, PORT_MAX, &v) != 0 || v == 0)
        return drv_err_set(err, -EINVAL, "port must be 1..65535");
    out->port = (int)v;
    return 0;
}

int
drv_redis_sentinel_addr_parse(const char *s,
                              struct drv_redis_sentinel_addr *out,
                              struct drv_err *err)
{
    const char *colon = NULL;
    int rc;

    memset(out, 0, sizeof *out);
    out->port = DRV_REDIS_SENTINEL_PORT;
    if (s == NULL || s[0] == '\0')
        return drv_err_set(err, -EINVAL, "must not be empty");
    if (strstr(s, "://") != NULL)
        return drv_err_set(err, -EINVAL,
                           "must be HOST:PORT, e.g. 10.0.0.1:26379, not a "
                           "URL");
    if (s[0] == '[') {
        const char *close = strchr(s, ']');

        if (close == NULL)
            return drv_err_set(err, -EINVAL,
                               "missing ']' after the IPv6 address");
        rc = set_host(out, s + 1, (size_t)(close - s - 1), err);
        if (rc < 0)
            return rc;
        if (close[1] == '\0')
            return 0;
        if (close[1] != ':')
            return drv_err_set(err, -EINVAL, "junk after ']'");
        return set_port(out, close + 2, strlen(close + 2), err);
    }
    colon = strchr(s, ':');
    if (colon != NULL && strchr(colon + 1, ':') != NULL)
        return drv_err_set(err, -EINVAL,
                           "an IPv6 address must be in brackets: "
                           "[::1]:26379");
    rc = set_host(out, s, colon != NULL ? (size_t)(colon - s) : strlen(s),
                  err);
    if (rc < 0 || colon == NULL)
        return rc;
    return set_port(out, colon + 1, strlen(colon + 1), err);
}

void
drv__redis_target_at(struct drv_redis_target *t,
                     const struct drv_redis_sentinel_addr *a)
{
    memset(t, 0, sizeof *t);
    snprintf(t->host, sizeof t->host, "%s", a->host);
    t->port = a->port;
}

/* ---------------------------------------------------------------- URL */

/* Where the host would start in url (after "scheme://" and any user
 * info), or NULL when the scheme is not redis or rediss. */
static const char *
host_start(const char *url)
{
    const char *rest = NULL;
    const char *at = NULL;
    const char *p = NULL;

    if (strncasecmp(url, "redis://", strlen("redis://")) == 0)
        rest = url + strlen("redis://");
    else if (strncasecmp(url, "rediss://", strlen("rediss://")) == 0)
        rest = url + strlen("rediss://");
    else
        return NULL;
    for (p = rest; *p != '\0'; p++)
        if (*p == '@')
            at = p;  /* the user info ends at the LAST '@' */
    return at != NULL ? at + 1 : rest;
}

int
drv__redis_hostless_url_check(const char *url, const char *what,
                              const char *givers, struct drv_err *err)
{
    const char *h = NULL;
    uint64_t db = 0;

    if (url == NULL || (h = host_start(url)) == NULL)
        return drv_err_set(err, -EINVAL,
                           "with %s the url must start with "
                           "redis:// or rediss://", what);
    if (*h != '\0' && *h != '/')
        return drv_err_set(err, -EINVAL,
                           "with %s the url names no host (the "
                           "%s give it): write redis:///DB or "
                           "redis://USER@/DB", what, givers);
    if (*h == '\0' || h[1] == '\0')
        return 0;
    if (drv_parse_uint(h + 1, strlen(h + 1), DB_MAX, &db) != 0)
        return drv_err_set(err, -EINVAL,
                           "database must be a number 0..%d "
                           "(redis:///DB)", DB_MAX);
    return (int)(db > INT32_MAX ? INT32_MAX : db);
}

int
drv_redis_sentinel_url_check(const char *url, struct drv_err *err)
{
    int rc = drv__redis_hostless_url_check(url, "redis.sentinel",
                                           "sentinels", err);

    return rc < 0 ? rc : 0;
}

int
drv_redis_sentinel_url_at(const char *url,
                          const struct drv_redis_sentinel_addr *a,
                          char *out, size_t n)
{
    const char *h = host_start(url);
    int v6 = strchr(a->host, ':') != NULL;
    int w;

    if (h == NULL)
        h = url + strlen(url);  /* checked URLs only: keep it as is */
    w = snprintf(out, n, "%.*s%s%s%s:%d%s", (int)(h - url), url,
                 v6 ? "[" : "", a->host, v6 ? "]" : "", a->port, h);
    if (w < 0 || (size_t)w >= n)
        return -ENAMETOOLONG;
    return 0;
}

/* A growing text in caller memory; full is set when something did not
 * fit (the text is then cut). */
struct text {
    char *buf;      /* borrowed: the output */
    size_t n;       /* its size */
    size_t o;       /* bytes written */
    int full;       /* something did not fit */
};

static void
put(struct text *t, const char *s, size_t len)
{
    if (t->o + len >= t->n) {
        t->full = 1;
        len = t->o + 1 < t->n ? t->n - 1 - t->o : 0;
    }
    memcpy(t->buf + t->o, s, len);
    t->o += len;
    t->buf[t->o] = '\0';
}

/* Put s percent-encoded (all but unreserved characters). */
static void
put_pct(struct text *t, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char e[3];

    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
            c == '~') {
            put(t, s, 1);
        } else {
            e[0] = '%';
            e[1] = hex[c >> 4];
            e[2] = hex[c & 15];
            put(t, e, 3);
        }
    }
}

int
drv_redis_sentinel_conn_url(const char *data_url, const char *user,
                            const struct drv_redis_sentinel_addr *a,
                            char *out, size_t n)
{
    const char *pw = getenv("DROVER_SENTINEL_PASSWORD");
    struct text t = {out, n, 0, 0};
    char port[16];
    int tls = strncasecmp(data_url, "rediss:", strlen("rediss:")) == 0;
    int v6 = strchr(a->host, ':') != NULL;

    if (n == 0)
        return -ENAMETOOLONG;
    out[0] = '\0';
    put(&t, tls ? "rediss://" : "redis://", tls ? 9 : 8);
    if (user != NULL && *user != '\0')
        put_pct(&t, user);
    if (pw != NULL && *pw != '\0') {
        put(&t, ":", 1);
        put_pct(&t, pw);
    }
    if ((user != NULL && *user != '\0') || (pw != NULL && *pw != '\0'))
        put(&t, "@", 1);
    if (v6)
        put(&t, "[", 1);
    put(&t, a->host, strlen(a->host));
    if (v6)
        put(&t, "]", 1);
    snprintf(port, sizeof port, ":%d", a->port);
    put(&t, port, strlen(port));
    if (t.full) {
        explicit_bzero(out, n);
        return -ENAMETOOLONG;
    }
    return 0;
}

/* ------------------------------------------------------------ replies */

/* The text of a bulk or status element, or NULL. */
static const char *
text_of(const redisReply *r)
{
    if (r == NULL || (r->type != REDIS_REPLY_STRING &&
                      r->type != REDIS_REPLY_STATUS))
        return NULL;
    return r->str;
}

/* An error reply: DRV_EREDIS with its text. */
static int
error_reply(const redisReply *reply, const char *what, struct drv_err *err)
{
    return drv_err_set(err, DRV_EREDIS, "%s: %.*s", what,
                       (int)(reply->len < 200 ? reply->len : 200),
                       reply->str);
}

int
drv_redis_sentinel_parse_master(const redisReply *reply,
                                struct drv_redis_sentinel_addr *out,
                                struct drv_err *err)
{
    const char *host = NULL;
    const char *port = NULL;

    memset(out, 0, sizeof *out);
    if (reply == NULL)
        return drv_err_set(err, DRV_EPROTO, "no reply");
    if (reply->type == REDIS_REPLY_NIL)
        return drv_err_set(err, -ENOENT,
                           "the sentinel does not monitor that master");
    if (reply->type == REDIS_REPLY_ERROR)
        return error_reply(reply, "sentinel refused", err);
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        (host = text_of(reply->element[0])) == NULL ||
        (port = text_of(reply->element[1])) == NULL)
        return drv_err_set(err, DRV_EPROTO,
                           "get-master-addr-by-name: expected [host, port]");
    if (set_host(out, host, strlen(host), err) < 0 ||
        set_port(out, port, strlen(port), err) < 0)
        return drv_err_set(err, DRV_EPROTO,
                           "get-master-addr-by-name: bad address %.64s:%.8s",
                           host, port);
    return 0;
}

int
drv_redis_sentinel_parse_role(const redisReply *reply, struct drv_err *err)
{
    const char *role = NULL;

    if (reply == NULL)
        return drv_err_set(err, DRV_EPROTO, "no reply");
    if (reply->type == REDIS_REPLY_ERROR)
        return error_reply(reply, "ROLE refused", err);
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        (role = text_of(reply->element[0])) == NULL)
        return drv_err_set(err, DRV_EPROTO,
                           "ROLE: expected an array naming the role");
    if (strcmp(role, "master") == 0) {
        drv_err_set(err, 0, "master");
        return 1;
    }
    drv_err_set(err, 0, "%.64s", role);
    return 0;
}

/* ------------------------------------------------------------ message */

/* The next space-separated word of [*p, end) into [*s, *s+*len); 0 or -1
 * when there is none. */
static int
next_word(const char **p, const char *end, const char **s, size_t *len)
{
    while (*p < end && **p == ' ')
        (*p)++;
    *s = *p;
    while (*p < end && **p != ' ')
        (*p)++;
    *len = (size_t)(*p - *s);
    return *len > 0 ? 0 : -1;
}

int
drv_redis_sentinel_parse_switch(const char *text, size_t len,
                                struct drv_redis_sentinel_switch *out,
                                struct drv_err *err)
{
    const char *p = text;
    const char *end = text + len;
    const char *w[5];
    size_t wl[5];
    size_t i;

    memset(out, 0, sizeof *out);
    for (i = 0; i < 5; i++)
        if (next_word(&p, end, &w[i], &wl[i]) < 0)
            return drv_err_set(err, DRV_EPROTO,
                               "+switch-master: expected 5 words");
    while (p < end && *p == ' ')
        p++;
    if (p != end || wl[0] >= sizeof out->name ||
        set_host(&out->from, w[1], wl[1], NULL) < 0 ||
        set_port(&out->from, w[2], wl[2], NULL) < 0 ||
        set_host(&out->to, w[3], wl[3], NULL) < 0 ||
        set_port(&out->to, w[4], wl[4], NULL) < 0)
        return drv_err_set(err, DRV_EPROTO,
                           "+switch-master: expected NAME OLD-IP OLD-PORT "
                           "NEW-IP NEW-PORT");
    memcpy(out->name, w[0], wl[0]);
    out->name[wl[0]] = '\0';
    return 0;
}
