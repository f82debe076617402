/*
 * vitrine: names and helpers of the normalized event (see include/vitrine/event.h).
 */
#include "vitrine/event.h"

#include <string.h>

#include "vitrine/util.h"

static const char *const type_names[VT_EV_TYPE_COUNT] = {
    [VT_EV_PAGE_VIEW] = "page_view",
    [VT_EV_PRODUCT_VIEW] = "product_view",
    [VT_EV_PRODUCT_IMAGE_VIEW] = "product_image_view",
    [VT_EV_IMPRESSION] = "impression",
    [VT_EV_CLICK] = "click",
    [VT_EV_ADD_TO_CART] = "add_to_cart",
    [VT_EV_REMOVE_FROM_CART] = "remove_from_cart",
    [VT_EV_ADD_TO_WISHLIST] = "add_to_wishlist",
    [VT_EV_REMOVE_FROM_WISHLIST] = "remove_from_wishlist",
    [VT_EV_CHECKOUT] = "checkout",
    [VT_EV_PURCHASE] = "purchase",
    [VT_EV_SEARCH] = "search",
};

const char *vt_event_type_name(enum vt_event_type type)
{
    return (unsigned)type < VT_EV_TYPE_COUNT ? type_names[type] : "unknown";
}


int vt_event_type_parse(const char *s, size_t len, enum vt_event_type *out)
{
    for (int i = 0; i < VT_EV_TYPE_COUNT; i++) {
        if (strlen(type_names[i]) == len && memcmp(type_names[i], s, len) == 0) {
            *out = (enum vt_event_type)i;
            return 0;
        }
    }
    return -1;
}


const char *vt_gender_name(enum vt_gender gender)
{
    switch (gender) {
    case VT_GENDER_FEMALE:
        return "female";
    case VT_GENDER_MALE:
        return "male";
    case VT_GENDER_UNISEX:
        return "unisex";
    default:
        return "unknown";
    }
}


enum vt_gender vt_gender_parse(const char *s, size_t len)
{
    static const struct {
        const char *label;
        enum vt_gender gender;
    } labels[] = {
        {"female", VT_GENDER_FEMALE},   {"women", VT_GENDER_FEMALE},
        {"woman", VT_GENDER_FEMALE},    {"w", VT_GENDER_FEMALE},
        {"f", VT_GENDER_FEMALE},        {"damen", VT_GENDER_FEMALE},
        {"frauen", VT_GENDER_FEMALE},   {"gender_for_women", VT_GENDER_FEMALE},
        {"male", VT_GENDER_MALE},       {"men", VT_GENDER_MALE},
        {"man", VT_GENDER_MALE},        {"m", VT_GENDER_MALE},
        {"herren", VT_GENDER_MALE},     {"maenner", VT_GENDER_MALE},
        {"gender_for_men", VT_GENDER_MALE},
        {"unisex", VT_GENDER_UNISEX},   {"both", VT_GENDER_UNISEX},
        {"women and men", VT_GENDER_UNISEX},
        {"gender_for_women_and_men", VT_GENDER_UNISEX},
    };

    while (len > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++) {
        if (strlen(labels[i].label) == len && vt_strncaseeq(labels[i].label, s, len))
            return labels[i].gender;
    }
    return VT_GENDER_UNKNOWN;
}


static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}


const char *vt_consent_name(enum vt_consent consent)
{
    switch (consent) {
    case VT_CONSENT_GRANTED:
        return "granted";
    case VT_CONSENT_DENIED:
        return "denied";
    default:
        return "unknown";
    }
}


enum vt_consent vt_consent_parse(const char *s, size_t len)
{
    static const struct {
        const char *label;
        enum vt_consent consent;
    } labels[] = {
        {"1", VT_CONSENT_GRANTED},        {"true", VT_CONSENT_GRANTED},
        {"yes", VT_CONSENT_GRANTED},      {"y", VT_CONSENT_GRANTED},
        {"granted", VT_CONSENT_GRANTED},  {"opt-in", VT_CONSENT_GRANTED},
        {"optin", VT_CONSENT_GRANTED},    {"accepted", VT_CONSENT_GRANTED},
        {"0", VT_CONSENT_DENIED},         {"false", VT_CONSENT_DENIED},
        {"no", VT_CONSENT_DENIED},        {"n", VT_CONSENT_DENIED},
        {"denied", VT_CONSENT_DENIED},    {"opt-out", VT_CONSENT_DENIED},
        {"optout", VT_CONSENT_DENIED},    {"rejected", VT_CONSENT_DENIED},
    };

    while (len > 0 && is_blank(*s)) {
        s++;
        len--;
    }
    while (len > 0 && is_blank(s[len - 1]))
        len--;
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++) {
        if (strlen(labels[i].label) == len && vt_strncaseeq(labels[i].label, s, len))
            return labels[i].consent;
    }
    return VT_CONSENT_UNKNOWN;
}


void vt_event_clear(struct vt_event *ev)
{
    ev->type = VT_EV_PAGE_VIEW;
    ev->format = VT_FORMAT_CANONICAL;
    ev->session_id[0] = '\0';
    ev->user_id[0] = '\0';
    ev->customer_id[0] = '\0';
    ev->ts_ms = -1;
    ev->event_id[0] = '\0';
    ev->decision_id[0] = '\0';
    ev->placement[0] = '\0';
    ev->order_id[0] = '\0';
    ev->order_value = -1;
    ev->page[0] = '\0';
    ev->referrer[0] = '\0';
    ev->campaign[0] = '\0';
    ev->search[0] = '\0';
    ev->n_items = 0;
    ev->n_items_dropped = 0;
    memset(ev->n_values_dropped, 0, sizeof ev->n_values_dropped);
    ev->consent = VT_CONSENT_UNKNOWN;
    ev->consent_unreadable = false;
}
