/*
 * The metrics registry's page: build information with the libraries' versions, the
 * latency histogram's buckets, and a # TYPE line for every sample's family.
 */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

#include "vitrine/metrics.h"

#define PAGE_MAX (1024 * 1024)

/* Render the registry into a NUL-terminated string owned by b. */
static const char *render_page(struct vt_buf *b)
{
    vt_buf_init(b, PAGE_MAX);
    vt_metrics_render(b);
    cr_assert(!b->overflow, "the metrics page exceeds %d bytes", PAGE_MAX);
    cr_assert_eq(vt_buf_append(b, "", 1), 0);
    return b->data;
}


/* Copy the line of page that starts with prefix into out; false when there is none. */
static bool find_line(const char *page, const char *prefix, char *out, size_t outsize)
{
    size_t n = strlen(prefix);

    for (const char *line = page; *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len >= n && strncmp(line, prefix, n) == 0) {
            snprintf(out, outsize, "%.*s", (int)len, line);
            return true;
        }
        line += len + (end ? 1 : 0);
    }
    return false;
}


Test(metrics, build_info_names_library_versions)
{
    struct vt_buf b;
    const char *page = render_page(&b);
    char line[512], expected[128];

    cr_assert(find_line(page, "vitrine_build_info{", line, sizeof line),
              "no vitrine_build_info sample in:\n%s", page);
    snprintf(expected, sizeof expected, "version=\"%s\"", VITRINE_VERSION);
    cr_expect(strstr(line, expected) != NULL, "%s lacks %s", line, expected);
    snprintf(expected, sizeof expected, "librdkafka=\"%s\"", rd_kafka_version_str());
    cr_expect(strstr(line, expected) != NULL, "%s lacks %s", line, expected);
    snprintf(expected, sizeof expected, "libmicrohttpd=\"%s\"", MHD_get_version());
    cr_expect(strstr(line, expected) != NULL, "%s lacks %s", line, expected);
    snprintf(expected, sizeof expected, "hiredis=\"%d.%d.%d\"", HIREDIS_MAJOR, HIREDIS_MINOR,
             HIREDIS_PATCH);
    cr_expect(strstr(line, expected) != NULL, "%s lacks %s", line, expected);
    snprintf(expected, sizeof expected, "cjson=\"%s\"", cJSON_Version());
    cr_expect(strstr(line, expected) != NULL, "%s lacks %s", line, expected);
    cr_expect(strstr(line, "} 1") != NULL, "%s does not have the value 1", line);
    vt_buf_free(&b);
}


/* Expect the sample whose line starts with series to have the value expected. */
static void expect_sample(const char *page, const char *series, const char *expected)
{
    char line[512], prefix[256];

    snprintf(prefix, sizeof prefix, "%s ", series);
    cr_assert(find_line(page, prefix, line, sizeof line), "no sample %s in:\n%s", series, page);
    cr_expect_str_eq(line + strlen(prefix), expected, "%s", line);
}


Test(metrics, latency_buckets_are_cumulative)
{
    struct vt_buf b;

    vt_metrics_http(VT_ROUTE_TRENDING, 200, 50000);      /* 50 us: first bucket */
    vt_metrics_http(VT_ROUTE_TRENDING, 200, 3000000);    /* 3 ms: le="0.005" */
    vt_metrics_http(VT_ROUTE_TRENDING, 503, 2000000000); /* 2 s: only +Inf */
    const char *page = render_page(&b);

    expect_sample(page, "vitrine_http_request_duration_seconds_bucket{route=\"trending\","
                  "le=\"0.0001\"}", "1");
    expect_sample(page, "vitrine_http_request_duration_seconds_bucket{route=\"trending\","
                  "le=\"0.0025\"}", "1");
    expect_sample(page, "vitrine_http_request_duration_seconds_bucket{route=\"trending\","
                  "le=\"0.005\"}", "2");
    expect_sample(page, "vitrine_http_request_duration_seconds_bucket{route=\"trending\","
                  "le=\"1\"}", "2");
    expect_sample(page, "vitrine_http_request_duration_seconds_bucket{route=\"trending\","
                  "le=\"+Inf\"}", "3");
    expect_sample(page, "vitrine_http_request_duration_seconds_count{route=\"trending\"}",
                  "3");
    expect_sample(page, "vitrine_http_requests_total{route=\"trending\",code=\"200\"}", "2");
    expect_sample(page, "vitrine_http_requests_total{route=\"trending\",code=\"503\"}", "1");
    vt_buf_free(&b);
}


/* Check that the family of a sample name has a # TYPE line. A histogram's _bucket, _sum
 * and _count samples belong to the family without the suffix. */
static bool family_declared(const char *page, const char *name, size_t len)
{
    static const char *const suffixes[] = {"", "_bucket", "_sum", "_count"};
    char prefix[256];

    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t s = strlen(suffixes[i]);
        if (len <= s || strncmp(name + len - s, suffixes[i], s) != 0)
            continue;
        snprintf(prefix, sizeof prefix, "# TYPE %.*s ", (int)(len - s), name);
        char line[256];
        if (find_line(page, prefix, line, sizeof line))
            return true;
    }
    return false;
}


Test(metrics, every_sample_has_a_type_line)
{
    struct vt_buf b;
    size_t samples = 0;

    vt_metrics_http(VT_ROUTE_SEGMENT, 200, 100000);
    vt_metrics_set_lag(3, 42);
    vt_metrics_set_assigned(1);
    const char *page = render_page(&b);

    for (const char *line = page; *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > 0 && line[0] != '#') {
            size_t name_len = strcspn(line, "{ ");
            cr_expect(family_declared(page, line, name_len), "no # TYPE line for %.*s",
                      (int)len, line);
            samples++;
        }
        line += len + (end ? 1 : 0);
    }
    cr_expect_gt(samples, 20);
    vt_buf_free(&b);
}


Test(metrics, lag_per_partition_and_total)
{
    struct vt_buf b;

    vt_metrics_set_lag(3, 42);
    vt_metrics_set_lag(5, 8);
    vt_metrics_set_assigned(2);
    const char *page = render_page(&b);

    expect_sample(page, "vitrine_consumer_lag{partition=\"3\"}", "42");
    expect_sample(page, "vitrine_consumer_lag{partition=\"5\"}", "8");
    expect_sample(page, "vitrine_consumer_lag_total", "50");
    expect_sample(page, "vitrine_consumer_assigned_partitions", "2");
    vt_buf_free(&b);
}
