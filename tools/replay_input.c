/*
 * vitrine-replay: reading input files into rows. REES46 CSV rows are parsed into their
 * fields, and JSON Lines records (Mapp or canonical) are kept as text with their session id
 * and time.
 */
#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog_rows.h"
#include "csv.h"
#include "replay_internal.h"
#include "vitrine/log.h"
#include "vitrine/util.h"


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


void replay_input_close(struct input *in)
{
    vt_csv_close(in->csv);
    if (in->file != NULL)
        fclose(in->file);
    free(in->line);
    memset(in, 0, sizeof *in);
}


/* Open an input and read a CSV header. Returns 0, or -1 after printing a one-line error. */
int replay_input_open(struct input *in, const struct input_file *spec)
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
            replay_input_close(in);
            return -1;
        }
        return 0;
    }

    in->csv = vt_csv_open(in->file, &csv_options);
    if (in->csv == NULL) {
        fprintf(stderr, "vitrine-replay: out of memory opening '%s'\n", spec->path);
        replay_input_close(in);
        return -1;
    }
    status = vt_csv_read_header(in->csv);
    if (status != VT_CSV_RECORD) {
        fprintf(stderr, "vitrine-replay: cannot read the CSV header of '%s': %s\n", spec->path,
                status == VT_CSV_END ? "the file is empty" : vt_csv_error(in->csv));
        replay_input_close(in);
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
        replay_input_close(in);
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
int replay_input_next(struct input *in, struct row *row, const char **reason)
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
