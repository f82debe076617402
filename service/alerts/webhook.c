/*
 * vitrine: delivery of alerts to a webhook (see include/vitrine/webhook.h).
 *
 * One mutex guards the queue and is held only to push or pop. The webhook thread does all
 * network I/O without it, on non-blocking sockets that it polls together with an eventfd
 * that vt_webhook_stop writes, so that stop cuts short a connect, a read or a backoff wait.
 */
#include "vitrine/webhook.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "vitrine/log.h"
#include "vitrine/util.h"

#define URL_FORM "http://host[:port][/path][?query]"

/* Bytes of a URL quoted in an error message. Longer URLs end in "...". */
#define URL_QUOTE_MAX 120

/* Request line and headers: the target, the Host header and about 200 fixed bytes. */
#define REQUEST_HEAD_MAX (VT_WEBHOOK_URL_MAX + VT_WEBHOOK_HOST_MAX + 512)

/* Bytes of a response read for the status line and headers. The rest is never read. */
#define RESPONSE_HEAD_MAX 4096

#define ERROR_MAX 512

#define TIMEOUT_MAX_MS 3600000
#define ATTEMPTS_MAX 1000
#define BACKOFF_MAX_MS 86400000

/* A body in the queue, which owns it. */
struct queued_body {
    struct queued_body *next;
    size_t len;
    char data[];
};

struct vt_webhook {
    bool enabled; /* false: the URL was empty, there is no thread and every body is dropped */
    struct vt_webhook_url url;
    int64_t timeout_ms;
    int64_t attempts;
    int64_t backoff_ms;
    int64_t backoff_max_ms;
    size_t queue_max;

    pthread_mutex_t lock; /* guards head, tail and queue_len */
    pthread_cond_t queue_changed;
    struct queued_body *head;
    struct queued_body *tail;
    size_t queue_len;

    pthread_t thread;
    int wake_fd;                  /* eventfd, readable once stop was requested */
    atomic_bool stopping;         /* written under lock, so the thread cannot miss it */
    atomic_int_fast64_t drain_deadline_ms; /* monotonic, set before stopping */

    atomic_uint_fast64_t queued, delivered, retried, failed, dropped;
    atomic_uint_fast64_t full_drops; /* drops since the queue was last found full */
};

/* The result of one attempt, or of one step of it. */
enum outcome {
    OUTCOME_DELIVERED, /* 2xx */
    OUTCOME_RETRY,     /* connection error, timeout, invalid response, 408, 429, 5xx */
    OUTCOME_FINAL,     /* 3xx and other 4xx: a retry would get the same status */
    OUTCOME_ABORTED,   /* the drain time of vt_webhook_stop ran out */
};

struct attempt {
    int status;             /* HTTP status, 0 when none was read */
    int64_t retry_after_ms; /* Retry-After of a 429 or 503 in ms, -1 when absent */
    char error[ERROR_MAX];
};

/* The webhook thread's view of the receiver, for logging changes only. */
struct delivery_state {
    bool failing;
    uint64_t failed_attempts; /* since delivery started failing */
};


static int64_t monotonic_ms(void)
{
    return (int64_t)(vt_monotonic_ns() / 1000000u);
}


/* ---- URL parsing ---- */

/* Copy url into out for an error message: without user information, query or fragment,
 * with bytes that are not printable ASCII shown as '?', cut to URL_QUOTE_MAX bytes. */
static void quote_url(const char *url, char *out, size_t outsize)
{
    const char *authority = strstr(url, "://");
    const char *skip_from = NULL;
    const char *skip_to = NULL;
    size_t n = 0;

    if (authority != NULL) {
        authority += 3;
        size_t authority_len = strcspn(authority, "/?#");
        const char *at = NULL;

        for (size_t i = 0; i < authority_len; i++) {
            if (authority[i] == '@')
                at = authority + i;
        }
        if (at != NULL) {
            skip_from = authority;
            skip_to = at + 1;
        }
    }

    for (const char *p = url; *p != '\0' && *p != '?' && *p != '#'; p++) {
        if (p == skip_from)
            p = skip_to;
        if (*p == '\0' || *p == '?' || *p == '#')
            break;
        if (n + 4 >= outsize || n >= URL_QUOTE_MAX) {
            vt_strlcpy(out + n, "...", outsize - n);
            return;
        }
        out[n++] = (*p > ' ' && *p < 0x7f) ? *p : '?';
    }
    out[n] = '\0';
}


static int url_error(char *err, size_t errsize, const char *url, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int url_error(char *err, size_t errsize, const char *url, const char *fmt, ...)
{
    char quoted[URL_QUOTE_MAX + 8];
    char reason[256];
    va_list ap;

    quote_url(url, quoted, sizeof quoted);
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    snprintf(err, errsize, "invalid webhook URL \"%s\": %s", quoted, reason);
    return -1;
}


static bool host_char_valid(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_';
}


/* Parse the host and port of an authority (host[:port] or [v6][:port]) into out. */
static int parse_authority(const char *url, const char *authority, size_t len,
                           struct vt_webhook_url *out, char *err, size_t errsize)
{
    const char *port = NULL;
    size_t port_len = 0;
    size_t host_len;
    bool ipv6 = false;

    if (len == 0)
        return url_error(err, errsize, url, "the host is missing; expected " URL_FORM);

    if (authority[0] == '[') {
        const char *close = memchr(authority, ']', len);
        struct in6_addr addr;

        if (close == NULL)
            return url_error(err, errsize, url, "'[' without ']'; write IPv6 addresses as "
                                                "http://[::1]:8080/");
        host_len = (size_t)(close - authority) - 1;
        if (host_len == 0 || host_len >= INET6_ADDRSTRLEN)
            return url_error(err, errsize, url, "invalid IPv6 address; write IPv6 addresses "
                                                "as http://[::1]:8080/");
        memcpy(out->host, authority + 1, host_len);
        out->host[host_len] = '\0';
        if (inet_pton(AF_INET6, out->host, &addr) != 1)
            return url_error(err, errsize, url, "invalid IPv6 address \"%s\"; write IPv6 "
                             "addresses as http://[::1]:8080/", out->host);
        ipv6 = true;

        size_t rest = len - (size_t)(close + 1 - authority);
        if (rest > 0) {
            if (close[1] != ':')
                return url_error(err, errsize, url, "unexpected text after ']'; expected "
                                                    URL_FORM);
            port = close + 2;
            port_len = rest - 1;
        }
    } else {
        const char *colon = memchr(authority, ':', len);

        host_len = colon != NULL ? (size_t)(colon - authority) : len;
        if (colon != NULL && memchr(colon + 1, ':', len - host_len - 1) != NULL)
            return url_error(err, errsize, url, "an IPv6 address must be in brackets, as in "
                                                "http://[::1]:8080/");
        if (host_len == 0)
            return url_error(err, errsize, url, "the host is missing; expected " URL_FORM);
        if (host_len > VT_WEBHOOK_HOST_MAX)
            return url_error(err, errsize, url, "the host is longer than %d bytes",
                             VT_WEBHOOK_HOST_MAX);
        for (size_t i = 0; i < host_len; i++) {
            if (!host_char_valid(authority[i]))
                return url_error(err, errsize, url, "the host contains '%c'; expected a DNS "
                                 "name, an IPv4 address or an IPv6 address in brackets",
                                 authority[i]);
        }
        memcpy(out->host, authority, host_len);
        out->host[host_len] = '\0';
        if (colon != NULL) {
            port = colon + 1;
            port_len = len - host_len - 1;
        }
    }

    out->port = 80;
    if (port != NULL) {
        char digits[8];
        int64_t value;

        if (port_len == 0)
            return url_error(err, errsize, url, "the port after ':' is missing; expected 1 "
                                                "to 65535");
        for (size_t i = 0; i < port_len; i++) {
            if (port[i] < '0' || port[i] > '9')
                return url_error(err, errsize, url, "the port is not a number; expected 1 "
                                                    "to 65535");
        }
        if (port_len >= sizeof digits)
            return url_error(err, errsize, url, "the port is out of range; expected 1 to "
                                                "65535");
        memcpy(digits, port, port_len);
        digits[port_len] = '\0';
        if (vt_parse_int64(digits, 1, 65535, &value) != 0)
            return url_error(err, errsize, url, "the port %s is out of range; expected 1 to "
                             "65535", digits);
        out->port = (uint16_t)value;
    }

    if (out->port == 80)
        snprintf(out->host_header, sizeof out->host_header, ipv6 ? "[%s]" : "%s", out->host);
    else
        snprintf(out->host_header, sizeof out->host_header, ipv6 ? "[%s]:%u" : "%s:%u",
                 out->host, (unsigned)out->port);
    return 0;
}


int vt_webhook_url_parse(const char *url, struct vt_webhook_url *out, char *err,
                         size_t errsize)
{
    static const char scheme[] = "http://";
    size_t len;

    memset(out, 0, sizeof *out);
    if (url == NULL || url[0] == '\0') {
        snprintf(err, errsize, "the webhook URL is empty; expected " URL_FORM);
        return -1;
    }

    len = strnlen(url, VT_WEBHOOK_URL_MAX + 1);
    if (len > VT_WEBHOOK_URL_MAX)
        return url_error(err, errsize, url, "longer than %d bytes", VT_WEBHOOK_URL_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];

        if (c <= ' ' || c >= 0x7f)
            return url_error(err, errsize, url, "a space, control character or non-ASCII "
                             "byte at offset %zu; percent-encode it", i);
    }

    if (vt_strncaseeq(url, "https://", 8))
        return url_error(err, errsize, url, "https is not supported; post to an http "
                                            "endpoint or a TLS-terminating relay");
    if (!vt_strncaseeq(url, scheme, sizeof scheme - 1)) {
        const char *separator = strstr(url, "://");

        if (separator == NULL)
            return url_error(err, errsize, url, "the http:// scheme is missing; expected "
                                                URL_FORM);
        return url_error(err, errsize, url, "the scheme \"%.*s\" is not supported; expected "
                         URL_FORM, (int)(separator - url < 16 ? separator - url : 16), url);
    }
    if (strchr(url, '#') != NULL)
        return url_error(err, errsize, url, "a fragment (#...) is never sent to the "
                                            "server; remove it");

    const char *authority = url + sizeof scheme - 1;
    size_t authority_len = strcspn(authority, "/?");
    const char *target = authority + authority_len;

    if (memchr(authority, '@', authority_len) != NULL)
        return url_error(err, errsize, url, "user information (user:password@) is not "
                         "accepted because it would be logged; pass a token in the query "
                         "instead");
    if (parse_authority(url, authority, authority_len, out, err, errsize) != 0)
        return -1;

    /* "http://host" and "http://host?q" post to "/" and "/?q". */
    snprintf(out->target, sizeof out->target, "%s%s", target[0] == '/' ? "" : "/", target);
    snprintf(out->display, sizeof out->display, "http://%s%.*s", out->host_header,
             (int)strcspn(out->target, "?"), out->target);
    return 0;
}


/* ---- the queue ---- */

/* Take the oldest body, waiting while the queue is empty. NULL once stop was requested and
 * the queue is empty. */
static struct queued_body *queue_pop(struct vt_webhook *hook)
{
    struct queued_body *item;

    pthread_mutex_lock(&hook->lock);
    while (hook->head == NULL && !atomic_load(&hook->stopping))
        pthread_cond_wait(&hook->queue_changed, &hook->lock);
    item = hook->head;
    if (item != NULL) {
        hook->head = item->next;
        if (hook->head == NULL)
            hook->tail = NULL;
        hook->queue_len--;
    }
    pthread_mutex_unlock(&hook->lock);
    return item;
}


/* Empty the queue. Returns the number of bodies freed. */
static uint64_t queue_discard(struct vt_webhook *hook)
{
    struct queued_body *item;
    uint64_t n = 0;

    pthread_mutex_lock(&hook->lock);
    item = hook->head;
    hook->head = NULL;
    hook->tail = NULL;
    hook->queue_len = 0;
    pthread_mutex_unlock(&hook->lock);

    while (item != NULL) {
        struct queued_body *next = item->next;

        free(item);
        item = next;
        n++;
    }
    return n;
}


/* ---- waiting ---- */

/* True once stop was requested and its drain time is over. */
static bool drain_over(struct vt_webhook *hook)
{
    return atomic_load(&hook->stopping) &&
           monotonic_ms() >= atomic_load(&hook->drain_deadline_ms);
}


/* Wait until fd has one of events or deadline_ms passes (with fd -1, only wait). A requested
 * stop shortens the wait to its drain deadline. Returns 1 when fd is ready, 0 when the time
 * is over and -1 with errno when poll failed. */
static int wait_until(struct vt_webhook *hook, int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        bool stopping = atomic_load(&hook->stopping);
        int64_t deadline = deadline_ms;
        struct pollfd fds[2];
        nfds_t n = 0;

        if (stopping && atomic_load(&hook->drain_deadline_ms) < deadline)
            deadline = atomic_load(&hook->drain_deadline_ms);
        int64_t left = deadline - monotonic_ms();
        if (left <= 0)
            return 0;

        if (fd >= 0)
            fds[n++] = (struct pollfd){.fd = fd, .events = events};
        /* Once stopping, the eventfd stays readable and the deadline above already contains
         * the drain deadline, so polling the eventfd again would only spin. */
        if (!stopping)
            fds[n++] = (struct pollfd){.fd = hook->wake_fd, .events = POLLIN};

        int ready = poll(fds, n, left > INT_MAX ? INT_MAX : (int)left);
        if (ready < 0 && errno != EINTR)
            return -1;
        if (ready > 0 && fd >= 0 && fds[0].revents != 0)
            return 1;
    }
}


/* ---- one attempt ---- */

static void describe_address(const struct addrinfo *ai, char *out, size_t outsize)
{
    char host[INET6_ADDRSTRLEN];
    char port[8];

    if (getnameinfo(ai->ai_addr, ai->ai_addrlen, host, sizeof host, port, sizeof port,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        vt_strlcpy(out, "?", outsize);
        return;
    }
    snprintf(out, outsize, ai->ai_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}


/* Connect a non-blocking socket to one address. Returns the socket, or -1 with the reason in
 * attempt->error. */
static int connect_address(struct vt_webhook *hook, const struct addrinfo *ai,
                           int64_t deadline_ms, struct attempt *attempt, bool *aborted)
{
    char address[INET6_ADDRSTRLEN + 16];
    int fd;

    describe_address(ai, address, sizeof address);
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                ai->ai_protocol);
    if (fd < 0) {
        snprintf(attempt->error, sizeof attempt->error, "socket for %s failed: %s", address,
                 strerror(errno));
        return -1;
    }

    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        int error = errno;
        socklen_t error_len = sizeof error;

        if (error != EINPROGRESS) {
            snprintf(attempt->error, sizeof attempt->error, "connect to %s failed: %s",
                     address, strerror(error));
            close(fd);
            return -1;
        }

        int ready = wait_until(hook, fd, POLLOUT, deadline_ms);
        if (ready == 0) {
            *aborted = drain_over(hook);
            snprintf(attempt->error, sizeof attempt->error, "connect to %s timed out after "
                     "%" PRId64 " ms", address, hook->timeout_ms);
            close(fd);
            return -1;
        }
        if (ready < 0)
            error = errno;
        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &error_len) != 0)
            error = errno;
        if (error != 0) {
            snprintf(attempt->error, sizeof attempt->error, "connect to %s failed: %s",
                     address, strerror(error));
            close(fd);
            return -1;
        }
    }
    return fd;
}


/* Resolve the host and connect to the first address that accepts. Returns the socket, or
 * -1 with the reason (of the last address tried) in attempt->error. */
static int connect_host(struct vt_webhook *hook, int64_t deadline_ms, struct attempt *attempt,
                        bool *aborted)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *addresses = NULL;
    char port[8];
    int fd = -1;
    int rc;

    /* NOTE: getaddrinfo has no timeout of its own, so a slow DNS server can make an attempt
     * last longer than timeout_ms (resolv.conf sets the resolver's timeouts). */
    snprintf(port, sizeof port, "%u", (unsigned)hook->url.port);
    rc = getaddrinfo(hook->url.host, port, &hints, &addresses);
    if (rc != 0) {
        snprintf(attempt->error, sizeof attempt->error, "cannot resolve %s: %s",
                 hook->url.host, rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        return -1;
    }

    for (const struct addrinfo *ai = addresses; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = connect_address(hook, ai, deadline_ms, attempt, aborted);
        if (*aborted || monotonic_ms() >= deadline_ms)
            break;
    }
    freeaddrinfo(addresses);
    return fd;
}


/* Send the request head and the body. Returns 0, or -1 with the reason in attempt->error. */
static int send_request(struct vt_webhook *hook, int fd, const char *head, size_t head_len,
                        const struct queued_body *body, int64_t deadline_ms,
                        struct attempt *attempt, bool *aborted)
{
    struct iovec iov[2] = {{.iov_base = (void *)head, .iov_len = head_len},
                           {.iov_base = (void *)body->data, .iov_len = body->len}};
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2};

    while (msg.msg_iovlen > 0) {
        /* MSG_NOSIGNAL: a receiver that closes early gives EPIPE, not SIGPIPE. */
        ssize_t sent = sendmsg(fd, &msg, MSG_NOSIGNAL);

        if (sent < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                snprintf(attempt->error, sizeof attempt->error, "sending the request "
                         "failed: %s", strerror(errno));
                return -1;
            }
            int ready = wait_until(hook, fd, POLLOUT, deadline_ms);
            if (ready == 0) {
                *aborted = drain_over(hook);
                snprintf(attempt->error, sizeof attempt->error, "sending the request timed "
                         "out after %" PRId64 " ms", hook->timeout_ms);
                return -1;
            }
            if (ready < 0) {
                snprintf(attempt->error, sizeof attempt->error, "poll failed: %s",
                         strerror(errno));
                return -1;
            }
            continue;
        }

        size_t done = (size_t)sent;
        while (msg.msg_iovlen > 0 && done >= msg.msg_iov[0].iov_len) {
            done -= msg.msg_iov[0].iov_len;
            msg.msg_iov++;
            msg.msg_iovlen--;
        }
        if (msg.msg_iovlen > 0) {
            msg.msg_iov[0].iov_base = (char *)msg.msg_iov[0].iov_base + done;
            msg.msg_iov[0].iov_len -= done;
        }
    }
    return 0;
}


/* Parse "HTTP/d.d SSS" at the start of a line of len bytes (without its end). Returns the
 * status (100 to 599) or 0 when the line is not a status line. */
static int parse_status_line(const char *line, size_t len)
{
    int status;

    if (len < 12 || memcmp(line, "HTTP/", 5) != 0 || line[5] < '0' || line[5] > '9' ||
        line[6] != '.' || line[7] < '0' || line[7] > '9' || line[8] != ' ')
        return 0;
    for (size_t i = 9; i < 12; i++) {
        if (line[i] < '0' || line[i] > '9')
            return 0;
    }
    if (len > 12 && line[12] != ' ')
        return 0;
    status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    return status >= 100 && status <= 599 ? status : 0;
}


/* The offset just past the empty line that ends the header block in buf, or 0 when the
 * block is not complete yet. Accepts lines ending in "\r\n" or "\n". */
static size_t header_block_end(const char *buf, size_t len)
{
    size_t start = 0;

    for (;;) {
        const char *end = memchr(buf + start, '\n', len - start);

        if (end == NULL)
            return 0;
        size_t line_len = (size_t)(end - (buf + start));
        if (line_len == 0 || (line_len == 1 && buf[start] == '\r'))
            return (size_t)(end - buf) + 1;
        start = (size_t)(end - buf) + 1;
    }
}


/* The Retry-After of a header block in ms, capped at cap_ms, or -1 when there is none in
 * delta-seconds form. NOTE: the HTTP-date form ("Retry-After: Wed, 21 Oct ...") is
 * ignored, so the normal backoff applies to it. */
static int64_t parse_retry_after(const char *block, size_t len, int64_t cap_ms)
{
    static const char name[] = "retry-after:";
    size_t start = 0;

    while (start < len) {
        const char *end = memchr(block + start, '\n', len - start);
        size_t line_len = end != NULL ? (size_t)(end - (block + start)) : len - start;
        const char *line = block + start;

        start += line_len + 1;
        if (line_len < sizeof name - 1 || !vt_strncaseeq(line, name, sizeof name - 1))
            continue;

        size_t i = sizeof name - 1;
        while (i < line_len && (line[i] == ' ' || line[i] == '\t'))
            i++;
        size_t digits_start = i;
        int64_t seconds = 0;
        while (i < line_len && line[i] >= '0' && line[i] <= '9') {
            if (seconds < cap_ms / 1000 + 1)
                seconds = seconds * 10 + (line[i] - '0');
            i++;
        }
        while (i < line_len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
            i++;
        if (i == digits_start || i != line_len)
            return -1;
        return seconds * 1000 < cap_ms ? seconds * 1000 : cap_ms;
    }
    return -1;
}


/* Read the final status (skipping 1xx interim responses) and, for 429 and 503, the
 * Retry-After header. Returns 0 with attempt->status set, or -1 with the reason. */
static int read_status(struct vt_webhook *hook, int fd, int64_t deadline_ms,
                       struct attempt *attempt, bool *aborted)
{
    char buf[RESPONSE_HEAD_MAX];
    size_t used = 0;
    bool closed = false;

    for (;;) {
        const char *line_end = memchr(buf, '\n', used);

        if (line_end != NULL) {
            size_t line_len = (size_t)(line_end - buf);

            if (line_len > 0 && buf[line_len - 1] == '\r')
                line_len--;
            attempt->status = parse_status_line(buf, line_len);
            if (attempt->status == 0) {
                snprintf(attempt->error, sizeof attempt->error, "the response does not "
                         "start with an HTTP status line");
                return -1;
            }
            bool wants_headers = attempt->status < 200 || attempt->status == 429 ||
                                 attempt->status == 503;
            if (!wants_headers)
                return 0;

            size_t block_end = header_block_end(buf, used);
            if (block_end > 0 && attempt->status < 200) {
                memmove(buf, buf + block_end, used - block_end);
                used -= block_end;
                attempt->status = 0;
                continue;
            }
            if (block_end > 0 || ((closed || used == sizeof buf) && attempt->status >= 200)) {
                attempt->retry_after_ms = parse_retry_after(buf, block_end > 0 ? block_end
                                                                                : used,
                                                            hook->backoff_max_ms);
                return 0;
            }
        }
        attempt->status = 0;
        if (closed) {
            snprintf(attempt->error, sizeof attempt->error, "the connection closed before a "
                     "final status line");
            return -1;
        }
        if (used == sizeof buf) {
            snprintf(attempt->error, sizeof attempt->error, "no final status line in the "
                     "first %d bytes of the response", RESPONSE_HEAD_MAX);
            return -1;
        }

        ssize_t got = recv(fd, buf + used, sizeof buf - used, 0);
        if (got > 0) {
            used += (size_t)got;
            continue;
        }
        if (got == 0) {
            closed = true;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            snprintf(attempt->error, sizeof attempt->error, "reading the response failed: %s",
                     strerror(errno));
            return -1;
        }
        int ready = wait_until(hook, fd, POLLIN, deadline_ms);
        if (ready == 0) {
            *aborted = drain_over(hook);
            snprintf(attempt->error, sizeof attempt->error, "the response timed out after %"
                     PRId64 " ms", hook->timeout_ms);
            return -1;
        }
        if (ready < 0) {
            snprintf(attempt->error, sizeof attempt->error, "poll failed: %s",
                     strerror(errno));
            return -1;
        }
    }
}


static enum outcome classify_status(struct attempt *attempt)
{
    int status = attempt->status;

    if (status >= 200 && status <= 299)
        return OUTCOME_DELIVERED;
    if (status == 408 || status == 429 || status >= 500) {
        snprintf(attempt->error, sizeof attempt->error, "status %d", status);
        return OUTCOME_RETRY;
    }
    if (status >= 300 && status <= 399)
        snprintf(attempt->error, sizeof attempt->error, "status %d (redirects are not "
                 "followed; set the URL the redirect points to)", status);
    else
        snprintf(attempt->error, sizeof attempt->error, "status %d", status);
    return OUTCOME_FINAL;
}


/* Post a body once: connect, send, read the status, close. */
static enum outcome post_once(struct vt_webhook *hook, const struct queued_body *body,
                              struct attempt *attempt)
{
    char head[REQUEST_HEAD_MAX];
    int64_t deadline_ms = monotonic_ms() + hook->timeout_ms;
    bool aborted = false;
    int head_len;
    int fd;
    int rc;

    attempt->status = 0;
    attempt->retry_after_ms = -1;
    attempt->error[0] = '\0';

    head_len = snprintf(head, sizeof head,
                        "POST %s HTTP/1.1\r\n"
                        "Host: %s\r\n"
                        "Content-Type: application/json\r\n"
                        "Content-Length: %zu\r\n"
                        "Connection: close\r\n"
                        "User-Agent: vitrine/" VITRINE_VERSION "\r\n"
                        "\r\n",
                        hook->url.target, hook->url.host_header, body->len);
    if (head_len < 0 || (size_t)head_len >= sizeof head) {
        /* Cannot happen: the target and Host header are bounded by the URL checks. */
        snprintf(attempt->error, sizeof attempt->error, "the request head is too long");
        return OUTCOME_FINAL;
    }

    fd = connect_host(hook, deadline_ms, attempt, &aborted);
    if (fd < 0)
        return aborted ? OUTCOME_ABORTED : OUTCOME_RETRY;

    rc = send_request(hook, fd, head, (size_t)head_len, body, deadline_ms, attempt, &aborted);
    if (rc == 0)
        rc = read_status(hook, fd, deadline_ms, attempt, &aborted);
    close(fd);
    if (rc != 0)
        return aborted ? OUTCOME_ABORTED : OUTCOME_RETRY;
    return classify_status(attempt);
}


/* ---- the webhook thread ---- */

/* Post one body with retries until it is delivered, given up, or cut off by stop. */
static void deliver(struct vt_webhook *hook, const struct queued_body *body,
                    struct delivery_state *state)
{
    int64_t backoff_ms = hook->backoff_ms;
    struct attempt attempt;

    for (int64_t n = 1; n <= hook->attempts; n++) {
        if (n > 1)
            atomic_fetch_add(&hook->retried, 1);
        enum outcome outcome = post_once(hook, body, &attempt);

        if (outcome == OUTCOME_DELIVERED) {
            atomic_fetch_add(&hook->delivered, 1);
            if (state->failing)
                VT_INFO("WEBHOOK", "delivery to %s recovered (failed attempts: %" PRIu64 ")",
                        hook->url.display, state->failed_attempts);
            state->failing = false;
            state->failed_attempts = 0;
            return;
        }
        if (outcome == OUTCOME_ABORTED) {
            atomic_fetch_add(&hook->dropped, 1);
            return;
        }
        if (outcome == OUTCOME_FINAL) {
            atomic_fetch_add(&hook->failed, 1);
            VT_WARN("WEBHOOK", "%s rejected an alert of %zu bytes with %s; not retried",
                    hook->url.display, body->len, attempt.error);
            return;
        }

        state->failed_attempts++;
        if (n == hook->attempts) {
            atomic_fetch_add(&hook->failed, 1);
            VT_WARN("WEBHOOK", "gave up on an alert of %zu bytes for %s after %" PRId64
                    " attempts; last error: %s", body->len, hook->url.display, n,
                    attempt.error);
            state->failing = true;
            return;
        }

        int64_t wait_ms = attempt.retry_after_ms >= 0 ? attempt.retry_after_ms : backoff_ms;
        if (!state->failing)
            VT_WARN("WEBHOOK", "delivery to %s is failing: %s; retrying in %" PRId64 " ms "
                    "(attempt %" PRId64 " of %" PRId64 "); later retries are only counted",
                    hook->url.display, attempt.error, wait_ms, n, hook->attempts);
        state->failing = true;

        wait_until(hook, -1, 0, monotonic_ms() + wait_ms);
        if (drain_over(hook)) {
            atomic_fetch_add(&hook->dropped, 1);
            return;
        }
        backoff_ms = backoff_ms > hook->backoff_max_ms / 2 ? hook->backoff_max_ms
                                                           : backoff_ms * 2;
    }
}


static void *webhook_main(void *arg)
{
    struct vt_webhook *hook = arg;
    struct delivery_state state = {0};

    for (;;) {
        struct queued_body *item = queue_pop(hook);

        if (item == NULL)
            break;
        if (drain_over(hook)) {
            free(item);
            atomic_fetch_add(&hook->dropped, 1 + queue_discard(hook));
            break;
        }
        deliver(hook, item, &state);
        free(item);
    }
    return NULL;
}


/* ---- the interface ---- */

static int check_options(const struct vt_webhook_options *options, char *err, size_t errsize)
{
    if (options->timeout_ms < 1 || options->timeout_ms > TIMEOUT_MAX_MS) {
        snprintf(err, errsize, "webhook timeout_ms is %" PRId64 "; expected 1 to %d",
                 options->timeout_ms, TIMEOUT_MAX_MS);
        return -1;
    }
    if (options->attempts < 1 || options->attempts > ATTEMPTS_MAX) {
        snprintf(err, errsize, "webhook attempts is %" PRId64 "; expected 1 to %d",
                 options->attempts, ATTEMPTS_MAX);
        return -1;
    }
    if (options->backoff_max_ms < 0 || options->backoff_max_ms > BACKOFF_MAX_MS) {
        snprintf(err, errsize, "webhook backoff_max_ms is %" PRId64 "; expected 0 to %d",
                 options->backoff_max_ms, BACKOFF_MAX_MS);
        return -1;
    }
    if (options->backoff_ms < 0 || options->backoff_ms > options->backoff_max_ms) {
        snprintf(err, errsize, "webhook backoff_ms is %" PRId64 "; expected 0 to "
                 "backoff_max_ms (%" PRId64 ")", options->backoff_ms, options->backoff_max_ms);
        return -1;
    }
    if (options->queue_max < 1) {
        snprintf(err, errsize, "webhook queue_max is 0; expected 1 or more");
        return -1;
    }
    return 0;
}


struct vt_webhook *vt_webhook_start(const struct vt_webhook_options *options, char *err,
                                    size_t errsize)
{
    struct vt_webhook *hook;

    if (options == NULL) {
        snprintf(err, errsize, "webhook options are missing");
        return NULL;
    }
    hook = calloc(1, sizeof *hook);
    if (hook == NULL) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    hook->wake_fd = -1;
    if (options->url == NULL || options->url[0] == '\0') {
        VT_INFO("WEBHOOK", "no webhook URL: alerts are not posted");
        return hook;
    }

    if (vt_webhook_url_parse(options->url, &hook->url, err, errsize) != 0 ||
        check_options(options, err, errsize) != 0) {
        free(hook);
        return NULL;
    }
    hook->enabled = true;
    hook->timeout_ms = options->timeout_ms;
    hook->attempts = options->attempts;
    hook->backoff_ms = options->backoff_ms;
    hook->backoff_max_ms = options->backoff_max_ms;
    hook->queue_max = options->queue_max;

    hook->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (hook->wake_fd < 0) {
        snprintf(err, errsize, "cannot create the webhook eventfd: %s", strerror(errno));
        free(hook);
        return NULL;
    }
    pthread_mutex_init(&hook->lock, NULL);
    pthread_cond_init(&hook->queue_changed, NULL);
    if (pthread_create(&hook->thread, NULL, webhook_main, hook) != 0) {
        snprintf(err, errsize, "cannot start the webhook thread");
        pthread_cond_destroy(&hook->queue_changed);
        pthread_mutex_destroy(&hook->lock);
        close(hook->wake_fd);
        free(hook);
        return NULL;
    }

    VT_INFO("WEBHOOK", "posting alerts to %s (timeout %" PRId64 " ms, %" PRId64 " attempts, "
            "backoff %" PRId64 " to %" PRId64 " ms, queue max %zu)", hook->url.display,
            hook->timeout_ms, hook->attempts, hook->backoff_ms, hook->backoff_max_ms,
            hook->queue_max);
    return hook;
}


bool vt_webhook_send(struct vt_webhook *hook, const char *body, size_t len)
{
    struct queued_body *item;

    if (hook == NULL)
        return false;
    if (!hook->enabled) {
        atomic_fetch_add(&hook->dropped, 1);
        return false;
    }
    if (len > VT_WEBHOOK_BODY_MAX || (body == NULL && len > 0)) {
        atomic_fetch_add(&hook->dropped, 1);
        VT_WARN("WEBHOOK", "dropped an alert of %zu bytes: bodies are limited to %d bytes",
                len, VT_WEBHOOK_BODY_MAX);
        return false;
    }

    item = malloc(sizeof *item + len);
    if (item == NULL) {
        atomic_fetch_add(&hook->dropped, 1);
        VT_WARN("WEBHOOK", "dropped an alert of %zu bytes: out of memory", len);
        return false;
    }
    item->next = NULL;
    item->len = len;
    if (len > 0)
        memcpy(item->data, body, len);

    pthread_mutex_lock(&hook->lock);
    if (atomic_load(&hook->stopping)) {
        pthread_mutex_unlock(&hook->lock);
        free(item);
        atomic_fetch_add(&hook->dropped, 1);
        return false;
    }
    if (hook->queue_len >= hook->queue_max) {
        pthread_mutex_unlock(&hook->lock);
        free(item);
        atomic_fetch_add(&hook->dropped, 1);
        if (atomic_fetch_add(&hook->full_drops, 1) == 0)
            VT_WARN("WEBHOOK", "queue full (%zu alerts): dropping alerts until %s catches up",
                    hook->queue_max, hook->url.display);
        return false;
    }
    if (hook->tail != NULL)
        hook->tail->next = item;
    else
        hook->head = item;
    hook->tail = item;
    hook->queue_len++;
    atomic_fetch_add(&hook->queued, 1);
    pthread_cond_signal(&hook->queue_changed);
    pthread_mutex_unlock(&hook->lock);

    uint64_t dropped_while_full = atomic_exchange(&hook->full_drops, 0);
    if (dropped_while_full > 0)
        VT_INFO("WEBHOOK", "queue accepts alerts again; %" PRIu64 " were dropped while it was "
                "full", dropped_while_full);
    return true;
}


void vt_webhook_stats(const struct vt_webhook *hook, struct vt_webhook_stats *out)
{
    memset(out, 0, sizeof *out);
    if (hook == NULL)
        return;
    out->queued = atomic_load(&hook->queued);
    out->delivered = atomic_load(&hook->delivered);
    out->retried = atomic_load(&hook->retried);
    out->failed = atomic_load(&hook->failed);
    out->dropped = atomic_load(&hook->dropped);
}


void vt_webhook_stop(struct vt_webhook *hook, int64_t drain_ms)
{
    struct vt_webhook_stats stats;
    uint64_t dropped_before;
    uint64_t wake = 1;
    int64_t drain_time_ms = drain_ms > 0 ? drain_ms : 0;

    if (hook == NULL)
        return;
    if (!hook->enabled) {
        free(hook);
        return;
    }

    dropped_before = atomic_load(&hook->dropped);
    atomic_store(&hook->drain_deadline_ms, monotonic_ms() + drain_time_ms);
    pthread_mutex_lock(&hook->lock);
    atomic_store(&hook->stopping, true);
    pthread_cond_broadcast(&hook->queue_changed);
    pthread_mutex_unlock(&hook->lock);
    if (write(hook->wake_fd, &wake, sizeof wake) != (ssize_t)sizeof wake)
        VT_WARN("WEBHOOK", "cannot wake the webhook thread: %s; it stops after its current "
                "wait", strerror(errno));
    pthread_join(hook->thread, NULL);

    /* Bodies a concurrent vt_webhook_send pushed after the thread left. */
    atomic_fetch_add(&hook->dropped, queue_discard(hook));

    vt_webhook_stats(hook, &stats);
    if (stats.dropped > dropped_before)
        VT_WARN("WEBHOOK", "drain time of %" PRId64 " ms ran out; undelivered alerts dropped: "
                "%" PRIu64, drain_time_ms, stats.dropped - dropped_before);
    VT_INFO("WEBHOOK", "stopped: queued %" PRIu64 ", delivered %" PRIu64 ", failed %" PRIu64
            ", dropped %" PRIu64 ", retried %" PRIu64, stats.queued, stats.delivered,
            stats.failed, stats.dropped, stats.retried);

    pthread_cond_destroy(&hook->queue_changed);
    pthread_mutex_destroy(&hook->lock);
    close(hook->wake_fd);
    free(hook);
}
