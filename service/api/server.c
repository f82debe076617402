/*
 * vitrine: the HTTP server: libmicrohttpd set-up, routing, authentication, reply helpers,
 * and the operational endpoints (/healthz, /readyz, /metrics, /openapi.yaml).
 *
 * Threads: the request callback runs on a worker of libmicrohttpd's thread pool (epoll).
 * Each worker keeps its own Redis connection and response buffer in thread-specific
 * storage, released when the worker exits.
 */
#include "vitrine/api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_internal.h"
#include "vitrine/log.h"
#include "vitrine/ui.h"
#include "vitrine/util.h"

/* Largest request body accepted (a rerank of 500 ids of 128 bytes fits). */
#define REQUEST_BODY_MAX (96 * 1024)
/* Longest request path with its query string; longer ones get 414. Requests whose line
 * does not fit CONNECTION_MEMORY at all are rejected by libmicrohttpd itself. */
#define URL_MAX 8192
/* Largest /metrics page. */
#define METRICS_MAX (1024 * 1024)
/* Query parameters one request may carry; no endpoint takes more than nine. */
#define QUERY_PARAMS_MAX 32
/* Memory libmicrohttpd may use per connection for the request line and headers; a request
 * whose headers do not fit is answered 431 by libmicrohttpd. */
#define CONNECTION_MEMORY 32768

/* ---- per-worker state ---- */

struct worker_state {
    struct vt_store *store;
    char buffer[VT_RESPONSE_MAX];
};

static pthread_key_t worker_key;
static pthread_once_t worker_key_once = PTHREAD_ONCE_INIT;

static void worker_state_free(void *p)
{
    struct worker_state *ws = p;

    vt_store_free(ws->store);
    free(ws);
}


static void worker_key_create(void)
{
    pthread_key_create(&worker_key, worker_state_free);
}


static struct worker_state *worker_state(void)
{
    struct worker_state *ws;

    pthread_once(&worker_key_once, worker_key_create);
    ws = pthread_getspecific(worker_key);
    if (ws == NULL) {
        ws = calloc(1, sizeof *ws);
        if (ws == NULL)
            return NULL;
        pthread_setspecific(worker_key, ws);
    }
    return ws;
}


struct vt_store *vt_api_worker_store(struct vt_api *api, char *err, size_t errsize)
{
    struct worker_state *ws = worker_state();

    if (ws == NULL) {
        vt_strlcpy(err, "out of memory", errsize);
        return NULL;
    }
    if (ws->store == NULL)
        ws->store = vt_store_connect(api->cfg, api->cfg->redis_timeout_ms, err, errsize);
    return ws->store;
}


void vt_api_worker_store_reset(void)
{
    struct worker_state *ws = worker_state();

    if (ws != NULL && ws->store != NULL) {
        vt_store_free(ws->store);
        ws->store = NULL;
    }
}


size_t vt_api_path_id(const struct vt_request *req, char *out, size_t outsize)
{
    size_t w = 0;

    for (size_t r = 0; r < req->id_len && w + 1 < outsize; r++) {
        char next = r + 2 < req->id_len && req->id[r + 1] == '2' ? req->id[r + 2] : '\0';

        if (req->id[r] == '%' && (next == 'F' || next == 'f')) {
            out[w++] = '/';
            r += 2;
        } else if (req->id[r] == '%' && next == '5') {
            out[w++] = '%';
            r += 2;
        } else {
            out[w++] = req->id[r];
        }
    }
    out[w] = '\0';
    return w;
}


bool vt_api_worker_store_connected(void)
{
    struct worker_state *ws = worker_state();
    return ws != NULL && ws->store != NULL;
}


char *vt_api_worker_buffer(void)
{
    struct worker_state *ws = worker_state();
    return ws ? ws->buffer : NULL;
}


/* ---- replies ---- */

static enum MHD_Result queue(struct vt_request *req, int status, struct MHD_Response *resp)
{
    enum MHD_Result r;

    if (resp == NULL)
        return MHD_NO;
    req->status = status;
    r = MHD_queue_response(req->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return r;
}


enum MHD_Result vt_reply_json(struct vt_request *req, int status, const char *body, size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);

    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (req->close_connection)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    return queue(req, status, resp);
}


enum MHD_Result vt_reply_error(struct vt_request *req, int status, const char *code,
                               bool retriable, const char *fmt, ...)
{
    char message[512];
    char body[1024];
    struct vt_jsonw w;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);

    vt_jsonw_init(&w, body, sizeof body);
    vt_jsonw_object_begin(&w);
    vt_jsonw_key(&w, "error");
    vt_jsonw_object_begin(&w);
    vt_jsonw_key(&w, "code");
    vt_jsonw_string(&w, code);
    vt_jsonw_key(&w, "message");
    vt_jsonw_string(&w, message);
    vt_jsonw_key(&w, "retriable");
    vt_jsonw_bool(&w, retriable);
    vt_jsonw_object_end(&w);
    vt_jsonw_object_end(&w);
    int64_t len = vt_jsonw_finish(&w);
    if (len < 0)
        return MHD_NO;
    return vt_reply_json(req, status, body, (size_t)len);
}


enum MHD_Result vt_reply_writer(struct vt_request *req, int status, struct vt_jsonw *w)
{
    int64_t len = vt_jsonw_finish(w);

    if (len < 0) {
        VT_ERROR("HTTP", "response of route %s exceeds %d bytes", vt_route_name(req->route),
                 VT_RESPONSE_MAX);
        return vt_reply_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "INTERNAL", false,
                              "the response exceeds the server's limit of %d bytes",
                              VT_RESPONSE_MAX);
    }
    return vt_reply_json(req, status, w->buf, (size_t)len);
}


const char *vt_query(const struct vt_request *req, const char *name)
{
    const char *value = MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);

    /* "limit=" means the same as no limit parameter, for every parameter. */
    return value != NULL && value[0] != '\0' ? value : NULL;
}


static enum MHD_Result reply_text(struct vt_request *req, int status, const char *type,
                                  const char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, mode);

    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    return queue(req, status, resp);
}


/* ---- operational endpoints ---- */

static enum MHD_Result handle_healthz(struct vt_request *req)
{
    static const char body[] = "{\"status\":\"ok\"}";
    return vt_reply_json(req, MHD_HTTP_OK, body, sizeof body - 1);
}


static enum MHD_Result handle_readyz(struct vt_request *req)
{
    char body[1024], redis_state[256], kafka_state[256], catalog_state[128];
    struct vt_jsonw w;
    bool ready = true;
    struct vt_store *st = vt_api_worker_store(req->api, redis_state, sizeof redis_state);

    if (st != NULL && vt_store_ping(st, redis_state, sizeof redis_state) == 0) {
        vt_strlcpy(redis_state, "ok", sizeof redis_state);
    } else {
        ready = false;
        vt_api_worker_store_reset();
    }
    if (req->api->ingest == NULL || vt_ingest_ready(req->api->ingest, kafka_state,
                                                    sizeof kafka_state)) {
        vt_strlcpy(kafka_state, req->api->ingest ? "ok" : "disabled", sizeof kafka_state);
    } else {
        ready = false;
    }
    const struct vt_catalog *cat = req->world->catalog;
    char live_state[256];
    size_t products = vt_catalog_stats(cat)->products; /* removed products excluded */
    if (products == 0 && req->api->cfg->catalog_path[0] != '\0') {
        ready = false;
        snprintf(catalog_state, sizeof catalog_state, "no product loaded (%zu lines rejected)",
                 vt_catalog_stats(cat)->rejected);
    } else if (!vt_live_ready(req->api->live, live_state, sizeof live_state)) {
        ready = false;
        vt_strlcpy(catalog_state, live_state, sizeof catalog_state);
    } else {
        snprintf(catalog_state, sizeof catalog_state, "ok (%zu products)", products);
    }

    vt_jsonw_init(&w, body, sizeof body);
    vt_jsonw_object_begin(&w);
    vt_jsonw_key(&w, "status");
    vt_jsonw_string(&w, ready ? "ready" : "not_ready");
    vt_jsonw_key(&w, "checks");
    vt_jsonw_object_begin(&w);
    vt_jsonw_key(&w, "redis");
    vt_jsonw_string(&w, redis_state);
    vt_jsonw_key(&w, "kafka");
    vt_jsonw_string(&w, kafka_state);
    vt_jsonw_key(&w, "catalog");
    vt_jsonw_string(&w, catalog_state);
    vt_jsonw_object_end(&w);
    vt_jsonw_object_end(&w);
    return vt_reply_writer(req, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, &w);
}


/* The live updater's counters, appended to the registry's page. */
static void render_live_metrics(const struct vt_live *live, struct vt_buf *out)
{
    struct vt_live_stats s;

    vt_live_stats(live, &s);
    vt_buf_printf(out,
                  "# HELP vitrine_catalog_records_total Catalog topic records by outcome.\n"
                  "# TYPE vitrine_catalog_records_total counter\n"
                  "vitrine_catalog_records_total{outcome=\"stock\"} %" PRIu64 "\n"
                  "vitrine_catalog_records_total{outcome=\"queued\"} %" PRIu64 "\n"
                  "vitrine_catalog_records_total{outcome=\"removal\"} %" PRIu64 "\n"
                  "vitrine_catalog_records_total{outcome=\"unchanged\"} %" PRIu64 "\n"
                  "vitrine_catalog_records_total{outcome=\"invalid\"} %" PRIu64 "\n"
                  "vitrine_catalog_records_total{outcome=\"failed\"} %" PRIu64 "\n"
                  "# HELP vitrine_catalog_unknown_members_total Catalog topic records that "
                  "carried members vitrine does not know (applied without them).\n"
                  "# TYPE vitrine_catalog_unknown_members_total counter\n"
                  "vitrine_catalog_unknown_members_total %" PRIu64 "\n"
                  "# HELP vitrine_catalog_versions_total Catalog versions published after "
                  "the initial one.\n# TYPE vitrine_catalog_versions_total counter\n"
                  "vitrine_catalog_versions_total %" PRIu64 "\n"
                  "# HELP vitrine_live_refreshes_total Reads of the shared aggregates by "
                  "result.\n# TYPE vitrine_live_refreshes_total counter\n"
                  "vitrine_live_refreshes_total{result=\"ok\"} %" PRIu64 "\n"
                  "vitrine_live_refreshes_total{result=\"failed\"} %" PRIu64 "\n"
                  "# HELP vitrine_live_refresh_seconds Duration of the last successful "
                  "read of the shared aggregates.\n# TYPE vitrine_live_refresh_seconds gauge\n"
                  "vitrine_live_refresh_seconds %.6f\n"
                  "# HELP vitrine_world_version Version of the published world (catalog "
                  "and aggregates).\n# TYPE vitrine_world_version gauge\n"
                  "vitrine_world_version %" PRIu64 "\n",
                  s.catalog_stock_changes, s.catalog_queued, s.catalog_removals,
                  s.catalog_unchanged, s.catalog_invalid, s.catalog_failed,
                  s.catalog_unknown_members, s.catalog_versions,
                  s.refreshes, s.refresh_failures, (double)s.last_refresh_ns / 1e9,
                  s.world_version);
}


/* The alerts thread's counters (left out when there are no alert rules). */
static void render_alert_metrics(const struct vt_alerting *alerting, struct vt_buf *out)
{
    static const char *const per_rule[] = {"fired", "resolved", "merged"};
    struct vt_alerting_stats s;

    vt_alerting_stats(alerting, &s);
    if (!s.running)
        return;
    vt_buf_printf(out,
                  "# HELP vitrine_alerts_leader 1 while this instance evaluates the alert "
                  "rules.\n# TYPE vitrine_alerts_leader gauge\n"
                  "vitrine_alerts_leader %d\n"
                  "# HELP vitrine_alert_evaluations_total Evaluations of the alert rules by "
                  "result.\n# TYPE vitrine_alert_evaluations_total counter\n"
                  "vitrine_alert_evaluations_total{result=\"ok\"} %" PRIu64 "\n"
                  "vitrine_alert_evaluations_total{result=\"failed\"} %" PRIu64 "\n"
                  "# HELP vitrine_alert_evaluation_seconds Duration of the last evaluation.\n"
                  "# TYPE vitrine_alert_evaluation_seconds gauge\n"
                  "vitrine_alert_evaluation_seconds %.6f\n",
                  s.leader ? 1 : 0, s.evaluations - s.evaluation_errors, s.evaluation_errors,
                  (double)s.last_evaluation_ns / 1e9);
    for (size_t k = 0; k < sizeof per_rule / sizeof per_rule[0]; k++) {
        vt_buf_printf(out, "# HELP vitrine_alerts_%s_total Alert series %s by this "
                      "instance, by rule.\n# TYPE vitrine_alerts_%s_total counter\n",
                      per_rule[k], per_rule[k], per_rule[k]);
        for (size_t r = 0; r < s.n_rules; r++) {
            uint64_t v = s.merged[r];
            if (k == 0)
                v = s.fired[r];
            else if (k == 1)
                v = s.resolved[r];
            vt_buf_printf(out, "vitrine_alerts_%s_total{rule=\"%s\"} %" PRIu64 "\n",
                          per_rule[k], s.rule_names[r], v);
        }
    }
    vt_buf_printf(out, "# HELP vitrine_alerts_active Open alert series at the last "
                  "evaluation, by rule.\n# TYPE vitrine_alerts_active gauge\n");
    for (size_t r = 0; r < s.n_rules; r++)
        vt_buf_printf(out, "vitrine_alerts_active{rule=\"%s\"} %" PRIu64 "\n",
                      s.rule_names[r], s.active[r]);
    vt_buf_printf(out,
                  "# HELP vitrine_alert_webhook_total Alert messages for the webhook by "
                  "outcome.\n# TYPE vitrine_alert_webhook_total counter\n"
                  "vitrine_alert_webhook_total{outcome=\"queued\"} %" PRIu64 "\n"
                  "vitrine_alert_webhook_total{outcome=\"delivered\"} %" PRIu64 "\n"
                  "vitrine_alert_webhook_total{outcome=\"retried\"} %" PRIu64 "\n"
                  "vitrine_alert_webhook_total{outcome=\"failed\"} %" PRIu64 "\n"
                  "vitrine_alert_webhook_total{outcome=\"dropped\"} %" PRIu64 "\n",
                  s.webhook.queued, s.webhook.delivered, s.webhook.retried, s.webhook.failed,
                  s.webhook.dropped);
}


static enum MHD_Result handle_metrics(struct vt_request *req)
{
    struct vt_buf out;
    enum MHD_Result r;

    /* The catalog changes with the catalog topic: report the request's version. */
    const struct vt_catalog_stats *cs = vt_catalog_stats(req->world->catalog);
    vt_metrics_catalog(cs->products, cs->rejected);

    vt_buf_init(&out, METRICS_MAX);
    vt_metrics_render(&out);
    render_live_metrics(req->api->live, &out);
    render_alert_metrics(req->api->alerting, &out);
    if (out.overflow) {
        vt_buf_free(&out);
        return vt_reply_error(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "INTERNAL", false,
                              "the metrics page exceeds %d bytes", METRICS_MAX);
    }
    /* The response takes ownership of the buffer and frees it. */
    r = reply_text(req, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", out.data,
                   out.len, MHD_RESPMEM_MUST_FREE);
    if (r == MHD_NO && req->status == 0)
        vt_buf_free(&out);
    return r;
}


static enum MHD_Result handle_openapi(struct vt_request *req)
{
    if (req->api->openapi == NULL)
        return vt_reply_error(req, MHD_HTTP_NOT_FOUND, "NOT_FOUND", false,
                              "the OpenAPI file %s could not be read at start",
                              req->api->cfg->openapi_path);
    return reply_text(req, MHD_HTTP_OK, "application/yaml", req->api->openapi,
                      req->api->openapi_len, MHD_RESPMEM_PERSISTENT);
}


/* ---- the dashboard's files (include/vitrine/ui.h) ---- */

static enum MHD_Result reply_ui(struct vt_request *req, const struct vt_ui_asset *asset)
{
    const char *if_none_match = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                                            MHD_HTTP_HEADER_IF_NONE_MATCH);
    bool not_modified = vt_ui_not_modified(asset, if_none_match);

    return queue(req, not_modified ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK,
                 vt_ui_response(asset, not_modified));
}


/* /ui without the slash: the page's relative links need the slash. */
static enum MHD_Result handle_ui_redirect(struct vt_request *req)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL,
                                                                MHD_RESPMEM_PERSISTENT);

    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, "/ui/");
    return queue(req, MHD_HTTP_PERMANENT_REDIRECT, resp);
}


static enum MHD_Result handle_ui_index(struct vt_request *req)
{
    const struct vt_ui_asset *asset = vt_ui_find(VT_UI_INDEX, strlen(VT_UI_INDEX));

    if (asset == NULL)
        return vt_reply_error(req, MHD_HTTP_NOT_FOUND, "NOT_FOUND", false,
                              "this build has no dashboard page %s", VT_UI_INDEX);
    return reply_ui(req, asset);
}


static enum MHD_Result handle_ui_asset(struct vt_request *req)
{
    const struct vt_ui_asset *asset = vt_ui_find(req->id, req->id_len);

    if (asset == NULL)
        return vt_reply_error(req, MHD_HTTP_NOT_FOUND, "NOT_FOUND", false,
                              "no dashboard file at this path; the dashboard is at /ui/");
    return reply_ui(req, asset);
}


/* ---- routing ---- */

enum access { ACCESS_PUBLIC, ACCESS_STOREFRONT, ACCESS_ANALYST };

typedef enum MHD_Result (*route_handler)(struct vt_request *req);

struct route {
    const char *path; /* template; one "{...}" stands for one path segment */
    const char *method;
    enum vt_route metric;
    enum access access;
    route_handler handler;
};

static const struct route routes[] = {
    {"/v1/sessions/{id}/segment", "GET", VT_ROUTE_SEGMENT, ACCESS_STOREFRONT,
     vt_handle_segment},
    {"/v1/sessions/{id}/recommendations", "GET", VT_ROUTE_RECOMMENDATIONS, ACCESS_STOREFRONT,
     vt_handle_recommendations},
    {"/v1/sessions/{id}/rerank", "POST", VT_ROUTE_RERANK, ACCESS_STOREFRONT, vt_handle_rerank},
    {"/v1/products/{id}/similar", "GET", VT_ROUTE_SIMILAR, ACCESS_STOREFRONT,
     vt_handle_similar},
    {"/v1/trending", "GET", VT_ROUTE_TRENDING, ACCESS_STOREFRONT, vt_handle_trending},
    {"/v1/profiles/{id}", "GET", VT_ROUTE_PROFILE_GET, ACCESS_ANALYST, vt_handle_profile_get},
    {"/v1/profiles/{id}", "DELETE", VT_ROUTE_PROFILE_DELETE, ACCESS_ANALYST,
     vt_handle_profile_delete},
    {"/v1/stats/products/{id}", "GET", VT_ROUTE_STATS_PRODUCT, ACCESS_ANALYST,
     vt_handle_stats_product},
    {"/v1/stats/placements/{name}", "GET", VT_ROUTE_STATS_PLACEMENT, ACCESS_ANALYST,
     vt_handle_stats_placement},
    {"/v1/alerts", "GET", VT_ROUTE_ALERTS, ACCESS_ANALYST, vt_handle_alerts_list},
    {"/v1/alerts/{id}", "GET", VT_ROUTE_ALERT_GET, ACCESS_ANALYST, vt_handle_alert_get},
    {"/v1/alerts/{id}/ack", "POST", VT_ROUTE_ALERT_ACK, ACCESS_ANALYST, vt_handle_alert_ack},
    {"/v1/profiles/{id}/recommendations", "GET", VT_ROUTE_PROFILE_RECOMMENDATIONS,
     ACCESS_ANALYST, vt_handle_recommendations_preview},
    {"/v1/stats/segments", "GET", VT_ROUTE_STATS_SEGMENTS, ACCESS_ANALYST,
     vt_handle_stats_segments},
    {"/v1/visitors/{id}", "DELETE", VT_ROUTE_VISITOR_DELETE, ACCESS_ANALYST,
     vt_handle_visitor_delete},
    /* The dashboard's files need no token; its data calls do. */
    {"/ui", "GET", VT_ROUTE_UI, ACCESS_PUBLIC, handle_ui_redirect},
    {"/ui/", "GET", VT_ROUTE_UI, ACCESS_PUBLIC, handle_ui_index},
    {"/ui/{asset}", "GET", VT_ROUTE_UI, ACCESS_PUBLIC, handle_ui_asset},
    {"/healthz", "GET", VT_ROUTE_HEALTHZ, ACCESS_PUBLIC, handle_healthz},
    {"/readyz", "GET", VT_ROUTE_READYZ, ACCESS_PUBLIC, handle_readyz},
    {"/metrics", "GET", VT_ROUTE_METRICS, ACCESS_PUBLIC, handle_metrics},
    {"/openapi.yaml", "GET", VT_ROUTE_OPENAPI, ACCESS_PUBLIC, handle_openapi},
};

#define ROUTE_COUNT (sizeof routes / sizeof routes[0])

size_t vt_api_route_count(void)
{
    return ROUTE_COUNT;
}


struct vt_api_route_info vt_api_route_at(size_t i)
{
    struct vt_api_route_info info = {routes[i].path, routes[i].method};
    return info;
}

/* Does url match the route's shape? On a match with an id, *id and *id_len point into url.
 * The id segment may be empty or invalid here; the handler validates it. */
static bool route_matches(const struct route *rt, const char *url, const char **id,
                          size_t *id_len)
{
    const char *hole = strchr(rt->path, '{');
    const char *hole_end = hole ? strchr(hole, '}') : NULL;
    size_t plen;

    if (hole == NULL || hole_end == NULL)
        return strcmp(url, rt->path) == 0;
    plen = (size_t)(hole - rt->path);
    if (strncmp(url, rt->path, plen) != 0)
        return false;

    const char *start = url + plen;
    const char *slash = strchr(start, '/');
    size_t len = slash ? (size_t)(slash - start) : strlen(start);
    const char *rest = start + len;

    if (strcmp(rest, hole_end + 1) != 0)
        return false;
    *id = start;
    *id_len = len;
    return true;
}


/* The metric label of the route a path belongs to, whatever the method. */
static enum vt_route route_of_path(const char *url)
{
    for (size_t i = 0; i < ROUTE_COUNT; i++) {
        const char *id;
        size_t id_len;
        if (route_matches(&routes[i], url, &id, &id_len))
            return routes[i].metric;
    }
    return VT_ROUTE_OTHER;
}


static bool method_is(const char *method, const char *expected)
{
    /* HEAD is served like GET; libmicrohttpd drops the body. */
    if (strcmp(expected, "GET") == 0 && strcmp(method, "HEAD") == 0)
        return true;
    return strcmp(method, expected) == 0;
}


/* Compare two strings in time independent of where they differ. */
static bool secret_equal(const char *given, size_t given_len, const char *secret)
{
    size_t slen = strlen(secret);
    unsigned char diff = (unsigned char)(given_len != slen);

    for (size_t i = 0; i < slen; i++)
        diff |= (unsigned char)(secret[i] ^ (i < given_len ? given[i] : 0));
    return diff == 0;
}


static bool authorized(const struct vt_request *req, enum access access)
{
    const struct vt_config *cfg = req->api->cfg;
    const char *storefront = cfg->http_token_storefront;
    const char *analyst = cfg->http_token_analyst;
    const char *header = NULL;
    size_t len = 0;

    if (access == ACCESS_PUBLIC)
        return true;
    if (access == ACCESS_STOREFRONT && storefront[0] == '\0')
        return true;
    if (access == ACCESS_ANALYST && analyst[0] == '\0')
        return true;

    /* NOTE: libmicrohttpd 0.9.75 ends a header value at a NUL byte, so "Bearer <token>\0x"
     * passes; the client then sent the whole token, so it gains nothing. */
    header = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
                                         MHD_HTTP_HEADER_AUTHORIZATION);
    len = header != NULL ? strlen(header) : 0;
    /* "Bearer" 1*SP token (RFC 6750, section 2.1); the scheme name is case-insensitive
     * (RFC 7235, section 2.1). */
    if (header == NULL || len < 7 || !vt_strncaseeq(header, "Bearer ", 7))
        return false;
    header += 7;
    len -= 7;
    while (len > 0 && header[0] == ' ') {
        header++;
        len--;
    }

    /* The analyst token also opens storefront endpoints, for the dashboard. */
    bool ok = analyst[0] != '\0' && secret_equal(header, len, analyst);
    if (access == ACCESS_STOREFRONT && storefront[0] != '\0')
        ok |= secret_equal(header, len, storefront);
    return ok;
}


static enum MHD_Result dispatch(struct vt_request *req, const char *url)
{
    char allow[64] = "";
    bool path_known = false;

    for (size_t i = 0; i < ROUTE_COUNT; i++) {
        const struct route *rt = &routes[i];
        const char *id = NULL;
        size_t id_len = 0;

        if (!route_matches(rt, url, &id, &id_len))
            continue;
        path_known = true;
        req->route = rt->metric;
        if (!method_is(req->method, rt->method)) {
            size_t o = strlen(allow);
            snprintf(allow + o, sizeof allow - o, "%s%s", o ? ", " : "", rt->method);
            continue;
        }
        if (!authorized(req, rt->access))
            return vt_reply_error(req, MHD_HTTP_UNAUTHORIZED, "UNAUTHENTICATED", false,
                                  "missing or invalid bearer token; send Authorization: "
                                  "Bearer <token>");
        req->id = id;
        req->id_len = id_len;
        return rt->handler(req);
    }

    if (path_known) {
        struct MHD_Response *resp;
        char body[256];
        struct vt_jsonw w;

        vt_jsonw_init(&w, body, sizeof body);
        vt_jsonw_object_begin(&w);
        vt_jsonw_key(&w, "error");
        vt_jsonw_object_begin(&w);
        vt_jsonw_key(&w, "code");
        vt_jsonw_string(&w, "METHOD_NOT_ALLOWED");
        vt_jsonw_key(&w, "message");
        vt_jsonw_string(&w, "method not allowed on this path; see the Allow header");
        vt_jsonw_key(&w, "retriable");
        vt_jsonw_bool(&w, false);
        vt_jsonw_object_end(&w);
        vt_jsonw_object_end(&w);
        int64_t len = vt_jsonw_finish(&w);
        resp = MHD_create_response_from_buffer(len > 0 ? (size_t)len : 0, body,
                                               MHD_RESPMEM_MUST_COPY);
        if (resp == NULL)
            return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
        return queue(req, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
    }
    req->route = VT_ROUTE_OTHER;
    return vt_reply_error(req, MHD_HTTP_NOT_FOUND, "NOT_FOUND", false,
                          "no endpoint at this path; see /openapi.yaml for the API");
}


static enum MHD_Result add_length(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    size_t *total = cls;

    (void)kind;
    *total += strlen(key) + (value ? strlen(value) + 1 : 0) + 1;
    return MHD_YES;
}


/* Length of the path plus the decoded query arguments, close to the request target's. */
static size_t request_target_length(struct MHD_Connection *conn, const char *url)
{
    size_t total = strlen(url);

    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, add_length, &total);
    return total;
}


struct query_scan {
    const char *names[QUERY_PARAMS_MAX];
    size_t count;
    const char *repeated; /* the first name given twice, or NULL */
};

static enum MHD_Result scan_query_name(void *cls, enum MHD_ValueKind kind, const char *key,
                                       const char *value)
{
    struct query_scan *scan = cls;

    (void)kind;
    (void)value;
    if (key[0] == '\0')
        return MHD_YES; /* "&&" or "=x": no parameter any handler reads */
    for (size_t i = 0; i < scan->count && i < QUERY_PARAMS_MAX; i++) {
        if (strcmp(scan->names[i], key) == 0) {
            scan->repeated = key;
            return MHD_NO;
        }
    }
    if (scan->count < QUERY_PARAMS_MAX)
        scan->names[scan->count] = key;
    scan->count++;
    return scan->count > QUERY_PARAMS_MAX ? MHD_NO : MHD_YES;
}


/* Check that the query has at most QUERY_PARAMS_MAX parameters and no repeated one. The
 * handlers read only the first value of a name, so a client that meant another one would
 * get a response to a request it did not make. Returns true when the query passes, and
 * otherwise queues a 400 into *reply and returns false. */
static bool query_acceptable(struct vt_request *req, enum MHD_Result *reply)
{
    struct query_scan scan = {.count = 0};

    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, scan_query_name, &scan);
    if (scan.count > QUERY_PARAMS_MAX) {
        *reply = vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                                "too many query parameters: at most %d", QUERY_PARAMS_MAX);
        return false;
    }
    if (scan.repeated != NULL) {
        char name[64];
        vt_strlcpy(name, scan.repeated, sizeof name);
        *reply = vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                                "query parameter %s is given more than once; give it once "
                                "(lists are comma-separated)", name);
        return false;
    }
    return true;
}


static enum MHD_Result count_length_header(void *cls, enum MHD_ValueKind kind,
                                           const char *key, const char *value)
{
    int *count = cls;

    (void)kind;
    (void)value;
    if (strlen(key) == strlen(MHD_HTTP_HEADER_CONTENT_LENGTH) &&
        vt_strncaseeq(key, MHD_HTTP_HEADER_CONTENT_LENGTH, strlen(key)))
        (*count)++;
    return MHD_YES;
}


/* Return true when the request carries Content-Length more than once. libmicrohttpd
 * reads the first, but a proxy in front may have read another. The rest of the body would
 * then be taken for a second request (RFC 9112, section 6.3). */
static bool repeated_content_length(struct MHD_Connection *conn)
{
    int count = 0;

    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_length_header, &count);
    return count > 1;
}


/* Return the path of an absolute-form request target ("http://host/path?query"), and
 * any other target as it is. Servers must accept that form (RFC 9112, section 3.2.2). */
static const char *origin_form(const char *url)
{
    const char *authority;
    const char *path;

    if (vt_strncaseeq(url, "http://", 7))
        authority = url + 7;
    else if (vt_strncaseeq(url, "https://", 8))
        authority = url + 8;
    else
        return url;
    path = strchr(authority, '/');
    return path != NULL ? path : "/";
}


/* True when the Content-Length header announces more than REQUEST_BODY_MAX bytes. A
 * malformed header is left to libmicrohttpd, which rejects it. */
static bool declared_body_too_large(struct MHD_Connection *conn)
{
    const char *value = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_CONTENT_LENGTH);
    int64_t length;

    return value != NULL && vt_parse_int64(value, 0, INT64_MAX, &length) == 0 &&
           length > REQUEST_BODY_MAX;
}


/* Per-request state, kept in libmicrohttpd's con_cls between callbacks. */
struct request_state {
    uint64_t started_ns;
    struct vt_buf body; /* at most REQUEST_BODY_MAX bytes */
    bool body_too_large;
    bool length_repeated; /* Content-Length given more than once */
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct vt_api *api = cls;
    struct request_state *rs = *con_cls;
    struct vt_request req = {.api = api, .conn = conn, .method = method,
                             .route = VT_ROUTE_OTHER};
    enum MHD_Result r;

    (void)version;
    /* First call: headers are in; the body, if any, follows in later calls. */
    if (rs == NULL) {
        rs = calloc(1, sizeof *rs);
        if (rs == NULL)
            return MHD_NO;
        rs->started_ns = vt_monotonic_ns();
        vt_buf_init(&rs->body, REQUEST_BODY_MAX);
        *con_cls = rs;
        /* A body announced over the limit gets its 413 now, before the client sends it
         * and instead of "100 Continue". libmicrohttpd then reads no body and closes the
         * connection after the response. */
        rs->length_repeated = repeated_content_length(conn);
        rs->body_too_large = !rs->length_repeated && declared_body_too_large(conn);
        if (!rs->length_repeated && !rs->body_too_large)
            return MHD_YES;
    }
    if (*upload_data_size > 0) {
        /* Keep reading past the limit, so the 413 goes to a client that is listening. */
        if (!rs->body_too_large && vt_buf_append(&rs->body, upload_data, *upload_data_size))
            rs->body_too_large = true;
        *upload_data_size = 0;
        return MHD_YES;
    }

    req.world = vt_live_world_hold(api->live);
    if (rs->body.len > 0) {
        req.body = rs->body.data;
        req.body_len = rs->body.len;
    }

    url = origin_form(url);
    if (rs->length_repeated) {
        req.route = route_of_path(url);
        req.close_connection = true; /* what follows is not a request to trust */
        r = vt_reply_error(&req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                           "Content-Length is given more than once; give it once");
    } else if (rs->body_too_large) {
        req.route = route_of_path(url);
        r = vt_reply_error(&req, MHD_HTTP_CONTENT_TOO_LARGE, "PAYLOAD_TOO_LARGE", false,
                           "request body exceeds %d bytes", REQUEST_BODY_MAX);
    }
    else if (request_target_length(conn, url) > URL_MAX)
        r = vt_reply_error(&req, MHD_HTTP_URI_TOO_LONG, "URI_TOO_LONG", false,
                           "request path and query exceed %d bytes", URL_MAX);
    else if (query_acceptable(&req, &r))
        r = dispatch(&req, url);
    vt_live_world_release(api->live);
    vt_metrics_http(req.route, req.status ? req.status : 500,
                    vt_monotonic_ns() - rs->started_ns);
    return r;
}


static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct vt_api *api = cls;
    struct request_state *rs = *con_cls;

    (void)toe;
    /* The response is sent (or the connection is closing): the next request gets a
     * whole http.request_timeout_s. */
    vt_deadlines_restart(api->deadlines, conn);
    if (rs != NULL) {
        vt_buf_free(&rs->body);
        free(rs);
    }
    *con_cls = NULL;
}


static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}


/* Decode %XX escapes in the path and in query keys and values, in place. libmicrohttpd
 * hands the result on as a C string, so a decoded NUL would cut an id short ("a%00b"
 * would read as "a"); %00 therefore becomes DEL (0x7F), a control byte that every id and
 * parameter check rejects as it would reject NUL. In the path (the string that starts with
 * '/'), %2F and %25 stay encoded, and the handlers decode both (vt_api_path_id). So a
 * product id containing '/' stays one path segment, and "%252F" is not decoded twice. */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    size_t r = 0, w = 0;
    bool path = s[0] == '/';

    (void)cls;
    (void)conn;
    while (s[r] != '\0') {
        int hi = s[r] == '%' ? hex_value(s[r + 1]) : -1;
        int lo = hi >= 0 ? hex_value(s[r + 2]) : -1;
        bool kept = path && hi == 2 && (lo == 15 || lo == 5);

        if (hi >= 0 && lo >= 0 && !kept) {
            int byte = hi * 16 + lo;
            s[w++] = (char)(byte == 0 ? 0x7F : byte);
            r += 3;
        } else {
            s[w++] = s[r++];
        }
    }
    s[w] = '\0';
    return w;
}


__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt,
                                                          va_list ap)
{
    char line[512];

    (void)cls;
    vsnprintf(line, sizeof line, fmt, ap);
    VT_WARN("HTTP", "%s", line);
}


static char *read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    struct vt_buf b;
    char chunk[8192];
    size_t n;

    if (f == NULL)
        return NULL;
    vt_buf_init(&b, 4 * 1024 * 1024);
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        vt_buf_append(&b, chunk, n);
    fclose(f);
    if (b.overflow || b.data == NULL) {
        vt_buf_free(&b);
        return NULL;
    }
    *len_out = b.len;
    return b.data;
}


struct vt_api *vt_api_start(const struct vt_config *cfg, const struct vt_api_parts *parts,
                            char *err, size_t errsize)
{
    struct vt_api *api = calloc(1, sizeof *api);
    struct sockaddr_storage addr;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                         MHD_USE_ITC;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned int threads = cfg->http_threads > 0 ? (unsigned)cfg->http_threads
                                                 : (unsigned)(cpus > 0 ? cpus : 1);

    if (api == NULL) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    api->cfg = cfg;
    api->live = parts->live;
    api->ingest = parts->ingest;
    api->rules = parts->rules;
    api->segments = parts->segments;
    api->decisions = parts->decisions;
    api->alerting = parts->alerting;
    api->openapi = read_file(cfg->openapi_path, &api->openapi_len);
    if (api->openapi == NULL)
        VT_WARN("HTTP", "cannot read OpenAPI file %s (set http.openapi_path); /openapi.yaml "
                "will answer 404", cfg->openapi_path);

    api->deadlines = vt_deadlines_start(cfg->http_request_timeout_s, err, errsize);
    if (api->deadlines == NULL)
        goto fail;

    memset(&addr, 0, sizeof addr);
    struct sockaddr_in *a4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&addr;
    if (inet_pton(AF_INET, cfg->http_bind, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)cfg->http_port);
    } else if (inet_pton(AF_INET6, cfg->http_bind, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)cfg->http_port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errsize, "invalid value \"%s\" for setting http.bind: expected an IPv4 "
                 "or IPv6 address such as 127.0.0.1, 0.0.0.0 or ::", cfg->http_bind);
        goto fail;
    }

    api->daemon = MHD_start_daemon(
        flags, (uint16_t)cfg->http_port, NULL, NULL, on_request, api,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, threads,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->http_connection_limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)cfg->http_connection_limit_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)cfg->http_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, api,
        MHD_OPTION_NOTIFY_CONNECTION, vt_deadlines_notify, api->deadlines,
        MHD_OPTION_END);
    if (api->daemon == NULL) {
        snprintf(err, errsize, "cannot listen on %s port %lld: %s (is the port in use? set "
                 "VITRINE_HTTP_PORT)", cfg->http_bind, (long long)cfg->http_port,
                 strerror(errno));
        goto fail;
    }
    VT_INFO("HTTP", "listening on %s port %lld with %u worker threads, at most %lld "
            "connections (%lld per client address, 0: no limit)", cfg->http_bind,
            (long long)cfg->http_port, threads, (long long)cfg->http_connection_limit,
            (long long)cfg->http_connection_limit_per_ip);
    return api;

fail:
    vt_deadlines_stop(api->deadlines);
    free(api->openapi);
    free(api);
    return NULL;
}


void vt_api_stop(struct vt_api *api)
{
    if (api == NULL)
        return;
    MHD_quiesce_daemon(api->daemon);
    MHD_stop_daemon(api->daemon);
    vt_deadlines_stop(api->deadlines);
    free(api->openapi);
    free(api);
    VT_INFO("HTTP", "stopped");
}
