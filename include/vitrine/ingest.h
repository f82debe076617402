/*
 * vitrine: the ingest thread.
 *
 * Consumes the events topic in the consumer group, in batches: decode each record, enrich
 * it from the catalog, apply all of them to Redis in one pipelined round trip, and store
 * the batch's offsets only after Redis acknowledged every write (librdkafka commits
 * stored offsets in the background and on close). A record that cannot be decoded is
 * counted and produced to the dead-letter topic with the reason in its headers; the batch
 * waits for that delivery before its offsets are stored. When Redis fails, the batch is
 * retried with exponential backoff and no offset moves.
 */
#ifndef VITRINE_INGEST_H
#define VITRINE_INGEST_H

#include <stdbool.h>
#include <stddef.h>

#include "vitrine/alerts.h"
#include "vitrine/config.h"
#include "vitrine/world.h"

struct vt_ingest;

/* Create the consumer and the dead-letter producer and start the thread. cfg, live and
 * alert_rules (which may be NULL: no alert counting) must outlive the ingest; each batch is
 * enriched from the live world's current catalog. Returns NULL with a message when
 * librdkafka rejects the configuration (the message names the property). */
struct vt_ingest *vt_ingest_start(const struct vt_config *cfg, const struct vt_live *live,
                                  const struct vt_alert_rules *alert_rules, char *err,
                                  size_t errsize);

/* Stop: finish the current batch, store its offsets, close the consumer (committing and
 * leaving the group) and join the thread. */
void vt_ingest_stop(struct vt_ingest *in);

/* True once the consumer has an assignment or has fetched from the broker, and Redis
 * answered the last batch. Read by HTTP workers for /readyz. */
bool vt_ingest_ready(const struct vt_ingest *in, char *why, size_t whysize);

#endif
