/*
 * vitrine-evaluate: measures next-item recommendation quality on recorded sessions, for a
 * running vitrine and for two baselines computed here (global popularity and item-KNN).
 *
 * The sessions are split by time: sessions that start before the cut are train, the others
 * test. The baselines learn from the train sessions; vitrine gets the train events through
 * Kafka. Then the test sessions are replayed in rounds. In each round every active session
 * sends its next chunk of events (up to its next interaction), and the evaluator waits until
 * vitrine has handled them. Then every method predicts each session's next item. vitrine
 * keeps learning from the test events, so the "online" baseline variants learn from the
 * same events at the same time. tools/evaluate_data.h defines sessions, chunks and steps.
 *
 * docs/quality.md is written by tools/quality.sh from this program's --table and
 * --details output.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "csv.h"
#include "evaluate_baselines.h"
#include "evaluate_data.h"
#include "evaluate_metrics.h"
#include "evaluate_vitrine.h"
#include "vitrine/log.h"
#include "vitrine/util.h"

#define EXIT_USAGE 2
#define INPUTS_MAX 64
#define INPUT_LIST_MAX 4096
#define PROGRESS_INTERVAL_NS 10000000000ULL

enum input_format { FORMAT_NONE, FORMAT_DIGINETICA, FORMAT_REES46 };

struct options {
    enum input_format format;
    const char *inputs[INPUTS_MAX];
    int n_inputs;
    const char *name;
    double test_fraction;
    int64_t test_from_ms; /* INT64_MIN: use test_fraction */
    bool print_cut;
    size_t knn_window;
    const char *url;
    const char *brokers;
    const char *topic;
    size_t sessions_per_round;
    int apply_timeout_s;
    int train_settle_ms;
    int round_settle_ms;
    bool shift_time;
    const char *table;
    const char *details;
};

/* A test session being replayed. */
struct active_session {
    uint32_t session;
    size_t chunk; /* the chunk to replay in the next round */
    struct vt_eval_session_state online;
};

/* Everything the replay needs. */
struct evaluation {
    const struct options *opt;
    struct vt_eval_dataset *d;
    struct vt_eval_model fixed;  /* trained on train sessions only */
    struct vt_eval_model online; /* trained on train sessions, then updated with test ones */
    struct vt_eval_vitrine *vitrine;
    uint64_t handled_base; /* records vitrine had handled before this run produced any */
    struct vt_eval_report report;
    struct vt_eval_run_facts facts;
    uint32_t *exclude;     /* scratch: items of the session's events so far */
    uint32_t *history;     /* scratch: the session's interactions so far */
};


/* ---- options ------------------------------------------------------------------------- */

static void print_usage(FILE *out)
{
    fputs(
        "Usage: vitrine-evaluate (--diginetica FILE | --rees46 FILE...) [OPTIONS]\n"
        "\n"
        "Measure next-item recommendation quality (HitRate@20, MRR@20) on recorded\n"
        "sessions split by time, for global popularity and item-KNN computed here and, with\n"
        "--vitrine, for a running vitrine fed through Kafka.\n"
        "\n"
        "Input (one data set per run):\n"
        "  --diginetica FILE       Diginetica train-item-views.csv (semicolon-separated)\n"
        "  --rees46 FILE           REES46 events CSV; repeat it for every file of the data set\n"
        "  --name NAME             data set label in the report (default diginetica or\n"
        "                          rees46)\n"
        "\n"
        "Split:\n"
        "  --test-fraction F       test sessions start in the last F of the event time range\n"
        "                          (0 < F < 1, default 0.2)\n"
        "  --test-from TIME        test sessions start at or after TIME (RFC 3339, such as\n"
        "                          2023-02-01T00:00:00Z); replaces --test-fraction\n"
        "  --print-cut             print the cut time in RFC 3339 and exit\n"
        "\n"
        "Baselines:\n"
        "  --knn-window N          item-KNN counts pairs of interactions at most N apart\n"
        "                          (default 5)\n"
        "\n"
        "vitrine (without --vitrine only the baselines are measured):\n"
        "  --vitrine URL           vitrine's HTTP API, http://HOST:PORT\n"
        "  --brokers LIST          Kafka bootstrap servers (default $VITRINE_KAFKA_BROKERS)\n"
        "  --topic NAME            the topic vitrine consumes (default events)\n"
        "  --sessions-per-round N  test sessions replayed side by side (default 100)\n"
        "  --apply-timeout-s N     longest wait in seconds for vitrine to handle produced\n"
        "                          events (default 120)\n"
        "  --train-settle-ms N     pause in milliseconds after vitrine handled the train\n"
        "                          events, for aggregates it refreshes on a timer\n"
        "                          (default 3000)\n"
        "  --round-settle-ms N     the same pause after every test round (default 0)\n"
        "  --shift-time            send event times moved by one offset so that the last\n"
        "                          event of the data set is now; vitrine decays its stream\n"
        "                          aggregates to the current time\n"
        "\n"
        "Output:\n"
        "  --table FILE            append the result rows (Markdown) to FILE, after the\n"
        "                          table header when FILE is empty or missing\n"
        "  --details FILE          write the run's facts (Markdown) to FILE\n"
        "  --log-level LEVEL       error, warn, info or debug (default info)\n"
        "  --help                  print this help and exit\n"
        "\n"
        "The results table also goes to stdout. Exit status: 0 on success, 1 when loading,\n"
        "Kafka or vitrine fails, 2 for invalid arguments or unusable input files.\n"
        "\n"
        "Example:\n"
        "  vitrine-evaluate --diginetica sample_train-item-views.csv \\\n"
        "      --vitrine http://127.0.0.1:18080 --brokers 127.0.0.1:9092\n",
        out);
}


static int usage_error(const char *option, const char *value, const char *hint)
{
    fprintf(stderr, "vitrine-evaluate: invalid %s '%s': %s\n", option, value, hint);
    return EXIT_USAGE;
}


static int parse_count(const char *option, const char *arg, int64_t min, int64_t max,
                       int64_t *out)
{
    if (vt_parse_int64(arg, min, max, out) != 0) {
        char hint[96];

        snprintf(hint, sizeof hint, "expected a whole number from %lld to %lld",
                 (long long)min, (long long)max);
        return usage_error(option, arg, hint);
    }
    return 0;
}


static int add_input(struct options *opt, enum input_format format, const char *path)
{
    if (opt->format != FORMAT_NONE && opt->format != format) {
        fprintf(stderr, "vitrine-evaluate: --diginetica and --rees46 cannot be combined: "
                        "evaluate one data set per run\n");
        return EXIT_USAGE;
    }
    if (format == FORMAT_DIGINETICA && opt->n_inputs > 0) {
        fprintf(stderr, "vitrine-evaluate: give --diginetica once\n");
        return EXIT_USAGE;
    }
    if (opt->n_inputs == INPUTS_MAX) {
        fprintf(stderr, "vitrine-evaluate: too many input files: at most %d\n", INPUTS_MAX);
        return EXIT_USAGE;
    }
    opt->format = format;
    opt->inputs[opt->n_inputs++] = path;
    return 0;
}


/* Check the options that depend on each other. Returns 0 or EXIT_USAGE. */
static int check_options(struct options *opt)
{
    if (opt->format == FORMAT_NONE) {
        fprintf(stderr, "vitrine-evaluate: no input: give --diginetica FILE or --rees46 FILE; "
                        "see --help\n");
        return EXIT_USAGE;
    }
    if (opt->name == NULL)
        opt->name = opt->format == FORMAT_DIGINETICA ? "diginetica" : "rees46";
    if (opt->url != NULL && (opt->brokers == NULL || opt->brokers[0] == '\0')) {
        fprintf(stderr, "vitrine-evaluate: --vitrine needs Kafka: give --brokers LIST or set "
                        "VITRINE_KAFKA_BROKERS\n");
        return EXIT_USAGE;
    }
    return 0;
}


/* Parse the command line. Returns 0 to run, 1 after --help, EXIT_USAGE on a bad argument. */
static int parse_options(int argc, char **argv, struct options *opt)
{
    enum { OPT_DIGINETICA = 256, OPT_REES46, OPT_NAME, OPT_TEST_FRACTION, OPT_TEST_FROM,
           OPT_PRINT_CUT, OPT_KNN_WINDOW, OPT_VITRINE, OPT_BROKERS, OPT_TOPIC,
           OPT_SESSIONS_PER_ROUND, OPT_APPLY_TIMEOUT, OPT_TRAIN_SETTLE, OPT_ROUND_SETTLE,
           OPT_SHIFT_TIME, OPT_TABLE, OPT_DETAILS, OPT_LOG_LEVEL, OPT_HELP };
    static const struct option longopts[] = {
        {"diginetica", required_argument, NULL, OPT_DIGINETICA},
        {"rees46", required_argument, NULL, OPT_REES46},
        {"name", required_argument, NULL, OPT_NAME},
        {"test-fraction", required_argument, NULL, OPT_TEST_FRACTION},
        {"test-from", required_argument, NULL, OPT_TEST_FROM},
        {"print-cut", no_argument, NULL, OPT_PRINT_CUT},
        {"knn-window", required_argument, NULL, OPT_KNN_WINDOW},
        {"vitrine", required_argument, NULL, OPT_VITRINE},
        {"brokers", required_argument, NULL, OPT_BROKERS},
        {"topic", required_argument, NULL, OPT_TOPIC},
        {"sessions-per-round", required_argument, NULL, OPT_SESSIONS_PER_ROUND},
        {"apply-timeout-s", required_argument, NULL, OPT_APPLY_TIMEOUT},
        {"train-settle-ms", required_argument, NULL, OPT_TRAIN_SETTLE},
        {"round-settle-ms", required_argument, NULL, OPT_ROUND_SETTLE},
        {"shift-time", no_argument, NULL, OPT_SHIFT_TIME},
        {"table", required_argument, NULL, OPT_TABLE},
        {"details", required_argument, NULL, OPT_DETAILS},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    int64_t n;
    int c, rc;

    memset(opt, 0, sizeof *opt);
    opt->test_fraction = 0.2;
    opt->test_from_ms = INT64_MIN;
    opt->knn_window = 5;
    opt->brokers = getenv("VITRINE_KAFKA_BROKERS");
    opt->topic = "events";
    opt->sessions_per_round = 100;
    opt->apply_timeout_s = 120;
    opt->train_settle_ms = 3000;
    opterr = 0;

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        rc = 0;
        switch (c) {
        case OPT_DIGINETICA:
            rc = add_input(opt, FORMAT_DIGINETICA, optarg);
            break;
        case OPT_REES46:
            rc = add_input(opt, FORMAT_REES46, optarg);
            break;
        case OPT_NAME:
            opt->name = optarg;
            break;
        case OPT_TEST_FRACTION:
            if (vt_parse_double(optarg, 1e-6, 1 - 1e-6, &opt->test_fraction) != 0)
                rc = usage_error("--test-fraction", optarg, "expected a number between 0 "
                                                            "and 1, such as 0.2");
            break;
        case OPT_TEST_FROM:
            if (vt_time_parse_iso8601(optarg, strlen(optarg), &opt->test_from_ms) != 0)
                rc = usage_error("--test-from", optarg,
                                 "expected a time such as 2023-02-01T00:00:00Z");
            break;
        case OPT_PRINT_CUT:
            opt->print_cut = true;
            break;
        case OPT_KNN_WINDOW:
            rc = parse_count("--knn-window", optarg, 1, 1000, &n);
            opt->knn_window = (size_t)n;
            break;
        case OPT_VITRINE:
            opt->url = optarg;
            break;
        case OPT_BROKERS:
            opt->brokers = optarg;
            break;
        case OPT_TOPIC:
            opt->topic = optarg;
            break;
        case OPT_SESSIONS_PER_ROUND:
            rc = parse_count("--sessions-per-round", optarg, 1, 100000, &n);
            opt->sessions_per_round = (size_t)n;
            break;
        case OPT_APPLY_TIMEOUT:
            rc = parse_count("--apply-timeout-s", optarg, 1, 86400, &n);
            opt->apply_timeout_s = (int)n;
            break;
        case OPT_TRAIN_SETTLE:
            rc = parse_count("--train-settle-ms", optarg, 0, 600000, &n);
            opt->train_settle_ms = (int)n;
            break;
        case OPT_ROUND_SETTLE:
            rc = parse_count("--round-settle-ms", optarg, 0, 600000, &n);
            opt->round_settle_ms = (int)n;
            break;
        case OPT_SHIFT_TIME:
            opt->shift_time = true;
            break;
        case OPT_TABLE:
            opt->table = optarg;
            break;
        case OPT_DETAILS:
            opt->details = optarg;
            break;
        case OPT_LOG_LEVEL:
            if (vt_log_level_parse(optarg, &vt_log_threshold) != 0)
                rc = usage_error("--log-level", optarg, "use error, warn, info or debug");
            break;
        case OPT_HELP:
            print_usage(stdout);
            return 1;
        default:
            fprintf(stderr, "vitrine-evaluate: %s '%s'; see --help\n",
                    optopt != 0 ? "option needs a value:" : "unknown option",
                    argv[optind - 1]);
            return EXIT_USAGE;
        }
        if (rc != 0)
            return rc;
    }
    if (optind < argc) {
        fprintf(stderr, "vitrine-evaluate: unexpected argument '%s': name each file with "
                        "--diginetica or --rees46; see --help\n",
                argv[optind]);
        return EXIT_USAGE;
    }
    return check_options(opt);
}


/* ---- loading ------------------------------------------------------------------------- */

/* Load every input file into d and finish it. Returns 0, 1 on a read failure, EXIT_USAGE
 * for a missing or unusable file. */
static int load_inputs(const struct options *opt, struct vt_eval_dataset *d)
{
    struct vt_csv_options csv_options = {
        .separator = opt->format == FORMAT_DIGINETICA ? ';' : ',',
    };

    for (int i = 0; i < opt->n_inputs; i++) {
        const char *path = opt->inputs[i];
        FILE *in = fopen(path, "r");
        struct vt_csv *reader;
        int rc;

        if (in == NULL) {
            fprintf(stderr, "vitrine-evaluate: cannot open '%s': %s; check the path\n", path,
                    strerror(errno));
            return EXIT_USAGE;
        }
        reader = vt_csv_open(in, &csv_options);
        if (reader == NULL) {
            VT_ERROR("EVAL", "out of memory opening %s", path);
            fclose(in);
            return 1;
        }
        rc = opt->format == FORMAT_DIGINETICA ? vt_eval_load_diginetica(d, reader, path)
                                              : vt_eval_load_rees46(d, reader, path);
        vt_csv_close(reader);
        fclose(in);
        if (rc != 0) {
            VT_ERROR("EVAL", "%s", d->error);
            return EXIT_USAGE;
        }
    }
    if (vt_eval_dataset_finish(d) != 0) {
        VT_ERROR("EVAL", "%s", d->error);
        return EXIT_USAGE;
    }
    return 0;
}


/* ---- vitrine ------------------------------------------------------------------------- */

static void sleep_ms(int ms)
{
    struct timespec pause = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
        ;
}


/* Wait until vitrine has handled everything produced so far and re-read its shared
 * aggregates twice (the first refresh may have started before the last batch), then pause
 * settle_ms. Every request then sees the same state, so runs are reproducible. */
static int wait_for_vitrine(struct evaluation *ev, int settle_ms)
{
    struct vt_eval_vitrine *v = ev->vitrine;

    if (vt_eval_vitrine_flush(v) != 0)
        return -1;
    if (vt_eval_vitrine_wait_handled(v, ev->handled_base + vt_eval_vitrine_produced(v),
                                     ev->opt->apply_timeout_s * 1000) != 0)
        return -1;
    if (vt_eval_vitrine_wait_refreshes(v, 2, ev->opt->apply_timeout_s * 1000) != 0)
        return -1;
    if (settle_ms > 0)
        sleep_ms(settle_ms);
    return 0;
}


/* A train event and the latest time of its session so far, its replay order key. */
struct replay_slot {
    int64_t time_ms;
    size_t event;
};


static int compare_slots(const void *a, const void *b)
{
    const struct replay_slot *x = a, *y = b;

    if (x->time_ms != y->time_ms)
        return x->time_ms < y->time_ms ? -1 : 1;
    return x->event < y->event ? -1 : x->event > y->event;
}


/*
 * Produce the train events in time order and wait until vitrine has handled them. The
 * order key of an event is the latest time among its session's events up to it. So a
 * session whose times do not grow with its order (Diginetica orders by timeframe) still
 * reaches Kafka in the data set's order.
 */
static int replay_train(struct evaluation *ev)
{
    const struct vt_eval_dataset *d = ev->d;
    struct replay_slot *slots = calloc(d->split.train_events + 1, sizeof *slots);
    size_t n = 0;
    uint64_t started = vt_monotonic_ns();
    int rc = 0;

    if (slots == NULL) {
        VT_ERROR("EVAL", "out of memory ordering %zu train events", d->split.train_events);
        return -1;
    }
    for (size_t i = 0; i < d->session_ids.n; i++) {
        const struct vt_eval_session *s = &d->sessions[i];
        int64_t latest = INT64_MIN;

        if (s->test)
            continue;
        for (size_t k = 0; k < s->n_events; k++) {
            size_t e = s->first_event + k;

            if (d->events[e].time_ms > latest)
                latest = d->events[e].time_ms;
            slots[n].time_ms = latest;
            slots[n].event = e;
            n++;
        }
    }
    qsort(slots, n, sizeof *slots, compare_slots);

    VT_INFO("EVAL", "replaying %zu train events of %zu sessions", n, d->split.train_sessions);
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = vt_eval_vitrine_produce(ev->vitrine, d, slots[i].event);
    free(slots);
    if (rc == 0)
        rc = wait_for_vitrine(ev, ev->opt->train_settle_ms);
    ev->facts.train_seconds = (double)(vt_monotonic_ns() - started) / 1e9;
    if (rc == 0)
        VT_INFO("EVAL", "vitrine handled the train events in %.1f s", ev->facts.train_seconds);
    return rc;
}


/* ---- test rounds --------------------------------------------------------------------- */

static size_t chunk_begin(const struct vt_eval_dataset *d, const struct vt_eval_session *s,
                          size_t k)
{
    return k == 0 ? s->first_event : vt_eval_chunk_end(d, s, k - 1);
}


/* Send chunk a->chunk of the session to vitrine and teach its interaction to the online
 * models. Returns 0, or -1 when producing or memory fails. */
static int replay_chunk(struct evaluation *ev, struct active_session *a)
{
    const struct vt_eval_dataset *d = ev->d;
    const struct vt_eval_session *s = &d->sessions[a->session];
    size_t end = vt_eval_chunk_end(d, s, a->chunk);

    for (size_t e = chunk_begin(d, s, a->chunk); e < end && ev->vitrine != NULL; e++) {
        if (vt_eval_vitrine_produce(ev->vitrine, d, e) != 0)
            return -1;
    }
    if (a->chunk < s->n_interactions &&
        vt_eval_model_add(&ev->online, &a->online,
                          vt_eval_interaction_item(d, s, a->chunk)) != 0) {
        VT_ERROR("EVAL", "out of memory updating the online baselines");
        return -1;
    }
    return 0;
}


/* True when item is in list[0..n). */
static bool contains(const uint32_t *list, size_t n, uint32_t item)
{
    for (size_t i = 0; i < n; i++) {
        if (list[i] == item)
            return true;
    }
    return false;
}


/* Ask vitrine for the step and score its list. ev->exclude[0..n_exclude) contains the items
 * of the session's events so far, popular[0..n_popular) the static popularity list. */
static void score_vitrine(struct evaluation *ev, const struct vt_eval_session *s, size_t k,
                          uint32_t target, bool unseen, size_t n_exclude,
                          const uint32_t *popular, size_t n_popular)
{
    uint32_t filtered[VT_EVAL_K_MAX];
    size_t n_filtered = 0;
    const struct vt_eval_dataset *d = ev->d;
    struct vt_eval_report *r = &ev->report;
    struct vt_eval_vitrine_list list;
    const char *session = vt_eval_names_get(&d->session_ids, (uint32_t)(s - d->sessions));
    const char *product = vt_eval_names_get(&d->item_ids, vt_eval_interaction_item(d, s, k));
    int rc = vt_eval_vitrine_recommend(ev->vitrine, session, product, VT_EVAL_K,
                                       &d->item_ids, &list);

    r->requests++;
    if (list.status != 0 && vt_eval_latency_add(&r->latency, list.latency_ms) != 0)
        VT_WARN("EVAL", "out of memory recording latencies; the percentiles miss requests");
    if (rc != 0) {
        r->failed_requests++;
        vt_eval_accuracy_add(&r->accuracy[VT_EVAL_METHOD_VITRINE], 0, unseen);
        vt_eval_accuracy_add(&r->vitrine_without_session_items, 0, unseen);
        return;
    }

    r->short_lists += list.n < VT_EVAL_K;
    vt_eval_report_strategy(r, list.strategy);
    for (size_t i = 0; i < list.n && i < VT_EVAL_K; i++) {
        uint32_t item = list.items[i];

        if (item == VT_EVAL_NONE) {
            filtered[n_filtered++] = item;
            continue;
        }
        r->popular_overlap += contains(popular, n_popular, item);
        if (contains(ev->exclude, n_exclude, item))
            r->session_items_listed++;
        else
            filtered[n_filtered++] = item;
    }
    vt_eval_accuracy_add(&r->accuracy[VT_EVAL_METHOD_VITRINE],
                         vt_eval_rank(list.items, list.n, target), unseen);
    vt_eval_accuracy_add(&r->vitrine_without_session_items,
                         vt_eval_rank(filtered, n_filtered, target), unseen);
}


/* Predict step a->chunk of the session with every method, when it is scored. */
static void score_step(struct evaluation *ev, const struct active_session *a)
{
    const struct vt_eval_dataset *d = ev->d;
    const struct vt_eval_session *s = &d->sessions[a->session];
    size_t k = a->chunk;
    size_t n_exclude = 0;
    uint32_t list[VT_EVAL_K_MAX];
    uint32_t popular[VT_EVAL_K_MAX];
    size_t n, n_popular, from_neighbors;
    uint32_t target;
    bool unseen;
    struct vt_eval_accuracy *acc = ev->report.accuracy;

    if (k + 1 >= s->n_interactions || !vt_eval_step_novel(d, s, k))
        return;
    target = vt_eval_interaction_item(d, s, k + 1);
    unseen = !d->item_in_train[target];

    /* Every item of the session's events so far is left out, as vitrine leaves out the
     * cart and purchases. */
    for (size_t e = s->first_event; e < vt_eval_chunk_end(d, s, k); e++)
        ev->exclude[n_exclude++] = d->events[e].item;
    for (size_t j = 0; j <= k; j++)
        ev->history[j] = vt_eval_interaction_item(d, s, j);

    n_popular = vt_eval_popular(&ev->fixed, ev->exclude, n_exclude, VT_EVAL_K, popular);
    vt_eval_accuracy_add(&acc[VT_EVAL_METHOD_POPULAR],
                         vt_eval_rank(popular, n_popular, target), unseen);
    n = vt_eval_popular(&ev->online, ev->exclude, n_exclude, VT_EVAL_K, list);
    vt_eval_accuracy_add(&acc[VT_EVAL_METHOD_POPULAR_ONLINE], vt_eval_rank(list, n, target),
                         unseen);
    n = vt_eval_knn(&ev->fixed, ev->history, k + 1, ev->exclude, n_exclude, VT_EVAL_K, list,
                    &from_neighbors);
    vt_eval_accuracy_add(&acc[VT_EVAL_METHOD_KNN], vt_eval_rank(list, n, target), unseen);
    ev->report.knn_steps_with_neighbors[0] += from_neighbors > 0;
    n = vt_eval_knn(&ev->online, ev->history, k + 1, ev->exclude, n_exclude, VT_EVAL_K, list,
                    &from_neighbors);
    vt_eval_accuracy_add(&acc[VT_EVAL_METHOD_KNN_ONLINE], vt_eval_rank(list, n, target),
                         unseen);
    ev->report.knn_steps_with_neighbors[1] += from_neighbors > 0;

    if (ev->vitrine != NULL)
        score_vitrine(ev, s, k, target, unseen, n_exclude, popular, n_popular);
}


static int compare_start(const void *a, const void *b, void *arg)
{
    const struct vt_eval_dataset *d = arg;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int64_t sx = d->sessions[x].start_ms, sy = d->sessions[y].start_ms;

    if (sx != sy)
        return sx < sy ? -1 : 1;
    return x < y ? -1 : x > y;
}


/* The test sessions in order of their start. Returns NULL when out of memory. */
static uint32_t *test_sessions_by_start(const struct vt_eval_dataset *d, size_t *n)
{
    uint32_t *order = calloc(d->split.test_sessions + 1, sizeof *order);

    *n = 0;
    if (order == NULL)
        return NULL;
    for (size_t i = 0; i < d->session_ids.n; i++) {
        if (d->sessions[i].test)
            order[(*n)++] = (uint32_t)i;
    }
    qsort_r(order, *n, sizeof *order, compare_start, (void *)d);
    return order;
}


/* One round: replay a chunk of every active session, wait for vitrine, score the steps,
 * and move each session to its next chunk. Sessions that are done leave `active`. */
static int run_round(struct evaluation *ev, struct active_session *active, size_t *n_active)
{
    const struct vt_eval_dataset *d = ev->d;
    size_t n_remaining = 0;

    for (size_t i = 0; i < *n_active; i++) {
        if (replay_chunk(ev, &active[i]) != 0)
            return -1;
    }
    if (ev->vitrine != NULL && wait_for_vitrine(ev, ev->opt->round_settle_ms) != 0)
        return -1;
    for (size_t i = 0; i < *n_active; i++)
        score_step(ev, &active[i]);

    for (size_t i = 0; i < *n_active; i++) {
        struct active_session *a = &active[i];

        a->chunk++;
        if (a->chunk >= vt_eval_chunk_count(&d->sessions[a->session])) {
            vt_eval_session_state_free(&a->online);
            continue;
        }
        if (n_remaining != i)
            active[n_remaining] = *a;
        n_remaining++;
    }
    *n_active = n_remaining;
    ev->report.rounds++;
    return 0;
}


static int replay_test(struct evaluation *ev)
{
    const struct vt_eval_dataset *d = ev->d;
    size_t window = ev->opt->sessions_per_round;
    struct active_session *active = calloc(window, sizeof *active);
    size_t n_order, next = 0, n_active = 0;
    uint32_t *order = test_sessions_by_start(d, &n_order);
    uint64_t started = vt_monotonic_ns(), last_progress = started;
    int rc = 0;

    if (active == NULL || order == NULL) {
        VT_ERROR("EVAL", "out of memory for %zu test sessions", d->split.test_sessions);
        free(active);
        free(order);
        return -1;
    }

    VT_INFO("EVAL", "replaying %zu test sessions, %zu side by side", n_order, window);
    while (rc == 0 && (next < n_order || n_active > 0)) {
        while (n_active < window && next < n_order) {
            struct active_session *a = &active[n_active++];

            a->session = order[next++];
            a->chunk = 0;
            vt_eval_session_state_init(&a->online);
        }
        rc = run_round(ev, active, &n_active);

        if (vt_monotonic_ns() - last_progress > PROGRESS_INTERVAL_NS) {
            last_progress = vt_monotonic_ns();
            VT_INFO("EVAL", "%zu of %zu test sessions started, %llu steps scored", next,
                    n_order,
                    (unsigned long long)ev->report.accuracy[VT_EVAL_METHOD_POPULAR].steps);
        }
    }

    for (size_t i = 0; i < n_active; i++)
        vt_eval_session_state_free(&active[i].online);
    free(active);
    free(order);
    ev->facts.test_seconds = (double)(vt_monotonic_ns() - started) / 1e9;
    return rc;
}


/* Count the test sessions with at least one scored step. */
static size_t count_scored_sessions(const struct vt_eval_dataset *d)
{
    size_t n = 0;

    for (size_t i = 0; i < d->session_ids.n; i++) {
        const struct vt_eval_session *s = &d->sessions[i];
        bool scored = false;

        for (size_t k = 0; s->test && k + 1 < s->n_interactions && !scored; k++)
            scored = vt_eval_step_novel(d, s, k);
        n += scored;
    }
    return n;
}


/* ---- output -------------------------------------------------------------------------- */

static int write_outputs(struct evaluation *ev)
{
    const struct options *opt = ev->opt;
    struct stat st;
    FILE *out;

    vt_eval_report_table_header(stdout);
    vt_eval_report_table_rows(stdout, &ev->report, &ev->facts);

    if (opt->table != NULL) {
        bool empty = stat(opt->table, &st) != 0 || st.st_size == 0;

        out = fopen(opt->table, "a");
        if (out == NULL) {
            VT_ERROR("EVAL", "cannot open --table %s: %s", opt->table, strerror(errno));
            return -1;
        }
        if (empty)
            vt_eval_report_table_header(out);
        vt_eval_report_table_rows(out, &ev->report, &ev->facts);
        if (fclose(out) != 0) {
            VT_ERROR("EVAL", "writing --table %s failed: %s", opt->table, strerror(errno));
            return -1;
        }
    }
    if (opt->details != NULL) {
        out = fopen(opt->details, "w");
        if (out == NULL) {
            VT_ERROR("EVAL", "cannot create --details %s: %s", opt->details, strerror(errno));
            return -1;
        }
        vt_eval_report_details(out, &ev->report, &ev->facts, ev->d);
        if (fclose(out) != 0) {
            VT_ERROR("EVAL", "writing --details %s failed: %s", opt->details,
                     strerror(errno));
            return -1;
        }
    }
    return 0;
}


/* ---- main ---------------------------------------------------------------------------- */

static void describe_inputs(const struct options *opt, char *buf, size_t bufsize)
{
    size_t used = 0;

    buf[0] = '\0';
    for (int i = 0; i < opt->n_inputs && used + 1 < bufsize; i++) {
        const char *base = strrchr(opt->inputs[i], '/');
        int n = snprintf(buf + used, bufsize - used, "%s%s", i > 0 ? ", " : "",
                         base != NULL ? base + 1 : opt->inputs[i]);

        if (n < 0)
            break;
        used += (size_t)n;
    }
}


/* Train the models, connect to vitrine and replay. Returns the exit status. */
static int evaluate(struct evaluation *ev)
{
    const struct options *opt = ev->opt;
    struct vt_eval_dataset *d = ev->d;
    size_t longest = 1;
    char err[512];

    for (size_t i = 0; i < d->session_ids.n; i++) {
        if (d->sessions[i].n_events > longest)
            longest = d->sessions[i].n_events;
    }
    ev->exclude = calloc(longest, sizeof *ev->exclude);
    ev->history = calloc(longest, sizeof *ev->history);
    if (ev->exclude == NULL || ev->history == NULL ||
        vt_eval_model_init(&ev->fixed, d->item_ids.n, opt->knn_window) != 0 ||
        vt_eval_model_init(&ev->online, d->item_ids.n, opt->knn_window) != 0 ||
        vt_eval_model_train(&ev->fixed, d) != 0 || vt_eval_model_train(&ev->online, d) != 0) {
        VT_ERROR("EVAL", "out of memory training the baselines");
        return 1;
    }

    if (opt->url != NULL) {
        struct vt_eval_vitrine_options vo = {
            .brokers = opt->brokers, .topic = opt->topic, .url = opt->url, .timeout_ms = 10000,
        };
        struct vt_eval_handled handled;

        if (opt->shift_time) {
            vo.time_shift_ms = vt_now_ms() - d->max_ms;
            ev->facts.time_shift_ms = vo.time_shift_ms;
            VT_INFO("EVAL", "event times are moved %.1f days forward",
                    (double)vo.time_shift_ms / 86400000.0);
        }

        ev->vitrine = vt_eval_vitrine_open(&vo, err, sizeof err);
        if (ev->vitrine == NULL) {
            fprintf(stderr, "vitrine-evaluate: %s\n", err);
            return EXIT_USAGE;
        }
        if (vt_eval_vitrine_handled(ev->vitrine, &handled) != 0)
            return 1;
        ev->handled_base = handled.total;
        ev->report.with_vitrine = true;
        if (replay_train(ev) != 0)
            return 1;
    }

    if (replay_test(ev) != 0)
        return 1;
    ev->report.sessions_scored = count_scored_sessions(d);
    if (ev->vitrine != NULL) {
        ev->facts.produced = vt_eval_vitrine_produced(ev->vitrine);
        if (vt_eval_vitrine_handled(ev->vitrine, &ev->facts.handled) != 0)
            return 1;
    }
    return write_outputs(ev) == 0 ? 0 : 1;
}


int main(int argc, char **argv)
{
    struct options opt;
    struct vt_eval_dataset d;
    struct evaluation ev;
    char inputs[INPUT_LIST_MAX];
    char cut[40];
    int status;

    vt_log_threshold = VT_LOG_INFO;
    status = parse_options(argc, argv, &opt);
    if (status != 0)
        return status == 1 ? 0 : status;

    vt_eval_dataset_init(&d);
    status = load_inputs(&opt, &d);
    if (status == 0) {
        int64_t cut_ms = opt.test_from_ms != INT64_MIN
                             ? opt.test_from_ms
                             : vt_eval_cut_for_fraction(&d, opt.test_fraction);

        if (vt_eval_dataset_split(&d, cut_ms) != 0) {
            VT_ERROR("EVAL", "%s", d.error);
            status = 1;
        }
        vt_time_format_iso8601(cut_ms, cut, sizeof cut);
    }
    if (status == 0 && opt.print_cut) {
        printf("%s\n", cut);
        vt_eval_dataset_free(&d);
        return 0;
    }

    memset(&ev, 0, sizeof ev);
    ev.opt = &opt;
    ev.d = &d;
    vt_eval_report_init(&ev.report);
    describe_inputs(&opt, inputs, sizeof inputs);
    ev.facts.dataset = opt.name;
    ev.facts.input = inputs;
    ev.facts.test_fraction = opt.test_from_ms != INT64_MIN ? -1 : opt.test_fraction;
    ev.facts.knn_window = opt.knn_window;
    ev.facts.sessions_per_round = opt.sessions_per_round;

    if (status == 0) {
        VT_INFO("EVAL", "%s: %zu events, %zu sessions (%zu train, %zu test), cut %s, %zu "
                        "scored steps",
                opt.name, d.n_events, d.session_ids.n, d.split.train_sessions,
                d.split.test_sessions, cut, d.split.steps_scored);
        status = evaluate(&ev);
    }

    vt_eval_vitrine_close(ev.vitrine);
    vt_eval_model_free(&ev.fixed);
    vt_eval_model_free(&ev.online);
    free(ev.exclude);
    free(ev.history);
    vt_eval_report_free(&ev.report);
    vt_eval_dataset_free(&d);
    return status;
}
