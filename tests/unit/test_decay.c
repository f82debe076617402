/*
 * Forward decay in the log domain: order independence, the half-life, and behaviour over
 * years of uptime.
 */
#include <criterion/criterion.h>
#include <math.h>

#include "vitrine/profile.h"

#define HOUR_MS 3600000LL
/* 2026-01-01T00:00:00Z */
#define T0 1767225600000LL

static double combine(const double *weights, const int64_t *times, const int *order, int n,
                      double half_life_s)
{
    double acc = -INFINITY;

    for (int i = 0; i < n; i++) {
        int k = order[i];
        acc = vt_decay_log_add(acc, vt_decay_log_score(weights[k], times[k], half_life_s));
    }
    return acc;
}


Test(decay, result_does_not_depend_on_arrival_order)
{
    const double w[5] = {1, 3, 5, 1.2, 2};
    const int64_t t[5] = {T0, T0 + HOUR_MS, T0 - 3 * HOUR_MS, T0 + 7 * HOUR_MS, T0 + 30};
    const int orders[4][5] = {{0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {2, 0, 4, 1, 3}, {3, 1, 4, 0, 2}};
    double first = combine(w, t, orders[0], 5, 3600);

    for (int o = 1; o < 4; o++) {
        double other = combine(w, t, orders[o], 5, 3600);
        cr_expect_float_eq(other, first, 1e-9, "order %d gives %.17g, order 0 gives %.17g", o,
                           other, first);
    }
}


Test(decay, value_halves_after_one_half_life)
{
    double x = vt_decay_log_score(4.0, T0, 1800);

    cr_expect_float_eq(vt_decay_value(x, T0, 1800), 4.0, 1e-9);
    cr_expect_float_eq(vt_decay_value(x, T0 + 1800 * 1000, 1800), 2.0, 1e-9);
    cr_expect_float_eq(vt_decay_value(x, T0 + 3 * 1800 * 1000, 1800), 0.5, 1e-9);
}


Test(decay, sum_of_contributions_decays_each_from_its_own_time)
{
    double h = 3600;
    double x = vt_decay_log_add(vt_decay_log_score(1, T0, h),
                                vt_decay_log_score(2, T0 + HOUR_MS, h));
    /* At T0 + 1 h: 1 * 1/2 + 2 * 1 = 2.5 */
    cr_expect_float_eq(vt_decay_value(x, T0 + HOUR_MS, h), 2.5, 1e-9);
}


Test(decay, ranking_is_the_same_at_any_read_time)
{
    double h = 600;
    double a = vt_decay_log_score(5, T0, h);         /* strong but old */
    double b = vt_decay_log_score(1, T0 + HOUR_MS, h); /* weak but recent */

    cr_expect_gt(b, a, "recent interest must rank first after 6 half-lives");
    cr_expect_gt(vt_decay_value(b, T0 + 2 * HOUR_MS, h), vt_decay_value(a, T0 + 2 * HOUR_MS, h));
    cr_expect_gt(vt_decay_value(b, T0 + 20 * HOUR_MS, h), vt_decay_value(a, T0 + 20 * HOUR_MS, h));
}


Test(decay, stays_finite_and_precise_after_decades)
{
    /* 2090, one-minute half-life: about 3.7 million half-lives since the epoch. */
    int64_t late = 3786912000000LL;
    double h = 60;
    double x = vt_decay_log_add(vt_decay_log_score(3, late, h), vt_decay_log_score(1, late, h));

    cr_expect(isfinite(x));
    cr_expect_float_eq(vt_decay_value(x, late, h), 4.0, 1e-6);
    cr_expect_float_eq(vt_decay_value(x, late + 60000, h), 2.0, 1e-6);
}


Test(decay, log_add_with_empty_accumulator_is_identity)
{
    cr_expect_float_eq(vt_decay_log_add(-INFINITY, 1.5), 1.5, 1e-15);
    cr_expect_float_eq(vt_decay_log_add(1.5, -INFINITY), 1.5, 1e-15);
}


Test(decay, log_add_does_not_overflow_for_large_scores)
{
    double big = 700000.0; /* exp(big) would overflow a double */
    double s = vt_decay_log_add(big, big);

    cr_expect_float_eq(s, big + log(2.0), 1e-9);
}
