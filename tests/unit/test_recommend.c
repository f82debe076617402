/*
 * Unit tests of recommendations (service/recommend/recommend.c) on small inline catalogs and
 * hand-filled profiles, plus a required run over a real catalog named by the environment
 * variable VITRINE_TEST_CATALOG.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vitrine/catalog.h"
#include "vitrine/config.h"
#include "vitrine/profile.h"
#include "vitrine/recommend.h"
#include "vitrine/util.h"

/*
 * Popularity order of the available products: p1 p2 n1 n2 n3 n4 h1 h2 h3 h4 s2 h5.
 * s1 and p3 are out of stock. Alpha has three products, every other brand one or two.
 */
static const char main_catalog_text[] =
    "{\"id\":\"h1\",\"brand\":\"Alpha\",\"categories\":[\"hair\"],\"gender\":\"female\","
    "\"price\":10,\"stock\":5,\"popularity\":50}\n"
    "{\"id\":\"h2\",\"brand\":\"Beta\",\"categories\":[\"hair\"],\"gender\":\"unisex\","
    "\"price\":30,\"stock\":5,\"popularity\":40}\n"
    "{\"id\":\"h3\",\"brand\":\"Gamma\",\"categories\":[\"hair\"],\"gender\":\"male\","
    "\"price\":30,\"stock\":5,\"popularity\":30}\n"
    "{\"id\":\"h4\",\"brand\":\"Alpha\",\"categories\":[\"hair\"],"
    "\"price\":80,\"stock\":5,\"popularity\":20}\n"
    "{\"id\":\"h5\",\"brand\":\"Delta\",\"categories\":[\"hair\"],\"gender\":\"female\","
    "\"price\":130,\"stock\":5,\"popularity\":10}\n"
    "{\"id\":\"n1\",\"brand\":\"Alpha\",\"categories\":[\"nails\"],\"gender\":\"female\","
    "\"price\":5,\"popularity\":90}\n"
    "{\"id\":\"n2\",\"brand\":\"Beta\",\"categories\":[\"nails\"],\"gender\":\"female\","
    "\"price\":8,\"stock\":2,\"popularity\":80}\n"
    "{\"id\":\"n3\",\"brand\":\"Epsilon\",\"categories\":[\"nails\"],\"gender\":\"male\","
    "\"price\":12,\"stock\":1,\"popularity\":70}\n"
    "{\"id\":\"n4\",\"brand\":\"Zeta\",\"categories\":[\"nails\"],"
    "\"price\":20,\"stock\":9,\"popularity\":60}\n"
    "{\"id\":\"p1\",\"brand\":\"Eta\",\"categories\":[\"perfume\"],\"gender\":\"male\","
    "\"price\":150,\"stock\":3,\"popularity\":100}\n"
    "{\"id\":\"p2\",\"brand\":\"Theta\",\"categories\":[\"perfume\"],\"gender\":\"female\","
    "\"price\":200,\"stock\":3,\"popularity\":95}\n"
    "{\"id\":\"p3\",\"brand\":\"Eta\",\"categories\":[\"perfume\"],\"gender\":\"female\","
    "\"price\":90,\"stock\":0,\"popularity\":5}\n"
    "{\"id\":\"s1\",\"brand\":\"Iota\",\"categories\":[\"skin\"],\"stock\":0,"
    "\"popularity\":85}\n"
    "{\"id\":\"s2\",\"brand\":\"Kappa\",\"categories\":[\"skin\"],\"gender\":\"unisex\","
    "\"price\":25,\"stock\":4,\"popularity\":15}\n";

#define MAIN_AVAILABLE 12

struct rec_fixture {
    struct vt_config cfg;
    struct vt_catalog *cat;
    struct vt_profile profile;
    struct vt_rec_request req;
    struct vt_rec_result result;
};


static void fixture_load(struct rec_fixture *f, const char *text)
{
    char err[256] = "";

    memset(f, 0, sizeof *f);
    vt_config_defaults(&f->cfg);
    if (text[0] == '\0') {
        f->cat = vt_catalog_load("", &f->cfg, err, sizeof err);
    } else {
        FILE *in = fmemopen((void *)text, strlen(text), "r");
        cr_assert_not_null(in);
        f->cat = vt_catalog_load_stream(in, "recommend-test", &f->cfg, err, sizeof err);
        fclose(in);
    }
    cr_assert_not_null(f->cat, "%s", err);

    f->profile.exists = true;
    f->profile.ttl_s = -1;
    f->req.placement = VT_PLACEMENT_HOME;
    f->req.product = VT_CATALOG_NONE;
    f->req.category = VT_CATALOG_NONE;
    f->req.limit = 10;
}


static uint32_t index_of(const struct rec_fixture *f, const char *id)
{
    uint32_t index = vt_catalog_find(f->cat, id, strlen(id));

    cr_assert_neq(index, VT_CATALOG_NONE, "product %s not in the test catalog", id);
    return index;
}


static const char *id_at(const struct rec_fixture *f, size_t i)
{
    cr_assert_lt(i, f->result.n, "position %zu is past the %zu items", i, f->result.n);
    return vt_catalog_get(f->cat, f->result.items[i].product)->id;
}


/* Position of a product in the result, or -1. */
static int position_of(const struct rec_fixture *f, const char *id)
{
    for (size_t i = 0; i < f->result.n; i++) {
        if (strcmp(id_at(f, i), id) == 0)
            return (int)i;
    }
    return -1;
}


static void add_name(struct vt_scored_name *names, size_t *n, const char *name, double value)
{
    vt_strlcpy(names[*n].name, name, sizeof names[*n].name);
    names[*n].value = value;
    names[*n].log_score = log(value);
    (*n)++;
}


static void like_category(struct rec_fixture *f, const char *name, double value)
{
    add_name(f->profile.categories, &f->profile.n_categories, name, value);
}


static void like_brand(struct rec_fixture *f, const char *name, double value)
{
    add_name(f->profile.brands, &f->profile.n_brands, name, value);
}


static void like_tier(struct rec_fixture *f, const char *name, double value)
{
    add_name(f->profile.tiers, &f->profile.n_tiers, name, value);
}


static void add_to_cart(struct rec_fixture *f, const char *id, int64_t quantity)
{
    struct vt_cart_line *line = &f->profile.cart[f->profile.n_cart++];

    vt_strlcpy(line->id, id, sizeof line->id);
    line->quantity = quantity;
}


static void add_timed(struct vt_timed_id *list, size_t *n, const char *id)
{
    vt_strlcpy(list[*n].id, id, sizeof list[*n].id);
    list[*n].ts_ms = 1700000000000 + (int64_t)*n;
    (*n)++;
}


/* Gender evidence that the default thresholds (probability 0.7, two interactions) accept,
 * or with too few interactions to be confident. */
static void set_gender(struct rec_fixture *f, double log_odds, int64_t evidence)
{
    f->profile.gender_log_odds = log_odds;
    f->profile.gender_evidence = evidence;
}


static bool in_category(const struct vt_product *p, uint32_t category)
{
    for (uint8_t k = 0; k < p->n_categories; k++) {
        if (p->categories[k] == category)
            return true;
    }
    return false;
}


static bool blocked_by_profile(const struct vt_catalog *cat, const struct vt_profile *p,
                               uint32_t index)
{
    const char *id = vt_catalog_get(cat, index)->id;

    for (size_t i = 0; i < p->n_cart; i++) {
        if (p->cart[i].quantity != 0 && strcmp(p->cart[i].id, id) == 0)
            return true;
    }
    for (size_t i = 0; i < p->n_purchased; i++) {
        if (strcmp(p->purchased[i].id, id) == 0)
            return true;
    }
    return false;
}


/*
 * Check what every result must satisfy: at most `limit` distinct available products, none
 * blocked, the brand cap and the category and gender filters kept except by the in_stock
 * fallback, and a non-empty list whenever an allowed product exists.
 */
static void check_invariants(const struct vt_catalog *cat, const struct vt_config *cfg,
                             const struct vt_profile *p, const struct vt_rec_request *req,
                             const struct vt_rec_result *r)
{
    size_t limit = req->limit > 0 ? req->limit : (size_t)cfg->rec_limit_default;
    size_t size = vt_catalog_size(cat);
    bool any_allowed = false;

    cr_assert_leq(r->n, limit, "%zu items for limit %zu", r->n, limit);
    for (uint32_t i = 0; i < size && !any_allowed; i++) {
        bool excluded = i == req->product || (p != NULL && blocked_by_profile(cat, p, i));
        for (size_t k = 0; k < req->n_exclude; k++)
            excluded = excluded || req->exclude[k] == i;
        any_allowed = !excluded && vt_product_available(vt_catalog_get(cat, i));
    }
    cr_assert_eq(r->n == 0, !any_allowed, "n=%zu although an allowed product %s", r->n,
                 any_allowed ? "exists" : "does not exist");
    cr_assert_eq(r->strategy == VT_STRATEGY_EMPTY, r->n == 0, "strategy %s with n=%zu",
                 vt_rec_strategy_name(r->strategy), r->n);

    for (size_t i = 0; i < r->n; i++) {
        const struct vt_rec_item *item = &r->items[i];
        const struct vt_product *prod = vt_catalog_get(cat, item->product);
        size_t same_brand = 0;

        cr_assert_not_null(prod, "item %zu has no product", i);
        cr_assert(vt_product_available(prod), "out-of-stock product %s served", prod->id);
        cr_assert_neq(item->product, req->product, "viewed product %s served", prod->id);
        cr_assert_not(p != NULL && blocked_by_profile(cat, p, item->product),
                      "product %s from the cart or purchases served", prod->id);
        for (size_t k = 0; k < req->n_exclude; k++)
            cr_assert_neq(item->product, req->exclude[k], "excluded %s served", prod->id);
        cr_assert(isfinite(item->score), "score of %s is not finite", prod->id);

        for (size_t k = 0; k < r->n; k++) {
            cr_assert(k == i || r->items[k].product != item->product, "%s served twice",
                      prod->id);
            if (prod->brand != VT_CATALOG_NONE &&
                vt_catalog_get(cat, r->items[k].product)->brand == prod->brand)
                same_brand++;
        }
        if (r->strategy != VT_STRATEGY_IN_STOCK)
            cr_assert_leq(same_brand, (size_t)cfg->rec_max_per_brand,
                          "brand cap exceeded by %s", prod->id);

        bool outside = req->category != VT_CATALOG_NONE && !in_category(prod, req->category);
        bool wrong_gender = (r->segment == VT_SEGMENT_FEMALE && prod->gender == VT_GENDER_MALE) ||
                            (r->segment == VT_SEGMENT_MALE && prod->gender == VT_GENDER_FEMALE);
        if (outside || wrong_gender)
            cr_assert(r->strategy == VT_STRATEGY_IN_STOCK &&
                          (item->reasons & VT_REASON_FALLBACK),
                      "%s breaks the category or gender filter outside the last fallback",
                      prod->id);
        if (item->reasons & VT_REASON_CATEGORY)
            cr_assert(in_category(prod, item->category), "reason category of %s is wrong",
                      prod->id);
    }
}


static void run(struct rec_fixture *f, bool with_profile)
{
    const struct vt_profile *p = with_profile ? &f->profile : NULL;

    vt_recommend(f->cat, &f->cfg, p, &f->req, &f->result);
    check_invariants(f->cat, &f->cfg, p, &f->req, &f->result);
}


Test(recommend, placement_names_round_trip)
{
    for (int i = 0; i < VT_PLACEMENT_COUNT; i++) {
        enum vt_placement parsed;
        const char *name = vt_placement_name((enum vt_placement)i);
        cr_assert_eq(vt_placement_parse(name, strlen(name), &parsed), 0, "%s", name);
        cr_assert_eq((int)parsed, i);
    }
    enum vt_placement unused;
    cr_assert_eq(vt_placement_parse("checkout", 8, &unused), -1);
    cr_assert_str_eq(vt_placement_name(VT_PLACEMENT_CATEGORY), "category");
}


Test(recommend, strategy_names)
{
    cr_assert_str_eq(vt_rec_strategy_name(VT_STRATEGY_PERSONALIZED), "personalized");
    cr_assert_str_eq(vt_rec_strategy_name(VT_STRATEGY_PERSONALIZED_POPULAR),
                     "personalized+popular");
    cr_assert_str_eq(vt_rec_strategy_name(VT_STRATEGY_POPULAR), "popular");
    cr_assert_str_eq(vt_rec_strategy_name(VT_STRATEGY_IN_STOCK), "in_stock");
    cr_assert_str_eq(vt_rec_strategy_name(VT_STRATEGY_EMPTY), "empty");
}


Test(recommend, personalized_order_follows_affinities)
{
    struct rec_fixture f;
    fixture_load(&f, main_catalog_text);
    like_category(&f, "hair", 10);
    like_category(&f, "Nails", 2);
    f.req.limit = 5;

    run(&f, true);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_PERSONALIZED);
    cr_assert_eq(f.result.n, 5);
    const char *expected[] = {"h1", "h2", "h3", "h4", "h5"};
    for (size_t i = 0; i < 5; i++) {
        cr_assert_str_eq(id_at(&f, i), expected[i], "position %zu", i);
        cr_assert(f.result.items[i].reasons & VT_REASON_CATEGORY);
        cr_assert_eq(f.result.items[i].category, vt_catalog_category_find(f.cat, "hair", 4));
    }
    for (size_t i = 1; i < 5; i++)
        cr_assert_geq(f.result.items[i - 1].score, f.result.items[i].score);
    vt_catalog_free(f.cat);
}


Test(recommend, short_personal_list_filled_from_popular)
{
    struct rec_fixture f;
    fixture_load(&f, main_catalog_text);
    like_category(&f, "hair", 10);
    like_category(&f, "nails", 2);
    f.req.limit = 10;

    run(&f, true);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_PERSONALIZED_POPULAR);
    cr_assert_eq(f.result.n, 10);
    cr_assert_str_eq(id_at(&f, 5), "n1", "the weaker category follows the stronger one");
    cr_assert_str_eq(id_at(&f, 9), "p1", "the most popular product fills the list");
    cr_assert(f.result.items[9].reasons & VT_REASON_POPULAR);
    cr_assert_not(f.result.items[9].reasons & VT_REASON_CATEGORY);
    cr_assert_not(f.result.items[0].reasons & VT_REASON_POPULAR);
    vt_catalog_free(f.cat);
}


Test(recommend, brand_affinity_ranks_first)
{
    struct rec_fixture f;
    fixture_load(&f, main_catalog_text);
    like_category(&f, "hair", 1);
    like_brand(&f, "beta", 5);

    run(&f, true);
    cr_assert_str_eq(id_at(&f, 0), "h2", "category and brand match beat category alone");
    cr_assert_eq(f.result.items[0].reasons & (VT_REASON_CATEGORY | VT_REASON_BRAND),
                 VT_REASON_CATEGORY | VT_REASON_BRAND);
    int n2 = position_of(&f, "n2");
    cr_assert_geq(n2, 0, "the brand's product in another category is a candidate");
    cr_assert(f.result.items[n2].reasons & VT_REASON_BRAND);
    cr_assert_not(f.result.items[n2].reasons & VT_REASON_CATEGORY);
    vt_catalog_free(f.cat);
}


Test(recommend, price_tier_reason_and_boost)
{
    struct rec_fixture f;
    fixture_load(&f, main_catalog_text);
    like_category(&f, "perfume", 1);
    like_tier(&f, "luxury", 5);
    like_tier(&f, "mid", 1);
    f.req.limit = 2;

    run(&f, true);
    cr_assert_eq(f.result.n, 2);
    for (size_t i = 0; i < 2; i++)
        cr_assert(f.result.items[i].reasons & VT_REASON_PRICE_TIER, "%s", id_at(&f, i));
    vt_catalog_free(f.cat);
}


Test(recommend, excludes_cart_and_purchased)
{
    struct rec_fixture f;
    fixture_load(&f, main_catalog_text);
    add_to_cart(&f, "p1", 1);
    add_to_cart(&f, "n1", 2);
    add_to_cart(&f, "h1", 0);
    add_timed(f.profile.purchased, &f.profile.n_purchased, "p2");
    add_timed(f.profile.purchased, &f.profile.n_purchased, "unknown-id");
    f.req.limit = 20;

    run(&f, true);
    cr_assert_lt(position_of(&f, "p1"), 0);
    cr_assert_lt(position_of(&f, "n1"), 0);
    cr_assert_lt(position_of(&f, "p2"), 0);
    cr_assert_geq(position_of(&f, "h1"), 0, "a cart line with quantity 0 was removed");
    cr_assert_eq(f.result.n, MAIN_AVAILABLE - 3);
    vt_catalog_free(f.cat);
}


Test(recommend, excludes_request_exclusions)
{
    struct rec_fixture f;
    fixture_load(&f, main_catalog_text);
    like_category(&f, "nails", 1);
    f.req.exclude[f.req.n_exclude++] = index_of(&f, "n1");
    f.req.exclude[f.req.n_exclude++] = index_of(&f, "p1");
    f.req.exclude[f.req.n_exclude++] = VT_CATALOG_NONE;
    f.req.limit = 20;

    run(&f, true);
    cr_assert_lt(position_of(&f, "n1"), 0);
    cr_assert_lt(position_of(&f, "p1"), 0);
    cr_assert_str_eq(id_at(&f, 0), "n2");
    vt_catalog_free(f.cat);
}


Test(recommend, never_serves_out_of_stock)
{
    struct rec_fixture f;
    fixture_load(&f, main_catalog_text);
    like_category(&f, "skin", 10);
    like_category(&f, "perfume", 5);
    like_brand(&f, "Eta", 3);
    like_brand(&f, "iota", 3);

    for (size_t limit = 1; limit <= 20; limit++) {
        f.req.limit = limit;
        run(&f, true);
        cr_assert_lt(position_of(&f, "s1"), 0, "limit %zu", limit);
        cr_assert_lt(position_of(&f, "p3"), 0, "limit %zu", limit);
    }
    cr_assert_eq(f.result.n, MAIN_AVAILABLE);
    vt_catalog_free(f.cat);
}


Test(recommend, gender_filter_when_confident)
{
    struct rec_fixture f;
    fixture_load(&f, main_catalog_text);
    set_gender(&f, 3, 5);
    f.req.limit = 20;

    run(&f, true);
    cr_assert_eq(f.result.segment, VT_SEGMENT_FEMALE);
    cr_assert_lt(position_of(&f, "p1"), 0);
    cr_assert_lt(position_of(&f, "h3"), 0);
    cr_assert_lt(position_of(&f, "n3"), 0);
    cr_assert_geq(position_of(&f, "h2"), 0, "unisex products stay");
    cr_assert_geq(position_of(&f, "h4"), 0, "products of unknown gender stay");
    cr_assert_eq(f.result.n, MAIN_AVAILABLE - 3);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_POPULAR,
                 "filtered products are not replaced from the other gender");
    cr_assert(f.result.items[0].reasons & VT_REASON_GENDER, "female products get a boost");
    vt_catalog_free(f.cat);
}


Test(recommend, no_gender_filter_when_unsure)
{
    struct rec_fixture f;
    fixture_load(&f, main_catalog_text);
    set_gender(&f, 3, 1);
    f.req.limit = 20;

    run(&f, true);
    cr_assert_eq(f.result.segment, VT_SEGMENT_UNKNOWN, "one interaction is too little");
    cr_assert_eq(f.result.n, MAIN_AVAILABLE);
    cr_assert_str_eq(id_at(&f, 0), "p1");

    set_gender(&f, 0.1, 50);
    run(&f, true);
    cr_assert_eq(f.result.segment, VT_SEGMENT_UNKNOWN, "p = 0.52 is below the threshold");
    cr_assert_eq(f.result.n, MAIN_AVAILABLE);
    vt_catalog_free(f.cat);
}


Test(recommend, male_segment_filters_female_products)
{
    struct rec_fixture f;
    fixture_load(&f, main_catalog_text);
    set_gender(&f, -3, 5);
    f.req.limit = 20;

    run(&f, true);
    cr_assert_eq(f.result.segment, VT_SEGMENT_MALE);
    for (size_t i = 0; i < f.result.n; i++) {
        const struct vt_product *p = vt_catalog_get(f.cat, f.result.items[i].product);
        cr_assert_neq(p->gender, VT_GENDER_FEMALE, "%s", p->id);
    }
    vt_catalog_free(f.cat);
}


Test(recommend, caps_products_per_brand)
{
    struct rec_fixture f;
    fixture_load(&f, main_catalog_text);
    f.cfg.rec_max_per_brand = 1;
    like_category(&f, "hair", 10);
    f.req.limit = 4;

    run(&f, true);
    const char *expected[] = {"h1", "h2", "h3", "h5"};
    cr_assert_eq(f.result.n, 4);
    for (size_t i = 0; i < 4; i++)
        cr_assert_str_eq(id_at(&f, i), expected[i], "h4 is Alpha's second product");

    f.req.limit = 9;
    run(&f, true);
    cr_assert_eq(f.result.n, 9);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_PERSONALIZED_POPULAR);
    vt_catalog_free(f.cat);
}


Test(recommend, in_stock_fallback_relaxes_brand_cap)
{
    struct rec_fixture f;
    fixture_load(&f, "{\"id\":\"x1\",\"brand\":\"Solo\",\"popularity\":3}\n"
                     "{\"id\":\"x2\",\"brand\":\"solo\",\"popularity\":2}\n"
                     "{\"id\":\"x3\",\"brand\":\"SOLO\",\"popularity\":1}\n");
    f.cfg.rec_max_per_brand = 1;
    f.req.limit = 3;

    run(&f, false);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_IN_STOCK);
    cr_assert_eq(f.result.n, 3);
    cr_assert_str_eq(id_at(&f, 0), "x1");
    cr_assert(f.result.items[0].reasons & VT_REASON_POPULAR);
    cr_assert_not(f.result.items[0].reasons & VT_REASON_FALLBACK);
    cr_assert_str_eq(id_at(&f, 1), "x2");
    cr_assert(f.result.items[1].reasons & VT_REASON_FALLBACK);
    cr_assert_str_eq(id_at(&f, 2), "x3");
    cr_assert(f.result.items[2].reasons & VT_REASON_FALLBACK);
    vt_catalog_free(f.cat);
}


Test(recommend, cold_profile_gets_popular)
{
    struct rec_fixture f;
    fixture_load(&f, main_catalog_text);
    f.req.limit = 6;
    const char *expected[] = {"p1", "p2", "n1", "n2", "n3", "n4"};

    run(&f, false);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_POPULAR);
    cr_assert_eq(f.result.segment, VT_SEGMENT_UNKNOWN);
    for (size_t i = 0; i < 6; i++) {
        cr_assert_str_eq(id_at(&f, i), expected[i], "position %zu", i);
        cr_assert(f.result.items[i].reasons & VT_REASON_POPULAR);
    }

    f.profile.exists = false;
    run(&f, true);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_POPULAR, "an empty profile is cold too");
    cr_assert_str_eq(id_at(&f, 0), "p1");
    vt_catalog_free(f.cat);
}


Test(recommend, unknown_names_give_popular)
{
    struct rec_fixture f;
    fixture_load(&f, main_catalog_text);
    like_category(&f, "garden tools", 10);
    like_brand(&f, "Acme", 10);

    run(&f, true);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_POPULAR);
    cr_assert_str_eq(id_at(&f, 0), "p1");
    vt_catalog_free(f.cat);
}


Test(recommend, popular_ties_ordered_by_id)
{
    struct rec_fixture f;
    fixture_load(&f, "{\"id\":\"b\",\"popularity\":1}\n"
                     "{\"id\":\"c\",\"popularity\":1}\n"
                     "{\"id\":\"a\",\"popularity\":1}\n");

    run(&f, false);
    cr_assert_eq(f.result.n, 3);
    cr_assert_str_eq(id_at(&f, 0), "a");
    cr_assert_str_eq(id_at(&f, 1), "b");
    cr_assert_str_eq(id_at(&f, 2), "c");
    vt_catalog_free(f.cat);
}


Test(recommend, never_empty_while_product_available)
{
    struct rec_fixture f;
    fixture_load(&f, "{\"id\":\"a1\",\"brand\":\"M\",\"categories\":[\"hair\"],"
                     "\"gender\":\"male\",\"stock\":5}\n"
                     "{\"id\":\"a2\",\"categories\":[\"nails\"],\"gender\":\"female\","
                     "\"stock\":0}\n");
    set_gender(&f, 4, 10);
    like_category(&f, "nails", 1);
    f.req.placement = VT_PLACEMENT_CATEGORY;
    f.req.category = vt_catalog_category_find(f.cat, "nails", 5);

    run(&f, true);
    cr_assert_eq(f.result.n, 1);
    cr_assert_str_eq(id_at(&f, 0), "a1");
    cr_assert_eq(f.result.strategy, VT_STRATEGY_IN_STOCK);
    cr_assert(f.result.items[0].reasons & VT_REASON_FALLBACK);
    vt_catalog_free(f.cat);
}


Test(recommend, empty_catalog_gives_empty)
{
    struct rec_fixture f;
    fixture_load(&f, "");
    like_category(&f, "hair", 1);

    run(&f, true);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_EMPTY);
    cr_assert_eq(f.result.n, 0);
    vt_catalog_free(f.cat);
}


Test(recommend, nothing_in_stock_gives_empty)
{
    struct rec_fixture f;
    fixture_load(&f, "{\"id\":\"a\",\"stock\":0}\n{\"id\":\"b\",\"stock\":0}\n");

    run(&f, false);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_EMPTY);
    cr_assert_eq(f.result.n, 0);
    vt_catalog_free(f.cat);
}


Test(recommend, everything_excluded_gives_empty)
{
    struct rec_fixture f;
    fixture_load(&f, "{\"id\":\"a\"}\n{\"id\":\"b\"}\n");
    f.req.exclude[f.req.n_exclude++] = index_of(&f, "a");
    add_to_cart(&f, "b", 1);

    run(&f, true);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_EMPTY);
    cr_assert_eq(f.result.n, 0);
    vt_catalog_free(f.cat);
}


Test(recommend, limit_respected)
{
    struct rec_fixture f;
    fixture_load(&f, main_catalog_text);
    like_category(&f, "hair", 1);

    for (size_t limit = 1; limit <= VT_REC_LIMIT_MAX; limit++) {
        f.req.limit = limit;
        run(&f, true);
        size_t expected = limit < MAIN_AVAILABLE ? limit : MAIN_AVAILABLE;
        cr_assert_eq(f.result.n, expected, "limit %zu", limit);
    }

    f.req.limit = 0;
    run(&f, true);
    cr_assert_eq(f.result.n, (size_t)f.cfg.rec_limit_default, "limit 0 takes the default");

    f.req.limit = VT_REC_LIMIT_MAX + 50;
    run(&f, true);
    cr_assert_eq(f.result.n, MAIN_AVAILABLE);
    vt_catalog_free(f.cat);
}


Test(recommend, category_restriction_keeps_category)
{
    struct rec_fixture f;
    fixture_load(&f, main_catalog_text);
    like_category(&f, "hair", 10);
    f.req.placement = VT_PLACEMENT_CATEGORY;
    f.req.category = vt_catalog_category_find(f.cat, "nails", 5);
    f.req.limit = 10;

    run(&f, true);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_POPULAR,
                 "no profile match in the category gives its popular products");
    cr_assert_eq(f.result.n, 4, "only four products are in the category");
    const char *expected[] = {"n1", "n2", "n3", "n4"};
    for (size_t i = 0; i < 4; i++)
        cr_assert_str_eq(id_at(&f, i), expected[i], "position %zu", i);

    like_brand(&f, "Beta", 1);
    run(&f, true);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_PERSONALIZED_POPULAR);
    cr_assert_str_eq(id_at(&f, 0), "n2", "the liked brand ranks first in the category");
    vt_catalog_free(f.cat);
}


Test(recommend, product_placement_excludes_viewed_product)
{
    struct rec_fixture f;
    fixture_load(&f, main_catalog_text);
    f.req.placement = VT_PLACEMENT_PRODUCT;
    f.req.product = index_of(&f, "h2");
    f.req.limit = 5;

    run(&f, false);
    cr_assert_lt(position_of(&f, "h2"), 0);
    const char *expected[] = {"h1", "h3", "h4", "h5"};
    for (size_t i = 0; i < 4; i++) {
        cr_assert_str_eq(id_at(&f, i), expected[i], "same category first, position %zu", i);
        cr_assert(f.result.items[i].reasons & VT_REASON_SAME_CATEGORY);
    }
    cr_assert_str_eq(id_at(&f, 4), "p1");
    cr_assert_not(f.result.items[4].reasons & VT_REASON_SAME_CATEGORY);
    vt_catalog_free(f.cat);
}


Test(recommend, recently_viewed_ranks_lower)
{
    struct rec_fixture f;
    fixture_load(&f, main_catalog_text);
    like_category(&f, "hair", 10);
    add_timed(f.profile.recent, &f.profile.n_recent, "h1");
    f.req.limit = 5;

    run(&f, true);
    cr_assert_str_eq(id_at(&f, 0), "h2");
    cr_assert_geq(position_of(&f, "h1"), 1, "a recently viewed product stays eligible");
    vt_catalog_free(f.cat);
}


Test(recommend, same_input_same_result)
{
    struct rec_fixture f;
    struct vt_rec_result first;
    fixture_load(&f, main_catalog_text);
    like_category(&f, "hair", 3);
    like_category(&f, "nails", 3);
    like_brand(&f, "Alpha", 2);
    like_brand(&f, "Zeta", 2);
    like_tier(&f, "mid", 1);
    set_gender(&f, 1.5, 3);
    add_timed(f.profile.recent, &f.profile.n_recent, "n4");
    f.req.limit = 8;

    run(&f, true);
    first = f.result;
    for (int round = 0; round < 3; round++) {
        run(&f, true);
        cr_assert_eq(f.result.n, first.n);
        cr_assert_eq(f.result.strategy, first.strategy);
        for (size_t i = 0; i < first.n; i++) {
            cr_assert_eq(f.result.items[i].product, first.items[i].product, "position %zu", i);
            cr_assert_eq(f.result.items[i].score, first.items[i].score, "position %zu", i);
            cr_assert_eq(f.result.items[i].reasons, first.items[i].reasons, "position %zu", i);
        }
    }
    vt_catalog_free(f.cat);
}


Test(recommend, odd_profile_values_ignored)
{
    struct rec_fixture f;
    fixture_load(&f, main_catalog_text);
    like_category(&f, "hair", NAN);
    like_category(&f, "nails", -1);
    like_category(&f, "skin", INFINITY);
    like_brand(&f, "Alpha", 0);
    like_brand(&f, "Beta", 1e308);
    like_brand(&f, "beta", 1e308);
    like_tier(&f, "platinum", 4);
    like_tier(&f, "mid", 1e308);
    like_tier(&f, "mid", 1e308);

    run(&f, true);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_POPULAR);
    cr_assert_str_eq(id_at(&f, 0), "p1");
    for (size_t i = 0; i < f.result.n; i++)
        cr_assert_not(f.result.items[i].reasons & VT_REASON_PRICE_TIER, "%s", id_at(&f, i));
    vt_catalog_free(f.cat);
}


/* ---- a real catalog, named by VITRINE_TEST_CATALOG ---- */

/* Fill a profile from the catalog itself: categories and brands of products spread over the
 * popularity order, cart, purchases and recently viewed products, and a gender leaning. */
static void real_profile(const struct vt_catalog *cat, int k, struct vt_profile *p)
{
    size_t n = 0;
    const uint32_t *popular = vt_catalog_popular(cat, &n);
    const double leanings[] = {0, 3, -3, 0.5, 2};

    memset(p, 0, sizeof *p);
    p->exists = k != 0;
    p->gender_log_odds = leanings[k % 5];
    p->gender_evidence = k == 0 ? 0 : 4;
    for (size_t i = 0; k != 0 && i < 12; i++) {
        const struct vt_product *prod = vt_catalog_get(cat, popular[(i * 97 + (size_t)k * 13) % n]);
        double value = 1.0 / (double)(i + 1);

        if (prod->n_categories > 0 && p->n_categories < VT_PROFILE_TOP_MAX)
            add_name(p->categories, &p->n_categories,
                     vt_catalog_category_name(cat, prod->categories[0]), value);
        if (prod->brand != VT_CATALOG_NONE && p->n_brands < VT_PROFILE_TOP_MAX)
            add_name(p->brands, &p->n_brands, vt_catalog_brand_name(cat, prod->brand), value);
        if (i < 3)
            add_timed(p->recent, &p->n_recent, prod->id);
    }
    for (size_t i = 0; k != 0 && i < 5 && i < n; i++) {
        struct vt_cart_line *line = &p->cart[p->n_cart++];
        vt_strlcpy(line->id, vt_catalog_get(cat, popular[i * 2])->id, sizeof line->id);
        line->quantity = 1;
        add_timed(p->purchased, &p->n_purchased, vt_catalog_get(cat, popular[i * 2 + 1])->id);
    }
    if (k != 0)
        add_name(p->tiers, &p->n_tiers, vt_price_tier_name((enum vt_price_tier)(k % 4)), 1);
}


Test(recommend, real_catalog_stays_within_limits, .timeout = 300)
{
    const char *path = getenv("VITRINE_TEST_CATALOG");
    struct vt_config cfg;
    char err[512] = "";
    static struct vt_profile profile;
    struct vt_rec_request req;
    struct vt_rec_result result;
    const size_t limits[] = {1, 10, VT_REC_LIMIT_MAX};
    size_t calls = 0;
    size_t n = 0;

    cr_assert(path != NULL && path[0] != '\0',
              "VITRINE_TEST_CATALOG is not set; set it to a catalog in JSON Lines, such as one "
              "written by vitrine-catalog from the real files (tests/run.sh does this)");

    vt_config_defaults(&cfg);
    struct vt_catalog *cat = vt_catalog_load(path, &cfg, err, sizeof err);
    cr_assert_not_null(cat, "%s", err);
    const uint32_t *popular = vt_catalog_popular(cat, &n);
    cr_assert_geq(n, 20, "the catalog at %s has only %zu products; this test needs 20", path,
                  n);

    for (int k = 0; k < 6; k++) {
        real_profile(cat, k, &profile);
        for (int placement = 0; placement < VT_PLACEMENT_COUNT; placement++) {
            for (size_t l = 0; l < sizeof limits / sizeof limits[0]; l++) {
                const struct vt_product *anchor = vt_catalog_get(cat, popular[(size_t)k * 7 % n]);

                memset(&req, 0, sizeof req);
                req.placement = (enum vt_placement)placement;
                req.product = VT_CATALOG_NONE;
                req.category = VT_CATALOG_NONE;
                req.limit = limits[l];
                if (placement == VT_PLACEMENT_PRODUCT)
                    req.product = popular[(size_t)k * 7 % n];
                if (placement == VT_PLACEMENT_CATEGORY && anchor->n_categories > 0)
                    req.category = anchor->categories[0];
                for (size_t e = 0; e < 10; e++)
                    req.exclude[req.n_exclude++] = popular[(e * 3 + (size_t)k) % n];

                vt_recommend(cat, &cfg, &profile, &req, &result);
                check_invariants(cat, &cfg, &profile, &req, &result);
                calls++;
            }
        }
    }
    cr_log_info("checked %zu recommendation calls on %zu products from %s", calls, n, path);
    vt_catalog_free(cat);
}
