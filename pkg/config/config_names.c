/*
 * config_names.c -- the name index of a config, where drv_config_job and
 * drv_config_pipeline look names up.
 *
 * DESIGN
 * Job types and pipelines share one namespace, and the worker looks a
 * job's name up for every job it fetches, so a lookup must not cost a
 * string compare per job type. The index is a hash table: FNV-1a over
 * the name's bytes, a power-of-two number of slots, open addressing with
 * linear probing. It doubles (every entry rehashed) before it gets more
 * than half full, so a probe always ends at a free slot and stays short.
 * Names are only ever added (while the config loads; lookups run then
 * too: steps, graph nodes, schedules, the clash check), never removed,
 * so there are no tombstones. An entry holds a job type and a pipeline
 * of its name: a good config has one of the two, but a load that reports
 * a clash keeps both until it frees the config, and each getter still
 * finds its own kind. cfg->jobs and cfg->pipelines keep the file order;
 * the index only points at their entries.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "drover/common.h"
#include "drover/config.h"

#include "config_int.h"

/* FNV-1a, 64 bits. */
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

uint64_t
drv__config_names_hash(const char *name)
{
    const unsigned char *p = (const unsigned char *)name;
    uint64_t h = FNV_OFFSET;

    for (; *p != '\0'; p++) {
        h ^= *p;
        h *= FNV_PRIME;
    }
    return h;
}

/* ---------------------------------------------------------- the table */

struct drv__config_names *
drv__config_names_create(size_t cap)
{
    struct drv__config_names *ix = NULL;

    DRV_ASSERT(cap > 0 && (cap & (cap - 1)) == 0); /* probe masks with it */
    ix = drv_xcalloc(1, sizeof *ix + cap * sizeof ix->slots[0]);
    ix->magic = DRV__CONFIG_NAMES_MAGIC;
    ix->cap = cap;
    return ix;
}

/* The slot of name in ix: its entry, or the free slot it would go to.
 * A table at most half full always has a free slot. */
static size_t
probe(const struct drv__config_names *ix, const char *name)
{
    size_t mask = ix->cap - 1;
    size_t i = (size_t)drv__config_names_hash(name) & mask;

    while (ix->slots[i].name != NULL && strcmp(ix->slots[i].name, name) != 0)
        i = (i + 1) & mask;
    return i;
}

const struct drv__config_name *
drv__config_names_find(const struct drv__config_names *ix, const char *name)
{
    DRV_CHECK_OBJ(ix, DRV__CONFIG_NAMES_MAGIC);
    return &ix->slots[probe(ix, name)];
}

void
drv__config_names_free(struct drv__config_names *ix)
{
    if (DRV_NO_OBJ(ix, DRV__CONFIG_NAMES_MAGIC))
        return;
    DRV_FREE_OBJ(ix);
}

/* ------------------------------------------------------- adding names */

/* ix's entries in a table twice as large; ix is freed. */
static struct drv__config_names *
grow(struct drv__config_names *ix)
{
    struct drv__config_names *big = drv__config_names_create(2 * ix->cap);
    size_t i;

    for (i = 0; i < ix->cap; i++)
        if (ix->slots[i].name != NULL)
            big->slots[probe(big, ix->slots[i].name)] = ix->slots[i];
    big->n = ix->n;
    drv__config_names_free(ix);
    return big;
}

struct drv__config_name *
drv__config_names_put(struct drv__config_names **ixp, const char *name)
{
    struct drv__config_names *ix = *ixp;
    struct drv__config_name *e = NULL;

    DRV_CHECK_OBJ(ix, DRV__CONFIG_NAMES_MAGIC);
    e = &ix->slots[probe(ix, name)];
    if (e->name != NULL)
        return e;
    if (2 * (ix->n + 1) > ix->cap) {
        ix = grow(ix);
        *ixp = ix;
        e = &ix->slots[probe(ix, name)];
    }
    e->name = name;
    ix->n++;
    return e;
}
