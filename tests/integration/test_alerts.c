/*
 * Alerts through Kafka, Redis and HTTP:
 *
 *  - the real REES46 stream, replayed at a high speed factor with the shipped example
 *    rules, raises no alert. An injected influencer surge of one brand and a fast sell-out
 *    of one product each raise exactly one alert that names the cause, within the window
 *    plus an evaluation period, and both resolve after they end;
 *  - the evaluating instance is killed and another one takes the lease over, continuing
 *    the open episode instead of firing it again;
 *  - a webhook receiver that never responds delays nothing but its own deliveries.
 *
 * Alerts are judged on stream time (the newest event time, see docs/alerts.md), so a
 * replay at 240 times the recorded pace runs a whole evaluation cycle in a second.
 * The tests print what they measure on lines that start with "measured:".
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "vitrine/util.h"

extern char **environ;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/* ---- a webhook receiver on loopback ---- */

#define RECEIVER_BODIES_MAX 64
#define RECEIVER_HELD_MAX 32

struct receiver {
    int listen_fd;
    int port;
    bool answer; /* false: read each request and never respond */
    atomic_bool stop;
    pthread_t thread;
    pthread_mutex_t lock;
    size_t requests;
    char *bodies[RECEIVER_BODIES_MAX];
    size_t n_bodies;
    int held[RECEIVER_HELD_MAX];
    size_t n_held;
};


/* Read one request (headers and Content-Length body) from fd; returns the body (malloc'd)
 * or NULL. */
static char *read_request(int fd)
{
    char buf[65536];
    size_t len = 0;
    char *end = NULL;
    long body_len = 0;

    while (len < sizeof buf - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0)
            return NULL;
        ssize_t got = read(fd, buf + len, sizeof buf - 1 - len);
        if (got <= 0)
            return NULL;
        len += (size_t)got;
        buf[len] = '\0';
        end = strstr(buf, "\r\n\r\n");
        if (end == NULL)
            continue;
        const char *cl = strcasestr(buf, "\r\nContent-Length:");
        body_len = cl != NULL ? strtol(cl + 17, NULL, 10) : 0;
        if (len >= (size_t)(end + 4 - buf) + (size_t)body_len)
            break;
    }
    if (end == NULL)
        return NULL;
    char *body = malloc((size_t)body_len + 1);
    if (body != NULL) {
        memcpy(body, end + 4, (size_t)body_len);
        body[body_len] = '\0';
    }
    return body;
}


static void *receiver_main(void *arg)
{
    struct receiver *r = arg;

    while (!atomic_load(&r->stop)) {
        struct pollfd p = {.fd = r->listen_fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int fd = accept(r->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        char *body = read_request(fd);
        pthread_mutex_lock(&r->lock);
        r->requests++;
        if (body != NULL && r->n_bodies < RECEIVER_BODIES_MAX)
            r->bodies[r->n_bodies++] = body;
        else
            free(body);
        if (!r->answer && r->n_held < RECEIVER_HELD_MAX) {
            r->held[r->n_held++] = fd;
            fd = -1;
        }
        pthread_mutex_unlock(&r->lock);
        if (fd >= 0) {
            static const char reply[] =
                "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            if (write(fd, reply, sizeof reply - 1) < 0)
                cr_log_warn("receiver: write: %s", strerror(errno));
            close(fd);
        }
    }
    return NULL;
}


static void receiver_start(struct receiver *r, bool answer)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t len = sizeof addr;

    memset(r, 0, sizeof *r);
    r->answer = answer;
    pthread_mutex_init(&r->lock, NULL);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(r->listen_fd >= 0, "socket: %s", strerror(errno));
    cr_assert(bind(r->listen_fd, (struct sockaddr *)&addr, sizeof addr) == 0, "bind: %s",
              strerror(errno));
    cr_assert(listen(r->listen_fd, 16) == 0, "listen: %s", strerror(errno));
    getsockname(r->listen_fd, (struct sockaddr *)&addr, &len);
    r->port = ntohs(addr.sin_port);
    cr_assert(pthread_create(&r->thread, NULL, receiver_main, r) == 0);
}


static void receiver_stop(struct receiver *r)
{
    atomic_store(&r->stop, true);
    pthread_join(r->thread, NULL);
    close(r->listen_fd);
    for (size_t i = 0; i < r->n_held; i++)
        close(r->held[i]);
    for (size_t i = 0; i < r->n_bodies; i++)
        free(r->bodies[i]);
    pthread_mutex_destroy(&r->lock);
}


/* ---- reading alerts ---- */

/* GET /v1/alerts?state=all; the caller deletes the result. */
static cJSON *all_alerts(const struct harness *h)
{
    return harness_get_json(h, "/v1/alerts?state=all&limit=100", 200);
}


static const char *str_of(const cJSON *obj, const char *name)
{
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(obj, name));
    return s != NULL ? s : "";
}


/* The alert of rule `rule` in list, or NULL; *count receives how many there are. */
static const cJSON *alert_of_rule(const cJSON *list, const char *rule, int *count)
{
    const cJSON *a, *found = NULL;

    *count = 0;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(list, "alerts")) {
        if (strcmp(str_of(a, "rule"), rule) == 0) {
            (*count)++;
            found = a;
        }
    }
    return found;
}


static const cJSON *driver_of(const cJSON *alert, const char *dimension, const char *value)
{
    const cJSON *d;

    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(alert, "drivers")) {
        if (strcmp(str_of(d, "dimension"), dimension) == 0 &&
            strcmp(str_of(d, "value"), value) == 0)
            return d;
    }
    return NULL;
}


static bool has_driver(const cJSON *alert, const char *dimension, const char *value)
{
    return driver_of(alert, dimension, value) != NULL;
}


static double number_of(const cJSON *obj, const char *name)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(obj, name));
}


static int64_t stream_time_of(const cJSON *alert)
{
    const char *s = str_of(alert, "stream_time");
    int64_t ms = 0;

    cr_assert(vt_time_parse_iso8601(s, strlen(s), &ms) == 0, "alert stream_time '%s'", s);
    return ms;
}


/* The stream clock the alert leader judges by (0 before the first event). */
static int64_t stream_clock(const struct harness *h)
{
    char *v = harness_redis(h, "HGET %s{agg}:al:clock event", h->prefix);
    int64_t ms = strtoll(v, NULL, 10);
    free(v);
    return ms;
}


struct topic_count {
    size_t fired, resolved;
};


static void count_alert_message(const char *key, size_t key_len, const char *value, size_t len,
                                const char *reason, void *arg)
{
    struct topic_count *c = arg;
    cJSON *msg = cJSON_ParseWithLength(value, len);
    const char *event = str_of(msg, "event");

    (void)key, (void)key_len, (void)reason;
    if (strcmp(event, "fired") == 0)
        c->fired++;
    else if (strcmp(event, "resolved") == 0)
        c->resolved++;
    cJSON_Delete(msg);
}


/* ---- the real stream ---- */

#define SURGE_PRODUCTS_MAX 24
#define STOCKED_MAX 30

struct brand_count {
    char brand[64];
    size_t products;
};


struct real_setup {
    char surge_brand[64];
    char surge_products[SURGE_PRODUCTS_MAX][32];
    size_t n_surge_products;
    char sellout_product[32];
    char sellout_brand[64];
    char stocked[STOCKED_MAX][32]; /* the products bought most often in the sample */
    size_t n_stocked;
    int64_t jan_start_ms;
};


struct product_count {
    char id[32];
    int purchases;
};


static const char *const MONTHS[] = {"2022_oct", "2022_nov", "2022_dec", "2023_jan",
                                     "2023_feb"};


/* Purchases per product in the five REES46 files, and the first time of the January file.
 * Columns: event_time,event_type,product_id,price,user_id,user_session. */
static void read_sample(const char *dir, struct real_setup *s, struct product_count **out,
                        size_t *n_out)
{
    size_t n = 0, cap = 1024;
    struct product_count *counts = calloc(cap, sizeof *counts);

    for (size_t m = 0; m < 5; m++) {
        char path[1024], line[1024];
        snprintf(path, sizeof path, "%s/rees46_cosmetics/customer_data_%s.csv", dir, MONTHS[m]);
        FILE *f = fopen(path, "r");
        cr_assert_not_null(f, "cannot read %s: %s", path, strerror(errno));
        bool header = true;
        while (fgets(line, sizeof line, f) != NULL) {
            if (header) {
                header = false;
                continue;
            }
            char *fields[6] = {0};
            char *save = NULL, *tok = strtok_r(line, ",\n", &save);
            for (int i = 0; tok != NULL && i < 6; i++, tok = strtok_r(NULL, ",\n", &save))
                fields[i] = tok;
            if (fields[2] == NULL)
                continue;
            if (m == 3 && s->jan_start_ms == 0) {
                int64_t ms;
                char iso[32];
                /* "2023-01-01 00:00:00 UTC" */
                snprintf(iso, sizeof iso, "%.10sT%.8sZ", fields[0], fields[0] + 11);
                cr_assert(vt_time_parse_iso8601(iso, strlen(iso), &ms) == 0, "time %s", iso);
                s->jan_start_ms = ms;
            }
            if (strcmp(fields[1], "purchase") != 0)
                continue;
            size_t i = 0;
            while (i < n && strcmp(counts[i].id, fields[2]) != 0)
                i++;
            if (i == n) {
                if (n == cap) {
                    cap *= 2;
                    counts = realloc(counts, cap * sizeof *counts);
                    cr_assert_not_null(counts);
                }
                vt_strlcpy(counts[n].id, fields[2], sizeof counts[n].id);
                counts[n++].purchases = 0;
            }
            counts[i].purchases++;
        }
        fclose(f);
    }
    *out = counts;
    *n_out = n;
}


static int by_purchases(const void *a, const void *b)
{
    const struct product_count *x = a, *y = b;
    return (y->purchases > x->purchases) - (y->purchases < x->purchases);
}


static bool purchased(const struct product_count *counts, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(counts[i].id, id) == 0)
            return true;
    }
    return false;
}


/* Choose from the catalog: the brand with the most products for the surge, and for the
 * sell-out a product of another brand without purchases in the sample. */
static void choose_from_catalog(const char *path, struct real_setup *s,
                                const struct product_count *counts, size_t n_counts)
{
    size_t n_brands = 0, cap = 512;
    struct brand_count *brands = calloc(cap, sizeof *brands);
    char *line = NULL;
    size_t line_cap = 0;
    FILE *f = fopen(path, "r");

    cr_assert_not_null(f, "cannot read the catalog %s: %s", path, strerror(errno));
    while (getline(&line, &line_cap, f) > 0) {
        cJSON *p = cJSON_Parse(line);
        const char *brand = str_of(p, "brand");
        if (brand[0] != '\0' && strlen(brand) < sizeof brands[0].brand) {
            size_t i = 0;
            while (i < n_brands && strcmp(brands[i].brand, brand) != 0)
                i++;
            if (i == n_brands) {
                if (n_brands == cap) {
                    cap *= 2;
                    brands = realloc(brands, cap * sizeof *brands);
                    cr_assert_not_null(brands);
                }
                vt_strlcpy(brands[n_brands++].brand, brand, sizeof brands[0].brand);
                brands[i].products = 0;
            }
            brands[i].products++;
        }
        cJSON_Delete(p);
    }
    size_t top = 0;
    for (size_t i = 1; i < n_brands; i++) {
        if (brands[i].products > brands[top].products)
            top = i;
    }
    cr_assert(n_brands > 1, "the catalog %s names fewer than two brands", path);
    vt_strlcpy(s->surge_brand, brands[top].brand, sizeof s->surge_brand);
    free(brands);

    rewind(f);
    while (getline(&line, &line_cap, f) > 0) {
        cJSON *p = cJSON_Parse(line);
        const char *brand = str_of(p, "brand"), *id = str_of(p, "id");
        if (strlen(id) < sizeof s->sellout_product) {
            if (strcmp(brand, s->surge_brand) == 0 && s->n_surge_products < SURGE_PRODUCTS_MAX)
                vt_strlcpy(s->surge_products[s->n_surge_products++], id,
                           sizeof s->surge_products[0]);
            else if (brand[0] != '\0' && strcmp(brand, s->surge_brand) != 0 &&
                     s->sellout_product[0] == '\0' && strlen(brand) < sizeof s->sellout_brand &&
                     !purchased(counts, n_counts, id)) {
                vt_strlcpy(s->sellout_product, id, sizeof s->sellout_product);
                vt_strlcpy(s->sellout_brand, brand, sizeof s->sellout_brand);
            }
        }
        cJSON_Delete(p);
    }
    free(line);
    fclose(f);
    cr_assert(s->n_surge_products > 0 && s->sellout_product[0] != '\0');
}


/* Replay the five months merged by time with the injected records of `inject`. Recorded
 * gaps up to a minute are kept, so that stream time runs evenly at the speed factor.
 * Longer ones (between the months) shrink to a minute. */
static pid_t start_replay(const struct harness *h, const char *dir, const char *speed,
                          const char *inject, const char *log_path)
{
    char files[5][1024];
    char *argv[24];
    size_t n = 0;

    argv[n++] = (char *)VITRINE_REPLAY_BINARY;
    argv[n++] = "--brokers";
    argv[n++] = (char *)h->brokers;
    argv[n++] = "--topic";
    argv[n++] = (char *)h->topic;
    argv[n++] = "--format";
    argv[n++] = "canonical";
    argv[n++] = "--speed";
    argv[n++] = (char *)speed;
    argv[n++] = "--max-gap";
    argv[n++] = "60";
    argv[n++] = "--sort";
    for (size_t m = 0; m < 5; m++) {
        snprintf(files[m], sizeof files[m], "%s/rees46_cosmetics/customer_data_%s.csv", dir,
                 MONTHS[m]);
        argv[n++] = files[m];
    }
    argv[n++] = "--jsonl";
    argv[n++] = (char *)inject;
    argv[n] = NULL;

    return harness_spawn(VITRINE_REPLAY_BINARY, argv, environ, log_path);
}


#define SURGE_S 600          /* the surge lasts 10 minutes of stream time */
#define SURGE_EVERY_MS 2000  /* one view of the brand every 2 s */
#define SELLOUT_EVERY_MS 75000 /* one purchase of the product every 75 s */

/*
 * Write the injected records: from `start` on, for SURGE_S seconds, views of the surge
 * brand's products from one influencer's post with its campaign code, and purchases of the
 * sell-out product. Returns the time of the last purchase.
 */
static int64_t write_injection(const char *path, const struct real_setup *s, int64_t start,
                               int *views, int *purchases)
{
    FILE *f = fopen(path, "w");
    int64_t last_purchase = start;

    cr_assert_not_null(f, "cannot write %s: %s", path, strerror(errno));
    *views = *purchases = 0;
    for (int64_t t = start; t < start + SURGE_S * 1000; t += 1000) {
        if ((t - start) % SURGE_EVERY_MS == 0) {
            fprintf(f,
                    "{\"type\":\"product_view\",\"session_id\":\"surge-%d\",\"ts\":%" PRId64 ","
                    "\"products\":[{\"id\":\"%s\"}],\"campaign\":\"spring-influencer\","
                    "\"referrer\":\"https://www.instagram.com/p/C0ffee42/\"}\n",
                    *views / 4, t, s->surge_products[(size_t)*views % s->n_surge_products]);
            (*views)++;
        }
        if ((t - start) % SELLOUT_EVERY_MS == 0) {
            fprintf(f,
                    "{\"type\":\"purchase\",\"session_id\":\"buyer-%d\",\"ts\":%" PRId64 ","
                    "\"products\":[{\"id\":\"%s\",\"quantity\":1,\"price\":19.9}]}\n",
                    *purchases, t, s->sellout_product);
            (*purchases)++;
            last_purchase = t;
        }
    }
    fclose(f);
    return last_purchase;
}


/* What the test saw of one expected alert. */
struct sighting {
    char id[64];
    int64_t stream_fired_ms;    /* the alert's stream_time */
    int64_t wall_seen_ms;       /* when the test first saw it */
    int64_t stream_resolved_ms; /* stream clock when the test first saw it resolved */
};


static void note_alert(const struct harness *h, const cJSON *list, const char *rule,
                       struct sighting *s)
{
    int count;
    const cJSON *a = alert_of_rule(list, rule, &count);

    if (a == NULL)
        return;
    if (s->id[0] == '\0') {
        vt_strlcpy(s->id, str_of(a, "id"), sizeof s->id);
        s->stream_fired_ms = stream_time_of(a);
        s->wall_seen_ms = mono_ms();
    }
    if (s->stream_resolved_ms == 0 && strcmp(str_of(a, "state"), "resolved") == 0)
        s->stream_resolved_ms = stream_clock(h);
}


Test(alerts, real_stream_alerts_surge_and_sellout, .timeout = 420)
{
    const char *dir = getenv("VITRINE_TEST_DATA");
    const char *catalog = getenv("VITRINE_TEST_CATALOG");
    const char *speed = getenv("VITRINE_TEST_ALERT_SPEED");
    struct real_setup setup = {0};
    struct product_count *counts = NULL;
    size_t n_counts = 0;
    struct harness h;
    struct receiver hook;
    char catalog_topic[128], alerts_topic[128], env[6][512], replay_log[300], inject[300];
    int views, purchases;

    cr_assert(dir != NULL && catalog != NULL,
              "VITRINE_TEST_DATA and VITRINE_TEST_CATALOG are not set; run the integration "
              "tests through tests/run.sh, which converts the real catalog");
    if (speed == NULL || speed[0] == '\0')
        speed = "240";
    harness_init(&h, "alerts-real");
    read_sample(dir, &setup, &counts, &n_counts);
    qsort(counts, n_counts, sizeof *counts, by_purchases);
    choose_from_catalog(catalog, &setup, counts, n_counts);

    /* The surge and the sell-out start 40 minutes into January, inside the recorded
     * stream, so that 40 minutes of January traffic are their baseline. */
    const int64_t s0 = setup.jan_start_ms + 40 * 60 * 1000;
    const int64_t surge_end = s0 + SURGE_S * 1000;
    snprintf(inject, sizeof inject, "%s.inject.jsonl", h.log_path);
    int64_t last_purchase = write_injection(inject, &setup, s0, &views, &purchases);

    /* Stock from the catalog topic. The products bought most often in the sample get
     * little, so that the stock rule has real purchases to judge. The sell-out product
     * gets 40. */
    snprintf(catalog_topic, sizeof catalog_topic, "catalog-%s", h.name);
    snprintf(alerts_topic, sizeof alerts_topic, "alerts-%s", h.name);
    harness_producer *rk = harness_producer_new(&h);
    for (size_t i = 0; i < n_counts && i < STOCKED_MAX; i++) {
        vt_strlcpy(setup.stocked[setup.n_stocked++], counts[i].id, sizeof setup.stocked[0]);
        harness_send(rk, catalog_topic, counts[i].id, "{\"stock\":20}");
    }
    harness_send(rk, catalog_topic, setup.sellout_product, "{\"stock\":40}");
    harness_producer_close(rk);

    receiver_start(&hook, true);
    snprintf(env[0], sizeof env[0], "VITRINE_ALERTS_RULES_PATH=%s/deploy/alerts.example.json",
             VITRINE_SOURCE_DIR);
    snprintf(env[1], sizeof env[1], "VITRINE_ALERTS_PERIOD_MS=100");
    snprintf(env[2], sizeof env[2], "VITRINE_ALERTS_WEBHOOK_URL=http://127.0.0.1:%d/alerts",
             hook.port);
    snprintf(env[3], sizeof env[3], "VITRINE_KAFKA_CATALOG_TOPIC=%s", catalog_topic);
    snprintf(env[4], sizeof env[4], "VITRINE_KAFKA_ALERTS_TOPIC=%s", alerts_topic);
    snprintf(env[5], sizeof env[5], "VITRINE_CATALOG_PATH=%s", catalog);
    const char *extra[] = {env[0], env[1], env[2], env[3], env[4], env[5], NULL};
    harness_start(&h, extra);

    snprintf(replay_log, sizeof replay_log, "%s.replay", h.log_path);
    int64_t replay_started = mono_ms();
    pid_t replay = start_replay(&h, dir, speed, inject, replay_log);

    /* The ordinary stream up to the surge: no alert. */
    int64_t clock;
    while ((clock = stream_clock(&h)) < s0) {
        cr_assert(waitpid(replay, NULL, WNOHANG) == 0, "the replay ended before the surge");
        cr_assert(mono_ms() - replay_started < 300000, "the replay did not reach the surge");
        cJSON *list = all_alerts(&h);
        int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(list, "alerts"));
        cr_assert_eq(n, 0, "an alert fired on the ordinary stream: %s",
                     cJSON_PrintUnformatted(list));
        cJSON_Delete(list);
        harness_sleep_ms(50);
    }
    const int64_t s0_wall = mono_ms();

    /* The surge, the sell-out and the rest of the stream. */
    struct sighting surge = {0}, sellout = {0};
    int status = -1;
    while (waitpid(replay, &status, WNOHANG) == 0) {
        cJSON *list = all_alerts(&h);
        note_alert(&h, list, "brand-views-surge", &surge);
        note_alert(&h, list, "product-sells-out", &sellout);
        cJSON_Delete(list);
        cr_assert(mono_ms() - replay_started < 400000, "the replay did not end");
        harness_sleep_ms(50);
    }
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "vitrine-replay failed (status %d), see %s", status, replay_log);
    for (int i = 0; i < 100 && (surge.stream_resolved_ms == 0 || sellout.stream_resolved_ms == 0);
         i++) {
        cJSON *list = all_alerts(&h);
        note_alert(&h, list, "brand-views-surge", &surge);
        note_alert(&h, list, "product-sells-out", &sellout);
        cJSON_Delete(list);
        harness_sleep_ms(100);
    }

    /* Exactly two alerts, each naming its cause. */
    cJSON *list = all_alerts(&h);
    int n_alerts = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(list, "alerts"));
    int n_surge, n_sellout;
    const cJSON *a_surge = alert_of_rule(list, "brand-views-surge", &n_surge);
    const cJSON *a_sellout = alert_of_rule(list, "product-sells-out", &n_sellout);
    char *text = cJSON_PrintUnformatted(list);
    cr_assert_eq(n_alerts, 2, "expected 2 alerts, got %d: %s", n_alerts, text);
    cr_assert(n_surge == 1 && n_sellout == 1, "expected one surge and one sell-out alert: %s",
              text);
    const cJSON *series =
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(a_surge, "series"), 0);
    cr_assert_str_eq(str_of(series, "group"), setup.surge_brand, "%s", text);
    cr_assert(has_driver(a_surge, "campaign", "spring-influencer"), "no campaign driver: %s",
              text);
    cr_assert(has_driver(a_surge, "referrer", "instagram.com"), "no referrer driver: %s", text);
    cr_assert_str_eq(str_of(a_surge, "cause"), "campaign=spring-influencer", "%s", text);

    /* A driver's share is of the whole window, views without a campaign included. */
    const cJSON *campaign = driver_of(a_surge, "campaign", "spring-influencer");
    double surge_value = number_of(series, "value");
    cr_assert(surge_value > 0, "%s", text);
    cr_assert_float_eq(number_of(campaign, "share_during"),
                       number_of(campaign, "during") / surge_value, 1e-9, "%s", text);
    series = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(a_sellout, "series"), 0);
    cr_assert_str_eq(str_of(series, "group"), setup.sellout_product, "%s", text);
    cr_assert_str_eq(str_of(a_surge, "state"), "resolved", "%s", text);
    cr_assert_str_eq(str_of(a_sellout, "state"), "resolved", "%s", text);

    /* Within the window plus one evaluation period (100 ms of wall time, which the replay
     * stretches to 24 s of stream time at 240x) and one bucket (10 s). */
    int64_t period_stream = (int64_t)(100 * strtod(speed, NULL));
    int64_t surge_delay = surge.stream_fired_ms - s0;
    int64_t sellout_delay = sellout.stream_fired_ms - s0;
    cr_assert(surge_delay > 0 && surge_delay <= 300000 + period_stream + 10000,
              "surge alert after %" PRId64 " ms of stream time", surge_delay);
    cr_assert(sellout_delay > 0 && sellout_delay <= 900000 + period_stream + 10000,
              "sell-out alert after %" PRId64 " ms of stream time", sellout_delay);

    /* Delivered once fired and once resolved each, to the topic and to the webhook. */
    struct topic_count topic = {0};
    harness_consume_all(&h, alerts_topic, 5000, count_alert_message, &topic);
    cr_assert(topic.fired == 2 && topic.resolved == 2,
              "alerts topic: %zu fired, %zu resolved messages", topic.fired, topic.resolved);
    struct topic_count hooked = {0};
    for (int i = 0; i < 50; i++) {
        pthread_mutex_lock(&hook.lock);
        size_t n = hook.n_bodies;
        pthread_mutex_unlock(&hook.lock);
        if (n >= 4)
            break;
        harness_sleep_ms(100);
    }
    pthread_mutex_lock(&hook.lock);
    for (size_t i = 0; i < hook.n_bodies; i++)
        count_alert_message(NULL, 0, hook.bodies[i], strlen(hook.bodies[i]), NULL, &hooked);
    pthread_mutex_unlock(&hook.lock);
    cr_assert(hooked.fired == 2 && hooked.resolved == 2,
              "webhook: %zu fired, %zu resolved messages", hooked.fired, hooked.resolved);

    printf("measured: real stream at %sx with %d injected views of brand %s and %d purchases "
           "of product %s (brand %s)\n", speed, views, setup.surge_brand, purchases,
           setup.sellout_product, setup.sellout_brand);
    printf("measured: alerts on the ordinary stream: 0 (%.0f evaluations in %.1f s)\n",
           harness_metric(&h, "vitrine_alert_evaluations_total{result=\"ok\"}"),
           (double)(mono_ms() - replay_started) / 1000.0);
    printf("measured: surge start to alert: %.0f s of stream time (%.2f s of wall time); "
           "resolved %.0f s after the surge ended\n", (double)surge_delay / 1000.0,
           (double)(surge.wall_seen_ms - s0_wall) / 1000.0,
           (double)(surge.stream_resolved_ms - surge_end) / 1000.0);
    printf("measured: sell-out start to alert: %.0f s of stream time (%.2f s of wall time); "
           "resolved %.0f s after the last purchase\n", (double)sellout_delay / 1000.0,
           (double)(sellout.wall_seen_ms - s0_wall) / 1000.0,
           (double)(sellout.stream_resolved_ms - last_purchase) / 1000.0);
    char *surge_text = cJSON_PrintUnformatted(a_surge);
    printf("measured: surge alert: %s\n", surge_text);
    free(surge_text);
    free(text);
    cJSON_Delete(list);
    free(counts);
    harness_stop(&h, 20);
    receiver_stop(&hook);
}


/* ---- leader failover and webhook failure, on a small rule of their own ---- */

/* A rule that fires when 20 product views arrive within 10 s. */
static void write_small_rules(const struct harness *h, char *path, size_t size)
{
    const char *work = getenv("VITRINE_TEST_WORK");

    snprintf(path, size, "%s/%s.rules.json", work ? work : "/tmp", h->name);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs("{\"rules\": [{\"name\": \"views-burst\", \"event\": \"product_view\", "
          "\"window_s\": 10, \"condition\": {\"type\": \"above\", \"threshold\": 20}, "
          "\"min_volume\": 20, \"cooldown_s\": 600, \"severity\": \"warning\", "
          "\"recipients\": [\"oncall@shop.example\"], "
          "\"reaction\": \"Test rule: look at the burst.\"}]}\n", f);
    fclose(f);
}


/* n views of the products <prefix>1 to <prefix>4 of the test catalog, just now, from the
 * campaign when it is not NULL. */
static void produce_views_of(const struct harness *h, const char *session, int n,
                             const char *product_prefix, const char *campaign)
{
    harness_producer *rk = harness_producer_new(h);
    char value[512], from[128] = "";
    int64_t now = wall_ms();

    if (campaign != NULL)
        snprintf(from, sizeof from, ",\"campaign\":\"%s\"", campaign);
    for (int i = 0; i < n; i++) {
        snprintf(value, sizeof value,
                 "{\"type\":\"product_view\",\"session_id\":\"%s\",\"ts\":%" PRId64 ","
                 "\"products\":[{\"id\":\"%s%d\"}]%s}", session, now - n + i,
                 product_prefix, 1 + i % 4, from);
        harness_send(rk, h->topic, session, value);
    }
    harness_producer_close(rk);
}


static void produce_views(const struct harness *h, const char *session, int n)
{
    produce_views_of(h, session, n, "w-", NULL);
}


/* Poll until an alert of rule views-burst exists; returns it (caller deletes the list). */
static const cJSON *wait_alert(const struct harness *h, cJSON **list, int timeout_ms)
{
    int count = 0;

    for (int64_t end = mono_ms() + timeout_ms; mono_ms() < end; harness_sleep_ms(50)) {
        *list = all_alerts(h);
        const cJSON *a = alert_of_rule(*list, "views-burst", &count);
        if (a != NULL)
            return a;
        cJSON_Delete(*list);
    }
    *list = NULL;
    return NULL;
}


Test(alerts, failover_continues_open_episode, .timeout = 120)
{
    struct harness a, b;
    char rules[300], env[4][400];

    harness_init(&a, "alerts-failover");
    write_small_rules(&a, rules, sizeof rules);
    b = a;
    b.http_port = harness_free_port();
    /* Both get the same instance id, as copies of one deployment may: the lease must
     * still tell them apart. */
    if (snprintf(b.log_path, sizeof b.log_path, "%s.second", a.log_path) >=
        (int)sizeof b.log_path)
        cr_assert_fail("log path too long: %s", a.log_path);
    snprintf(env[0], sizeof env[0], "VITRINE_ALERTS_RULES_PATH=%s", rules);
    snprintf(env[1], sizeof env[1], "VITRINE_ALERTS_BUCKET_S=1");
    snprintf(env[2], sizeof env[2], "VITRINE_ALERTS_PERIOD_MS=200");
    snprintf(env[3], sizeof env[3], "VITRINE_ALERTS_LEASE_MS=1500");
    const char *extra[] = {env[0], env[1], env[2], env[3], "VITRINE_INSTANCE_ID=vitrine-0", NULL};
    harness_start(&a, extra);
    harness_start(&b, extra);

    /* Exactly one of them evaluates. */
    double la = 0, lb = 0;
    for (int i = 0; i < 100 && la + lb != 1; i++, harness_sleep_ms(100)) {
        la = harness_metric(&a, "vitrine_alerts_leader");
        lb = harness_metric(&b, "vitrine_alerts_leader");
    }
    cr_assert(la + lb == 1, "leaders: first %g, second %g", la, lb);
    struct harness *leader = la == 1 ? &a : &b, *other = la == 1 ? &b : &a;

    /* An episode opens on the leader. */
    produce_views(&a, "burst-1", 40);
    cJSON *list = NULL;
    const cJSON *alert = wait_alert(&a, &list, 15000);
    cr_assert_not_null(alert, "no alert for 40 views in 10 s");
    char id[64];
    vt_strlcpy(id, str_of(alert, "id"), sizeof id);
    cJSON_Delete(list);

    /* The leader dies without giving the lease up. */
    double evaluations_before = harness_metric(other, "vitrine_alert_evaluations_total{result=\"ok\"}");
    kill(leader->pid, SIGKILL);
    waitpid(leader->pid, NULL, 0);
    leader->pid = 0;
    int64_t killed = mono_ms();
    while (harness_metric(other, "vitrine_alerts_leader") != 1) {
        cr_assert(mono_ms() - killed < 15000, "no instance took the lease over within 15 s");
        harness_sleep_ms(20);
    }
    int64_t takeover = mono_ms() - killed;

    /* The new leader continues the episode: it resolves the same alert and fires none. */
    const cJSON *resolved = NULL;
    for (int i = 0; i < 300; i++, harness_sleep_ms(100)) {
        list = all_alerts(other);
        int count;
        resolved = alert_of_rule(list, "views-burst", &count);
        cr_assert_eq(count, 1, "the new leader fired the episode again");
        if (strcmp(str_of(resolved, "state"), "resolved") == 0)
            break;
        cJSON_Delete(list);
        list = NULL;
    }
    cr_assert_not_null(list, "the alert was not resolved within 30 s");
    cr_assert_str_eq(str_of(resolved, "id"), id);
    cJSON_Delete(list);
    cr_assert_eq(harness_metric(other, "vitrine_alerts_fired_total{rule=\"views-burst\"}"), 0);
    cr_assert_eq(harness_metric(other, "vitrine_alerts_resolved_total{rule=\"views-burst\"}"), 1);
    double evaluations_after = harness_metric(other, "vitrine_alert_evaluations_total{result=\"ok\"}");
    cr_assert(evaluations_after > evaluations_before);
    printf("measured: lease taken over %.2f s after kill -9 of the leader (alerts.lease_ms "
           "1500); the new leader evaluated %.0f times and resolved the open alert\n",
           (double)takeover / 1000.0, evaluations_after - evaluations_before);
    harness_stop(other, 20);
}


Test(alerts, hanging_webhook_blocks_nothing, .timeout = 120)
{
    struct harness h;
    struct receiver hook;
    char rules[300], env[6][400];
    char *body = NULL;

    harness_init(&h, "alerts-webhook");
    write_small_rules(&h, rules, sizeof rules);
    receiver_start(&hook, false);
    snprintf(env[0], sizeof env[0], "VITRINE_ALERTS_RULES_PATH=%s", rules);
    snprintf(env[1], sizeof env[1], "VITRINE_ALERTS_BUCKET_S=1");
    snprintf(env[2], sizeof env[2], "VITRINE_ALERTS_PERIOD_MS=200");
    snprintf(env[3], sizeof env[3], "VITRINE_ALERTS_WEBHOOK_URL=http://127.0.0.1:%d/hook",
             hook.port);
    snprintf(env[4], sizeof env[4], "VITRINE_ALERTS_WEBHOOK_TIMEOUT_MS=1000");
    snprintf(env[5], sizeof env[5], "VITRINE_ALERTS_WEBHOOK_ATTEMPTS=3");
    const char *extra[] = {env[0], env[1], env[2], env[3], env[4], env[5], NULL};
    harness_start(&h, extra);

    produce_views(&h, "burst-1", 40);
    cJSON *list = NULL;
    const cJSON *alert = wait_alert(&h, &list, 15000);
    cr_assert_not_null(alert, "no alert for 40 views in 10 s");
    char id[64], path[128];
    vt_strlcpy(id, str_of(alert, "id"), sizeof id);
    cJSON_Delete(list);

    /* While the webhook hangs, events keep flowing into profiles. */
    int64_t t0 = mono_ms();
    produce_views(&h, "during-stall", 300);
    cr_assert_eq(harness_wait_events(&h, "during-stall", 300, 20), 300);
    int64_t ingest_ms = mono_ms() - t0;

    /* The webhook gives up after its attempts; the alert stays stored and readable. */
    while (harness_metric(&h, "vitrine_alert_webhook_total{outcome=\"failed\"}") < 1) {
        cr_assert(mono_ms() - t0 < 30000, "the webhook did not give up within 30 s");
        harness_sleep_ms(100);
    }
    double retried = harness_metric(&h, "vitrine_alert_webhook_total{outcome=\"retried\"}");
    cr_assert(retried >= 2, "retried %g times", retried);
    pthread_mutex_lock(&hook.lock);
    size_t requests = hook.requests;
    pthread_mutex_unlock(&hook.lock);
    cr_assert(requests >= 3, "the receiver saw %zu requests", requests);
    snprintf(path, sizeof path, "/v1/alerts/%s", id);
    cJSON *one = harness_get_json(&h, path, 200);
    cr_assert_str_eq(str_of(one, "id"), id);
    cJSON_Delete(one);

    /* The person on call takes it. */
    snprintf(path, sizeof path, "/v1/alerts/%s/ack", id);
    int status = harness_http_body(&h, "POST", path, "Content-Type: application/json\r\n",
                                   "{\"by\":\"anna\",\"note\":\"price lowered\"}", &body, NULL);
    cr_assert_eq(status, 200, "%s", body);
    cJSON *acked = cJSON_Parse(body);
    const cJSON *ack = cJSON_GetObjectItemCaseSensitive(acked, "ack");
    cr_assert_str_eq(str_of(ack, "by"), "anna", "%s", body);
    cr_assert_str_eq(str_of(ack, "note"), "price lowered", "%s", body);
    cJSON_Delete(acked);
    free(body);
    list = harness_get_json(&h, "/v1/alerts?state=all&acknowledged=false", 200);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(list, "alerts")), 0);
    cr_assert_eq(number_of(list, "searched"), 1);
    cJSON_Delete(list);

    /* Bad requests get the error shape. */
    status = harness_http_body(&h, "POST", "/v1/alerts/01900000-0000-7000-8000-000000000000/ack", NULL, "{\"by\":\"anna\"}",
                               &body, NULL);
    cr_assert_eq(status, 404, "%s", body);
    free(body);
    status = harness_http_body(&h, "POST", path, NULL, "{\"by\":\"anna\"} trailing", &body,
                               NULL);
    cr_assert_eq(status, 400, "%s", body);
    free(body);
    status = harness_http_body(&h, "POST", path, NULL, "{\"by\":\"a\\u0000b\"}", &body, NULL);
    cr_assert_eq(status, 400, "%s", body);
    free(body);
    status = harness_http_body(&h, "POST", path, NULL, "{\"note\":\"who?\"}", &body, NULL);
    cr_assert_eq(status, 400, "%s", body);
    cr_assert(strstr(body, "who acknowledges") != NULL, "%s", body);
    free(body);
    status = harness_http(&h, "GET", "/v1/alerts?state=sleeping", NULL, &body, NULL);
    cr_assert_eq(status, 400, "%s", body);
    cr_assert(strstr(body, "invalid state") != NULL, "%s", body);
    free(body);
    status = harness_http(&h, "GET", "/v1/alerts?limit=0", NULL, &body, NULL);
    cr_assert_eq(status, 400, "%s", body);
    free(body);
    status = harness_http(&h, "GET", "/v1/alerts/nope", NULL, &body, NULL);
    cr_assert_eq(status, 400, "%s", body);
    cr_assert(strstr(body, "invalid alert id") != NULL, "%s", body);
    free(body);

    printf("measured: with the webhook hanging, 300 events reached their profile in %.2f s; "
           "the webhook retried %.0f times and gave up, the receiver saw %zu requests\n",
           (double)ingest_ms / 1000.0, retried, requests);
    int64_t stop_started = mono_ms();
    harness_stop(&h, 20);
    printf("measured: clean stop with the webhook still hanging took %.2f s\n",
           (double)(mono_ms() - stop_started) / 1000.0);
    receiver_stop(&hook);
}


Test(alerts, one_campaign_one_alert, .timeout = 120)
{
    struct harness h;
    char rules[300], env[3][400];
    const char *work = getenv("VITRINE_TEST_WORK");

    harness_init(&h, "alerts-merge");
    snprintf(rules, sizeof rules, "%s/%s.rules.json", work ? work : "/tmp", h.name);
    FILE *f = fopen(rules, "w");
    cr_assert_not_null(f, "cannot write %s", rules);
    fputs("{\"rules\": [{\"name\": \"brand-burst\", \"event\": \"product_view\", "
          "\"group_by\": \"brand\", \"window_s\": 10, "
          "\"condition\": {\"type\": \"above\", \"threshold\": 20}, \"min_volume\": 20, "
          "\"cooldown_s\": 600, \"severity\": \"info\", \"recipients\": [\"marketing\"], "
          "\"reaction\": \"Test rule: look at the campaign.\"}, "
          "{\"name\": \"campaign-burst\", \"event\": \"any\", \"group_by\": \"campaign\", "
          "\"window_s\": 10, \"condition\": {\"type\": \"above\", \"threshold\": 20}, "
          "\"min_volume\": 20, \"cooldown_s\": 600, \"severity\": \"critical\", "
          "\"recipients\": [\"oncall\", \"marketing\"], "
          "\"reaction\": \"Test rule: check the campaign.\"}]}\n", f);
    fclose(f);
    snprintf(env[0], sizeof env[0], "VITRINE_ALERTS_RULES_PATH=%s", rules);
    snprintf(env[1], sizeof env[1], "VITRINE_ALERTS_BUCKET_S=1");
    snprintf(env[2], sizeof env[2], "VITRINE_ALERTS_PERIOD_MS=1000");
    const char *extra[] = {env[0], env[1], env[2], NULL};
    harness_start(&h, extra);

    /* One newsletter campaign makes two brands of different categories jump at once. */
    produce_views_of(&h, "plain-1", 10, "w-", NULL);
    produce_views_of(&h, "mail-1", 30, "w-", "summer|mail");
    produce_views_of(&h, "mail-2", 30, "c-", "summer|mail");
    cJSON *list = NULL;
    const cJSON *alert = NULL;
    for (int i = 0; i < 100; i++, harness_sleep_ms(100)) {
        list = all_alerts(&h);
        int count;
        alert = alert_of_rule(list, "brand-burst", &count);
        if (alert == NULL)
            alert = alert_of_rule(list, "campaign-burst", &count);
        if (alert != NULL &&
            cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(alert, "series")) == 3)
            break;
        cJSON_Delete(list);
        list = NULL;
    }
    cr_assert_not_null(list, "no alert with three series within 10 s");
    char *text = cJSON_PrintUnformatted(list);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(list, "alerts")), 1,
                 "%s", text);
    cr_assert_str_eq(str_of(alert, "cause"), "campaign=summer|mail", "%s", text);

    /* The campaign series is critical: the alert takes that severity and every recipient. */
    cr_assert_str_eq(str_of(alert, "severity"), "critical", "%s", text);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(alert, "recipients")), 2,
                 "%s", text);
    char id[64];
    vt_strlcpy(id, str_of(alert, "id"), sizeof id);
    free(text);
    cJSON_Delete(list);

    /* A third brand from the same campaign a moment later joins the open alert. */
    produce_views_of(&h, "mail-3", 30, "h-", "summer|mail");
    for (int i = 0; i < 100; i++, harness_sleep_ms(100)) {
        list = all_alerts(&h);
        alert = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(list, "alerts"), 0);
        if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(alert, "series")) == 4)
            break;
        cJSON_Delete(list);
        list = NULL;
    }
    cr_assert_not_null(list, "the third brand did not join within 10 s");
    text = cJSON_PrintUnformatted(list);
    cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(list, "alerts")), 1,
                 "%s", text);
    cr_assert_str_eq(str_of(alert, "id"), id, "%s", text);
    free(text);
    cJSON_Delete(list);
    cr_assert_eq(harness_metric(&h, "vitrine_alerts_fired_total{rule=\"brand-burst\"}") +
                     harness_metric(&h, "vitrine_alerts_fired_total{rule=\"campaign-burst\"}"),
                 1);
    cr_assert_eq(harness_metric(&h, "vitrine_alerts_merged_total{rule=\"brand-burst\"}") +
                     harness_metric(&h, "vitrine_alerts_merged_total{rule=\"campaign-burst\"}"),
                 3);

    /* Both rules find it. */
    list = harness_get_json(&h, "/v1/alerts?rule=campaign-burst&severity=critical", 200);
    cr_assert_eq(number_of(list, "count"), 1);
    cJSON_Delete(list);
    list = harness_get_json(&h, "/v1/alerts?rule=brand-burst", 200);
    cr_assert_eq(number_of(list, "count"), 1);
    cJSON_Delete(list);
    harness_stop(&h, 20);
}


/* Start vitrine with the rules file `rules` and extra settings; return its exit status and
 * its log (malloc'd) in *log. Fails the test when it is still running after 15 s. */
static int start_with_rules(const char *rules, const char *extra, char **log)
{
    const char *work = getenv("VITRINE_TEST_WORK");
    char log_path[300], env_rules[400], env_catalog[400], env_port[64], env_extra[200];
    int status = 0;

    snprintf(log_path, sizeof log_path, "%s/bad-rules-%d.log", work ? work : "/tmp",
             (int)getpid());
    snprintf(env_rules, sizeof env_rules, "VITRINE_ALERTS_RULES_PATH=%s", rules);
    snprintf(env_catalog, sizeof env_catalog, "VITRINE_CATALOG_PATH=%s/tests/data/catalog.jsonl",
             VITRINE_SOURCE_DIR);
    snprintf(env_port, sizeof env_port, "VITRINE_HTTP_PORT=%d", harness_free_port());
    snprintf(env_extra, sizeof env_extra, "%s", extra != NULL ? extra : "VITRINE_LOG_LEVEL=info");
    char *env[] = {env_rules, env_catalog, env_port, env_extra, NULL};

    char *argv[] = {(char *)VITRINE_BINARY, NULL};
    pid_t pid = harness_spawn(VITRINE_BINARY, argv, env, log_path);
    for (int i = 0; i < 150 && waitpid(pid, &status, WNOHANG) == 0; i++)
        harness_sleep_ms(100);
    if (waitpid(pid, &status, WNOHANG) == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        cr_assert_fail("vitrine kept running with the invalid rules file %s", rules);
    }

    FILE *f = fopen(log_path, "r");
    cr_assert_not_null(f, "no log at %s", log_path);
    size_t cap = 1 << 16, len = 0;
    *log = calloc(1, cap);
    len = fread(*log, 1, cap - 1, f);
    (*log)[len] = '\0';
    fclose(f);
    return status;
}


Test(alerts, invalid_rules_stop_the_start, .timeout = 60)
{
    const char *work = getenv("VITRINE_TEST_WORK");
    char path[300], *log = NULL;

    snprintf(path, sizeof path, "%s/invalid-rules-%d.json", work ? work : "/tmp",
             (int)getpid());
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs("{\"rules\": [{\"name\": \"brand-views-surge\", \"event\": \"product_view\", "
          "\"group_by\": \"brand\", \"window_s\": 300, "
          "\"condition\": {\"type\": \"ratio\", \"ratio\": 1}, \"min_volume\": 100, "
          "\"cooldown_s\": 3600, \"severity\": \"warning\", \"recipients\": [\"pricing\"], "
          "\"reaction\": \"Check the drivers.\"}]}\n", f);
    fclose(f);
    int status = start_with_rules(path, NULL, &log);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 0, "status %d", status);
    cr_assert(strstr(log, path) != NULL, "the message does not name the file:\n%s", log);
    cr_assert(strstr(log, "rules[0] \"brand-views-surge\"") != NULL,
              "the message does not name the rule:\n%s", log);
    cr_assert(strstr(log, "\"condition.ratio\" is 1") != NULL,
              "the message does not give the reason:\n%s", log);
    free(log);

    /* A window that is not a multiple of the counting bucket. */
    f = fopen(path, "w");
    cr_assert_not_null(f, "cannot write %s", path);
    fputs("{\"rules\": [{\"name\": \"views-burst\", \"event\": \"product_view\", "
          "\"window_s\": 15, \"condition\": {\"type\": \"above\", \"threshold\": 20}, "
          "\"min_volume\": 20, \"cooldown_s\": 600, \"severity\": \"info\", "
          "\"recipients\": [\"oncall\"], \"reaction\": \"Look.\"}]}\n", f);
    fclose(f);
    status = start_with_rules(path, "VITRINE_ALERTS_BUCKET_S=10", &log);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 0, "status %d", status);
    cr_assert(strstr(log, "cannot start") != NULL, "no start error:\n%s", log);
    cr_assert(strstr(strstr(log, "cannot start"), path) != NULL,
              "the message does not name the file:\n%s", log);
    cr_assert(strstr(log, "rules[0] \"views-burst\": window_s 15") != NULL,
              "the message does not name the rule and its window:\n%s", log);
    printf("measured: invalid rules rejected at start, for example: %.*s\n",
           (int)strcspn(strstr(log, "cannot start"), "\n"), strstr(log, "cannot start"));
    free(log);
}


/* Write a rules file with one rule of the given name, grouped by campaign, firing at 3
 * events within 10 s. */
static void write_campaign_rule(const char *path, const char *name)
{
    FILE *f = fopen(path, "w");

    cr_assert_not_null(f, "cannot write %s", path);
    fprintf(f, "{\"rules\": [{\"name\": \"%s\", \"event\": \"any\", \"group_by\": \"campaign\", "
               "\"window_s\": 10, \"condition\": {\"type\": \"above\", \"threshold\": 3}, "
               "\"min_volume\": 3, \"cooldown_s\": 600, \"severity\": \"info\", "
               "\"recipients\": [\"marketing\"], \"reaction\": \"Test rule.\"}]}\n", name);
    fclose(f);
}


Test(alerts, removed_rule_resolves_its_alerts, .timeout = 120)
{
    const char *work = getenv("VITRINE_TEST_WORK");
    struct harness h;
    char rules[300], env[3][400];

    harness_init(&h, "alerts-removed");
    snprintf(rules, sizeof rules, "%s/%s.rules.json", work ? work : "/tmp", h.name);
    write_campaign_rule(rules, "campaign-old");
    snprintf(env[0], sizeof env[0], "VITRINE_ALERTS_RULES_PATH=%s", rules);
    snprintf(env[1], sizeof env[1], "VITRINE_ALERTS_BUCKET_S=1");
    snprintf(env[2], sizeof env[2], "VITRINE_ALERTS_PERIOD_MS=200");
    const char *extra[] = {env[0], env[1], env[2], NULL};
    harness_start(&h, extra);
    produce_views_of(&h, "old-1", 10, "w-", "spring");
    cJSON *list = NULL;
    const cJSON *alert = NULL;
    for (int i = 0; i < 100 && alert == NULL; i++, harness_sleep_ms(100)) {
        int count;
        cJSON_Delete(list);
        list = all_alerts(&h);
        alert = alert_of_rule(list, "campaign-old", &count);
    }
    cr_assert_not_null(alert, "no alert of rule campaign-old within 10 s");
    cJSON_Delete(list);
    harness_stop(&h, 20);

    /* The rule is renamed: its open alert resolves instead of staying active for ever. */
    write_campaign_rule(rules, "campaign-new");
    harness_start(&h, extra);
    bool resolved = false;
    for (int i = 0; i < 100 && !resolved; i++, harness_sleep_ms(100)) {
        int count;
        list = all_alerts(&h);
        alert = alert_of_rule(list, "campaign-old", &count);
        resolved = alert != NULL && strcmp(str_of(alert, "state"), "resolved") == 0;
        cJSON_Delete(list);
    }
    cr_assert(resolved, "the alert of the removed rule is still active after 10 s");
    /* The episode stays in a cool-down, so an instance with the old file fires no second
     * alert. */
    char *left = harness_redis(&h, "HVALS %s{agg}:al:state", h.prefix);
    cr_assert(strncmp(left, "0|", 2) == 0 && strchr(left, '\n') == NULL,
              "expected one inactive episode, got: %s", left);
    free(left);
    harness_stop(&h, 20);
}


Test(alerts, alerts_beyond_keep_are_deleted, .timeout = 120)
{
    const char *work = getenv("VITRINE_TEST_WORK");
    struct harness h;
    char rules[300], env[4][400], campaign[32], first[64] = "", path[128];

    harness_init(&h, "alerts-keep");
    snprintf(rules, sizeof rules, "%s/%s.rules.json", work ? work : "/tmp", h.name);
    write_campaign_rule(rules, "campaign-burst");
    snprintf(env[0], sizeof env[0], "VITRINE_ALERTS_RULES_PATH=%s", rules);
    snprintf(env[1], sizeof env[1], "VITRINE_ALERTS_BUCKET_S=1");
    snprintf(env[2], sizeof env[2], "VITRINE_ALERTS_PERIOD_MS=200");
    snprintf(env[3], sizeof env[3], "VITRINE_ALERTS_KEEP=10");
    const char *extra[] = {env[0], env[1], env[2], env[3], NULL};
    harness_start(&h, extra);

    /* Thirteen campaigns, one after the other: thirteen alerts. */
    for (int c = 0; c < 13; c++) {
        char cause[64];
        snprintf(campaign, sizeof campaign, "mail-%02d", c);
        snprintf(cause, sizeof cause, "campaign=%s", campaign);
        if (c == 12) {
            /* The oldest alerts passed the bound while they were active, so they stay
             * listed and readable until they resolve; the next store deletes them. */
            snprintf(path, sizeof path, "/v1/alerts/%s", first);
            bool resolved = false;
            for (int i = 0; i < 300 && !resolved; i++, harness_sleep_ms(100)) {
                cJSON *one = harness_get_json(&h, path, 200);
                resolved = strcmp(str_of(one, "state"), "resolved") == 0;
                cJSON_Delete(one);
            }
            cr_assert(resolved, "the oldest alert did not resolve within 30 s");
        }
        produce_views_of(&h, campaign, 5, "w-", campaign);
        int count = 0;
        for (int i = 0; i < 100 && count == 0; i++, harness_sleep_ms(50)) {
            cJSON *list = all_alerts(&h);
            const cJSON *a;
            cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(list, "alerts")) {
                if (strcmp(str_of(a, "cause"), cause) == 0) {
                    count++;
                    if (c == 0)
                        vt_strlcpy(first, str_of(a, "id"), sizeof first);
                }
            }
            cJSON_Delete(list);
        }
        cr_assert_eq(count, 1, "no alert for campaign %s", campaign);
    }

    char *body = NULL;
    int status = harness_http(&h, "GET", path, NULL, &body, NULL);
    cr_assert_eq(status, 404, "the oldest alert is still readable: %s", body);
    free(body);
    cJSON *list = all_alerts(&h);
    cr_assert_leq(number_of(list, "searched"), 12, "resolved alerts beyond the bound are listed");
    cJSON_Delete(list);
    harness_stop(&h, 20);
}


struct event_names {
    char names[16][16];
    size_t n;
};


static void collect_event_name(const char *key, size_t key_len, const char *value, size_t len,
                               const char *reason, void *arg)
{
    struct event_names *e = arg;
    cJSON *msg = cJSON_ParseWithLength(value, len);

    (void)key, (void)key_len, (void)reason;
    if (e->n < 16)
        vt_strlcpy(e->names[e->n++], str_of(msg, "event"), sizeof e->names[0]);
    cJSON_Delete(msg);
}


Test(alerts, critical_series_joining_escalates, .timeout = 120)
{
    const char *work = getenv("VITRINE_TEST_WORK");
    struct harness h;
    char rules[300], alerts_topic[128], env[4][400];

    harness_init(&h, "alerts-escalate");
    snprintf(rules, sizeof rules, "%s/%s.rules.json", work ? work : "/tmp", h.name);
    snprintf(alerts_topic, sizeof alerts_topic, "alerts-%s", h.name);
    FILE *f = fopen(rules, "w");
    cr_assert_not_null(f, "cannot write %s", rules);
    fputs("{\"rules\": [{\"name\": \"brand-burst\", \"event\": \"product_view\", "
          "\"group_by\": \"brand\", \"window_s\": 30, "
          "\"condition\": {\"type\": \"above\", \"threshold\": 20}, \"min_volume\": 20, "
          "\"cooldown_s\": 600, \"severity\": \"info\", \"recipients\": [\"marketing\"], "
          "\"reaction\": \"Look at the brand.\"}, "
          "{\"name\": \"campaign-burst\", \"event\": \"any\", \"group_by\": \"campaign\", "
          "\"window_s\": 30, \"condition\": {\"type\": \"above\", \"threshold\": 30}, "
          "\"min_volume\": 30, \"cooldown_s\": 600, \"severity\": \"critical\", "
          "\"recipients\": [\"oncall\"], \"reaction\": \"Check the campaign.\"}]}\n", f);
    fclose(f);
    snprintf(env[0], sizeof env[0], "VITRINE_ALERTS_RULES_PATH=%s", rules);
    snprintf(env[1], sizeof env[1], "VITRINE_ALERTS_BUCKET_S=1");
    snprintf(env[2], sizeof env[2], "VITRINE_ALERTS_PERIOD_MS=200");
    snprintf(env[3], sizeof env[3], "VITRINE_KAFKA_ALERTS_TOPIC=%s", alerts_topic);
    const char *extra[] = {env[0], env[1], env[2], env[3], NULL};
    harness_start(&h, extra);

    /* The brand fires first, as info for marketing. */
    produce_views_of(&h, "esc-1", 25, "w-", "flash-sale");
    cJSON *list = NULL;
    const cJSON *alert = NULL;
    for (int i = 0; i < 100 && alert == NULL; i++, harness_sleep_ms(100)) {
        int count;
        cJSON_Delete(list);
        list = all_alerts(&h);
        alert = alert_of_rule(list, "brand-burst", &count);
    }
    cr_assert_not_null(alert, "no alert of rule brand-burst within 10 s");
    cr_assert_str_eq(str_of(alert, "severity"), "info");
    cJSON_Delete(list);

    /* The campaign crosses its critical threshold a moment later and joins. */
    produce_views_of(&h, "esc-2", 10, "w-", "flash-sale");
    bool critical = false;
    for (int i = 0; i < 100 && !critical; i++, harness_sleep_ms(100)) {
        list = all_alerts(&h);
        alert = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(list, "alerts"), 0);
        critical = strcmp(str_of(alert, "severity"), "critical") == 0;
        if (critical) {
            char *text = cJSON_PrintUnformatted(list);
            cr_assert_eq(number_of(list, "count"), 1, "%s", text);
            cr_assert_str_eq(str_of(alert, "rule"), "campaign-burst", "%s", text);
            cr_assert_str_eq(str_of(alert, "reaction"), "Check the campaign.", "%s", text);
            cr_assert_eq(
                cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(alert, "recipients")), 2,
                "%s", text);
            free(text);
        }
        cJSON_Delete(list);
    }
    cr_assert(critical, "the alert did not become critical within 10 s");

    /* On-call hears of it now, not only when it resolves. */
    struct event_names seen = {0};
    for (int i = 0; i < 20 && seen.n < 2; i++, harness_sleep_ms(250)) {
        memset(&seen, 0, sizeof seen);
        harness_consume_all(&h, alerts_topic, 3000, collect_event_name, &seen);
    }
    cr_assert_eq(seen.n, 2, "alerts topic: %zu messages", seen.n);
    cr_assert_str_eq(seen.names[0], "fired");
    cr_assert_str_eq(seen.names[1], "escalated");
    harness_stop(&h, 20);
}
