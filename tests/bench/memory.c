/*
 * Memory of vitrine and of its profiles in Redis.
 *
 *   bench_memory [--redis-host HOST] [--redis-port PORT] [--prefix PREFIX] [--pid PID]
 *                [--sample N] [--heavy-marker TEXT] [--used-before BYTES]
 *
 * Inputs:
 *   - vitrine's Redis (default 127.0.0.1:6379) and key prefix (redis.prefix, default "vt:");
 *   - the process id of a running vitrine, for its resident memory;
 *   - the marker in the id of near-cap sessions (default "-cap-", as bench_populate
 *     writes them);
 *   - Redis INFO used_memory before the population was written (populate.sh prints it).
 *
 * Steps:
 *   1. VmRSS and VmHWM (peak) of the process from /proc/PID/status.
 *   2. SCAN of every key under the prefix with MEMORY USAGE ... SAMPLES 0 (exact for
 *      sets and hashes), summed by key type: the profile keys "<prefix>{<session>}:<type>"
 *      of docs/architecture.md, per kind of session (typical or near cap), the visitor
 *      keys "<prefix>{#<visitor>}:..." and the aggregate keys "<prefix>{agg}:...". A
 *      profile, and a visitor, counts once per ":p" key.
 *   3. For a sample of profiles of each kind (reservoir sampling, --sample each, default
 *      1000), the sum of MEMORY USAGE over all its keys, for percentiles.
 *   4. INFO memory used_memory, and with --used-before the growth per profile, which also
 *      contains the aggregates the population wrote and the allocator's overhead.
 * MEMORY USAGE (Redis 7.0) counts a key's name, value and dictionary entry, not the entry
 * in the expiry dictionary, so its sums are a little under what INFO shows.
 *
 * Output: a few lines for people, then as the last line on stdout
 *
 *   result: vitrine_rss_kib=R vitrine_rss_peak_kib=P redis_used_memory=U profiles=N
 *           profiles_typical=T profiles_heavy=H typical_bytes_mean=M typical_bytes_p50=B
 *           typical_bytes_p90=B typical_ax_bytes_mean=X typical_ax_share=F
 *           heavy_bytes_mean=M heavy_bytes_p50=B heavy_ax_share=F agg_keys=K agg_bytes=A
 *           used_growth_per_profile=G visitors=V visitor_bytes_mean=VB
 *
 * (one line). Figures that cannot be measured (no --pid, no profile of a kind, no
 * --used-before) are printed as "na". The exit status is 0 on success, 1 when Redis or
 * the process cannot be read, and 2 for invalid arguments.
 */
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vitrine/util.h"

#define SCAN_COUNT "1000"
#define PREFIX_MAX 64
#define KEY_MAX 512

/* The profile key types of docs/architecture.md, "Redis keys". */
enum key_type { K_P, K_CAT, K_BRAND, K_TIER, K_RV, K_CART, K_BUY, K_SEEN, K_CLK, K_AX, K_COUNT };

static const char *const key_suffixes[K_COUNT] = {
    [K_P] = "p",       [K_CAT] = "cat", [K_BRAND] = "brand", [K_TIER] = "tier", [K_RV] = "rv",
    [K_CART] = "cart", [K_BUY] = "buy", [K_SEEN] = "seen",   [K_CLK] = "clk",   [K_AX] = "ax",
};

enum kind { TYPICAL, HEAVY, KINDS };

static const char *const kind_names[KINDS] = {"typical", "near cap"};

struct options {
    const char *host;
    int port;
    const char *prefix;
    long pid;
    long sample;
    const char *heavy_marker;
    long long used_before; /* -1 when not given */
};

struct totals {
    long long bytes[KINDS][K_COUNT];
    long long keys[KINDS][K_COUNT];
    long long other_profile_keys; /* profile keys of a type not listed above */
    long long other_profile_bytes;
    long long agg_keys;
    long long visitor_keys; /* "<prefix>{#<visitor>}:...", counted apart from profiles */
    long long visitor_bytes;
    long long visitors;     /* their ":p" keys */
    long long agg_bytes;
    long long unknown_keys; /* under the prefix, neither profile nor aggregate */
};

struct sample {
    char **ids;
    long n;
    long seen;
};

static int parse_options(int argc, char **argv, struct options *o)
{
    *o = (struct options){.host = "127.0.0.1",
                          .port = 6379,
                          .prefix = "vt:",
                          .pid = 0,
                          .sample = 1000,
                          .heavy_marker = "-cap-",
                          .used_before = -1};

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int64_t value;

        if (i + 1 >= argc) {
            fprintf(stderr, "bench_memory: option %s needs a value\n", arg);
            return -1;
        }
        const char *val = argv[++i];
        if (strcmp(arg, "--redis-host") == 0) {
            o->host = val;
        } else if (strcmp(arg, "--prefix") == 0 && strlen(val) <= PREFIX_MAX) {
            o->prefix = val;
        } else if (strcmp(arg, "--heavy-marker") == 0 && val[0] != '\0') {
            o->heavy_marker = val;
        } else if (strcmp(arg, "--redis-port") == 0 && vt_parse_int64(val, 1, 65535, &value) == 0) {
            o->port = (int)value;
        } else if (strcmp(arg, "--pid") == 0 && vt_parse_int64(val, 1, INT32_MAX, &value) == 0) {
            o->pid = (long)value;
        } else if (strcmp(arg, "--sample") == 0 && vt_parse_int64(val, 1, 1000000, &value) == 0) {
            o->sample = (long)value;
        } else if (strcmp(arg, "--used-before") == 0 &&
                   vt_parse_int64(val, 0, INT64_MAX, &value) == 0) {
            o->used_before = (long long)value;
        } else {
            fprintf(stderr, "bench_memory: unknown option or invalid value: %s %s\n", arg, val);
            return -1;
        }
    }
    return 0;
}

/* VmRSS and VmHWM of a process, in KiB. Returns -1 when /proc has no such process. */
static int process_memory(long pid, long *rss_kib, long *peak_kib)
{
    char path[64], line[256];
    FILE *f;

    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    *rss_kib = *peak_kib = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            *rss_kib = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "VmHWM:", 6) == 0)
            *peak_kib = strtol(line + 6, NULL, 10);
    }
    fclose(f);
    return *rss_kib < 0 ? -1 : 0;
}

/* Split "<prefix>{<id>}:<type>" into id and type; returns false for other keys. */
static bool split_profile_key(const char *key, size_t prefix_len, const char **id, size_t *id_len,
                              const char **type)
{
    const char *open = key + prefix_len;
    const char *close;

    if (*open != '{' || (close = strstr(open, "}:")) == NULL)
        return false;
    *id = open + 1;
    *id_len = (size_t)(close - open - 1);
    *type = close + 2;
    return true;
}

static int type_index(const char *type)
{
    for (int t = 0; t < K_COUNT; t++) {
        if (strcmp(type, key_suffixes[t]) == 0)
            return t;
    }
    return -1;
}

static enum kind kind_of(const struct options *o, const char *id, size_t id_len)
{
    char copy[KEY_MAX];

    snprintf(copy, sizeof copy, "%.*s", (int)id_len, id);
    return strstr(copy, o->heavy_marker) != NULL ? HEAVY : TYPICAL;
}

/* Reservoir sampling of profile ids (Algorithm R), deterministic by a fixed seed. */
static void sample_offer(struct sample *s, long capacity, const char *id, size_t id_len,
                         uint64_t *rng)
{
    long slot = -1;

    s->seen++;
    if (s->n < capacity) {
        slot = s->n++;
    } else {
        *rng = *rng * 6364136223846793005ull + 1442695040888963407ull;
        long j = (long)((*rng >> 33) % (uint64_t)s->seen);
        if (j >= capacity)
            return;
        slot = j;
        free(s->ids[slot]);
    }
    s->ids[slot] = strndup(id, id_len);
}

static redisReply *command_checked(redisContext *c, const char *command_name, redisReply *reply)
{
    if (reply == NULL) {
        fprintf(stderr, "bench_memory: %s failed: %s\n", command_name, c->errstr);
        return NULL;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "bench_memory: %s failed: %s\n", command_name, reply->str);
        freeReplyObject(reply);
        return NULL;
    }
    return reply;
}

/* Step 2: every key under the prefix, with its MEMORY USAGE. */
static int scan_keys(redisContext *c, const struct options *o, struct totals *t,
                     struct sample samples[KINDS])
{
    char pattern[PREFIX_MAX + 2];
    char cursor[32] = "0";
    size_t prefix_len = strlen(o->prefix);
    uint64_t rng = 42;

    snprintf(pattern, sizeof pattern, "%s*", o->prefix);
    do {
        redisReply *scan = command_checked(
            c, "SCAN", redisCommand(c, "SCAN %s MATCH %s COUNT " SCAN_COUNT, cursor, pattern));
        if (scan == NULL)
            return -1;
        if (scan->type != REDIS_REPLY_ARRAY || scan->elements != 2) {
            fprintf(stderr, "bench_memory: unexpected SCAN reply\n");
            freeReplyObject(scan);
            return -1;
        }
        vt_strlcpy(cursor, scan->element[0]->str, sizeof cursor);
        redisReply *keys = scan->element[1];

        for (size_t i = 0; i < keys->elements; i++)
            redisAppendCommand(c, "MEMORY USAGE %b SAMPLES 0", keys->element[i]->str,
                               keys->element[i]->len);
        for (size_t i = 0; i < keys->elements; i++) {
            redisReply *usage = NULL;
            if (redisGetReply(c, (void **)&usage) != REDIS_OK) {
                fprintf(stderr, "bench_memory: MEMORY USAGE failed: %s\n", c->errstr);
                freeReplyObject(scan);
                return -1;
            }
            /* A key that expired between SCAN and MEMORY USAGE gives nil: skip it. */
            long long bytes = usage->type == REDIS_REPLY_INTEGER ? usage->integer : -1;
            freeReplyObject(usage);
            if (bytes < 0)
                continue;

            const char *key = keys->element[i]->str;
            const char *id, *type;
            size_t id_len;
            if (strncmp(key + prefix_len, "{agg}", 5) == 0) {
                t->agg_keys++;
                t->agg_bytes += bytes;
                continue;
            }
            if (strncmp(key + prefix_len, "{#", 2) == 0) {
                size_t len = strlen(key);
                t->visitor_keys++;
                t->visitor_bytes += bytes;
                t->visitors += len >= 3 && strcmp(key + len - 3, "}:p") == 0;
                continue;
            }
            if (!split_profile_key(key, prefix_len, &id, &id_len, &type)) {
                t->unknown_keys++;
                continue;
            }
            int k = type_index(type);
            if (k < 0) {
                t->other_profile_keys++;
                t->other_profile_bytes += bytes;
                continue;
            }
            enum kind kind = kind_of(o, id, id_len);
            t->bytes[kind][k] += bytes;
            t->keys[kind][k]++;
            if (k == K_P)
                sample_offer(&samples[kind], o->sample, id, id_len, &rng);
        }
        freeReplyObject(scan);
    } while (strcmp(cursor, "0") != 0);
    return 0;
}

static int compare_longs(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;

    return (x > y) - (x < y);
}

/* Step 3: the whole size of each sampled profile, sorted, and the :ax bytes among them. */
static int measure_sample(redisContext *c, const struct options *o, const struct sample *s,
                          long long *sizes, long long *ax_bytes)
{
    char key[KEY_MAX];

    *ax_bytes = 0;
    for (long i = 0; i < s->n; i++) {
        for (int k = 0; k < K_COUNT; k++) {
            snprintf(key, sizeof key, "%s{%s}:%s", o->prefix, s->ids[i], key_suffixes[k]);
            redisAppendCommand(c, "MEMORY USAGE %s SAMPLES 0", key);
        }
    }
    for (long i = 0; i < s->n; i++) {
        sizes[i] = 0;
        for (int k = 0; k < K_COUNT; k++) {
            redisReply *usage = NULL;
            if (redisGetReply(c, (void **)&usage) != REDIS_OK) {
                fprintf(stderr, "bench_memory: MEMORY USAGE failed: %s\n", c->errstr);
                return -1;
            }
            long long bytes = usage->type == REDIS_REPLY_INTEGER ? usage->integer : 0;
            freeReplyObject(usage);
            sizes[i] += bytes;
            if (k == K_AX)
                *ax_bytes += bytes;
        }
    }
    qsort(sizes, (size_t)s->n, sizeof *sizes, compare_longs);
    return 0;
}

static long long used_memory(redisContext *c)
{
    redisReply *info = command_checked(c, "INFO memory", redisCommand(c, "INFO memory"));
    long long used = -1;

    if (info == NULL)
        return -1;
    const char *field = info->type == REDIS_REPLY_STRING ? strstr(info->str, "used_memory:") : NULL;
    if (field != NULL)
        used = strtoll(field + strlen("used_memory:"), NULL, 10);
    freeReplyObject(info);
    return used;
}

/* Print value into out as text, or "na" when it is negative (not measured). */
static const char *figure(char *out, size_t size, double value, int decimals)
{
    if (value < 0)
        snprintf(out, size, "na");
    else
        snprintf(out, size, "%.*f", decimals, value);
    return out;
}

int main(int argc, char **argv)
{
    struct options o;
    struct totals t = {0};
    struct sample samples[KINDS] = {{0}};

    if (parse_options(argc, argv, &o) != 0)
        return 2;

    long rss_kib = -1, peak_kib = -1;
    if (o.pid > 0 && process_memory(o.pid, &rss_kib, &peak_kib) != 0) {
        fprintf(stderr, "bench_memory: cannot read /proc/%ld/status; is vitrine running?\n", o.pid);
        return 1;
    }

    struct timeval timeout = {.tv_sec = 10};
    redisContext *c = redisConnectWithTimeout(o.host, o.port, timeout);
    if (c == NULL || c->err) {
        fprintf(stderr, "bench_memory: cannot connect to Redis at %s:%d: %s\n", o.host, o.port,
                c != NULL ? c->errstr : "out of memory");
        return 1;
    }
    redisSetTimeout(c, timeout);
    for (int k = 0; k < KINDS; k++) {
        samples[k].ids = calloc((size_t)o.sample, sizeof *samples[k].ids);
        if (samples[k].ids == NULL)
            return 1;
    }
    if (scan_keys(c, &o, &t, samples) != 0)
        return 1;
    long long used = used_memory(c);
    if (used < 0)
        return 1;

    char a[32], b[32], d[32], e[32], f[32], g[32];
    double mean[KINDS], p50[KINDS], p90[KINDS], ax_mean[KINDS], ax_share[KINDS];
    long long profiles[KINDS];
    for (int k = 0; k < KINDS; k++) {
        long long total = 0;

        profiles[k] = t.keys[k][K_P];
        for (int type = 0; type < K_COUNT; type++)
            total += t.bytes[k][type];
        mean[k] = profiles[k] > 0 ? (double)total / (double)profiles[k] : -1;
        ax_mean[k] = profiles[k] > 0 ? (double)t.bytes[k][K_AX] / (double)profiles[k] : -1;
        ax_share[k] = total > 0 ? (double)t.bytes[k][K_AX] / (double)total : -1;

        printf("%s profiles: %lld, mean %s bytes over all their keys; mean bytes per key type "
               "(keys):",
               kind_names[k], profiles[k], figure(a, sizeof a, mean[k], 0));
        for (int type = 0; type < K_COUNT; type++)
            printf(" %s %s (%lld)", key_suffixes[type],
                   figure(b, sizeof b,
                          profiles[k] > 0 ? (double)t.bytes[k][type] / (double)profiles[k] : -1, 0),
                   t.keys[k][type]);
        printf("\n");

        p50[k] = p90[k] = -1;
        if (samples[k].n == 0)
            continue;
        long long *sizes = calloc((size_t)samples[k].n, sizeof *sizes);
        long long sample_ax = 0;
        if (sizes == NULL || measure_sample(c, &o, &samples[k], sizes, &sample_ax) != 0)
            return 1;
        long n = samples[k].n;
        p50[k] = (double)sizes[n / 2];
        p90[k] = (double)sizes[n * 9 / 10];
        printf("%s profiles, sample of %ld: whole profile p50 %.0f, p90 %.0f, max %lld bytes; "
               ":ax %.0f bytes per profile\n",
               kind_names[k], n, p50[k], p90[k], sizes[n - 1], (double)sample_ax / (double)n);
        free(sizes);
        for (long i = 0; i < n; i++)
            free(samples[k].ids[i]);
    }
    printf("aggregate keys: %lld, %lld bytes; visitor keys: %lld of %lld visitors, %lld "
           "bytes; other keys under %s: %lld profile keys of other types (%lld bytes), %lld "
           "unrecognised\n",
           t.agg_keys, t.agg_bytes, t.visitor_keys, t.visitors, t.visitor_bytes, o.prefix,
           t.other_profile_keys, t.other_profile_bytes, t.unknown_keys);

    long long all_profiles = profiles[TYPICAL] + profiles[HEAVY];
    double growth = o.used_before >= 0 && all_profiles > 0
                        ? (double)(used - o.used_before) / (double)all_profiles
                        : -1;
    printf("redis used_memory: %lld bytes%s\n", used,
           o.used_before >= 0 ? "" : " (no --used-before: growth per profile not measured)");
    if (rss_kib >= 0)
        printf("vitrine pid %ld: resident %.1f MiB, peak %.1f MiB\n", o.pid, rss_kib / 1024.0,
               peak_kib / 1024.0);

    printf("result: vitrine_rss_kib=%s vitrine_rss_peak_kib=%s redis_used_memory=%lld "
           "profiles=%lld profiles_typical=%lld profiles_heavy=%lld",
           figure(a, sizeof a, (double)rss_kib, 0), figure(b, sizeof b, (double)peak_kib, 0), used,
           all_profiles, profiles[TYPICAL], profiles[HEAVY]);
    printf(" typical_bytes_mean=%s typical_bytes_p50=%s typical_bytes_p90=%s "
           "typical_ax_bytes_mean=%s typical_ax_share=%s",
           figure(a, sizeof a, mean[TYPICAL], 0), figure(b, sizeof b, p50[TYPICAL], 0),
           figure(d, sizeof d, p90[TYPICAL], 0), figure(e, sizeof e, ax_mean[TYPICAL], 0),
           figure(f, sizeof f, ax_share[TYPICAL], 3));
    printf(" heavy_bytes_mean=%s heavy_bytes_p50=%s heavy_ax_share=%s agg_keys=%lld "
           "agg_bytes=%lld used_growth_per_profile=%s visitors=%lld visitor_bytes_mean=%s\n",
           figure(a, sizeof a, mean[HEAVY], 0), figure(b, sizeof b, p50[HEAVY], 0),
           figure(d, sizeof d, ax_share[HEAVY], 3), t.agg_keys, t.agg_bytes,
           figure(g, sizeof g, growth, 0), t.visitors,
           figure(e, sizeof e,
                  t.visitors > 0 ? (double)t.visitor_bytes / (double)t.visitors : -1, 0));

    for (int k = 0; k < KINDS; k++)
        free(samples[k].ids);
    redisFree(c);
    return 0;
}
