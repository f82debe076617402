/*
 * Unit tests of catalog changes (service/catalog/catalog.c): stock in place, records of the
 * catalog topic (vt_catalog_change_parse and _merge), and new catalog versions
 * (vt_catalog_apply) with their indexes.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vitrine/catalog.h"
#include "vitrine/config.h"

static struct vt_config test_cfg;

static const char base_catalog[] =
    "{\"id\":\"a1\",\"name\":\"Rose water\",\"brand\":\"Aurelle\",\"categories\":[\"skin\"],"
    "\"price\":20,\"stock\":5,\"popularity\":50}\n"
    "{\"id\":\"a2\",\"name\":\"Night cream\",\"brand\":\"Aurelle\",\"categories\":[\"skin\","
    "\"skin.night\"],\"gender\":\"female\",\"price\":40,\"popularity\":40}\n"
    "{\"id\":\"b1\",\"name\":\"Cedar shampoo\",\"brand\":\"Borwick\",\"categories\":[\"hair\"],"
    "\"price\":9,\"stock\":2,\"popularity\":30}\n"
    "{\"id\":\"b2\",\"name\":\"Hair oil\",\"brand\":\"Borwick\",\"categories\":[\"hair\"],"
    "\"price\":12,\"popularity\":20}\n";


static struct vt_catalog *load_text(const char *text)
{
    char err[256] = "";

    vt_config_defaults(&test_cfg);
    FILE *in = fmemopen((void *)text, strlen(text), "r");
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


static const struct vt_product *product(const struct vt_catalog *cat, const char *id)
{
    return vt_catalog_get(cat, index_of(cat, id));
}


/* Parse a record that must be valid. value NULL is a tombstone. */
static void parse_ok(const char *key, const char *value, struct vt_catalog_change *c)
{
    char reason[256] = "";
    int rc = vt_catalog_change_parse(key, strlen(key), value, value ? strlen(value) : 0, c,
                                     reason, sizeof reason);

    cr_assert_eq(rc, 0, "record %s = %s rejected: %s", key, value ? value : "(null)", reason);
}


/* Apply records (key, value pairs; value NULL: tombstone) in order as one version. */
static struct vt_catalog *apply_records(const struct vt_catalog *old, const char *const *records,
                                        size_t n, struct vt_catalog_apply_stats *stats)
{
    struct vt_catalog_change changes[16];
    size_t n_changes = 0;
    char err[256] = "";

    cr_assert_leq(n, 16);
    for (size_t i = 0; i < n; i++) {
        struct vt_catalog_change c;
        size_t k = 0;

        parse_ok(records[2 * i], records[2 * i + 1], &c);
        while (k < n_changes && strcmp(changes[k].id, c.id) != 0)
            k++;
        if (k < n_changes) {
            vt_catalog_change_merge(&changes[k], &c);
        } else {
            changes[n_changes++] = c;
        }
    }

    struct vt_catalog *next = vt_catalog_apply(old, changes, n_changes, &test_cfg, stats, err,
                                               sizeof err);
    cr_assert_not_null(next, "apply failed: %s", err);
    for (size_t i = 0; i < n_changes; i++)
        vt_catalog_change_clear(&changes[i]);
    return next;
}


static bool list_contains(const uint32_t *list, size_t n, uint32_t index)
{
    for (size_t i = 0; i < n; i++) {
        if (list[i] == index)
            return true;
    }
    return false;
}


/*
 * Check every index of a catalog against its products. The popularity list contains each
 * product that is not removed exactly once, in popularity order. Each brand and category
 * list contains exactly the products that carry that brand or category.
 */
static void check_indexes(const struct vt_catalog *cat)
{
    const struct vt_catalog_stats *stats = vt_catalog_stats(cat);
    size_t size = vt_catalog_size(cat);
    size_t n_popular = 0, removed = 0;
    const uint32_t *popular = vt_catalog_popular(cat, &n_popular);

    for (size_t i = 0; i < size; i++)
        removed += vt_catalog_get(cat, (uint32_t)i)->removed;
    cr_assert_eq(n_popular, size - removed, "popular list: %zu, products: %zu, removed: %zu",
                 n_popular, size, removed);
    cr_assert_eq(stats->products, size - removed);
    cr_assert_eq(stats->removed, removed);

    for (size_t i = 0; i < n_popular; i++) {
        const struct vt_product *p = vt_catalog_get(cat, popular[i]);

        cr_assert_not(p->removed, "removed product %s in the popularity list", p->id);
        if (i > 0)
            cr_assert_geq(vt_catalog_get(cat, popular[i - 1])->popularity, p->popularity,
                          "popularity order broken at position %zu", i);
        for (size_t k = 0; k < i; k++)
            cr_assert_neq(popular[k], popular[i], "product %s listed twice", p->id);
    }

    for (uint32_t b = 0; b < stats->brands; b++) {
        size_t n = 0;
        const uint32_t *list = vt_catalog_by_brand(cat, b, &n);
        size_t expected = 0;

        for (size_t i = 0; i < size; i++) {
            const struct vt_product *p = vt_catalog_get(cat, (uint32_t)i);
            bool member = !p->removed && p->brand == b;

            expected += member;
            cr_assert_eq(list_contains(list, n, (uint32_t)i), member,
                         "brand %s and product %s disagree", vt_catalog_brand_name(cat, b),
                         p->id);
        }
        cr_assert_eq(n, expected);
    }

    for (uint32_t c = 0; c < stats->categories; c++) {
        size_t n = 0;
        const uint32_t *list = vt_catalog_by_category(cat, c, &n);
        size_t expected = 0;

        for (size_t i = 0; i < size; i++) {
            const struct vt_product *p = vt_catalog_get(cat, (uint32_t)i);
            bool member = false;

            for (uint8_t k = 0; k < p->n_categories; k++)
                member = member || p->categories[k] == c;
            member = member && !p->removed;
            expected += member;
            cr_assert_eq(list_contains(list, n, (uint32_t)i), member,
                         "category %s and product %s disagree",
                         vt_catalog_category_name(cat, c), p->id);
        }
        cr_assert_eq(n, expected);
    }
}


Test(catalog_update, stock_changes_in_place)
{
    struct vt_catalog *cat = load_text(base_catalog);
    uint32_t a1 = index_of(cat, "a1");
    const struct vt_product *p = vt_catalog_get(cat, a1);

    cr_assert_eq(vt_product_stock(p), 5);
    cr_assert(vt_product_available(p));

    vt_catalog_set_stock(cat, a1, 0);
    cr_assert_eq(vt_product_stock(p), 0);
    cr_assert_not(vt_product_available(p), "stock 0 must make the product unavailable");

    vt_catalog_set_stock(cat, a1, -1);
    cr_assert(vt_product_available(p), "unknown stock counts as available");

    /* An index out of range changes nothing. */
    vt_catalog_set_stock(cat, (uint32_t)vt_catalog_size(cat), 0);
    vt_catalog_set_stock(cat, VT_CATALOG_NONE, 0);
    check_indexes(cat);
    vt_catalog_free(cat);
}


Test(catalog_update, parse_full_line)
{
    struct vt_catalog_change c;

    parse_ok("n1",
             "{\"id\":\"n1\",\"name\":\"Amber mist\",\"brand\":\"Corvane\",\"categories\":"
             "[\"perfume\",\"perfume.edp\"],\"gender\":\"male\",\"price\":75.5,\"stock\":3,"
             "\"popularity\":12}",
             &c);

    cr_assert_str_eq(c.id, "n1");
    cr_assert_not(c.remove);
    cr_assert_eq(c.fields, VT_FIELD_NAME | VT_FIELD_BRAND | VT_FIELD_CATEGORIES |
                               VT_FIELD_GENDER | VT_FIELD_PRICE | VT_FIELD_STOCK |
                               VT_FIELD_POPULARITY);
    cr_assert_str_eq(c.name, "Amber mist");
    cr_assert_str_eq(c.brand, "Corvane");
    cr_assert_eq(c.n_categories, 2);
    cr_assert_str_eq(c.categories[1], "perfume.edp");
    cr_assert_str_eq(c.gender, "male");
    cr_assert_float_eq(c.price, 75.5, 1e-9);
    cr_assert_eq(c.stock, 3);
    cr_assert_float_eq(c.popularity, 12, 1e-9);
    vt_catalog_change_clear(&c);
}


Test(catalog_update, parse_stock_only_and_null_fields)
{
    struct vt_catalog_change c;

    parse_ok("a1", "{\"stock\":0}", &c);
    cr_assert_eq(c.fields, VT_FIELD_STOCK);
    cr_assert_eq(c.stock, 0);
    vt_catalog_change_clear(&c);

    /* null is present and sets the default. */
    parse_ok("a1", "{\"price\":null,\"brand\":null}", &c);
    cr_assert_eq(c.fields, VT_FIELD_PRICE | VT_FIELD_BRAND);
    cr_assert_float_eq(c.price, -1, 1e-9);
    cr_assert_null(c.brand);
    vt_catalog_change_clear(&c);

    /* A numeric "id" equal to the key is accepted. */
    parse_ok("1000217", "{\"id\":1000217,\"popularity\":3}", &c);
    cr_assert_eq(c.fields, VT_FIELD_POPULARITY);
    vt_catalog_change_clear(&c);
}


Test(catalog_update, parse_tombstone)
{
    struct vt_catalog_change c;

    parse_ok("b2", NULL, &c);
    cr_assert(c.remove);
    cr_assert_str_eq(c.id, "b2");
    cr_assert_eq(c.id_length, 2);
    vt_catalog_change_clear(&c);
}


Test(catalog_update, parse_rejects_invalid_records)
{
    static const struct {
        const char *key;
        const char *value;
        const char *reason; /* a part of the expected reason */
    } cases[] = {
        {"", "{\"stock\":1}", "key must be the product id"},
        {"a\x01", "{\"stock\":1}", "control character"},
        {"a\xff", "{\"stock\":1}", "not valid UTF-8"},
        {"a1", "", "value is empty"},
        {"a1", "{\"stock\":", "invalid JSON"},
        {"a1", "[1,2]", "not a JSON object"},
        {"a1", "{\"stock\":1} x", "unexpected text"},
        {"a1", "{\"id\":\"a2\",\"stock\":1}", "differs from the key"},
        {"a1", "{\"stock\":-1}", "\"stock\" must be a number >= 0"},
        {"a1", "{\"stock\":1.5}", "\"stock\" must be a whole number"},
        {"a1", "{\"stock\":\"3\"}", "\"stock\" must be a number"},
        {"a1", "{\"price\":-2}", "\"price\" must be a number >= 0"},
        {"a1", "{\"price\":1e300}", "\"price\" must be at most 1e+09"},
        {"a1", "{\"categories\":[1]}", "\"categories\" must contain only strings"},
        {"a1", "{\"name\":\"a\\u0000b\"}", "\\u0000"},
        {"a1", "{\"brand\":7}", "\"brand\" must be a string"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct vt_catalog_change c;
        char reason[256] = "";
        int rc = vt_catalog_change_parse(cases[i].key, strlen(cases[i].key), cases[i].value,
                                         strlen(cases[i].value), &c, reason, sizeof reason);

        cr_assert_eq(rc, -1, "case %zu (%s) was accepted", i, cases[i].value);
        cr_assert_not_null(strstr(reason, cases[i].reason), "case %zu: reason \"%s\" lacks \"%s\"",
                           i, reason, cases[i].reason);
        cr_assert_eq(c.fields, 0, "case %zu left fields set", i);
        cr_assert_null(c.name);
    }
}


Test(catalog_update, parse_rejects_oversized_key_and_value)
{
    char key[200];
    char *value = malloc(70 * 1024);
    struct vt_catalog_change c;
    char reason[256] = "";

    memset(key, 'k', sizeof key);
    cr_assert_eq(vt_catalog_change_parse(key, 129, "{}", 2, &c, reason, sizeof reason), -1);
    cr_assert_not_null(strstr(reason, "1 to 128 bytes"), "reason: %s", reason);

    memset(value, ' ', 70 * 1024);
    memcpy(value, "{}", 2);
    cr_assert_eq(vt_catalog_change_parse("a1", 2, value, 70 * 1024, &c, reason, sizeof reason),
                 -1);
    cr_assert_not_null(strstr(reason, "longer than the maximum"), "reason: %s", reason);
    free(value);
}


/* Records whose members are all unknown (apart from "id") change nothing and are
 * rejected with the unknown names in the reason. */
Test(catalog_update, parse_rejects_unknown_members_only)
{
    static const struct {
        const char *key;
        const char *value;
        const char *reason; /* a part of the expected reason */
    } cases[] = {
        {"AN-CREAM-50-V1", "{\"stok\":0}", "only the unknown member \"stok\";"},
        {"UNKNOWNFIELD", "{\"colour\":\"red\"}", "only the unknown member \"colour\""},
        {"a1", "{\"id\":\"a1\",\"stok\":0}", "only the unknown member \"stok\""},
        {"a1", "{\"Stock\":0,\"prize\":3}", "unknown members \"Stock\", \"prize\""},
        {"a1", "{\"stok\":null}", "no catalog field in the value"},
        {"a1", "{\"stok\":0}", "expected name, brand, categories, gender, price, stock or "
                               "popularity"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct vt_catalog_change c;
        char reason[256] = "";
        int rc = vt_catalog_change_parse(cases[i].key, strlen(cases[i].key), cases[i].value,
                                         strlen(cases[i].value), &c, reason, sizeof reason);

        cr_assert_eq(rc, -1, "case %zu (%s) was accepted", i, cases[i].value);
        cr_assert_not_null(strstr(reason, cases[i].reason), "case %zu: reason \"%s\" lacks \"%s\"",
                           i, reason, cases[i].reason);
        cr_assert_null(c.unknown_members, "case %zu", i);
    }
}


Test(catalog_update, parse_keeps_known_fields_next_to_unknown)
{
    struct vt_catalog_change c;

    parse_ok("a1", "{\"stock\":0,\"colour\":\"red\",\"Price\":3}", &c);
    cr_assert_eq(c.fields, VT_FIELD_STOCK);
    cr_assert_eq(c.stock, 0);
    cr_assert_float_eq(c.price, -1, 1e-9, "\"Price\" is not \"price\"");
    cr_assert_str_eq(c.unknown_members, "\"colour\", \"Price\"");
    vt_catalog_change_clear(&c);
    cr_assert_null(c.unknown_members);

    /* Neither an empty object nor a lone "id" has unknown members. */
    parse_ok("a1", "{}", &c);
    cr_assert_eq(c.fields, 0);
    cr_assert_null(c.unknown_members);
    vt_catalog_change_clear(&c);
    parse_ok("a1", "{\"id\":\"a1\"}", &c);
    cr_assert_null(c.unknown_members);
    vt_catalog_change_clear(&c);
}


Test(catalog_update, unknown_member_list_is_bounded)
{
    char value[2048];
    size_t used = 0;
    struct vt_catalog_change c;

    /* Twenty unknown members with names of 40 bytes, one with a control character. */
    used += (size_t)snprintf(value + used, sizeof value - used, "{\"stock\":1");
    for (int i = 0; i < 20; i++)
        used += (size_t)snprintf(value + used, sizeof value - used,
                                 ",\"%s%02d_abcdefghijklmnopqrstuvwxyz0123456\":1",
                                 i == 0 ? "\\n" : "m_", i);
    snprintf(value + used, sizeof value - used, "}");
    parse_ok("a1", value, &c);

    cr_assert_eq(c.fields, VT_FIELD_STOCK);
    cr_assert_not_null(c.unknown_members);
    cr_assert_lt(strlen(c.unknown_members), 128);
    const char *first = "\"?00_abcdefghijklmnopqrstuvwxyz01\", ";
    cr_assert(strncmp(c.unknown_members, first, strlen(first)) == 0,
              "control character shown as '?' and the name cut to 32 bytes: %s",
              c.unknown_members);
    size_t len = strlen(c.unknown_members);
    cr_assert_str_eq(c.unknown_members + len - 5, ", ...", "list: %s", c.unknown_members);
    vt_catalog_change_clear(&c);
}


Test(catalog_update, removed_product_invisible_to_lookups)
{
    struct vt_catalog *old = load_text(base_catalog);
    uint32_t b2 = index_of(old, "b2");
    static const char *const remove[] = {"b2", NULL};
    struct vt_catalog *removed = apply_records(old, remove, 1, NULL);

    cr_assert_eq(vt_catalog_find(removed, "b2", 2), VT_CATALOG_NONE);
    cr_assert_eq(vt_catalog_stats(removed)->products, 3, "stats exclude the removed product");
    cr_assert_eq(vt_catalog_stats(removed)->removed, 1);
    cr_assert_eq(vt_catalog_size(removed), 4, "the index stays taken");
    cr_assert(vt_catalog_get(removed, b2)->removed);

    /* A second tombstone finds nothing to remove. */
    struct vt_catalog_apply_stats stats;
    struct vt_catalog *again = apply_records(removed, remove, 1, &stats);
    cr_assert_eq(stats.removed, 0);
    cr_assert_eq(stats.ignored, 1);
    cr_assert_eq(vt_catalog_find(again, "b2", 2), VT_CATALOG_NONE);

    /* An upsert brings it back under its old index, found again. */
    static const char *const revive[] = {"b2", "{\"price\":15}"};
    struct vt_catalog *back = apply_records(again, revive, 1, &stats);
    cr_assert_eq(stats.updated, 1);
    cr_assert_eq(stats.added, 0);
    cr_assert_eq(vt_catalog_find(back, "b2", 2), b2);
    cr_assert_eq(vt_catalog_stats(back)->products, 4);
    cr_assert_eq(vt_catalog_stats(back)->removed, 0);
    check_indexes(back);
    vt_catalog_free(old);
    vt_catalog_free(removed);
    vt_catalog_free(again);
    vt_catalog_free(back);
}


Test(catalog_update, upsert_appends_new_product)
{
    struct vt_catalog *old = load_text(base_catalog);
    static const char *const records[] = {
        "n1", "{\"name\":\"Amber mist\",\"brand\":\"Borwick\",\"categories\":[\"hair\","
              "\"hair.oil\"],\"price\":30,\"stock\":4,\"popularity\":35}",
    };
    struct vt_catalog_apply_stats stats;
    struct vt_catalog *cat = apply_records(old, records, 1, &stats);

    cr_assert_eq(stats.added, 1);
    cr_assert_eq(stats.updated, 0);
    cr_assert_eq(vt_catalog_size(cat), 5);
    cr_assert_eq(index_of(cat, "n1"), 4, "a new product takes the next index");

    /* Existing products, brands and categories keep their indexes. */
    for (size_t i = 0; i < vt_catalog_size(old); i++)
        cr_assert_str_eq(vt_catalog_get(cat, (uint32_t)i)->id,
                         vt_catalog_get(old, (uint32_t)i)->id);
    cr_assert_eq(vt_catalog_brand_find(cat, "Borwick", 7),
                 vt_catalog_brand_find(old, "Borwick", 7));
    cr_assert_eq(vt_catalog_category_find(cat, "hair", 4),
                 vt_catalog_category_find(old, "hair", 4));
    cr_assert_eq(vt_catalog_category_find(cat, "hair.oil", 8), vt_catalog_stats(old)->categories,
                 "a new category takes the next index");

    /* The new product is in the popularity, brand and category lists at its rank. */
    size_t n = 0;
    const uint32_t *popular = vt_catalog_popular(cat, &n);
    cr_assert_eq(n, 5);
    cr_assert_str_eq(vt_catalog_get(cat, popular[2])->id, "n1");
    const uint32_t *brand = vt_catalog_by_brand(cat, vt_catalog_brand_find(cat, "Borwick", 7), &n);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(vt_catalog_get(cat, brand[0])->id, "n1");
    vt_catalog_by_category(cat, vt_catalog_category_find(cat, "hair.oil", 8), &n);
    cr_assert_eq(n, 1);

    const struct vt_product *p = product(cat, "n1");
    cr_assert_str_eq(p->name, "Amber mist");
    cr_assert_eq(vt_product_stock(p), 4);
    cr_assert_eq(p->tier, VT_TIER_MID);
    check_indexes(cat);

    /* The old version is untouched. */
    cr_assert_eq(vt_catalog_size(old), 4);
    cr_assert_eq(vt_catalog_find(old, "n1", 2), VT_CATALOG_NONE);
    check_indexes(old);
    vt_catalog_free(old);
    vt_catalog_free(cat);
}


Test(catalog_update, changed_brand_moves_product)
{
    struct vt_catalog *old = load_text(base_catalog);
    static const char *const records[] = {"a1", "{\"brand\":\"Borwick\"}"};
    struct vt_catalog *cat = apply_records(old, records, 1, NULL);
    uint32_t aurelle = vt_catalog_brand_find(cat, "Aurelle", 7);
    uint32_t borwick = vt_catalog_brand_find(cat, "Borwick", 7);
    uint32_t a1 = index_of(cat, "a1");
    size_t n = 0;

    cr_assert_eq(a1, index_of(old, "a1"));
    cr_assert_eq(product(cat, "a1")->brand, borwick);

    const uint32_t *list = vt_catalog_by_brand(cat, aurelle, &n);
    cr_assert_eq(n, 1);
    cr_assert_not(list_contains(list, n, a1), "a1 is still listed under its old brand");
    list = vt_catalog_by_brand(cat, borwick, &n);
    cr_assert_eq(n, 3);
    cr_assert_eq(list[0], a1, "a1 leads its new brand by popularity");

    /* Fields the record did not name are kept. */
    const struct vt_product *p = product(cat, "a1");
    cr_assert_str_eq(p->name, "Rose water");
    cr_assert_eq(vt_product_stock(p), 5);
    cr_assert_float_eq(p->price, 20, 1e-9);
    check_indexes(cat);
    vt_catalog_free(old);
    vt_catalog_free(cat);
}


Test(catalog_update, partial_update_keeps_other_fields)
{
    struct vt_catalog *old = load_text(base_catalog);
    static const char *const records[] = {
        "b1", "{\"price\":130,\"popularity\":99}",
        "b1", "{\"name\":\"Cedar shampoo XL\"}",
    };
    struct vt_catalog *cat = apply_records(old, records, 2, NULL);
    const struct vt_product *p = product(cat, "b1");
    size_t n = 0;

    cr_assert_str_eq(p->name, "Cedar shampoo XL");
    cr_assert_float_eq(p->price, 130, 1e-9);
    cr_assert_eq(p->tier, VT_TIER_LUXURY, "a new price sets the tier again");
    cr_assert_float_eq(p->popularity, 99, 1e-9);
    cr_assert_str_eq(vt_catalog_brand_name(cat, p->brand), "Borwick");
    cr_assert_eq(vt_product_stock(p), 2);
    cr_assert_str_eq(vt_catalog_get(cat, vt_catalog_popular(cat, &n)[0])->id, "b1");
    cr_assert_float_eq(vt_catalog_max_popularity(cat), 99, 1e-9);
    check_indexes(cat);
    vt_catalog_free(old);
    vt_catalog_free(cat);
}


Test(catalog_update, new_version_copies_current_stock)
{
    struct vt_catalog *old = load_text(base_catalog);
    static const char *const records[] = {"a2", "{\"popularity\":1}"};

    vt_catalog_set_stock(old, index_of(old, "b1"), 0);
    struct vt_catalog *cat = apply_records(old, records, 1, NULL);

    cr_assert_eq(vt_product_stock(product(cat, "b1")), 0);
    /* The versions are independent: stock set in one stays out of the other, and the new
     * one stays readable after the old one is freed. */
    vt_catalog_set_stock(cat, index_of(cat, "a1"), 9);
    cr_assert_eq(vt_product_stock(product(old, "a1")), 5);
    vt_catalog_free(old);
    cr_assert_str_eq(product(cat, "a2")->name, "Night cream");
    cr_assert_str_eq(vt_catalog_brand_name(cat, product(cat, "a2")->brand), "Aurelle");
    check_indexes(cat);
    vt_catalog_free(cat);
}


Test(catalog_update, removal_keeps_index_and_leaves_lists)
{
    struct vt_catalog *old = load_text(base_catalog);
    static const char *const records[] = {"a1", NULL, "zz", NULL};
    struct vt_catalog_apply_stats stats;
    struct vt_catalog *cat = apply_records(old, records, 2, &stats);
    uint32_t a1 = index_of(old, "a1");
    const struct vt_product *p = vt_catalog_get(cat, a1);
    size_t n = 0;

    cr_assert_eq(stats.removed, 1);
    cr_assert_eq(stats.ignored, 1, "the removal of an unknown id is ignored");
    cr_assert_not_null(p, "a removed product keeps its index");
    cr_assert_str_eq(p->id, "a1");
    cr_assert(p->removed);
    cr_assert_eq(vt_catalog_find(cat, "a1", 2), VT_CATALOG_NONE,
                 "lookups do not find a removed product");
    cr_assert_eq(vt_product_stock(p), 0);
    cr_assert_not(vt_product_available(p));
    cr_assert_eq(vt_catalog_size(cat), 4);
    cr_assert_eq(vt_catalog_stats(cat)->products, 3);
    cr_assert_eq(vt_catalog_stats(cat)->removed, 1);

    const uint32_t *list = vt_catalog_popular(cat, &n);
    cr_assert_not(list_contains(list, n, a1));
    list = vt_catalog_by_brand(cat, p->brand, &n);
    cr_assert_not(list_contains(list, n, a1));
    list = vt_catalog_by_category(cat, p->categories[0], &n);
    cr_assert_not(list_contains(list, n, a1));
    check_indexes(cat);
    vt_catalog_free(old);
    vt_catalog_free(cat);
}


Test(catalog_update, record_after_removal_starts_afresh)
{
    struct vt_catalog *old = load_text(base_catalog);
    static const char *const remove[] = {"a1", NULL};
    struct vt_catalog *removed = apply_records(old, remove, 1, NULL);
    static const char *const revive[] = {"a1", "{\"popularity\":7}"};
    struct vt_catalog_apply_stats stats;
    struct vt_catalog *cat = apply_records(removed, revive, 1, &stats);
    const struct vt_product *p = product(cat, "a1");

    cr_assert_eq(stats.updated, 1);
    cr_assert_eq(index_of(cat, "a1"), index_of(old, "a1"));
    cr_assert_not(p->removed);
    cr_assert_str_eq(p->name, "", "the tombstone forgot the name");
    cr_assert_eq(p->brand, VT_CATALOG_NONE);
    cr_assert_eq(p->n_categories, 0);
    cr_assert_eq(vt_product_stock(p), -1, "unknown stock after a fresh start");
    cr_assert_float_eq(p->popularity, 7, 1e-9);
    check_indexes(cat);
    vt_catalog_free(old);
    vt_catalog_free(removed);
    vt_catalog_free(cat);
}


Test(catalog_update, merge_follows_record_order)
{
    struct vt_catalog *old = load_text(base_catalog);
    /* Removal then upsert within one version: a fresh start with the upsert's fields.
     * Upsert then removal: removed. Two upserts: both field sets. */
    static const char *const records[] = {
        "a1", NULL,
        "a1", "{\"name\":\"Back again\",\"stock\":3}",
        "b1", "{\"name\":\"Gone soon\"}",
        "b1", NULL,
        "b2", "{\"price\":60}",
        "b2", "{\"stock\":8,\"price\":70}",
    };
    struct vt_catalog *cat = apply_records(old, records, 6, NULL);
    const struct vt_product *a1 = product(cat, "a1");
    const struct vt_product *b1 = vt_catalog_get(cat, index_of(old, "b1"));
    const struct vt_product *b2 = product(cat, "b2");

    cr_assert_not(a1->removed);
    cr_assert_str_eq(a1->name, "Back again");
    cr_assert_eq(a1->brand, VT_CATALOG_NONE);
    cr_assert_eq(vt_product_stock(a1), 3);
    cr_assert(b1->removed);
    cr_assert_eq(vt_catalog_find(cat, "b1", 2), VT_CATALOG_NONE);
    cr_assert_str_eq(b1->name, "Cedar shampoo", "a removal keeps the name at its index");
    cr_assert_float_eq(b2->price, 70, 1e-9);
    cr_assert_eq(vt_product_stock(b2), 8);
    cr_assert_str_eq(b2->name, "Hair oil");
    check_indexes(cat);
    vt_catalog_free(old);
    vt_catalog_free(cat);
}


Test(catalog_update, gender_inferred_again_unless_labeled)
{
    struct vt_catalog *old = load_text(base_catalog);
    /* a1 has no label: a new name is read for keywords. a2 is labeled female: a new name
     * keeps the label. */
    static const char *const records[] = {
        "a1", "{\"name\":\"Rose water for men\"}",
        "a2", "{\"name\":\"Night cream for men\"}",
        "b1", "{\"gender\":\"unisex\"}",
    };
    struct vt_catalog *cat = apply_records(old, records, 3, NULL);

    cr_assert_eq(product(old, "a1")->gender, VT_GENDER_UNKNOWN);
    cr_assert_eq(product(cat, "a1")->gender, VT_GENDER_MALE);
    cr_assert_eq(product(cat, "a2")->gender, VT_GENDER_FEMALE);
    cr_assert_eq(product(cat, "b1")->gender, VT_GENDER_UNISEX);
    vt_catalog_free(old);
    vt_catalog_free(cat);
}


Test(catalog_update, indexes_stay_consistent_over_versions)
{
    struct vt_catalog *cat = load_text(base_catalog);
    char key[32], value[256];

    /* Twenty versions of assorted upserts, moves and removals. */
    for (int version = 0; version < 20; version++) {
        struct vt_catalog_change changes[6];
        char err[256];

        for (int k = 0; k < 6; k++) {
            int id = (version * 7 + k * 3) % 13;

            snprintf(key, sizeof key, "p%d", id);
            if ((version + k) % 5 == 0)
                parse_ok(key, NULL, &changes[k]);
            else {
                snprintf(value, sizeof value,
                         "{\"brand\":\"B%d\",\"categories\":[\"c%d\",\"c%d\"],"
                         "\"popularity\":%d}",
                         (version + k) % 4, k % 3, (version + id) % 5, (version * 31 + k) % 17);
                parse_ok(key, value, &changes[k]);
            }
            /* One change per id and version, as the updater guarantees. */
            for (int j = 0; j < k; j++) {
                if (strcmp(changes[j].id, changes[k].id) == 0) {
                    vt_catalog_change_merge(&changes[j], &changes[k]);
                    memset(&changes[k], 0, sizeof changes[k]);
                    changes[k].remove = true;
                    snprintf(changes[k].id, sizeof changes[k].id, "unused-%d-%d", version, k);
                    changes[k].id_length = strlen(changes[k].id);
                }
            }
        }
        struct vt_catalog *next = vt_catalog_apply(cat, changes, 6, &test_cfg, NULL, err,
                                                   sizeof err);
        cr_assert_not_null(next, "version %d: %s", version, err);
        for (size_t i = 0; i < vt_catalog_size(cat); i++)
            cr_assert_str_eq(vt_catalog_get(next, (uint32_t)i)->id,
                             vt_catalog_get(cat, (uint32_t)i)->id,
                             "version %d moved index %zu", version, i);
        for (int k = 0; k < 6; k++)
            vt_catalog_change_clear(&changes[k]);
        vt_catalog_free(cat);
        cat = next;
        check_indexes(cat);
    }
    vt_catalog_free(cat);
}
