/*
 * Unit tests of alert counting (service/alerts/counting.c): which rules an enriched event
 * matches, the amount, group and dimensions of each increment, and the referrer host.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vitrine/alerts.h"
#include "vitrine/util.h"

static struct vt_alert_rules rules;
static struct vt_event ev;
static struct vt_alert_increment out[VT_ALERT_INCREMENTS_MAX];


static void reset(void)
{
    memset(&rules, 0, sizeof rules);
    vt_event_clear(&ev);
    ev.type = VT_EV_PURCHASE;
    vt_strlcpy(ev.session_id, "s1", sizeof ev.session_id);
}


TestSuite(alert_counting, .init = reset);


/* Append a rule counting one event type (or any when type is VT_EV_TYPE_COUNT). */
static struct vt_alert_rule *add_rule(enum vt_event_type type, enum vt_alert_aggregate aggregate,
                                      enum vt_alert_dimension group_by)
{
    struct vt_alert_rule *r = &rules.rules[rules.n++];

    memset(r, 0, sizeof *r);
    snprintf(r->name, sizeof r->name, "rule-%zu", rules.n - 1);
    r->any_event = type == VT_EV_TYPE_COUNT;
    r->event = type == VT_EV_TYPE_COUNT ? VT_EV_PAGE_VIEW : type;
    r->aggregate = aggregate;
    r->group_by = group_by;
    r->window_s = 300;
    r->condition = VT_ALERT_ABOVE;
    r->threshold = 10;
    r->resolve_after = 3;
    return r;
}


static void set_filter(struct vt_alert_rule *r, enum vt_alert_dimension dim, const char *value)
{
    vt_strlcpy(r->filter[dim], value, sizeof r->filter[dim]);
}


/* Append a product with a brand, up to two categories, a price (-1: none) and a quantity
 * (-1: none). */
static struct vt_event_item *add_item(const char *id, const char *brand, const char *category,
                                      const char *subcategory, double price, int32_t quantity)
{
    struct vt_event_item *item = &ev.items[ev.n_items++];

    memset(item, 0, sizeof *item);
    vt_strlcpy(item->id, id, sizeof item->id);
    vt_strlcpy(item->brand, brand, sizeof item->brand);
    if (category != NULL)
        vt_strlcpy(item->categories[item->n_categories++], category,
                   sizeof item->categories[0]);
    if (subcategory != NULL)
        vt_strlcpy(item->categories[item->n_categories++], subcategory,
                   sizeof item->categories[0]);
    item->price = price;
    item->quantity = quantity;
    item->position = -1;
    return item;
}


static size_t count(void)
{
    return vt_alert_increments(&rules, &ev, out, sizeof out / sizeof out[0]);
}


/* ---- event types ---- */

Test(alert_counting, one_increment_per_product)
{
    add_rule(VT_EV_PURCHASE, VT_ALERT_COUNT, VT_DIM_NONE);
    add_item("p1", "Lumi", "makeup", "makeup.eyes", 12.5, 2);
    add_item("p2", "Nordlys", "skincare", NULL, 30, 1);

    cr_assert_eq(count(), 2);
    cr_assert_eq(out[0].rule, 0);
    cr_assert_float_eq(out[0].amount, 1, 1e-12);
    cr_assert_str_eq(out[0].group, "");
    cr_assert_str_eq(out[0].dims[VT_DIM_PRODUCT], "p1");
    cr_assert_str_eq(out[1].dims[VT_DIM_PRODUCT], "p2");
    cr_assert_float_eq(out[1].amount, 1, 1e-12);
}


Test(alert_counting, other_type_not_counted)
{
    add_rule(VT_EV_ADD_TO_CART, VT_ALERT_COUNT, VT_DIM_NONE);
    add_item("p1", "Lumi", NULL, NULL, 10, 1);

    cr_assert_eq(count(), 0);
    ev.type = VT_EV_ADD_TO_CART;
    cr_assert_eq(count(), 1);
}


Test(alert_counting, any_matches_every_type)
{
    add_rule(VT_EV_TYPE_COUNT, VT_ALERT_COUNT, VT_DIM_NONE);
    add_item("p1", "Lumi", NULL, NULL, 10, 1);

    for (int t = 0; t < VT_EV_TYPE_COUNT; t++) {
        ev.type = (enum vt_event_type)t;
        cr_assert_eq(count(), 1, "type %s", vt_event_type_name(ev.type));
    }
    ev.type = VT_EV_TYPE_COUNT;
    cr_assert_eq(count(), 0, "a skipped record of unknown type counts for no rule");
}


Test(alert_counting, rules_counted_in_order)
{
    add_rule(VT_EV_PRODUCT_VIEW, VT_ALERT_COUNT, VT_DIM_NONE);
    add_rule(VT_EV_PURCHASE, VT_ALERT_COUNT, VT_DIM_NONE);
    add_rule(VT_EV_PURCHASE, VT_ALERT_SUM_VALUE, VT_DIM_NONE);
    add_item("p1", "Lumi", NULL, NULL, 10, 3);

    cr_assert_eq(count(), 2);
    cr_assert_eq(out[0].rule, 1);
    cr_assert_float_eq(out[0].amount, 1, 1e-12);
    cr_assert_eq(out[1].rule, 2);
    cr_assert_float_eq(out[1].amount, 30, 1e-12);
}


Test(alert_counting, output_bounded_by_max)
{
    add_rule(VT_EV_PURCHASE, VT_ALERT_COUNT, VT_DIM_NONE);
    add_rule(VT_EV_PURCHASE, VT_ALERT_COUNT, VT_DIM_NONE);
    add_item("p1", "Lumi", NULL, NULL, 10, 1);
    add_item("p2", "Lumi", NULL, NULL, 10, 1);

    struct vt_alert_increment few[3];
    cr_assert_eq(vt_alert_increments(&rules, &ev, few, 3), 3);
    cr_assert_eq(few[2].rule, 1);
    cr_assert_str_eq(few[2].dims[VT_DIM_PRODUCT], "p1");
    cr_assert_eq(vt_alert_increments(&rules, &ev, few, 0), 0);

    struct vt_alert_rules none = {0};
    cr_assert_eq(vt_alert_increments(&none, &ev, out, 10), 0);
}


Test(alert_counting, maximum_fits_full_event)
{
    for (int i = 0; i < VT_ALERT_RULES_MAX; i++)
        add_rule(VT_EV_PURCHASE, VT_ALERT_COUNT, VT_DIM_NONE);
    for (int i = 0; i < VT_EVENT_ITEMS_MAX; i++) {
        char id[16];
        snprintf(id, sizeof id, "p%d", i);
        add_item(id, "Lumi", NULL, NULL, 1, 1);
    }

    cr_assert_eq(count(), VT_ALERT_INCREMENTS_MAX);
    cr_assert_eq(out[VT_ALERT_INCREMENTS_MAX - 1].rule, VT_ALERT_RULES_MAX - 1);
    cr_assert_str_eq(out[VT_ALERT_INCREMENTS_MAX - 1].dims[VT_DIM_PRODUCT], "p49");
}


/* ---- amounts ---- */

Test(alert_counting, sum_quantity_amounts)
{
    add_rule(VT_EV_PURCHASE, VT_ALERT_SUM_QUANTITY, VT_DIM_NONE);
    add_item("p1", "Lumi", NULL, NULL, 10, 3);
    add_item("p2", "Lumi", NULL, NULL, 10, -1);
    add_item("p3", "Lumi", NULL, NULL, 10, 0);

    cr_assert_eq(count(), 3);
    cr_assert_float_eq(out[0].amount, 3, 1e-12);
    cr_assert_float_eq(out[1].amount, 1, 1e-12, "a missing quantity counts as 1");
    cr_assert_float_eq(out[2].amount, 1, 1e-12, "a quantity of 0 counts as 1");
}


Test(alert_counting, sum_value_amounts)
{
    add_rule(VT_EV_PURCHASE, VT_ALERT_SUM_VALUE, VT_DIM_NONE);
    add_item("p1", "Lumi", NULL, NULL, 12.5, 2);
    add_item("p2", "Lumi", NULL, NULL, -1, 4);
    add_item("p3", "Lumi", NULL, NULL, 7, -1);

    cr_assert_eq(count(), 2, "a product without a price adds nothing");
    cr_assert_str_eq(out[0].dims[VT_DIM_PRODUCT], "p1");
    cr_assert_float_eq(out[0].amount, 25, 1e-12);
    cr_assert_str_eq(out[1].dims[VT_DIM_PRODUCT], "p3");
    cr_assert_float_eq(out[1].amount, 7, 1e-12);
}


Test(alert_counting, huge_amounts_bounded)
{
    add_rule(VT_EV_PURCHASE, VT_ALERT_SUM_VALUE, VT_DIM_NONE);
    add_item("p1", "Lumi", NULL, NULL, 1e308, 3);

    cr_assert_eq(count(), 1);
    cr_assert_float_eq(out[0].amount, VT_ALERT_AMOUNT_MAX, 1);
}


Test(alert_counting, order_without_products)
{
    add_rule(VT_EV_PURCHASE, VT_ALERT_COUNT, VT_DIM_NONE);
    add_rule(VT_EV_PURCHASE, VT_ALERT_SUM_QUANTITY, VT_DIM_NONE);
    add_rule(VT_EV_PURCHASE, VT_ALERT_SUM_VALUE, VT_DIM_NONE);
    ev.order_value = 59.9;

    cr_assert_eq(count(), 2);
    cr_assert_eq(out[0].rule, 0);
    cr_assert_float_eq(out[0].amount, 1, 1e-12);
    cr_assert_eq(out[1].rule, 2, "sum_quantity has no quantity to add");
    cr_assert_float_eq(out[1].amount, 59.9, 1e-12, "sum_value takes the order value");

    ev.order_value = -1;
    cr_assert_eq(count(), 1);
    cr_assert_eq(out[0].rule, 0);
}


/* ---- filters ---- */

Test(alert_counting, brand_filter_ignores_case_and_spaces)
{
    struct vt_alert_rule *r = add_rule(VT_EV_PURCHASE, VT_ALERT_COUNT, VT_DIM_NONE);
    set_filter(r, VT_DIM_BRAND, "Lumi Beauty");
    add_item("p1", " lumi BEAUTY ", NULL, NULL, 10, 1);
    add_item("p2", "Lumi", NULL, NULL, 10, 1);
    add_item("p3", "", NULL, NULL, 10, 1);
    add_item("p4", "Lumi Beauty Pro", NULL, NULL, 10, 1);

    cr_assert_eq(count(), 1);
    cr_assert_str_eq(out[0].dims[VT_DIM_PRODUCT], "p1");
    cr_assert_str_eq(out[0].dims[VT_DIM_BRAND], "lumi BEAUTY", "the value is trimmed only");
}


Test(alert_counting, product_filter)
{
    struct vt_alert_rule *r = add_rule(VT_EV_ADD_TO_CART, VT_ALERT_SUM_QUANTITY, VT_DIM_NONE);
    set_filter(r, VT_DIM_PRODUCT, "SKU-7");
    ev.type = VT_EV_ADD_TO_CART;
    add_item("sku-7", "Lumi", NULL, NULL, 10, 2);
    add_item("SKU-70", "Lumi", NULL, NULL, 10, 1);

    cr_assert_eq(count(), 1);
    cr_assert_str_eq(out[0].dims[VT_DIM_PRODUCT], "sku-7");
    cr_assert_float_eq(out[0].amount, 2, 1e-12);
}


Test(alert_counting, category_filter_matches_subcategories)
{
    struct vt_alert_rule *r = add_rule(VT_EV_PURCHASE, VT_ALERT_COUNT, VT_DIM_NONE);
    set_filter(r, VT_DIM_CATEGORY, "makeup");
    add_item("equal", "A", "Makeup", NULL, 1, 1);
    add_item("below", "A", "skincare", "MAKEUP.eyes", 1, 1);
    add_item("prefix", "A", "makeupx", "make", 1, 1);
    add_item("none", "A", NULL, NULL, 1, 1);
    add_item("deeper", "A", "makeup.eyes.mascara", NULL, 1, 1);

    cr_assert_eq(count(), 3);
    cr_assert_str_eq(out[0].dims[VT_DIM_PRODUCT], "equal");
    cr_assert_str_eq(out[1].dims[VT_DIM_PRODUCT], "below");
    cr_assert_str_eq(out[2].dims[VT_DIM_PRODUCT], "deeper");

    set_filter(r, VT_DIM_CATEGORY, "makeup.eyes");
    cr_assert_eq(count(), 2);
    cr_assert_str_eq(out[0].dims[VT_DIM_PRODUCT], "below");
    cr_assert_str_eq(out[1].dims[VT_DIM_PRODUCT], "deeper");
}


Test(alert_counting, campaign_filter)
{
    struct vt_alert_rule *r = add_rule(VT_EV_PURCHASE, VT_ALERT_COUNT, VT_DIM_NONE);
    set_filter(r, VT_DIM_CAMPAIGN, "insta.summer");
    add_item("p1", "A", NULL, NULL, 1, 1);

    cr_assert_eq(count(), 0, "an event without a campaign");
    vt_strlcpy(ev.campaign, "  Insta.Summer ", sizeof ev.campaign);
    cr_assert_eq(count(), 1);
    cr_assert_str_eq(out[0].dims[VT_DIM_CAMPAIGN], "Insta.Summer");
    vt_strlcpy(ev.campaign, "insta.summer.b", sizeof ev.campaign);
    cr_assert_eq(count(), 0);
}


Test(alert_counting, referrer_filter_by_host)
{
    struct vt_alert_rule *r = add_rule(VT_EV_TYPE_COUNT, VT_ALERT_COUNT, VT_DIM_NONE);
    set_filter(r, VT_DIM_REFERRER, "instagram.com");
    ev.type = VT_EV_PAGE_VIEW;

    vt_strlcpy(ev.referrer, "https://www.Instagram.com/p/abc?utm=1", sizeof ev.referrer);
    cr_assert_eq(count(), 1);
    cr_assert_str_eq(out[0].dims[VT_DIM_REFERRER], "instagram.com");

    vt_strlcpy(ev.referrer, "https://l.instagram.com/", sizeof ev.referrer);
    cr_assert_eq(count(), 0, "another host");
    ev.referrer[0] = '\0';
    cr_assert_eq(count(), 0, "no referrer");
}


Test(alert_counting, filters_combine)
{
    struct vt_alert_rule *r = add_rule(VT_EV_PURCHASE, VT_ALERT_COUNT, VT_DIM_NONE);
    set_filter(r, VT_DIM_BRAND, "lumi");
    set_filter(r, VT_DIM_CATEGORY, "makeup");
    set_filter(r, VT_DIM_CAMPAIGN, "tv");
    add_item("p1", "Lumi", "makeup", NULL, 1, 1);
    add_item("p2", "Lumi", "skincare", NULL, 1, 1);
    add_item("p3", "Nordlys", "makeup", NULL, 1, 1);

    cr_assert_eq(count(), 0, "the campaign does not match");
    vt_strlcpy(ev.campaign, "TV", sizeof ev.campaign);
    cr_assert_eq(count(), 1);
    cr_assert_str_eq(out[0].dims[VT_DIM_PRODUCT], "p1");
}


/* ---- groups and dimensions ---- */

Test(alert_counting, group_by_each_dimension)
{
    add_rule(VT_EV_PURCHASE, VT_ALERT_COUNT, VT_DIM_PRODUCT);
    add_rule(VT_EV_PURCHASE, VT_ALERT_COUNT, VT_DIM_BRAND);
    add_rule(VT_EV_PURCHASE, VT_ALERT_COUNT, VT_DIM_CATEGORY);
    add_rule(VT_EV_PURCHASE, VT_ALERT_COUNT, VT_DIM_CAMPAIGN);
    add_rule(VT_EV_PURCHASE, VT_ALERT_COUNT, VT_DIM_REFERRER);
    add_item("p1", " Lumi ", "makeup", "makeup.eyes", 10, 1);
    vt_strlcpy(ev.campaign, "newsletter.may", sizeof ev.campaign);
    vt_strlcpy(ev.referrer, "https://www.google.de/search?q=lumi", sizeof ev.referrer);

    static const char *const groups[] = {"p1", "Lumi", "makeup", "newsletter.may",
                                         "google.de"};
    cr_assert_eq(count(), 5);
    for (size_t i = 0; i < 5; i++) {
        cr_assert_eq(out[i].rule, i);
        cr_assert_str_eq(out[i].group, groups[i], "rule %zu", i);
    }
}


Test(alert_counting, empty_group_skipped)
{
    add_rule(VT_EV_PURCHASE, VT_ALERT_COUNT, VT_DIM_BRAND);
    add_rule(VT_EV_PURCHASE, VT_ALERT_COUNT, VT_DIM_CAMPAIGN);
    add_rule(VT_EV_PURCHASE, VT_ALERT_COUNT, VT_DIM_CATEGORY);
    add_rule(VT_EV_PURCHASE, VT_ALERT_COUNT, VT_DIM_NONE);
    add_item("p1", "  ", NULL, NULL, 10, 1);

    cr_assert_eq(count(), 1, "no brand, campaign or category: only the ungrouped rule");
    cr_assert_eq(out[0].rule, 3);
}


Test(alert_counting, dimensions_filled)
{
    add_rule(VT_EV_PURCHASE, VT_ALERT_COUNT, VT_DIM_BRAND);
    add_item("p1", "Lumi", "makeup", "makeup.eyes", 10, 1);
    add_item("p2", "Nordlys", NULL, NULL, 10, 1);
    vt_strlcpy(ev.campaign, "newsletter.may", sizeof ev.campaign);
    vt_strlcpy(ev.referrer, "android-app://com.google.android.gm/", sizeof ev.referrer);

    cr_assert_eq(count(), 2);
    cr_assert_str_eq(out[0].dims[VT_DIM_PRODUCT], "p1");
    cr_assert_str_eq(out[0].dims[VT_DIM_BRAND], "Lumi");
    cr_assert_str_eq(out[0].dims[VT_DIM_CATEGORY], "makeup", "the first, most general one");
    cr_assert_str_eq(out[0].dims[VT_DIM_CAMPAIGN], "newsletter.may");
    cr_assert_str_eq(out[0].dims[VT_DIM_REFERRER], "com.google.android.gm");
    cr_assert_str_eq(out[1].dims[VT_DIM_CATEGORY], "");
    cr_assert_str_eq(out[1].dims[VT_DIM_CAMPAIGN], "newsletter.may");
}


Test(alert_counting, long_campaign_cut_at_character)
{
    add_rule(VT_EV_PAGE_VIEW, VT_ALERT_COUNT, VT_DIM_CAMPAIGN);
    ev.type = VT_EV_PAGE_VIEW;
    /* 95 ASCII bytes and then "ä" (2 bytes) would end one byte past the buffer. */
    memset(ev.campaign, 'c', 95);
    memcpy(ev.campaign + 95, "\xC3\xA4xyz", 6);

    cr_assert_eq(count(), 1);
    cr_assert_eq(strlen(out[0].group), 95);
    cr_assert(vt_utf8_valid(out[0].group, strlen(out[0].group)));
}


Test(alert_counting, control_characters_become_spaces)
{
    add_rule(VT_EV_PAGE_VIEW, VT_ALERT_COUNT, VT_DIM_CAMPAIGN);
    ev.type = VT_EV_PAGE_VIEW;
    vt_strlcpy(ev.campaign, "spring\tsale\xC2\x85now", sizeof ev.campaign);

    cr_assert_eq(count(), 1);
    cr_assert_str_eq(out[0].group, "spring sale  now");
}


/* ---- events without products ---- */

Test(alert_counting, page_view_counts_once)
{
    add_rule(VT_EV_PAGE_VIEW, VT_ALERT_COUNT, VT_DIM_NONE);
    add_rule(VT_EV_PAGE_VIEW, VT_ALERT_COUNT, VT_DIM_CAMPAIGN);
    struct vt_alert_rule *brand = add_rule(VT_EV_TYPE_COUNT, VT_ALERT_COUNT, VT_DIM_NONE);
    set_filter(brand, VT_DIM_BRAND, "Lumi");
    add_rule(VT_EV_TYPE_COUNT, VT_ALERT_COUNT, VT_DIM_CATEGORY);
    add_rule(VT_EV_TYPE_COUNT, VT_ALERT_COUNT, VT_DIM_NONE);
    ev.type = VT_EV_PAGE_VIEW;
    vt_strlcpy(ev.campaign, "sea.brand", sizeof ev.campaign);

    cr_assert_eq(count(), 3);
    cr_assert_eq(out[0].rule, 0);
    cr_assert_eq(out[1].rule, 1);
    cr_assert_str_eq(out[1].group, "sea.brand");
    cr_assert_eq(out[2].rule, 4, "rules on products skip an event without any");
    cr_assert_float_eq(out[2].amount, 1, 1e-12);
    cr_assert_str_eq(out[2].dims[VT_DIM_PRODUCT], "");
    cr_assert_str_eq(out[2].dims[VT_DIM_BRAND], "");
    cr_assert_str_eq(out[2].dims[VT_DIM_CATEGORY], "");
    cr_assert_str_eq(out[2].dims[VT_DIM_CAMPAIGN], "sea.brand");
}


Test(alert_counting, search_counts_once)
{
    add_rule(VT_EV_SEARCH, VT_ALERT_COUNT, VT_DIM_REFERRER);
    ev.type = VT_EV_SEARCH;
    vt_strlcpy(ev.search, "mascara", sizeof ev.search);
    vt_strlcpy(ev.referrer, "http://Shop.example:8080/start", sizeof ev.referrer);

    cr_assert_eq(count(), 1);
    cr_assert_str_eq(out[0].group, "shop.example");
}


/* ---- referrer host ---- */

Test(alert_counting, referrer_host_forms)
{
    static const struct {
        const char *url;
        const char *host;
    } cases[] = {
        {"https://www.Instagram.com/p/x", "instagram.com"},
        {"http://google.de", "google.de"},
        {"HTTPS://WWW.GOOGLE.DE/", "google.de"},
        {"//cdn.example.org/a", "cdn.example.org"},
        {"instagram.com/p/x", "instagram.com"},
        {"www.tiktok.com", "tiktok.com"},
        {"https://user:secret@www.example.com:8443/x", "example.com"},
        {"https://example.com.:443/", "example.com"},
        {"https://example.com?q=1", "example.com"},
        {"https://example.com#top", "example.com"},
        {"http://[2001:db8::1]:8080/x", "[2001:db8::1]"},
        {"android-app://com.google.android.gm/", "com.google.android.gm"},
        {"  https://t.co/abc  ", "t.co"},
        {"https://www./", "www"},
        {"www.", "www"},
        {"https://", ""},
        {"", ""},
        {"/relative/path", ""},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char host[VT_NAME_MAX + 1];

        vt_alert_referrer_host(cases[i].url, host, sizeof host);
        cr_assert_str_eq(host, cases[i].host, "for \"%s\"", cases[i].url);
    }
}


Test(alert_counting, referrer_host_bounded)
{
    char small[8];

    vt_alert_referrer_host("https://www.verylonghostname.example/", small, sizeof small);
    cr_assert_str_eq(small, "verylon");
    vt_alert_referrer_host(NULL, small, sizeof small);
    cr_assert_str_eq(small, "");
    small[0] = 'x';
    vt_alert_referrer_host("https://a.b/", small, 0);
    cr_assert_eq(small[0], 'x', "a zero size writes nothing");
}
