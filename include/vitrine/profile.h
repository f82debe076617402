/*
 * vitrine: the session profile, its decay math and gender inference.
 *
 * A profile lives in Redis (see store.h for the keys). This header defines
 *   - struct vt_profile: a profile as read back for one request;
 *   - struct vt_profile_delta: what one event changes, computed in the ingest thread from
 *     the enriched event and applied by the store in one atomic script call;
 *   - the math both sides share.
 *
 * Time decay uses forward decay in the log domain. An interaction of weight w at time t
 * (seconds since the Unix epoch) contributes the log-score
 *
 *     x = ln(w) + t * ln2 / H          (H: half-life in seconds)
 *
 * and an affinity entry stores the log of the sum of its contributions,
 * combined with log-add-exp. Addition commutes, so the stored value does not depend on the
 * order in which events arrive; ranking entries by log-score ranks them by their decayed
 * value at any common time; and the value at time `now` is exp(score - now * ln2 / H).
 * Scores grow linearly with time (about 10^7 after 60 years at a one-minute half-life), so
 * nothing overflows and the relative rounding error of a double stays below 1e-8.
 */
#ifndef VITRINE_PROFILE_H
#define VITRINE_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vitrine/catalog.h"
#include "vitrine/config.h"
#include "vitrine/event.h"
#include "vitrine/limits.h"

struct vt_segments;

/* ---- decay math ---- */

/*
 * Redis keeps a log-score as the integer round(x * VT_SCORE_SCALE). Redis 7.0 stores a small
 * sorted set compactly (listpack): an integer score stays an integer, but any other double
 * becomes 17-digit text that Redis parses again at every insert and lookup. In the ingest
 * benchmark that parsing took about a third of Redis' time (perf). The step, 2^-20 in log
 * units, changes a decayed value by at most 5e-7 of itself. The largest score (a
 * one-second half-life in the year 2100) stays below 2^52, where doubles represent
 * integers exactly.
 */
#define VT_SCORE_SCALE 1048576.0
#define VT_SCORE_SCALE_TEXT "1048576" /* the same, for the Lua scripts */

/* The integer Redis stores for log-score x, and the log-score of a stored integer. */
int64_t vt_score_stored(double log_score);
double vt_score_from_stored(double stored);

/* Log-score of one contribution of weight w > 0 at time ts_ms. */
double vt_decay_log_score(double weight, int64_t ts_ms, double half_life_s);

/* ln(exp(a) + exp(b)) without overflow. */
double vt_decay_log_add(double a, double b);

/* Decayed value at now_ms of an entry with this log-score. */
double vt_decay_value(double log_score, int64_t now_ms, double half_life_s);

/* ---- gender ---- */

enum vt_segment { VT_SEGMENT_UNKNOWN = 0, VT_SEGMENT_FEMALE, VT_SEGMENT_MALE };

const char *vt_segment_name(enum vt_segment segment);

struct vt_gender_estimate {
    enum vt_segment segment;
    double p_female;    /* probability the visitor shops for women's products */
    double probability; /* probability of the reported segment (p_female, 1 - p_female,
                           or max of both when unknown) */
};

/* Turn accumulated log-odds evidence (positive: female) into a segment. The segment is
 * female or male only when its probability reaches cfg->gender_threshold and at least
 * cfg->gender_min_evidence gendered interactions were seen. */
void vt_gender_estimate(double log_odds, int64_t evidence, const struct vt_config *cfg,
                        struct vt_gender_estimate *out);

/* Gender target of a product from its name and category names under the configured
 * keyword lists (whole words, case-insensitive). Both lists matching gives UNISEX. */
enum vt_gender vt_gender_from_text(const struct vt_config *cfg, const char *text,
                                   size_t len);

/* ---- profile read model ---- */

struct vt_scored_name {
    char name[VT_NAME_MAX + 1];
    double log_score; /* as stored */
    double value;     /* decayed to the profile's last event (last_seen_ms) */
};

struct vt_timed_id {
    char id[VT_PRODUCT_ID_MAX + 1];
    int64_t ts_ms;
};

struct vt_cart_line {
    char id[VT_PRODUCT_ID_MAX + 1];
    int64_t quantity;
};

/* A product and how often it was shown to the session (impressions). */
struct vt_seen_product {
    char id[VT_PRODUCT_ID_MAX + 1];
    int64_t count;
};

struct vt_profile {
    bool exists; /* false: no event seen for this id (cold start) */
    char user_id[VT_ID_MAX + 1];
    int64_t first_seen_ms;
    int64_t last_seen_ms;
    int64_t events;
    int64_t count_by_type[VT_EV_TYPE_COUNT];
    double revenue;
    double gender_log_odds;
    int64_t gender_evidence;
    int64_t ttl_s; /* remaining time to live, -1 when unknown */
    int64_t last_by_type_ms[VT_EV_TYPE_COUNT]; /* newest event of each type, -1: none */
    /* Consent (docs/privacy.md): denied when the session's events denied it, or gave no
     * value under consent.default=denied. Such a profile contains nothing else and is
     * served non-personalised responses. given: the session granted consent. */
    bool consent_denied;
    bool consent_given;
    /* The visitor the session names ("" when none), whether it linked the session, and
     * how many sessions that visitor ever linked (0 without a visitor), this one included
     * when linked. The affinities above already include a linked visitor's long-term
     * ones. */
    char visitor_id[VT_ID_MAX + 1];
    bool visitor_linked; /* false also when the visitor refused the session */
    int64_t visitor_sessions;
    double visitor_revenue; /* of all the visitor's sessions, this one included; 0 without
                               a linked visitor */
    /* The analyst segments (segments.h) the profile is in, set by the HTTP worker that
     * serves it: bit i is segment i of `segments`. NULL and 0 until evaluated. */
    const struct vt_segments *segments;
    uint64_t segment_mask;

    size_t n_categories, n_brands, n_tiers;
    struct vt_scored_name categories[VT_PROFILE_TOP_MAX]; /* strongest first */
    struct vt_scored_name brands[VT_PROFILE_TOP_MAX];
    struct vt_scored_name tiers[VT_TIER_COUNT];

    size_t n_recent, n_cart, n_purchased, n_seen;
    struct vt_timed_id recent[VT_PROFILE_RECENT_MAX]; /* newest first */
    struct vt_cart_line cart[VT_PROFILE_CART_MAX];
    struct vt_timed_id purchased[VT_PROFILE_PURCHASED_MAX]; /* newest first */
    struct vt_seen_product seen[VT_PROFILE_SEEN_MAX];       /* most shown first */
};

void vt_profile_clear(struct vt_profile *p);

/* ---- visitor read model ---- */

/* The long-term profile of a visitor (visitor.half_life_s) as stored in the session's
 * snapshot, taken when the session was linked and before its own records reached the
 * visitor. Values are decayed to the session's last event, like the session's own. */
struct vt_visitor_profile {
    bool exists;
    bool linked;      /* the session is one of the visitor's linked sessions */
    int64_t sessions; /* sessions ever linked */
    int64_t events;
    int64_t first_seen_ms;
    int64_t last_seen_ms;
    double revenue;
    double gender_log_odds;
    int64_t gender_evidence;
    size_t n_categories, n_brands, n_tiers;
    struct vt_scored_name categories[VT_PROFILE_TOP_MAX]; /* strongest first */
    struct vt_scored_name brands[VT_PROFILE_TOP_MAX];
    struct vt_scored_name tiers[VT_TIER_COUNT];
};

void vt_visitor_profile_clear(struct vt_visitor_profile *v);

/*
 * Start a session from its visitor. Each affinity list's shares become (1 - weight) * the
 * session's + weight * the visitor's, or the visitor's alone when the session has none,
 * at the session's scale. Gender evidence adds weight times the visitor's. Sets
 * p->visitor_linked, p->visitor_sessions and p->visitor_revenue. half_life_s is the
 * session's, for the log-scores of blended entries. A session the visitor rejected only
 * gets the session count.
 */
void vt_profile_add_visitor(struct vt_profile *p, const struct vt_visitor_profile *v,
                            double weight, double half_life_s);

/* ---- profile delta: what one event changes ---- */

struct vt_named_score {
    char name[VT_NAME_MAX + 1];
    double log_score;
};

struct vt_quantity_line {
    char id[VT_PRODUCT_ID_MAX + 1];
    int64_t quantity;
};

#define VT_DELTA_NAMES_MAX (VT_EVENT_ITEMS_MAX * VT_ITEM_CATEGORIES_MAX)

/* Hex digits of the record-source tag in the redelivery check (see vt_profile_delta). */
#define VT_SOURCE_TAG_LEN 12

struct vt_profile_delta {
    char profile_id[VT_ID_MAX + 1]; /* session id, or user id under profile.key=user */
    char user_id[VT_ID_MAX + 1];
    /* Where the record came from: a tag of the Kafka cluster, topic and
     * ingest.offset_namespace, plus the partition and offset. The profile remembers the
     * last applied offset per tag and partition and ignores records at or below it. */
    char source_tag[VT_SOURCE_TAG_LEN + 1];
    int32_t partition;
    int64_t offset;
    /* Every record of this partition below this offset had its profile and aggregate
     * updates acknowledged (the first offset of the partition in the batch); -1 when not
     * known. The store drops what it kept for redeliveries below it. */
    int64_t settled_offset;
    int64_t ts_ms;
    enum vt_event_type type;
    /* Consent in the form the apply script reads: '1' granted, '0' denied by this record.
     * 'i' or 'j': the record has no value, so the session's earlier value applies, and
     * without one consent.default ('i': granted, 'j': denied). */
    char consent;
    /* The visitor this record names (visitor.id_fields, blocked values removed); "" when
     * none. The session keeps the link of an earlier record when this one names none. */
    char visitor_id[VT_ID_MAX + 1];
    int visitor_rank;     /* position of its field in visitor.id_fields, 0 first */
    bool visitor_blocked; /* the record named a visitor, but only blocked values */
    double revenue;     /* purchase value added, 0 otherwise */
    double gender_step; /* log-odds added; positive: female */
    int64_t gender_evidence;

    size_t n_categories, n_brands, n_tiers;
    struct vt_named_score categories[VT_DELTA_NAMES_MAX];
    struct vt_named_score brands[VT_EVENT_ITEMS_MAX];
    struct vt_named_score tiers[VT_TIER_COUNT];

    /* Impressions and clicks: where the shop showed the products. */
    char placement[VT_PLACEMENT_MAX + 1];
    char decision_id[VT_ID_MAX + 1];
    size_t n_shown, n_clicked;
    char shown[VT_EVENT_ITEMS_MAX][VT_PRODUCT_ID_MAX + 1];
    struct vt_quantity_line clicked[VT_EVENT_ITEMS_MAX]; /* quantity: list position, -1 unknown */

    size_t n_viewed, n_cart_add, n_cart_remove, n_purchased;
    char viewed[VT_EVENT_ITEMS_MAX][VT_PRODUCT_ID_MAX + 1];
    struct vt_quantity_line cart_add[VT_EVENT_ITEMS_MAX];
    struct vt_quantity_line cart_remove[VT_EVENT_ITEMS_MAX]; /* quantity 0: the whole line */
    char purchased[VT_EVENT_ITEMS_MAX][VT_PRODUCT_ID_MAX + 1];
};

/*
 * Compute what an enriched event changes in its profile: intent-weighted affinity
 * contributions per category, brand and price tier (merged per name), gender evidence,
 * recently viewed products, cart lines and purchases. source_tag, partition and offset
 * identify the Kafka record for the redelivery check.
 */
void vt_profile_delta_build(const struct vt_config *cfg, const struct vt_event *ev,
                            const char *source_tag, int32_t partition, int64_t offset,
                            struct vt_profile_delta *out);

/* The source tag of records from one topic of one Kafka cluster under one
 * ingest.offset_namespace: VT_SOURCE_TAG_LEN hex digits of a hash of the three. */
void vt_profile_source_tag(const char *cluster_id, const char *topic, const char *offset_namespace,
                           char out[VT_SOURCE_TAG_LEN + 1]);

#endif
