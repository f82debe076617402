/*
 * vitrine: alert judging, episodes and explanations (see include/vitrine/alerts.h). The
 * leader runs these for every series at every evaluation. They do no I/O and allocate
 * nothing.
 *
 * The baseline of a series is the median of its baseline windows (the same window length
 * over the recent past). A single unusual window, such as an earlier surge or an outage,
 * moves a mean a long way. The median stays within the range of the ordinary windows as
 * long as fewer than half of the windows are unusual.
 */
#include "vitrine/alerts.h"

#include <math.h>
#include <string.h>

#include "vitrine/util.h"

/* Smallest share of the current window a value needs to be named as a driver. */
#define DRIVER_SHARE_MIN 0.1

/* Relative tolerance of threshold comparisons, so that limits computed from decimal
 * settings (3 x (1 - 0.2) is 2.4000000000000004 in binary) are reached as written. */
#define LIMIT_TOLERANCE 1e-9


/* ---- judging ---- */

/* True when value is at least limit, within the tolerance. */
static bool reaches(double value, double limit)
{
    return value >= limit - fabs(limit) * LIMIT_TOLERANCE;
}


/* True when value is at most limit, within the tolerance. */
static bool within(double value, double limit)
{
    return value <= limit + fabs(limit) * LIMIT_TOLERANCE;
}


/* A window's value as judging takes it: negative and non-finite values count as 0. */
static double window_value(double v)
{
    return isfinite(v) && v > 0 ? v : 0;
}


/* The median of the baseline windows the rule takes, and how many of them have data. */
static double baseline_median(const struct vt_alert_rule *rule,
                              const struct vt_alert_series *series, size_t *with_data)
{
    double sorted[VT_ALERT_BASELINE_MAX];
    size_t n = series->n_baseline;

    if (n > VT_ALERT_BASELINE_MAX)
        n = VT_ALERT_BASELINE_MAX;
    if (rule->baseline_windows > 0 && n > rule->baseline_windows)
        n = rule->baseline_windows;

    *with_data = 0;
    for (size_t i = 0; i < n; i++) {
        double v = window_value(series->baseline[i]);
        size_t k = i;

        if (v > 0)
            (*with_data)++;
        /* Insertion sort: at most VT_ALERT_BASELINE_MAX values. */
        while (k > 0 && sorted[k - 1] > v) {
            sorted[k] = sorted[k - 1];
            k--;
        }
        sorted[k] = v;
    }

    if (n == 0)
        return 0;
    if (n % 2 == 1)
        return sorted[n / 2];
    return (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}


/*
 * Judge the volume condition: min_volume for firing, and min_volume relaxed by the
 * hysteresis for holding, so that an active episode does not end only because the volume
 * dips just under the minimum. Returns false when the volume is below even the relaxed
 * minimum. *full is true when the full minimum is met.
 */
static bool volume_judged(const struct vt_alert_rule *rule, double volume, bool *full)
{
    *full = reaches(volume, rule->min_volume);
    return reaches(volume, rule->min_volume * (1 - rule->hysteresis));
}


void vt_alert_judge(const struct vt_alert_rule *rule, const struct vt_alert_series *series,
                    struct vt_alert_verdict *out)
{
    double h = rule->hysteresis;
    size_t with_data = 0;
    bool full = false;

    memset(out, 0, sizeof *out);
    out->value = window_value(series->current);
    out->baseline = baseline_median(rule, series, &with_data);
    if (series->rule_history > with_data)
        with_data = series->rule_history;
    /* The floor of 1 keeps a baseline of mostly empty windows from turning a handful of
     * events into a huge ratio. */
    out->ratio = out->value / fmax(out->baseline, 1);

    double value = out->value;
    switch (rule->condition) {
    case VT_ALERT_RATIO:
        if (with_data < rule->min_baseline_windows || !volume_judged(rule, value, &full))
            return;
        out->firing = full && reaches(out->ratio, rule->ratio);
        out->holding = reaches(out->ratio, rule->ratio * (1 - h));
        break;

    case VT_ALERT_ABOVE:
        if (!volume_judged(rule, value, &full))
            return;
        out->firing = full && reaches(value, rule->threshold);
        out->holding = reaches(value, rule->threshold * (1 - h));
        break;

    case VT_ALERT_BELOW:
        /* A below rule watches for traffic that stopped, so the current window may well be
         * empty: the usual traffic (the baseline median) must reach min_volume instead. At
         * threshold 0 the relaxed threshold is 0 as well, so the hysteresis has no effect. */
        if (with_data < rule->min_baseline_windows ||
            !volume_judged(rule, out->baseline, &full))
            return;
        out->firing = full && within(value, rule->threshold);
        out->holding = within(value, rule->threshold * (1 + h));
        break;

    case VT_ALERT_STOCK: {
        if (series->stock < 0 || !volume_judged(rule, value, &full))
            return;
        double hourly_rate = rule->window_s > 0 ? value * 3600 / (double)rule->window_s : 0;
        out->hours_left = hourly_rate > 0 ? (double)series->stock / hourly_rate : INFINITY;
        out->firing = full && within(out->hours_left, rule->hours);
        out->holding = within(out->hours_left, rule->hours * (1 + h));
        break;
    }

    default:
        return;
    }

    out->judged = true;
    out->holding = out->holding || out->firing;
}


/* ---- episodes ---- */

enum vt_alert_transition vt_alert_step(const struct vt_alert_rule *rule,
                                       struct vt_alert_episode *episode,
                                       const struct vt_alert_verdict *verdict, int64_t now_ms)
{
    if (episode->state != VT_ALERT_ACTIVE) {
        if (!verdict->judged || !verdict->firing || now_ms < episode->cooldown_until_ms)
            return VT_ALERT_NO_CHANGE;
        episode->state = VT_ALERT_ACTIVE;
        episode->since_ms = now_ms;
        episode->quiet = 0;
        return VT_ALERT_FIRED;
    }

    /* An active episode counts an evaluation that could not judge (the traffic stopped,
     * the stock became unknown) as one without the condition. */
    if (verdict->judged && verdict->holding) {
        episode->quiet = 0;
        return VT_ALERT_NO_CHANGE;
    }
    if (episode->quiet < UINT32_MAX)
        episode->quiet++;
    if (episode->quiet < rule->resolve_after)
        return VT_ALERT_NO_CHANGE;

    /* The cool-down starts when the episode resolves. */
    episode->state = VT_ALERT_INACTIVE;
    episode->since_ms = now_ms;
    episode->quiet = 0;
    episode->cooldown_until_ms = now_ms + rule->cooldown_s * 1000;
    return VT_ALERT_RESOLVED;
}


/* ---- explanations ---- */

/* The sum of a breakdown's amounts, counting negative and non-finite ones as 0. */
static double breakdown_total(const struct vt_alert_breakdown *b)
{
    double total = 0;

    for (size_t i = 0; b->amounts != NULL && i < b->n; i++)
        total += window_value(b->amounts[i]);
    return total;
}


/* The amount of value in a breakdown, 0 when it is not listed. */
static double breakdown_amount(const struct vt_alert_breakdown *b, const char *value)
{
    double amount = 0;

    for (size_t i = 0; b->values != NULL && b->amounts != NULL && i < b->n; i++) {
        if (b->values[i] != NULL && strcmp(b->values[i], value) == 0)
            amount += window_value(b->amounts[i]);
    }
    return amount;
}


/* True when driver a ranks before driver b. */
static bool ranks_before(const struct vt_alert_driver *a, const struct vt_alert_driver *b)
{
    double growth_a = a->share_during - a->share_before;
    double growth_b = b->share_during - b->share_before;

    if (growth_a != growth_b)
        return growth_a > growth_b;
    if (a->during != b->during)
        return a->during > b->during;
    if (a->dimension != b->dimension)
        return a->dimension < b->dimension;
    return strcmp(a->value, b->value) < 0;
}


/* Insert the candidate into out[0..*n), kept sorted and at most max long. */
static void insert_ranked(struct vt_alert_driver *out, size_t *n, size_t max,
                          const struct vt_alert_driver *candidate)
{
    size_t at = *n;

    while (at > 0 && ranks_before(candidate, &out[at - 1]))
        at--;
    if (at >= max)
        return;

    size_t last = *n < max ? *n : max - 1;
    memmove(&out[at + 1], &out[at], (last - at) * sizeof out[0]);
    out[at] = *candidate;
    if (*n < max)
        (*n)++;
}


size_t vt_alert_history_windows(const struct vt_alert_rule *rule)
{
    return rule->baseline_windows > VT_ALERT_EXPLAIN_WINDOWS ? rule->baseline_windows
                                                             : VT_ALERT_EXPLAIN_WINDOWS;
}


size_t vt_alert_explain(const struct vt_alert_breakdown *during,
                        const struct vt_alert_breakdown *before, enum vt_alert_dimension skip,
                        struct vt_alert_driver *out, size_t max)
{
    size_t n = 0;

    if (during == NULL || out == NULL || max == 0)
        return 0;

    for (int d = 0; d < VT_DIM_COUNT; d++) {
        const struct vt_alert_breakdown *now = &during[d];
        const struct vt_alert_breakdown *past = before != NULL ? &before[d] : NULL;

        if ((enum vt_alert_dimension)d == skip || now->values == NULL || now->amounts == NULL)
            continue;
        double total_during = breakdown_total(now);
        double total_before = past != NULL ? breakdown_total(past) : 0;
        if (total_during <= 0)
            continue;

        for (size_t i = 0; i < now->n; i++) {
            const char *value = now->values[i];
            struct vt_alert_driver candidate;

            /* An empty value stands for "not known" and explains nothing. */
            if (value == NULL || value[0] == '\0')
                continue;
            double amount = window_value(now->amounts[i]);
            if (amount / total_during < DRIVER_SHARE_MIN)
                continue;

            memset(&candidate, 0, sizeof candidate);
            candidate.dimension = (enum vt_alert_dimension)d;
            vt_copy_utf8(candidate.value, sizeof candidate.value, value, strlen(value));
            candidate.during = amount;
            candidate.share_during = amount / total_during;
            if (total_before > 0) {
                candidate.before = breakdown_amount(past, value);
                candidate.share_before = candidate.before / total_before;
            }
            if (candidate.share_during <= candidate.share_before)
                continue;
            insert_ranked(out, &n, max, &candidate);
        }
    }
    return n;
}
