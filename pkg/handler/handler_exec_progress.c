/*
 * handler_exec_progress.c -- an exec child's progress pipe.
 *
 * The child gets the write end of a pipe as its fd 3 and its number in
 * env DROVER_PROGRESS_FD. Each line it writes there, "PERCENT [MESSAGE]",
 * is a progress report (drv_hrun_progress_line); a line longer than
 * LINE_MAX is cut, one that does not parse is ignored. The read end is
 * non-blocking and read on the loop by one persistent event, so a child
 * that never writes costs one pipe and one event per run, and no Redis
 * command at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "drover/common.h"
#include "drover/loop.h"
#include "handler_int.h"

#define LINE_MAX_BYTES 1024

struct drv__exec_progress {
    unsigned magic;
#define EXEC_PROGRESS_MAGIC 0x9e0c9e0cU
    struct drv_hrun *r;          /* borrowed: outlives this */
    struct event ev;             /* reads fd; deleted at EOF */
    int fd;                      /* owned: the read end */
    size_t len;                  /* bytes in line */
    int cut;                     /* the current line passed LINE_MAX */
    char line[LINE_MAX_BYTES];
};

static void
on_bytes(struct drv__exec_progress *p, const char *b, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (b[i] == '\n') {
            if (p->len > 0)
                (void)drv_hrun_progress_line(p->r, p->line, p->len);
            p->len = 0;
            p->cut = 0;
        } else if (p->len < sizeof p->line) {
            p->line[p->len++] = b[i];
        } else {
            p->cut = 1;
        }
    }
}

static void
on_readable(evutil_socket_t fd, short what DRV_UNUSED, void *arg)
{
    struct drv__exec_progress *p;
    char buf[4096];
    ssize_t n;

    DRV_CAST(p, arg, EXEC_PROGRESS_MAGIC);
    for (;;) {
        n = drv_read_nb(fd, buf, sizeof buf);
        if (n > 0) {
            on_bytes(p, buf, (size_t)n);
            continue;
        }
        if (n == -EAGAIN)
            return;
        /* EOF (every copy of the write end closed) or an error */
        if (p->len > 0)
            (void)drv_hrun_progress_line(p->r, p->line, p->len);
        p->len = 0;
        event_del(&p->ev); /* fd stays open until the free */
        return;
    }
}

int
drv__exec_progress_open(struct drv_hrun *r, struct drv__exec_progress **out,
                        int *child_fd)
{
    struct drv__exec_progress *p;
    int fds[2];

    *out = NULL;
    *child_fd = -1;
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    if (fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0) {
        int e = -errno;

        close(fds[0]);
        close(fds[1]);
        return e;
    }
    DRV_ALLOC_OBJ(p, EXEC_PROGRESS_MAGIC);
    p->r = r;
    p->fd = fds[0];
    DRV_AZ(event_assign(&p->ev, drv_loop_base(r->ht->host->loop), fds[0],
                        EV_READ | EV_PERSIST, on_readable, p));
    DRV_AZ(event_add(&p->ev, NULL));
    *out = p;
    *child_fd = fds[1];
    return 0;
}

void
drv__exec_progress_free(struct drv__exec_progress *p)
{
    if (DRV_NO_OBJ(p, EXEC_PROGRESS_MAGIC))
        return;
    event_del(&p->ev);
    close(p->fd);
    DRV_FREE_OBJ(p);
}
