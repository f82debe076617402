/*
 * vitrine: process metrics, rendered in the Prometheus text format at /metrics.
 *
 * The registry is process-wide state with fixed label sets known at compile time. Any
 * thread may update it (relaxed atomic adds, no locks); the HTTP worker serving /metrics
 * reads it. Counters are monotonic; gauges (lag, assigned partitions) are set by the
 * ingest thread.
 */
#ifndef VITRINE_METRICS_H
#define VITRINE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vitrine/decode.h"
#include "vitrine/event.h"
#include "vitrine/util.h"

/* HTTP routes, the `route` label. */
enum vt_route {
    VT_ROUTE_SEGMENT = 0,
    VT_ROUTE_RECOMMENDATIONS,
    VT_ROUTE_PROFILE_GET,
    VT_ROUTE_PROFILE_DELETE,
    VT_ROUTE_HEALTHZ,
    VT_ROUTE_READYZ,
    VT_ROUTE_METRICS,
    VT_ROUTE_OPENAPI,
    VT_ROUTE_RERANK,
    VT_ROUTE_SIMILAR,
    VT_ROUTE_TRENDING,
    VT_ROUTE_STATS_PRODUCT,
    VT_ROUTE_STATS_PLACEMENT,
    VT_ROUTE_ALERTS,
    VT_ROUTE_ALERT_GET,
    VT_ROUTE_ALERT_ACK,
    VT_ROUTE_PROFILE_RECOMMENDATIONS, /* the analyst's look at recommendations */
    VT_ROUTE_UI,                      /* the dashboard's files */
    VT_ROUTE_STATS_SEGMENTS,
    VT_ROUTE_VISITOR_DELETE,
    VT_ROUTE_OTHER, /* no route matched */
    VT_ROUTE_COUNT
};

const char *vt_route_name(enum vt_route route);

/* What happened to a consumed record, the `outcome` label. */
enum vt_event_outcome {
    VT_OUTCOME_APPLIED = 0, /* changed its profile */
    VT_OUTCOME_DUPLICATE,   /* redelivered (partition, offset) already applied */
    VT_OUTCOME_SKIPPED,     /* decoded, but carries nothing for profiles */
    VT_OUTCOME_DEAD_LETTER, /* could not be decoded; sent to the dead-letter topic */
    VT_OUTCOME_COUNT
};

enum vt_redis_origin { VT_REDIS_INGEST = 0, VT_REDIS_HTTP, VT_REDIS_ORIGIN_COUNT };

/* Partitions whose lag is exported; higher partition numbers are summed into lag_total
 * only. */
#define VT_METRICS_PARTITIONS_MAX 256

void vt_metrics_http(enum vt_route route, int status, uint64_t duration_ns);
void vt_metrics_event(enum vt_event_type type, enum vt_event_outcome outcome);
/* For records that did not decode, the type is unknown. */
void vt_metrics_event_undecoded(enum vt_event_outcome outcome);
void vt_metrics_decode_error(enum vt_decode_status status);
void vt_metrics_items_dropped(uint64_t n);
/* Add an applied event's out-of-range values, by field (vt_event.n_values_dropped). */
void vt_metrics_values_dropped(const size_t n[VT_AMOUNT_FIELD_COUNT]);
void vt_metrics_redis_error(enum vt_redis_origin origin);

/* Count a storefront request served as a cold start because Redis failed
 * (http.on_redis_error=cold_start). */
void vt_metrics_degraded(enum vt_route route);

/* Count an HTTP connection closed because it did not complete a request within
 * http.request_timeout_s. */
void vt_metrics_http_cut(void);
void vt_metrics_kafka_error(void);
void vt_metrics_dead_letter_failed(void);
void vt_metrics_batch(size_t records, uint64_t duration_ns);
/* What became of a published decision record. */
enum vt_decision_outcome {
    VT_DECISION_QUEUED = 0,
    VT_DECISION_DROPPED, /* the producer queue was full */
    VT_DECISION_DELIVERED,
    VT_DECISION_FAILED,
    VT_DECISION_OUTCOME_COUNT
};

void vt_metrics_decision(enum vt_decision_outcome outcome);

/* Records of a batch that changed the shared aggregates, and redeliveries they skipped. */
void vt_metrics_aggregates(size_t applied, size_t duplicates);
void vt_metrics_catalog(size_t products, size_t rejected);

/* The visitor step of a batch: records added to visitors, sessions linked for the first
 * time, records of sessions over visitor.sessions_max. */
void vt_metrics_visitors(size_t applied, size_t linked, size_t refused);
/* A record that named a visitor with blocked values only. */
void vt_metrics_visitor_blocked(void);
/* Count an applied record by its consent value (granted, denied, or none), and a consent
 * value that could not be read. */
void vt_metrics_consent(enum vt_consent consent, bool unreadable);
/* A visitor erasure (DELETE /v1/visitors/{id}) that deleted something, or nothing. */
void vt_metrics_erasure(bool deleted);
/* A reload of the segment definitions, and the number of segments loaded. */
void vt_metrics_segments_reload(bool ok, size_t segments);

/* Consumer lag of one partition (-1: not assigned to this instance). */
void vt_metrics_set_lag(int32_t partition, int64_t lag);
void vt_metrics_clear_lag(void);

/* Set the number of events-topic partitions assigned to this instance. */
void vt_metrics_set_assigned(int64_t partitions);

/* Events applied so far (all types), for tests and the demo's wait loop. */
uint64_t vt_metrics_events_applied(void);

/* Append the whole registry in the Prometheus text format (version 0.0.4). */
void vt_metrics_render(struct vt_buf *out);

#endif
