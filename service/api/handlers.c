/*
 * vitrine: the route handlers of the storefront and analyst endpoints.
 *
 * Each handler reads as: validate the request, read the profile (one Redis round trip),
 * compute, write the JSON reply. They run on HTTP worker threads and touch no shared
 * mutable state besides metrics.
 */
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "api_internal.h"
#include "vitrine/log.h"
#include "vitrine/profile.h"
#include "vitrine/recommend.h"
#include "vitrine/util.h"

/* Entries of each ranked list shown by /segment. */
#define SEGMENT_TOP 5

/* The profile being served, per worker thread (too large for a comfortable stack). */
static _Thread_local struct vt_profile worker_profile;
static _Thread_local struct vt_rec_result worker_result;

static enum MHD_Result reply_invalid_id(struct vt_request *req, const char *what)
{
    return vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                          "invalid %s id: expected %s", what, vt_id_rule);
}


/* Read the profile of req->id into the worker's profile. On failure the reply is queued
 * and *reply holds its result. */
static bool read_profile(struct vt_request *req, enum MHD_Result *reply)
{
    char err[512];

    /* A connection that Redis closed while idle (a restart, a timeout on the server side)
     * fails only on its next use: then reconnect and try once more. */
    for (int attempt = 0; attempt < 2; attempt++) {
        bool reused = vt_api_worker_store_connected();
        struct vt_store *st = vt_api_worker_store(req->api, err, sizeof err);

        if (st != NULL &&
            vt_store_profile_read(st, req->id, req->id_len, vt_now_ms(), &worker_profile, err,
                                  sizeof err) == 0)
            return true;
        vt_api_worker_store_reset();
        if (!reused)
            break;
    }

    vt_metrics_redis_error(VT_REDIS_HTTP);
    VT_WARN("HTTP", "profile read failed on route %s: %s", vt_route_name(req->route), err);
    *reply = vt_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "UNAVAILABLE", true,
                            "profile store unavailable; retry shortly");
    return false;
}


static void write_scored(struct vt_jsonw *w, const char *key,
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


static void write_gender(struct vt_jsonw *w, const struct vt_config *cfg,
                         const struct vt_profile *p, bool explain)
{
    struct vt_gender_estimate est;

    vt_gender_estimate(p->gender_log_odds, p->gender_evidence, cfg, &est);
    vt_jsonw_key(w, "segment");
    vt_jsonw_string(w, vt_segment_name(est.segment));
    vt_jsonw_key(w, "probability");
    vt_jsonw_double(w, est.probability);
    vt_jsonw_key(w, "p_female");
    vt_jsonw_double(w, est.p_female);
    vt_jsonw_key(w, "evidence");
    vt_jsonw_int(w, p->gender_evidence);
    if (explain) {
        char text[320];
        snprintf(text, sizeof text,
                 "log-odds %.3f (prior %.3f plus %" PRId64 " interactions with gendered "
                 "products, each adding %.2f per unit of intent weight); a segment needs "
                 "probability >= %.2f and at least %" PRId64 " such interactions",
                 cfg->gender_prior + p->gender_log_odds, cfg->gender_prior, p->gender_evidence,
                 cfg->gender_step, cfg->gender_threshold, cfg->gender_min_evidence);
        vt_jsonw_key(w, "log_odds");
        vt_jsonw_double(w, cfg->gender_prior + p->gender_log_odds);
        vt_jsonw_key(w, "explain");
        vt_jsonw_string(w, text);
    }
}


enum MHD_Result vt_handle_segment(struct vt_request *req)
{
    const struct vt_config *cfg = req->api->cfg;
    const struct vt_profile *p = &worker_profile;
    enum MHD_Result reply;
    struct vt_jsonw w;

    if (!vt_id_valid(req->id, req->id_len))
        return reply_invalid_id(req, "session");
    if (!read_profile(req, &reply))
        return reply;

    vt_jsonw_init(&w, vt_api_worker_buffer(), VT_RESPONSE_MAX);
    vt_jsonw_object_begin(&w);
    vt_jsonw_key(&w, "session_id");
    vt_jsonw_stringn(&w, req->id, req->id_len);
    vt_jsonw_key(&w, "known");
    vt_jsonw_bool(&w, p->exists);
    write_gender(&w, cfg, p, false);
    vt_jsonw_key(&w, "price_tier");
    if (p->n_tiers > 0)
        vt_jsonw_string(&w, p->tiers[0].name);
    else
        vt_jsonw_null(&w);
    write_scored(&w, "top_categories", p->categories, p->n_categories, SEGMENT_TOP);
    write_scored(&w, "top_brands", p->brands, p->n_brands, SEGMENT_TOP);
    vt_jsonw_object_end(&w);
    return vt_reply_writer(req, MHD_HTTP_OK, &w);
}


/* A product id from a query parameter: 1..VT_PRODUCT_ID_MAX bytes, no control bytes. */
static bool product_id_valid(const char *s, size_t len)
{
    if (len == 0 || len > VT_PRODUCT_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F)
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
    const struct vt_catalog *cat = req->api->cat;
    const char *placement = vt_query(req, "placement");
    const char *product = vt_query(req, "product");
    const char *category = vt_query(req, "category");
    const char *limit = vt_query(req, "limit");
    const char *exclude = vt_query(req, "exclude");
    int64_t n;

    memset(rr, 0, sizeof *rr);
    rr->placement = VT_PLACEMENT_HOME;
    rr->product = VT_CATALOG_NONE;
    rr->category = VT_CATALOG_NONE;
    rr->limit = (size_t)cfg->rec_limit_default;

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
        if (!product_id_valid(product, strlen(product))) {
            *reply = vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                                    "invalid product: expected 1 to %d bytes without control "
                                    "characters", VT_PRODUCT_ID_MAX);
            return false;
        }
        rr->product = vt_catalog_find(cat, product, strlen(product));
    } else if (rr->placement == VT_PLACEMENT_PRODUCT) {
        *reply = vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                                "placement product needs the product parameter (the id of "
                                "the product on the page)");
        return false;
    }

    if (category != NULL) {
        size_t len = strlen(category);
        if (len == 0 || len > VT_NAME_MAX) {
            *reply = vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                                    "invalid category: expected 1 to %d bytes", VT_NAME_MAX);
            return false;
        }
        rr->category = vt_catalog_category_find(cat, category, len);
    } else if (rr->placement == VT_PLACEMENT_CATEGORY) {
        *reply = vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                                "placement category needs the category parameter");
        return false;
    }

    /* exclude=id1,id2,...: unknown ids are ignored, malformed ones rejected. */
    size_t given = 0;
    for (const char *p = exclude; p != NULL && *p != '\0';) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);

        if (len > 0) {
            if (!product_id_valid(p, len)) {
                *reply = vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                                        "invalid exclude: each comma-separated id must have 1 "
                                        "to %d bytes without control characters",
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
    return true;
}


static void write_reasons(struct vt_jsonw *w, const struct vt_catalog *cat,
                          const struct vt_rec_item *item, const struct vt_product *prod,
                          enum vt_segment segment)
{
    char text[VT_NAME_MAX + 32];

    vt_jsonw_key(w, "reasons");
    vt_jsonw_array_begin(w);
    if ((item->reasons & VT_REASON_CATEGORY) && item->category != VT_CATALOG_NONE) {
        snprintf(text, sizeof text, "category:%s", vt_catalog_category_name(cat, item->category));
        vt_jsonw_string(w, text);
    }
    if ((item->reasons & VT_REASON_BRAND) && prod->brand != VT_CATALOG_NONE) {
        snprintf(text, sizeof text, "brand:%s", vt_catalog_brand_name(cat, prod->brand));
        vt_jsonw_string(w, text);
    }
    if (item->reasons & VT_REASON_PRICE_TIER) {
        snprintf(text, sizeof text, "price_tier:%s", vt_price_tier_name(prod->tier));
        vt_jsonw_string(w, text);
    }
    if (item->reasons & VT_REASON_GENDER) {
        snprintf(text, sizeof text, "gender:%s", vt_segment_name(segment));
        vt_jsonw_string(w, text);
    }
    if (item->reasons & VT_REASON_SAME_CATEGORY)
        vt_jsonw_string(w, "same_category");
    if (item->reasons & VT_REASON_POPULAR)
        vt_jsonw_string(w, "popular");
    if (item->reasons & VT_REASON_FALLBACK)
        vt_jsonw_string(w, "fallback");
    vt_jsonw_array_end(w);
}


enum MHD_Result vt_handle_recommendations(struct vt_request *req)
{
    const struct vt_catalog *cat = req->api->cat;
    struct vt_rec_request rr;
    struct vt_rec_result *res = &worker_result;
    enum MHD_Result reply;
    struct vt_jsonw w;
    char decision_id[40];

    if (!vt_id_valid(req->id, req->id_len))
        return reply_invalid_id(req, "session");
    if (!parse_rec_request(req, &rr, &reply))
        return reply;
    if (!read_profile(req, &reply))
        return reply;

    vt_recommend(cat, req->api->cfg, &worker_profile, &rr, res);
    vt_uuid7(decision_id, sizeof decision_id);

    vt_jsonw_init(&w, vt_api_worker_buffer(), VT_RESPONSE_MAX);
    vt_jsonw_object_begin(&w);
    vt_jsonw_key(&w, "decision_id");
    vt_jsonw_string(&w, decision_id);
    vt_jsonw_key(&w, "session_id");
    vt_jsonw_stringn(&w, req->id, req->id_len);
    vt_jsonw_key(&w, "placement");
    vt_jsonw_string(&w, vt_placement_name(rr.placement));
    vt_jsonw_key(&w, "strategy");
    vt_jsonw_string(&w, vt_rec_strategy_name(res->strategy));
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
    return vt_reply_writer(req, MHD_HTTP_OK, &w);
}


static void write_time(struct vt_jsonw *w, const char *key, int64_t ms)
{
    char stamp[40];

    vt_jsonw_key(w, key);
    if (ms < 0) {
        vt_jsonw_null(w);
        return;
    }
    vt_time_format_iso8601(ms, stamp, sizeof stamp);
    vt_jsonw_string(w, stamp);
}


static void write_timed(struct vt_jsonw *w, const char *key, const struct vt_timed_id *list,
                        size_t n)
{
    vt_jsonw_key(w, key);
    vt_jsonw_array_begin(w);
    for (size_t i = 0; i < n; i++) {
        vt_jsonw_object_begin(w);
        vt_jsonw_key(w, "product_id");
        vt_jsonw_string(w, list[i].id);
        write_time(w, "at", list[i].ts_ms);
        vt_jsonw_object_end(w);
    }
    vt_jsonw_array_end(w);
}


static void write_explain(struct vt_jsonw *w, const struct vt_config *cfg)
{
    char text[512];
    size_t o = 0;

    for (int t = 0; t < VT_EV_TYPE_COUNT && o < sizeof text; t++) {
        if (cfg->intent_weight[t] <= 0)
            continue;
        int n = snprintf(text + o, sizeof text - o, "%s%s=%g", o ? ", " : "",
                         vt_event_type_name(t), cfg->intent_weight[t]);
        if (n > 0)
            o += (size_t)n;
    }

    vt_jsonw_key(w, "explain");
    vt_jsonw_object_begin(w);
    vt_jsonw_key(w, "affinity");
    vt_jsonw_string(w, "score = sum over interactions of intent weight * "
                       "2^(-(last_seen - time) / half_life), that is decayed to the "
                       "profile's last event; share = score / sum of the list");
    vt_jsonw_key(w, "half_life_s");
    vt_jsonw_double(w, cfg->profile_half_life_s);
    vt_jsonw_key(w, "intent_weights");
    vt_jsonw_string(w, text);
    vt_jsonw_key(w, "price_tier");
    snprintf(text, sizeof text, "drugstore < %g <= mid < %g <= premium < %g <= luxury",
             cfg->price_tier_limits[0], cfg->price_tier_limits[1], cfg->price_tier_limits[2]);
    vt_jsonw_string(w, text);
    vt_jsonw_object_end(w);
}


enum MHD_Result vt_handle_profile_get(struct vt_request *req)
{
    const struct vt_config *cfg = req->api->cfg;
    const struct vt_profile *p = &worker_profile;
    enum MHD_Result reply;
    struct vt_jsonw w;

    if (!vt_id_valid(req->id, req->id_len))
        return reply_invalid_id(req, "profile");
    if (!read_profile(req, &reply))
        return reply;

    vt_jsonw_init(&w, vt_api_worker_buffer(), VT_RESPONSE_MAX);
    vt_jsonw_object_begin(&w);
    vt_jsonw_key(&w, "id");
    vt_jsonw_stringn(&w, req->id, req->id_len);
    vt_jsonw_key(&w, "exists");
    vt_jsonw_bool(&w, p->exists);
    vt_jsonw_key(&w, "user_id");
    if (p->user_id[0] != '\0')
        vt_jsonw_string(&w, p->user_id);
    else
        vt_jsonw_null(&w);
    write_time(&w, "first_seen", p->first_seen_ms);
    write_time(&w, "last_seen", p->last_seen_ms);
    vt_jsonw_key(&w, "ttl_s");
    vt_jsonw_int(&w, p->ttl_s);

    vt_jsonw_key(&w, "counters");
    vt_jsonw_object_begin(&w);
    vt_jsonw_key(&w, "events");
    vt_jsonw_int(&w, p->events);
    for (int t = 0; t < VT_EV_TYPE_COUNT; t++) {
        vt_jsonw_key(&w, vt_event_type_name(t));
        vt_jsonw_int(&w, p->count_by_type[t]);
    }
    vt_jsonw_object_end(&w);
    vt_jsonw_key(&w, "revenue");
    vt_jsonw_double(&w, p->revenue);

    vt_jsonw_key(&w, "gender");
    vt_jsonw_object_begin(&w);
    write_gender(&w, cfg, p, true);
    vt_jsonw_object_end(&w);

    write_scored(&w, "categories", p->categories, p->n_categories, VT_PROFILE_TOP_MAX);
    write_scored(&w, "brands", p->brands, p->n_brands, VT_PROFILE_TOP_MAX);
    write_scored(&w, "price_tiers", p->tiers, p->n_tiers, VT_TIER_COUNT);
    write_timed(&w, "recently_viewed", p->recent, p->n_recent);

    vt_jsonw_key(&w, "cart");
    vt_jsonw_array_begin(&w);
    for (size_t i = 0; i < p->n_cart; i++) {
        vt_jsonw_object_begin(&w);
        vt_jsonw_key(&w, "product_id");
        vt_jsonw_string(&w, p->cart[i].id);
        vt_jsonw_key(&w, "quantity");
        vt_jsonw_int(&w, p->cart[i].quantity);
        vt_jsonw_object_end(&w);
    }
    vt_jsonw_array_end(&w);
    write_timed(&w, "purchased", p->purchased, p->n_purchased);
    write_explain(&w, cfg);
    vt_jsonw_object_end(&w);
    return vt_reply_writer(req, MHD_HTTP_OK, &w);
}


enum MHD_Result vt_handle_profile_delete(struct vt_request *req)
{
    char err[512], body[256];
    struct vt_store *st;
    struct vt_jsonw w;
    int64_t deleted = 0;

    if (!vt_id_valid(req->id, req->id_len))
        return reply_invalid_id(req, "profile");

    st = vt_api_worker_store(req->api, err, sizeof err);
    if (st == NULL || vt_store_profile_delete(st, req->id, req->id_len, &deleted, err,
                                              sizeof err) != 0) {
        vt_metrics_redis_error(VT_REDIS_HTTP);
        vt_api_worker_store_reset();
        VT_WARN("HTTP", "profile delete failed: %s", err);
        return vt_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "UNAVAILABLE", true,
                              "profile store unavailable; retry shortly");
    }
    /* An erasure is an audit event; the id is a pseudonymous session or user id. */
    VT_INFO("HTTP", "profile erased: %" PRId64 " keys removed", deleted);

    vt_jsonw_init(&w, body, sizeof body);
    vt_jsonw_object_begin(&w);
    vt_jsonw_key(&w, "id");
    vt_jsonw_stringn(&w, req->id, req->id_len);
    vt_jsonw_key(&w, "deleted_keys");
    vt_jsonw_int(&w, deleted);
    vt_jsonw_object_end(&w);
    return vt_reply_writer(req, MHD_HTTP_OK, &w);
}
