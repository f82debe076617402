/*
 * vitrine: the normalized event.
 *
 * Both input formats (Mapp Intelligence Data Streams records and the canonical event JSON,
 * see docs/events.md) decode into this one struct. It has fixed-size fields only, so one
 * instance can be reused for every record without allocation. The ingest thread owns the
 * instance it decodes into.
 */
#ifndef VITRINE_EVENT_H
#define VITRINE_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vitrine/limits.h"

enum vt_event_type {
    VT_EV_PAGE_VIEW = 0,
    VT_EV_PRODUCT_VIEW,
    VT_EV_PRODUCT_IMAGE_VIEW,
    VT_EV_IMPRESSION,
    VT_EV_CLICK,
    VT_EV_ADD_TO_CART,
    VT_EV_REMOVE_FROM_CART,
    VT_EV_ADD_TO_WISHLIST,
    VT_EV_REMOVE_FROM_WISHLIST,
    VT_EV_CHECKOUT,
    VT_EV_PURCHASE,
    VT_EV_SEARCH,
    /* The number of types, and the type of a skipped record whose type is unknown (see
     * vt_decode_event). */
    VT_EV_TYPE_COUNT
};

enum vt_event_format {
    VT_FORMAT_CANONICAL = 0,
    VT_FORMAT_MAPP,
};

/* Gender target of a product, from the catalog, a Mapp parameter or keywords. */
enum vt_gender {
    VT_GENDER_UNKNOWN = 0,
    VT_GENDER_FEMALE,
    VT_GENDER_MALE,
    VT_GENDER_UNISEX,
};

/* Consent to personalisation that an event carries. */
enum vt_consent {
    VT_CONSENT_UNKNOWN = 0, /* no consent value, or one that was not recognised */
    VT_CONSENT_GRANTED,
    VT_CONSENT_DENIED,
};

/* Fields that the decoder drops when their value is unusable, leaving them not given: a
 * price, quantity or order value out of its range, or a user or customer id that breaks
 * the id rule (docs/events.md lists the rules). Each value is also a metric label. */
enum vt_amount_field {
    VT_AMOUNT_PRICE = 0,
    VT_AMOUNT_QUANTITY,
    VT_AMOUNT_ORDER_VALUE,
    VT_AMOUNT_USER_ID,
    VT_AMOUNT_CUSTOMER_ID,
    VT_AMOUNT_FIELD_COUNT
};

/* One product of an event. Numeric fields use -1 for "not given". */
struct vt_event_item {
    char id[VT_PRODUCT_ID_MAX + 1];
    char brand[VT_NAME_MAX + 1];
    char categories[VT_ITEM_CATEGORIES_MAX][VT_NAME_MAX + 1];
    uint8_t n_categories;
    enum vt_gender gender;
    double price;     /* unit price in the shop's currency, -1 when not given */
    int32_t quantity; /* -1 when not given */
    int32_t position; /* 1-based list or basket position, -1 when not given */
};

struct vt_event {
    enum vt_event_type type; /* VT_EV_TYPE_COUNT after a skipped record of unknown type */
    enum vt_event_format format;
    char session_id[VT_ID_MAX + 1];
    char user_id[VT_ID_MAX + 1];    /* "" when absent */
    char customer_id[VT_ID_MAX + 1]; /* Mapp user.customerId after login, "" when absent */
    int64_t ts_ms;                  /* event time, milliseconds since the Unix epoch */
    char event_id[VT_ID_MAX + 1];   /* Mapp request id or canonical "id", "" when absent */
    char decision_id[VT_ID_MAX + 1];
    char placement[VT_PLACEMENT_MAX + 1];
    char order_id[VT_ID_MAX + 1];
    double order_value; /* -1 when not given */
    char page[VT_TEXT_MAX + 1];
    char referrer[VT_TEXT_MAX + 1];
    char campaign[VT_TEXT_MAX + 1];
    char search[VT_TEXT_MAX + 1];
    size_t n_items;
    size_t n_items_dropped; /* products beyond VT_EVENT_ITEMS_MAX or with invalid ids */
    size_t n_values_dropped[VT_AMOUNT_FIELD_COUNT]; /* unusable values, by field */
    enum vt_consent consent;
    /* A consent value was present but unusable (unrecognised text or a wrong JSON type).
     * consent is then VT_CONSENT_UNKNOWN and the record still decodes. */
    bool consent_unreadable;
    struct vt_event_item items[VT_EVENT_ITEMS_MAX];
};

/* Canonical type name ("product_view") of a type, and the reverse lookup. */
const char *vt_event_type_name(enum vt_event_type type);
int vt_event_type_parse(const char *s, size_t len, enum vt_event_type *out);

const char *vt_gender_name(enum vt_gender gender);

/* Parse a gender label: female/women/woman/w/f/damen, male/men/man/m/herren,
 * unisex/both/women and men, case-insensitive. Unknown text gives VT_GENDER_UNKNOWN. */
enum vt_gender vt_gender_parse(const char *s, size_t len);

/* Name of a consent value: "unknown", "granted" or "denied". */
const char *vt_consent_name(enum vt_consent consent);

/* Parse a consent value, trimmed of white space and compared without regard to case.
 * Granted: 1, true, yes, y, granted, opt-in, optin, accepted. Denied: 0, false, no, n,
 * denied, opt-out, optout, rejected. Any other text, the empty text included, gives
 * VT_CONSENT_UNKNOWN. */
enum vt_consent vt_consent_parse(const char *s, size_t len);

/* Reset an event to empty (all strings "", numbers -1 where documented). */
void vt_event_clear(struct vt_event *ev);

#endif
