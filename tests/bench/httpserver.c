/*
 * httpserver.c -- make bench: a local HTTP/1.1 server that answers every
 * request after a fixed delay, for the http handler's cases.
 *
 *   httpserver [--port P] [--delay-ms D] [--body TEXT]
 *
 * Listens on 127.0.0.1:P (0, the default: any free port) and prints
 * "listening 127.0.0.1:PORT" on stdout once it accepts. Every request
 * (any method, any path, a body of any Content-Length) is answered
 * "200 OK" with a small JSON body (TEXT, default {"ok":true}) D ms
 * (default 20) after its last byte arrived. Connections are kept alive
 * (HTTP/1.1; "Connection: close" or HTTP/1.0 without keep-alive closes
 * after the answer); pipelined requests are answered in order. Chunked
 * request bodies are not supported (answered 501, connection closed).
 *
 * At SIGTERM or SIGINT it prints "accepted N served M" (connections
 * accepted, responses sent) and exits 0; SIGUSR1 prints the same line and
 * goes on.
 *
 * DESIGN
 * One thread, level-triggered epoll, nothing blocks. The delay is the
 * same for every request, so the answers fall due in the order the
 * requests completed: a FIFO ring of (due time, fd, generation) is the
 * whole timer wheel, and one timerfd (absolute CLOCK_MONOTONIC) is armed
 * for its head. After every epoll_wait the answers due are written,
 * however the loop woke up. A connection's generation changes when it
 * closes, so an answer due on a closed (or reused) fd is dropped. An
 * answer is one send(); what the socket does not take waits in the
 * connection's out buffer under EPOLLOUT. Signals arrive on a signalfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define BENCH_PROG "httpserver"
#include "bench.h"

#define IN_MAX 16384            /* request head bytes buffered per conn */
#define EVENTS_MAX 512          /* epoll events per wait */
#define TAG_LISTEN UINT64_MAX   /* epoll data of the listening socket */
#define TAG_TIMER (UINT64_MAX - 1)
#define TAG_SIGNAL (UINT64_MAX - 2)

struct conn {
    int open;                   /* fd is ours */
    uint32_t gen;               /* bumped at each close */
    size_t in_len;              /* bytes in in[] */
    size_t skip;                /* body bytes still to read and drop */
    int skip_close;             /* the request being skipped wants close */
    int closing;                /* close once out is flushed */
    int want_out;               /* EPOLLOUT is on */
    char *out;                  /* unsent answer bytes, or NULL */
    size_t out_len;             /* bytes in out */
    char in[IN_MAX];            /* request bytes not yet parsed */
};

struct due {
    int64_t at_ns;              /* CLOCK_MONOTONIC */
    int fd;
    uint32_t gen;               /* the conn's gen when queued */
    int close_after;            /* "Connection: close" asked */
};

static struct {
    int ep;                     /* epoll */
    int lfd;                    /* listening socket */
    int tfd;                    /* timerfd */
    int sfd;                    /* signalfd */
    int64_t delay_ns;
    struct conn **conns;        /* by fd; allocated on first use */
    size_t nconns;              /* entries of conns */
    struct due *ring;           /* FIFO of answers due */
    size_t cap, head, len;      /* ring capacity (power of 2), first, count */
    int64_t armed_ns;           /* timerfd armed for this, 0 = not */
    long long accepted;         /* connections accepted */
    long long served;           /* answers sent */
    char resp[512];             /* the answer */
    size_t resp_len;
    char resp_close[512];       /* the answer with Connection: close */
    size_t resp_close_len;
} S;

static void
ep_ctl(int op, int fd, uint32_t events, uint64_t tag)
{
    struct epoll_event ev;

    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = tag;
    if (epoll_ctl(S.ep, op, fd, &ev) < 0)
        bench_die_errno("epoll_ctl");
}

/* ---------------------------------------------------------------- ring */

static void
ring_push(int64_t at, int fd, uint32_t gen, int close_after)
{
    struct due *d;

    if (S.len == S.cap) {
        size_t ncap = S.cap ? S.cap * 2 : 1024, i;
        struct due *n = malloc(ncap * sizeof *n);

        if (n == NULL)
            bench_die_errno("malloc");
        for (i = 0; i < S.len; i++)
            n[i] = S.ring[(S.head + i) & (S.cap - 1)];
        free(S.ring);
        S.ring = n;
        S.cap = ncap;
        S.head = 0;
    }
    d = &S.ring[(S.head + S.len) & (S.cap - 1)];
    d->at_ns = at;
    d->fd = fd;
    d->gen = gen;
    d->close_after = close_after;
    S.len++;
}

/* Arm the timerfd for the ring's head (or disarm it). */
static void
arm(void)
{
    struct itimerspec its;
    int64_t at = S.len ? S.ring[S.head].at_ns : 0;

    if (at == S.armed_ns)
        return;
    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = at / 1000000000;
    its.it_value.tv_nsec = at % 1000000000;
    if (timerfd_settime(S.tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
        bench_die_errno("timerfd_settime");
    S.armed_ns = at;
}

/* ---------------------------------------------------------- connections */

static struct conn *
conn_of(int fd)
{
    if ((size_t)fd >= S.nconns) {
        size_t n = S.nconns ? S.nconns : 1024;

        while (n <= (size_t)fd)
            n *= 2;
        S.conns = realloc(S.conns, n * sizeof *S.conns);
        if (S.conns == NULL)
            bench_die_errno("realloc");
        memset(S.conns + S.nconns, 0, (n - S.nconns) * sizeof *S.conns);
        S.nconns = n;
    }
    if (S.conns[fd] == NULL && (S.conns[fd] = calloc(1, sizeof **S.conns))
                                   == NULL)
        bench_die_errno("calloc");
    return S.conns[fd];
}

static void
conn_close(int fd, struct conn *c)
{
    epoll_ctl(S.ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(c->out);
    c->out = NULL;
    c->out_len = 0;
    c->in_len = 0;
    c->skip = 0;
    c->closing = 0;
    c->want_out = 0;
    c->open = 0;
    c->gen++;
}

/* Send b[0..n) on fd, after what is waiting; 0, or -1 when it closed. */
static int
conn_send(int fd, struct conn *c, const char *b, size_t n)
{
    ssize_t w = 0;

    if (c->out_len == 0) {
        w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            conn_close(fd, c);
            return -1;
        }
        if (w < 0)
            w = 0;
    }
    if ((size_t)w < n) {
        c->out = realloc(c->out, c->out_len + n - (size_t)w);
        if (c->out == NULL)
            bench_die_errno("realloc");
        memcpy(c->out + c->out_len, b + w, n - (size_t)w);
        c->out_len += n - (size_t)w;
        if (!c->want_out) {
            ep_ctl(EPOLL_CTL_MOD, fd, EPOLLIN | EPOLLOUT, (uint64_t)fd);
            c->want_out = 1;
        }
    }
    return 0;
}

static void
on_writable(int fd, struct conn *c)
{
    ssize_t w = send(fd, c->out, c->out_len, MSG_NOSIGNAL);

    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (w < 0) {
        conn_close(fd, c);
        return;
    }
    memmove(c->out, c->out + w, c->out_len - (size_t)w);
    c->out_len -= (size_t)w;
    if (c->out_len > 0)
        return;
    if (c->closing) {
        conn_close(fd, c);
        return;
    }
    ep_ctl(EPOLL_CTL_MOD, fd, EPOLLIN, (uint64_t)fd);
    c->want_out = 0;
}

/* The value of header name in the head h[0..n), or NULL; *vlen its
 * length. Names match case-insensitively at the start of a line. */
static const char *
header(const char *h, size_t n, const char *name, size_t *vlen)
{
    size_t k = strlen(name);
    const char *p = memchr(h, '\n', n), *end = h + n;

    while (p != NULL && p + 1 < end) {
        const char *line = p + 1;
        const char *eol = memchr(line, '\r', (size_t)(end - line));

        if (eol == NULL)
            return NULL;
        if ((size_t)(eol - line) > k && line[k] == ':' &&
            strncasecmp(line, name, k) == 0) {
            const char *v = line + k + 1;

            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            *vlen = (size_t)(eol - v);
            return v;
        }
        p = memchr(line, '\n', (size_t)(end - line));
    }
    return NULL;
}

static int
has_token(const char *v, size_t n, const char *tok)
{
    size_t k = strlen(tok), i;

    for (i = 0; i + k <= n; i++)
        if (strncasecmp(v + i, tok, k) == 0)
            return 1;
    return 0;
}

/* Parse the complete requests in c->in; each one queues its answer.
 * Returns -1 when the connection was closed. */
static int
parse(int fd, struct conn *c, int64_t now)
{
    size_t off = 0;

    while (off < c->in_len) {
        const char *h = c->in + off, *eoh, *v;
        size_t avail = c->in_len - off, head, vlen = 0, body = 0;
        int close_after = 0;

        eoh = memmem(h, avail, "\r\n\r\n", 4);
        if (eoh == NULL) {
            if (avail == IN_MAX) {  /* a head larger than the buffer */
                conn_close(fd, c);
                return -1;
            }
            break;
        }
        head = (size_t)(eoh - h) + 4;
        if ((v = header(h, head, "Content-Length", &vlen)) != NULL)
            body = strtoul(v, NULL, 10);
        if (header(h, head, "Transfer-Encoding", &vlen) != NULL) {
            static const char r501[] = "HTTP/1.1 501 Not Implemented\r\n"
                "Content-Length: 0\r\nConnection: close\r\n\r\n";

            c->closing = 1;
            if (conn_send(fd, c, r501, sizeof r501 - 1) == 0 &&
                c->out_len == 0)
                conn_close(fd, c);
            return -1;
        }
        v = header(h, head, "Connection", &vlen);
        if (v != NULL && has_token(v, vlen, "close"))
            close_after = 1;
        else if (memmem(h, head, "HTTP/1.0\r\n", 10) != NULL &&
                 (v == NULL || !has_token(v, vlen, "keep-alive")))
            close_after = 1;
        if (head + body <= avail) {
            ring_push(now + S.delay_ns, fd, c->gen, close_after);
            off += head + body;
        } else {
            /* the body runs past what arrived: drop it as it comes */
            c->skip = head + body - avail;
            c->skip_close = close_after;
            off = c->in_len;
        }
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    return 0;
}

static void
on_readable(int fd, struct conn *c, int64_t now)
{
    for (;;) {
        ssize_t r = read(fd, c->in + c->in_len, IN_MAX - c->in_len);

        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) {
            conn_close(fd, c);
            return;
        }
        if (c->skip > 0) {
            size_t drop = (size_t)r < c->skip ? (size_t)r : c->skip;

            c->skip -= drop;
            memmove(c->in + c->in_len, c->in + c->in_len + drop,
                    (size_t)r - drop);
            r -= (ssize_t)drop;
            if (c->skip == 0)
                ring_push(now + S.delay_ns, fd, c->gen, c->skip_close);
        }
        c->in_len += (size_t)r;
        if (parse(fd, c, now) < 0)
            return;
        if (c->in_len < IN_MAX)
            return; /* level-triggered: the rest comes next round */
    }
}

static void
on_accept(void)
{
    for (;;) {
        int one = 1, fd = accept4(S.lfd, NULL, NULL,
                                  SOCK_NONBLOCK | SOCK_CLOEXEC);
        struct conn *c;

        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK ||
                errno == ECONNABORTED || errno == EINTR)
                return;
            if (errno == EMFILE || errno == ENFILE) {
                fprintf(stderr, "httpserver: out of file descriptors\n");
                return;
            }
            bench_die_errno("accept4");
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c = conn_of(fd);
        c->open = 1;
        S.accepted++;
        ep_ctl(EPOLL_CTL_ADD, fd, EPOLLIN, (uint64_t)fd);
    }
}

/* Write every answer due by now. */
static void
answer_due(int64_t now)
{
    while (S.len > 0) {
        struct due d = S.ring[S.head];
        struct conn *c;

        if (d.at_ns > now)
            break;
        S.head = (S.head + 1) & (S.cap - 1);
        S.len--;
        c = S.conns[d.fd];
        if (!c->open || c->gen != d.gen || c->closing)
            continue;
        if (d.close_after) {
            c->closing = 1;
            if (conn_send(d.fd, c, S.resp_close, S.resp_close_len) < 0)
                continue;
            S.served++;
            if (c->out_len == 0)
                conn_close(d.fd, c);
        } else if (conn_send(d.fd, c, S.resp, S.resp_len) == 0) {
            S.served++;
        }
    }
}

/* ---------------------------------------------------------------- main */

static void
report(void)
{
    printf("accepted %lld served %lld\n", S.accepted, S.served);
    fflush(stdout);
}

/* 1 to go on, 0 to stop. */
static int
on_signal(void)
{
    struct signalfd_siginfo si;

    while (read(S.sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        report();
        if (si.ssi_signo != SIGUSR1)
            return 0;
    }
    return 1;
}

static void
setup(int port, const char *body)
{
    struct sockaddr_in a;
    socklen_t al = sizeof a;
    sigset_t set;
    struct rlimit rl;
    int one = 1;

    /* one fd per connection: take what the hard limit allows */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    S.resp_len = (size_t)snprintf(S.resp, sizeof S.resp,
                                  "HTTP/1.1 200 OK\r\n"
                                  "Content-Type: application/json\r\n"
                                  "Content-Length: %zu\r\n\r\n%s",
                                  strlen(body), body);
    S.resp_close_len = (size_t)snprintf(S.resp_close, sizeof S.resp_close,
                                        "HTTP/1.1 200 OK\r\n"
                                        "Content-Type: application/json\r\n"
                                        "Content-Length: %zu\r\n"
                                        "Connection: close\r\n\r\n%s",
                                        strlen(body), body);
    if (S.resp_len >= sizeof S.resp ||
        S.resp_close_len >= sizeof S.resp_close) {
        fprintf(stderr, "httpserver: --body too long\n");
        exit(2);
    }
    S.ep = epoll_create1(EPOLL_CLOEXEC);
    S.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    S.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (S.ep < 0 || S.lfd < 0 || S.tfd < 0)
        bench_die_errno("setup");
    setsockopt(S.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(S.lfd, (struct sockaddr *)&a, sizeof a) < 0)
        bench_die_errno("bind");
    if (listen(S.lfd, 4096) < 0)
        bench_die_errno("listen");
    if (getsockname(S.lfd, (struct sockaddr *)&a, &al) < 0)
        bench_die_errno("getsockname");
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        bench_die_errno("sigprocmask");
    S.sfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (S.sfd < 0)
        bench_die_errno("signalfd");
    ep_ctl(EPOLL_CTL_ADD, S.lfd, EPOLLIN, TAG_LISTEN);
    ep_ctl(EPOLL_CTL_ADD, S.tfd, EPOLLIN, TAG_TIMER);
    ep_ctl(EPOLL_CTL_ADD, S.sfd, EPOLLIN, TAG_SIGNAL);
    printf("listening 127.0.0.1:%d\n", ntohs(a.sin_port));
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    struct epoll_event evs[EVENTS_MAX];
    const char *body = "{\"ok\":true}";
    long delay_ms = 20;
    int port = 0, i, n;

    for (i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (v != NULL && strcmp(argv[i], "--port") == 0)
            port = atoi(v);
        else if (v != NULL && strcmp(argv[i], "--delay-ms") == 0)
            delay_ms = atol(v);
        else if (v != NULL && strcmp(argv[i], "--body") == 0)
            body = v;
        else {
            fprintf(stderr, "usage: httpserver [--port P] [--delay-ms D] "
                    "[--body TEXT]\n");
            return 2;
        }
        i++;
    }
    if (delay_ms < 0 || port < 0 || port > 65535) {
        fprintf(stderr, "httpserver: bad --port or --delay-ms\n");
        return 2;
    }
    S.delay_ns = (int64_t)delay_ms * 1000000;
    setup(port, body);
    for (;;) {
        int64_t now;

        n = epoll_wait(S.ep, evs, EVENTS_MAX, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            bench_die_errno("epoll_wait");
        now = bench_now_ns();
        for (i = 0; i < n; i++) {
            uint64_t tag = evs[i].data.u64, ticks;
            struct conn *c;

            if (tag == TAG_LISTEN) {
                on_accept();
            } else if (tag == TAG_TIMER) {
                if (read(S.tfd, &ticks, sizeof ticks) < 0 && errno != EAGAIN)
                    bench_die_errno("read timerfd");
                S.armed_ns = 0; /* fired: a disarmed one-shot */
            } else if (tag == TAG_SIGNAL) {
                if (!on_signal())
                    return 0;
            } else {
                c = S.conns[tag];
                if (!c->open)
                    continue; /* closed earlier in this round */
                if (evs[i].events & EPOLLOUT) {
                    on_writable((int)tag, c);
                    if (!c->open)
                        continue;
                }
                if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                    on_readable((int)tag, c, now);
            }
        }
        answer_due(bench_now_ns());
        arm();
    }
}
