/*
 * Stream aggregates end to end: co-views, trending, impression and click statistics,
 * decisions published to Kafka, rerank and the control group, through the real binary,
 * Redis and the local Kafka broker.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "vitrine/util.h"

/* Environment for a test: fast aggregate refresh and the test's own side topics. */
struct side_env {
    char catalog_topic[160];
    char decisions_topic[160];
    char decisions_name[128];
    const char *list[5];
};

static void side_env_init(struct side_env *e, const struct harness *h, const char *extra)
{
    snprintf(e->decisions_name, sizeof e->decisions_name, "decisions-%s", h->name);
    snprintf(e->catalog_topic, sizeof e->catalog_topic, "VITRINE_KAFKA_CATALOG_TOPIC=catalog-%s",
             h->name);
    snprintf(e->decisions_topic, sizeof e->decisions_topic, "VITRINE_KAFKA_DECISIONS_TOPIC=%s",
             e->decisions_name);
    e->list[0] = "VITRINE_LIVE_REFRESH_MS=200";
    e->list[1] = e->catalog_topic;
    e->list[2] = e->decisions_topic;
    e->list[3] = extra;
    e->list[4] = NULL;
}


/* A canonical event with one product and optional placement, position and decision id. */
static char *event(const char *type, const char *sid, const char *product, int position,
                   const char *placement, int offset_ms)
{
    char stamp[40], extra[160] = "";
    char *out = malloc(640);

    vt_time_format_iso8601(vt_now_ms() + offset_ms, stamp, sizeof stamp);
    if (placement != NULL)
        snprintf(extra, sizeof extra, ",\"placement\":\"%s\"", placement);
    snprintf(out, 640,
             "{\"type\":\"%s\",\"session_id\":\"%s\",\"ts\":\"%s\"%s,"
             "\"products\":[{\"id\":\"%s\",\"quantity\":1,\"position\":%d}]}",
             type, sid, stamp, extra, product, position);
    return out;
}


static void produce_one(const struct harness *h, const char *key, char *value)
{
    const char *values[1] = {value};

    harness_produce(h, h->topic, key, values, 1);
    free(value);
}


static const char *json_str(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    cr_assert(cJSON_IsString(v), "%s is not a string", name);
    return v->valuestring;
}


static double json_num(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    cr_assert(cJSON_IsNumber(v), "%s is not a number", name);
    return v->valuedouble;
}


/* Poll GET path until the array `items` contains product (or timeout); returns the rank
 * (1-based) or 0. */
static int wait_for_item(const struct harness *h, const char *path, const char *product,
                         int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
        cJSON *json = harness_get_json(h, path, 200);
        cJSON *item;
        int rank = 0, found = 0;

        cJSON_ArrayForEach(item, cJSON_GetObjectItem(json, "items")) {
            rank++;
            if (strcmp(json_str(item, "product_id"), product) == 0) {
                found = rank;
                break;
            }
        }
        cJSON_Delete(json);
        if (found)
            return found;
        harness_sleep_ms(100);
    }
    return 0;
}


Test(aggregates, co_views_make_similar_products, .timeout = 90)
{
    struct harness h;
    struct side_env env;

    harness_init(&h, "coview");
    side_env_init(&env, &h, NULL);
    harness_start(&h, env.list);

    /* Three sessions go from w-1 to c-2: they become neighbours. */
    for (int s = 0; s < 3; s++) {
        char sid[32];
        snprintf(sid, sizeof sid, "cv-%d", s);
        produce_one(&h, sid, event("product_view", sid, "w-1", -1, NULL, 0));
        produce_one(&h, sid, event("product_view", sid, "c-2", -1, NULL, 1000));
    }
    cr_assert_eq(harness_wait_events(&h, "cv-2", 2, 30), 2);

    int rank = wait_for_item(&h, "/v1/products/w-1/similar", "c-2", 5000);
    cr_assert_eq(rank, 1, "c-2 should be w-1's first similar product, rank %d", rank);
    cJSON *json = harness_get_json(&h, "/v1/products/c-2/similar", 200);
    cr_expect_gt(json_num(json, "from_neighbors"), 0);
    cr_expect_str_eq(json_str(cJSON_GetArrayItem(cJSON_GetObjectItem(json, "items"), 0),
                              "product_id"), "w-1", "co-views are symmetric");
    cJSON_Delete(json);

    /* A new session that views w-1 gets c-2, from another category and brand, through the
     * neighbour relation; same-brand perfumes compete with it for the first places. */
    produce_one(&h, "cv-new", event("product_view", "cv-new", "w-1", -1, NULL, 2000));
    cr_assert_eq(harness_wait_events(&h, "cv-new", 1, 30), 1);
    json = harness_get_json(&h, "/v1/sessions/cv-new/recommendations?limit=5", 200);
    cJSON *item, *found = NULL;
    int position = 0, found_rank = 0;
    cJSON_ArrayForEach(item, cJSON_GetObjectItem(json, "items")) {
        position++;
        if (found == NULL && strcmp(json_str(item, "product_id"), "c-2") == 0) {
            found = item;
            found_rank = position;
        }
    }
    cr_assert_not_null(found, "c-2 is not among the 5 recommendations");
    cr_expect_leq(found_rank, 3, "c-2 at rank %d", found_rank);
    char *reasons = cJSON_PrintUnformatted(cJSON_GetObjectItem(found, "reasons"));
    cr_expect(strstr(reasons, "similar:w-1") != NULL, "reasons: %s", reasons);
    free(reasons);
    cJSON_Delete(json);

    json = harness_get_json(&h, "/v1/products/nothing-like-this/similar", 404);
    cJSON_Delete(json);
    harness_stop(&h, 20);
}


Test(aggregates, views_and_purchases_make_products_trend, .timeout = 90)
{
    struct harness h;
    struct side_env env;

    harness_init(&h, "trend");
    side_env_init(&env, &h, NULL);
    harness_start(&h, env.list);

    /* h-4 is the least popular product in the catalog file; the stream makes it trend. */
    for (int s = 0; s < 4; s++) {
        char sid[32];
        snprintf(sid, sizeof sid, "tr-%d", s);
        produce_one(&h, sid, event("purchase", sid, "h-4", -1, NULL, 0));
    }
    cr_assert_eq(harness_wait_events(&h, "tr-3", 1, 30), 1);

    cr_expect_eq(wait_for_item(&h, "/v1/trending?limit=5", "h-4", 5000), 1);
    cr_expect_eq(wait_for_item(&h, "/v1/trending?category=hair&limit=5", "h-4", 1000), 1);
    cr_expect_eq(wait_for_item(&h, "/v1/trending?brand=Kessa&limit=5", "h-4", 1000), 1);
    cr_expect_eq(wait_for_item(&h, "/v1/trending?gender=male&limit=30", "h-4", 1000), 1,
                 "unisex products trend for every gender");
    cJSON *json = harness_get_json(&h, "/v1/trending?gender=robot", 400);
    cJSON_Delete(json);
    harness_stop(&h, 20);
}


Test(aggregates, impressions_clicks_and_carts_count_by_position, .timeout = 90)
{
    struct harness h;
    struct side_env env;

    harness_init(&h, "stats");
    side_env_init(&env, &h, NULL);
    harness_start(&h, env.list);

    produce_one(&h, "st-1", event("impression", "st-1", "w-5", 2, "home", 0));
    produce_one(&h, "st-1", event("impression", "st-1", "w-6", 3, "home", 100));
    produce_one(&h, "st-1", event("click", "st-1", "w-5", 2, "home", 200));
    produce_one(&h, "st-1", event("add_to_cart", "st-1", "w-5", -1, NULL, 300));
    produce_one(&h, "st-2", event("impression", "st-2", "w-5", 1, "home", 0));
    cr_assert_eq(harness_wait_events(&h, "st-1", 4, 30), 4);
    cr_assert_eq(harness_wait_events(&h, "st-2", 1, 30), 1);

    cJSON *json = NULL;
    for (int i = 0; i < 50; i++) {
        cJSON_Delete(json);
        json = harness_get_json(&h, "/v1/stats/products/w-5", 200);
        if (json_num(json, "carts") >= 1)
            break;
        harness_sleep_ms(100);
    }
    cr_expect_eq(json_num(json, "impressions"), 2);
    cr_expect_eq(json_num(json, "clicks"), 1);
    cr_expect_float_eq(json_num(json, "ctr"), 0.5, 1e-9);
    cr_expect_eq(json_num(json, "carts"), 1);
    cJSON *pos2 = NULL, *entry;
    cJSON_ArrayForEach(entry, cJSON_GetObjectItem(json, "by_position")) {
        if (cJSON_IsNumber(cJSON_GetObjectItem(entry, "position")) &&
            json_num(entry, "position") == 2)
            pos2 = entry;
    }
    cr_assert_not_null(pos2, "no statistics for position 2");
    cr_expect_eq(json_num(pos2, "impressions"), 1);
    cr_expect_eq(json_num(pos2, "clicks"), 1);
    cr_expect_eq(json_num(pos2, "carts"), 1, "the cart follows the click at position 2");
    cJSON_Delete(json);

    json = harness_get_json(&h, "/v1/stats/placements/home", 200);
    cr_expect_eq(json_num(json, "impressions"), 3);
    cr_expect_eq(json_num(json, "clicks"), 1);
    cr_expect_eq(json_num(json, "carts"), 1);
    cJSON_Delete(json);

    /* The session remembers what it was shown, for rotation. */
    json = harness_get_json(&h, "/v1/profiles/st-1", 200);
    cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(json, "shown")), 2);
    cJSON_Delete(json);

    json = harness_get_json(&h, "/v1/stats/placements/nowhere", 200);
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(json, "known")));
    cJSON_Delete(json);
    harness_stop(&h, 20);
}


Test(aggregates, redelivery_leaves_aggregates_unchanged, .timeout = 120)
{
    struct harness h;
    struct side_env env;

    harness_init(&h, "aggdup");
    side_env_init(&env, &h, NULL);
    harness_start(&h, env.list);
    produce_one(&h, "ad-1", event("impression", "ad-1", "m-4", 1, "home", 0));
    produce_one(&h, "ad-1", event("click", "ad-1", "m-4", 1, "home", 100));
    cr_assert_eq(harness_wait_events(&h, "ad-1", 2, 30), 2);
    for (int i = 0; i < 50 && harness_metric(&h, "vitrine_aggregate_records_total"
                                                 "{outcome=\"applied\"}") < 2; i++)
        harness_sleep_ms(100);
    char *before = harness_redis(&h, "HGETALL %s{agg}:st:p:m-4", h.prefix);
    harness_stop(&h, 20);

    /* A new group reads both records again. */
    snprintf(h.group, sizeof h.group, "vitrine-%s-again", h.name);
    harness_start(&h, env.list);
    for (int i = 0; i < 100 && harness_metric(&h, "vitrine_aggregate_records_total"
                                                  "{outcome=\"duplicate\"}") < 2; i++)
        harness_sleep_ms(100);
    cr_expect_eq(harness_metric(&h, "vitrine_aggregate_records_total{outcome=\"duplicate\"}"), 2);
    char *after = harness_redis(&h, "HGETALL %s{agg}:st:p:m-4", h.prefix);
    cr_expect_str_eq(after, before, "statistics changed on redelivery");
    free(before);
    free(after);
    harness_stop(&h, 20);
}


struct decisions_seen {
    int count;
    char last[4096];
};

static void collect_decision(const char *key, size_t key_len, const char *value, size_t len,
                             const char *reason, void *arg)
{
    struct decisions_seen *seen = arg;

    (void)key;
    (void)key_len;
    (void)reason;
    seen->count++;
    vt_copy_utf8(seen->last, sizeof seen->last, value, len);
}


Test(aggregates, decisions_are_published_with_positions, .timeout = 90)
{
    struct harness h;
    struct side_env env;
    struct decisions_seen seen = {0};

    harness_init(&h, "decisions");
    side_env_init(&env, &h, NULL);
    harness_start(&h, env.list);

    cJSON *recs = harness_get_json(&h, "/v1/sessions/dc-1/recommendations?limit=3", 200);
    char decision_id[64];
    vt_strlcpy(decision_id, json_str(recs, "decision_id"), sizeof decision_id);
    const char *first = json_str(cJSON_GetArrayItem(cJSON_GetObjectItem(recs, "items"), 0),
                                 "product_id");
    char first_id[64];
    vt_strlcpy(first_id, first, sizeof first_id);
    cJSON_Delete(recs);

    for (int i = 0; i < 20 && seen.count == 0; i++)
        harness_consume_all(&h, env.decisions_name, 500, collect_decision, &seen);
    cr_assert_eq(seen.count, 1, "decision records: %d", seen.count);
    cJSON *d = cJSON_Parse(seen.last);
    cr_assert_not_null(d, "decision is not JSON: %s", seen.last);
    cr_expect_str_eq(json_str(d, "decision_id"), decision_id);
    cr_expect_str_eq(json_str(d, "session_id"), "dc-1");
    cr_expect_str_eq(json_str(d, "placement"), "home");
    cJSON *items = cJSON_GetObjectItem(d, "items");
    cr_expect_eq(cJSON_GetArraySize(items), 3);
    cr_expect_str_eq(json_str(cJSON_GetArrayItem(items, 0), "product_id"), first_id);
    cr_expect_eq(json_num(cJSON_GetArrayItem(items, 0), "position"), 1);
    cJSON_Delete(d);
    harness_stop(&h, 20);
}


Test(aggregates, rerank_orders_known_products_first, .timeout = 90)
{
    struct harness h;
    struct side_env env;
    char *body = NULL;

    harness_init(&h, "rerank");
    side_env_init(&env, &h, NULL);
    harness_start(&h, env.list);
    for (int i = 0; i < 3; i++)
        produce_one(&h, "rr-1", event("product_view", "rr-1", "m-1", -1, NULL, i * 100));
    cr_assert_eq(harness_wait_events(&h, "rr-1", 3, 30), 3);

    const char *json = "{\"product_ids\":[\"c-1\",\"zz-unknown\",\"m-2\",\"w-2\"]}";
    int status = harness_http_body(&h, "POST", "/v1/sessions/rr-1/rerank",
                                   "Content-Type: application/json\r\n", json, &body, NULL);
    cr_assert_eq(status, 200, "rerank: %d %s", status, body ? body : "");
    cJSON *res = cJSON_Parse(body);
    cJSON *items = cJSON_GetObjectItem(res, "items");
    cr_assert_eq(cJSON_GetArraySize(items), 4);
    cr_expect_str_eq(json_str(cJSON_GetArrayItem(items, 0), "product_id"), "m-2",
                     "the session viewed Norvik men's perfume");
    cr_expect_str_eq(json_str(cJSON_GetArrayItem(items, 3), "product_id"), "zz-unknown");
    cr_expect(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetArrayItem(items, 3), "known")));
    cJSON_Delete(res);
    free(body);

    status = harness_http_body(&h, "POST", "/v1/sessions/rr-1/rerank", NULL, "{\"x\": 1}",
                               &body, NULL);
    cr_expect_eq(status, 400);
    free(body);
    harness_stop(&h, 20);
}


Test(aggregates, control_group_gets_the_non_personal_list, .timeout = 90)
{
    struct harness h;
    struct side_env env;

    harness_init(&h, "control");
    side_env_init(&env, &h, "VITRINE_REC_CONTROL_PERCENT=100");
    harness_start(&h, env.list);
    for (int i = 0; i < 3; i++)
        produce_one(&h, "cg-1", event("product_view", "cg-1", "m-1", -1, NULL, i * 100));
    cr_assert_eq(harness_wait_events(&h, "cg-1", 3, 30), 3);

    cJSON *json = harness_get_json(&h, "/v1/sessions/cg-1/recommendations", 200);
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(json, "control")));
    const char *strategy = json_str(json, "strategy");
    cr_expect(strcmp(strategy, "trending") == 0 || strcmp(strategy, "popular") == 0,
              "control strategy %s", strategy);
    cr_expect_gt(cJSON_GetArraySize(cJSON_GetObjectItem(json, "items")), 0);
    cJSON_Delete(json);
    harness_stop(&h, 20);
}


Test(aggregates, one_session_repeating_views_does_not_steer_trending, .timeout = 90)
{
    struct harness h;
    struct side_env env;

    harness_init(&h, "bot");
    side_env_init(&env, &h, NULL);
    harness_start(&h, env.list);

    /* One session alternates between two products twenty times... */
    for (int i = 0; i < 20; i++)
        produce_one(&h, "bot-1", event("product_view", "bot-1", i % 2 ? "h-1" : "h-2", -1, NULL,
                                       i * 10));
    /* ...while three sessions view c-6 once each. */
    for (int s = 0; s < 3; s++) {
        char sid[32];
        snprintf(sid, sizeof sid, "real-%d", s);
        produce_one(&h, sid, event("product_view", sid, "c-6", -1, NULL, 300));
    }
    cr_assert_eq(harness_wait_events(&h, "bot-1", 20, 30), 20);
    cr_assert_eq(harness_wait_events(&h, "real-2", 1, 30), 1);

    cr_expect_eq(wait_for_item(&h, "/v1/trending?limit=5", "c-6", 5000), 1,
                 "three sessions outweigh one session's twenty views");
    cJSON *json = harness_get_json(&h, "/v1/products/h-1/similar?limit=3", 200);
    cr_expect_leq(json_num(json, "from_neighbors"), 1);
    cJSON_Delete(json);
    harness_stop(&h, 20);
}


Test(aggregates, rerank_control_group_keeps_the_page_order, .timeout = 90)
{
    struct harness h;
    struct side_env env;
    char *body = NULL;

    harness_init(&h, "rerankcontrol");
    side_env_init(&env, &h, "VITRINE_REC_CONTROL_PERCENT=100");
    harness_start(&h, env.list);
    for (int i = 0; i < 3; i++)
        produce_one(&h, "rc-1", event("product_view", "rc-1", "m-1", -1, NULL, i * 100));
    cr_assert_eq(harness_wait_events(&h, "rc-1", 3, 30), 3);

    int status = harness_http_body(&h, "POST", "/v1/sessions/rc-1/rerank", NULL,
                                   "{\"product_ids\":[\"c-1\",12345678901234,\"m-2\"]}",
                                   &body, NULL);
    cr_assert_eq(status, 200, "%s", body);
    cJSON *res = cJSON_Parse(body);
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(res, "control")));
    cJSON *items = cJSON_GetObjectItem(res, "items");
    cr_expect_str_eq(json_str(cJSON_GetArrayItem(items, 0), "product_id"), "c-1");
    cr_expect_str_eq(json_str(cJSON_GetArrayItem(items, 1), "product_id"), "12345678901234",
                     "an unknown integer id comes back as its decimal text");
    cr_expect_str_eq(json_str(cJSON_GetArrayItem(items, 2), "product_id"), "m-2");
    cJSON_Delete(res);
    free(body);

    status = harness_http_body(&h, "POST", "/v1/sessions/rc-1/rerank", NULL,
                               "{\"product_ids\":[\"m-2\\u0000x\"]}", &body, NULL);
    cr_expect_eq(status, 400, "an escaped NUL must not cut the id short: %s", body);
    free(body);
    harness_stop(&h, 20);
}
