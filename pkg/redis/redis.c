/*
 * redis.c -- one async Redis connection on the libevent loop: our own
 * transport (bufferevents, plain or OpenSSL), setup, per-command
 * deadlines, reconnect with backoff, scripts. hiredis only parses replies
 * (redisReader) and formats commands (redisFormatCommandArgv).
 *
 * DESIGN
 * States: DOWN -> CONNECTING -> SETUP -> READY -> DOWN ... An attempt
 * (one r->gen) goes through up to four steps, each owning its resource:
 *   1. locate: opts.locate may change r->target (synchronous);
 *   2. resolve: a name is looked up on a thread (redis_resolve.c; r->rq,
 *      r->resolve_ev); an IP literal or a unix path needs no lookup;
 *   3. connect: a non-blocking connect of each address in turn (r->fd,
 *      r->conn_ev waiting for writability), the next address after a
 *      refusal or a per-address timeout;
 *   4. transport: the connected fd inside a bufferevent (r->bev), an
 *      OpenSSL one for rediss:// whose BEV_EVENT_CONNECTED ends the
 *      handshake; then SETUP (AUTH, SELECT, SETNAME, CLIENT ID) and READY.
 * drop() is the single "this attempt or connection is gone" transition:
 * close_transport() releases whatever step the attempt is in and moves
 * every pending command to r->done (DRV_EDOWN, -ETIMEDOUT for one whose
 * deadline passed, -ECANCELED when freeing), then lost() sets DOWN, logs
 * and arms the retry timer. drop() may run inside our own bufferevent or
 * event callbacks (libevent defers freeing a bufferevent that is inside
 * its callback) but never runs user code: completions wait for the kick.
 *
 * Replies: what arrives (read from a plain socket by our own read event,
 * up to 64 KB a time, since libevent 2.1's bufferevent reads 4 KB per
 * callback; from the OpenSSL bufferevent's input for TLS) is fed to the
 * RESP reader 16 KB at a time, and each complete reply handed to the
 * oldest pending command (a Redis connection answers in order), inside
 * that callback; the reply is freed
 * when the callback returns. A MULTI unit is one command whose first
 * `skip` replies (MULTI's OK, the QUEUED ones) are consumed silently. A
 * reply with no command waiting (a server error at connect, such as max
 * clients) and a parse error drop the connection. Every other outcome
 * (DRV_EDOWN fail-fast, commands of a dropped connection) goes on r->done
 * and is delivered by the kick event on a later turn, so user code never
 * runs inside a teardown nor inside the call that issued the command. The
 * kick drains only what was queued when it started, so a caller that
 * retries at once from its error callback cannot spin the loop.
 *
 * Deadlines: each command stores an absolute deadline_ns; one lazy timer
 * is armed at the earliest one known and, when it fires, scans the
 * pending list (O(1) per command, O(n) per firing). A passed deadline
 * drops the whole connection: replies are FIFO, a late one cannot be
 * skipped. The connect deadline bounds resolving, each address's connect
 * and the TLS handshake. Unless a reply is still arriving (a large one
 * takes longer than any deadline meant for waiting): then the deadline
 * moves on, PROGRESS_NS at a time, while bytes keep coming.
 *
 * drv_redis_free only marks r freeing and kicks; the kick handler drops
 * the connection (pending callbacks -> -ECANCELED) and then frees r. Until
 * then r stays valid for every callback that still names it, and every
 * public call on it fails at once with -ECANCELED.
 *
 * Invariants: at most one attempt or connection per drv_redis; the retry
 * timer is armed only while DOWN; every cmd is on exactly one of pending
 * (written, awaiting its reply) or done, or is being delivered, so each
 * user callback runs once. A reply can only come from the live bev, and a
 * bev we let go takes no command with it (close_transport empties
 * pending), so commands need no generation tag; r->gen only names the
 * attempt a deferred drop is meant for.
 *
 * Loop thread only; no locks (the resolver thread is redis_resolve.c's).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/sds.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "drover/buf.h"
#include "drover/clock.h"
#include "drover/common.h"
#include "drover/error.h"
#include "drover/log.h"
#include "drover/loop.h"
#include "drover/redis.h"
#include "drover/redis_cluster.h"

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
#define PEEK_CHUNKS 16     /* input chunks fed to the reader per pass */
#define READ_CHUNK 65536   /* plain sockets: bytes per read(2) */
#define FEED_SLICE 16384   /* bytes fed to the reader between dispatches */
#define PEER_MAX 128       /* "[v6]:port" or a socket path */
#define WHY_MAX 320        /* text of a failure */

enum cmd_where {
    CMD_NEW = 0,    /* not yet handed over */
    CMD_PENDING,    /* written, awaiting its reply, on r->pending */
    CMD_DONE,       /* outcome decided, on r->done until the kick */
    CMD_ASKED       /* sent again after -ASK: on r->asked, waiting for
                       the companion (fwd NULL) or for its reply there */
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
    size_t skip;               /* replies before ours to consume (MULTI) */
    drv_redis_reply_fn *cb;    /* completion; NULL = ignore */
    void *ctx;                 /* borrowed: the caller's */
    const struct drv_redis_script *script; /* borrowed: EVAL fallback */
    int retried;               /* the EVAL fallback was sent */
    int numkeys;               /* script: number of keys in argv */
    int argc;                  /* script: saved arguments */
    size_t *argvlen;           /* owned: one allocation for argvlen,
                                  argv and argbuf */
    const char **argv;         /* in argvlen's: pointers into argbuf */
    char *argbuf;              /* in argvlen's: the argument bytes */
    char *wire;                /* owned: follow_ask only: the command as
                                  written (RESP bytes, MULTI unit whole),
                                  to send again after -ASK; else NULL */
    size_t wirelen;            /* its length */
    size_t nskip;              /* skip as written (MULTI: n + 1) */
    int asked;                 /* sent again after -ASK once already */
    struct drv_redis_sentinel_addr *ask_to; /* owned: MULTI: an -ASK
                                  among the queued replies, or NULL */
    struct cmd *fwd;           /* CMD_ASKED: its copy on r->comp (alive
                                  until that one's callback), or NULL
                                  while waiting for the companion */
};

TAILQ_HEAD(cmd_list, cmd);

struct drv_redis_script {
    unsigned magic;
#define SCRIPT_MAGIC 0x5c819700U
    char *text;                /* owned: Lua source */
    size_t len;                /* its length */
    char sha[DRV__REDIS_SHA1_HEX]; /* lowercase hex SHA1 of text */
};

/* What drv_redis_create fixes from its options, and an ASK companion
 * takes from r as a whole. */
struct settings {
    struct drv_redis_url url;  /* parsed; wiped at free (password) */
    char url_log[400];         /* redacted, logfmt-quoted URL */
    int64_t connect_timeout_ns; /* connect phase limit */
    int64_t command_timeout_ns; /* default per command */
    int64_t backoff_initial_ms; /* delay base of the first retry */
    int64_t backoff_max_ms;    /* cap of the delay */
    int keepalive_s;           /* TCP keepalive idle; <= 0 off */
    size_t max_string;         /* opts.max_string_bytes; 0 = no limit */
};

struct drv_redis {
    unsigned magic;
#define DRV_REDIS_MAGIC 0x4ed15c0eU
    struct drv_loop *loop;     /* borrowed: outlives r */
    struct event_base *base;   /* borrowed: the loop's */
    struct settings set;       /* from opts; a companion's are r's */
    char *name;                /* owned: CLIENT SETNAME, or NULL */
    const char *label;         /* borrowed: name or "redis", for logs */
    uint64_t retries;          /* retries since the last READY */
    drv_redis_state_fn *on_state; /* owner's hook; NULL after free */
    void *ctx;                 /* borrowed: for on_state */
    drv_redis_locate_fn *locate; /* where to connect; NULL after free */
    void *locate_ctx;          /* borrowed: for locate */
    struct drv_redis_target target; /* where the next attempt goes */

    SSL_CTX *ssl_ctx;          /* owned: rediss:// only, else NULL */
    SSL_SESSION *session;      /* owned: the last TLS session, or NULL */
    char *server_name;         /* owned: name to verify, or NULL = host */

    uint64_t gen;              /* attempt counter */
    enum drv_redis_state state; /* see the DESIGN comment */
    struct drv__redis_resolve *rq; /* step 2: the lookup, or NULL */
    struct addrinfo *ai;       /* owned: addresses of this attempt */
    struct addrinfo *ai_next;  /* borrowed from ai: next one to try */
    int fd;                    /* step 3: the socket connecting, or -1 */
    struct bufferevent *bev;   /* owned: step 4, the connection, or NULL */
    struct event *read_ev;     /* owned: plain sockets, reading bev's fd
                                  (assigned per connection) */
    int read_armed;            /* read_ev is added */
    redisReader *reader;       /* owned: its reply parser, or NULL */
    char peer[PEER_MAX];       /* numeric address of fd/bev, or "" */
    char why[WHY_MAX];         /* last address's failure, this attempt */
    char addrs_log[512];       /* what the name last resolved to */
    char last_err[WHY_MAX];    /* why the last attempt or connection
                                  ended; "" until one did */
    int64_t connect_deadline_ns; /* CONNECTING: give up at; else 0 */
    int64_t client_id;         /* CLIENT ID of this connection, -1 */
    uint64_t drop_gen;         /* drop attempt gen from the kick; 0 none */
    const char *drop_why;      /* static text: why */
    int notify_down;           /* on_state(DOWN) owed from the kick */
    size_t rx_seen;            /* unparsed reader bytes at the last
                                  deadline check */
    struct drv__redis_arena arena; /* the reader's reply objects, rewound
                                  after each reply is handed out */
    int freeing;               /* drv_redis_free was called */
    int retry_now;             /* next retry without backoff (reconnect) */
    int waiting;               /* this attempt ended because locate has no
                                  target yet (-EAGAIN): not a failure to
                                  warn about (the locate's owner says
                                  what it waits for) */
    unsigned fails;            /* failed attempts since the last READY */

    struct event *watch_ev;    /* owned: lazy deadline timer */
    int64_t watch_at_ns;       /* when watch_ev fires; 0 = not armed */
    struct event *retry_ev;    /* owned: backoff timer -> start_connect */
    struct event *kick_ev;     /* owned: user event: done list, drop,
                                  DOWN notice, teardown */
    struct event *resolve_ev;  /* owned: woken by the resolver thread */
    struct event *conn_ev;     /* owned: writability of fd (assigned per
                                  socket) */
    struct cmd_list pending;   /* cmds written, in send order */
    struct cmd_list done;      /* decided outcomes awaiting the kick */
    struct drv_redis_stats stats; /* counters */

    int follow_ask;            /* Cluster: send a command again after
                                  -ASK (drv__redis_follow_ask) */
    struct drv_redis *comp;    /* owned: the companion connection to the
                                  node of the last -ASK, or NULL */
    struct cmd_list asked;     /* CMD_ASKED commands, in ASK order */
    struct event *ask_ev;      /* owned: deadlines of the commands
                                  waiting for comp; comp's idle close */
    int64_t ask_last_ns;       /* the last -ASK followed (monotonic) */
    int64_t ask_logged_ns;     /* the last "ASK" log line */
};

static void schedule_retry(struct drv_redis *r);
static void teardown(struct drv_redis *r);
static void on_watch(evutil_socket_t fd, short what, void *arg);
static void on_retry(evutil_socket_t fd, short what, void *arg);
static void on_resolved(evutil_socket_t fd, short what, void *arg);
static void on_conn(evutil_socket_t fd, short what, void *arg);

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
    tmo = timeout_ms == 0 ? r->set.command_timeout_ns
                          : timeout_ms * DRV_NS_PER_MS;
    c->deadline_ns = timeout_ms < 0 ? 0 : drv_clock_mono_ns() + tmo;
    return c;
}

static void
cmd_free(struct cmd *c)
{
    free(c->argvlen); /* and argv, argbuf */
    free(c->wire);
    free(c->ask_to);
    DRV_FREE_OBJ(c);
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

/* Format argv into the connection's output buffer: one write per loop
 * turn carries everything queued in it. The sds formatter is the one
 * hiredis's async API used (its plain one calls sprintf twice per
 * argument). With keep (follow_ask), the bytes are also appended to
 * keep->wire, to send them again after an -ASK. 0 or -ENOMEM. */
static int
write_argv(struct drv_redis *r, int argc, const char **argv,
           const size_t *argvlen, struct cmd *keep)
{
    sds cmd = NULL;
    int len;

    len = redisFormatSdsCommandArgv(&cmd, argc, argv, argvlen);
    if (len < 0 || cmd == NULL)
        return -ENOMEM;
    if (evbuffer_add(bufferevent_get_output(r->bev), cmd, (size_t)len) != 0)
        len = -1;
    if (len >= 0 && keep != NULL) {
        keep->wire = drv_xrealloc(keep->wire, keep->wirelen + (size_t)len);
        memcpy(keep->wire + keep->wirelen, cmd, (size_t)len);
        keep->wirelen += (size_t)len;
    }
    redisFreeSdsCommand(cmd);
    return len < 0 ? -ENOMEM : 0;
}

/* Queue c, just written, for its reply. */
static void
queue_sent(struct drv_redis *r, struct cmd *c)
{
    c->where = CMD_PENDING;
    TAILQ_INSERT_TAIL(&r->pending, c, link);
    r->stats.commands++;
    watch_arm(r, c->deadline_ns);
}

/* The command c carries may be sent again after -ASK: keep its bytes
 * (a script keeps its arguments anyway; the setup commands, AUTH's
 * password among them, are never ASKed). */
static struct cmd *
keep_of(const struct drv_redis *r, struct cmd *c)
{
    return r->follow_ask && c->script == NULL &&
           r->state == DRV_REDIS_READY ? c : NULL;
}

/* Write c's command on the live connection and queue c for its reply. */
static int
send_argv(struct drv_redis *r, struct cmd *c, int argc, const char **argv,
          const size_t *argvlen)
{
    int rc;

    DRV_AN(r->bev);
    rc = write_argv(r, argc, argv, argvlen, keep_of(r, c));
    if (rc < 0)
        return rc;
    c->nskip = c->skip;
    queue_sent(r, c);
    return 0;
}

/* ------------------------------------------------------- state changes */

/*
 * Release whatever the current attempt holds (lookup, connecting socket,
 * connection) and move every pending command to r->done. Runs no user
 * code.
 */
static void
close_transport(struct drv_redis *r)
{
    struct cmd *c;

    if (r->rq != NULL) {
        drv__redis_resolve_abandon(r->rq);
        r->rq = NULL;
    }
    if (r->fd >= 0) {
        event_del(r->conn_ev);
        close(r->fd);
        r->fd = -1;
    }
    if (r->read_armed) {
        event_del(r->read_ev);
        r->read_armed = 0;
    }
    if (r->bev != NULL) {
        bufferevent_free(r->bev); /* closes the socket; SSL_free for TLS */
        r->bev = NULL;
    }
    if (r->reader != NULL) {
        redisReaderFree(r->reader);
        r->reader = NULL;
        drv__redis_arena_reset(&r->arena); /* a reply half read */
    }
    if (r->ai != NULL) {
        freeaddrinfo(r->ai);
        r->ai = NULL;
        r->ai_next = NULL;
    }
    r->peer[0] = '\0';
    while ((c = TAILQ_FIRST(&r->pending)) != NULL) {
        TAILQ_REMOVE(&r->pending, c, link);
        c->where = CMD_NEW;
        complete_later(r, c, r->freeing ? -ECANCELED
                             : c->expired ? -ETIMEDOUT : DRV_EDOWN);
    }
}

/* Log a failed attempt: loud on the 1st, 2nd, 4th, 8th... of a streak
 * (a server that stays away is still reported, ever more rarely). */
static void
log_fail(struct drv_redis *r, const char *q, enum drv_redis_state prev)
{
    const char *step = prev == DRV_REDIS_SETUP ? "setup" : "connect";

    if (r->waiting) {
        r->waiting = 0;
        DRV_LOG_DEBUG("redis waiting for a target", "conn=%s reason=%s",
                      r->label, q);
        return;
    }
    r->fails++;
    if ((r->fails & (r->fails - 1)) == 0)
        DRV_LOG_WARN("redis connect failed",
                     "conn=%s url=%s reason=%s state=%s attempt=%u",
                     r->label, r->set.url_log, q, step, r->fails);
    else
        DRV_LOG_DEBUG("redis connect failed",
                      "conn=%s reason=%s state=%s attempt=%u", r->label, q,
                      step, r->fails);
}

/*
 * The attempt or connection is gone (close_transport already ran): set
 * DOWN, log, notify and arm the retry.
 */
static void
lost(struct drv_redis *r, const char *why)
{
    enum drv_redis_state prev = r->state;
    char q[WHY_MAX + 40];

    r->state = DRV_REDIS_DOWN;
    r->client_id = -1;
    r->connect_deadline_ns = 0;
    r->drop_gen = 0;
    event_del(r->watch_ev);
    r->watch_at_ns = 0;
    quote(q, sizeof q, why);
    if (!r->freeing && prev != DRV_REDIS_DOWN)
        snprintf(r->last_err, sizeof r->last_err, "%s", why);
    if (prev == DRV_REDIS_READY) {
        r->stats.disconnects++;
        r->fails = 0;
        if (r->freeing) {
            DRV_LOG_DEBUG("redis closed", "conn=%s", r->label);
        } else {
            DRV_LOG_WARN("redis connection lost", "conn=%s url=%s reason=%s",
                         r->label, r->set.url_log, q);
            r->notify_down = 1;
            kick(r);
        }
    } else if (!r->freeing && prev != DRV_REDIS_DOWN) {
        log_fail(r, q, prev);
    }
    if (r->freeing)
        return;
    if (r->retry_now) {
        r->retry_now = 0;
        event_active(r->retry_ev, EV_TIMEOUT, 0);
    } else {
        schedule_retry(r);
    }
}

/* Drop the current attempt or connection. Never runs user code; safe
 * inside our own I/O callbacks. */
static void
drop(struct drv_redis *r, const char *why)
{
    char copy[WHY_MAX];

    /* why may point into r->why, which close_transport leaves alone, but
     * keep our own copy all the same */
    snprintf(copy, sizeof copy, "%s", why);
    close_transport(r);
    lost(r, copy);
}

static void
schedule_retry(struct drv_redis *r)
{
    struct timeval tv;
    int64_t delay;

    /* doubling from the initial base, capped, equal jitter: a fleet of
     * workers does not reconnect in step */
    delay = drv_backoff_ms(++r->retries, r->set.backoff_initial_ms,
                           r->set.backoff_max_ms, drv_random64());
    DRV_LOG_DEBUG("redis retry scheduled", "conn=%s delay_ms=%lld",
                  r->label, (long long)delay);
    tv = drv_clock_tv_from_ns(delay * DRV_NS_PER_MS);
    DRV_AZ(event_add(r->retry_ev, &tv));
}

static void
set_tcp_options(int fd, int idle_s)
{
    int on = 1, intvl = idle_s / 3 > 0 ? idle_s / 3 : 1, cnt = 3;

    /* Best effort: a socket option that fails is no reason to drop. No
     * Nagle delay: commands are small and latency matters. */
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    if (idle_s <= 0)
        return;
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

    /* A failed status means the connection is already gone: lost() ran. */
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

/* AUTH, SELECT, CLIENT SETNAME: ctx is the step's name (setup_cmd). */
static void
on_setup_step(struct drv_redis *r, int status, const redisReply *reply,
              void *ctx)
{
    (void)setup_reply_ok(r, status, reply, ctx);
}

static void
on_client_id(struct drv_redis *r, int status, const redisReply *reply,
             void *ctx)
{
    if (!setup_reply_ok(r, status, reply, ctx))
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
                 "conn=%s url=%s peer=%s tls=%s client_id=%lld attempts=%u",
                 r->label, r->set.url_log, r->peer,
                 r->ssl_ctx == NULL ? "off"
                 : SSL_session_reused(bufferevent_openssl_get_ssl(r->bev))
                     ? "resumed" : "on",
                 (long long)r->client_id, r->fails + 1);
    r->fails = 0;
    if (r->on_state != NULL)
        r->on_state(r, DRV_REDIS_READY, r->ctx);
}

/* Send setup step `step` (its name, for the logs: fn's ctx). */
static void
setup_cmd(struct drv_redis *r, drv_redis_reply_fn *fn, const char *step,
          int argc, const char **argv)
{
    struct cmd *c = cmd_new(r, 0, fn, (void *)step);

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

    if (r->set.url.password[0] != '\0') {
        argv[0] = "AUTH";
        if (r->set.url.user[0] != '\0') {
            argv[1] = r->set.url.user;
            argv[2] = r->set.url.password;
            setup_cmd(r, on_setup_step, "AUTH", 3, argv);
        } else {
            argv[1] = r->set.url.password;
            setup_cmd(r, on_setup_step, "AUTH", 2, argv);
        }
    }
    if (r->set.url.db != 0) {
        snprintf(db, sizeof db, "%d", r->set.url.db);
        argv[0] = "SELECT";
        argv[1] = db;
        setup_cmd(r, on_setup_step, "SELECT", 2, argv);
    }
    if (r->name != NULL) {
        argv[0] = "CLIENT";
        argv[1] = "SETNAME";
        argv[2] = r->name;
        setup_cmd(r, on_setup_step, "CLIENT SETNAME", 3, argv);
    }
    argv[0] = "CLIENT";
    argv[1] = "ID";
    setup_cmd(r, on_client_id, "CLIENT ID", 2, argv);
}

/* Connected (and through the TLS handshake): run the setup commands,
 * pipelined in one write. */
static void
begin_setup(struct drv_redis *r)
{
    r->state = DRV_REDIS_SETUP;
    r->connect_deadline_ns = 0;
    send_setup(r);
}

/* ------------------------------------------------------ ASK (Cluster) */

/*
 * A node that answers "-ASK slot host:port" is migrating the slot away:
 * the key is already on the importing node, which serves it to a client
 * that says ASKING first, for that one command. r then sends ASKING and
 * the same command (its kept bytes, or the script with its saved
 * arguments) on its companion: a second connection, to that node, made
 * with r's own settings (URL, password, db, TLS context, timeouts,
 * max_string) the first time and kept for the next ASK (pointed at
 * another node when an ASK names one; closed after ASK_IDLE_NS without
 * ASK). The command waits on r->asked: for the companion to be READY
 * (under its deadline, ask_ev), then for its reply there, which goes to
 * the caller's callback, with r, as if r had answered. Only one hop: an
 * -ASK from the importing node goes to the caller. A script the
 * importing node has not loaded (-NOSCRIPT) goes there again as EVAL.
 * -ECANCELED is the caller's only when r itself is freed: a companion
 * closed under a command makes it DRV_EDOWN.
 */
#define ASK_IDLE_NS (30 * DRV_NS_PER_SEC)
#define ASK_LOG_NS (10 * DRV_NS_PER_SEC)

static void send_forward(struct drv_redis *r, struct cmd *c);
static int write_script(struct drv_redis *r, const struct cmd *c,
                        int by_sha);
static int conn_events(struct drv_redis *r);

/* A queued reply of c's MULTI unit: note an -ASK. */
static void
note_ask(struct cmd *c, const redisReply *reply)
{
    struct drv_redis_cluster_redirect rd;

    if (c->ask_to == NULL && drv_redis_cluster_redirect_parse(reply, &rd) &&
        rd.ask) {
        c->ask_to = drv_xmalloc(sizeof *c->ask_to);
        *c->ask_to = rd.to;
    }
}

static void
ask_arm(struct drv_redis *r)
{
    struct timeval tv;
    struct cmd *c;
    int64_t next = 0;

    TAILQ_FOREACH(c, &r->asked, link)
        if (c->fwd == NULL && c->deadline_ns != 0 &&
            (next == 0 || c->deadline_ns < next))
            next = c->deadline_ns;
    if (r->comp != NULL && (next == 0 || r->ask_last_ns + ASK_IDLE_NS < next))
        next = r->ask_last_ns + ASK_IDLE_NS;
    if (next == 0) {
        event_del(r->ask_ev);
        return;
    }
    tv = drv_clock_tv_until(next);
    DRV_AZ(event_add(r->ask_ev, &tv));
}

/* ask_ev: commands that waited for the companion past their deadline
 * fail; an idle companion is closed. */
static void
on_ask_timer(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv_redis *r;
    struct cmd *c, *next;
    int64_t now = drv_clock_mono_ns();

    DRV_CAST(r, arg, DRV_REDIS_MAGIC);
    if (r->freeing)
        return;
    for (c = TAILQ_FIRST(&r->asked); c != NULL; c = next) {
        next = TAILQ_NEXT(c, link);
        if (c->fwd != NULL || c->deadline_ns == 0 || c->deadline_ns > now)
            continue;
        TAILQ_REMOVE(&r->asked, c, link);
        c->where = CMD_NEW;
        complete_later(r, c, -ETIMEDOUT);
    }
    if (r->comp != NULL && TAILQ_EMPTY(&r->asked) &&
        now >= r->ask_last_ns + ASK_IDLE_NS) {
        DRV_LOG_DEBUG("redis ASK connection idle: closed", "conn=%s",
                      r->label);
        drv_redis_free(r->comp);
        r->comp = NULL;
    }
    ask_arm(r);
}

/* The companion is READY: send what waits for it. */
static void
on_comp_state(struct drv_redis *a DRV_UNUSED, enum drv_redis_state st,
              void *ctx)
{
    struct drv_redis *r;
    struct cmd *c;

    DRV_CAST(r, ctx, DRV_REDIS_MAGIC);
    if (st != DRV_REDIS_READY)
        return;
    TAILQ_FOREACH(c, &r->asked, link)
        if (c->fwd == NULL && !r->freeing)
            send_forward(r, c);
    ask_arm(r);
}

/* A connection like r (r's settings), to `to`, for ASKed commands. */
static struct drv_redis *
companion_new(struct drv_redis *r, const struct drv_redis_sentinel_addr *to)
{
    struct drv_redis *a = NULL;
    char name[NAME_MAX_LEN + 8];

    DRV_ALLOC_OBJ(a, DRV_REDIS_MAGIC);
    a->loop = r->loop;
    a->base = r->base;
    a->set = r->set;
    drv__redis_arena_init(&a->arena, a->set.max_string);
    snprintf(name, sizeof name, "%s-ask", r->label);
    a->name = strlen(name) <= NAME_MAX_LEN ? drv_xstrdup(name) : NULL;
    a->label = a->name != NULL ? a->name : "redis-ask";
    a->on_state = on_comp_state;
    a->ctx = r;
    a->state = DRV_REDIS_DOWN;
    a->client_id = -1;
    a->fd = -1;
    drv__redis_target_at(&a->target, to);
    TAILQ_INIT(&a->pending);
    TAILQ_INIT(&a->done);
    TAILQ_INIT(&a->asked);
    if (r->ssl_ctx != NULL) {
        DRV_ASSERT(SSL_CTX_up_ref(r->ssl_ctx) == 1);
        a->ssl_ctx = r->ssl_ctx;
        if (r->server_name != NULL)
            a->server_name = drv_xstrdup(r->server_name);
    }
    DRV_AZ(conn_events(a)); /* out of memory aborts, as DRV_ALLOC_OBJ */
    return a;
}

/* c (off every list, where CMD_NEW) got -ASK naming `to`: send it there
 * after ASKING, through the companion. */
static void
forward(struct drv_redis *r, struct cmd *c,
        const struct drv_redis_sentinel_addr *to)
{
    struct drv_redis_target t;
    int64_t now = drv_clock_mono_ns();

    c->asked = 1;
    r->stats.asks++;
    r->ask_last_ns = now;
    if (c->deadline_ns != 0 && now >= c->deadline_ns) {
        deliver(r, c, -ETIMEDOUT, NULL);
        return;
    }
    if (r->comp == NULL) {
        r->comp = companion_new(r, to);
    } else {
        drv_redis_get_target(r->comp, &t);
        if (t.port != to->port || strcmp(t.host, to->host) != 0) {
            drv__redis_target_at(&t, to);
            DRV_AZ(drv_redis_set_target(r->comp, &t));
            (void)drv_redis_reconnect(r->comp, "ASK names another node");
        }
    }
    if (r->ask_logged_ns == 0 || now - r->ask_logged_ns >= ASK_LOG_NS) {
        r->ask_logged_ns = now;
        DRV_LOG_INFO("ASK: sending the command to the node importing the "
                     "slot", "conn=%s node=%s:%d asks=%llu", r->label,
                     to->host, to->port,
                     (unsigned long long)r->stats.asks);
    }
    c->where = CMD_ASKED;
    TAILQ_INSERT_TAIL(&r->asked, c, link);
    if (ready(r->comp))
        send_forward(r, c);
    ask_arm(r);
}

/* The reply (or failure) of c's copy on the companion a. */
static void
on_forwarded(struct drv_redis *a, int status, const redisReply *reply,
             void *ctx)
{
    struct drv_redis *r;
    struct cmd *c;

    DRV_CAST(c, ctx, CMD_MAGIC);
    r = c->r;
    DRV_ASSERT(c->where == CMD_ASKED && c->fwd != NULL);
    TAILQ_REMOVE(&r->asked, c, link);
    c->where = CMD_NEW;
    c->fwd = NULL;
    if (r->freeing) {
        deliver(r, c, -ECANCELED, NULL);
        return;
    }
    if (status == -ECANCELED)
        status = DRV_EDOWN; /* the companion went, not r */
    if (status == 0 && c->script != NULL && !c->retried &&
        drv_redis_reply_error_is(reply, "NOSCRIPT")) {
        /* not loaded on the importing node: EVAL there */
        c->retried = 1;
        c->where = CMD_ASKED;
        TAILQ_INSERT_TAIL(&r->asked, c, link);
        if (ready(a))
            send_forward(r, c);
        ask_arm(r);
        return;
    }
    deliver(r, c, status, reply);
}

/* Write ASKING and c's command on the READY companion. */
static void
send_forward(struct drv_redis *r, struct cmd *c)
{
    static const char *const asking[] = {"ASKING"};
    struct drv_redis *a = r->comp;
    struct cmd *f;
    int rc;

    DRV_ASSERT(c->where == CMD_ASKED && c->fwd == NULL && ready(a));
    f = cmd_new(a, 0, on_forwarded, c);
    f->deadline_ns = c->deadline_ns;
    rc = write_argv(a, 1, (const char **)asking, NULL, NULL);
    if (rc == 0 && c->script != NULL)
        rc = write_script(a, c, !c->retried);
    else if (rc == 0 &&
             evbuffer_add(bufferevent_get_output(a->bev), c->wire,
                          c->wirelen) != 0)
        rc = -ENOMEM;
    if (rc < 0) {
        /* a half-written pair must not stay there: drop the companion;
         * c waits for it to come back */
        cmd_free(f);
        a->drop_gen = a->gen;
        a->drop_why = "out of memory in ASK";
        kick(a);
        return;
    }
    f->skip = 1 + c->nskip; /* ASKING's OK (and a MULTI's QUEUED) */
    queue_sent(a, f);
    c->fwd = f;
}

/* Teardown of r: every ASKed command ends -ECANCELED; a copy still out
 * on the companion is disowned (the companion's teardown frees it). */
static void
ask_teardown(struct drv_redis *r)
{
    struct cmd *c;

    while ((c = TAILQ_FIRST(&r->asked)) != NULL) {
        TAILQ_REMOVE(&r->asked, c, link);
        if (c->fwd != NULL) {
            c->fwd->cb = NULL;
            c->fwd->ctx = NULL;
            c->fwd = NULL;
        }
        c->where = CMD_NEW;
        deliver(r, c, -ECANCELED, NULL);
    }
    drv_redis_free(r->comp);
    r->comp = NULL;
}

void
drv__redis_follow_ask(struct drv_redis *r)
{
    DRV_CHECK_OBJ(r, DRV_REDIS_MAGIC);
    r->follow_ask = 1;
}

/* ------------------------------------------------------------ replies */

static int send_script(struct drv_redis *r, struct cmd *c, int by_sha);

/* The reply to c (taken off pending) arrived on the live connection. */
static void
on_reply(struct drv_redis *r, struct cmd *c, const redisReply *reply)
{
    struct drv_redis_sentinel_addr to;
    int rc;

    if (r->freeing) {
        deliver(r, c, -ECANCELED, NULL);
        return;
    }
    if (c->script != NULL && !c->retried && ready(r) &&
        drv_redis_reply_error_is(reply, "NOSCRIPT")) {
        c->retried = 1;
        c->where = CMD_NEW;
        rc = send_script(r, c, 0);
        if (rc == 0)
            return;
        deliver(r, c, rc, NULL);
        return;
    }
    if (r->follow_ask && !c->asked && reply->type == REDIS_REPLY_ERROR &&
        (c->wire != NULL || c->script != NULL) &&
        drv_redis_cluster_ask_to(reply, c->ask_to, &to)) {
        forward(r, c, &to);
        return;
    }
    deliver(r, c, 0, reply);
}

/* Hand every complete reply to its command, oldest first. */
static void
dispatch_replies(struct drv_redis *r, struct bufferevent *bev)
{
    char why[WHY_MAX];
    void *reply = NULL;
    struct cmd *c;

    for (;;) {
        if (redisReaderGetReply(r->reader, &reply) != REDIS_OK) {
            snprintf(why, sizeof why, "protocol error: %s",
                     r->reader->errstr);
            drop(r, why);
            return;
        }
        if (reply == NULL)
            return;
        c = TAILQ_FIRST(&r->pending);
        if (c == NULL) {
            const redisReply *rp = reply;

            /* an answer nobody asked for: the server is refusing us */
            snprintf(why, sizeof why, "unexpected reply: %.*s",
                     rp->type == REDIS_REPLY_ERROR ||
                     rp->type == REDIS_REPLY_STATUS ? (int)rp->len : 0,
                     rp->str != NULL ? rp->str : "");
            drv__redis_arena_reset(&r->arena);
            drop(r, why);
            return;
        }
        if (c->skip > 0) {
            c->skip--; /* MULTI's OK or a QUEUED: EXEC tells all */
            if (c->wire != NULL)
                note_ask(c, reply); /* for an EXECABORT to come */
            drv__redis_arena_reset(&r->arena);
            continue;
        }
        TAILQ_REMOVE(&r->pending, c, link);
        c->where = CMD_NEW;
        if (TAILQ_EMPTY(&r->pending) && r->watch_at_ns != 0 &&
            r->connect_deadline_ns == 0) {
            /* no deadline left to watch: a connection that always has
             * one command out (a BLOCK read sent again as each returns)
             * would otherwise wake for the lazy timer every few seconds
             * only to arm it again */
            event_del(r->watch_ev);
            r->watch_at_ns = 0;
        }
        on_reply(r, c, reply);
        /* the reply is gone (borrowed by the callback only); the reader
         * holds nothing else between replies */
        drv__redis_arena_reset(&r->arena);
        if (r->bev != bev)
            return; /* the callback's doing dropped it: the rest is moot */
    }
}

/*
 * Feed len bytes that arrived on bev to the reader, FEED_SLICE at a time,
 * handing out the replies after each slice: hiredis 0.14's reader moves
 * the unread rest of its buffer down on every reply once 1 KB is consumed,
 * so a small buffer keeps that cheap (as hiredis's own 16 KB reads did).
 * 0, or -1 when the connection was dropped meanwhile.
 */
/* Room for n more bytes in the reader's buffer, doubling it: past 1 MB
 * sds grows a buffer by only 1 MB at a time (SDS_MAX_PREALLOC), so a
 * reply of 100 MB fed in slices was copied about a hundred times. */
static void
grow_reader(redisReader *rd, size_t n)
{
    size_t have;
    sds b;

    if (rd->buf == NULL || sdsavail(rd->buf) >= n)
        return;
    have = sdslen(rd->buf);
    b = sdsMakeRoomFor(rd->buf, have > n ? have : n);
    if (b != NULL) /* else the feed fails and GetReply says so */
        rd->buf = b;
}

static int
feed(struct drv_redis *r, struct bufferevent *bev, const char *data,
     size_t len)
{
    size_t n;

    while (len > 0) {
        n = len < FEED_SLICE ? len : FEED_SLICE;
        grow_reader(r->reader, n);
        /* REDIS_ERR only for out of memory or an earlier error, which
         * GetReply reports */
        (void)redisReaderFeed(r->reader, data, n);
        data += n;
        len -= n;
        dispatch_replies(r, bev);
        if (r->bev != bev)
            return -1;
    }
    return 0;
}

/* TLS: the OpenSSL bufferevent decrypted data into its input buffer. */
static void
on_read(struct bufferevent *bev, void *arg)
{
    struct evbuffer_iovec v[PEEK_CHUNKS];
    struct evbuffer *in = bufferevent_get_input(bev);
    struct drv_redis *r;
    size_t fed;
    int n, i;

    DRV_CAST(r, arg, DRV_REDIS_MAGIC);
    DRV_ASSERT(r->bev == bev);
    while (evbuffer_get_length(in) > 0) {
        n = evbuffer_peek(in, -1, NULL, v, PEEK_CHUNKS);
        if (n > PEEK_CHUNKS)
            n = PEEK_CHUNKS;
        fed = 0;
        for (i = 0; i < n; i++)
            fed += v[i].iov_len;
        for (i = 0; i < n; i++)
            if (feed(r, bev, v[i].iov_base, v[i].iov_len) < 0)
                return; /* bev is gone with its buffer */
        evbuffer_drain(in, fed);
    }
}

/*
 * Plain sockets: read the socket ourselves. libevent 2.1 reads at most
 * 4 KB per bufferevent callback (EVBUFFER_MAX_READ), four times the loop
 * turns and syscalls of hiredis's 16 KB reads for a big XREADGROUP reply;
 * here one read takes up to READ_CHUNK. The bufferevent still writes and
 * reports write errors.
 */
static void
on_sock_read(evutil_socket_t fd, short what DRV_UNUSED, void *arg)
{
    struct drv_redis *r;
    struct bufferevent *bev;
    char buf[READ_CHUNK], why[WHY_MAX];
    ssize_t n;

    DRV_CAST(r, arg, DRV_REDIS_MAGIC);
    bev = r->bev;
    DRV_AN(bev);
    for (;;) {
        n = read(fd, buf, sizeof buf);
        if (n > 0) {
            if (feed(r, bev, buf, (size_t)n) < 0)
                return;
            if ((size_t)n < sizeof buf)
                return; /* drained: the next bytes wake us again */
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        snprintf(why, sizeof why, "%s", n == 0
                 ? "connection closed by the server" : strerror(errno));
        drop(r, why);
        return;
    }
}

static void begin_setup(struct drv_redis *r);

/* Name the certificate must carry: tls.server_name, else the host. */
static const char *
verify_name(const struct drv_redis *r)
{
    return r->server_name != NULL ? r->server_name : r->target.host;
}

static void
on_bev_event(struct bufferevent *bev, short what, void *arg)
{
    struct drv_redis *r;
    char why[WHY_MAX];
    unsigned long ossl = 0, e;
    int sys = EVUTIL_SOCKET_ERROR();
    SSL *ssl;

    DRV_CAST(r, arg, DRV_REDIS_MAGIC);
    DRV_ASSERT(r->bev == bev);
    if (what & BEV_EVENT_CONNECTED) {
        /* the TLS handshake is done (plain sockets never get here) */
        ssl = bufferevent_openssl_get_ssl(bev);
        r->stats.tls_handshakes++;
        if (SSL_session_reused(ssl))
            r->stats.tls_resumed++;
        DRV_LOG_DEBUG("redis tls handshake done", "conn=%s peer=%s "
                      "version=%s resumed=%d", r->label, r->peer,
                      SSL_get_version(ssl), SSL_session_reused(ssl));
        begin_setup(r);
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    if (r->ssl_ctx != NULL) {
        /* the oldest error is the cause; later ones are consequences */
        while ((e = bufferevent_get_openssl_error(bev)) != 0)
            if (ossl == 0)
                ossl = e;
        drv__redis_tls_describe(bufferevent_openssl_get_ssl(bev), ossl,
                                (what & BEV_EVENT_EOF) ? 0 : sys,
                                r->state != DRV_REDIS_READY,
                                verify_name(r), why, sizeof why);
    } else if (what & BEV_EVENT_EOF) {
        snprintf(why, sizeof why, "connection closed by the server");
    } else {
        snprintf(why, sizeof why, "%s", strerror(sys));
    }
    drop(r, why);
}

/* ------------------------------------------------------------ connect */

/* Numeric "host:port" ("[v6]:port") or the socket path of sa. */
static void
format_peer(const struct sockaddr *sa, socklen_t len, char *buf, size_t n)
{
    char host[INET6_ADDRSTRLEN], port[8];

    if (sa->sa_family == AF_UNIX) {
        snprintf(buf, n, "%s", ((const struct sockaddr_un *)sa)->sun_path);
        return;
    }
    if (getnameinfo(sa, len, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        snprintf(buf, n, "?");
        return;
    }
    snprintf(buf, n, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host,
             port);
}

/* Step 4: fd is connected; wrap it and start TLS or the setup. */
static void
transport_up(struct drv_redis *r)
{
    SSL *ssl = NULL;
    int fd = r->fd;

    event_del(r->conn_ev);
    r->fd = -1;
    if (!r->target.is_unix)
        set_tcp_options(fd, r->set.keepalive_s);
    drv__redis_arena_reset(&r->arena);
    r->reader = drv__redis_arena_reader(&r->arena);
    if (r->reader == NULL)
        goto oom;
    if (r->ssl_ctx != NULL) {
        ssl = drv__redis_tls_ssl(r->ssl_ctx, verify_name(r));
        if (ssl == NULL)
            goto oom;
        SSL_set_app_data(ssl, r); /* for on_new_session */
        if (r->session != NULL)
            (void)SSL_set_session(ssl, r->session); /* resume if it can */
        r->bev = bufferevent_openssl_socket_new(
            r->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
            BEV_OPT_CLOSE_ON_FREE);
        if (r->bev == NULL) {
            SSL_free(ssl);
            goto oom;
        }
        /* a server closing without close_notify is an EOF, not an error */
        bufferevent_openssl_set_allow_dirty_shutdown(r->bev, 1);
    } else {
        r->bev = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (r->bev == NULL)
            goto oom;
    }
    bufferevent_setcb(r->bev, on_read, NULL, on_bev_event, r);
    if (r->ssl_ctx != NULL) {
        DRV_AZ(bufferevent_enable(r->bev, EV_READ | EV_WRITE));
    } else {
        DRV_AZ(bufferevent_disable(r->bev, EV_READ));
        DRV_AZ(bufferevent_enable(r->bev, EV_WRITE));
        event_assign(r->read_ev, r->base, fd, EV_READ | EV_PERSIST,
                     on_sock_read, r);
        DRV_AZ(event_add(r->read_ev, NULL));
        r->read_armed = 1;
    }
    DRV_LOG_DEBUG("redis socket connected", "conn=%s peer=%s tls=%d",
                  r->label, r->peer, r->ssl_ctx != NULL);
    if (r->ssl_ctx == NULL)
        begin_setup(r);
    /* else the handshake runs; BEV_EVENT_CONNECTED starts the setup */
    return;
oom:
    close(fd);
    drop(r, "out of memory");
}

/*
 * Start a non-blocking connect to sa. 0: connected at once (unix) or in
 * progress (r->fd, r->conn_ev armed); else -errno (failed at once, r->fd
 * closed).
 */
static int
try_addr(struct drv_redis *r, const struct sockaddr *sa, socklen_t len)
{
    int fd, e;

    format_peer(sa, len, r->peer, sizeof r->peer);
    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                0);
    if (fd < 0)
        return -errno;
    r->fd = fd;
    if (connect(fd, sa, len) == 0) {
        transport_up(r);
        return 0;
    }
    e = errno;
    if (e == EINPROGRESS || e == EAGAIN) {
        /* a unix socket with a full backlog says EAGAIN: wait too */
        event_assign(r->conn_ev, r->base, fd, EV_WRITE, on_conn, r);
        DRV_AZ(event_add(r->conn_ev, NULL));
        r->connect_deadline_ns =
            drv_clock_mono_ns() + r->set.connect_timeout_ns;
        watch_arm(r, r->connect_deadline_ns);
        return 0;
    }
    close(fd);
    r->fd = -1;
    return -e;
}

/* Try the remaining addresses of r->ai in order; drop when none is left. */
static void
next_addr(struct drv_redis *r)
{
    struct addrinfo *a;
    int rc;

    while ((a = r->ai_next) != NULL) {
        r->ai_next = a->ai_next;
        rc = try_addr(r, a->ai_addr, a->ai_addrlen);
        if (rc == 0)
            return;
        snprintf(r->why, sizeof r->why, "connect to %s: %s", r->peer,
                 strerror(-rc));
    }
    drop(r, r->why[0] != '\0' ? r->why : "no address to connect to");
}

static void
on_conn(evutil_socket_t fd, short what DRV_UNUSED, void *arg)
{
    struct drv_redis *r;
    socklen_t len;
    int e = 0;

    DRV_CAST(r, arg, DRV_REDIS_MAGIC);
    DRV_ASSERT(r->fd == fd);
    len = sizeof e;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
        e = errno;
    if (e == 0) {
        transport_up(r);
        return;
    }
    snprintf(r->why, sizeof r->why, "connect to %s: %s", r->peer,
             strerror(e));
    close(fd);
    r->fd = -1;
    if (r->target.is_unix)
        drop(r, r->why);
    else
        next_addr(r);
}

/* Note what a name resolved to, in the log once per change. */
static void
log_addresses(struct drv_redis *r)
{
    char list[sizeof r->addrs_log], one[PEER_MAX], q[sizeof list + 8];
    struct addrinfo *a;
    size_t o = 0;

    list[0] = '\0';
    for (a = r->ai; a != NULL && o + 1 < sizeof list; a = a->ai_next) {
        format_peer(a->ai_addr, a->ai_addrlen, one, sizeof one);
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s",
                              o > 0 ? "," : "", one);
    }
    if (strcmp(list, r->addrs_log) == 0)
        return;
    snprintf(r->addrs_log, sizeof r->addrs_log, "%s", list);
    DRV_LOG_INFO("redis host resolved", "conn=%s host=%s addresses=%s",
                 r->label, r->target.host,
                 drv_log_quote(q, sizeof q, list, strlen(list)));
}

static void
on_resolved(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv_redis *r;
    struct addrinfo *ai = NULL;
    int gai = 0;

    DRV_CAST(r, arg, DRV_REDIS_MAGIC);
    if (r->rq == NULL || !drv__redis_resolve_take(r->rq, &ai, &gai))
        return; /* a wake-up meant for a request we gave up on */
    r->rq = NULL;
    if (ai == NULL) {
        snprintf(r->why, sizeof r->why, "cannot resolve host '%s': %s",
                 r->target.host, gai_strerror(gai));
        drop(r, r->why);
        return;
    }
    r->ai = ai;
    r->ai_next = ai;
    log_addresses(r);
    next_addr(r);
}

/* A numeric host as an address list, without any lookup; NULL if host
 * is a name. */
static struct addrinfo *
numeric_addr(const char *host, int port)
{
    struct addrinfo hints, *ai = NULL;
    char ps[8];

    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    snprintf(ps, sizeof ps, "%d", port);
    if (getaddrinfo(host, ps, &hints, &ai) != 0)
        return NULL;
    return ai;
}

static void
start_connect(struct drv_redis *r)
{
    struct drv_redis_target t;
    struct sockaddr_un sun;
    int rc;

    r->gen++;
    r->stats.attempts++;
    r->state = DRV_REDIS_CONNECTING;
    r->why[0] = '\0';
    r->connect_deadline_ns = drv_clock_mono_ns() + r->set.connect_timeout_ns;
    watch_arm(r, r->connect_deadline_ns);
    if (r->locate != NULL) {
        t = r->target;
        rc = r->locate(r, &t, r->locate_ctx);
        if (rc == 0)
            rc = drv_redis_set_target(r, &t);
        if (rc < 0) {
            snprintf(r->why, sizeof r->why, "no target to connect to: %s",
                     drv_strerror(rc));
            /* -EAGAIN: not known yet (a cluster's slot map, Sentinel's
             * primary, still being read): its owner reconnects r as soon
             * as it is, and logs what goes wrong on its own side */
            r->waiting = rc == -EAGAIN;
            drop(r, r->why);
            return;
        }
    }
    DRV_LOG_DEBUG("redis connecting", "conn=%s url=%s gen=%llu", r->label,
                  r->set.url_log, (unsigned long long)r->gen);
    if (r->target.is_unix) {
        memset(&sun, 0, sizeof sun);
        sun.sun_family = AF_UNIX;
        snprintf(sun.sun_path, sizeof sun.sun_path, "%s", r->target.path);
        rc = try_addr(r, (struct sockaddr *)&sun, sizeof sun);
        if (rc < 0) {
            /* failed at once (a missing socket): nothing runs for it */
            snprintf(r->why, sizeof r->why, "connect to %s: %s", r->peer,
                     strerror(-rc));
            drop(r, r->why);
        }
        return;
    }
    r->ai = numeric_addr(r->target.host, r->target.port);
    if (r->ai != NULL) {
        r->ai_next = r->ai;
        next_addr(r);
        return;
    }
    r->stats.resolves++;
    r->rq = drv__redis_resolve_start(r->target.host, r->target.port,
                                     r->resolve_ev, &rc);
    if (r->rq == NULL) {
        snprintf(r->why, sizeof r->why, "cannot start resolving '%s': %s",
                 r->target.host, strerror(-rc));
        drop(r, r->why);
    }
}

static void
on_retry(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv_redis *r;

    DRV_CAST(r, arg, DRV_REDIS_MAGIC);
    if (!r->freeing && r->state == DRV_REDIS_DOWN)
        start_connect(r);
}

/* What the attempt was doing when its connect deadline passed. */
static const char *
connect_step(const struct drv_redis *r)
{
    if (r->rq != NULL)
        return "resolving the host timed out";
    if (r->fd >= 0)
        return "connect timed out";
    if (r->bev != NULL && r->ssl_ctx != NULL)
        return "TLS handshake timed out";
    return "connect timed out";
}

/* A reply has been arriving since the last deadline check: the reader
 * holds unparsed bytes, and more (or other) than then. */
static int
receiving(struct drv_redis *r)
{
    const redisReader *rd = r->reader;
    size_t len = rd != NULL ? rd->len - rd->pos : 0;
    int moved = len > 0 && len != r->rx_seen;

    r->rx_seen = len;
    return moved;
}

static void
on_watch(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv_redis *r;
    struct cmd *c;
    int64_t now, next = 0;
    int expired = 0, npending = 0;

    DRV_CAST(r, arg, DRV_REDIS_MAGIC);
    r->watch_at_ns = 0;
    if (r->state == DRV_REDIS_DOWN || r->freeing)
        return;
    now = drv_clock_mono_ns();
    if (r->connect_deadline_ns != 0) {
        if (now >= r->connect_deadline_ns) {
            r->stats.timeouts++;
            if (r->fd >= 0 && r->ai_next != NULL) {
                /* this address does not answer: on to the next one */
                snprintf(r->why, sizeof r->why, "connect to %s: timed out",
                         r->peer);
                event_del(r->conn_ev);
                close(r->fd);
                r->fd = -1;
                next_addr(r);
                return;
            }
            drop(r, connect_step(r));
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

/* Free r and what it owns: the end of teardown. */
static void
destroy(struct drv_redis *r)
{
    struct event *evs[] = {r->kick_ev, r->retry_ev, r->watch_ev,
                           r->resolve_ev, r->conn_ev, r->read_ev, r->ask_ev};
    size_t i;

    for (i = 0; i < DRV_ARRAY_LEN(evs); i++)
        drv_loop_event_free(evs[i]);
    if (r->session != NULL)
        SSL_SESSION_free(r->session);
    if (r->ssl_ctx != NULL)
        SSL_CTX_free(r->ssl_ctx);
    explicit_bzero(&r->set.url, sizeof r->set.url);
    free(r->server_name);
    free(r->name);
    drv__redis_arena_fini(&r->arena);
    DRV_FREE_OBJ(r);
}

static void
teardown(struct drv_redis *r)
{
    struct cmd *c;

    event_del(r->retry_ev);
    event_del(r->watch_ev);
    if (r->state != DRV_REDIS_DOWN) {
        close_transport(r); /* pending -> r->done, -ECANCELED */
        lost(r, "closed");
    }
    while ((c = TAILQ_FIRST(&r->done)) != NULL) {
        TAILQ_REMOVE(&r->done, c, link);
        c->where = CMD_NEW;
        deliver(r, c, -ECANCELED, NULL);
    }
    ask_teardown(r);
    DRV_ASSERT(TAILQ_EMPTY(&r->pending));
    DRV_ASSERT(r->rq == NULL && r->bev == NULL && r->fd < 0);
    destroy(r);
}

static void
on_kick(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, void *arg)
{
    struct drv_redis *r;
    struct cmd_list batch;
    struct cmd *c;

    DRV_CAST(r, arg, DRV_REDIS_MAGIC);
    if (!r->freeing && r->drop_gen != 0 && r->drop_gen == r->gen &&
        r->state != DRV_REDIS_DOWN)
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

/*
 * OpenSSL has a new session (TLS 1.3: a ticket, sent after the handshake)
 * for r's connection: keep a copy to resume on the next connect. A copy,
 * because freeing an SSL that was not shut down cleanly (the server went
 * away, a deadline dropped it: our usual case) marks its own session not
 * resumable. Returns 0: OpenSSL keeps its reference.
 */
static int
on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct drv_redis *r;
    SSL_SESSION *copy = SSL_SESSION_dup(sess);

    /* the SSL's, not the SSL_CTX's: an ASK companion shares the ctx */
    DRV_CAST(r, SSL_get_app_data(ssl), DRV_REDIS_MAGIC);
    if (copy == NULL)
        return 0; /* out of memory: the next connect is a full one */
    if (r->session != NULL)
        SSL_SESSION_free(r->session);
    r->session = copy;
    return 0;
}

/* ---------------------------------------------------------------- public */

/* r's events (r->base set); then its first attempt is due on the first
 * loop turn, not in here. 0, or -ENOMEM (the caller frees those made). */
static int
conn_events(struct drv_redis *r)
{
    r->watch_ev = evtimer_new(r->base, on_watch, r);
    r->retry_ev = evtimer_new(r->base, on_retry, r);
    r->kick_ev = event_new(r->base, -1, 0, on_kick, r);
    r->resolve_ev = event_new(r->base, -1, 0, on_resolved, r);
    r->conn_ev = event_new(r->base, -1, 0, on_conn, r);
    r->read_ev = event_new(r->base, -1, 0, on_sock_read, r);
    r->ask_ev = evtimer_new(r->base, on_ask_timer, r);
    if (r->watch_ev == NULL || r->retry_ev == NULL || r->kick_ev == NULL ||
        r->resolve_ev == NULL || r->conn_ev == NULL || r->read_ev == NULL ||
        r->ask_ev == NULL)
        return -ENOMEM;
    event_active(r->retry_ev, EV_TIMEOUT, 0);
    return 0;
}

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
    SSL_CTX *ssl_ctx = NULL;
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
    /* the last thing that can fail: r is made only once nothing can */
    if (url.tls) {
        ssl_ctx = drv__redis_tls_ctx(opts->tls, err);
        if (ssl_ctx == NULL) {
            rc = err != NULL ? err->code : DRV_ECONFIG;
            goto out;
        }
    }
    DRV_ALLOC_OBJ(r, DRV_REDIS_MAGIC);
    r->loop = loop;
    r->base = drv_loop_base(loop);
    r->set.url = url;
    drv_redis_url_redact(opts->url, red, sizeof red);
    drv_log_quote(r->set.url_log, sizeof r->set.url_log, red, strlen(red));
    r->name = opts->name != NULL ? drv_xstrdup(opts->name) : NULL;
    r->label = r->name != NULL ? r->name : "redis";
    r->set.connect_timeout_ns = (opts->connect_timeout_ms > 0
                                 ? opts->connect_timeout_ms
                                 : DEF_CONNECT_TIMEOUT_MS) * DRV_NS_PER_MS;
    r->set.command_timeout_ns = (opts->command_timeout_ms > 0
                                 ? opts->command_timeout_ms
                                 : DEF_COMMAND_TIMEOUT_MS) * DRV_NS_PER_MS;
    r->set.backoff_initial_ms = opts->backoff_initial_ms > 0
                                    ? opts->backoff_initial_ms
                                    : DEF_BACKOFF_INITIAL_MS;
    r->set.backoff_max_ms = opts->backoff_max_ms > 0 ? opts->backoff_max_ms
                                                     : DEF_BACKOFF_MAX_MS;
    if (r->set.backoff_max_ms < r->set.backoff_initial_ms)
        r->set.backoff_max_ms = r->set.backoff_initial_ms;
    r->set.keepalive_s = opts->keepalive_s == 0 ? DEF_KEEPALIVE_S
                                                : opts->keepalive_s;
    r->on_state = opts->on_state;
    r->ctx = opts->ctx;
    r->locate = opts->locate;
    r->locate_ctx = opts->locate_ctx;
    r->set.max_string = opts->max_string_bytes;
    drv__redis_arena_init(&r->arena, r->set.max_string);
    r->state = DRV_REDIS_DOWN;
    r->client_id = -1;
    r->fd = -1;
    r->target.is_unix = url.is_unix;
    r->target.port = url.port;
    snprintf(r->target.host, sizeof r->target.host, "%s", url.host);
    snprintf(r->target.path, sizeof r->target.path, "%s", url.path);
    TAILQ_INIT(&r->pending);
    TAILQ_INIT(&r->done);
    TAILQ_INIT(&r->asked);
    if (ssl_ctx != NULL) {
        r->ssl_ctx = ssl_ctx;
        /* keep each new session for the next connect (resumption): for
         * TLS 1.3 the server sends it after the handshake */
        SSL_CTX_set_session_cache_mode(r->ssl_ctx,
                                       SSL_SESS_CACHE_CLIENT |
                                       SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(r->ssl_ctx, on_new_session);
        if (opts->tls != NULL && opts->tls->server_name != NULL &&
            opts->tls->server_name[0] != '\0')
            r->server_name = drv_xstrdup(opts->tls->server_name);
    }
    DRV_AZ(conn_events(r)); /* out of memory aborts, as DRV_ALLOC_OBJ */
    *out = r;
    rc = 0;
out:
    explicit_bzero(&url, sizeof url);
    return rc;
}

void
drv_redis_free(struct drv_redis *r)
{
    if (!DRV_FREE_ONCE(r, DRV_REDIS_MAGIC))
        return;
    r->on_state = NULL;
    r->ctx = NULL;
    r->locate = NULL;
    r->locate_ctx = NULL;
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
    /* the formatter takes char ** but only reads: the cast is safe */
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
    /* MULTI's OK and the QUEUED replies are consumed by the EXEC command
     * (c->skip), which carries the deadline and the caller's callback. */
    if (write_argv(r, 1, (const char **)multi, NULL, keep_of(r, c)) != 0)
        goto oom;
    for (i = 0; i < n; i++)
        if (write_argv(r, cmds[i].argc, (const char **)cmds[i].argv,
                       cmds[i].argvlen, keep_of(r, c)) != 0)
            goto oom;
    c->skip = n + 1;
    if (send_argv(r, c, 1, (const char **)exec, NULL) == 0)
        return 0;
oom:
    /* A half-written transaction must not stay on this connection. */
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

int
drv_redis_set_target(struct drv_redis *r, const struct drv_redis_target *t)
{
    DRV_CHECK_OBJ(r, DRV_REDIS_MAGIC);
    if (t->is_unix ? t->path[0] != '/' ||
                         strnlen(t->path, sizeof t->path) == sizeof t->path
                   : t->host[0] == '\0' || t->port <= 0 || t->port > 65535 ||
                         strnlen(t->host, sizeof t->host) == sizeof t->host)
        return -EINVAL;
    if (r->session != NULL &&
        (t->is_unix != r->target.is_unix ||
         strcmp(t->host, r->target.host) != 0 ||
         t->port != r->target.port)) {
        /* a session is resumed only with the server it came from */
        SSL_SESSION_free(r->session);
        r->session = NULL;
    }
    if (t != &r->target)
        r->target = *t;
    return 0;
}

void
drv_redis_get_target(const struct drv_redis *r, struct drv_redis_target *out)
{
    DRV_CHECK_OBJ(r, DRV_REDIS_MAGIC);
    *out = r->target;
}

int
drv_redis_reconnect(struct drv_redis *r, const char *why)
{
    DRV_CHECK_OBJ(r, DRV_REDIS_MAGIC);
    if (r->freeing)
        return -ECANCELED;
    r->retries = 0;
    if (r->state != DRV_REDIS_DOWN) {
        /* dropped from the kick, never inside this call; lost() then
         * starts the next attempt on the following turn */
        r->drop_gen = r->gen;
        r->drop_why = why != NULL ? why : "reconnect requested";
        r->retry_now = 1;
        kick(r);
    } else {
        event_del(r->retry_ev); /* no backoff wait */
        event_active(r->retry_ev, EV_TIMEOUT, 0);
    }
    return 0;
}

enum drv_redis_state
drv_redis_state(const struct drv_redis *r)
{
    DRV_CHECK_OBJ(r, DRV_REDIS_MAGIC);
    return r->state;
}

void
drv_redis_flush(struct drv_redis *r)
{
    struct evbuffer *out;

    DRV_CHECK_OBJ(r, DRV_REDIS_MAGIC);
    if (r->state != DRV_REDIS_READY || r->bev == NULL ||
        r->ssl_ctx != NULL || r->freeing)
        return;
    out = bufferevent_get_output(r->bev);
    /* what is not written now (EAGAIN, an error) the bufferevent writes,
     * or reports, at its next write event as it would have. A socket
     * bufferevent keeps the front of its output frozen but for its own
     * writes: thawed for this one, as its write callback does. */
    if (evbuffer_get_length(out) > 0) {
        evbuffer_unfreeze(out, 1);
        (void)evbuffer_write(out, bufferevent_getfd(r->bev));
        evbuffer_freeze(out, 1);
    }
}

void
drv_redis_get_info(const struct drv_redis *r, struct drv_redis_info *out)
{
    DRV_CHECK_OBJ(r, DRV_REDIS_MAGIC);
    out->state = r->state;
    out->client_id = r->state == DRV_REDIS_READY ? r->client_id : -1;
    out->peer = r->state == DRV_REDIS_DOWN ? "" : r->peer;
    out->last_error = r->last_err;
    out->name = r->label;
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
    if (DRV_NO_OBJ(s, SCRIPT_MAGIC))
        return;
    free(s->text);
    DRV_FREE_OBJ(s);
}

/* Write EVALSHA sha|EVAL text, numkeys, c's saved args on r's live
 * connection (r may be the companion of c's connection). */
static int
write_script(struct drv_redis *r, const struct cmd *c, int by_sha)
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
    rc = write_argv(r, n, argv, argvlen, NULL);
    if (argv != small) {
        free(argv);
        free(argvlen);
    }
    return rc;
}

/* EVALSHA sha|EVAL text, numkeys, saved args; on the live context. */
static int
send_script(struct drv_redis *r, struct cmd *c, int by_sha)
{
    int rc;

    DRV_AN(r->bev);
    rc = write_script(r, c, by_sha);
    if (rc == 0)
        queue_sent(r, c);
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
        /* lengths, then pointers (aligned after them), then bytes */
        _Static_assert(sizeof(size_t) % _Alignof(const char *) == 0,
                       "argv follows argvlen");
        c->argvlen = drv_xmalloc((size_t)argc * (sizeof *c->argvlen +
                                                 sizeof *c->argv) + total);
        c->argv = (const char **)(void *)(c->argvlen + argc);
        c->argbuf = (char *)(c->argv + argc);
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
