/*
 * vitrine: the product catalog.
 *
 * Loaded at start from a JSON Lines file, one product per line, and changed afterwards by
 * the records of the catalog topic (docs/catalog.md):
 *
 *   {"id":"1000217","name":"Gel polish","brand":"lacqua","categories":["nails"],
 *    "gender":"female","price":2.62,"stock":14,"popularity":31}
 *
 * Only "id" is required: a string of 1 to VT_PRODUCT_ID_MAX bytes of valid UTF-8 without
 * control characters (bytes below 0x20 and 0x7F), or a whole number from 0 to 2^53.
 * "stock" absent means unknown and counts as available;
 * "popularity" absent means 0. A line that cannot be read is counted, logged (the first
 * few, with line number and reason) and skipped; the rest still loads. A later line with
 * the same id replaces the earlier one.
 *
 * The catalog keeps precomputed indexes: all products, and the products of each brand and
 * each category, ordered by popularity (highest first, ties by id). After loading, a
 * catalog changes in one way only: the updater thread (service/live/) sets a product's
 * stock in place with vt_catalog_set_stock, and readers see it through relaxed atomic
 * loads. Every other change of the catalog topic builds a new catalog with
 * vt_catalog_apply. So any thread may read a catalog without locks. The loader owns all
 * memory and vt_catalog_free releases it; pointers returned by the accessors stay valid
 * until then.
 */
#ifndef VITRINE_CATALOG_H
#define VITRINE_CATALOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vitrine/config.h"
#include "vitrine/event.h"
#include "vitrine/limits.h"

/* "No such product, brand or category". */
#define VT_CATALOG_NONE UINT32_MAX

struct vt_product {
    const char *id;
    const char *name; /* "" when absent */
    uint32_t brand;   /* brand index, VT_CATALOG_NONE when absent */
    uint32_t categories[VT_ITEM_CATEGORIES_MAX];
    uint8_t n_categories;
    /* Removed by a tombstone on the catalog topic: the product keeps its index, so lists
     * of indexes built earlier stay valid, but vt_catalog_find no longer finds it, its
     * stock is 0, and no popularity, brand or category index lists it. */
    bool removed;
    enum vt_gender gender;   /* from "gender", else from keywords in name and categories */
    enum vt_price_tier tier; /* from price under the configured bands; DRUGSTORE if no price */
    double price;            /* unit price, -1 when unknown */
    /* Units in stock, -1 when unknown. Read it with vt_product_stock; the updater thread
     * changes it in place with vt_catalog_set_stock. */
    _Atomic int64_t stock;
    double popularity;     /* >= 0 */
    double log_popularity; /* log1p(popularity), set with it: scoring reads it per candidate */
};

struct vt_catalog_stats {
    size_t lines;       /* non-empty lines read */
    size_t products;    /* distinct products, removed ones excluded */
    size_t rejected;    /* lines skipped as invalid */
    size_t duplicates;  /* lines that replaced an earlier product with the same id */
    size_t unknown_gender_labels; /* lines and changes whose "gender" label
                                     vt_gender_parse does not recognize, read as unknown
                                     and inferred from keywords */
    size_t brands;
    size_t categories;
    size_t removed; /* products removed by a tombstone (not counted in products) */
};

struct vt_catalog;

/* Load from a JSON Lines file. An empty path gives an empty catalog. Returns NULL with a
 * message in err when the file cannot be opened or read. cfg supplies the price bands and
 * the gender keywords for products without a known "gender" label. */
struct vt_catalog *vt_catalog_load(const char *path, const struct vt_config *cfg, char *err,
                                   size_t errsize);

/* The same from an open stream; name is used in messages. */
struct vt_catalog *vt_catalog_load_stream(FILE *in, const char *name,
                                          const struct vt_config *cfg, char *err,
                                          size_t errsize);

void vt_catalog_free(struct vt_catalog *cat);

const struct vt_catalog_stats *vt_catalog_stats(const struct vt_catalog *cat);
/* Number of product indexes, removed products included. */
size_t vt_catalog_size(const struct vt_catalog *cat);

/* Product by index (0 <= index < size). */
const struct vt_product *vt_catalog_get(const struct vt_catalog *cat, uint32_t index);

/* Index of the product with this id, or VT_CATALOG_NONE when the catalog has no such
 * product or a tombstone removed it. */
uint32_t vt_catalog_find(const struct vt_catalog *cat, const char *id, size_t len);

/* Brand and category names by index, and case-insensitive lookup by name. */
const char *vt_catalog_brand_name(const struct vt_catalog *cat, uint32_t brand);
uint32_t vt_catalog_brand_find(const struct vt_catalog *cat, const char *name, size_t len);
const char *vt_catalog_category_name(const struct vt_catalog *cat, uint32_t category);
uint32_t vt_catalog_category_find(const struct vt_catalog *cat, const char *name,
                                  size_t len);

/* Product indexes ordered by popularity, highest first: all products, the products of one
 * brand, the products of one category. Removed products are in none of them. *n receives
 * the count; an unknown brand or category gives n = 0. */
const uint32_t *vt_catalog_popular(const struct vt_catalog *cat, size_t *n);
const uint32_t *vt_catalog_by_brand(const struct vt_catalog *cat, uint32_t brand, size_t *n);
const uint32_t *vt_catalog_by_category(const struct vt_catalog *cat, uint32_t category,
                                       size_t *n);

/* Highest popularity in the catalog (0 for an empty one), for normalising scores. */
double vt_catalog_max_popularity(const struct vt_catalog *cat);

/* Units in stock, -1 when unknown (relaxed atomic load). Any thread. */
static inline int64_t vt_product_stock(const struct vt_product *p)
{
    return atomic_load_explicit(&p->stock, memory_order_relaxed);
}

/* True unless the product is known to be out of stock (stock == 0). Any thread. */
static inline bool vt_product_available(const struct vt_product *p)
{
    return vt_product_stock(p) != 0;
}

/*
 * Set the stock of product `index` in place (relaxed atomic store), so that every reader
 * of this catalog sees the change at once. The catalog is const because readers share it:
 * stock is the one field that changes after loading. The updater thread is the only
 * caller, so stores never race with each other or with vt_catalog_apply copying the
 * catalog. An index out of range is ignored.
 */
void vt_catalog_set_stock(const struct vt_catalog *cat, uint32_t index, int64_t stock);

/* ---- changes from the catalog topic (see docs/catalog.md) ---- */

/* Fields that a change sets (bits of vt_catalog_change.fields). */
enum vt_catalog_field {
    VT_FIELD_NAME = 1u << 0,
    VT_FIELD_BRAND = 1u << 1,
    VT_FIELD_CATEGORIES = 1u << 2,
    VT_FIELD_GENDER = 1u << 3,
    VT_FIELD_PRICE = 1u << 4,
    VT_FIELD_STOCK = 1u << 5,
    VT_FIELD_POPULARITY = 1u << 6,
};

/*
 * One checked record of the catalog topic. A field present in the record, null included,
 * is in `fields`; null sets the field's default (no name, brand or categories, unknown
 * gender, price or stock, popularity 0). Absent fields keep the product's current values,
 * except under `replace`. The change owns its strings: release them with
 * vt_catalog_change_clear.
 */
struct vt_catalog_change {
    char id[VT_PRODUCT_ID_MAX + 1];
    size_t id_length;
    bool remove;  /* a tombstone: remove the product */
    /* Absent fields take their defaults, as for a new product. Set for a record that
     * follows a tombstone of the same product, because the tombstone forgot its fields. */
    bool replace;
    unsigned fields; /* enum vt_catalog_field bits */
    char *name;      /* NULL: no name */
    char *brand;     /* NULL: no brand */
    char *categories[VT_ITEM_CATEGORIES_MAX];
    uint8_t n_categories;
    char *gender; /* the label as sent; NULL: unknown */
    double price; /* -1: unknown */
    int64_t stock; /* -1: unknown */
    double popularity;
    /* Members of the value that are no catalog field, quoted and comma-separated for a log
     * line ("\"colour\", \"stok\""), or NULL when there are none. Applying ignores them. */
    char *unknown_members;
};

/*
 * Check one record of the catalog topic: key is the product id (the same rule as "id" in
 * the file), value the JSON object of the fields that change, or NULL for a tombstone.
 * A value that names an "id" must name the key's. Members that are no catalog field are
 * listed in out->unknown_members, and a value whose members are all unknown apart from
 * "id" is rejected, because it would change nothing (a misspelt {"stok":0} would leave
 * the product on sale). An empty object {} is valid. Returns 0 with *out filled, or -1
 * with the reason in reason and *out empty.
 */
int vt_catalog_change_parse(const char *key, size_t key_len, const char *value,
                            size_t value_len, struct vt_catalog_change *out, char *reason,
                            size_t reason_size);

/* Free the strings of a change and empty it. */
void vt_catalog_change_clear(struct vt_catalog_change *c);

/* Fold a later change of the same product into an earlier one, so that applying `into`
 * alone gives the same product as applying both in order. `later` is left empty. */
void vt_catalog_change_merge(struct vt_catalog_change *into, struct vt_catalog_change *later);

/* Counts of what one vt_catalog_apply changed. */
struct vt_catalog_apply_stats {
    size_t added;    /* new products, appended after the existing indexes */
    size_t updated;  /* existing products changed (revived ones included) */
    size_t removed;  /* products removed */
    size_t ignored;  /* removals of unknown or already removed products */
    size_t rejected; /* new products past the maximum catalog size */
};

/*
 * Build a new catalog from old plus changes (at most one per product id, in any order).
 * Every existing product, brand and category keeps its index, so lists of indexes built
 * for old stay valid; new products, brands and categories get the next indexes. The new
 * catalog copies everything it needs, stock included, and does not refer to old. cfg
 * supplies price bands and gender keywords, as for loading. stats may be NULL. Returns
 * NULL with a message in err when memory runs out. Runs on the thread that owns stock
 * changes of old (the updater thread), while other threads read old.
 */
struct vt_catalog *vt_catalog_apply(const struct vt_catalog *old,
                                    const struct vt_catalog_change *changes, size_t n,
                                    const struct vt_config *cfg,
                                    struct vt_catalog_apply_stats *stats, char *err,
                                    size_t errsize);

#endif
