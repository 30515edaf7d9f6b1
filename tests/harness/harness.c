/*
 * harness.c -- a real redis-server for tests, and small file helpers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

int64_t
drv_test_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
drv_test_tmpdir(const char *prefix, char *out, size_t n)
{
    const char *tmp = getenv("TMPDIR");

    snprintf(out, n, "%s/%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
    if (mkdtemp(out) == NULL)
        return -errno;
    return 0;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void
drv_test_rm_rf(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int
drv_test_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        return -errno;
    fputs(text, f);
    if (fclose(f) != 0)
        return -errno;
    return 0;
}

const char *
drv_test_bin(const char *name, char *buf, size_t n)
{
    const char *dir = getenv("DROVER_BIN_DIR");

    snprintf(buf, n, "%s/%s", dir && *dir ? dir : "bin", name);
    return buf;
}

const char *
drv_test_prog(const char *name, char *buf, size_t n)
{
    const char *dir = getenv("DROVER_PROG_DIR");

    snprintf(buf, n, "%s/%s", dir && *dir ? dir : "build/release/tests/progs",
             name);
    return buf;
}

int
drv_test_free_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static int
ping_ok(const struct drv_test_redis *r)
{
    redisContext *c = drv_test_redis_connect(r);
    redisReply *rep;
    int ok = 0;

    if (c == NULL)
        return 0;
    rep = redisCommand(c, "PING");
    if (rep != NULL && rep->type == REDIS_REPLY_STATUS)
        ok = 1;
    if (rep != NULL)
        freeReplyObject(rep);
    redisFree(c);
    return ok;
}

static int
spawn_server(struct drv_test_redis *r)
{
    char conf[400];
    int64_t deadline;
    pid_t pid;
    int st;

    snprintf(conf, sizeof conf, "%s/redis.conf", r->dir);
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        char logp[400];
        int fd;

        snprintf(logp, sizeof logp, "%s/redis.log", r->dir);
        fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        setpgid(0, 0);
        execlp("redis-server", "redis-server", conf, (char *)NULL);
        _exit(127);
    }
    r->pid = pid;
    deadline = drv_test_now_ms() + 10000;
    while (drv_test_now_ms() < deadline) {
        if (ping_ok(r))
            return 0;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            r->pid = 0;
            fprintf(stderr, "harness: redis-server exited (see %s)\n",
                    r->dir);
            return -ECHILD;
        }
        usleep(10000);
    }
    return -ETIMEDOUT;
}

int
drv_test_redis_start(struct drv_test_redis *r)
{
    const char *ext = getenv("DROVER_TEST_REDIS_URL");
    char conf[400], text[1200];
    int rc;

    memset(r, 0, sizeof *r);
    if (ext != NULL && *ext) {
        r->external = 1;
        snprintf(r->url, sizeof r->url, "%s", ext);
        snprintf(r->sock_url, sizeof r->sock_url, "%s", ext);
        if (sscanf(ext, "redis://%*[^:]:%d", &r->port) != 1)
            r->port = 6379;
        return 0;
    }
    rc = drv_test_tmpdir("drover-redis", r->dir, sizeof r->dir);
    if (rc < 0)
        return rc;
    r->port = drv_test_free_port();
    if (r->port <= 0)
        return -EADDRNOTAVAIL;
    snprintf(r->sock, sizeof r->sock, "%s/redis.sock", r->dir);
    snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d/0", r->port);
    snprintf(r->sock_url, sizeof r->sock_url, "unix://%s", r->sock);
    snprintf(conf, sizeof conf, "%s/redis.conf", r->dir);
    snprintf(text, sizeof text,
             "port %d\nbind 127.0.0.1\nunixsocket %s\nunixsocketperm 700\n"
             "save \"\"\nappendonly no\ndir %s\npidfile %s/redis.pid\n"
             "daemonize no\nloglevel warning\nprotected-mode yes\n",
             r->port, r->sock, r->dir, r->dir);
    rc = drv_test_write_file(conf, text);
    if (rc < 0)
        return rc;
    return spawn_server(r);
}

static void
reap(struct drv_test_redis *r, int sig)
{
    int st;

    if (r->pid <= 0)
        return;
    kill(r->pid, sig);
    /* a server left stopped (SIGSTOP test) acts on SIGTERM only once
     * continued: without this, waitpid would hang */
    kill(r->pid, SIGCONT);
    waitpid(r->pid, &st, 0);
    r->pid = 0;
}

void
drv_test_redis_stop(struct drv_test_redis *r)
{
    reap(r, SIGTERM);
}

void
drv_test_redis_kill(struct drv_test_redis *r)
{
    reap(r, SIGKILL);
}

int
drv_test_redis_restart(struct drv_test_redis *r)
{
    if (r->external)
        return -ENOTSUP;
    drv_test_redis_stop(r);
    unlink(r->sock);
    return spawn_server(r);
}

void
drv_test_redis_cleanup(struct drv_test_redis *r)
{
    const char *keep = getenv("DROVER_TEST_KEEP");

    drv_test_redis_stop(r);
    if (!r->external && r->dir[0] && !(keep && strcmp(keep, "1") == 0))
        drv_test_rm_rf(r->dir);
}

redisContext *
drv_test_redis_connect(const struct drv_test_redis *r)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", r->port, tv);

    if (c != NULL && c->err) {
        redisFree(c);
        return NULL;
    }
    return c;
}

redisReply *
drv_test_redis_cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    redisReply *rep;

    va_start(ap, fmt);
    rep = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (rep == NULL)
        fail_msg("redis command failed: %s (%s)", fmt, c->errstr);
    return rep;
}

void
drv_test_redis_flush(const struct drv_test_redis *r)
{
    redisContext *c = drv_test_redis_connect(r);

    assert_non_null(c);
    freeReplyObject(drv_test_redis_cmd(c, "FLUSHALL"));
    redisFree(c);
}

/* ------------------------------------------------ child processes */

int
drv_test_spawn(struct drv_test_proc *p, const char *const *argv,
               const char *log_path, const char *const *env_extra)
{
    pid_t pid;

    memset(p, 0, sizeof *p);
    snprintf(p->log, sizeof p->log, "%s", log_path);
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        size_t i;

        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        fd = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 0);
            close(fd);
        }
        for (i = 0; env_extra != NULL && env_extra[i] != NULL; i++)
            putenv((char *)env_extra[i]);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    p->pid = pid;
    return 0;
}

int
drv_test_wait(struct drv_test_proc *p, int64_t timeout_ms)
{
    int64_t deadline = drv_test_now_ms() + timeout_ms;
    int st;

    if (p->pid <= 0)
        return -ECHILD;
    for (;;) {
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid)
            break;
        if (r < 0)
            return -errno;
        if (drv_test_now_ms() >= deadline)
            return -ETIMEDOUT;
        usleep(5000);
    }
    p->pid = 0;
    p->status = st;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

void
drv_test_kill(struct drv_test_proc *p, int sig)
{
    int st;

    if (p->pid <= 0)
        return;
    kill(p->pid, sig);
    if (sig == SIGKILL) {
        waitpid(p->pid, &st, 0);
        p->status = st;
        p->pid = 0;
    }
}

int
drv_test_run(const char *const *argv, char *out, size_t n, int64_t timeout_ms)
{
    int fds[2];
    struct drv_test_proc p;
    size_t got = 0;
    pid_t pid;
    int rc;

    if (pipe(fds) != 0)
        return -errno;
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    for (;;) {
        ssize_t r;
        char sink[4096];

        if (out != NULL && got + 1 < n)
            r = read(fds[0], out + got, n - 1 - got);
        else
            r = read(fds[0], sink, sizeof sink);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (out != NULL && got + 1 < n)
            got += (size_t)r;
    }
    close(fds[0]);
    if (out != NULL && n > 0)
        out[got] = '\0';
    memset(&p, 0, sizeof p);
    p.pid = pid;
    rc = drv_test_wait(&p, timeout_ms);
    if (rc == -ETIMEDOUT) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return rc;
}

int
drv_test_file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char *buf;
    long len;
    int found;

    if (f == NULL)
        return 0;
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)len + 1);
    len = (long)fread(buf, 1, (size_t)len, f);
    buf[len] = '\0';
    fclose(f);
    found = strstr(buf, needle) != NULL;
    free(buf);
    return found;
}

void
drv_test_sleep_ms(int64_t ms)
{
    usleep((useconds_t)(ms * 1000));
}
