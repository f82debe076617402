/*
 * vitrine: analyst segments in responses, and GET /v1/stats/segments. They run on HTTP
 * worker threads.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "api_internal.h"
#include "vitrine/log.h"
#include "vitrine/segments_live.h"
#include "vitrine/util.h"

/* Room an explanation leaves for the rest of the largest response (the profile's). */
#define EXPLAIN_RESERVE (16 * 1024)

bool vt_api_query_flag(struct vt_request *req, const char *name, bool *out,
                       enum MHD_Result *reply)
{
    const char *value = vt_query(req, name);

    *out = false;
    if (value == NULL || strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
        return true;
    if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0) {
        *out = true;
        return true;
    }
    *reply = vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                            "invalid %s: expected true or false", name);
    return false;
}


void vt_api_write_segments(struct vt_jsonw *w, const struct vt_request *req,
                           const struct vt_profile *p, bool explain)
{
    const struct vt_segments *segments = p->segments;
    size_t n = segments != NULL ? vt_segments_count(segments) : 0;

    vt_jsonw_key(w, "segments");
    vt_jsonw_array_begin(w);
    for (size_t i = 0; i < n; i++) {
        if ((p->segment_mask >> i) & 1)
            vt_jsonw_string(w, vt_segments_name(segments, i));
    }
    vt_jsonw_array_end(w);
    if (!explain)
        return;

    struct vt_gender_estimate gender;
    vt_gender_estimate(p->gender_log_odds, p->gender_evidence, req->api->cfg, &gender);
    struct vt_segment_facts facts = {.profile = p, .gender = &gender,
                                     .now_ms = req->segments_now_ms};
    vt_jsonw_key(w, "segments_explain");
    if (segments == NULL) {
        vt_jsonw_array_begin(w);
        vt_jsonw_array_end(w);
        return;
    }

    /* The explanation of 64 segments of 64 conditions can exceed the response limit. Then
     * each segment reports only whether the profile is a member, with the reason. */
    struct vt_jsonw before = *w;
    vt_segments_explain(segments, &facts, w);
    if (!w->overflow && w->len + EXPLAIN_RESERVE <= w->cap)
        return;
    *w = before;
    vt_jsonw_array_begin(w);
    for (size_t i = 0; i < n; i++) {
        vt_jsonw_object_begin(w);
        vt_jsonw_key(w, "segment");
        vt_jsonw_string(w, vt_segments_name(segments, i));
        vt_jsonw_key(w, "member");
        vt_jsonw_bool(w, (p->segment_mask >> i) & 1);
        vt_jsonw_key(w, "reason");
        vt_jsonw_string(w, "explanation too large");
        vt_jsonw_object_end(w);
    }
    vt_jsonw_array_end(w);
}


/* The counts read from Redis, matched to the active definitions. */
struct segment_counts {
    const struct vt_segments *segments;
    int64_t members[VT_SEGMENTS_MAX]; /* -1: not counted yet */
    int64_t served[VT_SEGMENTS_MAX];
    int64_t profiles, sampled, at_ms;
};


static void take_count(void *arg, bool served, const char *field, size_t len, int64_t value)
{
    struct segment_counts *c = arg;
    char name[VT_SEGMENT_NAME_MAX + 1];
    int index;

    if (!served && len > 0 && field[0] == '_') {
        if (len == 9 && memcmp(field, "_profiles", 9) == 0)
            c->profiles = value;
        else if (len == 8 && memcmp(field, "_sampled", 8) == 0)
            c->sampled = value;
        else if (len == 3 && memcmp(field, "_at", 3) == 0)
            c->at_ms = value;
        return;
    }
    if (len > VT_SEGMENT_NAME_MAX)
        return;
    memcpy(name, field, len);
    name[len] = '\0';
    index = vt_segments_find(c->segments, name);
    if (index < 0)
        return; /* a segment a reload removed */
    if (served)
        c->served[index] = value;
    else
        c->members[index] = value;
}


enum MHD_Result vt_handle_stats_segments(struct vt_request *req)
{
    struct vt_segments_live *live = req->api->segments;
    struct segment_counts counts;
    char err[512], stamp[40];
    struct vt_store *st;
    struct vt_jsonw w;

    memset(&counts, 0, sizeof counts);
    counts.profiles = counts.sampled = counts.at_ms = -1;
    for (size_t i = 0; i < VT_SEGMENTS_MAX; i++)
        counts.members[i] = -1;
    counts.segments = live != NULL ? vt_segments_live_current(live) : NULL;
    size_t n = counts.segments != NULL ? vt_segments_count(counts.segments) : 0;

    if (n > 0) {
        st = vt_api_worker_store(req->api, err, sizeof err);
        if (st == NULL || vt_store_segment_stats_read(st, take_count, &counts, err,
                                                      sizeof err) != 0) {
            vt_metrics_redis_error(VT_REDIS_HTTP);
            vt_api_worker_store_reset();
            VT_WARN("HTTP", "segment statistics not read: %s", err);
            return vt_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "UNAVAILABLE", true,
                                  "profile store unavailable; retry shortly");
        }
    }

    vt_jsonw_init(&w, vt_api_worker_buffer(), VT_RESPONSE_MAX);
    vt_jsonw_object_begin(&w);
    vt_jsonw_key(&w, "counted_at");
    if (counts.at_ms > 0) {
        vt_time_format_iso8601(counts.at_ms, stamp, sizeof stamp);
        vt_jsonw_string(&w, stamp);
    } else {
        vt_jsonw_null(&w);
    }
    vt_jsonw_key(&w, "profiles");
    vt_jsonw_int(&w, counts.profiles > 0 ? counts.profiles : 0);
    vt_jsonw_key(&w, "sampled");
    vt_jsonw_int(&w, counts.sampled > 0 ? counts.sampled : 0);
    vt_jsonw_key(&w, "count_interval_s");
    vt_jsonw_int(&w, req->api->cfg->segments_count_interval_s);
    vt_jsonw_key(&w, "segments");
    vt_jsonw_array_begin(&w);
    for (size_t i = 0; i < n; i++) {
        vt_jsonw_object_begin(&w);
        vt_jsonw_key(&w, "name");
        vt_jsonw_string(&w, vt_segments_name(counts.segments, i));
        vt_jsonw_key(&w, "members");
        if (counts.members[i] >= 0)
            vt_jsonw_int(&w, counts.members[i]);
        else
            vt_jsonw_null(&w);
        vt_jsonw_key(&w, "served");
        vt_jsonw_int(&w, counts.served[i]);
        vt_jsonw_object_end(&w);
    }
    vt_jsonw_array_end(&w);
    vt_jsonw_object_end(&w);
    return vt_reply_writer(req, MHD_HTTP_OK, &w);
}
