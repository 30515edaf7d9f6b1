/*
 * cli_sentinel.c -- the CLI's (and the dashboard's) way to the primary
 * with redis.sentinel: ask the sentinels in order, each with a short
 * deadline (an unreachable one is skipped), SENTINEL
 * get-master-addr-by-name, then check ROLE on the node named; when it is
 * not the primary (a sentinel that has not heard of a failover yet, or a
 * misconfigured one) the next sentinel is asked, and when none named the
 * primary the round is repeated after a pause, for a few seconds. The result is a URL
 * with the host put in, which drv__cli_connect then uses as any other.
 * Blocking: a CLI run is one short conversation.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drover/common.h"
#include "drover/config.h"
#include "drover/redis.h"
#include "drover/redis_sentinel.h"

#include "cli.h"

#define ASK_TIMEOUT_MS 1000  /* connect and reply deadline per node */
#define RETRY_PAUSE_MS 250   /* before asking again */
#define RETRIES 20           /* rounds before giving up (about 5 s) */

/* A blocking connection to a with the ASK_TIMEOUT_MS deadlines, or NULL
 * (why in buf). */
static redisContext *
connect_to(const struct drv_redis_sentinel_addr *a, char *why, size_t n)
{
    struct timeval tv = {ASK_TIMEOUT_MS / 1000,
                         (ASK_TIMEOUT_MS % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(a->host, a->port, tv);

    if (c == NULL) {
        snprintf(why, n, "out of memory");
        return NULL;
    }
    if (c->err || redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(why, n, "%s", c->errstr);
        redisFree(c);
        return NULL;
    }
    return c;
}

/* AUTH on c when a password is known; 0 or -1 (why in buf). */
static int
auth(redisContext *c, const char *user, const char *pw, char *why, size_t n)
{
    redisReply *r = NULL;
    int rc = 0;

    if (pw == NULL || *pw == '\0')
        return 0;
    if (user != NULL && *user != '\0')
        r = redisCommand(c, "AUTH %s %s", user, pw);
    else
        r = redisCommand(c, "AUTH %s", pw);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        snprintf(why, n, "AUTH: %s", r != NULL ? r->str : c->errstr);
        rc = -1;
    }
    if (r != NULL)
        freeReplyObject(r);
    return rc;
}

/* Ask sentinel a for the primary of master into *out; 0 or -1 (why). */
static int
ask_sentinel(const struct drv_config_sentinel *cs,
             const struct drv_redis_sentinel_addr *a,
             struct drv_redis_sentinel_addr *out, char *why, size_t n)
{
    redisContext *c = connect_to(a, why, n);
    redisReply *r = NULL;
    struct drv_err err;
    int rc = -1;

    if (c == NULL)
        return -1;
    if (auth(c, cs->user, getenv("DROVER_SENTINEL_PASSWORD"), why, n) < 0)
        goto out;
    r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", cs->master);
    if (r == NULL) {
        snprintf(why, n, "%s", c->errstr);
        goto out;
    }
    if (drv_redis_sentinel_parse_master(r, out, &err) < 0) {
        snprintf(why, n, "%s", err.msg);
        goto out;
    }
    rc = 0;
out:
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    return rc;
}

/* ROLE of the node at a is master: 1, 0 (why says the role or the
 * error). url carries the credentials. */
static int
is_primary(const struct drv_redis_sentinel_addr *a,
           const struct drv_redis_url *url, char *why, size_t n)
{
    redisContext *c = connect_to(a, why, n);
    redisReply *r = NULL;
    struct drv_err err;
    int m = 0;

    if (c == NULL)
        return 0;
    if (auth(c, url->user, url->password, why, n) < 0)
        goto out;
    r = redisCommand(c, "ROLE");
    m = drv_redis_sentinel_parse_role(r, &err) == 1;
    if (!m)
        snprintf(why, n, "ROLE %.200s", r != NULL ? err.msg : c->errstr);
out:
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    return m;
}

static void
pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int
drv__cli_sentinel_url(struct drv_cli *cli, char *out, size_t n)
{
    const struct drv_config_sentinel *cs = &cli->cfg->redis.sentinel;
    struct drv_redis_sentinel_addr sa, primary;
    struct drv_redis_url url;
    struct drv_err err;
    const char *envpw = getenv("DROVER_REDIS_PASSWORD");
    char why[256] = "no sentinel configured";
    char placeholder[600];
    int round, rc = DRV_EDOWN;
    size_t i;

    /* the credentials, for ROLE: the URL with a host put in parses */
    memset(&primary, 0, sizeof primary);
    snprintf(primary.host, sizeof primary.host, "127.0.0.1");
    primary.port = 6379;
    if (drv_redis_sentinel_url_at(cli->cfg->redis.url, &primary, placeholder,
                                  sizeof placeholder) < 0 ||
        drv_redis_url_parse(placeholder, &url, &err) < 0) {
        fprintf(stderr, "%s: redis.url: %s\n", cli->prog,
                drv_redis_sentinel_url_check(cli->cfg->redis.url, &err) < 0
                    ? err.msg : "cannot be used with redis.sentinel");
        explicit_bzero(placeholder, sizeof placeholder);
        return DRV_ECONFIG;
    }
    explicit_bzero(placeholder, sizeof placeholder);
    if (url.password[0] == '\0' && envpw != NULL &&
        strlen(envpw) < sizeof url.password)
        strcpy(url.password, envpw);
    for (round = 0; round < RETRIES && rc < 0; round++) {
        if (round > 0)
            pause_ms(RETRY_PAUSE_MS);
        for (i = 0; i < cs->naddrs && rc < 0; i++) {
            if (drv_redis_sentinel_addr_parse(cs->addrs[i], &sa, &err) < 0 ||
                ask_sentinel(cs, &sa, &primary, why, sizeof why) < 0)
                continue;   /* the next sentinel */
            if (!is_primary(&primary, &url, why, sizeof why))
                continue;   /* stale, or failing over: ask the others */
            rc = 0;
        }
    }
    explicit_bzero(&url, sizeof url);
    if (rc < 0) {
        fprintf(stderr, "%s: no primary found through the sentinels of "
                "%s: %s\n", cli->prog, cs->master, why);
        return rc;
    }
    if (drv_redis_sentinel_url_at(cli->cfg->redis.url, &primary, out, n) < 0) {
        fprintf(stderr, "%s: redis.url too long\n", cli->prog);
        return DRV_ECONFIG;
    }
    return 0;
}
