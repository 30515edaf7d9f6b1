/*
 * cli.c -- test helpers for what a test reads back: a whole file, a
 * number a job writes into a file, and a run of the drover CLI with its
 * stdout and stderr.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

char *
drv_test_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0, got;

    if (f == NULL)
        fail_msg("cannot read %s: %s", path, strerror(errno));
    /* read to the end rather than trust the size: a child may still be
     * appending */
    do {
        if (cap - n < 4096) {
            cap = cap ? cap * 2 : 8192;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
    } while (got > 0);
    fclose(f);
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

long
drv_test_wait_file_num(const char *dir, const char *name)
{
    long v;

    wait_until((v = drv_test_file_num(dir, name)) >= 0,
               "a number in %s/%s", dir, name);
    return v;
}

void
drv_test_cli_run(struct drv_test_cli *r, const char *dir, const char *cfg,
                 const char *const *env, const char *const *args)
{
    static int runs;
    char bin[512], outp[600], errp[600];
    const char *argv[64];
    struct drv_test_proc p;
    int n = 0;

    memset(r, 0, sizeof *r);
    snprintf(r->cmd, sizeof r->cmd, "%s", args[0] != NULL ? args[0] : "");
    argv[n++] = drv_test_bin("drover", bin, sizeof bin);
    if (cfg != NULL) {
        argv[n++] = "-c";
        argv[n++] = cfg;
    }
    for (; *args != NULL; args++) {
        if (n == 63)
            fail_msg("drv_test_cli_run: more than 60 arguments");
        argv[n++] = *args;
    }
    argv[n] = NULL;
    snprintf(outp, sizeof outp, "%s/cli%d.out", dir, runs);
    snprintf(errp, sizeof errp, "%s/cli%d.err", dir, runs++);
    assert_int_equal(drv_test_spawn_io(&p, argv, outp, errp, env), 0);
    r->status = drv_test_wait(&p, DRV_TEST_WAIT_MS);
    if (r->status == -ETIMEDOUT) {
        drv_test_kill(&p, SIGKILL);
        fail_msg("drover %s: still running after %d ms", r->cmd,
                 DRV_TEST_WAIT_MS);
    }
    r->out = drv_test_slurp(outp, NULL);
    r->err = drv_test_slurp(errp, NULL);
}

void
drv_test_cli_fini(struct drv_test_cli *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

char *
drv_test_cli_take(struct drv_test_cli *r, int want)
{
    char *out;

    if (r->status != want)
        fail_msg("drover %s: exit %d, want %d\nstdout: %s\nstderr: %s",
                 r->cmd, r->status, want, r->out, r->err);
    out = r->out;
    r->out = NULL;
    drv_test_cli_fini(r);
    return out;
}

char *
drv_test_cli_out(const char *dir, const char *cfg, int want,
                 const char *const *args)
{
    struct drv_test_cli r;

    drv_test_cli_run(&r, dir, cfg, NULL, args);
    return drv_test_cli_take(&r, want);
}
