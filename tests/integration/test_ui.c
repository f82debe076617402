/*
 * The dashboard at /ui/ against the real binary. Every built-in file is served without a
 * token, with its Content-Type and the security and caching headers. Unknown files get 404
 * in the error shape. The analyst's look at recommendations publishes no decision.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "vitrine/ui.h"

#define ANALYST_TOKEN "ui-analyst-secret"
#define STOREFRONT_TOKEN "ui-shop-secret"

/* The value of header name in a raw response head, copied into out; false when absent. */
static bool header_value(const char *head, const char *name, char *out, size_t outsize)
{
    char needle[128];
    const char *at;
    size_t len;

    snprintf(needle, sizeof needle, "\r\n%s:", name);
    at = head != NULL ? strcasestr(head, needle) : NULL;
    if (at == NULL)
        return false;
    at += strlen(needle);
    while (*at == ' ')
        at++;
    len = strcspn(at, "\r\n");
    if (len >= outsize)
        len = outsize - 1;
    memcpy(out, at, len);
    out[len] = '\0';
    return true;
}


static void expect_error_shape(const char *what, const char *body, const char *code)
{
    cJSON *root = cJSON_Parse(body);
    cJSON *error = cJSON_GetObjectItemCaseSensitive(root, "error");

    cr_expect(cJSON_IsObject(error), "%s: body is not the error shape: %s", what, body);
    cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(error, "code")),
                     code, "%s: error code", what);
    cr_expect(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(error, "message")),
              "%s: error without message", what);
    cr_expect(cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(error, "retriable")),
              "%s: error without retriable", what);
    cJSON_Delete(root);
}


/* The headers every dashboard file carries. */
static void expect_ui_headers(const char *path, const char *head)
{
    char value[512];

    cr_assert(header_value(head, "Content-Security-Policy", value, sizeof value),
              "%s: no Content-Security-Policy", path);
    cr_expect(strstr(value, "default-src 'none'") != NULL, "%s: CSP lacks default-src 'none': %s",
              path, value);
    cr_expect(strstr(value, "script-src 'self'") != NULL, "%s: CSP lacks script-src 'self': %s",
              path, value);
    cr_expect(strstr(value, "unsafe-inline") == NULL && strstr(value, "unsafe-eval") == NULL,
              "%s: CSP allows inline or eval'd script: %s", path, value);
    cr_expect(strstr(value, "require-trusted-types-for 'script'") != NULL,
              "%s: CSP does not require Trusted Types: %s", path, value);
    cr_expect(header_value(head, "X-Content-Type-Options", value, sizeof value) &&
                  strcmp(value, "nosniff") == 0,
              "%s: X-Content-Type-Options is not nosniff", path);
    cr_expect(header_value(head, "Cache-Control", value, sizeof value) &&
                  strcmp(value, "no-cache") == 0,
              "%s: Cache-Control is not no-cache", path);
    cr_expect(header_value(head, "ETag", value, sizeof value) && value[0] == '"',
              "%s: no quoted ETag", path);
    cr_expect(header_value(head, "X-Frame-Options", value, sizeof value) &&
                  strcmp(value, "DENY") == 0,
              "%s: X-Frame-Options is not DENY", path);
}


static void start(struct harness *h, const char *name, const char *decisions_topic)
{
    static char decisions[224];
    const char *env[] = {"VITRINE_HTTP_TOKEN_ANALYST=" ANALYST_TOKEN,
                         "VITRINE_HTTP_TOKEN_STOREFRONT=" STOREFRONT_TOKEN, decisions, NULL};

    harness_init(h, name);
    snprintf(decisions, sizeof decisions, "VITRINE_KAFKA_DECISIONS_TOPIC=%s",
             decisions_topic != NULL ? decisions_topic : "");
    harness_start(h, env);
}


Test(ui, files_have_types_and_headers, .timeout = 60)
{
    struct harness h;
    char value[256];

    start(&h, "ui-files", NULL);
    cr_assert_gt(vt_ui_asset_count, 0, "no dashboard file is built in");

    /* The page, without a token although the analyst token is set. */
    char *body = NULL, *head = NULL;
    int status = harness_http(&h, "GET", "/ui/", NULL, &body, &head);
    cr_assert_eq(status, 200, "GET /ui/: status %d, body %s", status, body);
    cr_expect(header_value(head, "Content-Type", value, sizeof value) &&
                  strcmp(value, "text/html; charset=utf-8") == 0,
              "GET /ui/: Content-Type %s", value);
    expect_ui_headers("/ui/", head);
    cr_expect(strstr(body, "<script src=\"/ui/dashboard.js\"") != NULL,
              "GET /ui/ is not the dashboard page");
    cr_expect(strstr(body, "<script>") == NULL, "the page has an inline script");
    free(body);
    free(head);

    /* Every built-in file, byte for byte, with the type of its extension. */
    for (size_t i = 0; i < vt_ui_asset_count; i++) {
        const struct vt_ui_asset *a = &vt_ui_assets[i];
        char path[160];

        snprintf(path, sizeof path, "/ui/%s", a->name);
        body = head = NULL;
        status = harness_http(&h, "GET", path, NULL, &body, &head);
        cr_expect_eq(status, 200, "GET %s: status %d", path, status);
        cr_expect(header_value(head, "Content-Type", value, sizeof value) &&
                      strcmp(value, a->content_type) == 0,
                  "GET %s: Content-Type \"%s\", expected \"%s\"", path, value, a->content_type);
        cr_expect(body != NULL && strlen(body) == a->len &&
                      memcmp(body, a->data, a->len) == 0,
                  "GET %s: the body is not the built-in file", path);
        expect_ui_headers(path, head);
        free(body);
        free(head);
    }

    /* The types that matter most, named here so that a wrong table cannot hide them. */
    static const struct {
        const char *path;
        const char *type;
    } expected[] = {
        {"/ui/dashboard.js", "text/javascript; charset=utf-8"},
        {"/ui/dashboard.css", "text/css; charset=utf-8"},
        {"/ui/icon.svg", "image/svg+xml"},
    };
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        body = head = NULL;
        status = harness_http(&h, "GET", expected[i].path, NULL, &body, &head);
        cr_expect_eq(status, 200, "GET %s: status %d", expected[i].path, status);
        cr_expect(header_value(head, "Content-Type", value, sizeof value) &&
                      strcmp(value, expected[i].type) == 0,
                  "GET %s: Content-Type \"%s\"", expected[i].path, value);
        free(body);
        free(head);
    }

    /* HEAD is served like GET, without the body. */
    body = head = NULL;
    status = harness_http(&h, "HEAD", "/ui/dashboard.js", NULL, &body, &head);
    cr_expect_eq(status, 200, "HEAD /ui/dashboard.js: status %d", status);
    expect_ui_headers("HEAD /ui/dashboard.js", head);
    free(body);
    free(head);
    harness_stop(&h, 20);
}


Test(ui, etag_gives_not_modified, .timeout = 60)
{
    struct harness h;
    char etag[128], extra[256];
    char *body = NULL, *head = NULL;

    start(&h, "ui-etag", NULL);
    int status = harness_http(&h, "GET", "/ui/dashboard.css", NULL, &body, &head);
    cr_assert_eq(status, 200);
    cr_assert(header_value(head, "ETag", etag, sizeof etag), "no ETag");
    free(body);
    free(head);

    snprintf(extra, sizeof extra, "If-None-Match: %s\r\n", etag);
    body = head = NULL;
    status = harness_http(&h, "GET", "/ui/dashboard.css", extra, &body, &head);
    cr_expect_eq(status, 304, "If-None-Match with the current ETag: status %d", status);
    cr_expect(body == NULL || body[0] == '\0', "a 304 with a body");
    free(body);
    free(head);

    body = head = NULL;
    status = harness_http(&h, "GET", "/ui/dashboard.css", "If-None-Match: \"old\"\r\n", &body,
                          &head);
    cr_expect_eq(status, 200, "If-None-Match with another ETag: status %d", status);
    free(body);
    free(head);
    harness_stop(&h, 20);
}


Test(ui, unknown_files_are_404_errors, .timeout = 60)
{
    static const char *const paths[] = {"/ui/missing.js", "/ui/a/b.js", "/ui/index.html%2F",
                                        "/ui/..%2Fopenapi.yaml", "/ui/DASHBOARD.JS"};
    struct harness h;
    char value[128];

    start(&h, "ui-missing", NULL);
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        char *body = NULL, *head = NULL;
        int status = harness_http(&h, "GET", paths[i], NULL, &body, &head);

        cr_expect_eq(status, 404, "GET %s: status %d", paths[i], status);
        cr_expect(header_value(head, "Content-Type", value, sizeof value) &&
                      strcmp(value, "application/json") == 0,
                  "GET %s: Content-Type %s", paths[i], value);
        expect_error_shape(paths[i], body, "NOT_FOUND");
        free(body);
        free(head);
    }

    /* The files are GET only. */
    char *body = NULL, *head = NULL;
    int status = harness_http_body(&h, "POST", "/ui/dashboard.js", NULL, "x", &body, &head);
    cr_expect_eq(status, 405, "POST /ui/dashboard.js: status %d", status);
    cr_expect(header_value(head, "Allow", value, sizeof value) && strcmp(value, "GET") == 0,
              "POST /ui/dashboard.js: Allow %s", value);
    expect_error_shape("POST /ui/dashboard.js", body, "METHOD_NOT_ALLOWED");
    free(body);
    free(head);

    /* /ui without the slash leads to the page. */
    body = head = NULL;
    status = harness_http(&h, "GET", "/ui", NULL, &body, &head);
    cr_expect_eq(status, 308, "GET /ui: status %d", status);
    cr_expect(header_value(head, "Location", value, sizeof value) && strcmp(value, "/ui/") == 0,
              "GET /ui: Location %s", value);
    free(body);
    free(head);
    harness_stop(&h, 20);
}


struct decision_count {
    int total;
    int for_viewer; /* records of the session only the analyst looked at */
};

static void count_decision(const char *key, size_t key_len, const char *value, size_t len,
                           const char *reason_header, void *arg)
{
    struct decision_count *c = arg;

    (void)value;
    (void)len;
    (void)reason_header;
    c->total++;
    if (key_len == strlen("ui-viewed") && memcmp(key, "ui-viewed", key_len) == 0)
        c->for_viewer++;
}


Test(ui, analyst_look_records_no_decision, .timeout = 90)
{
    struct harness h;
    char topic[160];
    char *body = NULL;
    int status;

    snprintf(topic, sizeof topic, "decisions-ui-%d", (int)getpid());
    start(&h, "ui-preview", topic);

    /* The data calls need the analyst token: none and the storefront token get 401. */
    status = harness_http(&h, "GET", "/v1/profiles/ui-viewed/recommendations", NULL, &body,
                          NULL);
    cr_expect_eq(status, 401, "without a token: status %d", status);
    free(body);
    body = NULL;
    status = harness_http(&h, "GET", "/v1/profiles/ui-viewed/recommendations",
                          "Authorization: Bearer " STOREFRONT_TOKEN "\r\n", &body, NULL);
    cr_expect_eq(status, 401, "with the storefront token: status %d", status);
    free(body);

    /* Three looks by the analyst: the list with reasons, marked preview, no decision id. */
    for (int i = 0; i < 3; i++) {
        body = NULL;
        status = harness_http(&h, "GET", "/v1/profiles/ui-viewed/recommendations?limit=5",
                              "Authorization: Bearer " ANALYST_TOKEN "\r\n", &body, NULL);
        cr_assert_eq(status, 200, "analyst look: status %d, body %s", status, body);
        cJSON *root = cJSON_Parse(body);
        cr_expect(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "preview")),
                  "the look is not marked preview: %s", body);
        cr_expect_null(cJSON_GetObjectItemCaseSensitive(root, "decision_id"),
                       "the look has a decision id: %s", body);
        cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "items");
        cr_expect_eq(cJSON_GetArraySize(items), 5, "the look lists %d products",
                     cJSON_GetArraySize(items));
        cr_expect(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(items, 0),
                                                                 "reasons")),
                  "the first product has no reasons: %s", body);
        cJSON_Delete(root);
        free(body);
    }

    /* One storefront request, so that the check below can see a decision at all. */
    body = NULL;
    status = harness_http(&h, "GET", "/v1/sessions/ui-shop/recommendations?limit=5",
                          "Authorization: Bearer " STOREFRONT_TOKEN "\r\n", &body, NULL);
    cr_assert_eq(status, 200, "storefront request: status %d", status);
    free(body);

    cr_expect_eq(harness_metric(&h, "vitrine_decisions_total{outcome=\"queued\"}"), 1,
                 "decisions queued: expected only the storefront request's");
    struct decision_count count = {0, 0};
    for (int attempt = 0; attempt < 15 && count.total == 0; attempt++) {
        count = (struct decision_count){0, 0};
        harness_consume_all(&h, topic, 1000, count_decision, &count);
    }
    cr_expect_eq(count.total, 1, "decisions in %s: %d, expected the storefront request's only",
                 topic, count.total);
    cr_expect_eq(count.for_viewer, 0, "the analyst's looks published %d decisions",
                 count.for_viewer);
    harness_stop(&h, 20);
}
