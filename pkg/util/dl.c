/*
 * dl.c -- a shared library's functions, found on first use.
 */
#include <dlfcn.h>
#include <stdio.h>

#include "drover/dl.h"

int
drv_dl_load(const char *so, const char *const *names, void **const *slots,
            size_t n, char *why, size_t whylen)
{
    void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    size_t i;

    if (h == NULL) {
        snprintf(why, whylen, "cannot load %s: %s", so, dlerror());
        return -1;
    }
    for (i = 0; i < n; i++) {
        *slots[i] = dlsym(h, names[i]);
        if (*slots[i] == NULL) {
            snprintf(why, whylen, "%s has no %s", so, names[i]);
            return -1;
        }
    }
    return 0;
}
