/*
 * drover/handler.h -- the plugin ABI: C job handlers in a shared library
 * (`handler: plugin`; doc/plugins.md is the guide).
 *
 * This header is the whole contract between droverd and a plugin. A
 * plugin includes it and nothing else of drover, and links against
 * nothing of drover: every service it may use reaches it through the host
 * table (struct drv_host) handed to its init function. Build a plugin
 * with
 *
 *     cc -std=c11 -fPIC -shared -I/path/to/drover/include -o libx.so x.c
 *
 * and configure it as
 *
 *     jobs:
 *       crunch:
 *         handler: plugin
 *         library: plugins/libcrunch.so   # see "Finding the library"
 *         symbol: crunch                  # the entry function below
 *         blocking: true                  # run() on the thread pool
 *
 * ENTRY POINT. `symbol` names a function of type drv_handler_entry_fn,
 * exported from the library with C linkage:
 *
 *     const struct drv_handler *crunch(void);
 *
 * droverd calls it once per distinct (library, symbol), on the main
 * thread at start, and copies the table it returns: the table may be a
 * static filled by DRV_HANDLER_INIT on the first call, and need not stay
 * valid after the call; strings it points to (name) must stay valid while
 * the library is loaded. NULL means "no table" (a start failure).
 *
 * VERSIONING (after libssh's ssh_callbacks_init). Both tables start with
 * `size` and `abi_version`:
 *   - abi_version is DRV_HANDLER_ABI_VERSION; it changes only on an
 *     incompatible change, and droverd refuses a table of another version;
 *   - size is sizeof the table as the side that filled it was compiled.
 *     Compatible growth appends members at the end: droverd accepts a
 *     table at least DRV_HANDLER_MIN_SIZE long and treats members beyond
 *     the plugin's size as NULL; a plugin checks DRV_HOST_HAS(host, m)
 *     before calling a host member newer than the ones listed here.
 * Always fill a handler table with DRV_HANDLER_INIT(&h) (zeroes it, then
 * sets size and abi_version), then assign the members you implement.
 *
 * TWO MODES, chosen by the job type's `blocking:` key:
 *   async    (blocking: false, the default) -- start() runs on the event
 *            loop thread and must not block: it begins the work and
 *            returns; the job ends when the plugin calls host->done(),
 *            from inside start() or later (from a host->timer callback,
 *            or from the plugin's own loop-thread code). cancel() is
 *            called at the job's timeout or on shutdown: stop at once and
 *            call host->done(). Table needs: start (cancel optional).
 *   blocking (blocking: true) -- run() is called on a pool thread and
 *            returns the outcome. It may block and compute. A pool thread
 *            cannot be killed: at the job's timeout (or on shutdown) the
 *            job fails (or is requeued) at once, host->cancelled() turns
 *            1, run() should return soon; whatever it returns then is
 *            ignored, and its thread keeps its concurrency permit until
 *            it really returns. Table needs: run.
 * A table may offer both (start and run); the config picks one. A table
 * lacking the entry point its config needs is refused at start.
 *
 * OUTCOMES (host->done status in async mode, run()'s return value in
 * blocking mode, start()'s return value when it cannot start):
 *   DRV_HANDLER_OK (0)      success; the result (host->set_result) is
 *                           written to the result hash (result_ttl);
 *   DRV_HANDLER_PERMANENT   failure, not retried: dead at once;
 *   any other value         failure (DRV_HANDLER_RETRY, a -errno, ...):
 *                           retried per `retries`/`backoff`, then dead.
 * The error text is what host->set_error set last, else a generic one. A
 * timeout overrides the outcome ("timed out after N ms", retried); a
 * shutdown puts the job back on its queue whatever the plugin says.
 *
 * THREADS AND LIFETIMES, in one place:
 *   init/shutdown  main (loop) thread, once per job type using the table,
 *                  at droverd's start / clean exit (shutdown is not called
 *                  when droverd exits with a blocking run() still going --
 *                  a thread cannot be joined -- nor on a hard stop);
 *   start/cancel   loop thread; never concurrently with each other;
 *   run            a pool thread; several run() calls of one job type may
 *                  run at once on different threads with the same state,
 *                  so state must be thread-safe (or read-only);
 *   the job view   `struct drv_job_view *job` is valid from start() until
 *                  host->done() (async) or during run() (blocking), and
 *                  only on that thread: do not use it afterwards, keep
 *                  copies of what you need. Strings the host returns are
 *                  borrowed for the same span;
 *   the host table valid from init() until shutdown() returns; every
 *                  member may be called on the thread that currently
 *                  owns the job, host->cancelled and host->log from any.
 *
 * FINDING THE LIBRARY. `library:` is an absolute path, or a path with a
 * '/' taken relative to the directory of the config file (so a config
 * means the same whatever directory droverd starts in), or a bare file
 * name, looked up by the dynamic linker (LD_LIBRARY_PATH, ld.so.cache).
 * It is loaded with dlopen(RTLD_NOW | RTLD_LOCAL) once per process.
 * A plugin runs inside droverd with its privileges: trusted code only.
 */
#ifndef DROVER_HANDLER_H
#define DROVER_HANDLER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DRV_HANDLER_ABI_VERSION 1u

/*
 * The compatible additions to version 1 this header knows, counted: a
 * host table of minor m has every member listed for m and below (check
 * with DRV_HOST_HAS; a plugin built against an older minor keeps loading
 * and never sees the newer members).
 *   0  the first version-1 host
 *   1  progress
 */
#define DRV_HANDLER_ABI_MINOR 1u

/* Outcomes (see OUTCOMES above). Chosen apart from every -errno so that a
 * plugin returning -ENOENT never means "permanent" by accident. */
#define DRV_HANDLER_OK 0
#define DRV_HANDLER_RETRY (-4101)
#define DRV_HANDLER_PERMANENT (-4102)

/* Levels of host->log (same order as droverd's --log-level). */
#define DRV_HANDLER_LOG_ERROR 0
#define DRV_HANDLER_LOG_WARN 1
#define DRV_HANDLER_LOG_INFO 2
#define DRV_HANDLER_LOG_DEBUG 3

/* One job, as the host shows it to the plugin. Opaque: use the host
 * functions. Valid as described under THREADS AND LIFETIMES. */
struct drv_job_view;
struct drv_host;

/* The function `symbol:` names. */
typedef const struct drv_handler *drv_handler_entry_fn(void);

/* A host->timer callback: loop thread, the job still unfinished. */
typedef void drv_handler_timer_fn(struct drv_job_view *job, void *arg);

/* Frees what host->set_data stored (loop thread). */
typedef void drv_handler_free_fn(void *data);

/* ------------------------------------------------------- the plugin */

struct drv_handler {
    size_t size;            /* sizeof(struct drv_handler) as compiled:
                               set by DRV_HANDLER_INIT */
    uint32_t abi_version;   /* DRV_HANDLER_ABI_VERSION: DRV_HANDLER_INIT */
    const char *name;       /* for logs and errors; may be NULL (the
                               symbol is used); static storage */

    /*
     * init -- once per job type that uses this table, before any job,
     * main thread. host is valid until shutdown returns; job_type (the
     * key under jobs:) likewise. Store per-type state in *state (it
     * starts NULL and is handed to every other call). Return 0, or a
     * negative code with a message in err[0..err_size) (err_size >= 128):
     * droverd then refuses to start, naming the library, symbol and job
     * type with that message. May be NULL (state stays NULL).
     */
    int (*init)(const struct drv_host *host, const char *job_type,
                void **state, char *err, size_t err_size);

    /*
     * shutdown -- once per successful init, at droverd's clean exit,
     * after the last job of the type has ended, main thread. Free state.
     * May be NULL.
     */
    void (*shutdown)(void *state);

    /*
     * start -- async mode: begin job on the loop thread without blocking.
     * Return 0 once started; the job then ends with exactly one
     * host->done(job, status) call -- from inside start, from a timer, or
     * later from the plugin's loop-thread code. Return non-zero (an
     * outcome, see OUTCOMES) without calling done when it cannot start:
     * the job fails with that outcome. Required when blocking is false.
     */
    int (*start)(void *state, struct drv_job_view *job);

    /*
     * cancel -- async mode: the job timed out or droverd is stopping.
     * Loop thread, at most once per job, only while the job is unfinished.
     * The job's host timers are already cleared. Stop the work and call
     * host->done (any status: the host decides the outcome) now or soon:
     * within 5 s, else the job is finished without the plugin (its view
     * then stays allocated, inert, until exit, so a late done is harmless
     * but logged). May be NULL: the host then finishes the job itself --
     * fine for a plugin whose only pending work is host timers.
     */
    void (*cancel)(void *state, struct drv_job_view *job);

    /*
     * run -- blocking mode: do the job on a pool thread and return its
     * outcome (see OUTCOMES). Poll host->cancelled(job) in long loops and
     * return soon once it says 1. Required when blocking is true.
     */
    int (*run)(void *state, struct drv_job_view *job);
};

/* The size of a version-1 table: the least droverd accepts. */
#define DRV_HANDLER_MIN_SIZE                                            \
    (offsetof(struct drv_handler, run) + sizeof(int (*)(void *, void *)))

/* Fill a handler table (caller memory): zero it, set size and version. */
#define DRV_HANDLER_INIT(h)                                             \
    do {                                                                \
        memset((h), 0, sizeof *(h));                                    \
        (h)->size = sizeof *(h);                                        \
        (h)->abi_version = DRV_HANDLER_ABI_VERSION;                     \
    } while (0)

/* ---------------------------------------------------------- the host */

/*
 * What droverd offers a plugin. Unless said otherwise a member may be
 * called only on the thread that currently owns the job (the loop thread
 * in async mode, the pool thread inside run() in blocking mode) and only
 * while the job view is valid. Every member is always non-NULL in a host
 * whose size covers it.
 */
struct drv_host {
    size_t size;            /* sizeof(struct drv_host) as droverd was
                               compiled: see DRV_HOST_HAS */
    uint32_t abi_version;   /* DRV_HANDLER_ABI_VERSION */

    /* -------- reading the job (every string is borrowed, see above) */

    /*
     * field -- the value of the job field called name (NUL-terminated,
     * exact, case-sensitive), the last one when the entry repeats it;
     * NULL when absent. "id" and "attempt" are always present and read
     * as id() and attempt() give them (the same values the job type's
     * templates see). The value is NUL-terminated and *len (len may be
     * NULL) is its length: values are byte strings and may hold NULs.
     */
    const char *(*field)(const struct drv_job_view *job, const char *name,
                         size_t *len);

    /* nfields -- number of fields of the entry, duplicates and the
     * worker's own (job, id, attempt, ...) included. */
    size_t (*nfields)(const struct drv_job_view *job);

    /*
     * field_at -- the i-th field in entry order (i < nfields): returns
     * the value (NUL-terminated, length in *value_len) and sets *name
     * (NUL-terminated) and *name_len; any out pointer may be NULL.
     * Returns NULL when i is out of range.
     */
    const char *(*field_at)(const struct drv_job_view *job, size_t i,
                            const char **name, size_t *name_len,
                            size_t *value_len);

    /* id -- the job id (field `id`, else the first entry id),
     * NUL-terminated. An id is a byte string and may hold a NUL: read
     * field(job, "id", &len) for every byte and its length. */
    const char *(*id)(const struct drv_job_view *job);

    /* queue -- the queue name the job was fetched from. */
    const char *(*queue)(const struct drv_job_view *job);

    /* job_type -- the job type (the key under jobs:). */
    const char *(*job_type)(const struct drv_job_view *job);

    /* entry_id -- the stream entry id of this delivery. */
    const char *(*entry_id)(const struct drv_job_view *job);

    /* attempt -- this attempt's number, from 1 (DROVER_ATTEMPT of exec). */
    uint64_t (*attempt)(const struct drv_job_view *job);

    /* -------- the outcome */

    /*
     * set_result -- the success result: data[0..len) is copied (binary
     * safe); the last call wins. Returns 0, or -E2BIG (larger than
     * worker.max_job_bytes; nothing stored), -EINVAL (no job view).
     */
    int (*set_result)(struct drv_job_view *job, const void *data,
                      size_t len);

    /*
     * set_error -- the failure text (NUL-terminated, copied, cut at
     * 4 KiB); the last call wins. It becomes the dead entry's `error` and
     * the result hash's `error`. Returns 0 or -EINVAL.
     */
    int (*set_error)(struct drv_job_view *job, const char *msg);

    /*
     * done -- async mode only, loop thread: the job is over with status
     * (see OUTCOMES). Exactly once per started job: afterwards the view
     * is invalid. Returns 0; -EALREADY when the job was already finished
     * (a second call, or one after droverd gave up waiting; logged,
     * nothing changes); -EINVAL in blocking mode (return from run()).
     */
    int (*done)(struct drv_job_view *job, int status);

    /*
     * cancelled -- 1 once the job's timeout or a shutdown reached it
     * (sticky), else 0. Any thread while the view is valid: a blocking
     * run() polls it.
     */
    int (*cancelled)(const struct drv_job_view *job);

    /*
     * timer -- async mode only, loop thread: call fn(job, arg) on the
     * loop thread once, ms milliseconds from now, if the job is still
     * unfinished then. The host deletes a job's pending timers when the
     * job is done or cancelled (before cancel() runs), so fn never sees a
     * finished job; there is no other way to stop one. fn never runs
     * from inside timer() itself, even for ms 0. arg is the plugin's and
     * is never freed by the host, also when the timer is dropped: keep
     * per-job allocations in set_data, which the host does free. Timers
     * armed from cancel() run as usual until done. Returns 0 (fn then
     * runs at most once), or -EINVAL (blocking mode or no fn), -EALREADY
     * (job finished) or -ENOMEM, and fn never runs.
     */
    int (*timer)(struct drv_job_view *job, uint64_t ms,
                 drv_handler_timer_fn *fn, void *arg);

    /*
     * set_data / data -- one pointer of per-job plugin data (the way back
     * to the plugin's own context in cancel() or a callback). The host
     * calls free_fn(data) (if not NULL) on the loop thread once the job
     * is over and its view gone, or, on the calling thread, when
     * set_data replaces it with another pointer.
     */
    void (*set_data)(struct drv_job_view *job, void *data,
                     drv_handler_free_fn *free_fn);
    void *(*data)(const struct drv_job_view *job);

    /*
     * log -- one line in droverd's log at level (DRV_HANDLER_LOG_*),
     * tagged with the job type and plugin, and with the job's id when
     * job is not NULL. host is the table given to init. Any thread.
     */
    void (*log)(const struct drv_host *host, const struct drv_job_view *job,
                int level, const char *msg);

    /* -------- added in minor 1: check DRV_HOST_HAS(host, progress) */

    /*
     * progress -- the job is percent (0..100, clamped) done; msg (NULL
     * or NUL-terminated, cut at 256 bytes) says what it does. While the
     * job runs, droverd writes the last report to the job's result hash
     * (`status running`, `progress`, `progress_msg`, `worker`,
     * `started_at`) at most every 250 ms; reports in between are
     * coalesced. Cheap: call it as often as you like. The thread that
     * owns the job (run() on its pool thread, or the loop thread).
     * Returns 0, or -EINVAL (no job view, or a finished job).
     */
    int (*progress)(struct drv_job_view *job, int percent, const char *msg);
};

/* 1 if host provides member m (a host newer than this header may add
 * members; one older never lacks any listed here). */
#define DRV_HOST_HAS(host, m)                                           \
    ((host)->size >= offsetof(struct drv_host, m) + sizeof((host)->m))

#ifdef __cplusplus
}
#endif

#endif
