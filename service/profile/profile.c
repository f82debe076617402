/*
 * vitrine: profile math: forward decay in the log domain, gender inference, and the delta
 * one event applies to its profile (see include/vitrine/profile.h).
 */
#include "vitrine/profile.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vitrine/util.h"
#include "vitrine/visitor.h"

/* Largest |log-odds| kept: beyond this the probability is 1 to double precision anyway. */
#define GENDER_LOG_ODDS_LIMIT 30.0

/* Quantity a single cart line may add; larger values in an event are clamped. */
#define CART_QUANTITY_MAX 1000

double vt_decay_log_score(double weight, int64_t ts_ms, double half_life_s)
{
    return log(weight) + ((double)ts_ms / 1000.0) * M_LN2 / half_life_s;
}


int64_t vt_score_stored(double log_score)
{
    return (int64_t)llround(log_score * VT_SCORE_SCALE);
}


double vt_score_from_stored(double stored)
{
    return stored / VT_SCORE_SCALE;
}


double vt_decay_log_add(double a, double b)
{
    double hi = a > b ? a : b;
    double lo = a > b ? b : a;

    if (isinf(lo) && lo < 0)
        return hi;
    return hi + log1p(exp(lo - hi));
}


double vt_decay_value(double log_score, int64_t now_ms, double half_life_s)
{
    return exp(log_score - ((double)now_ms / 1000.0) * M_LN2 / half_life_s);
}


const char *vt_segment_name(enum vt_segment segment)
{
    switch (segment) {
    case VT_SEGMENT_FEMALE:
        return "female";
    case VT_SEGMENT_MALE:
        return "male";
    default:
        return "unknown";
    }
}


void vt_gender_estimate(double log_odds, int64_t evidence, const struct vt_config *cfg,
                        struct vt_gender_estimate *out)
{
    double lo = cfg->gender_prior + log_odds;
    bool enough = evidence >= cfg->gender_min_evidence;

    if (!isfinite(lo))
        lo = 0;
    if (lo > GENDER_LOG_ODDS_LIMIT)
        lo = GENDER_LOG_ODDS_LIMIT;
    if (lo < -GENDER_LOG_ODDS_LIMIT)
        lo = -GENDER_LOG_ODDS_LIMIT;

    out->p_female = 1.0 / (1.0 + exp(-lo));
    if (enough && out->p_female >= cfg->gender_threshold) {
        out->segment = VT_SEGMENT_FEMALE;
        out->probability = out->p_female;
    } else if (enough && 1.0 - out->p_female >= cfg->gender_threshold) {
        out->segment = VT_SEGMENT_MALE;
        out->probability = 1.0 - out->p_female;
    } else {
        out->segment = VT_SEGMENT_UNKNOWN;
        out->probability = out->p_female > 0.5 ? out->p_female : 1.0 - out->p_female;
    }
}


static bool is_word_byte(unsigned char c)
{
    /* Bytes of multi-byte UTF-8 characters count as letters, so "männer" is one word. */
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c >= 0x80;
}


/* True when keyword kw (kwlen bytes) occurs in text as a whole word or phrase. */
static bool contains_word(const char *text, size_t len, const char *kw, size_t kwlen)
{
    if (kwlen == 0 || kwlen > len)
        return false;
    for (size_t i = 0; i + kwlen <= len; i++) {
        if (!vt_strncaseeq(text + i, kw, kwlen))
            continue;
        bool starts = i == 0 || !is_word_byte((unsigned char)text[i - 1]);
        bool ends = i + kwlen == len || !is_word_byte((unsigned char)text[i + kwlen]);
        if (starts && ends)
            return true;
    }
    return false;
}


/* True when any keyword of a comma-separated list occurs in text. */
static bool matches_any(const char *list, const char *text, size_t len)
{
    const char *p = list;

    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t kwlen = comma ? (size_t)(comma - p) : strlen(p);
        const char *kw = p;

        while (kwlen > 0 && *kw == ' ') {
            kw++;
            kwlen--;
        }
        while (kwlen > 0 && kw[kwlen - 1] == ' ')
            kwlen--;
        if (contains_word(text, len, kw, kwlen))
            return true;
        p += (comma ? (size_t)(comma - p) + 1 : strlen(p));
    }
    return false;
}


enum vt_gender vt_gender_from_text(const struct vt_config *cfg, const char *text, size_t len)
{
    bool female = matches_any(cfg->gender_keywords_female, text, len);
    bool male = matches_any(cfg->gender_keywords_male, text, len);

    if (female && male)
        return VT_GENDER_UNISEX;
    if (female)
        return VT_GENDER_FEMALE;
    if (male)
        return VT_GENDER_MALE;
    return VT_GENDER_UNKNOWN;
}


void vt_profile_clear(struct vt_profile *p)
{
    p->exists = false;
    p->user_id[0] = '\0';
    p->first_seen_ms = -1;
    p->last_seen_ms = -1;
    p->events = 0;
    memset(p->count_by_type, 0, sizeof p->count_by_type);
    p->revenue = 0;
    p->gender_log_odds = 0;
    p->gender_evidence = 0;
    p->ttl_s = -1;
    for (int t = 0; t < VT_EV_TYPE_COUNT; t++)
        p->last_by_type_ms[t] = -1;
    p->consent_denied = false;
    p->consent_given = false;
    p->visitor_id[0] = '\0';
    p->visitor_linked = false;
    p->visitor_sessions = 0;
    p->visitor_revenue = 0;
    p->segments = NULL;
    p->segment_mask = 0;
    p->n_categories = p->n_brands = p->n_tiers = 0;
    p->n_recent = p->n_cart = p->n_purchased = 0;
}


void vt_visitor_profile_clear(struct vt_visitor_profile *v)
{
    /* The lists are read up to their counts, so only those are reset: this runs for every
     * request of a linked session. */
    v->exists = false;
    v->linked = false;
    v->sessions = 0;
    v->events = 0;
    v->first_seen_ms = -1;
    v->last_seen_ms = -1;
    v->revenue = 0;
    v->gender_log_odds = 0;
    v->gender_evidence = 0;
    v->n_categories = v->n_brands = v->n_tiers = 0;
}


/* Blend one list: shares (1 - w) * the session's + w * the visitor's, at the session's
 * scale (the sum of its values; 1 when it has none). Strongest first, at most max. */
static size_t blend_list(struct vt_scored_name *list, size_t n, size_t max,
                         const struct vt_scored_name *visitor, size_t nv, double w,
                         int64_t ref_ms, double half_life_s)
{
    double own = 0, theirs = 0;

    for (size_t i = 0; i < n; i++)
        own += list[i].value;
    for (size_t i = 0; i < nv; i++)
        theirs += visitor[i].value;
    if (!(theirs > 0) || !isfinite(theirs))
        return n;
    if (!(own > 0) || !isfinite(own)) {
        own = 1;
        w = 1;
        n = 0;
    }

    for (size_t i = 0; i < n; i++)
        list[i].value *= 1 - w;
    for (size_t i = 0; i < nv; i++) {
        double add = w * own * visitor[i].value / theirs;
        size_t k = 0;

        while (k < n && strcmp(list[k].name, visitor[i].name) != 0)
            k++;
        if (k == n) {
            if (n == max) {
                /* Full: the visitor's entry replaces the weakest when it is stronger. */
                size_t weakest = 0;
                for (size_t j = 1; j < n; j++) {
                    if (list[j].value < list[weakest].value)
                        weakest = j;
                }
                if (list[weakest].value >= add)
                    continue;
                k = weakest;
            } else {
                n++;
            }
            vt_strlcpy(list[k].name, visitor[i].name, sizeof list[k].name);
            list[k].value = 0;
        }
        list[k].value += add;
    }

    /* Insertion sort, strongest first; the lists hold at most VT_PROFILE_TOP_MAX. */
    for (size_t i = 1; i < n; i++) {
        struct vt_scored_name e = list[i];
        size_t j = i;
        while (j > 0 && list[j - 1].value < e.value) {
            list[j] = list[j - 1];
            j--;
        }
        list[j] = e;
    }
    for (size_t i = 0; i < n; i++)
        list[i].log_score = vt_decay_log_score(list[i].value, ref_ms, half_life_s);
    return n;
}


void vt_profile_add_visitor(struct vt_profile *p, const struct vt_visitor_profile *v,
                            double weight, double half_life_s)
{
    int64_t ref = p->last_seen_ms > 0 ? p->last_seen_ms : v->last_seen_ms;

    /* A refused session counts itself and the visitor's sessions, so that it does not
     * pass for a first visit; it takes nothing else over. */
    p->visitor_linked = v->linked;
    if (!v->linked) {
        p->visitor_sessions = v->exists ? v->sessions + 1 : 0;
        return;
    }
    p->visitor_sessions = v->sessions;
    /* The snapshot contains what the other sessions bought, so this session's revenue is
     * added. */
    p->visitor_revenue = v->revenue + p->revenue;
    if (weight <= 0)
        return;
    if (weight > 1)
        weight = 1;

    p->n_categories = blend_list(p->categories, p->n_categories, VT_PROFILE_TOP_MAX,
                                 v->categories, v->n_categories, weight, ref, half_life_s);
    p->n_brands = blend_list(p->brands, p->n_brands, VT_PROFILE_TOP_MAX, v->brands,
                             v->n_brands, weight, ref, half_life_s);
    p->n_tiers = blend_list(p->tiers, p->n_tiers, VT_TIER_COUNT, v->tiers, v->n_tiers, weight,
                            ref, half_life_s);
    /* The snapshot was taken before the session's own records reached the visitor, so
     * its evidence is that of the other sessions. */
    p->gender_log_odds += weight * v->gender_log_odds;
    p->gender_evidence += (int64_t)llround(weight * (double)v->gender_evidence);
}


/* Add a log-score contribution to a list of names, merging equal names. */
static void add_named(struct vt_named_score *list, size_t *n, size_t max, const char *name,
                      double log_score)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(list[i].name, name) == 0) {
            list[i].log_score = vt_decay_log_add(list[i].log_score, log_score);
            return;
        }
    }
    if (*n >= max)
        return;
    vt_strlcpy(list[*n].name, name, sizeof list[*n].name);
    list[*n].log_score = log_score;
    (*n)++;
}


static bool is_view(enum vt_event_type type)
{
    return type == VT_EV_PRODUCT_VIEW || type == VT_EV_PRODUCT_IMAGE_VIEW ||
           type == VT_EV_CLICK;
}


static void delta_reset(struct vt_profile_delta *d)
{
    d->profile_id[0] = '\0';
    d->user_id[0] = '\0';
    d->revenue = 0;
    d->gender_step = 0;
    d->gender_evidence = 0;
    d->n_categories = d->n_brands = d->n_tiers = 0;
    d->n_viewed = d->n_cart_add = d->n_cart_remove = d->n_purchased = 0;
    d->n_shown = d->n_clicked = 0;
    d->placement[0] = '\0';
    d->decision_id[0] = '\0';
    d->visitor_id[0] = '\0';
    d->visitor_rank = 0;
    d->visitor_blocked = false;
}


/* Affinity and gender contributions of one product interaction of weight w > 0. */
static void add_interest(const struct vt_config *cfg, const struct vt_event_item *item,
                         double w, int64_t ts_ms, struct vt_profile_delta *d)
{
    double x = vt_decay_log_score(w, ts_ms, cfg->profile_half_life_s);

    for (size_t c = 0; c < item->n_categories; c++) {
        if (item->categories[c][0] != '\0')
            add_named(d->categories, &d->n_categories, VT_DELTA_NAMES_MAX, item->categories[c], x);
    }
    if (item->brand[0] != '\0')
        add_named(d->brands, &d->n_brands, VT_EVENT_ITEMS_MAX, item->brand, x);
    /* A price of 0 marks a free sample or gift, which tells nothing about the price tier. */
    if (item->price > 0 && isfinite(item->price)) {
        enum vt_price_tier tier = vt_config_price_tier(cfg, item->price);
        add_named(d->tiers, &d->n_tiers, VT_TIER_COUNT, vt_price_tier_name(tier), x);
    }

    if (item->gender == VT_GENDER_FEMALE) {
        d->gender_step += w * cfg->gender_step;
        d->gender_evidence++;
    } else if (item->gender == VT_GENDER_MALE) {
        d->gender_step -= w * cfg->gender_step;
        d->gender_evidence++;
    }
}


void vt_profile_source_tag(const char *cluster_id, const char *topic, const char *offset_namespace,
                           char out[VT_SOURCE_TAG_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    char joined[1024];
    int n = snprintf(joined, sizeof joined, "%s/%s/%s", cluster_id, topic, offset_namespace);
    uint64_t h = vt_hash64(joined, n > 0 ? (size_t)n : 0);

    for (int i = 0; i < VT_SOURCE_TAG_LEN; i++) {
        out[i] = hex[h & 0xF];
        h >>= 4;
    }
    out[VT_SOURCE_TAG_LEN] = '\0';
}


void vt_profile_delta_build(const struct vt_config *cfg, const struct vt_event *ev,
                            const char *source_tag, int32_t partition, int64_t offset,
                            struct vt_profile_delta *d)
{
    double w = cfg->intent_weight[ev->type];
    double revenue = 0;

    delta_reset(d);
    if (cfg->profile_key == VT_PROFILE_KEY_USER && ev->user_id[0] != '\0')
        vt_strlcpy(d->profile_id, ev->user_id, sizeof d->profile_id);
    else
        vt_strlcpy(d->profile_id, ev->session_id, sizeof d->profile_id);
    vt_strlcpy(d->user_id, ev->user_id, sizeof d->user_id);
    vt_strlcpy(d->source_tag, source_tag, sizeof d->source_tag);
    d->partition = partition;
    d->offset = offset;
    d->settled_offset = -1;
    d->ts_ms = ev->ts_ms;
    d->type = ev->type;
    vt_strlcpy(d->placement, ev->placement, sizeof d->placement);
    vt_strlcpy(d->decision_id, ev->decision_id, sizeof d->decision_id);

    if (ev->consent == VT_CONSENT_GRANTED)
        d->consent = '1';
    else if (ev->consent == VT_CONSENT_DENIED)
        d->consent = '0';
    else
        d->consent = cfg->consent_default_granted ? 'i' : 'j';
    /* Under profile.key=user the profile is the user already. */
    if (cfg->profile_key == VT_PROFILE_KEY_SESSION) {
        enum vt_visitor_field field;
        enum vt_visitor_pick pick = vt_visitor_pick(cfg, ev, d->visitor_id, &field);

        d->visitor_blocked = pick == VT_VISITOR_BLOCKED;
        for (size_t i = 0; i < cfg->n_visitor_fields; i++) {
            if (pick == VT_VISITOR_PICKED && cfg->visitor_fields[i] == field)
                d->visitor_rank = (int)i;
        }
    }

    for (size_t i = 0; i < ev->n_items; i++) {
        const struct vt_event_item *item = &ev->items[i];

        if (w > 0)
            add_interest(cfg, item, w, ev->ts_ms, d);

        if (ev->type == VT_EV_IMPRESSION) {
            vt_strlcpy(d->shown[d->n_shown++], item->id, VT_PRODUCT_ID_MAX + 1);
        } else if (ev->type == VT_EV_CLICK) {
            struct vt_quantity_line *line = &d->clicked[d->n_clicked++];
            vt_strlcpy(line->id, item->id, sizeof line->id);
            line->quantity = item->position;
        }

        if (is_view(ev->type)) {
            vt_strlcpy(d->viewed[d->n_viewed++], item->id, VT_PRODUCT_ID_MAX + 1);
        } else if (ev->type == VT_EV_ADD_TO_CART) {
            int64_t q = item->quantity > 0 ? item->quantity : 1;
            struct vt_quantity_line *line = &d->cart_add[d->n_cart_add++];
            vt_strlcpy(line->id, item->id, sizeof line->id);
            line->quantity = q > CART_QUANTITY_MAX ? CART_QUANTITY_MAX : q;
        } else if (ev->type == VT_EV_REMOVE_FROM_CART) {
            /* A removal without a quantity takes the whole line out. */
            int64_t q = item->quantity > 0 ? item->quantity : 0;
            struct vt_quantity_line *line = &d->cart_remove[d->n_cart_remove++];
            vt_strlcpy(line->id, item->id, sizeof line->id);
            line->quantity = q > CART_QUANTITY_MAX ? CART_QUANTITY_MAX : q;
        } else if (ev->type == VT_EV_PURCHASE) {
            vt_strlcpy(d->purchased[d->n_purchased++], item->id, VT_PRODUCT_ID_MAX + 1);
            if (item->price > 0 && isfinite(item->price))
                revenue += item->price * (item->quantity > 0 ? item->quantity : 1);
        }
    }

    if (ev->type == VT_EV_PURCHASE)
        d->revenue = ev->order_value >= 0 && isfinite(ev->order_value) ? ev->order_value
                                                                       : revenue;
}
