/*
 * vitrine: the storefront's per-session endpoints: segment, recommendations and rerank.
 *
 * Each handler reads as: validate the request, read the profile (one Redis round trip),
 * compute against the request's world version, write the JSON reply, publish the
 * decision. They run on HTTP worker threads and touch no shared mutable state besides
 * metrics and the decisions producer's queue.
 */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "api_internal.h"
#include "vitrine/log.h"
#include "vitrine/profile.h"
#include "vitrine/recommend.h"
#include "vitrine/segments_live.h"
#include "vitrine/store.h"
#include "vitrine/util.h"

/* Entries of each ranked list shown by /segment. */
#define SEGMENT_TOP 5
/* Largest decision record published to Kafka. */
#define DECISION_RECORD_MAX (128 * 1024)

/* Per worker thread: the profile being served, the result, and the decision record (each
 * too large for a comfortable stack). */
static _Thread_local struct vt_profile worker_profile;
static _Thread_local struct vt_visitor_profile worker_visitor;
static _Thread_local struct vt_rec_result worker_result;
static _Thread_local struct vt_rerank_item worker_rerank[VT_RERANK_MAX];
static _Thread_local uint32_t worker_rerank_input[VT_RERANK_MAX];
static _Thread_local char worker_decision[DECISION_RECORD_MAX];

enum MHD_Result vt_reply_invalid_id(struct vt_request *req, const char *what)
{
    return vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                          "invalid %s id: expected %s", what, vt_id_rule);
}


bool vt_api_product_id_valid(const char *s, size_t len)
{
    if (len == 0 || len > VT_PRODUCT_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F)
            return false;
    }
    /* Catalog ids are UTF-8; an id that is not could not be in the catalog, and an error
     * message that echoed it would not be valid JSON. */
    return vt_utf8_valid(s, len);
}


/* Failed profile reads not logged yet, and the time of the last line about them. Shared
 * by the HTTP workers (atomics), so that a Redis outage writes one line per
 * PROFILE_WARN_INTERVAL_S instead of one per request. */
#define PROFILE_WARN_INTERVAL_S 10
static atomic_uint_fast64_t profile_failures_unlogged;
static atomic_uint_fast64_t profile_warned_ns;

static void warn_profile_failure(const struct vt_request *req, const char *err)
{
    uint64_t now = vt_monotonic_ns();
    uint64_t last = atomic_load(&profile_warned_ns);

    atomic_fetch_add(&profile_failures_unlogged, 1);
    if (last != 0 && now - last < PROFILE_WARN_INTERVAL_S * 1000000000ull)
        return;
    if (!atomic_compare_exchange_strong(&profile_warned_ns, &last, now))
        return; /* another worker writes the line */
    uint64_t n = atomic_exchange(&profile_failures_unlogged, 0);
    VT_WARN("HTTP", "%" PRIu64 " profile reads failed since the last report (route %s: %s); "
            "storefront answers: %s", n, vt_route_name(req->route), err,
            strcmp(req->api->cfg->http_on_redis_error, "cold_start") == 0
                ? "cold start (http.on_redis_error)" : "503");
}


/* Find the analyst segments the profile is in. A storefront request counts them as
 * served. */
static void evaluate_segments(struct vt_request *req, struct vt_profile *p)
{
    struct vt_segments_live *live = req->api->segments;
    struct vt_gender_estimate gender;

    if (live == NULL)
        return;
    p->segments = vt_segments_live_current(live);
    req->segments_now_ms = vt_segments_live_now_ms(live);
    vt_gender_estimate(p->gender_log_odds, p->gender_evidence, req->api->cfg, &gender);
    struct vt_segment_facts facts = {.profile = p, .gender = &gender,
                                     .now_ms = req->segments_now_ms};
    p->segment_mask = vt_segments_evaluate(p->segments, &facts);

    bool storefront = req->route == VT_ROUTE_SEGMENT || req->route == VT_ROUTE_RECOMMENDATIONS ||
                      req->route == VT_ROUTE_RERANK;
    if (storefront && p->segment_mask != 0)
        vt_segments_count_served((struct vt_segments *)p->segments, p->segment_mask);
}


bool vt_api_read_profile(struct vt_request *req, struct vt_profile *p, enum MHD_Result *reply)
{
    char err[512];

    /* A connection that Redis closed while idle (a restart, a timeout on the server side)
     * fails only on its next use, and at once: then reconnect and try once more. A failure
     * that took half of redis.timeout_ms or more was a timeout, and a second try would
     * make the request wait longer than that budget. */
    uint64_t started = vt_monotonic_ns();
    uint64_t half_budget = (uint64_t)req->api->cfg->redis_timeout_ms * 500000u;
    for (int attempt = 0; attempt < 2; attempt++) {
        bool reused = vt_api_worker_store_connected();
        struct vt_store *st = vt_api_worker_store(req->api, err, sizeof err);

        if (st != NULL &&
            vt_store_profile_read_linked(st, req->id, req->id_len, vt_now_ms(), p,
                                         &worker_visitor, err, sizeof err) == 0) {
            evaluate_segments(req, p);
            return true;
        }
        vt_api_worker_store_reset();
        if (!reused || vt_monotonic_ns() - started >= half_budget)
            break;
    }

    vt_metrics_redis_error(VT_REDIS_HTTP);
    warn_profile_failure(req, err);

    /* The storefront may prefer a page without personalization to no page. */
    bool storefront = req->route == VT_ROUTE_SEGMENT || req->route == VT_ROUTE_RECOMMENDATIONS ||
                      req->route == VT_ROUTE_RERANK;
    if (storefront && strcmp(req->api->cfg->http_on_redis_error, "cold_start") == 0) {
        vt_profile_clear(p);
        evaluate_segments(req, p);
        req->degraded = true;
        vt_metrics_degraded(req->route);
        return true;
    }
    *reply = vt_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "UNAVAILABLE", true,
                            "profile store unavailable; retry shortly");
    return false;
}


/* Write "degraded": true when the profile read failed and the response is a cold start.
 * Writes nothing otherwise. */
static void write_degraded(struct vt_jsonw *w, const struct vt_request *req)
{
    if (!req->degraded)
        return;
    vt_jsonw_key(w, "degraded");
    vt_jsonw_bool(w, true);
}


void vt_api_write_scored(struct vt_jsonw *w, const char *key,
                         const struct vt_scored_name *list, size_t n, size_t max)
{
    double total = 0;

    for (size_t i = 0; i < n; i++)
        total += list[i].value;
    vt_jsonw_key(w, key);
    vt_jsonw_array_begin(w);
    for (size_t i = 0; i < n && i < max; i++) {
        vt_jsonw_object_begin(w);
        vt_jsonw_key(w, "name");
        vt_jsonw_string(w, list[i].name);
        vt_jsonw_key(w, "score");
        vt_jsonw_double(w, list[i].value);
        vt_jsonw_key(w, "share");
        vt_jsonw_double(w, total > 0 ? list[i].value / total : 0);
        vt_jsonw_object_end(w);
    }
    vt_jsonw_array_end(w);
}


enum MHD_Result vt_handle_segment(struct vt_request *req)
{
    const struct vt_config *cfg = req->api->cfg;
    const struct vt_profile *p = &worker_profile;
    struct vt_gender_estimate est;
    enum MHD_Result reply;
    struct vt_jsonw w;

    bool explain;

    if (!vt_id_valid(req->id, req->id_len))
        return vt_reply_invalid_id(req, "session");
    if (!vt_api_query_flag(req, "explain", &explain, &reply))
        return reply;
    if (!vt_api_read_profile(req, &worker_profile, &reply))
        return reply;

    vt_gender_estimate(p->gender_log_odds, p->gender_evidence, cfg, &est);
    vt_jsonw_init(&w, vt_api_worker_buffer(), VT_RESPONSE_MAX);
    vt_jsonw_object_begin(&w);
    vt_jsonw_key(&w, "session_id");
    vt_jsonw_stringn(&w, req->id, req->id_len);
    write_degraded(&w, req);
    vt_jsonw_key(&w, "known");
    vt_jsonw_bool(&w, p->exists);
    vt_jsonw_key(&w, "segment");
    vt_jsonw_string(&w, vt_segment_name(est.segment));
    vt_jsonw_key(&w, "probability");
    vt_jsonw_double(&w, est.probability);
    vt_jsonw_key(&w, "p_female");
    vt_jsonw_double(&w, est.p_female);
    vt_jsonw_key(&w, "evidence");
    vt_jsonw_int(&w, p->gender_evidence);
    vt_jsonw_key(&w, "price_tier");
    if (p->n_tiers > 0)
        vt_jsonw_string(&w, p->tiers[0].name);
    else
        vt_jsonw_null(&w);
    vt_api_write_scored(&w, "top_categories", p->categories, p->n_categories, SEGMENT_TOP);
    vt_api_write_scored(&w, "top_brands", p->brands, p->n_brands, SEGMENT_TOP);
    vt_jsonw_key(&w, "personalised");
    vt_jsonw_bool(&w, !p->consent_denied);
    vt_api_write_segments(&w, req, p, explain);
    vt_jsonw_object_end(&w);
    return vt_reply_writer(req, MHD_HTTP_OK, &w);
}


/* ---- recommendations ---- */

/* Split a comma-separated parameter and look each name up with find; unknown names are
 * skipped. Returns false (after queueing a 400) on a malformed or too long list. */
static bool parse_name_list(struct vt_request *req, const char *param, const char *value,
                            uint32_t (*find)(const struct vt_catalog *, const char *, size_t),
                            uint32_t *out, size_t *n, enum MHD_Result *reply)
{
    const struct vt_catalog *cat = req->world->catalog;
    size_t given = 0;

    for (const char *p = value; p != NULL && *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);

        if (len > VT_NAME_MAX || ++given > VT_REC_FILTER_MAX) {
            *reply = vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                                    "invalid %s: at most %d comma-separated names of at most "
                                    "%d bytes", param, VT_REC_FILTER_MAX, VT_NAME_MAX);
            return false;
        }
        uint32_t idx = len > 0 ? find(cat, p, len) : VT_CATALOG_NONE;
        if (idx != VT_CATALOG_NONE)
            out[(*n)++] = idx;
        p = comma ? comma + 1 : NULL;
    }
    return true;
}


static bool parse_price(struct vt_request *req, const char *param, double *out,
                        enum MHD_Result *reply)
{
    const char *value = vt_query(req, param);

    *out = -1;
    if (value == NULL)
        return true;
    if (vt_parse_double(value, 0, 1e9, out) != 0) {
        *reply = vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                                "invalid %s: expected a number from 0 to 1000000000", param);
        return false;
    }
    return true;
}


/* Parse the query of a recommendations request into *rr. Returns false after queueing a
 * 400 reply into *reply. */
static bool parse_rec_request(struct vt_request *req, struct vt_rec_request *rr,
                              enum MHD_Result *reply)
{
    const struct vt_config *cfg = req->api->cfg;
    const struct vt_catalog *cat = req->world->catalog;
    const char *placement = vt_query(req, "placement");
    const char *product = vt_query(req, "product");
    const char *category = vt_query(req, "category");
    const char *brand = vt_query(req, "brand");
    const char *gender = vt_query(req, "gender");
    const char *limit = vt_query(req, "limit");
    const char *exclude = vt_query(req, "exclude");
    bool has_category;
    int64_t n;

    vt_rec_request_init(rr, (size_t)cfg->rec_limit_default);

    if (placement != NULL && vt_placement_parse(placement, strlen(placement), &rr->placement)) {
        *reply = vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                                "invalid placement: expected one of home, product, cart, "
                                "category, search");
        return false;
    }
    if (limit != NULL && vt_parse_int64(limit, 1, VT_REC_LIMIT_MAX, &n) != 0) {
        *reply = vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                                "invalid limit: expected an integer from 1 to %d",
                                VT_REC_LIMIT_MAX);
        return false;
    }
    if (limit != NULL)
        rr->limit = (size_t)n;

    if (product != NULL) {
        if (!vt_api_product_id_valid(product, strlen(product))) {
            *reply = vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                                    "invalid product: expected 1 to %d bytes of UTF-8 without "
                                    "control characters", VT_PRODUCT_ID_MAX);
            return false;
        }
        rr->product = vt_catalog_find(cat, product, strlen(product));
    } else if (rr->placement == VT_PLACEMENT_PRODUCT) {
        *reply = vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                                "placement product needs the product parameter (the id of "
                                "the product on the page)");
        return false;
    }

    has_category = category != NULL && category[0] != '\0';
    if (!has_category && rr->placement == VT_PLACEMENT_CATEGORY) {
        *reply = vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                                "placement category needs the category parameter");
        return false;
    }
    if (!parse_name_list(req, "category", category, vt_catalog_category_find, rr->categories,
                         &rr->n_categories, reply) ||
        !parse_name_list(req, "brand", brand, vt_catalog_brand_find, rr->brands,
                         &rr->n_brands, reply))
        return false;

    if (gender != NULL) {
        rr->gender = vt_gender_parse(gender, strlen(gender));
        if (rr->gender == VT_GENDER_UNKNOWN) {
            *reply = vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                                    "invalid gender: expected female, male or unisex");
            return false;
        }
    }
    if (!parse_price(req, "price_min", &rr->price_min, reply) ||
        !parse_price(req, "price_max", &rr->price_max, reply))
        return false;
    if (rr->price_min >= 0 && rr->price_max >= 0 && rr->price_min > rr->price_max) {
        *reply = vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                                "invalid price range: price_min %g exceeds price_max %g",
                                rr->price_min, rr->price_max);
        return false;
    }

    /* exclude=id1,id2,...: unknown ids are ignored, malformed ones rejected. */
    size_t given = 0;
    for (const char *p = exclude; p != NULL && *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);

        if (len > 0) {
            if (!vt_api_product_id_valid(p, len)) {
                *reply = vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                                        "invalid exclude: each comma-separated id must have 1 "
                                        "to %d bytes of UTF-8 without control characters",
                                        VT_PRODUCT_ID_MAX);
                return false;
            }
            if (++given > VT_REC_EXCLUDE_MAX) {
                *reply = vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                                        "invalid exclude: at most %d ids", VT_REC_EXCLUDE_MAX);
                return false;
            }
            uint32_t idx = vt_catalog_find(cat, p, len);
            if (idx != VT_CATALOG_NONE)
                rr->exclude[rr->n_exclude++] = idx;
        }
        p = comma ? comma + 1 : NULL;
    }

    rr->control = vt_rec_in_control_group(cfg, req->id, req->id_len);
    return true;
}


static void write_reasons(struct vt_jsonw *w, const struct vt_catalog *cat,
                          const struct vt_rec_item *item, const struct vt_product *prod,
                          enum vt_segment segment)
{
    vt_jsonw_key(w, "reasons");
    vt_jsonw_array_begin(w);
    if ((item->reasons & VT_REASON_CATEGORY) && item->category != VT_CATALOG_NONE)
        vt_jsonw_string_prefixed(w, "category:", vt_catalog_category_name(cat, item->category));
    if ((item->reasons & VT_REASON_BRAND) && prod->brand != VT_CATALOG_NONE)
        vt_jsonw_string_prefixed(w, "brand:", vt_catalog_brand_name(cat, prod->brand));
    if (item->reasons & VT_REASON_PRICE_TIER)
        vt_jsonw_string_prefixed(w, "price_tier:", vt_price_tier_name(prod->tier));
    if (item->reasons & VT_REASON_GENDER)
        vt_jsonw_string_prefixed(w, "gender:", vt_segment_name(segment));
    if ((item->reasons & (VT_REASON_SIMILAR | VT_REASON_BOUGHT_TOGETHER)) &&
        item->via != VT_CATALOG_NONE) {
        const char *via = vt_catalog_get(cat, item->via)->id;
        if (item->reasons & VT_REASON_SIMILAR)
            vt_jsonw_string_prefixed(w, "similar:", via);
        if (item->reasons & VT_REASON_BOUGHT_TOGETHER)
            vt_jsonw_string_prefixed(w, "bought_together:", via);
    }
    if (item->reasons & VT_REASON_SAME_CATEGORY)
        vt_jsonw_string(w, "same_category");
    if (item->reasons & VT_REASON_TRENDING)
        vt_jsonw_string(w, "trending");
    if (item->reasons & VT_REASON_POPULAR)
        vt_jsonw_string(w, "popular");
    if ((item->reasons & VT_REASON_BOOSTED) && item->rule != NULL)
        vt_jsonw_string_prefixed(w, "boosted:", item->rule);
    if ((item->reasons & VT_REASON_PINNED) && item->pin_rule != NULL)
        vt_jsonw_string_prefixed(w, "pinned:", item->pin_rule);
    if (item->reasons & VT_REASON_FALLBACK)
        vt_jsonw_string(w, "fallback");
    vt_jsonw_array_end(w);
}


/* Write the decision's subject: the session id, or null for a session without consent,
 * because nothing about such a session is kept. The decision id alone still ties
 * impressions and clicks to the decision. Then write the session's analyst segments. */
static void write_decision_subject(struct vt_jsonw *w, const struct vt_request *req)
{
    const struct vt_profile *p = &worker_profile;

    vt_jsonw_key(w, "session_id");
    if (p->consent_denied)
        vt_jsonw_null(w);
    else
        vt_jsonw_stringn(w, req->id, req->id_len);
    vt_api_write_segments(w, req, p, false);
}


/* Hand the record in worker_decision to the producer, keyed by session, or by decision
 * for a session without consent. */
static void publish_record(struct vt_request *req, const char *decision_id, size_t len)
{
    if (worker_profile.consent_denied)
        vt_decisions_publish(req->api->decisions, decision_id, strlen(decision_id),
                             worker_decision, len);
    else
        vt_decisions_publish(req->api->decisions, req->id, req->id_len, worker_decision, len);
}


/* Publish the decision record: what this session was shown, in which order. */
static void publish_decision(struct vt_request *req, const char *decision_id,
                             const char *placement, const char *strategy, bool control,
                             enum vt_segment segment, const struct vt_rec_item *items, size_t n)
{
    const struct vt_catalog *cat = req->world->catalog;
    char stamp[40];
    struct vt_jsonw w;
    int64_t len;

    vt_time_format_iso8601(vt_now_ms(), stamp, sizeof stamp);
    vt_jsonw_init(&w, worker_decision, sizeof worker_decision);
    vt_jsonw_object_begin(&w);
    vt_jsonw_key(&w, "decision_id");
    vt_jsonw_string(&w, decision_id);
    vt_jsonw_key(&w, "ts");
    vt_jsonw_string(&w, stamp);
    write_decision_subject(&w, req);
    write_degraded(&w, req);
    vt_jsonw_key(&w, "placement");
    vt_jsonw_string(&w, placement);
    vt_jsonw_key(&w, "strategy");
    vt_jsonw_string(&w, strategy);
    vt_jsonw_key(&w, "control");
    vt_jsonw_bool(&w, control);
    vt_jsonw_key(&w, "segment");
    vt_jsonw_string(&w, vt_segment_name(segment));
    vt_jsonw_key(&w, "items");
    vt_jsonw_array_begin(&w);
    for (size_t i = 0; i < n; i++) {
        vt_jsonw_object_begin(&w);
        vt_jsonw_key(&w, "product_id");
        vt_jsonw_string(&w, vt_catalog_get(cat, items[i].product)->id);
        vt_jsonw_key(&w, "position");
        vt_jsonw_int(&w, (int64_t)i + 1);
        vt_jsonw_key(&w, "score");
        vt_jsonw_double(&w, items[i].score);
        vt_jsonw_object_end(&w);
    }
    vt_jsonw_array_end(&w);
    vt_jsonw_object_end(&w);
    len = vt_jsonw_finish(&w);
    if (len > 0)
        publish_record(req, decision_id, (size_t)len);
}


/* Recommendations for the session. A storefront request (publish) gets a decision id, and
 * its decision goes to the decisions topic. An analyst's look (the dashboard) gets the same
 * list without either, so that looking leaves no decision to attribute clicks to. */
static enum MHD_Result recommend(struct vt_request *req, bool publish)
{
    const struct vt_catalog *cat = req->world->catalog;
    struct vt_rec_request rr;
    struct vt_rec_result *res = &worker_result;
    enum MHD_Result reply;
    struct vt_jsonw w;
    char decision_id[40];

    if (!vt_id_valid(req->id, req->id_len))
        return vt_reply_invalid_id(req, "session");
    if (!parse_rec_request(req, &rr, &reply))
        return reply;
    if (!vt_api_read_profile(req, &worker_profile, &reply))
        return reply;

    vt_recommend(req->world, req->api->cfg, req->api->rules, &worker_profile, &rr, res);
    vt_uuid7(decision_id, sizeof decision_id);

    vt_jsonw_init(&w, vt_api_worker_buffer(), VT_RESPONSE_MAX);
    vt_jsonw_object_begin(&w);
    if (publish) {
        vt_jsonw_key(&w, "decision_id");
        vt_jsonw_string(&w, decision_id);
    } else {
        vt_jsonw_key(&w, "preview");
        vt_jsonw_bool(&w, true);
    }
    vt_jsonw_key(&w, "session_id");
    vt_jsonw_stringn(&w, req->id, req->id_len);
    write_degraded(&w, req);
    vt_jsonw_key(&w, "placement");
    vt_jsonw_string(&w, vt_placement_name(rr.placement));
    vt_jsonw_key(&w, "strategy");
    vt_jsonw_string(&w, vt_rec_strategy_name(res->strategy));
    vt_jsonw_key(&w, "control");
    vt_jsonw_bool(&w, res->control);
    vt_jsonw_key(&w, "segment");
    vt_jsonw_string(&w, vt_segment_name(res->segment));
    vt_jsonw_key(&w, "items");
    vt_jsonw_array_begin(&w);
    for (size_t i = 0; i < res->n; i++) {
        const struct vt_rec_item *item = &res->items[i];
        const struct vt_product *prod = vt_catalog_get(cat, item->product);

        vt_jsonw_object_begin(&w);
        vt_jsonw_key(&w, "product_id");
        vt_jsonw_string(&w, prod->id);
        vt_jsonw_key(&w, "position");
        vt_jsonw_int(&w, (int64_t)i + 1);
        vt_jsonw_key(&w, "score");
        vt_jsonw_double(&w, item->score);
        if (prod->name[0] != '\0') {
            vt_jsonw_key(&w, "name");
            vt_jsonw_string(&w, prod->name);
        }
        if (prod->brand != VT_CATALOG_NONE) {
            vt_jsonw_key(&w, "brand");
            vt_jsonw_string(&w, vt_catalog_brand_name(cat, prod->brand));
        }
        if (prod->price >= 0) {
            vt_jsonw_key(&w, "price");
            vt_jsonw_double(&w, prod->price);
        }
        write_reasons(&w, cat, item, prod, res->segment);
        vt_jsonw_object_end(&w);
    }
    vt_jsonw_array_end(&w);
    vt_jsonw_object_end(&w);

    reply = vt_reply_writer(req, MHD_HTTP_OK, &w);
    if (publish)
        publish_decision(req, decision_id, vt_placement_name(rr.placement),
                         vt_rec_strategy_name(res->strategy), res->control, res->segment,
                         res->items, res->n);
    return reply;
}


enum MHD_Result vt_handle_recommendations(struct vt_request *req)
{
    return recommend(req, true);
}


enum MHD_Result vt_handle_recommendations_preview(struct vt_request *req)
{
    return recommend(req, false);
}


/* ---- rerank ---- */

/* The text of a requested id as it is echoed and published: the string as sent, or a
 * non-negative integer printed without exponent. */
static const char *rerank_id_text(const cJSON *given, char *buf, size_t bufsize)
{
    if (cJSON_IsString(given))
        return given->valuestring;
    snprintf(buf, bufsize, "%" PRIu64, (uint64_t)given->valuedouble);
    return buf;
}


/* Read the ids of {"product_ids": [...]} (root, parsed from the body) into catalog
 * indexes (VT_CATALOG_NONE for unknown ids). Returns the count, or -1 after queueing a
 * 400. */
static int64_t read_rerank_ids(struct vt_request *req, const cJSON *root, uint32_t *out,
                               enum MHD_Result *reply)
{
    const struct vt_catalog *cat = req->world->catalog;
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(root, "product_ids");
    const cJSON *item;
    const char *problem = NULL;
    int64_t n = 0;

    if (root == NULL || !cJSON_IsObject(root))
        problem = "the body is not a JSON object";
    else if (!cJSON_IsArray(ids))
        problem = "product_ids must be an array of product ids";
    else if (cJSON_GetArraySize(ids) > VT_RERANK_MAX)
        problem = "product_ids has more ids than the limit";

    if (problem == NULL) {
        cJSON_ArrayForEach(item, ids)
        {
            char number[32];
            const char *id = NULL;

            if (cJSON_IsString(item) &&
                vt_api_product_id_valid(item->valuestring, strlen(item->valuestring)) &&
                vt_utf8_valid(item->valuestring, strlen(item->valuestring))) {
                id = item->valuestring;
            } else if (cJSON_IsNumber(item) && item->valuedouble >= 0 &&
                       item->valuedouble <= 9007199254740992.0 &&
                       item->valuedouble == floor(item->valuedouble)) {
                id = rerank_id_text(item, number, sizeof number);
            }
            if (id == NULL) {
                problem = "each product id must be a string of 1 to 128 bytes of UTF-8 without "
                          "control characters, or a non-negative integer";
                break;
            }
            out[n++] = vt_catalog_find(cat, id, strlen(id));
        }
    }
    if (problem != NULL) {
        *reply = vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                                "invalid rerank body: %s; send {\"product_ids\": [\"id\", ...]} "
                                "with at most %d ids", problem, VT_RERANK_MAX);
        return -1;
    }
    return n;
}


/* The page's own order, for the control group: every product with score 0. */
static void rerank_unchanged(const uint32_t *products, size_t n, struct vt_rerank_item *out)
{
    for (size_t i = 0; i < n; i++) {
        out[i].product = products[i];
        out[i].input = i;
        out[i].score = 0;
    }
}


/* Write the items of a rerank, as the response's "items" array or the decision's. */
static void write_rerank_items(struct vt_jsonw *w, const struct vt_catalog *cat,
                               const cJSON *ids, size_t n, bool with_known)
{
    vt_jsonw_key(w, "items");
    vt_jsonw_array_begin(w);
    for (size_t i = 0; i < n; i++) {
        const struct vt_rerank_item *item = &worker_rerank[i];
        char number[32];

        vt_jsonw_object_begin(w);
        vt_jsonw_key(w, "product_id");
        if (item->product != VT_CATALOG_NONE)
            vt_jsonw_string(w, vt_catalog_get(cat, item->product)->id);
        else
            vt_jsonw_string(w, rerank_id_text(cJSON_GetArrayItem(ids, (int)item->input), number,
                                              sizeof number));
        vt_jsonw_key(w, "position");
        vt_jsonw_int(w, (int64_t)i + 1);
        vt_jsonw_key(w, "score");
        vt_jsonw_double(w, item->score);
        if (with_known) {
            vt_jsonw_key(w, "known");
            vt_jsonw_bool(w, item->product != VT_CATALOG_NONE);
        }
        vt_jsonw_object_end(w);
    }
    vt_jsonw_array_end(w);
}


/* Publish a rerank's decision: every requested product in the new order, unknown ones
 * included, as the response lists them. */
static void publish_rerank_decision(struct vt_request *req, const char *decision_id,
                                    bool control, enum vt_segment segment, const cJSON *ids,
                                    size_t n)
{
    char stamp[40];
    struct vt_jsonw w;
    int64_t len;

    vt_time_format_iso8601(vt_now_ms(), stamp, sizeof stamp);
    vt_jsonw_init(&w, worker_decision, sizeof worker_decision);
    vt_jsonw_object_begin(&w);
    vt_jsonw_key(&w, "decision_id");
    vt_jsonw_string(&w, decision_id);
    vt_jsonw_key(&w, "ts");
    vt_jsonw_string(&w, stamp);
    write_decision_subject(&w, req);
    write_degraded(&w, req);
    vt_jsonw_key(&w, "placement");
    vt_jsonw_string(&w, "rerank");
    vt_jsonw_key(&w, "strategy");
    vt_jsonw_string(&w, control ? "page_order" : "rerank");
    vt_jsonw_key(&w, "control");
    vt_jsonw_bool(&w, control);
    vt_jsonw_key(&w, "segment");
    vt_jsonw_string(&w, vt_segment_name(segment));
    write_rerank_items(&w, req->world->catalog, ids, n, true);
    vt_jsonw_object_end(&w);
    len = vt_jsonw_finish(&w);
    if (len > 0)
        publish_record(req, decision_id, (size_t)len);
    else
        VT_WARN("HTTP", "rerank decision of %zu items exceeds %d bytes and is not published",
                n, DECISION_RECORD_MAX);
}


enum MHD_Result vt_handle_rerank(struct vt_request *req)
{
    const struct vt_config *cfg = req->api->cfg;
    struct vt_gender_estimate est;
    enum MHD_Result reply;
    struct vt_jsonw w;
    char decision_id[40];
    const cJSON *ids;
    cJSON *root;
    bool control;
    int64_t n;

    if (!vt_id_valid(req->id, req->id_len))
        return vt_reply_invalid_id(req, "session");
    if (req->body == NULL)
        return vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                              "missing body: send {\"product_ids\": [\"id\", ...]}");
    bool escaped;
    if (vt_json_nul_at(req->body, req->body_len, &escaped) < req->body_len)
        return vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                              "invalid rerank body: ids must not contain NUL bytes or \\u0000");
    root = cJSON_ParseWithLength(req->body, req->body_len);
    n = read_rerank_ids(req, root, worker_rerank_input, &reply);
    if (n < 0 || !vt_api_read_profile(req, &worker_profile, &reply)) {
        cJSON_Delete(root);
        return reply;
    }
    ids = cJSON_GetObjectItemCaseSensitive(root, "product_ids");

    /* The control group sees the page's own order. */
    control = vt_rec_in_control_group(cfg, req->id, req->id_len);
    if (control)
        rerank_unchanged(worker_rerank_input, (size_t)n, worker_rerank);
    else
        vt_rerank(req->world, cfg, req->api->rules, &worker_profile, worker_rerank_input,
                  (size_t)n, worker_rerank);
    vt_gender_estimate(worker_profile.gender_log_odds, worker_profile.gender_evidence, cfg,
                       &est);
    vt_uuid7(decision_id, sizeof decision_id);

    vt_jsonw_init(&w, vt_api_worker_buffer(), VT_RESPONSE_MAX);
    vt_jsonw_object_begin(&w);
    vt_jsonw_key(&w, "decision_id");
    vt_jsonw_string(&w, decision_id);
    vt_jsonw_key(&w, "session_id");
    vt_jsonw_stringn(&w, req->id, req->id_len);
    write_degraded(&w, req);
    vt_jsonw_key(&w, "control");
    vt_jsonw_bool(&w, control);
    write_rerank_items(&w, req->world->catalog, ids, (size_t)n, true);
    vt_jsonw_object_end(&w);
    reply = vt_reply_writer(req, MHD_HTTP_OK, &w);

    publish_rerank_decision(req, decision_id, control, est.segment, ids, (size_t)n);
    cJSON_Delete(root);
    return reply;
}
