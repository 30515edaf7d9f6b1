/*
 * cli_doctor.c -- `drover doctor`: checks a Redis for drover and says
 * what to change. The checks (their commands and their judgement) are
 * pkg/queue's table (drover/doctor.h); this file sends the one batch
 * they build and prints their lines.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drover/common.h"
#include "drover/doctor.h"
#include "drover/queue.h"
#include "drover/redis.h"

#include "cli.h"

/* The clock skew between a worker and Redis that is a problem. */
#define SKEW_MAX_MS 2000

/* The user whose permissions to check: --user, else the URL's, else
 * fallback (into buf). */
static const char *
acl_user(struct drv_cli *cli, const char *given, const char *fallback,
         char *buf, size_t n)
{
    struct drv_redis_url url;
    struct drv_err err;

    if (given != NULL)
        return given;
    snprintf(buf, n, "%s", fallback);
    memset(&url, 0, sizeof url);
    if (drv_redis_url_parse(cli->cfg->redis.url, &url, &err) == 0 &&
        url.user[0] != '\0')
        snprintf(buf, n, "%s", url.user);
    explicit_bzero(&url, sizeof url);
    return buf;
}

/* Every sentinel's view into o (sents holds one per address: the caller
 * frees it). */
static void
survey(struct drv_cli *cli, struct drv_queue_doctor_opts *o,
       struct drv_queue_doctor_sentinel **sents)
{
    struct drv_redis_tls tls;

    drv_config_redis_tls(cli->cfg, &tls);
    *sents = drv_xcalloc(cli->cfg->redis.sentinel.naddrs + 1,
                         sizeof **sents);
    drv__cli_sentinel_survey(cli, &tls, *sents);
    o->sentinel_master = cli->cfg->redis.sentinel.master;
    o->sentinels = *sents;
    o->nsentinels = cli->cfg->redis.sentinel.naddrs;
    o->primary = cli->primary[0] ? cli->primary : NULL;
}

/* No primary found through the sentinels (the reason is printed): what
 * each sentinel says is the diagnosis. */
static void
sentinels_only(struct drv_cli *cli)
{
    struct drv_queue_doctor_opts o;
    struct drv_queue_doctor_sentinel *sents = NULL;
    struct drv_queue_doctor_report rep;
    size_t i;

    memset(&o, 0, sizeof o);
    survey(cli, &o, &sents);
    drv_queue_doctor_report_init(&rep);
    for (i = 0; drv_queue_doctor_checks[i].name != NULL; i++)
        if (strcmp(drv_queue_doctor_checks[i].name, "sentinels") == 0)
            drv_queue_doctor_check_judge(&drv_queue_doctor_checks[i], NULL,
                                         0, &o, &rep);
    printf("%.*s", (int)rep.text.len, rep.text.data);
    drv_queue_doctor_report_fini(&rep);
    free(sents);
}

/* Run the checks on queues (n of them; none: the config's) for the ACL
 * user and print their lines. 0, DRV_EREDIS when one found a problem,
 * or DRV_EDOWN (printed). */
static int
check(struct drv_cli *cli, const char *const *queues, size_t n,
      const char *user)
{
    struct drv_queue_doctor_opts o;
    struct drv_queue_doctor_report rep;
    struct drv_queue_doctor_sentinel *sents = NULL;
    struct drv_queue_cmds c;
    redisReply **out = NULL;
    size_t *counts = NULL;
    int rc;

    memset(&o, 0, sizeof o);
    o.prefix = cli->cfg->redis.prefix;
    o.queues = n > 0 ? queues : (const char *const *)cli->cfg->queues;
    o.nqueues = n > 0 ? n : cli->cfg->nqueues;
    o.acl_user = user;
    o.dead_max = cli->cfg->worker.dead_max;
    o.skew_max_ms = SKEW_MAX_MS;
    if (cli->cfg->redis.sentinel.master != NULL)
        survey(cli, &o, &sents); /* against the primary connected to */
    if (drv_redis_sync_cert_expiry(cli->rs, &o.cert_not_after) !=
        -ENOTCONN) {
        o.tls = 1;
        o.now_s = (int64_t)time(NULL);
        o.cert_warn_s = DRV_QUEUE_DOCTOR_CERT_WARN_S;
    }
    o.cluster = cli->cfg->redis.cluster.nnodes > 0;
    counts = drv_xcalloc(drv_queue_doctor_nchecks() + 1, sizeof *counts);
    drv_queue_cmds_init(&c);
    drv_queue_doctor_build(&c, &o, counts);
    cli->cluster_report = 1; /* a CLUSTERDOWN is a line, not a wait */
    rc = drv__cli_run(cli, &c, &out);
    if (rc == 0) {
        drv_queue_doctor_report_init(&rep);
        drv_queue_doctor_judge(out, c.n, &o, counts, &rep);
        printf("%.*s", (int)rep.text.len, rep.text.data);
        printf("%s: %d problem%s, %d unchecked\n", cli->prog, rep.problems,
               rep.problems == 1 ? "" : "s", rep.unchecked);
        /* a problem is exit 1 (failure), with nothing more on stderr:
         * the lines above said it all */
        rc = rep.problems > 0 ? DRV_EREDIS : 0;
        drv_queue_doctor_report_fini(&rep);
    }
    drv__cli_free_replies(c.n, out);
    drv_queue_cmds_fini(&c);
    free(counts);
    free(sents);
    return rc;
}

int
drv__cli_doctor(struct drv_cli *cli, int argc, char **argv)
{
    const char *user_opt = NULL, *rule_opt = NULL;
    char user[DRV_REDIS_CRED_MAX];
    struct drv_buf b;
    int rest = 0, rc;

    rc = drv__cli_args(cli, argc, argv, "QUEUE... --user= --acl-rule", &rest,
                       &user_opt, &rule_opt, NULL);
    if (rc == 0 && user_opt != NULL && user_opt[0] == '\0')
        rc = drv__cli_usage_error(cli, "--user: empty name");
    if (rc == 0)
        rc = drv__cli_config(cli);
    if (rc < 0)
        return rc;
    if (rule_opt != NULL) {
        drv_buf_init(&b);
        drv_queue_acl_rule(&b, acl_user(cli, user_opt, "drover", user,
                                        sizeof user),
                           "PASSWORD", cli->cfg->redis.prefix);
        printf("%.*s\n", (int)b.len, b.data);
        drv_buf_fini(&b);
        return 0;
    }
    rc = drv__cli_connect(cli);
    if (rc < 0 && cli->cfg->redis.sentinel.master != NULL)
        sentinels_only(cli);
    if (rc < 0)
        return rc;
    return check(cli, (const char *const *)argv + rest,
                 (size_t)(argc - rest),
                 acl_user(cli, user_opt, "default", user, sizeof user));
}
