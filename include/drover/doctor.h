/*
 * drover/doctor.h -- what drover needs from a Redis, and the checks of
 * `drover doctor` (pkg/queue/queue_doctor.c).
 *
 * THE ACL LIST. drv_queue_acl_cmds is the one list of the commands
 * droverd, the drover CLI and `drover web` send (directly, inside
 * MULTI/EXEC, or from their Lua scripts, which Redis checks against the
 * same ACL). drv_queue_acl_rule turns it into the one-line
 * `ACL SETUSER ...` rule the documentation shows; the tests create their
 * restricted user from the same function and compare the documented line
 * with it, so the two cannot drift. A new command sent anywhere must be
 * added to the list (the ACL integration test fails with NOPERM
 * otherwise).
 *
 * THE CHECKS. drv_queue_doctor_checks is a table: each check appends the
 * commands it needs to one batch (sent pipelined by the caller, who owns
 * the connection) and then judges exactly its own replies, writing
 * "ok: ...", "problem: ..." or "unchecked: ..." lines into a report.
 * A check that cannot run (a command refused by the ACL, a managed Redis
 * hiding a value) says "unchecked", which is not a problem. Build and
 * judge are pure: the unit tests feed them replies made from RESP text.
 */
#ifndef DROVER_DOCTOR_H
#define DROVER_DOCTOR_H

#include <stddef.h>
#include <stdint.h>

#include "drover/buf.h"
#include "drover/queue.h"

struct redisReply;

/* ------------------------------------------------------------- the ACL */

/* One command drover sends. */
struct drv_queue_acl_cmd {
    const char *rule;   /* ACL rule granting it: "+xadd", "+client|id" */
    const char *dryrun; /* the command with sample arguments, split at
                           spaces; the word KEY stands for a key of the
                           checked queue (for ACL DRYRUN) */
};

extern const struct drv_queue_acl_cmd drv_queue_acl_cmds[];
extern const size_t drv_queue_acl_ncmds;

/*
 * drv_queue_acl_rule -- append to b the rule a drover user needs:
 * `ACL SETUSER USER on >PASSWORD ~PREFIX:* -@all +cmd ...` (keys under
 * the prefix, the commands of drv_queue_acl_cmds, nothing more).
 */
void drv_queue_acl_rule(struct drv_buf *b, const char *user,
                        const char *password, const char *prefix);

/* ------------------------------------------------------------ the checks */

/*
 * What one sentinel said, for the "sentinels" check: the caller asks each
 * configured sentinel SENTINEL get-master-addr-by-name MASTER and
 * SENTINEL master MASTER (drv_queue_doctor_sentinel_parse reads the
 * replies), or notes why it could not.
 */
#define DRV_QUEUE_DOCTOR_SENTINEL_TEXT 256
struct drv_queue_doctor_sentinel {
    const char *addr;          /* as configured (redis.sentinel.addrs) */
    char error[DRV_QUEUE_DOCTOR_SENTINEL_TEXT]; /* "" when it answered;
                                  else why not (unreachable, refused, the
                                  master unknown to it) */
    char primary[DRV_QUEUE_DOCTOR_SENTINEL_TEXT]; /* "host:port" it names */
    long long quorum;          /* its quorum for the master; -1 unknown */
    long long known;           /* sentinels it knows, itself included
                                  (num-other-sentinels + 1); -1 unknown */
    char flags[64];            /* the master's flags as it sees them
                                  ("master", "master,s_down", ...) */
};

/*
 * drv_queue_doctor_sentinel_parse -- fill s (addr already set, the rest
 * zeroed) from the replies of SENTINEL get-master-addr-by-name (addr_r)
 * and SENTINEL master (master_r); an error reply or an odd shape goes
 * into s->error. Pure.
 */
void drv_queue_doctor_sentinel_parse(struct drv_queue_doctor_sentinel *s,
                                     const struct redisReply *addr_r,
                                     const struct redisReply *master_r);

/* What the checks look at. Borrowed for the duration of the calls. */
struct drv_queue_doctor_opts {
    const char *prefix;            /* redis.prefix */
    const char *const *queues;     /* the queues to check */
    size_t nqueues;
    const char *acl_user;          /* whose permissions to check */
    int64_t dead_max;              /* worker.dead_max (0 = no bound) */
    int64_t skew_max_ms;           /* a worker clock off by more than
                                      this is a problem (2000) */
    /* redis.sentinel (nsentinels 0: not configured, no line) */
    const char *sentinel_master;   /* redis.sentinel.master */
    const struct drv_queue_doctor_sentinel *sentinels; /* one per addr */
    size_t nsentinels;
    const char *primary;           /* "host:port" the connection uses */
    /* TLS (tls 0: a plain connection, no line) */
    int tls;
    int64_t cert_not_after;        /* the server certificate's notAfter,
                                      Unix seconds; -1 when unknown */
    int64_t now_s;                 /* the time to judge it against */
    int64_t cert_warn_s;           /* expiring sooner is a problem
                                      (DRV_QUEUE_DOCTOR_CERT_WARN_S) */
    int cluster;                   /* redis.cluster is set: check the
                                      cluster's state and that each
                                      queue's slot is served */
};

/* A server certificate that expires within 14 days is a problem. */
#define DRV_QUEUE_DOCTOR_CERT_WARN_S (14 * 86400)

/* The levels of a report line. */
enum drv_queue_doctor_level {
    DRV_QUEUE_DOCTOR_OK = 0,     /* "ok: ..." */
    DRV_QUEUE_DOCTOR_UNCHECKED,  /* "unchecked: ...": could not tell */
    DRV_QUEUE_DOCTOR_PROBLEM     /* "problem: ...": what to change */
};

/* The lines the checks wrote, one a line, in order. */
struct drv_queue_doctor_report {
    unsigned magic;
#define DRV_QUEUE_DOCTOR_REPORT_MAGIC 0xd0c7012eU
    struct drv_buf text;  /* owned: the lines, each ending in '\n' */
    int problems;         /* "problem:" lines */
    int unchecked;        /* "unchecked:" lines */
};

void drv_queue_doctor_report_init(struct drv_queue_doctor_report *rep);
void drv_queue_doctor_report_fini(struct drv_queue_doctor_report *rep);

/* drv_queue_doctor_say -- add one line "LEVEL: MESSAGE" to rep. */
void drv_queue_doctor_say(struct drv_queue_doctor_report *rep,
                          enum drv_queue_doctor_level level,
                          const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * One check. build appends the commands it needs to c and returns how
 * many (NULL: none; a check may judge from opts, or from what its caller
 * learnt elsewhere); judge gets exactly those replies, in order (a reply
 * may be a Redis error: the check decides what it means) and writes its
 * lines into rep.
 *
 * A check of one INFO field has neither: it names the section (info) and
 * the field; its one command is INFO <info>, and judge_info gets the
 * field's value and the whole reply (for other fields of the section)
 * after an "unchecked" line has been written instead when INFO was
 * refused or lacks the field ("WHAT: INFO <info> refused (...)").
 *
 * Checks that need what the connection knows take it through opts and
 * build no command: "sentinels" (each sentinel's idea of the primary
 * against the one connected, and its quorum) and "tls" (the server
 * certificate's notAfter). "cluster" (on a Redis Cluster only) sends
 * CLUSTER INFO and CLUSTER SLOTS and judges the state and each queue's
 * slot against the masters serving it.
 */
struct drv_queue_doctor_check {
    const char *name;   /* "version", "eviction", ... */
    size_t (*build)(struct drv_queue_cmds *c,
                    const struct drv_queue_doctor_opts *o);
    void (*judge)(struct redisReply *const *r, size_t n,
                  const struct drv_queue_doctor_opts *o,
                  struct drv_queue_doctor_report *rep);
    const char *info;   /* INFO check: the section, or NULL */
    const char *field;  /* INFO check: the field judged */
    const char *what;   /* INFO check: what the field tells, for the
                           "unchecked" lines */
    void (*judge_info)(const char *value, const redisReply *info,
                       struct drv_queue_doctor_report *rep);
};

/* The checks, in the order they run; ends with a NULL name. */
extern const struct drv_queue_doctor_check drv_queue_doctor_checks[];

/*
 * drv_queue_doctor_check_build -- check ck's commands into c; returns how
 * many. drv_queue_doctor_check_judge -- hand ck its n replies.
 */
size_t drv_queue_doctor_check_build(const struct drv_queue_doctor_check *ck,
                                    struct drv_queue_cmds *c,
                                    const struct drv_queue_doctor_opts *o);
void drv_queue_doctor_check_judge(const struct drv_queue_doctor_check *ck,
                                  struct redisReply *const *r, size_t n,
                                  const struct drv_queue_doctor_opts *o,
                                  struct drv_queue_doctor_report *rep);

/*
 * drv_queue_doctor_build -- every check's commands into c; counts[i]
 * gets how many check i appended (counts holds one per check).
 * drv_queue_doctor_judge -- hand each check its replies (r holds c->n
 * replies in the order built) and collect the lines in rep.
 */
void drv_queue_doctor_build(struct drv_queue_cmds *c,
                            const struct drv_queue_doctor_opts *o,
                            size_t *counts);
void drv_queue_doctor_judge(struct redisReply *const *r, size_t n,
                            const struct drv_queue_doctor_opts *o,
                            const size_t *counts,
                            struct drv_queue_doctor_report *rep);

/* drv_queue_doctor_nchecks -- the number of checks in the table. */
size_t drv_queue_doctor_nchecks(void);

#endif
