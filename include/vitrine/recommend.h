/*
 * vitrine: recommendations, first version.
 *
 * A pure function of the catalog, one profile and the request: no I/O, no allocation, no
 * shared mutable state, so HTTP workers call it concurrently.
 *
 * Candidates come from the catalog's popularity indexes of the profile's strongest
 * categories and brands, plus the most popular products overall. Each candidate is scored
 * from the profile's decayed category, brand and price-tier affinities and its
 * popularity. Filters: out of stock, in the cart, already purchased, excluded by the
 * caller, the product being viewed, and (when the gender segment is confident) products
 * made for the other gender. At most cfg->rec_max_per_brand products per brand. When the
 * personalised list is short it is filled with popular in-stock products, and as a last
 * resort with any in-stock product, so the list is never empty while the catalog has an
 * available product.
 */
#ifndef VITRINE_RECOMMEND_H
#define VITRINE_RECOMMEND_H

#include <stddef.h>
#include <stdint.h>

#include "vitrine/catalog.h"
#include "vitrine/config.h"
#include "vitrine/limits.h"
#include "vitrine/profile.h"

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
    VT_REASON_CATEGORY = 1u << 0,   /* matches one of the profile's top categories */
    VT_REASON_BRAND = 1u << 1,      /* matches one of the profile's top brands */
    VT_REASON_PRICE_TIER = 1u << 2, /* in the profile's preferred price tier */
    VT_REASON_GENDER = 1u << 3,     /* made for the profile's confident gender segment */
    VT_REASON_POPULAR = 1u << 4,    /* popular in the catalog */
    VT_REASON_SAME_CATEGORY = 1u << 5, /* same category as the product being viewed */
    VT_REASON_FALLBACK = 1u << 6,   /* added by a fallback step */
};

/* Strategy that produced the list, reported in the response. */
enum vt_rec_strategy {
    VT_STRATEGY_PERSONALIZED = 0, /* every item from the profile's affinities */
    VT_STRATEGY_PERSONALIZED_POPULAR, /* personalised items, filled with popular ones */
    VT_STRATEGY_POPULAR,          /* fallback: no usable profile, popular in stock */
    VT_STRATEGY_IN_STOCK,         /* last fallback: any available product */
    VT_STRATEGY_EMPTY,            /* no available product is left (none in stock, or all of
                                     them in the cart, purchased, excluded or viewed) */
};

const char *vt_rec_strategy_name(enum vt_rec_strategy strategy);

struct vt_rec_request {
    enum vt_placement placement;
    uint32_t product;  /* product being viewed (placement product), or VT_CATALOG_NONE */
    uint32_t category; /* category being browsed, or VT_CATALOG_NONE */
    size_t limit;      /* 1..VT_REC_LIMIT_MAX */
    size_t n_exclude;
    uint32_t exclude[VT_REC_EXCLUDE_MAX]; /* catalog indexes the caller does not want */
};

struct vt_rec_item {
    uint32_t product; /* catalog index */
    double score;
    uint32_t reasons;       /* enum vt_rec_reason bits */
    uint32_t category;      /* the matching category for VT_REASON_CATEGORY */
};

struct vt_rec_result {
    enum vt_rec_strategy strategy;
    enum vt_segment segment; /* gender segment used for filtering */
    size_t n;
    struct vt_rec_item items[VT_REC_LIMIT_MAX]; /* best first */
};

/* Fill *out with up to req->limit products for profile p (which may be a cold-start
 * profile with exists == false). */
void vt_recommend(const struct vt_catalog *cat, const struct vt_config *cfg,
                  const struct vt_profile *p, const struct vt_rec_request *req,
                  struct vt_rec_result *out);

#endif
