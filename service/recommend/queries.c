/*
 * vitrine: the non-personal lists: trending products and products similar to one product
 * (vt_trending_query and vt_similar_query, see include/vitrine/recommend.h).
 *
 * Both serve available products only and fill a short list from the catalog's popularity
 * lists; those fill entries carry score 0. Limits above VT_REC_LIMIT_MAX are cut to it.
 */
#include "recommend_internal.h"

#include <string.h>

#define SEEN_SLOTS 512

_Static_assert(SEEN_SLOTS >= 2 * VT_REC_LIMIT_MAX, "the set of listed products stays half empty");

/* Conditions of a query besides availability. */
struct query_filter {
    uint32_t category;
    uint32_t brand;
    enum vt_gender gender;
    uint32_t skip; /* a product never listed, or NONE */
};

static bool query_accepts(const struct vt_catalog *cat, const struct query_filter *f,
                          uint32_t product)
{
    const struct vt_product *p = vt_catalog_get(cat, product);

    if (p == NULL || product == f->skip || !vt_product_available(p))
        return false;
    if (f->category != VT_CATALOG_NONE && !rec_product_in_category(p, f->category))
        return false;
    if (f->brand != VT_CATALOG_NONE && p->brand != f->brand)
        return false;
    if (f->gender != VT_GENDER_UNKNOWN && p->gender != f->gender &&
        p->gender != VT_GENDER_UNISEX)
        return false;
    return true;
}


static size_t cap_limit(size_t limit)
{
    return limit < VT_REC_LIMIT_MAX ? limit : VT_REC_LIMIT_MAX;
}


/* The catalog list of a category, else of a brand, else of the whole catalog. */
static const uint32_t *catalog_list(const struct vt_catalog *cat, uint32_t category,
                                    uint32_t brand, size_t *n)
{
    if (category != VT_CATALOG_NONE)
        return vt_catalog_by_category(cat, category, n);
    if (brand != VT_CATALOG_NONE)
        return vt_catalog_by_brand(cat, brand, n);
    return vt_catalog_popular(cat, n);
}


size_t vt_trending_query(const struct vt_world *w, uint32_t category, uint32_t brand,
                         enum vt_gender gender, size_t limit, struct vt_scored_product *out)
{
    struct query_filter filter = {category, brand, gender, VT_CATALOG_NONE};
    struct rec_index_set listed;
    uint32_t slots[SEEN_SLOTS];
    size_t count = 0;
    size_t n;

    if (w == NULL)
        return 0;
    limit = cap_limit(limit);
    rec_set_init(&listed, slots, 9);

    const struct vt_product_list *trending = vt_world_trending(w, category, brand);
    for (uint32_t i = 0; i < trending->n && count < limit; i++) {
        const struct vt_scored_product *entry = &trending->items[i];
        if (!query_accepts(w->catalog, &filter, entry->product) ||
            rec_set_add(&listed, entry->product) != 1)
            continue;
        out[count++] = *entry;
    }

    const uint32_t *list = catalog_list(w->catalog, category, brand, &n);
    for (size_t i = 0; i < n && count < limit; i++) {
        if (!query_accepts(w->catalog, &filter, list[i]) || rec_set_add(&listed, list[i]) != 1)
            continue;
        out[count].product = list[i];
        out[count].score = 0;
        count++;
    }
    return count;
}


static void similar_item(struct vt_rec_item *item, uint32_t product, double score,
                         uint32_t reasons, uint32_t via)
{
    item->product = product;
    item->score = score;
    item->reasons = reasons;
    item->category = VT_CATALOG_NONE;
    item->via = via;
    item->rule = NULL;
}


size_t vt_similar_query(const struct vt_world *w, uint32_t product, size_t limit,
                        struct vt_rec_item *out, size_t *from_neighbors)
{
    struct query_filter filter = {VT_CATALOG_NONE, VT_CATALOG_NONE, VT_GENDER_UNKNOWN, product};
    struct rec_index_set listed;
    uint32_t slots[SEEN_SLOTS];
    size_t count = 0;

    *from_neighbors = 0;
    if (w == NULL || product >= vt_catalog_size(w->catalog))
        return 0;
    limit = cap_limit(limit);
    rec_set_init(&listed, slots, 9);

    const struct vt_neighbors *neighbors = vt_world_neighbors(w, product);
    for (uint32_t i = 0; neighbors != NULL && i < neighbors->n && count < limit; i++) {
        const struct vt_neighbor *n = &neighbors->items[i];
        uint32_t reasons = 0;

        if (!query_accepts(w->catalog, &filter, n->product) || rec_set_add(&listed, n->product) != 1)
            continue;
        if (n->co_view > 0)
            reasons |= VT_REASON_SIMILAR;
        if (n->co_buy > 0)
            reasons |= VT_REASON_BOUGHT_TOGETHER;
        similar_item(&out[count++], n->product, (double)n->co_view + n->co_buy, reasons,
                     product);
    }
    *from_neighbors = count;

    /* Fill with the product's categories: trending in them first, then popular. */
    const struct vt_product *p = vt_catalog_get(w->catalog, product);
    for (uint8_t k = 0; k < p->n_categories && count < limit; k++) {
        const struct vt_product_list *trending = vt_world_trending(w, p->categories[k],
                                                                   VT_CATALOG_NONE);
        size_t n;
        const uint32_t *list = vt_catalog_by_category(w->catalog, p->categories[k], &n);

        for (uint32_t i = 0; i < trending->n && count < limit; i++) {
            uint32_t candidate = trending->items[i].product;
            if (!query_accepts(w->catalog, &filter, candidate) ||
                rec_set_add(&listed, candidate) != 1)
                continue;
            similar_item(&out[count++], candidate, 0,
                         VT_REASON_SAME_CATEGORY | VT_REASON_TRENDING, VT_CATALOG_NONE);
        }
        for (size_t i = 0; i < n && count < limit; i++) {
            if (!query_accepts(w->catalog, &filter, list[i]) || rec_set_add(&listed, list[i]) != 1)
                continue;
            similar_item(&out[count++], list[i], 0, VT_REASON_SAME_CATEGORY | VT_REASON_POPULAR,
                         VT_CATALOG_NONE);
        }
    }
    return count;
}
