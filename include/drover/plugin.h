/*
 * drover/plugin.h -- loading plugin handlers (include/drover/handler.h).
 *
 * A plugin set owns every library loaded for one worker: each distinct
 * (library path, symbol) is dlopen'ed and its entry function called once;
 * each job type that uses it gets its own instance (struct drv_plugin):
 * the checked copy of the handler table plus the state its init()
 * returned. drv_plugin_set_free shuts every instance down (newest first)
 * and closes the libraries.
 *
 * Checks at load, each a DRV_ECONFIG with a message naming the library
 * (as configured, and as resolved when that differs) and the symbol:
 * the file loads; the symbol exists; the entry returns a table; the
 * table is at least DRV_HANDLER_MIN_SIZE long and of
 * DRV_HANDLER_ABI_VERSION; it has the entry point the mode needs (run for
 * blocking, start otherwise); init() succeeds.
 *
 * Path rule: an absolute library path is used as it is; a relative one
 * containing '/' is taken relative to the directory of the config file
 * (opts->config_file; its absence means the current directory); a bare
 * name (no '/') goes to the dynamic linker's search.
 *
 * Threads: loop (main) thread only; a set is not shared between threads.
 */
#ifndef DROVER_PLUGIN_H
#define DROVER_PLUGIN_H

#include <stddef.h>

#include "drover/error.h"
#include "drover/handler.h"

struct drv_plugin_set;
struct drv_plugin;

/* What to load for one job type. Every pointer is borrowed for the call,
 * except host (see below). */
struct drv_plugin_opts {
    const char *library;        /* `library:` as configured */
    const char *symbol;         /* `symbol:` */
    const char *config_file;    /* relative paths resolve against its
                                   directory; NULL = current directory */
    const char *job_type;       /* handed to init(); copied */
    int blocking;               /* 1: needs run(), 0: needs start() */
    const struct drv_host *host; /* borrowed: handed to init(); must stay
                                   valid until drv_plugin_set_free returns
                                   (shutdown() may still log through it) */
};

/* drv_plugin_set_create -- an empty set (caller owns it). */
struct drv_plugin_set *drv_plugin_set_create(void);

/*
 * drv_plugin_set_free -- call shutdown() of every instance (newest
 * first), then dlclose every library. NULL does nothing. No job may be
 * running any plugin code any more.
 */
void drv_plugin_set_free(struct drv_plugin_set *s);

/*
 * drv_plugin_load -- load o->library / o->symbol into s (or reuse it when
 * already loaded), check the table for o->blocking, and create an
 * instance for o->job_type by calling init(). On success *out is the
 * instance, owned by s (valid until drv_plugin_set_free). Returns 0, or
 * DRV_ECONFIG with err->msg saying what failed, e.g.
 *   cannot load ./libx.so: cannot open shared object file: No such file
 *   or directory
 *   symbol crunch not found in ./libx.so
 * (the caller adds which job type: "jobs.crunch: ..."). A failed load
 * leaves s as it was, apart from a library kept open for reuse.
 */
int drv_plugin_load(struct drv_plugin_set *s, const struct drv_plugin_opts *o,
                    struct drv_plugin **out, struct drv_err *err);

/* What a loaded instance gives its user. */
struct drv_plugin_info {
    const struct drv_handler *handler; /* the checked table: members beyond
                                          the plugin's size read NULL */
    void *state;                       /* what init() stored (may be NULL) */
    const char *path;                  /* the library path as dlopen got it */
};

/* drv_plugin_info -- the instance's table, state and path; borrowed (all
 * of it) until the set is freed. */
const struct drv_plugin_info *drv_plugin_info(const struct drv_plugin *p);

/* drv_plugin_set_nlibs -- distinct (library, symbol) pairs loaded. */
size_t drv_plugin_set_nlibs(const struct drv_plugin_set *s);

/*
 * drv_plugin_resolve -- the path rule above: library resolved against
 * config_file's directory into out[0..n). Returns 0 or -ENAMETOOLONG.
 */
int drv_plugin_resolve(const char *library, const char *config_file,
                       char *out, size_t n);

#endif
