/*
 * HTTP hardening, injected over loopback against the real vitrine binary. The cases: idle
 * and dribbling clients, per-address connection limits, oversized requests (431, 414,
 * 413), methods (405 with Allow), hostile ids, bounded limit and list parameters, bearer
 * tokens, and ids that try to reach keys outside their own profile.
 *
 * Raw sockets send what harness_http cannot: partial requests, bytes one at a time, raw
 * control bytes, and connections from other loopback addresses (127.0.0.2 is loopback too).
 * The tests print what they measure on lines that start with "measured:".
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "vitrine/util.h"

/* Largest reply a raw read keeps. */
#define RAW_REPLY_MAX (4 << 20)

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/* A TCP connection to vitrine from the loopback address `from` (NULL: 127.0.0.1). */
static int raw_connect(const struct harness *h, const char *from)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)h->http_port)};
    struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = 0};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert(fd >= 0, "socket: %s", strerror(errno));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (from != NULL) {
        cr_assert(inet_pton(AF_INET, from, &src.sin_addr) == 1);
        cr_assert(bind(fd, (struct sockaddr *)&src, sizeof src) == 0, "bind %s: %s", from,
                  strerror(errno));
    }
    cr_assert(connect(fd, (struct sockaddr *)&to, sizeof to) == 0, "connect: %s",
              strerror(errno));
    return fd;
}


/* Send all of data; false when the server closed the connection. */
static bool raw_send(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}


/* Read into out until the server closes the connection or timeout_ms pass. Returns true
 * when it closed (end of file or reset), false on the timeout. */
static bool raw_read_until_close(int fd, int timeout_ms, struct vt_buf *out)
{
    int64_t end = mono_ms() + timeout_ms;
    char chunk[16384];

    for (;;) {
        int64_t left = end - mono_ms();
        struct pollfd pfd = {.fd = fd, .events = POLLIN};

        if (left <= 0)
            return false;
        int rc = poll(&pfd, 1, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return false;
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return true;
        vt_buf_append(out, chunk, (size_t)n);
    }
}


/* True when the server has closed fd (checked without waiting). */
static bool raw_closed(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    char byte;

    if (poll(&pfd, 1, 0) <= 0)
        return false;
    return recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) <= 0;
}


struct raw_reply {
    int status; /* -1: no HTTP response (closed or timed out first) */
    char *head; /* status line and headers */
    char *body;
    size_t body_len;
};

static void raw_reply_free(struct raw_reply *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}


/* Split what a connection received into status, head and body. */
static void parse_reply(const struct vt_buf *in, struct raw_reply *r)
{
    const char *end = in->data != NULL ? strstr(in->data, "\r\n\r\n") : NULL;
    int64_t code;

    memset(r, 0, sizeof *r);
    r->status = -1;
    if (end == NULL || in->len < 12 || strncmp(in->data, "HTTP/1.", 7) != 0)
        return;
    char digits[4] = {in->data[9], in->data[10], in->data[11], '\0'};
    if (vt_parse_int64(digits, 100, 599, &code) == 0)
        r->status = (int)code;
    r->head = strndup(in->data, (size_t)(end - in->data));
    r->body_len = in->len - (size_t)(end + 4 - in->data);
    r->body = malloc(r->body_len + 1);
    memcpy(r->body, end + 4, r->body_len);
    r->body[r->body_len] = '\0';
}


/* Send request (len bytes, which should ask for Connection: close) from `from` and read
 * the reply until the server closes, for up to timeout_ms. */
static int raw_exchange(const struct harness *h, const char *from, const char *request,
                        size_t len, int timeout_ms, struct raw_reply *r)
{
    struct vt_buf in;
    int fd = raw_connect(h, from);

    vt_buf_init(&in, RAW_REPLY_MAX);
    raw_send(fd, request, len);
    raw_read_until_close(fd, timeout_ms, &in);
    close(fd);
    parse_reply(&in, r);
    vt_buf_free(&in);
    return r->status;
}


/* A header's value in a reply head ("" when absent), case-sensitive name. */
static const char *head_value(const struct raw_reply *r, const char *name, char *out,
                              size_t outsize)
{
    char pattern[96];
    const char *at;

    out[0] = '\0';
    snprintf(pattern, sizeof pattern, "\r\n%s: ", name);
    at = r->head != NULL ? strstr(r->head, pattern) : NULL;
    if (at == NULL)
        return out;
    at += strlen(pattern);
    size_t n = strcspn(at, "\r\n");
    snprintf(out, outsize, "%.*s", (int)n, at);
    return out;
}


/* Fail unless body is {"error":{"code":code,...}} in valid UTF-8. */
static void expect_error_shape(const char *what, const char *body, size_t len, const char *code)
{
    cr_expect(vt_utf8_valid(body, len), "%s: the body is not valid UTF-8", what);
    cJSON *json = cJSON_ParseWithLength(body, len);
    cr_expect_not_null(json, "%s: the body is not JSON: %s", what, body);
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(json, "error");
    const char *got = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "code"));
    cr_expect(got != NULL && strcmp(got, code) == 0, "%s: error code %s, expected %s (%s)",
              what, got ? got : "(none)", code, body);
    cr_expect(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(err, "message")),
              "%s: no message", what);
    cr_expect(cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(err, "retriable")),
              "%s: no retriable", what);
    cJSON_Delete(json);
}


static void expect_healthy(const struct harness *h, const char *after)
{
    char *body = NULL;
    int status = harness_http(h, "GET", "/healthz", NULL, &body, NULL);

    cr_expect_eq(status, 200, "/healthz after %s: status %d", after, status);
    free(body);
}


Test(http, idle_clients_do_not_block_others, .timeout = 60)
{
    enum { IDLE = 60, REQUESTS = 20 };
    const char *env[] = {"VITRINE_HTTP_CONNECTION_LIMIT=64", "VITRINE_HTTP_TIMEOUT_S=2",
                         NULL};
    struct harness h;
    int idle[IDLE];
    int64_t opened[IDLE], closed_after[IDLE];

    harness_init(&h, "http-idle");
    harness_start(&h, env);

    /* Connections that send nothing: http.connection_limit minus four. */
    for (int i = 0; i < IDLE; i++) {
        idle[i] = raw_connect(&h, NULL);
        opened[i] = mono_ms();
        closed_after[i] = -1;
    }

    int64_t slowest = 0;
    for (int i = 0; i < REQUESTS; i++) {
        char *body = NULL;
        int64_t started = mono_ms();
        int status = harness_http(&h, "GET", "/v1/trending?limit=3", NULL, &body, NULL);
        int64_t took = mono_ms() - started;

        cr_expect_eq(status, 200, "request %d beside %d idle connections: status %d", i, IDLE,
                     status);
        free(body);
        if (took > slowest)
            slowest = took;
    }
    printf("measured: %d requests beside %d idle connections (limit 64): slowest %" PRId64
           " ms\n", REQUESTS, IDLE, slowest);

    /* The server closes each idle connection after about http.timeout_s. */
    int64_t deadline = mono_ms() + 10000;
    int open_left = IDLE;
    while (open_left > 0 && mono_ms() < deadline) {
        for (int i = 0; i < IDLE; i++) {
            if (closed_after[i] < 0 && raw_closed(idle[i])) {
                closed_after[i] = mono_ms() - opened[i];
                open_left--;
            }
        }
        harness_sleep_ms(20);
    }
    int64_t first = INT64_MAX, last = 0;
    for (int i = 0; i < IDLE; i++) {
        cr_expect(closed_after[i] >= 0, "idle connection %d still open after 10 s", i);
        if (closed_after[i] >= 0 && closed_after[i] < first)
            first = closed_after[i];
        if (closed_after[i] > last)
            last = closed_after[i];
        close(idle[i]);
    }
    printf("measured: idle connections closed %" PRId64 " to %" PRId64
           " ms after they opened (http.timeout_s 2)\n", first, last);
    cr_expect(first >= 1500, "an idle connection was closed after %" PRId64 " ms, before the "
              "2 s timeout", first);

    expect_healthy(&h, "the idle connections");
    harness_stop(&h, 20);
}


/* Send a partial request and then one byte every interval_ms until the server closes the
 * connection or give_up_ms pass. Returns the milliseconds from the connect to the close,
 * or -1. */
static int64_t dribble_until_closed(int fd, const char *start, int interval_ms, int give_up_ms)
{
    int64_t opened = mono_ms();

    raw_send(fd, start, strlen(start));
    while (mono_ms() - opened < give_up_ms) {
        harness_sleep_ms(interval_ms);
        if (raw_closed(fd) || !raw_send(fd, "a", 1))
            return mono_ms() - opened;
    }
    return -1;
}


Test(http, dribbling_client_is_closed_at_request_timeout, .timeout = 90)
{
    const char *env[] = {"VITRINE_HTTP_TIMEOUT_S=2", "VITRINE_HTTP_REQUEST_TIMEOUT_S=3", NULL};
    struct harness h;
    int64_t took;
    int fd;

    harness_init(&h, "http-dribble");
    harness_start(&h, env);

    /* Headers, one byte every 500 ms: well inside the idle timeout of 2 s each time. */
    fd = raw_connect(&h, NULL);
    took = dribble_until_closed(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", 500, 15000);
    close(fd);
    printf("measured: client dribbling header bytes closed after %" PRId64
           " ms (http.request_timeout_s 3, http.timeout_s 2)\n", took);
    cr_expect(took >= 2500 && took <= 8000, "dribbling headers closed after %" PRId64 " ms, "
              "expected about 3000", took);

    /* The request line itself, one byte at a time. */
    fd = raw_connect(&h, NULL);
    took = dribble_until_closed(fd, "GET /v1/trending?x=", 500, 15000);
    close(fd);
    printf("measured: client dribbling its request line closed after %" PRId64 " ms\n", took);
    cr_expect(took >= 2500 && took <= 8000, "dribbling request line closed after %" PRId64
              " ms", took);

    /* A body, one byte at a time. */
    fd = raw_connect(&h, NULL);
    took = dribble_until_closed(fd, "POST /v1/sessions/a/rerank HTTP/1.1\r\nHost: x\r\n"
                                "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n",
                                500, 15000);
    close(fd);
    printf("measured: client dribbling its body closed after %" PRId64 " ms\n", took);
    cr_expect(took >= 2500 && took <= 8000, "dribbling body closed after %" PRId64 " ms", took);

    /* A keep-alive connection that sends whole requests every second lives on past the
     * request timeout: each response restarts it. */
    fd = raw_connect(&h, NULL);
    int64_t started = mono_ms();
    int served = 0;
    for (int i = 0; i < 6; i++) {
        static const char request[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
        char reply[1024];
        struct pollfd pfd = {.fd = fd, .events = POLLIN};

        cr_assert(raw_send(fd, request, sizeof request - 1), "keep-alive request %d: the "
                  "server closed the connection after %" PRId64 " ms", i, mono_ms() - started);
        cr_assert_eq(poll(&pfd, 1, 5000), 1, "keep-alive request %d: no reply", i);
        ssize_t n = recv(fd, reply, sizeof reply - 1, 0);
        cr_assert(n > 0, "keep-alive request %d: connection closed", i);
        reply[n] = '\0';
        cr_expect(strncmp(reply, "HTTP/1.1 200", 12) == 0, "keep-alive reply %d: %.40s", i,
                  reply);
        served++;
        harness_sleep_ms(1000);
    }
    printf("measured: keep-alive connection served %d requests over %" PRId64
           " ms, longer than the request timeout\n", served, mono_ms() - started);

    /* Its next request, dribbled, gets 3 s from the last response. */
    took = dribble_until_closed(fd, "GET /healthz HTTP/1.1\r\nX-Slow: ", 500, 15000);
    close(fd);
    printf("measured: dribbled second request on a keep-alive connection closed after %" PRId64
           " ms\n", took);
    cr_expect(took >= 1000 && took <= 8000, "dribbled keep-alive request closed after %" PRId64
              " ms", took);

    expect_healthy(&h, "the dribbling clients");
    harness_stop(&h, 20);
}


/* Open n connections from `from` that each send the start of a request and nothing more.
 * Returns how many the server closed within wait_ms (the rest stay open). */
static int open_stalled(const struct harness *h, const char *from, int *fds, int n, int wait_ms)
{
    static const char start[] = "GET /healthz HTTP/1.1\r\nX-Slow: ";
    int closed = 0;

    for (int i = 0; i < n; i++) {
        fds[i] = raw_connect(h, from);
        raw_send(fds[i], start, sizeof start - 1);
    }
    harness_sleep_ms(wait_ms);
    for (int i = 0; i < n; i++)
        closed += raw_closed(fds[i]) ? 1 : 0;
    return closed;
}


/* GET /healthz from `from`; returns the status (-1: no response within timeout_ms). */
static int healthz_from(const struct harness *h, const char *from, int timeout_ms,
                        int64_t *took_ms)
{
    static const char request[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    struct raw_reply r;
    int64_t started = mono_ms();
    int status = raw_exchange(h, from, request, sizeof request - 1, timeout_ms, &r);

    *took_ms = mono_ms() - started;
    raw_reply_free(&r);
    return status;
}


Test(http, one_address_cannot_take_every_slot, .timeout = 60)
{
    enum { STALLED = 12, PER_IP = 4 };
    const char *env[] = {"VITRINE_HTTP_CONNECTION_LIMIT=16",
                         "VITRINE_HTTP_CONNECTION_LIMIT_PER_IP=4", "VITRINE_HTTP_TIMEOUT_S=30",
                         "VITRINE_HTTP_REQUEST_TIMEOUT_S=60", NULL};
    struct harness h;
    int fds[STALLED];
    int64_t took;

    harness_init(&h, "http-per-ip");
    harness_start(&h, env);

    int closed = open_stalled(&h, "127.0.0.1", fds, STALLED, 500);
    printf("measured: %d stalled connections from 127.0.0.1: %d closed at once, %d kept "
           "(http.connection_limit_per_ip %d)\n", STALLED, closed, STALLED - closed, PER_IP);
    cr_assert(STALLED - closed >= 1 && STALLED - closed <= PER_IP,
              "connections kept from one address: %d, expected at most %d",
              STALLED - closed, PER_IP);
    /* When connections arrive at once, libmicrohttpd's workers may reject one more than
     * the limit requires. So fill the address up to its limit, and the next one is over. */
    int kept = STALLED - closed;
    for (int i = 0; i < STALLED && kept < PER_IP; i++) {
        if (!raw_closed(fds[i]))
            continue;
        close(fds[i]);
        kept += open_stalled(&h, "127.0.0.1", &fds[i], 1, 200) == 0 ? 1 : 0;
    }
    cr_assert_eq(kept, PER_IP, "could not hold %d connections from one address", PER_IP);

    int status = healthz_from(&h, "127.0.0.2", 5000, &took);
    printf("measured: client from 127.0.0.2 beside them: status %d in %" PRId64 " ms\n",
           status, took);
    cr_expect_eq(status, 200, "client from another address: status %d", status);
    status = healthz_from(&h, "127.0.0.3", 5000, &took);
    cr_expect_eq(status, 200, "client from a third address: status %d", status);

    /* The address at its limit gets its connection closed without a response. */
    status = healthz_from(&h, "127.0.0.1", 5000, &took);
    printf("measured: one more client from 127.0.0.1: status %d after %" PRId64 " ms\n", status,
           took);
    cr_expect_eq(status, -1, "client from the address at its limit: status %d", status);

    for (int i = 0; i < STALLED; i++)
        close(fds[i]);
    harness_sleep_ms(300);
    status = healthz_from(&h, "127.0.0.1", 5000, &took);
    cr_expect_eq(status, 200, "127.0.0.1 after its stalled connections closed: status %d",
                 status);
    harness_stop(&h, 20);
}


Test(http, request_timeout_frees_slots_without_per_ip_limit, .timeout = 60)
{
    enum { STALLED = 16 };
    const char *env[] = {"VITRINE_HTTP_CONNECTION_LIMIT=16",
                         "VITRINE_HTTP_CONNECTION_LIMIT_PER_IP=0", "VITRINE_HTTP_TIMEOUT_S=30",
                         "VITRINE_HTTP_REQUEST_TIMEOUT_S=3", NULL};
    struct harness h;
    int fds[STALLED];
    int64_t took;

    harness_init(&h, "http-slots");
    harness_start(&h, env);

    /* Every slot held by one address: a newcomer waits in the listen backlog until the
     * request timeout closes the stalled connections. */
    int64_t started = mono_ms();
    int closed = open_stalled(&h, "127.0.0.1", fds, STALLED, 200);
    cr_expect_eq(closed, 0, "%d of %d stalled connections closed at once", closed, STALLED);
    int status = healthz_from(&h, "127.0.0.2", 15000, &took);
    printf("measured: with all %d slots stalled and no per-address limit, a client from "
           "127.0.0.2 got status %d after %" PRId64 " ms (%" PRId64 " ms after the stalled "
           "connections opened; http.request_timeout_s 3)\n", STALLED, status, took,
           mono_ms() - started);
    cr_expect_eq(status, 200, "client behind stalled slots: status %d", status);

    int still_open = 0;
    for (int i = 0; i < STALLED; i++) {
        still_open += raw_closed(fds[i]) ? 0 : 1;
        close(fds[i]);
    }
    cr_expect_eq(still_open, 0, "%d stalled connections outlived the request timeout",
                 still_open);
    harness_stop(&h, 20);
}


Test(http, oversized_requests_get_answers, .timeout = 90)
{
    struct harness h;
    struct raw_reply r;
    struct vt_buf req;
    char value[128];

    harness_init(&h, "http-oversized");
    harness_start(&h, NULL);
    vt_buf_init(&req, 1 << 20);

    /* Headers beyond the 32 KiB of connection memory: libmicrohttpd replies 431. */
    vt_buf_appends(&req, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for (int i = 0; i < 40; i++) {
        vt_buf_printf(&req, "X-Filler-%d: ", i);
        for (int k = 0; k < 1000; k++)
            vt_buf_append(&req, "a", 1);
        vt_buf_appends(&req, "\r\n");
    }
    vt_buf_appends(&req, "\r\n");
    raw_exchange(&h, NULL, req.data, req.len, 10000, &r);
    printf("measured: 40 KB of headers: status %d, Content-Type \"%s\", body: %s\n", r.status,
           head_value(&r, "Content-Type", value, sizeof value), r.body ? r.body : "(none)");
    cr_expect_eq(r.status, 431, "40 KB of headers: status %d", r.status);
    raw_reply_free(&r);
    expect_healthy(&h, "431");

    /* A request line beyond the connection memory: libmicrohttpd replies 414. */
    vt_buf_reset(&req);
    vt_buf_appends(&req, "GET /v1/trending?category=");
    for (int k = 0; k < 40000; k++)
        vt_buf_append(&req, "c", 1);
    vt_buf_appends(&req, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    raw_exchange(&h, NULL, req.data, req.len, 10000, &r);
    printf("measured: 40 KB request line: status %d, Content-Type \"%s\", body: %s\n", r.status,
           head_value(&r, "Content-Type", value, sizeof value), r.body ? r.body : "(none)");
    cr_expect_eq(r.status, 414, "40 KB request line: status %d", r.status);
    raw_reply_free(&r);
    expect_healthy(&h, "414 from libmicrohttpd");

    /* A request line of 9 KB fits the memory; vitrine replies 414 in the error shape. */
    vt_buf_reset(&req);
    vt_buf_appends(&req, "GET /v1/trending?category=");
    for (int k = 0; k < 9000; k++)
        vt_buf_append(&req, "c", 1);
    vt_buf_appends(&req, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    raw_exchange(&h, NULL, req.data, req.len, 10000, &r);
    cr_expect_eq(r.status, 414, "9 KB request line: status %d", r.status);
    if (r.status == 414)
        expect_error_shape("9 KB request line", r.body, r.body_len, "URI_TOO_LONG");
    raw_reply_free(&r);

    /* A body beyond 96 KiB, sent whole: the client reads the 413, not a reset. */
    for (int round = 0; round < 5; round++) {
        vt_buf_reset(&req);
        vt_buf_printf(&req, "POST /v1/sessions/a/rerank HTTP/1.1\r\nHost: x\r\n"
                      "Connection: close\r\nContent-Type: application/json\r\n"
                      "Content-Length: %d\r\n\r\n", 200 * 1024);
        for (int k = 0; k < 200 * 1024; k++)
            vt_buf_append(&req, " ", 1);
        raw_exchange(&h, NULL, req.data, req.len, 10000, &r);
        cr_expect_eq(r.status, 413, "200 KiB body, round %d: status %d", round, r.status);
        if (r.status == 413)
            expect_error_shape("200 KiB body", r.body, r.body_len, "PAYLOAD_TOO_LARGE");
        raw_reply_free(&r);
    }
    expect_healthy(&h, "413 with a whole body");

    /* A Content-Length of 1 TB with Expect: 100-continue: answered at once, no body sent. */
    static const char huge[] = "POST /v1/sessions/a/rerank HTTP/1.1\r\nHost: x\r\n"
                               "Connection: close\r\nContent-Type: application/json\r\n"
                               "Expect: 100-continue\r\nContent-Length: 1000000000000\r\n\r\n";
    int64_t started = mono_ms();
    raw_exchange(&h, NULL, huge, sizeof huge - 1, 10000, &r);
    printf("measured: Content-Length of 1 TB: status %d after %" PRId64 " ms\n", r.status,
           mono_ms() - started);
    cr_expect_eq(r.status, 413, "1 TB Content-Length: status %d", r.status);
    if (r.status == 413)
        expect_error_shape("1 TB Content-Length", r.body, r.body_len, "PAYLOAD_TOO_LARGE");
    raw_reply_free(&r);

    /* A chunked body beyond 96 KiB: no length to check first, so it is read and then 413. */
    vt_buf_reset(&req);
    vt_buf_appends(&req, "POST /v1/sessions/a/rerank HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                   "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int c = 0; c < 25; c++) {
        vt_buf_printf(&req, "%x\r\n", 8192);
        for (int k = 0; k < 8192; k++)
            vt_buf_append(&req, " ", 1);
        vt_buf_appends(&req, "\r\n");
    }
    vt_buf_appends(&req, "0\r\n\r\n");
    raw_exchange(&h, NULL, req.data, req.len, 10000, &r);
    cr_expect_eq(r.status, 413, "200 KiB chunked body: status %d", r.status);
    if (r.status == 413)
        expect_error_shape("200 KiB chunked body", r.body, r.body_len, "PAYLOAD_TOO_LARGE");
    raw_reply_free(&r);

    /* A body of exactly 96 KiB is accepted. */
    vt_buf_reset(&req);
    vt_buf_printf(&req, "POST /v1/sessions/a/rerank HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                  "{\"product_ids\":[]}", 96 * 1024);
    for (int k = 0; k < 96 * 1024 - 17; k++)
        vt_buf_append(&req, " ", 1);
    raw_exchange(&h, NULL, req.data, req.len, 10000, &r);
    cr_expect_eq(r.status, 200, "body of exactly 96 KiB: status %d (%s)", r.status,
                 r.body ? r.body : "");
    raw_reply_free(&r);

    vt_buf_free(&req);
    expect_healthy(&h, "the oversized requests");
    harness_stop(&h, 20);
}


struct method_case {
    const char *method;
    const char *path;
    const char *allow;
};

Test(http, request_framing_cannot_smuggle_or_confuse, .timeout = 60)
{
    struct harness h;
    struct raw_reply r;

    harness_init(&h, "http-framing");
    harness_start(&h, NULL);

    /* Two Content-Length headers: a proxy in front may have read the other one, so the
     * rest of the bytes must not become a second request. */
    const char *smuggle = "POST /v1/sessions/a/rerank HTTP/1.1\r\nHost: x\r\n"
                          "Content-Length: 2\r\nContent-Length: 30\r\n\r\n"
                          "{}GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    cr_assert_eq(raw_exchange(&h, NULL, smuggle, strlen(smuggle), 3000, &r), 400);
    expect_error_shape("two Content-Length headers", r.body, r.body_len, "INVALID_ARGUMENT");
    cr_expect(strstr(r.body, "HTTP/1.1") == NULL && strstr(r.body, "\"status\"") == NULL,
              "the smuggled request was answered: %s", r.body);
    raw_reply_free(&r);

    /* Absolute-form targets, as clients send them to proxies (RFC 9112, 3.2.2). */
    const char *absolute = "GET http://shop.example/v1/trending?limit=2 HTTP/1.1\r\n"
                           "Host: shop.example\r\nConnection: close\r\n\r\n";
    cr_expect_eq(raw_exchange(&h, NULL, absolute, strlen(absolute), 3000, &r), 200,
                 "absolute-form target: %s", r.body ? r.body : "");
    raw_reply_free(&r);

    /* Empty query pieces are no parameters; a rule filter must be a rule name. */
    const char *empty = "GET /v1/trending?&&&=&limit=3& HTTP/1.1\r\nHost: x\r\n"
                        "Connection: close\r\n\r\n";
    cr_expect_eq(raw_exchange(&h, NULL, empty, strlen(empty), 3000, &r), 200);
    raw_reply_free(&r);
    const char *rule = "GET /v1/alerts?rule=%00 HTTP/1.1\r\nHost: x\r\n"
                       "Connection: close\r\n\r\n";
    cr_expect_eq(raw_exchange(&h, NULL, rule, strlen(rule), 3000, &r), 400);
    raw_reply_free(&r);

    expect_healthy(&h, "the framing cases");
    printf("measured: two Content-Length headers: 400 and the connection closed, the "
           "smuggled request not answered; absolute-form target 200; empty query pieces "
           "ignored; rule=%%00 400\n");
    harness_stop(&h, 20);
}


Test(http, wrong_methods_get_405_with_allow, .timeout = 60)
{
    static const struct method_case cases[] = {
        {"PUT", "/v1/sessions/a/segment", "GET"},
        {"POST", "/v1/sessions/a/recommendations", "GET"},
        {"PATCH", "/v1/sessions/a/recommendations", "GET"},
        {"GET", "/v1/sessions/a/rerank", "POST"},
        {"HEAD", "/v1/sessions/a/rerank", "POST"},
        {"DELETE", "/v1/sessions/a/rerank", "POST"},
        {"PUT", "/v1/products/w-1/similar", "GET"},
        {"POST", "/v1/trending", "GET"},
        {"BREW", "/v1/trending", "GET"},
        {"OPTIONS", "/v1/trending", "GET"},
        {"TRACE", "/v1/trending", "GET"},
        {"PUT", "/v1/profiles/a", "GET, DELETE"},
        {"PATCH", "/v1/profiles/a", "GET, DELETE"},
        {"POST", "/v1/stats/products/w-1", "GET"},
        {"DELETE", "/v1/stats/placements/home", "GET"},
        {"DELETE", "/v1/alerts", "GET"},
        {"PUT", "/v1/alerts/0193a1b2-7c4d", "GET"},
        {"GET", "/v1/alerts/0193a1b2-7c4d/ack", "POST"},
        {"POST", "/healthz", "GET"},
        {"DELETE", "/readyz", "GET"},
        {"POST", "/metrics", "GET"},
        {"PUT", "/openapi.yaml", "GET"},
    };
    struct harness h;
    char request[512], allow[128], type[128];

    harness_init(&h, "http-methods");
    harness_start(&h, NULL);

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct method_case *c = &cases[i];
        struct raw_reply r;
        int n = snprintf(request, sizeof request, "%s %s HTTP/1.1\r\nHost: x\r\n"
                         "Connection: close\r\nContent-Length: 0\r\n\r\n", c->method, c->path);

        raw_exchange(&h, NULL, request, (size_t)n, 10000, &r);
        cr_expect_eq(r.status, 405, "%s %s: status %d", c->method, c->path, r.status);
        cr_expect_str_eq(head_value(&r, "Allow", allow, sizeof allow), c->allow,
                         "%s %s: Allow", c->method, c->path);
        if (strcmp(c->method, "HEAD") != 0) {
            cr_expect_str_eq(head_value(&r, "Content-Type", type, sizeof type),
                             "application/json", "%s %s: Content-Type", c->method, c->path);
            expect_error_shape(c->path, r.body, r.body_len, "METHOD_NOT_ALLOWED");
        }
        raw_reply_free(&r);
    }

    /* HEAD is served like GET, without a body. */
    static const char *const heads[] = {"/v1/trending", "/v1/sessions/a/segment",
                                        "/v1/profiles/a", "/healthz", "/openapi.yaml"};
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        struct raw_reply r;
        int n = snprintf(request, sizeof request, "HEAD %s HTTP/1.1\r\nHost: x\r\n"
                         "Connection: close\r\n\r\n", heads[i]);

        raw_exchange(&h, NULL, request, (size_t)n, 10000, &r);
        cr_expect_eq(r.status, 200, "HEAD %s: status %d", heads[i], r.status);
        cr_expect_eq(r.body_len, 0, "HEAD %s: %zu body bytes", heads[i], r.body_len);
        raw_reply_free(&r);
    }

    /* A control byte in the method: libmicrohttpd 0.9.75 passes it on, and routing
     * rejects it like any other unknown method. */
    struct raw_reply r;
    static const char bad_method[] = "G\001T /v1/trending HTTP/1.1\r\nHost: x\r\n"
                                     "Connection: close\r\n\r\n";
    raw_exchange(&h, NULL, bad_method, sizeof bad_method - 1, 10000, &r);
    printf("measured: a control byte in the method: status %d, body: %s\n", r.status,
           r.body ? r.body : "(none)");
    cr_expect_eq(r.status, 405, "control byte in the method: status %d", r.status);
    raw_reply_free(&r);

    expect_healthy(&h, "the wrong methods");
    harness_stop(&h, 20);
}


struct id_case {
    const char *id; /* as it appears in the request target */
    int status;     /* 200 or 400 */
};

/* GET path (raw bytes, any byte allowed) and check the status and, for 400, the shape. */
static void expect_id_status(const struct harness *h, const char *method, const char *path,
                             int expected)
{
    char request[4096];
    struct raw_reply r;
    int n = snprintf(request, sizeof request, "%s %s HTTP/1.1\r\nHost: x\r\n"
                     "Connection: close\r\nContent-Length: 0\r\n\r\n", method, path);

    cr_assert(n > 0 && (size_t)n < sizeof request);
    raw_exchange(h, NULL, request, (size_t)n, 10000, &r);
    cr_expect_eq(r.status, expected, "%s %s: status %d, expected %d (%s)", method, path,
                 r.status, expected, r.body ? r.body : "(no answer)");
    if (r.status == 400 && r.body != NULL && r.body[0] == '{')
        expect_error_shape(path, r.body, r.body_len, "INVALID_ARGUMENT");
    else if (r.status >= 200 && r.status < 300)
        cr_expect(vt_utf8_valid(r.body, r.body_len), "%s: body not UTF-8", path);
    raw_reply_free(&r);
}


Test(http, hostile_ids_get_400_never_500, .timeout = 120)
{
    char at_max[200], over_max[200], long_product[200];
    struct harness h;

    memset(at_max, 'a', 128);
    at_max[128] = '\0';
    memset(over_max, 'a', 129);
    over_max[129] = '\0';
    memset(long_product, 'p', 129);
    long_product[129] = '\0';

    const struct id_case session_ids[] = {
        {"a%00b", 400}, {"%00", 400}, {"a%01", 400}, {"%1F", 400}, {"%7F", 400},
        {"%C3%28", 400}, {"%FF", 400}, {"%C0%AF", 400}, {"%E2%82%AC", 400}, {"%ED%A0%80", 400},
        {"*", 400}, {"a*", 400}, {"%2A", 400}, {"%3F", 400}, {"[a-z]", 400}, {"%5B", 400},
        {"%7B", 400}, {"a%7Dx", 400}, {"%7Ba%7D", 400}, {"a%2Fb", 400}, {"..%2Fx", 400},
        {"%2E%2E", 200}, {"..", 200}, {".", 200}, {"a:b", 200}, {"%3A", 200}, {":", 200},
        {"a%20b", 400}, {"a+b", 400}, {"%25", 400}, {"%", 400}, {"%G0", 400}, {"a%0D%0Ab", 400},
        {"a\\b", 400}, {"a\"b", 400}, {"a'b", 400}, {"a,b", 400}, {"a;b", 400},
        {at_max, 200}, {over_max, 400},
    };
    static const struct {
        const char *method, *before, *after;
    } session_routes[] = {{"GET", "/v1/sessions/", "/segment"},
                          {"GET", "/v1/sessions/", "/recommendations"},
                          {"GET", "/v1/profiles/", ""},
                          {"DELETE", "/v1/profiles/", ""}};

    harness_init(&h, "http-ids");
    harness_start(&h, NULL);

    for (size_t r = 0; r < sizeof session_routes / sizeof session_routes[0]; r++) {
        for (size_t i = 0; i < sizeof session_ids / sizeof session_ids[0]; i++) {
            char path[512];

            snprintf(path, sizeof path, "%s%s%s", session_routes[r].before, session_ids[i].id,
                     session_routes[r].after);
            expect_id_status(&h, session_routes[r].method, path, session_ids[i].status);
        }
    }

    /* Rerank with a valid body: only the id decides. */
    for (size_t i = 0; i < sizeof session_ids / sizeof session_ids[0]; i++) {
        char path[512], request[1024];
        struct raw_reply rr;
        static const char body[] = "{\"product_ids\":[\"w-1\"]}";
        int n;

        snprintf(path, sizeof path, "/v1/sessions/%s/rerank", session_ids[i].id);
        n = snprintf(request, sizeof request, "POST %s HTTP/1.1\r\nHost: x\r\n"
                     "Connection: close\r\nContent-Length: %zu\r\n\r\n%s", path,
                     sizeof body - 1, body);
        raw_exchange(&h, NULL, request, (size_t)n, 10000, &rr);
        cr_expect_eq(rr.status, session_ids[i].status, "POST %s: status %d", path, rr.status);
        raw_reply_free(&rr);
    }

    /* Product ids and placement names: any UTF-8 without control bytes; unknown ones are
     * 404 on similar and known: false on statistics. */
    const struct id_case product_ids[] = {
        {"%00", 400}, {"a%00b", 400}, {"%01", 400}, {"%7F", 400}, {"%FF", 400},
        {"%C3%28", 400}, {"%ED%A0%80", 400}, {"%E2%82%AC", 200}, {"*", 200}, {"%2A", 200},
        {"a%2Fb", 200}, {"%7B%7D", 200}, {"%5B", 200}, {long_product, 400},
    };
    for (size_t i = 0; i < sizeof product_ids / sizeof product_ids[0]; i++) {
        char path[512];
        int similar_status = product_ids[i].status == 200 ? 404 : 400;

        snprintf(path, sizeof path, "/v1/products/%s/similar", product_ids[i].id);
        expect_id_status(&h, "GET", path, similar_status);
        snprintf(path, sizeof path, "/v1/stats/products/%s", product_ids[i].id);
        expect_id_status(&h, "GET", path, product_ids[i].status);
        snprintf(path, sizeof path, "/v1/stats/placements/%s", product_ids[i].id);
        expect_id_status(&h, "GET", path,
                         strlen(product_ids[i].id) > 32 ? 400 : product_ids[i].status);
    }
    expect_id_status(&h, "GET", "/v1/products/w-1/similar", 200);

    /* %2F is a '/' inside one product id, and %25 a '%' that is not decoded again. */
    static const struct {
        const char *path, *id;
    } decoded[] = {{"/v1/stats/products/a%2Fb", "a/b"},
                   {"/v1/stats/products/a%252Fb", "a%2Fb"},
                   {"/v1/stats/products/100%25", "100%"},
                   {"/v1/stats/products/%E2%82%AC", "\xe2\x82\xac"}};
    for (size_t i = 0; i < sizeof decoded / sizeof decoded[0]; i++) {
        cJSON *json = harness_get_json(&h, decoded[i].path, 200);
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(json, "product_id"));
        cr_expect(id != NULL && strcmp(id, decoded[i].id) == 0, "%s: product_id %s, expected %s",
                  decoded[i].path, id ? id : "(none)", decoded[i].id);
        cJSON_Delete(json);
    }

    /* Alert ids: lower-case hex and dashes only. */
    static const char *const alert_ids[] = {"%00", "%FF", "*", "0193A1B2", "..", "a%2Fb",
                                            "0193a1b2-7c4d-7e5f-8a6b-1c2d3e4f5a6b-00000"};
    for (size_t i = 0; i < sizeof alert_ids / sizeof alert_ids[0]; i++) {
        char path[512];

        snprintf(path, sizeof path, "/v1/alerts/%s", alert_ids[i]);
        expect_id_status(&h, "GET", path, 400);
    }
    expect_id_status(&h, "GET", "/v1/alerts/0193a1b2-7c4d-7e5f-8a6b-1c2d3e4f5a6b", 404);

    /* Raw bytes in the request target, not percent-encoded. Either libmicrohttpd rejects
     * the request line (its own 400) or the id check does (JSON 400). */
    static const char *const raw_targets[] = {"/v1/sessions/a\001b/segment",
                                              "/v1/sessions/a\377b/segment",
                                              "/v1/sessions/a\x7f/segment",
                                              "/v1/profiles/\303\050",
                                              "/v1/products/\377/similar"};
    for (size_t i = 0; i < sizeof raw_targets / sizeof raw_targets[0]; i++) {
        char request[512];
        struct raw_reply rr;
        int n = snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: x\r\n"
                         "Connection: close\r\n\r\n", raw_targets[i]);

        raw_exchange(&h, NULL, request, (size_t)n, 10000, &rr);
        cr_expect_eq(rr.status, 400, "raw target %zu: status %d", i, rr.status);
        if (rr.body != NULL && rr.body[0] == '{')
            expect_error_shape("raw target", rr.body, rr.body_len, "INVALID_ARGUMENT");
        else
            printf("measured: raw target %zu rejected by libmicrohttpd: status %d, body: %s\n",
                   i, rr.status, rr.body ? rr.body : "(none)");
        raw_reply_free(&rr);
    }

    expect_healthy(&h, "the hostile ids");
    harness_stop(&h, 20);
}


struct param_case {
    const char *path;
    int status;
};

Test(http, limit_and_list_parameters_are_bounded, .timeout = 120)
{
    static const char *const limited[] = {"/v1/sessions/a/recommendations",
                                          "/v1/products/w-1/similar", "/v1/trending",
                                          "/v1/alerts"};
    static const struct {
        const char *query;
        int status;
    } limits[] = {
        {"limit=1", 200}, {"limit=100", 200}, {"limit=", 200}, {"limit=0", 400},
        {"limit=-1", 400}, {"limit=101", 400}, {"limit=99999999999999999999", 400},
        {"limit=abc", 400}, {"limit=1.5", 400}, {"limit=1e2", 400}, {"limit=%2B5", 400},
        {"limit=%205", 400}, {"limit=5%20", 400}, {"limit=%0A5", 400}, {"limit=0x10", 400},
        {"limit=5%00", 400}, {"limit=5&limit=6", 400}, {"limit=5&limit=abc", 400},
        {"limit=abc&limit=5", 400},
    };
    struct harness h;
    char path[1024];

    harness_init(&h, "http-params");
    harness_start(&h, NULL);

    for (size_t e = 0; e < sizeof limited / sizeof limited[0]; e++) {
        for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
            snprintf(path, sizeof path, "%s?%s", limited[e], limits[i].query);
            expect_id_status(&h, "GET", path, limits[i].status);
        }
    }

    /* limit=100 returns at most 100 items. */
    cJSON *json = harness_get_json(&h, "/v1/trending?limit=100", 200);
    cr_expect_leq(cJSON_GetArraySize(cJSON_GetObjectItem(json, "items")), 100);
    cJSON_Delete(json);

    /* Lists in the query: exclude (100 ids), category and brand (20 names of 96 bytes). */
    struct vt_buf q;
    vt_buf_init(&q, 64 * 1024);
    const struct {
        const char *param;
        int count;
        int name_len;
        int status;
    } lists[] = {
        {"exclude", 100, 3, 200}, {"exclude", 101, 3, 400}, {"exclude", 1, 128, 200},
        {"exclude", 1, 129, 400}, {"category", 20, 5, 200}, {"category", 21, 5, 400},
        {"category", 1, 96, 200}, {"category", 1, 97, 400}, {"brand", 20, 5, 200},
        {"brand", 21, 5, 400},
    };
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        vt_buf_reset(&q);
        vt_buf_printf(&q, "/v1/sessions/a/recommendations?%s=", lists[i].param);
        for (int k = 0; k < lists[i].count; k++) {
            vt_buf_printf(&q, "%s%d", k ? "," : "", k % 10);
            for (int c = 1; c < lists[i].name_len; c++)
                vt_buf_append(&q, "x", 1);
        }
        expect_id_status(&h, "GET", q.data, lists[i].status);
    }
    /* Empty entries in a list are skipped, not counted. */
    expect_id_status(&h, "GET", "/v1/sessions/a/recommendations?exclude=,,,w-1,,", 200);
    expect_id_status(&h, "GET", "/v1/sessions/a/recommendations?exclude=w-1%01", 400);
    expect_id_status(&h, "GET", "/v1/sessions/a/recommendations?category=a&category=b", 400);
    expect_id_status(&h, "GET", "/v1/alerts?rule=a&rule=b", 400);

    /* More than 32 parameters. */
    vt_buf_reset(&q);
    vt_buf_appends(&q, "/v1/trending?");
    for (int k = 0; k < 33; k++)
        vt_buf_printf(&q, "%sp%d=1", k ? "&" : "", k);
    expect_id_status(&h, "GET", q.data, 400);
    vt_buf_free(&q);

    /* Alerts: the rule name has at most 64 bytes. */
    char rule[200] = "/v1/alerts?rule=";
    memset(rule + strlen(rule), 'r', 65);
    expect_id_status(&h, "GET", rule, 400);

    /* Rerank bodies: at most 500 ids, each a string of 1 to 128 bytes or an integer >= 0. */
    const struct {
        const char *body;
        int status;
    } bodies[] = {
        {"{\"product_ids\":[]}", 200}, {"{\"product_ids\":[\"w-1\",7]}", 200},
        {"{\"product_ids\":\"w-1\"}", 400}, {"{\"product_ids\":[[\"w-1\"]]}", 400},
        {"{\"product_ids\":[-1]}", 400}, {"{\"product_ids\":[1.5]}", 400},
        {"{\"product_ids\":[1e300]}", 400}, {"{\"product_ids\":[null]}", 400},
        {"{\"product_ids\":[\"\"]}", 400}, {"{\"product_ids\":[\"a\\u0000b\"]}", 400},
        {"{\"product_ids\":[\"a\\u0001b\"]}", 400}, {"{\"product_ids\":[\"\\ud800\"]}", 400},
        {"[\"w-1\"]", 400}, {"{}", 400}, {"", 400}, {"{\"product_ids\":[\"w-1\"", 400},
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        char *reply = NULL;
        int status = harness_http_body(&h, "POST", "/v1/sessions/a/rerank", NULL,
                                       bodies[i].body, &reply, NULL);

        cr_expect_eq(status, bodies[i].status, "rerank body %s: status %d (%s)", bodies[i].body,
                     status, reply ? reply : "");
        if (status == 400)
            expect_error_shape(bodies[i].body, reply, strlen(reply), "INVALID_ARGUMENT");
        free(reply);
    }
    for (int count = 500; count <= 501; count++) {
        struct vt_buf b;
        char *reply = NULL;

        vt_buf_init(&b, 64 * 1024);
        vt_buf_appends(&b, "{\"product_ids\":[");
        for (int k = 0; k < count; k++)
            vt_buf_printf(&b, "%s\"p-%d\"", k ? "," : "", k);
        vt_buf_appends(&b, "]}");
        int status = harness_http_body(&h, "POST", "/v1/sessions/a/rerank", NULL, b.data,
                                       &reply, NULL);
        cr_expect_eq(status, count <= 500 ? 200 : 400, "rerank of %d ids: status %d", count,
                     status);
        free(reply);
        vt_buf_free(&b);
    }

    expect_healthy(&h, "the parameters");
    harness_stop(&h, 20);
}


/* GET or POST path with the given Authorization header line (NULL: none). */
static int status_with_token(const struct harness *h, const char *method, const char *path,
                             const char *authorization)
{
    char headers[512] = "";
    char *body = NULL, *head = NULL;
    int status;

    if (authorization != NULL)
        snprintf(headers, sizeof headers, "Authorization: %s\r\n", authorization);
    if (strcmp(method, "POST") == 0)
        status = harness_http_body(h, method, path, headers, "{\"by\":\"x\"}", &body, &head);
    else
        status = harness_http(h, method, path, headers, &body, &head);
    if (status == 401) {
        cr_expect(head != NULL && strstr(head, "WWW-Authenticate: Bearer") != NULL,
                  "%s %s: 401 without WWW-Authenticate", method, path);
        expect_error_shape(path, body, strlen(body), "UNAUTHENTICATED");
    }
    free(body);
    free(head);
    return status;
}


Test(http, bearer_tokens_match_exactly, .timeout = 60)
{
    const char *env[] = {"VITRINE_HTTP_TOKEN_STOREFRONT=shop-secret",
                         "VITRINE_HTTP_TOKEN_ANALYST=analyst-secret", NULL};
    static const char *const wrong[] = {
        "Bearer shop-secre", "Bearer shop-secretX", "Bearer shop-secret-and-more",
        "Bearer hop-secret", "Bearer SHOP-SECRET", "Bearer\tshop-secret", "Bearer",
        "Bearer ", "Basic shop-secret", "shop-secret", "Bearershop-secret",
        "Bearer shop-secret shop-secret", "Bearer analyst-secre", "Bearer s",
    };
    static const char *const storefront_paths[] = {"/v1/sessions/a/segment",
                                                   "/v1/sessions/a/recommendations",
                                                   "/v1/products/w-1/similar", "/v1/trending"};
    static const struct {
        const char *method;
        const char *path;
    } analyst_routes[] = {
        {"GET", "/v1/profiles/a"}, {"DELETE", "/v1/profiles/a"},
        {"GET", "/v1/stats/products/w-1"}, {"GET", "/v1/stats/placements/home"},
        {"GET", "/v1/alerts"}, {"GET", "/v1/alerts/0193a1b2-7c4d"},
        {"POST", "/v1/alerts/0193a1b2-7c4d/ack"},
    };
    struct harness h;

    harness_init(&h, "http-tokens");
    harness_start(&h, env);

    for (size_t p = 0; p < sizeof storefront_paths / sizeof storefront_paths[0]; p++) {
        const char *path = storefront_paths[p];
        for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++)
            cr_expect_eq(status_with_token(&h, "GET", path, wrong[i]), 401, "%s with \"%s\"",
                         path, wrong[i]);
        cr_expect_neq(status_with_token(&h, "GET", path, "BEARER shop-secret"), 401,
                      "%s: the scheme name is case-insensitive", path);
        cr_expect_neq(status_with_token(&h, "GET", path, "Bearer   shop-secret"), 401,
                      "%s: spaces after the scheme name", path);
        cr_expect_neq(status_with_token(&h, "GET", path, "Bearer analyst-secret"), 401,
                      "%s: the analyst token opens storefront routes", path);
    }
    for (size_t p = 0; p < sizeof analyst_routes / sizeof analyst_routes[0]; p++) {
        const char *method = analyst_routes[p].method, *path = analyst_routes[p].path;

        cr_expect_eq(status_with_token(&h, method, path, NULL), 401, "%s %s without a token",
                     method, path);
        cr_expect_eq(status_with_token(&h, method, path, "Bearer shop-secret"), 401,
                     "%s %s with the storefront token", method, path);
        for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++)
            cr_expect_eq(status_with_token(&h, method, path, wrong[i]), 401,
                         "%s %s with \"%s\"", method, path, wrong[i]);
        cr_expect_neq(status_with_token(&h, method, path, "Bearer analyst-secret"), 401,
                      "%s %s with the analyst token", method, path);
    }

    /* Bytes a header line cannot carry in text: a NUL after the right token must not cut
     * the comparison short, and a second Authorization header must not help. */
    static const char nul_token[] = "GET /v1/profiles/a HTTP/1.1\r\nHost: x\r\nConnection: close"
                                    "\r\nAuthorization: Bearer analyst-secret\0junk\r\n\r\n";
    struct raw_reply r;
    raw_exchange(&h, NULL, nul_token, sizeof nul_token - 1, 10000, &r);
    printf("measured: right token followed by a NUL byte: status %d\n", r.status);
    cr_expect(r.status == 401 || r.status == 400 || r.status == 200,
              "token with a NUL: status %d", r.status);
    raw_reply_free(&r);
    static const char nul_prefix[] = "GET /v1/profiles/a HTTP/1.1\r\nHost: x\r\n"
                                     "Connection: close\r\nAuthorization: Bearer analyst-sec"
                                     "\0ret\r\n\r\n";
    raw_exchange(&h, NULL, nul_prefix, sizeof nul_prefix - 1, 10000, &r);
    cr_expect(r.status == 401 || r.status == 400, "token prefix, NUL, rest: status %d",
              r.status);
    raw_reply_free(&r);
    static const char twice[] = "GET /v1/profiles/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                "Authorization: Bearer wrong\r\n"
                                "Authorization: Bearer analyst-secret\r\n\r\n";
    raw_exchange(&h, NULL, twice, sizeof twice - 1, 10000, &r);
    printf("measured: wrong token, then the right one in a second header: status %d\n",
           r.status);
    cr_expect(r.status == 401 || r.status == 400, "two Authorization headers: status %d",
              r.status);
    raw_reply_free(&r);

    /* The operational endpoints stay open. */
    static const char *const open_paths[] = {"/healthz", "/readyz", "/metrics", "/openapi.yaml"};
    for (size_t p = 0; p < sizeof open_paths / sizeof open_paths[0]; p++)
        cr_expect_eq(status_with_token(&h, "GET", open_paths[p], NULL), 200, "%s",
                     open_paths[p]);

    harness_stop(&h, 20);
}


static bool redis_exists(const struct harness *h, const char *key)
{
    char *reply = harness_redis(h, "EXISTS %s", key);
    bool exists = strcmp(reply, "1") == 0;

    free(reply);
    return exists;
}


Test(http, ids_cannot_reach_other_keys, .timeout = 90)
{
    struct harness h;
    char victim[128], other_prefix[64], outside[128], other_profile[160], marker[128];
    char path[512];
    char *reply;

    harness_init(&h, "http-keys");
    harness_start(&h, NULL);

    /* A profile of another session, a marker under the prefix, a profile under another
     * prefix and a key outside any prefix. */
    snprintf(victim, sizeof victim, "%s{victim}:p", h.prefix);
    snprintf(marker, sizeof marker, "%smarker", h.prefix);
    snprintf(other_prefix, sizeof other_prefix, "other%s", h.prefix);
    snprintf(other_profile, sizeof other_profile, "%s{victim}:p", other_prefix);
    snprintf(outside, sizeof outside, "{victim}:p-%s", h.name);
    const char *keys[] = {victim, marker, other_profile, outside};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        reply = harness_redis(&h, "HSET %s events 3 first_seen 1700000000000", keys[k]);
        free(reply);
        reply = harness_redis(&h, "EXPIRE %s 600", keys[k]);
        free(reply);
    }
    cJSON *json = harness_get_json(&h, "/v1/profiles/victim", 200);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(json, "exists")), "the victim profile was not "
              "written where vitrine reads it");
    cJSON_Delete(json);

    /* Ids that look like patterns, key separators, hash tags, paths or other prefixes. */
    char prefixed[96], hashtag[96], other_id[96];
    snprintf(prefixed, sizeof prefixed, "%s%%7Bvictim%%7D", h.prefix);
    snprintf(hashtag, sizeof hashtag, "victim%%7D:p");
    snprintf(other_id, sizeof other_id, "other%s", h.prefix);
    const struct id_case attempts[] = {
        {"*", 400}, {"%2A", 400}, {"v*", 400}, {"victim*", 400}, {"%3F", 400}, {"v%3Fctim", 400},
        {"%5Bv%5Dictim", 400}, {"..%2Fvictim", 400}, {"%2E%2E%2Fvictim", 400},
        {"victim%00", 400}, {"victim%0D%0ADEL%20x", 400}, {prefixed, 400}, {hashtag, 400},
        {"%7Bvictim%7D", 400}, {"victim:p", 200}, {":victim", 200}, {"victim:", 200},
        {other_id, 200}, {"marker", 200}, {"..", 200}, {"{victim}", 400},
    };
    for (size_t i = 0; i < sizeof attempts / sizeof attempts[0]; i++) {
        snprintf(path, sizeof path, "/v1/profiles/%s", attempts[i].id);
        expect_id_status(&h, "DELETE", path, attempts[i].status);
        expect_id_status(&h, "GET", path, attempts[i].status);
    }
    /* A path that walks out of /v1/profiles/ reaches no route. */
    expect_id_status(&h, "DELETE", "/v1/profiles/../sessions/victim/segment", 404);
    expect_id_status(&h, "DELETE", "/v1/profiles/victim/../x", 404);

    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        cr_expect(redis_exists(&h, keys[k]), "key %s was deleted", keys[k]);
    json = harness_get_json(&h, "/v1/profiles/victim", 200);
    cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(json, "exists")), "the victim profile is gone");
    cJSON_Delete(json);

    /* Erasing the victim itself removes its key and nothing else. */
    char *body = NULL;
    cr_expect_eq(harness_http(&h, "DELETE", "/v1/profiles/victim", NULL, &body, NULL), 200);
    json = cJSON_Parse(body);
    cr_expect_eq(cJSON_GetObjectItem(json, "deleted_keys")->valueint, 1);
    cJSON_Delete(json);
    free(body);
    cr_expect(!redis_exists(&h, victim), "the victim's key survived its erasure");
    for (size_t k = 1; k < sizeof keys / sizeof keys[0]; k++) {
        cr_expect(redis_exists(&h, keys[k]), "key %s was deleted with the victim", keys[k]);
        reply = harness_redis(&h, "DEL %s", keys[k]);
        free(reply);
    }
    harness_stop(&h, 20);
}
