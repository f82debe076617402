/*
 * vitrine: the per-request context of the recommender: the profile's names and ids looked
 * up in the world's catalog, the request's filters, the rotation factors and the rules in
 * scope. Also the fixed-size sets and maps that hold them.
 */
#include "recommend_internal.h"

#include <math.h>
#include <string.h>

_Static_assert(REC_BLOCKED_SLOTS == 1 << 10 && REC_RECENT_SLOTS == 1 << 7,
               "rec_set_init receives these slot counts as powers of two");
_Static_assert(REC_AFFINITY_SLOTS == 1 << 6, "affinity_start keeps the top 6 bits");
_Static_assert(REC_ROTATION_SLOTS == 1 << 8, "rotation_start keeps the top 8 bits");

/* ---- sets of catalog indexes ---- */

void rec_set_init(struct rec_index_set *set, uint32_t *slots, unsigned bits)
{
    set->slots = slots;
    set->mask = (1u << bits) - 1;
    set->shift = 32 - bits;
    set->count = 0;
    memset(slots, 0xFF, ((size_t)set->mask + 1) * sizeof *slots);
}


static uint32_t set_start(const struct rec_index_set *set, uint32_t index)
{
    return (uint32_t)(index * 2654435761u) >> set->shift;
}


bool rec_set_contains(const struct rec_index_set *set, uint32_t index)
{
    for (uint32_t k = set_start(set, index);; k = (k + 1) & set->mask) {
        if (set->slots[k] == index)
            return true;
        if (set->slots[k] == VT_CATALOG_NONE)
            return false;
    }
}


int rec_set_add(struct rec_index_set *set, uint32_t index)
{
    if (index == VT_CATALOG_NONE)
        return 0;
    for (uint32_t k = set_start(set, index);; k = (k + 1) & set->mask) {
        if (set->slots[k] == index)
            return 0;
        if (set->slots[k] == VT_CATALOG_NONE) {
            if ((set->count + 1) * 2 > (size_t)set->mask + 1)
                return -1;
            set->slots[k] = index;
            set->count++;
            return 1;
        }
    }
}


/* ---- affinities ---- */

static uint32_t affinity_start(uint32_t index)
{
    return ((uint32_t)(index * 2654435761u) >> 26) & (REC_AFFINITY_SLOTS - 1);
}


double rec_affinity_get(const struct rec_affinity_map *m, uint32_t index)
{
    for (uint32_t k = affinity_start(index);; k = (k + 1) & (REC_AFFINITY_SLOTS - 1)) {
        if (m->keys[k] == index)
            return m->values[k];
        if (m->keys[k] == VT_CATALOG_NONE)
            return 0;
    }
}


/* Add value to the entry of index, so that names differing only in case share one entry. */
static void affinity_add(struct rec_affinity_map *m, uint32_t index, double value)
{
    for (uint32_t k = affinity_start(index);; k = (k + 1) & (REC_AFFINITY_SLOTS - 1)) {
        if (m->keys[k] == index) {
            m->values[k] += value;
            return;
        }
        if (m->keys[k] == VT_CATALOG_NONE) {
            m->keys[k] = index;
            m->values[k] = value;
            return;
        }
    }
}


static void affinity_clear(struct rec_affinity_map *m)
{
    memset(m->keys, 0xFF, sizeof m->keys);
    m->n_top = 0;
}


typedef uint32_t (*name_finder)(const struct vt_catalog *cat, const char *name, size_t len);

/*
 * Map the profile's names to catalog indexes, divide each value by the strongest one and
 * keep the REC_TOP_SOURCES strongest as candidate sources. Names unknown to the catalog and
 * values that are not positive are skipped.
 */
static void affinity_build(struct rec_affinity_map *m, const struct vt_catalog *cat,
                           const struct vt_scored_name *names, size_t n, name_finder find)
{
    double max = 0;

    affinity_clear(m);
    if (n > VT_PROFILE_TOP_MAX)
        n = VT_PROFILE_TOP_MAX;

    for (size_t i = 0; i < n; i++) {
        double value = names[i].value;
        if (!(value > 0) || !isfinite(value))
            continue;
        uint32_t index = find(cat, names[i].name, strnlen(names[i].name, VT_NAME_MAX + 1));
        if (index != VT_CATALOG_NONE)
            affinity_add(m, index, value);
    }

    for (size_t k = 0; k < REC_AFFINITY_SLOTS; k++) {
        if (m->keys[k] != VT_CATALOG_NONE && m->values[k] > max)
            max = m->values[k];
    }
    if (!(max > 0) || !isfinite(max)) {
        /* Values so large that their sum overflows cannot be compared: ignore them all. */
        affinity_clear(m);
        return;
    }

    /* Normalise, and keep the strongest entries by insertion, ties by smaller index. */
    for (size_t k = 0; k < REC_AFFINITY_SLOTS; k++) {
        if (m->keys[k] == VT_CATALOG_NONE)
            continue;
        m->values[k] /= max;

        size_t pos = m->n_top;
        while (pos > 0) {
            double above = rec_affinity_get(m, m->top[pos - 1]);
            if (above > m->values[k] || (above == m->values[k] && m->top[pos - 1] < m->keys[k]))
                break;
            pos--;
        }
        if (pos >= REC_TOP_SOURCES)
            continue;
        size_t end = m->n_top < REC_TOP_SOURCES ? m->n_top : REC_TOP_SOURCES - 1;
        memmove(&m->top[pos + 1], &m->top[pos], (end - pos) * sizeof m->top[0]);
        m->top[pos] = m->keys[k];
        if (m->n_top < REC_TOP_SOURCES)
            m->n_top++;
    }
}


static void tiers_build(struct rec_context *ctx, const struct vt_profile *p)
{
    double max = 0;
    size_t n = p->n_tiers < VT_TIER_COUNT ? p->n_tiers : VT_TIER_COUNT;

    for (size_t i = 0; i < n; i++) {
        enum vt_price_tier tier;
        const char *name = p->tiers[i].name;
        double value = p->tiers[i].value;

        if (!(value > 0) || !isfinite(value))
            continue;
        if (vt_price_tier_parse(name, strnlen(name, VT_NAME_MAX + 1), &tier) != 0)
            continue;
        ctx->tiers[tier] += value;
    }
    for (int t = 0; t < VT_TIER_COUNT; t++) {
        if (ctx->tiers[t] > max) {
            max = ctx->tiers[t];
            ctx->preferred_tier = t;
        }
    }
    if (!isfinite(max)) {
        for (int t = 0; t < VT_TIER_COUNT; t++)
            ctx->tiers[t] = 0;
        ctx->preferred_tier = -1;
        return;
    }
    for (int t = 0; t < VT_TIER_COUNT && max > 0; t++)
        ctx->tiers[t] /= max;
}


/* ---- rotation ---- */

static uint32_t rotation_start(uint32_t index)
{
    return (uint32_t)(index * 2654435761u) >> 24;
}


double rec_rotation_factor(const struct rec_rotation *r, uint32_t index)
{
    if (r->count == 0)
        return 1;
    for (uint32_t k = rotation_start(index);; k = (k + 1) & (REC_ROTATION_SLOTS - 1)) {
        if (r->keys[k] == index)
            return r->factors[k];
        if (r->keys[k] == VT_CATALOG_NONE)
            return 1;
    }
}


/* Score factor after `count` impressions: 1 below `after`, then REC_ROTATION_STEP per
 * impression from the after-th on, never below REC_ROTATION_FLOOR. */
static double rotation_factor_of(int64_t count, int64_t after)
{
    if (count < after)
        return 1;

    double factor = pow(REC_ROTATION_STEP, (double)(count - after + 1));
    return factor > REC_ROTATION_FLOOR ? factor : REC_ROTATION_FLOOR;
}


static void rotation_build(struct rec_context *ctx, const struct vt_profile *p, int64_t after)
{
    struct rec_rotation *r = &ctx->rotation;
    size_t n = p->n_seen < VT_PROFILE_SEEN_MAX ? p->n_seen : VT_PROFILE_SEEN_MAX;

    for (size_t i = 0; i < n; i++) {
        const struct vt_seen_product *seen = &p->seen[i];
        if (seen->count < after)
            continue;

        uint32_t index = vt_catalog_find(ctx->cat, seen->id, strnlen(seen->id, VT_PRODUCT_ID_MAX + 1));
        if (index == VT_CATALOG_NONE)
            continue;
        for (uint32_t k = rotation_start(index);; k = (k + 1) & (REC_ROTATION_SLOTS - 1)) {
            if (r->keys[k] == index)
                break;
            if (r->keys[k] == VT_CATALOG_NONE) {
                r->keys[k] = index;
                r->factors[k] = (float)rotation_factor_of(seen->count, after);
                r->count++;
                break;
            }
        }
    }
}


/* ---- profile ids ---- */

static uint32_t find_id(const struct rec_context *ctx, const char *id)
{
    return vt_catalog_find(ctx->cat, id, strnlen(id, VT_PRODUCT_ID_MAX + 1));
}


/* Look up the profile's cart, purchases and recent views once, so that filters compare
 * catalog indexes, and choose the products whose neighbours feed the placement. A cart line
 * with quantity 0 counts as removed. */
static void profile_ids_build(struct rec_context *ctx, const struct vt_profile *p)
{
    size_t n_cart = p->n_cart < VT_PROFILE_CART_MAX ? p->n_cart : VT_PROFILE_CART_MAX;
    size_t n_purchased =
        p->n_purchased < VT_PROFILE_PURCHASED_MAX ? p->n_purchased : VT_PROFILE_PURCHASED_MAX;
    size_t n_recent = p->n_recent < VT_PROFILE_RECENT_MAX ? p->n_recent : VT_PROFILE_RECENT_MAX;
    bool cart_sources = ctx->mode == REC_MODE_PERSONAL && ctx->placement == VT_PLACEMENT_CART;
    bool recent_sources = ctx->mode == REC_MODE_RERANK ||
                          (ctx->mode == REC_MODE_PERSONAL &&
                           ctx->placement != VT_PLACEMENT_CART);
    /* On a product page the page product is the first source; the session's recent views
     * follow at a lower weight. */
    bool page_first = ctx->n_relation_sources > 0;
    double weight = page_first ? REC_PAGE_RECENT_WEIGHT : 1;
    size_t sources_max = ctx->n_relation_sources + REC_RECENT_SOURCES;

    for (size_t i = 0; i < n_cart; i++) {
        if (p->cart[i].quantity == 0)
            continue;

        uint32_t index = find_id(ctx, p->cart[i].id);
        if (ctx->mode != REC_MODE_RERANK)
            rec_set_add(&ctx->blocked, index);
        if (cart_sources && index != VT_CATALOG_NONE &&
            ctx->n_relation_sources < REC_CART_SOURCES) {
            ctx->relation_sources[ctx->n_relation_sources].product = index;
            ctx->relation_sources[ctx->n_relation_sources].weight = 1;
            ctx->n_relation_sources++;
        }
    }
    for (size_t i = 0; i < n_purchased && ctx->mode != REC_MODE_RERANK; i++)
        rec_set_add(&ctx->blocked, find_id(ctx, p->purchased[i].id));

    for (size_t i = 0; i < n_recent; i++) {
        uint32_t index = find_id(ctx, p->recent[i].id);
        if (index == VT_CATALOG_NONE)
            continue;
        rec_set_add(&ctx->recent, index);
        if (recent_sources && index != ctx->page_index &&
            ctx->n_relation_sources < sources_max) {
            ctx->relation_sources[ctx->n_relation_sources].product = index;
            ctx->relation_sources[ctx->n_relation_sources].weight = weight;
            ctx->n_relation_sources++;
            weight *= REC_RECENT_DECAY;
        }
    }
}


/* ---- request filters ---- */

/* Copy the request's category and brand filters, dropping indexes the catalog does not
 * know, and its gender and price range. */
static void request_filters_build(struct rec_context *ctx, const struct vt_rec_request *req)
{
    const struct vt_catalog_stats *stats = vt_catalog_stats(ctx->cat);
    size_t n_categories = req->n_categories < VT_REC_FILTER_MAX ? req->n_categories
                                                                 : VT_REC_FILTER_MAX;
    size_t n_brands = req->n_brands < VT_REC_FILTER_MAX ? req->n_brands : VT_REC_FILTER_MAX;

    for (size_t i = 0; i < n_categories; i++) {
        if (req->categories[i] < stats->categories)
            ctx->categories[ctx->n_categories++] = req->categories[i];
    }
    for (size_t i = 0; i < n_brands; i++) {
        if (req->brands[i] < stats->brands)
            ctx->brands[ctx->n_brands++] = req->brands[i];
    }
    if (req->gender == VT_GENDER_FEMALE || req->gender == VT_GENDER_MALE ||
        req->gender == VT_GENDER_UNISEX)
        ctx->gender = req->gender;
    ctx->price_min = req->price_min >= 0 ? req->price_min : -1;
    ctx->price_max = req->price_max >= 0 ? req->price_max : -1;
}


/* True when the trending lists that this request reads have entries (see candidates.c). */
static bool trending_present(const struct rec_context *ctx)
{
    if (ctx->n_categories > 0) {
        for (size_t i = 0; i < ctx->n_categories; i++) {
            if (vt_world_trending(ctx->world, ctx->categories[i], VT_CATALOG_NONE)->n > 0)
                return true;
        }
        return false;
    }
    if (ctx->n_brands > 0) {
        for (size_t i = 0; i < ctx->n_brands; i++) {
            if (vt_world_trending(ctx->world, VT_CATALOG_NONE, ctx->brands[i])->n > 0)
                return true;
        }
        return false;
    }
    return vt_world_trending(ctx->world, VT_CATALOG_NONE, VT_CATALOG_NONE)->n > 0;
}


static size_t clamp_setting(int64_t value, size_t max)
{
    if (value < 1)
        return 1;
    return (uint64_t)value < max ? (size_t)value : max;
}


void rec_context_init(struct rec_context *ctx, const struct vt_world *w,
                      const struct vt_config *cfg, const struct vt_rules *rules,
                      const struct vt_profile *p, const struct vt_rec_request *req,
                      enum rec_mode mode)
{
    size_t size = vt_catalog_size(w->catalog);
    double max_popularity = vt_catalog_max_popularity(w->catalog);

    ctx->world = w;
    ctx->cat = w->catalog;
    ctx->mode = mode;
    ctx->placement = VT_PLACEMENT_HOME;
    if (req != NULL && (unsigned)req->placement < VT_PLACEMENT_COUNT)
        ctx->placement = req->placement;
    ctx->limit = req != NULL && req->limit > 0 ? req->limit : (size_t)cfg->rec_limit_default;
    if (ctx->limit > VT_REC_LIMIT_MAX)
        ctx->limit = VT_REC_LIMIT_MAX;
    ctx->per_brand = clamp_setting(cfg->rec_max_per_brand, VT_REC_LIMIT_MAX);
    ctx->per_source = clamp_setting(cfg->rec_candidates, REC_CANDIDATES_MAX);
    ctx->weights = rec_weights_for(mode, ctx->placement);

    ctx->segment = VT_SEGMENT_UNKNOWN;
    ctx->filter_segment = VT_SEGMENT_UNKNOWN;
    ctx->relax_segment = false;
    ctx->n_categories = 0;
    ctx->n_brands = 0;
    ctx->gender = VT_GENDER_UNKNOWN;
    ctx->price_min = -1;
    ctx->price_max = -1;
    ctx->page_index = VT_CATALOG_NONE;
    ctx->page = NULL;
    affinity_clear(&ctx->category_affinity);
    affinity_clear(&ctx->brand_affinity);
    for (int t = 0; t < VT_TIER_COUNT; t++)
        ctx->tiers[t] = 0;
    ctx->preferred_tier = -1;
    ctx->log_max_popularity = max_popularity > 0 ? log1p(max_popularity) : 0;
    ctx->n_relation_sources = 0;
    rec_set_init(&ctx->blocked, ctx->blocked_slots, 10);
    rec_set_init(&ctx->recent, ctx->recent_slots, 7);
    memset(ctx->rotation.keys, 0xFF, sizeof ctx->rotation.keys);
    ctx->rotation.count = 0;
    ctx->n_brand_counts = 0;

    if (req != NULL) {
        size_t n_exclude = req->n_exclude < VT_REC_EXCLUDE_MAX ? req->n_exclude
                                                               : VT_REC_EXCLUDE_MAX;
        for (size_t i = 0; i < n_exclude; i++)
            rec_set_add(&ctx->blocked, req->exclude[i]);
        if (req->product < size) {
            ctx->page_index = req->product;
            ctx->page = vt_catalog_get(ctx->cat, req->product);
            rec_set_add(&ctx->blocked, req->product);
        }
        request_filters_build(ctx, req);
    }
    ctx->trending_present = mode != REC_MODE_RERANK && trending_present(ctx);
    if (mode == REC_MODE_PERSONAL && ctx->placement == VT_PLACEMENT_PRODUCT && ctx->page != NULL) {
        ctx->relation_sources[0].product = ctx->page_index;
        ctx->relation_sources[0].weight = 1;
        ctx->n_relation_sources = 1;
    }

    if (p != NULL) {
        struct vt_gender_estimate estimate;
        vt_gender_estimate(p->gender_log_odds, p->gender_evidence, cfg, &estimate);
        ctx->segment = estimate.segment;
        profile_ids_build(ctx, p);
    }
    if (mode == REC_MODE_PERSONAL && ctx->gender == VT_GENDER_UNKNOWN)
        ctx->filter_segment = ctx->segment;

    unsigned scope = mode == REC_MODE_RERANK ? REC_SCOPE_RERANK : (unsigned)ctx->placement;
    rec_rules_begin(&ctx->rules, rules, ctx->cat, scope, ctx->segment, p);

    if (p == NULL || mode == REC_MODE_CONTROL)
        return;
    affinity_build(&ctx->category_affinity, ctx->cat, p->categories, p->n_categories,
                   vt_catalog_category_find);
    affinity_build(&ctx->brand_affinity, ctx->cat, p->brands, p->n_brands,
                   vt_catalog_brand_find);
    tiers_build(ctx, p);
    rotation_build(ctx, p, cfg->rec_rotation_after > 0 ? cfg->rec_rotation_after : 1);
}
