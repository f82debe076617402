/*
 * The bounded JSON writer: structure, escaping, invalid UTF-8 and overflow.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vitrine/jsonw.h"

Test(jsonw, writes_nested_structures_with_commas)
{
    char buf[256];
    struct vt_jsonw w;

    vt_jsonw_init(&w, buf, sizeof buf);
    vt_jsonw_object_begin(&w);
    vt_jsonw_key(&w, "a");
    vt_jsonw_int(&w, 1);
    vt_jsonw_key(&w, "b");
    vt_jsonw_array_begin(&w);
    vt_jsonw_string(&w, "x");
    vt_jsonw_bool(&w, true);
    vt_jsonw_null(&w);
    vt_jsonw_object_begin(&w);
    vt_jsonw_object_end(&w);
    vt_jsonw_array_end(&w);
    vt_jsonw_key(&w, "c");
    vt_jsonw_double(&w, 0.5);
    vt_jsonw_object_end(&w);
    cr_assert_gt(vt_jsonw_finish(&w), 0);
    cr_expect_str_eq(buf, "{\"a\":1,\"b\":[\"x\",true,null,{}],\"c\":0.5}");
}


Test(jsonw, escapes_quotes_controls_and_keeps_utf8)
{
    char buf[256];
    struct vt_jsonw w;

    vt_jsonw_init(&w, buf, sizeof buf);
    vt_jsonw_string(&w, "q\"b\\n\n\x01 Lanc\xc3\xb4me");
    cr_assert_gt(vt_jsonw_finish(&w), 0);
    cr_expect_str_eq(buf, "\"q\\\"b\\\\n\\u000a\\u0001 Lanc\xc3\xb4me\"");
}


Test(jsonw, replaces_invalid_utf8_so_output_stays_valid)
{
    char buf[256];
    struct vt_jsonw w;

    vt_jsonw_init(&w, buf, sizeof buf);
    vt_jsonw_string(&w, "a\xff" "b\xc3" "\xed\xa0\x80");
    cr_assert_gt(vt_jsonw_finish(&w), 0);
    cJSON *json = cJSON_Parse(buf);
    cr_assert_not_null(json, "not valid JSON: %s", buf);
    cJSON_Delete(json);
    cr_expect(strstr(buf, "\xef\xbf\xbd") != NULL);
}


Test(jsonw, non_finite_numbers_become_null)
{
    char buf[64];
    struct vt_jsonw w;

    vt_jsonw_init(&w, buf, sizeof buf);
    vt_jsonw_array_begin(&w);
    vt_jsonw_double(&w, NAN);
    vt_jsonw_double(&w, INFINITY);
    vt_jsonw_array_end(&w);
    cr_assert_gt(vt_jsonw_finish(&w), 0);
    cr_expect_str_eq(buf, "[null,null]");
}


Test(jsonw, overflow_is_reported_not_truncated)
{
    char buf[8];
    struct vt_jsonw w;

    vt_jsonw_init(&w, buf, sizeof buf);
    vt_jsonw_string(&w, "far too long for eight bytes");
    cr_expect_eq(vt_jsonw_finish(&w), -1);
    cr_expect(w.overflow);
}


/* The text vt_jsonw_double writes for v, alone. */
static void write_double(double v, char *out, size_t size)
{
    struct vt_jsonw w;

    vt_jsonw_init(&w, out, size);
    vt_jsonw_double(&w, v);
    cr_assert_gt(vt_jsonw_finish(&w), 0);
}


Test(jsonw, doubles_read_as_printf_writes_them)
{
    static const double samples[] = {0.5,  3,       1234.5,     0.001,      0.00123456789,
                                     0.1,  0.09999, 999999999,  123456789.4, 1e-4,
                                     1e9,  1e300,   -2.25,      -0.0071,    0.1 + 0.2,
                                     0,    -0.0,    99999999.95, 0.999999999, 0.0099999999996};
    char got[64], want[64];
    unsigned seed = 12345;
    size_t differing = 0, total = 0;

    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        write_double(samples[i], got, sizeof got);
        snprintf(want, sizeof want, "%.9g", samples[i]);
        cr_expect_str_eq(got, want, "for %.17g", samples[i]);
    }
    /* Random values over every decade of the fast range and beyond it. */
    for (int i = 0; i < 200000; i++) {
        seed = seed * 1103515245u + 12345u;
        double mantissa = (double)(seed >> 8) / (double)(1u << 24);
        seed = seed * 1103515245u + 12345u;
        int exponent = (int)(seed >> 16) % 16 - 5;
        double v = mantissa * pow(10, exponent) * ((seed & 1) ? -1 : 1);

        write_double(v, got, sizeof got);
        snprintf(want, sizeof want, "%.9g", v);
        total++;
        differing += strcmp(got, want) != 0;
    }
    cr_log_info("measured: %zu of %zu random doubles written unlike printf", differing, total);
    cr_expect_eq(differing, 0);
}


Test(jsonw, integers_keep_every_digit)
{
    static const int64_t samples[] = {0, 7, -7, 10, 1234567890123, INT64_MAX, INT64_MIN};
    char got[64], want[64];

    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        struct vt_jsonw w;

        vt_jsonw_init(&w, got, sizeof got);
        vt_jsonw_int(&w, samples[i]);
        cr_assert_gt(vt_jsonw_finish(&w), 0);
        snprintf(want, sizeof want, "%" PRId64, samples[i]);
        cr_expect_str_eq(got, want);
    }
}


Test(jsonw, prefixed_strings_are_one_escaped_value)
{
    char buf[64];
    struct vt_jsonw w;

    vt_jsonw_init(&w, buf, sizeof buf);
    vt_jsonw_array_begin(&w);
    vt_jsonw_string_prefixed(&w, "brand:", "Dior \"J'adore\"");
    vt_jsonw_string_prefixed(&w, "trending", "");
    vt_jsonw_array_end(&w);
    cr_assert_gt(vt_jsonw_finish(&w), 0);
    cr_expect_str_eq(buf, "[\"brand:Dior \\\"J'adore\\\"\",\"trending\"]");
}
