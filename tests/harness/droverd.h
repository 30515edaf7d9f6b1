/*
 * droverd.h -- a droverd fixture for integration tests.
 *
 * One per test (per-test setup/teardown): a private temp dir, a blocking
 * client on the harness's redis-server (flushed first), a config written
 * for that server, droverd processes started on it (each with a log file
 * in the temp dir) and stopped with SIGTERM, and helpers on the queue keys
 * PREFIX:{Q}:jobs, :stats, :dead and :result:ID. Everything runs on the
 * test's thread. Waits poll Redis (wait_until) with a generous deadline
 * (DRV_TEST_WAIT_MS): a guard against hangs, never a speed check. While a
 * fixture lives, the watchdog is armed and a wait that times out shows the
 * tail of the logs of the droverd processes still running, then fails the
 * test. Each droverd traces the jobs it starts (DROVER_TRACE_START) into
 * dir/started.trace: drv_test_started counts them.
 */
#ifndef DROVER_TEST_DROVERD_H
#define DROVER_TEST_DROVERD_H

#include "harness.h"

#define DRV_TEST_NPROCS 3      /* droverd processes one fixture can hold */

struct drv_test_droverd;

/* What differs between the test files; copied by drv_test_droverd_new. */
struct drv_test_droverd_opts {
    const char *tmpdir;          /* temp dir name prefix ("drover-wt") */
    const char *prefix;          /* redis.prefix of the config ("t") */
    const char *log_level;       /* droverd --log-level ("debug") */
    const char *worker_defaults; /* worker: lines ("  key: value\n"), each
                                  * left out when worker_extra names key */
    const char *body_head;       /* text before every config body, or
                                  * NULL ("queues: [default]\n") */
    int tail_lines;              /* log lines drv_test_dump_log shows */
    void (*setup)(struct drv_test_droverd *t); /* the file's own part of
                                  * drv_test_droverd_setup, run last; or
                                  * NULL */
};

struct drv_test_droverd {
    struct drv_test_droverd_opts o;   /* the test file's options */
    const struct drv_test_redis *srv; /* borrowed: the group's server */
    char dir[256];                    /* temp dir: config, logs, files */
    char cfg[400];                    /* config path (dir/drover.yaml) */
    char log[400];                    /* log of the droverd started last */
    redisContext *c;                  /* blocking client on srv */
    struct drv_test_proc w[DRV_TEST_NPROCS]; /* droverd processes */
    int nstarted;                     /* starts so far: numbers the logs */
    char trace[400];                  /* DROVER_TRACE_START file: a line
                                       * per job a droverd started */
};

/* drv_test_droverd_new -- FLUSHALL on srv (drv_test_srv: restarted first
 * when a test left it stopped), make the temp dir, connect, arm the
 * watchdog; asserts each step. srv is borrowed and must outlive the
 * fixture (it may be restarted meanwhile: the port stays). Free with
 * drv_test_droverd_free. */
struct drv_test_droverd *
drv_test_droverd_new(const struct drv_test_redis *srv,
                     const struct drv_test_droverd_opts *o);

/* drv_test_droverd_free -- SIGKILL any droverd still running (showing its
 * log first), close the client, remove the temp dir unless
 * DROVER_TEST_KEEP=1, stop the watchdog, free t. NULL is a no-op. */
void drv_test_droverd_free(struct drv_test_droverd *t);

/*
 * The per-test fixture of a file whose tests each take a fresh fixture
 * on drv_test_srv with the same options: point drv_test_droverd_fixture
 * at them once (before cmocka_run_group_tests, with
 * drv_test_redis_group_setup as the group setup), then pass
 * drv_test_droverd_setup / drv_test_droverd_teardown to cmocka, or call
 * them from a file's own setup/teardown that does more. A file whose
 * tests each need more (a config, keys) says so in the options' setup.
 * TD(name) is an entry of a CMUnitTest table with this fixture.
 */
extern const struct drv_test_droverd_opts *drv_test_droverd_fixture;
int drv_test_droverd_setup(void **st);
int drv_test_droverd_teardown(void **st);
#define TD(name)                                                          \
    cmocka_unit_test_setup_teardown(name, drv_test_droverd_setup,        \
                                    drv_test_droverd_teardown)

/* drv_test_droverd_config -- write t->cfg: redis (srv's URL, the prefix),
 * then "worker:" with the defaults that worker_extra (NULL: none) does not
 * name, then worker_extra (lines of two spaces), then body_head and body
 * (queues, jobs, pipelines). Asserts the write. */
void drv_test_droverd_config(struct drv_test_droverd *t,
                             const char *worker_extra, const char *body);

/* drv_test_droverd_config_redis -- the same with url instead of srv's
 * and redis_extra (a cluster's nodes, sentinels: lines indented by two
 * spaces, or "") after the prefix instead of srv's TLS lines. */
void drv_test_droverd_config_redis(struct drv_test_droverd *t,
                                   const char *url, const char *redis_extra,
                                   const char *worker_extra,
                                   const char *body);

/* drv_test_droverd_start -- spawn droverd -c CFG --log-level LEVEL as
 * process i, logging to dir/droverdN.log (N counts this fixture's starts;
 * the path is also in t->log). drv_test_droverd_start_args: with args
 * (NULL-terminated, at most 8; may be NULL) after those;
 * drv_test_droverd_start_env: also with env_extra (NAME=VALUE,
 * NULL-terminated, at most 6; may be NULL) set in its environment. */
void drv_test_droverd_start(struct drv_test_droverd *t, int i);
void drv_test_droverd_start_args(struct drv_test_droverd *t, int i,
                                 const char *const *args);
void drv_test_droverd_start_env(struct drv_test_droverd *t, int i,
                                const char *const *args,
                                const char *const *env_extra);

/* drv_test_droverd_stop -- SIGTERM process i and wait for it: fails the
 * test (showing the log) unless it exits with want_exit in time. */
void drv_test_droverd_stop(struct drv_test_droverd *t, int i, int want_exit);

/* drv_test_web_start -- `drover -c CFG web --listen 127.0.0.1:0` as p,
 * logging to dir/web.log (path into log, size logn); waits for its URL
 * line and returns its port (asserts each step). */
int drv_test_web_start(struct drv_test_droverd *t, struct drv_test_proc *p,
                       char *log, size_t logn);
/* drv_test_web_start_args -- drv_test_web_start with args
 * (NULL-terminated, at most 8) after its own. */
int drv_test_web_start_args(struct drv_test_droverd *t,
                            struct drv_test_proc *p, char *log, size_t logn,
                            const char *const *args);

/* drv_test_dump_log -- the last lines of log on stderr (diagnostics). */
void drv_test_dump_log(const struct drv_test_droverd *t, const char *log);

/* drv_test_xadd -- XADD to queue q's stream the NULL-terminated field,
 * value list; the entry id into id (size idn; id may be NULL). Fails the
 * test unless Redis returns an id. */
void drv_test_xadd(struct drv_test_droverd *t, const char *q, char *id,
                   size_t idn, ...);

/* drv_test_num -- run a command and read its reply as a number: an
 * integer, a numeric string, the count of an XPENDING summary; 0 for
 * anything else (nil). Asserts a reply. */
long long drv_test_num(struct drv_test_droverd *t, const char *fmt, ...);

/* drv_test_num_on -- drv_test_num on another server's client c (a
 * replica, a new primary). */
long long drv_test_num_on(redisContext *c, const char *fmt, ...);

/* drv_test_numsub -- how many clients subscribe to channel (PUBSUB
 * NUMSUB); -1 for a reply of another shape. */
long long drv_test_numsub(struct drv_test_droverd *t, const char *channel);

/* drv_test_stat -- field name of PREFIX:{q}:stats (0 when unset). */
long long drv_test_stat(struct drv_test_droverd *t, const char *q,
                        const char *name);

/* drv_test_wait_stat -- poll stat name of q until it reaches want; fails
 * the test unless it is then exactly want (and still is on a second read)
 * within DRV_TEST_WAIT_MS, showing the logs of the droverd still running. */
void drv_test_wait_stat(struct drv_test_droverd *t, const char *q,
                        const char *name, long long want);

/* drv_test_wait_pending -- poll the pending count of q's group "drover"
 * until it is at least want; fails the test after DRV_TEST_WAIT_MS,
 * showing the logs of the droverd still running. */
void drv_test_wait_pending(struct drv_test_droverd *t, const char *q,
                           long long want);

/*
 * drv_test_given_back -- after a graceful stop that gave every unfinished
 * job of q back: its stream holds n entries, none pending, and no
 * attempt was counted (processed and failed are 0, no entry has an
 * attempt field). Returns how many entries carry an id field (a job that
 * ran is re-created with its id).
 */
int drv_test_given_back(struct drv_test_droverd *t, const char *q,
                        long long n);

/* drv_test_wait_log -- wait until t->log (the droverd started last)
 * contains needle at least n times. */
void drv_test_wait_log(struct drv_test_droverd *t, const char *needle,
                       int n);

/* drv_test_started -- jobs the fixture's droverd processes have started
 * so far (lines of t->trace; droverd writes them every tick, 100 ms). */
int drv_test_started(const struct drv_test_droverd *t);

/* drv_test_wait_started -- wait until drv_test_started reaches n. */
void drv_test_wait_started(struct drv_test_droverd *t, int n);

/* drv_test_dead_fields -- field name of every entry of q's dead stream,
 * each followed by '|', into out (size n; "" when none). */
void drv_test_dead_fields(struct drv_test_droverd *t, const char *q,
                          const char *name, char *out, size_t n);

/* drv_test_deliver_twice -- entry eid of queue q delivered twice to
 * consumers that died, as a job that crashes its worker leaves it: read
 * by ghost1 (eid must be the first entry of q not yet delivered; the
 * group "drover" must exist), then claimed by ghost2. Asserts each step. */
void drv_test_deliver_twice(struct drv_test_droverd *t, const char *q,
                            const char *eid);

/* drv_test_dead_field -- field name of the dead entry of q whose field key
 * is val (key NULL: any entry; the last match wins), into out (size n; ""
 * when there is none). */
void drv_test_dead_field(struct drv_test_droverd *t, const char *q,
                         const char *key, const char *val, const char *name,
                         char *out, size_t n);

/* drv_test_hget -- HGET key field: a copy the caller frees, or NULL
 * (drv_test_hget_on with t->c, as are the two below). */
char *drv_test_hget(struct drv_test_droverd *t, const char *key,
                    const char *field);

/* drv_test_result -- field of job id's result hash PREFIX:{q}:result:ID:
 * a copy the caller frees, or NULL. */
char *drv_test_result(struct drv_test_droverd *t, const char *q,
                      const char *id, const char *field);

/* drv_test_hget_is -- 1 when HGET key field equals want (a wait's
 * condition). */
int drv_test_hget_is(struct drv_test_droverd *t, const char *key,
                     const char *field, const char *want);

/* drv_test_expect_hget -- fail the test, naming key and field, the value
 * found ("(none)" when there is none) and want, unless HGET key field
 * equals want. */
void drv_test_expect_hget(struct drv_test_droverd *t, const char *key,
                          const char *field, const char *want);

/* drv_test_expect_result -- drv_test_expect_hget on field of job id's
 * result hash PREFIX:{q}:result:ID. */
void drv_test_expect_result(struct drv_test_droverd *t, const char *q,
                            const char *id, const char *field,
                            const char *want);

#endif
