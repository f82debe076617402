/*
 * Shared fixture of the recommender tests (see test_recommend_fixture.h).
 */
#include "test_recommend_fixture.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vitrine/util.h"

const char rec_main_catalog[] =
    "{\"id\":\"h1\",\"brand\":\"Alpha\",\"categories\":[\"hair\"],\"gender\":\"female\","
    "\"price\":10,\"stock\":5,\"popularity\":50}\n"
    "{\"id\":\"h2\",\"brand\":\"Beta\",\"categories\":[\"hair\"],\"gender\":\"unisex\","
    "\"price\":30,\"stock\":5,\"popularity\":40}\n"
    "{\"id\":\"h3\",\"brand\":\"Gamma\",\"categories\":[\"hair\"],\"gender\":\"male\","
    "\"price\":30,\"stock\":5,\"popularity\":30}\n"
    "{\"id\":\"h4\",\"brand\":\"Alpha\",\"categories\":[\"hair\"],"
    "\"price\":80,\"stock\":5,\"popularity\":20}\n"
    "{\"id\":\"h5\",\"brand\":\"Delta\",\"categories\":[\"hair\"],\"gender\":\"female\","
    "\"price\":130,\"stock\":5,\"popularity\":10}\n"
    "{\"id\":\"n1\",\"brand\":\"Alpha\",\"categories\":[\"nails\"],\"gender\":\"female\","
    "\"price\":5,\"popularity\":90}\n"
    "{\"id\":\"n2\",\"brand\":\"Beta\",\"categories\":[\"nails\"],\"gender\":\"female\","
    "\"price\":8,\"stock\":2,\"popularity\":80}\n"
    "{\"id\":\"n3\",\"brand\":\"Epsilon\",\"categories\":[\"nails\"],\"gender\":\"male\","
    "\"price\":12,\"stock\":1,\"popularity\":70}\n"
    "{\"id\":\"n4\",\"brand\":\"Zeta\",\"categories\":[\"nails\"],"
    "\"price\":20,\"stock\":9,\"popularity\":60}\n"
    "{\"id\":\"p1\",\"brand\":\"Eta\",\"categories\":[\"perfume\"],\"gender\":\"male\","
    "\"price\":150,\"stock\":3,\"popularity\":100}\n"
    "{\"id\":\"p2\",\"brand\":\"Theta\",\"categories\":[\"perfume\"],\"gender\":\"female\","
    "\"price\":200,\"stock\":3,\"popularity\":95}\n"
    "{\"id\":\"p3\",\"brand\":\"Eta\",\"categories\":[\"perfume\"],\"gender\":\"female\","
    "\"price\":90,\"stock\":0,\"popularity\":5}\n"
    "{\"id\":\"s1\",\"brand\":\"Iota\",\"categories\":[\"skin\"],\"stock\":0,"
    "\"popularity\":85}\n"
    "{\"id\":\"s2\",\"brand\":\"Kappa\",\"categories\":[\"skin\"],\"gender\":\"unisex\","
    "\"price\":25,\"stock\":4,\"popularity\":15}\n";


void fixture_load(struct rec_fixture *f, const char *text)
{
    char err[256] = "";

    memset(f, 0, sizeof *f);
    vt_config_defaults(&f->cfg);
    if (text[0] == '\0') {
        f->cat = vt_catalog_load("", &f->cfg, err, sizeof err);
    } else {
        FILE *in = fmemopen((void *)text, strlen(text), "r");
        cr_assert_not_null(in);
        f->cat = vt_catalog_load_stream(in, "recommend-test", &f->cfg, err, sizeof err);
        fclose(in);
    }
    cr_assert_not_null(f->cat, "%s", err);
    f->world = vt_world_new_static(f->cat);
    cr_assert_not_null(f->world);

    f->profile.exists = true;
    f->profile.ttl_s = -1;
    vt_rec_request_init(&f->req, 10);
}


static void free_lists(struct vt_product_list **lists, size_t n)
{
    for (size_t i = 0; lists != NULL && i < n; i++)
        free(lists[i]);
    free(lists);
}


/* Take the test's lists back from the world, so that vt_world_free frees only what the
 * world allocated itself, whichever parts it considers its own. */
void fixture_detach(struct vt_world *w)
{
    struct vt_trending *t = (struct vt_trending *)w->trending;

    t->global = NULL;
    t->by_category = NULL;
    t->by_brand = NULL;
    t->n_categories = 0;
    t->n_brands = 0;
    w->neighbors = NULL;
}


void fixture_free(struct rec_fixture *f)
{
    const struct vt_catalog_stats *stats = vt_catalog_stats(f->cat);

    fixture_detach(f->world);
    free(f->global);
    free_lists(f->by_category, stats->categories);
    free_lists(f->by_brand, stats->brands);
    for (size_t i = 0; f->neighbors != NULL && i < vt_catalog_size(f->cat); i++)
        free(f->neighbors[i]);
    free(f->neighbors);
    vt_world_free(f->world);
    vt_rules_free(f->rules);
    vt_catalog_free(f->cat);
}


void fixture_rules(struct rec_fixture *f, const char *json)
{
    char err[512] = "";

    vt_rules_free(f->rules);
    f->rules = vt_rules_parse(json, strlen(json), "test-rules.json", err, sizeof err);
    cr_assert_not_null(f->rules, "rules rejected: %s", err);
}


uint32_t index_of(const struct rec_fixture *f, const char *id)
{
    uint32_t index = vt_catalog_find(f->cat, id, strlen(id));

    cr_assert_neq(index, VT_CATALOG_NONE, "product %s not in the test catalog", id);
    return index;
}


uint32_t category_of(const struct rec_fixture *f, const char *name)
{
    uint32_t index = vt_catalog_category_find(f->cat, name, strlen(name));

    cr_assert_neq(index, VT_CATALOG_NONE, "category %s not in the test catalog", name);
    return index;
}


uint32_t brand_of(const struct rec_fixture *f, const char *name)
{
    uint32_t index = vt_catalog_brand_find(f->cat, name, strlen(name));

    cr_assert_neq(index, VT_CATALOG_NONE, "brand %s not in the test catalog", name);
    return index;
}


const char *id_at(const struct rec_fixture *f, size_t i)
{
    cr_assert_lt(i, f->result.n, "position %zu is past the %zu items", i, f->result.n);
    return vt_catalog_get(f->cat, f->result.items[i].product)->id;
}


int position_of(const struct rec_fixture *f, const char *id)
{
    for (size_t i = 0; i < f->result.n; i++) {
        if (strcmp(id_at(f, i), id) == 0)
            return (int)i;
    }
    return -1;
}


static void add_name(struct vt_scored_name *names, size_t *n, const char *name, double value)
{
    vt_strlcpy(names[*n].name, name, sizeof names[*n].name);
    names[*n].value = value;
    names[*n].log_score = log(value);
    (*n)++;
}


void like_category(struct rec_fixture *f, const char *name, double value)
{
    add_name(f->profile.categories, &f->profile.n_categories, name, value);
}


void like_brand(struct rec_fixture *f, const char *name, double value)
{
    add_name(f->profile.brands, &f->profile.n_brands, name, value);
}


void like_tier(struct rec_fixture *f, const char *name, double value)
{
    add_name(f->profile.tiers, &f->profile.n_tiers, name, value);
}


void add_to_cart(struct rec_fixture *f, const char *id, int64_t quantity)
{
    struct vt_cart_line *line = &f->profile.cart[f->profile.n_cart++];

    vt_strlcpy(line->id, id, sizeof line->id);
    line->quantity = quantity;
}


static void add_timed(struct vt_timed_id *list, size_t *n, const char *id)
{
    vt_strlcpy(list[*n].id, id, sizeof list[*n].id);
    list[*n].ts_ms = 1700000000000 - (int64_t)*n;
    (*n)++;
}


void add_purchase(struct rec_fixture *f, const char *id)
{
    add_timed(f->profile.purchased, &f->profile.n_purchased, id);
}


void add_recent(struct rec_fixture *f, const char *id)
{
    add_timed(f->profile.recent, &f->profile.n_recent, id);
}


void add_seen(struct rec_fixture *f, const char *id, int64_t count)
{
    struct vt_seen_product *seen = &f->profile.seen[f->profile.n_seen++];

    vt_strlcpy(seen->id, id, sizeof seen->id);
    seen->count = count;
}


void set_gender(struct rec_fixture *f, double log_odds, int64_t evidence)
{
    f->profile.gender_log_odds = log_odds;
    f->profile.gender_evidence = evidence;
}


/* Parse "id:score id:score" into a new list; the id "?" stands for an index the catalog
 * does not have. */
static struct vt_product_list *parse_list(const struct rec_fixture *f, const char *entries)
{
    size_t count = 0;

    for (const char *s = entries; *s != '\0'; s++)
        count += *s == ':';

    struct vt_product_list *list = calloc(1, sizeof *list + count * sizeof list->items[0]);
    cr_assert_not_null(list);
    for (const char *s = entries; *s != '\0';) {
        char id[64];
        size_t len = strcspn(s, ":");

        cr_assert_lt(len, sizeof id, "trending entry too long in %s", entries);
        cr_assert_eq(s[len], ':', "trending entry without a score in %s", entries);
        memcpy(id, s, len);
        id[len] = '\0';

        char *end;
        struct vt_scored_product *item = &list->items[list->n++];
        item->product = strcmp(id, "?") == 0 ? 999999 : index_of(f, id);
        item->score = strtof(s + len + 1, &end);
        s = end;
        while (*s == ' ')
            s++;
    }
    return list;
}


static struct vt_trending *trending_of(struct rec_fixture *f)
{
    return (struct vt_trending *)f->world->trending;
}


void set_trending(struct rec_fixture *f, const char *entries)
{
    free(f->global);
    f->global = parse_list(f, entries);
    trending_of(f)->global = f->global;
}


void set_category_trending(struct rec_fixture *f, const char *category, const char *entries)
{
    size_t n = vt_catalog_stats(f->cat)->categories;
    uint32_t index = category_of(f, category);

    if (f->by_category == NULL) {
        f->by_category = calloc(n, sizeof *f->by_category);
        cr_assert_not_null(f->by_category);
        trending_of(f)->by_category = (const struct vt_product_list *const *)f->by_category;
        trending_of(f)->n_categories = n;
    }
    free(f->by_category[index]);
    f->by_category[index] = parse_list(f, entries);
}


void set_brand_trending(struct rec_fixture *f, const char *brand, const char *entries)
{
    size_t n = vt_catalog_stats(f->cat)->brands;
    uint32_t index = brand_of(f, brand);

    if (f->by_brand == NULL) {
        f->by_brand = calloc(n, sizeof *f->by_brand);
        cr_assert_not_null(f->by_brand);
        trending_of(f)->by_brand = (const struct vt_product_list *const *)f->by_brand;
        trending_of(f)->n_brands = n;
    }
    free(f->by_brand[index]);
    f->by_brand[index] = parse_list(f, entries);
}


void add_neighbor(struct rec_fixture *f, const char *from, const char *to, float co_view,
                  float co_buy)
{
    size_t size = vt_catalog_size(f->cat);
    uint32_t source = index_of(f, from);

    if (f->neighbors == NULL) {
        f->neighbors = calloc(size, sizeof *f->neighbors);
        cr_assert_not_null(f->neighbors);
        f->world->neighbors = (const struct vt_neighbors *const *)f->neighbors;
    }

    struct vt_neighbors *old = f->neighbors[source];
    uint32_t n = old != NULL ? old->n : 0;
    struct vt_neighbors *list = calloc(1, sizeof *list + (n + 1) * sizeof list->items[0]);
    cr_assert_not_null(list);

    struct vt_neighbor entry = {strcmp(to, "?") == 0 ? 999999 : index_of(f, to), co_view, co_buy};
    uint32_t at = 0;
    while (at < n && old->items[at].co_view + old->items[at].co_buy >= co_view + co_buy)
        at++;
    for (uint32_t i = 0; i < at; i++)
        list->items[i] = old->items[i];
    list->items[at] = entry;
    for (uint32_t i = at; i < n; i++)
        list->items[i + 1] = old->items[i];
    list->n = n + 1;

    free(old);
    f->neighbors[source] = list;
}


static bool in_category(const struct vt_product *p, uint32_t category)
{
    for (uint8_t k = 0; k < p->n_categories; k++) {
        if (p->categories[k] == category)
            return true;
    }
    return false;
}


static bool blocked_by_profile(const struct vt_catalog *cat, const struct vt_profile *p,
                               uint32_t index)
{
    const char *id = vt_catalog_get(cat, index)->id;

    for (size_t i = 0; p != NULL && i < p->n_cart; i++) {
        if (p->cart[i].quantity != 0 && strcmp(p->cart[i].id, id) == 0)
            return true;
    }
    for (size_t i = 0; p != NULL && i < p->n_purchased; i++) {
        if (strcmp(p->purchased[i].id, id) == 0)
            return true;
    }
    return false;
}


/* The request's own filters, as the contract describes them: any of the known categories,
 * any of the known brands, that gender or unisex, and the price range. */
static bool passes_request(const struct vt_catalog *cat, const struct vt_rec_request *req,
                           const struct vt_product *p)
{
    const struct vt_catalog_stats *stats = vt_catalog_stats(cat);
    bool restricted = false, inside = false;

    for (size_t i = 0; i < req->n_categories; i++) {
        if (req->categories[i] >= stats->categories)
            continue;
        restricted = true;
        inside = inside || in_category(p, req->categories[i]);
    }
    if (restricted && !inside)
        return false;

    restricted = inside = false;
    for (size_t i = 0; i < req->n_brands; i++) {
        if (req->brands[i] >= stats->brands)
            continue;
        restricted = true;
        inside = inside || p->brand == req->brands[i];
    }
    if (restricted && !inside)
        return false;

    if (req->gender != VT_GENDER_UNKNOWN && p->gender != req->gender &&
        p->gender != VT_GENDER_UNISEX)
        return false;
    if (req->price_min >= 0 && !(p->price >= 0 && p->price >= req->price_min))
        return false;
    if (req->price_max >= 0 && !(p->price >= 0 && p->price <= req->price_max))
        return false;
    return true;
}


static bool hard_allowed(const struct vt_catalog *cat, const struct vt_profile *p,
                         const struct vt_rec_request *req, uint32_t i)
{
    const struct vt_product *prod = vt_catalog_get(cat, i);

    if (!vt_product_available(prod) || i == req->product || blocked_by_profile(cat, p, i))
        return false;
    for (size_t k = 0; k < req->n_exclude; k++) {
        if (req->exclude[k] == i)
            return false;
    }
    return passes_request(cat, req, prod);
}


/*
 * Check what every result must satisfy. It contains at most `limit` distinct products, and
 * each passes the hard filters. The brand cap and the segment's gender filter are kept,
 * except for in_stock fallback items and pins. Reasons agree with their fields. The list is empty
 * only when no product passes the hard filters (filter rules may empty it too).
 */
void check_invariants(const struct vt_world *w, const struct vt_config *cfg,
                      const struct vt_profile *p, const struct vt_rec_request *req,
                      const struct vt_rec_result *r, bool rules_may_filter)
{
    const struct vt_catalog *cat = w->catalog;
    size_t limit = req->limit > 0 ? req->limit : (size_t)cfg->rec_limit_default;
    size_t size = vt_catalog_size(cat);
    bool any_allowed = false;
    bool any_pinned = false;

    if (limit > VT_REC_LIMIT_MAX)
        limit = VT_REC_LIMIT_MAX;
    cr_assert_leq(r->n, limit, "%zu items for limit %zu", r->n, limit);
    cr_assert_eq(r->control, req->control, "control flag %d for a request with %d", r->control,
                 req->control);
    for (uint32_t i = 0; i < size && !any_allowed; i++)
        any_allowed = hard_allowed(cat, p, req, i);
    if (!rules_may_filter)
        cr_assert_eq(r->n == 0, !any_allowed, "n=%zu although an allowed product %s", r->n,
                     any_allowed ? "exists" : "does not exist");
    cr_assert_eq(r->strategy == VT_STRATEGY_EMPTY, r->n == 0, "strategy %s with n=%zu",
                 vt_rec_strategy_name(r->strategy), r->n);
    for (size_t i = 0; i < r->n; i++)
        any_pinned = any_pinned || (r->items[i].reasons & VT_REASON_PINNED);

    for (size_t i = 0; i < r->n; i++) {
        const struct vt_rec_item *item = &r->items[i];
        const struct vt_product *prod = vt_catalog_get(cat, item->product);
        size_t same_brand = 0;

        cr_assert_not_null(prod, "item %zu has no product", i);
        cr_assert(hard_allowed(cat, p, req, item->product),
                  "%s breaks a hard filter (stock, cart, purchases, exclusions, page product "
                  "or request filters)",
                  prod->id);
        cr_assert(isfinite(item->score), "score of %s is not finite", prod->id);

        for (size_t k = 0; k < r->n; k++) {
            cr_assert(k == i || r->items[k].product != item->product, "%s served twice",
                      prod->id);
            if (prod->brand != VT_CATALOG_NONE &&
                vt_catalog_get(cat, r->items[k].product)->brand == prod->brand)
                same_brand++;
        }
        if (r->strategy != VT_STRATEGY_IN_STOCK && !any_pinned)
            cr_assert_leq(same_brand, (size_t)cfg->rec_max_per_brand,
                          "brand cap exceeded by %s", prod->id);

        bool wrong_gender = (r->segment == VT_SEGMENT_FEMALE && prod->gender == VT_GENDER_MALE) ||
                            (r->segment == VT_SEGMENT_MALE && prod->gender == VT_GENDER_FEMALE);
        bool segment_filtered = !req->control && req->gender == VT_GENDER_UNKNOWN;
        if (wrong_gender && segment_filtered)
            cr_assert((r->strategy == VT_STRATEGY_IN_STOCK &&
                       (item->reasons & VT_REASON_FALLBACK)) ||
                          (item->reasons & VT_REASON_PINNED),
                      "%s breaks the segment's gender filter outside the last fallback",
                      prod->id);

        if (item->reasons & VT_REASON_CATEGORY)
            cr_assert(in_category(prod, item->category), "reason category of %s is wrong",
                      prod->id);
        if (item->reasons & (VT_REASON_SIMILAR | VT_REASON_BOUGHT_TOGETHER))
            cr_assert_lt(item->via, size, "%s has a relation reason without via", prod->id);
        else
            cr_assert_eq(item->via, VT_CATALOG_NONE, "%s has via without a relation reason",
                         prod->id);
        if (item->reasons & VT_REASON_BOOSTED)
            cr_assert_not_null(item->rule, "%s is boosted without a rule name", prod->id);
        if (item->reasons & VT_REASON_PINNED)
            cr_assert_not_null(item->pin_rule, "%s is pinned without a rule name", prod->id);
        if (req->control)
            cr_assert_not(item->reasons & (VT_REASON_CATEGORY | VT_REASON_BRAND |
                                           VT_REASON_SIMILAR | VT_REASON_BOUGHT_TOGETHER),
                          "control item %s carries a personal reason", prod->id);
    }
}


void run(struct rec_fixture *f, bool with_profile)
{
    const struct vt_profile *p = with_profile ? &f->profile : NULL;

    vt_recommend(f->world, &f->cfg, f->rules, p, &f->req, &f->result);
    check_invariants(f->world, &f->cfg, p, &f->req, &f->result,
                     vt_rules_count(f->rules) > 0);
}
