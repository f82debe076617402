/*
 * vitrine tools: a streaming CSV reader.
 *
 * Reads RFC 4180 text one record at a time from a FILE: a configurable separator (',' ';'
 * '|'), fields in double quotes that may contain the separator, line breaks and doubled
 * quotes (""), CRLF or LF line ends, and a last line without a line end. A UTF-8 byte order
 * mark at the start of the stream is skipped, and empty lines are skipped.
 *
 * Every record is bounded: one with more than max_fields fields or more than max_record
 * bytes is consumed up to its end and reported as VT_CSV_BAD_RECORD with its line number,
 * and the next call continues with the following record. Lenient cases: a quote inside an
 * unquoted field and text after a closing quote are kept as literal characters.
 *
 * The reader owns one buffer for the current record; field pointers stay valid until the
 * next call of vt_csv_next or vt_csv_close. Not thread-safe: one reader per thread.
 */
#ifndef VITRINE_TOOLS_CSV_H
#define VITRINE_TOOLS_CSV_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define VT_CSV_FIELDS_DEFAULT 256
#define VT_CSV_RECORD_DEFAULT (1024 * 1024)
#define VT_CSV_ERROR_MAX 256

struct vt_csv_options {
    char separator;    /* ',' when 0 */
    size_t max_fields; /* VT_CSV_FIELDS_DEFAULT when 0 */
    size_t max_record; /* bytes of one record as stored in the file, line end excluded;
                          VT_CSV_RECORD_DEFAULT when 0 */
};

enum vt_csv_status {
    VT_CSV_RECORD = 0,     /* a record was read */
    VT_CSV_END = 1,        /* end of input */
    VT_CSV_BAD_RECORD = 2, /* a record was rejected and skipped; see vt_csv_error */
    VT_CSV_IO_ERROR = 3,   /* reading failed; the reader cannot continue */
};

struct vt_csv;

/* Create a reader on an open stream, which the caller keeps owning and closes. Returns NULL
 * when out of memory or when the options are invalid (a separator that is a quote, CR or
 * LF). */
struct vt_csv *vt_csv_open(FILE *in, const struct vt_csv_options *options);

void vt_csv_close(struct vt_csv *reader);

/* Read the next record. */
enum vt_csv_status vt_csv_next(struct vt_csv *reader);

/* Fields of the current record. vt_csv_field returns NULL when index >= the field count;
 * a field is NUL-terminated, and *len (when len is not NULL) receives its length. */
size_t vt_csv_field_count(const struct vt_csv *reader);
const char *vt_csv_field(const struct vt_csv *reader, size_t index, size_t *len);

/* 1-based line number where the current (or the rejected) record starts. */
uint64_t vt_csv_line(const struct vt_csv *reader);

/* Message of the last VT_CSV_BAD_RECORD or VT_CSV_IO_ERROR, "" otherwise. */
const char *vt_csv_error(const struct vt_csv *reader);

/* Read the first record as the header and keep a copy of its names. Returns VT_CSV_RECORD,
 * or the status that prevented it (VT_CSV_END for an empty input). */
enum vt_csv_status vt_csv_read_header(struct vt_csv *reader);

/* Index of the header column with this name (ASCII case-insensitive, surrounding spaces
 * ignored), or -1 when there is no such column or no header was read. */
int vt_csv_column(const struct vt_csv *reader, const char *name);

/* Number of header columns, 0 before vt_csv_read_header. */
size_t vt_csv_header_count(const struct vt_csv *reader);

#endif
