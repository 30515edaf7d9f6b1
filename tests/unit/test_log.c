/*
 * test_log.c -- the log line (pkg/log): a value written through
 * drv_log_q() stays one logfmt pair whatever it holds (a quote, a
 * newline, '=', a backslash, bytes that are not UTF-8), so a Redis error
 * text cannot split a line or forge a key; plain text keeps its old form.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "drover/buf.h"
#include "drover/error.h"
#include "drover/log.h"

/* One drv_log call at warn level, its line (stderr) into out. */
#define LOGGED(out, ...)                                                \
    do {                                                                \
        int pfd_[2], saved_;                                            \
        ssize_t n_;                                                     \
        char chunk_[512];                                               \
                                                                        \
        assert_int_equal(pipe(pfd_), 0);                                \
        saved_ = dup(2);                                                \
        assert_true(saved_ >= 0);                                       \
        assert_int_equal(dup2(pfd_[1], 2), 2);                          \
        DRV_LOG_WARN(__VA_ARGS__);                                      \
        assert_int_equal(dup2(saved_, 2), 2);                           \
        close(saved_);                                                  \
        close(pfd_[1]);                                                 \
        drv_buf_reset(out);                                             \
        while ((n_ = read(pfd_[0], chunk_, sizeof chunk_)) > 0)         \
            drv_buf_add(out, chunk_, (size_t)n_);                       \
        close(pfd_[0]);                                                 \
    } while (0)

/* The number of '\n' in b: a log event is exactly one line. */
static size_t
newlines(const struct drv_buf *b)
{
    size_t i, n = 0;

    for (i = 0; i < b->len; i++)
        n += b->data[i] == '\n';
    return n;
}

/* An error text with a quote, a newline, '=' and a backslash: the line
 * stays one line, error= reads back byte for byte, and the text after the
 * newline forges no key of its own. */
static void
test_log_q_keeps_one_pair(void **st)
{
    static const char v[] = "ERR user_script:1: \"boom\"\n"
                            "queue=evil level=error \\ end";
    char qe[DRV_LOG_Q_MAX];
    struct drv_buf line, got;

    (void)st;
    drv_buf_init(&line);
    drv_buf_init(&got);
    LOGGED(&line, "fetch failed", "error=%s queue=%s",
           drv_log_q(qe, sizeof qe, v), "default");
    assert_int_equal(newlines(&line), 1);
    assert_int_equal(line.data[line.len - 1], '\n');
    assert_int_equal(drv_logfmt_get(line.data, line.len - 1, "error", &got),
                     1);
    assert_int_equal(got.len, sizeof v - 1);
    assert_memory_equal(got.data, v, sizeof v - 1);
    drv_buf_reset(&got);
    assert_int_equal(drv_logfmt_get(line.data, line.len - 1, "queue", &got),
                     1);
    assert_string_equal(got.data, "default");
    drv_buf_reset(&got);
    assert_int_equal(drv_logfmt_get(line.data, line.len - 1, "level", &got),
                     1);
    assert_string_equal(got.data, "warn");
    drv_buf_fini(&line);
    drv_buf_fini(&got);
}

/* A plain message with spaces is written `error="..."` as before; a bare
 * word stays bare; NULL and "" are the empty value `""`. */
static void
test_log_q_plain_forms(void **st)
{
    char q[DRV_LOG_Q_MAX];

    (void)st;
    assert_string_equal(drv_log_q(q, sizeof q, "exit 1: boom"),
                        "\"exit 1: boom\"");
    assert_string_equal(drv_log_q(q, sizeof q, "NOGROUP"), "NOGROUP");
    assert_string_equal(drv_log_q(q, sizeof q, NULL), "\"\"");
    assert_string_equal(drv_log_q(q, sizeof q, ""), "\"\"");
    assert_string_equal(drv_log_q(q, sizeof q, "a=b"), "\"a=b\"");
    assert_string_equal(drv_log_q(q, sizeof q, "x\\y"), "\"x\\\\y\"");
}

/* DRV_LOG_Q_MAX holds the longest error text escaped at worst (every
 * byte \xNN) uncut; a smaller buffer cuts but still closes the quote. */
static void
test_log_q_room(void **st)
{
    char v[DRV_ERR_MSG_MAX], q[DRV_LOG_Q_MAX], small[8];
    struct drv_buf line, got;

    (void)st;
    memset(v, 0xff, sizeof v - 1);
    v[sizeof v - 1] = '\0';
    drv_log_q(q, sizeof q, v);
    assert_int_equal(strlen(q), 2 + 4 * (sizeof v - 1));
    drv_buf_init(&line);
    drv_buf_init(&got);
    drv_buf_adds(&line, "k=");
    drv_buf_adds(&line, q);
    assert_int_equal(drv_logfmt_get(line.data, line.len, "k", &got), 1);
    assert_int_equal(got.len, sizeof v - 1);
    assert_memory_equal(got.data, v, sizeof v - 1);
    drv_buf_fini(&line);
    drv_buf_fini(&got);
    drv_log_q(small, sizeof small, "a \"b\" c d e");
    assert_true(strlen(small) < sizeof small);
    assert_int_equal(small[0], '"');
    assert_int_equal(small[strlen(small) - 1], '"');
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_q_keeps_one_pair),
        cmocka_unit_test(test_log_q_plain_forms),
        cmocka_unit_test(test_log_q_room),
    };

    assert_int_equal(drv_log_set_level("info"), 0);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
