/*
 * Unit tests of vitrine-evaluate (tools/evaluate_*.c) on small invented sessions: loading and
 * the time split, the replay plan, the metrics and the two baselines. The last tests cover
 * the Diginetica catalog conversion and the --events-before limit of tools/catalog_rows.c.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog_rows.h"
#include "csv.h"
#include "evaluate_baselines.h"
#include "evaluate_data.h"
#include "evaluate_metrics.h"
#include "vitrine/util.h"

#define COLLECT_MAX 32

/* 2016-05-01T00:00:00Z and 2016-05-02T00:00:00Z in epoch milliseconds. */
#define MAY_1_MS 1462060800000LL
#define MAY_2_MS 1462147200000LL

/* Four recorded sessions: "1" and "2" on May 1, "3" and "4" (one view) on May 2. The rows
 * of "1" are out of order, and "1" views item 10 twice in a row. */
static const char diginetica_text[] =
    "session_id;user_id;item_id;timeframe;eventdate\n"
    "1;NA;11;2000;2016-05-01\n"
    "1;NA;10;1000;2016-05-01\n"
    "1;NA;10;1500;2016-05-01\n"
    "1;NA;12;3000;2016-05-01\n"
    "2;77;10;100;2016-05-01\n"
    "2;77;12;200;2016-05-01\n"
    "3;NA;10;100;2016-05-02\n"
    "3;NA;11;200;2016-05-02\n"
    "3;NA;10;300;2016-05-02\n"
    "3;NA;13;400;2016-05-02\n"
    "4;NA;12;100;2016-05-02\n";


/* A CSV reader over inline text; close both with close_reader. */
static struct vt_csv *open_reader(const char *text, char separator, FILE **in)
{
    struct vt_csv_options options = {.separator = separator};
    struct vt_csv *reader;

    *in = fmemopen((void *)text, strlen(text), "r");
    cr_assert_not_null(*in);
    reader = vt_csv_open(*in, &options);
    cr_assert_not_null(reader);
    return reader;
}


static void close_reader(struct vt_csv *reader, FILE *in)
{
    vt_csv_close(reader);
    fclose(in);
}


static void load_diginetica(struct vt_eval_dataset *d, const char *text)
{
    FILE *in;
    struct vt_csv *reader = open_reader(text, ';', &in);

    vt_eval_dataset_init(d);
    cr_assert_eq(vt_eval_load_diginetica(d, reader, "views.csv"), 0, "%s", d->error);
    close_reader(reader, in);
    cr_assert_eq(vt_eval_dataset_finish(d), 0, "%s", d->error);
}


static void load_rees46(struct vt_eval_dataset *d, const char *text)
{
    FILE *in;
    struct vt_csv *reader = open_reader(text, ',', &in);

    vt_eval_dataset_init(d);
    cr_assert_eq(vt_eval_load_rees46(d, reader, "events.csv"), 0, "%s", d->error);
    close_reader(reader, in);
    cr_assert_eq(vt_eval_dataset_finish(d), 0, "%s", d->error);
}


static uint32_t item(const struct vt_eval_dataset *d, const char *id)
{
    uint32_t index = vt_eval_names_find(&d->item_ids, id, strlen(id));

    cr_assert_neq(index, VT_EVAL_NONE, "item %s not loaded", id);
    return index;
}


static const struct vt_eval_session *session(const struct vt_eval_dataset *d, const char *id)
{
    uint32_t index = vt_eval_names_find(&d->session_ids, id, strlen(id));

    cr_assert_neq(index, VT_EVAL_NONE, "session %s not loaded", id);
    return &d->sessions[index];
}


static uint64_t count_of(const struct vt_counts *counts, const char *name)
{
    for (size_t i = 0; i < counts->n; i++) {
        if (strcmp(counts->names[i], name) == 0)
            return counts->values[i];
    }
    return 0;
}


/* ---- interned names ------------------------------------------------------------------ */

Test(evaluate_names, intern_and_find)
{
    struct vt_eval_names names;
    uint32_t a, b, again;
    char id[16];

    vt_eval_names_init(&names);
    cr_assert_eq(vt_eval_names_intern(&names, "alpha", 5, &a), 0);
    cr_assert_eq(vt_eval_names_intern(&names, "alphabet", 5, &again), 0);
    cr_assert_eq(again, a, "only the first len bytes count");
    cr_assert_eq(vt_eval_names_intern(&names, "beta", 4, &b), 0);
    cr_assert_eq(a, 0);
    cr_assert_eq(b, 1);
    cr_assert_str_eq(vt_eval_names_get(&names, b), "beta");
    cr_assert_eq(vt_eval_names_find(&names, "gamma", 5), VT_EVAL_NONE);
    cr_assert_eq(vt_eval_names_find(&names, "alph", 4), VT_EVAL_NONE);

    /* Enough names to grow the pool and the index several times. */
    for (int i = 0; i < 5000; i++) {
        uint32_t index;

        snprintf(id, sizeof id, "id-%d", i);
        cr_assert_eq(vt_eval_names_intern(&names, id, strlen(id), &index), 0);
        cr_assert_eq(index, (uint32_t)i + 2);
    }
    cr_assert_eq(vt_eval_names_find(&names, "id-4321", 7), 4323);
    cr_assert_eq(vt_eval_names_find(&names, "beta", 4), 1);
    vt_eval_names_free(&names);
}


/* ---- loading and the split ----------------------------------------------------------- */

Test(evaluate_data, diginetica_order_and_collapse)
{
    struct vt_eval_dataset d;
    const struct vt_eval_session *s;

    load_diginetica(&d, diginetica_text);
    cr_assert_eq(d.n_events, 11);
    cr_assert_eq(d.session_ids.n, 4);
    cr_assert_eq(d.item_ids.n, 4);

    s = session(&d, "1");
    cr_assert_eq(s->n_events, 4);
    cr_assert_eq(s->start_ms, MAY_1_MS + 1000, "the start is the earliest event");
    cr_assert_eq(d.events[s->first_event].item, item(&d, "10"), "ordered by timeframe");
    cr_assert_eq(d.events[s->first_event + 2].item, item(&d, "11"));
    cr_assert_eq(s->n_interactions, 3, "the repeat of item 10 is collapsed");
    cr_assert_eq(vt_eval_interaction_item(&d, s, 0), item(&d, "10"));
    cr_assert_eq(vt_eval_interaction_item(&d, s, 1), item(&d, "11"));
    cr_assert_eq(vt_eval_interaction_item(&d, s, 2), item(&d, "12"));

    s = session(&d, "3");
    cr_assert_eq(s->n_interactions, 4, "a repeat that is not consecutive stays");
    cr_assert_eq(d.events[s->first_event].user, VT_EVAL_NONE, "NA is no user");
    cr_assert_eq(d.events[session(&d, "2")->first_event].user, 0);
    cr_assert_eq(d.min_ms, MAY_1_MS + 100);
    cr_assert_eq(d.max_ms, MAY_2_MS + 400);
    vt_eval_dataset_free(&d);
}


Test(evaluate_data, diginetica_invalid_rows)
{
    static const char text[] = "session_id;user_id;item_id;timeframe;eventdate\n"
                               "1;NA;10;100;2016-05-01\n"
                               "1;NA;11;abc;2016-05-01\n"
                               "1;NA;11;100;2016-13-01\n"
                               "1;NA;;100;2016-05-01\n"
                               "s{1};NA;11;100;2016-05-01\n"
                               ";NA;11;100;2016-05-01\n";
    struct vt_eval_dataset d;

    load_diginetica(&d, text);
    cr_assert_eq(d.rows, 6);
    cr_assert_eq(d.n_events, 1);
    cr_assert_eq(count_of(&d.skipped, "invalid_time"), 2);
    cr_assert_eq(count_of(&d.skipped, "missing_item"), 1);
    cr_assert_eq(count_of(&d.skipped, "invalid_session"), 1);
    cr_assert_eq(count_of(&d.skipped, "missing_session"), 1);
    vt_eval_dataset_free(&d);
}


Test(evaluate_data, diginetica_missing_column)
{
    static const char text[] = "session_id;user_id;item_id;eventdate\n1;NA;10;2016-05-01\n";
    struct vt_eval_dataset d;
    FILE *in;
    struct vt_csv *reader = open_reader(text, ';', &in);

    vt_eval_dataset_init(&d);
    cr_assert_eq(vt_eval_load_diginetica(&d, reader, "views.csv"), -1);
    cr_assert(strstr(d.error, "timeframe") != NULL, "%s", d.error);
    close_reader(reader, in);
    vt_eval_dataset_free(&d);
}


Test(evaluate_data, empty_input_fails)
{
    static const char text[] = "session_id;user_id;item_id;timeframe;eventdate\n";
    struct vt_eval_dataset d;
    FILE *in;
    struct vt_csv *reader = open_reader(text, ';', &in);

    vt_eval_dataset_init(&d);
    cr_assert_eq(vt_eval_load_diginetica(&d, reader, "views.csv"), 0);
    close_reader(reader, in);
    cr_assert_eq(vt_eval_dataset_finish(&d), -1);
    cr_assert(strstr(d.error, "no usable event") != NULL, "%s", d.error);
    vt_eval_dataset_free(&d);
}


Test(evaluate_data, rees46_kinds_and_interactions)
{
    static const char text[] =
        "event_time,event_type,product_id,price,user_id,user_session\n"
        "2022-10-01 00:00:01 UTC,view,5,2.50,7,a\n"
        "2022-10-01 00:00:02 UTC,cart,5,2.50,7,a\n"          /* repeat of 5: collapsed */
        "2022-10-01 00:00:03 UTC,remove_from_cart,5,2.50,7,a\n"
        "2022-10-01 00:00:03 UTC,cart,6,1.00,7,a\n"          /* same second: file order */
        "2022-10-01 00:00:04 UTC,purchase,6,1.00,7,a\n"
        "2022-10-01 00:00:05 UTC,wishlist,6,1.00,7,a\n"
        "2022-10-01 00:00:06 UTC,view,5,,7,a\n";
    struct vt_eval_dataset d;
    const struct vt_eval_session *s;

    load_rees46(&d, text);
    cr_assert_eq(d.n_events, 6);
    cr_assert_eq(count_of(&d.skipped, "unknown_event_type"), 1);
    s = session(&d, "a");
    cr_assert_eq(d.events[s->first_event + 2].kind, VT_EVAL_REMOVE);
    cr_assert_eq(d.events[s->first_event + 3].kind, VT_EVAL_CART);
    cr_assert_eq(d.events[s->first_event + 4].kind, VT_EVAL_PURCHASE);
    cr_assert_float_eq(d.events[s->first_event].price, 2.5, 1e-9);
    cr_assert(d.events[s->first_event + 5].price < 0, "an empty price is unknown");

    cr_assert_eq(s->n_interactions, 3, "views and carts only, repeats collapsed");
    cr_assert_eq(vt_eval_interaction_item(&d, s, 0), item(&d, "5"));
    cr_assert_eq(vt_eval_interaction_item(&d, s, 1), item(&d, "6"));
    cr_assert_eq(vt_eval_interaction_item(&d, s, 2), item(&d, "5"));
    vt_eval_dataset_free(&d);
}


Test(evaluate_data, split_by_fraction)
{
    struct vt_eval_dataset d;
    int64_t cut;

    load_diginetica(&d, diginetica_text);
    cut = vt_eval_cut_for_fraction(&d, 0.5);
    cr_assert_eq(cut, d.max_ms - (d.max_ms - d.min_ms) / 2);
    cr_assert_eq(vt_eval_dataset_split(&d, cut), 0);

    cr_assert_not(session(&d, "1")->test);
    cr_assert_not(session(&d, "2")->test);
    cr_assert(session(&d, "3")->test);
    cr_assert(session(&d, "4")->test);
    cr_assert_eq(d.split.train_sessions, 2);
    cr_assert_eq(d.split.test_sessions, 2);
    cr_assert_eq(d.split.train_events, 6);
    cr_assert_eq(d.split.test_events, 5);
    cr_assert(d.item_in_train[item(&d, "10")]);
    cr_assert_not(d.item_in_train[item(&d, "13")]);
    vt_eval_dataset_free(&d);
}


Test(evaluate_data, split_steps_and_unseen_targets)
{
    struct vt_eval_dataset d;
    const struct vt_eval_session *s;

    load_diginetica(&d, diginetica_text);
    cr_assert_eq(vt_eval_dataset_split(&d, MAY_2_MS), 0);
    s = session(&d, "3");

    /* The items of "3" are 10, 11, 10, 13. Step 1 predicts 10, seen before, so it is not
     * scored. */
    cr_assert(vt_eval_step_novel(&d, s, 0));
    cr_assert_not(vt_eval_step_novel(&d, s, 1));
    cr_assert(vt_eval_step_novel(&d, s, 2));
    cr_assert_eq(d.split.test_sessions_scored, 1, "session 4 has one interaction");
    cr_assert_eq(d.split.steps, 3);
    cr_assert_eq(d.split.steps_not_novel, 1);
    cr_assert_eq(d.split.steps_scored, 2);
    cr_assert_eq(d.split.targets_unseen, 1, "item 13 has no train interaction");
    vt_eval_dataset_free(&d);
}


Test(evaluate_data, split_counts_train_events_after_cut)
{
    struct vt_eval_dataset d;

    load_diginetica(&d, diginetica_text);
    /* The views of "1" are 1000 to 3000 ms after midnight. */
    cr_assert_eq(vt_eval_dataset_split(&d, MAY_1_MS + 1200), 0);
    cr_assert_not(session(&d, "1")->test);
    cr_assert_eq(d.split.train_events_after_cut, 3);
    vt_eval_dataset_free(&d);
}


Test(evaluate_data, chunks_end_before_next_interaction)
{
    static const char text[] =
        "event_time,event_type,product_id,price,user_id,user_session\n"
        "2022-10-01 00:00:01 UTC,purchase,9,1.00,7,a\n"
        "2022-10-01 00:00:02 UTC,view,5,1.00,7,a\n"
        "2022-10-01 00:00:03 UTC,cart,5,1.00,7,a\n"
        "2022-10-01 00:00:04 UTC,remove_from_cart,5,1.00,7,a\n"
        "2022-10-01 00:00:05 UTC,view,6,1.00,7,a\n"
        "2022-10-01 00:00:06 UTC,purchase,6,1.00,7,a\n"
        "2022-10-01 00:00:01 UTC,purchase,9,1.00,7,b\n";
    struct vt_eval_dataset d;
    const struct vt_eval_session *s;

    load_rees46(&d, text);
    s = session(&d, "a");
    cr_assert_eq(vt_eval_chunk_count(s), 2);
    cr_assert_eq(vt_eval_chunk_end(&d, s, 0), s->first_event + 4,
                 "chunk 0: the purchase before, the view, cart and removal of 5");
    cr_assert_eq(vt_eval_chunk_end(&d, s, 1), s->first_event + 6, "the last chunk ends the "
                                                                   "session");

    s = session(&d, "b");
    cr_assert_eq(s->n_interactions, 0);
    cr_assert_eq(vt_eval_chunk_count(s), 1, "a session without interactions has one chunk");
    cr_assert_eq(vt_eval_chunk_end(&d, s, 0), s->first_event + 1);
    vt_eval_dataset_free(&d);
}


/* ---- metrics ------------------------------------------------------------------------- */

Test(evaluate_metrics, rank_within_cutoff)
{
    uint32_t list[VT_EVAL_K + 5];

    for (uint32_t i = 0; i < VT_EVAL_K + 5; i++)
        list[i] = 100 + i;
    cr_assert_eq(vt_eval_rank(list, VT_EVAL_K + 5, 100), 1);
    cr_assert_eq(vt_eval_rank(list, VT_EVAL_K + 5, 100 + VT_EVAL_K - 1), VT_EVAL_K);
    cr_assert_eq(vt_eval_rank(list, VT_EVAL_K + 5, 100 + VT_EVAL_K), 0, "past the cutoff");
    cr_assert_eq(vt_eval_rank(list, 3, 104), 0, "past the list");
    cr_assert_eq(vt_eval_rank(list, 0, 100), 0);
}


Test(evaluate_metrics, hit_rate_and_mrr)
{
    struct vt_eval_accuracy a = {0};

    cr_assert_float_eq(vt_eval_hit_rate(&a), 0, 1e-12, "no step gives 0");
    cr_assert_float_eq(vt_eval_mrr(&a), 0, 1e-12);
    vt_eval_accuracy_add(&a, 1, false);
    vt_eval_accuracy_add(&a, 4, true);
    vt_eval_accuracy_add(&a, 0, true);
    vt_eval_accuracy_add(&a, 0, false);

    cr_assert_eq(a.steps, 4);
    cr_assert_eq(a.hits, 2);
    cr_assert_float_eq(vt_eval_hit_rate(&a), 0.5, 1e-12);
    cr_assert_float_eq(vt_eval_mrr(&a), (1.0 + 0.25) / 4, 1e-12);
    cr_assert_eq(a.unseen_steps, 2);
    cr_assert_eq(a.unseen_hits, 1);
    cr_assert_float_eq(a.unseen_reciprocal_rank_sum, 0.25, 1e-12);
}


Test(evaluate_metrics, latency_percentiles)
{
    struct vt_eval_latency l;

    vt_eval_latency_init(&l);
    cr_assert_float_eq(vt_eval_latency_percentile(&l, 50), 0, 1e-12);
    for (int i = 100; i >= 1; i--)
        cr_assert_eq(vt_eval_latency_add(&l, i / 10.0), 0);
    cr_assert_float_eq(vt_eval_latency_percentile(&l, 50), 5.0, 1e-12);
    cr_assert_float_eq(vt_eval_latency_percentile(&l, 99), 9.9, 1e-12);
    cr_assert_float_eq(vt_eval_latency_percentile(&l, 100), 10.0, 1e-12);
    cr_assert_float_eq(vt_eval_latency_percentile(&l, 0.1), 0.1, 1e-12);
    vt_eval_latency_free(&l);
}


Test(evaluate_metrics, strategies_overflow_into_other)
{
    struct vt_eval_report r;
    char name[16];

    vt_eval_report_init(&r);
    for (int i = 0; i < VT_EVAL_STRATEGIES_MAX + 3; i++) {
        snprintf(name, sizeof name, "s%d", i);
        vt_eval_report_strategy(&r, name);
    }
    vt_eval_report_strategy(&r, "s0");
    vt_eval_report_strategy(&r, "");
    cr_assert_eq(r.n_strategies, VT_EVAL_STRATEGIES_MAX);
    cr_assert_str_eq(r.strategies[0], "s0");
    cr_assert_eq(r.strategy_counts[0], 2);
    cr_assert_str_eq(r.strategies[VT_EVAL_STRATEGIES_MAX - 1], "other");
    cr_assert_eq(r.strategy_counts[VT_EVAL_STRATEGIES_MAX - 1], 5,
                 "four names past the table and the empty strategy");
    vt_eval_report_free(&r);
}


/* ---- baselines ----------------------------------------------------------------------- */

/* Train a model of n_items on sessions given as item lists ending in UINT32_MAX. */
static void train_sessions(struct vt_eval_model *m, size_t n_items, size_t window,
                           const uint32_t *const *sessions, size_t n_sessions)
{
    cr_assert_eq(vt_eval_model_init(m, n_items, window), 0);
    for (size_t i = 0; i < n_sessions; i++) {
        struct vt_eval_session_state st;

        vt_eval_session_state_init(&st);
        for (const uint32_t *p = sessions[i]; *p != UINT32_MAX; p++)
            cr_assert_eq(vt_eval_model_add(m, &st, *p), 0);
        vt_eval_session_state_free(&st);
    }
}


Test(evaluate_baselines, popularity_counts_and_order)
{
    static const uint32_t s1[] = {0, 1, 1, 2, UINT32_MAX};
    static const uint32_t s2[] = {2, 3, 2, UINT32_MAX};
    static const uint32_t *const sessions[] = {s1, s2};
    struct vt_eval_model m;
    uint32_t out[VT_EVAL_K_MAX];
    uint32_t exclude[] = {2};

    train_sessions(&m, 5, 5, sessions, 2);
    cr_assert_float_eq(m.popularity[1], 1, 1e-12, "a consecutive repeat is ignored");
    cr_assert_float_eq(m.popularity[2], 3, 1e-12);
    cr_assert_eq(m.sessions[2], 2, "sessions count once per session");

    cr_assert_eq(vt_eval_popular(&m, NULL, 0, 20, out), 4, "item 4 has no interaction");
    cr_assert_eq(out[0], 2);
    cr_assert_eq(out[1], 0, "ties go to the smaller index");
    cr_assert_eq(out[2], 1);
    cr_assert_eq(out[3], 3);

    cr_assert_eq(vt_eval_popular(&m, exclude, 1, 2, out), 2);
    cr_assert_eq(out[0], 0);
    cr_assert_eq(out[1], 1);
    cr_assert_eq(vt_eval_popular(&m, NULL, 0, 0, out), 0);
    vt_eval_model_free(&m);
}


Test(evaluate_baselines, cooccurrence_window_and_similarity)
{
    static const uint32_t s1[] = {0, 1, 2, 0, 1, UINT32_MAX}; /* pair 0-1 twice, counted once */
    static const uint32_t s2[] = {0, 1, UINT32_MAX};
    static const uint32_t s3[] = {1, 3, UINT32_MAX};
    static const uint32_t *const sessions[] = {s1, s2, s3};
    struct vt_eval_model m;

    train_sessions(&m, 4, 1, sessions, 3);
    cr_assert_eq(m.sessions[0], 2);
    cr_assert_eq(m.sessions[1], 3);
    cr_assert_float_eq(vt_eval_similarity(&m, 0, 1), 2 / sqrt(2.0 * 3.0), 1e-12);
    cr_assert_float_eq(vt_eval_similarity(&m, 1, 0), vt_eval_similarity(&m, 0, 1), 1e-12);
    cr_assert_float_eq(vt_eval_similarity(&m, 1, 2), 1 / sqrt(3.0 * 1.0), 1e-12);
    cr_assert_float_eq(vt_eval_similarity(&m, 2, 0), 1 / sqrt(1.0 * 2.0), 1e-12,
                       "2 and the second 0 are neighbours");
    cr_assert_float_eq(vt_eval_similarity(&m, 0, 3), 0, 1e-12);
    vt_eval_model_free(&m);

    /* With window 1, items two apart never pair. */
    static const uint32_t far[] = {0, 1, 2, UINT32_MAX};
    static const uint32_t *const one[] = {far};
    train_sessions(&m, 4, 1, one, 1);
    cr_assert_float_eq(vt_eval_similarity(&m, 0, 2), 0, 1e-12);
    vt_eval_model_free(&m);
    train_sessions(&m, 4, 2, one, 1);
    cr_assert_float_eq(vt_eval_similarity(&m, 0, 2), 1, 1e-12);
    vt_eval_model_free(&m);
}


Test(evaluate_baselines, knn_weights_recent_items)
{
    /* Item 0 pairs with 2, item 1 pairs with 3, with equal similarity; 4 is popular. */
    static const uint32_t s1[] = {0, 2, UINT32_MAX};
    static const uint32_t s2[] = {1, 3, UINT32_MAX};
    static const uint32_t s3[] = {4, UINT32_MAX};
    static const uint32_t s4[] = {4, UINT32_MAX};
    static const uint32_t s5[] = {4, UINT32_MAX};
    static const uint32_t *const sessions[] = {s1, s2, s3, s4, s5};
    struct vt_eval_model m;
    uint32_t history[] = {0, 1};
    uint32_t out[VT_EVAL_K_MAX];
    size_t n, from_neighbors;

    train_sessions(&m, 6, 5, sessions, 5);
    n = vt_eval_knn(&m, history, 2, history, 2, 20, out, &from_neighbors);
    cr_assert_eq(n, 3, "two neighbours and the popular item 4; item 5 is unknown");
    cr_assert_eq(from_neighbors, 2);
    cr_assert_eq(out[0], 3, "the neighbour of the current item first");
    cr_assert_eq(out[1], 2);
    cr_assert_eq(out[2], 4, "filled with popular items");

    /* Item 0 seen again last: it is the current item, and 1 is one interaction old. */
    uint32_t again[] = {0, 1, 0};
    n = vt_eval_knn(&m, again, 3, again, 3, 20, out, NULL);
    cr_assert_eq(n, 3);
    cr_assert_eq(out[0], 2);
    cr_assert_eq(out[1], 3);

    /* The excluded neighbour is left out, the scratch scores are reset between calls. */
    uint32_t exclude[] = {0, 1, 3};
    n = vt_eval_knn(&m, history, 2, exclude, 3, 20, out, &from_neighbors);
    cr_assert_eq(n, 2);
    cr_assert_eq(from_neighbors, 1);
    cr_assert_eq(out[0], 2);
    cr_assert_eq(out[1], 4);
    for (size_t i = 0; i < 6; i++)
        cr_assert_float_eq(m.score[i], 0, 1e-12);
    vt_eval_model_free(&m);
}


Test(evaluate_baselines, knn_scores_sum_over_history)
{
    /* Candidate 3 is a neighbour of both 0 and the current item 1; candidate 2 only of 1,
     * but with a higher similarity: sim(1, 2) = 0.71, sim(1, 3) = 0.41, sim(0, 3) = 0.82. */
    static const uint32_t s1[] = {0, 3, UINT32_MAX};
    static const uint32_t s2[] = {0, 3, UINT32_MAX};
    static const uint32_t s3[] = {1, 3, UINT32_MAX};
    static const uint32_t s4[] = {1, 2, UINT32_MAX};
    static const uint32_t *const sessions[] = {s1, s2, s3, s4};
    struct vt_eval_model m;
    uint32_t history[] = {0, 1};
    uint32_t out[VT_EVAL_K_MAX];
    double score2, score3;

    train_sessions(&m, 4, 5, sessions, 4);
    score2 = vt_eval_similarity(&m, 1, 2);
    score3 = vt_eval_similarity(&m, 1, 3) + vt_eval_similarity(&m, 0, 3) / 2;
    cr_assert(vt_eval_similarity(&m, 1, 2) > vt_eval_similarity(&m, 1, 3));
    cr_assert(score3 > score2, "%f %f", score3, score2);
    cr_assert_eq(vt_eval_knn(&m, history, 2, history, 2, 2, out, NULL), 2);
    cr_assert_eq(out[0], 3);
    cr_assert_eq(out[1], 2);
    vt_eval_model_free(&m);
}


Test(evaluate_baselines, session_state_is_per_session)
{
    struct vt_eval_model m;
    struct vt_eval_session_state first, second;

    cr_assert_eq(vt_eval_model_init(&m, 3, 5), 0);
    vt_eval_session_state_init(&first);
    vt_eval_session_state_init(&second);

    /* Two sessions learnt interleaved, as the online variant learns test sessions. */
    cr_assert_eq(vt_eval_model_add(&m, &first, 0), 0);
    cr_assert_eq(vt_eval_model_add(&m, &second, 0), 0);
    cr_assert_eq(vt_eval_model_add(&m, &first, 1), 0);
    cr_assert_eq(vt_eval_model_add(&m, &second, 1), 0);
    cr_assert_eq(vt_eval_model_add(&m, &first, 0), 0);
    cr_assert_eq(vt_eval_model_add(&m, &first, 7), 0, "an unknown item is ignored");

    cr_assert_eq(m.sessions[0], 2);
    cr_assert_eq(m.sessions[1], 2);
    cr_assert_float_eq(m.popularity[0], 3, 1e-12);
    cr_assert_float_eq(vt_eval_similarity(&m, 0, 1), 2 / sqrt(2.0 * 2.0), 1e-12,
                       "the pair counts once per session");
    cr_assert_eq(first.n, 3);
    cr_assert_eq(second.n, 2);
    vt_eval_session_state_free(&first);
    vt_eval_session_state_free(&second);
    vt_eval_model_free(&m);
}


Test(evaluate_baselines, train_uses_train_sessions_only)
{
    struct vt_eval_dataset d;
    struct vt_eval_model m;

    load_diginetica(&d, diginetica_text);
    cr_assert_eq(vt_eval_dataset_split(&d, MAY_2_MS), 0);
    cr_assert_eq(vt_eval_model_init(&m, d.item_ids.n, 5), 0);
    cr_assert_eq(vt_eval_model_train(&m, &d), 0);
    cr_assert_float_eq(m.popularity[item(&d, "10")], 2, 1e-12);
    cr_assert_float_eq(m.popularity[item(&d, "12")], 2, 1e-12);
    cr_assert_float_eq(m.popularity[item(&d, "13")], 0, 1e-12, "13 is only in a test session");
    cr_assert_float_eq(vt_eval_similarity(&m, item(&d, "10"), item(&d, "12")),
                       2 / sqrt(2.0 * 2.0), 1e-12);
    vt_eval_model_free(&m);
    vt_eval_dataset_free(&d);
}


/* ---- catalog conversion -------------------------------------------------------------- */

struct collected {
    struct vt_catalog_entry entries[COLLECT_MAX];
    size_t n;
};


static int collect_entry(const struct vt_catalog_entry *entry, void *arg)
{
    struct collected *c = arg;

    if (c->n < COLLECT_MAX)
        c->entries[c->n++] = *entry;
    return 0;
}


Test(catalog_diginetica, time_of_a_row)
{
    int64_t ms;

    cr_assert_eq(vt_diginetica_time("2016-05-01", 10, "1500", 4, &ms), 0);
    cr_assert_eq(ms, MAY_1_MS + 1500);
    cr_assert_eq(vt_diginetica_time("2016-05-01", 10, "-1", 2, &ms), -1);
    cr_assert_eq(vt_diginetica_time("2016-5-1", 8, "1", 1, &ms), -1);
    cr_assert_eq(vt_diginetica_time("2016-02-30", 10, "1", 1, &ms), -1);
    cr_assert_eq(vt_diginetica_time("2016-05-01", 10, "", 0, &ms), -1);
    cr_assert_eq(vt_diginetica_time("2016-05-01", 10, "1000000000001", 13, &ms), -1);
}


Test(catalog_diginetica, products_and_popularity_before_cut)
{
    struct collected got = {0};
    struct vt_convert_ctx ctx;
    struct vt_convert_stats stats = {.source = "diginetica"};
    FILE *in;
    struct vt_csv *reader = open_reader(diginetica_text, ';', &in);

    vt_convert_ctx_init(&ctx, collect_entry, &got);
    cr_assert_eq(vt_convert_diginetica(reader, "views.csv", MAY_2_MS, &ctx, &stats), 0, "%s",
                 ctx.error);
    close_reader(reader, in);

    cr_assert_eq(got.n, 4, "one product per item id");
    cr_assert_str_eq(got.entries[0].id, "11", "in the order of first rows");
    cr_assert_str_eq(got.entries[1].id, "10");
    cr_assert_str_eq(got.entries[2].id, "12");
    cr_assert_str_eq(got.entries[3].id, "13");
    cr_assert_float_eq(got.entries[1].popularity, 3, 1e-12, "views of 10 before May 2");
    cr_assert_float_eq(got.entries[2].popularity, 2, 1e-12);
    cr_assert(got.entries[3].popularity < 0, "13 is only viewed after the cut");
    cr_assert_str_eq(got.entries[3].brand, "");
    cr_assert_eq(got.entries[3].n_categories, 0);
    cr_assert_eq(stats.rows, 11);
    cr_assert_eq(stats.written, 4);
    cr_assert_eq(stats.event_rows_used, 6);
    cr_assert_eq(count_of(&stats.event_skipped, "after_cut"), 5);
    vt_convert_ctx_free(&ctx);
}


Test(catalog_diginetica, missing_column_is_input_error)
{
    static const char text[] = "session_id;user_id;item_id;eventdate\n1;NA;10;2016-05-01\n";
    struct collected got = {0};
    struct vt_convert_ctx ctx;
    struct vt_convert_stats stats = {.source = "diginetica"};
    FILE *in;
    struct vt_csv *reader = open_reader(text, ';', &in);

    vt_convert_ctx_init(&ctx, collect_entry, &got);
    cr_assert_eq(vt_convert_diginetica(reader, "views.csv", INT64_MAX, &ctx, &stats), -1);
    cr_assert(ctx.input_invalid);
    cr_assert(strstr(ctx.error, "timeframe") != NULL, "%s", ctx.error);
    close_reader(reader, in);
    vt_convert_ctx_free(&ctx);
}


Test(catalog_rees46, events_before_limit_price_and_popularity)
{
    static const char items[] = "product_id,category_id,category_code,brand\n"
                                "1,,,a\n"
                                "2,,,b\n";
    static const char events[] =
        "event_time,event_type,product_id,price,user_id,user_session\n"
        "2022-10-01 00:00:10 UTC,view,1,2.50,7,s1\n"
        "2022-10-01 00:00:20 UTC,cart,1,3.00,7,s1\n"
        "2022-10-01 00:01:00 UTC,purchase,1,9.99,7,s1\n"
        "2022-10-01 00:01:00 UTC,view,2,4.00,8,s2\n";
    struct collected got = {0};
    struct vt_convert_ctx ctx;
    struct vt_convert_stats stats = {.source = "rees46"};
    struct vt_rees46 *catalog = vt_rees46_new();
    struct vt_csv *reader;
    FILE *in;
    int64_t cut;

    cr_assert_not_null(catalog);
    cr_assert_eq(vt_time_parse_iso8601("2022-10-01T00:01:00Z", 20, &cut), 0);
    vt_convert_ctx_init(&ctx, collect_entry, &got);
    vt_rees46_set_events_before(catalog, cut);
    reader = open_reader(items, ',', &in);
    cr_assert_eq(vt_rees46_add_items(catalog, reader, "item.csv", &ctx, &stats), 0);
    close_reader(reader, in);
    reader = open_reader(events, ',', &in);
    cr_assert_eq(vt_rees46_add_events(catalog, reader, "events.csv", &ctx, &stats), 0);
    close_reader(reader, in);
    cr_assert_eq(vt_rees46_emit(catalog, &ctx, &stats), 0);
    vt_rees46_free(catalog);

    cr_assert_eq(got.n, 2);
    cr_assert_float_eq(got.entries[0].price, 3.00, 1e-9, "the purchase at the cut is left out");
    cr_assert_float_eq(got.entries[0].popularity, 1 + 3, 1e-9);
    cr_assert(got.entries[1].price < 0, "product 2 has only an event at the cut");
    cr_assert(got.entries[1].popularity < 0);
    cr_assert_eq(count_of(&stats.event_skipped, "after_cut"), 2);
    vt_convert_ctx_free(&ctx);
}
