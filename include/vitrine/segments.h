/*
 * vitrine: analyst-defined segments: loading, validation and evaluation against a profile.
 *
 * A segments file is one JSON object {"segments": [...]}. Each segment has a name and
 * either a condition ("when") or a score ("score": points added per condition that holds,
 * and the minimum total for membership). Conditions combine all/any/not with leaf tests
 * on the profile. The leaves test category, brand and price-tier shares (of a named entry,
 * or with the name "*" of the strongest one), event counts, the time since the newest
 * event of a type, the gender estimate, first visit, visitor sessions, cart lines and
 * revenue. deploy/segments.example.json shows each of them.
 *
 * Loading checks everything, so that evaluation never meets an invalid condition. An
 * invalid file is rejected with a message naming the file, the segment index and name,
 * and the reason. After loading a set is immutable except for its served counters, so
 * any thread may evaluate it. Evaluation allocates nothing, takes no lock, and visits at
 * most VT_SEGMENT_CONDITIONS_MAX conditions per segment.
 */
#ifndef VITRINE_SEGMENTS_H
#define VITRINE_SEGMENTS_H

#include <stddef.h>
#include <stdint.h>

#include "vitrine/jsonw.h"
#include "vitrine/profile.h"

/* Segments in one file; bit i of a membership mask is segment i. */
#define VT_SEGMENTS_MAX 64

/* Bytes of a segment name, which consists of [a-z0-9_-]. */
#define VT_SEGMENT_NAME_MAX 48

/* Bytes of a segments file that vt_segments_load reads; a larger file is rejected. */
#define VT_SEGMENTS_FILE_MAX (1024 * 1024)

/* Conditions in one segment, counting every node (all, any and not included) and, in a
 * score segment, the conditions of all its point entries together. */
#define VT_SEGMENT_CONDITIONS_MAX 64

/* Levels of nested conditions; a leaf directly under "when" is level 1. */
#define VT_SEGMENT_DEPTH_MAX 8

/* Entries in one "all" or "any" list. */
#define VT_SEGMENT_LIST_MAX 16

/* Point entries in one score segment. */
#define VT_SEGMENT_POINTS_MAX 32

/* Distinct category and brand names that the conditions of one file use. Each evaluation
 * keeps a sum per name on the stack. */
#define VT_SEGMENTS_NAMES_MAX 256

struct vt_segments;

/* Load segments from path. An empty path gives an empty set. Returns NULL with a message
 * in err (naming the file, the segment index and name, and the reason) when the file
 * cannot be read or a segment is invalid. */
struct vt_segments *vt_segments_load(const char *path, char *err, size_t errsize);

/* The same from JSON text; name is used in messages. */
struct vt_segments *vt_segments_parse(const char *json, size_t len, const char *name,
                                      char *err, size_t errsize);

void vt_segments_free(struct vt_segments *s);
size_t vt_segments_count(const struct vt_segments *s);

/* Name of segment i, or NULL when i is out of range. */
const char *vt_segments_name(const struct vt_segments *s, size_t i);

/* Index of the segment with this name, or -1 when there is none. */
int vt_segments_find(const struct vt_segments *s, const char *name);

/*
 * The inputs of one evaluation. gender comes from vt_gender_estimate; NULL reads as an
 * unknown gender with probability 0.5. A gender condition holds when the estimate's
 * segment is the one asked for, and, with min_probability, when that gender's probability
 * also reaches it. So min_probability can raise the configured gender threshold but not
 * lower it. A "last" condition holds only when an event of its type exists
 * (last_by_type_ms, or last_seen_ms for "any", above 0).
 */
struct vt_segment_facts {
    const struct vt_profile *profile;
    const struct vt_gender_estimate *gender;
    int64_t now_ms; /* reference time of the "last" conditions */
};

/* Membership mask: bit i is set when the profile is a member of segment i. A missing
 * profile (NULL or exists false) and a profile with consent_denied belong to no segment. */
uint64_t vt_segments_evaluate(const struct vt_segments *s, const struct vt_segment_facts *f);

/*
 * Write a JSON array with one object per segment:
 *   {"segment":"name","member":true,"conditions":[NODE]}
 * A score segment adds "score" and "min", and its conditions are the point entries
 * {"points":4,"held":true,"condition":NODE}. A leaf NODE is
 *   {"condition":"category perfume share >= 0.3","held":true,"value":0.42}
 * with the observed value (null when there is none), and all/any/not nodes are
 *   {"condition":"all","held":false,"of":[NODE,...]}.
 * Every condition is evaluated, so each value is shown. Without a profile or without
 * consent each object is {"segment":"name","member":false,"reason":"no profile"} (or
 * "no consent"). The caller checks w->overflow.
 */
void vt_segments_explain(const struct vt_segments *s, const struct vt_segment_facts *f,
                         struct vt_jsonw *w);

/* Add one to the served counter of each segment set in mask. Any thread may call it. */
void vt_segments_count_served(struct vt_segments *s, uint64_t mask);

/* Return the served counter of segment i and set it to zero (0 when i is out of range). */
uint64_t vt_segments_take_served(struct vt_segments *s, size_t i);

#endif
