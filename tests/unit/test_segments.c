/*
 * Unit tests of the segment definitions (service/profile/segments.c): loading and
 * validation with their messages, each condition type and bound, all/any/not, score
 * segments, explain output and the served counters.
 */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vitrine/segments.h"

#define FILE_NAME "shop-segments.json"

/* The reference time of every test: 2026-01-01T00:00:00Z. */
#define NOW_MS INT64_C(1767225600000)

static struct vt_profile profile;
static struct vt_gender_estimate gender;


static void add_name(struct vt_scored_name *list, size_t *n, const char *name, double value)
{
    snprintf(list[*n].name, sizeof list[*n].name, "%s", name);
    list[*n].log_score = 0;
    list[*n].value = value;
    (*n)++;
}


/*
 * A session with shares that are easy to read off:
 *   categories: Perfume 3, perfume.edp 1, perfumery 2, stationery 4 (total 10);
 *   brands: Runail 6, irisk 2, runail-pro 2 (total 10);
 *   tiers: drugstore 1, luxury 3 (total 4).
 * It has 7 events (4 product views, 2 adds to cart, 1 search), the last add to cart 10
 * minutes before NOW_MS, 2 cart lines, revenue 120, a visitor with 3 sessions, and a
 * female gender estimate of probability 0.8.
 */
static void make_profile(void)
{
    vt_profile_clear(&profile);
    profile.exists = true;
    profile.first_seen_ms = NOW_MS - 3600 * 1000;
    profile.last_seen_ms = NOW_MS - 60 * 1000;
    profile.events = 7;
    profile.count_by_type[VT_EV_PRODUCT_VIEW] = 4;
    profile.count_by_type[VT_EV_ADD_TO_CART] = 2;
    profile.count_by_type[VT_EV_SEARCH] = 1;
    profile.last_by_type_ms[VT_EV_PRODUCT_VIEW] = NOW_MS - 60 * 1000;
    profile.last_by_type_ms[VT_EV_ADD_TO_CART] = NOW_MS - 600 * 1000;
    profile.last_by_type_ms[VT_EV_SEARCH] = NOW_MS - 1800 * 1000;
    profile.revenue = 120;
    profile.visitor_revenue = 120;
    snprintf(profile.visitor_id, sizeof profile.visitor_id, "v-1");
    profile.visitor_sessions = 3;
    profile.visitor_linked = true;

    add_name(profile.categories, &profile.n_categories, "stationery", 4);
    add_name(profile.categories, &profile.n_categories, "Perfume", 3);
    add_name(profile.categories, &profile.n_categories, "perfumery", 2);
    add_name(profile.categories, &profile.n_categories, "perfume.edp", 1);
    add_name(profile.brands, &profile.n_brands, "Runail", 6);
    add_name(profile.brands, &profile.n_brands, "irisk", 2);
    add_name(profile.brands, &profile.n_brands, "runail-pro", 2);
    add_name(profile.tiers, &profile.n_tiers, "luxury", 3);
    add_name(profile.tiers, &profile.n_tiers, "drugstore", 1);

    profile.n_cart = 2;
    snprintf(profile.cart[0].id, sizeof profile.cart[0].id, "5773361");
    profile.cart[0].quantity = 1;
    snprintf(profile.cart[1].id, sizeof profile.cart[1].id, "4958");
    profile.cart[1].quantity = 3;

    gender.segment = VT_SEGMENT_FEMALE;
    gender.p_female = 0.8;
    gender.probability = 0.8;
}


static void setup(void)
{
    make_profile();
}


static struct vt_segment_facts facts(void)
{
    struct vt_segment_facts f = {.profile = &profile, .gender = &gender, .now_ms = NOW_MS};

    return f;
}


static struct vt_segments *parse_ok(const char *json)
{
    char err[512] = "";
    struct vt_segments *s = vt_segments_parse(json, strlen(json), FILE_NAME, err, sizeof err);

    cr_assert_not_null(s, "rejected: %s\n%s", err, json);
    return s;
}


/* Whether the profile is a member of a segment with this condition. The explain output
 * must report the same membership. */
static bool holds(const char *condition)
{
    char json[4096];
    char out[16384];
    struct vt_jsonw w;

    snprintf(json, sizeof json, "{\"segments\":[{\"name\":\"t\",\"when\":%s}]}", condition);
    struct vt_segments *s = parse_ok(json);
    struct vt_segment_facts f = facts();
    bool member = vt_segments_evaluate(s, &f) == 1;

    vt_jsonw_init(&w, out, sizeof out);
    vt_segments_explain(s, &f, &w);
    cr_assert_geq(vt_jsonw_finish(&w), 0);
    cJSON *root = cJSON_Parse(out);
    cr_assert_not_null(root, "explain is not JSON: %s", out);
    cJSON *first = cJSON_GetArrayItem(root, 0);
    cr_assert_eq(cJSON_IsTrue(cJSON_GetObjectItem(first, "member")), member,
                 "explain disagrees with evaluate for %s: %s", condition, out);
    cJSON *node = cJSON_GetArrayItem(cJSON_GetObjectItem(first, "conditions"), 0);
    cr_assert_eq(cJSON_IsTrue(cJSON_GetObjectItem(node, "held")), member, "%s", out);

    cJSON_Delete(root);
    vt_segments_free(s);
    return member;
}


/* Parse text that must be rejected and check that the message contains expected. */
static void assert_rejected(const char *json, const char *expected)
{
    char err[512] = "";
    struct vt_segments *s = vt_segments_parse(json, strlen(json), FILE_NAME, err, sizeof err);

    cr_assert_null(s, "accepted: %s", json);
    cr_assert(strstr(err, expected) != NULL, "message \"%s\" lacks \"%s\" for %s", err,
              expected, json);
}


/* A file with one segment "x" whose condition is cond. */
static void assert_condition_rejected(const char *cond, const char *reason)
{
    char json[2048];
    char expected[512];

    snprintf(json, sizeof json, "{\"segments\":[{\"name\":\"x\",\"when\":%s}]}", cond);
    snprintf(expected, sizeof expected, FILE_NAME ": segment 0 (\"x\"): %s", reason);
    assert_rejected(json, expected);
}


/* ---- loading ---- */

Test(segments, example_file_loads)
{
    char err[512] = "";
    struct vt_segments *s =
        vt_segments_load(VITRINE_SOURCE_DIR "/deploy/segments.example.json", err, sizeof err);

    cr_assert_not_null(s, "%s", err);
    cr_assert_geq(vt_segments_count(s), 6);
    cr_assert_leq(vt_segments_count(s), 9);
    cr_assert_geq(vt_segments_find(s, "cart_abandoner"), 0);
    vt_segments_free(s);
}


Test(segments, example_file_on_fixture_profile, .init = setup)
{
    char err[512] = "";
    struct vt_segments *s =
        vt_segments_load(VITRINE_SOURCE_DIR "/deploy/segments.example.json", err, sizeof err);
    struct vt_segment_facts f = facts();

    cr_assert_not_null(s, "%s", err);
    uint64_t mask = vt_segments_evaluate(s, &f);
    int cart_abandoner = vt_segments_find(s, "cart_abandoner");
    int returning_buyer = vt_segments_find(s, "returning_buyer");
    int perfume_fan = vt_segments_find(s, "perfume_fan");
    int new_visitor = vt_segments_find(s, "new_visitor_mens_products");

    /* Carted 10 minutes ago, no purchase, two cart lines. */
    cr_assert_geq(cart_abandoner, 0);
    cr_assert(mask >> cart_abandoner & 1);
    /* Three sessions and a revenue of 120. */
    cr_assert_geq(returning_buyer, 0);
    cr_assert(mask >> returning_buyer & 1);
    /* Perfume and perfume.edp are 4 of 10. */
    cr_assert_geq(perfume_fan, 0);
    cr_assert(mask >> perfume_fan & 1);
    cr_assert_geq(new_visitor, 0);
    cr_assert_not(mask >> new_visitor & 1);
    vt_segments_free(s);
}


Test(segments, empty_path_gives_empty_set)
{
    char err[64] = "";
    struct vt_segments *s = vt_segments_load("", err, sizeof err);
    struct vt_segment_facts f = {.profile = &profile, .now_ms = NOW_MS};

    make_profile();
    cr_assert_not_null(s);
    cr_assert_eq(vt_segments_count(s), 0);
    cr_assert_eq(vt_segments_evaluate(s, &f), 0);
    cr_assert_eq(vt_segments_count(NULL), 0);
    cr_assert_null(vt_segments_name(s, 0));
    cr_assert_eq(vt_segments_find(s, "x"), -1);
    vt_segments_free(s);
    vt_segments_free(NULL);
}


Test(segments, missing_file_named)
{
    char err[512] = "";

    cr_assert_null(vt_segments_load("/nonexistent/segments.json", err, sizeof err));
    cr_assert(strstr(err, "/nonexistent/segments.json: cannot open the segments file") == err,
              "%s", err);
}


Test(segments, oversized_file_rejected)
{
    char path[] = "/tmp/vitrine-segments-test-XXXXXX";
    char err[512] = "";
    int fd = mkstemp(path);

    cr_assert_geq(fd, 0);
    FILE *out = fdopen(fd, "w");
    cr_assert_not_null(out);
    fputs("{\"segments\":[]}", out);
    for (size_t i = 0; i < VT_SEGMENTS_FILE_MAX; i++)
        fputc(' ', out);
    fclose(out);

    cr_assert_null(vt_segments_load(path, err, sizeof err));
    unlink(path);
    cr_assert(strstr(err, "larger than 1048576 bytes") != NULL, "%s", err);
}


Test(segments, invalid_json_position)
{
    assert_rejected("{\"segments\": [\n  {\"name\": \"a\",\n   \"when\": first}\n]}",
                    FILE_NAME ": invalid JSON at line 3, column 12");
}


Test(segments, nul_rejected)
{
    static const char with_escape[] =
        "{\"segments\":[{\"name\":\"x\",\"when\":{\"brand\":{\"name\":\"a\\u0000b\","
        "\"min_share\":0.5}}}]}";
    static const char with_byte[] = "{\"segments\":[]}\0";
    char err[512] = "";

    assert_rejected(with_escape, FILE_NAME ": a NUL (byte or \\u0000) at line 1");
    cr_assert_null(vt_segments_parse(with_byte, sizeof with_byte - 1, FILE_NAME, err,
                                     sizeof err));
    cr_assert(strstr(err, "a NUL (byte or \\u0000) at line 1, column 16") != NULL, "%s", err);
}


Test(segments, names_and_indexes)
{
    struct vt_segments *s = parse_ok(
        "{\"segments\":[{\"name\":\"a-1\",\"when\":{\"first_visit\":true}},"
        "{\"name\":\"b_2\",\"description\":\"second\",\"when\":{\"first_visit\":false}}]}");

    cr_assert_eq(vt_segments_count(s), 2);
    cr_assert_str_eq(vt_segments_name(s, 0), "a-1");
    cr_assert_str_eq(vt_segments_name(s, 1), "b_2");
    cr_assert_null(vt_segments_name(s, 2));
    cr_assert_eq(vt_segments_find(s, "b_2"), 1);
    cr_assert_eq(vt_segments_find(s, "B_2"), -1);
    cr_assert_eq(vt_segments_find(s, "c"), -1);
    vt_segments_free(s);
}


Test(segments, empty_list_accepted)
{
    struct vt_segments *s = parse_ok("{\"segments\": []}");

    cr_assert_eq(vt_segments_count(s), 0);
    vt_segments_free(s);
}


Test(segments, segment_count_limit)
{
    char json[16384];
    size_t len = 0;

    len += (size_t)snprintf(json + len, sizeof json - len, "{\"segments\":[");
    for (int i = 0; i < VT_SEGMENTS_MAX + 1; i++)
        len += (size_t)snprintf(json + len, sizeof json - len,
                                "%s{\"name\":\"s%d\",\"when\":{\"cart\":{\"min_lines\":%d}}}",
                                i > 0 ? "," : "", i, i % 4);
    snprintf(json + len, sizeof json - len, "]}");
    assert_rejected(json, FILE_NAME ": 65 segments; the maximum is 64");

    /* Drop the last one: 64 load, and bit 63 is the last segment. */
    char *last = strstr(json, ",{\"name\":\"s64\"");
    cr_assert_not_null(last);
    snprintf(last, sizeof json - (size_t)(last - json), "]}");
    struct vt_segments *s = parse_ok(json);
    struct vt_segment_facts f;

    make_profile();
    f = facts();
    cr_assert_eq(vt_segments_count(s), 64);
    /* Two cart lines: min_lines 0, 1 and 2 hold, 3 does not. */
    cr_assert_eq(vt_segments_evaluate(s, &f), UINT64_C(0x7777777777777777));
    vt_segments_free(s);
}


/* Each file-level error and its message. */
Test(segments, file_messages)
{
    assert_rejected("[]", FILE_NAME ": expected an object with an array \"segments\"");
    assert_rejected("{\"segments\":{}}",
                    FILE_NAME ": expected an object with an array \"segments\"");
    assert_rejected("{\"segments\":[],\"version\":2}",
                    FILE_NAME ": unknown or repeated top-level key \"version\"");
    assert_rejected("{\"segments\":[],\"segments\":[]}",
                    FILE_NAME ": unknown or repeated top-level key \"segments\"");
    assert_rejected("{\"segments\":[]} x",
                    FILE_NAME ": unexpected text after the JSON object at line 1, column 17");
}


/* Each invalid segment (not its conditions) and its message. */
Test(segments, segment_messages)
{
    static const struct {
        const char *json;
        const char *message;
    } cases[] = {
        {"{\"segments\":[7]}", FILE_NAME ": segment 0: a segment must be an object"},
        {"{\"segments\":[{\"when\":{\"first_visit\":true}}]}",
         FILE_NAME ": segment 0: missing \"name\""},
        {"{\"segments\":[{\"name\":3}]}",
         FILE_NAME ": segment 0: \"name\" must be a string of a-z, 0-9, _ and -"},
        {"{\"segments\":[{\"name\":\"\"}]}", FILE_NAME ": segment 0: \"name\" is empty"},
        {"{\"segments\":[{\"name\":\"a234567890123456789012345678901234567890123456789\"}]}",
         FILE_NAME ": segment 0: \"name\" is longer than 48 bytes"},
        {"{\"segments\":[{\"name\":\"Big\"}]}",
         FILE_NAME ": segment 0: \"name\" contains the byte 0x42 at position 1; a segment "
                   "name consists of a-z, 0-9, _ and -"},
        {"{\"segments\":[{\"name\":\"a b\"}]}",
         FILE_NAME ": segment 0: \"name\" contains the byte 0x20 at position 2"},
        {"{\"segments\":[{\"name\":\"_at\"}]}",
         FILE_NAME ": segment 0: \"name\" \"_at\" starts with \"_\"; start it with a letter or "
                   "a digit"},
        {"{\"segments\":[{\"name\":\"male\"}]}",
         FILE_NAME ": segment 0: \"name\" \"male\" is the name of a gender segment in business "
                   "rules; choose another"},
        {"{\"segments\":[{\"name\":\"x\",\"when\":{\"first_visit\":true}},"
         "{\"name\":\"x\",\"when\":{\"first_visit\":true}}]}",
         FILE_NAME ": segment 1 (\"x\"): the name is already used by segment 0"},
        {"{\"segments\":[{\"name\":\"x\",\"colour\":1,\"when\":{\"first_visit\":true}}]}",
         FILE_NAME ": segment 0 (\"x\"): unknown key \"colour\" in the segment; allowed: "
                   "name, description, when, score"},
        {"{\"segments\":[{\"name\":\"x\",\"when\":{\"first_visit\":true},"
         "\"when\":{\"first_visit\":true}}]}",
         FILE_NAME ": segment 0 (\"x\"): key \"when\" appears twice in the segment"},
        {"{\"segments\":[{\"name\":\"x\",\"description\":1,\"when\":{\"first_visit\":true}}]}",
         FILE_NAME ": segment 0 (\"x\"): \"description\" must be a string"},
        {"{\"segments\":[{\"name\":\"x\"}]}",
         FILE_NAME ": segment 0 (\"x\"): give exactly one of \"when\" (a condition) and "
                   "\"score\" (points per condition)"},
        {"{\"segments\":[{\"name\":\"x\",\"when\":{\"first_visit\":true},"
         "\"score\":{\"min\":1,\"points\":[{\"points\":1,\"when\":{\"first_visit\":true}}]}}]}",
         FILE_NAME ": segment 0 (\"x\"): give exactly one of \"when\""},
        /* score */
        {"{\"segments\":[{\"name\":\"x\",\"score\":[]}]}",
         FILE_NAME ": segment 0 (\"x\"): score must be an object with the keys min, points"},
        {"{\"segments\":[{\"name\":\"x\",\"score\":{\"min\":1,\"max\":2,\"points\":[]}}]}",
         FILE_NAME ": segment 0 (\"x\"): unknown key \"max\" in score; allowed: min, points"},
        {"{\"segments\":[{\"name\":\"x\",\"score\":{\"points\":[{\"points\":1,"
         "\"when\":{\"first_visit\":true}}]}}]}",
         FILE_NAME ": segment 0 (\"x\"): score needs \"min\""},
        {"{\"segments\":[{\"name\":\"x\",\"score\":{\"min\":\"1\",\"points\":[]}}]}",
         FILE_NAME ": segment 0 (\"x\"): score.min must be a number"},
        {"{\"segments\":[{\"name\":\"x\",\"score\":{\"min\":1e999,\"points\":[]}}]}",
         FILE_NAME ": segment 0 (\"x\"): score.min must be a finite number"},
        {"{\"segments\":[{\"name\":\"x\",\"score\":{\"min\":1,\"points\":[]}}]}",
         FILE_NAME ": segment 0 (\"x\"): score.points must be an array of 1 to 32 entries"},
        {"{\"segments\":[{\"name\":\"x\",\"score\":{\"min\":1,\"points\":{}}}]}",
         FILE_NAME ": segment 0 (\"x\"): score.points must be an array of 1 to 32 entries"},
        {"{\"segments\":[{\"name\":\"x\",\"score\":{\"min\":1,\"points\":[3]}}]}",
         FILE_NAME ": segment 0 (\"x\"): score.points[0] must be an object with the keys "
                   "points, when"},
        {"{\"segments\":[{\"name\":\"x\",\"score\":{\"min\":1,\"points\":[{\"points\":1,"
         "\"when\":{\"first_visit\":true},\"label\":\"a\"}]}}]}",
         FILE_NAME ": segment 0 (\"x\"): unknown key \"label\" in score.points[0]"},
        {"{\"segments\":[{\"name\":\"x\",\"score\":{\"min\":1,\"points\":["
         "{\"when\":{\"first_visit\":true}}]}}]}",
         FILE_NAME ": segment 0 (\"x\"): score.points[0] needs \"points\": a number from "
                   "-1000 to 1000"},
        {"{\"segments\":[{\"name\":\"x\",\"score\":{\"min\":1,\"points\":["
         "{\"points\":1001,\"when\":{\"first_visit\":true}}]}}]}",
         FILE_NAME ": segment 0 (\"x\"): score.points[0].points 1001 is out of range; "
                   "expected -1000 to 1000"},
        {"{\"segments\":[{\"name\":\"x\",\"score\":{\"min\":1,\"points\":["
         "{\"points\":-1000.5,\"when\":{\"first_visit\":true}}]}}]}",
         FILE_NAME ": segment 0 (\"x\"): score.points[0].points -1000.5 is out of range"},
        {"{\"segments\":[{\"name\":\"x\",\"score\":{\"min\":1,\"points\":[{\"points\":1}]}}]}",
         FILE_NAME ": segment 0 (\"x\"): score.points[0] needs \"when\""},
        {"{\"segments\":[{\"name\":\"x\",\"score\":{\"min\":1,\"points\":["
         "{\"points\":1,\"when\":{\"first_visit\":true}},"
         "{\"points\":1,\"when\":{\"first_visit\":1}}]}}]}",
         FILE_NAME ": segment 0 (\"x\"): score.points[1].when.first_visit must be true"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_rejected(cases[i].json, cases[i].message);
}


Test(segments, thirty_three_points_rejected)
{
    char json[8192];
    size_t len = 0;

    len += (size_t)snprintf(json + len, sizeof json - len,
                            "{\"segments\":[{\"name\":\"x\",\"score\":{\"min\":1,\"points\":[");
    for (int i = 0; i < VT_SEGMENT_POINTS_MAX + 1; i++)
        len += (size_t)snprintf(json + len, sizeof json - len,
                                "%s{\"points\":1,\"when\":{\"first_visit\":true}}",
                                i > 0 ? "," : "");
    snprintf(json + len, sizeof json - len, "]}}]}");
    assert_rejected(json, FILE_NAME ": segment 0 (\"x\"): score.points must be an array of "
                                    "1 to 32 entries");
}


/* Each invalid condition and its message. */
Test(segments, condition_messages)
{
    static const struct {
        const char *cond;
        const char *reason;
    } cases[] = {
        {"[]", "when must be an object with exactly one key, the condition type: all, any, "
               "not, category, brand, tier, count, last, gender, first_visit, sessions, cart "
               "or revenue"},
        {"{}", "when must be an object with exactly one key"},
        {"{\"first_visit\":true,\"cart\":{\"min_lines\":1}}",
         "when must be an object with exactly one key"},
        {"{\"colour\":\"red\"}", "when.colour: unknown condition \"colour\"; expected all, any"},
        /* all, any, not */
        {"{\"all\":{}}", "when.all must be an array of 1 to 16 conditions"},
        {"{\"all\":[]}", "when.all lists 0 conditions; expected 1 to 16"},
        {"{\"any\":[{\"first_visit\":true},{\"first_visit\":true},{\"first_visit\":true},"
         "{\"first_visit\":true},{\"first_visit\":true},{\"first_visit\":true},"
         "{\"first_visit\":true},{\"first_visit\":true},{\"first_visit\":true},"
         "{\"first_visit\":true},{\"first_visit\":true},{\"first_visit\":true},"
         "{\"first_visit\":true},{\"first_visit\":true},{\"first_visit\":true},"
         "{\"first_visit\":true},{\"first_visit\":true}]}",
         "when.any lists 17 conditions; expected 1 to 16"},
        {"{\"all\":[{\"first_visit\":true},{\"cart\":{}}]}",
         "when.all[1].cart needs \"min_lines\", \"max_lines\" or both"},
        {"{\"not\":[]}", "when.not must be an object with exactly one key"},
        {"{\"not\":{\"not\":{\"not\":{\"not\":{\"not\":{\"not\":{\"not\":{\"not\":"
         "{\"first_visit\":true}}}}}}}}}",
         "when.not.not.not.not.not.not.not.not nests conditions deeper than 8 levels"},
        /* category, brand, tier */
        {"{\"category\":\"perfume\"}",
         "when.category must be an object with the keys name, min_share, max_share"},
        {"{\"category\":{\"name\":\"perfume\",\"share\":0.3}}",
         "unknown key \"share\" in when.category; allowed: name, min_share, max_share"},
        {"{\"category\":{\"name\":\"perfume\",\"min_share\":0.3,\"min_share\":0.4}}",
         "key \"min_share\" appears twice in when.category"},
        {"{\"category\":{\"min_share\":0.3}}", "when.category needs \"name\": a non-empty string"},
        {"{\"brand\":{\"name\":\"\",\"min_share\":0.3}}",
         "when.brand needs \"name\": a non-empty string"},
        {"{\"brand\":{\"name\":7,\"min_share\":0.3}}", "when.brand needs \"name\""},
        {"{\"brand\":{\"name\":\"a\\tb\",\"min_share\":0.3}}",
         "when.brand.name contains the control character 0x09 at byte 2"},
        {"{\"brand\":{\"name\":\"a12345678901234567890123456789012345678901234567890123456789"
         "0123456789012345678901234567890123456\",\"min_share\":0.3}}",
         "when.brand.name is longer than 96 bytes"},
        {"{\"brand\":{\"name\":\"runail\"}}",
         "when.brand needs \"min_share\", \"max_share\" or both"},
        {"{\"brand\":{\"name\":\"runail\",\"min_share\":1.5}}",
         "when.brand.min_share 1.5 is out of range; expected 0 to 1"},
        {"{\"brand\":{\"name\":\"runail\",\"max_share\":-0.1}}",
         "when.brand.max_share -0.1 is out of range; expected 0 to 1"},
        {"{\"brand\":{\"name\":\"runail\",\"max_share\":\"0.5\"}}",
         "when.brand.max_share must be a number from 0 to 1"},
        {"{\"brand\":{\"name\":\"runail\",\"min_share\":0.6,\"max_share\":0.5}}",
         "when.brand.min_share 0.6 is above max_share 0.5, so the condition never holds"},
        {"{\"tier\":{\"name\":\"budget\",\"min_share\":0.5}}",
         "when.tier.name \"budget\" is not a price tier; expected drugstore, mid, premium or "
         "luxury"},
        /* count */
        {"{\"count\":{\"min\":1}}",
         "when.count needs \"event\": an event type such as add_to_cart, or any"},
        {"{\"count\":{\"event\":\"buy\",\"min\":1}}",
         "when.count.event \"buy\" is not an event type; expected any, page_view"},
        {"{\"count\":{\"event\":\"purchase\"}}", "when.count needs \"min\", \"max\" or both"},
        {"{\"count\":{\"event\":\"purchase\",\"min\":1.5}}",
         "when.count.min 1.5 must be a whole number"},
        {"{\"count\":{\"event\":\"purchase\",\"max\":-1}}",
         "when.count.max -1 is out of range; expected 0 to 9007199254740992"},
        {"{\"count\":{\"event\":\"purchase\",\"min\":3,\"max\":2}}",
         "when.count.min 3 is above max 2, so the condition never holds"},
        {"{\"count\":{\"event\":\"purchase\",\"min\":1,\"per\":\"day\"}}",
         "unknown key \"per\" in when.count; allowed: event, min, max"},
        /* last */
        {"{\"last\":{\"event\":\"purchase\"}}",
         "when.last needs \"within_s\", \"older_than_s\" or both"},
        {"{\"last\":{\"within_s\":60}}", "when.last needs \"event\""},
        {"{\"last\":{\"event\":\"purchase\",\"within_s\":0}}",
         "when.last: within_s and older_than_s must be above 0"},
        {"{\"last\":{\"event\":\"purchase\",\"older_than_s\":0}}",
         "when.last: within_s and older_than_s must be above 0"},
        {"{\"last\":{\"event\":\"purchase\",\"within_s\":31536001}}",
         "when.last.within_s 31536001 is out of range; expected 0 to 31536000"},
        {"{\"last\":{\"event\":\"purchase\",\"within_s\":60,\"older_than_s\":60}}",
         "when.last.older_than_s 60 is not below within_s 60, so the condition never holds"},
        {"{\"last\":{\"event\":\"purchase\",\"within\":60}}",
         "unknown key \"within\" in when.last; allowed: event, within_s, older_than_s"},
        /* gender */
        {"{\"gender\":\"kids\"}",
         "when.gender \"kids\" is not a gender; expected female, male or unknown"},
        {"{\"gender\":1}", "when.gender must be female, male, unknown or an object"},
        {"{\"gender\":{\"min_probability\":0.7}}",
         "when.gender needs \"is\": female, male or unknown"},
        {"{\"gender\":{\"is\":\"female\",\"min_probability\":0.4}}",
         "when.gender.min_probability 0.4 is out of range; expected 0.5 to 1"},
        {"{\"gender\":{\"is\":\"unknown\",\"min_probability\":0.6}}",
         "when.gender: min_probability applies only to female or male"},
        {"{\"gender\":{\"is\":\"male\",\"p\":0.6}}",
         "unknown key \"p\" in when.gender; allowed: is, min_probability"},
        /* first_visit, sessions, cart, revenue */
        {"{\"first_visit\":\"yes\"}",
         "when.first_visit must be true (first visit) or false (returning visitor)"},
        {"{\"sessions\":{}}", "when.sessions needs \"min\", \"max\" or both"},
        {"{\"sessions\":{\"min\":2.5}}", "when.sessions.min 2.5 must be a whole number"},
        {"{\"sessions\":{\"min\":5,\"max\":2}}",
         "when.sessions.min 5 is above max 2, so the condition never holds"},
        {"{\"cart\":{\"lines\":1}}",
         "unknown key \"lines\" in when.cart; allowed: min_lines, max_lines"},
        {"{\"cart\":{\"min_lines\":-1}}", "when.cart.min_lines -1 is out of range"},
        {"{\"revenue\":{\"min\":-5}}", "when.revenue.min -5 is out of range; expected 0 or more"},
        {"{\"revenue\":{\"min\":1e999}}", "when.revenue.min must be a finite number"},
        {"{\"revenue\":{\"min\":100,\"max\":10}}",
         "when.revenue.min 100 is above max 10, so the condition never holds"},
        {"{\"revenue\":100}", "when.revenue must be an object with the keys min, max, of"},
        {"{\"revenue\":{\"min\":1,\"of\":\"shop\"}}",
         "when.revenue.of must be \"session\" or \"visitor\""},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_condition_rejected(cases[i].cond, cases[i].reason);
}


/* 64 nodes load; a 65th is rejected with its path. */
Test(segments, condition_count_limit)
{
    char json[8192];
    size_t len = 0;

    /* all with 15 children, each "all" of 3 leaves: 1 + 15 * 4 = 61 nodes, plus one more
     * "all" of two leaves: 64. */
    len += (size_t)snprintf(json + len, sizeof json - len,
                            "{\"segments\":[{\"name\":\"x\",\"when\":{\"all\":[");
    for (int i = 0; i < 15; i++)
        len += (size_t)snprintf(json + len, sizeof json - len,
                                "{\"all\":[{\"first_visit\":false},{\"first_visit\":false},"
                                "{\"first_visit\":false}]},");
    size_t tail = len;
    len += (size_t)snprintf(json + len, sizeof json - len,
                            "{\"all\":[{\"first_visit\":false},{\"first_visit\":false}]}]}}]}");
    struct vt_segments *s = parse_ok(json);
    vt_segments_free(s);

    snprintf(json + tail, sizeof json - tail,
             "{\"all\":[{\"first_visit\":false},{\"first_visit\":false},"
             "{\"first_visit\":false}]}]}}]}");
    assert_rejected(json, FILE_NAME ": segment 0 (\"x\"): when.all[15].all[2]: the segment "
                          "has more than 64 conditions (all, any and not count as well)");
}


Test(segments, depth_eight_accepted)
{
    make_profile();
    /* not x7 around a leaf: 8 levels. An odd count of "not" turns a returning visitor
     * into a non-member. */
    cr_assert_not(holds("{\"not\":{\"not\":{\"not\":{\"not\":{\"not\":{\"not\":{\"not\":"
                        "{\"first_visit\":false}}}}}}}}"));
}


/* ---- affinity conditions ---- */

Test(segments, category_min_share_bound, .init = setup)
{
    /* "perfume" matches Perfume (3) and perfume.edp (1), not perfumery: 4 of 10. */
    cr_assert(holds("{\"category\":{\"name\":\"perfume\",\"min_share\":0.4}}"));
    cr_assert_not(holds("{\"category\":{\"name\":\"perfume\",\"min_share\":0.41}}"));
}


Test(segments, category_max_share_bound, .init = setup)
{
    cr_assert(holds("{\"category\":{\"name\":\"perfume\",\"max_share\":0.4}}"));
    cr_assert_not(holds("{\"category\":{\"name\":\"perfume\",\"max_share\":0.39}}"));
    cr_assert(holds("{\"category\":{\"name\":\"perfume\",\"min_share\":0.3,"
                    "\"max_share\":0.5}}"));
    cr_assert_not(holds("{\"category\":{\"name\":\"perfume\",\"min_share\":0.1,"
                        "\"max_share\":0.3}}"));
}


Test(segments, category_prefix_and_case, .init = setup)
{
    /* A child name matches only itself; case is ignored both ways. */
    cr_assert(holds("{\"category\":{\"name\":\"PERFUME.EDP\",\"min_share\":0.1,"
                    "\"max_share\":0.1}}"));
    /* "perf" is no prefix up to a dot of any entry. */
    cr_assert(holds("{\"category\":{\"name\":\"perf\",\"max_share\":0}}"));
    /* "perfumery" is its own category. */
    cr_assert(holds("{\"category\":{\"name\":\"perfumery\",\"min_share\":0.2,"
                    "\"max_share\":0.2}}"));
}


Test(segments, category_empty_list_share_zero, .init = setup)
{
    profile.n_categories = 0;
    cr_assert(holds("{\"category\":{\"name\":\"perfume\",\"max_share\":0}}"));
    cr_assert(holds("{\"category\":{\"name\":\"perfume\",\"min_share\":0}}"));
    cr_assert_not(holds("{\"category\":{\"name\":\"perfume\",\"min_share\":0.01}}"));
}


Test(segments, brand_share_exact_name_any_case, .init = setup)
{
    /* Runail is 6 of 10; runail-pro is another brand. */
    cr_assert(holds("{\"brand\":{\"name\":\"runail\",\"min_share\":0.6}}"));
    cr_assert_not(holds("{\"brand\":{\"name\":\"runail\",\"min_share\":0.61}}"));
    cr_assert(holds("{\"brand\":{\"name\":\"IRISK\",\"max_share\":0.2}}"));
    cr_assert_not(holds("{\"brand\":{\"name\":\"irisk\",\"max_share\":0.19}}"));
    cr_assert(holds("{\"brand\":{\"name\":\"masura\",\"max_share\":0}}"));
}


Test(segments, star_names_the_strongest_entry, .init = setup)
{
    /* Brands: Runail 6 of 10. Categories: stationery 4 of 10, an entry of its own (the
     * prefix sums of "perfume" do not count). Tiers: luxury 3 of 4. */
    cr_assert(holds("{\"brand\":{\"name\":\"*\",\"min_share\":0.6}}"));
    cr_assert_not(holds("{\"brand\":{\"name\":\"*\",\"min_share\":0.61}}"));
    cr_assert(holds("{\"category\":{\"name\":\"*\",\"min_share\":0.4,\"max_share\":0.4}}"));
    cr_assert(holds("{\"tier\":{\"name\":\"*\",\"min_share\":0.75,\"max_share\":0.75}}"));
    profile.n_brands = 0;
    cr_assert(holds("{\"brand\":{\"name\":\"*\",\"max_share\":0}}"), "no brands: 0");
}


Test(segments, brand_case_variants_add_up, .init = setup)
{
    /* Runail 6 and RUNAIL 2 of 12. */
    add_name(profile.brands, &profile.n_brands, "RUNAIL", 2);
    cr_assert(holds("{\"brand\":{\"name\":\"runail\",\"min_share\":0.66,"
                    "\"max_share\":0.67}}"));
}


Test(segments, shared_names_keep_kinds_apart, .init = setup)
{
    /* "runail" as a category and "stationery" as a brand match nothing; the same name in
     * several conditions and segments gives the same share. */
    struct vt_segments *s = parse_ok(
        "{\"segments\":["
        "{\"name\":\"a\",\"when\":{\"category\":{\"name\":\"runail\",\"max_share\":0}}},"
        "{\"name\":\"b\",\"when\":{\"brand\":{\"name\":\"stationery\",\"max_share\":0}}},"
        "{\"name\":\"c\",\"when\":{\"all\":[{\"brand\":{\"name\":\"Runail\",\"min_share\":0.6}},"
        "{\"brand\":{\"name\":\"RUNAIL\",\"max_share\":0.6}}]}},"
        "{\"name\":\"d\",\"when\":{\"category\":{\"name\":\"STATIONERY\",\"min_share\":0.4,"
        "\"max_share\":0.4}}}]}");
    struct vt_segment_facts f = facts();

    cr_assert_eq(vt_segments_evaluate(s, &f), UINT64_C(0xF));
    vt_segments_free(s);
}


Test(segments, distinct_name_limit)
{
    static char json[65536];
    size_t len = 0;

    /* 16 segments of an "any" with 16 brand names: 256 names load, one more does not. */
    len += (size_t)snprintf(json + len, sizeof json - len, "{\"segments\":[");
    for (int i = 0; i < 16; i++) {
        len += (size_t)snprintf(json + len, sizeof json - len,
                                "%s{\"name\":\"s%d\",\"when\":{\"any\":[", i > 0 ? "," : "", i);
        for (int k = 0; k < 16; k++)
            len += (size_t)snprintf(json + len, sizeof json - len,
                                    "%s{\"brand\":{\"name\":\"b%d\",\"min_share\":0.5}}",
                                    k > 0 ? "," : "", i * 16 + k);
        len += (size_t)snprintf(json + len, sizeof json - len, "]}}");
    }
    size_t tail = len;
    snprintf(json + len, sizeof json - len, "]}");
    vt_segments_free(parse_ok(json));

    snprintf(json + tail, sizeof json - tail,
             ",{\"name\":\"x\",\"when\":{\"category\":{\"name\":\"b0\",\"min_share\":0.5}}}]}");
    assert_rejected(json, FILE_NAME ": segment 16 (\"x\"): when.category: the segments use "
                          "more than 256 distinct category and brand names together");
}


Test(segments, tier_share, .init = setup)
{
    /* luxury 3 of 4, drugstore 1 of 4, premium none. */
    cr_assert(holds("{\"tier\":{\"name\":\"luxury\",\"min_share\":0.75}}"));
    cr_assert_not(holds("{\"tier\":{\"name\":\"luxury\",\"min_share\":0.76}}"));
    cr_assert(holds("{\"tier\":{\"name\":\"drugstore\",\"max_share\":0.25}}"));
    cr_assert_not(holds("{\"tier\":{\"name\":\"drugstore\",\"max_share\":0.24}}"));
    cr_assert_not(holds("{\"tier\":{\"name\":\"premium\",\"min_share\":0.01}}"));
}


/* ---- counters and recency ---- */

Test(segments, count_event_type_bounds, .init = setup)
{
    cr_assert(holds("{\"count\":{\"event\":\"add_to_cart\",\"min\":2}}"));
    cr_assert_not(holds("{\"count\":{\"event\":\"add_to_cart\",\"min\":3}}"));
    cr_assert(holds("{\"count\":{\"event\":\"add_to_cart\",\"max\":2}}"));
    cr_assert_not(holds("{\"count\":{\"event\":\"add_to_cart\",\"max\":1}}"));
    cr_assert(holds("{\"count\":{\"event\":\"purchase\",\"max\":0}}"));
    cr_assert(holds("{\"count\":{\"event\":\"product_view\",\"min\":1,\"max\":5}}"));
}


Test(segments, count_any_uses_all_events, .init = setup)
{
    cr_assert(holds("{\"count\":{\"event\":\"any\",\"min\":7}}"));
    cr_assert_not(holds("{\"count\":{\"event\":\"any\",\"min\":8}}"));
    cr_assert_not(holds("{\"count\":{\"event\":\"any\",\"max\":6}}"));
}


Test(segments, last_within_bound, .init = setup)
{
    /* The last add to cart was 600 s before now. */
    cr_assert(holds("{\"last\":{\"event\":\"add_to_cart\",\"within_s\":600}}"));
    cr_assert_not(holds("{\"last\":{\"event\":\"add_to_cart\",\"within_s\":599}}"));
}


Test(segments, last_older_than_bound, .init = setup)
{
    cr_assert(holds("{\"last\":{\"event\":\"add_to_cart\",\"older_than_s\":599}}"));
    cr_assert_not(holds("{\"last\":{\"event\":\"add_to_cart\",\"older_than_s\":600}}"));
    cr_assert(holds("{\"last\":{\"event\":\"add_to_cart\",\"older_than_s\":300,"
                    "\"within_s\":900}}"));
}


Test(segments, last_never_seen_never_holds, .init = setup)
{
    cr_assert_not(holds("{\"last\":{\"event\":\"purchase\",\"within_s\":31536000}}"));
    cr_assert_not(holds("{\"last\":{\"event\":\"purchase\",\"older_than_s\":1}}"));
    cr_assert(holds("{\"not\":{\"last\":{\"event\":\"purchase\",\"within_s\":1800}}}"));
}


Test(segments, last_any_uses_last_seen, .init = setup)
{
    cr_assert(holds("{\"last\":{\"event\":\"any\",\"within_s\":60}}"));
    cr_assert_not(holds("{\"last\":{\"event\":\"any\",\"within_s\":59}}"));
}


/* ---- gender, visits, cart, revenue ---- */

Test(segments, gender_shorthand, .init = setup)
{
    cr_assert(holds("{\"gender\":\"female\"}"));
    cr_assert_not(holds("{\"gender\":\"male\"}"));
    cr_assert_not(holds("{\"gender\":\"unknown\"}"));

    gender.segment = VT_SEGMENT_UNKNOWN;
    gender.p_female = 0.6;
    gender.probability = 0.6;
    cr_assert(holds("{\"gender\":\"unknown\"}"));
    cr_assert_not(holds("{\"gender\":\"female\"}"));
}


Test(segments, gender_min_probability_bound, .init = setup)
{
    cr_assert(holds("{\"gender\":{\"is\":\"female\",\"min_probability\":0.8}}"));
    cr_assert_not(holds("{\"gender\":{\"is\":\"female\",\"min_probability\":0.81}}"));
    cr_assert(holds("{\"gender\":{\"is\":\"female\"}}"));

    gender.segment = VT_SEGMENT_MALE;
    gender.p_female = 0.1;
    gender.probability = 0.9;
    cr_assert(holds("{\"gender\":{\"is\":\"male\",\"min_probability\":0.9}}"));
    cr_assert_not(holds("{\"gender\":{\"is\":\"male\",\"min_probability\":0.95}}"));
}


Test(segments, gender_missing_estimate_is_unknown, .init = setup)
{
    struct vt_segments *s = parse_ok("{\"segments\":[{\"name\":\"u\",\"when\":{\"gender\":"
                                     "\"unknown\"}},{\"name\":\"f\",\"when\":{\"gender\":"
                                     "\"female\"}}]}");
    struct vt_segment_facts f = {.profile = &profile, .gender = NULL, .now_ms = NOW_MS};

    cr_assert_eq(vt_segments_evaluate(s, &f), 1);
    vt_segments_free(s);
}


Test(segments, first_visit_by_sessions, .init = setup)
{
    /* Three sessions: returning. */
    cr_assert_not(holds("{\"first_visit\":true}"));
    cr_assert(holds("{\"first_visit\":false}"));

    profile.visitor_sessions = 2;
    cr_assert_not(holds("{\"first_visit\":true}"));
    profile.visitor_sessions = 1;
    cr_assert(holds("{\"first_visit\":true}"));
    cr_assert_not(holds("{\"first_visit\":false}"));

    /* No linked visitor counts as a first visit. */
    profile.visitor_id[0] = '\0';
    profile.visitor_sessions = 0;
    cr_assert(holds("{\"first_visit\":true}"));
    cr_assert_not(holds("{\"first_visit\":false}"));
}


Test(segments, sessions_bounds, .init = setup)
{
    cr_assert(holds("{\"sessions\":{\"min\":3}}"));
    cr_assert_not(holds("{\"sessions\":{\"min\":4}}"));
    cr_assert(holds("{\"sessions\":{\"max\":3}}"));
    cr_assert_not(holds("{\"sessions\":{\"max\":2}}"));
    cr_assert(holds("{\"sessions\":{\"min\":3,\"max\":10}}"));
}


Test(segments, cart_line_bounds, .init = setup)
{
    cr_assert(holds("{\"cart\":{\"min_lines\":2}}"));
    cr_assert_not(holds("{\"cart\":{\"min_lines\":3}}"));
    cr_assert(holds("{\"cart\":{\"max_lines\":2}}"));
    cr_assert_not(holds("{\"cart\":{\"max_lines\":1}}"));

    profile.n_cart = 0;
    cr_assert(holds("{\"cart\":{\"max_lines\":0}}"));
    cr_assert_not(holds("{\"cart\":{\"min_lines\":1}}"));
}


Test(segments, revenue_bounds, .init = setup)
{
    cr_assert(holds("{\"revenue\":{\"min\":120}}"));
    cr_assert_not(holds("{\"revenue\":{\"min\":120.01}}"));
    cr_assert(holds("{\"revenue\":{\"max\":120}}"));
    cr_assert_not(holds("{\"revenue\":{\"max\":119.99}}"));
    cr_assert(holds("{\"revenue\":{\"min\":100,\"max\":1000}}"));
}


Test(segments, revenue_of_the_visitor, .init = setup)
{
    /* Revenue is 500 over the visitor's sessions and 120 in this session. */
    profile.visitor_revenue = 500;
    cr_assert(holds("{\"revenue\":{\"min\":500,\"of\":\"visitor\"}}"));
    cr_assert_not(holds("{\"revenue\":{\"min\":500,\"of\":\"session\"}}"));
    cr_assert_not(holds("{\"revenue\":{\"min\":500}}"), "the session by default");
    /* Without a linked visitor the session's own revenue is the visitor's. */
    profile.visitor_linked = false;
    cr_assert(holds("{\"revenue\":{\"min\":120,\"max\":120,\"of\":\"visitor\"}}"));
}


/* ---- all, any, not ---- */

#define HOLDS_A "{\"cart\":{\"min_lines\":1}}"
#define HOLDS_B "{\"gender\":\"female\"}"
#define FAILS_C "{\"revenue\":{\"min\":1000}}"
#define FAILS_D "{\"first_visit\":true}"

Test(segments, all_needs_every_entry, .init = setup)
{
    cr_assert(holds("{\"all\":[" HOLDS_A "]}"));
    cr_assert(holds("{\"all\":[" HOLDS_A "," HOLDS_B "]}"));
    cr_assert_not(holds("{\"all\":[" HOLDS_A "," FAILS_C "]}"));
    cr_assert_not(holds("{\"all\":[" FAILS_C "," HOLDS_A "]}"));
}


Test(segments, any_needs_one_entry, .init = setup)
{
    cr_assert(holds("{\"any\":[" FAILS_C "," HOLDS_A "]}"));
    cr_assert(holds("{\"any\":[" HOLDS_A "," FAILS_C "]}"));
    cr_assert_not(holds("{\"any\":[" FAILS_C "," FAILS_D "]}"));
}


Test(segments, not_inverts, .init = setup)
{
    cr_assert_not(holds("{\"not\":" HOLDS_A "}"));
    cr_assert(holds("{\"not\":" FAILS_C "}"));
    cr_assert(holds("{\"not\":{\"not\":" HOLDS_A "}}"));
}


Test(segments, nested_all_any_not, .init = setup)
{
    /* A and (C or not D) and not (C and B) */
    cr_assert(holds("{\"all\":[" HOLDS_A ",{\"any\":[" FAILS_C ",{\"not\":" FAILS_D "}]},"
                    "{\"not\":{\"all\":[" FAILS_C "," HOLDS_B "]}}]}"));
    /* A and (C or D) */
    cr_assert_not(holds("{\"all\":[" HOLDS_A ",{\"any\":[" FAILS_C "," FAILS_D "]}]}"));
    /* (C and B) or (not C and not D and B) */
    cr_assert(holds("{\"any\":[{\"all\":[" FAILS_C "," HOLDS_B "]},{\"all\":[{\"not\":"
                    FAILS_C "},{\"not\":" FAILS_D "}," HOLDS_B "]}]}"));
}


/* ---- score segments ---- */

static bool scored(const char *score)
{
    char json[4096];

    snprintf(json, sizeof json, "{\"segments\":[{\"name\":\"s\",\"score\":%s}]}", score);
    struct vt_segments *s = parse_ok(json);
    struct vt_segment_facts f = facts();
    uint64_t mask = vt_segments_evaluate(s, &f);

    vt_segments_free(s);
    return mask == 1;
}


Test(segments, score_threshold_edge, .init = setup)
{
    /* A and B hold: 4 + 3 = 7; C does not. */
    cr_assert(scored("{\"min\":7,\"points\":[{\"points\":4,\"when\":" HOLDS_A "},"
                     "{\"points\":3,\"when\":" HOLDS_B "},{\"points\":5,\"when\":" FAILS_C
                     "}]}"));
    cr_assert_not(scored("{\"min\":7.5,\"points\":[{\"points\":4,\"when\":" HOLDS_A "},"
                         "{\"points\":3,\"when\":" HOLDS_B "},{\"points\":5,\"when\":" FAILS_C
                         "}]}"));
}


Test(segments, score_negative_points, .init = setup)
{
    /* 4 - 2 = 2. */
    cr_assert(scored("{\"min\":2,\"points\":[{\"points\":4,\"when\":" HOLDS_A "},"
                     "{\"points\":-2,\"when\":" HOLDS_B "}]}"));
    cr_assert_not(scored("{\"min\":3,\"points\":[{\"points\":4,\"when\":" HOLDS_A "},"
                         "{\"points\":-2,\"when\":" HOLDS_B "}]}"));
    /* Negative points that do not hold subtract nothing; a negative minimum admits 0. */
    cr_assert(scored("{\"min\":0,\"points\":[{\"points\":-5,\"when\":" FAILS_C "}]}"));
    cr_assert(scored("{\"min\":-1,\"points\":[{\"points\":-1,\"when\":" HOLDS_A "}]}"));
    cr_assert_not(scored("{\"min\":-0.5,\"points\":[{\"points\":-1,\"when\":" HOLDS_A "}]}"));
}


Test(segments, score_with_nested_conditions, .init = setup)
{
    cr_assert(scored("{\"min\":10,\"points\":[{\"points\":10,\"when\":{\"all\":[" HOLDS_A ","
                     "{\"not\":" FAILS_C "}]}}]}"));
    cr_assert_not(scored("{\"min\":10,\"points\":[{\"points\":10,\"when\":{\"all\":[" HOLDS_A
                         "," FAILS_C "]}}]}"));
}


/* ---- membership masks ---- */

Test(segments, mask_bit_per_segment, .init = setup)
{
    struct vt_segments *s = parse_ok(
        "{\"segments\":["
        "{\"name\":\"a\",\"when\":" HOLDS_A "},"
        "{\"name\":\"c\",\"when\":" FAILS_C "},"
        "{\"name\":\"b\",\"when\":" HOLDS_B "},"
        "{\"name\":\"d\",\"when\":" FAILS_D "}]}");
    struct vt_segment_facts f = facts();

    cr_assert_eq(vt_segments_evaluate(s, &f), UINT64_C(0x5));
    vt_segments_free(s);
}


Test(segments, no_profile_no_segments, .init = setup)
{
    struct vt_segments *s = parse_ok("{\"segments\":[{\"name\":\"a\",\"when\":{\"not\":"
                                     FAILS_C "}}]}");
    struct vt_segment_facts f = facts();

    cr_assert_eq(vt_segments_evaluate(s, &f), 1);
    profile.exists = false;
    cr_assert_eq(vt_segments_evaluate(s, &f), 0);
    f.profile = NULL;
    cr_assert_eq(vt_segments_evaluate(s, &f), 0);
    cr_assert_eq(vt_segments_evaluate(s, NULL), 0);
    vt_segments_free(s);
}


Test(segments, consent_denied_no_segments, .init = setup)
{
    struct vt_segments *s = parse_ok("{\"segments\":[{\"name\":\"a\",\"when\":{\"not\":"
                                     FAILS_C "}}]}");
    struct vt_segment_facts f = facts();

    profile.consent_denied = true;
    cr_assert_eq(vt_segments_evaluate(s, &f), 0);
    vt_segments_free(s);
}


/* ---- explain ---- */

static cJSON *explain(const struct vt_segments *s, const struct vt_segment_facts *f)
{
    static char out[65536];
    struct vt_jsonw w;

    vt_jsonw_init(&w, out, sizeof out);
    vt_segments_explain(s, f, &w);
    cr_assert_geq(vt_jsonw_finish(&w), 0, "explain overflowed");
    cJSON *root = cJSON_Parse(out);
    cr_assert_not_null(root, "explain is not JSON: %s", out);
    cr_assert(cJSON_IsArray(root));
    return root;
}


static const cJSON *member(const cJSON *obj, const char *key)
{
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(obj, key);

    cr_assert_not_null(value, "missing \"%s\"", key);
    return value;
}


Test(segments, explain_condition_tree, .init = setup)
{
    struct vt_segments *s = parse_ok(
        "{\"segments\":[{\"name\":\"cart_abandoner\",\"when\":{\"all\":["
        "{\"last\":{\"event\":\"add_to_cart\",\"within_s\":1800}},"
        "{\"not\":{\"last\":{\"event\":\"purchase\",\"within_s\":1800}}},"
        "{\"category\":{\"name\":\"perfume\",\"min_share\":0.5}},"
        "{\"count\":{\"event\":\"add_to_cart\",\"min\":1,\"max\":5}},"
        "{\"gender\":{\"is\":\"male\",\"min_probability\":0.7}},"
        "{\"first_visit\":false},{\"sessions\":{\"min\":3}},"
        "{\"cart\":{\"min_lines\":1}},{\"revenue\":{\"max\":1000}}]}}]}");
    struct vt_segment_facts f = facts();
    cJSON *root = explain(s, &f);

    cr_assert_eq(cJSON_GetArraySize(root), 1);
    const cJSON *seg = cJSON_GetArrayItem(root, 0);
    cr_assert_str_eq(member(seg, "segment")->valuestring, "cart_abandoner");
    cr_assert(cJSON_IsFalse(member(seg, "member")));
    cr_assert_null(cJSON_GetObjectItem(seg, "score"));
    cr_assert_eq(cJSON_GetArraySize(member(seg, "conditions")), 1);

    const cJSON *all = cJSON_GetArrayItem(member(seg, "conditions"), 0);
    cr_assert_str_eq(member(all, "condition")->valuestring, "all");
    cr_assert(cJSON_IsFalse(member(all, "held")));
    const cJSON *of = member(all, "of");
    cr_assert_eq(cJSON_GetArraySize(of), 9, "every entry is shown, not only up to the first "
                                            "that fails");

    const cJSON *node = cJSON_GetArrayItem(of, 0);
    cr_assert_str_eq(member(node, "condition")->valuestring, "last add_to_cart within 1800 s");
    cr_assert(cJSON_IsTrue(member(node, "held")));
    cr_assert_float_eq(member(node, "value")->valuedouble, 600, 1e-9);

    node = cJSON_GetArrayItem(of, 1);
    cr_assert_str_eq(member(node, "condition")->valuestring, "not");
    cr_assert(cJSON_IsTrue(member(node, "held")));
    const cJSON *inner = cJSON_GetArrayItem(member(node, "of"), 0);
    cr_assert_str_eq(member(inner, "condition")->valuestring, "last purchase within 1800 s");
    cr_assert(cJSON_IsFalse(member(inner, "held")));
    cr_assert(cJSON_IsNull(member(inner, "value")), "no purchase yet: the value is null");

    node = cJSON_GetArrayItem(of, 2);
    cr_assert_str_eq(member(node, "condition")->valuestring, "category perfume share >= 0.5");
    cr_assert(cJSON_IsFalse(member(node, "held")));
    cr_assert_float_eq(member(node, "value")->valuedouble, 0.4, 1e-9);

    node = cJSON_GetArrayItem(of, 3);
    cr_assert_str_eq(member(node, "condition")->valuestring,
                     "count add_to_cart events >= 1 and <= 5");
    cr_assert_eq(member(node, "value")->valueint, 2);

    node = cJSON_GetArrayItem(of, 4);
    cr_assert_str_eq(member(node, "condition")->valuestring,
                     "gender male with probability >= 0.7");
    cr_assert(cJSON_IsFalse(member(node, "held")));
    cr_assert_float_eq(member(node, "value")->valuedouble, 0.2, 1e-9);

    node = cJSON_GetArrayItem(of, 5);
    cr_assert_str_eq(member(node, "condition")->valuestring, "returning visitor");
    cr_assert_eq(member(node, "value")->valueint, 3);

    node = cJSON_GetArrayItem(of, 6);
    cr_assert_str_eq(member(node, "condition")->valuestring, "visitor sessions >= 3");
    cr_assert_eq(member(node, "value")->valueint, 3);

    node = cJSON_GetArrayItem(of, 7);
    cr_assert_str_eq(member(node, "condition")->valuestring, "cart lines >= 1");
    cr_assert_eq(member(node, "value")->valueint, 2);

    node = cJSON_GetArrayItem(of, 8);
    cr_assert_str_eq(member(node, "condition")->valuestring, "revenue <= 1000");
    cr_assert_float_eq(member(node, "value")->valuedouble, 120, 1e-9);

    cJSON_Delete(root);
    vt_segments_free(s);
}


Test(segments, explain_score_entries, .init = setup)
{
    struct vt_segments *s = parse_ok(
        "{\"segments\":[{\"name\":\"engaged\",\"score\":{\"min\":10,\"points\":["
        "{\"points\":4,\"when\":{\"count\":{\"event\":\"product_view\",\"min\":3}}},"
        "{\"points\":-2,\"when\":{\"tier\":{\"name\":\"luxury\",\"min_share\":0.5}}},"
        "{\"points\":8,\"when\":{\"any\":[{\"brand\":{\"name\":\"runail\",\"max_share\":0.1}},"
        "{\"last\":{\"event\":\"search\",\"older_than_s\":600}}]}}]}}]}");
    struct vt_segment_facts f = facts();
    cJSON *root = explain(s, &f);

    const cJSON *seg = cJSON_GetArrayItem(root, 0);
    cr_assert(cJSON_IsTrue(member(seg, "member")), "4 - 2 + 8 = 10 reaches the minimum");
    cr_assert_float_eq(member(seg, "score")->valuedouble, 10, 1e-9);
    cr_assert_float_eq(member(seg, "min")->valuedouble, 10, 1e-9);

    const cJSON *entries = member(seg, "conditions");
    cr_assert_eq(cJSON_GetArraySize(entries), 3);
    const cJSON *entry = cJSON_GetArrayItem(entries, 1);
    cr_assert_float_eq(member(entry, "points")->valuedouble, -2, 1e-9);
    cr_assert(cJSON_IsTrue(member(entry, "held")));
    const cJSON *node = member(entry, "condition");
    cr_assert_str_eq(member(node, "condition")->valuestring, "tier luxury share >= 0.5");
    cr_assert_float_eq(member(node, "value")->valuedouble, 0.75, 1e-9);

    entry = cJSON_GetArrayItem(entries, 2);
    node = member(entry, "condition");
    cr_assert_str_eq(member(node, "condition")->valuestring, "any");
    cr_assert_eq(cJSON_GetArraySize(member(node, "of")), 2);
    const cJSON *search = cJSON_GetArrayItem(member(node, "of"), 1);
    cr_assert_str_eq(member(search, "condition")->valuestring,
                     "last search older than 600 s");
    cr_assert_float_eq(member(search, "value")->valuedouble, 1800, 1e-9);

    cJSON_Delete(root);
    vt_segments_free(s);
}


Test(segments, explain_no_profile_and_no_consent, .init = setup)
{
    struct vt_segments *s = parse_ok(
        "{\"segments\":[{\"name\":\"a\",\"when\":" HOLDS_A "},{\"name\":\"b\",\"score\":"
        "{\"min\":0,\"points\":[{\"points\":1,\"when\":" HOLDS_B "}]}}]}");
    struct vt_segment_facts f = facts();

    profile.exists = false;
    cJSON *root = explain(s, &f);
    cr_assert_eq(cJSON_GetArraySize(root), 2);
    for (int i = 0; i < 2; i++) {
        const cJSON *seg = cJSON_GetArrayItem(root, i);

        cr_assert_str_eq(member(seg, "segment")->valuestring, i == 0 ? "a" : "b");
        cr_assert(cJSON_IsFalse(member(seg, "member")));
        cr_assert_str_eq(member(seg, "reason")->valuestring, "no profile");
    }
    cJSON_Delete(root);

    profile.exists = true;
    profile.consent_denied = true;
    root = explain(s, &f);
    const cJSON *seg = cJSON_GetArrayItem(root, 1);
    cr_assert(cJSON_IsFalse(member(seg, "member")));
    cr_assert_str_eq(member(seg, "reason")->valuestring, "no consent");
    cJSON_Delete(root);
    vt_segments_free(s);
}


Test(segments, explain_agrees_with_example_file, .init = setup)
{
    char err[512] = "";
    struct vt_segments *s =
        vt_segments_load(VITRINE_SOURCE_DIR "/deploy/segments.example.json", err, sizeof err);
    struct vt_segment_facts f = facts();

    cr_assert_not_null(s, "%s", err);
    uint64_t mask = vt_segments_evaluate(s, &f);
    cJSON *root = explain(s, &f);
    cr_assert_eq((size_t)cJSON_GetArraySize(root), vt_segments_count(s));
    for (size_t i = 0; i < vt_segments_count(s); i++) {
        const cJSON *seg = cJSON_GetArrayItem(root, (int)i);

        cr_assert_str_eq(member(seg, "segment")->valuestring, vt_segments_name(s, i));
        cr_assert_eq(cJSON_IsTrue(member(seg, "member")), (mask >> i & 1) != 0,
                     "segment %zu", i);
    }
    cJSON_Delete(root);
    vt_segments_free(s);
}


/* ---- served counters ---- */

Test(segments, served_counters_take_and_reset)
{
    struct vt_segments *s = parse_ok("{\"segments\":[{\"name\":\"a\",\"when\":" HOLDS_A "},"
                                     "{\"name\":\"b\",\"when\":" HOLDS_B "},"
                                     "{\"name\":\"c\",\"when\":" FAILS_C "}]}");

    vt_segments_count_served(s, 0x5);
    vt_segments_count_served(s, 0x1);
    vt_segments_count_served(s, 0);
    /* Bits beyond the segments are ignored. */
    vt_segments_count_served(s, UINT64_C(1) << 63);

    cr_assert_eq(vt_segments_take_served(s, 0), 2);
    cr_assert_eq(vt_segments_take_served(s, 1), 0);
    cr_assert_eq(vt_segments_take_served(s, 2), 1);
    cr_assert_eq(vt_segments_take_served(s, 0), 0, "taking resets the counter");
    cr_assert_eq(vt_segments_take_served(s, 3), 0);
    cr_assert_eq(vt_segments_take_served(s, 63), 0);
    vt_segments_free(s);
}


#define SERVED_THREADS 4
#define SERVED_PER_THREAD 20000

static void *count_served_thread(void *arg)
{
    for (int i = 0; i < SERVED_PER_THREAD; i++)
        vt_segments_count_served(arg, 0x3);
    return NULL;
}


Test(segments, served_counters_from_threads)
{
    struct vt_segments *s = parse_ok("{\"segments\":[{\"name\":\"a\",\"when\":" HOLDS_A "},"
                                     "{\"name\":\"b\",\"when\":" HOLDS_B "}]}");
    pthread_t threads[SERVED_THREADS];
    uint64_t taken = 0;

    for (int i = 0; i < SERVED_THREADS; i++)
        cr_assert_eq(pthread_create(&threads[i], NULL, count_served_thread, s), 0);
    /* Taking while the threads count loses nothing. */
    for (int i = 0; i < 1000; i++)
        taken += vt_segments_take_served(s, 0);
    for (int i = 0; i < SERVED_THREADS; i++)
        pthread_join(threads[i], NULL);
    taken += vt_segments_take_served(s, 0);

    cr_assert_eq(taken, (uint64_t)SERVED_THREADS * SERVED_PER_THREAD);
    cr_assert_eq(vt_segments_take_served(s, 1), (uint64_t)SERVED_THREADS * SERVED_PER_THREAD);
    vt_segments_free(s);
}
