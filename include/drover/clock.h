/*
 * drover/clock.h -- process-wide time helpers.
 *
 * Deadlines are stored as absolute monotonic nanoseconds (int64_t
 * deadline_ns), never as durations. Times written to Redis are Unix ms.
 * All functions are thread-safe.
 */
#ifndef DROVER_CLOCK_H
#define DROVER_CLOCK_H

#include <stdint.h>
#include <sys/time.h>

#define DRV_NS_PER_MS INT64_C(1000000)
#define DRV_NS_PER_SEC INT64_C(1000000000)

/* drv_clock_mono_ns -- CLOCK_MONOTONIC now, in nanoseconds. */
int64_t drv_clock_mono_ns(void);

/* drv_clock_unix_ms -- wall clock now, Unix milliseconds. */
int64_t drv_clock_unix_ms(void);

/* drv_clock_tv_from_ns -- a relative duration in ns as a timeval (>= 0). */
struct timeval drv_clock_tv_from_ns(int64_t ns);

/* drv_clock_tv_until -- time from now until deadline_ns (0 if past). */
struct timeval drv_clock_tv_until(int64_t deadline_ns);

#endif
