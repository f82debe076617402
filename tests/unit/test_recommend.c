/*
 * Unit tests of vt_recommend (service/recommend/) on small inline catalogs with trending
 * lists and neighbour lists set by the test, plus a required run over a real catalog named
 * by the environment variable VITRINE_TEST_CATALOG.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_recommend_fixture.h"
#include "vitrine/util.h"

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
    cr_assert_str_eq(vt_rec_strategy_name(VT_STRATEGY_PERSONALIZED_TRENDING),
                     "personalized+trending");
    cr_assert_str_eq(vt_rec_strategy_name(VT_STRATEGY_TRENDING), "trending");
    cr_assert_str_eq(vt_rec_strategy_name(VT_STRATEGY_POPULAR), "popular");
    cr_assert_str_eq(vt_rec_strategy_name(VT_STRATEGY_IN_STOCK), "in_stock");
    cr_assert_str_eq(vt_rec_strategy_name(VT_STRATEGY_EMPTY), "empty");
}


Test(recommend, request_init_defaults)
{
    struct vt_rec_request req;

    memset(&req, 0x5A, sizeof req);
    vt_rec_request_init(&req, 7);
    cr_assert_eq(req.placement, VT_PLACEMENT_HOME);
    cr_assert_eq(req.product, VT_CATALOG_NONE);
    cr_assert_eq(req.n_categories, 0);
    cr_assert_eq(req.n_brands, 0);
    cr_assert_eq(req.gender, VT_GENDER_UNKNOWN);
    cr_assert_lt(req.price_min, 0);
    cr_assert_lt(req.price_max, 0);
    cr_assert_eq(req.limit, 7);
    cr_assert_eq(req.n_exclude, 0);
    cr_assert_not(req.control);
}


/* ---- home: affinities, neighbours of recent views, trending ---- */

Test(recommend, personalized_order_follows_affinities)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
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
        cr_assert_eq(f.result.items[i].category, category_of(&f, "hair"));
    }
    for (size_t i = 1; i < 5; i++)
        cr_assert_geq(f.result.items[i - 1].score, f.result.items[i].score);
    fixture_free(&f);
}


Test(recommend, short_personal_list_filled_from_popular)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    like_category(&f, "hair", 10);
    like_category(&f, "nails", 2);

    run(&f, true);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_PERSONALIZED_TRENDING);
    cr_assert_eq(f.result.n, 10);
    cr_assert_str_eq(id_at(&f, 5), "n1", "the weaker category follows the stronger one");
    cr_assert_str_eq(id_at(&f, 9), "p1", "the most popular product fills the list");
    cr_assert(f.result.items[9].reasons & VT_REASON_POPULAR);
    cr_assert_not(f.result.items[9].reasons & VT_REASON_CATEGORY);
    cr_assert_not(f.result.items[0].reasons & VT_REASON_POPULAR);
    fixture_free(&f);
}


Test(recommend, brand_affinity_ranks_first)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
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
    fixture_free(&f);
}


Test(recommend, price_tier_reason)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    like_category(&f, "perfume", 1);
    like_tier(&f, "luxury", 5);
    like_tier(&f, "mid", 1);
    f.req.limit = 2;

    run(&f, true);
    cr_assert_eq(f.result.n, 2);
    for (size_t i = 0; i < 2; i++)
        cr_assert(f.result.items[i].reasons & VT_REASON_PRICE_TIER, "%s", id_at(&f, i));
    fixture_free(&f);
}


Test(recommend, home_blends_recent_view_neighbors)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    like_category(&f, "nails", 1);
    add_recent(&f, "p2");
    add_neighbor(&f, "p2", "h5", 4, 0);
    add_neighbor(&f, "p2", "s2", 2, 0);

    run(&f, true);
    cr_assert_str_eq(id_at(&f, 0), "h5", "the strongest neighbour of the recent view leads");
    cr_assert(f.result.items[0].reasons & VT_REASON_SIMILAR);
    cr_assert_eq(f.result.items[0].via, index_of(&f, "p2"));
    int s2 = position_of(&f, "s2");
    cr_assert_geq(s2, 0, "the weaker neighbour is a candidate too");
    cr_assert(f.result.items[s2].reasons & VT_REASON_SIMILAR);
    cr_assert_eq(f.result.items[s2].via, index_of(&f, "p2"));
    cr_assert_lt(position_of(&f, "n1"), s2, "a liked category beats a weak neighbour");
    cr_assert_eq(f.result.strategy, VT_STRATEGY_PERSONALIZED_TRENDING);
    fixture_free(&f);
}


Test(recommend, newer_views_weigh_more)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    add_recent(&f, "n4");
    add_recent(&f, "n3");
    add_neighbor(&f, "n4", "h3", 1, 0);
    add_neighbor(&f, "n3", "h2", 1, 0);

    run(&f, true);
    cr_assert_str_eq(id_at(&f, 0), "h3", "the neighbour of the newest view leads");
    cr_assert_str_eq(id_at(&f, 1), "h2");
    cr_assert_eq(f.result.items[0].via, index_of(&f, "n4"));
    cr_assert_eq(f.result.items[1].via, index_of(&f, "n3"));
    cr_assert_gt(f.result.items[0].score, f.result.items[1].score);
    fixture_free(&f);
}


Test(recommend, neighbors_of_several_views_add_up)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    add_recent(&f, "n4");
    add_recent(&f, "n3");
    add_neighbor(&f, "n4", "h3", 2, 0);
    add_neighbor(&f, "n4", "h2", 1, 0);
    add_neighbor(&f, "n3", "h2", 1, 0);

    run(&f, true);
    /* h2: 0.5 from n4 and 0.7 from n3, capped at 1, beats h3's 1 by its popularity. */
    cr_assert_str_eq(id_at(&f, 0), "h2");
    cr_assert_eq(f.result.items[0].via, index_of(&f, "n3"), "via names the larger share");
    fixture_free(&f);
}


Test(recommend, neighbor_reasons_name_the_relation)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    add_recent(&f, "h1");
    add_neighbor(&f, "h1", "h2", 3, 0);
    add_neighbor(&f, "h1", "n4", 0, 2);
    add_neighbor(&f, "h1", "s2", 1, 1);

    run(&f, true);
    int h2 = position_of(&f, "h2"), n4 = position_of(&f, "n4"), s2 = position_of(&f, "s2");
    cr_assert_geq(h2, 0);
    cr_assert_geq(n4, 0);
    cr_assert_geq(s2, 0);
    cr_assert_eq(f.result.items[h2].reasons & (VT_REASON_SIMILAR | VT_REASON_BOUGHT_TOGETHER),
                 VT_REASON_SIMILAR);
    cr_assert_eq(f.result.items[n4].reasons & (VT_REASON_SIMILAR | VT_REASON_BOUGHT_TOGETHER),
                 VT_REASON_BOUGHT_TOGETHER);
    cr_assert_eq(f.result.items[s2].reasons & (VT_REASON_SIMILAR | VT_REASON_BOUGHT_TOGETHER),
                 VT_REASON_SIMILAR | VT_REASON_BOUGHT_TOGETHER);
    for (int i = 0; i < 3; i++) {
        int at = (int[]){h2, n4, s2}[i];
        cr_assert_eq(f.result.items[at].via, index_of(&f, "h1"));
    }
    fixture_free(&f);
}


Test(recommend, neighbor_and_affinity_blend)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    like_category(&f, "hair", 1);
    add_recent(&f, "p1");
    add_neighbor(&f, "p1", "h4", 1, 0);
    add_neighbor(&f, "p1", "n4", 1, 0);

    run(&f, true);
    cr_assert_str_eq(id_at(&f, 0), "h4", "liked category and neighbour beat either alone");
    cr_assert_eq(f.result.items[0].reasons & (VT_REASON_CATEGORY | VT_REASON_SIMILAR),
                 VT_REASON_CATEGORY | VT_REASON_SIMILAR);
    cr_assert_str_eq(id_at(&f, 1), "n4", "a full-strength neighbour beats a category alone");
    fixture_free(&f);
}


Test(recommend, search_uses_recent_view_neighbors)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    like_category(&f, "nails", 10);
    add_recent(&f, "h1");
    add_neighbor(&f, "h1", "p2", 1, 0);
    f.req.placement = VT_PLACEMENT_SEARCH;

    run(&f, true);
    cr_assert_str_eq(id_at(&f, 0), "p2");
    cr_assert(f.result.items[0].reasons & VT_REASON_SIMILAR);
    cr_assert_eq(f.result.items[0].via, index_of(&f, "h1"));
    cr_assert_geq(position_of(&f, "n1"), 1, "the liked category follows");
    fixture_free(&f);
}


/* ---- product, cart and category placements ---- */

Test(recommend, product_page_neighbors_first)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    like_brand(&f, "Delta", 5);
    add_recent(&f, "n3");
    add_neighbor(&f, "n3", "n4", 9, 9);
    add_neighbor(&f, "h2", "p1", 5, 0);
    add_neighbor(&f, "h2", "s2", 0, 1);
    f.req.placement = VT_PLACEMENT_PRODUCT;
    f.req.product = index_of(&f, "h2");

    run(&f, true);
    cr_assert_lt(position_of(&f, "h2"), 0, "the page product is never served");
    /* The page product's neighbours count fully, the recent view's (n3 -> n4) at half
     * weight, so n4 lands between the page's co-view and its co-purchase. */
    const char *expected[] = {"p1", "n4", "s2", "h5", "h1", "h3", "h4"};
    for (size_t i = 0; i < 7; i++)
        cr_assert_str_eq(id_at(&f, i), expected[i], "position %zu", i);
    cr_assert(f.result.items[0].reasons & VT_REASON_SIMILAR);
    cr_assert_eq(f.result.items[0].via, f.req.product);
    cr_assert(f.result.items[1].reasons & VT_REASON_SIMILAR);
    cr_assert_eq(f.result.items[1].via, index_of(&f, "n3"), "n4 comes from the recent view");
    cr_assert(f.result.items[2].reasons & VT_REASON_BOUGHT_TOGETHER);
    for (size_t i = 3; i < 7; i++)
        cr_assert(f.result.items[i].reasons & VT_REASON_SAME_CATEGORY, "position %zu", i);
    cr_assert(f.result.items[3].reasons & VT_REASON_BRAND, "the liked brand breaks the tie");
    fixture_free(&f);
}


Test(recommend, product_page_without_neighbors)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    f.req.placement = VT_PLACEMENT_PRODUCT;
    f.req.product = index_of(&f, "h2");
    f.req.limit = 5;

    run(&f, false);
    const char *expected[] = {"h1", "h3", "h4", "h5", "p1"};
    for (size_t i = 0; i < 5; i++)
        cr_assert_str_eq(id_at(&f, i), expected[i], "same category first, position %zu", i);
    cr_assert_not(f.result.items[4].reasons & VT_REASON_SAME_CATEGORY);
    fixture_free(&f);
}


Test(recommend, cart_complements_first)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    add_to_cart(&f, "n1", 1);
    add_to_cart(&f, "p2", 2);
    add_neighbor(&f, "n1", "n2", 5, 0);
    add_neighbor(&f, "n1", "h1", 0, 1);
    add_neighbor(&f, "p2", "s2", 0, 2);
    add_neighbor(&f, "p2", "h3", 1, 0);
    add_neighbor(&f, "p2", "n1", 3, 0);
    f.req.placement = VT_PLACEMENT_CART;

    run(&f, true);
    const char *expected[] = {"s2", "h1", "n2", "h3"};
    for (size_t i = 0; i < 4; i++)
        cr_assert_str_eq(id_at(&f, i), expected[i], "position %zu", i);
    cr_assert(f.result.items[0].reasons & VT_REASON_BOUGHT_TOGETHER);
    cr_assert_eq(f.result.items[0].via, index_of(&f, "p2"));
    cr_assert_eq(f.result.items[1].via, index_of(&f, "n1"));
    cr_assert(f.result.items[2].reasons & VT_REASON_SIMILAR);
    cr_assert_lt(position_of(&f, "n1"), 0, "cart products are never served");
    cr_assert_lt(position_of(&f, "p2"), 0, "cart products are never served");
    fixture_free(&f);
}


Test(recommend, category_page_personal_then_trending)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    like_brand(&f, "Zeta", 5);
    set_category_trending(&f, "skin", "s2:3");
    set_category_trending(&f, "nails", "n3:2 n2:1");
    f.req.placement = VT_PLACEMENT_CATEGORY;
    f.req.categories[f.req.n_categories++] = category_of(&f, "nails");
    f.req.categories[f.req.n_categories++] = category_of(&f, "skin");

    run(&f, true);
    const char *expected[] = {"n4", "n3", "s2", "n2", "n1"};
    cr_assert_eq(f.result.n, 5, "nails and skin hold five available products");
    for (size_t i = 0; i < 5; i++)
        cr_assert_str_eq(id_at(&f, i), expected[i], "position %zu", i);
    cr_assert(f.result.items[1].reasons & VT_REASON_TRENDING);
    cr_assert(f.result.items[4].reasons & VT_REASON_POPULAR);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_PERSONALIZED_TRENDING);
    fixture_free(&f);
}


/* ---- the fallback chain ---- */

Test(recommend, trending_replaces_popularity)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    set_trending(&f, "s2:9 h5:5 n4:1");
    f.req.limit = 3;

    run(&f, false);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_TRENDING);
    const char *expected[] = {"s2", "h5", "n4"};
    for (size_t i = 0; i < 3; i++) {
        cr_assert_str_eq(id_at(&f, i), expected[i], "position %zu", i);
        cr_assert(f.result.items[i].reasons & VT_REASON_TRENDING);
        cr_assert_not(f.result.items[i].reasons & VT_REASON_POPULAR);
    }

    f.req.limit = 5;
    run(&f, false);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_TRENDING, "popular products fill the rest");
    cr_assert_str_eq(id_at(&f, 3), "p1");
    cr_assert(f.result.items[3].reasons & VT_REASON_POPULAR);
    fixture_free(&f);
}


Test(recommend, popular_when_nothing_trends)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
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
    like_category(&f, "hair", 1);
    run(&f, true);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_POPULAR, "a profile that does not exist is cold");
    cr_assert_str_eq(id_at(&f, 0), "p1");
    fixture_free(&f);
}


Test(recommend, strategy_follows_the_chain)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    like_category(&f, "hair", 1);
    f.req.limit = 5;
    run(&f, true);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_PERSONALIZED);

    f.req.limit = 8;
    run(&f, true);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_PERSONALIZED_TRENDING);

    set_trending(&f, "p2:1");
    run(&f, false);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_TRENDING);

    set_trending(&f, "p3:1");
    run(&f, false);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_POPULAR, "an out-of-stock trend is no trend");

    f.cfg.rec_max_per_brand = 1;
    f.req.n_brands = 1;
    f.req.brands[0] = brand_of(&f, "Alpha");
    run(&f, false);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_IN_STOCK);
    cr_assert_eq(f.result.n, 3);

    f.req.exclude[f.req.n_exclude++] = index_of(&f, "h1");
    f.req.exclude[f.req.n_exclude++] = index_of(&f, "h4");
    f.req.exclude[f.req.n_exclude++] = index_of(&f, "n1");
    run(&f, false);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_EMPTY);
    fixture_free(&f);
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
    fixture_free(&f);
}


Test(recommend, caps_products_per_brand)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
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
    cr_assert_eq(f.result.strategy, VT_STRATEGY_PERSONALIZED_TRENDING);
    fixture_free(&f);
}


Test(recommend, segment_filter_relaxed_last)
{
    struct rec_fixture f;
    fixture_load(&f, "{\"id\":\"a1\",\"brand\":\"M\",\"categories\":[\"hair\"],"
                     "\"gender\":\"male\",\"stock\":5}\n"
                     "{\"id\":\"a2\",\"categories\":[\"nails\"],\"gender\":\"female\","
                     "\"stock\":0}\n");
    set_gender(&f, 4, 10);
    like_category(&f, "nails", 1);

    run(&f, true);
    cr_assert_eq(f.result.segment, VT_SEGMENT_FEMALE);
    cr_assert_eq(f.result.n, 1);
    cr_assert_str_eq(id_at(&f, 0), "a1");
    cr_assert_eq(f.result.strategy, VT_STRATEGY_IN_STOCK);
    cr_assert(f.result.items[0].reasons & VT_REASON_FALLBACK);
    fixture_free(&f);
}


Test(recommend, never_empty_while_product_passes)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    set_trending(&f, "h3:5 s2:4 p3:3");
    add_neighbor(&f, "h1", "n3", 1, 1);
    set_gender(&f, -4, 10);
    like_category(&f, "perfume", 1);
    add_recent(&f, "h1");

    /* Every combination of a few filters and exclusions: the invariants in run() check that
     * the list is empty exactly when no available product passes the hard filters. */
    for (int mask = 0; mask < 64; mask++) {
        vt_rec_request_init(&f.req, 1 + (size_t)(mask % 7));
        f.req.placement = (enum vt_placement)(mask % VT_PLACEMENT_COUNT);
        if (mask & 1)
            f.req.categories[f.req.n_categories++] = category_of(&f, "skin");
        if (mask & 2)
            f.req.brands[f.req.n_brands++] = brand_of(&f, "Kappa");
        if (mask & 4)
            f.req.gender = VT_GENDER_FEMALE;
        if (mask & 8)
            f.req.price_max = 24;
        if (mask & 16)
            f.req.exclude[f.req.n_exclude++] = index_of(&f, "s2");
        if (mask & 32)
            f.req.product = index_of(&f, "h1");
        run(&f, true);
        run(&f, false);
    }
    fixture_free(&f);
}


Test(recommend, empty_catalog_gives_empty)
{
    struct rec_fixture f;
    fixture_load(&f, "");
    like_category(&f, "hair", 1);

    run(&f, true);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_EMPTY);
    cr_assert_eq(f.result.n, 0);
    fixture_free(&f);
}


Test(recommend, nothing_in_stock_gives_empty)
{
    struct rec_fixture f;
    fixture_load(&f, "{\"id\":\"a\",\"stock\":0}\n{\"id\":\"b\",\"stock\":0}\n");
    set_trending(&f, "a:3 b:1");

    run(&f, false);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_EMPTY);
    cr_assert_eq(f.result.n, 0);
    fixture_free(&f);
}


Test(recommend, everything_excluded_gives_empty)
{
    struct rec_fixture f;
    fixture_load(&f, "{\"id\":\"a\"}\n{\"id\":\"b\"}\n{\"id\":\"c\"}\n");
    f.req.exclude[f.req.n_exclude++] = index_of(&f, "a");
    add_to_cart(&f, "b", 1);
    add_purchase(&f, "c");

    run(&f, true);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_EMPTY);
    cr_assert_eq(f.result.n, 0);
    fixture_free(&f);
}


/* ---- filters and exclusions ---- */

Test(recommend, excludes_cart_and_purchased)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    add_to_cart(&f, "p1", 1);
    add_to_cart(&f, "n1", 2);
    add_to_cart(&f, "h1", 0);
    add_purchase(&f, "p2");
    add_purchase(&f, "unknown-id");
    set_trending(&f, "p1:3 p2:2 n1:1");
    f.req.limit = 20;

    run(&f, true);
    cr_assert_lt(position_of(&f, "p1"), 0);
    cr_assert_lt(position_of(&f, "n1"), 0);
    cr_assert_lt(position_of(&f, "p2"), 0);
    cr_assert_geq(position_of(&f, "h1"), 0, "a cart line with quantity 0 was removed");
    cr_assert_eq(f.result.n, REC_MAIN_AVAILABLE - 3);
    fixture_free(&f);
}


Test(recommend, excludes_request_exclusions)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    like_category(&f, "nails", 1);
    f.req.exclude[f.req.n_exclude++] = index_of(&f, "n1");
    f.req.exclude[f.req.n_exclude++] = index_of(&f, "p1");
    f.req.exclude[f.req.n_exclude++] = VT_CATALOG_NONE;
    f.req.limit = 20;

    run(&f, true);
    cr_assert_lt(position_of(&f, "n1"), 0);
    cr_assert_lt(position_of(&f, "p1"), 0);
    cr_assert_str_eq(id_at(&f, 0), "n2");
    cr_assert_eq(f.result.n, REC_MAIN_AVAILABLE - 2);
    fixture_free(&f);
}


Test(recommend, never_serves_out_of_stock)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    like_category(&f, "skin", 10);
    like_category(&f, "perfume", 5);
    like_brand(&f, "Eta", 3);
    like_brand(&f, "iota", 3);
    set_trending(&f, "s1:9 p3:8 h2:1");
    add_recent(&f, "h2");
    add_neighbor(&f, "h2", "s1", 5, 5);
    add_neighbor(&f, "h2", "p3", 4, 0);

    for (size_t limit = 1; limit <= 20; limit++) {
        f.req.limit = limit;
        for (int placement = 0; placement < VT_PLACEMENT_COUNT; placement++) {
            f.req.placement = (enum vt_placement)placement;
            f.req.product = placement == VT_PLACEMENT_PRODUCT ? index_of(&f, "h2")
                                                              : VT_CATALOG_NONE;
            run(&f, true);
            cr_assert_lt(position_of(&f, "s1"), 0, "limit %zu", limit);
            cr_assert_lt(position_of(&f, "p3"), 0, "limit %zu", limit);
        }
    }
    f.req.placement = VT_PLACEMENT_HOME;
    f.req.product = VT_CATALOG_NONE;
    run(&f, true);
    cr_assert_eq(f.result.n, REC_MAIN_AVAILABLE);
    fixture_free(&f);
}


Test(recommend, request_categories_any_of)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    like_category(&f, "nails", 10);
    f.req.categories[f.req.n_categories++] = category_of(&f, "hair");
    f.req.categories[f.req.n_categories++] = category_of(&f, "skin");
    f.req.limit = 20;

    run(&f, true);
    cr_assert_eq(f.result.n, 6, "five hair products and s2");
    cr_assert_geq(position_of(&f, "s2"), 0);
    cr_assert_lt(position_of(&f, "n1"), 0, "a liked category outside the request stays out");

    f.req.n_categories = 1;
    f.req.categories[0] = 999;
    run(&f, true);
    cr_assert_eq(f.result.n, REC_MAIN_AVAILABLE, "an unknown category does not restrict");
    fixture_free(&f);
}


Test(recommend, request_brands_filter)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    set_trending(&f, "p1:5");
    set_brand_trending(&f, "Kappa", "s2:1");
    f.req.brands[f.req.n_brands++] = brand_of(&f, "Alpha");
    f.req.brands[f.req.n_brands++] = brand_of(&f, "kappa");
    f.req.limit = 20;

    run(&f, false);
    cr_assert_eq(f.result.n, 4);
    const char *expected[] = {"s2", "n1", "h1", "h4"};
    for (size_t i = 0; i < 4; i++)
        cr_assert_str_eq(id_at(&f, i), expected[i], "position %zu", i);
    fixture_free(&f);
}


Test(recommend, request_gender_that_or_unisex)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    f.req.gender = VT_GENDER_FEMALE;
    f.req.limit = 20;

    run(&f, true);
    const char *allowed[] = {"h1", "h2", "h5", "n1", "n2", "p2", "s2"};
    cr_assert_eq(f.result.n, 7, "female and unisex products only, unknown gender left out");
    for (size_t i = 0; i < 7; i++)
        cr_assert_geq(position_of(&f, allowed[i]), 0, "%s", allowed[i]);

    set_gender(&f, -4, 10);
    run(&f, true);
    cr_assert_eq(f.result.segment, VT_SEGMENT_MALE);
    cr_assert_eq(f.result.n, 7, "the request's gender replaces the segment's filter");
    fixture_free(&f);
}


Test(recommend, segment_filter_when_confident)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    set_gender(&f, 3, 5);
    f.req.limit = 20;

    run(&f, true);
    cr_assert_eq(f.result.segment, VT_SEGMENT_FEMALE);
    cr_assert_lt(position_of(&f, "p1"), 0);
    cr_assert_lt(position_of(&f, "h3"), 0);
    cr_assert_lt(position_of(&f, "n3"), 0);
    cr_assert_geq(position_of(&f, "h2"), 0, "unisex products stay");
    cr_assert_geq(position_of(&f, "h4"), 0, "products of unknown gender stay");
    cr_assert_eq(f.result.n, REC_MAIN_AVAILABLE - 3);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_POPULAR,
                 "filtered products are not replaced from the other gender");
    cr_assert(f.result.items[0].reasons & VT_REASON_GENDER, "female products get a boost");
    fixture_free(&f);
}


Test(recommend, no_segment_filter_when_unsure)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    set_gender(&f, 3, 1);
    f.req.limit = 20;

    run(&f, true);
    cr_assert_eq(f.result.segment, VT_SEGMENT_UNKNOWN, "one interaction is too little");
    cr_assert_eq(f.result.n, REC_MAIN_AVAILABLE);
    cr_assert_str_eq(id_at(&f, 0), "p1");

    set_gender(&f, 0.1, 50);
    run(&f, true);
    cr_assert_eq(f.result.segment, VT_SEGMENT_UNKNOWN, "p = 0.52 is below the threshold");
    cr_assert_eq(f.result.n, REC_MAIN_AVAILABLE);
    fixture_free(&f);
}


Test(recommend, request_price_range)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    f.req.price_min = 10;
    f.req.price_max = 30;
    f.req.limit = 20;

    run(&f, false);
    const char *inside[] = {"h1", "h2", "h3", "n3", "n4", "s2"};
    cr_assert_eq(f.result.n, 6, "bounds are inclusive");
    for (size_t i = 0; i < 6; i++)
        cr_assert_geq(position_of(&f, inside[i]), 0, "%s", inside[i]);

    f.req.price_min = -1;
    f.req.price_max = 9.99;
    run(&f, false);
    cr_assert_eq(f.result.n, 2);
    fixture_free(&f);
}


Test(recommend, price_filter_skips_unknown_price)
{
    struct rec_fixture f;
    fixture_load(&f, "{\"id\":\"a\",\"price\":4,\"popularity\":1}\n"
                     "{\"id\":\"b\",\"popularity\":9}\n");
    f.req.price_max = 100;

    run(&f, false);
    cr_assert_eq(f.result.n, 1);
    cr_assert_str_eq(id_at(&f, 0), "a");
    fixture_free(&f);
}


/* ---- rotation ---- */

Test(recommend, rotation_lowers_shown_products)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    like_category(&f, "hair", 10);
    f.req.limit = 5;

    run(&f, true);
    cr_assert_str_eq(id_at(&f, 0), "h1");
    double unseen = f.result.items[0].score;

    add_seen(&f, "h1", 2);
    run(&f, true);
    cr_assert_str_eq(id_at(&f, 0), "h1", "two impressions are below rec.rotation_after");

    f.profile.seen[0].count = 3;
    run(&f, true);
    cr_assert_str_eq(id_at(&f, 4), "h1", "the third impression lowers it");
    cr_assert_float_eq(f.result.items[4].score, unseen * 0.7, 1e-6);

    f.profile.seen[0].count = 50;
    f.req.limit = 10;
    run(&f, true);
    int h1 = position_of(&f, "h1");
    cr_assert_geq(h1, 5);
    cr_assert_float_eq(f.result.items[h1].score, unseen * 0.25, 1e-6, "the factor is floored");

    f.cfg.rec_rotation_after = 100;
    run(&f, true);
    cr_assert_str_eq(id_at(&f, 0), "h1", "rec.rotation_after sets the threshold");
    fixture_free(&f);
}


Test(recommend, recently_viewed_ranks_lower)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    like_category(&f, "hair", 10);
    add_recent(&f, "h1");
    f.req.limit = 5;

    run(&f, true);
    cr_assert_str_eq(id_at(&f, 0), "h2");
    cr_assert_geq(position_of(&f, "h1"), 1, "a recently viewed product stays eligible");
    fixture_free(&f);
}


/* ---- control group ---- */

Test(recommend, control_group_percent_bounds)
{
    struct vt_config cfg;
    char id[32];

    vt_config_defaults(&cfg);
    for (int i = 0; i < 1000; i++) {
        int len = snprintf(id, sizeof id, "session-%d", i);
        cfg.rec_control_percent = 0;
        cr_assert_not(vt_rec_in_control_group(&cfg, id, (size_t)len), "%s at 0 %%", id);
        cfg.rec_control_percent = 100;
        cr_assert(vt_rec_in_control_group(&cfg, id, (size_t)len), "%s at 100 %%", id);
    }
}


Test(recommend, control_group_stable_share)
{
    struct vt_config cfg;
    char id[32];
    int in_control = 0;

    vt_config_defaults(&cfg);
    cfg.rec_control_percent = 20;
    for (int i = 0; i < 10000; i++) {
        int len = snprintf(id, sizeof id, "s%d", i * 7919);
        bool first = vt_rec_in_control_group(&cfg, id, (size_t)len);
        cr_assert_eq(vt_rec_in_control_group(&cfg, id, (size_t)len), first, "%s changed group",
                     id);
        in_control += first;
    }
    cr_assert(in_control > 1800 && in_control < 2200, "%d of 10000 sessions at 20 %%",
              in_control);
}


Test(recommend, control_list_is_not_personal)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    like_category(&f, "hair", 10);
    like_brand(&f, "Alpha", 10);
    add_recent(&f, "h1");
    add_neighbor(&f, "h1", "h5", 9, 9);
    add_to_cart(&f, "p1", 1);
    set_gender(&f, 4, 10);
    f.req.control = true;
    f.req.limit = 4;

    run(&f, true);
    cr_assert(f.result.control);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_POPULAR);
    const char *expected[] = {"p2", "n1", "n2", "n3"};
    for (size_t i = 0; i < 4; i++)
        cr_assert_str_eq(id_at(&f, i), expected[i], "catalog popularity, position %zu", i);

    set_trending(&f, "h4:2 p1:1 h3:1");
    run(&f, true);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_TRENDING);
    cr_assert_str_eq(id_at(&f, 0), "h4");
    cr_assert_str_eq(id_at(&f, 1), "h3", "the cart still filters; gender does not");

    f.req.control = false;
    run(&f, true);
    cr_assert_not(f.result.control);
    cr_assert_neq(f.result.strategy, VT_STRATEGY_TRENDING);
    fixture_free(&f);
}


/* ---- robustness ---- */

Test(recommend, limit_respected)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    like_category(&f, "hair", 1);

    for (size_t limit = 1; limit <= VT_REC_LIMIT_MAX; limit++) {
        f.req.limit = limit;
        run(&f, true);
        size_t expected = limit < REC_MAIN_AVAILABLE ? limit : REC_MAIN_AVAILABLE;
        cr_assert_eq(f.result.n, expected, "limit %zu", limit);
    }

    f.req.limit = 0;
    run(&f, true);
    cr_assert_eq(f.result.n, (size_t)f.cfg.rec_limit_default, "limit 0 takes the default");

    f.req.limit = VT_REC_LIMIT_MAX + 50;
    run(&f, true);
    cr_assert_eq(f.result.n, REC_MAIN_AVAILABLE);
    fixture_free(&f);
}


Test(recommend, same_input_same_result)
{
    struct rec_fixture f;
    struct vt_rec_result first;
    fixture_load(&f, rec_main_catalog);
    like_category(&f, "hair", 3);
    like_category(&f, "nails", 3);
    like_brand(&f, "Alpha", 2);
    like_brand(&f, "Zeta", 2);
    like_tier(&f, "mid", 1);
    set_gender(&f, 1.5, 3);
    add_recent(&f, "n4");
    add_neighbor(&f, "n4", "p2", 1, 0);
    set_trending(&f, "h2:4 s2:2");
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
    fixture_free(&f);
}


Test(recommend, odd_profile_values_ignored)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    like_category(&f, "hair", NAN);
    like_category(&f, "nails", -1);
    like_category(&f, "skin", INFINITY);
    like_brand(&f, "Alpha", 0);
    like_brand(&f, "Beta", 1e308);
    like_brand(&f, "beta", 1e308);
    like_tier(&f, "platinum", 4);
    like_tier(&f, "mid", 1e308);
    like_tier(&f, "mid", 1e308);
    add_seen(&f, "h1", -5);
    add_seen(&f, "no-such-id", 100);

    run(&f, true);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_POPULAR);
    cr_assert_str_eq(id_at(&f, 0), "p1");
    for (size_t i = 0; i < f.result.n; i++)
        cr_assert_not(f.result.items[i].reasons & VT_REASON_PRICE_TIER, "%s", id_at(&f, i));
    fixture_free(&f);
}


Test(recommend, stale_aggregate_indexes_ignored)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    set_trending(&f, "?:9 h2:1");
    add_recent(&f, "h1");
    add_neighbor(&f, "h1", "?", 5, 5);
    add_neighbor(&f, "h1", "h1", 4, 4);
    f.req.limit = 3;

    run(&f, true);
    cr_assert_str_eq(id_at(&f, 0), "h2");
    cr_assert_eq(f.result.strategy, VT_STRATEGY_TRENDING,
                 "a neighbour list naming only itself and unknown products gives nothing");
    fixture_free(&f);
}


/* ---- a real catalog, named by VITRINE_TEST_CATALOG ---- */

/* Fill a profile from the catalog itself: categories and brands of products spread over the
 * popularity order, cart, purchases, recent views, impressions and a gender leaning. */
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
        struct vt_scored_name *name;

        if (prod->n_categories > 0 && p->n_categories < VT_PROFILE_TOP_MAX) {
            name = &p->categories[p->n_categories++];
            vt_strlcpy(name->name, vt_catalog_category_name(cat, prod->categories[0]),
                       sizeof name->name);
            name->value = value;
        }
        if (prod->brand != VT_CATALOG_NONE && p->n_brands < VT_PROFILE_TOP_MAX) {
            name = &p->brands[p->n_brands++];
            vt_strlcpy(name->name, vt_catalog_brand_name(cat, prod->brand), sizeof name->name);
            name->value = value;
        }
        if (i < 3)
            vt_strlcpy(p->recent[p->n_recent++].id, prod->id, sizeof p->recent[0].id);
        vt_strlcpy(p->seen[p->n_seen].id, prod->id, sizeof p->seen[0].id);
        p->seen[p->n_seen++].count = (int64_t)i;
    }
    for (size_t i = 0; k != 0 && i < 5 && i * 2 + 1 < n; i++) {
        struct vt_cart_line *line = &p->cart[p->n_cart++];
        vt_strlcpy(line->id, vt_catalog_get(cat, popular[i * 2])->id, sizeof line->id);
        line->quantity = 1;
        vt_strlcpy(p->purchased[p->n_purchased++].id, vt_catalog_get(cat, popular[i * 2 + 1])->id,
                   sizeof p->purchased[0].id);
    }
    if (k != 0) {
        vt_strlcpy(p->tiers[0].name, vt_price_tier_name((enum vt_price_tier)(k % 4)),
                   sizeof p->tiers[0].name);
        p->tiers[0].value = 1;
        p->n_tiers = 1;
    }
}


/* Synthetic aggregates over a real catalog: the 200 most popular products trend in reverse
 * order of index, and each of them has up to 20 neighbours further down the popularity
 * list. */
static void real_aggregates(struct vt_world *w, struct vt_product_list **global,
                            struct vt_neighbors ***neighbors)
{
    size_t n = 0;
    const uint32_t *popular = vt_catalog_popular(w->catalog, &n);
    size_t trending = n < 200 ? n : 200;

    *global = calloc(1, sizeof **global + trending * sizeof(*global)->items[0]);
    *neighbors = calloc(vt_catalog_size(w->catalog), sizeof **neighbors);
    cr_assert(*global != NULL && *neighbors != NULL);
    for (size_t i = 0; i < trending; i++) {
        (*global)->items[i].product = popular[(i * 31) % n];
        (*global)->items[i].score = (float)(trending - i);
    }
    (*global)->n = (uint32_t)trending;

    for (size_t i = 0; i < trending; i++) {
        struct vt_neighbors *list = calloc(1, sizeof *list + 20 * sizeof list->items[0]);
        cr_assert_not_null(list);
        for (size_t j = 0; j < 20 && i + j + 1 < n; j++) {
            list->items[j].product = popular[(i * 7 + j * 13 + 1) % n];
            list->items[j].co_view = (float)(20 - j);
            list->items[j].co_buy = j % 3 == 0 ? 1.0f : 0.0f;
            list->n++;
        }
        (*neighbors)[popular[i]] = list;
    }
    ((struct vt_trending *)w->trending)->global = *global;
    w->neighbors = (const struct vt_neighbors *const *)*neighbors;
}


Test(recommend, real_catalog_stays_within_limits, .timeout = 300)
{
    const char *path = getenv("VITRINE_TEST_CATALOG");
    struct vt_config cfg;
    char err[512] = "";
    static struct vt_profile profile;
    struct vt_rec_request req;
    static struct vt_rec_result result;
    struct vt_product_list *global;
    struct vt_neighbors **neighbors;
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
    struct vt_world *w = vt_world_new_static(cat);
    cr_assert_not_null(w);
    real_aggregates(w, &global, &neighbors);

    for (int k = 0; k < 6; k++) {
        real_profile(cat, k, &profile);
        for (int placement = 0; placement < VT_PLACEMENT_COUNT; placement++) {
            for (size_t l = 0; l < sizeof limits / sizeof limits[0]; l++) {
                const struct vt_product *anchor = vt_catalog_get(cat, popular[(size_t)k * 7 % n]);

                vt_rec_request_init(&req, limits[l]);
                req.placement = (enum vt_placement)placement;
                req.control = k == 5 && l == 1;
                if (placement == VT_PLACEMENT_PRODUCT)
                    req.product = popular[(size_t)k * 7 % n];
                if (placement == VT_PLACEMENT_CATEGORY) {
                    for (uint8_t c = 0; c < anchor->n_categories; c++)
                        req.categories[req.n_categories++] = anchor->categories[c];
                }
                if (k == 3)
                    req.gender = VT_GENDER_FEMALE;
                if (k == 4) {
                    req.price_min = 5;
                    req.price_max = 40;
                }
                for (size_t e = 0; e < 10; e++)
                    req.exclude[req.n_exclude++] = popular[(e * 3 + (size_t)k) % n];

                vt_recommend(w, &cfg, NULL, &profile, &req, &result);
                check_invariants(w, &cfg, &profile, &req, &result, false);
                calls++;
            }
        }
    }
    cr_log_info("checked %zu recommendation calls on %zu products from %s", calls, n, path);

    fixture_detach(w);
    for (size_t i = 0; i < vt_catalog_size(cat); i++)
        free(neighbors[i]);
    free(neighbors);
    free(global);
    vt_world_free(w);
    vt_catalog_free(cat);
}


Test(recommend, recent_views_do_not_relate_to_each_other)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    add_recent(&f, "n3");
    add_recent(&f, "n4");
    add_neighbor(&f, "n3", "n4", 9, 0);
    add_neighbor(&f, "n3", "p1", 3, 0);

    run(&f, true);
    int n4 = position_of(&f, "n4");
    if (n4 >= 0)
        cr_assert_not(f.result.items[n4].reasons & VT_REASON_SIMILAR,
                      "a recent view must not be recommended as similar to another one");
    cr_assert_eq(position_of(&f, "p1"), 0, "the unseen neighbour leads");
    cr_assert(f.result.items[0].reasons & VT_REASON_SIMILAR);
    fixture_free(&f);
}
