/*
 * vitrine: world parts from aggregates already read from Redis (see live_internal.h).
 *
 * Pure functions of a catalog and sorted sets: no I/O, so unit tests feed them directly.
 * Scores arrive as forward-decay log-scores (include/vitrine/profile.h) and leave as
 * values decayed to the refresh time, so that values of one version compare directly.
 * One exception: when a list's strongest value would fall below e^LOG_VALUE_FLOOR (the data
 * is many half-lives old, as in a replay of recorded events), the whole list is scaled so
 * that its strongest entry is 1, because float values would otherwise underflow to 0.
 * Readers only compare values within one list, so the scaling keeps every ranking.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "live_internal.h"
#include "vitrine/profile.h"

/* Natural log of the smallest strongest value a list keeps unscaled (about 1e-30). */
#define LOG_VALUE_FLOOR (-69.0)

/* Log of the value at now_ms of a score as Redis stores it (profile.h, VT_SCORE_SCALE). */
static double log_value(double stored, int64_t now_ms, double half_life_s)
{
    return vt_score_from_stored(stored) - ((double)now_ms / 1000.0) * M_LN2 / half_life_s;
}


/* Shift to add to log values so that the strongest (strongest_log) is not below the
 * floor: 0 when it is above it. */
static double scale_shift(double strongest_log)
{
    return strongest_log < LOG_VALUE_FLOOR ? -strongest_log : 0.0;
}


static bool product_known(const struct vt_catalog *cat, const struct live_member *m,
                          uint32_t *index)
{
    /* vt_catalog_find does not find removed products. */
    *index = vt_catalog_find(cat, m->id, m->len);
    return *index != VT_CATALOG_NONE;
}


/* The members of z that the catalog finds, in z's order, with decayed values. */
static struct vt_product_list *list_from_zset(const struct vt_catalog *cat,
                                              const struct live_zset *z, int64_t now_ms,
                                              double half_life_s)
{
    struct vt_product_list *list = malloc(sizeof *list + z->n * sizeof list->items[0]);
    double shift = 0;
    uint32_t n = 0;

    if (list == NULL)
        return NULL;
    /* The sets arrive strongest first (ZREVRANGE). */
    if (z->n > 0)
        shift = scale_shift(log_value(z->items[0].score, now_ms, half_life_s));
    for (size_t i = 0; i < z->n; i++) {
        uint32_t index;

        if (!product_known(cat, &z->items[i], &index))
            continue;
        list->items[n].product = index;
        list->items[n].score =
            (float)exp(log_value(z->items[i].score, now_ms, half_life_s) + shift);
        n++;
    }
    list->n = n;
    return list;
}


static int compare_scored_by_product(const void *a, const void *b)
{
    const struct vt_scored_product *x = a, *y = b;

    return x->product < y->product ? -1 : x->product > y->product;
}


static int compare_scored_by_score(const void *a, const void *b)
{
    const struct vt_scored_product *x = a, *y = b;

    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->product < y->product ? -1 : x->product > y->product;
}


/*
 * Merge two lists of the same category or brand into *into. Two Redis keys map to one
 * catalog name when they differ only in case ("Perfume" and "perfume"), because catalog
 * lookups ignore case. Values of a product in both are added; the result keeps the
 * strongest LIVE_TRENDING_LIST_MAX entries. Returns -1 when memory runs out.
 */
static int merge_lists(const struct vt_product_list **into, struct vt_product_list *other)
{
    const struct vt_product_list *a = *into;
    size_t total = (size_t)a->n + other->n;
    struct vt_product_list *merged = malloc(sizeof *merged + total * sizeof merged->items[0]);
    size_t n = 0;

    if (merged == NULL)
        return -1;
    memcpy(merged->items, a->items, a->n * sizeof a->items[0]);
    memcpy(merged->items + a->n, other->items, other->n * sizeof other->items[0]);
    qsort(merged->items, total, sizeof merged->items[0], compare_scored_by_product);
    for (size_t i = 0; i < total; i++) {
        if (n > 0 && merged->items[n - 1].product == merged->items[i].product)
            merged->items[n - 1].score += merged->items[i].score;
        else
            merged->items[n++] = merged->items[i];
    }
    qsort(merged->items, n, sizeof merged->items[0], compare_scored_by_score);
    merged->n = (uint32_t)(n < LIVE_TRENDING_LIST_MAX ? n : LIVE_TRENDING_LIST_MAX);

    free((void *)a);
    free(other);
    *into = merged;
    return 0;
}


/* Put one category or brand list into its slot of lists[count]. */
static int place_group(const struct vt_catalog *cat, const struct live_trend_group *g,
                       const struct vt_product_list **lists, size_t count, int64_t now_ms,
                       double half_life_s)
{
    uint32_t index = g->is_brand ? vt_catalog_brand_find(cat, g->name, g->len)
                                 : vt_catalog_category_find(cat, g->name, g->len);
    struct vt_product_list *list;

    if (index == VT_CATALOG_NONE || index >= count)
        return 0;
    list = list_from_zset(cat, &g->list, now_ms, half_life_s);
    if (list == NULL)
        return -1;
    if (list->n == 0) {
        free(list);
        return 0;
    }
    if (lists[index] == NULL) {
        lists[index] = list;
        return 0;
    }
    return merge_lists(&lists[index], list);
}


struct vt_trending *live_trending_build(const struct vt_catalog *cat,
                                        const struct live_trending_input *in, int64_t now_ms,
                                        double half_life_s)
{
    const struct vt_catalog_stats *stats = vt_catalog_stats(cat);
    struct vt_trending *t = calloc(1, sizeof *t);
    const struct vt_product_list **by_category = NULL;
    const struct vt_product_list **by_brand = NULL;

    if (t == NULL)
        return NULL;
    t->global = list_from_zset(cat, &in->global, now_ms, half_life_s);
    by_category = calloc(stats->categories > 0 ? stats->categories : 1, sizeof *by_category);
    by_brand = calloc(stats->brands > 0 ? stats->brands : 1, sizeof *by_brand);
    t->by_category = by_category;
    t->by_brand = by_brand;
    t->n_categories = stats->categories;
    t->n_brands = stats->brands;
    if (t->global == NULL || by_category == NULL || by_brand == NULL)
        goto fail;

    for (size_t i = 0; i < in->n_groups; i++) {
        const struct live_trend_group *g = &in->groups[i];
        const struct vt_product_list **lists = g->is_brand ? by_brand : by_category;
        size_t count = g->is_brand ? t->n_brands : t->n_categories;

        if (place_group(cat, g, lists, count, now_ms, half_life_s) != 0)
            goto fail;
    }
    return t;

fail:
    live_trending_free(t);
    return NULL;
}


struct vt_trending *live_trending_build_global(const struct vt_catalog *cat,
                                               const struct live_zset *global,
                                               const struct vt_trending *groups,
                                               int64_t now_ms, double half_life_s)
{
    struct vt_trending *t = calloc(1, sizeof *t);

    if (t == NULL)
        return NULL;
    t->global = list_from_zset(cat, global, now_ms, half_life_s);
    if (t->global == NULL) {
        free(t);
        return NULL;
    }
    t->by_category = groups->by_category;
    t->by_brand = groups->by_brand;
    t->n_categories = groups->n_categories;
    t->n_brands = groups->n_brands;
    return t;
}


static int compare_neighbors_by_product(const void *a, const void *b)
{
    const struct vt_neighbor *x = a, *y = b;

    return x->product < y->product ? -1 : x->product > y->product;
}


static int compare_neighbors_by_strength(const void *a, const void *b)
{
    const struct vt_neighbor *x = a, *y = b;
    float sx = x->co_view + x->co_buy;
    float sy = y->co_view + y->co_buy;

    if (sx != sy)
        return sx > sy ? -1 : 1;
    return x->product < y->product ? -1 : x->product > y->product;
}


/* Append the known members of z to out[*n] as co-views or co-purchases. */
static void add_neighbors(const struct vt_catalog *cat, uint32_t product,
                          const struct live_zset *z, bool co_view, int64_t now_ms,
                          double half_life_s, double shift, struct vt_neighbor *out, size_t *n)
{
    for (size_t i = 0; i < z->n; i++) {
        uint32_t index;
        float value;

        if (!product_known(cat, &z->items[i], &index) || index == product)
            continue;
        value = (float)exp(log_value(z->items[i].score, now_ms, half_life_s) + shift);
        out[*n].product = index;
        out[*n].co_view = co_view ? value : 0;
        out[*n].co_buy = co_view ? 0 : value;
        (*n)++;
    }
}


struct vt_neighbors *live_neighbors_build(const struct vt_catalog *cat, uint32_t product,
                                          const struct live_zset *co_view,
                                          const struct live_zset *co_buy, int64_t now_ms,
                                          double half_life_s, size_t max, bool *oom)
{
    size_t total = co_view->n + co_buy->n;
    struct vt_neighbor *all;
    struct vt_neighbors *list;
    size_t n = 0, merged = 0;

    if (total == 0 || max == 0)
        return NULL;
    all = malloc(total * sizeof *all);
    if (all == NULL) {
        *oom = true;
        return NULL;
    }
    /* Co-views and co-purchases of one product share one scale, so they stay comparable. */
    double strongest = -INFINITY;
    if (co_view->n > 0)
        strongest = log_value(co_view->items[0].score, now_ms, half_life_s);
    if (co_buy->n > 0 && log_value(co_buy->items[0].score, now_ms, half_life_s) > strongest)
        strongest = log_value(co_buy->items[0].score, now_ms, half_life_s);
    double shift = scale_shift(strongest);
    add_neighbors(cat, product, co_view, true, now_ms, half_life_s, shift, all, &n);
    add_neighbors(cat, product, co_buy, false, now_ms, half_life_s, shift, all, &n);

    /* A product in both sets becomes one entry with both values. */
    qsort(all, n, sizeof *all, compare_neighbors_by_product);
    for (size_t i = 0; i < n; i++) {
        if (merged > 0 && all[merged - 1].product == all[i].product) {
            all[merged - 1].co_view += all[i].co_view;
            all[merged - 1].co_buy += all[i].co_buy;
        } else {
            all[merged++] = all[i];
        }
    }
    if (merged == 0) {
        free(all);
        return NULL;
    }
    qsort(all, merged, sizeof *all, compare_neighbors_by_strength);
    if (merged > max)
        merged = max;

    list = malloc(sizeof *list + merged * sizeof list->items[0]);
    if (list == NULL) {
        free(all);
        *oom = true;
        return NULL;
    }
    list->n = (uint32_t)merged;
    memcpy(list->items, all, merged * sizeof *all);
    free(all);
    return list;
}
