/*
 * http_dns.c -- host names for the own HTTP/1.1 client (http_h1.c):
 * getaddrinfo off the loop, answers cached for a short time.
 *
 * DESIGN
 * getaddrinfo blocks (files, then DNS as nsswitch.conf says; a DNS server
 * that does not answer holds it for resolv.conf's timeouts), so it never
 * runs on the loop: each lookup is a drv_pool job on the resolver's own
 * pool of DNS_THREADS threads, made at the first lookup (a client that
 * only sees numeric addresses starts no thread). Its done callback runs
 * on the loop and hands the answer to every request waiting for it.
 *
 * One struct dns_entry per name and port (a short list: a worker talks
 * to a few hosts). While its lookup runs, further requests for it join
 * its waiters (one lookup for N requests). An answer is used for
 * DRV__DNS_TTL_MS (getaddrinfo gives no TTL), then looked up again; a
 * failed lookup is not cached (the retried job asks again), and
 * drv__dns_forget drops an answer after a connection failure, so a name
 * that moves is followed at the next request.
 *
 * Threads: work() reads the entry's name and service and writes only the
 * entry's res fields; the loop touches neither while the entry is
 * resolving (the pool's lock orders the two). An entry is freed only
 * when it is not resolving, or by drv__dns_free after drv_pool_free has
 * joined the threads (blocking until a running getaddrinfo returns).
 * A waiter has its own timer for the request's timeout; drv__dns_abort
 * (cancel, shutdown) unlinks it and the lookup goes on alone.
 *
 * Loop thread only, but for work(). No lock of our own.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/error.h"
#include "drover/loop.h"
#include "drover/pool.h"
#include "http_int.h"

#define DNS_THREADS 2           /* lookups at once */

TAILQ_HEAD(wait_list, drv__dns_wait);

struct dns_entry {
    unsigned magic;
#define DNS_ENTRY_MAGIC 0x4e1ad7e0U
    struct drv__dns *dns;       /* borrowed: the resolver */
    char *name;                 /* owned: the host name */
    unsigned port;
    char service[8];            /* port as text, for getaddrinfo */
    int resolving;              /* its work is in the pool */
    int valid;                  /* addrs is an answer ... */
    int64_t expires_ns;         /* ... until then (monotonic) */
    struct drv__h1_addr addrs[DRV__H1_ADDRS_MAX];
    size_t naddr;
    struct wait_list waiters;   /* borrowed: requests waiting for it */
    struct drv_pool_work work;  /* the lookup */
    /* written by work() on a pool thread, read by done on the loop */
    int gai_rc;                 /* getaddrinfo's result */
    int gai_errno;              /* errno, for EAI_SYSTEM */
    struct drv__h1_addr res[DRV__H1_ADDRS_MAX];
    size_t nres;
    LIST_ENTRY(dns_entry) link; /* on dns->entries */
};

struct drv__dns {
    unsigned magic;
#define DRV__DNS_MAGIC 0x4e1ad0d5U
    struct drv_loop *loop;      /* borrowed */
    struct drv_pool *pool;      /* owned: made at the first lookup */
    LIST_HEAD(, dns_entry) entries; /* owned */
    uint64_t lookups;           /* getaddrinfo calls submitted */
};

int
drv__dns_create(struct drv_loop *loop, struct drv__dns **out)
{
    struct drv__dns *d;

    DRV_ALLOC_OBJ(d, DRV__DNS_MAGIC);
    d->loop = loop;
    LIST_INIT(&d->entries);
    *out = d;
    return 0;
}

static void
entry_free(struct dns_entry *e)
{
    DRV_ASSERT(!e->resolving && TAILQ_EMPTY(&e->waiters));
    LIST_REMOVE(e, link);
    free(e->name);
    DRV_FREE_OBJ(e);
}

void
drv__dns_free(struct drv__dns *d)
{
    if (d == NULL)
        return;
    DRV_CHECK_OBJ(d, DRV__DNS_MAGIC);
    /* joins the threads; lookups still running end first, their done
     * runs from inside (no waiter is left to hear it) */
    drv_pool_free(d->pool);
    d->pool = NULL;
    while (!LIST_EMPTY(&d->entries))
        entry_free(LIST_FIRST(&d->entries));
    DRV_FREE_OBJ(d);
}

uint64_t
drv__dns_lookups(const struct drv__dns *d)
{
    DRV_CHECK_OBJ(d, DRV__DNS_MAGIC);
    return d->lookups;
}

/* --------------------------------------------------------- the lookup */

/* On a pool thread: the entry's name and service only. */
static void
lookup_work(struct drv_pool_work *w)
{
    struct dns_entry *e = drv_container_of(w, struct dns_entry, work);
    struct addrinfo hints, *res = NULL, *ai;

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    e->nres = 0;
    e->gai_errno = 0;
    e->gai_rc = getaddrinfo(e->name, e->service, &hints, &res);
    if (e->gai_rc == EAI_SYSTEM)
        e->gai_errno = errno;
    for (ai = res; ai != NULL && e->nres < DRV__H1_ADDRS_MAX;
         ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof e->res[0].ss)
            continue;
        memcpy(&e->res[e->nres].ss, ai->ai_addr, ai->ai_addrlen);
        e->res[e->nres].len = ai->ai_addrlen;
        e->nres++;
    }
    if (res != NULL)
        freeaddrinfo(res);
}

/* w stops waiting: off its entry, its timer off. */
static void
wait_unlink(struct drv__dns_wait *w)
{
    DRV_ASSERT(w->active);
    TAILQ_REMOVE(&w->e->waiters, w, link);
    w->active = 0;
    w->e = NULL;
    if (w->timer_set)
        DRV_AZ(event_del(&w->timer));
}

static void
give_addrs(const struct dns_entry *e, struct drv__h1_target *t)
{
    memcpy(t->addrs, e->addrs, e->naddr * sizeof e->addrs[0]);
    t->naddr = e->naddr;
}

/* On the loop: the answer to the waiters, each hook last (a hook may
 * start other requests, but never frees the resolver). */
static void
lookup_done(struct drv_pool_work *w, int status)
{
    struct dns_entry *e = drv_container_of(w, struct dns_entry, work);
    struct drv__dns_wait *q;
    char why[160];
    int code = 0;

    DRV_CHECK_OBJ(e, DNS_ENTRY_MAGIC);
    e->resolving = 0;
    if (status < 0) {
        /* drv__dns_free: nobody waits any more */
        DRV_ASSERT(TAILQ_EMPTY(&e->waiters));
        return;
    }
    if (e->gai_rc == 0 && e->nres > 0) {
        memcpy(e->addrs, e->res, e->nres * sizeof e->res[0]);
        e->naddr = e->nres;
        e->valid = 1;
        e->expires_ns = drv_clock_mono_ns() +
                        (int64_t)DRV__DNS_TTL_MS * DRV_NS_PER_MS;
    } else {
        e->valid = 0;
        code = DRV_EHANDLER;
        snprintf(why, sizeof why, "%s",
                 e->gai_rc == 0 ? "no IPv4 or IPv6 address"
                 : e->gai_rc == EAI_SYSTEM ? strerror(e->gai_errno)
                 : gai_strerror(e->gai_rc));
    }
    while ((q = TAILQ_FIRST(&e->waiters)) != NULL) {
        wait_unlink(q);
        if (code == 0)
            give_addrs(e, q->tgt);
        else
            snprintf(q->error, sizeof q->error, "cannot resolve %s: %s",
                     e->name, why);
        q->done(q, code);
    }
}

static void
on_wait_timeout(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED,
                void *arg)
{
    struct drv__dns_wait *w;

    DRV_CAST(w, arg, DRV__DNS_WAIT_MAGIC);
    /* as libcurl words it */
    snprintf(w->error, sizeof w->error,
             "Resolving timed out after %d milliseconds", w->timeout_ms);
    wait_unlink(w);
    w->done(w, -ETIMEDOUT);
}

/* The entry of name and port, or NULL; stale idle entries go on the
 * way. */
static struct dns_entry *
entry_find(struct drv__dns *d, const char *name, unsigned port)
{
    struct dns_entry *e, *next, *found = NULL;
    int64_t now = 0;

    for (e = LIST_FIRST(&d->entries); e != NULL; e = next) {
        next = LIST_NEXT(e, link);
        if (e->port == port && strcasecmp(e->name, name) == 0) {
            found = e;
            continue;
        }
        if (e->resolving)
            continue;
        if (now == 0)
            now = drv_clock_mono_ns();
        if (!e->valid || now >= e->expires_ns)
            entry_free(e);
    }
    return found;
}

int
drv__dns_resolve(struct drv__dns *d, struct drv__dns_wait *w,
                 struct drv__h1_target *tgt, int64_t timeout_ms,
                 drv__dns_done_fn *done)
{
    struct dns_entry *e;
    int rc;

    DRV_CHECK_OBJ(d, DRV__DNS_MAGIC);
    DRV_ASSERT(!w->active && tgt->name.len > 0);
    e = entry_find(d, tgt->name.data, tgt->port);
    if (e != NULL && e->valid && drv_clock_mono_ns() < e->expires_ns) {
        give_addrs(e, tgt);
        return 1;
    }
    if (e == NULL) {
        DRV_ALLOC_OBJ(e, DNS_ENTRY_MAGIC);
        e->dns = d;
        e->name = drv_xstrdup(tgt->name.data);
        e->port = tgt->port;
        snprintf(e->service, sizeof e->service, "%u", tgt->port);
        TAILQ_INIT(&e->waiters);
        LIST_INSERT_HEAD(&d->entries, e, link);
    }
    if (!e->resolving) {
        if (d->pool == NULL) {
            struct drv_pool_opts po = {.nthreads = DNS_THREADS,
                                       .name = "drv-dns"};

            rc = drv_pool_create(d->loop, &po, &d->pool);
            if (rc < 0) {
                snprintf(w->error, sizeof w->error,
                         "cannot resolve %s: no resolver thread: %s",
                         e->name, strerror(-rc));
                return rc;
            }
        }
        e->valid = 0;
        memset(&e->work, 0, sizeof e->work);
        DRV_AZ(drv_pool_submit(d->pool, &e->work, lookup_work,
                               lookup_done));
        e->resolving = 1;
        d->lookups++;
    }
    w->dns = d;
    w->e = e;
    w->tgt = tgt;
    w->done = done;
    w->active = 1;
    w->error[0] = '\0';
    TAILQ_INSERT_TAIL(&e->waiters, w, link);
    w->timeout_ms = timeout_ms > INT32_MAX ? INT32_MAX : (int)timeout_ms;
    if (timeout_ms > 0) {
        struct timeval tv = drv_clock_tv_from_ns(timeout_ms * DRV_NS_PER_MS);

        if (!w->timer_set) {
            evtimer_assign(&w->timer, drv_loop_base(d->loop),
                           on_wait_timeout, w);
            w->timer_set = 1;
        }
        DRV_AZ(evtimer_add(&w->timer, &tv));
    }
    return 0;
}

void
drv__dns_abort(struct drv__dns_wait *w)
{
    if (w == NULL || !w->active)
        return;
    DRV_CHECK_OBJ(w, DRV__DNS_WAIT_MAGIC);
    wait_unlink(w);
}

void
drv__dns_forget(struct drv__dns *d, const char *name, unsigned port)
{
    struct dns_entry *e;

    DRV_CHECK_OBJ(d, DRV__DNS_MAGIC);
    LIST_FOREACH(e, &d->entries, link)
        if (e->port == port && strcasecmp(e->name, name) == 0) {
            e->valid = 0;
            return;
        }
}
