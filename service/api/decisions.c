/*
 * vitrine: the decisions producer (see include/vitrine/decisions.h).
 */
#include "vitrine/decisions.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "vitrine/kafka.h"
#include "vitrine/log.h"
#include "vitrine/metrics.h"

/* Milliseconds the producer may spend delivering what is queued at shutdown. */
#define DECISIONS_FLUSH_MS 5000

struct vt_decisions {
    const struct vt_config *cfg;
    rd_kafka_t *producer; /* NULL: publishing is disabled */
    rd_kafka_topic_t *topic; /* handle of cfg->kafka_decisions_topic, looked up once */
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
};

/* Delivery reports; run on the decisions thread inside rd_kafka_poll. */
static void delivery_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (msg->err) {
        vt_metrics_decision(VT_DECISION_FAILED);
        VT_WARN("DECIDE", "decision delivery failed: %s", rd_kafka_err2str(msg->err));
    } else {
        vt_metrics_decision(VT_DECISION_DELIVERED);
    }
}


static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    vt_metrics_kafka_error();
    VT_WARN("DECIDE", "%s: %s", rd_kafka_err2name(err), reason);
}


/* The decisions thread: serve delivery reports until stopped. */
static void *decisions_main(void *arg)
{
    struct vt_decisions *d = arg;

    while (!atomic_load(&d->stop))
        rd_kafka_poll(d->producer, 100);
    return NULL;
}


struct vt_decisions *vt_decisions_start(const struct vt_config *cfg, char *err,
                                        size_t errsize)
{
    struct vt_decisions *d = calloc(1, sizeof *d);
    rd_kafka_conf_t *conf;
    char kerr[512];

    if (d == NULL) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    d->cfg = cfg;
    if (cfg->kafka_decisions_topic[0] == '\0') {
        VT_INFO("DECIDE", "kafka.decisions_topic is empty: decisions are not published");
        return d;
    }

    conf = vt_kafka_conf_new(cfg, err, errsize);
    if (conf == NULL)
        goto fail;
    /* Decisions are records of what was shown; losing one on a broker failover is
     * acceptable, blocking a request is not. */
    if (vt_kafka_conf_set(conf, "acks", "1", err, errsize) != 0 ||
        vt_kafka_conf_set(conf, "linger.ms", "20", err, errsize) != 0 ||
        vt_kafka_conf_set(conf, "queue.buffering.max.messages", "200000", err, errsize) != 0 ||
        vt_kafka_conf_set(conf, "message.timeout.ms", "60000", err, errsize) != 0) {
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, delivery_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    d->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof kerr);
    if (d->producer == NULL) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errsize, "cannot create the decisions producer: %s", kerr);
        goto fail;
    }
    d->topic = rd_kafka_topic_new(d->producer, cfg->kafka_decisions_topic, NULL);
    if (d->topic == NULL) {
        snprintf(err, errsize, "cannot create the decisions topic handle for %s: %s",
                 cfg->kafka_decisions_topic, rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    if (pthread_create(&d->thread, NULL, decisions_main, d) != 0) {
        snprintf(err, errsize, "cannot start the decisions thread");
        goto fail;
    }
    d->thread_started = true;
    VT_INFO("DECIDE", "publishing decisions to topic %s", cfg->kafka_decisions_topic);
    return d;

fail:
    if (d->topic != NULL)
        rd_kafka_topic_destroy(d->topic);
    if (d->producer != NULL)
        rd_kafka_destroy(d->producer);
    free(d);
    return NULL;
}


void vt_decisions_publish(struct vt_decisions *d, const char *key, size_t key_len,
                          const char *value, size_t len)
{
    rd_kafka_resp_err_t err;

    if (d == NULL || d->producer == NULL)
        return;
    err = rd_kafka_producev(d->producer, RD_KAFKA_V_RKT(d->topic),
                            RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE((void *)value, len),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    /* Never wait: a full queue means Kafka is far behind, and the request must not be. */
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        vt_metrics_decision(VT_DECISION_DROPPED);
    else
        vt_metrics_decision(VT_DECISION_QUEUED);
}


void vt_decisions_stop(struct vt_decisions *d)
{
    if (d == NULL)
        return;
    if (d->thread_started) {
        atomic_store(&d->stop, true);
        pthread_join(d->thread, NULL);
    }
    if (d->producer != NULL) {
        if (rd_kafka_flush(d->producer, DECISIONS_FLUSH_MS) != RD_KAFKA_RESP_ERR_NO_ERROR)
            VT_WARN("DECIDE", "%d decisions were still queued at shutdown and are lost",
                    rd_kafka_outq_len(d->producer));
        rd_kafka_topic_destroy(d->topic);
        rd_kafka_destroy(d->producer);
    }
    free(d);
}
