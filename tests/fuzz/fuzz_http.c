/*
 * libFuzzer target: HTTP requests to the real API server, run in this process on a
 * loopback port with the small test catalog. Redis and Kafka point at closed ports, so
 * every request is validated and then gets its response without them (503 where a handler
 * needs Redis).
 *
 * Input: the first byte picks the method, the bytes up to the first newline follow "/v1/"
 * as the request target (path and query), and the rest is the body. Each request must get
 * a response within 5 s, never a 500, and a JSON body that parses whenever the response
 * declares application/json.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vitrine/api.h"
#include "vitrine/catalog.h"
#include "vitrine/config.h"
#include "vitrine/log.h"
#include "vitrine/world.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUEST_MAX (64 * 1024)
#define RESPONSE_MAX (4 * 1024 * 1024)

static struct vt_config cfg;
static int port;


/* A port nothing listens on now, for the server. */
static int free_port(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t len = sizeof addr;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int p = 0;

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
        getsockname(fd, (struct sockaddr *)&addr, &len) == 0)
        p = ntohs(addr.sin_port);
    if (fd >= 0)
        close(fd);
    return p;
}


static void set(const char *name, const char *value)
{
    char err[512];

    if (vt_config_set(&cfg, name, value, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_http: %s\n", err);
        abort();
    }
}


/* Start the server once; it runs until the process ends. */
static void start_server(void)
{
    char err[512], value[32];
    struct vt_catalog *cat;
    struct vt_live *live;

    vt_config_defaults(&cfg);
    port = free_port();
    snprintf(value, sizeof value, "%d", port);
    set("http.port", value);
    set("http.threads", "2");
    set("log.level", "error");
    set("redis.port", "1");
    set("redis.timeout_ms", "50");
    set("kafka.brokers", "127.0.0.1:1");
    set("catalog.path", VITRINE_SOURCE_DIR "/tests/data/catalog.jsonl");
    vt_log_threshold = cfg.log_level;

    cat = vt_catalog_load(cfg.catalog_path, &cfg, err, sizeof err);
    live = cat != NULL ? vt_live_start(&cfg, cat, err, sizeof err) : NULL;
    struct vt_api_parts parts = {.live = live};
    if (live == NULL || vt_api_start(&cfg, &parts, err, sizeof err) == NULL) {
        fprintf(stderr, "fuzz_http: cannot start the server: %s\n", err);
        abort();
    }
}


/* Send request and read the whole response (NUL-terminated); returns its length, or -1
 * when the server sent nothing within 5 s. */
static ssize_t exchange(const char *request, size_t len, char *response, size_t cap)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    size_t got = 0;

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* libFuzzer's timer signal may interrupt any call here: connect then completes in the
     * background, and the others are repeated. */
    if (fd < 0 ||
        (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0 && errno != EINTR)) {
        perror("fuzz_http: connect");
        abort();
    }
    for (size_t sent = 0; sent < len;) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, 5000) < 0 && errno == EINTR)
            continue;
        ssize_t n = send(fd, request + sent, len - sent, MSG_NOSIGNAL);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            break; /* the server may close early on a bad request; read its response */
        sent += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int ready = poll(&p, 1, 5000);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0) {
            close(fd);
            return -1;
        }
        ssize_t n = recv(fd, response + got, cap - 1 - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == cap - 1)
            break;
    }
    close(fd);
    response[got] = '\0';
    return (ssize_t)got;
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "POST", "DELETE", "PUT", "HEAD"};
    static char request[REQUEST_MAX + 512];
    static char *response;
    size_t target_len, body_len;

    if (port == 0) {
        start_server();
        response = malloc(RESPONSE_MAX);
        if (response == NULL)
            abort();
    }
    if (size == 0 || size > REQUEST_MAX)
        return 0;

    const char *method = methods[data[0] % 5];
    const char *target = (const char *)data + 1;
    const char *newline = memchr(target, '\n', size - 1);
    target_len = newline != NULL ? (size_t)(newline - target) : size - 1;
    const char *body = newline != NULL ? newline + 1 : "";
    body_len = newline != NULL ? size - 1 - target_len - 1 : 0;

    int head = snprintf(request, sizeof request, "%s /v1/%.*s HTTP/1.1\r\nHost: fuzz\r\n"
                        "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                        "Connection: close\r\n\r\n", method, (int)target_len, target, body_len);
    if (head < 0 || (size_t)head + body_len > sizeof request)
        return 0;
    memcpy(request + head, body, body_len);

    ssize_t n = exchange(request, (size_t)head + body_len, response, RESPONSE_MAX);
    if (n < 0) {
        fprintf(stderr, "fuzz_http: no answer within 5 s to %s /v1/%.*s\n", method,
                (int)target_len, target);
        abort();
    }
    int status = 0;
    if (sscanf(response, "HTTP/1.%*d %d", &status) != 1)
        return 0; /* the connection closed without a status line */
    if (status >= 500 && status != 503) {
        fprintf(stderr, "fuzz_http: status %d for %s /v1/%.*s\n%s\n", status, method,
                (int)target_len, target, response);
        abort();
    }
    const char *end_of_head = strstr(response, "\r\n\r\n");
    if (end_of_head != NULL && strcmp(method, "HEAD") != 0 &&
        strcasestr(response, "\r\nContent-Type: application/json") != NULL &&
        strcasestr(response, "\r\nContent-Type: application/json") < end_of_head) {
        cJSON *json = cJSON_Parse(end_of_head + 4);
        if (json == NULL) {
            fprintf(stderr, "fuzz_http: invalid JSON for %s /v1/%.*s\n%s\n", method,
                    (int)target_len, target, response);
            abort();
        }
        cJSON_Delete(json);
    }
    return 0;
}
