/*
 * Benchmark of catalog loading and vt_recommend.
 *
 * Writes a synthetic catalog in JSON Lines (55,000 products, 800 brands, 300 categories by
 * default) to a file, loads it, and prints the load time and the growth of resident memory.
 * Then it calls vt_recommend for varied profiles and requests and prints the CPU time per
 * call (process CPU time over all calls divided by the count) and wall-time percentiles.
 *
 *   bench_recommend [--catalog FILE] [--products N] [--brands N] [--categories N]
 *                   [--calls N] [--keep]
 *
 * With --catalog the given file is loaded as it is and nothing is generated. Without it the
 * generated file goes to /tmp and is removed at the end unless --keep is given. Everything is
 * seeded by constants, so runs differ only by the machine's timing.
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
#include "vitrine/util.h"

/* Distinct profiles and requests cycled through by the timed loop. Each profile is about
 * 50 KB, so 256 of them stay small next to the catalog. */
#define PROFILES 256
#define REQUESTS 1024

struct options {
    const char *catalog;
    long products;
    long brands;
    long categories;
    long calls;
    int keep;
};

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;


/* splitmix64: a small deterministic generator, enough for synthetic data. */
static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}


static double rng_unit(void)
{
    return (double)(rng_next() >> 11) / 9007199254740992.0;
}


static long rng_below(long n)
{
    return (long)(rng_next() % (uint64_t)n);
}


/* An index in [0, n) drawn with a Zipf-like skew, so that a few brands and categories hold
 * many products, as in a real shop. */
static long rng_skewed(long n)
{
    return (long)floor(pow(rng_unit(), 2.0) * (double)n);
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
    static const char *const genders[] = {"female", "female", "female", "female", "female",
                                          "male",   "male",   "unisex", "",       ""};
    FILE *out = fopen(path, "w");

    if (out == NULL) {
        perror(path);
        return -1;
    }
    for (long i = 0; i < o->products; i++) {
        long brand = rng_skewed(o->brands);
        long category = rng_skewed(o->categories);
        long second = rng_below(o->categories);
        const char *gender = genders[rng_below(10)];
        double price = exp(1.0 + rng_unit() * 4.5);
        long stock = rng_below(100) < 8 ? 0 : rng_below(200);
        double popularity = floor(100000.0 * pow(rng_unit(), 6.0));

        fprintf(out, "{\"id\":\"P%07ld\",\"name\":\"Product %ld\",\"brand\":\"Brand %03ld\","
                     "\"categories\":[\"category-%03ld\",\"category-%03ld\"],",
                i, i, brand, category, second);
        if (gender[0] != '\0')
            fprintf(out, "\"gender\":\"%s\",", gender);
        fprintf(out, "\"price\":%.2f,\"stock\":%ld,\"popularity\":%.0f}\n", price, stock,
                popularity);
    }
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
}


/* Mostly home and product pages with 10 items, some category pages and longer lists. */
static void make_request(const struct vt_catalog *cat, struct vt_rec_request *req)
{
    size_t size = vt_catalog_size(cat);
    size_t n_categories = vt_catalog_stats(cat)->categories;
    long kind = rng_below(10);
    static const size_t limits[] = {10, 10, 10, 10, 10, 6, 20, 20, 50, 100};

    memset(req, 0, sizeof *req);
    req->placement = VT_PLACEMENT_HOME;
    req->product = VT_CATALOG_NONE;
    req->category = VT_CATALOG_NONE;
    req->limit = limits[rng_below(10)];
    if (kind < 4) {
        req->placement = VT_PLACEMENT_PRODUCT;
        req->product = (uint32_t)rng_below((long)size);
    } else if (kind < 6 && n_categories > 0) {
        req->placement = VT_PLACEMENT_CATEGORY;
        req->category = (uint32_t)rng_skewed((long)n_categories);
    } else if (kind < 7) {
        req->placement = VT_PLACEMENT_CART;
    }
    long exclude = rng_below(6);
    for (long i = 0; i < exclude; i++)
        req->exclude[req->n_exclude++] = (uint32_t)rng_below((long)size);
}


static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}


static int parse_options(int argc, char **argv, struct options *o)
{
    o->catalog = NULL;
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

    struct vt_profile *profiles = calloc(PROFILES, sizeof *profiles);
    struct vt_rec_request *requests = calloc(REQUESTS, sizeof *requests);
    double *wall_us = calloc((size_t)o.calls, sizeof *wall_us);
    struct vt_rec_result *result = malloc(sizeof *result);
    if (profiles == NULL || requests == NULL || wall_us == NULL || result == NULL) {
        fprintf(stderr, "bench_recommend: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < PROFILES; i++)
        make_profile(cat, &profiles[i]);
    for (size_t i = 0; i < REQUESTS; i++)
        make_request(cat, &requests[i]);

    size_t strategies[VT_STRATEGY_EMPTY + 1] = {0};
    size_t items = 0;
    cpu_start = seconds(CLOCK_PROCESS_CPUTIME_ID);
    for (long i = 0; i < o.calls; i++) {
        const struct vt_profile *p = &profiles[(size_t)i % PROFILES];
        const struct vt_rec_request *req = &requests[(size_t)(i * 7) % REQUESTS];
        double t0 = seconds(CLOCK_MONOTONIC);

        vt_recommend(cat, &cfg, p->exists ? p : NULL, req, result);
        wall_us[i] = (seconds(CLOCK_MONOTONIC) - t0) * 1e6;
        strategies[result->strategy]++;
        items += result->n;
    }
    double cpu = seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;

    qsort(wall_us, (size_t)o.calls, sizeof *wall_us, compare_doubles);
    printf("vt_recommend: %ld calls, %.1f us CPU per call on average (includes two clock "
           "reads per call)\n",
           o.calls, cpu * 1e6 / (double)o.calls);
    printf("wall time per call: p50 %.1f us, p99 %.1f us, max %.1f us; %.1f items per list\n",
           wall_us[o.calls / 2], wall_us[o.calls * 99 / 100], wall_us[o.calls - 1],
           (double)items / (double)o.calls);
    printf("strategies:");
    for (int s = 0; s <= VT_STRATEGY_EMPTY; s++)
        printf(" %s %zu", vt_rec_strategy_name((enum vt_rec_strategy)s), strategies[s]);
    printf("\n");

    free(profiles);
    free(requests);
    free(wall_us);
    free(result);
    vt_catalog_free(cat);
    return 0;
}
