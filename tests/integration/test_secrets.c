/*
 * test_secrets.c -- the Redis password and the dashboard's token never
 * show: not in argv (/proc/PID/cmdline), not in the logs (connection and
 * authentication errors included), not on /metrics, not in the
 * dashboard's page or API, not in an exec child's environment, not in
 * the CLI's messages. And a config file holding the password that
 * others may read is warned about, once.
 *
 * The harness's redis-server gets `requirepass SECRET` per test (the
 * fixture's client, connected before, stays authenticated; the teardown
 * removes the password with it). Every file a run leaves -- logs, the
 * env dump, scraped pages, cmdline copies -- is then searched for the
 * secret's bytes.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "droverd.h"
#include "drover/common.h"

#define SECRET "s3cr3t-Pa55-zq81"
#define WRONG "wr0ng-Pa55-kk27"
#define TOKEN "t0ken-S3cret-uu90"

static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-secrets",
    .prefix = "t",
    .log_level = "debug",
    .worker_defaults = "  shutdown_timeout: 2s\n",
    .body_head = NULL,
    .tail_lines = 40,
};

/* drv_test_srv with the URL the test gives droverd */
static struct drv_test_redis url_srv;

/* The files searched for the secrets at the end of a test. */
static char checked[32][512];
static int nchecked;

static int
setup(void **st)
{
    struct drv_test_droverd *t;
    redisReply *r;

    url_srv = drv_test_srv;
    t = drv_test_droverd_new(&url_srv, &opts);
    r = redisCommand(t->c, "CONFIG SET requirepass " SECRET);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    nchecked = 0;
    /* the password under a name of the operator's own: exec children
     * must not get it either */
    assert_int_equal(setenv("APP_REDIS_PASSWORD", SECRET, 1), 0);
    *st = t;
    return 0;
}

static int
teardown(void **st)
{
    struct drv_test_droverd *t = *st;

    freeReplyObject(redisCommand(t->c, "CONFIG SET requirepass %s", ""));
    unsetenv("DROVER_REDIS_PASSWORD");
    unsetenv("APP_REDIS_PASSWORD");
    drv_test_droverd_free(t);
    return 0;
}

/* A file to search at the end (its path, kept). */
static const char *
check_later(struct drv_test_droverd *t, const char *name)
{
    assert_true(nchecked < 32);
    snprintf(checked[nchecked], sizeof checked[nchecked], "%s/%s", t->dir,
             name);
    return checked[nchecked++];
}

/* The log of the droverd started last, to search at the end. */
static void
check_log(struct drv_test_droverd *t)
{
    assert_true(nchecked < 32);
    snprintf(checked[nchecked++], sizeof checked[0], "%s", t->log);
}

/* The secret's bytes appear in none of the files, and each exists. */
static void
assert_nowhere(const char *secret)
{
    struct stat sb;
    int i;

    for (i = 0; i < nchecked; i++) {
        if (stat(checked[i], &sb) != 0)
            fail_msg("%s was not written", checked[i]);
        if (drv_test_file_contains(checked[i], secret))
            fail_msg("%s holds the secret %s", checked[i], secret);
    }
}

/* Copy /proc/PID/cmdline into path, the arguments space-separated. */
static void
save_cmdline(pid_t pid, const char *path)
{
    char src[64], buf[8192];
    ssize_t n, i;
    int fd;

    snprintf(src, sizeof src, "/proc/%ld/cmdline", (long)pid);
    fd = open(src, O_RDONLY);
    assert_true(fd >= 0);
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    assert_true(n > 0);
    buf[n] = '\0';
    /* NULs to spaces, as ps shows it (and so the search sees it all) */
    for (i = 0; i < n; i++)
        if (buf[i] == '\0')
            buf[i] = ' ';
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, (size_t)n), n);
    close(fd);
}

/* An HTTP answer saved to path; its status. */
static int
http_save(int port, const char *path, const char *hdrs, const char *file)
{
    static char buf[262144];
    int status = drv_test_http(port, "GET", path, hdrs, NULL, buf,
                               sizeof buf);

    assert_int_equal(drv_test_write_file(file, buf), 0);
    return status;
}

/* Run drover with args (NULL-terminated; after -c cfg unless cfg is
 * NULL), its stdout and stderr kept in NAME.out and NAME.err (both
 * checked later, NAME.err last); its exit status. */
static int
run_saved(struct drv_test_droverd *t, const char *name, const char *cfg,
          const char *const *args)
{
    struct drv_test_cli r;
    char o[64], e[64];
    int status;

    snprintf(o, sizeof o, "%s.out", name);
    snprintf(e, sizeof e, "%s.err", name);
    drv_test_cli_run(&r, t->dir, cfg, NULL, args);
    assert_int_equal(drv_test_write_file(check_later(t, o), r.out), 0);
    assert_int_equal(drv_test_write_file(check_later(t, e), r.err), 0);
    status = r.status;
    drv_test_cli_fini(&r);
    return status;
}

/* The config: an exec job that dumps its environment into env.txt, and
 * the metrics endpoint on port. */
static void
config(struct drv_test_droverd *t, int port)
{
    char w[128], body[1024];

    snprintf(w, sizeof w, "  metrics: 127.0.0.1:%d\n", port);
    snprintf(body, sizeof body,
             "queues: [default]\n"
             "jobs:\n"
             "  dump:\n    handler: exec\n"
             "    command: [sh, -c, \"env > %s/env.txt\"]\n"
             "  ok: {handler: echo}\n", t->dir);
    drv_test_droverd_config(t, w, body);
    assert_int_equal(chmod(t->cfg, 0600), 0);
}

/*
 * droverd with the secret (in the URL, or in DROVER_REDIS_PASSWORD): an
 * exec job, /metrics, its argv; then the CLI; everything searched.
 */
static void
run_worker_and_check(struct drv_test_droverd *t, int by_env)
{
    static const char *const stats[] = {"stats", NULL};
    char closed_url[200], wrong_url[200];
    int mport = drv_test_free_port(), cport = drv_test_free_port();

    config(t, mport);
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "job", "dump", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "ok", NULL);
    drv_test_wait_stat(t, "default", "processed", 2);
    check_later(t, "env.txt");
    assert_true(drv_test_file_contains(checked[nchecked - 1],
                                       "DROVER_JOB="));
    assert_false(drv_test_file_contains(checked[nchecked - 1],
                                        "DROVER_REDIS_PASSWORD"));
    assert_false(drv_test_file_contains(checked[nchecked - 1],
                                        "APP_REDIS_PASSWORD"));
    assert_int_equal(http_save(mport, "/metrics", NULL,
                               check_later(t, "metrics.txt")), 200);
    assert_int_equal(http_save(mport, "/readyz", NULL,
                               check_later(t, "readyz.txt")), 200);
    save_cmdline(t->w[0].pid, check_later(t, "droverd.cmdline"));
    drv_test_droverd_stop(t, 0, 0);
    check_log(t);

    /* the CLI: a command that works, one against a closed port, one with
     * a wrong password -- each error names the (redacted) URL */
    assert_int_equal(run_saved(t, "stats", t->cfg, stats), 0);
    snprintf(closed_url, sizeof closed_url, "redis://:%s@127.0.0.1:%d/0",
             by_env ? "" : SECRET, cport);
    if (by_env)
        snprintf(closed_url, sizeof closed_url, "redis://127.0.0.1:%d/0",
                 cport);
    {
        const char *args[] = {"--redis", closed_url, "stats", NULL};

        assert_int_equal(run_saved(t, "closed", NULL, args), 1);
        assert_true(drv_test_file_contains(checked[nchecked - 1],
                                           "cannot connect to Redis at"));
    }
    snprintf(wrong_url, sizeof wrong_url, "redis://:%s@127.0.0.1:%d/0",
             WRONG, drv_test_srv.port);
    {
        const char *args[] = {"--redis", wrong_url, "stats", NULL};

        assert_int_equal(run_saved(t, "wrongpw", NULL, args), 1);
        assert_true(drv_test_file_contains(checked[nchecked - 1],
                                           "AUTH refused"));
    }
    assert_nowhere(SECRET);
    assert_nowhere(WRONG);
}

static void
test_secrets_password_in_url(void **st)
{
    struct drv_test_droverd *t = *st;

    snprintf(url_srv.url, sizeof url_srv.url,
             "redis://:" SECRET "@127.0.0.1:%d/0", drv_test_srv.port);
    run_worker_and_check(t, 0);
}

static void
test_secrets_password_in_env(void **st)
{
    struct drv_test_droverd *t = *st;

    snprintf(url_srv.url, sizeof url_srv.url, "redis://127.0.0.1:%d/0",
             drv_test_srv.port);
    assert_int_equal(setenv("DROVER_REDIS_PASSWORD", SECRET, 1), 0);
    run_worker_and_check(t, 1);
}

/*
 * droverd given the password in --redis: its argv no longer shows it;
 * then a wrong password and a closed port: the errors, logged, do not
 * show the password either.
 */
static void
test_secrets_droverd_argv_and_errors(void **st)
{
    struct drv_test_droverd *t = *st;
    char url[200];
    const char *args[] = {"--redis", url, NULL};

    snprintf(url_srv.url, sizeof url_srv.url, "redis://127.0.0.1:%d/0",
             drv_test_srv.port);
    config(t, drv_test_free_port());
    snprintf(url, sizeof url, "redis://:" SECRET "@127.0.0.1:%d/0",
             drv_test_srv.port);
    drv_test_droverd_start_args(t, 0, args);
    check_log(t);
    drv_test_wait_log(t, "msg=\"redis connected\"", 1);
    save_cmdline(t->w[0].pid, check_later(t, "argv.cmdline"));
    assert_true(drv_test_file_contains(checked[nchecked - 1], ":***@"));
    drv_test_droverd_stop(t, 0, 0);

    /* a wrong password: AUTH fails, logged with the URL redacted */
    snprintf(url, sizeof url, "redis://:" WRONG "@127.0.0.1:%d/0",
             drv_test_srv.port);
    drv_test_droverd_start_args(t, 0, args);
    check_log(t);
    drv_test_wait_log(t, "redis setup failed", 1);
    drv_test_kill(&t->w[0], SIGTERM);
    drv_test_wait(&t->w[0], DRV_TEST_WAIT_MS);

    /* nothing listening: the connection errors, logged */
    snprintf(url, sizeof url, "redis://:" SECRET "@127.0.0.1:%d/0",
             drv_test_free_port());
    drv_test_droverd_start_args(t, 0, args);
    check_log(t);
    drv_test_wait_log(t, "127.0.0.1", 2);
    drv_test_kill(&t->w[0], SIGTERM);
    drv_test_wait(&t->w[0], DRV_TEST_WAIT_MS);
    assert_true(drv_test_file_contains(t->log, ":***@127.0.0.1"));
    assert_nowhere(SECRET);
    assert_nowhere(WRONG);
}

/* drover web with the password in --redis and a token: the page, the
 * API, its output and its argv hold neither. */
static void
test_secrets_dashboard(void **st)
{
    struct drv_test_droverd *t = *st;
    char url[200], tokfile[400], hdr[160], log[420];
    const char *args[] = {"--redis", url, "--token-file", tokfile, NULL};
    struct drv_test_proc p;
    int port;

    snprintf(url_srv.url, sizeof url_srv.url, "redis://127.0.0.1:%d/0",
             drv_test_srv.port);
    config(t, drv_test_free_port());
    snprintf(url, sizeof url, "redis://:" SECRET "@127.0.0.1:%d/0",
             drv_test_srv.port);
    snprintf(tokfile, sizeof tokfile, "%s/token", t->dir);
    assert_int_equal(drv_test_write_file(tokfile, TOKEN "\n"), 0);
    assert_int_equal(chmod(tokfile, 0600), 0);
    drv_test_xadd(t, "default", NULL, 0, "job", "ok", NULL);
    port = drv_test_web_start_args(t, &p, log, sizeof log, args);
    check_later(t, "web.log");
    save_cmdline(p.pid, check_later(t, "web.cmdline"));
    snprintf(hdr, sizeof hdr, "Authorization: Bearer %s\r\n", TOKEN);
    assert_int_equal(http_save(port, "/", hdr, check_later(t, "page.html")),
                     200);
    assert_int_equal(http_save(port, "/api/queues", hdr,
                               check_later(t, "queues.json")), 200);
    assert_int_equal(http_save(port, "/api/workers", hdr,
                               check_later(t, "workers.json")), 200);
    assert_int_equal(http_save(port, "/api/session", hdr,
                               check_later(t, "session.json")), 200);
    /* a wrong token is refused without echoing what was sent or kept */
    assert_int_equal(http_save(port, "/api/queues",
                               "Authorization: Bearer nope\r\n",
                               check_later(t, "refused.json")), 401);
    drv_test_kill(&p, SIGTERM);
    assert_int_equal(drv_test_wait(&p, DRV_TEST_WAIT_MS), 0);
    assert_true(drv_test_file_contains(log, ":***@"));
    assert_nowhere(SECRET);
    assert_nowhere(TOKEN);
}

/* A config holding the password that others may read: one warning from
 * droverd and from drover; none at 0600, none without a password. */
static void
test_secrets_config_permission_warning(void **st)
{
    struct drv_test_droverd *t = *st;
    static const char warn[] = "readable by others and holds the Redis "
                               "password";
    static const char *const stats[] = {"stats", NULL};

    snprintf(url_srv.url, sizeof url_srv.url,
             "redis://:" SECRET "@127.0.0.1:%d/0", drv_test_srv.port);
    config(t, drv_test_free_port());
    assert_int_equal(chmod(t->cfg, 0644), 0);
    drv_test_droverd_start(t, 0);
    drv_test_wait_log(t, "msg=\"redis connected\"", 2);
    drv_test_droverd_stop(t, 0, 0);
    assert_int_equal(drv_test_file_count(t->log, warn), 1);
    assert_true(drv_test_file_contains(t->log, "chmod 600"));
    assert_int_equal(run_saved(t, "warn", t->cfg, stats), 0);
    assert_int_equal(drv_test_file_count(checked[nchecked - 1], warn), 1);

    /* group-readable is warned about too; 0600 is quiet */
    assert_int_equal(chmod(t->cfg, 0640), 0);
    assert_int_equal(run_saved(t, "warn640", t->cfg, stats), 0);
    assert_int_equal(drv_test_file_count(checked[nchecked - 1], warn), 1);
    assert_int_equal(chmod(t->cfg, 0600), 0);
    assert_int_equal(run_saved(t, "quiet", t->cfg, stats), 0);
    assert_int_equal(drv_test_file_count(checked[nchecked - 1], warn), 0);
    drv_test_droverd_start(t, 0);
    drv_test_wait_log(t, "msg=\"redis connected\"", 2);
    drv_test_droverd_stop(t, 0, 0);
    assert_int_equal(drv_test_file_count(t->log, warn), 0);

    /* no password in the file (it comes from the environment): quiet */
    snprintf(url_srv.url, sizeof url_srv.url, "redis://127.0.0.1:%d/0",
             drv_test_srv.port);
    config(t, drv_test_free_port());
    assert_int_equal(chmod(t->cfg, 0644), 0);
    assert_int_equal(setenv("DROVER_REDIS_PASSWORD", SECRET, 1), 0);
    assert_int_equal(run_saved(t, "envpw", t->cfg, stats), 0);
    assert_int_equal(drv_test_file_count(checked[nchecked - 1], warn), 0);
    assert_nowhere(SECRET);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_secrets_password_in_url, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_secrets_password_in_env, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_secrets_droverd_argv_and_errors,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_secrets_dashboard, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_secrets_config_permission_warning, setup, teardown),
    };

    drv_test_filter_from_env();
    return cmocka_run_group_tests(tests, drv_test_redis_group_setup,
                                  drv_test_redis_group_teardown);
}
