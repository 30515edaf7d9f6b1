/*
 * web.h -- private declarations of `drover web`, the dashboard.
 *
 * DESIGN. One process, one thread, one libevent loop. evhttp parses the
 * requests (with limits on header size, body size and time, so a slow or
 * hostile client costs a connection, never the loop); web.c checks every
 * request (authentication, Host, CSRF, method) before routing it to an
 * API handler (web_api.c) or to an asset compiled into the binary
 * (web_assets.c, generated at build time from cmd/drover/web/).
 *
 * Redis: the CLI's blocking hiredis connection (cli_redis.c), each command
 * bounded by DRV_CLI_TIMEOUT_MS. A handler that finds it broken frees it;
 * the next request connects again. While a command runs, the loop waits:
 * an admin tool answering a handful of people can afford that, and it
 * keeps every reply consistent with one view of Redis.
 *
 * Security (the checks in web.c, in this order):
 *   - no token: only loopback addresses may be listened on, and the Host
 *     header must name a loopback address (a page on another site cannot
 *     reach us through DNS rebinding);
 *   - with a token: every request carries `Authorization: Bearer TOKEN`
 *     or the session cookie /login?token=TOKEN sets (HttpOnly,
 *     SameSite=Strict; a random per-process value, not the token);
 *   - every POST carries header X-CSRF-Token equal to the per-process
 *     random token GET /api/session hands the page, and an Origin header,
 *     when present, must match Host; otherwise 403 and nothing changes;
 *   - every reply has a strict Content-Security-Policy (scripts, styles
 *     and connections from 'self' only, no inline code, no framing),
 *     X-Content-Type-Options nosniff and no caching of API data.
 */
#ifndef DROVER_WEB_H
#define DROVER_WEB_H

#include <stddef.h>

#include <event2/event.h>
#include <event2/http.h>

#include "drover/buf.h"

#include "cli.h"

/* limits evhttp enforces on every connection */
#define DRV_WEB_MAX_HEADERS  8192    /* bytes of request line + headers */
#define DRV_WEB_MAX_BODY     65536   /* bytes of request body */
#define DRV_WEB_TIMEOUT_S    10      /* read/write idle timeout */

#define DRV_WEB_SECRET_HEX   64      /* session and CSRF tokens: 32 bytes */
#define DRV_WEB_COOKIE       "drover_session"
#define DRV_WEB_CSRF_HEADER  "X-CSRF-Token"

/* dead letters shown per page: default and most */
#define DRV_WEB_DEAD_COUNT   20
#define DRV_WEB_DEAD_MAX     500

struct drv_web {
    unsigned magic;
#define DRV_WEB_MAGIC 0x3eb0da5bU
    struct drv_cli *cli;        /* borrowed: config and Redis connection */
    struct event_base *base;    /* owned */
    struct evhttp *http;        /* owned */
    struct event *sig_int;      /* owned: SIGINT stops the loop */
    struct event *sig_term;     /* owned: SIGTERM stops the loop */
    char *token;                /* owned: from --token-file; NULL = none */
    char session[DRV_WEB_SECRET_HEX + 1]; /* cookie value after login */
    char csrf[DRV_WEB_SECRET_HEX + 1];    /* the page's CSRF token */
    char url[300];              /* http://HOST:PORT/ as listened */
};

/* One compiled-in file (web_assets.c, generated). */
struct drv_web_asset {
    const char *path;           /* "/app.js" */
    const char *type;           /* Content-Type */
    const unsigned char *data;  /* static */
    size_t len;
};

extern const struct drv_web_asset drv__web_assets[];
extern const size_t drv__web_nassets;

/* ---------------------------------------------------------- web.c */

/*
 * drv__web_reply -- send a reply with the security headers, Content-Type
 * type and body[0..len) (copied). For API replies type is JSON and the
 * reply must not be cached.
 */
void drv__web_reply(struct evhttp_request *req, int code, const char *type,
                    const void *body, size_t len);

/* drv__web_json -- drv__web_reply with b's bytes as application/json. */
void drv__web_json(struct evhttp_request *req, int code,
                   const struct drv_buf *b);

/* drv__web_error -- a JSON error reply {"error": MESSAGE}. */
void drv__web_error(struct evhttp_request *req, int code, const char *fmt,
                    ...) __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------ web_api.c */

/*
 * drv__web_api -- answer a request for path /api/... (already
 * authenticated; POSTs already CSRF-checked). segs[0..n) are the
 * percent-decoded path segments after "api".
 */
void drv__web_api(struct drv_web *web, struct evhttp_request *req,
                  char **segs, size_t n);

#endif
