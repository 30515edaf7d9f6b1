/*
 * evhttpload.c -- make bench: httpload's load (C keep-alive connections,
 * one POST in flight on each, N in all) made with libevent's own HTTP
 * client (evhttp_connection, evhttp_request), to measure what that
 * client costs per request next to httpload's bare epoll loop and to
 * drover's http handler (tests/bench/README.md, "Fourth change").
 *
 *   evhttpload --port P [--conns C] [--requests N] [--body TEXT]
 *
 * Prints the line httpload prints:
 *
 *   requests N seconds S req/s R connections C cpu_s U
 *
 * Exits 1 if a request fails or a status is not 200. Not run by make
 * bench itself: by hand, against tests/bench/httpserver.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#define BENCH_PROG "evhttpload"
#include "bench.h"

static struct event_base *base;
static struct bench_load o;     /* the command line */
static char host[64];
static long sent, done;

static void send_one(struct evhttp_connection *c);

static void
on_answer(struct evhttp_request *r, void *arg)
{
    struct evhttp_connection *c = arg;

    if (r == NULL || evhttp_request_get_response_code(r) != 200) {
        fprintf(stderr, "evhttpload: request failed (%d)\n",
                r != NULL ? evhttp_request_get_response_code(r) : -1);
        exit(1);
    }
    if (++done == o.requests)
        event_base_loopbreak(base);
    else if (sent < o.requests)
        send_one(c);
}

static void
send_one(struct evhttp_connection *c)
{
    struct evhttp_request *r = evhttp_request_new(on_answer, c);
    struct evkeyvalq *h = evhttp_request_get_output_headers(r);

    evhttp_add_header(h, "Host", host);
    evhttp_add_header(h, "User-Agent", "evhttpload");
    evhttp_add_header(h, "Accept", "*/*");
    evhttp_add_header(h, "Content-Type", "application/json");
    evbuffer_add(evhttp_request_get_output_buffer(r), o.body, strlen(o.body));
    sent++;
    if (evhttp_make_request(c, r, EVHTTP_REQ_POST, "/hook") != 0) {
        fprintf(stderr, "evhttpload: evhttp_make_request failed\n");
        exit(1);
    }
}

int
main(int argc, char **argv)
{
    long i;
    double t0, t1;

    if (bench_load_args(argc, argv, &o) != 0)
        return 2;
    snprintf(host, sizeof host, "127.0.0.1:%d", o.port);
    base = event_base_new();
    if (base == NULL)
        bench_die_errno("event_base_new");
    t0 = bench_now_s();
    for (i = 0; i < o.conns && sent < o.requests; i++) {
        struct evhttp_connection *c =
            evhttp_connection_base_new(base, NULL, "127.0.0.1",
                                       (unsigned short)o.port);

        if (c == NULL)
            bench_die_errno("evhttp_connection_base_new");
        send_one(c);
    }
    event_base_dispatch(base);
    t1 = bench_now_s();
    bench_load_report(done, t0, t1, o.conns);
    return 0;
}
