/*
 * Synthetic data shared by the benchmark programs: a small seeded random generator and the
 * synthetic catalog line that bench_recommend and bench_gen_catalog write.
 */
#ifndef VITRINE_BENCH_SYNTHETIC_H
#define VITRINE_BENCH_SYNTHETIC_H
#include <stdint.h>
#include <stdio.h>

/* splitmix64 state: deterministic for a given seed, enough for synthetic data. */
struct bench_rng {
    uint64_t state;
};

uint64_t bench_rng_next(struct bench_rng *rng);

/* Return a uniform number in [0, 1). */
double bench_rng_unit(struct bench_rng *rng);

/* Return a uniform whole number in [0, n), n > 0. */
long bench_rng_below(struct bench_rng *rng, long n);

/* Return an index in [0, n) drawn with a Zipf-like skew towards 0, so that a few brands
 * and categories contain many products, as in a real shop. */
long bench_rng_skewed(struct bench_rng *rng, long n);

/*
 * Write one synthetic product as a catalog line (docs/catalog.md). Its id is
 * "<id_prefix><index>" with the index as 7 digits, and its name "Product <index>". It gets a
 * skewed brand "Brand NNN" out of `brands` and two categories "category-NNN" out of
 * `categories`, the first skewed. 8 products of 10 get a gender, the price is log-uniform
 * from 2.72 to 245, 8 % have no stock, and the popularity is skewed towards 0. Returns 0, or
 * -1 when writing fails.
 */
int bench_write_synthetic_product(FILE *out, struct bench_rng *rng, const char *id_prefix,
                                  long index, long brands, long categories);

#endif
