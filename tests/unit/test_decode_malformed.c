/*
 * Unit tests of how the decoders reject malformed records: empty and oversized values,
 * broken JSON, wrong root types, unknown formats and types, invalid session ids and
 * times, wrong field types, invalid UTF-8, NUL bytes and deep nesting. Every rejection
 * must come with a one-line message, and no input may crash the decoder or make it read
 * past the value's length.
 *
 * Payloads are decoded from exactly sized heap copies without a trailing NUL, so that
 * AddressSanitizer reports any read past the length.
 */
#include <criterion/criterion.h>
#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vitrine/config.h"
#include "vitrine/decode.h"
#include "vitrine/event.h"
#include "vitrine/limits.h"

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


static char *load_file(const char *name, size_t *len)
{
    char path[1024];
    char *data;
    long size;
    FILE *f;

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
    *len = (size_t)size;
    return data;
}


/* A message is one line that names what failed. */
static void assert_one_line_message(void)
{
    cr_assert(msg[0] != '\0', "the message is empty");
    cr_assert(strchr(msg, '\n') == NULL, "the message has a line break: %s", msg);
}


static void assert_contains(const char *needle)
{
    cr_assert(strstr(msg, needle) != NULL, "\"%s\" not in message: %s", needle, msg);
}


TestSuite(decode_malformed, .init = setup_defaults);


Test(decode_malformed, empty_value)
{
    cr_assert_eq(decode_bytes("", 0), VT_DECODE_ERR_EMPTY);
    assert_one_line_message();

    cr_assert_eq(vt_decode_event(NULL, 0, &cfg, &ev, msg, sizeof msg), VT_DECODE_ERR_EMPTY);
    cr_assert_eq(vt_decode_event(NULL, 10, &cfg, &ev, msg, sizeof msg), VT_DECODE_ERR_EMPTY);

    cr_assert_eq(decode(" \r\n\t "), VT_DECODE_ERR_EMPTY);
    assert_contains("whitespace");
}


Test(decode_malformed, value_too_large)
{
    size_t len = VT_RECORD_MAX + 1;
    char *big = malloc(len);

    cr_assert_not_null(big);
    memset(big, ' ', len);
    big[0] = '{';
    big[len - 1] = '}';
    cr_assert_eq(vt_decode_event(big, len, &cfg, &ev, msg, sizeof msg), VT_DECODE_ERR_TOO_LARGE);
    assert_contains("1048577 bytes");
    free(big);
}


Test(decode_malformed, invalid_json)
{
    static const char *const values[] = {
        "{\"type\":", "{\"type\":\"page_view\",}", "{'type':'page_view'}", "{type:1}",
        "{\"a\":tru}", "{\"a\":\"unterminated}", "{\"a\":\"\\ud800\"}", "nul",
    };

    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        cr_assert_eq(decode(values[i]), VT_DECODE_ERR_JSON, "%s: %s", values[i], msg);
        assert_one_line_message();
        assert_contains("not valid JSON");
    }
}


Test(decode_malformed, trailing_garbage)
{
    cr_assert_eq(decode("{\"type\":\"page_view\",\"session_id\":\"s1\",\"ts\":1714564800000} x"),
                 VT_DECODE_ERR_JSON);
    assert_contains("unexpected data after the value at offset 58 of 59");

    cr_assert_eq(decode("{}{}"), VT_DECODE_ERR_JSON);
    cr_assert_eq(decode("{}\n{}"), VT_DECODE_ERR_JSON);
}


Test(decode_malformed, trailing_whitespace_accepted)
{
    cr_assert_eq(decode("  {\"type\":\"page_view\",\"session_id\":\"s1\","
                        "\"ts\":1714564800000}\r\n"),
                 VT_DECODE_OK, "%s", msg);
}


Test(decode_malformed, root_not_object)
{
    static const struct {
        const char *json;
        const char *kind;
    } cases[] = {
        {"[{\"type\":\"page_view\"}]", "an array"},
        {"42", "a number"},
        {"\"page_view\"", "a string"},
        {"true", "a boolean"},
        {"null", "null"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(decode(cases[i].json), VT_DECODE_ERR_NOT_OBJECT, "%s", cases[i].json);
        assert_contains(cases[i].kind);
        assert_contains("expected a JSON object");
    }
}


Test(decode_malformed, unknown_format)
{
    static const char *const values[] = {
        "{}",
        "{\"event\":\"view\",\"sid\":\"s1\"}",
        "{\"sessions\":{\"id\":\"s1\"}}",
        "{\"Session\":{\"id\":\"s1\"}}",
    };

    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        cr_assert_eq(decode(values[i]), VT_DECODE_ERR_FORMAT, "%s: %s", values[i], msg);
        assert_one_line_message();
    }
}


Test(decode_malformed, non_string_type_is_canonical)
{
    static const struct {
        const char *type_json;
        const char *got;
    } cases[] = {
        {"5", "got number 5"}, {"null", "got null"},     {"true", "got boolean"},
        {"[\"page_view\"]", "got array"}, {"{}", "got object"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[256];

        /* "session_id" is also the flattened form of Mapp's session.id. */
        snprintf(json, sizeof json,
                 "{\"type\":%s,\"session_id\":\"s1\",\"ts\":1714564800000}",
                 cases[i].type_json);
        cr_assert_eq(decode(json), VT_DECODE_ERR_FIELD, "%s: %s", json, msg);
        cr_assert_eq(ev.format, VT_FORMAT_CANONICAL, "%s", json);
        cr_assert(strstr(msg, "type must be a string") == msg, "%s", msg);
        assert_contains(cases[i].got);
        assert_one_line_message();
    }

    cr_assert_eq(decode("{\"type\":5,\"session\":{\"id\":\"s1\"},"
                        "\"timestamp\":\"2024-05-01T12:00:00Z\"}"),
                 VT_DECODE_ERR_FIELD, "%s", msg);
    cr_assert_eq(ev.format, VT_FORMAT_CANONICAL, "a member \"type\" wins over Mapp keys");
}


Test(decode_malformed, mapp_detected_by_any_key)
{
    static const char *const keys[] = {
        "session", "basket", "page", "processingMetadata", "eventMetadata", "user",
        "session_x", "basket_x", "page_x", "processingMetadata_x", "eventMetadata_x",
        "user_x",
    };

    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char json[128];

        snprintf(json, sizeof json, "{\"%s\":1}", keys[i]);
        cr_assert_eq(decode(json), VT_DECODE_ERR_SESSION, "%s: %s", keys[i], msg);
        cr_assert_eq(ev.format, VT_FORMAT_MAPP, "%s", keys[i]);
    }
}


Test(decode_malformed, unknown_type)
{
    cr_assert_eq(decode("{\"type\":\"view\",\"session_id\":\"s1\",\"ts\":1714564800000}"),
                 VT_DECODE_ERR_TYPE);
    assert_contains("type \"view\"");
    assert_one_line_message();

    cr_assert_eq(decode("{\"type\":\"\",\"session_id\":\"s1\",\"ts\":1714564800000}"),
                 VT_DECODE_ERR_TYPE);
}


Test(decode_malformed, session_id_missing)
{
    cr_assert_eq(decode("{\"type\":\"page_view\",\"ts\":1714564800000}"), VT_DECODE_ERR_SESSION);
    assert_contains("session_id is missing");

    cr_assert_eq(decode("{\"type\":\"page_view\",\"session_id\":null,\"ts\":1714564800000}"),
                 VT_DECODE_ERR_SESSION);
}


Test(decode_malformed, session_id_invalid)
{
    char json[512];
    char long_id[130];
    static const char *const ids[] = {"\"\"", "\"a{b\"", "\"a}b\"", "\"a b\"", "\"a/b\"",
                                      "\"ä\"", "\"a\\nb\"", "123", "[\"s1\"]"};

    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        snprintf(json, sizeof json,
                 "{\"type\":\"page_view\",\"session_id\":%s,\"ts\":1714564800000}", ids[i]);
        cr_assert_eq(decode(json), VT_DECODE_ERR_SESSION, "session_id %s: %s", ids[i], msg);
        assert_one_line_message();
        assert_contains("session_id");
    }

    memset(long_id, 's', 129);
    long_id[129] = '\0';
    snprintf(json, sizeof json,
             "{\"type\":\"page_view\",\"session_id\":\"%s\",\"ts\":1714564800000}", long_id);
    cr_assert_eq(decode(json), VT_DECODE_ERR_SESSION, "129 bytes is one too many");
    assert_contains("...");
    cr_assert(strlen(msg) < 250, "the value is shortened in the message: %s", msg);

    long_id[128] = '\0';
    snprintf(json, sizeof json,
             "{\"type\":\"page_view\",\"session_id\":\"%s\",\"ts\":1714564800000}", long_id);
    cr_assert_eq(decode(json), VT_DECODE_OK, "128 bytes is the maximum: %s", msg);
}


Test(decode_malformed, control_bytes_escaped_in_message)
{
    cr_assert_eq(decode("{\"type\":\"page_view\",\"session_id\":\"a\\u0001\\\"b\","
                        "\"ts\":1714564800000}"),
                 VT_DECODE_ERR_SESSION);
    assert_contains("\"a\\x01\\\"b\"");
    assert_one_line_message();
}


Test(decode_malformed, bad_timestamp)
{
    cr_assert_eq(decode("{\"type\":\"page_view\",\"session_id\":\"s1\","
                        "\"ts\":\"2024-02-30T10:00:00Z\"}"),
                 VT_DECODE_ERR_TIMESTAMP);
    assert_contains("\"2024-02-30T10:00:00Z\"");

    cr_assert_eq(decode("{\"session\":{\"id\":\"s1\"},\"timestamp\":\"2024-05-01T25:00:00Z\"}"),
                 VT_DECODE_ERR_TIMESTAMP);
    assert_contains("timestamp is not a valid time");
}


Test(decode_malformed, products_not_an_array)
{
    cr_assert_eq(decode("{\"type\":\"product_view\",\"session_id\":\"s1\",\"ts\":1714564800000,"
                        "\"products\":{\"id\":\"P1\"}}"),
                 VT_DECODE_ERR_FIELD);
    cr_assert_str_eq(msg, "products must be an array, got object");

    cr_assert_eq(decode("{\"type\":\"product_view\",\"session_id\":\"s1\",\"ts\":1714564800000,"
                        "\"products\":[\"P1\"]}"),
                 VT_DECODE_ERR_FIELD);
    cr_assert_str_eq(msg, "products[0] must be an object, got string \"P1\"");
}


Test(decode_malformed, price_as_string)
{
    cr_assert_eq(decode("{\"type\":\"add_to_cart\",\"session_id\":\"s1\",\"ts\":1714564800000,"
                        "\"products\":["
                        "{\"id\":\"P1\",\"price\":1},{\"id\":\"P2\"},"
                        "{\"id\":\"P3\",\"price\":\"12.50\"}]}"),
                 VT_DECODE_ERR_FIELD);
    cr_assert_str_eq(msg, "products[2].price must be a number, got string \"12.50\"");
}


Test(decode_malformed, more_than_fifty_products)
{
    static char json[8192];
    size_t used;

    used = (size_t)snprintf(json, sizeof json,
                            "{\"type\":\"impression\",\"session_id\":\"s1\",\"ts\":1714564800000,"
                            "\"products\":[");
    for (int i = 0; i < 57; i++)
        used += (size_t)snprintf(json + used, sizeof json - used,
                                 "%s{\"id\":\"P%d\",\"position\":%d}", i > 0 ? "," : "", i,
                                 i + 1);
    snprintf(json + used, sizeof json - used, "]}");

    cr_assert_eq(decode(json), VT_DECODE_OK, "%s", msg);
    cr_assert_eq(ev.n_items, VT_EVENT_ITEMS_MAX);
    cr_assert_eq(ev.n_items_dropped, 7);
    cr_assert_str_eq(ev.items[0].id, "P0");
    cr_assert_str_eq(ev.items[49].id, "P49");
    cr_assert_eq(ev.items[49].position, 50);
}


/* A page view up to the opening quote of its page name, which starts at offset 65. */
#define PAGE_VIEW_WITH_PAGE \
    "{\"type\":\"page_view\",\"session_id\":\"s1\",\"ts\":1714564800000,\"page\":\""

Test(decode_malformed, invalid_utf8)
{
    static const struct {
        const char *bytes;
        const char *defect;
    } cases[] = {
        {PAGE_VIEW_WITH_PAGE "\xff\"}", "0xff"},
        {PAGE_VIEW_WITH_PAGE "\xc3\"}", "truncated sequence"},
        {PAGE_VIEW_WITH_PAGE "\xc0\xaf\"}", "overlong slash"},
        {PAGE_VIEW_WITH_PAGE "\xe0\x80\xaf\"}", "overlong three bytes"},
        {PAGE_VIEW_WITH_PAGE "\xed\xa0\x80\"}", "surrogate"},
        {PAGE_VIEW_WITH_PAGE "\xf4\x90\x80\x80\"}", "above U+10FFFF"},
        {PAGE_VIEW_WITH_PAGE "\x80\"}", "lone continuation byte"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(decode(cases[i].bytes), VT_DECODE_ERR_JSON, "%s: %s", cases[i].defect, msg);
        assert_contains("not valid UTF-8 at offset 65");
    }

    /* A sequence cut by the end of the value. */
    cr_assert_eq(decode_bytes("{\"a\":\"\xe2\x82", 8), VT_DECODE_ERR_JSON);
    assert_contains("UTF-8");
}


Test(decode_malformed, valid_utf8_accepted)
{
    cr_assert_eq(decode("{\"type\":\"page_view\",\"session_id\":\"s1\",\"ts\":1714564800000,"
                        "\"page\":\"Dü\xe2\x82\xac\xf0\x9f\x92\x84\",\"search\":\"\\u00e4\"}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.page, "Dü\xe2\x82\xac\xf0\x9f\x92\x84");
    cr_assert_str_eq(ev.search, "ä");
}


Test(decode_malformed, nul_byte_in_payload)
{
    static const char in_string[] =
        "{\"type\":\"page_view\",\"session_id\":\"s1\0x\",\"ts\":1714564800000}";
    static const char after_value[] =
        "{\"type\":\"page_view\",\"session_id\":\"s1\",\"ts\":1714564800000}\0";

    cr_assert_eq(decode_bytes(in_string, sizeof in_string - 1), VT_DECODE_ERR_JSON);
    assert_contains("NUL byte at offset 36");

    cr_assert_eq(decode_bytes(after_value, sizeof after_value - 1), VT_DECODE_ERR_JSON);
    assert_contains("NUL byte");
}


Test(decode_malformed, nul_escape_in_string)
{
    cr_assert_eq(decode("{\"type\":\"page_view\",\"session_id\":\"s1\\u0000{x}\","
                        "\"ts\":1714564800000}"),
                 VT_DECODE_ERR_JSON);
    assert_contains("\\u0000");

    /* An escaped backslash followed by the text u0000 is no NUL. */
    cr_assert_eq(decode("{\"type\":\"page_view\",\"session_id\":\"s1\",\"ts\":1714564800000,"
                        "\"page\":\"a\\\\u0000\"}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.page, "a\\u0000");
}


/* Build a value of `depth` nested arrays inside a canonical event's unknown member. */
static char *nested_record(int depth, size_t *len)
{
    static const char head[] =
        "{\"type\":\"page_view\",\"session_id\":\"s1\",\"ts\":1714564800000,\"x\":";
    size_t size = sizeof head - 1 + 2 * (size_t)depth + 1;
    char *json = malloc(size);
    size_t used = sizeof head - 1;

    cr_assert_not_null(json);
    memcpy(json, head, used);
    for (int i = 0; i < depth; i++)
        json[used++] = '[';
    for (int i = 0; i < depth; i++)
        json[used++] = ']';
    json[used++] = '}';
    *len = used;
    return json;
}


Test(decode_malformed, deep_nesting)
{
    size_t len;
    char *json;

    /* The object itself is one level, so 63 arrays reach the maximum of 64. */
    json = nested_record(63, &len);
    cr_assert_eq(decode_bytes(json, len), VT_DECODE_OK, "%s", msg);
    free(json);

    json = nested_record(64, &len);
    cr_assert_eq(decode_bytes(json, len), VT_DECODE_ERR_JSON);
    assert_contains("deeper than 64 levels");
    free(json);

    json = nested_record(200000, &len);
    cr_assert_eq(decode_bytes(json, len), VT_DECODE_ERR_JSON);
    free(json);
}


Test(decode_malformed, cjson_nesting_limit_fails_cleanly)
{
    /* The decoder's own depth check runs before cJSON. This test confirms that cJSON alone
     * also returns an error, not a crash, past its nesting limit. */
    size_t depth = CJSON_NESTING_LIMIT + 10;
    char *json = malloc(2 * depth);
    cJSON *root;

    cr_assert_not_null(json);
    memset(json, '[', depth);
    memset(json + depth, ']', depth);
    root = cJSON_ParseWithLengthOpts(json, 2 * depth, NULL, false);
    cr_assert_null(root);
    free(json);
}


Test(decode_malformed, every_prefix_of_records)
{
    static const char *const files[] = {
        "mapp_root_add_to_cart.json", "mapp_custom_list.json", "mapp_root_purchase.json",
        "canonical_purchase.json",
    };

    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t len;
        char *data = load_file(files[f], &len);

        size_t last_brace = len;

        cr_assert_eq(decode_bytes(data, len), VT_DECODE_OK, "%s: %s", files[f], msg);
        while (last_brace > 0 && data[last_brace - 1] != '}')
            last_brace--;
        /* Every prefix without the closing brace is cut inside the object and must fail
         * as JSON. */
        for (size_t n = 1; n < last_brace; n++) {
            enum vt_decode_status status = decode_bytes(data, n);
            cr_assert(status == VT_DECODE_ERR_JSON || status == VT_DECODE_ERR_EMPTY,
                      "%s cut at %zu gave %s", files[f], n, vt_decode_status_name(status));
        }
        free(data);
    }
}


Test(decode_malformed, message_buffer_optional)
{
    cr_assert_eq(vt_decode_event("[]", 2, &cfg, &ev, NULL, 0), VT_DECODE_ERR_NOT_OBJECT);

    char tiny[8];
    cr_assert_eq(vt_decode_event("[]", 2, &cfg, &ev, tiny, sizeof tiny),
                 VT_DECODE_ERR_NOT_OBJECT);
    cr_assert_eq(strlen(tiny), sizeof tiny - 1, "the message is cut to the buffer");

    cr_assert_eq(vt_decode_event("{\"session\":{\"id\":\"s1\"},\"timestamp\":"
                                 "\"2024-05-01T12:00:00Z\"}",
                                 58, NULL, &ev, msg, sizeof msg),
                 VT_DECODE_OK, "a NULL configuration means no Mapp parameters: %s", msg);
}


Test(decode_malformed, status_names)
{
    static const char *const names[VT_DECODE_STATUS_COUNT] = {
        "ok", "skip", "empty", "too_large", "invalid_json", "not_object", "unknown_format",
        "unknown_type", "invalid_session", "invalid_timestamp", "invalid_field",
    };

    for (int s = 0; s < VT_DECODE_STATUS_COUNT; s++)
        cr_assert_str_eq(vt_decode_status_name((enum vt_decode_status)s), names[s]);
    cr_assert_str_eq(vt_decode_status_name(VT_DECODE_STATUS_COUNT), "unknown");
}


Test(decode_malformed, event_cleared_between_records)
{
    cr_assert_eq(decode("{\"type\":\"purchase\",\"session_id\":\"s1\",\"ts\":1714564800000,"
                        "\"user_id\":\"u1\","
                        "\"products\":[{\"id\":\"P1\"}]}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_eq(decode("{\"type\":\"page_view\",\"session_id\":\"s2\",\"ts\":1714564800000}"),
                 VT_DECODE_OK, "%s", msg);
    cr_assert_str_eq(ev.user_id, "");
    cr_assert_eq(ev.n_items, 0);
}
