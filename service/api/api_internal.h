/*
 * vitrine: what the HTTP server (server.c) and the route handlers (handlers.c) share.
 * Not a public header.
 *
 * Every function here runs on an HTTP worker thread of libmicrohttpd's pool.
 */
#ifndef VITRINE_API_INTERNAL_H
#define VITRINE_API_INTERNAL_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vitrine/catalog.h"
#include "vitrine/config.h"
#include "vitrine/decisions.h"
#include "vitrine/ingest.h"
#include "vitrine/jsonw.h"
#include "vitrine/metrics.h"
#include "vitrine/profile.h"
#include "vitrine/rules.h"
#include "vitrine/store.h"
#include "vitrine/world.h"

/* Largest JSON response body; a profile with every list full stays far below it. */
#define VT_RESPONSE_MAX (256 * 1024)

struct vt_api {
    const struct vt_config *cfg;
    const struct vt_live *live;
    const struct vt_ingest *ingest;
    const struct vt_rules *rules;
    struct vt_segments_live *segments; /* NULL: no analyst segments */
    struct vt_decisions *decisions;
    const struct vt_alerting *alerting; /* NULL: no alert metrics */
    struct MHD_Daemon *daemon;
    struct vt_deadlines *deadlines;
    char *openapi;       /* contents of the OpenAPI file, NULL when it could not be read */
    size_t openapi_len;
};

/* One request as the handlers see it. */
struct vt_request {
    struct vt_api *api;
    struct MHD_Connection *conn;
    const char *method;
    const char *id; /* the {id} path segment, not NUL-terminated */
    size_t id_len;
    const char *body; /* request body (POST), NUL-terminated; NULL when none */
    size_t body_len;
    const struct vt_world *world; /* the live world, loaded once per request */
    enum vt_route route;
    int status; /* set by the reply helpers, for metrics */
    bool degraded; /* the profile read failed, so the response is a cold start */
    int64_t segments_now_ms; /* the time the profile's segments were evaluated at */
    bool close_connection; /* the response carries Connection: close */
};

/* The worker thread's Redis connection, opened on first use; NULL with err filled when
 * Redis cannot be reached (the next call tries again). */
struct vt_store *vt_api_worker_store(struct vt_api *api, char *err, size_t errsize);

/* Close the worker's connection after a failure so that the next request reconnects. */
void vt_api_worker_store_reset(void);

/* True when the worker has an open Redis connection from an earlier request. */
bool vt_api_worker_store_connected(void);

/* The worker thread's response buffer (VT_RESPONSE_MAX bytes). */
char *vt_api_worker_buffer(void);

/* Send a JSON body with this status. The body is copied. */
enum MHD_Result vt_reply_json(struct vt_request *req, int status, const char *body, size_t len);

/* Send the error shape {"error":{"code","message","retriable"}}. A 503 carries
 * Retry-After: 1. */
enum MHD_Result vt_reply_error(struct vt_request *req, int status, const char *code,
                               bool retriable, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Finish a JSON writer into a reply, or a 500 when the body did not fit. */
enum MHD_Result vt_reply_writer(struct vt_request *req, int status, struct vt_jsonw *w);

/* Query parameter, or NULL when absent or empty. */
const char *vt_query(const struct vt_request *req, const char *name);

/* Read the profile of req->id into *p (retrying once on a connection Redis closed while
 * idle). On failure a 503 is queued, *reply holds its result and false is returned. */
bool vt_api_read_profile(struct vt_request *req, struct vt_profile *p, enum MHD_Result *reply);

/* Write key: [{name, score, share}] for the first max entries of a ranked profile list. */
void vt_api_write_scored(struct vt_jsonw *w, const char *key,
                         const struct vt_scored_name *list, size_t n, size_t max);

/* Queue a 400 INVALID_ARGUMENT naming what kind of id was invalid. */
enum MHD_Result vt_reply_invalid_id(struct vt_request *req, const char *what);

/* Copy the {id} path segment into out, decoding %2F and %25 (which the server leaves
 * encoded in paths) to '/' and '%'. Returns the length. */
size_t vt_api_path_id(const struct vt_request *req, char *out, size_t outsize);

/* A product id from a request: 1..VT_PRODUCT_ID_MAX bytes of UTF-8 without control bytes. */
bool vt_api_product_id_valid(const char *s, size_t len);

/* Request deadlines (deadline.c): every connection must receive a whole request and send
 * its response within timeout_s of its start or of its previous response, or the deadline
 * thread shuts its socket down. */
struct vt_deadlines;
struct vt_deadlines *vt_deadlines_start(int64_t timeout_s, char *err, size_t errsize);
void vt_deadlines_stop(struct vt_deadlines *d);
/* libmicrohttpd's MHD_OPTION_NOTIFY_CONNECTION callback, with the vt_deadlines as cls. */
void vt_deadlines_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                         enum MHD_ConnectionNotificationCode code);
/* Give the connection a new deadline, after its response was sent in full. */
void vt_deadlines_restart(struct vt_deadlines *d, struct MHD_Connection *conn);

/* Route handlers: handlers_session.c (storefront decisions), handlers_catalog.c
 * (trending, similar), handlers_analyst.c (profiles, statistics), handlers_alerts.c
 * (alerts and their acknowledgement). */
enum MHD_Result vt_handle_segment(struct vt_request *req);
enum MHD_Result vt_handle_recommendations(struct vt_request *req);
/* The same recommendations for an analyst: no decision is published. */
enum MHD_Result vt_handle_recommendations_preview(struct vt_request *req);
enum MHD_Result vt_handle_rerank(struct vt_request *req);
enum MHD_Result vt_handle_similar(struct vt_request *req);
enum MHD_Result vt_handle_trending(struct vt_request *req);
enum MHD_Result vt_handle_profile_get(struct vt_request *req);
enum MHD_Result vt_handle_profile_delete(struct vt_request *req);
enum MHD_Result vt_handle_stats_product(struct vt_request *req);
enum MHD_Result vt_handle_stats_placement(struct vt_request *req);
enum MHD_Result vt_handle_alerts_list(struct vt_request *req);
enum MHD_Result vt_handle_alert_get(struct vt_request *req);
enum MHD_Result vt_handle_alert_ack(struct vt_request *req);
enum MHD_Result vt_handle_stats_segments(struct vt_request *req);
enum MHD_Result vt_handle_visitor_delete(struct vt_request *req);

/* Write "segments": the names of the analyst segments p is in (an empty list before they
 * were evaluated), and with explain also "segments_explain": every segment with the
 * conditions that held and the values they saw. */
void vt_api_write_segments(struct vt_jsonw *w, const struct vt_request *req,
                           const struct vt_profile *p, bool explain);

/* Read the boolean query parameter name (true, false, 1, 0; absent: false). Returns false
 * after queueing a 400 for another value. */
bool vt_api_query_flag(struct vt_request *req, const char *name, bool *out,
                       enum MHD_Result *reply);

#endif
