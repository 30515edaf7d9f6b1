/*
 * test_metrics.c -- droverd's HTTP endpoint (worker.metrics) end to end: a
 * real droverd, the harness's real redis-server, and real HTTP requests
 * over TCP written by hand (so the test controls every byte, including
 * hostile ones).
 *
 * Covers /healthz, /readyz and /metrics; every metric family with its
 * labels and values after a known set of jobs (ok, failed and retried,
 * timed out, permanent, an undeclared job type counted as
 * job="_unknown"); the queue gauges sampled from Redis; /readyz turning
 * 503 while Redis is down and during a graceful stop and 200 after;
 * hostile input (unknown path, bad methods, huge headers, silent and
 * trickling connections) while a normal scrape still answers; exec jobs'
 * cpu_ms and max_rss_kb; the traceparent field reaching exec children
 * and http requests unchanged; and the time of a scrape of 50 job types
 * x 10 queues (printed, not asserted). Also deploy/: the alert rules and
 * manifests parse as YAML, and every expression of the alert rules and the
 * Grafana dashboard names only metrics a real scrape declares.
 *
 * Waits poll with generous deadlines: hang guards, never speed checks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <yaml.h>

#include "droverd.h"
#include "http.h"


static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-mt",
    .prefix = "t",
    .log_level = "debug",
    .worker_defaults = "  shutdown_timeout: 10s\n  visibility_timeout: 30s\n",
    .body_head = NULL,
    .tail_lines = 40,
};

/* --------------------------------------------------------- exposition */

/* The value of one series of a scrape (printf-formed name): short, for
 * the long runs of assertions below that each read one. */
#define val drv_test_metricf

/* Fail unless the scrape declares name with type. */
static void
assert_family(const char *body, const char *name, const char *type)
{
    char line[256];

    snprintf(line, sizeof line, "\n# TYPE %s %s\n", name, type);
    if (strstr(body, line) == NULL)
        fail_msg("no family %s of type %s", name, type);
}

/* ---------------------------------------------------------- fixture */

/* Write the config with worker.metrics on a free port; returns it. */
static int
config_with_metrics(struct drv_test_droverd *t, const char *worker_extra,
                    const char *body)
{
    char w[512];
    int port = drv_test_free_port();

    snprintf(w, sizeof w, "  metrics: 127.0.0.1:%d\n%s", port,
             worker_extra != NULL ? worker_extra : "");
    drv_test_droverd_config(t, w, body);
    return port;
}

/* ------------------------------------------------------------- tests */

static const char jobs_body[] =
    "queues: [default, low]\n"
    "jobs:\n"
    "  ok:\n    handler: noop\n"
    "  flaky:\n    handler: fail\n    retries: 1\n    backoff: 50ms\n"
    "    backoff_max: 50ms\n"
    "  slow:\n    handler: sleep\n    timeout: 200ms\n    retries: 0\n"
    "  perm:\n    handler: fail\n"
    "pipelines:\n  pipe:\n    steps: [ok, ok]\n";

static void
test_metrics_every_family_after_known_jobs(void **st)
{
    struct drv_test_droverd *t = *st;
    char body[4096];
    char *m;
    int port, i;
    double now_s = (double)time(NULL);

    port = config_with_metrics(t, "  concurrency: 8\n", jobs_body);
    drv_test_droverd_start(t, 0);
    drv_test_wait_http(port, "/readyz", 200, "ready");
    for (i = 0; i < 3; i++)
        drv_test_xadd(t, "default", NULL, 0, "job", "ok", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "flaky", "error", "boom",
                  NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "slow", "ms", "20000", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "perm", "permanent", "1",
                  NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "nope\"\n{x}", NULL);
    drv_test_wait_stat(t, "default", "processed", 3);
    drv_test_wait_stat(t, "default", "dead", 4);

    /* the probes */
    assert_int_equal(drv_test_http_get(port, "GET", "/healthz", body,
                                       sizeof body), 200);
    assert_string_equal(body, "ok\n");
    assert_int_equal(drv_test_http_get(port, "GET", "/readyz", body,
                                       sizeof body), 200);
    assert_string_equal(body, "ready\n");
    assert_int_equal(drv_test_http_get(port, "HEAD", "/metrics", body,
                                       sizeof body), 200);
    assert_string_equal(body, "");
    {
        char req[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n"
                     "Connection: close\r\n\r\n";
        char *resp = malloc(DRV_TEST_BODY_MAX);
        assert_non_null(resp);
        assert_int_equal(drv_test_http_raw(port, req, strlen(req), resp,
                                           DRV_TEST_BODY_MAX), 200);
        assert_non_null(strstr(resp, "Content-Type: text/plain; "
                                     "version=0.0.4"));
        free(resp);
    }

    /* the queue gauges are sampled from Redis (at most 5 s old) */
    drv_test_wait_metric(port, "drover_queue_dead{queue=\"default\"}", 4);
    m = drv_test_scrape(port);
    assert_family(m, "drover_jobs_processed_total", "counter");
    assert_family(m, "drover_jobs_failed_total", "counter");
    assert_family(m, "drover_jobs_retried_total", "counter");
    assert_family(m, "drover_jobs_dead_total", "counter");
    assert_family(m, "drover_jobs_running", "gauge");
    assert_family(m, "drover_job_duration_seconds", "histogram");
    assert_family(m, "drover_job_wait_seconds", "histogram");
    assert_family(m, "drover_job_cpu_seconds_total", "counter");
    assert_family(m, "drover_queue_ready", "gauge");
    assert_family(m, "drover_queue_running", "gauge");
    assert_family(m, "drover_queue_delayed", "gauge");
    assert_family(m, "drover_queue_dead", "gauge");
    assert_family(m, "drover_worker_concurrency", "gauge");
    assert_family(m, "drover_pool_threads_busy", "gauge");
    assert_family(m, "drover_event_loop_lag_seconds", "histogram");
    assert_family(m, "drover_redis_up", "gauge");
    assert_family(m, "drover_redis_reconnects_total", "counter");
    assert_family(m, "process_cpu_seconds_total", "counter");
    assert_family(m, "process_resident_memory_bytes", "gauge");
    assert_family(m, "process_open_fds", "gauge");
    assert_family(m, "process_start_time_seconds", "gauge");

#define Q "queue=\"default\""
    /* outcomes by job type and reason */
    assert_true(val(m, "drover_jobs_processed_total{" Q ",job=\"ok\"}") == 3);
    assert_true(val(m, "drover_jobs_failed_total{" Q ",job=\"flaky\","
                       "reason=\"error\"}") == 2);
    assert_true(val(m, "drover_jobs_retried_total{" Q ",job=\"flaky\"}") == 1);
    assert_true(val(m, "drover_jobs_dead_total{" Q ",job=\"flaky\"}") == 1);
    assert_true(val(m, "drover_jobs_failed_total{" Q ",job=\"slow\","
                       "reason=\"timeout\"}") == 1);
    assert_true(val(m, "drover_jobs_failed_total{" Q ",job=\"slow\","
                       "reason=\"error\"}") == 0);
    assert_true(val(m, "drover_jobs_dead_total{" Q ",job=\"slow\"}") == 1);
    assert_true(val(m, "drover_jobs_retried_total{" Q ",job=\"slow\"}") == 0);
    assert_true(val(m, "drover_jobs_failed_total{" Q ",job=\"perm\","
                       "reason=\"error\"}") == 1);
    assert_true(val(m, "drover_jobs_dead_total{" Q ",job=\"perm\"}") == 1);
    /* the undeclared type: _unknown, and no series of its own */
    assert_true(val(m, "drover_jobs_failed_total{" Q ",job=\"_unknown\","
                       "reason=\"error\"}") == 1);
    assert_true(val(m, "drover_jobs_dead_total{" Q ",job=\"_unknown\"}") == 1);
    assert_null(strstr(m, "nope"));
    /* every series exists from the start: the other queue, the pipeline */
    assert_true(val(m, "drover_jobs_processed_total{queue=\"low\","
                       "job=\"ok\"}") == 0);
    assert_true(val(m, "drover_jobs_processed_total{" Q ",job=\"pipe\"}") ==
                0);
    /* nothing runs now */
    assert_true(val(m, "drover_jobs_running{" Q ",job=\"ok\"}") == 0);
    assert_true(val(m, "drover_jobs_running{" Q ",job=\"slow\"}") == 0);
    /* run time: one observation per finished attempt, cumulative buckets */
    assert_true(val(m, "drover_job_duration_seconds_count{" Q
                       ",job=\"ok\"}") == 3);
    assert_true(val(m, "drover_job_duration_seconds_bucket{" Q
                       ",job=\"ok\",le=\"+Inf\"}") == 3);
    assert_true(val(m, "drover_job_duration_seconds_count{" Q
                       ",job=\"flaky\"}") == 2);
    assert_true(val(m, "drover_job_duration_seconds_bucket{" Q
                       ",job=\"slow\",le=\"0.1\"}") == 0);
    assert_true(val(m, "drover_job_duration_seconds_bucket{" Q
                       ",job=\"slow\",le=\"+Inf\"}") == 1);
    assert_true(val(m, "drover_job_duration_seconds_sum{" Q
                       ",job=\"slow\"}") >= 0.2);
    /* wait: one per started attempt: 3 ok + 2 flaky + slow + perm +
     * the undeclared one */
    assert_true(val(m, "drover_job_wait_seconds_count{" Q "}") == 8);
    /* a histogram series shows from its first observation */
    assert_true(isnan(val(m, "drover_job_wait_seconds_count{queue=\"low\"}")));
    assert_true(val(m, "drover_job_duration_seconds_count{" Q
                       ",job=\"perm\"}") == 1);
    assert_true(isnan(val(m, "drover_job_duration_seconds_count{queue="
                             "\"low\",job=\"ok\"}")));
    /* queue gauges */
    assert_true(val(m, "drover_queue_ready{" Q "}") == 0);
    assert_true(val(m, "drover_queue_running{" Q "}") == 0);
    assert_true(val(m, "drover_queue_delayed{" Q "}") == 0);
    assert_true(val(m, "drover_queue_dead{queue=\"low\"}") == 0);
    /* the process */
    assert_true(val(m, "drover_worker_concurrency") == 8);
    assert_true(val(m, "drover_pool_threads_busy") == 0);
    assert_true(val(m, "drover_event_loop_lag_seconds_count") > 0);
    assert_true(val(m, "drover_redis_up{conn=\"cmd\"}") == 1);
    assert_true(val(m, "drover_redis_up{conn=\"fetch\"}") == 1);
    assert_true(val(m, "drover_redis_reconnects_total{conn=\"cmd\"}") == 0);
    assert_true(val(m, "process_cpu_seconds_total") >= 0);
    assert_true(val(m, "process_resident_memory_bytes") > 1e5);
    assert_true(val(m, "process_open_fds") > 3);
    assert_true(fabs(val(m, "process_start_time_seconds") - now_s) < 3600);
#undef Q
    free(m);
    drv_test_droverd_stop(t, 0, 0);
}

static void
test_metrics_queue_gauges_follow_redis(void **st)
{
    struct drv_test_droverd *t = *st;
    int port, i;

    port = config_with_metrics(t, NULL,
                               "queues: [default, low]\n"
                               "jobs:\n  ok:\n    handler: noop\n");
    /* low is paused: its jobs stay ready */
    redisReply *r = drv_test_redis_cmd(t->c, "SET t:{low}:paused 1");
    freeReplyObject(r);
    for (i = 0; i < 5; i++)
        drv_test_xadd(t, "low", NULL, 0, "job", "ok", NULL);
    r = drv_test_redis_cmd(t->c, "ZADD t:{low}:delayed 99999999999999 a "
                                 "99999999999999 b");
    freeReplyObject(r);
    drv_test_droverd_start(t, 0);
    drv_test_wait_metric(port, "drover_queue_ready{queue=\"low\"}", 5);
    drv_test_wait_metric(port, "drover_queue_delayed{queue=\"low\"}", 2);
    drv_test_wait_metric(port, "drover_queue_running{queue=\"low\"}", 0);
    drv_test_droverd_stop(t, 0, 0);
}

static void
test_metrics_readyz_follows_redis_and_stop(void **st)
{
    struct drv_test_droverd *t = *st;
    char *m;
    int port;

    if (drv_test_srv.external)
        skip();
    port = config_with_metrics(t, NULL,
                               "queues: [default]\n"
                               "jobs:\n  s:\n    handler: sleep\n");
    drv_test_droverd_start(t, 0);
    drv_test_wait_http(port, "/readyz", 200, "ready");
    redisFree(t->c);
    t->c = NULL;
    drv_test_redis_stop(&drv_test_srv);
    drv_test_wait_http(port, "/readyz", 503, "redis down");
    drv_test_wait_http(port, "/healthz", 200, "ok");
    m = drv_test_scrape(port);
    assert_true(val(m, "drover_redis_up{conn=\"cmd\"}") == 0);
    assert_true(val(m, "drover_redis_up{conn=\"fetch\"}") == 0);
    free(m);
    assert_int_equal(drv_test_redis_restart(&drv_test_srv), 0);
    t->c = drv_test_redis_connect(&drv_test_srv);
    assert_non_null(t->c);
    drv_test_wait_http(port, "/readyz", 200, "ready");
    m = drv_test_scrape(port);
    assert_true(val(m, "drover_redis_up{conn=\"cmd\"}") == 1);
    assert_true(val(m, "drover_redis_reconnects_total{conn=\"cmd\"}") >= 1);
    assert_true(val(m, "drover_redis_reconnects_total{conn=\"fetch\"}") >= 1);
    free(m);

    /* a graceful stop: not ready while the running job finishes */
    drv_test_xadd(t, "default", NULL, 0, "job", "s", "ms", "3000", NULL);
    drv_test_wait_metric(port, "drover_jobs_running{queue=\"default\","
                         "job=\"s\"}", 1);
    drv_test_kill(&t->w[0], SIGTERM);
    drv_test_wait_http(port, "/readyz", 503, "graceful stop");
    drv_test_wait_http(port, "/healthz", 200, "ok");
    assert_int_equal(drv_test_wait(&t->w[0], DRV_TEST_WAIT_MS), 0);
    assert_int_equal(drv_test_stat(t, "default", "processed"), 1);
}

static void
test_metrics_hostile_http(void **st)
{
    struct drv_test_droverd *t = *st;
    char resp[8192], *req, *m;
    int port, silent[20], trickle, code, i;
    size_t n;

    port = config_with_metrics(t, NULL,
                               "queues: [default]\n"
                               "jobs:\n  ok:\n    handler: noop\n");
    drv_test_droverd_start(t, 0);
    drv_test_wait_http(port, "/healthz", 200, "ok");

    /* connections that send nothing, and one that trickles a header */
    for (i = 0; i < 20; i++) {
        silent[i] = drv_test_dial(port, DRV_TEST_WAIT_MS);
        assert_true(silent[i] >= 0);
    }
    trickle = drv_test_dial(port, DRV_TEST_WAIT_MS);
    assert_true(trickle >= 0);
    drv_test_send_all(trickle, "GET /metrics HTTP/1.1\r\nX-Slow: a", 32);

    /* meanwhile a normal scrape answers */
    m = drv_test_scrape(port);
    assert_non_null(strstr(m, "drover_worker_concurrency "));
    free(m);

    /* unknown paths, bad methods */
    assert_int_equal(drv_test_http_get(port, "GET", "/", NULL, 0), 404);
    assert_int_equal(drv_test_http_get(port, "GET", "/metrics/../etc/passwd",
                                       NULL, 0), 404);
    assert_int_equal(drv_test_http_get(port, "POST", "/metrics", NULL, 0),
                     405);
    assert_int_equal(drv_test_http_get(port, "DELETE", "/readyz", NULL, 0),
                     405);
    code = drv_test_http_get(port, "BREW", "/metrics", NULL, 0);
    assert_true(code == 0 || (code >= 400 && code < 500));
    code = drv_test_http_raw(port, "\x01\x02garbage\r\n\r\n", 13, resp,
                             sizeof resp);
    assert_true(code == 0 || (code >= 400 && code < 500));

    /* huge headers: refused (4xx) or the connection closed */
    n = 64 * 1024;
    req = malloc(n + 256);
    assert_non_null(req);
    strcpy(req, "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(req + strlen(req), 'a', n);
    strcpy(req + strlen("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: ") + n,
           "\r\n\r\n");
    code = drv_test_http_raw(port, req, strlen(req), resp, sizeof resp);
    assert_true(code == 0 || (code >= 400 && code < 500));
    /* many headers */
    req[0] = '\0';
    strcat(req, "GET /metrics HTTP/1.1\r\n");
    for (i = 0; i < 2000; i++)
        strcat(req, "X-A: b\r\n");
    strcat(req, "\r\n");
    code = drv_test_http_raw(port, req, strlen(req), resp, sizeof resp);
    assert_true(code == 0 || (code >= 400 && code < 500));
    /* a body larger than allowed */
    snprintf(req, n, "POST /metrics HTTP/1.1\r\nContent-Length: 100000\r\n"
             "\r\n");
    memset(req + strlen(req), 'b', 4096);
    req[strlen(req) + 4096] = '\0';
    code = drv_test_http_raw(port, req, strlen(req), resp, sizeof resp);
    assert_true(code == 0 || (code >= 400 && code < 500));
    free(req);

    /* still answering */
    drv_test_wait_http(port, "/readyz", 200, "ready");

    /* the silent ones are closed by the server after its idle timeout
     * (an answer of 408 counts as closed too) */
    for (i = 0; i < 20; i++) {
        ssize_t r = drv_test_read_all(silent[i], resp, sizeof resp);
        assert_true(r >= 0);
        assert_true(r == 0 || drv_test_http_status(resp) == 408);
        close(silent[i]);
    }
    {
        ssize_t r = drv_test_read_all(trickle, resp, sizeof resp);
        assert_true(r >= 0);
        assert_true(r == 0 || drv_test_http_status(resp) == 408 ||
                    drv_test_http_status(resp) == 400);
        close(trickle);
    }
    drv_test_wait_http(port, "/healthz", 200, "ok");
    drv_test_droverd_stop(t, 0, 0);
}

static void
test_metrics_exec_resources(void **st)
{
    struct drv_test_droverd *t = *st;
    char prog[300], body[2048], *out, *v, *m;
    const char *const args[] = {"result", "default", "b1", NULL};
    long long cpu, rss;
    int port;

    drv_test_prog("drv_burn", prog, sizeof prog);
    snprintf(body, sizeof body,
             "queues: [default]\n"
             "jobs:\n  burn:\n    handler: exec\n"
             "    command: [\"%s\", \"{cpu}\", \"{mb}\"]\n"
             "    result_ttl: 1h\n", prog);
    port = config_with_metrics(t, NULL, body);
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "job", "burn", "id", "b1", "cpu",
                  "300", "mb", "50", NULL);
    drv_test_wait_stat(t, "default", "processed", 1);
    v = drv_test_result(t, "default", "b1", "cpu_ms");
    assert_non_null(v);
    cpu = atoll(v);
    free(v);
    v = drv_test_result(t, "default", "b1", "max_rss_kb");
    assert_non_null(v);
    rss = atoll(v);
    free(v);
    fprintf(stderr, "# burn 300 ms CPU, 50 MiB: cpu_ms=%lld max_rss_kb=%lld\n",
            cpu, rss);
    /* CPU time, not wall time: the load of the machine does not inflate
     * it much; the bounds leave room for start-up and the sanitizers */
    assert_true(cpu >= 290 && cpu <= 3000);
    assert_true(rss >= 50 * 1024 && rss <= 400 * 1024);
    m = drv_test_scrape(port);
    assert_true(val(m, "drover_job_cpu_seconds_total{queue=\"default\","
                       "job=\"burn\"}") >= 0.29);
    free(m);
    /* drover result shows them */
    out = drv_test_cli_out(t->dir, t->cfg, 0, args);
    assert_non_null(strstr(out, "cpu_ms: "));
    assert_non_null(strstr(out, "max_rss_kb: "));
    free(out);
    drv_test_droverd_stop(t, 0, 0);
}

/* Accept one connection on lfd and read its request head into out. */
static void
accept_request(int lfd, char *out, size_t n)
{
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    size_t got = 0;
    int fd;

    assert_int_equal(poll(&p, 1, DRV_TEST_WAIT_MS), 1);
    fd = accept(lfd, NULL, NULL);
    assert_true(fd >= 0);
    {
        struct timeval tv = {DRV_TEST_WAIT_MS / 1000, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    while (got < n - 1 && strstr(out, "\r\n\r\n") == NULL) {
        ssize_t r = recv(fd, out + got, n - 1 - got, 0);
        assert_true(r > 0);
        got += (size_t)r;
        out[got] = '\0';
    }
    {
        static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                   "Connection: close\r\n\r\nok";
        drv_test_send_all(fd, resp, strlen(resp));
    }
    close(fd);
}

static void
test_metrics_traceparent_reaches_exec_and_http(void **st)
{
    struct drv_test_droverd *t = *st;
    static const char tp[] =
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    char body[1024], head[8192] = "", want[128], *v;
    int lfd, hport;

    lfd = drv_test_listen(4, &hport);
    snprintf(body, sizeof body,
             "queues: [default]\n"
             "jobs:\n"
             "  sh:\n    handler: exec\n"
             "    command: [sh, -c, 'printf %%s \"$TRACEPARENT\"']\n"
             "    result_ttl: 1h\n"
             "  call:\n    handler: http\n"
             "    url: http://127.0.0.1:%d/t\n", hport);
    drv_test_droverd_config(t, "", body);
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "job", "sh", "id", "e1",
                  "traceparent", tp, NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "sh", "id", "e2", NULL);
    drv_test_xadd(t, "default", NULL, 0, "job", "call", "traceparent", tp,
                  NULL);
    accept_request(lfd, head, sizeof head);
    snprintf(want, sizeof want, "\r\ntraceparent: %s\r\n", tp);
    if (strstr(head, want) == NULL)
        fail_msg("no traceparent header in:\n%s", head);
    drv_test_wait_stat(t, "default", "processed", 3);
    drv_test_expect_result(t, "default", "e1", "result", tp);
    v = drv_test_result(t, "default", "e2", "result");
    assert_non_null(v);
    assert_string_equal(v, ""); /* no field, no variable */
    free(v);
    close(lfd);
    drv_test_droverd_stop(t, 0, 0);
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void
test_metrics_scrape_of_50_types_10_queues(void **st)
{
    struct drv_test_droverd *t = *st;
    char *body = malloc(65536), *m;
    size_t len = 0;
    int port, i, q;
    int64_t best = INT64_MAX;
    double own[20];

    assert_non_null(body);
    len += (size_t)snprintf(body + len, 65536 - len, "queues: [");
    for (q = 0; q < 10; q++)
        len += (size_t)snprintf(body + len, 65536 - len, "%sq%d",
                                q ? ", " : "", q);
    len += (size_t)snprintf(body + len, 65536 - len, "]\njobs:\n");
    for (i = 0; i < 50; i++)
        len += (size_t)snprintf(body + len, 65536 - len,
                                "  job_type_%02d:\n    handler: noop\n", i);
    port = config_with_metrics(t, NULL, body);
    free(body);
    drv_test_droverd_start(t, 0);
    drv_test_wait_http(port, "/readyz", 200, "ready");
    /* one job of every type on every queue: every histogram series shows */
    for (q = 0; q < 10; q++) {
        char qn[16], jn[32];

        snprintf(qn, sizeof qn, "q%d", q);
        for (i = 0; i < 50; i++) {
            snprintf(jn, sizeof jn, "job_type_%02d", i);
            drv_test_xadd(t, qn, NULL, 0, "job", jn, NULL);
        }
    }
    for (q = 0; q < 10; q++) {
        char qn[16];

        snprintf(qn, sizeof qn, "q%d", q);
        drv_test_wait_stat(t, qn, "processed", 50);
    }
    /* the round trip includes the machine's scheduling; droverd's own
     * gauge says what the scrape itself took (the previous one's) */
    for (i = 0; i < 21; i++) {
        struct timespec a, b;
        int64_t us;

        clock_gettime(CLOCK_MONOTONIC, &a);
        m = drv_test_scrape(port);
        clock_gettime(CLOCK_MONOTONIC, &b);
        us = (b.tv_sec - a.tv_sec) * 1000000 + (b.tv_nsec - a.tv_nsec) / 1000;
        if (us < best)
            best = us;
        if (i > 0)
            own[i - 1] = val(m, "drover_scrape_duration_seconds") * 1e6;
        if (i == 0) {
            assert_true(val(m, "drover_jobs_processed_total{queue=\"q9\","
                               "job=\"job_type_49\"}") == 1);
            assert_true(val(m, "drover_job_duration_seconds_count{queue="
                               "\"q9\",job=\"job_type_49\"}") == 1);
            fprintf(stderr, "# scrape: 50 job types x 10 queues: %zu "
                    "bytes\n", strlen(m));
        }
        free(m);
    }
    qsort(own, 20, sizeof own[0], cmp_double);
    /* printed for the record (make test output, doc/operating.md); the
     * time of a busy machine is no assertion */
    fprintf(stderr, "# scrape: 50 job types x 10 queues: collect+render "
            "min %.0f us, median %.0f us; best HTTP round trip %lld us\n",
            own[0], (own[9] + own[10]) / 2, (long long)best);
    drv_test_droverd_stop(t, 0, 0);
}

/* ------------------------------------------------------------ deploy */

/* Names a PromQL expression may use besides droverd's metrics: functions,
 * keywords, label names, and Prometheus's own `up`. */
static const char *const promql_words[] = {
    "sum", "max", "min", "count", "avg", "by", "without", "rate",
    "increase", "delta", "irate", "histogram_quantile", "absent", "or",
    "and", "unless", "le", "queue", "instance", "conn", "job", "reason",
    "exported_job", "up", "__rate_interval", "queue", "scrape_job", NULL,
};

/* Fail unless every identifier of expr is a family the scrape declares
 * (histograms also with _bucket, _sum, _count) or a PromQL word. Quoted
 * strings (label values) are skipped. */
static void
check_expr(const char *expr, const char *families, const char *where)
{
    const char *p = expr;

    while (*p != '\0') {
        char word[128], line[160];
        size_t n = 0;
        int i, ok = 0;

        if (*p == '"') {
            for (p++; *p != '\0' && *p != '"'; p++)
                if (*p == '\\' && p[1] != '\0')
                    p++;
            if (*p == '"')
                p++;
            continue;
        }
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              *p == '_' || *p == '$')) {
            if (*p >= '0' && *p <= '9')
                while ((*p >= '0' && *p <= '9') || *p == '.' ||
                       (*p >= 'a' && *p <= 'z'))
                    p++; /* 0.99, 15m */
            else
                p++;
            continue;
        }
        if (*p == '$')
            p++;
        while (((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                (*p >= '0' && *p <= '9') || *p == '_' || *p == ':') &&
               n < sizeof word - 1)
            word[n++] = *p++;
        word[n] = '\0';
        for (i = 0; promql_words[i] != NULL && !ok; i++)
            ok = strcmp(word, promql_words[i]) == 0;
        if (!ok) {
            static const char *const sfx[] = {"", "_bucket", "_sum",
                                              "_count"};
            size_t k;

            for (k = 0; k < 4 && !ok; k++) {
                size_t wl = strlen(word), sl = strlen(sfx[k]);

                if (wl <= sl || strcmp(word + wl - sl, sfx[k]) != 0)
                    continue;
                /* the bare name: any type; a suffix: a histogram's */
                snprintf(line, sizeof line, "\n# TYPE %.*s %s",
                         (int)(wl - sl), word, k == 0 ? "" : "histogram\n");
                ok = strstr(families, line) != NULL;
            }
        }
        if (!ok)
            fail_msg("%s: \"%s\" is no metric droverd exports (in: %s)",
                     where, word, expr);
    }
}

/* The scalar values of every `key:` in a YAML file (all documents),
 * appended to out as NUL-separated strings; fails when it does not
 * parse. */
static int
yaml_values(const char *path, const char *key, char *out, size_t n)
{
    yaml_parser_t ps;
    yaml_event_t ev;
    FILE *f = fopen(path, "r");
    int want = 0, done = 0, count = 0, depth = 0, expect_key[64] = {0};
    size_t used = 0;

    assert_non_null(f);
    assert_true(yaml_parser_initialize(&ps));
    yaml_parser_set_input_file(&ps, f);
    while (!done) {
        if (!yaml_parser_parse(&ps, &ev))
            fail_msg("%s: YAML does not parse: %s (line %zu)", path,
                     ps.problem ? ps.problem : "?",
                     ps.problem_mark.line + 1);
        switch (ev.type) {
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT:
            if (depth > 0 && expect_key[depth - 1] >= 0)
                expect_key[depth - 1] = !expect_key[depth - 1];
            want = 0;
            depth++;
            expect_key[depth - 1] =
                ev.type == YAML_MAPPING_START_EVENT ? 1 : -1;
            break;
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT:
            depth--;
            break;
        case YAML_SCALAR_EVENT: {
            const char *v = (const char *)ev.data.scalar.value;
            int is_key = depth > 0 && expect_key[depth - 1] == 1;

            if (!is_key && want) {
                size_t l = strlen(v);
                assert_true(used + l + 1 < n);
                memcpy(out + used, v, l + 1);
                used += l + 1;
                count++;
            }
            want = is_key && strcmp(v, key) == 0;
            if (depth > 0 && expect_key[depth - 1] >= 0)
                expect_key[depth - 1] = !expect_key[depth - 1];
            break;
        }
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&ps);
    fclose(f);
    out[used] = '\0';
    return count;
}

static void
test_metrics_deploy_uses_only_exported_metrics(void **st)
{
    struct drv_test_droverd *t = *st;
    static const char *const manifests[] = {
        "deploy/k8s/deployment.yaml", "deploy/k8s/configmap.yaml",
        "deploy/k8s/podmonitor.yaml", "deploy/k8s/pdb.yaml",
        "deploy/k8s/keda-scaledobject.yaml", NULL,
    };
    char *vals = malloc(1 << 20), *m, *json, *p;
    const char *v;
    size_t len = 0;
    int port, n, i;
    FILE *f;

    assert_non_null(vals);
    /* the families droverd declares, from a real scrape */
    port = config_with_metrics(t, NULL, jobs_body);
    drv_test_droverd_start(t, 0);
    drv_test_wait_http(port, "/healthz", 200, "ok");
    m = drv_test_scrape(port);
    drv_test_droverd_stop(t, 0, 0);

    /* alert rules: parse, and every expr names exported metrics */
    n = yaml_values("deploy/prometheus/drover-alerts.yaml", "expr", vals,
                    1 << 20);
    assert_int_equal(n, 5);
    for (v = vals; *v != '\0'; v += strlen(v) + 1)
        check_expr(v, m, "drover-alerts.yaml");
    n = yaml_values("deploy/prometheus/drover-alerts.yaml", "alert", vals,
                    1 << 20);
    assert_int_equal(n, 5);

    /* the probes in the Deployment point at the endpoints */
    assert_int_equal(yaml_values("deploy/k8s/deployment.yaml", "path", vals,
                                 1 << 20), 2);
    assert_string_equal(vals, "/healthz");
    assert_string_equal(vals + strlen(vals) + 1, "/readyz");
    for (i = 0; manifests[i] != NULL; i++)
        yaml_values(manifests[i], "kind", vals, 1 << 20); /* parses */

    /* Grafana: every "expr" of the JSON */
    f = fopen("deploy/grafana/drover.json", "r");
    assert_non_null(f);
    json = malloc(1 << 20);
    assert_non_null(json);
    len = fread(json, 1, (1 << 20) - 1, f);
    fclose(f);
    json[len] = '\0';
    n = 0;
    for (p = json; (p = strstr(p, "\"expr\": \"")) != NULL; n++) {
        char expr[2048];
        size_t k = 0;

        for (p += 9; *p != '\0' && *p != '"' && k < sizeof expr - 1; p++) {
            if (*p == '\\' && p[1] != '\0')
                p++; /* JSON escape: \" -> " */
            expr[k++] = *p;
        }
        expr[k] = '\0';
        check_expr(expr, m, "grafana/drover.json");
    }
    assert_true(n >= 10);
    free(json);
    free(m);
    free(vals);
}

/* drover_schedule_ticks_total{schedule}: the ticks this worker enqueued;
 * alone on an empty stream, it enqueued every entry there. */
static void
test_metrics_schedule_ticks(void **st)
{
    struct drv_test_droverd *t = *st;
    char *m = NULL;
    int port;

    port = config_with_metrics(t, NULL,
                               "queues: [default, sched]\n"
                               "jobs:\n  ok:\n    handler: noop\n"
                               "schedules:\n"
                               "  tick: {every: 1s, queue: sched, job: ok}\n"
                               "  leap: {cron: \"0 0 29 2 *\", job: ok}\n");
    freeReplyObject(drv_test_redis_cmd(t->c, "SET t:{sched}:paused 1"));
    drv_test_droverd_start(t, 0);
    drv_test_wait_metric(port,
                         "drover_schedule_ticks_total{schedule=\"tick\"}", 3);
    assert_true(drv_test_num(t, "XLEN t:{sched}:jobs") >= 3);
    m = drv_test_scrape(port);
    assert_family(m, "drover_schedule_ticks_total", "counter");
    assert_true(val(m, "drover_schedule_ticks_total{schedule=\"leap\"}")
                == 0);
    free(m);
    drv_test_droverd_stop(t, 0, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        TD(test_metrics_every_family_after_known_jobs),
        TD(test_metrics_queue_gauges_follow_redis),
        TD(test_metrics_readyz_follows_redis_and_stop),
        TD(test_metrics_hostile_http),
        TD(test_metrics_exec_resources),
        TD(test_metrics_traceparent_reaches_exec_and_http),
        TD(test_metrics_scrape_of_50_types_10_queues),
        TD(test_metrics_deploy_uses_only_exported_metrics),
        TD(test_metrics_schedule_ticks),
    };
#undef T

    drv_test_droverd_fixture = &opts;
    drv_test_filter_from_env();
    return cmocka_run_group_tests(tests, drv_test_redis_group_setup,
                                  drv_test_redis_group_teardown);
}
