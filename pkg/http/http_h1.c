/*
 * http_h1.c -- a small HTTP/1.1 client for plain http://, on libevent;
 * http.c uses it instead of libcurl for those URLs
 * (tests/bench/README.md has the measurements that justify it: libcurl's
 * per-transfer work was most of a webhook job's CPU).
 *
 * DESIGN
 * Connections are kept per address (struct host): a request takes the
 * most recently used idle one, else opens a new one (non-blocking
 * connect) unless max_host / max_total are reached, in which case it
 * waits on the client's FIFO wait list until a connection frees up. A
 * connection back from a request is kept idle unless the server said
 * close, sent more than the response, or max_kept connections are
 * already open.
 *
 * A target has one address (a numeric host) or the few getaddrinfo gave
 * for a name (http_dns.c), tried in that order. A request takes an idle
 * connection to any of them first; else it opens one to the first
 * address whose last connect did not fail (host->down; the first of all
 * if every one failed), and a connect that fails, at once or when the
 * socket says so, goes on to the next address (next_address counts it):
 * only the last address's failure ends the request. Keeping connections
 * per address, and reusing any address's idle one, keeps the connections
 * opened for a name at its concurrency.
 *
 * Each connection has one persistent read event, on the loop for its
 * whole life: busy, it reads the response; idle, a readable socket means
 * the server closed it (or sent garbage) and it is closed at once. So
 * reusing a connection costs no epoll_ctl and no poll, only one
 * recv(MSG_PEEK): every idle connection is checked with it before it is
 * used. The write event is added only while connecting or when a write
 * would block. With nothing to do for a while the client takes its idle
 * connections off the loop (drv__h1_unwatch_idle).
 *
 * A connection idle longer than max_idle is not used again: a NAT, a
 * firewall or a load balancer may have dropped it without a FIN or RST,
 * and a request on it would hang until its timeout. Idle connections sit
 * on one list in the order they went idle (h1->aged, longest idle
 * first), and one timer (age_ev) is due when the first of them reaches
 * max_idle: it closes every connection within age_slack of the limit (so
 * connections that went idle together close on one wakeup, and the timer
 * comes at most once per age_slack) and is set again for the next. It is
 * not taken off when a connection is reused (that would cost a heap
 * operation per request); it then comes early, closes nothing and is set
 * again, and it is not set again once no connection is idle. take_idle
 * checks the age too, so a late timer never lets an old connection
 * through. An idle client thus keeps one timer while it has idle
 * connections, and none once they have aged out.
 *
 * The request (head and body, borrowed from the caller) goes out in one
 * sendmsg; the response is read into the connection's buffer, one read
 * per readiness, and parsed in place: body bytes are copied once, into
 * the caller's buffer, up to body_max.
 *
 * A kept connection can be closed by the server just as a request goes
 * out on it. A kept connection is peeked at before it is used, so a
 * close that already came in is seen before anything is sent. When a
 * request on a kept connection got no byte of a response (write failed,
 * or the read saw the close), it is sent again once on a new connection
 * if nothing of it was sent or its method is idempotent (GET, HEAD, PUT,
 * DELETE, OPTIONS, TRACE): a POST the server read may have been acted
 * on, so it fails instead (unlike libcurl, which sends it again).
 *
 * Completions run the transfer's hook from the connection's or the
 * timer's callback, as the last thing the callback does (the hook may
 * free the client).
 *
 * Loop thread only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/event.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/http.h"
#include "http_int.h"

#define KEPT_DEFAULT 64
#define RBUF_MIN 4096           /* a connection's read buffer to start */
#define KEEPALIVE_S 60          /* TCP keepalive idle and interval */
#define AGE_SLACK_MAX_NS (1000 * DRV_NS_PER_MS) /* see on_age_ev */
#define MAX_IDLE_MAX_MS (INT64_C(1) << 40)      /* 34 years */

/* ================================================================ parser */

void
drv__h1_parser_init(struct drv__h1_parser *p, struct drv_buf *body,
                    size_t body_max, int head_only)
{
    struct drv_buf loc = p->location;

    memset(p, 0, sizeof *p);
    p->location = loc;
    drv_buf_reset(&p->location);
    p->head_only = head_only;
    p->clen = -1;
    p->retry_after_ms = -1;
    p->body = body;
    p->body_max = body_max;
    p->error = "";
}

void
drv__h1_parser_fini(struct drv__h1_parser *p)
{
    drv_buf_fini(&p->location);
}

static int
is_sp(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* "HTTP/1.x NNN reason": 0 or DRV_EPROTO. */
static int
parse_status(struct drv__h1_parser *p, const char *s, size_t n)
{
    size_t i, k;

    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 ||
        (s[7] != '0' && s[7] != '1') || s[8] != ' ' ||
        s[9] < '1' || s[9] > '9' || s[10] < '0' || s[10] > '9' ||
        s[11] < '0' || s[11] > '9' || (n > 12 && s[12] != ' ')) {
        p->error = "the server's reply is not an HTTP/1.x status line";
        return DRV_EPROTO;
    }
    p->version = s[7] == '1' ? 11 : 10;
    p->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    p->keep_alive = p->version == 11;
    p->clen = -1;
    p->chunked = 0;
    p->has_te = 0;
    p->retry_after_ms = -1;
    drv_buf_reset(&p->location);
    for (i = 12; i < n && s[i] == ' '; i++)
        ;
    /* a NUL or a lone CR ends it too, as in libcurl's copy of the line */
    for (k = 0; i < n && s[i] != '\0' && s[i] != '\r' &&
                k + 1 < DRV__H1_REASON_MAX; i++)
        p->reason[k++] = s[i];
    while (k > 0 && (p->reason[k - 1] == ' ' || p->reason[k - 1] == '\t'))
        k--;
    p->reason[k] = '\0';
    return 0;
}

/* 1 if value v[0..n) holds token tok as one of its comma-separated
 * items (case-insensitive). */
static int
has_token(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok), i = 0;

    while (i < n) {
        size_t a, b;

        while (i < n && (is_sp(v[i]) || v[i] == ','))
            i++;
        a = i;
        while (i < n && v[i] != ',')
            i++;
        b = i;
        while (b > a && is_sp(v[b - 1]))
            b--;
        if (b - a == tl && strncasecmp(v + a, tok, tl) == 0)
            return 1;
    }
    return 0;
}

/* 1 if the last comma-separated item of v is tok. */
static int
last_token_is(const char *v, size_t n, const char *tok)
{
    size_t tl = strlen(tok), b = n, a;

    while (b > 0 && is_sp(v[b - 1]))
        b--;
    a = b;
    while (a > 0 && v[a - 1] != ',')
        a--;
    while (a < b && is_sp(v[a]))
        a++;
    return b - a == tl && strncasecmp(v + a, tok, tl) == 0;
}

#define NAME_IS(s, nl, lit) \
    ((nl) == sizeof(lit) - 1 && strncasecmp((s), (lit), (nl)) == 0)

/* One header line s[0..n) without its line end: 0 or DRV_EPROTO. */
static int
parse_header(struct drv__h1_parser *p, const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n), *v;
    size_t nl, vl;

    if (is_sp(s[0]))
        return 0; /* an obsolete folded continuation: ignored */
    if (colon == NULL || colon == s) {
        p->error = "a response header line without a name and colon";
        return DRV_EPROTO;
    }
    nl = (size_t)(colon - s);
    v = colon + 1;
    vl = n - nl - 1;
    while (vl > 0 && is_sp(v[0])) {
        v++;
        vl--;
    }
    while (vl > 0 && is_sp(v[vl - 1]))
        vl--;
    switch (s[0] | 0x20) {
    case 'c':
        if (NAME_IS(s, nl, "content-length")) {
            int64_t len = 0;
            size_t i;

            if (vl == 0 || vl > 18) {
                p->error = "a Content-Length that is not a number";
                return DRV_EPROTO;
            }
            for (i = 0; i < vl; i++) {
                if (v[i] < '0' || v[i] > '9') {
                    p->error = "a Content-Length that is not a number";
                    return DRV_EPROTO;
                }
                len = len * 10 + (v[i] - '0');
            }
            if (p->clen >= 0 && p->clen != len) {
                p->error = "two different Content-Length headers";
                return DRV_EPROTO;
            }
            p->clen = len;
        } else if (NAME_IS(s, nl, "connection")) {
            if (has_token(v, vl, "close"))
                p->keep_alive = 0;
            else if (p->version == 10 && has_token(v, vl, "keep-alive"))
                p->keep_alive = 1;
        }
        break;
    case 't':
        if (NAME_IS(s, nl, "transfer-encoding")) {
            p->has_te = 1;
            p->chunked = last_token_is(v, vl, "chunked");
        }
        break;
    case 'r':
        if (NAME_IS(s, nl, "retry-after"))
            p->retry_after_ms = drv_http_parse_retry_after(
                v, vl, drv_clock_unix_ms());
        break;
    case 'l':
        if (NAME_IS(s, nl, "location")) {
            drv_buf_reset(&p->location);
            drv_buf_add(&p->location, v, vl);
        }
        break;
    default:
        break;
    }
    return 0;
}

/* The head is whole: where the body starts, or 1 when there is none. */
static int
head_done(struct drv__h1_parser *p)
{
    if (p->status < 200) {
        /* interim (100 Continue ...): the final response follows */
        p->state = H1P_STATUS;
        return 0;
    }
    if (p->head_only || p->status == 204 || p->status == 304) {
        p->state = H1P_DONE;
        return 1;
    }
    if (p->has_te) {
        /* RFC 9112 6.1, 6.3: with a Content-Length too, or in HTTP/1.0,
         * the framing may be a response splitting attempt: the body is
         * read by Transfer-Encoding, the connection not used again */
        if (p->clen >= 0 || p->version == 10)
            p->keep_alive = 0;
        if (p->chunked) {
            p->state = H1P_CHUNK_SIZE;
            return 0;
        }
        p->keep_alive = 0; /* RFC 9112 6.3: the body ends at the close */
        p->state = H1P_BODY_CLOSE;
        return 0;
    }
    if (p->clen >= 0) {
        p->left = (uint64_t)p->clen;
        p->state = p->left > 0 ? H1P_BODY_LEN : H1P_DONE;
        return p->state == H1P_DONE;
    }
    p->keep_alive = 0;
    p->state = H1P_BODY_CLOSE;
    return 0;
}

static void
keep_body(struct drv__h1_parser *p, const char *s, size_t n)
{
    size_t room = p->body_max - p->body->len, keep = n < room ? n : room;

    if (keep > 0)
        drv_buf_add(p->body, s, keep);
    if (keep < n)
        p->truncated = 1;
}

/* "1a;ext": 0 with *size, or DRV_EPROTO. */
static int
chunk_size(struct drv__h1_parser *p, const char *s, size_t n, uint64_t *size)
{
    uint64_t v = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        int d;

        if (s[i] >= '0' && s[i] <= '9')
            d = s[i] - '0';
        else if ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'f')
            d = (s[i] | 0x20) - 'a' + 10;
        else
            break;
        if (i >= 15) {
            p->error = "a chunk size too large";
            return DRV_EPROTO;
        }
        v = v * 16 + (uint64_t)d;
    }
    if (i == 0 || (i < n && s[i] != ';' && !is_sp(s[i]))) {
        p->error = "a chunk size that is not hexadecimal";
        return DRV_EPROTO;
    }
    *size = v;
    return 0;
}

int
drv__h1_parse(struct drv__h1_parser *p, const char *buf, size_t n,
              size_t *used)
{
    size_t off = 0;
    int rc;

    *used = 0;
    if (n > 0 && p->state != H1P_DONE)
        p->got_bytes = 1;
    while (p->state != H1P_DONE) {
        const char *line, *nl;
        size_t len;

        switch (p->state) {
        case H1P_BODY_LEN:
        case H1P_CHUNK_DATA:
            len = n - off;
            if (len > p->left)
                len = (size_t)p->left;
            keep_body(p, buf + off, len);
            off += len;
            p->left -= len;
            if (p->left > 0)
                goto more;
            p->state = p->state == H1P_BODY_LEN ? H1P_DONE : H1P_CHUNK_END;
            continue;
        case H1P_BODY_CLOSE:
            keep_body(p, buf + off, n - off);
            off = n;
            goto more;
        default:
            break;
        }
        /* a line */
        line = buf + off;
        nl = memchr(line, '\n', n - off);
        if (nl == NULL) {
            if (p->head_bytes + (n - off) > DRV__H1_HEAD_MAX) {
                p->error = "response header too large";
                return DRV_EPROTO;
            }
            goto more;
        }
        len = (size_t)(nl - line);
        off += len + 1;
        p->head_bytes += len + 1;
        if (p->head_bytes > DRV__H1_HEAD_MAX) {
            p->error = "response header too large";
            return DRV_EPROTO;
        }
        if (len > 0 && line[len - 1] == '\r')
            len--;
        switch (p->state) {
        case H1P_STATUS:
            if (len == 0 && p->status == 0 && p->head_bytes <= 2)
                continue; /* a stray empty line before the response */
            if ((rc = parse_status(p, line, len)) < 0)
                return rc;
            p->state = H1P_HEADERS;
            break;
        case H1P_HEADERS:
            if (len > 0) {
                if ((rc = parse_header(p, line, len)) < 0)
                    return rc;
                break;
            }
            p->head_bytes = 0;
            if (head_done(p) == 1)
                goto whole;
            break;
        case H1P_CHUNK_SIZE: {
            uint64_t size;

            if ((rc = chunk_size(p, line, len, &size)) < 0)
                return rc;
            p->left = size;
            p->state = size > 0 ? H1P_CHUNK_DATA : H1P_TRAILERS;
            break;
        }
        case H1P_CHUNK_END:
            if (len != 0) {
                p->error = "a chunk longer than its size";
                return DRV_EPROTO;
            }
            p->head_bytes = 0;
            p->state = H1P_CHUNK_SIZE;
            break;
        case H1P_TRAILERS:
            if (len == 0)
                goto whole;
            break; /* trailer fields are not used */
        default:
            DRV_ASSERT(0);
        }
    }
whole:
    p->state = H1P_DONE;
    *used = off;
    return 1;
more:
    *used = off;
    return 0;
}

int
drv__h1_parse_eof(struct drv__h1_parser *p)
{
    if (p->state == H1P_DONE)
        return 1;
    if (p->state == H1P_BODY_CLOSE) {
        p->state = H1P_DONE;
        return 1;
    }
    p->error = p->got_bytes ? "the connection closed before the response "
                              "was whole"
                            : "the server closed the connection without "
                              "a response";
    return -ECONNRESET;
}

/* ================================================================ client */

struct host;

enum conn_state {
    CONN_CONNECTING = 0,
    CONN_BUSY,
    CONN_IDLE
};

struct drv__h1_conn {
    unsigned magic;
#define H1_CONN_MAGIC 0x4e1ac0aaU
    struct drv__h1 *h1;         /* borrowed */
    struct host *host;          /* borrowed: counts this connection */
    int fd;                     /* owned */
    enum conn_state state;
    int watched;                /* rev is on the loop */
    int wev_added;              /* wev is on the loop */
    unsigned requests;          /* requests started on it */
    int64_t idle_ns;            /* idle: when it went idle (monotonic) */
    struct drv__h1_xfer *x;     /* the transfer, when busy */
    struct event rev;           /* EV_READ|EV_PERSIST, its whole life */
    struct event wev;           /* EV_WRITE|EV_PERSIST, when needed */
    char *rbuf;                 /* owned: bytes read, not yet taken */
    size_t rlen;
    size_t rcap;
    TAILQ_ENTRY(drv__h1_conn) link;  /* host's idle list */
    TAILQ_ENTRY(drv__h1_conn) aged;  /* client's idle list, by idle_ns */
    TAILQ_ENTRY(drv__h1_conn) all;   /* client's list of every one */
};

TAILQ_HEAD(conn_list, drv__h1_conn);
TAILQ_HEAD(xfer_list, drv__h1_xfer);

struct host {
    unsigned magic;
#define H1_HOST_MAGIC 0x4e1a6057U
    struct drv__h1_addr addr;   /* address and port */
    int down;                   /* the last connect to it failed */
    size_t nconn;               /* open connections to it */
    struct conn_list idle;      /* most recently used first */
    LIST_ENTRY(host) link;
};

struct drv__h1 {
    unsigned magic;
#define DRV__H1_MAGIC 0x4e1a0c11U
    struct event_base *base;    /* borrowed */
    struct drv__h1_opts o;
    size_t nconn;               /* open connections */
    size_t nidle;               /* idle ones */
    struct conn_list all;       /* owned: every connection */
    LIST_HEAD(, host) hosts;    /* owned */
    struct host *last;          /* the host of the last request */
    struct xfer_list waiting;   /* transfers without a connection yet */
    struct xfer_list failed;    /* transfers whose failure is due */
    struct event fail_ev;       /* user event: end the failed ones */
    uint64_t next_address;      /* connects failed over to the next one */
    struct conn_list aged;      /* idle ones, longest idle first */
    struct event age_ev;        /* timer: the first of aged is too old */
    int age_set;                /* age_ev is pending */
    int64_t max_idle_ns;        /* o.max_idle_ms, in ns */
    int64_t age_slack_ns;       /* age_ev closes those this near too */
    uint64_t aged_out;          /* idle connections closed for their age */
};

static void conn_close(struct drv__h1_conn *k);
static void xfer_send(struct drv__h1_xfer *x);
static void serve_waiters(struct drv__h1 *h1);
static void on_rev(evutil_socket_t fd, short what, void *arg);
static void on_wev(evutil_socket_t fd, short what, void *arg);

/* A connect failed and the transfer goes on to the next address. */
static void
h1_next(struct drv__h1 *h1)
{
    h1->next_address++;
}

void
drv__h1_get_stats(const struct drv__h1 *h1, struct drv_http_stats *out)
{
    DRV_CHECK_OBJ(h1, DRV__H1_MAGIC);
    out->open = h1->nconn;
    out->next_address = h1->next_address;
    out->aged_out = h1->aged_out;
}

void
drv__h1_target_init(struct drv__h1_target *t)
{
    memset(t, 0, sizeof *t); /* its buffers too: a zeroed drv_buf is empty */
}

void
drv__h1_target_fini(struct drv__h1_target *t)
{
    drv_buf_fini(&t->name);
    drv_buf_fini(&t->host);
    drv_buf_fini(&t->path);
}

/* 1 if s is a host name getaddrinfo takes as it is: ASCII letters,
 * digits, '-', '_' and dots (anything else, an IDN name, stays
 * libcurl's). */
static int
plain_name(const char *s)
{
    if (*s == '\0' || strlen(s) > 253)
        return 0;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
              *s == '.'))
            return 0;
    return 1;
}

int
drv__h1_target_set(struct drv__h1_target *t, const char *host,
                   unsigned port, int port_given, const char *path,
                   const char *query)
{
    struct drv__h1_addr *a = &t->addrs[0];
    struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&a->ss;
    int v6 = 0;

    memset(a, 0, sizeof *a);
    t->naddr = 0;
    drv_buf_reset(&t->name);
    if (port == 0 || port > 65535)
        return -EINVAL;
    if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        a->len = sizeof *sin;
        t->naddr = 1;
    } else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        a->len = sizeof *sin6;
        t->naddr = 1;
        v6 = 1;
    } else if (plain_name(host)) {
        drv_buf_adds(&t->name, host); /* resolved per request */
    } else {
        return -EINVAL;
    }
    t->port = port;
    drv_buf_reset(&t->host);
    drv_buf_addf(&t->host, v6 ? "[%s]" : "%s", host);
    /* as libcurl: the port only when it is not the scheme's */
    if (port_given && port != 80)
        drv_buf_addf(&t->host, ":%u", port);
    drv_buf_reset(&t->path);
    drv_buf_adds(&t->path, path != NULL && path[0] != '\0' ? path : "/");
    if (query != NULL) {
        drv_buf_adds(&t->path, "?");
        drv_buf_adds(&t->path, query);
    }
    return 0;
}

static const char *
buf_text(const struct drv_buf *b)
{
    return b->data != NULL ? b->data : "";
}

int
drv__h1_target_same(const struct drv__h1_target *a,
                    const struct drv__h1_target *b)
{
    size_t i;

    if (strcmp(buf_text(&a->host), buf_text(&b->host)) != 0 ||
        strcmp(buf_text(&a->path), buf_text(&b->path)) != 0 ||
        strcmp(buf_text(&a->name), buf_text(&b->name)) != 0 ||
        a->port != b->port || a->naddr != b->naddr)
        return 0;
    for (i = 0; i < a->naddr; i++)
        if (a->addrs[i].len != b->addrs[i].len ||
            memcmp(&a->addrs[i].ss, &b->addrs[i].ss, a->addrs[i].len) != 0)
            return 0;
    return 1;
}

void
drv__h1_xfer_init(struct drv__h1_xfer *x)
{
    memset(x, 0, sizeof *x); /* its buffer too: a zeroed drv_buf is empty */
    x->magic = DRV__H1_XFER_MAGIC;
}

void
drv__h1_xfer_fini(struct drv__h1_xfer *x)
{
    DRV_CHECK_OBJ(x, DRV__H1_XFER_MAGIC);
    DRV_ASSERT(!x->active);
    if (x->timer_set)
        event_del(&x->timer);
    drv__h1_parser_fini(&x->parser);
    x->magic = 0;
}

/* -------------------------------------------------------------- hosts */

static int
same_addr(const struct drv__h1_addr *a, const struct drv__h1_addr *b)
{
    return a->len == b->len && memcmp(&a->ss, &b->ss, a->len) == 0;
}

/* The address x uses now. */
static const struct drv__h1_addr *
xfer_addr(const struct drv__h1_xfer *x)
{
    return &x->rq.tgt->addrs[x->ai];
}

/* The host of address a, or NULL when it has none. */
static struct host *
host_find(struct drv__h1 *h1, const struct drv__h1_addr *a)
{
    struct host *ho = h1->last;

    if (ho != NULL && same_addr(&ho->addr, a))
        return ho;
    LIST_FOREACH(ho, &h1->hosts, link)
        if (same_addr(&ho->addr, a)) {
            h1->last = ho;
            break;
        }
    return ho;
}

static struct host *
host_get(struct drv__h1 *h1, const struct drv__h1_addr *a)
{
    struct host *ho = host_find(h1, a);

    if (ho == NULL) {
        DRV_ALLOC_OBJ(ho, H1_HOST_MAGIC);
        ho->addr = *a;
        TAILQ_INIT(&ho->idle);
        LIST_INSERT_HEAD(&h1->hosts, ho, link);
    }
    h1->last = ho;
    return ho;
}

/* A host with no connection and no request waiting goes (only from
 * drv__h1_unwatch_idle: a host in use by a caller up the stack stays). */
static void
host_maybe_free(struct drv__h1 *h1, struct host *ho)
{
    struct drv__h1_xfer *x;

    if (ho->nconn > 0)
        return;
    TAILQ_FOREACH(x, &h1->waiting, wait_link)
        if (same_addr(&ho->addr, xfer_addr(x)))
            return;
    if (h1->last == ho)
        h1->last = NULL;
    LIST_REMOVE(ho, link);
    DRV_FREE_OBJ(ho);
}

/* -------------------------------------------------------- connections */

/* Set the age timer for when the longest idle connection reaches
 * max_idle (now: the monotonic time); not set when none is idle. */
static void
age_set(struct drv__h1 *h1, int64_t now)
{
    struct drv__h1_conn *k = TAILQ_FIRST(&h1->aged);
    struct timeval tv;
    int64_t wait_ns;

    if (k == NULL)
        return;
    wait_ns = k->idle_ns + h1->max_idle_ns - now;
    tv = drv_clock_tv_from_ns(wait_ns > 0 ? wait_ns : 0);
    DRV_AZ(evtimer_add(&h1->age_ev, &tv));
    h1->age_set = 1;
}

/* The age timer: the idle connections at (or within age_slack of)
 * max_idle close, and the timer is set for the next one. */
static void
on_age_ev(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv__h1 *h1;
    struct drv__h1_conn *k;
    int64_t now = drv_clock_mono_ns();

    DRV_CAST(h1, arg, DRV__H1_MAGIC);
    h1->age_set = 0;
    while ((k = TAILQ_FIRST(&h1->aged)) != NULL &&
           now - k->idle_ns >= h1->max_idle_ns - h1->age_slack_ns) {
        h1->aged_out++;
        conn_close(k);
    }
    age_set(h1, now);
}

static void
conn_unidle(struct drv__h1_conn *k)
{
    DRV_ASSERT(k->state == CONN_IDLE);
    TAILQ_REMOVE(&k->host->idle, k, link);
    TAILQ_REMOVE(&k->h1->aged, k, aged);
    k->h1->nidle--;
}

/* k goes idle: on its host's idle list (most recently used first) and at
 * the end of the client's aged list, and the age timer is set if it is
 * not. */
static void
conn_idle(struct drv__h1_conn *k)
{
    struct drv__h1 *h1 = k->h1;

    k->state = CONN_IDLE;
    k->idle_ns = drv_clock_mono_ns();
    TAILQ_INSERT_HEAD(&k->host->idle, k, link);
    TAILQ_INSERT_TAIL(&h1->aged, k, aged);
    h1->nidle++;
    if (!h1->age_set)
        age_set(h1, k->idle_ns);
}

static void
conn_close(struct drv__h1_conn *k)
{
    struct drv__h1 *h1 = k->h1;
    struct host *ho = k->host;

    if (k->state == CONN_IDLE)
        conn_unidle(k);
    if (k->watched)
        DRV_AZ(event_del(&k->rev));
    if (k->wev_added)
        DRV_AZ(event_del(&k->wev));
    close(k->fd);
    TAILQ_REMOVE(&h1->all, k, all);
    h1->nconn--;
    ho->nconn--;
    if (k->x != NULL)
        k->x->conn = NULL;
    free(k->rbuf);
    DRV_FREE_OBJ(k);
}

static void
set_error(struct drv__h1_xfer *x, const char *what, int err)
{
    if (err != 0)
        snprintf(x->error, sizeof x->error, "%s: %s", what, strerror(err));
    else
        snprintf(x->error, sizeof x->error, "%s", what);
}

/* x is over: off its connection (closed, unless keep), its timer off;
 * the hook runs (last: it may free everything). */
static void
xfer_end(struct drv__h1_xfer *x, int code)
{
    struct drv__h1 *h1 = x->h1;

    DRV_ASSERT(x->active);
    x->active = 0;
    if (x->timer_set)
        DRV_AZ(event_del(&x->timer));
    if (x->conn != NULL) {
        x->conn->x = NULL;
        conn_close(x->conn);
        x->conn = NULL;
    }
    serve_waiters(h1);
    x->rq.done(x, code);
}

/* A new connection to x's host for x; 0 or -errno (x->error set). */
static int
conn_open(struct drv__h1 *h1, struct host *ho, struct drv__h1_xfer *x)
{
    struct drv__h1_conn *k;
    int fd, one = 1, ka = KEEPALIVE_S, rc;

    fd = socket(ho->addr.ss.ss_family,
                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        set_error(x, "socket", errno);
        return rc;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &ka, sizeof ka);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &ka, sizeof ka);
    if (connect(fd, (const struct sockaddr *)&ho->addr.ss,
                ho->addr.len) < 0 && errno != EINPROGRESS) {
        rc = -errno;
        snprintf(x->error, sizeof x->error, "Failed to connect to %s: %s",
                 x->rq.tgt->host.data, strerror(errno));
        close(fd);
        return rc;
    }
    k = drv_xmalloc(sizeof *k);
    *k = (struct drv__h1_conn){.magic = H1_CONN_MAGIC, .h1 = h1, .host = ho,
                               .fd = fd, .state = CONN_CONNECTING, .x = x};
    x->conn = k;
    TAILQ_INSERT_TAIL(&h1->all, k, all);
    h1->nconn++;
    ho->nconn++;
    event_assign(&k->rev, h1->base, fd, EV_READ | EV_PERSIST, on_rev, k);
    event_assign(&k->wev, h1->base, fd, EV_WRITE | EV_PERSIST, on_wev, k);
    DRV_AZ(event_add(&k->wev, NULL));
    k->wev_added = 1;
    return 0;
}

/* 1 if an unwatched idle connection is still good: the server has
 * neither closed it nor sent anything. */
static int
conn_alive(struct drv__h1_conn *k)
{
    char b;
    ssize_t n = recv(k->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* An idle connection of ho, or NULL. Each is peeked at first, watched
 * or not: a close that came in since the loop last looked (the server's
 * keep-alive timeout) is seen before a request goes out on it, which
 * could then not be sent again safely (xfer_retry). One idle longer than
 * max_idle closes too (the age timer may not have come yet). */
static struct drv__h1_conn *
take_idle(struct host *ho)
{
    struct drv__h1_conn *k;

    while ((k = TAILQ_FIRST(&ho->idle)) != NULL) {
        struct drv__h1 *h1 = k->h1;
        int old = drv_clock_mono_ns() - k->idle_ns > h1->max_idle_ns;

        conn_unidle(k);
        if (old || !conn_alive(k)) {
            h1->aged_out += (uint64_t)old;
            k->state = CONN_BUSY; /* not idle: closed as it is */
            conn_close(k);
            continue;
        }
        if (!k->watched) {
            DRV_AZ(event_add(&k->rev, NULL));
            k->watched = 1;
        }
        k->state = CONN_BUSY;
        return k;
    }
    return NULL;
}

/* The oldest idle connection of any host other than ho, closed to make
 * room under max_total; 1 if one went. */
static int
close_other_idle(struct drv__h1 *h1, struct host *ho)
{
    struct drv__h1_conn *k;

    TAILQ_FOREACH(k, &h1->all, all)
        if (k->state == CONN_IDLE && k->host != ho) {
            conn_close(k);
            return 1;
        }
    return 0;
}

/* 1 if a new connection to ho is allowed: under max_host, and under
 * max_total or with an idle connection of another host to close. */
static int
has_room(struct drv__h1 *h1, struct host *ho)
{
    struct drv__h1_conn *k;

    if (h1->o.max_host > 0 && ho->nconn >= (size_t)h1->o.max_host)
        return 0;
    if (h1->o.max_total <= 0 || h1->nconn < (size_t)h1->o.max_total)
        return 1;
    TAILQ_FOREACH(k, &h1->all, all)
        if (k->state == CONN_IDLE && k->host != ho)
            return 1;
    return 0;
}

/* x failed where its hook may not run (inside drv__h1_start, or while
 * another transfer ends): it ends with code from fail_ev. */
static void
fail_later(struct drv__h1_xfer *x, int code)
{
    struct drv__h1 *h1 = x->h1;

    DRV_ASSERT(x->active && x->conn == NULL && !x->waiting);
    x->fail_code = code;
    x->failed = 1;
    TAILQ_INSERT_TAIL(&h1->failed, x, wait_link);
    event_active(&h1->fail_ev, EV_READ, 0);
}

/* One failed transfer ends per run (its hook may free the client); the
 * event goes again for the next. */
static void
on_fail_ev(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv__h1 *h1;
    struct drv__h1_xfer *x;

    DRV_CAST(h1, arg, DRV__H1_MAGIC);
    x = TAILQ_FIRST(&h1->failed);
    if (x == NULL)
        return;
    TAILQ_REMOVE(&h1->failed, x, wait_link);
    x->failed = 0;
    if (!TAILQ_EMPTY(&h1->failed))
        event_active(&h1->fail_ev, EV_READ, 0);
    xfer_end(x, x->fail_code);
}

/*
 * Give x a connection: an idle one (the request goes out now), a new
 * one (it goes out once connected), or none yet (x waits). fresh: only a
 * new one. 0 or a negative code (x->error set).
 */
static int
xfer_attach(struct drv__h1 *h1, struct drv__h1_xfer *x, int fresh)
{
    struct host *ho;
    struct drv__h1_conn *k = NULL;
    size_t i;
    int rc;

    /* a name's addresses: an idle connection to any of them first, else
     * from the current one on, skipping those whose last connect failed
     * (unless all did) */
    for (i = 0; !fresh && k == NULL && i < x->rq.tgt->naddr; i++) {
        ho = host_find(h1, &x->rq.tgt->addrs[i]);
        if (ho != NULL && (k = take_idle(ho)) != NULL)
            x->ai = i;
    }
    if (k != NULL) {
        k->x = x;
        x->conn = k;
        k->requests++;
        xfer_send(x);
        return 0;
    }
    for (i = x->ai; i < x->rq.tgt->naddr; i++) {
        ho = host_find(h1, &x->rq.tgt->addrs[i]);
        if (ho == NULL || !ho->down) {
            x->ai = i;
            break;
        }
    }
    for (;;) {
        ho = host_get(h1, xfer_addr(x));
        if (!has_room(h1, ho))
            goto wait;
        if (h1->o.max_total > 0 && h1->nconn >= (size_t)h1->o.max_total)
            DRV_ASSERT(close_other_idle(h1, ho)); /* has_room saw one */
        rc = conn_open(h1, ho, x);
        if (rc == 0 || x->ai + 1 >= x->rq.tgt->naddr)
            return rc;
        ho->down = 1; /* connect failed at once: the next address */
        x->ai++;
        h1_next(h1);
    }
wait:
    x->waiting = 1;
    TAILQ_INSERT_TAIL(&h1->waiting, x, wait_link);
    return 0;
}

/* A connection may have freed up: start the waiting transfers that can
 * go now, oldest first. */
static void
serve_waiters(struct drv__h1 *h1)
{
    struct drv__h1_xfer *x, *next;

    for (x = TAILQ_FIRST(&h1->waiting); x != NULL; x = next) {
        struct host *ho = host_get(h1, xfer_addr(x));
        int rc;

        /* attaching touches connections, never the other waiters */
        next = TAILQ_NEXT(x, wait_link);
        if (TAILQ_EMPTY(&ho->idle) && !has_room(h1, ho))
            continue; /* its host is full: the ones behind may go */
        TAILQ_REMOVE(&h1->waiting, x, wait_link);
        x->waiting = 0;
        rc = xfer_attach(h1, x, 0);
        if (rc < 0)
            fail_later(x, rc);
    }
}

/* x's response is whole; its connection goes back idle or closes. */
static void
xfer_complete(struct drv__h1_xfer *x, size_t left_over)
{
    struct drv__h1_conn *k = x->conn;
    struct drv__h1 *h1 = x->h1;

    DRV_ASSERT(x->active);
    x->active = 0;
    if (x->timer_set)
        DRV_AZ(event_del(&x->timer));
    k->x = NULL;
    x->conn = NULL;
    if (!x->parser.keep_alive || left_over > 0 ||
        x->sent < x->rq.head_len + x->rq.body_len ||
        h1->nconn > (size_t)h1->o.max_kept) {
        conn_close(k);
    } else {
        k->rlen = 0;
        conn_idle(k);
    }
    serve_waiters(h1);
    x->rq.done(x, 0);
}

/* 1 if x's method is idempotent (RFC 9110 9.2.2): sending it twice
 * does what sending it once does. */
static int
idempotent(const struct drv__h1_xfer *x)
{
    static const char *const methods[] = {"GET ", "HEAD ", "PUT ",
                                          "DELETE ", "OPTIONS ", "TRACE "};
    size_t i, n;

    for (i = 0; i < DRV_ARRAY_LEN(methods); i++) {
        n = strlen(methods[i]);
        if (x->rq.head_len >= n && memcmp(x->rq.head, methods[i], n) == 0)
            return 1;
    }
    return 0;
}

/* A kept connection failed before any byte of the response: once, the
 * request goes again on a new connection, if that is safe: nothing of it
 * was sent, or its method is idempotent. A POST that went out may have
 * been acted on by a server that then closed without answering; it fails
 * (a connection error) rather than run twice unseen. 1 if it was
 * restarted. */
static int
xfer_retry(struct drv__h1_xfer *x)
{
    struct drv__h1_conn *k = x->conn;
    int rc;

    if (x->retried || k == NULL || k->requests < 2 || x->parser.got_bytes ||
        (x->sent > 0 && !idempotent(x)))
        return 0;
    x->retried = 1;
    k->x = NULL;
    x->conn = NULL;
    conn_close(k);
    x->sent = 0;
    rc = xfer_attach(x->h1, x, 1);
    if (rc < 0)
        fail_later(x, rc);
    return 1;
}

/* Write what is left of head + body. */
static void
xfer_send(struct drv__h1_xfer *x)
{
    struct drv__h1_conn *k = x->conn;
    const struct drv__h1_req *rq = &x->rq;
    size_t total = rq->head_len + rq->body_len;

    while (x->sent < total) {
        struct iovec iov[2];
        struct msghdr m;
        int niov = 0;
        ssize_t n;

        if (x->sent < rq->head_len) {
            iov[niov].iov_base = (char *)rq->head + x->sent;
            iov[niov++].iov_len = rq->head_len - x->sent;
        }
        if (rq->body_len > 0) {
            size_t boff = x->sent > rq->head_len ? x->sent - rq->head_len : 0;

            iov[niov].iov_base = (char *)rq->body + boff;
            iov[niov++].iov_len = rq->body_len - boff;
        }
        memset(&m, 0, sizeof m);
        m.msg_iov = iov;
        m.msg_iovlen = (size_t)niov;
        n = sendmsg(k->fd, &m, MSG_NOSIGNAL);
        if (n < 0) {
            int e = errno;

            if (e == EINTR)
                continue;
            if (e == EAGAIN || e == EWOULDBLOCK) {
                if (!k->wev_added) {
                    DRV_AZ(event_add(&k->wev, NULL));
                    k->wev_added = 1;
                }
                return;
            }
            /* the response may already be there (a server that answers
             * before reading the whole body): the read decides */
            if (x->parser.got_bytes || k->rlen > 0)
                break;
            if (xfer_retry(x))
                return;
            set_error(x, "Send failure", e);
            k->x = NULL;
            x->conn = NULL;
            conn_close(k);
            fail_later(x, -ECONNRESET);
            return;
        }
        x->sent += (size_t)n;
    }
    if (k->wev_added) {
        DRV_AZ(event_del(&k->wev));
        k->wev_added = 0;
    }
}

/* Read event of a connection, busy or idle. */
static void
on_rev(evutil_socket_t fd, short what DRV_UNUSED, void *arg)
{
    struct drv__h1_conn *k;
    struct drv__h1_xfer *x;
    ssize_t n;
    size_t used;
    int rc;

    DRV_CAST(k, arg, H1_CONN_MAGIC);
    x = k->x;
    if (x == NULL || k->state != CONN_BUSY) {
        /* idle: the server closed it or sent what nobody asked for */
        conn_close(k);
        return;
    }
    if (k->rcap - k->rlen < RBUF_MIN / 2) {
        size_t cap = k->rcap ? k->rcap * 2 : RBUF_MIN;

        k->rbuf = drv_xrealloc(k->rbuf, cap);
        k->rcap = cap;
    }
    n = read(fd, k->rbuf + k->rlen, k->rcap - k->rlen);
    if (n < 0) {
        int e = errno;

        if (e == EAGAIN || e == EWOULDBLOCK || e == EINTR)
            return;
        if (!xfer_retry(x)) {
            set_error(x, "Recv failure", e);
            xfer_end(x, -ECONNRESET);
        }
        return;
    }
    if (n == 0) {
        if (k->rlen == 0 && xfer_retry(x))
            return;
        rc = drv__h1_parse_eof(&x->parser);
        if (rc == 1 && k->rlen == 0) {
            x->parser.keep_alive = 0;
            xfer_complete(x, 0);
        } else {
            set_error(x, x->parser.error, 0);
            xfer_end(x, -ECONNRESET);
        }
        return;
    }
    k->rlen += (size_t)n;
    rc = drv__h1_parse(&x->parser, k->rbuf, k->rlen, &used);
    if (rc < 0) {
        set_error(x, x->parser.error, 0);
        xfer_end(x, rc);
        return;
    }
    if (used > 0 && used < k->rlen)
        memmove(k->rbuf, k->rbuf + used, k->rlen - used);
    k->rlen -= used;
    if (rc == 1)
        xfer_complete(x, k->rlen);
}

/* Write event: the connect finished, or the socket takes more. */
static void
on_wev(evutil_socket_t fd, short what DRV_UNUSED, void *arg)
{
    struct drv__h1_conn *k;
    struct drv__h1_xfer *x;
    int err = 0;
    socklen_t len = sizeof err;

    DRV_CAST(k, arg, H1_CONN_MAGIC);
    x = k->x;
    DRV_AN(x);
    if (k->state == CONN_CONNECTING) {
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err != 0) {
            snprintf(x->error, sizeof x->error,
                     "Failed to connect to %s: %s", x->rq.tgt->host.data,
                     strerror(err));
            k->host->down = 1;
            if (x->ai + 1 < x->rq.tgt->naddr) {
                /* the name's next address, on a connection of its own */
                int rc;

                k->x = NULL;
                x->conn = NULL;
                conn_close(k);
                x->ai++;
                h1_next(x->h1);
                rc = xfer_attach(x->h1, x, 0);
                if (rc < 0)
                    xfer_end(x, rc); /* serves the waiters too */
                else
                    serve_waiters(x->h1); /* k's place is free */
                return;
            }
            xfer_end(x, -err);
            return;
        }
        k->host->down = 0;
        k->state = CONN_BUSY;
        k->requests++;
        DRV_AZ(event_add(&k->rev, NULL));
        k->watched = 1;
    }
    xfer_send(x);
}

static void
on_timeout(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv__h1_xfer *x;

    DRV_CAST(x, arg, DRV__H1_XFER_MAGIC);
    snprintf(x->error, sizeof x->error,
             "Operation timed out after %d milliseconds", x->rq.timeout_ms);
    if (x->waiting) {
        TAILQ_REMOVE(&x->h1->waiting, x, wait_link);
        x->waiting = 0;
    }
    if (x->failed) { /* its failure was due: the timeout came first */
        TAILQ_REMOVE(&x->h1->failed, x, wait_link);
        x->failed = 0;
    }
    xfer_end(x, -ETIMEDOUT);
}

int
drv__h1_start(struct drv__h1 *h1, struct drv__h1_xfer *x,
              const struct drv__h1_target *tgt, const char *head,
              size_t head_len, const char *body, size_t body_len,
              int64_t timeout_ms, drv__h1_done_fn *done)
{
    int rc;

    DRV_CHECK_OBJ(h1, DRV__H1_MAGIC);
    DRV_CHECK_OBJ(x, DRV__H1_XFER_MAGIC);
    DRV_ASSERT(!x->active);
    DRV_ASSERT(tgt->naddr > 0);
    x->h1 = h1;
    x->rq = (struct drv__h1_req){
        .tgt = tgt, .head = head, .head_len = head_len, .body = body,
        .body_len = body_len, .done = done,
        .timeout_ms = timeout_ms > INT32_MAX ? INT32_MAX : (int)timeout_ms};
    x->sent = 0;
    x->retried = 0;
    x->ai = 0;
    x->error[0] = '\0';
    x->active = 1;
    /* before the send: a kept connection may fail it over at once */
    rc = xfer_attach(h1, x, 0);
    if (rc < 0) {
        x->active = 0;
        return rc;
    }
    if (!x->active)
        return 0; /* cannot happen: endings inside are deferred */
    if (timeout_ms > 0) {
        struct timeval tv = drv_clock_tv_from_ns(timeout_ms * DRV_NS_PER_MS);

        if (!x->timer_set) {
            evtimer_assign(&x->timer, h1->base, on_timeout, x);
            x->timer_set = 1;
        }
        DRV_AZ(evtimer_add(&x->timer, &tv));
    }
    return 0;
}

void
drv__h1_abort(struct drv__h1_xfer *x)
{
    struct drv__h1 *h1;

    if (x == NULL || !x->active)
        return;
    h1 = x->h1;
    x->active = 0;
    if (x->timer_set)
        DRV_AZ(event_del(&x->timer));
    if (x->waiting) {
        TAILQ_REMOVE(&h1->waiting, x, wait_link);
        x->waiting = 0;
    }
    if (x->failed) {
        TAILQ_REMOVE(&h1->failed, x, wait_link);
        x->failed = 0;
    }
    if (x->conn != NULL) {
        x->conn->x = NULL;
        conn_close(x->conn);
        x->conn = NULL;
        serve_waiters(h1); /* its place is free */
    }
}

void
drv__h1_unwatch_idle(struct drv__h1 *h1)
{
    struct drv__h1_conn *k;
    struct host *ho, *next;

    DRV_CHECK_OBJ(h1, DRV__H1_MAGIC);
    TAILQ_FOREACH(k, &h1->all, all)
        if (k->state == CONN_IDLE && k->watched) {
            DRV_AZ(event_del(&k->rev));
            k->watched = 0;
        }
    /* the age timer stays only for connections that are idle now */
    if (TAILQ_EMPTY(&h1->aged) && h1->age_set) {
        DRV_AZ(event_del(&h1->age_ev));
        h1->age_set = 0;
    }
    /* and the hosts nothing uses now */
    for (ho = LIST_FIRST(&h1->hosts); ho != NULL; ho = next) {
        next = LIST_NEXT(ho, link);
        host_maybe_free(h1, ho);
    }
}

/* ------------------------------------------------------------ the client
 * (last: it wires up the callbacks above) */

int
drv__h1_create(struct event_base *base, const struct drv__h1_opts *o,
               struct drv__h1 **out)
{
    struct drv__h1 *h1;

    DRV_ALLOC_OBJ(h1, DRV__H1_MAGIC);
    h1->base = base;
    h1->o = *o;
    if (h1->o.max_kept <= 0)
        h1->o.max_kept = KEPT_DEFAULT;
    if (h1->o.max_idle_ms <= 0)
        h1->o.max_idle_ms = DRV_HTTP_MAX_IDLE_MS;
    if (h1->o.max_idle_ms > MAX_IDLE_MAX_MS)
        h1->o.max_idle_ms = MAX_IDLE_MAX_MS; /* no overflow in ns */
    h1->max_idle_ns = h1->o.max_idle_ms * DRV_NS_PER_MS;
    h1->age_slack_ns = h1->max_idle_ns / 8 < AGE_SLACK_MAX_NS
                           ? h1->max_idle_ns / 8 : AGE_SLACK_MAX_NS;
    TAILQ_INIT(&h1->all);
    TAILQ_INIT(&h1->aged);
    TAILQ_INIT(&h1->waiting);
    TAILQ_INIT(&h1->failed);
    LIST_INIT(&h1->hosts);
    event_assign(&h1->fail_ev, base, -1, 0, on_fail_ev, h1);
    evtimer_assign(&h1->age_ev, base, on_age_ev, h1);
    *out = h1;
    return 0;
}

void
drv__h1_free(struct drv__h1 *h1)
{
    struct host *ho;

    if (h1 == NULL)
        return;
    DRV_CHECK_OBJ(h1, DRV__H1_MAGIC);
    DRV_ASSERT(TAILQ_EMPTY(&h1->waiting));
    DRV_ASSERT(TAILQ_EMPTY(&h1->failed));
    event_del(&h1->fail_ev);
    event_del(&h1->age_ev);
    while (!TAILQ_EMPTY(&h1->all)) {
        struct drv__h1_conn *k = TAILQ_FIRST(&h1->all);

        DRV_ASSERT(k->x == NULL);
        conn_close(k);
    }
    while ((ho = LIST_FIRST(&h1->hosts)) != NULL) {
        LIST_REMOVE(ho, link);
        DRV_FREE_OBJ(ho);
    }
    DRV_FREE_OBJ(h1);
}
