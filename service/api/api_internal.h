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

#include "vitrine/catalog.h"
#include "vitrine/config.h"
#include "vitrine/ingest.h"
#include "vitrine/jsonw.h"
#include "vitrine/metrics.h"
#include "vitrine/store.h"

/* Largest JSON response body; a profile with every list full stays far below it. */
#define VT_RESPONSE_MAX (256 * 1024)

struct vt_api {
    const struct vt_config *cfg;
    const struct vt_catalog *cat;
    const struct vt_ingest *ingest;
    struct MHD_Daemon *daemon;
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
    enum vt_route route;
    int status; /* set by the reply helpers, for metrics */
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

/* Query parameter, or NULL. */
const char *vt_query(const struct vt_request *req, const char *name);

/* Route handlers. */
enum MHD_Result vt_handle_segment(struct vt_request *req);
enum MHD_Result vt_handle_recommendations(struct vt_request *req);
enum MHD_Result vt_handle_profile_get(struct vt_request *req);
enum MHD_Result vt_handle_profile_delete(struct vt_request *req);

#endif
