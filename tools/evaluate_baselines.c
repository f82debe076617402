/*
 * vitrine-evaluate: global popularity and item-KNN (see tools/evaluate_baselines.h).
 */
#include "evaluate_baselines.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>


int vt_eval_model_init(struct vt_eval_model *m, size_t n_items, size_t window)
{
    size_t n = n_items > 0 ? n_items : 1;

    memset(m, 0, sizeof *m);
    m->n_items = n_items;
    m->window = window > 0 ? window : 1;
    m->popularity = calloc(n, sizeof *m->popularity);
    m->sessions = calloc(n, sizeof *m->sessions);
    m->neighbors = calloc(n, sizeof *m->neighbors);
    m->score = calloc(n, sizeof *m->score);
    m->touched = calloc(n, sizeof *m->touched);
    m->mark = calloc(n, sizeof *m->mark);
    if (m->popularity == NULL || m->sessions == NULL || m->neighbors == NULL ||
        m->score == NULL || m->touched == NULL || m->mark == NULL) {
        vt_eval_model_free(m);
        return -1;
    }
    return 0;
}


void vt_eval_model_free(struct vt_eval_model *m)
{
    if (m->neighbors != NULL) {
        for (size_t i = 0; i < m->n_items; i++)
            free(m->neighbors[i].items);
    }
    free(m->popularity);
    free(m->sessions);
    free(m->neighbors);
    free(m->score);
    free(m->touched);
    free(m->mark);
    memset(m, 0, sizeof *m);
}


void vt_eval_session_state_init(struct vt_eval_session_state *st)
{
    memset(st, 0, sizeof *st);
}


void vt_eval_session_state_free(struct vt_eval_session_state *st)
{
    free(st->items);
    free(st->pairs);
    memset(st, 0, sizeof *st);
}


/* ---- learning ------------------------------------------------------------------------ */

/* Add n to co(owner, item). Returns 0, or -1 when out of memory. */
static int neighbor_add(struct vt_eval_neighbors *list, uint32_t item, uint32_t n)
{
    for (uint32_t i = 0; i < list->n; i++) {
        if (list->items[i].item == item) {
            list->items[i].count += n;
            return 0;
        }
    }
    if (list->n == list->cap) {
        uint32_t cap = list->cap > 0 ? list->cap * 2 : 8;
        struct vt_eval_neighbor *items = realloc(list->items, cap * sizeof *items);

        if (items == NULL)
            return -1;
        list->items = items;
        list->cap = cap;
    }
    list->items[list->n].item = item;
    list->items[list->n].count = n;
    list->n++;
    return 0;
}


/* Remember a pair of the session. Returns 1 when new, 0 when counted before, -1 when out
 * of memory. */
static int session_pair_add(struct vt_eval_session_state *st, uint32_t a, uint32_t b)
{
    uint64_t key = a < b ? ((uint64_t)a << 32) | b : ((uint64_t)b << 32) | a;

    for (size_t i = 0; i < st->n_pairs; i++) {
        if (st->pairs[i] == key)
            return 0;
    }
    if (st->n_pairs == st->pairs_cap) {
        size_t cap = st->pairs_cap > 0 ? st->pairs_cap * 2 : 32;
        uint64_t *pairs = realloc(st->pairs, cap * sizeof *pairs);

        if (pairs == NULL)
            return -1;
        st->pairs = pairs;
        st->pairs_cap = cap;
    }
    st->pairs[st->n_pairs++] = key;
    return 1;
}


int vt_eval_model_add(struct vt_eval_model *m, struct vt_eval_session_state *st,
                      uint32_t item)
{
    bool seen = false;
    size_t from;

    if (item >= m->n_items)
        return 0;
    if (st->n > 0 && st->items[st->n - 1] == item)
        return 0;

    for (size_t i = 0; i < st->n && !seen; i++)
        seen = st->items[i] == item;
    m->popularity[item] += 1;
    if (!seen)
        m->sessions[item]++;

    /* Pairs with the previous `window` interactions of the session. */
    from = st->n > m->window ? st->n - m->window : 0;
    for (size_t i = from; i < st->n; i++) {
        uint32_t other = st->items[i];
        int added;

        if (other == item)
            continue;
        added = session_pair_add(st, item, other);
        if (added < 0)
            return -1;
        if (added == 0)
            continue;
        if (neighbor_add(&m->neighbors[item], other, 1) != 0 ||
            neighbor_add(&m->neighbors[other], item, 1) != 0)
            return -1;
    }

    if (st->n == st->cap) {
        size_t cap = st->cap > 0 ? st->cap * 2 : 16;
        uint32_t *items = realloc(st->items, cap * sizeof *items);

        if (items == NULL)
            return -1;
        st->items = items;
        st->cap = cap;
    }
    st->items[st->n++] = item;
    return 0;
}


int vt_eval_model_train(struct vt_eval_model *m, const struct vt_eval_dataset *d)
{
    struct vt_eval_session_state st;
    int rc = 0;

    vt_eval_session_state_init(&st);
    for (size_t i = 0; i < d->session_ids.n && rc == 0; i++) {
        const struct vt_eval_session *s = &d->sessions[i];

        if (s->test)
            continue;
        st.n = 0;
        st.n_pairs = 0;
        for (size_t k = 0; k < s->n_interactions && rc == 0; k++)
            rc = vt_eval_model_add(m, &st, vt_eval_interaction_item(d, s, k));
    }
    vt_eval_session_state_free(&st);
    return rc;
}


double vt_eval_similarity(const struct vt_eval_model *m, uint32_t a, uint32_t b)
{
    const struct vt_eval_neighbors *list;

    if (a >= m->n_items || b >= m->n_items)
        return 0;
    list = &m->neighbors[a];
    for (uint32_t i = 0; i < list->n; i++) {
        if (list->items[i].item == b)
            return list->items[i].count / sqrt((double)m->sessions[a] * m->sessions[b]);
    }
    return 0;
}


/* ---- ranking ------------------------------------------------------------------------- */

/* Start a ranking call: mark the excluded items. */
static void mark_excluded(struct vt_eval_model *m, const uint32_t *exclude, size_t n_exclude)
{
    m->stamp++;
    if (m->stamp == 0) {
        memset(m->mark, 0, m->n_items * sizeof *m->mark);
        m->stamp = 1;
    }
    for (size_t i = 0; i < n_exclude; i++) {
        if (exclude[i] < m->n_items)
            m->mark[exclude[i]] = m->stamp;
    }
}


/* True when item a ranks before item b: higher score, then higher popularity, then the
 * smaller index. */
static bool ranks_before(const struct vt_eval_model *m, const double *score, uint32_t a,
                         uint32_t b)
{
    double sa = score != NULL ? score[a] : 0, sb = score != NULL ? score[b] : 0;

    if (sa != sb)
        return sa > sb;
    if (m->popularity[a] != m->popularity[b])
        return m->popularity[a] > m->popularity[b];
    return a < b;
}


/* Insert item into the sorted list out[0..*n) of at most k entries when it ranks high
 * enough. */
static void top_insert(const struct vt_eval_model *m, const double *score, uint32_t item,
                       uint32_t *out, size_t *n, size_t k)
{
    size_t pos;

    if (*n == k && !ranks_before(m, score, item, out[k - 1]))
        return;
    pos = *n < k ? *n : k - 1;
    while (pos > 0 && ranks_before(m, score, item, out[pos - 1])) {
        out[pos] = out[pos - 1];
        pos--;
    }
    out[pos] = item;
    if (*n < k)
        (*n)++;
}


/* Append popular items that are neither excluded nor in out[0..n) until out has k. */
static size_t fill_popular(struct vt_eval_model *m, uint32_t *out, size_t n, size_t k)
{
    uint32_t extra[VT_EVAL_K_MAX];
    size_t n_extra = 0;
    size_t want = k - n;

    if (want == 0)
        return n;
    for (size_t i = 0; i < n; i++)
        m->mark[out[i]] = m->stamp;
    for (uint32_t item = 0; item < m->n_items; item++) {
        if (m->mark[item] == m->stamp || m->popularity[item] <= 0)
            continue;
        top_insert(m, NULL, item, extra, &n_extra, want);
    }
    memcpy(out + n, extra, n_extra * sizeof *extra);
    return n + n_extra;
}


size_t vt_eval_popular(struct vt_eval_model *m, const uint32_t *exclude, size_t n_exclude,
                       size_t k, uint32_t *out)
{
    if (k > VT_EVAL_K_MAX)
        k = VT_EVAL_K_MAX;
    if (k == 0)
        return 0;
    mark_excluded(m, exclude, n_exclude);
    return fill_popular(m, out, 0, k);
}


size_t vt_eval_knn(struct vt_eval_model *m, const uint32_t *history, size_t n_history,
                   const uint32_t *exclude, size_t n_exclude, size_t k, uint32_t *out,
                   size_t *from_neighbors)
{
    size_t n_touched = 0;
    size_t n = 0;

    if (from_neighbors != NULL)
        *from_neighbors = 0;
    if (k > VT_EVAL_K_MAX)
        k = VT_EVAL_K_MAX;
    if (k == 0)
        return 0;
    mark_excluded(m, exclude, n_exclude);

    /* Newest first, so that a repeated item counts once, at its latest age. */
    for (size_t back = 0; back < n_history; back++) {
        uint32_t x = history[n_history - 1 - back];
        const struct vt_eval_neighbors *list;
        bool repeated = false;
        double weight = 1.0 / (1.0 + (double)back);

        for (size_t later = 0; later < back && !repeated; later++)
            repeated = history[n_history - 1 - later] == x;
        if (repeated || x >= m->n_items || m->sessions[x] == 0)
            continue;

        list = &m->neighbors[x];
        for (uint32_t i = 0; i < list->n; i++) {
            uint32_t c = list->items[i].item;
            double sim = list->items[i].count / sqrt((double)m->sessions[x] * m->sessions[c]);

            if (m->score[c] == 0)
                m->touched[n_touched++] = c;
            m->score[c] += weight * sim;
        }
    }

    for (size_t i = 0; i < n_touched; i++) {
        uint32_t c = m->touched[i];

        if (m->mark[c] != m->stamp)
            top_insert(m, m->score, c, out, &n, k);
    }
    for (size_t i = 0; i < n_touched; i++)
        m->score[m->touched[i]] = 0;
    if (from_neighbors != NULL)
        *from_neighbors = n;
    return fill_popular(m, out, n, k);
}
