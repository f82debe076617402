/*
 * vitrine: the ingest thread (see include/vitrine/ingest.h).
 *
 * One batch goes through these steps:
 *   1. consume up to ingest.batch_size records (or what arrived within batch_wait_ms);
 *   2. decode, enrich and turn each record into a profile delta queued on the Redis
 *      pipeline; produce undecodable records to the dead-letter topic;
 *   3. send the pipeline and read every reply; on failure retry the whole batch with
 *      backoff (deltas carry their Kafka partition and offset, so repeating one is a no-op);
 *   4. wait until the dead-letter records are delivered;
 *   5. store the next offset of every partition in the batch; librdkafka commits stored
 *      offsets every auto.commit.interval.ms, on rebalance and on close.
 * A crash anywhere before step 5 leaves the offsets behind, so the records come again and
 * the redelivery check keeps their effect single.
 */
#include "vitrine/ingest.h"

#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vitrine/decode.h"
#include "vitrine/enrich.h"
#include "vitrine/kafka.h"
#include "vitrine/log.h"
#include "vitrine/metrics.h"
#include "vitrine/profile.h"
#include "vitrine/store.h"
#include "vitrine/util.h"

/* Milliseconds Redis may take for one batch before the ingest thread gives up on it. */
#define INGEST_REDIS_TIMEOUT_MS 5000
/* How often consumer lag is refreshed, and broker reachability checked while down. */
#define LAG_INTERVAL_NS 1000000000ull
/* Seconds without any assigned partition before a warning. */
#define UNASSIGNED_WARN_S 30
/* Dead-letter delivery: attempts per record before it is logged and counted as lost. */
#define DEAD_LETTER_ATTEMPTS 3
#define DEAD_LETTER_FLUSH_MS 10000
/* Dead-letter copies keep values up to this size whole. Larger ones keep their first
 * DEAD_LETTER_HEAD bytes, with the original size in the header vitrine.truncated, because
 * Kafka's default limit for one message (message.max.bytes, about 1 MB) would reject
 * them. */
#define DEAD_LETTER_VALUE_MAX (512 * 1024)
#define DEAD_LETTER_HEAD (64 * 1024)

/* What step 2 decided for one record of the batch. */
enum record_state {
    RECORD_APPLY = 0,  /* queued on the Redis pipeline */
    RECORD_SKIP,       /* decoded, nothing to apply */
    RECORD_DEAD_LETTER,
    RECORD_KAFKA_ERROR, /* an error event from the consumer, not a record */
};

struct record {
    enum record_state state;
    enum vt_event_type type;
    enum vt_decode_status status;
    atomic_int dead_letter_result; /* 0 pending, 1 delivered, -1 failed */
    int64_t settled_offset; /* first offset of its partition in the batch; -1: unknown */
    enum vt_consent consent;
    bool consent_unreadable;
    bool visitor_blocked;
    char reason[256];
};

/* Logins (a session linked to a new visitor) per batch whose session profile is read
 * after the profile step and handed over to the new visitor. Further logins in the same
 * batch link without the session's earlier affinities, and are logged. */
#define LOGIN_MERGES_MAX 16

struct vt_ingest {
    const struct vt_config *cfg;
    const struct vt_live *live;
    const struct vt_world *world; /* loaded at the start of each batch */
    const struct vt_alert_rules *alert_rules; /* NULL or empty: no alert counting */
    int64_t alert_ttl_s; /* lifetime of alert buckets: the longest history a rule reads */
    rd_kafka_t *consumer;
    rd_kafka_queue_t *queue;
    rd_kafka_t *dead_letter;
    pthread_t thread;
    bool thread_started;
    bool closed_cleanly; /* the consumer left its group within ingest.close_timeout_ms */

    atomic_bool stop;
    atomic_bool kafka_up;  /* an assignment was received or the broker answered metadata */
    atomic_bool redis_up;  /* the last Redis batch succeeded (or none was needed yet) */

    /* Owned by the ingest thread. */
    struct vt_store *store;
    rd_kafka_message_t **messages;
    struct record *records;
    struct vt_apply_result *results; /* phase-one results, in the order the records were queued */
    struct vt_profile *logins;  /* LOGIN_MERGES_MAX sessions read for the visitor step */
    size_t login_result[LOGIN_MERGES_MAX]; /* the result index of each */
    char login_session[LOGIN_MERGES_MAX][VT_ID_MAX + 1];
    size_t n_logins;
    bool logins_failed; /* a read failed: the visitor step is retried */
    char logins_error[320];
    size_t batch_max;
    struct vt_event event;
    struct vt_profile_delta delta;
    struct vt_alert_increment increments[VT_ALERT_INCREMENTS_MAX]; /* one record's; ~1.9 MB */
    uint64_t last_lag_ns;
    uint64_t unassigned_since_ns; /* 0 while partitions are assigned */
    bool unassigned_warned;
    char source_tag[VT_SOURCE_TAG_LEN + 1]; /* empty until the cluster id is known */
};

/* ---- librdkafka callbacks (they run on librdkafka's own threads or inside poll) ---- */

static void kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct vt_ingest *in = opaque;

    (void)rk;
    vt_metrics_kafka_error();
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN && in != NULL)
        atomic_store(&in->kafka_up, false);
    VT_WARN("KAFKA", "%s: %s", rd_kafka_err2name(err), reason);
}


static void dead_letter_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    struct record *rec = msg->_private;

    (void)rk;
    (void)opaque;
    if (rec != NULL)
        atomic_store(&rec->dead_letter_result, msg->err ? -1 : 1);
    if (msg->err)
        VT_WARN("INGEST", "dead-letter delivery failed: %s", rd_kafka_err2str(msg->err));
}


static void log_partitions(const char *what, const rd_kafka_topic_partition_list_t *parts)
{
    char list[512];
    size_t o = 0;

    list[0] = '\0';
    for (int i = 0; i < parts->cnt && o < sizeof list - 16; i++) {
        int n = snprintf(list + o, sizeof list - o, "%s%s[%" PRId32 "]", i ? " " : "",
                         parts->elems[i].topic, parts->elems[i].partition);
        if (n > 0)
            o += (size_t)n;
    }
    VT_INFO("INGEST", "partitions %s: %s", what, parts->cnt ? list : "(none)");
}


static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct vt_ingest *in = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t rerr = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        log_partitions("assigned", parts);
        atomic_store(&in->kafka_up, true);
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            rerr = rd_kafka_assign(rk, parts);
    } else {
        /* Everything consumed so far was applied and its offsets stored before the
         * consumer was polled again; with enable.auto.commit librdkafka commits the stored
         * offsets of revoked partitions itself before it completes the revocation. */
        log_partitions("revoked", parts);
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            rerr = rd_kafka_assign(rk, NULL);
        vt_metrics_clear_lag();
    }
    if (error != NULL) {
        VT_ERROR("INGEST", "partition assignment failed: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        VT_ERROR("INGEST", "partition assignment failed: %s", rd_kafka_err2str(rerr));
    }
}


/* ---- configuration ---- */

static rd_kafka_t *consumer_new(struct vt_ingest *in, char *err, size_t errsize)
{
    const struct vt_config *cfg = in->cfg;
    rd_kafka_conf_t *conf = vt_kafka_conf_new(cfg, err, errsize);
    rd_kafka_t *rk;
    char kerr[512];

    if (conf == NULL)
        return NULL;
    if (vt_kafka_conf_set(conf, "group.id", cfg->kafka_group, err, errsize) != 0 ||
        vt_kafka_conf_set(conf, "enable.auto.commit", "true", err, errsize) != 0 ||
        vt_kafka_conf_set(conf, "enable.auto.offset.store", "false", err, errsize) != 0 ||
        vt_kafka_conf_set(conf, "auto.offset.reset", cfg->kafka_offset_reset, err, errsize) != 0 ||
        vt_kafka_conf_set(conf, "enable.partition.eof", "false", err, errsize) != 0 ||
        vt_kafka_conf_set_list(conf, "kafka.consumer_properties", cfg->kafka_consumer_properties, err,
                      errsize) != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, in);
    rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);

    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof kerr);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errsize, "cannot create Kafka consumer: %s", kerr);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}


static rd_kafka_t *dead_letter_new(struct vt_ingest *in, char *err, size_t errsize)
{
    rd_kafka_conf_t *conf = vt_kafka_conf_new(in->cfg, err, errsize);
    rd_kafka_t *rk;
    char kerr[512];

    if (conf == NULL)
        return NULL;
    if (vt_kafka_conf_set(conf, "acks", "all", err, errsize) != 0 ||
        vt_kafka_conf_set(conf, "enable.idempotence", "true", err, errsize) != 0 ||
        vt_kafka_conf_set(conf, "linger.ms", "5", err, errsize) != 0 ||
        vt_kafka_conf_set(conf, "message.timeout.ms", "30000", err, errsize) != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, NULL);
    rd_kafka_conf_set_error_cb(conf, kafka_error_cb);
    rd_kafka_conf_set_dr_msg_cb(conf, dead_letter_dr_cb);

    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof kerr);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        snprintf(err, errsize, "cannot create Kafka dead-letter producer: %s", kerr);
        return NULL;
    }
    return rk;
}


/* ---- one batch ---- */

static void produce_dead_letter(struct vt_ingest *in, const rd_kafka_message_t *m,
                                struct record *rec)
{
    char partition[16], offset[24], original_size[24];
    size_t len = m->len;
    rd_kafka_resp_err_t err;

    snprintf(partition, sizeof partition, "%" PRId32, m->partition);
    snprintf(offset, sizeof offset, "%" PRId64, m->offset);
    atomic_store(&rec->dead_letter_result, 0);

    for (;;) {
        /* The producer takes over the headers when producev succeeds. */
        rd_kafka_headers_t *headers = rd_kafka_headers_new(6);
        rd_kafka_header_add(headers, "vitrine.reason", -1, vt_decode_status_name(rec->status),
                            -1);
        rd_kafka_header_add(headers, "vitrine.message", -1, rec->reason, -1);
        rd_kafka_header_add(headers, "vitrine.topic", -1, rd_kafka_topic_name(m->rkt), -1);
        rd_kafka_header_add(headers, "vitrine.partition", -1, partition, -1);
        rd_kafka_header_add(headers, "vitrine.offset", -1, offset, -1);
        if (m->len > DEAD_LETTER_VALUE_MAX) {
            snprintf(original_size, sizeof original_size, "%zu", m->len);
            rd_kafka_header_add(headers, "vitrine.truncated", -1, original_size, -1);
            len = DEAD_LETTER_HEAD;
        }

        err = rd_kafka_producev(
            in->dead_letter, RD_KAFKA_V_TOPIC(in->cfg->kafka_dead_letter_topic),
            RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(headers),
            RD_KAFKA_V_OPAQUE(rec), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            rd_kafka_headers_destroy(headers);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(in->dead_letter, 100);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        atomic_store(&rec->dead_letter_result, -1);
        VT_WARN("INGEST", "dead-letter produce failed for %s[%" PRId32 "]@%" PRId64 ": %s",
                rd_kafka_topic_name(m->rkt), m->partition, m->offset, rd_kafka_err2str(err));
    }
}


/* Partitions whose first offset one batch tracks; records of further ones get -1, which
 * only skips the cleanup of kept replies. */
#define BATCH_PARTITIONS_MAX 64

/* Set each record's settled_offset to the first offset of its partition in the batch.
 * Every record of the partition below it was applied by an earlier batch, profiles and
 * aggregates, or lies below the committed offset, which is stored only after both. */
static void mark_settled_offsets(struct vt_ingest *in, size_t n)
{
    const rd_kafka_message_t *first[BATCH_PARTITIONS_MAX];
    size_t known = 0;

    for (size_t i = 0; i < n; i++) {
        const rd_kafka_message_t *m = in->messages[i];
        size_t k = 0;

        in->records[i].settled_offset = -1;
        if (m->err != 0)
            continue;
        while (k < known && (first[k]->partition != m->partition || first[k]->rkt != m->rkt))
            k++;
        if (k == known && known < BATCH_PARTITIONS_MAX)
            first[known++] = m;
        if (k < known)
            in->records[i].settled_offset = first[k]->offset;
    }
}


/* Decode, enrich and build the delta of one record; returns its state. */
static enum record_state prepare_record(struct vt_ingest *in, const rd_kafka_message_t *m,
                                        struct record *rec)
{
    if (m->err) {
        rec->state = RECORD_KAFKA_ERROR;
        return rec->state;
    }

    rec->status = vt_decode_event(m->payload, m->len, in->cfg, &in->event, rec->reason,
                                  sizeof rec->reason);
    if (rec->status == VT_DECODE_SKIP) {
        rec->state = RECORD_SKIP;
        rec->type = in->event.type;
        return rec->state;
    }
    if (rec->status != VT_DECODE_OK) {
        rec->state = RECORD_DEAD_LETTER;
        return rec->state;
    }

    rec->type = in->event.type;
    rec->consent = in->event.consent;
    rec->consent_unreadable = in->event.consent_unreadable;
    vt_event_enrich(&in->event, in->world->catalog, in->cfg);
    vt_profile_delta_build(in->cfg, &in->event, in->source_tag, m->partition, m->offset,
                           &in->delta);
    in->delta.settled_offset = rec->settled_offset;
    rec->visitor_blocked = in->delta.visitor_blocked;
    rec->state = RECORD_APPLY;
    return rec->state;
}


/* Step 2 for the first attempt: classify every record and queue the deltas. */
static void prepare_batch(struct vt_ingest *in, size_t n)
{
    /* Each pass loads the current world, which process_batch's hold keeps. */
    in->world = vt_live_world(in->live);
    mark_settled_offsets(in, n);
    vt_store_batch_begin(in->store);
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_message_t *m = in->messages[i];
        struct record *rec = &in->records[i];

        switch (prepare_record(in, m, rec)) {
        case RECORD_APPLY:
            vt_metrics_items_dropped(in->event.n_items_dropped);
            vt_metrics_values_dropped(in->event.n_values_dropped);
            vt_store_batch_add(in->store, &in->delta);
            break;
        case RECORD_DEAD_LETTER:
            vt_metrics_decode_error(rec->status);
            VT_DEBUG("INGEST", "record %s[%" PRId32 "]@%" PRId64 " rejected: %s",
                     rd_kafka_topic_name(m->rkt), m->partition, m->offset, rec->reason);
            produce_dead_letter(in, m, rec);
            break;
        case RECORD_KAFKA_ERROR:
            vt_metrics_kafka_error();
            VT_WARN("INGEST", "consumer error: %s", rd_kafka_message_errstr(m));
            break;
        case RECORD_SKIP:
            break;
        }
    }
}


/* Queue the deltas again for a retry; dead letters were produced already. */
static void requeue_batch(struct vt_ingest *in, size_t n)
{
    in->world = vt_live_world(in->live);
    vt_store_batch_begin(in->store);
    for (size_t i = 0; i < n; i++) {
        if (in->records[i].state != RECORD_APPLY)
            continue;
        prepare_record(in, in->messages[i], &in->records[i]);
        vt_store_batch_add(in->store, &in->delta);
    }
}


static size_t count_state(const struct vt_ingest *in, size_t n, enum record_state state)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++)
        k += in->records[i].state == state;
    return k;
}


static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}


/* Sleep up to ms in slices of 50 ms; returns false as soon as the ingest is stopped. */
static bool sleep_unless_stopped(struct vt_ingest *in, int64_t ms)
{
    for (int64_t waited = 0; waited < ms; waited += 50) {
        if (atomic_load(&in->stop))
            return false;
        sleep_ms(50 < ms - waited ? 50 : ms - waited);
    }
    return !atomic_load(&in->stop);
}


/* One pipelined step of a batch: queue its calls, then commit them. */
typedef void (*step_queue_fn)(struct vt_ingest *in, size_t n);
typedef int (*step_commit_fn)(struct vt_ingest *in, size_t n, char *err, size_t errsize);

/* Commit a queued step, and on failure wait with exponential backoff, queue it again and
 * retry, until Redis acknowledges it or the ingest is stopped. Returns 0 when
 * acknowledged. */
static int run_step(struct vt_ingest *in, size_t n, const char *what, step_queue_fn requeue,
                    step_commit_fn commit)
{
    int64_t backoff_ms = 10;
    unsigned attempt = 0;
    char err[512];

    for (;;) {
        if (commit(in, n, err, sizeof err) == 0) {
            if (!atomic_load(&in->redis_up))
                VT_INFO("INGEST", "redis is back after %u failed attempts; resuming", attempt);
            atomic_store(&in->redis_up, true);
            return 0;
        }

        attempt++;
        vt_metrics_redis_error(VT_REDIS_INGEST);
        atomic_store(&in->redis_up, false);
        VT_WARN("INGEST", "redis %s of a batch of %zu records failed (attempt %u), retrying "
                "in %" PRId64 " ms: %s", what, n, attempt, backoff_ms, err);
        if (!sleep_unless_stopped(in, backoff_ms))
            return -1;
        backoff_ms *= 2;
        if (backoff_ms > in->cfg->ingest_retry_backoff_max_ms)
            backoff_ms = in->cfg->ingest_retry_backoff_max_ms;
        requeue(in, n);
    }
}


static int commit_profiles(struct vt_ingest *in, size_t n, char *err, size_t errsize)
{
    return vt_store_batch_commit(in->store, in->results, count_state(in, n, RECORD_APPLY), err,
                                 errsize);
}


/* Queue the aggregate call of every decoded record, with what its profile call reported.
 * Redeliveries are queued too: the aggregates have their own watermark. */
static void queue_aggregates(struct vt_ingest *in, size_t n)
{
    size_t queued = 0;
    int64_t now = vt_now_ms();

    in->world = vt_live_world(in->live);
    vt_store_aggregates_begin(in->store);
    for (size_t i = 0; i < n; i++) {
        struct vt_alert_counts counts = {.rules = in->alert_rules,
                                         .increments = in->increments,
                                         .bucket_ms = in->cfg->alerts_bucket_s * 1000,
                                         .ttl_s = in->alert_ttl_s};

        if (in->records[i].state != RECORD_APPLY)
            continue;
        prepare_record(in, in->messages[i], &in->records[i]);
        if (in->alert_rules != NULL && in->alert_rules->n > 0)
            counts.n = vt_alert_increments(in->alert_rules, &in->event, in->increments,
                                           VT_ALERT_INCREMENTS_MAX);
        vt_store_aggregates_add(in->store, &in->event, &in->delta, &in->results[queued++],
                                &counts, now);
    }
}


static int commit_aggregates(struct vt_ingest *in, size_t n, char *err, size_t errsize)
{
    size_t applied = 0;
    size_t queued = count_state(in, n, RECORD_APPLY);

    if (vt_store_aggregates_commit(in->store, &applied, err, errsize) != 0)
        return -1;
    vt_metrics_aggregates(applied, queued - applied);
    return 0;
}


/* Whether the profile step reported a record for a visitor: a session with consent and
 * a visitor link. */
static bool for_visitor(const struct vt_apply_result *r)
{
    return r->personal && r->visitor[0] != '\0';
}


static bool is_login(const struct vt_apply_result *r)
{
    /* Also for a redelivery: the visitor has its own offsets, and takes a session over
     * only once. */
    return for_visitor(r) && r->visitor_before[0] != '\0' &&
           strcmp(r->visitor_before, r->visitor) != 0;
}


/* Read the session of every login in the batch, for its new visitor to take over. Runs
 * before the visitor calls are queued, on the same connection. */
static void read_logins(struct vt_ingest *in, size_t n)
{
    size_t queued = 0, skipped = 0;
    char err[256];

    in->n_logins = 0;
    in->logins_failed = false;
    for (size_t i = 0; i < n; i++) {
        if (in->records[i].state != RECORD_APPLY)
            continue;
        size_t q = queued++;
        if (!is_login(&in->results[q]))
            continue;
        if (in->n_logins == LOGIN_MERGES_MAX) {
            skipped++;
            continue;
        }
        prepare_record(in, in->messages[i], &in->records[i]);
        if (vt_store_profile_read(in->store, in->delta.profile_id, strlen(in->delta.profile_id),
                                  in->delta.ts_ms, &in->logins[in->n_logins], err,
                                  sizeof err) != 0) {
            in->logins_failed = true;
            snprintf(in->logins_error, sizeof in->logins_error, "session read for a login: %s",
                     err);
            return;
        }
        vt_strlcpy(in->login_session[in->n_logins], in->delta.profile_id,
                   sizeof in->login_session[in->n_logins]);
        in->login_result[in->n_logins++] = q;
    }
    if (skipped > 0)
        VT_WARN("INGEST", "%zu logins in one batch linked their sessions without handing "
                "over the sessions' earlier affinities (at most %d per batch)", skipped,
                LOGIN_MERGES_MAX);
}


/* True when record q follows a login of its session to the same visitor in this batch,
 * because the session profile read for the login already contains it. */
static bool taken_over_already(const struct vt_ingest *in, size_t q)
{
    for (size_t j = 0; j < in->n_logins; j++) {
        size_t login = in->login_result[j];
        if (login < q && strcmp(in->login_session[j], in->delta.profile_id) == 0 &&
            strcmp(in->results[login].visitor, in->results[q].visitor) == 0)
            return true;
    }
    return false;
}


/* Queue the visitor call of every record of a linked session with consent. */
static void queue_visitors(struct vt_ingest *in, size_t n)
{
    size_t queued = 0, login = 0;
    int64_t now = vt_now_ms();

    read_logins(in, n);
    in->world = vt_live_world(in->live);
    vt_store_visitors_begin(in->store);
    if (in->logins_failed)
        return;
    for (size_t i = 0; i < n; i++) {
        const struct vt_profile *session = NULL;

        if (in->records[i].state != RECORD_APPLY)
            continue;
        size_t q = queued++;
        if (!for_visitor(&in->results[q]))
            continue;
        if (login < in->n_logins && in->login_result[login] == q)
            session = &in->logins[login++];
        prepare_record(in, in->messages[i], &in->records[i]);
        const struct vt_apply_result *r = &in->results[q];
        bool want = !r->has_snapshot || is_login(r);
        vt_store_visitors_add(in->store, &in->delta, r, session, taken_over_already(in, q),
                              want, now);
    }
}


static int commit_visitors(struct vt_ingest *in, size_t n, char *err, size_t errsize)
{
    struct vt_visitor_counts counts;

    (void)n;
    if (in->logins_failed) {
        vt_strlcpy(err, in->logins_error, errsize);
        return -1;
    }
    if (vt_store_visitors_commit(in->store, &counts, err, errsize) != 0)
        return -1;
    vt_metrics_visitors(counts.applied, counts.linked, counts.refused);
    return 0;
}


static bool batch_has_visitors(const struct vt_ingest *in, size_t n)
{
    size_t applied = count_state(in, n, RECORD_APPLY);

    for (size_t q = 0; q < applied; q++) {
        if (for_visitor(&in->results[q]))
            return true;
    }
    return false;
}


/* Step 3: apply the profiles (the calls prepare_batch queued), then the visitors of linked
 * sessions, then the aggregates, each one pipelined round trip retried until Redis
 * acknowledges it. Returns 0 when all were acknowledged. */
static int apply_batch(struct vt_ingest *in, size_t n)
{
    prepare_batch(in, n);
    if (run_step(in, n, "profile update", requeue_batch, commit_profiles) != 0)
        return -1;
    if (count_state(in, n, RECORD_APPLY) == 0)
        return 0;
    if (batch_has_visitors(in, n)) {
        queue_visitors(in, n);
        if (run_step(in, n, "visitor update", queue_visitors, commit_visitors) != 0)
            return -1;
    }
    queue_aggregates(in, n);
    return run_step(in, n, "aggregate update", queue_aggregates, commit_aggregates);
}


/* Step 4: wait for the dead-letter deliveries of this batch; re-produce failed ones a few
 * times, then count them as lost to the dead-letter topic (their profiles are unaffected:
 * they never decoded). */
static void finish_dead_letters(struct vt_ingest *in, size_t n)
{
    if (count_state(in, n, RECORD_DEAD_LETTER) == 0)
        return;

    for (int attempt = 1; attempt <= DEAD_LETTER_ATTEMPTS; attempt++) {
        size_t failed = 0;

        rd_kafka_flush(in->dead_letter, DEAD_LETTER_FLUSH_MS);
        for (size_t i = 0; i < n; i++) {
            struct record *rec = &in->records[i];
            if (rec->state != RECORD_DEAD_LETTER || atomic_load(&rec->dead_letter_result) == 1)
                continue;
            if (attempt == DEAD_LETTER_ATTEMPTS) {
                const rd_kafka_message_t *m = in->messages[i];
                vt_metrics_dead_letter_failed();
                VT_ERROR("INGEST", "record %s[%" PRId32 "]@%" PRId64 " could not be written "
                         "to dead-letter topic %s after %d attempts; it is skipped",
                         rd_kafka_topic_name(m->rkt), m->partition, m->offset,
                         in->cfg->kafka_dead_letter_topic, DEAD_LETTER_ATTEMPTS);
                continue;
            }
            failed++;
            produce_dead_letter(in, in->messages[i], rec);
        }
        if (failed == 0)
            return;
    }
}


/* Step 5: store the offset after the last handled record of each partition. */
static void store_offsets(struct vt_ingest *in, size_t n)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(8);
    rd_kafka_resp_err_t err;

    for (size_t i = 0; i < n; i++) {
        const rd_kafka_message_t *m = in->messages[i];
        rd_kafka_topic_partition_t *tp;

        if (m->err)
            continue;
        tp = rd_kafka_topic_partition_list_find(list, rd_kafka_topic_name(m->rkt), m->partition);
        if (tp == NULL)
            tp = rd_kafka_topic_partition_list_add(list, rd_kafka_topic_name(m->rkt),
                                                   m->partition);
        if (m->offset + 1 > tp->offset)
            tp->offset = m->offset + 1;
    }
    if (list->cnt > 0) {
        err = rd_kafka_offsets_store(in->consumer, list);
        /* A partition revoked meanwhile reports an error: its new owner re-reads the
         * records and the redelivery check skips what was applied here. */
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            VT_DEBUG("INGEST", "offsets store: %s", rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(list);
}


static void count_outcomes(struct vt_ingest *in, size_t n)
{
    size_t applied_index = 0;

    for (size_t i = 0; i < n; i++) {
        const struct record *rec = &in->records[i];

        switch (rec->state) {
        case RECORD_APPLY: {
            bool applied = in->results[applied_index++].applied;
            vt_metrics_event(rec->type, applied ? VT_OUTCOME_APPLIED : VT_OUTCOME_DUPLICATE);
            if (applied) {
                vt_metrics_consent(rec->consent, rec->consent_unreadable);
                if (rec->visitor_blocked)
                    vt_metrics_visitor_blocked();
            }
            break;
        }
        case RECORD_SKIP:
            vt_metrics_event(rec->type, VT_OUTCOME_SKIPPED);
            break;
        case RECORD_DEAD_LETTER:
            vt_metrics_event_undecoded(VT_OUTCOME_DEAD_LETTER);
            break;
        case RECORD_KAFKA_ERROR:
            break;
        }
    }
}


static void process_batch(struct vt_ingest *in, size_t n)
{
    uint64_t started = vt_monotonic_ns();
    int applied;

    /* The passes of apply_batch load the current world; holding it keeps every version
     * they load until the batch is done. */
    vt_live_world_hold(in->live);
    applied = apply_batch(in, n);
    vt_live_world_release(in->live);
    if (applied != 0)
        return; /* stopped while Redis was down: nothing stored, the records come again */
    finish_dead_letters(in, n);
    store_offsets(in, n);
    count_outcomes(in, n);
    vt_metrics_batch(n, vt_monotonic_ns() - started);
}


/* Say once when the instance has had no partition for UNASSIGNED_WARN_S: its lag then
 * reads 0 although the topic may have a backlog. */
static void warn_unassigned(struct vt_ingest *in, int assigned, uint64_t now)
{
    if (assigned > 0) {
        in->unassigned_since_ns = 0;
        in->unassigned_warned = false;
        return;
    }
    if (in->unassigned_since_ns == 0)
        in->unassigned_since_ns = now;
    if (in->unassigned_warned ||
        now - in->unassigned_since_ns < (uint64_t)UNASSIGNED_WARN_S * 1000000000u)
        return;
    in->unassigned_warned = true;
    VT_WARN("INGEST", "no partition of topic %s assigned to group %s for %d s: the group "
            "waits for a member that stopped without leaving (up to its session.timeout.ms), "
            "or has more members than the topic has partitions; until then this instance "
            "reads nothing and reports no lag", in->cfg->kafka_topic, in->cfg->kafka_group,
            UNASSIGNED_WARN_S);
}


/* Refresh the lag gauges from the consumer position and the cached high watermarks. */
static void update_lag(struct vt_ingest *in)
{
    rd_kafka_topic_partition_list_t *parts = NULL;
    uint64_t now = vt_monotonic_ns();

    if (now - in->last_lag_ns < LAG_INTERVAL_NS)
        return;
    in->last_lag_ns = now;

    if (rd_kafka_assignment(in->consumer, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    rd_kafka_position(in->consumer, parts);
    vt_metrics_set_assigned(parts->cnt);
    warn_unassigned(in, parts->cnt, now);
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        int64_t low = -1, high = -1, lag;

        if (rd_kafka_get_watermark_offsets(in->consumer, tp->topic, tp->partition, &low,
                                           &high) != RD_KAFKA_RESP_ERR_NO_ERROR ||
            high < 0)
            continue;
        /* Before the first fetch the position is unknown: count from the low watermark. */
        lag = tp->offset >= 0 ? high - tp->offset : high - (low >= 0 ? low : 0);
        vt_metrics_set_lag(tp->partition, lag < 0 ? 0 : lag);
    }
    rd_kafka_topic_partition_list_destroy(parts);

    /* Without an assignment, tell readiness whether the brokers answer at all. */
    if (!atomic_load(&in->kafka_up)) {
        const struct rd_kafka_metadata *md = NULL;
        if (rd_kafka_metadata(in->consumer, 0, NULL, &md, 1000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            atomic_store(&in->kafka_up, true);
            rd_kafka_metadata_destroy(md);
        }
    }
}


/* The redelivery check keys offsets by a tag of cluster, topic and namespace, so the
 * cluster id must be known before the first record is applied. Returns false when the
 * ingest is stopped first. */
static bool wait_for_source_tag(struct vt_ingest *in)
{
    unsigned attempt = 0;

    while (!atomic_load(&in->stop)) {
        char *cluster = rd_kafka_clusterid(in->consumer, 1000);

        if (cluster != NULL) {
            vt_profile_source_tag(cluster, in->cfg->kafka_topic,
                                  in->cfg->ingest_offset_namespace, in->source_tag);
            VT_INFO("INGEST", "kafka cluster %s, topic %s: redelivery tag %s", cluster,
                    in->cfg->kafka_topic, in->source_tag);
            free(cluster);
            atomic_store(&in->kafka_up, true);
            return true;
        }
        if (++attempt % 10 == 1)
            VT_WARN("INGEST", "kafka cluster id not known yet (brokers %s unreachable?); "
                    "retrying", in->cfg->kafka_brokers);
    }
    return false;
}


/* Close the consumer (commit stored offsets, leave the group) within the configured time.
 * librdkafka's close waits for the group coordinator, which never answers while the
 * brokers are unreachable, so the asynchronous close is served here with a deadline. */
static void close_consumer(struct vt_ingest *in)
{
    rd_kafka_queue_t *queue = rd_kafka_queue_new(in->consumer);
    uint64_t deadline = vt_monotonic_ns() + (uint64_t)in->cfg->ingest_close_timeout_ms * 1000000u;
    rd_kafka_error_t *error = rd_kafka_consumer_close_queue(in->consumer, queue);

    if (error != NULL) {
        VT_WARN("INGEST", "consumer close failed: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else {
        /* Serving the queue runs the rebalance callback for the final revocation. The
         * consumer queue is forwarded to this one during the close, so records fetched
         * ahead arrive here too. They were never applied and their offsets never stored;
         * they are dropped and the next start reads them again. (Serving them as
         * callbacks would trip an assertion in librdkafka.) */
        while (!rd_kafka_consumer_closed(in->consumer) && vt_monotonic_ns() < deadline) {
            rd_kafka_message_t *m = rd_kafka_consume_queue(queue, 100);
            if (m != NULL)
                rd_kafka_message_destroy(m);
        }
    }
    rd_kafka_queue_destroy(queue);

    in->closed_cleanly = rd_kafka_consumer_closed(in->consumer);
    if (!in->closed_cleanly)
        VT_WARN("INGEST", "consumer did not close within %" PRId64 " ms (brokers unreachable?); "
                "offsets stored since the last commit will be consumed again and skipped as "
                "duplicates", in->cfg->ingest_close_timeout_ms);
}


static void *ingest_main(void *arg)
{
    struct vt_ingest *in = arg;
    char err[512];
    uint64_t records = 0;

    VT_INFO("INGEST", "consuming topic %s as group %s from %s", in->cfg->kafka_topic,
            in->cfg->kafka_group, in->cfg->kafka_brokers);

    if (wait_for_source_tag(in)) {
        while (!atomic_load(&in->stop)) {
            ssize_t n;

            if (in->store == NULL) {
                in->store = vt_store_connect(in->cfg, INGEST_REDIS_TIMEOUT_MS, err, sizeof err);
                if (in->store == NULL) {
                    vt_metrics_redis_error(VT_REDIS_INGEST);
                    atomic_store(&in->redis_up, false);
                    VT_WARN("INGEST", "%s; retrying in 1 s", err);
                    update_lag(in);
                    sleep_unless_stopped(in, 1000);
                    continue;
                }
                atomic_store(&in->redis_up, true);
            }

            n = rd_kafka_consume_batch_queue(in->queue, (int)in->cfg->ingest_batch_wait_ms,
                                             in->messages, in->batch_max);
            if (n < 0) {
                vt_metrics_kafka_error();
                VT_WARN("INGEST", "consume failed: %s",
                        rd_kafka_err2str(rd_kafka_last_error()));
                sleep_ms(100);
                continue;
            }
            if (n > 0) {
                process_batch(in, (size_t)n);
                records += (uint64_t)n;
                for (ssize_t i = 0; i < n; i++)
                    rd_kafka_message_destroy(in->messages[i]);
            }
            update_lag(in);
        }
    }

    VT_INFO("INGEST", "stopping after %" PRIu64 " records; closing the consumer", records);
    close_consumer(in);
    rd_kafka_flush(in->dead_letter, DEAD_LETTER_FLUSH_MS);
    return NULL;
}


/* A consumer handle left undestroyed by a timed-out shutdown. Written once by the ingest's
 * owner (main, through vt_ingest_stop) just before the process exits; it keeps the handle
 * reachable so that leak checkers do not report it. */
static rd_kafka_t *abandoned_consumer;

static void ingest_free(struct vt_ingest *in)
{
    if (in == NULL)
        return;
    if (in->queue != NULL)
        rd_kafka_queue_destroy(in->queue);
    if (in->consumer != NULL && in->closed_cleanly) {
        rd_kafka_destroy(in->consumer);
    } else if (in->consumer != NULL) {
        /* After a close that timed out, librdkafka 2.0.2's destroy still waits for the
         * pending commit until the group coordinator times out (about the session timeout,
         * 45 s by default). The process is exiting, so leave the handle to the exit. */
        abandoned_consumer = in->consumer;
    }
    if (in->dead_letter != NULL)
        rd_kafka_destroy(in->dead_letter);
    vt_store_free(in->store);
    free(in->messages);
    free(in->records);
    free(in->results);
    free(in->logins);
    free(in);
}


/* Seconds an alert bucket must live: the longest history any rule reads (current window,
 * history windows, and one more for the bucket that is still filling). */
static int64_t alert_bucket_ttl(const struct vt_alert_rules *rules)
{
    int64_t ttl = 3600;

    for (size_t i = 0; rules != NULL && i < rules->n; i++) {
        const struct vt_alert_rule *r = &rules->rules[i];
        int64_t need = r->window_s * (int64_t)(vt_alert_history_windows(r) + 2);
        if (need > ttl)
            ttl = need;
    }
    return ttl;
}


struct vt_ingest *vt_ingest_start(const struct vt_config *cfg, const struct vt_live *live,
                                  const struct vt_alert_rules *alert_rules, char *err,
                                  size_t errsize)
{
    struct vt_ingest *in = calloc(1, sizeof *in);
    rd_kafka_topic_partition_list_t *topics;
    rd_kafka_resp_err_t rerr;

    if (in == NULL) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    in->cfg = cfg;
    in->live = live;
    in->alert_rules = alert_rules;
    in->alert_ttl_s = alert_bucket_ttl(alert_rules);
    in->batch_max = (size_t)cfg->ingest_batch_size;
    in->messages = calloc(in->batch_max, sizeof *in->messages);
    in->records = calloc(in->batch_max, sizeof *in->records);
    in->results = calloc(in->batch_max, sizeof *in->results);
    in->logins = calloc(LOGIN_MERGES_MAX, sizeof *in->logins);
    if (in->messages == NULL || in->records == NULL || in->results == NULL ||
        in->logins == NULL) {
        snprintf(err, errsize, "out of memory");
        goto fail;
    }
    atomic_store(&in->redis_up, true);

    in->consumer = consumer_new(in, err, errsize);
    if (in->consumer == NULL)
        goto fail;
    in->dead_letter = dead_letter_new(in, err, errsize);
    if (in->dead_letter == NULL)
        goto fail;
    in->queue = rd_kafka_queue_get_consumer(in->consumer);

    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, cfg->kafka_topic, RD_KAFKA_PARTITION_UA);
    rerr = rd_kafka_subscribe(in->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (rerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(err, errsize, "cannot subscribe to topic %s: %s", cfg->kafka_topic,
                 rd_kafka_err2str(rerr));
        goto fail;
    }

    if (pthread_create(&in->thread, NULL, ingest_main, in) != 0) {
        snprintf(err, errsize, "cannot start the ingest thread");
        goto fail;
    }
    in->thread_started = true;
    return in;

fail:
    ingest_free(in);
    return NULL;
}


void vt_ingest_stop(struct vt_ingest *in)
{
    if (in == NULL)
        return;
    atomic_store(&in->stop, true);
    if (in->thread_started)
        pthread_join(in->thread, NULL);
    ingest_free(in);
    VT_INFO("INGEST", "stopped");
}


bool vt_ingest_ready(const struct vt_ingest *in, char *why, size_t whysize)
{
    if (!atomic_load(&in->kafka_up)) {
        vt_strlcpy(why, "kafka: no broker has answered yet", whysize);
        return false;
    }
    if (!atomic_load(&in->redis_up)) {
        vt_strlcpy(why, "redis: the ingest connection is failing", whysize);
        return false;
    }
    return true;
}
