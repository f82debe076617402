/*
 * Unit tests of the alert rules file (service/alerts/rules.c): loading, defaults, and the
 * validation of every key with its message.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vitrine/alerts.h"

#define FILE_NAME "alerts.json"

/* The keys of a valid rule, which rule_with() changes one at a time. */
static const struct {
    const char *key;
    const char *value;
} base_rule[] = {
    {"name", "\"x\""},
    {"event", "\"purchase\""},
    {"window_s", "300"},
    {"condition", "{\"type\":\"above\",\"threshold\":10}"},
    {"min_volume", "5"},
    {"cooldown_s", "600"},
    {"severity", "\"warning\""},
    {"recipients", "[\"ops@shop.example\"]"},
    {"reaction", "\"Check the shop.\""},
};


/*
 * A rules file with one rule: the base rule with key set to value (JSON text), or without
 * key when value is NULL. A key the base rule lacks is added. A second key and value may
 * be given the same way, or NULL.
 */
static const char *rule_with2(const char *key, const char *value, const char *key2,
                              const char *value2)
{
    static char json[16384];
    size_t len = (size_t)snprintf(json, sizeof json, "{\"rules\":[{");
    bool first = true;
    bool key_used = false, key2_used = false;

    for (size_t i = 0; i < sizeof base_rule / sizeof base_rule[0]; i++) {
        const char *v = base_rule[i].value;

        if (key != NULL && strcmp(base_rule[i].key, key) == 0) {
            v = value;
            key_used = true;
        }
        if (key2 != NULL && strcmp(base_rule[i].key, key2) == 0) {
            v = value2;
            key2_used = true;
        }
        if (v == NULL)
            continue;
        len += (size_t)snprintf(json + len, sizeof json - len, "%s\"%s\":%s", first ? "" : ",",
                                base_rule[i].key, v);
        first = false;
    }
    if (key != NULL && !key_used && value != NULL)
        len += (size_t)snprintf(json + len, sizeof json - len, ",\"%s\":%s", key, value);
    if (key2 != NULL && !key2_used && value2 != NULL)
        len += (size_t)snprintf(json + len, sizeof json - len, ",\"%s\":%s", key2, value2);
    snprintf(json + len, sizeof json - len, "}]}");
    return json;
}


static const char *rule_with(const char *key, const char *value)
{
    return rule_with2(key, value, NULL, NULL);
}


static struct vt_alert_rules *parse(const char *json, char *err, size_t errsize)
{
    return vt_alert_rules_parse(json, strlen(json), FILE_NAME, err, errsize);
}


static struct vt_alert_rules *accepted(const char *json)
{
    char err[1024] = "";
    struct vt_alert_rules *rules = parse(json, err, sizeof err);

    cr_assert_not_null(rules, "rejected: %s\n  for %s", err, json);
    return rules;
}


static void assert_rejected(const char *json, size_t len, const char *expected)
{
    char err[1024] = "";
    struct vt_alert_rules *rules = vt_alert_rules_parse(json, len, FILE_NAME, err, sizeof err);

    cr_assert_null(rules, "accepted: %s", json);
    cr_assert(strstr(err, expected) != NULL, "message \"%s\"\n  lacks \"%s\"\n  for %s", err,
              expected, json);
}


static void assert_message(const char *json, const char *expected)
{
    assert_rejected(json, strlen(json), expected);
}


/* A long run of one character, as a JSON string. */
static const char *long_string(size_t len)
{
    static char text[1024];

    cr_assert_lt(len + 3, sizeof text);
    text[0] = '"';
    memset(text + 1, 'a', len);
    text[len + 1] = '"';
    text[len + 2] = '\0';
    return text;
}


/* ---- loading ---- */

Test(alert_rules, example_file_loads)
{
    char err[1024] = "";
    struct vt_alert_rules *rules =
        vt_alert_rules_load(VITRINE_SOURCE_DIR "/deploy/alerts.example.json", err, sizeof err);

    cr_assert_not_null(rules, "%s", err);
    cr_assert_geq(rules->n, 6);
    for (size_t i = 0; i < rules->n; i++)
        cr_assert_eq(rules->rules[i].window_s % 10, 0, "%s: the default bucket is 10 s",
                     rules->rules[i].name);

    bool conditions[4] = {false};
    for (size_t i = 0; i < rules->n; i++)
        conditions[rules->rules[i].condition] = true;
    for (size_t c = 0; c < 4; c++)
        cr_assert(conditions[c], "no example of the %s condition",
                  vt_alert_condition_name((enum vt_alert_condition)c));
    vt_alert_rules_free(rules);
}


Test(alert_rules, empty_path_gives_no_rules)
{
    char err[64] = "";
    struct vt_alert_rules *rules = vt_alert_rules_load("", err, sizeof err);

    cr_assert_not_null(rules);
    cr_assert_eq(rules->n, 0);
    vt_alert_rules_free(rules);
    vt_alert_rules_free(NULL);
}


Test(alert_rules, missing_file_named)
{
    char err[512] = "";

    cr_assert_null(vt_alert_rules_load("/nonexistent/alerts.json", err, sizeof err));
    cr_assert(strstr(err, "/nonexistent/alerts.json: cannot open the alert rules file") == err,
              "%s", err);
}


Test(alert_rules, oversized_file_rejected)
{
    char path[] = "/tmp/vitrine-alert-rules-XXXXXX";
    char err[512] = "";
    int fd = mkstemp(path);

    cr_assert_geq(fd, 0);
    FILE *out = fdopen(fd, "w");
    cr_assert_not_null(out);
    fputs("{\"rules\":[]}", out);
    for (size_t i = 0; i < 1024 * 1024; i++)
        fputc(' ', out);
    fclose(out);

    cr_assert_null(vt_alert_rules_load(path, err, sizeof err));
    unlink(path);
    cr_assert(strstr(err, "the alert rules file is larger than 1048576 bytes") != NULL, "%s",
              err);
}


Test(alert_rules, file_read_and_named)
{
    char path[] = "/tmp/vitrine-alert-rules-XXXXXX";
    char err[512] = "";
    int fd = mkstemp(path);

    cr_assert_geq(fd, 0);
    FILE *out = fdopen(fd, "w");
    cr_assert_not_null(out);
    fputs("{\"rules\":[{\"name\":\"x\"}]}", out);
    fclose(out);

    cr_assert_null(vt_alert_rules_load(path, err, sizeof err));
    unlink(path);
    char expected[512];
    snprintf(expected, sizeof expected, "%s: rules[0] \"x\": missing \"event\"", path);
    cr_assert(strstr(err, expected) == err, "%s", err);
}


Test(alert_rules, empty_list_accepted)
{
    struct vt_alert_rules *rules = accepted("{\"rules\": []}");

    cr_assert_eq(rules->n, 0);
    vt_alert_rules_free(rules);
}


Test(alert_rules, invalid_json_position)
{
    assert_message("{\"rules\": [\n  {\"name\": \"a\",\n   \"event\": purchase}\n]}",
                   FILE_NAME ": invalid JSON at line 3, column 13");
}


Test(alert_rules, trailing_text_rejected)
{
    assert_message("{\"rules\": []}\n  x", FILE_NAME ": unexpected text after the JSON object "
                                             "at line 2, column 3");
    assert_message("{\"rules\": []} {}", "unexpected text after the JSON object at line 1, "
                                         "column 15");
}


Test(alert_rules, trailing_space_accepted)
{
    struct vt_alert_rules *rules = accepted("{\"rules\": []}\n \t\r\n");

    vt_alert_rules_free(rules);
}


Test(alert_rules, nul_rejected)
{
    static const char with_byte[] = "{\"rules\": []}\0";
    assert_rejected(with_byte, sizeof with_byte - 1,
                    FILE_NAME ": a NUL byte at line 1, column 14");

    assert_message(rule_with("reaction", "\"Call \\u0000 ops\""),
                   FILE_NAME ": the escape \\u0000 at line 1, column ");
    /* An escaped backslash before "u0000" is not an escape of a NUL. */
    struct vt_alert_rules *rules = accepted(rule_with("reaction", "\"C:\\\\u0000\""));
    cr_assert_str_eq(rules->rules[0].reaction, "C:\\u0000");
    vt_alert_rules_free(rules);
}


Test(alert_rules, invalid_utf8_rejected)
{
    assert_message(rule_with("reaction", "\"caf\xC3\""), "invalid UTF-8 at line 1, column ");
    assert_message("{\"rules\":\n[\xFF]}", FILE_NAME ": invalid UTF-8 at line 2, column 2");
}


Test(alert_rules, control_characters_rejected)
{
    assert_message(rule_with("reaction", "\"line one\\nline two\""),
                   "rules[0] \"x\": \"reaction\" contains the control character 0x0A at byte 9");
    assert_message(rule_with("name", "\"a\\u0001\""),
                   "rules[0]: \"name\" contains the control character 0x01 at byte 2");
    assert_message(rule_with("recipients", "[\"ops\\t\"]"),
                   "\"recipients[0]\" contains the control character 0x09 at byte 4");
    assert_message(rule_with("filter", "{\"brand\":\"a\\u007F\"}"),
                   "\"filter.brand\" contains the control character 0x7F at byte 2");
    assert_message(rule_with("description", "\"a\\rb\""),
                   "\"description\" contains the control character 0x0D at byte 2");
    /* U+0085 (next line) is a C1 control character and a line break. */
    assert_message(rule_with("reaction", "\"one\\u0085two\""),
                   "\"reaction\" contains the control character 0x85 at byte 4");
}


Test(alert_rules, non_ascii_name_rejected)
{
    assert_message(rule_with("name", "\"a\u00e9\""),
                   "contains a character outside ASCII at byte 2");
}


/* ---- values read ---- */

Test(alert_rules, full_rule_read)
{
    struct vt_alert_rules *rules = accepted(
        "{\"rules\":[{\"name\":\"brand-Surge_1.a\",\"description\":\"Views jump.\","
        "\"event\":\"product_view\",\"aggregate\":\"sum_value\","
        "\"filter\":{\"category\":\" Makeup \",\"campaign\":\"insta.summer\","
        "\"product\":\"p-1\",\"brand\":\"Lumi\",\"referrer\":\"https://WWW.Instagram.com/x\"},"
        "\"group_by\":\"brand\",\"window_s\":300,"
        "\"condition\":{\"type\":\"ratio\",\"ratio\":2.5,\"baseline_windows\":24,"
        "\"min_baseline_windows\":6},"
        "\"min_volume\":40,\"cooldown_s\":3600,\"resolve_after\":5,\"hysteresis\":0.3,"
        "\"severity\":\"critical\",\"recipients\":[\"a@shop.example\",\" #pricing \"],"
        "\"reaction\":\" Preise prüfen. \"}]}");
    const struct vt_alert_rule *r = &rules->rules[0];

    cr_assert_eq(rules->n, 1);
    cr_assert_str_eq(r->name, "brand-Surge_1.a");
    cr_assert_not(r->any_event);
    cr_assert_eq(r->event, VT_EV_PRODUCT_VIEW);
    cr_assert_eq(r->aggregate, VT_ALERT_SUM_VALUE);
    cr_assert_str_eq(r->filter[VT_DIM_CATEGORY], "Makeup");
    cr_assert_str_eq(r->filter[VT_DIM_CAMPAIGN], "insta.summer");
    cr_assert_str_eq(r->filter[VT_DIM_PRODUCT], "p-1");
    cr_assert_str_eq(r->filter[VT_DIM_BRAND], "Lumi");
    cr_assert_str_eq(r->filter[VT_DIM_REFERRER], "instagram.com");
    cr_assert_eq(r->group_by, VT_DIM_BRAND);
    cr_assert_eq(r->window_s, 300);
    cr_assert_eq(r->condition, VT_ALERT_RATIO);
    cr_assert_float_eq(r->ratio, 2.5, 1e-12);
    cr_assert_eq(r->baseline_windows, 24);
    cr_assert_eq(r->min_baseline_windows, 6);
    cr_assert_float_eq(r->min_volume, 40, 1e-12);
    cr_assert_eq(r->cooldown_s, 3600);
    cr_assert_eq(r->resolve_after, 5);
    cr_assert_float_eq(r->hysteresis, 0.3, 1e-12);
    cr_assert_eq(r->severity, VT_SEVERITY_CRITICAL);
    cr_assert_eq(r->n_recipients, 2);
    cr_assert_str_eq(r->recipients[0], "a@shop.example");
    cr_assert_str_eq(r->recipients[1], "#pricing");
    cr_assert_str_eq(r->reaction, "Preise prüfen.");
    vt_alert_rules_free(rules);
}


Test(alert_rules, defaults_applied)
{
    struct vt_alert_rules *rules = accepted(rule_with("event", "\"any\""));
    const struct vt_alert_rule *r = &rules->rules[0];

    cr_assert(r->any_event);
    cr_assert_eq(r->aggregate, VT_ALERT_COUNT);
    cr_assert_eq(r->group_by, VT_DIM_NONE);
    for (int d = 0; d < VT_DIM_COUNT; d++)
        cr_assert_str_eq(r->filter[d], "", "filter %d", d);
    cr_assert_eq(r->condition, VT_ALERT_ABOVE);
    cr_assert_float_eq(r->threshold, 10, 1e-12);
    cr_assert_eq(r->baseline_windows, 0, "an above condition has no baseline");
    cr_assert_eq(r->resolve_after, 3);
    cr_assert_float_eq(r->hysteresis, 0.2, 1e-12);
    cr_assert_eq(r->cooldown_s, 600);
    cr_assert_eq(r->severity, VT_SEVERITY_WARNING);
    vt_alert_rules_free(rules);
}


Test(alert_rules, baseline_defaults_per_condition)
{
    struct vt_alert_rules *rules =
        accepted(rule_with("condition", "{\"type\":\"ratio\",\"ratio\":3}"));
    cr_assert_eq(rules->rules[0].baseline_windows, 12);
    cr_assert_eq(rules->rules[0].min_baseline_windows, 3);
    vt_alert_rules_free(rules);

    rules = accepted(rule_with("condition", "{\"type\":\"ratio\",\"ratio\":3,"
                                            "\"baseline_windows\":2}"));
    cr_assert_eq(rules->rules[0].min_baseline_windows, 2, "the default fits a short baseline");
    vt_alert_rules_free(rules);

    rules = accepted(rule_with("condition", "{\"type\":\"below\",\"threshold\":0,"
                                            "\"min_baseline_windows\":0}"));
    cr_assert_eq(rules->rules[0].condition, VT_ALERT_BELOW);
    cr_assert_float_eq(rules->rules[0].threshold, 0, 1e-12);
    cr_assert_eq(rules->rules[0].baseline_windows, 12);
    cr_assert_eq(rules->rules[0].min_baseline_windows, 0);
    vt_alert_rules_free(rules);

    rules = accepted(rule_with2("condition", "{\"type\":\"stock\",\"hours\":6}", "group_by",
                                "\"product\""));
    cr_assert_eq(rules->rules[0].condition, VT_ALERT_STOCK);
    cr_assert_float_eq(rules->rules[0].hours, 6, 1e-12);
    cr_assert_eq(rules->rules[0].baseline_windows, 0);
    vt_alert_rules_free(rules);
}


Test(alert_rules, referrer_filter_reduced_to_host)
{
    static const struct {
        const char *filter;
        const char *host;
    } cases[] = {
        {"instagram.com", "instagram.com"},
        {"WWW.Instagram.COM", "instagram.com"},
        {"https://www.tiktok.com/@lumi", "tiktok.com"},
        {"  google.de  ", "google.de"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char value[128];

        snprintf(value, sizeof value, "{\"referrer\":\"%s\"}", cases[i].filter);
        struct vt_alert_rules *rules = accepted(rule_with("filter", value));
        cr_assert_str_eq(rules->rules[0].filter[VT_DIM_REFERRER], cases[i].host, "for %s",
                         cases[i].filter);
        vt_alert_rules_free(rules);
    }
}


Test(alert_rules, limits_accepted)
{
    char name[VT_ALERT_NAME_MAX + 3];
    memset(name, 'n', sizeof name);
    name[0] = '"';
    name[VT_ALERT_NAME_MAX + 1] = '"';
    name[VT_ALERT_NAME_MAX + 2] = '\0';

    struct vt_alert_rules *rules = accepted(rule_with("name", name));
    cr_assert_eq(strlen(rules->rules[0].name), VT_ALERT_NAME_MAX);
    vt_alert_rules_free(rules);

    rules = accepted(rule_with("reaction", long_string(VT_ALERT_TEXT_MAX)));
    cr_assert_eq(strlen(rules->rules[0].reaction), VT_ALERT_TEXT_MAX);
    vt_alert_rules_free(rules);

    rules = accepted(rule_with("recipients", "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\"]"));
    cr_assert_eq(rules->rules[0].n_recipients, VT_ALERT_RECIPIENTS_MAX);
    vt_alert_rules_free(rules);

    rules = accepted(rule_with2("hysteresis", "0", "cooldown_s", "0"));
    cr_assert_float_eq(rules->rules[0].hysteresis, 0, 1e-12);
    cr_assert_eq(rules->rules[0].cooldown_s, 0);
    vt_alert_rules_free(rules);
}


/* ---- rejections ---- */

Test(alert_rules, top_level_messages)
{
    static const struct {
        const char *json;
        const char *message;
    } cases[] = {
        {"[]", FILE_NAME ": expected an object with an array \"rules\", not an array"},
        {"{}", FILE_NAME ": missing \"rules\""},
        {"{\"rules\":{}}", FILE_NAME ": \"rules\" must be an array, not an object"},
        {"{\"rules\":[],\"version\":2}",
         FILE_NAME ": unknown key \"version\" in the top-level object; expected rules"},
        {"{\"rules\":[],\"rules\":[]}",
         FILE_NAME ": key \"rules\" appears twice in the top-level object"},
        {"{\"rules\":[7]}", FILE_NAME ": rules[0]: a rule must be an object, not a number"},
        {"{\"rules\":[{\"name\":\"x\",\"event\":\"purchase\",\"event\":\"checkout\"}]}",
         FILE_NAME ": rules[0] \"x\": key \"event\" appears twice in the rule"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_message(cases[i].json, cases[i].message);
}


Test(alert_rules, later_rule_named)
{
    char json[4096];
    char first[2048];

    /* Two rules: the valid base rule, then one with a wrong window. */
    snprintf(first, sizeof first, "%s", rule_with("name", "\"first\""));
    snprintf(json, sizeof json, "%.*s,%s", (int)(strlen(first) - 2), first,
             rule_with2("name", "\"second\"", "window_s", "-5") + strlen("{\"rules\":["));
    assert_message(json, FILE_NAME ": rules[1] \"second\": \"window_s\" is -5; expected a "
                         "whole number from 1 to 86400");
}


Test(alert_rules, duplicate_names_rejected)
{
    char json[4096];
    const char *one = rule_with(NULL, NULL);

    snprintf(json, sizeof json, "%.*s,%s", (int)(strlen(one) - 2), one,
             one + strlen("{\"rules\":["));
    assert_message(json, FILE_NAME ": rules[1] \"x\": the name is already used by rules[0]");
}


Test(alert_rules, too_many_rules)
{
    static char json[65536];
    size_t len = (size_t)snprintf(json, sizeof json, "{\"rules\":[");

    for (int i = 0; i <= VT_ALERT_RULES_MAX; i++) {
        char name[16];
        const char *rule;

        snprintf(name, sizeof name, "\"r%d\"", i);
        rule = rule_with("name", name) + strlen("{\"rules\":[");
        len += (size_t)snprintf(json + len, sizeof json - len, "%s%.*s", i ? "," : "",
                                (int)(strlen(rule) - 2), rule);
    }
    snprintf(json + len, sizeof json - len, "]}");
    assert_message(json, FILE_NAME ": 65 rules; the maximum is 64");

    /* Exactly the maximum loads. */
    char *last = strstr(json, ",{\"name\":\"r64\"");
    cr_assert_not_null(last);
    snprintf(last, sizeof json - (size_t)(last - json), "]}");
    struct vt_alert_rules *rules = accepted(json);
    cr_assert_eq(rules->n, VT_ALERT_RULES_MAX);
    vt_alert_rules_free(rules);
}


/* Each key of a rule set to a broken value (NULL: left out), and the message. */
Test(alert_rules, key_messages)
{
    static const struct {
        const char *key;
        const char *value;
        const char *message;
    } cases[] = {
        {"name", NULL, FILE_NAME ": rules[0]: missing \"name\""},
        {"name", "3", "rules[0]: \"name\" must be a string, not a number"},
        {"name", "\"\"", "rules[0]: \"name\" is empty"},
        {"name", "\"brand surge\"",
         "rules[0]: \"name\" \"brand surge\" contains ' '; a name uses only letters, digits, "
         "'_', '.' and '-'"},
        {"name", "\"marken/anstieg\"", "contains '/'"},
        {"colour", "1",
         "rules[0] \"x\": unknown key \"colour\" in the rule; expected name, description, "
         "event, aggregate, filter, group_by, window_s, condition, min_volume, cooldown_s, "
         "resolve_after, hysteresis, severity, recipients or reaction"},
        {"description", "5", "rules[0] \"x\": \"description\" must be a string, not a number"},

        {"event", NULL, "rules[0] \"x\": missing \"event\" (an event type such as purchase, "
                        "or any)"},
        {"event", "5", "\"event\" must be a string (an event type such as purchase, or any), "
                       "not a number"},
        {"event", "\"order\"",
         "rules[0] \"x\": unknown \"event\" \"order\"; expected page_view, product_view, "
         "product_image_view, impression, click, add_to_cart, remove_from_cart, "
         "add_to_wishlist, remove_from_wishlist, checkout, purchase, search or any"},
        {"event", "\"Purchase\"", "unknown \"event\" \"Purchase\""},

        {"aggregate", "\"avg\"",
         "rules[0] \"x\": unknown \"aggregate\" \"avg\"; expected count, sum_quantity or "
         "sum_value"},
        {"aggregate", "1",
         "\"aggregate\" must be a string (count, sum_quantity or sum_value), not a number"},

        {"filter", "[]", "rules[0] \"x\": \"filter\" must be an object, not an array"},
        {"filter", "{}", "rules[0] \"x\": \"filter\" is empty; leave it out"},
        {"filter", "{\"shop\":\"a\"}",
         "unknown key \"shop\" in \"filter\"; expected product, brand, category, campaign or "
         "referrer"},
        {"filter", "{\"brand\":\"a\",\"brand\":\"b\"}",
         "key \"brand\" appears twice in \"filter\""},
        {"filter", "{\"brand\":\"  \"}", "rules[0] \"x\": \"filter.brand\" is empty"},
        {"filter", "{\"category\":7}", "\"filter.category\" must be a string, not a number"},
        {"filter", "{\"campaign\":null}", "\"filter.campaign\" must be a string, not null"},
        {"filter", "{\"referrer\":\"https://\"}",
         "\"filter.referrer\" \"https://\" names no host; give a host such as instagram.com"},

        {"group_by", "\"shop\"",
         "rules[0] \"x\": unknown \"group_by\" \"shop\"; expected product, brand, category, "
         "campaign or referrer"},
        {"group_by", "[\"brand\"]", "\"group_by\" must be a string"},

        {"window_s", NULL, "missing \"window_s\" (a whole number from 1 to 86400)"},
        {"window_s", "0", "\"window_s\" is 0; expected a whole number from 1 to 86400"},
        {"window_s", "86401", "\"window_s\" is 86401; expected a whole number from 1 to 86400"},
        {"window_s", "1.5", "\"window_s\" is 1.5; expected a whole number"},
        {"window_s", "\"300\"",
         "\"window_s\" must be a whole number from 1 to 86400, not a string"},
        {"window_s", "1e400", "\"window_s\" is inf; expected a whole number"},

        {"condition", NULL, "missing \"condition\" (an object with \"type\" ratio, above, "
                            "below or stock)"},
        {"condition", "\"above\"", "\"condition\" must be an object, not a string"},
        {"condition", "{}", "missing \"condition.type\" (ratio, above, below or stock)"},
        {"condition", "{\"type\":\"between\"}",
         "unknown \"condition.type\" \"between\"; expected ratio, above, below or stock"},
        {"condition", "{\"type\":\"ratio\"}",
         "missing \"condition.ratio\" (a number above 1 and at most 1000)"},
        {"condition", "{\"type\":\"ratio\",\"ratio\":1}",
         "\"condition.ratio\" is 1; expected a number above 1 and at most 1000"},
        {"condition", "{\"type\":\"ratio\",\"ratio\":1001}", "\"condition.ratio\" is 1001"},
        {"condition", "{\"type\":\"ratio\",\"ratio\":true}",
         "\"condition.ratio\" must be a number above 1 and at most 1000, not a boolean"},
        {"condition", "{\"type\":\"ratio\",\"ratio\":3,\"threshold\":5}",
         "unknown key \"threshold\" in \"condition\" (type ratio); expected type, ratio, "
         "baseline_windows or min_baseline_windows"},
        {"condition", "{\"type\":\"ratio\",\"ratio\":3,\"baseline_windows\":0}",
         "\"condition.baseline_windows\" is 0; expected a whole number from 1 to 48"},
        {"condition", "{\"type\":\"ratio\",\"ratio\":3,\"baseline_windows\":49}",
         "\"condition.baseline_windows\" is 49; expected a whole number from 1 to 48"},
        {"condition", "{\"type\":\"ratio\",\"ratio\":3,\"min_baseline_windows\":13}",
         "\"condition.min_baseline_windows\" is 13; expected a whole number from 1 to 12"},
        {"condition", "{\"type\":\"ratio\",\"ratio\":3,\"min_baseline_windows\":0}",
         "\"condition.min_baseline_windows\" is 0; expected a whole number from 1 to 12"},
        {"condition", "{\"type\":\"above\"}",
         "missing \"condition.threshold\" (a number above 0 and at most 1000000000000)"},
        {"condition", "{\"type\":\"above\",\"threshold\":0}",
         "\"condition.threshold\" is 0; expected a number above 0 and at most 1000000000000"},
        {"condition", "{\"type\":\"above\",\"threshold\":5,\"min_baseline_windows\":2}",
         "unknown key \"min_baseline_windows\" in \"condition\" (type above); expected type "
         "or threshold"},
        {"condition", "{\"type\":\"above\",\"threshold\":5,\"baseline_windows\":2}",
         "unknown key \"baseline_windows\" in \"condition\" (type above)"},
        {"condition", "{\"type\":\"above\",\"threshold\":5,\"ratio\":2}",
         "unknown key \"ratio\" in \"condition\" (type above)"},
        {"condition", "{\"type\":\"below\",\"threshold\":-1}",
         "\"condition.threshold\" is -1; expected a number from 0 to 1000000000000"},
        {"condition", "{\"type\":\"below\",\"threshold\":1,\"min_baseline_windows\":13}",
         "\"condition.min_baseline_windows\" is 13; expected a whole number from 0 to 12"},
        {"condition", "{\"type\":\"stock\"}",
         "missing \"condition.hours\" (a number above 0 and at most 720)"},
        {"condition", "{\"type\":\"stock\",\"hours\":0}", "\"condition.hours\" is 0"},
        {"condition", "{\"type\":\"stock\",\"hours\":6,\"threshold\":1}",
         "unknown key \"threshold\" in \"condition\" (type stock); expected type or hours"},
        {"condition", "{\"type\":\"stock\",\"hours\":6}",
         "a stock condition needs \"group_by\": \"product\""},

        {"min_volume", NULL, "missing \"min_volume\" (a number from 0 to 1000000000000)"},
        {"min_volume", "-1", "\"min_volume\" is -1; expected a number from 0 to 1000000000000"},
        {"min_volume", "\"5\"", "\"min_volume\" must be a number from 0 to 1000000000000, not "
                                "a string"},

        {"cooldown_s", NULL, "missing \"cooldown_s\" (a whole number from 0 to 604800)"},
        {"cooldown_s", "-1", "\"cooldown_s\" is -1; expected a whole number from 0 to 604800"},
        {"cooldown_s", "604801", "\"cooldown_s\" is 604801"},

        {"resolve_after", "0", "\"resolve_after\" is 0; expected a whole number from 1 to 1000"},
        {"resolve_after", "1001", "\"resolve_after\" is 1001"},
        {"resolve_after", "2.5", "\"resolve_after\" is 2.5"},

        {"hysteresis", "0.95", "\"hysteresis\" is 0.95; expected a number from 0 to 0.9"},
        {"hysteresis", "-0.1", "\"hysteresis\" is -0.1"},
        {"hysteresis", "\"0.2\"", "\"hysteresis\" must be a number from 0 to 0.9, not a string"},

        {"severity", NULL, "missing \"severity\" (info, warning or critical)"},
        {"severity", "\"high\"", "unknown \"severity\" \"high\"; expected info, warning or "
                                 "critical"},
        {"severity", "2", "\"severity\" must be a string (info, warning or critical), not a "
                          "number"},

        {"recipients", NULL, "missing \"recipients\" (an array of 1 to 8 names or addresses)"},
        {"recipients", "\"ops\"", "\"recipients\" must be an array of strings, not a string"},
        {"recipients", "[]", "\"recipients\" is empty; name at least one recipient"},
        {"recipients", "[1]", "\"recipients[0]\" must be a string, not a number"},
        {"recipients", "[\"a\",\" \"]", "\"recipients[1]\" is empty"},
        {"recipients", "[\"a\",\"b\",\"a\"]", "\"recipients[2]\" \"a\" is listed twice"},
        {"recipients", "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]",
         "\"recipients\" lists 9 entries; the maximum is 8"},

        {"reaction", NULL, "missing \"reaction\" (the text that tells the recipients what to "
                           "do)"},
        {"reaction", "\"\"", "rules[0] \"x\": \"reaction\" is empty"},
        {"reaction", "[\"a\"]", "\"reaction\" must be a string, not an array"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_message(rule_with(cases[i].key, cases[i].value), cases[i].message);
}


Test(alert_rules, lengths_rejected)
{
    assert_message(rule_with("name", long_string(VT_ALERT_NAME_MAX + 1)),
                   "rules[0]: \"name\" is 65 bytes long; the maximum is 64");
    assert_message(rule_with("reaction", long_string(VT_ALERT_TEXT_MAX + 1)),
                   "\"reaction\" is 513 bytes long; the maximum is 512");

    char recipients[512];
    snprintf(recipients, sizeof recipients, "[%s]", long_string(VT_ALERT_NAME_MAX * 2 + 1));
    assert_message(rule_with("recipients", recipients),
                   "\"recipients[0]\" is 129 bytes long; the maximum is 128");

    char filter[512];
    snprintf(filter, sizeof filter, "{\"brand\":%s}", long_string(VT_NAME_MAX + 1));
    assert_message(rule_with("filter", filter),
                   "\"filter.brand\" is 97 bytes long; the maximum is 96");
}


/* Combinations that could never match, and what a stock projection needs. */
Test(alert_rules, combination_messages)
{
    static const struct {
        const char *key;
        const char *value;
        const char *key2;
        const char *value2;
        const char *message;
    } cases[] = {
        {"event", "\"page_view\"", "filter", "{\"brand\":\"Lumi\"}",
         "rules[0] \"x\": \"filter.brand\" never matches: page_view events carry no products"},
        {"event", "\"search\"", "filter", "{\"product\":\"p1\"}",
         "\"filter.product\" never matches: search events carry no products"},
        {"event", "\"page_view\"", "group_by", "\"category\"",
         "\"group_by\" category never matches: page_view events carry no products"},
        {"event", "\"search\"", "aggregate", "\"sum_quantity\"",
         "\"aggregate\" sum_quantity needs products; search events carry none, so use count"},
        {"event", "\"page_view\"", "aggregate", "\"sum_value\"",
         "\"aggregate\" sum_value needs products; page_view events carry none"},
        {"condition", "{\"type\":\"stock\",\"hours\":6}", "group_by", "\"brand\"",
         "a stock condition needs \"group_by\": \"product\", because stock is known per "
         "product"},
        {"condition", "{\"type\":\"stock\",\"hours\":6}", "event", "\"any\"",
         "a stock condition needs one event type (usually purchase), not any"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_message(rule_with2(cases[i].key, cases[i].value, cases[i].key2, cases[i].value2),
                       cases[i].message);

    /* The stock condition with the sum of values, which it cannot compare with units. */
    char json[4096];
    snprintf(json, sizeof json, "%s",
             rule_with2("condition", "{\"type\":\"stock\",\"hours\":6}", "group_by",
                        "\"product\""));
    char *end = strstr(json, "}]}");
    cr_assert_not_null(end);
    snprintf(end, sizeof json - (size_t)(end - json), ",\"aggregate\":\"sum_value\"}]}");
    assert_message(json, "a stock condition needs \"aggregate\" sum_quantity or count");

    /* Page views may filter and group by campaign and referrer. */
    struct vt_alert_rules *rules = accepted(rule_with2("event", "\"page_view\"", "group_by",
                                                       "\"referrer\""));
    vt_alert_rules_free(rules);
    rules = accepted(rule_with2("event", "\"any\"", "filter", "{\"brand\":\"Lumi\"}"));
    vt_alert_rules_free(rules);
}


/* ---- names ---- */

Test(alert_rules, enumeration_names)
{
    cr_assert_str_eq(vt_alert_dimension_name(VT_DIM_PRODUCT), "product");
    cr_assert_str_eq(vt_alert_dimension_name(VT_DIM_BRAND), "brand");
    cr_assert_str_eq(vt_alert_dimension_name(VT_DIM_CATEGORY), "category");
    cr_assert_str_eq(vt_alert_dimension_name(VT_DIM_CAMPAIGN), "campaign");
    cr_assert_str_eq(vt_alert_dimension_name(VT_DIM_REFERRER), "referrer");
    cr_assert_str_eq(vt_alert_dimension_name(VT_DIM_NONE), "none");
    cr_assert_str_eq(vt_alert_dimension_name((enum vt_alert_dimension)99), "unknown");

    cr_assert_str_eq(vt_alert_severity_name(VT_SEVERITY_INFO), "info");
    cr_assert_str_eq(vt_alert_severity_name(VT_SEVERITY_WARNING), "warning");
    cr_assert_str_eq(vt_alert_severity_name(VT_SEVERITY_CRITICAL), "critical");
    cr_assert_str_eq(vt_alert_severity_name((enum vt_alert_severity)7), "unknown");

    cr_assert_str_eq(vt_alert_aggregate_name(VT_ALERT_SUM_QUANTITY), "sum_quantity");
    cr_assert_str_eq(vt_alert_condition_name(VT_ALERT_STOCK), "stock");
    cr_assert_str_eq(vt_alert_condition_name((enum vt_alert_condition)9), "unknown");
}
