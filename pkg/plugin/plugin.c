/*
 * plugin.c -- the plugin loader: dlopen, dlsym, table checks, init and
 * shutdown (include/drover/plugin.h, include/drover/handler.h).
 *
 * DESIGN. A set holds two lists:
 *   libs       one record per distinct (resolved path, symbol): the dlopen
 *              handle and a private, zero-padded copy of the handler table
 *              (members beyond the plugin's `size` read NULL, so the rest
 *              of drover never looks at the plugin's own memory layout);
 *   instances  one per job type: a borrowed lib, the job type's name and
 *              the state init() returned, newest first.
 * Loading is all-or-nothing per instance: an instance exists only after a
 * successful init(). Free runs shutdown() newest first (the reverse of
 * init order, as constructors/destructors pair), then dlclose()s.
 * Everything runs on the main thread before the loop starts or after it
 * ended, so there is no locking; dlerror() is only read right after the
 * call that set it.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover/common.h"
#include "drover/plugin.h"

#define PATH_MAX_ 4096                  /* resolved library path */
#define LABEL_MAX (2 * PATH_MAX_ + 8)   /* "LIBRARY (PATH)" for messages */

struct plib {
    unsigned magic;
#define PLIB_MAGIC 0x9111b001U
    char *path;                 /* owned: resolved path given to dlopen */
    char *library;              /* owned: as configured (for messages) */
    char *symbol;               /* owned */
    void *handle;               /* owned: dlopen handle */
    struct drv_handler table;   /* the checked, zero-padded copy */
    struct plib *next;          /* borrowed: set's list */
};

struct drv_plugin {
    unsigned magic;
#define DRV_PLUGIN_MAGIC 0x9111b002U
    struct plib *lib;           /* borrowed: owned by the set */
    char *job_type;             /* owned */
    struct drv_plugin_info info; /* table and path borrowed from lib; state
                                    the plugin's: freed by its shutdown() */
    struct drv_plugin *next;    /* borrowed: set's list, newest first */
};

struct drv_plugin_set {
    unsigned magic;
#define DRV_PLUGIN_SET_MAGIC 0x9111b003U
    struct plib *libs;          /* owned list */
    size_t nlibs;               /* entries of libs */
    struct drv_plugin *instances; /* owned list, newest first */
};

/* ------------------------------------------------------------- paths */

int
drv_plugin_resolve(const char *library, const char *config_file, char *out,
                   size_t n)
{
    const char *slash = NULL;
    int w;

    if (library[0] == '/' || strchr(library, '/') == NULL ||
        config_file == NULL)
        w = snprintf(out, n, "%s", library);
    else if ((slash = strrchr(config_file, '/')) == NULL)
        w = snprintf(out, n, "%s", library); /* config in the cwd */
    else
        w = snprintf(out, n, "%.*s/%s", (int)(slash - config_file),
                     config_file, library);
    if (w < 0 || (size_t)w >= n)
        return -ENAMETOOLONG;
    return 0;
}

/* The library as a message names it: configured, plus resolved if other. */
static void
lib_label(char *buf, size_t n, const char *library, const char *path)
{
    if (strcmp(library, path) == 0)
        snprintf(buf, n, "%s", library);
    else
        snprintf(buf, n, "%s (%s)", library, path);
}

/* dlerror() text without its leading "PATH: " (the message says it). */
static const char *
dl_reason(const char *path)
{
    const char *e = dlerror();
    size_t n = strlen(path);

    if (e == NULL)
        return "unknown error";
    if (strncmp(e, path, n) == 0 && e[n] == ':' && e[n + 1] == ' ')
        e += n + 2;
    return e;
}

/* ------------------------------------------------------------ libraries */

static void
plib_free(struct plib *l)
{
    if (l == NULL)
        return;
    if (l->handle != NULL)
        dlclose(l->handle);
    free(l->path);
    free(l->library);
    free(l->symbol);
    DRV_FREE_OBJ(l);
}

static struct plib *
plib_find(struct drv_plugin_set *s, const char *path, const char *symbol)
{
    struct plib *l;

    for (l = s->libs; l != NULL; l = l->next)
        if (strcmp(l->path, path) == 0 && strcmp(l->symbol, symbol) == 0)
            return l;
    return NULL;
}

/* Open path, resolve symbol, call it and check the table it returns. */
static int
plib_open(const char *library, const char *path, const char *symbol,
          struct plib **out, struct drv_err *err)
{
    struct plib *l = NULL;
    drv_handler_entry_fn *entry = NULL;
    const struct drv_handler *h;
    char label[LABEL_MAX];
    void *sym;
    int rc = DRV_ECONFIG;

    lib_label(label, sizeof label, library, path);
    DRV_ALLOC_OBJ(l, PLIB_MAGIC);
    l->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (l->handle == NULL) {
        drv_err_set(err, rc, "cannot load %s: %s", label, dl_reason(path));
        goto fail;
    }
    (void)dlerror();
    sym = dlsym(l->handle, symbol);
    if (sym == NULL) {
        drv_err_set(err, rc, "symbol %s not found in %s", symbol, label);
        goto fail;
    }
    /* POSIX: a data pointer from dlsym converts to a function pointer */
    memcpy(&entry, &sym, sizeof entry);
    h = entry();
    if (h == NULL) {
        drv_err_set(err, rc, "%s in %s returned no handler table", symbol,
                    label);
        goto fail;
    }
    if (h->size < DRV_HANDLER_MIN_SIZE) {
        drv_err_set(err, rc, "%s in %s: handler table too small (%zu bytes, "
                    "need at least %zu): built against another handler.h?",
                    symbol, label, h->size, (size_t)DRV_HANDLER_MIN_SIZE);
        goto fail;
    }
    if (h->abi_version != DRV_HANDLER_ABI_VERSION) {
        drv_err_set(err, rc, "%s in %s: handler ABI version %u, this drover "
                    "supports %u", symbol, label, (unsigned)h->abi_version,
                    DRV_HANDLER_ABI_VERSION);
        goto fail;
    }
    /* copy what both sides know; newer members of a newer plugin are not
     * ours to read, older plugins' missing ones stay NULL */
    memcpy(&l->table, h, h->size < sizeof l->table ? h->size
                                                   : sizeof l->table);
    l->table.size = sizeof l->table;
    l->path = drv_xstrdup(path);
    l->library = drv_xstrdup(library);
    l->symbol = drv_xstrdup(symbol);
    *out = l;
    return 0;
fail:
    plib_free(l);
    return rc;
}

/* ------------------------------------------------------------------ API */

struct drv_plugin_set *
drv_plugin_set_create(void)
{
    struct drv_plugin_set *s;

    DRV_ALLOC_OBJ(s, DRV_PLUGIN_SET_MAGIC);
    return s;
}

void
drv_plugin_set_free(struct drv_plugin_set *s)
{
    struct drv_plugin *p;
    struct plib *l;

    if (DRV_NO_OBJ(s, DRV_PLUGIN_SET_MAGIC))
        return;
    while ((p = s->instances) != NULL) {
        s->instances = p->next;
        if (p->lib->table.shutdown != NULL)
            p->lib->table.shutdown(p->info.state);
        free(p->job_type);
        DRV_FREE_OBJ(p);
    }
    while ((l = s->libs) != NULL) {
        s->libs = l->next;
        plib_free(l);
    }
    DRV_FREE_OBJ(s);
}

int
drv_plugin_load(struct drv_plugin_set *s, const struct drv_plugin_opts *o,
                struct drv_plugin **out, struct drv_err *err)
{
    struct plib *l;
    struct drv_plugin *p;
    const struct drv_handler *h;
    char path[PATH_MAX_], label[LABEL_MAX], ierr[DRV_ERR_MSG_MAX];
    void *state = NULL;
    int rc;

    DRV_CHECK_OBJ(s, DRV_PLUGIN_SET_MAGIC);
    *out = NULL;
    if (o->library == NULL || o->library[0] == '\0' || o->symbol == NULL ||
        o->symbol[0] == '\0')
        return drv_err_set(err, DRV_ECONFIG, "plugin needs library and "
                           "symbol");
    if (drv_plugin_resolve(o->library, o->config_file, path,
                           sizeof path) < 0)
        return drv_err_set(err, DRV_ECONFIG, "cannot load %s: path too "
                           "long", o->library);
    l = plib_find(s, path, o->symbol);
    if (l == NULL) {
        rc = plib_open(o->library, path, o->symbol, &l, err);
        if (rc < 0)
            return rc;
        l->next = s->libs;
        s->libs = l;
        s->nlibs++;
    }
    h = &l->table;
    lib_label(label, sizeof label, o->library, path);
    if (o->blocking && h->run == NULL)
        return drv_err_set(err, DRV_ECONFIG, "%s in %s: blocking: true "
                           "needs a run function; the table has none",
                           o->symbol, label);
    if (!o->blocking && h->start == NULL)
        return drv_err_set(err, DRV_ECONFIG, "%s in %s: the table has no "
                           "start function (a run-only plugin needs "
                           "blocking: true)", o->symbol, label);
    if (h->init != NULL) {
        ierr[0] = '\0';
        rc = h->init(o->host, o->job_type, &state, ierr, sizeof ierr);
        ierr[sizeof ierr - 1] = '\0';
        if (rc != 0)
            return drv_err_set(err, DRV_ECONFIG, "%s in %s: init failed: "
                               "%s", o->symbol, label,
                               ierr[0] != '\0' ? ierr
                               : drv_strerror(rc < 0 ? rc : -EINVAL));
    }
    DRV_ALLOC_OBJ(p, DRV_PLUGIN_MAGIC);
    p->lib = l;
    p->job_type = drv_xstrdup(o->job_type != NULL ? o->job_type : "");
    p->info.handler = &l->table;
    p->info.state = state;
    p->info.path = l->path;
    p->next = s->instances;
    s->instances = p;
    *out = p;
    return 0;
}

const struct drv_plugin_info *
drv_plugin_info(const struct drv_plugin *p)
{
    DRV_CHECK_OBJ(p, DRV_PLUGIN_MAGIC);
    return &p->info;
}

size_t
drv_plugin_set_nlibs(const struct drv_plugin_set *s)
{
    DRV_CHECK_OBJ(s, DRV_PLUGIN_SET_MAGIC);
    return s->nlibs;
}
