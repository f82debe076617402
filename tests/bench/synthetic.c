#include "synthetic.h"

#include <math.h>

uint64_t bench_rng_next(struct bench_rng *rng)
{
    uint64_t z = (rng->state += 0x9E3779B97F4A7C15ull);

    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double bench_rng_unit(struct bench_rng *rng)
{
    return (double)(bench_rng_next(rng) >> 11) / 9007199254740992.0;
}

long bench_rng_below(struct bench_rng *rng, long n)
{
    return (long)(bench_rng_next(rng) % (uint64_t)n);
}

long bench_rng_skewed(struct bench_rng *rng, long n)
{
    return (long)floor(pow(bench_rng_unit(rng), 2.0) * (double)n);
}

int bench_write_synthetic_product(FILE *out, struct bench_rng *rng, const char *id_prefix,
                                  long index, long brands, long categories)
{
    static const char *const genders[] = {"female", "female", "female", "female", "female",
                                          "male",   "male",   "unisex", "",       ""};
    long brand = bench_rng_skewed(rng, brands);
    long category = bench_rng_skewed(rng, categories);
    long second = bench_rng_below(rng, categories);
    const char *gender = genders[bench_rng_below(rng, 10)];
    double price = exp(1.0 + bench_rng_unit(rng) * 4.5);
    long stock = bench_rng_below(rng, 100) < 8 ? 0 : bench_rng_below(rng, 200);
    double popularity = floor(100000.0 * pow(bench_rng_unit(rng), 6.0));

    fprintf(out,
            "{\"id\":\"%s%07ld\",\"name\":\"Product %ld\",\"brand\":\"Brand %03ld\","
            "\"categories\":[\"category-%03ld\",\"category-%03ld\"],",
            id_prefix, index, index, brand, category, second);
    if (gender[0] != '\0')
        fprintf(out, "\"gender\":\"%s\",", gender);
    if (fprintf(out, "\"price\":%.2f,\"stock\":%ld,\"popularity\":%.0f}\n", price, stock,
                popularity) < 0)
        return -1;
    return 0;
}
