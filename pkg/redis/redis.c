/*
 * redis.c -- one async Redis connection on the libevent loop (hiredis
 * 0.14.1): setup, per-command deadlines, reconnect with backoff, scripts.
 *
 * DESIGN
 * A struct drv_redis owns at most one live redisAsyncContext (r->ac, NULL
 * when down) and rebuilds a fresh one for every attempt (hiredis has no
 * reconnect). States: DOWN -> CONNECTING -> SETUP -> READY -> DOWN ...
 * lost() is the single "this context is gone" transition; it clears r->ac
 * first, so whatever runs later sees DOWN, and schedules the retry timer.
 * It is reached from hiredis's failed-connect callback (after which hiredis
 * frees the context and never calls the disconnect callback), from the
 * disconnect callback, from the first NULL reply of an error teardown, and
 * from drop(). A callback for a context that is no longer r->ac is stale.
 *
 * We never free a context inside a hiredis callback: drop() (deadline,
 * failed setup, drv_redis_free) runs from our own timer or from the "kick"
 * event. Deadlines: each command stores an absolute deadline_ns; one lazy
 * timer is armed at the earliest one known and, when it fires, scans the
 * pending list (O(1) per command, O(n) per firing). A passed deadline
 * drops the whole connection: replies are FIFO, a late one cannot be
 * skipped. Unless a reply is still arriving (a large one takes longer
 * than any deadline meant for waiting): then the deadline moves on,
 * PROGRESS_NS at a time, while bytes keep coming.
 *
 * Completions: a reply is handed to the caller inside hiredis's reply
 * callback (it is borrowed from hiredis). Every other outcome (DRV_EDOWN
 * fail-fast, NULL replies of a dropped connection) goes on r->done and is
 * delivered by the kick event on a later turn, so user code never runs
 * inside hiredis's teardown nor inside the call that issued the command.
 * The kick drains only what was queued when it started, so a caller that
 * retries at once from its error callback cannot spin the loop.
 *
 * drv_redis_free only marks r freeing and kicks; the kick handler frees
 * the context (pending callbacks -> -ECANCELED) and then r. Until then r
 * stays valid for every callback that still names it, and every public
 * call on it fails at once with -ECANCELED.
 *
 * Invariants: at most one live context per drv_redis; the retry timer is
 * armed only while r->ac is NULL; every cmd is on exactly one of pending
 * (hiredis holds its callback) or done, or is being delivered; hiredis
 * calls on_reply exactly once per cmd, so each user callback runs once.
 * A real reply can only come from the live context: a context we let go
 * completes all its commands (NULL replies) before redisAsyncFree returns,
 * so commands need no generation tag; r->gen only names the context a
 * deferred drop is meant for.
 *
 * Loop thread only; no locks.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/libevent.h>

#include "drover/buf.h"
#include "drover/clock.h"
#include "drover/common.h"
#include "drover/error.h"
#include "drover/log.h"
#include "drover/loop.h"
#include "drover/redis.h"

#include "redis_int.h"

#define DEF_CONNECT_TIMEOUT_MS 2000
#define DEF_COMMAND_TIMEOUT_MS 5000
#define DEF_BACKOFF_INITIAL_MS 100
#define DEF_BACKOFF_MAX_MS 5000
#define DEF_KEEPALIVE_S 15
#define NAME_MAX_LEN 128
#define SMALL_ARGV 16
#define PROGRESS_NS (INT64_C(1000) * DRV_NS_PER_MS) /* see receiving() */
#define MAX_TIMEOUT_MS (INT64_C(366) * 24 * 3600 * 1000) /* a year */

enum cmd_where {
    CMD_NEW = 0,    /* not yet handed over */
    CMD_PENDING,    /* in hiredis's callback list, on r->pending */
    CMD_DONE        /* outcome decided, on r->done until the kick */
};

struct cmd {
    unsigned magic;
#define CMD_MAGIC 0xc3d0c3d0U
    struct drv_redis *r;       /* borrowed: owner, outlives every cmd */
    TAILQ_ENTRY(cmd) link;     /* on r->pending or r->done */
    enum cmd_where where;      /* which list */
    int64_t deadline_ns;       /* absolute monotonic; 0 = none */
    int expired;               /* its deadline dropped the connection */
    int status;                /* outcome while on r->done */
    drv_redis_reply_fn *cb;    /* completion; NULL = ignore */
    void *ctx;                 /* borrowed: the caller's */
    const struct drv_redis_script *script; /* borrowed: EVAL fallback */
    int retried;               /* the EVAL fallback was sent */
    int numkeys;               /* script: number of keys in argv */
    int argc;                  /* script: saved arguments */
    const char **argv;         /* owned: pointers into argbuf */
    size_t *argvlen;           /* owned */
    char *argbuf;              /* owned: the argument bytes */
};

TAILQ_HEAD(cmd_list, cmd);

struct drv_redis_script {
    unsigned magic;
#define SCRIPT_MAGIC 0x5c819700U
    char *text;                /* owned: Lua source */
    size_t len;                /* its length */
    char sha[DRV__REDIS_SHA1_HEX]; /* lowercase hex SHA1 of text */
};

struct drv_redis {
    unsigned magic;
#define DRV_REDIS_MAGIC 0x4ed15c0eU
    struct drv_loop *loop;     /* borrowed: outlives r */
    struct event_base *base;   /* borrowed: the loop's */
    struct drv_redis_url url;  /* parsed; wiped at free (password) */
    char url_log[400];         /* redacted, logfmt-quoted URL */
    char *name;                /* owned: CLIENT SETNAME, or NULL */
    const char *label;         /* borrowed: name or "redis", for logs */
    int64_t connect_timeout_ns; /* connect phase limit */
    int64_t command_timeout_ns; /* default per command */
    int64_t backoff_initial_ms; /* delay base of the first retry */
    int64_t backoff_max_ms;    /* cap of the delay */
    uint64_t retries;          /* retries since the last READY */
    int keepalive_s;           /* TCP keepalive idle; <= 0 off */
    drv_redis_state_fn *on_state; /* owner's hook; NULL after free */
    void *ctx;                 /* borrowed: for on_state */

    redisAsyncContext *ac;     /* borrowed from hiredis (it frees it):
                                  the live context, NULL when down */
    uint64_t gen;              /* attempt counter: one per context */
    enum drv_redis_state state; /* see the DESIGN comment */
    int64_t connect_deadline_ns; /* CONNECTING: give up at; else 0 */
    int64_t client_id;         /* CLIENT ID of this connection, -1 */
    uint64_t drop_gen;         /* drop context gen from the kick; 0 none */
    const char *drop_why;      /* static text: why */
    int notify_down;           /* on_state(DOWN) owed from the kick */
    size_t rx_seen;            /* unparsed reader bytes at the last
                                  deadline check */
    size_t max_string;         /* opts.max_string_bytes; 0 = no limit */
    redisReplyObjectFunctions fns; /* the reader's, createString wrapped
                                  (when max_string) */
    void *(*create_string)(const redisReadTask *, char *, size_t);
                               /* hiredis's own createString */
    int freeing;               /* drv_redis_free was called */
    unsigned fails;            /* failed attempts since the last READY */

    struct event *watch_ev;    /* owned: lazy deadline timer */
    int64_t watch_at_ns;       /* when watch_ev fires; 0 = not armed */
    struct event *retry_ev;    /* owned: backoff timer -> start_connect */
    struct event *kick_ev;     /* owned: user event: done list, drop,
                                  DOWN notice, teardown */
    struct cmd_list pending;   /* cmds inside hiredis, in send order */
    struct cmd_list done;      /* decided outcomes awaiting the kick */
    struct drv_redis_stats stats; /* counters */
};

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);
static void schedule_retry(struct drv_redis *r);

/* --------------------------------------------------------------- helpers */

static void
kick(struct drv_redis *r)
{
    event_active(r->kick_ev, EV_READ, 0);
}

static const char *
quote(char *buf, size_t n, const char *s)
{
    if (s == NULL || *s == '\0')
        s = "unknown";
    return drv_log_quote(buf, n, s, strlen(s));
}

static size_t
arglen(const char *const *argv, const size_t *argvlen, int i)
{
    return argvlen != NULL ? argvlen[i] : strlen(argv[i]);
}

/* Case-insensitive compare of a binary argument with a C string. */
static int
arg_is(const char *a, size_t alen, const char *word)
{
    size_t i;

    if (alen != strlen(word))
        return 0;
    for (i = 0; i < alen; i++) {
        char c = a[i];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c != word[i])
            return 0;
    }
    return 1;
}

/*
 * Commands that would change the protocol of the connection (hiredis 0.14
 * would mismatch callbacks or fail to parse RESP3) or silently undo our
 * setup (RESET drops AUTH, SELECT and the name).
 */
static int
check_argv(int argc, const char *const *argv, const size_t *argvlen)
{
    static const char *const banned[] = {"SUBSCRIBE", "PSUBSCRIBE",
        "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE",
        "MONITOR", "HELLO", "RESET"};
    size_t i, l0;
    int j;

    if (argc <= 0 || argv == NULL)
        return -EINVAL;
    for (j = 0; j < argc; j++)
        if (argv[j] == NULL)
            return -EINVAL;
    l0 = arglen(argv, argvlen, 0);
    for (i = 0; i < DRV_ARRAY_LEN(banned); i++)
        if (arg_is(argv[0], l0, banned[i]))
            return -EINVAL;
    return 0;
}

static int
ready(const struct drv_redis *r)
{
    return r->state == DRV_REDIS_READY && r->drop_gen != r->gen;
}

/* ------------------------------------------------------------- commands */

static struct cmd *
cmd_new(struct drv_redis *r, int64_t timeout_ms, drv_redis_reply_fn *cb,
        void *ctx)
{
    struct cmd *c = NULL;
    int64_t tmo;

    DRV_ALLOC_OBJ(c, CMD_MAGIC);
    c->r = r;
    c->cb = cb;
    c->ctx = ctx;
    if (timeout_ms > MAX_TIMEOUT_MS)
        timeout_ms = MAX_TIMEOUT_MS; /* no overflow below */
    tmo = timeout_ms == 0 ? r->command_timeout_ns
                          : timeout_ms * DRV_NS_PER_MS;
    c->deadline_ns = timeout_ms < 0 ? 0 : drv_clock_mono_ns() + tmo;
    return c;
}

static void
cmd_free(struct cmd *c)
{
    free(c->argv);
    free(c->argvlen);
    free(c->argbuf);
    c->magic = 0;
    free(c);
}

/* Run the caller's callback; the cmd is gone before it runs. */
static void
deliver(struct drv_redis *r, struct cmd *c, int status,
        const redisReply *reply)
{
    drv_redis_reply_fn *cb = c->cb;
    void *ctx = c->ctx;

    DRV_ASSERT(c->where == CMD_NEW);
    cmd_free(c);
    if (cb != NULL)
        cb(r, status, reply, ctx);
}

/* Decide an outcome now, deliver it from the kick. */
static void
complete_later(struct drv_redis *r, struct cmd *c, int status)
{
    DRV_ASSERT(c->where == CMD_NEW);
    c->status = status;
    c->where = CMD_DONE;
    TAILQ_INSERT_TAIL(&r->done, c, link);
    kick(r);
}

static void
fail_fast(struct drv_redis *r, struct cmd *c)
{
    r->stats.failed_fast++;
    complete_later(r, c, DRV_EDOWN);
}

static void
watch_arm(struct drv_redis *r, int64_t deadline_ns)
{
    struct timeval tv;

    if (deadline_ns == 0)
        return;
    if (r->watch_at_ns != 0 && r->watch_at_ns <= deadline_ns)
        return;
    r->watch_at_ns = deadline_ns;
    tv = drv_clock_tv_until(deadline_ns);
    DRV_AZ(event_add(r->watch_ev, &tv));
}

/* Hand c to hiredis on the live context. */
static int
send_argv(struct drv_redis *r, struct cmd *c, int argc, const char **argv,
          const size_t *argvlen)
{
    DRV_AN(r->ac);
    /* REDIS_ERR only for DISCONNECTING/FREEING (never the case for r->ac:
     * lost() clears it before either) or out of memory. */
    if (redisAsyncCommandArgv(r->ac, on_reply, c, argc, argv, argvlen) !=
        REDIS_OK)
        return -ENOMEM;
    c->where = CMD_PENDING;
    TAILQ_INSERT_TAIL(&r->pending, c, link);
    r->stats.commands++;
    watch_arm(r, c->deadline_ns);
    return 0;
}

/* ------------------------------------------------------- state changes */

/*
 * The live context is gone (or about to be freed by the caller). Clears
 * r->ac, never touches the context.
 */
static void
lost(struct drv_redis *r, const char *why)
{
    enum drv_redis_state prev = r->state;
    char q[160];

    r->ac = NULL;
    r->state = DRV_REDIS_DOWN;
    r->client_id = -1;
    r->connect_deadline_ns = 0;
    r->drop_gen = 0;
    event_del(r->watch_ev);
    r->watch_at_ns = 0;
    quote(q, sizeof q, why);
    if (prev == DRV_REDIS_READY) {
        r->stats.disconnects++;
        r->fails = 0;
        if (r->freeing) {
            DRV_LOG_DEBUG("redis closed", "conn=%s", r->label);
        } else {
            DRV_LOG_WARN("redis connection lost", "conn=%s url=%s reason=%s",
                         r->label, r->url_log, q);
            r->notify_down = 1;
            kick(r);
        }
    } else if (!r->freeing) {
        r->fails++;
        if (r->fails == 1)
            DRV_LOG_WARN("redis connect failed",
                          "conn=%s url=%s reason=%s state=%s", r->label,
                          r->url_log, q,
                          prev == DRV_REDIS_SETUP ? "setup" : "connect");
        else
            DRV_LOG_DEBUG("redis connect failed",
                          "conn=%s reason=%s attempt=%u", r->label, q,
                          r->fails);
    }
    if (!r->freeing)
        schedule_retry(r);
}

/* Drop the live context; never from inside a hiredis callback. Every
 * pending command comes back through on_reply with NULL. */
static void
drop(struct drv_redis *r, const char *why)
{
    redisAsyncContext *ac = r->ac;

    DRV_AN(ac);
    lost(r, why);
    redisAsyncFree(ac);
}

static void
schedule_retry(struct drv_redis *r)
{
    struct timeval tv;
    int64_t delay;

    /* doubling from the initial base, capped, equal jitter: a fleet of
     * workers does not reconnect in step */
    delay = drv_backoff_ms(++r->retries, r->backoff_initial_ms,
                           r->backoff_max_ms, drv_random64());
    DRV_LOG_DEBUG("redis retry scheduled", "conn=%s delay_ms=%lld",
                  r->label, (long long)delay);
    tv = drv_clock_tv_from_ns(delay * DRV_NS_PER_MS);
    DRV_AZ(event_add(r->retry_ev, &tv));
}

static void
set_keepalive(int fd, int idle_s)
{
    int on = 1, intvl = idle_s / 3 > 0 ? idle_s / 3 : 1, cnt = 3;

    /* Best effort, and on the fd directly: hiredis's redisKeepAlive()
     * would set c->err on failure and so kill the connection. */
    (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
}

/* ------------------------------------------------------------ setup */

static int
setup_reply_ok(struct drv_redis *r, int status, const redisReply *reply,
               const char *step)
{
    char q[300];

    /* A failed status means the context is already gone: lost() ran. */
    if (r->freeing || status < 0 || r->state != DRV_REDIS_SETUP ||
        r->drop_gen == r->gen)
        return 0;
    if (reply->type != REDIS_REPLY_ERROR)
        return 1;
    drv_log_quote(q, sizeof q, reply->str, reply->len);
    /* loud once per failure streak (a wrong password retries forever) */
    if (r->fails == 0)
        DRV_LOG_ERROR("redis setup failed", "conn=%s step=\"%s\" error=%s",
                      r->label, step, q);
    else
        DRV_LOG_DEBUG("redis setup failed", "conn=%s step=\"%s\" error=%s",
                      r->label, step, q);
    r->drop_gen = r->gen;
    r->drop_why = "setup command failed";
    kick(r);
    return 0;
}

static void
on_auth(struct drv_redis *r, int status, const redisReply *reply, void *ctx)
{
    (void)ctx;
    (void)setup_reply_ok(r, status, reply, "AUTH");
}

static void
on_select(struct drv_redis *r, int status, const redisReply *reply,
          void *ctx)
{
    (void)ctx;
    (void)setup_reply_ok(r, status, reply, "SELECT");
}

static void
on_setname(struct drv_redis *r, int status, const redisReply *reply,
           void *ctx)
{
    (void)ctx;
    (void)setup_reply_ok(r, status, reply, "CLIENT SETNAME");
}

static void
on_client_id(struct drv_redis *r, int status, const redisReply *reply,
             void *ctx)
{
    (void)ctx;
    if (!setup_reply_ok(r, status, reply, "CLIENT ID"))
        return;
    if (reply->type != REDIS_REPLY_INTEGER) {
        DRV_LOG_ERROR("redis setup failed", "conn=%s step=\"CLIENT ID\" "
                      "error=\"not an integer\"", r->label);
        r->drop_gen = r->gen;
        r->drop_why = "bad CLIENT ID reply";
        kick(r);
        return;
    }
    r->client_id = reply->integer;
    r->state = DRV_REDIS_READY;
    r->retries = 0; /* only a full setup resets the backoff */
    r->stats.connects++;
    DRV_LOG_INFO("redis connected",
                 "conn=%s url=%s client_id=%lld attempts=%u", r->label,
                 r->url_log, (long long)r->client_id, r->fails + 1);
    r->fails = 0;
    if (r->on_state != NULL)
        r->on_state(r, DRV_REDIS_READY, r->ctx);
}

static void
setup_cmd(struct drv_redis *r, drv_redis_reply_fn *fn, int argc,
          const char **argv)
{
    struct cmd *c = cmd_new(r, 0, fn, NULL);

    if (send_argv(r, c, argc, argv, NULL) != 0) {
        cmd_free(c);
        r->drop_gen = r->gen;
        r->drop_why = "out of memory in setup";
        kick(r);
    }
}

/* Pipelined in one write: AUTH, SELECT, CLIENT SETNAME, CLIENT ID. */
static void
send_setup(struct drv_redis *r)
{
    const char *argv[4];
    char db[16];

    if (r->url.password[0] != '\0') {
        argv[0] = "AUTH";
        if (r->url.user[0] != '\0') {
            argv[1] = r->url.user;
            argv[2] = r->url.password;
            setup_cmd(r, on_auth, 3, argv);
        } else {
            argv[1] = r->url.password;
            setup_cmd(r, on_auth, 2, argv);
        }
    }
    if (r->url.db != 0) {
        snprintf(db, sizeof db, "%d", r->url.db);
        argv[0] = "SELECT";
        argv[1] = db;
        setup_cmd(r, on_select, 2, argv);
    }
    if (r->name != NULL) {
        argv[0] = "CLIENT";
        argv[1] = "SETNAME";
        argv[2] = r->name;
        setup_cmd(r, on_setname, 3, argv);
    }
    argv[0] = "CLIENT";
    argv[1] = "ID";
    setup_cmd(r, on_client_id, 2, argv);
}

/* ------------------------------------------------- hiredis callbacks */

static void
on_connect(const redisAsyncContext *ac, int status)
{
    struct drv_redis *r;

    DRV_CAST(r, ac->data, DRV_REDIS_MAGIC);
    if (r->ac != ac)
        return; /* stale: we already let it go */
    if (status != REDIS_OK) {
        /* hiredis frees ac when we return; no disconnect callback */
        lost(r, ac->c.errstr);
        return;
    }
    r->state = DRV_REDIS_SETUP;
    r->connect_deadline_ns = 0;
    DRV_LOG_DEBUG("redis socket connected", "conn=%s", r->label);
    /* Commands issued here go out in the write hiredis does right after
     * this callback returns. */
    send_setup(r);
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
    struct drv_redis *r;

    (void)status;
    DRV_CAST(r, ac->data, DRV_REDIS_MAGIC);
    if (r->ac == ac)
        lost(r, ac->c.errstr[0] ? ac->c.errstr : "connection closed");
}

static int send_script(struct drv_redis *r, struct cmd *c, int by_sha);

static void
on_reply(redisAsyncContext *ac, void *reply_v, void *privdata)
{
    const redisReply *reply = reply_v;
    struct drv_redis *r;
    struct cmd *c;
    int rc;

    DRV_CAST(c, privdata, CMD_MAGIC);
    r = c->r;
    DRV_CHECK_OBJ(r, DRV_REDIS_MAGIC);
    DRV_ASSERT(c->where == CMD_PENDING);
    TAILQ_REMOVE(&r->pending, c, link);
    c->where = CMD_NEW;
    if (reply == NULL) {
        /* The context is being torn down. If it is still ours, hiredis
         * found the error (EOF, reset): this is the first news of it. */
        if (r->ac == ac)
            lost(r, ac->c.errstr[0] ? ac->c.errstr : "connection closed");
        complete_later(r, c, r->freeing ? -ECANCELED
                             : c->expired ? -ETIMEDOUT : DRV_EDOWN);
        return;
    }
    if (r->freeing) {
        deliver(r, c, -ECANCELED, NULL);
        return;
    }
    if (c->script != NULL && !c->retried && r->ac == ac && ready(r) &&
        drv_redis_reply_error_is(reply, "NOSCRIPT")) {
        c->retried = 1;
        rc = send_script(r, c, 0);
        if (rc == 0)
            return;
        deliver(r, c, rc, NULL);
        return;
    }
    deliver(r, c, 0, reply);
}

/* ------------------------------------------------------- our events */

/*
 * The reader's createString when max_string is set: a string reply
 * longer than that becomes an empty one whose integer holds its length
 * (drv_redis_reply_len), so the bytes are not copied once more out of
 * the read buffer into a reply nobody will use.
 */
static void *
create_string(const redisReadTask *task, char *str, size_t len)
{
    struct drv_redis *r;
    redisReply *reply;

    DRV_CAST(r, task->privdata, DRV_REDIS_MAGIC);
    if (task->type != REDIS_REPLY_STRING || len <= r->max_string)
        return r->create_string(task, str, len);
    reply = r->create_string(task, str, 0);
    if (reply != NULL)
        reply->integer = (long long)len;
    return reply;
}

static void
start_connect(struct drv_redis *r)
{
    redisAsyncContext *ac;
    char why[128];

    r->gen++;
    r->stats.attempts++;
    r->state = DRV_REDIS_CONNECTING;
    if (r->url.is_unix)
        ac = redisAsyncConnectUnix(r->url.path);
    else
        ac = redisAsyncConnect(r->url.host, r->url.port);
    if (ac == NULL) {
        lost(r, "out of memory");
        return;
    }
    if (ac->err) {
        /* Failed synchronously (a missing unix socket): no callback will
         * ever run for it. */
        snprintf(why, sizeof why, "%s", ac->c.errstr);
        redisAsyncFree(ac);
        lost(r, why);
        return;
    }
    ac->data = r;
    if (r->max_string > 0) {
        r->fns = *ac->c.reader->fn;
        r->create_string = r->fns.createString;
        r->fns.createString = create_string;
        ac->c.reader->fn = &r->fns;
        ac->c.reader->privdata = r;
    }
    DRV_ASSERT(redisLibeventAttach(ac, r->base) == REDIS_OK);
    DRV_ASSERT(redisAsyncSetConnectCallback(ac, on_connect) == REDIS_OK);
    DRV_ASSERT(redisAsyncSetDisconnectCallback(ac, on_disconnect) ==
               REDIS_OK);
    if (!r->url.is_unix && r->keepalive_s > 0)
        set_keepalive(ac->c.fd, r->keepalive_s);
    r->ac = ac;
    r->connect_deadline_ns = drv_clock_mono_ns() + r->connect_timeout_ns;
    watch_arm(r, r->connect_deadline_ns);
    DRV_LOG_DEBUG("redis connecting", "conn=%s url=%s gen=%llu", r->label,
                  r->url_log, (unsigned long long)r->gen);
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct drv_redis *r;

    (void)fd;
    (void)what;
    DRV_CAST(r, arg, DRV_REDIS_MAGIC);
    if (!r->freeing && r->ac == NULL)
        start_connect(r);
}

/* A reply has been arriving since the last deadline check: the reader
 * holds unparsed bytes, and more (or other) than then. */
static int
receiving(struct drv_redis *r)
{
    const redisReader *rd = r->ac->c.reader;
    size_t len = rd->len - rd->pos;
    int moved = len > 0 && len != r->rx_seen;

    r->rx_seen = len;
    return moved;
}

static void
on_watch(evutil_socket_t fd, short what, void *arg)
{
    struct drv_redis *r;
    struct cmd *c;
    int64_t now, next = 0;
    int expired = 0, npending = 0;

    (void)fd;
    (void)what;
    DRV_CAST(r, arg, DRV_REDIS_MAGIC);
    r->watch_at_ns = 0;
    if (r->ac == NULL || r->freeing)
        return;
    now = drv_clock_mono_ns();
    if (r->connect_deadline_ns != 0) {
        if (now >= r->connect_deadline_ns) {
            r->stats.timeouts++;
            drop(r, "connect timed out");
            return;
        }
        next = r->connect_deadline_ns;
    }
    TAILQ_FOREACH(c, &r->pending, link) {
        npending++;
        if (c->deadline_ns == 0)
            continue;
        if (c->deadline_ns <= now) {
            c->expired = 1;
            expired++;
        } else if (next == 0 || c->deadline_ns < next) {
            next = c->deadline_ns;
        }
    }
    if (expired > 0 && receiving(r)) {
        /* a reply is still arriving (a big one): it gets PROGRESS_NS
         * more from now, as long as bytes keep coming */
        TAILQ_FOREACH(c, &r->pending, link)
            if (c->expired) {
                c->expired = 0;
                c->deadline_ns = now + PROGRESS_NS;
            }
        watch_arm(r, now + PROGRESS_NS);
        return;
    }
    if (expired > 0) {
        r->stats.timeouts++;
        DRV_LOG_WARN("redis command timed out", "conn=%s expired=%d "
                     "pending=%d", r->label, expired, npending);
        drop(r, r->state == DRV_REDIS_SETUP ? "setup command timed out"
                                            : "command timed out");
        return;
    }
    watch_arm(r, next);
}

static void
teardown(struct drv_redis *r)
{
    struct cmd *c;
    redisAsyncContext *ac = r->ac;

    event_del(r->retry_ev);
    event_del(r->watch_ev);
    if (ac != NULL) {
        lost(r, "closed");
        redisAsyncFree(ac); /* pending -> on_reply(NULL) -> r->done */
    }
    while ((c = TAILQ_FIRST(&r->done)) != NULL) {
        TAILQ_REMOVE(&r->done, c, link);
        c->where = CMD_NEW;
        deliver(r, c, -ECANCELED, NULL);
    }
    DRV_ASSERT(TAILQ_EMPTY(&r->pending));
    event_free(r->kick_ev);
    event_free(r->retry_ev);
    event_free(r->watch_ev);
    explicit_bzero(&r->url, sizeof r->url);
    free(r->name);
    r->magic = 0;
    free(r);
}

static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct drv_redis *r;
    struct cmd_list batch;
    struct cmd *c;

    (void)fd;
    (void)what;
    DRV_CAST(r, arg, DRV_REDIS_MAGIC);
    if (!r->freeing && r->drop_gen != 0 && r->drop_gen == r->gen &&
        r->ac != NULL)
        drop(r, r->drop_why);
    /* Only what is queued now: new failures wait for the next turn. */
    TAILQ_INIT(&batch);
    TAILQ_CONCAT(&batch, &r->done, link);
    while ((c = TAILQ_FIRST(&batch)) != NULL) {
        TAILQ_REMOVE(&batch, c, link);
        c->where = CMD_NEW;
        deliver(r, c, r->freeing ? -ECANCELED : c->status, NULL);
    }
    if (r->notify_down && !r->freeing) {
        r->notify_down = 0;
        if (r->on_state != NULL)
            r->on_state(r, DRV_REDIS_DOWN, r->ctx);
    }
    if (r->freeing)
        teardown(r);
}

/* ---------------------------------------------------------------- public */

static int
check_name(const char *name)
{
    size_t i, n = strlen(name);

    if (n == 0 || n > NAME_MAX_LEN)
        return -1;
    for (i = 0; i < n; i++)
        if ((unsigned char)name[i] <= ' ' || (unsigned char)name[i] >= 0x7f)
            return -1;
    return 0;
}

int
drv_redis_create(struct drv_loop *loop, const struct drv_redis_opts *opts,
                 struct drv_redis **out, struct drv_err *err)
{
    struct drv_redis *r = NULL;
    struct drv_redis_url url;
    const char *envpw;
    char red[320];
    int rc;

    *out = NULL;
    if (opts == NULL || opts->url == NULL)
        return drv_err_set(err, DRV_ECONFIG, "redis: a url is required");
    rc = drv_redis_url_parse(opts->url, &url, err);
    if (rc < 0)
        return rc;
    if (opts->name != NULL && check_name(opts->name) != 0) {
        rc = drv_err_set(err, DRV_ECONFIG,
                         "redis: name must be 1..%d printable characters "
                         "without spaces", NAME_MAX_LEN);
        goto out;
    }
    if (opts->connect_timeout_ms < 0 || opts->command_timeout_ms < 0 ||
        opts->backoff_initial_ms < 0 || opts->backoff_max_ms < 0) {
        rc = drv_err_set(err, DRV_ECONFIG,
                         "redis: timeouts and backoff must be >= 0");
        goto out;
    }
    envpw = getenv("DROVER_REDIS_PASSWORD");
    if (url.password[0] == '\0' && envpw != NULL && *envpw != '\0') {
        if (strlen(envpw) >= sizeof url.password) {
            rc = drv_err_set(err, DRV_ECONFIG,
                             "redis: DROVER_REDIS_PASSWORD is longer than "
                             "%zu bytes", sizeof url.password - 1);
            goto out;
        }
        strcpy(url.password, envpw);
    }
    if (opts->connect_timeout_ms > MAX_TIMEOUT_MS ||
        opts->command_timeout_ms > MAX_TIMEOUT_MS ||
        opts->backoff_initial_ms > MAX_TIMEOUT_MS ||
        opts->backoff_max_ms > MAX_TIMEOUT_MS) {
        rc = drv_err_set(err, DRV_ECONFIG,
                         "redis: timeouts and backoff must be <= 1 year");
        goto out;
    }
    DRV_ALLOC_OBJ(r, DRV_REDIS_MAGIC);
    r->loop = loop;
    r->base = drv_loop_base(loop);
    r->url = url;
    drv_redis_url_redact(opts->url, red, sizeof red);
    drv_log_quote(r->url_log, sizeof r->url_log, red, strlen(red));
    r->name = opts->name != NULL ? drv_xstrdup(opts->name) : NULL;
    r->label = r->name != NULL ? r->name : "redis";
    r->connect_timeout_ns = (opts->connect_timeout_ms > 0
                             ? opts->connect_timeout_ms
                             : DEF_CONNECT_TIMEOUT_MS) * DRV_NS_PER_MS;
    r->command_timeout_ns = (opts->command_timeout_ms > 0
                             ? opts->command_timeout_ms
                             : DEF_COMMAND_TIMEOUT_MS) * DRV_NS_PER_MS;
    r->backoff_initial_ms = opts->backoff_initial_ms > 0
                                ? opts->backoff_initial_ms
                                : DEF_BACKOFF_INITIAL_MS;
    r->backoff_max_ms = opts->backoff_max_ms > 0 ? opts->backoff_max_ms
                                                 : DEF_BACKOFF_MAX_MS;
    if (r->backoff_max_ms < r->backoff_initial_ms)
        r->backoff_max_ms = r->backoff_initial_ms;
    r->keepalive_s = opts->keepalive_s == 0 ? DEF_KEEPALIVE_S
                                            : opts->keepalive_s;
    r->on_state = opts->on_state;
    r->ctx = opts->ctx;
    r->max_string = opts->max_string_bytes;
    r->state = DRV_REDIS_DOWN;
    r->client_id = -1;
    TAILQ_INIT(&r->pending);
    TAILQ_INIT(&r->done);
    r->watch_ev = evtimer_new(r->base, on_watch, r);
    r->retry_ev = evtimer_new(r->base, on_retry, r);
    r->kick_ev = event_new(r->base, -1, 0, on_kick, r);
    if (r->watch_ev == NULL || r->retry_ev == NULL || r->kick_ev == NULL) {
        rc = drv_err_set(err, -ENOMEM, "redis: out of memory");
        goto out;
    }
    /* The first attempt runs on the first loop turn, not in here. */
    event_active(r->retry_ev, EV_TIMEOUT, 0);
    *out = r;
    r = NULL;
    rc = 0;
out:
    explicit_bzero(&url, sizeof url);
    if (r != NULL) {
        if (r->watch_ev != NULL)
            event_free(r->watch_ev);
        if (r->retry_ev != NULL)
            event_free(r->retry_ev);
        if (r->kick_ev != NULL)
            event_free(r->kick_ev);
        explicit_bzero(&r->url, sizeof r->url);
        free(r->name);
        r->magic = 0;
        free(r);
    }
    return rc;
}

void
drv_redis_free(struct drv_redis *r)
{
    if (r == NULL)
        return;
    DRV_CHECK_OBJ(r, DRV_REDIS_MAGIC);
    if (r->freeing)
        return;
    r->freeing = 1;
    r->on_state = NULL;
    r->ctx = NULL;
    r->notify_down = 0;
    event_del(r->retry_ev);
    kick(r);
}

int
drv_redis_command_timeout(struct drv_redis *r, int64_t timeout_ms, int argc,
                          const char *const *argv, const size_t *argvlen,
                          drv_redis_reply_fn *cb, void *ctx)
{
    struct cmd *c;
    int rc;

    DRV_CHECK_OBJ(r, DRV_REDIS_MAGIC);
    if (r->freeing)
        return -ECANCELED;
    rc = check_argv(argc, argv, argvlen);
    if (rc < 0)
        return rc;
    c = cmd_new(r, timeout_ms, cb, ctx);
    if (!ready(r)) {
        fail_fast(r, c);
        return 0;
    }
    /* hiredis takes char ** but only reads: the cast is safe. */
    rc = send_argv(r, c, argc, (const char **)argv, argvlen);
    if (rc < 0)
        cmd_free(c);
    return rc;
}

int
drv_redis_command(struct drv_redis *r, int argc, const char *const *argv,
                  const size_t *argvlen, drv_redis_reply_fn *cb, void *ctx)
{
    return drv_redis_command_timeout(r, 0, argc, argv, argvlen, cb, ctx);
}

int
drv_redis_cmd(struct drv_redis *r, drv_redis_reply_fn *cb, void *ctx, ...)
{
    const char *small[SMALL_ARGV];
    const char **argv = small;
    va_list ap;
    int argc = 0, i, rc;

    va_start(ap, ctx);
    while (va_arg(ap, const char *) != NULL)
        argc++;
    va_end(ap);
    if (argc > SMALL_ARGV)
        argv = drv_xmalloc((size_t)argc * sizeof *argv);
    va_start(ap, ctx);
    for (i = 0; i < argc; i++)
        argv[i] = va_arg(ap, const char *);
    va_end(ap);
    rc = drv_redis_command_timeout(r, 0, argc, argv, NULL, cb, ctx);
    if (argv != small)
        free(argv);
    return rc;
}

int
drv_redis_send(struct drv_redis *r, int64_t timeout_ms,
               const struct drv_argv *a, drv_redis_reply_fn *cb, void *ctx)
{
    return drv_redis_command_timeout(r, timeout_ms, a->argc,
                                     (const char *const *)a->argv,
                                     a->argvlen, cb, ctx);
}

int
drv_redis_multi(struct drv_redis *r, int64_t timeout_ms, size_t n,
                const struct drv_argv *cmds, drv_redis_reply_fn *cb,
                void *ctx)
{
    static const char *const multi[] = {"MULTI"};
    static const char *const exec[] = {"EXEC"};
    struct cmd *c;
    size_t i, l0;
    int rc;

    DRV_CHECK_OBJ(r, DRV_REDIS_MAGIC);
    if (r->freeing)
        return -ECANCELED;
    if (n == 0 || cmds == NULL || n > INT32_MAX)
        return -EINVAL;
    for (i = 0; i < n; i++) {
        rc = check_argv(cmds[i].argc, (const char *const *)cmds[i].argv,
                        cmds[i].argvlen);
        if (rc < 0)
            return rc;
        l0 = arglen((const char *const *)cmds[i].argv, cmds[i].argvlen, 0);
        if (arg_is(cmds[i].argv[0], l0, "MULTI") ||
            arg_is(cmds[i].argv[0], l0, "EXEC") ||
            arg_is(cmds[i].argv[0], l0, "DISCARD"))
            return -EINVAL;
    }
    c = cmd_new(r, timeout_ms, cb, ctx);
    if (!ready(r)) {
        fail_fast(r, c);
        return 0;
    }
    /* MULTI and the QUEUED replies have no callback of ours (fn NULL):
     * EXEC carries the deadline and the caller's callback. */
    if (redisAsyncCommandArgv(r->ac, NULL, NULL, 1, (const char **)multi,
                              NULL) != REDIS_OK)
        goto oom;
    for (i = 0; i < n; i++)
        if (redisAsyncCommandArgv(r->ac, NULL, NULL, cmds[i].argc,
                                  (const char **)cmds[i].argv,
                                  cmds[i].argvlen) != REDIS_OK)
            goto oom;
    if (send_argv(r, c, 1, (const char **)exec, NULL) == 0)
        return 0;
oom:
    /* A half-queued transaction must not stay on this connection. */
    cmd_free(c);
    r->drop_gen = r->gen;
    r->drop_why = "out of memory in MULTI";
    kick(r);
    return -ENOMEM;
}

int
drv_redis_unblock(struct drv_redis *via, const struct drv_redis *blocked,
                  drv_redis_reply_fn *cb, void *ctx)
{
    const char *argv[3];
    char id[24];

    DRV_CHECK_OBJ(blocked, DRV_REDIS_MAGIC);
    if (blocked->state != DRV_REDIS_READY || blocked->client_id < 0)
        return DRV_EDOWN;
    snprintf(id, sizeof id, "%lld", (long long)blocked->client_id);
    argv[0] = "CLIENT";
    argv[1] = "UNBLOCK";
    argv[2] = id;
    return drv_redis_command_timeout(via, 0, 3, argv, NULL, cb, ctx);
}

enum drv_redis_state
drv_redis_state(const struct drv_redis *r)
{
    DRV_CHECK_OBJ(r, DRV_REDIS_MAGIC);
    return r->state;
}

int64_t
drv_redis_client_id(const struct drv_redis *r)
{
    DRV_CHECK_OBJ(r, DRV_REDIS_MAGIC);
    return r->state == DRV_REDIS_READY ? r->client_id : -1;
}

const char *
drv_redis_name(const struct drv_redis *r)
{
    DRV_CHECK_OBJ(r, DRV_REDIS_MAGIC);
    return r->label;
}

void
drv_redis_get_stats(const struct drv_redis *r, struct drv_redis_stats *out)
{
    DRV_CHECK_OBJ(r, DRV_REDIS_MAGIC);
    *out = r->stats;
}

/* ----------------------------------------------------------------- reply */

int
drv_redis_reply_is_error(const redisReply *reply)
{
    return reply != NULL && reply->type == REDIS_REPLY_ERROR;
}

size_t
drv_redis_reply_len(const redisReply *reply)
{
    if (reply->type == REDIS_REPLY_STRING && reply->len == 0 &&
        reply->integer > 0)
        return (size_t)reply->integer; /* cut: see create_string */
    return reply->len;
}

int
drv_redis_reply_error_is(const redisReply *reply, const char *code)
{
    size_t n = strlen(code);

    if (!drv_redis_reply_is_error(reply) || reply->len < n)
        return 0;
    return memcmp(reply->str, code, n) == 0 &&
           (reply->len == n || reply->str[n] == ' ');
}

int
drv_redis_result(int status, const redisReply *reply, struct drv_err *err)
{
    if (status < 0)
        return drv_err_set(err, status, "%s", drv_strerror(status));
    if (reply == NULL)
        return drv_err_set(err, DRV_EPROTO, "no reply");
    if (reply->type == REDIS_REPLY_ERROR)
        return drv_err_set(err, DRV_EREDIS, "%.*s",
                           (int)(reply->len < DRV_ERR_MSG_MAX
                                     ? reply->len : DRV_ERR_MSG_MAX),
                           reply->str);
    drv_err_clear(err);
    return 0;
}

/* --------------------------------------------------------------- scripts */

struct drv_redis_script *
drv_redis_script_create(const char *text, size_t len)
{
    struct drv_redis_script *s = NULL;

    DRV_ALLOC_OBJ(s, SCRIPT_MAGIC);
    s->text = drv_xstrndup(text, len);
    s->len = len;
    drv__redis_sha1_hex(text, len, s->sha);
    return s;
}

void
drv_redis_script_free(struct drv_redis_script *s)
{
    if (s == NULL)
        return;
    DRV_CHECK_OBJ(s, SCRIPT_MAGIC);
    free(s->text);
    s->magic = 0;
    free(s);
}

const char *
drv_redis_script_sha(const struct drv_redis_script *s)
{
    DRV_CHECK_OBJ(s, SCRIPT_MAGIC);
    return s->sha;
}

/* EVALSHA sha|EVAL text, numkeys, saved args; on the live context. */
static int
send_script(struct drv_redis *r, struct cmd *c, int by_sha)
{
    const struct drv_redis_script *s = c->script;
    const char *small[SMALL_ARGV];
    size_t smalllen[SMALL_ARGV];
    const char **argv = small;
    size_t *argvlen = smalllen;
    char nk[16];
    int n = c->argc + 3, i, rc;

    if (n > SMALL_ARGV) {
        argv = drv_xmalloc((size_t)n * sizeof *argv);
        argvlen = drv_xmalloc((size_t)n * sizeof *argvlen);
    }
    snprintf(nk, sizeof nk, "%d", c->numkeys);
    argv[0] = by_sha ? "EVALSHA" : "EVAL";
    argvlen[0] = strlen(argv[0]);
    argv[1] = by_sha ? s->sha : s->text;
    argvlen[1] = by_sha ? DRV__REDIS_SHA1_HEX - 1 : s->len;
    argv[2] = nk;
    argvlen[2] = strlen(nk);
    for (i = 0; i < c->argc; i++) {
        argv[i + 3] = c->argv[i];
        argvlen[i + 3] = c->argvlen[i];
    }
    rc = send_argv(r, c, n, argv, argvlen);
    if (argv != small) {
        free(argv);
        free(argvlen);
    }
    return rc;
}

/* Append the arguments of a into c's saved vector (buffer at *off). */
static void
save_args(struct cmd *c, const struct drv_argv *a, size_t *off)
{
    int i;

    for (i = 0; i < a->argc; i++) {
        memcpy(c->argbuf + *off, a->argv[i], a->argvlen[i]);
        c->argv[c->argc] = c->argbuf + *off;
        c->argvlen[c->argc] = a->argvlen[i];
        c->argc++;
        *off += a->argvlen[i];
    }
}

int
drv_redis_eval(struct drv_redis *r, const struct drv_redis_script *s,
               int64_t timeout_ms, const struct drv_argv *keys,
               const struct drv_argv *args, drv_redis_reply_fn *cb,
               void *ctx)
{
    struct cmd *c;
    size_t total = 0, off = 0;
    int i, argc, rc;

    DRV_CHECK_OBJ(r, DRV_REDIS_MAGIC);
    DRV_CHECK_OBJ(s, SCRIPT_MAGIC);
    if (r->freeing)
        return -ECANCELED;
    if (keys->argc < 0 || args->argc < 0 ||
        keys->argc > INT32_MAX - 3 - args->argc)
        return -EINVAL;
    argc = keys->argc + args->argc;
    for (i = 0; i < keys->argc; i++)
        total += keys->argvlen[i];
    for (i = 0; i < args->argc; i++)
        total += args->argvlen[i];
    c = cmd_new(r, timeout_ms, cb, ctx);
    c->script = s;
    c->numkeys = keys->argc;
    /* Saved for the EVAL fallback, which runs after the caller's argv is
     * gone. */
    if (argc > 0) {
        c->argv = drv_xmalloc((size_t)argc * sizeof *c->argv);
        c->argvlen = drv_xmalloc((size_t)argc * sizeof *c->argvlen);
        c->argbuf = drv_xmalloc(total ? total : 1);
        save_args(c, keys, &off);
        save_args(c, args, &off);
    }
    if (!ready(r)) {
        fail_fast(r, c);
        return 0;
    }
    rc = send_script(r, c, 1);
    if (rc < 0)
        cmd_free(c);
    return rc;
}
