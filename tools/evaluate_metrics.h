/*
 * vitrine-evaluate: accuracy metrics, request latency and the report.
 *
 * HitRate@K is the share of scored steps whose target is among the first K items of the
 * list; MRR@K is the mean of 1/rank over scored steps, counting 0 when the target is not
 * in the first K. Both are also kept separately for targets that no train interaction has
 * ("unseen"), which the static baselines cannot recommend.
 */
#ifndef VITRINE_TOOLS_EVALUATE_METRICS_H
#define VITRINE_TOOLS_EVALUATE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "evaluate_data.h"
#include "evaluate_vitrine.h"

/* List length that the metrics score. */
#define VT_EVAL_K 20

#define VT_EVAL_STRATEGIES_MAX 8

enum vt_eval_method {
    VT_EVAL_METHOD_POPULAR = 0,
    VT_EVAL_METHOD_POPULAR_ONLINE,
    VT_EVAL_METHOD_KNN,
    VT_EVAL_METHOD_KNN_ONLINE,
    VT_EVAL_METHOD_VITRINE,
    VT_EVAL_METHOD_COUNT
};

struct vt_eval_accuracy {
    uint64_t steps;
    uint64_t hits;
    double reciprocal_rank_sum;
    uint64_t unseen_steps; /* steps whose target no train interaction has */
    uint64_t unseen_hits;
    double unseen_reciprocal_rank_sum;
};

/* Request latencies in milliseconds. */
struct vt_eval_latency {
    double *ms;
    size_t n;
    size_t cap;
};

/* Settings and facts of one run that the report states. */
struct vt_eval_run_facts {
    const char *dataset;     /* label in the table */
    const char *input;       /* the input files, as given */
    double test_fraction;    /* < 0 when the cut was given with --test-from */
    size_t knn_window;
    size_t sessions_per_round;
    double train_seconds;    /* replaying the train events into vitrine */
    double test_seconds;     /* the rounds of the test sessions */
    uint64_t produced;       /* events produced to Kafka */
    int64_t time_shift_ms;   /* added to the event times sent to vitrine (--shift-time) */
    struct vt_eval_handled handled; /* vitrine's counts at the end */
};

struct vt_eval_report {
    struct vt_eval_accuracy accuracy[VT_EVAL_METHOD_COUNT];
    bool with_vitrine;
    size_t sessions_scored; /* test sessions with at least one scored step */
    struct vt_eval_latency latency;
    uint64_t requests;
    uint64_t failed_requests;  /* no response, or not 200 with a list; scored as misses */
    uint64_t short_lists;      /* responses with fewer than VT_EVAL_K items */
    uint64_t popular_overlap;  /* items of vitrine's lists also in the static popularity list */
    uint64_t session_items_listed; /* items of vitrine's lists that the session already had */
    struct vt_eval_accuracy vitrine_without_session_items; /* the lists without those items */
    char strategies[VT_EVAL_STRATEGIES_MAX][32];
    uint64_t strategy_counts[VT_EVAL_STRATEGIES_MAX];
    size_t n_strategies;
    uint64_t rounds;
    uint64_t knn_steps_with_neighbors[2]; /* steps where item-KNN, static and online, had
                                             at least one neighbour candidate */
};

const char *vt_eval_method_name(enum vt_eval_method method);

/* 1-based rank of target among the first VT_EVAL_K entries of list[0..n), 0 when absent. */
size_t vt_eval_rank(const uint32_t *list, size_t n, uint32_t target);

void vt_eval_accuracy_add(struct vt_eval_accuracy *a, size_t rank, bool unseen);
double vt_eval_hit_rate(const struct vt_eval_accuracy *a);
double vt_eval_mrr(const struct vt_eval_accuracy *a);

void vt_eval_latency_init(struct vt_eval_latency *l);
void vt_eval_latency_free(struct vt_eval_latency *l);

/* Returns 0, or -1 when out of memory. */
int vt_eval_latency_add(struct vt_eval_latency *l, double ms);

/* Nearest-rank percentile p (0 < p <= 100) of the latencies; sorts them. 0 when empty. */
double vt_eval_latency_percentile(struct vt_eval_latency *l, double p);

void vt_eval_report_init(struct vt_eval_report *r);
void vt_eval_report_free(struct vt_eval_report *r);

/* Count one response's strategy; names past VT_EVAL_STRATEGIES_MAX - 1 count as "other". */
void vt_eval_report_strategy(struct vt_eval_report *r, const char *strategy);

/* The header of the results table (Markdown), two lines. */
void vt_eval_report_table_header(FILE *out);

/* The rows of one data set, one per method; vitrine's only when it was asked. */
void vt_eval_report_table_rows(FILE *out, struct vt_eval_report *r,
                               const struct vt_eval_run_facts *facts);

/* A Markdown section with the split, the data, the targets and vitrine's diagnostics. */
void vt_eval_report_details(FILE *out, struct vt_eval_report *r,
                            const struct vt_eval_run_facts *facts,
                            const struct vt_eval_dataset *d);

#endif
