/* test_metrics.c -- the metrics registry: rendering in the text format
 * 0.0.4 (HELP/TYPE lines, label escaping, cumulative histogram buckets,
 * number formatting), process_* metrics, and the render time of a
 * worker-sized registry (printed, never asserted). */
#include <math.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "drover/buf.h"
#include "drover/common.h"
#include "drover/metrics.h"

static void
test_metrics_counter_gauge_render(void **st)
{
    static const char *const labels[] = {"queue", "job", NULL};
    const char *v1[] = {"default", "resize"};
    const char *v2[] = {"a\\b\"c\nd", "x"};
    struct drv_metrics *m = drv_metrics_create();
    struct drv_metrics_family *f;
    struct drv_metrics_series *s1, *s2, *g;
    struct drv_buf b;

    (void)st;
    f = drv_metrics_family_add(m, "drover_jobs_processed_total",
                               "Attempts\\that\nsucceeded.",
                               DRV_METRICS_COUNTER, labels, NULL, 0);
    s1 = drv_metrics_series_add(f, v1);
    s2 = drv_metrics_series_add(f, v2);
    g = drv_metrics_series_add(drv_metrics_family_add(m, "g", "A gauge.",
                               DRV_METRICS_GAUGE, NULL, NULL, 0), NULL);
    drv_metrics_inc(s1);
    drv_metrics_inc(s1);
    drv_metrics_add(s2, 0.25);
    drv_metrics_set(g, -3);
    drv_buf_init(&b);
    drv_metrics_render(m, &b);
    assert_string_equal(b.data,
        "# HELP drover_jobs_processed_total Attempts\\\\that\\nsucceeded.\n"
        "# TYPE drover_jobs_processed_total counter\n"
        "drover_jobs_processed_total{queue=\"default\",job=\"resize\"} 2\n"
        "drover_jobs_processed_total{queue=\"a\\\\b\\\"c\\nd\",job=\"x\"} "
        "0.25\n"
        "# HELP g A gauge.\n"
        "# TYPE g gauge\n"
        "g -3\n");
    assert_true(drv_metrics_value(s1) == 2);
    drv_buf_fini(&b);
    drv_metrics_free(m);
}

static void
test_metrics_histogram_buckets(void **st)
{
    static const double bk[] = {0.005, 0.1, 1, 2.5};
    static const char *const labels[] = {"queue", NULL};
    const char *v[] = {"q"};
    struct drv_metrics *m = drv_metrics_create();
    struct drv_metrics_series *h;
    struct drv_buf b;

    (void)st;
    h = drv_metrics_series_add(drv_metrics_family_add(m, "d_seconds",
                               "Run time.", DRV_METRICS_HISTOGRAM, labels,
                               bk, 4), v);
    drv_metrics_observe(h, 0.001);  /* first bucket */
    drv_metrics_observe(h, 0.005);  /* on a bound: that bucket (le) */
    drv_metrics_observe(h, 0.5);    /* le=1 */
    drv_metrics_observe(h, 100);    /* only +Inf */
    drv_buf_init(&b);
    drv_metrics_render(m, &b);
    assert_string_equal(b.data,
        "# HELP d_seconds Run time.\n"
        "# TYPE d_seconds histogram\n"
        "d_seconds_bucket{queue=\"q\",le=\"0.005\"} 2\n"
        "d_seconds_bucket{queue=\"q\",le=\"0.1\"} 2\n"
        "d_seconds_bucket{queue=\"q\",le=\"1\"} 3\n"
        "d_seconds_bucket{queue=\"q\",le=\"2.5\"} 3\n"
        "d_seconds_bucket{queue=\"q\",le=\"+Inf\"} 4\n"
        "d_seconds_sum{queue=\"q\"} 100.506\n"
        "d_seconds_count{queue=\"q\"} 4\n");
    assert_int_equal(drv_metrics_count(h), 4);
    drv_buf_fini(&b);
    drv_metrics_free(m);
}

static void
test_metrics_no_labels_histogram_and_special_values(void **st)
{
    static const double bk[] = {1};
    struct drv_metrics *m = drv_metrics_create();
    struct drv_metrics_series *h, *g;
    struct drv_buf b;

    (void)st;
    h = drv_metrics_series_add(drv_metrics_family_add(m, "lag", "",
                               DRV_METRICS_HISTOGRAM, NULL, bk, 1), NULL);
    g = drv_metrics_series_add(drv_metrics_family_add(m, "x", "",
                               DRV_METRICS_GAUGE, NULL, NULL, 0), NULL);
    drv_metrics_observe(h, 0.1);
    drv_metrics_set(g, INFINITY);
    drv_buf_init(&b);
    drv_metrics_render(m, &b);
    assert_non_null(strstr(b.data, "\nlag_bucket{le=\"1\"} 1\n"));
    assert_non_null(strstr(b.data, "\nlag_bucket{le=\"+Inf\"} 1\n"));
    assert_non_null(strstr(b.data, "\nlag_sum 0.1\n"));
    assert_non_null(strstr(b.data, "\nlag_count 1\n"));
    assert_non_null(strstr(b.data, "\nx +Inf\n"));
    drv_metrics_set(g, NAN);
    drv_buf_reset(&b);
    drv_metrics_render(m, &b);
    assert_non_null(strstr(b.data, "\nx NaN\n"));
    drv_metrics_set(g, 1e300);
    drv_buf_reset(&b);
    drv_metrics_render(m, &b);
    assert_non_null(strstr(b.data, "\nx 1e+300\n"));
    drv_buf_fini(&b);
    drv_metrics_free(m);
}

static void
test_metrics_process_values(void **st)
{
    struct drv_metrics *m = drv_metrics_create();
    struct drv_metrics_process *p = drv_metrics_process_add(m);
    struct drv_buf b;
    const char *s;
    double start;

    (void)st;
    drv_metrics_process_update(p);
    drv_buf_init(&b);
    drv_metrics_render(m, &b);
    assert_non_null(strstr(b.data, "# TYPE process_cpu_seconds_total "
                                   "counter\n"));
    s = strstr(b.data, "\nprocess_resident_memory_bytes ");
    assert_non_null(s);
    assert_true(strtod(s + 31, NULL) > 100000);
    s = strstr(b.data, "\nprocess_open_fds ");
    assert_non_null(s);
    assert_true(strtod(s + 18, NULL) >= 3);
    s = strstr(b.data, "\nprocess_start_time_seconds ");
    assert_non_null(s);
    start = strtod(s + 28, NULL);
    assert_true(fabs(start - (double)time(NULL)) < 86400);
    drv_buf_fini(&b);
    drv_metrics_process_free(p);
    drv_metrics_free(m);
}

/* The registry the worker builds for 50 job types x 10 queues, filled
 * with values, rendered: the time is printed (a busy machine makes a
 * timed assertion meaningless). */
static void
test_metrics_render_time_50_types_10_queues(void **st)
{
    static const double bk[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800,
                                3600};
    static const char *const qj[] = {"queue", "job", NULL};
    static const char *const qjr[] = {"queue", "job", "reason", NULL};
    struct drv_metrics *m = drv_metrics_create();
    struct drv_metrics_family *f[7];
    struct drv_buf b;
    char qn[24], jn[32];
    int q, j, k, i;
    double best = 1e9;

    (void)st;
    f[0] = drv_metrics_family_add(m, "p_total", "", DRV_METRICS_COUNTER, qj,
                                  NULL, 0);
    f[1] = drv_metrics_family_add(m, "f_total", "", DRV_METRICS_COUNTER, qjr,
                                  NULL, 0);
    f[2] = drv_metrics_family_add(m, "r_total", "", DRV_METRICS_COUNTER, qj,
                                  NULL, 0);
    f[3] = drv_metrics_family_add(m, "d_total", "", DRV_METRICS_COUNTER, qj,
                                  NULL, 0);
    f[4] = drv_metrics_family_add(m, "running", "", DRV_METRICS_GAUGE, qj,
                                  NULL, 0);
    f[5] = drv_metrics_family_add(m, "dur", "", DRV_METRICS_HISTOGRAM, qj,
                                  bk, DRV_ARRAY_LEN(bk));
    f[6] = drv_metrics_family_add(m, "cpu_total", "", DRV_METRICS_COUNTER, qj,
                                  NULL, 0);
    for (q = 0; q < 10; q++)
        for (j = 0; j < 51; j++) {
            const char *v[] = {qn, jn, "error"};
            snprintf(qn, sizeof qn, "queue%d", q);
            snprintf(jn, sizeof jn, "job_type_%02d", j);
            for (k = 0; k < 7; k++) {
                struct drv_metrics_series *s = drv_metrics_series_add(f[k],
                                                                      v);
                if (k == 5)
                    drv_metrics_observe(s, 0.0123 * j);
                else
                    drv_metrics_add(s, 12345.0 * j);
            }
            v[2] = "timeout";
            drv_metrics_series_add(f[1], v);
        }
    drv_buf_init(&b);
    for (i = 0; i < 20; i++) {
        struct timespec a, z;
        double ms;

        drv_buf_reset(&b);
        clock_gettime(CLOCK_MONOTONIC, &a);
        drv_metrics_render(m, &b);
        clock_gettime(CLOCK_MONOTONIC, &z);
        ms = (double)(z.tv_sec - a.tv_sec) * 1e3 +
             (double)(z.tv_nsec - a.tv_nsec) / 1e6;
        if (ms < best)
            best = ms;
    }
    assert_non_null(strstr(b.data, "dur_bucket{queue=\"queue9\","
                                   "job=\"job_type_50\",le=\"+Inf\"} 1\n"));
    fprintf(stderr, "# render: 50 job types x 10 queues: %zu bytes, best of "
            "20: %.3f ms\n", b.len, best);
    drv_buf_fini(&b);
    drv_metrics_free(m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_counter_gauge_render),
        cmocka_unit_test(test_metrics_histogram_buckets),
        cmocka_unit_test(test_metrics_no_labels_histogram_and_special_values),
        cmocka_unit_test(test_metrics_process_values),
        cmocka_unit_test(test_metrics_render_time_50_types_10_queues),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
