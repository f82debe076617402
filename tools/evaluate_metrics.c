/*
 * vitrine-evaluate: accuracy metrics, request latency and the report (see
 * tools/evaluate_metrics.h).
 */
#include "evaluate_metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "vitrine/util.h"


const char *vt_eval_method_name(enum vt_eval_method method)
{
    switch (method) {
    case VT_EVAL_METHOD_POPULAR:
        return "popularity";
    case VT_EVAL_METHOD_POPULAR_ONLINE:
        return "popularity, online";
    case VT_EVAL_METHOD_KNN:
        return "item-KNN";
    case VT_EVAL_METHOD_KNN_ONLINE:
        return "item-KNN, online";
    case VT_EVAL_METHOD_VITRINE:
        return "vitrine";
    case VT_EVAL_METHOD_COUNT:
        break;
    }
    return "unknown";
}


size_t vt_eval_rank(const uint32_t *list, size_t n, uint32_t target)
{
    size_t limit = n < VT_EVAL_K ? n : VT_EVAL_K;

    for (size_t i = 0; i < limit; i++) {
        if (list[i] == target)
            return i + 1;
    }
    return 0;
}


void vt_eval_accuracy_add(struct vt_eval_accuracy *a, size_t rank, bool unseen)
{
    double reciprocal = rank > 0 ? 1.0 / (double)rank : 0;

    a->steps++;
    a->hits += rank > 0;
    a->reciprocal_rank_sum += reciprocal;
    if (unseen) {
        a->unseen_steps++;
        a->unseen_hits += rank > 0;
        a->unseen_reciprocal_rank_sum += reciprocal;
    }
}


double vt_eval_hit_rate(const struct vt_eval_accuracy *a)
{
    return a->steps > 0 ? (double)a->hits / (double)a->steps : 0;
}


double vt_eval_mrr(const struct vt_eval_accuracy *a)
{
    return a->steps > 0 ? a->reciprocal_rank_sum / (double)a->steps : 0;
}


/* ---- latency ------------------------------------------------------------------------- */

void vt_eval_latency_init(struct vt_eval_latency *l)
{
    memset(l, 0, sizeof *l);
}


void vt_eval_latency_free(struct vt_eval_latency *l)
{
    free(l->ms);
    memset(l, 0, sizeof *l);
}


int vt_eval_latency_add(struct vt_eval_latency *l, double ms)
{
    if (l->n == l->cap) {
        size_t cap = l->cap > 0 ? l->cap * 2 : 1024;
        double *values = realloc(l->ms, cap * sizeof *values);

        if (values == NULL)
            return -1;
        l->ms = values;
        l->cap = cap;
    }
    l->ms[l->n++] = ms;
    return 0;
}


static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}


double vt_eval_latency_percentile(struct vt_eval_latency *l, double p)
{
    size_t rank;

    if (l->n == 0)
        return 0;
    qsort(l->ms, l->n, sizeof *l->ms, compare_doubles);
    rank = (size_t)ceil(p / 100.0 * (double)l->n);
    if (rank < 1)
        rank = 1;
    if (rank > l->n)
        rank = l->n;
    return l->ms[rank - 1];
}


/* ---- the report ---------------------------------------------------------------------- */

void vt_eval_report_init(struct vt_eval_report *r)
{
    memset(r, 0, sizeof *r);
    vt_eval_latency_init(&r->latency);
}


void vt_eval_report_free(struct vt_eval_report *r)
{
    vt_eval_latency_free(&r->latency);
}


static size_t strategy_find(const struct vt_eval_report *r, const char *name)
{
    size_t i = 0;

    while (i < r->n_strategies && strcmp(r->strategies[i], name) != 0)
        i++;
    return i;
}


void vt_eval_report_strategy(struct vt_eval_report *r, const char *strategy)
{
    const char *name = strategy[0] != '\0' ? strategy : "(none)";
    size_t i = strategy_find(r, name);

    /* The last slot is kept for "other". */
    if (i == r->n_strategies && r->n_strategies >= VT_EVAL_STRATEGIES_MAX - 1) {
        name = "other";
        i = strategy_find(r, name);
    }
    if (i == r->n_strategies) {
        vt_strlcpy(r->strategies[i], name, sizeof r->strategies[i]);
        r->n_strategies++;
    }
    r->strategy_counts[i]++;
}


void vt_eval_report_table_header(FILE *out)
{
    fprintf(out, "| data set | method | HitRate@%d | MRR@%d | scored steps | sessions | "
                 "vitrine latency p50 / p99 (ms) |\n",
            VT_EVAL_K, VT_EVAL_K);
    fputs("|---|---|---:|---:|---:|---:|---:|\n", out);
}


void vt_eval_report_table_rows(FILE *out, struct vt_eval_report *r,
                               const struct vt_eval_run_facts *facts)
{
    for (int m = 0; m < VT_EVAL_METHOD_COUNT; m++) {
        const struct vt_eval_accuracy *a = &r->accuracy[m];
        char latency[64] = "";

        if (m == VT_EVAL_METHOD_VITRINE && !r->with_vitrine)
            continue;
        if (m == VT_EVAL_METHOD_VITRINE)
            snprintf(latency, sizeof latency, "%.2f / %.2f",
                     vt_eval_latency_percentile(&r->latency, 50),
                     vt_eval_latency_percentile(&r->latency, 99));
        fprintf(out, "| %s | %s | %.4f | %.4f | %llu | %zu | %s |\n", facts->dataset,
                vt_eval_method_name((enum vt_eval_method)m), vt_eval_hit_rate(a),
                vt_eval_mrr(a), (unsigned long long)a->steps, r->sessions_scored, latency);
    }
}


static double share(uint64_t part, uint64_t whole)
{
    return whole > 0 ? 100.0 * (double)part / (double)whole : 0;
}


/* The hit rates on targets seen in train and on unseen ones. */
static void details_by_target(FILE *out, const struct vt_eval_report *r)
{
    fprintf(out, "| method | HitRate@%d, target seen in train | HitRate@%d, target unseen | "
                 "MRR@%d, seen | MRR@%d, unseen |\n",
            VT_EVAL_K, VT_EVAL_K, VT_EVAL_K, VT_EVAL_K);
    fputs("|---|---:|---:|---:|---:|\n", out);
    for (int m = 0; m < VT_EVAL_METHOD_COUNT; m++) {
        const struct vt_eval_accuracy *a = &r->accuracy[m];
        uint64_t seen_steps = a->steps - a->unseen_steps;
        uint64_t seen_hits = a->hits - a->unseen_hits;
        double seen_rr = a->reciprocal_rank_sum - a->unseen_reciprocal_rank_sum;

        if (m == VT_EVAL_METHOD_VITRINE && !r->with_vitrine)
            continue;
        fprintf(out, "| %s | %.4f | %.4f | %.4f | %.4f |\n",
                vt_eval_method_name((enum vt_eval_method)m),
                seen_steps > 0 ? (double)seen_hits / (double)seen_steps : 0,
                a->unseen_steps > 0 ? (double)a->unseen_hits / (double)a->unseen_steps : 0,
                seen_steps > 0 ? seen_rr / (double)seen_steps : 0,
                a->unseen_steps > 0 ? a->unseen_reciprocal_rank_sum / (double)a->unseen_steps
                                    : 0);
    }
}


static void details_vitrine(FILE *out, struct vt_eval_report *r,
                            const struct vt_eval_run_facts *facts)
{
    const struct vt_eval_handled *h = &facts->handled;
    uint64_t answered = r->requests - r->failed_requests;
    double vitrine = vt_eval_hit_rate(&r->accuracy[VT_EVAL_METHOD_VITRINE]);
    double knn = vt_eval_hit_rate(&r->accuracy[VT_EVAL_METHOD_KNN]);
    double knn_online = vt_eval_hit_rate(&r->accuracy[VT_EVAL_METHOD_KNN_ONLINE]);

    fprintf(out, "- vitrine's HitRate@%d %.4f %s item-KNN's %.4f and %s the online item-KNN's "
                 "%.4f.\n",
            VT_EVAL_K, vitrine, vitrine >= knn ? "reaches" : "is below", knn,
            vitrine >= knn_online ? "reaches" : "is below", knn_online);

    fprintf(out, "- vitrine: %llu events produced to Kafka; vitrine handled %llu records "
                 "(applied %llu, duplicate %llu, skipped %llu, dead-lettered %llu). Train "
                 "replay %.1f s (with the consumer group's start and the pause after it), test "
                 "rounds %.1f s (%llu rounds).\n",
            (unsigned long long)facts->produced, (unsigned long long)h->total,
            (unsigned long long)h->applied, (unsigned long long)h->duplicate,
            (unsigned long long)h->skipped, (unsigned long long)h->dead_letter,
            facts->train_seconds, facts->test_seconds, (unsigned long long)r->rounds);
    if (facts->time_shift_ms != 0)
        fprintf(out, "- event times sent to vitrine were moved %.1f days forward, so that the "
                     "last event of the data set was at the start of the run.\n",
                (double)facts->time_shift_ms / 86400000.0);
    else
        fputs("- event times sent to vitrine are the recorded ones.\n", out);
    fprintf(out, "- vitrine requests: %llu, failed %llu (scored as misses), lists shorter "
                 "than %d: %llu. Latency over all requests (ms): p50 %.2f, p90 %.2f, p99 "
                 "%.2f, max %.2f.\n",
            (unsigned long long)r->requests, (unsigned long long)r->failed_requests, VT_EVAL_K,
            (unsigned long long)r->short_lists, vt_eval_latency_percentile(&r->latency, 50),
            vt_eval_latency_percentile(&r->latency, 90),
            vt_eval_latency_percentile(&r->latency, 99),
            vt_eval_latency_percentile(&r->latency, 100));
    fprintf(out, "- vitrine lists share on average %.1f of their %d items with the static "
                 "popularity list of the same step, and contain on average %.1f items that the "
                 "session already had (the baselines leave those out). Without those items "
                 "the same lists would reach HitRate@%d %.4f and MRR@%d %.4f.\n",
            answered > 0 ? (double)r->popular_overlap / (double)answered : 0, VT_EVAL_K,
            answered > 0 ? (double)r->session_items_listed / (double)answered : 0, VT_EVAL_K,
            vt_eval_hit_rate(&r->vitrine_without_session_items), VT_EVAL_K,
            vt_eval_mrr(&r->vitrine_without_session_items));
    fputs("- vitrine strategies:", out);
    for (size_t i = 0; i < r->n_strategies; i++)
        fprintf(out, "%s %s %llu (%.1f%%)", i > 0 ? "," : "", r->strategies[i],
                (unsigned long long)r->strategy_counts[i],
                share(r->strategy_counts[i], answered));
    fputs(r->n_strategies == 0 ? " none\n" : "\n", out);
}


void vt_eval_report_details(FILE *out, struct vt_eval_report *r,
                            const struct vt_eval_run_facts *facts,
                            const struct vt_eval_dataset *d)
{
    const struct vt_eval_split_stats *st = &d->split;
    char first[40], last[40], cut[40], skipped[512];

    vt_time_format_iso8601(d->min_ms, first, sizeof first);
    vt_time_format_iso8601(d->max_ms, last, sizeof last);
    vt_time_format_iso8601(d->cut_ms, cut, sizeof cut);
    vt_counts_format(&d->skipped, skipped, sizeof skipped);

    fprintf(out, "### %s\n\n", facts->dataset);
    fprintf(out, "- input: %s: %llu rows, %zu events loaded (rows skipped: %s), %zu "
                 "sessions, %zu items, %zu interactions after collapsing repeats.\n",
            facts->input, (unsigned long long)d->rows, d->n_events, skipped,
            d->session_ids.n, d->item_ids.n, d->n_interactions);
    fprintf(out, "- time range %s to %s; ", first, last);
    if (facts->test_fraction >= 0)
        fprintf(out, "test = sessions starting at or after %s, the last %.0f%% of the "
                     "range.\n",
                cut, facts->test_fraction * 100);
    else
        fprintf(out, "test = sessions starting at or after %s (--test-from).\n", cut);
    fprintf(out, "- train: %zu sessions, %zu events (%zu of them at or after the cut). "
                 "Test: %zu sessions, %zu events; %zu sessions have at least 2 "
                 "interactions.\n",
            st->train_sessions, st->train_events, st->train_events_after_cut,
            st->test_sessions, st->test_events, st->test_sessions_scored);
    fprintf(out, "- steps: %zu, of which %zu predict an item the session already had (not "
                 "scored) and %zu are scored. %zu scored targets (%.1f%%) never occur in a "
                 "train interaction, so the static baselines cannot hit them: their "
                 "HitRate@%d is at most %.4f.\n",
            st->steps, st->steps_not_novel, st->steps_scored, st->targets_unseen,
            share(st->targets_unseen, st->steps_scored), VT_EVAL_K,
            st->steps_scored > 0
                ? (double)(st->steps_scored - st->targets_unseen) / (double)st->steps_scored
                : 0);
    fprintf(out, "- item-KNN found at least one neighbour of the session's items in %.1f%% "
                 "of the scored steps (online: %.1f%%); in the others its list is popular "
                 "items only.\n",
            share(r->knn_steps_with_neighbors[0], st->steps_scored),
            share(r->knn_steps_with_neighbors[1], st->steps_scored));
    fprintf(out, "- item-KNN window: %zu interactions. Test sessions replayed %zu at a time "
                 "(a session leaves the window after its last event, and the next one in "
                 "start order takes its place).\n",
            facts->knn_window, facts->sessions_per_round);
    if (r->with_vitrine)
        details_vitrine(out, r, facts);
    fputs("\n", out);
    details_by_target(out, r);
    fputs("\n", out);
}
