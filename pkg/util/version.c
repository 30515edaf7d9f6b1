/*
 * version.c -- the version of this build and of its libraries.
 *
 * Compile-time versions come from each library's header where it has a
 * version macro (hiredis, libevent, libcurl, OpenSSL), else from
 * pkg-config at build time (libyaml), through the generated header
 * drover_build.h. Run-time versions come from the library's own call
 * (event_get_version, yaml_get_version_string, curl_version_info,
 * OpenSSL_version); hiredis 0.14 has none, so only its compile-time
 * version is shown.
 */
#include <errno.h>
#include <stdio.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <yaml.h>
#ifdef DRV_HAVE_OPENSSL
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#endif

#include "drover/common.h"
#include "drover/version.h"
#include "drover_build.h"   /* generated: DRV_BUILD_VERSION, ... */

const char *
drv_version(void)
{
    return DRV_BUILD_VERSION;
}

int
drv_version_print(FILE *fp, const char *prog, bool verbose)
{
    const curl_version_info_data *curl = NULL;

    fprintf(fp, "%s %s\n", prog, DRV_BUILD_VERSION);
    if (verbose) {
        curl = curl_version_info(CURLVERSION_NOW);
        fprintf(fp, "  hiredis   %s (compiled against; no run-time "
                "version call)\n", DRV_STR(HIREDIS_MAJOR) "."
                DRV_STR(HIREDIS_MINOR) "." DRV_STR(HIREDIS_PATCH));
        fprintf(fp, "  libevent  %s (run time), %s (compiled against)\n",
                event_get_version(), LIBEVENT_VERSION);
        fprintf(fp, "  libyaml   %s (run time), %s (compiled against)\n",
                yaml_get_version_string(), DRV_BUILD_YAML_VERSION);
        if (curl != NULL)
            fprintf(fp, "  libcurl   %s (run time, TLS: %s), %s (compiled "
                    "against)\n", curl->version,
                    curl->ssl_version != NULL ? curl->ssl_version : "none",
                    LIBCURL_VERSION);
        else /* loaded on first need; https jobs fail without it */
            fprintf(fp, "  libcurl   cannot be loaded (https:// and proxy "
                    "URLs fail), %s (compiled against)\n", LIBCURL_VERSION);
#ifdef DRV_HAVE_OPENSSL
        fprintf(fp, "  OpenSSL   %s (run time), %s (compiled against)\n",
                OpenSSL_version(OPENSSL_VERSION), OPENSSL_VERSION_TEXT);
#endif
    }
    if (fflush(fp) != 0 || ferror(fp))
        return -EIO;
    return 0;
}
