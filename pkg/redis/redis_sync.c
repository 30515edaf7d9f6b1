/*
 * redis_sync.c -- a small blocking Redis client for short conversations
 * (the admin CLI, the dashboard): connect by URL with a timeout (names
 * resolved with getaddrinfo, every address tried in order; unix sockets;
 * TLS with the same settings and checks as the async connection), AUTH
 * and SELECT, then batches of commands sent in one write and answered in
 * order, each read and write bounded by the timeout. hiredis only parses
 * the replies and formats the commands.
 *
 * Every socket is non-blocking; waits are poll(2) against one deadline
 * per step. After any I/O error or timeout the connection is broken
 * (drv_redis_sync_broken): the caller frees it and connects anew.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "drover/buf.h"
#include "drover/clock.h"
#include "drover/common.h"
#include "drover/error.h"
#include "drover/redis.h"

#include "redis_int.h"

struct drv_redis_sync {
    unsigned magic;
#define DRV_REDIS_SYNC_MAGIC 0x5f9c0a11U
    int fd;                    /* owned: the socket, -1 when closed */
    SSL_CTX *ctx;              /* owned: rediss:// only */
    SSL *ssl;                  /* owned: rediss:// only */
    redisReader *reader;       /* owned: reply parser */
    int64_t timeout_ns;        /* per read/write step */
    int broken;                /* an I/O error or timeout happened */
    int answered;              /* a reply has come */
    char name[DRV_REDIS_HOST_MAX]; /* host (or path), for TLS messages */
};

/* Wait until fd is readable (events POLLIN) or writable until deadline.
 * 0, -ETIMEDOUT or -errno. */
static int
wait_fd(int fd, short events, int64_t deadline_ns)
{
    struct pollfd p = {.fd = fd, .events = events};
    int64_t left;
    int n;

    for (;;) {
        left = deadline_ns - drv_clock_mono_ns();
        if (left <= 0)
            return -ETIMEDOUT;
        n = poll(&p, 1, (int)((left + DRV_NS_PER_MS - 1) / DRV_NS_PER_MS));
        if (n > 0)
            return 0;
        if (n == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

/* Non-blocking connect of a fresh socket to sa, bounded by deadline. */
static int
connect_addr(const struct sockaddr *sa, socklen_t len, int64_t deadline_ns,
             int *fdp)
{
    socklen_t elen = sizeof(int);
    int fd, e = 0, rc, on = 1;

    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                0);
    if (fd < 0)
        return -errno;
    if (connect(fd, sa, len) != 0) {
        if (errno != EINPROGRESS && errno != EAGAIN) {
            e = -errno;
            close(fd);
            return e;
        }
        rc = wait_fd(fd, POLLOUT, deadline_ns);
        if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) != 0)
            rc = -errno;
        if (rc == 0 && e != 0)
            rc = -e;
        if (rc < 0) {
            close(fd);
            return rc;
        }
    }
    if (sa->sa_family != AF_UNIX)
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    *fdp = fd;
    return 0;
}

/* Connect to the URL's socket path or host: each address in turn. */
static int
connect_any(struct drv_redis_sync *s, const struct drv_redis_url *u,
            int64_t deadline_ns, struct drv_err *err)
{
    struct addrinfo hints, *ai = NULL, *a;
    struct sockaddr_un sun;
    char port[8], peer[NI_MAXHOST];
    int rc, gai;

    if (u->is_unix) {
        memset(&sun, 0, sizeof sun);
        sun.sun_family = AF_UNIX;
        snprintf(sun.sun_path, sizeof sun.sun_path, "%s", u->path);
        rc = connect_addr((struct sockaddr *)&sun, sizeof sun, deadline_ns,
                          &s->fd);
        if (rc < 0)
            return drv_err_set(err, DRV_EDOWN, "connect to %s: %s", u->path,
                               strerror(-rc));
        return 0;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG | AI_NUMERICSERV;
    snprintf(port, sizeof port, "%d", u->port);
    gai = getaddrinfo(u->host, port, &hints, &ai);
    if (gai != 0)
        return drv_err_set(err, DRV_EDOWN, "cannot resolve host '%s': %s",
                           u->host, gai_strerror(gai));
    rc = -ENOENT;
    for (a = ai; a != NULL; a = a->ai_next) {
        rc = connect_addr(a->ai_addr, a->ai_addrlen, deadline_ns, &s->fd);
        if (rc == 0)
            break;
        if (getnameinfo(a->ai_addr, a->ai_addrlen, peer, sizeof peer, NULL,
                        0, NI_NUMERICHOST) != 0)
            snprintf(peer, sizeof peer, "%s", u->host);
        drv_err_set(err, rc == -ETIMEDOUT ? -ETIMEDOUT : DRV_EDOWN,
                    "connect to %s port %d: %s", peer, u->port,
                    rc == -ETIMEDOUT ? "timed out" : strerror(-rc));
    }
    freeaddrinfo(ai);
    return rc < 0 ? err->code : 0;
}

/* Wait for events on the socket, bounded by deadline: 1 (call again), or
 * <0 with err saying what was being done. */
static int
wait_step(struct drv_redis_sync *s, short events, int64_t deadline_ns,
          const char *doing, struct drv_err *err)
{
    int rc = wait_fd(s->fd, events, deadline_ns);

    if (rc == 0)
        return 1;
    return drv_err_set(err, rc, "%s: %s", doing,
                       rc == -ETIMEDOUT ? "timed out" : strerror(-rc));
}

/* Run one OpenSSL call (ret = its result) to completion: wait for what it
 * wants, bounded by deadline. 1 when it should be called again, 0 done,
 * <0 failed (err filled). */
static int
tls_step(struct drv_redis_sync *s, int ret, int64_t deadline_ns,
         const char *doing, struct drv_err *err)
{
    char why[320];
    unsigned long e;
    int code = SSL_get_error(s->ssl, ret), sys = errno;

    if (ret > 0)
        return 0;
    if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE)
        return wait_step(s, code == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
                         deadline_ns, doing, err);
    e = ERR_peek_error();
    drv__redis_tls_describe(s->ssl, e,
                            code == SSL_ERROR_SYSCALL ? sys : 0,
                            !s->answered, s->name, why, sizeof why);
    return drv_err_set(err, DRV_EDOWN, "%s", why);
}

static int
tls_start(struct drv_redis_sync *s, const struct drv_redis_tls *tls,
          int64_t deadline_ns, struct drv_err *err)
{
    int rc;

    s->ctx = drv__redis_tls_ctx(tls, err);
    if (s->ctx == NULL)
        return err->code;
    if (tls != NULL && tls->server_name != NULL &&
        tls->server_name[0] != '\0')
        snprintf(s->name, sizeof s->name, "%s", tls->server_name);
    s->ssl = drv__redis_tls_ssl(s->ctx, s->name);
    if (s->ssl == NULL || SSL_set_fd(s->ssl, s->fd) != 1)
        return drv_err_set(err, -ENOMEM, "out of memory");
    while ((rc = tls_step(s, SSL_connect(s->ssl), deadline_ns,
                          "TLS handshake", err)) == 1)
        ;
    return rc;
}

/* The same for a plain send/recv that returned n: 0 progress, 1 call
 * again (interrupted, or the socket is ready now), <0 failed. */
static int
sock_step(struct drv_redis_sync *s, ssize_t n, short events,
          int64_t deadline_ns, const char *doing, struct drv_err *err)
{
    if (n > 0)
        return 0;
    if (n == 0)
        return drv_err_set(err, DRV_EDOWN, "connection closed by the server");
    if (errno == EINTR)
        return 1;
    if (errno != EAGAIN)
        return drv_err_set(err, DRV_EDOWN, "%s: %s", doing, strerror(errno));
    return wait_step(s, events, deadline_ns, doing, err);
}

/* One write of out (in == NULL) or read into in (out == NULL), of at most
 * len bytes, over TLS or plain: 0 with *n bytes done, 1 call again, <0
 * failed (err filled). */
static int
io_step(struct drv_redis_sync *s, const void *out, void *in, size_t len,
        int64_t deadline_ns, ssize_t *n, struct drv_err *err)
{
    const char *doing = out != NULL ? "write" : "read";
    int max = len > INT32_MAX ? INT32_MAX : (int)len;

    if (s->ssl != NULL) {
        *n = out != NULL ? SSL_write(s->ssl, out, max)
                         : SSL_read(s->ssl, in, max);
        return tls_step(s, (int)*n, deadline_ns, doing, err);
    }
    *n = out != NULL ? send(s->fd, out, len, MSG_NOSIGNAL)
                     : recv(s->fd, in, len, 0);
    return sock_step(s, *n, out != NULL ? POLLOUT : POLLIN, deadline_ns,
                     doing, err);
}

/* Write all of buf. 0 or <0 (err filled, connection broken). */
static int
write_all(struct drv_redis_sync *s, const char *buf, size_t len,
          struct drv_err *err)
{
    int64_t deadline_ns = drv_clock_mono_ns() + s->timeout_ns;
    ssize_t n;
    int rc;

    while (len > 0) {
        rc = io_step(s, buf, NULL, len, deadline_ns, &n, err);
        if (rc < 0)
            return rc;
        if (rc == 1)
            continue;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read until the reader has one reply; *out owned by the caller. */
static int
read_reply(struct drv_redis_sync *s, redisReply **out, struct drv_err *err)
{
    int64_t deadline_ns = drv_clock_mono_ns() + s->timeout_ns;
    char buf[16384];
    void *reply = NULL;
    ssize_t n;
    int rc;

    for (;;) {
        if (redisReaderGetReply(s->reader, &reply) != REDIS_OK)
            return drv_err_set(err, DRV_EPROTO, "protocol error: %s",
                               s->reader->errstr);
        if (reply != NULL) {
            s->answered = 1;
            *out = reply;
            return 0;
        }
        rc = io_step(s, NULL, buf, sizeof buf, deadline_ns, &n, err);
        if (rc < 0)
            return rc;
        if (rc == 1)
            continue;
        if (redisReaderFeed(s->reader, buf, (size_t)n) != REDIS_OK)
            return drv_err_set(err, -ENOMEM, "out of memory");
    }
}

/* One setup command; an error reply is DRV_EREDIS "WHAT refused: ...". */
static int
setup_cmd(struct drv_redis_sync *s, const char *what, int argc,
          const char **argv, struct drv_err *err)
{
    struct drv_argv a;
    redisReply *rep = NULL;
    int i, rc;

    drv_argv_init(&a);
    for (i = 0; i < argc; i++)
        drv_argv_adds(&a, argv[i]);
    rc = drv_redis_sync_run(s, 1, &a, &rep, err);
    drv_argv_fini(&a);
    if (rc < 0)
        return rc;
    if (rep->type == REDIS_REPLY_ERROR)
        rc = drv_err_set(err, DRV_EREDIS, "%s refused: %.*s", what,
                         (int)(rep->len < 200 ? rep->len : 200), rep->str);
    freeReplyObject(rep);
    return rc;
}

int
drv_redis_sync_connect(const char *url, const struct drv_redis_tls *tls,
                       int64_t timeout_ms, struct drv_redis_sync **out,
                       struct drv_err *err)
{
    struct drv_redis_sync *s = NULL;
    struct drv_redis_url u;
    const char *argv[3], *envpw;
    int64_t deadline_ns;
    char db[16];
    int rc;

    *out = NULL;
    rc = drv_redis_url_parse(url, &u, err);
    if (rc < 0)
        return rc;
    envpw = getenv("DROVER_REDIS_PASSWORD");
    if (u.password[0] == '\0' && envpw != NULL && envpw[0] != '\0') {
        if (strlen(envpw) >= sizeof u.password) {
            rc = drv_err_set(err, DRV_ECONFIG, "DROVER_REDIS_PASSWORD is "
                             "longer than %zu bytes", sizeof u.password - 1);
            goto out;
        }
        strcpy(u.password, envpw);
    }
    DRV_ALLOC_OBJ(s, DRV_REDIS_SYNC_MAGIC);
    s->fd = -1;
    s->timeout_ns = (timeout_ms > 0 ? timeout_ms : 5000) * DRV_NS_PER_MS;
    snprintf(s->name, sizeof s->name, "%s", u.is_unix ? u.path : u.host);
    s->reader = redisReaderCreate();
    if (s->reader == NULL) {
        rc = drv_err_set(err, -ENOMEM, "out of memory");
        goto out;
    }
    deadline_ns = drv_clock_mono_ns() + s->timeout_ns;
    rc = connect_any(s, &u, deadline_ns, err);
    if (rc == 0 && u.tls)
        rc = tls_start(s, tls, deadline_ns, err);
    if (rc < 0)
        goto out;
    if (u.password[0] != '\0') {
        argv[0] = "AUTH";
        argv[1] = u.user[0] != '\0' ? u.user : u.password;
        argv[2] = u.password;
        rc = setup_cmd(s, "AUTH", u.user[0] != '\0' ? 3 : 2, argv, err);
        if (rc < 0)
            goto out;
    }
    if (u.db != 0) {
        snprintf(db, sizeof db, "%d", u.db);
        argv[0] = "SELECT";
        argv[1] = db;
        rc = setup_cmd(s, "SELECT", 2, argv, err);
        if (rc < 0)
            goto out;
    }
    *out = s;
    s = NULL;
    rc = 0;
out:
    explicit_bzero(&u, sizeof u);
    drv_redis_sync_free(s);
    return rc;
}

int
drv_redis_sync_run(struct drv_redis_sync *s, size_t n,
                   const struct drv_argv *cmds, redisReply **replies,
                   struct drv_err *err)
{
    struct drv_buf out;
    char *buf = NULL;
    size_t i;
    int len, rc = 0;

    DRV_CHECK_OBJ(s, DRV_REDIS_SYNC_MAGIC);
    for (i = 0; i < n; i++)
        replies[i] = NULL;
    if (s->broken)
        return drv_err_set(err, DRV_EDOWN, "the connection is broken");
    /* one write for the batch: format each, then send them together */
    drv_buf_init(&out);
    for (i = 0; i < n; i++) {
        len = redisFormatCommandArgv(&buf, cmds[i].argc,
                                     (const char **)cmds[i].argv,
                                     cmds[i].argvlen);
        if (len < 0) {
            drv_buf_fini(&out);
            return drv_err_set(err, -ENOMEM, "out of memory");
        }
        drv_buf_add(&out, buf, (size_t)len);
        redisFreeCommand(buf);
        buf = NULL;
    }
    rc = write_all(s, out.data, out.len, err);
    drv_buf_fini(&out);
    for (i = 0; i < n && rc == 0; i++)
        rc = read_reply(s, &replies[i], err);
    if (rc < 0) {
        s->broken = 1;
        for (i = 0; i < n; i++) {
            if (replies[i] != NULL)
                freeReplyObject(replies[i]);
            replies[i] = NULL;
        }
    }
    return rc;
}

int
drv_redis_sync_read(struct drv_redis_sync *s, int64_t timeout_ms,
                    redisReply **reply, struct drv_err *err)
{
    int64_t saved;
    int rc;

    DRV_CHECK_OBJ(s, DRV_REDIS_SYNC_MAGIC);
    *reply = NULL;
    if (s->broken)
        return drv_err_set(err, DRV_EDOWN, "the connection is broken");
    saved = s->timeout_ns;
    s->timeout_ns = timeout_ms * DRV_NS_PER_MS;
    rc = read_reply(s, reply, err);
    s->timeout_ns = saved;
    if (rc < 0)
        s->broken = 1;
    return rc;
}

int
drv_redis_sync_broken(const struct drv_redis_sync *s)
{
    DRV_CHECK_OBJ(s, DRV_REDIS_SYNC_MAGIC);
    return s->broken;
}

int
drv_redis_sync_cert_expiry(const struct drv_redis_sync *s, int64_t *out)
{
    const ASN1_TIME *at;
    X509 *cert;
    struct tm tm;

    DRV_CHECK_OBJ(s, DRV_REDIS_SYNC_MAGIC);
    *out = -1;
    if (s->ssl == NULL)
        return -ENOTCONN;
    cert = SSL_get0_peer_certificate(s->ssl); /* borrowed from s->ssl */
    if (cert == NULL)
        return -ENOENT;
    at = X509_get0_notAfter(cert);
    memset(&tm, 0, sizeof tm);
    if (at == NULL || ASN1_TIME_to_tm(at, &tm) != 1)
        return -ENOENT;
    *out = (int64_t)timegm(&tm);
    return 0;
}

void
drv_redis_sync_free(struct drv_redis_sync *s)
{
    if (DRV_NO_OBJ(s, DRV_REDIS_SYNC_MAGIC))
        return;
    if (s->ssl != NULL)
        SSL_free(s->ssl); /* no close_notify: we are leaving anyway */
    if (s->ctx != NULL)
        SSL_CTX_free(s->ctx);
    if (s->fd >= 0)
        close(s->fd);
    if (s->reader != NULL)
        redisReaderFree(s->reader);
    DRV_FREE_OBJ(s);
}
