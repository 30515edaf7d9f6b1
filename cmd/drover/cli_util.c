/*
 * cli_util.c -- output helpers of the CLI: times, JSON, tables.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "drover/buf.h"
#include "drover/common.h"
#include "drover/json.h"

#include "cli.h"

/* ------------------------------------------------------------------ time */

char *
drv__cli_time(int64_t ms, char *buf, size_t n)
{
    struct tm tm;
    time_t secs = (time_t)(ms / 1000);

    if (ms < 0 || gmtime_r(&secs, &tm) == NULL) {
        snprintf(buf, n, "%" PRId64, ms);
        return buf;
    }
    snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return buf;
}

char *
drv__cli_age(int64_t ms, char *buf, size_t n)
{
    int64_t s = ms / 1000;

    if (ms < 0) {
        /* a clock ahead of ours: say so rather than print nonsense */
        snprintf(buf, n, "-%" PRId64 "s", -ms / 1000);
    } else if (s < 60) {
        snprintf(buf, n, "%" PRId64 "s", s);
    } else if (s < 3600) {
        snprintf(buf, n, "%" PRId64 "m%" PRId64 "s", s / 60, s % 60);
    } else if (s < 86400) {
        snprintf(buf, n, "%" PRId64 "h%" PRId64 "m", s / 3600,
                 s % 3600 / 60);
    } else {
        snprintf(buf, n, "%" PRId64 "d%" PRId64 "h", s / 86400,
                 s % 86400 / 3600);
    }
    return buf;
}

/* ----------------------------------------------------------------- JSON */

struct drv_json *
drv__cli_json_begin(struct drv_cli *cli)
{
    DRV_CHECK_OBJ(cli, DRV_CLI_MAGIC);
    DRV_ASSERT(!cli->json_begun);
    cli->json_begun = 1;
    drv_buf_init(&cli->doc);
    drv_json_init(&cli->doc_w, &cli->doc);
    return &cli->doc_w;
}

void
drv__cli_json_end(struct drv_cli *cli)
{
    DRV_CHECK_OBJ(cli, DRV_CLI_MAGIC);
    if (!cli->json_begun)
        return;
    drv_json_fini(&cli->doc_w);
    fwrite(cli->doc.data, 1, cli->doc.len, stdout);
    fputc('\n', stdout);
    drv_buf_fini(&cli->doc);
    cli->json_begun = 0;
}

/* ----------------------------------------------------------------- table */

void
drv__cli_table_init(struct drv_cli_table *t, size_t ncols,
                    unsigned right_mask)
{
    memset(t, 0, sizeof *t);
    t->magic = DRV_CLI_TABLE_MAGIC;
    t->ncols = ncols;
    t->right_mask = right_mask;
}

void
drv__cli_table_fini(struct drv_cli_table *t)
{
    size_t i;

    DRV_CHECK_OBJ(t, DRV_CLI_TABLE_MAGIC);
    for (i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof *t);
}

void
drv__cli_table_add(struct drv_cli_table *t, const char *const *cells)
{
    size_t i;

    DRV_CHECK_OBJ(t, DRV_CLI_TABLE_MAGIC);
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 8;
        t->cells = drv_xrealloc(t->cells,
                                t->cap * t->ncols * sizeof *t->cells);
    }
    for (i = 0; i < t->ncols; i++)
        t->cells[t->nrows * t->ncols + i] = drv_xstrdup(cells[i]);
    t->nrows++;
}

void
drv__cli_table_print(const struct drv_cli_table *t, FILE *fp)
{
    size_t *width = NULL;
    size_t r, c, w;
    const char *cell;

    DRV_CHECK_OBJ(t, DRV_CLI_TABLE_MAGIC);
    width = drv_xcalloc(t->ncols, sizeof *width);
    for (r = 0; r < t->nrows; r++)
        for (c = 0; c < t->ncols; c++) {
            w = strlen(t->cells[r * t->ncols + c]);
            if (w > width[c])
                width[c] = w;
        }
    for (r = 0; r < t->nrows; r++) {
        for (c = 0; c < t->ncols; c++) {
            cell = t->cells[r * t->ncols + c];
            if (c > 0)
                fputs("  ", fp);
            if (t->right_mask & (1u << c))
                fprintf(fp, "%*s", (int)width[c], cell);
            else if (c + 1 < t->ncols)
                fprintf(fp, "%-*s", (int)width[c], cell);
            else
                fputs(cell, fp); /* last column: no trailing spaces */
        }
        fputc('\n', fp);
    }
    free(width);
}
