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
