/*
 * test_proc.c -- child processes on the real loop: exit and signal
 * status, stdin/stdout/stderr, environment, cwd, spawn errors, kill with
 * grace, process-group cleanup, drain of stray pipe holders, scale and fd
 * leaks, teardown. Children are tests/progs/proc_helper (see its modes).
 *
 * Timing: hang guards (generous, never speed checks) bound every wait;
 * the only time assertions are lower bounds (a grace or a sleep that must
 * have passed).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "harness.h"
#include "drover/clock.h"
#include "drover/common.h"
#include "drover/loop.h"
#include "drover/proc.h"
#include "../../pkg/proc/proc_int.h"

extern char **environ;


struct state {
    struct drv_loop *loop;
    struct drv_proc_mgr *mgr;   /* NULL once a test freed it */
    int checkpoint;             /* completions seen */
    int want;                   /* completions that end the run */
    char prog[4096];            /* proc_helper, absolute path */
    char dir[256];              /* private temp dir */
};

/* One child's outcome, copied out of the callback. */
struct rec {
    struct state *s;
    struct drv_proc *p;         /* handle until the callback frees it */
    int done;                   /* callbacks run for it */
    int code;                   /* callback code */
    struct drv_proc_result res; /* copy; out/err below are ours */
    char *out;                  /* owned copy of res.out */
    char *err;                  /* owned copy of res.err */
    char desc[160];             /* drv_proc_describe */
};

static int
setup(void **st)
{
    struct state *s = calloc(1, sizeof *s);
    char rel[512];

    assert_non_null(s);
    s->loop = drv_loop_create(NULL);
    assert_non_null(s->loop);
    s->mgr = drv_proc_mgr_create(s->loop);
    /* absolute: a relative argv[0] is resolved in the child's cwd */
    drv_test_prog("proc_helper", rel, sizeof rel);
    assert_non_null(realpath(rel, s->prog));
    assert_int_equal(access(s->prog, X_OK), 0);
    assert_int_equal(drv_test_tmpdir("drv-proc", s->dir, sizeof s->dir), 0);
    *st = s;
    return 0;
}

static int
teardown(void **st)
{
    struct state *s = *st;

    drv_proc_mgr_free(s->mgr);
    drv_loop_free(s->loop);
    drv_test_rm_rf(s->dir);
    free(s);
    return 0;
}

static void
on_done(struct drv_proc *p, int code, const struct drv_proc_result *res,
        void *ctx)
{
    struct rec *r = ctx;

    assert_ptr_equal(p, r->p);
    assert_int_equal(r->done, 0);
    r->done++;
    r->code = code;
    r->res = *res;
    r->out = malloc(res->out_len + 1);
    memcpy(r->out, res->out, res->out_len + 1);
    r->err = malloc(res->err_len + 1);
    memcpy(r->err, res->err, res->err_len + 1);
    r->res.out = r->out;
    r->res.err = r->err;
    drv_proc_describe(res, r->desc, sizeof r->desc);
    /* nothing left to kill once completed */
    assert_int_equal(drv_proc_kill(p), -ESRCH);
    /* freeing from inside one's own callback is allowed */
    drv_proc_free(p);
    r->p = NULL;
    if (++r->s->checkpoint == r->s->want)
        drv_loop_stop(r->s->loop);
}

static void
rec_fini(struct rec *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* Run until `want` completions in all (the hang guard of
 * drv_test_loop_run bounds it); then nothing may be left on the loop, and
 * no child in the manager. */
static void
run_until(struct state *s, int want)
{
    struct event_base *base = drv_loop_base(s->loop);

    s->want = want;
    if (s->checkpoint < want &&
        drv_test_loop_run(s->loop, DRV_TEST_WAIT_MS) != 0)
        fail_msg("loop hung: %d of %d completions", s->checkpoint, want);
    assert_int_equal(s->checkpoint, want);
    assert_int_equal(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED),
                     0);
    assert_int_equal(drv_proc_mgr_live(s->mgr), 0);
}

static void
spawn_ok(struct state *s, struct rec *r, const struct drv_proc_opts *o)
{
    struct drv_err err;

    memset(r, 0, sizeof *r);
    r->s = s;
    assert_drv_ok(drv_proc_spawn(s->mgr, o, on_done, r, &r->p, &err), &err);
    assert_non_null(r->p);
    assert_true(drv_proc_pid(r->p) > 0);
}

/* Spawn the helper with args (NULL-terminated), the test's environment. */
static void
spawn_helper(struct state *s, struct rec *r, struct drv_proc_opts *o,
             const char *mode, const char *arg)
{
    const char *argv[] = {s->prog, mode, arg, NULL};

    o->argv = argv;
    if (o->envp == NULL)
        o->envp = (const char *const *)environ;
    spawn_ok(s, r, o);
    o->argv = NULL;
}

/* Wait until pid is dead; SIGKILL is asynchronous. */
static void
assert_pid_dies(pid_t pid)
{
    wait_until(!drv_test_pid_alive(pid), "pid %ld to die", (long)pid);
}

/* ------------------------------------------------------- kill on ready */

/* Polls for a file the child creates when ready, then kills the child. */
struct kicker {
    struct event *ev;           /* poll timer */
    const char *path;           /* ready file */
    struct rec *r;              /* whose child to kill */
};

static void
on_kick_poll(evutil_socket_t fd, short what, void *arg)
{
    struct kicker *k = arg;
    struct timeval tv = {0, 10 * 1000};
    struct stat st;

    (void)fd;
    (void)what;
    if (stat(k->path, &st) < 0) {
        assert_int_equal(event_add(k->ev, &tv), 0);
        return;
    }
    assert_non_null(k->r->p);
    assert_int_equal(drv_proc_kill(k->r->p), 0);
    /* a second kill is harmless */
    assert_int_equal(drv_proc_kill(k->r->p), 0);
}

static void
kicker_start(struct state *s, struct kicker *k, struct rec *r,
             const char *path)
{
    struct timeval tv = {0, 10 * 1000};

    k->ev = evtimer_new(drv_loop_base(s->loop), on_kick_poll, k);
    k->path = path;
    k->r = r;
    assert_int_equal(event_add(k->ev, &tv), 0);
}

/* ------------------------------------------------------------------ tests */

static void
test_proc_exit_codes(void **st)
{
    struct state *s = *st;
    static const char *codes[] = {"0", "75", "65", "3", "255"};
    struct rec r[5];
    struct drv_proc_opts o;
    size_t i;

    for (i = 0; i < DRV_ARRAY_LEN(codes); i++) {
        memset(&o, 0, sizeof o);
        spawn_helper(s, &r[i], &o, "exit", codes[i]);
    }
    /* spawn never completes from inside the call */
    assert_int_equal(s->checkpoint, 0);
    assert_int_equal(drv_proc_mgr_live(s->mgr), 5);
    run_until(s, 5);
    for (i = 0; i < DRV_ARRAY_LEN(codes); i++) {
        assert_int_equal(r[i].done, 1);
        assert_int_equal(r[i].code, 0);
        assert_int_equal(r[i].res.exit_code, atoi(codes[i]));
        assert_int_equal(r[i].res.term_signal, 0);
        assert_int_equal(r[i].res.killed, 0);
        assert_int_equal(r[i].res.timed_out, 0);
        assert_int_equal(r[i].res.out_len, 0);
        assert_true(r[i].res.wall_ns >= 0);
        assert_true(r[i].res.max_rss_kb > 0);
        rec_fini(&r[i]);
    }
    assert_string_equal(r[2].desc, "exit status 65");
}

static void
test_proc_killed_by_signal(void **st)
{
    struct state *s = *st;
    struct rec r[2];
    struct drv_proc_opts o;

    memset(&o, 0, sizeof o);
    spawn_helper(s, &r[0], &o, "signal", "9");
    memset(&o, 0, sizeof o);
    spawn_helper(s, &r[1], &o, "signal", "15");
    run_until(s, 2);
    assert_int_equal(r[0].res.exit_code, -1);
    assert_int_equal(r[0].res.term_signal, SIGKILL);
    assert_int_equal(r[0].res.killed, 0); /* not by us */
    assert_string_equal(r[0].desc, "killed by signal SIGKILL");
    assert_int_equal(r[1].res.term_signal, SIGTERM);
    rec_fini(&r[0]);
    rec_fini(&r[1]);
}

static int
dir_entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void
test_proc_stdin_and_argv_literal(void **st)
{
    struct state *s = *st;
    static const char in[] = "a\0b $(touch x) `touch y`; touch z\n\"'\\";
    const char *argv[] = {s->prog, "argv", "$(touch x)", "a b", "*", "",
                          "; touch y", NULL};
    static const char want_argv[] = "$(touch x)\0a b\0*\0\0; touch y";
    struct rec r[3];
    struct drv_proc_opts o;
    char *big;
    size_t big_len = 3 * 1024 * 1024 + 7, i;

    /* stdin bytes arrive verbatim, NUL and shell syntax included */
    memset(&o, 0, sizeof o);
    o.cwd = s->dir;
    o.in = in;
    o.in_len = sizeof in - 1;
    spawn_helper(s, &r[0], &o, "cat", NULL);
    /* argv too: no shell ever parses it */
    memset(&o, 0, sizeof o);
    o.argv = argv;
    o.envp = (const char *const *)environ;
    o.cwd = s->dir;
    spawn_ok(s, &r[1], &o);
    /* a stdin bigger than any pipe: written in pieces on the loop */
    big = malloc(big_len);
    for (i = 0; i < big_len; i++)
        big[i] = (char)(i * 7 + i / 4096);
    memset(&o, 0, sizeof o);
    o.in = big;
    o.in_len = big_len;
    o.output_max = 4 * 1024 * 1024;
    spawn_helper(s, &r[2], &o, "cat", NULL);
    memset(big + 1000, 0, 10); /* spawn copied it: later edits are ours */
    run_until(s, 3);

    assert_int_equal(r[0].res.exit_code, 0);
    assert_int_equal(r[0].res.out_len, sizeof in - 1);
    assert_memory_equal(r[0].out, in, sizeof in - 1);
    assert_int_equal(r[0].res.in_written, sizeof in - 1);
    assert_int_equal(r[0].res.in_code, 0);
    assert_int_equal(r[1].res.out_len, sizeof want_argv);
    assert_memory_equal(r[1].out, want_argv, sizeof want_argv);
    assert_int_equal(dir_entries(s->dir), 0); /* nothing was touched */
    assert_int_equal(r[2].res.exit_code, 0);
    assert_int_equal(r[2].res.out_len, big_len);
    assert_int_equal(r[2].res.out_truncated, 0);
    for (i = 1000; i < 1010; i++)
        big[i] = (char)(i * 7 + i / 4096);
    assert_memory_equal(r[2].out, big, big_len);
    free(big);
    for (i = 0; i < 3; i++)
        rec_fini(&r[i]);
}

/* A stdin that fits the pipe is there before the child starts, and its
 * EOF too: the child reads both while the loop does not run. */
static void
test_proc_stdin_waits_in_pipe(void **st)
{
    struct state *s = *st;
    static const char in[] = "{\"id\":\"1-0\",\"attempt\":\"1\"}";
    struct drv_proc_opts o;
    struct rec r;
    siginfo_t si;
    pid_t pid;

    memset(&o, 0, sizeof o);
    o.in = in;
    o.in_len = sizeof in - 1;
    spawn_helper(s, &r, &o, "cat", NULL);
    pid = drv_proc_pid(r.p);
    /* not reaped here (WNOWAIT): the manager still owns the child */
    memset(&si, 0, sizeof si);
    wait_until(waitid(P_PID, (id_t)pid, &si,
                      WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid,
               "cat of its stdin to exit before the loop runs");
    run_until(s, 1);
    assert_int_equal(r.res.exit_code, 0);
    assert_int_equal(r.res.out_len, sizeof in - 1);
    assert_memory_equal(r.out, in, sizeof in - 1);
    assert_int_equal(r.res.in_written, sizeof in - 1);
    assert_int_equal(r.res.in_code, 0);
    rec_fini(&r);
}

static void
test_proc_stdin_epipe_tolerated(void **st)
{
    struct state *s = *st;
    struct rec r;
    struct drv_proc_opts o;
    size_t len = 8 * 1024 * 1024;
    char *big = calloc(1, len);

    /* SIGPIPE at its default: a raised one would kill this test */
    signal(SIGPIPE, SIG_DFL);
    memset(&o, 0, sizeof o);
    o.in = big;
    o.in_len = len;
    spawn_helper(s, &r, &o, "exit", "0");
    free(big);
    run_until(s, 1);
    assert_int_equal(r.res.exit_code, 0);
    assert_true(r.res.in_written < len);
    assert_int_equal(r.res.in_code, -EPIPE);
    rec_fini(&r);
}

static void
check_pattern(const char *b, size_t n, uint64_t from, char base, int mod)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (b[i] != (char)(base + (int)((from + i) % (uint64_t)mod)))
            fail_msg("byte %zu is %d", i, b[i]);
}

static void
test_proc_stdout_cap(void **st)
{
    struct state *s = *st;
    struct rec r[4];
    struct drv_proc_opts o;
    int i;

    memset(&o, 0, sizeof o);
    o.output_max = 1000;
    spawn_helper(s, &r[0], &o, "write", "100000");
    memset(&o, 0, sizeof o);
    o.output_max = 1000;
    spawn_helper(s, &r[1], &o, "write", "1000");
    memset(&o, 0, sizeof o);
    spawn_helper(s, &r[2], &o, "write", "5000000"); /* default 1 MiB */
    memset(&o, 0, sizeof o);
    spawn_helper(s, &r[3], &o, "write", "0");
    run_until(s, 4);

    assert_int_equal(r[0].res.out_len, 1000);
    assert_int_equal(r[0].res.out_truncated, 1);
    check_pattern(r[0].out, 1000, 0, 'a', 26);
    assert_int_equal(r[0].res.exit_code, 0); /* it never blocked on us */
    assert_int_equal(r[1].res.out_len, 1000);
    assert_int_equal(r[1].res.out_truncated, 0);
    assert_int_equal(r[2].res.out_len, DRV_PROC_OUTPUT_MAX_DEFAULT);
    assert_int_equal(r[2].res.out_truncated, 1);
    check_pattern(r[2].out, DRV_PROC_OUTPUT_MAX_DEFAULT, 0, 'a', 26);
    assert_int_equal(r[3].res.out_len, 0);
    assert_string_equal(r[3].out, "");
    for (i = 0; i < 4; i++)
        rec_fini(&r[i]);
}

static void
test_proc_stderr_tail(void **st)
{
    struct state *s = *st;
    struct rec r[3];
    struct drv_proc_opts o;
    int i;

    memset(&o, 0, sizeof o);
    spawn_helper(s, &r[0], &o, "stderr", "100000");
    memset(&o, 0, sizeof o);
    spawn_helper(s, &r[1], &o, "stderr", "10");
    memset(&o, 0, sizeof o);
    spawn_helper(s, &r[2], &o, "stderr", "4097");
    run_until(s, 3);

    assert_int_equal(r[0].res.err_total, 100000);
    assert_int_equal(r[0].res.err_len, DRV_PROC_ERR_TAIL);
    check_pattern(r[0].err, DRV_PROC_ERR_TAIL, 100000 - DRV_PROC_ERR_TAIL,
                  'A', 23);
    assert_int_equal(r[0].res.out_len, 0);
    assert_int_equal(r[1].res.err_len, 10);
    assert_string_equal(r[1].err, "ABCDEFGHIJ");
    assert_int_equal(r[2].res.err_len, DRV_PROC_ERR_TAIL);
    check_pattern(r[2].err, DRV_PROC_ERR_TAIL, 1, 'A', 23);
    for (i = 0; i < 3; i++)
        rec_fini(&r[i]);
}

static void
test_proc_env_exact(void **st)
{
    struct state *s = *st;
    const char *envp[] = {"FOO=bar", "EMPTY=", "WITH SPACE=x y=z", NULL};
    const char *argv[] = {s->prog, "env", NULL};
    struct rec r[2];
    struct drv_proc_opts o;
    struct drv_err err;

    setenv("DROVER_TEST_NOT_PASSED", "secret", 1);
    memset(&o, 0, sizeof o);
    o.envp = envp;
    spawn_helper(s, &r[0], &o, "env", NULL);
    /* NULL envp: an empty environment */
    memset(&r[1], 0, sizeof r[1]);
    r[1].s = s;
    memset(&o, 0, sizeof o);
    o.argv = argv;
    assert_drv_ok(drv_proc_spawn(s->mgr, &o, on_done, &r[1], &r[1].p, &err),
                  &err);
    run_until(s, 2);
    unsetenv("DROVER_TEST_NOT_PASSED");
    assert_int_equal(r[0].res.exit_code, 0);
    assert_string_equal(r[0].out, "FOO=bar\nEMPTY=\nWITH SPACE=x y=z\n");
    assert_int_equal(r[1].res.exit_code, 0);
    assert_string_equal(r[1].out, "");
    rec_fini(&r[0]);
    rec_fini(&r[1]);
}

static void
test_proc_cwd(void **st)
{
    struct state *s = *st;
    struct rec r[2];
    struct drv_proc_opts o;
    char real[4096], here[4096];

    assert_non_null(realpath(s->dir, real));
    assert_non_null(getcwd(here, sizeof here));
    memset(&o, 0, sizeof o);
    o.cwd = s->dir;
    spawn_helper(s, &r[0], &o, "cwd", NULL);
    memset(&o, 0, sizeof o);
    spawn_helper(s, &r[1], &o, "cwd", NULL);
    run_until(s, 2);
    assert_string_equal(r[0].out, real);
    assert_string_equal(r[1].out, here); /* default: the worker's */
    rec_fini(&r[0]);
    rec_fini(&r[1]);
}

static void
test_proc_spawn_errors(void **st)
{
    struct state *s = *st;
    const char *missing[] = {"drover-no-such-command-4711", "x", NULL};
    const char *abs_missing[] = {"/nonexistent/drover-nope", NULL};
    const char *argv[] = {s->prog, "exit", "0", NULL};
    const char *noexec[] = {NULL, NULL};
    char path[512], gone[512];
    struct drv_proc_opts o;
    struct drv_err err;
    struct drv_proc *p = NULL;
    struct rec r;
    const char *preload = getenv("LD_PRELOAD");
    int fds_before = drv_test_fd_count((long)getpid());

    /* Valgrind runs posix_spawn as a plain fork: exec errors then arrive
     * as exit status 127, not as a return code (see proc.h). */
    if (preload != NULL && strstr(preload, "vgpreload") != NULL)
        skip();
    memset(&r, 0, sizeof r);
    r.s = s;
    memset(&o, 0, sizeof o);
    o.argv = missing;
    assert_int_equal(drv_proc_spawn(s->mgr, &o, on_done, &r, &p, &err),
                     -ENOENT);
    assert_null(p);
    assert_int_equal(err.code, -ENOENT);
    assert_non_null(strstr(err.msg, "drover-no-such-command-4711"));
    assert_non_null(strstr(err.msg, "not found"));

    o.argv = abs_missing;
    assert_int_equal(drv_proc_spawn(s->mgr, &o, on_done, &r, &p, &err),
                     -ENOENT);
    assert_non_null(strstr(err.msg, "/nonexistent/drover-nope"));

    snprintf(gone, sizeof gone, "%s/no-such-dir", s->dir);
    o.argv = argv;
    o.cwd = gone;
    assert_int_equal(drv_proc_spawn(s->mgr, &o, on_done, &r, &p, &err),
                     -ENOENT);
    assert_non_null(strstr(err.msg, "no-such-dir"));
    assert_non_null(strstr(err.msg, "cwd"));

    snprintf(path, sizeof path, "%s/not-executable", s->dir);
    assert_int_equal(drv_test_write_file(path, "#!/bin/sh\nexit 0\n"), 0);
    assert_int_equal(chmod(path, 0644), 0);
    noexec[0] = path;
    o.argv = noexec;
    o.cwd = NULL;
    assert_int_equal(drv_proc_spawn(s->mgr, &o, on_done, &r, &p, &err),
                     -EACCES);
    assert_non_null(strstr(err.msg, "not-executable"));

    o.argv = NULL;
    assert_int_equal(drv_proc_spawn(s->mgr, &o, on_done, &r, &p, &err),
                     -EINVAL);

    /* nothing ran, nothing is left */
    assert_int_equal(r.done, 0);
    assert_int_equal(drv_proc_mgr_live(s->mgr), 0);
    assert_int_equal(event_base_get_num_events(drv_loop_base(s->loop),
                                               EVENT_BASE_COUNT_ADDED), 0);
    assert_int_equal(drv_test_fd_count((long)getpid()), fds_before);
}

static void
test_proc_kill_term_then_kill(void **st)
{
    struct state *s = *st;
    struct rec r;
    struct kicker k;
    struct drv_proc_opts o;
    char ready[512];

    snprintf(ready, sizeof ready, "%s/ready", s->dir);
    memset(&o, 0, sizeof o);
    o.kill_grace_ms = 1500; /* room for the handler on a busy machine */
    spawn_helper(s, &r, &o, "term-ignore", ready);
    kicker_start(s, &k, &r, ready);
    run_until(s, 1);
    event_free(k.ev);
    assert_int_equal(r.code, 0);
    assert_int_equal(r.res.killed, 1);
    assert_int_equal(r.res.timed_out, 0);
    /* SIGTERM came first (its handler wrote), SIGKILL after the grace */
    assert_non_null(strstr(r.out, "TERM\n"));
    assert_int_equal(r.res.term_signal, SIGKILL);
    assert_true(r.res.wall_ns >= 1500 * DRV_NS_PER_MS);
    assert_string_equal(r.desc, "killed on request (killed by signal "
                                "SIGKILL)");
    rec_fini(&r);
}

static void
test_proc_kill_grandchildren(void **st)
{
    struct state *s = *st;
    struct rec r;
    struct kicker k;
    struct drv_proc_opts o;
    char ready[512];
    pid_t gpid;

    snprintf(ready, sizeof ready, "%s/ready", s->dir);
    memset(&o, 0, sizeof o);
    o.kill_grace_ms = 30000; /* the child dies at SIGTERM; no wait */
    spawn_helper(s, &r, &o, "grandchild", ready);
    kicker_start(s, &k, &r, ready);
    run_until(s, 1);
    event_free(k.ev);
    assert_int_equal(r.res.killed, 1);
    assert_int_equal(r.res.term_signal, SIGTERM);
    gpid = (pid_t)atol(r.out);
    assert_true(gpid > 0);
    /* it ignored SIGTERM; the group SIGKILL at the child's exit got it */
    assert_pid_dies(gpid);
    rec_fini(&r);
}

static void
test_proc_deadline(void **st)
{
    struct state *s = *st;
    struct rec r;
    struct drv_proc_opts o;
    int64_t t0 = drv_clock_mono_ns();

    memset(&o, 0, sizeof o);
    o.deadline_ns = t0 + 200 * DRV_NS_PER_MS;
    spawn_helper(s, &r, &o, "sleep", "100000");
    run_until(s, 1);
    assert_int_equal(r.res.timed_out, 1);
    assert_int_equal(r.res.killed, 1);
    assert_int_equal(r.res.term_signal, SIGTERM);
    assert_true(drv_clock_mono_ns() - t0 >= 200 * DRV_NS_PER_MS);
    assert_string_equal(r.desc, "timed out (killed by signal SIGTERM)");
    rec_fini(&r);
}

static void
test_proc_stdout_closed_early(void **st)
{
    struct state *s = *st;
    struct rec r;
    struct drv_proc_opts o;

    memset(&o, 0, sizeof o);
    spawn_helper(s, &r, &o, "close-stdout", "300");
    run_until(s, 1);
    /* EOF came early; completion still waited for the exit */
    assert_int_equal(r.res.exit_code, 7);
    assert_true(r.res.wall_ns >= 300 * DRV_NS_PER_MS);
    rec_fini(&r);
}

static void
test_proc_grandchild_holds_stdout(void **st)
{
    struct state *s = *st;
    struct rec r;
    struct drv_proc_opts o;
    pid_t gpid;

    memset(&o, 0, sizeof o);
    o.drain_ms = 30000; /* the group kill, not the drain, ends the wait */
    spawn_helper(s, &r, &o, "bg-holder", NULL);
    run_until(s, 1);
    assert_int_equal(r.res.exit_code, 0);
    assert_int_equal(r.res.killed, 0);
    gpid = (pid_t)atol(r.out);
    assert_true(gpid > 0);
    assert_pid_dies(gpid);
    rec_fini(&r);
}

static void
test_proc_escaped_holder_drained(void **st)
{
    struct state *s = *st;
    struct rec r;
    struct drv_proc_opts o;
    pid_t gpid;

    memset(&o, 0, sizeof o);
    o.drain_ms = 200;
    spawn_helper(s, &r, &o, "escape-holder", NULL);
    run_until(s, 1);
    assert_int_equal(r.res.exit_code, 0);
    gpid = (pid_t)atol(r.out);
    assert_true(gpid > 0);
    /* It left the group, so it was not killed: the drain ended the wait,
     * and closing the pipes ends the holder (it waits for POLLERR). */
    assert_pid_dies(gpid);
    rec_fini(&r);
}

static void
test_proc_own_group_clean_signals_fds(void **st)
{
    struct state *s = *st;
    struct rec r[3];
    struct drv_proc_opts o;
    sigset_t usr1, old;
    struct sigaction ign, old_pipe;
    char want[64];
    int i;

    /* what a worker does: SIGPIPE ignored, a signal blocked */
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ign, &old_pipe);
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    sigprocmask(SIG_BLOCK, &usr1, &old);
    memset(&o, 0, sizeof o);
    spawn_helper(s, &r[0], &o, "pgid", NULL);
    memset(&o, 0, sizeof o);
    spawn_helper(s, &r[1], &o, "sigstate", NULL);
    memset(&o, 0, sizeof o);
    spawn_helper(s, &r[2], &o, "fds", NULL);
    sigprocmask(SIG_SETMASK, &old, NULL);
    sigaction(SIGPIPE, &old_pipe, NULL);
    run_until(s, 3);

    snprintf(want, sizeof want, "%ld %ld", (long)r[0].res.pid,
             (long)r[0].res.pid);
    assert_string_equal(r[0].out, want);
    assert_string_equal(r[1].out, "PIPE=D0\nTERM=D0\nINT=D0\nHUP=D0\n"
                                  "CHLD=D0\nUSR1=D0\nUSR2=D0\nQUIT=D0\n"
                                  "ALRM=D0\n");
    assert_string_equal(r[2].out, "0\n1\n2\n");
    for (i = 0; i < 3; i++)
        rec_fini(&r[i]);
}

static void
test_proc_many_at_once_no_fd_leak(void **st)
{
    struct state *s = *st;
    enum { N = 200 };
    struct rec *r = calloc(N, sizeof *r);
    struct drv_proc_opts o;
    int fds_before = drv_test_fd_count((long)getpid());
    int i;

    for (i = 0; i < N; i++) {
        memset(&o, 0, sizeof o);
        spawn_helper(s, &r[i], &o, "write", "100");
    }
    assert_int_equal(drv_proc_mgr_live(s->mgr), N);
    run_until(s, N);
    for (i = 0; i < N; i++) {
        assert_int_equal(r[i].done, 1);
        assert_int_equal(r[i].res.exit_code, 0);
        assert_int_equal(r[i].res.out_len, 100);
        rec_fini(&r[i]);
    }
    assert_int_equal(drv_test_fd_count((long)getpid()), fds_before);
    free(r);
}

/* Sequential-ish scale: `total` children, `width` at a time, each one
 * spawned from the previous one's callback. */
struct chain {
    struct state *s;
    int started;                /* spawned so far */
    int total;                  /* to spawn in all */
    int failed;                 /* bad completions */
};

static void spawn_next(struct chain *c);

static void
on_chain_done(struct drv_proc *p, int code, const struct drv_proc_result *res,
              void *ctx)
{
    struct chain *c = ctx;

    (void)p;
    if (code != 0 || res->exit_code != 0)
        c->failed++;
    if (++c->s->checkpoint == c->s->want)
        drv_loop_stop(c->s->loop);
    if (c->started < c->total)
        spawn_next(c);
}

static void
spawn_next(struct chain *c)
{
    const char *argv[] = {"true", NULL}; /* PATH search */
    struct drv_proc_opts o;
    struct drv_err err;

    memset(&o, 0, sizeof o);
    o.argv = argv;
    c->started++;
    /* no handle: the proc frees itself after its callback */
    assert_drv_ok(drv_proc_spawn(c->s->mgr, &o, on_chain_done, c, NULL,
                                 &err), &err);
}

static void
test_proc_sequential_scale(void **st)
{
    struct state *s = *st;
    struct chain c = {s, 0, 1000, 0};
    int fds_before = drv_test_fd_count((long)getpid());
    int i;

    for (i = 0; i < 8; i++)
        spawn_next(&c);
    run_until(s, c.total);
    assert_int_equal(c.failed, 0);
    assert_int_equal(drv_test_fd_count((long)getpid()), fds_before);
}

static int
no_pidfd(pid_t pid)
{
    (void)pid;
    return -ENOSYS;
}

static void
test_proc_poll_fallback(void **st)
{
    struct state *s = *st;
    struct rec r[3];
    struct kicker k;
    struct drv_proc_opts o;
    char ready[512];
    int i;

    drv__proc_pidfd_open = no_pidfd;
    snprintf(ready, sizeof ready, "%s/ready", s->dir);
    memset(&o, 0, sizeof o);
    spawn_helper(s, &r[0], &o, "exit", "3");
    memset(&o, 0, sizeof o);
    spawn_helper(s, &r[1], &o, "write", "70000");
    memset(&o, 0, sizeof o);
    o.kill_grace_ms = 200;
    spawn_helper(s, &r[2], &o, "term-ignore", ready);
    kicker_start(s, &k, &r[2], ready);
    run_until(s, 3);
    drv__proc_pidfd_open = drv__proc_pidfd_open_sys;
    event_free(k.ev);
    assert_int_equal(r[0].res.exit_code, 3);
    assert_int_equal(r[1].res.out_len, 70000);
    assert_int_equal(r[2].res.term_signal, SIGKILL);
    assert_int_equal(r[2].res.killed, 1);
    for (i = 0; i < 3; i++)
        rec_fini(&r[i]);
}

/* Stops the loop once the manager has nothing left. */
static void
on_live_poll(evutil_socket_t fd, short what, void *arg)
{
    struct state *s = arg;
    struct event *ev = event_base_get_running_event(drv_loop_base(s->loop));
    struct timeval tv = {0, 10 * 1000};

    (void)fd;
    (void)what;
    if (drv_proc_mgr_live(s->mgr) == 0) {
        s->checkpoint++;
        drv_loop_stop(s->loop);
        return;
    }
    assert_int_equal(event_add(ev, &tv), 0);
}

static void
test_proc_free_before_done(void **st)
{
    struct state *s = *st;
    struct rec r;
    struct drv_proc_opts o;
    struct event *poll;
    struct timeval tv = {0, 10 * 1000};
    pid_t pid;

    memset(&o, 0, sizeof o);
    spawn_helper(s, &r, &o, "sleep", "100000");
    pid = drv_proc_pid(r.p);
    drv_proc_free(r.p); /* given up: callback cleared, child killed */
    r.p = NULL;
    assert_int_equal(drv_proc_mgr_live(s->mgr), 1); /* still being reaped */
    poll = evtimer_new(drv_loop_base(s->loop), on_live_poll, s);
    assert_int_equal(event_add(poll, &tv), 0);
    run_until(s, 1);
    event_free(poll);
    assert_int_equal(r.done, 0);
    /* reaped by us: no such child any more */
    assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

/* Once both children are reaped (their /proc entry gone) they are
 * draining: kill one and free the other, both long before drain_ms. */
struct cutter {
    struct event *ev;           /* poll timer */
    struct rec *kill_r;         /* drv_proc_kill this one */
    struct rec *free_r;         /* drv_proc_free this one */
    pid_t kill_pid;             /* its pid */
    pid_t free_pid;             /* its pid */
    pid_t gpids[2];             /* escaped holders, read back later */
    int cut;                    /* both were cut */
};

static void
on_cut_poll(evutil_socket_t fd, short what, void *arg)
{
    struct cutter *c = arg;
    struct timeval tv = {0, 10 * 1000};

    (void)fd;
    (void)what;
    /* reaped, not only exited: a zombie's exit may not have reached the
     * loop yet (the loop reaps it and takes the exit in one callback) */
    if (kill(c->kill_pid, 0) == 0 || kill(c->free_pid, 0) == 0) {
        assert_int_equal(event_add(c->ev, &tv), 0);
        return;
    }
    /* Free first: the two cuts run in this order on the next turn, so the
     * kill's completion (which stops the loop) comes last. */
    drv_proc_free(c->free_r->p);
    c->free_r->p = NULL;
    /* exited already: -ESRCH, and the pipes are closed without waiting */
    assert_int_equal(drv_proc_kill(c->kill_r->p), -ESRCH);
    c->cut = 1;
    /* the freed one has no callback: count it here */
    if (++c->kill_r->s->checkpoint == c->kill_r->s->want)
        drv_loop_stop(c->kill_r->s->loop);
}

static void
test_proc_kill_and_free_cut_drain(void **st)
{
    struct state *s = *st;
    struct rec r[2];
    struct drv_proc_opts o;
    struct cutter c;
    struct timeval tv = {0, 10 * 1000};
    pid_t gpid;

    memset(&o, 0, sizeof o);
    o.drain_ms = 600000; /* far beyond the hang guard */
    spawn_helper(s, &r[0], &o, "escape-holder", NULL);
    memset(&o, 0, sizeof o);
    o.drain_ms = 600000;
    spawn_helper(s, &r[1], &o, "escape-holder", NULL);
    memset(&c, 0, sizeof c);
    c.kill_r = &r[0];
    c.free_r = &r[1];
    c.kill_pid = drv_proc_pid(r[0].p);
    c.free_pid = drv_proc_pid(r[1].p);
    c.ev = evtimer_new(drv_loop_base(s->loop), on_cut_poll, &c);
    assert_int_equal(event_add(c.ev, &tv), 0);
    run_until(s, 2);
    event_free(c.ev);
    assert_int_equal(c.cut, 1);
    assert_int_equal(r[0].done, 1);
    assert_int_equal(r[0].res.exit_code, 0);
    assert_int_equal(r[0].res.killed, 0); /* it had exited on its own */
    assert_int_equal(r[1].done, 0);
    gpid = (pid_t)atol(r[0].out);
    assert_true(gpid > 0);
    assert_pid_dies(gpid); /* pipes closed: the holder ends */
    rec_fini(&r[0]);
}

static void
test_proc_mgr_kill_all(void **st)
{
    struct state *s = *st;
    struct rec r[3];
    struct drv_proc_opts o;
    int i;

    for (i = 0; i < 3; i++) {
        memset(&o, 0, sizeof o);
        spawn_helper(s, &r[i], &o, "sleep", "100000");
    }
    drv_proc_mgr_kill_all(s->mgr);
    assert_int_equal(s->checkpoint, 0); /* never from inside the call */
    run_until(s, 3);
    for (i = 0; i < 3; i++) {
        assert_int_equal(r[i].code, 0);
        assert_int_equal(r[i].res.killed, 1);
        assert_int_equal(r[i].res.term_signal, SIGTERM);
        rec_fini(&r[i]);
    }
}

static void
on_done_respawn(struct drv_proc *p, int code,
                const struct drv_proc_result *res, void *ctx)
{
    struct rec *r = ctx;
    const char *argv[] = {"true", NULL};
    struct drv_proc_opts o;
    struct drv_err err;
    struct drv_proc *q = NULL;

    memset(&o, 0, sizeof o);
    o.argv = argv;
    /* the manager is going away: no new children */
    assert_int_equal(drv_proc_spawn(r->s->mgr, &o, on_done, r, &q, &err),
                     -ESHUTDOWN);
    assert_null(q);
    on_done(p, code, res, ctx);
}

static void
test_proc_mgr_free_cancels(void **st)
{
    struct state *s = *st;
    struct rec r[3];
    struct drv_proc_opts o;
    struct drv_err err;
    const char *argv[] = {s->prog, "write", "10", NULL};
    int i;

    memset(&o, 0, sizeof o);
    spawn_helper(s, &r[0], &o, "sleep", "100000");
    memset(&o, 0, sizeof o);
    spawn_helper(s, &r[1], &o, "bg-holder", NULL);
    memset(&o, 0, sizeof o);
    o.argv = argv;
    o.envp = (const char *const *)environ;
    memset(&r[2], 0, sizeof r[2]);
    r[2].s = s;
    assert_drv_ok(drv_proc_spawn(s->mgr, &o, on_done_respawn, &r[2],
                                 &r[2].p, &err), &err);
    drv_proc_mgr_free(s->mgr); /* callbacks run inside, with -ECANCELED */
    s->mgr = NULL;
    for (i = 0; i < 3; i++) {
        assert_int_equal(r[i].done, 1);
        assert_int_equal(r[i].code, -ECANCELED);
        assert_int_equal(r[i].res.killed, 1);
        rec_fini(&r[i]);
    }
    assert_int_equal(r[0].res.term_signal, SIGKILL);
    assert_int_equal(event_base_get_num_events(drv_loop_base(s->loop),
                                               EVENT_BASE_COUNT_ADDED), 0);
}

/* ----------------------------------------------- dying with the worker */

static void
test_proc_pdeathsig_set(void **st)
{
    struct state *s = *st;
    struct drv_proc_opts o;
    struct rec r;
    char want[16];

    memset(&o, 0, sizeof o);
    spawn_helper(s, &r, &o, "pdeathsig", NULL);
    run_until(s, 1);
    assert_int_equal(r.res.exit_code, 0);
    snprintf(want, sizeof want, "%d", SIGKILL);
    assert_string_equal(r.out, want);
    rec_fini(&r);
}

/* A bare command name is searched in the worker's PATH with execvp's
 * rules: a file that is not executable is passed over (and reported as
 * EACCES only when nothing else is found). */
static void
test_proc_path_search(void **st)
{
    struct state *s = *st;
    const char *argv[] = {"drv-path-probe", NULL};
    char a[512], b[512], fa[600], fb[600], path[1100];
    char *old = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    struct drv_proc *p = NULL;
    struct drv_proc_opts o;
    struct drv_err err;
    struct rec r;

    snprintf(a, sizeof a, "%s/a", s->dir);
    snprintf(b, sizeof b, "%s/b", s->dir);
    assert_int_equal(mkdir(a, 0755), 0);
    assert_int_equal(mkdir(b, 0755), 0);
    snprintf(fa, sizeof fa, "%s/drv-path-probe", a);
    snprintf(fb, sizeof fb, "%s/drv-path-probe", b);
    assert_int_equal(drv_test_write_file(fa, "#!/bin/sh\necho a\n"), 0);
    assert_int_equal(drv_test_write_file(fb, "#!/bin/sh\necho b\n"), 0);
    assert_int_equal(chmod(fa, 0644), 0);
    assert_int_equal(chmod(fb, 0755), 0);

    snprintf(path, sizeof path, "/nonexistent-dir:%s:%s", a, b);
    assert_int_equal(setenv("PATH", path, 1), 0);
    memset(&o, 0, sizeof o);
    o.argv = argv;
    spawn_ok(s, &r, &o);
    run_until(s, 1);
    assert_int_equal(r.res.exit_code, 0);
    assert_string_equal(r.out, "b\n");
    rec_fini(&r);

    assert_int_equal(setenv("PATH", a, 1), 0);
    assert_int_equal(drv_proc_spawn(s->mgr, &o, on_done, &r, &p, &err),
                     -EACCES);
    assert_null(p);
    if (old != NULL)
        assert_int_equal(setenv("PATH", old, 1), 0);
    else
        assert_int_equal(unsetenv("PATH"), 0);
    free(old);
    assert_int_equal(drv_proc_mgr_live(s->mgr), 0);
}

/* The reaper runs in its own group, named, ignoring the signals a stop
 * of the worker's group sends; children that end normally leave nothing
 * behind; a stop makes it exit (reaped: no zombie). */
static void
test_proc_reaper_start_stop(void **st)
{
    struct state *s = *st;
    struct drv_proc_opts o;
    struct drv_err err;
    struct rec r[5];
    char path[64], line[256];
    unsigned long long ign = 0, cgt = 0;
    pid_t rp;
    FILE *f;
    int i, fds_before = drv_test_fd_count((long)getpid());

    assert_int_equal(drv_proc_reaper_pid(), -1);
    assert_drv_ok(drv_proc_reaper_start(&err), &err);
    assert_drv_ok(drv_proc_reaper_start(&err), &err); /* once is enough */
    rp = drv_proc_reaper_pid();
    assert_true(rp > 0);
    assert_int_equal(drv_test_fd_count((long)getpid()), fds_before + 1); /* the pipe's end */
    wait_until(drv_test_child_named((long)getpid(), "drover-reaper") == rp,
               "reaper %ld to be named drover-reaper", (long)rp);
    assert_int_equal(getpgid(rp), rp);
    snprintf(path, sizeof path, "/proc/%ld/status", (long)rp);
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f) != NULL) {
        (void)sscanf(line, "SigIgn: %llx", &ign);
        (void)sscanf(line, "SigCgt: %llx", &cgt);
    }
    fclose(f);
    assert_true(ign & (1ULL << (SIGTERM - 1)));
    assert_true(ign & (1ULL << (SIGINT - 1)));
    assert_true(ign & (1ULL << (SIGHUP - 1)));
    assert_true(cgt & (1ULL << (SIGUSR1 - 1)));

    for (i = 0; i < 5; i++) {
        memset(&o, 0, sizeof o);
        spawn_helper(s, &r[i], &o, "exit", "0");
    }
    run_until(s, 5);
    for (i = 0; i < 5; i++) {
        assert_int_equal(r[i].res.exit_code, 0);
        rec_fini(&r[i]);
    }
    drv_proc_reaper_stop();
    assert_int_equal(drv_proc_reaper_pid(), -1);
    /* reaped by the stop: not even a zombie is left */
    assert_int_equal(kill(rp, 0), -1);
    assert_int_equal(errno, ESRCH);
    assert_int_equal(drv_test_fd_count((long)getpid()), fds_before);
}

/* A reaper killed from outside: children still run (their registration
 * write meets a closed pipe and must not kill them with SIGPIPE), the
 * worker notices on its next record, forgets the reaper and reaps it. */
static void
test_proc_reaper_killed(void **st)
{
    struct state *s = *st;
    struct drv_proc_opts o;
    struct drv_err err;
    struct rec r;
    pid_t rp;
    int fds_before = drv_test_fd_count((long)getpid());

    assert_drv_ok(drv_proc_reaper_start(&err), &err);
    rp = drv_proc_reaper_pid();
    assert_true(rp > 0);
    assert_int_equal(kill(rp, SIGKILL), 0);
    wait_until(!drv_test_pid_alive(rp), "reaper %ld to die", (long)rp);
    memset(&o, 0, sizeof o);
    spawn_helper(s, &r, &o, "exit", "3");
    run_until(s, 1);
    assert_int_equal(r.res.exit_code, 3);
    rec_fini(&r);
    assert_int_equal(drv_proc_reaper_pid(), -1);
    assert_int_equal(kill(rp, 0), -1); /* reaped */
    drv_proc_reaper_stop();
    assert_int_equal(drv_test_fd_count((long)getpid()), fds_before);
}

/* The whole mechanism in a process of its own: an "owner" (a fork of
 * this test) starts a reaper, spawns `sh` that starts two grandchildren
 * in its group, and is killed with SIGKILL; every process of the group
 * must then go (the promise is 2 s; the wait is the usual guard and the
 * time is printed). */
static void
test_proc_owner_killed_group_dies(void **st)
{
    struct state *s = *st;
    char script[2048], ready[300], buf[64];
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    struct drv_proc_opts o;
    struct drv_loop *loop;
    struct drv_proc_mgr *mgr;
    struct drv_err err;
    struct rec r;
    pid_t owner, rp;
    long pgid = 0;
    int64_t t0;
    FILE *f;

    snprintf(ready, sizeof ready, "%s/pgid", s->dir);
    snprintf(script, sizeof script,
             "sleep 1000 & sleep 1000 & echo $$ > %s.tmp && mv %s.tmp %s; "
             "wait", ready, ready, ready);
    owner = fork();
    assert_true(owner >= 0);
    if (owner == 0) {
        if (drv_proc_reaper_start(&err) < 0)
            _exit(2);
        loop = drv_loop_create(NULL);
        mgr = drv_proc_mgr_create(loop);
        memset(&o, 0, sizeof o);
        memset(&r, 0, sizeof r);
        o.argv = argv;
        if (drv_proc_spawn(mgr, &o, on_done, &r, &r.p, &err) < 0)
            _exit(3);
        drv_loop_run(loop); /* until killed */
        _exit(4);
    }
    wait_until(access(ready, F_OK) == 0, "the job's pgid in %s", ready);
    f = fopen(ready, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    pgid = strtol(buf, NULL, 10);
    assert_true(pgid > 1);
    wait_until(drv_test_pgid_alive(pgid) == 3, "sh and 2 sleeps in group "
               "%ld (%d)", pgid, drv_test_pgid_alive(pgid));
    rp = (pid_t)drv_test_child_named((long)owner, "drover-reaper");
    assert_true(rp > 0);

    t0 = drv_clock_mono_ns();
    assert_int_equal(kill(owner, SIGKILL), 0);
    assert_int_equal(waitpid(owner, NULL, 0), owner);
    wait_until(drv_test_pgid_alive(pgid) == 0, "group %ld to die (%d left)",
               pgid, drv_test_pgid_alive(pgid));
    print_message("group of 3 gone %.1f ms after the owner's SIGKILL\n",
                  (double)(drv_clock_mono_ns() - t0) / 1e6);
    wait_until(!drv_test_pid_alive(rp), "reaper %ld to exit", (long)rp);
}

/* drv_read_nb on a non-blocking pipe: nothing yet, bytes, EOF, a bad fd. */
static void
test_proc_read_nb_states(void **state)
{
    int fds[2];
    char buf[8];

    (void)state;
    assert_int_equal(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    assert_int_equal(drv_read_nb(fds[0], buf, sizeof buf), -EAGAIN);
    assert_int_equal(write(fds[1], "abc", 3), 3);
    assert_int_equal(drv_read_nb(fds[0], buf, sizeof buf), 3);
    assert_memory_equal(buf, "abc", 3);
    close(fds[1]);
    assert_int_equal(drv_read_nb(fds[0], buf, sizeof buf), 0);
    close(fds[0]);
    assert_int_equal(drv_read_nb(fds[0], buf, sizeof buf), -EBADF);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proc_read_nb_states),
        cmocka_unit_test_setup_teardown(test_proc_exit_codes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_proc_killed_by_signal, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_proc_stdin_and_argv_literal,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_proc_stdin_waits_in_pipe,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_proc_stdin_epipe_tolerated,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_proc_stdout_cap, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_proc_stderr_tail, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_proc_env_exact, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_proc_cwd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_proc_spawn_errors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_proc_kill_term_then_kill, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_proc_kill_grandchildren, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_proc_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_proc_stdout_closed_early, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_proc_grandchild_holds_stdout,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_proc_escaped_holder_drained,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_proc_own_group_clean_signals_fds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_proc_many_at_once_no_fd_leak,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_proc_sequential_scale, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_proc_poll_fallback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_proc_free_before_done, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_proc_kill_and_free_cut_drain,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_proc_mgr_kill_all, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_proc_mgr_free_cancels, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_proc_pdeathsig_set, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_proc_path_search, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_proc_reaper_start_stop, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_proc_reaper_killed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_proc_owner_killed_group_dies,
                                        setup, teardown),
    };

    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, NULL, NULL);
}
