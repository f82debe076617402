/*
 * vitrine: event decoders.
 *
 * One entry point decodes a Kafka record value in either format, detected per record:
 *
 *   - the canonical event JSON: an object with a string "type" (docs/events.md);
 *   - a Mapp Intelligence Data Streams record: nested root stream or flattened custom
 *     stream (keys joined with "_"), recognised by Mapp's own keys (session, basket,
 *     processingMetadata, eventMetadata, page, user and their flattened forms).
 *
 * The decoders never allocate beyond cJSON's parse tree, which they free before returning,
 * and never keep pointers into the payload. Safe to call from any thread with its own
 * output event.
 */
#ifndef VITRINE_DECODE_H
#define VITRINE_DECODE_H

#include <stddef.h>

#include "vitrine/config.h"
#include "vitrine/event.h"

/* Why a record could not be decoded. Each value is also a metric label. */
enum vt_decode_status {
    VT_DECODE_OK = 0,
    VT_DECODE_SKIP,              /* valid but carries nothing for profiles (heatmap,
                                    webtrekk_ignore, unknown context): counted, not
                                    dead-lettered */
    VT_DECODE_ERR_EMPTY,         /* empty value or null record */
    VT_DECODE_ERR_TOO_LARGE,     /* value above VT_RECORD_MAX */
    VT_DECODE_ERR_JSON,          /* not valid JSON (or invalid UTF-8 in a string) */
    VT_DECODE_ERR_NOT_OBJECT,    /* valid JSON, but not an object */
    VT_DECODE_ERR_FORMAT,        /* an object of neither format */
    VT_DECODE_ERR_TYPE,          /* unknown canonical type or Mapp basket status */
    VT_DECODE_ERR_SESSION,       /* session id missing or not a valid id */
    VT_DECODE_ERR_TIMESTAMP,     /* time missing or not parseable */
    VT_DECODE_ERR_FIELD,         /* a known field has the wrong JSON type or value */
    VT_DECODE_STATUS_COUNT
};

/* Metric label of a status, e.g. "invalid_json". */
const char *vt_decode_status_name(enum vt_decode_status status);

/*
 * Decode one record value of len bytes (not NUL-terminated) into *ev.
 *
 * Returns VT_DECODE_OK, VT_DECODE_SKIP, or an error status with a one-line reason in
 * msg (naming the field and the offending value, at most msgsize bytes). The Mapp
 * parameter numbers for brand, category and gender come from cfg. Placeholder items
 * (name "-", quantity 0) are skipped.
 */
enum vt_decode_status vt_decode_event(const char *payload, size_t len,
                                      const struct vt_config *cfg, struct vt_event *ev,
                                      char *msg, size_t msgsize);

#endif
