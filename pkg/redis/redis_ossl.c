/*
 * redis_ossl.c -- OpenSSL (and libevent's OpenSSL bufferevent), loaded
 * only when a rediss:// connection is set up.
 *
 * libssl and libcrypto are about 1.7 MB of every droverd's resident
 * memory when they are linked (relocations, and the pages their start-up
 * touches), though a worker without a rediss:// URL never calls them. So
 * drover does not link them: this file defines the OpenSSL and
 * libevent_openssl functions drover calls (the macros of the OpenSSL
 * headers expand to some of them, SSL_CTX_ctrl and SSL_ctrl), and
 * drv__redis_tls_load, called before the first SSL_CTX is made, opens
 * libevent_openssl (dlopen; it brings libssl and libcrypto) and finds the
 * real ones (dlsym). Every later call goes straight through.
 *
 * drv__redis_tls_load is the one way in: a TLS context, and so every
 * other call, exists only once it succeeded. Should one of the functions
 * be called before (a bug), it returns what OpenSSL returns on failure
 * (0 or NULL), except OpenSSL_version, which names what is missing.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/asn1.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "drover/common.h"
#include "drover/dl.h"
#include "drover/error.h"
#include "redis_int.h"

#if OPENSSL_VERSION_MAJOR != 3
#error "redis_ossl.c loads libssl.so.3: OpenSSL 3 is needed"
#endif

/* libevent_openssl, which needs libssl.so.3 and libcrypto.so.3 */
const char *drv__redis_ossl_soname = "libevent_openssl-2.1.so.7";

/* Each function drover calls: X(return type, name, parameters, argument
 * names); V(...) for those returning nothing. */
#define OSSL_FNS(X, V)                                                     \
    X(const SSL_METHOD *, TLS_client_method, (void), ())                   \
    X(SSL_CTX *, SSL_CTX_new, (const SSL_METHOD *m), (m))                  \
    V(SSL_CTX_free, (SSL_CTX *c), (c))                                     \
    X(long, SSL_CTX_ctrl, (SSL_CTX *c, int cmd, long l, void *p),          \
      (c, cmd, l, p))                                                      \
    V(SSL_CTX_set_verify, (SSL_CTX *c, int mode, SSL_verify_cb cb),        \
      (c, mode, cb))                                                       \
    X(int, SSL_CTX_load_verify_locations,                                  \
      (SSL_CTX *c, const char *file, const char *path), (c, file, path))   \
    X(int, SSL_CTX_set_default_verify_paths, (SSL_CTX *c), (c))            \
    X(int, SSL_CTX_use_certificate_chain_file,                             \
      (SSL_CTX *c, const char *file), (c, file))                           \
    X(int, SSL_CTX_use_PrivateKey_file,                                    \
      (SSL_CTX *c, const char *file, int type), (c, file, type))           \
    X(int, SSL_CTX_check_private_key, (const SSL_CTX *c), (c))             \
    V(SSL_CTX_sess_set_new_cb,                                             \
      (SSL_CTX *c, int (*cb)(struct ssl_st *, SSL_SESSION *)), (c, cb))    \
    X(int, SSL_CTX_up_ref, (SSL_CTX *c), (c))                              \
    X(int, SSL_set_ex_data, (SSL *s, int i, void *d), (s, i, d))           \
    X(void *, SSL_get_ex_data, (const SSL *s, int i), (s, i))              \
    X(SSL *, SSL_new, (SSL_CTX *c), (c))                                   \
    V(SSL_free, (SSL *s), (s))                                             \
    X(long, SSL_ctrl, (SSL *s, int cmd, long l, void *p), (s, cmd, l, p))  \
    X(SSL_CTX *, SSL_get_SSL_CTX, (const SSL *s), (s))                     \
    X(X509_VERIFY_PARAM *, SSL_get0_param, (SSL *s), (s))                  \
    X(X509 *, SSL_get_certificate, (const SSL *s), (s))                    \
    X(X509 *, SSL_get0_peer_certificate, (const SSL *s), (s))              \
    X(int, SSL_get_verify_mode, (const SSL *s), (s))                       \
    X(long, SSL_get_verify_result, (const SSL *s), (s))                    \
    X(const char *, SSL_get_version, (const SSL *s), (s))                  \
    X(int, SSL_get_error, (const SSL *s, int ret), (s, ret))               \
    X(int, SSL_session_reused, (const SSL *s), (s))                        \
    X(int, SSL_set_session, (SSL *s, SSL_SESSION *ss), (s, ss))            \
    V(SSL_set_connect_state, (SSL *s), (s))                                \
    X(int, SSL_set_fd, (SSL *s, int fd), (s, fd))                          \
    X(int, SSL_connect, (SSL *s), (s))                                     \
    X(int, SSL_read, (SSL *s, void *b, int n), (s, b, n))                  \
    X(int, SSL_write, (SSL *s, const void *b, int n), (s, b, n))           \
    X(SSL_SESSION *, SSL_SESSION_dup, (const SSL_SESSION *ss), (ss))       \
    V(SSL_SESSION_free, (SSL_SESSION *ss), (ss))                           \
    V(ERR_clear_error, (void), ())                                         \
    X(unsigned long, ERR_peek_error, (void), ())                           \
    X(unsigned long, ERR_peek_last_error, (void), ())                      \
    X(const char *, ERR_reason_error_string, (unsigned long e), (e))       \
    V(ERR_error_string_n, (unsigned long e, char *b, size_t n), (e, b, n)) \
    X(int, X509_VERIFY_PARAM_set1_host,                                    \
      (X509_VERIFY_PARAM *p, const char *name, size_t n), (p, name, n))    \
    X(int, X509_VERIFY_PARAM_set1_ip_asc,                                  \
      (X509_VERIFY_PARAM *p, const char *ip), (p, ip))                     \
    V(X509_VERIFY_PARAM_set_hostflags,                                     \
      (X509_VERIFY_PARAM *p, unsigned int f), (p, f))                      \
    X(const char *, X509_verify_cert_error_string, (long n), (n))          \
    X(const ASN1_TIME *, X509_get0_notAfter, (const X509 *x), (x))         \
    X(int, ASN1_TIME_to_tm, (const ASN1_TIME *t, struct tm *tm), (t, tm))  \
    X(struct bufferevent *, bufferevent_openssl_socket_new,                \
      (struct event_base *b, evutil_socket_t fd, struct ssl_st *s,         \
       enum bufferevent_ssl_state st, int o), (b, fd, s, st, o))           \
    X(struct ssl_st *, bufferevent_openssl_get_ssl,                        \
      (struct bufferevent *b), (b))                                        \
    V(bufferevent_openssl_set_allow_dirty_shutdown,                        \
      (struct bufferevent *b, int allow), (b, allow))                      \
    X(unsigned long, bufferevent_get_openssl_error,                        \
      (struct bufferevent *b), (b))

static struct {
#define OSSL_PTR(ret, name, params, args) ret (*name) params;
#define OSSL_VPTR(name, params, args) void (*name) params;
    OSSL_FNS(OSSL_PTR, OSSL_VPTR)
#undef OSSL_PTR
#undef OSSL_VPTR
} fn;

/* OpenSSL_version's: defined apart from OSSL_FNS (below), as without
 * the library it says what is missing */
static const char *(*openssl_version)(int);

/* What load looks up: each function's name, and where it goes. */
#define OSSL_NAME(ret, name, params, args) #name,
#define OSSL_VNAME(name, params, args) #name,
#define OSSL_SLOT(ret, name, params, args) (void **)(void *)&fn.name,
#define OSSL_VSLOT(name, params, args) (void **)(void *)&fn.name,
static const char *const names[] = {
    OSSL_FNS(OSSL_NAME, OSSL_VNAME) "OpenSSL_version"
};
static void **const slots[] = {
    OSSL_FNS(OSSL_SLOT, OSSL_VSLOT) (void **)(void *)&openssl_version
};
#undef OSSL_NAME
#undef OSSL_VNAME
#undef OSSL_SLOT
#undef OSSL_VSLOT

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int loaded;             /* every function found */
static char load_error[256];   /* why not, when not */

static void
load(void)
{
    loaded = drv_dl_load(drv__redis_ossl_soname, names, slots,
                         DRV_ARRAY_LEN(names), load_error,
                         sizeof load_error) == 0;
}

static int
ready(void)
{
    pthread_once(&load_once, load);
    return loaded;
}

int
drv__redis_tls_load(struct drv_err *err)
{
    if (ready())
        return 0;
    return drv_err_set(err, DRV_ECONFIG, "redis tls: rediss:// needs "
                       "OpenSSL 3 and libevent's OpenSSL support: %s",
                       load_error);
}

/* The functions, in drover and not exported (droverd exports no symbol):
 * libssl and libevent_openssl bind to their own. */
#define OSSL_DEF(ret, name, params, args)                                  \
    ret name params                                                        \
    {                                                                      \
        return ready() ? fn.name args : (ret)0;                            \
    }
#define OSSL_VDEF(name, params, args)                                      \
    void name params                                                       \
    {                                                                      \
        if (ready())                                                       \
            fn.name args;                                                  \
    }
OSSL_FNS(OSSL_DEF, OSSL_VDEF)
#undef OSSL_DEF
#undef OSSL_VDEF

const char *
OpenSSL_version(int t)
{
    return ready() ? openssl_version(t) : load_error;
}
