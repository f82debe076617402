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
#include "csv.h"
#include "vitrine/event.h"
#include "vitrine/limits.h"
#include "vitrine/log.h"
#include "vitrine/util.h"

#define INPUTS_MAX 256
#define PROPERTIES_MAX 64
#define BROKERS_MAX_LEN 1024
#define TOPIC_MAX_LEN 249
#define GROUP_MAX_LEN 255
#define EXIT_USAGE 2

/* Records of different sessions that share a time stay open together until the time changes.
 * Past this many, the oldest is produced early. */
#define OPEN_RECORDS_MAX 64

/* Mapp custom streams carry at most 25 items per record, while the root stream and the
 * canonical format are limited by what vitrine decodes (VT_EVENT_ITEMS_MAX). A larger group is
 * split into several records. */
#define FLAT_ITEMS_MAX 25

#define FLUSH_TIMEOUT_MS 60000
#define COMMITTED_TIMEOUT_MS 5000
#define FAILURES_LOGGED_MAX 10

enum input_kind { INPUT_AUTO, INPUT_REES46, INPUT_JSONL };
enum output_format { OUTPUT_MAPP, OUTPUT_CANONICAL };

struct input_file {
    const char *path;
    enum input_kind kind;
};

struct options {
    struct input_file inputs[INPUTS_MAX];
    int n_inputs;
    enum output_format format;
    bool flatten;
    bool with_attributes;
    double speed; /* recorded seconds per real second; 0 for as fast as possible */
    double max_gap_s;
    bool sort;
    char brokers[BROKERS_MAX_LEN];
    char topic[TOPIC_MAX_LEN + 1];
    int64_t limit; /* records; 0 for no limit */
    int64_t repeat;
    bool shift_time;
    const char *properties[PROPERTIES_MAX];
    int n_properties;
    int64_t max_ahead; /* 0 for no bound */
    char wait_group[GROUP_MAX_LEN + 1];
    double rate; /* records per second; 0 for no limit */
    const char *summary_json;
    bool dry_run;
};

/* One input row: a REES46 CSV row, or one JSON Lines record kept as text. */
struct row {
    bool is_json;
    int64_t time_ms;
    enum vt_event_type type;
    char session[VT_ID_MAX + 1];
    char user[VT_ID_MAX + 1];
    char product[VT_PRODUCT_ID_MAX + 1];
    double price; /* -1 when not given */
    char brand[VT_NAME_MAX + 1];
    char category_id[VT_NAME_MAX + 1];
    char category_code[VT_NAME_MAX + 1];
    char *json; /* JSON Lines text, owned by the row */
    size_t json_len;
    uint64_t sequence; /* input order, to keep --sort stable */
};

struct item {
    char product[VT_PRODUCT_ID_MAX + 1];
    double price;
    int quantity;
    char brand[VT_NAME_MAX + 1];
    char category_id[VT_NAME_MAX + 1];
    char category_code[VT_NAME_MAX + 1];
};

/* Rows of one session with one time and type, produced as one record. */
struct record {
    enum vt_event_type type;
    int64_t time_ms;
    char session[VT_ID_MAX + 1]; /* with the --repeat suffix */
    char user[VT_ID_MAX + 1];
    struct item items[VT_EVENT_ITEMS_MAX];
    size_t n_items;
    uint64_t n_rows;
    int part; /* position among the records of this session at this time: 1, 2, ... */
};

struct replay {
    const struct options *opt;
    rd_kafka_t *producer;
    size_t max_items;

    uint64_t rows_read;
    uint64_t rows_produced;
    uint64_t records;
    uint64_t delivered;
    uint64_t failed;
    struct vt_counts skipped;

    uint64_t *session_hashes; /* open-addressing set of hashes of produced session ids */
    size_t session_cap;
    uint64_t sessions;

    /* The replay timeline: recorded time with long gaps shortened, from the first record. */
    bool timeline_started;
    int64_t previous_time_ms;
    int64_t timeline_ms;
    int64_t start_wall_ms;
    uint64_t start_ns;

    struct record *open[OPEN_RECORDS_MAX];
    size_t n_open;
    struct record *spare[OPEN_RECORDS_MAX]; /* freed records for reuse */
    size_t n_spare;

    int pass;
    char suffix[24];
    bool stop;

    /* --max-ahead: a consumer handle that only reads the group's committed offsets. */
    rd_kafka_t *group_reader;
    int n_partitions;
    int64_t *base_offsets;
    uint64_t consumed;
    uint64_t last_committed_check_ns;
    uint64_t last_wait_log_ns;

    uint64_t next_progress_ns;
    uint64_t progress_records;
    uint64_t progress_ns;
};

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
        "  --shift-time           move the first record to now; later records keep their\n"
        "                         distance on the replay timeline\n"
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


/* ---- reading inputs ------------------------------------------------------------------ */

/* Column indexes of a REES46 file, -1 for an absent column. */
struct rees46_columns {
    int time, type, product, price, user, session, category_id, category_code, brand;
};

/* An open input file. */
struct input {
    const char *path;
    enum input_kind kind;
    FILE *file;
    struct vt_csv *csv;
    struct rees46_columns cols;
    char *line; /* JSON Lines buffer of VT_RECORD_MAX + 2 bytes */
    uint64_t line_number;
};


static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);

    return n >= k && vt_strncaseeq(s + n - k, suffix, k);
}


/* Decide the kind of an input by extension, or else by its first character after a byte
 * order mark and white space: '{' means JSON Lines. */
static enum input_kind detect_kind(const char *path, FILE *f)
{
    int c;

    if (has_suffix(path, ".jsonl") || has_suffix(path, ".ndjson") || has_suffix(path, ".json"))
        return INPUT_JSONL;
    if (has_suffix(path, ".csv"))
        return INPUT_REES46;
    while ((c = getc(f)) != EOF) {
        if (c == 0xEF || c == 0xBB || c == 0xBF || c == ' ' || c == '\t' || c == '\r' ||
            c == '\n')
            continue;
        break;
    }
    rewind(f);
    return c == '{' ? INPUT_JSONL : INPUT_REES46;
}


static void input_close(struct input *in)
{
    vt_csv_close(in->csv);
    if (in->file != NULL)
        fclose(in->file);
    free(in->line);
    memset(in, 0, sizeof *in);
}


/* Open an input and read a CSV header. Returns 0, or -1 after printing a one-line error. */
static int input_open(struct input *in, const struct input_file *spec)
{
    struct vt_csv_options csv_options = {.separator = ',', .max_record = 64 * 1024};
    enum vt_csv_status status;

    memset(in, 0, sizeof *in);
    in->path = spec->path;
    in->file = fopen(spec->path, "r");
    if (in->file == NULL) {
        fprintf(stderr, "vitrine-replay: cannot open '%s': %s; check the path\n", spec->path,
                strerror(errno));
        return -1;
    }
    in->kind = spec->kind != INPUT_AUTO ? spec->kind : detect_kind(spec->path, in->file);

    if (in->kind == INPUT_JSONL) {
        in->line = malloc(VT_RECORD_MAX + 2);
        if (in->line == NULL) {
            fprintf(stderr, "vitrine-replay: out of memory opening '%s'\n", spec->path);
            input_close(in);
            return -1;
        }
        return 0;
    }

    in->csv = vt_csv_open(in->file, &csv_options);
    if (in->csv == NULL) {
        fprintf(stderr, "vitrine-replay: out of memory opening '%s'\n", spec->path);
        input_close(in);
        return -1;
    }
    status = vt_csv_read_header(in->csv);
    if (status != VT_CSV_RECORD) {
        fprintf(stderr, "vitrine-replay: cannot read the CSV header of '%s': %s\n", spec->path,
                status == VT_CSV_END ? "the file is empty" : vt_csv_error(in->csv));
        input_close(in);
        return -1;
    }
    in->cols.time = vt_csv_column(in->csv, "event_time");
    in->cols.type = vt_csv_column(in->csv, "event_type");
    in->cols.product = vt_csv_column(in->csv, "product_id");
    in->cols.price = vt_csv_column(in->csv, "price");
    in->cols.user = vt_csv_column(in->csv, "user_id");
    in->cols.session = vt_csv_column(in->csv, "user_session");
    in->cols.category_id = vt_csv_column(in->csv, "category_id");
    in->cols.category_code = vt_csv_column(in->csv, "category_code");
    in->cols.brand = vt_csv_column(in->csv, "brand");
    if (in->cols.time < 0 || in->cols.type < 0 || in->cols.product < 0 ||
        in->cols.session < 0) {
        fprintf(stderr,
                "vitrine-replay: '%s' is not a REES46 events file: the header needs "
                "event_time, event_type, product_id and user_session; use --jsonl for JSON "
                "Lines\n",
                spec->path);
        input_close(in);
        return -1;
    }
    return 0;
}


/* Field col of the current CSV record, "" when absent. */
static const char *csv_value(const struct vt_csv *csv, int col, size_t *len)
{
    const char *s = col >= 0 ? vt_csv_field(csv, (size_t)col, len) : NULL;

    if (s == NULL) {
        *len = 0;
        return "";
    }
    return s;
}


static bool rees46_type(const char *s, size_t len, enum vt_event_type *type)
{
    static const struct {
        const char *name;
        enum vt_event_type type;
    } types[] = {
        {"view", VT_EV_PRODUCT_VIEW},
        {"cart", VT_EV_ADD_TO_CART},
        {"remove_from_cart", VT_EV_REMOVE_FROM_CART},
        {"purchase", VT_EV_PURCHASE},
    };

    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        if (strlen(types[i].name) == len && memcmp(types[i].name, s, len) == 0) {
            *type = types[i].type;
            return true;
        }
    }
    return false;
}


/* Copy an id field. Returns false when it is longer than dstsize - 1 or not a valid id. */
static bool copy_id(char *dst, size_t dstsize, const char *s, size_t len)
{
    if (len >= dstsize || !vt_id_valid(s, len))
        return false;
    memcpy(dst, s, len);
    dst[len] = '\0';
    return true;
}


/* Parse the current CSV record into row. Returns NULL, or the reason to skip the row. */
static const char *parse_rees46_row(const struct input *in, struct row *row)
{
    const struct vt_csv *csv = in->csv;
    const struct rees46_columns *cols = &in->cols;
    size_t len;
    const char *s;

    memset(row, 0, sizeof *row);
    row->price = -1;

    if (vt_csv_field_count(csv) <= (size_t)cols->session ||
        vt_csv_field_count(csv) <= (size_t)cols->product)
        return "missing_fields";

    s = csv_value(csv, cols->time, &len);
    if (vt_time_parse_iso8601(s, len, &row->time_ms) != 0)
        return "invalid_time";
    s = csv_value(csv, cols->type, &len);
    if (!rees46_type(s, len, &row->type))
        return "unknown_event_type";

    s = csv_value(csv, cols->session, &len);
    if (len == 0)
        return "empty_session";
    if (!copy_id(row->session, sizeof row->session, s, len))
        return "invalid_session";

    s = csv_value(csv, cols->product, &len);
    if (len == 0)
        return "missing_product";
    if (!copy_id(row->product, sizeof row->product, s, len))
        return "invalid_product";

    s = csv_value(csv, cols->user, &len);
    if (len > 0 && !copy_id(row->user, sizeof row->user, s, len))
        return "invalid_user";

    s = csv_value(csv, cols->price, &len);
    if (len > 0) {
        char text[64];

        if (len >= sizeof text)
            return "invalid_price";
        memcpy(text, s, len);
        text[len] = '\0';
        if (vt_parse_double(text, 0, 1e12, &row->price) != 0)
            return "invalid_price";
    }

    s = csv_value(csv, cols->brand, &len);
    vt_utf8_clean(row->brand, sizeof row->brand, s, len);
    s = csv_value(csv, cols->category_id, &len);
    vt_utf8_clean(row->category_id, sizeof row->category_id, s, len);
    s = csv_value(csv, cols->category_code, &len);
    vt_utf8_clean(row->category_code, sizeof row->category_code, s, len);
    return NULL;
}


/* The session id and time of a JSON Lines record: canonical events have a string "type",
 * "session_id" and "ts" (RFC 3339 text or epoch milliseconds); Mapp records have
 * "session": {"id"} or "session_id" and "timestamp". */
static const char *json_session_and_time(const cJSON *obj, struct row *row)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "type");
    const cJSON *session, *time;

    if (cJSON_IsString(type)) {
        session = cJSON_GetObjectItemCaseSensitive(obj, "session_id");
        time = cJSON_GetObjectItemCaseSensitive(obj, "ts");
    } else {
        session = cJSON_GetObjectItemCaseSensitive(obj, "session");
        session = cJSON_IsObject(session) ? cJSON_GetObjectItemCaseSensitive(session, "id")
                                          : cJSON_GetObjectItemCaseSensitive(obj, "session_id");
        time = cJSON_GetObjectItemCaseSensitive(obj, "timestamp");
    }

    if (!cJSON_IsString(session) || session->valuestring[0] == '\0')
        return "empty_session";
    if (!copy_id(row->session, sizeof row->session, session->valuestring,
                 strlen(session->valuestring)))
        return "invalid_session";
    if (cJSON_IsString(time)) {
        if (vt_time_parse_iso8601(time->valuestring, strlen(time->valuestring),
                                  &row->time_ms) != 0)
            return "invalid_time";
    } else if (cJSON_IsNumber(time) && isfinite(time->valuedouble) &&
               fabs(time->valuedouble) < 1e15) {
        row->time_ms = (int64_t)time->valuedouble;
    } else {
        return "invalid_time";
    }
    return NULL;
}


/* Read the next JSON Lines record. Returns 1 with *reason NULL for a row, 1 with a reason for
 * a line to skip, 0 at the end, -1 on a read error. */
static int read_json_line(struct input *in, struct row *row, const char **reason)
{
    size_t len;
    char *text;
    cJSON *obj;

    *reason = NULL;
    for (;;) {
        if (fgets(in->line, VT_RECORD_MAX + 2, in->file) == NULL)
            return ferror(in->file) ? -1 : 0;
        in->line_number++;
        len = strlen(in->line);
        if (len > 0 && in->line[len - 1] != '\n' && !feof(in->file)) {
            int c;

            while ((c = getc(in->file)) != EOF && c != '\n')
                ;
            *reason = "too_long";
            return 1;
        }
        while (len > 0 && (in->line[len - 1] == '\n' || in->line[len - 1] == '\r'))
            len--;
        in->line[len] = '\0';
        text = in->line;
        if (in->line_number == 1 && len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
            text += 3;
            len -= 3;
        }
        while (len > 0 && (*text == ' ' || *text == '\t')) {
            text++;
            len--;
        }
        if (len > 0)
            break;
    }

    memset(row, 0, sizeof *row);
    row->is_json = true;
    obj = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        *reason = "invalid_json";
        return 1;
    }
    *reason = json_session_and_time(obj, row);
    cJSON_Delete(obj);
    if (*reason != NULL)
        return 1;
    row->json = malloc(len + 1);
    if (row->json == NULL) {
        *reason = "out_of_memory";
        return 1;
    }
    memcpy(row->json, text, len);
    row->json[len] = '\0';
    row->json_len = len;
    return 1;
}


/* Read the next row of an input. Returns 1 with *reason NULL for a row, 1 with a reason for a
 * skipped row, 0 at the end, -1 on a read error (logged). */
static int input_next(struct input *in, struct row *row, const char **reason)
{
    enum vt_csv_status status;
    int rc;

    if (in->kind == INPUT_JSONL) {
        rc = read_json_line(in, row, reason);
        if (rc < 0)
            VT_ERROR("REPLAY", "reading %s failed at line %" PRIu64 ": %s", in->path,
                     in->line_number, strerror(errno));
        return rc;
    }

    status = vt_csv_next(in->csv);
    if (status == VT_CSV_END)
        return 0;
    if (status == VT_CSV_IO_ERROR) {
        VT_ERROR("REPLAY", "reading %s failed: %s", in->path, vt_csv_error(in->csv));
        return -1;
    }
    if (status == VT_CSV_BAD_RECORD) {
        VT_WARN("REPLAY", "%s: %s", in->path, vt_csv_error(in->csv));
        *reason = "bad_csv_record";
        return 1;
    }
    *reason = parse_rees46_row(in, row);
    return 1;
}


/* ---- encoding records ---------------------------------------------------------------- */

static const char *mapp_status(enum vt_event_type type)
{
    switch (type) {
    case VT_EV_ADD_TO_CART:
        return "add";
    case VT_EV_REMOVE_FROM_CART:
        return "del";
    case VT_EV_PURCHASE:
        return "conf";
    default:
        return "view";
    }
}


static const char *mapp_page_name(enum vt_event_type type)
{
    switch (type) {
    case VT_EV_REMOVE_FROM_CART:
        return "cart";
    case VT_EV_PURCHASE:
        return "order confirmation";
    default:
        return "product detail";
    }
}


/* "2022-10-01T00:00:03.000+00:00", Mapp's form of an ISO 8601 time. */
static void format_mapp_time(int64_t ms, char *buf, size_t bufsize)
{
    char utc[40];
    size_t n;

    vt_time_format_iso8601(ms, utc, sizeof utc);
    n = strlen(utc);
    if (n > 0 && utc[n - 1] == 'Z')
        utc[n - 1] = '\0';
    snprintf(buf, bufsize, "%s+00:00", utc);
}


/* The item's category for Mapp and the canonical format: the category_code when present,
 * else "cat-<category_id>", else "". */
static void item_category(const struct item *item, char *buf, size_t bufsize)
{
    if (item->category_code[0] != '\0')
        vt_strlcpy(buf, item->category_code, bufsize);
    else if (item->category_id[0] != '\0')
        snprintf(buf, bufsize, "cat-%s", item->category_id);
    else if (bufsize > 0)
        buf[0] = '\0';
}


/* Add {"<n>": {"key": "<n>", "value": value}} to a textValues map. */
static bool add_text_value(cJSON *map, int number, const char *value)
{
    char key[16];
    cJSON *entry;

    snprintf(key, sizeof key, "%d", number);
    entry = cJSON_AddObjectToObject(map, key);
    return entry != NULL && cJSON_AddStringToObject(entry, "key", key) != NULL &&
           cJSON_AddStringToObject(entry, "value", value) != NULL;
}


/* Request id of a Mapp record: 16 hex digits of a hash over session, time, status, part and
 * the first product, so that replaying the same input gives the same ids. */
static void mapp_record_id(const struct record *rec, int64_t time_ms, char *buf, size_t bufsize)
{
    struct vt_buf key;
    uint64_t h;

    vt_buf_init(&key, 1024);
    vt_buf_printf(&key, "%s|%" PRId64 "|%s|%d|%s", rec->session, time_ms,
                  mapp_status(rec->type), rec->part, rec->n_items > 0 ? rec->items[0].product : "");
    h = vt_hash64(key.data != NULL ? key.data : "", key.len);
    vt_buf_free(&key);
    snprintf(buf, bufsize, "%016" PRIx64, h);
}


static cJSON *build_mapp(const struct record *rec, int64_t out_ms, bool with_attributes)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *obj, *basket, *items;
    char text[VT_ID_MAX + 64];
    double order_value = 0;
    bool have_value = false;
    bool ok = root != NULL;

    mapp_record_id(rec, rec->time_ms, text, sizeof text);
    ok = ok && cJSON_AddStringToObject(root, "id", text) != NULL;
    format_mapp_time(out_ms, text, sizeof text);
    ok = ok && cJSON_AddStringToObject(root, "timestamp", text) != NULL;
    obj = ok ? cJSON_AddObjectToObject(root, "session") : NULL;
    ok = obj != NULL && cJSON_AddStringToObject(obj, "id", rec->session) != NULL;
    if (ok && rec->user[0] != '\0') {
        obj = cJSON_AddObjectToObject(root, "user");
        ok = obj != NULL && cJSON_AddStringToObject(obj, "id", rec->user) != NULL;
    }
    obj = ok ? cJSON_AddObjectToObject(root, "processingMetadata") : NULL;
    ok = obj != NULL && cJSON_AddStringToObject(obj, "detectedContext", "Action") != NULL;
    obj = ok ? cJSON_AddObjectToObject(root, "page") : NULL;
    ok = obj != NULL && cJSON_AddStringToObject(obj, "name", mapp_page_name(rec->type)) != NULL;

    basket = ok ? cJSON_AddObjectToObject(root, "basket") : NULL;
    ok = basket != NULL && cJSON_AddStringToObject(basket, "status", mapp_status(rec->type));
    items = ok ? cJSON_AddArrayToObject(basket, "items") : NULL;
    ok = items != NULL;

    for (size_t i = 0; ok && i < rec->n_items; i++) {
        const struct item *it = &rec->items[i];
        cJSON *item = cJSON_CreateObject();
        cJSON *product;

        ok = item != NULL;
        if (ok)
            cJSON_AddItemToArray(items, item);
        ok = ok && cJSON_AddNumberToObject(item, "quantity", it->quantity) != NULL;
        if (ok && it->price >= 0) {
            ok = cJSON_AddNumberToObject(item, "price", it->price) != NULL;
            order_value += it->price * it->quantity;
            have_value = true;
        }
        product = ok ? cJSON_AddObjectToObject(item, "product") : NULL;
        ok = product != NULL && cJSON_AddStringToObject(product, "name", it->product) != NULL;

        if (ok && with_attributes) {
            char category[VT_NAME_MAX + 8];

            item_category(it, category, sizeof category);
            if (it->brand[0] != '\0' || category[0] != '\0') {
                cJSON *categories = cJSON_AddObjectToObject(product, "categories");
                cJSON *values = categories != NULL
                                    ? cJSON_AddObjectToObject(categories, "textValues")
                                    : NULL;

                ok = values != NULL;
                if (ok && it->brand[0] != '\0')
                    ok = add_text_value(values, 1, it->brand);
                if (ok && category[0] != '\0')
                    ok = add_text_value(values, 2, category);
            }
        }
    }

    if (ok && rec->type == VT_EV_PURCHASE) {
        obj = cJSON_AddObjectToObject(root, "order");
        ok = obj != NULL;
        if (ok && rec->part > 1)
            snprintf(text, sizeof text, "%s-%" PRId64 "-%d", rec->session, rec->time_ms,
                     rec->part);
        else if (ok)
            snprintf(text, sizeof text, "%s-%" PRId64, rec->session, rec->time_ms);
        ok = ok && cJSON_AddStringToObject(obj, "id", text) != NULL;
        /* A sum of decimal prices carries binary rounding noise (0.1 + 0.2 is
         * 0.30000000000000004), so it is rounded to millionths. */
        if (ok && have_value)
            ok = cJSON_AddNumberToObject(obj, "value", round(order_value * 1e6) / 1e6) != NULL;
    }

    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}


/* Copy the members of src into dst with keys joined by '_' and array elements numbered from
 * 1, as Mapp's custom streams flatten records. */
static bool flatten_into(cJSON *dst, const cJSON *src, const char *prefix)
{
    const cJSON *child;
    int index = 0;

    cJSON_ArrayForEach(child, src)
    {
        char key[512];
        int n;

        index++;
        if (cJSON_IsArray(src))
            n = snprintf(key, sizeof key, "%s_%d", prefix, index);
        else if (prefix[0] != '\0')
            n = snprintf(key, sizeof key, "%s_%s", prefix, child->string);
        else
            n = snprintf(key, sizeof key, "%s", child->string);
        if (n < 0 || (size_t)n >= sizeof key)
            return false;

        if (cJSON_IsObject(child) || cJSON_IsArray(child)) {
            if (!flatten_into(dst, child, key))
                return false;
        } else {
            cJSON *copy = cJSON_Duplicate(child, false);

            if (copy == NULL)
                return false;
            cJSON_AddItemToObject(dst, key, copy);
        }
    }
    return true;
}


static cJSON *build_canonical(const struct record *rec, int64_t out_ms)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *products;
    char ts[40];
    bool ok = root != NULL;

    vt_time_format_iso8601(out_ms, ts, sizeof ts);
    ok = ok && cJSON_AddStringToObject(root, "type", vt_event_type_name(rec->type)) != NULL;
    ok = ok && cJSON_AddStringToObject(root, "session_id", rec->session) != NULL;
    if (ok && rec->user[0] != '\0')
        ok = cJSON_AddStringToObject(root, "user_id", rec->user) != NULL;
    ok = ok && cJSON_AddStringToObject(root, "ts", ts) != NULL;
    products = ok ? cJSON_AddArrayToObject(root, "products") : NULL;
    ok = products != NULL;

    for (size_t i = 0; ok && i < rec->n_items; i++) {
        const struct item *it = &rec->items[i];
        cJSON *product = cJSON_CreateObject();
        char paths[VT_ITEM_CATEGORIES_MAX][VT_NAME_MAX + 1];
        size_t n_paths = 0;

        ok = product != NULL;
        if (ok)
            cJSON_AddItemToArray(products, product);
        ok = ok && cJSON_AddStringToObject(product, "id", it->product) != NULL;
        if (ok && it->price >= 0)
            ok = cJSON_AddNumberToObject(product, "price", it->price) != NULL;
        ok = ok && cJSON_AddNumberToObject(product, "quantity", it->quantity) != NULL;
        if (ok && it->brand[0] != '\0')
            ok = cJSON_AddStringToObject(product, "brand", it->brand) != NULL;

        if (it->category_code[0] != '\0') {
            n_paths = vt_category_path(it->category_code, paths, VT_ITEM_CATEGORIES_MAX);
        } else if (it->category_id[0] != '\0') {
            item_category(it, paths[0], sizeof paths[0]);
            n_paths = 1;
        }
        if (ok && n_paths > 0) {
            cJSON *list = cJSON_AddArrayToObject(product, "categories");

            ok = list != NULL;
            for (size_t k = 0; ok && k < n_paths; k++) {
                cJSON *name = cJSON_CreateString(paths[k]);

                ok = name != NULL;
                if (ok)
                    cJSON_AddItemToArray(list, name);
            }
        }
    }

    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}


/* Encode a grouped record; the caller frees the text with free(). */
static char *encode_record(const struct options *opt, const struct record *rec, int64_t out_ms)
{
    cJSON *root = opt->format == OUTPUT_CANONICAL ? build_canonical(rec, out_ms)
                                                  : build_mapp(rec, out_ms, opt->with_attributes);
    char *text = NULL;

    if (root == NULL)
        return NULL;
    if (opt->flatten) {
        cJSON *flat = cJSON_CreateObject();

        if (flat != NULL && flatten_into(flat, root, ""))
            text = cJSON_PrintUnformatted(flat);
        cJSON_Delete(flat);
    } else {
        text = cJSON_PrintUnformatted(root);
    }
    cJSON_Delete(root);
    return text;
}


/* Append suffix to the string member name of obj, when it is a string. */
static bool append_to_string(cJSON *obj, const char *name, const char *suffix)
{
    cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    char text[VT_ID_MAX + 32];

    if (!cJSON_IsString(item))
        return true;
    snprintf(text, sizeof text, "%s%s", item->valuestring, suffix);
    return cJSON_ReplaceItemInObjectCaseSensitive(obj, name, cJSON_CreateString(text));
}


static bool replace_string(cJSON *obj, const char *name, const char *value)
{
    cJSON *item = cJSON_CreateString(value);

    if (item == NULL)
        return false;
    if (cJSON_GetObjectItemCaseSensitive(obj, name) != NULL)
        return cJSON_ReplaceItemInObjectCaseSensitive(obj, name, item);
    cJSON_AddItemToObject(obj, name, item);
    return true;
}


/* Rewrite a JSON Lines record for a repeat pass or a shifted time: the session id (and the
 * Mapp request id) get the pass suffix, the time becomes out_ms. Returns new text to free(),
 * or NULL. */
static char *rewrite_json(const struct row *row, const char *session, const char *suffix,
                          bool set_time, int64_t out_ms)
{
    cJSON *obj = cJSON_ParseWithLength(row->json, row->json_len);
    cJSON *nested;
    char ts[48];
    bool ok = obj != NULL;
    char *text = NULL;

    if (ok && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(obj, "type"))) {
        ok = replace_string(obj, "session_id", session);
        if (ok && set_time) {
            vt_time_format_iso8601(out_ms, ts, sizeof ts);
            ok = replace_string(obj, "ts", ts);
        }
    } else if (ok) {
        nested = cJSON_GetObjectItemCaseSensitive(obj, "session");
        if (cJSON_IsObject(nested))
            ok = replace_string(nested, "id", session);
        else
            ok = replace_string(obj, "session_id", session);
        if (ok && suffix[0] != '\0')
            ok = append_to_string(obj, "id", suffix);
        if (ok && set_time) {
            format_mapp_time(out_ms, ts, sizeof ts);
            ok = replace_string(obj, "timestamp", ts);
        }
    }
    if (ok)
        text = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    return text;
}


/* ---- Kafka --------------------------------------------------------------------------- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *message, void *opaque)
{
    struct replay *r = opaque;

    (void)rk;
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        r->delivered++;
        return;
    }
    r->failed++;
    if (r->failed <= FAILURES_LOGGED_MAX)
        VT_ERROR("REPLAY", "delivery to %s [%d] failed: %s%s", rd_kafka_topic_name(message->rkt),
                 (int)message->partition, rd_kafka_err2str(message->err),
                 r->failed == FAILURES_LOGGED_MAX ? " (further failures are only counted)"
                                                  : "");
}


static void log_from_rdkafka(const rd_kafka_t *rk, int level, const char *facility,
                             const char *message)
{
    (void)rk;
    VT_LOG(vt_log_level_from_syslog(level), "REPLAY", "librdkafka %s: %s", facility, message);
}


static void on_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct replay *r = opaque;
    char fatal[256];

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof fatal);
        VT_ERROR("REPLAY", "fatal producer error, stopping: %s", fatal);
        r->stop = true;
        return;
    }
    VT_WARN("REPLAY", "kafka error: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err),
            reason);
}


/* Set a librdkafka property. Returns 0, or -1 after printing the error. */
static int set_property(rd_kafka_conf_t *conf, const char *key, const char *value)
{
    char errstr[512];

    if (rd_kafka_conf_set(conf, key, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "vitrine-replay: invalid librdkafka property %s=%s: %s\n", key, value,
                errstr);
        return -1;
    }
    return 0;
}


/* Create the producer. Returns 0, 1 on a runtime failure, EXIT_USAGE for a bad property. */
static int producer_create(struct replay *r)
{
    const struct options *opt = r->opt;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];

    if (set_property(conf, "bootstrap.servers", opt->brokers) != 0 ||
        set_property(conf, "acks", "all") != 0 ||
        set_property(conf, "enable.idempotence", "true") != 0 ||
        set_property(conf, "linger.ms", "5") != 0)
        goto bad_property;

    for (int i = 0; i < opt->n_properties; i++) {
        char key[256];
        const char *eq = strchr(opt->properties[i], '=');
        size_t klen = (size_t)(eq - opt->properties[i]);

        if (klen >= sizeof key) {
            fprintf(stderr, "vitrine-replay: invalid --property '%s': the key is too long\n",
                    opt->properties[i]);
            goto bad_property;
        }
        memcpy(key, opt->properties[i], klen);
        key[klen] = '\0';
        if (set_property(conf, key, eq + 1) != 0)
            goto bad_property;
    }

    rd_kafka_conf_set_opaque(conf, r);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_log_cb(conf, log_from_rdkafka);
    rd_kafka_conf_set_error_cb(conf, on_kafka_error);
    r->producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (r->producer == NULL) {
        VT_ERROR("REPLAY", "cannot create the Kafka producer: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    return 0;

bad_property:
    rd_kafka_conf_destroy(conf);
    return EXIT_USAGE;
}


/* Prepare --max-ahead: a consumer handle of the wait group that never subscribes and only
 * reads committed offsets, the topic's partitions, and their end offsets before the replay. */
static int backlog_init(struct replay *r)
{
    const struct options *opt = r->opt;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const rd_kafka_metadata_t *metadata = NULL;
    rd_kafka_topic_t *topic;
    rd_kafka_resp_err_t err;
    char errstr[512];

    if (set_property(conf, "bootstrap.servers", opt->brokers) != 0 ||
        set_property(conf, "group.id", opt->wait_group) != 0) {
        rd_kafka_conf_destroy(conf);
        return EXIT_USAGE;
    }
    rd_kafka_conf_set_log_cb(conf, log_from_rdkafka);
    r->group_reader = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (r->group_reader == NULL) {
        VT_ERROR("REPLAY", "cannot create the consumer for --wait-group: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }

    topic = rd_kafka_topic_new(r->producer, opt->topic, NULL);
    err = topic != NULL ? rd_kafka_metadata(r->producer, 0, topic, &metadata, 10000)
                        : rd_kafka_last_error();
    if (topic != NULL)
        rd_kafka_topic_destroy(topic);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR || metadata->topic_cnt != 1 ||
        metadata->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR ||
        metadata->topics[0].partition_cnt <= 0) {
        VT_ERROR("REPLAY", "cannot read the partitions of topic %s from %s: %s", opt->topic,
                 opt->brokers,
                 rd_kafka_err2str(err != RD_KAFKA_RESP_ERR_NO_ERROR ? err
                                                                    : metadata->topics[0].err));
        if (metadata != NULL)
            rd_kafka_metadata_destroy(metadata);
        return 1;
    }
    r->n_partitions = metadata->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(metadata);

    r->base_offsets = calloc((size_t)r->n_partitions, sizeof *r->base_offsets);
    if (r->base_offsets == NULL) {
        VT_ERROR("REPLAY", "out of memory");
        return 1;
    }
    for (int p = 0; p < r->n_partitions; p++) {
        int64_t low, high;

        err = rd_kafka_query_watermark_offsets(r->producer, opt->topic, p, &low, &high, 10000);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            VT_ERROR("REPLAY", "cannot read the end offset of %s [%d]: %s", opt->topic, p,
                     rd_kafka_err2str(err));
            return 1;
        }
        r->base_offsets[p] = high;
    }
    VT_INFO("REPLAY", "--max-ahead %" PRId64 ": following group %s on %d partitions of %s",
            opt->max_ahead, opt->wait_group, r->n_partitions, opt->topic);
    return 0;
}


/* Refresh r->consumed: records of this replay that the wait group has committed, i.e. the sum
 * over partitions of (committed offset - end offset before the replay), where positive.
 * Keeps the previous value when the query fails. */
static void backlog_refresh(struct replay *r)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(r->n_partitions);
    rd_kafka_resp_err_t err;
    uint64_t consumed = 0;

    for (int p = 0; p < r->n_partitions; p++)
        rd_kafka_topic_partition_list_add(list, r->opt->topic, p);
    err = rd_kafka_committed(r->group_reader, list, COMMITTED_TIMEOUT_MS);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        VT_WARN("REPLAY", "reading committed offsets of group %s failed: %s", r->opt->wait_group,
                rd_kafka_err2str(err));
        rd_kafka_topic_partition_list_destroy(list);
        return;
    }
    for (int i = 0; i < list->cnt; i++) {
        const rd_kafka_topic_partition_t *tp = &list->elems[i];
        int64_t base = r->base_offsets[tp->partition];

        if (tp->err == RD_KAFKA_RESP_ERR_NO_ERROR && tp->offset > base)
            consumed += (uint64_t)(tp->offset - base);
    }
    rd_kafka_topic_partition_list_destroy(list);
    VT_DEBUG("REPLAY", "group %s has committed %" PRIu64 " records of this replay",
             r->opt->wait_group, consumed);
    if (consumed > r->consumed)
        r->consumed = consumed;
}


/* ---- progress, pacing and producing -------------------------------------------------- */

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
static void serve_events(struct replay *r, int ms)
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
        serve_events(r, left_ms > 100 ? 100 : (int)left_ms);
    }
}


/* Pause while the wait group is more than --max-ahead records behind. */
static void wait_for_consumers(struct replay *r)
{
    int64_t max_ahead = r->opt->max_ahead;

    if (max_ahead <= 0)
        return;
    while (!r->stop) {
        uint64_t now = vt_monotonic_ns();
        uint64_t live = r->records - r->failed;
        uint64_t ahead = live > r->consumed ? live - r->consumed : 0;

        if (ahead < (uint64_t)max_ahead)
            return;
        if (now - r->last_committed_check_ns >= 200000000u) {
            r->last_committed_check_ns = now;
            backlog_refresh(r);
            continue;
        }
        if (now - r->last_wait_log_ns >= 10000000000u) {
            r->last_wait_log_ns = now;
            VT_INFO("REPLAY", "waiting: %" PRIu64 " records ahead of group %s (--max-ahead %"
                    PRId64 ")", ahead, r->opt->wait_group, max_ahead);
        }
        serve_events(r, 100);
    }
}


/* Place a record with recorded time time_ms on the replay timeline, wait until it is due,
 * and return the time to write into it. */
static int64_t schedule(struct replay *r, int64_t time_ms)
{
    const struct options *opt = r->opt;
    int64_t max_gap_ms = (int64_t)(opt->max_gap_s * 1000);
    uint64_t due_ns = 0;

    if (!r->timeline_started) {
        r->timeline_started = true;
        r->previous_time_ms = time_ms;
        r->start_wall_ms = vt_now_ms();
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
    wait_for_consumers(r);
    return opt->shift_time ? r->start_wall_ms + r->timeline_ms : time_ms;
}


static void remember_session(struct replay *r, const char *session)
{
    uint64_t h = vt_hash64(session, strlen(session));

    if (h == 0)
        h = 1; /* 0 marks an empty slot */
    if ((r->sessions + 1) * 2 > r->session_cap) {
        size_t cap = r->session_cap > 0 ? r->session_cap * 2 : 4096;
        uint64_t *slots = calloc(cap, sizeof *slots);

        if (slots == NULL)
            return; /* the session count stays an undercount */
        for (size_t i = 0; i < r->session_cap; i++) {
            if (r->session_hashes[i] == 0)
                continue;
            size_t j = r->session_hashes[i] & (cap - 1);
            while (slots[j] != 0)
                j = (j + 1) & (cap - 1);
            slots[j] = r->session_hashes[i];
        }
        free(r->session_hashes);
        r->session_hashes = slots;
        r->session_cap = cap;
    }
    size_t j = h & (r->session_cap - 1);
    while (r->session_hashes[j] != 0) {
        if (r->session_hashes[j] == h)
            return;
        j = (j + 1) & (r->session_cap - 1);
    }
    r->session_hashes[j] = h;
    r->sessions++;
}


/* Produce one record value under key. */
static void produce(struct replay *r, const char *key, const char *value, uint64_t n_rows)
{
    size_t value_len = strlen(value);

    r->records++;
    r->rows_produced += n_rows;
    remember_session(r, key);

    if (r->opt->dry_run) {
        if (printf("%s\t%s\n", key, value) < 0)
            r->failed++;
        else
            r->delivered++;
        serve_events(r, 0);
        return;
    }

    /* serve_events() after each record also checks for a stop signal and prints progress,
     * which matters when the replay runs as fast as possible and never waits. */
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            r->producer, RD_KAFKA_V_TOPIC(r->opt->topic),
            RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE((void *)value, value_len),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);

        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            serve_events(r, 0);
            return;
        }
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && !r->stop) {
            serve_events(r, 100);
            continue;
        }
        r->failed++;
        if (r->failed <= FAILURES_LOGGED_MAX)
            VT_ERROR("REPLAY", "producing to %s failed: %s", r->opt->topic,
                     rd_kafka_err2str(err));
        return;
    }
}


/* ---- grouping rows into records ------------------------------------------------------ */

static bool limit_reached(struct replay *r)
{
    if (r->opt->limit > 0 && r->records >= (uint64_t)r->opt->limit)
        r->stop = true;
    return r->stop;
}


static void emit_record(struct replay *r, const struct record *rec)
{
    int64_t out_ms;
    char *value;

    if (limit_reached(r))
        return;
    out_ms = schedule(r, rec->time_ms);
    if (r->stop)
        return;
    value = encode_record(r->opt, rec, out_ms);
    if (value == NULL) {
        vt_counts_add(&r->skipped, "encoding_failed", rec->n_rows);
        return;
    }
    produce(r, rec->session, value, rec->n_rows);
    free(value);
}


static void close_record(struct replay *r, size_t index)
{
    struct record *rec = r->open[index];

    emit_record(r, rec);
    memmove(&r->open[index], &r->open[index + 1], (r->n_open - index - 1) * sizeof r->open[0]);
    r->n_open--;
    r->spare[r->n_spare++] = rec;
}


static void close_all_records(struct replay *r)
{
    while (r->n_open > 0)
        close_record(r, 0);
}


/* A free record, or NULL when out of memory. */
static struct record *take_record(struct replay *r)
{
    if (r->n_spare > 0)
        return r->spare[--r->n_spare];
    return malloc(sizeof(struct record));
}


/* Add a REES46 row, whose session already carries the pass suffix, to the open records. */
static void add_rees46_row(struct replay *r, const struct row *row)
{
    struct record *rec = NULL;
    size_t index = 0;
    int part = 1;

    if (r->n_open > 0 && r->open[0]->time_ms != row->time_ms)
        close_all_records(r);

    for (size_t i = 0; i < r->n_open; i++) {
        if (strcmp(r->open[i]->session, row->session) == 0) {
            rec = r->open[i];
            index = i;
            break;
        }
    }

    /* Merge a repeated product with the same price into one item of higher quantity. */
    if (rec != NULL && rec->type == row->type) {
        for (size_t i = 0; i < rec->n_items; i++) {
            struct item *it = &rec->items[i];

            if (strcmp(it->product, row->product) == 0 && it->price == row->price) {
                it->quantity++;
                rec->n_rows++;
                return;
            }
        }
    }
    if (rec != NULL && (rec->type != row->type || rec->n_items == r->max_items)) {
        part = rec->part + 1;
        close_record(r, index);
        rec = NULL;
    }

    if (rec == NULL) {
        if (r->n_open == OPEN_RECORDS_MAX)
            close_record(r, 0);
        rec = take_record(r);
        if (rec == NULL) {
            vt_counts_add(&r->skipped, "out_of_memory", 1);
            return;
        }
        rec->type = row->type;
        rec->time_ms = row->time_ms;
        vt_strlcpy(rec->session, row->session, sizeof rec->session);
        vt_strlcpy(rec->user, row->user, sizeof rec->user);
        rec->n_items = 0;
        rec->n_rows = 0;
        rec->part = part;
        r->open[r->n_open++] = rec;
    }

    struct item *it = &rec->items[rec->n_items++];
    vt_strlcpy(it->product, row->product, sizeof it->product);
    it->price = row->price;
    it->quantity = 1;
    vt_strlcpy(it->brand, row->brand, sizeof it->brand);
    vt_strlcpy(it->category_id, row->category_id, sizeof it->category_id);
    vt_strlcpy(it->category_code, row->category_code, sizeof it->category_code);
    rec->n_rows++;
}


static void add_json_row(struct replay *r, const struct row *row, const char *session)
{
    int64_t out_ms;
    char *rewritten = NULL;
    bool rewrite = r->suffix[0] != '\0' || r->opt->shift_time;

    close_all_records(r);
    if (limit_reached(r))
        return;
    out_ms = schedule(r, row->time_ms);
    if (r->stop)
        return;
    if (rewrite) {
        rewritten = rewrite_json(row, session, r->suffix, r->opt->shift_time, out_ms);
        if (rewritten == NULL) {
            vt_counts_add(&r->skipped, "rewrite_failed", 1);
            return;
        }
    }
    produce(r, session, rewritten != NULL ? rewritten : row->json, 1);
    free(rewritten);
}


/* Feed one row of the current pass into the pipeline. */
static void feed_row(struct replay *r, const struct row *row)
{
    struct row copy;
    char session[VT_ID_MAX + 1];
    int n = snprintf(session, sizeof session, "%s%s", row->session, r->suffix);

    if (n < 0 || (size_t)n >= sizeof session) {
        vt_counts_add(&r->skipped, "session_too_long_for_repeat", 1);
        return;
    }
    if (row->is_json) {
        add_json_row(r, row, session);
        return;
    }
    copy = *row;
    vt_strlcpy(copy.session, session, sizeof copy.session);
    add_rees46_row(r, &copy);
}


/* ---- passes -------------------------------------------------------------------------- */

/* Read every input in order and feed its rows. Returns 0, or -1 on a read error. */
static int replay_streaming(struct replay *r)
{
    const struct options *opt = r->opt;

    for (int i = 0; i < opt->n_inputs && !r->stop; i++) {
        struct input in;
        struct row row;
        const char *reason;
        int rc = 0;

        if (input_open(&in, &opt->inputs[i]) != 0)
            return -1;
        VT_INFO("REPLAY", "pass %d: reading %s", r->pass + 1, in.path);
        while (!r->stop && (rc = input_next(&in, &row, &reason)) == 1) {
            if (r->pass == 0)
                r->rows_read++;
            if (reason != NULL) {
                if (r->pass == 0)
                    vt_counts_add(&r->skipped, reason, 1);
                continue;
            }
            feed_row(r, &row);
            free(row.json);
        }
        input_close(&in);
        if (rc < 0)
            return -1;
    }
    return 0;
}


static int compare_rows_by_time(const void *a, const void *b)
{
    const struct row *x = a, *y = b;

    if (x->time_ms != y->time_ms)
        return x->time_ms < y->time_ms ? -1 : 1;
    return x->sequence < y->sequence ? -1 : x->sequence > y->sequence;
}


/* Read all rows of all inputs into *rows, sorted by time (stable). Returns 0 or -1. */
static int load_sorted(struct replay *r, struct row **rows, size_t *n_rows)
{
    const struct options *opt = r->opt;
    size_t cap = 0;

    *rows = NULL;
    *n_rows = 0;
    for (int i = 0; i < opt->n_inputs; i++) {
        struct input in;
        struct row row;
        const char *reason;
        int rc = 0;

        if (input_open(&in, &opt->inputs[i]) != 0)
            return -1;
        while ((rc = input_next(&in, &row, &reason)) == 1) {
            r->rows_read++;
            if (reason != NULL) {
                vt_counts_add(&r->skipped, reason, 1);
                continue;
            }
            if (*n_rows == cap) {
                size_t new_cap = cap > 0 ? cap * 2 : 4096;
                struct row *p = realloc(*rows, new_cap * sizeof *p);

                if (p == NULL) {
                    VT_ERROR("REPLAY", "out of memory loading %zu rows for --sort", *n_rows);
                    free(row.json);
                    input_close(&in);
                    return -1;
                }
                *rows = p;
                cap = new_cap;
            }
            row.sequence = *n_rows;
            (*rows)[(*n_rows)++] = row;
        }
        input_close(&in);
        if (rc < 0)
            return -1;
    }
    qsort(*rows, *n_rows, sizeof **rows, compare_rows_by_time);
    VT_INFO("REPLAY", "--sort: %zu rows loaded and merged by time", *n_rows);
    return 0;
}


static int run_passes(struct replay *r)
{
    struct row *rows = NULL;
    size_t n_rows = 0;
    int rc = 0;

    if (r->opt->sort && load_sorted(r, &rows, &n_rows) != 0)
        rc = -1;

    for (r->pass = 0; rc == 0 && r->pass < r->opt->repeat && !r->stop; r->pass++) {
        if (r->pass > 0)
            snprintf(r->suffix, sizeof r->suffix, "-r%d", r->pass);
        if (r->opt->sort) {
            for (size_t i = 0; i < n_rows && !r->stop; i++)
                feed_row(r, &rows[i]);
        } else {
            rc = replay_streaming(r);
        }
        close_all_records(r);
    }

    for (size_t i = 0; i < n_rows; i++)
        free(rows[i].json);
    free(rows);
    return rc;
}


/* ---- start and finish ---------------------------------------------------------------- */

/* Open every input once, so that a missing file or a wrong header fails before producing. */
static int check_inputs(const struct options *opt)
{
    int bad = 0;

    for (int i = 0; i < opt->n_inputs; i++) {
        struct input in;

        if (input_open(&in, &opt->inputs[i]) != 0)
            bad = 1;
        else
            input_close(&in);
    }
    return bad;
}


/* Wait for outstanding deliveries; records still queued after FLUSH_TIMEOUT_MS are purged
 * and so reported as failed by the delivery callback. */
static void flush_producer(struct replay *r)
{
    rd_kafka_resp_err_t err;

    if (r->producer == NULL)
        return;
    err = rd_kafka_flush(r->producer, FLUSH_TIMEOUT_MS);
    if (err == RD_KAFKA_RESP_ERR__TIMED_OUT) {
        VT_ERROR("REPLAY", "%d records not delivered within %d s, giving up on them",
                 rd_kafka_outq_len(r->producer), FLUSH_TIMEOUT_MS / 1000);
        rd_kafka_purge(r->producer, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_flush(r->producer, 5000);
    }
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
        status = producer_create(&r);
        if (status == 0 && opt.max_ahead > 0)
            status = backlog_init(&r);
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

    rc = run_passes(&r);
    flush_producer(&r);
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
