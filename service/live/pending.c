/*
 * vitrine: catalog topic records between two catalog versions (see live_internal.h).
 *
 * A stock change of a product that the current version serves is written into that
 * version at once (vt_catalog_set_stock), because a product that sold out must leave the
 * recommendations within a second. Every other change waits in a table keyed by product
 * id, merged with earlier changes of the same product, until the updater builds the next
 * catalog version from all of them (vt_catalog_apply, at most once per second).
 *
 * Order matters where a record follows a removal: once a removal of a product is queued,
 * its stock in the current version stays 0, and later records of it are queued (with their
 * stock) instead of changing it in place, so the next version shows the last record.
 */
#include <stdlib.h>
#include <string.h>

#include "live_internal.h"
#include "vitrine/util.h"

#define PENDING_SLOTS_MIN 64
#define PENDING_CHANGES_MIN 64


void live_pending_init(struct live_pending *p)
{
    memset(p, 0, sizeof *p);
}


/* Slot of the change with this id, or of the empty slot where it would go. */
static size_t slot_of(const struct live_pending *p, const char *id, size_t len)
{
    size_t k = (size_t)vt_hash64(id, len) & p->mask;

    while (p->slots[k] != 0) {
        const struct vt_catalog_change *c = &p->changes[p->slots[k] - 1];

        if (c->id_length == len && memcmp(c->id, id, len) == 0)
            return k;
        k = (k + 1) & p->mask;
    }
    return k;
}


static struct vt_catalog_change *find(const struct live_pending *p, const char *id, size_t len)
{
    size_t k;

    if (p->slots == NULL)
        return NULL;
    k = slot_of(p, id, len);
    return p->slots[k] != 0 ? &p->changes[p->slots[k] - 1] : NULL;
}


/* Double the slot count (or create the table) and insert every change again. */
static int grow_slots(struct live_pending *p)
{
    size_t count = p->slots != NULL ? (p->mask + 1) * 2 : PENDING_SLOTS_MIN;
    uint32_t *slots = calloc(count, sizeof *slots);

    if (slots == NULL)
        return -1;
    free(p->slots);
    p->slots = slots;
    p->mask = count - 1;
    for (size_t i = 0; i < p->n; i++)
        p->slots[slot_of(p, p->changes[i].id, p->changes[i].id_length)] = (uint32_t)(i + 1);
    return 0;
}


/* Merge the change into the one queued for its product, or queue it. The change is
 * emptied. Returns -1 when memory runs out (the change is freed). */
static int add(struct live_pending *p, struct vt_catalog_change *change)
{
    struct vt_catalog_change *queued = find(p, change->id, change->id_length);

    if (queued != NULL) {
        vt_catalog_change_merge(queued, change);
        return 0;
    }

    if (p->n == p->capacity) {
        size_t capacity = p->capacity > 0 ? p->capacity * 2 : PENDING_CHANGES_MIN;
        struct vt_catalog_change *grown = realloc(p->changes, capacity * sizeof *grown);

        if (grown == NULL)
            goto oom;
        p->changes = grown;
        p->capacity = capacity;
    }
    if ((p->slots == NULL || (p->n + 1) * 2 > p->mask + 1) && grow_slots(p) != 0)
        goto oom;

    size_t k = slot_of(p, change->id, change->id_length);
    p->changes[p->n] = *change;
    p->slots[k] = (uint32_t)(p->n + 1);
    p->n++;
    /* The queue owns the strings now. */
    memset(change, 0, sizeof *change);
    vt_catalog_change_clear(change);
    return 0;

oom:
    vt_catalog_change_clear(change);
    return -1;
}


void live_pending_clear(struct live_pending *p)
{
    for (size_t i = 0; i < p->n; i++)
        vt_catalog_change_clear(&p->changes[i]);
    p->n = 0;
    if (p->slots != NULL)
        memset(p->slots, 0, (p->mask + 1) * sizeof *p->slots);
}


void live_pending_free(struct live_pending *p)
{
    live_pending_clear(p);
    free(p->changes);
    free(p->slots);
    memset(p, 0, sizeof *p);
}


enum live_record_outcome live_pending_record(struct live_pending *p,
                                             const struct vt_catalog *cat,
                                             struct vt_catalog_change *change)
{
    /* NULL for a product that cat does not have or that a tombstone removed. */
    uint32_t index = vt_catalog_find(cat, change->id, change->id_length);
    const struct vt_product *product = vt_catalog_get(cat, index);
    const struct vt_catalog_change *queued = find(p, change->id, change->id_length);
    /* The current version serves the product, and no removal of it is queued. */
    bool served = product != NULL && (queued == NULL || !(queued->remove || queued->replace));

    if (change->remove) {
        if (queued == NULL && product == NULL) {
            vt_catalog_change_clear(change);
            return LIVE_RECORD_UNCHANGED;
        }
        if (served)
            vt_catalog_set_stock(cat, index, 0);
        return add(p, change) == 0 ? LIVE_RECORD_REMOVED : LIVE_RECORD_FAILED;
    }

    bool stock_set = false;
    if (served && (change->fields & VT_FIELD_STOCK)) {
        vt_catalog_set_stock(cat, index, change->stock);
        change->fields &= ~(unsigned)VT_FIELD_STOCK;
        stock_set = true;
    }
    if (served && change->fields == 0) {
        vt_catalog_change_clear(change);
        return stock_set ? LIVE_RECORD_STOCK : LIVE_RECORD_UNCHANGED;
    }
    return add(p, change) == 0 ? LIVE_RECORD_QUEUED : LIVE_RECORD_FAILED;
}
