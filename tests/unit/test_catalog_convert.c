/*
 * Unit tests of the catalogue converters (tools/catalog_rows.c) on small inline CSV text,
 * plus an end-to-end count over the real files, which must be present.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "catalog_rows.h"
#include "csv.h"
#include "vitrine/util.h"

#define COLLECT_MAX 128

#ifndef VITRINE_SOURCE_DIR
#define VITRINE_SOURCE_DIR "."
#endif

/* The real catalogue files are not part of the repository, because their licences are
 * unclear. The end-to-end test reads them from the directory in VITRINE_TEST_DATA (set by
 * tests/run.sh), or else from this one next to the source tree, and fails when neither
 * exists. */
#define REAL_DATA_NEAR_SOURCE VITRINE_SOURCE_DIR "/../shared/data/real"

struct collected {
    struct vt_catalog_entry entries[COLLECT_MAX];
    size_t n;
    size_t total; /* entries seen, also beyond COLLECT_MAX */
};


static int collect_entry(const struct vt_catalog_entry *entry, void *arg)
{
    struct collected *c = arg;

    if (c->n < COLLECT_MAX)
        c->entries[c->n++] = *entry;
    c->total++;
    return 0;
}


static const struct vt_catalog_entry *find_entry(const struct collected *c, const char *id)
{
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->entries[i].id, id) == 0)
            return &c->entries[i];
    }
    return NULL;
}


/* A CSV reader over inline text; close both with close_reader. */
static struct vt_csv *open_reader(const char *text, char separator, FILE **in)
{
    struct vt_csv_options options = {.separator = separator};
    struct vt_csv *reader;

    *in = fmemopen((void *)text, strlen(text), "r");
    cr_assert_not_null(*in);
    reader = vt_csv_open(*in, &options);
    cr_assert_not_null(reader);
    return reader;
}


static void close_reader(struct vt_csv *reader, FILE *in)
{
    vt_csv_close(reader);
    fclose(in);
}


/* Convert REES46 item and event text; events may be NULL. */
static void convert_rees46(const char *items, const char *events, struct vt_convert_ctx *ctx,
                           struct vt_convert_stats *stats)
{
    struct vt_rees46 *catalog = vt_rees46_new();
    struct vt_csv *reader;
    FILE *in;

    cr_assert_not_null(catalog);
    reader = open_reader(items, ',', &in);
    cr_assert_eq(vt_rees46_add_items(catalog, reader, "item.csv", ctx, stats), 0, "%s",
                 ctx->error);
    close_reader(reader, in);
    if (events != NULL) {
        reader = open_reader(events, ',', &in);
        cr_assert_eq(vt_rees46_add_events(catalog, reader, "events.csv", ctx, stats), 0, "%s",
                     ctx->error);
        close_reader(reader, in);
    }
    cr_assert_eq(vt_rees46_emit(catalog, ctx, stats), 0, "%s", ctx->error);
    vt_rees46_free(catalog);
}


static uint64_t count_of(const struct vt_counts *counts, const char *name)
{
    for (size_t i = 0; i < counts->n; i++) {
        if (strcmp(counts->names[i], name) == 0)
            return counts->values[i];
    }
    return 0;
}


Test(catalog_rees46, merge_rules)
{
    static const char items[] =
        "product_id,category_id,category_code,brand\n"
        "100,,,\n"
        "100,256,,alpha\n"            /* empty fields lose to non-empty ones */
        "200,512,,beta\n"
        "200,512,,gamma\n"
        "200,,,gamma\n"                /* gamma 2 : beta 1 */
        "300,768,,delta\n"
        "300,1024,,epsilon\n"          /* tie: the value seen first wins */
        "400,,hair.care.shampoo,\n"
        "400,1280,,\n"                 /* a category_code is preferred to a category_id */
        "500,,,\n";
    struct collected got = {0};
    struct vt_convert_ctx ctx;
    struct vt_convert_stats stats = {.source = "rees46"};
    const struct vt_catalog_entry *e;

    vt_convert_ctx_init(&ctx, collect_entry, &got);
    convert_rees46(items, NULL, &ctx, &stats);

    cr_assert_eq(got.n, 5);
    cr_assert_eq(stats.rows, 10);
    cr_assert_eq(stats.written, 5);
    cr_assert_eq(stats.merged, 5);
    cr_assert_str_eq(got.entries[0].id, "100", "products keep the order of first rows");
    cr_assert_str_eq(got.entries[4].id, "500");

    e = find_entry(&got, "100");
    cr_assert_str_eq(e->brand, "alpha");
    cr_assert_eq(e->n_categories, 1);
    cr_assert_str_eq(e->categories[0], "cat-256");
    cr_assert_str_eq(e->name, "");
    cr_assert(e->price < 0);
    cr_assert(e->stock < 0);
    cr_assert(e->popularity < 0);

    e = find_entry(&got, "200");
    cr_assert_str_eq(e->brand, "gamma");
    cr_assert_str_eq(e->categories[0], "cat-512");

    e = find_entry(&got, "300");
    cr_assert_str_eq(e->brand, "delta");
    cr_assert_str_eq(e->categories[0], "cat-768");

    e = find_entry(&got, "400");
    cr_assert_str_eq(e->brand, "");
    cr_assert_eq(e->n_categories, 3);
    cr_assert_str_eq(e->categories[0], "hair");
    cr_assert_str_eq(e->categories[1], "hair.care");
    cr_assert_str_eq(e->categories[2], "hair.care.shampoo");

    e = find_entry(&got, "500");
    cr_assert_eq(e->n_categories, 0);
    cr_assert_str_eq(e->brand, "");
    vt_convert_ctx_free(&ctx);
}


Test(catalog_rees46, price_and_popularity_from_events)
{
    static const char items[] = "product_id,category_id,category_code,brand\n"
                                "1,,,a\n"
                                "2,,,b\n"
                                "3,,,c\n";
    static const char events[] =
        "event_time,event_type,product_id,price,user_id,user_session\n"
        "2022-10-01 00:00:10 UTC,view,1,2.50,7,s1\n"
        "2022-10-01 00:00:05 UTC,cart,1,9.99,7,s1\n"          /* older: price stays 2.50 */
        "2022-10-01 00:00:20 UTC,purchase,1,2.75,7,s1\n"
        "2022-10-01 00:00:20 UTC,remove_from_cart,2,4.00,8,s2\n"
        "2022-10-01 00:00:30 UTC,remove_from_cart,2,,8,s2\n"  /* empty price keeps 4.00 */
        "2022-10-01 00:00:40 UTC,view,9,1.00,8,s2\n"          /* not in the items */
        "bad time,view,1,1.00,8,s2\n"
        "2022-10-01 00:00:50 UTC,wishlist,1,1.00,8,s2\n"
        "2022-10-01 00:00:50 UTC,view,1,abc,8,s2\n";
    struct collected got = {0};
    struct vt_convert_ctx ctx;
    struct vt_convert_stats stats = {.source = "rees46"};
    const struct vt_catalog_entry *e;

    vt_convert_ctx_init(&ctx, collect_entry, &got);
    convert_rees46(items, events, &ctx, &stats);

    e = find_entry(&got, "1");
    cr_assert_not_null(e);
    cr_assert_float_eq(e->price, 2.75, 1e-9);
    cr_assert_float_eq(e->popularity, 1 + 3 + 5 + 1, 1e-9);

    e = find_entry(&got, "2");
    cr_assert_float_eq(e->price, 4.00, 1e-9);
    cr_assert(e->popularity < 0, "removals alone give no popularity");

    e = find_entry(&got, "3");
    cr_assert(e->price < 0, "a product without events has no price");

    cr_assert_eq(stats.event_rows, 9);
    cr_assert_eq(stats.event_rows_used, 6);
    cr_assert_eq(count_of(&stats.event_skipped, "unknown_product"), 1);
    cr_assert_eq(count_of(&stats.event_skipped, "invalid_time"), 1);
    cr_assert_eq(count_of(&stats.event_skipped, "unknown_event_type"), 1);
    cr_assert_eq(count_of(&stats.dropped, "invalid_event_price"), 1);
    vt_convert_ctx_free(&ctx);
}


Test(catalog_rees46, rejects_bad_ids)
{
    static const char items[] = "product_id,category_id,category_code,brand\n"
                                ",1,,a\n"
                                "has space,2,,b\n"
                                "ok,3,,c\n";
    struct collected got = {0};
    struct vt_convert_ctx ctx;
    struct vt_convert_stats stats = {.source = "rees46"};

    vt_convert_ctx_init(&ctx, collect_entry, &got);
    convert_rees46(items, NULL, &ctx, &stats);
    cr_assert_eq(got.n, 1);
    cr_assert_eq(count_of(&stats.rejected, "missing_id"), 1);
    cr_assert_eq(count_of(&stats.rejected, "invalid_id"), 1);
    vt_convert_ctx_free(&ctx);
}


Test(catalog_rees46, missing_column_is_input_error)
{
    static const char items[] = "id,brand\n1,a\n";
    struct collected got = {0};
    struct vt_convert_ctx ctx;
    struct vt_convert_stats stats = {.source = "rees46"};
    struct vt_rees46 *catalog = vt_rees46_new();
    FILE *in;
    struct vt_csv *reader = open_reader(items, ',', &in);

    vt_convert_ctx_init(&ctx, collect_entry, &got);
    cr_assert_eq(vt_rees46_add_items(catalog, reader, "x.csv", &ctx, &stats), -1);
    cr_assert(ctx.input_invalid);
    cr_assert_not_null(strstr(ctx.error, "product_id"), "%s", ctx.error);
    close_reader(reader, in);
    vt_rees46_free(catalog);
    vt_convert_ctx_free(&ctx);
}


/* Add REES46 item text under the file name "item.csv" and return the converter's result.
 * With events set, the items are valid and the events text is added after them as
 * "events.csv". */
static int add_rees46_text(const char *items, const char *events, struct vt_convert_ctx *ctx)
{
    struct vt_convert_stats stats = {.source = "rees46"};
    struct vt_rees46 *catalog = vt_rees46_new();
    struct vt_csv *reader;
    FILE *in;
    int rc;

    cr_assert_not_null(catalog);
    reader = open_reader(items, ',', &in);
    rc = vt_rees46_add_items(catalog, reader, "item.csv", ctx, &stats);
    close_reader(reader, in);
    if (rc == 0 && events != NULL) {
        reader = open_reader(events, ',', &in);
        rc = vt_rees46_add_events(catalog, reader, "events.csv", ctx, &stats);
        close_reader(reader, in);
    }
    vt_rees46_free(catalog);
    return rc;
}


Test(catalog_rees46, events_file_as_items_rejected)
{
    static const char events[] = "event_time,event_type,product_id,price,user_id,user_session\n"
                                 "2022-10-01 00:00:10 UTC,view,1,2.50,7,s1\n";
    struct collected got = {0};
    struct vt_convert_ctx ctx;

    vt_convert_ctx_init(&ctx, collect_entry, &got);
    cr_assert_eq(add_rees46_text(events, NULL, &ctx), -1);
    cr_assert(ctx.input_invalid);
    cr_assert_str_eq(ctx.error, "item.csv: missing in the header: one of 'category_id', "
                                "'category_code', 'brand'; is this the right file for this "
                                "option?");
    cr_assert_eq(got.total, 0, "no product is written");
    vt_convert_ctx_free(&ctx);
}


Test(catalog_rees46, items_header_names_every_missing_column)
{
    struct collected got = {0};
    struct vt_convert_ctx ctx;

    vt_convert_ctx_init(&ctx, collect_entry, &got);
    cr_assert_eq(add_rees46_text("sku,title\n1,a\n", NULL, &ctx), -1);
    cr_assert(ctx.input_invalid);
    cr_assert_str_eq(ctx.error, "item.csv: missing in the header: 'product_id' and one of "
                                "'category_id', 'category_code', 'brand'; is this the right "
                                "file for this option?");
    vt_convert_ctx_free(&ctx);
}


Test(catalog_rees46, items_need_one_attribute_column)
{
    static const char *const headers[] = {
        "product_id,brand\n1,a\n",
        "product_id,category_id\n1,256\n",
        "product_id,category_code\n1,hair.care\n",
    };

    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        struct collected got = {0};
        struct vt_convert_ctx ctx;

        vt_convert_ctx_init(&ctx, collect_entry, &got);
        cr_assert_eq(add_rees46_text(headers[i], NULL, &ctx), 0, "%s: %s", headers[i],
                     ctx.error);
        vt_convert_ctx_free(&ctx);
    }
}


Test(catalog_rees46, events_header_checked)
{
    static const char items[] = "product_id,category_id,category_code,brand\n1,,,a\n";
    static const struct {
        const char *events;
        const char *missing;
    } cases[] = {
        {"event_time,event_type,product_id,user_id\n", "'price'"},
        {"product_id,category_id,category_code,brand\n1,,,a\n",
         "'event_time', 'event_type', 'price'"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct collected got = {0};
        struct vt_convert_ctx ctx;
        char expected[VT_CONVERT_ERROR_MAX];

        snprintf(expected, sizeof expected,
                 "events.csv: missing in the header: %s; is this the right file for this "
                 "option?",
                 cases[i].missing);
        vt_convert_ctx_init(&ctx, collect_entry, &got);
        cr_assert_eq(add_rees46_text(items, cases[i].events, &ctx), -1, "%s", cases[i].events);
        cr_assert(ctx.input_invalid);
        cr_assert_str_eq(ctx.error, expected);
        vt_convert_ctx_free(&ctx);
    }
}


Test(catalog_noon, mapping)
{
    static const char text[] =
        "perfume_id,brand,name,old_price,new_price,ml,concentration,department,scents,"
        "base_note,middle_note,item_rating,seller,seller_rating,num_seller_ratings\r\n"
        "0,ACME PARFUMS,Night Harbour,300,199.5,100,EDT,Men,Woody,\"Moss, Cedar\","
        "\"Pepper, Amber\",5,shop,4.2,1K\r\n"
        "1,Maison Test,Garden Veil,400,99.95,50,EDP,Women,Floral,x,y,4.8,shop,4.2,1K\r\n"
        "2,House Example,Amber Field,250,,100,,Unisex,Oriental,x,y,5,shop,4.2,1K\r\n"
        ",NoId,Nothing,1,1,1,EDT,Men,x,x,y,5,shop,4.2,1K\r\n"
        "3,Brand,\"Name \"\"quoted\"\"\",1,n/a,1,EDP,Kids,x,x,y,5,shop,4.2,1K\r\n";
    struct collected got = {0};
    struct vt_convert_ctx ctx;
    struct vt_convert_stats stats = {.source = "noon"};
    const struct vt_catalog_entry *e;
    FILE *in;
    struct vt_csv *reader = open_reader(text, ',', &in);

    vt_convert_ctx_init(&ctx, collect_entry, &got);
    cr_assert_eq(vt_convert_noon(reader, "noon.csv", &ctx, &stats), 0, "%s", ctx.error);
    close_reader(reader, in);

    cr_assert_eq(stats.rows, 5);
    cr_assert_eq(stats.written, 4);
    cr_assert_eq(count_of(&stats.rejected, "missing_id"), 1);

    e = find_entry(&got, "noon-0");
    cr_assert_not_null(e);
    cr_assert_str_eq(e->brand, "ACME PARFUMS");
    cr_assert_str_eq(e->name, "Night Harbour");
    cr_assert_eq(e->gender, VT_GENDER_MALE);
    cr_assert_float_eq(e->price, 199.5, 1e-9);
    cr_assert_eq(e->n_categories, 2);
    cr_assert_str_eq(e->categories[0], "perfume");
    cr_assert_str_eq(e->categories[1], "perfume.edt");

    e = find_entry(&got, "noon-1");
    cr_assert_eq(e->gender, VT_GENDER_FEMALE);
    cr_assert_str_eq(e->categories[1], "perfume.edp");

    e = find_entry(&got, "noon-2");
    cr_assert_eq(e->gender, VT_GENDER_UNISEX);
    cr_assert(e->price < 0);
    cr_assert_eq(e->n_categories, 1);

    e = find_entry(&got, "noon-3");
    cr_assert_str_eq(e->name, "Name \"quoted\"");
    cr_assert_eq(e->gender, VT_GENDER_UNKNOWN);
    cr_assert(e->price < 0);
    cr_assert_eq(count_of(&stats.dropped, "invalid_price"), 1);
    cr_assert_eq(count_of(&stats.dropped, "unknown_department"), 1);
    vt_convert_ctx_free(&ctx);
}


Test(catalog_ebay, mapping)
{
    static const char text[] =
        "\xEF\xBB\xBF\"brand\",\"title\",\"type\",\"price\",\"priceWithCurrency\","
        "\"available\",\"availableText\",\"sold\",\"lastUpdated\",\"itemLocation\"\n"
        "\"Cr\xC3\xA8me Co\",\"Garden Veil 3.4 oz for Women\",\"Eau de  Parfum\","
        "\"79.99\",\"US $79.99\",\"5\",\"5 available / 40 sold\",\"40\","
        "\"May 1, 2024 10:00:00 PDT\",\"Springfield, Test\"\n"
        "\"As Shown\",\"Unisex Wood 100ml\",\"Perfume\",\"10\",\"US $10\",\"\",\"\",\"\","
        "\"x\",\"y\"\n"
        "\"AS  SHOWN\",\"Rose, \"\"limited\"\"\",\"\",\"abc\",\"\",\"x\",\"\",\"7\",\"x\",\"y\"\n";
    struct collected got = {0};
    struct vt_convert_ctx ctx;
    struct vt_convert_stats stats = {.source = "ebay-women"};
    const struct vt_catalog_entry *e;
    FILE *in;
    struct vt_csv *reader = open_reader(text, ',', &in);

    vt_convert_ctx_init(&ctx, collect_entry, &got);
    cr_assert_eq(vt_convert_ebay(reader, "ebay.csv", "ebay-w-", VT_GENDER_FEMALE, &ctx, &stats),
                 0, "%s", ctx.error);
    close_reader(reader, in);
    cr_assert_eq(got.n, 3);

    e = find_entry(&got, "ebay-w-1");
    cr_assert_not_null(e);
    cr_assert_str_eq(e->brand, "Cr\xC3\xA8me Co");
    cr_assert_str_eq(e->name, "Garden Veil 3.4 oz for Women");
    cr_assert_eq(e->gender, VT_GENDER_FEMALE);
    cr_assert_float_eq(e->price, 79.99, 1e-9);
    cr_assert_eq(e->stock, 5);
    cr_assert_float_eq(e->popularity, 40, 1e-9);
    cr_assert_str_eq(e->categories[1], "perfume.eau de parfum");

    e = find_entry(&got, "ebay-w-2");
    cr_assert_str_eq(e->brand, "", "placeholder brands are dropped");
    cr_assert_eq(e->gender, VT_GENDER_UNISEX);
    cr_assert_eq(e->stock, -1);
    cr_assert(e->popularity < 0);

    e = find_entry(&got, "ebay-w-3");
    cr_assert_str_eq(e->brand, "");
    cr_assert_str_eq(e->name, "Rose, \"limited\"");
    cr_assert(e->price < 0);
    cr_assert_eq(e->n_categories, 1);
    cr_assert_eq(count_of(&stats.dropped, "placeholder_brand"), 2);
    cr_assert_eq(count_of(&stats.dropped, "invalid_price"), 1);
    cr_assert_eq(count_of(&stats.dropped, "invalid_available"), 1);
    vt_convert_ctx_free(&ctx);
}


Test(catalog_ebay, placeholder_brands)
{
    static const char *const placeholders[] = {"AS SHOW", "As Shown", "Unbranded", "AS  SHOWN",
                                               "As Picture Show", "as showed", "", "Branded",
                                               "Multiple Brands"};
    static const char *const brands[] = {"Acme", "Example Brands", "Maison Test", "As Is Perfumes"};

    for (size_t i = 0; i < sizeof placeholders / sizeof placeholders[0]; i++)
        cr_assert(vt_brand_is_placeholder(placeholders[i]), "'%s'", placeholders[i]);
    for (size_t i = 0; i < sizeof brands / sizeof brands[0]; i++)
        cr_assert_not(vt_brand_is_placeholder(brands[i]), "'%s'", brands[i]);
}


Test(catalog_fragdb, mapping)
{
    static const char text[] =
        "pid|url|brand|name|year|gender|rating|price_value\r\n"
        "11|https://x/11.html|House & Co;b7|Blue Garden|2001|gender_for_women|3.9;12345|"
        "price_ok:40:49.0\r\n"
        "12|https://x|Acme;b1|Cedar Road|2015|gender_for_men|4.1;200|\r\n"
        "13|https://x|Maison Test;b9|Amber Field|2007|gender_for_women_and_men||\r\n"
        "9|https://x|NoSemicolon|Odd|2007|gender_other|4.0;many|\r\n";
    struct collected got = {0};
    struct vt_convert_ctx ctx;
    struct vt_convert_stats stats = {.source = "fragdb"};
    const struct vt_catalog_entry *e;
    FILE *in;
    struct vt_csv *reader = open_reader(text, '|', &in);

    vt_convert_ctx_init(&ctx, collect_entry, &got);
    cr_assert_eq(vt_convert_fragdb(reader, "fragrances.csv", &ctx, &stats), 0, "%s",
                 ctx.error);
    close_reader(reader, in);
    cr_assert_eq(got.n, 4);

    e = find_entry(&got, "fragdb-11");
    cr_assert_not_null(e);
    cr_assert_str_eq(e->brand, "House & Co");
    cr_assert_str_eq(e->name, "Blue Garden");
    cr_assert_eq(e->gender, VT_GENDER_FEMALE);
    cr_assert_float_eq(e->popularity, 12345, 1e-9);
    cr_assert(e->price < 0);
    cr_assert_eq(e->n_categories, 1);
    cr_assert_str_eq(e->categories[0], "perfume");

    cr_assert_eq(find_entry(&got, "fragdb-12")->gender, VT_GENDER_MALE);
    cr_assert_eq(find_entry(&got, "fragdb-13")->gender, VT_GENDER_UNISEX);
    cr_assert(find_entry(&got, "fragdb-13")->popularity < 0);

    e = find_entry(&got, "fragdb-9");
    cr_assert_str_eq(e->brand, "NoSemicolon");
    cr_assert_eq(e->gender, VT_GENDER_UNKNOWN);
    cr_assert_eq(count_of(&stats.dropped, "unknown_gender"), 1);
    cr_assert_eq(count_of(&stats.dropped, "invalid_rating"), 1);
    vt_convert_ctx_free(&ctx);
}


Test(catalog_ids, collisions_across_sources_rejected)
{
    static const char noon[] = "perfume_id,brand,name,new_price,concentration,department\n"
                               "7,a,b,1,EDT,Men\n"
                               "7,a,again,1,EDT,Men\n";
    static const char items[] = "product_id,category_id,category_code,brand\n"
                                "noon-7,,,x\n";
    struct collected got = {0};
    struct vt_convert_ctx ctx;
    struct vt_convert_stats stats = {.source = "noon"};
    struct vt_convert_stats rees = {.source = "rees46"};
    FILE *in;
    struct vt_csv *reader = open_reader(noon, ',', &in);

    vt_convert_ctx_init(&ctx, collect_entry, &got);
    cr_assert_eq(vt_convert_noon(reader, "noon.csv", &ctx, &stats), 0);
    close_reader(reader, in);
    convert_rees46(items, NULL, &ctx, &rees);

    cr_assert_eq(got.n, 1);
    cr_assert_str_eq(got.entries[0].name, "b", "the first product with an id is kept");
    cr_assert_eq(count_of(&stats.rejected, "duplicate_id"), 1);
    cr_assert_eq(count_of(&rees.rejected, "duplicate_id"), 1);
    vt_convert_ctx_free(&ctx);
}


Test(catalog_json, escaping_and_optional_fields)
{
    struct vt_catalog_entry e;
    char *text;

    vt_catalog_entry_init(&e);
    vt_strlcpy(e.id, "p1", sizeof e.id);
    text = vt_catalog_entry_json(&e);
    cr_assert_str_eq(text, "{\"id\":\"p1\"}");
    free(text);

    vt_strlcpy(e.name, "Say \"hi\"\\\n\x01", sizeof e.name);
    vt_strlcpy(e.brand, "Cr\xC3\xA8me Co", sizeof e.brand);
    vt_strlcpy(e.categories[0], "perfume", sizeof e.categories[0]);
    e.n_categories = 1;
    e.gender = VT_GENDER_UNISEX;
    e.price = 2.62;
    e.stock = 0;
    e.popularity = 31;
    text = vt_catalog_entry_json(&e);
    cr_assert_str_eq(text,
                     "{\"id\":\"p1\",\"name\":\"Say \\\"hi\\\"\\\\\\n\\u0001\","
                     "\"brand\":\"Cr\xC3\xA8me Co\",\"categories\":[\"perfume\"],"
                     "\"gender\":\"unisex\",\"price\":2.62,\"stock\":0,\"popularity\":31}");
    free(text);
}


Test(catalog_text, category_path)
{
    char out[VT_ITEM_CATEGORIES_MAX][VT_NAME_MAX + 1];

    cr_assert_eq(vt_category_path("a.b.c", out, VT_ITEM_CATEGORIES_MAX), 3);
    cr_assert_str_eq(out[0], "a");
    cr_assert_str_eq(out[1], "a.b");
    cr_assert_str_eq(out[2], "a.b.c");
    cr_assert_eq(vt_category_path("a.b.c.d.e", out, VT_ITEM_CATEGORIES_MAX), 4);
    cr_assert_str_eq(out[3], "a.b.c.d");
    cr_assert_eq(vt_category_path("", out, VT_ITEM_CATEGORIES_MAX), 0);
    cr_assert_eq(vt_category_path("single", out, VT_ITEM_CATEGORIES_MAX), 1);
    cr_assert_str_eq(out[0], "single");
    cr_assert_eq(vt_category_path("a..b.", out, VT_ITEM_CATEGORIES_MAX), 2);
    cr_assert_str_eq(out[1], "a..b");
}


Test(catalog_text, utf8_clean)
{
    char out[16];

    cr_assert_eq(vt_utf8_clean(out, sizeof out, "ok\xC3\xB4", 4), 4);
    cr_assert_str_eq(out, "ok\xC3\xB4");
    vt_utf8_clean(out, sizeof out, "a\xFF" "b", 3);
    cr_assert_str_eq(out, "a\xEF\xBF\xBD" "b");
    vt_utf8_clean(out, sizeof out, "\xC3", 1);
    cr_assert_str_eq(out, "\xEF\xBF\xBD", "a cut sequence is replaced");
    vt_utf8_clean(out, sizeof out, "\xED\xA0\x80", 3);
    cr_assert_str_eq(out, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", "surrogates are invalid");
    cr_assert_eq(vt_utf8_clean(out, 4, "ab\xC3\xB4", 4), 2, "no character is cut in half");
}


/* The real data directory: VITRINE_TEST_DATA when set and not empty, else
 * REAL_DATA_NEAR_SOURCE. Fails the test when the directory does not exist. */
static const char *real_data_dir(void)
{
    const char *dir = getenv("VITRINE_TEST_DATA");
    struct stat st;

    if (dir == NULL || dir[0] == '\0')
        dir = REAL_DATA_NEAR_SOURCE;
    cr_assert(stat(dir, &st) == 0 && S_ISDIR(st.st_mode),
              "real data directory %s not found; set VITRINE_TEST_DATA to the directory "
              "that contains rees46_cosmetics/ and perfume_catalogs/",
              dir);
    return dir;
}


/* Convert one real perfume catalogue and return the number of products. */
static uint64_t convert_real(const char *dir, const char *source, const char *file,
                             char separator)
{
    struct collected got = {0};
    struct vt_convert_ctx ctx;
    struct vt_convert_stats stats = {.source = source};
    struct vt_csv_options options = {.separator = separator, .max_record = 256 * 1024};
    char path[1024];
    FILE *in;
    struct vt_csv *reader;
    int rc;

    snprintf(path, sizeof path, "%s/perfume_catalogs/%s", dir, file);
    in = fopen(path, "r");
    cr_assert_not_null(in, "cannot open %s", path);
    reader = vt_csv_open(in, &options);
    vt_convert_ctx_init(&ctx, collect_entry, &got);
    if (strcmp(source, "noon") == 0)
        rc = vt_convert_noon(reader, path, &ctx, &stats);
    else if (strcmp(source, "ebay-men") == 0)
        rc = vt_convert_ebay(reader, path, "ebay-m-", VT_GENDER_MALE, &ctx, &stats);
    else if (strcmp(source, "ebay-women") == 0)
        rc = vt_convert_ebay(reader, path, "ebay-w-", VT_GENDER_FEMALE, &ctx, &stats);
    else
        rc = vt_convert_fragdb(reader, path, &ctx, &stats);
    cr_assert_eq(rc, 0, "%s", ctx.error);
    cr_assert_eq(vt_counts_total(&stats.rejected), 0, "%s rejected rows", source);
    vt_csv_close(reader);
    fclose(in);
    vt_convert_ctx_free(&ctx);
    return got.total;
}


Test(catalog_real, counts_of_real_files)
{
    const char *dir = real_data_dir();
    struct collected got = {0};
    struct vt_convert_ctx ctx;
    struct vt_convert_stats stats = {.source = "rees46"};
    struct vt_rees46 *catalog;
    struct vt_csv_options options = {.max_record = 256 * 1024};
    static const char *const months[] = {"2022_oct", "2022_nov", "2022_dec", "2023_jan",
                                         "2023_feb"};
    char path[1024];

    catalog = vt_rees46_new();
    vt_convert_ctx_init(&ctx, collect_entry, &got);
    snprintf(path, sizeof path, "%s/rees46_cosmetics/item.csv", dir);
    FILE *in = fopen(path, "r");
    cr_assert_not_null(in, "cannot open %s", path);
    struct vt_csv *reader = vt_csv_open(in, &options);
    cr_assert_eq(vt_rees46_add_items(catalog, reader, path, &ctx, &stats), 0, "%s", ctx.error);
    vt_csv_close(reader);
    fclose(in);

    for (size_t i = 0; i < 5; i++) {
        snprintf(path, sizeof path, "%s/rees46_cosmetics/customer_data_%s.csv", dir,
                 months[i]);
        in = fopen(path, "r");
        cr_assert_not_null(in, "cannot open %s", path);
        reader = vt_csv_open(in, &options);
        cr_assert_eq(vt_rees46_add_events(catalog, reader, path, &ctx, &stats), 0, "%s",
                     ctx.error);
        vt_csv_close(reader);
        fclose(in);
    }
    cr_assert_eq(vt_rees46_emit(catalog, &ctx, &stats), 0, "%s", ctx.error);
    vt_rees46_free(catalog);
    vt_convert_ctx_free(&ctx);

    cr_assert_eq(stats.rows, 109579);
    cr_assert_eq(got.total, 54043);
    cr_assert_eq(stats.merged, 109579 - 54043);
    cr_assert_eq(stats.event_rows, 4994);
    cr_assert_eq(stats.event_rows_used, 4994);

    cr_assert_eq(convert_real(dir, "noon", "noon_perfumes.csv", ','), 1002);
    cr_assert_eq(convert_real(dir, "ebay-men", "ebay_mens_perfume.csv", ','), 1000);
    cr_assert_eq(convert_real(dir, "ebay-women", "ebay_womens_perfume.csv", ','), 1000);
    cr_assert_eq(convert_real(dir, "fragdb", "fragdb_sample_fragrances.csv", '|'), 10);
}
