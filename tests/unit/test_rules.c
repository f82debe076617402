/*
 * Unit tests of the business rules (service/recommend/rules.c): loading and validation
 * with their messages, and the effect of each action and scope on vt_recommend.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_recommend_fixture.h"
#include "vitrine/log.h"
#include "vitrine/segments.h"

/* Parse text that must be rejected and return the message. */
static const char *rejected(const char *json)
{
    static char err[512];

    err[0] = '\0';
    struct vt_rules *rules = vt_rules_parse(json, strlen(json), "shop-rules.json", err,
                                            sizeof err);
    cr_assert_null(rules, "accepted: %s", json);
    return err;
}


static void assert_message(const char *json, const char *expected)
{
    const char *err = rejected(json);

    cr_assert(strstr(err, expected) != NULL, "message \"%s\" lacks \"%s\" for %s", err,
              expected, json);
}


/* ---- loading ---- */

Test(rules, example_file_loads)
{
    char err[512] = "";
    struct vt_rules *rules =
        vt_rules_load(VITRINE_SOURCE_DIR "/deploy/rules.example.json", err, sizeof err);

    cr_assert_not_null(rules, "%s", err);
    cr_assert_geq(vt_rules_count(rules), 4);
    vt_rules_free(rules);
}


Test(rules, empty_path_gives_no_rules)
{
    char err[64] = "";
    struct vt_rules *rules = vt_rules_load("", err, sizeof err);

    cr_assert_not_null(rules);
    cr_assert_eq(vt_rules_count(rules), 0);
    cr_assert_eq(vt_rules_count(NULL), 0);
    vt_rules_free(rules);
    vt_rules_free(NULL);
}


Test(rules, missing_file_named)
{
    char err[512] = "";

    cr_assert_null(vt_rules_load("/nonexistent/rules.json", err, sizeof err));
    cr_assert(strstr(err, "/nonexistent/rules.json: cannot open the rules file") == err, "%s",
              err);
}


Test(rules, oversized_file_rejected)
{
    char path[] = "/tmp/vitrine-rules-test-XXXXXX";
    char err[512] = "";
    int fd = mkstemp(path);

    cr_assert_geq(fd, 0);
    FILE *out = fdopen(fd, "w");
    cr_assert_not_null(out);
    fputs("{\"rules\":[]}", out);
    for (size_t i = 0; i < VT_RULES_FILE_MAX; i++)
        fputc(' ', out);
    fclose(out);

    cr_assert_null(vt_rules_load(path, err, sizeof err));
    unlink(path);
    cr_assert(strstr(err, "larger than") != NULL, "%s", err);
}


Test(rules, invalid_json_position)
{
    assert_message("{\"rules\": [\n  {\"name\": \"a\",\n   \"action\": boost}\n]}",
                   "shop-rules.json: invalid JSON at line 3, column 14");
}


Test(rules, empty_list_accepted)
{
    char err[64] = "";
    const char *json = "{\"rules\": []}";
    struct vt_rules *rules = vt_rules_parse(json, strlen(json), "x.json", err, sizeof err);

    cr_assert_not_null(rules, "%s", err);
    cr_assert_eq(vt_rules_count(rules), 0);
    vt_rules_free(rules);
}


/* Each invalid rule and the start of its message. */
Test(rules, validation_messages)
{
    static const struct {
        const char *json;
        const char *message;
    } cases[] = {
        {"[]", "shop-rules.json: expected an object with an array \"rules\""},
        {"{\"rules\":{}}", "shop-rules.json: expected an object with an array \"rules\""},
        {"{\"rules\":[],\"version\":2}",
         "shop-rules.json: unknown top-level key \"version\"; only \"rules\" is allowed"},
        {"{\"rules\":[7]}", "shop-rules.json: rules[0]: a rule must be an object"},
        {"{\"rules\":[{\"action\":\"filter\"}]}", "shop-rules.json: rules[0]: missing \"name\""},
        {"{\"rules\":[{\"name\":3}]}", "rules[0]: \"name\" must be a string"},
        {"{\"rules\":[{\"name\":\"  \"}]}", "rules[0]: \"name\" is empty"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"filter\",\"match\":{\"gender\":\"male\"}},"
         "{\"name\":\"x\",\"action\":\"filter\",\"match\":{\"gender\":\"male\"}}]}",
         "rules[1] \"x\": the name is already used by rules[0]"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"filter\",\"colour\":1,"
         "\"match\":{\"gender\":\"male\"}}]}",
         "rules[0] \"x\": unknown key \"colour\" in the rule"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"filter\",\"action\":\"boost\"}]}",
         "rules[0] \"x\": key \"action\" appears twice in the rule"},
        {"{\"rules\":[{\"name\":\"x\"}]}", "rules[0] \"x\": missing \"action\""},
        {"{\"rules\":[{\"name\":\"x\",\"action\":1}]}",
         "rules[0] \"x\": \"action\" must be a string: boost, pin or filter"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"hide\"}]}",
         "rules[0] \"x\": unknown action \"hide\"; expected boost, pin or filter"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"boost\",\"match\":{\"gender\":\"male\"}}]}",
         "rules[0] \"x\": missing \"factor\"; a boost rule needs one from 0.01 to 100"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"boost\",\"factor\":\"2\","
         "\"match\":{\"gender\":\"male\"}}]}",
         "rules[0] \"x\": \"factor\" must be a number from 0.01 to 100"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"boost\",\"factor\":0.001,"
         "\"match\":{\"gender\":\"male\"}}]}",
         "rules[0] \"x\": \"factor\" 0.001 is out of range; expected 0.01 to 100"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"boost\",\"factor\":101,"
         "\"match\":{\"gender\":\"male\"}}]}",
         "rules[0] \"x\": \"factor\" 101 is out of range; expected 0.01 to 100"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"filter\",\"factor\":2,"
         "\"match\":{\"gender\":\"male\"}}]}",
         "rules[0] \"x\": \"factor\" applies only to boost rules"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"filter\",\"position\":2,"
         "\"match\":{\"gender\":\"male\"}}]}",
         "rules[0] \"x\": \"position\" applies only to pin rules"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"pin\",\"position\":1,\"product\":\"a\","
         "\"match\":{\"gender\":\"male\"}}]}",
         "rules[0] \"x\": \"match\" does not apply to pin rules"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"pin\",\"position\":1}]}",
         "rules[0] \"x\": missing \"product\""},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"pin\",\"product\":\"\",\"position\":1}]}",
         "rules[0] \"x\": \"product\" must be a non-empty string"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"pin\",\"product\":\"a\"}]}",
         "rules[0] \"x\": missing \"position\"; a pin rule needs one from 1 to 100"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"pin\",\"product\":\"a\",\"position\":0}]}",
         "rules[0] \"x\": \"position\" must be a whole number from 1 to 100"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"pin\",\"product\":\"a\",\"position\":101}]}",
         "rules[0] \"x\": \"position\" must be a whole number from 1 to 100"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"pin\",\"product\":\"a\",\"position\":1.5}]}",
         "rules[0] \"x\": \"position\" must be a whole number from 1 to 100"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"filter\"}]}",
         "rules[0] \"x\": missing \"match\"; a boost or filter rule needs at least one "
         "condition"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"filter\",\"match\":{}}]}",
         "rules[0] \"x\": \"match\" is empty"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"filter\",\"match\":[]}]}",
         "rules[0] \"x\": \"match\" must be an object"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"filter\",\"match\":{\"brand\":[\"a\"]}}]}",
         "rules[0] \"x\": unknown key \"brand\" in \"match\""},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"filter\",\"match\":{\"brands\":\"a\"}}]}",
         "rules[0] \"x\": \"match.brands\" must be an array of strings"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"filter\",\"match\":{\"brands\":[]}}]}",
         "rules[0] \"x\": \"match.brands\" is empty"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"filter\",\"match\":{\"categories\":[1]}}]}",
         "rules[0] \"x\": \"match.categories\" must contain strings only"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"filter\",\"match\":{\"products\":[\"\"]}}]}",
         "rules[0] \"x\": \"match.products\" contains an empty string"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"filter\",\"match\":{\"gender\":\"kids\"}}]}",
         "rules[0] \"x\": unknown \"match.gender\" \"kids\"; expected female, male or unisex"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"filter\",\"match\":{\"price_min\":-1}}]}",
         "rules[0] \"x\": \"match.price_min\" must be a number of at least 0"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"filter\","
         "\"match\":{\"price_min\":5,\"price_max\":2}}]}",
         "rules[0] \"x\": \"match.price_min\" 5 is above \"match.price_max\" 2"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"filter\",\"match\":{\"gender\":\"male\"},"
         "\"placements\":[]}]}",
         "rules[0] \"x\": \"placements\" must be a non-empty array of placement names"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"filter\",\"match\":{\"gender\":\"male\"},"
         "\"placements\":[\"checkout\"]}]}",
         "rules[0] \"x\": unknown placement \"checkout\"; expected home, product, cart, "
         "category, search or rerank"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"filter\",\"match\":{\"gender\":\"male\"},"
         "\"segment\":\"Women!\"}]}",
         "rules[0] \"x\": \"segment\" \"Women!\" is neither female, male, unknown nor any, "
         "nor a segment name (1 to 48 of a-z, 0-9, _ and -, starting with a letter or a "
         "digit)"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"filter\",\"match\":{\"gender\":\"male\"},"
         "\"description\":5}]}",
         "rules[0] \"x\": \"description\" must be a string"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_message(cases[i].json, cases[i].message);
}


Test(rules, list_and_file_limits)
{
    char json[16384];
    size_t len = 0;

    len += (size_t)snprintf(json + len, sizeof json - len,
                            "{\"rules\":[{\"name\":\"x\",\"action\":\"filter\","
                            "\"match\":{\"brands\":[");
    for (int i = 0; i <= VT_RULE_VALUES_MAX; i++)
        len += (size_t)snprintf(json + len, sizeof json - len, "%s\"b%d\"", i ? "," : "", i);
    snprintf(json + len, sizeof json - len, "]}}]}");
    assert_message(json, "rules[0] \"x\": \"match.brands\" lists 33 values; the maximum is 32");

    len = (size_t)snprintf(json, sizeof json, "{\"rules\":[");
    for (int i = 0; i <= VT_RULES_MAX; i++)
        len += (size_t)snprintf(json + len, sizeof json - len,
                                "%s{\"name\":\"r%d\",\"action\":\"filter\","
                                "\"match\":{\"gender\":\"male\"}}",
                                i ? "," : "", i);
    snprintf(json + len, sizeof json - len, "]}");
    assert_message(json, "shop-rules.json: 65 rules; the maximum is 64");

    len = (size_t)snprintf(json, sizeof json, "{\"rules\":[");
    for (int r = 0; r < 9; r++) {
        len += (size_t)snprintf(json + len, sizeof json - len,
                                "%s{\"name\":\"r%d\",\"action\":\"filter\",\"match\":{\"products\":[",
                                r ? "," : "", r);
        for (int i = 0; i < 30; i++)
            len += (size_t)snprintf(json + len, sizeof json - len, "%s\"p%d\"", i ? "," : "", i);
        len += (size_t)snprintf(json + len, sizeof json - len, "]}}");
    }
    snprintf(json + len, sizeof json - len, "]}");
    assert_message(json, "rules[8] \"r8\": the rules list more than 256 brand names and product "
                         "ids together");
}


/* ---- actions ---- */

Test(rules, boost_raises_matching_products)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    fixture_rules(&f, "{\"rules\":[{\"name\":\"kappa-up\",\"action\":\"boost\",\"factor\":5,"
                      "\"match\":{\"brands\":[\" kappa \"]}}]}");

    run(&f, false);
    cr_assert_str_eq(id_at(&f, 0), "s2");
    cr_assert(f.result.items[0].reasons & VT_REASON_BOOSTED);
    cr_assert_str_eq(f.result.items[0].rule, "kappa-up");
    cr_assert_null(f.result.items[1].rule);
    cr_assert_not(f.result.items[1].reasons & VT_REASON_BOOSTED);
    fixture_free(&f);
}


Test(rules, boosts_multiply)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    f.req.limit = 20;
    run(&f, false);
    int at = position_of(&f, "h5");
    cr_assert_geq(at, 0);
    double plain = f.result.items[at].score;

    fixture_rules(&f, "{\"rules\":["
                      "{\"name\":\"first\",\"action\":\"boost\",\"factor\":2,"
                      "\"match\":{\"categories\":[\"hair\"]}},"
                      "{\"name\":\"second\",\"action\":\"boost\",\"factor\":0.5,"
                      "\"match\":{\"gender\":\"female\"}},"
                      "{\"name\":\"third\",\"action\":\"boost\",\"factor\":3,"
                      "\"match\":{\"price_min\":100,\"price_max\":140}}]}");
    run(&f, false);
    at = position_of(&f, "h5");
    cr_assert_geq(at, 0);
    cr_assert_float_eq(f.result.items[at].score, plain * 3, 1e-12);
    cr_assert_str_eq(f.result.items[at].rule, "first", "the first matching rule is named");
    fixture_free(&f);
}


Test(rules, pin_places_product)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    fixture_rules(&f, "{\"rules\":[{\"name\":\"launch\",\"action\":\"pin\",\"product\":\"h5\","
                      "\"position\":2}]}");
    f.req.limit = 5;

    run(&f, false);
    const char *expected[] = {"p1", "h5", "p2", "n1", "n2"};
    cr_assert_eq(f.result.n, 5);
    for (size_t i = 0; i < 5; i++)
        cr_assert_str_eq(id_at(&f, i), expected[i], "position %zu", i);
    cr_assert(f.result.items[1].reasons & VT_REASON_PINNED);
    cr_assert_str_eq(f.result.items[1].pin_rule, "launch");
    cr_assert_eq(f.result.strategy, VT_STRATEGY_POPULAR, "a pin does not change the strategy");

    f.req.limit = 1;
    run(&f, false);
    cr_assert_str_eq(id_at(&f, 0), "p1", "a position beyond the limit is not used");
    fixture_free(&f);
}


Test(rules, pin_only_when_servable)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    fixture_rules(&f, "{\"rules\":["
                      "{\"name\":\"sold-out\",\"action\":\"pin\",\"product\":\"s1\",\"position\":1},"
                      "{\"name\":\"in-cart\",\"action\":\"pin\",\"product\":\"h2\",\"position\":1},"
                      "{\"name\":\"excluded\",\"action\":\"pin\",\"product\":\"h3\",\"position\":1},"
                      "{\"name\":\"outside\",\"action\":\"pin\",\"product\":\"n4\",\"position\":1},"
                      "{\"name\":\"filtered\",\"action\":\"pin\",\"product\":\"n2\",\"position\":1},"
                      "{\"name\":\"unknown\",\"action\":\"pin\",\"product\":\"zz\",\"position\":1},"
                      "{\"name\":\"no-beta\",\"action\":\"filter\","
                      "\"match\":{\"brands\":[\"Beta\"]}}]}");
    add_to_cart(&f, "h2", 1);
    f.req.exclude[f.req.n_exclude++] = index_of(&f, "h3");
    f.req.price_min = 1;
    f.req.price_max = 19;

    run(&f, true);
    for (size_t i = 0; i < f.result.n; i++)
        cr_assert_not(f.result.items[i].reasons & VT_REASON_PINNED, "%s pinned", id_at(&f, i));
    cr_assert_str_eq(id_at(&f, 0), "n1");
    fixture_free(&f);
}


Test(rules, pins_share_a_position)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    fixture_rules(&f, "{\"rules\":["
                      "{\"name\":\"late\",\"action\":\"pin\",\"product\":\"h4\",\"position\":9},"
                      "{\"name\":\"one\",\"action\":\"pin\",\"product\":\"h5\",\"position\":1},"
                      "{\"name\":\"two\",\"action\":\"pin\",\"product\":\"s2\",\"position\":1}]}");
    f.req.brands[f.req.n_brands++] = brand_of(&f, "Alpha");
    f.req.brands[f.req.n_brands++] = brand_of(&f, "Delta");
    f.req.brands[f.req.n_brands++] = brand_of(&f, "Kappa");

    run(&f, false);
    const char *expected[] = {"h5", "s2", "n1", "h1", "h4"};
    cr_assert_eq(f.result.n, 5);
    for (size_t i = 0; i < 5; i++)
        cr_assert_str_eq(id_at(&f, i), expected[i], "position %zu", i);
    cr_assert_str_eq(f.result.items[1].pin_rule, "two", "the later pin takes the next position");
    cr_assert_str_eq(f.result.items[4].pin_rule, "late", "a pin past a short list goes last");
    fixture_free(&f);
}


Test(rules, filter_removes_matching_products)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    fixture_rules(&f, "{\"rules\":[{\"name\":\"cheap\",\"action\":\"filter\","
                      "\"match\":{\"price_max\":9.99},\"placements\":[\"home\"]}]}");
    f.req.limit = 20;

    run(&f, false);
    cr_assert_lt(position_of(&f, "n1"), 0);
    cr_assert_lt(position_of(&f, "n2"), 0);
    cr_assert_eq(f.result.n, REC_MAIN_AVAILABLE - 2);

    f.req.placement = VT_PLACEMENT_SEARCH;
    run(&f, false);
    cr_assert_eq(f.result.n, REC_MAIN_AVAILABLE, "the rule is scoped to home");
    fixture_free(&f);
}


Test(rules, filter_brand_within_category)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    fixture_rules(&f, "{\"rules\":[{\"name\":\"no-alpha-hair\",\"action\":\"filter\","
                      "\"match\":{\"brands\":[\"Alpha\",\"Nobody\"],\"categories\":[\"HAIR\"]}}]}");
    f.req.limit = 20;

    run(&f, false);
    cr_assert_lt(position_of(&f, "h1"), 0);
    cr_assert_lt(position_of(&f, "h4"), 0);
    cr_assert_geq(position_of(&f, "n1"), 0, "Alpha outside hair stays");
    cr_assert_geq(position_of(&f, "h2"), 0, "other brands in hair stay");
    fixture_free(&f);
}


Test(rules, category_matches_subcategories)
{
    struct rec_fixture f;
    fixture_load(&f, "{\"id\":\"a\",\"categories\":[\"makeup\"],\"popularity\":3}\n"
                     "{\"id\":\"b\",\"categories\":[\"Makeup.Eyes\"],\"popularity\":2}\n"
                     "{\"id\":\"c\",\"categories\":[\"makeupbags\"],\"popularity\":1}\n"
                     "{\"id\":\"d\",\"categories\":[\"skin\",\"makeup.lips.gloss\"]}\n");
    fixture_rules(&f, "{\"rules\":[{\"name\":\"no-makeup\",\"action\":\"filter\","
                      "\"match\":{\"categories\":[\"makeup\"]}}]}");

    run(&f, false);
    cr_assert_eq(f.result.n, 1);
    cr_assert_str_eq(id_at(&f, 0), "c", "a name that only starts with the category differs");

    fixture_rules(&f, "{\"rules\":[{\"name\":\"no-eyes\",\"action\":\"filter\","
                      "\"match\":{\"categories\":[\"makeup.eyes\"]}}]}");
    run(&f, false);
    cr_assert_eq(f.result.n, 3);
    cr_assert_lt(position_of(&f, "b"), 0);
    fixture_free(&f);
}


Test(rules, gender_and_product_conditions)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    fixture_rules(&f, "{\"rules\":["
                      "{\"name\":\"no-men\",\"action\":\"filter\",\"match\":{\"gender\":\"male\"}},"
                      "{\"name\":\"no-two\",\"action\":\"filter\","
                      "\"match\":{\"products\":[\"n2\",\"p2\",\"unknown\"]}}]}");
    f.req.limit = 20;

    run(&f, false);
    const char *gone[] = {"p1", "h3", "n3", "n2", "p2"};
    for (size_t i = 0; i < 5; i++)
        cr_assert_lt(position_of(&f, gone[i]), 0, "%s", gone[i]);
    cr_assert_eq(f.result.n, REC_MAIN_AVAILABLE - 5);
    fixture_free(&f);
}


Test(rules, filter_may_empty_the_list)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    fixture_rules(&f, "{\"rules\":[{\"name\":\"all\",\"action\":\"filter\","
                      "\"match\":{\"price_min\":0}}]}");

    run(&f, true);
    cr_assert_eq(f.result.n, 0, "every product has a price, so the filter matches all");
    cr_assert_eq(f.result.strategy, VT_STRATEGY_EMPTY);
    fixture_free(&f);
}


/* ---- scope ---- */

Test(rules, placement_scope)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    fixture_rules(&f, "{\"rules\":[{\"name\":\"pdp\",\"action\":\"pin\",\"product\":\"s2\","
                      "\"position\":1,\"placements\":[\"product\",\"cart\"]}]}");

    run(&f, false);
    cr_assert_str_eq(id_at(&f, 0), "p1", "no pin on home");

    f.req.placement = VT_PLACEMENT_CART;
    run(&f, false);
    cr_assert_str_eq(id_at(&f, 0), "s2");
    fixture_free(&f);
}


Test(rules, segment_scope)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    fixture_rules(&f, "{\"rules\":["
                      "{\"name\":\"women\",\"action\":\"pin\",\"product\":\"h5\",\"position\":1,"
                      "\"segment\":\"female\"},"
                      "{\"name\":\"unsure\",\"action\":\"pin\",\"product\":\"n4\",\"position\":1,"
                      "\"segment\":\"unknown\"},"
                      "{\"name\":\"anyone\",\"action\":\"boost\",\"factor\":10,"
                      "\"match\":{\"brands\":[\"Kappa\"]},\"segment\":\"any\"}]}");

    set_gender(&f, 4, 10);
    run(&f, true);
    cr_assert_str_eq(id_at(&f, 0), "h5");
    cr_assert_str_eq(f.result.items[0].pin_rule, "women");
    cr_assert_str_eq(id_at(&f, 1), "s2", "a boost for any segment applies");

    set_gender(&f, 0, 0);
    run(&f, true);
    cr_assert_str_eq(id_at(&f, 0), "n4");
    cr_assert_str_eq(f.result.items[0].pin_rule, "unsure");

    set_gender(&f, -4, 10);
    run(&f, true);
    cr_assert_str_eq(id_at(&f, 0), "s2", "no pin for the male segment");
    fixture_free(&f);
}


Test(rules, analyst_segment_scope)
{
    struct rec_fixture f;
    char err[256];
    const char *defs = "{\"segments\":[{\"name\":\"loyal\",\"when\":{\"count\":"
                       "{\"event\":\"any\",\"min\":1}}},{\"name\":\"vip\",\"when\":"
                       "{\"revenue\":{\"min\":1000}}}]}";
    struct vt_segments *segments = vt_segments_parse(defs, strlen(defs), "segments.json", err,
                                                     sizeof err);
    cr_assert_not_null(segments, "%s", err);
    fixture_load(&f, rec_main_catalog);
    fixture_rules(&f, "{\"rules\":[{\"name\":\"for-vip\",\"action\":\"pin\","
                      "\"product\":\"h5\",\"position\":1,\"segment\":\"vip\"}]}");

    f.profile.segments = segments;
    f.profile.segment_mask = 1; /* loyal only */
    run(&f, true);
    cr_assert_str_neq(id_at(&f, 0), "h5", "no pin outside the segment");

    f.profile.segment_mask = 2; /* vip */
    run(&f, true);
    cr_assert_str_eq(id_at(&f, 0), "h5");
    cr_assert_str_eq(f.result.items[0].pin_rule, "for-vip");

    const char *rule = NULL;
    cr_assert_null(vt_rules_unknown_segment(f.rules, segments, &rule));
    const char *fewer = "{\"segments\":[{\"name\":\"loyal\",\"when\":{\"count\":"
                        "{\"event\":\"any\",\"min\":1}}}]}";
    struct vt_segments *without_vip = vt_segments_parse(fewer, strlen(fewer), "segments.json",
                                                        err, sizeof err);
    cr_assert_not_null(without_vip, "%s", err);
    cr_assert_str_eq(vt_rules_unknown_segment(f.rules, without_vip, &rule), "vip");
    cr_assert_str_eq(rule, "for-vip");

    f.profile.segments = NULL;
    fixture_free(&f);
    vt_segments_free(without_vip);
    vt_segments_free(segments);
}


Test(rules, control_group_keeps_rules)
{
    struct rec_fixture f;
    fixture_load(&f, rec_main_catalog);
    fixture_rules(&f, "{\"rules\":["
                      "{\"name\":\"pin\",\"action\":\"pin\",\"product\":\"h4\",\"position\":1},"
                      "{\"name\":\"no-eta\",\"action\":\"filter\",\"match\":{\"brands\":[\"Eta\"]}}]}");
    f.req.control = true;

    run(&f, true);
    cr_assert(f.result.control);
    cr_assert_str_eq(id_at(&f, 0), "h4");
    cr_assert_lt(position_of(&f, "p1"), 0);
    cr_assert_eq(f.result.strategy, VT_STRATEGY_POPULAR);
    fixture_free(&f);
}


Test(rules, names_match_any_catalog_version)
{
    struct rec_fixture f, g;
    fixture_load(&f, rec_main_catalog);
    fixture_load(&g, "{\"id\":\"k9\",\"brand\":\"Kappa\",\"popularity\":1}\n"
                     "{\"id\":\"a9\",\"brand\":\"Alpha\",\"popularity\":5}\n");
    fixture_rules(&f, "{\"rules\":[{\"name\":\"no-kappa\",\"action\":\"filter\","
                      "\"match\":{\"brands\":[\"Kappa\"]}}]}");
    f.req.limit = 20;

    run(&f, false);
    cr_assert_lt(position_of(&f, "s2"), 0);

    /* The same rules object against a catalog where Kappa has another index. */
    vt_recommend(g.world, &g.cfg, f.rules, NULL, &g.req, &g.result);
    cr_assert_eq(g.result.n, 1);
    cr_assert_str_eq(id_at(&g, 0), "a9");
    fixture_free(&f);
    fixture_free(&g);
}


/* ---- file checks ---- */

static void assert_accepted(const char *json, size_t len, size_t count)
{
    char err[512] = "";
    struct vt_rules *rules = vt_rules_parse(json, len, "shop-rules.json", err, sizeof err);

    cr_assert_not_null(rules, "rejected %s: %s", json, err);
    cr_assert_eq(vt_rules_count(rules), count);
    vt_rules_free(rules);
}


/* Reject text of a given length (which may contain NUL bytes) and return the message. */
static const char *rejected_bytes(const char *json, size_t len)
{
    static char err[512];

    err[0] = '\0';
    struct vt_rules *rules = vt_rules_parse(json, len, "shop-rules.json", err, sizeof err);
    cr_assert_null(rules, "accepted: %s", json);
    return err;
}


Test(rules, trailing_text_rejected)
{
    assert_message("{\"rules\":[]} garbage",
                   "shop-rules.json: unexpected text after the JSON object at line 1, column 14");
    assert_message("{\"rules\":[]}\n{\"rules\":[]}",
                   "unexpected text after the JSON object at line 2, column 1");
    assert_message("{\"rules\":[]}]", "unexpected text after the JSON object");

    /* White space after the object is fine. */
    const char *spaced = "{\"rules\":[]}\n\t \r\n";
    assert_accepted(spaced, strlen(spaced), 0);
}


Test(rules, nul_rejected)
{
    assert_message("{\"rules\":[{\"name\":\"a\\u0000b\",\"action\":\"filter\","
                   "\"match\":{\"gender\":\"male\"}}]}",
                   "shop-rules.json: the escape \\u0000 (NUL) in a string at line 1, column 21 "
                   "is not accepted, because it would cut the string short");
    assert_message("{\"rules\":[{\"name\":\"x\",\"action\":\"pin\",\"product\":\"p1\\u0000x\","
                   "\"position\":1}]}",
                   "the escape \\u0000 (NUL) in a string at line 1, column 51");
    assert_message("{\"rules\":[{\"name\":\"x\",\"action\":\"filter\","
                   "\"match\":{\"products\":[\"p1\\u0000\"]}}]}",
                   "the escape \\u0000 (NUL)");

    /* A NUL byte in the raw text: in a string, after the object, between tokens. */
    static const char nul_in_string[] = "{\"rules\":[{\"name\":\"a\0b\"}]}";
    const char *err = rejected_bytes(nul_in_string, sizeof nul_in_string - 1);
    cr_assert(strstr(err, "shop-rules.json: a NUL byte at line 1, column 21 is not accepted; "
                          "a rules file is UTF-8 text without NUL bytes") != NULL, "%s", err);
    static const char nul_after[] = "{\"rules\":[]}\0";
    err = rejected_bytes(nul_after, sizeof nul_after - 1);
    cr_assert(strstr(err, "a NUL byte at line 1, column 13") != NULL, "%s", err);
    /* cJSON would skip this one as white space. */
    static const char nul_between[] = "{\"rules\":\0[]}";
    err = rejected_bytes(nul_between, sizeof nul_between - 1);
    cr_assert(strstr(err, "a NUL byte at line 1, column 10") != NULL, "%s", err);

    /* An escaped backslash followed by "u0000" is the text \u0000, not a NUL. */
    const char *text = "{\"rules\":[{\"name\":\"C:\\\\u0000\",\"action\":\"filter\","
                       "\"match\":{\"gender\":\"male\"}}]}";
    assert_accepted(text, strlen(text), 1);
}


Test(rules, control_characters_rejected)
{
    static const struct {
        const char *json;
        const char *message;
    } cases[] = {
        {"{\"rules\":[{\"name\":\"a\\nb\",\"action\":\"filter\",\"match\":{\"gender\":\"male\"}}]}",
         "rules[0]: \"name\" contains the control character 0x0A at byte 2; rule names and "
         "product ids must not contain control characters"},
        {"{\"rules\":[{\"name\":\"x\\t\",\"action\":\"filter\",\"match\":{\"gender\":\"male\"}}]}",
         "rules[0]: \"name\" contains the control character 0x09 at byte 2"},
        {"{\"rules\":[{\"name\":\"a\\u001fb\",\"action\":\"filter\","
         "\"match\":{\"gender\":\"male\"}}]}",
         "\"name\" contains the control character 0x1F"},
        {"{\"rules\":[{\"name\":\"a\x7f\",\"action\":\"filter\",\"match\":{\"gender\":\"male\"}}]}",
         "\"name\" contains the control character 0x7F"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"pin\",\"product\":\"p\\u00011\","
         "\"position\":1}]}",
         "rules[0] \"x\": \"product\" contains the control character 0x01 at byte 2"},
        {"{\"rules\":[{\"name\":\"x\",\"action\":\"filter\","
         "\"match\":{\"products\":[\"ok\",\"p\\r\"]}}]}",
         "rules[0] \"x\": \"match.products\" contains the control character 0x0D at byte 2"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_message(cases[i].json, cases[i].message);
}


Test(rules, integer_product_ids_accepted)
{
    struct rec_fixture f;
    fixture_load(&f, "{\"id\":4958,\"brand\":\"Alpha\",\"popularity\":1}\n"
                     "{\"id\":\"a1\",\"brand\":\"Beta\",\"popularity\":9}\n"
                     "{\"id\":\"a2\",\"brand\":\"Gamma\",\"popularity\":8}\n"
                     "{\"id\":\"0\",\"brand\":\"Delta\",\"popularity\":7}\n");
    fixture_rules(&f, "{\"rules\":[{\"name\":\"number-pin\",\"action\":\"pin\",\"product\":4958,"
                      "\"position\":1},{\"name\":\"number-filter\",\"action\":\"filter\","
                      "\"match\":{\"products\":[0]}}]}");

    run(&f, false);
    cr_assert_eq(f.result.n, 3);
    cr_assert_str_eq(id_at(&f, 0), "4958", "the pin names the product by its number");
    cr_assert(f.result.items[0].reasons & VT_REASON_PINNED);
    cr_assert_lt(position_of(&f, "0"), 0, "the filter names product 0 by its number");
    fixture_free(&f);

    assert_message("{\"rules\":[{\"name\":\"x\",\"action\":\"pin\",\"product\":-1,"
                   "\"position\":1}]}",
                   "rules[0] \"x\": \"product\" -1 is not a product id; a numeric id must be a "
                   "whole number from 0 to 2^53");
    assert_message("{\"rules\":[{\"name\":\"x\",\"action\":\"pin\",\"product\":49.5,"
                   "\"position\":1}]}",
                   "\"product\" 49.5 is not a product id");
    assert_message("{\"rules\":[{\"name\":\"x\",\"action\":\"pin\",\"product\":1e300,"
                   "\"position\":1}]}",
                   "\"product\" 1e+300 is not a product id");
    assert_message("{\"rules\":[{\"name\":\"x\",\"action\":\"pin\",\"product\":true,"
                   "\"position\":1}]}",
                   "\"product\" must be a non-empty string or a whole number (a product id)");
    assert_message("{\"rules\":[{\"name\":\"x\",\"action\":\"filter\","
                   "\"match\":{\"products\":[2.5]}}]}",
                   "rules[0] \"x\": \"match.products\" contains the number 2.5; a numeric "
                   "product id must be a whole number from 0 to 2^53");
    assert_message("{\"rules\":[{\"name\":\"x\",\"action\":\"filter\","
                   "\"match\":{\"products\":[null]}}]}",
                   "\"match.products\" must contain product ids only: strings or whole numbers");
    assert_message("{\"rules\":[{\"name\":\"x\",\"action\":\"filter\","
                   "\"match\":{\"brands\":[3]}}]}",
                   "\"match.brands\" must contain strings only");
}


Test(rules, directory_path_named)
{
    char err[512] = "";

    cr_assert_null(vt_rules_load("/tmp", err, sizeof err));
    cr_assert_str_eq(err, "/tmp: cannot read the rules file: Is a directory");
}


Test(rules, unreadable_file_named)
{
    char path[] = "/tmp/vitrine-rules-test-XXXXXX";
    char err[512] = "";

    if (geteuid() == 0)
        cr_skip_test("root reads files without read permission");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "{\"rules\":[]}", 12), 12);
    close(fd);
    cr_assert_eq(chmod(path, 0), 0);

    cr_assert_null(vt_rules_load(path, err, sizeof err));
    unlink(path);
    cr_assert(strstr(err, ": cannot open the rules file: Permission denied") != NULL, "%s",
              err);
}


/* Load a rules file with fd 2 sent to a temporary file, and return the log in log. */
static struct vt_rules *load_with_log(const char *path, char *log, size_t logsize)
{
    char log_path[] = "/tmp/vitrine-rules-log-XXXXXX";
    char err[512] = "";
    int log_fd = mkstemp(log_path);
    int saved = dup(STDERR_FILENO);

    cr_assert_geq(log_fd, 0);
    cr_assert_geq(saved, 0);
    vt_log_threshold = VT_LOG_INFO;
    cr_assert_geq(dup2(log_fd, STDERR_FILENO), 0);
    struct vt_rules *rules = vt_rules_load(path, err, sizeof err);
    cr_assert_geq(dup2(saved, STDERR_FILENO), 0);
    close(saved);

    ssize_t n = pread(log_fd, log, logsize - 1, 0);
    log[n > 0 ? n : 0] = '\0';
    close(log_fd);
    unlink(log_path);
    cr_assert_not_null(rules, "%s", err);
    return rules;
}


Test(rules, load_logs_rule_counts)
{
    char path[] = "/tmp/vitrine-rules-test-XXXXXX";
    char log[2048];
    const char *text =
        "{\"rules\":[{\"name\":\"a\",\"action\":\"boost\",\"factor\":2,"
        "\"match\":{\"gender\":\"male\"}},"
        "{\"name\":\"b\",\"action\":\"filter\",\"match\":{\"gender\":\"male\"}},"
        "{\"name\":\"c\",\"action\":\"filter\",\"match\":{\"price_max\":1}},"
        "{\"name\":\"d\",\"action\":\"pin\",\"product\":\"p1\",\"position\":1}]}";
    int fd = mkstemp(path);

    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);

    struct vt_rules *rules = load_with_log(path, log, sizeof log);
    unlink(path);
    char expected[256];
    snprintf(expected, sizeof expected, "loaded %s: 4 rules (1 boost, 1 pin, 2 filter)", path);
    cr_assert(strstr(log, expected) != NULL, "log \"%s\" lacks \"%s\"", log, expected);
    cr_assert(strstr(log, "RULES") != NULL, "%s", log);
    cr_assert_null(strchr(strchr(log, '\n') + 1, '\n'), "one line only: %s", log);
    vt_rules_free(rules);

    rules = load_with_log("", log, sizeof log);
    cr_assert(strstr(log, "no business rules: rec.rules_path is empty") != NULL, "%s", log);
    vt_rules_free(rules);
}
