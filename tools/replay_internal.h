/*
 * vitrine-replay internals: the types and functions shared by the files of the tool.
 *
 *   replay.c          main, command-line options, pacing, progress and the summary
 *   replay_input.c    reading REES46 CSV and JSON Lines files into rows
 *   replay_records.c  the passes over the inputs and the grouping of rows into records
 *   replay_encode.c   encoding records as Mapp or canonical JSON
 *   replay_kafka.c    producing records, delivery reports and --max-ahead
 */
#ifndef VITRINE_TOOLS_REPLAY_INTERNAL_H
#define VITRINE_TOOLS_REPLAY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <librdkafka/rdkafka.h>

#include "catalog_rows.h"
#include "csv.h"
#include "vitrine/event.h"
#include "vitrine/limits.h"

#define INPUTS_MAX 256
#define PROPERTIES_MAX 64
#define BROKERS_MAX_LEN 1024
#define TOPIC_MAX_LEN 249
#define GROUP_MAX_LEN 255
#define EXIT_USAGE 2

/* Records of different sessions that share a time stay open together until the time changes.
 * Past this many, the oldest is produced early. */
#define OPEN_RECORDS_MAX 64

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

/* replay.c */
int64_t replay_schedule(struct replay *r, int64_t time_ms);
void replay_serve_events(struct replay *r, int ms);

/* replay_input.c */
int replay_input_open(struct input *in, const struct input_file *spec);
int replay_input_next(struct input *in, struct row *row, const char **reason);
void replay_input_close(struct input *in);

/* replay_records.c */
int replay_run_passes(struct replay *r);

/* replay_encode.c */
char *replay_encode_record(const struct options *opt, const struct record *rec, int64_t out_ms);
char *replay_rewrite_json(const struct row *row, const char *session, const char *suffix,
                          bool set_time, int64_t out_ms);

/* replay_kafka.c */
int replay_producer_create(struct replay *r);
int replay_backlog_init(struct replay *r);
void replay_wait_for_consumers(struct replay *r);
void replay_produce(struct replay *r, const char *key, const char *value, uint64_t n_rows);
void replay_flush_producer(struct replay *r);

#endif
