/*
 * vitrine-evaluate: the client of a running vitrine. It produces the recorded events to
 * Kafka as canonical events keyed by session id, reads how many records vitrine has
 * handled from GET /metrics, and requests GET /v1/sessions/{id}/recommendations.
 *
 * HTTP/1.1 over one keep-alive connection, one request at a time, to a plain http:// URL;
 * a response needs a Content-Length or must end by closing the connection. Not
 * thread-safe.
 */
#ifndef VITRINE_TOOLS_EVALUATE_VITRINE_H
#define VITRINE_TOOLS_EVALUATE_VITRINE_H

#include <stddef.h>
#include <stdint.h>

#include "evaluate_baselines.h"
#include "evaluate_data.h"

struct vt_eval_vitrine_options {
    const char *brokers; /* Kafka bootstrap servers */
    const char *topic;
    const char *url;     /* http://HOST:PORT of vitrine's HTTP API */
    int timeout_ms;      /* per HTTP request and per Kafka flush */
    int64_t time_shift_ms; /* added to every event time sent */
};

/* Records vitrine has handled, by outcome, summed over event types (vitrine_events_total). */
struct vt_eval_handled {
    uint64_t total;
    uint64_t applied;
    uint64_t duplicate;
    uint64_t skipped;
    uint64_t dead_letter;
};

/* One recommendation list as vitrine returned it. */
struct vt_eval_vitrine_list {
    uint32_t items[VT_EVAL_K_MAX]; /* data set item indexes; VT_EVAL_NONE for other ids */
    size_t n;
    char strategy[32];             /* the response's strategy, "" when absent */
    int status;                    /* HTTP status, 0 when the request failed */
    double latency_ms;             /* from sending the request to the end of the response */
};

struct vt_eval_vitrine;

/* Create the producer and check the URL. Returns NULL with a message in err on failure. */
struct vt_eval_vitrine *vt_eval_vitrine_open(const struct vt_eval_vitrine_options *options,
                                             char *err, size_t errsize);
void vt_eval_vitrine_close(struct vt_eval_vitrine *v);

/* Queue event `index` of d. Returns 0, or -1 when it cannot be encoded or queued. */
int vt_eval_vitrine_produce(struct vt_eval_vitrine *v, const struct vt_eval_dataset *d,
                            size_t index);

/* Wait until every queued event is delivered. Returns 0, or -1 when a delivery failed or
 * the wait timed out. */
int vt_eval_vitrine_flush(struct vt_eval_vitrine *v);

/* Events produced so far. */
uint64_t vt_eval_vitrine_produced(const struct vt_eval_vitrine *v);

/* Read the handled counts from /metrics. Returns 0, or -1 when the request failed. */
int vt_eval_vitrine_handled(struct vt_eval_vitrine *v, struct vt_eval_handled *out);

/* Poll /metrics until vitrine has handled at least `total` records. Returns 0, or -1 after
 * timeout_ms or when /metrics fails. */
int vt_eval_vitrine_wait_handled(struct vt_eval_vitrine *v, uint64_t total, int timeout_ms);

/* Wait until vitrine has finished `count` more successful refreshes of its shared
 * aggregates (vitrine_live_refreshes_total{result="ok"}) than when called, so that what
 * it handled before the call is visible in its recommendations. Returns 0, or -1 on an
 * HTTP error or timeout. */
int vt_eval_vitrine_wait_refreshes(struct vt_eval_vitrine *v, uint64_t count, int timeout_ms);

/* Ask for `limit` (at most VT_EVAL_K_MAX) recommendations for session `session` on the
 * page of product `product`, and map the returned ids through items. Returns 0 when vitrine
 * returned 200 with a list, -1 otherwise (out->status is the HTTP status, 0 for none). */
int vt_eval_vitrine_recommend(struct vt_eval_vitrine *v, const char *session,
                              const char *product, size_t limit,
                              const struct vt_eval_names *items,
                              struct vt_eval_vitrine_list *out);

#endif
