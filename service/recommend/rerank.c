/*
 * vitrine: personal order of a page's products (vt_rerank, see
 * include/vitrine/recommend.h and docs/recommendations.md, "Rerank").
 *
 * The score is the recommendation score without the popularity term: profile affinities,
 * neighbours of the recent views, the gender, recent-view and rotation factors and the
 * boost rules in the "rerank" scope. A product without affinity or relation to the
 * profile scores 0, so a cold session keeps the page's order. Products out of stock or matched by a filter
 * rule go after the others, and ids the catalog does not know go last.
 */
#include "recommend_internal.h"

#include <string.h>

/* Rank groups, kept in the top two bits of `input` while sorting (see group_of_item). */
enum rerank_group { GROUP_SERVABLE = 0, GROUP_DEMOTED = 1, GROUP_UNKNOWN = 2 };

#define GROUP_SHIFT (sizeof(size_t) * 8 - 2)
#define INPUT_MASK (((size_t)1 << GROUP_SHIFT) - 1)

/* The sort compares (group, score, input). Storing the group in the two spare top bits of
 * `input` keeps the sort free of a side array whose size would depend on n. */
static unsigned group_of_item(const struct vt_rerank_item *item)
{
    return (unsigned)(item->input >> GROUP_SHIFT);
}


static bool item_before(const struct vt_rerank_item *a, const struct vt_rerank_item *b)
{
    unsigned ga = group_of_item(a), gb = group_of_item(b);

    if (ga != gb)
        return ga < gb;
    if (a->score != b->score)
        return a->score > b->score;
    return (a->input & INPUT_MASK) < (b->input & INPUT_MASK);
}


static void sift_down(struct vt_rerank_item *items, size_t n, size_t i)
{
    for (;;) {
        size_t last = i;
        size_t left = 2 * i + 1;
        size_t right = left + 1;

        /* A max-heap under "ranks after", so that the heap sort leaves the best first. */
        if (left < n && item_before(&items[last], &items[left]))
            last = left;
        if (right < n && item_before(&items[last], &items[right]))
            last = right;
        if (last == i)
            return;

        struct vt_rerank_item swap = items[i];
        items[i] = items[last];
        items[last] = swap;
        i = last;
    }
}


/* Heap sort: no allocation, O(n log n). The order is total because inputs differ, so the
 * result is the same as a stable sort's. */
static void sort_items(struct vt_rerank_item *items, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        sift_down(items, n, i);
    for (size_t end = n; end > 1; end--) {
        struct vt_rerank_item swap = items[0];
        items[0] = items[end - 1];
        items[end - 1] = swap;
        sift_down(items, end - 1, 0);
    }
}


static double score_of(struct rec_context *ctx, struct rec_candidates *cs, uint32_t product)
{
    struct rec_candidate *found = rec_candidates_find(cs, product);
    struct rec_candidate c;

    if (found != NULL)
        return found->score;

    /* The table was full: score without neighbour relations. */
    memset(&c, 0, sizeof c);
    c.product = product;
    c.via = VT_CATALOG_NONE;
    rec_score(ctx, &c);
    return c.score;
}


void vt_rerank(const struct vt_world *w, const struct vt_config *cfg,
               const struct vt_rules *rules, const struct vt_profile *p,
               const uint32_t *products, size_t n, struct vt_rerank_item *out)
{
    struct rec_context ctx;
    struct rec_candidates cs;
    size_t size = w != NULL ? vt_catalog_size(w->catalog) : 0;

    if (n == 0)
        return;
    if (size > 0) {
        rec_context_init(&ctx, w, cfg, rules, p != NULL && p->exists ? p : NULL, NULL,
                         REC_MODE_RERANK);
        rec_candidates_init(&cs, true);
        for (size_t i = 0; i < n; i++) {
            if (products[i] < size)
                rec_candidates_add(&cs, products[i]);
        }
        rec_collect_relations(&ctx, &cs);
        for (size_t i = 0; i < cs.n; i++)
            rec_score(&ctx, &cs.items[i]);
    }

    for (size_t i = 0; i < n; i++) {
        uint32_t product = products[i];
        size_t group = GROUP_UNKNOWN;

        out[i].product = VT_CATALOG_NONE;
        out[i].score = 0;
        if (product < size) {
            const struct vt_product *prod = vt_catalog_get(ctx.cat, product);
            bool demoted = !vt_product_available(prod) || rec_rules_filtered(&ctx.rules, product);

            out[i].product = product;
            out[i].score = score_of(&ctx, &cs, product);
            group = demoted ? GROUP_DEMOTED : GROUP_SERVABLE;
        }
        out[i].input = (i & INPUT_MASK) | (group << GROUP_SHIFT);
    }

    sort_items(out, n);
    for (size_t i = 0; i < n; i++)
        out[i].input &= INPUT_MASK;
}
