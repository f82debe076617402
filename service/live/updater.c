/*
 * vitrine: the updater thread and vt_live_* (see include/vitrine/world.h).
 *
 * One updater thread per instance owns every world version. It runs these steps:
 *   1. catch up: look the catalog topic up (a missing topic counts as empty after
 *      TOPIC_WAIT_MS), read all of it from the beginning, and build one catalog version
 *      from everything it queued;
 *   2. then loop until stopped:
 *      - consume catalog records: stock changes go in place at once, the rest is queued
 *        (pending.c);
 *      - build a catalog version from the queue, at most once per CATALOG_VERSION_NS
 *        and only while fewer than LIVE_RETIRED_CATALOGS_MAX replaced catalogs wait to
 *        be freed (publish.c);
 *      - every live.refresh_ms, refresh the aggregates from Redis and publish a version;
 *      - free retired objects whose grace period has passed (publish.c).
 * Redis or Kafka failing never stops the loop: the last world stays published, the step
 * is retried with backoff, and one line is logged per change of state.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "live_internal.h"
#include "vitrine/log.h"
#include "vitrine/util.h"

/* A missing catalog topic counts as empty after this long; real brokers can take a
 * moment to list a topic that was just created. */
#define TOPIC_WAIT_MS 10000
/* Metadata requests: at start, and when checking for new partitions. */
#define METADATA_TIMEOUT_MS 2000
#define METADATA_CHECK_TIMEOUT_MS 500
/* How often the topic is looked up again for new partitions (or for the topic itself,
 * when it was missing), and how often while the brokers are unreachable. */
#define TOPIC_CHECK_NS (30 * 1000000000ull)
#define TOPIC_CHECK_DOWN_NS (5 * 1000000000ull)
/* Catalog versions are built at most this often. */
#define CATALOG_VERSION_NS 1000000000ull
/* Maximum wait of one consumer poll, so that the other steps keep their schedule. */
#define POLL_MAX_MS 100
/* Backoff of failed steps: Redis refreshes, and Kafka lookups at start. */
#define REFRESH_BACKOFF_MAX_MS 30000
#define KAFKA_BACKOFF_MAX_MS 5000
/* The ingest removes i2i:dirty entries older than one hour (service/store/aggregates.c).
 * A refresh reads the entries since the previous successful one minus a slack for clock
 * differences between instances. After a longer gap it reads every list again. */
#define DIRTY_WINDOW_MS 3600000
#define DIRTY_SLACK_MS 5000
/* The per-category and per-brand trending lists are most of a refresh's cost with hundreds
 * of brands and categories of 200 entries each (160 of 163 ms in the
 * refresh_cost_of_a_full_catalog test). A refresh reads them only once GROUP_READ_SPACING
 * times the duration of their last reading has passed, so they take at most about a tenth
 * of the updater's time; the versions in between share them. With small lists that is
 * every refresh. The global list is read on every refresh. */
#define GROUP_READ_SPACING 10
/* Every product's neighbours are read again at least once per sweep period, a slice per
 * refresh. So a list whose product stayed out of i2i:dirty is decayed to a recent time,
 * and a change that a refresh missed still arrives. */
#define SWEEP_PERIOD_MS 3600000
/* Invalid catalog records, and records with unknown members, logged one by one; the rest
 * of each kind are summed up once a minute. */
#define RECORDS_LOGGED 10
#define RECORDS_SUMMARY_NS (60 * 1000000000ull)

/* Log lines of one kind of catalog record: the first RECORDS_LOGGED one by one, then one
 * summary per minute. */
struct record_log {
    const char *description; /* such as "invalid catalog records skipped" */
    uint64_t logged, summarized;
    uint64_t next_summary_ns;
};

struct vt_live {
    const struct vt_config *cfg;
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;

    /* Read by any thread. */
    atomic_bool caught_up;
    atomic_bool refreshed; /* the first aggregate refresh succeeded */
    atomic_bool kafka_up;
    atomic_bool redis_up;
    atomic_uint_fast64_t outcomes[LIVE_RECORD_OUTCOME_COUNT];
    atomic_uint_fast64_t records, invalid, unknown_members, versions, refreshes,
        refresh_failures;
    atomic_uint_fast64_t last_refresh_ns, first_refresh_ns;

    /* Owned by the updater thread. */
    struct live_state state;
    struct live_pending pending;
    struct live_feed *feed;
    struct live_reader reader;
    bool topic_missing;
    uint64_t last_version_ns;
    uint64_t next_topic_check_ns;
    uint64_t next_refresh_ns;
    int64_t refresh_backoff_ms;
    unsigned failed_refreshes; /* in a row */
    int64_t last_refresh_ms;   /* wall time of the last successful refresh, -1 before */
    uint64_t groups_due_ns; /* when a refresh reads the category and brand lists again */
    size_t neighbors_loaded;   /* products [0, this) had their neighbours read */
    size_t sweep_cursor;
    uint32_t *selected; /* per product: the refresh round that last selected it */
    /* Per product: the i2i:dirty time (ms) of the change that a published refresh read.
     * Entries stay in the dirty window for DIRTY_SLACK_MS after the refresh that read them;
     * this keeps later refreshes from reading those lists again. */
    int64_t *dirty_read_ms;
    size_t selected_size;
    uint32_t round;
    struct record_log invalid_log, unknown_log;
    bool version_deferred; /* the next catalog version waits for a reclamation */
};


static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}


/* Sleep up to ms, returning early when the updater is stopped. */
static void pause_ms(struct vt_live *live, int64_t ms)
{
    for (int64_t waited = 0; waited < ms && !atomic_load(&live->stop); waited += 50)
        sleep_ms(ms - waited < 50 ? ms - waited : 50);
}


static double ms_since(uint64_t start_ns)
{
    return (double)(vt_monotonic_ns() - start_ns) / 1e6;
}


/* ---- catalog records ---- */

/* Copy up to 64 bytes of a record key for a log line, with bytes outside printable ASCII
 * written as '?'. */
static void printable_key(const char *key, size_t len, char *buf, size_t bufsize)
{
    size_t n = 0;

    for (size_t i = 0; key != NULL && i < len && i < 64 && n + 1 < bufsize; i++) {
        unsigned char c = (unsigned char)key[i];
        buf[n++] = c >= 0x20 && c < 0x7F ? (char)c : '?';
    }
    buf[n] = '\0';
}


static void on_record(const char *key, size_t key_len, const char *value, size_t value_len,
                      int32_t partition, int64_t offset, void *arg)
{
    struct vt_live *live = arg;
    struct vt_catalog_change change;
    char reason[256];
    char shown[72];

    atomic_fetch_add_explicit(&live->records, 1, memory_order_relaxed);
    if (vt_catalog_change_parse(key, key_len, value, value_len, &change, reason,
                                sizeof reason) != 0) {
        atomic_fetch_add_explicit(&live->invalid, 1, memory_order_relaxed);
        if (live->invalid_log.logged < RECORDS_LOGGED) {
            printable_key(key, key_len, shown, sizeof shown);
            VT_WARN("LIVE", "catalog record %s[%" PRId32 "]@%" PRId64 " with key \"%s\" "
                    "skipped: %s", live->cfg->kafka_catalog_topic, partition, offset, shown,
                    reason);
            live->invalid_log.logged++;
        }
        return;
    }

    if (change.unknown_members != NULL) {
        atomic_fetch_add_explicit(&live->unknown_members, 1, memory_order_relaxed);
        if (live->unknown_log.logged < RECORDS_LOGGED) {
            printable_key(key, key_len, shown, sizeof shown);
            VT_WARN("LIVE", "catalog record %s[%" PRId32 "]@%" PRId64 " with key \"%s\": "
                    "applied the known fields and ignored the members that are no catalog "
                    "field: %s", live->cfg->kafka_catalog_topic, partition, offset, shown,
                    change.unknown_members);
            live->unknown_log.logged++;
        }
        /* The queue has no use for the names. */
        free(change.unknown_members);
        change.unknown_members = NULL;
    }

    enum live_record_outcome outcome =
        live_pending_record(&live->pending, live->state.world->catalog, &change);
    atomic_fetch_add_explicit(&live->outcomes[outcome], 1, memory_order_relaxed);
    if (outcome == LIVE_RECORD_FAILED)
        VT_ERROR("LIVE", "out of memory queueing catalog record %s[%" PRId32 "]@%" PRId64
                 "; the change is lost until the record is read again at the next start",
                 live->cfg->kafka_catalog_topic, partition, offset);
}


/* Sum up once a minute the records of one kind that were not logged one by one. */
static void summarize_records(struct record_log *log, const atomic_uint_fast64_t *counter,
                              uint64_t now)
{
    uint64_t total = atomic_load_explicit(counter, memory_order_relaxed);
    uint64_t unlogged = total - log->logged - log->summarized;

    if (now < log->next_summary_ns)
        return;
    log->next_summary_ns = now + RECORDS_SUMMARY_NS;
    if (unlogged == 0)
        return;
    VT_WARN("LIVE", "%" PRIu64 " more %s in the last minute (only the first %d are logged "
            "one by one)", unlogged, log->description, RECORDS_LOGGED);
    log->summarized += unlogged;
}


/* Build a catalog version from the queued changes and publish it, unless
 * LIVE_RETIRED_CATALOGS_MAX replaced catalogs still wait to be freed: then the changes
 * stay queued until live_collect frees the oldest of them. */
static void build_catalog_version(struct vt_live *live)
{
    const struct vt_catalog *current = live->state.world->catalog;
    uint64_t started = vt_monotonic_ns();
    struct vt_catalog_apply_stats stats;
    struct vt_catalog *next;
    char err[256];

    if (live->pending.n == 0) {
        live->last_version_ns = started;
        return;
    }
    if (!live_catalog_publishable(&live->state)) {
        if (!live->version_deferred)
            VT_DEBUG("LIVE", "catalog version deferred: %zu replaced catalogs wait to be "
                     "freed; %zu queued changes wait for the oldest of them",
                     live_retired_catalogs(&live->state), live->pending.n);
        live->version_deferred = true;
        return;
    }
    live->version_deferred = false;
    live->last_version_ns = started;

    next = vt_catalog_apply(current, live->pending.changes, live->pending.n, live->cfg, &stats,
                            err, sizeof err);
    if (next == NULL || live_publish_catalog(&live->state, next) != 0) {
        VT_ERROR("LIVE", "cannot build a catalog version: %s; the %zu queued changes are "
                 "kept and tried again in 1 s", next == NULL ? err : "out of memory",
                 live->pending.n);
        return;
    }
    live_pending_clear(&live->pending);
    atomic_fetch_add_explicit(&live->versions, 1, memory_order_relaxed);

    const struct vt_catalog_stats *cs = vt_catalog_stats(next);
    VT_INFO("LIVE", "catalog version published as world version %" PRIu64 ": %zu added, "
            "%zu updated, %zu removed, %zu removals of unknown products, %zu over the "
            "maximum size; %zu products (%zu removed), %.1f ms",
            live->state.version, stats.added, stats.updated, stats.removed, stats.ignored,
            stats.rejected, cs->products, cs->removed, ms_since(started));
}


/* ---- catching up with the catalog topic at start ---- */

/* Assign the topic's partitions, waiting while the brokers do not respond and for at most
 * TOPIC_WAIT_MS while the topic does not exist. Returns false when stopped first. */
static bool assign_at_start(struct vt_live *live)
{
    const char *topic = live->cfg->kafka_catalog_topic;
    int64_t backoff_ms = 200;
    uint64_t missing_since = 0;
    bool unreachable_logged = false;

    while (!atomic_load(&live->stop)) {
        switch (live_feed_assign(live->feed, METADATA_TIMEOUT_MS)) {
        case LIVE_FEED_ASSIGNED:
            if (unreachable_logged)
                VT_INFO("LIVE", "kafka responded; catalog topic %s found", topic);
            atomic_store(&live->kafka_up, true);
            return true;

        case LIVE_FEED_TOPIC_MISSING:
            /* NOTE: no test reaches this case: the local mock broker creates a topic when
             * a client looks it up. */
            atomic_store(&live->kafka_up, true);
            if (missing_since == 0)
                missing_since = vt_monotonic_ns();
            if (vt_monotonic_ns() - missing_since >= (uint64_t)TOPIC_WAIT_MS * 1000000u) {
                VT_WARN("LIVE", "catalog topic %s does not exist (waited %d s); reading it "
                        "as empty and looking for it every %llu s", topic, TOPIC_WAIT_MS / 1000,
                        TOPIC_CHECK_NS / 1000000000ull);
                live->topic_missing = true;
                return true;
            }
            pause_ms(live, 500);
            break;

        case LIVE_FEED_UNREACHABLE:
            atomic_store(&live->kafka_up, false);
            if (!unreachable_logged)
                VT_WARN("LIVE", "kafka %s does not respond to the lookup of catalog topic %s; "
                        "retrying with backoff up to %d s", live->cfg->kafka_brokers, topic,
                        KAFKA_BACKOFF_MAX_MS / 1000);
            unreachable_logged = true;
            pause_ms(live, backoff_ms);
            backoff_ms = backoff_ms * 2 < KAFKA_BACKOFF_MAX_MS ? backoff_ms * 2
                                                               : KAFKA_BACKOFF_MAX_MS;
            break;
        }
    }
    return false;
}


/* Log a change of Kafka's reachability, once per change. */
static void track_kafka(struct vt_live *live)
{
    bool up = !live_feed_down(live->feed);

    if (up == atomic_load(&live->kafka_up))
        return;
    atomic_store(&live->kafka_up, up);
    if (up) {
        VT_INFO("LIVE", "kafka reachable again; catalog changes flow again");
        return;
    }
    VT_WARN("LIVE", "kafka %s unreachable; world version %" PRIu64 " stays published and "
            "catalog changes wait for the brokers", live->cfg->kafka_brokers,
            live->state.version);
    live->next_topic_check_ns = vt_monotonic_ns() + TOPIC_CHECK_DOWN_NS;
}


/* Step 1: read the whole topic and build one catalog version from it. */
static void catch_up(struct vt_live *live)
{
    uint64_t started = vt_monotonic_ns();

    if (!assign_at_start(live))
        return;
    while (!live->topic_missing && !atomic_load(&live->stop) &&
           !live_feed_caught_up(live->feed)) {
        live_feed_poll(live->feed, POLL_MAX_MS, on_record, live);
        track_kafka(live);
    }
    if (atomic_load(&live->stop))
        return;

    build_catalog_version(live);
    atomic_store(&live->caught_up, true);
    live->next_topic_check_ns = vt_monotonic_ns() + TOPIC_CHECK_NS;
    VT_INFO("LIVE", "catalog topic %s read to its end in %.1f s: %" PRIu64 " records, %" PRIu64
            " invalid; world version %" PRIu64 " with %zu products",
            live->cfg->kafka_catalog_topic, ms_since(started) / 1000,
            atomic_load(&live->records), atomic_load(&live->invalid), live->state.version,
            vt_catalog_stats(live->state.world->catalog)->products);
}


/* Look the topic up again now and then: for partitions added since, for the topic when it
 * was missing, and to notice that unreachable brokers respond again. */
static void check_topic(struct vt_live *live, uint64_t now)
{
    if (now < live->next_topic_check_ns)
        return;

    enum live_feed_status status = live_feed_assign(live->feed, METADATA_CHECK_TIMEOUT_MS);
    if (status == LIVE_FEED_ASSIGNED && live->topic_missing) {
        VT_INFO("LIVE", "catalog topic %s exists now; reading it from the beginning",
                live->cfg->kafka_catalog_topic);
        live->topic_missing = false;
    }
    bool down = live_feed_down(live->feed) || status == LIVE_FEED_UNREACHABLE;
    live->next_topic_check_ns = now + (down ? TOPIC_CHECK_DOWN_NS : TOPIC_CHECK_NS);
}


/* ---- aggregate refresh ---- */

struct refresh {
    struct vt_live *live;
    const struct vt_catalog *cat;
    int64_t now_ms;
    uint32_t *products; /* products whose neighbours this refresh reads */
    size_t n_products;
    int64_t *dirty_ms; /* for products[i] selected from i2i:dirty, its time there; else -1 */
    struct live_neighbor_update *updates;
    size_t n_updates;
};


/* Add a product to the refresh's reads unless it is in already. */
static void select_product(struct refresh *r, uint32_t product, int64_t dirty_ms)
{
    struct vt_live *live = r->live;

    if (product >= live->selected_size || live->selected[product] == live->round)
        return;
    live->selected[product] = live->round;
    r->dirty_ms[r->n_products] = dirty_ms;
    r->products[r->n_products++] = product;
}


/* Choose the products whose neighbours this refresh reads: every product on a full read;
 * otherwise the dirty ones, those added to the catalog since the last refresh, and the
 * next slice of the sweep. */
static int select_products(struct refresh *r, const struct live_zset *dirty, bool full)
{
    struct vt_live *live = r->live;
    size_t size = vt_catalog_size(r->cat);

    if (live->selected_size != size) {
        uint32_t *grown = realloc(live->selected, (size > 0 ? size : 1) * sizeof *grown);
        if (grown == NULL)
            return -1;
        live->selected = grown;
        int64_t *times = realloc(live->dirty_read_ms, (size > 0 ? size : 1) * sizeof *times);
        if (times == NULL)
            return -1;
        live->dirty_read_ms = times;
        for (size_t p = live->selected_size; p < size; p++) {
            live->selected[p] = 0;
            live->dirty_read_ms[p] = -1;
        }
        live->selected_size = size;
    }
    if (++live->round == 0) {
        memset(live->selected, 0, size * sizeof *live->selected);
        live->round = 1;
    }
    r->products = malloc((size > 0 ? size : 1) * sizeof *r->products);
    r->dirty_ms = malloc((size > 0 ? size : 1) * sizeof *r->dirty_ms);
    if (r->products == NULL || r->dirty_ms == NULL)
        return -1;

    if (full) {
        for (size_t p = 0; p < size; p++)
            select_product(r, (uint32_t)p, -1);
        return 0;
    }

    for (size_t i = 0; i < dirty->n; i++) {
        uint32_t p = vt_catalog_find(r->cat, dirty->items[i].id, dirty->items[i].len);
        int64_t changed_ms = (int64_t)dirty->items[i].score;

        if (p != VT_CATALOG_NONE && changed_ms > live->dirty_read_ms[p])
            select_product(r, p, changed_ms);
    }
    for (size_t p = live->neighbors_loaded; p < size; p++)
        select_product(r, (uint32_t)p, -1);

    size_t slice = (size * (size_t)live->cfg->live_refresh_ms + SWEEP_PERIOD_MS - 1) /
                   SWEEP_PERIOD_MS;
    for (size_t i = 0; i < slice && size > 0; i++) {
        live->sweep_cursor = live->sweep_cursor < size ? live->sweep_cursor : 0;
        select_product(r, (uint32_t)live->sweep_cursor++, -1);
    }
    return 0;
}


static int on_neighbors(uint32_t product, const struct live_zset *co_view,
                        const struct live_zset *co_buy, void *arg)
{
    struct refresh *r = arg;
    const struct vt_config *cfg = r->live->cfg;
    bool oom = false;
    struct vt_neighbors *list =
        live_neighbors_build(r->cat, product, co_view, co_buy, r->now_ms, cfg->agg_half_life_s,
                             (size_t)cfg->agg_neighbors_max, &oom);

    if (oom)
        return -1;
    /* No list before and none now: nothing to publish. */
    if (list == NULL && vt_world_neighbors(r->live->state.world, product) == NULL)
        return 0;
    r->updates[r->n_updates].product = product;
    r->updates[r->n_updates].list = list;
    r->n_updates++;
    return 0;
}


static void free_refresh(struct refresh *r)
{
    for (size_t i = 0; i < r->n_updates; i++)
        free(r->updates[i].list);
    free(r->updates);
    free(r->products);
    free(r->dirty_ms);
}


/* Read the aggregates and publish them as a new version. Returns 0, or -1 with a message
 * (nothing was published). */
static int refresh(struct vt_live *live, char *err, size_t errsize)
{
    struct refresh r = {.live = live, .cat = live->state.world->catalog,
                        .now_ms = vt_now_ms()};
    bool full = live->last_refresh_ms < 0 ||
                r.now_ms - live->last_refresh_ms > DIRTY_WINDOW_MS - DIRTY_SLACK_MS;
    bool with_groups = full || vt_monotonic_ns() >= live->groups_due_ns;
    const struct vt_trending *current = live->state.world->trending;
    double trend_h = live->cfg->trend_half_life_s;
    struct live_trending_read read;
    struct vt_trending *trending = NULL;

    uint64_t trending_started = vt_monotonic_ns();
    if (live_read_trending(&live->reader, full ? -1 : live->last_refresh_ms - DIRTY_SLACK_MS,
                           with_groups, &read, err, errsize) != 0)
        return -1;
    if (with_groups)
        trending = live_trending_build(r.cat, &read.input, r.now_ms, trend_h);
    else
        trending = live_trending_build_global(r.cat, &read.input.global, current, r.now_ms,
                                              trend_h);
    uint64_t trending_ended = vt_monotonic_ns();
    int selected = select_products(&r, &read.dirty, full);
    size_t n_groups = read.input.n_groups, n_dirty = read.dirty.n;
    live_trending_read_free(&read);
    r.updates = malloc((r.n_products > 0 ? r.n_products : 1) * sizeof *r.updates);
    if (trending == NULL || selected != 0 || r.updates == NULL) {
        snprintf(err, errsize, "out of memory building the aggregates");
        goto fail;
    }

    for (size_t done = 0; done < r.n_products; done += LIVE_NEIGHBOR_CHUNK) {
        size_t n = r.n_products - done < LIVE_NEIGHBOR_CHUNK ? r.n_products - done
                                                              : LIVE_NEIGHBOR_CHUNK;

        if (atomic_load(&live->stop)) {
            snprintf(err, errsize, "stopped during the refresh");
            goto fail;
        }
        if (live_read_neighbors(&live->reader, r.cat, r.products + done, n, on_neighbors, &r,
                                err, errsize) != 0)
            goto fail;
        /* A full read takes seconds: keep stock changes flowing meanwhile. */
        live_feed_poll(live->feed, 0, on_record, live);
    }

    if (live_publish_aggregates(&live->state, trending, r.updates, r.n_updates, r.now_ms) != 0) {
        /* The publication freed trending and the lists. */
        r.n_updates = 0;
        trending = NULL;
        snprintf(err, errsize, "out of memory publishing the aggregates");
        goto fail;
    }
    VT_DEBUG("LIVE", "aggregates refreshed%s: %zu trending, %zu lists, %zu dirty, %zu "
             "neighbour lists read, %zu changed", full ? " (all neighbour lists)" : "",
             (size_t)live->state.world->trending->global->n, n_groups, n_dirty,
             r.n_products, r.n_updates);
    r.n_updates = 0; /* the lists belong to the world now */
    for (size_t i = 0; i < r.n_products; i++) {
        if (r.dirty_ms[i] >= 0)
            live->dirty_read_ms[r.products[i]] = r.dirty_ms[i];
    }
    free_refresh(&r);
    live->last_refresh_ms = r.now_ms;
    live->neighbors_loaded = vt_catalog_size(r.cat);
    if (with_groups)
        live->groups_due_ns =
            trending_ended + GROUP_READ_SPACING * (trending_ended - trending_started);
    return 0;

fail:
    if (trending != NULL && live_trending_shares_groups(trending, current))
        live_trending_free_shell(trending);
    else
        live_trending_free(trending);
    free_refresh(&r);
    return -1;
}


/* Step 2, aggregates: refresh, and on failure retry with backoff. */
static void refresh_step(struct vt_live *live)
{
    uint64_t started = vt_monotonic_ns();
    int64_t period_ms = live->cfg->live_refresh_ms;
    char err[512];

    if (refresh(live, err, sizeof err) == 0) {
        uint64_t took = vt_monotonic_ns() - started;

        atomic_store_explicit(&live->last_refresh_ns, took, memory_order_relaxed);
        atomic_fetch_add_explicit(&live->refreshes, 1, memory_order_relaxed);
        if (!atomic_load(&live->refreshed)) {
            atomic_store_explicit(&live->first_refresh_ns, took, memory_order_relaxed);
            VT_INFO("LIVE", "first aggregate refresh done in %.1f ms: world version %" PRIu64
                    ", %u trending products", (double)took / 1e6, live->state.version,
                    live->state.world->trending->global->n);
        } else if (!atomic_load(&live->redis_up)) {
            VT_INFO("LIVE", "redis responds again after %u failed refreshes; aggregates "
                    "refreshed", live->failed_refreshes);
        }
        atomic_store(&live->refreshed, true);
        atomic_store(&live->redis_up, true);
        live->failed_refreshes = 0;
        live->refresh_backoff_ms = period_ms;
        live->next_refresh_ns = started + (uint64_t)period_ms * 1000000u;
        return;
    }

    atomic_fetch_add_explicit(&live->refresh_failures, 1, memory_order_relaxed);
    live->failed_refreshes++;
    if (live->failed_refreshes == 1) {
        live->refresh_backoff_ms = period_ms;
        VT_WARN("LIVE", "aggregate refresh failed: %s; world version %" PRIu64 " stays "
                "published, retrying with backoff up to %d s", err, live->state.version,
                REFRESH_BACKOFF_MAX_MS / 1000);
    } else {
        live->refresh_backoff_ms = live->refresh_backoff_ms * 2 < REFRESH_BACKOFF_MAX_MS
                                       ? live->refresh_backoff_ms * 2
                                       : REFRESH_BACKOFF_MAX_MS;
        VT_DEBUG("LIVE", "aggregate refresh failed again (%u in a row): %s",
                 live->failed_refreshes, err);
    }
    atomic_store(&live->redis_up, false);
    live->next_refresh_ns = vt_monotonic_ns() + (uint64_t)live->refresh_backoff_ms * 1000000u;
}


/* ---- the thread ---- */

static void *updater_main(void *arg)
{
    struct vt_live *live = arg;

    VT_INFO("LIVE", "updater thread started: catalog topic %s, aggregates from redis "
            "%s:%" PRId64 " every %" PRId64 " ms", live->cfg->kafka_catalog_topic,
            live->cfg->redis_host, live->cfg->redis_port, live->cfg->live_refresh_ms);
    catch_up(live);
    live->next_refresh_ns = vt_monotonic_ns();

    while (!atomic_load(&live->stop)) {
        uint64_t now = vt_monotonic_ns();
        int64_t wait_ms = live->next_refresh_ns > now
                              ? (int64_t)((live->next_refresh_ns - now) / 1000000u)
                              : 0;

        live_feed_poll(live->feed, (int)(wait_ms < POLL_MAX_MS ? wait_ms : POLL_MAX_MS),
                       on_record, live);
        now = vt_monotonic_ns();
        if (live->pending.n > 0 && now - live->last_version_ns >= CATALOG_VERSION_NS)
            build_catalog_version(live);
        if (now >= live->next_refresh_ns)
            refresh_step(live);
        check_topic(live, now);
        track_kafka(live);
        live_collect(&live->state);
        summarize_records(&live->invalid_log, &live->invalid, now);
        summarize_records(&live->unknown_log, &live->unknown_members, now);
    }

    VT_INFO("LIVE", "updater thread stopping at world version %" PRIu64, live->state.version);
    return NULL;
}


struct vt_live *vt_live_start(const struct vt_config *cfg, struct vt_catalog *initial,
                              char *err, size_t errsize)
{
    struct vt_live *live = calloc(1, sizeof *live);

    if (live == NULL) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    live->cfg = cfg;
    live->invalid_log.description = "invalid catalog records skipped";
    live->unknown_log.description = "catalog records with unknown members applied without them";
    live->last_refresh_ms = -1;
    live->refresh_backoff_ms = cfg->live_refresh_ms;
    atomic_store(&live->kafka_up, true);
    atomic_store(&live->redis_up, true);
    live_pending_init(&live->pending);
    live_reader_init(&live->reader, cfg);

    live->feed = live_feed_new(cfg, err, errsize);
    if (live->feed == NULL)
        goto fail;
    if (live_state_init(&live->state, cfg, initial, NULL, NULL) != 0) {
        snprintf(err, errsize, "out of memory");
        goto fail;
    }
    /* Every reader of this world takes a hold (vt_live_world_hold), so replaced versions
     * are freed as soon as no reader can reach them. */
    live->state.holds_checked = true;
    if (pthread_create(&live->thread, NULL, updater_main, live) != 0) {
        snprintf(err, errsize, "cannot start the updater thread");
        /* On failure the catalog stays the caller's. */
        live->state.world->catalog = NULL;
        live_state_destroy(&live->state);
        goto fail;
    }
    live->thread_started = true;
    return live;

fail:
    live_feed_free(live->feed);
    free(live);
    return NULL;
}


void vt_live_stop(struct vt_live *live)
{
    if (live == NULL)
        return;
    atomic_store(&live->stop, true);
    if (live->thread_started)
        pthread_join(live->thread, NULL);

    live_feed_free(live->feed);
    live_reader_close(&live->reader);
    live_pending_free(&live->pending);
    live_state_destroy(&live->state);
    free(live->selected);
    free(live->dirty_read_ms);
    free(live);
    VT_INFO("LIVE", "stopped");
}


const struct vt_world *vt_live_world(const struct vt_live *live)
{
    return atomic_load_explicit(&live->state.current, memory_order_acquire);
}


/* A hold writes only the state's atomic slots, so a const vt_live may take one. */
const struct vt_world *vt_live_world_hold(const struct vt_live *live)
{
    return live_hold((struct live_state *)&live->state);
}


void vt_live_world_release(const struct vt_live *live)
{
    live_release((struct live_state *)&live->state);
}


bool vt_live_ready(const struct vt_live *live, char *why, size_t whysize)
{
    if (!atomic_load(&live->caught_up)) {
        snprintf(why, whysize, "catalog topic %s is not read to its end yet%s",
                 live->cfg->kafka_catalog_topic,
                 atomic_load(&live->kafka_up) ? "" : " (kafka unreachable)");
        return false;
    }
    if (!atomic_load(&live->refreshed)) {
        vt_strlcpy(why, "redis: the first aggregate refresh has not succeeded yet", whysize);
        return false;
    }
    return true;
}


void vt_live_stats(const struct vt_live *live, struct vt_live_stats *out)
{
    const struct vt_world *w = vt_live_world_hold(live);

    memset(out, 0, sizeof *out);
    out->world_version = w->version;
    vt_live_world_release(live);
    out->catalog_records = atomic_load_explicit(&live->records, memory_order_relaxed);
    out->catalog_stock_changes =
        atomic_load_explicit(&live->outcomes[LIVE_RECORD_STOCK], memory_order_relaxed);
    out->catalog_queued =
        atomic_load_explicit(&live->outcomes[LIVE_RECORD_QUEUED], memory_order_relaxed);
    out->catalog_removals =
        atomic_load_explicit(&live->outcomes[LIVE_RECORD_REMOVED], memory_order_relaxed);
    out->catalog_unchanged =
        atomic_load_explicit(&live->outcomes[LIVE_RECORD_UNCHANGED], memory_order_relaxed);
    out->catalog_failed =
        atomic_load_explicit(&live->outcomes[LIVE_RECORD_FAILED], memory_order_relaxed);
    out->catalog_invalid = atomic_load_explicit(&live->invalid, memory_order_relaxed);
    out->catalog_unknown_members =
        atomic_load_explicit(&live->unknown_members, memory_order_relaxed);
    out->catalog_versions = atomic_load_explicit(&live->versions, memory_order_relaxed);
    out->refreshes = atomic_load_explicit(&live->refreshes, memory_order_relaxed);
    out->refresh_failures = atomic_load_explicit(&live->refresh_failures, memory_order_relaxed);
    out->last_refresh_ns = atomic_load_explicit(&live->last_refresh_ns, memory_order_relaxed);
    out->first_refresh_ns = atomic_load_explicit(&live->first_refresh_ns, memory_order_relaxed);
    out->catalog_caught_up = atomic_load(&live->caught_up);
    out->kafka_up = atomic_load(&live->kafka_up);
    out->redis_up = atomic_load(&live->redis_up);
}
