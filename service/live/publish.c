/*
 * vitrine: world versions: publication, retirement and reclamation (see live_internal.h).
 *
 * Publication. A version is built completely, then published with one atomic pointer store
 * with release semantics; readers load the pointer with acquire semantics
 * (vt_live_world), so they see every write made before the store. Nothing reachable from
 * a published version changes afterwards, except product stock (relaxed atomics, see
 * catalog.h).
 *
 * Sharing. A new version shares with the previous one whatever did not change: the
 * catalog, the trending set or just its per-category and per-brand lists, the neighbour
 * array, and each product's neighbour list. Every object therefore belongs to a run of
 * consecutive versions, and once a version stops referencing it, no later version
 * references it again.
 *
 * Reclamation. When version k+1 is published at time T, every object that version k
 * referenced and k+1 does not (k's world struct, a replaced catalog, trending set,
 * neighbour array or list) is retired with time T and version k+1, both taken after the
 * store. Only readers that loaded a version up to k can still reach it.
 *
 * Holds. A reader thread announces the version it uses in its own slot (live_hold): it
 * stores the version of the world it loaded, then loads the current pointer again and
 * retries until both agree. All of these accesses and the collector's are sequentially
 * consistent. Suppose live_collect, after publishing k+1, reads a slot that does not
 * announce a version up to k. Then that thread announced nothing, or its second load sees
 * k+1 or later, so it cannot reach the objects retired by k+1. Hence live_collect frees
 * everything retired by a version no older than the oldest announced one. Readers hold a
 * version for one request, ingest batch or alert evaluation, so a replaced neighbour list
 * is usually freed by the next refresh, a second later.
 *
 * Grace. Independently of holds, world.h lets a reader that does not hold use a version
 * for VT_WORLD_GRACE_S seconds after a newer one is published, so from T +
 * VT_WORLD_GRACE_S on live_collect frees the object whatever the slots say. That bound is
 * a contract, not a check: a reader that keeps a version longer (a request stuck for
 * 30 s) would read freed memory. The grace period alone kept about 55 MB of replaced
 * neighbour lists in the ingest benchmark (docs/benchmarks.md).
 *
 * Bound. At most LIVE_RETIRED_CATALOGS_MAX replaced catalogs wait for reclamation: the
 * updater builds the next catalog version only while live_catalog_publishable holds, and
 * otherwise keeps the changes queued. That delays publications and never frees anything
 * earlier, so the grace argument above still holds.
 */
#include <stdlib.h>
#include <string.h>

#include "live_internal.h"
#include "vitrine/util.h"

#define RETIRED_CAPACITY_MIN 256

/* Numbers the states, so that a thread's slot is never taken for another state's. */
static _Atomic uint64_t next_state_id = 1;

/* The calling thread's slot: its state's number, the slot, and the depth of nested holds. */
static _Thread_local uint64_t held_state_id;
static _Thread_local struct live_holder *held_slot;
static _Thread_local unsigned held_depth;


static uint64_t monotonic_clock(void *arg)
{
    (void)arg;
    return vt_monotonic_ns();
}


static void free_object(enum live_object_kind kind, void *object)
{
    switch (kind) {
    case LIVE_OBJECT_WORLD:
    case LIVE_OBJECT_NEIGHBOR_ARRAY:
    case LIVE_OBJECT_NEIGHBOR_LIST:
        free(object);
        break;
    case LIVE_OBJECT_CATALOG:
        vt_catalog_free(object);
        break;
    case LIVE_OBJECT_TRENDING:
        live_trending_free(object);
        break;
    case LIVE_OBJECT_TRENDING_SHELL:
        live_trending_free_shell(object);
        break;
    }
}


/* Make room for `count` more retired objects, so that a publication, once started, cannot
 * fail halfway. */
static int reserve_retired(struct live_state *s, size_t count)
{
    if (s->retired_head > 0 && s->n_retired + count > s->retired_capacity) {
        size_t live = s->n_retired - s->retired_head;

        memmove(s->retired, s->retired + s->retired_head, live * sizeof *s->retired);
        s->n_retired = live;
        s->retired_head = 0;
    }
    if (s->n_retired + count <= s->retired_capacity)
        return 0;

    size_t capacity = s->retired_capacity > 0 ? s->retired_capacity : RETIRED_CAPACITY_MIN;
    while (capacity < s->n_retired + count)
        capacity *= 2;
    struct live_retired *grown = realloc(s->retired, capacity * sizeof *grown);
    if (grown == NULL)
        return -1;
    s->retired = grown;
    s->retired_capacity = capacity;
    return 0;
}


/* Queue an object for freeing; room was reserved. */
static void retire(struct live_state *s, enum live_object_kind kind, const void *object,
                   uint64_t now)
{
    if (object == NULL)
        return;
    s->retired[s->n_retired].kind = kind;
    s->retired[s->n_retired].object = (void *)object;
    s->retired[s->n_retired].retired_ns = now;
    s->retired[s->n_retired].retired_version = s->version;
    s->n_retired++;
    if (kind == LIVE_OBJECT_CATALOG)
        s->retired_catalogs++;
}


/* Make next the current version and retire the previous world struct. Returns the time
 * of the publication, for retiring what next no longer references. */
static uint64_t publish(struct live_state *s, struct vt_world *next)
{
    struct vt_world *previous = s->world;
    uint64_t now;

    next->version = ++s->version;
    atomic_store_explicit(&s->current, next, memory_order_seq_cst);
    s->world = next;
    now = s->clock(s->clock_arg);
    retire(s, LIVE_OBJECT_WORLD, previous, now);
    return now;
}


int live_state_init(struct live_state *s, const struct vt_config *cfg, struct vt_catalog *cat,
                    live_clock_fn clock, void *clock_arg)
{
    struct vt_world *w = calloc(1, sizeof *w);
    struct vt_trending *t = calloc(1, sizeof *t);

    memset(s, 0, sizeof *s);
    if (w == NULL || t == NULL) {
        free(w);
        free(t);
        return -1;
    }
    s->cfg = cfg;
    s->clock = clock != NULL ? clock : monotonic_clock;
    s->clock_arg = clock_arg;
    s->grace_ns = (uint64_t)VT_WORLD_GRACE_S * 1000000000u;
    s->id = atomic_fetch_add(&next_state_id, 1);

    t->global = &live_empty_list;
    w->version = 1;
    w->catalog = cat;
    w->trending = t;
    w->neighbors = NULL;
    w->aggregates_ms = -1;
    s->version = 1;
    s->world = w;
    atomic_store_explicit(&s->current, w, memory_order_release);
    return 0;
}


int live_publish_catalog(struct live_state *s, struct vt_catalog *cat)
{
    const struct vt_world *cur = s->world;
    size_t old_size = vt_catalog_size(cur->catalog);
    size_t new_size = vt_catalog_size(cat);
    const struct vt_neighbors **array = (const struct vt_neighbors **)cur->neighbors;
    struct vt_world *next;

    if (reserve_retired(s, 3) != 0)
        goto oom;
    next = calloc(1, sizeof *next);
    if (next == NULL)
        goto oom;

    /* The neighbour array has one entry per product index: a catalog that grew needs a
     * longer one, with the same lists for the indexes it had. */
    if (cur->neighbors != NULL && new_size != old_size) {
        array = calloc(new_size > 0 ? new_size : 1, sizeof *array);
        if (array == NULL) {
            free(next);
            goto oom;
        }
        memcpy(array, cur->neighbors,
               (old_size < new_size ? old_size : new_size) * sizeof *array);
    }

    next->catalog = cat;
    next->trending = cur->trending;
    next->neighbors = array;
    next->aggregates_ms = cur->aggregates_ms;

    const struct vt_catalog *old_catalog = cur->catalog;
    const void *old_array = cur->neighbors;
    uint64_t now = publish(s, next);
    retire(s, LIVE_OBJECT_CATALOG, old_catalog, now);
    if (old_array != array)
        retire(s, LIVE_OBJECT_NEIGHBOR_ARRAY, old_array, now);
    return 0;

oom:
    vt_catalog_free(cat);
    return -1;
}


static void free_updates(struct live_neighbor_update *updates, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(updates[i].list);
}


int live_publish_aggregates(struct live_state *s, struct vt_trending *trending,
                            struct live_neighbor_update *updates, size_t n, int64_t now_ms)
{
    const struct vt_world *cur = s->world;
    size_t size = vt_catalog_size(cur->catalog);
    const struct vt_neighbors **array = (const struct vt_neighbors **)cur->neighbors;
    struct vt_world *next = NULL;

    if (reserve_retired(s, 3 + n) != 0)
        goto oom;
    next = calloc(1, sizeof *next);
    if (next == NULL)
        goto oom;
    if (n > 0) {
        array = calloc(size > 0 ? size : 1, sizeof *array);
        if (array == NULL)
            goto oom;
        if (cur->neighbors != NULL)
            memcpy(array, cur->neighbors, size * sizeof *array);
    }

    for (size_t i = 0; i < n; i++) {
        uint32_t p = updates[i].product;

        if (p >= size) {
            free(updates[i].list);
            updates[i].list = NULL;
            continue;
        }
        const struct vt_neighbors *before = cur->neighbors != NULL ? cur->neighbors[p] : NULL;
        /* A second update of one product replaces the first, which no version saw. */
        if (array[p] != before)
            free((void *)array[p]);
        array[p] = updates[i].list;
    }

    next->catalog = cur->catalog;
    next->trending = trending;
    next->neighbors = array;
    next->aggregates_ms = now_ms;

    const struct vt_trending *old_trending = cur->trending;
    const struct vt_neighbors *const *old_array = cur->neighbors;
    uint64_t now = publish(s, next);
    if (old_trending != trending)
        retire(s,
               live_trending_shares_groups(old_trending, trending) ? LIVE_OBJECT_TRENDING_SHELL
                                                                   : LIVE_OBJECT_TRENDING,
               old_trending, now);
    if (old_array != NULL && old_array != array) {
        for (size_t p = 0; p < size; p++) {
            if (old_array[p] != array[p])
                retire(s, LIVE_OBJECT_NEIGHBOR_LIST, old_array[p], now);
        }
        retire(s, LIVE_OBJECT_NEIGHBOR_ARRAY, old_array, now);
    }
    return 0;

oom:
    free(next);
    free_updates(updates, n);
    if (live_trending_shares_groups(trending, cur->trending))
        live_trending_free_shell(trending);
    else
        live_trending_free(trending);
    return -1;
}


/* The slot of the calling thread in s, claimed on first use; NULL when all are taken. */
static struct live_holder *own_slot(struct live_state *s)
{
    if (held_state_id == s->id && held_slot != NULL)
        return held_slot;
    size_t i = atomic_fetch_add(&s->n_holders, 1);
    if (i >= VT_WORLD_HOLDERS_MAX) {
        /* This thread reads without a hold, so only the grace period protects it. */
        atomic_store(&s->holders_overflowed, true);
        return NULL;
    }
    held_state_id = s->id;
    held_slot = &s->holders[i];
    held_depth = 0;
    return held_slot;
}


const struct vt_world *live_hold(struct live_state *s)
{
    struct live_holder *slot = own_slot(s);
    const struct vt_world *w;

    if (slot == NULL)
        return atomic_load(&s->current);
    if (held_depth++ > 0)
        return atomic_load(&s->current);
    for (;;) {
        w = atomic_load(&s->current);
        atomic_store(&slot->version, w->version);
        if (atomic_load(&s->current) == w)
            return w;
    }
}


void live_release(struct live_state *s)
{
    if (held_state_id != s->id || held_slot == NULL || held_depth == 0)
        return;
    if (--held_depth == 0)
        atomic_store(&held_slot->version, 0);
}


/* Return the oldest version a thread announced, or UINT64_MAX when no slot announces one. */
static uint64_t oldest_held(struct live_state *s)
{
    size_t n = atomic_load(&s->n_holders);
    uint64_t oldest = UINT64_MAX;

    if (n > VT_WORLD_HOLDERS_MAX)
        n = VT_WORLD_HOLDERS_MAX;
    for (size_t i = 0; i < n; i++) {
        uint64_t v = atomic_load(&s->holders[i].version);
        if (v != 0 && v < oldest)
            oldest = v;
    }
    return oldest;
}


size_t live_collect(struct live_state *s)
{
    uint64_t now = s->clock(s->clock_arg);
    uint64_t oldest =
        s->holds_checked && !atomic_load(&s->holders_overflowed) ? oldest_held(s) : 0;
    size_t freed = 0;

    while (s->retired_head < s->n_retired &&
           (s->retired[s->retired_head].retired_version <= oldest ||
            now - s->retired[s->retired_head].retired_ns >= s->grace_ns)) {
        struct live_retired *r = &s->retired[s->retired_head++];

        if (r->kind == LIVE_OBJECT_CATALOG)
            s->retired_catalogs--;
        free_object(r->kind, r->object);
        freed++;
    }
    if (s->retired_head == s->n_retired)
        s->retired_head = s->n_retired = 0;
    return freed;
}


size_t live_retired_count(const struct live_state *s)
{
    return s->n_retired - s->retired_head;
}


size_t live_retired_catalogs(const struct live_state *s)
{
    return s->retired_catalogs;
}


bool live_catalog_publishable(const struct live_state *s)
{
    return s->retired_catalogs < LIVE_RETIRED_CATALOGS_MAX;
}


void live_state_destroy(struct live_state *s)
{
    struct vt_world *w = s->world;

    for (size_t i = s->retired_head; i < s->n_retired; i++)
        free_object(s->retired[i].kind, s->retired[i].object);
    free(s->retired);

    if (w != NULL) {
        size_t size = vt_catalog_size(w->catalog);

        for (size_t p = 0; w->neighbors != NULL && p < size; p++)
            free((void *)w->neighbors[p]);
        free((void *)w->neighbors);
        live_trending_free((struct vt_trending *)w->trending);
        vt_catalog_free((struct vt_catalog *)w->catalog);
        free(w);
    }
    memset(s, 0, sizeof *s);
}
