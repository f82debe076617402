/*
 * vitrine tools: the streaming CSV reader (see tools/csv.h).
 *
 * A byte-at-a-time state machine over an own input buffer, so that the reader can look one
 * byte ahead (CR LF) and check the three bytes of a byte order mark without ungetc.
 */
#include "csv.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "vitrine/util.h"

#define INPUT_BUFFER_SIZE 65536

enum parse_state {
    STATE_FIELD_START, /* nothing of the current field read yet */
    STATE_UNQUOTED,    /* inside a field that did not start with a quote */
    STATE_QUOTED,      /* inside a quoted field */
    STATE_QUOTE_SEEN,  /* a quote inside a quoted field: closing, or the first of "" */
};

struct vt_csv {
    FILE *in;
    char separator;
    size_t max_fields;
    size_t max_record;

    unsigned char input[INPUT_BUFFER_SIZE];
    size_t input_pos;
    size_t input_len;
    bool input_end;
    bool input_failed;
    int input_errno;
    bool bom_checked;

    /* The current record: field contents, each NUL-terminated, and their offsets. */
    char *data;
    size_t data_len;
    size_t data_cap;
    size_t *field_starts;
    size_t *field_lens;
    size_t n_fields;
    bool too_long;
    bool too_many_fields;

    uint64_t line;        /* line number of the next byte */
    uint64_t record_line; /* line number where the current record starts */

    char *header_data;
    size_t *header_starts;
    size_t n_header;

    char error[VT_CSV_ERROR_MAX];
};


struct vt_csv *vt_csv_open(FILE *in, const struct vt_csv_options *options)
{
    struct vt_csv *r;
    char separator = options != NULL && options->separator != 0 ? options->separator : ',';

    if (in == NULL || separator == '"' || separator == '\r' || separator == '\n')
        return NULL;

    r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->in = in;
    r->separator = separator;
    r->max_fields = options != NULL && options->max_fields > 0 ? options->max_fields
                                                               : VT_CSV_FIELDS_DEFAULT;
    r->max_record = options != NULL && options->max_record > 0 ? options->max_record
                                                               : VT_CSV_RECORD_DEFAULT;
    r->line = 1;

    r->field_starts = calloc(r->max_fields, sizeof *r->field_starts);
    r->field_lens = calloc(r->max_fields, sizeof *r->field_lens);
    if (r->field_starts == NULL || r->field_lens == NULL) {
        vt_csv_close(r);
        return NULL;
    }
    return r;
}


void vt_csv_close(struct vt_csv *reader)
{
    if (reader == NULL)
        return;
    free(reader->data);
    free(reader->field_starts);
    free(reader->field_lens);
    free(reader->header_data);
    free(reader->header_starts);
    free(reader);
}


/* Refill the input buffer; false at the end of input or on a read error. */
static bool fill_input(struct vt_csv *r)
{
    size_t n;

    if (r->input_end)
        return false;
    n = fread(r->input, 1, sizeof r->input, r->in);
    r->input_pos = 0;
    r->input_len = n;
    if (n == 0) {
        r->input_end = true;
        if (ferror(r->in)) {
            r->input_failed = true;
            r->input_errno = errno;
        }
        return false;
    }
    return true;
}


static int next_byte(struct vt_csv *r)
{
    if (r->input_pos == r->input_len && !fill_input(r))
        return EOF;
    return r->input[r->input_pos++];
}


static int peek_byte(struct vt_csv *r)
{
    if (r->input_pos == r->input_len && !fill_input(r))
        return EOF;
    return r->input[r->input_pos];
}


/* Skip "\xEF\xBB\xBF" at the very start of the input. The first fill reads up to the buffer
 * size, so all three bytes are in the buffer when the input has them. */
static void skip_bom(struct vt_csv *r)
{
    r->bom_checked = true;
    if (peek_byte(r) == EOF)
        return;
    if (r->input_len - r->input_pos >= 3 && r->input[r->input_pos] == 0xEF &&
        r->input[r->input_pos + 1] == 0xBB && r->input[r->input_pos + 2] == 0xBF)
        r->input_pos += 3;
}


/* Make room for `extra` more bytes of field data. The record buffer never exceeds
 * max_record bytes of content plus one NUL per field. */
static bool reserve_data(struct vt_csv *r, size_t extra)
{
    size_t limit = r->max_record + r->max_fields + 1;
    size_t need = r->data_len + extra;
    size_t cap;
    char *p;

    if (need <= r->data_cap)
        return true;
    if (need > limit)
        return false;
    cap = r->data_cap > 0 ? r->data_cap : 1024;
    while (cap < need)
        cap *= 2;
    if (cap > limit)
        cap = limit;
    p = realloc(r->data, cap);
    if (p == NULL)
        return false;
    r->data = p;
    r->data_cap = cap;
    return true;
}


static void append_byte(struct vt_csv *r, int c)
{
    if (r->too_long || r->too_many_fields)
        return;
    if (!reserve_data(r, 2)) {
        r->too_long = true;
        return;
    }
    r->data[r->data_len++] = (char)c;
}


static void begin_field(struct vt_csv *r)
{
    if (r->too_long || r->too_many_fields)
        return;
    if (r->n_fields == r->max_fields) {
        r->too_many_fields = true;
        return;
    }
    r->field_starts[r->n_fields] = r->data_len;
}


static void end_field(struct vt_csv *r)
{
    if (r->too_long || r->too_many_fields)
        return;
    if (!reserve_data(r, 1)) {
        r->too_long = true;
        return;
    }
    r->field_lens[r->n_fields] = r->data_len - r->field_starts[r->n_fields];
    r->data[r->data_len++] = '\0';
    r->n_fields++;
}


/* Consume the line end whose first byte c (CR or LF) was just read. */
static void consume_line_end(struct vt_csv *r, int c)
{
    if (c == '\r' && peek_byte(r) == '\n')
        next_byte(r);
    r->line++;
}


/* Skip empty lines before a record. Returns the first byte of the record, or EOF. */
static int skip_empty_lines(struct vt_csv *r)
{
    for (;;) {
        int c = next_byte(r);

        if (c != '\r' && c != '\n')
            return c;
        consume_line_end(r, c);
    }
}


static enum vt_csv_status reject_record(struct vt_csv *r)
{
    if (r->too_long)
        snprintf(r->error, sizeof r->error,
                 "line %llu: record longer than %zu bytes, skipped",
                 (unsigned long long)r->record_line, r->max_record);
    else
        snprintf(r->error, sizeof r->error, "line %llu: more than %zu fields, skipped",
                 (unsigned long long)r->record_line, r->max_fields);
    r->n_fields = 0;
    return VT_CSV_BAD_RECORD;
}


static enum vt_csv_status read_failed(struct vt_csv *r)
{
    snprintf(r->error, sizeof r->error, "line %llu: read failed: %s",
             (unsigned long long)r->line, strerror(r->input_errno));
    r->n_fields = 0;
    return VT_CSV_IO_ERROR;
}


enum vt_csv_status vt_csv_next(struct vt_csv *reader)
{
    struct vt_csv *r = reader;
    enum parse_state state = STATE_FIELD_START;
    size_t raw_bytes = 0;
    int c;

    if (r->input_failed)
        return read_failed(r);
    if (!r->bom_checked)
        skip_bom(r);

    r->error[0] = '\0';
    r->data_len = 0;
    r->n_fields = 0;
    r->too_long = false;
    r->too_many_fields = false;

    c = skip_empty_lines(r);
    r->record_line = r->line;
    if (c == EOF)
        return r->input_failed ? read_failed(r) : VT_CSV_END;

    begin_field(r);
    for (;; c = next_byte(r)) {
        if (c == EOF) {
            if (r->input_failed)
                return read_failed(r);
            if (state == STATE_QUOTED) {
                snprintf(r->error, sizeof r->error,
                         "line %llu: quoted field not closed before the end of input, "
                         "record skipped",
                         (unsigned long long)r->record_line);
                r->n_fields = 0;
                return VT_CSV_BAD_RECORD;
            }
            end_field(r);
            break;
        }

        bool line_end = (c == '\n' || c == '\r') && state != STATE_QUOTED;
        if (line_end) {
            end_field(r);
            consume_line_end(r, c);
            break;
        }

        raw_bytes++;
        if (raw_bytes > r->max_record)
            r->too_long = true;

        switch (state) {
        case STATE_FIELD_START:
            if (c == '"') {
                state = STATE_QUOTED;
            } else if (c == r->separator) {
                end_field(r);
                begin_field(r);
            } else {
                append_byte(r, c);
                state = STATE_UNQUOTED;
            }
            break;
        case STATE_UNQUOTED:
            if (c == r->separator) {
                end_field(r);
                begin_field(r);
                state = STATE_FIELD_START;
            } else {
                append_byte(r, c);
            }
            break;
        case STATE_QUOTED:
            if (c == '"') {
                state = STATE_QUOTE_SEEN;
            } else {
                if (c == '\n')
                    r->line++;
                append_byte(r, c);
            }
            break;
        case STATE_QUOTE_SEEN:
            if (c == '"') {
                append_byte(r, c);
                state = STATE_QUOTED;
            } else if (c == r->separator) {
                end_field(r);
                begin_field(r);
                state = STATE_FIELD_START;
            } else {
                /* Text after a closing quote: keep it, as most readers do. */
                append_byte(r, c);
                state = STATE_UNQUOTED;
            }
            break;
        }
    }

    if (r->too_long || r->too_many_fields)
        return reject_record(r);
    return VT_CSV_RECORD;
}


size_t vt_csv_field_count(const struct vt_csv *reader)
{
    return reader->n_fields;
}


const char *vt_csv_field(const struct vt_csv *reader, size_t index, size_t *len)
{
    if (index >= reader->n_fields)
        return NULL;
    if (len != NULL)
        *len = reader->field_lens[index];
    return reader->data + reader->field_starts[index];
}


uint64_t vt_csv_line(const struct vt_csv *reader)
{
    return reader->record_line;
}


const char *vt_csv_error(const struct vt_csv *reader)
{
    return reader->error;
}


enum vt_csv_status vt_csv_read_header(struct vt_csv *reader)
{
    enum vt_csv_status status = vt_csv_next(reader);

    if (status != VT_CSV_RECORD)
        return status;

    free(reader->header_data);
    free(reader->header_starts);
    reader->n_header = 0;
    reader->header_data = malloc(reader->data_len > 0 ? reader->data_len : 1);
    reader->header_starts = calloc(reader->n_fields, sizeof *reader->header_starts);
    if (reader->header_data == NULL || reader->header_starts == NULL) {
        snprintf(reader->error, sizeof reader->error, "line %llu: out of memory for the header",
                 (unsigned long long)reader->record_line);
        return VT_CSV_IO_ERROR;
    }
    memcpy(reader->header_data, reader->data, reader->data_len);
    memcpy(reader->header_starts, reader->field_starts,
           reader->n_fields * sizeof *reader->header_starts);
    reader->n_header = reader->n_fields;
    return VT_CSV_RECORD;
}


/* Compare a and b ignoring ASCII case and leading and trailing spaces or tabs. */
static bool names_equal(const char *a, const char *b)
{
    size_t alen, blen;

    while (*a == ' ' || *a == '\t')
        a++;
    while (*b == ' ' || *b == '\t')
        b++;
    alen = strlen(a);
    blen = strlen(b);
    while (alen > 0 && (a[alen - 1] == ' ' || a[alen - 1] == '\t'))
        alen--;
    while (blen > 0 && (b[blen - 1] == ' ' || b[blen - 1] == '\t'))
        blen--;
    return alen == blen && vt_strncaseeq(a, b, alen);
}


int vt_csv_column(const struct vt_csv *reader, const char *name)
{
    for (size_t i = 0; i < reader->n_header; i++) {
        if (names_equal(reader->header_data + reader->header_starts[i], name))
            return (int)i;
    }
    return -1;
}


size_t vt_csv_header_count(const struct vt_csv *reader)
{
    return reader->n_header;
}
