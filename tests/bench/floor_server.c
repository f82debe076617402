/*
 * Round-trip floor of the benchmark: a minimal libmicrohttpd server that, per request,
 * does exactly the Redis round trip of GET /v1/sessions/{id}/segment and returns a
 * constant body. Its throughput is the limit of any design that reads Redis on every
 * request, so the benchmark compares vitrine's endpoints against it.
 *
 * What it shares with vitrine (service/api/server.c, handlers_session.c):
 *   - the settings: vt_config_load reads the same environment variables and flags, so
 *     VITRINE_HTTP_PORT, VITRINE_HTTP_THREADS, VITRINE_REDIS_PORT, VITRINE_REDIS_PREFIX
 *     and the rest mean what they mean for vitrine;
 *   - the daemon: MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL with a thread pool of
 *     http.threads workers (0: one per CPU), the same connection limits, timeout and
 *     connection memory;
 *   - the read: vt_store_profile_read (one pipeline of nine commands on the profile's
 *     keys) through one Redis connection per worker thread, after vt_id_valid.
 * What it leaves out: routing, authorization, query checks, per-request state, metrics,
 * the JSON writer and the response headers beyond Content-Type.
 *
 * Usage (interface for tests/bench/run.sh):
 *   bench_floor_server [vitrine's flags, e.g. --http-port 18080 --redis-port 6379]
 * Requests:
 *   GET /v1/sessions/{id}/<anything>  the Redis round trip, then 200 with a constant body;
 *                                     503 when Redis failed, 400 for an invalid id
 *   GET /healthz                      200 without touching Redis (for start-up waits)
 *   anything else                     404
 * Output: one line on stdout once listening, "ready: port=<port> threads=<n>"; log lines
 * on stderr. Stops on SIGTERM or SIGINT with status 0; status 2 for invalid settings, 1
 * when it cannot listen.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vitrine/config.h"
#include "vitrine/log.h"
#include "vitrine/profile.h"
#include "vitrine/store.h"
#include "vitrine/util.h"

/* The same limit as vitrine's CONNECTION_MEMORY (service/api/server.c). */
#define CONNECTION_MEMORY 32768

#define SESSIONS_PREFIX "/v1/sessions/"

extern char **environ;

/* The constant bodies. The 200 body is about the size of a segment reply for a cold
 * session, so that both servers send similar amounts. */
static const char body_ok[] =
    "{\"session_id\":\"floor\",\"known\":true,\"segment\":\"unknown\",\"probability\":0.5,"
    "\"p_female\":0.5,\"evidence\":0,\"price_tier\":null,\"top_categories\":[],"
    "\"top_brands\":[]}";
static const char body_unavailable[] = "{\"error\":{\"code\":\"UNAVAILABLE\","
                                       "\"message\":\"profile store unavailable\","
                                       "\"retriable\":true}}";
static const char body_invalid[] = "{\"error\":{\"code\":\"INVALID_ARGUMENT\","
                                   "\"message\":\"invalid session id\",\"retriable\":false}}";
static const char body_not_found[] = "{\"error\":{\"code\":\"NOT_FOUND\","
                                     "\"message\":\"no endpoint at this path\","
                                     "\"retriable\":false}}";
static const char body_health[] = "{\"status\":\"ok\"}";

/* The address marks a request whose first callback has run (con_cls). */
static char first_call_done;

/* Settings, filled by main before the daemon starts and read-only afterwards. */
static struct vt_config config;

/* Per worker thread: its Redis connection (freed by the key's destructor when the worker
 * exits) and the profile being read (about 65 KB, too large for the stack). */
static pthread_key_t store_key;
static _Thread_local struct vt_store *worker_store;
static _Thread_local struct vt_profile worker_profile;

static void store_free(void *store)
{
    vt_store_free(store);
}


static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int status,
                             const char *body, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result r;

    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}


/* Failed Redis operations not logged yet, and the time of the last line about them:
 * during an outage every request fails, so one line per WARN_INTERVAL_NS. */
#define WARN_INTERVAL_NS 10000000000ull
static atomic_uint_fast64_t failures_unlogged;
static atomic_uint_fast64_t warned_ns;

static void warn_failure(const char *what, const char *err)
{
    uint64_t now = vt_monotonic_ns();
    uint64_t last = atomic_load(&warned_ns);

    atomic_fetch_add(&failures_unlogged, 1);
    if (last != 0 && now - last < WARN_INTERVAL_NS)
        return;
    if (!atomic_compare_exchange_strong(&warned_ns, &last, now))
        return; /* another worker writes the line */
    VT_WARN("FLOOR", "%" PRIu64 " requests failed since the last report, the last one: %s: "
            "%s", (uint64_t)atomic_exchange(&failures_unlogged, 0), what, err);
}


/* Read the session's profile through this worker's connection: vitrine's segment
 * handler does the same read. Returns false when Redis failed. The connection is then
 * closed, and the next request opens a new one. */
static bool read_profile(const char *id, size_t id_len)
{
    char err[512];

    if (worker_store == NULL) {
        worker_store = vt_store_connect(&config, config.redis_timeout_ms, err, sizeof err);
        if (worker_store == NULL) {
            warn_failure("cannot connect to Redis", err);
            return false;
        }
        pthread_setspecific(store_key, worker_store);
    }
    if (vt_store_profile_read(worker_store, id, id_len, vt_now_ms(), &worker_profile, err,
                              sizeof err) == 0)
        return true;

    warn_failure("profile read failed", err);
    pthread_setspecific(store_key, NULL);
    vt_store_free(worker_store);
    worker_store = NULL;
    return false;
}


/* Runs on a worker of libmicrohttpd's thread pool. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    static const size_t prefix_len = sizeof SESSIONS_PREFIX - 1;

    (void)cls;
    (void)version;
    (void)upload_data;
    /* libmicrohttpd closes the connection after a response queued in the first call,
     * which comes before the body. Reply in the second call, as vitrine does, so that
     * connections stay open. The marker is a static address, not an allocation. */
    if (*con_cls == NULL) {
        *con_cls = &first_call_done;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        *upload_data_size = 0; /* a body is read and ignored */
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(conn, MHD_HTTP_NOT_FOUND, body_not_found, sizeof body_not_found - 1);
    if (strcmp(url, "/healthz") == 0)
        return reply(conn, MHD_HTTP_OK, body_health, sizeof body_health - 1);
    if (strncmp(url, SESSIONS_PREFIX, prefix_len) != 0)
        return reply(conn, MHD_HTTP_NOT_FOUND, body_not_found, sizeof body_not_found - 1);

    const char *id = url + prefix_len;
    const char *slash = strchr(id, '/');
    if (slash == NULL)
        return reply(conn, MHD_HTTP_NOT_FOUND, body_not_found, sizeof body_not_found - 1);
    size_t id_len = (size_t)(slash - id);
    if (!vt_id_valid(id, id_len))
        return reply(conn, MHD_HTTP_BAD_REQUEST, body_invalid, sizeof body_invalid - 1);

    if (!read_profile(id, id_len))
        return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, body_unavailable,
                     sizeof body_unavailable - 1);
    return reply(conn, MHD_HTTP_OK, body_ok, sizeof body_ok - 1);
}


/* Fill addr from http.bind and http.port, as vitrine does. Returns the extra daemon flag
 * for IPv6, or -1 for an address that is neither IPv4 nor IPv6. */
static int bind_address(struct sockaddr_storage *addr)
{
    struct sockaddr_in *a4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)addr;

    memset(addr, 0, sizeof *addr);
    if (inet_pton(AF_INET, config.http_bind, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)config.http_port);
        return 0;
    }
    if (inet_pton(AF_INET6, config.http_bind, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)config.http_port);
        return MHD_USE_IPv6;
    }
    return -1;
}


int main(int argc, char **argv)
{
    char err[1024];
    struct sockaddr_storage addr;
    sigset_t signals;
    int sig = 0;

    switch (vt_config_load(&config, argc, argv, environ, stdout, err, sizeof err)) {
    case VT_CONFIG_EXIT:
        return EXIT_SUCCESS;
    case VT_CONFIG_ERROR:
        fprintf(stderr, "bench_floor_server: %s\n", err);
        return 2;
    case VT_CONFIG_OK:
        break;
    }
    vt_log_threshold = config.log_level;

    int ipv6 = bind_address(&addr);
    if (ipv6 < 0) {
        fprintf(stderr, "bench_floor_server: invalid value \"%s\" for setting http.bind: "
                "expected an IPv4 or IPv6 address such as 127.0.0.1\n", config.http_bind);
        return 2;
    }

    /* The stop signals are taken by sigwait below, in the main thread only. */
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_key_create(&store_key, store_free);

    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned int threads = config.http_threads > 0 ? (unsigned)config.http_threads
                                                   : (unsigned)(cpus > 0 ? cpus : 1);
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
                         MHD_USE_ERROR_LOG | MHD_USE_ITC | (unsigned)ipv6;
    struct MHD_Daemon *daemon = MHD_start_daemon(
        flags, (uint16_t)config.http_port, NULL, NULL, on_request, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)config.http_connection_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)config.http_connection_limit_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)config.http_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
        MHD_OPTION_END);
    if (daemon == NULL) {
        fprintf(stderr, "bench_floor_server: cannot listen on %s port %lld: %s (is the port "
                "in use? set VITRINE_HTTP_PORT)\n", config.http_bind,
                (long long)config.http_port, strerror(errno));
        return EXIT_FAILURE;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    unsigned int port = info != NULL ? info->port : (unsigned int)config.http_port;

    VT_INFO("FLOOR", "listening on %s port %u with %u worker threads; Redis %s:%lld, key "
            "prefix %s", config.http_bind, port, threads, config.redis_host,
            (long long)config.redis_port, config.redis_prefix);
    printf("ready: port=%u threads=%u\n", port, threads);
    fflush(stdout);

    sigwait(&signals, &sig);
    VT_INFO("FLOOR", "received %s, stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    MHD_stop_daemon(daemon);
    return EXIT_SUCCESS;
}
