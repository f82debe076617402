/*
 * Webhook delivery: URL parsing, and posting to a receiver thread on loopback that replies
 * to each request as its script sets (a status, a raw response, or no response at all).
 *
 * Attempt timeouts and backoffs are a few hundred ms at most, so every test ends within a
 * few seconds. Timing checks use generous upper bounds because criterion runs tests in
 * parallel.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vitrine/util.h"
#include "vitrine/webhook.h"

/* ---- the receiver ---- */

enum reply_kind {
    REPLY_STATUS, /* "HTTP/1.1 <status> ..." with the extra header lines, then close */
    REPLY_RAW,    /* the text as the whole response, then close ("" closes at once) */
    REPLY_STALL,  /* read the request, then keep the connection open without a response */
};

struct reply {
    enum reply_kind kind;
    int status;
    const char *text; /* extra header lines ending in "\r\n", or the whole raw response */
};

#define RECEIVER_REQUESTS_MAX 64
#define RECEIVER_SCRIPT_MAX 8
#define RECEIVER_REQUEST_MAX (VT_WEBHOOK_BODY_MAX + 16384)

struct received {
    char *head; /* request line and headers, NUL-terminated */
    char *body;
    size_t body_len;
    int64_t at_ms; /* monotonic time the request was complete */
};

struct receiver {
    int listen_fd;
    int stop_fd;
    uint16_t port;
    pthread_t thread;
    struct reply script[RECEIVER_SCRIPT_MAX]; /* the last reply repeats */
    size_t script_len;

    pthread_mutex_t lock; /* guards n_requests and requests */
    size_t n_requests;
    struct received requests[RECEIVER_REQUESTS_MAX];

    int held[RECEIVER_REQUESTS_MAX]; /* stalled connections, closed at receiver_stop */
    size_t n_held;
};


static int64_t now_ms(void)
{
    return (int64_t)(vt_monotonic_ns() / 1000000u);
}


static void sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}


/* Wait until fd is readable or the receiver stops. True when fd is readable. */
static bool receiver_wait_readable(struct receiver *rx, int fd)
{
    struct pollfd fds[2] = {{.fd = fd, .events = POLLIN}, {.fd = rx->stop_fd, .events = POLLIN}};

    for (;;) {
        if (poll(fds, 2, -1) < 0)
            continue;
        if (fds[1].revents != 0)
            return false;
        if (fds[0].revents != 0)
            return true;
    }
}


/* Read one request (head and Content-Length body) from fd. False on EOF, error or stop. */
static bool receiver_read_request(struct receiver *rx, int fd, struct received *out)
{
    char *buf = malloc(RECEIVER_REQUEST_MAX);
    size_t used = 0;
    size_t head_len = 0;
    size_t body_len = 0;

    cr_assert_not_null(buf);
    for (;;) {
        if (head_len == 0) {
            char *end = memmem(buf, used, "\r\n\r\n", 4);

            if (end != NULL) {
                head_len = (size_t)(end - buf) + 4;
                buf[head_len - 2] = '\0';
                const char *length = strcasestr(buf, "\r\ncontent-length:");
                if (length != NULL)
                    body_len = strtoul(length + 17, NULL, 10);
                buf[head_len - 2] = '\r';
            }
        }
        if (head_len > 0 && used >= head_len + body_len)
            break;
        if (used == RECEIVER_REQUEST_MAX || !receiver_wait_readable(rx, fd)) {
            free(buf);
            return false;
        }
        ssize_t got = recv(fd, buf + used, RECEIVER_REQUEST_MAX - used, 0);
        if (got <= 0) {
            free(buf);
            return false;
        }
        used += (size_t)got;
    }

    out->head = strndup(buf, head_len);
    out->body = malloc(body_len + 1);
    cr_assert_not_null(out->head);
    cr_assert_not_null(out->body);
    memcpy(out->body, buf + head_len, body_len);
    out->body[body_len] = '\0';
    out->body_len = body_len;
    out->at_ms = now_ms();
    free(buf);
    return true;
}


static void receiver_answer(struct receiver *rx, int fd, const struct reply *reply)
{
    char response[1024];
    int len;

    switch (reply->kind) {
    case REPLY_STATUS:
        len = snprintf(response, sizeof response,
                       "HTTP/1.1 %d Scripted\r\nContent-Length: 0\r\nConnection: close\r\n"
                       "%s\r\n",
                       reply->status, reply->text != NULL ? reply->text : "");
        send(fd, response, (size_t)len, MSG_NOSIGNAL);
        close(fd);
        break;
    case REPLY_RAW:
        send(fd, reply->text, strlen(reply->text), MSG_NOSIGNAL);
        close(fd);
        break;
    case REPLY_STALL:
        rx->held[rx->n_held++] = fd;
        break;
    }
}


static void *receiver_main(void *arg)
{
    struct receiver *rx = arg;

    while (receiver_wait_readable(rx, rx->listen_fd)) {
        struct received request;
        int fd = accept(rx->listen_fd, NULL, NULL);

        if (fd < 0)
            continue;
        if (!receiver_read_request(rx, fd, &request)) {
            close(fd);
            continue;
        }

        pthread_mutex_lock(&rx->lock);
        size_t index = rx->n_requests;
        if (index < RECEIVER_REQUESTS_MAX)
            rx->requests[rx->n_requests++] = request;
        pthread_mutex_unlock(&rx->lock);
        if (index >= RECEIVER_REQUESTS_MAX) {
            free(request.head);
            free(request.body);
            close(fd);
            continue;
        }

        size_t step = index < rx->script_len ? index : rx->script_len - 1;
        if (rx->script[step].kind == REPLY_STALL && rx->n_held == RECEIVER_REQUESTS_MAX)
            close(fd);
        else
            receiver_answer(rx, fd, &rx->script[step]);
    }
    return NULL;
}


/* Start a receiver on 127.0.0.1 (or ::1 when ipv6) with an ephemeral port. */
static struct receiver *receiver_start(bool ipv6, const struct reply *script, size_t script_len)
{
    struct receiver *rx = calloc(1, sizeof *rx);
    struct sockaddr_storage addr = {0};
    socklen_t addr_len;

    cr_assert_not_null(rx);
    cr_assert(script_len >= 1 && script_len <= RECEIVER_SCRIPT_MAX);
    memcpy(rx->script, script, script_len * sizeof *script);
    rx->script_len = script_len;

    if (ipv6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&addr;

        in6->sin6_family = AF_INET6;
        in6->sin6_addr = in6addr_loopback;
        addr_len = sizeof *in6;
    } else {
        struct sockaddr_in *in4 = (struct sockaddr_in *)&addr;

        in4->sin_family = AF_INET;
        in4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr_len = sizeof *in4;
    }
    rx->listen_fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(rx->listen_fd, 0);
    cr_assert_eq(bind(rx->listen_fd, (struct sockaddr *)&addr, addr_len), 0);
    cr_assert_eq(listen(rx->listen_fd, 16), 0);
    cr_assert_eq(getsockname(rx->listen_fd, (struct sockaddr *)&addr, &addr_len), 0);
    rx->port = ntohs(ipv6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                          : ((struct sockaddr_in *)&addr)->sin_port);

    rx->stop_fd = eventfd(0, EFD_CLOEXEC);
    cr_assert_geq(rx->stop_fd, 0);
    pthread_mutex_init(&rx->lock, NULL);
    cr_assert_eq(pthread_create(&rx->thread, NULL, receiver_main, rx), 0);
    return rx;
}


static void receiver_stop(struct receiver *rx)
{
    uint64_t wake = 1;

    cr_assert_eq(write(rx->stop_fd, &wake, sizeof wake), (ssize_t)sizeof wake);
    pthread_join(rx->thread, NULL);
    for (size_t i = 0; i < rx->n_held; i++)
        close(rx->held[i]);
    for (size_t i = 0; i < rx->n_requests; i++) {
        free(rx->requests[i].head);
        free(rx->requests[i].body);
    }
    close(rx->listen_fd);
    close(rx->stop_fd);
    pthread_mutex_destroy(&rx->lock);
    free(rx);
}


static size_t receiver_count(struct receiver *rx)
{
    size_t n;

    pthread_mutex_lock(&rx->lock);
    n = rx->n_requests;
    pthread_mutex_unlock(&rx->lock);
    return n;
}


/* Wait up to timeout_ms until the receiver has read n requests. */
static bool receiver_wait_count(struct receiver *rx, size_t n, int64_t timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;

    while (receiver_count(rx) < n) {
        if (now_ms() >= deadline)
            return false;
        sleep_ms(2);
    }
    return true;
}


/* A port on 127.0.0.1 where nothing listens, so connecting is refused. */
static uint16_t closed_port(void)
{
    struct sockaddr_in addr = {.sin_family = AF_INET};
    socklen_t addr_len = sizeof addr;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_geq(fd, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&addr, &addr_len), 0);
    close(fd);
    return ntohs(addr.sin_port);
}


/* ---- the log ---- */

/* Standard error redirected to a temporary file, to read what the logger wrote. */
struct captured_log {
    int saved_fd;
    FILE *file;
};

static struct captured_log capture_log_begin(void)
{
    struct captured_log capture = {.saved_fd = dup(STDERR_FILENO), .file = tmpfile()};

    cr_assert_geq(capture.saved_fd, 0);
    cr_assert_not_null(capture.file);
    cr_assert_geq(dup2(fileno(capture.file), STDERR_FILENO), 0);
    return capture;
}


static void capture_log_end(struct captured_log *capture, char *out, size_t outsize)
{
    size_t n;

    dup2(capture->saved_fd, STDERR_FILENO);
    close(capture->saved_fd);
    rewind(capture->file);
    n = fread(out, 1, outsize - 1, capture->file);
    out[n] = '\0';
    fclose(capture->file);
}


/* ---- the hook ---- */

static char url_buf[256];
static char err[1024];

static struct vt_webhook_options options_for(uint16_t port)
{
    snprintf(url_buf, sizeof url_buf, "http://127.0.0.1:%u/hook?token=secret-token", port);
    return (struct vt_webhook_options){.url = url_buf,
                                       .timeout_ms = 1000,
                                       .attempts = 3,
                                       .backoff_ms = 20,
                                       .backoff_max_ms = 200,
                                       .queue_max = 16};
}


static struct vt_webhook *start_hook(const struct vt_webhook_options *options)
{
    struct vt_webhook *hook = vt_webhook_start(options, err, sizeof err);

    cr_assert_not_null(hook, "vt_webhook_start failed: %s", err);
    return hook;
}


static bool send_text(struct vt_webhook *hook, const char *text)
{
    return vt_webhook_send(hook, text, strlen(text));
}


/* Wait up to timeout_ms until delivered + failed reach n. Returns the stats then. */
static struct vt_webhook_stats wait_settled(struct vt_webhook *hook, uint64_t n,
                                            int64_t timeout_ms)
{
    int64_t deadline = now_ms() + timeout_ms;
    struct vt_webhook_stats stats;

    for (;;) {
        vt_webhook_stats(hook, &stats);
        if (stats.delivered + stats.failed >= n || now_ms() >= deadline)
            return stats;
        sleep_ms(2);
    }
}


static bool body_is(const struct received *request, const char *text)
{
    return request->body_len == strlen(text) && memcmp(request->body, text, request->body_len) == 0;
}


/* ---- delivery ---- */

Test(webhook, delivered_on_200, .timeout = 10)
{
    const struct reply script[] = {{REPLY_STATUS, 200, NULL}};
    const char *body = "{\"alert\":\"stock_low\",\"product\":\"p-1\",\"note\":\"caf\xc3\xa9\"}";
    struct receiver *rx = receiver_start(false, script, 1);
    struct vt_webhook_options options = options_for(rx->port);
    struct vt_webhook *hook = start_hook(&options);
    char expected[256];

    cr_assert(send_text(hook, body));
    struct vt_webhook_stats stats = wait_settled(hook, 1, 3000);
    cr_expect_eq(stats.queued, 1);
    cr_expect_eq(stats.delivered, 1);
    cr_expect_eq(stats.retried, 0);
    cr_expect_eq(stats.failed, 0);
    cr_expect_eq(stats.dropped, 0);

    cr_assert_eq(receiver_count(rx), 1);
    const struct received *request = &rx->requests[0];
    cr_expect(body_is(request, body), "body differs: %s", request->body);
    cr_expect(strncmp(request->head, "POST /hook?token=secret-token HTTP/1.1\r\n", 40) == 0,
              "%s", request->head);
    snprintf(expected, sizeof expected, "\r\nHost: 127.0.0.1:%u\r\n", rx->port);
    cr_expect(strstr(request->head, expected) != NULL, "%s", request->head);
    cr_expect(strstr(request->head, "\r\nContent-Type: application/json\r\n") != NULL);
    snprintf(expected, sizeof expected, "\r\nContent-Length: %zu\r\n", strlen(body));
    cr_expect(strstr(request->head, expected) != NULL, "%s", request->head);
    cr_expect(strstr(request->head, "\r\nConnection: close\r\n") != NULL);
    cr_expect(strstr(request->head, "\r\nUser-Agent: vitrine/" VITRINE_VERSION "\r\n") != NULL);

    vt_webhook_stop(hook, 1000);
    receiver_stop(rx);
}


Test(webhook, large_body_arrives_intact, .timeout = 10)
{
    const struct reply script[] = {{REPLY_STATUS, 204, NULL}};
    struct receiver *rx = receiver_start(false, script, 1);
    struct vt_webhook_options options = options_for(rx->port);
    struct vt_webhook *hook = start_hook(&options);
    size_t len = 300 * 1024;
    char *body = malloc(len);

    /* Larger than a socket buffer, so the request goes out in several sends. */
    cr_assert_not_null(body);
    for (size_t i = 0; i < len; i++)
        body[i] = (char)(' ' + (i * 7919) % 95);
    cr_assert(vt_webhook_send(hook, body, len));
    struct vt_webhook_stats stats = wait_settled(hook, 1, 5000);
    cr_expect_eq(stats.delivered, 1);

    cr_assert_eq(receiver_count(rx), 1);
    cr_expect_eq(rx->requests[0].body_len, len);
    cr_expect(memcmp(rx->requests[0].body, body, len) == 0, "body bytes differ");

    vt_webhook_stop(hook, 1000);
    receiver_stop(rx);
    free(body);
}


Test(webhook, body_over_max_dropped, .timeout = 10)
{
    const struct reply script[] = {{REPLY_STATUS, 200, NULL}};
    struct receiver *rx = receiver_start(false, script, 1);
    struct vt_webhook_options options = options_for(rx->port);
    struct vt_webhook *hook = start_hook(&options);
    char *body = calloc(1, VT_WEBHOOK_BODY_MAX + 1);
    struct vt_webhook_stats stats;

    cr_assert_not_null(body);
    cr_expect(!vt_webhook_send(hook, body, VT_WEBHOOK_BODY_MAX + 1));
    vt_webhook_stats(hook, &stats);
    cr_expect_eq(stats.dropped, 1);
    cr_expect_eq(stats.queued, 0);

    vt_webhook_stop(hook, 0);
    receiver_stop(rx);
    free(body);
}


Test(webhook, retried_on_500_then_delivered, .timeout = 10)
{
    const struct reply script[] = {{REPLY_STATUS, 500, NULL}, {REPLY_STATUS, 200, NULL}};
    struct receiver *rx = receiver_start(false, script, 2);
    struct vt_webhook_options options = options_for(rx->port);
    options.backoff_ms = 50;
    struct vt_webhook *hook = start_hook(&options);

    cr_assert(send_text(hook, "{\"n\":1}"));
    struct vt_webhook_stats stats = wait_settled(hook, 1, 3000);
    cr_expect_eq(stats.delivered, 1);
    cr_expect_eq(stats.retried, 1);
    cr_expect_eq(stats.failed, 0);

    cr_assert_eq(receiver_count(rx), 2);
    cr_expect(body_is(&rx->requests[0], "{\"n\":1}"));
    cr_expect(body_is(&rx->requests[1], "{\"n\":1}"));
    int64_t gap = rx->requests[1].at_ms - rx->requests[0].at_ms;
    cr_expect_geq(gap, 45, "the retry came %lld ms after the first try", (long long)gap);

    vt_webhook_stop(hook, 1000);
    receiver_stop(rx);
}


Test(webhook, retryable_statuses_retried, .timeout = 15)
{
    static const int statuses[] = {408, 429, 500, 502, 503, 504};

    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        const struct reply script[] = {{REPLY_STATUS, statuses[i], NULL},
                                       {REPLY_STATUS, 200, NULL}};
        struct receiver *rx = receiver_start(false, script, 2);
        struct vt_webhook_options options = options_for(rx->port);
        struct vt_webhook *hook = start_hook(&options);

        cr_assert(send_text(hook, "{}"));
        struct vt_webhook_stats stats = wait_settled(hook, 1, 3000);
        cr_expect_eq(stats.delivered, 1, "status %d", statuses[i]);
        cr_expect_eq(stats.retried, 1, "status %d", statuses[i]);
        cr_expect_eq(receiver_count(rx), 2, "status %d", statuses[i]);

        vt_webhook_stop(hook, 1000);
        receiver_stop(rx);
    }
}


Test(webhook, backoff_doubles_up_to_max, .timeout = 10)
{
    const struct reply script[] = {{REPLY_STATUS, 500, NULL},
                                   {REPLY_STATUS, 500, NULL},
                                   {REPLY_STATUS, 500, NULL},
                                   {REPLY_STATUS, 200, NULL}};
    struct receiver *rx = receiver_start(false, script, 4);
    struct vt_webhook_options options = options_for(rx->port);
    options.attempts = 4;
    options.backoff_ms = 60;
    options.backoff_max_ms = 100;
    struct vt_webhook *hook = start_hook(&options);

    cr_assert(send_text(hook, "{}"));
    struct vt_webhook_stats stats = wait_settled(hook, 1, 5000);
    cr_expect_eq(stats.delivered, 1);
    cr_expect_eq(stats.retried, 3);

    /* Waits of 60, then 100 (120 capped), then 100 (240 capped) ms. */
    cr_assert_eq(receiver_count(rx), 4);
    int64_t first = rx->requests[1].at_ms - rx->requests[0].at_ms;
    int64_t second = rx->requests[2].at_ms - rx->requests[1].at_ms;
    int64_t third = rx->requests[3].at_ms - rx->requests[2].at_ms;
    cr_expect_geq(first, 55, "first wait %lld ms", (long long)first);
    cr_expect_geq(second, 95, "second wait %lld ms", (long long)second);
    cr_expect_geq(third, 95, "third wait %lld ms", (long long)third);
    cr_expect_lt(third, 220, "third wait %lld ms: not capped at backoff_max_ms", (long long)third);

    vt_webhook_stop(hook, 1000);
    receiver_stop(rx);
}


Test(webhook, retry_after_sets_the_wait, .timeout = 10)
{
    const struct reply script[] = {{REPLY_STATUS, 429, "Retry-After: 1\r\n"},
                                   {REPLY_STATUS, 200, NULL}};
    struct receiver *rx = receiver_start(false, script, 2);
    struct vt_webhook_options options = options_for(rx->port);
    options.backoff_ms = 10;
    options.backoff_max_ms = 5000;
    struct vt_webhook *hook = start_hook(&options);

    cr_assert(send_text(hook, "{}"));
    struct vt_webhook_stats stats = wait_settled(hook, 1, 5000);
    cr_expect_eq(stats.delivered, 1);
    cr_expect_eq(stats.retried, 1);

    cr_assert_eq(receiver_count(rx), 2);
    int64_t gap = rx->requests[1].at_ms - rx->requests[0].at_ms;
    cr_expect_geq(gap, 950, "waited %lld ms, Retry-After asked for 1000", (long long)gap);
    cr_expect_lt(gap, 3000, "waited %lld ms", (long long)gap);

    vt_webhook_stop(hook, 1000);
    receiver_stop(rx);
}


Test(webhook, retry_after_capped_at_backoff_max, .timeout = 10)
{
    const struct reply script[] = {{REPLY_STATUS, 503, "Retry-After: 3600\r\n"},
                                   {REPLY_STATUS, 200, NULL}};
    struct receiver *rx = receiver_start(false, script, 2);
    struct vt_webhook_options options = options_for(rx->port);
    options.backoff_ms = 10;
    options.backoff_max_ms = 250;
    struct vt_webhook *hook = start_hook(&options);

    cr_assert(send_text(hook, "{}"));
    struct vt_webhook_stats stats = wait_settled(hook, 1, 5000);
    cr_expect_eq(stats.delivered, 1);

    cr_assert_eq(receiver_count(rx), 2);
    int64_t gap = rx->requests[1].at_ms - rx->requests[0].at_ms;
    cr_expect_geq(gap, 240, "waited %lld ms, expected backoff_max_ms (250)", (long long)gap);
    cr_expect_lt(gap, 2000, "waited %lld ms", (long long)gap);

    vt_webhook_stop(hook, 1000);
    receiver_stop(rx);
}


Test(webhook, final_statuses_fail_without_retry, .timeout = 15)
{
    static const int statuses[] = {400, 401, 404, 413, 301};

    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        const struct reply script[] = {{REPLY_STATUS, statuses[i], NULL}};
        struct receiver *rx = receiver_start(false, script, 1);
        struct vt_webhook_options options = options_for(rx->port);
        struct vt_webhook *hook = start_hook(&options);

        cr_assert(send_text(hook, "{}"));
        struct vt_webhook_stats stats = wait_settled(hook, 1, 3000);
        cr_expect_eq(stats.failed, 1, "status %d", statuses[i]);
        cr_expect_eq(stats.delivered, 0, "status %d", statuses[i]);
        cr_expect_eq(stats.retried, 0, "status %d", statuses[i]);

        /* Longer than the backoff, so a retry would have arrived. */
        sleep_ms(60);
        cr_expect_eq(receiver_count(rx), 1, "status %d", statuses[i]);

        vt_webhook_stop(hook, 1000);
        receiver_stop(rx);
    }
}


Test(webhook, refused_connection_retried_then_failed, .timeout = 10)
{
    struct vt_webhook_options options = options_for(closed_port());
    struct vt_webhook *hook = start_hook(&options);

    cr_assert(send_text(hook, "{\"n\":1}"));
    cr_assert(send_text(hook, "{\"n\":2}"));
    struct vt_webhook_stats stats = wait_settled(hook, 2, 5000);
    cr_expect_eq(stats.queued, 2);
    cr_expect_eq(stats.failed, 2);
    cr_expect_eq(stats.delivered, 0);
    cr_expect_eq(stats.retried, 4, "3 attempts per body");
    cr_expect_eq(stats.dropped, 0);

    vt_webhook_stop(hook, 1000);
}


Test(webhook, silent_receiver_times_out, .timeout = 10)
{
    const struct reply script[] = {{REPLY_STALL, 0, NULL}};
    struct receiver *rx = receiver_start(false, script, 1);
    struct vt_webhook_options options = options_for(rx->port);
    options.timeout_ms = 200;
    options.attempts = 2;
    struct vt_webhook *hook = start_hook(&options);
    int64_t start = now_ms();

    cr_assert(send_text(hook, "{}"));
    struct vt_webhook_stats stats = wait_settled(hook, 1, 5000);
    int64_t elapsed = now_ms() - start;
    cr_expect_eq(stats.failed, 1);
    cr_expect_eq(stats.retried, 1);
    cr_expect_eq(stats.delivered, 0);
    cr_expect_eq(receiver_count(rx), 2);
    cr_expect_geq(elapsed, 2 * 200, "two timeouts took only %lld ms", (long long)elapsed);
    cr_expect_lt(elapsed, 2000, "two timeouts of 200 ms took %lld ms", (long long)elapsed);

    vt_webhook_stop(hook, 0);
    receiver_stop(rx);
}


Test(webhook, invalid_responses_retried, .timeout = 10)
{
    const struct reply script[] = {{REPLY_RAW, 0, ""},
                                   {REPLY_RAW, 0, "hello\r\n\r\n"},
                                   {REPLY_RAW, 0, "HTTP/1.1 2000 Big\r\n\r\n"},
                                   {REPLY_STATUS, 200, NULL}};
    struct receiver *rx = receiver_start(false, script, 4);
    struct vt_webhook_options options = options_for(rx->port);
    options.attempts = 4;
    struct vt_webhook *hook = start_hook(&options);

    cr_assert(send_text(hook, "{}"));
    struct vt_webhook_stats stats = wait_settled(hook, 1, 5000);
    cr_expect_eq(stats.delivered, 1);
    cr_expect_eq(stats.retried, 3, "no status line, a bad one, an out-of-range status");

    vt_webhook_stop(hook, 1000);
    receiver_stop(rx);
}


Test(webhook, interim_response_skipped, .timeout = 10)
{
    const struct reply script[] = {
        {REPLY_RAW, 0, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\nX: y\r\n\r\n"
                       "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"}};
    struct receiver *rx = receiver_start(false, script, 1);
    struct vt_webhook_options options = options_for(rx->port);
    struct vt_webhook *hook = start_hook(&options);

    cr_assert(send_text(hook, "{}"));
    struct vt_webhook_stats stats = wait_settled(hook, 1, 3000);
    cr_expect_eq(stats.delivered, 1);
    cr_expect_eq(stats.retried, 0);

    vt_webhook_stop(hook, 1000);
    receiver_stop(rx);
}


Test(webhook, ipv6_literal_delivered, .timeout = 10)
{
    const struct reply script[] = {{REPLY_STATUS, 200, NULL}};
    struct receiver *rx = receiver_start(true, script, 1);
    struct vt_webhook_options options = options_for(rx->port);
    char expected[64];

    snprintf(url_buf, sizeof url_buf, "http://[::1]:%u/v6", rx->port);
    options.url = url_buf;
    struct vt_webhook *hook = start_hook(&options);
    cr_assert(send_text(hook, "{\"v\":6}"));
    struct vt_webhook_stats stats = wait_settled(hook, 1, 3000);
    cr_expect_eq(stats.delivered, 1);

    cr_assert_eq(receiver_count(rx), 1);
    cr_expect(body_is(&rx->requests[0], "{\"v\":6}"));
    snprintf(expected, sizeof expected, "\r\nHost: [::1]:%u\r\n", rx->port);
    cr_expect(strstr(rx->requests[0].head, expected) != NULL, "%s", rx->requests[0].head);

    vt_webhook_stop(hook, 1000);
    receiver_stop(rx);
}


Test(webhook, host_name_resolved, .timeout = 10)
{
    const struct reply script[] = {{REPLY_STATUS, 200, NULL}};
    struct receiver *rx = receiver_start(false, script, 1);
    struct vt_webhook_options options = options_for(rx->port);

    /* localhost may resolve to ::1 first, where nothing listens: the next address is
     * tried. */
    snprintf(url_buf, sizeof url_buf, "http://localhost:%u", rx->port);
    options.url = url_buf;
    struct vt_webhook *hook = start_hook(&options);
    cr_assert(send_text(hook, "{}"));
    struct vt_webhook_stats stats = wait_settled(hook, 1, 3000);
    cr_expect_eq(stats.delivered, 1);
    cr_expect_eq(stats.retried, 0);

    cr_assert_eq(receiver_count(rx), 1);
    cr_expect(strncmp(rx->requests[0].head, "POST / HTTP/1.1\r\n", 17) == 0, "%s",
              rx->requests[0].head);

    vt_webhook_stop(hook, 1000);
    receiver_stop(rx);
}


/* ---- the queue ---- */

Test(webhook, fifo_order_kept, .timeout = 10)
{
    const struct reply script[] = {{REPLY_STATUS, 500, NULL}, {REPLY_STATUS, 200, NULL}};
    static const char *const bodies[] = {"{\"n\":1}", "{\"n\":2}", "{\"n\":3}", "{\"n\":4}",
                                         "{\"n\":5}"};
    struct receiver *rx = receiver_start(false, script, 2);
    struct vt_webhook_options options = options_for(rx->port);
    options.backoff_ms = 50;
    struct vt_webhook *hook = start_hook(&options);

    for (size_t i = 0; i < 5; i++)
        cr_assert(send_text(hook, bodies[i]));
    struct vt_webhook_stats stats = wait_settled(hook, 5, 5000);
    cr_expect_eq(stats.delivered, 5);
    cr_expect_eq(stats.retried, 1);

    /* The first body is retried before the second is posted. */
    cr_assert_eq(receiver_count(rx), 6);
    cr_expect(body_is(&rx->requests[0], bodies[0]));
    for (size_t i = 0; i < 5; i++)
        cr_expect(body_is(&rx->requests[i + 1], bodies[i]), "request %zu: %s", i + 1,
                  rx->requests[i + 1].body);

    vt_webhook_stop(hook, 1000);
    receiver_stop(rx);
}


Test(webhook, queue_full_drops_and_counts, .timeout = 10)
{
    const struct reply script[] = {{REPLY_STALL, 0, NULL}};
    struct receiver *rx = receiver_start(false, script, 1);
    struct vt_webhook_options options = options_for(rx->port);
    options.timeout_ms = 5000;
    options.queue_max = 2;
    struct vt_webhook *hook = start_hook(&options);
    struct vt_webhook_stats stats;

    /* The thread took the first body from the queue and is waiting for its response, so
     * two more fill the queue. */
    cr_assert(send_text(hook, "{\"n\":1}"));
    cr_assert(receiver_wait_count(rx, 1, 3000));
    cr_expect(send_text(hook, "{\"n\":2}"));
    cr_expect(send_text(hook, "{\"n\":3}"));
    cr_expect(!send_text(hook, "{\"n\":4}"));
    cr_expect(!send_text(hook, "{\"n\":5}"));
    vt_webhook_stats(hook, &stats);
    cr_expect_eq(stats.queued, 3);
    cr_expect_eq(stats.dropped, 2);

    /* Stopping without drain time drops the body in flight and the two queued. */
    vt_webhook_stop(hook, 0);
    receiver_stop(rx);
}


Test(webhook, send_never_blocks_on_stalled_receiver, .timeout = 10)
{
    const struct reply script[] = {{REPLY_STALL, 0, NULL}};
    struct receiver *rx = receiver_start(false, script, 1);
    struct vt_webhook_options options = options_for(rx->port);
    options.timeout_ms = 5000;
    options.queue_max = 1000;
    struct vt_webhook *hook = start_hook(&options);
    int64_t slowest_ns = 0;

    cr_assert(send_text(hook, "{\"n\":0}"));
    cr_assert(receiver_wait_count(rx, 1, 3000), "the receiver never got the first body");
    for (int i = 0; i < 200; i++) {
        uint64_t start = vt_monotonic_ns();

        cr_expect(send_text(hook, "{\"alert\":\"queued behind a stalled receiver\"}"));
        int64_t took = (int64_t)(vt_monotonic_ns() - start);
        if (took > slowest_ns)
            slowest_ns = took;
    }
    /* A blocking send would take the 5000 ms attempt timeout, and 20 ms leaves room for a
     * busy machine. */
    cr_expect_lt(slowest_ns, 20 * 1000000LL, "the slowest send took %lld us",
                 (long long)(slowest_ns / 1000));

    int64_t start = now_ms();
    vt_webhook_stop(hook, 0);
    int64_t stop_took = now_ms() - start;
    cr_expect_lt(stop_took, 1000, "stop(0) waited %lld ms for the stalled attempt",
                 (long long)stop_took);
    receiver_stop(rx);
}


Test(webhook, stop_drains_the_queue, .timeout = 10)
{
    const struct reply script[] = {{REPLY_STATUS, 200, NULL}};
    struct receiver *rx = receiver_start(false, script, 1);
    struct vt_webhook_options options = options_for(rx->port);
    options.queue_max = 32;
    struct vt_webhook *hook = start_hook(&options);
    char body[32];

    for (int i = 0; i < 20; i++) {
        snprintf(body, sizeof body, "{\"n\":%d}", i);
        cr_assert(send_text(hook, body));
    }
    int64_t start = now_ms();
    vt_webhook_stop(hook, 5000);
    int64_t took = now_ms() - start;
    cr_expect_lt(took, 3000, "draining 20 bodies to a fast receiver took %lld ms",
                 (long long)took);

    cr_assert_eq(receiver_count(rx), 20);
    for (int i = 0; i < 20; i++) {
        snprintf(body, sizeof body, "{\"n\":%d}", i);
        cr_expect(body_is(&rx->requests[i], body), "request %d: %s", i, rx->requests[i].body);
    }
    receiver_stop(rx);
}


Test(webhook, stop_drops_after_drain_ms, .timeout = 10)
{
    const struct reply script[] = {{REPLY_STALL, 0, NULL}};
    struct receiver *rx = receiver_start(false, script, 1);
    struct vt_webhook_options options = options_for(rx->port);
    options.timeout_ms = 5000;
    struct vt_webhook *hook = start_hook(&options);
    struct vt_webhook_stats stats;
    char log[4096];

    for (int i = 0; i < 3; i++)
        cr_assert(send_text(hook, "{}"));
    cr_assert(receiver_wait_count(rx, 1, 3000));
    vt_webhook_stats(hook, &stats);
    cr_expect_eq(stats.queued, 3);
    cr_expect_eq(stats.delivered + stats.failed + stats.dropped, 0);

    /* The hook is freed by stop, so its log line is the only record of what it dropped. */
    struct captured_log capture = capture_log_begin();
    int64_t start = now_ms();
    vt_webhook_stop(hook, 300);
    int64_t took = now_ms() - start;
    capture_log_end(&capture, log, sizeof log);

    cr_expect_geq(took, 280, "stop returned after %lld ms, before drain_ms", (long long)took);
    cr_expect_lt(took, 1500, "stop took %lld ms with drain_ms 300", (long long)took);
    cr_expect(strstr(log, "drain time of 300 ms ran out; undelivered alerts dropped: 3") != NULL,
              "%s", log);
    cr_expect(strstr(log, "secret-token") == NULL, "the query reached the log: %s", log);
    receiver_stop(rx);
}


Test(webhook, stop_interrupts_backoff, .timeout = 10)
{
    const struct reply script[] = {{REPLY_STATUS, 500, NULL}};
    struct receiver *rx = receiver_start(false, script, 1);
    struct vt_webhook_options options = options_for(rx->port);
    options.backoff_ms = 5000;
    options.backoff_max_ms = 5000;
    struct vt_webhook *hook = start_hook(&options);

    cr_assert(send_text(hook, "{}"));
    cr_assert(receiver_wait_count(rx, 1, 3000));
    sleep_ms(20);

    int64_t start = now_ms();
    vt_webhook_stop(hook, 100);
    int64_t took = now_ms() - start;
    cr_expect_lt(took, 1000, "stop waited %lld ms in a 5000 ms backoff", (long long)took);
    cr_expect_eq(receiver_count(rx), 1);
    receiver_stop(rx);
}


Test(webhook, disabled_hook_drops_everything)
{
    struct vt_webhook_options options = {.url = ""};
    struct vt_webhook *hook = vt_webhook_start(&options, err, sizeof err);
    struct vt_webhook_stats stats;

    cr_assert_not_null(hook, "%s", err);
    cr_expect(!send_text(hook, "{}"));
    cr_expect(!send_text(hook, "{}"));
    vt_webhook_stats(hook, &stats);
    cr_expect_eq(stats.dropped, 2);
    cr_expect_eq(stats.queued, 0);
    vt_webhook_stop(hook, 1000);

    options.url = NULL;
    hook = vt_webhook_start(&options, err, sizeof err);
    cr_assert_not_null(hook, "%s", err);
    cr_expect(!send_text(hook, "{}"));
    vt_webhook_stop(hook, 0);
}


Test(webhook, start_rejects_invalid_options)
{
    struct vt_webhook_options options = options_for(8080);
    struct vt_webhook_options bad;

    bad = options;
    bad.timeout_ms = 0;
    cr_expect_null(vt_webhook_start(&bad, err, sizeof err));
    cr_expect(strstr(err, "timeout_ms") != NULL, "%s", err);

    bad = options;
    bad.attempts = 0;
    cr_expect_null(vt_webhook_start(&bad, err, sizeof err));
    cr_expect(strstr(err, "attempts") != NULL, "%s", err);

    bad = options;
    bad.backoff_ms = 500;
    bad.backoff_max_ms = 100;
    cr_expect_null(vt_webhook_start(&bad, err, sizeof err));
    cr_expect(strstr(err, "backoff_ms") != NULL, "%s", err);

    bad = options;
    bad.queue_max = 0;
    cr_expect_null(vt_webhook_start(&bad, err, sizeof err));
    cr_expect(strstr(err, "queue_max") != NULL, "%s", err);

    bad = options;
    bad.url = "https://relay.example/hook";
    cr_expect_null(vt_webhook_start(&bad, err, sizeof err));
    cr_expect(strstr(err, "https is not supported") != NULL, "%s", err);

    cr_expect_null(vt_webhook_start(NULL, err, sizeof err));
}


/* ---- URL parsing ---- */

struct valid_url {
    const char *url;
    const char *host;
    unsigned port;
    const char *host_header;
    const char *target;
    const char *display;
};

Test(webhook_url, valid_forms_parsed)
{
    static const struct valid_url cases[] = {
        {"http://example.com", "example.com", 80, "example.com", "/", "http://example.com/"},
        {"http://example.com/", "example.com", 80, "example.com", "/", "http://example.com/"},
        {"HTTP://Example.COM:8080/a/b", "Example.COM", 8080, "Example.COM:8080", "/a/b",
         "http://Example.COM:8080/a/b"},
        {"http://10.0.0.7:80/x", "10.0.0.7", 80, "10.0.0.7", "/x", "http://10.0.0.7/x"},
        {"http://127.0.0.1:9/hook?token=abc&x=1", "127.0.0.1", 9, "127.0.0.1:9",
         "/hook?token=abc&x=1", "http://127.0.0.1:9/hook"},
        {"http://relay?key=k", "relay", 80, "relay", "/?key=k", "http://relay/"},
        {"http://[::1]:8080/v6", "::1", 8080, "[::1]:8080", "/v6", "http://[::1]:8080/v6"},
        {"http://[2001:db8::1]", "2001:db8::1", 80, "[2001:db8::1]", "/",
         "http://[2001:db8::1]/"},
        {"http://my_host-1.internal:65535/", "my_host-1.internal", 65535,
         "my_host-1.internal:65535", "/", "http://my_host-1.internal:65535/"},
        {"http://h/a%20b;c=d", "h", 80, "h", "/a%20b;c=d", "http://h/a%20b;c=d"},
    };
    struct vt_webhook_url url;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct valid_url *c = &cases[i];

        cr_assert_eq(vt_webhook_url_parse(c->url, &url, err, sizeof err), 0, "%s: %s", c->url,
                     err);
        cr_expect_str_eq(url.host, c->host, "%s", c->url);
        cr_expect_eq(url.port, c->port, "%s", c->url);
        cr_expect_str_eq(url.host_header, c->host_header, "%s", c->url);
        cr_expect_str_eq(url.target, c->target, "%s", c->url);
        cr_expect_str_eq(url.display, c->display, "%s", c->url);
    }
}


struct invalid_url {
    const char *url;
    const char *message; /* a part of the expected message */
};

Test(webhook_url, invalid_forms_rejected)
{
    static const struct invalid_url cases[] = {
        {"", "empty"},
        {"https://relay.example/hook",
         "https is not supported; post to an http endpoint or a TLS-terminating relay"},
        {"HTTPS://relay.example/hook", "https is not supported"},
        {"ftp://files.example/x", "scheme \"ftp\" is not supported"},
        {"example.com/hook", "http:// scheme is missing"},
        {"http://user:pass@example.com/x", "user information (user:password@)"},
        {"http://token@example.com/x", "user information"},
        {"http://", "host is missing"},
        {"http:///path", "host is missing"},
        {"http://:8080/", "host is missing"},
        {"http://example.com:0/", "out of range"},
        {"http://example.com:65536/", "out of range"},
        {"http://example.com:99999999999/", "out of range"},
        {"http://example.com:/", "port after ':' is missing"},
        {"http://example.com:80a/", "not a number"},
        {"http://example.com:-1/", "not a number"},
        {"http://::1/", "must be in brackets"},
        {"http://[::1/", "'[' without ']'"},
        {"http://[]/", "invalid IPv6 address"},
        {"http://[not-v6]/", "invalid IPv6 address \"not-v6\""},
        {"http://[fe80::1%25eth0]/", "invalid IPv6 address"},
        {"http://[::1]x/", "unexpected text after ']'"},
        {"http://exa!mple.com/", "the host contains '!'"},
        {"http://example.com/a b", "at offset 20"},
        {"http://example.com/\r\nX-Injected: 1", "control character"},
        {"http://example.com/\x7f", "control character"},
        {"http://example.com/caf\xc3\xa9", "non-ASCII"},
        {"http://example.com/#frag", "fragment"},
    };
    struct vt_webhook_url url;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct invalid_url *c = &cases[i];

        cr_expect_eq(vt_webhook_url_parse(c->url, &url, err, sizeof err), -1, "%s", c->url);
        cr_expect(strstr(err, c->message) != NULL, "%s: expected \"%s\" in: %s", c->url,
                  c->message, err);
    }
}


Test(webhook_url, messages_name_url_and_form)
{
    struct vt_webhook_url url;

    cr_assert_eq(vt_webhook_url_parse("http://:8080/alerts", &url, err, sizeof err), -1);
    cr_expect(strstr(err, "\"http://:8080/alerts\"") != NULL, "%s", err);
    cr_expect(strstr(err, "http://host[:port][/path][?query]") != NULL, "%s", err);

    cr_assert_eq(vt_webhook_url_parse("gopher://x", &url, err, sizeof err), -1);
    cr_expect(strstr(err, "http://host[:port][/path][?query]") != NULL, "%s", err);
}


Test(webhook_url, messages_hide_secrets)
{
    struct vt_webhook_url url;

    cr_assert_eq(vt_webhook_url_parse("http://user:hunter2@example.com/x?token=s3cr3t", &url,
                                      err, sizeof err),
                 -1);
    cr_expect(strstr(err, "hunter2") == NULL, "%s", err);
    cr_expect(strstr(err, "user:hunter2") == NULL, "%s", err);
    cr_expect(strstr(err, "s3cr3t") == NULL, "%s", err);
    cr_expect(strstr(err, "example.com/x") != NULL, "%s", err);

    cr_assert_eq(vt_webhook_url_parse("http://exa!mple.com/x?token=s3cr3t", &url, err,
                                      sizeof err),
                 -1);
    cr_expect(strstr(err, "s3cr3t") == NULL, "%s", err);

    cr_assert_eq(vt_webhook_url_parse("http://example.com/x?token=s3cr3t\n", &url, err,
                                      sizeof err),
                 -1);
    cr_expect(strstr(err, "s3cr3t") == NULL, "%s", err);
    cr_expect(strchr(err, '\n') == NULL, "a newline in the message: %s", err);
}


Test(webhook_url, length_limit)
{
    static char long_url[VT_WEBHOOK_URL_MAX + 2];
    struct vt_webhook_url url;
    size_t prefix = strlen("http://example.com/");

    memcpy(long_url, "http://example.com/", prefix);
    memset(long_url + prefix, 'a', VT_WEBHOOK_URL_MAX - prefix);
    long_url[VT_WEBHOOK_URL_MAX] = '\0';
    cr_expect_eq(vt_webhook_url_parse(long_url, &url, err, sizeof err), 0, "%s", err);
    cr_expect_eq(strlen(url.target), VT_WEBHOOK_URL_MAX - prefix + 1);

    long_url[VT_WEBHOOK_URL_MAX] = 'a';
    long_url[VT_WEBHOOK_URL_MAX + 1] = '\0';
    cr_expect_eq(vt_webhook_url_parse(long_url, &url, err, sizeof err), -1);
    cr_expect(strstr(err, "longer than 2048 bytes") != NULL, "%s", err);
    cr_expect_lt(strlen(err), 300, "the message quotes the whole URL: %s", err);
}
