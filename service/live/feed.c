/*
 * vitrine: the catalog topic consumer of the updater thread (see live_internal.h).
 *
 * Every instance needs every catalog record, so the consumer joins no consumer group: it
 * assigns all partitions itself with incremental_assign() from the beginning, under a
 * group.id of its own (librdkafka's consumer requires one) and without committing
 * offsets. A restart therefore reads the whole compacted topic again, which is what
 * rebuilds the catalog on start.
 *
 * "Caught up" means: every partition was read up to the high watermark it had when it
 * was assigned, or librdkafka reported its end (enable.partition.eof). The end event also
 * covers a compacted partition whose last offsets no longer hold records.
 *
 * librdkafka serves this consumer's error callback inside rd_kafka_consumer_poll, so it
 * runs on the updater thread; its log callback runs on librdkafka's own threads.
 */
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "live_internal.h"
#include "vitrine/kafka.h"
#include "vitrine/log.h"
#include "vitrine/metrics.h"
#include "vitrine/util.h"

/* Records handled per live_feed_poll call at most, so that the updater's other work
 * (catalog versions, refreshes) runs between them during a long catch-up. */
#define POLL_BATCH_MAX 1000
/* Time allowed for the high watermark query of one partition. */
#define WATERMARK_TIMEOUT_MS 5000
/* Time allowed for closing the consumer at stop. */
#define CLOSE_TIMEOUT_MS 3000
/* Consumer errors logged one by one; after that, every ERRORS_LOG_EVERY-th. */
#define ERRORS_LOGGED 10
#define ERRORS_LOG_EVERY 1000

struct partition_state {
    int32_t id;
    int64_t end; /* high watermark when assigned; -1 when the query failed */
    bool at_end;
};

struct live_feed {
    const struct vt_config *cfg;
    rd_kafka_t *rk;
    struct partition_state *partitions;
    size_t n_partitions;
    bool down;       /* librdkafka reported all brokers down; cleared by any response */
    uint64_t errors; /* consumer errors other than end of partition */
};


static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct live_feed *f = opaque;

    (void)rk;
    vt_metrics_kafka_error();
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        f->down = true;
    VT_DEBUG("LIVE", "catalog consumer: %s: %s", rd_kafka_err2name(err), reason);
}


/* A group id no other client uses: host, process and a random UUID. */
static void unique_group_id(char *buf, size_t bufsize)
{
    char host[64] = "host";
    char uuid[40];

    if (gethostname(host, sizeof host) != 0)
        vt_strlcpy(host, "host", sizeof host);
    host[sizeof host - 1] = '\0';
    vt_uuid7(uuid, sizeof uuid);
    snprintf(buf, bufsize, "vitrine-catalog-%s-%ld-%s", host, (long)getpid(), uuid);
}


struct live_feed *live_feed_new(const struct vt_config *cfg, char *err, size_t errsize)
{
    struct live_feed *f = calloc(1, sizeof *f);
    rd_kafka_conf_t *conf = NULL;
    char group[160];
    char kerr[512];

    if (f == NULL) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    f->cfg = cfg;
    conf = vt_kafka_conf_new(cfg, err, errsize);
    if (conf == NULL)
        goto fail;

    /* Pass-through consumer properties first, so that the settings this reader depends
     * on win. */
    unique_group_id(group, sizeof group);
    if (vt_kafka_conf_set_list(conf, "kafka.consumer_properties",
                               cfg->kafka_consumer_properties, err, errsize) != 0 ||
        vt_kafka_conf_set(conf, "group.id", group, err, errsize) != 0 ||
        vt_kafka_conf_set(conf, "enable.auto.commit", "false", err, errsize) != 0 ||
        vt_kafka_conf_set(conf, "enable.auto.offset.store", "false", err, errsize) != 0 ||
        vt_kafka_conf_set(conf, "auto.offset.reset", "earliest", err, errsize) != 0 ||
        vt_kafka_conf_set(conf, "enable.partition.eof", "true", err, errsize) != 0 ||
        /* A stock change must reach the catalog within a second, so the broker must
         * respond to a fetch after at most this long even when nothing arrived. */
        vt_kafka_conf_set(conf, "fetch.wait.max.ms", "100", err, errsize) != 0)
        goto fail;
    rd_kafka_conf_set_opaque(conf, f);
    rd_kafka_conf_set_error_cb(conf, error_cb);

    f->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof kerr);
    if (f->rk == NULL) {
        snprintf(err, errsize, "cannot create the catalog topic consumer: %s", kerr);
        goto fail;
    }
    conf = NULL; /* owned by the consumer now */
    rd_kafka_poll_set_consumer(f->rk);
    VT_DEBUG("LIVE", "catalog consumer group id %s", group);
    return f;

fail:
    if (conf != NULL)
        rd_kafka_conf_destroy(conf);
    free(f);
    return NULL;
}


void live_feed_free(struct live_feed *f)
{
    if (f == NULL)
        return;
    if (f->rk != NULL) {
        rd_kafka_queue_t *queue = rd_kafka_queue_new(f->rk);
        rd_kafka_error_t *error = rd_kafka_consumer_close_queue(f->rk, queue);
        uint64_t deadline = vt_monotonic_ns() + (uint64_t)CLOSE_TIMEOUT_MS * 1000000u;

        if (error != NULL) {
            VT_WARN("LIVE", "catalog consumer close failed: %s", rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        } else {
            while (!rd_kafka_consumer_closed(f->rk) && vt_monotonic_ns() < deadline)
                rd_kafka_queue_poll_callback(queue, 100);
        }
        rd_kafka_queue_destroy(queue);

        /* This consumer commits nothing, so a close that could not finish (brokers
         * unreachable) loses nothing; do not let destroy wait for it again. */
        if (rd_kafka_consumer_closed(f->rk))
            rd_kafka_destroy(f->rk);
        else
            rd_kafka_destroy_flags(f->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    free(f->partitions);
    free(f);
}


static struct partition_state *find_partition(struct live_feed *f, int32_t id)
{
    for (size_t i = 0; i < f->n_partitions; i++) {
        if (f->partitions[i].id == id)
            return &f->partitions[i];
    }
    return NULL;
}


/* Add the partitions of the topic's metadata that are not assigned yet. */
static void assign_new_partitions(struct live_feed *f, const rd_kafka_metadata_topic_t *topic)
{
    const char *name = f->cfg->kafka_catalog_topic;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
    size_t first_new = f->n_partitions;

    for (int i = 0; i < topic->partition_cnt; i++) {
        int32_t id = topic->partitions[i].id;
        struct partition_state *grown;
        int64_t low = -1, high = -1;

        if (find_partition(f, id) != NULL)
            continue;
        grown = realloc(f->partitions, (f->n_partitions + 1) * sizeof *grown);
        if (grown == NULL) {
            VT_ERROR("LIVE", "out of memory assigning %s[%" PRId32 "]; retrying later", name,
                     id);
            break;
        }
        f->partitions = grown;

        struct partition_state *p = &f->partitions[f->n_partitions++];
        p->id = id;
        p->end = -1;
        p->at_end = false;
        if (rd_kafka_query_watermark_offsets(f->rk, name, id, &low, &high,
                                             WATERMARK_TIMEOUT_MS) ==
            RD_KAFKA_RESP_ERR_NO_ERROR) {
            p->end = high;
            p->at_end = high <= low;
        }
        rd_kafka_topic_partition_list_add(list, name, id)->offset = RD_KAFKA_OFFSET_BEGINNING;
    }

    if (list->cnt > 0) {
        rd_kafka_error_t *error = rd_kafka_incremental_assign(f->rk, list);

        if (error != NULL) {
            VT_ERROR("LIVE", "assigning %d partitions of %s failed: %s; retrying later",
                     list->cnt, name, rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
            f->n_partitions = first_new;
        } else {
            VT_INFO("LIVE", "catalog topic %s: reading %d new partitions from the beginning "
                    "(%zu assigned)", name, list->cnt, f->n_partitions);
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
}


enum live_feed_status live_feed_assign(struct live_feed *f, int timeout_ms)
{
    const char *name = f->cfg->kafka_catalog_topic;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(f->rk, name, NULL);
    const struct rd_kafka_metadata *md = NULL;
    enum live_feed_status status;
    rd_kafka_resp_err_t err;

    if (rkt == NULL)
        return LIVE_FEED_UNREACHABLE;
    err = rd_kafka_metadata(f->rk, 0, rkt, &md, timeout_ms);
    rd_kafka_topic_destroy(rkt);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        VT_DEBUG("LIVE", "catalog topic %s: metadata request failed: %s", name,
                 rd_kafka_err2str(err));
        return LIVE_FEED_UNREACHABLE;
    }

    f->down = false;
    if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR ||
        md->topics[0].partition_cnt == 0) {
        status = LIVE_FEED_TOPIC_MISSING;
    } else {
        assign_new_partitions(f, &md->topics[0]);
        status = LIVE_FEED_ASSIGNED;
    }
    rd_kafka_metadata_destroy(md);
    return status;
}


static void handle_message(struct live_feed *f, const rd_kafka_message_t *m, live_record_fn fn,
                           void *arg)
{
    struct partition_state *p = find_partition(f, m->partition);

    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (p != NULL)
            p->at_end = true;
        return;
    }
    if (m->err) {
        f->errors++;
        vt_metrics_kafka_error();
        if (f->errors <= ERRORS_LOGGED || f->errors % ERRORS_LOG_EVERY == 0)
            VT_WARN("LIVE", "catalog consumer error %" PRIu64 " on %s[%" PRId32 "]: %s",
                    f->errors, f->cfg->kafka_catalog_topic, m->partition,
                    rd_kafka_message_errstr(m));
        return;
    }

    fn(m->key, m->key_len, m->payload, m->len, m->partition, m->offset, arg);
    if (p != NULL && p->end >= 0 && m->offset + 1 >= p->end)
        p->at_end = true;
}


size_t live_feed_poll(struct live_feed *f, int timeout_ms, live_record_fn fn, void *arg)
{
    size_t records = 0;
    int wait_ms = timeout_ms;

    for (size_t i = 0; i < POLL_BATCH_MAX; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(f->rk, wait_ms);

        if (m == NULL)
            break;
        /* Any event from a broker, an end of partition included, shows it is reachable. */
        if (m->err != RD_KAFKA_RESP_ERR__TRANSPORT &&
            m->err != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
            f->down = false;
        if (!m->err)
            records++;
        handle_message(f, m, fn, arg);
        rd_kafka_message_destroy(m);
        wait_ms = 0;
    }
    return records;
}


bool live_feed_caught_up(const struct live_feed *f)
{
    for (size_t i = 0; i < f->n_partitions; i++) {
        if (!f->partitions[i].at_end)
            return false;
    }
    return f->n_partitions > 0;
}


bool live_feed_down(const struct live_feed *f)
{
    return f->down;
}


uint64_t live_feed_errors(const struct live_feed *f)
{
    return f->errors;
}
