/*
 * vitrine: the process metrics registry (see include/vitrine/metrics.h).
 *
 * Owner: the process. Every counter is a relaxed atomic; writers never lock, and a reader
 * of /metrics may see counters from slightly different instants, which Prometheus
 * tolerates.
 */
#include "vitrine/metrics.h"

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <string.h>

/* Latency buckets in seconds, the `le` label. */
static const double latency_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                        0.01,   0.025,   0.05,   0.1,   0.25,   1.0};
#define LATENCY_BUCKETS (sizeof latency_bounds / sizeof latency_bounds[0])

/* Status classes kept per route. */
static const int tracked_statuses[] = {200, 204, 304, 400, 401, 403, 404, 405,
                                       413, 414, 429, 431, 500, 503};
#define STATUS_COUNT (sizeof tracked_statuses / sizeof tracked_statuses[0])
#define STATUS_OTHER STATUS_COUNT

static const char *const route_names[VT_ROUTE_COUNT] = {
    [VT_ROUTE_SEGMENT] = "segment",
    [VT_ROUTE_RECOMMENDATIONS] = "recommendations",
    [VT_ROUTE_PROFILE_GET] = "profile_get",
    [VT_ROUTE_PROFILE_DELETE] = "profile_delete",
    [VT_ROUTE_HEALTHZ] = "healthz",
    [VT_ROUTE_READYZ] = "readyz",
    [VT_ROUTE_METRICS] = "metrics",
    [VT_ROUTE_OPENAPI] = "openapi",
    [VT_ROUTE_RERANK] = "rerank",
    [VT_ROUTE_SIMILAR] = "similar",
    [VT_ROUTE_TRENDING] = "trending",
    [VT_ROUTE_STATS_PRODUCT] = "stats_product",
    [VT_ROUTE_STATS_PLACEMENT] = "stats_placement",
    [VT_ROUTE_ALERTS] = "alerts",
    [VT_ROUTE_ALERT_GET] = "alert_get",
    [VT_ROUTE_ALERT_ACK] = "alert_ack",
    [VT_ROUTE_PROFILE_RECOMMENDATIONS] = "profile_recommendations",
    [VT_ROUTE_UI] = "ui",
    [VT_ROUTE_STATS_SEGMENTS] = "stats_segments",
    [VT_ROUTE_VISITOR_DELETE] = "visitor_delete",
    [VT_ROUTE_OTHER] = "other",
};

static const char *const outcome_names[VT_OUTCOME_COUNT] = {
    [VT_OUTCOME_APPLIED] = "applied",
    [VT_OUTCOME_DUPLICATE] = "duplicate",
    [VT_OUTCOME_SKIPPED] = "skipped",
    [VT_OUTCOME_DEAD_LETTER] = "dead_letter",
};

static const char *const redis_origin_names[VT_REDIS_ORIGIN_COUNT] = {"ingest", "http"};

struct route_metrics {
    atomic_uint_fast64_t by_status[STATUS_COUNT + 1];
    atomic_uint_fast64_t buckets[LATENCY_BUCKETS]; /* non-cumulative; summed when rendered */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_ns;
};

static struct {
    struct route_metrics routes[VT_ROUTE_COUNT];
    /* Events by type and outcome; the extra row holds records whose type is unknown. */
    atomic_uint_fast64_t events[VT_EV_TYPE_COUNT + 1][VT_OUTCOME_COUNT];
    atomic_uint_fast64_t decode_errors[VT_DECODE_STATUS_COUNT];
    atomic_uint_fast64_t items_dropped;
    atomic_uint_fast64_t values_dropped[VT_AMOUNT_FIELD_COUNT];
    atomic_uint_fast64_t redis_errors[VT_REDIS_ORIGIN_COUNT];
    atomic_uint_fast64_t degraded[VT_ROUTE_COUNT];
    atomic_uint_fast64_t http_cut;
    atomic_uint_fast64_t kafka_errors;
    atomic_uint_fast64_t dead_letter_failed;
    atomic_uint_fast64_t batches;
    atomic_uint_fast64_t batch_records;
    atomic_uint_fast64_t batch_ns;
    atomic_uint_fast64_t decisions[VT_DECISION_OUTCOME_COUNT];
    atomic_uint_fast64_t aggregates_applied;
    atomic_uint_fast64_t aggregates_duplicate;
    atomic_int_fast64_t lag[VT_METRICS_PARTITIONS_MAX];
    atomic_int_fast64_t assigned; /* partitions assigned to this instance */
    atomic_uint_fast64_t catalog_products;
    atomic_uint_fast64_t catalog_rejected;
    atomic_uint_fast64_t applied_total;
    atomic_uint_fast64_t visitor_records[2]; /* applied, refused */
    atomic_uint_fast64_t visitor_links;
    atomic_uint_fast64_t visitor_blocked;
    atomic_uint_fast64_t consent[3]; /* by enum vt_consent */
    atomic_uint_fast64_t consent_unreadable;
    atomic_uint_fast64_t erasures[2]; /* deleted, nothing */
    atomic_uint_fast64_t segment_reloads[2]; /* ok, failed */
    atomic_uint_fast64_t segments_loaded;
} registry;

static atomic_bool lag_initialised;

const char *vt_route_name(enum vt_route route)
{
    return (unsigned)route < VT_ROUTE_COUNT ? route_names[route] : "other";
}


static size_t status_index(int status)
{
    for (size_t i = 0; i < STATUS_COUNT; i++) {
        if (tracked_statuses[i] == status)
            return i;
    }
    return STATUS_OTHER;
}


void vt_metrics_http(enum vt_route route, int status, uint64_t duration_ns)
{
    struct route_metrics *m = &registry.routes[(unsigned)route < VT_ROUTE_COUNT ? route
                                                                               : VT_ROUTE_OTHER];
    double seconds = (double)duration_ns / 1e9;
    size_t b = 0;

    atomic_fetch_add_explicit(&m->by_status[status_index(status)], 1, memory_order_relaxed);
    while (b < LATENCY_BUCKETS && seconds > latency_bounds[b])
        b++;
    if (b < LATENCY_BUCKETS)
        atomic_fetch_add_explicit(&m->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->sum_ns, duration_ns, memory_order_relaxed);
}


void vt_metrics_event(enum vt_event_type type, enum vt_event_outcome outcome)
{
    unsigned t = (unsigned)type < VT_EV_TYPE_COUNT ? (unsigned)type : VT_EV_TYPE_COUNT;

    atomic_fetch_add_explicit(&registry.events[t][outcome], 1, memory_order_relaxed);
    if (outcome == VT_OUTCOME_APPLIED)
        atomic_fetch_add_explicit(&registry.applied_total, 1, memory_order_relaxed);
}


void vt_metrics_event_undecoded(enum vt_event_outcome outcome)
{
    atomic_fetch_add_explicit(&registry.events[VT_EV_TYPE_COUNT][outcome], 1,
                              memory_order_relaxed);
}


void vt_metrics_decode_error(enum vt_decode_status status)
{
    if ((unsigned)status < VT_DECODE_STATUS_COUNT)
        atomic_fetch_add_explicit(&registry.decode_errors[status], 1, memory_order_relaxed);
}


void vt_metrics_items_dropped(uint64_t n)
{
    atomic_fetch_add_explicit(&registry.items_dropped, n, memory_order_relaxed);
}


void vt_metrics_values_dropped(const size_t n[VT_AMOUNT_FIELD_COUNT])
{
    for (int f = 0; f < VT_AMOUNT_FIELD_COUNT; f++)
        atomic_fetch_add_explicit(&registry.values_dropped[f], n[f], memory_order_relaxed);
}


void vt_metrics_redis_error(enum vt_redis_origin origin)
{
    atomic_fetch_add_explicit(&registry.redis_errors[origin], 1, memory_order_relaxed);
}


void vt_metrics_degraded(enum vt_route route)
{
    if ((unsigned)route < VT_ROUTE_COUNT)
        atomic_fetch_add_explicit(&registry.degraded[route], 1, memory_order_relaxed);
}


void vt_metrics_http_cut(void)
{
    atomic_fetch_add_explicit(&registry.http_cut, 1, memory_order_relaxed);
}


void vt_metrics_kafka_error(void)
{
    atomic_fetch_add_explicit(&registry.kafka_errors, 1, memory_order_relaxed);
}


void vt_metrics_dead_letter_failed(void)
{
    atomic_fetch_add_explicit(&registry.dead_letter_failed, 1, memory_order_relaxed);
}


void vt_metrics_batch(size_t records, uint64_t duration_ns)
{
    atomic_fetch_add_explicit(&registry.batches, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&registry.batch_records, records, memory_order_relaxed);
    atomic_fetch_add_explicit(&registry.batch_ns, duration_ns, memory_order_relaxed);
}


void vt_metrics_decision(enum vt_decision_outcome outcome)
{
    if ((unsigned)outcome < VT_DECISION_OUTCOME_COUNT)
        atomic_fetch_add_explicit(&registry.decisions[outcome], 1, memory_order_relaxed);
}


void vt_metrics_aggregates(size_t applied, size_t duplicates)
{
    atomic_fetch_add_explicit(&registry.aggregates_applied, applied, memory_order_relaxed);
    atomic_fetch_add_explicit(&registry.aggregates_duplicate, duplicates, memory_order_relaxed);
}


void vt_metrics_visitors(size_t applied, size_t linked, size_t refused)
{
    atomic_fetch_add_explicit(&registry.visitor_records[0], applied, memory_order_relaxed);
    atomic_fetch_add_explicit(&registry.visitor_records[1], refused, memory_order_relaxed);
    atomic_fetch_add_explicit(&registry.visitor_links, linked, memory_order_relaxed);
}


void vt_metrics_visitor_blocked(void)
{
    atomic_fetch_add_explicit(&registry.visitor_blocked, 1, memory_order_relaxed);
}


void vt_metrics_consent(enum vt_consent consent, bool unreadable)
{
    if ((unsigned)consent < 3)
        atomic_fetch_add_explicit(&registry.consent[consent], 1, memory_order_relaxed);
    if (unreadable)
        atomic_fetch_add_explicit(&registry.consent_unreadable, 1, memory_order_relaxed);
}


void vt_metrics_erasure(bool deleted)
{
    atomic_fetch_add_explicit(&registry.erasures[deleted ? 0 : 1], 1, memory_order_relaxed);
}


void vt_metrics_segments_reload(bool ok, size_t segments)
{
    atomic_fetch_add_explicit(&registry.segment_reloads[ok ? 0 : 1], 1, memory_order_relaxed);
    if (ok)
        atomic_store_explicit(&registry.segments_loaded, segments, memory_order_relaxed);
}


void vt_metrics_catalog(size_t products, size_t rejected)
{
    atomic_store_explicit(&registry.catalog_products, products, memory_order_relaxed);
    atomic_store_explicit(&registry.catalog_rejected, rejected, memory_order_relaxed);
}


void vt_metrics_clear_lag(void)
{
    for (size_t i = 0; i < VT_METRICS_PARTITIONS_MAX; i++)
        atomic_store_explicit(&registry.lag[i], -1, memory_order_relaxed);
    atomic_store(&lag_initialised, true);
}


void vt_metrics_set_assigned(int64_t partitions)
{
    atomic_store_explicit(&registry.assigned, partitions, memory_order_relaxed);
}


void vt_metrics_set_lag(int32_t partition, int64_t lag)
{
    if (!atomic_load(&lag_initialised))
        vt_metrics_clear_lag();
    if (partition >= 0 && partition < VT_METRICS_PARTITIONS_MAX)
        atomic_store_explicit(&registry.lag[partition], lag, memory_order_relaxed);
}


uint64_t vt_metrics_events_applied(void)
{
    return atomic_load_explicit(&registry.applied_total, memory_order_relaxed);
}


static uint64_t load(atomic_uint_fast64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}


static void render_http(struct vt_buf *out)
{
    vt_buf_appends(out, "# HELP vitrine_http_requests_total HTTP requests by route and "
                        "status code.\n# TYPE vitrine_http_requests_total counter\n");
    for (int r = 0; r < VT_ROUTE_COUNT; r++) {
        for (size_t s = 0; s <= STATUS_COUNT; s++) {
            uint64_t v = load(&registry.routes[r].by_status[s]);
            if (v == 0)
                continue;
            if (s == STATUS_OTHER)
                vt_buf_printf(out, "vitrine_http_requests_total{route=\"%s\",code=\"other\"} "
                              "%" PRIu64 "\n", route_names[r], v);
            else
                vt_buf_printf(out, "vitrine_http_requests_total{route=\"%s\",code=\"%d\"} "
                              "%" PRIu64 "\n", route_names[r], tracked_statuses[s], v);
        }
    }

    vt_buf_appends(out, "# HELP vitrine_http_request_duration_seconds Time from request "
                        "to response, by route.\n"
                        "# TYPE vitrine_http_request_duration_seconds histogram\n");
    for (int r = 0; r < VT_ROUTE_COUNT; r++) {
        struct route_metrics *m = &registry.routes[r];
        uint64_t count = load(&m->count), cumulative = 0;

        if (count == 0)
            continue;
        for (size_t b = 0; b < LATENCY_BUCKETS; b++) {
            cumulative += load(&m->buckets[b]);
            vt_buf_printf(out, "vitrine_http_request_duration_seconds_bucket{route=\"%s\","
                          "le=\"%g\"} %" PRIu64 "\n", route_names[r], latency_bounds[b],
                          cumulative);
        }
        vt_buf_printf(out, "vitrine_http_request_duration_seconds_bucket{route=\"%s\","
                      "le=\"+Inf\"} %" PRIu64 "\n", route_names[r], count);
        vt_buf_printf(out, "vitrine_http_request_duration_seconds_sum{route=\"%s\"} %.9f\n",
                      route_names[r], (double)load(&m->sum_ns) / 1e9);
        vt_buf_printf(out, "vitrine_http_request_duration_seconds_count{route=\"%s\"} "
                      "%" PRIu64 "\n", route_names[r], count);
    }
}


static void render_ingest(struct vt_buf *out)
{
    vt_buf_appends(out, "# HELP vitrine_events_total Consumed records by event type and "
                        "outcome.\n# TYPE vitrine_events_total counter\n");
    for (int t = 0; t <= VT_EV_TYPE_COUNT; t++) {
        const char *type = t < VT_EV_TYPE_COUNT ? vt_event_type_name(t) : "unknown";
        for (int o = 0; o < VT_OUTCOME_COUNT; o++) {
            uint64_t v = load(&registry.events[t][o]);
            if (v > 0)
                vt_buf_printf(out, "vitrine_events_total{type=\"%s\",outcome=\"%s\"} "
                              "%" PRIu64 "\n", type, outcome_names[o], v);
        }
    }

    vt_buf_appends(out, "# HELP vitrine_decode_failures_total Records that could not be "
                        "decoded, by reason.\n# TYPE vitrine_decode_failures_total counter\n");
    for (int s = VT_DECODE_ERR_EMPTY; s < VT_DECODE_STATUS_COUNT; s++)
        vt_buf_printf(out, "vitrine_decode_failures_total{reason=\"%s\"} %" PRIu64 "\n",
                      vt_decode_status_name(s), load(&registry.decode_errors[s]));

    vt_buf_printf(out, "# HELP vitrine_event_items_dropped_total Products dropped from "
                  "events (invalid id or over the per-event limit).\n"
                  "# TYPE vitrine_event_items_dropped_total counter\n"
                  "vitrine_event_items_dropped_total %" PRIu64 "\n",
                  load(&registry.items_dropped));
    vt_buf_appends(out, "# HELP vitrine_event_values_dropped_total Values dropped from "
                        "applied events: prices, quantities and order values out of range, "
                        "and unusable user and customer ids.\n"
                        "# TYPE vitrine_event_values_dropped_total counter\n");
    for (int f = 0; f < VT_AMOUNT_FIELD_COUNT; f++)
        vt_buf_printf(out, "vitrine_event_values_dropped_total{field=\"%s\"} %" PRIu64 "\n",
                      vt_decode_amount_field_name((enum vt_amount_field)f),
                      load(&registry.values_dropped[f]));

    vt_buf_printf(out, "# HELP vitrine_ingest_batches_total Batches applied to Redis.\n"
                  "# TYPE vitrine_ingest_batches_total counter\n"
                  "vitrine_ingest_batches_total %" PRIu64 "\n"
                  "# HELP vitrine_ingest_batch_records_total Records in applied batches.\n"
                  "# TYPE vitrine_ingest_batch_records_total counter\n"
                  "vitrine_ingest_batch_records_total %" PRIu64 "\n"
                  "# HELP vitrine_ingest_batch_seconds_total Time spent applying batches.\n"
                  "# TYPE vitrine_ingest_batch_seconds_total counter\n"
                  "vitrine_ingest_batch_seconds_total %.6f\n",
                  load(&registry.batches), load(&registry.batch_records),
                  (double)load(&registry.batch_ns) / 1e9);

    static const char *const decision_names[VT_DECISION_OUTCOME_COUNT] = {
        "queued", "dropped", "delivered", "failed"};
    vt_buf_appends(out, "# HELP vitrine_decisions_total Decision records handed to Kafka, by "
                        "outcome.\n# TYPE vitrine_decisions_total counter\n");
    for (int o = 0; o < VT_DECISION_OUTCOME_COUNT; o++)
        vt_buf_printf(out, "vitrine_decisions_total{outcome=\"%s\"} %" PRIu64 "\n",
                      decision_names[o], load(&registry.decisions[o]));

    vt_buf_printf(out, "# HELP vitrine_aggregate_records_total Records applied to the "
                  "shared aggregates, and redeliveries they skipped.\n"
                  "# TYPE vitrine_aggregate_records_total counter\n"
                  "vitrine_aggregate_records_total{outcome=\"applied\"} %" PRIu64 "\n"
                  "vitrine_aggregate_records_total{outcome=\"duplicate\"} %" PRIu64 "\n",
                  load(&registry.aggregates_applied), load(&registry.aggregates_duplicate));

    vt_buf_printf(out, "# HELP vitrine_visitor_records_total Records added to the visitor "
                  "their session is linked to, and records of sessions refused because the "
                  "visitor had visitor.sessions_max sessions.\n"
                  "# TYPE vitrine_visitor_records_total counter\n"
                  "vitrine_visitor_records_total{outcome=\"applied\"} %" PRIu64 "\n"
                  "vitrine_visitor_records_total{outcome=\"refused\"} %" PRIu64 "\n"
                  "# HELP vitrine_visitor_links_total Sessions linked to a visitor.\n"
                  "# TYPE vitrine_visitor_links_total counter\n"
                  "vitrine_visitor_links_total %" PRIu64 "\n"
                  "# HELP vitrine_visitor_ids_blocked_total Records whose visitor fields held "
                  "only blocked values (visitor.blocked).\n"
                  "# TYPE vitrine_visitor_ids_blocked_total counter\n"
                  "vitrine_visitor_ids_blocked_total %" PRIu64 "\n",
                  load(&registry.visitor_records[0]), load(&registry.visitor_records[1]),
                  load(&registry.visitor_links), load(&registry.visitor_blocked));
    vt_buf_printf(out, "# HELP vitrine_consent_records_total Applied records by the consent "
                  "they carried.\n"
                  "# TYPE vitrine_consent_records_total counter\n"
                  "vitrine_consent_records_total{consent=\"unknown\"} %" PRIu64 "\n"
                  "vitrine_consent_records_total{consent=\"granted\"} %" PRIu64 "\n"
                  "vitrine_consent_records_total{consent=\"denied\"} %" PRIu64 "\n"
                  "# HELP vitrine_consent_unreadable_total Consent values that were neither "
                  "a yes nor a no; the record counts as not saying.\n"
                  "# TYPE vitrine_consent_unreadable_total counter\n"
                  "vitrine_consent_unreadable_total %" PRIu64 "\n"
                  "# HELP vitrine_erasures_total Visitor erasures, by whether they found "
                  "anything to delete.\n"
                  "# TYPE vitrine_erasures_total counter\n"
                  "vitrine_erasures_total{outcome=\"deleted\"} %" PRIu64 "\n"
                  "vitrine_erasures_total{outcome=\"nothing\"} %" PRIu64 "\n",
                  load(&registry.consent[0]), load(&registry.consent[1]),
                  load(&registry.consent[2]), load(&registry.consent_unreadable),
                  load(&registry.erasures[0]), load(&registry.erasures[1]));
    vt_buf_printf(out, "# HELP vitrine_segment_reloads_total Loads of the segment "
                  "definitions, at start and on SIGHUP, by outcome.\n"
                  "# TYPE vitrine_segment_reloads_total counter\n"
                  "vitrine_segment_reloads_total{outcome=\"ok\"} %" PRIu64 "\n"
                  "vitrine_segment_reloads_total{outcome=\"failed\"} %" PRIu64 "\n"
                  "# HELP vitrine_segments Segments defined in the active definitions.\n"
                  "# TYPE vitrine_segments gauge\n"
                  "vitrine_segments %" PRIu64 "\n",
                  load(&registry.segment_reloads[0]), load(&registry.segment_reloads[1]),
                  load(&registry.segments_loaded));

    vt_buf_appends(out, "# HELP vitrine_consumer_lag Records between the consumer position "
                        "and the end of each assigned partition.\n"
                        "# TYPE vitrine_consumer_lag gauge\n");
    int64_t total = 0;
    if (atomic_load(&lag_initialised)) {
        for (int p = 0; p < VT_METRICS_PARTITIONS_MAX; p++) {
            int64_t lag = atomic_load_explicit(&registry.lag[p], memory_order_relaxed);
            if (lag < 0)
                continue;
            total += lag;
            vt_buf_printf(out, "vitrine_consumer_lag{partition=\"%d\"} %" PRId64 "\n", p, lag);
        }
    }
    vt_buf_printf(out, "# HELP vitrine_consumer_lag_total Sum of the lag of all assigned "
                  "partitions (0 also while none is assigned: see "
                  "vitrine_consumer_assigned_partitions).\n"
                  "# TYPE vitrine_consumer_lag_total gauge\n"
                  "vitrine_consumer_lag_total %" PRId64 "\n"
                  "# HELP vitrine_consumer_assigned_partitions Partitions of the events topic "
                  "assigned to this instance.\n"
                  "# TYPE vitrine_consumer_assigned_partitions gauge\n"
                  "vitrine_consumer_assigned_partitions %" PRId64 "\n",
                  total, (int64_t)atomic_load_explicit(&registry.assigned,
                                                       memory_order_relaxed));
}


void vt_metrics_render(struct vt_buf *out)
{
    /* The libraries' versions are the ones loaded at run time, except hiredis, whose
     * only version is the header's at build time. */
    vt_buf_printf(out, "# HELP vitrine_build_info Version of the running binary and of "
                  "the libraries it uses.\n"
                  "# TYPE vitrine_build_info gauge\n"
                  "vitrine_build_info{version=\"%s\",librdkafka=\"%s\",libmicrohttpd=\"%s\","
                  "hiredis=\"%d.%d.%d\",cjson=\"%s\"} 1\n",
                  VITRINE_VERSION, rd_kafka_version_str(), MHD_get_version(), HIREDIS_MAJOR,
                  HIREDIS_MINOR, HIREDIS_PATCH, cJSON_Version());
    render_http(out);
    render_ingest(out);

    vt_buf_appends(out, "# HELP vitrine_redis_errors_total Failed Redis calls by origin.\n"
                        "# TYPE vitrine_redis_errors_total counter\n");
    for (int o = 0; o < VT_REDIS_ORIGIN_COUNT; o++)
        vt_buf_printf(out, "vitrine_redis_errors_total{origin=\"%s\"} %" PRIu64 "\n",
                      redis_origin_names[o], load(&registry.redis_errors[o]));
    vt_buf_appends(out, "# HELP vitrine_http_degraded_total Storefront requests answered as "
                        "a cold start because Redis failed (http.on_redis_error).\n"
                        "# TYPE vitrine_http_degraded_total counter\n");
    static const enum vt_route degradable[] = {VT_ROUTE_SEGMENT, VT_ROUTE_RECOMMENDATIONS,
                                               VT_ROUTE_RERANK};
    for (size_t i = 0; i < sizeof degradable / sizeof degradable[0]; i++)
        vt_buf_printf(out, "vitrine_http_degraded_total{route=\"%s\"} %" PRIu64 "\n",
                      vt_route_name(degradable[i]), load(&registry.degraded[degradable[i]]));
    vt_buf_printf(out, "# HELP vitrine_http_connections_cut_total HTTP connections closed "
                  "because they did not complete a request within http.request_timeout_s.\n"
                  "# TYPE vitrine_http_connections_cut_total counter\n"
                  "vitrine_http_connections_cut_total %" PRIu64 "\n",
                  load(&registry.http_cut));
    vt_buf_printf(out, "# HELP vitrine_kafka_errors_total Errors reported by librdkafka.\n"
                  "# TYPE vitrine_kafka_errors_total counter\n"
                  "vitrine_kafka_errors_total %" PRIu64 "\n"
                  "# HELP vitrine_dead_letter_failures_total Records the dead-letter "
                  "producer could not deliver.\n"
                  "# TYPE vitrine_dead_letter_failures_total counter\n"
                  "vitrine_dead_letter_failures_total %" PRIu64 "\n"
                  "# HELP vitrine_catalog_products Products in the loaded catalog.\n"
                  "# TYPE vitrine_catalog_products gauge\n"
                  "vitrine_catalog_products %" PRIu64 "\n"
                  "# HELP vitrine_catalog_rejected_lines Catalog lines skipped as invalid.\n"
                  "# TYPE vitrine_catalog_rejected_lines gauge\n"
                  "vitrine_catalog_rejected_lines %" PRIu64 "\n",
                  load(&registry.kafka_errors), load(&registry.dead_letter_failed),
                  load(&registry.catalog_products), load(&registry.catalog_rejected));
}
