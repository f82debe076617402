/*
 * vitrine-evaluate: the Kafka producer and the HTTP client of a running vitrine (see
 * tools/evaluate_vitrine.h).
 */
#include "evaluate_vitrine.h"

#include <cJSON.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <inttypes.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "vitrine/jsonw.h"
#include "vitrine/limits.h"
#include "vitrine/log.h"
#include "vitrine/util.h"

/* Largest response read: the /metrics page of vitrine is at most 1 MiB. */
#define RESPONSE_MAX (4 * 1024 * 1024)
/* Request line and headers; the path is at most 8 KiB, as vitrine accepts. */
#define REQUEST_MAX (8192 + 512)
#define PATH_MAX_LEN 8192
#define EVENT_JSON_MAX 2048
#define HOST_MAX 256
#define FAILURES_LOGGED_MAX 10
#define POLL_INTERVAL_NS 5000000L

struct vt_eval_vitrine {
    rd_kafka_t *producer;
    char topic[VT_NAME_MAX + 1];
    uint64_t produced;
    uint64_t failed;
    char host[HOST_MAX];
    char port[8];
    int fd; /* keep-alive connection, -1 when closed */
    char http_error[256]; /* why the last request failed */
    uint64_t recommend_failures;
    int timeout_ms;
    int64_t time_shift_ms;
    struct vt_buf response;
};


/* ---- Kafka --------------------------------------------------------------------------- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *message, void *opaque)
{
    struct vt_eval_vitrine *v = opaque;

    (void)rk;
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    v->failed++;
    if (v->failed <= FAILURES_LOGGED_MAX)
        VT_ERROR("EVAL", "delivery to %s [%d] failed: %s", rd_kafka_topic_name(message->rkt),
                 (int)message->partition, rd_kafka_err2str(message->err));
}


static void log_from_rdkafka(const rd_kafka_t *rk, int level, const char *facility,
                             const char *message)
{
    (void)rk;
    VT_LOG(vt_log_level_from_syslog(level), "EVAL", "librdkafka %s: %s", facility, message);
}


static rd_kafka_t *producer_create(struct vt_eval_vitrine *v, const char *brokers, char *err,
                                   size_t errsize)
{
    static const char *const properties[][2] = {
        {"acks", "all"},
        {"enable.idempotence", "true"},
        {"linger.ms", "2"},
    };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    rd_kafka_t *rk;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof errstr) !=
        RD_KAFKA_CONF_OK) {
        snprintf(err, errsize, "invalid --brokers '%s': %s", brokers, errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    for (size_t i = 0; i < sizeof properties / sizeof properties[0]; i++) {
        if (rd_kafka_conf_set(conf, properties[i][0], properties[i][1], errstr,
                              sizeof errstr) != RD_KAFKA_CONF_OK) {
            snprintf(err, errsize, "librdkafka rejected %s=%s: %s", properties[i][0],
                     properties[i][1], errstr);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    rd_kafka_conf_set_opaque(conf, v);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_log_cb(conf, log_from_rdkafka);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (rk == NULL) {
        snprintf(err, errsize, "cannot create the Kafka producer: %s", errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk;
}


static const char *canonical_type(enum vt_eval_kind kind)
{
    switch (kind) {
    case VT_EVAL_VIEW:
        return "product_view";
    case VT_EVAL_CART:
        return "add_to_cart";
    case VT_EVAL_REMOVE:
        return "remove_from_cart";
    case VT_EVAL_PURCHASE:
        return "purchase";
    }
    return "unknown";
}


int vt_eval_vitrine_produce(struct vt_eval_vitrine *v, const struct vt_eval_dataset *d,
                            size_t index)
{
    const struct vt_eval_event *e = &d->events[index];
    const char *session = vt_eval_names_get(&d->session_ids, e->session);
    char json[EVENT_JSON_MAX];
    struct vt_jsonw w;
    int64_t len;
    rd_kafka_resp_err_t err;

    vt_jsonw_init(&w, json, sizeof json);
    vt_jsonw_object_begin(&w);
    vt_jsonw_key(&w, "type");
    vt_jsonw_string(&w, canonical_type(e->kind));
    vt_jsonw_key(&w, "session_id");
    vt_jsonw_string(&w, session);
    if (e->user != VT_EVAL_NONE) {
        vt_jsonw_key(&w, "user_id");
        vt_jsonw_string(&w, vt_eval_names_get(&d->user_ids, e->user));
    }
    vt_jsonw_key(&w, "ts");
    vt_jsonw_int(&w, e->time_ms + v->time_shift_ms);
    vt_jsonw_key(&w, "products");
    vt_jsonw_array_begin(&w);
    vt_jsonw_object_begin(&w);
    vt_jsonw_key(&w, "id");
    vt_jsonw_string(&w, vt_eval_names_get(&d->item_ids, e->item));
    if (e->price >= 0) {
        vt_jsonw_key(&w, "price");
        vt_jsonw_double(&w, e->price);
    }
    if (e->kind != VT_EVAL_VIEW) {
        vt_jsonw_key(&w, "quantity");
        vt_jsonw_int(&w, 1);
    }
    vt_jsonw_object_end(&w);
    vt_jsonw_array_end(&w);
    vt_jsonw_object_end(&w);
    len = vt_jsonw_finish(&w);
    if (len < 0) {
        VT_ERROR("EVAL", "event %zu of session %s does not fit %d bytes of JSON", index,
                 session, EVENT_JSON_MAX);
        return -1;
    }

    for (;;) {
        err = rd_kafka_producev(v->producer, RD_KAFKA_V_TOPIC(v->topic),
                                RD_KAFKA_V_KEY(session, strlen(session)),
                                RD_KAFKA_V_VALUE(json, (size_t)len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(v->producer, 100);
    }
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        VT_ERROR("EVAL", "cannot produce to %s: %s", v->topic, rd_kafka_err2str(err));
        return -1;
    }
    v->produced++;
    rd_kafka_poll(v->producer, 0);
    return 0;
}


int vt_eval_vitrine_flush(struct vt_eval_vitrine *v)
{
    rd_kafka_resp_err_t err = rd_kafka_flush(v->producer, v->timeout_ms);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        VT_ERROR("EVAL", "%d events not delivered after %d ms: %s",
                 rd_kafka_outq_len(v->producer), v->timeout_ms, rd_kafka_err2str(err));
        return -1;
    }
    if (v->failed > 0) {
        VT_ERROR("EVAL", "%llu events could not be delivered to Kafka",
                 (unsigned long long)v->failed);
        return -1;
    }
    return 0;
}


uint64_t vt_eval_vitrine_produced(const struct vt_eval_vitrine *v)
{
    return v->produced;
}


/* ---- HTTP ---------------------------------------------------------------------------- */

/* Split http://HOST[:PORT][/] into host and port. Returns 0, or -1 when invalid. */
static int parse_url(const char *url, char *host, size_t hostsize, char *port,
                     size_t portsize)
{
    const char *p, *colon, *end;
    size_t host_len;
    int64_t number;

    if (strncmp(url, "http://", 7) != 0)
        return -1;
    p = url + 7;
    end = p + strlen(p);
    if (end > p && end[-1] == '/')
        end--;
    colon = memchr(p, ':', (size_t)(end - p));
    host_len = (size_t)((colon != NULL ? colon : end) - p);
    if (host_len == 0 || host_len >= hostsize)
        return -1;
    memcpy(host, p, host_len);
    host[host_len] = '\0';

    if (colon == NULL) {
        vt_strlcpy(port, "80", portsize);
        return 0;
    }
    if ((size_t)(end - colon - 1) == 0 || (size_t)(end - colon - 1) >= portsize)
        return -1;
    memcpy(port, colon + 1, (size_t)(end - colon - 1));
    port[end - colon - 1] = '\0';
    return vt_parse_int64(port, 1, 65535, &number);
}


static void connection_close(struct vt_eval_vitrine *v)
{
    if (v->fd >= 0)
        close(v->fd);
    v->fd = -1;
}


static int connection_open(struct vt_eval_vitrine *v)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *list, *a;
    struct timeval timeout = {.tv_sec = v->timeout_ms / 1000,
                              .tv_usec = (v->timeout_ms % 1000) * 1000};
    int enable = 1;
    int connect_errno = 0;
    int rc = getaddrinfo(v->host, v->port, &hints, &list);

    if (rc != 0) {
        snprintf(v->http_error, sizeof v->http_error, "cannot resolve the host: %s",
                 gai_strerror(rc));
        return -1;
    }
    for (a = list; a != NULL; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype, a->ai_protocol);

        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &enable, sizeof enable);
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            v->fd = fd;
            break;
        }
        connect_errno = errno;
        close(fd);
    }
    freeaddrinfo(list);
    if (v->fd < 0) {
        snprintf(v->http_error, sizeof v->http_error,
                 "cannot connect: %s; is vitrine running there?", strerror(connect_errno));
        return -1;
    }
    return 0;
}


static int send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}


/* Value of header `name` in head[0..len) (the status line and headers), or NULL. */
static const char *header_value(const char *head, size_t len, const char *name,
                                size_t *value_len)
{
    size_t name_len = strlen(name);
    const char *line = memchr(head, '\n', len);

    while (line != NULL && (size_t)(line + 1 - head) < len) {
        const char *start = line + 1;
        const char *next = memchr(start, '\n', len - (size_t)(start - head));
        size_t line_len = next != NULL ? (size_t)(next - start) : len - (size_t)(start - head);

        if (line_len > name_len && start[name_len] == ':' &&
            vt_strncaseeq(start, name, name_len)) {
            const char *value = start + name_len + 1;
            size_t n = line_len - name_len - 1;

            while (n > 0 && (*value == ' ' || *value == '\t')) {
                value++;
                n--;
            }
            while (n > 0 && (value[n - 1] == '\r' || value[n - 1] == ' '))
                n--;
            *value_len = n;
            return value;
        }
        line = next;
    }
    return NULL;
}


/* Read one response into v->response. Returns the status code and sets *body and
 * *body_len, or -1 when the connection failed or the response is malformed. */
static int read_response(struct vt_eval_vitrine *v, const char **body, size_t *body_len)
{
    struct vt_buf *r = &v->response;
    size_t head_len = 0;
    size_t content_length = SIZE_MAX;
    bool until_close = false;
    char chunk[16384];
    int status = -1;

    vt_buf_reset(r);
    for (;;) {
        ssize_t n;

        if (head_len > 0 && !until_close && r->len - head_len >= content_length)
            break;
        n = recv(v->fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(v->http_error, sizeof v->http_error, "receiving failed: %s",
                     errno == EAGAIN ? "timed out" : strerror(errno));
            return -1;
        }
        if (n == 0) {
            if (head_len > 0 && until_close)
                break;
            snprintf(v->http_error, sizeof v->http_error, "the server closed the connection");
            return -1;
        }
        if (vt_buf_append(r, chunk, (size_t)n) != 0) {
            snprintf(v->http_error, sizeof v->http_error, "response larger than %d bytes",
                     RESPONSE_MAX);
            return -1;
        }
        if (head_len > 0 || r->len < 4)
            continue;

        /* Parse the status line and headers once they are complete. */
        const char *end = memmem(r->data, r->len, "\r\n\r\n", 4);
        const char *value;
        size_t value_len;
        char number[24];
        int64_t length;

        if (end == NULL)
            continue;
        head_len = (size_t)(end - r->data) + 4;
        if (head_len < 13 || strncmp(r->data, "HTTP/1.", 7) != 0 ||
            (r->data[12] != ' ' && r->data[12] != '\r')) {
            snprintf(v->http_error, sizeof v->http_error, "malformed status line");
            return -1;
        }
        memcpy(number, r->data + 9, 3);
        number[3] = '\0';
        if (vt_parse_int64(number, 100, 599, &length) != 0) {
            snprintf(v->http_error, sizeof v->http_error, "malformed status code %s", number);
            return -1;
        }
        status = (int)length;
        value = header_value(r->data, head_len, "Transfer-Encoding", &value_len);
        if (value != NULL) {
            snprintf(v->http_error, sizeof v->http_error,
                     "unsupported Transfer-Encoding %.*s", (int)(value_len < 32 ? value_len : 32),
                     value);
            return -1;
        }
        value = header_value(r->data, head_len, "Content-Length", &value_len);
        if (value == NULL) {
            until_close = true;
            continue;
        }
        if (value_len >= sizeof number)
            value_len = sizeof number - 1;
        memcpy(number, value, value_len);
        number[value_len] = '\0';
        if (vt_parse_int64(number, 0, RESPONSE_MAX, &length) != 0) {
            snprintf(v->http_error, sizeof v->http_error, "invalid Content-Length %s", number);
            return -1;
        }
        content_length = (size_t)length;
    }

    *body = r->data + head_len;
    *body_len = r->len - head_len;
    if (!until_close && *body_len > content_length)
        *body_len = content_length;
    if (until_close)
        connection_close(v);
    return status;
}


/* GET path. Returns the status and the body, or -1 with the reason in v->http_error. A
 * request on a kept-alive connection that the server closed meanwhile is sent once more. */
static int http_get(struct vt_eval_vitrine *v, const char *path, const char **body,
                    size_t *body_len)
{
    char request[REQUEST_MAX];
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.1\r\nHost: %s:%s\r\nAccept: application/json\r\n\r\n",
                     path, v->host, v->port);

    if (n < 0 || (size_t)n >= sizeof request) {
        snprintf(v->http_error, sizeof v->http_error, "request path too long (%zu bytes)",
                 strlen(path));
        return -1;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        bool reused = v->fd >= 0;
        int status;

        if (v->fd < 0 && connection_open(v) != 0)
            break;
        if (send_all(v->fd, request, (size_t)n) == 0) {
            status = read_response(v, body, body_len);
            if (status >= 0)
                return status;
        } else {
            snprintf(v->http_error, sizeof v->http_error, "sending failed: %s",
                     strerror(errno));
        }
        connection_close(v);
        if (!reused)
            break;
    }
    return -1;
}


/* Append s percent-encoded (RFC 3986 unreserved characters stay) to buf. */
static void append_escaped(struct vt_buf *buf, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
                     *p == '~';

        if (plain) {
            vt_buf_append(buf, p, 1);
        } else {
            char escaped[3] = {'%', hex[*p >> 4], hex[*p & 15]};

            vt_buf_append(buf, escaped, 3);
        }
    }
}


/* ---- vitrine's endpoints ------------------------------------------------------------- */

int vt_eval_vitrine_handled(struct vt_eval_vitrine *v, struct vt_eval_handled *out)
{
    static const char prefix[] = "vitrine_events_total{";
    const char *body;
    size_t len;
    int status = http_get(v, "/metrics", &body, &len);

    memset(out, 0, sizeof *out);
    if (status < 0) {
        VT_ERROR("EVAL", "GET http://%s:%s/metrics failed: %s", v->host, v->port,
                 v->http_error);
        return -1;
    }
    if (status != 200) {
        VT_ERROR("EVAL", "GET http://%s:%s/metrics returned %d", v->host, v->port, status);
        return -1;
    }

    for (const char *line = body; line < body + len;) {
        const char *next = memchr(line, '\n', (size_t)(body + len - line));
        size_t line_len = next != NULL ? (size_t)(next - line) : (size_t)(body + len - line);
        const char *space = line_len > 0 ? memrchr(line, ' ', line_len) : NULL;
        char number[32];
        double value;

        if (line_len > sizeof prefix - 1 && memcmp(line, prefix, sizeof prefix - 1) == 0 &&
            space != NULL && (size_t)(line + line_len - space - 1) < sizeof number) {
            size_t number_len = (size_t)(line + line_len - space - 1);

            memcpy(number, space + 1, number_len);
            number[number_len] = '\0';
            if (vt_parse_double(number, 0, 1e18, &value) == 0) {
                uint64_t count = (uint64_t)value;

                out->total += count;
                if (memmem(line, line_len, "outcome=\"applied\"", 17) != NULL)
                    out->applied += count;
                else if (memmem(line, line_len, "outcome=\"duplicate\"", 19) != NULL)
                    out->duplicate += count;
                else if (memmem(line, line_len, "outcome=\"skipped\"", 17) != NULL)
                    out->skipped += count;
                else if (memmem(line, line_len, "outcome=\"dead_letter\"", 21) != NULL)
                    out->dead_letter += count;
            }
        }
        line = next != NULL ? next + 1 : body + len;
    }
    return 0;
}


int vt_eval_vitrine_wait_handled(struct vt_eval_vitrine *v, uint64_t total, int timeout_ms)
{
    uint64_t started = vt_monotonic_ns();
    struct vt_eval_handled handled;

    for (;;) {
        struct timespec pause = {.tv_sec = 0, .tv_nsec = POLL_INTERVAL_NS};

        if (vt_eval_vitrine_handled(v, &handled) != 0)
            return -1;
        if (handled.total >= total)
            return 0;
        if (vt_monotonic_ns() - started > (uint64_t)timeout_ms * 1000000u) {
            VT_ERROR("EVAL", "vitrine handled %llu of %llu records within %d ms; see its log",
                     (unsigned long long)handled.total, (unsigned long long)total,
                     timeout_ms);
            return -1;
        }
        nanosleep(&pause, NULL);
    }
}


/* Fill out from a recommendations response body. Returns 0, or -1 when it is not the
 * expected JSON. */
static int parse_list(const char *body, size_t len, const struct vt_eval_names *items,
                      struct vt_eval_vitrine_list *out)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "items");
    const cJSON *strategy = cJSON_GetObjectItemCaseSensitive(root, "strategy");
    const cJSON *entry;

    if (root == NULL || !cJSON_IsArray(list)) {
        cJSON_Delete(root);
        return -1;
    }
    if (cJSON_IsString(strategy))
        vt_strlcpy(out->strategy, strategy->valuestring, sizeof out->strategy);
    cJSON_ArrayForEach(entry, list)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(entry, "product_id");

        if (out->n == VT_EVAL_K_MAX)
            break;
        out->items[out->n++] = cJSON_IsString(id)
                                   ? vt_eval_names_find(items, id->valuestring,
                                                        strlen(id->valuestring))
                                   : VT_EVAL_NONE;
    }
    cJSON_Delete(root);
    return 0;
}


int vt_eval_vitrine_recommend(struct vt_eval_vitrine *v, const char *session,
                              const char *product, size_t limit,
                              const struct vt_eval_names *items,
                              struct vt_eval_vitrine_list *out)
{
    struct vt_buf path;
    const char *body;
    size_t len;
    uint64_t started;
    int status;
    int rc = -1;

    memset(out, 0, sizeof *out);
    vt_buf_init(&path, PATH_MAX_LEN);
    vt_buf_appends(&path, "/v1/sessions/");
    append_escaped(&path, session);
    vt_buf_appends(&path, "/recommendations?placement=product&product=");
    append_escaped(&path, product);
    vt_buf_printf(&path, "&limit=%zu", limit < VT_EVAL_K_MAX ? limit : (size_t)VT_EVAL_K_MAX);
    if (path.overflow || path.data == NULL) {
        VT_ERROR("EVAL", "request path for session %s does not fit %d bytes", session,
                 PATH_MAX_LEN);
        vt_buf_free(&path);
        return -1;
    }

    started = vt_monotonic_ns();
    status = http_get(v, path.data, &body, &len);
    out->latency_ms = (double)(vt_monotonic_ns() - started) / 1e6;
    out->status = status > 0 ? status : 0;
    if (status == 200 && parse_list(body, len, items, out) == 0) {
        vt_buf_free(&path);
        return 0;
    }

    /* A failed request is scored as a miss; the first ones are logged, the rest counted. */
    v->recommend_failures++;
    if (v->recommend_failures <= FAILURES_LOGGED_MAX) {
        const char *more = v->recommend_failures == FAILURES_LOGGED_MAX
                               ? " (further failures are only counted)"
                               : "";

        if (status == 200)
            VT_ERROR("EVAL", "invalid response to GET %s: %.*s%s", path.data,
                     (int)(len < 200 ? len : 200), body, more);
        else if (status > 0)
            VT_ERROR("EVAL", "GET %s returned %d: %.*s%s", path.data, status,
                     (int)(len < 200 ? len : 200), body, more);
        else
            VT_ERROR("EVAL", "GET http://%s:%s%s failed: %s%s", v->host, v->port, path.data,
                     v->http_error, more);
    }
    vt_buf_free(&path);
    return rc;
}


/* ---- open and close ------------------------------------------------------------------ */

struct vt_eval_vitrine *vt_eval_vitrine_open(const struct vt_eval_vitrine_options *options,
                                             char *err, size_t errsize)
{
    struct vt_eval_vitrine *v = calloc(1, sizeof *v);

    if (v == NULL) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    v->fd = -1;
    v->timeout_ms = options->timeout_ms > 0 ? options->timeout_ms : 10000;
    v->time_shift_ms = options->time_shift_ms;
    vt_buf_init(&v->response, RESPONSE_MAX);
    if (parse_url(options->url, v->host, sizeof v->host, v->port, sizeof v->port) != 0) {
        snprintf(err, errsize, "invalid --vitrine '%s': expected http://HOST:PORT",
                 options->url);
        vt_eval_vitrine_close(v);
        return NULL;
    }
    if (vt_strlcpy(v->topic, options->topic, sizeof v->topic) >= sizeof v->topic) {
        snprintf(err, errsize, "invalid --topic '%s': longer than %d bytes", options->topic,
                 VT_NAME_MAX);
        vt_eval_vitrine_close(v);
        return NULL;
    }
    v->producer = producer_create(v, options->brokers, err, errsize);
    if (v->producer == NULL) {
        vt_eval_vitrine_close(v);
        return NULL;
    }
    return v;
}


void vt_eval_vitrine_close(struct vt_eval_vitrine *v)
{
    if (v == NULL)
        return;
    if (v->producer != NULL) {
        rd_kafka_flush(v->producer, v->timeout_ms);
        rd_kafka_destroy(v->producer);
    }
    connection_close(v);
    vt_buf_free(&v->response);
    free(v);
}


/* The value of one metric line, such as vitrine_live_refreshes_total{result="ok"}; -1 when
 * absent or on an HTTP error. */
static double read_metric(struct vt_eval_vitrine *v, const char *series)
{
    const char *body;
    size_t len, series_len = strlen(series);
    int status = http_get(v, "/metrics", &body, &len);

    if (status != 200)
        return -1;
    for (const char *line = body; line < body + len;) {
        const char *next = memchr(line, '\n', (size_t)(body + len - line));
        size_t line_len = next != NULL ? (size_t)(next - line) : (size_t)(body + len - line);

        if (line_len > series_len + 1 && memcmp(line, series, series_len) == 0 &&
            line[series_len] == ' ') {
            char number[32];
            size_t number_len = line_len - series_len - 1;
            double value;

            if (number_len < sizeof number) {
                memcpy(number, line + series_len + 1, number_len);
                number[number_len] = '\0';
                if (vt_parse_double(number, 0, 1e18, &value) == 0)
                    return value;
            }
        }
        line = next != NULL ? next + 1 : body + len;
    }
    return -1;
}


int vt_eval_vitrine_wait_refreshes(struct vt_eval_vitrine *v, uint64_t count, int timeout_ms)
{
    static const char series[] = "vitrine_live_refreshes_total{result=\"ok\"}";
    uint64_t started = vt_monotonic_ns();
    double base = read_metric(v, series);

    if (base < 0) {
        VT_ERROR("EVAL", "vitrine's /metrics has no %s", series);
        return -1;
    }
    for (;;) {
        double now = read_metric(v, series);
        if (now >= base + (double)count)
            return 0;
        if (vt_monotonic_ns() - started > (uint64_t)timeout_ms * 1000000u) {
            VT_ERROR("EVAL", "vitrine did not refresh its aggregates %" PRIu64 " times within "
                     "%d ms", count, timeout_ms);
            return -1;
        }
        struct timespec pause = {.tv_nsec = 20000000};
        nanosleep(&pause, NULL);
    }
}
