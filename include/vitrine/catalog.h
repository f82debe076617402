/*
 * vitrine: the product catalog.
 *
 * Loaded once at start from a JSON Lines file, one product per line:
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
 * each category, ordered by popularity (highest first, ties by id). After loading it is
 * immutable, so any thread may read it without locks. The loader owns all memory and
 * vt_catalog_free releases it; pointers returned by the accessors stay valid until then.
 */
#ifndef VITRINE_CATALOG_H
#define VITRINE_CATALOG_H

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
    enum vt_gender gender;   /* from "gender", else from keywords in name and categories */
    enum vt_price_tier tier; /* from price under the configured bands; DRUGSTORE if no price */
    double price;            /* unit price, -1 when unknown */
    int64_t stock;           /* units in stock, -1 when unknown */
    double popularity;       /* >= 0 */
};

struct vt_catalog_stats {
    size_t lines;       /* non-empty lines read */
    size_t products;    /* distinct products loaded */
    size_t rejected;    /* lines skipped as invalid */
    size_t duplicates;  /* lines that replaced an earlier product with the same id */
    size_t unknown_gender_labels; /* lines whose "gender" label vt_gender_parse does not
                                     recognize, read as unknown and inferred from keywords */
    size_t brands;
    size_t categories;
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
size_t vt_catalog_size(const struct vt_catalog *cat);

/* Product by index (0 <= index < size). */
const struct vt_product *vt_catalog_get(const struct vt_catalog *cat, uint32_t index);

/* Index of the product with this id, or VT_CATALOG_NONE. */
uint32_t vt_catalog_find(const struct vt_catalog *cat, const char *id, size_t len);

/* Brand and category names by index, and case-insensitive lookup by name. */
const char *vt_catalog_brand_name(const struct vt_catalog *cat, uint32_t brand);
uint32_t vt_catalog_brand_find(const struct vt_catalog *cat, const char *name, size_t len);
const char *vt_catalog_category_name(const struct vt_catalog *cat, uint32_t category);
uint32_t vt_catalog_category_find(const struct vt_catalog *cat, const char *name,
                                  size_t len);

/* Product indexes ordered by popularity, highest first: all products, the products of one
 * brand, the products of one category. *n receives the count; an unknown brand or
 * category gives n = 0. */
const uint32_t *vt_catalog_popular(const struct vt_catalog *cat, size_t *n);
const uint32_t *vt_catalog_by_brand(const struct vt_catalog *cat, uint32_t brand, size_t *n);
const uint32_t *vt_catalog_by_category(const struct vt_catalog *cat, uint32_t category,
                                       size_t *n);

/* Highest popularity in the catalog (0 for an empty one), for normalising scores. */
double vt_catalog_max_popularity(const struct vt_catalog *cat);

/* True unless the product is known to be out of stock (stock == 0). */
static inline bool vt_product_available(const struct vt_product *p)
{
    return p->stock != 0;
}

#endif
