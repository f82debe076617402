/*
 * Unit tests of world parts built from aggregates already read (service/live/build.c):
 * trending lists and neighbour lists, without Redis.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../service/live/live_internal.h"
#include "vitrine/catalog.h"
#include "vitrine/config.h"
#include "vitrine/profile.h"
#include "vitrine/world.h"

static struct vt_config test_cfg;

static const char catalog_text[] =
    "{\"id\":\"p0\",\"brand\":\"Aurelle\",\"categories\":[\"skin\"],\"popularity\":5}\n"
    "{\"id\":\"p1\",\"brand\":\"Aurelle\",\"categories\":[\"skin\",\"skin.night\"]}\n"
    "{\"id\":\"p2\",\"brand\":\"Borwick\",\"categories\":[\"hair\"]}\n"
    "{\"id\":\"p3\",\"brand\":\"Borwick\",\"categories\":[\"hair\"]}\n"
    "{\"id\":\"p4\",\"brand\":\"Corvane\",\"categories\":[\"perfume\"]}\n";

/* Refresh time of the tests and the half-lives: one hour for trending, one day for
 * neighbours. */
#define NOW_MS 1800000000000LL
#define TREND_H 3600.0
#define PAIR_H 86400.0


static struct vt_catalog *load_catalog(void)
{
    char err[256] = "";

    vt_config_defaults(&test_cfg);
    FILE *in = fmemopen((void *)catalog_text, sizeof catalog_text - 1, "r");
    cr_assert_not_null(in);
    struct vt_catalog *cat = vt_catalog_load_stream(in, "test", &test_cfg, err, sizeof err);
    fclose(in);
    cr_assert_not_null(cat, "load failed: %s", err);
    return cat;
}


static uint32_t index_of(const struct vt_catalog *cat, const char *id)
{
    uint32_t index = vt_catalog_find(cat, id, strlen(id));

    cr_assert_neq(index, VT_CATALOG_NONE, "product %s not found", id);
    return index;
}


/* A log-score as Redis stores it (profile.h, VT_SCORE_SCALE). */
static double stored(double log_score)
{
    return (double)vt_score_stored(log_score);
}


/* A member whose decayed value at NOW_MS is `value` under half-life h. */
static struct live_member member(const char *id, double value, double h)
{
    struct live_member m = {.id = id, .len = strlen(id)};

    m.score = stored(vt_decay_log_score(value, NOW_MS, h));
    return m;
}


Test(world_build, trending_maps_ids_and_decays)
{
    struct vt_catalog *cat = load_catalog();
    /* Scores written at different times decay to NOW_MS: weight 8 one hour ago is worth 4
     * now, weight 3 now is worth 3. */
    struct live_member global[] = {
        {.id = "p2",
         .len = 2,
         .score = stored(vt_decay_log_score(8, NOW_MS - 3600000, TREND_H))},
        member("unknown", 3.5, TREND_H),
        member("p0", 3, TREND_H),
        member("p4", 1, TREND_H),
    };
    struct live_trending_input in = {.global = {global, 4}};
    struct vt_trending *t = live_trending_build(cat, &in, NOW_MS, TREND_H);

    cr_assert_not_null(t);
    cr_assert_eq(t->global->n, 3, "the unknown product is dropped");
    cr_assert_eq(t->global->items[0].product, index_of(cat, "p2"));
    cr_assert_float_eq(t->global->items[0].score, 4.0f, 1e-4);
    cr_assert_eq(t->global->items[1].product, index_of(cat, "p0"));
    cr_assert_float_eq(t->global->items[1].score, 3.0f, 1e-4);
    cr_assert_eq(t->global->items[2].product, index_of(cat, "p4"));
    cr_assert_eq(t->n_categories, vt_catalog_stats(cat)->categories);
    cr_assert_eq(t->n_brands, vt_catalog_stats(cat)->brands);
    live_trending_free(t);
    vt_catalog_free(cat);
}


Test(world_build, trending_groups_by_category_and_brand)
{
    struct vt_catalog *cat = load_catalog();
    struct live_member hair[] = {member("p3", 2, TREND_H), member("p2", 1, TREND_H)};
    struct live_member borwick[] = {member("p2", 5, TREND_H)};
    struct live_member unknown[] = {member("p0", 1, TREND_H)};
    struct live_trend_group groups[] = {
        {.is_brand = false, .name = "hair", .len = 4, .list = {hair, 2}},
        {.is_brand = true, .name = "Borwick", .len = 7, .list = {borwick, 1}},
        {.is_brand = false, .name = "shoes", .len = 5, .list = {unknown, 1}},
    };
    struct live_trending_input in = {.groups = groups, .n_groups = 3};
    struct vt_trending *t = live_trending_build(cat, &in, NOW_MS, TREND_H);
    struct vt_world w = {.catalog = cat, .trending = t};
    uint32_t hair_index = vt_catalog_category_find(cat, "hair", 4);
    uint32_t borwick_index = vt_catalog_brand_find(cat, "Borwick", 7);

    cr_assert_not_null(t);
    cr_assert_eq(t->global->n, 0, "no global list given: an empty one");

    const struct vt_product_list *list = vt_world_trending(&w, hair_index, VT_CATALOG_NONE);
    cr_assert_eq(list->n, 2);
    cr_assert_eq(list->items[0].product, index_of(cat, "p3"));
    cr_assert_eq(list->items[1].product, index_of(cat, "p2"));

    list = vt_world_trending(&w, VT_CATALOG_NONE, borwick_index);
    cr_assert_eq(list->n, 1);
    cr_assert_float_eq(list->items[0].score, 5.0f, 1e-4);

    /* Categories and brands without a list read as empty, never NULL. */
    list = vt_world_trending(&w, vt_catalog_category_find(cat, "skin", 4), VT_CATALOG_NONE);
    cr_assert_eq(list->n, 0);
    list = vt_world_trending(&w, VT_CATALOG_NONE, vt_catalog_brand_find(cat, "Aurelle", 7));
    cr_assert_eq(list->n, 0);
    live_trending_free(t);
    vt_catalog_free(cat);
}


Test(world_build, trending_merges_case_variants)
{
    struct vt_catalog *cat = load_catalog();
    struct live_member lower[] = {member("p2", 2, TREND_H), member("p3", 1, TREND_H)};
    struct live_member upper[] = {member("p3", 4, TREND_H)};
    struct live_trend_group groups[] = {
        {.is_brand = false, .name = "hair", .len = 4, .list = {lower, 2}},
        {.is_brand = false, .name = "HAIR", .len = 4, .list = {upper, 1}},
    };
    struct live_trending_input in = {.groups = groups, .n_groups = 2};
    struct vt_trending *t = live_trending_build(cat, &in, NOW_MS, TREND_H);
    const struct vt_product_list *list = t->by_category[vt_catalog_category_find(cat, "hair", 4)];

    cr_assert_not_null(list);
    cr_assert_eq(list->n, 2);
    cr_assert_eq(list->items[0].product, index_of(cat, "p3"));
    cr_assert_float_eq(list->items[0].score, 5.0f, 1e-4, "values of both keys add up");
    cr_assert_eq(list->items[1].product, index_of(cat, "p2"));
    live_trending_free(t);
    vt_catalog_free(cat);
}


Test(world_build, global_only_shares_group_lists)
{
    struct vt_catalog *cat = load_catalog();
    struct live_member hair[] = {member("p3", 2, TREND_H)};
    struct live_trend_group groups[] = {
        {.is_brand = false, .name = "hair", .len = 4, .list = {hair, 1}}};
    struct live_trending_input in = {.groups = groups, .n_groups = 1};
    struct vt_trending *full = live_trending_build(cat, &in, NOW_MS, TREND_H);
    struct live_member global[] = {member("p1", 6, TREND_H)};
    struct live_zset global_set = {global, 1};
    struct vt_trending *light =
        live_trending_build_global(cat, &global_set, full, NOW_MS + 1000, TREND_H);

    cr_assert_not_null(light);
    cr_assert(live_trending_shares_groups(light, full));
    cr_assert_eq(light->global->n, 1);
    cr_assert_eq(light->global->items[0].product, index_of(cat, "p1"));
    cr_assert_eq(light->n_categories, full->n_categories);
    live_trending_free_shell(light);
    live_trending_free(full);
    vt_catalog_free(cat);
}


Test(world_build, trending_skips_removed_products)
{
    struct vt_catalog *old = load_catalog();
    struct vt_catalog_change removal;
    char reason[128], err[128];

    cr_assert_eq(vt_catalog_change_parse("p0", 2, NULL, 0, &removal, reason, sizeof reason), 0);
    struct vt_catalog *cat = vt_catalog_apply(old, &removal, 1, &test_cfg, NULL, err, sizeof err);
    cr_assert_not_null(cat, "%s", err);
    struct live_member global[] = {member("p0", 3, TREND_H), member("p1", 2, TREND_H)};
    struct live_trending_input in = {.global = {global, 2}};
    struct vt_trending *t = live_trending_build(cat, &in, NOW_MS, TREND_H);

    cr_assert_eq(t->global->n, 1);
    cr_assert_eq(t->global->items[0].product, index_of(cat, "p1"));
    live_trending_free(t);
    vt_catalog_free(old);
    vt_catalog_free(cat);
}


Test(world_build, neighbors_merge_views_and_purchases)
{
    struct vt_catalog *cat = load_catalog();
    uint32_t p0 = index_of(cat, "p0");
    struct live_member views[] = {
        member("p1", 4, PAIR_H), member("p2", 3, PAIR_H), member("p0", 9, PAIR_H),
        member("gone", 8, PAIR_H), member("p3", 1, PAIR_H),
    };
    struct live_member buys[] = {member("p3", 5, PAIR_H), member("p2", 0.5, PAIR_H)};
    struct live_zset co_view = {views, 5}, co_buy = {buys, 2};
    bool oom = false;
    struct vt_neighbors *list =
        live_neighbors_build(cat, p0, &co_view, &co_buy, NOW_MS, PAIR_H, 10, &oom);

    cr_assert_not(oom);
    cr_assert_not_null(list);
    cr_assert_eq(list->n, 3, "the product itself and unknown ids are dropped");
    /* p3: 1 + 5 = 6, p1: 4, p2: 3 + 0.5 = 3.5 */
    cr_assert_eq(list->items[0].product, index_of(cat, "p3"));
    cr_assert_float_eq(list->items[0].co_view, 1.0f, 1e-4);
    cr_assert_float_eq(list->items[0].co_buy, 5.0f, 1e-4);
    cr_assert_eq(list->items[1].product, index_of(cat, "p1"));
    cr_assert_float_eq(list->items[1].co_buy, 0.0f, 1e-9);
    cr_assert_eq(list->items[2].product, index_of(cat, "p2"));
    cr_assert_float_eq(list->items[2].co_view, 3.0f, 1e-4);
    cr_assert_float_eq(list->items[2].co_buy, 0.5f, 1e-4);
    free(list);
    vt_catalog_free(cat);
}


Test(world_build, neighbors_cut_to_max_and_empty_is_null)
{
    struct vt_catalog *cat = load_catalog();
    uint32_t p4 = index_of(cat, "p4");
    struct live_member views[] = {member("p0", 1, PAIR_H), member("p1", 2, PAIR_H),
                                  member("p2", 3, PAIR_H)};
    struct live_member only_unknown[] = {member("x", 1, PAIR_H), member("p4", 1, PAIR_H)};
    struct live_zset co_view = {views, 3}, none = {NULL, 0}, unknown = {only_unknown, 2};
    bool oom = false;
    struct vt_neighbors *list =
        live_neighbors_build(cat, p4, &co_view, &none, NOW_MS, PAIR_H, 2, &oom);

    cr_assert_eq(list->n, 2);
    cr_assert_eq(list->items[0].product, index_of(cat, "p2"));
    cr_assert_eq(list->items[1].product, index_of(cat, "p1"));
    free(list);

    cr_assert_null(live_neighbors_build(cat, p4, &none, &none, NOW_MS, PAIR_H, 2, &oom));
    cr_assert_null(live_neighbors_build(cat, p4, &unknown, &none, NOW_MS, PAIR_H, 2, &oom));
    cr_assert_not(oom);
    vt_catalog_free(cat);
}


Test(world_build, neighbors_equal_strength_order_by_index)
{
    struct vt_catalog *cat = load_catalog();
    struct live_member views[] = {member("p3", 2, PAIR_H), member("p1", 2, PAIR_H),
                                  member("p2", 2, PAIR_H)};
    struct live_zset co_view = {views, 3}, none = {NULL, 0};
    bool oom = false;
    struct vt_neighbors *list = live_neighbors_build(cat, index_of(cat, "p0"), &co_view, &none,
                                                     NOW_MS, PAIR_H, 10, &oom);

    cr_assert_eq(list->n, 3);
    cr_assert_lt(list->items[0].product, list->items[1].product);
    cr_assert_lt(list->items[1].product, list->items[2].product);
    free(list);
    vt_catalog_free(cat);
}


Test(world_build, old_data_is_scaled_instead_of_underflowing)
{
    struct vt_catalog *cat = load_catalog();
    /* Recorded ten years before the refresh: thousands of half-lives. */
    int64_t old = NOW_MS - 10LL * 365 * 86400000;
    struct live_member global[] = {
        {.id = "p2", .len = 2, .score = stored(vt_decay_log_score(4, old, TREND_H))},
        {.id = "p0", .len = 2, .score = stored(vt_decay_log_score(1, old, TREND_H))},
    };
    struct live_trending_input in = {.global = {global, 2}};
    struct vt_trending *t = live_trending_build(cat, &in, NOW_MS, TREND_H);

    cr_assert_not_null(t);
    cr_assert_eq(t->global->n, 2);
    cr_assert_float_eq(t->global->items[0].score, 1.0f, 1e-5, "the strongest becomes 1");
    cr_assert_float_eq(t->global->items[1].score, 0.25f, 1e-5, "ratios are kept");

    struct live_member co_view[] = {{.id = "p3", .len = 2,
                                     .score = stored(vt_decay_log_score(2, old, PAIR_H * 0.01))}};
    struct live_member co_buy[] = {{.id = "p4", .len = 2,
                                    .score = stored(vt_decay_log_score(1, old, PAIR_H * 0.01))}};
    struct live_zset cv = {co_view, 1}, cb = {co_buy, 1};
    bool oom = false;
    struct vt_neighbors *list =
        live_neighbors_build(cat, index_of(cat, "p0"), &cv, &cb, NOW_MS, PAIR_H * 0.01, 10, &oom);
    cr_assert_not_null(list);
    cr_assert_eq(list->n, 2);
    cr_assert_float_eq(list->items[0].co_view, 1.0f, 1e-5);
    cr_assert_float_eq(list->items[1].co_buy, 0.5f, 1e-5, "one scale for both sets");
    free(list);
    live_trending_free(t);
    vt_catalog_free(cat);
}
