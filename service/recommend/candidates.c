/*
 * vitrine: the candidate table and the candidate mix of each placement
 * (docs/recommendations.md, "Candidates").
 *
 * Only a bounded set of products is scored. Sources are read in order of importance, each
 * up to its share, and a product met twice keeps one entry that collects what every source
 * found about it (neighbour relations, trending score). Collection stops when the table
 * contains REC_CANDIDATES_MAX products.
 */
#include "recommend_internal.h"

#include <string.h>

_Static_assert(REC_CANDIDATE_SLOTS == 1 << 11, "candidate_start keeps the top 11 bits");

/* Entries read from one trending or catalog list at least, when a request has many. */
#define MIN_LIST_TAKE 10

/* ---- the table ---- */

void rec_candidates_init(struct rec_candidates *cs, bool fixed)
{
    cs->n = 0;
    cs->fixed = fixed;
    memset(cs->slots, 0xFF, sizeof cs->slots);
}


static uint32_t candidate_start(uint32_t product)
{
    return (uint32_t)(product * 2654435761u) >> 21;
}


struct rec_candidate *rec_candidates_find(struct rec_candidates *cs, uint32_t product)
{
    for (uint32_t k = candidate_start(product);; k = (k + 1) & (REC_CANDIDATE_SLOTS - 1)) {
        uint16_t i = cs->slots[k];
        if (i == REC_CANDIDATE_EMPTY)
            return NULL;
        if (cs->items[i].product == product)
            return &cs->items[i];
    }
}


struct rec_candidate *rec_candidates_add(struct rec_candidates *cs, uint32_t product)
{
    uint32_t k = candidate_start(product);

    for (;; k = (k + 1) & (REC_CANDIDATE_SLOTS - 1)) {
        uint16_t i = cs->slots[k];
        if (i == REC_CANDIDATE_EMPTY)
            break;
        if (cs->items[i].product == product)
            return &cs->items[i];
    }
    if (cs->n == REC_CANDIDATES_MAX)
        return NULL;

    struct rec_candidate *c = &cs->items[cs->n];
    memset(c, 0, sizeof *c);
    c->product = product;
    c->via = VT_CATALOG_NONE;
    cs->slots[k] = (uint16_t)cs->n;
    cs->n++;
    return c;
}


/* The candidate for a product a source offers: in a fixed table only one that is already
 * there, otherwise a new or existing one when the product passes the filters. *full is set
 * when the table has no room left. */
static struct rec_candidate *offer(struct rec_context *ctx, struct rec_candidates *cs,
                                   uint32_t product, bool *full)
{
    struct rec_candidate *c = rec_candidates_find(cs, product);

    /* A product already in the table passed the filters when it was added. */
    if (c != NULL || cs->fixed)
        return c;
    if (!rec_allowed(ctx, product))
        return NULL;

    c = rec_candidates_add(cs, product);
    if (c == NULL)
        *full = true;
    return c;
}


/* ---- sources ---- */

/* Add the first allowed products of a popularity-ordered catalog list, at most take of
 * them. Returns how many were taken. */
static size_t add_catalog_list(struct rec_context *ctx, struct rec_candidates *cs,
                               const uint32_t *list, size_t n, size_t take, bool *full)
{
    size_t taken = 0;

    for (size_t i = 0; i < n && i < take * REC_SCAN_FACTOR && taken < take && !*full; i++) {
        if (offer(ctx, cs, list[i], full) != NULL)
            taken++;
    }
    return taken;
}


/* The same for a trending list, recording each product's score divided by the list's top
 * score as its trend. */
static size_t add_trending_list(struct rec_context *ctx, struct rec_candidates *cs,
                                const struct vt_product_list *list, size_t take, bool *full)
{
    size_t taken = 0;

    if (list->n == 0 || !(list->items[0].score > 0))
        return 0;
    for (size_t i = 0; i < list->n && i < take * REC_SCAN_FACTOR && taken < take && !*full;
         i++) {
        struct rec_candidate *c = offer(ctx, cs, list->items[i].product, full);
        if (c == NULL)
            continue;

        float trend = list->items[i].score / list->items[0].score;
        if (trend > c->trend)
            c->trend = trend;
        taken++;
    }
    return taken;
}


/* Products of one category or one brand (or the whole catalog, with both NONE): trending
 * ones first, then catalog popularity for what trending could not give. */
static void add_keyed(struct rec_context *ctx, struct rec_candidates *cs, uint32_t category,
                      uint32_t brand, size_t take, bool *full)
{
    const uint32_t *list;
    size_t n;

    size_t taken = add_trending_list(ctx, cs, vt_world_trending(ctx->world, category, brand),
                                     take, full);
    if (taken >= take || *full)
        return;

    if (category != VT_CATALOG_NONE)
        list = vt_catalog_by_category(ctx->cat, category, &n);
    else if (brand != VT_CATALOG_NONE)
        list = vt_catalog_by_brand(ctx->cat, brand, &n);
    else
        list = vt_catalog_popular(ctx->cat, &n);
    add_catalog_list(ctx, cs, list, n, take - taken, full);
}


/* The non-personal source: trending and then popular products, of the request's
 * categories or brands when it names any, 2 * rec.candidates in all. */
static void add_popular(struct rec_context *ctx, struct rec_candidates *cs, bool *full)
{
    size_t total = 2 * ctx->per_source;

    if (ctx->n_categories > 0) {
        size_t take = total / ctx->n_categories;
        for (size_t i = 0; i < ctx->n_categories && !*full; i++)
            add_keyed(ctx, cs, ctx->categories[i], VT_CATALOG_NONE,
                      take > MIN_LIST_TAKE ? take : MIN_LIST_TAKE, full);
    } else if (ctx->n_brands > 0) {
        size_t take = total / ctx->n_brands;
        for (size_t i = 0; i < ctx->n_brands && !*full; i++)
            add_keyed(ctx, cs, VT_CATALOG_NONE, ctx->brands[i],
                      take > MIN_LIST_TAKE ? take : MIN_LIST_TAKE, full);
    } else {
        add_keyed(ctx, cs, VT_CATALOG_NONE, VT_CATALOG_NONE, total, full);
    }
}


/* The profile's strongest categories and brands, rec.candidates products from each. On
 * product and cart pages the profile only breaks ties after the page's relations, so a
 * third of that suffices there. */
static void add_affinities(struct rec_context *ctx, struct rec_candidates *cs, bool *full)
{
    size_t take = ctx->per_source;

    if (ctx->placement == VT_PLACEMENT_PRODUCT || ctx->placement == VT_PLACEMENT_CART)
        take = take / 3 > 0 ? take / 3 : 1;
    for (size_t i = 0; i < ctx->category_affinity.n_top && !*full; i++)
        add_keyed(ctx, cs, ctx->category_affinity.top[i], VT_CATALOG_NONE, take, full);
    for (size_t i = 0; i < ctx->brand_affinity.n_top && !*full; i++)
        add_keyed(ctx, cs, VT_CATALOG_NONE, ctx->brand_affinity.top[i], take, full);
}


/* The categories of the page product. */
static void add_same_category(struct rec_context *ctx, struct rec_candidates *cs, bool *full)
{
    for (uint8_t k = 0; ctx->page != NULL && k < ctx->page->n_categories && !*full; k++)
        add_keyed(ctx, cs, ctx->page->categories[k], VT_CATALOG_NONE, ctx->per_source, full);
}


static float neighbor_strength(const struct vt_neighbor *n)
{
    return n->co_view + (float)REC_BUY_WEIGHT * n->co_buy;
}


/* Add one relation source's neighbours, weighted by the source's weight and normalised by
 * the strongest neighbour of its list. */
static void add_neighbors(struct rec_context *ctx, struct rec_candidates *cs,
                          const struct rec_relation_source *source, size_t take, bool *full)
{
    const struct vt_neighbors *list = vt_world_neighbors(ctx->world, source->product);
    float max = 0;
    size_t taken = 0;

    if (list == NULL)
        return;
    for (uint32_t i = 0; i < list->n; i++) {
        float s = neighbor_strength(&list->items[i]);
        if (s > max)
            max = s;
    }
    if (!(max > 0))
        return;

    for (uint32_t i = 0; i < list->n && i < take * REC_SCAN_FACTOR && taken < take && !*full;
         i++) {
        const struct vt_neighbor *n = &list->items[i];
        float strength = neighbor_strength(n) / max;
        if (n->product == source->product || !(strength > 0))
            continue;
        /* The session's own recent views are each other's co-view neighbours, mostly
         * because of this very session: they would lead its list with what it has seen. */
        if (rec_set_contains(&ctx->recent, n->product))
            continue;

        struct rec_candidate *c = offer(ctx, cs, n->product, full);
        if (c == NULL)
            continue;
        taken++;

        float contribution = (float)source->weight * strength;
        c->relation += contribution;
        if (n->co_buy > 0)
            c->flags |= REC_FLAG_CO_BUY;
        if (contribution > c->via_strength) {
            c->via = source->product;
            c->via_strength = contribution;
            c->reasons &= (uint16_t)~(VT_REASON_SIMILAR | VT_REASON_BOUGHT_TOGETHER);
            if (n->co_view > 0)
                c->reasons |= VT_REASON_SIMILAR;
            if (n->co_buy > 0)
                c->reasons |= VT_REASON_BOUGHT_TOGETHER;
        }
    }
}


void rec_collect_relations(struct rec_context *ctx, struct rec_candidates *cs)
{
    bool full = false;

    /* On a product page the page product, the first source, may give twice rec.candidates.
     * Recent views and cart lines are several sources, and each gives a third of it. */
    size_t take = ctx->per_source / 3 > 0 ? ctx->per_source / 3 : 1;
    bool page_first = ctx->page != NULL && ctx->placement == VT_PLACEMENT_PRODUCT;
    for (size_t i = 0; i < ctx->n_relation_sources && !full; i++)
        add_neighbors(ctx, cs, &ctx->relation_sources[i],
                      i == 0 && page_first ? 2 * ctx->per_source : take, &full);
}


void rec_collect(struct rec_context *ctx, struct rec_candidates *cs)
{
    bool full = false;

    if (ctx->mode == REC_MODE_PERSONAL) {
        rec_collect_relations(ctx, cs);
        if (ctx->placement == VT_PLACEMENT_PRODUCT)
            add_same_category(ctx, cs, &full);
        add_affinities(ctx, cs, &full);
    }
    add_popular(ctx, cs, &full);

    for (size_t i = 0; i < cs->n; i++)
        rec_score(ctx, &cs->items[i]);
}
