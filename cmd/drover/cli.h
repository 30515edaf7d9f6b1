/*
 * cli.h -- private declarations of the admin CLI (cmd/drover).
 *
 * DESIGN. One process runs one command and exits, so the CLI talks to
 * Redis with pkg/redis's blocking client (no event loop; plain, unix or
 * TLS, host names): connect with a deadline, AUTH, SELECT, then a few
 * commands, each under the same timeout (DRV_CLI_TIMEOUT_MS). The CLI builds no Redis command itself:
 * pkg/queue's builders fill a struct drv_queue_cmds, drv__cli_run sends
 * it pipelined (append all, then read all), pkg/queue's parsers turn the
 * replies into plain structs, and the command prints them -- as a table
 * or text, or as one JSON document (--json, read commands only, in the
 * shapes of pkg/queue/queue_json.c).
 *
 * Flow: main.c parses the global options and picks the command; the
 * command parses its own arguments first (so bad usage is reported
 * without touching the config or the network), then asks for the config
 * (drv__cli_config) and the connection (drv__cli_connect).
 *
 * Every command returns 0 or a negative code, and main maps it to the
 * exit status:
 *
 *   0                      -> 0
 *   -EINVAL                -> 2  bad usage (message and usage already
 *                                printed on stderr)
 *   DRV_ECONFIG            -> 2  invalid config, or a job type it lacks
 *   anything else          -> 1  (message already printed on stderr)
 *
 * Results go to stdout, messages to stderr, always prefixed "drover: ".
 */
#ifndef DROVER_CLI_H
#define DROVER_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <hiredis/hiredis.h>

#include "drover/buf.h"
#include "drover/config.h"
#include "drover/json.h"
#include "drover/queue.h"

/* connect and per-command timeout */
#define DRV_CLI_TIMEOUT_MS 5000

struct drv_cli {
    unsigned magic;
#define DRV_CLI_MAGIC 0xc11d0e5aU
    const char *file;          /* borrowed from argv: -c FILE, or NULL */
    const char *redis_url;     /* borrowed from argv: --redis, or NULL */
    const char *prog;          /* borrowed: "drover enqueue" and so on,
                                  for messages */
    const char *usage;         /* borrowed, static: the command's usage */
    int json_ok;               /* the command takes --json (a read
                                  command) */
    int json;                  /* --json given: one JSON document on
                                  stdout instead of the text */
    int json_begun;            /* drv__cli_json_begin was called: doc
                                  and doc_w hold the document */
    struct drv_buf doc;        /* owned: the JSON document */
    struct drv_json doc_w;     /* writes into doc */
    struct drv_config *cfg;    /* owned: from file, or the defaults;
                                  NULL until drv__cli_config */
    struct drv_redis_sync *rs; /* owned: NULL until drv__cli_connect */
    char url_shown[512];       /* the URL with its password redacted */
    struct drv__cli_cluster *cluster; /* owned: with redis.cluster, the
                                  slot map and the node connections (cli_
                                  cluster.c); rs is then the first node
                                  that answered */
    int cluster_report;        /* with redis.cluster: TRYAGAIN and
                                  CLUSTERDOWN replies stand at once (a
                                  doctor reports them, it does not wait
                                  for the cluster to recover) */
    int64_t found_ns;          /* with redis.sentinel: when the primary of
                                  the connection was found (monotonic) */
    char primary[300];         /* with redis.sentinel: "host:port" of that
                                  primary, as the sentinel named it */
};

/* A command: parses argv (argv[0] is the command's name) and runs. */
typedef int drv_cli_run_fn(struct drv_cli *cli, int argc, char **argv);

/* -------------------------------------------------------- main.c */

/*
 * drv__cli_usage_error -- print "PROG: MESSAGE" and the command's usage
 * line on stderr; returns -EINVAL (exit 2).
 */
int drv__cli_usage_error(struct drv_cli *cli, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * drv__cli_args -- parse a command's argv (argv[0] is its name) as spec
 * says, into the pointers that follow it, one per word of spec and in
 * its order, ended by NULL:
 *
 *   rc = drv__cli_args(cli, argc, argv, "QUEUE ID --field=",
 *                      &queue, &id, &field, NULL);
 *
 * spec is words apart by one space, as in the usage line:
 *   NAME       an operand that must be given ("missing NAME"); a
 *              const char ** gets it
 *   [NAME]     an operand that may be left out: NULL then; operands are
 *              taken in order, so the optional ones come last
 *   NAME...    any number of further operands, each checked as NAME
 *              is; an int * gets the index in argv of the first (argc
 *              when none). Without it, a further operand is bad usage.
 *   --name     a flag: "" when given
 *   --name=    an option with a value: the value (the last one given)
 *   -x|--name= the same, with the short option -x too
 * An option not given leaves its pointer as it was: NULL, or a default.
 * An operand named QUEUE is checked as a queue name; one named ID must
 * not be empty. The shared options (-c/--config, --redis, and --json
 * when cli->json_ok) are taken too, into cli. Options may come before,
 * between or after the operands; "--" ends them. Returns 0, or -EINVAL
 * with the message and the usage printed.
 */
int drv__cli_args(struct drv_cli *cli, int argc, char **argv,
                  const char *spec, ...) __attribute__((sentinel));

/*
 * drv__cli_args_connect -- drv__cli_args, then drv__cli_connect. 0, or
 * the first one's error (printed).
 */
int drv__cli_args_connect(struct drv_cli *cli, int argc, char **argv,
                          const char *spec, ...) __attribute__((sentinel));

/* drv__cli_check_queue -- validate a QUEUE operand; -EINVAL (usage) if
 * bad. */
int drv__cli_check_queue(struct drv_cli *cli, const char *queue);

/* -------------------------------------------------------- cli_redis.c */

/*
 * drv__cli_config -- load cli->file (or the defaults when there is none)
 * into cli->cfg and apply --redis. Prints every error; returns 0,
 * DRV_ECONFIG (bad file or URL) or -EINVAL (bad --redis, usage).
 */
int drv__cli_config(struct drv_cli *cli);

/*
 * drv__cli_connect -- drv__cli_config if not done yet, then connect to
 * cli->cfg->redis.url, or with redis.sentinel to the primary the
 * sentinels name (drv__cli_sentinel_url) (blocking, with
 * DRV_CLI_TIMEOUT_MS for the connect and for every command; TLS with
 * redis.tls for rediss://), AUTH (URL password, else
 * $DROVER_REDIS_PASSWORD; with the URL's user) and SELECT. Prints a
 * message naming the redacted URL on failure and returns DRV_EDOWN (or
 * DRV_EREDIS when AUTH/SELECT is refused, DRV_ECONFIG for a bad URL).
 */
int drv__cli_connect(struct drv_cli *cli);

/* -------------------------------------------------------- cli_cluster.c */

struct drv__cli_cluster;

/*
 * drv__cli_cluster_connect -- with cli->cfg->redis.cluster set: connect to
 * the first configured node that answers and read the slot map; cli->rs
 * becomes that connection and cli->cluster the map (a previous one is
 * freed). 0, or <0 with err.
 */
int drv__cli_cluster_connect(struct drv_cli *cli,
                             const struct drv_redis_tls *tls,
                             struct drv_err *err);

/*
 * drv__cli_cluster_run -- drv_redis_sync_run of a batch on a cluster: each
 * command (a MULTI ... EXEC block as one) on the master of its key's
 * slot, MOVED and ASK followed, TRYAGAIN and CLUSTERDOWN waited out for a
 * few seconds. 0 with the n replies in out, or <0 with err and every
 * out[i] NULL.
 */
int drv__cli_cluster_run(struct drv_cli *cli, size_t n,
                         const struct drv_argv *cmds, redisReply **out,
                         struct drv_err *err);

/* drv__cli_cluster_free -- close its node connections; NULL does nothing. */
void drv__cli_cluster_free(struct drv__cli_cluster *cl);

/* -------------------------------------------------------- cli_sentinel.c */

/*
 * drv__cli_sentinel_url -- with cli->cfg->redis.sentinel set: find the
 * primary through the sentinels (in order, the unreachable skipped, ROLE
 * checked; asked again for a few seconds while the node named is not the
 * primary; TLS with tls for rediss://) and write redis.url with its
 * host and port put in into out (size n). Returns 0, or DRV_EDOWN / DRV_ECONFIG (message printed).
 */
struct drv_redis_tls;
int drv__cli_sentinel_url(struct drv_cli *cli, const struct drv_redis_tls *tls,
                          char *out, size_t n);

/*
 * drv__cli_sentinel_stale -- with redis.sentinel: the primary of the open
 * connection was found more than DRV_CLI_SENTINEL_RECHECK_MS ago, so a
 * long-lived user (drover web) should connect anew (and so ask the
 * sentinels again) before its next request: after a failover the old
 * primary keeps answering for seconds before it becomes a replica. 0
 * without sentinel or connection.
 */
#define DRV_CLI_SENTINEL_RECHECK_MS 1000
int drv__cli_sentinel_stale(const struct drv_cli *cli);

/*
 * drv__cli_sentinel_survey -- for `drover doctor`: ask every sentinel of
 * redis.sentinel.addrs (each with a short deadline) for the primary and
 * its view of the master (SENTINEL get-master-addr-by-name, SENTINEL
 * master), one entry of out per address, in order; an unreachable one
 * gets its error. TLS with tls for rediss://.
 */
struct drv_queue_doctor_sentinel;
void drv__cli_sentinel_survey(struct drv_cli *cli,
                              const struct drv_redis_tls *tls,
                              struct drv_queue_doctor_sentinel *out);

/* drv__cli_disconnect -- close the connection and free the config. */
void drv__cli_disconnect(struct drv_cli *cli);

/* drv__cli_free_replies -- freeReplyObject each non-NULL out[i], then
 * free out (NULL does nothing). */
void drv__cli_free_replies(size_t n, redisReply **out);

/*
 * drv__cli_run -- send the batch c (pipelined) and read its replies into
 * a new array *out of c->n replies (free with drv__cli_free_replies).
 * Returns 0, or DRV_EDOWN (message printed, *out NULL).
 */
int drv__cli_run(struct drv_cli *cli, const struct drv_queue_cmds *c,
                 redisReply ***out);

/* drv__cli_failed -- print "PROG: MESSAGE" of err; returns err->code. */
int drv__cli_failed(struct drv_cli *cli, const struct drv_err *err);

/* drv__cli_parsed -- rc as a reply parser returned it; when it is < 0,
 * print err first (drv__cli_failed). For `rc = drv__cli_parsed(cli,
 * drv_queue_X_parse(r, n, ..., &err), &err);`. */
int drv__cli_parsed(struct drv_cli *cli, int rc, const struct drv_err *err);

/* -------------------------------------------------------- cli_util.c */

/* drv__cli_time -- Unix ms as "2024-11-25T18:40:07.123Z" into buf. */
char *drv__cli_time(int64_t ms, char *buf, size_t n);

/* drv__cli_age -- a duration in ms as "3s", "5m12s", "2h3m", "4d1h". */
char *drv__cli_age(int64_t ms, char *buf, size_t n);

/*
 * The command's one JSON document (--json): drv__cli_json_begin returns
 * its writer (once per command); main ends the document when the
 * command returns (drv__cli_json_end), writes it and a newline to stdout
 * and frees it. A command that began none prints none.
 */
struct drv_json *drv__cli_json_begin(struct drv_cli *cli);
void drv__cli_json_end(struct drv_cli *cli);

/*
 * A text table: rows of cells, printed with every column as wide as its
 * widest cell, two spaces apart. Columns whose bit is set in right_mask
 * are right-aligned (numbers).
 */
struct drv_cli_table {
    unsigned magic;
#define DRV_CLI_TABLE_MAGIC 0x7ab1e000U
    size_t ncols;       /* cells per row */
    unsigned right_mask; /* bit i: column i right-aligned */
    char **cells;       /* owned: nrows * ncols strings, each owned */
    size_t nrows;       /* rows added, the header included */
    size_t cap;         /* allocated rows */
};

void drv__cli_table_init(struct drv_cli_table *t, size_t ncols,
                         unsigned right_mask);
void drv__cli_table_fini(struct drv_cli_table *t);
/* drv__cli_table_add -- add a row of ncols cells (copied). */
void drv__cli_table_add(struct drv_cli_table *t, const char *const *cells);
/* drv__cli_table_print -- write the rows; no trailing spaces. */
void drv__cli_table_print(const struct drv_cli_table *t, FILE *fp);

/* -------------------------------------------------------- commands */

int drv__cli_enqueue(struct drv_cli *cli, int argc, char **argv);
int drv__cli_stats(struct drv_cli *cli, int argc, char **argv);
int drv__cli_workers(struct drv_cli *cli, int argc, char **argv);
int drv__cli_dead(struct drv_cli *cli, int argc, char **argv);
int drv__cli_pause(struct drv_cli *cli, int argc, char **argv);
int drv__cli_resume(struct drv_cli *cli, int argc, char **argv);
int drv__cli_result(struct drv_cli *cli, int argc, char **argv);
int drv__cli_check_config(struct drv_cli *cli, int argc, char **argv);
/* cli_doctor.c: checks the Redis for drover */
int drv__cli_doctor(struct drv_cli *cli, int argc, char **argv);
int drv__cli_schedules(struct drv_cli *cli, int argc, char **argv);
/* cli_admin.c: a result hash as `drover result` prints it; one of its
 * "name: value" lines (times, escapes and multi-line values as there) */
void drv__cli_print_result(const struct drv_job *res);
void drv__cli_print_field(const char *name, const char *v, size_t len);
/* cli_cancel.c, cli_wait.c */
int drv__cli_cancel(struct drv_cli *cli, int argc, char **argv);
int drv__cli_wait(struct drv_cli *cli, int argc, char **argv);
/* cli_pipeline.c: a graph pipeline run, its cancel */
int drv__cli_pipeline(struct drv_cli *cli, int argc, char **argv);
/* drv__cli_graph_cancel -- add to c the cancel of the graph run id on
 * queue: its waiting nodes never start, its items stop being released
 * (nothing happens when there is no such run). */
void drv__cli_graph_cancel(struct drv_cli *cli, struct drv_queue_cmds *c,
                           const char *queue, const char *id);
/* drv__cli_graph_cancelled -- that cancel's reply r into gc, then, on
 * Redis Cluster, take back gc's entries on other queues (each in its own
 * slot), counted into gc. 0, or <0 with err. */
struct drv_queue_graph_cancelled;
int drv__cli_graph_cancelled(struct drv_cli *cli, const redisReply *r,
                             struct drv_queue_graph_cancelled *gc,
                             struct drv_err *err);
/* web.c: the dashboard's HTTP server */
int drv__cli_web(struct drv_cli *cli, int argc, char **argv);

#endif
