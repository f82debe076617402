/*
 * vitrine: the HTTP API (libmicrohttpd, thread pool with epoll).
 *
 * Each worker thread of the pool owns one Redis connection, opened on its first request
 * and re-opened after an error. Handlers read the immutable catalog and configuration;
 * the only shared mutable state they touch is the metrics registry.
 */
#ifndef VITRINE_API_H
#define VITRINE_API_H

#include <stddef.h>

#include "vitrine/catalog.h"
#include "vitrine/config.h"
#include "vitrine/ingest.h"

struct vt_api;

/* Start listening on cfg->http_bind:cfg->http_port. ingest may be NULL (readiness then
 * ignores Kafka). Returns NULL with a message when the port cannot be bound. */
struct vt_api *vt_api_start(const struct vt_config *cfg, const struct vt_catalog *cat,
                            const struct vt_ingest *ingest, char *err, size_t errsize);

/* Stop accepting, finish requests in flight and join the workers. */
void vt_api_stop(struct vt_api *api);

/* One route the server answers, as written in openapi/openapi.yaml. */
struct vt_api_route_info {
    const char *path;   /* template such as "/v1/sessions/{id}/segment" */
    const char *method; /* "GET", "DELETE", ... */
};

/* The routes of the server: their number, and route i (0 <= i < count). */
size_t vt_api_route_count(void);
struct vt_api_route_info vt_api_route_at(size_t i);

#endif
