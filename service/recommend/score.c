/*
 * vitrine: the score of a candidate product p (docs/recommendations.md, "Score").
 *
 * Every term lies in 0..1:
 *
 *   affinity(p)   = 0.45 * category(p) + 0.30 * brand(p) + 0.10 * tier(p)
 *   relation(p)   = min(1, sum over relation sources s of weight(s) * strength(s, p))
 *   same(p)       = 1 when p shares a category with the page product
 *   popularity(p) = 0.75 * trend(p) + 0.25 * catalog(p)   when the request's trending
 *                   lists have entries, else catalog(p)
 *
 *   base(p)  = W_aff * affinity + W_rel * relation + W_same * same + W_pop * popularity
 *   score(p) = base(p) * 1.1 when p is made for the session's confident gender segment
 *                      * 0.5 when p is among the recently viewed products
 *                      * rotation(p)
 *                      * the factors of the boost rules that match p
 *
 * The W weights depend on the placement (weights[] below). The control group uses
 * popularity alone and none of the profile's factors. strength(s, p) is (co_view +
 * 2 * co_buy) of the neighbour entry, divided by the largest such value in s's list.
 */
#include "recommend_internal.h"

#include <math.h>
#include <string.h>

#define WEIGHT_CATEGORY 0.45
#define WEIGHT_BRAND 0.30
#define WEIGHT_TIER 0.10
#define SHARE_TREND 0.75
#define FACTOR_GENDER 1.1
#define FACTOR_RECENT 0.5

/* W_aff, W_rel, W_same, W_pop per placement. Home weighs what other sessions viewed next
 * (relations) as much as the profile's affinities, search trusts the recent views most,
 * category pages trust trending in the category more, and product and cart pages rank by
 * relations to the products on the page, with the profile as a tie-breaker. */
static const struct rec_weights weights[VT_PLACEMENT_COUNT] = {
    [VT_PLACEMENT_HOME] = {1.0, 1.0, 0.0, 0.15},
    [VT_PLACEMENT_PRODUCT] = {0.2, 1.0, 0.5, 0.10},
    [VT_PLACEMENT_CART] = {0.2, 1.0, 0.0, 0.10},
    [VT_PLACEMENT_CATEGORY] = {1.0, 0.4, 0.0, 0.25},
    [VT_PLACEMENT_SEARCH] = {1.0, 1.2, 0.0, 0.15},
};

/* vt_rerank has no popularity term, so products without affinity or relation to the
 * profile keep the page's order. */
static const struct rec_weights rerank_weights = {1.0, 0.6, 0.0, 0.0};
static const struct rec_weights control_weights = {0.0, 0.0, 0.0, 1.0};


struct rec_weights rec_weights_for(enum rec_mode mode, enum vt_placement placement)
{
    if (mode == REC_MODE_CONTROL)
        return control_weights;
    if (mode == REC_MODE_RERANK)
        return rerank_weights;
    return weights[placement];
}


double rec_catalog_popularity(const struct rec_context *ctx, const struct vt_product *p)
{
    if (!(ctx->log_max_popularity > 0))
        return 0;
    return p->log_popularity / ctx->log_max_popularity;
}


uint32_t rec_matching_category(const struct rec_context *ctx, const struct vt_product *p)
{
    uint32_t best = VT_CATALOG_NONE;
    double strongest = 0;

    for (uint8_t k = 0; k < p->n_categories; k++) {
        double a = rec_affinity_get(&ctx->category_affinity, p->categories[k]);
        if (a > strongest) {
            strongest = a;
            best = p->categories[k];
        }
    }
    return best;
}


static bool shares_category(const struct vt_product *a, const struct vt_product *b)
{
    for (uint8_t k = 0; k < a->n_categories; k++) {
        if (rec_product_in_category(b, a->categories[k]))
            return true;
    }
    return false;
}


static bool made_for(enum vt_segment segment, enum vt_gender gender)
{
    return (segment == VT_SEGMENT_FEMALE && gender == VT_GENDER_FEMALE) ||
           (segment == VT_SEGMENT_MALE && gender == VT_GENDER_MALE);
}


/* Rank group of a scored candidate. Product pages put the page product's neighbours first
 * and its category next. Cart pages put complements (co-purchases) first and co-views next. */
static uint8_t group_of(const struct rec_context *ctx, const struct rec_candidate *c,
                        bool same)
{
    if (ctx->mode != REC_MODE_PERSONAL)
        return 0;
    if (ctx->placement == VT_PLACEMENT_PRODUCT) {
        if (c->relation > 0)
            return 0;
        return same ? 1 : 2;
    }
    if (ctx->placement == VT_PLACEMENT_CART) {
        if (c->flags & REC_FLAG_CO_BUY)
            return 0;
        return c->relation > 0 ? 1 : 2;
    }
    return 0;
}


void rec_score(struct rec_context *ctx, struct rec_candidate *c)
{
    const struct vt_product *p = vt_catalog_get(ctx->cat, c->product);
    const struct rec_weights *w = &ctx->weights;
    bool personal_mode = ctx->mode != REC_MODE_CONTROL;
    uint32_t reasons = c->reasons & (VT_REASON_SIMILAR | VT_REASON_BOUGHT_TOGETHER);
    double category = 0;
    double brand = 0;
    double tier = 0;

    if (personal_mode) {
        uint32_t matching = rec_matching_category(ctx, p);
        if (matching != VT_CATALOG_NONE)
            category = rec_affinity_get(&ctx->category_affinity, matching);
        if (p->brand != VT_CATALOG_NONE)
            brand = rec_affinity_get(&ctx->brand_affinity, p->brand);
        tier = ctx->tiers[p->tier];
    }
    double relation = c->relation < 1 ? c->relation : 1;
    bool same = ctx->page != NULL && w->same_category > 0 && shares_category(p, ctx->page);
    double popularity = rec_catalog_popularity(ctx, p);
    if (ctx->trending_present)
        popularity = SHARE_TREND * c->trend + (1 - SHARE_TREND) * popularity;

    double affinity = WEIGHT_CATEGORY * category + WEIGHT_BRAND * brand + WEIGHT_TIER * tier;
    double score = w->affinity * affinity + w->relation * relation +
                   (same ? w->same_category : 0) + w->popularity * popularity;

    if (personal_mode) {
        if (made_for(ctx->segment, p->gender)) {
            score *= FACTOR_GENDER;
            reasons |= VT_REASON_GENDER;
        }
        if (rec_set_contains(&ctx->recent, c->product))
            score *= FACTOR_RECENT;
        score *= rec_rotation_factor(&ctx->rotation, c->product);
    }

    const char *rule;
    double boost = rec_rules_boost(&ctx->rules, c->product, &rule);
    if (rule != NULL) {
        score *= boost;
        reasons |= VT_REASON_BOOSTED;
    }

    bool personal = category > 0 || brand > 0 || relation > 0;
    if (category > 0)
        reasons |= VT_REASON_CATEGORY;
    if (brand > 0)
        reasons |= VT_REASON_BRAND;
    if (personal_mode && (int)p->tier == ctx->preferred_tier)
        reasons |= VT_REASON_PRICE_TIER;
    if (same)
        reasons |= VT_REASON_SAME_CATEGORY;
    if (c->trend > 0)
        reasons |= VT_REASON_TRENDING;
    if (!personal && c->trend <= 0)
        reasons |= VT_REASON_POPULAR;

    c->score = score;
    c->reasons = (uint16_t)reasons;
    c->group = group_of(ctx, c, same);
}


bool rec_ranks_before(const struct rec_context *ctx, const struct rec_candidate *a,
                      const struct rec_candidate *b)
{
    if (a->group != b->group)
        return a->group < b->group;
    if (a->score != b->score)
        return a->score > b->score;

    const struct vt_product *x = vt_catalog_get(ctx->cat, a->product);
    const struct vt_product *y = vt_catalog_get(ctx->cat, b->product);
    if (x->popularity != y->popularity)
        return x->popularity > y->popularity;
    return strcmp(x->id, y->id) < 0;
}
