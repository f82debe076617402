/*
 * vitrine: the active segment definitions, their reload, the stream clock, served counts
 * and member counts (see include/vitrine/segments_live.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vitrine/log.h"
#include "vitrine/metrics.h"
#include "vitrine/profile.h"
#include "vitrine/segments_live.h"
#include "vitrine/store.h"
#include "vitrine/util.h"

/* Replaced definitions waiting to be freed; a reload while all slots are taken (16 reloads
 * within VT_SEGMENTS_GRACE_S) is refused. */
#define RETIRED_MAX 16
/* How often the thread adds served counts to Redis and reads the stream clock. */
#define FLUSH_INTERVAL_MS 5000
/* The served counts expire this long after their last change. */
#define SERVED_TTL_S (30 * 86400)
#define REDIS_TIMEOUT_MS 2000

struct retired {
    struct vt_segments *segments;
    int64_t since_ms;
};

struct vt_segments_live {
    const struct vt_config *cfg;
    const struct vt_rules *rules;
    _Atomic(struct vt_segments *) current;

    /* Written by the reload (main) and the segment thread, under lock. */
    pthread_mutex_t lock;
    struct retired retired[RETIRED_MAX];
    size_t n_retired;

    /* Stream time minus wall time, written by the segment thread. */
    atomic_int_fast64_t clock_offset_ms;

    pthread_t thread;
    bool started;
    atomic_bool stop;
    pthread_mutex_t wake_lock;
    pthread_cond_t wake;

    /* Owned by the segment thread. */
    struct vt_store *store;
    char (*sample)[VT_ID_MAX + 1];
    size_t n_sample;
    uint64_t scanned;
    uint64_t random;
    struct vt_profile profile;
    struct vt_visitor_profile visitor;
};


static struct vt_segments *load_checked(const struct vt_config *cfg,
                                        const struct vt_rules *rules, char *err,
                                        size_t errsize)
{
    struct vt_segments *segments = vt_segments_load(cfg->segments_path, err, errsize);
    const char *rule = NULL, *missing;

    if (segments == NULL)
        return NULL;
    missing = rules != NULL ? vt_rules_unknown_segment(rules, segments, &rule) : NULL;
    if (missing != NULL && cfg->segments_path[0] == '\0') {
        snprintf(err, errsize, "the business rule \"%s\" (%s) names the segment \"%s\", but "
                 "segments.path is empty; set it to a file that defines the segment",
                 rule, cfg->rec_rules_path, missing);
    } else if (missing != NULL) {
        snprintf(err, errsize, "%s: the business rule \"%s\" names the segment \"%s\", which "
                 "the file does not define; define it or change the rule (%s)",
                 cfg->segments_path, rule, missing, cfg->rec_rules_path);
    }
    if (missing != NULL) {
        vt_segments_free(segments);
        return NULL;
    }
    return segments;
}


struct vt_segments_live *vt_segments_live_new(const struct vt_config *cfg,
                                              const struct vt_rules *rules, char *err,
                                              size_t errsize)
{
    struct vt_segments_live *live = calloc(1, sizeof *live);
    struct vt_segments *segments;

    if (live == NULL) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    segments = load_checked(cfg, rules, err, errsize);
    if (segments == NULL) {
        free(live);
        return NULL;
    }
    live->cfg = cfg;
    live->rules = rules;
    atomic_init(&live->current, segments);
    atomic_init(&live->clock_offset_ms, 0);
    atomic_init(&live->stop, false);
    pthread_mutex_init(&live->lock, NULL);
    pthread_mutex_init(&live->wake_lock, NULL);
    pthread_cond_init(&live->wake, NULL);
    live->random = (uint64_t)vt_now_ms() ^ (uint64_t)(uintptr_t)live;
    vt_metrics_segments_reload(true, vt_segments_count(segments));
    return live;
}


struct vt_segments *vt_segments_live_current(struct vt_segments_live *live)
{
    return atomic_load_explicit(&live->current, memory_order_acquire);
}


int64_t vt_segments_live_now_ms(const struct vt_segments_live *live)
{
    return vt_now_ms() + atomic_load_explicit(&live->clock_offset_ms, memory_order_relaxed);
}


int vt_segments_live_reload(struct vt_segments_live *live, char *err, size_t errsize)
{
    struct vt_segments *fresh = load_checked(live->cfg, live->rules, err, errsize);
    struct vt_segments *old;

    if (fresh == NULL) {
        vt_metrics_segments_reload(false, 0);
        return -1;
    }
    pthread_mutex_lock(&live->lock);
    if (live->n_retired == RETIRED_MAX) {
        pthread_mutex_unlock(&live->lock);
        vt_segments_free(fresh);
        snprintf(err, errsize, "%s: %d reloads within %d s; the replaced definitions are "
                 "still in use, try again in a minute", live->cfg->segments_path, RETIRED_MAX,
                 VT_SEGMENTS_GRACE_S);
        vt_metrics_segments_reload(false, 0);
        return -1;
    }
    old = atomic_exchange_explicit(&live->current, fresh, memory_order_acq_rel);
    live->retired[live->n_retired++] = (struct retired){old, vt_now_ms()};
    pthread_mutex_unlock(&live->lock);
    vt_metrics_segments_reload(true, vt_segments_count(fresh));
    return 0;
}


/* ---- segment thread ---- */

/* Add the served counts of one set to Redis. Counts are taken before the write; a failed
 * write loses them (logged), which only makes the served statistics a little low. */
static void flush_served(struct vt_segments_live *live, struct vt_segments *segments)
{
    const char *names[VT_SEGMENTS_MAX];
    int64_t served[VT_SEGMENTS_MAX];
    size_t n = vt_segments_count(segments);
    bool any = false;
    char err[256];

    for (size_t i = 0; i < n; i++) {
        names[i] = vt_segments_name(segments, i);
        served[i] = (int64_t)vt_segments_take_served(segments, i);
        any = any || served[i] != 0;
    }
    if (any && vt_store_segment_served_add(live->store, names, served, n, SERVED_TTL_S, err,
                                           sizeof err) != 0)
        VT_WARN("SEGMENTS", "served counts not stored: %s", err);
}


/* Flush the served counts of the replaced sets, which requests may still count in, and
 * free those past their grace period. */
static void collect_retired(struct vt_segments_live *live, bool all)
{
    int64_t now = vt_now_ms();

    pthread_mutex_lock(&live->lock);
    size_t kept = 0;
    for (size_t i = 0; i < live->n_retired; i++) {
        struct retired r = live->retired[i];
        if (live->store != NULL)
            flush_served(live, r.segments);
        if (all || now - r.since_ms >= VT_SEGMENTS_GRACE_S * 1000) {
            vt_segments_free(r.segments);
        } else {
            live->retired[kept++] = r;
        }
    }
    live->n_retired = kept;
    pthread_mutex_unlock(&live->lock);
}


static void read_clock(struct vt_segments_live *live)
{
    int64_t event_ms, wall_ms;
    char err[256];

    if (vt_store_alert_clock(live->store, &event_ms, &wall_ms, err, sizeof err) != 0) {
        VT_DEBUG("SEGMENTS", "stream clock not read: %s", err);
        return;
    }
    if (event_ms > 0 && wall_ms > 0)
        atomic_store_explicit(&live->clock_offset_ms, event_ms - wall_ms, memory_order_relaxed);
}


static uint64_t next_random(struct vt_segments_live *live)
{
    /* xorshift64*: enough for picking a uniform sample. */
    uint64_t x = live->random;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    live->random = x;
    return x * UINT64_C(2685821657736338717);
}


/* Reservoir sampling over the scanned ids: every profile has the same chance to be read. */
static void sample_id(void *arg, const char *id, size_t len)
{
    struct vt_segments_live *live = arg;
    size_t max = (size_t)live->cfg->segments_count_sample;
    size_t slot;

    live->scanned++;
    if (live->n_sample < max) {
        slot = live->n_sample++;
    } else {
        uint64_t pick = next_random(live) % live->scanned;
        if (pick >= max)
            return;
        slot = (size_t)pick;
    }
    memcpy(live->sample[slot], id, len);
    live->sample[slot][len] = '\0';
}


int vt_segments_live_count(struct vt_segments_live *live, char *err, size_t errsize)
{
    struct vt_segments *segments = vt_segments_live_current(live);
    size_t n = vt_segments_count(segments);
    int64_t members[VT_SEGMENTS_MAX] = {0};
    const char *names[VT_SEGMENTS_MAX];
    uint64_t started = vt_monotonic_ns();
    /* The count reports when it began: every profile written before then is in it. */
    int64_t began_ms = vt_now_ms();
    uint64_t cursor = 0;
    size_t read = 0;
    int64_t now = vt_segments_live_now_ms(live);

    if (live->sample == NULL) {
        live->sample = calloc((size_t)live->cfg->segments_count_sample, sizeof *live->sample);
        if (live->sample == NULL) {
            snprintf(err, errsize, "out of memory for %" PRId64 " sampled ids",
                     live->cfg->segments_count_sample);
            return -1;
        }
    }
    if (live->store == NULL) {
        live->store = vt_store_connect(live->cfg, REDIS_TIMEOUT_MS, err, errsize);
        if (live->store == NULL)
            return -1;
    }
    /* Recency conditions compare with the current stream clock. The last read may be 5 s
     * old, which in a fast replay is hours of event time. */
    read_clock(live);
    now = vt_segments_live_now_ms(live);
    live->n_sample = 0;
    live->scanned = 0;
    do {
        if (atomic_load(&live->stop))
            return 0;
        if (vt_store_scan_profiles(live->store, &cursor, sample_id, live, err, errsize) != 0)
            return -1;
    } while (cursor != 0);

    for (size_t k = 0; k < live->n_sample; k++) {
        const char *id = live->sample[k];
        struct vt_gender_estimate gender;

        if (atomic_load(&live->stop))
            return 0;
        if (vt_store_profile_read_linked(live->store, id, strlen(id), now, &live->profile,
                                         &live->visitor, err, errsize) != 0)
            return -1;
        if (!live->profile.exists && !live->profile.consent_denied)
            continue; /* expired between the scan and the read */
        read++;
        vt_gender_estimate(live->profile.gender_log_odds, live->profile.gender_evidence,
                           live->cfg, &gender);
        struct vt_segment_facts facts = {.profile = &live->profile, .gender = &gender,
                                         .now_ms = now};
        uint64_t mask = vt_segments_evaluate(segments, &facts);
        for (size_t i = 0; i < n; i++)
            members[i] += (mask >> i) & 1;
    }

    /* Scale the sample up to every profile the scan saw. */
    for (size_t i = 0; i < n; i++) {
        names[i] = vt_segments_name(segments, i);
        if (read > 0)
            members[i] = (int64_t)((double)members[i] * (double)live->scanned / (double)read +
                                   0.5);
    }
    if (vt_store_segment_counts_put(live->store, names, members, n, (int64_t)live->scanned,
                                    (int64_t)read, began_ms, err, errsize) != 0)
        return -1;
    VT_DEBUG("SEGMENTS", "counted %zu segments over %" PRIu64 " profiles from a sample of %zu "
             "in %.0f ms", n, live->scanned, read,
             (double)(vt_monotonic_ns() - started) / 1e6);
    return 0;
}


/* Wait up to ms, or until stopped. Returns false when stopped. */
static bool wait_ms(struct vt_segments_live *live, int64_t ms)
{
    struct timespec until;

    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&live->wake_lock);
    while (!atomic_load(&live->stop)) {
        if (pthread_cond_timedwait(&live->wake, &live->wake_lock, &until) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&live->wake_lock);
    return !atomic_load(&live->stop);
}


static void *segment_thread(void *arg)
{
    struct vt_segments_live *live = arg;
    const struct vt_config *cfg = live->cfg;
    int64_t interval_ms = cfg->segments_count_interval_s * 1000;
    int64_t next_count = vt_now_ms() + FLUSH_INTERVAL_MS;
    bool redis_warned = false;
    char err[256];

    do {
        if (live->store == NULL) {
            live->store = vt_store_connect(cfg, REDIS_TIMEOUT_MS, err, sizeof err);
            if (live->store == NULL) {
                if (!redis_warned)
                    VT_WARN("SEGMENTS", "redis unavailable, retrying: %s", err);
                redis_warned = true;
                continue;
            }
        }
        read_clock(live);
        flush_served(live, vt_segments_live_current(live));
        collect_retired(live, false);

        if (vt_segments_count(vt_segments_live_current(live)) > 0 && vt_now_ms() >= next_count) {
            bool taken = false;
            next_count = vt_now_ms() + interval_ms;
            if (vt_store_segment_lock(live->store, cfg->instance_id, interval_ms - 1000, &taken,
                                      err, sizeof err) != 0 ||
                (taken && vt_segments_live_count(live, err, sizeof err) != 0)) {
                if (!redis_warned)
                    VT_WARN("SEGMENTS", "member count failed, next attempt in %" PRId64
                            " s: %s", cfg->segments_count_interval_s, err);
                redis_warned = true;
                continue;
            }
        }
        if (redis_warned)
            VT_INFO("SEGMENTS", "redis is back; segment counts resume");
        redis_warned = false;
    } while (wait_ms(live, FLUSH_INTERVAL_MS));
    return NULL;
}


int vt_segments_live_start(struct vt_segments_live *live, char *err, size_t errsize)
{
    int rc = pthread_create(&live->thread, NULL, segment_thread, live);
    if (rc != 0) {
        snprintf(err, errsize, "cannot start the segment thread: %s", strerror(rc));
        return -1;
    }
    live->started = true;
    return 0;
}


void vt_segments_live_free(struct vt_segments_live *live)
{
    if (live == NULL)
        return;
    if (live->started) {
        pthread_mutex_lock(&live->wake_lock);
        atomic_store(&live->stop, true);
        pthread_cond_broadcast(&live->wake);
        pthread_mutex_unlock(&live->wake_lock);
        pthread_join(live->thread, NULL);
    }
    if (live->store != NULL)
        flush_served(live, vt_segments_live_current(live));
    collect_retired(live, true);
    vt_segments_free(atomic_load(&live->current));
    vt_store_free(live->store);
    free(live->sample);
    pthread_cond_destroy(&live->wake);
    pthread_mutex_destroy(&live->wake_lock);
    pthread_mutex_destroy(&live->lock);
    free(live);
}
