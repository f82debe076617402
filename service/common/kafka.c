/*
 * vitrine: configuration shared by every Kafka client (see include/vitrine/kafka.h).
 */
#include "vitrine/kafka.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "vitrine/log.h"

/* librdkafka's log callback; it runs on librdkafka's own threads. */
static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    VT_LOG(vt_log_level_from_syslog(level), "KAFKA", "%s: %s", fac, buf);
}

int vt_kafka_conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *err,
                      size_t errsize)
{
    char kerr[256];

    if (rd_kafka_conf_set(conf, name, value, kerr, sizeof kerr) != RD_KAFKA_CONF_OK) {
        snprintf(err, errsize, "invalid Kafka property %s: %s", name, kerr);
        return -1;
    }
    return 0;
}

int vt_kafka_conf_set_list(rd_kafka_conf_t *conf, const char *setting, const char *list, char *err,
                           size_t errsize)
{
    const char *p = list;

    while (*p != '\0') {
        char pair[512];
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char *eq;

        if (len >= sizeof pair) {
            snprintf(err, errsize, "setting %s: a pair is longer than %zu bytes", setting,
                     sizeof pair - 1);
            return -1;
        }
        memcpy(pair, p, len);
        pair[len] = '\0';
        eq = strchr(pair, '=');
        if (eq != NULL) {
            *eq = '\0';
            if (vt_kafka_conf_set(conf, pair, eq + 1, err, errsize) != 0)
                return -1;
        }
        p += len + (comma ? 1 : 0);
    }
    return 0;
}

rd_kafka_conf_t *vt_kafka_conf_new(const struct vt_config *cfg, char *err, size_t errsize)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    bool sasl = strncmp(cfg->kafka_security_protocol, "sasl_", 5) == 0;

    if (vt_kafka_conf_set(conf, "bootstrap.servers", cfg->kafka_brokers, err, errsize) != 0 ||
        vt_kafka_conf_set(conf, "client.id", "vitrine", err, errsize) != 0 ||
        vt_kafka_conf_set(conf, "security.protocol", cfg->kafka_security_protocol, err,
                          errsize) != 0)
        goto fail;
    if (sasl &&
        (vt_kafka_conf_set(conf, "sasl.mechanisms", cfg->kafka_sasl_mechanism, err, errsize) ||
         vt_kafka_conf_set(conf, "sasl.username", cfg->kafka_sasl_username, err, errsize) ||
         vt_kafka_conf_set(conf, "sasl.password", cfg->kafka_sasl_password, err, errsize)))
        goto fail;
    if (cfg->kafka_ssl_ca_location[0] != '\0' &&
        vt_kafka_conf_set(conf, "ssl.ca.location", cfg->kafka_ssl_ca_location, err, errsize) != 0)
        goto fail;

    /* The pass-through properties come last, so they win. */
    if (vt_kafka_conf_set_list(conf, "kafka.properties", cfg->kafka_properties, err,
                               errsize) != 0)
        goto fail;

    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    return conf;

fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}
