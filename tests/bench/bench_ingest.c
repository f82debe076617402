/*
 * Ingestion benchmark: the rate at which a running vitrine applies events from Kafka to
 * Redis, and the time from producing an event to seeing it through HTTP.
 *
 * Usage (interface for tests/bench/run.sh):
 *   bench_ingest --brokers LIST --url http://127.0.0.1:PORT --records FILE
 *                [--topic events] [--seconds 60] [--ramp-seconds 5]
 *                [--latency-seconds 20] [--latency-rate N] [--max-ahead 5000]
 *                [--probe-interval-ms 100] [--token TOKEN]
 *   bench_ingest --print-settings
 * A quick run: --seconds 10 --ramp-seconds 2 --latency-seconds 5.
 *
 * --records is a file of "key<TAB>value" lines, as `vitrine-replay --dry-run` writes them;
 * canonical events (`--format canonical`) are the intended input. The records are
 * produced in order and again from the start when the file is exhausted. Each pass gives
 * every session id the suffix "-b<process id>p<pass>" (in the key and in the value), so
 * that each pass adds new sessions, as a live shop would.
 *
 * The run has three phases:
 *   1. warm-up: wait for GET /readyz, then until one probe event is visible (at most 60 s
 *      each);
 *   2. throughput, --ramp-seconds + --seconds: produce as fast as vitrine applies, keeping
 *      at most --max-ahead records produced but not yet consumed (read from vitrine's
 *      vitrine_ingest_batch_records_total every 20 ms). The rate is the growth of
 *      vitrine_events_total{outcome="applied"}, summed over event types, over the last
 *      --seconds. Probes run here too. Their latency includes the wait behind the
 *      backlog, and is reported as saturated_*;
 *   3. latency, after the backlog drained: produce for 1 + --latency-seconds at
 *      --latency-rate records per second (default: half the rate of phase 2, as for the
 *      HTTP latency at half load), with probes. The e2p_* figures come from here.
 * A probe is a product_view of a new session "bench-probe-<pid>-<n>", produced alone
 * (linger.ms=0) on its own producer. It is visible when GET /v1/sessions/{id}/segment
 * returns "known":true; the probe polls every millisecond on one keep-alive connection.
 * Probes start every --probe-interval-ms, one at a time. A probe not visible within 10 s
 * counts as lost and enters the percentiles as 10 s.
 *
 * vitrine must run with profile.key=session (the default) and consume --topic. For the
 * latency figures it should run with the low-latency consumer settings, which
 * --print-settings prints as shell assignments:
 *   VITRINE_INGEST_BATCH_WAIT_MS=5  the consumer applies a batch after waiting at most
 *       5 ms for it to fill (vitrine's default: 50 ms)
 *   VITRINE_KAFKA_CONSUMER_PROPERTIES=fetch.wait.max.ms=5  the broker returns a fetch
 *       without new records after 5 ms (librdkafka's default: 500 ms)
 *
 * Output: progress on stderr, and one line on stdout:
 *   result: ingest_events_per_s=<applied/s> ingest_applied=<n> ingest_seconds=<s>
 *           ingest_max_ahead=<n> latency_rate_per_s=<target> latency_applied_per_s=<n>
 *           e2p_p50_ms=<ms> e2p_p99_ms=<ms> e2p_max_ms=<ms> e2p_probes=<n> e2p_lost=<n>
 *           saturated_p50_ms=<ms> saturated_p99_ms=<ms> saturated_probes=<n>
 *           saturated_lost=<n> produce_failed=<n>
 * (on one line). Exit status 0 when the run completed, 1 when vitrine or the broker
 * failed, 2 for invalid arguments.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "vitrine/limits.h"
#include "vitrine/util.h"

/* Input limits: records in the file, bytes per line, and the session id suffix. */
#define RECORDS_MAX 2000000
#define LINE_MAX_BYTES (1024 * 1024)
#define SESSION_SUFFIX_MAX 32

/* HTTP: the largest response read (the /metrics page is at most 1 MiB), and the socket
 * timeout that bounds every request. */
#define HTTP_RESPONSE_MAX (1024 * 1024 + 16 * 1024)
#define HTTP_TIMEOUT_S 5
#define HTTP_REQUEST_MAX 1024

/* Probes: how long one may take before it counts as lost, and the pause between polls. */
#define PROBE_TIMEOUT_MS 10000
#define PROBE_POLL_US 1000
/* How long the warm-up waits for vitrine to become ready and for the first probe. */
#define WARMUP_TIMEOUT_MS 60000
/* How often the backlog is re-read from /metrics while producing. */
#define METRICS_INTERVAL_MS 20
/* Seconds of the latency phase before its applied rate is counted. */
#define LATENCY_RAMP_S 1
/* Records produced per step of the production loop before the backlog is checked. */
#define PRODUCE_CHUNK 1000

struct options {
    const char *brokers;
    const char *url;
    const char *records;
    const char *topic;
    const char *token;
    int64_t seconds;
    int64_t ramp_seconds;
    int64_t latency_seconds;
    int64_t latency_rate; /* 0: half the measured rate */
    int64_t max_ahead;
    int64_t probe_interval_ms;
};

/* One input record: key and value, and where in the value the session id ends (the
 * suffix goes there), or SIZE_MAX when the value does not contain the key quoted. */
struct record {
    char *key;
    size_t key_len;
    char *value;
    size_t value_len;
    size_t session_end;
};

struct http_client {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char host[80];
    char auth[300]; /* "Authorization: Bearer ...\r\n" or "" */
    int fd;
    char *buf; /* HTTP_RESPONSE_MAX bytes */
};

/* Counters of vitrine's /metrics page that the benchmark reads. */
struct ingest_counters {
    uint64_t applied; /* vitrine_events_total{outcome="applied"}, all types */
    uint64_t records; /* vitrine_ingest_batch_records_total */
};

/* Latencies of the probes of one phase, in milliseconds. */
struct probe_set {
    double *ms;
    size_t n;
    size_t cap;
    size_t lost;
};

enum probe_phase { PHASE_IDLE = 0, PHASE_SATURATED, PHASE_LATENCY, PHASE_COUNT };

/* Shared between the main thread and the probe thread. */
struct probe_state {
    const struct options *opt;
    rd_kafka_t *producer;
    const char *product; /* product id of the probe events */
    atomic_int phase;
    atomic_bool stop;
    atomic_uint_fast64_t count; /* probes started, for unique session ids */
    struct probe_set sets[PHASE_COUNT]; /* written by the probe thread only */
    struct http_client http;
};

static atomic_uint_fast64_t delivery_failures;

/* ---- small helpers ---- */

static void sleep_us(int64_t us)
{
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}


static double elapsed_s(uint64_t since_ns)
{
    return (double)(vt_monotonic_ns() - since_ns) / 1e9;
}


static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}


/* Nearest-rank percentile of sorted values; 0 for an empty set. */
static double percentile(const double *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}


/* ---- input ---- */

/* Read "key<TAB>value" lines into *out. Returns the number of records, or -1 with a
 * message in err. */
static long read_records(const char *path, struct record **out, char *err, size_t errsize)
{
    FILE *f = fopen(path, "r");
    char *line = malloc(LINE_MAX_BYTES + 2);
    struct record *recs = NULL;
    long n = 0, cap = 0, lineno = 0;

    if (f == NULL || line == NULL) {
        snprintf(err, errsize, "cannot open --records %s: %s", path, strerror(errno));
        goto fail;
    }
    while (fgets(line, LINE_MAX_BYTES + 2, f) != NULL) {
        size_t len = strlen(line);

        lineno++;
        if (len > LINE_MAX_BYTES) {
            snprintf(err, errsize, "%s line %ld exceeds %d bytes", path, lineno,
                     LINE_MAX_BYTES);
            goto fail;
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        char *tab = strchr(line, '\t');
        if (tab == NULL || tab == line) {
            snprintf(err, errsize, "%s line %ld: expected key<TAB>value (the output of "
                     "vitrine-replay --dry-run)", path, lineno);
            goto fail;
        }
        if (n >= RECORDS_MAX) {
            snprintf(err, errsize, "%s has more than %d records", path, RECORDS_MAX);
            goto fail;
        }
        if (n == cap) {
            long grown = cap > 0 ? cap * 2 : 4096;
            struct record *r = realloc(recs, (size_t)grown * sizeof *recs);
            if (r == NULL) {
                snprintf(err, errsize, "out of memory reading %s", path);
                goto fail;
            }
            recs = r;
            cap = grown;
        }

        struct record *rec = &recs[n];
        rec->key_len = (size_t)(tab - line);
        rec->value_len = len - rec->key_len - 1;
        rec->key = malloc(len + 1);
        if (rec->key == NULL) {
            snprintf(err, errsize, "out of memory reading %s", path);
            goto fail;
        }
        memcpy(rec->key, line, len + 1);
        rec->key[rec->key_len] = '\0';
        rec->value = rec->key + rec->key_len + 1;
        n++;

        /* The session id is the first quoted occurrence of the key in the value:
         * "session_id" in canonical events, "session":{"id"} in Mapp records. */
        char quoted[VT_ID_MAX + 3];
        rec->session_end = SIZE_MAX;
        if (rec->key_len <= VT_ID_MAX) {
            snprintf(quoted, sizeof quoted, "\"%s\"", rec->key);
            const char *at = strstr(rec->value, quoted);
            if (at != NULL)
                rec->session_end = (size_t)(at - rec->value) + 1 + rec->key_len;
        }
    }
    if (n == 0) {
        snprintf(err, errsize, "%s holds no records", path);
        goto fail;
    }
    free(line);
    fclose(f);
    *out = recs;
    return n;

fail:
    for (long i = 0; i < n; i++)
        free(recs[i].key);
    free(recs);
    free(line);
    if (f != NULL)
        fclose(f);
    return -1;
}


/* The first product id of the first record that has one, for the probe events. */
static bool find_product(const struct record *recs, long n, char *out, size_t outsize)
{
    static const char marker[] = "\"products\":[{\"id\":\"";

    for (long i = 0; i < n; i++) {
        const char *at = strstr(recs[i].value, marker);
        if (at == NULL)
            continue;
        at += sizeof marker - 1;
        const char *end = strchr(at, '"');
        size_t len = end != NULL ? (size_t)(end - at) : 0;
        if (len == 0 || len >= outsize)
            continue;
        memcpy(out, at, len);
        out[len] = '\0';
        return true;
    }
    return false;
}


/* ---- HTTP client: one keep-alive connection to vitrine on loopback ---- */

/* Parse "http://HOST:PORT" with a numeric IPv4 or bracketed IPv6 host. */
static int http_init(struct http_client *c, const char *url, const char *token, char *err,
                     size_t errsize)
{
    char host[64];
    const char *p = url;
    const char *port_text;
    int64_t port;

    memset(c, 0, sizeof *c);
    c->fd = -1;
    if (strncmp(p, "http://", 7) != 0)
        goto invalid;
    p += 7;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (close == NULL || (size_t)(close - p - 1) >= sizeof host || close[1] != ':')
            goto invalid;
        memcpy(host, p + 1, (size_t)(close - p - 1));
        host[close - p - 1] = '\0';
        port_text = close + 2;
    } else {
        const char *colon = strchr(p, ':');
        if (colon == NULL || (size_t)(colon - p) >= sizeof host)
            goto invalid;
        memcpy(host, p, (size_t)(colon - p));
        host[colon - p] = '\0';
        port_text = colon + 1;
    }
    char port_digits[8];
    size_t digits = strcspn(port_text, "/");
    if (digits == 0 || digits >= sizeof port_digits)
        goto invalid;
    memcpy(port_digits, port_text, digits);
    port_digits[digits] = '\0';
    if (vt_parse_int64(port_digits, 1, 65535, &port) != 0)
        goto invalid;

    struct sockaddr_in *a4 = (struct sockaddr_in *)&c->addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&c->addr;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        c->addr_len = sizeof *a4;
    } else if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        c->addr_len = sizeof *a6;
    } else {
        goto invalid;
    }
    /* The Host header: the URL's authority, "ADDRESS:PORT". */
    snprintf(c->host, sizeof c->host, "%.*s", (int)strcspn(url + 7, "/"), url + 7);
    if (token != NULL && token[0] != '\0')
        snprintf(c->auth, sizeof c->auth, "Authorization: Bearer %s\r\n", token);
    c->buf = malloc(HTTP_RESPONSE_MAX + 1);
    if (c->buf == NULL) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    return 0;

invalid:
    snprintf(err, errsize, "invalid --url %s: expected http://ADDRESS:PORT with a numeric "
             "address, e.g. http://127.0.0.1:8080", url);
    return -1;
}


static void http_close(struct http_client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}


static void http_free(struct http_client *c)
{
    http_close(c);
    free(c->buf);
    c->buf = NULL;
}


static int http_connect(struct http_client *c)
{
    struct timeval tv = {.tv_sec = HTTP_TIMEOUT_S};
    int one = 1;

    c->fd = socket(c->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&c->addr, c->addr_len) != 0) {
        http_close(c);
        return -1;
    }
    return 0;
}


/* Content-Length of a response head (NUL-terminated), or -1 when it has none. */
static int64_t content_length(const char *head)
{
    static const char name[] = "\r\ncontent-length:";

    for (const char *p = head; (p = strchr(p, '\r')) != NULL; p++) {
        if (!vt_strncaseeq(p, name, sizeof name - 1))
            continue;
        const char *v = p + sizeof name - 1;
        while (*v == ' ')
            v++;
        int64_t len = 0;
        for (; *v >= '0' && *v <= '9' && len < HTTP_RESPONSE_MAX; v++)
            len = len * 10 + (*v - '0');
        return len;
    }
    return -1;
}


/* One request and its response on the open connection. */
static int http_exchange(struct http_client *c, const char *path, int *status,
                         const char **body, size_t *body_len)
{
    char request[HTTP_REQUEST_MAX];
    int len = snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n",
                       path, c->host, c->auth);
    size_t have = 0;
    char *head_end = NULL;

    if (len < 0 || (size_t)len >= sizeof request)
        return -1;
    for (size_t sent = 0; sent < (size_t)len;) {
        ssize_t w = send(c->fd, request + sent, (size_t)len - sent, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        sent += (size_t)w;
    }

    while (head_end == NULL) {
        ssize_t r = recv(c->fd, c->buf + have, HTTP_RESPONSE_MAX - have, 0);
        if (r <= 0)
            return -1;
        have += (size_t)r;
        c->buf[have] = '\0';
        head_end = strstr(c->buf, "\r\n\r\n");
        if (head_end == NULL && have == HTTP_RESPONSE_MAX)
            return -1;
    }
    *head_end = '\0';
    if (sscanf(c->buf, "HTTP/1.%*d %d", status) != 1)
        return -1;
    int64_t length = content_length(c->buf);
    size_t head_len = (size_t)(head_end - c->buf) + 4;
    if (length < 0 || head_len + (size_t)length > HTTP_RESPONSE_MAX)
        return -1;
    while (have < head_len + (size_t)length) {
        ssize_t r = recv(c->fd, c->buf + have, head_len + (size_t)length - have, 0);
        if (r <= 0)
            return -1;
        have += (size_t)r;
    }
    /* A response this client did not ask for would shift every later one. */
    if (have != head_len + (size_t)length)
        return -1;
    c->buf[have] = '\0';
    *body = c->buf + head_len;
    *body_len = (size_t)length;
    return 0;
}


/* GET path; reconnects once when the kept-alive connection was closed. Returns 0 with
 * the status and the body (valid until the next request), or -1. */
static int http_get(struct http_client *c, const char *path, int *status, const char **body,
                    size_t *body_len)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        bool reused = c->fd >= 0;

        if (c->fd < 0 && http_connect(c) != 0)
            return -1;
        if (http_exchange(c, path, status, body, body_len) == 0)
            return 0;
        http_close(c);
        if (!reused)
            break;
    }
    return -1;
}


/* ---- vitrine's counters ---- */

static uint64_t metric_value(const char *line)
{
    const char *space = strrchr(line, ' ');
    double v = space != NULL ? strtod(space + 1, NULL) : 0;

    return v > 0 ? (uint64_t)v : 0;
}


static int read_counters(struct http_client *c, struct ingest_counters *out)
{
    static const char events[] = "vitrine_events_total{";
    static const char records[] = "vitrine_ingest_batch_records_total ";
    const char *body;
    size_t len;
    int status;

    if (http_get(c, "/metrics", &status, &body, &len) != 0 || status != 200)
        return -1;
    memset(out, 0, sizeof *out);
    for (const char *line = body; line != NULL && *line != '\0';) {
        const char *next = strchr(line, '\n');
        size_t line_len = next != NULL ? (size_t)(next - line) : strlen(line);
        char copy[512];

        if (line_len < sizeof copy && line[0] == 'v') {
            memcpy(copy, line, line_len);
            copy[line_len] = '\0';
            if (strncmp(copy, events, sizeof events - 1) == 0 &&
                strstr(copy, "outcome=\"applied\"}") != NULL)
                out->applied += metric_value(copy);
            else if (strncmp(copy, records, sizeof records - 1) == 0)
                out->records = metric_value(copy);
        }
        line = next != NULL ? next + 1 : NULL;
    }
    return 0;
}


/* ---- Kafka ---- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (atomic_fetch_add(&delivery_failures, 1) == 0)
            fprintf(stderr, "bench_ingest: delivery failed: %s (further failures are "
                    "counted in produce_failed)\n", rd_kafka_err2str(msg->err));
    }
}


static rd_kafka_t *producer_new(const char *brokers, const char *linger_ms, char *err,
                                size_t errsize)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *settings[][2] = {
        {"bootstrap.servers", brokers}, {"acks", "all"}, {"enable.idempotence", "true"},
        {"linger.ms", linger_ms}, {"queue.buffering.max.messages", "200000"},
    };

    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], err, errsize) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errsize);
    if (rk == NULL)
        rd_kafka_conf_destroy(conf);
    return rk;
}


static int produce(rd_kafka_t *rk, const char *topic, const char *key, size_t key_len,
                   const char *value, size_t value_len)
{
    for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY((void *)key, key_len), RD_KAFKA_V_VALUE((void *)value, value_len),
            RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return 0;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            fprintf(stderr, "bench_ingest: produce to %s failed: %s\n", topic,
                    rd_kafka_err2str(e));
            return -1;
        }
        rd_kafka_poll(rk, 1);
    }
}


/* ---- probes (the probe thread) ---- */

/* Produce one probe event and poll until its session is known. Returns the latency in
 * ms, or -1 when it was not visible within PROBE_TIMEOUT_MS or could not be produced. */
static double run_probe(struct probe_state *ps)
{
    uint64_t n = atomic_fetch_add(&ps->count, 1);
    char session[VT_ID_MAX + 1], value[512], path[256], stamp[40];
    const char *body;
    size_t body_len;
    int status;

    snprintf(session, sizeof session, "bench-probe-%ld-%" PRIu64, (long)getpid(), n);
    vt_time_format_iso8601(vt_now_ms(), stamp, sizeof stamp);
    int len = snprintf(value, sizeof value,
                       "{\"type\":\"product_view\",\"session_id\":\"%s\",\"ts\":\"%s\","
                       "\"products\":[{\"id\":\"%s\"}]}", session, stamp, ps->product);
    snprintf(path, sizeof path, "/v1/sessions/%s/segment", session);
    if (len < 0 || (size_t)len >= sizeof value)
        return -1;

    uint64_t started = vt_monotonic_ns();
    if (produce(ps->producer, ps->opt->topic, session, strlen(session), value, (size_t)len) != 0)
        return -1;
    while (vt_monotonic_ns() - started < (uint64_t)PROBE_TIMEOUT_MS * 1000000u) {
        rd_kafka_poll(ps->producer, 0);
        if (http_get(&ps->http, path, &status, &body, &body_len) == 0 && status == 200 &&
            memmem(body, body_len, "\"known\":true", 12) != NULL)
            return (double)(vt_monotonic_ns() - started) / 1e6;
        sleep_us(PROBE_POLL_US);
    }
    return -1;
}


static void probe_record(struct probe_set *set, double ms)
{
    if (ms < 0) {
        set->lost++;
        ms = PROBE_TIMEOUT_MS;
    }
    if (set->n < set->cap)
        set->ms[set->n++] = ms;
}


static void *probe_thread(void *arg)
{
    struct probe_state *ps = arg;
    uint64_t interval_ns = (uint64_t)ps->opt->probe_interval_ms * 1000000u;

    while (!atomic_load(&ps->stop)) {
        int phase = atomic_load(&ps->phase);
        uint64_t started = vt_monotonic_ns();

        if (phase == PHASE_IDLE) {
            sleep_us(10000);
            continue;
        }
        probe_record(&ps->sets[phase], run_probe(ps));
        uint64_t spent = vt_monotonic_ns() - started;
        if (spent < interval_ns)
            sleep_us((int64_t)(interval_ns - spent) / 1000);
    }
    return NULL;
}


/* Wait until /readyz returns 200 and one probe is visible. */
static int warm_up(struct probe_state *ps, struct http_client *metrics)
{
    uint64_t started = vt_monotonic_ns();
    const char *body;
    size_t len;
    int status = 0;

    while (http_get(metrics, "/readyz", &status, &body, &len) != 0 || status != 200) {
        if (elapsed_s(started) * 1000 > WARMUP_TIMEOUT_MS) {
            fprintf(stderr, "bench_ingest: vitrine at %s is not ready after %d s (last "
                    "status %d)\n", ps->opt->url, WARMUP_TIMEOUT_MS / 1000, status);
            return -1;
        }
        sleep_us(200000);
    }
    while (elapsed_s(started) * 1000 < WARMUP_TIMEOUT_MS) {
        double ms = run_probe(ps);
        if (ms >= 0) {
            fprintf(stderr, "bench_ingest: warm-up probe visible after %.1f ms\n", ms);
            return 0;
        }
    }
    fprintf(stderr, "bench_ingest: no probe event became visible within %d s; is vitrine "
            "consuming topic %s with profile.key=session?\n", WARMUP_TIMEOUT_MS / 1000,
            ps->opt->topic);
    return -1;
}


/* ---- load ---- */

struct load {
    const struct options *opt;
    rd_kafka_t *producer;
    const struct record *recs;
    long n_recs;
    long next;      /* index of the next record */
    uint64_t pass;  /* passes over the file completed */
    uint64_t produced;
    char *message;  /* LINE_MAX_BYTES + SESSION_SUFFIX_MAX bytes */
};

/* Produce the next record, with the pass's session suffix. */
static int produce_next(struct load *ld)
{
    const struct record *r = &ld->recs[ld->next];
    char key[VT_ID_MAX + SESSION_SUFFIX_MAX + 1];
    char suffix[SESSION_SUFFIX_MAX];
    int suffix_len = snprintf(suffix, sizeof suffix, "-b%ldp%" PRIu64, (long)getpid(),
                              ld->pass);
    int rc;

    if (r->session_end == SIZE_MAX || r->key_len + (size_t)suffix_len > VT_ID_MAX) {
        /* No session id to rename: produce as it is. */
        rc = produce(ld->producer, ld->opt->topic, r->key, r->key_len, r->value,
                     r->value_len);
    } else {
        memcpy(key, r->key, r->key_len);
        memcpy(key + r->key_len, suffix, (size_t)suffix_len);
        memcpy(ld->message, r->value, r->session_end);
        memcpy(ld->message + r->session_end, suffix, (size_t)suffix_len);
        memcpy(ld->message + r->session_end + suffix_len, r->value + r->session_end,
               r->value_len - r->session_end);
        rc = produce(ld->producer, ld->opt->topic, key, r->key_len + (size_t)suffix_len,
                     ld->message, r->value_len + (size_t)suffix_len);
    }
    if (rc != 0)
        return -1;
    ld->produced++;
    if (++ld->next == ld->n_recs) {
        ld->next = 0;
        ld->pass++;
    }
    return 0;
}


/* Produce for ramp_s + seconds: at most `rate` records per second (0: no limit), and
 * never more than max_ahead beyond what vitrine consumed. Fills *first and *last with the
 * counters read after the ramp-up and at the end, and the time between them in
 * *window_s. */
static int run_load(struct load *ld, struct http_client *metrics, double ramp_s,
                    int64_t seconds, double rate, struct ingest_counters *first,
                    struct ingest_counters *last, double *window_s)
{
    struct ingest_counters now;
    uint64_t started = vt_monotonic_ns();
    uint64_t window_start = 0;
    uint64_t produced_base = ld->produced;
    uint64_t last_read = 0;

    if (read_counters(metrics, &now) != 0) {
        fprintf(stderr, "bench_ingest: cannot read %s/metrics\n", ld->opt->url);
        return -1;
    }
    /* Consumed records are counted from here; earlier ones are not this run's backlog. */
    uint64_t consumed_base = now.records;
    uint64_t consumed = 0;
    double next_report = 1;

    while (elapsed_s(started) < ramp_s + (double)seconds) {
        if (vt_monotonic_ns() - last_read >= (uint64_t)METRICS_INTERVAL_MS * 1000000u) {
            if (read_counters(metrics, &now) != 0) {
                fprintf(stderr, "bench_ingest: cannot read %s/metrics\n", ld->opt->url);
                return -1;
            }
            last_read = vt_monotonic_ns();
            consumed = now.records - consumed_base;
            if (window_start == 0 && elapsed_s(started) >= ramp_s) {
                *first = now;
                window_start = last_read;
            }
            if (elapsed_s(started) >= next_report) {
                fprintf(stderr, "bench_ingest: %.0f s: produced %" PRIu64 ", consumed %"
                        PRIu64 ", applied %" PRIu64 " in total\n", elapsed_s(started),
                        ld->produced - produced_base, consumed, now.applied);
                next_report += 1;
            }
        }

        uint64_t produced = ld->produced - produced_base;
        uint64_t allowed = consumed + (uint64_t)ld->opt->max_ahead > produced
                               ? consumed + (uint64_t)ld->opt->max_ahead - produced : 0;
        if (rate > 0) {
            double due = rate * elapsed_s(started);
            uint64_t paced = due > (double)produced ? (uint64_t)(due - (double)produced) : 0;
            if (paced < allowed)
                allowed = paced;
        }
        if (allowed > PRODUCE_CHUNK)
            allowed = PRODUCE_CHUNK;
        for (uint64_t i = 0; i < allowed; i++) {
            if (produce_next(ld) != 0)
                return -1;
        }
        rd_kafka_poll(ld->producer, 0);
        if (allowed == 0)
            sleep_us(1000);
    }

    if (read_counters(metrics, last) != 0) {
        fprintf(stderr, "bench_ingest: cannot read %s/metrics\n", ld->opt->url);
        return -1;
    }
    if (window_start == 0) {
        *first = now;
        window_start = last_read;
    }
    *window_s = (double)(vt_monotonic_ns() - window_start) / 1e9;
    return 0;
}


/* ---- command line ---- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench_ingest --brokers LIST --url http://ADDRESS:PORT --records FILE\n"
            "                    [--topic NAME] [--seconds N] [--ramp-seconds N]\n"
            "                    [--latency-seconds N]\n"
            "                    [--latency-rate N] [--max-ahead N] [--probe-interval-ms N]\n"
            "                    [--token TOKEN]\n"
            "       bench_ingest --print-settings\n"
            "  --brokers LIST           Kafka bootstrap servers vitrine consumes from\n"
            "  --url URL                vitrine's HTTP address\n"
            "  --records FILE           key<TAB>value lines (vitrine-replay --dry-run)\n"
            "  --topic NAME             vitrine's kafka.topic (default events)\n"
            "  --seconds N              measured part of the throughput phase in seconds\n"
            "                           (default 60)\n"
            "  --ramp-seconds N         load before the measured part, not counted\n"
            "                           (default 5)\n"
            "  --latency-seconds N      latency phase in seconds (default 20)\n"
            "  --latency-rate N         records per second in the latency phase (default:\n"
            "                           half the measured rate)\n"
            "  --max-ahead N            records produced but not yet consumed (default 5000)\n"
            "  --probe-interval-ms N    time between probe starts in ms (default 100)\n"
            "  --token TOKEN            bearer token for the storefront endpoints\n"
            "  --print-settings         print vitrine's low-latency consumer settings as\n"
            "                           shell assignments and exit\n");
}


static int parse_options(int argc, char **argv, struct options *opt)
{
    struct {
        const char *name;
        int64_t *value;
        int64_t min, max;
    } numbers[] = {
        {"--seconds", &opt->seconds, 1, 86400},
        {"--ramp-seconds", &opt->ramp_seconds, 0, 3600},
        {"--latency-seconds", &opt->latency_seconds, 0, 86400},
        {"--latency-rate", &opt->latency_rate, 0, 10000000},
        {"--max-ahead", &opt->max_ahead, 1, 10000000},
        {"--probe-interval-ms", &opt->probe_interval_ms, 1, 60000},
    };
    struct {
        const char *name;
        const char **value;
    } strings[] = {
        {"--brokers", &opt->brokers}, {"--url", &opt->url}, {"--records", &opt->records},
        {"--topic", &opt->topic}, {"--token", &opt->token},
    };

    /* Every option but --help takes a value. */
    for (int i = 1; i < argc; i += 2) {
        bool known = false;

        if (strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_ingest: missing value for %s\n", argv[i]);
            return -1;
        }
        for (size_t k = 0; k < sizeof numbers / sizeof numbers[0] && !known; k++) {
            if (strcmp(argv[i], numbers[k].name) != 0)
                continue;
            known = true;
            if (vt_parse_int64(argv[i + 1], numbers[k].min, numbers[k].max,
                               numbers[k].value) != 0) {
                fprintf(stderr, "bench_ingest: invalid %s %s: expected an integer from %"
                        PRId64 " to %" PRId64 "\n", argv[i], argv[i + 1], numbers[k].min,
                        numbers[k].max);
                return -1;
            }
        }
        for (size_t k = 0; k < sizeof strings / sizeof strings[0] && !known; k++) {
            if (strcmp(argv[i], strings[k].name) == 0) {
                known = true;
                *strings[k].value = argv[i + 1];
            }
        }
        if (!known) {
            fprintf(stderr, "bench_ingest: unknown option %s (see --help)\n", argv[i]);
            return -1;
        }
    }
    if (opt->brokers == NULL || opt->url == NULL || opt->records == NULL) {
        fprintf(stderr, "bench_ingest: --brokers, --url and --records are required (see "
                "--help)\n");
        return -1;
    }
    return 0;
}


static void print_probe_figures(const char *prefix, struct probe_set *set)
{
    qsort(set->ms, set->n, sizeof set->ms[0], compare_double);
    printf(" %sp50_ms=%.2f %sp99_ms=%.2f", prefix, percentile(set->ms, set->n, 50), prefix,
           percentile(set->ms, set->n, 99));
    if (strcmp(prefix, "e2p_") == 0)
        printf(" e2p_max_ms=%.2f", set->n > 0 ? set->ms[set->n - 1] : 0);
    printf(" %sprobes=%zu %slost=%zu", prefix, set->n, prefix, set->lost);
}


int main(int argc, char **argv)
{
    struct options opt = {.topic = "events", .seconds = 60, .ramp_seconds = 5,
                          .latency_seconds = 20, .max_ahead = 5000,
                          .probe_interval_ms = 100};
    static struct probe_state ps;
    struct http_client metrics = {.fd = -1};
    struct record *recs = NULL;
    struct load ld = {0};
    char err[512], product[VT_PRODUCT_ID_MAX + 1];
    pthread_t thread;
    bool thread_started = false;
    int status = 1;
    long n_recs = 0;

    ps.http.fd = -1;
    if (argc == 2 && strcmp(argv[1], "--print-settings") == 0) {
        printf("VITRINE_INGEST_BATCH_WAIT_MS=5\n"
               "VITRINE_KAFKA_CONSUMER_PROPERTIES=fetch.wait.max.ms=5\n");
        return 0;
    }
    if (parse_options(argc, argv, &opt) != 0)
        return 2;
    n_recs = read_records(opt.records, &recs, err, sizeof err);
    if (n_recs < 0) {
        fprintf(stderr, "bench_ingest: %s\n", err);
        return 2;
    }
    if (!find_product(recs, n_recs, product, sizeof product)) {
        fprintf(stderr, "bench_ingest: no record of %s has \"products\":[{\"id\":...}] for the "
                "probe events; use vitrine-replay --dry-run --format canonical\n", opt.records);
        goto out;
    }
    if (http_init(&metrics, opt.url, opt.token, err, sizeof err) != 0 ||
        http_init(&ps.http, opt.url, opt.token, err, sizeof err) != 0) {
        fprintf(stderr, "bench_ingest: %s\n", err);
        status = 2;
        goto out;
    }

    ps.opt = &opt;
    ps.product = product;
    ld.opt = &opt;
    ld.recs = recs;
    ld.n_recs = n_recs;
    ld.message = malloc(LINE_MAX_BYTES + SESSION_SUFFIX_MAX);
    ps.producer = producer_new(opt.brokers, "0", err, sizeof err);
    ld.producer = ps.producer != NULL ? producer_new(opt.brokers, "5", err, sizeof err) : NULL;
    if (ld.producer == NULL || ld.message == NULL) {
        fprintf(stderr, "bench_ingest: cannot create the Kafka producers: %s\n", err);
        goto out;
    }
    size_t probes_max = (size_t)((opt.ramp_seconds + opt.seconds + opt.latency_seconds +
                                  LATENCY_RAMP_S) * 1000 /
                                 opt.probe_interval_ms) + 16;
    for (int p = 0; p < PHASE_COUNT; p++) {
        ps.sets[p].cap = probes_max;
        ps.sets[p].ms = calloc(probes_max, sizeof(double));
        if (ps.sets[p].ms == NULL) {
            fprintf(stderr, "bench_ingest: out of memory\n");
            goto out;
        }
    }

    fprintf(stderr, "bench_ingest: %ld records from %s; probe product %s\n", n_recs,
            opt.records, product);
    if (warm_up(&ps, &metrics) != 0)
        goto out;
    if (pthread_create(&thread, NULL, probe_thread, &ps) != 0) {
        fprintf(stderr, "bench_ingest: cannot start the probe thread\n");
        goto out;
    }
    thread_started = true;

    struct ingest_counters first, last, lat_first, lat_last;
    double window_s, lat_window_s = 0;
    fprintf(stderr, "bench_ingest: throughput phase, %" PRId64 " s, at most %" PRId64
            " records ahead\n", opt.seconds, opt.max_ahead);
    atomic_store(&ps.phase, PHASE_SATURATED);
    if (run_load(&ld, &metrics, (double)opt.ramp_seconds, opt.seconds, 0, &first, &last,
                 &window_s) != 0)
        goto out;
    double rate = window_s > 0 ? (double)(last.applied - first.applied) / window_s : 0;
    fprintf(stderr, "bench_ingest: applied %" PRIu64 " events in %.1f s: %.0f/s\n",
            last.applied - first.applied, window_s, rate);

    double latency_rate = opt.latency_rate > 0 ? (double)opt.latency_rate : rate / 2;
    double latency_applied = 0;
    atomic_store(&ps.phase, PHASE_IDLE);
    if (opt.latency_seconds > 0 && latency_rate >= 1) {
        /* Let the backlog of the throughput phase drain first. */
        sleep_us((int64_t)((double)opt.max_ahead / (rate > 1 ? rate : 1) * 1e6) + 500000);
        fprintf(stderr, "bench_ingest: latency phase, %" PRId64 " s at %.0f records/s\n",
                opt.latency_seconds, latency_rate);
        atomic_store(&ps.phase, PHASE_LATENCY);
        if (run_load(&ld, &metrics, LATENCY_RAMP_S, opt.latency_seconds, latency_rate,
                     &lat_first, &lat_last, &lat_window_s) != 0)
            goto out;
        atomic_store(&ps.phase, PHASE_IDLE);
        if (lat_window_s > 0)
            latency_applied = (double)(lat_last.applied - lat_first.applied) / lat_window_s;
    }
    atomic_store(&ps.stop, true);
    pthread_join(thread, NULL);
    thread_started = false;

    rd_kafka_flush(ld.producer, 10000);
    rd_kafka_flush(ps.producer, 10000);
    printf("result: ingest_events_per_s=%.0f ingest_applied=%" PRIu64 " ingest_seconds=%.1f "
           "ingest_max_ahead=%" PRId64 " latency_rate_per_s=%.0f latency_applied_per_s=%.0f",
           rate, last.applied - first.applied, window_s, opt.max_ahead, latency_rate,
           latency_applied);
    print_probe_figures("e2p_", &ps.sets[PHASE_LATENCY]);
    print_probe_figures("saturated_", &ps.sets[PHASE_SATURATED]);
    printf(" produce_failed=%" PRIu64 "\n", (uint64_t)atomic_load(&delivery_failures));
    status = 0;

out:
    if (thread_started) {
        atomic_store(&ps.stop, true);
        pthread_join(thread, NULL);
    }
    if (ld.producer != NULL)
        rd_kafka_destroy(ld.producer);
    if (ps.producer != NULL)
        rd_kafka_destroy(ps.producer);
    for (int p = 0; p < PHASE_COUNT; p++)
        free(ps.sets[p].ms);
    http_free(&metrics);
    http_free(&ps.http);
    free(ld.message);
    for (long i = 0; i < n_recs; i++)
        free(recs[i].key);
    free(recs);
    return status;
}
