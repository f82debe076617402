/*
 * Unit tests of the visitor key (blocked ids, order of id fields, visitors off) and of
 * the consent value parser.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "vitrine/config.h"
#include "vitrine/event.h"
#include "vitrine/util.h"
#include "vitrine/visitor.h"

static struct vt_config cfg;
static struct vt_event ev;
static char id[VT_ID_MAX + 1];


static void setup_defaults(void)
{
    vt_config_defaults(&cfg);
    vt_event_clear(&ev);
}


static void set_setting(const char *name, const char *value)
{
    char err[512];

    cr_assert_eq(vt_config_set(&cfg, name, value, err, sizeof err), 0, "%s", err);
}


TestSuite(visitor, .init = setup_defaults);


Test(visitor, empty_and_blank_ids_blocked)
{
    cr_expect(vt_visitor_id_blocked(&cfg, ""));
    cr_expect(vt_visitor_id_blocked(&cfg, " "));
    cr_expect(vt_visitor_id_blocked(&cfg, "   \t "));
    cr_expect(vt_visitor_id_blocked(&cfg, "\r\n"));
}


Test(visitor, zero_forms_blocked)
{
    cr_expect(vt_visitor_id_blocked(&cfg, "0"));
    cr_expect(vt_visitor_id_blocked(&cfg, "000"));
    cr_expect(vt_visitor_id_blocked(&cfg, "00000000-0000-0000-0000-000000000000"));
    cr_expect(vt_visitor_id_blocked(&cfg, "00:00:00"));
    cr_expect(vt_visitor_id_blocked(&cfg, "0.0_0 0"));
    cr_expect(vt_visitor_id_blocked(&cfg, " 000 "), "trimmed before the check");
    cr_expect(vt_visitor_id_blocked(&cfg, "---"), "separators alone identify nobody");
}


Test(visitor, zero_forms_blocked_with_empty_list)
{
    set_setting("visitor.blocked", "");
    cr_assert_eq(cfg.n_visitor_blocked, 0);
    cr_expect(vt_visitor_id_blocked(&cfg, ""));
    cr_expect(vt_visitor_id_blocked(&cfg, "0"));
    cr_expect(vt_visitor_id_blocked(&cfg, "00000000-0000-0000-0000-000000000000"));
    cr_expect_not(vt_visitor_id_blocked(&cfg, "-1"), "-1 is blocked by the default list only");
    cr_expect_not(vt_visitor_id_blocked(&cfg, "null"));
}


Test(visitor, default_list_blocked_in_any_case)
{
    static const char *const ids[] = {"-1",   "null",  "NULL",      "Null",    "undefined",
                                      "None", "nil",   "anonymous", "UNKNOWN", "guest",
                                      "n/a",  "N/A",   " null ",    "\tGuest"};

    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        cr_expect(vt_visitor_id_blocked(&cfg, ids[i]), "\"%s\" should be blocked", ids[i]);
}


Test(visitor, real_ids_not_blocked)
{
    static const char *const ids[] = {"u-42", "10", "0001", "00000000-0000-0000-0000-000000000001",
                                      "nullable", "guest1", "a0", "-2"};

    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        cr_expect_not(vt_visitor_id_blocked(&cfg, ids[i]), "\"%s\" should link", ids[i]);
}


Test(visitor, configured_values_blocked)
{
    set_setting("visitor.blocked", " test-user , Demo,,");
    cr_assert_eq(cfg.n_visitor_blocked, 2, "empty entries are left out");
    cr_expect_str_eq(cfg.visitor_blocked_values[0], "test-user");
    cr_expect_str_eq(cfg.visitor_blocked_values[1], "Demo");
    cr_expect(vt_visitor_id_blocked(&cfg, "test-user"));
    cr_expect(vt_visitor_id_blocked(&cfg, "TEST-USER"));
    cr_expect(vt_visitor_id_blocked(&cfg, "demo"));
    cr_expect_not(vt_visitor_id_blocked(&cfg, "null"), "the list replaces the default list");
    cr_expect_not(vt_visitor_id_blocked(&cfg, "demo2"));
}


Test(visitor, customer_id_preferred)
{
    enum vt_visitor_field field;

    vt_strlcpy(ev.customer_id, "c-7", sizeof ev.customer_id);
    vt_strlcpy(ev.user_id, "u-42", sizeof ev.user_id);
    cr_assert_eq(vt_visitor_pick(&cfg, &ev, id, &field), VT_VISITOR_PICKED);
    cr_expect_str_eq(id, "c-7");
    cr_expect_eq(field, VT_VISITOR_FIELD_CUSTOMER_ID);
}


Test(visitor, falls_back_to_user_id_when_customer_id_blocked)
{
    enum vt_visitor_field field;

    vt_strlcpy(ev.customer_id, "00000000-0000-0000-0000-000000000000", sizeof ev.customer_id);
    vt_strlcpy(ev.user_id, "u-42", sizeof ev.user_id);
    cr_assert_eq(vt_visitor_pick(&cfg, &ev, id, &field), VT_VISITOR_PICKED);
    cr_expect_str_eq(id, "u-42");
    cr_expect_eq(field, VT_VISITOR_FIELD_USER_ID);
}


Test(visitor, falls_back_to_user_id_when_customer_id_absent)
{
    enum vt_visitor_field field;

    vt_strlcpy(ev.user_id, "u-42", sizeof ev.user_id);
    cr_assert_eq(vt_visitor_pick(&cfg, &ev, id, &field), VT_VISITOR_PICKED);
    cr_expect_str_eq(id, "u-42");
    cr_expect_eq(field, VT_VISITOR_FIELD_USER_ID);
}


Test(visitor, configured_order_wins)
{
    enum vt_visitor_field field;

    set_setting("visitor.id_fields", "user_id, customer_id");
    vt_strlcpy(ev.customer_id, "c-7", sizeof ev.customer_id);
    vt_strlcpy(ev.user_id, "u-42", sizeof ev.user_id);
    cr_assert_eq(vt_visitor_pick(&cfg, &ev, id, &field), VT_VISITOR_PICKED);
    cr_expect_str_eq(id, "u-42");
    cr_expect_eq(field, VT_VISITOR_FIELD_USER_ID);
}


Test(visitor, unlisted_field_ignored)
{
    set_setting("visitor.id_fields", "customer_id");
    vt_strlcpy(ev.user_id, "u-42", sizeof ev.user_id);
    cr_expect_eq(vt_visitor_pick(&cfg, &ev, id, NULL), VT_VISITOR_NONE);
    cr_expect_str_eq(id, "");
}


Test(visitor, all_present_values_blocked)
{
    enum vt_visitor_field field;

    vt_strlcpy(ev.customer_id, "null", sizeof ev.customer_id);
    vt_strlcpy(ev.user_id, "0", sizeof ev.user_id);
    cr_expect_eq(vt_visitor_pick(&cfg, &ev, id, &field), VT_VISITOR_BLOCKED);
    cr_expect_str_eq(id, "");
    cr_expect_eq(field, VT_VISITOR_FIELD_COUNT);
}


Test(visitor, one_blocked_value_and_one_absent)
{
    vt_strlcpy(ev.user_id, "anonymous", sizeof ev.user_id);
    cr_expect_eq(vt_visitor_pick(&cfg, &ev, id, NULL), VT_VISITOR_BLOCKED);
    cr_expect_str_eq(id, "");
}


Test(visitor, no_ids_gives_none)
{
    enum vt_visitor_field field;

    cr_expect_eq(vt_visitor_pick(&cfg, &ev, id, &field), VT_VISITOR_NONE);
    cr_expect_str_eq(id, "");
    cr_expect_eq(field, VT_VISITOR_FIELD_COUNT);
}


Test(visitor, visitors_off)
{
    set_setting("visitor.id_fields", "");
    cr_assert_eq(cfg.n_visitor_fields, 0);
    vt_strlcpy(ev.customer_id, "c-7", sizeof ev.customer_id);
    vt_strlcpy(ev.user_id, "u-42", sizeof ev.user_id);
    cr_expect_eq(vt_visitor_pick(&cfg, &ev, id, NULL), VT_VISITOR_NONE);
    cr_expect_str_eq(id, "");
}


Test(visitor, id_at_maximum_length_copied)
{
    memset(ev.customer_id, 'c', VT_ID_MAX);
    ev.customer_id[VT_ID_MAX] = '\0';
    cr_assert_eq(vt_visitor_pick(&cfg, &ev, id, NULL), VT_VISITOR_PICKED);
    cr_expect_eq(strlen(id), VT_ID_MAX);
}


Test(consent, parse_table)
{
    static const struct {
        const char *text;
        enum vt_consent expected;
    } cases[] = {
        {"1", VT_CONSENT_GRANTED},         {"true", VT_CONSENT_GRANTED},
        {"TRUE", VT_CONSENT_GRANTED},      {"yes", VT_CONSENT_GRANTED},
        {"Y", VT_CONSENT_GRANTED},         {"granted", VT_CONSENT_GRANTED},
        {"opt-in", VT_CONSENT_GRANTED},    {"OptIn", VT_CONSENT_GRANTED},
        {"accepted", VT_CONSENT_GRANTED},  {"  yes\t", VT_CONSENT_GRANTED},
        {"0", VT_CONSENT_DENIED},          {"false", VT_CONSENT_DENIED},
        {"False", VT_CONSENT_DENIED},      {"no", VT_CONSENT_DENIED},
        {"N", VT_CONSENT_DENIED},          {"denied", VT_CONSENT_DENIED},
        {"opt-out", VT_CONSENT_DENIED},    {"OPTOUT", VT_CONSENT_DENIED},
        {"rejected", VT_CONSENT_DENIED},   {" 0 ", VT_CONSENT_DENIED},
        {"", VT_CONSENT_UNKNOWN},          {"   ", VT_CONSENT_UNKNOWN},
        {"maybe", VT_CONSENT_UNKNOWN},     {"2", VT_CONSENT_UNKNOWN},
        {"1.0", VT_CONSENT_UNKNOWN},       {"yess", VT_CONSENT_UNKNOWN},
        {"opt in", VT_CONSENT_UNKNOWN},    {"grant", VT_CONSENT_UNKNOWN},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        enum vt_consent got = vt_consent_parse(cases[i].text, strlen(cases[i].text));
        cr_expect_eq(got, cases[i].expected, "\"%s\" gave %s, expected %s", cases[i].text,
                     vt_consent_name(got), vt_consent_name(cases[i].expected));
    }
}


Test(consent, parse_respects_length)
{
    cr_expect_eq(vt_consent_parse("yesno", 3), VT_CONSENT_GRANTED);
    cr_expect_eq(vt_consent_parse("no-thanks", 2), VT_CONSENT_DENIED);
}


Test(consent, names)
{
    cr_expect_str_eq(vt_consent_name(VT_CONSENT_UNKNOWN), "unknown");
    cr_expect_str_eq(vt_consent_name(VT_CONSENT_GRANTED), "granted");
    cr_expect_str_eq(vt_consent_name(VT_CONSENT_DENIED), "denied");
}


Test(consent, event_clear_resets_consent)
{
    ev.consent = VT_CONSENT_DENIED;
    ev.consent_unreadable = true;
    vt_event_clear(&ev);
    cr_expect_eq(ev.consent, VT_CONSENT_UNKNOWN);
    cr_expect_not(ev.consent_unreadable);
}
