/*
 * vitrine: request deadlines. libmicrohttpd's connection timeout (http.timeout_s) restarts
 * with every byte received or sent, so a client that sends one header byte per second
 * keeps its connection, and its connection slot, for as long as it likes. So every
 * connection here gets a deadline (http.request_timeout_s) by which its request must be
 * received and its response sent. The deadline restarts when a response was sent in full.
 *
 * Threads: vt_deadlines_notify and vt_deadlines_restart run on libmicrohttpd's worker
 * threads. The deadline thread ("watchdog" below) scans the connections four times a
 * second and shuts down the socket of each connection past its deadline. libmicrohttpd
 * then reads end-of-file, closes the connection on its own thread and calls
 * vt_deadlines_notify with MHD_CONNECTION_NOTIFY_CLOSED. The client gets no HTTP response.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "api_internal.h"
#include "vitrine/log.h"
#include "vitrine/metrics.h"
#include "vitrine/util.h"

/* How often the watchdog looks for connections past their deadline. */
#define SCAN_INTERVAL_MS 250
/* At most one log line per this many seconds about closed connections. */
#define LOG_INTERVAL_S 10

/* One open connection, from MHD_CONNECTION_NOTIFY_STARTED to ..._CLOSED. */
struct watched {
    int fd;
    _Atomic uint64_t deadline_ns; /* CLOCK_MONOTONIC */
    bool shut_down;               /* by the watchdog; guarded by the list's mutex */
    char address[INET6_ADDRSTRLEN];
    struct watched *prev, *next;
};

struct vt_deadlines {
    uint64_t timeout_ns;
    pthread_mutex_t lock; /* guards the list, shut_down and the counters */
    pthread_cond_t wake;
    struct watched *head;
    bool stopping;
    pthread_t thread;
    uint64_t closed_unlogged; /* closed since the last log line */
    uint64_t last_log_ns;
    char last_address[INET6_ADDRSTRLEN];
};


static void client_address(struct MHD_Connection *conn, char *out, size_t outsize)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = info != NULL ? info->client_addr : NULL;

    vt_strlcpy(out, "unknown", outsize);
    if (sa != NULL && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)outsize);
    else if (sa != NULL && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
                  (socklen_t)outsize);
}


void vt_deadlines_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                         enum MHD_ConnectionNotificationCode code)
{
    struct vt_deadlines *d = cls;
    struct watched *w = *socket_context;

    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);

        w = calloc(1, sizeof *w);
        if (w == NULL || info == NULL) {
            /* Without an entry the connection has only libmicrohttpd's idle timeout. */
            free(w);
            *socket_context = NULL;
            return;
        }
        w->fd = info->connect_fd;
        atomic_store(&w->deadline_ns, vt_monotonic_ns() + d->timeout_ns);
        client_address(conn, w->address, sizeof w->address);

        pthread_mutex_lock(&d->lock);
        w->next = d->head;
        if (d->head != NULL)
            d->head->prev = w;
        d->head = w;
        pthread_mutex_unlock(&d->lock);
        *socket_context = w;
        return;
    }

    /* MHD_CONNECTION_NOTIFY_CLOSED comes before libmicrohttpd closes the socket, so the
     * watchdog never shuts down a descriptor that was closed and reused. */
    if (w == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        d->head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    pthread_mutex_unlock(&d->lock);
    free(w);
    *socket_context = NULL;
}


void vt_deadlines_restart(struct vt_deadlines *d, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct watched *w = info != NULL ? info->socket_context : NULL;

    if (w != NULL)
        atomic_store(&w->deadline_ns, vt_monotonic_ns() + d->timeout_ns);
}


/* Shut down the sockets past their deadline; returns how many. Called with d->lock held. */
static uint64_t shut_down_late(struct vt_deadlines *d, uint64_t now)
{
    uint64_t n = 0;

    for (struct watched *w = d->head; w != NULL; w = w->next) {
        if (w->shut_down || atomic_load(&w->deadline_ns) > now)
            continue;
        if (shutdown(w->fd, SHUT_RDWR) != 0 && errno != ENOTCONN)
            VT_WARN("HTTP", "shutdown of the connection from %s failed: %s", w->address,
                    strerror(errno));
        w->shut_down = true;
        vt_strlcpy(d->last_address, w->address, sizeof d->last_address);
        vt_metrics_http_cut();
        n++;
    }
    return n;
}


static void *watchdog_main(void *arg)
{
    struct vt_deadlines *d = arg;

    pthread_mutex_lock(&d->lock);
    while (!d->stopping) {
        struct timespec until;

        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += SCAN_INTERVAL_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&d->wake, &d->lock, &until);
        if (d->stopping)
            break;

        uint64_t now = vt_monotonic_ns();
        d->closed_unlogged += shut_down_late(d, now);
        if (d->closed_unlogged > 0 && now - d->last_log_ns >= LOG_INTERVAL_S * 1000000000ull) {
            VT_WARN("HTTP", "closed %" PRIu64 " connections that did not complete a request "
                    "within http.request_timeout_s (%" PRIu64 " s); the last came from %s",
                    d->closed_unlogged, (uint64_t)(d->timeout_ns / 1000000000ull),
                    d->last_address);
            d->closed_unlogged = 0;
            d->last_log_ns = now;
        }
    }
    pthread_mutex_unlock(&d->lock);
    return NULL;
}


struct vt_deadlines *vt_deadlines_start(int64_t timeout_s, char *err, size_t errsize)
{
    struct vt_deadlines *d = calloc(1, sizeof *d);
    pthread_condattr_t attr;
    int rc;

    if (d == NULL) {
        vt_strlcpy(err, "out of memory", errsize);
        return NULL;
    }
    d->timeout_ns = (uint64_t)timeout_s * 1000000000ull;
    pthread_mutex_init(&d->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&d->wake, &attr);
    pthread_condattr_destroy(&attr);

    rc = pthread_create(&d->thread, NULL, watchdog_main, d);
    if (rc != 0) {
        snprintf(err, errsize, "cannot start the request deadline thread: %s", strerror(rc));
        pthread_cond_destroy(&d->wake);
        pthread_mutex_destroy(&d->lock);
        free(d);
        return NULL;
    }
    return d;
}


void vt_deadlines_stop(struct vt_deadlines *d)
{
    if (d == NULL)
        return;
    pthread_mutex_lock(&d->lock);
    d->stopping = true;
    pthread_cond_signal(&d->wake);
    pthread_mutex_unlock(&d->lock);
    pthread_join(d->thread, NULL);

    /* libmicrohttpd reported every connection closed when it stopped; free any left. */
    while (d->head != NULL) {
        struct watched *next = d->head->next;
        free(d->head);
        d->head = next;
    }
    pthread_cond_destroy(&d->wake);
    pthread_mutex_destroy(&d->lock);
    free(d);
}
