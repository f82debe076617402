/*
 * vitrine: configuration shared by every Kafka client of the process (the events
 * consumer, the dead-letter producer, the decisions producer, the catalog reader).
 */
#ifndef VITRINE_KAFKA_H
#define VITRINE_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "vitrine/config.h"

/* A new librdkafka configuration with the brokers, client id, security settings
 * (TLS, SASL) and kafka.properties from cfg, and librdkafka's log lines routed into the
 * logger (facility KAFKA). The caller owns it. Returns NULL with a message naming the
 * property when librdkafka rejects a value. */
rd_kafka_conf_t *vt_kafka_conf_new(const struct vt_config *cfg, char *err, size_t errsize);

/* Set one property; -1 with a message naming it when librdkafka rejects the value. */
int vt_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                      size_t errsize);

/* Set "key=value,key=value" properties; setting names the vitrine setting in messages. */
int vt_kafka_conf_set_list(rd_kafka_conf_t *conf, const char *setting, const char *list,
                           char *err, size_t errsize);

#endif
