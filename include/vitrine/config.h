/*
 * vitrine: configuration.
 *
 * One typed table (service/common/config.c) lists every setting with its name, type,
 * default, accepted range and help text. Values come from, in rising priority: the
 * defaults, environment variables (VITRINE_ + the name in upper case with "." replaced by
 * "_", e.g. VITRINE_HTTP_PORT), and command-line flags ("--" + the name with "." and "_"
 * replaced by "-", e.g. --http-port 8080 or --http-port=8080). `vitrine --help` prints the
 * table. An invalid value stops start-up with a message naming the setting and what it
 * accepts.
 *
 * Ownership: main() fills one struct vt_config before any thread starts; afterwards every
 * module reads it through a const pointer and nobody writes to it.
 */
#ifndef VITRINE_CONFIG_H
#define VITRINE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vitrine/event.h"
#include "vitrine/log.h"

#define VT_CONFIG_STR_MAX 256
#define VT_CONFIG_LONG_STR_MAX 2048
#define VT_KEYWORDS_MAX 32

/* Price tiers: a product's unit price falls into one of four bands. */
enum vt_price_tier {
    VT_TIER_DRUGSTORE = 0,
    VT_TIER_MID,
    VT_TIER_PREMIUM,
    VT_TIER_LUXURY,
    VT_TIER_COUNT
};

const char *vt_price_tier_name(enum vt_price_tier tier);
int vt_price_tier_parse(const char *s, size_t len, enum vt_price_tier *out);

/* A Mapp numbered parameter, configured as "ca<N>" (product category) or "cb<N>"
 * (e-commerce parameter), or for consent as "cs<N>" (session parameter) or "uc<N>" (user
 * category). kind is 0 when the setting is empty. */
struct vt_mapp_param {
    char kind; /* 'a' for ca, 'b' for cb, 's' for cs, 'u' for uc, 0 for not configured */
    int number;
};

/* Event fields that can carry a visitor id, in the order visitor.id_fields lists them. */
enum vt_visitor_field {
    VT_VISITOR_FIELD_CUSTOMER_ID = 0, /* vt_event.customer_id */
    VT_VISITOR_FIELD_USER_ID,         /* vt_event.user_id */
    VT_VISITOR_FIELD_COUNT
};

/* Token of a visitor field in visitor.id_fields: "customer_id" or "user_id". */
const char *vt_visitor_field_name(enum vt_visitor_field field);

/* Entries of visitor.blocked, and the bytes of one entry after trimming. */
#define VT_VISITOR_BLOCKED_MAX 32
#define VT_VISITOR_BLOCKED_LEN 64

enum vt_profile_key { VT_PROFILE_KEY_SESSION = 0, VT_PROFILE_KEY_USER };

struct vt_config {
    enum vt_log_level log_level;

    char http_bind[64];
    int64_t http_port;
    int64_t http_threads; /* 0: one per CPU */
    int64_t http_connection_limit;
    int64_t http_connection_limit_per_ip; /* 0: no limit per client address */
    int64_t http_timeout_s;
    int64_t http_request_timeout_s;
    char http_token_storefront[VT_CONFIG_STR_MAX]; /* secret; "" disables the check */
    char http_token_analyst[VT_CONFIG_STR_MAX];    /* secret; "" disables the check */
    char openapi_path[VT_CONFIG_STR_MAX * 4];

    char redis_host[VT_CONFIG_STR_MAX];
    int64_t redis_port;
    char redis_password[VT_CONFIG_STR_MAX]; /* secret */
    int64_t redis_db;
    int64_t redis_timeout_ms;
    char http_on_redis_error[16]; /* "unavailable" (503) or "cold_start" */
    char redis_prefix[32];

    char kafka_brokers[VT_CONFIG_LONG_STR_MAX];
    char kafka_topic[VT_CONFIG_STR_MAX];
    char kafka_group[VT_CONFIG_STR_MAX];
    char kafka_dead_letter_topic[VT_CONFIG_STR_MAX];
    char kafka_catalog_topic[VT_CONFIG_STR_MAX];
    char kafka_decisions_topic[VT_CONFIG_STR_MAX];
    char kafka_alerts_topic[VT_CONFIG_STR_MAX];
    char kafka_offset_reset[16];
    char kafka_security_protocol[32];
    char kafka_sasl_mechanism[32];
    char kafka_sasl_username[VT_CONFIG_STR_MAX];
    char kafka_sasl_password[VT_CONFIG_STR_MAX]; /* secret */
    char kafka_ssl_ca_location[VT_CONFIG_STR_MAX * 4];
    char kafka_properties[VT_CONFIG_LONG_STR_MAX]; /* "key=value,..." for every client */
    char kafka_consumer_properties[VT_CONFIG_LONG_STR_MAX]; /* the same, consumer only */

    int64_t ingest_batch_size;
    int64_t ingest_batch_wait_ms;
    int64_t ingest_retry_backoff_max_ms;
    int64_t ingest_close_timeout_ms;
    char ingest_offset_namespace[64];

    char catalog_path[VT_CONFIG_STR_MAX * 4];

    enum vt_profile_key profile_key;
    int64_t profile_ttl_s;
    double profile_half_life_s;
    int64_t profile_categories_max;
    int64_t profile_brands_max;
    int64_t profile_recent_max;
    /* Intent weight of each event type; impressions, page views and searches are 0. */
    double intent_weight[VT_EV_TYPE_COUNT];
    char profile_price_tiers[64];
    double price_tier_limits[VT_TIER_COUNT - 1]; /* parsed: ascending upper bounds */

    double gender_threshold;
    int64_t gender_min_evidence;
    double gender_step;
    double gender_prior;
    char gender_keywords_female[VT_CONFIG_LONG_STR_MAX];
    char gender_keywords_male[VT_CONFIG_LONG_STR_MAX];

    char segments_path[VT_CONFIG_STR_MAX * 4];
    int64_t segments_count_interval_s;
    int64_t segments_count_sample;

    char visitor_id_fields[64];
    /* parsed: the fields to try, in order; n_visitor_fields is 0 when visitors are off */
    enum vt_visitor_field visitor_fields[VT_VISITOR_FIELD_COUNT];
    size_t n_visitor_fields;
    char visitor_blocked[VT_CONFIG_LONG_STR_MAX * 2];
    /* parsed: the entries of visitor.blocked, trimmed; empty entries are left out */
    char visitor_blocked_values[VT_VISITOR_BLOCKED_MAX][VT_VISITOR_BLOCKED_LEN + 1];
    size_t n_visitor_blocked;
    int64_t visitor_sessions_max;
    double visitor_half_life_s;
    int64_t visitor_ttl_s;
    double visitor_weight;

    /* consent.default: true when a session without any consent value counts as granted */
    bool consent_default_granted;

    char mapp_brand_param[16];
    char mapp_category_param[16];
    char mapp_gender_param[16];
    char mapp_consent_param[16];
    struct vt_mapp_param mapp_brand; /* parsed forms of the four settings above */
    struct vt_mapp_param mapp_category;
    struct vt_mapp_param mapp_gender;
    struct vt_mapp_param mapp_consent;

    int64_t rec_limit_default;
    int64_t rec_max_per_brand;
    int64_t rec_candidates;
    double rec_control_percent;
    char rec_rules_path[VT_CONFIG_STR_MAX * 4];
    int64_t rec_rotation_after; /* impressions before rotation lowers a product */

    double agg_half_life_s;       /* item-to-item relations */
    double trend_half_life_s;     /* trending */
    int64_t agg_neighbors_max;    /* neighbours kept per product */
    int64_t agg_ttl_s;            /* lifetime of aggregate keys after their last write */
    int64_t live_refresh_ms;      /* how often each instance re-reads the aggregates */

    char alerts_rules_path[VT_CONFIG_STR_MAX * 4];
    int64_t alerts_bucket_s;      /* width of one counting bucket */
    int64_t alerts_period_ms;     /* how often the leader evaluates */
    int64_t alerts_lease_ms;      /* how long a leader's lease lasts without renewal */
    int64_t alerts_keep;          /* alerts kept for GET /v1/alerts */
    char alerts_webhook_url[VT_CONFIG_STR_MAX * 4];
    int64_t alerts_webhook_timeout_ms;
    int64_t alerts_webhook_attempts;
    char instance_id[VT_CONFIG_STR_MAX]; /* "" at load: host name and process id */
};

enum vt_config_result {
    VT_CONFIG_OK = 0,
    VT_CONFIG_EXIT = 1,   /* --help or --version was printed; exit with status 0 */
    VT_CONFIG_ERROR = -1, /* err holds the message */
};

/* Fill every setting with its default. */
void vt_config_defaults(struct vt_config *cfg);

/* Set one setting by its name ("http.port") from text, validating type and range.
 * Returns 0, or -1 with a message naming the setting and the accepted values. */
int vt_config_set(struct vt_config *cfg, const char *name, const char *value, char *err,
                  size_t errsize);

/* Apply defaults, then the environment (envp, NULL-terminated), then argv. Prints help or
 * version to out when asked. Checks relations between settings at the end. */
enum vt_config_result vt_config_load(struct vt_config *cfg, int argc, char **argv,
                                     char *const *envp, FILE *out, char *err,
                                     size_t errsize);

/* Print the settings table: flag, environment variable, type, default, range, help. */
void vt_config_print_help(FILE *out);

/* Print the settings table as a Markdown page: per section a table of setting, environment
 * variable, type and range, default and description. Secrets are marked, and only
 * defaults are printed, never configured values. docs/configuration.md is this output. */
void vt_config_print_markdown(FILE *out);

/* Log the effective configuration at info level, secrets replaced by "(set)". */
void vt_config_log(const struct vt_config *cfg);

/* Price tier of a unit price under cfg's bands. */
enum vt_price_tier vt_config_price_tier(const struct vt_config *cfg, double price);

#endif
