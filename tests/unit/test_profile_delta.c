/*
 * What one event changes in its profile: weights, merged names, cart lines, purchases and
 * gender evidence.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "vitrine/profile.h"
#include "vitrine/util.h"

static struct vt_config cfg;
static struct vt_event ev;
static struct vt_profile_delta d;

static void setup(void)
{
    vt_config_defaults(&cfg);
    vt_event_clear(&ev);
    vt_strlcpy(ev.session_id, "s1", sizeof ev.session_id);
    vt_strlcpy(ev.user_id, "u1", sizeof ev.user_id);
    ev.ts_ms = 1767225600000LL;
}


static struct vt_event_item *add_item(const char *id, const char *brand, const char *cat,
                                      enum vt_gender gender, double price, int quantity)
{
    struct vt_event_item *it = &ev.items[ev.n_items++];

    memset(it, 0, sizeof *it);
    vt_strlcpy(it->id, id, sizeof it->id);
    vt_strlcpy(it->brand, brand, sizeof it->brand);
    if (cat != NULL) {
        vt_strlcpy(it->categories[0], cat, sizeof it->categories[0]);
        it->n_categories = 1;
    }
    it->gender = gender;
    it->price = price;
    it->quantity = quantity;
    it->position = -1;
    return it;
}


TestSuite(delta, .init = setup);

Test(delta, view_adds_weighted_interest_and_recent_view)
{
    ev.type = VT_EV_PRODUCT_VIEW;
    add_item("p1", "Aurelle", "perfume", VT_GENDER_FEMALE, 60, 1);
    vt_profile_delta_build(&cfg, &ev, "tag", 3, 17, &d);

    cr_expect_str_eq(d.profile_id, "s1");
    cr_expect_eq(d.partition, 3);
    cr_expect_eq(d.offset, 17);
    cr_assert_eq(d.n_categories, 1);
    cr_expect_float_eq(vt_decay_value(d.categories[0].log_score, ev.ts_ms,
                                      cfg.profile_half_life_s), 1.0, 1e-9);
    cr_assert_eq(d.n_tiers, 1);
    cr_expect_str_eq(d.tiers[0].name, "premium");
    cr_expect_eq(d.n_viewed, 1);
    cr_expect_eq(d.gender_evidence, 1);
    cr_expect_float_eq(d.gender_step, cfg.gender_step, 1e-12);
}


Test(delta, free_sample_adds_no_price_tier)
{
    ev.type = VT_EV_PRODUCT_VIEW;
    add_item("p1", "Aurelle", "perfume", VT_GENDER_FEMALE, 0, 1);
    vt_profile_delta_build(&cfg, &ev, "tag", 0, 1, &d);

    cr_expect_eq(d.n_tiers, 0, "a price of 0 is a sample or gift, not a cheap product");
    cr_expect_eq(d.n_categories, 1);
    cr_expect_eq(d.settled_offset, -1);
}


Test(delta, impression_carries_no_interest)
{
    ev.type = VT_EV_IMPRESSION;
    add_item("p1", "Aurelle", "perfume", VT_GENDER_FEMALE, 60, 1);
    vt_profile_delta_build(&cfg, &ev, "tag", 0, 0, &d);

    cr_expect_eq(d.n_categories, 0);
    cr_expect_eq(d.n_brands, 0);
    cr_expect_eq(d.gender_evidence, 0);
    cr_expect_eq(d.n_viewed, 0);
}


Test(delta, same_brand_in_one_basket_is_merged)
{
    ev.type = VT_EV_ADD_TO_CART;
    add_item("p1", "Norvik", "perfume", VT_GENDER_MALE, 40, 2);
    add_item("p2", "Norvik", "perfume", VT_GENDER_MALE, 40, 0);
    vt_profile_delta_build(&cfg, &ev, "tag", 0, 1, &d);

    cr_assert_eq(d.n_brands, 1);
    cr_expect_float_eq(vt_decay_value(d.brands[0].log_score, ev.ts_ms, cfg.profile_half_life_s),
                       2 * cfg.intent_weight[VT_EV_ADD_TO_CART], 1e-9);
    cr_assert_eq(d.n_cart_add, 2);
    cr_expect_eq(d.cart_add[0].quantity, 2);
    cr_expect_eq(d.cart_add[1].quantity, 1, "a missing quantity counts as one");
    cr_expect_lt(d.gender_step, 0, "men's products push toward male");
}


Test(delta, purchase_records_products_and_revenue)
{
    ev.type = VT_EV_PURCHASE;
    add_item("p1", "Kessa", "hair", VT_GENDER_UNISEX, 7.5, 2);
    add_item("p2", "Kessa", "hair", VT_GENDER_UNISEX, 5, 1);
    vt_profile_delta_build(&cfg, &ev, "tag", 0, 2, &d);

    cr_expect_eq(d.n_purchased, 2);
    cr_expect_float_eq(d.revenue, 20.0, 1e-9);
    cr_expect_eq(d.gender_evidence, 0, "unisex products are no gender evidence");

    ev.order_value = 18.0;
    vt_profile_delta_build(&cfg, &ev, "tag", 0, 2, &d);
    cr_expect_float_eq(d.revenue, 18.0, 1e-9, "the order value wins over the item sum");
}


Test(delta, remove_from_cart_lists_the_products)
{
    ev.type = VT_EV_REMOVE_FROM_CART;
    add_item("p9", "", NULL, VT_GENDER_UNKNOWN, -1, 1);
    vt_profile_delta_build(&cfg, &ev, "tag", 0, 3, &d);

    cr_expect_eq(d.n_cart_remove, 1);
    cr_expect_str_eq(d.cart_remove[0].id, "p9");
    cr_expect_eq(d.cart_remove[0].quantity, 1);

    ev.items[0].quantity = -1;
    vt_profile_delta_build(&cfg, &ev, "tag", 0, 3, &d);
    cr_expect_eq(d.cart_remove[0].quantity, 0, "no quantity: the whole line");
    cr_expect_eq(d.n_tiers, 0, "no price, no tier");
}


Test(delta, user_key_profiles_by_user_id)
{
    char err[256];

    cr_assert_eq(vt_config_set(&cfg, "profile.key", "user", err, sizeof err), 0);
    ev.type = VT_EV_PAGE_VIEW;
    vt_profile_delta_build(&cfg, &ev, "tag", 0, 4, &d);
    cr_expect_str_eq(d.profile_id, "u1");

    ev.user_id[0] = '\0';
    vt_profile_delta_build(&cfg, &ev, "tag", 0, 5, &d);
    cr_expect_str_eq(d.profile_id, "s1", "no user id: fall back to the session");
}


Test(delta, source_tag_separates_topics_and_clusters)
{
    char a[VT_SOURCE_TAG_LEN + 1], b[VT_SOURCE_TAG_LEN + 1], c[VT_SOURCE_TAG_LEN + 1];
    char a2[VT_SOURCE_TAG_LEN + 1], e[VT_SOURCE_TAG_LEN + 1];

    vt_profile_source_tag("cluster-1", "events", "", a);
    vt_profile_source_tag("cluster-1", "events", "", a2);
    vt_profile_source_tag("cluster-1", "events-v2", "", b);
    vt_profile_source_tag("cluster-2", "events", "", c);
    vt_profile_source_tag("cluster-1", "events", "2026-12", e);
    cr_expect_eq(strlen(a), VT_SOURCE_TAG_LEN);
    cr_expect_str_eq(a, a2, "the tag is stable");
    cr_expect_str_neq(a, b);
    cr_expect_str_neq(a, c);
    cr_expect_str_neq(a, e);
}
