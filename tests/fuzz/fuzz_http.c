/*
 * fuzz_http.c -- what pkg/http makes of a server's response without the
 * network: drv_http_parse_retry_after, and the header and body hooks curl
 * calls (on_header: status line, reason phrase, Retry-After; on_body: the
 * kept body and its cut) with the small helpers next to them (reason
 * table, method tokens, header names). The hooks are static, so this file
 * includes http.c itself and calls them on a call record of its own.
 *
 * Input: a mode byte, then
 *   0: Retry-After text: the result is -1 or within [0, max]; blanks
 *      around the value change nothing; all digits give exactly
 *      min(value, max) seconds;
 *   1: round trips: a time formatted as an IMF-fixdate, an RFC 850 date
 *      and an asctime date, and a number of seconds, parse back to the
 *      difference from "now" (0 for the past, cut at the max);
 *   2: a response as curl hands it over: header lines (split at '\n'),
 *      then after an empty line body pieces (split at 0xff) fed to
 *      on_body with a body_max from the input. The reason phrase stays
 *      inside its buffer, holds no CR or LF, and equals the text of a
 *      well-formed status line; Retry-After is the one of the last
 *      response; the body kept is the first body_max bytes, and
 *      "truncated" says whether more came;
 *   3: the helpers: drv_parse_is_token and header_is against their definitions,
 *      standard_reason for any status.
 */
#include "../../pkg/http/http.c"

#include <inttypes.h>
#include <time.h>

#include "fuzz.h"

static const int64_t max_ms = DRV_HTTP_RETRY_AFTER_MAX_MS;

static void
fz_retry_after_text(const char *s, size_t n, int64_t now)
{
    int64_t v = drv_http_parse_retry_after(s, n, now);
    char padded[4096 + 4];
    size_t i;
    int digits = n > 0;

    FUZZ_CHECK(v == -1 || (v >= 0 && v <= max_ms), "Retry-After %" PRId64,
               v);
    if (n + 4 <= sizeof padded) {
        padded[0] = ' ';
        padded[1] = '\t';
        memcpy(padded + 2, s, n);
        padded[n + 2] = '\r';
        padded[n + 3] = '\n';
        FUZZ_CHECK(drv_http_parse_retry_after(padded, n + 4, now) == v,
                   "blanks around the value changed the result");
    }
    for (i = 0; i < n; i++)
        digits &= s[i] >= '0' && s[i] <= '9';
    if (digits) {
        uint64_t secs = 0;

        for (i = 0; i < n && secs <= (uint64_t)max_ms; i++)
            secs = secs * 10 + (uint64_t)(s[i] - '0');
        FUZZ_CHECK(v == (secs * 1000 > (uint64_t)max_ms ? max_ms
                                                        : (int64_t)secs *
                                                              1000),
                   "delta-seconds %.*s gave %" PRId64, (int)n, s, v);
    }
}

static void
fz_date_form(const char *fmt, time_t t, int64_t now)
{
    char text[128];
    struct tm tm;
    int64_t want = (int64_t)t * 1000 - now, got;

    gmtime_r(&t, &tm);
    strftime(text, sizeof text, fmt, &tm);
    want = want < 0 ? 0 : want > max_ms ? max_ms : want;
    got = drv_http_parse_retry_after(text, strlen(text), now);
    FUZZ_CHECK(got == want, "Retry-After \"%s\" at now %" PRId64 ": %"
               PRId64 ", expected %" PRId64, text, now, got, want);
}

static void
fz_round_trip(struct fuzz_in *in)
{
    /* 1970 .. 9999 for the 4-digit forms; 1971 .. 2070 for RFC 850,
     * whose 2-digit year is read as the latest at most 50 years after
     * now's: now within 49 years of it */
    const uint64_t y10k = UINT64_C(253402300799);
    const uint64_t y1971 = UINT64_C(31536000);
    const uint64_t y2071 = UINT64_C(3187296000);
    const int64_t y49 = INT64_C(49) * 365 * 86400 * 1000;
    uint64_t a = fuzz_u64(in), b = fuzz_u64(in), d = fuzz_u64(in);
    time_t t = (time_t)(a % (y10k + 1));
    time_t t2 = (time_t)(y1971 + a % (y2071 - y1971));
    /* now: near t (within a few max spans) or anywhere in the range */
    int64_t now = (b & 1) ? (int64_t)t * 1000 +
                                ((int64_t)(b >> 1) % (3 * max_ms)) -
                                max_ms
                          : (int64_t)((b >> 1) % (y10k * 1000));
    char text[32];
    int64_t got, want;

    fz_date_form("%a, %d %b %Y %H:%M:%S GMT", t, now);
    fz_date_form("%a %b %e %H:%M:%S %Y", t, now);
    now = (b & 1) ? now - (int64_t)(t - t2) * 1000
                  : (int64_t)t2 * 1000 +
                        (int64_t)((b >> 1) % (uint64_t)(2 * y49)) - y49;
    if (now < 0)
        now = 0;
    fz_date_form("%A, %d-%b-%y %H:%M:%S GMT", t2, now);

    snprintf(text, sizeof text, "%" PRIu64, d);
    got = drv_http_parse_retry_after(text, strlen(text), now);
    want = d > (uint64_t)max_ms / 1000 ? max_ms : (int64_t)d * 1000;
    FUZZ_CHECK(got == want, "Retry-After %s: %" PRId64, text, got);
}

/* The reason a well-formed status line "HTTP/x NNN text" carries: text
 * cut to REASON_MAX - 1 bytes, without trailing blanks; NULL when the
 * line is not of that simple form (one blank each side of the code,
 * printable text, then nothing or CR). */
static const char *
fz_simple_reason(const char *line, size_t len, size_t *rlen)
{
    size_t i = 5, r;

    while (i < len && line[i] != ' ' && line[i] != '\r')
        i++;
    if (i + 5 > len || line[i] != ' ' || line[i + 4] != ' ' ||
        line[i + 1] < '1' || line[i + 1] > '9' ||
        line[i + 2] < '0' || line[i + 2] > '9' ||
        line[i + 3] < '0' || line[i + 3] > '9')
        return NULL;
    i += 5;
    if (i < len && line[i] == ' ')
        return NULL;
    for (r = i; r < len && line[r] >= 0x20 && line[r] < 0x7f; r++)
        ;
    if (r < len && !(r == len - 1 && line[r] == '\r'))
        return NULL;
    *rlen = r - i < REASON_MAX - 1 ? r - i : REASON_MAX - 1;
    while (*rlen > 0 && line[i + *rlen - 1] == ' ')
        (*rlen)--;
    return line + i;
}

static void
fz_response(struct fuzz_in *in)
{
    struct drv_http_call c;
    size_t body_max = fuzz_byte(in) * 16 + fuzz_byte(in), total = 0;
    int64_t want_ra = -1;
    int ra_exact = 1;
    struct drv_buf all;
    const char *want_reason = NULL;
    size_t want_rlen = 0, len;

    memset(&c, 0, sizeof c);
    c.magic = DRV_HTTP_CALL_MAGIC;
    c.retry_after_ms = -1;
    c.body_max = body_max;
    drv_buf_init(&c.rbody);
    drv_buf_init(&all);

    /* headers: one line per piece, as curl passes them (with the \n) */
    while (in->n > 0) {
        const char *line = (const char *)in->p;
        char *copy;

        fuzz_piece(in, '\n', &len);
        if (len == 0 || (len == 1 && line[0] == '\r'))
            break;
        /* curl's buffer is only as long as the line: copy it exactly so
         * ASan sees any read past it */
        copy = malloc(len + 1);
        memcpy(copy, line, len);
        copy[len] = '\n';
        FUZZ_CHECK(on_header(copy, 1, len + 1, &c) == len + 1,
                   "on_header did not take the whole line");
        if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
            want_ra = -1;
            ra_exact = 1;
            want_reason = fz_simple_reason(line, len, &want_rlen);
        } else if (len >= 12 && strncasecmp(line, "retry-after:", 12) == 0) {
            size_t i, n = len - 12;
            const char *v = line + 12;

            /* delta-seconds or nothing: exact; a date depends on the
             * clock */
            while (n > 0 && (v[0] == ' ' || v[0] == '\t'))
                v++, n--;
            while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t' ||
                             v[n - 1] == '\r'))
                n--;
            for (i = 0; i < n && v[i] >= '0' && v[i] <= '9'; i++)
                ;
            ra_exact = i == n;
            want_ra = ra_exact ? drv_http_parse_retry_after(v, n, 0) : 0;
        }
        free(copy);
        FUZZ_CHECK(memchr(c.reason, '\0', REASON_MAX) != NULL,
                   "reason not terminated");
        FUZZ_CHECK(strpbrk(c.reason, "\r\n") == NULL, "CR or LF in reason");
        len = strlen(c.reason);
        FUZZ_CHECK(len == 0 || c.reason[len - 1] != ' ',
                   "reason ends with a blank");
        FUZZ_CHECK(c.retry_after_ms >= -1 && c.retry_after_ms <= max_ms,
                   "retry_after_ms %" PRId64, c.retry_after_ms);
        if (ra_exact)
            FUZZ_CHECK(c.retry_after_ms == want_ra, "retry_after_ms %"
                       PRId64 ", expected %" PRId64, c.retry_after_ms,
                       want_ra);
        if (want_reason != NULL)
            FUZZ_CHECK(strlen(c.reason) == want_rlen &&
                       memcmp(c.reason, want_reason, want_rlen) == 0,
                       "reason \"%s\", expected \"%.*s\"", c.reason,
                       (int)want_rlen, want_reason);
    }
    /* body pieces */
    while (in->n > 0) {
        const char *piece = fuzz_piece(in, 0xff, &len);
        char *copy = malloc(len + 1);

        memcpy(copy, piece, len);
        FUZZ_CHECK(on_body(copy, 1, len, &c) == len,
                   "on_body did not take the whole piece");
        drv_buf_add(&all, copy, len);
        total += len;
        free(copy);
    }
    FUZZ_CHECK(c.rbody.len == (total < body_max ? total : body_max),
               "kept %zu of %zu bytes with body_max %zu", c.rbody.len,
               total, body_max);
    FUZZ_CHECK(c.truncated == (total > body_max), "truncated flag wrong");
    FUZZ_CHECK(c.rbody.len == 0 ||
               memcmp(c.rbody.data, all.data, c.rbody.len) == 0,
               "kept body is not the start of the body");
    drv_buf_fini(&c.rbody);
    drv_buf_fini(&all);
}

static void
fz_helpers(struct fuzz_in *in)
{
    static const char tchars[] = "!#$%&'*+-.^_`|~0123456789"
                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                 "abcdefghijklmnopqrstuvwxyz";
    int status = (int)(fuzz_u64(in) & 0x3ff) - 100;
    const char *name, *r;
    size_t nlen, slen;
    char *nm, *s;

    r = standard_reason(status);
    FUZZ_CHECK(r != NULL, "no reason for %d", status);
    FUZZ_CHECK((status == 200) == (strcmp(r, "OK") == 0), "reason of %d",
               status);
    FUZZ_CHECK(r[0] == '\0' || (status >= 100 && status <= 599),
               "a reason for status %d", status);

    name = fuzz_piece(in, 0, &nlen);
    nm = fuzz_strndup(name, nlen);
    FUZZ_CHECK(drv_parse_is_token(nm) == (nm[0] != '\0' &&
                                strspn(nm, tchars) == strlen(nm)),
               "drv_parse_is_token(\"%s\")", nm);
    s = fuzz_strndup((const char *)in->p, in->n);
    slen = strlen(nm);
    FUZZ_CHECK(header_is(s, nm) ==
               (strncasecmp(s, nm, slen) == 0 && strlen(s) > slen &&
                (s[slen] == ':' || s[slen] == ';')),
               "header_is(\"%s\", \"%s\")", s, nm);
    free(nm);
    free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};

    switch (fuzz_byte(&in) & 3) {
    case 0: {
        int64_t now = (int64_t)(fuzz_u64(&in) % (UINT64_C(1) << 46));
        fz_retry_after_text((const char *)in.p, in.n, now);
        break;
    }
    case 1:
        fz_round_trip(&in);
        break;
    case 2:
        fz_response(&in);
        break;
    default:
        fz_helpers(&in);
        break;
    }
    return 0;
}
