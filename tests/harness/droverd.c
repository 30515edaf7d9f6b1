/*
 * droverd.c -- the droverd fixture of the integration tests: temp dir,
 * config, droverd processes and Redis helpers on the queue keys.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "droverd.h"
#include "drover/common.h"

/* ------------------------------------------------ fixture */

static void dump_running(void *arg);

struct drv_test_droverd *
drv_test_droverd_new(const struct drv_test_redis *srv,
                     const struct drv_test_droverd_opts *o)
{
    struct drv_test_droverd *t = calloc(1, sizeof *t);

    assert_non_null(t);
    t->o = *o;
    t->srv = srv;
    if (srv == &drv_test_srv)
        drv_test_redis_fresh();
    else
        drv_test_redis_flush(srv);
    assert_int_equal(drv_test_tmpdir(o->tmpdir, t->dir, sizeof t->dir), 0);
    snprintf(t->trace, sizeof t->trace, "%s/started.trace", t->dir);
    t->c = drv_test_redis_connect(srv);
    assert_non_null(t->c);
    drv_test_on_wait_fail(dump_running, t);
    drv_test_watchdog_start(DRV_TEST_WATCHDOG_S);
    return t;
}

void
drv_test_droverd_free(struct drv_test_droverd *t)
{
    const char *keep = getenv("DROVER_TEST_KEEP");
    int i;

    if (t == NULL)
        return;
    drv_test_watchdog_stop();
    drv_test_on_wait_fail(NULL, NULL);
    for (i = 0; i < DRV_TEST_NPROCS; i++)
        if (t->w[i].pid > 0) {
            drv_test_dump_log(t, t->w[i].log);
            drv_test_kill(&t->w[i], SIGKILL);
        }
    if (t->c != NULL)
        redisFree(t->c);
    if (!(keep && strcmp(keep, "1") == 0))
        drv_test_rm_rf(t->dir);
    free(t);
}

/* The default lines of defaults whose key extra does not name, appended
 * to out (size n) at *o. */
static void
add_defaults(char *out, size_t n, size_t *o, const char *defaults,
             const char *extra)
{
    const char *line = defaults;

    while (line != NULL && *line != '\0') {
        const char *end = strchr(line, '\n');
        const char *key = line + strspn(line, " ");
        size_t len = end != NULL ? (size_t)(end - line) + 1 : strlen(line);
        size_t klen = strcspn(key, ":\n");
        char name[128];

        snprintf(name, sizeof name, "%.*s", (int)klen, key);
        if (strstr(extra, name) == NULL && *o < n)
            *o += (size_t)snprintf(out + *o, n - *o, "%.*s", (int)len, line);
        line += len;
    }
}

void
drv_test_droverd_config(struct drv_test_droverd *t, const char *worker_extra,
                        const char *body)
{
    drv_test_droverd_config_redis(t, t->srv->url, t->srv->tls_yaml,
                                  worker_extra, body);
}

void
drv_test_droverd_config_redis(struct drv_test_droverd *t, const char *url,
                              const char *redis_extra,
                              const char *worker_extra, const char *body)
{
    const char *x = worker_extra != NULL ? worker_extra : "";
    char text[8192];
    size_t o;

    snprintf(t->cfg, sizeof t->cfg, "%s/drover.yaml", t->dir);
    o = (size_t)snprintf(text, sizeof text,
                         "redis:\n  url: %s\n  prefix: %s\n%sworker:\n",
                         url, t->o.prefix, redis_extra);
    add_defaults(text, sizeof text, &o, t->o.worker_defaults, x);
    if (o < sizeof text)
        snprintf(text + o, sizeof text - o, "%s%s%s", x,
                 t->o.body_head != NULL ? t->o.body_head : "", body);
    assert_int_equal(drv_test_write_file(t->cfg, text), 0);
}

/* argv[n..] = args (NULL-terminated, at most max - n - 1; may be NULL),
 * then NULL. */
static void
append_args(const char **argv, size_t n, size_t max, const char *const *args)
{
    for (; args != NULL && *args != NULL; args++) {
        assert_true(n + 1 < max);
        argv[n++] = *args;
    }
    argv[n] = NULL;
}

void
drv_test_droverd_start(struct drv_test_droverd *t, int i)
{
    drv_test_droverd_start_args(t, i, NULL);
}

void
drv_test_droverd_start_args(struct drv_test_droverd *t, int i,
                            const char *const *args)
{
    drv_test_droverd_start_env(t, i, args, NULL);
}

void
drv_test_droverd_start_env(struct drv_test_droverd *t, int i,
                           const char *const *args,
                           const char *const *env_extra)
{
    char bin[300], trace_env[450];
    const char *argv[14];
    const char *env[8] = {trace_env, NULL};

    assert_true(i >= 0 && i < DRV_TEST_NPROCS);
    drv_test_bin("droverd", bin, sizeof bin);
    snprintf(t->log, sizeof t->log, "%s/droverd%d.log", t->dir,
             t->nstarted++);
    argv[0] = bin;
    argv[1] = "-c";
    argv[2] = t->cfg;
    argv[3] = "--log-level";
    argv[4] = t->o.log_level;
    append_args(argv, 5, DRV_ARRAY_LEN(argv), args);
    snprintf(trace_env, sizeof trace_env, "DROVER_TRACE_START=%s", t->trace);
    append_args(env, 1, DRV_ARRAY_LEN(env), env_extra);
    assert_int_equal(drv_test_spawn(&t->w[i], argv, t->log, env), 0);
}

void
drv_test_droverd_stop(struct drv_test_droverd *t, int i, int want_exit)
{
    int rc;

    drv_test_kill(&t->w[i], SIGTERM);
    rc = drv_test_wait(&t->w[i], DRV_TEST_WAIT_MS);
    if (rc != want_exit) {
        drv_test_dump_log(t, t->w[i].log);
        fail_msg("droverd exit %d, wanted %d", rc, want_exit);
    }
}

void
drv_test_dump_log(const struct drv_test_droverd *t, const char *log)
{
    char cmd[600];

    snprintf(cmd, sizeof cmd, "tail -n %d '%s' >&2", t->o.tail_lines, log);
    if (system(cmd) != 0)
        return;
}

/* The logs of the droverd processes still running (a failing wait). */
static void
dump_running(void *arg)
{
    const struct drv_test_droverd *t = arg;
    int i;

    for (i = 0; i < DRV_TEST_NPROCS; i++)
        if (t->w[i].pid > 0)
            drv_test_dump_log(t, t->w[i].log);
}

/* ------------------------------------------------ redis helpers */

void
drv_test_xadd(struct drv_test_droverd *t, const char *q, char *id,
              size_t idn, ...)
{
    const char *argv[64];
    size_t lens[64];
    char key[128];
    int argc = 0, i;
    const char *s;
    va_list ap;
    redisReply *r;

    snprintf(key, sizeof key, "%s:{%s}:jobs", t->o.prefix, q);
    argv[argc++] = "XADD";
    argv[argc++] = key;
    argv[argc++] = "*";
    va_start(ap, idn);
    while ((s = va_arg(ap, const char *)) != NULL && argc < 64)
        argv[argc++] = s;
    va_end(ap);
    for (i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    r = redisCommandArgv(t->c, argc, argv, lens);
    assert_non_null(r);
    if (r->type != REDIS_REPLY_STRING)
        fail_msg("XADD failed: %s", r->str ? r->str : "?");
    if (id != NULL)
        snprintf(id, idn, "%s", r->str);
    freeReplyObject(r);
}

/* drv_test_num's reading of a reply, for a command on c. */
static long long
vnum(redisContext *c, const char *fmt, va_list ap)
{
    redisReply *r;
    long long v = 0;

    r = redisvCommand(c, fmt, ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    else if (r->type == REDIS_REPLY_STRING)
        v = atoll(r->str);
    else if (r->type == REDIS_REPLY_ARRAY && r->elements > 0 &&
             r->element[0]->type == REDIS_REPLY_INTEGER)
        v = r->element[0]->integer; /* XPENDING summary: count */
    freeReplyObject(r);
    return v;
}

long long
drv_test_num(struct drv_test_droverd *t, const char *fmt, ...)
{
    va_list ap;
    long long v;

    va_start(ap, fmt);
    v = vnum(t->c, fmt, ap);
    va_end(ap);
    return v;
}

long long
drv_test_num_on(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    long long v;

    va_start(ap, fmt);
    v = vnum(c, fmt, ap);
    va_end(ap);
    return v;
}

long long
drv_test_numsub(struct drv_test_droverd *t, const char *channel)
{
    redisReply *r = redisCommand(t->c, "PUBSUB NUMSUB %s", channel);
    long long n = -1;

    assert_non_null(r);
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_INTEGER)
        n = r->element[1]->integer;
    freeReplyObject(r);
    return n;
}

long long
drv_test_stat(struct drv_test_droverd *t, const char *q, const char *name)
{
    return drv_test_num(t, "HGET %s:{%s}:stats %s", t->o.prefix, q, name);
}

void
drv_test_wait_stat(struct drv_test_droverd *t, const char *q,
                   const char *name, long long want)
{
    char what[256];
    long long v;

    snprintf(what, sizeof what, "stat %s of %s", name, q);
    wait_until_num(drv_test_stat(t, q, name), >=, want, what);
    /* reached: a fresh read must agree (it must not have gone past) */
    v = drv_test_stat(t, q, name);
    if (v != want) {
        dump_running(t);
        fail_msg("stat %s of %s is %lld, wanted %lld", name, q, v, want);
    }
}

void
drv_test_wait_pending(struct drv_test_droverd *t, const char *q,
                      long long want)
{
    char what[256];

    snprintf(what, sizeof what, "pending of %s", q);
    wait_until_num(drv_test_num(t, "XPENDING %s:{%s}:jobs drover",
                                t->o.prefix, q),
                   >=, want, what);
}

int
drv_test_given_back(struct drv_test_droverd *t, const char *q, long long n)
{
    redisReply *r, *f;
    size_t i, k;
    int with_id = 0;

    assert_int_equal(drv_test_num(t, "XLEN %s:{%s}:jobs", t->o.prefix, q),
                     n);
    assert_int_equal(drv_test_num(t, "XPENDING %s:{%s}:jobs drover",
                                  t->o.prefix, q), 0);
    assert_int_equal(drv_test_stat(t, q, "processed"), 0);
    assert_int_equal(drv_test_stat(t, q, "failed"), 0);
    r = redisCommand(t->c, "XRANGE %s:{%s}:jobs - +", t->o.prefix, q);
    assert_non_null(r);
    for (i = 0; i < r->elements; i++) {
        f = r->element[i]->element[1];
        for (k = 0; k + 1 < f->elements; k += 2) {
            assert_string_not_equal(f->element[k]->str, "attempt");
            if (strcmp(f->element[k]->str, "id") == 0)
                with_id++;
        }
    }
    freeReplyObject(r);
    return with_id;
}

void
drv_test_wait_log(struct drv_test_droverd *t, const char *needle, int n)
{
    wait_until_num(drv_test_file_count(t->log, needle), >=, n, needle);
}

int
drv_test_started(const struct drv_test_droverd *t)
{
    return drv_test_file_lines(t->trace);
}

void
drv_test_wait_started(struct drv_test_droverd *t, int n)
{
    wait_until_num(drv_test_started(t), >=, n, "jobs started (trace)");
}

/* The value of the last field name in a stream entry's field list, or
 * NULL. */
static const char *
entry_field(const redisReply *f, const char *name)
{
    const char *v = NULL;
    size_t k;

    for (k = 0; k + 1 < f->elements; k += 2)
        if (strcmp(f->element[k]->str, name) == 0)
            v = f->element[k + 1]->str;
    return v;
}

void
drv_test_dead_fields(struct drv_test_droverd *t, const char *q,
                     const char *name, char *out, size_t n)
{
    redisReply *r = redisCommand(t->c, "XRANGE %s:{%s}:dead - +",
                                 t->o.prefix, q);
    size_t i, k, o = 0;

    out[0] = '\0';
    assert_non_null(r);
    for (i = 0; i < r->elements; i++) {
        redisReply *f = r->element[i]->element[1];
        for (k = 0; k + 1 < f->elements; k += 2)
            if (strcmp(f->element[k]->str, name) == 0 && o < n)
                o += (size_t)snprintf(out + o, n - o, "%s|",
                                      f->element[k + 1]->str);
    }
    freeReplyObject(r);
}

void
drv_test_deliver_twice(struct drv_test_droverd *t, const char *q,
                       const char *eid)
{
    redisReply *r = drv_test_redis_cmd(t->c, "XREADGROUP GROUP drover "
                                       "ghost1 COUNT 1 STREAMS %s:{%s}:jobs "
                                       ">", t->o.prefix, q);

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 1 ||
        r->element[0]->element[1]->elements != 1 ||
        strcmp(r->element[0]->element[1]->element[0]->element[0]->str,
               eid) != 0)
        fail_msg("XREADGROUP on %s did not deliver %s", q, eid);
    freeReplyObject(r);
    /* without JUSTID: the claim counts a delivery */
    r = drv_test_redis_cmd(t->c, "XCLAIM %s:{%s}:jobs drover ghost2 0 %s",
                           t->o.prefix, q, eid);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 1)
        fail_msg("XCLAIM on %s did not claim %s", q, eid);
    freeReplyObject(r);
}

void
drv_test_dead_field(struct drv_test_droverd *t, const char *q,
                    const char *key, const char *val, const char *name,
                    char *out, size_t n)
{
    redisReply *r = redisCommand(t->c, "XRANGE %s:{%s}:dead - +",
                                 t->o.prefix, q);
    size_t i;

    out[0] = '\0';
    assert_non_null(r);
    for (i = 0; i < r->elements; i++) {
        const redisReply *f = r->element[i]->element[1];
        const char *k = key != NULL ? entry_field(f, key) : NULL;
        const char *v = entry_field(f, name);

        if (v != NULL && (key == NULL || (k != NULL && strcmp(k, val) == 0)))
            snprintf(out, n, "%s", v);
    }
    freeReplyObject(r);
}

char *
drv_test_hget(struct drv_test_droverd *t, const char *key, const char *field)
{
    return drv_test_hget_on(t->c, key, field);
}

char *
drv_test_result(struct drv_test_droverd *t, const char *q, const char *id,
                const char *field)
{
    redisReply *r = redisCommand(t->c, "HGET %s:{%s}:result:%s %s",
                                 t->o.prefix, q, id, field);
    char *v = NULL;

    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        v = malloc(r->len + 1);
        assert_non_null(v);
        memcpy(v, r->str, r->len);
        v[r->len] = '\0';
    }
    freeReplyObject(r);
    return v;
}

int
drv_test_hget_is(struct drv_test_droverd *t, const char *key,
                 const char *field, const char *want)
{
    return drv_test_hget_is_on(t->c, key, field, want);
}

void
drv_test_expect_hget(struct drv_test_droverd *t, const char *key,
                     const char *field, const char *want)
{
    drv_test_expect_hget_on(t->c, key, field, want);
}

void
drv_test_expect_result(struct drv_test_droverd *t, const char *q,
                       const char *id, const char *field, const char *want)
{
    char key[512];

    snprintf(key, sizeof key, "%s:{%s}:result:%s", t->o.prefix, q, id);
    drv_test_expect_hget(t, key, field, want);
}

/* ------------------------------------------------- per-test fixture */

const struct drv_test_droverd_opts *drv_test_droverd_fixture;

int
drv_test_droverd_setup(void **st)
{
    assert_non_null(drv_test_droverd_fixture);
    *st = drv_test_droverd_new(&drv_test_srv, drv_test_droverd_fixture);
    if (drv_test_droverd_fixture->setup != NULL)
        drv_test_droverd_fixture->setup(*st);
    return 0;
}

int
drv_test_droverd_teardown(void **st)
{
    drv_test_droverd_free(*st);
    *st = NULL;
    return 0;
}

int
drv_test_web_start(struct drv_test_droverd *t, struct drv_test_proc *p,
                   char *log, size_t logn)
{
    return drv_test_web_start_args(t, p, log, logn, NULL);
}

int
drv_test_web_start_args(struct drv_test_droverd *t, struct drv_test_proc *p,
                        char *log, size_t logn, const char *const *args)
{
    static const char url[] = "dashboard at http://127.0.0.1:";
    char bin[400], text[4096];
    const char *argv[16] = {drv_test_bin("drover", bin, sizeof bin), "-c",
                            t->cfg, "web", "--listen", "127.0.0.1:0", NULL};
    const char *at;
    size_t n;
    FILE *f;
    int port;

    append_args(argv, 6, DRV_ARRAY_LEN(argv), args);
    snprintf(log, logn, "%s/web.log", t->dir);
    assert_int_equal(drv_test_spawn(p, argv, log, NULL), 0);
    wait_until(drv_test_file_contains(log, url),
               "drover web to print its URL");
    f = fopen(log, "r");
    assert_non_null(f);
    n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    at = strstr(text, url);
    assert_non_null(at);
    port = atoi(at + strlen(url));
    assert_true(port > 0);
    return port;
}
