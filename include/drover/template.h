/*
 * drover/template.h -- `{field}` templates of exec commands and http
 * requests.
 *
 * Syntax: `{name}` is replaced by the value of field `name` (a non-empty
 * name without braces); `{{` and `}}` stand for literal `{` and `}`. Any
 * other brace is an error: `{` without its `}`, a `}` alone, `{}` and a
 * `{` inside a field name. Everything else is copied byte for byte.
 *
 *   "{path}.out.png"     path=/tmp/a  ->  "/tmp/a.out.png"
 *   "{{literal}} {x}"    x=1          ->  "{literal} 1"
 *
 * pkg/config checks every template at load (drv_template_check), so a
 * worker expanding a configured template only meets the lookup's errors.
 * Pure functions: any thread may call them.
 */
#ifndef DROVER_TEMPLATE_H
#define DROVER_TEMPLATE_H

#include <stddef.h>

#include "drover/error.h"

/* Flags of drv_template_expand. */
enum {
    /* percent-encode each value except RFC 3986 unreserved bytes
     * (A-Z a-z 0-9 - . _ ~); the template's own text is kept as is */
    DRV_TEMPLATE_URL_ESCAPE = 1 << 0,
    /* a value holding a NUL byte is an error (argv, header values) */
    DRV_TEMPLATE_NO_NUL = 1 << 1
};

/*
 * drv_template_lookup_fn -- find field name[0..name_len) (not
 * NUL-terminated). On success set *value / *value_len (borrowed: must stay
 * valid until drv_template_expand returns; the value may hold any byte)
 * and return 0; return -ENOENT when the field does not exist. Any other
 * negative code aborts the expansion with that code.
 */
typedef int drv_template_lookup_fn(const char *name, size_t name_len,
                                   const char **value, size_t *value_len,
                                   void *ctx);

/*
 * drv_template_check -- check the syntax of tmpl (NUL-terminated). Returns
 * 0, or -EINVAL with err (may be NULL) saying what is wrong and where,
 * e.g. "unmatched '{' at byte 7" (bytes counted from 1).
 */
int drv_template_check(const char *tmpl, struct drv_err *err);

/*
 * drv_template_expand -- expand tmpl, calling lookup(name, ..., ctx) once
 * for each `{name}`, with flags from DRV_TEMPLATE_*. On success *out is a
 * new NUL-terminated string (owned by the caller: free()), *out_len (may
 * be NULL) its length without the NUL, and 0 is returned. On error *out
 * is NULL and err (may be NULL) says why:
 *   -EINVAL        bad template syntax (as drv_template_check)
 *   DRV_EBADJOB    "missing field NAME" (lookup returned -ENOENT), or
 *                  "field NAME holds a NUL byte" with DRV_TEMPLATE_NO_NUL
 *   other < 0      returned by lookup: "field NAME: <strerror>"
 * lookup runs synchronously, only from inside this call.
 */
int drv_template_expand(const char *tmpl, unsigned flags,
                        drv_template_lookup_fn *lookup, void *ctx,
                        char **out, size_t *out_len, struct drv_err *err);

#endif
