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

#include "vitrine/alerting.h"
#include "vitrine/config.h"
#include "vitrine/decisions.h"
#include "vitrine/ingest.h"
#include "vitrine/rules.h"
#include "vitrine/segments_live.h"
#include "vitrine/world.h"

struct vt_api;

/* What the handlers read, besides the configuration. Everything must outlive the server.
 * ingest may be NULL (readiness then ignores Kafka), rules may be NULL (none), alerting
 * may be NULL (the alert metrics are left out), and segments may be NULL (no analyst
 * segments). */
struct vt_api_parts {
    const struct vt_live *live;
    const struct vt_ingest *ingest;
    const struct vt_rules *rules;
    struct vt_segments_live *segments;
    struct vt_decisions *decisions;
    const struct vt_alerting *alerting;
};

/* Start listening on cfg->http_bind:cfg->http_port. Returns NULL with a message when the
 * port cannot be bound. */
struct vt_api *vt_api_start(const struct vt_config *cfg, const struct vt_api_parts *parts,
                            char *err, size_t errsize);

/* Stop accepting, finish requests in flight and join the workers. */
void vt_api_stop(struct vt_api *api);

/* One route the server answers, as written in openapi/openapi.yaml. */
struct vt_api_route_info {
    const char *path;   /* template such as "/v1/sessions/{id}/segment"; one {..} at most */
    const char *method; /* "GET", "DELETE", ... */
};

/* The routes of the server: their number, and route i (0 <= i < count). */
size_t vt_api_route_count(void);
struct vt_api_route_info vt_api_route_at(size_t i);

#endif
