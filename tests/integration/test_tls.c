/*
 * test_tls.c -- droverd, drover and drover web against a TLS-only
 * redis-server (rediss://; a CA and certificates made with openssl when
 * the group starts), and by host name:
 *   - droverd runs jobs over rediss:// (OpenSSL, which drover does not
 *     link, is loaded for it), drover enqueue and stats and the
 *     dashboard's /api/queues work over it too;
 *   - a CA that did not sign the server's certificate: every client says
 *     "certificate verify failed"; droverd keeps retrying (the log says it
 *     again, /readyz is 503, /healthz 200) and stops cleanly;
 *   - a server that requires client certificates: cert_file/key_file
 *     work, without them the CLI says why it was refused;
 *   - rediss://localhost and the /etc/hosts name (its certificate names
 *     both); a name that does not resolve: a clear error, retried, the
 *     loop still answering /healthz;
 *   - a ca_file that cannot be read stops the start (exit status 2);
 *   - drover doctor reads the server certificate's expiry: a certificate
 *     valid for 3 more days is a problem, one valid for 90 is fine.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "droverd.h"

static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-tls",
    .prefix = "t",
    .log_level = "info",
    .worker_defaults = "  shutdown_timeout: 5s\n",
    .tail_lines = 40,
};

static const char jobs_body[] =
    "queues: [default]\n"
    "jobs:\n  e:\n    handler: echo\n";

/* ------------------------------------------------------------- helpers */

struct body {
    char *p;        /* borrowed: destination */
    size_t n, len;  /* its size, bytes in it */
};

static size_t
on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct body *b = arg;
    size_t n = size * nmemb, room = b->n - 1 - b->len;

    memcpy(b->p + b->len, data, n < room ? n : room);
    b->len += n < room ? n : room;
    b->p[b->len] = '\0';
    return n;
}

/* GET http://127.0.0.1:port/path: the status (0: no answer); the body
 * into out. */
static long
http_get(int port, const char *path, char *out, size_t n)
{
    struct body b = {out, n, 0};
    char url[256];
    long code = 0;
    CURL *c = curl_easy_init();

    assert_non_null(c);
    out[0] = '\0';
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)DRV_TEST_WAIT_MS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    return code;
}

/* Poll path until it answers want. */
static void
wait_http(struct drv_test_droverd *t, int port, const char *path, long want)
{
    char body[4096];
    long code;

    wait_until((code = http_get(port, path, body, sizeof body)) == want,
               "%s to answer %ld (last %ld: %s)", path, want, code, body);
    (void)t;
}

/*
 * Run drover with the test's config and args (NULL-terminated after the
 * command); its stdout into out, stderr into err (each n bytes). Returns
 * its exit code.
 */
static int
cli(struct drv_test_droverd *t, const char *cfg, const char *redis,
    char *out, char *err, size_t n, ...)
{
    const char *args[32];
    struct drv_test_cli r;
    va_list ap;
    int i = 0, rc;

    if (redis != NULL) {
        args[i++] = "--redis";
        args[i++] = redis;
    }
    va_start(ap, n);
    while (i < 31 && (args[i] = va_arg(ap, const char *)) != NULL)
        i++;
    va_end(ap);
    args[i] = NULL;
    drv_test_cli_run(&r, t->dir, cfg != NULL ? cfg : t->cfg, NULL, args);
    snprintf(out, n, "%s", r.out);
    snprintf(err, n, "%s", r.err);
    rc = r.status;
    drv_test_cli_fini(&r);
    return rc;
}

#define assert_has(text, needle)                                          \
    do {                                                                  \
        if (strstr((text), (needle)) == NULL)                             \
            fail_msg("'%s' lacks '%s'", (text), (needle));                \
    } while (0)

/* Start `drover -c cfg web` on a free port; its port. */
static int
web_start(struct drv_test_droverd *t, struct drv_test_proc *p,
          const char *cfg)
{
    char bin[512], log[420], listen[64];
    int port = drv_test_free_port();
    const char *argv[] = {drv_test_bin("drover", bin, sizeof bin), "-c", cfg,
                          "web", "--listen", listen, NULL};

    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(log, sizeof log, "%s/web.log", t->dir);
    assert_int_equal(drv_test_spawn(p, argv, log, NULL), 0);
    wait_until(drv_test_file_count(log, "dashboard at http://") == 1,
               "drover web to start (%s)", log);
    return port;
}

static void
web_stop(struct drv_test_proc *p)
{
    drv_test_kill(p, SIGTERM);
    assert_int_equal(drv_test_wait(p, DRV_TEST_WAIT_MS), 0);
}

/* Write the fixture's config for srv (a copy of the group's server with
 * another url or TLS lines), with worker.metrics on a free port. */
static int
config_for(struct drv_test_droverd *t, const struct drv_test_redis *srv)
{
    char w[128];
    int port = drv_test_free_port();

    snprintf(w, sizeof w, "  metrics: 127.0.0.1:%d\n", port);
    t->srv = srv;
    drv_test_droverd_config(t, w, jobs_body);
    t->srv = &drv_test_srv;
    return port;
}

/* ---------------------------------------------------------------- tests */

static void
test_tls_droverd_cli_and_web(void **st)
{
    struct drv_test_droverd *t = *st;
    struct drv_test_proc web;
    char out[8192], err[8192], maps[64];
    int i, port;

    config_for(t, &drv_test_srv);
    drv_test_droverd_start(t, 0);
    assert_int_equal(cli(t, NULL, NULL, out, err, sizeof out, "enqueue",
                         "default", "e", "via=cli", NULL), 0);
    for (i = 0; i < 4; i++)
        drv_test_xadd(t, "default", NULL, 0, "job", "e", "n", "1", NULL);
    drv_test_wait_stat(t, "default", "processed", 5);
    drv_test_wait_log(t, "tls=on", 2); /* both connections */
    /* OpenSSL is not linked: rediss:// loaded it */
    snprintf(maps, sizeof maps, "/proc/%d/maps", (int)t->w[0].pid);
    assert_true(drv_test_file_contains(maps, "libssl"));

    assert_int_equal(cli(t, NULL, NULL, out, err, sizeof out, "stats",
                         "default", "--json", NULL), 0);
    assert_has(out, "\"processed\":5");

    port = web_start(t, &web, t->cfg);
    assert_int_equal(http_get(port, "/api/queues", out, sizeof out), 200);
    assert_has(out, "\"default\"");
    assert_has(out, "\"processed\":5");
    web_stop(&web);
    drv_test_droverd_stop(t, 0, 0);
}

static void
test_tls_wrong_ca_is_refused_and_retried(void **st)
{
    struct drv_test_droverd *t = *st;
    struct drv_test_redis bad = drv_test_srv;
    struct drv_test_proc web;
    char out[8192], err[8192];
    int port, wport;

    snprintf(bad.tls_yaml, sizeof bad.tls_yaml,
             "  tls:\n    ca_file: %s/other-ca.pem\n", bad.certs);
    port = config_for(t, &bad);
    drv_test_droverd_start(t, 0);
    /* said, and said again: attempts 1, 2 and 4 of a streak are loud */
    drv_test_wait_log(t, "TLS: certificate verify failed", 3);
    drv_test_wait_log(t, "(host 127.0.0.1)", 3);
    assert_true(drv_test_pid_alive(t->w[0].pid));
    wait_http(t, port, "/healthz", 200);
    assert_int_equal(http_get(port, "/readyz", out, sizeof out), 503);
    assert_int_equal(drv_test_file_count(t->log, "redis connected"), 0);

    assert_true(cli(t, NULL, NULL, out, err, sizeof out, "stats",
                    NULL) != 0);
    assert_has(err, "TLS: certificate verify failed");

    wport = web_start(t, &web, t->cfg);
    assert_int_equal(http_get(wport, "/api/queues", out, sizeof out), 503);
    web_stop(&web);

    drv_test_droverd_stop(t, 0, 0);
}

static void
test_tls_client_certificate_required(void **st)
{
    struct drv_test_droverd *t = *st;
    struct drv_test_redis cs;
    char out[8192], err[8192], nocert[420], text[2048];
    redisContext *c;

    assert_int_equal(drv_test_redis_start_tls(&cs, 1), 0);
    /* the fixture's client (XADD, stats) talks to this server now */
    c = t->c;
    t->c = drv_test_redis_connect(&cs);
    assert_non_null(t->c);
    snprintf(cs.tls_yaml, sizeof cs.tls_yaml,
             "  tls:\n    ca_file: %s/ca.pem\n"
             "    cert_file: %s/client.pem\n    key_file: %s/client.key\n",
             cs.certs, cs.certs, cs.certs);
    config_for(t, &cs);
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "job", "e", NULL);
    assert_int_equal(cli(t, NULL, NULL, out, err, sizeof out, "enqueue",
                         "default", "e", NULL), 0);
    drv_test_wait_stat(t, "default", "processed", 2);

    /* the same without a client certificate: refused, and said so */
    snprintf(nocert, sizeof nocert, "%s/nocert.yaml", t->dir);
    snprintf(text, sizeof text,
             "redis:\n  url: %s\n  prefix: t\n  tls:\n    ca_file: %s\n%s",
             cs.url, cs.ca, jobs_body);
    assert_int_equal(drv_test_write_file(nocert, text), 0);
    assert_true(cli(t, nocert, NULL, out, err, sizeof out, "stats",
                    NULL) != 0);
    /* OpenSSL's alert when it arrives in time, else our hint */
    assert_has(err, "TLS: ");
    if (strstr(err, "certificate required") == NULL)
        assert_has(err, "if the server requires a client certificate, set "
                   "tls cert_file and key_file");

    drv_test_droverd_stop(t, 0, 0);
    redisFree(t->c);
    t->c = c;
    drv_test_redis_cleanup(&cs);
}

static void
test_tls_host_names(void **st)
{
    struct drv_test_droverd *t = *st;
    struct drv_test_redis byname = drv_test_srv;
    struct drv_test_proc web;
    char out[8192], err[8192], url[256], want[128];
    int rc, port;

    snprintf(byname.url, sizeof byname.url, "rediss://localhost:%d/0",
             drv_test_srv.port);
    config_for(t, &byname);
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "job", "e", NULL);
    drv_test_wait_stat(t, "default", "processed", 1);
    /* what the name resolved to, said once per connection's first look */
    snprintf(want, sizeof want, "host=localhost addresses=127.0.0.1:%d",
             drv_test_srv.port);
    drv_test_wait_log(t, want, 2);

    assert_int_equal(cli(t, NULL, NULL, out, err, sizeof out, "stats",
                         "--json", NULL), 0);
    assert_has(out, "\"processed\":1");
    port = web_start(t, &web, t->cfg);
    assert_int_equal(http_get(port, "/api/queues", out, sizeof out), 200);
    assert_has(out, "\"processed\":1");
    web_stop(&web);
    drv_test_droverd_stop(t, 0, 0);

    rc = drv_test_hosts_entry();
    if (rc < 0) {
        printf("skipped the /etc/hosts part: cannot add '127.0.0.1 "
               DRV_TEST_HOSTS_NAME "': %s\n", strerror(-rc));
        return;
    }
    snprintf(url, sizeof url, "rediss://" DRV_TEST_HOSTS_NAME ":%d/0",
             drv_test_srv.port);
    assert_int_equal(cli(t, NULL, url, out, err, sizeof out, "enqueue",
                         "default", "e", NULL), 0);
    assert_int_equal(cli(t, NULL, url, out, err, sizeof out, "stats",
                         "--json", NULL), 0);
    assert_has(out, "\"ready\":1");
}

static void
test_tls_unresolvable_host(void **st)
{
    struct drv_test_droverd *t = *st;
    struct drv_test_redis none = drv_test_srv;
    char out[8192], err[8192];
    int port;

    snprintf(none.url, sizeof none.url,
             "redis://no-such-host.invalid:6379/0");
    none.tls_yaml[0] = '\0';
    port = config_for(t, &none);
    drv_test_droverd_start(t, 0);
    drv_test_wait_log(t, "cannot resolve host 'no-such-host.invalid'", 3);
    /* resolving runs off the loop: it answers all along */
    wait_http(t, port, "/healthz", 200);
    assert_int_equal(http_get(port, "/readyz", out, sizeof out), 503);
    assert_true(drv_test_pid_alive(t->w[0].pid));

    assert_true(cli(t, NULL, NULL, out, err, sizeof out, "stats",
                    NULL) != 0);
    assert_has(err, "cannot resolve host 'no-such-host.invalid'");
    drv_test_droverd_stop(t, 0, 0);
}

static void
test_tls_unreadable_ca_stops_the_start(void **st)
{
    struct drv_test_droverd *t = *st;
    struct drv_test_redis bad = drv_test_srv;

    snprintf(bad.tls_yaml, sizeof bad.tls_yaml,
             "  tls:\n    ca_file: %s/no-such-ca.pem\n", t->dir);
    config_for(t, &bad);
    drv_test_droverd_start(t, 0);
    /* a config problem: exit status 2, naming the file */
    assert_int_equal(drv_test_wait(&t->w[0], DRV_TEST_WAIT_MS), 2);
    assert_true(drv_test_file_count(t->log, "cannot use ca_file") >= 1);
    assert_true(drv_test_file_count(t->log, "no-such-ca.pem") >= 1);
}

/* The server on a new certificate valid for days days (same CA). */
static void
server_cert_days(int days)
{
    assert_int_equal(drv_test_make_server_cert(drv_test_srv.certs, days), 0);
    assert_int_equal(drv_test_redis_restart(&drv_test_srv), 0);
}

/* drover doctor's line about the certificate (from "ok: " or "problem: "
 * up to the end of the line) into line (size n); its exit code. */
static int
doctor_cert_line(struct drv_test_droverd *t, char *line, size_t n)
{
    char out[16384], err[8192];
    const char *p, *start, *eol;
    int rc;

    rc = cli(t, NULL, NULL, out, err, sizeof out, "doctor", NULL);
    p = strstr(out, "server certificate");
    if (p == NULL)
        fail_msg("drover doctor (exit %d) said nothing of the certificate:"
                 "\n%s\n%s", rc, out, err);
    start = p;
    while (start > out && start[-1] != '\n')
        start--;
    eol = strchr(p, '\n');
    snprintf(line, n, "%.*s", (int)(eol ? eol - start : (long)strlen(start)),
             start);
    fprintf(stderr, "drover doctor: %s\n", line);
    return rc;
}

static void
test_tls_doctor_certificate_expiry(void **st)
{
    struct drv_test_droverd *t = *st;
    char line[1024];
    const char *p;
    int days;

    config_for(t, &drv_test_srv);
    /* short-lived: expires in less than 14 days */
    server_cert_days(3);
    assert_int_equal(doctor_cert_line(t, line, sizeof line), 1);
    assert_has(line, "problem: the server certificate expires on ");
    assert_has(line, " days (less than 14): renew it");
    /* valid for long enough */
    server_cert_days(90);
    doctor_cert_line(t, line, sizeof line);
    assert_has(line, "ok: the server certificate is valid until ");
    /* whole days left: 90 in the second the certificate was made, 89
     * after */
    p = strstr(line, "UTC (");
    assert_non_null(p);
    days = atoi(p + 5);
    if (days != 89 && days != 90)
        fail_msg("%d days left, want 89 or 90: %s", days, line);
    /* the other tests' certificate again */
    server_cert_days(2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        TD(test_tls_droverd_cli_and_web),
        TD(test_tls_wrong_ca_is_refused_and_retried),
        TD(test_tls_client_certificate_required),
        TD(test_tls_host_names),
        TD(test_tls_unresolvable_host),
        TD(test_tls_unreadable_ca_stops_the_start),
        TD(test_tls_doctor_certificate_expiry),
    };

    if (getenv("DROVER_TEST_REDIS_URL") != NULL) {
        printf("test_tls: skipped (it needs its own TLS server)\n");
        return 0;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    drv_test_droverd_fixture = &opts;
    drv_test_filter_from_env();
    return cmocka_run_group_tests(tests, drv_test_redis_tls_group_setup,
                                  drv_test_redis_group_teardown);
}
