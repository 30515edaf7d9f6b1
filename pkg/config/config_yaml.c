/*
 * config_yaml.c -- YAML node helpers of pkg/config: key paths, error
 * reports, typed scalars, mapping walks and table-driven fields.
 *
 * libyaml's conventions (1 = ok, marks from 0) stop here: helpers return
 * 0 or DRV_ECONFIG, and errors carry lines and columns from 1.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/common.h"
#include "drover/parse.h"
#include "drover/template.h"

#include "config_int.h"

/* First capacity of the key path buffer. */
#define PATH_INITIAL_CAP 64
/* First capacity of the error list. */
#define ERRORS_INITIAL_CAP 8
/* Room for "[N]" of a sequence index. */
#define INDEX_TEXT_MAX 24
/* Room for the "(valid: ...)" list of an unknown key. */
#define VALID_KEYS_MAX 512

/* --------------------------------------------------------------- text */

/* printf into a new heap string (out of memory aborts). */
static char *
xvasprintf(const char *fmt, va_list ap)
{
    va_list ap2;
    char *s = NULL;
    int n;

    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    DRV_ASSERT(n >= 0);
    s = drv_xmalloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    return s;
}

static char *
xasprintf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static char *
xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    va_start(ap, fmt);
    s = xvasprintf(fmt, ap);
    va_end(ap);
    return s;
}

char *
drv__config_quote(char *buf, const char *s, size_t len)
{
    size_t i;
    size_t o = 0;

    buf[o++] = '"';
    for (i = 0; i < len && i < DRV__CONFIG_QUOTE_MAX; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (ch == '"' || ch == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)ch;
        } else if (ch == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else if (ch == '\t') {
            buf[o++] = '\\';
            buf[o++] = 't';
        } else if (ch < 0x20 || ch == 0x7f) {
            o += (size_t)snprintf(buf + o, 5, "\\x%02x", ch);
        } else {
            buf[o++] = (char)ch;
        }
    }
    if (i < len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* ----------------------------------------------------------- key path */

void
drv__config_path_init(struct drv__config_path *p)
{
    p->cap = PATH_INITIAL_CAP;
    p->s = drv_xmalloc(p->cap);
    p->s[0] = '\0';
    p->len = 0;
}

void
drv__config_path_fini(struct drv__config_path *p)
{
    free(p->s);
    p->s = NULL;
    p->len = 0;
    p->cap = 0;
}

static void
path_add(struct drv__config_path *p, const char *s, size_t n)
{
    if (p->len + n + 1 > p->cap) {
        while (p->len + n + 1 > p->cap)
            p->cap *= 2;
        p->s = drv_xrealloc(p->s, p->cap);
    }
    memcpy(p->s + p->len, s, n);
    p->len += n;
    p->s[p->len] = '\0';
}

size_t
drv__config_path_push_key(struct drv__config_ctx *c, const char *key)
{
    size_t old = c->path.len;

    if (old > 0)
        path_add(&c->path, ".", 1);
    if (key[0] == '\0')
        path_add(&c->path, "\"\"", 2);  /* an empty key must still show */
    else
        path_add(&c->path, key, strlen(key));
    return old;
}

size_t
drv__config_path_push_index(struct drv__config_ctx *c, size_t i)
{
    char buf[INDEX_TEXT_MAX];
    size_t old = c->path.len;
    int n;

    n = snprintf(buf, sizeof buf, "[%zu]", i);
    path_add(&c->path, buf, (size_t)n);
    return old;
}

void
drv__config_path_pop(struct drv__config_ctx *c, size_t len)
{
    DRV_ASSERT(len <= c->path.len);
    c->path.len = len;
    c->path.s[len] = '\0';
}

/* ------------------------------------------------------------- errors */

void
drv__config_error_add(struct drv_config_errors *errs, const char *file,
                      int line, int col, const char *path, const char *msg)
{
    struct drv_config_error e;
    size_t at;

    DRV_CHECK_OBJ(errs, DRV_CONFIG_ERRORS_MAGIC);
    e.line = line;
    e.col = col;
    e.path = drv_xstrdup(path);
    e.msg = drv_xstrdup(msg);
    if (line > 0 && path[0] != '\0')
        e.text = xasprintf("%s:%d:%d: %s: %s", file, line, col, path, msg);
    else if (line > 0)
        e.text = xasprintf("%s:%d:%d: %s", file, line, col, msg);
    else if (path[0] != '\0')
        e.text = xasprintf("%s: %s: %s", file, path, msg);
    else
        e.text = xasprintf("%s: %s", file, msg);

    if (errs->n == errs->cap) {
        errs->cap = errs->cap ? 2 * errs->cap : ERRORS_INITIAL_CAP;
        errs->v = drv_xrealloc(errs->v, errs->cap * sizeof *errs->v);
    }
    /* keep this load's errors sorted by place; equal places stay in
     * report order; errors of earlier loads stay where they are */
    at = errs->n;
    while (at > errs->_base && (errs->v[at - 1].line > line ||
                      (errs->v[at - 1].line == line &&
                       errs->v[at - 1].col > col)))
        at--;
    memmove(&errs->v[at + 1], &errs->v[at], (errs->n - at) * sizeof e);
    errs->v[at] = e;
    errs->n++;
}

void
drv__config_mark_clamp(yaml_mark_t *mark, const char *text, size_t len)
{
    const unsigned char *t = (const unsigned char *)text;
    size_t i, line = 0, col = 0;

    /* where the text ends; line breaks as libyaml counts them: LF,
     * CR LF, CR, NEL, LS, PS */
    for (i = 0; i < len; i++) {
        if (t[i] == '\r' && i + 1 < len && t[i + 1] == '\n')
            continue;
        if (t[i] == '\n' || t[i] == '\r' ||
            (t[i] == 0x85 && i > 0 && t[i - 1] == 0xc2) ||
            ((t[i] == 0xa8 || t[i] == 0xa9) && i > 1 && t[i - 1] == 0x80 &&
             t[i - 2] == 0xe2)) {
            line++;
            col = 0;
        } else if ((t[i] & 0xc0) != 0x80) { /* not a UTF-8 tail byte */
            col++;
        }
    }
    if (mark->line > line || (mark->line == line && mark->column > col)) {
        mark->line = line;
        mark->column = col;
    }
}

int
drv__config_report(struct drv__config_ctx *c, const yaml_node_t *node,
                   const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;
    yaml_mark_t mark = node->start_mark;

    DRV_CHECK_OBJ(c, DRV__CONFIG_CTX_MAGIC);
    va_start(ap, fmt);
    msg = xvasprintf(fmt, ap);
    va_end(ap);
    drv__config_mark_clamp(&mark, c->text, c->len);
    drv__config_error_add(c->errs, c->file, (int)mark.line + 1,
                          (int)mark.column + 1, c->path.s, msg);
    free(msg);
    return DRV_ECONFIG;
}

/* -------------------------------------------------------------- nodes */

yaml_node_t *
drv__config_node(struct drv__config_ctx *c, int id)
{
    yaml_node_t *node = yaml_document_get_node(c->doc, id);

    DRV_AN(node);
    return node;
}

bool
drv__config_is_null(const yaml_node_t *node)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    const char *s = (const char *)node->data.scalar.value;
    size_t i;

    if (node->type != YAML_SCALAR_NODE ||
        node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    for (i = 0; i < DRV_ARRAY_LEN(nulls); i++)
        if (strcmp(s, nulls[i]) == 0)
            return true;
    return false;
}

const char *
drv__config_describe(const yaml_node_t *node, char *buf)
{
    switch (node->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a sequence";
    case YAML_SCALAR_NODE:
        if (drv__config_is_null(node))
            return "null";
        return drv__config_quote(buf, (const char *)node->data.scalar.value,
                                 node->data.scalar.length);
    default:
        return "nothing";
    }
}

/* 0 when node is of type, else report "expected <what>, got ...". */
static int
expect_type(struct drv__config_ctx *c, yaml_node_t *node,
            yaml_node_type_t type, const char *what)
{
    char buf[DRV__CONFIG_QUOTE_BUF];

    if (node->type == type)
        return 0;
    return drv__config_report(c, node, "expected %s, got %s", what,
                              drv__config_describe(node, buf));
}

int
drv__config_expect_map(struct drv__config_ctx *c, yaml_node_t *node)
{
    return expect_type(c, node, YAML_MAPPING_NODE, "a mapping");
}

int
drv__config_expect_seq(struct drv__config_ctx *c, yaml_node_t *node)
{
    return expect_type(c, node, YAML_SEQUENCE_NODE, "a sequence");
}

const char *
drv__config_scalar(struct drv__config_ctx *c, yaml_node_t *node,
                   const char *what)
{
    char buf[DRV__CONFIG_QUOTE_BUF];
    const char *s = NULL;

    if (node->type != YAML_SCALAR_NODE || drv__config_is_null(node)) {
        drv__config_report(c, node, "expected %s, got %s", what,
                           drv__config_describe(node, buf));
        return NULL;
    }
    s = (const char *)node->data.scalar.value;
    if (strlen(s) != node->data.scalar.length) {
        drv__config_report(c, node, "must not contain a NUL byte");
        return NULL;
    }
    return s;
}

/* ------------------------------------------------------------ mapping */

void
drv__config_iter_init(struct drv__config_iter *it, yaml_node_t *map)
{
    DRV_ASSERT(map->type == YAML_MAPPING_NODE);
    it->map = map;
    it->pair = map->data.mapping.pairs.start;
}

/* The earlier pair of it->map whose key equals knode, or NULL. */
static yaml_node_t *
earlier_key(struct drv__config_ctx *c, struct drv__config_iter *it,
            yaml_node_pair_t *upto, const yaml_node_t *knode)
{
    yaml_node_pair_t *p;

    for (p = it->map->data.mapping.pairs.start; p < upto; p++) {
        yaml_node_t *k = drv__config_node(c, p->key);

        if (k->type == YAML_SCALAR_NODE &&
            k->data.scalar.length == knode->data.scalar.length &&
            memcmp(k->data.scalar.value, knode->data.scalar.value,
                   knode->data.scalar.length) == 0)
            return k;
    }
    return NULL;
}

bool
drv__config_iter_next(struct drv__config_ctx *c, struct drv__config_iter *it,
                      const char **key, yaml_node_t **knode,
                      yaml_node_t **vnode, size_t *mark)
{
    char buf[DRV__CONFIG_QUOTE_BUF];

    while (it->pair < it->map->data.mapping.pairs.top) {
        yaml_node_pair_t *pair = it->pair++;
        yaml_node_t *k = drv__config_node(c, pair->key);
        yaml_node_t *first = NULL;
        const char *s = NULL;
        size_t old;

        if (k->type != YAML_SCALAR_NODE) {
            drv__config_report(c, k, "expected a key name, got %s",
                               drv__config_describe(k, buf));
            continue;
        }
        s = (const char *)k->data.scalar.value;
        if (strlen(s) != k->data.scalar.length) {
            drv__config_report(c, k, "a key must not contain a NUL byte");
            continue;
        }
        old = drv__config_path_push_key(c, s);
        first = earlier_key(c, it, pair, k);
        if (first != NULL) {
            drv__config_report(c, k, "duplicate key (first at line %d)",
                               (int)first->start_mark.line + 1);
            drv__config_path_pop(c, old);
            continue;
        }
        *key = s;
        *knode = k;
        *vnode = drv__config_node(c, pair->value);
        *mark = old;
        return true;
    }
    return false;
}

int
drv__config_each_pair(struct drv__config_ctx *c, yaml_node_t *node,
                      drv__config_pair_fn *fn, void *arg)
{
    struct drv__config_iter it;
    yaml_node_t *knode = NULL;
    yaml_node_t *vnode = NULL;
    const char *key = NULL;
    size_t mark = 0;

    if (drv__config_expect_map(c, node) < 0)
        return DRV_ECONFIG;
    drv__config_iter_init(&it, node);
    while (drv__config_iter_next(c, &it, &key, &knode, &vnode, &mark)) {
        fn(c, key, knode, vnode, arg);
        drv__config_path_pop(c, mark);
    }
    return 0;
}

yaml_node_t *
drv__config_find_value(struct drv__config_ctx *c, yaml_node_t *map,
                       const char *name)
{
    yaml_node_pair_t *pair;

    for (pair = map->data.mapping.pairs.start;
         pair < map->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = drv__config_node(c, pair->key);

        if (key->type == YAML_SCALAR_NODE &&
            strcmp((const char *)key->data.scalar.value, name) == 0)
            return drv__config_node(c, pair->value);
    }
    return NULL;
}

/* ------------------------------------------------------------- fields */

const struct drv__config_field *
drv__config_field_find(const struct drv__config_field *table, size_t n,
                       const char *key)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(table[i].name, key) == 0)
            return &table[i];
    return NULL;
}

/* drv__config_each_field's walk: the table, and whom to call. */
struct fields_walk {
    const struct drv__config_field *table;
    size_t n;
    unsigned handler_mask;
    drv__config_field_fn *fn;
    void *arg;
};

static void
field_pair(struct drv__config_ctx *c, const char *key, yaml_node_t *knode,
           yaml_node_t *vnode, void *arg)
{
    const struct fields_walk *w = arg;
    const struct drv__config_field *f =
        drv__config_field_find(w->table, w->n, key);

    if (f == NULL)
        drv__config_unknown_key(c, knode, w->table, w->n, w->handler_mask);
    else
        w->fn(c, f, knode, vnode, w->arg);
}

int
drv__config_each_field(struct drv__config_ctx *c, yaml_node_t *node,
                       const struct drv__config_field *table, size_t n,
                       unsigned handler_mask, drv__config_field_fn *fn,
                       void *arg)
{
    struct fields_walk w = {table, n, handler_mask, fn, arg};

    return drv__config_each_pair(c, node, field_pair, &w);
}

int
drv__config_unknown_key(struct drv__config_ctx *c, const yaml_node_t *knode,
                        const struct drv__config_field *table, size_t n,
                        unsigned handler_mask)
{
    char valid[VALID_KEYS_MAX];
    size_t len = 0;
    size_t i;

    valid[0] = '\0';
    for (i = 0; i < n; i++) {
        int w;

        if (handler_mask != 0 && table[i].handlers != 0 &&
            (table[i].handlers & handler_mask) == 0)
            continue;
        w = snprintf(valid + len, sizeof valid - len, "%s%s",
                     len > 0 ? ", " : "", table[i].name);
        if (w < 0 || (size_t)w >= sizeof valid - len)
            break;
        len += (size_t)w;
    }
    return drv__config_report(c, knode, "unknown key (valid: %s)", valid);
}

/* Check a string value: non-empty, template syntax, the field's check. */
static int
check_string(struct drv__config_ctx *c, const struct drv__config_field *f,
             yaml_node_t *node, const char *s, bool nonempty)
{
    char buf[DRV__CONFIG_QUOTE_BUF];
    struct drv_err err;

    drv_err_clear(&err);
    if (nonempty && s[0] == '\0')
        return drv__config_report(c, node, "must not be empty");
    if ((f->flags & DRV__CONFIG_TEMPLATE) &&
        drv_template_check(s, &err) < 0)
        return drv__config_report(c, node, "bad template %s: %s",
                                  drv__config_quote(buf, s, strlen(s)),
                                  err.msg);
    if (f->check != NULL && f->check(s, &err) < 0)
        return drv__config_report(c, node, "%s", err.msg);
    return 0;
}

/* Read a number-like scalar; *out is set only when the value is valid. */
static int
read_number(struct drv__config_ctx *c, const struct drv__config_field *f,
            yaml_node_t *val, int64_t *out)
{
    char buf[DRV__CONFIG_QUOTE_BUF];
    const char *s = NULL;
    const char *what = NULL;
    const char *bad = NULL;
    int64_t v = 0;
    int rc;

    switch (f->kind) {
    case DRV__CONFIG_INT:
        what = "an integer";
        bad = "is not an integer";
        break;
    case DRV__CONFIG_DURATION:
        what = "a duration";
        bad = "is not a duration (use 250ms, 30s, 5m, 1h)";
        break;
    default:
        what = "a size";
        bad = "is not a size (use 512, 64KiB, 16MiB, 1GiB)";
        break;
    }
    s = drv__config_scalar(c, val, what);
    if (s == NULL)
        return DRV_ECONFIG;
    if (f->kind == DRV__CONFIG_INT)
        rc = drv_parse_int(s, INT_MIN, INT_MAX, &v);
    else if (f->kind == DRV__CONFIG_DURATION)
        rc = drv_parse_duration_ms(s, &v);
    else
        rc = drv_parse_size(s, &v);
    drv__config_quote(buf, s, strlen(s));
    if (rc == -ERANGE && f->kind == DRV__CONFIG_INT)
        return drv__config_report(c, val, "%s is out of range (at most %d)",
                                  buf, INT_MAX);
    if (rc == -ERANGE)
        return drv__config_report(c, val, "%s is too large", buf);
    if (rc < 0)
        return drv__config_report(c, val, "%s %s", buf, bad);
    if (v < f->min && f->min == 1)
        return drv__config_report(c, val, "must be greater than 0");
    if (v < f->min && f->min == 0)
        return drv__config_report(c, val, "must not be negative");
    if (v < f->min)
        return drv__config_report(c, val, "must be at least %lld",
                                  (long long)f->min);
    *out = v;
    return 0;
}

static int
read_bool(struct drv__config_ctx *c, yaml_node_t *val, bool *out)
{
    char buf[DRV__CONFIG_QUOTE_BUF];
    const char *s = drv__config_scalar(c, val, "a boolean");

    if (s == NULL)
        return DRV_ECONFIG;
    if (strcmp(s, "true") == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(s, "false") == 0) {
        *out = false;
        return 0;
    }
    return drv__config_report(c, val,
                              "%s is not a boolean (use true or false)",
                              drv__config_quote(buf, s, strlen(s)));
}

static int
read_string(struct drv__config_ctx *c, const struct drv__config_field *f,
            yaml_node_t *val, char **out)
{
    const char *s = drv__config_scalar(c, val, "a string");

    if (s == NULL)
        return DRV_ECONFIG;
    if (check_string(c, f, val, s, f->flags & DRV__CONFIG_NONEMPTY) < 0)
        return DRV_ECONFIG;
    free(*out);
    *out = drv_xstrdup(s);
    return 0;
}

static int
read_strseq(struct drv__config_ctx *c, const struct drv__config_field *f,
            yaml_node_t *val, char ***out, size_t *nout)
{
    yaml_node_item_t *item;
    char **v = NULL;
    size_t n = 0;
    int rc = 0;

    if (drv__config_expect_seq(c, val) < 0)
        return DRV_ECONFIG;
    if ((f->flags & DRV__CONFIG_NONEMPTY) &&
        val->data.sequence.items.start == val->data.sequence.items.top)
        return drv__config_report(c, val, "must not be an empty list");
    v = drv_xcalloc((size_t)(val->data.sequence.items.top -
                             val->data.sequence.items.start) + 1,
                    sizeof *v);
    for (item = val->data.sequence.items.start;
         item < val->data.sequence.items.top; item++) {
        yaml_node_t *e = drv__config_node(c, *item);
        size_t old = drv__config_path_push_index(c, n);
        const char *s = drv__config_scalar(c, e, "a string");

        if (s == NULL || check_string(c, f, e, s, false) < 0)
            rc = DRV_ECONFIG;
        else
            v[n] = drv_xstrdup(s);
        n++;
        drv__config_path_pop(c, old);
    }
    if (rc < 0) {
        drv_strv_free(v, n);
        return rc;
    }
    drv_strv_free(*out, *nout);
    *out = v;
    *nout = n;
    return 0;
}

/* A STRMAP being read: the field, the pairs kept so far, any error. */
struct strmap_read {
    const struct drv__config_field *f;
    struct drv_config_kv *v;
    size_t n;
    int rc;
};

static void
strmap_pair(struct drv__config_ctx *c, const char *key, yaml_node_t *knode,
            yaml_node_t *vnode, void *arg)
{
    struct strmap_read *r = arg;
    const char *s = NULL;
    struct drv_err err;
    int rc = 0;

    drv_err_clear(&err);
    if (key[0] == '\0')
        rc = drv_err_set(&err, -EINVAL, "%s must not be empty",
                         r->f->key_name);
    else if (r->f->key_check != NULL)
        rc = r->f->key_check(key, &err);
    if (rc < 0) {
        drv__config_report(c, knode, "%s", err.msg);
        r->rc = DRV_ECONFIG;
        return;
    }
    s = drv__config_scalar(c, vnode, "a string");
    if (s == NULL || check_string(c, r->f, vnode, s, false) < 0) {
        r->rc = DRV_ECONFIG;
        return;
    }
    r->v[r->n].key = drv_xstrdup(key);
    r->v[r->n].value = drv_xstrdup(s);
    r->n++;
}

static int
read_strmap(struct drv__config_ctx *c, const struct drv__config_field *f,
            yaml_node_t *val, struct drv_config_kv **out, size_t *nout)
{
    struct strmap_read r = {.f = f};
    size_t npairs;

    DRV_ASSERT(f->key_name != NULL);
    if (drv__config_expect_map(c, val) < 0)
        return DRV_ECONFIG;
    npairs = (size_t)(val->data.mapping.pairs.top -
                      val->data.mapping.pairs.start);
    r.v = drv_xcalloc(npairs, sizeof *r.v);
    drv__config_each_pair(c, val, strmap_pair, &r);
    /* a duplicate key was reported by the walk: the map is not used */
    if (r.rc == 0 && r.n != npairs)
        r.rc = DRV_ECONFIG;
    if (r.rc < 0) {
        drv__config_kv_free(r.v, r.n);
        return r.rc;
    }
    drv__config_kv_free(*out, *nout);
    *out = r.v;
    *nout = r.n;
    return 0;
}

int
drv__config_field_set(struct drv__config_ctx *c,
                      const struct drv__config_field *f, yaml_node_t *val,
                      void *target)
{
    char *base = target;
    int64_t v = 0;
    int rc;

    switch (f->kind) {
    case DRV__CONFIG_INT:
        rc = read_number(c, f, val, &v);
        if (rc == 0)
            *(int *)(void *)(base + f->off) = (int)v;
        return rc;
    case DRV__CONFIG_DURATION:
    case DRV__CONFIG_SIZE:
        return read_number(c, f, val, (int64_t *)(void *)(base + f->off));
    case DRV__CONFIG_BOOL:
        return read_bool(c, val, (bool *)(void *)(base + f->off));
    case DRV__CONFIG_STRING:
        return read_string(c, f, val, (char **)(void *)(base + f->off));
    case DRV__CONFIG_STRSEQ:
        return read_strseq(c, f, val, (char ***)(void *)(base + f->off),
                           (size_t *)(void *)(base + f->count_off));
    case DRV__CONFIG_STRMAP:
        return read_strmap(c, f, val,
                           (struct drv_config_kv **)(void *)(base + f->off),
                           (size_t *)(void *)(base + f->count_off));
    case DRV__CONFIG_SPECIAL:
    default:
        break;
    }
    DRV_ASSERT(!"special fields are read by their section");
    return DRV_ECONFIG;
}

void
drv__config_fields_free(const struct drv__config_field *table, size_t n,
                        void *target)
{
    char *base = target;
    size_t i;

    for (i = 0; i < n; i++) {
        const struct drv__config_field *f = &table[i];
        size_t *count = (size_t *)(void *)(base + f->count_off);

        if (f->kind == DRV__CONFIG_STRING)
            free(*(char **)(void *)(base + f->off));
        else if (f->kind == DRV__CONFIG_STRSEQ)
            drv_strv_free(*(char ***)(void *)(base + f->off), *count);
        else if (f->kind == DRV__CONFIG_STRMAP)
            drv__config_kv_free(
                *(struct drv_config_kv **)(void *)(base + f->off), *count);
    }
}

void
drv__config_kv_free(struct drv_config_kv *v, size_t n)
{
    size_t i;

    if (v == NULL)
        return;
    for (i = 0; i < n; i++) {
        free(v[i].key);
        free(v[i].value);
    }
    free(v);
}
