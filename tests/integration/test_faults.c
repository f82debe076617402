/*
 * Faults injected for real: a redis-server of the test's own is frozen (SIGSTOP) and then
 * killed (SIGKILL) in the middle of the stream, and restarted from its append-only file.
 * Ingestion must pause without losing or repeating an event, and the HTTP API must respond
 * with 503 and Retry-After (or a cold start, when so configured) within the configured
 * Redis budget instead of hanging. The local broker's fault injection takes Kafka down,
 * slows it and makes its requests fail.
 *
 * The tests print what they measure on lines that start with "measured:".
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

extern char **environ;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


/* Produce `per_session` page views for each of `sessions` sessions, interleaved. */
static void produce_views(harness_producer *p, const struct harness *h, int sessions,
                          int per_session, int first_index)
{
    char key[32], value[256];

    for (int i = 0; i < per_session; i++) {
        for (int s = 0; s < sessions; s++) {
            snprintf(key, sizeof key, "outage-%d", s);
            snprintf(value, sizeof value,
                     "{\"type\":\"page_view\",\"session_id\":\"%s\",\"id\":\"e-%d-%d\","
                     "\"ts\":\"2026-11-02T10:%02d:%02dZ\",\"page\":\"/p/%d\"}",
                     key, s, first_index + i, (first_index + i) / 60 % 60,
                     (first_index + i) % 60, first_index + i);
            harness_send(p, h->topic, key, value);
        }
    }
}


/* Produce one phase of views and wait until every session counts `expected` events. */
static int64_t phase(const struct harness *h, int sessions, int per_session, int first_index,
                     int64_t expected, int timeout_s)
{
    harness_producer *p = harness_producer_new(h);
    int64_t started = mono_ms();

    produce_views(p, h, sessions, per_session, first_index);
    harness_producer_close(p);
    for (int s = 0; s < sessions; s++) {
        char session[32];
        snprintf(session, sizeof session, "outage-%d", s);
        int64_t events = harness_wait_events(h, session, expected, timeout_s);
        cr_assert_eq(events, expected, "session %s has %" PRId64 " events, expected %" PRId64,
                     session, events, expected);
    }
    return mono_ms() - started;
}


/* Start a redis-server of the test's own and write its folder to dir. It keeps an
 * append-only file there, so that it restarts with every write it acknowledged. */
static pid_t start_own_redis(struct harness *h, char *dir, size_t size)
{
    const char *work = getenv("VITRINE_TEST_WORK");

    h->redis_port = harness_free_port();
    snprintf(dir, size, "%s/%s-redis", work ? work : "/tmp", h->name);
    cr_assert(mkdir(dir, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", dir, strerror(errno));
    return harness_start_redis(h->redis_port, dir);
}


/* GET the segment of a session; returns the status and writes the time taken. */
static int timed_segment(const struct harness *h, int64_t *took_ms, bool *retry_after)
{
    char *body = NULL, *headers = NULL;
    int64_t started = mono_ms();
    int status = harness_http(h, "GET", "/v1/sessions/outage-0/segment", NULL, &body, &headers);

    *took_ms = mono_ms() - started;
    *retry_after = headers != NULL && strcasestr(headers, "\r\nRetry-After: 1") != NULL;
    free(body);
    free(headers);
    return status;
}


Test(faults, redis_outage_loses_and_repeats_nothing, .timeout = 180)
{
    enum { SESSIONS = 20, PER_PHASE = 50 };
    struct harness h;
    char dir[300];

    harness_init(&h, "faults-redis");
    pid_t redis = start_own_redis(&h, dir, sizeof dir);
    const char *extra[] = {"VITRINE_REDIS_TIMEOUT_MS=300", NULL};
    harness_start(&h, extra);
    harness_producer *p = harness_producer_new(&h);

    /* Phase 1: Redis works. */
    produce_views(p, &h, SESSIONS, PER_PHASE, 0);
    cr_assert_eq(harness_wait_events(&h, "outage-0", PER_PHASE, 30), PER_PHASE);

    /* Phase 2: Redis hangs (SIGSTOP) while events keep coming. Requests must not wait
     * longer than the Redis budget. */
    kill(redis, SIGSTOP);
    produce_views(p, &h, SESSIONS, PER_PHASE, PER_PHASE);
    int64_t worst_hang = 0;
    for (int i = 0; i < 10; i++) {
        int64_t took;
        bool retry_after;
        int status = timed_segment(&h, &took, &retry_after);
        cr_assert_eq(status, 503, "segment during a Redis hang: status %d", status);
        cr_assert(retry_after, "a 503 without Retry-After: 1");
        if (took > worst_hang)
            worst_hang = took;
    }
    cr_assert_lt(worst_hang, 1000, "a request waited %" PRId64 " ms for a hanging Redis",
                 worst_hang);

    /* Phase 3: Redis dies (SIGKILL) and stays down a while, then restarts from its AOF. */
    kill(redis, SIGKILL);
    waitpid(redis, NULL, 0);
    produce_views(p, &h, SESSIONS, PER_PHASE, 2 * PER_PHASE);
    harness_producer_close(p);
    int64_t worst_down = 0;
    for (int i = 0; i < 10; i++) {
        int64_t took;
        bool retry_after;
        int status = timed_segment(&h, &took, &retry_after);
        cr_assert_eq(status, 503, "segment with Redis down: status %d", status);
        cr_assert(retry_after, "a 503 without Retry-After: 1");
        if (took > worst_down)
            worst_down = took;
        harness_sleep_ms(100);
    }
    int64_t restarted = mono_ms();
    redis = harness_start_redis(h.redis_port, dir);

    /* Every event applied exactly once: each session counts 150 events, not fewer (lost)
     * and not more (applied twice). */
    for (int s = 0; s < SESSIONS; s++) {
        char session[32];
        snprintf(session, sizeof session, "outage-%d", s);
        int64_t events = harness_wait_events(&h, session, 3 * PER_PHASE, 60);
        cr_assert_eq(events, 3 * PER_PHASE, "session %s has %" PRId64 " events, expected %d",
                     session, events, 3 * PER_PHASE);
    }
    int64_t caught_up = mono_ms() - restarted;
    harness_sleep_ms(1500); /* redeliveries, if any, would show up as extra events now */
    for (int s = 0; s < SESSIONS; s++) {
        char session[32];
        snprintf(session, sizeof session, "outage-%d", s);
        cr_assert_eq(harness_wait_events(&h, session, 3 * PER_PHASE, 1), 3 * PER_PHASE);
    }
    double errors = harness_metric(&h, "vitrine_redis_errors_total{origin=\"ingest\"}");
    cr_assert(errors > 0, "ingest saw no Redis error during the outage");

    printf("measured: Redis outage: %d events in %d sessions, each applied exactly once; "
           "HTTP answered 503 with Retry-After in at most %" PRId64 " ms while Redis hung "
           "(redis.timeout_ms 300) and %" PRId64 " ms while it was down; ingest caught up "
           "%.2f s after the restart (%.0f Redis errors counted)\n",
           3 * PER_PHASE * SESSIONS, SESSIONS, worst_hang, worst_down,
           (double)caught_up / 1000.0, errors);
    harness_stop(&h, 20);
    kill(redis, SIGTERM);
    waitpid(redis, NULL, 0);
}


Test(faults, sigterm_during_redis_hang_loses_nothing, .timeout = 120)
{
    struct harness h;
    char dir[300];

    harness_init(&h, "faults-stop");
    pid_t redis = start_own_redis(&h, dir, sizeof dir);
    harness_start(&h, NULL);
    phase(&h, 5, 20, 0, 20, 30);

    /* Redis hangs and more events come, so the ingest thread waits on a batch when
     * SIGTERM arrives. The stop waits at most for that call (5 s), not for Redis. Then
     * Redis dies. */
    kill(redis, SIGSTOP);
    harness_producer *p = harness_producer_new(&h);
    produce_views(p, &h, 5, 20, 20);
    harness_producer_close(p);
    harness_sleep_ms(1500);
    int64_t sent = mono_ms();
    harness_stop(&h, 15);
    int64_t stop_ms = mono_ms() - sent;
    kill(redis, SIGKILL);
    waitpid(redis, NULL, 0);

    /* Nothing of the failed batch was committed: after both restart, every event counts
     * once. */
    redis = harness_start_redis(h.redis_port, dir);
    harness_start(&h, NULL);
    for (int s = 0; s < 5; s++) {
        char session[32];
        snprintf(session, sizeof session, "outage-%d", s);
        cr_assert_eq(harness_wait_events(&h, session, 40, 30), 40, "%s lost events", session);
    }
    harness_sleep_ms(1500);
    cr_assert_eq(harness_wait_events(&h, "outage-0", 40, 1), 40);

    printf("measured: SIGTERM while Redis hung and a batch waited for it: clean exit after "
           "%" PRId64 " ms; after both restarted, 200 of 200 events applied once\n",
           stop_ms);
    harness_stop(&h, 20);
    kill(redis, SIGTERM);
    waitpid(redis, NULL, 0);
}


/* Send GET or POST to path and return the status. Writes the time taken, and whether
 * the JSON body contains "degraded": true. */
static int timed_degraded(const struct harness *h, const char *method, const char *path,
                          const char *request_body, int64_t *took_ms, bool *degraded)
{
    char *body = NULL;
    int64_t started = mono_ms();
    int status = harness_http_body(h, method, path, NULL, request_body, &body, NULL);

    *took_ms = mono_ms() - started;
    cJSON *json = body ? cJSON_Parse(body) : NULL;
    *degraded = cJSON_IsTrue(cJSON_GetObjectItem(json, "degraded"));
    cJSON_Delete(json);
    free(body);
    return status;
}


Test(faults, redis_outage_serves_cold_start, .timeout = 120)
{
    struct harness h;
    static const struct {
        const char *method, *path, *body;
        int status;
        bool degraded;
    } requests[] = {
        {"GET", "/v1/sessions/outage-0/segment", NULL, 200, true},
        {"GET", "/v1/sessions/outage-0/recommendations", NULL, 200, true},
        {"POST", "/v1/sessions/outage-0/rerank", "{\"product_ids\":[\"w-1\",\"m-1\"]}", 200,
         true},
        {"GET", "/v1/profiles/outage-0", NULL, 503, false}, /* analysts get the truth */
    };

    harness_init(&h, "faults-coldstart");
    h.redis_port = harness_free_port();
    pid_t redis = harness_start_redis(h.redis_port, NULL);
    const char *extra[] = {"VITRINE_REDIS_TIMEOUT_MS=300",
                           "VITRINE_HTTP_ON_REDIS_ERROR=cold_start", NULL};
    harness_start(&h, extra);
    phase(&h, 1, 5, 0, 5, 30);

    /* Redis hangs: the storefront gets cold-start responses within the budget. */
    kill(redis, SIGSTOP);
    int64_t worst = 0;
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++) {
            int64_t took;
            bool degraded;
            int status = timed_degraded(&h, requests[i].method, requests[i].path,
                                        requests[i].body, &took, &degraded);
            cr_assert_eq(status, requests[i].status, "%s %s during a Redis hang: %d",
                         requests[i].method, requests[i].path, status);
            cr_assert_eq(degraded, requests[i].degraded, "%s %s: degraded %d",
                         requests[i].method, requests[i].path, degraded);
            if (took > worst)
                worst = took;
        }
    }
    cr_assert_lt(worst, 1000, "a request waited %" PRId64 " ms for a hanging Redis", worst);
    double degraded_count = harness_metric(&h, "vitrine_http_degraded_total{route=\"segment\"}");
    cr_assert_eq(degraded_count, 3);

    /* Redis is back: personal responses again, without the mark. */
    kill(redis, SIGCONT);
    int64_t took;
    bool degraded = true;
    int status = 0;
    for (int i = 0; i < 50 && (status != 200 || degraded); i++, harness_sleep_ms(100))
        status = timed_degraded(&h, "GET", "/v1/sessions/outage-0/segment", NULL, &took,
                                &degraded);
    cr_assert(status == 200 && !degraded, "no personal answer after Redis came back");
    cJSON *seg = harness_get_json(&h, "/v1/sessions/outage-0/segment", 200);
    cr_assert(cJSON_IsTrue(cJSON_GetObjectItem(seg, "known")));
    cJSON_Delete(seg);

    printf("measured: Redis hang with http.on_redis_error=cold_start: segment, "
           "recommendations and rerank answered 200 marked degraded, the profile 503, each "
           "within %" PRId64 " ms (redis.timeout_ms 300)\n", worst);
    harness_stop(&h, 20);
    kill(redis, SIGTERM);
    waitpid(redis, NULL, 0);
}


/* Start a broker of the test's own with a control FIFO; writes its address to h->brokers. */
static pid_t start_broker(struct harness *h, const char *dir, char *control, size_t size)
{
    char bootstrap[400], log_path[400], topic[128];

    snprintf(bootstrap, sizeof bootstrap, "%s/bootstrap", dir);
    snprintf(control, size, "%s/control", dir);
    snprintf(log_path, sizeof log_path, "%s/broker.log", dir);
    snprintf(topic, sizeof topic, "%s:4", h->topic);
    char *argv[] = {(char *)VITRINE_KAFKA_LOCAL_BINARY, "--bootstrap-file", bootstrap,
                    "--control", control, "--topic", topic, NULL};
    pid_t pid = harness_spawn(VITRINE_KAFKA_LOCAL_BINARY, argv, environ, log_path);
    for (int i = 0; i < 100; i++) {
        FILE *f = fopen(bootstrap, "r");
        if (f != NULL && fgets(h->brokers, sizeof h->brokers, f) != NULL) {
            h->brokers[strcspn(h->brokers, "\n")] = '\0';
            fclose(f);
            if (access(control, F_OK) == 0)
                return pid;
        } else if (f != NULL) {
            fclose(f);
        }
        harness_sleep_ms(100);
    }
    cr_assert_fail("the local broker did not start (see %s)", log_path);
    return -1;
}


static void inject(const char *control, const char *command)
{
    FILE *f = fopen(control, "w");

    cr_assert_not_null(f, "cannot open the control FIFO %s: %s", control, strerror(errno));
    fprintf(f, "%s\n", command);
    fclose(f);
}


Test(faults, kafka_faults_lose_and_repeat_nothing, .timeout = 240)
{
    const char *work = getenv("VITRINE_TEST_WORK");
    enum { SESSIONS = 10, PER_PHASE = 30 };
    struct harness h;
    char dir[300], control[400];

    harness_init(&h, "faults-kafka");
    snprintf(dir, sizeof dir, "%s/%s-kafka", work ? work : "/tmp", h.name);
    cr_assert(mkdir(dir, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", dir, strerror(errno));
    pid_t broker = start_broker(&h, dir, control, sizeof control);
    harness_start(&h, NULL);

    /* Normal traffic first. */
    int64_t normal = phase(&h, SESSIONS, PER_PHASE, 0, PER_PHASE, 30);

    /* The broker goes down for 3 s while records wait in the producer. */
    inject(control, "down 1");
    harness_sleep_ms(3000);
    inject(control, "up 1");
    int64_t after_down = phase(&h, SESSIONS, PER_PHASE, PER_PHASE, 2 * PER_PHASE, 60);

    /* Every response of the broker is 300 ms late. */
    inject(control, "rtt 1 300");
    int64_t slow = phase(&h, SESSIONS, PER_PHASE, 2 * PER_PHASE, 3 * PER_PHASE, 60);
    inject(control, "rtt 1 0");

    /* Fetch requests fail with NOT_LEADER_OR_FOLLOWER (6), offset commits with
     * REQUEST_TIMED_OUT (7). */
    inject(control, "errors 1 5 6");
    inject(control, "errors 8 3 7");
    int64_t failing = phase(&h, SESSIONS, PER_PHASE, 3 * PER_PHASE, 4 * PER_PHASE, 60);

    /* Redeliveries, if any, would show up as extra events now. */
    harness_sleep_ms(1500);
    for (int s = 0; s < SESSIONS; s++) {
        char session[32];
        snprintf(session, sizeof session, "outage-%d", s);
        cr_assert_eq(harness_wait_events(&h, session, 4 * PER_PHASE, 1), 4 * PER_PHASE);
    }
    /* The lag in /metrics comes back to 0 once everything is consumed. */
    double lag = -1;
    for (int i = 0; i < 150 && lag != 0; i++, harness_sleep_ms(100))
        lag = harness_metric(&h, "vitrine_consumer_lag_total");
    cr_assert_eq(lag, 0, "consumer lag still %g after the faults", lag);
    char *metrics = NULL;
    cr_assert_eq(harness_http(&h, "GET", "/metrics", NULL, &metrics, NULL), 200);
    cr_assert(strstr(metrics, "\nvitrine_consumer_lag{partition=\"3\"} 0\n") != NULL,
              "no lag reported for partition 3");
    free(metrics);

    printf("measured: Kafka faults: %d events in %d sessions, each applied exactly once; "
           "phases took %.2f s normal, %.2f s after 3 s of broker down, %.2f s with 300 ms "
           "round trips, %.2f s with failing fetches and commits\n",
           4 * PER_PHASE * SESSIONS, SESSIONS, (double)normal / 1000.0,
           (double)after_down / 1000.0, (double)slow / 1000.0, (double)failing / 1000.0);
    harness_stop(&h, 30);
    kill(broker, SIGTERM);
    waitpid(broker, NULL, 0);
}
