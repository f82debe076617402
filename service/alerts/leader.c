/*
 * vitrine: the alerts thread: leader lease, evaluation, merging and delivery (see
 * include/vitrine/alerting.h).
 *
 * One evaluation, on the leader only:
 *   1. read the stream clock T: the newest event time the aggregates applied, moved on by
 *      the wall time since it was applied. Windows keep moving (and empty) when the
 *      stream stops. Episode times and cool-downs run on this clock too, so a replay
 *      behaves like the live stream;
 *   2. per rule, read the buckets of the current window (ending at T) and of the baseline
 *      windows before it, and sum them per group;
 *   3. judge every group and advance its episode (states from Redis);
 *   4. for new episodes, read the breakdown by dimension and explain the change. Related
 *      episodes become one alert, or join a related alert that is still active. Two
 *      series are related when the cause or the group of one equals the cause or the
 *      group of the other. The cause is the series' own campaign or referrer, or the
 *      strongest campaign or referrer among its drivers. So a surge of brand X driven by
 *      campaign C, a surge of campaign C and a cart rush on a product of X driven by C
 *      are one story;
 *   5. store states and alerts, and deliver fired, escalated and resolved alerts to the
 *      alerts topic and the webhook.
 */
#include "vitrine/alerting.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vitrine/kafka.h"
#include "vitrine/log.h"
#include "vitrine/store.h"
#include "vitrine/util.h"

/* Groups one rule may track in one evaluation; further groups are left out and logged. */
#define GROUPS_MAX 65536
/* Values per dimension kept for an explanation. */
#define BREAKDOWN_MAX 4096
/* Buckets one rule may read per evaluation (window and baseline or explanation windows):
 * bounds the time of an evaluation, which must stay well within the lease. */
#define RULE_BUCKETS_MAX 20000
/* Cool-down of an episode whose rule left the rules file. */
#define REMOVED_RULE_COOLDOWN_MS (3600 * 1000)
/* Milliseconds the alerts producer may spend delivering at shutdown. */
#define PRODUCER_FLUSH_MS 3000
/* Separates rule and group in the keys of the episode state hash. */
#define FIELD_SEPARATOR '\x1f'

struct vt_alerting {
    const struct vt_config *cfg;
    const struct vt_alert_rules *rules;
    const struct vt_live *live;
    struct vt_webhook *webhook;
    rd_kafka_t *producer; /* NULL when kafka.alerts_topic is empty */
    char instance[VT_CONFIG_STR_MAX];
    /* The lease owner: the instance and a random suffix, so that two processes that were
     * given the same instance.id never both hold the lease. */
    char lease_owner[VT_CONFIG_STR_MAX + 20];
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;

    /* Owned by the alerts thread. */
    struct vt_store *store;
    uint64_t lease_renewed_ns; /* when the lease was last taken or renewed */

    /* Read by /metrics. */
    atomic_bool leader;
    atomic_uint_fast64_t evaluations, evaluation_errors, last_evaluation_ns;
    atomic_uint_fast64_t fired[VT_ALERT_RULES_MAX], resolved[VT_ALERT_RULES_MAX];
    atomic_uint_fast64_t merged[VT_ALERT_RULES_MAX], active[VT_ALERT_RULES_MAX];
};

/* ---- a string-keyed map of sums, for groups and breakdowns ---- */

struct sums {
    char key[VT_NAME_MAX + 1];
    double value[VT_ALERT_BASELINE_MAX + 1];
    bool used;
};

struct sums_map {
    struct sums *slots;
    size_t cap;   /* power of two */
    size_t count;
    size_t max;   /* entries allowed */
    bool full;
};

static int map_init(struct sums_map *m, size_t max)
{
    m->cap = 64;
    m->count = 0;
    m->max = max;
    m->full = false;
    m->slots = calloc(m->cap, sizeof *m->slots);
    return m->slots != NULL ? 0 : -1;
}


static void map_free(struct sums_map *m)
{
    free(m->slots);
    m->slots = NULL;
}


static struct sums *map_probe(struct sums *slots, size_t cap, const char *key, size_t len)
{
    size_t i = (size_t)vt_hash64(key, len) & (cap - 1);

    while (slots[i].used && !(strlen(slots[i].key) == len && memcmp(slots[i].key, key, len) == 0))
        i = (i + 1) & (cap - 1);
    return &slots[i];
}


/* The entry of key, created with zero sums; NULL when the map is full or memory ran out. */
static struct sums *map_get(struct sums_map *m, const char *key, size_t len)
{
    struct sums *s;

    if (len > VT_NAME_MAX)
        len = VT_NAME_MAX;
    s = map_probe(m->slots, m->cap, key, len);
    if (s->used)
        return s;
    if (m->count >= m->max) {
        m->full = true;
        return NULL;
    }
    if ((m->count + 1) * 2 > m->cap) {
        size_t cap = m->cap * 2;
        struct sums *slots = calloc(cap, sizeof *slots);
        if (slots == NULL)
            return NULL;
        for (size_t i = 0; i < m->cap; i++) {
            if (m->slots[i].used)
                *map_probe(slots, cap, m->slots[i].key, strlen(m->slots[i].key)) = m->slots[i];
        }
        free(m->slots);
        m->slots = slots;
        m->cap = cap;
        s = map_probe(m->slots, m->cap, key, len);
    }
    memcpy(s->key, key, len);
    s->key[len] = '\0';
    s->used = true;
    m->count++;
    return s;
}


/* ---- episode states in Redis: "state|alert id|since|quiet|cooldown until" ---- */

static void state_field(const struct vt_alert_rule *rule, const char *group, char *out,
                        size_t outsize)
{
    snprintf(out, outsize, "%s%c%s", rule->name, FIELD_SEPARATOR, group);
}


static void state_encode(const struct vt_alert_episode *e, char *out, size_t outsize)
{
    snprintf(out, outsize, "%d|%s|%" PRId64 "|%" PRIu32 "|%" PRId64, (int)e->state, e->alert_id,
             e->since_ms, e->quiet, e->cooldown_until_ms);
}


static bool state_decode(const char *text, size_t len, struct vt_alert_episode *e)
{
    char buf[VT_ALERT_ID_MAX + 96];
    char *parts[5];
    size_t n = 0;
    int64_t state, quiet;

    if (len >= sizeof buf)
        return false;
    memcpy(buf, text, len);
    buf[len] = '\0';
    parts[n++] = buf;
    for (char *p = buf; *p != '\0' && n < 5; p++) {
        if (*p == '|') {
            *p = '\0';
            parts[n++] = p + 1;
        }
    }
    memset(e, 0, sizeof *e);
    if (n != 5 || vt_parse_int64(parts[0], 0, 1, &state) != 0 ||
        vt_parse_int64(parts[2], INT64_MIN, INT64_MAX, &e->since_ms) != 0 ||
        vt_parse_int64(parts[3], 0, UINT32_MAX, &quiet) != 0 ||
        vt_parse_int64(parts[4], INT64_MIN, INT64_MAX, &e->cooldown_until_ms) != 0)
        return false;
    e->state = (enum vt_alert_state)state;
    e->quiet = (uint32_t)quiet;
    vt_strlcpy(e->alert_id, parts[1], sizeof e->alert_id);
    return true;
}


/* Every episode state, keyed by "rule<sep>group". */
struct state_entry {
    char field[VT_ALERT_NAME_MAX + VT_NAME_MAX + 2];
    struct vt_alert_episode episode;
};

struct states {
    struct state_entry *items;
    size_t n, cap;
};

static void collect_state(void *arg, const char *field, size_t field_len, const char *value,
                          size_t value_len)
{
    struct states *s = arg;
    struct vt_alert_episode e;

    if (field_len >= sizeof s->items[0].field || !state_decode(value, value_len, &e))
        return;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct state_entry *items = realloc(s->items, cap * sizeof *items);
        if (items == NULL)
            return;
        s->items = items;
        s->cap = cap;
    }
    memcpy(s->items[s->n].field, field, field_len);
    s->items[s->n].field[field_len] = '\0';
    s->items[s->n].episode = e;
    s->n++;
}


static struct state_entry *find_state(struct states *s, const char *field)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->items[i].field, field) == 0)
            return &s->items[i];
    }
    return NULL;
}


/* ---- reading a rule's buckets ---- */

struct window_read {
    struct sums_map *groups;
    size_t buckets_per_window;
};

static void add_group_field(void *arg, size_t bucket, const char *field, size_t len,
                            double amount)
{
    struct window_read *w = arg;
    size_t window = bucket / w->buckets_per_window;
    struct sums *s;

    if (len < 2 || field[0] != 'g' || field[1] != ':' || window > VT_ALERT_BASELINE_MAX)
        return;
    s = map_get(w->groups, field + 2, len - 2);
    if (s != NULL)
        s->value[window] += amount;
}


/* The breakdowns of one group: per dimension, amounts during (value[0]) and before
 * (value[1]). */
struct breakdown_read {
    const char *group;
    size_t group_len;
    size_t buckets_per_window;
    struct sums_map dims[VT_DIM_COUNT];
    double total[2]; /* the group's whole amount during and before */
};

static void add_breakdown_field(void *arg, size_t bucket, const char *field, size_t len,
                                double amount)
{
    struct breakdown_read *b = arg;
    const char *p = field + 2;
    const char *end = field + len;

    /* "g:<group>": the whole amount, which includes events without a value (no campaign,
     * no referrer) that the breakdown fields leave out. */
    if (len == b->group_len + 2 && field[0] == 'g' && field[1] == ':' &&
        memcmp(p, b->group, b->group_len) == 0) {
        b->total[bucket / b->buckets_per_window == 0 ? 0 : 1] += amount;
        return;
    }

    /* "d:<group length>:<group>|<dimension>|<value>": the length keeps a group or value
     * that contains '|' from being read as another group's field. */
    if (len < 2 || field[0] != 'd' || field[1] != ':')
        return;
    size_t group_len = 0;
    while (p < end && *p >= '0' && *p <= '9' && group_len <= VT_NAME_MAX)
        group_len = group_len * 10 + (size_t)(*p++ - '0');
    if (p >= end || *p != ':' || group_len != b->group_len)
        return;
    p++;
    if ((size_t)(end - p) <= group_len || memcmp(p, b->group, group_len) != 0 ||
        p[group_len] != '|')
        return;
    p += group_len + 1;
    const char *bar = memchr(p, '|', (size_t)(end - p));
    if (bar == NULL)
        return;
    for (int d = 0; d < VT_DIM_COUNT; d++) {
        const char *name = vt_alert_dimension_name((enum vt_alert_dimension)d);
        if (strlen(name) != (size_t)(bar - p) || memcmp(name, p, (size_t)(bar - p)) != 0)
            continue;
        struct sums *s = map_get(&b->dims[d], bar + 1, (size_t)(end - bar - 1));
        if (s != NULL)
            s->value[bucket / b->buckets_per_window == 0 ? 0 : 1] += amount;
    }
}


/* ---- one evaluation ---- */

/* A series that fired in this evaluation, waiting to be explained and merged. */
struct firing {
    size_t rule;
    char group[VT_NAME_MAX + 1];
    struct vt_alert_verdict verdict;
    struct vt_alert_driver drivers[VT_ALERT_DRIVERS_MAX];
    size_t n_drivers;
    char cause[VT_NAME_MAX + 32];   /* "<dimension>=<value>" of the cause, or "" */
    char subject[VT_NAME_MAX + 32]; /* "<group_by>=<group>" of a grouped rule, or "" */
    char alert_id[VT_ALERT_ID_MAX + 1];
    int64_t stock;
    size_t state; /* index of its entry in the evaluation's states (which may move) */
};

/* Do two series tell the same story? Their keys (cause and group) overlap. */
static bool keys_overlap(const char *cause_a, const char *subject_a, const char *cause_b,
                         const char *subject_b)
{
    const char *a[2] = {cause_a, subject_a}, *b[2] = {cause_b, subject_b};

    for (int i = 0; i < 2; i++) {
        for (int j = 0; j < 2; j++) {
            if (a[i][0] != '\0' && strcmp(a[i], b[j]) == 0)
                return true;
        }
    }
    return false;
}


static bool related(const struct firing *f, const struct firing *g)
{
    return keys_overlap(f->cause, f->subject, g->cause, g->subject);
}


static int64_t bucket_start(int64_t t, int64_t width)
{
    return t - ((t % width) + width) % width;
}


/* Bucket starts of the current window and `windows` past windows, newest first. */
static size_t bucket_starts(const struct vt_alert_rule *rule, int64_t clock, int64_t width,
                            size_t windows, int64_t **out)
{
    size_t per_window = (size_t)(rule->window_s * 1000 / width);
    size_t n = per_window * (windows + 1);
    int64_t *starts = malloc(n * sizeof *starts);
    int64_t newest = bucket_start(clock, width);

    if (starts == NULL)
        return 0;
    for (size_t j = 0; j < n; j++)
        starts[j] = newest - (int64_t)j * width;
    *out = starts;
    return n;
}


static int64_t product_stock(const struct vt_world *w, const char *id)
{
    uint32_t index = vt_catalog_find(w->catalog, id, strlen(id));

    if (index == VT_CATALOG_NONE)
        return -1;
    return vt_product_stock(vt_catalog_get(w->catalog, index));
}


/* The flattened breakdowns explain() hands to vt_alert_explain (about 480 KB, so on the
 * heap). */
struct explain_scratch {
    const char *values[VT_DIM_COUNT][BREAKDOWN_MAX];
    double during[VT_DIM_COUNT][BREAKDOWN_MAX];
    double before[VT_DIM_COUNT][BREAKDOWN_MAX];
};

static bool is_cause_dimension(enum vt_alert_dimension d)
{
    return d == VT_DIM_CAMPAIGN || d == VT_DIM_REFERRER;
}


static void explain(struct vt_alerting *a, const struct vt_alert_rule *rule, int64_t clock,
                    struct firing *f)
{
    int64_t width = a->cfg->alerts_bucket_s * 1000;
    int64_t *starts = NULL;
    size_t n = bucket_starts(rule, clock, width, vt_alert_history_windows(rule), &starts);
    struct breakdown_read b = {.group = f->group,
                               .group_len = strlen(f->group),
                               .buckets_per_window = (size_t)(rule->window_s * 1000 / width)};
    struct vt_alert_breakdown during[VT_DIM_COUNT], before[VT_DIM_COUNT];
    struct explain_scratch *x = calloc(1, sizeof *x);
    char err[256];

    f->n_drivers = 0;
    f->cause[0] = '\0';
    for (int d = 0; d < VT_DIM_COUNT; d++) {
        if (map_init(&b.dims[d], BREAKDOWN_MAX) != 0)
            b.dims[d].max = 0; /* out of memory: this dimension stays empty */
    }
    if (x == NULL || n == 0) {
        VT_WARN("ALERTS", "explaining rule %s: out of memory", rule->name);
    } else if (vt_store_alert_buckets(a->store, rule->name, starts, n, add_breakdown_field, &b,
                                        err, sizeof err) != 0)
        VT_WARN("ALERTS", "explaining rule %s: %s", rule->name, err);

    for (int d = 0; d < VT_DIM_COUNT && x != NULL; d++) {
        size_t k = 0;
        double known_during = 0, known_before = 0;
        for (size_t i = 0; b.dims[d].slots != NULL && i < b.dims[d].cap && k < BREAKDOWN_MAX;
             i++) {
            if (!b.dims[d].slots[i].used)
                continue;
            x->values[d][k] = b.dims[d].slots[i].key;
            x->during[d][k] = b.dims[d].slots[i].value[0];
            x->before[d][k] = b.dims[d].slots[i].value[1];
            known_during += x->during[d][k];
            known_before += x->before[d][k];
            k++;
        }
        /* The amount without a value of this dimension counts in the totals as the empty
         * value, which is never a driver. So a campaign that brought 5 % of the views has a
         * share of 0.05, not 1, when the other 95 % came without a campaign. */
        if (k < BREAKDOWN_MAX && (b.total[0] > known_during || b.total[1] > known_before)) {
            x->values[d][k] = "";
            x->during[d][k] = fmax(b.total[0] - known_during, 0);
            x->before[d][k] = fmax(b.total[1] - known_before, 0);
            k++;
        }
        during[d] = (struct vt_alert_breakdown){.n = k, .values = x->values[d],
                                                 .amounts = x->during[d]};
        before[d] = (struct vt_alert_breakdown){.n = k, .values = x->values[d],
                                                .amounts = x->before[d]};
    }
    if (x != NULL)
        f->n_drivers = vt_alert_explain(during, before, rule->group_by, f->drivers,
                                        VT_ALERT_DRIVERS_MAX);
    if (is_cause_dimension(rule->group_by)) {
        /* A campaign or referrer series is its own cause. */
        snprintf(f->cause, sizeof f->cause, "%s=%s", vt_alert_dimension_name(rule->group_by),
                 f->group);
    } else {
        /* The cause is the strongest campaign or referrer among the drivers, because those
         * explain why traffic changed. Products, brands and categories show what changed,
         * and two surges that share only a category are not one story. */
        for (size_t i = 0; i < f->n_drivers; i++) {
            if (is_cause_dimension(f->drivers[i].dimension)) {
                snprintf(f->cause, sizeof f->cause, "%s=%s",
                         vt_alert_dimension_name(f->drivers[i].dimension),
                         f->drivers[i].value);
                break;
            }
        }
    }
    for (int d = 0; d < VT_DIM_COUNT; d++)
        map_free(&b.dims[d]);
    free(starts);
    free(x);
}


/* JSON of one series of an alert. */
static cJSON *series_json(const struct vt_alert_rule *rule, const struct firing *f,
                          const char *fired_at)
{
    cJSON *s = cJSON_CreateObject();

    cJSON_AddStringToObject(s, "rule", rule->name);
    cJSON_AddStringToObject(s, "group", f->group);
    if (rule->group_by != VT_DIM_NONE)
        cJSON_AddStringToObject(s, "dimension", vt_alert_dimension_name(rule->group_by));
    cJSON_AddStringToObject(s, "state", "active");
    cJSON_AddStringToObject(s, "fired_at", fired_at);
    cJSON_AddNumberToObject(s, "value", f->verdict.value);
    if (rule->condition == VT_ALERT_RATIO) {
        cJSON_AddNumberToObject(s, "baseline", f->verdict.baseline);
        cJSON_AddNumberToObject(s, "ratio", f->verdict.ratio);
    }
    if (rule->condition == VT_ALERT_STOCK) {
        cJSON_AddNumberToObject(s, "stock", (double)f->stock);
        cJSON_AddNumberToObject(s, "hours_left", f->verdict.hours_left);
    }
    return s;
}


static void summary_text(const struct vt_alert_rule *rule, const struct firing *f, char *out,
                         size_t outsize)
{
    char what[VT_NAME_MAX + 48] = "";

    if (rule->group_by != VT_DIM_NONE)
        snprintf(what, sizeof what, " for %s %s", vt_alert_dimension_name(rule->group_by),
                 f->group);
    switch (rule->condition) {
    case VT_ALERT_RATIO:
        if (f->verdict.baseline < 1)
            snprintf(out, outsize, "%s%s: %.0f in %" PRId64 " s, where fewer than 1 is usual",
                     rule->name, what, f->verdict.value, rule->window_s);
        else
            snprintf(out, outsize, "%s%s: %.0f in %" PRId64 " s, %.1f times the usual %.1f",
                     rule->name, what, f->verdict.value, rule->window_s, f->verdict.ratio,
                     f->verdict.baseline);
        break;
    case VT_ALERT_STOCK:
        snprintf(out, outsize, "%s%s: %" PRId64 " in stock, sold out in %.1f hours at the "
                 "current rate (%.0f in %" PRId64 " s)", rule->name, what, f->stock,
                 f->verdict.hours_left, f->verdict.value, rule->window_s);
        break;
    default:
        snprintf(out, outsize, "%s%s: %.0f in %" PRId64 " s (threshold %g)", rule->name, what,
                 f->verdict.value, rule->window_s, rule->threshold);
        break;
    }
}


static cJSON *recipients_json(const struct vt_alert_rule *rule)
{
    cJSON *list = cJSON_CreateArray();

    for (size_t i = 0; list != NULL && i < rule->n_recipients; i++)
        cJSON_AddItemToArray(list, cJSON_CreateString(rule->recipients[i]));
    return list;
}


/* Add the recipients of rule that list does not name yet. */
static void add_recipients(cJSON *list, const struct vt_alert_rule *rule)
{
    for (size_t i = 0; list != NULL && i < rule->n_recipients; i++) {
        const cJSON *r;
        bool known = false;

        cJSON_ArrayForEach(r, list) {
            const char *name = cJSON_GetStringValue(r);
            known = known || (name != NULL && strcmp(name, rule->recipients[i]) == 0);
        }
        if (!known)
            cJSON_AddItemToArray(list, cJSON_CreateString(rule->recipients[i]));
    }
}


static cJSON *alert_json(struct vt_alerting *a, const struct firing *f, const char *fired_at,
                         int64_t clock)
{
    const struct vt_alert_rule *rule = &a->rules->rules[f->rule];
    char summary[512], stream_time[40];
    cJSON *alert = cJSON_CreateObject();
    cJSON *series = cJSON_AddArrayToObject(alert, "series");

    summary_text(rule, f, summary, sizeof summary);
    vt_time_format_iso8601(clock, stream_time, sizeof stream_time);
    cJSON_AddStringToObject(alert, "id", f->alert_id);
    cJSON_AddStringToObject(alert, "rule", rule->name);
    cJSON_AddStringToObject(alert, "severity", vt_alert_severity_name(rule->severity));
    cJSON_AddStringToObject(alert, "state", "active");
    cJSON_AddStringToObject(alert, "summary", summary);
    cJSON_AddStringToObject(alert, "fired_at", fired_at);
    cJSON_AddStringToObject(alert, "stream_time", stream_time);
    cJSON_AddStringToObject(alert, "instance", a->instance);
    if (f->cause[0] != '\0')
        cJSON_AddStringToObject(alert, "cause", f->cause);
    cJSON_AddItemToArray(series, series_json(rule, f, fired_at));
    /* Empty arrays are left out: Redis' cjson would turn them into objects on update. */
    if (f->n_drivers > 0) {
        cJSON *drivers = cJSON_AddArrayToObject(alert, "drivers");
        for (size_t i = 0; i < f->n_drivers; i++) {
            const struct vt_alert_driver *d = &f->drivers[i];
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "dimension", vt_alert_dimension_name(d->dimension));
            cJSON_AddStringToObject(j, "value", d->value);
            cJSON_AddNumberToObject(j, "share_before", d->share_before);
            cJSON_AddNumberToObject(j, "share_during", d->share_during);
            cJSON_AddNumberToObject(j, "during", d->during);
            cJSON_AddNumberToObject(j, "before", d->before);
            cJSON_AddItemToArray(drivers, j);
        }
    }
    if (rule->n_recipients > 0)
        cJSON_AddItemToObject(alert, "recipients", recipients_json(rule));
    cJSON_AddStringToObject(alert, "reaction", rule->reaction);
    return alert;
}


/* Hand one alert message ({"event": ..., "alert": ...}) to the topic, keyed by the alert
 * id, and to the webhook. */
static void deliver(struct vt_alerting *a, const char *event, const char *id,
                    const char *alert_json_text, size_t len)
{
    struct vt_buf msg;

    vt_buf_init(&msg, len + 64);
    vt_buf_printf(&msg, "{\"event\":\"%s\",\"alert\":", event);
    vt_buf_append(&msg, alert_json_text, len);
    vt_buf_appends(&msg, "}");
    if (msg.overflow || msg.data == NULL) {
        vt_buf_free(&msg);
        return;
    }
    if (a->producer != NULL) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            a->producer, RD_KAFKA_V_TOPIC(a->cfg->kafka_alerts_topic),
            RD_KAFKA_V_KEY(id, strlen(id)), /* one partition per alert keeps its order */
            RD_KAFKA_V_VALUE(msg.data, msg.len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            VT_WARN("ALERTS", "alert message not queued for topic %s: %s",
                    a->cfg->kafka_alerts_topic, rd_kafka_err2str(err));
    }
    vt_webhook_send(a->webhook, msg.data, msg.len);
    vt_buf_free(&msg);
}


/* Store a new alert for the related firings f[0..n) (or the single one), and deliver it.
 * Writes the new alert's id into each of them. */
static int open_alert(struct vt_alerting *a, struct firing **f, size_t n, int64_t clock,
                      const char *now_iso, int64_t now_ms, char *err, size_t errsize)
{
    char id[VT_ALERT_ID_MAX + 1];
    cJSON *alert;
    char *text;
    int rc;

    /* The series with the highest severity leads: its rule, severity and reaction are the
     * alert's, and the alert goes to the recipients of every series. */
    for (size_t i = 1; i < n; i++) {
        if (a->rules->rules[f[i]->rule].severity > a->rules->rules[f[0]->rule].severity) {
            struct firing *lead = f[i];
            f[i] = f[0];
            f[0] = lead;
        }
    }
    vt_uuid7(id, sizeof id);
    for (size_t i = 0; i < n; i++)
        vt_strlcpy(f[i]->alert_id, id, sizeof f[i]->alert_id);
    alert = alert_json(a, f[0], now_iso, clock);
    cJSON *series = cJSON_GetObjectItemCaseSensitive(alert, "series");
    cJSON *recipients = cJSON_GetObjectItemCaseSensitive(alert, "recipients");
    for (size_t i = 1; i < n; i++) {
        cJSON_AddItemToArray(series, series_json(&a->rules->rules[f[i]->rule], f[i], now_iso));
        add_recipients(recipients, &a->rules->rules[f[i]->rule]);
    }
    if (n > 1)
        cJSON_AddNumberToObject(alert, "merged", (double)(n - 1));
    text = cJSON_PrintUnformatted(alert);
    cJSON_Delete(alert);
    if (text == NULL) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    rc = vt_store_alert_put(a->store, id, text, strlen(text), now_ms, a->cfg->alerts_keep, err,
                            errsize);
    if (rc == 0) {
        deliver(a, "fired", id, text, strlen(text));
        VT_INFO("ALERTS", "alert %s fired: %s %s%s%s (%zu series)", id,
                a->rules->rules[f[0]->rule].name, f[0]->group,
                f[0]->cause[0] ? ", cause " : "", f[0]->cause, n);
    }
    free(text);
    if (rc != 0) {
        for (size_t i = 0; i < n; i++)
            f[i]->alert_id[0] = '\0';
    }
    return rc;
}


/* Does the stored alert record tell the same story as f (see related())? */
static bool record_related(const cJSON *rec, const struct firing *f)
{
    const char *cause = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rec, "cause"));
    const cJSON *s;

    if (cause == NULL)
        cause = "";
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(rec, "series")) {
        const char *sdim = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "dimension"));
        const char *group = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "group"));
        char subject[VT_NAME_MAX + 32] = "";

        if (sdim != NULL && group != NULL)
            snprintf(subject, sizeof subject, "%s=%s", sdim, group);
        if (keys_overlap(f->cause, f->subject, cause, subject))
            return true;
    }
    return keys_overlap(f->cause, f->subject, cause, "");
}


/* Did the update `after` raise the severity of `before` or add recipients? */
static bool escalated(const cJSON *before, const char *after, size_t len)
{
    cJSON *now = cJSON_ParseWithLength(after, len);
    const char *was = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(before, "severity"));
    const char *is = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(now, "severity"));
    bool more = (was == NULL) != (is == NULL) || (was != NULL && strcmp(was, is) != 0) ||
                cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(now, "recipients")) >
                    cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(before, "recipients"));

    cJSON_Delete(now);
    return more;
}


/* Join a series to a related alert that is still active; false when there is none. */
static bool join_alert(struct vt_alerting *a, struct firing *f, const struct states *states,
                       const char *now_iso)
{
    char err[256];
    bool joined = false;

    if (f->cause[0] == '\0' && f->subject[0] == '\0')
        return false;
    for (size_t i = 0; i < states->n && !joined; i++) {
        const struct vt_alert_episode *e = &states->items[i].episode;
        struct vt_buf record, out;
        cJSON *rec;

        /* Only series active before this evaluation: this evaluation's firings have no
         * stored alert yet. */
        if (e->state != VT_ALERT_ACTIVE || e->alert_id[0] == '\0')
            continue;
        vt_buf_init(&record, 1 << 20);
        if (vt_store_alert_get(a->store, e->alert_id, strlen(e->alert_id), &record, err,
                               sizeof err) != 0 || record.len == 0) {
            vt_buf_free(&record);
            continue;
        }
        rec = cJSON_ParseWithLength(record.data, record.len);
        if (rec != NULL && record_related(rec, f)) {
            const struct vt_alert_rule *rule = &a->rules->rules[f->rule];
            cJSON *s = series_json(rule, f, now_iso);
            cJSON *to = recipients_json(rule);
            char *text = cJSON_PrintUnformatted(s);
            char *to_text = cJSON_PrintUnformatted(to);

            /* The alert takes the higher severity and every recipient of the series. */
            struct vt_alert_join join = {.severity = vt_alert_severity_name(rule->severity),
                                         .recipients_json = to_text,
                                         .rule = rule->name,
                                         .reaction = rule->reaction};
            vt_buf_init(&out, 1 << 20);
            if (text != NULL && to_text != NULL &&
                vt_store_alert_add_series(a->store, e->alert_id, text, &join, &out, err,
                                          sizeof err) == 0 && out.len > 0) {
                vt_strlcpy(f->alert_id, e->alert_id, sizeof f->alert_id);
                joined = true;
                VT_INFO("ALERTS", "rule %s group %s joined alert %s (related by %s)",
                        a->rules->rules[f->rule].name, f->group, e->alert_id,
                        f->cause[0] != '\0' ? f->cause : f->subject);
                /* A joining series that raises the severity or adds recipients is news for
                 * people who have not heard of the alert yet. */
                if (escalated(rec, out.data, out.len)) {
                    deliver(a, "escalated", e->alert_id, out.data, out.len);
                    VT_INFO("ALERTS", "alert %s escalated by rule %s", e->alert_id, rule->name);
                }
            }
            vt_buf_free(&out);
            free(text);
            free(to_text);
            cJSON_Delete(s);
            cJSON_Delete(to);
        }
        cJSON_Delete(rec);
        vt_buf_free(&record);
    }
    return joined;
}


static void save_state(struct vt_alerting *a, const struct vt_alert_rule *rule,
                       const char *group, const struct vt_alert_episode *e, int64_t clock)
{
    char field[VT_ALERT_NAME_MAX + VT_NAME_MAX + 2], value[VT_ALERT_ID_MAX + 96], err[256];

    state_field(rule, group, field, sizeof field);
    state_encode(e, value, sizeof value);
    /* An inactive episode past its cool-down carries nothing worth keeping. */
    bool keep = e->state == VT_ALERT_ACTIVE || e->cooldown_until_ms > clock;
    if (vt_store_alert_state_set(a->store, field, keep ? value : NULL, err, sizeof err) != 0)
        VT_WARN("ALERTS", "saving the state of rule %s group %s failed: %s", rule->name, group,
                err);
}


static void resolve_series(struct vt_alerting *a, const char *rule, const char *group,
                           const char *alert_id, const char *now_iso)
{
    struct vt_buf out;
    char err[256];

    vt_buf_init(&out, 1 << 20);
    if (vt_store_alert_resolve_series(a->store, alert_id, rule, group,
                                      now_iso, &out, err, sizeof err) != 0) {
        VT_WARN("ALERTS", "resolving alert %s failed: %s", alert_id, err);
    } else if (out.len > 0) {
        cJSON *rec = cJSON_ParseWithLength(out.data, out.len);
        const char *state = cJSON_GetStringValue(cJSON_GetObjectItem(rec, "state"));
        if (state != NULL && strcmp(state, "resolved") == 0) {
            deliver(a, "resolved", alert_id, out.data, out.len);
            VT_INFO("ALERTS", "alert %s resolved", alert_id);
        }
        cJSON_Delete(rec);
    }
    vt_buf_free(&out);
}


/* Judge every group of one rule; firings are appended to *fired. Returns -1 on a Redis
 * error. */
static int evaluate_rule(struct vt_alerting *a, size_t r, int64_t clock,
                         const struct vt_world *world, struct states *states,
                         const char *now_iso, struct firing **fired, size_t *n_fired,
                         size_t *cap_fired, char *err, size_t errsize)
{
    const struct vt_alert_rule *rule = &a->rules->rules[r];
    int64_t width = a->cfg->alerts_bucket_s * 1000;
    size_t k = rule->baseline_windows; /* 0 for rules without a baseline */
    int64_t *starts = NULL;
    size_t n = bucket_starts(rule, clock, width, k, &starts);
    struct sums_map groups;
    struct window_read read = {.groups = &groups,
                               .buckets_per_window = (size_t)(rule->window_s * 1000 / width)};
    uint64_t open = 0;

    if (n == 0 || map_init(&groups, GROUPS_MAX) != 0) {
        free(starts);
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    if (vt_store_alert_buckets(a->store, rule->name, starts, n, add_group_field, &read, err,
                               errsize) != 0) {
        free(starts);
        map_free(&groups);
        return -1;
    }
    free(starts);
    if (groups.full)
        VT_WARN("ALERTS", "rule %s has more than %d groups; the rest are not judged", rule->name,
                GROUPS_MAX);

    /* The rule's own history: baseline windows in which any group counted something. */
    size_t history = 0;
    for (size_t w = 1; w <= k; w++) {
        for (size_t i = 0; i < groups.cap; i++) {
            if (groups.slots[i].used && groups.slots[i].value[w] > 0) {
                history++;
                break;
            }
        }
    }

    /* Groups with an open episode are judged even without data, so they can resolve. */
    char prefix[VT_ALERT_NAME_MAX + 2];
    snprintf(prefix, sizeof prefix, "%s%c", rule->name, FIELD_SEPARATOR);
    for (size_t i = 0; i < states->n; i++) {
        if (strncmp(states->items[i].field, prefix, strlen(prefix)) == 0) {
            const char *group = states->items[i].field + strlen(prefix);
            map_get(&groups, group, strlen(group));
        }
    }

    for (size_t i = 0; i < groups.cap; i++) {
        struct sums *g = &groups.slots[i];
        struct vt_alert_series series = {.n_baseline = k, .rule_history = history,
                                         .stock = -1};
        struct vt_alert_verdict verdict;
        char field[VT_ALERT_NAME_MAX + VT_NAME_MAX + 2];
        struct state_entry *st;
        struct vt_alert_episode fresh = {.state = VT_ALERT_INACTIVE};

        if (!g->used)
            continue;
        series.current = g->value[0];
        for (size_t w = 0; w < k; w++)
            series.baseline[w] = g->value[w + 1];
        if (rule->condition == VT_ALERT_STOCK)
            series.stock = product_stock(world, g->key);
        vt_alert_judge(rule, &series, &verdict);

        state_field(rule, g->key, field, sizeof field);
        st = find_state(states, field);
        struct vt_alert_episode *episode = st != NULL ? &st->episode : &fresh;
        struct vt_alert_episode before = *episode;
        enum vt_alert_transition t = vt_alert_step(rule, episode, &verdict, clock);

        if (t == VT_ALERT_FIRED) {
            if (*n_fired == *cap_fired) {
                size_t cap = *cap_fired ? *cap_fired * 2 : 16;
                struct firing *more = realloc(*fired, cap * sizeof *more);
                if (more == NULL) {
                    *episode = before;
                    continue;
                }
                *fired = more;
                *cap_fired = cap;
            }
            struct firing *f = &(*fired)[(*n_fired)++];
            memset(f, 0, sizeof *f);
            f->rule = r;
            vt_strlcpy(f->group, g->key, sizeof f->group);
            f->verdict = verdict;
            f->stock = series.stock;
            if (rule->group_by != VT_DIM_NONE)
                snprintf(f->subject, sizeof f->subject, "%s=%s",
                         vt_alert_dimension_name(rule->group_by), g->key);
            /* The alert id is written once the alert is stored (after merging). */
            episode->alert_id[0] = '\0';
            if (st == NULL) {
                collect_state(states, field, strlen(field), "0||0|0|0", 8);
                st = find_state(states, field);
            }
            if (st == NULL) { /* out of memory: try again at the next evaluation */
                (*n_fired)--;
                continue;
            }
            st->episode = *episode;
            f->state = (size_t)(st - states->items);
            continue;
        }
        if (t == VT_ALERT_RESOLVED) {
            atomic_fetch_add(&a->resolved[r], 1);
            if (before.alert_id[0] != '\0')
                resolve_series(a, rule->name, g->key, before.alert_id, now_iso);
        }
        if (episode->state == VT_ALERT_ACTIVE)
            open++;
        if (memcmp(&before, episode, sizeof before) != 0 || t != VT_ALERT_NO_CHANGE)
            save_state(a, rule, g->key, episode, clock);
    }
    atomic_store(&a->active[r], open);
    map_free(&groups);
    return 0;
}


/* Explain, merge and open the alerts of this evaluation's firings. */
static void open_firings(struct vt_alerting *a, struct firing *fired, size_t n, int64_t clock,
                         struct states *states, const char *now_iso, int64_t now_ms)
{
    char err[256];

    for (size_t i = 0; i < n; i++)
        explain(a, &a->rules->rules[fired[i].rule], clock, &fired[i]);

    struct firing **members = calloc(n > 0 ? n : 1, sizeof *members);
    bool *taken = calloc(n > 0 ? n : 1, sizeof *taken);
    if (members == NULL || taken == NULL) {
        VT_WARN("ALERTS", "out of memory: %zu new alerts not stored", n);
        n = 0;
    }
    for (size_t i = 0; i < n; i++) {
        struct firing *f = &fired[i];
        size_t count = 0;
        bool grew = true;

        if (taken[i])
            continue; /* already part of an earlier alert */
        taken[i] = true;
        if (join_alert(a, f, states, now_iso)) {
            atomic_fetch_add(&a->merged[f->rule], 1);
            continue;
        }
        /* Gather every later firing related to one already gathered. */
        members[count++] = f;
        while (grew) {
            grew = false;
            for (size_t j = i + 1; j < n; j++) {
                for (size_t m = 0; !taken[j] && m < count; m++) {
                    if (related(&fired[j], members[m])) {
                        taken[j] = true;
                        members[count++] = &fired[j];
                        grew = true;
                    }
                }
            }
        }
        if (open_alert(a, members, count, clock, now_iso, now_ms, err, sizeof err) != 0) {
            VT_WARN("ALERTS", "storing a new alert of rule %s failed: %s",
                    a->rules->rules[f->rule].name, err);
            continue;
        }
        atomic_fetch_add(&a->fired[members[0]->rule], 1);
        for (size_t m = 1; m < count; m++)
            atomic_fetch_add(&a->merged[members[m]->rule], 1);
    }
    free(members);
    free(taken);

    for (size_t i = 0; i < n; i++) {
        struct firing *f = &fired[i];
        struct vt_alert_episode *e = &states->items[f->state].episode;

        /* A firing whose alert could not be stored stays active without an id; it
         * resolves like any other and raises no second alert meanwhile. */
        vt_strlcpy(e->alert_id, f->alert_id, sizeof e->alert_id);
        save_state(a, &a->rules->rules[f->rule], f->group, e, clock);
    }
}


/*
 * Close the episodes of rules that are no longer in the rules file (removed or renamed),
 * which this instance would never judge again: an open alert resolves, and the episode
 * stays in a cool-down of REMOVED_RULE_COOLDOWN_MS before it is forgotten. The cool-down
 * keeps an instance that still has the old file (during a rolling update) from firing the
 * same alert again.
 */
static void close_unknown_rules(struct vt_alerting *a, const struct states *states,
                                int64_t clock, const char *now_iso)
{
    for (size_t i = 0; i < states->n; i++) {
        const struct state_entry *st = &states->items[i];
        const char *sep = strchr(st->field, FIELD_SEPARATOR);
        char rule[VT_ALERT_NAME_MAX + 1], value[VT_ALERT_ID_MAX + 96], err[256];
        struct vt_alert_episode e = st->episode;
        bool known = false;

        if (sep == NULL || (size_t)(sep - st->field) > VT_ALERT_NAME_MAX)
            continue;
        memcpy(rule, st->field, (size_t)(sep - st->field));
        rule[sep - st->field] = '\0';
        for (size_t r = 0; r < a->rules->n && !known; r++)
            known = strcmp(a->rules->rules[r].name, rule) == 0;
        if (known)
            continue;

        if (e.state == VT_ALERT_ACTIVE) {
            if (e.alert_id[0] != '\0')
                resolve_series(a, rule, sep + 1, e.alert_id, now_iso);
            e.state = VT_ALERT_INACTIVE;
            e.since_ms = clock;
            e.quiet = 0;
            e.cooldown_until_ms = clock + REMOVED_RULE_COOLDOWN_MS;
            state_encode(&e, value, sizeof value);
            if (vt_store_alert_state_set(a->store, st->field, value, err, sizeof err) != 0)
                VT_WARN("ALERTS", "closing the episode of removed rule %s failed: %s", rule,
                        err);
            else
                VT_INFO("ALERTS", "rule %s is not in this instance's rules file: its episode "
                        "for %s is closed", rule, sep + 1);
        } else if (e.cooldown_until_ms <= clock &&
                   vt_store_alert_state_set(a->store, st->field, NULL, err, sizeof err) != 0) {
            VT_WARN("ALERTS", "dropping the state of removed rule %s failed: %s", rule, err);
        }
    }
}


/*
 * Renew the lease when a third of it has passed since the last renewal, so that a long
 * evaluation keeps it. Returns true while this instance is the lease owner; the caller
 * stops before its next write otherwise. On a Redis error err contains the message.
 */
static bool lease_still_held(struct vt_alerting *a, char *err, size_t errsize)
{
    uint64_t third = (uint64_t)a->cfg->alerts_lease_ms * 1000000u / 3;
    bool leader = false;

    err[0] = '\0';
    if (vt_monotonic_ns() - a->lease_renewed_ns < third)
        return true;
    if (vt_store_alert_lease(a->store, a->lease_owner, a->cfg->alerts_lease_ms, &leader, err,
                             errsize) != 0)
        return false;
    if (!leader) {
        VT_WARN("ALERTS", "%s lost the lease during an evaluation; another instance evaluates",
                a->lease_owner);
        atomic_store(&a->leader, false);
        return false;
    }
    a->lease_renewed_ns = vt_monotonic_ns();
    return true;
}


static void evaluate(struct vt_alerting *a)
{
    uint64_t started = vt_monotonic_ns();
    const struct vt_world *world = vt_live_world_hold(a->live);
    struct states states = {0};
    struct firing *fired = NULL;
    size_t n_fired = 0, cap_fired = 0;
    int64_t clock, applied_at, now_ms = vt_now_ms();
    char now_iso[40], err[512];
    int failed = 0;

    vt_time_format_iso8601(now_ms, now_iso, sizeof now_iso);
    if (vt_store_alert_clock(a->store, &clock, &applied_at, err, sizeof err) != 0 ||
        vt_store_alert_states(a->store, collect_state, &states, err, sizeof err) != 0) {
        failed = 1;
        goto out;
    }
    if (clock < 0)
        goto out; /* nothing counted yet */
    if (now_ms > applied_at)
        clock += now_ms - applied_at; /* the stream's time moves on while nothing arrives */
    close_unknown_rules(a, &states, clock, now_iso);

    for (size_t r = 0; r < a->rules->n; r++) {
        if (!lease_still_held(a, err, sizeof err)) {
            failed = err[0] != '\0';
            goto out;
        }
        if (evaluate_rule(a, r, clock, world, &states, now_iso, &fired, &n_fired,
                          &cap_fired, err, sizeof err) != 0) {
            failed = 1;
            goto out;
        }
    }
    if (!lease_still_held(a, err, sizeof err)) {
        failed = err[0] != '\0';
        goto out;
    }
    open_firings(a, fired, n_fired, clock, &states, now_iso, now_ms);

out:
    if (failed) {
        atomic_fetch_add(&a->evaluation_errors, 1);
        VT_WARN("ALERTS", "evaluation failed: %s", err);
    }
    atomic_fetch_add(&a->evaluations, 1);
    atomic_store(&a->last_evaluation_ns, vt_monotonic_ns() - started);
    free(fired);
    free(states.items);
    vt_live_world_release(a->live);
}


/* ---- the thread ---- */

static void sleep_interruptible(struct vt_alerting *a, int64_t ms)
{
    for (int64_t waited = 0; waited < ms && !atomic_load(&a->stop); waited += 50) {
        struct timespec ts = {.tv_nsec = (long)(ms - waited < 50 ? ms - waited : 50) * 1000000L};
        nanosleep(&ts, NULL);
        if (a->producer != NULL)
            rd_kafka_poll(a->producer, 0);
    }
}


static void *alerts_main(void *arg)
{
    struct vt_alerting *a = arg;
    int64_t tick = a->cfg->alerts_lease_ms / 3;
    uint64_t next_evaluation = 0;
    char err[512];
    bool redis_failing = false;

    if (tick > a->cfg->alerts_period_ms)
        tick = a->cfg->alerts_period_ms;
    VT_INFO("ALERTS", "alerts thread started as %s: %zu rules, evaluation every %" PRId64
            " ms, lease %" PRId64 " ms", a->lease_owner, a->rules->n, a->cfg->alerts_period_ms,
            a->cfg->alerts_lease_ms);

    while (!atomic_load(&a->stop)) {
        bool leader = false;

        if (a->store == NULL)
            a->store = vt_store_connect(a->cfg, a->cfg->redis_timeout_ms * 4, err, sizeof err);
        if (a->store == NULL ||
            vt_store_alert_lease(a->store, a->lease_owner, a->cfg->alerts_lease_ms, &leader,
                                 err, sizeof err) != 0) {
            if (!redis_failing)
                VT_WARN("ALERTS", "lease check failed, retrying: %s", err);
            redis_failing = true;
            leader = false;
        } else if (redis_failing) {
            VT_INFO("ALERTS", "redis answers again");
            redis_failing = false;
        }

        if (leader != atomic_load(&a->leader)) {
            VT_INFO("ALERTS", "%s %s the alert evaluator", a->lease_owner,
                    leader ? "became" : "is no longer");
            atomic_store(&a->leader, leader);
            next_evaluation = 0;
        }
        if (leader)
            a->lease_renewed_ns = vt_monotonic_ns();
        if (leader && vt_monotonic_ns() >= next_evaluation) {
            next_evaluation = vt_monotonic_ns() + (uint64_t)a->cfg->alerts_period_ms * 1000000u;
            evaluate(a);
        }
        sleep_interruptible(a, tick);
    }

    if (a->store != NULL && atomic_load(&a->leader) &&
        vt_store_alert_release(a->store, a->lease_owner, err, sizeof err) != 0)
        VT_WARN("ALERTS", "releasing the lease failed: %s", err);
    atomic_store(&a->leader, false);
    return NULL;
}


struct vt_alerting *vt_alerting_start(const struct vt_config *cfg,
                                      const struct vt_alert_rules *rules,
                                      const struct vt_live *live, char *err, size_t errsize)
{
    struct vt_alerting *a = calloc(1, sizeof *a);
    struct vt_webhook_options hook = {.url = cfg->alerts_webhook_url,
                                      .timeout_ms = cfg->alerts_webhook_timeout_ms,
                                      .attempts = cfg->alerts_webhook_attempts,
                                      .backoff_ms = 1000,
                                      .backoff_max_ms = 60000,
                                      .queue_max = 1000};
    char werr[512];

    if (a == NULL) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    a->cfg = cfg;
    a->rules = rules;
    a->live = live;
    if (cfg->instance_id[0] != '\0') {
        vt_strlcpy(a->instance, cfg->instance_id, sizeof a->instance);
    } else {
        char host[128] = "vitrine";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(a->instance, sizeof a->instance, "%s-%d", host, (int)getpid());
    }
    char suffix[VT_ALERT_ID_MAX + 1];
    vt_uuid7(suffix, sizeof suffix);
    snprintf(a->lease_owner, sizeof a->lease_owner, "%s/%.12s", a->instance,
             suffix + strlen(suffix) - 12);
    if (rules == NULL || rules->n == 0) {
        VT_INFO("ALERTS", "no alert rules: the alerts thread is not started");
        return a;
    }

    for (size_t i = 0; i < rules->n; i++) {
        if ((rules->rules[i].window_s % cfg->alerts_bucket_s) != 0) {
            snprintf(err, errsize, "%s: rules[%zu] \"%s\": window_s %" PRId64 " is not a "
                     "multiple of alerts.bucket_s (%" PRId64 "); change one of them",
                     cfg->alerts_rules_path, i, rules->rules[i].name, rules->rules[i].window_s,
                     cfg->alerts_bucket_s);
            goto fail;
        }
        int64_t per_window = rules->rules[i].window_s / cfg->alerts_bucket_s;
        int64_t windows = (int64_t)vt_alert_history_windows(&rules->rules[i]) + 1;
        int64_t buckets = per_window * windows;
        if (buckets > RULE_BUCKETS_MAX) {
            snprintf(err, errsize, "%s: rules[%zu] \"%s\": an evaluation would read %" PRId64
                     " buckets of %" PRId64 " s, the window and %" PRId64 " history windows "
                     "(at most %d buckets); raise alerts.bucket_s, shorten window_s or lower "
                     "baseline_windows (history windows are at least 6, for explanations)",
                     cfg->alerts_rules_path, i, rules->rules[i].name, buckets,
                     cfg->alerts_bucket_s, windows - 1, RULE_BUCKETS_MAX);
            goto fail;
        }
    }
    a->webhook = vt_webhook_start(&hook, werr, sizeof werr);
    if (a->webhook == NULL) {
        snprintf(err, errsize, "alerts.webhook_url: %s", werr);
        goto fail;
    }
    if (cfg->kafka_alerts_topic[0] != '\0') {
        char kerr[512];
        rd_kafka_conf_t *conf = vt_kafka_conf_new(cfg, err, errsize);
        if (conf == NULL)
            goto fail;
        a->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof kerr);
        if (a->producer == NULL) {
            rd_kafka_conf_destroy(conf);
            snprintf(err, errsize, "cannot create the alerts producer: %s", kerr);
            goto fail;
        }
    }
    if (pthread_create(&a->thread, NULL, alerts_main, a) != 0) {
        snprintf(err, errsize, "cannot start the alerts thread");
        goto fail;
    }
    a->thread_started = true;
    return a;

fail:
    if (a->producer != NULL)
        rd_kafka_destroy(a->producer);
    vt_webhook_stop(a->webhook, 0);
    free(a);
    return NULL;
}


void vt_alerting_stop(struct vt_alerting *a)
{
    if (a == NULL)
        return;
    atomic_store(&a->stop, true);
    if (a->thread_started)
        pthread_join(a->thread, NULL);
    if (a->producer != NULL) {
        rd_kafka_flush(a->producer, PRODUCER_FLUSH_MS);
        rd_kafka_destroy(a->producer);
    }
    vt_webhook_stop(a->webhook, 3000);
    vt_store_free(a->store);
    free(a);
}


void vt_alerting_stats(const struct vt_alerting *a, struct vt_alerting_stats *out)
{
    memset(out, 0, sizeof *out);
    if (a == NULL)
        return;
    out->running = a->thread_started;
    out->leader = atomic_load(&a->leader);
    out->n_rules = a->rules != NULL ? a->rules->n : 0;
    out->evaluations = atomic_load(&a->evaluations);
    out->evaluation_errors = atomic_load(&a->evaluation_errors);
    out->last_evaluation_ns = atomic_load(&a->last_evaluation_ns);
    for (size_t r = 0; a->rules != NULL && r < a->rules->n; r++) {
        out->rule_names[r] = a->rules->rules[r].name;
        out->fired[r] = atomic_load(&a->fired[r]);
        out->resolved[r] = atomic_load(&a->resolved[r]);
        out->merged[r] = atomic_load(&a->merged[r]);
        out->active[r] = atomic_load(&a->active[r]);
    }
    if (a->webhook != NULL)
        vt_webhook_stats(a->webhook, &out->webhook);
}
