/*
 * vitrine-evaluate: the two baselines that vitrine is compared with.
 *
 * Both learn from sessions given one interaction at a time (consecutive repeats already
 * collapsed), so the same code trains them on the train sessions and, in the online
 * variant, keeps updating them with the test interactions as they are replayed.
 *
 *   popularity(i)  number of interactions with item i
 *   sessions(i)    number of sessions that interacted with i
 *   co(i, j)       number of sessions in which i and j occur at most `window` interactions
 *                  apart (each pair counts once per session)
 *   sim(i, j)      co(i, j) / sqrt(sessions(i) * sessions(j)), the cosine similarity of
 *                  the two items' session sets when the window covers whole sessions
 *
 * Global popularity ranks items by popularity. Item-KNN scores a candidate c as
 *
 *   score(c) = sum over the session's distinct items x of sim(x, c) / (1 + a(x))
 *
 * where a(x) is the age of x's latest occurrence in interactions (0 for the current item,
 * 1 for the one before). It fills a short list with popular items. Ties go to the more
 * popular item, then to the item seen first in the input. Neither returns an excluded item
 * or an item with popularity 0, because the model has no data about it.
 *
 * Not thread-safe: a model keeps scratch space for ranking.
 */
#ifndef VITRINE_TOOLS_EVALUATE_BASELINES_H
#define VITRINE_TOOLS_EVALUATE_BASELINES_H

#include <stddef.h>
#include <stdint.h>

#include "evaluate_data.h"

struct vt_eval_neighbor {
    uint32_t item;
    uint32_t count; /* co(owner, item) */
};

struct vt_eval_neighbors {
    struct vt_eval_neighbor *items;
    uint32_t n;
    uint32_t cap;
};

struct vt_eval_model {
    size_t n_items;
    size_t window;
    double *popularity;                 /* [n_items] */
    uint32_t *sessions;                 /* [n_items] */
    struct vt_eval_neighbors *neighbors; /* [n_items] */
    double *score;                      /* [n_items] ranking scratch, 0 between calls */
    uint32_t *touched;                  /* [n_items] items with a score in this call */
    uint32_t *mark;                     /* [n_items] == stamp: excluded in this call */
    uint32_t stamp;
};

/* The interactions and pairs of one session that a model has learnt, so that a later
 * interaction of the same session adds only the sessions(i) counts and pairs that are new. */
struct vt_eval_session_state {
    uint32_t *items; /* interactions in order */
    size_t n;
    size_t cap;
    uint64_t *pairs; /* pairs counted, (smaller item << 32) | larger item */
    size_t n_pairs;
    size_t pairs_cap;
};

/* Returns 0, or -1 when out of memory. window is at least 1. */
int vt_eval_model_init(struct vt_eval_model *m, size_t n_items, size_t window);
void vt_eval_model_free(struct vt_eval_model *m);

void vt_eval_session_state_init(struct vt_eval_session_state *st);
void vt_eval_session_state_free(struct vt_eval_session_state *st);

/* Learn the session's next interaction. An item equal to the session's previous one is
 * ignored, as the data set collapses such repeats. Returns 0, or -1 when out of memory. */
int vt_eval_model_add(struct vt_eval_model *m, struct vt_eval_session_state *st,
                      uint32_t item);

/* Learn every interaction of the train sessions of d. Returns 0, or -1 when out of
 * memory. */
int vt_eval_model_train(struct vt_eval_model *m, const struct vt_eval_dataset *d);

/* Similarity of two items as defined above; 0 when they never co-occurred. */
double vt_eval_similarity(const struct vt_eval_model *m, uint32_t a, uint32_t b);

/* The k (at most VT_EVAL_K_MAX) most popular items that are not in exclude[0..n_exclude),
 * best first. Returns the count written to out. */
size_t vt_eval_popular(struct vt_eval_model *m, const uint32_t *exclude, size_t n_exclude,
                       size_t k, uint32_t *out);

/* Item-KNN: the k best items for a session whose interactions so far are
 * history[0..n_history) (oldest first), leaving out exclude[0..n_exclude). Returns the
 * count written to out; *from_neighbors (when not NULL) receives how many of them came
 * from neighbours rather than from the popular fill. */
size_t vt_eval_knn(struct vt_eval_model *m, const uint32_t *history, size_t n_history,
                   const uint32_t *exclude, size_t n_exclude, size_t k, uint32_t *out,
                   size_t *from_neighbors);

/* Maximum length of the lists that the ranking functions return. */
#define VT_EVAL_K_MAX 100

#endif
