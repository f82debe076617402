/*
 * vitrine: the alert evaluator (service/alerts/leader.c).
 *
 * Every instance runs one "alerts thread". It takes or renews a lease in Redis every
 * third of alerts.lease_ms. The lease owner evaluates the rules every alerts.period_ms,
 * so exactly one instance evaluates at a time. When the leader dies, another takes over
 * once the lease runs out. Evaluation reads the counting buckets
 * that every instance's ingest writes, judges each series, advances its episode, merges
 * alerts with the same cause, explains new ones, stores them in Redis and delivers them to
 * the alerts topic and the webhook. Episode states live in Redis too, so a new leader
 * continues where the old one stopped.
 */
#ifndef VITRINE_ALERTING_H
#define VITRINE_ALERTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vitrine/alerts.h"
#include "vitrine/config.h"
#include "vitrine/webhook.h"
#include "vitrine/world.h"

struct vt_alerting_stats {
    bool running;     /* the alerts thread runs (there are rules) */
    bool leader;
    size_t n_rules;
    const char *rule_names[VT_ALERT_RULES_MAX]; /* valid while the alerting object lives */
    uint64_t evaluations;
    uint64_t evaluation_errors;
    uint64_t last_evaluation_ns;
    uint64_t fired[VT_ALERT_RULES_MAX];
    uint64_t resolved[VT_ALERT_RULES_MAX];
    uint64_t merged[VT_ALERT_RULES_MAX];
    uint64_t active[VT_ALERT_RULES_MAX]; /* open series at the last evaluation */
    struct vt_webhook_stats webhook;
};

struct vt_alerting;

/* Start the alerts thread. rules, live and cfg must outlive it. With no rules the thread
 * is not started and the object only reports stats. Returns NULL with a message when the
 * webhook URL or the alerts producer's configuration is invalid. */
struct vt_alerting *vt_alerting_start(const struct vt_config *cfg,
                                      const struct vt_alert_rules *rules,
                                      const struct vt_live *live, char *err, size_t errsize);

/* Stop: give the lease up, deliver what is queued (a few seconds at most), join, free. */
void vt_alerting_stop(struct vt_alerting *a);

/* Counters for /metrics. Any thread. */
void vt_alerting_stats(const struct vt_alerting *a, struct vt_alerting_stats *out);

#endif
