/*
 * vitrine: the entry point of the event decoders (see include/vitrine/decode.h).
 *
 * This file owns what both formats share: the checks on the raw record value (size,
 * NUL bytes, UTF-8, nesting depth), the JSON parse, the format detection and the message
 * helpers declared in decode_internal.h, the id readers, and the ranges of prices,
 * quantities and order values. It also checks every decoded event for its time window
 * and, for product events, for a product. The formats themselves are decoded in
 * decode_canonical.c and decode_mapp.c.
 */
#include "decode_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "vitrine/limits.h"
#include "vitrine/util.h"

/* Deepest nesting of objects and arrays accepted. A Mapp root-stream record nests about
 * six levels (session.parameters.textValues.<N>.values[]), so 64 leaves ample room while
 * it keeps cJSON's recursive parser far from its own limit of 1000 levels. */
#define DECODE_DEPTH_MAX 64

static const char *const status_names[VT_DECODE_STATUS_COUNT] = {
    [VT_DECODE_OK] = "ok",
    [VT_DECODE_SKIP] = "skip",
    [VT_DECODE_ERR_EMPTY] = "empty",
    [VT_DECODE_ERR_TOO_LARGE] = "too_large",
    [VT_DECODE_ERR_JSON] = "invalid_json",
    [VT_DECODE_ERR_NOT_OBJECT] = "not_object",
    [VT_DECODE_ERR_FORMAT] = "unknown_format",
    [VT_DECODE_ERR_TYPE] = "unknown_type",
    [VT_DECODE_ERR_SESSION] = "invalid_session",
    [VT_DECODE_ERR_TIMESTAMP] = "invalid_timestamp",
    [VT_DECODE_ERR_FIELD] = "invalid_field",
};

static const char *const amount_field_names[VT_AMOUNT_FIELD_COUNT] = {
    [VT_AMOUNT_PRICE] = "price",
    [VT_AMOUNT_QUANTITY] = "quantity",
    [VT_AMOUNT_ORDER_VALUE] = "order_value",
    [VT_AMOUNT_USER_ID] = "user_id",
    [VT_AMOUNT_CUSTOMER_ID] = "customer_id",
};

/* Top-level keys of a Mapp record, nested (root stream) or as the first part of a
 * flattened key such as "session_id" (custom streams). */
static const char *const mapp_keys[] = {
    "session", "basket", "page", "processingMetadata", "eventMetadata", "user",
};


const char *vt_decode_status_name(enum vt_decode_status status)
{
    if ((unsigned)status >= VT_DECODE_STATUS_COUNT)
        return "unknown";
    return status_names[status];
}


const char *vt_decode_amount_field_name(enum vt_amount_field field)
{
    if ((unsigned)field >= VT_AMOUNT_FIELD_COUNT)
        return "unknown";
    return amount_field_names[field];
}


enum vt_decode_status vt_decode_fail(enum vt_decode_status status, char *msg, size_t msgsize,
                                     const char *fmt, ...)
{
    va_list ap;

    if (msg == NULL || msgsize == 0)
        return status;
    va_start(ap, fmt);
    vsnprintf(msg, msgsize, fmt, ap);
    va_end(ap);
    return status;
}


void vt_decode_quote(const char *s, size_t len, char *out, size_t outsize)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = len;
    size_t o = 0;
    bool cut = false;

    if (outsize == 0)
        return;
    if (n > VT_DECODE_QUOTE_MAX) {
        n = VT_DECODE_QUOTE_MAX;
        /* Step back to the first byte of a character so that none is cut in half. */
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
        cut = true;
    }

    /* Each input byte takes at most 4 output bytes. The 8 bytes beyond those are for the
     * quotes, "..." and the NUL. */
    if (outsize < 4 * n + 8) {
        out[0] = '\0';
        return;
    }
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7F) {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 0x0F];
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    if (cut) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}


void vt_decode_describe(const cJSON *node, char *out, size_t outsize)
{
    char quoted[VT_DECODE_QUOTE_SIZE];

    if (node == NULL) {
        snprintf(out, outsize, "nothing");
    } else if (cJSON_IsString(node)) {
        vt_decode_quote(node->valuestring, strlen(node->valuestring), quoted, sizeof quoted);
        snprintf(out, outsize, "string %s", quoted);
    } else if (cJSON_IsNumber(node)) {
        double v = node->valuedouble;
        if (isfinite(v) && v == floor(v) && fabs(v) < 1e17)
            snprintf(out, outsize, "number %.0f", v);
        else
            snprintf(out, outsize, "number %.15g", v);
    } else if (cJSON_IsBool(node)) {
        snprintf(out, outsize, "boolean");
    } else if (cJSON_IsNull(node)) {
        snprintf(out, outsize, "null");
    } else if (cJSON_IsArray(node)) {
        snprintf(out, outsize, "array");
    } else {
        snprintf(out, outsize, "object");
    }
}


int vt_decode_integer_text(double v, char *out, size_t outsize)
{
    int n;

    if (!isfinite(v) || v != floor(v))
        return -1;
    n = snprintf(out, outsize, "%.0f", v);
    if (n < 0 || (size_t)n >= outsize)
        return -1;
    return 0;
}


int vt_decode_id_number(double v, char *out, size_t outsize)
{
    if (!isfinite(v) || fabs(v) >= VT_DECODE_EXACT_INT_MAX)
        return -1;
    return vt_decode_integer_text(v, out, outsize);
}


bool vt_decode_id(const cJSON *node, char *dst, size_t dstsize)
{
    char text[VT_ID_MAX + 2];

    if (cJSON_IsString(node) && vt_id_valid(node->valuestring, strlen(node->valuestring))) {
        vt_strlcpy(dst, node->valuestring, dstsize);
        return true;
    }
    if (cJSON_IsNumber(node) &&
        vt_decode_id_number(node->valuedouble, text, sizeof text) == 0 &&
        vt_id_valid(text, strlen(text))) {
        vt_strlcpy(dst, text, dstsize);
        return true;
    }
    return false;
}


void vt_decode_describe_invalid_id(const cJSON *node, char *out, size_t outsize)
{
    char got[VT_DECODE_QUOTE_SIZE + 16];

    vt_decode_describe(node, got, sizeof got);
    if (cJSON_IsNumber(node) && isfinite(node->valuedouble) &&
        node->valuedouble == floor(node->valuedouble) &&
        fabs(node->valuedouble) >= VT_DECODE_EXACT_INT_MAX)
        snprintf(out, outsize,
                 "got %s, which is 2^53 or more in magnitude and may have lost its last "
                 "digits in the JSON parser, expected the id as a string",
                 got);
    else
        snprintf(out, outsize, "got %s, expected %s", got, vt_id_rule);
}


void vt_decode_person_id(struct vt_event *ev, enum vt_amount_field field, const cJSON *node,
                         char *dst, size_t dstsize)
{
    if (node == NULL || vt_decode_id(node, dst, dstsize))
        return;
    dst[0] = '\0';
    ev->n_values_dropped[field]++;
}


int vt_decode_int32(double v, int32_t *out)
{
    if (!isfinite(v) || v != floor(v) || v < (double)INT32_MIN || v > (double)INT32_MAX)
        return -1;
    *out = (int32_t)v;
    return 0;
}


void vt_decode_set_amount(struct vt_event *ev, enum vt_amount_field field, double v,
                          double *out)
{
    if (isfinite(v) && v >= 0 && v <= VT_DECODE_AMOUNT_MAX) {
        *out = v == 0 ? 0 : v; /* -0 becomes 0 */
        return;
    }
    *out = -1;
    ev->n_values_dropped[field]++;
}


void vt_decode_set_quantity(struct vt_event *ev, int32_t q, int32_t *out)
{
    if (q >= 1 && q <= VT_DECODE_QUANTITY_MAX) {
        *out = q;
        return;
    }
    *out = -1;
    if (q != 0)
        ev->n_values_dropped[VT_AMOUNT_QUANTITY]++;
}


bool vt_decode_product_id_valid(const char *s, size_t len)
{
    if (len == 0 || len > VT_PRODUCT_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F)
            return false;
    }
    return true;
}


/* Length of the UTF-8 sequence at s (at most avail bytes), or 0 when it is invalid
 * (truncated, overlong, a UTF-16 surrogate or above U+10FFFF, as RFC 3629 defines). */
static size_t utf8_sequence_length(const unsigned char *s, size_t avail)
{
    size_t n;
    uint32_t cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        n = 2;
        cp = s[0] & 0x1F;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        n = 3;
        cp = s[0] & 0x0F;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        n = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }

    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000))
        return 0;
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
        return 0;
    return n;
}


/*
 * Check the raw value for what cJSON 1.7 accepts but vitrine must reject. The value must
 * be UTF-8 without NUL bytes, strings must not contain the escape \u0000, and nesting
 * must stay within DECODE_DEPTH_MAX. cJSON returns strings as C strings, so a NUL from
 * either source would silently cut a value short (an id "abc\u0000{x}" would read as
 * "abc").
 *
 * The scan tracks strings only far enough to find escapes and brackets. On text that is
 * not JSON it may miss a bracket, and the parse that follows rejects such text anyway.
 */
static enum vt_decode_status check_raw_text(const char *payload, size_t len, char *msg,
                                            size_t msgsize)
{
    const unsigned char *p = (const unsigned char *)payload;
    bool in_string = false;
    int depth = 0;
    size_t i = 0;

    while (i < len) {
        unsigned char c = p[i];

        if (c == '\0')
            return vt_decode_fail(VT_DECODE_ERR_JSON, msg, msgsize,
                                  "record value contains a NUL byte at offset %zu", i);
        if (c >= 0x80) {
            size_t n = utf8_sequence_length(p + i, len - i);
            if (n == 0)
                return vt_decode_fail(VT_DECODE_ERR_JSON, msg, msgsize,
                                      "record value is not valid UTF-8 at offset %zu", i);
            i += n;
            continue;
        }

        if (in_string) {
            if (c == '"') {
                in_string = false;
            } else if (c == '\\' && i + 1 < len) {
                if (len - i >= 6 && memcmp(p + i + 1, "u0000", 5) == 0)
                    return vt_decode_fail(VT_DECODE_ERR_JSON, msg, msgsize,
                                          "string at offset %zu contains the escape \\u0000 "
                                          "(NUL), which vitrine does not accept", i);
                /* Step over the escaped character only when it is plain ASCII, so the
                 * checks above still see a NUL or a multi-byte character after '\'. */
                if (p[i + 1] >= 0x20 && p[i + 1] < 0x80)
                    i++;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            depth++;
            if (depth > DECODE_DEPTH_MAX)
                return vt_decode_fail(VT_DECODE_ERR_JSON, msg, msgsize,
                                      "record value nests objects and arrays deeper than "
                                      "%d levels at offset %zu",
                                      DECODE_DEPTH_MAX, i);
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
        i++;
    }
    return VT_DECODE_OK;
}


static bool is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}


/* True when root carries a Mapp key, nested ("session": {...}) or flattened
 * ("session_id": ...). */
static bool has_mapp_key(const cJSON *root)
{
    for (const cJSON *child = root->child; child != NULL; child = child->next) {
        if (child->string == NULL)
            continue;
        for (size_t k = 0; k < sizeof mapp_keys / sizeof mapp_keys[0]; k++) {
            size_t n = strlen(mapp_keys[k]);
            if (strncmp(child->string, mapp_keys[k], n) == 0 &&
                (child->string[n] == '\0' || child->string[n] == '_'))
                return true;
        }
    }
    return false;
}


static const char *json_kind_name(const cJSON *node)
{
    if (cJSON_IsArray(node))
        return "an array";
    if (cJSON_IsString(node))
        return "a string";
    if (cJSON_IsNumber(node))
        return "a number";
    if (cJSON_IsBool(node))
        return "a boolean";
    return "null";
}


/* Parse payload[0..len) and check that it is one JSON object with nothing after it. */
static enum vt_decode_status parse_object(const char *payload, size_t len, cJSON **out,
                                          char *msg, size_t msgsize)
{
    const char *end = NULL;
    cJSON *root;
    size_t offset;

    *out = NULL;
    root = cJSON_ParseWithLengthOpts(payload, len, &end, false);
    if (root == NULL) {
        offset = end != NULL && end >= payload ? (size_t)(end - payload) : 0;
        return vt_decode_fail(VT_DECODE_ERR_JSON, msg, msgsize,
                              "record value is not valid JSON: syntax error at offset %zu "
                              "of %zu",
                              offset, len);
    }

    /* cJSON stops after the first value. Only whitespace may follow it. */
    offset = (size_t)(end - payload);
    while (offset < len && is_json_space(payload[offset]))
        offset++;
    if (offset < len) {
        cJSON_Delete(root);
        return vt_decode_fail(VT_DECODE_ERR_JSON, msg, msgsize,
                              "record value is not valid JSON: unexpected data after the "
                              "value at offset %zu of %zu",
                              offset, len);
    }

    if (!cJSON_IsObject(root)) {
        enum vt_decode_status status =
            vt_decode_fail(VT_DECODE_ERR_NOT_OBJECT, msg, msgsize,
                           "record value is %s, expected a JSON object", json_kind_name(root));
        cJSON_Delete(root);
        return status;
    }
    *out = root;
    return VT_DECODE_OK;
}


/* Reject a decoded event whose time lies outside the window of VT_DECODE_TS_MIN_MS and
 * VT_DECODE_TS_AHEAD_MAX_MS after the wall clock. Both ends belong to the window. */
static enum vt_decode_status check_time_window(const struct vt_event *ev, char *msg,
                                               size_t msgsize)
{
    const char *field = ev->format == VT_FORMAT_MAPP ? "timestamp" : "ts";
    int64_t max_ms = vt_now_ms() + VT_DECODE_TS_AHEAD_MAX_MS;
    char got[40];
    char first[40];
    char last[40];

    if (ev->ts_ms >= VT_DECODE_TS_MIN_MS && ev->ts_ms <= max_ms)
        return VT_DECODE_OK;

    vt_time_format_iso8601(ev->ts_ms, got, sizeof got);
    vt_time_format_iso8601(VT_DECODE_TS_MIN_MS, first, sizeof first);
    vt_time_format_iso8601(max_ms, last, sizeof last);
    return vt_decode_fail(VT_DECODE_ERR_TIMESTAMP, msg, msgsize,
                          "%s is outside the accepted time window, got %s (%lld ms since "
                          "the epoch), expected %s to %s (24 hours after the current time)",
                          field, got, (long long)ev->ts_ms, first, last);
}


/* True for the event types that are about products and mean nothing without one. */
static bool type_needs_product(enum vt_event_type type)
{
    switch (type) {
    case VT_EV_PRODUCT_VIEW:
    case VT_EV_PRODUCT_IMAGE_VIEW:
    case VT_EV_ADD_TO_CART:
    case VT_EV_REMOVE_FROM_CART:
    case VT_EV_ADD_TO_WISHLIST:
    case VT_EV_REMOVE_FROM_WISHLIST:
        return true;
    default:
        return false;
    }
}


/*
 * Skip a product event that is left without products, so that it changes no counter. A
 * Mapp record whose items are all placeholders ends up here, and so does a record whose
 * products all lack a usable id. ev->type keeps the decoded type for the skip metrics.
 */
static enum vt_decode_status check_products(const struct vt_event *ev, char *msg,
                                            size_t msgsize)
{
    const char *type = vt_event_type_name(ev->type);

    if (ev->n_items > 0 || !type_needs_product(ev->type))
        return VT_DECODE_OK;
    if (ev->n_items_dropped > 0)
        return vt_decode_fail(VT_DECODE_SKIP, msg, msgsize,
                              "%s event carries no product with a usable id (%zu dropped) "
                              "and is skipped",
                              type, ev->n_items_dropped);
    return vt_decode_fail(VT_DECODE_SKIP, msg, msgsize,
                          "%s event carries no product and is skipped", type);
}


enum vt_decode_status vt_decode_event(const char *payload, size_t len,
                                      const struct vt_config *cfg, struct vt_event *ev,
                                      char *msg, size_t msgsize)
{
    enum vt_decode_status status;
    const cJSON *type;
    cJSON *root = NULL;
    size_t first = 0;

    if (msg != NULL && msgsize > 0)
        msg[0] = '\0';
    vt_event_clear(ev);

    if (payload == NULL || len == 0)
        return vt_decode_fail(VT_DECODE_ERR_EMPTY, msg, msgsize,
                              "record value is empty, expected a JSON object");
    if (len > VT_RECORD_MAX)
        return vt_decode_fail(VT_DECODE_ERR_TOO_LARGE, msg, msgsize,
                              "record value has %zu bytes, more than the maximum of %d",
                              len, VT_RECORD_MAX);
    while (first < len && is_json_space(payload[first]))
        first++;
    if (first == len)
        return vt_decode_fail(VT_DECODE_ERR_EMPTY, msg, msgsize,
                              "record value contains only whitespace, expected a JSON object");

    status = check_raw_text(payload, len, msg, msgsize);
    if (status != VT_DECODE_OK)
        return status;
    status = parse_object(payload, len, &root, msg, msgsize);
    if (status != VT_DECODE_OK)
        return status;

    /* A member "type" of any JSON type marks a canonical event, so that a wrong type is
     * reported as a canonical field and not as a Mapp record without a timestamp. */
    type = cJSON_GetObjectItemCaseSensitive(root, "type");
    if (type != NULL) {
        ev->format = VT_FORMAT_CANONICAL;
        status = vt_decode_canonical(root, ev, msg, msgsize);
    } else if (has_mapp_key(root)) {
        ev->format = VT_FORMAT_MAPP;
        status = vt_decode_mapp(root, cfg, ev, msg, msgsize);
    } else {
        status = vt_decode_fail(VT_DECODE_ERR_FORMAT, msg, msgsize,
                                "record is neither a canonical event (a member \"type\") nor "
                                "a Mapp record (a key session, basket, page, "
                                "processingMetadata, eventMetadata or user)");
    }
    cJSON_Delete(root);

    if (status == VT_DECODE_OK)
        status = check_time_window(ev, msg, msgsize);
    if (status == VT_DECODE_OK)
        status = check_products(ev, msg, msgsize);
    return status;
}
