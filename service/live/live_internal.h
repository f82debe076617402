/*
 * vitrine: internals of the live world (service/live/), shared by its files and the unit
 * tests. Nothing here is part of the module's interface (include/vitrine/world.h).
 *
 *   world.c     read accessors, the static world for start-up and tests
 *   build.c     trending lists and neighbour lists from sorted sets already read
 *   publish.c   world versions: publication, retirement and reclamation
 *   pending.c   catalog topic records: stock in place, other changes queued by product
 *   reader.c    the updater's Redis connection and its pipelined reads
 *   feed.c      the catalog topic consumer (assign() on every partition)
 *   updater.c   the updater thread and vt_live_*
 *
 * Every function here runs on the updater thread, or in a test that plays its part,
 * unless its comment says otherwise.
 */
#ifndef VITRINE_LIVE_INTERNAL_H
#define VITRINE_LIVE_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vitrine/catalog.h"
#include "vitrine/config.h"
#include "vitrine/world.h"

/* ---- world.c ---- */

/* The empty list behind every missing trending entry. Never freed. */
extern const struct vt_product_list live_empty_list;

/* Free a trending set with all of its lists (the shared empty list excepted). */
void live_trending_free(struct vt_trending *t);

/* Free a trending set and its global list, but not the per-category and per-brand lists
 * and arrays, which it shares with another set. */
void live_trending_free_shell(struct vt_trending *t);

/* True when two trending sets share their per-category and per-brand lists. */
static inline bool live_trending_shares_groups(const struct vt_trending *a,
                                               const struct vt_trending *b)
{
    return a->by_category == b->by_category && a->by_brand == b->by_brand;
}

/* ---- build.c: world parts from aggregates already read ---- */

/* One member of a sorted set as read from Redis. id points into the reply. */
struct live_member {
    const char *id;
    size_t len;
    double score; /* a forward-decay log-score; in i2i:dirty, the time of the change (ms) */
};

/* A sorted set as read from Redis, strongest first. */
struct live_zset {
    const struct live_member *items;
    size_t n;
};

/* One per-category or per-brand trending list, named by the suffix of its key. */
struct live_trend_group {
    bool is_brand;    /* "b:<brand>"; otherwise "c:<category>" */
    const char *name; /* the category or brand name, not NUL-terminated */
    size_t len;
    struct live_zset list;
    size_t first; /* index of the list's first member in the read's group_members */
};

/* Trending lists as read from Redis. */
struct live_trending_input {
    struct live_zset global;
    const struct live_trend_group *groups;
    size_t n_groups;
};

/*
 * Build trending lists over cat: product ids map to catalog indexes (unknown ones are
 * dropped), category and brand names to their indexes (unknown ones are dropped), and
 * log-scores become values decayed to now_ms with half_life_s. Lists keep the order of
 * the input. Returns NULL when memory runs out.
 */
struct vt_trending *live_trending_build(const struct vt_catalog *cat,
                                        const struct live_trending_input *in, int64_t now_ms,
                                        double half_life_s);

/* The same for the global list alone; the per-category and per-brand lists are those of
 * `groups`, shared (free the result with live_trending_free_shell unless published). */
struct vt_trending *live_trending_build_global(const struct vt_catalog *cat,
                                               const struct live_zset *global,
                                               const struct vt_trending *groups,
                                               int64_t now_ms, double half_life_s);

/*
 * Build the neighbour list of one product from its co-view and co-purchase sets: ids map
 * to catalog indexes (unknown ones and the product itself are dropped), values are
 * decayed to now_ms, and the list is ordered by co_view + co_buy (ties by index) and cut
 * to max entries. Returns NULL when no neighbour is left; sets *oom when memory runs out.
 */
struct vt_neighbors *live_neighbors_build(const struct vt_catalog *cat, uint32_t product,
                                          const struct live_zset *co_view,
                                          const struct live_zset *co_buy, int64_t now_ms,
                                          double half_life_s, size_t max, bool *oom);

/* ---- publish.c: versions, publication and reclamation ---- */

/* Monotonic clock in nanoseconds; tests pass one they control. */
typedef uint64_t (*live_clock_fn)(void *arg);

enum live_object_kind {
    LIVE_OBJECT_WORLD = 0, /* the struct vt_world alone */
    LIVE_OBJECT_CATALOG,
    LIVE_OBJECT_TRENDING, /* with all of its lists */
    LIVE_OBJECT_TRENDING_SHELL, /* its per-category and per-brand lists live on elsewhere */
    LIVE_OBJECT_NEIGHBOR_ARRAY,
    LIVE_OBJECT_NEIGHBOR_LIST,
};

/* An object that the current version no longer references, and when it stopped: the
 * time and the first version without it. */
struct live_retired {
    enum live_object_kind kind;
    void *object;
    uint64_t retired_ns;
    uint64_t retired_version;
};

/* A reader thread's slot: the version it announced, 0 for none (publish.c, "Holds"). Each
 * slot fills one cache line, so that threads do not write to a shared line. */
struct live_holder {
    _Atomic uint64_t version;
    char pad[64 - sizeof(uint64_t)];
};

/* The new neighbour list of one product (NULL: it has none now). */
struct live_neighbor_update {
    uint32_t product;
    struct vt_neighbors *list;
};

/*
 * The published versions. `current` is what readers load; the updater thread is the only
 * writer of everything here. Retired objects wait in `retired` in the order they were
 * retired, so the oldest are at the front.
 */
struct live_state {
    const struct vt_config *cfg;
    _Atomic(const struct vt_world *) current;
    struct vt_world *world; /* the same version as current, for the updater's own use */
    uint64_t version;
    live_clock_fn clock;
    void *clock_arg;
    uint64_t grace_ns;

    struct live_retired *retired;
    size_t n_retired, retired_head, retired_capacity; /* live entries: [head, n) */
    size_t retired_catalogs; /* LIVE_OBJECT_CATALOG entries among the live ones */

    /* The reader threads' slots. With holds_checked, live_collect frees an object as soon
     * as no slot announces a version older than the one that retired it. Without it (the
     * unit tests of the grace period), an object is freed only after grace_ns. A thread
     * claims its slot once and never returns it. */
    bool holds_checked;
    uint64_t id; /* number of this state, so that a thread's slot belongs to one state */
    _Atomic size_t n_holders;
    _Atomic bool holders_overflowed; /* a thread found no slot: the grace period decides */
    struct live_holder holders[VT_WORLD_HOLDERS_MAX];
};

/* Announce the current version in the calling thread's slot of s (claimed on first use)
 * and return it. A nested call keeps the outermost announcement. When no slot is free,
 * nothing is announced and the grace period protects the thread. */
const struct vt_world *live_hold(struct live_state *s);
void live_release(struct live_state *s);

/*
 * Maximum of replaced catalogs waiting for reclamation. Each is a full copy of the catalog,
 * kept VT_WORLD_GRACE_S after it was replaced. Without a bound a steady feed of one version
 * per second kept 30 of them: the release build's RSS grew by about 6.6 MB per version
 * with the 57,055-product catalog of docs/catalog.md. At the bound the next catalog version
 * waits until live_collect frees the oldest. Under a steady feed versions then come in
 * bursts of this many, one second apart, every VT_WORLD_GRACE_S seconds. So a change other
 * than stock waits up to about VT_WORLD_GRACE_S - (LIVE_RETIRED_CATALOGS_MAX - 1) seconds
 * (27 s), plus the time to build the version.
 */
#define LIVE_RETIRED_CATALOGS_MAX 4

/* Publish version 1: catalog (taken over), no trending products, no neighbours. clock
 * NULL means vt_monotonic_ns. Returns 0, or -1 when memory runs out (the catalog is then
 * still the caller's). */
int live_state_init(struct live_state *s, const struct vt_config *cfg, struct vt_catalog *cat,
                    live_clock_fn clock, void *clock_arg);

/* Publish a version with a new catalog (taken over) and the current aggregates. Every
 * index of the current catalog must mean the same product in the new one, which
 * vt_catalog_apply guarantees. Returns 0, or -1 when memory runs out (nothing changed,
 * the catalog is freed). */
int live_publish_catalog(struct live_state *s, struct vt_catalog *cat);

/* Publish a version with new trending lists and neighbour updates (all taken over) over
 * the current catalog, decayed to now_ms. The trending set may share its per-category and
 * per-brand lists with the current one. Products without an update keep their lists.
 * Returns 0, or -1 when memory runs out (nothing changed, the inputs are freed). */
int live_publish_aggregates(struct live_state *s, struct vt_trending *trending,
                            struct live_neighbor_update *updates, size_t n, int64_t now_ms);

/* Free what was retired at least grace_ns ago, and with holds_checked also what no holder
 * can reach. Returns the number of objects freed. */
size_t live_collect(struct live_state *s);

/* Objects retired and not yet freed. */
size_t live_retired_count(const struct live_state *s);

/* Catalogs retired and not yet freed. */
size_t live_retired_catalogs(const struct live_state *s);

/* True while fewer than LIVE_RETIRED_CATALOGS_MAX replaced catalogs wait to be freed, so
 * that live_publish_catalog may retire one more. The updater checks it before building a
 * catalog version. */
bool live_catalog_publishable(const struct live_state *s);

/* Free every version: the retired objects and everything the current version holds. */
void live_state_destroy(struct live_state *s);

/* ---- pending.c: catalog topic records ---- */

/* Changes waiting for the next catalog version, at most one per product id. */
struct live_pending {
    struct vt_catalog_change *changes;
    size_t n, capacity;
    uint32_t *slots; /* hash table of change index + 1; 0 is an empty slot */
    size_t mask;
};

void live_pending_init(struct live_pending *p);
void live_pending_clear(struct live_pending *p); /* free the changes, keep the table */
void live_pending_free(struct live_pending *p);

/* What became of one catalog topic record. */
enum live_record_outcome {
    LIVE_RECORD_STOCK = 0, /* stock set in place, nothing else to change */
    LIVE_RECORD_QUEUED,    /* queued for the next catalog version (its stock, if any, was
                              already set in place when the product is served now) */
    LIVE_RECORD_REMOVED,   /* stock 0 in place where possible, removal queued */
    LIVE_RECORD_UNCHANGED, /* nothing to do: no field, or the removal of an unknown id */
    LIVE_RECORD_FAILED,    /* out of memory; the record is lost */
    LIVE_RECORD_OUTCOME_COUNT
};

/*
 * Apply one checked record against the current catalog cat (the updater's current
 * version): a stock change of a product that is served now goes in place at once,
 * everything else is merged into p. The change is emptied either way.
 */
enum live_record_outcome live_pending_record(struct live_pending *p,
                                             const struct vt_catalog *cat,
                                             struct vt_catalog_change *change);

/* ---- reader.c: the updater's Redis reads ---- */

struct redisContext;
struct redisReply;

struct live_reader {
    const struct vt_config *cfg;
    struct redisContext *ctx; /* NULL while disconnected */
    char prefix[64];          /* "<redis.prefix>{agg}:" */
    size_t prefix_len;
};

/* Entries read from the global trending list and from each category or brand list: the
 * lengths the ingest keeps. */
#define LIVE_TRENDING_GLOBAL_MAX 2000
#define LIVE_TRENDING_LIST_MAX 200

/* A block of copied member ids of the category and brand lists (reader.c). */
struct live_text_block;

/* Trending lists and recently changed products, as read in one refresh. The global list
 * and i2i:dirty point into the head replies; the category and brand lists into the copied
 * ids. This owns both. */
struct live_trending_read {
    struct live_trending_input input;
    struct live_zset dirty; /* products whose neighbours changed, scored by the time (ms) */
    struct redisReply *head[3];
    struct live_member *members; /* of the global list and i2i:dirty, ids in head[] */
    struct live_trend_group *groups;
    /* Members of the category and brand lists, ids copied into texts. Their replies are
     * freed chunk by chunk, so a refresh never keeps every list's reply at once. */
    struct live_member *group_members;
    size_t n_group_members, group_members_capacity;
    struct live_text_block *texts;
};

void live_reader_init(struct live_reader *r, const struct vt_config *cfg);
void live_reader_close(struct live_reader *r);

/* Read the global trending list, with with_groups also the per-category and per-brand
 * lists named in tr:keys (a second pipelined round trip, more for many lists), and, when
 * dirty_since_ms >= 0, the products in i2i:dirty since then. Connects first when needed.
 * Returns 0, or -1 with a message (the connection is then closed). */
int live_read_trending(struct live_reader *r, int64_t dirty_since_ms, bool with_groups,
                       struct live_trending_read *out, char *err, size_t errsize);
void live_trending_read_free(struct live_trending_read *t);

/* Products whose neighbour lists one pipelined round trip reads at most: up to 32 * 2 * 40
 * entries, kept small for the same reason as the trending chunks (reader.c). */
#define LIVE_NEIGHBOR_CHUNK 32

/* Called for each product of a neighbour read with its two sets; returns 0, or -1 to
 * stop (out of memory). */
typedef int (*live_neighbors_fn)(uint32_t product, const struct live_zset *co_view,
                                 const struct live_zset *co_buy, void *arg);

/* Read the co-view and co-purchase sets of up to LIVE_NEIGHBOR_CHUNK catalog products in
 * one pipelined round trip. Returns 0, or -1 with a message. */
int live_read_neighbors(struct live_reader *r, const struct vt_catalog *cat,
                        const uint32_t *products, size_t n, live_neighbors_fn fn, void *arg,
                        char *err, size_t errsize);

/* ---- feed.c: the catalog topic ---- */

struct live_feed;

enum live_feed_status {
    LIVE_FEED_ASSIGNED = 0, /* the topic exists; all of its partitions are assigned */
    LIVE_FEED_TOPIC_MISSING, /* the brokers answered without the topic */
    LIVE_FEED_UNREACHABLE,   /* no broker answered */
};

/* One record of the catalog topic: value NULL is a tombstone. */
typedef void (*live_record_fn)(const char *key, size_t key_len, const char *value,
                               size_t value_len, int32_t partition, int64_t offset,
                               void *arg);

/* A consumer of cfg->kafka_catalog_topic with a group id of its own and no commits.
 * Returns NULL with a message when librdkafka rejects the configuration. */
struct live_feed *live_feed_new(const struct vt_config *cfg, char *err, size_t errsize);
void live_feed_free(struct live_feed *f);

/* Look the topic up and assign its partitions that are not assigned yet, from the
 * beginning; their current ends become part of what "caught up" means. */
enum live_feed_status live_feed_assign(struct live_feed *f, int timeout_ms);

/* Consume for up to timeout_ms, calling fn for every record. Returns the records seen. */
size_t live_feed_poll(struct live_feed *f, int timeout_ms, live_record_fn fn, void *arg);

/* True once every assigned partition was read up to the end it had when assigned. */
bool live_feed_caught_up(const struct live_feed *f);

/* True when the brokers were unreachable at the last poll (librdkafka reported all brokers
 * down and nothing arrived since). */
bool live_feed_down(const struct live_feed *f);

/* Errors of records the consumer reported (not tombstones, not end of partition). */
uint64_t live_feed_errors(const struct live_feed *f);

#endif
