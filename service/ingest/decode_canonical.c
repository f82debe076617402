/*
 * vitrine: decoder of the canonical event JSON, the format a shop can send without Mapp.
 * docs/events.md documents every field for the engineers who produce it.
 *
 * A known field with the wrong JSON type rejects the record with VT_DECODE_ERR_FIELD,
 * except session_id and ts, which have their own statuses. JSON null counts as absent.
 * Unknown members are ignored so that producers can add fields first. A product without
 * a usable id is dropped and counted instead of rejecting the record, and so is a price,
 * quantity or order value out of its range, and a user_id or customer_id of any unusable
 * value or JSON type (guests send "" or "N/A"). A consent value of any unusable type or
 * text leaves consent unknown and sets ev->consent_unreadable without rejecting the
 * record.
 */
#include "decode_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vitrine/util.h"

/* A member of obj, with JSON null treated as absent. */
static const cJSON *member(const cJSON *obj, const char *name)
{
    const cJSON *node = cJSON_GetObjectItemCaseSensitive(obj, name);

    return cJSON_IsNull(node) ? NULL : node;
}


/* Reject a field whose JSON type is wrong, with VT_DECODE_ERR_FIELD. */
static enum vt_decode_status wrong_type(const char *field, const char *expected,
                                        const cJSON *node, char *msg, size_t msgsize)
{
    char got[VT_DECODE_QUOTE_SIZE + 16];

    vt_decode_describe(node, got, sizeof got);
    return vt_decode_fail(VT_DECODE_ERR_FIELD, msg, msgsize, "%s must be %s, got %s", field,
                          expected, got);
}


/* Copy an optional string member into dst, cut at a character boundary when too long.
 * field is the member's path in messages. */
static enum vt_decode_status read_text(const cJSON *obj, const char *name, const char *field,
                                       char *dst, size_t dstsize, char *msg, size_t msgsize)
{
    const cJSON *node = member(obj, name);

    if (node == NULL)
        return VT_DECODE_OK;
    if (!cJSON_IsString(node))
        return wrong_type(field, "a string", node, msg, msgsize);
    vt_copy_utf8(dst, dstsize, node->valuestring, strlen(node->valuestring));
    return VT_DECODE_OK;
}


/*
 * Read an optional id, a string or a whole number below 2^53 in magnitude, into dst
 * (VT_ID_MAX + 1 bytes). An id that fails vt_decode_id rejects the record with the status
 * `invalid`, and any other JSON type with VT_DECODE_ERR_FIELD.
 */
static enum vt_decode_status read_id(const cJSON *obj, const char *name, char *dst,
                                     size_t dstsize, enum vt_decode_status invalid, char *msg,
                                     size_t msgsize)
{
    const cJSON *node = member(obj, name);
    char problem[VT_DECODE_INVALID_ID_SIZE];

    if (node == NULL)
        return VT_DECODE_OK;
    if (!cJSON_IsString(node) && !cJSON_IsNumber(node))
        return wrong_type(name, "a string or a whole number", node, msg, msgsize);
    if (vt_decode_id(node, dst, dstsize))
        return VT_DECODE_OK;

    vt_decode_describe_invalid_id(node, problem, sizeof problem);
    return vt_decode_fail(invalid, msg, msgsize, "%s is not a valid id, %s", name, problem);
}


/* type: required. Format detection sends every object with a member "type" here, so a
 * type of another JSON type, null included, is rejected as an invalid field. */
static enum vt_decode_status decode_type(const cJSON *root, struct vt_event *ev, char *msg,
                                         size_t msgsize)
{
    const cJSON *node = cJSON_GetObjectItemCaseSensitive(root, "type");
    const char *s;
    char quoted[VT_DECODE_QUOTE_SIZE];
    char names[VT_EV_TYPE_COUNT * 24];
    size_t used = 0;

    if (!cJSON_IsString(node))
        return wrong_type("type", "a string naming the event type, such as \"page_view\"",
                          node, msg, msgsize);
    s = node->valuestring;
    if (vt_event_type_parse(s, strlen(s), &ev->type) == 0)
        return VT_DECODE_OK;

    names[0] = '\0';
    for (int t = 0; t < VT_EV_TYPE_COUNT; t++) {
        int n = snprintf(names + used, sizeof names - used, "%s%s", t > 0 ? ", " : "",
                         vt_event_type_name((enum vt_event_type)t));
        if (n < 0 || (size_t)n >= sizeof names - used)
            break;
        used += (size_t)n;
    }
    vt_decode_quote(s, strlen(s), quoted, sizeof quoted);
    return vt_decode_fail(VT_DECODE_ERR_TYPE, msg, msgsize,
                          "type %s is not a known event type, expected one of %s", quoted,
                          names);
}


static enum vt_decode_status decode_session(const cJSON *root, struct vt_event *ev, char *msg,
                                            size_t msgsize)
{
    const cJSON *node = member(root, "session_id");

    if (node == NULL)
        return vt_decode_fail(VT_DECODE_ERR_SESSION, msg, msgsize,
                              "session_id is missing, expected a string of %s", vt_id_rule);
    if (!cJSON_IsString(node)) {
        char got[VT_DECODE_QUOTE_SIZE + 16];
        vt_decode_describe(node, got, sizeof got);
        return vt_decode_fail(VT_DECODE_ERR_SESSION, msg, msgsize,
                              "session_id must be a string, got %s", got);
    }
    return read_id(root, "session_id", ev->session_id, sizeof ev->session_id,
                   VT_DECODE_ERR_SESSION, msg, msgsize);
}


/* ts: RFC 3339 text, or epoch milliseconds as a JSON number (a fraction is cut off). The
 * accepted time window is checked in decode.c, for both formats. */
static enum vt_decode_status decode_ts(const cJSON *root, struct vt_event *ev, char *msg,
                                       size_t msgsize)
{
    static const char expected[] =
        "RFC 3339 text such as \"2024-05-01T12:00:00.000Z\" or epoch milliseconds";
    const cJSON *node = member(root, "ts");
    char got[VT_DECODE_QUOTE_SIZE + 16];

    if (node == NULL)
        return vt_decode_fail(VT_DECODE_ERR_TIMESTAMP, msg, msgsize,
                              "ts is missing, expected %s", expected);
    if (cJSON_IsString(node)) {
        const char *s = node->valuestring;
        if (vt_time_parse_iso8601(s, strlen(s), &ev->ts_ms) == 0)
            return VT_DECODE_OK;
    } else if (cJSON_IsNumber(node)) {
        double v = node->valuedouble;
        if (isfinite(v) && fabs(v) <= VT_DECODE_EXACT_INT_MAX) {
            ev->ts_ms = (int64_t)v;
            return VT_DECODE_OK;
        }
    }
    vt_decode_describe(node, got, sizeof got);
    return vt_decode_fail(VT_DECODE_ERR_TIMESTAMP, msg, msgsize,
                          "ts is not a valid time, got %s, expected %s", got, expected);
}


/* An optional unit price or order value, a JSON number. A value out of range is dropped
 * by vt_decode_set_amount. */
static enum vt_decode_status read_amount(const cJSON *obj, const char *name, const char *field,
                                         struct vt_event *ev, enum vt_amount_field kind,
                                         double *out, char *msg, size_t msgsize)
{
    const cJSON *node = member(obj, name);

    if (node == NULL)
        return VT_DECODE_OK;
    if (!cJSON_IsNumber(node))
        return wrong_type(field, "a number", node, msg, msgsize);
    vt_decode_set_amount(ev, kind, node->valuedouble, out);
    return VT_DECODE_OK;
}


/* An optional whole number within 32 bits. *found is set to whether it is present. */
static enum vt_decode_status read_int32(const cJSON *obj, const char *name, const char *field,
                                        int32_t *out, bool *found, char *msg, size_t msgsize)
{
    const cJSON *node = member(obj, name);

    *found = false;
    if (node == NULL)
        return VT_DECODE_OK;
    if (!cJSON_IsNumber(node) || vt_decode_int32(node->valuedouble, out) != 0)
        return wrong_type(field, "a whole number within 32 bits", node, msg, msgsize);
    *found = true;
    return VT_DECODE_OK;
}


/* categories: an array of strings or one string. Empty names are skipped, and names past
 * VT_ITEM_CATEGORIES_MAX are ignored. */
static enum vt_decode_status decode_categories(const cJSON *product, const char *prefix,
                                               struct vt_event_item *item, char *msg,
                                               size_t msgsize)
{
    const cJSON *node = member(product, "categories");
    char field[VT_DECODE_PATH_SIZE];
    const cJSON *entry;
    int index = 0;

    if (node == NULL)
        return VT_DECODE_OK;
    if (cJSON_IsString(node)) {
        if (node->valuestring[0] != '\0') {
            vt_copy_utf8(item->categories[0], sizeof item->categories[0], node->valuestring,
                         strlen(node->valuestring));
            item->n_categories = 1;
        }
        return VT_DECODE_OK;
    }
    if (!cJSON_IsArray(node)) {
        snprintf(field, sizeof field, "%s.categories", prefix);
        return wrong_type(field, "an array of strings or a string", node, msg, msgsize);
    }

    cJSON_ArrayForEach(entry, node) {
        if (!cJSON_IsString(entry)) {
            snprintf(field, sizeof field, "%s.categories[%d]", prefix, index);
            return wrong_type(field, "a string", entry, msg, msgsize);
        }
        if (entry->valuestring[0] != '\0' && item->n_categories < VT_ITEM_CATEGORIES_MAX) {
            char *dst = item->categories[item->n_categories++];
            vt_copy_utf8(dst, VT_NAME_MAX + 1, entry->valuestring, strlen(entry->valuestring));
        }
        index++;
    }
    return VT_DECODE_OK;
}


/*
 * Decode products[index] into *item. *usable is false when the product has no usable id
 * (missing, empty, too long, with control bytes, or a number of 2^53 or more), and the
 * caller drops it. Prices and quantities out of range are counted in ev.
 */
static enum vt_decode_status decode_product(const cJSON *product, int index,
                                            struct vt_event *ev, struct vt_event_item *item,
                                            bool *usable, char *msg, size_t msgsize)
{
    enum vt_decode_status status;
    char prefix[32];
    char field[VT_DECODE_PATH_SIZE];
    const cJSON *id;
    const cJSON *gender;
    int32_t quantity;
    bool found;

    *usable = false;
    snprintf(prefix, sizeof prefix, "products[%d]", index);
    if (!cJSON_IsObject(product))
        return wrong_type(prefix, "an object", product, msg, msgsize);

    memset(item, 0, sizeof *item);
    item->price = -1;
    item->quantity = -1;
    item->position = -1;

    id = member(product, "id");
    snprintf(field, sizeof field, "%s.id", prefix);
    if (cJSON_IsString(id)) {
        size_t len = strlen(id->valuestring);
        if (!vt_decode_product_id_valid(id->valuestring, len))
            return VT_DECODE_OK;
        memcpy(item->id, id->valuestring, len + 1);
    } else if (cJSON_IsNumber(id)) {
        if (vt_decode_id_number(id->valuedouble, item->id, sizeof item->id) != 0)
            return VT_DECODE_OK;
    } else if (id == NULL) {
        return VT_DECODE_OK;
    } else {
        return wrong_type(field, "a string or a whole number", id, msg, msgsize);
    }

    snprintf(field, sizeof field, "%s.brand", prefix);
    status = read_text(product, "brand", field, item->brand, sizeof item->brand, msg,
                       msgsize);
    if (status != VT_DECODE_OK)
        return status;
    status = decode_categories(product, prefix, item, msg, msgsize);
    if (status != VT_DECODE_OK)
        return status;

    gender = member(product, "gender");
    if (gender != NULL) {
        if (!cJSON_IsString(gender)) {
            snprintf(field, sizeof field, "%s.gender", prefix);
            return wrong_type(field, "a string", gender, msg, msgsize);
        }
        item->gender = vt_gender_parse(gender->valuestring, strlen(gender->valuestring));
    }

    snprintf(field, sizeof field, "%s.price", prefix);
    status = read_amount(product, "price", field, ev, VT_AMOUNT_PRICE, &item->price, msg,
                         msgsize);
    if (status != VT_DECODE_OK)
        return status;
    snprintf(field, sizeof field, "%s.quantity", prefix);
    status = read_int32(product, "quantity", field, &quantity, &found, msg, msgsize);
    if (status != VT_DECODE_OK)
        return status;
    if (found)
        vt_decode_set_quantity(ev, quantity, &item->quantity);
    snprintf(field, sizeof field, "%s.position", prefix);
    status = read_int32(product, "position", field, &item->position, &found, msg, msgsize);
    if (status != VT_DECODE_OK)
        return status;

    *usable = true;
    return VT_DECODE_OK;
}


/* Products past VT_EVENT_ITEMS_MAX usable ones are counted as dropped without being
 * checked. */
static enum vt_decode_status decode_products(const cJSON *root, struct vt_event *ev, char *msg,
                                             size_t msgsize)
{
    const cJSON *products = member(root, "products");
    const cJSON *product;
    int index = 0;

    if (products == NULL)
        return VT_DECODE_OK;
    if (!cJSON_IsArray(products))
        return wrong_type("products", "an array", products, msg, msgsize);

    cJSON_ArrayForEach(product, products) {
        enum vt_decode_status status;
        bool usable;

        if (ev->n_items == VT_EVENT_ITEMS_MAX) {
            ev->n_items_dropped++;
            index++;
            continue;
        }
        status = decode_product(product, index, ev, &ev->items[ev->n_items], &usable, msg,
                                msgsize);
        if (status != VT_DECODE_OK)
            return status;
        if (usable)
            ev->n_items++;
        else
            ev->n_items_dropped++;
        index++;
    }
    return VT_DECODE_OK;
}


/* Optional text members of the event and where they are stored. */
struct text_field {
    const char *name;
    size_t offset;
    size_t size;
};

#define TEXT_FIELD(name, field)                                                           \
    {name, offsetof(struct vt_event, field), sizeof(((struct vt_event *)0)->field)}

static const struct text_field text_fields[] = {
    TEXT_FIELD("placement", placement), TEXT_FIELD("page", page),
    TEXT_FIELD("referrer", referrer),   TEXT_FIELD("campaign", campaign),
    TEXT_FIELD("search", search),
};


/* order_id: text or a whole number, cut to VT_ID_MAX bytes; shops choose its format, so
 * it is not held to the id rule. */
static enum vt_decode_status decode_order(const cJSON *root, struct vt_event *ev, char *msg,
                                          size_t msgsize)
{
    const cJSON *order_id = member(root, "order_id");

    if (cJSON_IsString(order_id)) {
        vt_copy_utf8(ev->order_id, sizeof ev->order_id, order_id->valuestring,
                     strlen(order_id->valuestring));
    } else if (cJSON_IsNumber(order_id)) {
        if (vt_decode_integer_text(order_id->valuedouble, ev->order_id,
                                   sizeof ev->order_id) != 0)
            return wrong_type("order_id", "a string or a whole number", order_id, msg,
                              msgsize);
    } else if (order_id != NULL) {
        return wrong_type("order_id", "a string or a whole number", order_id, msg, msgsize);
    }
    return read_amount(root, "order_value", "order_value", ev, VT_AMOUNT_ORDER_VALUE,
                       &ev->order_value, msg, msgsize);
}


/* consent: true or false, 1 or 0, or a string that vt_consent_parse recognises. Any other
 * value is counted in ev->consent_unreadable instead of rejecting the record, because a
 * consent tool's odd value must not cost the shop its events. */
static void decode_consent(const cJSON *root, struct vt_event *ev)
{
    const cJSON *node = member(root, "consent");

    if (node == NULL)
        return;
    if (cJSON_IsBool(node))
        ev->consent = cJSON_IsTrue(node) ? VT_CONSENT_GRANTED : VT_CONSENT_DENIED;
    else if (cJSON_IsNumber(node) && node->valuedouble == 1)
        ev->consent = VT_CONSENT_GRANTED;
    else if (cJSON_IsNumber(node) && node->valuedouble == 0)
        ev->consent = VT_CONSENT_DENIED;
    else if (cJSON_IsString(node))
        ev->consent = vt_consent_parse(node->valuestring, strlen(node->valuestring));
    ev->consent_unreadable = ev->consent == VT_CONSENT_UNKNOWN;
}


enum vt_decode_status vt_decode_canonical(const cJSON *root, struct vt_event *ev, char *msg,
                                          size_t msgsize)
{
    enum vt_decode_status status;

    status = decode_type(root, ev, msg, msgsize);
    if (status != VT_DECODE_OK)
        return status;
    status = decode_session(root, ev, msg, msgsize);
    if (status != VT_DECODE_OK)
        return status;
    status = decode_ts(root, ev, msg, msgsize);
    if (status != VT_DECODE_OK)
        return status;

    vt_decode_person_id(ev, VT_AMOUNT_USER_ID, member(root, "user_id"), ev->user_id,
                        sizeof ev->user_id);
    vt_decode_person_id(ev, VT_AMOUNT_CUSTOMER_ID, member(root, "customer_id"),
                        ev->customer_id, sizeof ev->customer_id);
    status = read_id(root, "id", ev->event_id, sizeof ev->event_id, VT_DECODE_ERR_FIELD, msg,
                     msgsize);
    if (status != VT_DECODE_OK)
        return status;
    status = read_id(root, "decision_id", ev->decision_id, sizeof ev->decision_id,
                     VT_DECODE_ERR_FIELD, msg, msgsize);
    if (status != VT_DECODE_OK)
        return status;

    for (size_t i = 0; i < sizeof text_fields / sizeof text_fields[0]; i++) {
        char *dst = (char *)ev + text_fields[i].offset;
        status = read_text(root, text_fields[i].name, text_fields[i].name, dst,
                           text_fields[i].size, msg, msgsize);
        if (status != VT_DECODE_OK)
            return status;
    }
    status = decode_order(root, ev, msg, msgsize);
    if (status != VT_DECODE_OK)
        return status;
    decode_consent(root, ev);

    return decode_products(root, ev, msg, msgsize);
}
