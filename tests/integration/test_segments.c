/*
 * End-to-end tests of analyst segments, visitors across sessions, consent and erasure:
 * records produced to Kafka (canonical events and Mapp records), applied by the real
 * vitrine binary to a real Redis, and read back over HTTP and from Redis directly.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "vitrine/util.h"

/* ---- helpers ---- */

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs(text, f);
    fclose(f);
}


/* A canonical event; extra ("" or members ending in a comma) is inserted as it is. */
static void canonical(char *out, size_t size, const char *type, const char *sid,
                      const char *user, const char *product, int offset_ms, const char *extra)
{
    char stamp[40], user_field[160] = "";

    vt_time_format_iso8601(vt_now_ms() + offset_ms, stamp, sizeof stamp);
    if (user != NULL)
        snprintf(user_field, sizeof user_field, "\"user_id\":\"%s\",", user);
    snprintf(out, size,
             "{\"type\":\"%s\",\"session_id\":\"%s\",%s\"ts\":\"%s\",%s"
             "\"products\":[{\"id\":\"%s\",\"quantity\":1}]}",
             type, sid, user_field, stamp, extra, product);
}


/* A Mapp Data Streams record viewing product, with user.id and user.customerId when
 * given ("" leaves the field out). */
static void mapp_view(char *out, size_t size, const char *request, const char *sid,
                      const char *user, const char *customer, const char *product,
                      int offset_ms)
{
    char stamp[40], ids[256] = "";
    size_t at = 0;

    vt_time_format_iso8601(vt_now_ms() + offset_ms, stamp, sizeof stamp);
    if (user[0] != '\0' || customer[0] != '\0') {
        at += (size_t)snprintf(ids + at, sizeof ids - at, ",\"user\":{");
        if (user[0] != '\0')
            at += (size_t)snprintf(ids + at, sizeof ids - at, "\"id\":\"%s\"%s", user,
                                   customer[0] != '\0' ? "," : "");
        if (customer[0] != '\0')
            at += (size_t)snprintf(ids + at, sizeof ids - at, "\"customerId\":\"%s\"", customer);
        snprintf(ids + at, sizeof ids - at, "}");
    }
    snprintf(out, size,
             "{\"id\":\"%s\",\"timestamp\":\"%s\",\"session\":{\"id\":\"%s\"}%s,"
             "\"processingMetadata\":{\"detectedContext\":\"Action\"},"
             "\"basket\":{\"status\":\"view\",\"items\":["
             "{\"quantity\":1,\"price\":40,\"product\":{\"name\":\"%s\"}}]}}",
             request, stamp, sid, ids, product);
}


static void produce_one(const struct harness *h, const char *key, const char *value)
{
    const char *values[1] = {value};
    harness_produce(h, h->topic, key, values, 1);
}


/* Whether the JSON array of strings `name` in obj contains s. */
static bool has_string(const cJSON *obj, const char *name, const char *s)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(obj, name)) {
        if (cJSON_IsString(item) && strcmp(item->valuestring, s) == 0)
            return true;
    }
    return false;
}


static const cJSON *explain_of(const cJSON *obj, const char *segment)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(obj, "segments_explain")) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "segment");
        if (cJSON_IsString(name) && strcmp(name->valuestring, segment) == 0)
            return item;
    }
    return NULL;
}


/* Wait until the session's snapshot of its visitor is written (the visitor step runs
 * after the profile step), up to 10 s. */
static void wait_snapshot(const struct harness *h, const char *sid)
{
    for (int i = 0; i < 100; i++) {
        char *n = harness_redis(h, "EXISTS %s{%s}:v", h->prefix, sid);
        bool there = strcmp(n, "1") == 0;
        free(n);
        if (there)
            return;
        harness_sleep_ms(100);
    }
    cr_expect_fail("session %s got no snapshot of its visitor", sid);
}


/* Wait until the log contains text, up to timeout_s. */
static bool log_contains(const struct harness *h, const char *text, int timeout_s)
{
    for (int i = 0; i < timeout_s * 10; i++) {
        FILE *f = fopen(h->log_path, "r");
        char line[2048];
        bool found = false;
        while (f != NULL && fgets(line, sizeof line, f) != NULL)
            found = found || strstr(line, text) != NULL;
        if (f != NULL)
            fclose(f);
        if (found)
            return true;
        harness_sleep_ms(100);
    }
    return false;
}


static const char segments_file[] =
    "{\"segments\":["
    "{\"name\":\"perfume_fan\",\"description\":\"mostly perfume\","
    " \"when\":{\"category\":{\"name\":\"perfume\",\"min_share\":0.5}}},"
    "{\"name\":\"cart_open\",\"when\":{\"all\":["
    "  {\"last\":{\"event\":\"add_to_cart\",\"within_s\":1800}},"
    "  {\"not\":{\"last\":{\"event\":\"purchase\",\"within_s\":1800}}},"
    "  {\"cart\":{\"min_lines\":1}}]}},"
    "{\"name\":\"men\",\"when\":{\"gender\":\"male\"}},"
    "{\"name\":\"returning\",\"when\":{\"first_visit\":false}},"
    "{\"name\":\"engaged\",\"score\":{\"min\":4,\"points\":["
    "  {\"points\":2,\"when\":{\"count\":{\"event\":\"product_view\",\"min\":3}}},"
    "  {\"points\":3,\"when\":{\"cart\":{\"min_lines\":1}}},"
    "  {\"points\":-5,\"when\":{\"count\":{\"event\":\"purchase\",\"min\":1}}}]}}"
    "]}";


/* ---- segments ---- */

Test(segments, explain_stats_and_served_counts_follow_the_events, .timeout = 120)
{
    struct harness h;
    char path[256], env_path[300], value[1024];
    const char *sid = "seg-1";

    harness_init(&h, "segexplain");
    snprintf(path, sizeof path, "%s/segments-%s.json", getenv("VITRINE_TEST_WORK"), h.name);
    write_file(path, segments_file);
    snprintf(env_path, sizeof env_path, "VITRINE_SEGMENTS_PATH=%s", path);
    const char *env[] = {env_path, "VITRINE_SEGMENTS_COUNT_INTERVAL_S=5", NULL};
    harness_start(&h, env);

    const char *views[] = {"w-1", "w-2", "w-3"};
    for (int i = 0; i < 3; i++) {
        canonical(value, sizeof value, "product_view", sid, NULL, views[i], i * 1000, "");
        produce_one(&h, sid, value);
    }
    canonical(value, sizeof value, "add_to_cart", sid, NULL, "w-1", 4000, "");
    produce_one(&h, sid, value);
    cr_assert_eq(harness_wait_events(&h, sid, 4, 30), 4);

    cJSON *seg = harness_get_json(&h, "/v1/sessions/seg-1/segment?explain=true", 200);
    cr_expect(has_string(seg, "segments", "perfume_fan"));
    cr_expect(has_string(seg, "segments", "cart_open"));
    cr_expect(has_string(seg, "segments", "engaged"), "2 + 3 points reach the minimum 4");
    cr_expect(!has_string(seg, "segments", "men"));
    cr_expect(!has_string(seg, "segments", "returning"), "no visitor: a first visit");
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(seg, "personalised")));

    const cJSON *fan = explain_of(seg, "perfume_fan");
    cr_assert_not_null(fan, "perfume_fan is explained");
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(fan, "member")));
    const cJSON *node = cJSON_GetArrayItem(cJSON_GetObjectItem(fan, "conditions"), 0);
    cr_assert_not_null(node);
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(node, "held")));
    cr_expect_float_eq(cJSON_GetObjectItem(node, "value")->valuedouble, 1.0, 1e-6,
                       "every interest was perfume");

    const cJSON *engaged = explain_of(seg, "engaged");
    cr_assert_not_null(engaged);
    cr_expect_float_eq(cJSON_GetObjectItem(engaged, "score")->valuedouble, 5.0, 1e-9);
    cJSON_Delete(seg);

    /* Without explain, the segment response lists the names only. */
    seg = harness_get_json(&h, "/v1/sessions/seg-1/segment", 200);
    cr_expect_null(cJSON_GetObjectItem(seg, "segments_explain"));
    cr_expect(has_string(seg, "segments", "cart_open"));
    cJSON_Delete(seg);
    char *body = NULL;
    cr_expect_eq(harness_http(&h, "GET", "/v1/sessions/seg-1/segment?explain=maybe", NULL,
                              &body, NULL), 400);
    cr_expect(body != NULL && strstr(body, "explain") != NULL);
    free(body);

    /* A purchase ends cart_open and costs engaged its points. */
    canonical(value, sizeof value, "purchase", sid, NULL, "w-1", 5000, "");
    produce_one(&h, sid, value);
    cr_assert_eq(harness_wait_events(&h, sid, 5, 30), 5);
    cJSON *prof = harness_get_json(&h, "/v1/profiles/seg-1", 200);
    cr_expect(!has_string(prof, "segments", "cart_open"));
    cr_expect(!has_string(prof, "segments", "engaged"));
    cr_expect(has_string(prof, "segments", "perfume_fan"));
    cr_expect_not_null(explain_of(prof, "cart_open"), "the profile always explains");
    cJSON_Delete(prof);

    /* Members are counted within a count interval, served counts within 5 s. */
    bool counted = false, served = false;
    for (int i = 0; i < 60 && !(counted && served); i++) {
        cJSON *stats = harness_get_json(&h, "/v1/stats/segments", 200);
        const cJSON *item;
        cJSON_ArrayForEach(item, cJSON_GetObjectItem(stats, "segments")) {
            const char *name = cJSON_GetObjectItem(item, "name")->valuestring;
            const cJSON *members = cJSON_GetObjectItem(item, "members");
            if (strcmp(name, "perfume_fan") == 0 && cJSON_IsNumber(members) &&
                members->valuedouble >= 1)
                counted = true;
            if (strcmp(name, "cart_open") == 0 &&
                cJSON_GetObjectItem(item, "served")->valuedouble >= 2)
                served = true;
        }
        cJSON_Delete(stats);
        if (!(counted && served))
            harness_sleep_ms(500);
    }
    cr_expect(counted, "perfume_fan was counted with at least one member");
    cr_expect(served, "cart_open was served twice by /segment");
    harness_stop(&h, 20);
}


Test(segments, reload_with_a_broken_file_keeps_the_old_definitions, .timeout = 120)
{
    struct harness h;
    char path[256], rules_path[256], env_path[300], env_rules[300], value[1024];
    const char *sid = "seg-reload";

    harness_init(&h, "segreload");
    snprintf(path, sizeof path, "%s/segments-%s.json", getenv("VITRINE_TEST_WORK"), h.name);
    snprintf(rules_path, sizeof rules_path, "%s/rules-%s.json", getenv("VITRINE_TEST_WORK"),
             h.name);
    write_file(path, "{\"segments\":[{\"name\":\"first_set\",\"when\":"
                     "{\"count\":{\"event\":\"any\",\"min\":1}}}]}");
    write_file(rules_path, "{\"rules\":[{\"name\":\"pin-for-first\",\"action\":\"pin\","
                           "\"product\":\"c-1\",\"position\":1,\"segment\":\"first_set\"}]}");
    snprintf(env_path, sizeof env_path, "VITRINE_SEGMENTS_PATH=%s", path);
    snprintf(env_rules, sizeof env_rules, "VITRINE_REC_RULES_PATH=%s", rules_path);
    const char *env[] = {env_path, env_rules, NULL};
    harness_start(&h, env);

    canonical(value, sizeof value, "product_view", sid, NULL, "w-1", 0, "");
    produce_one(&h, sid, value);
    cr_assert_eq(harness_wait_events(&h, sid, 1, 30), 1);
    cJSON *seg = harness_get_json(&h, "/v1/sessions/seg-reload/segment", 200);
    cr_assert(has_string(seg, "segments", "first_set"));
    cJSON_Delete(seg);

    /* The rule for the segment pins c-1 first. */
    cJSON *rec = harness_get_json(&h, "/v1/sessions/seg-reload/recommendations?limit=3", 200);
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(rec, "items"), 0);
    cr_expect_str_eq(cJSON_GetObjectItem(first, "product_id")->valuestring, "c-1");
    cJSON_Delete(rec);

    /* A file that does not parse: the old definitions stay. */
    write_file(path, "{\"segments\":[{\"name\":\"Bad Name\",\"when\":{}}");
    cr_assert_eq(kill(h.pid, SIGHUP), 0);
    cr_assert(log_contains(&h, "segment definitions not reloaded", 10), "the failure is logged");
    cr_expect_eq(harness_metric(&h, "vitrine_segment_reloads_total{outcome=\"failed\"}"), 1);
    seg = harness_get_json(&h, "/v1/sessions/seg-reload/segment", 200);
    cr_expect(has_string(seg, "segments", "first_set"), "old definitions still active");
    cJSON_Delete(seg);

    /* A valid file that lacks the segment the rule names is refused as well. */
    write_file(path, "{\"segments\":[{\"name\":\"second_set\",\"when\":"
                     "{\"count\":{\"event\":\"product_view\",\"min\":1}}}]}");
    cr_assert_eq(kill(h.pid, SIGHUP), 0);
    cr_assert(log_contains(&h, "names the segment \"first_set\"", 10));
    cr_expect_eq(harness_metric(&h, "vitrine_segment_reloads_total{outcome=\"failed\"}"), 2);

    /* A valid file with both segments is taken. */
    write_file(path, "{\"segments\":[{\"name\":\"second_set\",\"when\":"
                     "{\"count\":{\"event\":\"product_view\",\"min\":1}}},"
                     "{\"name\":\"first_set\",\"when\":{\"revenue\":{\"min\":1}}}]}");
    cr_assert_eq(kill(h.pid, SIGHUP), 0);
    cr_assert(log_contains(&h, "reloaded 2 segment definitions", 10));
    cr_expect_eq(harness_metric(&h, "vitrine_segment_reloads_total{outcome=\"ok\"}"), 2,
                 "the start and this reload");
    seg = harness_get_json(&h, "/v1/sessions/seg-reload/segment", 200);
    cr_expect(has_string(seg, "segments", "second_set"));
    cr_expect(!has_string(seg, "segments", "first_set"), "no revenue yet");
    cJSON_Delete(seg);
    rec = harness_get_json(&h, "/v1/sessions/seg-reload/recommendations?limit=3", 200);
    first = cJSON_GetArrayItem(cJSON_GetObjectItem(rec, "items"), 0);
    cr_expect_str_neq(cJSON_GetObjectItem(first, "product_id")->valuestring, "c-1",
                      "the pin follows the new definition of first_set");
    cJSON_Delete(rec);
    harness_stop(&h, 20);
}


Test(segments, an_explanation_too_large_still_answers, .timeout = 120)
{
    struct harness h;
    char path[256], env_path[300], value[1024];
    struct vt_buf file;

    /* 64 segments of 61 conditions each: within every limit of the file, but their
     * explanation is larger than a response may be. */
    vt_buf_init(&file, 1 << 20);
    vt_buf_appends(&file, "{\"segments\":[");
    for (int j = 0; j < 64; j++) {
        vt_buf_printf(&file, "%s{\"name\":\"s%02d\",\"when\":{\"all\":[", j ? "," : "", j);
        for (int g = 0; g < 4; g++) {
            vt_buf_printf(&file, "%s{\"any\":[", g ? "," : "");
            for (int k = 0; k < 14; k++)
                vt_buf_printf(&file, "%s{\"count\":{\"event\":\"product_view\",\"min\":%d}}",
                              k ? "," : "", k + 1);
            vt_buf_appends(&file, "]}");
        }
        vt_buf_appends(&file, "]}}");
    }
    vt_buf_appends(&file, "]}");

    harness_init(&h, "segbig");
    snprintf(path, sizeof path, "%s/segments-%s.json", getenv("VITRINE_TEST_WORK"), h.name);
    write_file(path, file.data);
    vt_buf_free(&file);
    snprintf(env_path, sizeof env_path, "VITRINE_SEGMENTS_PATH=%s", path);
    const char *env[] = {env_path, NULL};
    harness_start(&h, env);

    canonical(value, sizeof value, "product_view", "big-1", NULL, "w-1", 0, "");
    produce_one(&h, "big-1", value);
    cr_assert_eq(harness_wait_events(&h, "big-1", 1, 30), 1);

    cJSON *prof = harness_get_json(&h, "/v1/profiles/big-1", 200);
    cr_expect(has_string(prof, "segments", "s00") && has_string(prof, "segments", "s63"));
    const cJSON *first = explain_of(prof, "s00");
    cr_assert_not_null(first);
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(first, "member")));
    cr_expect_str_eq(cJSON_GetObjectItem(first, "reason")->valuestring, "explanation too large");
    cJSON_Delete(prof);
    cJSON *seg = harness_get_json(&h, "/v1/sessions/big-1/segment?explain=true", 200);
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(seg, "segments_explain")), 64);
    cJSON_Delete(seg);
    harness_stop(&h, 20);
}


/* ---- visitors ---- */

Test(visitors, mapp_records_link_sessions_and_follow_a_login, .timeout = 120)
{
    struct harness h;
    char value[2048];

    harness_init(&h, "vislogin");
    harness_start(&h, NULL);

    /* Session 7101 of the cookie visitor ever-1 views men's perfume. */
    const char *men[] = {"m-1", "m-2", "m-3"};
    for (int i = 0; i < 3; i++) {
        char request[32];
        snprintf(request, sizeof request, "r71-%d", i);
        mapp_view(value, sizeof value, request, "7101", "ever-1", "", men[i], i * 1000);
        produce_one(&h, "7101", value);
    }
    cr_assert_eq(harness_wait_events(&h, "7101", 3, 30), 3);

    /* Session 7102 of the same visitor starts from the interest 7101 collected. */
    mapp_view(value, sizeof value, "r72-0", "7102", "ever-1", "", "c-1", 4000);
    produce_one(&h, "7102", value);
    cr_assert_eq(harness_wait_events(&h, "7102", 1, 30), 1);
    wait_snapshot(&h, "7102");
    cJSON *prof = harness_get_json(&h, "/v1/profiles/7102", 200);
    const cJSON *visitor = cJSON_GetObjectItem(prof, "visitor");
    cr_assert(cJSON_IsObject(visitor), "7102 is linked");
    cr_expect_str_eq(cJSON_GetObjectItem(visitor, "id")->valuestring, "ever-1");
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(visitor, "linked")));
    cr_expect_eq(cJSON_GetObjectItem(visitor, "sessions")->valueint, 2);
    bool perfume = false;
    const cJSON *cat;
    cJSON_ArrayForEach(cat, cJSON_GetObjectItem(prof, "categories")) {
        perfume = perfume || strcmp(cJSON_GetObjectItem(cat, "name")->valuestring,
                                    "perfume") == 0;
    }
    cr_expect(perfume, "the visitor's perfume interest reaches the new session");
    cJSON_Delete(prof);

    /* Login in 7102: user.id changes to the customer id. The session moves to cust-71,
     * which takes over what 7102 collected before, and remembers ever-1. */
    mapp_view(value, sizeof value, "r72-1", "7102", "cust-71", "cust-71", "w-1", 5000);
    produce_one(&h, "7102", value);
    cr_assert_eq(harness_wait_events(&h, "7102", 2, 30), 2);
    for (int i = 0; i < 100; i++) {
        char *linked = harness_redis(&h, "ZSCORE %s{#cust-71}:s 7102", h.prefix);
        bool done = strcmp(linked, "(nil)") != 0;
        free(linked);
        if (done)
            break;
        harness_sleep_ms(100);
    }
    prof = harness_get_json(&h, "/v1/profiles/7102", 200);
    visitor = cJSON_GetObjectItem(prof, "visitor");
    cr_assert(cJSON_IsObject(visitor));
    cr_expect_str_eq(cJSON_GetObjectItem(visitor, "id")->valuestring, "cust-71");
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(visitor, "linked")));
    cJSON_Delete(prof);

    char *skin = harness_redis(&h, "ZSCORE %s{#cust-71}:cat %s", h.prefix, "skin care");
    cr_expect_str_neq(skin, "(nil)", "the pre-login view of c-1 went to the new visitor");
    free(skin);
    char *alias = harness_redis(&h, "SISMEMBER %s{#cust-71}:al ever-1", h.prefix);
    cr_expect_str_eq(alias, "1");
    free(alias);
    char *taken = harness_redis(&h, "SISMEMBER %s{#ever-1}:to cust-71", h.prefix);
    cr_expect_str_eq(taken, "1", "ever-1 knows who took its session over");
    free(taken);

    /* A record with only the cookie id after the login keeps the session with the
     * customer: a user id ranks below a customer id in visitor.id_fields. */
    mapp_view(value, sizeof value, "r72-2", "7102", "ever-1", "", "w-2", 5500);
    produce_one(&h, "7102", value);
    cr_assert_eq(harness_wait_events(&h, "7102", 3, 30), 3);
    prof = harness_get_json(&h, "/v1/profiles/7102", 200);
    cr_expect_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(prof, "visitor"), "id")->valuestring,
                     "cust-71");
    cJSON_Delete(prof);

    /* A later session of the customer starts from it. */
    mapp_view(value, sizeof value, "r73-0", "7103", "cust-71", "cust-71", "h-1", 6000);
    produce_one(&h, "7103", value);
    cr_assert_eq(harness_wait_events(&h, "7103", 1, 30), 1);
    wait_snapshot(&h, "7103");
    prof = harness_get_json(&h, "/v1/profiles/7103", 200);
    visitor = cJSON_GetObjectItem(prof, "visitor");
    cr_expect_eq(cJSON_GetObjectItem(visitor, "sessions")->valueint, 2, "7102 and 7103");
    cJSON_Delete(prof);

    /* Blocked ids never link. */
    mapp_view(value, sizeof value, "r74-0", "7104", "0", "00000000-0000-0000-0000-000000000000",
              "h-2", 7000);
    produce_one(&h, "7104", value);
    cr_assert_eq(harness_wait_events(&h, "7104", 1, 30), 1);
    prof = harness_get_json(&h, "/v1/profiles/7104", 200);
    cr_expect(cJSON_IsNull(cJSON_GetObjectItem(prof, "visitor")));
    cJSON_Delete(prof);
    cr_expect_geq(harness_metric(&h, "vitrine_visitor_ids_blocked_total"), 1);
    char *zero = harness_redis(&h, "EXISTS %s{#0}:p", h.prefix);
    cr_expect_str_eq(zero, "0");
    free(zero);
    harness_stop(&h, 20);
}


Test(visitors, sessions_beyond_the_cap_are_refused, .timeout = 120)
{
    struct harness h;
    char value[1024];

    harness_init(&h, "viscap");
    const char *env[] = {"VITRINE_VISITOR_SESSIONS_MAX=2", NULL};
    harness_start(&h, env);

    const char *sessions[] = {"cap-a", "cap-b", "cap-c"};
    for (int i = 0; i < 3; i++) {
        canonical(value, sizeof value, "product_view", sessions[i], "shared-id", "w-1",
                  i * 1000, "");
        produce_one(&h, sessions[i], value);
        cr_assert_eq(harness_wait_events(&h, sessions[i], 1, 30), 1);
        wait_snapshot(&h, sessions[i]);
    }

    cJSON *prof = harness_get_json(&h, "/v1/profiles/cap-c", 200);
    const cJSON *visitor = cJSON_GetObjectItem(prof, "visitor");
    cr_assert(cJSON_IsObject(visitor));
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(visitor, "linked")), "the third is refused");
    cJSON_Delete(prof);
    prof = harness_get_json(&h, "/v1/profiles/cap-b", 200);
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(prof, "visitor"), "linked")));
    cJSON_Delete(prof);

    char *linked = harness_redis(&h, "ZCARD %s{#shared-id}:s", h.prefix);
    cr_expect_str_eq(linked, "2");
    free(linked);
    char *refused = harness_redis(&h, "ZSCORE %s{#shared-id}:x cap-c", h.prefix);
    cr_expect_str_neq(refused, "(nil)", "kept for an erasure");
    free(refused);
    cr_expect_geq(harness_metric(&h, "vitrine_visitor_records_total{outcome=\"refused\"}"), 1);
    harness_stop(&h, 20);
}


/* ---- consent ---- */

struct decision_seen {
    const char *id;
    bool found;
    bool anonymous;
};


static void find_decision(const char *key, size_t key_len, const char *value, size_t len,
                          const char *reason, void *arg)
{
    struct decision_seen *seen = arg;
    cJSON *record = cJSON_ParseWithLength(value, len);
    const cJSON *id = cJSON_GetObjectItem(record, "decision_id");

    (void)reason;
    if (cJSON_IsString(id) && strcmp(id->valuestring, seen->id) == 0) {
        seen->found = true;
        seen->anonymous = cJSON_IsNull(cJSON_GetObjectItem(record, "session_id")) &&
                          key_len == strlen(seen->id) && memcmp(key, seen->id, key_len) == 0;
    }
    cJSON_Delete(record);
}

/* Every key of the test's prefix, one per line. */
static char *all_keys(const struct harness *h)
{
    return harness_redis(h, "KEYS %s*", h->prefix);
}


Test(privacy, without_consent_only_counters_are_kept, .timeout = 120)
{
    struct harness h;
    char value[1024], mapp[2048], decisions[128], env_decisions[160];

    harness_init(&h, "noconsent");
    snprintf(decisions, sizeof decisions, "%s-decisions", h.topic);
    snprintf(env_decisions, sizeof env_decisions, "VITRINE_KAFKA_DECISIONS_TOPIC=%s", decisions);
    const char *env[] = {"VITRINE_MAPP_CONSENT_PARAM=cs12", env_decisions, NULL};
    harness_start(&h, env);

    /* A canonical session that denies consent, then sends events without a consent value. */
    canonical(value, sizeof value, "product_view", "nc-1", "nc-user", "w-2", 0,
              "\"consent\":false,");
    produce_one(&h, "nc-1", value);
    canonical(value, sizeof value, "add_to_cart", "nc-1", "nc-user", "w-2", 1000, "");
    produce_one(&h, "nc-1", value);

    /* A Mapp session that denies consent in session parameter 12. */
    char stamp[40];
    vt_time_format_iso8601(vt_now_ms(), stamp, sizeof stamp);
    snprintf(mapp, sizeof mapp,
             "{\"id\":\"rnc\",\"timestamp\":\"%s\",\"session\":{\"id\":\"8801\","
             "\"parameters\":{\"textValues\":{\"12\":{\"key\":\"12\",\"values\":[\"0\"]}}}},"
             "\"user\":{\"id\":\"nc-mapp-user\"},"
             "\"processingMetadata\":{\"detectedContext\":\"Action\"},"
             "\"basket\":{\"status\":\"view\",\"items\":"
             "[{\"quantity\":1,\"price\":40,\"product\":{\"name\":\"w-2\"}}]}}",
             stamp);
    produce_one(&h, "8801", mapp);

    /* A consenting session alongside, to see that the batch went through. */
    canonical(value, sizeof value, "product_view", "yes-1", "yes-user", "w-3", 2000,
              "\"consent\":true,");
    produce_one(&h, "yes-1", value);
    cr_assert_eq(harness_wait_events(&h, "yes-1", 1, 30), 1);
    for (int i = 0; i < 100 && harness_metric(&h, "vitrine_consent_records_total"
                                                  "{consent=\"denied\"}") < 2; i++)
        harness_sleep_ms(100);
    cr_expect_eq(harness_metric(&h, "vitrine_consent_records_total{consent=\"denied\"}"), 2);

    /* Only the consent value is kept for the two sessions, and no visitor for their users. */
    char *keys = all_keys(&h);
    cr_expect(strstr(keys, "{nc-1}:p") != NULL, "the answer is kept:\n%s", keys);
    cr_expect(strstr(keys, "{nc-1}:cat") == NULL && strstr(keys, "{nc-1}:rv") == NULL &&
                  strstr(keys, "{nc-1}:cart") == NULL,
              "nothing else about nc-1:\n%s", keys);
    cr_expect(strstr(keys, "{8801}:rv") == NULL && strstr(keys, "{8801}:cat") == NULL,
              "nothing about 8801:\n%s", keys);
    cr_expect(strstr(keys, "nc-user") == NULL && strstr(keys, "nc-mapp-user") == NULL,
              "no visitor keys:\n%s", keys);
    cr_expect(strstr(keys, "{#yes-user}:p") != NULL, "the consenting visitor exists");
    free(keys);
    char *hash = harness_redis(&h, "HKEYS %s{nc-1}:p", h.prefix);
    cr_expect(strstr(hash, "consent") != NULL && strstr(hash, "user") == NULL &&
                  strstr(hash, "events") == NULL,
              "the hash holds the answer and offsets only: %s", hash);
    free(hash);

    /* Trending still counts the views. */
    char *trend = harness_redis(&h, "ZSCORE %s{agg}:tr w-2", h.prefix);
    cr_expect_str_neq(trend, "(nil)", "views without consent count for trending");
    free(trend);

    /* Served without personalisation; the decision does not name the session. */
    cJSON *seg = harness_get_json(&h, "/v1/sessions/nc-1/segment", 200);
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(seg, "personalised")));
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(seg, "known")));
    cJSON_Delete(seg);
    cJSON *rec = harness_get_json(&h, "/v1/sessions/nc-1/recommendations?limit=3", 200);
    char decision_id[64];
    vt_strlcpy(decision_id, cJSON_GetObjectItem(rec, "decision_id")->valuestring,
               sizeof decision_id);
    cJSON_Delete(rec);
    harness_sleep_ms(1000);

    struct decision_seen seen = {.id = decision_id};
    for (int i = 0; i < 10 && !seen.found; i++)
        harness_consume_all(&h, decisions, 3000, find_decision, &seen);
    cr_expect(seen.found, "the decision record was published");
    cr_expect(seen.anonymous, "it has session_id null and the decision id as key");
    harness_stop(&h, 20);
}


Test(privacy, default_denied_stores_only_sessions_that_say_yes, .timeout = 120)
{
    struct harness h;
    char value[1024];

    harness_init(&h, "defdenied");
    const char *env[] = {"VITRINE_CONSENT_DEFAULT=denied", NULL};
    harness_start(&h, env);

    canonical(value, sizeof value, "product_view", "dd-silent", "dd-user-1", "w-1", 0, "");
    produce_one(&h, "dd-silent", value);
    canonical(value, sizeof value, "product_view", "dd-yes", "dd-user-2", "w-2", 0,
              "\"consent\":\"granted\",");
    produce_one(&h, "dd-yes", value);
    canonical(value, sizeof value, "add_to_cart", "dd-yes", "dd-user-2", "w-2", 1000, "");
    produce_one(&h, "dd-yes", value);
    cr_assert_eq(harness_wait_events(&h, "dd-yes", 2, 30), 2, "a yes is kept for the session");

    char *keys = all_keys(&h);
    cr_expect(strstr(keys, "{dd-silent}:rv") == NULL && strstr(keys, "dd-user-1") == NULL,
              "a session that said nothing is not stored:\n%s", keys);
    cr_expect(strstr(keys, "{#dd-user-2}:p") != NULL, "the consenting visitor is:\n%s", keys);
    free(keys);
    char *answer = harness_redis(&h, "HGET %s{dd-silent}:p consent", h.prefix);
    cr_expect_str_eq(answer, "(nil)", "no answer is invented for the silent session");
    free(answer);

    cJSON *seg = harness_get_json(&h, "/v1/sessions/dd-silent/segment", 200);
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(seg, "personalised")));
    cJSON_Delete(seg);
    seg = harness_get_json(&h, "/v1/sessions/dd-yes/segment", 200);
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(seg, "personalised")));
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(seg, "known")));
    cJSON_Delete(seg);
    harness_stop(&h, 20);
}


/* ---- erasure ---- */

/* Keys under the test's prefix whose contents (hash fields and values, set and sorted set
 * members) contain text. */
static int hash_values_naming(const struct harness *h, const char *text)
{
    char *keys = all_keys(h);
    int hits = 0;

    for (char *key = strtok(keys, "\n"); key != NULL; key = strtok(NULL, "\n")) {
        char *type = harness_redis(h, "TYPE %s", key);
        char *all = NULL;
        if (strcmp(type, "hash") == 0)
            all = harness_redis(h, "HGETALL %s", key);
        else if (strcmp(type, "set") == 0)
            all = harness_redis(h, "SMEMBERS %s", key);
        else if (strcmp(type, "zset") == 0)
            all = harness_redis(h, "ZRANGE %s 0 -1", key);
        if (all != NULL)
            hits += strstr(all, text) != NULL;
        free(all);
        free(type);
    }
    free(keys);
    return hits;
}

Test(privacy, visitor_erasure_leaves_no_key_behind, .timeout = 120)
{
    struct harness h;
    char value[2048];

    harness_init(&h, "erasure");
    harness_start(&h, NULL);

    /* The cookie visitor ever-e views in session ers-a, logs in as cust-e in it, and comes
     * back in session ers-b. Another visitor's session ers-other must survive. */
    mapp_view(value, sizeof value, "re-0", "ers-a", "ever-e", "", "m-1", 0);
    produce_one(&h, "ers-a", value);
    mapp_view(value, sizeof value, "re-1", "ers-a", "cust-e", "cust-e", "m-2", 1000);
    produce_one(&h, "ers-a", value);
    mapp_view(value, sizeof value, "re-2", "ers-b", "cust-e", "cust-e", "w-1", 2000);
    produce_one(&h, "ers-b", value);
    mapp_view(value, sizeof value, "re-3", "ers-other", "other-e", "", "w-2", 3000);
    produce_one(&h, "ers-other", value);
    cr_assert_eq(harness_wait_events(&h, "ers-a", 2, 30), 2);
    cr_assert_eq(harness_wait_events(&h, "ers-b", 1, 30), 1);
    cr_assert_eq(harness_wait_events(&h, "ers-other", 1, 30), 1);
    for (int i = 0; i < 50; i++) {
        char *n = harness_redis(&h, "EXISTS %s{#cust-e}:p", h.prefix);
        bool there = strcmp(n, "1") == 0;
        free(n);
        if (there)
            break;
        harness_sleep_ms(100);
    }

    char *body = NULL;
    cr_assert_eq(harness_http(&h, "DELETE", "/v1/visitors/cust-e", NULL, &body, NULL), 200);
    cJSON *answer = cJSON_Parse(body);
    free(body);
    cr_assert_not_null(answer);
    cr_expect_eq(cJSON_GetObjectItem(answer, "sessions")->valueint, 2, "ers-a and ers-b");
    cr_expect_eq(cJSON_GetObjectItem(answer, "visitors")->valueint, 2, "cust-e and ever-e");
    cr_expect_gt(cJSON_GetObjectItem(answer, "deleted_keys")->valueint, 10);
    cJSON_Delete(answer);

    /* Scan the whole key space of the test: nothing names the person any more. The
     * session ids are not numbers, so that no time or score can contain them. */
    char *keys = all_keys(&h);
    cr_expect(strstr(keys, "ers-a") == NULL && strstr(keys, "ers-b") == NULL,
              "no session key is left:\n%s", keys);
    cr_expect(strstr(keys, "cust-e") == NULL && strstr(keys, "ever-e") == NULL,
              "no visitor key is left:\n%s", keys);
    cr_expect(strstr(keys, "{ers-other}:p") != NULL && strstr(keys, "{#other-e}:p") != NULL,
              "the other visitor stays:\n%s", keys);
    free(keys);
    cr_expect_eq(hash_values_naming(&h, "cust-e") + hash_values_naming(&h, "ever-e") +
                     hash_values_naming(&h, "ers-a") + hash_values_naming(&h, "ers-b"),
                 0, "no hash field or value names the person");

    /* Again: nothing left to delete, still a success. */
    cr_assert_eq(harness_http(&h, "DELETE", "/v1/visitors/cust-e", NULL, &body, NULL), 200);
    answer = cJSON_Parse(body);
    free(body);
    cr_expect_eq(cJSON_GetObjectItem(answer, "deleted_keys")->valueint, 0);
    cr_expect_eq(cJSON_GetObjectItem(answer, "sessions")->valueint, 0);
    cJSON_Delete(answer);

    cr_expect(log_contains(&h, "visitor erasure 1:", 5), "the erasure is logged");
    FILE *f = fopen(h.log_path, "r");
    char line[2048];
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strstr(line, "erasure") != NULL)
            cr_expect(strstr(line, "cust-e") == NULL && strstr(line, "ers-a") == NULL,
                      "the log names no one: %s", line);
    }
    if (f != NULL)
        fclose(f);
    cr_expect_eq(harness_metric(&h, "vitrine_erasures_total{outcome=\"deleted\"}"), 1);
    cr_expect_eq(harness_metric(&h, "vitrine_erasures_total{outcome=\"nothing\"}"), 1);

    cr_expect_eq(harness_http(&h, "DELETE", "/v1/visitors/bad%20id", NULL, &body, NULL), 400);
    free(body);

    /* Erasing the older id: the visitor that took its session over keeps its interest,
     * but no longer names it or the session. */
    mapp_view(value, sizeof value, "rf-0", "ers-f", "ever-f", "", "m-3", 4000);
    produce_one(&h, "ers-f", value);
    mapp_view(value, sizeof value, "rf-1", "ers-f", "cust-f", "cust-f", "m-4", 5000);
    produce_one(&h, "ers-f", value);
    cr_assert_eq(harness_wait_events(&h, "ers-f", 2, 30), 2);
    for (int i = 0; i < 50; i++) {
        char *n = harness_redis(&h, "EXISTS %s{#ever-f}:to", h.prefix);
        bool there = strcmp(n, "1") == 0;
        free(n);
        if (there)
            break;
        harness_sleep_ms(100);
    }
    cr_assert_eq(harness_http(&h, "DELETE", "/v1/visitors/ever-f", NULL, &body, NULL), 200);
    free(body);
    keys = all_keys(&h);
    cr_expect(strstr(keys, "ever-f") == NULL && strstr(keys, "ers-f") == NULL,
              "nothing of ever-f or its session:\n%s", keys);
    cr_expect(strstr(keys, "{#cust-f}:cat") != NULL, "cust-f keeps its interest:\n%s", keys);
    free(keys);
    cr_expect_eq(hash_values_naming(&h, "ever-f") + hash_values_naming(&h, "ers-f"), 0);
    char *sessions = harness_redis(&h, "ZRANGE %s{#cust-f}:s 0 -1", h.prefix);
    cr_expect(strstr(sessions, "ers-f") == NULL, "cust-f no longer lists ers-f: %s", sessions);
    free(sessions);
    char *aliases = harness_redis(&h, "SMEMBERS %s{#cust-f}:al", h.prefix);
    cr_expect(strstr(aliases, "ever-f") == NULL, "cust-f no longer names ever-f: %s", aliases);
    free(aliases);
    harness_stop(&h, 20);
}


Test(privacy, erasure_spares_a_shared_device_and_cleans_a_chain, .timeout = 120)
{
    struct harness h;
    char value[2048];
    char *body = NULL;

    harness_init(&h, "erasshare");
    harness_start(&h, NULL);

    /* One family computer (cookie id fam-pc): mother and father log in, each in a session
     * of their own. */
    mapp_view(value, sizeof value, "fa-0", "fam-s1", "fam-pc", "", "w-1", 0);
    produce_one(&h, "fam-s1", value);
    mapp_view(value, sizeof value, "fa-1", "fam-s1", "mum-c", "mum-c", "w-2", 1000);
    produce_one(&h, "fam-s1", value);
    mapp_view(value, sizeof value, "fa-2", "fam-s2", "fam-pc", "", "m-1", 2000);
    produce_one(&h, "fam-s2", value);
    mapp_view(value, sizeof value, "fa-3", "fam-s2", "dad-c", "dad-c", "m-2", 3000);
    produce_one(&h, "fam-s2", value);
    /* One session through three cookie ids in turn: chain-a, chain-b, chain-c. */
    const char *chain[] = {"chain-a", "chain-b", "chain-c"};
    for (int i = 0; i < 3; i++) {
        char request[16];
        snprintf(request, sizeof request, "ch-%d", i);
        mapp_view(value, sizeof value, request, "chain-s", chain[i], "", "h-1", 4000 + i * 1000);
        produce_one(&h, "chain-s", value);
    }
    cr_assert_eq(harness_wait_events(&h, "fam-s2", 2, 30), 2);
    cr_assert_eq(harness_wait_events(&h, "chain-s", 3, 30), 3);
    for (int i = 0; i < 50; i++) {
        char *n = harness_redis(&h, "SCARD %s{#fam-pc}:to", h.prefix);
        char *m = harness_redis(&h, "EXISTS %s{#chain-b}:to", h.prefix);
        bool ready = strcmp(n, "2") == 0 && strcmp(m, "1") == 0;
        free(n);
        free(m);
        if (ready)
            break;
        harness_sleep_ms(100);
    }

    cr_assert_eq(harness_http(&h, "DELETE", "/v1/visitors/mum-c", NULL, &body, NULL), 200);
    cJSON *answer = cJSON_Parse(body);
    free(body);
    cr_expect_eq(cJSON_GetObjectItem(answer, "sessions")->valueint, 1, "only her session");
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(answer, "complete")));
    cJSON_Delete(answer);
    char *keys = all_keys(&h);
    cr_expect(strstr(keys, "{fam-s2}:p") != NULL && strstr(keys, "{#dad-c}:p") != NULL &&
                  strstr(keys, "{#fam-pc}:p") != NULL,
              "the father's session and the shared cookie id stay:\n%s", keys);
    cr_expect(strstr(keys, "fam-s1") == NULL && strstr(keys, "mum-c") == NULL, "%s", keys);
    free(keys);
    cr_expect_eq(hash_values_naming(&h, "mum-c") + hash_values_naming(&h, "fam-s1"), 0,
                 "nothing names the mother or her session");

    cr_assert_eq(harness_http(&h, "DELETE", "/v1/visitors/chain-a", NULL, &body, NULL), 200);
    free(body);
    cr_expect_eq(hash_values_naming(&h, "chain-a") + hash_values_naming(&h, "chain-s"), 0,
                 "the later ids of the chain no longer name chain-a or its session");
    keys = all_keys(&h);
    cr_expect(strstr(keys, "{#chain-c}:cat") != NULL, "chain-c keeps its interest:\n%s", keys);
    free(keys);
    harness_stop(&h, 20);
}


Test(visitors, a_login_and_a_purchase_in_one_batch_count_once, .timeout = 120)
{
    struct harness h;
    char first[1024], login[1024], purchase[1024];

    harness_init(&h, "visbatch");
    const char *env[] = {"VITRINE_INGEST_BATCH_WAIT_MS=500", NULL};
    harness_start(&h, env);

    canonical(first, sizeof first, "product_view", "lb-1", "lb-cookie", "m-1", 0, "");
    produce_one(&h, "lb-1", first);
    cr_assert_eq(harness_wait_events(&h, "lb-1", 1, 30), 1);

    /* The login and the purchase after it, produced together so that one batch takes
     * both. */
    canonical(login, sizeof login, "product_view", "lb-1", "lb-cookie", "m-2", 1000,
              "\"customer_id\":\"lb-cust\",");
    canonical(purchase, sizeof purchase, "purchase", "lb-1", "lb-cookie", "lux-1", 2000,
              "\"customer_id\":\"lb-cust\",\"order_value\":240,");
    const char *values[] = {login, purchase};
    harness_produce(&h, h.topic, "lb-1", values, 2);
    cr_assert_eq(harness_wait_events(&h, "lb-1", 3, 30), 3);
    for (int i = 0; i < 50; i++) {
        char *events = harness_redis(&h, "HGET %s{#lb-cust}:p events", h.prefix);
        bool both = strcmp(events, "2") == 0;
        free(events);
        if (both)
            break;
        harness_sleep_ms(100);
    }
    char *revenue = harness_redis(&h, "HGET %s{#lb-cust}:p revenue", h.prefix);
    cr_expect_str_eq(revenue, "240", "the purchase counts once for the customer");
    free(revenue);
    char *session = harness_redis(&h, "HGET %s{lb-1}:p revenue", h.prefix);
    cr_expect_str_eq(session, "240");
    free(session);
    harness_stop(&h, 20);
}


Test(privacy, an_interrupted_erasure_finishes_on_retry, .timeout = 120)
{
    struct harness h;
    char value[1024];
    char *body = NULL;

    harness_init(&h, "erasretry");
    /* A redis-server of the test's own, whose permissions the test may change. */
    h.redis_port = harness_free_port();
    pid_t redis = harness_start_redis(h.redis_port, NULL);
    harness_start(&h, NULL);

    for (int i = 0; i < 3; i++) {
        char sid[16];
        snprintf(sid, sizeof sid, "er-%d", i);
        canonical(value, sizeof value, "product_view", sid, "erv", "w-1", i * 1000, "");
        produce_one(&h, sid, value);
        cr_assert_eq(harness_wait_events(&h, sid, 1, 30), 1);
    }
    for (int i = 0; i < 50; i++) {
        char *n = harness_redis(&h, "ZCARD %s{#erv}:s", h.prefix);
        bool all = strcmp(n, "3") == 0;
        free(n);
        if (all)
            break;
        harness_sleep_ms(100);
    }

    /* Only the visitor's keys may be touched: the sessions' deletes fail. */
    char *acl = harness_redis(&h, "ACL SETUSER default resetkeys ~%s{#*", h.prefix);
    free(acl);
    cr_expect_eq(harness_http(&h, "DELETE", "/v1/visitors/erv", NULL, &body, NULL), 503);
    free(body);
    acl = harness_redis(&h, "ACL SETUSER default allkeys");
    free(acl);

    cr_assert_eq(harness_http(&h, "DELETE", "/v1/visitors/erv", NULL, &body, NULL), 200);
    cJSON *answer = cJSON_Parse(body);
    free(body);
    cr_expect_eq(cJSON_GetObjectItem(answer, "sessions")->valueint, 3,
                 "the retry finds every session the failed attempt left");
    cJSON_Delete(answer);
    char *keys = all_keys(&h);
    cr_expect(strstr(keys, "er-") == NULL && strstr(keys, "erv") == NULL,
              "nothing is left:\n%s", keys);
    free(keys);
    harness_stop(&h, 20);
    kill(redis, SIGTERM);
    waitpid(redis, NULL, 0);
}
