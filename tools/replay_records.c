/*
 * vitrine-replay: the passes over the inputs (one per --repeat, file by file or merged by
 * time with --sort) and the grouping of their rows into records, which are then scheduled,
 * encoded and produced.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog_rows.h"
#include "replay_internal.h"
#include "vitrine/log.h"
#include "vitrine/util.h"


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
    out_ms = replay_schedule(r, rec->time_ms);
    if (r->stop)
        return;
    value = replay_encode_record(r->opt, rec, out_ms);
    if (value == NULL) {
        vt_counts_add(&r->skipped, "encoding_failed", rec->n_rows);
        return;
    }
    replay_produce(r, rec->session, value, rec->n_rows);
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
    out_ms = replay_schedule(r, row->time_ms);
    if (r->stop)
        return;
    if (rewrite) {
        rewritten = replay_rewrite_json(row, session, r->suffix, r->opt->shift_time, out_ms);
        if (rewritten == NULL) {
            vt_counts_add(&r->skipped, "rewrite_failed", 1);
            return;
        }
    }
    replay_produce(r, session, rewritten != NULL ? rewritten : row->json, 1);
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

        if (replay_input_open(&in, &opt->inputs[i]) != 0)
            return -1;
        VT_INFO("REPLAY", "pass %d: reading %s", r->pass + 1, in.path);
        while (!r->stop && (rc = replay_input_next(&in, &row, &reason)) == 1) {
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
        replay_input_close(&in);
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

        if (replay_input_open(&in, &opt->inputs[i]) != 0)
            return -1;
        while ((rc = replay_input_next(&in, &row, &reason)) == 1) {
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
                    replay_input_close(&in);
                    return -1;
                }
                *rows = p;
                cap = new_cap;
            }
            row.sequence = *n_rows;
            (*rows)[(*n_rows)++] = row;
        }
        replay_input_close(&in);
        if (rc < 0)
            return -1;
    }
    qsort(*rows, *n_rows, sizeof **rows, compare_rows_by_time);
    VT_INFO("REPLAY", "--sort: %zu rows loaded and merged by time", *n_rows);
    return 0;
}


int replay_run_passes(struct replay *r)
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
