/*
 * vitrine: the alert endpoints for analysts: the list of recent alerts, one alert, and its
 * acknowledgement. Alerts are written by the alerts thread (service/alerts/leader.c); these
 * handlers only read them and record acknowledgements. They run on HTTP worker threads.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "api_internal.h"
#include "vitrine/log.h"
#include "vitrine/store.h"
#include "vitrine/util.h"

/* Alerts one list response carries at most, and by default. */
#define LIST_LIMIT_MAX 100
#define LIST_LIMIT_DEFAULT 50
/* Bytes of "by" and "note" in an acknowledgement. */
#define ACK_BY_MAX 64
#define ACK_NOTE_MAX 512
/* Room kept free in the response buffer for the envelope after the last record. */
#define ENVELOPE_RESERVE 256

/* An alert id as the alerts thread writes them (UUIDv7): hex digits and dashes. */
static bool alert_id_valid(const char *s, size_t len)
{
    if (len == 0 || len > VT_ALERT_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-'))
            return false;
    }
    return true;
}


static enum MHD_Result reply_invalid_alert_id(struct vt_request *req)
{
    return vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                          "invalid alert id: expected the id of an alert as GET /v1/alerts "
                          "lists it, digits, a to f and dashes, such as "
                          "0193a1b2-7c4d-7e5f-8a6b-1c2d3e4f5a6b");
}


static enum MHD_Result reply_store_failed(struct vt_request *req, const char *what,
                                          const char *err)
{
    vt_metrics_redis_error(VT_REDIS_HTTP);
    vt_api_worker_store_reset();
    VT_WARN("HTTP", "%s failed: %s", what, err);
    return vt_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "UNAVAILABLE", true,
                          "alert store unavailable; retry shortly");
}


/* ---- GET /v1/alerts ---- */

struct list_filter {
    const char *state;    /* "active", "resolved" or NULL for all */
    const char *severity; /* NULL for all */
    const char *rule;     /* NULL for all */
    bool unacknowledged;  /* only unacknowledged alerts */
    size_t limit;
};

struct list_out {
    const struct list_filter *filter;
    struct vt_jsonw *w;
    size_t count;
    size_t searched; /* records the store handed over */
    bool truncated;
};

static bool string_field_is(const cJSON *rec, const char *key, const char *want)
{
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, key));
    return v != NULL && strcmp(v, want) == 0;
}


/* True when the alert's rule or the rule of one of its merged series is `rule`. */
static bool names_rule(const cJSON *rec, const char *rule)
{
    const cJSON *series;

    if (string_field_is(rec, "rule", rule))
        return true;
    cJSON_ArrayForEach(series, cJSON_GetObjectItemCaseSensitive(rec, "series")) {
        if (string_field_is(series, "rule", rule))
            return true;
    }
    return false;
}


/* One record from the store, newest first: written when it passes the filter. */
static void list_record(void *arg, const char *json, size_t len)
{
    struct list_out *out = arg;
    const struct list_filter *f = out->filter;
    cJSON *rec;
    bool keep;

    out->searched++;
    if (out->count >= f->limit || out->truncated)
        return;
    rec = cJSON_ParseWithLength(json, len);
    if (rec == NULL)
        return; /* not written by us; nothing to show */
    keep = (f->state == NULL || string_field_is(rec, "state", f->state)) &&
           (f->severity == NULL || string_field_is(rec, "severity", f->severity)) &&
           (f->rule == NULL || names_rule(rec, f->rule)) &&
           (!f->unacknowledged || cJSON_GetObjectItemCaseSensitive(rec, "ack") == NULL);
    cJSON_Delete(rec);
    if (!keep)
        return;
    if (out->w->len + len + ENVELOPE_RESERVE > out->w->cap) {
        out->truncated = true;
        return;
    }
    vt_jsonw_raw(out->w, json, len);
    out->count++;
}


static const char *choice(const char *value, const char *const *allowed)
{
    for (size_t i = 0; allowed[i] != NULL; i++) {
        if (strcmp(value, allowed[i]) == 0)
            return allowed[i];
    }
    return NULL;
}


enum MHD_Result vt_handle_alerts_list(struct vt_request *req)
{
    static const char *const states[] = {"active", "resolved", "all", NULL};
    static const char *const severities[] = {"info", "warning", "critical", NULL};
    struct list_filter filter = {.limit = LIST_LIMIT_DEFAULT};
    const char *state = vt_query(req, "state");
    const char *severity = vt_query(req, "severity");
    const char *limit = vt_query(req, "limit");
    const char *ack = vt_query(req, "acknowledged");
    struct list_out out = {.filter = &filter};
    struct vt_store *st;
    struct vt_jsonw w;
    char err[512];

    if (state != NULL && choice(state, states) == NULL)
        return vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                              "invalid state: expected active, resolved or all");
    if (state != NULL && strcmp(state, "all") != 0)
        filter.state = state;
    if (severity != NULL && (filter.severity = choice(severity, severities)) == NULL)
        return vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                              "invalid severity: expected info, warning or critical");
    if (limit != NULL) {
        int64_t n;
        if (vt_parse_int64(limit, 1, LIST_LIMIT_MAX, &n) != 0)
            return vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                                  "invalid limit: expected an integer from 1 to %d",
                                  LIST_LIMIT_MAX);
        filter.limit = (size_t)n;
    }
    if (ack != NULL) {
        if (strcmp(ack, "false") != 0 && strcmp(ack, "any") != 0)
            return vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                                  "invalid acknowledged: expected false (only alerts nobody "
                                  "acknowledged) or any");
        filter.unacknowledged = strcmp(ack, "false") == 0;
    }
    filter.rule = vt_query(req, "rule");
    if (filter.rule != NULL && !vt_alert_name_valid(filter.rule))
        return vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                              "invalid rule: a rule name has 1 to %d letters A to Z, digits, "
                              "'_', '.' and '-'", VT_ALERT_NAME_MAX);

    vt_jsonw_init(&w, vt_api_worker_buffer(), VT_RESPONSE_MAX);
    vt_jsonw_object_begin(&w);
    vt_jsonw_key(&w, "alerts");
    vt_jsonw_array_begin(&w);
    out.w = &w;
    st = vt_api_worker_store(req->api, err, sizeof err);
    if (st == NULL || vt_store_alert_list(st, VT_ALERT_LIST_MAX, list_record, &out, err,
                                          sizeof err) != 0)
        return reply_store_failed(req, "alert list read", err);
    vt_jsonw_array_end(&w);
    vt_jsonw_key(&w, "count");
    vt_jsonw_int(&w, (int64_t)out.count);
    vt_jsonw_key(&w, "searched");
    vt_jsonw_int(&w, (int64_t)out.searched);
    vt_jsonw_key(&w, "truncated");
    vt_jsonw_bool(&w, out.truncated);
    vt_jsonw_object_end(&w);
    return vt_reply_writer(req, MHD_HTTP_OK, &w);
}


/* ---- GET /v1/alerts/{id} ---- */

enum MHD_Result vt_handle_alert_get(struct vt_request *req)
{
    struct vt_store *st;
    struct vt_buf record;
    enum MHD_Result reply;
    char err[512];

    if (!alert_id_valid(req->id, req->id_len))
        return reply_invalid_alert_id(req);

    vt_buf_init(&record, VT_RESPONSE_MAX);
    st = vt_api_worker_store(req->api, err, sizeof err);
    if (st == NULL || vt_store_alert_get(st, req->id, req->id_len, &record, err, sizeof err) != 0) {
        vt_buf_free(&record);
        return reply_store_failed(req, "alert read", err);
    }
    if (record.len == 0 || record.overflow)
        reply = vt_reply_error(req, MHD_HTTP_NOT_FOUND, "NOT_FOUND", false,
                               "no alert %.*s: it never existed or is older than the newest "
                               "alerts.keep alerts", (int)req->id_len, req->id);
    else
        reply = vt_reply_json(req, MHD_HTTP_OK, record.data, record.len);
    vt_buf_free(&record);
    return reply;
}


/* ---- POST /v1/alerts/{id}/ack ---- */

/* Parse a body that contains one JSON value and nothing but white space after it, without a
 * NUL byte or the escape \u0000. Returns the value (the caller deletes it) or NULL. */
static cJSON *parse_body(const char *body, size_t len)
{
    const char *end = NULL;
    bool escaped;
    cJSON *root;

    if (body == NULL || vt_json_nul_at(body, len, &escaped) < len)
        return NULL;
    root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (root == NULL)
        return NULL;
    while (end < body + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (end != body + len) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}


/* A short text field of the acknowledgement: valid UTF-8, no control characters. */
static bool ack_text_valid(const char *s, size_t max)
{
    size_t len = strlen(s);

    if (len > max || !vt_utf8_valid(s, len))
        return false;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    }
    return true;
}


enum MHD_Result vt_handle_alert_ack(struct vt_request *req)
{
    const char *by, *note;
    char at[40], err[512];
    struct vt_store *st;
    struct vt_buf record;
    enum MHD_Result reply;
    cJSON *root;

    if (!alert_id_valid(req->id, req->id_len))
        return reply_invalid_alert_id(req);
    root = parse_body(req->body, req->body_len);
    if (root == NULL)
        return vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                              "invalid body: send one JSON object {\"by\": \"who\", "
                              "\"note\": \"optional text\"} without NUL bytes or \\u0000");
    by = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "by"));
    note = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "note"));
    if (by == NULL || by[0] == '\0' || !ack_text_valid(by, ACK_BY_MAX)) {
        cJSON_Delete(root);
        return vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                              "invalid \"by\": expected who acknowledges, 1 to %d bytes of "
                              "UTF-8 text without control characters", ACK_BY_MAX);
    }
    if (cJSON_GetObjectItemCaseSensitive(root, "note") != NULL &&
        (note == NULL || !ack_text_valid(note, ACK_NOTE_MAX))) {
        cJSON_Delete(root);
        return vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                              "invalid \"note\": expected a string of at most %d bytes of "
                              "UTF-8 text without control characters", ACK_NOTE_MAX);
    }

    vt_time_format_iso8601(vt_now_ms(), at, sizeof at);
    vt_buf_init(&record, VT_RESPONSE_MAX);
    st = vt_api_worker_store(req->api, err, sizeof err);
    if (st == NULL || vt_store_alert_ack(st, req->id, req->id_len, by, note ? note : "", at,
                                         &record, err, sizeof err) != 0) {
        cJSON_Delete(root);
        vt_buf_free(&record);
        return reply_store_failed(req, "alert acknowledgement", err);
    }
    if (record.len == 0 || record.overflow) {
        reply = vt_reply_error(req, MHD_HTTP_NOT_FOUND, "NOT_FOUND", false,
                               "no alert %.*s: it never existed or is older than the newest "
                               "alerts.keep alerts", (int)req->id_len, req->id);
    } else {
        VT_INFO("HTTP", "alert %.*s acknowledged", (int)req->id_len, req->id);
        reply = vt_reply_json(req, MHD_HTTP_OK, record.data, record.len);
    }
    cJSON_Delete(root);
    vt_buf_free(&record);
    return reply;
}
