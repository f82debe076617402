/*
 * Unit tests of the catalog loader and its indexes (service/catalog/catalog.c), on inline
 * JSON Lines text read through fmemopen.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vitrine/catalog.h"
#include "vitrine/config.h"

static struct vt_config test_cfg;


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


static const struct vt_product *product(const struct vt_catalog *cat, const char *id)
{
    uint32_t index = vt_catalog_find(cat, id, strlen(id));

    cr_assert_neq(index, VT_CATALOG_NONE, "product %s not found", id);
    return vt_catalog_get(cat, index);
}


/* Assert that a popularity-ordered index list contains exactly these product ids. */
static void expect_order(const struct vt_catalog *cat, const uint32_t *list, size_t n,
                         const char *const *ids, size_t n_ids)
{
    cr_assert_eq(n, n_ids, "expected %zu products, got %zu", n_ids, n);
    for (size_t i = 0; i < n; i++)
        cr_assert_str_eq(vt_catalog_get(cat, list[i])->id, ids[i], "position %zu", i);
}


Test(catalog, loads_string_and_number_ids)
{
    struct vt_catalog *cat = load_text("{\"id\":\"a-1\",\"name\":\"Gel polish\"}\n"
                                       "{\"id\":1000217}\n"
                                       "{\"id\":0}\n");

    cr_assert_eq(vt_catalog_size(cat), 3);
    cr_assert_str_eq(product(cat, "a-1")->name, "Gel polish");
    cr_assert_str_eq(product(cat, "1000217")->id, "1000217");
    cr_assert_str_eq(product(cat, "0")->id, "0");
    cr_assert_eq(vt_catalog_find(cat, "a-2", 3), VT_CATALOG_NONE);
    cr_assert_eq(vt_catalog_find(cat, "a-1", 2), VT_CATALOG_NONE);
    vt_catalog_free(cat);
}


Test(catalog, missing_fields_get_defaults)
{
    struct vt_catalog *cat = load_text("{\"id\":\"x\"}\n");
    const struct vt_product *p = product(cat, "x");

    cr_assert_str_eq(p->name, "");
    cr_assert_eq(p->brand, VT_CATALOG_NONE);
    cr_assert_eq(p->n_categories, 0);
    cr_assert_eq(p->gender, VT_GENDER_UNKNOWN);
    cr_assert_eq(p->tier, VT_TIER_DRUGSTORE);
    cr_assert_float_eq(p->price, -1, 1e-9);
    cr_assert_eq(p->stock, -1);
    cr_assert_float_eq(p->popularity, 0, 1e-9);
    cr_assert(vt_product_available(p), "unknown stock counts as available");
    vt_catalog_free(cat);
}


Test(catalog, reads_every_field)
{
    struct vt_catalog *cat = load_text(
        "{\"id\":\"1000217\",\"name\":\"Gel polish\",\"brand\":\"lacqua\","
        "\"categories\":[\"nails\",\"nails.gel\"],\"gender\":\"Women\",\"price\":2.62,"
        "\"stock\":0,\"popularity\":31,\"unknown_field\":{\"ignored\":true}}\n");
    const struct vt_product *p = product(cat, "1000217");

    cr_assert_str_eq(vt_catalog_brand_name(cat, p->brand), "lacqua");
    cr_assert_eq(p->n_categories, 2);
    cr_assert_str_eq(vt_catalog_category_name(cat, p->categories[0]), "nails");
    cr_assert_str_eq(vt_catalog_category_name(cat, p->categories[1]), "nails.gel");
    cr_assert_eq(p->gender, VT_GENDER_FEMALE);
    cr_assert_float_eq(p->price, 2.62, 1e-9);
    cr_assert_eq(p->stock, 0);
    cr_assert_not(vt_product_available(p), "stock 0 is out of stock");
    cr_assert_float_eq(p->popularity, 31, 1e-9);
    vt_catalog_free(cat);
}


Test(catalog, categories_string_array_and_limit)
{
    struct vt_catalog *cat = load_text(
        "{\"id\":\"one\",\"categories\":\"hair\"}\n"
        "{\"id\":\"many\",\"categories\":[\"a\",\"b\",\"\",\"B\",\"c\",\"d\",\"e\"]}\n");
    const struct vt_product *one = product(cat, "one");
    const struct vt_product *many = product(cat, "many");

    cr_assert_eq(one->n_categories, 1);
    cr_assert_str_eq(vt_catalog_category_name(cat, one->categories[0]), "hair");

    /* "" is skipped, "B" is the same category as "b", and only the first four are kept. */
    cr_assert_eq(many->n_categories, 3);
    cr_assert_str_eq(vt_catalog_category_name(cat, many->categories[0]), "a");
    cr_assert_str_eq(vt_catalog_category_name(cat, many->categories[1]), "b");
    cr_assert_str_eq(vt_catalog_category_name(cat, many->categories[2]), "c");
    cr_assert_eq(vt_catalog_category_find(cat, "d", 1), VT_CATALOG_NONE);
    vt_catalog_free(cat);
}


Test(catalog, price_sets_tier)
{
    /* Default bands: below 15 drugstore, below 50 mid, below 120 premium, else luxury. */
    struct vt_catalog *cat = load_text("{\"id\":\"d\",\"price\":14.99}\n"
                                       "{\"id\":\"m\",\"price\":15}\n"
                                       "{\"id\":\"p\",\"price\":80}\n"
                                       "{\"id\":\"l\",\"price\":120}\n"
                                       "{\"id\":\"none\"}\n"
                                       "{\"id\":\"null\",\"price\":null}\n");

    cr_assert_eq(product(cat, "d")->tier, VT_TIER_DRUGSTORE);
    cr_assert_eq(product(cat, "m")->tier, VT_TIER_MID);
    cr_assert_eq(product(cat, "p")->tier, VT_TIER_PREMIUM);
    cr_assert_eq(product(cat, "l")->tier, VT_TIER_LUXURY);
    cr_assert_eq(product(cat, "none")->tier, VT_TIER_DRUGSTORE);
    cr_assert_float_eq(product(cat, "null")->price, -1, 1e-9);
    vt_catalog_free(cat);
}


Test(catalog, bad_lines_counted_and_skipped)
{
    const char *text = "{\"id\":\"good1\"}\n"
                       "{not json\n"
                       "[1,2]\n"
                       "{\"name\":\"no id\"}\n"
                       "{\"id\":\"\"}\n"
                       "{\"id\":1.5}\n"
                       "{\"id\":-3}\n"
                       "{\"id\":true}\n"
                       "{\"id\":\"p\",\"price\":-1}\n"
                       "{\"id\":\"q\",\"price\":\"12\"}\n"
                       "{\"id\":\"s\",\"stock\":2.5}\n"
                       "{\"id\":\"t\",\"categories\":[\"a\",3]}\n"
                       "{\"id\":\"u\",\"brand\":7}\n"
                       "{\"id\":\"v\"} trailing\n"
                       "\n"
                       "   \n"
                       "{\"id\":\"good2\"}\r\n";

    struct vt_catalog *cat = load_text(text);
    const struct vt_catalog_stats *stats = vt_catalog_stats(cat);

    cr_assert_eq(stats->products, 2);
    cr_assert_eq(stats->rejected, 13);
    cr_assert_eq(stats->lines, 15, "blank lines are not counted, got %zu", stats->lines);
    cr_assert_neq(vt_catalog_find(cat, "good1", 5), VT_CATALOG_NONE);
    cr_assert_neq(vt_catalog_find(cat, "good2", 5), VT_CATALOG_NONE);
    cr_assert_eq(vt_catalog_find(cat, "p", 1), VT_CATALOG_NONE);
    vt_catalog_free(cat);
}


Test(catalog, gender_label_wins_over_keywords)
{
    struct vt_catalog *cat = load_text(
        "{\"id\":\"g1\",\"name\":\"Aftershave for men\",\"gender\":\"female\"}\n"
        "{\"id\":\"g2\",\"name\":\"Aftershave for men\",\"gender\":\" Unisex \"}\n");

    cr_assert_eq(product(cat, "g1")->gender, VT_GENDER_FEMALE);
    cr_assert_eq(product(cat, "g2")->gender, VT_GENDER_UNISEX);
    cr_assert_eq(vt_catalog_stats(cat)->unknown_gender_labels, 0);
    vt_catalog_free(cat);
}


Test(catalog, gender_inferred_from_name)
{
    struct vt_catalog *cat = load_text(
        "{\"id\":\"absent\",\"name\":\"Aftershave for men\",\"categories\":[\"Damen\"]}\n"
        "{\"id\":\"null\",\"name\":\"Body lotion for women\",\"gender\":null}\n"
        "{\"id\":\"empty\",\"name\":\"Eau de Toilette pour Homme\",\"gender\":\"\"}\n"
        "{\"id\":\"both\",\"name\":\"Gift set for men and women\"}\n");

    cr_assert_eq(product(cat, "absent")->gender, VT_GENDER_MALE,
                 "the name is read before the categories");
    cr_assert_eq(product(cat, "null")->gender, VT_GENDER_FEMALE);
    cr_assert_eq(product(cat, "empty")->gender, VT_GENDER_MALE);
    cr_assert_eq(product(cat, "both")->gender, VT_GENDER_UNISEX);
    cr_assert_eq(vt_catalog_stats(cat)->unknown_gender_labels, 0,
                 "an empty label is no label");
    vt_catalog_free(cat);
}


Test(catalog, gender_inferred_from_categories_in_order)
{
    struct vt_catalog *cat = load_text(
        "{\"id\":\"c1\",\"name\":\"Shampoo\",\"categories\":[\"hair\",\"Herren Pflege\","
        "\"Damen\"]}\n"
        "{\"id\":\"c2\",\"categories\":[\"Damen Duft\"]}\n"
        "{\"id\":\"c3\",\"name\":\"Hand cream\",\"categories\":[\"skin\"]}\n");

    cr_assert_eq(product(cat, "c1")->gender, VT_GENDER_MALE,
                 "the first category with a keyword decides");
    cr_assert_eq(product(cat, "c2")->gender, VT_GENDER_FEMALE);
    cr_assert_eq(product(cat, "c3")->gender, VT_GENDER_UNKNOWN);
    vt_catalog_free(cat);
}


Test(catalog, unknown_gender_label_counted_and_inferred)
{
    struct vt_catalog *cat = load_text(
        "{\"id\":\"r1\",\"name\":\"Aftershave for men\",\"gender\":\"robot\"}\n"
        "{\"id\":\"r2\",\"name\":\"Hand cream\",\"gender\":\"unknown\"}\n"
        "{\"id\":\"r3\",\"name\":\"Hand cream\",\"gender\":\"male\"}\n");
    const struct vt_catalog_stats *stats = vt_catalog_stats(cat);

    cr_assert_eq(stats->unknown_gender_labels, 2);
    cr_assert_eq(stats->products, 3, "a line with an unknown label still loads");
    cr_assert_eq(product(cat, "r1")->gender, VT_GENDER_MALE);
    cr_assert_eq(product(cat, "r2")->gender, VT_GENDER_UNKNOWN);
    vt_catalog_free(cat);
}


Test(catalog, gender_keywords_follow_configuration)
{
    const char *text = "{\"id\":\"k1\",\"name\":\"Rasierwasser fuer Kerle\"}\n";
    char err[256] = "";
    struct vt_catalog *cat;
    FILE *in;

    vt_config_defaults(&test_cfg);
    cr_assert_eq(vt_config_set(&test_cfg, "gender.keywords_male", "kerle", err, sizeof err), 0,
                 "%s", err);
    in = fmemopen((void *)text, strlen(text), "r");
    cr_assert_not_null(in);
    cat = vt_catalog_load_stream(in, "test", &test_cfg, err, sizeof err);
    fclose(in);
    cr_assert_not_null(cat, "%s", err);
    cr_assert_eq(product(cat, "k1")->gender, VT_GENDER_MALE);
    vt_catalog_free(cat);

    in = fmemopen((void *)text, strlen(text), "r");
    cr_assert_not_null(in);
    cat = vt_catalog_load_stream(in, "test", NULL, err, sizeof err);
    fclose(in);
    cr_assert_not_null(cat, "%s", err);
    cr_assert_eq(product(cat, "k1")->gender, VT_GENDER_UNKNOWN,
                 "without a configuration no keywords apply");
    vt_catalog_free(cat);
}


Test(catalog, id_allows_any_printable_utf8)
{
    struct vt_catalog *cat = load_text("{\"id\":\"p 2\\\"<x>\"}\n"
                                       "{\"id\":\"a{b}\"}\n"
                                       "{\"id\":\"D\xc3\xbc" "ft/50 ml\"}\n"
                                       "{\"id\":\"\\u00e9t\xc3\xa9\"}\n"
                                       "{\"id\":\"lip\xf0\x9f\x92\x84\"}\n"
                                       "{\"id\":\"back\\\\u0000slash\"}\n");

    cr_assert_eq(vt_catalog_stats(cat)->rejected, 0);
    cr_assert_eq(vt_catalog_size(cat), 6);
    product(cat, "p 2\"<x>");
    product(cat, "a{b}");
    product(cat, "D\xc3\xbc" "ft/50 ml");
    product(cat, "\xc3\xa9t\xc3\xa9");
    product(cat, "lip\xf0\x9f\x92\x84");
    product(cat, "back\\u0000slash");
    vt_catalog_free(cat);
}


Test(catalog, id_invalid_bytes_rejected)
{
    static const char *const lines[] = {
        "{\"id\":\"tab\\there\"}",        /* 0x09 */
        "{\"id\":\"bell\\u0007\"}",       /* 0x07 */
        "{\"id\":\"del\\u007f\"}",        /* 0x7F */
        "{\"id\":\"nul\\u0000cut\"}",     /* would load as "nul" */
        "{\"id\":\"ff\xff\"}",            /* never valid in UTF-8 */
        "{\"id\":\"cut\xc3\"}",           /* a sequence cut short */
        "{\"id\":\"slash\xc0\xaf\"}",     /* an overlong '/' */
        "{\"id\":\"sur\xed\xa0\x80\"}",   /* a UTF-16 surrogate */
        "{\"id\":\"big\xf4\x90\x80\x80\"}", /* above U+10FFFF */
    };

    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        char text[128];
        struct vt_catalog *cat;

        snprintf(text, sizeof text, "%s\n{\"id\":\"good\"}\n", lines[i]);
        cat = load_text(text);
        cr_assert_eq(vt_catalog_stats(cat)->rejected, 1, "line %s", lines[i]);
        cr_assert_eq(vt_catalog_size(cat), 1, "line %s", lines[i]);
        cr_assert_neq(vt_catalog_find(cat, "good", 4), VT_CATALOG_NONE);
        cr_assert_eq(vt_catalog_find(cat, "nul", 3), VT_CATALOG_NONE);
        vt_catalog_free(cat);
    }
}


Test(catalog, id_longer_than_max_rejected)
{
    char text[512];
    char id[VT_PRODUCT_ID_MAX + 2];

    memset(id, 'x', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    snprintf(text, sizeof text, "{\"id\":\"%s\"}\n{\"id\":\"%.*s\"}\n", id, VT_PRODUCT_ID_MAX,
             id);

    struct vt_catalog *cat = load_text(text);
    cr_assert_eq(vt_catalog_stats(cat)->rejected, 1);
    cr_assert_eq(vt_catalog_size(cat), 1, "an id of exactly the maximum length loads");
    vt_catalog_free(cat);
}


Test(catalog, line_over_64_kib_rejected)
{
    size_t name_len = 70 * 1024;
    size_t size = name_len + 128;
    char *text = malloc(size);
    cr_assert_not_null(text);

    int head = snprintf(text, size, "{\"id\":\"big\",\"name\":\"");
    memset(text + head, 'n', name_len);
    snprintf(text + head + name_len, size - (size_t)head - name_len,
             "\"}\n{\"id\":\"after\"}\n");

    struct vt_catalog *cat = load_text(text);
    cr_assert_eq(vt_catalog_stats(cat)->rejected, 1);
    cr_assert_eq(vt_catalog_find(cat, "big", 3), VT_CATALOG_NONE);
    cr_assert_neq(vt_catalog_find(cat, "after", 5), VT_CATALOG_NONE,
                  "the line after a long one still loads");
    vt_catalog_free(cat);
    free(text);
}


Test(catalog, duplicates_replace_earlier)
{
    struct vt_catalog *cat = load_text(
        "{\"id\":\"a\",\"brand\":\"Old\",\"popularity\":1,\"stock\":3}\n"
        "{\"id\":\"b\",\"popularity\":2}\n"
        "{\"id\":\"a\",\"brand\":\"New\",\"popularity\":9,\"stock\":0}\n");
    const struct vt_catalog_stats *stats = vt_catalog_stats(cat);
    const struct vt_product *a = product(cat, "a");
    size_t n = 0;
    const uint32_t *popular = vt_catalog_popular(cat, &n);

    cr_assert_eq(stats->products, 2);
    cr_assert_eq(stats->duplicates, 1);
    cr_assert_eq(stats->lines, 3);
    cr_assert_str_eq(vt_catalog_brand_name(cat, a->brand), "New");
    cr_assert_eq(a->stock, 0);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(vt_catalog_get(cat, popular[0])->id, "a", "the new popularity counts");
    vt_catalog_free(cat);
}


Test(catalog, brand_lookup_ignores_ascii_case)
{
    struct vt_catalog *cat = load_text("{\"id\":\"1\",\"brand\":\"Lacqua\"}\n"
                                       "{\"id\":\"2\",\"brand\":\"LACQUA\"}\n"
                                       "{\"id\":\"3\",\"brand\":\" lacqua \"}\n"
                                       "{\"id\":\"4\",\"brand\":\"Orvena\"}\n"
                                       "{\"id\":\"5\",\"brand\":\"\"}\n");
    uint32_t lacqua = vt_catalog_brand_find(cat, "lAcQuA", 6);

    cr_assert_neq(lacqua, VT_CATALOG_NONE);
    cr_assert_str_eq(vt_catalog_brand_name(cat, lacqua), "Lacqua",
                     "the first spelling is the display name");
    cr_assert_eq(product(cat, "2")->brand, lacqua);
    cr_assert_eq(product(cat, "3")->brand, lacqua);
    cr_assert_eq(product(cat, "5")->brand, VT_CATALOG_NONE, "an empty brand is no brand");
    cr_assert_eq(vt_catalog_brand_find(cat, "lacqua  ", 8), lacqua);
    cr_assert_eq(vt_catalog_brand_find(cat, "lacqu", 5), VT_CATALOG_NONE);
    cr_assert_eq(vt_catalog_brand_find(cat, "", 0), VT_CATALOG_NONE);
    cr_assert_eq(vt_catalog_stats(cat)->brands, 2);
    cr_assert_null(vt_catalog_brand_name(cat, 2));
    vt_catalog_free(cat);
}


Test(catalog, category_lookup_ignores_ascii_case)
{
    struct vt_catalog *cat = load_text("{\"id\":\"1\",\"categories\":[\"Make-Up\"]}\n"
                                       "{\"id\":\"2\",\"categories\":\"make-up\"}\n");
    uint32_t makeup = vt_catalog_category_find(cat, "MAKE-UP", 7);

    cr_assert_neq(makeup, VT_CATALOG_NONE);
    cr_assert_str_eq(vt_catalog_category_name(cat, makeup), "Make-Up");
    cr_assert_eq(vt_catalog_stats(cat)->categories, 1);
    vt_catalog_free(cat);
}


Test(catalog, long_brand_name_truncated)
{
    char name[VT_NAME_MAX + 20];
    char text[512];

    memset(name, 'b', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    snprintf(text, sizeof text, "{\"id\":\"1\",\"brand\":\"%s\"}\n", name);

    struct vt_catalog *cat = load_text(text);
    uint32_t brand = product(cat, "1")->brand;
    cr_assert_eq(strlen(vt_catalog_brand_name(cat, brand)), VT_NAME_MAX);
    cr_assert_eq(vt_catalog_brand_find(cat, name, strlen(name)), brand);
    vt_catalog_free(cat);
}


Test(catalog, index_order_popularity_then_id)
{
    struct vt_catalog *cat = load_text(
        "{\"id\":\"c\",\"brand\":\"X\",\"categories\":[\"k\"],\"popularity\":5}\n"
        "{\"id\":\"a\",\"brand\":\"Y\",\"categories\":[\"k\",\"m\"],\"popularity\":5}\n"
        "{\"id\":\"d\",\"brand\":\"X\",\"categories\":[\"m\"],\"popularity\":7}\n"
        "{\"id\":\"b\",\"brand\":\"X\",\"categories\":[\"k\"],\"popularity\":5}\n"
        "{\"id\":\"e\",\"popularity\":0.5}\n");
    size_t n = 0;
    const uint32_t *list;

    list = vt_catalog_popular(cat, &n);
    expect_order(cat, list, n, (const char *[]){"d", "a", "b", "c", "e"}, 5);

    list = vt_catalog_by_brand(cat, vt_catalog_brand_find(cat, "x", 1), &n);
    expect_order(cat, list, n, (const char *[]){"d", "b", "c"}, 3);

    list = vt_catalog_by_category(cat, vt_catalog_category_find(cat, "k", 1), &n);
    expect_order(cat, list, n, (const char *[]){"a", "b", "c"}, 3);

    list = vt_catalog_by_category(cat, vt_catalog_category_find(cat, "m", 1), &n);
    expect_order(cat, list, n, (const char *[]){"d", "a"}, 2);

    cr_assert_float_eq(vt_catalog_max_popularity(cat), 7, 1e-9);
    vt_catalog_free(cat);
}


Test(catalog, unknown_name_gives_empty_list)
{
    struct vt_catalog *cat = load_text("{\"id\":\"1\",\"brand\":\"X\"}\n");
    size_t n = 99;

    cr_assert_not_null(vt_catalog_by_brand(cat, VT_CATALOG_NONE, &n));
    cr_assert_eq(n, 0);
    n = 99;
    cr_assert_not_null(vt_catalog_by_category(cat, 0, &n));
    cr_assert_eq(n, 0);
    cr_assert_null(vt_catalog_get(cat, 1));
    vt_catalog_free(cat);
}


Test(catalog, empty_path_gives_empty_catalog)
{
    char err[256] = "";
    size_t n = 99;

    vt_config_defaults(&test_cfg);
    struct vt_catalog *cat = vt_catalog_load("", &test_cfg, err, sizeof err);
    cr_assert_not_null(cat, "%s", err);
    cr_assert_eq(vt_catalog_size(cat), 0);
    vt_catalog_popular(cat, &n);
    cr_assert_eq(n, 0);
    cr_assert_float_eq(vt_catalog_max_popularity(cat), 0, 1e-9);
    cr_assert_eq(vt_catalog_find(cat, "1", 1), VT_CATALOG_NONE);
    vt_catalog_free(cat);
}


Test(catalog, missing_file_reports_path)
{
    char err[256] = "";

    vt_config_defaults(&test_cfg);
    struct vt_catalog *cat =
        vt_catalog_load("/nonexistent/vitrine-catalog.jsonl", &test_cfg, err, sizeof err);
    cr_assert_null(cat);
    cr_assert(strstr(err, "/nonexistent/vitrine-catalog.jsonl") != NULL, "message: %s", err);
}


Test(catalog, loads_from_file)
{
    char path[] = "/tmp/vitrine-test-catalog-XXXXXX";
    char err[256] = "";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);

    const char *text = "{\"id\":\"f1\",\"popularity\":3}\n{\"id\":\"f2\"}";
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);

    vt_config_defaults(&test_cfg);
    struct vt_catalog *cat = vt_catalog_load(path, &test_cfg, err, sizeof err);
    unlink(path);
    cr_assert_not_null(cat, "%s", err);
    cr_assert_eq(vt_catalog_size(cat), 2, "the last line needs no line break");
    vt_catalog_free(cat);
}
