/*
 * Integration test harness (see harness.h).
 */
#include "harness.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vitrine/util.h"

extern char **environ;

void harness_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}


/* A port nothing listens on now: bind port 0 and read what the kernel chose. */
int harness_free_port(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t len = sizeof addr;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port;

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(fd >= 0, "socket: %s", strerror(errno));
    cr_assert(bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0, "bind: %s", strerror(errno));
    getsockname(fd, (struct sockaddr *)&addr, &len);
    port = ntohs(addr.sin_port);
    close(fd);
    return port;
}


pid_t harness_spawn(const char *path, char *const argv[], char *const env[],
                    const char *log_path)
{
    pid_t pid = fork();

    cr_assert(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        /* A failed assertion ends the test process without a clean stop; take the child
         * down with it. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        execvpe(path, argv, env);
        _exit(127);
    }
    return pid;
}


/* True when a redis-server on port replies PONG to PING. */
static bool redis_replies(int port)
{
    struct timeval tv = {.tv_sec = 1};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    bool up = false;

    if (c != NULL && !c->err) {
        redisReply *r = redisCommand(c, "PING");
        up = r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0;
        freeReplyObject(r);
    }
    redisFree(c);
    return up;
}


pid_t harness_start_redis(int port, const char *dir)
{
    char port_text[16], log_path[512];

    snprintf(port_text, sizeof port_text, "%d", port);
    snprintf(log_path, sizeof log_path, "%s/redis.log", dir != NULL ? dir : "/tmp");
    char *durable[] = {"redis-server", "--port", port_text, "--bind", "127.0.0.1", "--dir",
                       (char *)dir, "--appendonly", "yes", "--appendfsync", "always",
                       "--save", "", NULL};
    char *volatile_argv[] = {"redis-server", "--port", port_text, "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", NULL};
    pid_t pid = harness_spawn("redis-server", dir != NULL ? durable : volatile_argv, environ,
                              dir != NULL ? log_path : "/dev/null");

    for (int i = 0; i < 100; i++) {
        if (redis_replies(port))
            return pid;
        harness_sleep_ms(50);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_assert_fail("private redis-server on port %d did not start", port);
    return -1;
}


void harness_init(struct harness *h, const char *name)
{
    const char *redis = getenv("VITRINE_TEST_REDIS_PORT");
    const char *brokers = getenv("VITRINE_TEST_BROKERS");
    const char *work = getenv("VITRINE_TEST_WORK");
    int64_t port;

    memset(h, 0, sizeof *h);
    cr_assert(redis != NULL && brokers != NULL,
              "VITRINE_TEST_REDIS_PORT and VITRINE_TEST_BROKERS are not set; run the "
              "integration tests through tests/run.sh");
    cr_assert(vt_parse_int64(redis, 1, 65535, &port) == 0, "invalid VITRINE_TEST_REDIS_PORT");

    snprintf(h->name, sizeof h->name, "%s-%d", name, (int)getpid());
    snprintf(h->topic, sizeof h->topic, "events-%s", h->name);
    snprintf(h->dead_letter, sizeof h->dead_letter, "%s.dead-letter", h->topic);
    snprintf(h->group, sizeof h->group, "vitrine-%s", h->name);
    snprintf(h->prefix, sizeof h->prefix, "t%d:", (int)getpid());
    vt_strlcpy(h->brokers, brokers, sizeof h->brokers);
    h->redis_port = (int)port;
    h->http_port = harness_free_port();
    snprintf(h->log_path, sizeof h->log_path, "%s/%s.log", work ? work : "/tmp", h->name);
}


static void dump_log(const struct harness *h)
{
    char line[1024];
    FILE *f = fopen(h->log_path, "r");

    if (f == NULL)
        return;
    fprintf(stderr, "---- vitrine log %s ----\n", h->log_path);
    while (fgets(line, sizeof line, f) != NULL)
        fputs(line, stderr);
    fclose(f);
}


void harness_start(struct harness *h, const char *const *extra_env)
{
    char vars[16][512];
    char *env[256];
    size_t n = 0;
    pid_t pid;

    snprintf(vars[0], sizeof vars[0], "VITRINE_HTTP_PORT=%d", h->http_port);
    snprintf(vars[1], sizeof vars[1], "VITRINE_REDIS_PORT=%d", h->redis_port);
    snprintf(vars[2], sizeof vars[2], "VITRINE_KAFKA_BROKERS=%s", h->brokers);
    snprintf(vars[3], sizeof vars[3], "VITRINE_KAFKA_TOPIC=%s", h->topic);
    snprintf(vars[4], sizeof vars[4], "VITRINE_KAFKA_GROUP=%s", h->group);
    snprintf(vars[5], sizeof vars[5], "VITRINE_KAFKA_DEAD_LETTER_TOPIC=%s", h->dead_letter);
    snprintf(vars[6], sizeof vars[6], "VITRINE_REDIS_PREFIX=%s", h->prefix);
    snprintf(vars[7], sizeof vars[7], "VITRINE_CATALOG_PATH=%s/tests/data/catalog.jsonl",
             VITRINE_SOURCE_DIR);
    snprintf(vars[8], sizeof vars[8], "VITRINE_HTTP_OPENAPI_PATH=%s/openapi/openapi.yaml",
             VITRINE_SOURCE_DIR);
    snprintf(vars[9], sizeof vars[9], "VITRINE_HTTP_THREADS=2");
    snprintf(vars[10], sizeof vars[10], "VITRINE_LOG_LEVEL=info");
    /* librdkafka 2.0.2's mock broker lets a new member of a group wait for the previous
     * member's session timeout even after a clean close, so keep it short. */
    snprintf(vars[11], sizeof vars[11],
             "VITRINE_KAFKA_PROPERTIES=session.timeout.ms=6000,heartbeat.interval.ms=500");
    for (int i = 0; i < 12; i++)
        env[n++] = vars[i];
    for (size_t i = 0; extra_env != NULL && extra_env[i] != NULL && n < 200; i++)
        env[n++] = (char *)extra_env[i];
    /* Keep the sanitizer settings and PATH of the test process. */
    for (char **e = environ; *e != NULL && n < 250; e++) {
        if (strncmp(*e, "ASAN_", 5) == 0 || strncmp(*e, "UBSAN_", 6) == 0 ||
            strncmp(*e, "PATH=", 5) == 0 || strncmp(*e, "LSAN_", 5) == 0 ||
            strncmp(*e, "TSAN_", 5) == 0)
            env[n++] = *e;
    }
    env[n] = NULL;

    char *argv[] = {(char *)VITRINE_BINARY, NULL};
    pid = harness_spawn(VITRINE_BINARY, argv, env, h->log_path);
    h->pid = pid;

    for (int i = 0; i < 300; i++) {
        char *body = NULL;
        int status = harness_http(h, "GET", "/readyz", NULL, &body, NULL);
        free(body);
        if (status == 200)
            return;
        int wstatus;
        if (waitpid(pid, &wstatus, WNOHANG) == pid) {
            h->pid = 0;
            dump_log(h);
            cr_assert_fail("vitrine exited during start-up (status %d)", wstatus);
        }
        harness_sleep_ms(100);
    }
    dump_log(h);
    cr_assert_fail("vitrine did not become ready within 30 s");
}


void harness_stop(struct harness *h, int timeout_s)
{
    int wstatus = 0;

    if (h->pid <= 0)
        return;
    kill(h->pid, SIGTERM);
    for (int i = 0; i < timeout_s * 10; i++) {
        if (waitpid(h->pid, &wstatus, WNOHANG) == h->pid) {
            h->pid = 0;
            if (!(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0))
                dump_log(h);
            cr_assert(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0,
                      "vitrine did not exit cleanly after SIGTERM (wait status %d)", wstatus);
            return;
        }
        harness_sleep_ms(100);
    }
    kill(h->pid, SIGKILL);
    waitpid(h->pid, &wstatus, 0);
    h->pid = 0;
    dump_log(h);
    cr_assert_fail("vitrine did not stop within %d s of SIGTERM", timeout_s);
}


int harness_http(const struct harness *h, const char *method, const char *path,
                 const char *extra_headers, char **body, char **headers_out)
{
    return harness_http_body(h, method, path, extra_headers, NULL, body, headers_out);
}


int harness_http_body(const struct harness *h, const char *method, const char *path,
                      const char *extra_headers, const char *request_body, char **body,
                      char **headers_out)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)h->http_port)};
    struct vt_buf req, resp;
    char chunk[16384];
    ssize_t n;
    int fd, status = -1;

    *body = NULL;
    if (headers_out != NULL)
        *headers_out = NULL;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }

    vt_buf_init(&req, 1 << 20);
    vt_buf_printf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s",
                  method, path, extra_headers ? extra_headers : "");
    if (request_body != NULL)
        vt_buf_printf(&req, "Content-Length: %zu\r\n\r\n%s", strlen(request_body),
                      request_body);
    else
        vt_buf_appends(&req, "\r\n");
    if (write(fd, req.data, req.len) != (ssize_t)req.len) {
        vt_buf_free(&req);
        close(fd);
        return -1;
    }
    vt_buf_free(&req);

    vt_buf_init(&resp, 16 << 20);
    while ((n = read(fd, chunk, sizeof chunk)) > 0)
        vt_buf_append(&resp, chunk, (size_t)n);
    close(fd);
    if (resp.data == NULL) {
        vt_buf_free(&resp);
        return -1;
    }

    char *end = strstr(resp.data, "\r\n\r\n");
    if (strncmp(resp.data, "HTTP/1.1 ", 9) == 0 && end != NULL) {
        int64_t code;
        char digits[4] = {resp.data[9], resp.data[10], resp.data[11], '\0'};
        if (vt_parse_int64(digits, 100, 599, &code) == 0)
            status = (int)code;
        *body = strdup(end + 4);
        if (headers_out != NULL)
            *headers_out = strndup(resp.data, (size_t)(end - resp.data));
    }
    vt_buf_free(&resp);
    return status;
}


cJSON *harness_get_json(const struct harness *h, const char *path, int status)
{
    char *body = NULL;
    int got = harness_http(h, "GET", path, NULL, &body, NULL);
    cJSON *json;

    cr_assert_eq(got, status, "GET %s: status %d, expected %d; body: %s", path, got, status,
                 body ? body : "(none)");
    json = cJSON_Parse(body);
    cr_assert_not_null(json, "GET %s: body is not JSON: %s", path, body ? body : "(none)");
    free(body);
    return json;
}


void harness_produce(const struct harness *h, const char *topic, const char *key,
                     const char *const *values, size_t n)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    rd_kafka_conf_set(conf, "bootstrap.servers", h->brokers, err, sizeof err);
    rd_kafka_conf_set(conf, "acks", "all", err, sizeof err);
    rd_kafka_conf_set(conf, "linger.ms", "1", err, sizeof err);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    cr_assert_not_null(rk, "producer: %s", err);

    for (size_t i = 0; i < n; i++) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
            RD_KAFKA_V_VALUE((void *)values[i], strlen(values[i])),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
        cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "produce: %s", rd_kafka_err2str(e));
    }
    cr_assert_eq(rd_kafka_flush(rk, 15000), RD_KAFKA_RESP_ERR_NO_ERROR,
                 "records were not delivered within 15 s");
    rd_kafka_destroy(rk);
}


harness_producer *harness_producer_new(const struct harness *h)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    rd_kafka_conf_set(conf, "bootstrap.servers", h->brokers, err, sizeof err);
    rd_kafka_conf_set(conf, "acks", "all", err, sizeof err);
    rd_kafka_conf_set(conf, "linger.ms", "2", err, sizeof err);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    cr_assert_not_null(rk, "producer: %s", err);
    return rk;
}


void harness_send(harness_producer *p, const char *topic, const char *key, const char *value)
{
    rd_kafka_resp_err_t e = rd_kafka_producev(
        p, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
        RD_KAFKA_V_VALUE((void *)value, strlen(value)), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_END);
    cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "produce: %s", rd_kafka_err2str(e));
    rd_kafka_poll(p, 0);
}


void harness_producer_close(harness_producer *p)
{
    cr_assert_eq(rd_kafka_flush(p, 15000), RD_KAFKA_RESP_ERR_NO_ERROR,
                 "records were not delivered within 15 s");
    rd_kafka_destroy(p);
}


size_t harness_consume_all(const struct harness *h, const char *topic, int timeout_ms,
                           harness_record_fn fn, void *arg)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(8);
    size_t seen = 0;
    uint64_t deadline;

    rd_kafka_conf_set(conf, "bootstrap.servers", h->brokers, err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", "harness-reader", err, sizeof err);
    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof err);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    cr_assert_not_null(rk, "consumer: %s", err);

    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rd_kafka_metadata(rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        md->topic_cnt == 1) {
        for (int p = 0; p < md->topics[0].partition_cnt; p++)
            rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[p].id)
                ->offset = RD_KAFKA_OFFSET_BEGINNING;
    }
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_assign(rk, parts);

    deadline = vt_monotonic_ns() + (uint64_t)timeout_ms * 1000000u;
    while (vt_monotonic_ns() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL)
            continue;
        if (!m->err) {
            const void *reason = NULL;
            size_t reason_len = 0;
            char reason_text[128] = "";
            rd_kafka_headers_t *hdrs = NULL;
            if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
                rd_kafka_header_get_last(hdrs, "vitrine.reason", &reason, &reason_len) ==
                    RD_KAFKA_RESP_ERR_NO_ERROR)
                vt_copy_utf8(reason_text, sizeof reason_text, reason, reason_len);
            fn(m->key, m->key_len, m->payload, m->len, reason_text, arg);
            seen++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return seen;
}


int64_t harness_wait_events(const struct harness *h, const char *profile_id, int64_t events,
                            int timeout_s)
{
    char path[256];
    int64_t last = -1;

    snprintf(path, sizeof path, "/v1/profiles/%s", profile_id);
    for (int i = 0; i < timeout_s * 10; i++) {
        cJSON *p = harness_get_json(h, path, 200);
        cJSON *counters = cJSON_GetObjectItem(p, "counters");
        cJSON *ev = cJSON_GetObjectItem(counters, "events");
        last = cJSON_IsNumber(ev) ? (int64_t)ev->valuedouble : -1;
        cJSON_Delete(p);
        if (last == events)
            return last;
        harness_sleep_ms(100);
    }
    return last;
}


double harness_metric(const struct harness *h, const char *series)
{
    char *body = NULL;
    double value = 0;
    size_t len = strlen(series);
    int status = harness_http(h, "GET", "/metrics", NULL, &body, NULL);

    cr_assert_eq(status, 200, "GET /metrics: status %d", status);
    for (char *line = body; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        if (strncmp(line, series, len) == 0 && line[len] == ' ') {
            char num[64];
            size_t n = nl ? (size_t)(nl - line - (ptrdiff_t)len - 1) : strlen(line + len + 1);
            vt_copy_utf8(num, sizeof num, line + len + 1, n);
            vt_parse_double(num, -1e300, 1e300, &value);
            break;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(body);
    return value;
}


static void reply_to_text(const redisReply *r, struct vt_buf *out)
{
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        vt_buf_append(out, r->str, r->len);
        break;
    case REDIS_REPLY_INTEGER:
        vt_buf_printf(out, "%lld", r->integer);
        break;
    case REDIS_REPLY_NIL:
        vt_buf_appends(out, "(nil)");
        break;
    case REDIS_REPLY_ARRAY:
        for (size_t i = 0; i < r->elements; i++) {
            if (i > 0)
                vt_buf_appends(out, "\n");
            reply_to_text(r->element[i], out);
        }
        break;
    }
}


char *harness_redis(const struct harness *h, const char *fmt, ...)
{
    struct timeval tv = {.tv_sec = 5};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", h->redis_port, tv);
    redisReply *r;
    struct vt_buf out;
    va_list ap;

    cr_assert(c != NULL && !c->err, "redis connect failed");
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    cr_assert_not_null(r, "redis command failed: %s", c->errstr);
    vt_buf_init(&out, 16 << 20);
    vt_buf_appends(&out, "");
    reply_to_text(r, &out);
    freeReplyObject(r);
    redisFree(c);
    return out.data;
}
