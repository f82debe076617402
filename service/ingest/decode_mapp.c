/*
 * vitrine: decoder of Mapp Intelligence Data Streams records.
 *
 * Mapp delivers one JSON object per tracking request. The root stream keeps fields nested
 * ("session": {"id": ...}), custom streams flatten them with "_" ("session_id",
 * "basket_items_1_product_name"), and this decoder also accepts mixtures of both. Every
 * field is read through path_find, which resolves a path of segments in any of these
 * forms. docs/events.md lists the fields read and how basket statuses map to event types.
 *
 * session.id and timestamp are required. Other fields are optional, and JSON null counts
 * as absent. A known field with an unusable JSON type (for example an object where text
 * is expected) rejects the record with VT_DECODE_ERR_FIELD, except user.id and user.customerId,
 * which are dropped and counted like any other unusable value of theirs. Numbers and text
 * are accepted for one another where the meaning is clear, since custom streams may carry
 * either. A price, quantity or order value out of its range is dropped and counted, as in
 * the canonical decoder. So is a consent value (mapp.consent_param) that is not
 * recognised: consent stays unknown and ev->consent_unreadable is set.
 */
#include "decode_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vitrine/util.h"

/* Segments in one path, including the "basket", "items", "<N>" prefix of a flattened
 * item. */
#define PATH_SEGMENTS_MAX 10

/* Custom streams number flattened items 1 to 25. */
#define FLAT_ITEMS_MAX 25

/* Root members listed per flattened item. An item with more is searched across the whole
 * root, which gives the same result more slowly. */
#define FLAT_MEMBERS_MAX 128

/* Expand to the two arguments (array, count) that name a path for path_find and
 * scope_find: SEGMENTS("session", "id"). */
#define SEGMENTS(...)                                                                     \
    (const char *const[]){__VA_ARGS__},                                                   \
        sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)

/* What basket.status values mean, compared without regard to case. */
static const struct {
    const char *status;
    enum vt_event_type type;
    const char *placement;
} basket_statuses[] = {
    {"list", VT_EV_IMPRESSION, ""},
    {"view", VT_EV_PRODUCT_VIEW, ""},
    {"add", VT_EV_ADD_TO_CART, ""},
    {"addToCart", VT_EV_ADD_TO_CART, ""},
    {"del", VT_EV_REMOVE_FROM_CART, ""},
    {"deleteFromCart", VT_EV_REMOVE_FROM_CART, ""},
    {"add-wl", VT_EV_ADD_TO_WISHLIST, ""},
    {"addToWishlist", VT_EV_ADD_TO_WISHLIST, ""},
    {"del-wl", VT_EV_REMOVE_FROM_WISHLIST, ""},
    {"deleteFromWishlist", VT_EV_REMOVE_FROM_WISHLIST, ""},
    {"checkout", VT_EV_CHECKOUT, ""},
    {"conf", VT_EV_PURCHASE, ""},
    {"confirmation", VT_EV_PURCHASE, ""},
    {"displayReco", VT_EV_IMPRESSION, "reco"},
    {"clickReco", VT_EV_CLICK, "reco"},
};

/* The root members where a path of flattened item N can start: "basket", "basket_items"
 * and every key that starts with "basket_items_<N>" followed by "_" or its end. Searching
 * these instead of every root member keeps a 25-item record fast. */
struct flat_members {
    const cJSON *member[FLAT_MEMBERS_MAX];
    size_t n;
};

/* The starting point of field lookups: the record root, an element of the nested
 * basket.items array, or the flattened item number N (the root, with "basket", "items",
 * "<N>" put in front of every path). */
struct scope {
    const cJSON *base;
    const struct flat_members *members; /* root members to search for a flattened item, or
                                           NULL to search every member of base */
    bool flat_item;
    bool index_arrays; /* false for flattened items, so that "1" never selects an element
                          of a nested basket.items array */
    char number[8];    /* N of a flattened item */
    char label[32];    /* "basket.items[3]" or "basket_items_4", for messages */
};

/* Values of one configured parameter (brand, category or gender) for one item. */
struct param_values {
    char value[VT_ITEM_CATEGORIES_MAX][VT_NAME_MAX + 1];
    size_t n;
};

/* State of one record's decode. */
struct mapp_decode {
    const cJSON *root;
    const struct vt_config *cfg;
    struct vt_event *ev;
    char *msg;
    size_t msgsize;
    bool list_status; /* basket.status "list": item positions come from listPosition */
    /* Request-level e-commerce values (basket.parameters) of brand, category, gender. */
    struct param_values request_brand;
    struct param_values request_category;
    struct param_values request_gender;
};


/* Number of leading segments whose join with "_" equals key, or 0 when none does. */
static size_t joined_segments(const char *key, const char *const *segs, size_t n)
{
    const char *p = key;

    for (size_t j = 0; j < n; j++) {
        size_t len = strlen(segs[j]);

        if (j > 0) {
            if (*p != '_')
                return 0;
            p++;
        }
        if (strncmp(p, segs[j], len) != 0)
            return 0;
        p += len;
        if (*p == '\0')
            return j + 1;
    }
    return 0;
}


/* Record member as candidates[k] when its name is the join of the first k segments,
 * unless an earlier member took that place (cJSON's lookups also return the first). */
static void add_candidate(const cJSON *member, const char *const *segs, size_t n,
                          const cJSON **candidates)
{
    size_t k = member->string != NULL ? joined_segments(member->string, segs, n) : 0;

    if (k > 0 && candidates[k] == NULL)
        candidates[k] = member;
}


static const cJSON *path_find(const cJSON *node, const char *const *segs, size_t n,
                              bool index_arrays);

/* Resolve the rest of the path below the candidates, from the longest join down. */
static const cJSON *follow_candidates(const cJSON *const *candidates, const char *const *segs,
                                      size_t n, bool index_arrays)
{
    for (size_t k = n; k > 0; k--) {
        const cJSON *found;
        if (candidates[k] == NULL)
            continue;
        found = path_find(candidates[k], segs + k, n - k, index_arrays);
        if (found != NULL)
            return found;
    }
    return NULL;
}


/*
 * Resolve the path segs[0..n) at node. At an object, a member named by the longest join
 * of leading segments with "_" wins ("basket_items_1_product_name" before
 * "basket_items_1" before "basket"), and shorter joins are tried when the rest of the path
 * does not resolve below the longer one. At an array, a numeric segment is a 0-based
 * index when index_arrays is set. Returns NULL when nothing matches.
 *
 * One pass over an object's members finds the candidates for every join length. Each
 * member matches at most one length and the candidates' subtrees are disjoint, so one
 * lookup visits each node of the tree at most once.
 */
static const cJSON *path_find(const cJSON *node, const char *const *segs, size_t n,
                              bool index_arrays)
{
    const cJSON *candidates[PATH_SEGMENTS_MAX + 1] = {NULL};

    if (node == NULL || n == 0)
        return node;
    if (n > PATH_SEGMENTS_MAX)
        return NULL;

    if (cJSON_IsArray(node)) {
        int64_t index;
        if (!index_arrays || vt_parse_int64(segs[0], 0, INT32_MAX, &index) != 0)
            return NULL;
        return path_find(cJSON_GetArrayItem(node, (int)index), segs + 1, n - 1, index_arrays);
    }
    if (!cJSON_IsObject(node))
        return NULL;

    for (const cJSON *child = node->child; child != NULL; child = child->next)
        add_candidate(child, segs, n, candidates);
    return follow_candidates(candidates, segs, n, index_arrays);
}


/* Resolve a path within a scope. JSON null counts as absent. */
static const cJSON *scope_find(const struct scope *sc, const char *const *segs, size_t n)
{
    const char *full[PATH_SEGMENTS_MAX];
    const cJSON *found;
    size_t used = 0;

    if (sc->flat_item) {
        full[used++] = "basket";
        full[used++] = "items";
        full[used++] = sc->number;
    }
    if (used + n > PATH_SEGMENTS_MAX)
        return NULL;
    for (size_t i = 0; i < n; i++)
        full[used++] = segs[i];

    if (sc->members != NULL) {
        const cJSON *candidates[PATH_SEGMENTS_MAX + 1] = {NULL};
        for (size_t i = 0; i < sc->members->n; i++)
            add_candidate(sc->members->member[i], full, used, candidates);
        found = follow_candidates(candidates, full, used, sc->index_arrays);
    } else {
        found = path_find(sc->base, full, used, sc->index_arrays);
    }
    return cJSON_IsNull(found) ? NULL : found;
}


/* Write the name of a field of a scope into out: "basket.items[0].product.name" for a
 * nested item, "basket_items_1_product_name" for a flattened one, "order.id" at the
 * root. */
static void field_name(const struct scope *sc, const char *const *segs, size_t n, char *out,
                       size_t outsize)
{
    const char *sep = sc->flat_item ? "_" : ".";
    size_t used = vt_strlcpy(out, sc->label, outsize);

    for (size_t i = 0; i < n && used < outsize; i++) {
        int written = snprintf(out + used, outsize - used, "%s%s",
                               used > 0 ? sep : "", segs[i]);
        if (written < 0)
            break;
        used += (size_t)written;
    }
}


static enum vt_decode_status wrong_type(struct mapp_decode *d, const struct scope *sc,
                                        const char *const *segs, size_t n,
                                        const char *expected, const cJSON *node)
{
    char field[VT_DECODE_PATH_SIZE];
    char got[VT_DECODE_QUOTE_SIZE + 16];

    field_name(sc, segs, n, field, sizeof field);
    vt_decode_describe(node, got, sizeof got);
    return vt_decode_fail(VT_DECODE_ERR_FIELD, d->msg, d->msgsize, "%s must be %s, got %s",
                          field, expected, got);
}


/* Write a JSON string, or a number as text, into dst (cut at a character boundary).
 * Returns false for other types. */
static bool scalar_text(const cJSON *node, char *dst, size_t dstsize)
{
    if (cJSON_IsString(node)) {
        vt_copy_utf8(dst, dstsize, node->valuestring, strlen(node->valuestring));
        return true;
    }
    if (cJSON_IsNumber(node)) {
        if (vt_decode_integer_text(node->valuedouble, dst, dstsize) != 0)
            snprintf(dst, dstsize, "%.15g", node->valuedouble);
        return true;
    }
    return false;
}


/* Read an optional text field (a string, or a number written as text) into dst. */
static enum vt_decode_status read_text(struct mapp_decode *d, const struct scope *sc,
                                       const char *const *segs, size_t n, char *dst,
                                       size_t dstsize)
{
    const cJSON *node = scope_find(sc, segs, n);

    if (node == NULL || scalar_text(node, dst, dstsize))
        return VT_DECODE_OK;
    return wrong_type(d, sc, segs, n, "a string", node);
}


/* Read an optional number, a JSON number or a string containing one. *found is set to
 * whether the field is present. */
static enum vt_decode_status read_number(struct mapp_decode *d, const struct scope *sc,
                                         const char *const *segs, size_t n, double *out,
                                         bool *found)
{
    const cJSON *node = scope_find(sc, segs, n);

    *found = false;
    if (node == NULL)
        return VT_DECODE_OK;
    if (cJSON_IsNumber(node)) {
        *out = node->valuedouble;
    } else if (!cJSON_IsString(node) ||
               vt_parse_double(node->valuestring, -INFINITY, INFINITY, out) != 0) {
        return wrong_type(d, sc, segs, n, "a number", node);
    }
    *found = true;
    return VT_DECODE_OK;
}


/* Read an optional whole number within 32 bits, as a JSON number or a string. */
static enum vt_decode_status read_int32(struct mapp_decode *d, const struct scope *sc,
                                        const char *const *segs, size_t n, int32_t *out,
                                        bool *found)
{
    const cJSON *node = scope_find(sc, segs, n);
    int64_t parsed;

    *found = false;
    if (node == NULL)
        return VT_DECODE_OK;
    if (cJSON_IsNumber(node) && vt_decode_int32(node->valuedouble, out) == 0) {
        *found = true;
        return VT_DECODE_OK;
    }
    if (cJSON_IsString(node) &&
        vt_parse_int64(node->valuestring, INT32_MIN, INT32_MAX, &parsed) == 0) {
        *out = (int32_t)parsed;
        *found = true;
        return VT_DECODE_OK;
    }
    return wrong_type(d, sc, segs, n, "a whole number within 32 bits", node);
}


/*
 * Read the optional request id into ev->event_id. A string or number that fails
 * vt_decode_id leaves it empty, because the id is informational and set by Mapp, and one
 * odd value must not reject every record that carries it. Another JSON type rejects the
 * record.
 */
static enum vt_decode_status read_event_id(struct mapp_decode *d)
{
    const struct scope root = {.base = d->root, .index_arrays = true};
    const cJSON *node = scope_find(&root, SEGMENTS("id"));

    if (node == NULL)
        return VT_DECODE_OK;
    if (!cJSON_IsString(node) && !cJSON_IsNumber(node))
        return wrong_type(d, &root, SEGMENTS("id"), "a string or a whole number", node);
    vt_decode_id(node, d->ev->event_id, sizeof d->ev->event_id);
    return VT_DECODE_OK;
}


/*
 * Read user.id and user.customerId. A value of any JSON type that fails vt_decode_id
 * leaves the id empty and is counted as dropped, because guests' records carry values
 * such as "" or "N/A" there, and rejecting them would lose every event of those guests.
 */
static void read_person_ids(struct mapp_decode *d)
{
    const struct scope root = {.base = d->root, .index_arrays = true};
    struct vt_event *ev = d->ev;

    vt_decode_person_id(ev, VT_AMOUNT_USER_ID, scope_find(&root, SEGMENTS("user", "id")),
                        ev->user_id, sizeof ev->user_id);
    vt_decode_person_id(ev, VT_AMOUNT_CUSTOMER_ID,
                        scope_find(&root, SEGMENTS("user", "customerId")), ev->customer_id,
                        sizeof ev->customer_id);
}


/*
 * Set the event type from basket.status, or without one from
 * processingMetadata.detectedContext. Returns VT_DECODE_SKIP for records that carry
 * nothing for profiles, which are actions (clicks carry no product yet), the action
 * webtrekk_ignore, and heatmap and unknown contexts. A skipped record has no event type,
 * so ev->type is set to VT_EV_TYPE_COUNT.
 */
static enum vt_decode_status decode_type(struct mapp_decode *d)
{
    const struct scope root = {.base = d->root, .index_arrays = true};
    const cJSON *action = scope_find(&root, SEGMENTS("action", "name"));
    const cJSON *status = scope_find(&root, SEGMENTS("basket", "status"));
    const cJSON *context;
    const cJSON *search;
    char quoted[VT_DECODE_QUOTE_SIZE];

    /* NOTE: "action.name" is a guess at the key of the action (event) name, because the
     * field list of Mapp's Events record was not available. */
    if (cJSON_IsString(action) && strcmp(action->valuestring, "webtrekk_ignore") == 0) {
        d->ev->type = VT_EV_TYPE_COUNT;
        return vt_decode_fail(VT_DECODE_SKIP, d->msg, d->msgsize,
                              "action webtrekk_ignore only passes context and is skipped");
    }

    if (status != NULL && !cJSON_IsString(status))
        return wrong_type(d, &root, SEGMENTS("basket", "status"), "a string", status);
    if (status != NULL && status->valuestring[0] != '\0') {
        const char *s = status->valuestring;
        size_t len = strlen(s);

        for (size_t i = 0; i < sizeof basket_statuses / sizeof basket_statuses[0]; i++) {
            if (strlen(basket_statuses[i].status) == len &&
                vt_strncaseeq(basket_statuses[i].status, s, len)) {
                d->ev->type = basket_statuses[i].type;
                vt_strlcpy(d->ev->placement, basket_statuses[i].placement,
                           sizeof d->ev->placement);
                d->list_status = vt_strncaseeq(s, "list", 5);
                return VT_DECODE_OK;
            }
        }
        vt_decode_quote(s, len, quoted, sizeof quoted);
        return vt_decode_fail(VT_DECODE_ERR_TYPE, d->msg, d->msgsize,
                              "basket.status %s is not a known product status, expected "
                              "list, view, add, del, add-wl, del-wl, checkout, conf, "
                              "displayReco or clickReco (or their long forms such as "
                              "addToCart)",
                              quoted);
    }

    context = scope_find(&root, SEGMENTS("processingMetadata", "detectedContext"));
    if (context != NULL && !cJSON_IsString(context))
        return wrong_type(d, &root, SEGMENTS("processingMetadata", "detectedContext"),
                          "a string", context);
    if (context == NULL || vt_strncaseeq(context->valuestring, "Page", 5)) {
        search = scope_find(&root, SEGMENTS("page", "internalSearchPhrase"));
        if (cJSON_IsString(search) && search->valuestring[0] != '\0')
            d->ev->type = VT_EV_SEARCH;
        else
            d->ev->type = VT_EV_PAGE_VIEW;
        return VT_DECODE_OK;
    }

    d->ev->type = VT_EV_TYPE_COUNT;
    vt_decode_quote(context->valuestring, strlen(context->valuestring), quoted, sizeof quoted);
    return vt_decode_fail(VT_DECODE_SKIP, d->msg, d->msgsize,
                          "processingMetadata.detectedContext %s without a basket status "
                          "carries nothing for profiles and is skipped",
                          quoted);
}


/* session.id: required, a string or a whole number that vt_decode_id accepts. A number of
 * 2^53 or more is rejected, because it may have lost digits and merged two sessions. */
static enum vt_decode_status decode_session(struct mapp_decode *d)
{
    const struct scope root = {.base = d->root, .index_arrays = true};
    const cJSON *node = scope_find(&root, SEGMENTS("session", "id"));
    char problem[VT_DECODE_INVALID_ID_SIZE];

    if (node == NULL)
        return vt_decode_fail(VT_DECODE_ERR_SESSION, d->msg, d->msgsize,
                              "session.id is missing, expected %s", vt_id_rule);
    if (vt_decode_id(node, d->ev->session_id, sizeof d->ev->session_id))
        return VT_DECODE_OK;

    vt_decode_describe_invalid_id(node, problem, sizeof problem);
    return vt_decode_fail(VT_DECODE_ERR_SESSION, d->msg, d->msgsize,
                          "session.id is not a valid id, %s", problem);
}


/* timestamp: required, ISO 8601 text with a zone offset. Text without a zone is taken as
 * UTC, as vt_time_parse_iso8601 does. The accepted time window is checked in decode.c. */
static enum vt_decode_status decode_timestamp(struct mapp_decode *d)
{
    const struct scope root = {.base = d->root, .index_arrays = true};
    const cJSON *node = scope_find(&root, SEGMENTS("timestamp"));
    char got[VT_DECODE_QUOTE_SIZE + 16];

    if (node == NULL)
        return vt_decode_fail(VT_DECODE_ERR_TIMESTAMP, d->msg, d->msgsize,
                              "timestamp is missing, expected ISO 8601 text such as "
                              "\"2024-05-01T12:00:00.000+02:00\"");
    if (cJSON_IsString(node) &&
        vt_time_parse_iso8601(node->valuestring, strlen(node->valuestring), &d->ev->ts_ms) == 0)
        return VT_DECODE_OK;

    vt_decode_describe(node, got, sizeof got);
    return vt_decode_fail(VT_DECODE_ERR_TIMESTAMP, d->msg, d->msgsize,
                          "timestamp is not a valid time, got %s, expected ISO 8601 text "
                          "such as \"2024-05-01T12:00:00.000+02:00\"",
                          got);
}


/* referrerUrl, except its special values: "0" no referrer, "1" the shop's own domain,
 * "2" a referrer was sent for this page. None of them names a usable referrer. */
static enum vt_decode_status decode_referrer(struct mapp_decode *d)
{
    const struct scope root = {.base = d->root, .index_arrays = true};
    const cJSON *node = scope_find(&root, SEGMENTS("referrerUrl"));
    const char *s;

    /* A JSON number can only be one of the special values written without quotes. */
    if (node == NULL || cJSON_IsNumber(node))
        return VT_DECODE_OK;
    if (!cJSON_IsString(node))
        return wrong_type(d, &root, SEGMENTS("referrerUrl"), "a string", node);
    s = node->valuestring;
    if (strcmp(s, "0") == 0 || strcmp(s, "1") == 0 || strcmp(s, "2") == 0)
        return VT_DECODE_OK;
    vt_copy_utf8(d->ev->referrer, sizeof d->ev->referrer, s, strlen(s));
    return VT_DECODE_OK;
}


/* The campaign: the first non-empty of campaign.id, campaign.mediaCode and mc. */
static enum vt_decode_status decode_campaign(struct mapp_decode *d)
{
    const struct scope root = {.base = d->root, .index_arrays = true};
    enum vt_decode_status status;

    /* NOTE: the three keys are guesses. The Campaign record's field keys were not
     * available, and "mc" is the pixel's campaign parameter. */
    status = read_text(d, &root, SEGMENTS("campaign", "id"), d->ev->campaign,
                       sizeof d->ev->campaign);
    if (status != VT_DECODE_OK || d->ev->campaign[0] != '\0')
        return status;
    status = read_text(d, &root, SEGMENTS("campaign", "mediaCode"), d->ev->campaign,
                       sizeof d->ev->campaign);
    if (status != VT_DECODE_OK || d->ev->campaign[0] != '\0')
        return status;
    return read_text(d, &root, SEGMENTS("mc"), d->ev->campaign, sizeof d->ev->campaign);
}


/* Optional fields of the request: ids, page, search phrase, referrer, campaign, order. */
static enum vt_decode_status decode_request_fields(struct mapp_decode *d)
{
    const struct scope root = {.base = d->root, .index_arrays = true};
    struct vt_event *ev = d->ev;
    enum vt_decode_status status;
    double order_value;
    bool found;

    read_person_ids(d);
    status = read_event_id(d);
    if (status == VT_DECODE_OK)
        status = read_text(d, &root, SEGMENTS("page", "name"), ev->page, sizeof ev->page);
    if (status == VT_DECODE_OK)
        status = read_text(d, &root, SEGMENTS("page", "internalSearchPhrase"), ev->search,
                           sizeof ev->search);
    if (status == VT_DECODE_OK)
        status = decode_referrer(d);
    if (status == VT_DECODE_OK)
        status = decode_campaign(d);
    if (status == VT_DECODE_OK)
        status = read_text(d, &root, SEGMENTS("order", "id"), ev->order_id,
                           sizeof ev->order_id);
    if (status == VT_DECODE_OK)
        status = read_number(d, &root, SEGMENTS("order", "value"), &order_value, &found);
    if (status == VT_DECODE_OK && found)
        vt_decode_set_amount(ev, VT_AMOUNT_ORDER_VALUE, order_value, &ev->order_value);
    return status;
}


/* Add the text of a parameter value (a string or a number) to *out unless it is empty or
 * out is full. */
static void add_param_value(const cJSON *node, struct param_values *out)
{
    char text[VT_NAME_MAX + 1];

    if (out->n == VT_ITEM_CATEGORIES_MAX || !scalar_text(node, text, sizeof text))
        return;
    if (text[0] == '\0')
        return;
    memcpy(out->value[out->n++], text, sizeof text);
}


/*
 * Find the value of the parameter entry at segs within sc, or NULL when it is absent. An
 * entry is {"key": "<N>", "value": ...}, {"key": "<N>", "values": [...]}, or a plain
 * string, number or array. Custom streams flatten the first two to "<path>_value" and
 * "<path>_values". "values" wins over "value". Lookups here never index arrays, because
 * "<N>" is a parameter number and never a position.
 */
static const cJSON *entry_node(const struct scope *sc, const char *const *segs, size_t n)
{
    struct scope sc_keys = *sc;
    const char *path[PATH_SEGMENTS_MAX];
    const cJSON *node;

    if (n + 1 > PATH_SEGMENTS_MAX)
        return NULL;
    sc_keys.index_arrays = false;
    memcpy(path, segs, n * sizeof *segs);

    path[n] = "values";
    node = scope_find(&sc_keys, path, n + 1);
    if (node == NULL) {
        path[n] = "value";
        node = scope_find(&sc_keys, path, n + 1);
    }
    if (node == NULL)
        node = scope_find(&sc_keys, segs, n);
    return node;
}


/* Collect the values of the parameter entry at segs within sc (see entry_node) into
 * *out. */
static void entry_values(const struct scope *sc, const char *const *segs, size_t n,
                         struct param_values *out)
{
    const cJSON *node = entry_node(sc, segs, n);
    const cJSON *element;

    out->n = 0;
    if (cJSON_IsArray(node)) {
        cJSON_ArrayForEach(element, node) {
            add_param_value(element, out);
        }
    } else if (node != NULL) {
        add_param_value(node, out);
    }
}


/*
 * Collect the values of a configured parameter for one item: a product category ca<N>
 * from product.categories.textValues.<N>, product.categories.<N> or categories.<N>; an
 * e-commerce parameter cb<N> from parameters.textValues.<N> or parameters.<N>, then from
 * the request's basket.parameters. The first place that contains a value wins.
 */
static void item_param(const struct scope *item, const struct vt_mapp_param *param,
                       const struct param_values *request, struct param_values *out)
{
    char number[16];

    out->n = 0;
    if (param->kind == 0)
        return;
    snprintf(number, sizeof number, "%d", param->number);

    if (param->kind == 'a') {
        /* NOTE: the key of product categories inside an item is not documented. The
         * three places below are the likely ones and are all tried. */
        entry_values(item, SEGMENTS("product", "categories", "textValues", number), out);
        if (out->n == 0)
            entry_values(item, SEGMENTS("product", "categories", number), out);
        if (out->n == 0)
            entry_values(item, SEGMENTS("categories", number), out);
        return;
    }

    entry_values(item, SEGMENTS("parameters", "textValues", number), out);
    if (out->n == 0)
        entry_values(item, SEGMENTS("parameters", number), out);
    if (out->n == 0)
        *out = *request;
}


/* Request-level values of an e-commerce parameter cb<N>, shared by every item. */
static void request_param(struct mapp_decode *d, const struct vt_mapp_param *param,
                          struct param_values *out)
{
    const struct scope root = {.base = d->root, .index_arrays = true};
    char number[16];

    out->n = 0;
    if (param->kind != 'b')
        return;
    snprintf(number, sizeof number, "%d", param->number);
    entry_values(&root, SEGMENTS("basket", "parameters", "textValues", number), out);
    if (out->n == 0)
        entry_values(&root, SEGMENTS("basket", "parameters", number), out);
}


/* Read one consent value: a JSON boolean, or a string or number that vt_consent_parse
 * recognises (a number as its text, so 1 and 0 count). */
static enum vt_consent consent_of(const cJSON *node)
{
    char text[VT_NAME_MAX + 1];

    if (cJSON_IsBool(node))
        return cJSON_IsTrue(node) ? VT_CONSENT_GRANTED : VT_CONSENT_DENIED;
    if (!scalar_text(node, text, sizeof text))
        return VT_CONSENT_UNKNOWN;
    return vt_consent_parse(text, strlen(text));
}


/*
 * Set the event's consent from the configured parameter. A session parameter cs<N> is
 * read from session.parameters.textValues.<N>, then session.parameters.numericValues.<N>.
 * A user category uc<N> is read from user.categories.textValues.<N>, then
 * user.categories.numericValues.<N>. The first value that is neither an empty string nor
 * null counts.
 * A present entry without a recognised value leaves consent unknown and sets
 * consent_unreadable, and the record still decodes.
 */
static void decode_consent(struct mapp_decode *d)
{
    const struct scope root = {.base = d->root, .index_arrays = true};
    const struct vt_mapp_param *param;
    const char *group;
    const char *map;
    const cJSON *value = NULL;
    char number[16];
    bool present = false;

    if (d->cfg == NULL || d->cfg->mapp_consent.kind == 0)
        return;
    param = &d->cfg->mapp_consent;
    group = param->kind == 's' ? "session" : "user";
    map = param->kind == 's' ? "parameters" : "categories";
    snprintf(number, sizeof number, "%d", param->number);

    for (int numeric = 0; numeric <= 1 && value == NULL; numeric++) {
        const char *kind = numeric ? "numericValues" : "textValues";
        const cJSON *node = entry_node(&root, SEGMENTS(group, map, kind, number));
        const cJSON *element;

        if (node == NULL)
            continue;
        present = true;
        if (!cJSON_IsArray(node)) {
            if (!cJSON_IsString(node) || node->valuestring[0] != '\0')
                value = node;
            continue;
        }
        cJSON_ArrayForEach(element, node) {
            bool empty = cJSON_IsNull(element) ||
                         (cJSON_IsString(element) && element->valuestring[0] == '\0');
            if (!empty) {
                value = element;
                break;
            }
        }
    }

    if (value != NULL)
        d->ev->consent = consent_of(value);
    d->ev->consent_unreadable = present && d->ev->consent == VT_CONSENT_UNKNOWN;
}


/* Fill brand, categories and gender of an item from the configured parameters. */
static void item_attributes(struct mapp_decode *d, const struct scope *item,
                            struct vt_event_item *out)
{
    struct param_values values;

    if (d->cfg == NULL)
        return;

    item_param(item, &d->cfg->mapp_brand, &d->request_brand, &values);
    if (values.n > 0)
        vt_strlcpy(out->brand, values.value[0], sizeof out->brand);

    item_param(item, &d->cfg->mapp_category, &d->request_category, &values);
    for (size_t i = 0; i < values.n; i++)
        vt_strlcpy(out->categories[i], values.value[i], sizeof out->categories[i]);
    out->n_categories = (uint8_t)values.n;

    item_param(item, &d->cfg->mapp_gender, &d->request_gender, &values);
    if (values.n > 0)
        out->gender = vt_gender_parse(values.value[0], strlen(values.value[0]));
}


/* Find the node of an item's product id: product.name, which Mapp fills with the product
 * id the pixel sends, or else product.id. *key is set to "name" or "id" for messages. */
static const cJSON *item_id_node(const struct scope *item, const char **key)
{
    const cJSON *node = scope_find(item, SEGMENTS("product", "name"));

    *key = "name";
    /* NOTE: "product.id" is a guess kept as a fallback, because the exact key of the
     * product name inside an item is not documented. */
    if (node == NULL) {
        node = scope_find(item, SEGMENTS("product", "id"));
        *key = "id";
    }
    return node;
}


/*
 * Decode one item into the next free slot of the event. Placeholder items (named "-")
 * are skipped. An item without a usable id (a number of 2^53 or more included), or past
 * VT_EVENT_ITEMS_MAX, is counted in n_items_dropped.
 */
static enum vt_decode_status decode_item(struct mapp_decode *d, const struct scope *item)
{
    struct vt_event *ev = d->ev;
    const char *id_key;
    const cJSON *id = item_id_node(item, &id_key);
    struct vt_event_item *out;
    enum vt_decode_status status;
    int32_t rank = -1;
    int32_t list_position = -1;
    int32_t quantity;
    double price;
    bool has_rank;
    bool has_list_position;
    bool found;

    if (cJSON_IsString(id) && strcmp(id->valuestring, "-") == 0)
        return VT_DECODE_OK;
    if (ev->n_items == VT_EVENT_ITEMS_MAX) {
        ev->n_items_dropped++;
        return VT_DECODE_OK;
    }

    out = &ev->items[ev->n_items];
    memset(out, 0, sizeof *out);
    out->price = -1;
    out->quantity = -1;
    out->position = -1;
    if (id != NULL && !cJSON_IsString(id) && !cJSON_IsNumber(id))
        return wrong_type(d, item, SEGMENTS("product", id_key), "a string or a whole number",
                          id);
    if (id == NULL ||
        (cJSON_IsString(id) &&
         !vt_decode_product_id_valid(id->valuestring, strlen(id->valuestring))) ||
        (cJSON_IsNumber(id) &&
         vt_decode_id_number(id->valuedouble, out->id, sizeof out->id) != 0)) {
        ev->n_items_dropped++;
        return VT_DECODE_OK;
    }
    if (cJSON_IsString(id))
        vt_strlcpy(out->id, id->valuestring, sizeof out->id);

    status = read_int32(d, item, SEGMENTS("quantity"), &quantity, &found);
    if (status == VT_DECODE_OK && found)
        vt_decode_set_quantity(ev, quantity, &out->quantity);
    if (status == VT_DECODE_OK)
        status = read_number(d, item, SEGMENTS("price"), &price, &found);
    if (status == VT_DECODE_OK && found)
        vt_decode_set_amount(ev, VT_AMOUNT_PRICE, price, &out->price);
    if (status == VT_DECODE_OK)
        status = read_int32(d, item, SEGMENTS("rank"), &rank, &has_rank);
    if (status == VT_DECODE_OK)
        status = read_int32(d, item, SEGMENTS("listPosition"), &list_position,
                            &has_list_position);
    if (status != VT_DECODE_OK)
        return status;

    /* A list impression is positioned by listPosition, everything else by the basket
     * rank. When the preferred one is missing, the other is used. */
    if (d->list_status)
        out->position = has_list_position ? list_position : rank;
    else
        out->position = has_rank ? rank : list_position;

    item_attributes(d, item, out);
    ev->n_items++;
    return VT_DECODE_OK;
}


/* Set bit N of *mask for each flattened item number N (1 to FLAT_ITEMS_MAX) that a
 * member name of obj carries right after prefix, as in "basket_items_<N>_product_name"
 * or "basket_items_<N>". */
static void mark_flat_items(const cJSON *obj, const char *prefix, uint32_t *mask)
{
    size_t prefix_len = strlen(prefix);

    if (!cJSON_IsObject(obj))
        return;
    for (const cJSON *child = obj->child; child != NULL; child = child->next) {
        const char *p = child->string;
        int number = 0;
        int digits = 0;

        if (p == NULL || strncmp(p, prefix, prefix_len) != 0)
            continue;
        p += prefix_len;
        if (*p == '0')
            continue;
        while (*p >= '0' && *p <= '9' && digits < 3) {
            number = number * 10 + (*p - '0');
            p++;
            digits++;
        }
        if (digits > 0 && (*p == '\0' || *p == '_') && number <= FLAT_ITEMS_MAX)
            *mask |= 1u << number;
    }
}


/* List the root members where paths of flattened item `number` can start. Returns false
 * when they do not fit into *out. */
static bool list_flat_members(const cJSON *root, const char *number, struct flat_members *out)
{
    char prefix[32];
    size_t prefix_len;

    snprintf(prefix, sizeof prefix, "basket_items_%s", number);
    prefix_len = strlen(prefix);
    out->n = 0;
    for (const cJSON *child = root->child; child != NULL; child = child->next) {
        const char *key = child->string;
        bool starts_path;

        if (key == NULL)
            continue;
        starts_path = strcmp(key, "basket") == 0 || strcmp(key, "basket_items") == 0 ||
                      (strncmp(key, prefix, prefix_len) == 0 &&
                       (key[prefix_len] == '\0' || key[prefix_len] == '_'));
        if (!starts_path)
            continue;
        if (out->n == FLAT_MEMBERS_MAX)
            return false;
        out->member[out->n++] = child;
    }
    return true;
}


/* Decode the basket items: the nested basket.items array first, then the flattened items
 * 1 to FLAT_ITEMS_MAX, in order. */
static enum vt_decode_status decode_items(struct mapp_decode *d)
{
    const struct scope root = {.base = d->root, .index_arrays = true};
    const cJSON *items = scope_find(&root, SEGMENTS("basket", "items"));
    const cJSON *element;
    enum vt_decode_status status;
    uint32_t flat_mask = 0;
    int index = 0;

    if (d->cfg != NULL) {
        request_param(d, &d->cfg->mapp_brand, &d->request_brand);
        request_param(d, &d->cfg->mapp_category, &d->request_category);
        request_param(d, &d->cfg->mapp_gender, &d->request_gender);
    }

    if (cJSON_IsArray(items)) {
        cJSON_ArrayForEach(element, items) {
            struct scope item = {.base = element, .index_arrays = true};

            snprintf(item.label, sizeof item.label, "basket.items[%d]", index++);
            if (!cJSON_IsObject(element))
                return wrong_type(d, &item, NULL, 0, "an object", element);
            status = decode_item(d, &item);
            if (status != VT_DECODE_OK)
                return status;
        }
    }

    mark_flat_items(d->root, "basket_items_", &flat_mask);
    mark_flat_items(scope_find(&root, SEGMENTS("basket")), "items_", &flat_mask);
    if (cJSON_IsObject(items))
        mark_flat_items(items, "", &flat_mask);
    for (int number = 1; number <= FLAT_ITEMS_MAX; number++) {
        struct scope item = {.base = d->root, .flat_item = true};
        struct flat_members members;

        if ((flat_mask & (1u << number)) == 0)
            continue;
        snprintf(item.number, sizeof item.number, "%d", number);
        if (list_flat_members(d->root, item.number, &members))
            item.members = &members;
        snprintf(item.label, sizeof item.label, "basket_items_%d", number);
        status = decode_item(d, &item);
        if (status != VT_DECODE_OK)
            return status;
    }
    return VT_DECODE_OK;
}


enum vt_decode_status vt_decode_mapp(const cJSON *root, const struct vt_config *cfg,
                                     struct vt_event *ev, char *msg, size_t msgsize)
{
    struct mapp_decode d = {
        .root = root, .cfg = cfg, .ev = ev, .msg = msg, .msgsize = msgsize,
    };
    enum vt_decode_status status;

    status = decode_type(&d);
    if (status != VT_DECODE_OK)
        return status;
    status = decode_session(&d);
    if (status != VT_DECODE_OK)
        return status;
    status = decode_timestamp(&d);
    if (status != VT_DECODE_OK)
        return status;

    status = decode_request_fields(&d);
    if (status != VT_DECODE_OK)
        return status;
    decode_consent(&d);
    return decode_items(&d);
}
