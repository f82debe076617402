/*
 * vitrine-replay: produces recorded clickstreams to Kafka, keyed by session id.
 *
 * Inputs are REES46 CSV files (event_time, event_type, product_id, price, user_id,
 * user_session, optionally category_id, category_code, brand) and JSON Lines files of
 * ready-made records. REES46 rows become Mapp Intelligence Data Streams records (nested root
 * stream shape, or flattened custom stream shape) or canonical events. Rows of one session
 * with the same time and type become one record with several items. JSON Lines records are
 * produced as they are, except that --repeat and --shift-time rewrite their session id and
 * time.
 *
 * The pipeline: read rows (file by file, or all rows merged by time with --sort) -> group
 * rows into records -> place each record on the replay timeline (gaps longer than --max-gap
 * shortened) -> wait for its due time (--speed, --rate, --max-ahead) -> encode -> produce.
 * Row errors are counted by reason and reported at the end; they never stop the replay.
 */
#include <cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "catalog_rows.h"
#include "replay_internal.h"
#include "vitrine/log.h"
#include "vitrine/util.h"

/* Mapp custom streams carry at most 25 items per record, while the root stream and the
 * canonical format are limited by what vitrine decodes (VT_EVENT_ITEMS_MAX). A larger group is
 * split into several records. */
#define FLAT_ITEMS_MAX 25

static volatile sig_atomic_t stop_signal;


static void on_stop_signal(int signo)
{
    stop_signal = signo;
}


/* ---- options ------------------------------------------------------------------------- */

static void print_usage(FILE *out)
{
    fputs(
        "Usage: vitrine-replay [OPTIONS] [FILE...]\n"
        "\n"
        "Produce recorded clickstreams to Kafka, keyed by session id. FILE arguments are\n"
        "REES46 CSV or JSON Lines files, told apart by extension (.csv, .jsonl, .ndjson,\n"
        ".json) or else by their first character. Files are replayed in the order given.\n"
        "\n"
        "Inputs:\n"
        "  --rees46 FILE          a REES46 events CSV (repeatable)\n"
        "  --jsonl FILE           a JSON Lines file of Mapp or canonical records, produced\n"
        "                         as they are (repeatable)\n"
        "  --sort                 merge the rows of all files by time before replaying\n"
        "\n"
        "Records:\n"
        "  --format mapp|canonical  output format for REES46 rows (default mapp)\n"
        "  --flatten              Mapp custom stream shape: keys joined with '_', items\n"
        "                         numbered from 1, at most 25 items per record\n"
        "  --with-attributes      add brand (ca1) and category (ca2) to Mapp items when the\n"
        "                         input has them\n"
        "  --repeat N             replay the input N times; pass k > 0 appends -r<k> to\n"
        "                         session ids (default 1)\n"
        "  --limit N              stop after N records (default: no limit)\n"
        "  --shift-time           stamp each record with the time it is produced, so the\n"
        "                         data looks live (with --speed F the gaps between records\n"
        "                         are the recorded ones divided by F)\n"
        "\n"
        "Pacing:\n"
        "  --speed F|max          replay at F times the recorded pace (60: one recorded\n"
        "                         minute per second), or as fast as possible (default max)\n"
        "  --max-gap SECONDS      shorten recorded gaps longer than this (default 10)\n"
        "  --rate N               produce at most N records per second (default: no limit)\n"
        "  --max-ahead N          pause while more than N produced records are not yet\n"
        "                         committed by consumer group --wait-group (default 0: off)\n"
        "  --wait-group GROUP     the consumer group for --max-ahead\n"
        "\n"
        "Kafka:\n"
        "  --brokers LIST         bootstrap servers (default: $VITRINE_KAFKA_BROKERS)\n"
        "  --topic NAME           topic (default events)\n"
        "  --property KEY=VALUE   librdkafka producer property (repeatable); the defaults\n"
        "                         are acks=all, enable.idempotence=true, linger.ms=5\n"
        "  --dry-run              write 'key<TAB>value' lines to stdout instead of Kafka\n"
        "\n"
        "Output:\n"
        "  --summary-json FILE    write the totals as JSON to FILE\n"
        "  --log-level LEVEL      error, warn, info or debug (default info)\n"
        "  --help                 print this help and exit\n"
        "\n"
        "Exit status: 0 when every record was delivered, 1 when a delivery failed or the\n"
        "replay was interrupted, 2 for invalid arguments or unreadable files.\n"
        "\n"
        "Example:\n"
        "  vitrine-replay --brokers 127.0.0.1:9092 --speed 60 customer_data_2022_oct.csv\n",
        out);
}


static int usage_error(const char *option, const char *value, const char *hint)
{
    fprintf(stderr, "vitrine-replay: invalid %s '%s': %s\n", option, value, hint);
    return EXIT_USAGE;
}


static int add_input(struct options *opt, const char *path, enum input_kind kind)
{
    if (opt->n_inputs == INPUTS_MAX) {
        fprintf(stderr, "vitrine-replay: too many input files: at most %d\n", INPUTS_MAX);
        return EXIT_USAGE;
    }
    opt->inputs[opt->n_inputs].path = path;
    opt->inputs[opt->n_inputs].kind = kind;
    opt->n_inputs++;
    return 0;
}


static int parse_speed(const char *arg, struct options *opt)
{
    if (strcmp(arg, "max") == 0) {
        opt->speed = 0;
        return 0;
    }
    if (vt_parse_double(arg, 1e-6, 1e9, &opt->speed) != 0)
        return usage_error("--speed", arg, "use a positive number such as 60, or max");
    return 0;
}


/* Parse one option that takes a value. Returns 0 or EXIT_USAGE. */
static int parse_value_option(int code, const char *arg, struct options *opt);

enum {
    OPT_REES46 = 256,
    OPT_JSONL,
    OPT_SORT,
    OPT_FORMAT,
    OPT_FLATTEN,
    OPT_WITH_ATTRIBUTES,
    OPT_REPEAT,
    OPT_LIMIT,
    OPT_SHIFT_TIME,
    OPT_SPEED,
    OPT_MAX_GAP,
    OPT_RATE,
    OPT_MAX_AHEAD,
    OPT_WAIT_GROUP,
    OPT_BROKERS,
    OPT_TOPIC,
    OPT_PROPERTY,
    OPT_DRY_RUN,
    OPT_SUMMARY_JSON,
    OPT_LOG_LEVEL,
    OPT_HELP,
};


static int parse_value_option(int code, const char *arg, struct options *opt)
{
    switch (code) {
    case OPT_REES46:
        return add_input(opt, arg, INPUT_REES46);
    case OPT_JSONL:
        return add_input(opt, arg, INPUT_JSONL);
    case OPT_FORMAT:
        if (strcmp(arg, "mapp") == 0)
            opt->format = OUTPUT_MAPP;
        else if (strcmp(arg, "canonical") == 0)
            opt->format = OUTPUT_CANONICAL;
        else
            return usage_error("--format", arg, "use mapp or canonical");
        return 0;
    case OPT_REPEAT:
        if (vt_parse_int64(arg, 1, 1000000, &opt->repeat) != 0)
            return usage_error("--repeat", arg, "use a whole number from 1 to 1000000");
        return 0;
    case OPT_LIMIT:
        if (vt_parse_int64(arg, 1, INT64_MAX, &opt->limit) != 0)
            return usage_error("--limit", arg, "use a positive whole number of records");
        return 0;
    case OPT_SPEED:
        return parse_speed(arg, opt);
    case OPT_MAX_GAP:
        if (vt_parse_double(arg, 0, 1e9, &opt->max_gap_s) != 0)
            return usage_error("--max-gap", arg, "use a number of seconds >= 0");
        return 0;
    case OPT_RATE:
        if (vt_parse_double(arg, 1e-3, 1e9, &opt->rate) != 0)
            return usage_error("--rate", arg, "use a positive number of records per second");
        return 0;
    case OPT_MAX_AHEAD:
        if (vt_parse_int64(arg, 0, INT64_MAX, &opt->max_ahead) != 0)
            return usage_error("--max-ahead", arg, "use a whole number of records >= 0");
        return 0;
    case OPT_WAIT_GROUP:
        if (arg[0] == '\0' || vt_strlcpy(opt->wait_group, arg, sizeof opt->wait_group) >=
                                  sizeof opt->wait_group)
            return usage_error("--wait-group", arg, "use a group id of 1 to 255 bytes");
        return 0;
    case OPT_BROKERS:
        if (arg[0] == '\0' || vt_strlcpy(opt->brokers, arg, sizeof opt->brokers) >=
                                  sizeof opt->brokers)
            return usage_error("--brokers", arg, "use host:port[,host:port...]");
        return 0;
    case OPT_TOPIC:
        if (arg[0] == '\0' || vt_strlcpy(opt->topic, arg, sizeof opt->topic) >=
                                  sizeof opt->topic)
            return usage_error("--topic", arg, "use a topic name of 1 to 249 characters");
        return 0;
    case OPT_PROPERTY:
        if (strchr(arg, '=') == NULL || arg[0] == '=')
            return usage_error("--property", arg, "use KEY=VALUE, e.g. linger.ms=20");
        if (opt->n_properties == PROPERTIES_MAX) {
            fprintf(stderr, "vitrine-replay: too many --property options: at most %d\n",
                    PROPERTIES_MAX);
            return EXIT_USAGE;
        }
        opt->properties[opt->n_properties++] = arg;
        return 0;
    case OPT_SUMMARY_JSON:
        if (arg[0] == '\0')
            return usage_error("--summary-json", arg, "give a file path");
        opt->summary_json = arg;
        return 0;
    case OPT_LOG_LEVEL:
        if (vt_log_level_parse(arg, &vt_log_threshold) != 0)
            return usage_error("--log-level", arg, "use error, warn, info or debug");
        return 0;
    default:
        return EXIT_USAGE;
    }
}


/* Check relations between options. Returns 0 or EXIT_USAGE. */
static int check_options(struct options *opt)
{
    const char *env = getenv("VITRINE_KAFKA_BROKERS");

    if (opt->n_inputs == 0) {
        fprintf(stderr, "vitrine-replay: no input file: give REES46 CSV or JSON Lines files; "
                        "see --help\n");
        return EXIT_USAGE;
    }
    if (opt->brokers[0] == '\0' && env != NULL && env[0] != '\0' &&
        vt_strlcpy(opt->brokers, env, sizeof opt->brokers) >= sizeof opt->brokers)
        return usage_error("VITRINE_KAFKA_BROKERS", env, "the list is too long");
    if (opt->brokers[0] == '\0' && !opt->dry_run) {
        fprintf(stderr, "vitrine-replay: missing --brokers: give host:port of a Kafka broker, "
                        "set VITRINE_KAFKA_BROKERS, or use --dry-run\n");
        return EXIT_USAGE;
    }
    if (opt->max_ahead > 0 && opt->wait_group[0] == '\0') {
        fprintf(stderr, "vitrine-replay: --max-ahead needs --wait-group GROUP, the consumer "
                        "group whose committed offsets bound the backlog\n");
        return EXIT_USAGE;
    }
    if (opt->max_ahead > 0 && opt->dry_run) {
        fprintf(stderr, "vitrine-replay: --max-ahead needs Kafka and cannot be combined with "
                        "--dry-run\n");
        return EXIT_USAGE;
    }
    if (opt->flatten && opt->format != OUTPUT_MAPP) {
        fprintf(stderr, "vitrine-replay: --flatten applies to --format mapp only\n");
        return EXIT_USAGE;
    }
    return 0;
}


/* Parse the command line. Returns 0 to run, 1 after --help, EXIT_USAGE on a bad argument. */
static int parse_options(int argc, char **argv, struct options *opt)
{
    static const struct option longopts[] = {
        {"rees46", required_argument, NULL, OPT_REES46},
        {"jsonl", required_argument, NULL, OPT_JSONL},
        {"sort", no_argument, NULL, OPT_SORT},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"flatten", no_argument, NULL, OPT_FLATTEN},
        {"with-attributes", no_argument, NULL, OPT_WITH_ATTRIBUTES},
        {"repeat", required_argument, NULL, OPT_REPEAT},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"shift-time", no_argument, NULL, OPT_SHIFT_TIME},
        {"speed", required_argument, NULL, OPT_SPEED},
        {"max-gap", required_argument, NULL, OPT_MAX_GAP},
        {"rate", required_argument, NULL, OPT_RATE},
        {"max-ahead", required_argument, NULL, OPT_MAX_AHEAD},
        {"wait-group", required_argument, NULL, OPT_WAIT_GROUP},
        {"brokers", required_argument, NULL, OPT_BROKERS},
        {"topic", required_argument, NULL, OPT_TOPIC},
        {"property", required_argument, NULL, OPT_PROPERTY},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"summary-json", required_argument, NULL, OPT_SUMMARY_JSON},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(opt, 0, sizeof *opt);
    opt->format = OUTPUT_MAPP;
    opt->max_gap_s = 10;
    opt->repeat = 1;
    vt_strlcpy(opt->topic, "events", sizeof opt->topic);
    opterr = 0;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        int rc = 0;

        switch (c) {
        case OPT_SORT:
            opt->sort = true;
            break;
        case OPT_FLATTEN:
            opt->flatten = true;
            break;
        case OPT_WITH_ATTRIBUTES:
            opt->with_attributes = true;
            break;
        case OPT_SHIFT_TIME:
            opt->shift_time = true;
            break;
        case OPT_DRY_RUN:
            opt->dry_run = true;
            break;
        case OPT_HELP:
            print_usage(stdout);
            return 1;
        case '?':
            if (optopt != 0)
                fprintf(stderr, "vitrine-replay: option '%s' needs a value; see --help\n",
                        argv[optind - 1]);
            else
                fprintf(stderr, "vitrine-replay: unknown option '%s'; see --help\n",
                        argv[optind - 1]);
            return EXIT_USAGE;
        default:
            rc = parse_value_option(c, optarg, opt);
            break;
        }
        if (rc != 0)
            return rc;
    }
    for (int i = optind; i < argc; i++) {
        if (add_input(opt, argv[i], INPUT_AUTO) != 0)
            return EXIT_USAGE;
    }
    return check_options(opt);
}


/* ---- progress and pacing ------------------------------------------------------------- */

static void report_progress(struct replay *r, bool force)
{
    uint64_t now = vt_monotonic_ns();
    double seconds, rate;

    if (!force && now < r->next_progress_ns)
        return;
    seconds = (double)(now - r->progress_ns) / 1e9;
    rate = seconds > 0 ? (double)(r->records - r->progress_records) / seconds : 0;
    VT_INFO("REPLAY",
            "%" PRIu64 " records (%" PRIu64 " rows) produced, %.0f records/s, %" PRIu64
            " delivered, %" PRIu64 " failed",
            r->records, r->rows_produced, rate, r->delivered, r->failed);
    r->progress_records = r->records;
    r->progress_ns = now;
    r->next_progress_ns = now + 1000000000u;
}


/* Serve delivery reports for up to ms milliseconds, or sleep without a producer. */
void replay_serve_events(struct replay *r, int ms)
{
    if (r->producer != NULL) {
        rd_kafka_poll(r->producer, ms);
    } else if (ms > 0) {
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (stop_signal != 0 && !r->stop) {
        VT_WARN("REPLAY", "received %s, stopping after the records produced so far",
                strsignal(stop_signal));
        r->stop = true;
    }
    report_progress(r, false);
}


static void wait_until(struct replay *r, uint64_t due_ns)
{
    for (;;) {
        uint64_t now = vt_monotonic_ns();
        uint64_t left_ms;

        if (now >= due_ns || r->stop)
            return;
        left_ms = (due_ns - now) / 1000000u + 1;
        replay_serve_events(r, left_ms > 100 ? 100 : (int)left_ms);
    }
}


/* Place a record with recorded time time_ms on the replay timeline, wait until it is due,
 * and return the time to write into it. */
int64_t replay_schedule(struct replay *r, int64_t time_ms)
{
    const struct options *opt = r->opt;
    int64_t max_gap_ms = (int64_t)(opt->max_gap_s * 1000);
    uint64_t due_ns = 0;

    if (!r->timeline_started) {
        r->timeline_started = true;
        r->previous_time_ms = time_ms;
        r->start_ns = vt_monotonic_ns();
    }
    int64_t gap = time_ms - r->previous_time_ms;
    if (gap < 0)
        gap = 0;
    if (gap > max_gap_ms)
        gap = max_gap_ms;
    r->timeline_ms += gap;
    r->previous_time_ms = time_ms;

    if (opt->speed > 0)
        due_ns = r->start_ns + (uint64_t)((double)r->timeline_ms * 1e6 / opt->speed);
    if (opt->rate > 0) {
        uint64_t rate_ns = r->start_ns + (uint64_t)((double)r->records * 1e9 / opt->rate);
        if (rate_ns > due_ns)
            due_ns = rate_ns;
    }
    wait_until(r, due_ns);
    replay_wait_for_consumers(r);
    /* Stamping with the production time keeps every record inside a consumer's window of
     * accepted times, also for long inputs replayed at full speed or repeated. */
    return opt->shift_time ? vt_now_ms() : time_ms;
}


/* ---- start and finish ---------------------------------------------------------------- */

/* Open every input once, so that a missing file or a wrong header fails before producing. */
static int check_inputs(const struct options *opt)
{
    int bad = 0;

    for (int i = 0; i < opt->n_inputs; i++) {
        struct input in;

        if (replay_input_open(&in, &opt->inputs[i]) != 0)
            bad = 1;
        else
            replay_input_close(&in);
    }
    return bad;
}


static int write_summary_json(const struct replay *r, const char *path, double seconds)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *skipped = root != NULL ? cJSON_AddObjectToObject(root, "skipped") : NULL;
    char *text = NULL;
    FILE *f;
    int rc = -1;

    for (size_t i = 0; skipped != NULL && i < r->skipped.n; i++)
        cJSON_AddNumberToObject(skipped, r->skipped.names[i], (double)r->skipped.values[i]);
    if (skipped != NULL) {
        cJSON_AddNumberToObject(root, "rows", (double)r->rows_read);
        cJSON_AddNumberToObject(root, "rows_produced", (double)r->rows_produced);
        cJSON_AddNumberToObject(root, "records", (double)r->records);
        cJSON_AddNumberToObject(root, "sessions", (double)r->sessions);
        cJSON_AddNumberToObject(root, "delivered", (double)r->delivered);
        cJSON_AddNumberToObject(root, "failed", (double)r->failed);
        cJSON_AddNumberToObject(root, "seconds", round(seconds * 1000) / 1000);
        text = cJSON_PrintUnformatted(root);
    }
    cJSON_Delete(root);
    if (text == NULL) {
        VT_ERROR("REPLAY", "out of memory writing the summary");
        return -1;
    }

    f = fopen(path, "w");
    if (f == NULL) {
        VT_ERROR("REPLAY", "cannot write --summary-json %s: %s", path, strerror(errno));
    } else {
        if (fprintf(f, "%s\n", text) >= 0 && fflush(f) == 0)
            rc = 0;
        else
            VT_ERROR("REPLAY", "writing %s failed: %s", path, strerror(errno));
        fclose(f);
    }
    free(text);
    return rc;
}


static void replay_free(struct replay *r)
{
    for (size_t i = 0; i < r->n_open; i++)
        free(r->open[i]);
    for (size_t i = 0; i < r->n_spare; i++)
        free(r->spare[i]);
    free(r->session_hashes);
    free(r->base_offsets);
    if (r->group_reader != NULL)
        rd_kafka_destroy(r->group_reader);
    if (r->producer != NULL)
        rd_kafka_destroy(r->producer);
}


int main(int argc, char **argv)
{
    struct options opt;
    struct replay r;
    struct sigaction action;
    uint64_t started;
    double seconds;
    char skipped[512];
    int status;
    int rc;

    status = parse_options(argc, argv, &opt);
    if (status != 0)
        return status == 1 ? 0 : status;
    if (check_inputs(&opt) != 0)
        return EXIT_USAGE;

    memset(&action, 0, sizeof action);
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);

    memset(&r, 0, sizeof r);
    r.opt = &opt;
    r.max_items = opt.flatten ? FLAT_ITEMS_MAX : VT_EVENT_ITEMS_MAX;
    started = vt_monotonic_ns();
    r.progress_ns = started;
    r.next_progress_ns = started + 1000000000u;

    if (!opt.dry_run) {
        status = replay_producer_create(&r);
        if (status == 0 && opt.max_ahead > 0)
            status = replay_backlog_init(&r);
        if (status != 0) {
            replay_free(&r);
            return status;
        }
    }
    VT_INFO("REPLAY", "replaying %d file(s) %" PRId64 " time(s) to %s, topic %s, format %s%s, "
            "speed %s",
            opt.n_inputs, opt.repeat, opt.dry_run ? "stdout" : opt.brokers, opt.topic,
            opt.format == OUTPUT_MAPP ? "mapp" : "canonical", opt.flatten ? " (flattened)" : "",
            opt.speed > 0 ? "scaled" : "max");

    rc = replay_run_passes(&r);
    replay_flush_producer(&r);
    if (opt.dry_run)
        fflush(stdout);

    seconds = (double)(vt_monotonic_ns() - started) / 1e9;
    vt_counts_format(&r.skipped, skipped, sizeof skipped);
    VT_INFO("REPLAY",
            "done: %" PRIu64 " rows read, %" PRIu64 " records from %" PRIu64 " rows, %" PRIu64
            " sessions, %" PRIu64 " delivered, %" PRIu64 " failed, in %.2f s (%.0f records/s); "
            "rows skipped: %s",
            r.rows_read, r.records, r.rows_produced, r.sessions, r.delivered, r.failed, seconds,
            seconds > 0 ? (double)r.records / seconds : 0, skipped);

    status = 0;
    if (rc != 0 || r.failed > 0 || stop_signal != 0)
        status = 1;
    if (opt.summary_json != NULL && write_summary_json(&r, opt.summary_json, seconds) != 0)
        status = 1;
    replay_free(&r);
    return status;
}
