/*
 * Catalog of a given size for the benchmarks: real products first, then synthetic ones.
 *
 *   bench_gen_catalog --products N [--base FILE] [--seed N] -o FILE
 *
 * Inputs: --base is a catalog in JSON Lines (docs/catalog.md), normally the real catalogues
 * converted by vitrine-catalog. Its non-empty lines are shuffled with a seeded permutation
 * that depends only on the base file and the seed, so that the sources mix. The catalog of
 * N products is then the first N lines of every larger one, so a product among the first
 * 5,000 lines is in the 5,000, the 50,000 and the 500,000-product catalogs alike. The first
 * min(N, base lines) shuffled lines are copied as they are. When N is larger, synthetic
 * products follow (tests/bench/synthetic.h: ids "gen-NNNNNNN", one brand per 70 and one
 * category per 180 synthetic products, as bench_recommend's default 55,000-product
 * catalog). Without --base every product is synthetic.
 *
 * Output: the catalog file, written through a temporary file renamed when complete. It is
 * then loaded with vitrine's own loader, and the last line on stdout is
 *
 *   result: products=N real=R generated=G brands=B categories=C rejected=0 seconds=S
 *
 * with the counts of that load (brands and categories over the whole file) and the time
 * of the whole run. The exit status is 0 on success, 1 when reading, writing or the check
 * load fails or rejects a line, and 2 for invalid arguments.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vitrine/catalog.h"
#include "vitrine/config.h"
#include "vitrine/log.h"
#include "vitrine/util.h"

#include "synthetic.h"

/* Synthetic products per synthetic brand and per synthetic category. */
#define PRODUCTS_PER_BRAND 70
#define PRODUCTS_PER_CATEGORY 180

/* Maximum length of a base line. vitrine-catalog's lines are far shorter. */
#define LINE_MAX_BYTES (64 * 1024)

struct options {
    const char *base;
    const char *output;
    long products;
    uint64_t seed;
};

struct lines {
    char **items;
    size_t n;
    size_t capacity;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: bench_gen_catalog --products N [--base FILE] [--seed N] -o FILE\n"
                 "  --products N  products to write, 1 to 10000000\n"
                 "  --base FILE   real catalog in JSON Lines, copied first in a seeded order\n"
                 "  --seed N      seed of the order and of the synthetic products (default 1)\n"
                 "  -o FILE       output catalog\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
    o->base = NULL;
    o->output = NULL;
    o->products = 0;
    o->seed = 1;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int64_t value;

        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_gen_catalog: option %s needs a value\n", arg);
            return -1;
        }
        const char *val = argv[++i];
        if (strcmp(arg, "--base") == 0) {
            o->base = val;
        } else if (strcmp(arg, "-o") == 0 || strcmp(arg, "--output") == 0) {
            o->output = val;
        } else if (strcmp(arg, "--products") == 0 &&
                   vt_parse_int64(val, 1, 10000000, &value) == 0) {
            o->products = (long)value;
        } else if (strcmp(arg, "--seed") == 0 && vt_parse_int64(val, 0, INT64_MAX, &value) == 0) {
            o->seed = (uint64_t)value;
        } else {
            fprintf(stderr, "bench_gen_catalog: unknown option or invalid value: %s %s\n", arg,
                    val);
            return -1;
        }
    }
    if (o->products == 0 || o->output == NULL) {
        fprintf(stderr, "bench_gen_catalog: --products and -o are required\n");
        return -1;
    }
    return 0;
}

static int lines_push(struct lines *l, const char *text, size_t len)
{
    if (l->n == l->capacity) {
        size_t capacity = l->capacity == 0 ? 4096 : l->capacity * 2;
        char **items = realloc(l->items, capacity * sizeof *items);
        if (items == NULL)
            return -1;
        l->items = items;
        l->capacity = capacity;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, text, len);
    copy[len] = '\0';
    l->items[l->n++] = copy;
    return 0;
}

static void lines_free(struct lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
}

/* Read the non-empty lines of path, without their line ends. */
static int read_lines(const char *path, struct lines *out)
{
    static char line[LINE_MAX_BYTES];
    FILE *in = fopen(path, "r");
    long number = 0;

    if (in == NULL) {
        perror(path);
        return -1;
    }
    while (fgets(line, sizeof line, in) != NULL) {
        size_t len = strlen(line);

        number++;
        if (len == sizeof line - 1 && line[len - 1] != '\n') {
            fprintf(stderr, "bench_gen_catalog: %s:%ld: line longer than %d bytes\n", path, number,
                    LINE_MAX_BYTES - 2);
            fclose(in);
            return -1;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        if (len == 0)
            continue;
        if (lines_push(out, line, len) != 0) {
            fprintf(stderr, "bench_gen_catalog: out of memory reading %s\n", path);
            fclose(in);
            return -1;
        }
    }
    int failed = ferror(in);
    fclose(in);
    if (failed) {
        fprintf(stderr, "bench_gen_catalog: reading %s failed\n", path);
        return -1;
    }
    return 0;
}

/* Fisher-Yates shuffle, seeded, so that every run with the same base gives the same order. */
static void shuffle(struct lines *l, uint64_t seed)
{
    struct bench_rng rng = {seed ^ 0x5DEECE66Dull};

    for (size_t i = l->n; i > 1; i--) {
        size_t j = (size_t)bench_rng_below(&rng, (long)i);
        char *tmp = l->items[i - 1];
        l->items[i - 1] = l->items[j];
        l->items[j] = tmp;
    }
}

static int write_catalog(const char *path, const struct lines *base, long products, uint64_t seed)
{
    long real = (long)base->n < products ? (long)base->n : products;
    long generated = products - real;
    long brands = generated / PRODUCTS_PER_BRAND + 1;
    long categories = generated / PRODUCTS_PER_CATEGORY + 1;
    struct bench_rng rng = {seed};
    FILE *out = fopen(path, "w");

    if (out == NULL) {
        perror(path);
        return -1;
    }
    for (long i = 0; i < real; i++)
        fprintf(out, "%s\n", base->items[i]);
    for (long i = 0; i < generated; i++)
        bench_write_synthetic_product(out, &rng, "gen-", i, brands, categories);
    if (fclose(out) != 0) {
        perror(path);
        return -1;
    }
    return 0;
}

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    struct options o;
    struct lines base = {0};
    char tmp_path[4096];
    char err[512];
    double started = now_seconds();

    if (parse_options(argc, argv, &o) != 0) {
        usage(stderr);
        return 2;
    }
    vt_log_threshold = VT_LOG_WARN;

    if (o.base != NULL && read_lines(o.base, &base) != 0)
        return 1;
    shuffle(&base, o.seed);

    int n = snprintf(tmp_path, sizeof tmp_path, "%s.tmp", o.output);
    if (n < 0 || (size_t)n >= sizeof tmp_path) {
        fprintf(stderr, "bench_gen_catalog: output path too long: %s\n", o.output);
        return 2;
    }
    if (write_catalog(tmp_path, &base, o.products, o.seed) != 0) {
        remove(tmp_path);
        return 1;
    }
    long real = (long)base.n < o.products ? (long)base.n : o.products;
    lines_free(&base);

    /* Load the file as vitrine will, so that a line vitrine would reject fails here. */
    struct vt_config cfg;
    vt_config_defaults(&cfg);
    struct vt_catalog *cat = vt_catalog_load(tmp_path, &cfg, err, sizeof err);
    if (cat == NULL) {
        fprintf(stderr, "bench_gen_catalog: %s\n", err);
        remove(tmp_path);
        return 1;
    }
    struct vt_catalog_stats stats = *vt_catalog_stats(cat);
    vt_catalog_free(cat);
    if (stats.rejected > 0 || stats.products != (size_t)o.products) {
        fprintf(stderr,
                "bench_gen_catalog: %s loads as %zu products with %zu rejected lines and %zu "
                "duplicate ids, expected %ld products; check the base catalog\n",
                tmp_path, stats.products, stats.rejected, stats.duplicates, o.products);
        return 1;
    }
    if (rename(tmp_path, o.output) != 0) {
        perror(o.output);
        return 1;
    }

    printf("result: products=%zu real=%ld generated=%ld brands=%zu categories=%zu rejected=%zu "
           "seconds=%.2f\n",
           stats.products, real, o.products - real, stats.brands, stats.categories, stats.rejected,
           now_seconds() - started);
    return 0;
}
