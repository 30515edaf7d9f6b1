/*
 * cli_redis.c -- the CLI's config and its blocking Redis connection.
 *
 * hiredis's blocking API: redisConnect*WithTimeout bounds the connect,
 * redisSetTimeout every later read and write (SO_RCVTIMEO/SO_SNDTIMEO).
 * After any I/O error the context is unusable; we report it and give up:
 * a CLI run is one short conversation, nothing to reconnect for.
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
        free(cli->cfg->redis.url);
        cli->cfg->redis.url = drv_xstrdup(cli->redis_url);
        /* the copy is made: ps need not show the password any more (the
         * string is argv's) */
        drv_redis_url_scrub((char *)cli->redis_url);
    }
    drv_redis_url_redact(cli->cfg->redis.url, cli->url_shown,
                         sizeof cli->url_shown);
    return 0;
}

/* ------------------------------------------------------------ connection */

/* The context failed: say why, naming the server. */
static int
io_failed(struct drv_cli *cli, const char *doing)
{
    const char *why = cli->rc->errstr;

    /* a read past SO_RCVTIMEO reports EAGAIN's text: say what it means */
    if (cli->rc->err == REDIS_ERR_IO && strcmp(why, strerror(EAGAIN)) == 0)
        why = "timed out";
    fprintf(stderr, "%s: Redis at %s: %s: %s\n", cli->prog, cli->url_shown,
            doing, why[0] ? why : "connection failed");
    return DRV_EDOWN;
}

/* Run one setup command (AUTH, SELECT); 0 or an error (printed). */
static int
setup_command(struct drv_cli *cli, const char *what, int argc,
              const char **argv)
{
    redisReply *r = NULL;
    int rc = 0;

    r = redisCommandArgv(cli->rc, argc, argv, NULL);
    if (r == NULL)
        return io_failed(cli, what);
    if (r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "%s: Redis at %s: %s refused: %s\n", cli->prog,
                cli->url_shown, what, r->str);
        rc = DRV_EREDIS;
    }
    freeReplyObject(r);
    return rc;
}

int
drv__cli_connect(struct drv_cli *cli)
{
    struct drv_redis_url url;
    struct timeval tv;
    struct drv_err err;
    const char *argv[3];
    const char *envpw = NULL;
    char db[16];
    int rc;

    DRV_CHECK_OBJ(cli, DRV_CLI_MAGIC);
    rc = drv__cli_config(cli);
    if (rc < 0)
        return rc;
    if (cli->rc != NULL)
        return 0;
    memset(&url, 0, sizeof url);
    rc = drv_redis_url_parse(cli->cfg->redis.url, &url, &err);
    if (rc < 0) {
        fprintf(stderr, "%s: %s\n", cli->prog, err.msg);
        return DRV_ECONFIG;
    }
    envpw = getenv("DROVER_REDIS_PASSWORD");
    if (url.password[0] == '\0' && envpw != NULL && envpw[0] != '\0') {
        if (strlen(envpw) >= sizeof url.password) {
            fprintf(stderr, "%s: DROVER_REDIS_PASSWORD is longer than %zu "
                    "bytes\n", cli->prog, sizeof url.password - 1);
            rc = DRV_ECONFIG;
            goto out;
        }
        strcpy(url.password, envpw);
    }
    tv.tv_sec = DRV_CLI_TIMEOUT_MS / 1000;
    tv.tv_usec = (DRV_CLI_TIMEOUT_MS % 1000) * 1000;
    if (url.is_unix)
        cli->rc = redisConnectUnixWithTimeout(url.path, tv);
    else
        cli->rc = redisConnectWithTimeout(url.host, url.port, tv);
    if (cli->rc == NULL) {
        fprintf(stderr, "%s: out of memory\n", cli->prog);
        rc = -ENOMEM;
        goto out;
    }
    if (cli->rc->err) {
        fprintf(stderr, "%s: cannot connect to Redis at %s: %s\n",
                cli->prog, cli->url_shown, cli->rc->errstr);
        rc = DRV_EDOWN;
        goto out;
    }
    if (redisSetTimeout(cli->rc, tv) != REDIS_OK) {
        rc = io_failed(cli, "setting the timeout");
        goto out;
    }
    if (url.password[0] != '\0') {
        argv[0] = "AUTH";
        if (url.user[0] != '\0') {
            argv[1] = url.user;
            argv[2] = url.password;
            rc = setup_command(cli, "AUTH", 3, argv);
        } else {
            argv[1] = url.password;
            rc = setup_command(cli, "AUTH", 2, argv);
        }
        if (rc < 0)
            goto out;
    }
    if (url.db != 0) {
        snprintf(db, sizeof db, "%d", url.db);
        argv[0] = "SELECT";
        argv[1] = db;
        rc = setup_command(cli, "SELECT", 2, argv);
        if (rc < 0)
            goto out;
    }
    rc = 0;
out:
    if (rc < 0 && cli->rc != NULL) {
        redisFree(cli->rc);
        cli->rc = NULL;
    }
    explicit_bzero(&url, sizeof url);
    return rc;
}

void
drv__cli_disconnect(struct drv_cli *cli)
{
    DRV_CHECK_OBJ(cli, DRV_CLI_MAGIC);
    if (cli->rc != NULL)
        redisFree(cli->rc);
    cli->rc = NULL;
    drv_config_free(cli->cfg);
    cli->cfg = NULL;
}

/* -------------------------------------------------------------- commands */

int
drv__cli_run(struct drv_cli *cli, const struct drv_queue_cmds *c,
             redisReply ***outp)
{
    const struct drv_argv *cmds = c->cmd;
    redisReply **out = NULL;
    size_t i, n = c->n;
    void *r = NULL;
    int rc = 0;

    DRV_CHECK_OBJ(cli, DRV_CLI_MAGIC);
    DRV_AN(cli->rc);
    *outp = NULL;
    out = drv_xcalloc(n + 1, sizeof *out);
    for (i = 0; i < n && rc == 0; i++)
        if (redisAppendCommandArgv(cli->rc, cmds[i].argc,
                                   (const char **)cmds[i].argv,
                                   cmds[i].argvlen) != REDIS_OK)
            rc = io_failed(cli, cmds[i].argv[0]);
    for (i = 0; i < n && rc == 0; i++) {
        if (redisGetReply(cli->rc, &r) != REDIS_OK)
            rc = io_failed(cli, cmds[i].argv[0]);
        else
            out[i] = r;
    }
    if (rc < 0) {
        drv__cli_free_replies(n, out);
        return rc;
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
