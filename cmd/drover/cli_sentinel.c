/*
 * cli_sentinel.c -- the CLI's (and the dashboard's) way to the primary
 * with redis.sentinel: ask the sentinels in order, each with a short
 * deadline (an unreachable one is skipped), SENTINEL
 * get-master-addr-by-name, then check ROLE on the node named; when it is
 * not the primary (a sentinel that has not heard of a failover yet, or a
 * misconfigured one) the next sentinel is asked, and when none named the
 * primary the round is repeated after a pause, for a few seconds. The
 * result is a URL with the host put in, which drv__cli_connect then uses
 * as any other. Blocking (pkg/redis's drv_redis_sync, so names and TLS
 * work as for the data connection): a CLI run is one short conversation.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drover/clock.h"
#include "drover/common.h"
#include "drover/config.h"
#include "drover/doctor.h"
#include "drover/redis.h"
#include "drover/redis_sentinel.h"

#include "cli.h"

#define ASK_TIMEOUT_MS 1000  /* connect and reply deadline per node */
#define RETRY_PAUSE_MS 250   /* before asking again */
#define RETRIES 20           /* rounds before giving up (about 5 s) */

#define URL_MAX 1024

/*
 * Run one command (NULL-terminated words) on a new connection to url;
 * the reply into *out (caller frees), or -1 with why (size n) saying what
 * failed.
 */
static int
ask(const char *url, const struct drv_redis_tls *tls, redisReply **out,
    char *why, size_t n, ...)
{
    struct drv_redis_sync *s = NULL;
    struct drv_argv a;
    struct drv_err err;
    const char *w = NULL;
    va_list ap;
    int rc;

    *out = NULL;
    drv_argv_init(&a);
    va_start(ap, n);
    while ((w = va_arg(ap, const char *)) != NULL)
        drv_argv_adds(&a, w);
    va_end(ap);
    rc = drv_redis_sync_connect(url, tls, ASK_TIMEOUT_MS, &s, &err);
    if (rc == 0)
        rc = drv_redis_sync_run(s, 1, &a, out, &err);
    if (rc < 0)
        snprintf(why, n, "%s", err.msg);
    drv_redis_sync_free(s);
    drv_argv_fini(&a);
    return rc < 0 ? -1 : 0;
}

static void
pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Ask sentinel addr (config text) for the primary into *a; 0 or -1. */
static int
ask_sentinel(struct drv_cli *cli, const struct drv_redis_tls *tls,
             const char *addr, struct drv_redis_sentinel_addr *a, char *why,
             size_t n)
{
    const struct drv_config_sentinel *cs = &cli->cfg->redis.sentinel;
    struct drv_redis_sentinel_addr sa;
    redisReply *r = NULL;
    struct drv_err err;
    char url[URL_MAX];
    int rc = -1;

    if (drv_redis_sentinel_addr_parse(addr, &sa, &err) < 0 ||
        drv_redis_sentinel_conn_url(cli->cfg->redis.url, cs->user, &sa, url,
                                    sizeof url) < 0) {
        snprintf(why, n, "sentinel %.80s: bad address", addr);
        return -1;
    }
    if (ask(url, tls, &r, why, n, "SENTINEL", "get-master-addr-by-name",
            cs->master, (char *)NULL) == 0) {
        rc = drv_redis_sentinel_parse_master(r, a, &err) < 0 ? -1 : 0;
        if (rc < 0)
            snprintf(why, n, "sentinel %.80s: %.160s", addr, err.msg);
    }
    if (r != NULL)
        freeReplyObject(r);
    explicit_bzero(url, sizeof url);
    return rc;
}

/* The node at url is the primary (ROLE master): 1, or 0 with why. */
static int
is_primary(const char *url, const struct drv_redis_tls *tls, char *why,
           size_t n)
{
    redisReply *r = NULL;
    struct drv_err err;
    int m = 0;

    if (ask(url, tls, &r, why, n, "ROLE", (char *)NULL) == 0) {
        m = drv_redis_sentinel_parse_role(r, &err) == 1;
        if (!m)
            snprintf(why, n, "the node named is not the primary: ROLE "
                     "%.160s", err.msg);
    }
    if (r != NULL)
        freeReplyObject(r);
    return m;
}

int
drv__cli_sentinel_url(struct drv_cli *cli, const struct drv_redis_tls *tls,
                      char *out, size_t n)
{
    const struct drv_config_sentinel *cs = &cli->cfg->redis.sentinel;
    struct drv_redis_sentinel_addr a;
    char why[256] = "no sentinel configured";
    int round;
    size_t i;

    for (round = 0; round < RETRIES; round++) {
        if (round > 0)
            pause_ms(RETRY_PAUSE_MS);
        for (i = 0; i < cs->naddrs; i++) {
            if (ask_sentinel(cli, tls, cs->addrs[i], &a, why,
                             sizeof why) < 0)
                continue;   /* the next sentinel */
            if (drv_redis_sentinel_url_at(cli->cfg->redis.url, &a, out,
                                          n) < 0) {
                fprintf(stderr, "%s: redis.url too long\n", cli->prog);
                return DRV_ECONFIG;
            }
            if (is_primary(out, tls, why, sizeof why)) {
                cli->found_ns = drv_clock_mono_ns();
                snprintf(cli->primary, sizeof cli->primary, "%s:%d", a.host,
                         a.port);
                return 0;
            }
            explicit_bzero(out, n); /* stale, or failing over: the next */
        }
    }
    fprintf(stderr, "%s: no primary found through the sentinels of %s: "
            "%s\n", cli->prog, cs->master, why);
    return DRV_EDOWN;
}

void
drv__cli_sentinel_survey(struct drv_cli *cli, const struct drv_redis_tls *tls,
                         struct drv_queue_doctor_sentinel *out)
{
    const struct drv_config_sentinel *cs = &cli->cfg->redis.sentinel;
    struct drv_redis_sentinel_addr sa;
    struct drv_redis_sync *s = NULL;
    redisReply *r[2] = {NULL, NULL};
    struct drv_argv a[2];
    struct drv_err err;
    char url[URL_MAX];
    size_t i;

    for (i = 0; i < cs->naddrs; i++) {
        struct drv_queue_doctor_sentinel *o = &out[i];

        memset(o, 0, sizeof *o);
        o->addr = cs->addrs[i];
        o->quorum = o->known = -1;
        if (drv_redis_sentinel_addr_parse(cs->addrs[i], &sa, &err) < 0 ||
            drv_redis_sentinel_conn_url(cli->cfg->redis.url, cs->user, &sa,
                                        url, sizeof url) < 0) {
            snprintf(o->error, sizeof o->error, "a bad address");
            continue;
        }
        drv_argv_init(&a[0]);
        drv_argv_init(&a[1]);
        drv_argv_adds(&a[0], "SENTINEL");
        drv_argv_adds(&a[0], "get-master-addr-by-name");
        drv_argv_adds(&a[0], cs->master);
        drv_argv_adds(&a[1], "SENTINEL");
        drv_argv_adds(&a[1], "master");
        drv_argv_adds(&a[1], cs->master);
        if (drv_redis_sync_connect(url, tls, ASK_TIMEOUT_MS, &s, &err) < 0 ||
            drv_redis_sync_run(s, 2, a, r, &err) < 0)
            snprintf(o->error, sizeof o->error, "unreachable: %.200s",
                     err.msg);
        else
            drv_queue_doctor_sentinel_parse(o, r[0], r[1]);
        freeReplyObject(r[0]);
        freeReplyObject(r[1]);
        r[0] = r[1] = NULL;
        drv_redis_sync_free(s);
        s = NULL;
        drv_argv_fini(&a[0]);
        drv_argv_fini(&a[1]);
        explicit_bzero(url, sizeof url);
    }
}

int
drv__cli_sentinel_stale(const struct drv_cli *cli)
{
    return cli->rs != NULL && cli->cfg != NULL &&
           cli->cfg->redis.sentinel.master != NULL &&
           drv_clock_mono_ns() - cli->found_ns >
               DRV_CLI_SENTINEL_RECHECK_MS * DRV_NS_PER_MS;
}
