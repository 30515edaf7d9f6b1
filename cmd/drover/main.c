/*
 * drover -- the admin CLI.
 *
 *   drover [-c FILE] [--redis URL] COMMAND ...
 *   drover --version [--verbose]
 *
 * Parses the global options, picks the command, runs it and maps its
 * result to the exit status: 0 ok, 2 bad usage or invalid config, 1
 * anything else (see cli.h for the mapping and the overall design).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "drover/common.h"
#include "drover/config.h"
#include "drover/error.h"
#include "drover/version.h"

#include "cli.h"

/* One command of the table below. */
struct command {
    const char *name;      /* as typed: "enqueue" */
    const char *prog;      /* for messages: "drover enqueue" */
    const char *usage;     /* "usage: ..." lines */
    const char *help;      /* what it does, options; after the usage */
    int json;              /* a read command: takes --json */
    drv_cli_run_fn *run;   /* the command */
};

static const char global_usage[] =
    "usage: drover [-c FILE] [--redis URL] COMMAND [ARGS]\n"
    "       drover --version [--verbose]\n";

static const char global_help[] =
    "\n"
    "commands:\n"
    "  enqueue QUEUE JOB [field=value ...] [--delay D] [--id ID]\n"
    "  enqueue QUEUE --pipeline NAME [field=value ...] [--delay D] "
    "[--id ID]\n"
    "                        add a job (or a pipeline); prints its id\n"
    "  stats [QUEUE ...] [--json]\n"
    "                        per queue: ready, running, delayed, dead,\n"
    "                        processed, failed, retried, paused,\n"
    "                        dead_max\n"
    "  dead list QUEUE [--count N] [--after ENTRY_ID] [--json]\n"
    "                        dead-lettered jobs, oldest first\n"
    "  dead retry QUEUE (ID|--all)\n"
    "                        put dead jobs back on their queue\n"
    "  dead purge QUEUE [--older-than DURATION]\n"
    "                        delete the dead jobs of QUEUE (the older ones)\n"
    "  pause QUEUE           workers stop fetching from QUEUE\n"
    "  resume QUEUE          ... and start again\n"
    "  workers [--json]      registered workers; stale ones marked\n"
    "  result QUEUE ID [--field NAME | --json]\n"
    "                        the kept result of a job\n"
    "  cancel QUEUE ID [--json]\n"
    "                        cancel a waiting, delayed or running job\n"
    "  wait QUEUE ID [--timeout D] [--json]\n"
    "                        block until the job's (or the graph\n"
    "                        run's) final outcome\n"
    "  pipeline QUEUE ID [--cancel] [--json]\n"
    "                        a graph pipeline run: each node's state,\n"
    "                        attempts, times, errors; --cancel ends it\n"
    "  schedules [--json]    the config's schedules: spec, zone, queue,\n"
    "                        job, last and next tick\n"
    "  check-config FILE     validate a config file\n"
    "  doctor [QUEUE ...] [--user NAME] [--acl-rule]\n"
    "                        check the Redis for drover: version,\n"
    "                        eviction, AOF, ACL, keys, worker clocks\n"
    "  web [--listen HOST:PORT] [--token-file FILE]\n"
    "                        the web dashboard (default 127.0.0.1:8080)\n"
    "  help [COMMAND]        this text, or one command's\n"
    "\n"
    "options (before or after COMMAND):\n"
    "  -c, --config FILE     config file; without one: redis.url\n"
    "                        " DRV_CONFIG_REDIS_URL ", prefix "
    DRV_CONFIG_REDIS_PREFIX ",\n"
    "                        queues [" DRV_CONFIG_QUEUE "], any job type\n"
    "  --redis URL           Redis URL, overrides redis.url:\n"
    "                        redis://[user[:pass]@]IP[:port][/db] or\n"
    "                        unix:///path.sock[?db=N]; the password may\n"
    "                        come from $DROVER_REDIS_PASSWORD instead\n"
    "  --version             print the version and exit\n"
    "  --verbose             with --version: also the libraries' versions\n"
    "  --json                (stats, workers, dead list, result,\n"
    "                        schedules, pipeline) one JSON document on\n"
    "                        stdout\n"
    "                        instead of the text\n"
    "  -h, --help            help; `drover COMMAND --help` for one "
    "command\n"
    "\n"
    "exit status: 0 ok, 1 failure, 2 bad usage or invalid config\n";

static int run_help(struct drv_cli *cli, int argc, char **argv);

static const struct command commands[] = {
    {"enqueue", "drover enqueue",
     "usage: drover enqueue QUEUE JOB [field=value ...] [--delay D] "
     "[--id ID]\n"
     "       drover enqueue QUEUE --pipeline NAME [field=value ...] "
     "[--delay D] [--id ID]\n",
     "\nAdds a job to QUEUE and prints its id: the --id given, else the\n"
     "new stream entry's id (or a generated id when delayed).\n"
     "  field=value     a job argument, split at the first '='; the value\n"
     "                  is taken byte for byte and may be empty\n"
     "  --delay D       run no earlier than D from now (250ms, 30s, 5m,\n"
     "                  1h, 1d; a bare number is seconds)\n"
     "  --id ID         the job's id (its result key); jobs that share an\n"
     "                  id are still each run, delayed or not\n"
     "  --pipeline NAME enqueue the pipeline NAME instead of a job\n"
     "With -c, JOB (or NAME) must be declared in the config.\n",
     0, drv__cli_enqueue},
    {"stats", "drover stats",
     "usage: drover stats [QUEUE ...] [--json]\n",
     "\nOne line per queue (the config's queues unless named):\n"
     "  READY      entries not yet delivered to a worker\n"
     "  RUNNING    delivered, not yet acknowledged\n"
     "  DELAYED    waiting for a retry or their scheduled time\n"
     "  DEAD       entries in the dead stream\n"
     "  PROCESSED  jobs that succeeded (all time)\n"
     "  FAILED     attempts that failed or timed out (all time)\n"
     "  RETRIED    retries scheduled (all time)\n"
     "  PAUSED     yes when the queue is paused\n"
     "  DEAD_MAX   dead entries kept per queue (worker.dead_max of the\n"
     "             config); older ones are trimmed as new ones come\n"
     "  CANCELLED  jobs cancelled with drover cancel (all time)\n"
     "--json prints one JSON document instead (doc/cli-json.md), which\n"
     "also counts dead_total: jobs dead-lettered, all time.\n",
     1, drv__cli_stats},
    {"dead", "drover dead",
     "usage: drover dead list QUEUE [--count N] [--after ENTRY_ID] "
     "[--json]\n"
     "       drover dead retry QUEUE (ID|--all)\n"
     "       drover dead purge QUEUE [--older-than DURATION]\n",
     "\nlist   one line per dead entry, oldest first: entry id, then\n"
     "       id, job, attempts, failed_at, error and the job's other\n"
     "       fields as logfmt (argument values cut at 1 KiB);\n"
     "       --count N shows the first N only, --after ENTRY_ID those\n"
     "       after that entry (the next page); --json prints one JSON\n"
     "       document: every field, byte for byte (see doc/cli-json.md)\n"
     "retry  moves the entry whose job id (or entry id) is ID, or every\n"
     "       entry with --all, back to the queue: same id, attempt reset\n"
     "       to 0; prints how many moved (none for ID: exit 1)\n"
     "purge  deletes the dead stream; prints how many entries it held;\n"
     "       --older-than DURATION (30m, 7d) deletes only the entries\n"
     "       written longer ago than that\n",
     0, drv__cli_dead},
    {"pause", "drover pause",
     "usage: drover pause QUEUE\n",
     "\nWorkers stop fetching from QUEUE within a second; running jobs\n"
     "finish. Undo with `drover resume QUEUE`.\n",
     0, drv__cli_pause},
    {"resume", "drover resume",
     "usage: drover resume QUEUE\n",
     "\nWorkers fetch from QUEUE again.\n",
     0, drv__cli_resume},
    {"workers", "drover workers",
     "usage: drover workers [--json]\n",
     "\nOne line per registered worker. BEAT is the time since its last\n"
     "heartbeat (every 5 s); STATE is stale when that is over 60 s\n"
     "(the worker is gone; any worker removes the entry).\n"
     "--json prints one JSON document instead (doc/cli-json.md).\n",
     1, drv__cli_workers},
    {"result", "drover result",
     "usage: drover result QUEUE ID [--field NAME | --json]\n",
     "\nPrints the result kept for job ID (status, attempts, finished_at,\n"
     "error, result). Kept only for job types with result_ttl > 0, until\n"
     "it expires. --field NAME prints that field's raw value only.\n"
     "Exit 1 when there is none; it then says where the job waits, if it\n"
     "does (delayed, ready, running or dead). --json prints one JSON\n"
     "document with the result (or null) and where the job waits.\n",
     1, drv__cli_result},
    {"cancel", "drover cancel",
     "usage: drover cancel QUEUE ID [--json]\n",
     "\nCancels every unfinished job of QUEUE whose id (or stream entry id)\n"
     "is ID: a waiting or delayed one is removed and never starts; a\n"
     "running one is cancelled by the worker running it within a second\n"
     "(an exec child is killed) and not retried. Their result hash gets\n"
     "status cancelled (kept 24 h, or result_ttl when longer); stats count\n"
     "them as cancelled. The steps of a pipeline run share its id: the\n"
     "whole run is cancelled. A job that succeeds before its worker sees\n"
     "the cancel stays ok.\n"
     "Exit 0 when a job was found, 1 when no unfinished job has that id.\n"
     "--json prints one JSON document (doc/cli-json.md).\n",
     1, drv__cli_cancel},
    {"wait", "drover wait",
     "usage: drover wait QUEUE ID [--timeout D] [--json]\n",
     "\nBlocks until job ID has its final outcome (ok, dead or cancelled)\n"
     "and prints its result like `drover result`. Needs result_ttl > 0 on\n"
     "the job type (else no outcome is kept to wait for). When ID is a\n"
     "graph pipeline run, blocks until the run ends (ok, dead or\n"
     "cancelled) and prints its status, result, error and each node's\n"
     "state.\n"
     "  --timeout D     give up after D (default 30s; 0 = wait forever)\n"
     "Exit 0 when the outcome is ok, 1 for any other outcome, a timeout,\n"
     "or a job or run drover knows nothing of. --json prints the result as\n"
     "`drover result --json` does, plus \"timed_out\" (for a run: queue,\n"
     "id, timed_out, status and \"run\" as `drover pipeline --json`).\n",
     1, drv__cli_wait},
    {"pipeline", "drover pipeline",
     "usage: drover pipeline QUEUE ID [--cancel] [--json]\n",
     "\nThe run ID of a graph pipeline enqueued on QUEUE: its status\n"
     "(running, ok, dead, cancelled), then one line per node:\n"
     "  STATE     waiting, queued (its entry is out), running (a\n"
     "            for_each node with items out), ok, skipped, dead,\n"
     "            cancelled, standby (on_failure, not needed)\n"
     "  ATTEMPTS  attempts of its last job; QUEUE where it ran\n"
     "  STARTED, FINISHED, ITEMS (done/all of a for_each), ERROR\n"
     "  --cancel  first cancel the run: waiting nodes never start, no\n"
     "            more items are released, entries not yet delivered\n"
     "            and delayed retries are removed, delivered ones are\n"
     "            marked for their workers; exit 1 when the run had\n"
     "            ended already\n"
     "--json prints one JSON document instead (doc/cli-json.md).\n"
     "Exit 1 when there is no such run.\n",
     1, drv__cli_pipeline},
    {"schedules", "drover schedules",
     "usage: drover schedules [--json]\n",
     "\nOne line per schedule of the config (-c FILE):\n"
     "  NAME      the key under schedules:\n"
     "  SPEC      cron FIVE FIELDS, or every INTERVAL\n"
     "  TIMEZONE  the zone its cron spec is read in\n"
     "  QUEUE     where its ticks are enqueued\n"
     "  JOB       the job type (or pipeline NAME) each tick enqueues\n"
     "  LAST      the last tick enqueued (from Redis), - for never\n"
     "  NEXT      the next tick\n"
     "Times are local in the schedule's zone, with their UTC offset.\n"
     "--json prints one JSON document instead (Unix ms; doc/cli-json.md).\n",
     1, drv__cli_schedules},
    {"check-config", "drover check-config",
     "usage: drover check-config FILE\n",
     "\nPrints \"FILE: ok\", or every error as FILE:LINE:COL: KEY: message\n"
     "and exits 2.\n",
     0, drv__cli_check_config},
    {"doctor", "drover doctor",
     "usage: drover doctor [QUEUE ...] [--user NAME] [--acl-rule]\n",
     "\nChecks the Redis for drover and prints one line per finding:\n"
     "\"ok: ...\", \"problem: ...\" (with what to change) or\n"
     "\"unchecked: ...\" (could not tell, e.g. a command the ACL\n"
     "refuses; not a problem). Checks: the Redis version (6.2 or newer),\n"
     "maxmemory-policy (noeviction), AOF (appendonly yes), the ACL\n"
     "user's permissions (ACL DRYRUN, Redis 7.0+, against every command\n"
     "drover sends), each queue's keys (types, consumer group, dead\n"
     "entries kept against worker.dead_max) and the workers' clocks\n"
     "against Redis's (more than 2 s off, stale entries).\n"
     "Exit 0 when there is no problem, 1 when there is any.\n"
     "  QUEUE ...       the queues to check (default: the config's)\n"
     "  --user NAME     the ACL user to check (default: the URL's user,\n"
     "                  else default); checking another user needs a\n"
     "                  connection allowed to run ACL DRYRUN\n"
     "  --acl-rule      print the ACL SETUSER line a drover user needs\n"
     "                  (keys under redis.prefix) and exit\n",
     0, drv__cli_doctor},
    {"web", "drover web",
     "usage: drover web [--listen HOST:PORT] [--token-file FILE]\n",
     "\nServes the dashboard and its JSON API for the config's queues\n"
     "until SIGINT or SIGTERM. Prints its URL on stdout.\n"
     "  --listen HOST:PORT  where to listen (default 127.0.0.1:8080);\n"
     "                      port 0 picks a free one\n"
     "  --token-file FILE   require the token on the first line of FILE:\n"
     "                      header Authorization: Bearer TOKEN, or the\n"
     "                      cookie /login?token=TOKEN sets; needed for an\n"
     "                      address that is not loopback\n",
     0, drv__cli_web},
    {"help", "drover help",
     "usage: drover help [COMMAND]\n",
     "",
     0, run_help},
};

/* ------------------------------------------------------------- helpers */

static const struct command *
find_command(const char *name)
{
    size_t i;

    for (i = 0; i < DRV_ARRAY_LEN(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void
print_help(const struct command *cmd, FILE *fp)
{
    if (cmd == NULL) {
        fputs(global_usage, fp);
        fputs(global_help, fp);
        return;
    }
    fputs(cmd->usage, fp);
    fputs(cmd->help, fp);
}

/* An operand "-h" or "--help" before any "--". */
static int
wants_help(int argc, char **argv)
{
    int i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return 0;
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    }
    return 0;
}

static int
run_help(struct drv_cli *cli, int argc, char **argv)
{
    const struct command *cmd = NULL;

    if (argc > 2)
        return drv__cli_usage_error(cli, "too many arguments");
    if (argc == 2) {
        cmd = find_command(argv[1]);
        if (cmd == NULL)
            return drv__cli_usage_error(cli, "unknown command \"%s\"",
                                        argv[1]);
    }
    print_help(cmd, stdout);
    return 0;
}

int
drv__cli_usage_error(struct drv_cli *cli, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "%s: ", cli->prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fputs(cli->usage, stderr);
    return -EINVAL;
}

/* The shared options: their values in getopt_long's val. */
enum { OPT_REDIS = 'R', OPT_JSON = 'J', OPT_OWN = 1000 };

/* The most words a spec of drv__cli_args holds. */
#define SPEC_MAX 8

/* One word of a spec, read. */
struct word {
    char name[24];         /* "field" of --field=, "QUEUE" of [QUEUE] */
    int option;            /* --name, else an operand */
    int letter;            /* -x|--name: 'x', else 0 */
    int has_arg;           /* --name=: takes a value */
    int optional;          /* [NAME] */
    int rest;              /* NAME...: any number */
    const char **value;    /* borrowed: gets the value (an operand or
                              option); NULL for NAME... */
    int *first;            /* borrowed: NAME...'s index in argv */
};

/* The words of spec into w (see drv__cli_args); their number. */
static size_t
read_spec(const char *spec, struct word *w)
{
    const char *p, *end, *next;
    size_t n;

    for (n = 0, p = spec; *p != '\0'; n++, p = next) {
        DRV_ASSERT(n < SPEC_MAX);
        memset(&w[n], 0, sizeof w[n]);
        end = strchrnul(p, ' ');
        next = *end == ' ' ? end + 1 : end;
        if (p[0] == '-' && p[1] != '-') { /* -x|--name */
            DRV_ASSERT(p[2] == '|');
            w[n].letter = p[1];
            p += 3;
        }
        if (p[0] == '-') {
            DRV_ASSERT(p[1] == '-');
            w[n].option = 1;
            p += 2;
            w[n].has_arg = end[-1] == '=';
            end -= w[n].has_arg;
        } else if (p[0] == '[') {
            DRV_ASSERT(end[-1] == ']');
            w[n].optional = 1;
            p++, end--;
        }
        if (!w[n].option && end - p > 3 && memcmp(end - 3, "...", 3) == 0) {
            w[n].rest = 1;
            end -= 3;
        }
        DRV_ASSERT(end > p && (size_t)(end - p) < sizeof w[n].name);
        memcpy(w[n].name, p, (size_t)(end - p));
        w[n].name[end - p] = '\0';
    }
    return n;
}

/*
 * The options of argv (the words' and the shared ones) into the words'
 * values and cli; in_order: stop at the first operand (the global
 * options, before COMMAND), else take options anywhere before "--". 0,
 * with optind at the first operand, or -EINVAL with the message and the
 * usage printed.
 */
static int
parse_options(struct drv_cli *cli, int argc, char **argv,
              const struct word *w, size_t n, int in_order)
{
    struct option longopts[SPEC_MAX + 4];
    char shortopts[8 + 2 * SPEC_MAX];
    size_t nl = 0, ns = 0, i;
    int c, k;

    /* '+' -- stop at the first operand; leading ':' -- report a missing
     * value as ':' rather than '?' */
    ns = (size_t)snprintf(shortopts, sizeof shortopts, "%s:c:",
                          in_order ? "+" : "");
    for (i = 0; i < n; i++) {
        if (!w[i].option)
            continue;
        longopts[nl++] = (struct option){w[i].name,
            w[i].has_arg ? required_argument : no_argument, NULL,
            OPT_OWN + (int)i};
        if (w[i].letter != 0) {
            shortopts[ns++] = (char)w[i].letter;
            if (w[i].has_arg)
                shortopts[ns++] = ':';
        }
    }
    shortopts[ns] = '\0';
    longopts[nl++] = (struct option){"config", required_argument, NULL,
                                     'c'};
    longopts[nl++] = (struct option){"redis", required_argument, NULL,
                                     OPT_REDIS};
    if (cli->json_ok)
        longopts[nl++] = (struct option){"json", no_argument, NULL,
                                         OPT_JSON};
    longopts[nl] = (struct option){NULL, 0, NULL, 0};
    optind = 0; /* GNU: full re-initialisation */
    opterr = 0; /* we print the messages ourselves */
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        if (c == 'c') {
            cli->file = optarg;
        } else if (c == OPT_REDIS) {
            cli->redis_url = optarg;
        } else if (c == OPT_JSON) {
            cli->json = 1;
        } else if (c == ':') {
            return drv__cli_usage_error(cli, "option \"%s\" needs a value",
                                        argv[optind - 1]);
        } else if (c == '?') {
            if (optopt != 0 && optopt < OPT_OWN)
                return drv__cli_usage_error(cli, "unknown option \"-%c\"",
                                            optopt);
            return drv__cli_usage_error(cli, "unknown option \"%s\"",
                                        argv[optind - 1]);
        } else {
            k = c >= OPT_OWN ? c - OPT_OWN : -1;
            for (i = 0; k < 0 && i < n; i++)
                if (w[i].option && w[i].letter == c)
                    k = (int)i;
            DRV_ASSERT(k >= 0);
            *w[k].value = w[k].has_arg ? optarg : "";
        }
    }
    if (cli->json && !cli->json_ok) /* given before the command */
        return drv__cli_usage_error(cli, "--json: this command has no "
                                    "JSON output");
    return 0;
}

/* A given operand named name: QUEUE and ID are checked. 0 or -EINVAL
 * (printed). */
static int
check_operand(struct drv_cli *cli, const char *name, const char *v)
{
    if (strcmp(name, "QUEUE") == 0)
        return drv__cli_check_queue(cli, v);
    if (strcmp(name, "ID") == 0 && v[0] == '\0')
        return drv__cli_usage_error(cli, "ID must not be empty");
    return 0;
}

/* The words of spec and their pointers from ap, as drv__cli_args has
 * them; their number. */
static size_t
read_words(const char *spec, va_list ap, struct word *w)
{
    size_t n = read_spec(spec, w), i;
    void *end;

    for (i = 0; i < n; i++) {
        if (w[i].rest)
            w[i].first = va_arg(ap, int *);
        else
            w[i].value = va_arg(ap, const char **);
        DRV_ASSERT(w[i].first != NULL || w[i].value != NULL);
    }
    end = va_arg(ap, void *);
    DRV_ASSERT(end == NULL); /* as many pointers as spec has words */
    return n;
}

/* drv__cli_args with ap. */
static int
parse_args(struct drv_cli *cli, int argc, char **argv, const char *spec,
           va_list ap)
{
    struct word w[SPEC_MAX];
    size_t n = read_words(spec, ap, w), i;
    int k;

    if (parse_options(cli, argc, argv, w, n, 0) < 0)
        return -EINVAL;
    k = optind;
    for (i = 0; i < n; i++) {
        if (w[i].option)
            continue;
        if (w[i].rest) {
            *w[i].first = k;
            for (; k < argc; k++)
                if (check_operand(cli, w[i].name, argv[k]) < 0)
                    return -EINVAL;
            continue;
        }
        *w[i].value = k < argc ? argv[k++] : NULL;
        if (*w[i].value == NULL && !w[i].optional)
            return drv__cli_usage_error(cli, "missing %s", w[i].name);
        if (*w[i].value != NULL &&
            check_operand(cli, w[i].name, *w[i].value) < 0)
            return -EINVAL;
    }
    if (k < argc)
        return drv__cli_usage_error(cli, "unexpected argument \"%s\"",
                                    argv[k]);
    return 0;
}

int
drv__cli_args(struct drv_cli *cli, int argc, char **argv, const char *spec,
              ...)
{
    va_list ap;
    int rc;

    va_start(ap, spec);
    rc = parse_args(cli, argc, argv, spec, ap);
    va_end(ap);
    return rc;
}

int
drv__cli_args_connect(struct drv_cli *cli, int argc, char **argv,
                      const char *spec, ...)
{
    va_list ap;
    int rc;

    va_start(ap, spec);
    rc = parse_args(cli, argc, argv, spec, ap);
    va_end(ap);
    return rc < 0 ? rc : drv__cli_connect(cli);
}

/* The global options, before COMMAND: spec holds options only; optind
 * is left at COMMAND. As parse_options. */
static int
global_options(struct drv_cli *cli, int argc, char **argv, const char *spec,
               ...)
{
    struct word w[SPEC_MAX];
    va_list ap;
    size_t n;

    va_start(ap, spec);
    n = read_words(spec, ap, w);
    va_end(ap);
    return parse_options(cli, argc, argv, w, n, 1);
}

int
drv__cli_check_queue(struct drv_cli *cli, const char *queue)
{
    struct drv_err err;

    if (drv_config_check_queue(queue, &err) < 0)
        return drv__cli_usage_error(cli, "QUEUE \"%s\": %s", queue,
                                    err.msg);
    return 0;
}

static int
exit_status(int rc)
{
    if (rc == 0)
        return 0;
    if (rc == -EINVAL || rc == DRV_ECONFIG)
        return 2;
    return 1;
}

/* ---------------------------------------------------------------- main */

int
main(int argc, char **argv)
{
    const char *version = NULL, *verbose = NULL, *help = NULL;
    const struct command *cmd = NULL;
    struct drv_cli cli;
    char **sub_argv = NULL;
    int sub_argc, rc;

    memset(&cli, 0, sizeof cli);
    cli.magic = DRV_CLI_MAGIC;
    cli.prog = "drover";
    cli.usage = global_usage;
    /* --json may stand before the command; the command's own parser
     * refuses it when the command has no JSON output */
    cli.json_ok = 1;
    if (global_options(&cli, argc, argv, "--version --verbose -h|--help",
                       &version, &verbose, &help, NULL) < 0)
        return 2;
    if (help != NULL) {
        print_help(NULL, stdout);
        return 0;
    }
    if (verbose != NULL && version == NULL) {
        drv__cli_usage_error(&cli, "--verbose goes with --version");
        return 2;
    }
    if (version != NULL)
        return drv_version_print(stdout, "drover", verbose != NULL) < 0
               ? 1 : 0;
    if (optind >= argc) {
        drv__cli_usage_error(&cli, "no command given (drover --help "
                             "lists them)");
        return 2;
    }
    cmd = find_command(argv[optind]);
    if (cmd == NULL) {
        drv__cli_usage_error(&cli, "unknown command \"%s\" (drover --help "
                             "lists them)", argv[optind]);
        return 2;
    }
    sub_argc = argc - optind;
    sub_argv = argv + optind;
    if (wants_help(sub_argc, sub_argv)) {
        print_help(cmd, stdout);
        return 0;
    }
    cli.prog = cmd->prog;
    cli.usage = cmd->usage;
    cli.json_ok = cmd->json;

    /* hiredis writes with write(2): a server gone mid-command must be an
     * error return, not a SIGPIPE */
    signal(SIGPIPE, SIG_IGN);
    rc = cmd->run(&cli, sub_argc, sub_argv);
    drv__cli_json_end(&cli);
    drv__cli_disconnect(&cli);
    if (fflush(stdout) != 0 && rc == 0) {
        /* a reader that went away (`drover dead list Q | head`) has all
         * it wanted: exit 1 quietly, as a SIGPIPE'd tool would */
        if (errno != EPIPE)
            fprintf(stderr, "%s: writing the output: %s\n", cli.prog,
                    strerror(errno));
        rc = -EIO;
    }
    return exit_status(rc);
}
