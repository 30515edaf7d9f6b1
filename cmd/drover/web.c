/*
 * web.c -- `drover web [--listen HOST:PORT] [--token-file FILE]`: the
 * dashboard's HTTP server. Flags, listening, the checks every request
 * passes (see the DESIGN comment in web.h), routing, compiled-in assets.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include "drover/common.h"
#include "drover/error.h"
#include "drover/loop.h"
#include "drover/parse.h"

#include "web.h"

#define DEFAULT_LISTEN "127.0.0.1:8080"
#define TOKEN_MAX 4096          /* bytes of a token file */
#define PATH_SEGS_MAX 8         /* path segments we route on */

/* Sent with every reply. 'self' only: no inline script or style, no
 * framing, no plugins, forms and <base> pinned. */
static const char csp[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/* ---------------------------------------------------------- replies */

void
drv__web_reply(struct evhttp_request *req, int code, const char *type,
               const void *body, size_t len)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    struct evbuffer *out = evhttp_request_get_output_buffer(req);

    evhttp_add_header(h, "Content-Type", type);
    evhttp_add_header(h, "Content-Security-Policy", csp);
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
    evhttp_add_header(h, "Cross-Origin-Opener-Policy", "same-origin");
    evhttp_add_header(h, "Cross-Origin-Resource-Policy", "same-origin");
    evhttp_add_header(h, "Cache-Control", "no-store");
    if (len > 0)
        DRV_AZ(evbuffer_add(out, body, len));
    evhttp_send_reply(req, code, NULL, NULL);
}

void
drv__web_json(struct evhttp_request *req, int code, const struct drv_buf *b)
{
    drv__web_reply(req, code, "application/json; charset=utf-8", b->data,
                   b->len);
}

void
drv__web_error(struct evhttp_request *req, int code, const char *fmt, ...)
{
    struct drv_buf b;
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    drv_buf_init(&b);
    drv_buf_adds(&b, "{\"error\":");
    drv_buf_json_str(&b, msg, strlen(msg));
    drv_buf_adds(&b, "}\n");
    drv__web_json(req, code, &b);
    drv_buf_fini(&b);
}

static void
text_reply(struct evhttp_request *req, int code, const char *text)
{
    drv__web_reply(req, code, "text/plain; charset=utf-8", text,
                   strlen(text));
}

/* An error for an API path as JSON, for anything else as text. */
static void
refuse(struct evhttp_request *req, int api, int code, const char *text)
{
    if (api)
        drv__web_error(req, code, "%s", text);
    else
        text_reply(req, code, text);
}

/* ---------------------------------------------------------- secrets */

/* Equal strings, in time that depends on the lengths only. */
static int
secret_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    unsigned char d = 0;
    size_t i;

    if (alen != blen)
        return 0;
    for (i = 0; i < alen; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

static int
secret_eqs(const char *given, const char *want)
{
    return given != NULL &&
           secret_eq(given, strlen(given), want, strlen(want));
}

/* 32 random bytes as 64 hex digits; 0 or -errno. */
static int
new_secret(char out[DRV_WEB_SECRET_HEX + 1])
{
    unsigned char raw[DRV_WEB_SECRET_HEX / 2];
    size_t i;

    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return -errno;
    for (i = 0; i < sizeof raw; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    explicit_bzero(raw, sizeof raw);
    return 0;
}

/*
 * Read the token file: its first line, without the line end. Refused when
 * empty, longer than TOKEN_MAX, holding control bytes or spaces (they
 * could not travel in a header), or readable by others.
 */
static int
read_token(struct drv_cli *cli, const char *file, char **out)
{
    char buf[TOKEN_MAX + 2];
    struct stat st;
    ssize_t n;
    size_t len, i;
    int fd, rc = 0;

    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "%s: --token-file %s: %s\n", cli->prog, file,
                strerror(errno));
        return DRV_ECONFIG;
    }
    if (fstat(fd, &st) == 0 && (st.st_mode & S_IROTH))
        fprintf(stderr, "%s: warning: --token-file %s is readable by "
                "everyone\n", cli->prog, file);
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0) {
        fprintf(stderr, "%s: --token-file %s: %s\n", cli->prog, file,
                strerror(errno));
        return DRV_ECONFIG;
    }
    buf[n] = '\0';
    len = strcspn(buf, "\r\n");
    buf[len] = '\0';
    for (i = 0; i < len; i++)
        if ((unsigned char)buf[i] <= ' ' || buf[i] == 0x7f)
            rc = DRV_ECONFIG;
    if (len == 0 || len > TOKEN_MAX || rc < 0) {
        fprintf(stderr, "%s: --token-file %s: the first line must be a "
                "token of 1 to %d printable characters without spaces\n",
                cli->prog, file, TOKEN_MAX);
        rc = DRV_ECONFIG;
    } else {
        *out = drv_xstrdup(buf);
    }
    explicit_bzero(buf, sizeof buf);
    return rc;
}

/* ---------------------------------------------------------- listening */

static int
is_loopback(const struct sockaddr *sa)
{
    const struct sockaddr_in *in4 = (const void *)sa;
    const struct sockaddr_in6 *in6 = (const void *)sa;

    if (sa->sa_family == AF_INET)
        return (ntohl(in4->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    return 0;
}

/* 1 when every address host names is a loopback address, 0 when one is
 * not, -1 when it names none. */
static int
host_is_loopback(const char *host)
{
    struct addrinfo hints, *res = NULL, *ai;
    int all = 1;

    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, NULL, &hints, &res) != 0)
        return -1;
    for (ai = res; ai != NULL; ai = ai->ai_next)
        if (!is_loopback(ai->ai_addr))
            all = 0;
    freeaddrinfo(res);
    return all;
}

/*
 * Without a token, the Host header must name the loopback (or be absent,
 * as with HTTP/1.0): a hostile page that rebinds its own name to 127.0.0.1
 * sends its own name as Host and is refused.
 */
static int
host_header_ok(const char *hv)
{
    static const char *const names[] = {"localhost", "127.0.0.1",
                                        "[::1]"};
    size_t i, n;

    if (hv == NULL)
        return 1;
    for (i = 0; i < DRV_ARRAY_LEN(names); i++) {
        n = strlen(names[i]);
        if (strncasecmp(hv, names[i], n) == 0 &&
            (hv[n] == '\0' || hv[n] == ':'))
            return 1;
    }
    return 0;
}

/* ---------------------------------------------------------- requests */

/* The value of cookie name in a Cookie header, copied into out. */
static int
cookie_get(const char *header, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name), vl;
    const char *p = header;

    while (p != NULL && *p != '\0') {
        while (*p == ' ' || *p == ';')
            p++;
        vl = strcspn(p, ";");
        if (vl > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            vl -= nl + 1;
            if (vl >= n)
                return 0;
            memcpy(out, p + nl + 1, vl);
            out[vl] = '\0';
            return 1;
        }
        p = strchr(p, ';');
    }
    return 0;
}

/* With a token: the Bearer header or the session cookie. */
static int
authenticated(const struct drv_web *web, struct evkeyvalq *in)
{
    const char *auth = evhttp_find_header(in, "Authorization");
    const char *cookie = evhttp_find_header(in, "Cookie");
    char value[DRV_WEB_SECRET_HEX + 2];

    if (web->token == NULL)
        return 1;
    if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0 &&
        secret_eqs(auth + 7, web->token))
        return 1;
    return cookie != NULL &&
           cookie_get(cookie, DRV_WEB_COOKIE, value, sizeof value) &&
           secret_eqs(value, web->session);
}

/* A POST: the CSRF header, and an Origin (browsers send one) that names
 * the host we were asked for. */
static int
csrf_ok(const struct drv_web *web, struct evkeyvalq *in)
{
    const char *origin = evhttp_find_header(in, "Origin");
    const char *host = evhttp_find_header(in, "Host");
    const char *rest = NULL;

    if (!secret_eqs(evhttp_find_header(in, DRV_WEB_CSRF_HEADER),
                    web->csrf))
        return 0;
    if (origin == NULL)
        return 1;
    if (strncmp(origin, "http://", 7) == 0)
        rest = origin + 7;
    else if (strncmp(origin, "https://", 8) == 0)
        rest = origin + 8;
    return rest != NULL && host != NULL && strcasecmp(rest, host) == 0;
}

/* GET /login?token=T: set the session cookie and go to the page. */
static void
login(struct drv_web *web, struct evhttp_request *req, const char *query)
{
    struct evkeyvalq q;
    const char *given = NULL;
    char cookie[160];
    int ok;

    if (web->token == NULL) {
        evhttp_add_header(evhttp_request_get_output_headers(req),
                          "Location", "/");
        text_reply(req, 303, "no token needed\n");
        return;
    }
    TAILQ_INIT(&q);
    if (query != NULL && evhttp_parse_query_str(query, &q) == 0)
        given = evhttp_find_header(&q, "token");
    ok = secret_eqs(given, web->token);
    evhttp_clear_headers(&q);
    if (!ok) {
        text_reply(req, 401, "wrong or missing token\n");
        return;
    }
    snprintf(cookie, sizeof cookie,
             DRV_WEB_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict",
             web->session);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Set-Cookie",
                      cookie);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Location",
                      "/");
    text_reply(req, 303, "logged in\n");
}

static void
serve_asset(struct evhttp_request *req, const char *path)
{
    size_t i;

    if (strcmp(path, "/") == 0)
        path = "/index.html";
    for (i = 0; i < drv__web_nassets; i++)
        if (strcmp(drv__web_assets[i].path, path) == 0) {
            drv__web_reply(req, 200, drv__web_assets[i].type,
                           drv__web_assets[i].data, drv__web_assets[i].len);
            return;
        }
    text_reply(req, 404, "not found\n");
}

/*
 * Split the (still percent-encoded) path after "/api/" at '/' and decode
 * each segment. A segment that decodes to a NUL byte, an empty segment or
 * too many segments: -EINVAL. Each segs[i] is owned by the caller.
 */
static int
split_api_path(const char *path, char **segs, size_t *n)
{
    const char *p = path, *slash;
    size_t len, dlen = 0;
    char *raw = NULL, *dec = NULL;

    *n = 0;
    while (*p != '\0') {
        slash = strchr(p, '/');
        len = slash != NULL ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || *n == PATH_SEGS_MAX)
            return -EINVAL;
        raw = drv_xstrndup(p, len);
        dec = evhttp_uridecode(raw, 0, &dlen);
        free(raw);
        if (dec == NULL)
            return -ENOMEM;
        if (dlen != strlen(dec) || dlen == 0) {
            free(dec);
            return -EINVAL;
        }
        segs[(*n)++] = dec;
        p += len;
        if (*p == '/')
            p++;
        if (*p == '\0' && slash != NULL)
            return -EINVAL;  /* a trailing '/' */
    }
    return 0;
}

static void
on_request(struct evhttp_request *req, void *ctx)
{
    struct drv_web *web = NULL;
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const char *path = evhttp_uri_get_path(uri);
    char *segs[PATH_SEGS_MAX];
    size_t nsegs = 0, i;
    int api;

    DRV_CAST(web, ctx, DRV_WEB_MAGIC);
    if (path == NULL || path[0] != '/') {
        text_reply(req, 400, "bad request path\n");
        return;
    }
    api = strncmp(path, "/api/", 5) == 0;
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD &&
        cmd != EVHTTP_REQ_POST) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          "GET, HEAD, POST");
        refuse(req, api, 405, "method not allowed");
        return;
    }
    if (web->token == NULL &&
        !host_header_ok(evhttp_find_header(in, "Host"))) {
        refuse(req, api, 403, "the Host header must name the loopback "
               "address (start drover web with --token-file to serve "
               "other names)");
        return;
    }
    if (strcmp(path, "/login") == 0 && cmd == EVHTTP_REQ_GET) {
        login(web, req, evhttp_uri_get_query(uri));
        return;
    }
    if (!authenticated(web, in)) {
        refuse(req, api, 401, "authentication needed: open /login?token="
               "TOKEN once, or send Authorization: Bearer TOKEN");
        return;
    }
    if (cmd == EVHTTP_REQ_POST && !csrf_ok(web, in)) {
        refuse(req, api, 403, "missing or wrong " DRV_WEB_CSRF_HEADER
               " header (or a foreign Origin)");
        return;
    }
    if (!api) {
        if (cmd == EVHTTP_REQ_POST) {
            text_reply(req, 405, "method not allowed\n");
            return;
        }
        serve_asset(req, path);
        return;
    }
    if (split_api_path(path + 5, segs, &nsegs) < 0) {
        for (i = 0; i < nsegs; i++)
            free(segs[i]);
        drv__web_error(req, 400, "bad path");
        return;
    }
    drv__web_api(web, req, segs, nsegs);
    for (i = 0; i < nsegs; i++)
        free(segs[i]);
}

/* ---------------------------------------------------------- command */

static void
on_signal(evutil_socket_t sig DRV_UNUSED, short what DRV_UNUSED, void *ctx)
{
    struct drv_web *web = NULL;

    DRV_CAST(web, ctx, DRV_WEB_MAGIC);
    event_base_loopbreak(web->base);
}

/* Bind, learn the port really bound (for --listen HOST:0) and say where. */
static int
listen_on(struct drv_web *web, const char *host, int port)
{
    struct evhttp_bound_socket *bound = NULL;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char addr[INET6_ADDRSTRLEN];
    int real_port = port;

    bound = evhttp_bind_socket_with_handle(web->http, host,
                                           (ev_uint16_t)port);
    if (bound == NULL) {
        fprintf(stderr, "%s: cannot listen on %s port %d: %s\n",
                web->cli->prog, host, port, strerror(errno));
        return -EADDRINUSE;
    }
    if (getsockname(evhttp_bound_socket_get_fd(bound),
                    (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

            real_port = ntohs(s6->sin6_port);
            inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof addr);
            snprintf(web->url, sizeof web->url, "http://[%s]:%d/", addr,
                     real_port);
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

            real_port = ntohs(s4->sin_port);
            inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof addr);
            snprintf(web->url, sizeof web->url, "http://%s:%d/", addr,
                     real_port);
        }
    }
    return 0;
}

static int
web_setup(struct drv_web *web, const char *host, int port)
{
    if (new_secret(web->session) < 0 || new_secret(web->csrf) < 0) {
        fprintf(stderr, "%s: getrandom: %s\n", web->cli->prog,
                strerror(errno));
        return -EIO;
    }
    web->base = event_base_new();
    if (web->base == NULL)
        return -ENOMEM;
    web->http = evhttp_new(web->base);
    if (web->http == NULL)
        return -ENOMEM;
    evhttp_set_max_headers_size(web->http, DRV_WEB_MAX_HEADERS);
    evhttp_set_max_body_size(web->http, DRV_WEB_MAX_BODY);
    evhttp_set_timeout(web->http, DRV_WEB_TIMEOUT_S);
    /* every method evhttp knows reaches on_request, which answers 405
     * for those we do not serve (evhttp itself would say 501) */
    evhttp_set_allowed_methods(web->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST
                               | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT
                               | EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS
                               | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT
                               | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(web->http, on_request, web);
    web->sig_int = evsignal_new(web->base, SIGINT, on_signal, web);
    web->sig_term = evsignal_new(web->base, SIGTERM, on_signal, web);
    if (web->sig_int == NULL || web->sig_term == NULL)
        return -ENOMEM;
    DRV_AZ(event_add(web->sig_int, NULL));
    DRV_AZ(event_add(web->sig_term, NULL));
    return listen_on(web, host, port);
}

static void
web_teardown(struct drv_web *web)
{
    drv_loop_event_free(web->sig_int);
    drv_loop_event_free(web->sig_term);
    if (web->http != NULL)
        evhttp_free(web->http);
    if (web->base != NULL)
        event_base_free(web->base);
    if (web->token != NULL) {
        explicit_bzero(web->token, strlen(web->token));
        free(web->token);
    }
    explicit_bzero(web, sizeof *web);
}

int
drv__cli_web(struct drv_cli *cli, int argc, char **argv)
{
    const char *listen_arg = DEFAULT_LISTEN, *token_file = NULL;
    struct drv_web web;
    char host[256];
    int port = 0, rc, loop;

    rc = drv__cli_args(cli, argc, argv, "--listen= --token-file=",
                       &listen_arg, &token_file, NULL);
    if (rc < 0)
        return rc;
    if (drv_parse_hostport(listen_arg, host, sizeof host, &port) < 0)
        return drv__cli_usage_error(cli, "--listen \"%s\": want HOST:PORT "
                                    "(or [IPV6]:PORT)", listen_arg);
    loop = host_is_loopback(host);
    if (loop < 0)
        return drv__cli_usage_error(cli, "--listen \"%s\": cannot resolve "
                                    "%s", listen_arg, host);
    if (!loop && token_file == NULL)
        return drv__cli_usage_error(cli, "--listen %s is not a loopback "
                                    "address: give --token-file FILE so "
                                    "only holders of the token get in",
                                    listen_arg);
    memset(&web, 0, sizeof web);
    web.magic = DRV_WEB_MAGIC;
    web.cli = cli;
    if (token_file != NULL) {
        rc = read_token(cli, token_file, &web.token);
        if (rc < 0)
            goto out;
    }
    rc = drv__cli_config(cli);
    if (rc < 0)
        goto out;
    rc = web_setup(&web, host, port);
    if (rc < 0)
        goto out;
    /* the first connection is made now to report a wrong URL early; a
     * Redis that is down is not fatal: each request tries again */
    (void)drv__cli_connect(cli);
    printf("drover web: dashboard at %s%s (Redis %s)\n", web.url,
           web.token != NULL ? " (open /login?token=TOKEN once)" : "",
           cli->url_shown);
    fflush(stdout);
    event_base_dispatch(web.base);
    fprintf(stderr, "%s: stopping\n", cli->prog);
    rc = 0;
out:
    web_teardown(&web);
    return rc;
}
