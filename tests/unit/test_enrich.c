/*
 * Unit tests of event enrichment from the catalog (service/ingest/enrich.c).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "vitrine/catalog.h"
#include "vitrine/config.h"
#include "vitrine/enrich.h"
#include "vitrine/event.h"
#include "vitrine/util.h"

static const char enrich_catalog_text[] =
    "{\"id\":\"full\",\"name\":\"Gel polish\",\"brand\":\"Runail\","
    "\"categories\":[\"nails\",\"nails.gel\"],\"gender\":\"female\",\"price\":2.62}\n"
    "{\"id\":\"homme\",\"name\":\"Eau de Toilette pour Homme\",\"categories\":[\"perfume\"]}\n"
    "{\"id\":\"by-category\",\"name\":\"Shampoo\",\"categories\":[\"hair\",\"Herren Pflege\"]}\n"
    "{\"id\":\"plain\",\"name\":\"Hand cream\",\"categories\":[\"skin\"]}\n"
    "{\"id\":\"aftershave\",\"name\":\"Aftershave for men\"}\n"
    "{\"id\":\"robot\",\"name\":\"Body lotion for women\",\"gender\":\"robot\"}\n"
    "{\"id\":42,\"brand\":\"Orvena\",\"price\":0}\n";

struct enrich_fixture {
    struct vt_config cfg;
    struct vt_catalog *cat;
    struct vt_event ev;
};


static void fixture_load(struct enrich_fixture *f)
{
    char err[256] = "";

    vt_config_defaults(&f->cfg);
    FILE *in = fmemopen((void *)enrich_catalog_text, strlen(enrich_catalog_text), "r");
    cr_assert_not_null(in);
    f->cat = vt_catalog_load_stream(in, "enrich-test", &f->cfg, err, sizeof err);
    fclose(in);
    cr_assert_not_null(f->cat, "%s", err);
    vt_event_clear(&f->ev);
    f->ev.type = VT_EV_PRODUCT_VIEW;
}


/* Append an item with only its id set, as a decoder leaves a product without attributes. */
static struct vt_event_item *add_item(struct vt_event *ev, const char *id)
{
    struct vt_event_item *item = &ev->items[ev->n_items++];

    memset(item, 0, sizeof *item);
    vt_strlcpy(item->id, id, sizeof item->id);
    item->gender = VT_GENDER_UNKNOWN;
    item->price = -1;
    item->quantity = -1;
    item->position = -1;
    return item;
}


Test(enrich, fills_missing_fields_from_catalog)
{
    struct enrich_fixture f;
    fixture_load(&f);
    struct vt_event_item *item = add_item(&f.ev, "full");

    cr_assert_eq(vt_event_enrich(&f.ev, f.cat, &f.cfg), 1);
    cr_assert_str_eq(item->brand, "Runail");
    cr_assert_eq(item->n_categories, 2);
    cr_assert_str_eq(item->categories[0], "nails");
    cr_assert_str_eq(item->categories[1], "nails.gel");
    cr_assert_eq(item->gender, VT_GENDER_FEMALE);
    cr_assert_float_eq(item->price, 2.62, 1e-9);
    cr_assert_eq(item->quantity, -1, "fields the catalog has no value for stay as they were");
    vt_catalog_free(f.cat);
}


Test(enrich, keeps_fields_the_event_carried)
{
    struct enrich_fixture f;
    fixture_load(&f);
    struct vt_event_item *item = add_item(&f.ev, "full");

    vt_strlcpy(item->brand, "Runail Professional", sizeof item->brand);
    vt_strlcpy(item->categories[0], "gel polish", sizeof item->categories[0]);
    item->n_categories = 1;
    item->gender = VT_GENDER_UNISEX;
    item->price = 3.10;

    cr_assert_eq(vt_event_enrich(&f.ev, f.cat, &f.cfg), 1);
    cr_assert_str_eq(item->brand, "Runail Professional");
    cr_assert_eq(item->n_categories, 1);
    cr_assert_str_eq(item->categories[0], "gel polish");
    cr_assert_eq(item->gender, VT_GENDER_UNISEX);
    cr_assert_float_eq(item->price, 3.10, 1e-9);
    vt_catalog_free(f.cat);
}


Test(enrich, zero_price_from_catalog_is_kept)
{
    struct enrich_fixture f;
    fixture_load(&f);
    struct vt_event_item *item = add_item(&f.ev, "42");

    vt_event_enrich(&f.ev, f.cat, &f.cfg);
    cr_assert_float_eq(item->price, 0, 1e-9, "a free product has price 0, not unknown");
    cr_assert_str_eq(item->brand, "Orvena");
    vt_catalog_free(f.cat);
}


Test(enrich, gender_from_name_keywords)
{
    struct enrich_fixture f;
    fixture_load(&f);
    struct vt_event_item *item = add_item(&f.ev, "homme");

    vt_event_enrich(&f.ev, f.cat, &f.cfg);
    cr_assert_eq(item->gender, VT_GENDER_MALE, "\"pour homme\" in the name marks men");
    vt_catalog_free(f.cat);
}


Test(enrich, gender_from_category_keywords)
{
    struct enrich_fixture f;
    fixture_load(&f);
    struct vt_event_item *item = add_item(&f.ev, "by-category");

    vt_event_enrich(&f.ev, f.cat, &f.cfg);
    cr_assert_eq(item->gender, VT_GENDER_MALE, "\"Herren\" in a category marks men");
    vt_catalog_free(f.cat);
}


Test(enrich, gender_from_catalog_categories)
{
    struct enrich_fixture f;
    fixture_load(&f);
    struct vt_event_item *item = add_item(&f.ev, "by-category");

    vt_strlcpy(item->categories[0], "Shampoo", sizeof item->categories[0]);
    item->n_categories = 1;
    vt_event_enrich(&f.ev, f.cat, &f.cfg);
    cr_assert_eq(item->n_categories, 1);
    cr_assert_eq(item->gender, VT_GENDER_MALE);
    vt_catalog_free(f.cat);
}


Test(enrich, gender_stays_unknown_without_keywords)
{
    struct enrich_fixture f;
    fixture_load(&f);
    struct vt_event_item *item = add_item(&f.ev, "plain");

    vt_event_enrich(&f.ev, f.cat, &f.cfg);
    cr_assert_eq(item->gender, VT_GENDER_UNKNOWN);
    vt_catalog_free(f.cat);
}


Test(enrich, gender_matches_catalog_for_recommender)
{
    struct enrich_fixture f;
    fixture_load(&f);
    struct vt_event_item *aftershave = add_item(&f.ev, "aftershave");
    struct vt_event_item *robot = add_item(&f.ev, "robot");
    const struct vt_product *p;

    vt_event_enrich(&f.ev, f.cat, &f.cfg);

    /* The recommender's gender filter reads the catalog's gender, so ingest must give the
     * product the same one. */
    p = vt_catalog_get(f.cat, vt_catalog_find(f.cat, "aftershave", 10));
    cr_assert_eq(p->gender, VT_GENDER_MALE);
    cr_assert_eq(aftershave->gender, p->gender);

    p = vt_catalog_get(f.cat, vt_catalog_find(f.cat, "robot", 5));
    cr_assert_eq(p->gender, VT_GENDER_FEMALE, "an unknown label falls back to keywords");
    cr_assert_eq(robot->gender, p->gender);
    vt_catalog_free(f.cat);
}


Test(enrich, catalog_product_ignores_event_category_keywords)
{
    struct enrich_fixture f;
    fixture_load(&f);
    struct vt_event_item *item = add_item(&f.ev, "plain");

    vt_strlcpy(item->categories[0], "Damen", sizeof item->categories[0]);
    item->n_categories = 1;
    vt_event_enrich(&f.ev, f.cat, &f.cfg);
    cr_assert_eq(item->gender, VT_GENDER_UNKNOWN,
                 "a catalog product keeps the catalog's gender, which the recommender reads");
    vt_catalog_free(f.cat);
}


Test(enrich, event_gender_wins_over_catalog)
{
    struct enrich_fixture f;
    fixture_load(&f);
    struct vt_event_item *item = add_item(&f.ev, "aftershave");

    item->gender = VT_GENDER_FEMALE;
    vt_event_enrich(&f.ev, f.cat, &f.cfg);
    cr_assert_eq(item->gender, VT_GENDER_FEMALE);
    vt_catalog_free(f.cat);
}


Test(enrich, unknown_product_left_unchanged)
{
    struct enrich_fixture f;
    fixture_load(&f);
    struct vt_event_item *missing = add_item(&f.ev, "not-in-catalog");
    struct vt_event_item *found = add_item(&f.ev, "full");
    struct vt_event_item *keyword = add_item(&f.ev, "also-missing");

    vt_strlcpy(keyword->categories[0], "Damen", sizeof keyword->categories[0]);
    keyword->n_categories = 1;

    cr_assert_eq(vt_event_enrich(&f.ev, f.cat, &f.cfg), 1, "one of three products is known");
    cr_assert_str_eq(missing->brand, "");
    cr_assert_eq(missing->n_categories, 0);
    cr_assert_eq(missing->gender, VT_GENDER_UNKNOWN);
    cr_assert_float_eq(missing->price, -1, 1e-9);
    cr_assert_str_eq(found->brand, "Runail");
    cr_assert_eq(keyword->gender, VT_GENDER_FEMALE,
                 "event category keywords apply to products missing from the catalog");
    vt_catalog_free(f.cat);
}


Test(enrich, empty_catalog_finds_nothing)
{
    struct enrich_fixture f;
    char err[256] = "";

    vt_config_defaults(&f.cfg);
    f.cat = vt_catalog_load("", &f.cfg, err, sizeof err);
    cr_assert_not_null(f.cat, "%s", err);
    vt_event_clear(&f.ev);
    add_item(&f.ev, "full");

    cr_assert_eq(vt_event_enrich(&f.ev, f.cat, &f.cfg), 0);
    cr_assert_str_eq(f.ev.items[0].brand, "");
    vt_catalog_free(f.cat);
}
