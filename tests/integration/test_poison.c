/*
 * Poison and odd records in one partition: every kind of record that the decoders reject
 * or correct, in both formats where the format matters, each followed by a good record of
 * another session. The good records must all be applied. Each rejected record must reach
 * the dead-letter topic with its reason, and each corrected one must be applied with its
 * out-of-range values dropped. /metrics must count both, by reason or by field, and the
 * consumer lag must return to 0.
 *
 * The records are produced with a producer of this file's own, because the harness sends
 * C strings only: a NUL byte inside a value, a null value and a null key need lengths.
 */
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "vitrine/util.h"

/* All records go to this partition, so they are consumed in the order produced. */
#define POISON_PARTITION 0
/* Largest record the producer sends. librdkafka's default (message.max.bytes, 1000000)
 * would reject the record above vitrine's limit of 1 MiB before it reaches the broker. */
#define PRODUCER_MESSAGE_MAX (4 * 1024 * 1024)
#define TOO_LARGE_SIZE (2 * 1024 * 1024)
#define BIG_VALID_SIZE (900 * 1024)
#define NESTING_DEPTH 100000
#define CASES_MAX 64

/* Sizes of dead-letter copies, as service/ingest/ingest.c cuts them. */
#define DEAD_LETTER_VALUE_MAX (512 * 1024)
#define DEAD_LETTER_HEAD (64 * 1024)

#define GOOD_SESSION "poison-good"
#define ODD_SESSION "poison-odd"

enum key_kind { KEY_SESSION = 0, KEY_NULL, KEY_EMPTY };

/* One record of the stream and what must become of it. */
struct poison_case {
    const char *name;
    const char *reason; /* the dead-letter reason, or NULL when it is applied */
    char *value;        /* NULL for a record without a value */
    size_t len;
    enum key_kind key;
};

struct poison_stream {
    struct poison_case cases[CASES_MAX];
    size_t n;
    char now_iso[40];
    long long now_ms;
};

/* A dead-letter record as read back. */
struct dead_letter_copy {
    char reason[64];
    char *value;
    size_t len;
};

struct dead_letter_seen {
    struct dead_letter_copy records[CASES_MAX];
    size_t count;
};


static struct poison_case *add_raw(struct poison_stream *s, const char *name,
                                   const char *reason, char *value, size_t len)
{
    struct poison_case *c;

    cr_assert_lt(s->n, CASES_MAX, "too many cases");
    c = &s->cases[s->n++];
    c->name = name;
    c->reason = reason;
    c->value = value;
    c->len = len;
    c->key = KEY_SESSION;
    return c;
}


__attribute__((format(printf, 4, 5))) static struct poison_case *
add_case(struct poison_stream *s, const char *name, const char *reason, const char *fmt, ...)
{
    char *value = malloc(4096);
    va_list ap;
    int n;

    cr_assert_not_null(value);
    va_start(ap, fmt);
    n = vsnprintf(value, 4096, fmt, ap);
    va_end(ap);
    cr_assert(n > 0 && n < 4096, "case %s does not fit", name);
    return add_raw(s, name, reason, value, (size_t)n);
}


/* A value of exactly size bytes: head, then filler bytes, then tail. */
static char *filled(const char *head, char filler, const char *tail, size_t size)
{
    size_t head_len = strlen(head);
    size_t tail_len = strlen(tail);
    char *value = malloc(size);

    cr_assert_not_null(value);
    cr_assert_gt(size, head_len + tail_len);
    memcpy(value, head, head_len);
    memset(value + head_len, filler, size - head_len - tail_len);
    memcpy(value + size - tail_len, tail, tail_len);
    return value;
}


/* Records that the decoders reject, each with the reason it must carry. */
static void add_rejected(struct poison_stream *s)
{
    const char *now = s->now_iso;
    long long ms = s->now_ms;
    char *value;
    size_t len;

    /* Invalid JSON. */
    add_case(s, "canonical cut short", "invalid_json", "{\"type\":\"page_view\",");
    add_case(s, "mapp cut short", "invalid_json",
             "{\"session\":{\"id\":\"" ODD_SESSION "\"},\"timestamp\":");

    /* Valid JSON of the wrong shape. */
    add_case(s, "array at the root", "not_object", "[{\"type\":\"page_view\"}]");
    add_case(s, "object of neither format", "unknown_format",
             "{\"event\":\"view\",\"sid\":\"s-1\"}");
    add_case(s, "canonical products as object", "invalid_field",
             "{\"type\":\"product_view\",\"session_id\":\"" ODD_SESSION "\",\"ts\":%lld,"
             "\"products\":{\"id\":\"pz-1\"}}",
             ms);
    add_case(s, "mapp items as strings", "invalid_field",
             "{\"session\":{\"id\":\"" ODD_SESSION "\"},\"timestamp\":\"%s\","
             "\"basket\":{\"status\":\"add\",\"items\":[\"pz-1\"]}}",
             now);

    /* Above vitrine's limit of 1 MiB, as valid JSON otherwise. */
    value = filled("{\"type\":\"page_view\",\"session_id\":\"" ODD_SESSION "\",\"page\":\"", 'a',
                   "\"}", TOO_LARGE_SIZE);
    add_raw(s, "2 MiB record", "too_large", value, TOO_LARGE_SIZE);

    /* Deep nesting, bare and inside a Mapp record. */
    value = filled("[", '[', "[", NESTING_DEPTH);
    add_raw(s, "100000 brackets", "invalid_json", value, NESTING_DEPTH);
    {
        char head[200];
        size_t depth = NESTING_DEPTH;
        size_t head_len;

        snprintf(head, sizeof head,
                 "{\"session\":{\"id\":\"" ODD_SESSION "\"},\"timestamp\":\"%s\",\"x\":", now);
        head_len = strlen(head);
        len = head_len + 2 * depth + 1;
        value = malloc(len);
        cr_assert_not_null(value);
        memcpy(value, head, head_len);
        memset(value + head_len, '[', depth);
        memset(value + head_len + depth, ']', depth);
        value[len - 1] = '}';
        add_raw(s, "mapp with 100000 nested arrays", "invalid_json", value, len);
    }

    /* Invalid UTF-8: a cut two-byte sequence, and an encoded UTF-16 surrogate. */
    add_case(s, "canonical invalid utf-8", "invalid_json",
             "{\"type\":\"page_view\",\"session_id\":\"" ODD_SESSION "\",\"ts\":%lld,"
             "\"page\":\"caf\xc3\"}",
             ms);
    add_case(s, "mapp invalid utf-8", "invalid_json",
             "{\"session\":{\"id\":\"" ODD_SESSION "\"},\"timestamp\":\"%s\","
             "\"page\":{\"name\":\"\xed\xa0\x80\"}}",
             now);

    /* NUL bytes: raw in a canonical value, escaped in a Mapp session id. */
    {
        struct poison_case *c =
            add_case(s, "canonical raw NUL", "invalid_json",
                     "{\"type\":\"page_view\",\"session_id\":\"" ODD_SESSION "\",\"ts\":%lld,"
                     "\"page\":\"a#b\"}",
                     ms);
        char *hash = memchr(c->value, '#', c->len);
        cr_assert_not_null(hash);
        *hash = '\0';
    }
    add_case(s, "mapp NUL escape", "invalid_json",
             "{\"session\":{\"id\":\"poison\\u0000odd\"},\"timestamp\":\"%s\"}", now);

    /* Null and empty values. */
    add_raw(s, "null value, null key", "empty", NULL, 0)->key = KEY_NULL;
    add_raw(s, "empty value, empty key", "empty", strdup(""), 0)->key = KEY_EMPTY;
    add_case(s, "whitespace value", "empty", " \r\n\t ");
    add_case(s, "canonical null session_id", "invalid_session",
             "{\"type\":\"page_view\",\"session_id\":null,\"ts\":%lld}", ms);
    add_case(s, "canonical empty session_id", "invalid_session",
             "{\"type\":\"page_view\",\"session_id\":\"\",\"ts\":%lld}", ms);
    add_case(s, "canonical empty type", "unknown_type",
             "{\"type\":\"\",\"session_id\":\"" ODD_SESSION "\",\"ts\":%lld}", ms);
    add_case(s, "canonical null type", "invalid_field",
             "{\"type\":null,\"session_id\":\"" ODD_SESSION "\",\"ts\":%lld}", ms);
    add_case(s, "mapp empty session.id", "invalid_session",
             "{\"session\":{\"id\":\"\"},\"timestamp\":\"%s\"}", now);

    /* Unknown event types. */
    add_case(s, "canonical unknown type", "unknown_type",
             "{\"type\":\"view\",\"session_id\":\"" ODD_SESSION "\",\"ts\":%lld}", ms);
    add_case(s, "mapp unknown basket status", "unknown_type",
             "{\"session\":{\"id\":\"" ODD_SESSION "\"},\"timestamp\":\"%s\","
             "\"basket\":{\"status\":\"teleport\"}}",
             now);

    /* Missing session ids. */
    add_case(s, "canonical without session_id", "invalid_session",
             "{\"type\":\"page_view\",\"ts\":%lld}", ms);
    add_case(s, "mapp without session.id", "invalid_session",
             "{\"page\":{\"name\":\"home\"},\"timestamp\":\"%s\"}", now);

    /* Absurd times: the epoch, the year 2999, in both formats. */
    add_case(s, "canonical ts 0", "invalid_timestamp",
             "{\"type\":\"page_view\",\"session_id\":\"" ODD_SESSION "\",\"ts\":0}");
    add_case(s, "canonical ts in 2999", "invalid_timestamp",
             "{\"type\":\"page_view\",\"session_id\":\"" ODD_SESSION "\","
             "\"ts\":32503680000000}");
    add_case(s, "mapp timestamp 1970", "invalid_timestamp",
             "{\"session\":{\"id\":\"" ODD_SESSION "\"},\"timestamp\":\"1970-01-01T00:00:00Z\"}");
    add_case(s, "mapp timestamp 2999", "invalid_timestamp",
             "{\"session\":{\"id\":\"" ODD_SESSION "\"},\"timestamp\":\"2999-12-31T23:59:59Z\"}");

    /* Quantities that are no whole number within 32 bits. */
    add_case(s, "canonical quantity 3e9", "invalid_field",
             "{\"type\":\"add_to_cart\",\"session_id\":\"" ODD_SESSION "\",\"ts\":%lld,"
             "\"products\":[{\"id\":\"pz-1\",\"quantity\":3000000000}]}",
             ms);
    add_case(s, "mapp quantity 1.5", "invalid_field",
             "{\"session_id\":\"" ODD_SESSION "\",\"timestamp\":\"%s\",\"basket_status\":\"add\","
             "\"basket_items_1_product_name\":\"pz-1\",\"basket_items_1_quantity\":1.5}",
             now);
}


/*
 * Records that are applied to ODD_SESSION with their out-of-range values dropped. Revenue
 * counts only what is left: 10 (pz-2, quantity dropped to 1 unit) + 25.5 (the Mapp order
 * value) = 35.5. The products are not in the test catalog, so no catalog price fills in.
 */
enum {
    ODD_APPLIED = 6,
    ODD_PRICES_DROPPED = 5,
    ODD_QUANTITIES_DROPPED = 3,
    ODD_ORDER_VALUES_DROPPED = 2,
};
#define ODD_REVENUE 35.5

static void add_corrected(struct poison_stream *s)
{
    const char *now = s->now_iso;
    long long ms = s->now_ms;
    char head[200];

    add_case(s, "canonical purchase, infinite price, negative quantity and order value",
             NULL,
             "{\"type\":\"purchase\",\"session_id\":\"" ODD_SESSION "\",\"ts\":%lld,"
             "\"order_value\":-100,\"products\":[{\"id\":\"pz-1\",\"price\":1e999,"
             "\"quantity\":2},{\"id\":\"pz-2\",\"price\":10,\"quantity\":-3}]}",
             ms);
    add_case(s, "mapp custom purchase, price 1e300, infinite order value", NULL,
             "{\"session_id\":\"" ODD_SESSION "\",\"timestamp\":\"%s\","
             "\"basket_status\":\"conf\",\"order_value\":1e999,"
             "\"basket_items_1_product_name\":\"pz-3\",\"basket_items_1_price\":1e300,"
             "\"basket_items_1_quantity\":2}",
             now);
    add_case(s, "canonical add, negative price, quantity 2^31-1", NULL,
             "{\"type\":\"add_to_cart\",\"session_id\":\"" ODD_SESSION "\",\"ts\":%lld,"
             "\"products\":[{\"id\":\"pz-4\",\"price\":-5,\"quantity\":2147483647}]}",
             ms);
    add_case(s, "mapp add, price \"-1\", quantity 5000", NULL,
             "{\"session\":{\"id\":\"" ODD_SESSION "\"},\"timestamp\":\"%s\","
             "\"basket\":{\"status\":\"add\",\"items\":[{\"product\":{\"name\":\"pz-5\"},"
             "\"price\":\"-1\",\"quantity\":5000}]}}",
             now);
    add_case(s, "mapp purchase, negative price", NULL,
             "{\"session\":{\"id\":\"" ODD_SESSION "\"},\"timestamp\":\"%s\","
             "\"order\":{\"value\":25.5},\"basket\":{\"status\":\"conf\","
             "\"items\":[{\"product\":{\"name\":\"pz-6\"},\"price\":-2,\"quantity\":1}]}}",
             now);

    /* Below the limit of 1 MiB: applied, with the page cut to 256 bytes. */
    snprintf(head, sizeof head,
             "{\"type\":\"page_view\",\"session_id\":\"" ODD_SESSION "\",\"ts\":%lld,"
             "\"page\":\"",
             ms);
    add_raw(s, "900 KiB page view", NULL, filled(head, 'p', "\"}", BIG_VALID_SIZE),
            BIG_VALID_SIZE);
}


static void free_stream(struct poison_stream *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->cases[i].value);
}


/* ---- a producer for raw records ---- */

static void count_failed_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    int *failed = opaque;

    (void)rk;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
        (*failed)++;
    }
}


static rd_kafka_t *raw_producer_new(const struct harness *h, int *failed)
{
    char err[512];
    char max[32];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    snprintf(max, sizeof max, "%d", PRODUCER_MESSAGE_MAX);
    cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", h->brokers, err, sizeof err),
                 RD_KAFKA_CONF_OK, "%s", err);
    cr_assert_eq(rd_kafka_conf_set(conf, "acks", "all", err, sizeof err), RD_KAFKA_CONF_OK);
    cr_assert_eq(rd_kafka_conf_set(conf, "linger.ms", "2", err, sizeof err), RD_KAFKA_CONF_OK);
    cr_assert_eq(rd_kafka_conf_set(conf, "message.max.bytes", max, err, sizeof err),
                 RD_KAFKA_CONF_OK, "%s", err);
    rd_kafka_conf_set_dr_msg_cb(conf, count_failed_delivery);
    rd_kafka_conf_set_opaque(conf, failed);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    cr_assert_not_null(rk, "producer: %s", err);
    return rk;
}


static void send_raw(rd_kafka_t *rk, const char *topic, enum key_kind key, const char *value,
                     size_t len)
{
    const char *key_bytes = GOOD_SESSION;
    size_t key_len = strlen(GOOD_SESSION);
    rd_kafka_resp_err_t err;

    if (key == KEY_NULL) {
        key_bytes = NULL;
        key_len = 0;
    } else if (key == KEY_EMPTY) {
        key_bytes = "";
        key_len = 0;
    }

    for (;;) {
        err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                RD_KAFKA_V_PARTITION(POISON_PARTITION),
                                RD_KAFKA_V_KEY(key_bytes, key_len),
                                RD_KAFKA_V_VALUE((void *)value, len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(rk, 50);
    }
    cr_assert_eq(err, RD_KAFKA_RESP_ERR_NO_ERROR, "produce of %zu bytes: %s", len,
                 rd_kafka_err2str(err));
    rd_kafka_poll(rk, 0);
}


/* ---- reading the results ---- */

static void collect_dead_letter(const char *key, size_t key_len, const char *value, size_t len,
                                const char *reason, void *arg)
{
    struct dead_letter_seen *seen = arg;
    struct dead_letter_copy *copy;

    (void)key;
    (void)key_len;
    if (seen->count == CASES_MAX)
        return;
    copy = &seen->records[seen->count++];
    vt_strlcpy(copy->reason, reason, sizeof copy->reason);
    copy->len = len;
    copy->value = malloc(len > 0 ? len : 1);
    cr_assert_not_null(copy->value);
    if (len > 0)
        memcpy(copy->value, value, len);
}


/* True when copy is the dead-letter copy of c: the whole value, or its first
 * DEAD_LETTER_HEAD bytes when the value is above DEAD_LETTER_VALUE_MAX. */
static bool is_copy_of(const struct dead_letter_copy *copy, const struct poison_case *c)
{
    size_t expected_len = c->len > DEAD_LETTER_VALUE_MAX ? DEAD_LETTER_HEAD : c->len;

    if (copy->len != expected_len)
        return false;
    return expected_len == 0 || memcmp(copy->value, c->value, expected_len) == 0;
}


static double json_number(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);

    cr_assert(cJSON_IsNumber(v), "%s is not a number", name);
    return v->valuedouble;
}


static int64_t cart_quantity(const cJSON *profile, const char *product)
{
    const cJSON *line;

    cJSON_ArrayForEach(line, cJSON_GetObjectItemCaseSensitive(profile, "cart")) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(line, "product_id");
        if (cJSON_IsString(id) && strcmp(id->valuestring, product) == 0)
            return (int64_t)json_number(line, "quantity");
    }
    return -1;
}


static const char *const reasons[] = {
    "empty",        "too_large",       "invalid_json",      "not_object",    "unknown_format",
    "unknown_type", "invalid_session", "invalid_timestamp", "invalid_field",
};


Test(poison, odd_records_counted_partition_continues, .timeout = 180)
{
    static struct poison_stream stream;
    static struct dead_letter_seen seen;
    struct harness h;
    rd_kafka_t *producer;
    int failed = 0;
    size_t n_rejected = 0;
    size_t n_good = 0;
    int64_t produced_ms, applied_ms;
    char metric[160];
    char good[512];
    char stamp[40];

    harness_init(&h, "poison");
    stream.now_ms = vt_now_ms();
    vt_time_format_iso8601(stream.now_ms, stream.now_iso, sizeof stream.now_iso);
    add_rejected(&stream);
    add_corrected(&stream);
    harness_start(&h, NULL);

    /* Each poison record, then a good record of GOOD_SESSION. Every third good record has
     * a null key and every third an empty one, since the key is not read. */
    producer = raw_producer_new(&h, &failed);
    for (size_t i = 0; i < stream.n; i++) {
        const struct poison_case *c = &stream.cases[i];
        int n;

        send_raw(producer, h.topic, c->key, c->value, c->len);
        n_rejected += c->reason != NULL;

        vt_time_format_iso8601(stream.now_ms + (int64_t)i, stamp, sizeof stamp);
        n = snprintf(good, sizeof good,
                     "{\"type\":\"product_view\",\"session_id\":\"" GOOD_SESSION "\","
                     "\"ts\":\"%s\",\"products\":[{\"id\":\"good-%zu\",\"price\":12.5}]}",
                     stamp, i);
        cr_assert(n > 0 && (size_t)n < sizeof good);
        send_raw(producer, h.topic, (enum key_kind)(i % 3), good, (size_t)n);
        n_good++;
    }
    cr_assert_eq(rd_kafka_flush(producer, 30000), RD_KAFKA_RESP_ERR_NO_ERROR,
                 "records left undelivered");
    cr_assert_eq(failed, 0, "%d records were not delivered", failed);
    rd_kafka_destroy(producer);
    produced_ms = vt_now_ms();

    /* Every good record is applied, and so is every corrected one. */
    cr_assert_eq(harness_wait_events(&h, GOOD_SESSION, (int64_t)n_good, 60), (int64_t)n_good,
                 "not every good record between the poison records was applied");
    cr_assert_eq(harness_wait_events(&h, ODD_SESSION, ODD_APPLIED, 30), ODD_APPLIED,
                 "not every corrected record was applied");
    applied_ms = vt_now_ms();

    /* The corrected records leave no trace of their dropped values. */
    {
        cJSON *profile = harness_get_json(&h, "/v1/profiles/" ODD_SESSION, 200);
        const cJSON *tiers = cJSON_GetObjectItemCaseSensitive(profile, "price_tiers");
        const cJSON *tier;

        cr_expect_float_eq(json_number(profile, "revenue"), ODD_REVENUE, 1e-9,
                           "revenue %g, expected %g", json_number(profile, "revenue"),
                           ODD_REVENUE);
        cr_expect_eq(cart_quantity(profile, "pz-4"), 1,
                     "quantity 2147483647 must be dropped to 1 unit");
        cr_expect_eq(cart_quantity(profile, "pz-5"), 1, "quantity 5000 must be dropped");
        cr_expect_eq(cJSON_GetArraySize(tiers), 1, "only the price 10 has a tier");
        cJSON_ArrayForEach(tier, tiers) {
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(tier, "name");
            cr_expect(cJSON_IsString(name) && strcmp(name->valuestring, "drugstore") == 0,
                      "a dropped price gave a price tier");
        }
        cJSON_Delete(profile);
    }

    /* Every rejected record is in the dead-letter topic with its reason. */
    for (int i = 0; i < 100 && harness_metric(&h, "vitrine_events_total{type=\"unknown\","
                                                  "outcome=\"dead_letter\"}") < (double)n_rejected;
         i++)
        harness_sleep_ms(100);
    cr_assert_eq(harness_metric(&h, "vitrine_events_total{type=\"unknown\","
                                    "outcome=\"dead_letter\"}"),
                 (double)n_rejected);
    harness_consume_all(&h, h.dead_letter, 5000, collect_dead_letter, &seen);
    cr_expect_eq(seen.count, n_rejected, "dead-letter topic has %zu records, expected %zu",
                 seen.count, n_rejected);
    {
        bool matched[CASES_MAX] = {false};

        for (size_t i = 0; i < stream.n; i++) {
            const struct poison_case *c = &stream.cases[i];
            bool found = false;

            if (c->reason == NULL)
                continue;
            for (size_t k = 0; k < seen.count && !found; k++) {
                if (matched[k] || !is_copy_of(&seen.records[k], c))
                    continue;
                matched[k] = true;
                found = true;
                cr_expect_str_eq(seen.records[k].reason, c->reason, "%s", c->name);
            }
            cr_expect(found, "%s is not in the dead-letter topic", c->name);
        }
    }

    /* /metrics counts each rejection by reason and each dropped value by field. */
    for (size_t r = 0; r < sizeof reasons / sizeof reasons[0]; r++) {
        size_t expected = 0;
        double counted;

        for (size_t i = 0; i < stream.n; i++)
            expected += stream.cases[i].reason != NULL &&
                        strcmp(stream.cases[i].reason, reasons[r]) == 0;
        snprintf(metric, sizeof metric, "vitrine_decode_failures_total{reason=\"%s\"}",
                 reasons[r]);
        counted = harness_metric(&h, metric);
        cr_expect_eq(counted, (double)expected, "%s is %g, expected %zu", metric, counted,
                     expected);
        fprintf(stderr, "measured: %s %g\n", metric, counted);
    }
    {
        static const struct {
            const char *field;
            int expected;
        } dropped[] = {
            {"price", ODD_PRICES_DROPPED},
            {"quantity", ODD_QUANTITIES_DROPPED},
            {"order_value", ODD_ORDER_VALUES_DROPPED},
        };

        for (size_t f = 0; f < sizeof dropped / sizeof dropped[0]; f++) {
            double counted;

            snprintf(metric, sizeof metric, "vitrine_event_values_dropped_total{field=\"%s\"}",
                     dropped[f].field);
            counted = harness_metric(&h, metric);
            cr_expect_eq(counted, dropped[f].expected, "%s is %g, expected %d", metric,
                         counted, dropped[f].expected);
            fprintf(stderr, "measured: %s %g\n", metric, counted);
        }
    }
    cr_expect_eq(harness_metric(&h, "vitrine_dead_letter_failures_total"), 0);

    /* The partition was never stopped: the lag comes back to 0. */
    {
        double lag = -1;

        for (int i = 0; i < 150 && lag != 0; i++, harness_sleep_ms(100))
            lag = harness_metric(&h, "vitrine_consumer_lag_total");
        cr_expect_eq(lag, 0, "consumer lag still %g", lag);
    }

    fprintf(stderr,
            "measured: poison stream of %zu records: %zu rejected to the dead-letter topic, "
            "%d applied with dropped values, %zu good records applied; all applied %.2f s "
            "after the last delivery\n",
            stream.n + n_good, n_rejected, ODD_APPLIED, n_good,
            (double)(applied_ms - produced_ms) / 1000.0);

    for (size_t k = 0; k < seen.count; k++)
        free(seen.records[k].value);
    free_stream(&stream);
    harness_stop(&h, 20);
}
