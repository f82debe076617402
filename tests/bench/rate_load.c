/*
 * bench_rate_load: open-loop HTTP/1.1 load at a fixed request rate, for the latency at a
 * given throughput (wrk 4.1 has no fixed-rate mode).
 *
 * Requests are scheduled at fixed intervals (1/rate) from the start, independently of the
 * responses, and sent over N keep-alive connections, one request in flight per connection.
 * When every connection is busy at a request's scheduled time, the request waits in a
 * queue. Its latency is counted from the scheduled time to the last byte of the response,
 * so a slow response shows in the latency of the requests queued behind it instead of
 * lowering the request rate (no coordinated omission). The latency from the actual send is
 * printed beside it.
 *
 *   bench_rate_load --url http://127.0.0.1:8080/healthz --rate 5000 [--duration 10]
 *                   [--warmup 2] [--connections 32] [--targets FILE] [--method POST]
 *                   [--body FILE] [--header 'Name: value'] [--name LABEL]
 *
 * --targets names a file with one request target a line ("/v1/sessions/s1/segment"),
 * used in turn; without it every request goes to the URL's path. --body sends the file's
 * content with every request, as application/json.
 *
 * Output: a few readable lines on standard error, and on standard output one line
 *   result: name=LABEL target_rps=R achieved_rps=R requests=N errors=N non_2xx=N
 *           unfinished=N p50_us=X p90_us=X p99_us=X p999_us=X max_us=X sent_p50_us=X
 *           sent_p99_us=X max_queue=N
 * (one line, name=value pairs). achieved_rps is the number of measured 2xx responses per
 * second from the end of the warm-up to the last of them. Latencies are in microseconds, taken from a histogram with
 * a relative error below 1/64, and count only 2xx responses after the warm-up. errors counts
 * connection and protocol failures, unfinished the requests without a response 10 s after
 * the last scheduled one. Exit status: 0 when the run completed, 1 when it could not
 * (connection refused, queue overflow), 2 for invalid arguments.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "vitrine/util.h"

#define EXIT_USAGE 2

#define CONNECTIONS_MAX 4096
#define TARGETS_MAX 1000000
#define TARGET_LEN_MAX 2048
#define BODY_MAX (256 * 1024)
#define HEADER_LEN_MAX 1024
#define HOST_MAX 256

/* Room for the request line and headers; the body comes on top. */
#define REQUEST_HEAD_MAX (TARGET_LEN_MAX + HEADER_LEN_MAX + HOST_MAX + 256)

/* Response headers beyond this are a protocol error. */
#define RESPONSE_HEAD_MAX (16 * 1024)

/* Requests waiting for a free connection. A longer queue means the rate is far above what
 * the server can serve, and the run stops. */
#define QUEUE_MAX (1u << 20)

/* Time given to the last requests after the schedule ends. */
#define DRAIN_NS (10 * NS_PER_S)

#define NS_PER_S 1000000000LL

/* Latency histogram in nanoseconds: values below SUB_COUNT have a bucket each, larger
 * values get SUB_COUNT / 2 buckets per power of two, so a bucket is at most 1/64 of its
 * value wide. Values are clamped to 2^40 ns (about 18 minutes). */
#define SUB_BITS 7
#define SUB_COUNT (1 << SUB_BITS)
#define SUB_HALF (SUB_COUNT / 2)
#define VALUE_BITS 40
#define BUCKETS (SUB_COUNT + (VALUE_BITS - SUB_BITS + 1) * SUB_HALF)

struct histogram {
    uint64_t counts[BUCKETS];
    uint64_t total;
    uint64_t max;
};

enum conn_state { CONN_IDLE, CONN_WRITING, CONN_READING };

struct conn {
    int fd;
    enum conn_state state;
    char *request;
    size_t request_len;
    size_t request_sent;
    char head[RESPONSE_HEAD_MAX];
    size_t head_len;
    bool head_done;
    int64_t body_left;
    int status;
    bool close_after;
    int64_t scheduled_ns;
    int64_t sent_ns;
};

struct options {
    char host[HOST_MAX];
    char port[8];
    char path[TARGET_LEN_MAX];
    const char *targets_path;
    const char *body_path;
    const char *name;
    char method[16];
    char header[HEADER_LEN_MAX];
    double rate;
    double duration_s;
    double warmup_s;
    int connections;
};

struct run {
    struct options opt;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char **targets;
    size_t n_targets;
    size_t next_target;
    char *body;
    size_t body_len;
    size_t request_capacity;
    struct conn *conns;
    int *idle;
    int n_idle;
    int epoll_fd;
    int timer_fd;

    /* Scheduled send times of the queued requests, a ring buffer. */
    int64_t *queue;
    size_t queue_head;
    size_t queue_len;
    size_t queue_max_seen;

    int64_t start_ns;
    int64_t measure_from_ns;
    int64_t end_ns;
    uint64_t scheduled;
    uint64_t completed;
    uint64_t measured;
    uint64_t errors;
    uint64_t non_2xx;
    uint64_t idle_closed;
    int64_t last_response_ns;
    struct histogram from_scheduled;
    struct histogram from_sent;
};


/* ---- histogram ----------------------------------------------------------------------- */

static size_t bucket_of(uint64_t v)
{
    if (v >= (1ULL << VALUE_BITS))
        v = (1ULL << VALUE_BITS) - 1;
    if (v < SUB_COUNT)
        return (size_t)v;

    int msb = 63 - __builtin_clzll(v);
    int shift = msb - (SUB_BITS - 1);
    return SUB_COUNT + (size_t)(shift - 1) * SUB_HALF + (size_t)((v >> shift) - SUB_HALF);
}


/* The highest value that falls into bucket i. */
static uint64_t bucket_top(size_t i)
{
    if (i < SUB_COUNT)
        return i;

    size_t j = i - SUB_COUNT;
    int shift = (int)(j / SUB_HALF) + 1;
    uint64_t sub = j % SUB_HALF + SUB_HALF;
    return (sub << shift) + (1ULL << shift) - 1;
}


static void histogram_add(struct histogram *h, int64_t ns)
{
    uint64_t v = ns > 0 ? (uint64_t)ns : 0;
    h->counts[bucket_of(v)]++;
    h->total++;
    if (v > h->max)
        h->max = v;
}


/* Percentile p (0 to 100) in microseconds: the top of the bucket that contains it, at most the
 * largest value recorded; 0 without values. */
static double histogram_percentile_us(const struct histogram *h, double p)
{
    if (h->total == 0)
        return 0;

    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->total);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t top = bucket_top(i);
            return (double)(top < h->max ? top : h->max) / 1000.0;
        }
    }
    return (double)h->max / 1000.0;
}


/* ---- options ------------------------------------------------------------------------- */

static void print_usage(FILE *out)
{
    fputs(
        "Usage: bench_rate_load --url URL --rate REQ_PER_S [OPTIONS]\n"
        "\n"
        "Send HTTP/1.1 requests at a fixed rate over keep-alive connections and print the\n"
        "latency percentiles, counted from each request's scheduled send time.\n"
        "\n"
        "  --url URL           http://HOST:PORT/PATH (required)\n"
        "  --rate N            requests per second (required)\n"
        "  --duration S        seconds measured after the warm-up (default 10)\n"
        "  --warmup S          seconds at the same rate before measuring (default 2)\n"
        "  --connections N     keep-alive connections, one request in flight each (default 32)\n"
        "  --targets FILE      request targets, one a line, used in turn instead of PATH\n"
        "  --method M          GET (default), POST, PUT or DELETE\n"
        "  --body FILE         request body sent with every request, as application/json\n"
        "  --header 'N: V'     one extra request header\n"
        "  --name LABEL        label of the result line (default: the URL's path)\n"
        "  --help              print this help and exit\n"
        "\n"
        "Prints readable lines on standard error and one 'result:' line with name=value\n"
        "pairs on standard output.\n",
        out);
}


static int usage_error(const char *option, const char *value, const char *hint)
{
    fprintf(stderr, "bench_rate_load: invalid %s '%s': %s\n", option, value, hint);
    return EXIT_USAGE;
}


/* Split http://HOST:PORT/PATH. Only plain HTTP is supported. */
static int parse_url(const char *url, struct options *opt)
{
    const char *scheme = "http://";
    if (strncmp(url, scheme, strlen(scheme)) != 0)
        return usage_error("--url", url, "use http://HOST:PORT/PATH");

    const char *host = url + strlen(scheme);
    const char *path = strchr(host, '/');
    if (path == NULL)
        path = host + strlen(host);
    const char *colon = memchr(host, ':', (size_t)(path - host));
    const char *host_end = colon != NULL ? colon : path;
    size_t host_len = (size_t)(host_end - host);
    if (host_len == 0 || host_len >= sizeof opt->host)
        return usage_error("--url", url, "the host is missing or too long");
    memcpy(opt->host, host, host_len);
    opt->host[host_len] = '\0';

    if (colon != NULL) {
        size_t port_len = (size_t)(path - colon - 1);
        int64_t port;
        char digits[8];
        if (port_len == 0 || port_len >= sizeof digits)
            return usage_error("--url", url, "the port is missing or invalid");
        memcpy(digits, colon + 1, port_len);
        digits[port_len] = '\0';
        if (vt_parse_int64(digits, 1, 65535, &port) != 0)
            return usage_error("--url", url, "the port must be 1 to 65535");
        vt_strlcpy(opt->port, digits, sizeof opt->port);
    } else {
        vt_strlcpy(opt->port, "80", sizeof opt->port);
    }

    const char *target = *path != '\0' ? path : "/";
    if (vt_strlcpy(opt->path, target, sizeof opt->path) >= sizeof opt->path)
        return usage_error("--url", url, "the path is too long");
    return 0;
}


static int parse_options(int argc, char **argv, struct options *opt)
{
    enum {
        OPT_URL = 256, OPT_RATE, OPT_DURATION, OPT_WARMUP, OPT_CONNECTIONS, OPT_TARGETS,
        OPT_METHOD, OPT_BODY, OPT_HEADER, OPT_NAME, OPT_HELP
    };
    static const struct option longopts[] = {
        {"url", required_argument, NULL, OPT_URL},
        {"rate", required_argument, NULL, OPT_RATE},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"warmup", required_argument, NULL, OPT_WARMUP},
        {"connections", required_argument, NULL, OPT_CONNECTIONS},
        {"targets", required_argument, NULL, OPT_TARGETS},
        {"method", required_argument, NULL, OPT_METHOD},
        {"body", required_argument, NULL, OPT_BODY},
        {"header", required_argument, NULL, OPT_HEADER},
        {"name", required_argument, NULL, OPT_NAME},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    bool have_url = false;
    int c;
    int64_t n;

    memset(opt, 0, sizeof *opt);
    vt_strlcpy(opt->method, "GET", sizeof opt->method);
    opt->duration_s = 10;
    opt->warmup_s = 2;
    opt->connections = 32;
    opterr = 0;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        int rc = 0;

        switch (c) {
        case OPT_URL:
            rc = parse_url(optarg, opt);
            have_url = true;
            break;
        case OPT_RATE:
            if (vt_parse_double(optarg, 1, 10000000, &opt->rate) != 0)
                rc = usage_error("--rate", optarg, "use requests per second from 1 to 1e7");
            break;
        case OPT_DURATION:
            if (vt_parse_double(optarg, 0.1, 86400, &opt->duration_s) != 0)
                rc = usage_error("--duration", optarg, "use seconds from 0.1 to 86400");
            break;
        case OPT_WARMUP:
            if (vt_parse_double(optarg, 0, 3600, &opt->warmup_s) != 0)
                rc = usage_error("--warmup", optarg, "use seconds from 0 to 3600");
            break;
        case OPT_CONNECTIONS:
            if (vt_parse_int64(optarg, 1, CONNECTIONS_MAX, &n) != 0)
                rc = usage_error("--connections", optarg, "use a whole number from 1 to 4096");
            else
                opt->connections = (int)n;
            break;
        case OPT_TARGETS:
            opt->targets_path = optarg;
            break;
        case OPT_METHOD:
            if (strcmp(optarg, "GET") != 0 && strcmp(optarg, "POST") != 0 &&
                strcmp(optarg, "PUT") != 0 && strcmp(optarg, "DELETE") != 0)
                rc = usage_error("--method", optarg, "use GET, POST, PUT or DELETE");
            else
                vt_strlcpy(opt->method, optarg, sizeof opt->method);
            break;
        case OPT_BODY:
            opt->body_path = optarg;
            break;
        case OPT_HEADER:
            if (strchr(optarg, ':') == NULL || strpbrk(optarg, "\r\n") != NULL ||
                vt_strlcpy(opt->header, optarg, sizeof opt->header) >= sizeof opt->header)
                rc = usage_error("--header", optarg, "use 'Name: value' on one line");
            break;
        case OPT_NAME:
            if (strpbrk(optarg, " \t\r\n=") != NULL)
                rc = usage_error("--name", optarg, "use a label without spaces or '='");
            else
                opt->name = optarg;
            break;
        case OPT_HELP:
            print_usage(stdout);
            exit(0);
        default:
            fprintf(stderr, "bench_rate_load: unknown option or missing value: %s\n",
                    argv[optind - 1]);
            print_usage(stderr);
            return EXIT_USAGE;
        }
        if (rc != 0)
            return rc;
    }

    if (optind < argc) {
        fprintf(stderr, "bench_rate_load: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!have_url || opt->rate <= 0) {
        fprintf(stderr, "bench_rate_load: --url and --rate are required (see --help)\n");
        return EXIT_USAGE;
    }
    if (opt->name == NULL)
        opt->name = opt->path;
    return 0;
}


/* ---- inputs -------------------------------------------------------------------------- */

/* Read the whole file into a malloc'd buffer of at most max bytes. */
static char *read_file(const char *path, size_t max, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "bench_rate_load: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }

    char *data = malloc(max + 1);
    size_t len = data != NULL ? fread(data, 1, max + 1, f) : 0;
    bool failed = data == NULL || ferror(f);
    fclose(f);
    if (failed || len > max) {
        fprintf(stderr, "bench_rate_load: %s is unreadable or larger than %zu bytes\n", path,
                max);
        free(data);
        return NULL;
    }
    data[len] = '\0';
    *len_out = len;
    return data;
}


/* Load one request target a line; blank lines are skipped. */
static int load_targets(struct run *r)
{
    FILE *f = fopen(r->opt.targets_path, "r");
    if (f == NULL) {
        fprintf(stderr, "bench_rate_load: cannot open %s: %s\n", r->opt.targets_path,
                strerror(errno));
        return -1;
    }

    char line[TARGET_LEN_MAX + 2];
    size_t capacity = 0;
    int rc = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        size_t len = strcspn(line, "\r\n");
        if (len == strlen(line) && !feof(f)) {
            fprintf(stderr, "bench_rate_load: a target in %s is longer than %d bytes\n",
                    r->opt.targets_path, TARGET_LEN_MAX);
            rc = -1;
            break;
        }
        line[len] = '\0';
        if (len == 0)
            continue;
        if (line[0] != '/' || strpbrk(line, " \t") != NULL) {
            fprintf(stderr, "bench_rate_load: invalid target '%s' in %s: use /path?query\n",
                    line, r->opt.targets_path);
            rc = -1;
            break;
        }
        if (r->n_targets == TARGETS_MAX) {
            fprintf(stderr, "bench_rate_load: more than %d targets in %s\n", TARGETS_MAX,
                    r->opt.targets_path);
            rc = -1;
            break;
        }
        if (r->n_targets == capacity) {
            capacity = capacity == 0 ? 1024 : capacity * 2;
            char **grown = realloc(r->targets, capacity * sizeof *grown);
            if (grown == NULL) {
                rc = -1;
                break;
            }
            r->targets = grown;
        }
        r->targets[r->n_targets] = strdup(line);
        if (r->targets[r->n_targets] == NULL) {
            rc = -1;
            break;
        }
        r->n_targets++;
    }
    fclose(f);

    if (rc == 0 && r->n_targets == 0) {
        fprintf(stderr, "bench_rate_load: %s has no targets\n", r->opt.targets_path);
        rc = -1;
    }
    return rc;
}


static int resolve_address(struct run *r)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(r->opt.host, r->opt.port, &hints, &res);
    if (rc != 0 || res == NULL) {
        fprintf(stderr, "bench_rate_load: cannot resolve %s:%s: %s\n", r->opt.host,
                r->opt.port, gai_strerror(rc));
        return -1;
    }
    memcpy(&r->addr, res->ai_addr, res->ai_addrlen);
    r->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}


/* ---- connections --------------------------------------------------------------------- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}


/* Connect conn i (blocking connect, which is immediate on loopback, then non-blocking
 * use) and register it with epoll. */
static int conn_open(struct run *r, int i)
{
    struct conn *c = &r->conns[i];
    int fd = socket(r->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "bench_rate_load: socket failed: %s\n", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&r->addr, r->addr_len) != 0) {
        fprintf(stderr, "bench_rate_load: connect to %s:%s failed: %s\n", r->opt.host,
                r->opt.port, strerror(errno));
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    if (epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        fprintf(stderr, "bench_rate_load: epoll_ctl failed: %s\n", strerror(errno));
        close(fd);
        return -1;
    }
    c->fd = fd;
    c->state = CONN_IDLE;
    return 0;
}


static void conn_set_idle(struct run *r, int i)
{
    r->conns[i].state = CONN_IDLE;
    r->idle[r->n_idle++] = i;
}


/* Close conn i and open a new connection in its place. */
static int conn_reopen(struct run *r, int i)
{
    struct conn *c = &r->conns[i];
    epoll_ctl(r->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    return conn_open(r, i);
}


/* Drop a broken connection: the request in flight, if any, counts as an error, and a new
 * connection takes its place. Returns -1 when no new connection can be opened, which
 * stops the run. */
static int conn_fail(struct run *r, int i, const char *what)
{
    bool busy = r->conns[i].state != CONN_IDLE;
    if (busy) {
        r->errors++;
        r->completed++;
        if (r->errors <= 5)
            fprintf(stderr, "bench_rate_load: connection %d: %s\n", i, what);
    } else {
        r->idle_closed++;
    }

    if (conn_reopen(r, i) != 0)
        return -1;
    /* An idle connection is still on the idle stack. */
    if (busy)
        conn_set_idle(r, i);
    return 0;
}


static void conn_watch_output(struct run *r, int i, bool on)
{
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.u32 = (uint32_t)i};
    epoll_ctl(r->epoll_fd, EPOLL_CTL_MOD, r->conns[i].fd, &ev);
}


/* Write what is left of the request; returns -1 when the connection broke. */
static int conn_write(struct run *r, int i)
{
    struct conn *c = &r->conns[i];
    while (c->request_sent < c->request_len) {
        ssize_t n = send(c->fd, c->request + c->request_sent, c->request_len - c->request_sent,
                         MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            conn_watch_output(r, i, true);
            return 0;
        }
        if (n <= 0)
            return -1;
        c->request_sent += (size_t)n;
    }
    if (c->state == CONN_WRITING) {
        conn_watch_output(r, i, false);
        c->state = CONN_READING;
    }
    return 0;
}


/* Format the next request into conn i and start sending it. */
static int conn_send(struct run *r, int i, int64_t scheduled_ns)
{
    struct conn *c = &r->conns[i];
    const char *target = r->opt.path;
    if (r->n_targets > 0) {
        target = r->targets[r->next_target];
        r->next_target = (r->next_target + 1) % r->n_targets;
    }

    int len;
    if (r->body != NULL)
        len = snprintf(c->request, r->request_capacity,
                       "%s %s HTTP/1.1\r\nHost: %s:%s\r\n%s%s"
                       "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                       r->opt.method, target, r->opt.host, r->opt.port, r->opt.header,
                       r->opt.header[0] != '\0' ? "\r\n" : "", r->body_len);
    else
        len = snprintf(c->request, r->request_capacity, "%s %s HTTP/1.1\r\nHost: %s:%s\r\n%s%s\r\n",
                       r->opt.method, target, r->opt.host, r->opt.port, r->opt.header,
                       r->opt.header[0] != '\0' ? "\r\n" : "");
    if (len < 0 || (size_t)len + r->body_len > r->request_capacity)
        return -1;
    if (r->body != NULL)
        memcpy(c->request + len, r->body, r->body_len);

    c->request_len = (size_t)len + r->body_len;
    c->request_sent = 0;
    c->head_len = 0;
    c->head_done = false;
    c->body_left = 0;
    c->status = 0;
    c->close_after = false;
    c->scheduled_ns = scheduled_ns;
    c->sent_ns = now_ns();
    c->state = CONN_WRITING;
    return conn_write(r, i);
}


/* Parse the complete response head in c->head: status, Content-Length, Connection.
 * Returns -1 for what this client does not handle (chunked bodies, no length). */
static int parse_head(struct conn *c, size_t head_end)
{
    c->head[head_end] = '\0';
    if (strncmp(c->head, "HTTP/1.", 7) != 0 || strlen(c->head) < 12)
        return -1;
    char code[4] = {c->head[9], c->head[10], c->head[11], '\0'};
    int64_t status;
    if (vt_parse_int64(code, 100, 599, &status) != 0)
        return -1;
    c->status = (int)status;

    bool have_length = false;
    char *line = strstr(c->head, "\r\n");
    while (line != NULL && line[2] != '\0') {
        line += 2;
        char *end = strstr(line, "\r\n");
        size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
        if (len > 15 && vt_strncaseeq(line, "content-length:", 15)) {
            char digits[24];
            size_t start = 15;
            while (start < len && line[start] == ' ')
                start++;
            if (len - start == 0 || len - start >= sizeof digits)
                return -1;
            memcpy(digits, line + start, len - start);
            digits[len - start] = '\0';
            if (vt_parse_int64(digits, 0, INT64_MAX, &c->body_left) != 0)
                return -1;
            have_length = true;
        } else if (len > 11 && vt_strncaseeq(line, "connection:", 11)) {
            if (strstr(line + 11, "close") != NULL || strstr(line + 11, "Close") != NULL)
                c->close_after = true;
        } else if (len > 18 && vt_strncaseeq(line, "transfer-encoding:", 18)) {
            return -1;
        }
        line = end;
    }
    if (!have_length && c->status != 204 && c->status != 304)
        return -1;
    return 0;
}


/* Record a complete response on conn i and free the connection for the next request. */
static int conn_complete(struct run *r, int i, int64_t done_ns)
{
    struct conn *c = &r->conns[i];
    r->completed++;
    if (c->status < 200 || c->status > 299) {
        r->non_2xx++;
        if (r->non_2xx <= 3)
            fprintf(stderr, "bench_rate_load: status %d from %s\n", c->status, r->opt.name);
    } else if (c->scheduled_ns >= r->measure_from_ns) {
        histogram_add(&r->from_scheduled, done_ns - c->scheduled_ns);
        histogram_add(&r->from_sent, done_ns - c->sent_ns);
        r->measured++;
        r->last_response_ns = done_ns;
    }

    if (c->close_after && conn_reopen(r, i) != 0)
        return -1;
    conn_set_idle(r, i);
    return 0;
}


/* Read what arrived on conn i. Returns -1 when the run must stop. */
static int conn_read(struct run *r, int i)
{
    struct conn *c = &r->conns[i];
    char buf[64 * 1024];

    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0)
            return conn_fail(r, i, n == 0 ? "closed by the server" : strerror(errno));
        if (c->state != CONN_READING)
            return conn_fail(r, i, "data arrived without a request in flight");

        const char *p = buf;
        size_t left = (size_t)n;
        if (!c->head_done) {
            size_t room = sizeof c->head - 1 - c->head_len;
            size_t take = left < room ? left : room;
            memcpy(c->head + c->head_len, p, take);
            size_t scan_from = c->head_len >= 3 ? c->head_len - 3 : 0;
            c->head_len += take;
            c->head[c->head_len] = '\0';
            char *end = strstr(c->head + scan_from, "\r\n\r\n");
            if (end == NULL) {
                if (c->head_len == sizeof c->head - 1)
                    return conn_fail(r, i, "response head too long");
                continue;
            }
            size_t head_end = (size_t)(end - c->head) + 4;
            size_t body_here = c->head_len - head_end;
            if (parse_head(c, head_end) != 0)
                return conn_fail(r, i, "response without Content-Length or invalid");
            c->head_done = true;
            p += take - body_here;
            left = body_here + (left - take);
        }
        if ((int64_t)left > c->body_left)
            return conn_fail(r, i, "more bytes than the response's Content-Length");
        c->body_left -= (int64_t)left;
        if (c->body_left == 0) {
            if (conn_complete(r, i, now_ns()) != 0)
                return -1;
        }
    }
}


/* ---- schedule ------------------------------------------------------------------------ */

static int64_t scheduled_time(const struct run *r, uint64_t k)
{
    return r->start_ns + (int64_t)((double)k * 1e9 / r->opt.rate);
}


static void arm_timer(struct run *r, int64_t at_ns)
{
    struct itimerspec its = {0};
    if (at_ns > 0) {
        its.it_value.tv_sec = at_ns / NS_PER_S;
        its.it_value.tv_nsec = at_ns % NS_PER_S;
    }
    timerfd_settime(r->timer_fd, TFD_TIMER_ABSTIME, &its, NULL);
}


/* Queue every request whose time has come, then hand queued requests to idle
 * connections. Returns -1 when the run must stop. */
static int dispatch(struct run *r, int64_t now)
{
    for (;;) {
        int64_t due = scheduled_time(r, r->scheduled);
        if (due > now || due >= r->end_ns)
            break;
        if (r->queue_len == QUEUE_MAX) {
            fprintf(stderr,
                    "bench_rate_load: %u requests waiting for a connection: the rate is far "
                    "above what the server can serve; lower --rate\n",
                    QUEUE_MAX);
            return -1;
        }
        r->queue[(r->queue_head + r->queue_len) % QUEUE_MAX] = due;
        r->queue_len++;
        r->scheduled++;
    }
    if (r->queue_len > r->queue_max_seen)
        r->queue_max_seen = r->queue_len;

    while (r->queue_len > 0 && r->n_idle > 0) {
        int i = r->idle[--r->n_idle];
        int64_t due = r->queue[r->queue_head];
        r->queue_head = (r->queue_head + 1) % QUEUE_MAX;
        r->queue_len--;
        if (conn_send(r, i, due) != 0 && conn_fail(r, i, "send failed") != 0)
            return -1;
    }
    return 0;
}


static bool schedule_done(const struct run *r)
{
    return scheduled_time(r, r->scheduled) >= r->end_ns;
}


static bool all_responded(const struct run *r)
{
    return r->queue_len == 0 && r->n_idle == r->opt.connections;
}


static int run_loop(struct run *r)
{
    struct epoll_event events[256];
    int64_t drain_until = 0;

    r->start_ns = now_ns();
    r->measure_from_ns = r->start_ns + (int64_t)(r->opt.warmup_s * 1e9);
    r->end_ns = r->measure_from_ns + (int64_t)(r->opt.duration_s * 1e9);
    if (dispatch(r, r->start_ns) != 0)
        return -1;

    for (;;) {
        int64_t now = now_ns();
        if (schedule_done(r)) {
            if (all_responded(r))
                return 0;
            if (drain_until == 0)
                drain_until = now + DRAIN_NS;
            if (now >= drain_until)
                return 0;
            arm_timer(r, drain_until);
        } else {
            arm_timer(r, scheduled_time(r, r->scheduled));
        }

        int n = epoll_wait(r->epoll_fd, events, 256, -1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "bench_rate_load: epoll_wait failed: %s\n", strerror(errno));
            return -1;
        }

        for (int k = 0; k < n; k++) {
            uint32_t id = events[k].data.u32;
            if (id == UINT32_MAX) {
                uint64_t expirations;
                if (read(r->timer_fd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
                    return -1;
                continue;
            }
            int i = (int)id;
            if (r->conns[i].fd < 0)
                continue;
            if ((events[k].events & EPOLLOUT) && r->conns[i].state == CONN_WRITING &&
                conn_write(r, i) != 0 && conn_fail(r, i, "write failed") != 0)
                return -1;
            if ((events[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && r->conns[i].fd >= 0 &&
                conn_read(r, i) != 0)
                return -1;
        }

        if (dispatch(r, now_ns()) != 0)
            return -1;
    }
}


/* ---- main ---------------------------------------------------------------------------- */

static int setup(struct run *r)
{
    if (resolve_address(r) != 0)
        return -1;
    if (r->opt.targets_path != NULL && load_targets(r) != 0)
        return -1;
    if (r->opt.body_path != NULL) {
        r->body = read_file(r->opt.body_path, BODY_MAX, &r->body_len);
        if (r->body == NULL)
            return -1;
    }

    r->request_capacity = REQUEST_HEAD_MAX + r->body_len;
    r->conns = calloc((size_t)r->opt.connections, sizeof *r->conns);
    r->idle = calloc((size_t)r->opt.connections, sizeof *r->idle);
    r->queue = malloc(QUEUE_MAX * sizeof *r->queue);
    r->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    r->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (r->conns == NULL || r->idle == NULL || r->queue == NULL || r->epoll_fd < 0 ||
        r->timer_fd < 0) {
        fprintf(stderr, "bench_rate_load: out of memory or descriptors\n");
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    if (epoll_ctl(r->epoll_fd, EPOLL_CTL_ADD, r->timer_fd, &ev) != 0)
        return -1;

    for (int i = 0; i < r->opt.connections; i++) {
        r->conns[i].fd = -1;
        r->conns[i].request = malloc(r->request_capacity);
        if (r->conns[i].request == NULL || conn_open(r, i) != 0)
            return -1;
        conn_set_idle(r, i);
    }
    return 0;
}


static void report(const struct run *r)
{
    const struct options *o = &r->opt;
    uint64_t unfinished = r->scheduled - r->completed;
    /* Responses per second from the start of the measured window to its last response,
     * which comes later than the schedule's end when the server falls behind. */
    int64_t window_ns = r->last_response_ns - r->measure_from_ns;
    if (window_ns < (int64_t)(o->duration_s * 1e9))
        window_ns = (int64_t)(o->duration_s * 1e9);
    double achieved = (double)r->measured * 1e9 / (double)window_ns;

    fprintf(stderr,
            "bench_rate_load: %s: %.0f requests/s scheduled for %.1f s after %.1f s of "
            "warm-up over %d connections\n",
            o->name, o->rate, o->duration_s, o->warmup_s, o->connections);
    fprintf(stderr,
            "measured: %" PRIu64 " 2xx responses in the measured window (%.0f/s), %" PRIu64
            " errors, %" PRIu64 " non-2xx, %" PRIu64 " without a response, queue up to %zu, %" PRIu64
            " idle connections closed by the server\n",
            r->measured, achieved, r->errors, r->non_2xx, unfinished, r->queue_max_seen,
            r->idle_closed);
    fprintf(stderr,
            "measured: latency from the scheduled time p50 %.1f us, p99 %.1f us, p99.9 %.1f "
            "us, max %.1f us; from the actual send p50 %.1f us, p99 %.1f us\n",
            histogram_percentile_us(&r->from_scheduled, 50),
            histogram_percentile_us(&r->from_scheduled, 99),
            histogram_percentile_us(&r->from_scheduled, 99.9),
            (double)r->from_scheduled.max / 1000.0,
            histogram_percentile_us(&r->from_sent, 50),
            histogram_percentile_us(&r->from_sent, 99));

    printf("result: name=%s target_rps=%.0f achieved_rps=%.0f requests=%" PRIu64
           " errors=%" PRIu64 " non_2xx=%" PRIu64 " unfinished=%" PRIu64
           " p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f"
           " sent_p50_us=%.1f sent_p99_us=%.1f max_queue=%zu\n",
           o->name, o->rate, achieved, r->measured, r->errors, r->non_2xx, unfinished,
           histogram_percentile_us(&r->from_scheduled, 50),
           histogram_percentile_us(&r->from_scheduled, 90),
           histogram_percentile_us(&r->from_scheduled, 99),
           histogram_percentile_us(&r->from_scheduled, 99.9),
           (double)r->from_scheduled.max / 1000.0,
           histogram_percentile_us(&r->from_sent, 50),
           histogram_percentile_us(&r->from_sent, 99), r->queue_max_seen);
    fflush(stdout);
}


int main(int argc, char **argv)
{
    static struct run r;
    int rc = parse_options(argc, argv, &r.opt);
    if (rc != 0)
        return rc;

    if (setup(&r) != 0)
        return 1;

    rc = run_loop(&r);
    report(&r);
    return rc == 0 ? 0 : 1;
}
