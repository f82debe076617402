/*
 * Unit tests of the canonical event decoder: every field, every event type, the two forms
 * of ts and the accepted time window, products with dropped ids, product events without
 * products, and the checks on field types.
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


static void setup_defaults(void)
{
    vt_config_defaults(&cfg);
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


/* Decode {"type":"page_view","session_id":"s1","ts":1714564800000,<members>}. A page view
 * needs no product, so members may leave products out. */
static enum vt_decode_status decode_with(const char *members)
{
    char json[4096];

    snprintf(json, sizeof json,
             "{\"type\":\"page_view\",\"session_id\":\"s1\",\"ts\":1714564800000,%s}",
             members);
    return decode(json);
}


TestSuite(decode_canonical, .init = setup_defaults);


Test(decode_canonical, purchase_with_every_field)
{
    cr_assert_eq(decode_file("canonical_purchase.json"), VT_DECODE_OK, "%s", msg);

    cr_assert_eq(ev.format, VT_FORMAT_CANONICAL);
    cr_assert_eq(ev.type, VT_EV_PURCHASE);
    cr_assert_str_eq(ev.event_id, "evt-0001");
    cr_assert_str_eq(ev.session_id, "s-7f3a9c");
    cr_assert_str_eq(ev.user_id, "u-42");
    cr_assert_str_eq(ev.customer_id, "");
    cr_assert_eq(ev.ts_ms, 1714566912250LL);
    cr_assert_str_eq(ev.placement, "checkout");
    cr_assert_str_eq(ev.decision_id, "0190b5a2-3c4d-7e8f-9a0b-1c2d3e4f5a6b");
    cr_assert_str_eq(ev.page, "/checkout/confirmation");
    cr_assert_str_eq(ev.referrer, "https://www.example-shop.de/checkout");
    cr_assert_str_eq(ev.campaign, "newsletter.2024-05");
    cr_assert_str_eq(ev.search, "parfum damen");
    cr_assert_str_eq(ev.order_id, "ORD-2024-000812");
    cr_assert_float_eq(ev.order_value, 178.45, 1e-9);

    cr_assert_eq(ev.n_items, 2);
    cr_assert_eq(ev.n_items_dropped, 0);
    cr_assert_str_eq(ev.items[0].id, "CH-N5-EDP-50");
    cr_assert_str_eq(ev.items[0].brand, "Chanel");
    cr_assert_eq(ev.items[0].n_categories, 3);
    cr_assert_str_eq(ev.items[0].categories[0], "parfum");
    cr_assert_str_eq(ev.items[0].categories[2], "parfum.damen.edp");
    cr_assert_eq(ev.items[0].gender, VT_GENDER_FEMALE);
    cr_assert_float_eq(ev.items[0].price, 129.95, 1e-9);
    cr_assert_eq(ev.items[0].quantity, 1);
    cr_assert_eq(ev.items[0].position, 1);

    cr_assert_str_eq(ev.items[1].id, "4006000123456", "a numeric id is written as an integer");
    cr_assert_eq(ev.items[1].n_categories, 1, "a single string is one category");
    cr_assert_str_eq(ev.items[1].categories[0], "koerperpflege.herren");
    cr_assert_eq(ev.items[1].gender, VT_GENDER_MALE);
    cr_assert_eq(ev.items[1].quantity, 2);
    cr_assert_eq(ev.items[1].position, 2);
}


Test(decode_canonical, minimal_product_view)
{
    cr_assert_eq(decode_file("canonical_product_view.json"), VT_DECODE_OK, "%s", msg);

    cr_assert_eq(ev.type, VT_EV_PRODUCT_VIEW);
    cr_assert_eq(ev.ts_ms, 1714566912250LL);
    cr_assert_str_eq(ev.user_id, "");
    cr_assert_str_eq(ev.event_id, "");
    cr_assert_eq(ev.order_value, -1);
    cr_assert_eq(ev.n_items, 1);
    cr_assert_str_eq(ev.items[0].id, "CH-N5-EDP-50");
    cr_assert_str_eq(ev.items[0].brand, "");
    cr_assert_eq(ev.items[0].n_categories, 0);
    cr_assert_eq(ev.items[0].gender, VT_GENDER_UNKNOWN);
    cr_assert_eq(ev.items[0].price, -1);
    cr_assert_eq(ev.items[0].quantity, -1);
    cr_assert_eq(ev.items[0].position, -1);
}


Test(decode_canonical, every_event_type)
{
    static const struct {
        const char *name;
        enum vt_event_type type;
    } cases[] = {
        {"page_view", VT_EV_PAGE_VIEW},
        {"product_view", VT_EV_PRODUCT_VIEW},
        {"product_image_view", VT_EV_PRODUCT_IMAGE_VIEW},
        {"impression", VT_EV_IMPRESSION},
        {"click", VT_EV_CLICK},
        {"add_to_cart", VT_EV_ADD_TO_CART},
        {"remove_from_cart", VT_EV_REMOVE_FROM_CART},
        {"add_to_wishlist", VT_EV_ADD_TO_WISHLIST},
        {"remove_from_wishlist", VT_EV_REMOVE_FROM_WISHLIST},
        {"checkout", VT_EV_CHECKOUT},
        {"purchase", VT_EV_PURCHASE},
        {"search", VT_EV_SEARCH},
    };

    cr_assert_eq(sizeof cases / sizeof cases[0], VT_EV_TYPE_COUNT);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[256];

        snprintf(json, sizeof json,
                 "{\"type\":\"%s\",\"session_id\":\"s1\",\"ts\":\"2024-05-01T12:00:00Z\","
                 "\"products\":[{\"id\":\"P1\"}]}",
                 cases[i].name);
        cr_assert_eq(decode(json), VT_DECODE_OK, "type %s: %s", cases[i].name, msg);
        cr_assert_eq(ev.type, cases[i].type, "type %s", cases[i].name);
        cr_assert_eq(ev.format, VT_FORMAT_CANONICAL);
        cr_assert_eq(ev.n_items, 1);
    }
}


Test(decode_canonical, unknown_type_rejected)
{
    cr_assert_eq(decode("{\"type\":\"Product_View\",\"session_id\":\"s1\",\"ts\":1714564800000}"),
                 VT_DECODE_ERR_TYPE);
    cr_assert(strstr(msg, "type \"Product_View\" is not a known event type") != NULL, "%s",
              msg);
    cr_assert(strstr(msg, "remove_from_wishlist") != NULL, "the message lists the types: %s",
              msg);
}


Test(decode_canonical, ts_as_text)
{
    static const struct {
        const char *ts;
        long long ms;
    } cases[] = {
        {"2024-05-01T12:00:00Z", 1714564800000LL},
        {"2024-05-01T12:00:00.123Z", 1714564800123LL},
        {"2024-05-01T14:00:00+02:00", 1714564800000LL},
        {"2024-05-01T07:30:00.5-04:30", 1714564800500LL},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[256];

        snprintf(json, sizeof json, "{\"type\":\"page_view\",\"session_id\":\"s1\",\"ts\":\"%s\"}",
                 cases[i].ts);
        cr_assert_eq(decode(json), VT_DECODE_OK, "ts %s: %s", cases[i].ts, msg);
        cr_assert_eq(ev.ts_ms, cases[i].ms, "ts %s", cases[i].ts);
    }
}


Test(decode_canonical, ts_as_epoch_milliseconds)
{
    cr_assert_eq(decode("{\"type\":\"page_view\",\"session_id\":\"s1\",\"ts\":1714564800123}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.ts_ms, 1714564800123LL);

    cr_assert_eq(decode("{\"type\":\"page_view\",\"session_id\":\"s1\",\"ts\":1714564800123.75}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.ts_ms, 1714564800123LL, "a fraction of a millisecond is cut off");

    /* Seconds sent as milliseconds fall in January 1970, before the accepted window. */
    cr_assert_eq(decode("{\"type\":\"page_view\",\"session_id\":\"s1\",\"ts\":1714564800}"),
                 VT_DECODE_ERR_TIMESTAMP, "%s", msg);
}


/* Decode a page view whose ts member is the given JSON text. */
static enum vt_decode_status decode_at(const char *ts_json)
{
    char json[256];

    snprintf(json, sizeof json, "{\"type\":\"page_view\",\"session_id\":\"s1\",\"ts\":%s}",
             ts_json);
    return decode(json);
}


Test(decode_canonical, ts_window_lower_end)
{
    static const char *const inside[] = {
        "946684800000", "\"2000-01-01T00:00:00Z\"", "\"2000-01-01T02:00:00+02:00\"",
        "946684800001",
    };
    static const char *const outside[] = {
        "946684799999", "\"1999-12-31T23:59:59.999Z\"", "0", "-5", "\"0000-01-01T00:00:00Z\"",
        "-9007199254740992",
    };

    for (size_t i = 0; i < sizeof inside / sizeof inside[0]; i++)
        cr_assert_eq(decode_at(inside[i]), VT_DECODE_OK, "ts %s: %s", inside[i], msg);
    cr_assert_eq(ev.ts_ms, VT_DECODE_TS_MIN_MS + 1);

    for (size_t i = 0; i < sizeof outside / sizeof outside[0]; i++) {
        cr_assert_eq(decode_at(outside[i]), VT_DECODE_ERR_TIMESTAMP, "ts %s: %s", outside[i],
                     msg);
        cr_assert(strstr(msg, "ts is outside the accepted time window, got ") == msg, "%s",
                  msg);
        cr_assert(strstr(msg, "expected 2000-01-01T00:00:00.000Z to ") != NULL, "%s", msg);
    }

    cr_assert_eq(decode_at("-5"), VT_DECODE_ERR_TIMESTAMP);
    cr_assert(strstr(msg, "got 1969-12-31T23:59:59.995Z (-5 ms since the epoch)") != NULL,
              "the message names the value: %s", msg);
}


Test(decode_canonical, ts_window_upper_end)
{
    char ts[32];
    int64_t minute = 60 * 1000;
    int64_t inside = vt_now_ms() + VT_DECODE_TS_AHEAD_MAX_MS - minute;
    int64_t outside = vt_now_ms() + VT_DECODE_TS_AHEAD_MAX_MS + minute;

    /* A minute of margin keeps the test stable while the clock moves on. */
    snprintf(ts, sizeof ts, "%lld", (long long)inside);
    cr_assert_eq(decode_at(ts), VT_DECODE_OK, "ts %s: %s", ts, msg);
    cr_assert_eq(ev.ts_ms, inside);

    snprintf(ts, sizeof ts, "%lld", (long long)outside);
    cr_assert_eq(decode_at(ts), VT_DECODE_ERR_TIMESTAMP, "ts %s: %s", ts, msg);
    cr_assert(strstr(msg, ts) != NULL, "the message names the value: %s", msg);
    cr_assert(strstr(msg, "(24 hours after the current time)") != NULL, "%s", msg);

    cr_assert_eq(decode_at("\"2100-01-01T00:00:00Z\""), VT_DECODE_ERR_TIMESTAMP, "%s", msg);
}


Test(decode_canonical, product_event_without_products_skipped)
{
    static const enum vt_event_type types[] = {
        VT_EV_PRODUCT_VIEW,    VT_EV_PRODUCT_IMAGE_VIEW, VT_EV_ADD_TO_CART,
        VT_EV_REMOVE_FROM_CART, VT_EV_ADD_TO_WISHLIST,   VT_EV_REMOVE_FROM_WISHLIST,
    };
    static const char *const products[] = {"", ",\"products\":[]", ",\"products\":null"};

    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const char *name = vt_event_type_name(types[i]);
        char expected[128];

        snprintf(expected, sizeof expected, "%s event carries no product and is skipped", name);
        for (size_t k = 0; k < sizeof products / sizeof products[0]; k++) {
            char json[256];

            snprintf(json, sizeof json,
                     "{\"type\":\"%s\",\"session_id\":\"s1\",\"ts\":1714564800000%s}", name,
                     products[k]);
            cr_assert_eq(decode(json), VT_DECODE_SKIP, "%s: %s", json, msg);
            cr_assert_eq(ev.type, types[i], "%s keeps its type", json);
            cr_assert_str_eq(msg, expected);
        }
    }
}


Test(decode_canonical, product_event_all_dropped_skipped)
{
    cr_assert_eq(decode("{\"type\":\"add_to_cart\",\"session_id\":\"s1\",\"ts\":1714564800000,"
                        "\"products\":[{\"id\":\"\"},{\"brand\":\"no id\"}]}"),
                 VT_DECODE_SKIP);
    cr_assert_eq(ev.type, VT_EV_ADD_TO_CART);
    cr_assert_str_eq(msg, "add_to_cart event carries no product with a usable id (2 dropped) "
                          "and is skipped");
}


Test(decode_canonical, other_types_valid_without_products)
{
    static const enum vt_event_type types[] = {
        VT_EV_PAGE_VIEW, VT_EV_IMPRESSION, VT_EV_CLICK,
        VT_EV_CHECKOUT,  VT_EV_PURCHASE,   VT_EV_SEARCH,
    };

    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        char json[256];

        snprintf(json, sizeof json,
                 "{\"type\":\"%s\",\"session_id\":\"s1\",\"ts\":1714564800000}",
                 vt_event_type_name(types[i]));
        cr_assert_eq(decode(json), VT_DECODE_OK, "%s: %s", json, msg);
        cr_assert_eq(ev.type, types[i]);
        cr_assert_eq(ev.n_items, 0);
    }
}


Test(decode_canonical, time_checked_before_missing_products)
{
    cr_assert_eq(decode("{\"type\":\"add_to_cart\",\"session_id\":\"s1\",\"ts\":0}"),
                 VT_DECODE_ERR_TIMESTAMP, "%s", msg);
}


Test(decode_canonical, ts_invalid_rejected)
{
    static const char *const values[] = {
        "\"yesterday\"", "\"2024-13-01T00:00:00Z\"", "\"2024-05-01\"", "true", "1e300", "{}",
    };

    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char json[256];

        snprintf(json, sizeof json, "{\"type\":\"page_view\",\"session_id\":\"s1\",\"ts\":%s}",
                 values[i]);
        cr_assert_eq(decode(json), VT_DECODE_ERR_TIMESTAMP, "ts %s: %s", values[i], msg);
        cr_assert(strstr(msg, "ts is not a valid time") != NULL, "%s", msg);
    }

    cr_assert_eq(decode("{\"type\":\"page_view\",\"session_id\":\"s1\"}"),
                 VT_DECODE_ERR_TIMESTAMP);
    cr_assert(strstr(msg, "ts is missing") != NULL, "%s", msg);
}


Test(decode_canonical, user_id_forms)
{
    cr_assert_eq(decode_with("\"user_id\":12345"), VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.user_id, "12345");

    cr_assert_eq(decode_with("\"user_id\":\"kunde@example.com\""), VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.user_id, "kunde@example.com");

    cr_assert_eq(decode_with("\"user_id\":-9007199254740991"), VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.user_id, "-9007199254740991");
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_USER_ID], 0);
}


/* Decode a page view whose member `name` is the JSON text `value`, and check that the
 * record decodes with the id stored in `stored` left empty and counted once. */
static void check_person_id_dropped(const char *name, const char *value, const char *stored,
                                    enum vt_amount_field field)
{
    char members[256];

    snprintf(members, sizeof members, "\"%s\":%s", name, value);
    cr_assert_eq(decode_with(members), VT_DECODE_OK, "%s %s: %s", name, value, msg);
    cr_assert_str_eq(stored, "", "%s %s", name, value);
    cr_assert_eq(ev.n_values_dropped[field], 1, "%s %s: counted %zu times", name, value,
                 ev.n_values_dropped[field]);
    cr_assert_str_eq(msg, "", "%s %s", name, value);
}


/* Unusable person ids: guests' placeholders, text outside the id rule, fractions, numbers
 * of 2^53 or more (9007199254740993 parses as 2^53) and JSON types other than string and
 * number. */
static const char *const unusable_person_ids[] = {
    "\"\"",
    "\"N/A\"",
    "\" \"",
    "\"kunde 1\"",
    "\"u{1}\"",
    "{}",
    "[1]",
    "true",
    "1.5",
    "9007199254740992",
    "9007199254740993",
    "-9007199254740992",
    "1e300",
};


Test(decode_canonical, user_id_unusable_dropped)
{
    for (size_t i = 0; i < sizeof unusable_person_ids / sizeof unusable_person_ids[0]; i++) {
        check_person_id_dropped("user_id", unusable_person_ids[i], ev.user_id,
                                VT_AMOUNT_USER_ID);
        cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_CUSTOMER_ID], 0);
    }
}


Test(decode_canonical, customer_id_unusable_dropped)
{
    for (size_t i = 0; i < sizeof unusable_person_ids / sizeof unusable_person_ids[0]; i++) {
        check_person_id_dropped("customer_id", unusable_person_ids[i], ev.customer_id,
                                VT_AMOUNT_CUSTOMER_ID);
        cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_USER_ID], 0);
    }
}


Test(decode_canonical, person_ids_dropped_separately)
{
    cr_assert_eq(decode_with("\"user_id\":\"N/A\",\"customer_id\":\"\""), VT_DECODE_OK,
                 "%s", msg);
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_USER_ID], 1);
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_CUSTOMER_ID], 1);

    cr_assert_eq(decode_with("\"user_id\":\"u-42\",\"customer_id\":\"N/A\""), VT_DECODE_OK,
                 "%s", msg);
    cr_assert_str_eq(ev.user_id, "u-42");
    cr_assert_str_eq(ev.customer_id, "");
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_USER_ID], 0);
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_CUSTOMER_ID], 1);

    /* The rest of the record is still read after a dropped id. */
    cr_assert_eq(decode_with("\"user_id\":{},\"page\":\"/home\",\"id\":\"e1\""),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.page, "/home");
    cr_assert_str_eq(ev.event_id, "e1");
}


Test(decode_canonical, person_ids_at_2_pow_53)
{
    /* The largest number below 2^53 is kept with every digit. */
    cr_assert_eq(decode_with("\"user_id\":9007199254740991,"
                             "\"customer_id\":9007199254740991"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.user_id, "9007199254740991");
    cr_assert_str_eq(ev.customer_id, "9007199254740991");

    /* 2^53 and 2^53 + 1 parse to the same double, so neither may name a person. */
    cr_assert_eq(decode_with("\"user_id\":9007199254740992,"
                             "\"customer_id\":9007199254740993"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.user_id, "");
    cr_assert_str_eq(ev.customer_id, "");
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_USER_ID], 1);
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_CUSTOMER_ID], 1);

    /* As strings, the two ids keep every digit and stay apart. */
    cr_assert_eq(decode_with("\"user_id\":\"9007199254740992\","
                             "\"customer_id\":\"9007199254740993\""),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.user_id, "9007199254740992");
    cr_assert_str_eq(ev.customer_id, "9007199254740993");
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_USER_ID], 0);
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_CUSTOMER_ID], 0);
}


Test(decode_canonical, session_id_at_2_pow_53)
{
    static const char *const numbers[] = {"9007199254740992", "9007199254740993"};
    char json[256];

    for (size_t i = 0; i < sizeof numbers / sizeof numbers[0]; i++) {
        snprintf(json, sizeof json,
                 "{\"type\":\"page_view\",\"session_id\":%s,\"ts\":1714564800000}",
                 numbers[i]);
        cr_assert_eq(decode(json), VT_DECODE_ERR_SESSION, "%s: %s", numbers[i], msg);
        cr_assert_str_eq(msg, "session_id must be a string, got number 9007199254740992");

        snprintf(json, sizeof json,
                 "{\"type\":\"page_view\",\"session_id\":\"%s\",\"ts\":1714564800000}",
                 numbers[i]);
        cr_assert_eq(decode(json), VT_DECODE_OK, "%s: %s", numbers[i], msg);
        cr_assert_str_eq(ev.session_id, numbers[i]);
    }
}


Test(decode_canonical, other_ids_at_2_pow_53_rejected)
{
    cr_assert_eq(decode_with("\"id\":9007199254740991,\"decision_id\":-9007199254740991"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.event_id, "9007199254740991");
    cr_assert_str_eq(ev.decision_id, "-9007199254740991");

    cr_assert_eq(decode_with("\"id\":9007199254740993"), VT_DECODE_ERR_FIELD);
    cr_assert_str_eq(msg, "id is not a valid id, got number 9007199254740992, which is 2^53 "
                          "or more in magnitude and may have lost its last digits in the "
                          "JSON parser, expected the id as a string");
    cr_assert_eq(decode_with("\"decision_id\":-9007199254740992"), VT_DECODE_ERR_FIELD);
    cr_assert(strstr(msg, "decision_id is not a valid id, got number -9007199254740992, "
                          "which is 2^53 or more") == msg,
              "%s", msg);

    cr_assert_eq(decode_with("\"id\":\"e 1\""), VT_DECODE_ERR_FIELD);
    cr_assert(strstr(msg, "id is not a valid id, got string \"e 1\", expected 1 to 128 "
                          "characters") == msg,
              "%s", msg);
    cr_assert_eq(decode_with("\"decision_id\":{}"), VT_DECODE_ERR_FIELD);
    cr_assert_str_eq(msg, "decision_id must be a string or a whole number, got object");
}


Test(decode_canonical, product_id_at_2_pow_53_dropped)
{
    cr_assert_eq(decode("{\"type\":\"add_to_cart\",\"session_id\":\"s1\","
                        "\"ts\":1714564800000,\"products\":[{\"id\":9007199254740991},"
                        "{\"id\":9007199254740993},{\"id\":\"9007199254740993\"}]}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.n_items, 2);
    cr_assert_eq(ev.n_items_dropped, 1);
    cr_assert_str_eq(ev.items[0].id, "9007199254740991");
    cr_assert_str_eq(ev.items[1].id, "9007199254740993");
}


Test(decode_canonical, decision_id_checked)
{
    cr_assert_eq(decode_with("\"decision_id\":\"d{1}\""), VT_DECODE_ERR_FIELD);
    cr_assert(strstr(msg, "decision_id") != NULL, "%s", msg);
}


Test(decode_canonical, unknown_members_ignored)
{
    cr_assert_eq(decode_with("\"schema_version\":3,\"device\":{\"os\":\"ios\"},"
                             "\"products\":[{\"id\":\"P1\",\"color\":\"red\",\"sizes\":[1,2]}]"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.n_items, 1);
}


Test(decode_canonical, null_members_are_absent)
{
    cr_assert_eq(decode_with("\"user_id\":null,\"page\":null,\"order_value\":null,"
                             "\"products\":[{\"id\":\"P1\",\"price\":null,\"brand\":null}]"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.user_id, "");
    cr_assert_eq(ev.order_value, -1);
    cr_assert_eq(ev.items[0].price, -1);
}


Test(decode_canonical, products_without_usable_id_dropped)
{
    char json[1024];
    char long_id[130];

    memset(long_id, 'p', 129);
    long_id[129] = '\0';
    snprintf(json, sizeof json,
             "\"products\":[{\"brand\":\"no id\"},{\"id\":\"\"},{\"id\":\"tab\\there\"},"
             "{\"id\":\"%s\"},{\"id\":null},{\"id\":2.5},{\"id\":\"OK-1\"},{\"id\":7}]",
             long_id);
    cr_assert_eq(decode_with(json), VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.n_items, 2);
    cr_assert_eq(ev.n_items_dropped, 6);
    cr_assert_str_eq(ev.items[0].id, "OK-1");
    cr_assert_str_eq(ev.items[1].id, "7");
}


Test(decode_canonical, product_id_of_wrong_type_rejected)
{
    cr_assert_eq(decode_with("\"products\":[{\"id\":\"P1\"},{\"id\":true}]"),
                 VT_DECODE_ERR_FIELD);
    cr_assert_str_eq(msg, "products[1].id must be a string or a whole number, got boolean");
}


Test(decode_canonical, product_id_at_maximum_kept)
{
    char json[512];
    char id[129];

    memset(id, 'p', 128);
    id[128] = '\0';
    snprintf(json, sizeof json, "\"products\":[{\"id\":\"%s\"}]", id);
    cr_assert_eq(decode_with(json), VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.n_items, 1);
    cr_assert_str_eq(ev.items[0].id, id);
}


Test(decode_canonical, categories_limited_to_four)
{
    cr_assert_eq(decode_with("\"products\":[{\"id\":\"P1\",\"categories\":"
                             "[\"a\",\"\",\"b\",\"c\",\"d\",\"e\"]}]"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.items[0].n_categories, 4);
    cr_assert_str_eq(ev.items[0].categories[0], "a");
    cr_assert_str_eq(ev.items[0].categories[1], "b");
    cr_assert_str_eq(ev.items[0].categories[3], "d");
}


Test(decode_canonical, category_of_wrong_type_rejected)
{
    cr_assert_eq(decode_with("\"products\":[{\"id\":\"P1\",\"categories\":[\"a\",5]}]"),
                 VT_DECODE_ERR_FIELD);
    cr_assert_str_eq(msg, "products[0].categories[1] must be a string, got number 5");

    cr_assert_eq(decode_with("\"products\":[{\"id\":\"P1\",\"categories\":{\"a\":1}}]"),
                 VT_DECODE_ERR_FIELD);
    cr_assert_str_eq(msg, "products[0].categories must be an array of strings or a string, "
                          "got object");
}


Test(decode_canonical, gender_labels_parsed)
{
    cr_assert_eq(decode_with("\"products\":[{\"id\":\"P1\",\"gender\":\"Damen\"},"
                             "{\"id\":\"P2\",\"gender\":\"unisex\"},"
                             "{\"id\":\"P3\",\"gender\":\"kids\"}]"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.items[0].gender, VT_GENDER_FEMALE);
    cr_assert_eq(ev.items[1].gender, VT_GENDER_UNISEX);
    cr_assert_eq(ev.items[2].gender, VT_GENDER_UNKNOWN);

    cr_assert_eq(decode_with("\"products\":[{\"id\":\"P1\",\"gender\":1}]"),
                 VT_DECODE_ERR_FIELD);
    cr_assert_str_eq(msg, "products[0].gender must be a string, got number 1");
}


Test(decode_canonical, product_numbers_checked)
{
    cr_assert_eq(decode_with("\"products\":[{\"id\":\"P1\",\"quantity\":1.5}]"),
                 VT_DECODE_ERR_FIELD);
    cr_assert_str_eq(msg, "products[0].quantity must be a whole number within 32 bits, got "
                          "number 1.5");

    cr_assert_eq(decode_with("\"products\":[{\"id\":\"P1\",\"position\":\"3\"}]"),
                 VT_DECODE_ERR_FIELD);
    cr_assert_str_eq(msg, "products[0].position must be a whole number within 32 bits, got "
                          "string \"3\"");

    cr_assert_eq(decode_with("\"products\":[{\"id\":\"P1\",\"quantity\":3000000000}]"),
                 VT_DECODE_ERR_FIELD);

    cr_assert_eq(decode_with("\"products\":[{\"id\":\"P1\",\"brand\":7}]"), VT_DECODE_ERR_FIELD);
    cr_assert_str_eq(msg, "products[0].brand must be a string, got number 7");
}


Test(decode_canonical, out_of_range_numbers_dropped)
{
    /* tests/unit/test_decode_odd.c covers every range rule in both formats. */
    cr_assert_eq(decode_with("\"order_value\":-10,\"products\":[{\"id\":\"P1\",\"price\":-2.5,"
                             "\"quantity\":-1,\"position\":0},{\"id\":\"P2\",\"price\":1e999}]"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.order_value, -1);
    cr_assert_eq(ev.items[0].price, -1);
    cr_assert_eq(ev.items[0].quantity, -1);
    cr_assert_eq(ev.items[0].position, 0, "positions are kept as given");
    cr_assert_eq(ev.items[1].price, -1);
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_PRICE], 2);
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_QUANTITY], 1);
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_ORDER_VALUE], 1);
}


Test(decode_canonical, text_fields_checked)
{
    static const char *const fields[] = {"placement", "page", "referrer", "campaign", "search"};

    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        char members[128];
        char expected[128];

        snprintf(members, sizeof members, "\"%s\":{}", fields[i]);
        snprintf(expected, sizeof expected, "%s must be a string, got object", fields[i]);
        cr_assert_eq(decode_with(members), VT_DECODE_ERR_FIELD, "%s", fields[i]);
        cr_assert_str_eq(msg, expected);
    }
}


Test(decode_canonical, order_fields)
{
    cr_assert_eq(decode_with("\"order_id\":1234567,\"order_value\":99.5"), VT_DECODE_OK, "%s",
                 msg);
    cr_assert_str_eq(ev.order_id, "1234567");
    cr_assert_float_eq(ev.order_value, 99.5, 1e-12);

    cr_assert_eq(decode_with("\"order_id\":\"A/2024 17\""), VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.order_id, "A/2024 17", "order ids keep the shop's format");

    cr_assert_eq(decode_with("\"order_value\":\"99.5\""), VT_DECODE_ERR_FIELD);
    cr_assert_str_eq(msg, "order_value must be a number, got string \"99.5\"");
}


Test(decode_canonical, long_text_truncated)
{
    char members[1024];
    char placement[100];

    memset(placement, 'x', 40);
    placement[40] = '\0';
    snprintf(members, sizeof members, "\"placement\":\"%s\"", placement);
    cr_assert_eq(decode_with(members), VT_DECODE_OK, "%s", msg);
    cr_assert_eq(strlen(ev.placement), VT_PLACEMENT_MAX);
}


Test(decode_canonical, customer_id_forms)
{
    cr_assert_eq(decode_with("\"customer_id\":\"c-9f2e\""), VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.customer_id, "c-9f2e");

    cr_assert_eq(decode_with("\"customer_id\":4711"), VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.customer_id, "4711");

    cr_assert_eq(decode_with("\"customer_id\":null"), VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.customer_id, "");

    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_CUSTOMER_ID], 0);
}


Test(decode_canonical, consent_booleans)
{
    cr_assert_eq(decode_with("\"consent\":true"), VT_DECODE_OK, "%s", msg);
    cr_expect_eq(ev.consent, VT_CONSENT_GRANTED);
    cr_expect_not(ev.consent_unreadable);

    cr_assert_eq(decode_with("\"consent\":false"), VT_DECODE_OK, "%s", msg);
    cr_expect_eq(ev.consent, VT_CONSENT_DENIED);
    cr_expect_not(ev.consent_unreadable);
}


Test(decode_canonical, consent_strings_and_numbers)
{
    static const struct {
        const char *json;
        enum vt_consent expected;
    } cases[] = {
        {"\"denied\"", VT_CONSENT_DENIED},  {"\"Opt-Out\"", VT_CONSENT_DENIED},
        {"\" no \"", VT_CONSENT_DENIED},    {"0", VT_CONSENT_DENIED},
        {"\"granted\"", VT_CONSENT_GRANTED}, {"\"YES\"", VT_CONSENT_GRANTED},
        {"1", VT_CONSENT_GRANTED},          {"1.0", VT_CONSENT_GRANTED},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char members[128];

        snprintf(members, sizeof members, "\"consent\":%s", cases[i].json);
        cr_assert_eq(decode_with(members), VT_DECODE_OK, "%s: %s", cases[i].json, msg);
        cr_expect_eq(ev.consent, cases[i].expected, "%s gave %s", cases[i].json,
                     vt_consent_name(ev.consent));
        cr_expect_not(ev.consent_unreadable, "%s", cases[i].json);
    }
}


Test(decode_canonical, consent_absent_or_null_unknown)
{
    cr_assert_eq(decode_with("\"page\":\"/\""), VT_DECODE_OK, "%s", msg);
    cr_expect_eq(ev.consent, VT_CONSENT_UNKNOWN);
    cr_expect_not(ev.consent_unreadable);

    cr_assert_eq(decode_with("\"consent\":null"), VT_DECODE_OK, "%s", msg);
    cr_expect_eq(ev.consent, VT_CONSENT_UNKNOWN);
    cr_expect_not(ev.consent_unreadable, "null counts as absent");
}


Test(decode_canonical, consent_unreadable_counted_record_kept)
{
    static const char *const values[] = {"\"maybe\"", "\"\"", "2", "-1", "0.5", "[true]",
                                         "{\"granted\":true}"};

    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char members[128];

        snprintf(members, sizeof members, "\"consent\":%s,\"page\":\"/p\"", values[i]);
        cr_assert_eq(decode_with(members), VT_DECODE_OK, "%s: %s", values[i], msg);
        cr_expect_eq(ev.consent, VT_CONSENT_UNKNOWN, "%s", values[i]);
        cr_expect(ev.consent_unreadable, "%s not counted", values[i]);
        cr_expect_str_eq(ev.page, "/p", "%s: the rest of the record decodes", values[i]);
    }
}
