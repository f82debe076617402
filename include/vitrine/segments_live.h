/*
 * vitrine: the active segment definitions while the service runs: their reload on SIGHUP,
 * the stream clock that recency conditions read, the served counts and the estimated
 * member counts of GET /v1/stats/segments.
 *
 * main owns the struct. It loads the definitions at start (segments.path) and again on
 * every SIGHUP; a file that does not load, or that lacks a segment a business rule names,
 * leaves the active definitions as they are. HTTP workers read the active definitions
 * with one atomic load and use them for one request. A replaced set stays valid for
 * VT_SEGMENTS_GRACE_S seconds, far longer than a request takes, and is freed afterwards
 * by the segment thread.
 *
 * The segment thread (started here, one per instance, with its own Redis connection):
 *   - every 5 s adds the served counts of this instance to Redis and reads the stream
 *     clock (the newest event time the aggregates applied);
 *   - every segments.count_interval_s, when it takes the counting lock, estimates the
 *     members of every segment. It scans the session profiles and reads a uniform sample
 *     of segments.count_sample of them with their visitor snapshots. It evaluates the
 *     segments on them and scales the counts up to all profiles.
 */
#ifndef VITRINE_SEGMENTS_LIVE_H
#define VITRINE_SEGMENTS_LIVE_H

#include <stddef.h>
#include <stdint.h>

#include "vitrine/config.h"
#include "vitrine/rules.h"
#include "vitrine/segments.h"

#define VT_SEGMENTS_GRACE_S 60

struct vt_segments_live;

/* Load cfg->segments_path and check it against the business rules (which may be NULL).
 * Returns NULL with a message naming the file, the segment and the reason. */
struct vt_segments_live *vt_segments_live_new(const struct vt_config *cfg,
                                              const struct vt_rules *rules, char *err,
                                              size_t errsize);

/* Start and stop the segment thread. */
int vt_segments_live_start(struct vt_segments_live *live, char *err, size_t errsize);
void vt_segments_live_free(struct vt_segments_live *live);

/* main thread, on SIGHUP: load the file again. On failure the active definitions stay and
 * err contains the reason. */
int vt_segments_live_reload(struct vt_segments_live *live, char *err, size_t errsize);

/* Any thread: the active definitions, valid for VT_SEGMENTS_GRACE_S seconds. */
struct vt_segments *vt_segments_live_current(struct vt_segments_live *live);

/* Any thread: the stream's current time: the newest applied event time plus the wall
 * time since it was applied. The wall clock until the first event. */
int64_t vt_segments_live_now_ms(const struct vt_segments_live *live);

/* Segment thread, and tests: one count now, without the lock. Returns 0 or -1 with err. */
int vt_segments_live_count(struct vt_segments_live *live, char *err, size_t errsize);

#endif
