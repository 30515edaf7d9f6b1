/*
 * drover/dl.h -- open a shared library on first use and find a list of
 * its functions (libcurl for the http handler, OpenSSL for rediss://), so
 * that a process which never needs them never maps them.
 */
#ifndef DROVER_DL_H
#define DROVER_DL_H

#include <stddef.h>

/*
 * drv_dl_load -- dlopen(so, RTLD_NOW | RTLD_LOCAL), then dlsym each of the
 * n names[i] into *slots[i] (a function pointer, written as a void *).
 * 0 when every one was found; else -1 with why (size whylen) saying
 * "cannot load SO: REASON" or "SO has no NAME". The library stays open
 * either way: what it found is used until the process ends.
 */
int drv_dl_load(const char *so, const char *const *names, void **const *slots,
                size_t n, char *why, size_t whylen);

#endif
