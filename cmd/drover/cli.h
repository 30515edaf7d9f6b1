/*
 * cli.h -- private declarations of the admin CLI (cmd/drover).
 *
 * DESIGN. One process runs one command and exits, so the CLI talks to
 * Redis with hiredis's blocking API (no event loop): connect with a
 * deadline, AUTH, SELECT, then a few commands, each under the same
 * timeout (DRV_CLI_TIMEOUT_MS). Commands that need several replies
 * pipeline them (append all, then read all).
 *
 * Flow: main.c parses the global options and picks the command; the
 * command parses its own arguments first (so bad usage is reported
 * without touching the config or the network), then asks for the config
 * (drv__cli_config) and the connection (drv__cli_connect).
 *
 * Every command returns 0 or a negative code, and main maps it to the
 * exit status (INTERFACE.md "Binaries"):
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
#include "drover/queue.h"

/* connect and per-command timeout */
#define DRV_CLI_TIMEOUT_MS 5000

/* a worker whose beat is older than this is stale (INTERFACE.md) */
#define DRV_CLI_STALE_MS 60000

struct drv_cli {
    unsigned magic;
#define DRV_CLI_MAGIC 0xc11d0e5aU
    const char *file;          /* borrowed from argv: -c FILE, or NULL */
    const char *redis_url;     /* borrowed from argv: --redis, or NULL */
    const char *prog;          /* borrowed: "drover enqueue" and so on,
                                  for messages */
    const char *usage;         /* borrowed, static: the command's usage */
    struct drv_config *cfg;    /* owned: from file, or the defaults;
                                  NULL until drv__cli_config */
    redisContext *rc;          /* owned: NULL until drv__cli_connect */
    char url_shown[512];       /* the URL with its password redacted */
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
 * drv__cli_getopt -- getopt_long over the command's argv with the options
 * every command shares (-c/--config, --redis) added to longopts' caller
 * list. Returns the option character as getopt_long does, -1 at the end,
 * and -EINVAL (usage already printed) for an unknown option or a missing
 * argument. Options may come before, between or after the operands; "--"
 * ends them. Call with *first = 1 the first time (it resets getopt).
 */
int drv__cli_getopt(struct drv_cli *cli, int argc, char **argv,
                    const char *shortopts, const struct option *longopts,
                    int *first);

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
 * cli->cfg->redis.url (blocking, with DRV_CLI_TIMEOUT_MS for the connect
 * and for every command), AUTH (URL password, else
 * $DROVER_REDIS_PASSWORD; with the URL's user) and SELECT. Prints a
 * message naming the redacted URL on failure and returns DRV_EDOWN (or
 * DRV_EREDIS when AUTH/SELECT is refused, DRV_ECONFIG for a bad URL).
 */
int drv__cli_connect(struct drv_cli *cli);

/* drv__cli_disconnect -- close the connection and free the config. */
void drv__cli_disconnect(struct drv_cli *cli);

/*
 * drv__cli_command -- send one command and read its reply (owned by the
 * caller: freeReplyObject). NULL when the connection failed (message
 * printed; the connection is unusable after that).
 */
redisReply *drv__cli_command(struct drv_cli *cli, const struct drv_argv *a);

/* drv__cli_cmd -- drv__cli_command for NUL-terminated strings, ended by
 * NULL. */
redisReply *drv__cli_cmd(struct drv_cli *cli, ...)
    __attribute__((sentinel));

/*
 * drv__cli_pipeline -- send n commands in one write and read the n
 * replies into out[0..n) (owned by the caller). Returns 0, or DRV_EDOWN
 * with every out[i] NULL (message printed).
 */
int drv__cli_pipeline(struct drv_cli *cli, size_t n,
                      const struct drv_argv *cmds, redisReply **out);

/* drv__cli_free_replies -- freeReplyObject each non-NULL out[i]. */
void drv__cli_free_replies(size_t n, redisReply **out);

/*
 * drv__cli_reply_check -- 0 when r has the type want (or any non-error
 * type when want is -1); otherwise print "PROG: WHAT: <error text>" (or
 * "unexpected reply") and return DRV_EREDIS / DRV_EPROTO.
 */
int drv__cli_reply_check(struct drv_cli *cli, const redisReply *r, int want,
                         const char *what);

/* -------------------------------------------------------- cli_util.c */

/* drv__cli_time -- Unix ms as "2024-11-25T18:40:07.123Z" into buf. */
char *drv__cli_time(int64_t ms, char *buf, size_t n);

/* drv__cli_age -- a duration in ms as "3s", "5m12s", "2h3m", "4d1h". */
char *drv__cli_age(int64_t ms, char *buf, size_t n);

/*
 * drv__cli_quote -- append s[0..len) to b as a logfmt value: bare when it
 * holds only printable bytes other than space, '"', '=' and '\\', else
 * in double quotes with \" \\ \n \t \r and \xNN escapes. At most max
 * bytes of s are shown (0 = all); a cut value ends in "...".
 */
void drv__cli_quote(struct drv_buf *b, const char *s, size_t len,
                    size_t max);

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

#endif
