/*
 * fuzz_web.c -- the request path of `drover web`, the dashboard: raw bytes
 * from one client connection through libevent's evhttp parser into
 * web.c's checks (Host, authentication, CSRF, method) and routing, the
 * API path splitter and handlers of web_api.c (query strings, the JSON
 * body reader of the POST endpoints) and the assets. web.c and web_api.c
 * are included, so their static functions run exactly as in the binary.
 *
 * (What the endpoints make of Redis replies is fuzzed by fuzz_resp.c.)
 *
 * Input: a mode byte, then the bytes the client sends.
 *   mode & 1 == 0: the dashboard has a token (--token-file). Property: a
 *     2xx or 3xx answer, or any command sent to Redis, comes only to a
 *     client that sent the token or the session cookie value (looked for
 *     in the input and in the input percent-decoded).
 *   mode & 1 == 1: no token (loopback only). Property: a request whose
 *     Host headers all name something else than the loopback gets no 2xx
 *     answer (a page of another site, reached through DNS rebinding,
 *     sends its own name). Checked on inputs with one request.
 * Both: a command that changes Redis is only sent for a POST carrying
 * the CSRF token; every status on the wire is one these servers use.
 * Redis answers nothing: the connection "fails" once a checked request
 * reaches it (drv__cli_run below), so data endpoints answer 503.
 */
#include "../../cmd/drover/web.c"
#include "../../cmd/drover/web_api.c"

#include <ctype.h>

#include "fuzz_evhttp.h"

/* ---------------------------------------------------- the CLI, offline */

int
drv__cli_usage_error(struct drv_cli *cli, const char *fmt, ...)
{
    (void)cli;
    (void)fmt;
    return -EINVAL;
}

int
drv__cli_args(struct drv_cli *cli, int argc, char **argv, const char *spec,
              ...)
{
    (void)cli, (void)argc, (void)argv, (void)spec;
    return -EINVAL;
}

int
drv__cli_sentinel_stale(const struct drv_cli *cli)
{
    (void)cli;
    return 0;
}

int
drv__cli_config(struct drv_cli *cli)
{
    (void)cli;
    return 0;
}

/* what the request being served sent, for the checks in drv__cli_run */
static struct {
    int authed;     /* the input holds the token or the session value */
    int has_csrf;   /* the input holds the CSRF token */
    int has_post;   /* the input holds "POST" */
    int tokened;    /* the server has a token */
    int runs;       /* batches sent */
} seen;

/* Commands that only read: any other one changes Redis. */
static int
reads_only(const char *name)
{
    static const char *const reads[] = {
        "XRANGE", "XREVRANGE", "XLEN", "XPENDING", "XINFO", "HGETALL",
        "HGET", "HMGET", "HLEN", "ZCARD", "ZSCORE", "ZRANGE", "EXISTS",
        "GET", "TYPE", "TIME", "SCAN", "HSCAN", "PING",
    };
    size_t i;

    for (i = 0; i < sizeof reads / sizeof reads[0]; i++)
        if (strcasecmp(reads[i], name) == 0)
            return 1;
    return 0;
}

int
drv__cli_connect(struct drv_cli *cli)
{
    (void)cli;
    return 0;
}

/*
 * Where a checked request reaches Redis: every batch needs an
 * authenticated client when the dashboard has a token, and one that
 * changes anything needs a POST carrying the CSRF token. Then Redis is
 * "down".
 */
int
drv__cli_run(struct drv_cli *cli, const struct drv_queue_cmds *c,
             redisReply ***outp)
{
    size_t i;

    (void)cli;
    *outp = NULL;
    seen.runs++;
    if (seen.tokened)
        FUZZ_CHECK(seen.authed, "Redis reached without the token");
    for (i = 0; i < c->n; i++) {
        FUZZ_CHECK(c->cmd[i].argc > 0, "an empty command");
        if (reads_only(c->cmd[i].argv[0]))
            continue;
        /* the job lookup is a script that only reads */
        if (strcasecmp(c->cmd[i].argv[0], "EVAL") == 0 &&
            c->cmd[i].argc > 1 &&
            strcmp(c->cmd[i].argv[1], drv_queue_lookup_script.text) == 0)
            continue;
        FUZZ_CHECK(seen.has_post && seen.has_csrf,
                   "%s sent without a POST carrying the CSRF token",
                   c->cmd[i].argv[0]);
    }
    return DRV_EDOWN;
}

void
drv__cli_free_replies(size_t n, redisReply **out)
{
    (void)n;
    free(out);
}

static const unsigned char index_html[] = "<!doctype html><p>drover</p>\n";
const struct drv_web_asset drv__web_assets[] = {
    {"/index.html", "text/html; charset=utf-8", index_html,
     sizeof index_html - 1},
};
const size_t drv__web_nassets = 1;

/* --------------------------------------------------------------- target */

#define TOKEN "fuzztoken7Kq2"

struct web_fixture {
    struct drv_cli cli;
    struct drv_web web[2];     /* [0] with a token, [1] without */
    struct fuzz_evhttp_addr addr[2];
};

static struct web_fixture *fx;

static void
fixture_init(void)
{
    struct drv_config_errors errs;
    static const char yaml[] = "queues: [default, low]\n";
    int i;

    fx = calloc(1, sizeof *fx);
    if (fx == NULL)
        abort();
    fx->cli.magic = DRV_CLI_MAGIC;
    fx->cli.prog = "drover web";
    drv_config_errors_init(&errs);
    if (drv_config_load_string("fuzz.yaml", yaml, sizeof yaml - 1,
                               &fx->cli.cfg, &errs) < 0)
        FUZZ_FAIL("the fixture's config does not load");
    drv_config_errors_fini(&errs);
    snprintf(fx->cli.url_shown, sizeof fx->cli.url_shown,
             "redis://127.0.0.1:1");
    for (i = 0; i < 2; i++) {
        struct drv_web *w = &fx->web[i];

        w->magic = DRV_WEB_MAGIC;
        w->cli = &fx->cli;
        /* fixed values (64 hex digits, as new_secret makes them), so
         * the seeds can log in and pass the CSRF check */
        memset(w->session, 'a', DRV_WEB_SECRET_HEX);
        memset(w->csrf, 'c', DRV_WEB_SECRET_HEX);
        w->base = event_base_new();
        w->http = evhttp_new(w->base);
        if (w->base == NULL || w->http == NULL)
            abort();
        evhttp_set_max_headers_size(w->http, DRV_WEB_MAX_HEADERS);
        evhttp_set_max_body_size(w->http, DRV_WEB_MAX_BODY);
        evhttp_set_timeout(w->http, DRV_WEB_TIMEOUT_S);
        evhttp_set_allowed_methods(w->http, 0xffff);
        evhttp_set_gencb(w->http, on_request, w);
        fuzz_evhttp_listen(w->http, &fx->addr[i]);
    }
    fx->web[0].token = drv_xstrdup(TOKEN);
}

/* s occurs in data[0..n), as it is or percent-decoded */
static int
input_holds(const uint8_t *data, size_t n, const char *s)
{
    size_t slen = strlen(s), i, m = 0;
    char *dec;
    int found;

    if (memmem(data, n, s, slen) != NULL)
        return 1;
    dec = malloc(n + 1);
    if (dec == NULL)
        abort();
    for (i = 0; i < n; i++) {
        if (data[i] == '%' && i + 2 < n && isxdigit(data[i + 1]) &&
            isxdigit(data[i + 2])) {
            char hex[3] = {(char)data[i + 1], (char)data[i + 2], 0};

            dec[m++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            dec[m++] = data[i] == '+' ? ' ' : (char)data[i];
        }
    }
    found = memmem(dec, m, s, slen) != NULL;
    free(dec);
    return found;
}

/* 1 when the value at v names the loopback the way web.c accepts it */
static int
loopback_host(const char *v, const char *end)
{
    static const char *const names[] = {"localhost", "127.0.0.1", "[::1]"};
    size_t i, n;

    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        n = strlen(names[i]);
        if ((size_t)(end - v) >= n && strncasecmp(v, names[i], n) == 0)
            return 1;
    }
    return 0;
}

/*
 * For an input holding one request: 1 when its header section has a Host
 * header and none of them names the loopback; 0 otherwise (no Host, a
 * loopback one, or more than one request).
 */
static int
foreign_host_only(const uint8_t *data, size_t n)
{
    const char *s = (const char *)data, *end, *p, *eol;
    int foreign = 0;

    if (memmem(s, n, "HTTP/1.", 7) == NULL ||
        memmem((const char *)memmem(s, n, "HTTP/1.", 7) + 7,
               n - (size_t)((const char *)memmem(s, n, "HTTP/1.", 7) + 7 - s),
               "HTTP/1.", 7) != NULL)
        return 0;
    end = memmem(s, n, "\n\r\n", 3);
    if (end == NULL)
        end = memmem(s, n, "\n\n", 2);
    if (end == NULL)
        end = s + n;
    for (p = s; p < end; p = eol + 1) {
        eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            eol = end;
        if (eol - p >= 5 && strncasecmp(p, "host:", 5) == 0) {
            if (loopback_host(p + 5, eol))
                return 0;
            foreign = 1;
        }
        if (eol == end)
            break;
    }
    return foreign;
}

static int
known_status(int code)
{
    static const int codes[] = {200, 303, 400, 401, 403, 404, 405, 408,
                                411, 413, 414, 417, 431, 500, 501, 502,
                                503, 505};
    size_t i;

    for (i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (codes[i] == code)
            return 1;
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct drv_buf out;
    struct drv_web *w;
    int codes[64];
    size_t ncodes, i;
    int mode, authed, foreign;

    if (fx == NULL)
        fixture_init();
    if (size == 0)
        return 0;
    mode = data[0] & 1;
    data++;
    size--;
    w = &fx->web[mode];
    drv_buf_init(&out);
    authed = input_holds(data, size, TOKEN) ||
             input_holds(data, size, w->session);
    seen.authed = authed;
    seen.has_csrf = input_holds(data, size, w->csrf);
    seen.has_post = memmem(data, size, "POST", 4) != NULL;
    seen.tokened = w->token != NULL;
    fuzz_evhttp_exchange(w->base, &fx->addr[mode], data, size, &out);
    fuzz_evhttp_statuses(out.data, out.len, codes, 64, &ncodes);
    foreign = foreign_host_only(data, size);
    for (i = 0; i < ncodes; i++) {
        FUZZ_CHECK(known_status(codes[i]), "status %d", codes[i]);
        if (mode == 0 && codes[i] < 400)
            FUZZ_CHECK(authed, "status %d without the token or session",
                       codes[i]);
        if (mode == 1 && codes[i] < 300)
            FUZZ_CHECK(!foreign, "status %d for a foreign Host", codes[i]);
    }
    drv_buf_fini(&out);
    return 0;
}
