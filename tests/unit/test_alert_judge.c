/*
 * Unit tests of alert judging, episodes and explanations (service/alerts/judge.c): each
 * condition with its edge cases, episode sequences with hysteresis, resolution and
 * cool-down, and the ranking of drivers.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vitrine/alerts.h"

static struct vt_alert_rule rule;
static struct vt_alert_series series;
static struct vt_alert_verdict verdict;


/* A rule of the given condition with the parser's defaults. */
static void make_rule(enum vt_alert_condition condition)
{
    memset(&rule, 0, sizeof rule);
    memset(&series, 0, sizeof series);
    snprintf(rule.name, sizeof rule.name, "test");
    rule.event = VT_EV_PURCHASE;
    rule.group_by = VT_DIM_NONE;
    rule.window_s = 300;
    rule.condition = condition;
    rule.baseline_windows = 12;
    rule.min_baseline_windows = 3;
    rule.resolve_after = 3;
    rule.hysteresis = 0.2;
    rule.cooldown_s = 600;
    series.stock = -1;
}


/* Fill the baseline with n windows of the same value. */
static void baseline_of(size_t n, double value)
{
    series.n_baseline = n;
    for (size_t i = 0; i < n; i++)
        series.baseline[i] = value;
}


static void judge(double current)
{
    series.current = current;
    vt_alert_judge(&rule, &series, &verdict);
}


/* ---- ratio ---- */

Test(alert_judge, ratio_fires_at_ratio)
{
    make_rule(VT_ALERT_RATIO);
    rule.ratio = 3;
    rule.min_volume = 10;
    baseline_of(12, 20);

    judge(60);
    cr_assert(verdict.judged);
    cr_assert(verdict.firing);
    cr_assert(verdict.holding);
    cr_assert_float_eq(verdict.baseline, 20, 1e-12);
    cr_assert_float_eq(verdict.ratio, 3, 1e-12);
    cr_assert_float_eq(verdict.value, 60, 1e-12);

    judge(59);
    cr_assert(verdict.judged);
    cr_assert_not(verdict.firing);
    cr_assert(verdict.holding, "ratio 2.95 is above 3 x (1 - 0.2)");

    judge(47);
    cr_assert_not(verdict.holding, "ratio 2.35 is below 2.4");
    judge(48);
    cr_assert(verdict.holding, "ratio 2.4 holds");
}


Test(alert_judge, ratio_needs_min_volume)
{
    make_rule(VT_ALERT_RATIO);
    rule.ratio = 3;
    rule.min_volume = 50;
    baseline_of(12, 5);

    judge(39);
    cr_assert_not(verdict.judged, "below the relaxed minimum 40");
    cr_assert_not(verdict.firing);
    cr_assert_not(verdict.holding);
    cr_assert_float_eq(verdict.value, 39, 1e-12, "the value is reported anyway");

    judge(45);
    cr_assert(verdict.judged, "within the hysteresis of the minimum");
    cr_assert_not(verdict.firing, "firing needs the full minimum");
    cr_assert(verdict.holding, "an active episode holds");

    judge(50);
    cr_assert(verdict.firing);
}


Test(alert_judge, ratio_needs_baseline_history)
{
    make_rule(VT_ALERT_RATIO);
    rule.ratio = 3;
    rule.min_volume = 10;

    judge(100);
    cr_assert_not(verdict.judged, "no baseline windows at all");

    baseline_of(12, 0);
    series.baseline[0] = 4;
    series.baseline[5] = 6;
    judge(100);
    cr_assert_not(verdict.judged, "two windows with data, three needed");

    series.baseline[11] = 5;
    judge(100);
    cr_assert(verdict.judged);
    cr_assert(verdict.firing);
    cr_assert_float_eq(verdict.baseline, 0, 1e-12, "most windows are empty");
}


Test(alert_judge, new_group_judged_on_the_rules_history)
{
    make_rule(VT_ALERT_RATIO);
    rule.ratio = 3;
    rule.min_volume = 30;
    baseline_of(12, 0); /* a campaign never seen before */

    series.rule_history = 2;
    judge(200);
    cr_assert_not(verdict.judged, "the rule itself has only two windows of history");

    series.rule_history = 12;
    judge(200);
    cr_assert(verdict.judged, "the rule has history, so a new value is judged at once");
    cr_assert(verdict.firing, "200 against a baseline of 0 is a surge");
    cr_assert_float_eq(verdict.ratio, 200, 1e-12);

    judge(29);
    cr_assert_not(verdict.firing, "min_volume still guards a new value");
    judge(20);
    cr_assert_not(verdict.judged, "below the relaxed minimum of 24");
}


Test(alert_judge, ratio_zero_baseline_floored)
{
    make_rule(VT_ALERT_RATIO);
    rule.ratio = 3;
    rule.min_volume = 2;
    rule.min_baseline_windows = 1;
    baseline_of(12, 0);
    series.baseline[3] = 0.5;

    judge(2);
    cr_assert(verdict.judged);
    cr_assert_float_eq(verdict.baseline, 0, 1e-12);
    cr_assert_float_eq(verdict.ratio, 2, 1e-12, "value / 1, not value / 0");
    cr_assert(isfinite(verdict.ratio));
    cr_assert_not(verdict.firing);

    judge(3);
    cr_assert(verdict.firing);
}


Test(alert_judge, ratio_median_ignores_outlier)
{
    make_rule(VT_ALERT_RATIO);
    rule.ratio = 3;
    rule.min_volume = 10;
    static const double noisy[12] = {18, 22, 20, 400, 19, 21, 20, 23, 17, 20, 0, 22};
    series.n_baseline = 12;
    memcpy(series.baseline, noisy, sizeof noisy);

    judge(70);
    cr_assert_float_eq(verdict.baseline, 20, 1e-12, "the median of the noisy windows");
    cr_assert_float_eq(verdict.ratio, 3.5, 1e-12);
    cr_assert(verdict.firing, "the earlier surge of 400 does not hide this one");
}


Test(alert_judge, ratio_median_odd_and_limited)
{
    make_rule(VT_ALERT_RATIO);
    rule.ratio = 2;
    rule.baseline_windows = 3;
    static const double windows[5] = {30, 10, 20, 1000, 1000};
    series.n_baseline = 5;
    memcpy(series.baseline, windows, sizeof windows);

    judge(40);
    cr_assert_float_eq(verdict.baseline, 20, 1e-12, "only the rule's 3 newest windows count");
    cr_assert(verdict.firing);
}


Test(alert_judge, invalid_values_count_as_zero)
{
    make_rule(VT_ALERT_RATIO);
    rule.ratio = 2;
    rule.min_baseline_windows = 1;
    rule.baseline_windows = 4;
    static const double windows[4] = {10, NAN, -5, INFINITY};
    series.n_baseline = 4;
    memcpy(series.baseline, windows, sizeof windows);

    judge(NAN);
    cr_assert_float_eq(verdict.value, 0, 1e-12);
    cr_assert_float_eq(verdict.baseline, 0, 1e-12, "windows 10, 0, 0, 0");
    cr_assert(verdict.judged);
    cr_assert_not(verdict.firing);
}


/* ---- above ---- */

Test(alert_judge, above_threshold_and_hysteresis)
{
    make_rule(VT_ALERT_ABOVE);
    rule.threshold = 100;
    rule.min_volume = 0;

    judge(100);
    cr_assert(verdict.judged);
    cr_assert(verdict.firing);
    judge(99.9);
    cr_assert_not(verdict.firing);
    cr_assert(verdict.holding);
    judge(80);
    cr_assert(verdict.holding);
    judge(79.9);
    cr_assert(verdict.judged);
    cr_assert_not(verdict.holding);
    cr_assert_float_eq(verdict.hours_left, 0, 1e-12, "only stock rules project");
}


Test(alert_judge, above_no_data)
{
    make_rule(VT_ALERT_ABOVE);
    rule.threshold = 10;
    rule.min_volume = 5;

    judge(0);
    cr_assert_not(verdict.judged);
    cr_assert_not(verdict.firing);
    cr_assert_not(verdict.holding);
    cr_assert_float_eq(verdict.baseline, 0, 1e-12);
}


Test(alert_judge, no_hysteresis_holds_at_threshold)
{
    make_rule(VT_ALERT_ABOVE);
    rule.threshold = 10;
    rule.hysteresis = 0;

    judge(10);
    cr_assert(verdict.firing);
    judge(9.99);
    cr_assert_not(verdict.holding);
}


/* ---- below ---- */

Test(alert_judge, below_fires_without_traffic)
{
    make_rule(VT_ALERT_BELOW);
    rule.threshold = 1;
    rule.min_volume = 10;
    baseline_of(12, 15);

    judge(0);
    cr_assert(verdict.judged, "the baseline, not the empty window, needs the volume");
    cr_assert(verdict.firing);
    judge(1);
    cr_assert(verdict.firing);
    judge(1.2);
    cr_assert_not(verdict.firing);
    cr_assert(verdict.holding, "1.2 is within 1 x (1 + 0.2)");
    judge(2);
    cr_assert_not(verdict.holding);
}


Test(alert_judge, below_needs_usual_traffic)
{
    make_rule(VT_ALERT_BELOW);
    rule.threshold = 1;
    rule.min_volume = 10;
    baseline_of(12, 7);

    judge(0);
    cr_assert_not(verdict.judged, "a median of 7 is below the relaxed minimum 8");

    baseline_of(12, 9);
    judge(0);
    cr_assert(verdict.judged);
    cr_assert_not(verdict.firing, "firing needs the full minimum");
    cr_assert(verdict.holding);

    baseline_of(2, 50);
    judge(0);
    cr_assert_not(verdict.judged, "two windows of history, three needed");
}


Test(alert_judge, below_threshold_zero)
{
    make_rule(VT_ALERT_BELOW);
    rule.threshold = 0;
    rule.min_volume = 10;
    baseline_of(12, 30);

    judge(0);
    cr_assert(verdict.firing);
    cr_assert(verdict.holding);
    judge(0.5);
    cr_assert(verdict.judged);
    cr_assert_not(verdict.firing);
    cr_assert_not(verdict.holding, "the hysteresis cannot widen a threshold of 0");
}


Test(alert_judge, below_without_minimum_judges_always)
{
    make_rule(VT_ALERT_BELOW);
    rule.threshold = 0;
    rule.min_volume = 0;
    rule.min_baseline_windows = 0;

    judge(0);
    cr_assert(verdict.judged);
    cr_assert(verdict.firing);
}


/* ---- stock ---- */

Test(alert_judge, stock_projection)
{
    make_rule(VT_ALERT_STOCK);
    rule.window_s = 900;
    rule.hours = 6;
    rule.min_volume = 5;
    series.stock = 120;

    judge(5);
    cr_assert(verdict.judged);
    cr_assert_float_eq(verdict.hours_left, 6, 1e-12, "5 per 15 minutes is 20 an hour");
    cr_assert(verdict.firing);

    series.stock = 144;
    judge(5);
    cr_assert_float_eq(verdict.hours_left, 7.2, 1e-12);
    cr_assert_not(verdict.firing);
    cr_assert(verdict.holding, "7.2 hours is within 6 x (1 + 0.2)");

    series.stock = 145;
    judge(5);
    cr_assert_not(verdict.holding);

    series.stock = 0;
    judge(5);
    cr_assert_float_eq(verdict.hours_left, 0, 1e-12);
    cr_assert(verdict.firing, "sold out while still selling");
}


Test(alert_judge, stock_unknown_not_judged)
{
    make_rule(VT_ALERT_STOCK);
    rule.hours = 6;
    rule.min_volume = 1;
    series.stock = -1;

    judge(500);
    cr_assert_not(verdict.judged);
    cr_assert_not(verdict.firing);
}


Test(alert_judge, stock_zero_rate_infinite)
{
    make_rule(VT_ALERT_STOCK);
    rule.hours = 6;
    rule.min_volume = 0;
    series.stock = 3;

    judge(0);
    cr_assert(verdict.judged);
    cr_assert(isinf(verdict.hours_left));
    cr_assert_not(verdict.firing);
    cr_assert_not(verdict.holding);

    series.stock = 0;
    judge(0);
    cr_assert(isinf(verdict.hours_left), "a sold-out product nobody buys is not projected");
    cr_assert_not(verdict.firing);
}


Test(alert_judge, stock_below_min_volume)
{
    make_rule(VT_ALERT_STOCK);
    rule.hours = 6;
    rule.min_volume = 5;
    series.stock = 1;

    judge(3);
    cr_assert_not(verdict.judged, "3 is below the relaxed minimum 4");
}


/* ---- episodes ---- */

static struct vt_alert_episode episode;

/* Judge a value and step the episode at a time in seconds. */
static enum vt_alert_transition step_at(int64_t now_s, double current)
{
    judge(current);
    return vt_alert_step(&rule, &episode, &verdict, now_s * 1000);
}


static void make_episode_rule(void)
{
    make_rule(VT_ALERT_ABOVE);
    rule.threshold = 100;
    rule.min_volume = 10;
    rule.resolve_after = 3;
    rule.cooldown_s = 600;
    memset(&episode, 0, sizeof episode);
}


Test(alert_episode, fires_once)
{
    make_episode_rule();

    cr_assert_eq(step_at(0, 50), VT_ALERT_NO_CHANGE);
    cr_assert_eq(episode.state, VT_ALERT_INACTIVE);
    cr_assert_eq(step_at(10, 120), VT_ALERT_FIRED);
    cr_assert_eq(episode.state, VT_ALERT_ACTIVE);
    cr_assert_eq(episode.since_ms, 10000);
    cr_assert_eq(episode.quiet, 0);
    for (int t = 20; t < 200; t += 10)
        cr_assert_eq(step_at(t, 150), VT_ALERT_NO_CHANGE, "at %d s", t);
    cr_assert_eq(episode.since_ms, 10000);
}


Test(alert_episode, hovering_value_holds)
{
    make_episode_rule();
    static const double hovering[] = {101, 99, 95, 102, 98, 85, 100, 97, 82, 99};

    cr_assert_eq(step_at(0, 100), VT_ALERT_FIRED);
    for (size_t i = 0; i < sizeof hovering / sizeof hovering[0]; i++) {
        cr_assert_eq(step_at(10 + 10 * (int64_t)i, hovering[i]), VT_ALERT_NO_CHANGE,
                     "value %g", hovering[i]);
        cr_assert_eq(episode.quiet, 0, "value %g holds", hovering[i]);
    }
}


Test(alert_episode, holding_resets_quiet_count)
{
    make_episode_rule();
    rule.hysteresis = 0;

    cr_assert_eq(step_at(0, 100), VT_ALERT_FIRED);
    cr_assert_eq(step_at(10, 99), VT_ALERT_NO_CHANGE);
    cr_assert_eq(episode.quiet, 1);
    cr_assert_eq(step_at(20, 100), VT_ALERT_NO_CHANGE);
    cr_assert_eq(episode.quiet, 0, "holding again resets the quiet count");
}


Test(alert_episode, resolves_after_quiet_evaluations)
{
    make_episode_rule();
    snprintf(episode.alert_id, sizeof episode.alert_id, "alert-1");

    cr_assert_eq(step_at(0, 200), VT_ALERT_FIRED);
    cr_assert_eq(step_at(10, 50), VT_ALERT_NO_CHANGE);
    cr_assert_eq(episode.quiet, 1);
    cr_assert_eq(step_at(20, 60), VT_ALERT_NO_CHANGE);
    cr_assert_eq(episode.quiet, 2);
    cr_assert_eq(step_at(30, 70), VT_ALERT_RESOLVED);
    cr_assert_eq(episode.state, VT_ALERT_INACTIVE);
    cr_assert_eq(episode.since_ms, 30000);
    cr_assert_eq(episode.quiet, 0);
    cr_assert_eq(episode.cooldown_until_ms, 630000, "the cool-down starts at resolution");
    cr_assert_str_eq(episode.alert_id, "alert-1", "the caller still reads the resolved id");
}


Test(alert_episode, not_judged_counts_as_quiet)
{
    make_episode_rule();

    cr_assert_eq(step_at(0, 200), VT_ALERT_FIRED);
    cr_assert_eq(step_at(10, 0), VT_ALERT_NO_CHANGE);
    cr_assert_not(verdict.judged);
    cr_assert_eq(step_at(20, 0), VT_ALERT_NO_CHANGE);
    cr_assert_eq(step_at(30, 0), VT_ALERT_RESOLVED, "the traffic stopped");
}


Test(alert_episode, no_refire_during_cooldown)
{
    make_episode_rule();

    cr_assert_eq(step_at(0, 200), VT_ALERT_FIRED);
    for (int t = 10; t <= 30; t += 10)
        step_at(t, 0);
    cr_assert_eq(episode.state, VT_ALERT_INACTIVE);

    cr_assert_eq(step_at(40, 500), VT_ALERT_NO_CHANGE);
    cr_assert_eq(step_at(629, 500), VT_ALERT_NO_CHANGE, "one second before the end");
    cr_assert_eq(episode.state, VT_ALERT_INACTIVE);
    cr_assert_eq(step_at(630, 500), VT_ALERT_FIRED, "a new episode after the cool-down");
    cr_assert_eq(episode.since_ms, 630000);
}


Test(alert_episode, refire_needs_firing_not_holding)
{
    make_episode_rule();
    rule.cooldown_s = 0;

    cr_assert_eq(step_at(0, 200), VT_ALERT_FIRED);
    for (int t = 10; t <= 30; t += 10)
        step_at(t, 10);
    cr_assert_eq(episode.state, VT_ALERT_INACTIVE);
    cr_assert_eq(step_at(40, 90), VT_ALERT_NO_CHANGE, "holding alone does not fire");
    cr_assert_eq(step_at(50, 100), VT_ALERT_FIRED);
}


Test(alert_episode, below_rule_resolves_when_traffic_returns)
{
    make_rule(VT_ALERT_BELOW);
    rule.threshold = 0;
    rule.min_volume = 10;
    rule.resolve_after = 2;
    baseline_of(12, 25);
    memset(&episode, 0, sizeof episode);

    cr_assert_eq(step_at(0, 0), VT_ALERT_FIRED);
    cr_assert_eq(step_at(10, 0), VT_ALERT_NO_CHANGE);
    cr_assert_eq(step_at(20, 3), VT_ALERT_NO_CHANGE);
    cr_assert_eq(step_at(30, 8), VT_ALERT_RESOLVED);
}


/* ---- explanations ---- */

struct breakdowns {
    struct vt_alert_breakdown during[VT_DIM_COUNT];
    struct vt_alert_breakdown before[VT_DIM_COUNT];
};


static void set_breakdown(struct vt_alert_breakdown *b, size_t n, const char *const *values,
                          const double *amounts)
{
    b->n = n;
    b->values = values;
    b->amounts = amounts;
}


Test(alert_explain, ranks_by_share_growth)
{
    struct breakdowns bd = {0};
    static const char *const campaigns_now[] = {"insta.lumi", "newsletter", "sea.brand"};
    static const double campaign_amounts_now[] = {60, 20, 20};
    static const char *const campaigns_past[] = {"newsletter", "sea.brand", "insta.lumi"};
    static const double campaign_amounts_past[] = {50, 45, 5};
    static const char *const referrers_now[] = {"instagram.com", "google.de"};
    static const double referrer_amounts_now[] = {50, 50};
    static const char *const referrers_past[] = {"google.de"};
    static const double referrer_amounts_past[] = {100};

    set_breakdown(&bd.during[VT_DIM_CAMPAIGN], 3, campaigns_now, campaign_amounts_now);
    set_breakdown(&bd.before[VT_DIM_CAMPAIGN], 3, campaigns_past, campaign_amounts_past);
    set_breakdown(&bd.during[VT_DIM_REFERRER], 2, referrers_now, referrer_amounts_now);
    set_breakdown(&bd.before[VT_DIM_REFERRER], 1, referrers_past, referrer_amounts_past);

    struct vt_alert_driver drivers[VT_ALERT_DRIVERS_MAX];
    size_t n = vt_alert_explain(bd.during, bd.before, VT_DIM_BRAND, drivers,
                                VT_ALERT_DRIVERS_MAX);

    cr_assert_eq(n, 2, "shrinking shares are no drivers");
    cr_assert_eq(drivers[0].dimension, VT_DIM_CAMPAIGN);
    cr_assert_str_eq(drivers[0].value, "insta.lumi");
    cr_assert_float_eq(drivers[0].share_during, 0.6, 1e-12);
    cr_assert_float_eq(drivers[0].share_before, 0.05, 1e-12);
    cr_assert_float_eq(drivers[0].during, 60, 1e-12);
    cr_assert_float_eq(drivers[0].before, 5, 1e-12);
    cr_assert_eq(drivers[1].dimension, VT_DIM_REFERRER);
    cr_assert_str_eq(drivers[1].value, "instagram.com");
    cr_assert_float_eq(drivers[1].share_during, 0.5, 1e-12);
    cr_assert_float_eq(drivers[1].share_before, 0, 1e-12);
    cr_assert_float_eq(drivers[1].before, 0, 1e-12);
}


Test(alert_explain, skips_rule_dimension)
{
    struct breakdowns bd = {0};
    static const char *const brands[] = {"Lumi"};
    static const double brand_amounts[] = {10};
    static const char *const campaigns[] = {"tv"};
    static const double campaign_amounts[] = {10};

    set_breakdown(&bd.during[VT_DIM_BRAND], 1, brands, brand_amounts);
    set_breakdown(&bd.during[VT_DIM_CAMPAIGN], 1, campaigns, campaign_amounts);

    struct vt_alert_driver drivers[4];
    size_t n = vt_alert_explain(bd.during, bd.before, VT_DIM_BRAND, drivers, 4);
    cr_assert_eq(n, 1);
    cr_assert_eq(drivers[0].dimension, VT_DIM_CAMPAIGN);

    n = vt_alert_explain(bd.during, NULL, VT_DIM_NONE, drivers, 4);
    cr_assert_eq(n, 2, "without a group every dimension counts, and no before is fine");
    cr_assert_eq(drivers[0].dimension, VT_DIM_BRAND, "a tie goes to the smaller dimension");
    cr_assert_float_eq(drivers[0].share_before, 0, 1e-12);
}


Test(alert_explain, share_threshold)
{
    struct breakdowns bd = {0};
    static const char *const products[] = {"big", "edge", "small", "tiny"};
    static const double amounts[] = {80, 10, 9.99, 0.01};

    set_breakdown(&bd.during[VT_DIM_PRODUCT], 4, products, amounts);

    struct vt_alert_driver drivers[8];
    size_t n = vt_alert_explain(bd.during, bd.before, VT_DIM_NONE, drivers, 8);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(drivers[0].value, "big");
    cr_assert_str_eq(drivers[1].value, "edge", "a share of exactly 0.1 is listed");
}


Test(alert_explain, ties_deterministic)
{
    struct breakdowns bd = {0};
    static const char *const brands[] = {"Velour", "Nordlys", "Aura"};
    static const double now_amounts[] = {20, 60, 20};
    static const char *const past_brands[] = {"Nordlys"};
    static const double past_amounts[] = {10};
    struct vt_alert_driver drivers[8];

    /* Velour and Aura both grow from 0 to 0.2 with the amount 20: the value decides. */
    set_breakdown(&bd.during[VT_DIM_BRAND], 3, brands, now_amounts);
    set_breakdown(&bd.before[VT_DIM_BRAND], 1, past_brands, past_amounts);
    size_t n = vt_alert_explain(bd.during, bd.before, VT_DIM_NONE, drivers, 8);
    cr_assert_eq(n, 2, "Nordlys shrinks from 1.0 to 0.6");
    cr_assert_str_eq(drivers[0].value, "Aura");
    cr_assert_str_eq(drivers[1].value, "Velour");

    /* Shares 0.5 and 0.25 during, 0.25 and 0 before: equal growth, the larger amount
     * first. */
    static const char *const categories[] = {"hair", "makeup", "nails"};
    static const double category_now[] = {25, 50, 25};
    static const char *const categories_past[] = {"makeup", "nails"};
    static const double category_past[] = {25, 75};
    memset(&bd, 0, sizeof bd);
    set_breakdown(&bd.during[VT_DIM_CATEGORY], 3, categories, category_now);
    set_breakdown(&bd.before[VT_DIM_CATEGORY], 2, categories_past, category_past);
    n = vt_alert_explain(bd.during, bd.before, VT_DIM_NONE, drivers, 8);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(drivers[0].value, "makeup");
    cr_assert_float_eq(drivers[0].during, 50, 1e-12);
    cr_assert_str_eq(drivers[1].value, "hair");

    /* The same inputs in another order give the same ranking. */
    static const char *const reversed[] = {"nails", "makeup", "hair"};
    static const double reversed_now[] = {25, 50, 25};
    set_breakdown(&bd.during[VT_DIM_CATEGORY], 3, reversed, reversed_now);
    n = vt_alert_explain(bd.during, bd.before, VT_DIM_NONE, drivers, 8);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(drivers[0].value, "makeup");
    cr_assert_str_eq(drivers[1].value, "hair");
}


Test(alert_explain, at_most_max)
{
    struct breakdowns bd = {0};
    static const char *const brands[] = {"a", "b", "c", "d", "e"};
    static const double amounts[] = {10, 30, 20, 25, 15};

    set_breakdown(&bd.during[VT_DIM_BRAND], 5, brands, amounts);
    struct vt_alert_driver drivers[3];
    size_t n = vt_alert_explain(bd.during, NULL, VT_DIM_NONE, drivers, 3);

    cr_assert_eq(n, 3);
    cr_assert_str_eq(drivers[0].value, "b");
    cr_assert_str_eq(drivers[1].value, "d");
    cr_assert_str_eq(drivers[2].value, "c");
    cr_assert_eq(vt_alert_explain(bd.during, NULL, VT_DIM_NONE, drivers, 0), 0);
}


Test(alert_explain, empty_values_and_totals)
{
    struct breakdowns bd = {0};
    static const char *const campaigns[] = {"", "tv"};
    static const double amounts[] = {80, 20};
    static const char *const zero_values[] = {"x"};
    static const double zero_amounts[] = {0};

    set_breakdown(&bd.during[VT_DIM_CAMPAIGN], 2, campaigns, amounts);
    set_breakdown(&bd.during[VT_DIM_BRAND], 1, zero_values, zero_amounts);

    struct vt_alert_driver drivers[4];
    size_t n = vt_alert_explain(bd.during, bd.before, VT_DIM_NONE, drivers, 4);
    cr_assert_eq(n, 1, "no campaign explains nothing; a zero total has no shares");
    cr_assert_str_eq(drivers[0].value, "tv");
    cr_assert_float_eq(drivers[0].share_during, 0.2, 1e-12, "the share of the whole window");
}
