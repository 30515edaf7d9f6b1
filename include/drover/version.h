/*
 * drover/version.h -- the version of this build and of the libraries it
 * uses, for `droverd --version` and `drover --version`.
 *
 * The version string is fixed at build time: the VERSION file of a release
 * tarball when there is one, else `git describe --tags --always --dirty`
 * of the checkout (a leading "v" dropped), else the base version of
 * debian/changelog with "-dev". The Makefile writes it into a generated
 * header that only pkg/util/version.c includes, so a new commit rebuilds
 * one object.
 */
#ifndef DROVER_VERSION_H
#define DROVER_VERSION_H

#include <stdbool.h>
#include <stdio.h>

/* drv_version -- "0.1.0-3-g1a2b3c4-dirty"; static storage, any thread. */
const char *drv_version(void);

/*
 * drv_version_print -- write "PROG VERSION\n" to fp; with verbose, also
 * one line per library: hiredis, libevent, libyaml, libcurl (with its TLS
 * backend) and OpenSSL when the build links it, each with the version it
 * was compiled against and, where the library can tell, the one loaded at
 * run time. Returns 0, or -EIO when writing fp failed.
 */
int drv_version_print(FILE *fp, const char *prog, bool verbose);

#endif
