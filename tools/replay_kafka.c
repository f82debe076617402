/*
 * vitrine-replay: producing records to Kafka (or to stdout with --dry-run), counting their
 * delivery reports and distinct sessions, and --max-ahead, which pauses the replay while the
 * consumer group --wait-group lags behind.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "replay_internal.h"
#include "vitrine/log.h"
#include "vitrine/util.h"

#define FLUSH_TIMEOUT_MS 60000
#define COMMITTED_TIMEOUT_MS 5000
#define FAILURES_LOGGED_MAX 10


static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *message, void *opaque)
{
    struct replay *r = opaque;

    (void)rk;
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        r->delivered++;
        return;
    }
    r->failed++;
    if (r->failed <= FAILURES_LOGGED_MAX)
        VT_ERROR("REPLAY", "delivery to %s [%d] failed: %s%s", rd_kafka_topic_name(message->rkt),
                 (int)message->partition, rd_kafka_err2str(message->err),
                 r->failed == FAILURES_LOGGED_MAX ? " (further failures are only counted)"
                                                  : "");
}


static void log_from_rdkafka(const rd_kafka_t *rk, int level, const char *facility,
                             const char *message)
{
    (void)rk;
    VT_LOG(vt_log_level_from_syslog(level), "REPLAY", "librdkafka %s: %s", facility, message);
}


static void on_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct replay *r = opaque;
    char fatal[256];

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        VT_ERROR("REPLAY", "fatal producer error, stopping: %s", fatal);
        r->stop = true;
        return;
    }
    VT_WARN("REPLAY", "kafka error: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err),
            reason);
}


/* Set a librdkafka property. Returns 0, or -1 after printing the error. */
static int set_property(rd_kafka_conf_t *conf, const char *key, const char *value)
{
    char errstr[512];

    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "vitrine-replay: invalid librdkafka property %s=%s: %s\n", key, value,
                errstr);
        return -1;
    }
    return 0;
}


/* Create the producer. Returns 0, 1 on a runtime failure, EXIT_USAGE for a bad property. */
int replay_producer_create(struct replay *r)
{
    const struct options *opt = r->opt;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];

    if (set_property(conf, "bootstrap.servers", opt->brokers) != 0 ||
        set_property(conf, "acks", "all") != 0 ||
        set_property(conf, "enable.idempotence", "true") != 0 ||
        set_property(conf, "linger.ms", "5") != 0)
        goto bad_property;

    for (int i = 0; i < opt->n_properties; i++) {
        char key[256];
        const char *eq = strchr(opt->properties[i], '=');
        size_t klen = (size_t)(eq - opt->properties[i]);

        if (klen >= sizeof key) {
            fprintf(stderr, "vitrine-replay: invalid --property '%s': the key is too long\n",
                    opt->properties[i]);
            goto bad_property;
        }
        memcpy(key, opt->properties[i], klen);
        key[klen] = '\0';
        if (set_property(conf, key, eq + 1) != 0)
            goto bad_property;
    }

    rd_kafka_conf_set_opaque(conf, r);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_log_cb(conf, log_from_rdkafka);
    rd_kafka_conf_set_error_cb(conf, on_kafka_error);
    r->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (r->producer == NULL) {
        VT_ERROR("REPLAY", "cannot create the Kafka producer: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    return 0;

bad_property:
    rd_kafka_conf_destroy(conf);
    return EXIT_USAGE;
}


/* Prepare --max-ahead: a consumer handle of the wait group that never subscribes and only
 * reads committed offsets, the topic's partitions, and their end offsets before the replay. */
int replay_backlog_init(struct replay *r)
{
    const struct options *opt = r->opt;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const rd_kafka_metadata_t *metadata = NULL;
    rd_kafka_topic_t *topic;
    rd_kafka_resp_err_t err;
    char errstr[512];

    if (set_property(conf, "bootstrap.servers", opt->brokers) != 0 ||
        set_property(conf, "group.id", opt->wait_group) != 0) {
        rd_kafka_conf_destroy(conf);
        return EXIT_USAGE;
    }
    rd_kafka_conf_set_log_cb(conf, log_from_rdkafka);
    r->group_reader = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (r->group_reader == NULL) {
        VT_ERROR("REPLAY", "cannot create the consumer for --wait-group: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }

    topic = rd_kafka_topic_new(r->producer, opt->topic, NULL);
    err = topic != NULL ? rd_kafka_metadata(r->producer, 0, topic, &metadata, 10000)
                        : rd_kafka_last_error();
    if (topic != NULL)
        rd_kafka_topic_destroy(topic);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR || metadata->topic_cnt != 1 ||
        metadata->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR ||
        metadata->topics[0].partition_cnt <= 0) {
        VT_ERROR("REPLAY", "cannot read the partitions of topic %s from %s: %s", opt->topic,
                 opt->brokers,
                 rd_kafka_err2str(err != RD_KAFKA_RESP_ERR_NO_ERROR ? err
                                                                    : metadata->topics[0].err));
        if (metadata != NULL)
            rd_kafka_metadata_destroy(metadata);
        return 1;
    }
    r->n_partitions = metadata->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(metadata);

    r->base_offsets = calloc((size_t)r->n_partitions, sizeof *r->base_offsets);
    if (r->base_offsets == NULL) {
        VT_ERROR("REPLAY", "out of memory");
        return 1;
    }
    for (int p = 0; p < r->n_partitions; p++) {
        int64_t low, high;

        err = rd_kafka_query_watermark_offsets(r->producer, opt->topic, p, &low, &high, 10000);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            VT_ERROR("REPLAY", "cannot read the end offset of %s [%d]: %s", opt->topic, p,
                     rd_kafka_err2str(err));
            return 1;
        }
        r->base_offsets[p] = high;
    }
    VT_INFO("REPLAY", "--max-ahead %" PRId64 ": following group %s on %d partitions of %s",
            opt->max_ahead, opt->wait_group, r->n_partitions, opt->topic);
    return 0;
}


/* Refresh r->consumed: records of this replay that the wait group has committed, i.e. the sum
 * over partitions of (committed offset - end offset before the replay), where positive.
 * Keeps the previous value when the query fails. */
static void backlog_refresh(struct replay *r)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(r->n_partitions);
    rd_kafka_resp_err_t err;
    uint64_t consumed = 0;

    for (int p = 0; p < r->n_partitions; p++)
        rd_kafka_topic_partition_list_add(list, r->opt->topic, p);
    err = rd_kafka_committed(r->group_reader, list, COMMITTED_TIMEOUT_MS);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        VT_WARN("REPLAY", "reading committed offsets of group %s failed: %s", r->opt->wait_group,
                rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(list);
        return;
    }
    for (int i = 0; i < list->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &list->elems[i];
        int64_t base = r->base_offsets[tp->partition];

        if (tp->err == RD_KAFKA_RESP_ERR_NO_ERROR && tp->offset > base)
            consumed += (uint64_t)(tp->offset - base);
    }
    rd_kafka_topic_partition_list_destroy(list);
    VT_DEBUG("REPLAY", "group %s has committed %" PRIu64 " records of this replay",
             r->opt->wait_group, consumed);
    if (consumed > r->consumed)
        r->consumed = consumed;
}


/* Pause while the wait group is more than --max-ahead records behind. */
void replay_wait_for_consumers(struct replay *r)
{
    int64_t max_ahead = r->opt->max_ahead;

    if (max_ahead <= 0)
        return;
    while (!r->stop) {
        uint64_t now = vt_monotonic_ns();
        uint64_t live = r->records - r->failed;
        uint64_t ahead = live > r->consumed ? live - r->consumed : 0;

        if (ahead < (uint64_t)max_ahead)
            return;
        if (now - r->last_committed_check_ns >= 200000000u) {
            r->last_committed_check_ns = now;
            backlog_refresh(r);
            continue;
        }
        if (now - r->last_wait_log_ns >= 10000000000u) {
            r->last_wait_log_ns = now;
            VT_INFO("REPLAY", "waiting: %" PRIu64 " records ahead of group %s (--max-ahead %"
                    PRId64 ")", ahead, r->opt->wait_group, max_ahead);
        }
        replay_serve_events(r, 100);
    }
}


static void remember_session(struct replay *r, const char *session)
{
    uint64_t h = vt_hash64(session, strlen(session));

    if (h == 0)
        h = 1; /* 0 marks an empty slot */
    if ((r->sessions + 1) * 2 > r->session_cap) {
        size_t cap = r->session_cap > 0 ? r->session_cap * 2 : 4096;
        uint64_t *slots = calloc(cap, sizeof *slots);

        if (slots == NULL)
            return; /* the session count stays an undercount */
        for (size_t i = 0; i < r->session_cap; i++) {
            if (r->session_hashes[i] == 0)
                continue;
            size_t j = r->session_hashes[i] & (cap - 1);
            while (slots[j] != 0)
                j = (j + 1) & (cap - 1);
            slots[j] = r->session_hashes[i];
        }
        free(r->session_hashes);
        r->session_hashes = slots;
        r->session_cap = cap;
    }
    size_t j = h & (r->session_cap - 1);
    while (r->session_hashes[j] != 0) {
        if (r->session_hashes[j] == h)
            return;
        j = (j + 1) & (r->session_cap - 1);
    }
    r->session_hashes[j] = h;
    r->sessions++;
}


/* Produce one record value under key. */
void replay_produce(struct replay *r, const char *key, const char *value, uint64_t n_rows)
{
    size_t value_len = strlen(value);

    r->records++;
    r->rows_produced += n_rows;
    remember_session(r, key);

    if (r->opt->dry_run) {
        if (printf("%s\t%s\n", key, value) < 0)
            r->failed++;
        else
            r->delivered++;
        replay_serve_events(r, 0);
        return;
    }

    /* replay_serve_events() after each record also checks for a stop signal and prints progress,
     * which matters when the replay runs as fast as possible and never waits. */
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            r->producer, RD_KAFKA_V_TOPIC(r->opt->topic),
            RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE((void *)value, value_len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);

        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            replay_serve_events(r, 0);
            return;
        }
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && !r->stop) {
            replay_serve_events(r, 100);
            continue;
        }
        r->failed++;
        if (r->failed <= FAILURES_LOGGED_MAX)
            VT_ERROR("REPLAY", "producing to %s failed: %s", r->opt->topic,
                     rd_kafka_err2str(err));
        return;
    }
}


/* Wait for outstanding deliveries; records still queued after FLUSH_TIMEOUT_MS are purged
 * and so reported as failed by the delivery callback. */
void replay_flush_producer(struct replay *r)
{
    rd_kafka_resp_err_t err;

    if (r->producer == NULL)
        return;
    err = rd_kafka_flush(r->producer, FLUSH_TIMEOUT_MS);
    if (err == RD_KAFKA_RESP_ERR__TIMED_OUT) {
        VT_ERROR("REPLAY", "%d records not delivered within %d s, giving up on them",
                 rd_kafka_outq_len(r->producer), FLUSH_TIMEOUT_MS / 1000);
        rd_kafka_purge(r->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(r->producer, 5000);
    }
}
