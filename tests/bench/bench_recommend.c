/*
 * Benchmark of catalog loading, vt_recommend and vt_rerank.
 *
 * Writes a synthetic catalog in JSON Lines (55,000 products, 800 brands, 300 categories by
 * default) to a file, loads it, and prints the load time and the growth of resident memory.
 * It then builds synthetic aggregates as the updater would publish them: a global trending
 * list of 2,000 products, 200 per category and per brand, and 40 neighbours (co-views, a
 * third of them also co-purchases) for every product. With four sample rules (a boost, a
 * pin, two filters) it times, for varied profiles:
 *   - a mix of placements and requests (mostly home and product pages, 10 items);
 *   - home with 10 items;
 *   - product pages with 10 items;
 *   - vt_rerank of 200 ids.
 * Each line gives the CPU time per call (process CPU time over all calls divided by the
 * count, two clock reads per call included) and wall-time percentiles.
 *
 *   bench_recommend [--catalog FILE] [--products N] [--brands N] [--categories N]
 *                   [--calls N] [--rules FILE] [--keep]
 *
 * With --catalog the given file is loaded as it is and nothing is generated. Without it the
 * generated file goes to /tmp and is removed at the end unless --keep is given. --rules
 * replaces the sample rules. Everything is seeded by constants, so runs differ only by the
 * machine's timing.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vitrine/catalog.h"
#include "vitrine/config.h"
#include "vitrine/profile.h"
#include "vitrine/recommend.h"
#include "vitrine/rules.h"
#include "vitrine/util.h"
#include "vitrine/world.h"

#include "synthetic.h"

/* Distinct profiles and requests cycled through by the timed loops. Each profile is about
 * 65 KB, so 256 of them stay small next to the catalog. */
#define PROFILES 256
#define REQUESTS 1024

/* Synthetic aggregates: trending list lengths and neighbours per product. */
#define TRENDING_GLOBAL 2000
#define TRENDING_KEYED 200
#define NEIGHBORS 40

/* Ids per rerank call. */
#define RERANK_IDS 200

/* Rules over the synthetic catalog's names: a boost, a pin and two filters. */
static const char sample_rules[] =
    "{\"rules\":["
    "{\"name\":\"house-brand\",\"action\":\"boost\",\"factor\":1.5,"
    "\"match\":{\"brands\":[\"Brand 001\"]},\"placements\":[\"home\"]},"
    "{\"name\":\"launch\",\"action\":\"pin\",\"product\":\"P0000100\",\"position\":2,"
    "\"segment\":\"female\"},"
    "{\"name\":\"no-small\",\"action\":\"filter\",\"match\":{\"price_max\":2.99},"
    "\"placements\":[\"home\"]},"
    "{\"name\":\"brand-out-of-category\",\"action\":\"filter\","
    "\"match\":{\"brands\":[\"Brand 002\"],\"categories\":[\"category-005\"]}}]}";

struct options {
    const char *catalog;
    const char *rules;
    long products;
    long brands;
    long categories;
    long calls;
    int keep;
};

/* The timed loops, in the order they run. */
enum bench_run { RUN_MIXED = 0, RUN_HOME, RUN_PRODUCT, RUN_RERANK, RUN_COUNT };

static const char *const run_names[RUN_COUNT] = {
    [RUN_MIXED] = "vt_recommend, mixed requests",
    [RUN_HOME] = "vt_recommend, home, 10 items",
    [RUN_PRODUCT] = "vt_recommend, product page, 10 items",
    [RUN_RERANK] = "vt_rerank, 200 ids",
};

static struct bench_rng rng = {0x9E3779B97F4A7C15ull};


static double rng_unit(void)
{
    return bench_rng_unit(&rng);
}


static long rng_below(long n)
{
    return bench_rng_below(&rng, n);
}


static long rng_skewed(long n)
{
    return bench_rng_skewed(&rng, n);
}


static long resident_kib(void)
{
    char line[256];
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}


static double seconds(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}


static int write_catalog(const char *path, const struct options *o)
{
    FILE *out = fopen(path, "w");

    if (out == NULL) {
        perror(path);
        return -1;
    }
    for (long i = 0; i < o->products; i++)
        bench_write_synthetic_product(out, &rng, "P", i, o->brands, o->categories);
    if (fclose(out) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}


static void add_scored(struct vt_scored_name *list, size_t *n, const char *name, double value)
{
    vt_strlcpy(list[*n].name, name, sizeof list[*n].name);
    list[*n].value = value;
    list[*n].log_score = log(value);
    (*n)++;
}


/* A profile of varied size: cold ones, light browsers and heavy shoppers. */
static void make_profile(const struct vt_catalog *cat, struct vt_profile *p)
{
    size_t size = vt_catalog_size(cat);
    size_t n_categories = vt_catalog_stats(cat)->categories;
    size_t n_brands = vt_catalog_stats(cat)->brands;
    long kind = rng_below(10);

    memset(p, 0, sizeof *p);
    p->ttl_s = -1;
    if (kind == 0)
        return;
    p->exists = true;
    p->gender_log_odds = (rng_unit() - 0.4) * 6;
    p->gender_evidence = rng_below(8);

    long cats = kind < 5 ? 1 + rng_below(5) : 5 + rng_below(15);
    for (long i = 0; i < cats && n_categories > 0; i++) {
        const char *name = vt_catalog_category_name(cat, (uint32_t)rng_below((long)n_categories));
        add_scored(p->categories, &p->n_categories, name, 10.0 / (double)(i + 1));
    }
    long brands = kind < 5 ? rng_below(4) : 4 + rng_below(16);
    for (long i = 0; i < brands && n_brands > 0; i++) {
        const char *name = vt_catalog_brand_name(cat, (uint32_t)rng_below((long)n_brands));
        add_scored(p->brands, &p->n_brands, name, 8.0 / (double)(i + 1));
    }
    add_scored(p->tiers, &p->n_tiers, vt_price_tier_name((enum vt_price_tier)rng_below(4)), 3);
    add_scored(p->tiers, &p->n_tiers, vt_price_tier_name((enum vt_price_tier)rng_below(4)), 1);

    long recent = kind < 5 ? rng_below(8) : 8 + rng_below(40);
    for (long i = 0; i < recent; i++) {
        const struct vt_product *prod = vt_catalog_get(cat, (uint32_t)rng_below((long)size));
        vt_strlcpy(p->recent[p->n_recent].id, prod->id, sizeof p->recent[0].id);
        p->n_recent++;
    }
    long cart = kind < 7 ? rng_below(3) : rng_below(20);
    for (long i = 0; i < cart; i++) {
        const struct vt_product *prod = vt_catalog_get(cat, (uint32_t)rng_below((long)size));
        vt_strlcpy(p->cart[p->n_cart].id, prod->id, sizeof p->cart[0].id);
        p->cart[p->n_cart].quantity = 1 + rng_below(3);
        p->n_cart++;
    }
    long purchased = kind < 8 ? rng_below(3) : rng_below(60);
    for (long i = 0; i < purchased; i++) {
        const struct vt_product *prod = vt_catalog_get(cat, (uint32_t)rng_below((long)size));
        vt_strlcpy(p->purchased[p->n_purchased].id, prod->id, sizeof p->purchased[0].id);
        p->n_purchased++;
    }
    long seen = kind < 5 ? rng_below(20) : 20 + rng_below(VT_PROFILE_SEEN_MAX - 20);
    for (long i = 0; i < seen; i++) {
        const struct vt_product *prod = vt_catalog_get(cat, (uint32_t)rng_below((long)size));
        vt_strlcpy(p->seen[p->n_seen].id, prod->id, sizeof p->seen[0].id);
        p->seen[p->n_seen].count = 1 + rng_below(8);
        p->n_seen++;
    }
}


/* Mostly home and product pages with 10 items, some category pages and longer lists. */
static void make_request(const struct vt_catalog *cat, struct vt_rec_request *req)
{
    size_t size = vt_catalog_size(cat);
    size_t n_categories = vt_catalog_stats(cat)->categories;
    long kind = rng_below(10);
    static const size_t limits[] = {10, 10, 10, 10, 10, 6, 20, 20, 50, 100};

    vt_rec_request_init(req, limits[rng_below(10)]);
    if (kind < 4) {
        req->placement = VT_PLACEMENT_PRODUCT;
        req->product = (uint32_t)rng_below((long)size);
    } else if (kind < 6 && n_categories > 0) {
        req->placement = VT_PLACEMENT_CATEGORY;
        long count = 1 + rng_below(3);
        for (long i = 0; i < count; i++)
            req->categories[req->n_categories++] = (uint32_t)rng_skewed((long)n_categories);
    } else if (kind < 7) {
        req->placement = VT_PLACEMENT_CART;
    } else if (kind < 8) {
        req->placement = VT_PLACEMENT_SEARCH;
        req->price_max = 50;
    }
    long exclude = rng_below(6);
    for (long i = 0; i < exclude; i++)
        req->exclude[req->n_exclude++] = (uint32_t)rng_below((long)size);
}


/* A trending list of n products drawn from list[0..list_n) with a skew towards its head,
 * scores falling with the position. */
static struct vt_product_list *make_trending(const uint32_t *list, size_t list_n, size_t n)
{
    if (n > list_n)
        n = list_n;

    struct vt_product_list *out = malloc(sizeof *out + n * sizeof out->items[0]);
    if (out == NULL)
        return NULL;
    out->n = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        out->items[i].product = list[rng_skewed((long)list_n)];
        out->items[i].score = (float)(1000.0 / (double)(i + 1));
    }
    return out;
}


/* Trending lists and neighbours for every product, as in one world version. Returns -1 when
 * memory runs out. */
static int make_aggregates(struct vt_world *w, struct vt_trending *t,
                           struct vt_neighbors ***neighbors)
{
    const struct vt_catalog *cat = w->catalog;
    const struct vt_catalog_stats *stats = vt_catalog_stats(cat);
    size_t size = vt_catalog_size(cat);
    const uint32_t *list;
    size_t n;

    list = vt_catalog_popular(cat, &n);
    t->global = make_trending(list, n, TRENDING_GLOBAL);
    t->by_category = calloc(stats->categories, sizeof *t->by_category);
    t->by_brand = calloc(stats->brands, sizeof *t->by_brand);
    *neighbors = calloc(size, sizeof **neighbors);
    if (t->global == NULL || t->by_category == NULL || t->by_brand == NULL || *neighbors == NULL)
        return -1;
    t->n_categories = stats->categories;
    t->n_brands = stats->brands;

    struct vt_product_list **by_category = (struct vt_product_list **)t->by_category;
    for (uint32_t c = 0; c < stats->categories; c++) {
        list = vt_catalog_by_category(cat, c, &n);
        if (n > 0 && (by_category[c] = make_trending(list, n, TRENDING_KEYED)) == NULL)
            return -1;
    }
    struct vt_product_list **by_brand = (struct vt_product_list **)t->by_brand;
    for (uint32_t b = 0; b < stats->brands; b++) {
        list = vt_catalog_by_brand(cat, b, &n);
        if (n > 0 && (by_brand[b] = make_trending(list, n, TRENDING_KEYED)) == NULL)
            return -1;
    }

    for (size_t i = 0; i < size; i++) {
        struct vt_neighbors *nb = malloc(sizeof *nb + NEIGHBORS * sizeof nb->items[0]);
        if (nb == NULL)
            return -1;
        nb->n = NEIGHBORS;
        for (uint32_t k = 0; k < NEIGHBORS; k++) {
            nb->items[k].product = (uint32_t)rng_below((long)size);
            nb->items[k].co_view = (float)(NEIGHBORS - k);
            nb->items[k].co_buy = k % 3 == 0 ? (float)(NEIGHBORS - k) / 4 : 0;
        }
        (*neighbors)[i] = nb;
    }
    w->neighbors = (const struct vt_neighbors *const *)*neighbors;
    return 0;
}


/* Give the lists back before vt_world_free, which frees only what the world allocated. */
static void free_aggregates(struct vt_world *w, struct vt_trending *t,
                            struct vt_neighbors **neighbors)
{
    for (size_t i = 0; neighbors != NULL && i < vt_catalog_size(w->catalog); i++)
        free(neighbors[i]);
    free(neighbors);
    for (size_t i = 0; t->by_category != NULL && i < t->n_categories; i++)
        free((void *)t->by_category[i]);
    for (size_t i = 0; t->by_brand != NULL && i < t->n_brands; i++)
        free((void *)t->by_brand[i]);
    free((void *)t->by_category);
    free((void *)t->by_brand);
    free((void *)t->global);
    t->global = NULL;
    t->by_category = NULL;
    t->by_brand = NULL;
    t->n_categories = 0;
    t->n_brands = 0;
    w->neighbors = NULL;
}


static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}


static int parse_options(int argc, char **argv, struct options *o)
{
    o->catalog = NULL;
    o->rules = NULL;
    o->products = 55000;
    o->brands = 800;
    o->categories = 300;
    o->calls = 100000;
    o->keep = 0;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        long *target = NULL;

        if (strcmp(arg, "--keep") == 0) {
            o->keep = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_recommend: option %s needs a value\n", arg);
            return -1;
        }
        if (strcmp(arg, "--catalog") == 0) {
            o->catalog = argv[++i];
            continue;
        }
        if (strcmp(arg, "--rules") == 0) {
            o->rules = argv[++i];
            continue;
        }
        if (strcmp(arg, "--products") == 0)
            target = &o->products;
        else if (strcmp(arg, "--brands") == 0)
            target = &o->brands;
        else if (strcmp(arg, "--categories") == 0)
            target = &o->categories;
        else if (strcmp(arg, "--calls") == 0)
            target = &o->calls;

        int64_t value;
        if (target == NULL || vt_parse_int64(argv[++i], 1, 100000000, &value) != 0) {
            fprintf(stderr, "bench_recommend: unknown option or invalid value: %s %s\n", arg,
                    argv[i]);
            return -1;
        }
        *target = (long)value;
    }
    return 0;
}


int main(int argc, char **argv)
{
    struct options o;
    struct vt_config cfg;
    char path[256];
    char err[512];

    if (parse_options(argc, argv, &o) != 0)
        return 2;
    vt_config_defaults(&cfg);
    vt_log_threshold = VT_LOG_WARN;

    if (o.catalog == NULL) {
        snprintf(path, sizeof path, "/tmp/vitrine-bench-catalog-%ld.jsonl", (long)getpid());
        if (write_catalog(path, &o) != 0)
            return 1;
        o.catalog = path;
    }

    long rss_before = resident_kib();
    double wall_start = seconds(CLOCK_MONOTONIC);
    double cpu_start = seconds(CLOCK_PROCESS_CPUTIME_ID);
    struct vt_catalog *cat = vt_catalog_load(o.catalog, &cfg, err, sizeof err);
    double load_wall = seconds(CLOCK_MONOTONIC) - wall_start;
    double load_cpu = seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;
    long rss_after = resident_kib();
    if (cat == NULL) {
        fprintf(stderr, "bench_recommend: %s\n", err);
        return 1;
    }
    if (o.catalog == path && !o.keep)
        unlink(path);

    const struct vt_catalog_stats *stats = vt_catalog_stats(cat);
    printf("catalog: %zu products, %zu brands, %zu categories, %zu rejected\n",
           stats->products, stats->brands, stats->categories, stats->rejected);
    printf("load: %.1f ms wall, %.1f ms CPU; resident memory +%.1f MiB (%.1f MiB total)\n",
           load_wall * 1e3, load_cpu * 1e3, (double)(rss_after - rss_before) / 1024.0,
           (double)rss_after / 1024.0);
    if (vt_catalog_size(cat) == 0) {
        fprintf(stderr, "bench_recommend: the catalog is empty\n");
        vt_catalog_free(cat);
        return 1;
    }

    struct vt_world *world = vt_world_new_static(cat);
    struct vt_neighbors **neighbors = NULL;
    if (world == NULL) {
        fprintf(stderr, "bench_recommend: out of memory\n");
        return 1;
    }
    struct vt_trending *trending = (struct vt_trending *)world->trending;
    if (make_aggregates(world, trending, &neighbors) != 0) {
        fprintf(stderr, "bench_recommend: out of memory\n");
        return 1;
    }

    struct vt_rules *rules = o.rules != NULL
                                 ? vt_rules_load(o.rules, err, sizeof err)
                                 : vt_rules_parse(sample_rules, sizeof sample_rules - 1,
                                                  "sample rules", err, sizeof err);
    if (rules == NULL) {
        fprintf(stderr, "bench_recommend: %s\n", err);
        return 1;
    }
    printf("aggregates: %u trending, %d per category and brand, %d neighbours per product; "
           "%zu rules\n",
           trending->global->n, TRENDING_KEYED, NEIGHBORS, vt_rules_count(rules));

    struct vt_profile *profiles = calloc(PROFILES, sizeof *profiles);
    struct vt_rec_request *requests = calloc(REQUESTS, sizeof *requests);
    double *wall_us = calloc((size_t)o.calls, sizeof *wall_us);
    struct vt_rec_result *result = malloc(sizeof *result);
    uint32_t *ids = calloc(REQUESTS * RERANK_IDS, sizeof *ids);
    struct vt_rerank_item *reranked = calloc(RERANK_IDS, sizeof *reranked);
    if (profiles == NULL || requests == NULL || wall_us == NULL || result == NULL ||
        ids == NULL || reranked == NULL) {
        fprintf(stderr, "bench_recommend: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < PROFILES; i++)
        make_profile(cat, &profiles[i]);
    for (size_t i = 0; i < REQUESTS; i++)
        make_request(cat, &requests[i]);
    for (size_t i = 0; i < REQUESTS * RERANK_IDS; i++)
        ids[i] = (uint32_t)rng_below((long)vt_catalog_size(cat));

    for (int run = 0; run < RUN_COUNT; run++) {
        size_t strategies[VT_STRATEGY_EMPTY + 1] = {0};
        size_t items = 0;

        cpu_start = seconds(CLOCK_PROCESS_CPUTIME_ID);
        for (long i = 0; i < o.calls; i++) {
            const struct vt_profile *p = &profiles[(size_t)i % PROFILES];
            struct vt_rec_request *req = &requests[(size_t)(i * 7) % REQUESTS];
            double t0 = seconds(CLOCK_MONOTONIC);

            if (run == RUN_RERANK) {
                vt_rerank(world, &cfg, rules, p, &ids[(size_t)(i * 7) % REQUESTS * RERANK_IDS],
                          RERANK_IDS, reranked);
                wall_us[i] = (seconds(CLOCK_MONOTONIC) - t0) * 1e6;
                continue;
            }
            struct vt_rec_request fixed = *req;
            if (run == RUN_HOME) {
                vt_rec_request_init(&fixed, 10);
            } else if (run == RUN_PRODUCT) {
                vt_rec_request_init(&fixed, 10);
                fixed.placement = VT_PLACEMENT_PRODUCT;
                fixed.product = ids[(size_t)i % (REQUESTS * RERANK_IDS)];
            }
            vt_recommend(world, &cfg, rules, p, &fixed, result);
            wall_us[i] = (seconds(CLOCK_MONOTONIC) - t0) * 1e6;
            strategies[result->strategy]++;
            items += result->n;
        }
        double cpu = seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;

        qsort(wall_us, (size_t)o.calls, sizeof *wall_us, compare_doubles);
        printf("%s: %ld calls, %.1f us CPU per call; wall p50 %.1f us, p99 %.1f us, max %.1f us",
               run_names[run], o.calls, cpu * 1e6 / (double)o.calls, wall_us[o.calls / 2],
               wall_us[o.calls * 99 / 100], wall_us[o.calls - 1]);
        if (run == RUN_RERANK) {
            printf("\n");
            continue;
        }
        printf("; %.1f items per list\n  strategies:", (double)items / (double)o.calls);
        for (int st = 0; st <= VT_STRATEGY_EMPTY; st++)
            printf(" %s %zu", vt_rec_strategy_name((enum vt_rec_strategy)st), strategies[st]);
        printf("\n");
    }

    free(profiles);
    free(requests);
    free(wall_us);
    free(result);
    free(ids);
    free(reranked);
    vt_rules_free(rules);
    free_aggregates(world, trending, neighbors);
    vt_world_free(world);
    vt_catalog_free(cat);
    return 0;
}
