/*
 * Soak: a steady load of events and HTTP requests for VITRINE_SOAK_SECONDS (60 unless
 * set; VITRINE_LONG_TESTS=1 makes it 600), while the test samples the resident memory,
 * open descriptors and threads of the vitrine process. After a warm-up of a quarter of the
 * run, memory must stay flat: the end of the run may not exceed the level after the
 * warm-up by more than a quarter (plus 8 MiB for the allocator's rounding).
 *
 * The memory figures mean something only for a build without sanitizers, whose allocators
 * keep freed memory in quarantine: tests/run.sh runs this suite on the release build.
 * The test prints what it measures on lines that start with "measured:".
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "vitrine/util.h"

enum { SAMPLES_MAX = 4096, SESSIONS = 20000, EVENTS_PER_SECOND = 400, CLIENTS = 2,
       REQUESTS_PER_SECOND = 600 /* of all clients together */ };

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static int soak_seconds(void)
{
    const char *v = getenv("VITRINE_SOAK_SECONDS");
    const char *long_tests = getenv("VITRINE_LONG_TESTS");
    int64_t s;

    if (v != NULL && vt_parse_int64(v, 10, 86400, &s) == 0)
        return (int)s;
    return long_tests != NULL && strcmp(long_tests, "1") == 0 ? 600 : 60;
}


/* Resident memory (kB) and threads of a process, from /proc/<pid>/status. */
static void process_status(pid_t pid, int64_t *rss_kb, int64_t *threads)
{
    char path[64], line[256];

    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    *rss_kb = *threads = -1;
    if (f == NULL)
        return;
    while (fgets(line, sizeof line, f) != NULL) {
        long long v;
        if (sscanf(line, "VmRSS: %lld kB", &v) == 1)
            *rss_kb = v;
        else if (sscanf(line, "Threads: %lld", &v) == 1)
            *threads = v;
    }
    fclose(f);
}


static int open_descriptors(pid_t pid)
{
    char path[64];
    int n = 0;

    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    for (struct dirent *e = readdir(d); e != NULL; e = readdir(d))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}


struct soak {
    const struct harness *h;
    int64_t until_ms;
    atomic_long events;
    atomic_long requests;
    atomic_long failed; /* any status but 200 */
};

/* Producer thread: EVENTS_PER_SECOND events over SESSIONS sessions, so new profiles keep
 * appearing for the whole run. */
static void *produce_main(void *arg)
{
    static const char *const types[] = {"product_view", "product_view", "product_view",
                                        "add_to_cart", "purchase", "product_image_view"};
    static const char *const products[] = {"w-1", "w-2", "w-3", "m-1", "m-2", "c-1", "c-2",
                                           "h-1", "lux-1"};
    struct soak *s = arg;
    harness_producer *p = harness_producer_new(s->h);
    char key[32], value[512], stamp[40];
    long i = 0;

    while (mono_ms() < s->until_ms) {
        int64_t second = mono_ms();
        for (int k = 0; k < EVENTS_PER_SECOND; k++, i++) {
            snprintf(key, sizeof key, "soak-%ld", (i * 7919) % SESSIONS);
            vt_time_format_iso8601(vt_now_ms(), stamp, sizeof stamp);
            snprintf(value, sizeof value,
                     "{\"type\":\"%s\",\"session_id\":\"%s\",\"ts\":\"%s\","
                     "\"products\":[{\"id\":\"%s\",\"quantity\":1,\"price\":%ld.5}],"
                     "\"placement\":\"home\",\"position\":%ld}",
                     types[i % 6], key, stamp, products[(i / 3) % 9], 10 + i % 90,
                     1 + i % 12);
            harness_send(p, s->h->topic, key, value);
        }
        atomic_fetch_add(&s->events, EVENTS_PER_SECOND);
        int64_t rest = 1000 - (mono_ms() - second);
        if (rest > 0)
            harness_sleep_ms((int)rest);
    }
    harness_producer_close(p);
    return NULL;
}


/* HTTP client thread: every storefront and analyst route in turn, at its share of
 * REQUESTS_PER_SECOND. */
static void *request_main(void *arg)
{
    struct soak *s = arg;
    long i = 0;
    char path[128];
    int64_t started = mono_ms();

    while (mono_ms() < s->until_ms) {
        int64_t due = started + i * 1000 * CLIENTS / REQUESTS_PER_SECOND;
        if (due > mono_ms())
            harness_sleep_ms((int)(due - mono_ms()));
        char *body = NULL;
        int status;
        long session = (i * 104729) % SESSIONS;

        switch (i++ % 6) {
        case 0:
            snprintf(path, sizeof path, "/v1/sessions/soak-%ld/segment", session);
            status = harness_http(s->h, "GET", path, NULL, &body, NULL);
            break;
        case 1:
            snprintf(path, sizeof path, "/v1/sessions/soak-%ld/recommendations", session);
            status = harness_http(s->h, "GET", path, NULL, &body, NULL);
            break;
        case 2:
            snprintf(path, sizeof path, "/v1/sessions/soak-%ld/rerank", session);
            status = harness_http_body(s->h, "POST", path, NULL,
                                       "{\"product_ids\":[\"w-1\",\"m-1\",\"c-1\",\"x-9\"]}",
                                       &body, NULL);
            break;
        case 3:
            status = harness_http(s->h, "GET", "/v1/trending?limit=20", NULL, &body, NULL);
            break;
        case 4:
            status = harness_http(s->h, "GET", "/v1/products/w-1/similar", NULL, &body, NULL);
            break;
        default:
            snprintf(path, sizeof path, "/v1/profiles/soak-%ld", session);
            status = harness_http(s->h, "GET", path, NULL, &body, NULL);
            break;
        }
        free(body);
        atomic_fetch_add(&s->requests, 1);
        if (status != 200)
            atomic_fetch_add(&s->failed, 1);
    }
    return NULL;
}


Test(soak, steady_load_keeps_memory_flat, .timeout = 90000)
{
    int seconds = soak_seconds();
    static int64_t rss[SAMPLES_MAX], threads[SAMPLES_MAX];
    static int fds[SAMPLES_MAX];
    struct harness h;
    struct soak s = {0};
    pthread_t producer, clients[CLIENTS];
    size_t n = 0;

    harness_init(&h, "soak");
    harness_start(&h, NULL);
    s.h = &h;
    s.until_ms = mono_ms() + (int64_t)seconds * 1000;
    cr_assert(pthread_create(&producer, NULL, produce_main, &s) == 0);
    for (int i = 0; i < CLIENTS; i++)
        cr_assert(pthread_create(&clients[i], NULL, request_main, &s) == 0);

    /* One sample per second of the run (more than SAMPLES_MAX seconds: every k-th). */
    int every = seconds / SAMPLES_MAX + 1;
    for (int t = 0; mono_ms() < s.until_ms; t++) {
        harness_sleep_ms(1000);
        if (t % every == 0 && n < SAMPLES_MAX) {
            process_status(h.pid, &rss[n], &threads[n]);
            fds[n] = open_descriptors(h.pid);
            n++;
        }
    }
    pthread_join(producer, NULL);
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(clients[i], NULL);
    cr_assert_gt(n, 8, "too few samples");

    /* Memory after the warm-up (the mean of the second quarter) against the end (the mean
     * of the last eighth), and the peak. */
    int64_t warm = 0, end = 0, peak = 0;
    size_t q1 = n / 4, q2 = n / 2, e0 = n - n / 8;
    for (size_t i = q1; i < q2; i++)
        warm += rss[i];
    warm /= (int64_t)(q2 - q1);
    for (size_t i = e0; i < n; i++)
        end += rss[i];
    end /= (int64_t)(n - e0);
    for (size_t i = 0; i < n; i++)
        peak = rss[i] > peak ? rss[i] : peak;

    long applied = (long)harness_metric(&h, "vitrine_ingest_batch_records_total");
    printf("measured: soak of %d s: %ld events sent (%ld read), %ld HTTP requests (%ld not "
           "200); vitrine resident memory %.1f MiB at start, %.1f MiB after the warm-up, "
           "%.1f MiB at the end, peak %.1f MiB; threads %" PRId64 " -> %" PRId64 "; open "
           "descriptors %d -> %d\n",
           seconds, (long)atomic_load(&s.events), applied, (long)atomic_load(&s.requests),
           (long)atomic_load(&s.failed), (double)rss[0] / 1024.0, (double)warm / 1024.0,
           (double)end / 1024.0, (double)peak / 1024.0, threads[0], threads[n - 1], fds[0],
           fds[n - 1]);
    cr_expect_eq(atomic_load(&s.failed), 0, "requests failed under steady load");
    cr_expect_leq(end, warm + warm / 4 + 8192, "resident memory grew from %" PRId64 " kB "
                  "after the warm-up to %" PRId64 " kB at the end", warm, end);
    cr_expect_eq(threads[n - 1], threads[q1], "the number of threads changed");
    cr_expect_leq(fds[n - 1], fds[q1] + 8, "open descriptors grew from %d to %d", fds[q1],
                  fds[n - 1]);
    harness_stop(&h, 30);
}
