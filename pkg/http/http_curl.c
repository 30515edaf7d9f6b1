/*
 * http_curl.c -- libcurl, loaded only when it is first used.
 *
 * libcurl and what it pulls in (TLS, HTTP/2, IDN, LDAP, SSH, Kerberos...)
 * map about 5 MB into every process that links it, though a worker whose
 * job types never use the http handler never calls it. So drover does not
 * link libcurl: this file defines the libcurl functions drover calls, and
 * the first call of any of them opens libcurl.so.4 (dlopen) and finds the
 * real ones (dlsym); every later call goes straight through. A worker
 * without http job types never maps libcurl, nor does one whose http jobs
 * all go to plain http:// URLs (http.c starts libcurl only for a request
 * that needs it).
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
#include "http_int.h"

const char *drv__curl_soname = "libcurl.so.4";

/*
 * Each function drover calls, by the way its stand-in is written:
 * X(return type, name, parameters, arguments, what it returns without
 * libcurl) passes the call on; F(void, name, type) frees its one argument
 * (a handle that only libcurl can have made: without it there is none);
 * O(return type, name, handle type, option type, what it returns without
 * libcurl) sets an option (PASS_OPTION); H(return type, name,
 * parameters) is written out by hand below.
 */
#define CURL_FNS(X, F, O, H)                                               \
    X(CURLcode, curl_global_init, (long flags), (flags),                   \
      CURLE_FAILED_INIT)                                                   \
    X(curl_version_info_data *, curl_version_info, (CURLversion v), (v),   \
      NULL)                                                                \
    F(void, curl_free, void *)                                             \
    X(CURL *, curl_easy_init, (void), (), NULL)                            \
    F(void, curl_easy_cleanup, CURL *)                                     \
    F(void, curl_easy_reset, CURL *)                                       \
    O(CURLcode, curl_easy_setopt, CURL *, CURLoption, CURLE_FAILED_INIT)   \
    H(CURLcode, curl_easy_getinfo, (CURL *, CURLINFO, ...))                \
    X(const char *, curl_easy_strerror, (CURLcode c), (c),                 \
      "libcurl could not be loaded")                                       \
    X(CURLM *, curl_multi_init, (void), (), NULL)                          \
    X(CURLMcode, curl_multi_cleanup, (CURLM *m), (m), CURLM_INTERNAL_ERROR) \
    O(CURLMcode, curl_multi_setopt, CURLM *, CURLMoption,                  \
      CURLM_INTERNAL_ERROR)                                                \
    X(CURLMcode, curl_multi_add_handle, (CURLM *m, CURL *e), (m, e),       \
      CURLM_INTERNAL_ERROR)                                                \
    X(CURLMcode, curl_multi_remove_handle, (CURLM *m, CURL *e), (m, e),    \
      CURLM_INTERNAL_ERROR)                                                \
    X(CURLMcode, curl_multi_assign, (CURLM *m, curl_socket_t s, void *p),  \
      (m, s, p), CURLM_INTERNAL_ERROR)                                     \
    X(CURLMcode, curl_multi_socket_action,                                 \
      (CURLM *m, curl_socket_t s, int ev, int *running),                   \
      (m, s, ev, running), CURLM_INTERNAL_ERROR)                           \
    X(CURLMsg *, curl_multi_info_read, (CURLM *m, int *left), (m, left),   \
      NULL)                                                                \
    X(CURLSH *, curl_share_init, (void), (), NULL)                         \
    X(CURLSHcode, curl_share_cleanup, (CURLSH *s), (s),                    \
      CURLSHE_NOT_BUILT_IN)                                                \
    H(CURLSHcode, curl_share_setopt, (CURLSH *, CURLSHoption, ...))        \
    X(CURLU *, curl_url, (void), (), NULL)                                 \
    F(void, curl_url_cleanup, CURLU *)                                     \
    X(CURLUcode, curl_url_set,                                             \
      (CURLU *u, CURLUPart part, const char *s, unsigned int flags),       \
      (u, part, s, flags), CURLUE_OUT_OF_MEMORY)                           \
    X(CURLUcode, curl_url_get,                                             \
      (CURLU *u, CURLUPart part, char **out, unsigned int flags),          \
      (u, part, out, flags), CURLUE_OUT_OF_MEMORY)

static struct {
#define CURL_PTR(ret, name, params, args, fail) ret (*name) params;
#define CURL_FPTR(ret, name, type) ret (*name)(type);
#define CURL_OPTR(ret, name, htype, otype, fail)                           \
    ret (*name)(htype, otype, ...);
#define CURL_HPTR(ret, name, params) ret (*name) params;
    CURL_FNS(CURL_PTR, CURL_FPTR, CURL_OPTR, CURL_HPTR)
#undef CURL_PTR
#undef CURL_FPTR
#undef CURL_OPTR
#undef CURL_HPTR
} fn;

/* What load looks up: each function's name, and where it goes. */
#define CURL_NAME(ret, name, ...) #name,
#define CURL_SLOT(ret, name, ...) (void **)(void *)&fn.name,
static const char *const names[] = {
    CURL_FNS(CURL_NAME, CURL_NAME, CURL_NAME, CURL_NAME)
};
static void **const slots[] = {
    CURL_FNS(CURL_SLOT, CURL_SLOT, CURL_SLOT, CURL_SLOT)
};
#undef CURL_NAME
#undef CURL_SLOT

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int loaded; /* every function found */

static void
load(void)
{
    char why[256];

    if (drv_dl_load(drv__curl_soname, names, slots, DRV_ARRAY_LEN(names), why,
                    sizeof why) == 0)
        __atomic_store_n(&loaded, 1, __ATOMIC_RELEASE);
    else
        fprintf(stderr, "drover: %s (http jobs that need libcurl fail)\n",
                why);
}

static int
ready(void)
{
    pthread_once(&load_once, load);
    return loaded;
}

int
drv__curl_loaded(void)
{
    return __atomic_load_n(&loaded, __ATOMIC_ACQUIRE);
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

/* The stand-ins of X, F and O in CURL_FNS (H's follow). */
#define CURL_DEF(ret, name, params, args, fail)                            \
    ret name params                                                        \
    {                                                                      \
        return ready() ? fn.name args : fail;                              \
    }
#define CURL_FDEF(ret, name, type)                                         \
    ret name(type p)                                                       \
    {                                                                      \
        if (p != NULL && ready())                                          \
            fn.name(p);                                                    \
    }
#define CURL_ODEF(ret, name, htype, otype, fail)                           \
    ret name(htype h, otype opt, ...)                                      \
    {                                                                      \
        if (!ready())                                                      \
            return fail;                                                   \
        PASS_OPTION(fn.name, h, opt);                                      \
    }
#define CURL_HDEF(ret, name, params)
CURL_FNS(CURL_DEF, CURL_FDEF, CURL_ODEF, CURL_HDEF)
#undef CURL_DEF
#undef CURL_FDEF
#undef CURL_ODEF
#undef CURL_HDEF

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
