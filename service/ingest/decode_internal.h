/*
 * vitrine: declarations shared by the event decoders (decode.c, decode_canonical.c,
 * decode_mapp.c). Not a public header: other modules call vt_decode_event only.
 *
 * The helpers here build the one-line messages that go with an error status, so that
 * both formats word them alike: the field, the offending value (quoted, at most
 * VT_DECODE_QUOTE_MAX bytes, control bytes escaped) and what was expected.
 */
#ifndef VITRINE_DECODE_INTERNAL_H
#define VITRINE_DECODE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "vitrine/decode.h"

/* Bytes of a value that a message quotes before it cuts the value with "...". */
#define VT_DECODE_QUOTE_MAX 60

/* Size of a buffer for a quoted value, enough when every byte is escaped as \xNN. */
#define VT_DECODE_QUOTE_SIZE (VT_DECODE_QUOTE_MAX * 4 + 8)

/* Buffer size of a field path in a message, such as "basket.items[12].product.name". */
#define VT_DECODE_PATH_SIZE 160

/* 2^53, the largest integer below which a double represents every integer exactly. Ids
 * and timestamps given as JSON numbers must stay within it to avoid rounding. */
#define VT_DECODE_EXACT_INT_MAX 9007199254740992.0

/* Decode a canonical event (root has a member "type" of any JSON type). */
enum vt_decode_status vt_decode_canonical(const cJSON *root, struct vt_event *ev, char *msg,
                                          size_t msgsize);

/* Decode a Mapp Intelligence Data Streams record, root or custom stream. cfg may be NULL,
 * which means that no brand, category or gender parameter is configured. */
enum vt_decode_status vt_decode_mapp(const cJSON *root, const struct vt_config *cfg,
                                     struct vt_event *ev, char *msg, size_t msgsize);

/* Format msg (msgsize may be 0) and return status, so a decoder can write
 * `return vt_decode_fail(...)`. */
enum vt_decode_status vt_decode_fail(enum vt_decode_status status, char *msg, size_t msgsize,
                                     const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Write s[0..len) into out as "..." with quotes, backslashes and control bytes escaped,
 * cut after VT_DECODE_QUOTE_MAX bytes at a UTF-8 character boundary. */
void vt_decode_quote(const char *s, size_t len, char *out, size_t outsize);

/* Describe a JSON value for "got ..." in a message: `string "abc"`, `number 1.5`,
 * `object`, `array`, `boolean`, `null`, or `nothing` for NULL. */
void vt_decode_describe(const cJSON *node, char *out, size_t outsize);

/* Write an integral number v as decimal text. Returns 0, or -1 when v is not a whole
 * number or its text does not fit into out. Beyond VT_DECODE_EXACT_INT_MAX the text is
 * that of the double cJSON parsed, whose last digits may differ from the record's. */
int vt_decode_integer_text(double v, char *out, size_t outsize);

/* Store v in *out when it is a whole number within int32_t. Returns 0 or -1. */
int vt_decode_int32(double v, int32_t *out);

/* Set *out to the unit price or order value v. When v is negative, infinite or above
 * VT_DECODE_AMOUNT_MAX, set *out to -1 (not given) and count v in
 * ev->n_values_dropped[field] instead. */
void vt_decode_set_amount(struct vt_event *ev, enum vt_amount_field field, double v,
                          double *out);

/* Set *out to the quantity q when it lies within 1 and VT_DECODE_QUANTITY_MAX, else to -1
 * (not given). A q other than 0 outside that range is counted in ev->n_values_dropped. */
void vt_decode_set_quantity(struct vt_event *ev, int32_t q, int32_t *out);

/* True when s[0..len) can be a product id: 1 to VT_PRODUCT_ID_MAX bytes with no ASCII
 * control byte. */
bool vt_decode_product_id_valid(const char *s, size_t len);

#endif
