/*
 * vitrine: alert counting: the increments one enriched event adds to the rules' time
 * buckets (see include/vitrine/alerts.h). Runs in every instance's ingest thread, so it
 * allocates nothing and reads only the event and the loaded rules.
 *
 * Text compares ignore ASCII case and white space at both ends. Brand, categories and
 * product id come from each product of the event (the catalog filled in what the event
 * lacked), campaign and referrer from the event. A category filter "makeup" matches a
 * product with the category "makeup" or one below it ("makeup.eyes").
 */
#include "vitrine/alerts.h"

#include <string.h>
#include <strings.h>

#include "vitrine/util.h"


static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}


/* Narrow s to its text without white space at either end; *len receives the length. */
static const char *trim(const char *s, size_t *len)
{
    size_t n = strlen(s);

    while (n > 0 && is_space(s[0])) {
        s++;
        n--;
    }
    while (n > 0 && is_space(s[n - 1]))
        n--;
    *len = n;
    return s;
}


/* True when value, trimmed, equals the filter (trimmed at load), ignoring ASCII case. */
static bool text_matches(const char *value, const char *filter)
{
    size_t len;
    const char *s = trim(value, &len);

    return len == strlen(filter) && strncasecmp(s, filter, len) == 0;
}


/* True when one of the item's categories is the filter's category or one below it. */
static bool category_matches(const struct vt_event_item *item, const char *filter)
{
    size_t filter_len = strlen(filter);

    for (uint8_t i = 0; i < item->n_categories && i < VT_ITEM_CATEGORIES_MAX; i++) {
        size_t len;
        const char *name = trim(item->categories[i], &len);

        if (len < filter_len || strncasecmp(name, filter, filter_len) != 0)
            continue;
        if (len == filter_len || name[filter_len] == '.')
            return true;
    }
    return false;
}


static bool item_matches(const struct vt_alert_rule *rule, const struct vt_event_item *item)
{
    const char *product = rule->filter[VT_DIM_PRODUCT];
    const char *brand = rule->filter[VT_DIM_BRAND];
    const char *category = rule->filter[VT_DIM_CATEGORY];

    if (product[0] != '\0' && !text_matches(item->id, product))
        return false;
    if (brand[0] != '\0' && !text_matches(item->brand, brand))
        return false;
    if (category[0] != '\0' && !category_matches(item, category))
        return false;
    return true;
}


/* True when the rule filters or groups by product, brand or category, which an event
 * without products cannot meet. */
static bool needs_products(const struct vt_alert_rule *rule)
{
    static const enum vt_alert_dimension item_dims[] = {VT_DIM_PRODUCT, VT_DIM_BRAND,
                                                        VT_DIM_CATEGORY};

    for (size_t i = 0; i < sizeof item_dims / sizeof item_dims[0]; i++) {
        if (rule->filter[item_dims[i]][0] != '\0' || rule->group_by == item_dims[i])
            return true;
    }
    return false;
}


/* The event-level part of a rule: type, campaign and referrer. */
static bool event_matches(const struct vt_alert_rule *rule, const struct vt_event *ev,
                          const char *referrer_host)
{
    if (ev->type >= VT_EV_TYPE_COUNT)
        return false;
    if (!rule->any_event && rule->event != ev->type)
        return false;
    if (rule->filter[VT_DIM_CAMPAIGN][0] != '\0' &&
        !text_matches(ev->campaign, rule->filter[VT_DIM_CAMPAIGN]))
        return false;
    if (rule->filter[VT_DIM_REFERRER][0] != '\0' &&
        strcasecmp(referrer_host, rule->filter[VT_DIM_REFERRER]) != 0)
        return false;
    return true;
}


/* An amount as it is counted: at most VT_ALERT_AMOUNT_MAX, so that sums in Redis stay
 * finite (a price of 1e308 bought three times would overflow to infinity). */
static double bounded(double amount)
{
    return amount > VT_ALERT_AMOUNT_MAX ? VT_ALERT_AMOUNT_MAX : amount;
}


/* The amount one product adds: 1, its quantity (1 when not given or not positive), or unit
 * price times that quantity (0 without a price). */
static double item_amount(enum vt_alert_aggregate aggregate, const struct vt_event_item *item)
{
    double quantity = item->quantity > 0 ? (double)item->quantity : 1;

    switch (aggregate) {
    case VT_ALERT_COUNT:
        return 1;
    case VT_ALERT_SUM_QUANTITY:
        return bounded(quantity);
    case VT_ALERT_SUM_VALUE:
        return item->price > 0 ? bounded(item->price * quantity) : 0;
    }
    return 0;
}


/* The amount an event without products adds: 1 for count, its order value for sum_value,
 * and 0 for sum_quantity, which has no quantity to add. */
static double event_amount(enum vt_alert_aggregate aggregate, const struct vt_event *ev)
{
    switch (aggregate) {
    case VT_ALERT_COUNT:
        return 1;
    case VT_ALERT_SUM_QUANTITY:
        return 0;
    case VT_ALERT_SUM_VALUE:
        return ev->order_value > 0 ? bounded(ev->order_value) : 0;
    }
    return 0;
}


/* Copy the trimmed value into a dimension buffer, cut at a UTF-8 character boundary. */
static void copy_value(char *dst, size_t dstsize, const char *value)
{
    size_t len;
    const char *s = trim(value, &len);

    vt_copy_utf8(dst, dstsize, s, len);
    /* Control characters (C0, DEL, and C1 such as U+0085) become spaces, so that a group
     * name in an alert, a log line or a state field never breaks a line. */
    for (unsigned char *c = (unsigned char *)dst; *c != '\0'; c++) {
        if (*c < 0x20 || *c == 0x7F) {
            *c = ' ';
        } else if (*c == 0xC2 && c[1] >= 0x80 && c[1] <= 0x9F) {
            c[0] = ' ';
            c[1] = ' ';
            c++;
        }
    }
}


/* The event-level dimensions, shared by all of the event's increments. */
struct event_dims {
    char campaign[VT_NAME_MAX + 1];
    char referrer[VT_NAME_MAX + 1];
};


/* Fill one increment for the rule, with the product's dimensions when item is not NULL.
 * Returns false when the rule is grouped and the group's value is empty. */
static bool fill_increment(struct vt_alert_increment *inc, size_t rule_index,
                           const struct vt_alert_rule *rule, const struct vt_event_item *item,
                           const struct event_dims *dims, double amount)
{
    memset(inc, 0, sizeof *inc);
    inc->rule = (uint16_t)rule_index;
    inc->amount = amount;

    if (item != NULL) {
        copy_value(inc->dims[VT_DIM_PRODUCT], sizeof inc->dims[VT_DIM_PRODUCT], item->id);
        copy_value(inc->dims[VT_DIM_BRAND], sizeof inc->dims[VT_DIM_BRAND], item->brand);
        /* The first category is the most general one of the product's path. */
        if (item->n_categories > 0)
            copy_value(inc->dims[VT_DIM_CATEGORY], sizeof inc->dims[VT_DIM_CATEGORY],
                       item->categories[0]);
    }
    vt_strlcpy(inc->dims[VT_DIM_CAMPAIGN], dims->campaign, sizeof inc->dims[VT_DIM_CAMPAIGN]);
    vt_strlcpy(inc->dims[VT_DIM_REFERRER], dims->referrer, sizeof inc->dims[VT_DIM_REFERRER]);

    if (rule->group_by == VT_DIM_NONE || rule->group_by >= VT_DIM_COUNT)
        return true;
    vt_strlcpy(inc->group, inc->dims[rule->group_by], sizeof inc->group);
    return inc->group[0] != '\0';
}


size_t vt_alert_increments(const struct vt_alert_rules *rules, const struct vt_event *ev,
                           struct vt_alert_increment *out, size_t max)
{
    struct event_dims dims;
    size_t n = 0;

    if (rules == NULL || ev == NULL || rules->n == 0 || max == 0)
        return 0;

    copy_value(dims.campaign, sizeof dims.campaign, ev->campaign);
    vt_alert_referrer_host(ev->referrer, dims.referrer, sizeof dims.referrer);
    size_t n_items = ev->n_items < VT_EVENT_ITEMS_MAX ? ev->n_items : VT_EVENT_ITEMS_MAX;

    for (size_t r = 0; r < rules->n && r < VT_ALERT_RULES_MAX; r++) {
        const struct vt_alert_rule *rule = &rules->rules[r];

        if (!event_matches(rule, ev, dims.referrer))
            continue;

        if (n_items == 0) {
            double amount = event_amount(rule->aggregate, ev);

            if (needs_products(rule) || amount <= 0)
                continue;
            if (fill_increment(&out[n], r, rule, NULL, &dims, amount) && ++n == max)
                return n;
            continue;
        }

        for (size_t i = 0; i < n_items; i++) {
            const struct vt_event_item *item = &ev->items[i];
            double amount = item_amount(rule->aggregate, item);

            if (amount <= 0 || !item_matches(rule, item))
                continue;
            if (fill_increment(&out[n], r, rule, item, &dims, amount) && ++n == max)
                return n;
        }
    }
    return n;
}


/* ---- referrer host ---- */

static bool scheme_character(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '-' || c == '.';
}


void vt_alert_referrer_host(const char *url, char *out, size_t outsize)
{
    if (outsize == 0)
        return;
    out[0] = '\0';
    if (url == NULL)
        return;

    const char *s = url;
    while (is_space(*s))
        s++;

    /* Skip "scheme://", or the "//" of a scheme-relative URL. A value without either is
     * taken to start with the host ("instagram.com/p/x"). */
    const char *p = s;
    while (scheme_character(*p))
        p++;
    if (p > s && strncmp(p, "://", 3) == 0)
        s = p + 3;
    else if (strncmp(s, "//", 2) == 0)
        s += 2;

    /* The authority ends at the path, query or fragment. User information in it ends at
     * its last '@'. */
    size_t authority = strcspn(s, "/?#\\ \t\r\n");
    for (size_t i = authority; i > 0; i--) {
        if (s[i - 1] == '@') {
            s += i;
            authority -= i;
            break;
        }
    }

    /* A port follows the first ':' of a host name, or the ']' of an IPv6 literal. */
    size_t host = authority;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', authority);
        host = close != NULL ? (size_t)(close - s) + 1 : authority;
    } else {
        const char *colon = memchr(s, ':', authority);
        if (colon != NULL)
            host = (size_t)(colon - s);
    }
    while (host > 0 && s[host - 1] == '.')
        host--;
    if (host > 4 && strncasecmp(s, "www.", 4) == 0) {
        s += 4;
        host -= 4;
    }

    vt_copy_utf8(out, outsize, s, host);
    for (char *c = out; *c != '\0'; c++) {
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    }
}
