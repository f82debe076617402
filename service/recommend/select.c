/*
 * vitrine: from scored candidates to the list (docs/recommendations.md, "Selection and
 * fallbacks"): pins, the best candidates under the brand cap, the in-stock fallback, and
 * the strategy that names the result.
 */
#include "recommend_internal.h"

#include <string.h>

/* A pin that passed the filters, waiting for the list around it. */
struct accepted_pin {
    uint32_t product;
    unsigned position;
    const char *rule;
};

/* ---- brand cap ---- */

/* True when the list already contains the maximum per brand. Products without a brand
 * are never capped. */
static bool brand_full(const struct rec_context *ctx, uint32_t brand)
{
    if (brand == VT_CATALOG_NONE)
        return false;
    for (size_t i = 0; i < ctx->n_brand_counts; i++) {
        if (ctx->brand_counts[i].brand == brand)
            return ctx->brand_counts[i].count >= ctx->per_brand;
    }
    return false;
}


static void count_brand(struct rec_context *ctx, uint32_t brand)
{
    if (brand == VT_CATALOG_NONE)
        return;
    for (size_t i = 0; i < ctx->n_brand_counts; i++) {
        if (ctx->brand_counts[i].brand == brand) {
            ctx->brand_counts[i].count++;
            return;
        }
    }
    if (ctx->n_brand_counts == sizeof ctx->brand_counts / sizeof ctx->brand_counts[0])
        return;
    ctx->brand_counts[ctx->n_brand_counts].brand = brand;
    ctx->brand_counts[ctx->n_brand_counts].count = 1;
    ctx->n_brand_counts++;
}


/* ---- items ---- */

/* The scored candidate of a product: the table's entry when collection met it, otherwise
 * one scored now without relations or trend. */
static struct rec_candidate candidate_of(struct rec_context *ctx, struct rec_candidates *cs,
                                         uint32_t product)
{
    struct rec_candidate *found = rec_candidates_find(cs, product);
    struct rec_candidate c;

    if (found != NULL)
        return *found;
    memset(&c, 0, sizeof c);
    c.product = product;
    c.via = VT_CATALOG_NONE;
    rec_score(ctx, &c);
    return c;
}


static void fill_item(struct rec_context *ctx, const struct rec_candidate *c, uint32_t extra,
                      struct vt_rec_item *item)
{
    const struct vt_product *p = vt_catalog_get(ctx->cat, c->product);

    item->product = c->product;
    item->score = c->score;
    item->reasons = c->reasons | extra;
    item->category = VT_CATALOG_NONE;
    item->via = VT_CATALOG_NONE;
    item->rule = NULL;
    item->pin_rule = NULL;
    if (item->reasons & VT_REASON_CATEGORY)
        item->category = rec_matching_category(ctx, p);
    if (item->reasons & (VT_REASON_SIMILAR | VT_REASON_BOUGHT_TOGETHER))
        item->via = c->via;
    if (item->reasons & VT_REASON_BOOSTED)
        rec_rules_boost(&ctx->rules, c->product, &item->rule);
}


/* Append a product to the list: it is blocked from then on and counts for its brand. */
static void choose(struct rec_context *ctx, struct vt_rec_result *out,
                   const struct rec_candidate *c, uint32_t extra)
{
    fill_item(ctx, c, extra, &out->items[out->n++]);
    rec_set_add(&ctx->blocked, c->product);
    count_brand(ctx, vt_catalog_get(ctx->cat, c->product)->brand);
}


/* ---- pins ---- */

/* Accept the pins in scope, in file order, whose product passes the hard filters and whose
 * position lies within the limit. A product pinned twice keeps its first pin. */
static size_t accept_pins(struct rec_context *ctx, struct accepted_pin *accepted)
{
    struct rec_pin pins[VT_RULES_MAX];
    size_t n = rec_rules_pins(&ctx->rules, pins, VT_RULES_MAX);
    size_t count = 0;

    for (size_t i = 0; i < n; i++) {
        if (pins[i].position > ctx->limit || !rec_allowed_hard(ctx, pins[i].product))
            continue;

        /* Insertion keeps the list ordered by position, earlier rules first on ties. */
        size_t at = count;
        while (at > 0 && accepted[at - 1].position > pins[i].position) {
            accepted[at] = accepted[at - 1];
            at--;
        }
        accepted[at].product = pins[i].product;
        accepted[at].position = pins[i].position;
        accepted[at].rule = pins[i].rule;
        count++;

        rec_set_add(&ctx->blocked, pins[i].product);
        count_brand(ctx, vt_catalog_get(ctx->cat, pins[i].product)->brand);
    }
    return count;
}


/* Put the pinned products at their positions. A pin whose position an earlier pin took
 * goes to the next free one, and a pin beyond the end of a short list goes last. */
static void insert_pins(struct rec_context *ctx, struct rec_candidates *cs,
                        const struct accepted_pin *pins, size_t n, struct vt_rec_result *out)
{
    size_t next_free = 0;

    for (size_t i = 0; i < n; i++) {
        size_t at = pins[i].position - 1;
        if (at < next_free)
            at = next_free;
        if (at > out->n)
            at = out->n;

        memmove(&out->items[at + 1], &out->items[at], (out->n - at) * sizeof out->items[0]);
        out->n++;

        struct rec_candidate c = candidate_of(ctx, cs, pins[i].product);
        fill_item(ctx, &c, VT_REASON_PINNED, &out->items[at]);
        out->items[at].pin_rule = pins[i].rule;
        next_free = at + 1;
    }
}


/* ---- best candidates ---- */

static void heap_sift_down(const struct rec_context *ctx, struct rec_candidates *cs, size_t n,
                           size_t i)
{
    for (;;) {
        size_t best = i;
        size_t left = 2 * i + 1;
        size_t right = left + 1;

        if (left < n &&
            rec_ranks_before(ctx, &cs->items[cs->heap[left]], &cs->items[cs->heap[best]]))
            best = left;
        if (right < n &&
            rec_ranks_before(ctx, &cs->items[cs->heap[right]], &cs->items[cs->heap[best]]))
            best = right;
        if (best == i)
            return;

        uint16_t swap = cs->heap[i];
        cs->heap[i] = cs->heap[best];
        cs->heap[best] = swap;
        i = best;
    }
}


/* Take the best candidates in rank order under the brand cap until the list contains
 * limit items. */
static void select_candidates(struct rec_context *ctx, struct rec_candidates *cs,
                              struct vt_rec_result *out, size_t limit)
{
    size_t n = cs->n;

    for (size_t i = 0; i < n; i++)
        cs->heap[i] = (uint16_t)i;
    for (size_t i = n / 2; i-- > 0;)
        heap_sift_down(ctx, cs, n, i);

    while (n > 0 && out->n < limit) {
        const struct rec_candidate *c = &cs->items[cs->heap[0]];
        cs->heap[0] = cs->heap[--n];
        heap_sift_down(ctx, cs, n, 0);

        if (rec_set_contains(&ctx->blocked, c->product))
            continue;
        if (brand_full(ctx, vt_catalog_get(ctx->cat, c->product)->brand))
            continue;
        choose(ctx, out, c, 0);
    }
}


/* ---- the in-stock fallback ---- */

/* Walk a popularity-ordered list and take allowed products not chosen yet, in that order. */
static void fill_from_list(struct rec_context *ctx, struct rec_candidates *cs,
                           struct vt_rec_result *out, size_t limit, const uint32_t *list,
                           size_t n, bool brand_cap)
{
    for (size_t i = 0; i < n && out->n < limit; i++) {
        uint32_t product = list[i];
        if (!rec_allowed(ctx, product))
            continue;
        if (brand_cap && brand_full(ctx, vt_catalog_get(ctx->cat, product)->brand))
            continue;

        struct rec_candidate c = candidate_of(ctx, cs, product);
        choose(ctx, out, &c, VT_REASON_FALLBACK);
    }
}


/* The catalog lists the fallback walks: those of the request's categories or brands, or
 * the whole catalog. */
static void fill_from_catalog(struct rec_context *ctx, struct rec_candidates *cs,
                              struct vt_rec_result *out, size_t limit, bool brand_cap)
{
    const uint32_t *list;
    size_t n;

    if (ctx->n_categories > 0) {
        for (size_t i = 0; i < ctx->n_categories; i++) {
            list = vt_catalog_by_category(ctx->cat, ctx->categories[i], &n);
            fill_from_list(ctx, cs, out, limit, list, n, brand_cap);
        }
    } else if (ctx->n_brands > 0) {
        for (size_t i = 0; i < ctx->n_brands; i++) {
            list = vt_catalog_by_brand(ctx->cat, ctx->brands[i], &n);
            fill_from_list(ctx, cs, out, limit, list, n, brand_cap);
        }
    } else {
        list = vt_catalog_popular(ctx->cat, &n);
        fill_from_list(ctx, cs, out, limit, list, n, brand_cap);
    }
}


/*
 * Walk the catalog's popularity lists for available products that pass the filters: first
 * under the brand cap, then without it. Only when the list (pins included) is still empty
 * is the segment's gender filter dropped, so that a list is empty only when no available
 * product passes the hard filters.
 */
static void fill_in_stock(struct rec_context *ctx, struct rec_candidates *cs,
                          struct vt_rec_result *out, size_t limit, size_t n_pins)
{
    fill_from_catalog(ctx, cs, out, limit, true);
    if (out->n < limit)
        fill_from_catalog(ctx, cs, out, limit, false);
    if (out->n > 0 || n_pins > 0 || ctx->filter_segment == VT_SEGMENT_UNKNOWN)
        return;

    ctx->relax_segment = true;
    fill_from_catalog(ctx, cs, out, limit, false);
}


void rec_select(struct rec_context *ctx, struct rec_candidates *cs, struct vt_rec_result *out)
{
    struct accepted_pin pins[VT_RULES_MAX];

    out->n = 0;
    size_t n_pins = accept_pins(ctx, pins);
    size_t limit = ctx->limit - n_pins;

    select_candidates(ctx, cs, out, limit);
    if (out->n < limit)
        fill_in_stock(ctx, cs, out, limit, n_pins);
    insert_pins(ctx, cs, pins, n_pins, out);
}


/* ---- strategy ---- */

enum vt_rec_strategy rec_strategy_of(const struct vt_rec_result *out)
{
    const uint32_t personal_reasons =
        VT_REASON_CATEGORY | VT_REASON_BRAND | VT_REASON_SIMILAR | VT_REASON_BOUGHT_TOGETHER;
    size_t counted = 0, personal = 0, trending = 0, fallback = 0;
    size_t pinned = 0;

    for (size_t i = 0; i < out->n; i++)
        pinned += (out->items[i].reasons & VT_REASON_PINNED) != 0;

    /* Pinned items follow the rules, not the chain, unless nothing else is in the list. */
    for (size_t i = 0; i < out->n; i++) {
        uint32_t reasons = out->items[i].reasons;
        if ((reasons & VT_REASON_PINNED) && pinned < out->n)
            continue;
        counted++;
        if (reasons & VT_REASON_FALLBACK)
            fallback++;
        else if (reasons & personal_reasons)
            personal++;
        else if (reasons & VT_REASON_TRENDING)
            trending++;
    }

    if (counted == 0)
        return VT_STRATEGY_EMPTY;
    if (fallback > 0)
        return VT_STRATEGY_IN_STOCK;
    if (personal == counted)
        return VT_STRATEGY_PERSONALIZED;
    if (personal > 0)
        return VT_STRATEGY_PERSONALIZED_TRENDING;
    if (trending > 0)
        return VT_STRATEGY_TRENDING;
    return VT_STRATEGY_POPULAR;
}
