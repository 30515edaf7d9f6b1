/*
 * fuzz_evhttp.h -- hand raw request bytes to an evhttp server in this
 * process and collect what it answers, for the targets that fuzz the
 * request path of drover's HTTP servers (fuzz_serve.c).
 *
 * The server listens on a unix socket in the abstract namespace (no file,
 * no port, no TIME_WAIT). One exchange: a new client connection, the
 * input written into it, and the event loop turns until the server
 * has said all it will say: the connection closed, or a few turns in a
 * row brought neither new reply bytes nor anything else to do (a request
 * that is not complete yet waits forever for its end). Then our end is
 * closed and the loop turns until the server has dropped the connection,
 * so nothing stays allocated from one input to the next.
 */
#ifndef DROVER_FUZZ_EVHTTP_H
#define DROVER_FUZZ_EVHTTP_H

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/http.h>

#include "drover/buf.h"
#include "fuzz.h"

/* loop turns in a row without progress that end an exchange */
#define FUZZ_EVHTTP_IDLE_TURNS 4

/* Where one server listens. */
struct fuzz_evhttp_addr {
    struct sockaddr_un sa;
    socklen_t len;
};

/* Make http listen on a fresh abstract unix socket, named in *a. */
static inline void
fuzz_evhttp_listen(struct evhttp *http, struct fuzz_evhttp_addr *a)
{
    static unsigned seq;
    int fd, n;

    memset(a, 0, sizeof *a);
    a->sa.sun_family = AF_UNIX;
    /* sun_path[0] stays 0: the abstract namespace */
    n = snprintf(a->sa.sun_path + 1, sizeof a->sa.sun_path - 1,
                 "drover-fuzz-%d-%u", (int)getpid(), seq++);
    a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
                         (size_t)n);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a->sa, a->len) < 0 ||
        listen(fd, 16) < 0)
        FUZZ_FAIL("listen: %s", strerror(errno));
    if (evhttp_accept_socket_with_handle(http, fd) == NULL)
        FUZZ_FAIL("evhttp_accept_socket_with_handle failed");
}

/*
 * Serve data[0..n) as the bytes one client sends on one connection to the
 * server listening at a; everything the server writes back is appended
 * to out. Returns 1 when the server closed the connection itself, 0 when
 * it was still open.
 */
static inline int
fuzz_evhttp_exchange(struct event_base *base,
                     const struct fuzz_evhttp_addr *a, const uint8_t *data,
                     size_t n, struct drv_buf *out)
{
    char chunk[16384];
    size_t off = 0;
    int fd, idle = 0, closed = 0;
    ssize_t r;

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)&a->sa, a->len) < 0)
        FUZZ_FAIL("connect: %s", strerror(errno));
    while (idle < FUZZ_EVHTTP_IDLE_TURNS) {
        int progress = 0;

        if (off < n) {
            r = write(fd, data + off, n - off);
            if (r > 0) {
                off += (size_t)r;
                progress = 1;
            }
        }
        event_base_loop(base, EVLOOP_NONBLOCK);
        for (;;) {
            r = read(fd, chunk, sizeof chunk);
            if (r > 0) {
                drv_buf_add(out, chunk, (size_t)r);
                progress = 1;
                continue;
            }
            if (r == 0)
                closed = 1;
            break;
        }
        if (closed)
            break;
        idle = progress ? 0 : idle + 1;
    }
    close(fd);
    /* let the server see the close and free the connection */
    for (idle = 0; idle < FUZZ_EVHTTP_IDLE_TURNS; idle++)
        event_base_loop(base, EVLOOP_NONBLOCK);
    return closed;
}

/*
 * The status codes of the responses in text[0..n): each "HTTP/1.x NNN "
 * at the start of the text or right after a blank line ends up in
 * codes[0..*ncodes) (at most max). Bodies could hold the same bytes, so a
 * caller only uses these codes for properties that a body cannot fake
 * (the servers fuzzed here never echo request bytes into a body that
 * would look like a status line after a blank line).
 */
static inline void
fuzz_evhttp_statuses(const char *text, size_t n, int *codes, size_t max,
                     size_t *ncodes)
{
    size_t i = 0;

    *ncodes = 0;
    while (i + 12 <= n && *ncodes < max) {
        if ((i == 0 || (i >= 4 && memcmp(text + i - 4, "\r\n\r\n", 4) == 0))
            && memcmp(text + i, "HTTP/1.", 7) == 0 && text[i + 8] == ' ' &&
            text[i + 9] >= '1' && text[i + 9] <= '5' &&
            text[i + 10] >= '0' && text[i + 10] <= '9' &&
            text[i + 11] >= '0' && text[i + 11] <= '9')
            codes[(*ncodes)++] = (text[i + 9] - '0') * 100 +
                                 (text[i + 10] - '0') * 10 +
                                 (text[i + 11] - '0');
        i++;
    }
}

#endif
