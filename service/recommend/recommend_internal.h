/*
 * vitrine: internals shared by the files of the recommender (service/recommend/).
 *
 * One call of vt_recommend, vt_rerank or a query keeps all of its state in the structs
 * below, on the caller's stack: the request context (profile looked up in the catalog,
 * filters, weights, the rules in scope) and the candidate table. Nothing is allocated and
 * nothing outlives the call. docs/recommendations.md explains the scoring and the
 * candidate mix of each placement.
 */
#ifndef VITRINE_RECOMMEND_INTERNAL_H
#define VITRINE_RECOMMEND_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vitrine/recommend.h"
#include "vitrine/rules.h"

/* Strongest profile categories and brands whose catalog lists give candidates. */
#define REC_TOP_SOURCES 5

/* Recently viewed products whose neighbours give candidates (newest first). The newest
 * weighs 1 and each older one REC_RECENT_DECAY times the one before. */
#define REC_RECENT_SOURCES 5
#define REC_RECENT_DECAY 0.7

/* Cart lines whose neighbours give candidates on the cart placement. */
#define REC_CART_SOURCES 10
/* Weight of the newest recent view as a relation source on a product page, where the page
 * product has weight 1. */
#define REC_PAGE_RECENT_WEIGHT 0.5

/* Products whose neighbours feed one request: the page product, recent views or cart. */
#define REC_RELATION_SOURCES_MAX REC_CART_SOURCES

/* A co-purchase counts this many times a co-view in a neighbour's strength. */
#define REC_BUY_WEIGHT 2.0

/* Candidates scored per request, and the slots of the table that finds them by product. */
#define REC_CANDIDATES_MAX 1024
#define REC_CANDIDATE_SLOTS 2048
#define REC_CANDIDATE_EMPTY UINT16_MAX

/* A source list is read up to this many times the candidates it may give, so that
 * filters that skip many of its products still leave enough. */
#define REC_SCAN_FACTOR 4

/* Cart (100), purchased (100), excluded (100), the page product, pins (64) and the chosen
 * items (100) fit in half of these slots, so the blocked set never fills up. */
#define REC_BLOCKED_SLOTS 1024
#define REC_RECENT_SLOTS (2 * VT_PROFILE_RECENT_MAX)
#define REC_AFFINITY_SLOTS (2 * VT_PROFILE_TOP_MAX)
#define REC_ROTATION_SLOTS 256
#define REC_CATEGORY_MEMO_SLOTS 256

/* Rotation: from the rec.rotation_after-th impression on, each impression multiplies the
 * score by REC_ROTATION_STEP, down to REC_ROTATION_FLOOR. */
#define REC_ROTATION_STEP 0.7
#define REC_ROTATION_FLOOR 0.25

/* Rule scope of vt_rerank, one bit above the placements. */
#define REC_SCOPE_RERANK VT_PLACEMENT_COUNT

_Static_assert(REC_CANDIDATES_MAX < REC_CANDIDATE_EMPTY, "candidate indexes fit in 16 bits");
_Static_assert(REC_CANDIDATE_SLOTS >= 2 * REC_CANDIDATES_MAX, "the table stays half empty");
_Static_assert(VT_RULES_MAX <= 64, "active rules are bits of a uint64_t");
_Static_assert(REC_ROTATION_SLOTS >= 2 * VT_PROFILE_SEEN_MAX, "the rotation map stays half empty");

/* ---- sets and maps of catalog indexes in caller-provided slots ---- */

/* Open addressing with linear probing, at most half full. */
struct rec_index_set {
    uint32_t *slots;
    uint32_t mask;
    unsigned shift;
    size_t count;
};

void rec_set_init(struct rec_index_set *set, uint32_t *slots, unsigned bits);
bool rec_set_contains(const struct rec_index_set *set, uint32_t index);

/* Returns 1 when added, 0 when already present or NONE, -1 when the set is half full. */
int rec_set_add(struct rec_index_set *set, uint32_t index);

/* Profile affinities of one kind (categories or brands) by catalog index, normalised to
 * 0..1, and the REC_TOP_SOURCES strongest. */
struct rec_affinity_map {
    uint32_t keys[REC_AFFINITY_SLOTS];
    double values[REC_AFFINITY_SLOTS];
    uint32_t top[REC_TOP_SOURCES];
    size_t n_top;
};

double rec_affinity_get(const struct rec_affinity_map *m, uint32_t index);

/* Score factor of products the session was shown rec.rotation_after times or more. */
struct rec_rotation {
    uint32_t keys[REC_ROTATION_SLOTS];
    float factors[REC_ROTATION_SLOTS];
    size_t count;
};

double rec_rotation_factor(const struct rec_rotation *r, uint32_t index);

/* ---- the rules in scope of one request (rules.c) ---- */

enum rec_rule_action { REC_RULE_BOOST = 0, REC_RULE_PIN, REC_RULE_FILTER };

/* The rules whose placement and segment fit the request, in file order, with their brand
 * names and product ids looked up in the request's catalog. Bit i of a mask is active
 * rule i. The category memo remembers, per catalog category, which active rules it
 * matches, so that each category name is compared with the rules once per request. */
struct rec_rules {
    const struct vt_rules *rules;
    const struct vt_catalog *cat;
    size_t n_active;
    uint8_t rule[VT_RULES_MAX];
    uint16_t brands_start[VT_RULES_MAX];
    uint16_t products_start[VT_RULES_MAX];
    uint8_t n_brands[VT_RULES_MAX];
    uint8_t n_products[VT_RULES_MAX];
    size_t n_values;
    uint32_t values[VT_RULES_LOOKUPS_MAX];
    uint64_t filters;
    uint64_t boosts;
    uint64_t pins;
    uint32_t memo_keys[REC_CATEGORY_MEMO_SLOTS];
    uint64_t memo_masks[REC_CATEGORY_MEMO_SLOTS];
    size_t memo_count;
};

/* A pin rule in scope whose product is in the request's catalog. */
struct rec_pin {
    uint32_t product;
    unsigned position; /* 1-based */
    const char *rule;
};

/* Select the rules of scope (a placement or REC_SCOPE_RERANK) and segment. rules may be
 * NULL. */
void rec_rules_begin(struct rec_rules *rr, const struct vt_rules *rules,
                     const struct vt_catalog *cat, unsigned scope, enum vt_segment segment,
                     const struct vt_profile *p);

/* True when an active filter rule matches the product. */
bool rec_rules_filtered(struct rec_rules *rr, uint32_t product);

/* Product of the factors of the active boost rules that match (1 when none), and the name
 * of the first of them in *rule (NULL when none). */
double rec_rules_boost(struct rec_rules *rr, uint32_t product, const char **rule);

/* Write the active pins in file order to out (at most max). Returns the count. */
size_t rec_rules_pins(const struct rec_rules *rr, struct rec_pin *out, size_t max);

/* ---- the request context (context.c) ---- */

enum rec_mode {
    REC_MODE_PERSONAL = 0, /* vt_recommend for a session */
    REC_MODE_CONTROL,      /* vt_recommend for the control group: no profile terms */
    REC_MODE_RERANK,       /* vt_rerank: personal terms only, no popularity */
};

/* Weights of the score terms, per placement (score.c). */
struct rec_weights {
    double affinity;
    double relation;
    double same_category;
    double popularity;
};

/* A product whose neighbours give candidates, with the weight of its relations. */
struct rec_relation_source {
    uint32_t product;
    double weight;
};

struct rec_brand_count {
    uint32_t brand;
    uint32_t count;
};

struct rec_context {
    const struct vt_world *world;
    const struct vt_catalog *cat;
    enum rec_mode mode;
    enum vt_placement placement;
    size_t limit;
    size_t per_brand;
    size_t per_source;
    struct rec_weights weights;

    enum vt_segment segment;        /* the session's confident segment, or UNKNOWN */
    enum vt_segment filter_segment; /* segment whose opposite gender is left out, or UNKNOWN */
    bool relax_segment;             /* the last fallback step ignores filter_segment */

    /* Request filters, with indexes the catalog does not know dropped. */
    size_t n_categories;
    uint32_t categories[VT_REC_FILTER_MAX];
    size_t n_brands;
    uint32_t brands[VT_REC_FILTER_MAX];
    enum vt_gender gender;
    double price_min;
    double price_max;

    uint32_t page_index;             /* product on the page, or VT_CATALOG_NONE */
    const struct vt_product *page;

    struct rec_affinity_map category_affinity;
    struct rec_affinity_map brand_affinity;
    double tiers[VT_TIER_COUNT];
    int preferred_tier; /* -1 when the profile has no tier affinity */
    double log_max_popularity;
    bool trending_present; /* the trending lists of this request have entries */

    size_t n_relation_sources;
    struct rec_relation_source relation_sources[REC_RELATION_SOURCES_MAX];

    struct rec_index_set blocked; /* never served: cart, purchased, excluded, page, chosen */
    struct rec_index_set recent;
    uint32_t blocked_slots[REC_BLOCKED_SLOTS];
    uint32_t recent_slots[REC_RECENT_SLOTS];
    struct rec_rotation rotation;
    struct rec_rules rules;

    size_t n_brand_counts;
    struct rec_brand_count brand_counts[VT_REC_LIMIT_MAX];
};

/* Prepare the context for one call. req is NULL for vt_rerank; p may be NULL. */
void rec_context_init(struct rec_context *ctx, const struct vt_world *w,
                      const struct vt_config *cfg, const struct vt_rules *rules,
                      const struct vt_profile *p, const struct vt_rec_request *req,
                      enum rec_mode mode);

/* ---- filters (filters.c) ---- */

/* True when the product may be served under the hard filters: available, not blocked,
 * not removed by a filter rule, and inside the request's categories, brands, gender and
 * price range. */
bool rec_allowed_hard(struct rec_context *ctx, uint32_t product);

/* The hard filters and, unless ctx->relax_segment, the segment's gender filter. */
bool rec_allowed(struct rec_context *ctx, uint32_t product);

bool rec_product_in_category(const struct vt_product *p, uint32_t category);

/* ---- candidates (candidates.c) ---- */

enum rec_candidate_flag {
    REC_FLAG_CO_BUY = 1u << 0, /* a relation source was bought together with the product */
};

struct rec_candidate {
    double score;
    uint32_t product;
    uint32_t via;         /* relation source of the largest contribution, or NONE */
    float relation;       /* sum of weighted neighbour strengths, before the cap at 1 */
    float via_strength;   /* the largest single contribution */
    float trend;          /* normalised trending score, 0 when not read in a trending list */
    uint16_t reasons;     /* SIMILAR/BOUGHT_TOGETHER while collecting; all after scoring */
    uint8_t group;        /* rank group: lower groups rank first (score.c) */
    uint8_t flags;        /* enum rec_candidate_flag */
};

struct rec_candidates {
    size_t n;
    bool fixed; /* sources only update products already in the table (vt_rerank) */
    struct rec_candidate items[REC_CANDIDATES_MAX];
    uint16_t slots[REC_CANDIDATE_SLOTS]; /* candidate index by product, or EMPTY */
    uint16_t heap[REC_CANDIDATES_MAX];
};

void rec_candidates_init(struct rec_candidates *cs, bool fixed);

/* The candidate of a product, or NULL. */
struct rec_candidate *rec_candidates_find(struct rec_candidates *cs, uint32_t product);

/* The candidate of a product, added when new. NULL when the table is full. */
struct rec_candidate *rec_candidates_add(struct rec_candidates *cs, uint32_t product);

/* Collect the candidates of ctx's placement (or of the control group) and score them. */
void rec_collect(struct rec_context *ctx, struct rec_candidates *cs);

/* Add the neighbour relations of ctx's relation sources to the candidates. */
void rec_collect_relations(struct rec_context *ctx, struct rec_candidates *cs);

/* ---- scores (score.c) ---- */

struct rec_weights rec_weights_for(enum rec_mode mode, enum vt_placement placement);

/* Compute c->score, c->reasons and c->group. */
void rec_score(struct rec_context *ctx, struct rec_candidate *c);

/* Catalog popularity of a product, 0..1 on a log scale. */
double rec_catalog_popularity(const struct rec_context *ctx, const struct vt_product *p);

/* The product's category with the strongest profile affinity, or VT_CATALOG_NONE. */
uint32_t rec_matching_category(const struct rec_context *ctx, const struct vt_product *p);

/* True when candidate a ranks before b: group, score, catalog popularity, then id. */
bool rec_ranks_before(const struct rec_context *ctx, const struct rec_candidate *a,
                      const struct rec_candidate *b);

/* ---- selection (select.c) ---- */

/* Fill out from the candidates: pins, then the best candidates under the brand cap, then
 * the in-stock fallback. Sets the items and out->n, not the strategy. */
void rec_select(struct rec_context *ctx, struct rec_candidates *cs, struct vt_rec_result *out);

/* Strategy of a filled result, from its items' reasons. */
enum vt_rec_strategy rec_strategy_of(const struct vt_rec_result *out);

#endif
