/*
 * Unit tests of the Mapp Intelligence Data Streams decoder: nested root-stream records,
 * flattened custom-stream records and mixtures, basket status mapping, placeholder items,
 * the type of skipped records, the accepted time window, and brand, category and gender
 * from configured ca<N> and cb<N> parameters.
 *
 * Payloads are decoded from exactly sized heap copies without a trailing NUL, so that
 * AddressSanitizer reports any read past the length.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vitrine/config.h"
#include "vitrine/decode.h"
#include "vitrine/event.h"
#include "vitrine/util.h"

static struct vt_config cfg;
static struct vt_event ev;
static char msg[512];


static void set_param(const char *name, const char *value)
{
    char err[256];

    cr_assert_eq(vt_config_set(&cfg, name, value, err, sizeof err), 0, "%s", err);
}


/* Defaults plus brand = ca1, category = ca2, gender = cb3. */
static void setup_params(void)
{
    vt_config_defaults(&cfg);
    set_param("mapp.brand_param", "ca1");
    set_param("mapp.category_param", "ca2");
    set_param("mapp.gender_param", "cb3");
}


static enum vt_decode_status decode_bytes(const char *data, size_t len)
{
    char *copy = malloc(len > 0 ? len : 1);
    enum vt_decode_status status;

    cr_assert_not_null(copy);
    memcpy(copy, data, len);
    status = vt_decode_event(copy, len, &cfg, &ev, msg, sizeof msg);
    free(copy);
    return status;
}


static enum vt_decode_status decode(const char *json)
{
    return decode_bytes(json, strlen(json));
}


static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}


static enum vt_decode_status decode_file(const char *name)
{
    char path[1024];
    char *data;
    long size;
    FILE *f;
    enum vt_decode_status status;

    snprintf(path, sizeof path, "%s/tests/data/events/%s", VITRINE_SOURCE_DIR, name);
    f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    data = malloc((size_t)size);
    cr_assert_not_null(data);
    cr_assert_eq(fread(data, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    status = decode_bytes(data, (size_t)size);
    free(data);
    return status;
}


TestSuite(decode_mapp, .init = setup_params);


Test(decode_mapp, nested_basket_with_two_items)
{
    cr_assert_eq(decode_file("mapp_root_add_to_cart.json"), VT_DECODE_OK, "%s", msg);

    cr_assert_eq(ev.format, VT_FORMAT_MAPP);
    cr_assert_eq(ev.type, VT_EV_ADD_TO_CART);
    cr_assert_str_eq(ev.session_id, "2138210064900146323");
    cr_assert_str_eq(ev.user_id, "2138210064900146323");
    cr_assert_str_eq(ev.customer_id, "5f4dcc3b5aa765d61d8327deb882cf99");
    cr_assert_str_eq(ev.event_id, "1714568723456000123");
    /* 14:05:23.456 at +02:00 is 12:05:23.456 UTC. */
    cr_assert_eq(ev.ts_ms, 1714565123456LL);
    cr_assert_str_eq(ev.page, "de.produkt.chanel-no5-edp-50ml");
    cr_assert_str_eq(ev.referrer, "https://www.example-shop.de/damen/duefte");
    cr_assert_str_eq(ev.placement, "");
    cr_assert_str_eq(ev.order_id, "");
    cr_assert_eq(ev.order_value, -1);

    cr_assert_eq(ev.n_items, 2);
    cr_assert_eq(ev.n_items_dropped, 0);

    cr_assert_str_eq(ev.items[0].id, "CH-N5-EDP-50");
    cr_assert_eq(ev.items[0].quantity, 1);
    cr_assert_float_eq(ev.items[0].price, 129.95, 1e-9);
    cr_assert_eq(ev.items[0].position, 1);
    cr_assert_str_eq(ev.items[0].brand, "Chanel");
    cr_assert_eq(ev.items[0].n_categories, 3);
    cr_assert_str_eq(ev.items[0].categories[0], "parfum");
    cr_assert_str_eq(ev.items[0].categories[1], "parfum.damen");
    cr_assert_str_eq(ev.items[0].categories[2], "parfum.damen.edp");
    /* The item has no cb3, so the request-level basket.parameters value applies. */
    cr_assert_eq(ev.items[0].gender, VT_GENDER_FEMALE);

    cr_assert_str_eq(ev.items[1].id, "DI-SAUV-SG-150");
    cr_assert_eq(ev.items[1].quantity, 2);
    cr_assert_float_eq(ev.items[1].price, 24.5, 1e-9);
    cr_assert_eq(ev.items[1].position, 2);
    cr_assert_str_eq(ev.items[1].brand, "Dior");
    cr_assert_eq(ev.items[1].n_categories, 2);
    cr_assert_str_eq(ev.items[1].categories[1], "koerperpflege.herren");
    /* The item's own cb3 wins over the request-level value. */
    cr_assert_eq(ev.items[1].gender, VT_GENDER_MALE);
}


Test(decode_mapp, flattened_custom_stream_list)
{
    cr_assert_eq(decode_file("mapp_custom_list.json"), VT_DECODE_OK, "%s", msg);

    cr_assert_eq(ev.format, VT_FORMAT_MAPP);
    cr_assert_eq(ev.type, VT_EV_IMPRESSION);
    cr_assert_str_eq(ev.placement, "");
    cr_assert_str_eq(ev.session_id, "3344210064900140001");
    cr_assert_str_eq(ev.user_id, "3344210064900140001");
    cr_assert_str_eq(ev.event_id, "1714569001002000456");
    cr_assert_eq(ev.ts_ms, 1714565401002LL);
    cr_assert_str_eq(ev.page, "de.kategorie.makeup.augen");
    cr_assert_str_eq(ev.referrer, "", "referrerUrl \"1\" is not a usable referrer");

    cr_assert_eq(ev.n_items, 2, "the placeholder item 3 must be skipped");
    cr_assert_eq(ev.n_items_dropped, 0);

    cr_assert_str_eq(ev.items[0].id, "LO-MASC-VOL");
    cr_assert_eq(ev.items[0].position, 1);
    cr_assert_eq(ev.items[0].quantity, 1);
    cr_assert_float_eq(ev.items[0].price, 14.99, 1e-9);
    cr_assert_str_eq(ev.items[0].brand, "L'Oréal Paris");
    cr_assert_eq(ev.items[0].n_categories, 3);
    cr_assert_str_eq(ev.items[0].categories[2], "makeup.augen.mascara");
    cr_assert_eq(ev.items[0].gender, VT_GENDER_FEMALE);

    cr_assert_str_eq(ev.items[1].id, "MA-LINER-BLK");
    cr_assert_eq(ev.items[1].position, 2);
    cr_assert_str_eq(ev.items[1].brand, "Maybelline");
    cr_assert_eq(ev.items[1].n_categories, 2);
    cr_assert_eq(ev.items[1].gender, VT_GENDER_UNKNOWN);
}


Test(decode_mapp, purchase_with_order_and_campaign)
{
    cr_assert_eq(decode_file("mapp_root_purchase.json"), VT_DECODE_OK, "%s", msg);

    cr_assert_eq(ev.type, VT_EV_PURCHASE);
    cr_assert_str_eq(ev.order_id, "ORD-2024-000812");
    cr_assert_float_eq(ev.order_value, 178.45, 1e-9);
    cr_assert_str_eq(ev.campaign, "newsletter.2024-05");
    cr_assert_str_eq(ev.referrer, "", "referrerUrl \"0\" means no referrer");
    cr_assert_eq(ev.ts_ms, 1714566912000LL);
    cr_assert_eq(ev.n_items, 2);
    cr_assert_str_eq(ev.items[1].id, "DI-SAUV-SG-150");
    cr_assert_eq(ev.items[1].position, 2);
}


Test(decode_mapp, placeholder_items_skipped)
{
    const char *json =
        "{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
        "\"basket\":{\"status\":\"view\",\"items\":["
        "{\"quantity\":0,\"price\":0.0,\"product\":{\"name\":\"-\"},"
        "\"parameters\":{\"textValues\":{\"3\":{\"key\":\"3\",\"value\":\"women\"}}}},"
        "{\"quantity\":1,\"price\":5,\"product\":{\"name\":\"A-1\"}},"
        "{\"quantity\":1,\"price\":0,\"product\":{\"name\":\"-\"}}]},"
        "\"basket_items_1_product_name\":\"-\",\"basket_items_1_quantity\":0}";

    cr_assert_eq(decode(json), VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.type, VT_EV_PRODUCT_VIEW);
    cr_assert_eq(ev.n_items, 1);
    cr_assert_eq(ev.n_items_dropped, 0, "placeholders are skipped, not dropped");
    cr_assert_str_eq(ev.items[0].id, "A-1");
}


Test(decode_mapp, basket_status_mapping)
{
    static const struct {
        const char *status;
        enum vt_event_type type;
        const char *placement;
    } cases[] = {
        {"list", VT_EV_IMPRESSION, ""},
        {"view", VT_EV_PRODUCT_VIEW, ""},
        {"add", VT_EV_ADD_TO_CART, ""},
        {"addToCart", VT_EV_ADD_TO_CART, ""},
        {"del", VT_EV_REMOVE_FROM_CART, ""},
        {"deleteFromCart", VT_EV_REMOVE_FROM_CART, ""},
        {"add-wl", VT_EV_ADD_TO_WISHLIST, ""},
        {"addToWishlist", VT_EV_ADD_TO_WISHLIST, ""},
        {"del-wl", VT_EV_REMOVE_FROM_WISHLIST, ""},
        {"deleteFromWishlist", VT_EV_REMOVE_FROM_WISHLIST, ""},
        {"checkout", VT_EV_CHECKOUT, ""},
        {"conf", VT_EV_PURCHASE, ""},
        {"confirmation", VT_EV_PURCHASE, ""},
        {"displayReco", VT_EV_IMPRESSION, "reco"},
        {"clickReco", VT_EV_CLICK, "reco"},
        {"VIEW", VT_EV_PRODUCT_VIEW, ""},
        {"AddToCart", VT_EV_ADD_TO_CART, ""},
        {"Add-WL", VT_EV_ADD_TO_WISHLIST, ""},
        {"CONF", VT_EV_PURCHASE, ""},
        {"displayreco", VT_EV_IMPRESSION, "reco"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[256];

        snprintf(json, sizeof json,
                 "{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                 "\"basket\":{\"status\":\"%s\",\"items\":[{\"product\":{\"name\":\"P1\"}}]}}",
                 cases[i].status);
        cr_assert_eq(decode(json), VT_DECODE_OK, "status %s: %s", cases[i].status, msg);
        cr_assert_eq(ev.type, cases[i].type, "status %s gave %s", cases[i].status,
                     vt_event_type_name(ev.type));
        cr_assert_str_eq(ev.placement, cases[i].placement, "status %s", cases[i].status);
    }
}


Test(decode_mapp, flattened_status_mapping)
{
    cr_assert_eq(decode("{\"session_id\":\"s1\",\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"basket_status\":\"del-wl\",\"basket_items_1_product_name\":\"P1\"}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.type, VT_EV_REMOVE_FROM_WISHLIST);
}


Test(decode_mapp, unknown_status_rejected)
{
    cr_assert_eq(decode("{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"basket\":{\"status\":\"wishlist\"}}"),
                 VT_DECODE_ERR_TYPE);
    cr_assert(strstr(msg, "basket.status") != NULL, "%s", msg);
    cr_assert(strstr(msg, "\"wishlist\"") != NULL, "%s", msg);
}


Test(decode_mapp, status_of_wrong_type_rejected)
{
    cr_assert_eq(decode("{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"basket\":{\"status\":3}}"),
                 VT_DECODE_ERR_FIELD);
    cr_assert_str_eq(msg, "basket.status must be a string, got number 3");
}


Test(decode_mapp, context_without_status)
{
    static const struct {
        const char *context; /* NULL: no detectedContext */
        const char *search;  /* NULL: no internalSearchPhrase */
        enum vt_decode_status status;
        enum vt_event_type type;
    } cases[] = {
        {"Page", NULL, VT_DECODE_OK, VT_EV_PAGE_VIEW},
        {NULL, NULL, VT_DECODE_OK, VT_EV_PAGE_VIEW},
        {"Page", "lippenstift rot", VT_DECODE_OK, VT_EV_SEARCH},
        {"Page", "", VT_DECODE_OK, VT_EV_PAGE_VIEW},
        {"Action", NULL, VT_DECODE_SKIP, VT_EV_TYPE_COUNT},
        {"Heatmap", NULL, VT_DECODE_SKIP, VT_EV_TYPE_COUNT},
        {"Unknown", NULL, VT_DECODE_SKIP, VT_EV_TYPE_COUNT},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[512];
        char context[64] = "";
        char search[96] = "";
        enum vt_decode_status status;

        if (cases[i].context != NULL)
            snprintf(context, sizeof context,
                     ",\"processingMetadata\":{\"detectedContext\":\"%s\"}", cases[i].context);
        if (cases[i].search != NULL)
            snprintf(search, sizeof search, ",\"internalSearchPhrase\":\"%s\"",
                     cases[i].search);
        snprintf(json, sizeof json,
                 "{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                 "\"page\":{\"name\":\"home\"%s}%s}",
                 search, context);

        status = decode(json);
        cr_assert_eq(status, cases[i].status, "case %zu (%s): %s", i, json, msg);
        cr_assert_eq(ev.type, cases[i].type, "case %zu gave %s", i, vt_event_type_name(ev.type));
        if (status == VT_DECODE_OK) {
            cr_assert_str_eq(ev.page, "home");
            cr_assert_str_eq(ev.search, cases[i].search != NULL ? cases[i].search : "");
        } else {
            cr_assert(strstr(msg, cases[i].context) != NULL, "%s", msg);
        }
    }
}


Test(decode_mapp, webtrekk_ignore_action_skipped)
{
    cr_assert_eq(decode("{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"processingMetadata\":{\"detectedContext\":\"Action\"},"
                        "\"action\":{\"name\":\"webtrekk_ignore\"},"
                        "\"basket\":{\"status\":\"view\"}}"),
                 VT_DECODE_SKIP);
    cr_assert(strstr(msg, "webtrekk_ignore") != NULL, "%s", msg);
    cr_assert_eq(ev.type, VT_EV_TYPE_COUNT, "the basket status does not set the type");
}


Test(decode_mapp, action_with_status_decoded)
{
    cr_assert_eq(decode("{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"processingMetadata\":{\"detectedContext\":\"Action\"},"
                        "\"basket\":{\"status\":\"clickReco\",\"items\":["
                        "{\"product\":{\"name\":\"P1\"},\"rank\":3}]}}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.type, VT_EV_CLICK);
    cr_assert_str_eq(ev.placement, "reco");
    cr_assert_eq(ev.items[0].position, 3);
}


Test(decode_mapp, skip_needs_no_session)
{
    cr_assert_eq(decode("{\"processingMetadata\":{\"detectedContext\":\"Heatmap\"}}"),
                 VT_DECODE_SKIP);
    cr_assert_eq(ev.type, VT_EV_TYPE_COUNT);
}


/* Decode a record with one item whose JSON is item_json, plus the request-level basket
 * parameters request_json (may be ""). */
static enum vt_decode_status decode_item(const char *item_json, const char *request_json)
{
    char json[2048];

    snprintf(json, sizeof json,
             "{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
             "\"basket\":{\"status\":\"view\",\"items\":[%s]%s}}",
             item_json, request_json);
    return decode(json);
}


Test(decode_mapp, category_param_value_form)
{
    cr_assert_eq(decode_item("{\"product\":{\"name\":\"P1\",\"categories\":{\"textValues\":{"
                             "\"1\":{\"key\":\"1\",\"value\":\"Chanel\"},"
                             "\"2\":{\"key\":\"2\",\"value\":\"parfum\"}}}}}",
                             ""),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.items[0].brand, "Chanel");
    cr_assert_eq(ev.items[0].n_categories, 1);
    cr_assert_str_eq(ev.items[0].categories[0], "parfum");
}


Test(decode_mapp, category_param_values_form)
{
    cr_assert_eq(decode_item("{\"product\":{\"name\":\"P1\",\"categories\":{\"textValues\":{"
                             "\"1\":{\"key\":\"1\",\"values\":[\"Chanel\",\"Ignored\"]},"
                             "\"2\":{\"key\":\"2\",\"values\":[\"a\",\"\",\"b\",\"c\",\"d\","
                             "\"e\"]}}}}}",
                             ""),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.items[0].brand, "Chanel", "the brand is the first value");
    cr_assert_eq(ev.items[0].n_categories, 4, "empty values skipped, at most 4 kept");
    cr_assert_str_eq(ev.items[0].categories[0], "a");
    cr_assert_str_eq(ev.items[0].categories[1], "b");
    cr_assert_str_eq(ev.items[0].categories[3], "d");
}


Test(decode_mapp, category_param_other_places)
{
    cr_assert_eq(decode_item("{\"product\":{\"name\":\"P1\",\"categories\":{"
                             "\"1\":{\"key\":\"1\",\"value\":\"Dior\"}}},"
                             "\"categories\":{\"2\":\"pflege\"}}",
                             ""),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.items[0].brand, "Dior", "product.categories.<N>");
    cr_assert_eq(ev.items[0].n_categories, 1);
    cr_assert_str_eq(ev.items[0].categories[0], "pflege", "categories.<N> as a string");
}


Test(decode_mapp, ecommerce_param_value_form)
{
    /* Parameter 1 must not match the entries 10 and 11 by their first digit. */
    set_param("mapp.brand_param", "cb10");
    set_param("mapp.category_param", "cb11");
    set_param("mapp.gender_param", "cb1");
    cr_assert_eq(decode_item("{\"product\":{\"name\":\"P1\"},\"parameters\":{\"textValues\":{"
                             "\"10\":{\"key\":\"10\",\"value\":\"Clinique\"},"
                             "\"11\":{\"key\":\"11\",\"value\":\"pflege.gesicht\"},"
                             "\"1\":{\"key\":\"1\",\"value\":\"Herren\"}}}}",
                             ""),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.items[0].brand, "Clinique");
    cr_assert_eq(ev.items[0].n_categories, 1);
    cr_assert_str_eq(ev.items[0].categories[0], "pflege.gesicht");
    cr_assert_eq(ev.items[0].gender, VT_GENDER_MALE);
}


Test(decode_mapp, ecommerce_param_values_form)
{
    set_param("mapp.category_param", "cb11");
    cr_assert_eq(decode_item("{\"product\":{\"name\":\"P1\"},\"parameters\":{\"textValues\":{"
                             "\"11\":{\"key\":\"11\",\"values\":[\"pflege\",\"pflege.haar\"]},"
                             "\"3\":{\"key\":\"3\",\"values\":[\"unisex\"]}}}}",
                             ""),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.items[0].n_categories, 2);
    cr_assert_str_eq(ev.items[0].categories[1], "pflege.haar");
    cr_assert_eq(ev.items[0].gender, VT_GENDER_UNISEX);
}


Test(decode_mapp, ecommerce_param_plain_string)
{
    cr_assert_eq(decode_item("{\"product\":{\"name\":\"P1\"},\"parameters\":{\"3\":\"Damen\"}}",
                             ""),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.items[0].gender, VT_GENDER_FEMALE);
}


Test(decode_mapp, ecommerce_param_request_level)
{
    set_param("mapp.brand_param", "cb10");
    cr_assert_eq(decode_item("{\"product\":{\"name\":\"P1\"}},{\"product\":{\"name\":\"P2\"}}",
                             ",\"parameters\":{\"textValues\":{"
                             "\"10\":{\"key\":\"10\",\"value\":\"Lancome\"},"
                             "\"3\":{\"key\":\"3\",\"values\":[\"f\"]}}}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.n_items, 2);
    for (size_t i = 0; i < 2; i++) {
        cr_assert_str_eq(ev.items[i].brand, "Lancome", "item %zu", i);
        cr_assert_eq(ev.items[i].gender, VT_GENDER_FEMALE, "item %zu", i);
    }
}


Test(decode_mapp, ecommerce_param_request_plain)
{
    cr_assert_eq(decode_item("{\"product\":{\"name\":\"P1\"}}", ",\"parameters\":{\"3\":\"men\"}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.items[0].gender, VT_GENDER_MALE);
}


Test(decode_mapp, product_category_not_request_level)
{
    /* ca<N> is a product category, and basket.parameters contains e-commerce parameters
     * only. */
    cr_assert_eq(decode_item("{\"product\":{\"name\":\"P1\"}}",
                             ",\"parameters\":{\"textValues\":{\"1\":{\"key\":\"1\","
                             "\"value\":\"Chanel\"}}}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.items[0].brand, "");
}


Test(decode_mapp, params_unconfigured_leave_empty)
{
    vt_config_defaults(&cfg);
    cr_assert_eq(decode_file("mapp_root_add_to_cart.json"), VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.n_items, 2);
    cr_assert_str_eq(ev.items[0].brand, "");
    cr_assert_eq(ev.items[0].n_categories, 0);
    cr_assert_eq(ev.items[0].gender, VT_GENDER_UNKNOWN);
}


Test(decode_mapp, flattened_param_forms)
{
    cr_assert_eq(decode("{\"session_id\":\"s1\",\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"basket_status\":\"view\","
                        "\"basket_items_1_product_name\":\"P1\","
                        "\"basket_items_1_product_categories_textValues_1_values\":[\"Nars\"],"
                        "\"basket_items_1_product_categories_textValues_2_value\":\"makeup\","
                        "\"basket_items_2_product_name\":\"P2\","
                        "\"basket_parameters_textValues_3_value\":\"women\"}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.n_items, 2);
    cr_assert_str_eq(ev.items[0].brand, "Nars");
    cr_assert_eq(ev.items[0].n_categories, 1);
    cr_assert_str_eq(ev.items[0].categories[0], "makeup");
    cr_assert_eq(ev.items[0].gender, VT_GENDER_FEMALE);
    cr_assert_eq(ev.items[1].gender, VT_GENDER_FEMALE);
    cr_assert_str_eq(ev.items[1].brand, "");
}


Test(decode_mapp, referrer_special_values)
{
    static const struct {
        const char *referrer_json;
        const char *expected;
    } cases[] = {
        {"\"0\"", ""},
        {"\"1\"", ""},
        {"\"2\"", ""},
        {"null", ""},
        {"\"https://www.google.de/\"", "https://www.google.de/"},
        {"\"10\"", "10"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[256];

        snprintf(json, sizeof json,
                 "{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                 "\"referrerUrl\":%s}",
                 cases[i].referrer_json);
        cr_assert_eq(decode(json), VT_DECODE_OK, "%s", msg);
        cr_assert_str_eq(ev.referrer, cases[i].expected, "referrerUrl %s",
                         cases[i].referrer_json);
    }
}


Test(decode_mapp, nested_and_flattened_items_mixed)
{
    /* basket.items[1] must not be read as flattened item 1. */
    cr_assert_eq(decode("{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"basket\":{\"status\":\"view\",\"items\":["
                        "{\"product\":{\"name\":\"N0\"}},"
                        "{\"product\":{\"name\":\"N1\"},\"price\":9}],"
                        "\"items_2_product_name\":\"F2\"},"
                        "\"basket_items_1_product_name\":\"F1\","
                        "\"basket_items_1_rank\":\"4\"}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.n_items, 4);
    cr_assert_str_eq(ev.items[0].id, "N0");
    cr_assert_str_eq(ev.items[1].id, "N1");
    cr_assert_str_eq(ev.items[2].id, "F1");
    cr_assert_eq(ev.items[2].position, 4, "a rank given as text is accepted");
    cr_assert_eq(ev.items[2].price, -1, "F1 has no price of its own");
    cr_assert_str_eq(ev.items[3].id, "F2");
}


Test(decode_mapp, item_objects_keyed_by_number)
{
    cr_assert_eq(decode("{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"basket_status\":\"add\","
                        "\"basket_items\":{\"2\":{\"product\":{\"name\":\"B\"},\"quantity\":3},"
                        "\"1\":{\"product_name\":\"A\"}}}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.n_items, 2);
    cr_assert_str_eq(ev.items[0].id, "A");
    cr_assert_str_eq(ev.items[1].id, "B");
    cr_assert_eq(ev.items[1].quantity, 3);
}


Test(decode_mapp, list_position_for_list_status)
{
    const char *items = "{\"product\":{\"name\":\"P1\"},\"rank\":2,\"listPosition\":7},"
                        "{\"product\":{\"name\":\"P2\"},\"rank\":5}";
    char json[512];

    snprintf(json, sizeof json,
             "{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
             "\"basket\":{\"status\":\"list\",\"items\":[%s]}}",
             items);
    cr_assert_eq(decode(json), VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.items[0].position, 7);
    cr_assert_eq(ev.items[1].position, 5, "rank stands in for a missing listPosition");

    cr_assert_eq(decode_item(items, ""), VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.items[0].position, 2, "a product view uses the rank");
}


Test(decode_mapp, item_ids_checked)
{
    char long_id[200];
    char json[1024];

    memset(long_id, 'x', 129);
    long_id[129] = '\0';
    snprintf(json, sizeof json,
             "{\"product\":{\"name\":4006000123456}},"
             "{\"product\":{\"name\":\"\"}},"
             "{\"product\":{\"name\":\"bad\\u0007id\"}},"
             "{\"product\":{\"name\":\"%s\"}},"
             "{\"quantity\":1},"
             "{\"product\":{\"id\":\"ID-ONLY\"}},"
             "{\"product\":{\"name\":12.5}}",
             long_id);
    cr_assert_eq(decode_item(json, ""), VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.n_items, 2);
    cr_assert_str_eq(ev.items[0].id, "4006000123456");
    cr_assert_str_eq(ev.items[1].id, "ID-ONLY");
    cr_assert_eq(ev.n_items_dropped, 5);
}


Test(decode_mapp, item_id_of_wrong_type_rejected)
{
    cr_assert_eq(decode_item("{\"product\":{\"name\":{\"x\":1}}}", ""), VT_DECODE_ERR_FIELD);
    cr_assert_str_eq(msg, "basket.items[0].product.name must be a string or a whole number, "
                          "got object");

    cr_assert_eq(decode_item("{\"product\":{\"id\":[1]}}", ""), VT_DECODE_ERR_FIELD);
    cr_assert_str_eq(msg, "basket.items[0].product.id must be a string or a whole number, "
                          "got array");
}


Test(decode_mapp, numbers_as_text_accepted)
{
    cr_assert_eq(decode_item("{\"product\":{\"name\":\"P1\"},\"quantity\":\"2\","
                             "\"price\":\"12.50\"}",
                             ""),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.items[0].quantity, 2);
    cr_assert_float_eq(ev.items[0].price, 12.5, 1e-9);
}


Test(decode_mapp, price_not_a_number_rejected)
{
    cr_assert_eq(decode_item("{\"product\":{\"name\":\"P1\"},\"price\":\"abc\"}", ""),
                 VT_DECODE_ERR_FIELD);
    cr_assert_str_eq(msg, "basket.items[0].price must be a number, got string \"abc\"");
}


Test(decode_mapp, flattened_quantity_fraction_rejected)
{
    cr_assert_eq(decode("{\"session_id\":\"s1\",\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"basket_status\":\"add\",\"basket_items_1_product_name\":\"P1\","
                        "\"basket_items_1_quantity\":1.5}"),
                 VT_DECODE_ERR_FIELD);
    cr_assert_str_eq(msg,
                     "basket_items_1_quantity must be a whole number within 32 bits, got "
                     "number 1.5");
}


Test(decode_mapp, out_of_range_values_dropped)
{
    /* tests/unit/test_decode_odd.c covers every range rule in both formats. */
    cr_assert_eq(decode_item("{\"product\":{\"name\":\"P1\"},\"quantity\":-3,\"price\":-0.5},"
                             "{\"product\":{\"name\":\"P2\"},\"price\":1e999}",
                             ""),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.items[0].quantity, -1);
    cr_assert_eq(ev.items[0].price, -1);
    cr_assert_eq(ev.items[1].price, -1);
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_PRICE], 2);
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_QUANTITY], 1);
}


Test(decode_mapp, more_than_fifty_items_counted)
{
    static char json[16384];
    size_t used;

    used = (size_t)snprintf(json, sizeof json,
                            "{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                            "\"basket\":{\"status\":\"list\",\"items\":[");
    for (int i = 0; i < 60; i++)
        used += (size_t)snprintf(json + used, sizeof json - used,
                                 "%s{\"product\":{\"name\":\"P%d\"},\"listPosition\":%d}",
                                 i > 0 ? "," : "", i, i + 1);
    snprintf(json + used, sizeof json - used, "]}}");

    cr_assert_eq(decode(json), VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.n_items, VT_EVENT_ITEMS_MAX);
    cr_assert_eq(ev.n_items_dropped, 10);
    cr_assert_str_eq(ev.items[49].id, "P49");
    cr_assert_eq(ev.items[49].position, 50);
}


Test(decode_mapp, session_id_as_number)
{
    cr_assert_eq(decode("{\"session\":{\"id\":123456789012},"
                        "\"timestamp\":\"2024-05-01T12:00:00Z\"}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.session_id, "123456789012");
}


Test(decode_mapp, session_id_invalid_rejected)
{
    static const char *const ids[] = {"1.5", "\"a b\"", "\"{x}\"", "\"\"", "true", "{}"};

    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        char json[256];

        snprintf(json, sizeof json,
                 "{\"session\":{\"id\":%s},\"timestamp\":\"2024-05-01T12:00:00Z\"}", ids[i]);
        cr_assert_eq(decode(json), VT_DECODE_ERR_SESSION, "session.id %s: %s", ids[i], msg);
        cr_assert(starts_with(msg, "session.id is not a valid id, got "), "%s", msg);
    }
}


Test(decode_mapp, session_id_at_2_pow_53)
{
    static const char *const numbers[] = {"9007199254740992", "9007199254740993",
                                          "-9007199254740992"};
    char json[256];

    cr_assert_eq(decode("{\"session\":{\"id\":9007199254740991},"
                        "\"timestamp\":\"2024-05-01T12:00:00Z\"}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.session_id, "9007199254740991");

    /* 2^53 + 1 parses as 2^53, so both would name one session. */
    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        snprintf(json, sizeof json,
                 "{\"session\":{\"id\":%s},\"timestamp\":\"2024-05-01T12:00:00Z\"}",
                 numbers[i]);
        cr_assert_eq(decode(json), VT_DECODE_ERR_SESSION, "session.id %s: %s", numbers[i],
                     msg);
        cr_assert(starts_with(msg, "session.id is not a valid id, got number "), "%s", msg);
        cr_assert(strstr(msg, "which is 2^53 or more in magnitude and may have lost its "
                              "last digits in the JSON parser, expected the id as a "
                              "string") != NULL,
                  "%s", msg);
    }

    /* A flattened custom-stream session id follows the same rule. */
    cr_assert_eq(decode("{\"session_id\":9007199254740993,"
                        "\"timestamp\":\"2024-05-01T12:00:00Z\"}"),
                 VT_DECODE_ERR_SESSION, "%s", msg);

    cr_assert_eq(decode("{\"session\":{\"id\":\"9007199254740993\"},"
                        "\"timestamp\":\"2024-05-01T12:00:00Z\"}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.session_id, "9007199254740993");
}


Test(decode_mapp, session_id_missing_rejected)
{
    cr_assert_eq(decode("{\"session\":{\"startTimestamp\":\"2024-05-01T12:00:00Z\"},"
                        "\"timestamp\":\"2024-05-01T12:00:00Z\"}"),
                 VT_DECODE_ERR_SESSION);
    cr_assert(starts_with(msg, "session.id is missing"), "%s", msg);
}


Test(decode_mapp, timestamp_checked)
{
    cr_assert_eq(decode("{\"session\":{\"id\":\"s1\"}}"), VT_DECODE_ERR_TIMESTAMP);
    cr_assert(starts_with(msg, "timestamp is missing"), "%s", msg);

    cr_assert_eq(decode("{\"session\":{\"id\":\"s1\"},\"timestamp\":\"01.05.2024 12:00\"}"),
                 VT_DECODE_ERR_TIMESTAMP);
    cr_assert(strstr(msg, "\"01.05.2024 12:00\"") != NULL, "%s", msg);

    cr_assert_eq(decode("{\"session\":{\"id\":\"s1\"},\"timestamp\":1714564800000}"),
                 VT_DECODE_ERR_TIMESTAMP);
}


/* Decode a page request whose timestamp is the given text. */
static enum vt_decode_status decode_at(const char *timestamp)
{
    char json[256];

    snprintf(json, sizeof json, "{\"session\":{\"id\":\"s1\"},\"timestamp\":\"%s\"}",
             timestamp);
    return decode(json);
}


Test(decode_mapp, timestamp_window_lower_end)
{
    static const char *const inside[] = {
        "2000-01-01T00:00:00Z", "2000-01-01T01:00:00+01:00", "2000-01-01T00:00:00.001Z",
    };
    static const char *const outside[] = {
        "1999-12-31T23:59:59.999Z", "2000-01-01T00:59:59+01:00", "1970-01-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
    };

    for (size_t i = 0; i < sizeof inside / sizeof inside[0]; i++)
        cr_assert_eq(decode_at(inside[i]), VT_DECODE_OK, "%s: %s", inside[i], msg);

    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
        cr_assert_eq(decode_at(outside[i]), VT_DECODE_ERR_TIMESTAMP, "%s: %s", outside[i], msg);
        cr_assert(starts_with(msg, "timestamp is outside the accepted time window, got "),
                  "%s", msg);
        cr_assert(strstr(msg, "expected 2000-01-01T00:00:00.000Z to ") != NULL, "%s", msg);
    }
    cr_assert(strstr(msg, "got 0000-01-01T00:00:00.000Z") != NULL, "%s", msg);
}


Test(decode_mapp, timestamp_window_upper_end)
{
    char text[40];
    int64_t minute = 60 * 1000;

    /* A minute of margin keeps the test stable while the clock moves on. */
    vt_time_format_iso8601(vt_now_ms() + VT_DECODE_TS_AHEAD_MAX_MS - minute, text, sizeof text);
    cr_assert_eq(decode_at(text), VT_DECODE_OK, "%s: %s", text, msg);

    vt_time_format_iso8601(vt_now_ms() + VT_DECODE_TS_AHEAD_MAX_MS + minute, text, sizeof text);
    cr_assert_eq(decode_at(text), VT_DECODE_ERR_TIMESTAMP, "%s: %s", text, msg);
    cr_assert(strstr(msg, text) != NULL, "the message names the value: %s", msg);
    cr_assert(strstr(msg, "(24 hours after the current time)") != NULL, "%s", msg);
}


Test(decode_mapp, placeholder_only_product_event_skipped)
{
    static const struct {
        const char *status;
        enum vt_event_type type;
    } cases[] = {
        {"view", VT_EV_PRODUCT_VIEW},       {"add", VT_EV_ADD_TO_CART},
        {"del", VT_EV_REMOVE_FROM_CART},    {"add-wl", VT_EV_ADD_TO_WISHLIST},
        {"del-wl", VT_EV_REMOVE_FROM_WISHLIST},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[512];
        const char *type = vt_event_type_name(cases[i].type);

        snprintf(json, sizeof json,
                 "{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                 "\"basket\":{\"status\":\"%s\",\"items\":["
                 "{\"quantity\":0,\"price\":0,\"product\":{\"name\":\"-\"}}]}}",
                 cases[i].status);
        cr_assert_eq(decode(json), VT_DECODE_SKIP, "status %s: %s", cases[i].status, msg);
        cr_assert_eq(ev.type, cases[i].type, "status %s gave %s", cases[i].status,
                     vt_event_type_name(ev.type));
        cr_assert(starts_with(msg, type), "the message names %s: %s", type, msg);
        cr_assert(strstr(msg, "carries no product") != NULL, "%s", msg);
    }
}


Test(decode_mapp, flattened_placeholder_add_skipped)
{
    cr_assert_eq(decode("{\"session_id\":\"s1\",\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"basket_status\":\"add\",\"basket_items_1_product_name\":\"-\","
                        "\"basket_items_1_quantity\":0}"),
                 VT_DECODE_SKIP);
    cr_assert_eq(ev.type, VT_EV_ADD_TO_CART);
    cr_assert_str_eq(msg, "add_to_cart event carries no product and is skipped");
}


Test(decode_mapp, product_event_with_dropped_ids_skipped)
{
    cr_assert_eq(decode_item("{\"product\":{\"name\":\"\"}},{\"quantity\":1}", ""),
                 VT_DECODE_SKIP);
    cr_assert_eq(ev.type, VT_EV_PRODUCT_VIEW);
    cr_assert_eq(ev.n_items_dropped, 2);
    cr_assert_str_eq(msg, "product_view event carries no product with a usable id (2 dropped) "
                          "and is skipped");
}


Test(decode_mapp, other_types_valid_without_products)
{
    static const struct {
        const char *status;
        enum vt_event_type type;
    } cases[] = {
        {"list", VT_EV_IMPRESSION},   {"displayReco", VT_EV_IMPRESSION},
        {"clickReco", VT_EV_CLICK},   {"checkout", VT_EV_CHECKOUT},
        {"conf", VT_EV_PURCHASE},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[512];

        snprintf(json, sizeof json,
                 "{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                 "\"basket\":{\"status\":\"%s\",\"items\":[{\"product\":{\"name\":\"-\"}}]}}",
                 cases[i].status);
        cr_assert_eq(decode(json), VT_DECODE_OK, "status %s: %s", cases[i].status, msg);
        cr_assert_eq(ev.type, cases[i].type, "status %s", cases[i].status);
        cr_assert_eq(ev.n_items, 0);
    }
}


Test(decode_mapp, time_checked_before_missing_products)
{
    cr_assert_eq(decode("{\"session\":{\"id\":\"s1\"},\"timestamp\":\"1999-05-01T12:00:00Z\","
                        "\"basket\":{\"status\":\"add\"}}"),
                 VT_DECODE_ERR_TIMESTAMP, "%s", msg);
}


Test(decode_mapp, optional_ids_invalid_left_empty)
{
    cr_assert_eq(decode("{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"id\":\"req 1\",\"user\":{\"id\":\"u{1}\","
                        "\"customerId\":\"max+shop@example.com\"}}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.event_id, "");
    cr_assert_str_eq(ev.user_id, "");
    cr_assert_str_eq(ev.customer_id, "");
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_USER_ID], 1);
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_CUSTOMER_ID], 1);
}


Test(decode_mapp, user_id_as_number)
{
    cr_assert_eq(decode("{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"user\":{\"id\":987654321}}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.user_id, "987654321");
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_USER_ID], 0);
}


/* Decode a Mapp page request whose user.<key> is the JSON text `value`, nested as in the
 * root stream (flat false) or flattened as in custom streams. */
static enum vt_decode_status decode_user_member(const char *key, const char *value, bool flat)
{
    char json[512];

    if (flat)
        snprintf(json, sizeof json,
                 "{\"session_id\":\"s1\",\"timestamp\":\"2024-05-01T12:00:00Z\","
                 "\"page_name\":\"home\",\"user_%s\":%s}",
                 key, value);
    else
        snprintf(json, sizeof json,
                 "{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                 "\"page\":{\"name\":\"home\"},\"user\":{\"%s\":%s}}",
                 key, value);
    return decode(json);
}


/* Unusable person ids: guests' placeholders, text outside the id rule, fractions, numbers
 * of 2^53 or more (9007199254740993 parses as 2^53) and JSON types other than string and
 * number. */
static const char *const unusable_person_ids[] = {
    "\"\"",
    "\"N/A\"",
    "\" \"",
    "\"u{1}\"",
    "{}",
    "[\"u1\"]",
    "false",
    "1.5",
    "9007199254740992",
    "9007199254740993",
    "-9007199254740992",
};


Test(decode_mapp, person_ids_unusable_dropped)
{
    static const struct {
        const char *key;
        enum vt_amount_field field;
        enum vt_amount_field other;
    } keys[] = {
        {"id", VT_AMOUNT_USER_ID, VT_AMOUNT_CUSTOMER_ID},
        {"customerId", VT_AMOUNT_CUSTOMER_ID, VT_AMOUNT_USER_ID},
    };

    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        for (size_t i = 0; i < sizeof unusable_person_ids / sizeof unusable_person_ids[0];
             i++) {
            for (int flat = 0; flat <= 1; flat++) {
                const char *value = unusable_person_ids[i];

                cr_assert_eq(decode_user_member(keys[k].key, value, flat), VT_DECODE_OK,
                             "user.%s %s (flat %d): %s", keys[k].key, value, flat, msg);
                cr_assert_str_eq(ev.user_id, "", "user.%s %s", keys[k].key, value);
                cr_assert_str_eq(ev.customer_id, "", "user.%s %s", keys[k].key, value);
                cr_assert_eq(ev.n_values_dropped[keys[k].field], 1,
                             "user.%s %s (flat %d): counted %zu times", keys[k].key, value,
                             flat, ev.n_values_dropped[keys[k].field]);
                cr_assert_eq(ev.n_values_dropped[keys[k].other], 0, "user.%s %s",
                             keys[k].key, value);
                cr_assert_str_eq(ev.page, "home", "user.%s %s", keys[k].key, value);
            }
        }
    }
}


Test(decode_mapp, person_ids_at_2_pow_53)
{
    cr_assert_eq(decode_user_member("id", "9007199254740991", false), VT_DECODE_OK, "%s",
                 msg);
    cr_assert_str_eq(ev.user_id, "9007199254740991");
    cr_assert_eq(decode_user_member("customerId", "-9007199254740991", true), VT_DECODE_OK,
                 "%s", msg);
    cr_assert_str_eq(ev.customer_id, "-9007199254740991");

    /* 2^53 and 2^53 + 1 parse to the same double: dropped, never merged. */
    cr_assert_eq(decode("{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"user\":{\"id\":9007199254740992,"
                        "\"customerId\":9007199254740993}}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.user_id, "");
    cr_assert_str_eq(ev.customer_id, "");
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_USER_ID], 1);
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_CUSTOMER_ID], 1);

    cr_assert_eq(decode("{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"user\":{\"id\":\"9007199254740992\","
                        "\"customerId\":\"9007199254740993\"}}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.user_id, "9007199254740992");
    cr_assert_str_eq(ev.customer_id, "9007199254740993");
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_USER_ID], 0);
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_CUSTOMER_ID], 0);
}


Test(decode_mapp, event_id_unusable_left_empty)
{
    cr_assert_eq(decode("{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"id\":9007199254740993}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.event_id, "");
    for (int f = 0; f < VT_AMOUNT_FIELD_COUNT; f++)
        cr_assert_eq(ev.n_values_dropped[f], 0, "%s counted",
                     vt_decode_amount_field_name((enum vt_amount_field)f));

    cr_assert_eq(decode("{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"id\":9007199254740991}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.event_id, "9007199254740991");

    cr_assert_eq(decode("{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"id\":{}}"),
                 VT_DECODE_ERR_FIELD);
    cr_assert_str_eq(msg, "id must be a string or a whole number, got object");
}


Test(decode_mapp, product_id_at_2_pow_53_dropped)
{
    cr_assert_eq(decode("{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"basket\":{\"status\":\"view\",\"items\":["
                        "{\"product\":{\"name\":9007199254740991}},"
                        "{\"product\":{\"name\":9007199254740993}}]}}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.n_items, 1);
    cr_assert_eq(ev.n_items_dropped, 1);
    cr_assert_str_eq(ev.items[0].id, "9007199254740991");
}


Test(decode_mapp, campaign_fallback_keys)
{
    cr_assert_eq(decode("{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"campaign\":{\"mediaCode\":\"sea.brand\"}}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.campaign, "sea.brand");

    cr_assert_eq(decode("{\"session_id\":\"s1\",\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"mc\":\"affiliate.42\"}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.campaign, "affiliate.42");
}


Test(decode_mapp, long_text_truncated_at_character)
{
    char json[1024];
    char name[400];
    size_t used = 0;

    /* 200 two-byte characters: 400 bytes, cut to 256 at a character boundary. */
    for (int i = 0; i < 199; i++) {
        name[used++] = (char)0xC3;
        name[used++] = (char)0xA4;
    }
    name[used] = '\0';
    snprintf(json, sizeof json,
             "{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
             "\"page\":{\"name\":\"%s\"}}",
             name);
    cr_assert_eq(decode(json), VT_DECODE_OK, "%s", msg);
    cr_assert_eq(strlen(ev.page), 256);
    cr_assert_eq(memcmp(ev.page, name, 256), 0);
}


Test(decode_mapp, null_fields_are_absent)
{
    cr_assert_eq(decode("{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"user\":null,\"page\":{\"name\":null},\"basket\":{\"status\":null,"
                        "\"items\":null},\"order\":{\"value\":null}}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.type, VT_EV_PAGE_VIEW);
    cr_assert_eq(ev.order_value, -1);
    cr_assert_eq(ev.n_items, 0);
}


Test(decode_mapp, flattened_item_with_many_keys)
{
    static char json[16384];
    size_t used;

    /* With more keys than one item's member list fits, the item is searched across the
     * whole root and decodes the same. */
    used = (size_t)snprintf(json, sizeof json,
                            "{\"session_id\":\"s1\",\"timestamp\":\"2024-05-01T12:00:00Z\","
                            "\"basket_status\":\"add\"");
    for (int k = 0; k < 150; k++)
        used += (size_t)snprintf(json + used, sizeof json - used,
                                 ",\"basket_items_1_parameters_textValues_%d_value\":\"v%d\"",
                                 k + 100, k);
    snprintf(json + used, sizeof json - used,
             ",\"basket_items_1_product_name\":\"P1\",\"basket_items_1_quantity\":2,"
             "\"basket_items_1_parameters_textValues_3_value\":\"male\"}");

    cr_assert_eq(decode(json), VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.n_items, 1);
    cr_assert_str_eq(ev.items[0].id, "P1");
    cr_assert_eq(ev.items[0].quantity, 2);
    cr_assert_eq(ev.items[0].gender, VT_GENDER_MALE);
}


/* Decode a page view whose session object has the members session_json (after "id") and
 * whose user object is user_json ("" for none), with mapp.consent_param set to param. */
static enum vt_decode_status decode_consent(const char *param, const char *session_json,
                                            const char *user_json)
{
    char json[2048];

    set_param("mapp.consent_param", param);
    snprintf(json, sizeof json,
             "{\"session\":{\"id\":\"s1\"%s%s},\"timestamp\":\"2024-05-01T12:00:00Z\","
             "\"page\":{\"name\":\"home\"}%s%s}",
             session_json[0] != '\0' ? "," : "", session_json, user_json[0] != '\0' ? "," : "",
             user_json);
    return decode(json);
}


Test(decode_mapp, consent_session_param_values_form)
{
    cr_assert_eq(decode_consent("cs800",
                                "\"parameters\":{\"textValues\":{"
                                "\"800\":{\"key\":\"800\",\"values\":[\"opt-out\"]}}}",
                                ""),
                 VT_DECODE_OK, "%s", msg);
    cr_expect_eq(ev.consent, VT_CONSENT_DENIED);
    cr_expect_not(ev.consent_unreadable);
    cr_expect_str_eq(ev.page, "home");
}


Test(decode_mapp, consent_session_param_value_form)
{
    cr_assert_eq(decode_consent("cs800",
                                "\"parameters\":{\"textValues\":{"
                                "\"800\":{\"key\":\"800\",\"value\":\" Yes \"}}}",
                                ""),
                 VT_DECODE_OK, "%s", msg);
    cr_expect_eq(ev.consent, VT_CONSENT_GRANTED);
    cr_expect_not(ev.consent_unreadable);
}


Test(decode_mapp, consent_session_param_numeric_forms)
{
    cr_assert_eq(decode_consent("cs12",
                                "\"parameters\":{\"numericValues\":{"
                                "\"12\":{\"key\":\"12\",\"values\":[1]}}}",
                                ""),
                 VT_DECODE_OK, "%s", msg);
    cr_expect_eq(ev.consent, VT_CONSENT_GRANTED);

    cr_assert_eq(decode_consent("cs12",
                                "\"parameters\":{\"numericValues\":{"
                                "\"12\":{\"key\":\"12\",\"value\":0}}}",
                                ""),
                 VT_DECODE_OK, "%s", msg);
    cr_expect_eq(ev.consent, VT_CONSENT_DENIED);
    cr_expect_not(ev.consent_unreadable);
}


Test(decode_mapp, consent_text_value_before_numeric)
{
    cr_assert_eq(decode_consent("cs5",
                                "\"parameters\":{"
                                "\"textValues\":{\"5\":{\"key\":\"5\",\"values\":[\"no\"]}},"
                                "\"numericValues\":{\"5\":{\"key\":\"5\",\"values\":[1]}}}",
                                ""),
                 VT_DECODE_OK, "%s", msg);
    cr_expect_eq(ev.consent, VT_CONSENT_DENIED);
}


Test(decode_mapp, consent_first_value_wins)
{
    cr_assert_eq(decode_consent("cs800",
                                "\"parameters\":{\"textValues\":{"
                                "\"800\":{\"key\":\"800\",\"values\":[\"\",\"no\",\"yes\"]}}}",
                                ""),
                 VT_DECODE_OK, "%s", msg);
    cr_expect_eq(ev.consent, VT_CONSENT_DENIED, "empty values are skipped, then the first counts");
}


Test(decode_mapp, consent_param_number_matched_exactly)
{
    cr_assert_eq(decode_consent("cs1",
                                "\"parameters\":{\"textValues\":{"
                                "\"10\":{\"key\":\"10\",\"values\":[\"yes\"]},"
                                "\"11\":{\"key\":\"11\",\"values\":[\"no\"]}}}",
                                ""),
                 VT_DECODE_OK, "%s", msg);
    cr_expect_eq(ev.consent, VT_CONSENT_UNKNOWN);
    cr_expect_not(ev.consent_unreadable, "parameter 1 is absent");
}


Test(decode_mapp, consent_user_category)
{
    cr_assert_eq(decode_consent("uc7", "",
                                "\"user\":{\"id\":\"u1\",\"categories\":{\"textValues\":{"
                                "\"7\":{\"key\":\"7\",\"values\":[\"GRANTED\"]}}}}"),
                 VT_DECODE_OK, "%s", msg);
    cr_expect_eq(ev.consent, VT_CONSENT_GRANTED);
    cr_expect_str_eq(ev.user_id, "u1");

    cr_assert_eq(decode_consent("uc7", "",
                                "\"user\":{\"categories\":{\"numericValues\":{"
                                "\"7\":{\"key\":\"7\",\"value\":0}}}}"),
                 VT_DECODE_OK, "%s", msg);
    cr_expect_eq(ev.consent, VT_CONSENT_DENIED);
}


Test(decode_mapp, consent_user_category_not_session_param)
{
    cr_assert_eq(decode_consent("uc7",
                                "\"parameters\":{\"textValues\":{"
                                "\"7\":{\"key\":\"7\",\"values\":[\"yes\"]}}}",
                                ""),
                 VT_DECODE_OK, "%s", msg);
    cr_expect_eq(ev.consent, VT_CONSENT_UNKNOWN);
    cr_expect_not(ev.consent_unreadable);
}


Test(decode_mapp, consent_flattened_forms)
{
    set_param("mapp.consent_param", "cs800");
    cr_assert_eq(decode("{\"session_id\":\"s1\",\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"page_name\":\"home\","
                        "\"session_parameters_textValues_800_values\":[\"optout\"]}"),
                 VT_DECODE_OK, "%s", msg);
    cr_expect_eq(ev.consent, VT_CONSENT_DENIED);

    set_param("mapp.consent_param", "uc3");
    cr_assert_eq(decode("{\"session_id\":\"s1\",\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"user_categories_numericValues_3_value\":1}"),
                 VT_DECODE_OK, "%s", msg);
    cr_expect_eq(ev.consent, VT_CONSENT_GRANTED);
}


Test(decode_mapp, consent_absent_stays_unknown)
{
    cr_assert_eq(decode_consent("cs800", "", ""), VT_DECODE_OK, "%s", msg);
    cr_expect_eq(ev.consent, VT_CONSENT_UNKNOWN);
    cr_expect_not(ev.consent_unreadable, "an absent parameter is not counted");
}


Test(decode_mapp, consent_unparseable_counted_record_kept)
{
    static const char *const entries[] = {
        "\"textValues\":{\"800\":{\"key\":\"800\",\"values\":[\"maybe\"]}}",
        "\"textValues\":{\"800\":{\"key\":\"800\",\"value\":\"\"}}",
        "\"textValues\":{\"800\":{\"key\":\"800\",\"values\":[{\"a\":1}]}}",
        "\"textValues\":{\"800\":{\"key\":\"800\",\"values\":[null,\"\"]}}",
        "\"textValues\":{\"800\":{\"key\":\"800\",\"values\":[\"perhaps\",\"yes\"]}}",
        "\"numericValues\":{\"800\":{\"key\":\"800\",\"values\":[2]}}",
        "\"numericValues\":{\"800\":{\"key\":\"800\",\"value\":0.5}}",
    };

    for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
        char session[256];

        snprintf(session, sizeof session, "\"parameters\":{%s}", entries[i]);
        cr_assert_eq(decode_consent("cs800", session, ""), VT_DECODE_OK, "case %zu: %s", i,
                     msg);
        cr_expect_eq(ev.consent, VT_CONSENT_UNKNOWN, "case %zu", i);
        cr_expect(ev.consent_unreadable, "case %zu (%s) not counted", i, entries[i]);
        cr_expect_str_eq(ev.page, "home", "case %zu: the rest of the record decodes", i);
    }
}


Test(decode_mapp, consent_json_booleans)
{
    cr_assert_eq(decode_consent("cs800",
                                "\"parameters\":{\"textValues\":{"
                                "\"800\":{\"key\":\"800\",\"value\":true}}}",
                                ""),
                 VT_DECODE_OK, "%s", msg);
    cr_expect_eq(ev.consent, VT_CONSENT_GRANTED);

    cr_assert_eq(decode_consent("cs800",
                                "\"parameters\":{\"textValues\":{"
                                "\"800\":{\"key\":\"800\",\"values\":[null,false]}}}",
                                ""),
                 VT_DECODE_OK, "%s", msg);
    cr_expect_eq(ev.consent, VT_CONSENT_DENIED, "null values are skipped like empty ones");
    cr_expect_not(ev.consent_unreadable);
}


Test(decode_mapp, consent_unconfigured_ignored)
{
    cr_assert_eq(decode_consent("",
                                "\"parameters\":{\"textValues\":{"
                                "\"800\":{\"key\":\"800\",\"values\":[\"no\"]}}}",
                                ""),
                 VT_DECODE_OK, "%s", msg);
    cr_expect_eq(ev.consent, VT_CONSENT_UNKNOWN);
    cr_expect_not(ev.consent_unreadable);
}
