/*
 * vitrine: the analyst endpoints: whole profiles with explanations, their erasure, and
 * impression/click statistics per product and placement. They run on HTTP worker threads.
 */
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "api_internal.h"
#include "vitrine/log.h"
#include "vitrine/profile.h"
#include "vitrine/store.h"
#include "vitrine/util.h"

/* The profile being served, per worker thread (too large for a comfortable stack). */
static _Thread_local struct vt_profile worker_profile;
static _Thread_local struct vt_stats worker_stats;

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


/* The visitor the session is linked to: null without one; linked is false when the
 * visitor refused the session (visitor.sessions_max) or was erased. */
static void write_visitor(struct vt_jsonw *w, const struct vt_profile *p)
{
    vt_jsonw_key(w, "visitor");
    if (p->visitor_id[0] == '\0') {
        vt_jsonw_null(w);
        return;
    }
    vt_jsonw_object_begin(w);
    vt_jsonw_key(w, "id");
    vt_jsonw_string(w, p->visitor_id);
    vt_jsonw_key(w, "linked");
    vt_jsonw_bool(w, p->visitor_linked);
    vt_jsonw_key(w, "sessions");
    vt_jsonw_int(w, p->visitor_sessions);
    vt_jsonw_object_end(w);
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
        return vt_reply_invalid_id(req, "profile");
    if (!vt_api_read_profile(req, &worker_profile, &reply))
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

    vt_api_write_scored(&w, "categories", p->categories, p->n_categories, VT_PROFILE_TOP_MAX);
    vt_api_write_scored(&w, "brands", p->brands, p->n_brands, VT_PROFILE_TOP_MAX);
    vt_api_write_scored(&w, "price_tiers", p->tiers, p->n_tiers, VT_TIER_COUNT);
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

    vt_jsonw_key(&w, "shown");
    vt_jsonw_array_begin(&w);
    for (size_t i = 0; i < p->n_seen; i++) {
        vt_jsonw_object_begin(&w);
        vt_jsonw_key(&w, "product_id");
        vt_jsonw_string(&w, p->seen[i].id);
        vt_jsonw_key(&w, "impressions");
        vt_jsonw_int(&w, p->seen[i].count);
        vt_jsonw_object_end(&w);
    }
    vt_jsonw_array_end(&w);
    vt_jsonw_key(&w, "personalised");
    vt_jsonw_bool(&w, !p->consent_denied);
    write_visitor(&w, p);
    vt_api_write_segments(&w, req, p, true);
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
        return vt_reply_invalid_id(req, "profile");

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


/* Number of erasures so far, so that an operator can match a log line to its response
 * without the log containing the visitor's id. Shared by the HTTP workers. */
static atomic_uint_fast64_t erasures;

enum MHD_Result vt_handle_visitor_delete(struct vt_request *req)
{
    struct vt_erasure erased = {0};
    char err[512], body[256];
    struct vt_store *st;
    struct vt_jsonw w;

    if (!vt_id_valid(req->id, req->id_len))
        return vt_reply_invalid_id(req, "visitor");

    st = vt_api_worker_store(req->api, err, sizeof err);
    if (st == NULL ||
        vt_store_visitor_erase(st, req->id, req->id_len, &erased, err, sizeof err) != 0) {
        vt_metrics_redis_error(VT_REDIS_HTTP);
        vt_api_worker_store_reset();
        VT_WARN("HTTP", "visitor erasure failed, nothing confirmed; retry it: %s", err);
        return vt_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "UNAVAILABLE", true,
                              "profile store unavailable; the erasure may be incomplete, "
                              "retry it");
    }

    /* An audit line without the visitor's id or its sessions' ids. */
    uint64_t number = atomic_fetch_add(&erasures, 1) + 1;
    vt_metrics_erasure(erased.keys > 0);
    VT_INFO("HTTP", "visitor erasure %" PRIu64 ": %" PRId64 " visitor records, %" PRId64
            " sessions, %" PRId64 " keys deleted", number, erased.visitors, erased.sessions,
            erased.keys);
    if (!erased.complete)
        VT_WARN("HTTP", "visitor erasure %" PRIu64 " reached its limits (%d visitors or "
                "%d sessions); erase the remaining ids one by one (docs/privacy.md)",
                number, VT_ERASE_VISITORS_MAX, VT_ERASE_SESSIONS_MAX);

    vt_jsonw_init(&w, body, sizeof body);
    vt_jsonw_object_begin(&w);
    vt_jsonw_key(&w, "visitor_id");
    vt_jsonw_stringn(&w, req->id, req->id_len);
    vt_jsonw_key(&w, "erasure");
    vt_jsonw_int(&w, (int64_t)number);
    vt_jsonw_key(&w, "visitors");
    vt_jsonw_int(&w, erased.visitors);
    vt_jsonw_key(&w, "sessions");
    vt_jsonw_int(&w, erased.sessions);
    vt_jsonw_key(&w, "deleted_keys");
    vt_jsonw_int(&w, erased.keys);
    vt_jsonw_key(&w, "complete");
    vt_jsonw_bool(&w, erased.complete);
    vt_jsonw_object_end(&w);
    return vt_reply_writer(req, MHD_HTTP_OK, &w);
}


static void write_counts(struct vt_jsonw *w, const struct vt_stats_counts *c)
{
    vt_jsonw_key(w, "impressions");
    vt_jsonw_int(w, c->impressions);
    vt_jsonw_key(w, "clicks");
    vt_jsonw_int(w, c->clicks);
    vt_jsonw_key(w, "ctr");
    if (c->impressions > 0)
        vt_jsonw_double(w, (double)c->clicks / (double)c->impressions);
    else
        vt_jsonw_null(w);
    vt_jsonw_key(w, "carts");
    vt_jsonw_int(w, c->carts);
    vt_jsonw_key(w, "purchases");
    vt_jsonw_int(w, c->purchases);
}


static bool counts_empty(const struct vt_stats_counts *c)
{
    return c->impressions == 0 && c->clicks == 0 && c->carts == 0 && c->purchases == 0;
}


/* Read and write the statistics of a product or a placement named name. */
static enum MHD_Result reply_stats(struct vt_request *req, bool is_product, const char *name,
                                   size_t name_len)
{
    const struct vt_stats *s = &worker_stats;
    struct vt_store *st;
    struct vt_jsonw w;
    char err[512];

    st = vt_api_worker_store(req->api, err, sizeof err);
    if (st == NULL ||
        vt_store_stats_read(st, is_product, name, name_len, &worker_stats, err,
                            sizeof err) != 0) {
        vt_metrics_redis_error(VT_REDIS_HTTP);
        vt_api_worker_store_reset();
        VT_WARN("HTTP", "statistics read failed: %s", err);
        return vt_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "UNAVAILABLE", true,
                              "statistics store unavailable; retry shortly");
    }

    vt_jsonw_init(&w, vt_api_worker_buffer(), VT_RESPONSE_MAX);
    vt_jsonw_object_begin(&w);
    vt_jsonw_key(&w, is_product ? "product_id" : "placement");
    vt_jsonw_stringn(&w, name, name_len);
    vt_jsonw_key(&w, "known");
    vt_jsonw_bool(&w, s->exists);
    write_counts(&w, &s->total);

    vt_jsonw_key(&w, "by_position");
    vt_jsonw_array_begin(&w);
    for (int pos = 1; pos <= VT_STATS_POSITIONS; pos++) {
        if (counts_empty(&s->by_position[pos]))
            continue;
        vt_jsonw_object_begin(&w);
        vt_jsonw_key(&w, "position");
        vt_jsonw_int(&w, pos);
        write_counts(&w, &s->by_position[pos]);
        vt_jsonw_object_end(&w);
    }
    if (!counts_empty(&s->by_position[0])) {
        vt_jsonw_object_begin(&w);
        vt_jsonw_key(&w, "position");
        vt_jsonw_string(&w, "other");
        write_counts(&w, &s->by_position[0]);
        vt_jsonw_object_end(&w);
    }
    vt_jsonw_array_end(&w);

    if (is_product) {
        vt_jsonw_key(&w, "by_placement");
        vt_jsonw_array_begin(&w);
        for (size_t i = 0; i < s->n_placements; i++) {
            vt_jsonw_object_begin(&w);
            vt_jsonw_key(&w, "placement");
            vt_jsonw_string(&w, s->placements[i].name);
            write_counts(&w, &s->placements[i].counts);
            vt_jsonw_object_end(&w);
        }
        vt_jsonw_array_end(&w);
    }
    vt_jsonw_object_end(&w);
    return vt_reply_writer(req, MHD_HTTP_OK, &w);
}


enum MHD_Result vt_handle_stats_product(struct vt_request *req)
{
    char id[VT_PRODUCT_ID_MAX * 3 + 1];
    size_t id_len = vt_api_path_id(req, id, sizeof id);

    if (!vt_api_product_id_valid(id, id_len))
        return vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                              "invalid product id: expected 1 to %d bytes of UTF-8 without "
                              "control characters", VT_PRODUCT_ID_MAX);
    return reply_stats(req, true, id, id_len);
}


enum MHD_Result vt_handle_stats_placement(struct vt_request *req)
{
    char name[VT_PLACEMENT_MAX * 3 + 1];
    size_t name_len = vt_api_path_id(req, name, sizeof name);

    if (name_len == 0 || name_len > VT_PLACEMENT_MAX ||
        !vt_api_product_id_valid(name, name_len))
        return vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                              "invalid placement: expected 1 to %d bytes of UTF-8 without "
                              "control characters", VT_PLACEMENT_MAX);
    return reply_stats(req, false, name, name_len);
}
