/*
 * test_children.c -- no exec child outlives its droverd: a kill -9 of
 * droverd takes every process of its jobs' groups with it (grandchildren
 * included) through PR_SET_PDEATHSIG and the reaper; a graceful stop
 * still kills them as before and the reaper then exits quietly; children
 * that end normally leave no bookkeeping (fds, zombies, reaper entries);
 * and a droverd frozen (SIGSTOP) past its visibility timeout whose job was
 * reclaimed and finished elsewhere cannot write its stale outcome over the
 * new owner's when it is thawed.
 *
 * Waits poll /proc, Redis or droverd's log (wait_until) with the usual
 * generous deadline; the time the group took to die is printed, never
 * asserted (the promise is 2 s).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drover/clock.h"
#include "droverd.h"

static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-children",
    .prefix = "t",
    .log_level = "debug",
    .worker_defaults = "  shutdown_timeout: 5s\n  visibility_timeout: 30s\n",
    .body_head = NULL,
    .tail_lines = 40,
};

/* A job whose sh starts a grandchild, a great-grandchild (both in the
 * job's group) and, when escape is set, a process that leaves the group
 * with setsid (its pid into DIR/escaped); then writes its pgid into
 * DIR/pgid and waits. */
static void
config_family(struct drv_test_droverd *t, const char *worker, int escape)
{
    char body[4096], esc[600] = "";

    if (escape)
        snprintf(esc, sizeof esc,
                 "setsid sleep 1000 & echo $! > %s/escaped; ", t->dir);
    snprintf(body, sizeof body,
             "queues: [default]\n"
             "jobs:\n"
             "  family:\n    handler: exec\n    retries: 0\n"
             "    kill_grace: 200ms\n"
             "    command: [sh, -c, \"sleep 1000 & sh -c 'sleep 1000; :' & "
             "%secho $$ > %s/pgid.tmp && mv %s/pgid.tmp %s/pgid; wait\"]\n",
             esc, t->dir, t->dir, t->dir);
    drv_test_droverd_config(t, worker, body);
}

/* Start the family job and wait until its group holds sh, the sleep, the
 * inner sh and its sleep. Returns the group. */
static long
start_family(struct drv_test_droverd *t)
{
    long pgid;

    drv_test_xadd(t, "default", NULL, 0, "job", "family", NULL);
    pgid = drv_test_wait_file_num(t->dir, "pgid");
    assert_true(pgid > 1);
    wait_until(drv_test_pgid_alive(pgid) >= 4, "4 processes in group %ld "
               "(%d)", pgid, drv_test_pgid_alive(pgid));
    return pgid;
}

/* The reaper droverd i started (a child named drover-reaper). */
static long
reaper_of(struct drv_test_droverd *t, int i)
{
    long rp = -1;

    wait_until((rp = drv_test_child_named((long)t->w[i].pid,
                                          "drover-reaper")) > 0,
               "droverd %ld's reaper", (long)t->w[i].pid);
    return rp;
}

/* ------------------------------------------------------------- tests */

static void
test_children_die_with_killed_worker(void **st)
{
    struct drv_test_droverd *t = *st;
    long pgid, rp, esc;
    int64_t t0;
    double ms;

    config_family(t, "", 1);
    drv_test_droverd_start(t, 0);
    pgid = start_family(t);
    esc = drv_test_wait_file_num(t->dir, "escaped");
    /* gone from the job's group: setsid(1) has made it a group of its
     * own (before that, a kill of the job's group still reaches it) */
    wait_until(drv_test_pid_pgid(esc) == esc, "escaped process %ld to "
               "leave group %ld", esc, pgid);
    rp = reaper_of(t, 0);

    t0 = drv_clock_mono_ns();
    drv_test_kill(&t->w[0], SIGKILL);
    wait_until(drv_test_pgid_alive(pgid) == 0, "group %ld to die (%d left)",
               pgid, drv_test_pgid_alive(pgid));
    ms = (double)(drv_clock_mono_ns() - t0) / 1e6;
    print_message("the job's group of 4 was gone %.1f ms after the kill -9 "
                  "of droverd\n", ms);
    wait_until(!drv_test_pid_alive(rp), "reaper %ld to exit", rp);
    drv_test_wait_log(t, "worker gone: killed the process groups", 1);
    assert_true(drv_test_file_contains(t->log, "groups=1 killed=1"));
    /* The boundary: a process that left the group with setsid is not
     * followed (only a cgroup could); see doc/children.md. */
    assert_true(drv_test_pid_alive(esc));
    assert_int_equal(kill((pid_t)esc, SIGKILL), 0);
    wait_until(!drv_test_pid_alive(esc), "escaped %ld to die", esc);
}

static void
test_children_graceful_stop_kills_group_reaper_exits(void **st)
{
    struct drv_test_droverd *t = *st;
    long pgid, rp;

    config_family(t, "  shutdown_timeout: 300ms\n", 0);
    drv_test_droverd_start(t, 0);
    pgid = start_family(t);
    rp = reaper_of(t, 0);
    drv_test_droverd_stop(t, 0, 0);
    /* droverd killed and reaped the job itself before exiting */
    assert_int_equal(drv_test_pgid_alive(pgid), 0);
    wait_until(!drv_test_pid_alive(rp), "reaper %ld to exit", rp);
    /* told to quit with nothing listed: it says nothing */
    assert_false(drv_test_file_contains(t->log, "worker gone"));
    assert_false(drv_test_file_contains(t->log, "children left"));
    /* and put the job back, as a graceful stop does */
    assert_int_equal(drv_test_num(t, "XLEN t:{default}:jobs"), 1);
    assert_int_equal(drv_test_num(t, "XPENDING t:{default}:jobs drover"), 0);
}

static void
test_children_normal_exits_leave_nothing(void **st)
{
    struct drv_test_droverd *t = *st;
    long wpid, rp;
    int i, fds;

    drv_test_droverd_config(t, "",
                            "queues: [default]\n"
                            "jobs:\n  t:\n    handler: exec\n"
                            "    command: [sh, -c, \"true & wait\"]\n");
    drv_test_droverd_start(t, 0);
    wpid = (long)t->w[0].pid;
    rp = reaper_of(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "job", "t", NULL);
    drv_test_wait_stat(t, "default", "processed", 1);
    fds = drv_test_fd_count(wpid);
    for (i = 0; i < 30; i++)
        drv_test_xadd(t, "default", NULL, 0, "job", "t", NULL);
    drv_test_wait_stat(t, "default", "processed", 31);
    assert_int_equal(drv_test_fd_count(wpid), fds);
    assert_int_equal(drv_test_zombie_children(wpid), 0);
    assert_true(drv_test_pid_alive(rp));
    /* Every group was taken off the reaper's list: killed now, droverd
     * leaves it nothing to kill. */
    drv_test_kill(&t->w[0], SIGKILL);
    drv_test_wait_log(t, "worker gone: killed the process groups", 1);
    assert_true(drv_test_file_contains(t->log, "groups=0 killed=0"));
    wait_until(!drv_test_pid_alive(rp), "reaper %ld to exit", rp);
}

static void
test_children_no_reaper_without_exec_jobs(void **st)
{
    struct drv_test_droverd *t = *st;

    drv_test_droverd_config(t, "", "queues: [default]\n"
                                   "jobs:\n  e:\n    handler: echo\n");
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "job", "e", NULL);
    drv_test_wait_stat(t, "default", "processed", 1);
    assert_int_equal(drv_test_child_named((long)t->w[0].pid,
                                          "drover-reaper"), -1);
    drv_test_droverd_stop(t, 0, 0);
}

/* A droverd frozen past its visibility timeout while its exec job runs:
 * another droverd reclaims the job and finishes it; when the first is
 * thawed, its child has finished too, but its outcome must be dropped,
 * never written over the new owner's (result and stats). */
static void
test_children_frozen_worker_outcome_dropped(void **st)
{
    struct drv_test_droverd *t = *st;
    char body[2048], lock[600], done[600];

    snprintf(lock, sizeof lock, "%s/lock", t->dir);
    snprintf(done, sizeof done, "%s/first-done", t->dir);
    /* the first run takes the lock, works 2 s and answers "first"; a run
     * that finds the lock taken answers "second" at once */
    snprintf(body, sizeof body,
             "queues: [default]\n"
             "jobs:\n  once:\n    handler: exec\n    retries: 0\n"
             "    result_ttl: 1m\n"
             "    command: [sh, -c, \"if mkdir %s 2>/dev/null; then sleep 2; "
             "echo first; touch %s; else echo second; fi\"]\n",
             lock, done);
    drv_test_droverd_config(t, "  visibility_timeout: 1s\n", body);
    drv_test_droverd_start(t, 0);
    drv_test_xadd(t, "default", NULL, 0, "job", "once", "id", "frozen-1",
                  NULL);
    wait_until(access(lock, F_OK) == 0, "the first run to start");
    assert_int_equal(kill(t->w[0].pid, SIGSTOP), 0);

    drv_test_droverd_start(t, 1);
    drv_test_wait_stat(t, "default", "processed", 1);
    drv_test_expect_result(t, "default", "frozen-1", "result", "second\n");
    /* the frozen worker's child ends meanwhile (it is not frozen) */
    wait_until(access(done, F_OK) == 0, "the first run to finish");

    assert_int_equal(kill(t->w[0].pid, SIGCONT), 0);
    /* it sends its stale outcome and the settle script refuses it, or
     * its lease renewal finds the job reclaimed first and cancels the
     * attempt (the child's exit and the renewal timer are both due when
     * it wakes: either may run first) */
    wait_until(drv_test_file_contains(t->w[0].log, "lost lease: outcome "
                                      "not written") ||
               drv_test_file_contains(t->w[0].log, "lease lost: job "
                                      "reclaimed by another worker"),
               "the thawed droverd's outcome to be refused or dropped");
    drv_test_droverd_stop(t, 0, 0);
    drv_test_expect_result(t, "default", "frozen-1", "result", "second\n");
    assert_int_equal(drv_test_stat(t, "default", "processed"), 1);
    assert_int_equal(drv_test_stat(t, "default", "failed"), 0);
    assert_int_equal(drv_test_stat(t, "default", "dead"), 0);
    assert_int_equal(drv_test_num(t, "XLEN t:{default}:jobs"), 0);
    drv_test_droverd_stop(t, 1, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        TD(test_children_die_with_killed_worker),
        TD(test_children_graceful_stop_kills_group_reaper_exits),
        TD(test_children_normal_exits_leave_nothing),
        TD(test_children_no_reaper_without_exec_jobs),
        TD(test_children_frozen_worker_outcome_dropped),
    };
#undef T

    drv_test_droverd_fixture = &opts;
    drv_test_filter_from_env();

    return cmocka_run_group_tests(tests, drv_test_redis_group_setup,
                                  drv_test_redis_group_teardown);
}
