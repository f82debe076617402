/*
 * vitrine: event decoders.
 *
 * One entry point decodes a Kafka record value in either format, detected per record:
 *
 *   - the canonical event JSON: an object with a member "type" (docs/events.md). Any
 *     object with that member is read as canonical, whatever the member's JSON type, so a
 *     "type" that is not a string is rejected as an invalid canonical field;
 *   - a Mapp Intelligence Data Streams record: an object without "type" that has one of
 *     Mapp's own keys (session, basket, processingMetadata, eventMetadata, page, user and
 *     their flattened forms), nested as in the root stream or flattened with "_" as in
 *     custom streams.
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

/*
 * Window of accepted event times, in milliseconds since the Unix epoch. After a record of
 * either format decodes, a time before VT_DECODE_TS_MIN_MS (2000-01-01T00:00:00Z) or more
 * than VT_DECODE_TS_AHEAD_MAX_MS (24 hours) after the wall clock (vt_now_ms) rejects it
 * with VT_DECODE_ERR_TIMESTAMP. Such times come from placeholders ("ts":0), seconds sent
 * as milliseconds or a wrong device clock, and would put profile times decades off. The
 * 24 hours cover every time zone offset (at most 14 hours) written as UTC by mistake.
 */
#define VT_DECODE_TS_MIN_MS 946684800000LL
#define VT_DECODE_TS_AHEAD_MAX_MS (24LL * 60 * 60 * 1000)

/*
 * Ranges of the numbers of an event. A unit price or an order value that is negative,
 * infinite or above VT_DECODE_AMOUNT_MAX, and a quantity below 0 or above
 * VT_DECODE_QUANTITY_MAX, is dropped: the field reads as not given (-1) and the event is
 * kept. Such values come from refunds, vouchers and field mix-ups. Huge ones would
 * otherwise end up in revenue and alert sums. A quantity of 0 reads as not given without
 * being counted. The bound on amounts leaves room for currencies with small units.
 */
#define VT_DECODE_AMOUNT_MAX 1e9
#define VT_DECODE_QUANTITY_MAX 1000

/* Why a record could not be decoded. Each value is also a metric label. */
enum vt_decode_status {
    VT_DECODE_OK = 0,
    VT_DECODE_SKIP,              /* valid but carries nothing for profiles (heatmap,
                                    webtrekk_ignore, unknown context, a product event
                                    without products): counted, not dead-lettered */
    VT_DECODE_ERR_EMPTY,         /* empty value or null record */
    VT_DECODE_ERR_TOO_LARGE,     /* value above VT_RECORD_MAX */
    VT_DECODE_ERR_JSON,          /* not valid JSON (or invalid UTF-8 in a string) */
    VT_DECODE_ERR_NOT_OBJECT,    /* valid JSON, but not an object */
    VT_DECODE_ERR_FORMAT,        /* an object of neither format */
    VT_DECODE_ERR_TYPE,          /* unknown canonical type or Mapp basket status */
    VT_DECODE_ERR_SESSION,       /* session id missing or not a valid id */
    VT_DECODE_ERR_TIMESTAMP,     /* time missing, not parseable or outside the window
                                    of VT_DECODE_TS_MIN_MS and VT_DECODE_TS_AHEAD_MAX_MS */
    VT_DECODE_ERR_FIELD,         /* a known field has the wrong JSON type or value */
    VT_DECODE_STATUS_COUNT
};

/* Metric label of a status, e.g. "invalid_json". */
const char *vt_decode_status_name(enum vt_decode_status status);

/* Metric label of a field the decoder can drop: "price", "quantity", "order_value",
 * "user_id" or "customer_id". */
const char *vt_decode_amount_field_name(enum vt_amount_field field);

/*
 * Decode one record value of len bytes (not NUL-terminated) into *ev.
 *
 * Returns VT_DECODE_OK, VT_DECODE_SKIP, or an error status with a one-line reason in
 * msg (naming the field and the offending value, at most msgsize bytes). The Mapp
 * parameter numbers for brand, category and gender come from cfg. Placeholder items
 * (name "-", quantity 0) are skipped.
 *
 * A product_view, product_image_view, add_to_cart, remove_from_cart, add_to_wishlist or
 * remove_from_wishlist left with no product after decoding returns VT_DECODE_SKIP. The
 * time window is checked before that rule, so a bad time still rejects such a record.
 *
 * Prices, quantities and order values outside their ranges (see VT_DECODE_AMOUNT_MAX) are
 * dropped and counted in ev->n_values_dropped, and the record still decodes. So is a user
 * or customer id of any JSON type that breaks the id rule (vt_id_valid), such as "" or
 * "N/A": the id reads as absent. Other ids (session, event and decision ids) reject the
 * record instead, except a Mapp event id, which is left empty without being counted.
 *
 * An id given as a JSON number must be a whole number below 2^53 in magnitude. A larger
 * one may have lost its last digits in the parse, which would merge two people or
 * sessions, so it counts as breaking the id rule. Product ids follow the same bound.
 *
 * On VT_DECODE_SKIP, ev->type is the decoded type when the record named one (a product
 * event without products), else VT_EV_TYPE_COUNT (Mapp Action, Heatmap and Unknown
 * contexts, the action webtrekk_ignore). On an error status the fields of *ev are
 * unspecified.
 */
enum vt_decode_status vt_decode_event(const char *payload, size_t len,
                                      const struct vt_config *cfg, struct vt_event *ev,
                                      char *msg, size_t msgsize);

#endif
