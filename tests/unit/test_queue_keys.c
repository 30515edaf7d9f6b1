/*
 * test_queue_keys.c -- the key names of a queue: each one exactly, for a
 * short and a long prefix and queue name (every name shares one
 * allocation, sized for the longest), and fini leaving nothing behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "drover/queue.h"

static void
check_keys(const char *prefix, const char *queue)
{
    struct drv_queue_keys k;
    char want[1200];

    drv_queue_keys_init(&k, prefix, queue);
    assert_string_equal(k.name, queue);
#define KEY(field, suffix)                                              \
    do {                                                                \
        snprintf(want, sizeof want, "%s:{%s}:%s", prefix, queue, suffix); \
        assert_string_equal(k.field, want);                             \
    } while (0)
    KEY(jobs, "jobs");
    KEY(delayed, "delayed");
    KEY(dead, "dead");
    KEY(stats, "stats");
    KEY(paused, "paused");
    KEY(job_prefix, "job:");
    KEY(result_prefix, "result:");
    KEY(cancel, "cancel");
#undef KEY
    snprintf(want, sizeof want, "%s:due", prefix);
    assert_string_equal(k.due, want);
    drv_queue_keys_fini(&k);
    assert_null(k.name);
    assert_null(k.due);
}

static void
test_queue_keys_names(void **state)
{
    char prefix[300], queue[500];

    check_keys("drover", "default");
    check_keys("p", "q");
    check_keys("", "");
    /* long ones fill the allocation to its bound */
    memset(prefix, 'p', sizeof prefix - 1);
    prefix[sizeof prefix - 1] = '\0';
    memset(queue, 'q', sizeof queue - 1);
    queue[sizeof queue - 1] = '\0';
    check_keys(prefix, queue);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_keys_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
