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

/* Buffer size of the text vt_decode_describe_invalid_id writes: the described value and
 * the longer of its two explanations. */
#define VT_DECODE_INVALID_ID_SIZE (VT_DECODE_QUOTE_SIZE + 192)

/* Buffer size of a field path in a message, such as "basket.items[12].product.name". */
#define VT_DECODE_PATH_SIZE 160

/* 2^53, the largest integer below which a double represents every integer exactly. An id
 * given as a JSON number must stay below it (2^53 + 1 parses as 2^53, so 2^53 itself names
 * two ids), and a timestamp within it. */
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
 * that of the double cJSON parsed, whose last digits may differ from the record's, so ids
 * use vt_decode_id_number instead. */
int vt_decode_integer_text(double v, char *out, size_t outsize);

/* Write an id given as a JSON number as decimal text, like vt_decode_integer_text, but
 * return -1 also when its magnitude is VT_DECODE_EXACT_INT_MAX or more. Such a number may
 * have lost its last digits in the parse, so two different ids could read as one. */
int vt_decode_id_number(double v, char *out, size_t outsize);

/* Copy the id in node into dst and return true when it is usable: a string that passes
 * vt_id_valid, or a whole number accepted by vt_decode_id_number. Returns false, leaving
 * dst unchanged, for any other value or JSON type. */
bool vt_decode_id(const cJSON *node, char *dst, size_t dstsize);

/* Describe an id that vt_decode_id rejected, for "... is not a valid id, <out>": the value
 * and the id rule, or for a number of 2^53 or more the advice to send it as a string. */
void vt_decode_describe_invalid_id(const cJSON *node, char *out, size_t outsize);

/* Read a person id (user or customer id) in node into dst. node may be NULL (absent). An
 * unusable value of any JSON type leaves dst empty and is counted in
 * ev->n_values_dropped[field], so that the record still decodes. */
void vt_decode_person_id(struct vt_event *ev, enum vt_amount_field field, const cJSON *node,
                         char *dst, size_t dstsize);

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
