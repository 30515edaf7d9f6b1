/*
 * redis_int.h -- pkg/redis declarations shared between its files and
 * reached by its unit tests. Not a public interface.
 */
#ifndef DROVER_REDIS_INT_H
#define DROVER_REDIS_INT_H

#include <stddef.h>
#include <stdint.h>

#define DRV__REDIS_SHA1_HEX 41 /* 40 hex digits and a NUL */

/* drv__redis_sha1_hex -- SHA1 of data as lowercase hex into out. */
void drv__redis_sha1_hex(const void *data, size_t len,
                         char out[DRV__REDIS_SHA1_HEX]);

#endif
