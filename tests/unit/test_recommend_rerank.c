/*
 * Unit tests of vt_rerank, vt_trending_query and vt_similar_query (service/recommend/) on
 * the shared inline catalog with aggregates set by the test.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "test_recommend_fixture.h"

#define RERANK_MAX_TEST 16

struct rerank_case {
    struct rec_fixture f;
    uint32_t products[RERANK_MAX_TEST];
    size_t n;
    struct vt_rerank_item out[RERANK_MAX_TEST];
};


static void add_id(struct rerank_case *c, const char *id)
{
    c->products[c->n++] = id == NULL ? VT_CATALOG_NONE : index_of(&c->f, id);
}


static void rerank(struct rerank_case *c, bool with_profile)
{
    vt_rerank(c->f.world, &c->f.cfg, c->f.rules, with_profile ? &c->f.profile : NULL,
              c->products, c->n, c->out);

    /* Every input appears once, with its product and input position. */
    for (size_t i = 0; i < c->n; i++) {
        size_t found = 0;
        for (size_t k = 0; k < c->n; k++) {
            if (c->out[k].input == i) {
                found++;
                uint32_t expected = c->products[i] < vt_catalog_size(c->f.cat) ? c->products[i]
                                                                                : VT_CATALOG_NONE;
                cr_assert_eq(c->out[k].product, expected, "input %zu", i);
            }
        }
        cr_assert_eq(found, 1, "input %zu appears %zu times", i, found);
    }
}


static const char *rerank_id(const struct rerank_case *c, size_t i)
{
    cr_assert_neq(c->out[i].product, VT_CATALOG_NONE, "position %zu is an unknown id", i);
    return vt_catalog_get(c->f.cat, c->out[i].product)->id;
}


Test(rerank, orders_by_personal_score)
{
    struct rerank_case c = {0};
    fixture_load(&c.f, rec_main_catalog);
    like_brand(&c.f, "Gamma", 5);
    like_category(&c.f, "nails", 1);
    add_id(&c, "h1");
    add_id(&c, "h2");
    add_id(&c, "n4");
    add_id(&c, "h3");

    rerank(&c, true);
    cr_assert_str_eq(rerank_id(&c, 0), "n4", "category 0.45 beats brand 0.30");
    cr_assert_str_eq(rerank_id(&c, 1), "h3");
    cr_assert_str_eq(rerank_id(&c, 2), "h1", "ties keep the input order");
    cr_assert_str_eq(rerank_id(&c, 3), "h2");
    cr_assert_gt(c.out[0].score, c.out[1].score);
    cr_assert_eq(c.out[2].score, 0);
    cr_assert_eq(c.out[2].input, 0);
    fixture_free(&c.f);
}


Test(rerank, cold_session_keeps_page_order)
{
    struct rerank_case c = {0};
    fixture_load(&c.f, rec_main_catalog);
    set_trending(&c.f, "s2:9 h5:3");
    const char *ids[] = {"p1", "h5", "n2", "s2", "h4"};
    for (size_t i = 0; i < 5; i++)
        add_id(&c, ids[i]);

    rerank(&c, false);
    for (size_t i = 0; i < 5; i++) {
        cr_assert_str_eq(rerank_id(&c, i), ids[i], "position %zu", i);
        cr_assert_eq(c.out[i].score, 0, "trending is no personal score");
    }
    fixture_free(&c.f);
}


Test(rerank, unknown_ids_last_in_input_order)
{
    struct rerank_case c = {0};
    fixture_load(&c.f, rec_main_catalog);
    like_category(&c.f, "hair", 1);
    add_id(&c, NULL);
    add_id(&c, "n1");
    c.products[c.n++] = 999999;
    add_id(&c, "h3");

    rerank(&c, true);
    cr_assert_str_eq(rerank_id(&c, 0), "h3");
    cr_assert_str_eq(rerank_id(&c, 1), "n1");
    cr_assert_eq(c.out[2].product, VT_CATALOG_NONE);
    cr_assert_eq(c.out[2].input, 0);
    cr_assert_eq(c.out[2].score, 0);
    cr_assert_eq(c.out[3].product, VT_CATALOG_NONE);
    cr_assert_eq(c.out[3].input, 2);
    fixture_free(&c.f);
}


Test(rerank, out_of_stock_after_available)
{
    struct rerank_case c = {0};
    fixture_load(&c.f, rec_main_catalog);
    like_category(&c.f, "skin", 10);
    add_id(&c, "s1");
    add_id(&c, "h1");
    add_id(&c, "s2");
    add_id(&c, "p3");

    rerank(&c, true);
    cr_assert_str_eq(rerank_id(&c, 0), "s2");
    cr_assert_str_eq(rerank_id(&c, 1), "h1");
    cr_assert_str_eq(rerank_id(&c, 2), "s1", "out of stock goes after the available products");
    cr_assert_gt(c.out[2].score, c.out[0].score * 0.9, "its score is kept");
    cr_assert_str_eq(rerank_id(&c, 3), "p3");
    fixture_free(&c.f);
}


Test(rerank, neighbors_of_recent_views_count)
{
    struct rerank_case c = {0};
    fixture_load(&c.f, rec_main_catalog);
    add_recent(&c.f, "h1");
    add_neighbor(&c.f, "h1", "n3", 2, 1);
    add_id(&c, "n1");
    add_id(&c, "n2");
    add_id(&c, "n3");

    rerank(&c, true);
    cr_assert_str_eq(rerank_id(&c, 0), "n3");
    cr_assert_gt(c.out[0].score, 0);
    fixture_free(&c.f);
}


Test(rerank, rotation_and_recent_lower_scores)
{
    struct rerank_case c = {0};
    fixture_load(&c.f, rec_main_catalog);
    like_category(&c.f, "hair", 1);
    add_seen(&c.f, "h1", 5);
    add_recent(&c.f, "h2");
    add_id(&c, "h1");
    add_id(&c, "h2");
    add_id(&c, "h3");

    rerank(&c, true);
    cr_assert_str_eq(rerank_id(&c, 0), "h3");
    cr_assert_str_eq(rerank_id(&c, 1), "h2", "0.5 for a recent view");
    cr_assert_str_eq(rerank_id(&c, 2), "h1", "0.7^3 after five impressions");
    fixture_free(&c.f);
}


Test(rerank, rules_in_rerank_scope)
{
    struct rerank_case c = {0};
    fixture_load(&c.f, rec_main_catalog);
    like_category(&c.f, "hair", 1);
    fixture_rules(&c.f, "{\"rules\":["
                        "{\"name\":\"hide-gamma\",\"action\":\"filter\","
                        "\"match\":{\"brands\":[\"Gamma\"]},\"placements\":[\"rerank\"]},"
                        "{\"name\":\"delta-up\",\"action\":\"boost\",\"factor\":3,"
                        "\"match\":{\"brands\":[\"Delta\"]}},"
                        "{\"name\":\"home-only\",\"action\":\"boost\",\"factor\":50,"
                        "\"match\":{\"brands\":[\"Beta\"]},\"placements\":[\"home\"]}]}");
    add_id(&c, "h3");
    add_id(&c, "h2");
    add_id(&c, "h1");
    add_id(&c, "h5");

    rerank(&c, true);
    cr_assert_str_eq(rerank_id(&c, 0), "h5", "a boost without placements applies");
    cr_assert_str_eq(rerank_id(&c, 1), "h2", "a home-only boost does not");
    cr_assert_str_eq(rerank_id(&c, 2), "h1");
    cr_assert_str_eq(rerank_id(&c, 3), "h3", "a filter rule moves the product to the end");
    fixture_free(&c.f);
}


Test(rerank, duplicates_and_empty_input)
{
    struct rerank_case c = {0};
    fixture_load(&c.f, rec_main_catalog);
    like_brand(&c.f, "Beta", 1);
    add_id(&c, "h1");
    add_id(&c, "h2");
    add_id(&c, "h2");

    rerank(&c, true);
    cr_assert_str_eq(rerank_id(&c, 0), "h2");
    cr_assert_eq(c.out[0].input, 1);
    cr_assert_str_eq(rerank_id(&c, 1), "h2");
    cr_assert_eq(c.out[1].input, 2);

    vt_rerank(c.f.world, &c.f.cfg, NULL, &c.f.profile, c.products, 0, c.out);
    fixture_free(&c.f);
}


/* ---- trending and similar queries ---- */

static const char *scored_id(const struct rec_fixture *f, const struct vt_scored_product *out,
                             size_t i)
{
    return vt_catalog_get(f->cat, out[i].product)->id;
}


Test(queries, trending_filters_and_fill)
{
    struct rec_fixture f;
    struct vt_scored_product out[VT_REC_LIMIT_MAX];
    fixture_load(&f, rec_main_catalog);
    set_trending(&f, "p1:9 h3:8 s1:7 n2:5 h2:4");

    size_t n = vt_trending_query(f.world, VT_CATALOG_NONE, VT_CATALOG_NONE, VT_GENDER_UNKNOWN,
                                 3, out);
    cr_assert_eq(n, 3);
    const char *top[] = {"p1", "h3", "n2"};
    for (size_t i = 0; i < 3; i++)
        cr_assert_str_eq(scored_id(&f, out, i), top[i], "out of stock s1 is skipped");
    cr_assert_float_eq(out[0].score, 9, 1e-6);

    n = vt_trending_query(f.world, VT_CATALOG_NONE, VT_CATALOG_NONE, VT_GENDER_FEMALE, 5, out);
    const char *female[] = {"n2", "h2", "p2", "n1", "h1"};
    cr_assert_eq(n, 5);
    for (size_t i = 0; i < 5; i++)
        cr_assert_str_eq(scored_id(&f, out, i), female[i], "position %zu", i);
    cr_assert_gt(out[1].score, 0);
    cr_assert_eq(out[2].score, 0, "popular fill entries carry score 0");
    fixture_free(&f);
}


Test(queries, trending_by_category_and_brand)
{
    struct rec_fixture f;
    struct vt_scored_product out[VT_REC_LIMIT_MAX];
    fixture_load(&f, rec_main_catalog);
    set_category_trending(&f, "hair", "h3:2 h1:1");

    size_t n = vt_trending_query(f.world, category_of(&f, "hair"), VT_CATALOG_NONE,
                                 VT_GENDER_UNKNOWN, 10, out);
    const char *hair[] = {"h3", "h1", "h2", "h4", "h5"};
    cr_assert_eq(n, 5);
    for (size_t i = 0; i < 5; i++)
        cr_assert_str_eq(scored_id(&f, out, i), hair[i], "position %zu", i);

    n = vt_trending_query(f.world, category_of(&f, "hair"), brand_of(&f, "Alpha"),
                          VT_GENDER_UNKNOWN, 10, out);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(scored_id(&f, out, 0), "h1");
    cr_assert_str_eq(scored_id(&f, out, 1), "h4");

    n = vt_trending_query(f.world, VT_CATALOG_NONE, brand_of(&f, "Alpha"), VT_GENDER_UNKNOWN,
                          10, out);
    cr_assert_eq(n, 3, "no brand trends: catalog popularity of the brand");
    cr_assert_str_eq(scored_id(&f, out, 0), "n1");
    fixture_free(&f);
}


Test(queries, trending_limit_capped)
{
    struct rec_fixture f;
    static struct vt_scored_product out[2 * VT_REC_LIMIT_MAX];
    fixture_load(&f, rec_main_catalog);

    size_t n = vt_trending_query(f.world, VT_CATALOG_NONE, VT_CATALOG_NONE, VT_GENDER_UNKNOWN,
                                 2 * VT_REC_LIMIT_MAX, out);
    cr_assert_eq(n, REC_MAIN_AVAILABLE);
    cr_assert_str_eq(scored_id(&f, out, 0), "p1");
    cr_assert_eq(vt_trending_query(f.world, VT_CATALOG_NONE, VT_CATALOG_NONE,
                                   VT_GENDER_UNKNOWN, 0, out),
                 0);
    fixture_free(&f);
}


Test(queries, similar_neighbors_then_category)
{
    struct rec_fixture f;
    struct vt_rec_item out[VT_REC_LIMIT_MAX];
    size_t from_neighbors = 99;
    fixture_load(&f, rec_main_catalog);
    add_neighbor(&f, "h2", "p1", 5, 0);
    add_neighbor(&f, "h2", "s1", 3, 0);
    add_neighbor(&f, "h2", "n4", 0, 2);
    add_neighbor(&f, "h2", "h2", 1, 0);
    set_category_trending(&f, "hair", "h5:3 h2:2");

    size_t n = vt_similar_query(f.world, index_of(&f, "h2"), 10, out, &from_neighbors);
    cr_assert_eq(from_neighbors, 2, "s1 is out of stock and h2 is the product itself");
    const char *expected[] = {"p1", "n4", "h5", "h1", "h3", "h4"};
    cr_assert_eq(n, 6);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(vt_catalog_get(f.cat, out[i].product)->id, expected[i],
                         "position %zu", i);
    cr_assert_eq(out[0].reasons, VT_REASON_SIMILAR);
    cr_assert_eq(out[0].via, index_of(&f, "h2"));
    cr_assert_float_eq(out[0].score, 5, 1e-6);
    cr_assert_eq(out[1].reasons, VT_REASON_BOUGHT_TOGETHER);
    cr_assert_eq(out[2].reasons, VT_REASON_SAME_CATEGORY | VT_REASON_TRENDING);
    cr_assert_eq(out[3].reasons, VT_REASON_SAME_CATEGORY | VT_REASON_POPULAR);
    cr_assert_eq(out[3].via, VT_CATALOG_NONE);

    n = vt_similar_query(f.world, index_of(&f, "h2"), 1, out, &from_neighbors);
    cr_assert_eq(n, 1);
    cr_assert_eq(from_neighbors, 1);
    fixture_free(&f);
}


Test(queries, similar_unknown_product)
{
    struct rec_fixture f;
    struct vt_rec_item out[4];
    size_t from_neighbors = 99;
    fixture_load(&f, rec_main_catalog);

    cr_assert_eq(vt_similar_query(f.world, VT_CATALOG_NONE, 4, out, &from_neighbors), 0);
    cr_assert_eq(from_neighbors, 0);
    cr_assert_eq(vt_similar_query(f.world, 999999, 4, out, &from_neighbors), 0);

    size_t n = vt_similar_query(f.world, index_of(&f, "s2"), 4, out, &from_neighbors);
    cr_assert_eq(n, 0, "s2's category has no other available product");
    fixture_free(&f);
}
