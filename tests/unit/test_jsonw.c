/*
 * The bounded JSON writer: structure, escaping, invalid UTF-8 and overflow.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <math.h>
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
