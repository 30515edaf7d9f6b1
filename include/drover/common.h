/*
 * drover/common.h -- small helpers every module uses.
 *
 * Magic-checked objects (after Varnish's miniobj.h): every struct starts
 * with `unsigned magic`; DRV_CAST turns a void * handed back by libevent,
 * hiredis or the pool into a typed pointer and asserts its magic, so a
 * use-after-free fails at the guilty line instead of much later.
 *
 * DRV_ALLOC_OBJ, DRV_NO_OBJ and DRV_FREE_OBJ are the three steps of such an
 * object's life on the heap: calloc and set the magic, the NULL check at
 * the head of its _free, and the wipe of the magic before free().
 *
 * DRV_AN / DRV_AZ wrap calls that cannot fail on valid arguments
 * (pthread_mutex_lock, event_add on a valid event). They stay on in release
 * builds: they check invariants, never input.
 */
#ifndef DROVER_COMMON_H
#define DROVER_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

#define drv_container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define DRV_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The expansion of macro x as a string literal (a number into a script
 * or a version line). */
#define DRV_STR_(x) #x
#define DRV_STR(x) DRV_STR_(x)

/*
 * DRV_UNUSED -- after a parameter a callback must take but does not read
 * (libevent's fd and what, a table's shared signature):
 *
 *     on_timer(evutil_socket_t fd DRV_UNUSED, short what DRV_UNUSED, ...)
 *
 * Like Linux's __maybe_unused or GLib's G_GNUC_UNUSED: -Wunused-parameter
 * stays on for every other parameter.
 */
#define DRV_UNUSED __attribute__((unused))

void drv_assert_fail(const char *expr, const char *file, int line,
                     const char *func);

#define DRV_ASSERT(e)                                                   \
    do {                                                                \
        if (!(e))                                                       \
            drv_assert_fail(#e, __FILE__, __LINE__, __func__);          \
    } while (0)

/* The expression must be zero (DRV_AZ) or non-zero (DRV_AN). */
#define DRV_AZ(e) DRV_ASSERT((e) == 0)
#define DRV_AN(e) DRV_ASSERT((e) != 0)

#define DRV_CHECK_OBJ(p, m) DRV_ASSERT((p) != NULL && (p)->magic == (m))

/* Turn ctx into a typed pointer `p` and assert its magic. */
#define DRV_CAST(p, ctx, m)                                             \
    do {                                                                \
        (p) = (ctx);                                                    \
        DRV_CHECK_OBJ((p), (m));                                        \
    } while (0)

/* Allocation that cannot fail: out of memory aborts with a message. */
void *drv_xmalloc(size_t n);
void *drv_xcalloc(size_t n, size_t size);
void *drv_xrealloc(void *p, size_t n);
char *drv_xstrdup(const char *s);
char *drv_xstrndup(const char *s, size_t n);

/* drv_strv_free -- free the n strings of v (NULL entries too) and v
 * itself; a NULL v does nothing. */
void drv_strv_free(char **v, size_t n);

/*
 * drv_read_nb -- read(2) from a non-blocking fd, retrying EINTR. Returns
 * the bytes read (> 0), 0 at EOF, -EAGAIN when nothing is there yet, or
 * another -errno. Any thread.
 */
ssize_t drv_read_nb(int fd, void *buf, size_t len);

#define DRV_ALLOC_OBJ(p, m)                                             \
    do {                                                                \
        (p) = drv_xcalloc(1, sizeof *(p));                              \
        (p)->magic = (m);                                               \
    } while (0)

/*
 * The head of a _free or _fini that accepts NULL:
 *
 *     if (DRV_NO_OBJ(p, DRV_X_MAGIC))
 *         return;
 *
 * True when p is NULL; otherwise asserts p's magic and is false.
 */
#define DRV_NO_OBJ(p, m)                                                \
    ((p) == NULL ||                                                     \
     ((p)->magic == (m) ? 0                                             \
      : (drv_assert_fail(#p "->magic == " #m, __FILE__, __LINE__,       \
                         __func__), 0)))

/*
 * drv_free_once -- for an object whose _free may be called again before
 * it is gone (from its own callbacks, or while it closes): marks *freeing
 * and returns 1 the first time; 0 when a free was asked before.
 */
static inline int
drv_free_once(int *freeing)
{
    if (*freeing)
        return 0;
    *freeing = 1;
    return 1;
}

/* The head of the _free of such an object p (NULL allowed), with its
 * field named freeing: true the first time, when the caller tears down. */
#define DRV_FREE_ONCE(p, m)                                             \
    (!DRV_NO_OBJ((p), (m)) && drv_free_once(&(p)->freeing))

/*
 * drv_free_now -- for an object that its own callbacks may free: it keeps
 * in_callback, the depth of its dispatch on the stack, and a freeing flag.
 * Marks *freeing and returns 1 when the caller frees the object now; 0
 * when a free was asked before, or when a dispatch is on the stack, which
 * then finishes the free on its way out. Loop thread.
 */
static inline int
drv_free_now(int *freeing, int in_callback)
{
    return drv_free_once(freeing) && in_callback == 0;
}

/* The head of the _free of such an object p (NULL allowed), with its
 * fields named freeing and in_callback: true when the caller frees it. */
#define DRV_FREE_NOW(p, m)                                              \
    (!DRV_NO_OBJ((p), (m)) && drv_free_now(&(p)->freeing, (p)->in_callback))

/*
 * The tail of a _free: wipe the magic, so that a stale pointer fails its
 * next DRV_CHECK_OBJ or DRV_CAST at the guilty line, free, and clear p.
 */
#define DRV_FREE_OBJ(p)                                                 \
    do {                                                                \
        (p)->magic = 0;                                                 \
        free(p);                                                        \
        (p) = NULL;                                                     \
    } while (0)

#endif
