/*
 * httpload.c -- make bench: a keep-alive HTTP/1.1 load generator, to
 * measure tests/bench/httpserver alone.
 *
 *   httpload --port P [--conns C] [--requests N] [--body TEXT]
 *
 * Opens C connections (default 500) to 127.0.0.1:P and keeps one POST
 * of TEXT (default a small JSON object, the size of an http job's
 * default body) in flight on each: the next request goes out as soon as
 * the answer to the last one is whole, until N requests (default 20,000)
 * were answered. Prints one line:
 *
 *   requests N seconds S req/s R connections C cpu_s U
 *
 * timed from the first connect to the last answer; U is this process's
 * CPU. Exits 1 if a connection fails or a status is not 200.
 *
 * One thread, level-triggered epoll; an answer is parsed just enough to
 * find its end (Content-Length).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BENCH_PROG "httpload"
#include "bench.h"

#define IN_MAX 8192

struct lconn {
    int fd;
    size_t in_len;              /* bytes in in[] */
    size_t sent;                /* bytes of the request sent */
    int busy;                   /* a request is out */
    char in[IN_MAX];
};

static char req[2048];
static size_t req_len;

/* Send (the rest of) the request; 0, or -1 on error. */
static int
send_req(struct lconn *c)
{
    ssize_t w = send(c->fd, req + c->sent, req_len - c->sent, MSG_NOSIGNAL);

    if (w < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    c->sent += (size_t)w;
    return 0;
}

/* 1 when in[] holds a whole answer (consumed), 0 if not yet, -1 bad. */
static int
answer_done(struct lconn *c)
{
    const char *eoh = memmem(c->in, c->in_len, "\r\n\r\n", 4), *p;
    size_t head, body = 0;

    if (eoh == NULL)
        return c->in_len == IN_MAX ? -1 : 0;
    if (c->in_len < 12 || memcmp(c->in + 9, "200", 3) != 0)
        return -1;
    head = (size_t)(eoh - c->in) + 4;
    p = strcasestr(c->in, "\r\nContent-Length:");
    if (p != NULL && p < eoh)
        body = strtoul(p + 17, NULL, 10);
    if (c->in_len < head + body)
        return 0;
    memmove(c->in, c->in + head + body, c->in_len - head - body);
    c->in_len -= head + body;
    return 1;
}

int
main(int argc, char **argv)
{
    struct bench_load o;
    const char *body;
    long conns, requests, started = 0, done = 0;
    struct epoll_event *evs;
    struct lconn *cs;
    int port, ep, i;
    double t0, t1;

    if (bench_load_args(argc, argv, &o) != 0)
        return 2;
    port = o.port;
    conns = o.conns;
    requests = o.requests;
    body = o.body;
    req_len = (size_t)snprintf(req, sizeof req,
                               "POST /hook HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                               "User-Agent: httpload\r\nAccept: */*\r\n"
                               "Content-Type: application/json\r\n"
                               "Content-Length: %zu\r\n\r\n%s",
                               port, strlen(body), body);
    if (req_len >= sizeof req) {
        fprintf(stderr, "httpload: --body too long\n");
        return 2;
    }
    {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
        }
    }
    cs = calloc((size_t)conns, sizeof *cs);
    evs = calloc((size_t)conns, sizeof *evs);
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (cs == NULL || evs == NULL || ep < 0)
        bench_die_errno("setup");
    t0 = bench_now_s();
    for (i = 0; i < conns; i++) {
        struct sockaddr_in a;
        struct epoll_event ev;
        int one = 1;

        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_port = htons((uint16_t)port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        cs[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (cs[i].fd < 0)
            bench_die_errno("socket");
        setsockopt(cs[i].fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(cs[i].fd, (struct sockaddr *)&a, sizeof a) < 0 &&
            errno != EINPROGRESS)
            bench_die_errno("connect");
        memset(&ev, 0, sizeof ev);
        ev.events = EPOLLIN | EPOLLOUT;
        ev.data.ptr = &cs[i];
        if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) < 0)
            bench_die_errno("epoll_ctl");
    }
    while (done < requests) {
        int n = epoll_wait(ep, evs, (int)conns, 10000);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            bench_die_errno(n == 0 ? "no answer for 10 s" : "epoll_wait");
        for (i = 0; i < n; i++) {
            struct lconn *c = evs[i].data.ptr;

            if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                errno = ECONNRESET;
                bench_die_errno("connection");
            }
            if ((evs[i].events & EPOLLOUT) && !c->busy) {
                if (started == requests) {
                    struct epoll_event ev;

                    memset(&ev, 0, sizeof ev);
                    ev.events = EPOLLIN;
                    ev.data.ptr = c;
                    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
                        bench_die_errno("epoll_ctl");
                    continue;
                }
                c->busy = 1;
                c->sent = 0;
                started++;
            }
            if ((evs[i].events & EPOLLOUT) && c->sent < req_len) {
                struct epoll_event ev;

                if (send_req(c) < 0)
                    bench_die_errno("send");
                if (c->sent == req_len) {
                    memset(&ev, 0, sizeof ev);
                    ev.events = EPOLLIN;
                    ev.data.ptr = c;
                    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
                        bench_die_errno("epoll_ctl");
                }
            }
            if (evs[i].events & EPOLLIN) {
                ssize_t r = read(c->fd, c->in + c->in_len,
                                 IN_MAX - c->in_len);
                int k;

                if (r <= 0) {
                    errno = r == 0 ? ECONNRESET : errno;
                    bench_die_errno("read");
                }
                c->in_len += (size_t)r;
                while ((k = answer_done(c)) == 1) {
                    done++;
                    c->busy = 0;
                }
                if (k < 0) {
                    fprintf(stderr, "httpload: bad answer: %.40s\n", c->in);
                    return 1;
                }
                if (!c->busy && started < requests) {
                    c->busy = 1;
                    c->sent = 0;
                    started++;
                    if (send_req(c) < 0)
                        bench_die_errno("send");
                    if (c->sent < req_len) {
                        struct epoll_event ev;

                        memset(&ev, 0, sizeof ev);
                        ev.events = EPOLLIN | EPOLLOUT;
                        ev.data.ptr = c;
                        if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
                            bench_die_errno("epoll_ctl");
                    }
                }
            }
        }
    }
    t1 = bench_now_s();
    bench_load_report(done, t0, t1, conns);
    return 0;
}
