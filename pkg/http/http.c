/*
 * http.c -- the asynchronous HTTP client: libcurl's multi-socket API on
 * libevent.
 *
 * DESIGN
 * One CURLM per client. curl tells us, through two callbacks, what to
 * watch: on_curl_socket (a socket and IN/OUT/REMOVE) keeps one struct
 * hsock with an embedded persistent event per socket, attached with
 * curl_multi_assign; on_curl_timer arms or deletes the client's single
 * timer. Readiness and the timer call curl_multi_socket_action, which
 * never blocks. Neither curl callback calls back into curl (the rule of
 * CURLMOPT_TIMERFUNCTION).
 *
 * A call is one easy handle: ACTIVE while it is in the multi, DONE once
 * finished or cancelled (removed from the multi, outcome recorded, queued
 * on the done list), CALLING while its callback runs; right after, it
 * goes on the client's spare list (a different magic, so a stale handle
 * still fails its check) with its easy handle reset and its buffers
 * emptied, and the next request takes it from there: no easy handle,
 * header list or body copy is made per request once the client has seen
 * its peak concurrency. The list holds at most max_kept_connections
 * calls, and is cut to SPARE_IDLE once no call has been pending for
 * SPARE_IDLE_MS (trim_ev, a one-shot timer armed when the last pending
 * call is delivered: a worker between two batches has no call pending
 * for a moment, and would otherwise free and make again hundreds of easy
 * handles per batch).
 * Completions are delivered only from our own libevent callbacks
 * (socket, timer, or the done_ev user event that drv_http_cancel
 * activates), after curl_multi_socket_action has returned -- so a user
 * callback is never inside curl, never inside drv_http_request or
 * drv_http_cancel, and may freely start, cancel or free.
 *
 * Re-entrancy (freeing from inside a callback is safe): every libevent callback of the client runs
 * under in_callback; drv_http_free inside it only sets freeing and the
 * outermost callback destroys the client on its way out. destroy()
 * removes every ACTIVE call from the multi, delivers everything with
 * -ECANCELED (requests made meanwhile get -ESHUTDOWN), then frees the
 * multi (closing idle connections), the share and the leftover socket
 * events.
 *
 * Connections live in the multi's cache, so they outlive the easy handle
 * that opened them; TLS sessions are shared through a CURLSH. Idle cached
 * connections have no event on the loop (curl un-watches a socket when no
 * transfer uses it; its hsock stays, unwatched, for the next transfer on
 * that fd), so a client without calls keeps the loop alive only until
 * trim_ev (at most SPARE_IDLE_MS after its last call), and while the own
 * client keeps an idle connection, by its age timer (http_h1.c) until
 * that connection reaches max_idle_ms.
 *
 * Plain http:// to an IP address or a plain ASCII host name (call_url
 * finds it once per URL, in url_target) goes through http_h1.c instead
 * of curl, unless a proxy variable is set or the headers set the body's
 * framing or an empty Host (lean_headers): the call then is "lean",
 * builds libcurl's request head itself (build_head) and its xfer runs on
 * the client's h1 pool; on_h1_done records the outcome and delivers it
 * like collect() does for curl's transfers. The same call, spare list and
 * callbacks serve both.
 *
 * libcurl is started only for a request that needs it (curl_start: the
 * multi and the share, and curl_global_init once per process, which loads
 * libcurl through http_curl.c): a URL that drv__http_url_lean takes (a
 * plain http:// URL libcurl's parser would leave as it is) goes to h1
 * without libcurl's parser; any other is parsed by curl (curl_parse),
 * which may still find it lean (drv__http_url_target). A call makes its easy
 * handle at its first request through curl (call_easy) and keeps it
 * while spare, like its parsed URL.
 *
 * A lean call to a name first gets the name's addresses from http_dns.c
 * (getaddrinfo on the resolver's threads, answers cached 30 s): at once
 * from the cache, or later in on_dns_done, from the resolver's loop
 * callback, which starts the xfer with what is left of the request's
 * timeout (deadline_ns) or, on a failure, queues the call on the done
 * list and activates done_ev (no user callback runs inside the
 * resolver's iteration over its waiters). call_finish (cancel, timeout,
 * teardown) unlinks a call still waiting; destroy() frees the resolver,
 * joining its threads, after every call is finished. A lean request to
 * a name that fails without a response drops the name's cached answer.
 *
 * Loop thread only; no locks.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "drover/buf.h"
#include "drover/clock.h"
#include "drover/common.h"
#include "drover/http.h"
#include "drover/log.h"
#include "drover/loop.h"
#include "drover/parse.h"
#include "http_int.h"

#define USER_AGENT "drover"
#define KEPT_DEFAULT 64         /* connections kept open in the cache */
#define SPARE_IDLE 16           /* spare calls kept while none is pending */
#define SPARE_IDLE_MS 1000      /* ... for this long (drover/http.h) */
#define SPARE_BUF_MAX 65536     /* a spare call's buffers above this go */
#define REASON_MAX 64           /* reason phrase kept */

enum call_state {
    CALL_ACTIVE = 0,            /* in the multi */
    CALL_DONE,                  /* outcome recorded, on the done list */
    CALL_CALLING                /* its callback is running */
};

struct drv_http_call {
    unsigned magic;
#define DRV_HTTP_CALL_MAGIC 0x477bca11U
#define SPARE_CALL_MAGIC 0x477b5a4eU /* on the client's spare list */
    /* kept by a spare call for the next request (call_get) */
    CURL *easy;                 /* owned: the transfer, with its constant
                                   options; NULL until a request of the
                                   call needs libcurl */
    CURLU *url;                 /* owned: url_text parsed, curl's
                                   CURLOPT_CURLU */
    int url_curl;               /* url and easy's CURLU hold url_text */
    struct drv_buf url_text;    /* owned: the URL url holds, "" none */
    struct curl_slist *hdr;     /* owned: nodes of the header list curl
                                   reads, hdr_cap of them; their data
                                   point into hdr_text */
    size_t hdr_cap;             /* nodes allocated in hdr */
    struct drv_buf hdr_text;    /* owned: the header lines, NUL after each */
    struct drv_buf body;        /* owned: copy of the request body */
    struct drv_buf rbody;       /* owned: response body kept */
    int url_lean;               /* url_text goes through h1 (tgt) */
    struct drv__h1_target tgt;  /* owned: url_text's address and target */
    struct drv__h1_xfer x;      /* the h1 transfer */
    struct drv__dns_wait dq;    /* waiting for tgt.name's addresses */
    /* one request's: zeroed from here to the end for each (CALL_FRESH) */
    struct drv_http *h;         /* borrowed: the client */
    enum call_state state;      /* see DESIGN */
    drv_http_done_fn *cb;       /* completion */
    void *ctx;                  /* borrowed: the caller's */
    int code;                   /* outcome, once DONE */
    size_t body_max;            /* most bytes kept in rbody */
    int truncated;              /* bytes past body_max were dropped */
    int status;                 /* HTTP status of the final response */
    int version;                /* 10, 11, 20 */
    int64_t retry_after_ms;     /* parsed Retry-After, -1 none */
    char reason[REASON_MAX];    /* reason phrase of the last status line */
    char *location;             /* owned: 3xx target, NULL; freed by
                                   call_release */
    char errbuf[CURL_ERROR_SIZE]; /* curl's detailed error text */
    int lean;                   /* the request went through h1, not curl */
    int64_t deadline_ns;        /* lean, timeout_ms > 0: when it ends */
    int64_t timeout_ms;         /* the request's, 0 none */
    size_t send_body_len;       /* lean: body bytes to send, has_body */
    int has_body;               /* lean: a body (maybe empty) goes out */
    TAILQ_ENTRY(drv_http_call) link; /* on h->active, done or spare */
};
#define CALL_FRESH offsetof(struct drv_http_call, h)

/* A socket curl asked us to watch. Kept (unwatched) after curl's
 * CURL_POLL_REMOVE, for the next transfer on the same fd: a kept-alive
 * connection is removed after every transfer and added again by the
 * next one. */
struct hsock {
    unsigned magic;
#define HSOCK_MAGIC 0x450cce75U
    curl_socket_t fd;           /* curl's socket (curl closes it) */
    int added;                  /* ev is on the loop */
    struct event ev;            /* EV_PERSIST, READ and/or WRITE */
    LIST_ENTRY(hsock) link;     /* on h->socks */
};

TAILQ_HEAD(call_list, drv_http_call);

struct drv_http {
    unsigned magic;
#define DRV_HTTP_MAGIC 0x477b0c11U
    struct drv_loop *loop;      /* borrowed: outlives the client */
    struct event_base *base;    /* borrowed: the loop's */
    CURLM *multi;               /* owned: transfers, connection cache;
                                   NULL until a request needs libcurl */
    CURLSH *share;              /* owned: TLS session cache, as multi */
    struct drv__h1 *h1;         /* owned: plain http:// */
    struct drv__dns *dns;       /* owned: h1's host names */
    int own_off;                /* drv__http_own_client(h, 0) */
    char *user_agent;           /* owned */
    int proxy_env;              /* a proxy variable was set at creation */
    long max_age_s;             /* curl's CURLOPT_MAXAGE_CONN: the opts'
                                   max_idle_ms in whole seconds less one,
                                   at least 1 (drv_http_create) */
    long max_host;              /* the opts', for the multi */
    long max_total;             /* the opts', for the multi */
    struct event timer_ev;      /* curl's timeout */
    struct event done_ev;       /* user event: deliver the done list */
    struct event trim_ev;       /* one-shot: cut the spare list */
    LIST_HEAD(, hsock) socks;   /* owned: sockets curl told us of */
    struct hsock **sock_by_fd;  /* owned array: socks indexed by fd */
    size_t nsock_by_fd;         /* entries of sock_by_fd */
    struct call_list spare;     /* owned: finished calls kept with their
                                   easy handle and buffers for reuse */
    size_t nspare;              /* calls on spare */
    size_t spare_max;           /* most calls kept on spare */
    struct call_list active;    /* owned: calls in the multi */
    struct call_list done;      /* owned: callbacks due, FIFO */
    size_t pending;             /* calls whose callback has not returned */
    int in_callback;            /* depth of our libevent callbacks */
    int freeing;                /* drv_http_free was called */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;
static pthread_once_t dns_warn_once = PTHREAD_ONCE_INIT;

static void destroy(struct drv_http *h);

/* ----------------------------------------------------------- helpers */

static void
init_curl(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void
warn_sync_dns(void)
{
    const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);

    if (!(vi->features & CURL_VERSION_ASYNCHDNS))
        DRV_LOG_WARN("libcurl resolves host names synchronously: a lookup "
                     "blocks the event loop", "curl=%s", vi->version);
}

int
drv_http_async_dns(void)
{
    const curl_version_info_data *vi = curl_version_info(CURLVERSION_NOW);

    return (vi->features & CURL_VERSION_ASYNCHDNS) != 0;
}

/* 1 if any variable libcurl reads for its proxy is set (it reads them
 * per transfer unless told the proxy; HTTP_PROXY it ignores, but a set
 * one leaves the reading to curl all the same). */
static int
proxy_in_env(void)
{
    static const char *const names[] = {
        "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
        "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY",
    };
    size_t i;

    for (i = 0; i < DRV_ARRAY_LEN(names); i++)
        if (getenv(names[i]) != NULL)
            return 1;
    return 0;
}

/* 1 if header line s names header name (case-insensitive), as "Name:"
 * or "Name;" (curl's form for an empty value). */
static int
header_is(const char *s, const char *name)
{
    size_t n = strlen(name);

    return strncasecmp(s, name, n) == 0 && (s[n] == ':' || s[n] == ';');
}

static const char *
standard_reason(int status)
{
    static const struct {
        int status;
        const char *text;
    } tab[] = {
        {100, "Continue"}, {101, "Switching Protocols"},
        {200, "OK"}, {201, "Created"}, {202, "Accepted"},
        {203, "Non-Authoritative Information"}, {204, "No Content"},
        {205, "Reset Content"}, {206, "Partial Content"},
        {300, "Multiple Choices"}, {301, "Moved Permanently"},
        {302, "Found"}, {303, "See Other"}, {304, "Not Modified"},
        {307, "Temporary Redirect"}, {308, "Permanent Redirect"},
        {400, "Bad Request"}, {401, "Unauthorized"},
        {402, "Payment Required"}, {403, "Forbidden"}, {404, "Not Found"},
        {405, "Method Not Allowed"}, {406, "Not Acceptable"},
        {407, "Proxy Authentication Required"}, {408, "Request Timeout"},
        {409, "Conflict"}, {410, "Gone"}, {411, "Length Required"},
        {412, "Precondition Failed"}, {413, "Content Too Large"},
        {414, "URI Too Long"}, {415, "Unsupported Media Type"},
        {416, "Range Not Satisfiable"}, {417, "Expectation Failed"},
        {421, "Misdirected Request"}, {422, "Unprocessable Content"},
        {423, "Locked"}, {424, "Failed Dependency"}, {425, "Too Early"},
        {426, "Upgrade Required"}, {428, "Precondition Required"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {451, "Unavailable For Legal Reasons"},
        {500, "Internal Server Error"}, {501, "Not Implemented"},
        {502, "Bad Gateway"}, {503, "Service Unavailable"},
        {504, "Gateway Timeout"}, {505, "HTTP Version Not Supported"},
        {507, "Insufficient Storage"},
        {511, "Network Authentication Required"},
    };
    size_t i;

    for (i = 0; i < DRV_ARRAY_LEN(tab); i++)
        if (tab[i].status == status)
            return tab[i].text;
    return "";
}

/* -------------------------------------------------------- Retry-After */

static int
is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* Reads exactly n digits at *p (before e) into *v and moves *p past
 * them; 0, or -1 when they are not there. With pad, a leading blank may
 * stand for a zero (asctime's day "Nov  6"). */
static int
date_digits(const char **p, const char *e, int n, int pad, int *v)
{
    const char *q = *p;
    int i;

    *v = 0;
    if (pad && q < e && *q == ' ') {
        q++;
        n--;
    }
    for (i = 0; i < n; i++, q++) {
        if (q >= e || *q < '0' || *q > '9')
            return -1;
        *v = *v * 10 + (*q - '0');
    }
    *p = q;
    return 0;
}

/* Matches the literal text t at *p and moves past it. */
static int
date_lit(const char **p, const char *e, const char *t)
{
    size_t n = strlen(t);

    if ((size_t)(e - *p) < n || strncasecmp(*p, t, n) != 0)
        return -1;
    *p += n;
    return 0;
}

/* One of names (count of them) at *p, case-insensitively: its index,
 * or -1. */
static int
date_name(const char **p, const char *e, const char *const *names,
          int count)
{
    int i;

    for (i = 0; i < count; i++)
        if (date_lit(p, e, names[i]) == 0)
            return i;
    return -1;
}

/* "HH:MM:SS" into tm. */
static int
date_clock(const char **p, const char *e, struct tm *tm)
{
    if (date_digits(p, e, 2, 0, &tm->tm_hour) < 0 || date_lit(p, e, ":") ||
        date_digits(p, e, 2, 0, &tm->tm_min) < 0 || date_lit(p, e, ":") ||
        date_digits(p, e, 2, 0, &tm->tm_sec) < 0)
        return -1;
    return 0;
}

static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr",
                                          "May", "Jun", "Jul", "Aug",
                                          "Sep", "Oct", "Nov", "Dec"};

/* "DD<sep>Mon<sep>YEAR HH:MM:SS GMT" (IMF-fixdate after its comma: sep
 * " ", a 4-digit year; RFC 850: sep "-", 2 digits) into tm and *year. */
static int
date_dmy_clock(const char **p, const char *e, const char *sep,
               int year_digits, struct tm *tm, int *year)
{
    if (date_digits(p, e, 2, 0, &tm->tm_mday) < 0 || date_lit(p, e, sep) ||
        (tm->tm_mon = date_name(p, e, month_names, 12)) < 0 ||
        date_lit(p, e, sep) || date_digits(p, e, year_digits, 0, year) < 0 ||
        date_lit(p, e, " ") || date_clock(p, e, tm) < 0 ||
        date_lit(p, e, " GMT"))
        return -1;
    return 0;
}

/*
 * An HTTP-date (RFC 9110 section 5.6.7) as Unix seconds, or -1: the
 * IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT" and the two obsolete forms
 * a recipient must also read, RFC 850's "Sunday, 06-Nov-94 08:49:37 GMT"
 * (its two-digit year is the latest year ending in those digits that is
 * not more than 50 years after now_year, as RFC 9110 asks) and asctime's
 * "Sun Nov  6 08:49:37 1994". Names are matched without regard to case, the
 * weekday is not checked against the date, and nothing may follow.
 */
static time_t
http_date(const char *s, size_t n, int now_year)
{
    static const char *const wday[] = {"Sun", "Mon", "Tue", "Wed", "Thu",
                                       "Fri", "Sat"};
    static const char *const wdayl[] = {"Sunday", "Monday", "Tuesday",
                                        "Wednesday", "Thursday", "Friday",
                                        "Saturday"};
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
                                30, 31};
    const char *p = s, *e = s + n;
    struct tm tm;
    int year, leap;

    memset(&tm, 0, sizeof tm);
    if (date_name(&p, e, wdayl, 7) >= 0) { /* RFC 850 */
        if (date_lit(&p, e, ", ") ||
            date_dmy_clock(&p, e, "-", 2, &tm, &year) < 0)
            return -1;
        year += now_year - now_year % 100;
        if (year > now_year + 50)
            year -= 100;
        else if (year + 100 <= now_year + 50)
            year += 100;
    } else if (date_name(&p, e, wday, 7) < 0) {
        return -1;
    } else if (date_lit(&p, e, ", ") == 0) { /* IMF-fixdate */
        if (date_dmy_clock(&p, e, " ", 4, &tm, &year) < 0)
            return -1;
    } else { /* asctime */
        if (date_lit(&p, e, " ") ||
            (tm.tm_mon = date_name(&p, e, month_names, 12)) < 0 ||
            date_lit(&p, e, " ") ||
            date_digits(&p, e, 2, 1, &tm.tm_mday) < 0 ||
            date_lit(&p, e, " ") || date_clock(&p, e, &tm) < 0 ||
            date_lit(&p, e, " ") || date_digits(&p, e, 4, 0, &year) < 0)
            return -1;
    }
    leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (p != e || year < 1970 || tm.tm_mday < 1 ||
        tm.tm_mday > mdays[tm.tm_mon] ||
        (tm.tm_mon == 1 && tm.tm_mday == 29 && !leap) || tm.tm_hour > 23 ||
        tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    tm.tm_year = year - 1900;
    return timegm(&tm);
}

int64_t
drv_http_parse_retry_after(const char *s, size_t n, int64_t now_unix_ms)
{
    const int64_t max_s = DRV_HTTP_RETRY_AFTER_MAX_MS / 1000;
    int64_t v = 0, ms;
    size_t i;
    time_t t, now_s;
    struct tm now_tm;

    while (n > 0 && is_blank(s[0])) {
        s++;
        n--;
    }
    while (n > 0 && is_blank(s[n - 1]))
        n--;
    if (n == 0)
        return -1;
    for (i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        if (v <= max_s)
            v = v * 10 + (s[i] - '0');
    if (i == n)             /* delta-seconds */
        return v > max_s ? DRV_HTTP_RETRY_AFTER_MAX_MS : v * 1000;
    if (i > 0)
        return -1;          /* "12abc" */
    now_s = (time_t)(now_unix_ms / 1000);
    if (gmtime_r(&now_s, &now_tm) == NULL)
        return -1;
    t = http_date(s, n, now_tm.tm_year + 1900);
    if (t == (time_t)-1)
        return -1;
    if ((int64_t)t > now_unix_ms / 1000 + max_s)
        return DRV_HTTP_RETRY_AFTER_MAX_MS;
    ms = (int64_t)t * 1000 - now_unix_ms;
    return ms > 0 ? ms : 0;
}

/* --------------------------------------------------- curl write hooks */

static size_t
on_body(char *p, size_t size, size_t nmemb, void *ud)
{
    struct drv_http_call *c;
    size_t len = size * nmemb, room, keep;

    DRV_CAST(c, ud, DRV_HTTP_CALL_MAGIC);
    room = c->body_max - c->rbody.len;
    keep = len < room ? len : room;
    if (keep > 0)
        drv_buf_add(&c->rbody, p, keep);
    if (keep < len)
        c->truncated = 1;
    return len; /* read the rest too: the connection stays reusable */
}

/* One header line (with its CRLF). A status line starts a new response
 * (an interim 1xx, or the final one): what we keep is the last one's. */
static size_t
on_header(char *p, size_t size, size_t nmemb, void *ud)
{
    struct drv_http_call *c;
    size_t len = size * nmemb, i, k;
    static const char ra[] = "retry-after:";

    DRV_CAST(c, ud, DRV_HTTP_CALL_MAGIC);
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        c->retry_after_ms = -1;
        c->reason[0] = '\0';
        /* "HTTP/1.1 404 Not Found": skip the version and the code */
        for (i = 5; i < len && p[i] != ' '; i++)
            ;
        for (i++; i < len && p[i] != ' ' && !is_blank(p[i]); i++)
            ;
        while (i < len && p[i] == ' ')
            i++;
        /* a NUL ends it too: the blanks before it are trimmed below */
        for (k = 0; i < len && p[i] != '\r' && p[i] != '\n' &&
                    p[i] != '\0' && k + 1 < REASON_MAX; i++)
            c->reason[k++] = p[i];
        while (k > 0 && c->reason[k - 1] == ' ')
            k--;
        c->reason[k] = '\0';
    } else if (len > sizeof ra - 1 &&
               strncasecmp(p, ra, sizeof ra - 1) == 0) {
        c->retry_after_ms = drv_http_parse_retry_after(
            p + sizeof ra - 1, len - (sizeof ra - 1), drv_clock_unix_ms());
    }
    return len;
}

/* ------------------------------------------------------------- calls */

/* Free c: a fresh call, or one call_release already emptied (it frees
 * the request's leftovers, such as location). */
static void
call_destroy(struct drv_http_call *c)
{
    if (c->easy != NULL)
        curl_easy_cleanup(c->easy);
    curl_url_cleanup(c->url);
    drv_buf_fini(&c->url_text);
    drv__h1_target_fini(&c->tgt);
    drv__h1_xfer_fini(&c->x);
    DRV_ASSERT(!c->dq.active);
    if (c->dq.timer_set)
        event_del(&c->dq.timer);
    free(c->hdr);
    drv_buf_fini(&c->hdr_text);
    drv_buf_fini(&c->body);
    drv_buf_fini(&c->rbody);
    DRV_FREE_OBJ(c);
}

/* The options of c's easy handle that are the same for every request
 * (c keeps its address while spare): set once, when c is made; 0, or
 * -ENOMEM. */
static int
easy_setup(struct drv_http *h, struct drv_http_call *c)
{
    int ok = 1;

#define SET(opt, val) (ok = ok && curl_easy_setopt(c->easy, opt, val) == \
                                      CURLE_OK)
    SET(CURLOPT_PRIVATE, (void *)c);
    SET(CURLOPT_ERRORBUFFER, c->errbuf);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_SHARE, h->share);
    SET(CURLOPT_USERAGENT, h->user_agent);
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_MAXAGE_CONN, h->max_age_s);
    SET(CURLOPT_WRITEFUNCTION, on_body);
    SET(CURLOPT_WRITEDATA, (void *)c);
    SET(CURLOPT_HEADERFUNCTION, on_header);
    SET(CURLOPT_HEADERDATA, (void *)c);
    /* no proxy variable in the environment: say so, or curl reads them
     * all again for every transfer */
    if (!h->proxy_env) {
        SET(CURLOPT_PROXY, "");
        SET(CURLOPT_NOPROXY, "");
    }
#undef SET
    return ok ? 0 : -ENOMEM;
}

/* A call for a new request: a spare one (its easy handle with its
 * constant options, its parsed URL, its buffers emptied) or a new one;
 * NULL when out of memory. */
static struct drv_http_call *
call_get(struct drv_http *h)
{
    struct drv_http_call *c = TAILQ_FIRST(&h->spare);

    if (c == NULL) {
        DRV_ALLOC_OBJ(c, DRV_HTTP_CALL_MAGIC);
        drv_buf_init(&c->url_text);
        drv_buf_init(&c->hdr_text);
        drv_buf_init(&c->body);
        drv_buf_init(&c->rbody);
        drv__h1_target_init(&c->tgt);
        drv__h1_xfer_init(&c->x);
        c->dq.magic = DRV__DNS_WAIT_MAGIC;
    } else {
        DRV_CHECK_OBJ(c, SPARE_CALL_MAGIC);
        TAILQ_REMOVE(&h->spare, c, link);
        h->nspare--;
        c->magic = DRV_HTTP_CALL_MAGIC;
        memset((char *)c + CALL_FRESH, 0, sizeof *c - CALL_FRESH);
        drv_buf_reset(&c->hdr_text);
        drv_buf_reset(&c->body);
        drv_buf_reset(&c->rbody);
    }
    c->h = h;
    c->retry_after_ms = -1;
    return c;
}

/* A call whose callback has returned: kept on the spare list with its
 * easy handle (its options stay: the next request sets the ones that
 * vary) and its parsed URL, or freed when the list is full or the
 * client is going. */
static void
call_release(struct drv_http *h, struct drv_http_call *c)
{
    free(c->location);
    c->location = NULL;
    if (h->freeing || h->nspare >= h->spare_max) {
        call_destroy(c);
        return;
    }
    /* a large body is not kept for ever for a rare big request */
    if (c->body.cap > SPARE_BUF_MAX)
        drv_buf_fini(&c->body);
    if (c->rbody.cap > SPARE_BUF_MAX)
        drv_buf_fini(&c->rbody);
    if (c->hdr_text.cap > SPARE_BUF_MAX)
        drv_buf_fini(&c->hdr_text);
    c->magic = SPARE_CALL_MAGIC;
    TAILQ_INSERT_HEAD(&h->spare, c, link);
    h->nspare++;
}

/* Free spare calls until at most keep are left. */
static void
spare_trim(struct drv_http *h, size_t keep)
{
    while (h->nspare > keep) {
        struct drv_http_call *c = TAILQ_FIRST(&h->spare);

        DRV_CHECK_OBJ(c, SPARE_CALL_MAGIC);
        TAILQ_REMOVE(&h->spare, c, link);
        h->nspare--;
        call_destroy(c);
    }
}

/* An ACTIVE call leaves the multi and joins the done list with code. */
static void
call_finish(struct drv_http_call *c, int code)
{
    struct drv_http *h = c->h;

    DRV_ASSERT(c->state == CALL_ACTIVE);
    if (c->lean) {
        drv__dns_abort(&c->dq); /* nothing if not waiting */
        drv__h1_abort(&c->x); /* nothing if it ended by itself */
    }
    else
        DRV_AZ(curl_multi_remove_handle(h->multi, c->easy));
    TAILQ_REMOVE(&h->active, c, link);
    c->state = CALL_DONE;
    c->code = code;
    TAILQ_INSERT_TAIL(&h->done, c, link);
}

/* curl's result of a finished transfer as our code. */
static int
map_result(struct drv_http_call *c, CURLcode res)
{
    long os_errno = 0;

    switch (res) {
    case CURLE_OK:
        return 0;
    case CURLE_COULDNT_CONNECT:
        if (curl_easy_getinfo(c->easy, CURLINFO_OS_ERRNO, &os_errno) !=
                CURLE_OK || os_errno <= 0 || os_errno > 4000)
            os_errno = ECONNREFUSED;
        return -(int)os_errno;
    case CURLE_OPERATION_TIMEDOUT:
        return -ETIMEDOUT;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return -ECONNRESET;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return -EINVAL;
    case CURLE_OUT_OF_MEMORY:
        return -ENOMEM;
    case CURLE_WEIRD_SERVER_REPLY:
        return DRV_EPROTO;
    default:
        return DRV_EHANDLER;
    }
}

/* A transfer curl reports DONE: record what came back. */
static void
transfer_done(struct drv_http_call *c, CURLcode res)
{
    long status = 0, version = 0;
    char *loc = NULL;
    int code = map_result(c, res);

    if (code == 0) {
        (void)curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
        (void)curl_easy_getinfo(c->easy, CURLINFO_HTTP_VERSION, &version);
        c->status = (int)status;
        c->version = version == CURL_HTTP_VERSION_1_0 ? 10
                   : version == CURL_HTTP_VERSION_1_1 ? 11
                   : version == CURL_HTTP_VERSION_2_0 ? 20
                   : version == CURL_HTTP_VERSION_3 ? 30 : 0;
        if (status >= 300 && status < 400 &&
            curl_easy_getinfo(c->easy, CURLINFO_REDIRECT_URL, &loc) ==
                CURLE_OK && loc != NULL)
            c->location = drv_xstrdup(loc);
    } else if (c->errbuf[0] == '\0') {
        snprintf(c->errbuf, sizeof c->errbuf, "%s", curl_easy_strerror(res));
    }
    call_finish(c, code);
}

/* Move every transfer curl finished to the done list. */
static void
collect(struct drv_http *h)
{
    CURLMsg *m;
    int left = 0;

    while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
        struct drv_http_call *c;
        void *p = NULL;
        CURLcode res;

        if (m->msg != CURLMSG_DONE)
            continue;
        res = m->data.result; /* m is invalid once the handle is removed */
        DRV_AZ(curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &p));
        DRV_CAST(c, p, DRV_HTTP_CALL_MAGIC);
        transfer_done(c, res);
    }
}

/* Run the callbacks of the done list, oldest first; ones added meanwhile
 * (a cancel from a callback) run in the same pass. */
static void
deliver(struct drv_http *h)
{
    struct drv_http_stats st = {0};
    struct drv_http_call *c;

    while ((c = TAILQ_FIRST(&h->done)) != NULL) {
        struct drv_http_resp r;

        TAILQ_REMOVE(&h->done, c, link);
        c->state = CALL_CALLING;
        memset(&r, 0, sizeof r);
        r.retry_after_ms = -1;
        r.reason = "";
        r.body = "";
        r.error = "";
        if (c->code == 0) {
            r.status = c->status;
            r.reason = c->reason[0] != '\0' ? c->reason
                                             : standard_reason(c->status);
            r.version = c->version;
            r.body = c->rbody.len > 0 ? c->rbody.data : "";
            r.body_len = c->rbody.len;
            r.truncated = c->truncated;
            r.retry_after_ms = c->retry_after_ms;
            r.location = c->location;
        } else if (c->code == -ECANCELED) {
            r.error = "cancelled";
        } else {
            r.error = c->errbuf;
        }
        c->cb(c, c->code, &r, c->ctx);
        h->pending--;
        call_release(h, c);
    }
    if (h->pending == 0)
        drv__h1_get_stats(h->h1, &st);
    /* idle: the spare calls of a burst go, but for a few, unless calls
     * come again meanwhile */
    if (h->pending == 0 && !h->freeing &&
        (h->nspare > SPARE_IDLE || st.open > 0) &&
        !evtimer_pending(&h->trim_ev, NULL)) {
        struct timeval tv = drv_clock_tv_from_ns(
            (int64_t)SPARE_IDLE_MS * DRV_NS_PER_MS);

        DRV_AZ(evtimer_add(&h->trim_ev, &tv));
    }
}

/* Leave one of our libevent callbacks: destroy if freed inside it. */
static void
leave(struct drv_http *h)
{
    DRV_ASSERT(h->in_callback > 0);
    if (--h->in_callback == 0 && h->freeing)
        destroy(h);
}

/* ------------------------------------------------- loop <-> curl glue */

/* curl_multi_socket_action for fd (or the timeout), then completions. */
static void
drive(struct drv_http *h, curl_socket_t fd, int action)
{
    int running = 0;

    h->in_callback++;
    if (!h->freeing) {
        (void)curl_multi_socket_action(h->multi, fd, action, &running);
        collect(h);
    }
    deliver(h);
    leave(h);
}

/* Everything curl asked us to watch, as curl_multi_socket_action takes
 * it: a socket's event (an hsock's ev) with what it is ready for, or the
 * timer (timer_ev) as CURL_SOCKET_TIMEOUT. */
static void
on_curl_ev(evutil_socket_t fd, short what, void *arg)
{
    struct drv_http *h;
    int action = 0;

    DRV_CAST(h, arg, DRV_HTTP_MAGIC);
    if (what & EV_TIMEOUT) {
        drive(h, CURL_SOCKET_TIMEOUT, 0);
        return;
    }
    if (what & EV_READ)
        action |= CURL_CSELECT_IN;
    if (what & EV_WRITE)
        action |= CURL_CSELECT_OUT;
    drive(h, (curl_socket_t)fd, action);
}

static void
on_trim_ev(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv_http *h;

    DRV_CAST(h, arg, DRV_HTTP_MAGIC);
    if (h->pending == 0) {
        spare_trim(h, SPARE_IDLE);
        drv__h1_unwatch_idle(h->h1); /* nothing of ours keeps the loop */
    }
}

static void
on_done_ev(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv_http *h;

    DRV_CAST(h, arg, DRV_HTTP_MAGIC);
    h->in_callback++;
    deliver(h);
    leave(h);
}

static void
sock_free(struct drv_http *h, struct hsock *s)
{
    DRV_AZ(event_del(&s->ev));
    LIST_REMOVE(s, link);
    h->sock_by_fd[s->fd] = NULL;
    DRV_FREE_OBJ(s);
}

/* The hsock of fd, made on first use. */
static struct hsock *
sock_get(struct drv_http *h, curl_socket_t fd)
{
    struct hsock *s;

    DRV_ASSERT(fd >= 0);
    if ((size_t)fd >= h->nsock_by_fd) {
        size_t n = h->nsock_by_fd ? h->nsock_by_fd : 64;

        while (n <= (size_t)fd)
            n *= 2;
        h->sock_by_fd = drv_xrealloc(h->sock_by_fd, n * sizeof *h->sock_by_fd);
        memset(h->sock_by_fd + h->nsock_by_fd, 0,
               (n - h->nsock_by_fd) * sizeof *h->sock_by_fd);
        h->nsock_by_fd = n;
    }
    s = h->sock_by_fd[fd];
    if (s == NULL) {
        DRV_ALLOC_OBJ(s, HSOCK_MAGIC);
        s->fd = fd;
        LIST_INSERT_HEAD(&h->socks, s, link);
        h->sock_by_fd[fd] = s;
    }
    return s;
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what (or stop watching it). */
static int
on_curl_socket(CURL *easy DRV_UNUSED, curl_socket_t fd, int what, void *userp,
               void *sockp)
{
    struct drv_http *h;
    struct hsock *s = sockp;
    short flags = 0;

    DRV_CAST(h, userp, DRV_HTTP_MAGIC);
    if (s != NULL)
        DRV_CHECK_OBJ(s, HSOCK_MAGIC);
    /* the hsock stays for the fd's next transfer: curl removes a kept
     * connection after each one and adds it again for the next */
    if (what == CURL_POLL_REMOVE) {
        if (s != NULL && s->added) {
            DRV_AZ(event_del(&s->ev));
            s->added = 0;
        }
        return 0;
    }
    if (s == NULL) {
        s = sock_get(h, fd);
        DRV_AZ(curl_multi_assign(h->multi, fd, s));
    }
    if (s->added)
        DRV_AZ(event_del(&s->ev));
    if (what & CURL_POLL_IN)
        flags |= EV_READ;
    if (what & CURL_POLL_OUT)
        flags |= EV_WRITE;
    DRV_AZ(event_assign(&s->ev, h->base, fd, flags | EV_PERSIST, on_curl_ev,
                        h));
    s->added = flags != 0;
    if (s->added)
        DRV_AZ(event_add(&s->ev, NULL));
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: wake curl after timeout_ms (-1 = never). */
static int
on_curl_timer(CURLM *multi DRV_UNUSED, long timeout_ms, void *userp)
{
    struct drv_http *h;
    struct timeval tv;

    DRV_CAST(h, userp, DRV_HTTP_MAGIC);
    if (timeout_ms < 0) {
        DRV_AZ(event_del(&h->timer_ev));
        return 0;
    }
    tv = drv_clock_tv_from_ns((int64_t)timeout_ms * DRV_NS_PER_MS);
    DRV_AZ(event_add(&h->timer_ev, &tv));
    return 0;
}

/* ------------------------------------------------------------ client */

int
drv_http_create(struct drv_loop *loop, const struct drv_http_opts *opts,
                struct drv_http **out)
{
    struct drv_http *h = NULL;
    struct drv_http_opts o;

    *out = NULL;
    memset(&o, 0, sizeof o);
    if (opts != NULL)
        o = *opts;
    if (o.max_host_connections < 0 || o.max_total_connections < 0 ||
        o.max_kept_connections < 0 || o.max_idle_ms < 0)
        return -EINVAL;
    if (o.max_idle_ms == 0)
        o.max_idle_ms = DRV_HTTP_MAX_IDLE_MS;
    DRV_ALLOC_OBJ(h, DRV_HTTP_MAGIC);
    h->loop = loop;
    h->base = drv_loop_base(loop);
    h->user_agent = drv_xstrdup(o.user_agent ? o.user_agent : USER_AGENT);
    h->proxy_env = proxy_in_env();
    /* curl drops a connection whose idle time in whole seconds (rounded
     * down) exceeds max_age_s, so it reuses one idle up to max_age_s +
     * 0.999 s: one second less than the limit's whole seconds keeps
     * within it (118 s: none idle 118 s or more is reused). Below 2 s
     * the least curl takes, 1, reuses one idle up to 2 s. */
    h->max_age_s = o.max_idle_ms / 1000 > 2
                       ? (long)(o.max_idle_ms / 1000) - 1
                       : 1;
    TAILQ_INIT(&h->active);
    TAILQ_INIT(&h->done);
    TAILQ_INIT(&h->spare);
    evtimer_assign(&h->timer_ev, h->base, on_curl_ev, h);
    event_assign(&h->done_ev, h->base, -1, 0, on_done_ev, h);
    evtimer_assign(&h->trim_ev, h->base, on_trim_ev, h);
    h->max_host = o.max_host_connections;
    h->max_total = o.max_total_connections;
    /* a fixed cache: curl's default (4 x the transfers in the multi)
     * shrinks to nothing as a burst drains, closing the connections the
     * next burst would reuse */
    h->spare_max = o.max_kept_connections > 0
                       ? (size_t)o.max_kept_connections : KEPT_DEFAULT;
    {
        struct drv__h1_opts ho = {.max_host = o.max_host_connections,
                                  .max_total = o.max_total_connections,
                                  .max_kept = o.max_kept_connections,
                                  .max_idle_ms = o.max_idle_ms};

        DRV_AZ(drv__h1_create(h->base, &ho, &h->h1));
        DRV_AZ(drv__dns_create(loop, &h->dns));
    }
    *out = h;
    return 0;
}

/* h's multi and share handles go (either may be NULL); the multi closes
 * its idle connections. */
static void
curl_stop(struct drv_http *h)
{
    if (h->multi != NULL)
        curl_multi_cleanup(h->multi);
    h->multi = NULL;
    if (h->share != NULL)
        curl_share_cleanup(h->share);
    h->share = NULL;
}

/* libcurl for h's requests that need it: loaded (http_curl.c) and
 * initialised once per process, and h's multi and share handles made,
 * at the first such request. 0; -ELIBACC when libcurl cannot be loaded
 * or started (stderr has said why), -ENOMEM. */
static int
curl_start(struct drv_http *h)
{
    int ok = 1;

    if (h->multi != NULL)
        return 0;
    DRV_AZ(pthread_once(&curl_once, init_curl));
    if (curl_init_rc != CURLE_OK)
        return -ELIBACC;
    DRV_AZ(pthread_once(&dns_warn_once, warn_sync_dns));
    h->multi = curl_multi_init();
    h->share = curl_share_init();
    if (h->multi == NULL || h->share == NULL) {
        ok = 0;
        goto done;
    }
    ok = ok && curl_share_setopt(h->share, CURLSHOPT_SHARE,
                                 CURL_LOCK_DATA_SSL_SESSION) == CURLSHE_OK;
    ok = ok && curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION,
                                 on_curl_socket) == CURLM_OK;
    ok = ok && curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) ==
                   CURLM_OK;
    ok = ok && curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION,
                                 on_curl_timer) == CURLM_OK;
    ok = ok && curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) ==
                   CURLM_OK;
    ok = ok && curl_multi_setopt(h->multi, CURLMOPT_PIPELINING,
                                 (long)CURLPIPE_MULTIPLEX) == CURLM_OK;
    ok = ok && curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                                 h->max_host) == CURLM_OK;
    ok = ok && curl_multi_setopt(h->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                                 h->max_total) == CURLM_OK;
    ok = ok && curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS,
                                 (long)h->spare_max) == CURLM_OK;
done:
    if (!ok) {
        curl_stop(h);
        return -ENOMEM;
    }
    return 0;
}

/* Abort what is left, deliver every callback, free everything. */
static void
destroy(struct drv_http *h)
{
    h->freeing = 1;
    h->in_callback++; /* a drv_http_free from the callbacks below: no-op */
    while (!TAILQ_EMPTY(&h->active))
        call_finish(TAILQ_FIRST(&h->active), -ECANCELED);
    deliver(h);
    h->in_callback--;
    DRV_ASSERT(h->pending == 0);
    spare_trim(h, 0); /* before the share their handles still use */
    drv__h1_free(h->h1); /* closes its idle connections */
    h->h1 = NULL;
    drv__dns_free(h->dns); /* joins its threads */
    h->dns = NULL;
    curl_stop(h); /* before the hsocks: its cleanup un-watches them */
    while (!LIST_EMPTY(&h->socks))
        sock_free(h, LIST_FIRST(&h->socks));
    free(h->sock_by_fd);
    event_del(&h->timer_ev);
    event_del(&h->done_ev);
    event_del(&h->trim_ev);
    free(h->user_agent);
    DRV_FREE_OBJ(h);
}

void
drv_http_free(struct drv_http *h)
{
    if (DRV_FREE_NOW(h, DRV_HTTP_MAGIC))
        destroy(h); /* else leave() destroys it on the way out */
}

void
drv_http_get_stats(const struct drv_http *h, struct drv_http_stats *out)
{
    DRV_CHECK_OBJ(h, DRV_HTTP_MAGIC);
    memset(out, 0, sizeof *out);
    out->pending = h->pending;
    out->spare = h->nspare;
    out->lookups = drv__dns_lookups(h->dns);
    drv__h1_get_stats(h->h1, out);
}

void
drv__http_own_client(struct drv_http *h, int on)
{
    DRV_CHECK_OBJ(h, DRV_HTTP_MAGIC);
    h->own_off = !on;
}

int
drv__http_url_target(CURLU *u, struct drv__h1_target *t)
{
    char *host = NULL, *port = NULL, *path = NULL, *query = NULL, *p;
    char *user = NULL, *pass = NULL;
    size_t n;
    int ok = 0;

    if (curl_url_get(u, CURLUPART_USER, &user, 0) != CURLUE_NO_USER ||
        curl_url_get(u, CURLUPART_PASSWORD, &pass, 0) !=
            CURLUE_NO_PASSWORD ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
        goto done;
    (void)curl_url_get(u, CURLUPART_PORT, &port, 0);
    (void)curl_url_get(u, CURLUPART_QUERY, &query, 0);
    /* "[::1]": the address without its brackets; a zone id stays curl's */
    p = host;
    n = strlen(p);
    if (n >= 2 && p[0] == '[' && p[n - 1] == ']') {
        p[n - 1] = '\0';
        p++;
    }
    if (strchr(p, '%') == NULL)
        ok = drv__h1_target_set(t, p,
                                port != NULL ? (unsigned)atoi(port) : 80,
                                port != NULL, path, query) == 0;
done:
    curl_free(user);
    curl_free(pass);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    return ok;
}

int
drv__http_url_curl(const char *url, struct drv__h1_target *t)
{
    CURLU *u = curl_url();
    int ok = 0;

    if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK)
        ok = drv__http_url_target(u, t);
    curl_url_cleanup(u);
    return ok;
}

/* c's easy handle, made with its constant options at the call's first
 * request through libcurl (curl_start first). 0, -ELIBACC, -ENOMEM. */
static int
call_easy(struct drv_http *h, struct drv_http_call *c)
{
    int rc;

    if (c->easy != NULL)
        return 0;
    if ((rc = curl_start(h)) < 0)
        return rc;
    c->easy = curl_easy_init();
    if (c->easy == NULL)
        return -ENOMEM;
    if (easy_setup(h, c) < 0) {
        curl_easy_cleanup(c->easy);
        c->easy = NULL;
        return -ENOMEM;
    }
    return 0;
}

/* url parsed by curl into c->url and set on c's easy handle (made if
 * need be); c->url_lean says whether h1 can take it. 0; -EINVAL when
 * curl cannot parse it or it is not http or https; -ELIBACC, -ENOMEM. */
static int
curl_parse(struct drv_http_call *c, const char *url)
{
    char *scheme = NULL;
    CURLU *u;
    int rc;

    if ((rc = call_easy(c->h, c)) < 0)
        return rc;
    rc = -EINVAL;
    /* a new handle: curl_url_set on one that holds a URL would take a
     * relative one ("not a url") as relative to it */
    if ((u = curl_url()) == NULL)
        return -ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
        (strcasecmp(scheme, "http") == 0 || strcasecmp(scheme, "https") == 0))
        rc = 0;
    if (rc == 0)
        c->url_lean = !c->h->proxy_env && strcasecmp(scheme, "http") == 0 &&
                      drv__http_url_target(u, &c->tgt);
    curl_free(scheme);
    if (rc < 0) {
        curl_url_cleanup(u);
        return rc;
    }
    curl_url_cleanup(c->url);
    c->url = u;
    /* curl 7.88 keeps the text of the handle's last URL across
     * CURLOPT_CURLU; clearing CURLOPT_URL makes it take the new one */
    if (curl_easy_setopt(c->easy, CURLOPT_URL, (char *)NULL) != CURLE_OK ||
        curl_easy_setopt(c->easy, CURLOPT_CURLU, c->url) != CURLE_OK)
        return -ENOMEM;
    c->url_curl = 1;
    return 0;
}

/* c's URL: kept from the call's last request when it is the same text (a
 * job type's URL is the same for every job), so it is neither parsed nor
 * built again per transfer. A plain http:// URL that libcurl's parser
 * would leave as it is goes to h1 without libcurl (drv__http_url_lean);
 * any other is parsed by curl. 0; -EINVAL when curl cannot parse it or
 * it is not http or https; -ELIBACC, -ENOMEM. */
static int
call_url(struct drv_http_call *c, const char *url)
{
    int rc;

    if (c->url_text.len > 0 && strcmp(c->url_text.data, url) == 0)
        return 0;
    drv_buf_reset(&c->url_text);
    c->url_curl = 0;
    if (!c->h->proxy_env && drv__http_url_lean(url, &c->tgt)) {
        c->url_lean = 1;
    } else if ((rc = curl_parse(c, url)) < 0) {
        return rc;
    }
    drv_buf_adds(&c->url_text, url);
    return 0;
}

/* c ready for a transfer through libcurl: its easy handle, and its URL
 * parsed by curl. 0, or curl_parse's codes. */
static int
call_curl(struct drv_http_call *c)
{
    int rc;

    if (c->url_curl)
        return 0;
    /* url_text is the request's URL; curl_parse does not touch it */
    rc = curl_parse(c, c->url_text.data);
    if (rc < 0)
        drv_buf_reset(&c->url_text); /* parse again next time */
    return rc;
}

/* The request's header list, in c's own memory (no allocation once a
 * spare call's buffers are big enough; curl only reads the list): the
 * caller's lines, then "Expect:" (no 100-continue) and, when a body goes
 * out without a Content-Type, "Content-Type:" (none of curl's form
 * type). Never empty. */
static void
build_headers(struct drv_http_call *c, const struct drv_http_req *req,
              int has_body)
{
    int expect = 0, ctype = 0;
    size_t i, n = 0;
    char *p;

    for (i = 0; i < req->nheaders; i++, n++) {
        expect |= header_is(req->headers[i], "Expect");
        ctype |= header_is(req->headers[i], "Content-Type");
        drv_buf_add(&c->hdr_text, req->headers[i],
                    strlen(req->headers[i]) + 1);
    }
    if (!expect) {
        drv_buf_add(&c->hdr_text, "Expect:", sizeof "Expect:");
        n++;
    }
    if (has_body && !ctype) {
        drv_buf_add(&c->hdr_text, "Content-Type:", sizeof "Content-Type:");
        n++;
    }
    if (n > c->hdr_cap) {
        c->hdr = drv_xrealloc(c->hdr, n * sizeof *c->hdr);
        c->hdr_cap = n;
    }
    p = c->hdr_text.data;
    for (i = 0; i < n; i++) {
        c->hdr[i].data = p;
        c->hdr[i].next = i + 1 < n ? &c->hdr[i + 1] : NULL;
        p += strlen(p) + 1;
    }
}

/* The value of a "Host: value" line (after the colon, as it is), or
 * NULL when h is not one with a value. */
static const char *
host_value(const char *h)
{
    const char *v;

    if (!header_is(h, "Host") || h[4] != ':')
        return NULL;
    for (v = h + 5; *v == ' ' || *v == '\t'; v++)
        ;
    return *v != '\0' ? h + 5 : NULL;
}

/* 1 if h1 sends req's headers as libcurl would: none sets
 * Content-Length or Transfer-Encoding (libcurl frames the body by them
 * its own way), and a Host line has a value (it replaces the Host
 * libcurl makes; without one libcurl's rules are its own). */
static int
lean_headers(const struct drv_http_req *req)
{
    size_t i;

    for (i = 0; i < req->nheaders; i++) {
        const char *h = req->headers[i];

        if (header_is(h, "Content-Length") ||
            header_is(h, "Transfer-Encoding") ||
            (header_is(h, "Host") && host_value(h) == NULL))
            return 0;
    }
    return 1;
}

static void
add_str(struct drv_buf *b, const char *s)
{
    drv_buf_add(b, s, strlen(s));
}

/* A caller's header line as libcurl sends it: "Name: value" as it is,
 * "Name;" as "Name:" (empty); "Name:" with no value, or a line without
 * a colon, is not sent. */
static void
add_header_line(struct drv_buf *b, const char *s)
{
    const char *colon = strchr(s, ':'), *v;

    if (colon == NULL) {
        const char *semi = strchr(s, ';');

        if (semi == NULL || semi == s)
            return;
        for (v = semi + 1; *v == ' ' || *v == '\t'; v++)
            ;
        if (*v != '\0')
            return;
        drv_buf_add(b, s, (size_t)(semi - s));
        drv_buf_add(b, ":\r\n", 3);
        return;
    }
    if (colon == s)
        return;
    for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
        ;
    if (*v == '\0')
        return;
    add_str(b, s);
    drv_buf_add(b, "\r\n", 2);
}

/* 1 if some caller header names name (with a value, removed or empty). */
static int
has_header(const struct drv_http_req *req, const char *name)
{
    size_t i;

    for (i = 0; i < req->nheaders; i++)
        if (header_is(req->headers[i], name))
            return 1;
    return 0;
}

/* The caller's Host value (lean_headers: then it has one), or NULL. */
static const char *
caller_host(const struct drv_http_req *req)
{
    size_t i;

    for (i = 0; i < req->nheaders; i++)
        if (header_is(req->headers[i], "Host"))
            return host_value(req->headers[i]);
    return NULL;
}

/* The request head h1 sends, in c->hdr_text: what libcurl would send for
 * the same request (Host, User-Agent, Accept unless the caller names
 * them, the caller's lines, Content-Length when there is a body). */
static void
build_head(struct drv_http_call *c, const struct drv_http_req *req,
           const char *method, int has_body, size_t body_len)
{
    struct drv_buf *b = &c->hdr_text;
    const char *host = caller_host(req);
    char num[24];
    size_t i, k = sizeof num;

    drv_buf_reset(b);
    add_str(b, method);
    drv_buf_add(b, " ", 1);
    drv_buf_add(b, c->tgt.path.data, c->tgt.path.len);
    drv_buf_add(b, " HTTP/1.1\r\n", 11);
    /* libcurl's place for Host, the caller's value as it is */
    if (host != NULL) {
        drv_buf_add(b, "Host:", 5);
        add_str(b, host);
    } else {
        drv_buf_add(b, "Host: ", 6);
        drv_buf_add(b, c->tgt.host.data, c->tgt.host.len);
    }
    drv_buf_add(b, "\r\n", 2);
    if (!has_header(req, "User-Agent")) {
        drv_buf_add(b, "User-Agent: ", 12);
        add_str(b, c->h->user_agent);
        drv_buf_add(b, "\r\n", 2);
    }
    if (!has_header(req, "Accept"))
        drv_buf_add(b, "Accept: */*\r\n", 13);
    for (i = 0; i < req->nheaders; i++)
        if (!header_is(req->headers[i], "Host"))
            add_header_line(b, req->headers[i]);
    if (has_body) {
        do
            num[--k] = (char)('0' + body_len % 10);
        while ((body_len /= 10) > 0);
        drv_buf_add(b, "Content-Length: ", 16);
        drv_buf_add(b, num + k, sizeof num - k);
        drv_buf_add(b, "\r\n", 2);
    }
    drv_buf_add(b, "\r\n", 2);
}

/* A 3xx's Location resolved against the request's URL, as libcurl's
 * CURLINFO_REDIRECT_URL has it; NULL when it does not parse. */
static char *
resolve_location(const struct drv_http_call *c, const char *loc)
{
    CURLU *u = curl_url();
    char *abs = NULL, *out = NULL;

    if (u == NULL)
        return NULL;
    if (curl_url_set(u, CURLUPART_URL, c->url_text.data, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_URL, loc,
                     CURLU_NON_SUPPORT_SCHEME | CURLU_ALLOW_SPACE) ==
            CURLUE_OK &&
        curl_url_get(u, CURLUPART_URL, &abs, 0) == CURLUE_OK)
        out = drv_xstrdup(abs);
    curl_free(abs);
    curl_url_cleanup(u);
    return out;
}

/* drv__h1_done_fn: an h1 transfer ended, from one of its loop callbacks. */
static void
on_h1_done(struct drv__h1_xfer *x, int code)
{
    struct drv_http_call *c = drv_container_of(x, struct drv_http_call, x);
    struct drv_http *h = c->h;
    const struct drv__h1_parser *p = &x->parser;

    DRV_CHECK_OBJ(c, DRV_HTTP_CALL_MAGIC);
    h->in_callback++;
    if (code == 0) {
        c->status = p->status;
        c->version = p->version;
        c->truncated = p->truncated;
        c->retry_after_ms = p->retry_after_ms;
        snprintf(c->reason, sizeof c->reason, "%s", p->reason);
        if (p->status >= 300 && p->status < 400 && p->location.len > 0)
            c->location = resolve_location(c, p->location.data);
    } else {
        snprintf(c->errbuf, sizeof c->errbuf, "%s", x->error);
        /* no response: the name may have moved, look it up again */
        if (c->tgt.name.len > 0)
            drv__dns_forget(h->dns, c->tgt.name.data, c->tgt.port);
    }
    call_finish(c, code);
    deliver(h);
    leave(h);
}

/* An ACTIVE lean call fails where its callback may not run (inside
 * drv_http_request, or from the resolver): it is delivered from done_ev. */
static void
fail_soon(struct drv_http_call *c, int code, const char *why)
{
    snprintf(c->errbuf, sizeof c->errbuf, "%s", why);
    call_finish(c, code);
    event_active(&c->h->done_ev, EV_READ, 0);
}

/* Start c's h1 transfer, its addresses known, with what is left of its
 * timeout. */
static void
h1_go(struct drv_http_call *c)
{
    int64_t left = c->timeout_ms;
    int rc;

    if (c->timeout_ms > 0 && c->tgt.name.len > 0) {
        left = (c->deadline_ns - drv_clock_mono_ns()) / DRV_NS_PER_MS;
        if (left <= 0) {
            char why[80];

            snprintf(why, sizeof why,
                     "Resolving timed out after %lld milliseconds",
                     (long long)c->timeout_ms);
            fail_soon(c, -ETIMEDOUT, why);
            return;
        }
    }
    rc = drv__h1_start(c->h->h1, &c->x, &c->tgt, c->hdr_text.data,
                       c->hdr_text.len, c->has_body ? c->body.data : NULL,
                       c->has_body ? c->send_body_len : 0, left,
                       on_h1_done);
    if (rc < 0) { /* connecting failed at once, to every address */
        if (c->tgt.name.len > 0)
            drv__dns_forget(c->h->dns, c->tgt.name.data, c->tgt.port);
        fail_soon(c, rc, c->x.error);
    }
}

/* drv__dns_done_fn: c's name is resolved (or not), from the resolver's
 * loop callback; no callback of ours runs from here. */
static void
on_dns_done(struct drv__dns_wait *w, int code)
{
    struct drv_http_call *c = drv_container_of(w, struct drv_http_call, dq);

    DRV_CHECK_OBJ(c, DRV_HTTP_CALL_MAGIC);
    DRV_ASSERT(c->state == CALL_ACTIVE && c->lean);
    if (code < 0)
        fail_soon(c, code, w->error);
    else
        h1_go(c);
}

/* req on c through h1 (c->tgt set for its URL): its name resolved first
 * (from the cache, or off the loop). 0, or -ENOMEM. */
static int
request_h1(struct drv_http *h, struct drv_http_call *c,
           const struct drv_http_req *req, const char *method,
           const char *body, size_t body_len, int has_body, int is_head)
{
    int rc;

    c->lean = 1;
    build_head(c, req, method, has_body, body_len);
    if (has_body)
        drv_buf_add(&c->body, body, body_len);
    c->has_body = has_body;
    c->send_body_len = has_body ? body_len : 0;
    c->timeout_ms = req->timeout_ms;
    drv__h1_parser_init(&c->x.parser, &c->rbody, c->body_max, is_head);
    c->state = CALL_ACTIVE;
    TAILQ_INSERT_HEAD(&h->active, c, link);
    h->pending++;
    if (c->tgt.name.len == 0) {
        h1_go(c);
        return 0;
    }
    if (req->timeout_ms > 0)
        c->deadline_ns = drv_clock_mono_ns() +
                         req->timeout_ms * DRV_NS_PER_MS;
    rc = drv__dns_resolve(h->dns, &c->dq, &c->tgt, req->timeout_ms,
                          on_dns_done);
    if (rc == 1)
        h1_go(c);
    else if (rc < 0)
        fail_soon(c, DRV_EHANDLER, c->dq.error);
    return 0;
}

int
drv_http_request(struct drv_http *h, const struct drv_http_req *req,
                 drv_http_done_fn *cb, void *ctx, struct drv_http_call **out)
{
    struct drv_http_call *c = NULL;
    const char *method;
    const char *body;
    size_t body_len, i;
    int rc, ok = 1, has_body, is_head;

    DRV_CHECK_OBJ(h, DRV_HTTP_MAGIC);
    if (out != NULL)
        *out = NULL;
    if (h->freeing)
        return -ESHUTDOWN;
    if (req == NULL || req->url == NULL || cb == NULL ||
        (req->nheaders > 0 && req->headers == NULL) || req->timeout_ms < 0)
        return -EINVAL;
    method = req->method != NULL ? req->method : "GET";
    if (!drv_parse_is_token(method))
        return -EINVAL;
    for (i = 0; i < req->nheaders; i++)
        if (req->headers[i] == NULL ||
            strpbrk(req->headers[i], "\r\n") != NULL)
            return -EINVAL;
    is_head = strcmp(method, "HEAD") == 0;
    body = req->body;
    body_len = req->body != NULL ? req->body_len : 0;
    /* methods that carry a body send an empty one rather than none, so
     * Content-Length: 0 goes out (some servers answer 411 otherwise) */
    if (body == NULL && (strcmp(method, "POST") == 0 ||
                         strcmp(method, "PUT") == 0 ||
                         strcmp(method, "PATCH") == 0))
        body = "";
    has_body = body != NULL && !is_head;

    c = call_get(h);
    if (c == NULL)
        return -ENOMEM;
    rc = call_url(c, req->url);
    if (rc < 0) {
        call_release(h, c);
        return rc;
    }
    c->cb = cb;
    c->ctx = ctx;
    c->body_max = req->body_max;
    if (c->url_lean && !h->own_off && lean_headers(req)) {
        rc = request_h1(h, c, req, method, body, body_len, has_body,
                        is_head);
        if (rc == 0 && out != NULL)
            *out = c;
        return rc;
    }
    c->lean = 0;
    rc = call_curl(c);
    if (rc < 0) {
        call_release(h, c);
        return rc;
    }
    build_headers(c, req, has_body);

/* the options that vary: every one a request may set, set or unset */
#define SET(opt, val) (ok = ok && curl_easy_setopt(c->easy, opt, val) == \
                                      CURLE_OK)
    SET(CURLOPT_HTTPHEADER, c->hdr);
    SET(CURLOPT_TIMEOUT_MS, (long)req->timeout_ms); /* 0: none */
    /* over TLS, wait for a connection being set up to the same host to
     * say whether it multiplexes (HTTP/2) instead of opening another */
    SET(CURLOPT_PIPEWAIT, strncasecmp(req->url, "https:", 6) == 0 ? 1L : 0L);
    if (has_body) {
        drv_buf_add(&c->body, body, body_len); /* data set even if 0 */
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        SET(CURLOPT_POSTFIELDS, c->body.data); /* the method: POST */
    } else {
        SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
        SET(CURLOPT_POSTFIELDS, (char *)NULL);
        SET(CURLOPT_HTTPGET, 1L); /* the method: GET */
    }
    SET(CURLOPT_NOBODY, is_head ? 1L : 0L); /* 1: the method is HEAD */
    SET(CURLOPT_CUSTOMREQUEST,
        is_head || strcmp(method, has_body ? "POST" : "GET") == 0
            ? (char *)NULL : method);
#undef SET
    if (!ok || curl_multi_add_handle(h->multi, c->easy) != CURLM_OK) {
        call_destroy(c);
        return -ENOMEM;
    }
    c->state = CALL_ACTIVE;
    TAILQ_INSERT_HEAD(&h->active, c, link);
    h->pending++;
    if (out != NULL)
        *out = c;
    return 0;
}

void
drv_http_cancel(struct drv_http_call *c)
{
    struct drv_http *h;

    if (DRV_NO_OBJ(c, DRV_HTTP_CALL_MAGIC))
        return;
    h = c->h;
    switch (c->state) {
    case CALL_ACTIVE:
        call_finish(c, -ECANCELED);
        event_active(&h->done_ev, EV_READ, 0);
        break;
    case CALL_DONE:
        /* finished, callback not yet run: it reports the cancel (its
         * delivery is already due) */
        c->code = -ECANCELED;
        break;
    case CALL_CALLING:
    default:
        break;
    }
}
