/*
 * droverd -- the worker daemon.
 *
 *   droverd -c FILE [--redis URL] [--concurrency N] [--queues a,b]
 *           [--log-level L]
 *   droverd --version [--verbose]
 *
 * Parses flags, loads the config, builds the loop and the worker, maps
 * signals to stops, runs. Exit: 0 clean stop, 2 bad usage or invalid
 * config, 1 anything else fatal (and a second SIGTERM/SIGINT).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drover/common.h"
#include "drover/config.h"
#include "drover/log.h"
#include "drover/loop.h"
#include "drover/parse.h"
#include "drover/proc.h"
#include "drover/redis.h"
#include "drover/version.h"
#include "drover/worker.h"

static const char usage[] =
    "usage: droverd -c FILE [--redis URL] [--concurrency N] "
    "[--queues a,b] [--log-level error|warn|info|debug]\n"
    "       droverd --version [--verbose]\n";

static const char help[] =
    "\n"
    "Runs jobs from Redis queues until SIGTERM or SIGINT (graceful stop).\n"
    "\n"
    "options:\n"
    "  -c, --config FILE     the config file (required)\n"
    "  --redis URL           Redis URL, overrides redis.url:\n"
    "                        redis://[user[:pass]@]IP[:port][/db] or\n"
    "                        unix:///path.sock[?db=N]; the password may\n"
    "                        come from $DROVER_REDIS_PASSWORD instead\n"
    "  --concurrency N       jobs running at once, overrides\n"
    "                        worker.concurrency\n"
    "  --queues a,b          the queues to work, by priority, overrides\n"
    "                        queues\n"
    "  --log-level L         error, warn, info (default) or debug\n"
    "  --version             print the version and exit\n"
    "  --verbose             with --version: also the libraries' versions\n"
    "  -h, --help            this text\n"
    "\n"
    "exit status: 0 clean stop, 1 fatal error or a second stop signal,\n"
    "2 bad usage or invalid config\n";

struct app {
    struct drv_loop *loop;     /* borrowed */
    struct drv_worker *worker; /* borrowed */
    int signals;               /* stop signals seen */
    int stopped;               /* on_stopped ran */
    int hard;                  /* ... after a hard stop */
};

static void
on_stopped(struct drv_worker *w DRV_UNUSED, int hard, void *ctx)
{
    struct app *app = ctx;

    app->stopped = 1;
    app->hard = hard;
    drv_loop_stop(app->loop);
}

static void
on_stop_signal(struct drv_loop *loop DRV_UNUSED, int signo, void *ctx)
{
    struct app *app = ctx;

    if (++app->signals == 1) {
        DRV_LOG_INFO("signal: graceful stop", "signal=%s",
                     signo == SIGTERM ? "SIGTERM" : "SIGINT");
        drv_worker_stop(app->worker, 0);
        return;
    }
    /* second signal: stop now; unfinished jobs stay pending in Redis and
     * are reclaimed after visibility_timeout */
    DRV_LOG_WARN("second signal: stopping now", "signal=%s",
                 signo == SIGTERM ? "SIGTERM" : "SIGINT");
    drv_proc_reaper_stop(); /* kills the children's groups */
    _exit(1);
}

static void
on_hup(struct drv_loop *loop DRV_UNUSED, int signo DRV_UNUSED,
       void *ctx DRV_UNUSED)
{
    drv_log_reopen();
    DRV_LOG_INFO("signal: logs reopened", NULL);
}

/* 1 if a job type of cfg runs child processes (handler exec). */
static int
has_exec(const struct drv_config *cfg)
{
    size_t i;

    for (i = 0; i < cfg->njobs; i++)
        if (cfg->jobs[i]->handler == DRV_HKIND_EXEC)
            return 1;
    return 0;
}

/* Replace cfg->queues with the comma-separated list. 0 or -EINVAL. */
static int
set_queues(struct drv_config *cfg, const char *list)
{
    char *copy = drv_xstrdup(list), *tok, *save = NULL;
    char **q = NULL;
    size_t n = 0, i, j;
    struct drv_err err;

    for (tok = strtok_r(copy, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (drv_config_check_queue(tok, &err) < 0) {
            fprintf(stderr, "droverd: --queues: %s\n", err.msg);
            goto bad;
        }
        for (j = 0; j < n; j++)
            if (strcmp(q[j], tok) == 0) {
                fprintf(stderr, "droverd: --queues: queue \"%s\" given "
                        "twice\n", tok);
                goto bad;
            }
        q = drv_xrealloc(q, (n + 2) * sizeof *q);
        q[n++] = drv_xstrdup(tok);
        q[n] = NULL;
    }
    free(copy);
    if (n == 0) {
        fprintf(stderr, "droverd: --queues: no queue named\n");
        return -EINVAL;
    }
    for (i = 0; i < cfg->nqueues; i++)
        free(cfg->queues[i]);
    free(cfg->queues);
    free(cfg->queue_weights); /* the list given is by priority */
    cfg->queue_weights = NULL;
    cfg->queues = q;
    cfg->nqueues = n;
    return 0;
bad:
    for (j = 0; j < n; j++)
        free(q[j]);
    free(q);
    free(copy);
    return -EINVAL;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"redis", required_argument, NULL, 'r'},
        {"concurrency", required_argument, NULL, 'n'},
        {"queues", required_argument, NULL, 'q'},
        {"log-level", required_argument, NULL, 'l'},
        {"version", no_argument, NULL, 'V'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *file = NULL, *redis = NULL, *queues = NULL, *level = NULL;
    const char *conc = NULL;
    int version = 0, verbose = 0;
    struct drv_config *cfg = NULL;
    struct drv_config_errors errs;
    struct drv_worker_opts wo;
    struct drv_worker_stats st;
    struct drv_err err;
    struct app app;
    int64_t n;
    int c, rc;
    char qe[DRV_LOG_Q_MAX];

    while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'c': file = optarg; break;
        case 'r': redis = optarg; break;
        case 'n': conc = optarg; break;
        case 'q': queues = optarg; break;
        case 'l': level = optarg; break;
        case 'V': version = 1; break;
        case 'v': verbose = 1; break;
        case 'h':
            fputs(usage, stdout);
            fputs(help, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (verbose && !version) {
        fprintf(stderr, "droverd: --verbose goes with --version\n");
        fputs(usage, stderr);
        return 2;
    }
    if (version && optind == argc)
        return drv_version_print(stdout, "droverd", verbose) < 0 ? 1 : 0;
    if (optind != argc || file == NULL) {
        if (file == NULL)
            fprintf(stderr, "droverd: -c FILE is required\n");
        else
            fprintf(stderr, "droverd: unexpected argument \"%s\"\n",
                    argv[optind]);
        fputs(usage, stderr);
        return 2;
    }
    if (level != NULL && drv_log_set_level(level) < 0) {
        fprintf(stderr, "droverd: --log-level: \"%s\" is not one of error, "
                "warn, info, debug\n", level);
        return 2;
    }
    drv_config_errors_init(&errs);
    rc = drv_config_load(file, &cfg, &errs);
    if (rc < 0) {
        drv_config_errors_print(&errs, stderr);
        drv_config_errors_fini(&errs);
        return 2;
    }
    drv_config_errors_fini(&errs);
    if (drv_config_secret_readable(file, cfg))
        DRV_LOG_WARN("config is readable by others and holds the Redis "
                     "password; chmod 600 it", "file=%s",
                     drv_log_q(qe, sizeof qe, file));
    if (redis != NULL) {
        if (drv_config_check_redis_url(redis, &err) < 0) {
            fprintf(stderr, "droverd: --redis: %s\n", err.msg);
            goto usage_error;
        }
        drv_config_set_redis_url(cfg, redis);
        /* the copy is made: ps need not show the password any more */
        drv_redis_url_scrub((char *)redis);
    }
    if (conc != NULL) {
        if (drv_parse_int(conc, 1, 1000000, &n) < 0) {
            fprintf(stderr, "droverd: --concurrency: \"%s\" is not a "
                    "number from 1 to 1000000\n", conc);
            goto usage_error;
        }
        cfg->worker.concurrency = (int)n;
    }
    if (queues != NULL && set_queues(cfg, queues) < 0)
        goto usage_error;

    signal(SIGPIPE, SIG_IGN);
    /* Before any thread exists (the reaper is a fork of this process):
     * if droverd dies, even by kill -9, the reaper kills the process
     * groups of its exec children. */
    if (has_exec(cfg) && drv_proc_reaper_start(&err) < 0)
        DRV_LOG_WARN("no reaper: children of exec jobs would outlive a "
                     "crash of droverd", "error=%s",
                     drv_log_q(qe, sizeof qe, err.msg));
    memset(&app, 0, sizeof app);
    app.loop = drv_loop_create(NULL);
    if (app.loop == NULL) {
        fprintf(stderr, "droverd: cannot create the event loop\n");
        drv_proc_reaper_stop();
        drv_config_free(cfg);
        return 1;
    }
    memset(&wo, 0, sizeof wo);
    wo.cfg = cfg;
    wo.loop = app.loop;
    wo.on_stopped = on_stopped;
    wo.ctx = &app;
    drv_err_clear(&err);
    rc = drv_worker_create(&wo, &app.worker, &err);
    if (rc < 0) {
        fprintf(stderr, "droverd: %s: %s\n", file, err.msg);
        drv_loop_run(app.loop); /* let the freed connections finish */
        drv_loop_free(app.loop);
        drv_proc_reaper_stop();
        drv_config_free(cfg);
        return rc == DRV_ECONFIG ? 2 : 1;
    }
    DRV_AZ(drv_loop_on_signal(app.loop, SIGTERM, on_stop_signal, &app));
    DRV_AZ(drv_loop_on_signal(app.loop, SIGINT, on_stop_signal, &app));
    DRV_AZ(drv_loop_on_signal(app.loop, SIGHUP, on_hup, &app));
    drv_worker_start(app.worker);
    rc = drv_loop_run(app.loop);
    if (rc < 0 || !app.stopped) {
        DRV_LOG_ERROR("event loop failed", "error=%s",
                      drv_log_q(qe, sizeof qe, drv_strerror(rc)));
        return 1;
    }
    drv_worker_get_stats(app.worker, &st);
    if (st.unreleased > 0 || st.live > 0) {
        /* a pool job that ignored its timeout still holds a thread: it
         * cannot be joined, only left behind by exiting */
        DRV_LOG_WARN("exiting with work still running", "unreleased=%d "
                     "live=%d", st.unreleased, st.live);
        drv_proc_reaper_stop();
        _exit(app.hard ? 1 : 0);
    }
    drv_worker_free(app.worker); /* every child killed and reaped */
    drv_proc_reaper_stop();
    drv_loop_signals_clear(app.loop);
    drv_loop_run(app.loop); /* let the Redis connections finish closing */
    drv_loop_free(app.loop);
    drv_config_free(cfg);
    return app.hard ? 1 : 0;

usage_error:
    drv_config_free(cfg);
    fputs(usage, stderr);
    return 2;
}
