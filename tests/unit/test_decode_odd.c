/*
 * Unit tests of odd but well-formed records. Prices, quantities and order values out of
 * their ranges must be dropped and counted by both decoders, which keep the event, and the
 * counts must reach the metrics page with those of dropped person ids. A table
 * of odd records in both formats lists the status each one must get. docs/events.md
 * states the rules.
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
#include "vitrine/metrics.h"
#include "vitrine/util.h"

static struct vt_config cfg;
static struct vt_event ev;
static char msg[512];


static void setup_defaults(void)
{
    vt_config_defaults(&cfg);
}


static enum vt_decode_status decode(const char *json)
{
    size_t len = strlen(json);
    char *copy = malloc(len > 0 ? len : 1);
    enum vt_decode_status status;

    cr_assert_not_null(copy);
    memcpy(copy, json, len);
    status = vt_decode_event(copy, len, &cfg, &ev, msg, sizeof msg);
    free(copy);
    return status;
}


/* Decode a canonical add_to_cart whose one product has the member `name` set to the JSON
 * text `value`. */
static enum vt_decode_status decode_canonical_item(const char *name, const char *value)
{
    char json[1024];

    snprintf(json, sizeof json,
             "{\"type\":\"add_to_cart\",\"session_id\":\"s1\",\"ts\":1714564800000,"
             "\"products\":[{\"id\":\"P1\",\"%s\":%s}]}",
             name, value);
    return decode(json);
}


/* Decode a Mapp root-stream add whose one item has the member `name` set to `value`. */
static enum vt_decode_status decode_mapp_item(const char *name, const char *value)
{
    char json[1024];

    snprintf(json, sizeof json,
             "{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
             "\"basket\":{\"status\":\"add\",\"items\":[{\"product\":{\"name\":\"P1\"},"
             "\"%s\":%s}]}}",
             name, value);
    return decode(json);
}


/* Decode a Mapp custom-stream add whose flattened item 1 has basket_items_1_<name>. */
static enum vt_decode_status decode_mapp_flat_item(const char *name, const char *value)
{
    char json[1024];

    snprintf(json, sizeof json,
             "{\"session_id\":\"s1\",\"timestamp\":\"2024-05-01T12:00:00Z\","
             "\"basket_status\":\"add\",\"basket_items_1_product_name\":\"P1\","
             "\"basket_items_1_%s\":%s}",
             name, value);
    return decode(json);
}


typedef enum vt_decode_status (*item_decoder)(const char *name, const char *value);

static const struct {
    const char *name;
    item_decoder decode;
} item_decoders[] = {
    {"canonical", decode_canonical_item},
    {"mapp root stream", decode_mapp_item},
    {"mapp custom stream", decode_mapp_flat_item},
};

#define N_DECODERS (sizeof item_decoders / sizeof item_decoders[0])


/* One value of a field and what the decoder must make of it: the stored value (-1 for
 * not given) and how many dropped values it counts. */
struct range_case {
    const char *json;
    double stored;
    size_t dropped;
};


static void check_item_value(const char *field, enum vt_amount_field kind,
                             const struct range_case *cases, size_t n)
{
    for (size_t d = 0; d < N_DECODERS; d++) {
        for (size_t i = 0; i < n; i++) {
            const char *format = item_decoders[d].name;
            double stored;

            cr_assert_eq(item_decoders[d].decode(field, cases[i].json), VT_DECODE_OK,
                         "%s, %s %s: %s", format, field, cases[i].json, msg);
            cr_assert_eq(ev.n_items, 1, "%s, %s %s: the product was not kept", format, field,
                         cases[i].json);
            stored = kind == VT_AMOUNT_PRICE ? ev.items[0].price
                                             : (double)ev.items[0].quantity;
            cr_assert_eq(stored, cases[i].stored, "%s, %s %s: stored %.17g, expected %.17g",
                         format, field, cases[i].json, stored, cases[i].stored);
            cr_assert_eq(ev.n_values_dropped[kind], cases[i].dropped,
                         "%s, %s %s: %zu dropped, expected %zu", format, field, cases[i].json,
                         ev.n_values_dropped[kind], cases[i].dropped);
        }
    }
}


TestSuite(decode_odd, .init = setup_defaults);


Test(decode_odd, price_outside_range_dropped)
{
    static const struct range_case cases[] = {
        {"129.95", 129.95, 0},
        {"0", 0, 0},
        {"-0.0", 0, 0},
        {"1e9", 1e9, 0},
        {"1000000000.5", -1, 1},
        {"-0.01", -1, 1},
        {"-1", -1, 1},
        {"-250", -1, 1},
        {"1e999", -1, 1},
        {"-1e999", -1, 1},
        {"1e300", -1, 1},
    };

    check_item_value("price", VT_AMOUNT_PRICE, cases, sizeof cases / sizeof cases[0]);
}


Test(decode_odd, negative_zero_price_stored_as_zero)
{
    cr_assert_eq(decode_canonical_item("price", "-0.0"), VT_DECODE_OK, "%s", msg);
    cr_assert_not(signbit(ev.items[0].price), "a price of -0 must be stored as 0");
}


Test(decode_odd, quantity_outside_range_dropped)
{
    static const struct range_case cases[] = {
        {"1", 1, 0},
        {"2", 2, 0},
        {"1000", 1000, 0},
        {"1001", -1, 1},
        {"2147483647", -1, 1},
        {"-1", -1, 1},
        {"-2147483648", -1, 1},
        {"0", -1, 0},
    };

    check_item_value("quantity", VT_AMOUNT_QUANTITY, cases, sizeof cases / sizeof cases[0]);
}


Test(decode_odd, quantity_not_whole_rejected)
{
    static const char *const values[] = {"1.5", "3000000000", "1e999", "-1e999"};

    for (size_t d = 0; d < N_DECODERS; d++) {
        for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
            cr_assert_eq(item_decoders[d].decode("quantity", values[i]), VT_DECODE_ERR_FIELD,
                         "%s, quantity %s: %s", item_decoders[d].name, values[i], msg);
            cr_assert(strstr(msg, "quantity must be a whole number within 32 bits") != NULL,
                      "%s", msg);
        }
    }
}


Test(decode_odd, mapp_numbers_as_text_follow_ranges)
{
    static const struct range_case prices[] = {
        {"\"12.50\"", 12.5, 0},
        {"\"-5\"", -1, 1},
        {"\"1e9\"", 1e9, 0},
        {"\"2e9\"", -1, 1},
    };
    static const struct range_case quantities[] = {
        {"\"3\"", 3, 0},
        {"\"5000\"", -1, 1},
        {"\"-4\"", -1, 1},
        {"\"0\"", -1, 0},
    };

    for (size_t i = 0; i < sizeof prices / sizeof prices[0]; i++) {
        cr_assert_eq(decode_mapp_item("price", prices[i].json), VT_DECODE_OK, "%s", msg);
        cr_assert_eq(ev.items[0].price, prices[i].stored, "price %s", prices[i].json);
        cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_PRICE], prices[i].dropped, "price %s",
                     prices[i].json);
    }
    for (size_t i = 0; i < sizeof quantities / sizeof quantities[0]; i++) {
        cr_assert_eq(decode_mapp_flat_item("quantity", quantities[i].json), VT_DECODE_OK, "%s",
                     msg);
        cr_assert_eq(ev.items[0].quantity, quantities[i].stored, "quantity %s",
                     quantities[i].json);
        cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_QUANTITY], quantities[i].dropped,
                     "quantity %s", quantities[i].json);
    }
}


Test(decode_odd, mapp_text_without_finite_number_rejected)
{
    cr_assert_eq(decode_mapp_item("price", "\"1e999\""), VT_DECODE_ERR_FIELD);
    cr_assert_str_eq(msg, "basket.items[0].price must be a number, got string \"1e999\"");

    cr_assert_eq(decode_mapp_item("price", "\"nan\""), VT_DECODE_ERR_FIELD);
    cr_assert_str_eq(msg, "basket.items[0].price must be a number, got string \"nan\"");
}


/* Decode a purchase whose order value is the JSON text `value`: canonical (format 0), Mapp
 * root stream (1) or Mapp custom stream (2). */
static enum vt_decode_status decode_order_value(int format, const char *value)
{
    char json[512];

    if (format == 0)
        snprintf(json, sizeof json,
                 "{\"type\":\"purchase\",\"session_id\":\"s1\",\"ts\":1714564800000,"
                 "\"order_value\":%s}",
                 value);
    else if (format == 1)
        snprintf(json, sizeof json,
                 "{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                 "\"basket\":{\"status\":\"conf\"},\"order\":{\"value\":%s}}",
                 value);
    else
        snprintf(json, sizeof json,
                 "{\"session_id\":\"s1\",\"timestamp\":\"2024-05-01T12:00:00Z\","
                 "\"basket_status\":\"conf\",\"order_value\":%s}",
                 value);
    return decode(json);
}


Test(decode_odd, order_value_outside_range_dropped)
{
    static const struct range_case cases[] = {
        {"178.45", 178.45, 0}, {"0", 0, 0},      {"1e9", 1e9, 0},  {"-10", -1, 1},
        {"1e999", -1, 1},      {"-1e999", -1, 1}, {"1.5e9", -1, 1},
    };

    for (int format = 0; format < 3; format++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            cr_assert_eq(decode_order_value(format, cases[i].json), VT_DECODE_OK,
                         "format %d, order value %s: %s", format, cases[i].json, msg);
            cr_assert_eq(ev.type, VT_EV_PURCHASE);
            cr_assert_eq(ev.order_value, cases[i].stored,
                         "format %d, order value %s: stored %.17g", format, cases[i].json,
                         ev.order_value);
            cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_ORDER_VALUE], cases[i].dropped,
                         "format %d, order value %s", format, cases[i].json);
        }
    }
}


Test(decode_odd, dropped_values_counted_per_product)
{
    cr_assert_eq(decode("{\"type\":\"purchase\",\"session_id\":\"s1\",\"ts\":1714564800000,"
                        "\"order_value\":-5,\"products\":["
                        "{\"id\":\"P1\",\"price\":-1,\"quantity\":5000},"
                        "{\"id\":\"P2\",\"price\":1e999,\"quantity\":2},"
                        "{\"id\":\"P3\",\"price\":10,\"quantity\":-3},"
                        "{\"price\":-7}]}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.n_items, 3);
    cr_assert_eq(ev.n_items_dropped, 1, "the product without an id is dropped whole");
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_PRICE], 2,
                 "the price of the dropped product is not counted again");
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_QUANTITY], 2);
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_ORDER_VALUE], 1);
    cr_assert_eq(ev.items[1].quantity, 2);
    cr_assert_eq(ev.items[2].price, 10);
}


Test(decode_odd, mapp_placeholders_count_nothing)
{
    cr_assert_eq(decode("{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"basket\":{\"status\":\"list\",\"items\":["
                        "{\"product\":{\"name\":\"P1\"},\"quantity\":1,\"price\":5},"
                        "{\"product\":{\"name\":\"-\"},\"quantity\":-1,\"price\":-1}]}}"),
                 VT_DECODE_OK, "%s", msg);
    for (int f = 0; f < VT_AMOUNT_FIELD_COUNT; f++)
        cr_assert_eq(ev.n_values_dropped[f], 0, "%s counted",
                     vt_decode_amount_field_name((enum vt_amount_field)f));
}


Test(decode_odd, dropped_counts_cleared_between_records)
{
    cr_assert_eq(decode_canonical_item("price", "-3"), VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_PRICE], 1);
    cr_assert_eq(decode_canonical_item("price", "3"), VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.n_values_dropped[VT_AMOUNT_PRICE], 0);
}


Test(decode_odd, amount_field_names)
{
    cr_assert_str_eq(vt_decode_amount_field_name(VT_AMOUNT_PRICE), "price");
    cr_assert_str_eq(vt_decode_amount_field_name(VT_AMOUNT_QUANTITY), "quantity");
    cr_assert_str_eq(vt_decode_amount_field_name(VT_AMOUNT_ORDER_VALUE), "order_value");
    cr_assert_str_eq(vt_decode_amount_field_name(VT_AMOUNT_USER_ID), "user_id");
    cr_assert_str_eq(vt_decode_amount_field_name(VT_AMOUNT_CUSTOMER_ID), "customer_id");
    cr_assert_str_eq(vt_decode_amount_field_name(VT_AMOUNT_FIELD_COUNT), "unknown");
}


/* Copy the line of page that starts with prefix into out; false when there is none. */
static bool find_metric_line(const char *page, const char *prefix, char *out,
                             size_t outsize)
{
    size_t n = strlen(prefix);

    for (const char *line = page; *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);

        if (len >= n && strncmp(line, prefix, n) == 0) {
            snprintf(out, outsize, "%.*s", (int)len, line);
            return true;
        }
        line += len + (end != NULL ? 1 : 0);
    }
    return false;
}


/* The ingest thread passes an applied event's n_values_dropped to the metrics registry,
 * which must list the dropped person ids under their own labels. Criterion runs each test
 * in its own process, so the registry starts at zero. */
Test(decode_odd, dropped_person_ids_reach_metrics)
{
    struct vt_buf page;
    char line[256];

    cr_assert_eq(decode("{\"type\":\"page_view\",\"session_id\":\"s1\","
                        "\"ts\":1714564800000,\"user_id\":\"N/A\",\"customer_id\":\"\"}"),
                 VT_DECODE_OK, "%s", msg);
    vt_metrics_values_dropped(ev.n_values_dropped);
    cr_assert_eq(decode("{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
                        "\"user\":{\"customerId\":9007199254740993}}"),
                 VT_DECODE_OK, "%s", msg);
    vt_metrics_values_dropped(ev.n_values_dropped);

    vt_buf_init(&page, 1024 * 1024);
    vt_metrics_render(&page);
    cr_assert(!page.overflow);
    cr_assert_eq(vt_buf_append(&page, "", 1), 0);

    cr_assert(find_metric_line(page.data,
                               "vitrine_event_values_dropped_total{field=\"user_id\"} ", line,
                               sizeof line),
              "no user_id sample");
    cr_assert_str_eq(line, "vitrine_event_values_dropped_total{field=\"user_id\"} 1");
    cr_assert(find_metric_line(page.data,
                               "vitrine_event_values_dropped_total{field=\"customer_id\"} ",
                               line, sizeof line),
              "no customer_id sample");
    cr_assert_str_eq(line, "vitrine_event_values_dropped_total{field=\"customer_id\"} 2");
    vt_buf_free(&page);
}


/* Odd records of both formats and the status each one gets. The times are fixed in May
 * 2024, inside the accepted window. */
static const struct {
    const char *json;
    enum vt_decode_status status;
} odd_records[] = {
    /* Valid JSON of the wrong shape. */
    {"[]", VT_DECODE_ERR_NOT_OBJECT},
    {"\"page_view\"", VT_DECODE_ERR_NOT_OBJECT},
    {"null", VT_DECODE_ERR_NOT_OBJECT},
    {"{}", VT_DECODE_ERR_FORMAT},
    {"{\"type\":\"page_view\",\"session_id\":\"s1\",\"ts\":1714564800000,\"products\":{}}",
     VT_DECODE_ERR_FIELD},
    {"{\"type\":\"page_view\",\"session_id\":\"s1\",\"ts\":1714564800000,\"products\":[7]}",
     VT_DECODE_ERR_FIELD},
    {"{\"session\":[],\"timestamp\":\"2024-05-01T12:00:00Z\"}", VT_DECODE_ERR_SESSION},
    {"{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
     "\"basket\":{\"status\":\"add\",\"items\":[\"P1\"]}}",
     VT_DECODE_ERR_FIELD},
    /* Null and empty values. */
    {"{\"type\":null,\"session_id\":\"s1\",\"ts\":1714564800000}", VT_DECODE_ERR_FIELD},
    {"{\"type\":\"\",\"session_id\":\"s1\",\"ts\":1714564800000}", VT_DECODE_ERR_TYPE},
    {"{\"type\":\"page_view\",\"session_id\":null,\"ts\":1714564800000}",
     VT_DECODE_ERR_SESSION},
    {"{\"type\":\"page_view\",\"session_id\":\"\",\"ts\":1714564800000}",
     VT_DECODE_ERR_SESSION},
    {"{\"type\":\"page_view\",\"session_id\":\"s1\",\"ts\":null}", VT_DECODE_ERR_TIMESTAMP},
    {"{\"type\":\"page_view\",\"session_id\":\"s1\",\"ts\":\"\"}", VT_DECODE_ERR_TIMESTAMP},
    {"{\"session\":{\"id\":null},\"timestamp\":\"2024-05-01T12:00:00Z\"}",
     VT_DECODE_ERR_SESSION},
    {"{\"session_id\":\"\",\"timestamp\":\"2024-05-01T12:00:00Z\"}", VT_DECODE_ERR_SESSION},
    {"{\"session\":{\"id\":\"s1\"},\"timestamp\":\"\"}", VT_DECODE_ERR_TIMESTAMP},
    {"{\"session\":{\"id\":\"s1\"},\"timestamp\":null}", VT_DECODE_ERR_TIMESTAMP},
    {"{\"type\":\"add_to_cart\",\"session_id\":\"s1\",\"ts\":1714564800000,"
     "\"products\":null}",
     VT_DECODE_SKIP},
    {"{\"type\":\"add_to_cart\",\"session_id\":\"s1\",\"ts\":1714564800000,"
     "\"products\":[{\"id\":\"\"}]}",
     VT_DECODE_SKIP},
    /* Unknown event types. */
    {"{\"type\":\"view\",\"session_id\":\"s1\",\"ts\":1714564800000}", VT_DECODE_ERR_TYPE},
    {"{\"type\":\"PAGE_VIEW\",\"session_id\":\"s1\",\"ts\":1714564800000}",
     VT_DECODE_ERR_TYPE},
    {"{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T12:00:00Z\","
     "\"basket\":{\"status\":\"teleport\"}}",
     VT_DECODE_ERR_TYPE},
    /* Missing session ids. */
    {"{\"type\":\"page_view\",\"ts\":1714564800000}", VT_DECODE_ERR_SESSION},
    {"{\"page\":{\"name\":\"home\"},\"timestamp\":\"2024-05-01T12:00:00Z\"}",
     VT_DECODE_ERR_SESSION},
    /* Absurd times: far past, far future, seconds for milliseconds, beyond 2^53. */
    {"{\"type\":\"page_view\",\"session_id\":\"s1\",\"ts\":0}", VT_DECODE_ERR_TIMESTAMP},
    {"{\"type\":\"page_view\",\"session_id\":\"s1\",\"ts\":-86400000}",
     VT_DECODE_ERR_TIMESTAMP},
    {"{\"type\":\"page_view\",\"session_id\":\"s1\",\"ts\":1714564800}",
     VT_DECODE_ERR_TIMESTAMP},
    {"{\"type\":\"page_view\",\"session_id\":\"s1\",\"ts\":32503680000000}",
     VT_DECODE_ERR_TIMESTAMP},
    {"{\"type\":\"page_view\",\"session_id\":\"s1\",\"ts\":1e300}", VT_DECODE_ERR_TIMESTAMP},
    {"{\"type\":\"page_view\",\"session_id\":\"s1\",\"ts\":\"0001-01-01T00:00:00Z\"}",
     VT_DECODE_ERR_TIMESTAMP},
    {"{\"session\":{\"id\":\"s1\"},\"timestamp\":\"1970-01-01T00:00:00Z\"}",
     VT_DECODE_ERR_TIMESTAMP},
    {"{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2999-12-31T23:59:59Z\"}",
     VT_DECODE_ERR_TIMESTAMP},
    {"{\"session\":{\"id\":\"s1\"},\"timestamp\":\"9999-12-31T23:59:59+14:00\"}",
     VT_DECODE_ERR_TIMESTAMP},
    /* Ids given as numbers of 2^53 or more, which may have lost digits in the parse. */
    {"{\"session\":{\"id\":9007199254740993},\"timestamp\":\"2024-05-01T12:00:00Z\"}",
     VT_DECODE_ERR_SESSION},
    {"{\"type\":\"page_view\",\"session_id\":9007199254740993,\"ts\":1714564800000}",
     VT_DECODE_ERR_SESSION},
    {"{\"type\":\"page_view\",\"session_id\":\"s1\",\"ts\":1714564800000,"
     "\"decision_id\":9007199254740993}",
     VT_DECODE_ERR_FIELD},
};


Test(decode_odd, odd_records_get_their_status)
{
    for (size_t i = 0; i < sizeof odd_records / sizeof odd_records[0]; i++) {
        enum vt_decode_status status = decode(odd_records[i].json);

        cr_assert_eq(status, odd_records[i].status, "%s: got %s (%s), expected %s",
                     odd_records[i].json, vt_decode_status_name(status), msg,
                     vt_decode_status_name(odd_records[i].status));
        cr_assert(msg[0] != '\0', "%s: no message", odd_records[i].json);
    }
}
