/*
 * vitrine: Redis storage of profiles.
 *
 * Keys of one profile share a hash tag so that one Lua script can update them atomically,
 * also in a Redis Cluster (prefix "vt:" by default):
 *
 *   vt:{<id>}:p      hash: counters, first/last seen, user id, gender log-odds and evidence,
 *                    revenue, and "o:<source tag>:<partition>" = last applied Kafka offset
 *   vt:{<id>}:cat    sorted set: category -> decayed log-score
 *   vt:{<id>}:brand  sorted set: brand -> decayed log-score
 *   vt:{<id>}:tier   sorted set: price tier -> decayed log-score
 *   vt:{<id>}:rv     sorted set: recently viewed product -> last view time (ms)
 *   vt:{<id>}:cart   hash: product -> quantity
 *   vt:{<id>}:buy    sorted set: purchased product -> last purchase time (ms)
 *   vt:{<id>}:seen   sorted set: product shown to the session -> impressions
 *   vt:{<id>}:clk    hash: clicked product -> "<placement>|<position>|<decision id>"
 *   vt:{<id>}:ax     hash: the apply script's reply per applied record, for a redelivery
 *                    whose aggregate step did not run before a crash
 *   vt:{<id>}:v      hash: the linked visitor as it stood when the session was linked
 *                    (see "visitors" below), so that serving the session reads no visitor key
 *
 * Shared aggregates (trending, item-to-item, statistics) live under the hash tag {agg};
 * docs/architecture.md lists them.
 *
 * Every write refreshes the TTL of all keys of the profile. Ids from outside are passed
 * as binary-safe arguments, never formatted into a command string.
 *
 * A struct vt_store is one connection. It is not thread-safe: the ingest thread owns one,
 * and each HTTP worker thread owns one of its own.
 */
#ifndef VITRINE_STORE_H
#define VITRINE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vitrine/alerts.h"
#include "vitrine/config.h"
#include "vitrine/profile.h"
#include "vitrine/util.h"

struct vt_store;

/* Connect (with the password and database from cfg) and load the profile scripts.
 * timeout_ms bounds connecting and every command. Returns NULL with a message in err. */
struct vt_store *vt_store_connect(const struct vt_config *cfg, int64_t timeout_ms, char *err,
                                  size_t errsize);
void vt_store_free(struct vt_store *st);

/* PING. Returns 0 when Redis answered. */
int vt_store_ping(struct vt_store *st, char *err, size_t errsize);

/* Recently viewed (or, for a purchase, previously purchased) products returned per record,
 * and clicks found for carted or purchased products. */
#define VT_APPLY_PREVIOUS_MAX 5
#define VT_APPLY_ATTRIBUTION_MAX 8

/* A cart or purchase of a product the session clicked earlier: where it was clicked. */
struct vt_attribution {
    char product[VT_PRODUCT_ID_MAX + 1];
    char placement[VT_PLACEMENT_MAX + 1];
    int32_t position; /* -1 when the click had none */
};

/* What the profile script reports about one record. */
struct vt_apply_result {
    bool applied; /* false: a redelivery the profile had already applied */
    /* Products the session viewed before this view (newest first), or purchased before
     * this purchase; the state before the record, or the current state for a redelivery. */
    size_t n_previous;
    char previous[VT_APPLY_PREVIOUS_MAX][VT_PRODUCT_ID_MAX + 1];
    size_t n_attributions;
    struct vt_attribution attributions[VT_APPLY_ATTRIBUTION_MAX];
    /* Bit i: the event's product i (a view) was new to the session. The aggregates count a
     * session's view of a product once, so that one session repeating views cannot steer
     * trending and co-views. */
    uint64_t fresh_views;
    /* false: the session has no consent; nothing about it was stored, and the aggregates
     * take only the counters for trending, statistics and alerts. */
    bool personal;
    /* The session's visitor before and after the record ("" when none). They differ when
     * the record linked the session to a new visitor, at a login for instance. */
    char visitor_before[VT_ID_MAX + 1];
    char visitor[VT_ID_MAX + 1];
    /* The session has a snapshot of its visitor (vt:{id}:v, written by the visitor
     * step when the session is linked). */
    bool has_snapshot;
};

/*
 * Batched profile updates: one pipelined round trip for the whole batch.
 *
 *   vt_store_batch_begin(st);
 *   for each delta: vt_store_batch_add(st, &delta);
 *   vt_store_batch_commit(st, results, n, err, errsize);
 *
 * commit sends every queued script call, waits for every reply and fills results[i] for
 * delta i. Returns 0 when Redis acknowledged all of them, -1 otherwise (connection lost,
 * timeout, script error); the caller then retries the whole batch, which is safe because
 * applying a delta twice has no effect. After -1 the connection is closed and re-opened
 * on the next begin.
 */
void vt_store_batch_begin(struct vt_store *st);
void vt_store_batch_add(struct vt_store *st, const struct vt_profile_delta *delta);
int vt_store_batch_commit(struct vt_store *st, struct vt_apply_result *results, size_t n,
                          char *err, size_t errsize);

/*
 * Batched updates of the shared aggregates, after the profiles of the batch were
 * acknowledged: one pipelined round trip of script calls, each taking a run of about 16
 * records. The script checks each record's (source tag, partition, offset) against the
 * aggregates' own watermark, so a redelivered record changes them only once, also when a
 * crash came between the profile and the aggregate step.
 *
 *   vt_store_aggregates_begin(st);
 *   for each record: vt_store_aggregates_add(st, &event, &delta, &result, &counts, now_ms);
 *   vt_store_aggregates_commit(st, &applied, err, errsize);
 *
 * event is the enriched event the delta was built from; result is what the profile
 * script reported for it. commit returns 0 and the number of records that changed the
 * aggregates, or -1 (retry the whole step, as for profiles).
 */
void vt_store_aggregates_begin(struct vt_store *st);
/* Alert counting of one record: the increments it causes (vt_alert_increments) and where
 * they go. */
struct vt_alert_counts {
    const struct vt_alert_rules *rules;
    const struct vt_alert_increment *increments;
    size_t n;
    int64_t bucket_ms; /* width of one bucket */
    int64_t ttl_s;     /* lifetime of a bucket: the longest history a rule reads */
};

void vt_store_aggregates_add(struct vt_store *st, const struct vt_event *event,
                             const struct vt_profile_delta *delta,
                             const struct vt_apply_result *result,
                             const struct vt_alert_counts *counts, int64_t now_ms);
int vt_store_aggregates_commit(struct vt_store *st, size_t *applied, char *err,
                               size_t errsize);

/* Statistics of one product or placement: impressions and clicks as the events report
 * them, carts and purchases (for a placement and per position: those that followed a click
 * there). */
#define VT_STATS_POSITIONS 100
#define VT_STATS_PLACEMENTS_MAX 16

struct vt_stats_counts {
    int64_t impressions, clicks, carts, purchases;
};

struct vt_stats {
    bool exists;
    struct vt_stats_counts total;
    /* [1..VT_STATS_POSITIONS] by list position; [0]: other or unknown positions */
    struct vt_stats_counts by_position[VT_STATS_POSITIONS + 1];
    size_t n_placements; /* products only: counts per placement */
    struct {
        char name[VT_PLACEMENT_MAX + 1];
        struct vt_stats_counts counts;
    } placements[VT_STATS_PLACEMENTS_MAX];
};

/* Read the statistics of a product (is_product) or a placement in one round trip. A name
 * without statistics gives 0 with out->exists == false. */
int vt_store_stats_read(struct vt_store *st, bool is_product, const char *name, size_t len,
                        struct vt_stats *out, char *err, size_t errsize);

/* ---- alerts (service/store/alerts.c; keys in docs/alerts.md) ---- */

/* Alert records one list request may return. */
#define VT_ALERT_LIST_MAX 200

/* Take or renew the alert leader lease for instance (SET NX PX, renewed only by its
 * owner). *leader is true when this instance owns the lease afterwards. */
int vt_store_alert_lease(struct vt_store *st, const char *instance, int64_t lease_ms,
                         bool *leader, char *err, size_t errsize);

/* Give the lease up if instance holds it (at shutdown, so another takes over at once). */
int vt_store_alert_release(struct vt_store *st, const char *instance, char *err,
                           size_t errsize);

/* The stream clock: the newest event time the aggregates applied and the wall time it was
 * applied at; both -1 before any. */
int vt_store_alert_clock(struct vt_store *st, int64_t *event_ms, int64_t *wall_ms, char *err,
                         size_t errsize);

/* Read the counting buckets of a rule that start at starts[0..n) in one round trip. fn
 * receives each field of bucket i ("g:<group>" or
 * "d:<group length>:<group>|<dimension>|<value>") and its amount. */
typedef void (*vt_store_bucket_fn)(void *arg, size_t bucket, const char *field, size_t len,
                                   double amount);
int vt_store_alert_buckets(struct vt_store *st, const char *rule, const int64_t *starts,
                           size_t n, vt_store_bucket_fn fn, void *arg, char *err,
                           size_t errsize);

/* Episode states: every field of the state hash, and setting (value) or deleting (NULL)
 * one. */
typedef void (*vt_store_field_fn)(void *arg, const char *field, size_t field_len,
                                  const char *value, size_t value_len);
int vt_store_alert_states(struct vt_store *st, vt_store_field_fn fn, void *arg, char *err,
                          size_t errsize);
int vt_store_alert_state_set(struct vt_store *st, const char *field, const char *value,
                             char *err, size_t errsize);

/* Store an alert record (JSON) and keep the newest `keep` in the list. */
int vt_store_alert_put(struct vt_store *st, const char *id, const char *json, size_t len,
                       int64_t fired_ms, int64_t keep, char *err, size_t errsize);

/* One alert record into json (left empty when there is none). */
int vt_store_alert_get(struct vt_store *st, const char *id, size_t id_len, struct vt_buf *json,
                       char *err, size_t errsize);

/* Record changes, each one script on the record, so that none overwrites another's work.
 * ack records who acknowledged (by, note, at). resolve_series marks one series (rule,
 * group) resolved at `at`, and the alert too when no series is left open. add_series adds
 * a series (JSON object) to an active alert. out receives the new record. It is left empty
 * when there is no such record, or for add_series when the alert resolved meanwhile. */
int vt_store_alert_ack(struct vt_store *st, const char *id, size_t id_len, const char *by,
                       const char *note, const char *at, struct vt_buf *out, char *err,
                       size_t errsize);
int vt_store_alert_resolve_series(struct vt_store *st, const char *id, const char *rule,
                                  const char *group, const char *at, struct vt_buf *out,
                                  char *err, size_t errsize);
struct vt_alert_join {
    const char *severity;        /* of the joining series' rule */
    const char *recipients_json; /* its recipients, a JSON array of strings */
    const char *rule;            /* its rule and reaction, which lead when its severity */
    const char *reaction;        /* is higher than the alert's */
};
int vt_store_alert_add_series(struct vt_store *st, const char *id, const char *series_json,
                              const struct vt_alert_join *join, struct vt_buf *out, char *err,
                              size_t errsize);

/* The newest `limit` (at most VT_ALERT_LIST_MAX) records, newest first. */
typedef void (*vt_store_record_fn)(void *arg, const char *json, size_t len);
int vt_store_alert_list(struct vt_store *st, size_t limit, vt_store_record_fn fn, void *arg,
                        char *err, size_t errsize);

/* Read a profile in one round trip. Affinity values are decayed to the profile's last
 * event; now_ms is used only for a profile without one. A profile that does not exist
 * gives 0 with p->exists == false. Returns -1 with a message when Redis failed. */
int vt_store_profile_read(struct vt_store *st, const char *id, size_t id_len, int64_t now_ms,
                          struct vt_profile *p, char *err, size_t errsize);

/* Delete every key of a profile. *deleted receives the number of keys removed. */
int vt_store_profile_delete(struct vt_store *st, const char *id, size_t id_len,
                            int64_t *deleted, char *err, size_t errsize);

/* ---- visitors (service/store/visitors.c) ----
 *
 *   vt:{#<visitor>}:p      hash: events, sessions (ever linked), first, last, g_lo, g_n,
 *                          revenue, "o:<source tag>:<partition>"
 *   vt:{#<visitor>}:cat    sorted set: category -> log-score at visitor.half_life_s
 *   vt:{#<visitor>}:brand  the same for brands
 *   vt:{#<visitor>}:tier   the same for price tiers
 *   vt:{#<visitor>}:s      sorted set: linked session -> wall time of its last record
 *   vt:{#<visitor>}:x      sorted set: session refused over visitor.sessions_max -> the same
 *   vt:{#<visitor>}:al     set: visitors this one took a session over from at a login
 *   vt:{#<visitor>}:to     set: visitors that took a session over from this one
 */

/* Outcome counts of the visitor step of one batch. */
struct vt_visitor_counts {
    size_t applied;  /* records added to a visitor */
    size_t linked;   /* sessions linked for the first time */
    size_t refused;  /* records of sessions over visitor.sessions_max */
};

/*
 * Batched visitor updates, after the profiles of the batch were acknowledged: one
 * pipelined round trip, one script call per record of a session with consent and a
 * visitor. session is the session's profile as read after the profile step when the
 * record linked it to a new visitor (a login): the new visitor takes it over once, in
 * place of the record's own contributions. NULL otherwise. covered: a later record of the
 * same session and visitor in the batch, which that session profile already contains, so
 * only its offset and event count are added. want_snapshot: the session needs a snapshot
 * of the visitor (vt:{id}:v) because it has none or moved to another visitor. Commit
 * writes the snapshots in one more round trip. Redeliveries change nothing, because the
 * visitor keeps its own offsets, but still write a requested snapshot.
 */
void vt_store_visitors_begin(struct vt_store *st);
void vt_store_visitors_add(struct vt_store *st, const struct vt_profile_delta *delta,
                           const struct vt_apply_result *result,
                           const struct vt_profile *session, bool covered,
                           bool want_snapshot, int64_t now_ms);
int vt_store_visitors_commit(struct vt_store *st, struct vt_visitor_counts *counts, char *err,
                             size_t errsize);

/* Visitors one erasure erases or cleans, and sessions it deletes in all: a visitor lists
 * at most 1,000 linked (visitor.sessions_max) and 10,000 refused sessions. Beyond these
 * the erasure reports itself incomplete. */
#define VT_ERASE_VISITORS_MAX 1024
#define VT_ERASE_SESSIONS_MAX 11000

/* Counts of what an erasure deleted. */
struct vt_erasure {
    int64_t visitors; /* the visitor and those it took sessions over from */
    int64_t sessions; /* sessions whose keys were deleted */
    int64_t keys;     /* keys deleted */
    bool complete;    /* false: more visitors or sessions than one erasure follows */
};

/* Erase a visitor, every session it linked or rejected, and the visitors it took sessions
 * over from at a login, with their sessions. A visitor that others took sessions over from
 * too is only cleaned of the erased ids. Visitors that took sessions over from an erased
 * one, and theirs in turn, lose the erased visitors' and sessions' ids. Erasing an unknown
 * visitor deletes nothing and succeeds. Adds to *out. */
int vt_store_visitor_erase(struct vt_store *st, const char *visitor, size_t len,
                           struct vt_erasure *out, char *err, size_t errsize);

/* A session's profile as it is served: the session read, and when the session is linked
 * to a visitor, the snapshot of the visitor's long-term affinities that the session keeps
 * (vt:{id}:v) blended in (vt_profile_add_visitor, visitor.weight). One round trip. v is
 * scratch. */
int vt_store_profile_read_linked(struct vt_store *st, const char *id, size_t id_len,
                                 int64_t now_ms, struct vt_profile *p,
                                 struct vt_visitor_profile *v, char *err, size_t errsize);

/* ---- segment statistics (service/store/segments.c) ----
 *
 *   vt:{agg}:seg:n       hash: segment -> estimated members, "_profiles", "_sampled", "_at"
 *   vt:{agg}:seg:served  hash: segment -> responses that reported it
 *   vt:{agg}:seg:lock    the instance counting now (SET NX PX)
 */

/* Take the counting lock for ttl_ms unless another instance holds it. */
int vt_store_segment_lock(struct vt_store *st, const char *instance, int64_t ttl_ms,
                          bool *taken, char *err, size_t errsize);

/* One SCAN page over the session profiles: fn receives each session id found, *cursor
 * the next cursor (0 when the scan is complete). */
typedef void (*vt_store_id_fn)(void *arg, const char *id, size_t len);
int vt_store_scan_profiles(struct vt_store *st, uint64_t *cursor, vt_store_id_fn fn, void *arg,
                           char *err, size_t errsize);

/* Replace the member counts (at most 64 segments) with the result of one count. */
int vt_store_segment_counts_put(struct vt_store *st, const char *const *names,
                                const int64_t *members, size_t n, int64_t profiles,
                                int64_t sampled, int64_t at_ms, char *err, size_t errsize);

/* Add served counts (at most 64 segments); the hash expires ttl_s after the last add. */
int vt_store_segment_served_add(struct vt_store *st, const char *const *names,
                                const int64_t *served, size_t n, int64_t ttl_s, char *err,
                                size_t errsize);

/* Read both hashes in one round trip: fn gets every field, served false for the member
 * counts (with the "_" totals) and true for the served counts. */
typedef void (*vt_store_count_fn)(void *arg, bool served, const char *field, size_t len,
                                  int64_t value);
int vt_store_segment_stats_read(struct vt_store *st, vt_store_count_fn fn, void *arg,
                                char *err, size_t errsize);

#endif
