/*
 * vitrine: real-time alerts: rules, counting, judging, episodes and explanations.
 *
 * Rules come from a JSON file (alerts.rules_path; format in docs/alerts.md, examples in
 * deploy/alerts.example.json). A rule counts (or sums) one event type over a window,
 * optionally filtered by product, brand, category, campaign or referrer and optionally
 * grouped by one of them. It fires when its condition is met. The condition is a ratio to
 * a baseline learned from the stream (the median of the same window over the recent
 * past), an absolute threshold, or a stock projection ("sold out within N hours at the
 * current purchase rate").
 *
 * Counting happens in every instance's ingest thread (vt_alert_increments), into
 * time buckets in Redis next to the other shared aggregates, so all partitions count.
 * Judging happens on one leader instance (service/alerts/). This header holds the pure
 * parts: no I/O, no allocation after loading, any thread.
 */
#ifndef VITRINE_ALERTS_H
#define VITRINE_ALERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vitrine/event.h"
#include "vitrine/limits.h"

#define VT_ALERT_RULES_MAX 64
#define VT_ALERT_NAME_MAX 64

/* True when s is a valid rule name: 1 to VT_ALERT_NAME_MAX letters A to Z, digits, '_',
 * '.' and '-'. */
bool vt_alert_name_valid(const char *s);
#define VT_ALERT_RECIPIENTS_MAX 8
#define VT_ALERT_TEXT_MAX 512
#define VT_ALERT_BASELINE_MAX 48 /* baseline windows a rule may ask for */
#define VT_ALERT_DRIVERS_MAX 8   /* drivers listed in one explanation */
#define VT_ALERT_ID_MAX 40
#define VT_ALERT_AMOUNT_MAX 1e12 /* largest amount one product or event adds */

/* Increments one event can cause: one per rule and product (see vt_alert_increments). */
#define VT_ALERT_INCREMENTS_MAX (VT_ALERT_RULES_MAX * VT_EVENT_ITEMS_MAX)

/* Dimensions an event is filtered, grouped or explained by. */
enum vt_alert_dimension {
    VT_DIM_PRODUCT = 0,
    VT_DIM_BRAND,
    VT_DIM_CATEGORY,
    VT_DIM_CAMPAIGN,
    VT_DIM_REFERRER, /* the host of the referrer URL, lower case, without "www." */
    VT_DIM_COUNT,
    VT_DIM_NONE = VT_DIM_COUNT
};

const char *vt_alert_dimension_name(enum vt_alert_dimension dim);

enum vt_alert_aggregate {
    VT_ALERT_COUNT = 0,    /* events (one per product of the event for product events) */
    VT_ALERT_SUM_QUANTITY, /* sum of the products' quantities */
    VT_ALERT_SUM_VALUE,    /* sum of unit price x quantity */
};

const char *vt_alert_aggregate_name(enum vt_alert_aggregate aggregate);

enum vt_alert_condition {
    VT_ALERT_RATIO = 0, /* value >= ratio x baseline */
    VT_ALERT_ABOVE,     /* value >= threshold */
    VT_ALERT_BELOW,     /* value <= threshold */
    VT_ALERT_STOCK,     /* stock / (value per hour) <= hours; needs group_by product */
};

const char *vt_alert_condition_name(enum vt_alert_condition condition);

enum vt_alert_severity { VT_SEVERITY_INFO = 0, VT_SEVERITY_WARNING, VT_SEVERITY_CRITICAL };

const char *vt_alert_severity_name(enum vt_alert_severity severity);

struct vt_alert_rule {
    char name[VT_ALERT_NAME_MAX + 1];
    bool any_event;                 /* count every event type */
    enum vt_event_type event;
    enum vt_alert_aggregate aggregate;
    /* Filters: "" means any value. */
    char filter[VT_DIM_COUNT][VT_NAME_MAX + 1];
    enum vt_alert_dimension group_by; /* VT_DIM_NONE: one series for the whole stream */
    int64_t window_s;      /* a multiple of alerts.bucket_s (checked at start) */
    enum vt_alert_condition condition;
    double threshold;      /* ABOVE, BELOW */
    double ratio;          /* RATIO */
    double hours;          /* STOCK */
    size_t baseline_windows;     /* RATIO, BELOW: windows of the past the baseline takes
                                    (1..VT_ALERT_BASELINE_MAX); 0 for other conditions */
    size_t min_baseline_windows; /* RATIO, BELOW: windows with data needed before judging */
    double min_volume;     /* value the current window needs before the rule may fire (BELOW:
                              the baseline median needs it instead) */
    int64_t cooldown_s;    /* quiet time after an episode resolves */
    size_t resolve_after;  /* consecutive evaluations without the condition that resolve */
    double hysteresis;     /* 0..0.9: an active episode holds while the condition holds
                              with the threshold relaxed by this fraction */
    enum vt_alert_severity severity;
    size_t n_recipients;
    char recipients[VT_ALERT_RECIPIENTS_MAX][VT_ALERT_NAME_MAX * 2 + 1];
    char reaction[VT_ALERT_TEXT_MAX + 1];
};

struct vt_alert_rules {
    size_t n;
    struct vt_alert_rule rules[VT_ALERT_RULES_MAX];
};

/* Load rules from a JSON file. An empty path gives no rules (n = 0). Returns NULL with a
 * message naming the file, the rule (index and name) and the reason on any error. */
struct vt_alert_rules *vt_alert_rules_load(const char *path, char *err, size_t errsize);
struct vt_alert_rules *vt_alert_rules_parse(const char *json, size_t len, const char *name,
                                            char *err, size_t errsize);
void vt_alert_rules_free(struct vt_alert_rules *rules);

/* ---- counting (ingest thread) ---- */

/* One addition to a rule's current time bucket. */
struct vt_alert_increment {
    uint16_t rule;                          /* index into rules */
    char group[VT_NAME_MAX + 1];            /* "" when the rule is not grouped */
    double amount;
    char dims[VT_DIM_COUNT][VT_NAME_MAX + 1]; /* the event's value of each dimension, for
                                                 explanations; "" when unknown */
};

/* Increments an enriched event causes: for each rule whose event type and filters match,
 * one per product of the event (or one for an event without products, with product,
 * brand and category empty). Increments with amount 0, and increments of grouped rules
 * whose group value is empty, are left out. Returns the count written (at most max;
 * VT_ALERT_INCREMENTS_MAX always suffices). */
size_t vt_alert_increments(const struct vt_alert_rules *rules, const struct vt_event *ev,
                           struct vt_alert_increment *out, size_t max);

/* The referrer dimension of a referrer URL: host in lower case without a leading "www."
 * ("https://www.Instagram.com/p/x" gives "instagram.com"). */
void vt_alert_referrer_host(const char *url, char *out, size_t outsize);

/* ---- judging (leader) ---- */

/* One series of a rule at one evaluation: the current window and the past windows. */
struct vt_alert_series {
    double current;
    size_t n_baseline;                        /* past windows read, newest first */
    double baseline[VT_ALERT_BASELINE_MAX];
    size_t rule_history; /* baseline windows in which the rule counted anything, in any
                            group: a group seen for the first time (a new campaign) is
                            judged once the rule itself has min_baseline_windows of history */
    int64_t stock;                            /* STOCK rules: units in stock, -1 unknown */
};

struct vt_alert_verdict {
    bool judged;      /* false: not enough data (volume, baseline history or stock) */
    bool firing;      /* the condition is met at its threshold (and the full min_volume) */
    bool holding;     /* the condition is met with threshold and min_volume relaxed by the
                         hysteresis; implies judged, and firing implies holding */
    double value;     /* the current window's value */
    double baseline;  /* the median of the baseline windows (0 without any), every rule */
    double ratio;     /* value / max(baseline, 1), every rule */
    double hours_left; /* STOCK: stock / hourly rate, INFINITY at rate 0; 0 otherwise */
};

void vt_alert_judge(const struct vt_alert_rule *rule, const struct vt_alert_series *series,
                    struct vt_alert_verdict *out);

/* ---- episodes (leader) ---- */

enum vt_alert_state { VT_ALERT_INACTIVE = 0, VT_ALERT_ACTIVE };

/* The state of one series (rule and group), kept across evaluations and leaders. */
struct vt_alert_episode {
    enum vt_alert_state state;
    char alert_id[VT_ALERT_ID_MAX + 1]; /* the open alert; written by the caller (see
                                           vt_alert_step) */
    int64_t since_ms;                    /* when the state began */
    uint32_t quiet;                      /* consecutive evaluations without holding */
    int64_t cooldown_until_ms;           /* may not fire again before this */
};

enum vt_alert_transition {
    VT_ALERT_NO_CHANGE = 0,
    VT_ALERT_FIRED,    /* inactive -> active: a new alert */
    VT_ALERT_RESOLVED, /* active -> inactive: the alert resolves */
};

/* Advance one series by one evaluation at now_ms. The step never writes alert_id: the
 * caller writes the new alert's id on FIRED, and on RESOLVED alert_id still names the
 * resolved alert until the caller clears it. */
enum vt_alert_transition vt_alert_step(const struct vt_alert_rule *rule,
                                       struct vt_alert_episode *episode,
                                       const struct vt_alert_verdict *verdict, int64_t now_ms);

/* ---- explanations (leader) ---- */

/* The amount of each value of one dimension in a window: parallel arrays. */
struct vt_alert_breakdown {
    size_t n;
    const char *const *values;
    const double *amounts;
};

/* A value that drives the change: its share of the rule's amount before (baseline windows
 * together) and during (the current window). */
struct vt_alert_driver {
    enum vt_alert_dimension dimension;
    char value[VT_NAME_MAX + 1];
    double share_before;
    double share_during;
    double during;
    double before;
};

/* The drivers of a change: for every dimension except `skip` (the rule's group), the
 * values whose share grew most from before to during, at most max in all, strongest
 * first. during[d] and before[d] are the breakdowns of dimension d; before may be NULL.
 * Only non-empty values with a share during of at least 0.1 whose share grew are listed.
 * Ties go to the larger amount during, then to the smaller dimension, then to the value
 * that sorts first (strcmp). */
/* Past windows a rule reads: its baseline windows, and at least VT_ALERT_EXPLAIN_WINDOWS
 * for the "before" of an explanation. Counting buckets must live this long. */
#define VT_ALERT_EXPLAIN_WINDOWS 6
size_t vt_alert_history_windows(const struct vt_alert_rule *rule);

size_t vt_alert_explain(const struct vt_alert_breakdown *during,
                        const struct vt_alert_breakdown *before, enum vt_alert_dimension skip,
                        struct vt_alert_driver *out, size_t max);

#endif
