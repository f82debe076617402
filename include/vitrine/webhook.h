/*
 * vitrine: delivery of alerts to a webhook: JSON POSTs over HTTP/1.1 with retries.
 *
 * vt_webhook_send hands a copy of the body to a bounded queue and returns at once. A
 * dedicated thread ("webhook thread") posts each body. It retries failures (connection
 * errors, timeouts, 5xx, 408, 429) with exponential backoff up to the configured number of
 * attempts. A 2xx status is success. Any other 4xx is final, and so is a 3xx because
 * redirects are not followed. A slow or failing receiver therefore never blocks the
 * caller. Only http:// URLs are supported (for https, post to a TLS-terminating relay).
 *
 * Bodies are posted one at a time in the order they were queued: a body that waits for a
 * retry keeps its place, and the next one starts only after it is delivered or given up.
 */
#ifndef VITRINE_WEBHOOK_H
#define VITRINE_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VT_WEBHOOK_URL_MAX 2048          /* bytes in a webhook URL */
#define VT_WEBHOOK_HOST_MAX 253          /* bytes in a host name (the DNS maximum) */
#define VT_WEBHOOK_BODY_MAX (1024 * 1024) /* bytes in one body, larger ones are dropped */

struct vt_webhook_options {
    const char *url;        /* http://host[:port][/path][?query], "" or NULL: no delivery */
    int64_t timeout_ms;     /* connect, send and response per attempt, 1 to 3600000 */
    int64_t attempts;       /* tries per body, 1 to 1000 */
    int64_t backoff_ms;     /* wait before the second try; doubles per try */
    int64_t backoff_max_ms; /* longest wait between tries, at least backoff_ms and at most
                               86400000; also caps a Retry-After from the receiver */
    size_t queue_max;       /* bodies waiting; further ones are dropped and counted */
};

/* Counters since start. After stop, queued = delivered + failed + the part of dropped that
 * stop discarded. */
struct vt_webhook_stats {
    uint64_t queued;    /* bodies vt_webhook_send accepted */
    uint64_t delivered; /* bodies the receiver accepted with a 2xx status */
    uint64_t retried;   /* attempts after the first one of a body */
    uint64_t failed;    /* bodies given up: a final status, or every attempt failed */
    uint64_t dropped;   /* bodies vt_webhook_send rejected, and bodies stop discarded */
};

/* The parts of a valid webhook URL. */
struct vt_webhook_url {
    char host[VT_WEBHOOK_HOST_MAX + 1];        /* DNS name or IP address, IPv6 without [] */
    uint16_t port;                             /* 80 unless the URL names a port */
    char host_header[VT_WEBHOOK_HOST_MAX + 9]; /* Host header: host ([] around IPv6) and
                                                  ":port" unless the port is 80 */
    char target[VT_WEBHOOK_URL_MAX + 2];       /* request target: path and query, "/" at
                                                  least */
    char display[VT_WEBHOOK_URL_MAX + 1];      /* the URL without its query, which may hold
                                                  a token: safe for messages and logs */
};

/* Parse an http://host[:port][/path][?query] URL. Host is a DNS name, an IPv4 address or
 * an IPv6 address in brackets ([::1]). Returns 0, or -1 with a message that names the URL
 * (without its query or user information) and the accepted form. */
int vt_webhook_url_parse(const char *url, struct vt_webhook_url *out, char *err,
                         size_t errsize);

struct vt_webhook;

/* Start the thread. Returns NULL with a message when the URL or another option is invalid
 * (naming it and what is accepted). With an empty URL, returns a hook without a thread
 * that drops every body. */
struct vt_webhook *vt_webhook_start(const struct vt_webhook_options *options, char *err,
                                    size_t errsize);

/* Queue one JSON body (copied). Any thread. It takes the queue lock only to append and
 * does not wait for delivery. False when the queue is full, delivery is disabled, the hook is
 * stopping or the body is larger than VT_WEBHOOK_BODY_MAX, and each of those counts as
 * dropped. */
bool vt_webhook_send(struct vt_webhook *hook, const char *body, size_t len);

/* Any thread, until stop. */
void vt_webhook_stats(const struct vt_webhook *hook, struct vt_webhook_stats *out);

/* Stop: deliver what is queued for at most drain_ms, then drop the rest (counted), join the
 * thread and free. An attempt still running when drain_ms ends is cut off and its body
 * counted as dropped. Call once, after every thread has stopped calling
 * vt_webhook_send. */
void vt_webhook_stop(struct vt_webhook *hook, int64_t drain_ms);

#endif
