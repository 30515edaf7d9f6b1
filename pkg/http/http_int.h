/*
 * http_int.h -- pkg/http's own HTTP/1.1 client for plain http://
 * (http_h1.c), used by http.c in place of libcurl where libcurl's
 * per-transfer work is the cost; its resolver for host names
 * (http_dns.c); and its response parser, pure, for the fuzz target.
 *
 * Only http.c and the tests include this header.
 */
#ifndef DROVER_HTTP_INT_H
#define DROVER_HTTP_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/event_struct.h>

#include "drover/buf.h"
#include "drover/http.h"

#define DRV__H1_REASON_MAX 64          /* reason phrase kept, NUL included */
#define DRV__H1_HEAD_MAX (256 * 1024)  /* a response's head, all lines */

/* ------------------------------------------------------------ parser */

enum drv__h1_pstate {
    H1P_STATUS = 0,     /* the status line */
    H1P_HEADERS,        /* header lines until the empty one */
    H1P_BODY_LEN,       /* Content-Length bytes */
    H1P_CHUNK_SIZE,     /* a chunk-size line */
    H1P_CHUNK_DATA,     /* a chunk's bytes */
    H1P_CHUNK_END,      /* the CRLF after a chunk's bytes */
    H1P_TRAILERS,       /* trailer lines until the empty one */
    H1P_BODY_CLOSE,     /* the body runs until the server closes */
    H1P_DONE            /* the response is whole */
};

/*
 * One response read from bytes as they arrive. drv__h1_parse takes what
 * it can of buf (whole lines of the head, body bytes) and says how much
 * it took; the caller keeps the rest (a partial line) and offers it again
 * with more bytes behind it. Interim 1xx responses are skipped; what is
 * kept is the final response's.
 */
struct drv__h1_parser {
    enum drv__h1_pstate state;
    int head_only;              /* the request was HEAD: no body */
    int status;                 /* of the final response */
    int version;                /* 10 or 11 */
    int keep_alive;             /* the connection may carry another
                                   request once this response is whole */
    int got_bytes;              /* any byte of a response was taken */
    int chunked;                /* Transfer-Encoding ends in chunked */
    int has_te;                 /* a Transfer-Encoding header came */
    int64_t clen;               /* Content-Length, -1 none */
    uint64_t left;              /* bytes left of the body or a chunk */
    size_t head_bytes;          /* bytes of this response's head */
    int64_t retry_after_ms;     /* parsed Retry-After, -1 none */
    char reason[DRV__H1_REASON_MAX];
    struct drv_buf location;    /* owned: Location header as sent */
    struct drv_buf *body;       /* borrowed: body bytes kept */
    size_t body_max;            /* most bytes kept in body */
    int truncated;              /* bytes past body_max were dropped */
    const char *error;          /* static text of the last error */
};

/* drv__h1_parser_init -- ready for a response to a request (head_only:
 * HEAD); body (borrowed) gets at most body_max bytes of it. */
void drv__h1_parser_init(struct drv__h1_parser *p, struct drv_buf *body,
                         size_t body_max, int head_only);

/* drv__h1_parser_fini -- frees what the parser owns. */
void drv__h1_parser_fini(struct drv__h1_parser *p);

/*
 * drv__h1_parse -- parse buf[0..n); *used gets the bytes taken. Returns
 * 1 when the response is whole (bytes after *used are not part of it),
 * 0 when more are needed (a partial line of the head stays untaken:
 * offer it again with what follows), DRV_EPROTO when the bytes are not a
 * valid HTTP/1.x response (p->error says why).
 */
int drv__h1_parse(struct drv__h1_parser *p, const char *buf, size_t n,
                  size_t *used);

/* drv__h1_parse_eof -- the server closed: 1 if that ends the response (a
 * body without length), else -ECONNRESET (p->error says why). */
int drv__h1_parse_eof(struct drv__h1_parser *p);

/* ------------------------------------------------------------ client */

struct drv__h1;
struct drv__h1_conn;
struct drv__h1_xfer;

/* Completion of a transfer, from one of the client's loop callbacks
 * (never from drv__h1_start or drv__h1_abort): code 0 with x->parser
 * holding the response, or a negative code with x->error set. The hook
 * may start, abort or free anything, the client included. */
typedef void drv__h1_done_fn(struct drv__h1_xfer *x, int code);

#define DRV__H1_ADDRS_MAX 8     /* addresses of a name tried, in order */

/* One address to connect to (port included). */
struct drv__h1_addr {
    struct sockaddr_storage ss;
    socklen_t len;
};

/* Where a request goes: filled by drv__h1_target_set from a parsed URL;
 * for a host name, addrs is filled by the resolver (http_dns.c) before
 * each request. */
struct drv__h1_target {
    struct drv__h1_addr addrs[DRV__H1_ADDRS_MAX]; /* tried in this order */
    size_t naddr;               /* entries of addrs */
    struct drv_buf name;        /* owned: host name to resolve, "" for a
                                   numeric host */
    unsigned port;              /* the URL's port, or 80 */
    struct drv_buf host;        /* owned: Host header value */
    struct drv_buf path;        /* owned: request-target */
};

/* The request of a started xfer, from drv__h1_start's arguments; the
 * pointers are borrowed until done. */
struct drv__h1_req {
    const struct drv__h1_target *tgt; /* where to */
    const char *head;           /* request head */
    size_t head_len;
    const char *body;           /* request body, NULL none */
    size_t body_len;
    int timeout_ms;             /* 0 none */
    drv__h1_done_fn *done;      /* completion hook */
};

/* One request; embedded in the caller's record, reused for the next. */
struct drv__h1_xfer {
    unsigned magic;
#define DRV__H1_XFER_MAGIC 0x4e1a7f3bU
    struct drv__h1 *h1;         /* borrowed: the client, while started */
    struct drv__h1_req rq;      /* the request, while started */
    struct drv__h1_conn *conn;  /* the connection it uses, or NULL */
    size_t sent;                /* bytes of head + body written */
    int retried;                /* a stale kept connection was replaced */
    size_t ai;                  /* rq.tgt->addrs[ai]: the address in use */
    int active;                 /* started, not done nor aborted */
    struct event timer;         /* the timeout, assigned once */
    int timer_set;              /* timer is assigned */
    struct drv__h1_parser parser; /* the response */
    char error[256];            /* code < 0: what went wrong */
    TAILQ_ENTRY(drv__h1_xfer) wait_link; /* waiting for a connection */
    int waiting;                /* on the client's wait list */
    int failed;                 /* on the client's failed list */
    int fail_code;              /* ... with this code */
};

/* Limits, as struct drv_http_opts has them (0: none; kept 0 = 64;
 * max_idle_ms 0 = DRV_HTTP_MAX_IDLE_MS). */
struct drv__h1_opts {
    long max_host;
    long max_total;
    long max_kept;
    int64_t max_idle_ms;        /* an idle connection older is closed */
};

int drv__h1_create(struct event_base *base, const struct drv__h1_opts *o,
                   struct drv__h1 **out);

/* drv__h1_free -- closes every connection; no transfer may be active. */
void drv__h1_free(struct drv__h1 *h1);

/* drv__h1_target_set -- t for an http:// URL whose host is an IP literal
 * (host without brackets) or a plain ASCII host name (t->name, t->naddr
 * 0: the caller resolves it), port and path+query as curl parsed them.
 * 0, or -EINVAL (neither). */
int drv__h1_target_set(struct drv__h1_target *t, const char *host,
                       unsigned port, int port_given, const char *path,
                       const char *query);

void drv__h1_target_init(struct drv__h1_target *t);
void drv__h1_target_fini(struct drv__h1_target *t);

/* drv__h1_xfer_init/_fini -- the record in its owner's memory. */
void drv__h1_xfer_init(struct drv__h1_xfer *x);
void drv__h1_xfer_fini(struct drv__h1_xfer *x);

/*
 * drv__h1_start -- send head + body (borrowed until done) to tgt on a kept
 * connection or a new one; x->parser must be initialised for the
 * response. done runs later. Returns 0, or a negative code when it
 * failed at once (socket, connect): x is then not started and x->error
 * says why.
 */
int drv__h1_start(struct drv__h1 *h1, struct drv__h1_xfer *x,
                  const struct drv__h1_target *tgt, const char *head,
                  size_t head_len, const char *body, size_t body_len,
                  int64_t timeout_ms, drv__h1_done_fn *done);

/* drv__h1_abort -- stop x without its hook: its connection is closed (a
 * connection between requests stays). Does nothing if x is not active. */
void drv__h1_abort(struct drv__h1_xfer *x);

/* drv__h1_unwatch_idle -- take the idle connections off the loop (a
 * client with nothing to do keeps only the timer that closes them once
 * idle for max_idle_ms, and no event once none is left); each is checked
 * with a peek before its next use. Hosts without connections are
 * forgotten. */
void drv__h1_unwatch_idle(struct drv__h1 *h1);

/* drv__h1_get_stats -- out's open (connections: connecting, busy or
 * idle), next_address (connects that failed and went on to the next
 * address of the target) and aged_out (idle connections closed for
 * having been idle max_idle_ms). */
void drv__h1_get_stats(const struct drv__h1 *h1, struct drv_http_stats *out);

/* ---------------------------------------------------------- resolver */

struct drv_loop;
struct drv__dns;
struct drv__dns_wait;

/* A lookup a request waited for ended, from a loop callback of the
 * resolver (never from drv__dns_resolve or drv__dns_abort): code 0 with
 * the target's addrs filled, or a negative code with w->error set. The
 * hook must not free the resolver. */
typedef void drv__dns_done_fn(struct drv__dns_wait *w, int code);

/* A request waiting for a lookup; embedded in the caller's record. */
struct drv__dns_wait {
    unsigned magic;
#define DRV__DNS_WAIT_MAGIC 0x4e1ad75aU
    struct drv__dns *dns;       /* borrowed: while waiting */
    struct dns_entry *e;        /* borrowed: the lookup it waits for */
    struct drv__h1_target *tgt; /* borrowed: gets the addresses */
    drv__dns_done_fn *done;     /* completion hook */
    int active;                 /* waiting */
    int timeout_ms;             /* 0 none */
    struct event timer;         /* the timeout, assigned once */
    int timer_set;              /* timer is assigned */
    char error[256];            /* code < 0: what went wrong */
    TAILQ_ENTRY(drv__dns_wait) link; /* on its entry's waiters */
};

/* drv__dns_create -- a resolver whose lookups (getaddrinfo) run on a
 * pool of threads made at the first one; loop borrowed. 0 or -ENOMEM. */
int drv__dns_create(struct drv_loop *loop, struct drv__dns **out);

/* drv__dns_free -- no request may be waiting; blocks until a lookup
 * running on a thread returns, then joins the threads. NULL: nothing. */
void drv__dns_free(struct drv__dns *d);

/*
 * drv__dns_resolve -- the addresses of tgt's name and port into tgt
 * (borrowed until done). Returns 1 when a cached answer (younger than
 * DRV__DNS_TTL_MS) filled them now (done never runs), 0 when w waits for
 * a lookup (a running one for the same name and port, or a new one):
 * done runs later, with -ETIMEDOUT after timeout_ms (0: none); or a
 * negative code (the threads cannot start: w->error says why).
 */
int drv__dns_resolve(struct drv__dns *d, struct drv__dns_wait *w,
                     struct drv__h1_target *tgt, int64_t timeout_ms,
                     drv__dns_done_fn *done);

/* drv__dns_abort -- stop waiting, without the hook. Nothing if w is not
 * waiting. The lookup goes on and its answer is cached. */
void drv__dns_abort(struct drv__dns_wait *w);

/* drv__dns_forget -- drop the cached answer for name and port: the next
 * request looks it up again (after a connection failure: the name may
 * have moved). */
void drv__dns_forget(struct drv__dns *d, const char *name, unsigned port);

/* drv__dns_lookups -- getaddrinfo calls started. */
uint64_t drv__dns_lookups(const struct drv__dns *d);

#define DRV__DNS_TTL_MS 30000   /* an answer is used this long */

/* ------------------------------------------------------------- URLs */

#define DRV__H1_URL_MAX 8192    /* longest path and query taken here */

/* drv__http_url_lean -- 1 with t set (drv__h1_target_set) when url is a
 * plain http:// URL whose parts libcurl's parser would leave as they
 * are, so it needs neither libcurl nor its parser; 0 for any other text
 * (libcurl's parser decides). Pure (http_url.c). */
int drv__http_url_lean(const char *url, struct drv__h1_target *t);

/* drv__http_url_target -- 1 with t set when u, an http:// URL as
 * libcurl parsed it, can go through h1 (no user or password, no zone id,
 * a host drv__h1_target_set takes), else 0 (http.c). */
struct Curl_URL;
int drv__http_url_target(struct Curl_URL *u, struct drv__h1_target *t);

/* drv__http_url_curl -- drv__http_url_target of url as libcurl's parser
 * reads it; 0 when libcurl does not take it either (loads libcurl). */
int drv__http_url_curl(const char *url, struct drv__h1_target *t);

/* drv__h1_target_same -- 1 if a and b send the same request to the same
 * place: Host, request-target, port, name and addresses. */
int drv__h1_target_same(const struct drv__h1_target *a,
                        const struct drv__h1_target *b);

/* drv__curl_loaded -- 1 once libcurl is loaded in this process
 * (http_curl.c). Any thread. */
int drv__curl_loaded(void);

/* drv__curl_soname -- what http_curl.c opens. Swappable for tests (a
 * name that does not exist) before the first libcurl call. */
extern const char *drv__curl_soname;

/* drv__http_own_client -- 0: every request of h goes through libcurl
 * (the tests compare the two clients' bytes); 1: the default. */
struct drv_http;
void drv__http_own_client(struct drv_http *h, int on);

#endif
