/*
 * fuzz_redis_url.c -- drv_redis_url_parse and drv_redis_url_redact.
 *
 * Input: a byte n (the redaction buffer size), then text T. The URL is T
 * with its first "PASS" replaced by a secret S ("Zx9sEcReT" followed by
 * bytes of T's first line). S occurs once in the URL (inputs where it
 * would occur twice are skipped), so the checks can ask where it went:
 *
 *   - when the parser reads S (or a part of it holding "Zx9sEcReT") as
 *     the password, neither the redacted URL nor anything else we print
 *     holds "Zx9sEcReT"; an error message never holds it when the
 *     redacted URL does not (messages quote the redacted URL only);
 *   - redaction is idempotent, always NUL-terminated within n bytes, and
 *     a cut result is a prefix of the whole one;
 *   - a parsed URL formatted back (percent-encoding user, password and
 *     path) parses to the same fields.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "drover/buf.h"
#include "drover/error.h"
#include "drover/redis.h"
#include "fuzz.h"

#define MARK "Zx9sEcReT"

/* Append s percent-encoded; keep is a set of extra bytes left as they
 * are. */
static void
add_enc(struct drv_buf *b, const char *s, const char *keep)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (fuzz_unreserved(c) || strchr(keep, c) != NULL)
            drv_buf_add(b, s, 1);
        else
            drv_buf_addf(b, "%%%02X", c);
    }
}

/* The URL of u, in the canonical form, into a new string. */
static char *
format_url(const struct drv_redis_url *u)
{
    struct drv_buf b;

    drv_buf_init(&b);
    drv_buf_adds(&b, u->is_unix ? "unix://" : u->tls ? "rediss://"
                                                      : "redis://");
    if (u->user[0] != '\0' || u->password[0] != '\0') {
        add_enc(&b, u->user, "");
        drv_buf_adds(&b, ":");
        add_enc(&b, u->password, "");
        drv_buf_adds(&b, "@");
    }
    if (u->is_unix) {
        add_enc(&b, u->path, "/");
        drv_buf_addf(&b, "?db=%d", u->db);
    } else if (strchr(u->host, ':') != NULL) {
        drv_buf_addf(&b, "[%s]:%d/%d", u->host, u->port, u->db);
    } else {
        drv_buf_addf(&b, "%s:%d/%d", u->host, u->port, u->db);
    }
    return drv_buf_take(&b, NULL);
}

static void
check_round_trip(const struct drv_redis_url *u)
{
    struct drv_redis_url v;
    struct drv_err err;
    char *url = format_url(u);
    int rc;

    drv_err_clear(&err);
    rc = drv_redis_url_parse(url, &v, &err);
    FUZZ_CHECK(rc == 0, "formatted URL does not parse: %s", err.msg);
    FUZZ_CHECK(v.is_unix == u->is_unix && v.tls == u->tls &&
               v.port == u->port &&
               v.db == u->db && strcmp(v.host, u->host) == 0 &&
               strcmp(v.path, u->path) == 0 &&
               strcmp(v.user, u->user) == 0 &&
               strcmp(v.password, u->password) == 0,
               "formatted URL parses to other fields");
    free(url);
}

static void
check_redact(const char *url, size_t n)
{
    char full[4096], again[4096], *cut;
    size_t flen;

    drv_redis_url_redact(url, full, sizeof full);
    flen = strlen(full);
    if (flen + 1 < sizeof full) {   /* not cut: idempotent */
        drv_redis_url_redact(full, again, sizeof again);
        FUZZ_CHECK(strcmp(full, again) == 0, "redaction is not idempotent: "
                   "\"%s\" then \"%s\"", full, again);
    }
    /* a small buffer: NUL-terminated inside it, a prefix of the whole;
     * one byte more is allocated and must stay untouched */
    cut = malloc(n + 1);
    FUZZ_CHECK(cut != NULL, "malloc");
    memset(cut, 'x', n + 1);
    FUZZ_CHECK(drv_redis_url_redact(url, cut, n) == cut, "wrong return");
    if (n > 0) {
        size_t clen = strnlen(cut, n);

        FUZZ_CHECK(clen < n, "redacted text not terminated in its buffer");
        FUZZ_CHECK(clen == (flen < n - 1 ? flen : n - 1) &&
                   memcmp(cut, full, clen) == 0,
                   "cut redaction is not a prefix of the whole one");
    }
    FUZZ_CHECK(cut[n] == 'x', "wrote past the buffer");
    free(cut);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_in in = {data, size};
    size_t n = fuzz_byte(&in), tlen, slen;
    const char *t = fuzz_piece(&in, 0, &tlen), *p, *nl, *body;
    struct drv_redis_url u;
    struct drv_err err;
    struct drv_buf b;
    char red[4096], *url, *tmpl;
    int rc;

    tmpl = fuzz_strndup(t, tlen);
    if (strstr(tmpl, MARK) != NULL) {
        free(tmpl);
        return 0;
    }
    /* the secret: MARK then the bytes of T's first line (at most 16);
     * the URL template is the rest of T */
    nl = strchr(tmpl, '\n');
    body = nl != NULL ? nl + 1 : tmpl;
    slen = nl != NULL ? (size_t)(nl - tmpl) : 0;
    if (slen > 16)
        slen = 16;
    drv_buf_init(&b);
    p = strstr(body, "PASS");
    if (p != NULL) {
        drv_buf_add(&b, body, (size_t)(p - body));
        drv_buf_adds(&b, MARK);
        drv_buf_add(&b, tmpl, slen);
        drv_buf_adds(&b, p + 4);
    } else {
        drv_buf_adds(&b, body);
    }
    url = drv_buf_take(&b, NULL);
    if (url == NULL)
        url = fuzz_strndup("", 0);
    /* the secret must occur exactly once (its tail could repeat MARK) */
    if (p != NULL && strstr(strstr(url, MARK) + 1, MARK) != NULL)
        goto out;

    check_redact(url, n);
    drv_redis_url_redact(url, red, sizeof red);

    drv_err_clear(&err);
    memset(&u, 0xa5, sizeof u);
    rc = drv_redis_url_parse(url, &u, &err);
    if (rc == 0) {
        FUZZ_CHECK(err.code == 0, "success with an error record");
        if (strstr(u.password, MARK) != NULL)
            FUZZ_CHECK(strstr(red, MARK) == NULL,
                       "the redacted URL shows the password: %s", red);
        FUZZ_CHECK(strstr(u.host, MARK) == NULL || strstr(red, MARK) !=
                   NULL, "host holds the secret but redaction hid it");
        FUZZ_CHECK(u.is_unix ? u.path[0] == '/' && u.port == 0
                             : u.host[0] != '\0' && u.port >= 1 &&
                               u.port <= 65535,
                   "parsed URL out of its documented ranges");
        FUZZ_CHECK(u.db >= 0, "negative db");
        check_round_trip(&u);
    } else {
        FUZZ_CHECK(rc == DRV_ECONFIG && err.code == DRV_ECONFIG &&
                   err.msg[0] != '\0', "error %d without its record", rc);
        FUZZ_CHECK(strstr(red, MARK) != NULL ||
                   strstr(err.msg, MARK) == NULL,
                   "the error message shows the password: %s", err.msg);
    }
out:
    free(url);
    free(tmpl);
    return 0;
}
