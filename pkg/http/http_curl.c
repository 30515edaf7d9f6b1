/*
 * http_curl.c -- libcurl, loaded only when it is first used.
 *
 * libcurl and what it pulls in (TLS, HTTP/2, IDN, LDAP, SSH, Kerberos...)
 * map about 5 MB into every process that links it, though a worker whose
 * job types never use the http handler never calls it. So drover does not
 * link libcurl: this file defines the libcurl functions drover calls, and
 * the first call of any of them opens libcurl.so.4 (dlopen) and finds the
 * real ones (dlsym); every later call goes straight through. A worker
 * without http job types never maps libcurl.
 *
 * When libcurl cannot be opened the functions fail the way libcurl does
 * when it cannot start (CURLE_FAILED_INIT, NULL handles), after one line
 * on stderr saying why. The variadic setopt functions pass their one
 * argument on by the type libcurl reads for that option (its number
 * range says: long, pointer, curl_off_t).
 */
#define CURL_DISABLE_TYPECHECK 1

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "drover/common.h"
#include "drover/dl.h"

#define CURL_SONAME "libcurl.so.4"

/* Each function drover calls: X(name, return type, parameters). */
#define CURL_FNS(X)                                                        \
    X(curl_global_init, CURLcode, (long))                                  \
    X(curl_version_info, curl_version_info_data *, (CURLversion))          \
    X(curl_getdate, time_t, (const char *, const time_t *))               \
    X(curl_free, void, (void *))                                           \
    X(curl_easy_init, CURL *, (void))                                      \
    X(curl_easy_cleanup, void, (CURL *))                                   \
    X(curl_easy_reset, void, (CURL *))                                     \
    X(curl_easy_setopt, CURLcode, (CURL *, CURLoption, ...))               \
    X(curl_easy_getinfo, CURLcode, (CURL *, CURLINFO, ...))                \
    X(curl_easy_strerror, const char *, (CURLcode))                        \
    X(curl_multi_init, CURLM *, (void))                                    \
    X(curl_multi_cleanup, CURLMcode, (CURLM *))                            \
    X(curl_multi_setopt, CURLMcode, (CURLM *, CURLMoption, ...))           \
    X(curl_multi_add_handle, CURLMcode, (CURLM *, CURL *))                 \
    X(curl_multi_remove_handle, CURLMcode, (CURLM *, CURL *))              \
    X(curl_multi_assign, CURLMcode, (CURLM *, curl_socket_t, void *))      \
    X(curl_multi_socket_action, CURLMcode,                                 \
      (CURLM *, curl_socket_t, int, int *))                                \
    X(curl_multi_info_read, CURLMsg *, (CURLM *, int *))                   \
    X(curl_share_init, CURLSH *, (void))                                   \
    X(curl_share_cleanup, CURLSHcode, (CURLSH *))                          \
    X(curl_share_setopt, CURLSHcode, (CURLSH *, CURLSHoption, ...))        \
    X(curl_url, CURLU *, (void))                                           \
    X(curl_url_cleanup, void, (CURLU *))                                   \
    X(curl_url_set, CURLUcode,                                             \
      (CURLU *, CURLUPart, const char *, unsigned int))                    \
    X(curl_url_get, CURLUcode, (CURLU *, CURLUPart, char **, unsigned int))

static struct {
#define CURL_PTR(name, ret, params) ret (*name) params;
    CURL_FNS(CURL_PTR)
#undef CURL_PTR
} fn;

/* What load looks up: each function's name, and where it goes. */
#define CURL_NAME(name, ret, params) #name,
#define CURL_SLOT(name, ret, params) (void **)(void *)&fn.name,
static const char *const names[] = {CURL_FNS(CURL_NAME)};
static void **const slots[] = {CURL_FNS(CURL_SLOT)};
#undef CURL_NAME
#undef CURL_SLOT

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int loaded; /* every function found */

static void
load(void)
{
    char why[256];

    if (drv_dl_load(CURL_SONAME, names, slots, DRV_ARRAY_LEN(names), why,
                    sizeof why) == 0)
        loaded = 1;
    else
        fprintf(stderr, "drover: %s (http jobs fail)\n", why);
}

static int
ready(void)
{
    pthread_once(&load_once, load);
    return loaded;
}

/* The argument of option opt, in the numbering libcurl uses for the
 * options of easy, multi and share handles alike: below 10000 a long,
 * below 30000 a pointer (object or function), below 40000 a curl_off_t,
 * above a pointer again (blobs). */
#define PASS_OPTION(call, h, opt)                                          \
    do {                                                                   \
        va_list ap;                                                        \
        va_start(ap, opt);                                                 \
        if ((long)(opt) < CURLOPTTYPE_OBJECTPOINT) {                       \
            long v = va_arg(ap, long);                                     \
            va_end(ap);                                                    \
            return call(h, opt, v);                                        \
        } else if ((long)(opt) >= CURLOPTTYPE_OFF_T &&                     \
                   (long)(opt) < CURLOPTTYPE_BLOB) {                       \
            curl_off_t v = va_arg(ap, curl_off_t);                         \
            va_end(ap);                                                    \
            return call(h, opt, v);                                        \
        } else {                                                           \
            void *v = va_arg(ap, void *);                                  \
            va_end(ap);                                                    \
            return call(h, opt, v);                                        \
        }                                                                  \
    } while (0)

CURLcode
curl_global_init(long flags)
{
    return ready() ? fn.curl_global_init(flags) : CURLE_FAILED_INIT;
}

curl_version_info_data *
curl_version_info(CURLversion v)
{
    return ready() ? fn.curl_version_info(v) : NULL;
}

time_t
curl_getdate(const char *p, const time_t *unused)
{
    return ready() ? fn.curl_getdate(p, unused) : (time_t)-1;
}

void
curl_free(void *p)
{
    if (p != NULL && ready())
        fn.curl_free(p);
}

CURL *
curl_easy_init(void)
{
    return ready() ? fn.curl_easy_init() : NULL;
}

void
curl_easy_cleanup(CURL *h)
{
    if (h != NULL && ready())
        fn.curl_easy_cleanup(h);
}

void
curl_easy_reset(CURL *h)
{
    if (h != NULL && ready())
        fn.curl_easy_reset(h);
}

CURLcode
curl_easy_setopt(CURL *h, CURLoption opt, ...)
{
    if (!ready())
        return CURLE_FAILED_INIT;
    PASS_OPTION(fn.curl_easy_setopt, h, opt);
}

CURLcode
curl_easy_getinfo(CURL *h, CURLINFO info, ...)
{
    va_list ap;
    void *p;

    if (!ready())
        return CURLE_FAILED_INIT;
    va_start(ap, info);
    p = va_arg(ap, void *); /* always a pointer to the answer */
    va_end(ap);
    return fn.curl_easy_getinfo(h, info, p);
}

const char *
curl_easy_strerror(CURLcode c)
{
    return ready() ? fn.curl_easy_strerror(c) : "libcurl could not be loaded";
}

CURLM *
curl_multi_init(void)
{
    return ready() ? fn.curl_multi_init() : NULL;
}

CURLMcode
curl_multi_cleanup(CURLM *m)
{
    return ready() ? fn.curl_multi_cleanup(m) : CURLM_INTERNAL_ERROR;
}

CURLMcode
curl_multi_setopt(CURLM *m, CURLMoption opt, ...)
{
    if (!ready())
        return CURLM_INTERNAL_ERROR;
    PASS_OPTION(fn.curl_multi_setopt, m, opt);
}

CURLMcode
curl_multi_add_handle(CURLM *m, CURL *e)
{
    return ready() ? fn.curl_multi_add_handle(m, e) : CURLM_INTERNAL_ERROR;
}

CURLMcode
curl_multi_remove_handle(CURLM *m, CURL *e)
{
    return ready() ? fn.curl_multi_remove_handle(m, e)
                   : CURLM_INTERNAL_ERROR;
}

CURLMcode
curl_multi_assign(CURLM *m, curl_socket_t s, void *p)
{
    return ready() ? fn.curl_multi_assign(m, s, p) : CURLM_INTERNAL_ERROR;
}

CURLMcode
curl_multi_socket_action(CURLM *m, curl_socket_t s, int ev, int *running)
{
    return ready() ? fn.curl_multi_socket_action(m, s, ev, running)
                   : CURLM_INTERNAL_ERROR;
}

CURLMsg *
curl_multi_info_read(CURLM *m, int *left)
{
    return ready() ? fn.curl_multi_info_read(m, left) : NULL;
}

CURLSH *
curl_share_init(void)
{
    return ready() ? fn.curl_share_init() : NULL;
}

CURLSHcode
curl_share_cleanup(CURLSH *s)
{
    return ready() ? fn.curl_share_cleanup(s) : CURLSHE_NOT_BUILT_IN;
}

CURLSHcode
curl_share_setopt(CURLSH *s, CURLSHoption opt, ...)
{
    va_list ap;
    CURLSHcode rc;

    if (!ready())
        return CURLSHE_NOT_BUILT_IN;
    va_start(ap, opt);
    /* libcurl reads SHARE and UNSHARE as int, the others as pointers */
    if (opt == CURLSHOPT_SHARE || opt == CURLSHOPT_UNSHARE)
        rc = fn.curl_share_setopt(s, opt, va_arg(ap, int));
    else
        rc = fn.curl_share_setopt(s, opt, va_arg(ap, void *));
    va_end(ap);
    return rc;
}

CURLU *
curl_url(void)
{
    return ready() ? fn.curl_url() : NULL;
}

void
curl_url_cleanup(CURLU *u)
{
    if (u != NULL && ready())
        fn.curl_url_cleanup(u);
}

CURLUcode
curl_url_set(CURLU *u, CURLUPart part, const char *s, unsigned int flags)
{
    return ready() ? fn.curl_url_set(u, part, s, flags) : CURLUE_OUT_OF_MEMORY;
}

CURLUcode
curl_url_get(CURLU *u, CURLUPart part, char **out, unsigned int flags)
{
    return ready() ? fn.curl_url_get(u, part, out, flags)
                   : CURLUE_OUT_OF_MEMORY;
}
