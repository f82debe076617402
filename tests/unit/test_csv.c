/*
 * Unit tests of the streaming CSV reader (tools/csv.c) on inline text read through
 * fmemopen.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "csv.h"

struct csv_fixture {
    FILE *in;
    struct vt_csv *reader;
};


static void fixture_open(struct csv_fixture *f, const char *text, char separator,
                         size_t max_fields, size_t max_record)
{
    struct vt_csv_options options = {
        .separator = separator,
        .max_fields = max_fields,
        .max_record = max_record,
    };

    /* fmemopen with size 0 fails, so an empty text gets a stream on one byte read as EOF. */
    f->in = strlen(text) > 0 ? fmemopen((void *)text, strlen(text), "r")
                             : fopen("/dev/null", "r");
    cr_assert_not_null(f->in);
    f->reader = vt_csv_open(f->in, &options);
    cr_assert_not_null(f->reader);
}


static void fixture_close(struct csv_fixture *f)
{
    vt_csv_close(f->reader);
    fclose(f->in);
}


static void expect_record(struct csv_fixture *f, size_t n, const char *const *fields)
{
    cr_assert_eq(vt_csv_next(f->reader), VT_CSV_RECORD, "error: %s",
                 vt_csv_error(f->reader));
    cr_assert_eq(vt_csv_field_count(f->reader), n, "expected %zu fields, got %zu", n,
                 vt_csv_field_count(f->reader));
    for (size_t i = 0; i < n; i++) {
        size_t len = 0;
        const char *value = vt_csv_field(f->reader, i, &len);
        cr_assert_not_null(value);
        cr_assert_str_eq(value, fields[i], "field %zu", i);
        cr_assert_eq(len, strlen(fields[i]), "length of field %zu", i);
    }
}


Test(csv, plain_records)
{
    struct csv_fixture f;

    fixture_open(&f, "a,b,c\n1,2,3\n", 0, 0, 0);
    expect_record(&f, 3, (const char *const[]){"a", "b", "c"});
    cr_assert_eq(vt_csv_line(f.reader), 1);
    expect_record(&f, 3, (const char *const[]){"1", "2", "3"});
    cr_assert_eq(vt_csv_line(f.reader), 2);
    cr_assert_eq(vt_csv_next(f.reader), VT_CSV_END);
    cr_assert_eq(vt_csv_next(f.reader), VT_CSV_END);
    fixture_close(&f);
}


Test(csv, last_line_without_newline)
{
    struct csv_fixture f;

    fixture_open(&f, "a,b\nx,y", 0, 0, 0);
    expect_record(&f, 2, (const char *const[]){"a", "b"});
    expect_record(&f, 2, (const char *const[]){"x", "y"});
    cr_assert_eq(vt_csv_next(f.reader), VT_CSV_END);
    fixture_close(&f);
}


Test(csv, crlf_line_ends)
{
    struct csv_fixture f;

    fixture_open(&f, "a,b\r\n1,2\r\n3,4", 0, 0, 0);
    expect_record(&f, 2, (const char *const[]){"a", "b"});
    expect_record(&f, 2, (const char *const[]){"1", "2"});
    expect_record(&f, 2, (const char *const[]){"3", "4"});
    cr_assert_eq(vt_csv_line(f.reader), 3);
    cr_assert_eq(vt_csv_next(f.reader), VT_CSV_END);
    fixture_close(&f);
}


Test(csv, empty_fields)
{
    struct csv_fixture f;

    fixture_open(&f, ",a,,\n\"\",x\n", 0, 0, 0);
    expect_record(&f, 4, (const char *const[]){"", "a", "", ""});
    expect_record(&f, 2, (const char *const[]){"", "x"});
    fixture_close(&f);
}


Test(csv, quoted_separator_and_quotes)
{
    struct csv_fixture f;

    fixture_open(&f, "\"a,b\",\"say \"\"hi\"\"\",\"\"\"\"\n", 0, 0, 0);
    expect_record(&f, 3, (const char *const[]){"a,b", "say \"hi\"", "\""});
    fixture_close(&f);
}


Test(csv, quoted_newlines_count_lines)
{
    struct csv_fixture f;

    fixture_open(&f, "h1,h2\n\"two\nlines\",x\r\n\"crlf\r\ninside\",y\nlast,z\n", 0, 0, 0);
    expect_record(&f, 2, (const char *const[]){"h1", "h2"});
    expect_record(&f, 2, (const char *const[]){"two\nlines", "x"});
    cr_assert_eq(vt_csv_line(f.reader), 2);
    expect_record(&f, 2, (const char *const[]){"crlf\r\ninside", "y"});
    cr_assert_eq(vt_csv_line(f.reader), 4);
    expect_record(&f, 2, (const char *const[]){"last", "z"});
    cr_assert_eq(vt_csv_line(f.reader), 6);
    fixture_close(&f);
}


Test(csv, utf8_bom_skipped)
{
    struct csv_fixture f;

    fixture_open(&f, "\xEF\xBB\xBF\"brand\",\"title\"\n\"Cr\xC3\xA8me Co\",\"x\"\n", 0, 0, 0);
    cr_assert_eq(vt_csv_read_header(f.reader), VT_CSV_RECORD);
    cr_assert_eq(vt_csv_column(f.reader, "brand"), 0);
    cr_assert_eq(vt_csv_column(f.reader, "title"), 1);
    expect_record(&f, 2, (const char *const[]){"Cr\xC3\xA8me Co", "x"});
    fixture_close(&f);
}


Test(csv, bom_only_at_start)
{
    struct csv_fixture f;

    fixture_open(&f, "a\n\xEF\xBB\xBF" "b\n", 0, 0, 0);
    expect_record(&f, 1, (const char *const[]){"a"});
    expect_record(&f, 1, (const char *const[]){"\xEF\xBB\xBF" "b"});
    fixture_close(&f);
}


Test(csv, partial_bom_kept)
{
    struct csv_fixture f;

    fixture_open(&f, "\xEF\xBBx\n", 0, 0, 0);
    expect_record(&f, 1, (const char *const[]){"\xEF\xBBx"});
    fixture_close(&f);
}


Test(csv, semicolon_separator)
{
    struct csv_fixture f;

    fixture_open(&f, "session_id;user_id;item_id\n1;NA;4242\n\"a;b\";c;d\n", ';', 0, 0);
    cr_assert_eq(vt_csv_read_header(f.reader), VT_CSV_RECORD);
    cr_assert_eq(vt_csv_column(f.reader, "item_id"), 2);
    expect_record(&f, 3, (const char *const[]){"1", "NA", "4242"});
    expect_record(&f, 3, (const char *const[]){"a;b", "c", "d"});
    fixture_close(&f);
}


Test(csv, pipe_separator_keeps_commas)
{
    struct csv_fixture f;

    fixture_open(&f, "pid|brand|name\n7|House & Co;b7|Blue Garden, EDT\n", '|', 0, 0);
    cr_assert_eq(vt_csv_read_header(f.reader), VT_CSV_RECORD);
    expect_record(&f, 3, (const char *const[]){"7", "House & Co;b7", "Blue Garden, EDT"});
    fixture_close(&f);
}


Test(csv, empty_lines_skipped)
{
    struct csv_fixture f;

    fixture_open(&f, "\n\na\r\n\r\n\nb\n\n", 0, 0, 0);
    expect_record(&f, 1, (const char *const[]){"a"});
    cr_assert_eq(vt_csv_line(f.reader), 3);
    expect_record(&f, 1, (const char *const[]){"b"});
    cr_assert_eq(vt_csv_line(f.reader), 6);
    cr_assert_eq(vt_csv_next(f.reader), VT_CSV_END);
    fixture_close(&f);
}


Test(csv, empty_input)
{
    struct csv_fixture f;

    fixture_open(&f, "", 0, 0, 0);
    cr_assert_eq(vt_csv_read_header(f.reader), VT_CSV_END);
    cr_assert_eq(vt_csv_column(f.reader, "a"), -1);
    cr_assert_eq(vt_csv_header_count(f.reader), 0);
    fixture_close(&f);
}


Test(csv, long_record_skipped)
{
    struct csv_fixture f;

    fixture_open(&f, "ok,1\n0123456789,0123456789\n\"quoted,\nlong field here\",x\nok,2\n", 0,
                 0, 12);
    expect_record(&f, 2, (const char *const[]){"ok", "1"});
    cr_assert_eq(vt_csv_next(f.reader), VT_CSV_BAD_RECORD);
    cr_assert_eq(vt_csv_line(f.reader), 2);
    cr_assert_not_null(strstr(vt_csv_error(f.reader), "line 2"), "%s",
                       vt_csv_error(f.reader));
    cr_assert_not_null(strstr(vt_csv_error(f.reader), "12 bytes"), "%s",
                       vt_csv_error(f.reader));
    cr_assert_eq(vt_csv_field_count(f.reader), 0);
    cr_assert_eq(vt_csv_next(f.reader), VT_CSV_BAD_RECORD);
    cr_assert_eq(vt_csv_line(f.reader), 3);
    expect_record(&f, 2, (const char *const[]){"ok", "2"});
    cr_assert_eq(vt_csv_line(f.reader), 5);
    cr_assert_eq(vt_csv_next(f.reader), VT_CSV_END);
    fixture_close(&f);
}


Test(csv, record_at_exact_limit_accepted)
{
    struct csv_fixture f;

    fixture_open(&f, "abcd,efgh\n", 0, 0, 9);
    expect_record(&f, 2, (const char *const[]){"abcd", "efgh"});
    fixture_close(&f);
}


Test(csv, too_many_fields_skipped)
{
    struct csv_fixture f;

    fixture_open(&f, "a,b,c\na,b,c,d\nx,y\n", 0, 3, 0);
    expect_record(&f, 3, (const char *const[]){"a", "b", "c"});
    cr_assert_eq(vt_csv_next(f.reader), VT_CSV_BAD_RECORD);
    cr_assert_not_null(strstr(vt_csv_error(f.reader), "more than 3 fields"), "%s",
                       vt_csv_error(f.reader));
    cr_assert_eq(vt_csv_line(f.reader), 2);
    expect_record(&f, 2, (const char *const[]){"x", "y"});
    fixture_close(&f);
}


Test(csv, unterminated_quote_reported)
{
    struct csv_fixture f;

    fixture_open(&f, "a,b\n\"open,x\nmore\n", 0, 0, 0);
    expect_record(&f, 2, (const char *const[]){"a", "b"});
    cr_assert_eq(vt_csv_next(f.reader), VT_CSV_BAD_RECORD);
    cr_assert_eq(vt_csv_line(f.reader), 2);
    cr_assert_not_null(strstr(vt_csv_error(f.reader), "not closed"), "%s",
                       vt_csv_error(f.reader));
    cr_assert_eq(vt_csv_next(f.reader), VT_CSV_END);
    fixture_close(&f);
}


Test(csv, stray_quotes_kept_literally)
{
    struct csv_fixture f;

    fixture_open(&f, "ab\"c,\"d\"e,f\n", 0, 0, 0);
    expect_record(&f, 3, (const char *const[]){"ab\"c", "de", "f"});
    fixture_close(&f);
}


Test(csv, header_lookup)
{
    struct csv_fixture f;

    fixture_open(&f, "event_time, Event_Type ,product_id\n", 0, 0, 0);
    cr_assert_eq(vt_csv_read_header(f.reader), VT_CSV_RECORD);
    cr_assert_eq(vt_csv_header_count(f.reader), 3);
    cr_assert_eq(vt_csv_column(f.reader, "event_time"), 0);
    cr_assert_eq(vt_csv_column(f.reader, "event_type"), 1);
    cr_assert_eq(vt_csv_column(f.reader, "PRODUCT_ID"), 2);
    cr_assert_eq(vt_csv_column(f.reader, "price"), -1);
    cr_assert_eq(vt_csv_column(f.reader, "product"), -1);
    fixture_close(&f);
}


Test(csv, field_out_of_range)
{
    struct csv_fixture f;

    fixture_open(&f, "a,b\n", 0, 0, 0);
    expect_record(&f, 2, (const char *const[]){"a", "b"});
    cr_assert_null(vt_csv_field(f.reader, 2, NULL));
    fixture_close(&f);
}


Test(csv, long_input_crosses_buffer)
{
    /* More than the 64 KiB input buffer, so refills happen inside quoted fields. */
    static char text[200000];
    struct csv_fixture f;
    size_t n = 0;
    size_t rows = 0;

    while (n + 40 < sizeof text - 1) {
        int k = snprintf(text + n, sizeof text - n, "%zu,\"q,\"\"x\"\"\ny\"\r\n", rows);
        n += (size_t)k;
        rows++;
    }
    text[n] = '\0';

    fixture_open(&f, text, 0, 0, 0);
    for (size_t i = 0; i < rows; i++) {
        cr_assert_eq(vt_csv_next(f.reader), VT_CSV_RECORD, "row %zu: %s", i,
                     vt_csv_error(f.reader));
        cr_assert_eq(vt_csv_field_count(f.reader), 2);
        cr_assert_str_eq(vt_csv_field(f.reader, 1, NULL), "q,\"x\"\ny");
        cr_assert_eq(vt_csv_line(f.reader), 1 + 2 * i);
    }
    cr_assert_eq(vt_csv_next(f.reader), VT_CSV_END);
    fixture_close(&f);
}


Test(csv, invalid_separator_rejected)
{
    struct vt_csv_options options = {.separator = '"'};
    FILE *in = fopen("/dev/null", "r");

    cr_assert_not_null(in);
    cr_assert_null(vt_csv_open(in, &options));
    options.separator = '\n';
    cr_assert_null(vt_csv_open(in, &options));
    fclose(in);
}
