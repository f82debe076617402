/*
 * Starting a session from its visitor (vt_profile_add_visitor): shares blend by
 * visitor.weight, a session without affinities takes the visitor's, a visitor that
 * refused or lost the session adds nothing, and the other sessions' gender evidence is
 * weighted in.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vitrine/profile.h"
#include "vitrine/util.h"

/* 2026-01-01T00:00:00Z */
#define T0 1767225600000LL
#define HALF_LIFE_S 3600.0

static void put(struct vt_scored_name *list, size_t *n, const char *name, double value)
{
    vt_strlcpy(list[*n].name, name, sizeof list[*n].name);
    list[*n].value = value;
    list[*n].log_score = vt_decay_log_score(value, T0, HALF_LIFE_S);
    (*n)++;
}


static double share(const struct vt_scored_name *list, size_t n, const char *name)
{
    double total = 0, mine = 0;

    for (size_t i = 0; i < n; i++) {
        total += list[i].value;
        if (strcmp(list[i].name, name) == 0)
            mine = list[i].value;
    }
    return total > 0 ? mine / total : 0;
}


static void linked_visitor(struct vt_visitor_profile *v)
{
    vt_visitor_profile_clear(v);
    v->exists = true;
    v->linked = true;
    v->sessions = 3;
    put(v->categories, &v->n_categories, "hair", 30);
    put(v->categories, &v->n_categories, "perfume", 10);
    put(v->tiers, &v->n_tiers, "luxury", 4);
    v->gender_log_odds = -2;
    v->gender_evidence = 8;
}


Test(visitor_blend, shares_mix_by_the_weight)
{
    struct vt_profile p;
    struct vt_visitor_profile v;

    vt_profile_clear(&p);
    p.exists = true;
    p.last_seen_ms = T0;
    put(p.categories, &p.n_categories, "perfume", 6);
    put(p.categories, &p.n_categories, "skin care", 2);
    p.revenue = 25;
    linked_visitor(&v);
    v.revenue = 80;

    vt_profile_add_visitor(&p, &v, 0.5, HALF_LIFE_S);

    /* perfume: 0.5 * 6/8 + 0.5 * 10/40; hair: 0.5 * 30/40; skin care: 0.5 * 2/8 */
    cr_assert_eq(p.n_categories, 3);
    cr_expect_float_eq(share(p.categories, p.n_categories, "perfume"), 0.5, 1e-9);
    cr_expect_float_eq(share(p.categories, p.n_categories, "hair"), 0.375, 1e-9);
    cr_expect_float_eq(share(p.categories, p.n_categories, "skin care"), 0.125, 1e-9);
    cr_expect_str_eq(p.categories[0].name, "perfume", "strongest first");
    cr_expect_str_eq(p.categories[1].name, "hair");
    cr_expect_float_eq(p.categories[0].value + p.categories[1].value + p.categories[2].value,
                       8.0, 1e-9, "the session's scale is kept");
    cr_expect_float_eq(p.categories[0].log_score,
                       vt_decay_log_score(p.categories[0].value, T0, HALF_LIFE_S), 1e-9);
    cr_expect_eq(p.visitor_sessions, 3);
    cr_expect(p.visitor_linked);
    cr_expect_float_eq(p.visitor_revenue, 80.0 + 25.0, 1e-9,
                       "the other sessions' revenue and this one's");
    /* The session has no gender evidence: half of the visitor's. */
    cr_expect_float_eq(p.gender_log_odds, -1.0, 1e-12);
    cr_expect_eq(p.gender_evidence, 4);
}


Test(visitor_blend, empty_session_starts_from_the_visitor)
{
    struct vt_profile p;
    struct vt_visitor_profile v;

    vt_profile_clear(&p);
    p.exists = true;
    p.last_seen_ms = T0;
    linked_visitor(&v);

    vt_profile_add_visitor(&p, &v, 0.3, HALF_LIFE_S);

    cr_assert_eq(p.n_categories, 2);
    cr_expect_str_eq(p.categories[0].name, "hair");
    cr_expect_float_eq(share(p.categories, p.n_categories, "hair"), 0.75, 1e-9,
                       "the visitor's shares as they are, whatever the weight");
    cr_assert_eq(p.n_tiers, 1);
    cr_expect_str_eq(p.tiers[0].name, "luxury");
}


Test(visitor_blend, unlinked_visitor_adds_nothing)
{
    struct vt_profile p;
    struct vt_visitor_profile v;

    vt_profile_clear(&p);
    p.exists = true;
    p.last_seen_ms = T0;
    put(p.categories, &p.n_categories, "perfume", 6);
    linked_visitor(&v);
    v.linked = false;

    vt_profile_add_visitor(&p, &v, 0.5, HALF_LIFE_S);

    cr_expect_eq(p.n_categories, 1);
    cr_expect_float_eq(p.categories[0].value, 6.0, 1e-12);
    cr_expect(!p.visitor_linked);
    cr_expect_eq(p.visitor_sessions, 4, "a refused session counts itself and the visitor's");
    cr_expect_eq(p.gender_evidence, 0);
}


Test(visitor_blend, gender_evidence_of_other_sessions_is_weighted)
{
    struct vt_profile p;
    struct vt_visitor_profile v;

    vt_profile_clear(&p);
    p.exists = true;
    p.last_seen_ms = T0;
    p.gender_log_odds = 0.6;
    p.gender_evidence = 1;
    vt_visitor_profile_clear(&v);
    v.exists = true;
    v.linked = true;
    v.sessions = 2;
    /* The snapshot contains the other session's 3 interactions with men's products. */
    v.gender_log_odds = -1.8;
    v.gender_evidence = 3;

    vt_profile_add_visitor(&p, &v, 0.5, HALF_LIFE_S);
    cr_expect_float_eq(p.gender_log_odds, 0.6 - 0.9, 1e-12);
    cr_expect_eq(p.gender_evidence, 1 + 2);
}


Test(visitor_blend, full_list_keeps_the_strongest)
{
    struct vt_profile p;
    struct vt_visitor_profile v;
    char name[16];

    vt_profile_clear(&p);
    p.exists = true;
    p.last_seen_ms = T0;
    for (int i = 0; i < VT_PROFILE_TOP_MAX; i++) {
        snprintf(name, sizeof name, "c%d", i);
        put(p.categories, &p.n_categories, name, 1);
    }
    vt_visitor_profile_clear(&v);
    v.linked = true;
    v.sessions = 2;
    put(v.categories, &v.n_categories, "strong", 100);

    vt_profile_add_visitor(&p, &v, 0.5, HALF_LIFE_S);

    cr_assert_eq(p.n_categories, VT_PROFILE_TOP_MAX, "the list stays bounded");
    cr_expect_str_eq(p.categories[0].name, "strong", "it replaced a weaker entry");
    cr_expect_float_eq(share(p.categories, p.n_categories, "strong"),
                       16.0 / (16.0 + 31 * 0.5), 1e-9);
}
