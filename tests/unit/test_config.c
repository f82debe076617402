/*
 * The settings table: defaults, environment and flags, and the messages for invalid
 * values.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "vitrine/config.h"

static struct vt_config cfg;
static char err[1024];

Test(config, defaults_are_valid)
{
    vt_config_defaults(&cfg);
    cr_expect_eq(cfg.http_port, 8080);
    cr_expect_str_eq(cfg.kafka_topic, "events");
    cr_expect_str_eq(cfg.redis_prefix, "vt:");
    cr_expect_float_eq(cfg.price_tier_limits[0], 15, 1e-9);
    cr_expect_float_eq(cfg.intent_weight[VT_EV_IMPRESSION], 0, 1e-9,
                       "an impression alone is no interest");
    cr_expect_gt(cfg.intent_weight[VT_EV_PURCHASE], cfg.intent_weight[VT_EV_ADD_TO_CART]);
    cr_expect_gt(cfg.intent_weight[VT_EV_ADD_TO_CART], cfg.intent_weight[VT_EV_PRODUCT_VIEW]);
}


Test(config, port_out_of_range_names_setting_and_range)
{
    vt_config_defaults(&cfg);
    cr_assert_eq(vt_config_set(&cfg, "http.port", "70000", err, sizeof err), -1);
    cr_expect(strstr(err, "http.port") != NULL, "%s", err);
    cr_expect(strstr(err, "1 to 65535") != NULL, "%s", err);
    cr_expect(strstr(err, "70000") != NULL, "%s", err);
}


Test(config, integer_with_trailing_text_is_rejected)
{
    vt_config_defaults(&cfg);
    cr_expect_eq(vt_config_set(&cfg, "ingest.batch_size", "100x", err, sizeof err), -1);
    cr_expect_eq(vt_config_set(&cfg, "ingest.batch_size", " 100", err, sizeof err), -1);
    cr_expect_eq(vt_config_set(&cfg, "ingest.batch_size", "", err, sizeof err), -1);
    cr_expect_eq(vt_config_set(&cfg, "ingest.batch_size", "250", err, sizeof err), 0);
    cr_expect_eq(cfg.ingest_batch_size, 250);
}


Test(config, choice_lists_accepted_values)
{
    vt_config_defaults(&cfg);
    cr_assert_eq(vt_config_set(&cfg, "log.level", "verbose", err, sizeof err), -1);
    cr_expect(strstr(err, "error|warn|info|debug") != NULL, "%s", err);
    cr_expect_eq(vt_config_set(&cfg, "log.level", "debug", err, sizeof err), 0);
    cr_expect_eq(cfg.log_level, VT_LOG_DEBUG);
}


Test(config, price_tiers_must_ascend)
{
    vt_config_defaults(&cfg);
    cr_expect_eq(vt_config_set(&cfg, "profile.price_tiers", "50,15,120", err, sizeof err), -1);
    cr_expect(strstr(err, "ascending") != NULL, "%s", err);
    cr_expect_eq(vt_config_set(&cfg, "profile.price_tiers", "10,20", err, sizeof err), -1);
    cr_expect_eq(vt_config_set(&cfg, "profile.price_tiers", "10,20,30,40", err, sizeof err), -1);
    cr_expect_eq(vt_config_set(&cfg, "profile.price_tiers", "9.5,30,99", err, sizeof err), 0);
    cr_expect_eq(vt_config_price_tier(&cfg, 9.49), VT_TIER_DRUGSTORE);
    cr_expect_eq(vt_config_price_tier(&cfg, 9.5), VT_TIER_MID);
    cr_expect_eq(vt_config_price_tier(&cfg, 99), VT_TIER_LUXURY);
}


Test(config, mapp_params_parse_ca_and_cb)
{
    vt_config_defaults(&cfg);
    cr_assert_eq(vt_config_set(&cfg, "mapp.brand_param", "ca1", err, sizeof err), 0);
    cr_expect_eq(cfg.mapp_brand.kind, 'a');
    cr_expect_eq(cfg.mapp_brand.number, 1);
    cr_assert_eq(vt_config_set(&cfg, "mapp.gender_param", "cb760", err, sizeof err), 0);
    cr_expect_eq(cfg.mapp_gender.kind, 'b');
    cr_expect_eq(cfg.mapp_gender.number, 760);
    cr_expect_eq(vt_config_set(&cfg, "mapp.category_param", "cg2", err, sizeof err), -1);
    cr_expect(strstr(err, "ca<N>") != NULL, "%s", err);
    cr_expect_eq(vt_config_set(&cfg, "mapp.category_param", "ca", err, sizeof err), -1);
}


Test(config, secret_values_are_never_echoed)
{
    vt_config_defaults(&cfg);
    char longpw[400];
    memset(longpw, 'p', sizeof longpw - 1);
    longpw[sizeof longpw - 1] = '\0';
    cr_assert_eq(vt_config_set(&cfg, "redis.password", longpw, err, sizeof err), -1);
    cr_expect(strstr(err, "ppppp") == NULL, "secret leaked into message: %s", err);
}


Test(config, environment_then_flags_take_precedence)
{
    char *const envp[] = {"VITRINE_HTTP_PORT=9000", "VITRINE_KAFKA_TOPIC=from-env",
                          "HOME=/root", NULL};
    char *argv[] = {"vitrine", "--http-port", "9100", "--kafka-group=g2", NULL};
    FILE *out = fopen("/dev/null", "w");

    cr_assert_eq(vt_config_load(&cfg, 4, argv, envp, out, err, sizeof err), VT_CONFIG_OK, "%s",
                 err);
    cr_expect_eq(cfg.http_port, 9100, "flags win over the environment");
    cr_expect_str_eq(cfg.kafka_topic, "from-env");
    cr_expect_str_eq(cfg.kafka_group, "g2");
    fclose(out);
}


Test(config, invalid_environment_value_names_the_variable)
{
    char *const envp[] = {"VITRINE_REDIS_TIMEOUT_MS=-5", NULL};
    char *argv[] = {"vitrine", NULL};

    cr_assert_eq(vt_config_load(&cfg, 1, argv, envp, NULL, err, sizeof err), VT_CONFIG_ERROR);
    cr_expect(strstr(err, "VITRINE_REDIS_TIMEOUT_MS") != NULL, "%s", err);
    cr_expect(strstr(err, "redis.timeout_ms") != NULL, "%s", err);
}


Test(config, unknown_flag_is_an_error)
{
    char *argv[] = {"vitrine", "--http-prot", "1", NULL};

    cr_assert_eq(vt_config_load(&cfg, 3, argv, NULL, NULL, err, sizeof err), VT_CONFIG_ERROR);
    cr_expect(strstr(err, "--http-prot") != NULL, "%s", err);
}


Test(config, flag_without_value_is_an_error)
{
    char *argv[] = {"vitrine", "--http-port", NULL};

    cr_assert_eq(vt_config_load(&cfg, 2, argv, NULL, NULL, err, sizeof err), VT_CONFIG_ERROR);
    cr_expect(strstr(err, "needs a value") != NULL, "%s", err);
}


Test(config, sasl_needs_credentials)
{
    char *argv[] = {"vitrine", "--kafka-security-protocol", "sasl_ssl", NULL};

    cr_assert_eq(vt_config_load(&cfg, 3, argv, NULL, NULL, err, sizeof err), VT_CONFIG_ERROR);
    cr_expect(strstr(err, "kafka.sasl_username") != NULL, "%s", err);
}


Test(config, sasl_ssl_with_scram_is_accepted)
{
    char *argv[] = {"vitrine", "--kafka-security-protocol=sasl_ssl",
                    "--kafka-sasl-mechanism=SCRAM-SHA-512", "--kafka-sasl-username=shop",
                    "--kafka-sasl-password=secret", NULL};

    cr_expect_eq(vt_config_load(&cfg, 5, argv, NULL, NULL, err, sizeof err), VT_CONFIG_OK, "%s",
                 err);
}


Test(config, kafka_properties_need_key_value_pairs)
{
    vt_config_defaults(&cfg);
    cr_expect_eq(vt_config_set(&cfg, "kafka.properties", "fetch.wait.max.ms=10,client.rack=a",
                               err, sizeof err), 0);
    cr_expect_eq(vt_config_set(&cfg, "kafka.properties", "fetch.wait.max.ms", err, sizeof err),
                 -1);
    cr_expect(strstr(err, "key=value") != NULL, "%s", err);
}


Test(config, dead_letter_topic_must_differ_from_topic)
{
    char *argv[] = {"vitrine", "--kafka-dead-letter-topic", "events", NULL};

    cr_assert_eq(vt_config_load(&cfg, 3, argv, NULL, NULL, err, sizeof err), VT_CONFIG_ERROR);
    cr_expect(strstr(err, "kafka.dead_letter_topic") != NULL, "%s", err);
}


Test(config, help_lists_every_setting_with_env_name)
{
    char buf[65536] = "";
    FILE *out = fmemopen(buf, sizeof buf - 1, "w");
    char *argv[] = {"vitrine", "--help", NULL};

    cr_assert_eq(vt_config_load(&cfg, 2, argv, NULL, out, err, sizeof err), VT_CONFIG_EXIT);
    fclose(out);
    cr_expect(strstr(buf, "--http-port") != NULL);
    cr_expect(strstr(buf, "VITRINE_HTTP_PORT") != NULL);
    cr_expect(strstr(buf, "VITRINE_KAFKA_SASL_PASSWORD") != NULL);
    cr_expect(strstr(buf, "1 to 65535") != NULL);
}


Test(config, redis_prefix_rejects_braces)
{
    vt_config_defaults(&cfg);
    cr_expect_eq(vt_config_set(&cfg, "redis.prefix", "vt{x}:", err, sizeof err), -1);
    cr_expect_eq(vt_config_set(&cfg, "redis.prefix", "shop1:vt:", err, sizeof err), 0);
}


Test(config, unknown_vitrine_variable_stops_start_up)
{
    char *const envp[] = {"VITRINE_HTTP_ANALYST_TOKEN=secret", NULL};
    char *argv[] = {"vitrine", NULL};

    cr_assert_eq(vt_config_load(&cfg, 1, argv, envp, NULL, err, sizeof err), VT_CONFIG_ERROR);
    cr_expect(strstr(err, "VITRINE_HTTP_ANALYST_TOKEN") != NULL, "%s", err);
    cr_expect(strstr(err, "secret") == NULL, "the value must not be echoed: %s", err);
}


Test(config, kubernetes_and_script_variables_are_ignored)
{
    char *const envp[] = {"VITRINE_SERVICE_HOST=10.0.0.1", "VITRINE_PORT_8080_TCP=tcp://x",
                          "VITRINE_PORT=tcp://x", "VITRINE_DATA=/data", "VITRINE_TEST_WORK=/tmp",
                          NULL};
    char *argv[] = {"vitrine", NULL};

    cr_expect_eq(vt_config_load(&cfg, 1, argv, envp, NULL, err, sizeof err), VT_CONFIG_OK, "%s",
                 err);
}


Test(config, kafka_properties_errors_never_show_secret_values)
{
    char value[3000];

    vt_config_defaults(&cfg);
    cr_assert_eq(vt_config_set(&cfg, "kafka.properties", "sasl.password:TopSecret1", err,
                               sizeof err), -1);
    cr_expect(strstr(err, "TopSecret1") == NULL, "%s", err);

    /* Too long for the setting: the message shows the value with secrets masked. */
    memset(value, 'x', sizeof value);
    memcpy(value, "ssl.key.password=TopSecret2,a=", 30);
    value[sizeof value - 1] = '\0';
    cr_assert_eq(vt_config_set(&cfg, "kafka.properties", value, err, sizeof err), -1);
    cr_expect(strstr(err, "TopSecret2") == NULL, "%s", err);
}


/* Set name to value, expect a rejection, and check that the message names the setting
 * and the value. */
static void expect_rejected(const char *name, const char *value, const char *shown)
{
    vt_config_defaults(&cfg);
    cr_assert_eq(vt_config_set(&cfg, name, value, err, sizeof err), -1, "%s=%s accepted", name,
                 value);
    cr_expect(strstr(err, name) != NULL, "message does not name %s: %s", name, err);
    cr_expect(strstr(err, shown) != NULL, "message does not show \"%s\": %s", shown, err);
}


Test(config, visitor_and_segment_defaults)
{
    vt_config_defaults(&cfg);
    cr_expect_str_eq(cfg.segments_path, "");
    cr_expect_eq(cfg.segments_count_interval_s, 60);
    cr_expect_eq(cfg.segments_count_sample, 2000);
    cr_assert_eq(cfg.n_visitor_fields, 2);
    cr_expect_eq(cfg.visitor_fields[0], VT_VISITOR_FIELD_CUSTOMER_ID);
    cr_expect_eq(cfg.visitor_fields[1], VT_VISITOR_FIELD_USER_ID);
    cr_assert_eq(cfg.n_visitor_blocked, 10);
    cr_expect_str_eq(cfg.visitor_blocked_values[0], "0");
    cr_expect_str_eq(cfg.visitor_blocked_values[9], "n/a");
    cr_expect_eq(cfg.visitor_sessions_max, 20);
    cr_expect_float_eq(cfg.visitor_half_life_s, 2592000, 1e-9);
    cr_expect_eq(cfg.visitor_ttl_s, 15552000);
    cr_expect_float_eq(cfg.visitor_weight, 0.5, 1e-9);
    cr_expect(cfg.consent_default_granted);
    cr_expect_eq(cfg.mapp_consent.kind, 0);
}


Test(config, numeric_visitor_and_segment_settings_checked)
{
    expect_rejected("segments.count_interval_s", "4", "\"4\"");
    expect_rejected("segments.count_interval_s", "86401", "86401");
    expect_rejected("segments.count_sample", "9", "\"9\"");
    expect_rejected("segments.count_sample", "100001", "100001");
    expect_rejected("visitor.sessions_max", "0", "\"0\"");
    expect_rejected("visitor.sessions_max", "1001", "1001");
    expect_rejected("visitor.half_life_s", "3599", "3599");
    expect_rejected("visitor.half_life_s", "31536001", "31536001");
    expect_rejected("visitor.ttl_s", "3599", "3599");
    expect_rejected("visitor.ttl_s", "63072001", "63072001");
    expect_rejected("visitor.weight", "1.5", "1.5");
    expect_rejected("visitor.weight", "-0.1", "-0.1");
    expect_rejected("visitor.weight", "half", "half");
}


Test(config, segments_path_length_checked)
{
    char long_path[VT_CONFIG_STR_MAX * 4 + 10];

    memset(long_path, 'a', sizeof long_path - 1);
    long_path[sizeof long_path - 1] = '\0';
    vt_config_defaults(&cfg);
    cr_expect_eq(vt_config_set(&cfg, "segments.path", long_path, err, sizeof err), -1);
    cr_expect(strstr(err, "segments.path") != NULL, "%s", err);
    cr_expect_eq(vt_config_set(&cfg, "segments.path", "/etc/vitrine/segments.json", err,
                               sizeof err),
                 0, "%s", err);
    cr_expect_str_eq(cfg.segments_path, "/etc/vitrine/segments.json");
}


Test(config, visitor_id_fields_parsed)
{
    vt_config_defaults(&cfg);
    cr_assert_eq(vt_config_set(&cfg, "visitor.id_fields", " user_id ,customer_id", err,
                               sizeof err),
                 0, "%s", err);
    cr_assert_eq(cfg.n_visitor_fields, 2);
    cr_expect_eq(cfg.visitor_fields[0], VT_VISITOR_FIELD_USER_ID);
    cr_expect_eq(cfg.visitor_fields[1], VT_VISITOR_FIELD_CUSTOMER_ID);
    cr_assert_eq(vt_config_set(&cfg, "visitor.id_fields", "user_id", err, sizeof err), 0);
    cr_assert_eq(cfg.n_visitor_fields, 1);
    cr_expect_eq(cfg.visitor_fields[0], VT_VISITOR_FIELD_USER_ID);
    cr_assert_eq(vt_config_set(&cfg, "visitor.id_fields", "", err, sizeof err), 0);
    cr_expect_eq(cfg.n_visitor_fields, 0, "empty turns visitors off");
}


Test(config, visitor_id_fields_unknown_token_rejected)
{
    expect_rejected("visitor.id_fields", "customer_id,email", "email");
    cr_expect(strstr(err, "customer_id and user_id") != NULL, "allowed tokens: %s", err);
    expect_rejected("visitor.id_fields", "customerId", "customerId");
    expect_rejected("visitor.id_fields", "user_id,,customer_id", "user_id,,customer_id");
    expect_rejected("visitor.id_fields", "user_id,", "user_id,");
}


Test(config, visitor_id_fields_repeated_token_rejected)
{
    expect_rejected("visitor.id_fields", "user_id,user_id", "user_id,user_id");
    cr_expect(strstr(err, "twice") != NULL, "%s", err);
}


Test(config, visitor_id_fields_kept_on_error)
{
    vt_config_defaults(&cfg);
    cr_assert_eq(vt_config_set(&cfg, "visitor.id_fields", "user_id,bogus", err, sizeof err),
                 -1);
    cr_expect_eq(cfg.n_visitor_fields, 2, "the parsed list changes only on success");
}


Test(config, visitor_blocked_entry_too_long_rejected)
{
    char value[128];

    memset(value, 'x', 65);
    value[65] = '\0';
    expect_rejected("visitor.blocked", value, "xxxxxxxxxx");
    cr_expect(strstr(err, "65 bytes") != NULL, "%s", err);
    cr_expect(strstr(err, "at most 64") != NULL, "%s", err);

    memset(value, 'x', 64);
    value[64] = '\0';
    vt_config_defaults(&cfg);
    cr_expect_eq(vt_config_set(&cfg, "visitor.blocked", value, err, sizeof err), 0,
                 "64 bytes fit: %s", err);
}


Test(config, visitor_blocked_too_many_entries_rejected)
{
    char value[256] = "";

    for (int i = 0; i < 33; i++) {
        char entry[16];
        snprintf(entry, sizeof entry, "%sb%d", i > 0 ? "," : "", i);
        strncat(value, entry, sizeof value - strlen(value) - 1);
    }
    expect_rejected("visitor.blocked", value, "b0,b1,b2");
    cr_expect(strstr(err, "more than 32") != NULL, "%s", err);

    cr_expect_eq(cfg.n_visitor_blocked, 10, "the parsed list changes only on success");
    cr_expect_str_eq(cfg.visitor_blocked_values[0], "0");

    /* 32 entries fit. */
    *strrchr(value, ',') = '\0';
    vt_config_defaults(&cfg);
    cr_assert_eq(vt_config_set(&cfg, "visitor.blocked", value, err, sizeof err), 0, "%s", err);
    cr_expect_eq(cfg.n_visitor_blocked, 32);
    cr_expect_str_eq(cfg.visitor_blocked_values[31], "b31");
}


Test(config, consent_default_choice)
{
    vt_config_defaults(&cfg);
    cr_assert_eq(vt_config_set(&cfg, "consent.default", "denied", err, sizeof err), 0);
    cr_expect_not(cfg.consent_default_granted);
    cr_assert_eq(vt_config_set(&cfg, "consent.default", "granted", err, sizeof err), 0);
    cr_expect(cfg.consent_default_granted);
    expect_rejected("consent.default", "yes", "\"yes\"");
    cr_expect(strstr(err, "granted|denied") != NULL, "%s", err);
    expect_rejected("consent.default", "Denied", "Denied");
}


Test(config, mapp_consent_param_parses_cs_and_uc)
{
    vt_config_defaults(&cfg);
    cr_assert_eq(vt_config_set(&cfg, "mapp.consent_param", "cs800", err, sizeof err), 0);
    cr_expect_eq(cfg.mapp_consent.kind, 's');
    cr_expect_eq(cfg.mapp_consent.number, 800);
    cr_assert_eq(vt_config_set(&cfg, "mapp.consent_param", "uc7", err, sizeof err), 0);
    cr_expect_eq(cfg.mapp_consent.kind, 'u');
    cr_expect_eq(cfg.mapp_consent.number, 7);
    cr_assert_eq(vt_config_set(&cfg, "mapp.consent_param", "", err, sizeof err), 0);
    cr_expect_eq(cfg.mapp_consent.kind, 0);
}


Test(config, mapp_consent_param_rejects_other_forms)
{
    static const char *const bad[] = {"ca1", "cb2", "cs", "uc", "cs0", "cs-1", "cs1x", "CS1",
                                      "s1", "uc 1"};

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_rejected("mapp.consent_param", bad[i], bad[i]);
        cr_expect(strstr(err, "cs<N>") != NULL, "%s", err);
        cr_expect(strstr(err, "uc<N>") != NULL, "%s", err);
    }
}


Test(config, visitor_half_life_below_profile_half_life_rejected)
{
    char *argv[] = {"vitrine", "--profile-half-life-s", "7200000", NULL};

    cr_assert_eq(vt_config_load(&cfg, 3, argv, NULL, NULL, err, sizeof err), VT_CONFIG_ERROR);
    cr_expect(strstr(err, "visitor.half_life_s (2592000)") != NULL, "%s", err);
    cr_expect(strstr(err, "profile.half_life_s (7200000)") != NULL, "%s", err);
}


Test(config, visitor_ttl_below_profile_ttl_rejected)
{
    char *argv[] = {"vitrine", "--visitor-ttl-s", "3600", NULL};

    cr_assert_eq(vt_config_load(&cfg, 3, argv, NULL, NULL, err, sizeof err), VT_CONFIG_ERROR);
    cr_expect(strstr(err, "visitor.ttl_s (3600)") != NULL, "%s", err);
    cr_expect(strstr(err, "profile.ttl_s (604800)") != NULL, "%s", err);
}


Test(config, visitor_relations_skipped_when_visitors_off)
{
    char *argv[] = {"vitrine", "--visitor-ttl-s", "3600", "--visitor-id-fields", "", NULL};

    cr_expect_eq(vt_config_load(&cfg, 5, argv, NULL, NULL, err, sizeof err), VT_CONFIG_OK, "%s",
                 err);
}
