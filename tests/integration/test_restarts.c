/*
 * Crash and stop: vitrine is killed with SIGKILL again and again while events stream in,
 * and stopped with SIGTERM under load. The first test compares every Redis key the killed
 * instances wrote with the keys of a second instance that read the same topic once
 * without interruption: they must be equal, value for value.
 *
 * Set VITRINE_LONG_TESTS=1 for the long version (more kills and events).
 * The tests print what they measure on lines that start with "measured:".
 */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "vitrine/util.h"

enum { SESSIONS = 40, MAX_KEYS = 4096 };

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static bool long_tests(void)
{
    const char *v = getenv("VITRINE_LONG_TESTS");
    return v != NULL && strcmp(v, "1") == 0;
}


/* Sum of the /metrics values on lines that start with `series` (a name with an optional
 * opening of its labels). */
static double metric_sum(const struct harness *h, const char *series, const char *label)
{
    char *body = NULL;
    double sum = 0;

    if (harness_http(h, "GET", "/metrics", NULL, &body, NULL) != 200) {
        free(body);
        return -1;
    }
    for (char *line = strtok(body, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (strncmp(line, series, strlen(series)) != 0)
            continue;
        if (label != NULL && strstr(line, label) == NULL)
            continue;
        const char *value = strrchr(line, ' ');
        if (value != NULL)
            sum += strtod(value + 1, NULL);
    }
    free(body);
    return sum;
}


/* ---- the event stream ---- */

static const char *const products[] = {"w-1", "w-2", "w-3", "w-4", "w-5", "m-1", "m-2",
                                       "m-3", "m-4", "c-1", "c-2", "c-3", "h-1", "h-2",
                                       "lux-1"};
#define PRODUCT_COUNT (sizeof products / sizeof products[0])

/* A small deterministic generator, so that a failing run can be repeated. */
static uint64_t next_random(uint64_t *state)
{
    *state = *state * 6364136223846793005u + 1442695040888963407u;
    return *state >> 33;
}


/* Event i of the stream for its session: views most of the time, sometimes a cart line,
 * a removal, a purchase or a page view. */
static void event_value(uint64_t *rng, int i, int session, int64_t base_ms, char *out,
                        size_t size)
{
    static const char *const types[] = {"product_view", "product_view", "product_view",
                                        "product_view", "product_image_view", "add_to_cart",
                                        "add_to_cart", "remove_from_cart", "purchase",
                                        "page_view"};
    const char *type = types[next_random(rng) % (sizeof types / sizeof types[0])];
    const char *product = products[next_random(rng) % PRODUCT_COUNT];
    int quantity = 1 + (int)(next_random(rng) % 3);
    char stamp[40];

    vt_time_format_iso8601(base_ms + (int64_t)i * 50, stamp, sizeof stamp);
    if (strcmp(type, "page_view") == 0)
        snprintf(out, size,
                 "{\"type\":\"page_view\",\"session_id\":\"crash-%d\",\"id\":\"e-%d\","
                 "\"ts\":\"%s\",\"page\":\"/p/%d\"}",
                 session, i, stamp, i);
    else
        snprintf(out, size,
                 "{\"type\":\"%s\",\"session_id\":\"crash-%d\",\"user_id\":\"u-%d\","
                 "\"id\":\"e-%d\",\"ts\":\"%s\",\"products\":[{\"id\":\"%s\","
                 "\"quantity\":%d,\"price\":%d.5}]}",
                 type, session, session, i, stamp, product, quantity, 20 + (i % 7) * 10);
}


struct stream {
    const struct harness *h;
    int total;       /* events to send */
    int burst;       /* events per burst */
    int pause_ms;    /* between bursts */
    int64_t base_ms; /* time of event 0 */
    int per_session[SESSIONS];
    atomic_int sent;
};

static void stream_init(struct stream *s, const struct harness *h, int total, int burst,
                        int pause_ms, int64_t age_ms)
{
    memset(s, 0, sizeof *s);
    s->h = h;
    s->total = total;
    s->burst = burst;
    s->pause_ms = pause_ms;
    s->base_ms = vt_now_ms() - age_ms;
}


/* Producer thread: sends the stream in bursts, so that the consumer finds a backlog and
 * works on full batches when it is killed. */
static void *stream_main(void *arg)
{
    struct stream *s = arg;
    harness_producer *p = harness_producer_new(s->h);
    uint64_t rng = 42;
    char key[32], value[512];

    for (int i = 0; i < s->total; i++) {
        int session = (int)(next_random(&rng) % SESSIONS);
        snprintf(key, sizeof key, "crash-%d", session);
        event_value(&rng, i, session, s->base_ms, value, sizeof value);
        harness_send(p, s->h->topic, key, value);
        s->per_session[session]++;
        atomic_store(&s->sent, i + 1);
        if ((i + 1) % s->burst == 0)
            harness_sleep_ms(s->pause_ms);
    }
    harness_producer_close(p);
    return NULL;
}


/* ---- comparing what two instances wrote ---- */

static int compare_lines(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}


/* The contents of one key as text that does not depend on the order Redis lists them in:
 * hash fields and set members sorted, sorted sets in their own order with scores. */
static char *dump_key(const struct harness *h, const char *key)
{
    char *type = harness_redis(h, "TYPE %s", key);
    char *raw;

    if (strcmp(type, "zset") == 0) {
        raw = harness_redis(h, "ZRANGE %s 0 -1 WITHSCORES", key);
    } else if (strcmp(type, "hash") == 0 || strcmp(type, "set") == 0) {
        bool hash = strcmp(type, "hash") == 0;
        char *list = harness_redis(h, hash ? "HGETALL %s" : "SMEMBERS %s", key);
        char *items[8192];
        size_t n = 0;

        /* Join each hash field with its value, then sort. */
        for (char *line = strtok(list, "\n"); line != NULL && n < 8192;
             line = strtok(NULL, "\n")) {
            if (hash) {
                char *value = strtok(NULL, "\n");
                size_t len = strlen(line) + (value ? strlen(value) : 0) + 2;
                items[n] = malloc(len);
                snprintf(items[n], len, "%s=%s", line, value ? value : "");
            } else {
                items[n] = strdup(line);
            }
            n++;
        }
        qsort(items, n, sizeof items[0], compare_lines);
        struct vt_buf b;
        vt_buf_init(&b, 16 << 20);
        vt_buf_appends(&b, "");
        for (size_t i = 0; i < n; i++) {
            vt_buf_printf(&b, "%s\n", items[i]);
            free(items[i]);
        }
        free(list);
        raw = b.data;
    } else {
        raw = harness_redis(h, "GET %s", key);
    }
    free(type);
    return raw;
}


/* Largest relative difference between the scores of two sorted-set dumps with the same
 * members ("member\nscore\n" pairs); -1 when the members differ. */
static double score_difference(const char *da, const char *db)
{
    char *a = strdup(da), *b = strdup(db);
    char *sa = NULL, *sb = NULL;
    double worst = 0;
    size_t na = 0, nb = 0;

    for (char *m = strtok_r(a, "\n", &sa); m != NULL; m = strtok_r(NULL, "\n", &sa))
        na++;
    for (char *m = strtok_r(b, "\n", &sb); m != NULL; m = strtok_r(NULL, "\n", &sb))
        nb++;
    free(a);
    free(b);
    if (na != nb)
        return -1;
    /* For each member of a, find it in b and compare the scores. */
    a = strdup(da);
    sa = NULL;
    for (char *m = strtok_r(a, "\n", &sa); m != NULL && worst >= 0;
         m = strtok_r(NULL, "\n", &sa)) {
        char *score = strtok_r(NULL, "\n", &sa);
        char needle[512];
        snprintf(needle, sizeof needle, "\n%s\n", m);
        size_t mlen = strlen(m);
        const char *at = strncmp(db, m, mlen) == 0 && db[mlen] == '\n' ? db - 1
                                                                         : strstr(db, needle);
        if (score == NULL || at == NULL) {
            worst = -1;
            break;
        }
        double x = strtod(score, NULL), y = strtod(at + 1 + mlen + 1, NULL);
        double scale = fabs(x) > fabs(y) ? fabs(x) : fabs(y);
        double rel = scale > 0 ? fabs(x - y) / scale : 0;
        if (rel > worst)
            worst = rel;
    }
    free(a);
    return worst;
}


/* Compare key `suffix` under both prefixes; returns false and names the key when the
 * contents differ. A shared aggregate adds up events of all partitions, whose relative
 * order differs between two reads, and floating-point sums depend on their order: its
 * scores may differ in the last bits (up to `tolerance`, relative). *rounding receives
 * the largest such gap. */
static bool same_key(const struct harness *a, const struct harness *b, const char *suffix,
                     double tolerance, double *rounding)
{
    char ka[256], kb[256];

    snprintf(ka, sizeof ka, "%s%s", a->prefix, suffix);
    snprintf(kb, sizeof kb, "%s%s", b->prefix, suffix);
    char *type = harness_redis(a, "TYPE %s", ka);
    char *da = dump_key(a, ka);
    char *db = dump_key(b, kb);
    bool same = strcmp(da, db) == 0;
    double diff = 0;
    if (!same && strcmp(type, "zset") == 0) {
        diff = score_difference(da, db);
        same = diff >= 0 && diff <= tolerance;
        if (diff > *rounding)
            *rounding = diff;
    }
    if (!same)
        fprintf(stderr, "key %s differs (relative score gap %.3g, -1: other members):\n"
                "-- after kills --\n%s\n-- read once --\n%s\n", suffix, diff, da, db);
    free(type);
    free(da);
    free(db);
    return same;
}


/* Every key the instance wrote under its prefix, without the prefix, sorted. Left out:
 * keys whose values hold wall-clock times (also each visitor's list of sessions, ":s"),
 * each profile's saved replies for redeliveries (":ax"), which follow the batch
 * boundaries, and each session's snapshot of its visitor (":v"), which a redelivery
 * takes again from the visitor's current state. */
static size_t list_keys(const struct harness *h, char **keys, size_t max)
{
    char *all = harness_redis(h, "KEYS %s*", h->prefix);
    size_t n = 0, plen = strlen(h->prefix);

    for (char *line = strtok(all, "\n"); line != NULL && n < max; line = strtok(NULL, "\n")) {
        if (strstr(line, "{agg}:i2i:dirty") != NULL || strstr(line, "{agg}:al:") != NULL ||
            strstr(line, "{agg}:lease") != NULL || strstr(line, "}:ax") != NULL ||
            strstr(line, "}:v") != NULL ||
            (strstr(line, "{#") != NULL && strstr(line, "}:s") != NULL))
            continue;
        keys[n++] = strdup(line + plen);
    }
    free(all);
    qsort(keys, n, sizeof keys[0], compare_lines);
    return n;
}


/* Wait (up to 30 s) until the instance is idle: nothing left to consume and no batch
 * finished for 1.5 s. Its profiles are written first, so they can be complete while the
 * visitor and aggregate steps of its last batch still run. */
static void wait_steps_done(const struct harness *h)
{
    double previous = -1;
    int quiet = 0;

    for (int i = 0; i < 100 && quiet < 5; i++) {
        double batches = metric_sum(h, "vitrine_ingest_batches_total", NULL);
        double lag = metric_sum(h, "vitrine_consumer_lag{", NULL);
        quiet = batches == previous && lag == 0 ? quiet + 1 : 0;
        previous = batches;
        harness_sleep_ms(300);
    }
    cr_expect_geq(quiet, 5, "%s did not become idle within 30 s", h->name);
}


static void wait_all_sessions(const struct harness *h, const struct stream *s, int timeout_s)
{
    for (int i = 0; i < SESSIONS; i++) {
        char session[32];
        snprintf(session, sizeof session, "crash-%d", i);
        int64_t events = harness_wait_events(h, session, s->per_session[i], timeout_s);
        cr_assert_eq(events, s->per_session[i], "%s on %s has %" PRId64 " events, expected %d",
                     session, h->name, events, s->per_session[i]);
    }
}


Test(restarts, sigkill_mid_batches_changes_no_profile, .timeout = 420)
{
    int kills = long_tests() ? 30 : 6;
    static struct stream s;
    struct harness h, ref;
    const char *extra[] = {"VITRINE_INGEST_BATCH_SIZE=200", NULL};
    pthread_t producer;
    uint64_t rng = 7;
    int mid_batch = 0;

    harness_init(&h, "crash");
    stream_init(&s, &h, kills * 1000, 400, 250, 6 * 3600 * 1000);
    cr_assert(pthread_create(&producer, NULL, stream_main, &s) == 0);

    /* Start, wait until the instance applies batches, and kill it a random moment later.
     * A restarted member waits for the killed one's session timeout before it gets the
     * partitions, so the stream piles up meanwhile. */
    int64_t started = mono_ms();
    double redelivered = 0;
    for (int k = 0; k < kills; k++) {
        harness_start(&h, extra);
        double applied = 0;
        for (int i = 0; i < 400 && applied <= 0; i++, harness_sleep_ms(50))
            applied = metric_sum(&h, "vitrine_ingest_batch_records_total", NULL);
        harness_sleep_ms((int)(next_random(&rng) % 200));
        double before = metric_sum(&h, "vitrine_ingest_batch_records_total", NULL);
        /* Records the previous kill left applied but not committed come again. */
        redelivered += metric_sum(&h, "vitrine_events_total", "outcome=\"duplicate\"");
        kill(h.pid, SIGKILL);
        waitpid(h.pid, NULL, 0);
        h.pid = 0;
        if (before > 0)
            mid_batch++;
    }
    pthread_join(producer, NULL);

    /* The last start reads the rest. */
    harness_start(&h, extra);
    wait_all_sessions(&h, &s, 120);
    redelivered += metric_sum(&h, "vitrine_events_total", "outcome=\"duplicate\"");
    int64_t took = mono_ms() - started;

    /* A second instance with its own group and prefix reads the same topic once. */
    harness_init(&ref, "crash-ref");
    vt_strlcpy(ref.topic, h.topic, sizeof ref.topic);
    snprintf(ref.prefix, sizeof ref.prefix, "t%dref:", (int)getpid());
    harness_start(&ref, extra);
    wait_all_sessions(&ref, &s, 120);
    /* The profiles are written first; let both finish the visitor and aggregate steps of
     * their last batches. */
    wait_steps_done(&h);
    wait_steps_done(&ref);

    /* Every key equal, value for value: profiles and the shared aggregates. */
    static char *keys_h[MAX_KEYS], *keys_ref[MAX_KEYS];
    size_t nh = list_keys(&h, keys_h, MAX_KEYS);
    size_t nr = list_keys(&ref, keys_ref, MAX_KEYS);
    cr_assert_eq(nh, nr, "the killed instances wrote %zu keys, the reference %zu", nh, nr);
    size_t differing = 0, profile_keys = 0;
    double rounding = 0;
    for (size_t i = 0; i < nh; i++) {
        cr_assert_str_eq(keys_h[i], keys_ref[i], "key sets differ");
        /* Profiles must be equal to the bit. Aggregates sum events of several partitions in
         * another order and round each sum to a whole stored unit (profile.h,
         * VT_SCORE_SCALE): scores of 10^9 to 10^11 units may differ by a few units. */
        bool profile = strncmp(keys_h[i], "{crash-", 7) == 0;
        double unused = 0;
        profile_keys += profile;
        if (!same_key(&h, &ref, keys_h[i], profile ? 0 : 1e-8, profile ? &unused : &rounding))
            differing++;
    }
    cr_assert_eq(differing, 0, "%zu of %zu keys differ from the uninterrupted run",
                 differing, nh);

    /* The kept replies expire within an hour; the profile keeps profile.ttl_s. */
    char *ttl = harness_redis(&h, "TTL %s{crash-0}:ax", h.prefix);
    long ttl_s = strtol(ttl, NULL, 10);
    cr_expect(ttl_s > 0 && ttl_s <= 3600, "TTL of the kept replies: %s", ttl);
    free(ttl);

    printf("measured: crash: %d SIGKILLs (%d after batches had been applied) while %d events "
           "for %d sessions streamed in; afterwards all %zu profile keys equal those of one "
           "uninterrupted read to the bit, and all %zu aggregate keys up to a relative "
           "rounding gap of %.1e; the restarted instances skipped %.0f redelivered events "
           "that the killed ones had applied; %.1f s in all\n",
           kills, mid_batch, s.total, SESSIONS, profile_keys, nh - profile_keys, rounding,
           redelivered, (double)took / 1000.0);
    for (size_t i = 0; i < nh; i++) {
        free(keys_h[i]);
        free(keys_ref[i]);
    }
    harness_stop(&h, 20);
    harness_stop(&ref, 20);
}


/* ---- SIGTERM under load ---- */

struct load {
    const struct harness *h;
    atomic_bool stop;
    int answered;  /* complete answers */
    int refused;   /* connection refused or closed before a status line */
    int bad;       /* any other status than 200 */
};

/* HTTP client thread: requests segments until l->stop is set. */
static void *load_main(void *arg)
{
    struct load *l = arg;
    int i = 0;

    while (!atomic_load(&l->stop)) {
        char path[64], *body = NULL;
        snprintf(path, sizeof path, "/v1/sessions/crash-%d/segment", i++ % SESSIONS);
        int status = harness_http(l->h, "GET", path, NULL, &body, NULL);
        if (status == 200 && body != NULL && strstr(body, "\"segment\"") != NULL)
            l->answered++;
        else if (status <= 0)
            l->refused++;
        else
            l->bad++;
        free(body);
        if (status <= 0)
            harness_sleep_ms(5);
    }
    return NULL;
}


Test(restarts, sigterm_under_load_drains_cleanly, .timeout = 240)
{
    static struct stream s;
    struct harness h;
    struct load l = {0};
    pthread_t client;
    const char *extra[] = {"VITRINE_INGEST_BATCH_SIZE=500", NULL};

    harness_init(&h, "drain");
    stream_init(&s, &h, 20000, 20000, 0, 3600 * 1000);
    stream_main(&s); /* a backlog of 20,000 events before the start */

    harness_start(&h, extra);
    l.h = &h;
    cr_assert(pthread_create(&client, NULL, load_main, &l) == 0);
    double applied = 0;
    for (int i = 0; i < 400 && applied < 2000; i++, harness_sleep_ms(25))
        applied = metric_sum(&h, "vitrine_ingest_batch_records_total", NULL);
    cr_assert(applied >= 2000 && applied < s.total,
              "the stop must come while the backlog is being read (%.0f applied)", applied);

    /* SIGTERM in the middle of the backlog: the batch in hand is finished, its offsets
     * committed, the consumer leaves the group and HTTP stops. */
    int64_t sent = mono_ms();
    kill(h.pid, SIGTERM);
    int wstatus = 0;
    while (waitpid(h.pid, &wstatus, WNOHANG) == 0 && mono_ms() - sent < 30000)
        harness_sleep_ms(10);
    int64_t stop_ms = mono_ms() - sent;
    atomic_store(&l.stop, true);
    pthread_join(client, NULL);
    cr_assert(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0,
              "vitrine did not exit cleanly within 30 s of SIGTERM (wait status %d)", wstatus);
    h.pid = 0;
    cr_assert_eq(l.bad, 0, "%d requests got an error or a cut answer during the stop", l.bad);

    /* The log lists the stop steps in order. */
    FILE *f = fopen(h.log_path, "r");
    cr_assert_not_null(f);
    struct vt_buf log;
    vt_buf_init(&log, 64 << 20);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        vt_buf_append(&log, chunk, n);
    fclose(f);
    vt_buf_appends(&log, "");
    /* Log lines read "<time> <level> <facility padded to 7> <message>". */
    const char *http_stopped = strstr(log.data, "HTTP    stopped\n");
    const char *closing = strstr(log.data, "closing the consumer\n");
    const char *ingest_stopped = strstr(log.data, "INGEST  stopped\n");
    cr_assert(http_stopped && closing && ingest_stopped && http_stopped < ingest_stopped,
              "stop steps missing or out of order in %s", h.log_path);
    cr_assert(strstr(log.data, "did not close within") == NULL,
              "the consumer did not leave its group in time");
    unsigned long long drained = 0;
    const char *line = strstr(log.data, "stopping after ");
    cr_assert(line != NULL && sscanf(line, "stopping after %llu records", &drained) == 1);
    vt_buf_free(&log);

    /* A restart reads on from the committed offsets: nothing of the drained batch comes
     * again, and the rest of the backlog is applied once. */
    const char *restart_extra[] = {"VITRINE_INGEST_BATCH_SIZE=500", NULL};
    harness_start(&h, restart_extra);
    wait_all_sessions(&h, &s, 120);
    double duplicates = metric_sum(&h, "vitrine_events_total", "outcome=\"duplicate\"");
    double reapplied = metric_sum(&h, "vitrine_events_total", "outcome=\"applied\"");
    cr_expect_eq(duplicates, 0, "%.0f events of the drained run were delivered again",
                 duplicates);
    cr_expect_eq((double)drained + reapplied, (double)s.total,
                 "%llu events read before the stop and %.0f after it, of %d",
                 drained, reapplied, s.total);

    printf("measured: SIGTERM with %.0f of %d backlog events applied and HTTP clients "
           "running: clean exit after %" PRId64 " ms; %d requests answered, %d refused or "
           "closed once HTTP stopped, 0 cut; %llu events read before the stop, %.0f after "
           "the restart, %.0f redelivered\n",
           applied, s.total, stop_ms, l.answered, l.refused, drained, reapplied, duplicates);
    harness_stop(&h, 20);
}


/* ---- rebalances ---- */

/* Start a second instance in h's group, with its own HTTP port and log. */
static void start_peer(struct harness *peer, const struct harness *h, const char *const *extra)
{
    *peer = *h;
    peer->http_port = harness_free_port();
    snprintf(peer->log_path, sizeof peer->log_path, "%.*s.peer.log",
             (int)(strlen(h->log_path) - 4), h->log_path);
    harness_start(peer, extra);
}


/* Number of log lines of an instance that contain `text`. */
static int log_count(const struct harness *h, const char *text)
{
    char line[2048];
    int n = 0;
    FILE *f = fopen(h->log_path, "r");

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL)
        n += strstr(line, text) != NULL;
    fclose(f);
    return n;
}


Test(restarts, rebalances_lose_and_repeat_nothing, .timeout = 300)
{
    static struct stream s;
    struct harness a, b;
    pthread_t producer;
    const char *extra[] = {"VITRINE_INGEST_BATCH_SIZE=100", NULL};

    harness_init(&a, "rebalance");
    /* 30 s of stream: longer than the comings and goings below. */
    stream_init(&s, &a, 12000, 100, 250, 2 * 3600 * 1000);

    /* A consumes alone; B joins mid-stream (the group splits the four partitions), leaves
     * with SIGTERM (A takes them back), joins again, and then A is killed (B takes
     * everything after A's session timeout) and comes back. */
    harness_start(&a, extra);
    cr_assert(pthread_create(&producer, NULL, stream_main, &s) == 0);
    harness_sleep_ms(1500);
    start_peer(&b, &a, extra);
    harness_sleep_ms(4000);
    int sent_at_leave = atomic_load(&s.sent);
    harness_stop(&b, 20);
    harness_sleep_ms(3000);
    start_peer(&b, &a, extra);
    harness_sleep_ms(3000);
    int sent_at_kill = atomic_load(&s.sent);
    cr_assert_lt(sent_at_kill, s.total, "the stream ended before the kill; slow it down");
    kill(a.pid, SIGKILL);
    waitpid(a.pid, NULL, 0);
    a.pid = 0;
    harness_sleep_ms(8000);
    harness_start(&a, extra);
    pthread_join(producer, NULL);

    /* Both instances write the same profiles; every event counts exactly once. */
    wait_all_sessions(&a, &s, 120);
    harness_sleep_ms(1500); /* redeliveries, if any, would show up as extra events now */
    wait_all_sessions(&a, &s, 1);

    int revoked_a = log_count(&a, "partitions revoked");
    int revoked_b = log_count(&b, "partitions revoked");
    int assigned_a = log_count(&a, "partitions assigned");
    int assigned_b = log_count(&b, "partitions assigned");
    cr_assert(revoked_a >= 1 && assigned_a >= 2 && revoked_b >= 1 && assigned_b >= 2,
              "expected rebalances: A assigned %d and revoked %d times, B assigned %d times",
              assigned_a, revoked_a, assigned_b);
    double lag = -1;
    for (int i = 0; i < 150 && lag != 0; i++, harness_sleep_ms(100))
        lag = metric_sum(&a, "vitrine_consumer_lag_total", NULL) +
              metric_sum(&b, "vitrine_consumer_lag_total", NULL);
    cr_assert_eq(lag, 0, "consumer lag still %g after the rebalances", lag);
    /* Between them, the two instances hold the topic's four partitions. */
    double held = 0;
    for (int i = 0; i < 300 && held != 4; i++, harness_sleep_ms(100))
        held = metric_sum(&a, "vitrine_consumer_assigned_partitions", NULL) +
               metric_sum(&b, "vitrine_consumer_assigned_partitions", NULL);
    cr_assert_eq(held, 4, "the instances hold %g partitions together", held);

    printf("measured: rebalances: %d events in %d sessions while a second instance joined, "
           "left (after %d events), joined again and the first was killed (after %d events) "
           "and restarted; A was assigned partitions %d times and revoked %d times, B "
           "assigned %d and revoked %d times; every event applied exactly once; lag back "
           "to 0\n",
           s.total, SESSIONS, sent_at_leave, sent_at_kill, assigned_a, revoked_a,
           assigned_b, revoked_b);
    harness_stop(&a, 20);
    harness_stop(&b, 20);
}
