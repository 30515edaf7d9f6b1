/*
 * drover/http.h -- an asynchronous HTTP client on the drv_loop (libcurl,
 * and a small HTTP/1.1 client of its own for plain http://).
 *
 * One struct drv_http drives any number of concurrent requests through
 * libcurl's multi-socket interface: curl says which sockets to watch and
 * when to wake it, libevent events on drv_loop_base() do the watching, and
 * nothing ever blocks the loop. The module knows nothing of jobs.
 *
 *   drv_http_create(loop, NULL, &h);
 *   struct drv_http_req rq = {.method = "POST", .url = "https://x/y",
 *                             .body = "{}", .body_len = 2,
 *                             .timeout_ms = 5000, .body_max = 65536};
 *   drv_http_request(h, &rq, on_done, ctx, &call);   // on_done runs later
 *   ...
 *   drv_http_cancel(call);     // optional: on_done gets -ECANCELED
 *   drv_http_free(h);          // completes what is left with -ECANCELED
 *
 * Behaviour:
 *   - Connections (and TLS sessions) are kept per client and reused by
 *     later requests to the same host; so are finished calls (the easy
 *     handle, reset, and the buffers), so a steady stream of requests
 *     allocates no handle, header list or body copy of its own.
 *   - HTTP/2 is negotiated over TLS when the server offers it
 *     (CURL_HTTP_VERSION_2TLS) and then several requests share one
 *     connection; plain http:// speaks HTTP/1.1.
 *   - Redirects are never followed: a 3xx is a response like any other
 *     (resp->location says where it points).
 *   - Only http:// and https:// URLs are accepted.
 *   - A plain http:// URL goes through the module's own HTTP/1.1 client
 *     (a fraction of libcurl's CPU per request), whether its host is an
 *     IP address or a plain ASCII name, unless the environment names a
 *     proxy, the URL has a user or password, or the headers set
 *     Content-Length, Transfer-Encoding or an empty Host; everything else
 *     through libcurl. Both send the same request bytes, keep connections
 *     alike (the limits below count each client's own; the own client's
 *     per address), and report outcomes with the same codes. A kept
 *     connection that fails before any byte of the response came back
 *     gets the request again, once, on a new connection.
 *   - The own client resolves names with getaddrinfo on two threads of
 *     its own (started at the first name; drv_http_free joins them,
 *     waiting for a lookup in progress), keeps an answer 30 s (requests
 *     for a name being looked up share the lookup), drops it after a
 *     request to the name fails without a response, and tries the
 *     addresses in getaddrinfo's order: a failed connect goes on to the
 *     next address. A name that does not resolve ends the request with
 *     DRV_EHANDLER, "cannot resolve NAME: why".
 *   - The client adds no Content-Type of its own and suppresses curl's
 *     "Expect: 100-continue" (one round trip less for large bodies); the
 *     caller's headers win over curl's defaults.
 *   - DNS in libcurl (https://, and the other cases above): Debian's
 *     libcurl (the OpenSSL build, 7.88) uses its threaded resolver
 *     (curl_version_info() lists CURL_VERSION_ASYNCHDNS): a name is
 *     resolved on a short-lived helper thread whose completion curl
 *     reports through a socket the loop watches, so no lookup blocks the
 *     loop. The client checks the feature when it starts libcurl and
 *     logs a warning if the libcurl in use lacks it (then lookups of
 *     names -- not of numeric addresses -- would block).
 *     drv_http_async_dns() reports it.
 *   - libcurl is loaded (dlopen) and started only by the first request
 *     that needs it: a client whose requests all go to plain http://
 *     URLs that libcurl's parser would leave as they are never loads it
 *     (a Retry-After date is read by drover's own parser). When it
 *     cannot be loaded, such a request fails at once
 *     with -ELIBACC (the reason went to stderr).
 *
 * Threads: every function runs on the loop thread, except
 * drv_http_parse_retry_after (pure) and drv_http_async_dns (pure; it
 * loads libcurl). curl_global_init runs once per process (pthread_once) at
 * the first request that needs libcurl; it is never undone
 * (curl_global_cleanup is not thread-safe and only frees memory that
 * stays reachable).
 */
#ifndef DROVER_HTTP_H
#define DROVER_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "drover/error.h"

struct drv_loop;
struct drv_http;
struct drv_http_call;

/* Default of drv_http_opts.max_idle_ms: libcurl's own default age
 * limit (CURLOPT_MAXAGE_CONN, 118 s). */
#define DRV_HTTP_MAX_IDLE_MS INT64_C(118000)

/* Longest Retry-After honoured; larger values are cut to it. */
#define DRV_HTTP_RETRY_AFTER_MAX_MS (INT64_C(30) * 24 * 3600 * 1000)

/* Options of a client; all-zero (or a NULL pointer) gives the defaults. */
struct drv_http_opts {
    long max_host_connections;  /* open connections per host; further
                                   requests wait for one; 0 = no limit */
    long max_total_connections; /* open connections in all; 0 = no limit */
    long max_kept_connections;  /* connections open at once, in use or
                                   idle, that curl keeps: a finished one
                                   beyond it closes (the oldest idle one
                                   goes). Below the requests in flight,
                                   connections are closed and reopened
                                   all the time; 0 = 64. Also the most
                                   finished calls kept for reuse (easy
                                   handle and buffers) */
    int64_t max_idle_ms;        /* a kept connection idle longer than
                                   this is closed rather than used again
                                   (a NAT or load balancer may have
                                   dropped it silently); the own client
                                   closes it when the time comes, libcurl
                                   (which counts whole seconds: it is
                                   given one less than this has, at
                                   least 1) when it next looks for a
                                   connection;
                                   0 = DRV_HTTP_MAX_IDLE_MS */
    const char *user_agent;     /* copied; NULL = "drover" */
};

/* One request; every pointer is borrowed only during drv_http_request,
 * which copies what it keeps. */
struct drv_http_req {
    const char *method;         /* upper-case token; NULL = "GET". HEAD
                                   never sends a body nor reads one */
    const char *url;            /* http:// or https://, already escaped */
    const char *const *headers; /* nheaders lines "Name: value" (no CR or
                                   LF); curl's conventions: "Name:" with
                                   no value removes a header curl would
                                   add, "Name;" sends it empty */
    size_t nheaders;            /* entries of headers */
    const char *body;           /* request body, any bytes; NULL = none */
    size_t body_len;            /* bytes of body */
    int64_t timeout_ms;         /* whole exchange, connect included;
                                   0 = no limit */
    size_t body_max;            /* response body bytes kept; the rest is
                                   read and dropped (resp->truncated) */
};

/* What came back; borrowed until the callback returns. */
struct drv_http_resp {
    int status;                 /* HTTP status; 0 when code < 0 */
    const char *reason;         /* reason phrase as sent, else the
                                   standard one ("Not Found"), else "" */
    int version;                /* 10, 11 or 20 (HTTP/1.0, 1.1, 2); 0 if
                                   no response */
    const char *body;           /* body_len bytes, NUL-terminated */
    size_t body_len;            /* <= body_max */
    int truncated;              /* the body was longer than body_max */
    int64_t retry_after_ms;     /* Retry-After of the final response in
                                   ms from now (delta-seconds or an
                                   HTTP-date; a past date is 0); -1 when
                                   absent or unparseable */
    const char *location;       /* a 3xx's Location as an absolute URL,
                                   or NULL */
    const char *error;          /* code < 0: what went wrong (curl's
                                   text, or the own client's), else "" */
};

/*
 * drv_http_done_fn -- completion of one request. code is
 *   0              an HTTP response arrived, whatever its status: resp
 *                  says which;
 *   -ECANCELED     drv_http_cancel or drv_http_free ended it;
 *   -ECONNREFUSED, -EHOSTUNREACH, -ENETUNREACH ...  connecting failed
 *                  (the connect's errno);
 *   -ETIMEDOUT     req->timeout_ms passed;
 *   -ECONNRESET    the connection broke before the response was whole;
 *   -EINVAL        the URL is malformed or not http(s);
 *   -ENOMEM        out of memory inside curl;
 *   DRV_EPROTO     the server's reply is not valid HTTP;
 *   DRV_EHANDLER   anything else (name resolution, TLS, HTTP/2 ...);
 *   (returned by drv_http_request, never to the callback:)
 *   -ELIBACC       the request needs libcurl, which cannot be loaded;
 * with resp->error saying more. resp is never NULL. The call handle is
 * invalid once the callback returns. The callback may issue requests,
 * cancel other calls and free the client.
 */
typedef void drv_http_done_fn(struct drv_http_call *call, int code,
                              const struct drv_http_resp *resp, void *ctx);

/*
 * drv_http_create -- a client on loop (borrowed: it must outlive the
 * client). opts (may be NULL) is copied. *out is owned by the caller:
 * drv_http_free. Returns 0, -EINVAL (negative limits), -ENOMEM, or
 * DRV_EHANDLER when libcurl cannot be initialised. Loop thread.
 */
int drv_http_create(struct drv_loop *loop, const struct drv_http_opts *opts,
                    struct drv_http **out);

/*
 * drv_http_free -- teardown; NULL does nothing. Every call still in
 * progress is aborted (its connection closed) and its callback runs with
 * -ECANCELED from inside this call; a call that had finished but whose
 * callback had not run yet reports its outcome (rule 16c: none is
 * dropped). Requests made from those callbacks fail with -ESHUTDOWN. Idle
 * connections are closed and every event the client added to the loop is
 * removed; the resolver threads are joined (a getaddrinfo in progress is
 * waited for). Safe from inside one of the client's callbacks: the client
 * then goes, as above, when that callback returns. Loop thread.
 */
void drv_http_free(struct drv_http *h);

/*
 * drv_http_request -- start req on h and call cb(call, code, resp, ctx)
 * when it ends. *out (may be NULL) gets a handle for drv_http_cancel,
 * valid until the callback returns; ctx is the caller's (borrowed until
 * the callback). Returns 0, -EINVAL (no URL, a URL that does not parse or
 * is not http(s), a header line with CR or LF, a bad method), -ENOMEM, or
 * -ESHUTDOWN (the client is being freed).
 * Callback contract: (a) if this returns an error, cb never runs; (b)
 * otherwise cb runs exactly once, on the loop thread, from a loop
 * callback -- never from inside this call (nor from inside
 * drv_http_cancel); (c) drv_http_cancel and drv_http_free complete it
 * with -ECANCELED, never dropping it. Loop thread.
 */
int drv_http_request(struct drv_http *h, const struct drv_http_req *req,
                     drv_http_done_fn *cb, void *ctx,
                     struct drv_http_call **out);

/*
 * drv_http_cancel -- abort call: its transfer is removed at once (an
 * HTTP/1 connection in the middle of a request is closed; an HTTP/2
 * stream is reset) and its callback runs with -ECANCELED on a later loop
 * callback, never inside this one -- also when the response had already
 * arrived but its callback had not run yet. Does nothing from inside the
 * call's own callback; NULL does nothing. Loop thread.
 */
void drv_http_cancel(struct drv_http_call *call);

/* What a client holds and has done, for tests and metrics. */
struct drv_http_stats {
    size_t pending;             /* calls whose callback has not run yet */
    size_t spare;               /* finished calls kept for the next
                                   requests, each with its easy handle and
                                   buffers: at most max_kept_connections;
                                   cut to a few once no call has been
                                   pending for a second */
    size_t open;                /* connections of the own client
                                   (connecting, busy or idle) */
    uint64_t lookups;           /* getaddrinfo calls of the own client
                                   (a name's answer is kept 30 s and
                                   shared by the requests waiting) */
    uint64_t next_address;      /* connects that failed and went on to
                                   the name's next address */
    uint64_t aged_out;          /* idle connections of the own client
                                   closed for having been idle
                                   max_idle_ms */
};

/* drv_http_get_stats -- a snapshot into *out. Loop thread. */
void drv_http_get_stats(const struct drv_http *h,
                        struct drv_http_stats *out);

/* drv_http_async_dns -- 1 when the libcurl in use resolves names off the
 * loop (CURL_VERSION_ASYNCHDNS), else 0. Any thread. */
int drv_http_async_dns(void);

/*
 * drv_http_parse_retry_after -- the value of a Retry-After header
 * (s[0..n), surrounding blanks allowed) in ms from now: delta-seconds
 * ("120") or an HTTP-date ("Wed, 21 Oct 2026 07:28:00 GMT", also the
 * obsolete RFC 850 and asctime forms) compared with now_unix_ms; a date
 * in the past gives 0. Values above DRV_HTTP_RETRY_AFTER_MAX_MS are cut
 * to it. Returns -1 when the value is neither. Pure; any thread.
 */
int64_t drv_http_parse_retry_after(const char *s, size_t n,
                                   int64_t now_unix_ms);

#endif
