/*
 * harness.c -- a real redis-server for tests (the Redis fixture), child
 * processes, the watchdog, wait_until's polling, and small file helpers.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "harness.h"
#include "http.h"
#include "drover/buf.h"
#include "drover/loop.h"
#include "drover/pool.h"

/* ------------------------------------------------ children */

/* Every child the harness started and has not reaped (test programs,
 * droverd, redis-server): the watchdog kills them before it aborts, so a
 * hung test leaves no process behind. */
#define MAX_KIDS 64

static pthread_mutex_t kids_mu = PTHREAD_MUTEX_INITIALIZER;
static pid_t kids[MAX_KIDS];

static void
kid_add(pid_t pid)
{
    size_t i;

    pthread_mutex_lock(&kids_mu);
    for (i = 0; i < MAX_KIDS; i++)
        if (kids[i] == 0) {
            kids[i] = pid;
            break;
        }
    pthread_mutex_unlock(&kids_mu);
}

static void
kid_del(pid_t pid)
{
    size_t i;

    pthread_mutex_lock(&kids_mu);
    for (i = 0; i < MAX_KIDS; i++)
        if (kids[i] == pid)
            kids[i] = 0;
    pthread_mutex_unlock(&kids_mu);
}

/* SIGKILL every child still registered; the number killed. */
static int
kids_kill(void)
{
    size_t i;
    int n = 0;

    pthread_mutex_lock(&kids_mu);
    for (i = 0; i < MAX_KIDS; i++)
        if (kids[i] > 0 && kill(kids[i], SIGKILL) == 0)
            n++;
    pthread_mutex_unlock(&kids_mu);
    return n;
}

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

/* Bind fd to 127.0.0.1 on a port the kernel picks: that port, or -1. */
static int
bind_loopback(int fd)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        return -1;
    return ntohs(sa.sin_port);
}

int
drv_test_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = -1;

    if (fd < 0)
        return -1;
    port = bind_loopback(fd);
    close(fd);
    return port;
}

int
drv_test_listen(int backlog, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    *port = bind_loopback(fd);
    assert_true(*port > 0);
    assert_int_equal(listen(fd, backlog), 0);
    return fd;
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
    struct drv_test_poll p;
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
    kid_add(pid);
    drv_test_poll_init(&p, DRV_TEST_WAIT_MS);
    do {
        if (ping_ok(r))
            return 0;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            kid_del(pid);
            r->pid = 0;
            fprintf(stderr, "harness: redis-server exited (see %s)\n",
                    r->dir);
            return -ECHILD;
        }
    } while (drv_test_poll_next(&p));
    fprintf(stderr, "harness: redis-server gave no PONG in %d ms (see %s)\n",
            DRV_TEST_WAIT_MS, r->dir);
    return -ETIMEDOUT;
}

/* The certificates of drv_test_make_certs, or (server_days > 0) only a new
 * server certificate valid that many days, signed by the CA there. */
static int
make_certs(const char *dir, int server_days)
{
    static const char script[] =
        "set -e\n"
        "cd \"$1\"\n"
        "days=2\n"
        "key() { openssl genpkey -algorithm EC "
        "-pkeyopt ec_paramgen_curve:P-256 -out \"$1\" 2>/dev/null; }\n"
        "ca() { key $1.key; openssl req -x509 -new -key $1.key -out $1.pem "
        "-days 2 -subj \"/CN=$2\"; }\n"
        "leaf() {\n"
        "  key $1.key\n"
        "  openssl req -new -key $1.key -out $1.csr -subj \"/CN=$2\"\n"
        "  printf '%s\\n' \"$3\" > $1.ext\n"
        "  openssl x509 -req -in $1.csr -CA ca.pem -CAkey ca.key "
        "-CAcreateserial -out $1.pem -days $days -extfile $1.ext 2>&1\n"
        "}\n"
        "san='subjectAltName=IP:127.0.0.1,DNS:localhost,"
        "DNS:drover-test-redis'\n"
        "if [ -n \"$2\" ]; then days=$2; leaf server localhost \"$san\"; "
        "exit 0; fi\n"
        "ca ca 'drover test CA'\n"
        "ca other-ca 'another CA'\n"
        "leaf server localhost \"$san\"\n"
        "leaf client 'drover client' 'extendedKeyUsage=clientAuth'\n";
    char path[400], cmd[900], days[16] = "";
    int rc;

    snprintf(path, sizeof path, "%s/make-certs.sh", dir);
    rc = drv_test_write_file(path, script);
    if (rc < 0)
        return rc;
    if (server_days > 0)
        snprintf(days, sizeof days, "%d", server_days);
    snprintf(cmd, sizeof cmd, "sh '%s' '%s' '%s' > '%s/make-certs.log' 2>&1",
             path, dir, days, dir);
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof cmd, "cat '%s/make-certs.log' >&2", dir);
        (void)system(cmd);
        return -EIO;
    }
    return 0;
}

int
drv_test_make_certs(const char *dir)
{
    return make_certs(dir, 0);
}

int
drv_test_make_server_cert(const char *dir, int days)
{
    return make_certs(dir, days > 0 ? days : 1);
}

/* Write dir/redis.conf: plain TCP on r->port, or TLS there (tls_auth:
 * -1 plain, 0 TLS, 1 TLS requiring client certificates). */
static int
write_conf(struct drv_test_redis *r, int tls_auth)
{
    char conf[400], text[2400];
    int o;

    snprintf(conf, sizeof conf, "%s/redis.conf", r->dir);
    o = snprintf(text, sizeof text,
                 "bind 127.0.0.1\nunixsocket %s\nunixsocketperm 700\n"
                 "save \"\"\nappendonly no\ndir %s\npidfile %s/redis.pid\n"
                 "daemonize no\nloglevel warning\nprotected-mode yes\n",
                 r->sock, r->dir, r->dir);
    if (tls_auth < 0)
        snprintf(text + o, sizeof text - (size_t)o, "port %d\n", r->port);
    else
        snprintf(text + o, sizeof text - (size_t)o,
                 "port 0\ntls-port %d\ntls-cert-file %s/server.pem\n"
                 "tls-key-file %s/server.key\ntls-ca-cert-file %s/ca.pem\n"
                 "tls-auth-clients %s\n", r->port, r->certs, r->certs,
                 r->certs, tls_auth ? "yes" : "no");
    return drv_test_write_file(conf, text);
}

static int
redis_start(struct drv_test_redis *r, int tls_auth)
{
    const char *ext = getenv("DROVER_TEST_REDIS_URL");
    int rc;

    memset(r, 0, sizeof *r);
    if (ext != NULL && *ext) {
        if (tls_auth >= 0)
            return -ENOTSUP;
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
    if (tls_auth >= 0) {
        r->tls = 1;
        snprintf(r->certs, sizeof r->certs, "%s/certs", r->dir);
        snprintf(r->ca, sizeof r->ca, "%s/ca.pem", r->certs);
        snprintf(r->url, sizeof r->url, "rediss://127.0.0.1:%d/0", r->port);
        snprintf(r->tls_yaml, sizeof r->tls_yaml,
                 "  tls:\n    ca_file: %s\n", r->ca);
        if (mkdir(r->certs, 0700) != 0)
            return -errno;
        rc = drv_test_make_certs(r->certs);
        if (rc < 0)
            return rc;
    }
    rc = write_conf(r, tls_auth);
    if (rc < 0)
        return rc;
    return spawn_server(r);
}

int
drv_test_redis_start(struct drv_test_redis *r)
{
    return redis_start(r, -1);
}

int
drv_test_redis_start_tls(struct drv_test_redis *r, int auth_clients)
{
    return redis_start(r, auth_clients ? 1 : 0);
}

int
drv_test_hosts_entry(void)
{
    char line[512];
    FILE *f = fopen("/etc/hosts", "r");
    int found = 0;

    if (f == NULL)
        return -errno;
    while (!found && fgets(line, sizeof line, f) != NULL)
        if (line[0] != '#' && strstr(line, DRV_TEST_HOSTS_NAME) != NULL)
            found = 1;
    fclose(f);
    if (found)
        return 0;
    f = fopen("/etc/hosts", "a");
    if (f == NULL)
        return -errno;
    fprintf(f, "127.0.0.1 " DRV_TEST_HOSTS_NAME "\n");
    return fclose(f) == 0 ? 0 : -errno;
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
    kid_del(r->pid);
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
    redisContext *c = r->tls ? redisConnectUnixWithTimeout(r->sock, tv)
                             : redisConnectWithTimeout("127.0.0.1", r->port,
                                                       tv);

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
drv_test_redis_vok(redisContext *c, const char *fmt, va_list ap)
{
    redisReply *rep = redisvCommand(c, fmt, ap);

    if (rep == NULL)
        fail_msg("redis command failed: %s (%s)", fmt, c->errstr);
    if (rep->type == REDIS_REPLY_ERROR)
        fail_msg("redis: %s: %s", fmt, rep->str);
    freeReplyObject(rep);
}

void
drv_test_redis_ok(redisContext *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    drv_test_redis_vok(c, fmt, ap);
    va_end(ap);
}

void
drv_test_redis_flush(const struct drv_test_redis *r)
{
    redisContext *c = drv_test_redis_connect(r);

    assert_non_null(c);
    freeReplyObject(drv_test_redis_cmd(c, "FLUSHALL"));
    redisFree(c);
}

void
drv_test_filter_from_env(void)
{
    const char *f = getenv("DROVER_TEST_FILTER");

    if (f != NULL && *f != '\0')
        cmocka_set_test_filter(f);
}

/* ------------------------------------------------ the Redis fixture */

struct drv_test_redis drv_test_srv;

int
drv_test_redis_group_setup(void **st)
{
    int rc;

    (void)st;
    signal(SIGPIPE, SIG_IGN); /* a test may write to a closed socket */
    rc = drv_test_redis_start(&drv_test_srv);
    if (rc < 0)
        fprintf(stderr, "harness: cannot start redis-server: %s\n",
                strerror(-rc));
    return rc == 0 ? 0 : -1;
}

int
drv_test_redis_tls_group_setup(void **st)
{
    int rc;

    (void)st;
    signal(SIGPIPE, SIG_IGN);
    rc = drv_test_redis_start_tls(&drv_test_srv, 0);
    if (rc < 0)
        fprintf(stderr, "harness: cannot start a TLS redis-server: %s\n",
                strerror(-rc));
    return rc == 0 ? 0 : -1;
}

int
drv_test_redis_group_teardown(void **st)
{
    (void)st;
    drv_test_watchdog_stop();
    drv_test_redis_cleanup(&drv_test_srv);
    return 0;
}

void
drv_test_redis_fresh(void)
{
    if (drv_test_srv.pid == 0 && !drv_test_srv.external)
        assert_int_equal(drv_test_redis_restart(&drv_test_srv), 0);
    drv_test_redis_flush(&drv_test_srv);
    drv_test_watchdog_start(DRV_TEST_WATCHDOG_S);
}

long long
drv_test_redis_info(redisContext *c, const char *name)
{
    redisReply *r = drv_test_redis_cmd(c, "INFO");
    size_t len = strlen(name);
    long long v = -1;
    const char *line;

    for (line = r->type == REDIS_REPLY_STRING ? r->str : NULL;
         line != NULL && *line != '\0'; line = strchr(line, '\n')) {
        if (*line == '\n')
            line++;
        if (strncmp(line, name, len) == 0 && line[len] == ':') {
            v = atoll(line + len + 1);
            break;
        }
    }
    freeReplyObject(r);
    return v;
}

const redisReply *
drv_test_field(const redisReply *fv, const char *name)
{
    const redisReply *v = NULL;
    size_t i, n = strlen(name);

    assert_int_equal(fv->type, REDIS_REPLY_ARRAY);
    for (i = 0; i + 1 < fv->elements; i += 2)
        if (fv->element[i]->type == REDIS_REPLY_STRING &&
            fv->element[i]->len == n &&
            memcmp(fv->element[i]->str, name, n) == 0)
            v = fv->element[i + 1];
    return v;
}

char *
drv_test_hget_on(redisContext *c, const char *key, const char *field)
{
    redisReply *r = redisCommand(c, "HGET %s %s", key, field);
    char *v = (r && r->type == REDIS_REPLY_STRING) ? strdup(r->str) : NULL;

    freeReplyObject(r);
    return v;
}

int
drv_test_hget_is_on(redisContext *c, const char *key, const char *field,
                    const char *want)
{
    char *v = drv_test_hget_on(c, key, field);
    int is = v != NULL && strcmp(v, want) == 0;

    free(v);
    return is;
}

void
drv_test_expect_hget_on(redisContext *c, const char *key, const char *field,
                        const char *want)
{
    char *v = drv_test_hget_on(c, key, field);

    if (v == NULL || strcmp(v, want) != 0)
        fail_msg("HGET %s %s: \"%s\", want \"%s\"", key, field,
                 v != NULL ? v : "(none)", want);
    free(v);
}

/* A counter of one "cmdstat_NAME:calls=N,usec=...,rejected_calls=N,..."
 * line of INFO commandstats (line ends at end), 0 when it lacks it. */
static long long
cmdstat_field(const char *line, const char *end, const char *field)
{
    size_t n = strlen(field);
    const char *p;

    for (p = memchr(line, ':', (size_t)(end - line)); p != NULL && p < end;
         p = memchr(p + 1, ',', (size_t)(end - p - 1)))
        if ((size_t)(end - p - 1) > n && strncmp(p + 1, field, n) == 0 &&
            p[1 + n] == '=')
            return atoll(p + 2 + n);
    return 0;
}

long long
drv_test_redis_calls(redisContext *c, const char *name, int rejected)
{
    redisReply *r = drv_test_redis_cmd(c, "INFO commandstats");
    size_t len = name != NULL ? strlen(name) : 0;
    const char *line, *end, *cmd;
    long long n = 0;

    assert_int_equal(r->type, REDIS_REPLY_STRING);
    for (line = r->str; *line != '\0'; line = *end != '\0' ? end + 1 : end) {
        end = strchr(line, '\n');
        if (end == NULL)
            end = line + strlen(line);
        if (strncmp(line, "cmdstat_", 8) != 0)
            continue;
        cmd = line + 8;
        if (name != NULL ? strncmp(cmd, name, len) != 0 || cmd[len] != ':'
                         : strncmp(cmd, "info:", 5) == 0)
            continue;
        n += cmdstat_field(line, end, "calls");
        if (rejected)
            n += cmdstat_field(line, end, "rejected_calls");
    }
    freeReplyObject(r);
    return n;
}

/* The value of field key of one CLIENT LIST line (line .. end: key=value
 * pairs separated by spaces, as logfmt) into out (size n, "" when the
 * line lacks it). */
static void
client_field(const char *line, const char *end, const char *key, char *out,
             size_t n)
{
    struct drv_buf v;

    drv_buf_init(&v);
    drv_logfmt_get(line, (size_t)(end - line), key, &v);
    snprintf(out, n, "%.*s", (int)v.len, v.len > 0 ? v.data : "");
    drv_buf_fini(&v);
}

int
drv_test_clients(redisContext *c, struct drv_test_client *out, int n)
{
    redisReply *r = drv_test_redis_cmd(c, "CLIENT LIST");
    const char *line, *end;
    char num[32];
    int k = 0;

    assert_int_equal(r->type, REDIS_REPLY_STRING);
    for (line = r->str + strspn(r->str, "\r\n"); *line != '\0';
         line = end + strspn(end, "\r\n")) {
        end = line + strcspn(line, "\r\n");
        if (k == n)
            fail_msg("CLIENT LIST: more than %d connections", n);
        {
            struct drv_test_client *e = &out[k];

            client_field(line, end, "id", num, sizeof num);
            e->id = atoll(num);
            client_field(line, end, "name", e->name, sizeof e->name);
            client_field(line, end, "cmd", e->cmd, sizeof e->cmd);
            client_field(line, end, "qbuf", num, sizeof num);
            e->qbuf = atoll(num);
        }
        k++;
    }
    freeReplyObject(r);
    return k;
}

/* ------------------------------------------------ child processes */

/* Open path for a child's output (NULL: /dev/null) onto fd. */
static void
child_output(const char *path, int flags, int fd)
{
    int o = path != NULL ? open(path, O_WRONLY | O_CREAT | flags, 0600)
                         : open("/dev/null", O_WRONLY);

    if (o >= 0) {
        dup2(o, fd);
        close(o);
    }
}

/* Fork argv with its stdout and stderr in files (the same path: one file
 * opened once, appended to); the pid into p. */
static int
spawn(struct drv_test_proc *p, const char *const *argv, const char *out,
      const char *err, int flags, const char *const *env_extra)
{
    pid_t pid;

    memset(p, 0, sizeof *p);
    snprintf(p->log, sizeof p->log, "%s", out != NULL ? out : "");
    pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        size_t i;
        int fd;

        child_output(out, flags, 1);
        if (err != NULL && out != NULL && strcmp(err, out) == 0)
            dup2(1, 2);
        else
            child_output(err, flags, 2);
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
    kid_add(pid);
    return 0;
}

int
drv_test_spawn(struct drv_test_proc *p, const char *const *argv,
               const char *log_path, const char *const *env_extra)
{
    return spawn(p, argv, log_path, log_path, O_APPEND, env_extra);
}

int
drv_test_spawn_io(struct drv_test_proc *p, const char *const *argv,
                  const char *out_path, const char *err_path,
                  const char *const *env_extra)
{
    return spawn(p, argv, out_path, err_path, O_TRUNC, env_extra);
}

/* Record p's wait status st; its exit code, or 128+signal. */
static int
reaped(struct drv_test_proc *p, int st)
{
    kid_del(p->pid);
    p->pid = 0;
    p->status = st;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + WTERMSIG(st);
}

int
drv_test_wait(struct drv_test_proc *p, int64_t timeout_ms)
{
    struct drv_test_poll poll;
    int st;

    if (p->pid <= 0)
        return -ECHILD;
    drv_test_poll_init(&poll, timeout_ms);
    for (;;) {
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid)
            return reaped(p, st);
        if (r < 0)
            return -errno;
        if (!drv_test_poll_next(&poll))
            return -ETIMEDOUT;
    }
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
        reaped(p, st);
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
    kid_add(pid);
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
    if (rc == -ETIMEDOUT)
        drv_test_kill(&p, SIGKILL);
    return rc;
}

/* /proc/PID/stat of pid: *state, *ppid and *pgid (0 when unreadable). */
static int
proc_stat(long pid, char *state, long *ppid, long *pgid)
{
    char path[64], buf[512];
    FILE *f;
    char *p;

    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    p = fgets(buf, sizeof buf, f);
    fclose(f);
    if (p == NULL || (p = strrchr(buf, ')')) == NULL)
        return 0;
    return sscanf(p + 1, " %c %ld %ld", state, ppid, pgid) == 3;
}

long
drv_test_pid_pgid(long pid)
{
    long ppid, pgid;
    char st;

    if (!proc_stat(pid, &st, &ppid, &pgid) || st == 'Z' || st == 'X')
        return -1;
    return pgid;
}

int
drv_test_pid_alive(long pid)
{
    long ppid, pgid;
    char st;

    return proc_stat(pid, &st, &ppid, &pgid) && st != 'Z' && st != 'X';
}

/* Call fn(pid, arg) for every process; stops when fn returns nonzero
 * and returns that value. */
static long
each_pid(long (*fn)(long pid, void *arg), void *arg)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    long rc = 0;
    char *end;
    long pid;

    if (d == NULL)
        return 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        pid = strtol(e->d_name, &end, 10);
        if (*end == '\0' && pid > 0)
            rc = fn(pid, arg);
    }
    closedir(d);
    return rc;
}

/* Processes to count: those of a parent, or of a group, live or zombie. */
struct proc_filter {
    long ppid;                  /* parent wanted, or -1 for any */
    long pgid;                  /* group wanted, or -1 for any */
    int zombies;                /* count zombies (1) or live ones (0) */
    int n;                      /* matches seen */
};

static long
count_match(long pid, void *arg)
{
    struct proc_filter *c = arg;
    long ppid, pgid;
    char st;
    int zombie;

    if (!proc_stat(pid, &st, &ppid, &pgid))
        return 0;
    zombie = st == 'Z' || st == 'X';
    if ((c->ppid < 0 || ppid == c->ppid) &&
        (c->pgid < 0 || pgid == c->pgid) && zombie == c->zombies)
        c->n++;
    return 0;
}

int
drv_test_pgid_alive(long pgid)
{
    struct proc_filter c = {-1, pgid, 0, 0};

    (void)each_pid(count_match, &c);
    return c.n;
}

int
drv_test_zombie_children(long ppid)
{
    struct proc_filter c = {ppid, -1, 1, 0};

    (void)each_pid(count_match, &c);
    return c.n;
}

int
drv_test_fd_count(long pid)
{
    char path[64];
    struct dirent *e;
    DIR *d;
    int n = 0;

    snprintf(path, sizeof path, "/proc/%ld/fd", pid);
    d = opendir(path);
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return pid == (long)getpid() ? n - 1 : n; /* not the DIR's own fd */
}

struct named_child {
    long ppid;                  /* the parent */
    const char *comm;           /* the name wanted */
};

static long
match_child(long pid, void *arg)
{
    struct named_child *c = arg;
    char path[64], name[64] = "";
    long ppid, pgid;
    char st;
    FILE *f;

    if (!proc_stat(pid, &st, &ppid, &pgid) || ppid != c->ppid ||
        st == 'Z' || st == 'X')
        return 0;
    snprintf(path, sizeof path, "/proc/%ld/comm", pid);
    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    if (fgets(name, sizeof name, f) == NULL)
        name[0] = '\0';
    fclose(f);
    name[strcspn(name, "\n")] = '\0';
    return strcmp(name, c->comm) == 0 ? pid : 0;
}

long
drv_test_child_named(long ppid, const char *comm)
{
    struct named_child c = {ppid, comm};
    long pid = each_pid(match_child, &c);

    return pid > 0 ? pid : -1;
}

/* The file at path, NUL-terminated (caller frees), or NULL. */
static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL, *nb;
    size_t len = 0, cap = 0, n;

    if (f == NULL)
        return NULL;
    /* read to EOF: /proc files have no size */
    do {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 65536;
            nb = realloc(buf, cap + 1);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
    } while (n > 0);
    buf[len] = '\0';
    fclose(f);
    return buf;
}

int
drv_test_file_count(const char *path, const char *needle)
{
    char *buf = slurp(path);
    const char *at;
    int n = 0;

    for (at = buf; at != NULL && (at = strstr(at, needle)) != NULL;
         at += strlen(needle))
        n++;
    free(buf);
    return n;
}

int
drv_test_file_contains(const char *path, const char *needle)
{
    return drv_test_file_count(path, needle) > 0;
}

int
drv_test_file_lines(const char *path)
{
    return drv_test_file_count(path, "\n");
}

long
drv_test_file_num(const char *dir, const char *name)
{
    char path[600];
    FILE *f;
    long v = 0;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld", &v) != 1)
        v = -1;
    fclose(f);
    return v;
}

void
drv_test_sleep_ms(int64_t ms)
{
    usleep((useconds_t)(ms * 1000));
}

/* ------------------------------------------------ watchdog */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
    int running;  /* th exists */
    int stop;     /* disarmed: th ends */
    int secs;     /* the guard */
} wd = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void *
watchdog_main(void *arg)
{
    struct timespec ts;
    int rc = 0;

    (void)arg;
    clock_gettime(CLOCK_REALTIME, &ts);
    pthread_mutex_lock(&wd.mu);
    ts.tv_sec += wd.secs;
    while (!wd.stop && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&wd.cv, &wd.mu, &ts);
    if (!wd.stop) {
        fprintf(stderr, "watchdog: test hung for %d s: killed %d children, "
                "aborting\n", wd.secs, kids_kill());
        abort();
    }
    pthread_mutex_unlock(&wd.mu);
    return NULL;
}

void
drv_test_watchdog_start(int secs)
{
    drv_test_watchdog_stop();
    pthread_mutex_lock(&wd.mu);
    wd.stop = 0;
    wd.secs = secs;
    pthread_mutex_unlock(&wd.mu);
    assert_int_equal(pthread_create(&wd.th, NULL, watchdog_main, NULL), 0);
    wd.running = 1;
}

void
drv_test_watchdog_stop(void)
{
    if (!wd.running)
        return;
    pthread_mutex_lock(&wd.mu);
    wd.stop = 1;
    pthread_cond_signal(&wd.cv);
    pthread_mutex_unlock(&wd.mu);
    pthread_join(wd.th, NULL);
    wd.running = 0;
}

/* ------------------------------------------------ wait_until */

static void (*wait_fail_fn)(void *arg);
static void *wait_fail_arg;

void
drv_test_poll_init(struct drv_test_poll *p, int64_t timeout_ms)
{
    p->start_ms = drv_test_now_ms();
    p->deadline_ms = p->start_ms + timeout_ms;
    p->delay_ms = 1;
    p->tries = 0;
}

int
drv_test_poll_next(struct drv_test_poll *p)
{
    int64_t left = p->deadline_ms - drv_test_now_ms();

    p->tries++;
    if (left <= 0)
        return 0;
    /* the last pause ends at the deadline: one more try follows it */
    drv_test_sleep_ms(left < p->delay_ms ? left : p->delay_ms);
    if (p->delay_ms < 50)
        p->delay_ms *= 2;
    return 1;
}

void
drv_test_on_wait_fail(void (*fn)(void *arg), void *arg)
{
    wait_fail_fn = fn;
    wait_fail_arg = arg;
}

void
drv_test_wait_failed(const char *file, int line, const struct drv_test_poll *p,
                     const char *what, ...)
{
    int64_t waited = drv_test_now_ms() - p->start_ms;
    char msg[1024];
    va_list ap;

    if (wait_fail_fn != NULL)
        wait_fail_fn(wait_fail_arg); /* the fixture's logs first */
    va_start(ap, what);
    vsnprintf(msg, sizeof msg, what, ap);
    va_end(ap);
    fail_msg("%s:%d: timed out after %lld ms (%d tries) waiting for %s",
             file, line, (long long)waited, p->tries, msg);
}

/* A guarded loop run: the loop, and whether the guard fired. */
struct loop_guard {
    struct drv_loop *loop;
    int fired;
};

static void
on_loop_guard(evutil_socket_t fd, short what, void *arg)
{
    struct loop_guard *g = arg;

    (void)fd;
    (void)what;
    g->fired = 1;
    drv_loop_stop(g->loop);
}

int
drv_test_loop_run(struct drv_loop *loop, int64_t timeout_ms)
{
    struct timeval tv = {(time_t)(timeout_ms / 1000),
                         (suseconds_t)(timeout_ms % 1000) * 1000};
    struct loop_guard g = {loop, 0};
    struct event *guard = evtimer_new(drv_loop_base(loop), on_loop_guard,
                                      &g);

    assert_non_null(guard);
    assert_int_equal(evtimer_add(guard, &tv), 0);
    assert_int_equal(drv_loop_run(loop), 0);
    event_free(guard);
    return g.fired ? -ETIMEDOUT : 0;
}

int
drv_test_pool_wait_stopping(struct drv_pool *pool)
{
    struct drv_pool_stats ps;
    struct drv_test_poll p;

    drv_test_poll_init(&p, DRV_TEST_WAIT_MS);
    do
        drv_pool_get_stats(pool, &ps);
    while (!ps.stopping && drv_test_poll_next(&p));
    return ps.stopping;
}

/* ------------------------------------------------ HTTP */

char *
drv_test_http_request(int port, const char *method, const char *path,
                      const char *hdrs, const char *body, size_t *len)
{
    char *req = NULL, clen[96] = "";
    int n;

    if (body != NULL)
        snprintf(clen, sizeof clen, "Content-Type: application/json\r\n"
                 "Content-Length: %zu\r\n", strlen(body));
    n = asprintf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                 "Connection: close\r\n%s%s\r\n%s", method, path, port,
                 hdrs != NULL ? hdrs : "", clen, body != NULL ? body : "");
    assert_true(n > 0);
    *len = (size_t)n;
    return req;
}

int
drv_test_dial(int port, int64_t timeout_ms)
{
    struct timeval tv = {(time_t)(timeout_ms / 1000),
                         (suseconds_t)(timeout_ms % 1000) * 1000};
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), e;

    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        e = -errno;
        close(fd);
        return e;
    }
    return fd;
}

int
drv_test_http(int port, const char *method, const char *path,
              const char *hdrs, const char *body, char *out, size_t n)
{
    size_t len;
    char *req = drv_test_http_request(port, method, path, hdrs, body, &len);
    int fd = drv_test_dial(port, DRV_TEST_WAIT_MS);

    assert_true(n > 0);
    out[0] = '\0';
    if (fd >= 0) {
        drv_test_send_all(fd, req, len);
        (void)drv_test_read_all(fd, out, n); /* a timeout keeps the part */
        close(fd);
    }
    free(req);
    return drv_test_http_status(out);
}

/* --------------------------------------------- servers by port */

/* A blocking client on a loopback port, NULL when it cannot connect. */
redisContext *
drv_test_connect_port(int port)
{
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);

    if (c != NULL && c->err) {
        redisFree(c);
        return NULL;
    }
    if (c != NULL)
        redisSetTimeout(c, tv);
    return c;
}

/* One command on a fresh connection to port: the reply, or NULL when the
 * server does not answer. */
redisReply *
drv_test_ask(int port, const char *fmt, ...)
{
    redisContext *c = drv_test_connect_port(port);
    redisReply *r = NULL;
    va_list ap;

    if (c == NULL)
        return NULL;
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    redisFree(c);
    return r;
}

void
drv_test_redis_external(struct drv_test_redis *r, int port)
{
    memset(r, 0, sizeof *r);
    r->port = port;
    r->external = 1;
    snprintf(r->url, sizeof r->url, "redis://127.0.0.1:%d/0", port);
}

/* PING answered with PONG. */
int
drv_test_pings(int port)
{
    redisReply *r = drv_test_ask(port, "PING");
    int ok = r != NULL && r->type == REDIS_REPLY_STATUS;

    if (r != NULL)
        freeReplyObject(r);
    return ok;
}
