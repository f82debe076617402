/*
 * vitrine: the typed settings table and its loader (see include/vitrine/config.h).
 */
#include "vitrine/config.h"

#include <ctype.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "vitrine/util.h"

enum setting_type {
    SETTING_STRING,
    SETTING_SECRET, /* a string that is never printed */
    SETTING_INT,
    SETTING_DOUBLE,
    SETTING_CHOICE, /* a string from a fixed list, stored as text */
};

struct setting;
typedef int (*setting_hook)(struct vt_config *cfg, const struct setting *s, const char *value,
                            char *err, size_t errsize);

struct setting {
    const char *name;
    enum setting_type type;
    size_t offset;
    size_t size; /* buffer size for strings */
    const char *def;
    double min, max;     /* numbers: accepted range */
    const char *choices; /* SETTING_CHOICE: "a|b|c" */
    const char *help;
    setting_hook hook; /* runs after the value was stored; may parse it further */
};

static int hook_log_level(struct vt_config *cfg, const struct setting *s, const char *value,
                          char *err, size_t errsize);
static int hook_profile_key(struct vt_config *cfg, const struct setting *s, const char *value,
                            char *err, size_t errsize);
static int hook_price_tiers(struct vt_config *cfg, const struct setting *s, const char *value,
                            char *err, size_t errsize);
static int hook_mapp_param(struct vt_config *cfg, const struct setting *s, const char *value,
                           char *err, size_t errsize);
static int hook_mapp_consent_param(struct vt_config *cfg, const struct setting *s,
                                   const char *value, char *err, size_t errsize);
static int hook_visitor_id_fields(struct vt_config *cfg, const struct setting *s,
                                  const char *value, char *err, size_t errsize);
static int hook_visitor_blocked(struct vt_config *cfg, const struct setting *s,
                                const char *value, char *err, size_t errsize);
static int hook_consent_default(struct vt_config *cfg, const struct setting *s,
                                const char *value, char *err, size_t errsize);
static int hook_redis_prefix(struct vt_config *cfg, const struct setting *s,
                             const char *value, char *err, size_t errsize);
static int hook_kafka_properties(struct vt_config *cfg, const struct setting *s,
                                 const char *value, char *err, size_t errsize);

#define STR(field) offsetof(struct vt_config, field), sizeof(((struct vt_config *)0)->field)
#define NUM(field) offsetof(struct vt_config, field), 0
#define WEIGHT(type) offsetof(struct vt_config, intent_weight[type]), 0

static const struct setting settings[] = {
    {"log.level", SETTING_CHOICE, NUM(log_level), "info", 0, 0, "error|warn|info|debug",
     "Lowest level of log lines written to stderr.", hook_log_level},

    {"http.bind", SETTING_STRING, STR(http_bind), "127.0.0.1", 0, 0, NULL,
     "IPv4 or IPv6 address the HTTP API listens on; 0.0.0.0 or :: for all interfaces.",
     NULL},
    {"http.port", SETTING_INT, NUM(http_port), "8080", 1, 65535, NULL,
     "TCP port of the HTTP API.", NULL},
    {"http.threads", SETTING_INT, NUM(http_threads), "0", 0, 256, NULL,
     "HTTP worker threads, each with its own Redis connection; 0 means one per CPU.", NULL},
    {"http.connection_limit", SETTING_INT, NUM(http_connection_limit), "1024", 1, 65536, NULL,
     "Maximum concurrent HTTP connections; further ones wait in the listen backlog until one "
     "closes.",
     NULL},
    {"http.connection_limit_per_ip", SETTING_INT, NUM(http_connection_limit_per_ip), "256", 0,
     65536, NULL,
     "Maximum concurrent HTTP connections from one client address; further ones are closed "
     "at once. 0 means no limit (behind a proxy, every client has the proxy's address).",
     NULL},
    {"http.timeout_s", SETTING_INT, NUM(http_timeout_s), "30", 1, 3600, NULL,
     "Seconds an idle HTTP connection is kept open.", NULL},
    {"http.request_timeout_s", SETTING_INT, NUM(http_request_timeout_s), "30", 1, 3600, NULL,
     "Seconds a connection may take to send a whole request and read its response, counted "
     "from the connection's start or the end of its previous response; a client that sends "
     "or reads slowly is closed after that, however often it sends a byte.",
     NULL},
    {"http.token_storefront", SETTING_SECRET, STR(http_token_storefront), "", 0, 0, NULL,
     "Bearer token required on storefront endpoints (/v1/sessions/...); empty: no check.",
     NULL},
    {"http.token_analyst", SETTING_SECRET, STR(http_token_analyst), "", 0, 0, NULL,
     "Bearer token required on analyst endpoints (/v1/profiles/...); empty: no check.", NULL},
    {"http.openapi_path", SETTING_STRING, STR(openapi_path), VITRINE_OPENAPI_PATH, 0, 0, NULL,
     "File served at /openapi.yaml.", NULL},

    {"redis.host", SETTING_STRING, STR(redis_host), "127.0.0.1", 0, 0, NULL,
     "Redis host name or address.", NULL},
    {"redis.port", SETTING_INT, NUM(redis_port), "6379", 1, 65535, NULL, "Redis TCP port.",
     NULL},
    {"redis.password", SETTING_SECRET, STR(redis_password), "", 0, 0, NULL,
     "Redis password (AUTH); empty: none.", NULL},
    {"redis.db", SETTING_INT, NUM(redis_db), "0", 0, 1023, NULL,
     "Redis database number (SELECT).", NULL},
    {"redis.timeout_ms", SETTING_INT, NUM(redis_timeout_ms), "250", 1, 60000, NULL,
     "Milliseconds an HTTP request waits for Redis before it answers 503.", NULL},
    {"http.on_redis_error", SETTING_CHOICE, STR(http_on_redis_error), "unavailable", 0, 0,
     "unavailable|cold_start",
     "What the storefront endpoints (segment, recommendations, rerank) answer when the "
     "session's profile cannot be read within redis.timeout_ms: unavailable answers 503 with "
     "Retry-After; cold_start answers as for a session never seen, marked \"degraded\": "
     "true. Analyst endpoints always answer 503.",
     NULL},
    {"redis.prefix", SETTING_STRING, STR(redis_prefix), "vt:", 0, 0, NULL,
     "Prefix of every Redis key vitrine writes (letters, digits, : _ . -; at most 31 bytes).",
     hook_redis_prefix},

    {"kafka.brokers", SETTING_STRING, STR(kafka_brokers), "127.0.0.1:9092", 0, 0, NULL,
     "Kafka bootstrap servers, comma-separated host:port.", NULL},
    {"kafka.topic", SETTING_STRING, STR(kafka_topic), "events", 0, 0, NULL,
     "Topic of the tracking events (Mapp Data Streams records or canonical events).", NULL},
    {"kafka.group", SETTING_STRING, STR(kafka_group), "vitrine", 0, 0, NULL,
     "Consumer group id; instances in one group share the topic's partitions.", NULL},
    {"kafka.dead_letter_topic", SETTING_STRING, STR(kafka_dead_letter_topic),
     "events.dead-letter", 0, 0, NULL,
     "Topic that receives records which could not be decoded, with the reason in headers.",
     NULL},
    {"kafka.catalog_topic", SETTING_STRING, STR(kafka_catalog_topic), "catalog", 0, 0, NULL,
     "Compacted topic of product upserts and stock changes (key: product id, value: a "
     "catalog line or the fields that change); every instance reads all of it.",
     NULL},
    {"kafka.decisions_topic", SETTING_STRING, STR(kafka_decisions_topic), "decisions", 0, 0,
     NULL,
     "Topic that receives every recommendation decision (id, session, placement, items "
     "with positions, strategy, time); empty: decisions are not published.",
     NULL},
    {"kafka.alerts_topic", SETTING_STRING, STR(kafka_alerts_topic), "alerts", 0, 0, NULL,
     "Topic that receives every alert when it fires and when it resolves; empty: not "
     "published.",
     NULL},
    {"kafka.offset_reset", SETTING_CHOICE, STR(kafka_offset_reset), "earliest", 0, 0,
     "earliest|latest", "Where a new consumer group starts reading a partition.", NULL},
    {"kafka.security_protocol", SETTING_CHOICE, STR(kafka_security_protocol), "plaintext", 0,
     0, "plaintext|ssl|sasl_plaintext|sasl_ssl",
     "Kafka security.protocol; Mapp Data Streams uses sasl_ssl.", NULL},
    {"kafka.sasl_mechanism", SETTING_CHOICE, STR(kafka_sasl_mechanism), "SCRAM-SHA-512", 0, 0,
     "PLAIN|SCRAM-SHA-256|SCRAM-SHA-512",
     "Kafka sasl.mechanisms, used when the security protocol is sasl_*.", NULL},
    {"kafka.sasl_username", SETTING_STRING, STR(kafka_sasl_username), "", 0, 0, NULL,
     "Kafka SASL user name.", NULL},
    {"kafka.sasl_password", SETTING_SECRET, STR(kafka_sasl_password), "", 0, 0, NULL,
     "Kafka SASL password.", NULL},
    {"kafka.ssl_ca_location", SETTING_STRING, STR(kafka_ssl_ca_location), "", 0, 0, NULL,
     "File or directory of CA certificates for TLS; empty: the system's default.", NULL},
    {"kafka.properties", SETTING_STRING, STR(kafka_properties), "", 0, 0, NULL,
     "Further librdkafka properties for every client (the consumer and the dead-letter "
     "producer), as key=value pairs separated by commas, such as "
     "socket.keepalive.enable=true,client.rack=eu-1. Values cannot contain commas. Values "
     "of keys that look secret (password, secret, token, key) are never logged.",
     hook_kafka_properties},
    {"kafka.consumer_properties", SETTING_STRING, STR(kafka_consumer_properties), "", 0, 0,
     NULL,
     "Further librdkafka properties for the consumer only, in the same form, such as "
     "fetch.wait.max.ms=10,session.timeout.ms=10000.",
     hook_kafka_properties},

    {"ingest.batch_size", SETTING_INT, NUM(ingest_batch_size), "500", 1, 10000, NULL,
     "Maximum records per batch; one batch is one Redis round trip.", NULL},
    {"ingest.batch_wait_ms", SETTING_INT, NUM(ingest_batch_wait_ms), "50", 1, 10000, NULL,
     "Milliseconds the consumer waits to fill a batch before it applies what it has.", NULL},
    {"ingest.retry_backoff_max_ms", SETTING_INT, NUM(ingest_retry_backoff_max_ms), "5000",
     10, 600000, NULL,
     "Longest wait between retries of a batch after a Redis failure (the wait doubles from "
     "10 ms up to this).",
     NULL},

    {"ingest.close_timeout_ms", SETTING_INT, NUM(ingest_close_timeout_ms), "10000", 100,
     600000, NULL,
     "Longest time the consumer may take at shutdown to commit and leave its group; past it "
     "vitrine exits anyway and the records since the last commit are consumed again (and "
     "skipped as duplicates).",
     NULL},
    {"ingest.offset_namespace", SETTING_STRING, STR(ingest_offset_namespace), "", 0, 0, NULL,
     "Text mixed into the redelivery check's key next to the Kafka cluster and topic. Change "
     "it after recreating the events topic on the same cluster, because the new topic's "
     "offsets start again at 0 and would be taken for records already applied.",
     NULL},

    {"catalog.path", SETTING_STRING, STR(catalog_path), "", 0, 0, NULL,
     "Catalog file, JSON Lines (see docs/catalog.md); empty: start with no products.", NULL},

    {"profile.key", SETTING_CHOICE, NUM(profile_key), "session", 0, 0, "session|user",
     "Which id keys a profile: the session id, or the user id (falling back to the session "
     "id when an event has none).",
     hook_profile_key},
    {"profile.ttl_s", SETTING_INT, NUM(profile_ttl_s), "604800", 60, 31536000, NULL,
     "Seconds a profile lives after its last event.", NULL},
    {"profile.half_life_s", SETTING_DOUBLE, NUM(profile_half_life_s), "3600", 1, 31536000,
     NULL, "Half-life in seconds of category, brand and price-tier affinity.", NULL},
    {"profile.categories_max", SETTING_INT, NUM(profile_categories_max), "20", 1,
     VT_PROFILE_TOP_MAX, NULL, "Categories kept per profile (the strongest).", NULL},
    {"profile.brands_max", SETTING_INT, NUM(profile_brands_max), "20", 1, VT_PROFILE_TOP_MAX,
     NULL, "Brands kept per profile (the strongest).", NULL},
    {"profile.recent_max", SETTING_INT, NUM(profile_recent_max), "20", 1,
     VT_PROFILE_RECENT_MAX, NULL, "Recently viewed products kept per profile.", NULL},
    {"profile.price_tiers", SETTING_STRING, STR(profile_price_tiers), "15,50,120", 0, 0, NULL,
     "Three ascending unit prices separating the tiers drugstore, mid, premium and luxury.",
     hook_price_tiers},
    {"profile.weight.product_view", SETTING_DOUBLE, WEIGHT(VT_EV_PRODUCT_VIEW), "1", 0, 100,
     NULL, "Intent weight of a product view.", NULL},
    {"profile.weight.product_image_view", SETTING_DOUBLE, WEIGHT(VT_EV_PRODUCT_IMAGE_VIEW),
     "1.2", 0, 100, NULL, "Intent weight of a product image view.", NULL},
    {"profile.weight.click", SETTING_DOUBLE, WEIGHT(VT_EV_CLICK), "1.5", 0, 100, NULL,
     "Intent weight of a click on a listed or recommended product.", NULL},
    {"profile.weight.add_to_wishlist", SETTING_DOUBLE, WEIGHT(VT_EV_ADD_TO_WISHLIST), "2", 0,
     100, NULL, "Intent weight of adding to the wishlist.", NULL},
    {"profile.weight.add_to_cart", SETTING_DOUBLE, WEIGHT(VT_EV_ADD_TO_CART), "3", 0, 100,
     NULL, "Intent weight of adding to the cart.", NULL},
    {"profile.weight.checkout", SETTING_DOUBLE, WEIGHT(VT_EV_CHECKOUT), "3", 0, 100, NULL,
     "Intent weight of reaching checkout with a product.", NULL},
    {"profile.weight.purchase", SETTING_DOUBLE, WEIGHT(VT_EV_PURCHASE), "5", 0, 100, NULL,
     "Intent weight of a purchase.", NULL},

    {"gender.threshold", SETTING_DOUBLE, NUM(gender_threshold), "0.7", 0.5, 1, NULL,
     "Probability a segment (female or male) needs before it is reported.", NULL},
    {"gender.min_evidence", SETTING_INT, NUM(gender_min_evidence), "2", 0, 1000000, NULL,
     "Interactions with gendered products needed before a segment is reported.", NULL},
    {"gender.step", SETTING_DOUBLE, NUM(gender_step), "0.6", 0.01, 10, NULL,
     "Log-odds added per unit of intent weight of an interaction with a gendered product.",
     NULL},
    {"gender.prior", SETTING_DOUBLE, NUM(gender_prior), "0", -5, 5, NULL,
     "Log-odds of the female segment before any evidence (0: even).", NULL},
    {"gender.keywords_female", SETTING_STRING, STR(gender_keywords_female),
     "women,woman,womens,women's,female,ladies,lady,damen,frauen,femme,pour femme,for her",
     0, 0, NULL,
     "Comma-separated words that mark a product name or category as made for women.", NULL},
    {"gender.keywords_male", SETTING_STRING, STR(gender_keywords_male),
     "men,man,mens,men's,male,gentlemen,herren,maenner,homme,pour homme,for him", 0, 0, NULL,
     "Comma-separated words that mark a product name or category as made for men.", NULL},

    {"segments.path", SETTING_STRING, STR(segments_path), "", 0, 0, NULL,
     "File of segment definitions, JSON (see docs/segments.md), read again on SIGHUP; "
     "empty: no segments.",
     NULL},
    {"segments.count_interval_s", SETTING_INT, NUM(segments_count_interval_s), "60", 5, 86400,
     NULL, "Seconds between two estimates of each segment's member count.", NULL},
    {"segments.count_sample", SETTING_INT, NUM(segments_count_sample), "2000", 10, 100000,
     NULL, "Profiles read for one estimate of the member counts.", NULL},

    {"visitor.id_fields", SETTING_STRING, STR(visitor_id_fields), "customer_id,user_id", 0, 0,
     NULL,
     "Event fields that carry the visitor id, comma-separated in order of preference "
     "(customer_id, user_id): the first one with a value that is not blocked links the "
     "session to that visitor. Empty: sessions are never linked to visitors.",
     hook_visitor_id_fields},
    {"visitor.blocked", SETTING_STRING, STR(visitor_blocked),
     "0,-1,null,undefined,none,anonymous,unknown,guest,nil,n/a", 0, 0, NULL,
     "Comma-separated visitor ids that never link sessions, compared trimmed and without "
     "regard to case (at most 32 entries of at most 64 bytes). Empty ids, ids of white "
     "space only and ids made only of zeros and the separators - : . _ and space, such as "
     "00000000-0000-0000-0000-000000000000, are always blocked.",
     hook_visitor_blocked},
    {"visitor.sessions_max", SETTING_INT, NUM(visitor_sessions_max), "20", 1, 1000, NULL,
     "Live sessions one visitor may link; further sessions of that visitor are not linked.",
     NULL},
    {"visitor.half_life_s", SETTING_DOUBLE, NUM(visitor_half_life_s), "2592000", 3600,
     31536000, NULL,
     "Half-life in seconds of a visitor's long-term affinities; while visitors are on, at "
     "least profile.half_life_s.",
     NULL},
    {"visitor.ttl_s", SETTING_INT, NUM(visitor_ttl_s), "15552000", 3600, 63072000, NULL,
     "Seconds a visitor's long-term profile lives after its last event; while visitors are "
     "on, at least profile.ttl_s.",
     NULL},
    {"visitor.weight", SETTING_DOUBLE, NUM(visitor_weight), "0.5", 0, 1, NULL,
     "Weight of the visitor's long-term affinities in a linked session's profile; 0 "
     "ignores them.",
     NULL},

    {"consent.default", SETTING_CHOICE, NUM(consent_default_granted), "granted", 0, 0,
     "granted|denied",
     "Consent of a session none of whose events carried a consent value (see "
     "mapp.consent_param and the canonical field consent).",
     hook_consent_default},

    {"mapp.brand_param", SETTING_STRING, STR(mapp_brand_param), "", 0, 0, NULL,
     "Mapp parameter carrying the brand: ca<N> (product category N) or cb<N> (e-commerce "
     "parameter N); empty: brand from the catalog only.",
     hook_mapp_param},
    {"mapp.category_param", SETTING_STRING, STR(mapp_category_param), "", 0, 0, NULL,
     "Mapp parameter carrying the product category (ca<N> or cb<N>).", hook_mapp_param},
    {"mapp.gender_param", SETTING_STRING, STR(mapp_gender_param), "", 0, 0, NULL,
     "Mapp parameter carrying the product's gender target (ca<N> or cb<N>).",
     hook_mapp_param},
    {"mapp.consent_param", SETTING_STRING, STR(mapp_consent_param), "", 0, 0, NULL,
     "Mapp parameter carrying the visitor's consent: cs<N> (session parameter N) or uc<N> "
     "(user category N); its first non-empty value counts. Empty: Mapp records carry no "
     "consent.",
     hook_mapp_consent_param},

    {"rec.limit_default", SETTING_INT, NUM(rec_limit_default), "10", 1, VT_REC_LIMIT_MAX, NULL,
     "Products per recommendation response when the request gives no limit.", NULL},
    {"rec.max_per_brand", SETTING_INT, NUM(rec_max_per_brand), "3", 1, VT_REC_LIMIT_MAX, NULL,
     "Most products of one brand in one recommendation list.", NULL},
    {"rec.candidates", SETTING_INT, NUM(rec_candidates), "60", 1, 10000, NULL,
     "Candidates taken from each of the profile's top categories and brands.", NULL},
    {"rec.control_percent", SETTING_DOUBLE, NUM(rec_control_percent), "0", 0, 100, NULL,
     "Share of sessions, in percent, that form the control group: they get the "
     "non-personalised list, marked in the response and the decision record. A session "
     "stays in its group.",
     NULL},
    {"rec.rules_path", SETTING_STRING, STR(rec_rules_path), "", 0, 0, NULL,
     "JSON file of business rules (boosts, pins, filters); empty: none. See "
     "docs/recommendations.md.",
     NULL},
    {"rec.rotation_after", SETTING_INT, NUM(rec_rotation_after), "3", 1, 1000, NULL,
     "Impressions of a product to one session after which its score is lowered for that "
     "session, so that the list rotates.",
     NULL},

    {"agg.half_life_s", SETTING_DOUBLE, NUM(agg_half_life_s), "604800", 60, 315360000, NULL,
     "Half-life in seconds of co-view and co-purchase relations between products.", NULL},
    {"agg.trend_half_life_s", SETTING_DOUBLE, NUM(trend_half_life_s), "21600", 60, 31536000,
     NULL, "Half-life in seconds of trending popularity.", NULL},
    {"agg.neighbors_max", SETTING_INT, NUM(agg_neighbors_max), "40", 1, 500, NULL,
     "Co-viewed and co-purchased products kept per product (the strongest).", NULL},
    {"agg.ttl_s", SETTING_INT, NUM(agg_ttl_s), "2592000", 3600, 315360000, NULL,
     "Seconds a shared aggregate (trending list, neighbours, statistics) lives after its "
     "last update.",
     NULL},
    {"alerts.rules_path", SETTING_STRING, STR(alerts_rules_path), "", 0, 0, NULL,
     "JSON file of alert rules (see docs/alerts.md); empty: no alerts.", NULL},
    {"alerts.bucket_s", SETTING_INT, NUM(alerts_bucket_s), "10", 1, 3600, NULL,
     "Width in seconds of one counting bucket; rule windows must be multiples of it.", NULL},
    {"alerts.period_ms", SETTING_INT, NUM(alerts_period_ms), "10000", 100, 3600000, NULL,
     "How often the leader instance evaluates the alert rules.", NULL},
    {"alerts.lease_ms", SETTING_INT, NUM(alerts_lease_ms), "5000", 500, 600000, NULL,
     "How long the evaluating instance's lease lasts without renewal; when it dies, "
     "another instance takes over after at most this.",
     NULL},
    {"alerts.keep", SETTING_INT, NUM(alerts_keep), "1000", 10, 100000, NULL,
     "Alerts kept in Redis for GET /v1/alerts (the newest).", NULL},
    {"alerts.webhook_url", SETTING_STRING, STR(alerts_webhook_url), "", 0, 0, NULL,
     "http:// URL that receives every alert as a JSON POST; empty: no webhook. Its query "
     "(for a token) is not logged.", NULL},
    {"alerts.webhook_timeout_ms", SETTING_INT, NUM(alerts_webhook_timeout_ms), "3000", 100,
     60000, NULL, "Time one webhook attempt may take.", NULL},
    {"alerts.webhook_attempts", SETTING_INT, NUM(alerts_webhook_attempts), "6", 1, 100, NULL,
     "Tries per alert when the webhook fails; the wait doubles from 1 s up to 60 s.", NULL},
    {"instance.id", SETTING_STRING, STR(instance_id), "", 0, 0, NULL,
     "Name of this instance in the alert leader lease and logs; empty: host name and "
     "process id.",
     NULL},
    {"live.refresh_ms", SETTING_INT, NUM(live_refresh_ms), "1000", 100, 600000, NULL,
     "How often each instance re-reads trending products and item-to-item neighbours from "
     "Redis.",
     NULL},
};

#define SETTINGS_COUNT (sizeof settings / sizeof settings[0])

static const struct setting *setting_find(const char *name)
{
    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        if (strcmp(settings[i].name, name) == 0)
            return &settings[i];
    }
    return NULL;
}


/* "http.port" -> "VITRINE_HTTP_PORT" */
static void env_name(const char *name, char *out, size_t outsize)
{
    size_t o = vt_strlcpy(out, "VITRINE_", outsize);

    for (const char *p = name; *p != '\0' && o + 1 < outsize; p++, o++)
        out[o] = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
    out[o < outsize ? o : outsize - 1] = '\0';
}


/* "http.port" -> "--http-port" */
static void flag_name(const char *name, char *out, size_t outsize)
{
    size_t o = vt_strlcpy(out, "--", outsize);

    for (const char *p = name; *p != '\0' && o + 1 < outsize; p++, o++)
        out[o] = (*p == '.' || *p == '_') ? '-' : *p;
    out[o < outsize ? o : outsize - 1] = '\0';
}


static bool choice_valid(const char *choices, const char *value)
{
    size_t n = strlen(value);
    const char *p = choices;

    while (*p != '\0') {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && memcmp(p, value, n) == 0)
            return true;
        p += len + (bar ? 1 : 0);
    }
    return false;
}


/* Describe the accepted values of a setting for an error message. */
static void describe_range(const struct setting *s, char *out, size_t outsize)
{
    switch (s->type) {
    case SETTING_INT:
        snprintf(out, outsize, "an integer from %.0f to %.0f", s->min, s->max);
        break;
    case SETTING_DOUBLE:
        snprintf(out, outsize, "a number from %g to %g", s->min, s->max);
        break;
    case SETTING_CHOICE:
        snprintf(out, outsize, "one of %s", s->choices);
        break;
    default:
        snprintf(out, outsize, "text of at most %zu bytes", s->size - 1);
        break;
    }
}


/* True when a librdkafka property name looks like it carries a secret. */
static bool property_is_secret(const char *key, size_t len)
{
    static const char *const markers[] = {"password", "secret", "token", "jaas", "key"};
    char lower[128];

    len = len < sizeof lower - 1 ? len : sizeof lower - 1;
    for (size_t i = 0; i < len; i++)
        lower[i] = (char)tolower((unsigned char)key[i]);
    lower[len] = '\0';
    /* ssl.key.location names a file, not the key itself. */
    if (strstr(lower, "location") != NULL)
        return false;
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++) {
        if (strstr(lower, markers[i]) != NULL)
            return true;
    }
    return false;
}


/* Copy "k=v,k=v" into out with the values of secret-looking keys replaced by "(secret)". */
static void redact_properties(const char *value, char *out, size_t outsize)
{
    struct vt_buf b;
    const char *p = value;

    vt_buf_init(&b, outsize - 1);
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', len);

        if (b.len > 0)
            vt_buf_append(&b, ",", 1);
        if (eq != NULL && property_is_secret(p, (size_t)(eq - p))) {
            vt_buf_append(&b, p, (size_t)(eq - p) + 1);
            vt_buf_appends(&b, "(secret)");
        } else {
            vt_buf_append(&b, p, len);
        }
        p += len + (comma ? 1 : 0);
    }
    vt_strlcpy(out, b.data != NULL && !b.overflow ? b.data : "(too long to show)", outsize);
    vt_buf_free(&b);
}


static int setting_apply(struct vt_config *cfg, const struct setting *s, const char *value,
                         char *err, size_t errsize)
{
    char *base = (char *)cfg;
    char range[160];
    char shown[80];
    bool ok = true;

    describe_range(s, range, sizeof range);
    /* Never echo a secret back, also not in an error message. */
    if (s->type == SETTING_SECRET)
        vt_strlcpy(shown, "(secret)", sizeof shown);
    else if (s->hook == hook_kafka_properties)
        redact_properties(value, shown, sizeof shown);
    else
        vt_copy_utf8(shown, sizeof shown, value, strlen(value));

    switch (s->type) {
    case SETTING_INT: {
        int64_t v;
        ok = vt_parse_int64(value, (int64_t)s->min, (int64_t)s->max, &v) == 0;
        if (ok)
            memcpy(base + s->offset, &v, sizeof v);
        break;
    }
    case SETTING_DOUBLE: {
        double v;
        ok = vt_parse_double(value, s->min, s->max, &v) == 0;
        if (ok)
            memcpy(base + s->offset, &v, sizeof v);
        break;
    }
    case SETTING_CHOICE:
        ok = choice_valid(s->choices, value);
        /* Choices backed by a C enum have size 0 and are stored by their hook. */
        if (ok && s->size > 0)
            vt_strlcpy(base + s->offset, value, s->size);
        break;
    case SETTING_STRING:
    case SETTING_SECRET:
        ok = strlen(value) < s->size;
        if (ok)
            vt_strlcpy(base + s->offset, value, s->size);
        break;
    }
    if (!ok) {
        int n = snprintf(err, errsize, "invalid value \"%s\" for setting %s: expected %s",
                         shown, s->name, range);
        if (n >= (int)errsize && errsize > 4)
            memcpy(err + errsize - 4, "...", 4); /* show that the message was cut */
        return -1;
    }
    if (s->hook != NULL)
        return s->hook(cfg, s, value, err, errsize);
    return 0;
}


static int hook_log_level(struct vt_config *cfg, const struct setting *s, const char *value,
                          char *err, size_t errsize)
{
    (void)s;
    (void)err;
    (void)errsize;
    return vt_log_level_parse(value, &cfg->log_level);
}


static int hook_profile_key(struct vt_config *cfg, const struct setting *s, const char *value,
                            char *err, size_t errsize)
{
    (void)s;
    (void)err;
    (void)errsize;
    cfg->profile_key = strcmp(value, "user") == 0 ? VT_PROFILE_KEY_USER : VT_PROFILE_KEY_SESSION;
    return 0;
}


static int hook_price_tiers(struct vt_config *cfg, const struct setting *s, const char *value,
                            char *err, size_t errsize)
{
    double limits[VT_TIER_COUNT - 1];
    const char *p = value;

    for (int i = 0; i < VT_TIER_COUNT - 1; i++) {
        char part[32];
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        bool last = i == VT_TIER_COUNT - 2;

        if ((comma == NULL) != last || len == 0 || len >= sizeof part)
            goto invalid;
        memcpy(part, p, len);
        part[len] = '\0';
        if (vt_parse_double(part, 0, 1e9, &limits[i]) != 0)
            goto invalid;
        if (i > 0 && limits[i] <= limits[i - 1])
            goto invalid;
        p += len + 1;
    }
    memcpy(cfg->price_tier_limits, limits, sizeof limits);
    return 0;

invalid:
    snprintf(err, errsize,
             "invalid value \"%s\" for setting %s: expected three ascending prices separated "
             "by commas, such as 15,50,120",
             value, s->name);
    return -1;
}


static int parse_mapp_param(const char *value, struct vt_mapp_param *out)
{
    int64_t number;

    out->kind = 0;
    out->number = 0;
    if (value[0] == '\0')
        return 0;
    if (value[0] != 'c' || (value[1] != 'a' && value[1] != 'b'))
        return -1;
    if (vt_parse_int64(value + 2, 1, 1000000, &number) != 0)
        return -1;
    out->kind = value[1];
    out->number = (int)number;
    return 0;
}


static int hook_mapp_param(struct vt_config *cfg, const struct setting *s, const char *value,
                           char *err, size_t errsize)
{
    struct vt_mapp_param *target = &cfg->mapp_brand;

    if (strcmp(s->name, "mapp.category_param") == 0)
        target = &cfg->mapp_category;
    else if (strcmp(s->name, "mapp.gender_param") == 0)
        target = &cfg->mapp_gender;

    if (parse_mapp_param(value, target) != 0) {
        snprintf(err, errsize,
                 "invalid value \"%s\" for setting %s: expected ca<N> (product category N), "
                 "cb<N> (e-commerce parameter N) or empty, such as ca1",
                 value, s->name);
        return -1;
    }
    return 0;
}


/* Parse "cs<N>" (kind 's') or "uc<N>" (kind 'u'); "" gives kind 0. */
static int parse_consent_param(const char *value, struct vt_mapp_param *out)
{
    int64_t number;
    char kind;

    out->kind = 0;
    out->number = 0;
    if (value[0] == '\0')
        return 0;
    if (strncmp(value, "cs", 2) == 0)
        kind = 's';
    else if (strncmp(value, "uc", 2) == 0)
        kind = 'u';
    else
        return -1;
    if (vt_parse_int64(value + 2, 1, 1000000, &number) != 0)
        return -1;
    out->kind = kind;
    out->number = (int)number;
    return 0;
}


static int hook_mapp_consent_param(struct vt_config *cfg, const struct setting *s,
                                   const char *value, char *err, size_t errsize)
{
    if (parse_consent_param(value, &cfg->mapp_consent) != 0) {
        snprintf(err, errsize,
                 "invalid value \"%s\" for setting %s: expected cs<N> (session parameter N), "
                 "uc<N> (user category N) or empty, such as cs800",
                 value, s->name);
        return -1;
    }
    return 0;
}


static const char *const visitor_field_names[VT_VISITOR_FIELD_COUNT] = {
    [VT_VISITOR_FIELD_CUSTOMER_ID] = "customer_id",
    [VT_VISITOR_FIELD_USER_ID] = "user_id",
};

const char *vt_visitor_field_name(enum vt_visitor_field field)
{
    return (unsigned)field < VT_VISITOR_FIELD_COUNT ? visitor_field_names[field] : "unknown";
}


/* Bounds of s[0..len) without leading and trailing spaces and tabs. */
static void trim_span(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
        (*len)--;
}


/* Parse "customer_id,user_id" (any order, each at most once, spaces around tokens
 * allowed) into cfg->visitor_fields. "" turns visitors off. */
static int hook_visitor_id_fields(struct vt_config *cfg, const struct setting *s,
                                  const char *value, char *err, size_t errsize)
{
    enum vt_visitor_field fields[VT_VISITOR_FIELD_COUNT];
    size_t n = 0;
    const char *p = value;

    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *token = p;
        size_t token_len = len;
        int found = -1;

        trim_span(&token, &token_len);
        for (int f = 0; f < VT_VISITOR_FIELD_COUNT && found < 0; f++) {
            if (strlen(visitor_field_names[f]) == token_len &&
                strncmp(visitor_field_names[f], token, token_len) == 0)
                found = f;
        }
        if (found < 0) {
            snprintf(err, errsize,
                     "invalid value \"%s\" for setting %s: unknown field \"%.*s\"; expected "
                     "a comma-separated list of customer_id and user_id, or empty to turn "
                     "visitors off",
                     value, s->name, (int)token_len, token);
            return -1;
        }
        for (size_t i = 0; i < n; i++) {
            if (fields[i] == (enum vt_visitor_field)found) {
                snprintf(err, errsize,
                         "invalid value \"%s\" for setting %s: field %s is listed twice; "
                         "list customer_id and user_id at most once each",
                         value, s->name, visitor_field_names[found]);
                return -1;
            }
        }
        fields[n++] = (enum vt_visitor_field)found;
        p += len;
        if (comma != NULL) {
            p++;
            if (*p == '\0') {
                snprintf(err, errsize,
                         "invalid value \"%s\" for setting %s: the list ends with a comma; "
                         "expected a comma-separated list of customer_id and user_id",
                         value, s->name);
                return -1;
            }
        }
    }
    memcpy(cfg->visitor_fields, fields, n * sizeof fields[0]);
    cfg->n_visitor_fields = n;
    return 0;
}


/* Parse the comma-separated entries of visitor.blocked into cfg->visitor_blocked_values,
 * trimmed. Empty entries are skipped, since empty ids are always blocked. On error the
 * parsed entries stay as they were. */
static int hook_visitor_blocked(struct vt_config *cfg, const struct setting *s,
                                const char *value, char *err, size_t errsize)
{
    char entries[VT_VISITOR_BLOCKED_MAX][VT_VISITOR_BLOCKED_LEN + 1];
    char shown[64];
    size_t n = 0;
    const char *p = value;

    vt_copy_utf8(shown, sizeof shown - 3, value, strlen(value));
    if (strlen(shown) < strlen(value))
        vt_strlcpy(shown + strlen(shown), "...", 4);

    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *entry = p;
        size_t entry_len = len;

        trim_span(&entry, &entry_len);
        p += len + (comma ? 1 : 0);
        if (entry_len == 0)
            continue;
        if (entry_len > VT_VISITOR_BLOCKED_LEN) {
            char start[24];

            vt_copy_utf8(start, sizeof start, entry, entry_len);
            snprintf(err, errsize,
                     "invalid value \"%s\" for setting %s: entry \"%s...\" has %zu bytes, "
                     "at most %d are allowed",
                     shown, s->name, start, entry_len, VT_VISITOR_BLOCKED_LEN);
            return -1;
        }
        if (n == VT_VISITOR_BLOCKED_MAX) {
            snprintf(err, errsize,
                     "invalid value \"%s\" for setting %s: more than %d entries; list at most "
                     "%d ids",
                     shown, s->name, VT_VISITOR_BLOCKED_MAX, VT_VISITOR_BLOCKED_MAX);
            return -1;
        }
        memcpy(entries[n], entry, entry_len);
        entries[n][entry_len] = '\0';
        n++;
    }
    memcpy(cfg->visitor_blocked_values, entries, n * sizeof entries[0]);
    cfg->n_visitor_blocked = n;
    return 0;
}


static int hook_consent_default(struct vt_config *cfg, const struct setting *s,
                                const char *value, char *err, size_t errsize)
{
    (void)s;
    (void)err;
    (void)errsize;
    cfg->consent_default_granted = strcmp(value, "granted") == 0;
    return 0;
}


static int hook_redis_prefix(struct vt_config *cfg, const struct setting *s,
                             const char *value, char *err, size_t errsize)
{
    (void)cfg;
    for (const char *p = value; *p != '\0'; p++) {
        if (!isalnum((unsigned char)*p) && strchr(":_.-", *p) == NULL) {
            snprintf(err, errsize,
                     "invalid value \"%s\" for setting %s: use only letters, digits and : _ . -",
                     value, s->name);
            return -1;
        }
    }
    return 0;
}


static int hook_kafka_properties(struct vt_config *cfg, const struct setting *s,
                                 const char *value, char *err, size_t errsize)
{
    const char *p = value;
    int pair = 1;

    (void)cfg;
    while (*p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', len);

        /* The pair itself is not shown: it may hold a password. */
        if (eq == NULL || eq == p) {
            snprintf(err, errsize,
                     "invalid value for setting %s: pair %d is not key=value; separate "
                     "pairs with commas, such as socket.keepalive.enable=true,client.rack=a",
                     s->name, pair);
            return -1;
        }
        pair++;
        p += len + (comma ? 1 : 0);
    }
    return 0;
}


void vt_config_defaults(struct vt_config *cfg)
{
    char err[256];

    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        if (setting_apply(cfg, &settings[i], settings[i].def, err, sizeof err) != 0) {
            /* A default outside its own range is a programming error. */
            fprintf(stderr, "vitrine: built-in default is invalid: %s\n", err);
            abort();
        }
    }
}


int vt_config_set(struct vt_config *cfg, const char *name, const char *value, char *err,
                  size_t errsize)
{
    const struct setting *s = setting_find(name);

    if (s == NULL) {
        snprintf(err, errsize, "unknown setting \"%s\"; run vitrine --help for the list", name);
        return -1;
    }
    return setting_apply(cfg, s, value, err, errsize);
}


static void print_version(FILE *out)
{
    fprintf(out, "vitrine %s\n", VITRINE_VERSION);
}


void vt_config_print_help(FILE *out)
{
    fprintf(out,
            "Usage: vitrine [--setting value | --setting=value]...\n"
            "\n"
            "Real-time personalization service: consumes tracking events from Kafka, keeps\n"
            "session profiles in Redis and serves segments and recommendations over HTTP.\n"
            "\n"
            "Every setting can also be given as an environment variable; flags win over\n"
            "the environment, which wins over the default.\n"
            "\n"
            "  -h, --help      print this help and exit\n"
            "  --help-markdown print the settings as a Markdown page and exit\n"
            "                  (the source of docs/configuration.md)\n"
            "  --version       print the version and exit\n"
            "\n"
            "Settings:\n");
    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        const struct setting *s = &settings[i];
        char flag[96], env[96], range[160];
        const char *type = s->type == SETTING_INT      ? "integer"
                           : s->type == SETTING_DOUBLE ? "number"
                           : s->type == SETTING_CHOICE ? "choice"
                                                       : "text";

        flag_name(s->name, flag, sizeof flag);
        env_name(s->name, env, sizeof env);
        describe_range(s, range, sizeof range);
        fprintf(out, "\n  %s (%s)\n      env %s\n", flag, type, env);
        if (s->type == SETTING_SECRET)
            fprintf(out, "      default: empty (secret, never printed)\n");
        else
            fprintf(out, "      default: \"%s\"; accepts %s\n", s->def, range);
        fprintf(out, "      %s\n", s->help);
    }
}


/* ---- the settings table as a Markdown page: docs/configuration.md ---- */

/* Section titles by the first part of a setting's name. A first part missing here is its own
 * title. */
static const struct {
    const char *prefix;
    const char *title;
} markdown_sections[] = {
    {"log", "Logging"},
    {"http", "HTTP API"},
    {"redis", "Redis"},
    {"kafka", "Kafka"},
    {"ingest", "Ingestion"},
    {"catalog", "Catalog"},
    {"profile", "Profiles"},
    {"gender", "Gender segment"},
    {"segments", "Segments"},
    {"visitor", "Visitors"},
    {"consent", "Consent"},
    {"mapp", "Mapp Intelligence parameters"},
    {"rec", "Recommendations"},
    {"agg", "Stream aggregates"},
    {"alerts", "Alerts"},
    {"instance", "Instance"},
    {"live", "Live updates"},
};

static const char markdown_intro[] =
    "# Configuration reference\n"
    "\n"
    "This page is generated by `vitrine --help-markdown` from the settings table in\n"
    "`service/common/config.c`, so do not edit it by hand. After adding or changing a\n"
    "setting, rebuild and regenerate it:\n"
    "\n"
    "```sh\n"
    "cmake --build build && build/vitrine --help-markdown > docs/configuration.md\n"
    "```\n"
    "\n"
    "The unit test `config_markdown::doc_matches_settings_table` fails while this page\n"
    "differs from the table.\n"
    "\n"
    "## How settings are given\n"
    "\n"
    "Each setting has a default, an environment variable and a command-line flag. The flag\n"
    "wins over the environment variable, which wins over the default.\n"
    "\n"
    "- The environment variable is `VITRINE_` followed by the name in upper case, with `.`\n"
    "  replaced by `_`: `http.port` is `VITRINE_HTTP_PORT`.\n"
    "- The flag is `--` followed by the name with `.` and `_` replaced by `-`:\n"
    "  `--http-port 9090` or `--http-port=9090`.\n"
    "- `vitrine --help` prints the same settings as plain text.\n"
    "\n"
    "An invalid value stops the start with exit status 2 and a message that names the\n"
    "setting, the environment variable when the value came from one, and the values the\n"
    "setting accepts. An environment variable that starts with `VITRINE_` but names no\n"
    "setting stops the start too, because a misspelt token variable would otherwise start\n"
    "the service with the token check turned off. The exceptions are the variables that\n"
    "Kubernetes sets for a Service named `vitrine` (`VITRINE_SERVICE_*`, `VITRINE_PORT*`)\n"
    "and those of the project's scripts (`VITRINE_TEST_*`, `VITRINE_DEMO_*`,\n"
    "`VITRINE_DATA`, `VITRINE_ROOT`, `VITRINE_BROKERS`).\n"
    "\n"
    "The start also stops when:\n"
    "\n"
    "- `kafka.security_protocol` is `sasl_plaintext` or `sasl_ssl` and\n"
    "  `kafka.sasl_username` or `kafka.sasl_password` is empty;\n"
    "- `kafka.dead_letter_topic` equals `kafka.topic`;\n"
    "- `kafka.brokers`, `kafka.topic` or `kafka.group` is empty;\n"
    "- visitors are on (`visitor.id_fields` is not empty) and `visitor.half_life_s` is\n"
    "  below `profile.half_life_s` or `visitor.ttl_s` is below `profile.ttl_s`, because a\n"
    "  visitor's profile spans several sessions.\n"
    "\n"
    "Settings marked **secret** are never logged or shown in an error message. At start,\n"
    "vitrine logs the value of every other setting, and `(set)` or `(empty)` for a secret.\n"
    "In `kafka.properties` and `kafka.consumer_properties`, the values of keys that contain\n"
    "`password`, `secret`, `token`, `jaas` or `key` (but not `location`) are logged as\n"
    "`(secret)`. The query of `alerts.webhook_url` is not logged.\n";


/* Write text for a table cell: characters that Markdown would read as markup or as a cell
 * border are escaped. An underscore inside a word stays as it is, so that names such as
 * redis.timeout_ms can still be found with grep. */
static void markdown_text(FILE *out, const char *text)
{
    for (const char *p = text; *p != '\0'; p++) {
        bool inside_word = p > text && isalnum((unsigned char)p[-1]) &&
                           isalnum((unsigned char)p[1]);

        switch (*p) {
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '&':
            fputs("&amp;", out);
            break;
        case '_':
            fputs(inside_word ? "_" : "\\_", out);
            break;
        case '\\':
        case '|':
        case '*':
        case '~':
        case '`':
        case '[':
        case ']':
            fputc('\\', out);
            fputc(*p, out);
            break;
        default:
            fputc(*p, out);
            break;
        }
    }
}


/* Write text as a code span for a table cell. The fence is one backtick longer than the
 * longest run of backticks in the text, and "|" is escaped, because GitHub's tables split
 * cells at "|" also inside code spans. */
static void markdown_code(FILE *out, const char *text)
{
    size_t longest = 0, run = 0;

    for (const char *p = text; *p != '\0'; p++) {
        run = *p == '`' ? run + 1 : 0;
        longest = run > longest ? run : longest;
    }
    bool pad = longest > 0;
    for (size_t i = 0; i <= longest; i++)
        fputc('`', out);
    if (pad)
        fputc(' ', out);
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '|')
            fputc('\\', out);
        fputc(*p, out);
    }
    if (pad)
        fputc(' ', out);
    for (size_t i = 0; i <= longest; i++)
        fputc('`', out);
}


/* Whole numbers without an exponent (31536000, not 3.1536e+07), others as %g. */
static void markdown_number(FILE *out, double value)
{
    if (value == floor(value) && fabs(value) < 1e15)
        fprintf(out, "%.0f", value);
    else
        fprintf(out, "%g", value);
}


static void markdown_type(FILE *out, const struct setting *s)
{
    switch (s->type) {
    case SETTING_INT:
    case SETTING_DOUBLE:
        fputs(s->type == SETTING_INT ? "integer, " : "number, ", out);
        markdown_number(out, s->min);
        fputs(" to ", out);
        markdown_number(out, s->max);
        break;
    case SETTING_CHOICE: {
        const char *p = s->choices;
        fputs("one of ", out);
        while (*p != '\0') {
            char choice[64];
            const char *bar = strchr(p, '|');
            size_t len = bar ? (size_t)(bar - p) : strlen(p);

            vt_copy_utf8(choice, sizeof choice, p, len);
            markdown_code(out, choice);
            p += len + (bar ? 1 : 0);
            if (*p != '\0')
                fputs(", ", out);
        }
        break;
    }
    case SETTING_SECRET:
        fprintf(out, "**secret** text, at most %zu bytes", s->size - 1);
        break;
    case SETTING_STRING:
        fprintf(out, "text, at most %zu bytes", s->size - 1);
        break;
    }
}


/* A default that lies in the source tree (http.openapi_path) is an absolute path fixed at
 * build time. It is written relative to the tree, so that the page is the same in every
 * checkout. The tree is found from VITRINE_OPENAPI_PATH, which CMake sets to
 * <source tree>/openapi/openapi.yaml. */
static void markdown_default(FILE *out, const struct setting *s)
{
    static const char openapi_in_tree[] = "openapi/openapi.yaml";
    size_t tree_len = strlen(VITRINE_OPENAPI_PATH);

    if (tree_len >= sizeof openapi_in_tree - 1)
        tree_len -= sizeof openapi_in_tree - 1;
    if (s->def[0] == '\0') {
        fputs("empty", out);
    } else if (s->type == SETTING_SECRET) {
        fputs("(secret, not shown)", out);
    } else if (tree_len > 0 && strncmp(s->def, VITRINE_OPENAPI_PATH, tree_len) == 0) {
        markdown_code(out, s->def + tree_len);
        fputs(" in the source tree, as an absolute path fixed at build time", out);
    } else {
        markdown_code(out, s->def);
    }
}


static void markdown_section(FILE *out, const char *prefix, size_t prefix_len)
{
    const char *title = NULL;

    for (size_t i = 0; i < sizeof markdown_sections / sizeof markdown_sections[0]; i++) {
        if (strlen(markdown_sections[i].prefix) == prefix_len &&
            strncmp(markdown_sections[i].prefix, prefix, prefix_len) == 0)
            title = markdown_sections[i].title;
    }
    fputs("\n## ", out);
    if (title != NULL)
        fputs(title, out);
    else
        fwrite(prefix, 1, prefix_len, out);
    fputs("\n\n| setting | environment variable | type and range | default | description |\n"
          "|---|---|---|---|---|\n",
          out);

    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        const struct setting *s = &settings[i];
        char env[96];

        if (strncmp(s->name, prefix, prefix_len) != 0 ||
            (s->name[prefix_len] != '.' && s->name[prefix_len] != '\0'))
            continue;
        env_name(s->name, env, sizeof env);
        fputs("| ", out);
        markdown_code(out, s->name);
        fputs(" | ", out);
        markdown_code(out, env);
        fputs(" | ", out);
        markdown_type(out, s);
        fputs(" | ", out);
        markdown_default(out, s);
        fputs(" | ", out);
        markdown_text(out, s->help);
        fputs(" |\n", out);
    }
}


void vt_config_print_markdown(FILE *out)
{
    fputs(markdown_intro, out);

    /* One section per first part of the names, in the order the table first uses it. */
    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        const char *dot = strchr(settings[i].name, '.');
        size_t prefix_len = dot ? (size_t)(dot - settings[i].name) : strlen(settings[i].name);
        bool seen = false;

        for (size_t k = 0; k < i && !seen; k++)
            seen = strncmp(settings[k].name, settings[i].name, prefix_len) == 0 &&
                   (settings[k].name[prefix_len] == '.' || settings[k].name[prefix_len] == '\0');
        if (!seen)
            markdown_section(out, settings[i].name, prefix_len);
    }
}


/* Find the setting named by a flag ("--http-port"); the flag spelling treats "-", "_" and
 * "." alike. */
static const struct setting *setting_find_flag(const char *flag, size_t len)
{
    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        char expected[96];
        flag_name(settings[i].name, expected, sizeof expected);
        if (strlen(expected) != len)
            continue;
        bool same = true;
        for (size_t k = 0; k < len && same; k++) {
            char a = flag[k] == '.' || flag[k] == '_' ? '-' : flag[k];
            same = a == expected[k];
        }
        if (same)
            return &settings[i];
    }
    return NULL;
}


static enum vt_config_result load_env(struct vt_config *cfg, char *const *envp, char *err,
                                      size_t errsize)
{
    if (envp == NULL)
        return VT_CONFIG_OK;
    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        char env[96];
        size_t n;

        env_name(settings[i].name, env, sizeof env);
        n = strlen(env);
        for (char *const *e = envp; *e != NULL; e++) {
            if (strncmp(*e, env, n) == 0 && (*e)[n] == '=') {
                if (setting_apply(cfg, &settings[i], *e + n + 1, err, errsize) != 0) {
                    /* Name the variable, which is what the operator set. */
                    char inner[512];
                    vt_strlcpy(inner, err, sizeof inner);
                    snprintf(err, errsize, "%s (from %s)", inner, env);
                    return VT_CONFIG_ERROR;
                }
            }
        }
    }
    return VT_CONFIG_OK;
}


static enum vt_config_result load_args(struct vt_config *cfg, int argc, char **argv,
                                       FILE *out, char *err, size_t errsize)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *eq;
        const char *value;
        const struct setting *s;

        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            vt_config_print_help(out);
            return VT_CONFIG_EXIT;
        }
        if (strcmp(arg, "--help-markdown") == 0) {
            vt_config_print_markdown(out);
            return VT_CONFIG_EXIT;
        }
        if (strcmp(arg, "--version") == 0) {
            print_version(out);
            return VT_CONFIG_EXIT;
        }
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errsize, "unexpected argument \"%s\"; settings are given as "
                     "--name value, see vitrine --help", arg);
            return VT_CONFIG_ERROR;
        }
        eq = strchr(arg, '=');
        s = setting_find_flag(arg, eq ? (size_t)(eq - arg) : strlen(arg));
        if (s == NULL) {
            snprintf(err, errsize, "unknown option \"%.*s\"; run vitrine --help for the list",
                     (int)(eq ? eq - arg : (long)strlen(arg)), arg);
            return VT_CONFIG_ERROR;
        }
        if (eq != NULL) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(err, errsize, "option %s needs a value", arg);
            return VT_CONFIG_ERROR;
        }
        if (setting_apply(cfg, s, value, err, errsize) != 0)
            return VT_CONFIG_ERROR;
    }
    return VT_CONFIG_OK;
}


/* Checks that involve more than one setting. */
static enum vt_config_result check_relations(const struct vt_config *cfg, char *err,
                                             size_t errsize)
{
    bool sasl = strncmp(cfg->kafka_security_protocol, "sasl_", 5) == 0;

    if (sasl && (cfg->kafka_sasl_username[0] == '\0' || cfg->kafka_sasl_password[0] == '\0')) {
        snprintf(err, errsize,
                 "setting kafka.security_protocol is %s but kafka.sasl_username or "
                 "kafka.sasl_password is empty; set both (VITRINE_KAFKA_SASL_USERNAME, "
                 "VITRINE_KAFKA_SASL_PASSWORD)",
                 cfg->kafka_security_protocol);
        return VT_CONFIG_ERROR;
    }
    if (strcmp(cfg->kafka_dead_letter_topic, cfg->kafka_topic) == 0) {
        snprintf(err, errsize,
                 "setting kafka.dead_letter_topic must differ from kafka.topic (both are "
                 "\"%s\"), or rejected records would be consumed again",
                 cfg->kafka_topic);
        return VT_CONFIG_ERROR;
    }
    if (cfg->kafka_topic[0] == '\0' || cfg->kafka_group[0] == '\0' ||
        cfg->kafka_brokers[0] == '\0') {
        snprintf(err, errsize, "settings kafka.brokers, kafka.topic and kafka.group must not "
                 "be empty");
        return VT_CONFIG_ERROR;
    }
    /* The visitor settings matter only while visitors are on. */
    if (cfg->n_visitor_fields > 0 && cfg->visitor_half_life_s < cfg->profile_half_life_s) {
        snprintf(err, errsize,
                 "setting visitor.half_life_s (%.15g) must be at least "
                 "profile.half_life_s (%.15g), because a visitor's profile spans several "
                 "sessions; raise the first or lower the second",
                 cfg->visitor_half_life_s, cfg->profile_half_life_s);
        return VT_CONFIG_ERROR;
    }
    if (cfg->n_visitor_fields > 0 && cfg->visitor_ttl_s < cfg->profile_ttl_s) {
        snprintf(err, errsize,
                 "setting visitor.ttl_s (%lld) must be at least profile.ttl_s (%lld), because "
                 "a visitor's profile outlives its sessions; raise the first or lower the "
                 "second",
                 (long long)cfg->visitor_ttl_s, (long long)cfg->profile_ttl_s);
        return VT_CONFIG_ERROR;
    }
    return VT_CONFIG_OK;
}


/* Reject VITRINE_* variables that name no setting: a typo such as
 * VITRINE_HTTP_ANALYST_TOKEN would otherwise start the service with a check disabled.
 * Skipped: VITRINE_SERVICE_* and VITRINE_PORT*, which Kubernetes sets for a Service named
 * "vitrine", and the variables of the project's own scripts (VITRINE_DATA, VITRINE_ROOT,
 * VITRINE_BROKERS, VITRINE_TEST_*, VITRINE_DEMO_*). */
static enum vt_config_result check_unknown_env(char *const *envp, char *err, size_t errsize)
{
    static const char *const ignored[] = {"VITRINE_SERVICE_", "VITRINE_PORT", "VITRINE_TEST_",
                                          "VITRINE_DEMO_", "VITRINE_DATA=", "VITRINE_ROOT=",
                                          "VITRINE_BROKERS="};

    if (envp == NULL)
        return VT_CONFIG_OK;
    for (char *const *e = envp; *e != NULL; e++) {
        const char *eq = strchr(*e, '=');
        bool known = false;

        if (strncmp(*e, "VITRINE_", 8) != 0 || eq == NULL)
            continue;
        for (size_t i = 0; i < sizeof ignored / sizeof ignored[0] && !known; i++)
            known = strncmp(*e, ignored[i], strlen(ignored[i])) == 0;
        for (size_t i = 0; i < SETTINGS_COUNT && !known; i++) {
            char env[96];
            env_name(settings[i].name, env, sizeof env);
            known = strlen(env) == (size_t)(eq - *e) && strncmp(*e, env, strlen(env)) == 0;
        }
        if (!known) {
            snprintf(err, errsize, "environment variable %.*s names no setting; fix or unset "
                     "it (vitrine --help lists the settings)", (int)(eq - *e), *e);
            return VT_CONFIG_ERROR;
        }
    }
    return VT_CONFIG_OK;
}


enum vt_config_result vt_config_load(struct vt_config *cfg, int argc, char **argv,
                                     char *const *envp, FILE *out, char *err,
                                     size_t errsize)
{
    enum vt_config_result r;

    vt_config_defaults(cfg);
    r = check_unknown_env(envp, err, errsize);
    if (r != VT_CONFIG_OK)
        return r;
    r = load_env(cfg, envp, err, errsize);
    if (r != VT_CONFIG_OK)
        return r;
    r = load_args(cfg, argc, argv, out, err, errsize);
    if (r != VT_CONFIG_OK)
        return r;
    return check_relations(cfg, err, errsize);
}


void vt_config_log(const struct vt_config *cfg)
{
    const char *base = (const char *)cfg;

    for (size_t i = 0; i < SETTINGS_COUNT; i++) {
        const struct setting *s = &settings[i];
        const void *field = base + s->offset;

        switch (s->type) {
        case SETTING_INT: {
            int64_t v;
            memcpy(&v, field, sizeof v);
            VT_INFO("CONFIG", "%s = %lld", s->name, (long long)v);
            break;
        }
        case SETTING_DOUBLE: {
            double v;
            memcpy(&v, field, sizeof v);
            VT_INFO("CONFIG", "%s = %g", s->name, v);
            break;
        }
        case SETTING_SECRET:
            VT_INFO("CONFIG", "%s = %s", s->name, ((const char *)field)[0] ? "(set)" : "(empty)");
            break;
        case SETTING_CHOICE:
            if (s->size == 0) {
                /* Stored as a C enum: print through its own name function. */
                if (strcmp(s->name, "log.level") == 0)
                    VT_INFO("CONFIG", "%s = %s", s->name, vt_log_level_name(cfg->log_level));
                else if (s->hook == hook_consent_default)
                    VT_INFO("CONFIG", "%s = %s", s->name,
                            cfg->consent_default_granted ? "granted" : "denied");
                else
                    VT_INFO("CONFIG", "%s = %s", s->name,
                            cfg->profile_key == VT_PROFILE_KEY_USER ? "user" : "session");
                break;
            }
            /* fall through */
        case SETTING_STRING:
            if (s->hook == hook_kafka_properties) {
                char shown[VT_CONFIG_LONG_STR_MAX];
                redact_properties(field, shown, sizeof shown);
                VT_INFO("CONFIG", "%s = \"%s\"", s->name, shown);
            } else if (strcmp(s->name, "alerts.webhook_url") == 0 &&
                       strchr((const char *)field, '?') != NULL) {
                /* The query may carry the receiver's token. */
                const char *url = field;
                VT_INFO("CONFIG", "%s = \"%.*s?(query not shown)\"", s->name,
                        (int)(strchr(url, '?') - url), url);
            } else {
                VT_INFO("CONFIG", "%s = \"%s\"", s->name, (const char *)field);
            }
            break;
        }
    }
}


static const char *const tier_names[VT_TIER_COUNT] = {"drugstore", "mid", "premium", "luxury"};

const char *vt_price_tier_name(enum vt_price_tier tier)
{
    return (unsigned)tier < VT_TIER_COUNT ? tier_names[tier] : "unknown";
}


int vt_price_tier_parse(const char *s, size_t len, enum vt_price_tier *out)
{
    for (int i = 0; i < VT_TIER_COUNT; i++) {
        if (strlen(tier_names[i]) == len && memcmp(tier_names[i], s, len) == 0) {
            *out = (enum vt_price_tier)i;
            return 0;
        }
    }
    return -1;
}


enum vt_price_tier vt_config_price_tier(const struct vt_config *cfg, double price)
{
    for (int i = 0; i < VT_TIER_COUNT - 1; i++) {
        if (price < cfg->price_tier_limits[i])
            return (enum vt_price_tier)i;
    }
    return VT_TIER_LUXURY;
}
