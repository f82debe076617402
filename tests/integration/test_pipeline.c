/*
 * End-to-end tests of the whole path: records produced to Kafka, applied by the real
 * vitrine binary to a real Redis, and read back over HTTP.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "vitrine/util.h"

/* A canonical event JSON for session sid at now + offset_ms. */
static char *canonical(const char *type, const char *sid, const char *product, int offset_ms)
{
    char stamp[40];
    char *out = malloc(512);

    vt_time_format_iso8601(vt_now_ms() + offset_ms, stamp, sizeof stamp);
    snprintf(out, 512,
             "{\"type\":\"%s\",\"session_id\":\"%s\",\"user_id\":\"u-%s\",\"ts\":\"%s\","
             "\"products\":[{\"id\":\"%s\",\"quantity\":1}]}",
             type, sid, sid, stamp, product);
    return out;
}


static void free_all(char **values, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(values[i]);
}


static int64_t json_int(const cJSON *obj, const char *path)
{
    char part[64];
    const cJSON *cur = obj;

    for (const char *p = path; p != NULL;) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        vt_copy_utf8(part, sizeof part, p, len);
        cur = cJSON_GetObjectItemCaseSensitive(cur, part);
        p = dot ? dot + 1 : NULL;
    }
    cr_assert(cJSON_IsNumber(cur), "%s is not a number", path);
    return (int64_t)cur->valuedouble;
}


static const char *json_str(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    cr_assert(cJSON_IsString(v), "%s is not a string", name);
    return v->valuestring;
}


Test(pipeline, events_become_visible_through_http, .timeout = 90)
{
    struct harness h;
    char *values[6];
    const char *sid = "s-visible-1";

    harness_init(&h, "visible");
    harness_start(&h, NULL);

    values[0] = canonical("product_view", sid, "w-1", 0);
    values[1] = canonical("product_view", sid, "w-2", 1000);
    values[2] = canonical("product_view", sid, "w-3", 2000);
    values[3] = canonical("add_to_cart", sid, "w-1", 3000);
    values[4] = canonical("product_view", sid, "c-1", 4000);
    values[5] = canonical("purchase", sid, "w-2", 5000);
    harness_produce(&h, h.topic, sid, (const char *const *)values, 6);
    free_all(values, 6);

    cr_assert_eq(harness_wait_events(&h, sid, 6, 30), 6, "profile did not reach 6 events");

    cJSON *seg = harness_get_json(&h, "/v1/sessions/s-visible-1/segment", 200);
    cr_expect_str_eq(json_str(seg, "segment"), "female");
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(seg, "known")));
    /* perfume and perfume.women have equal scores here; either may come first. */
    cJSON *cats = cJSON_GetObjectItem(seg, "top_categories");
    const char *c0 = json_str(cJSON_GetArrayItem(cats, 0), "name");
    const char *c1 = json_str(cJSON_GetArrayItem(cats, 1), "name");
    cr_expect((strcmp(c0, "perfume") == 0 && strcmp(c1, "perfume.women") == 0) ||
                  (strcmp(c0, "perfume.women") == 0 && strcmp(c1, "perfume") == 0),
              "top categories are %s, %s", c0, c1);
    cJSON *brands = cJSON_GetObjectItem(seg, "top_brands");
    cr_expect_str_eq(json_str(cJSON_GetArrayItem(brands, 0), "name"), "Aurelle");
    cJSON_Delete(seg);

    cJSON *prof = harness_get_json(&h, "/v1/profiles/s-visible-1", 200);
    cr_expect_eq(json_int(prof, "counters.product_view"), 4);
    cr_expect_eq(json_int(prof, "counters.purchase"), 1);
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(prof, "recently_viewed")), 4);
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(prof, "cart")), 1);
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(prof, "purchased")), 1);
    cr_expect_str_eq(json_str(cJSON_GetObjectItem(prof, "gender"), "segment"), "female");
    cJSON_Delete(prof);

    cJSON *recs = harness_get_json(&h, "/v1/sessions/s-visible-1/recommendations?limit=8", 200);
    cJSON *items = cJSON_GetObjectItem(recs, "items");
    cr_assert_gt(cJSON_GetArraySize(items), 0, "no recommendations");
    cr_expect_eq(strlen(json_str(recs, "decision_id")), 36);
    cJSON *item;
    cJSON_ArrayForEach(item, items) {
        const char *id = json_str(item, "product_id");
        cr_expect_str_neq(id, "w-1", "product in the cart was recommended");
        cr_expect_str_neq(id, "w-2", "purchased product was recommended");
        cr_expect_str_neq(id, "w-oos", "out-of-stock product was recommended");
        cr_expect(strncmp(id, "m-", 2) != 0, "men's product %s for a female segment", id);
    }
    cJSON_Delete(recs);

    harness_stop(&h, 20);
}


Test(pipeline, mapp_records_are_applied, .timeout = 90)
{
    struct harness h;
    char stamp[40], nested[1024], flat[1024];
    const char *values[2] = {nested, flat};

    harness_init(&h, "mapp");
    harness_start(&h, NULL);

    vt_time_format_iso8601(vt_now_ms(), stamp, sizeof stamp);
    snprintf(nested, sizeof nested,
             "{\"id\":\"r1\",\"timestamp\":\"%s\",\"session\":{\"id\":\"9001\"},"
             "\"user\":{\"id\":\"77\"},\"processingMetadata\":{\"detectedContext\":\"Action\"},"
             "\"basket\":{\"status\":\"add\",\"items\":["
             "{\"quantity\":2,\"price\":12.5,\"product\":{\"name\":\"m-1\"}},"
             "{\"quantity\":0,\"price\":0,\"product\":{\"name\":\"-\"}},"
             "{\"quantity\":1,\"price\":40,\"product\":{\"name\":\"m-2\"}}]}}",
             stamp);
    snprintf(flat, sizeof flat,
             "{\"id\":\"r2\",\"timestamp\":\"%s\",\"session_id\":\"9001\",\"user_id\":\"77\","
             "\"processingMetadata_detectedContext\":\"Action\",\"basket_status\":\"view\","
             "\"basket_items_1_quantity\":1,\"basket_items_1_price\":40,"
             "\"basket_items_1_product_name\":\"m-3\"}",
             stamp);
    harness_produce(&h, h.topic, "9001", values, 2);

    cr_assert_eq(harness_wait_events(&h, "9001", 2, 30), 2, "profile did not reach 2 events");
    cJSON *prof = harness_get_json(&h, "/v1/profiles/9001", 200);
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(prof, "cart")), 2,
                 "the placeholder item must be skipped, both products kept");
    cr_expect_eq(json_int(prof, "counters.add_to_cart"), 1);
    cr_expect_eq(json_int(prof, "counters.product_view"), 1);
    cr_expect_str_eq(json_str(prof, "user_id"), "77");
    cJSON_Delete(prof);

    harness_stop(&h, 20);
}


/* Snapshot of every key of a profile, for comparing before and after a redelivery. */
static char *profile_dump(const struct harness *h, const char *sid)
{
    static const char *const suffixes[] = {"p", "cat", "brand", "tier", "rv", "cart", "buy"};
    struct vt_buf out;

    vt_buf_init(&out, 1 << 20);
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char *part;
        if (i == 0 || i == 5)
            part = harness_redis(h, "HGETALL %s{%s}:%s", h->prefix, sid, suffixes[i]);
        else
            part = harness_redis(h, "ZRANGE %s{%s}:%s 0 -1 WITHSCORES", h->prefix, sid,
                                 suffixes[i]);
        vt_buf_printf(&out, "[%s]\n%s\n", suffixes[i], part);
        free(part);
    }
    return out.data;
}


Test(pipeline, redelivered_records_leave_profile_unchanged, .timeout = 120)
{
    struct harness h;
    char *values[5];
    const char *sid = "s-dup-1";

    harness_init(&h, "duplicate");
    harness_start(&h, NULL);
    for (int i = 0; i < 5; i++)
        values[i] = canonical(i == 4 ? "add_to_cart" : "product_view", sid,
                              i % 2 ? "m-1" : "c-2", i * 1000);
    harness_produce(&h, h.topic, sid, (const char *const *)values, 5);
    free_all(values, 5);
    cr_assert_eq(harness_wait_events(&h, sid, 5, 30), 5);
    char *before = profile_dump(&h, sid);
    harness_stop(&h, 20);

    /* A new consumer group reads the topic from the beginning: the same partitions and
     * offsets arrive a second time. */
    snprintf(h.group, sizeof h.group, "vitrine-%s-again", h.name);
    harness_start(&h, NULL);
    for (int i = 0; i < 100 &&
                    harness_metric(&h, "vitrine_events_total{type=\"product_view\","
                                       "outcome=\"duplicate\"}") < 4;
         i++)
        harness_sleep_ms(100);
    cr_expect_eq(harness_metric(&h, "vitrine_events_total{type=\"product_view\","
                                    "outcome=\"duplicate\"}"), 4);
    cr_expect_eq(harness_metric(&h, "vitrine_events_total{type=\"add_to_cart\","
                                    "outcome=\"duplicate\"}"), 1);
    cr_expect_eq(harness_metric(&h, "vitrine_events_total{type=\"product_view\","
                                    "outcome=\"applied\"}"), 0);

    char *after = profile_dump(&h, sid);
    /* The TTL is refreshed only by writes, so the dumps must be identical. */
    cr_expect_str_eq(after, before, "profile changed on redelivery");
    free(before);
    free(after);
    harness_stop(&h, 20);
}


struct dead_letter_seen {
    int count;
    char reasons[8][64];
    char values[8][128];
};

static void collect_dead_letter(const char *key, size_t key_len, const char *value, size_t len,
                                const char *reason, void *arg)
{
    struct dead_letter_seen *seen = arg;

    (void)key;
    (void)key_len;
    if (seen->count < 8) {
        vt_strlcpy(seen->reasons[seen->count], reason, sizeof seen->reasons[0]);
        vt_copy_utf8(seen->values[seen->count], sizeof seen->values[0], value, len);
    }
    seen->count++;
}


Test(pipeline, malformed_record_goes_to_dead_letter_and_next_is_applied, .timeout = 120)
{
    struct harness h;
    const char *sid = "s-dlq-1";
    char *good1 = canonical("product_view", sid, "h-1", 0);
    char *good2 = canonical("product_view", sid, "h-2", 1000);
    const char *values[4] = {good1, "{\"type\": \"product_view\", broken", "[1,2,3]", good2};
    struct dead_letter_seen seen = {0};

    harness_init(&h, "deadletter");
    harness_start(&h, NULL);
    /* Same key, so all four land in one partition, in this order. */
    harness_produce(&h, h.topic, sid, values, 4);
    cr_assert_eq(harness_wait_events(&h, sid, 2, 30), 2,
                 "the good records around the bad ones were not both applied");

    harness_consume_all(&h, h.dead_letter, 4000, collect_dead_letter, &seen);
    cr_assert_eq(seen.count, 2, "expected 2 dead letters, got %d", seen.count);
    cr_expect_str_eq(seen.reasons[0], "invalid_json");
    cr_expect_str_eq(seen.values[0], "{\"type\": \"product_view\", broken");
    cr_expect_str_eq(seen.reasons[1], "not_object");
    cr_expect_eq(harness_metric(&h, "vitrine_decode_failures_total{reason=\"invalid_json\"}"), 1);
    cr_expect_eq(harness_metric(&h, "vitrine_decode_failures_total{reason=\"not_object\"}"), 1);

    free(good1);
    free(good2);
    harness_stop(&h, 20);
}


Test(pipeline, restart_continues_from_committed_offsets, .timeout = 150)
{
    struct harness h;
    char *first[4], *second[3];
    const char *sid = "s-restart-1";

    harness_init(&h, "restart");
    harness_start(&h, NULL);
    for (int i = 0; i < 4; i++)
        first[i] = canonical("product_view", sid, "c-3", i * 1000);
    harness_produce(&h, h.topic, sid, (const char *const *)first, 4);
    free_all(first, 4);
    cr_assert_eq(harness_wait_events(&h, sid, 4, 30), 4);
    harness_stop(&h, 20);

    /* Produced while vitrine is down. */
    for (int i = 0; i < 3; i++)
        second[i] = canonical("product_view", sid, "c-4", 10000 + i * 1000);
    harness_produce(&h, h.topic, sid, (const char *const *)second, 3);
    free_all(second, 3);

    harness_start(&h, NULL);
    cr_assert_eq(harness_wait_events(&h, sid, 7, 30), 7, "events produced during the "
                 "downtime were not applied exactly once");
    /* The restarted consumer began at the committed offset: nothing was read twice. */
    cr_expect_eq(harness_metric(&h, "vitrine_events_total{type=\"product_view\","
                                    "outcome=\"applied\"}"), 3);
    cr_expect_eq(harness_metric(&h, "vitrine_events_total{type=\"product_view\","
                                    "outcome=\"duplicate\"}"), 0);
    harness_stop(&h, 20);
}


Test(pipeline, unknown_session_gets_cold_start, .timeout = 60)
{
    struct harness h;

    harness_init(&h, "coldstart");
    harness_start(&h, NULL);

    cJSON *seg = harness_get_json(&h, "/v1/sessions/never-seen/segment", 200);
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(seg, "known")));
    cr_expect_str_eq(json_str(seg, "segment"), "unknown");
    cJSON_Delete(seg);

    cJSON *recs = harness_get_json(&h, "/v1/sessions/never-seen/recommendations", 200);
    cr_expect_str_eq(json_str(recs, "strategy"), "popular");
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(recs, "items")), 10);
    cJSON_Delete(recs);

    harness_stop(&h, 20);
}


Test(pipeline, profile_delete_erases_every_key, .timeout = 90)
{
    struct harness h;
    char *values[2];
    const char *sid = "s-erase-1";
    char *body = NULL;

    harness_init(&h, "erase");
    harness_start(&h, NULL);
    values[0] = canonical("product_view", sid, "w-4", 0);
    values[1] = canonical("add_to_cart", sid, "w-4", 1000);
    harness_produce(&h, h.topic, sid, (const char *const *)values, 2);
    free_all(values, 2);
    cr_assert_eq(harness_wait_events(&h, sid, 2, 30), 2);

    /* "s-erase-1%00x" must not be read as "s-erase-1". */
    cr_assert_eq(harness_http(&h, "DELETE", "/v1/profiles/s-erase-1%00x", NULL, &body, NULL),
                 400);
    free(body);
    cr_assert_eq(harness_wait_events(&h, sid, 2, 1), 2, "the profile was erased by %%00");

    cr_assert_eq(harness_http(&h, "DELETE", "/v1/profiles/s-erase-1", NULL, &body, NULL), 200);
    free(body);
    char *keys = harness_redis(&h, "KEYS %s{%s}:*", h.prefix, sid);
    cr_expect_str_eq(keys, "", "keys left after erasure: %s", keys);
    free(keys);

    /* Idempotent: a second erasure succeeds and removes nothing. */
    cr_assert_eq(harness_http(&h, "DELETE", "/v1/profiles/s-erase-1", NULL, &body, NULL), 200);
    cJSON *json = cJSON_Parse(body);
    cr_expect_eq(json_int(json, "deleted_keys"), 0);
    cJSON_Delete(json);
    free(body);

    harness_stop(&h, 20);
}


Test(pipeline, http_errors_follow_the_error_shape, .timeout = 60)
{
    struct harness h;
    char *body = NULL, *headers = NULL;

    harness_init(&h, "errors");
    harness_start(&h, NULL);

    cJSON *err = harness_get_json(&h, "/v1/sessions/bad%7Bid/segment", 400);
    cJSON *e = cJSON_GetObjectItem(err, "error");
    cr_expect_str_eq(json_str(e, "code"), "INVALID_ARGUMENT");
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(e, "retriable")));
    cJSON_Delete(err);

    err = harness_get_json(&h, "/v1/sessions/abc/recommendations?limit=0", 400);
    cr_expect_str_eq(json_str(cJSON_GetObjectItem(err, "error"), "code"), "INVALID_ARGUMENT");
    cJSON_Delete(err);

    err = harness_get_json(&h, "/v1/sessions/abc/recommendations?placement=attic", 400);
    cJSON_Delete(err);

    err = harness_get_json(&h, "/v1/nothing-here", 404);
    cr_expect_str_eq(json_str(cJSON_GetObjectItem(err, "error"), "code"), "NOT_FOUND");
    cJSON_Delete(err);

    int status = harness_http(&h, "POST", "/v1/profiles/abc", "Content-Length: 0\r\n", &body,
                              &headers);
    cr_expect_eq(status, 405);
    cr_expect(strstr(headers, "Allow: GET, DELETE") != NULL, "no Allow header: %s", headers);
    free(body);
    free(headers);

    /* A NUL escape must not cut the id short. */
    err = harness_get_json(&h, "/v1/profiles/abc%00junk", 400);
    cr_expect_str_eq(json_str(cJSON_GetObjectItem(err, "error"), "code"), "INVALID_ARGUMENT");
    cJSON_Delete(err);
    err = harness_get_json(&h, "/v1/sessions/a%00b/segment", 400);
    cJSON_Delete(err);

    char longurl[9000] = "/v1/sessions/abc/recommendations?exclude=";
    size_t used = strlen(longurl);
    memset(longurl + used, 'x', sizeof longurl - used - 1);
    longurl[sizeof longurl - 1] = '\0';
    err = harness_get_json(&h, longurl, 414);
    cr_expect_str_eq(json_str(cJSON_GetObjectItem(err, "error"), "code"), "URI_TOO_LONG");
    cJSON_Delete(err);

    status = harness_http(&h, "GET", "/v1/sessions/a/segment",
                          "Authorization: bearer whatever\r\n", &body, NULL);
    cr_expect_eq(status, 200, "no token configured: any or no Authorization header passes");
    free(body);

    char longid[300];
    memset(longid, 'a', sizeof longid);
    snprintf(longid, sizeof longid, "/v1/profiles/%0200d", 7);
    err = harness_get_json(&h, longid, 400);
    cJSON_Delete(err);

    status = harness_http(&h, "GET", "/openapi.yaml", NULL, &body, NULL);
    cr_expect_eq(status, 200);
    cr_expect(strstr(body, "openapi: 3") != NULL);
    free(body);

    harness_stop(&h, 20);
}


Test(pipeline, tokens_protect_storefront_and_analyst_routes, .timeout = 60)
{
    struct harness h;
    const char *env[] = {"VITRINE_HTTP_TOKEN_STOREFRONT=shop-secret",
                         "VITRINE_HTTP_TOKEN_ANALYST=analyst-secret", NULL};
    char *body = NULL;

    harness_init(&h, "tokens");
    harness_start(&h, env);

    cr_expect_eq(harness_http(&h, "GET", "/v1/sessions/a/segment", NULL, &body, NULL), 401);
    free(body);
    cr_expect_eq(harness_http(&h, "GET", "/v1/sessions/a/segment",
                              "Authorization: Bearer shop-secret\r\n", &body, NULL), 200);
    free(body);
    cr_expect_eq(harness_http(&h, "GET", "/v1/profiles/a",
                              "Authorization: Bearer shop-secret\r\n", &body, NULL), 401,
                 "the storefront token must not open analyst routes");
    free(body);
    cr_expect_eq(harness_http(&h, "GET", "/v1/profiles/a",
                              "Authorization: Bearer analyst-secret\r\n", &body, NULL), 200);
    free(body);
    cr_expect_eq(harness_http(&h, "GET", "/v1/profiles/a",
                              "Authorization: bearer analyst-secret\r\n", &body, NULL), 200,
                 "the scheme name is case-insensitive");
    free(body);
    cr_expect_eq(harness_http(&h, "GET", "/v1/profiles/a",
                              "Authorization: Bearer analyst-secretX\r\n", &body, NULL), 401);
    free(body);
    cr_expect_eq(harness_http(&h, "GET", "/healthz", NULL, &body, NULL), 200);
    free(body);

    harness_stop(&h, 20);
}


/* A canonical event with a quantity. */
static char *canonical_quantity(const char *type, const char *sid, const char *product,
                                int quantity, int offset_ms)
{
    char stamp[40];
    char *out = malloc(512);

    vt_time_format_iso8601(vt_now_ms() + offset_ms, stamp, sizeof stamp);
    snprintf(out, 512,
             "{\"type\":\"%s\",\"session_id\":\"%s\",\"ts\":\"%s\","
             "\"products\":[{\"id\":\"%s\",\"quantity\":%d}]}",
             type, sid, stamp, product, quantity);
    return out;
}


Test(pipeline, removing_part_of_a_cart_line_keeps_the_rest, .timeout = 90)
{
    struct harness h;
    char *values[4];
    const char *sid = "s-cart-1";

    harness_init(&h, "cart");
    harness_start(&h, NULL);
    values[0] = canonical_quantity("add_to_cart", sid, "c-5", 3, 0);
    values[1] = canonical_quantity("remove_from_cart", sid, "c-5", 1, 1000);
    values[2] = canonical_quantity("add_to_cart", sid, "h-3", 1, 2000);
    values[3] = canonical_quantity("remove_from_cart", sid, "h-3", 5, 3000);
    harness_produce(&h, h.topic, sid, (const char *const *)values, 4);
    free_all(values, 4);
    cr_assert_eq(harness_wait_events(&h, sid, 4, 30), 4);

    cJSON *prof = harness_get_json(&h, "/v1/profiles/s-cart-1", 200);
    cJSON *cart = cJSON_GetObjectItem(prof, "cart");
    cr_assert_eq(cJSON_GetArraySize(cart), 1, "h-3 must be gone, c-5 must remain");
    cr_expect_str_eq(json_str(cJSON_GetArrayItem(cart, 0), "product_id"), "c-5");
    cr_expect_eq(json_int(cJSON_GetArrayItem(cart, 0), "quantity"), 2);
    cJSON_Delete(prof);

    cJSON *recs = harness_get_json(&h, "/v1/sessions/s-cart-1/recommendations?limit=30", 200);
    cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(recs, "items"))
        cr_expect_str_neq(json_str(item, "product_id"), "c-5", "a product in the cart");
    cJSON_Delete(recs);
    harness_stop(&h, 20);
}


struct truncated_seen {
    int count;
    size_t len;
    char reason[64];
};

static void collect_truncated(const char *key, size_t key_len, const char *value, size_t len,
                              const char *reason, void *arg)
{
    struct truncated_seen *seen = arg;

    (void)key;
    (void)key_len;
    (void)value;
    seen->count++;
    seen->len = len;
    vt_strlcpy(seen->reason, reason, sizeof seen->reason);
}


Test(pipeline, large_bad_record_reaches_dead_letter_truncated, .timeout = 90)
{
    struct harness h;
    size_t size = 700 * 1024;
    char *big = malloc(size + 1);
    const char *values[1] = {big};
    struct truncated_seen seen = {0};

    memset(big, '{', size);
    big[size] = '\0';
    harness_init(&h, "bigdead");
    harness_start(&h, NULL);
    harness_produce(&h, h.topic, "k", values, 1);
    for (int i = 0; i < 100 && harness_metric(&h, "vitrine_events_total{type=\"unknown\","
                                                  "outcome=\"dead_letter\"}") < 1; i++)
        harness_sleep_ms(100);

    harness_consume_all(&h, h.dead_letter, 4000, collect_truncated, &seen);
    cr_assert_eq(seen.count, 1);
    cr_expect_eq(seen.len, 64 * 1024, "the copy keeps the first 64 KiB");
    cr_expect_eq(harness_metric(&h, "vitrine_dead_letter_failures_total"), 0);
    free(big);
    harness_stop(&h, 20);
}


Test(pipeline, new_topic_is_not_taken_for_redelivery, .timeout = 120)
{
    struct harness h;
    char *values[2];
    const char *sid = "s-topic-1";

    harness_init(&h, "newtopic");
    harness_start(&h, NULL);
    values[0] = canonical("product_view", sid, "c-6", 0);
    values[1] = canonical("product_view", sid, "c-6", 1000);
    harness_produce(&h, h.topic, sid, (const char *const *)values, 2);
    free_all(values, 2);
    cr_assert_eq(harness_wait_events(&h, sid, 2, 30), 2);
    harness_stop(&h, 20);

    /* Same Redis and key prefix, another topic whose offsets start at 0 again. */
    snprintf(h.topic, sizeof h.topic, "events-%s-v2", h.name);
    snprintf(h.group, sizeof h.group, "vitrine-%s-v2", h.name);
    harness_start(&h, NULL);
    values[0] = canonical("product_view", sid, "c-6", 2000);
    harness_produce(&h, h.topic, sid, (const char *const *)values, 1);
    free_all(values, 1);
    cr_expect_eq(harness_wait_events(&h, sid, 3, 30), 3,
                 "the first record of the new topic was taken for a redelivery");
    harness_stop(&h, 20);
}
