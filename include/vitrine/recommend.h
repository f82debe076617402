/*
 * vitrine: recommendations.
 *
 * Pure functions of one world version (catalog, trending, item-to-item neighbours), the
 * business rules, one profile and the request: no I/O, no allocation, no shared mutable
 * state, so HTTP workers call them concurrently. docs/recommendations.md describes the
 * candidates of each placement, the score, the filters and the fallback chain.
 *
 * Never served: products out of stock, in the session's cart, already purchased, excluded
 * by the caller, the product on the page, removed by a filter rule, or outside the
 * request's categories, brands, gender and price range. The list is never empty while an
 * available product passes those filters. When the gender segment is confident and the
 * request names no gender, products made for the other gender are left out too, unless
 * nothing else is left.
 */
#ifndef VITRINE_RECOMMEND_H
#define VITRINE_RECOMMEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vitrine/catalog.h"
#include "vitrine/config.h"
#include "vitrine/limits.h"
#include "vitrine/profile.h"
#include "vitrine/rules.h"
#include "vitrine/world.h"

enum vt_placement {
    VT_PLACEMENT_HOME = 0,
    VT_PLACEMENT_PRODUCT,
    VT_PLACEMENT_CART,
    VT_PLACEMENT_CATEGORY,
    VT_PLACEMENT_SEARCH,
    VT_PLACEMENT_COUNT
};

const char *vt_placement_name(enum vt_placement placement);
int vt_placement_parse(const char *s, size_t len, enum vt_placement *out);

/* Why an item was chosen; an item can carry several. */
enum vt_rec_reason {
    VT_REASON_CATEGORY = 1u << 0,        /* one of the profile's top categories */
    VT_REASON_BRAND = 1u << 1,           /* one of the profile's top brands */
    VT_REASON_PRICE_TIER = 1u << 2,      /* the profile's preferred price tier */
    VT_REASON_GENDER = 1u << 3,          /* made for the profile's confident segment */
    VT_REASON_POPULAR = 1u << 4,         /* popular in the catalog file */
    VT_REASON_SAME_CATEGORY = 1u << 5,   /* same category as the product on the page */
    VT_REASON_FALLBACK = 1u << 6,        /* added by a fallback step */
    VT_REASON_SIMILAR = 1u << 7,         /* co-viewed with `via` */
    VT_REASON_BOUGHT_TOGETHER = 1u << 8, /* co-purchased with `via` */
    VT_REASON_TRENDING = 1u << 9,        /* trending in the stream */
    VT_REASON_BOOSTED = 1u << 10,        /* a boost rule matched (`rule`) */
    VT_REASON_PINNED = 1u << 11,         /* placed by a pin rule (`rule`) */
};

/* Strategy that produced the list, reported in the response: the furthest step of the
 * fallback chain that contributed items. Pinned items do not count unless the list contains
 * nothing else. */
enum vt_rec_strategy {
    VT_STRATEGY_PERSONALIZED = 0,      /* every item from the profile and its neighbours */
    VT_STRATEGY_PERSONALIZED_TRENDING, /* personalised items, filled with trending ones (or
                                          with popular ones when nothing trends) */
    VT_STRATEGY_TRENDING,              /* no usable profile (or control group): trending */
    VT_STRATEGY_POPULAR,               /* nothing trending yet: catalog popularity */
    VT_STRATEGY_IN_STOCK,              /* filters left too few: any available product */
    VT_STRATEGY_EMPTY,                 /* no available product passes the filters */
};

const char *vt_rec_strategy_name(enum vt_rec_strategy strategy);

struct vt_rec_request {
    enum vt_placement placement;
    uint32_t product;       /* product on the page (placement product), or VT_CATALOG_NONE */
    size_t n_categories;    /* restrict to products in any of these categories (0: no limit) */
    uint32_t categories[VT_REC_FILTER_MAX];
    size_t n_brands;        /* restrict to these brands (0: no limit) */
    uint32_t brands[VT_REC_FILTER_MAX];
    enum vt_gender gender;  /* restrict to this gender or unisex; UNKNOWN: no restriction */
    double price_min;       /* restrict to unit prices >= this; < 0: no bound */
    double price_max;       /* restrict to unit prices <= this; < 0: no bound */
    size_t limit;           /* 1..VT_REC_LIMIT_MAX */
    size_t n_exclude;
    uint32_t exclude[VT_REC_EXCLUDE_MAX]; /* catalog indexes the caller does not want */
    bool control;           /* the session is in the control group: non-personalised list */
};

/* Fill a request with defaults: home, no product, no filters, limit, not control. */
void vt_rec_request_init(struct vt_rec_request *req, size_t limit);

struct vt_rec_item {
    uint32_t product;  /* catalog index */
    double score;
    uint32_t reasons;  /* enum vt_rec_reason bits */
    uint32_t category; /* the matching category for VT_REASON_CATEGORY, else NONE */
    uint32_t via;      /* the product behind SIMILAR or BOUGHT_TOGETHER, else NONE */
    const char *rule;     /* name of a boost rule that matched (owned by the rules), or NULL */
    const char *pin_rule; /* name of the pin rule that placed it, or NULL */
};

struct vt_rec_result {
    enum vt_rec_strategy strategy;
    enum vt_segment segment; /* the session's confident gender segment, or UNKNOWN */
    bool control;            /* the request was served as the control group */
    size_t n;
    struct vt_rec_item items[VT_REC_LIMIT_MAX]; /* best first */
};

/* Fill *out with up to req->limit products for profile p (which may be a cold-start
 * profile with exists == false). rules may be NULL. */
void vt_recommend(const struct vt_world *w, const struct vt_config *cfg,
                  const struct vt_rules *rules, const struct vt_profile *p,
                  const struct vt_rec_request *req, struct vt_rec_result *out);

/* True when the session falls into the control group (rec.control_percent of sessions,
 * chosen by a hash of the id, so a session stays in its group). */
bool vt_rec_in_control_group(const struct vt_config *cfg, const char *session_id,
                             size_t len);

/* ---- personal order of a given list ---- */

struct vt_rerank_item {
    uint32_t product; /* catalog index, or VT_CATALOG_NONE for an unknown id */
    size_t input;     /* position in the request, 0-based */
    double score;     /* personal score; 0 for unknown ids */
};

/*
 * Order products[0..n) (catalog indexes, VT_CATALOG_NONE for ids the catalog does not
 * know) for profile p: known products by descending personal score (ties keep the input
 * order), then the unknown ones in their input order. Out-of-stock products and products
 * matched by a filter rule are not removed, because the page decides what it shows: they
 * go after the others. Rules apply when their placements include "rerank" (or when they
 * name no placements). out receives n items.
 */
void vt_rerank(const struct vt_world *w, const struct vt_config *cfg,
               const struct vt_rules *rules, const struct vt_profile *p,
               const uint32_t *products, size_t n, struct vt_rerank_item *out);

/* ---- non-personal lists ---- */

/* Trending products, optionally of one category and/or one brand (VT_CATALOG_NONE: any)
 * and for one gender (UNKNOWN: any; otherwise that gender or unisex); available products
 * only. When fewer trend than limit (or none yet), the rest comes from catalog popularity
 * with score 0. Returns the count written to out (at most limit, and at most
 * VT_REC_LIMIT_MAX). */
size_t vt_trending_query(const struct vt_world *w, uint32_t category, uint32_t brand,
                         enum vt_gender gender, size_t limit, struct vt_scored_product *out);

/* Products similar to one product: its co-viewed and co-purchased neighbours (score
 * co_view + co_buy, `via` the product), then products of its categories, trending ones
 * first and then by catalog popularity (score 0); available products only, never the
 * product itself. Sets *from_neighbors to the number taken from neighbours. Returns the
 * count (at most limit, and at most VT_REC_LIMIT_MAX). */
size_t vt_similar_query(const struct vt_world *w, uint32_t product, size_t limit,
                        struct vt_rec_item *out, size_t *from_neighbors);

#endif
