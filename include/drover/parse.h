/*
 * drover/parse.h -- strict parsers shared by config, job fields and CLI.
 *
 * All return 0 or -EINVAL (bad text) / -ERANGE (out of range); they accept
 * exactly the documented forms and nothing else (no leading '+', spaces,
 * or trailing junk).
 */
#ifndef DROVER_PARSE_H
#define DROVER_PARSE_H

#include <stddef.h>
#include <stdint.h>

/*
 * drv_parse_duration_ms -- "250ms", "30s", "5m", "1h", "1d"; a bare
 * number is seconds. Result in milliseconds.
 */
int drv_parse_duration_ms(const char *s, int64_t *out_ms);

/* drv_parse_size -- "512", "64KiB", "16MiB", "1GiB" (also KB/MB/GB = 1000^n,
 * and K/M/G = 1024^n). Result in bytes. */
int drv_parse_size(const char *s, int64_t *out);

/*
 * drv_parse_uint -- plain decimal digits only (job fields like `ms`,
 * `attempt`), value <= max. len is the text length (not NUL-terminated).
 */
int drv_parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out);

/* drv_parse_int -- like drv_parse_uint for a NUL-terminated string with
 * an optional leading '-', within [min, max]. */
int drv_parse_int(const char *s, int64_t min, int64_t max, int64_t *out);

/*
 * drv_parse_hostport -- "HOST:PORT" or "[V6]:PORT" (a listen address) into
 * host (size hostn, brackets removed) and *port (0..65535). 0 or -EINVAL.
 */
int drv_parse_hostport(const char *s, char *host, size_t hostn, int *port);

/*
 * drv_parse_is_token -- 1 when s is an HTTP token (RFC 9110: one or more
 * letters, digits and !#$%&'*+-.^_`|~), as a method or header name must
 * be; else 0 (also for NULL and "").
 */
int drv_parse_is_token(const char *s);

#endif
