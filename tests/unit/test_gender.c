/*
 * Gender inference: segment thresholds and keyword matching on product text.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "vitrine/profile.h"

static struct vt_config cfg;

static void setup(void)
{
    vt_config_defaults(&cfg);
}


TestSuite(gender, .init = setup);

Test(gender, no_evidence_is_unknown_at_one_half)
{
    struct vt_gender_estimate e;

    vt_gender_estimate(0, 0, &cfg, &e);
    cr_expect_eq(e.segment, VT_SEGMENT_UNKNOWN);
    cr_expect_float_eq(e.p_female, 0.5, 1e-12);
    cr_expect_float_eq(e.probability, 0.5, 1e-12);
}


Test(gender, strong_female_evidence_gives_female)
{
    struct vt_gender_estimate e;

    vt_gender_estimate(2.0, 3, &cfg, &e);
    cr_expect_eq(e.segment, VT_SEGMENT_FEMALE);
    cr_expect_gt(e.probability, 0.85);
}


Test(gender, strong_male_evidence_gives_male)
{
    struct vt_gender_estimate e;

    vt_gender_estimate(-2.0, 3, &cfg, &e);
    cr_expect_eq(e.segment, VT_SEGMENT_MALE);
    cr_expect_float_eq(e.probability, 1 - e.p_female, 1e-12);
}


Test(gender, too_few_interactions_stay_unknown)
{
    struct vt_gender_estimate e;

    vt_gender_estimate(5.0, 1, &cfg, &e); /* default min_evidence is 2 */
    cr_expect_eq(e.segment, VT_SEGMENT_UNKNOWN);
    cr_expect_gt(e.probability, 0.99, "the probability is still reported");
}


Test(gender, below_threshold_stays_unknown)
{
    struct vt_gender_estimate e;

    vt_gender_estimate(0.5, 10, &cfg, &e); /* sigmoid(0.5) = 0.62 < 0.7 */
    cr_expect_eq(e.segment, VT_SEGMENT_UNKNOWN);
}


Test(gender, prior_shifts_the_estimate)
{
    struct vt_gender_estimate e;
    char err[256];

    cr_assert_eq(vt_config_set(&cfg, "gender.prior", "1.0", err, sizeof err), 0, "%s", err);
    vt_gender_estimate(0.0, 5, &cfg, &e);
    cr_expect_eq(e.segment, VT_SEGMENT_FEMALE);
}


Test(gender, absurd_log_odds_are_clamped)
{
    struct vt_gender_estimate e;

    vt_gender_estimate(1e300, 5, &cfg, &e);
    cr_expect_eq(e.segment, VT_SEGMENT_FEMALE);
    cr_expect_leq(e.p_female, 1.0);
    vt_gender_estimate(NAN, 5, &cfg, &e);
    cr_expect_eq(e.segment, VT_SEGMENT_UNKNOWN);
}


static enum vt_gender text_gender(const char *text)
{
    return vt_gender_from_text(&cfg, text, strlen(text));
}


Test(gender, keywords_match_whole_words_only)
{
    cr_expect_eq(text_gender("Velvet Dusk Eau de Parfum for Women"), VT_GENDER_FEMALE);
    cr_expect_eq(text_gender("Granite Men's EDP 3.4 oz"), VT_GENDER_MALE);
    cr_expect_eq(text_gender("Bleu pour homme"), VT_GENDER_MALE);
    cr_expect_eq(text_gender("Damen Duft"), VT_GENDER_FEMALE);
    cr_expect_eq(text_gender("HERREN Rasur"), VT_GENDER_MALE);
    cr_expect_eq(text_gender("Womenswear"), VT_GENDER_UNKNOWN, "no partial-word match");
    cr_expect_eq(text_gender("Cement mask"), VT_GENDER_UNKNOWN, "'men' inside a word");
}


Test(gender, both_lists_matching_is_unisex)
{
    cr_expect_eq(text_gender("Amber Smoke for women and men"), VT_GENDER_UNISEX);
}


Test(gender, text_without_keywords_is_unknown)
{
    cr_expect_eq(text_gender("Gel polish 15 ml"), VT_GENDER_UNKNOWN);
    cr_expect_eq(text_gender(""), VT_GENDER_UNKNOWN);
}
