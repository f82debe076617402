/*
 * Integration tests of the live world (service/live/) against the redis-server and the
 * local Kafka broker that tests/run.sh started: catalog topic records, aggregates written
 * to Redis the way the ingest writes them, readiness, and what survives a Redis outage.
 *
 * The tests named live_* run the updater inside the test process, so they can read the
 * world directly and time a change to the millisecond. The tests named served_* start the
 * vitrine binary and check the same changes through HTTP.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "vitrine/catalog.h"
#include "vitrine/config.h"
#include "vitrine/profile.h"
#include "vitrine/util.h"
#include "vitrine/world.h"

/* Refresh period of the tests, shorter than the default so that they run quickly. */
#define REFRESH_MS 200


/* ---- helpers ---- */

static double ms_between(uint64_t start_ns, uint64_t end_ns)
{
    return (double)(end_ns - start_ns) / 1e6;
}


/* Produce records with one key each; a NULL value is a tombstone. Waits for delivery. */
static void produce_records(const struct harness *h, const char *topic,
                            const char *const *keys, const char *const *values, size_t n)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    rd_kafka_conf_set(conf, "bootstrap.servers", h->brokers, err, sizeof err);
    rd_kafka_conf_set(conf, "acks", "all", err, sizeof err);
    rd_kafka_conf_set(conf, "linger.ms", "0", err, sizeof err);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    cr_assert_not_null(rk, "producer: %s", err);

    for (size_t i = 0; i < n; i++) {
        void *value = (void *)values[i];
        size_t len = value != NULL ? strlen(values[i]) : 0;
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(keys[i], strlen(keys[i])),
            RD_KAFKA_V_VALUE(value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);
        cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "produce: %s", rd_kafka_err2str(e));
    }
    cr_assert_eq(rd_kafka_flush(rk, 15000), RD_KAFKA_RESP_ERR_NO_ERROR,
                 "records were not delivered within 15 s");
    rd_kafka_destroy(rk);
}


static void produce_one(const struct harness *h, const char *topic, const char *key,
                        const char *value)
{
    produce_records(h, topic, &key, &value, 1);
}


static void catalog_topic_name(const struct harness *h, char *buf, size_t bufsize)
{
    snprintf(buf, bufsize, "catalog-%s", h->name);
}


static struct vt_catalog *load_test_catalog(const struct vt_config *cfg)
{
    char err[512];
    char path[512];
    struct vt_catalog *cat;

    snprintf(path, sizeof path, "%s/tests/data/catalog.jsonl", VITRINE_SOURCE_DIR);
    cat = vt_catalog_load(path, cfg, err, sizeof err);
    cr_assert_not_null(cat, "%s", err);
    return cat;
}


static void live_config(const struct harness *h, struct vt_config *cfg, const char *topic,
                        int redis_port)
{
    vt_config_defaults(cfg);
    cfg->redis_port = redis_port;
    vt_strlcpy(cfg->redis_prefix, h->prefix, sizeof cfg->redis_prefix);
    vt_strlcpy(cfg->kafka_brokers, h->brokers, sizeof cfg->kafka_brokers);
    vt_strlcpy(cfg->kafka_catalog_topic, topic, sizeof cfg->kafka_catalog_topic);
    cfg->live_refresh_ms = REFRESH_MS;
}


static struct vt_live *start_live(const struct vt_config *cfg, struct vt_catalog *cat)
{
    char err[512] = "";
    struct vt_live *live = vt_live_start(cfg, cat, err, sizeof err);

    cr_assert_not_null(live, "vt_live_start: %s", err);
    return live;
}


static void wait_ready(const struct vt_live *live, int timeout_s)
{
    char why[256] = "";

    for (int i = 0; i < timeout_s * 50; i++) {
        if (vt_live_ready(live, why, sizeof why))
            return;
        harness_sleep_ms(20);
    }
    cr_assert_fail("the updater did not become ready within %d s: %s", timeout_s, why);
}


static const struct vt_product *current_product(const struct vt_live *live, const char *id)
{
    const struct vt_world *w = vt_live_world(live);

    return vt_catalog_get(w->catalog, vt_catalog_find(w->catalog, id, strlen(id)));
}


/* A log-score whose value now is `value` under half-life h, as the ingest writes them. */
static double log_score_now(double value, double h)
{
    return (double)vt_score_stored(vt_decay_log_score(value, vt_now_ms(), h));
}


/* ---- the updater in the test process ---- */

Test(live, stock_change_leaves_within_a_second, .timeout = 60)
{
    struct harness h;
    struct vt_config cfg;
    char topic[160];

    harness_init(&h, "live-stock");
    catalog_topic_name(&h, topic, sizeof topic);
    /* The topic exists before the start, with one record that the start must apply. */
    produce_one(&h, topic, "w-2", "{\"stock\":0}");
    live_config(&h, &cfg, topic, h.redis_port);
    struct vt_live *live = start_live(&cfg, load_test_catalog(&cfg));
    wait_ready(live, 30);

    cr_assert_not(vt_product_available(current_product(live, "w-2")),
                  "the record produced before the start was not applied before ready");
    cr_assert(vt_product_available(current_product(live, "w-1")));

    uint64_t produced = vt_monotonic_ns();
    produce_one(&h, topic, "w-1", "{\"stock\":0}");
    uint64_t acknowledged = vt_monotonic_ns();
    uint64_t gone = 0;
    while (vt_monotonic_ns() - acknowledged < 5000000000ull) {
        if (!vt_product_available(current_product(live, "w-1"))) {
            gone = vt_monotonic_ns();
            break;
        }
        harness_sleep_ms(1);
    }
    cr_assert_neq(gone, 0, "w-1 still available 5 s after its stock record");
    printf("live: stock record acknowledged after %.1f ms; product out of stock %.1f ms after "
           "the acknowledgement (%.1f ms after the produce call)\n",
           ms_between(produced, acknowledged), ms_between(acknowledged, gone),
           ms_between(produced, gone));
    cr_assert_lt(ms_between(acknowledged, gone), 1000.0);

    struct vt_live_stats stats;
    vt_live_stats(live, &stats);
    cr_assert_eq(stats.catalog_stock_changes, 2);
    cr_assert_eq(stats.catalog_invalid, 0);
    vt_live_stop(live);
}


Test(live, upsert_and_removal_publish_versions, .timeout = 60)
{
    struct harness h;
    struct vt_config cfg;
    char topic[160];

    harness_init(&h, "live-upsert");
    catalog_topic_name(&h, topic, sizeof topic);
    live_config(&h, &cfg, topic, h.redis_port);
    /* The topic does not exist yet: the mock broker creates it with the first record. */
    produce_one(&h, topic, "w-8", "{\"popularity\":1}");
    struct vt_live *live = start_live(&cfg, load_test_catalog(&cfg));
    wait_ready(live, 30);
    uint64_t version = vt_live_world(live)->version;
    const struct vt_catalog *first = vt_live_world(live)->catalog;
    uint32_t c2_index = vt_catalog_find(first, "c-2", 3);
    size_t products = vt_catalog_stats(first)->products;
    cr_assert_neq(c2_index, VT_CATALOG_NONE);

    static const char *const keys[] = {"n-1", "h-1", "c-2"};
    static const char *const values[] = {
        "{\"name\":\"Velour Amber\",\"brand\":\"Velour\",\"categories\":[\"perfume\"],"
        "\"gender\":\"unisex\",\"price\":180,\"stock\":3,\"popularity\":500}",
        "{\"brand\":\"Lumen Care\"}",
        NULL,
    };
    produce_records(&h, topic, keys, values, 3);
    uint64_t acknowledged = vt_monotonic_ns();

    const struct vt_world *w = NULL;
    uint64_t published = 0;
    while (vt_monotonic_ns() - acknowledged < 5000000000ull) {
        w = vt_live_world(live);
        if (vt_catalog_find(w->catalog, "n-1", 3) != VT_CATALOG_NONE) {
            published = vt_monotonic_ns();
            break;
        }
        harness_sleep_ms(2);
    }
    cr_assert_neq(published, 0, "the new product was not published within 5 s");
    printf("live: new product published %.1f ms after its record was acknowledged\n",
           ms_between(acknowledged, published));

    cr_assert_gt(w->version, version);
    size_t n = 0;
    const uint32_t *popular = vt_catalog_popular(w->catalog, &n);
    cr_assert_str_eq(vt_catalog_get(w->catalog, popular[0])->id, "n-1");
    const struct vt_product *h1 = current_product(live, "h-1");
    cr_assert_str_eq(vt_catalog_brand_name(w->catalog, h1->brand), "Lumen Care");

    /* The removal may come with the next version when the records arrived in two polls. */
    for (int i = 0; i < 250 && current_product(live, "c-2") != NULL; i++)
        harness_sleep_ms(20);
    w = vt_live_world(live);
    cr_assert_null(current_product(live, "c-2"), "lookups still find the removed product");
    const struct vt_product *c2 = vt_catalog_get(w->catalog, c2_index);
    cr_assert(c2->removed, "the removed product keeps its index");
    cr_assert_not(vt_product_available(c2));
    cr_assert_eq(vt_catalog_stats(w->catalog)->products, products, "one added, one removed");
    vt_live_stop(live);
}


Test(live, invalid_records_are_counted_and_skipped, .timeout = 60)
{
    struct harness h;
    struct vt_config cfg;
    char topic[160];

    harness_init(&h, "live-invalid");
    catalog_topic_name(&h, topic, sizeof topic);
    /* Three malformed records, two of unknown members only (one of them for a new id),
     * one with a known field next to an unknown one, and a valid stock record. */
    static const char *const keys[] = {"w-3", "w-4", "w-5", "w-7", "UNKNOWNFIELD", "w-1",
                                       "w-6"};
    static const char *const values[] = {"{\"stock\":", "[1]", "{\"stock\":-4}",
                                         "{\"stok\":0}", "{\"colour\":\"red\"}",
                                         "{\"stock\":0,\"colour\":\"red\"}",
                                         "{\"stock\":0}"};
    produce_records(&h, topic, keys, values, 7);
    live_config(&h, &cfg, topic, h.redis_port);
    struct vt_live *live = start_live(&cfg, load_test_catalog(&cfg));
    wait_ready(live, 30);

    struct vt_live_stats stats;
    vt_live_stats(live, &stats);
    cr_assert_eq(stats.catalog_records, 7);
    cr_assert_eq(stats.catalog_invalid, 5);
    cr_assert_eq(stats.catalog_unchanged, 0, "a misspelt field is invalid, not unchanged");
    cr_assert_eq(stats.catalog_unknown_members, 1);
    cr_assert_eq(stats.catalog_stock_changes, 2, "the valid records after them still apply");
    cr_assert_not(vt_product_available(current_product(live, "w-6")));
    cr_assert_not(vt_product_available(current_product(live, "w-1")),
                  "the known field next to an unknown one applies");
    cr_assert(vt_product_available(current_product(live, "w-3")));
    cr_assert(vt_product_available(current_product(live, "w-7")), "{\"stok\":0} changes nothing");
    cr_assert_null(current_product(live, "UNKNOWNFIELD"), "unknown members add no product");
    vt_live_stop(live);
}


Test(live, aggregates_from_redis, .timeout = 60)
{
    struct harness h;
    struct vt_config cfg;
    char topic[160];
    char key[256];

    harness_init(&h, "live-agg");
    catalog_topic_name(&h, topic, sizeof topic);
    live_config(&h, &cfg, topic, h.redis_port);
    produce_one(&h, topic, "w-8", "{\"popularity\":1}");

    /* Neighbour lists written before the start, with no i2i:dirty entry: the first refresh
     * reads every product's lists, so they are there anyway. */
    snprintf(key, sizeof key, "%s{agg}:cv:m-1", h.prefix);
    free(harness_redis(&h, "ZADD %s %.17g m-2 %.17g m-3 %.17g nobody", key,
                       log_score_now(3, cfg.agg_half_life_s), log_score_now(5, cfg.agg_half_life_s),
                       log_score_now(9, cfg.agg_half_life_s)));
    snprintf(key, sizeof key, "%s{agg}:cb:m-1", h.prefix);
    free(harness_redis(&h, "ZADD %s %.17g m-2", key, log_score_now(4, cfg.agg_half_life_s)));

    struct vt_live *live = start_live(&cfg, load_test_catalog(&cfg));
    wait_ready(live, 30);

    const struct vt_world *w = vt_live_world(live);
    uint32_t m1 = vt_catalog_find(w->catalog, "m-1", 3);
    const struct vt_neighbors *nb = vt_world_neighbors(w, m1);
    cr_assert_not_null(nb, "neighbours written before the start were not loaded");
    cr_assert_eq(nb->n, 2);
    cr_assert_str_eq(vt_catalog_get(w->catalog, nb->items[0].product)->id, "m-2");
    cr_assert_float_eq(nb->items[0].co_view, 3.0f, 0.01);
    cr_assert_float_eq(nb->items[0].co_buy, 4.0f, 0.01);
    cr_assert_str_eq(vt_catalog_get(w->catalog, nb->items[1].product)->id, "m-3");
    cr_assert_geq(w->aggregates_ms, 0);

    /* Trending as the ingest writes it; the next refresh publishes it. */
    snprintf(key, sizeof key, "%s{agg}:tr", h.prefix);
    free(harness_redis(&h, "ZADD %s %.17g h-2 %.17g c-3", key,
                       log_score_now(10, cfg.trend_half_life_s),
                       log_score_now(20, cfg.trend_half_life_s)));
    snprintf(key, sizeof key, "%s{agg}:tr:c:hair", h.prefix);
    free(harness_redis(&h, "ZADD %s %.17g h-2", key, log_score_now(10, cfg.trend_half_life_s)));
    snprintf(key, sizeof key, "%s{agg}:tr:b:Kessa", h.prefix);
    free(harness_redis(&h, "ZADD %s %.17g h-2", key, log_score_now(10, cfg.trend_half_life_s)));
    snprintf(key, sizeof key, "%s{agg}:tr:keys", h.prefix);
    free(harness_redis(&h, "SADD %s c:hair b:Kessa c:unknown", key));

    /* A neighbour change the ingest marks in i2i:dirty. */
    snprintf(key, sizeof key, "%s{agg}:cv:h-3", h.prefix);
    free(harness_redis(&h, "ZADD %s %.17g h-4", key, log_score_now(2, cfg.agg_half_life_s)));
    snprintf(key, sizeof key, "%s{agg}:i2i:dirty", h.prefix);
    free(harness_redis(&h, "ZADD %s %lld h-3", key, (long long)vt_now_ms()));

    uint64_t written = vt_monotonic_ns();
    uint64_t global_seen = 0;
    uint32_t hair = vt_catalog_category_find(w->catalog, "hair", 4);
    bool seen = false;
    while (!seen && vt_monotonic_ns() - written < 5000000000ull) {
        w = vt_live_world(live);
        if (global_seen == 0 && vt_world_trending(w, VT_CATALOG_NONE, VT_CATALOG_NONE)->n == 2 &&
            vt_world_neighbors(w, vt_catalog_find(w->catalog, "h-3", 3)) != NULL)
            global_seen = vt_monotonic_ns();
        seen = global_seen != 0 && vt_world_trending(w, hair, VT_CATALOG_NONE)->n == 1;
        if (!seen)
            harness_sleep_ms(5);
    }
    cr_assert(seen, "trending and the dirty neighbours were not published within 5 s");
    printf("live: global trending and dirty neighbours written to redis were published after "
           "%.1f ms, category lists after %.1f ms (refresh every %d ms)\n",
           ms_between(written, global_seen), ms_between(written, vt_monotonic_ns()),
           REFRESH_MS);

    const struct vt_product_list *global = vt_world_trending(w, VT_CATALOG_NONE, VT_CATALOG_NONE);
    cr_assert_str_eq(vt_catalog_get(w->catalog, global->items[0].product)->id, "c-3");
    cr_assert_float_eq(global->items[0].score, 20.0f, 0.05);
    cr_assert_eq(vt_world_trending(w, hair, VT_CATALOG_NONE)->n, 1);
    uint32_t kessa = vt_catalog_brand_find(w->catalog, "Kessa", 5);
    cr_assert_eq(vt_world_trending(w, VT_CATALOG_NONE, kessa)->n, 1);
    nb = vt_world_neighbors(w, m1);
    cr_assert_eq(nb->n, 2, "m-1 kept its neighbours");
    cr_assert_str_eq(vt_catalog_get(w->catalog, nb->items[0].product)->id, "m-2");
    vt_live_stop(live);
}


static void stop_private_redis(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}


Test(live, redis_outage_keeps_world_and_readiness, .timeout = 90)
{
    struct harness h;
    struct vt_config cfg;
    char topic[160];
    int port = harness_free_port();
    pid_t redis = harness_start_redis(port, NULL);
    char why[256];

    harness_init(&h, "live-outage");
    h.redis_port = port;
    catalog_topic_name(&h, topic, sizeof topic);
    live_config(&h, &cfg, topic, port);
    cfg.redis_timeout_ms = 500;
    produce_one(&h, topic, "w-8", "{\"popularity\":1}");

    char key[256];
    snprintf(key, sizeof key, "%s{agg}:tr", h.prefix);
    free(harness_redis(&h, "ZADD %s %.17g h-1", key, log_score_now(1, cfg.trend_half_life_s)));

    struct vt_live *live = start_live(&cfg, load_test_catalog(&cfg));
    wait_ready(live, 30);
    const struct vt_world *before = vt_live_world(live);
    cr_assert_eq(vt_world_trending(before, VT_CATALOG_NONE, VT_CATALOG_NONE)->n, 1);

    stop_private_redis(redis);
    harness_sleep_ms(5 * REFRESH_MS);

    struct vt_live_stats stats;
    vt_live_stats(live, &stats);
    cr_assert_not(stats.redis_up, "the updater did not notice that redis is gone");
    cr_assert_gt(stats.refresh_failures, 0);
    cr_assert(vt_live_ready(live, why, sizeof why), "readiness lost during the outage: %s", why);
    const struct vt_world *during = vt_live_world(live);
    cr_assert_eq(during->version, before->version, "a version was published without redis");
    cr_assert_eq(vt_world_trending(during, VT_CATALOG_NONE, VT_CATALOG_NONE)->n, 1);

    /* Catalog changes still flow while redis is down. */
    produce_one(&h, topic, "h-1", "{\"stock\":0}");
    for (int i = 0; i < 100 && vt_product_available(current_product(live, "h-1")); i++)
        harness_sleep_ms(20);
    cr_assert_not(vt_product_available(current_product(live, "h-1")));

    redis = harness_start_redis(port, NULL);
    uint64_t restarted = vt_monotonic_ns();
    for (int i = 0; i < 300; i++) {
        vt_live_stats(live, &stats);
        if (stats.redis_up)
            break;
        harness_sleep_ms(20);
    }
    cr_assert(stats.redis_up, "the updater did not reconnect within 6 s");
    printf("live: aggregates refreshed again %.1f ms after redis came back\n",
           ms_between(restarted, vt_monotonic_ns()));
    /* The new redis is empty, so trending is empty now. */
    for (int i = 0; i < 50; i++) {
        if (vt_world_trending(vt_live_world(live), VT_CATALOG_NONE, VT_CATALOG_NONE)->n == 0)
            break;
        harness_sleep_ms(20);
    }
    cr_assert_eq(vt_world_trending(vt_live_world(live), VT_CATALOG_NONE, VT_CATALOG_NONE)->n, 0);
    vt_live_stop(live);
    stop_private_redis(redis);
}


/* The local broker creates a topic when a client looks it up, so this covers a topic
 * without records; the wait for a topic that stays missing is not exercised here. */
Test(live, empty_topic_ready_at_once, .timeout = 60)
{
    struct harness h;
    struct vt_config cfg;
    char topic[160];

    harness_init(&h, "live-missing");
    catalog_topic_name(&h, topic, sizeof topic);
    live_config(&h, &cfg, topic, h.redis_port);
    uint64_t started = vt_monotonic_ns();
    struct vt_live *live = start_live(&cfg, load_test_catalog(&cfg));
    wait_ready(live, 30);
    printf("live: ready %.1f ms after the start with an empty catalog topic\n",
           ms_between(started, vt_monotonic_ns()));
    cr_assert_eq(vt_catalog_size(vt_live_world(live)->catalog), 28);
    vt_live_stop(live);
}


/* ---- refresh cost with a catalog of realistic size ---- */

#define BIG_PRODUCTS 55000
#define BIG_BRANDS 800
#define BIG_CATEGORIES 300
#define BIG_CO_VIEWS 40
#define BIG_CO_BUYS 10
#define BIG_TRENDING 2000
#define BIG_TRENDING_LIST 200

/* Queue one ZADD of count members "p<n>" with values from 1 to 13, decayed under h_s. */
static void append_big_zadd(redisContext *c, const char *key, int seed, int count, double h_s)
{
    const char **argv = malloc((2 + 2 * (size_t)count) * sizeof *argv);
    size_t *lens = malloc((2 + 2 * (size_t)count) * sizeof *lens);
    char (*text)[32] = malloc(2 * (size_t)count * sizeof *text);

    cr_assert(argv != NULL && lens != NULL && text != NULL);
    argv[0] = "ZADD";
    lens[0] = 4;
    argv[1] = key;
    lens[1] = strlen(key);
    for (int k = 0; k < count; k++) {
        snprintf(text[2 * k], sizeof text[0], "%.17g",
                 log_score_now(1.0 + (k * 7 + seed) % 13, h_s));
        snprintf(text[2 * k + 1], sizeof text[0], "p%d",
                 (int)(((long)seed * 31 + (long)k * 977 + 1) % BIG_PRODUCTS));
        argv[2 + 2 * k] = text[2 * k];
        lens[2 + 2 * k] = strlen(text[2 * k]);
        argv[3 + 2 * k] = text[2 * k + 1];
        lens[3 + 2 * k] = strlen(text[2 * k + 1]);
    }
    redisAppendCommandArgv(c, 2 + 2 * count, argv, lens);
    free(argv);
    free(lens);
    free(text);
}


static void read_big_replies(redisContext *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        void *reply = NULL;

        cr_assert_eq(redisGetReply(c, &reply), REDIS_OK, "redis: %s", c->errstr);
        freeReplyObject(reply);
    }
}


/* Write every product's co-view and co-purchase set and the trending lists at the sizes
 * the ingest keeps at most (2,000 global, 200 per brand and category), through pipelined
 * ZADDs on a connection of the test's own. */
static void write_big_aggregates(const struct harness *h, const struct vt_config *cfg)
{
    struct timeval tv = {.tv_sec = 30};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", h->redis_port, tv);
    char key[128];
    size_t queued = 0;

    cr_assert(c != NULL && !c->err, "redis connect failed");
    for (int p = 0; p < BIG_PRODUCTS; p++) {
        snprintf(key, sizeof key, "%s{agg}:cv:p%d", h->prefix, p);
        append_big_zadd(c, key, p, BIG_CO_VIEWS, cfg->agg_half_life_s);
        snprintf(key, sizeof key, "%s{agg}:cb:p%d", h->prefix, p);
        append_big_zadd(c, key, p + 1, BIG_CO_BUYS, cfg->agg_half_life_s);
        queued += 2;
        if (queued >= 1000) {
            read_big_replies(c, queued);
            queued = 0;
        }
    }

    snprintf(key, sizeof key, "%s{agg}:tr", h->prefix);
    append_big_zadd(c, key, 0, BIG_TRENDING, cfg->trend_half_life_s);
    queued++;
    for (int g = 0; g < BIG_BRANDS + BIG_CATEGORIES; g++) {
        char member[32];

        if (g < BIG_BRANDS)
            snprintf(member, sizeof member, "b:b%d", g);
        else
            snprintf(member, sizeof member, "c:c%d", g - BIG_BRANDS);
        snprintf(key, sizeof key, "%s{agg}:tr:%s", h->prefix, member);
        append_big_zadd(c, key, g, BIG_TRENDING_LIST, cfg->trend_half_life_s);
        snprintf(key, sizeof key, "%s{agg}:tr:keys", h->prefix);
        const char *sadd[] = {"SADD", key, member};
        size_t sadd_lens[] = {4, strlen(key), strlen(member)};
        redisAppendCommandArgv(c, 3, sadd, sadd_lens);
        queued += 2;
    }
    read_big_replies(c, queued);
    redisFree(c);
}


/* Remove the keys write_big_aggregates wrote, so that the shared test server stays small. */
static void remove_big_aggregates(const struct harness *h)
{
    struct timeval tv = {.tv_sec = 30};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", h->redis_port, tv);
    char pattern[96];
    char cursor[32] = "0";

    cr_assert(c != NULL && !c->err, "redis connect failed");
    snprintf(pattern, sizeof pattern, "%s{agg}:*", h->prefix);
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT 5000", cursor, pattern);
        cr_assert(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2);
        vt_strlcpy(cursor, r->element[0]->str, sizeof cursor);
        for (size_t i = 0; i < r->element[1]->elements; i++)
            redisAppendCommand(c, "UNLINK %b", r->element[1]->element[i]->str,
                               r->element[1]->element[i]->len);
        for (size_t i = 0; i < r->element[1]->elements; i++) {
            void *reply = NULL;
            redisGetReply(c, &reply);
            freeReplyObject(reply);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    redisFree(c);
}


static struct vt_catalog *big_catalog(const struct vt_config *cfg)
{
    struct vt_buf text;
    char err[256];

    vt_buf_init(&text, 64 << 20);
    for (int p = 0; p < BIG_PRODUCTS; p++)
        vt_buf_printf(&text,
                      "{\"id\":\"p%d\",\"brand\":\"b%d\",\"categories\":[\"c%d\"],"
                      "\"price\":%d,\"popularity\":%d}\n",
                      p, p % BIG_BRANDS, p % BIG_CATEGORIES, 5 + p % 200, p % 1000);
    cr_assert_not(text.overflow);
    FILE *in = fmemopen(text.data, text.len, "r");
    struct vt_catalog *cat = vt_catalog_load_stream(in, "big", cfg, err, sizeof err);
    fclose(in);
    vt_buf_free(&text);
    cr_assert_not_null(cat, "%s", err);
    return cat;
}


Test(live, refresh_cost_of_a_full_catalog, .timeout = 300)
{
    struct harness h;
    struct vt_config cfg;
    char topic[160];
    struct vt_live_stats stats;

    harness_init(&h, "live-big");
    catalog_topic_name(&h, topic, sizeof topic);
    live_config(&h, &cfg, topic, h.redis_port);
    cfg.live_refresh_ms = 1000;
    produce_one(&h, topic, "p1", "{\"popularity\":1}");

    uint64_t writing = vt_monotonic_ns();
    write_big_aggregates(&h, &cfg);
    printf("live: wrote %d products' neighbour sets and %d trending lists in %.0f ms\n",
           BIG_PRODUCTS, BIG_BRANDS + BIG_CATEGORIES + 1, ms_between(writing, vt_monotonic_ns()));

    uint64_t started = vt_monotonic_ns();
    struct vt_live *live = start_live(&cfg, big_catalog(&cfg));
    wait_ready(live, 120);
    vt_live_stats(live, &stats);
    printf("live: ready %.0f ms after the start; first refresh (every neighbour list of %d "
           "products, %d trending lists) took %.0f ms\n",
           ms_between(started, vt_monotonic_ns()), BIG_PRODUCTS,
           BIG_BRANDS + BIG_CATEGORIES + 1, (double)stats.first_refresh_ns / 1e6);

    const struct vt_world *w = vt_live_world(live);
    size_t with_neighbors = 0;
    for (uint32_t p = 0; p < BIG_PRODUCTS; p++)
        with_neighbors += vt_world_neighbors(w, p) != NULL;
    cr_assert_eq(with_neighbors, BIG_PRODUCTS);
    cr_assert_eq(vt_world_trending(w, VT_CATALOG_NONE, VT_CATALOG_NONE)->n, BIG_TRENDING);
    cr_assert_eq(vt_world_trending(w, VT_CATALOG_NONE, 0)->n, BIG_TRENDING_LIST);

    /* Steady state: no dirty products, a sweep slice per refresh, and the category and
     * brand lists when ten times their last read time has passed. Watch twelve refreshes. */
    uint64_t refreshes = stats.refreshes, seen = stats.refreshes;
    uint64_t fastest = UINT64_MAX, slowest = 0;
    for (int i = 0; i < 300 && seen < refreshes + 12; i++) {
        harness_sleep_ms(50);
        vt_live_stats(live, &stats);
        if (stats.refreshes != seen) {
            seen = stats.refreshes;
            fastest = stats.last_refresh_ns < fastest ? stats.last_refresh_ns : fastest;
            slowest = stats.last_refresh_ns > slowest ? stats.last_refresh_ns : slowest;
        }
    }
    cr_assert_geq(seen, refreshes + 12);
    printf("live: steady refreshes took %.1f ms (global list and a sweep slice) to %.1f ms "
           "(with all %d category and brand lists)\n", (double)fastest / 1e6,
           (double)slowest / 1e6, BIG_BRANDS + BIG_CATEGORIES);


    /* 500 products whose neighbours changed since the last refresh. */
    struct timeval tv = {.tv_sec = 30};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", h.redis_port, tv);
    char key[128], member[32], when[32];
    cr_assert(c != NULL && !c->err, "redis connect failed");
    snprintf(key, sizeof key, "%s{agg}:i2i:dirty", h.prefix);
    snprintf(when, sizeof when, "%lld", (long long)vt_now_ms());
    for (int p = 0; p < 500; p++) {
        snprintf(member, sizeof member, "p%d", p * 101);
        const char *argv[] = {"ZADD", key, when, member};
        size_t lens[] = {4, strlen(key), strlen(when), strlen(member)};
        redisAppendCommandArgv(c, 4, argv, lens);
    }
    read_big_replies(c, 500);
    redisFree(c);
    /* One of the next three refreshes reads them (and one may read the category lists). */
    double took[3] = {0};
    refreshes = seen = stats.refreshes;
    for (int i = 0; i < 300 && seen < refreshes + 3; i++) {
        harness_sleep_ms(20);
        vt_live_stats(live, &stats);
        if (stats.refreshes != seen) {
            seen = stats.refreshes;
            took[seen - refreshes - 1] = (double)stats.last_refresh_ns / 1e6;
        }
    }
    cr_assert_geq(seen, refreshes + 3);
    printf("live: the three refreshes after 500 products were marked dirty took %.1f, %.1f "
           "and %.1f ms\n", took[0], took[1], took[2]);

    vt_live_stop(live);
    remove_big_aggregates(&h);
}


/* ---- through the vitrine binary ---- */

/* Product ids of the recommendations for a session, in order, comma-separated. */
static void recommended_ids(const struct harness *h, const char *session, char *out,
                            size_t outsize)
{
    char path[256];
    cJSON *recs;

    snprintf(path, sizeof path, "/v1/sessions/%s/recommendations?limit=40", session);
    recs = harness_get_json(h, path, 200);
    out[0] = '\0';
    cJSON *items = cJSON_GetObjectItemCaseSensitive(recs, "items");
    cJSON *item;
    size_t used = 0;
    cJSON_ArrayForEach(item, items) {
        cJSON *id = cJSON_GetObjectItemCaseSensitive(item, "product_id");
        if (!cJSON_IsString(id))
            continue;
        int n = snprintf(out + used, outsize - used, ",%s", id->valuestring);
        if (n < 0 || (size_t)n >= outsize - used)
            break;
        used += (size_t)n;
    }
    cJSON_Delete(recs);
    if (used + 1 < outsize) {
        out[used] = ',';
        out[used + 1] = '\0';
    }
}


static bool list_has(const char *ids, const char *id)
{
    char needle[176];

    snprintf(needle, sizeof needle, ",%s,", id);
    return strstr(ids, needle) != NULL;
}


static void start_with_catalog_topic(struct harness *h, const char *topic, char *env_topic,
                                     size_t size)
{
    static char env_refresh[64];

    snprintf(env_topic, size, "VITRINE_KAFKA_CATALOG_TOPIC=%s", topic);
    snprintf(env_refresh, sizeof env_refresh, "VITRINE_LIVE_REFRESH_MS=%d", REFRESH_MS);
    const char *env[] = {env_topic, env_refresh, NULL};
    harness_start(h, env);
}


Test(served, stock_zero_leaves_recommendations, .timeout = 90)
{
    struct harness h;
    char topic[160], env_topic[200];
    char ids[4096];

    harness_init(&h, "served-stock");
    catalog_topic_name(&h, topic, sizeof topic);
    produce_one(&h, topic, "w-8", "{\"popularity\":1}");
    start_with_catalog_topic(&h, topic, env_topic, sizeof env_topic);

    recommended_ids(&h, "s-live-stock", ids, sizeof ids);
    cr_assert_gt(strlen(ids), 1, "no recommendations to start with");
    char first[160];
    const char *comma = strchr(ids + 1, ',');
    snprintf(first, sizeof first, "%.*s", (int)(comma - ids - 1), ids + 1);

    char value[] = "{\"stock\":0}";
    produce_one(&h, topic, first, value);
    uint64_t acknowledged = vt_monotonic_ns();
    uint64_t gone = 0;
    while (vt_monotonic_ns() - acknowledged < 5000000000ull) {
        recommended_ids(&h, "s-live-stock", ids, sizeof ids);
        if (!list_has(ids, first)) {
            gone = vt_monotonic_ns();
            break;
        }
        harness_sleep_ms(5);
    }
    cr_assert_neq(gone, 0, "%s still recommended 5 s after its stock record", first);
    printf("served: %s left the recommendations %.1f ms after its stock record was "
           "acknowledged\n", first, ms_between(acknowledged, gone));
    cr_assert_lt(ms_between(acknowledged, gone), 1000.0);
    harness_stop(&h, 20);
}


Test(served, new_product_is_recommended, .timeout = 90)
{
    struct harness h;
    char topic[160], env_topic[200];
    char ids[4096];

    harness_init(&h, "served-upsert");
    catalog_topic_name(&h, topic, sizeof topic);
    produce_one(&h, topic, "w-8", "{\"popularity\":1}");
    start_with_catalog_topic(&h, topic, env_topic, sizeof env_topic);

    produce_one(&h, topic, "n-9",
                "{\"name\":\"Kessa Repair Mask\",\"brand\":\"Kessa\",\"categories\":[\"hair\"],"
                "\"gender\":\"unisex\",\"price\":14,\"stock\":12,\"popularity\":100000}");
    uint64_t acknowledged = vt_monotonic_ns();
    bool served = false;
    while (!served && vt_monotonic_ns() - acknowledged < 10000000000ull) {
        recommended_ids(&h, "s-live-new", ids, sizeof ids);
        served = list_has(ids, "n-9");
        if (!served)
            harness_sleep_ms(20);
    }
    cr_assert(served, "the new product was not recommended within 10 s: %s", ids);
    printf("served: new product recommended %.1f ms after its record was acknowledged\n",
           ms_between(acknowledged, vt_monotonic_ns()));
    harness_stop(&h, 20);
}


/* Status of GET /v1/products/{id}/similar. */
static int similar_status(const struct harness *h, const char *id)
{
    char path[256];
    char *body = NULL;

    snprintf(path, sizeof path, "/v1/products/%s/similar", id);
    int status = harness_http(h, "GET", path, NULL, &body, NULL);
    free(body);
    return status;
}


/* The "known" flag of one product in a rerank response. */
static bool rerank_knows(const struct harness *h, const char *id)
{
    char request[256];
    char *body = NULL;
    bool known = false;

    snprintf(request, sizeof request, "{\"product_ids\":[\"%s\",\"c-4\"]}", id);
    int status = harness_http_body(h, "POST", "/v1/sessions/s-live-removed/rerank", NULL,
                                   request, &body, NULL);
    cr_assert_eq(status, 200, "rerank: %d %s", status, body != NULL ? body : "");
    cJSON *json = cJSON_Parse(body);
    cJSON *item;
    cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(json, "items")) {
        cJSON *product = cJSON_GetObjectItemCaseSensitive(item, "product_id");
        if (cJSON_IsString(product) && strcmp(product->valuestring, id) == 0)
            known = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "known"));
    }
    cJSON_Delete(json);
    free(body);
    return known;
}


/* An instance that saw the tombstone and one started after it treat the product alike. */
Test(served, removed_product_is_unknown, .timeout = 120)
{
    struct harness h;
    char topic[160], env_topic[200];

    harness_init(&h, "served-removed");
    catalog_topic_name(&h, topic, sizeof topic);
    produce_one(&h, topic, "w-8", "{\"popularity\":1}");
    start_with_catalog_topic(&h, topic, env_topic, sizeof env_topic);
    cr_assert_eq(similar_status(&h, "c-3"), 200);
    cr_assert(rerank_knows(&h, "c-3"));

    produce_one(&h, topic, "c-3", NULL);
    uint64_t acknowledged = vt_monotonic_ns();
    int status = 200;
    while (status != 404 && vt_monotonic_ns() - acknowledged < 5000000000ull) {
        harness_sleep_ms(20);
        status = similar_status(&h, "c-3");
    }
    cr_assert_eq(status, 404, "the running instance still finds the removed product");
    cr_assert_not(rerank_knows(&h, "c-3"));
    harness_stop(&h, 20);

    start_with_catalog_topic(&h, topic, env_topic, sizeof env_topic);
    cr_assert_eq(similar_status(&h, "c-3"), 404, "the restarted instance finds it");
    cr_assert_not(rerank_knows(&h, "c-3"));
    cr_assert_eq(similar_status(&h, "c-4"), 200);
    harness_stop(&h, 20);
}


Test(served, trending_reflects_redis, .timeout = 90)
{
    struct harness h;
    char topic[160], env_topic[200];
    char key[256];

    harness_init(&h, "served-trending");
    catalog_topic_name(&h, topic, sizeof topic);
    produce_one(&h, topic, "w-8", "{\"popularity\":1}");
    start_with_catalog_topic(&h, topic, env_topic, sizeof env_topic);

    snprintf(key, sizeof key, "%s{agg}:tr", h.prefix);
    free(harness_redis(&h, "ZADD %s %.17g h-3 %.17g m-5", key, log_score_now(50, 21600),
                       log_score_now(40, 21600)));
    harness_sleep_ms(3 * REFRESH_MS);

    cJSON *body = harness_get_json(&h, "/v1/trending?limit=5", 200);
    cJSON *items = cJSON_GetObjectItemCaseSensitive(body, "items");
    cr_assert(cJSON_IsArray(items), "GET /v1/trending has no items array");
    cr_assert_geq(cJSON_GetArraySize(items), 2);
    cJSON *first = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(items, 0), "product_id");
    cJSON *second = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(items, 1), "product_id");
    cr_assert(cJSON_IsString(first) && cJSON_IsString(second));
    cr_assert_str_eq(first->valuestring, "h-3");
    cr_assert_str_eq(second->valuestring, "m-5");
    cJSON_Delete(body);
    harness_stop(&h, 20);
}
