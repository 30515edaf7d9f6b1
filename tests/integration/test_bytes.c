/*
 * test_bytes.c -- every byte kept, and two jobs with one id are two jobs,
 * on real droverd and drover processes against a real redis-server.
 *
 * Values hold NUL, 0xff, CR/LF, a double quote and a backslash, in the
 * id, the job type and an argument field. They are sent with hiredis's
 * argv form (exact lengths) and read back the same way, then compared
 * byte for byte after each path: dead (unknown job type, a failing job
 * after its retries), a retry waiting in the delayed set, a requeue on
 * graceful stop, `drover dead retry`, the result key's name and content,
 * a pipeline step's hand-off, and droverd's log lines (escaped, never
 * raw). Then jobs that share an id (or whose ids differ only after a
 * NUL): each keeps its own retries and dead entry, delayed ones included,
 * also next to a delayed job written in the old member format.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/buf.h"
#include "droverd.h"

static const struct drv_test_droverd_opts opts = {
    .tmpdir = "drover-bytes",
    .prefix = "t",
    .log_level = "info",
    .worker_defaults = "  shutdown_timeout: 5s\n  visibility_timeout: 5s\n",
    .body_head = "queues: [default]\n",
    .tail_lines = 30,
};

/* A byte string: pointer and length (it may hold NULs). */
struct bytes {
    const char *p;
    size_t n;
};

#define B(lit) ((struct bytes){(lit), sizeof(lit) - 1})
#define S(str) ((struct bytes){(str), strlen(str)})

/* The hostile values: NUL, 0xff, CR/LF, '"' and '\' in each. */
#define ID_BYTES "\0\xff" "id\r\n\"q\\"
#define ARG_BYTES "a\0\xff" "b\r\n\"c\\d"
#define TYPE_BYTES "\0\xff" "nosuch\r\n\"\\"
#define ERR_BYTES "boom\0\xff\r\n\"\\"
/* as droverd's log must show the id: quoted, every such byte escaped */
#define ID_LOGGED "id=\"\\x00\\xffid\\r\\n\\\"q\\\\\""

/* XADD to key the n values of fv (name, value, name, value, ...) as they
 * are; the new entry id into eid (size eidn; eid may be NULL). */
static void
xadd_bytes(struct drv_test_droverd *t, const char *key, char *eid,
           size_t eidn, size_t n, const struct bytes *fv)
{
    const char *argv[40];
    size_t len[40], i;
    redisReply *r;

    assert_true(n + 3 <= 40);
    argv[0] = "XADD";
    len[0] = 4;
    argv[1] = key;
    len[1] = strlen(key);
    argv[2] = "*";
    len[2] = 1;
    for (i = 0; i < n; i++) {
        argv[3 + i] = fv[i].p;
        len[3 + i] = fv[i].n;
    }
    r = redisCommandArgv(t->c, (int)(n + 3), argv, len);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    if (eid != NULL)
        snprintf(eid, eidn, "%s", r->str);
    freeReplyObject(r);
}

/* A command of argc byte-string arguments; asserts a reply that is no
 * error. The caller frees it. */
static redisReply *
cmd_bytes(struct drv_test_droverd *t, int argc, const struct bytes *a)
{
    const char *argv[8];
    size_t len[8];
    redisReply *r;
    int i;

    assert_true(argc <= 8);
    for (i = 0; i < argc; i++) {
        argv[i] = a[i].p;
        len[i] = a[i].n;
    }
    r = redisCommandArgv(t->c, argc, argv, len);
    assert_non_null(r);
    assert_int_not_equal(r->type, REDIS_REPLY_ERROR);
    return r;
}

/* prefix followed by the bytes of b: a key name (into buf, size n). */
static struct bytes
key_of(char *buf, size_t n, const char *prefix, struct bytes b)
{
    size_t plen = strlen(prefix);

    assert_true(plen + b.n <= n);
    memcpy(buf, prefix, plen);
    memcpy(buf + plen, b.p, b.n);
    return (struct bytes){buf, plen + b.n};
}

/* Assert field name of fv is exactly want. */
static void
assert_field(const redisReply *fv, const char *name, struct bytes want)
{
    const redisReply *v = drv_test_field(fv, name);

    if (v == NULL)
        fail_msg("field %s missing", name);
    if (v->len != want.n || memcmp(v->str, want.p, want.n) != 0)
        fail_msg("field %s: %zu bytes, want %zu (or other bytes)", name,
                 v->len, want.n);
}

/* Every entry of stream key: XRANGE key - + (the caller frees). */
static redisReply *
entries(struct drv_test_droverd *t, const char *key)
{
    redisReply *r = redisCommand(t->c, "XRANGE %s - +", key);

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    return r;
}

/* droverd's log holds want at least once, is valid UTF-8 and holds no
 * control byte but the newlines that end its lines: every value in it
 * was escaped (a NUL, 0xff or lone byte >= 0x80 as \xNN, CR/LF as \r
 * \n), none written raw. */
static void
assert_log_escaped(struct drv_test_droverd *t, const char *want)
{
    size_t len, i;
    char *log = drv_test_slurp(t->log, &len);

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)log[i];
        if ((c < ' ' && c != '\n') || c == 0x7f)
            fail_msg("raw byte 0x%02x at offset %zu of %s", c, i, t->log);
    }
    if (!drv_utf8_valid(log, len))
        fail_msg("log %s is not valid UTF-8: a byte was written raw",
                 t->log);
    if (strstr(log, want) == NULL)
        fail_msg("log %s lacks %s", t->log, want);
    free(log);
}

/* ------------------------------------------------------------- bytes */

/* An unknown job type: dead at once, every field kept, the log escaped. */
static void
test_bytes_dead_bad_job_type_keeps_every_byte(void **st)
{
    struct drv_test_droverd *t = *st;
    const struct bytes fv[] = {
        S("job"), B(TYPE_BYTES), S("id"), B(ID_BYTES),
        S("arg"), B(ARG_BYTES), B("n\0x\xff"), B(ARG_BYTES),
    };
    redisReply *r;
    size_t i;
    int named = 0;

    drv_test_droverd_config(t, "", "jobs:\n  e:\n    handler: echo\n");
    drv_test_droverd_start(t, 0);
    xadd_bytes(t, "t:{default}:jobs", NULL, 0, 8, fv);
    drv_test_wait_stat(t, "default", "dead", 1);
    r = entries(t, "t:{default}:dead");
    assert_int_equal(r->elements, 1);
    assert_field(r->element[0]->element[1], "job", B(TYPE_BYTES));
    assert_field(r->element[0]->element[1], "id", B(ID_BYTES));
    assert_field(r->element[0]->element[1], "arg", B(ARG_BYTES));
    /* a field name with a NUL and a 0xff in it, kept too */
    for (i = 0; i + 1 < r->element[0]->element[1]->elements; i += 2) {
        const redisReply *nm = r->element[0]->element[1]->element[i];
        if (nm->len == 4 && memcmp(nm->str, "n\0x\xff", 4) == 0)
            named++;
    }
    assert_int_equal(named, 1);
    assert_non_null(drv_test_field(r->element[0]->element[1], "error"));
    freeReplyObject(r);
    drv_test_wait_log(t, "job failed: dead", 1);
    assert_log_escaped(t, ID_LOGGED);
    drv_test_droverd_stop(t, 0, 0);
}

/*
 * A failing job: its retry waits in the delayed set under the exact id
 * (member and hash key), comes back, and ends dead with every byte, the
 * handler's error included; its result hash is at the exact key.
 */
static void
test_bytes_retry_dead_and_result_key(void **st)
{
    struct drv_test_droverd *t = *st;
    const struct bytes fv[] = {
        S("job"), S("f"), S("id"), B(ID_BYTES),
        S("arg"), B(ARG_BYTES), S("error"), B(ERR_BYTES),
    };
    char kbuf[128];
    struct bytes hkey = key_of(kbuf, sizeof kbuf, "t:{default}:job:",
                               B(ID_BYTES));
    struct bytes rkey;
    redisReply *r, *h;

    drv_test_droverd_config(t, "",
                            "jobs:\n  f:\n    handler: fail\n"
                            "    retries: 1\n    backoff: 5s\n"
                            "    result_ttl: 1m\n");
    drv_test_droverd_start(t, 0);
    xadd_bytes(t, "t:{default}:jobs", NULL, 0, 8, fv);
    /* waiting: member = the id, hash at job:ID with every field */
    wait_until_num(drv_test_num(t, "ZCARD t:{default}:delayed"), ==, 1,
                   "the retry to wait in the delayed set");
    /* (the backoff keeps it there for 2.5 s at least) */
    r = redisCommand(t->c, "ZRANGE t:{default}:delayed 0 -1");
    h = cmd_bytes(t, 2, (struct bytes[]){S("HGETALL"), hkey});
    assert_int_equal(r->elements, 1);
    assert_int_equal(r->element[0]->len, sizeof ID_BYTES - 1);
    assert_memory_equal(r->element[0]->str, ID_BYTES, sizeof ID_BYTES - 1);
    assert_field(h, "id", B(ID_BYTES));
    assert_field(h, "arg", B(ARG_BYTES));
    assert_field(h, "attempt", S("1"));
    freeReplyObject(r);
    freeReplyObject(h);
    drv_test_wait_stat(t, "default", "dead", 1);
    assert_int_equal(drv_test_stat(t, "default", "retried"), 1);
    r = entries(t, "t:{default}:dead");
    assert_int_equal(r->elements, 1);
    assert_field(r->element[0]->element[1], "id", B(ID_BYTES));
    assert_field(r->element[0]->element[1], "arg", B(ARG_BYTES));
    assert_field(r->element[0]->element[1], "error", B(ERR_BYTES));
    assert_field(r->element[0]->element[1], "attempts", S("2"));
    freeReplyObject(r);
    /* the result hash: at result:ID, the exact bytes; not at the id cut
     * at its first NUL */
    rkey = key_of(kbuf, sizeof kbuf, "t:{default}:result:", B(ID_BYTES));
    h = cmd_bytes(t, 2, (struct bytes[]){S("HGETALL"), rkey});
    assert_field(h, "status", S("dead"));
    assert_field(h, "error", B(ERR_BYTES));
    freeReplyObject(h);
    assert_int_equal(drv_test_num(t, "EXISTS t:{default}:result:"), 0);
    assert_log_escaped(t, ID_LOGGED);
    drv_test_droverd_stop(t, 0, 0);
}

/* SIGTERM while a job runs: it goes back as a new entry, every byte. */
static void
test_bytes_requeue_on_graceful_stop(void **st)
{
    struct drv_test_droverd *t = *st;
    const struct bytes fv[] = {
        S("job"), S("s"), S("ms"), S("60000"), S("id"), B(ID_BYTES),
        S("arg"), B(ARG_BYTES),
    };
    char eid[64];
    redisReply *r;

    drv_test_droverd_config(t, "  shutdown_timeout: 200ms\n",
                            "jobs:\n  s:\n    handler: sleep\n");
    drv_test_droverd_start(t, 0);
    xadd_bytes(t, "t:{default}:jobs", eid, sizeof eid, 8, fv);
    drv_test_wait_started(t, 1);
    drv_test_droverd_stop(t, 0, 0);
    r = entries(t, "t:{default}:jobs");
    assert_int_equal(r->elements, 1);
    assert_string_not_equal(r->element[0]->element[0]->str, eid); /* new */
    assert_field(r->element[0]->element[1], "job", S("s"));
    assert_field(r->element[0]->element[1], "id", B(ID_BYTES));
    assert_field(r->element[0]->element[1], "arg", B(ARG_BYTES));
    assert_null(drv_test_field(r->element[0]->element[1], "attempt"));
    freeReplyObject(r);
    assert_int_equal(drv_test_num(t, "XPENDING t:{default}:jobs drover"), 0);
}

/*
 * `drover dead retry`: by an id with 0xff, CR/LF, '"' and '\' (an argv
 * cannot hold a NUL) and with --all for one whose id holds a NUL; the
 * new entries carry every byte, without error, attempts, failed_at,
 * attempt.
 */
static void
test_bytes_dead_retry_cli(void **st)
{
    struct drv_test_droverd *t = *st;
    static const char id2[] = "\xff" "id\r\n\"\\";
    const struct bytes a[] = {
        S("job"), S("e"), S("id"), S(id2), S("arg"), B(ARG_BYTES),
        S("error"), B(ERR_BYTES), S("attempts"), S("3"),
        S("failed_at"), S("1"), S("attempt"), S("2"),
    };
    const struct bytes b[] = {
        S("job"), B(TYPE_BYTES), S("id"), B(ID_BYTES), S("arg"),
        B(ARG_BYTES), S("error"), S("x"),
    };
    const char *const by_id[] = {"dead", "retry", "default", id2, NULL};
    const char *const all[] = {"dead", "retry", "default", "--all", NULL};
    char *out;
    redisReply *r;
    size_t i;

    drv_test_droverd_config(t, "", "jobs:\n  e:\n    handler: echo\n");
    xadd_bytes(t, "t:{default}:dead", NULL, 0, 14, a);
    xadd_bytes(t, "t:{default}:dead", NULL, 0, 8, b);
    out = drv_test_cli_out(t->dir, t->cfg, 0, by_id);
    assert_non_null(strstr(out, "moved 1 "));
    free(out);
    r = entries(t, "t:{default}:jobs");
    assert_int_equal(r->elements, 1);
    assert_field(r->element[0]->element[1], "id", S(id2));
    assert_field(r->element[0]->element[1], "arg", B(ARG_BYTES));
    assert_field(r->element[0]->element[1], "job", S("e"));
    freeReplyObject(r);
    out = drv_test_cli_out(t->dir, t->cfg, 0, all);
    assert_non_null(strstr(out, "moved 1 "));
    free(out);
    assert_int_equal(drv_test_num(t, "XLEN t:{default}:dead"), 0);
    r = entries(t, "t:{default}:jobs");
    assert_int_equal(r->elements, 2);
    assert_field(r->element[1]->element[1], "id", B(ID_BYTES));
    assert_field(r->element[1]->element[1], "job", B(TYPE_BYTES));
    assert_field(r->element[1]->element[1], "arg", B(ARG_BYTES));
    for (i = 0; i < 2; i++) {
        assert_null(drv_test_field(r->element[i]->element[1], "error"));
        assert_null(drv_test_field(r->element[i]->element[1], "attempts"));
        assert_null(drv_test_field(r->element[i]->element[1], "failed_at"));
        assert_null(drv_test_field(r->element[i]->element[1], "attempt"));
    }
    freeReplyObject(r);
}

/*
 * A pipeline step hands its entry on: step 0 (echo) succeeds, step 1
 * fails for good, so step 1's entry lands in dead: it must carry the
 * pipeline entry's bytes, the id and step 0's result as input; the
 * pipeline's result hash sits at the exact key.
 */
static void
test_bytes_pipeline_hand_off(void **st)
{
    struct drv_test_droverd *t = *st;
    const struct bytes fv[] = {
        S("pipeline"), S("p"), S("id"), B(ID_BYTES), S("arg"), B(ARG_BYTES),
        S("permanent"), S("1"), S("error"), B(ERR_BYTES),
    };
    char kbuf[128];
    struct bytes rkey = key_of(kbuf, sizeof kbuf, "t:{default}:result:",
                               B(ID_BYTES));
    const redisReply *in;
    redisReply *r, *h;

    drv_test_droverd_config(t, "",
                            "jobs:\n  a:\n    handler: echo\n"
                            "  b:\n    handler: fail\n"
                            "pipelines:\n  p:\n    steps: [a, b]\n"
                            "    result_ttl: 1m\n");
    drv_test_droverd_start(t, 0);
    xadd_bytes(t, "t:{default}:jobs", NULL, 0, 10, fv);
    drv_test_wait_stat(t, "default", "dead", 1);
    r = entries(t, "t:{default}:dead");
    assert_int_equal(r->elements, 1);
    assert_field(r->element[0]->element[1], "pipeline", S("p"));
    assert_field(r->element[0]->element[1], "step", S("1"));
    assert_field(r->element[0]->element[1], "id", B(ID_BYTES));
    assert_field(r->element[0]->element[1], "arg", B(ARG_BYTES));
    assert_field(r->element[0]->element[1], "error", B(ERR_BYTES));
    /* input: step 0's result, echo's JSON of the arguments, where the
     * NUL and 0xff of arg are escaped */
    in = drv_test_field(r->element[0]->element[1], "input");
    assert_non_null(in);
    assert_non_null(strstr(in->str, "\"arg\":\"a\\u0000\\u00ffb\\r\\n"
                                    "\\\"c\\\\d\""));
    h = cmd_bytes(t, 2, (struct bytes[]){S("HGETALL"), rkey});
    assert_field(h, "status", S("dead"));
    assert_field(h, "step.0.status", S("ok"));
    freeReplyObject(h);
    freeReplyObject(r);
    drv_test_droverd_stop(t, 0, 0);
}

/*
 * 300 hostile entries (random bytes in job, id, an argument's name and
 * value; an unknown job type each, so all go to dead): every dead entry
 * carries every field it was sent with, byte for byte.
 */
#define NHOSTILE 300
#define HOSTILE_MAX 24

static uint64_t
xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* 1..HOSTILE_MAX random bytes into buf, NUL, 0xff, CR, LF, '"' and '\'
 * more likely than the rest; returns the length. */
static size_t
hostile_bytes(uint64_t *s, char *buf)
{
    static const char pick[] = {'\0', '\xff', '\r', '\n', '"', '\\'};
    size_t n = 1 + xorshift(s) % HOSTILE_MAX, i;

    for (i = 0; i < n; i++) {
        uint64_t r = xorshift(s);
        buf[i] = (r & 1) ? pick[(r >> 1) % sizeof pick] : (char)(r >> 8);
    }
    return n;
}

static void
test_bytes_hostile_entries_all_kept(void **st)
{
    struct drv_test_droverd *t = *st;
    static char val[NHOSTILE][4][HOSTILE_MAX + 2];
    static size_t len[NHOSTILE][4];
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    struct bytes fv[8];
    char num[16];
    redisReply *r;
    size_t i, k;

    drv_test_droverd_config(t, "", "jobs:\n  e:\n    handler: echo\n");
    for (i = 0; i < NHOSTILE; i++) {
        for (k = 0; k < 4; k++)
            len[i][k] = hostile_bytes(&seed, val[i][k]);
        val[i][0][0] = '\0'; /* a job type no config declares */
        val[i][2][0] = 'x';  /* no name of the worker's own fields */
        snprintf(num, sizeof num, "%zu", i);
        fv[0] = S("job");
        fv[1] = (struct bytes){val[i][0], len[i][0]};
        fv[2] = S("id");
        fv[3] = (struct bytes){val[i][1], len[i][1]};
        fv[4] = (struct bytes){val[i][2], len[i][2]};
        fv[5] = (struct bytes){val[i][3], len[i][3]};
        fv[6] = S("n");
        fv[7] = S(num);
        xadd_bytes(t, "t:{default}:jobs", NULL, 0, 8, fv);
    }
    drv_test_droverd_start(t, 0);
    drv_test_wait_stat(t, "default", "dead", NHOSTILE);
    r = entries(t, "t:{default}:dead");
    assert_int_equal(r->elements, NHOSTILE);
    for (k = 0; k < r->elements; k++) {
        const redisReply *f = r->element[k]->element[1], *n, *v = NULL;
        size_t j;

        n = drv_test_field(f, "n");
        assert_non_null(n);
        i = (size_t)atoi(n->str);
        assert_true(i < NHOSTILE);
        assert_field(f, "job", (struct bytes){val[i][0], len[i][0]});
        assert_field(f, "id", (struct bytes){val[i][1], len[i][1]});
        for (j = 0; j + 1 < f->elements; j += 2)
            if (f->element[j]->len == len[i][2] &&
                memcmp(f->element[j]->str, val[i][2], len[i][2]) == 0)
                v = f->element[j + 1];
        assert_non_null(v);
        assert_int_equal(v->len, len[i][3]);
        assert_memory_equal(v->str, val[i][3], len[i][3]);
    }
    freeReplyObject(r);
    assert_log_escaped(t, "job failed: dead");
    drv_test_droverd_stop(t, 0, 0);
}

/* --------------------------------------------------- one id, two jobs */

/* Two failing jobs with the ids a and b each, retries 2: six failures,
 * four retries, two dead entries, each with its own argument. */
static void
two_failing_jobs(struct drv_test_droverd *t, struct bytes a, struct bytes b)
{
    const struct bytes f1[] = {S("job"), S("f"), S("id"), a, S("n"), S("1")};
    const struct bytes f2[] = {S("job"), S("f"), S("id"), b, S("n"), S("2")};
    redisReply *r;
    const redisReply *n0, *n1;

    drv_test_droverd_config(t, "",
                            "jobs:\n  f:\n    handler: fail\n"
                            "    retries: 2\n    backoff: 10ms\n"
                            "    backoff_max: 20ms\n");
    xadd_bytes(t, "t:{default}:jobs", NULL, 0, 6, f1);
    xadd_bytes(t, "t:{default}:jobs", NULL, 0, 6, f2);
    drv_test_droverd_start(t, 0);
    drv_test_wait_stat(t, "default", "dead", 2);
    assert_int_equal(drv_test_stat(t, "default", "failed"), 6);
    assert_int_equal(drv_test_stat(t, "default", "retried"), 4);
    assert_int_equal(drv_test_num(t, "ZCARD t:{default}:delayed"), 0);
    assert_int_equal(drv_test_num(t, "XLEN t:{default}:jobs"), 0);
    r = entries(t, "t:{default}:dead");
    assert_int_equal(r->elements, 2);
    n0 = drv_test_field(r->element[0]->element[1], "n");
    n1 = drv_test_field(r->element[1]->element[1], "n");
    assert_non_null(n0);
    assert_non_null(n1);
    assert_string_not_equal(n0->str, n1->str); /* one dead entry each */
    assert_field(r->element[0]->element[1], "id",
                 strcmp(n0->str, "1") == 0 ? a : b);
    assert_field(r->element[1]->element[1], "id",
                 strcmp(n1->str, "1") == 0 ? a : b);
    assert_field(r->element[0]->element[1], "attempts", S("3"));
    assert_field(r->element[1]->element[1], "attempts", S("3"));
    freeReplyObject(r);
    drv_test_droverd_stop(t, 0, 0);
}

static void
test_bytes_same_id_two_failing_jobs(void **st)
{
    two_failing_jobs(*st, S("same"), S("same"));
}

static void
test_bytes_ids_differing_after_nul(void **st)
{
    two_failing_jobs(*st, B("x\0a"), B("x\0b"));
}

/*
 * Two delayed enqueues with one id: both wait (the second under
 * same#TOKEN), both run. The first is due at once, the second in an
 * hour: once the first ran, looking up `same` finds the second where it
 * waits; made due, it runs too, and the result key (shared) is its.
 */
static void
test_bytes_delayed_enqueue_same_id_both_run(void **st)
{
    struct drv_test_droverd *t = *st;
    const char *const e1[] = {"enqueue", "default", "e", "--id", "same",
                        "--delay", "1ms", "n=1", NULL};
    const char *const e2[] = {"enqueue", "default", "e", "--id", "same",
                        "--delay", "1h", "n=2", NULL};
    const char *const res[] = {"result", "default", "same", "--json", NULL};
    char *out;
    redisReply *r;

    drv_test_droverd_config(t, "",
                            "jobs:\n  e:\n    handler: echo\n"
                            "    result_ttl: 1m\n");
    out = drv_test_cli_out(t->dir, t->cfg, 0, e1);
    assert_string_equal(out, "same\n");
    free(out);
    out = drv_test_cli_out(t->dir, t->cfg, 0, e2);
    assert_string_equal(out, "same\n");
    free(out);
    assert_int_equal(drv_test_num(t, "ZCARD t:{default}:delayed"), 2);
    drv_test_droverd_start(t, 0);
    drv_test_wait_stat(t, "default", "processed", 1);
    /* the second still waits, under its own member */
    assert_int_equal(drv_test_num(t, "ZCARD t:{default}:delayed"), 1);
    assert_int_equal(drv_test_num(t, "EXISTS t:{default}:job:same"), 0);
    out = drv_test_cli_out(t->dir, t->cfg, 0, res);
    assert_non_null(strstr(out, "\"where\":\"delayed\""));
    assert_non_null(strstr(out, "\"value\":\"2\""));
    free(out);
    /* due now: it runs too */
    r = redisCommand(t->c, "ZRANGE t:{default}:delayed 0 0");
    assert_int_equal(r->elements, 1);
    assert_true(strncmp(r->element[0]->str, "same#", 5) == 0);
    freeReplyObject(redisCommand(t->c, "ZADD t:{default}:delayed 0 %s",
                                 r->element[0]->str));
    freeReplyObject(r);
    drv_test_wait_stat(t, "default", "processed", 2);
    assert_int_equal(drv_test_num(t, "ZCARD t:{default}:delayed"), 0);
    assert_int_equal(drv_test_num(t, "KEYS t:{default}:job:*"), 0);
    /* one result key for the id: the last writer's */
    out = drv_test_cli_out(t->dir, t->cfg, 0, res);
    assert_non_null(strstr(out, "\"status\":\"ok\""));
    assert_non_null(strstr(out, "{\\\"n\\\":\\\"2\\\"}"));
    free(out);
    drv_test_droverd_stop(t, 0, 0);
}

/*
 * Upgrade: a job written by an older drover waits under member `same`
 * (no suffix) while a new job with that id fails and retries: the retry
 * waits beside it under same#ENTRYID, and both end dead.
 */
static void
test_bytes_old_member_kept_beside_retry(void **st)
{
    struct drv_test_droverd *t = *st;
    const struct bytes f[] = {S("job"), S("f"), S("id"), S("same"),
                              S("n"), S("new")};
    long long due = 0;
    char ns[64];
    redisReply *r;

    drv_test_droverd_config(t, "",
                            "jobs:\n  f:\n    handler: fail\n"
                            "    retries: 1\n    backoff: 10ms\n"
                            "    backoff_max: 20ms\n");
    r = redisCommand(t->c, "TIME");
    due = atoll(r->element[0]->str) * 1000 + 1500;
    freeReplyObject(r);
    freeReplyObject(redisCommand(t->c, "HSET t:{default}:job:same job f "
                                 "id same n old attempt 1"));
    freeReplyObject(redisCommand(t->c, "ZADD t:{default}:delayed %lld same",
                                 due));
    drv_test_droverd_start(t, 0);
    xadd_bytes(t, "t:{default}:jobs", NULL, 0, 6, f);
    drv_test_wait_stat(t, "default", "dead", 2);
    drv_test_dead_fields(t, "default", "n", ns, sizeof ns);
    assert_non_null(strstr(ns, "old|"));
    assert_non_null(strstr(ns, "new|"));
    assert_int_equal(drv_test_num(t, "ZCARD t:{default}:delayed"), 0);
    assert_int_equal(drv_test_num(t, "EXISTS t:{default}:job:same"), 0);
    drv_test_droverd_stop(t, 0, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        TD(test_bytes_dead_bad_job_type_keeps_every_byte),
        TD(test_bytes_retry_dead_and_result_key),
        TD(test_bytes_requeue_on_graceful_stop),
        TD(test_bytes_dead_retry_cli),
        TD(test_bytes_pipeline_hand_off),
        TD(test_bytes_hostile_entries_all_kept),
        TD(test_bytes_same_id_two_failing_jobs),
        TD(test_bytes_ids_differing_after_nul),
        TD(test_bytes_delayed_enqueue_same_id_both_run),
        TD(test_bytes_old_member_kept_beside_retry),
    };
#undef T

    drv_test_droverd_fixture = &opts;
    drv_test_filter_from_env();
    return cmocka_run_group_tests(tests, drv_test_redis_group_setup,
                                  drv_test_redis_group_teardown);
}
