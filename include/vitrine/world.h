/*
 * vitrine: the live world: one immutable version of the catalog together with the stream
 * aggregates that recommendations read (trending products, item-to-item neighbours).
 *
 * The updater thread (service/live/) owns the current version. It consumes the catalog
 * topic (product upserts and stock changes, docs/catalog.md) and, every live.refresh_ms,
 * reads the shared aggregates that all instances' ingest threads write to Redis (see
 * docs/architecture.md, "Stream aggregates"). It publishes a new version with one atomic
 * pointer store. Readers (HTTP workers, the ingest thread, the alerts thread) hold a
 * version for one request, batch or evaluation (vt_live_world_hold) and use it
 * throughout, without locks. A replaced version, and whatever only it referenced, is
 * freed once no thread holds it or an older one. At the latest it is freed
 * VT_WORLD_GRACE_S seconds after the replacement, far longer than any request takes.
 *
 * Within a version everything is immutable except each product's stock, which the
 * updater changes in place (atomically) so that a product going out of stock disappears
 * from recommendations at once, without waiting for a new version. Product, brand and
 * category indexes keep their meaning across versions: a catalog change only appends new
 * ones, so an index taken from one version names the same product in a later one.
 */
#ifndef VITRINE_WORLD_H
#define VITRINE_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vitrine/catalog.h"
#include "vitrine/config.h"

/* Seconds a replaced version stays valid for readers that loaded it before the swap
 * without holding it. */
#define VT_WORLD_GRACE_S 30

/* A product (catalog index of this version's catalog) with a score. */
struct vt_scored_product {
    uint32_t product;
    float score;
};

/* An immutable ranked list, best first. */
struct vt_product_list {
    uint32_t n;
    struct vt_scored_product items[];
};

/* Trending products: time-decayed, intent-weighted interactions from the stream. Scores
 * are decayed to the time of the refresh; lists are cut to the strongest entries. */
struct vt_trending {
    const struct vt_product_list *global;        /* never NULL, may be empty */
    const struct vt_product_list *const *by_category; /* [categories], entries may be NULL */
    const struct vt_product_list *const *by_brand;    /* [brands], entries may be NULL */
    size_t n_categories, n_brands;
};

/* Item-to-item neighbours of one product, strongest first by co_view + co_buy. Values of
 * one list are decayed to the refresh that last read it. A list is read again when its
 * product's neighbours change and at least once an hour otherwise, so lists of different
 * products can be up to about an hour apart (a factor of at most 2^(1 h / agg.half_life_s)
 * between them, under 0.5% at the default half-life of 7 days). */
struct vt_neighbor {
    uint32_t product;
    float co_view; /* decayed co-view strength, 0 when none */
    float co_buy;  /* decayed co-purchase strength, 0 when none */
};

struct vt_neighbors {
    uint32_t n;
    struct vt_neighbor items[];
};

struct vt_world {
    uint64_t version; /* 1 for the first version, one more for each later one */
    const struct vt_catalog *catalog;
    const struct vt_trending *trending; /* never NULL */
    /* [catalog size], or NULL before the first refresh that found neighbours; entries may
     * be NULL. Use vt_world_neighbors. */
    const struct vt_neighbors *const *neighbors;
    int64_t aggregates_ms; /* wall time of the last aggregate refresh, -1 before the first */
};

/* Trending list for a category or brand index (VT_CATALOG_NONE for neither: the global
 * list). Never NULL: a category without trending products gives an empty list. */
const struct vt_product_list *vt_world_trending(const struct vt_world *w, uint32_t category,
                                                uint32_t brand);

/* Neighbours of a product, or NULL when none are known. */
const struct vt_neighbors *vt_world_neighbors(const struct vt_world *w, uint32_t product);

/* A world over a catalog with no aggregates yet; for start-up and tests. The world does
 * not own the catalog. Free with vt_world_free (which frees what the world owns only);
 * worlds that the updater publishes are freed by the updater alone. */
struct vt_world *vt_world_new_static(const struct vt_catalog *cat);
void vt_world_free(struct vt_world *w);

/* ---- the updater (service/live/) ---- */

struct vt_live;

/* Take over the initial catalog (freed by vt_live_stop) and start the updater thread,
 * which consumes cfg->kafka_catalog_topic from its beginning and refreshes aggregates
 * from Redis every cfg->live_refresh_ms. The first version (the initial catalog, no
 * aggregates) is published before this returns. Returns NULL with a message when
 * librdkafka rejects the configuration or memory runs out; the catalog then stays the
 * caller's. cfg must outlive the updater. */
struct vt_live *vt_live_start(const struct vt_config *cfg, struct vt_catalog *initial,
                              char *err, size_t errsize);

/* Stop the thread and free every version. No reader may hold a world afterwards. */
void vt_live_stop(struct vt_live *live);

/* Return the current version (acquire load). It stays valid for VT_WORLD_GRACE_S seconds
 * after a newer one is published, and while the calling thread has a hold (below). Any
 * thread. */
const struct vt_world *vt_live_world(const struct vt_live *live);

/*
 * Hold the current version on the calling thread and return it: until the matching
 * vt_live_world_release, neither it nor any later version the thread loads is freed.
 * Holds nest; only the outermost one announces a version, and an inner one returns the
 * current version, which the outer hold protects as well. A thread holds only briefly (a
 * request, a batch, an evaluation): replaced versions wait for the oldest holder. Up to
 * VT_WORLD_HOLDERS_MAX threads can hold; further threads fall back to the grace period.
 * Any thread.
 */
#define VT_WORLD_HOLDERS_MAX 1024
const struct vt_world *vt_live_world_hold(const struct vt_live *live);
void vt_live_world_release(const struct vt_live *live);

/* True once the catalog topic was read up to its end at start (or found missing for 10 s)
 * and the first aggregate refresh succeeded; otherwise why names what is missing. Stays
 * true afterwards, also while Redis or Kafka fail, because the last world stays published.
 * Any thread. */
bool vt_live_ready(const struct vt_live *live, char *why, size_t whysize);

/* Counters of one updater since its start, for /metrics. */
struct vt_live_stats {
    uint64_t world_version;
    uint64_t catalog_records;       /* catalog topic records read, invalid ones included */
    uint64_t catalog_stock_changes; /* records that only changed stock, applied in place */
    uint64_t catalog_queued;        /* records queued for the next catalog version */
    uint64_t catalog_removals;      /* tombstones of known products */
    uint64_t catalog_unchanged;     /* records that changed nothing */
    uint64_t catalog_invalid;       /* records skipped as invalid (logged, the first few) */
    uint64_t catalog_unknown_members; /* valid records with members that are no catalog
                                         field, applied without them (logged, the first
                                         few) */
    uint64_t catalog_failed;        /* records lost because memory ran out */
    uint64_t catalog_versions;      /* catalog versions published after the initial one */
    uint64_t refreshes;             /* aggregate refreshes that succeeded */
    uint64_t refresh_failures;
    uint64_t last_refresh_ns;       /* duration of the last successful refresh */
    uint64_t first_refresh_ns;      /* duration of the first one, which reads every
                                       product's neighbour lists */
    bool catalog_caught_up;
    bool kafka_up;
    bool redis_up;
};

/* Fill out with the current counters (relaxed atomic loads). Any thread. */
void vt_live_stats(const struct vt_live *live, struct vt_live_stats *out);

#endif
