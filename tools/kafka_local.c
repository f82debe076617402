/*
 * vitrine-kafka-local: a local Kafka broker for the demo and the tests.
 *
 * Runs librdkafka's mock cluster (rdkafka_mock.h), a Kafka-protocol broker inside this
 * process that listens on 127.0.0.1 on ephemeral ports, creates the requested topics, prints
 * the bootstrap address and serves until SIGINT or SIGTERM. The mock cluster keeps messages
 * in memory only.
 *
 * main() is split into start, serve and stop so that a command loop (fault injection: broker
 * down, request errors, latency) can be added to serve_until_signal() without touching the
 * rest: it already waits with poll() on a signalfd, and further descriptors can join it.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "vitrine/log.h"
#include "vitrine/util.h"

#define TOPICS_MAX 64
#define TOPIC_NAME_MAX 249
#define PARTITIONS_MAX 1000
#define BROKERS_MAX 16
#define PATH_MAX_LEN 4096
#define EXIT_USAGE 2

struct topic_spec {
    char name[TOPIC_NAME_MAX + 1];
    int partitions;
};

struct options {
    int brokers;
    struct topic_spec topics[TOPICS_MAX];
    int n_topics;
    char bootstrap_file[PATH_MAX_LEN];
    char pid_file[PATH_MAX_LEN];
    char control[PATH_MAX_LEN]; /* FIFO of fault injection commands, "" for none */
};

struct local_cluster {
    rd_kafka_t *handle; /* the client instance that owns the mock cluster */
    rd_kafka_mock_cluster_t *mock;
    char bootstrap[1024];
};


static void print_usage(FILE *out)
{
    fprintf(out,
            "Usage: vitrine-kafka-local [OPTIONS]\n"
            "\n"
            "Run librdkafka's mock cluster as a local Kafka broker on 127.0.0.1 (ephemeral\n"
            "ports) until SIGINT or SIGTERM. The bootstrap address is printed as the only\n"
            "line on stdout; log lines go to stderr. Messages are kept in memory only.\n"
            "\n"
            "Options:\n"
            "  --brokers N             number of brokers, 1 to %d (default 1)\n"
            "  --topic NAME:PARTITIONS create a topic, e.g. events:4; repeatable. Topics\n"
            "                          that are produced to without being created here are\n"
            "                          created automatically with 4 partitions\n"
            "  --bootstrap-file PATH   also write the bootstrap address to PATH (written to\n"
            "                          a temporary file and renamed; removed at exit)\n"
            "  --pid-file PATH         write the process id to PATH (removed at exit)\n"
            "  --log-level LEVEL       error, warn, info or debug (default info)\n"
            "  --control PATH          create a FIFO at PATH and apply the fault injection\n"
            "                          commands written to it, one per line: down BROKER,\n"
            "                          up BROKER, rtt BROKER MS, errors API COUNT CODE\n"
            "  --help                  print this help and exit\n"
            "\n"
            "Example:\n"
            "  vitrine-kafka-local --topic events:4 --topic events.dead-letter:1 \\\n"
            "      --bootstrap-file /tmp/vitrine-kafka.addr\n",
            BROKERS_MAX);
}


static bool topic_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > TOPIC_NAME_MAX)
        return false;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}


/* Parse "name:partitions" into spec. Returns 0, or -1 after printing the error. */
static int parse_topic(const char *arg, struct topic_spec *spec)
{
    const char *colon = strrchr(arg, ':');
    int64_t partitions;

    if (colon == NULL) {
        fprintf(stderr,
                "vitrine-kafka-local: invalid --topic '%s': expected NAME:PARTITIONS, "
                "e.g. events:4\n",
                arg);
        return -1;
    }
    if (!topic_name_valid(arg, (size_t)(colon - arg))) {
        fprintf(stderr,
                "vitrine-kafka-local: invalid topic name in --topic '%s': use 1 to %d "
                "characters of a-z A-Z 0-9 . _ -\n",
                arg, TOPIC_NAME_MAX);
        return -1;
    }
    if (vt_parse_int64(colon + 1, 1, PARTITIONS_MAX, &partitions) != 0) {
        fprintf(stderr,
                "vitrine-kafka-local: invalid partition count in --topic '%s': use a whole "
                "number from 1 to %d\n",
                arg, PARTITIONS_MAX);
        return -1;
    }
    memcpy(spec->name, arg, (size_t)(colon - arg));
    spec->name[colon - arg] = '\0';
    spec->partitions = (int)partitions;
    return 0;
}


static int copy_path(const char *option, const char *arg, char *dst, size_t dstsize)
{
    if (arg[0] == '\0' || vt_strlcpy(dst, arg, dstsize) >= dstsize) {
        fprintf(stderr, "vitrine-kafka-local: invalid %s '%s': give a path of 1 to %zu bytes\n",
                option, arg, dstsize - 1);
        return -1;
    }
    return 0;
}


/* Parse the command line. Returns 0 to run, 1 after --help, EXIT_USAGE on a bad argument. */
static int parse_options(int argc, char **argv, struct options *opt)
{
    enum { OPT_BROKERS = 256, OPT_TOPIC, OPT_BOOTSTRAP_FILE, OPT_PID_FILE, OPT_LOG_LEVEL,
           OPT_CONTROL, OPT_HELP };
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, OPT_BROKERS},
        {"topic", required_argument, NULL, OPT_TOPIC},
        {"bootstrap-file", required_argument, NULL, OPT_BOOTSTRAP_FILE},
        {"pid-file", required_argument, NULL, OPT_PID_FILE},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"control", required_argument, NULL, OPT_CONTROL},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    int64_t value;
    int c;

    memset(opt, 0, sizeof *opt);
    opt->brokers = 1;
    opterr = 0;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_BROKERS:
            if (vt_parse_int64(optarg, 1, BROKERS_MAX, &value) != 0) {
                fprintf(stderr,
                        "vitrine-kafka-local: invalid --brokers '%s': use a whole number "
                        "from 1 to %d\n",
                        optarg, BROKERS_MAX);
                return EXIT_USAGE;
            }
            opt->brokers = (int)value;
            break;
        case OPT_TOPIC:
            if (opt->n_topics == TOPICS_MAX) {
                fprintf(stderr, "vitrine-kafka-local: too many --topic options: at most %d\n",
                        TOPICS_MAX);
                return EXIT_USAGE;
            }
            if (parse_topic(optarg, &opt->topics[opt->n_topics]) != 0)
                return EXIT_USAGE;
            opt->n_topics++;
            break;
        case OPT_BOOTSTRAP_FILE:
            if (copy_path("--bootstrap-file", optarg, opt->bootstrap_file,
                          sizeof opt->bootstrap_file) != 0)
                return EXIT_USAGE;
            break;
        case OPT_PID_FILE:
            if (copy_path("--pid-file", optarg, opt->pid_file, sizeof opt->pid_file) != 0)
                return EXIT_USAGE;
            break;
        case OPT_CONTROL:
            if (copy_path("--control", optarg, opt->control, sizeof opt->control) != 0)
                return EXIT_USAGE;
            break;
        case OPT_LOG_LEVEL:
            if (vt_log_level_parse(optarg, &vt_log_threshold) != 0) {
                fprintf(stderr,
                        "vitrine-kafka-local: invalid --log-level '%s': use error, warn, info "
                        "or debug\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_HELP:
            print_usage(stdout);
            return 1;
        default:
            if (optopt != 0)
                fprintf(stderr,
                        "vitrine-kafka-local: option '%s' needs a value; see --help\n",
                        argv[optind - 1]);
            else
                fprintf(stderr, "vitrine-kafka-local: unknown option '%s'; see --help\n",
                        argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vitrine-kafka-local: unexpected argument '%s'; see --help\n",
                argv[optind]);
        return EXIT_USAGE;
    }
    return 0;
}


/* Write text to path through a temporary file in the same directory and rename(2), so that
 * a reader never sees a partial file. */
static int write_file_atomic(const char *path, const char *text)
{
    char tmp[PATH_MAX_LEN + 32];
    FILE *f;
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());

    if (n < 0 || (size_t)n >= sizeof tmp) {
        VT_ERROR("KAFKA", "path too long for a temporary file: %s", path);
        return -1;
    }
    f = fopen(tmp, "w");
    if (f == NULL) {
        VT_ERROR("KAFKA", "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (fputs(text, f) == EOF || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        VT_ERROR("KAFKA", "cannot write %s: %s", tmp, strerror(errno));
        fclose(f);
        unlink(tmp);
        return -1;
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        VT_ERROR("KAFKA", "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}


static void log_from_rdkafka(const rd_kafka_t *rk, int level, const char *facility,
                             const char *message)
{
    enum vt_log_level our_level = vt_log_level_from_syslog(level);

    (void)rk;
    /* The instance that owns the mock cluster is never meant to connect anywhere, so the
     * warning about its missing bootstrap.servers is expected and only logged at debug. */
    if (strcmp(facility, "CONFWARN") == 0 && strstr(message, "bootstrap.servers") != NULL)
        our_level = VT_LOG_DEBUG;
    VT_LOG(our_level, "KAFKA", "librdkafka %s: %s", facility, message);
}


static int cluster_start(struct local_cluster *cl, const struct options *opt)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    memset(cl, 0, sizeof *cl);
    rd_kafka_conf_set_log_cb(conf, log_from_rdkafka);
    cl->handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (cl->handle == NULL) {
        VT_ERROR("KAFKA", "cannot create the librdkafka instance: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return -1;
    }

    cl->mock = rd_kafka_mock_cluster_new(cl->handle, opt->brokers);
    if (cl->mock == NULL) {
        VT_ERROR("KAFKA", "cannot start the mock cluster with %d brokers", opt->brokers);
        rd_kafka_destroy(cl->handle);
        cl->handle = NULL;
        return -1;
    }
    vt_strlcpy(cl->bootstrap, rd_kafka_mock_cluster_bootstraps(cl->mock), sizeof cl->bootstrap);

    for (int i = 0; i < opt->n_topics; i++) {
        const struct topic_spec *t = &opt->topics[i];
        int replication = opt->brokers < 3 ? opt->brokers : 3;
        rd_kafka_resp_err_t err =
            rd_kafka_mock_topic_create(cl->mock, t->name, t->partitions, replication);

        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            VT_ERROR("KAFKA", "cannot create topic %s with %d partitions: %s", t->name,
                     t->partitions, rd_kafka_err2str(err));
            return -1;
        }
        VT_INFO("KAFKA", "created topic %s with %d partitions, replication factor %d", t->name,
                t->partitions, replication);
    }
    return 0;
}


static void cluster_stop(struct local_cluster *cl)
{
    if (cl->mock != NULL)
        rd_kafka_mock_cluster_destroy(cl->mock);
    if (cl->handle != NULL)
        rd_kafka_destroy(cl->handle);
    cl->mock = NULL;
    cl->handle = NULL;
}


/* Print the bootstrap address on stdout and write the address and pid files. */
static int publish_address(const struct local_cluster *cl, const struct options *opt)
{
    char text[sizeof cl->bootstrap + 2];

    if (printf("%s\n", cl->bootstrap) < 0 || fflush(stdout) != 0) {
        VT_ERROR("KAFKA", "cannot write the bootstrap address to stdout: %s", strerror(errno));
        return -1;
    }
    if (opt->bootstrap_file[0] != '\0') {
        snprintf(text, sizeof text, "%s\n", cl->bootstrap);
        if (write_file_atomic(opt->bootstrap_file, text) != 0)
            return -1;
    }
    if (opt->pid_file[0] != '\0') {
        snprintf(text, sizeof text, "%ld\n", (long)getpid());
        if (write_file_atomic(opt->pid_file, text) != 0)
            return -1;
    }
    return 0;
}


static void remove_published_files(const struct options *opt)
{
    if (opt->bootstrap_file[0] != '\0')
        unlink(opt->bootstrap_file);
    if (opt->pid_file[0] != '\0')
        unlink(opt->pid_file);
}


/*
 * Apply one fault injection command (one line of the control FIFO):
 *   down BROKER             disconnect a broker and refuse new connections
 *   up BROKER               accept connections again
 *   rtt BROKER MS           delay every response of a broker by MS milliseconds
 *   errors API COUNT CODE   fail the next COUNT requests of API key API (0 Produce,
 *                           1 Fetch, 8 OffsetCommit, ...) with Kafka error code CODE
 * Brokers are numbered from 1. A bad command is logged and ignored.
 */
static void apply_command(struct local_cluster *cl, char *line)
{
    char *words[5] = {0};
    int64_t a = 0, b = 0, c = 0;
    size_t n = 0;

    for (char *save = NULL, *w = strtok_r(line, " \t\r", &save); w != NULL && n < 5;
         w = strtok_r(NULL, " \t\r", &save))
        words[n++] = w;
    if (n == 0)
        return;
    bool ok = false;
    if ((strcmp(words[0], "down") == 0 || strcmp(words[0], "up") == 0) && n == 2 &&
        vt_parse_int64(words[1], 1, BROKERS_MAX, &a) == 0) {
        rd_kafka_resp_err_t err = strcmp(words[0], "down") == 0
                                      ? rd_kafka_mock_broker_set_down(cl->mock, (int32_t)a)
                                      : rd_kafka_mock_broker_set_up(cl->mock, (int32_t)a);
        ok = err == RD_KAFKA_RESP_ERR_NO_ERROR;
    } else if (strcmp(words[0], "rtt") == 0 && n == 3 &&
               vt_parse_int64(words[1], 1, BROKERS_MAX, &a) == 0 &&
               vt_parse_int64(words[2], 0, 60000, &b) == 0) {
        ok = rd_kafka_mock_broker_set_rtt(cl->mock, (int32_t)a, (int)b) ==
             RD_KAFKA_RESP_ERR_NO_ERROR;
    } else if (strcmp(words[0], "errors") == 0 && n == 4 &&
               vt_parse_int64(words[1], 0, 100, &a) == 0 &&
               vt_parse_int64(words[2], 1, 1000, &b) == 0 &&
               vt_parse_int64(words[3], 1, 200, &c) == 0) {
        rd_kafka_resp_err_t errs[1000];
        for (int64_t i = 0; i < b; i++)
            errs[i] = (rd_kafka_resp_err_t)c;
        rd_kafka_mock_push_request_errors_array(cl->mock, (int16_t)a, (size_t)b, errs);
        ok = true;
    }
    if (ok)
        VT_INFO("KAFKA", "fault injection: %s%s%s%s%s%s%s", words[0], n > 1 ? " " : "",
                n > 1 ? words[1] : "", n > 2 ? " " : "", n > 2 ? words[2] : "",
                n > 3 ? " " : "", n > 3 ? words[3] : "");
    else
        VT_WARN("KAFKA", "ignored control command '%s': use down BROKER, up BROKER, "
                "rtt BROKER MS or errors API COUNT CODE", words[0]);
}


/* Wait until SIGINT or SIGTERM arrives on signal_fd, applying the commands that arrive on
 * control_fd (-1 for none) meanwhile. Returns 0, or -1 when waiting fails. */
static int serve_until_signal(struct local_cluster *cl, int signal_fd, int control_fd)
{
    struct pollfd fds[2] = {{.fd = signal_fd, .events = POLLIN},
                            {.fd = control_fd, .events = POLLIN}};
    char pending[1024];
    size_t used = 0;

    for (;;) {
        int n = poll(fds, control_fd >= 0 ? 2 : 1, 1000);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            VT_ERROR("KAFKA", "poll failed: %s", strerror(errno));
            return -1;
        }
        if (n > 0 && (fds[0].revents & POLLIN)) {
            struct signalfd_siginfo info;

            if (read(signal_fd, &info, sizeof info) == (ssize_t)sizeof info) {
                VT_INFO("KAFKA", "received %s, stopping", strsignal((int)info.ssi_signo));
                return 0;
            }
        }
        if (control_fd >= 0 && n > 0 && (fds[1].revents & POLLIN)) {
            ssize_t got = read(control_fd, pending + used, sizeof pending - 1 - used);
            if (got > 0)
                used += (size_t)got;
            char *nl;
            while ((nl = memchr(pending, '\n', used)) != NULL) {
                *nl = '\0';
                apply_command(cl, pending);
                used -= (size_t)(nl + 1 - pending);
                memmove(pending, nl + 1, used);
            }
            if (used == sizeof pending - 1)
                used = 0; /* a line longer than any command: drop it */
        }
    }
}


/* Create the control FIFO and open it for reading; also for writing, so that it never
 * reports end of file when a writer closes. Returns the descriptor or -1. */
static int open_control(const char *path)
{
    if (mkfifo(path, 0600) != 0 && errno != EEXIST) {
        VT_ERROR("KAFKA", "cannot create the control FIFO %s: %s", path, strerror(errno));
        return -1;
    }
    int fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        VT_ERROR("KAFKA", "cannot open the control FIFO %s: %s", path, strerror(errno));
    return fd;
}


int main(int argc, char **argv)
{
    struct options opt;
    struct local_cluster cluster;
    sigset_t signals;
    int signal_fd;
    int status;

    status = parse_options(argc, argv, &opt);
    if (status != 0)
        return status == 1 ? 0 : status;

    /* Block the stop signals before librdkafka starts its threads, which inherit the mask,
     * so that only the signalfd receives them. A shell starts background commands with
     * SIGINT ignored, and an ignored signal is discarded even while blocked, so restore the
     * default disposition first. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &signals, NULL) != 0) {
        VT_ERROR("KAFKA", "sigprocmask failed: %s", strerror(errno));
        return 1;
    }
    signal_fd = signalfd(-1, &signals, SFD_CLOEXEC);
    if (signal_fd < 0) {
        VT_ERROR("KAFKA", "signalfd failed: %s", strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

    if (cluster_start(&cluster, &opt) != 0) {
        cluster_stop(&cluster);
        close(signal_fd);
        return 1;
    }
    VT_INFO("KAFKA", "mock cluster with %d broker(s) listening on %s (librdkafka %s)",
            opt.brokers, cluster.bootstrap, rd_kafka_version_str());

    int control_fd = opt.control[0] != '\0' ? open_control(opt.control) : -1;
    if (opt.control[0] != '\0' && control_fd < 0)
        status = -1;
    else
        status = publish_address(&cluster, &opt) == 0
                     ? serve_until_signal(&cluster, signal_fd, control_fd)
                     : -1;
    if (control_fd >= 0) {
        close(control_fd);
        unlink(opt.control);
    }

    remove_published_files(&opt);
    cluster_stop(&cluster);
    close(signal_fd);
    VT_INFO("KAFKA", "mock cluster stopped");
    return status == 0 ? 0 : 1;
}
