/*
 * vitrine: the filters every served product passes (see include/vitrine/recommend.h).
 *
 * Hard filters are never relaxed: availability, the blocked set (cart, purchases, caller
 * exclusions, the page product, products already chosen), filter rules and the request's
 * categories, brands, gender and price range. The segment's gender filter is soft: the
 * last fallback step drops it when nothing else is left.
 */
#include "recommend_internal.h"

bool rec_product_in_category(const struct vt_product *p, uint32_t category)
{
    for (uint8_t k = 0; k < p->n_categories; k++) {
        if (p->categories[k] == category)
            return true;
    }
    return false;
}


static bool in_any_category(const struct rec_context *ctx, const struct vt_product *p)
{
    for (size_t i = 0; i < ctx->n_categories; i++) {
        if (rec_product_in_category(p, ctx->categories[i]))
            return true;
    }
    return false;
}


static bool in_any_brand(const struct rec_context *ctx, const struct vt_product *p)
{
    for (size_t i = 0; i < ctx->n_brands; i++) {
        if (p->brand == ctx->brands[i])
            return true;
    }
    return false;
}


/* The request's own filters. Products of unknown price fail a price bound, and products of
 * unknown gender fail a gender filter, which requires that gender or unisex. */
static bool passes_request(const struct rec_context *ctx, const struct vt_product *p)
{
    if (ctx->n_categories > 0 && !in_any_category(ctx, p))
        return false;
    if (ctx->n_brands > 0 && !in_any_brand(ctx, p))
        return false;
    if (ctx->gender != VT_GENDER_UNKNOWN && p->gender != ctx->gender &&
        p->gender != VT_GENDER_UNISEX)
        return false;
    if (ctx->price_min >= 0 && !(p->price >= 0 && p->price >= ctx->price_min))
        return false;
    if (ctx->price_max >= 0 && !(p->price >= 0 && p->price <= ctx->price_max))
        return false;
    return true;
}


bool rec_allowed_hard(struct rec_context *ctx, uint32_t product)
{
    const struct vt_product *p = vt_catalog_get(ctx->cat, product);

    if (p == NULL || !vt_product_available(p) || rec_set_contains(&ctx->blocked, product))
        return false;
    if (!passes_request(ctx, p))
        return false;
    return !rec_rules_filtered(&ctx->rules, product);
}


static bool opposite_gender(enum vt_segment segment, enum vt_gender gender)
{
    return (segment == VT_SEGMENT_FEMALE && gender == VT_GENDER_MALE) ||
           (segment == VT_SEGMENT_MALE && gender == VT_GENDER_FEMALE);
}


bool rec_allowed(struct rec_context *ctx, uint32_t product)
{
    if (!rec_allowed_hard(ctx, product))
        return false;
    if (ctx->relax_segment || ctx->filter_segment == VT_SEGMENT_UNKNOWN)
        return true;
    return !opposite_gender(ctx->filter_segment, vt_catalog_get(ctx->cat, product)->gender);
}
