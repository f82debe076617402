/*
 * Unit tests of world versions (service/live/publish.c): what a new version shares with
 * the previous one, what it retires, and when retired objects are freed, on a clock the
 * test controls. AddressSanitizer reports a read of a freed version and LeakSanitizer an
 * object that was never freed.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../service/live/live_internal.h"
#include "vitrine/catalog.h"
#include "vitrine/config.h"
#include "vitrine/world.h"

#define SECOND 1000000000ull

static struct vt_config test_cfg;

static const char catalog_text[] = "{\"id\":\"p0\",\"popularity\":3}\n"
                                   "{\"id\":\"p1\",\"popularity\":2}\n"
                                   "{\"id\":\"p2\",\"popularity\":1}\n";

struct fake_clock {
    uint64_t ns;
};


static uint64_t read_clock(void *arg)
{
    return ((struct fake_clock *)arg)->ns;
}


static struct vt_catalog *load_catalog(void)
{
    char err[256] = "";

    vt_config_defaults(&test_cfg);
    FILE *in = fmemopen((void *)catalog_text, sizeof catalog_text - 1, "r");
    cr_assert_not_null(in);
    struct vt_catalog *cat = vt_catalog_load_stream(in, "test", &test_cfg, err, sizeof err);
    fclose(in);
    cr_assert_not_null(cat, "load failed: %s", err);
    return cat;
}


static void init_state(struct live_state *s, struct fake_clock *clock)
{
    clock->ns = 1000 * SECOND;
    cr_assert_eq(live_state_init(s, &test_cfg, load_catalog(), read_clock, clock), 0);
}


/* A trending set with one global entry. */
static struct vt_trending *trending_with(uint32_t product)
{
    struct vt_trending *t = calloc(1, sizeof *t);
    struct vt_product_list *global = malloc(sizeof *global + sizeof global->items[0]);

    cr_assert(t != NULL && global != NULL);
    global->n = 1;
    global->items[0].product = product;
    global->items[0].score = 1;
    t->global = global;
    return t;
}


/* A neighbour list with one entry. */
static struct vt_neighbors *neighbors_with(uint32_t product)
{
    struct vt_neighbors *list = malloc(sizeof *list + sizeof list->items[0]);

    cr_assert_not_null(list);
    list->n = 1;
    list->items[0].product = product;
    list->items[0].co_view = 1;
    list->items[0].co_buy = 0;
    return list;
}


static const struct vt_world *current(const struct live_state *s)
{
    return atomic_load_explicit(&s->current, memory_order_acquire);
}


Test(world_reclaim, first_version_has_no_aggregates)
{
    struct fake_clock clock;
    struct live_state s;

    init_state(&s, &clock);
    const struct vt_world *w = current(&s);

    cr_assert_eq(w, s.world);
    cr_assert_eq(w->version, 1);
    cr_assert_eq(w->aggregates_ms, -1);
    cr_assert_eq(vt_catalog_size(w->catalog), 3);
    cr_assert_eq(vt_world_trending(w, VT_CATALOG_NONE, VT_CATALOG_NONE)->n, 0);
    cr_assert_null(vt_world_neighbors(w, 0));
    cr_assert_eq(live_retired_count(&s), 0);
    live_state_destroy(&s);
}


Test(world_reclaim, replaced_version_freed_after_grace)
{
    struct fake_clock clock;
    struct live_state s;
    struct live_neighbor_update update = {.product = 0, .list = neighbors_with(1)};

    init_state(&s, &clock);
    const struct vt_world *v1 = current(&s);
    cr_assert_eq(live_publish_aggregates(&s, trending_with(2), &update, 1, 5000), 0);
    const struct vt_world *v2 = current(&s);

    cr_assert_neq(v2, v1);
    cr_assert_eq(v2->version, 2);
    cr_assert_eq(v2->aggregates_ms, 5000);
    cr_assert_eq(v2->catalog, v1->catalog, "the catalog is shared");
    cr_assert_eq(vt_world_neighbors(v2, 0)->items[0].product, 1);
    /* v1's world struct and its empty trending set are retired. */
    cr_assert_eq(live_retired_count(&s), 2);

    /* A reader that loaded v1 before the swap may still use it during the grace period. */
    clock.ns += VT_WORLD_GRACE_S * SECOND - 1;
    cr_assert_eq(live_collect(&s), 0);
    cr_assert_eq(v1->version, 1);
    cr_assert_eq(vt_world_trending(v1, VT_CATALOG_NONE, VT_CATALOG_NONE)->n, 0);

    clock.ns += 1;
    cr_assert_eq(live_collect(&s), 2);
    cr_assert_eq(live_retired_count(&s), 0);
    cr_assert_eq(vt_world_trending(v2, VT_CATALOG_NONE, VT_CATALOG_NONE)->n, 1);
    live_state_destroy(&s);
}


Test(world_reclaim, unchanged_lists_are_shared)
{
    struct fake_clock clock;
    struct live_state s;
    struct live_neighbor_update first[] = {{0, neighbors_with(1)}, {1, neighbors_with(2)}};

    init_state(&s, &clock);
    cr_assert_eq(live_publish_aggregates(&s, trending_with(0), first, 2, 1000), 0);
    const struct vt_world *v2 = current(&s);
    clock.ns += VT_WORLD_GRACE_S * SECOND;
    live_collect(&s);

    struct live_neighbor_update second[] = {{1, neighbors_with(0)}};
    clock.ns += 10 * SECOND;
    cr_assert_eq(live_publish_aggregates(&s, trending_with(1), second, 1, 2000), 0);
    const struct vt_world *v3 = current(&s);

    cr_assert_eq(vt_world_neighbors(v3, 0), vt_world_neighbors(v2, 0),
                 "product 0 did not change, so both versions share its list");
    cr_assert_neq(vt_world_neighbors(v3, 1), vt_world_neighbors(v2, 1));
    cr_assert_eq(vt_world_neighbors(v3, 1)->items[0].product, 0);
    cr_assert_eq(vt_world_neighbors(v2, 1)->items[0].product, 2, "v2 still reads its own list");
    /* Retired: v2's world struct, trending set, neighbour array and product 1's list. */
    cr_assert_eq(live_retired_count(&s), 4);

    clock.ns += VT_WORLD_GRACE_S * SECOND;
    cr_assert_eq(live_collect(&s), 4);
    cr_assert_eq(vt_world_neighbors(v3, 0)->items[0].product, 1);
    live_state_destroy(&s);
}


Test(world_reclaim, retired_objects_wait_for_their_own_grace)
{
    struct fake_clock clock;
    struct live_state s;

    init_state(&s, &clock);
    cr_assert_eq(live_publish_aggregates(&s, trending_with(0), NULL, 0, 1000), 0);
    clock.ns += 10 * SECOND;
    cr_assert_eq(live_publish_aggregates(&s, trending_with(1), NULL, 0, 2000), 0);
    cr_assert_eq(live_retired_count(&s), 4);

    clock.ns += (VT_WORLD_GRACE_S - 10) * SECOND;
    cr_assert_eq(live_collect(&s), 2, "only what the first swap retired is old enough");
    cr_assert_eq(live_retired_count(&s), 2);
    clock.ns += 10 * SECOND - 1;
    cr_assert_eq(live_collect(&s), 0);
    clock.ns += 1;
    cr_assert_eq(live_collect(&s), 2);
    live_state_destroy(&s);
}


Test(world_reclaim, removed_neighbors_and_repeated_updates)
{
    struct fake_clock clock;
    struct live_state s;
    struct live_neighbor_update first[] = {{0, neighbors_with(1)}, {2, neighbors_with(1)}};

    init_state(&s, &clock);
    cr_assert_eq(live_publish_aggregates(&s, trending_with(0), first, 2, 1000), 0);

    /* Product 0 loses its neighbours; product 2 gets two updates, and the later one wins.
     * An update for an index past the catalog is dropped. */
    struct live_neighbor_update second[] = {
        {0, NULL}, {2, neighbors_with(0)}, {2, neighbors_with(1)}, {7, neighbors_with(0)}};
    cr_assert_eq(live_publish_aggregates(&s, trending_with(0), second, 4, 2000), 0);
    const struct vt_world *w = current(&s);

    cr_assert_null(vt_world_neighbors(w, 0));
    cr_assert_eq(vt_world_neighbors(w, 2)->items[0].product, 1);
    cr_assert_null(vt_world_neighbors(w, 7));
    live_state_destroy(&s);
}


Test(world_reclaim, catalog_version_keeps_aggregates)
{
    struct fake_clock clock;
    struct live_state s;
    struct live_neighbor_update update = {.product = 1, .list = neighbors_with(0)};
    struct vt_catalog_change change;
    char reason[128], err[128];

    init_state(&s, &clock);
    cr_assert_eq(live_publish_aggregates(&s, trending_with(2), &update, 1, 1000), 0);
    const struct vt_world *before = current(&s);
    clock.ns += VT_WORLD_GRACE_S * SECOND;
    live_collect(&s);

    cr_assert_eq(vt_catalog_change_parse("p9", 2, "{\"popularity\":9}", 16, &change, reason,
                                         sizeof reason),
                 0);
    struct vt_catalog *grown = vt_catalog_apply(before->catalog, &change, 1, &test_cfg, NULL,
                                                err, sizeof err);
    vt_catalog_change_clear(&change);
    cr_assert_not_null(grown, "%s", err);
    cr_assert_eq(live_publish_catalog(&s, grown), 0);
    const struct vt_world *after = current(&s);

    cr_assert_eq(after->catalog, grown);
    cr_assert_eq(after->trending, before->trending, "trending lists are shared");
    cr_assert_eq(after->aggregates_ms, 1000);
    cr_assert_eq(vt_world_neighbors(after, 1), vt_world_neighbors(before, 1));
    cr_assert_null(vt_world_neighbors(after, 3), "the new product has no neighbours yet");
    /* Retired: the old world struct, the old catalog and the shorter neighbour array. */
    cr_assert_eq(live_retired_count(&s), 3);
    cr_assert_eq(vt_catalog_size(before->catalog), 3, "the old catalog is readable until freed");

    clock.ns += VT_WORLD_GRACE_S * SECOND;
    cr_assert_eq(live_collect(&s), 3);
    live_state_destroy(&s);
}


/* A trending set with one list for category 0 of the three-product catalog. */
static struct vt_trending *trending_with_group(uint32_t product)
{
    struct vt_trending *t = trending_with(product);
    const struct vt_product_list **by_category = calloc(1, sizeof *by_category);
    const struct vt_product_list **by_brand = calloc(1, sizeof *by_brand);
    struct vt_product_list *list = malloc(sizeof *list + sizeof list->items[0]);

    cr_assert(by_category != NULL && by_brand != NULL && list != NULL);
    list->n = 1;
    list->items[0].product = product;
    list->items[0].score = 2;
    by_category[0] = list;
    t->by_category = by_category;
    t->by_brand = by_brand;
    t->n_categories = 1;
    t->n_brands = 1;
    return t;
}


Test(world_reclaim, shared_group_lists_freed_once)
{
    struct fake_clock clock;
    struct live_state s;

    init_state(&s, &clock);
    cr_assert_eq(live_publish_aggregates(&s, trending_with_group(1), NULL, 0, 1000), 0);
    const struct vt_world *v2 = current(&s);

    /* Two refreshes that read only the global list share v2's category lists. */
    for (uint32_t i = 0; i < 2; i++) {
        struct vt_trending *t = calloc(1, sizeof *t);
        struct vt_trending *global = trending_with(i);

        cr_assert_not_null(t);
        t->global = global->global;
        free(global);
        t->by_category = v2->trending->by_category;
        t->by_brand = v2->trending->by_brand;
        t->n_categories = v2->trending->n_categories;
        t->n_brands = v2->trending->n_brands;
        clock.ns += SECOND;
        cr_assert_eq(live_publish_aggregates(&s, t, NULL, 0, 2000 + i), 0);
    }
    const struct vt_world *v4 = current(&s);
    cr_assert_eq(vt_world_trending(v4, 0, VT_CATALOG_NONE), vt_world_trending(v2, 0, VT_CATALOG_NONE));

    /* v2 and v3 are retired as shells: their category list lives on in v4. */
    clock.ns += VT_WORLD_GRACE_S * SECOND;
    live_collect(&s);
    cr_assert_eq(vt_world_trending(v4, 0, VT_CATALOG_NONE)->items[0].product, 1);

    /* A refresh that reads the category lists again retires v4's set whole. */
    cr_assert_eq(live_publish_aggregates(&s, trending_with_group(2), NULL, 0, 5000), 0);
    cr_assert_eq(vt_world_trending(current(&s), 0, VT_CATALOG_NONE)->items[0].product, 2);
    clock.ns += VT_WORLD_GRACE_S * SECOND;
    live_collect(&s);
    live_state_destroy(&s);
}


Test(world_reclaim, destroy_frees_retired_and_current)
{
    struct fake_clock clock;
    struct live_state s;

    init_state(&s, &clock);
    for (uint32_t i = 0; i < 5; i++) {
        struct live_neighbor_update update = {.product = i % 3, .list = neighbors_with(i % 2)};

        cr_assert_eq(live_publish_aggregates(&s, trending_with(i % 3), &update, 1, i), 0);
    }
    cr_assert_eq(current(&s)->version, 6);
    cr_assert_gt(live_retired_count(&s), 0);
    /* LeakSanitizer checks that destroy left nothing behind. */
    live_state_destroy(&s);
}


/* A copy of the current catalog with one more product, as the updater builds it. */
static struct vt_catalog *next_catalog(const struct live_state *s, const char *id)
{
    struct vt_catalog_change change;
    char reason[128], err[128];

    cr_assert_eq(vt_catalog_change_parse(id, strlen(id), "{\"popularity\":1}", 16, &change,
                                         reason, sizeof reason),
                 0, "%s", reason);
    struct vt_catalog *cat = vt_catalog_apply(s->world->catalog, &change, 1, &test_cfg, NULL,
                                              err, sizeof err);
    vt_catalog_change_clear(&change);
    cr_assert_not_null(cat, "%s", err);
    return cat;
}


Test(world_reclaim, replaced_catalogs_bounded)
{
    struct fake_clock clock;
    struct live_state s;
    char id[16];

    init_state(&s, &clock);
    cr_assert(live_catalog_publishable(&s));

    /* One catalog version per second retires one catalog each. */
    for (int i = 0; i < LIVE_RETIRED_CATALOGS_MAX; i++) {
        snprintf(id, sizeof id, "n%d", i);
        cr_assert(live_catalog_publishable(&s), "version %d", i);
        cr_assert_eq(live_publish_catalog(&s, next_catalog(&s, id)), 0);
        cr_assert_eq(live_retired_catalogs(&s), (size_t)i + 1);
        clock.ns += SECOND;
        live_collect(&s);
    }
    cr_assert_not(live_catalog_publishable(&s), "the next version must wait");

    /* Aggregate versions retire no catalog and are not held back. */
    cr_assert_eq(live_publish_aggregates(&s, trending_with(0), NULL, 0, 1000), 0);
    cr_assert_eq(live_retired_catalogs(&s), LIVE_RETIRED_CATALOGS_MAX);

    /* The first replaced catalog is freed VT_WORLD_GRACE_S after its replacement, which
     * makes room for exactly one more version. */
    clock.ns = 1000 * SECOND + VT_WORLD_GRACE_S * SECOND - 1;
    live_collect(&s);
    cr_assert_not(live_catalog_publishable(&s));
    clock.ns += 1;
    live_collect(&s);
    cr_assert_eq(live_retired_catalogs(&s), LIVE_RETIRED_CATALOGS_MAX - 1);
    cr_assert(live_catalog_publishable(&s));
    cr_assert_eq(live_publish_catalog(&s, next_catalog(&s, "late")), 0);
    cr_assert_not(live_catalog_publishable(&s));
    cr_assert_eq(vt_catalog_size(current(&s)->catalog), 3 + LIVE_RETIRED_CATALOGS_MAX + 1);

    /* Once every grace period has passed, nothing waits. */
    clock.ns += VT_WORLD_GRACE_S * SECOND;
    live_collect(&s);
    cr_assert_eq(live_retired_catalogs(&s), 0);
    cr_assert_eq(live_retired_count(&s), 0);
    live_state_destroy(&s);
}


/* ---- reader holds ---- */

struct holder {
    struct live_state *s;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int step; /* 1: version held, 2: release requested, 3: released */
    uint64_t version;
};


/* Run a reader thread: hold the current version until the test requests the release. */
static void *hold_until_released_by_test(void *arg)
{
    struct holder *h = arg;

    h->version = live_hold(h->s)->version;
    pthread_mutex_lock(&h->lock);
    h->step = 1;
    pthread_cond_broadcast(&h->changed);
    while (h->step != 2)
        pthread_cond_wait(&h->changed, &h->lock);
    live_release(h->s);
    h->step = 3;
    pthread_cond_broadcast(&h->changed);
    pthread_mutex_unlock(&h->lock);
    return NULL;
}


static void wait_step(struct holder *h, int step)
{
    pthread_mutex_lock(&h->lock);
    while (h->step != step)
        pthread_cond_wait(&h->changed, &h->lock);
    pthread_mutex_unlock(&h->lock);
}


static void request_release(struct holder *h)
{
    pthread_mutex_lock(&h->lock);
    h->step = 2;
    pthread_cond_broadcast(&h->changed);
    pthread_mutex_unlock(&h->lock);
    wait_step(h, 3);
}


Test(world_reclaim, unheld_versions_go_at_the_next_collect)
{
    struct fake_clock clock;
    static struct live_state s;
    struct live_neighbor_update update = {.product = 0, .list = neighbors_with(1)};

    init_state(&s, &clock);
    s.holds_checked = true;
    cr_assert_eq(live_publish_aggregates(&s, trending_with(2), &update, 1, 5000), 0);
    cr_assert_eq(live_retired_count(&s), 2);
    cr_assert_eq(live_collect(&s), 2, "no thread holds version 1: no grace period needed");
    live_state_destroy(&s);
}


/* Start a state with holds checked, and a reader thread that keeps version 1 held. */
static void start_holder(struct live_state *s, struct fake_clock *clock, struct holder *h,
                         pthread_t *thread)
{
    init_state(s, clock);
    s->holds_checked = true;
    h->s = s;
    h->step = 0;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->changed, NULL);
    cr_assert_eq(pthread_create(thread, NULL, hold_until_released_by_test, h), 0);
    wait_step(h, 1);
    cr_assert_eq(h->version, 1);
}


Test(world_reclaim, held_version_stays_until_released)
{
    struct fake_clock clock;
    static struct live_state s;
    struct holder h;
    pthread_t thread;

    start_holder(&s, &clock, &h, &thread);

    struct live_neighbor_update first = {.product = 0, .list = neighbors_with(1)};
    cr_assert_eq(live_publish_aggregates(&s, trending_with(2), &first, 1, 5000), 0);
    struct live_neighbor_update second = {.product = 0, .list = neighbors_with(2)};
    cr_assert_eq(live_publish_aggregates(&s, trending_with(1), &second, 1, 6000), 0);
    size_t retired = live_retired_count(&s);
    cr_assert_eq(live_collect(&s), 0, "a thread holds version 1");

    /* Its own thread's hold nests and keeps the outer announcement. */
    const struct vt_world *v3 = live_hold(&s);
    cr_assert_eq(v3->version, 3);
    cr_assert_eq(live_hold(&s)->version, 3);
    live_release(&s);
    cr_assert_eq(live_collect(&s), 0);

    request_release(&h);
    pthread_join(thread, NULL);
    size_t freed = live_collect(&s);
    cr_assert_eq(freed, retired, "version 1 and 2 went once nothing older than 3 was held");
    cr_assert_eq(v3->version, 3, "the version this thread still holds stays");
    live_release(&s);
    live_state_destroy(&s);
}


Test(world_reclaim, grace_period_frees_despite_a_stuck_holder)
{
    struct fake_clock clock;
    static struct live_state s;
    struct holder h;
    pthread_t thread;

    start_holder(&s, &clock, &h, &thread);
    struct live_neighbor_update update = {.product = 0, .list = neighbors_with(1)};
    cr_assert_eq(live_publish_aggregates(&s, trending_with(2), &update, 1, 5000), 0);
    cr_assert_eq(live_collect(&s), 0);
    clock.ns += VT_WORLD_GRACE_S * SECOND;
    cr_assert_eq(live_collect(&s), 2, "the grace period is the upper bound, as before");
    request_release(&h);
    pthread_join(thread, NULL);
    live_state_destroy(&s);
}
