/*
 * redis_arena.c -- reply objects from a bump arena instead of malloc.
 *
 * DESIGN
 * hiredis's reader allocates every reply object, string and element
 * vector with malloc/calloc and freeReplyObject frees them one by one: a
 * fetch of 256 jobs is ~1,300 allocations and as many frees, which with
 * the malloc consolidation they cause was about a fifth of droverd's CPU
 * in a drain. Replies are borrowed by their callback only (they never
 * outlive it), and the reader builds one reply at a time, so each
 * connection's reader allocates from its own arena (the object
 * functions below) and the arena is reset after each complete reply has
 * been handed out.
 *
 * The arena is a list of CHUNK-byte chunks, bumped; a piece larger than
 * a quarter chunk (a big job) gets a block of its own. Reset frees those
 * blocks and the chunks past KEEP_CHUNKS, and rewinds the rest, so a
 * connection that saw a large reply keeps at most KEEP_CHUNKS * CHUNK
 * bytes. freeObject does nothing: a reply the reader drops half built
 * (protocol error, reader freed) is rewound with the rest.
 * Loop thread only, like the connection that owns it.
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "drover/common.h"
#include "redis_int.h"

#define CHUNK (64 * 1024)
#define KEEP_CHUNKS 4
#define BIG (CHUNK / 4)
#define ALIGN 16

struct drv__redis_chunk {
    struct drv__redis_chunk *next; /* owned: next chunk (or block) */
    size_t size;                   /* bytes of data */
    size_t used;                   /* bytes handed out */
    _Alignas(ALIGN) unsigned char data[]; /* the pieces */
};

void
drv__redis_arena_init(struct drv__redis_arena *a, size_t max_string)
{
    memset(a, 0, sizeof *a);
    a->max_string = max_string;
}

static void
free_list(struct drv__redis_chunk *c)
{
    while (c != NULL) {
        struct drv__redis_chunk *n = c->next;

        free(c);
        c = n;
    }
}

void
drv__redis_arena_reset(struct drv__redis_arena *a)
{
    struct drv__redis_chunk *c, *last = NULL;
    int kept = 0;

    free_list(a->big);
    a->big = NULL;
    for (c = a->chunks; c != NULL && kept < KEEP_CHUNKS; c = c->next) {
        c->used = 0;
        last = c;
        kept++;
    }
    if (last != NULL) {
        free_list(last->next);
        last->next = NULL;
    }
    a->cur = a->chunks;
}

void
drv__redis_arena_fini(struct drv__redis_arena *a)
{
    free_list(a->big);
    free_list(a->chunks);
    memset(a, 0, sizeof *a);
}

/* n bytes, aligned; aborts on out of memory like drv_xmalloc. */
static void *
take(struct drv__redis_arena *a, size_t n)
{
    struct drv__redis_chunk *c;

    n = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    if (n > BIG) {
        c = drv_xmalloc(sizeof *c + n);
        c->size = c->used = n;
        c->next = a->big;
        a->big = c;
        return c->data;
    }
    while (a->cur != NULL && a->cur->size - a->cur->used < n)
        a->cur = a->cur->next; /* a kept chunk further on, or none */
    if (a->cur == NULL) {
        c = drv_xmalloc(sizeof *c + CHUNK);
        c->size = CHUNK;
        c->used = 0;
        /* at the front: the chunks behind cur are full until the reset */
        c->next = a->chunks;
        a->chunks = c;
        a->cur = c;
    }
    c = a->cur;
    c->used += n;
    return c->data + c->used - n;
}

/* ---------------------------------------------- reader object functions */

static redisReply *
new_reply(const redisReadTask *task, int type)
{
    struct drv__redis_arena *a = task->privdata;
    redisReply *r = take(a, sizeof *r);

    memset(r, 0, sizeof *r);
    r->type = type;
    if (task->parent != NULL) {
        redisReply *parent = task->parent->obj;

        DRV_ASSERT(parent->type == REDIS_REPLY_ARRAY);
        parent->element[task->idx] = r;
    }
    return r;
}

/* A string, status or error. A string longer than max_string becomes an
 * empty one whose integer holds its length (drv_redis_reply_len): its
 * bytes are not copied out of the read buffer for nobody. */
static void *
create_string(const redisReadTask *task, char *str, size_t len)
{
    struct drv__redis_arena *a = task->privdata;
    redisReply *r = new_reply(task, task->type);

    if (task->type == REDIS_REPLY_STRING && a->max_string > 0 &&
        len > a->max_string) {
        r->integer = (long long)len;
        len = 0;
    }
    r->str = take(a, len + 1);
    memcpy(r->str, str, len);
    r->str[len] = '\0';
    r->len = len;
    return r;
}

static void *
create_array(const redisReadTask *task, int elements)
{
    struct drv__redis_arena *a = task->privdata;
    redisReply *r = new_reply(task, REDIS_REPLY_ARRAY);

    if (elements > 0) {
        r->element = take(a, (size_t)elements * sizeof *r->element);
        memset(r->element, 0, (size_t)elements * sizeof *r->element);
    }
    r->elements = (size_t)elements;
    return r;
}

static void *
create_integer(const redisReadTask *task, long long value)
{
    redisReply *r = new_reply(task, REDIS_REPLY_INTEGER);

    r->integer = value;
    return r;
}

static void *
create_nil(const redisReadTask *task)
{
    return new_reply(task, REDIS_REPLY_NIL);
}

/* Nothing to do: the reply is rewound with the arena. */
static void
free_object(void *reply DRV_UNUSED)
{
}

static redisReplyObjectFunctions arena_fns = {
    create_string, create_array, create_integer, create_nil, free_object,
};

redisReader *
drv__redis_arena_reader(struct drv__redis_arena *a)
{
    redisReader *rd = redisReaderCreateWithFunctions(&arena_fns);

    if (rd != NULL)
        rd->privdata = a;
    return rd;
}
