/*
 * redis_tls.c -- the OpenSSL side of rediss://, shared by the async
 * connection (redis.c, over a libevent OpenSSL bufferevent) and the
 * blocking client (redis_sync.c): the client context (protocol floor,
 * trust store, client certificate), the per-connection SSL (SNI and the
 * name or address the certificate must match) and the text of a failure.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "drover/common.h"
#include "drover/error.h"
#include "drover/redis.h"

#include "redis_int.h"

static int
set(const char *s)
{
    return s != NULL && *s != '\0';
}

/* OpenSSL's reason for the oldest queued error, or fallback. */
static const char *
ossl_reason(unsigned long e, char *buf, size_t n, const char *fallback)
{
    const char *why;

    if (e == 0)
        return fallback;
    why = ERR_reason_error_string(e);
    if (why != NULL)
        return why;
    ERR_error_string_n(e, buf, n);
    return buf;
}

/* Fill err for a file OpenSSL refused; returns NULL for the caller. */
static SSL_CTX *
ctx_fail(SSL_CTX *ctx, struct drv_err *err, const char *what,
         const char *file)
{
    char buf[160];
    unsigned long e = ERR_peek_last_error();

    drv_err_set(err, DRV_ECONFIG, "redis tls: cannot use %s '%s': %s", what,
                file, ossl_reason(e, buf, sizeof buf, "unknown error"));
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *
drv__redis_tls_ctx(const struct drv_redis_tls *tls, struct drv_err *err)
{
    static const struct drv_redis_tls defaults = {0};
    SSL_CTX *ctx = NULL;
    const char *key;

    if (drv__redis_tls_load(err) < 0)
        return NULL;
    if (tls == NULL)
        tls = &defaults;
    ctx = SSL_CTX_new(TLS_client_method());
    DRV_AN(ctx);
    DRV_AN(SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION));
    /* A write that has to be retried may be retried from a moved buffer
     * (evbuffers move), and partial writes are normal for us. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_ENABLE_PARTIAL_WRITE);
    if (!tls->no_verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        if (set(tls->ca_file)) {
            if (SSL_CTX_load_verify_locations(ctx, tls->ca_file, NULL) != 1)
                return ctx_fail(ctx, err, "ca_file", tls->ca_file);
        } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
            return ctx_fail(ctx, err, "the system trust store",
                            "(default paths)");
        }
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    if (set(tls->cert_file)) {
        key = set(tls->key_file) ? tls->key_file : tls->cert_file;
        if (SSL_CTX_use_certificate_chain_file(ctx, tls->cert_file) != 1)
            return ctx_fail(ctx, err, "cert_file", tls->cert_file);
        if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
            return ctx_fail(ctx, err, "key_file", key);
        if (SSL_CTX_check_private_key(ctx) != 1)
            return ctx_fail(ctx, err, "key_file (it does not match "
                            "cert_file)", key);
    } else if (set(tls->key_file)) {
        drv_err_set(err, DRV_ECONFIG,
                    "redis tls: key_file is set but cert_file is not");
        SSL_CTX_free(ctx);
        return NULL;
    }
    ERR_clear_error();
    return ctx;
}

SSL *
drv__redis_tls_ssl(SSL_CTX *ctx, const char *name)
{
    unsigned char addr[16];
    char host[DRV_REDIS_HOST_MAX];
    X509_VERIFY_PARAM *param;
    SSL *ssl = SSL_new(ctx);
    size_t n;

    if (ssl == NULL)
        return NULL;
    snprintf(host, sizeof host, "%s", name != NULL ? name : "");
    n = strlen(host);
    if (n > 1 && host[n - 1] == '.')
        host[n - 1] = '\0'; /* an absolute name: certificates omit the dot */
    param = SSL_get0_param(ssl);
    if (inet_pton(AF_INET, host, addr) == 1 ||
        inet_pton(AF_INET6, host, addr) == 1) {
        /* an address: checked against the IP SANs; no SNI (RFC 6066) */
        if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1)
            goto fail;
    } else if (host[0] != '\0') {
        X509_VERIFY_PARAM_set_hostflags(param,
                                        X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (X509_VERIFY_PARAM_set1_host(param, host, 0) != 1 ||
            SSL_set_tlsext_host_name(ssl, host) != 1)
            goto fail;
    }
    SSL_set_connect_state(ssl);
    return ssl;
fail:
    ERR_clear_error();
    SSL_free(ssl);
    return NULL;
}

void
drv__redis_tls_describe(SSL *ssl, unsigned long ossl, int sys, int early,
                        const char *name, char *buf, size_t n)
{
    char ebuf[160], host[DRV_REDIS_HOST_MAX + 120];
    long vr = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;

    /* A server that wants a client certificate we did not send ends the
     * connection right after the handshake; its alert is often lost in
     * the reset (our first command was already on its way). */
    if (early && ssl != NULL && SSL_get_certificate(ssl) == NULL)
        snprintf(host, sizeof host, "host %s; if the server requires a "
                 "client certificate, set tls cert_file and key_file", name);
    else
        snprintf(host, sizeof host, "host %s", name);
    if (ssl != NULL && (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) &&
        vr != X509_V_OK)
        snprintf(buf, n, "TLS: certificate verify failed: %s (host %s)",
                 X509_verify_cert_error_string(vr), name);
    else if (ossl != 0)
        snprintf(buf, n, "TLS: %s (%s)",
                 ossl_reason(ossl, ebuf, sizeof ebuf, "error"), host);
    else if (sys != 0)
        snprintf(buf, n, "TLS: %s (%s)", strerror(sys), host);
    else
        snprintf(buf, n, "TLS: connection closed by the server (%s)", host);
    ERR_clear_error();
}
