/*
 * Helpers: id validation, number parsing, timestamps, the bounded buffer, UUIDv7 ids and
 * reading whole files.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vitrine/util.h"

static bool id_ok(const char *s)
{
    return vt_id_valid(s, strlen(s));
}


Test(id, accepts_uuids_digits_and_punctuation)
{
    cr_expect(id_ok("3f9c2b7e-5a41-4d0e-9b8a-6c2d1e4f7a90"));
    cr_expect(id_ok("123456789"));
    cr_expect(id_ok("a.b_c:d@e-f"));
}


Test(id, rejects_empty_long_and_special_characters)
{
    char longid[200];

    memset(longid, 'x', sizeof longid);
    cr_expect(!id_ok(""));
    cr_expect(!vt_id_valid(longid, 129));
    cr_expect(vt_id_valid(longid, 128));
    cr_expect(!id_ok("a{b}"), "braces would break the Redis hash tag");
    cr_expect(!id_ok("a b"));
    cr_expect(!id_ok("a/b"));
    cr_expect(!id_ok("a*"));
    cr_expect(!id_ok("\xc3\xa4"));
    cr_expect(!vt_id_valid("a\0b", 3), "NUL byte inside the id");
}


Test(parse, int64_range_and_syntax)
{
    int64_t v;

    cr_expect_eq(vt_parse_int64("42", 0, 100, &v), 0);
    cr_expect_eq(v, 42);
    cr_expect_eq(vt_parse_int64("-1", 0, 100, &v), -1);
    cr_expect_eq(vt_parse_int64("101", 0, 100, &v), -1);
    cr_expect_eq(vt_parse_int64("9999999999999999999999", 0, INT64_MAX, &v), -1);
    cr_expect_eq(vt_parse_int64("0x10", 0, 100, &v), -1);
    cr_expect_eq(vt_parse_int64("+5", 0, 100, &v), -1);
}


Test(parse, double_rejects_nan_and_infinity)
{
    double v;

    cr_expect_eq(vt_parse_double("2.5", 0, 10, &v), 0);
    cr_expect_eq(vt_parse_double("nan", -1e9, 1e9, &v), -1);
    cr_expect_eq(vt_parse_double("inf", -1e9, 1e9, &v), -1);
    cr_expect_eq(vt_parse_double("1e400", -1e9, 1e9, &v), -1);
    cr_expect_eq(vt_parse_double("0x10", -1e9, 1e9, &v), -1, "no hexadecimal");
}


static int64_t parse_time(const char *s)
{
    int64_t ms = 0;
    cr_assert_eq(vt_time_parse_iso8601(s, strlen(s), &ms), 0, "cannot parse %s", s);
    return ms;
}


Test(time, parses_the_forms_mapp_and_rees46_use)
{
    cr_expect_eq(parse_time("1970-01-01T00:00:00Z"), 0);
    cr_expect_eq(parse_time("2022-10-01 00:00:03 UTC"), 1664582403000LL);
    cr_expect_eq(parse_time("2022-10-01T02:00:03+02:00"), 1664582403000LL);
    cr_expect_eq(parse_time("2022-10-01T02:00:03.250+0200"), 1664582403250LL);
    cr_expect_eq(parse_time("2022-09-30T23:00:03-01:00"), 1664582403000LL);
    cr_expect_eq(parse_time("2024-02-29T12:00:00.1Z"), 1709208000100LL);
    cr_expect_eq(parse_time("2022-10-01T00:00"), 1664582400000LL);
}


Test(time, rejects_malformed_timestamps)
{
    static const char *const bad[] = {"", "2022", "2022-13-01T00:00:00Z", "2022-02-30T00:00:00Z",
                                      "2023-02-29T00:00:00Z", "2022-10-01T24:00:00Z",
                                      "2022-10-01T00:00:00+25:00", "2022-10-01T00:00:00Zjunk",
                                      "2022-10-01", "yesterday"};

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms;
        cr_expect_eq(vt_time_parse_iso8601(bad[i], strlen(bad[i]), &ms), -1, "accepted %s",
                     bad[i]);
    }
}


Test(time, formats_round_trip)
{
    char buf[40];

    vt_time_format_iso8601(1664582403250LL, buf, sizeof buf);
    cr_expect_str_eq(buf, "2022-10-01T00:00:03.250Z");
    cr_expect_eq(parse_time(buf), 1664582403250LL);
}


Test(buf, stops_at_its_maximum)
{
    struct vt_buf b;

    vt_buf_init(&b, 8);
    cr_expect_eq(vt_buf_appends(&b, "12345678"), 0);
    cr_expect_eq(vt_buf_appends(&b, "9"), -1);
    cr_expect(b.overflow);
    cr_expect_eq(b.len, 8);
    vt_buf_free(&b);
}


Test(copy, utf8_is_cut_at_a_character_boundary)
{
    char out[5];

    /* "aäö": a, then two 2-byte characters; 4 bytes fit, the second character does not. */
    vt_copy_utf8(out, sizeof out, "a\xc3\xa4\xc3\xb6", 5);
    cr_expect_str_eq(out, "a\xc3\xa4");
}


Test(uuid, version_7_is_time_ordered_and_unique)
{
    char a[37], b[37];

    vt_uuid7(a, sizeof a);
    vt_uuid7(b, sizeof b);
    cr_expect_eq(strlen(a), 36);
    cr_expect_eq(a[14], '7');
    cr_expect(strchr("89ab", a[19]) != NULL);
    cr_expect_str_neq(a, b);
    cr_expect_leq(memcmp(a, b, 13), 0, "later ids sort after earlier ones");
}


Test(utf8, valid_and_invalid_sequences)
{
    cr_expect(vt_utf8_valid("Lanc\xc3\xb4me", 8));
    cr_expect(vt_utf8_valid("\xf0\x9f\x92\x84", 4), "a four-byte emoji");
    cr_expect(!vt_utf8_valid("\xff", 1));
    cr_expect(!vt_utf8_valid("\xc3", 1), "a truncated sequence");
    cr_expect(!vt_utf8_valid("\xc0\xaf", 2), "an overlong form");
    cr_expect(!vt_utf8_valid("\xed\xa0\x80", 3), "a UTF-16 surrogate");
    cr_expect(vt_utf8_valid("", 0));
}


Test(json_nul, finds_bytes_and_escapes_only)
{
    static const char byte[] = "{\"by\":\"a\0b\"}";
    bool escaped = true;

    cr_assert_eq(vt_json_nul_at(byte, sizeof byte - 1, &escaped), 8);
    cr_assert(!escaped);
    cr_assert_eq(vt_json_nul_at("{\"by\":\"a\\u0000b\"}", 17, &escaped), 8);
    cr_assert(escaped);
    /* An escaped backslash followed by "u0000" is ordinary text. */
    cr_assert_eq(vt_json_nul_at("{\"by\":\"a\\\\u0000b\"}", 18, &escaped), 18);
    /* Outside strings the escape means nothing. */
    cr_assert_eq(vt_json_nul_at("{\"by\":1}", 8, &escaped), 8);
}


Test(util, read_file_reads_a_file_whole)
{
    char dir[] = "/tmp/vitrine-read-XXXXXX", path[64], err[256];
    size_t len = 0;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/f.json", dir);
    FILE *f = fopen(path, "w");
    fputs("{\"a\":1}", f);
    fclose(f);

    char *text = vt_read_file(path, 16, "test file", &len, err, sizeof err);
    cr_assert_not_null(text, "%s", err);
    cr_expect_eq(len, 7);
    cr_expect_str_eq(text, "{\"a\":1}");
    free(text);
    cr_expect_null(vt_read_file(path, 6, "test file", &len, err, sizeof err));
    cr_expect(strstr(err, "the test file is larger than 6 bytes") != NULL, "%s", err);
    cr_expect_null(vt_read_file(dir, 16, "test file", &len, err, sizeof err));
    cr_expect(strstr(err, "cannot read the test file: Is a directory") != NULL, "%s", err);
    unlink(path);
    rmdir(dir);
}


Test(util, read_file_refuses_a_fifo_without_waiting)
{
    char dir[] = "/tmp/vitrine-fifo-XXXXXX", path[64], err[256];
    size_t len = 0;

    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/segments.json", dir);
    cr_assert_eq(mkfifo(path, 0600), 0);
    cr_expect_null(vt_read_file(path, 16, "segments file", &len, err, sizeof err));
    cr_expect(strstr(err, "segments.json: the segments file is not a regular file") != NULL,
              "%s", err);
    unlink(path);
    rmdir(dir);
}
