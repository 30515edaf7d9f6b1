/*
 * redis_resolve.c -- resolve a host name without blocking the loop.
 *
 * DESIGN
 * getaddrinfo runs on a short-lived detached thread, one per request.
 * Chosen over libevent's evdns because getaddrinfo is what every other
 * client on the machine uses: it honours /etc/hosts, nsswitch.conf (mDNS,
 * systemd-resolved, LDAP, ...), the search domains and ndots of
 * resolv.conf and address sorting (RFC 6724) exactly as they do, so a
 * name that works with redis-cli works here. Requests are rare (one per
 * connection attempt with a name), so a thread each costs nothing that
 * matters; getaddrinfo cannot be interrupted, so a request whose owner
 * gives up (timeout, free) is abandoned, and the thread frees it when
 * getaddrinfo returns.
 *
 * A request has two references, the thread's and the owner's; the last
 * one dropped frees it. The owner's event (done_ev) is touched by the
 * thread only under the lock and only while the owner holds its
 * reference, and libevent's locking (evthread_use_pthreads, done by
 * pkg/loop) makes event_active from the thread safe and wakes the loop.
 *
 * Lock: one process-wide mutex (requests are few; no contention).
 */
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "drover/common.h"

#include "redis_int.h"

struct drv__redis_resolve {
    unsigned magic;
#define RESOLVE_MAGIC 0x4e501ffeU
    int refs;                  /* thread + owner, under mu */
    int done;                  /* the answer is in, under mu */
    struct event *done_ev;     /* borrowed from the owner; NULL once
                                  abandoned; under mu */
    char host[DRV_REDIS_HOST_MAX]; /* the name */
    char port[8];              /* the port, as text */
    int gai;                   /* getaddrinfo's return */
    struct addrinfo *ai;       /* owned until taken */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

/* Drop one reference; the last frees. Called with mu held; unlocks. */
static void
unref_unlock(struct drv__redis_resolve *q)
{
    int last = --q->refs == 0;

    DRV_AZ(pthread_mutex_unlock(&mu));
    if (!last)
        return;
    if (q->ai != NULL)
        freeaddrinfo(q->ai);
    DRV_FREE_OBJ(q);
}

static void *
resolve_main(void *arg)
{
    struct drv__redis_resolve *q;
    struct addrinfo hints, *ai = NULL;
    int gai;

    DRV_CAST(q, arg, RESOLVE_MAGIC);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
    gai = getaddrinfo(q->host, q->port, &hints, &ai);
    DRV_AZ(pthread_mutex_lock(&mu));
    q->gai = gai;
    q->ai = gai == 0 ? ai : NULL;
    q->done = 1;
    if (q->done_ev != NULL)
        event_active(q->done_ev, EV_READ, 0);
    unref_unlock(q);
    return NULL;
}

struct drv__redis_resolve *
drv__redis_resolve_start(const char *host, int port, struct event *done_ev,
                         int *rc)
{
    struct drv__redis_resolve *q = NULL;
    pthread_attr_t attr;
    sigset_t all, old;
    pthread_t th;
    int e;

    DRV_ALLOC_OBJ(q, RESOLVE_MAGIC);
    q->refs = 2;
    q->done_ev = done_ev;
    snprintf(q->host, sizeof q->host, "%s", host);
    snprintf(q->port, sizeof q->port, "%d", port);
    DRV_AZ(pthread_attr_init(&attr));
    DRV_AZ(pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED));
    /* the thread inherits this mask: signals stay with the loop thread */
    sigfillset(&all);
    DRV_AZ(pthread_sigmask(SIG_SETMASK, &all, &old));
    e = pthread_create(&th, &attr, resolve_main, q);
    DRV_AZ(pthread_sigmask(SIG_SETMASK, &old, NULL));
    DRV_AZ(pthread_attr_destroy(&attr));
    if (e != 0) {
        DRV_FREE_OBJ(q);
        *rc = -e;
        return NULL;
    }
    *rc = 0;
    return q;
}

int
drv__redis_resolve_take(struct drv__redis_resolve *q, struct addrinfo **ai,
                        int *gai)
{
    DRV_CHECK_OBJ(q, RESOLVE_MAGIC);
    DRV_AZ(pthread_mutex_lock(&mu));
    if (!q->done) {
        DRV_AZ(pthread_mutex_unlock(&mu));
        return 0;
    }
    *ai = q->ai;
    *gai = q->gai;
    q->ai = NULL;
    q->done_ev = NULL;
    unref_unlock(q);
    return 1;
}

void
drv__redis_resolve_abandon(struct drv__redis_resolve *q)
{
    if (DRV_NO_OBJ(q, RESOLVE_MAGIC))
        return;
    DRV_AZ(pthread_mutex_lock(&mu));
    q->done_ev = NULL;
    unref_unlock(q);
}
