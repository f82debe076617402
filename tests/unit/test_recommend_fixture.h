/*
 * Shared fixture of the recommender tests (test_recommend*.c, test_rules.c): an inline
 * catalog, a world whose trending lists and neighbour lists the test sets, optional rules,
 * a hand-filled profile and a request.
 */
#ifndef VITRINE_TEST_RECOMMEND_FIXTURE_H
#define VITRINE_TEST_RECOMMEND_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vitrine/catalog.h"
#include "vitrine/config.h"
#include "vitrine/profile.h"
#include "vitrine/recommend.h"
#include "vitrine/rules.h"
#include "vitrine/world.h"

/*
 * Popularity order of the available products: p1 p2 n1 n2 n3 n4 h1 h2 h3 h4 s2 h5.
 * s1 and p3 are out of stock. Alpha has three products, every other brand one or two.
 */
extern const char rec_main_catalog[];
#define REC_MAIN_AVAILABLE 12

struct rec_fixture {
    struct vt_config cfg;
    struct vt_catalog *cat;
    struct vt_world *world;
    struct vt_rules *rules;
    struct vt_profile profile;
    struct vt_rec_request req;
    struct vt_rec_result result;

    /* Aggregates the test set, owned by the fixture. */
    struct vt_product_list *global;
    struct vt_product_list **by_category;
    struct vt_product_list **by_brand;
    struct vt_neighbors **neighbors;
};

/* Load the catalog text (JSON Lines, or "" for an empty catalog) into a world without
 * aggregates. The profile exists and is empty, and the request asks home for 10 products. */
void fixture_load(struct rec_fixture *f, const char *text);
void fixture_free(struct rec_fixture *f);

/* Detach trending and neighbour lists that a test set from the world before
 * vt_world_free; the test frees them itself. */
void fixture_detach(struct vt_world *w);

/* Parse rules from JSON text; the test fails with the message when they are invalid. */
void fixture_rules(struct rec_fixture *f, const char *json);

uint32_t index_of(const struct rec_fixture *f, const char *id);
uint32_t category_of(const struct rec_fixture *f, const char *name);
uint32_t brand_of(const struct rec_fixture *f, const char *name);
const char *id_at(const struct rec_fixture *f, size_t i);
int position_of(const struct rec_fixture *f, const char *id);

/* Profile helpers. like_* add decayed affinity values. */
void like_category(struct rec_fixture *f, const char *name, double value);
void like_brand(struct rec_fixture *f, const char *name, double value);
void like_tier(struct rec_fixture *f, const char *name, double value);
void add_to_cart(struct rec_fixture *f, const char *id, int64_t quantity);
void add_purchase(struct rec_fixture *f, const char *id);
void add_recent(struct rec_fixture *f, const char *id); /* call newest first */
void add_seen(struct rec_fixture *f, const char *id, int64_t count);
void set_gender(struct rec_fixture *f, double log_odds, int64_t evidence);

/* Aggregates. Trending lists are "id:score id:score ...", best first. */
void set_trending(struct rec_fixture *f, const char *entries);
void set_category_trending(struct rec_fixture *f, const char *category, const char *entries);
void set_brand_trending(struct rec_fixture *f, const char *brand, const char *entries);

/* Add `to` to the neighbour list of `from`, which stays ordered by co_view + co_buy. */
void add_neighbor(struct rec_fixture *f, const char *from, const char *to, float co_view,
                  float co_buy);

/* Call vt_recommend with the fixture's profile (or none) and check the invariants. */
void run(struct rec_fixture *f, bool with_profile);

/* Check what every result must satisfy (see the definition). */
void check_invariants(const struct vt_world *w, const struct vt_config *cfg,
                      const struct vt_profile *p, const struct vt_rec_request *req,
                      const struct vt_rec_result *r, bool rules_may_filter);

#endif
