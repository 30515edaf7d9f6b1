/*
 * test_plugin.c -- the plugin loader (pkg/plugin) and the reference plugin
 * (tests/plugins/example.c) through a fake host table: loading both
 * entry points of libexample.so from $DROVER_PLUGIN_DIR, one load per
 * (library, symbol), init/shutdown per job type, the clear errors (missing
 * file, missing symbol, wrong ABI, short table, no table, failing init,
 * the wrong mode), the path rule, and the example's two modes (a blocking
 * run() stopped from another thread through host->cancelled).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "drover/handler.h"
#include "drover/plugin.h"

/* ------------------------------------------------------------ fake host */

/* A job as the fake host shows it: NULL-terminated name, value pairs. */
struct drv_job_view {
    const char *const *fields;     /* borrowed: name, value, ..., NULL */
    char result[256];              /* set_result (NUL-terminated here) */
    size_t result_len;
    int has_result;
    char error[256];               /* set_error */
    atomic_int cancelled;          /* flipped by the test, any thread */
    atomic_int polls;              /* host->cancelled calls so far */
    atomic_int progress;           /* the last host->progress percent */
    atomic_int nprogress;          /* host->progress calls so far */
    int ndone;                     /* done calls */
    int done_status;               /* the last done status */
    drv_handler_timer_fn *timer_fn; /* the one pending timer */
    void *timer_arg;
    uint64_t timer_ms;
    void *data;                    /* set_data */
    drv_handler_free_fn *data_free;
};

/* What the host's log saw: counts of lines containing some words. */
static struct {
    pthread_mutex_t mu;
    int ready;                     /* "ready for job type" */
    int shutdown;                  /* "done, N jobs" */
    int stopped;                   /* "stopped early" */
    int cancelled;                 /* "cancelled while waiting" */
    char last[256];
} logs = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0, 0, ""};

static const char *
f_field(const struct drv_job_view *job, const char *name, size_t *len)
{
    const char *v = NULL;
    size_t i;

    for (i = 0; job->fields[i] != NULL; i += 2)
        if (strcmp(job->fields[i], name) == 0)
            v = job->fields[i + 1]; /* last one wins */
    if (v != NULL && len != NULL)
        *len = strlen(v);
    return v;
}

static size_t
f_nfields(const struct drv_job_view *job)
{
    size_t i = 0;

    while (job->fields[i] != NULL)
        i += 2;
    return i / 2;
}

static const char *
f_field_at(const struct drv_job_view *job, size_t i, const char **name,
           size_t *name_len, size_t *value_len)
{
    if (i >= f_nfields(job))
        return NULL;
    if (name != NULL)
        *name = job->fields[2 * i];
    if (name_len != NULL)
        *name_len = strlen(job->fields[2 * i]);
    if (value_len != NULL)
        *value_len = strlen(job->fields[2 * i + 1]);
    return job->fields[2 * i + 1];
}

static const char *
f_str(const struct drv_job_view *job)
{
    (void)job;
    return "x";
}

static uint64_t
f_attempt(const struct drv_job_view *job)
{
    (void)job;
    return 1;
}

static int
f_set_result(struct drv_job_view *job, const void *data, size_t len)
{
    assert_true(len < sizeof job->result);
    memcpy(job->result, data, len);
    job->result[len] = '\0';
    job->result_len = len;
    job->has_result = 1;
    return 0;
}

static int
f_set_error(struct drv_job_view *job, const char *msg)
{
    snprintf(job->error, sizeof job->error, "%s", msg);
    return 0;
}

static int
f_done(struct drv_job_view *job, int status)
{
    job->ndone++;
    job->done_status = status;
    job->timer_fn = NULL; /* the host clears timers of a finished job */
    return 0;
}

static int
f_cancelled(const struct drv_job_view *job)
{
    struct drv_job_view *v = (struct drv_job_view *)(uintptr_t)job;

    atomic_fetch_add(&v->polls, 1);
    return atomic_load(&v->cancelled);
}

static int
f_timer(struct drv_job_view *job, uint64_t ms, drv_handler_timer_fn *fn,
        void *arg)
{
    assert_null(job->timer_fn); /* the example arms one */
    job->timer_fn = fn;
    job->timer_arg = arg;
    job->timer_ms = ms;
    return 0;
}

static void
f_set_data(struct drv_job_view *job, void *data, drv_handler_free_fn *fn)
{
    job->data = data;
    job->data_free = fn;
}

static void *
f_data(const struct drv_job_view *job)
{
    return job->data;
}

static void
f_log(const struct drv_host *host, const struct drv_job_view *job, int level,
      const char *msg)
{
    (void)host;
    (void)job;
    (void)level;
    pthread_mutex_lock(&logs.mu);
    if (strstr(msg, "ready for job type") != NULL)
        logs.ready++;
    if (strstr(msg, " jobs") != NULL && strstr(msg, "done") != NULL)
        logs.shutdown++;
    if (strstr(msg, "stopped early") != NULL)
        logs.stopped++;
    if (strstr(msg, "cancelled while waiting") != NULL)
        logs.cancelled++;
    snprintf(logs.last, sizeof logs.last, "%s", msg);
    pthread_mutex_unlock(&logs.mu);
}

static int
f_progress(struct drv_job_view *job, int percent, const char *msg)
{
    (void)msg;
    atomic_store(&job->progress, percent);
    atomic_fetch_add(&job->nprogress, 1);
    return 0;
}

static const struct drv_host host = {
    .size = sizeof(struct drv_host),
    .abi_version = DRV_HANDLER_ABI_VERSION,
    .field = f_field,
    .nfields = f_nfields,
    .field_at = f_field_at,
    .id = f_str,
    .queue = f_str,
    .job_type = f_str,
    .entry_id = f_str,
    .attempt = f_attempt,
    .set_result = f_set_result,
    .set_error = f_set_error,
    .done = f_done,
    .cancelled = f_cancelled,
    .timer = f_timer,
    .set_data = f_set_data,
    .data = f_data,
    .log = f_log,
    .progress = f_progress,
};

static void
view_init(struct drv_job_view *v, const char *const *fields)
{
    memset(v, 0, sizeof *v);
    v->fields = fields;
    atomic_init(&v->cancelled, 0);
    atomic_init(&v->polls, 0);
    atomic_init(&v->progress, -1);
    atomic_init(&v->nprogress, 0);
}

/* The job is over: the host frees the plugin's per-job data. */
static void
view_fini(struct drv_job_view *v)
{
    if (v->data_free != NULL)
        v->data_free(v->data);
    v->data = NULL;
    v->data_free = NULL;
}

static void
logs_reset(void)
{
    pthread_mutex_lock(&logs.mu);
    logs.ready = logs.shutdown = logs.stopped = logs.cancelled = 0;
    logs.last[0] = '\0';
    pthread_mutex_unlock(&logs.mu);
}

static int
logs_get(const int *counter)
{
    int v;

    pthread_mutex_lock(&logs.mu);
    v = *counter;
    pthread_mutex_unlock(&logs.mu);
    return v;
}

/* ----------------------------------------------------------- fixtures */

struct pt {
    struct drv_plugin_set *set;    /* owned */
    char dir[4096];                /* $DROVER_PLUGIN_DIR, absolute (a
                                      relative library path would mean
                                      "relative to the config file") */
    char example[4200];            /* DIR/libexample.so */
    char badabi[4200];             /* DIR/libbadabi.so */
};

static int
setup(void **st)
{
    struct pt *t = calloc(1, sizeof *t);
    const char *dir = getenv("DROVER_PLUGIN_DIR");

    if (t == NULL)
        return -1;
    if (realpath(dir != NULL ? dir : "build/release/plugins", t->dir) ==
        NULL) {
        fprintf(stderr, "test_plugin: no plugin dir (DROVER_PLUGIN_DIR)\n");
        free(t);
        return -1;
    }
    snprintf(t->example, sizeof t->example, "%s/libexample.so", t->dir);
    snprintf(t->badabi, sizeof t->badabi, "%s/libbadabi.so", t->dir);
    t->set = drv_plugin_set_create();
    logs_reset();
    *st = t;
    return 0;
}

static int
teardown(void **st)
{
    struct pt *t = *st;

    drv_plugin_set_free(t->set);
    free(t);
    return 0;
}

/* Load library/symbol for job type "jt"; returns the code, err filled. */
static int
load(struct pt *t, const char *library, const char *symbol, int blocking,
     struct drv_plugin **out, struct drv_err *err)
{
    struct drv_plugin_opts o;
    struct drv_plugin *p = NULL;
    int rc;

    memset(&o, 0, sizeof o);
    o.library = library;
    o.symbol = symbol;
    o.job_type = "jt";
    o.blocking = blocking;
    o.host = &host;
    drv_err_clear(err);
    rc = drv_plugin_load(t->set, &o, &p, err);
    if (out != NULL)
        *out = p;
    return rc;
}

#define assert_msg_has(err, needle)                                       \
    do {                                                                  \
        if (strstr((err)->msg, (needle)) == NULL)                         \
            fail_msg("error \"%s\" lacks \"%s\"", (err)->msg, (needle));  \
    } while (0)

/* --------------------------------------------------------------- loader */

static void
test_plugin_loads_both_entry_points_once_each(void **st)
{
    struct pt *t = *st;
    struct drv_plugin *a = NULL, *b = NULL, *c = NULL;
    const struct drv_handler *h;
    struct drv_err err;

    assert_drv_ok(load(t, t->example, "example_async", 0, &a, &err), &err);
    assert_drv_ok(load(t, t->example, "example_blocking", 1, &b, &err),
                  &err);
    /* a second job type on the same table: one load, its own init */
    assert_drv_ok(load(t, t->example, "example_async", 0, &c, &err), &err);
    assert_int_equal(drv_plugin_set_nlibs(t->set), 2);
    assert_int_equal(logs_get(&logs.ready), 3);
    assert_true(a != c);
    assert_ptr_not_equal(drv_plugin_info(a)->state,
                         drv_plugin_info(c)->state);

    h = drv_plugin_info(a)->handler;
    assert_non_null(h->start);
    assert_non_null(h->cancel);
    assert_null(h->run);
    assert_int_equal(h->abi_version, DRV_HANDLER_ABI_VERSION);
    assert_string_equal(h->name, "example_async");
    h = drv_plugin_info(b)->handler;
    assert_non_null(h->run);
    assert_null(h->start);
    assert_string_equal(h->name, "example_blocking");
    assert_string_equal(drv_plugin_info(b)->path, t->example);

    /* shutdown once per init, at free */
    drv_plugin_set_free(t->set);
    t->set = NULL;
    assert_int_equal(logs_get(&logs.shutdown), 3);
}

static void
test_plugin_missing_file_is_a_clear_error(void **st)
{
    struct pt *t = *st;
    struct drv_err err;

    assert_int_equal(load(t, "/nonexistent/libnope.so", "crunch", 0, NULL,
                          &err), DRV_ECONFIG);
    assert_int_equal(err.code, DRV_ECONFIG);
    assert_msg_has(&err, "cannot load /nonexistent/libnope.so: ");
    assert_msg_has(&err, "No such file");
    assert_int_equal(drv_plugin_set_nlibs(t->set), 0);
}

static void
test_plugin_missing_symbol_is_a_clear_error(void **st)
{
    struct pt *t = *st;
    struct drv_err err;
    char want[4300];

    assert_int_equal(load(t, t->example, "crunch", 0, NULL, &err),
                     DRV_ECONFIG);
    snprintf(want, sizeof want, "symbol crunch not found in %s", t->example);
    assert_msg_has(&err, want);
    assert_int_equal(drv_plugin_set_nlibs(t->set), 0);
}

static void
test_plugin_bad_tables_are_refused(void **st)
{
    struct pt *t = *st;
    struct drv_err err;

    assert_int_equal(load(t, t->badabi, "bad_abi", 0, NULL, &err),
                     DRV_ECONFIG);
    assert_msg_has(&err, "bad_abi in ");
    assert_msg_has(&err, "libbadabi.so: handler ABI version 99, this "
                         "drover supports 1");
    assert_int_equal(load(t, t->badabi, "bad_size", 0, NULL, &err),
                     DRV_ECONFIG);
    assert_msg_has(&err, "handler table too small (8 bytes");
    assert_int_equal(load(t, t->badabi, "bad_null", 0, NULL, &err),
                     DRV_ECONFIG);
    assert_msg_has(&err, "bad_null in ");
    assert_msg_has(&err, "returned no handler table");
    assert_int_equal(load(t, t->badabi, "bad_init", 1, NULL, &err),
                     DRV_ECONFIG);
    assert_msg_has(&err, "bad_init in ");
    assert_msg_has(&err, "init failed: job type jt: BADINIT_HOME is not "
                         "set");
    /* only the valid table stays loaded (for reuse); no instance */
    assert_int_equal(drv_plugin_set_nlibs(t->set), 1);
}

static void
test_plugin_mode_needs_its_entry_point(void **st)
{
    struct pt *t = *st;
    struct drv_err err;
    struct drv_plugin *p = NULL;

    assert_int_equal(load(t, t->example, "example_async", 1, NULL, &err),
                     DRV_ECONFIG);
    assert_msg_has(&err, "example_async in ");
    assert_msg_has(&err, "blocking: true needs a run function");
    assert_int_equal(load(t, t->example, "example_blocking", 0, NULL, &err),
                     DRV_ECONFIG);
    assert_msg_has(&err, "example_blocking in ");
    assert_msg_has(&err, "no start function");
    assert_int_equal(logs_get(&logs.ready), 0); /* init never ran */
    /* the same tables in their own modes load */
    assert_drv_ok(load(t, t->example, "example_async", 0, &p, &err), &err);
    assert_drv_ok(load(t, t->example, "example_blocking", 1, &p, &err),
                  &err);
}

static void
test_plugin_relative_path_is_relative_to_config_dir(void **st)
{
    struct pt *t = *st;
    struct drv_plugin_opts o;
    struct drv_plugin *p = NULL;
    struct drv_err err;
    char out[256], cfg[4300];

    assert_int_equal(drv_plugin_resolve("p/x.so", "/etc/drover/d.yaml",
                                        out, sizeof out), 0);
    assert_string_equal(out, "/etc/drover/p/x.so");
    assert_int_equal(drv_plugin_resolve("./x.so", "conf/d.yaml", out,
                                        sizeof out), 0);
    assert_string_equal(out, "conf/./x.so");
    assert_int_equal(drv_plugin_resolve("p/x.so", "d.yaml", out,
                                        sizeof out), 0);
    assert_string_equal(out, "p/x.so"); /* config in the cwd */
    assert_int_equal(drv_plugin_resolve("/abs/x.so", "/etc/d.yaml", out,
                                        sizeof out), 0);
    assert_string_equal(out, "/abs/x.so");
    assert_int_equal(drv_plugin_resolve("libx.so", "/etc/d.yaml", out,
                                        sizeof out), 0);
    assert_string_equal(out, "libx.so"); /* the linker's search */
    assert_int_equal(drv_plugin_resolve("p/x.so", NULL, out, sizeof out), 0);
    assert_string_equal(out, "p/x.so");
    assert_int_equal(drv_plugin_resolve("p/x.so", "/etc/d.yaml", out, 8),
                     -ENAMETOOLONG);

    /* for real: "./libexample.so" next to a config in the plugin dir */
    snprintf(cfg, sizeof cfg, "%s/drover.yaml", t->dir);
    memset(&o, 0, sizeof o);
    o.library = "./libexample.so";
    o.symbol = "example_async";
    o.config_file = cfg;
    o.job_type = "rel";
    o.host = &host;
    drv_err_clear(&err);
    assert_drv_ok(drv_plugin_load(t->set, &o, &p, &err), &err);
    /* and the error names both spellings when it fails */
    o.library = "./libnope.so";
    assert_int_equal(drv_plugin_load(t->set, &o, &p, &err), DRV_ECONFIG);
    assert_msg_has(&err, "cannot load ./libnope.so (");
    assert_msg_has(&err, "/./libnope.so): ");
}

/* ---------------------------------------------- the example, blocking */

/* Run example_blocking's run() on fields; returns its status. */
static int
run_blocking(struct pt *t, const char *const *fields,
             struct drv_job_view *v)
{
    struct drv_plugin *p = NULL;
    struct drv_err err;
    int rc;

    assert_drv_ok(load(t, t->example, "example_blocking", 1, &p, &err),
                  &err);
    view_init(v, fields);
    rc = drv_plugin_info(p)->handler->run(drv_plugin_info(p)->state, v);
    view_fini(v);
    return rc;
}

static void
test_plugin_example_blocking_outcomes(void **st)
{
    struct pt *t = *st;
    struct drv_job_view v;
    const char *ok[] = {"job", "b", "data", "hello", NULL};
    const char *steps[] = {"ms", "25", NULL};
    const char *last[] = {"data", "x", "data", "hello", NULL};
    const char *fail[] = {"fail", "boom", NULL};
    const char *perm[] = {"fail", "boom", "permanent", "1", NULL};
    const char *bad[] = {"ms", "12x", NULL};

    assert_int_equal(run_blocking(t, ok, &v), DRV_HANDLER_OK);
    assert_string_equal(v.result, "fnv1a64=a430d84680aabd0b");
    assert_int_equal(run_blocking(t, last, &v), DRV_HANDLER_OK);
    assert_string_equal(v.result, "fnv1a64=a430d84680aabd0b");
    assert_int_equal(run_blocking(t, fail, &v), DRV_HANDLER_RETRY);
    assert_string_equal(v.error, "boom");
    assert_false(v.has_result);
    assert_int_equal(run_blocking(t, perm, &v), DRV_HANDLER_PERMANENT);
    assert_string_equal(v.error, "boom");
    assert_int_equal(run_blocking(t, bad, &v), DRV_HANDLER_PERMANENT);
    assert_non_null(strstr(v.error, "field ms: \"12x\""));
    assert_int_equal(v.ndone, 0); /* blocking jobs never call done */
    /* 25 ms of work in 10 ms steps: progress after each, 100 at the end */
    assert_int_equal(run_blocking(t, steps, &v), DRV_HANDLER_OK);
    assert_int_equal(atomic_load(&v.nprogress), 3);
    assert_int_equal(atomic_load(&v.progress), 100);
}

struct runner {
    const struct drv_handler *h;   /* borrowed */
    void *state;                   /* borrowed */
    struct drv_job_view *v;        /* borrowed */
    int status;                    /* run()'s return */
};

static void *
runner_main(void *arg)
{
    struct runner *r = arg;

    r->status = r->h->run(r->state, r->v);
    return NULL;
}

static void
test_plugin_example_blocking_stops_when_cancelled(void **st)
{
    struct pt *t = *st;
    struct drv_plugin *p = NULL;
    struct drv_err err;
    struct drv_job_view v;
    struct runner r;
    pthread_t th;
    const char *fields[] = {"ms", "600000", "data", "hello", NULL};

    assert_drv_ok(load(t, t->example, "example_blocking", 1, &p, &err),
                  &err);
    view_init(&v, fields);
    r.h = drv_plugin_info(p)->handler;
    r.state = drv_plugin_info(p)->state;
    r.v = &v;
    r.status = 0;
    /* a run() that never stops aborts the test */
    drv_test_watchdog_start(DRV_TEST_WATCHDOG_S);
    assert_int_equal(pthread_create(&th, NULL, runner_main, &r), 0);
    /* run() is working: it has asked whether it is cancelled */
    wait_until_num(atomic_load(&v.polls), >=, 1, "host->cancelled calls");
    atomic_store(&v.cancelled, 1); /* the timeout, from another thread */
    assert_int_equal(pthread_join(th, NULL), 0);
    drv_test_watchdog_stop();
    assert_int_equal(r.status, DRV_HANDLER_RETRY);
    assert_string_equal(v.error, "cancelled");
    assert_false(v.has_result);
    assert_int_equal(logs_get(&logs.stopped), 1);
    view_fini(&v);
}

/* ------------------------------------------------- the example, async */

static void
test_plugin_example_async_timer_and_cancel(void **st)
{
    struct pt *t = *st;
    struct drv_plugin *p = NULL;
    const struct drv_handler *h;
    struct drv_err err;
    struct drv_job_view v;
    const char *echo[] = {"ms", "20", "echo", "hi there", NULL};
    const char *plain[] = {"ms", "7", NULL};
    const char *fail[] = {"fail", "nope", NULL};
    const char *slow[] = {"ms", "60000", NULL};
    const char *bad[] = {"ms", "", NULL};
    void *state;

    assert_drv_ok(load(t, t->example, "example_async", 0, &p, &err), &err);
    h = drv_plugin_info(p)->handler;
    state = drv_plugin_info(p)->state;

    /* start arms a timer and returns; the timer finishes the job */
    view_init(&v, echo);
    assert_int_equal(h->start(state, &v), DRV_HANDLER_OK);
    assert_int_equal(v.ndone, 0);
    assert_non_null(v.timer_fn);
    assert_int_equal(v.timer_ms, 20);
    v.timer_fn(&v, v.timer_arg);
    assert_int_equal(v.ndone, 1);
    assert_int_equal(v.done_status, DRV_HANDLER_OK);
    assert_string_equal(v.result, "hi there");
    view_fini(&v);

    view_init(&v, plain);
    assert_int_equal(h->start(state, &v), DRV_HANDLER_OK);
    v.timer_fn(&v, v.timer_arg);
    assert_string_equal(v.result, "waited 7 ms");
    view_fini(&v);

    /* a requested failure: retried, with its text */
    view_init(&v, fail);
    assert_int_equal(h->start(state, &v), DRV_HANDLER_OK);
    assert_int_equal(v.timer_ms, 0);
    v.timer_fn(&v, v.timer_arg);
    assert_int_equal(v.done_status, DRV_HANDLER_RETRY);
    assert_string_equal(v.error, "nope");
    view_fini(&v);

    /* cancel: the host cleared the timer; the plugin calls done at once */
    view_init(&v, slow);
    assert_int_equal(h->start(state, &v), DRV_HANDLER_OK);
    v.timer_fn = NULL;
    h->cancel(state, &v);
    assert_int_equal(v.ndone, 1);
    assert_string_equal(v.error, "cancelled");
    assert_int_equal(logs_get(&logs.cancelled), 1);
    view_fini(&v);

    /* a bad field: start refuses (permanent) and never calls done */
    view_init(&v, bad);
    assert_int_equal(h->start(state, &v), DRV_HANDLER_PERMANENT);
    assert_int_equal(v.ndone, 0);
    assert_null(v.timer_fn);
    assert_non_null(strstr(v.error, "field ms"));
    view_fini(&v);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_plugin_loads_both_entry_points_once_each),
        T(test_plugin_missing_file_is_a_clear_error),
        T(test_plugin_missing_symbol_is_a_clear_error),
        T(test_plugin_bad_tables_are_refused),
        T(test_plugin_mode_needs_its_entry_point),
        T(test_plugin_relative_path_is_relative_to_config_dir),
        T(test_plugin_example_blocking_outcomes),
        T(test_plugin_example_blocking_stops_when_cancelled),
        T(test_plugin_example_async_timer_and_cancel),
    };
#undef T

    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, NULL, NULL);
}
