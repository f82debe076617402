/*
 * vitrine: publication of recommendation decisions to Kafka.
 *
 * Every decision (decision id, session, placement, strategy, control flag, items with
 * positions and scores, time) is produced as one JSON record, keyed by session, to
 * kafka.decisions_topic, so that impressions and clicks can be traced back to it later.
 * Publishing never blocks the request: the record is handed to librdkafka's queue and a
 * full queue drops it, counted in /metrics. A background thread ("decisions thread")
 * serves delivery reports.
 */
#ifndef VITRINE_DECISIONS_H
#define VITRINE_DECISIONS_H

#include <stddef.h>

#include "vitrine/config.h"

struct vt_decisions;

/* Create the producer and its thread. An empty kafka.decisions_topic gives a publisher
 * that drops everything (and counts nothing). Returns NULL with a message on a Kafka
 * configuration error. */
struct vt_decisions *vt_decisions_start(const struct vt_config *cfg, char *err,
                                        size_t errsize);

/* Hand one decision record to the producer; any thread, never blocks. The value is
 * copied. */
void vt_decisions_publish(struct vt_decisions *d, const char *key, size_t key_len,
                          const char *value, size_t len);

/* Deliver what is queued (waiting at most a few seconds), stop the thread and free. */
void vt_decisions_stop(struct vt_decisions *d);

#endif
