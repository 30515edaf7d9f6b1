/*
 * cli_redis.c -- the CLI's config and its blocking Redis connection.
 *
 * pkg/redis's blocking client (struct drv_redis_sync): the timeout bounds
 * the connect and every later read and write. After any I/O error the
 * connection is unusable; we report it and give up: a CLI run is one
 * short conversation, nothing to reconnect for.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/common.h"
#include "drover/config.h"
#include "drover/error.h"
#include "drover/redis.h"

#include "cli.h"

/* Config text standing for "no file": every default. */
static const char defaults_text[] = "# defaults\n";

/* ---------------------------------------------------------------- config */

int
drv__cli_config(struct drv_cli *cli)
{
    struct drv_config_errors errs;
    struct drv_err err;
    int rc;

    DRV_CHECK_OBJ(cli, DRV_CLI_MAGIC);
    if (cli->cfg != NULL)
        return 0;
    if (cli->redis_url != NULL &&
        drv_config_check_redis_url(cli->redis_url, &err) < 0)
        return drv__cli_usage_error(cli, "--redis: %s", err.msg);
    drv_config_errors_init(&errs);
    if (cli->file != NULL)
        rc = drv_config_load(cli->file, &cli->cfg, &errs);
    else
        rc = drv_config_load_string("(defaults)", defaults_text,
                                    sizeof defaults_text - 1, &cli->cfg,
                                    &errs);
    if (rc < 0) {
        drv_config_errors_print(&errs, stderr);
        drv_config_errors_fini(&errs);
        return DRV_ECONFIG;
    }
    drv_config_errors_fini(&errs);
    if (drv_config_secret_readable(cli->file, cli->cfg))
        fprintf(stderr, "%s: warning: config %s is readable by others and "
                "holds the Redis password; chmod 600 it\n", cli->prog,
                cli->file);
    if (cli->redis_url != NULL) {
        drv_config_set_redis_url(cli->cfg, cli->redis_url);
        /* the copy is made: ps need not show the password any more (the
         * string is argv's) */
        drv_redis_url_scrub((char *)cli->redis_url);
    }
    drv_redis_url_redact(cli->cfg->redis.url, cli->url_shown,
                         sizeof cli->url_shown);
    return 0;
}

/* ------------------------------------------------------------ connection */

int
drv__cli_connect(struct drv_cli *cli)
{
    struct drv_redis_tls tls;
    struct drv_err err;
    char at[1024];
    int rc;

    DRV_CHECK_OBJ(cli, DRV_CLI_MAGIC);
    rc = drv__cli_config(cli);
    if (rc < 0)
        return rc;
    if (cli->rs != NULL)
        return 0;
    drv_config_redis_tls(cli->cfg, &tls);
    if (cli->cfg->redis.cluster.nnodes > 0) {
        rc = drv__cli_cluster_connect(cli, &tls, &err);
        if (rc < 0)
            fprintf(stderr, "%s: cannot reach the Redis Cluster: %s\n",
                    cli->prog, err.msg);
        return rc == -ETIMEDOUT ? DRV_EDOWN : rc;
    }
    if (cli->cfg->redis.sentinel.master != NULL) {
        rc = drv__cli_sentinel_url(cli, &tls, at, sizeof at);
        if (rc < 0)
            return rc;
        drv_redis_url_redact(at, cli->url_shown, sizeof cli->url_shown);
    } else {
        snprintf(at, sizeof at, "%s", cli->cfg->redis.url);
    }
    rc = drv_redis_sync_connect(at, &tls, DRV_CLI_TIMEOUT_MS, &cli->rs,
                                &err);
    explicit_bzero(at, sizeof at);
    if (rc == DRV_ECONFIG)
        fprintf(stderr, "%s: %s\n", cli->prog, err.msg);
    else if (rc == DRV_EREDIS)
        fprintf(stderr, "%s: Redis at %s: %s\n", cli->prog, cli->url_shown,
                err.msg);
    else if (rc < 0)
        fprintf(stderr, "%s: cannot connect to Redis at %s: %s\n",
                cli->prog, cli->url_shown, err.msg);
    if (rc == -ETIMEDOUT)
        rc = DRV_EDOWN;
    return rc;
}

void
drv__cli_disconnect(struct drv_cli *cli)
{
    DRV_CHECK_OBJ(cli, DRV_CLI_MAGIC);
    drv_redis_sync_free(cli->rs);
    cli->rs = NULL;
    drv__cli_cluster_free(cli->cluster);
    cli->cluster = NULL;
    drv_config_free(cli->cfg);
    cli->cfg = NULL;
}

/* -------------------------------------------------------------- commands */

int
drv__cli_run(struct drv_cli *cli, const struct drv_queue_cmds *c,
             redisReply ***outp)
{
    redisReply **out = NULL;
    struct drv_err err;
    int rc;

    DRV_CHECK_OBJ(cli, DRV_CLI_MAGIC);
    DRV_AN(cli->rs);
    *outp = NULL;
    out = drv_xcalloc(c->n + 1, sizeof *out);
    if (cli->cluster != NULL)
        rc = drv__cli_cluster_run(cli, c->n, c->cmd, out, &err);
    else
        rc = drv_redis_sync_run(cli->rs, c->n, c->cmd, out, &err);
    if (rc < 0) {
        fprintf(stderr, "%s: Redis at %s: %s: %s\n", cli->prog,
                cli->url_shown, c->n > 0 ? c->cmd[0].argv[0] : "", err.msg);
        free(out);
        return DRV_EDOWN;
    }
    *outp = out;
    return 0;
}

void
drv__cli_free_replies(size_t n, redisReply **out)
{
    size_t i;

    if (out == NULL)
        return;
    for (i = 0; i < n; i++)
        if (out[i] != NULL)
            freeReplyObject(out[i]);
    free(out);
}

int
drv__cli_failed(struct drv_cli *cli, const struct drv_err *err)
{
    fprintf(stderr, "%s: %s\n", cli->prog, err->msg);
    return err->code;
}

int
drv__cli_parsed(struct drv_cli *cli, int rc, const struct drv_err *err)
{
    if (rc < 0)
        drv__cli_failed(cli, err);
    return rc;
}
