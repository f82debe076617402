/*
 * vitrine: recommendations, first version (see include/vitrine/recommend.h).
 *
 * Score of a candidate product p. Affinities come from the profile's decayed values,
 * each divided by the strongest matching entry of its kind, so they lie in 0..1:
 *
 *   base  = 0.45 * category(p) + 0.30 * brand(p) + 0.10 * tier(p) + 0.15 * popularity(p)
 *           + 0.25 * same_category(p)
 *   score = base * 1.1 when p is made for the profile's confident gender segment
 *                * 0.8 when p is among the recently viewed products
 *
 *   category(p)      strongest affinity among p's categories (0 when none matches)
 *   brand(p)         affinity of p's brand
 *   tier(p)          affinity of p's price tier
 *   popularity(p)    log1p(popularity) / log1p(catalog's maximum popularity)
 *   same_category(p) 1 when p shares a category with the viewed product (req->product)
 *
 * A candidate is personal when category(p) or brand(p) is above 0. Personal candidates rank
 * first, the others fill the list after them. Ties in score go to the more popular product,
 * then to the smaller id in byte order, so equal input gives an equal list.
 *
 * Work per request is bounded by fixed-size tables on the stack: at most VT_PROFILE_TOP_MAX
 * brand and category lookups, one id lookup per cart line, purchase, and recently viewed
 * product, and CANDIDATES_MAX scored candidates. Only the last fallback scans the whole
 * popularity index, and it stops as soon as the list is full. A call keeps its state in about
 * 44 KB of the caller's stack (gcc 12 -fstack-usage at -O2).
 */
#include "vitrine/recommend.h"

#include <math.h>
#include <string.h>

#define WEIGHT_CATEGORY 0.45
#define WEIGHT_BRAND 0.30
#define WEIGHT_TIER 0.10
#define WEIGHT_POPULARITY 0.15
#define BONUS_SAME_CATEGORY 0.25
#define FACTOR_GENDER 1.1
#define FACTOR_RECENT 0.8

/* Strongest categories and brands of the profile whose product lists give candidates. */
#define TOP_SOURCES 5

/* Candidates scored per request, and the slots of the set that deduplicates them. */
#define CANDIDATES_MAX 1024
#define CANDIDATE_SLOTS 2048

/* A filtered source list (category restriction) is read up to this many times its
 * candidate count, to find enough products inside the category. */
#define FILTERED_SCAN_FACTOR 4

/* Cart (100), purchased (100), excluded (100), the viewed product and the chosen items
 * (100) fit in half of these slots, so the blocked set never fills up. */
#define BLOCKED_SLOTS 1024
#define RECENT_SLOTS (2 * VT_PROFILE_RECENT_MAX)
#define AFFINITY_SLOTS (2 * VT_PROFILE_TOP_MAX)

_Static_assert(CANDIDATE_SLOTS == 1 << 11 && BLOCKED_SLOTS == 1 << 10 && RECENT_SLOTS == 1 << 7,
               "set_init receives these slot counts as powers of two");
_Static_assert(AFFINITY_SLOTS == 1 << 6, "affinity_start keeps the top 6 bits of the hash");
_Static_assert(CANDIDATE_SLOTS >= 2 * CANDIDATES_MAX, "the candidate set must hold them all");

/* A set of catalog indexes in caller-provided slots: open addressing with linear probing,
 * at most half full. */
struct index_set {
    uint32_t *slots;
    uint32_t mask;
    unsigned shift;
    size_t count;
};

/* Profile affinities of one kind (categories or brands) keyed by catalog index. */
struct affinity_map {
    uint32_t keys[AFFINITY_SLOTS];
    double values[AFFINITY_SLOTS]; /* normalised to 0..1 */
    uint32_t top[TOP_SOURCES];     /* strongest first */
    size_t n_top;
};

struct candidate {
    uint32_t product;
    uint32_t category; /* strongest matching profile category, or VT_CATALOG_NONE */
    uint32_t reasons;
    bool personal;
    double score;
};

struct brand_count {
    uint32_t brand;
    uint32_t count;
};

/* Everything one request needs, on the caller's stack. */
struct context {
    const struct vt_catalog *cat;
    size_t limit;
    size_t per_brand;
    size_t per_source;
    enum vt_segment segment;  /* confident segment, or VT_SEGMENT_UNKNOWN */
    uint32_t category;        /* category restriction, or VT_CATALOG_NONE */
    const struct vt_product *viewed;
    struct affinity_map categories;
    struct affinity_map brands;
    double tiers[VT_TIER_COUNT];
    int preferred_tier; /* -1 when the profile has no tier affinity */
    double log_max_popularity;
    struct index_set blocked; /* never served: cart, purchased, excluded, viewed, chosen */
    struct index_set recent;
    uint32_t blocked_slots[BLOCKED_SLOTS];
    uint32_t recent_slots[RECENT_SLOTS];
    struct brand_count brand_counts[VT_REC_LIMIT_MAX];
    size_t n_brand_counts;
};

struct candidates {
    struct candidate items[CANDIDATES_MAX];
    size_t n;
    struct index_set seen;
    uint32_t seen_slots[CANDIDATE_SLOTS];
    uint32_t heap[CANDIDATES_MAX];
};

static const char *const placement_names[VT_PLACEMENT_COUNT] = {
    [VT_PLACEMENT_HOME] = "home",
    [VT_PLACEMENT_PRODUCT] = "product",
    [VT_PLACEMENT_CART] = "cart",
    [VT_PLACEMENT_CATEGORY] = "category",
    [VT_PLACEMENT_SEARCH] = "search",
};

const char *vt_placement_name(enum vt_placement placement)
{
    return (unsigned)placement < VT_PLACEMENT_COUNT ? placement_names[placement] : "unknown";
}


int vt_placement_parse(const char *s, size_t len, enum vt_placement *out)
{
    for (int i = 0; i < VT_PLACEMENT_COUNT; i++) {
        if (strlen(placement_names[i]) == len && memcmp(placement_names[i], s, len) == 0) {
            *out = (enum vt_placement)i;
            return 0;
        }
    }
    return -1;
}


const char *vt_rec_strategy_name(enum vt_rec_strategy strategy)
{
    switch (strategy) {
    case VT_STRATEGY_PERSONALIZED:
        return "personalized";
    case VT_STRATEGY_PERSONALIZED_POPULAR:
        return "personalized+popular";
    case VT_STRATEGY_POPULAR:
        return "popular";
    case VT_STRATEGY_IN_STOCK:
        return "in_stock";
    case VT_STRATEGY_EMPTY:
        return "empty";
    }
    return "unknown";
}


/* ---- fixed-size sets and maps ---- */

static void set_init(struct index_set *set, uint32_t *slots, unsigned bits)
{
    set->slots = slots;
    set->mask = (1u << bits) - 1;
    set->shift = 32 - bits;
    set->count = 0;
    memset(slots, 0xFF, ((size_t)set->mask + 1) * sizeof *slots);
}


static uint32_t set_start(const struct index_set *set, uint32_t index)
{
    return (uint32_t)(index * 2654435761u) >> set->shift;
}


static bool set_contains(const struct index_set *set, uint32_t index)
{
    for (uint32_t k = set_start(set, index);; k = (k + 1) & set->mask) {
        if (set->slots[k] == index)
            return true;
        if (set->slots[k] == VT_CATALOG_NONE)
            return false;
    }
}


/* Add index. Returns 1 when added, 0 when already present, -1 when the set is half full. */
static int set_add(struct index_set *set, uint32_t index)
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


static uint32_t affinity_start(uint32_t index)
{
    return ((uint32_t)(index * 2654435761u) >> 26) & (AFFINITY_SLOTS - 1);
}


/* Normalised affinity of a brand or category index, 0 when the profile has none. */
static double affinity_get(const struct affinity_map *m, uint32_t index)
{
    for (uint32_t k = affinity_start(index);; k = (k + 1) & (AFFINITY_SLOTS - 1)) {
        if (m->keys[k] == index)
            return m->values[k];
        if (m->keys[k] == VT_CATALOG_NONE)
            return 0;
    }
}


/* Add value to the entry of index, so that names differing only in case share one entry. */
static void affinity_add(struct affinity_map *m, uint32_t index, double value)
{
    for (uint32_t k = affinity_start(index);; k = (k + 1) & (AFFINITY_SLOTS - 1)) {
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


typedef uint32_t (*name_finder)(const struct vt_catalog *cat, const char *name, size_t len);

/*
 * Map the profile's names to catalog indexes, divide each value by the strongest one and
 * keep the TOP_SOURCES strongest as candidate sources. Names unknown to the catalog and
 * values that are not positive are skipped.
 */
static void affinity_build(struct affinity_map *m, const struct vt_catalog *cat,
                           const struct vt_scored_name *names, size_t n, name_finder find)
{
    double max = 0;

    memset(m->keys, 0xFF, sizeof m->keys);
    m->n_top = 0;
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

    for (size_t k = 0; k < AFFINITY_SLOTS; k++) {
        if (m->keys[k] != VT_CATALOG_NONE && m->values[k] > max)
            max = m->values[k];
    }
    if (!(max > 0) || !isfinite(max)) {
        /* Values so large that their sum overflows cannot be compared: ignore them all. */
        memset(m->keys, 0xFF, sizeof m->keys);
        return;
    }

    /* Normalise, and keep the strongest entries by insertion, ties by smaller index. */
    for (size_t k = 0; k < AFFINITY_SLOTS; k++) {
        if (m->keys[k] == VT_CATALOG_NONE)
            continue;
        m->values[k] /= max;

        size_t pos = m->n_top;
        while (pos > 0) {
            double above = affinity_get(m, m->top[pos - 1]);
            if (above > m->values[k] || (above == m->values[k] && m->top[pos - 1] < m->keys[k]))
                break;
            pos--;
        }
        if (pos >= TOP_SOURCES)
            continue;
        size_t end = m->n_top < TOP_SOURCES ? m->n_top : TOP_SOURCES - 1;
        memmove(&m->top[pos + 1], &m->top[pos], (end - pos) * sizeof m->top[0]);
        m->top[pos] = m->keys[k];
        if (m->n_top < TOP_SOURCES)
            m->n_top++;
    }
}


/* ---- request context ---- */

static void tiers_build(struct context *ctx, const struct vt_profile *p)
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


static void block_id(struct context *ctx, const char *id)
{
    uint32_t index = vt_catalog_find(ctx->cat, id, strnlen(id, VT_PRODUCT_ID_MAX + 1));

    set_add(&ctx->blocked, index);
}


/* Look up the profile's cart, purchases and recently viewed products once, so that the
 * filters compare catalog indexes. A cart line with quantity 0 counts as removed. */
static void profile_ids_build(struct context *ctx, const struct vt_profile *p)
{
    size_t n_cart = p->n_cart < VT_PROFILE_CART_MAX ? p->n_cart : VT_PROFILE_CART_MAX;
    size_t n_purchased =
        p->n_purchased < VT_PROFILE_PURCHASED_MAX ? p->n_purchased : VT_PROFILE_PURCHASED_MAX;
    size_t n_recent = p->n_recent < VT_PROFILE_RECENT_MAX ? p->n_recent : VT_PROFILE_RECENT_MAX;

    for (size_t i = 0; i < n_cart; i++) {
        if (p->cart[i].quantity != 0)
            block_id(ctx, p->cart[i].id);
    }
    for (size_t i = 0; i < n_purchased; i++)
        block_id(ctx, p->purchased[i].id);
    for (size_t i = 0; i < n_recent; i++) {
        const char *id = p->recent[i].id;
        set_add(&ctx->recent,
                vt_catalog_find(ctx->cat, id, strnlen(id, VT_PRODUCT_ID_MAX + 1)));
    }
}


static void context_init(struct context *ctx, const struct vt_catalog *cat,
                         const struct vt_config *cfg, const struct vt_profile *p,
                         const struct vt_rec_request *req)
{
    size_t size = vt_catalog_size(cat);
    size_t n_exclude = req->n_exclude < VT_REC_EXCLUDE_MAX ? req->n_exclude : VT_REC_EXCLUDE_MAX;
    double max_popularity = vt_catalog_max_popularity(cat);

    ctx->cat = cat;
    ctx->limit = req->limit > 0 ? req->limit : (size_t)cfg->rec_limit_default;
    if (ctx->limit > VT_REC_LIMIT_MAX)
        ctx->limit = VT_REC_LIMIT_MAX;
    ctx->per_brand = cfg->rec_max_per_brand > 0 ? (size_t)cfg->rec_max_per_brand : 1;
    ctx->per_source = cfg->rec_candidates > 0 ? (size_t)cfg->rec_candidates : 1;
    if (ctx->per_source > CANDIDATES_MAX)
        ctx->per_source = CANDIDATES_MAX;
    ctx->segment = VT_SEGMENT_UNKNOWN;
    ctx->category = req->category < vt_catalog_stats(cat)->categories ? req->category
                                                                       : VT_CATALOG_NONE;
    ctx->viewed = req->product < size ? vt_catalog_get(cat, req->product) : NULL;
    ctx->preferred_tier = -1;
    for (int t = 0; t < VT_TIER_COUNT; t++)
        ctx->tiers[t] = 0;
    ctx->log_max_popularity = max_popularity > 0 ? log1p(max_popularity) : 0;
    ctx->n_brand_counts = 0;
    set_init(&ctx->blocked, ctx->blocked_slots, 10);
    set_init(&ctx->recent, ctx->recent_slots, 7);
    memset(ctx->categories.keys, 0xFF, sizeof ctx->categories.keys);
    ctx->categories.n_top = 0;
    memset(ctx->brands.keys, 0xFF, sizeof ctx->brands.keys);
    ctx->brands.n_top = 0;

    for (size_t i = 0; i < n_exclude; i++)
        set_add(&ctx->blocked, req->exclude[i]);
    if (ctx->viewed != NULL)
        set_add(&ctx->blocked, req->product);
    if (p == NULL)
        return;

    struct vt_gender_estimate estimate;
    vt_gender_estimate(p->gender_log_odds, p->gender_evidence, cfg, &estimate);
    ctx->segment = estimate.segment;

    affinity_build(&ctx->categories, cat, p->categories, p->n_categories,
                   vt_catalog_category_find);
    affinity_build(&ctx->brands, cat, p->brands, p->n_brands, vt_catalog_brand_find);
    tiers_build(ctx, p);
    profile_ids_build(ctx, p);
}


/* ---- filters and scores ---- */

static bool product_in_category(const struct vt_product *p, uint32_t category)
{
    for (uint8_t k = 0; k < p->n_categories; k++) {
        if (p->categories[k] == category)
            return true;
    }
    return false;
}


static bool opposite_gender(enum vt_segment segment, enum vt_gender gender)
{
    return (segment == VT_SEGMENT_FEMALE && gender == VT_GENDER_MALE) ||
           (segment == VT_SEGMENT_MALE && gender == VT_GENDER_FEMALE);
}


/* True when the product may be served. The blocked set and availability always apply. The
 * category restriction and the gender filter apply only with `constrained` set. */
static bool product_allowed(const struct context *ctx, uint32_t index, bool constrained)
{
    const struct vt_product *p = vt_catalog_get(ctx->cat, index);

    if (p == NULL || !vt_product_available(p) || set_contains(&ctx->blocked, index))
        return false;
    if (!constrained)
        return true;
    if (ctx->category != VT_CATALOG_NONE && !product_in_category(p, ctx->category))
        return false;
    return !opposite_gender(ctx->segment, p->gender);
}


static bool shares_category(const struct vt_product *a, const struct vt_product *b)
{
    for (uint8_t k = 0; k < a->n_categories; k++) {
        if (product_in_category(b, a->categories[k]))
            return true;
    }
    return false;
}


static void score_candidate(const struct context *ctx, struct candidate *c)
{
    const struct vt_product *p = vt_catalog_get(ctx->cat, c->product);
    double category = 0;
    double brand = 0;
    double popularity = 0;

    c->category = VT_CATALOG_NONE;
    c->reasons = 0;
    for (uint8_t k = 0; k < p->n_categories; k++) {
        double a = affinity_get(&ctx->categories, p->categories[k]);
        if (a > category) {
            category = a;
            c->category = p->categories[k];
        }
    }
    if (p->brand != VT_CATALOG_NONE)
        brand = affinity_get(&ctx->brands, p->brand);
    if (ctx->log_max_popularity > 0)
        popularity = log1p(p->popularity) / ctx->log_max_popularity;

    double score = WEIGHT_CATEGORY * category + WEIGHT_BRAND * brand +
                   WEIGHT_TIER * ctx->tiers[p->tier] + WEIGHT_POPULARITY * popularity;
    if (category > 0)
        c->reasons |= VT_REASON_CATEGORY;
    if (brand > 0)
        c->reasons |= VT_REASON_BRAND;
    if ((int)p->tier == ctx->preferred_tier)
        c->reasons |= VT_REASON_PRICE_TIER;
    if (ctx->viewed != NULL && shares_category(p, ctx->viewed)) {
        score += BONUS_SAME_CATEGORY;
        c->reasons |= VT_REASON_SAME_CATEGORY;
    }
    if ((ctx->segment == VT_SEGMENT_FEMALE && p->gender == VT_GENDER_FEMALE) ||
        (ctx->segment == VT_SEGMENT_MALE && p->gender == VT_GENDER_MALE)) {
        score *= FACTOR_GENDER;
        c->reasons |= VT_REASON_GENDER;
    }
    if (set_contains(&ctx->recent, c->product))
        score *= FACTOR_RECENT;

    c->personal = category > 0 || brand > 0;
    c->score = score;
}


/* ---- candidates ---- */

/* Add the first allowed products of one popularity-ordered list, at most `take` of them.
 * Returns false once the candidate table is full. */
static bool add_source(const struct context *ctx, struct candidates *cs, const uint32_t *list,
                       size_t n, size_t take)
{
    size_t scan = ctx->category != VT_CATALOG_NONE ? take * FILTERED_SCAN_FACTOR : take;
    size_t accepted = 0;

    for (size_t i = 0; i < n && i < scan && accepted < take; i++) {
        uint32_t index = list[i];
        if (!product_allowed(ctx, index, true))
            continue;
        accepted++;

        int added = set_add(&cs->seen, index);
        if (added < 0 || cs->n == CANDIDATES_MAX)
            return false;
        if (added == 0)
            continue;
        struct candidate *c = &cs->items[cs->n++];
        c->product = index;
        score_candidate(ctx, c);
    }
    return true;
}


/* Collect candidates: the viewed product's categories, the profile's strongest categories
 * and brands, then the most popular products (of the requested category, when set). */
static void collect_candidates(const struct context *ctx, struct candidates *cs)
{
    const struct vt_catalog *cat = ctx->cat;
    size_t take = ctx->per_source;
    const uint32_t *list;
    size_t n;

    cs->n = 0;
    set_init(&cs->seen, cs->seen_slots, 11);

    for (uint8_t k = 0; ctx->viewed != NULL && k < ctx->viewed->n_categories; k++) {
        list = vt_catalog_by_category(cat, ctx->viewed->categories[k], &n);
        if (!add_source(ctx, cs, list, n, take))
            return;
    }
    for (size_t i = 0; i < ctx->categories.n_top; i++) {
        list = vt_catalog_by_category(cat, ctx->categories.top[i], &n);
        if (!add_source(ctx, cs, list, n, take))
            return;
    }
    for (size_t i = 0; i < ctx->brands.n_top; i++) {
        list = vt_catalog_by_brand(cat, ctx->brands.top[i], &n);
        if (!add_source(ctx, cs, list, n, take))
            return;
    }
    if (ctx->category != VT_CATALOG_NONE)
        list = vt_catalog_by_category(cat, ctx->category, &n);
    else
        list = vt_catalog_popular(cat, &n);
    add_source(ctx, cs, list, n, 2 * take);
}


/* ---- selection ---- */

/* True when candidate a ranks before b: personal first, then by score, popularity and id. */
static bool ranks_before(const struct context *ctx, const struct candidate *a,
                         const struct candidate *b)
{
    if (a->personal != b->personal)
        return a->personal;
    if (a->score != b->score)
        return a->score > b->score;

    const struct vt_product *x = vt_catalog_get(ctx->cat, a->product);
    const struct vt_product *y = vt_catalog_get(ctx->cat, b->product);
    if (x->popularity != y->popularity)
        return x->popularity > y->popularity;
    return strcmp(x->id, y->id) < 0;
}


static void heap_sift_down(const struct context *ctx, struct candidates *cs, size_t n,
                           size_t i)
{
    for (;;) {
        size_t best = i;
        size_t left = 2 * i + 1;
        size_t right = left + 1;

        if (left < n && ranks_before(ctx, &cs->items[cs->heap[left]], &cs->items[cs->heap[best]]))
            best = left;
        if (right < n &&
            ranks_before(ctx, &cs->items[cs->heap[right]], &cs->items[cs->heap[best]]))
            best = right;
        if (best == i)
            return;

        uint32_t swap = cs->heap[i];
        cs->heap[i] = cs->heap[best];
        cs->heap[best] = swap;
        i = best;
    }
}


/* True when the list already contains the maximum per brand. Products without a brand are
 * never capped. */
static bool brand_full(const struct context *ctx, uint32_t brand)
{
    if (brand == VT_CATALOG_NONE)
        return false;
    for (size_t i = 0; i < ctx->n_brand_counts; i++) {
        if (ctx->brand_counts[i].brand == brand)
            return ctx->brand_counts[i].count >= ctx->per_brand;
    }
    return false;
}


static void choose(struct context *ctx, struct vt_rec_result *out, uint32_t product,
                   double score, uint32_t reasons, uint32_t category)
{
    const struct vt_product *p = vt_catalog_get(ctx->cat, product);
    struct vt_rec_item *item = &out->items[out->n++];

    item->product = product;
    item->score = score;
    item->reasons = reasons;
    item->category = category;
    set_add(&ctx->blocked, product);

    if (p->brand == VT_CATALOG_NONE)
        return;
    for (size_t i = 0; i < ctx->n_brand_counts; i++) {
        if (ctx->brand_counts[i].brand == p->brand) {
            ctx->brand_counts[i].count++;
            return;
        }
    }
    ctx->brand_counts[ctx->n_brand_counts].brand = p->brand;
    ctx->brand_counts[ctx->n_brand_counts].count = 1;
    ctx->n_brand_counts++;
}


/* Take the best candidates in rank order under the brand cap. Returns how many of the
 * chosen products are personal. */
static size_t select_candidates(struct context *ctx, struct candidates *cs,
                                struct vt_rec_result *out)
{
    size_t n = cs->n;
    size_t personal = 0;

    for (size_t i = 0; i < n; i++)
        cs->heap[i] = (uint32_t)i;
    for (size_t i = n / 2; i-- > 0;)
        heap_sift_down(ctx, cs, n, i);

    while (n > 0 && out->n < ctx->limit) {
        const struct candidate *c = &cs->items[cs->heap[0]];
        cs->heap[0] = cs->heap[--n];
        heap_sift_down(ctx, cs, n, 0);

        if (brand_full(ctx, vt_catalog_get(ctx->cat, c->product)->brand))
            continue;
        uint32_t reasons = c->reasons;
        if (c->personal)
            personal++;
        else
            reasons |= VT_REASON_POPULAR;
        choose(ctx, out, c->product, c->score, reasons, c->category);
    }
    return personal;
}


/* Last fallback: walk a popularity-ordered list and take allowed products not chosen yet,
 * in that order. */
static void fill_from_list(struct context *ctx, struct vt_rec_result *out, const uint32_t *list,
                           size_t n, bool constrained, bool brand_cap)
{
    for (size_t i = 0; i < n && out->n < ctx->limit; i++) {
        uint32_t index = list[i];
        if (!product_allowed(ctx, index, constrained))
            continue;
        if (brand_cap && brand_full(ctx, vt_catalog_get(ctx->cat, index)->brand))
            continue;

        struct candidate c = {.product = index};
        score_candidate(ctx, &c);
        choose(ctx, out, index, c.score, c.reasons | VT_REASON_FALLBACK, c.category);
    }
}


/*
 * The last fallback keeps the category restriction and the gender filter and first keeps
 * the brand cap, then relaxes it. Only when the list is still empty does it take any
 * available product of the whole catalog, so that a list is empty only when every available
 * product is in the cart, purchased, excluded or being viewed.
 */
static void fill_in_stock(struct context *ctx, struct vt_rec_result *out)
{
    const uint32_t *list;
    size_t n;

    if (ctx->category != VT_CATALOG_NONE)
        list = vt_catalog_by_category(ctx->cat, ctx->category, &n);
    else
        list = vt_catalog_popular(ctx->cat, &n);
    fill_from_list(ctx, out, list, n, true, true);
    fill_from_list(ctx, out, list, n, true, false);
    if (out->n > 0)
        return;

    list = vt_catalog_popular(ctx->cat, &n);
    fill_from_list(ctx, out, list, n, false, false);
}


void vt_recommend(const struct vt_catalog *cat, const struct vt_config *cfg,
                  const struct vt_profile *p, const struct vt_rec_request *req,
                  struct vt_rec_result *out)
{
    struct context ctx;
    struct candidates cs;

    out->n = 0;
    out->segment = VT_SEGMENT_UNKNOWN;
    out->strategy = VT_STRATEGY_EMPTY;
    if (vt_catalog_size(cat) == 0)
        return;

    context_init(&ctx, cat, cfg, p, req);
    out->segment = ctx.segment;
    collect_candidates(&ctx, &cs);
    size_t personal = select_candidates(&ctx, &cs, out);
    size_t before_fallback = out->n;
    if (out->n < ctx.limit)
        fill_in_stock(&ctx, out);

    if (out->n == 0)
        out->strategy = VT_STRATEGY_EMPTY;
    else if (out->n > before_fallback)
        out->strategy = VT_STRATEGY_IN_STOCK;
    else if (personal == out->n)
        out->strategy = VT_STRATEGY_PERSONALIZED;
    else if (personal > 0)
        out->strategy = VT_STRATEGY_PERSONALIZED_POPULAR;
    else
        out->strategy = VT_STRATEGY_POPULAR;
}
