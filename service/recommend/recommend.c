/*
 * vitrine: recommendations, second version: the entry point and the names of placements
 * and strategies (see include/vitrine/recommend.h and docs/recommendations.md).
 *
 * One call runs these steps, all in the caller's stack:
 *   context.c     look up the profile in the world's catalog, read the request's filters
 *                 and select the rules in scope;
 *   candidates.c  collect the placement's candidates (neighbours, affinities, trending,
 *                 catalog popularity) that pass the filters;
 *   score.c       score them;
 *   select.c      place the pins, take the best under the brand cap, fill a short list
 *                 from the catalog, and name the strategy.
 *
 * A call keeps about 50 KB of state on the stack (struct rec_context and struct
 * rec_candidates; `-fstack-usage` prints the exact figure per function).
 */
#include "recommend_internal.h"

#include <string.h>

#include "vitrine/util.h"

/* Control-group buckets: a session's hash modulo this, against percent * 100. */
#define CONTROL_BUCKETS 10000

static const char *const placement_names[VT_PLACEMENT_COUNT] = {
    [VT_PLACEMENT_HOME] = "home",
    [VT_PLACEMENT_PRODUCT] = "product",
    [VT_PLACEMENT_CART] = "cart",
    [VT_PLACEMENT_CATEGORY] = "category",
    [VT_PLACEMENT_SEARCH] = "search",
};

const char *vt_placement_name(enum vt_placement placement)
{
    return (unsigned)placement < VT_PLACEMENT_COUNT ? placement_names[placement] : "unknown";
}


int vt_placement_parse(const char *s, size_t len, enum vt_placement *out)
{
    for (int i = 0; i < VT_PLACEMENT_COUNT; i++) {
        if (strlen(placement_names[i]) == len && memcmp(placement_names[i], s, len) == 0) {
            *out = (enum vt_placement)i;
            return 0;
        }
    }
    return -1;
}


const char *vt_rec_strategy_name(enum vt_rec_strategy strategy)
{
    switch (strategy) {
    case VT_STRATEGY_PERSONALIZED:
        return "personalized";
    case VT_STRATEGY_PERSONALIZED_TRENDING:
        return "personalized+trending";
    case VT_STRATEGY_TRENDING:
        return "trending";
    case VT_STRATEGY_POPULAR:
        return "popular";
    case VT_STRATEGY_IN_STOCK:
        return "in_stock";
    case VT_STRATEGY_EMPTY:
        return "empty";
    }
    return "unknown";
}


void vt_rec_request_init(struct vt_rec_request *req, size_t limit)
{
    memset(req, 0, sizeof *req);
    req->placement = VT_PLACEMENT_HOME;
    req->product = VT_CATALOG_NONE;
    req->gender = VT_GENDER_UNKNOWN;
    req->price_min = -1;
    req->price_max = -1;
    req->limit = limit;
    req->control = false;
}


bool vt_rec_in_control_group(const struct vt_config *cfg, const char *session_id,
                             size_t len)
{
    double percent = cfg->rec_control_percent;

    if (!(percent > 0))
        return false;
    if (percent >= 100)
        return true;

    /* The high bits of FNV-1a mix every input byte; the low bits are weaker. */
    uint64_t bucket = (vt_hash64(session_id, len) >> 32) % CONTROL_BUCKETS;
    return (double)bucket < percent * (CONTROL_BUCKETS / 100);
}


void vt_recommend(const struct vt_world *w, const struct vt_config *cfg,
                  const struct vt_rules *rules, const struct vt_profile *p,
                  const struct vt_rec_request *req, struct vt_rec_result *out)
{
    struct rec_context ctx;
    struct rec_candidates cs;
    enum rec_mode mode = req->control ? REC_MODE_CONTROL : REC_MODE_PERSONAL;

    out->n = 0;
    out->strategy = VT_STRATEGY_EMPTY;
    out->segment = VT_SEGMENT_UNKNOWN;
    out->control = req->control;
    if (w == NULL || vt_catalog_size(w->catalog) == 0)
        return;

    rec_context_init(&ctx, w, cfg, rules, p != NULL && p->exists ? p : NULL, req, mode);
    out->segment = ctx.segment;

    rec_candidates_init(&cs, false);
    rec_collect(&ctx, &cs);
    rec_select(&ctx, &cs, out);
    out->strategy = rec_strategy_of(out);
}
