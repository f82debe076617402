/*
 * Integration test harness: starts the real vitrine binary against the redis-server and
 * local Kafka broker that tests/run.sh started (VITRINE_TEST_REDIS_PORT,
 * VITRINE_TEST_BROKERS), talks HTTP over loopback, produces and consumes Kafka records,
 * and reads Redis directly.
 *
 * Every test gets its own topic, consumer group, Redis key prefix and HTTP port, so tests
 * can run in parallel processes without seeing each other's data.
 */
#ifndef VITRINE_TEST_HARNESS_H
#define VITRINE_TEST_HARNESS_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct harness {
    char name[64];     /* unique per test: used in topic, group and prefix */
    char topic[96];
    char dead_letter[112];
    char group[96];
    char prefix[48];
    char brokers[256];
    int redis_port;
    int http_port;
    pid_t pid;
    char log_path[256];
};

/* Fill h for a test called name; fails the test when tests/run.sh did not export the
 * server addresses. */
void harness_init(struct harness *h, const char *name);

/* Start vitrine with the harness settings plus extra "NAME=value" environment entries
 * (NULL-terminated list, may be NULL), and wait until /readyz answers 200. */
void harness_start(struct harness *h, const char *const *extra_env);

/* SIGTERM and wait for a clean exit (status 0) within timeout_s. */
void harness_stop(struct harness *h, int timeout_s);

/* HTTP request to vitrine; returns the status code and the body (malloc'd, caller frees)
 * in *body. headers_out (optional) receives the raw response headers (malloc'd). */
int harness_http(const struct harness *h, const char *method, const char *path,
                 const char *extra_headers, char **body, char **headers_out);

/* The same with a request body (sent with its Content-Length). */
int harness_http_body(const struct harness *h, const char *method, const char *path,
                      const char *extra_headers, const char *request_body, char **body,
                      char **headers_out);

/* GET path and parse the JSON body; fails the test unless the status is `status`. */
cJSON *harness_get_json(const struct harness *h, const char *path, int status);

/* Produce records to topic with the given key; waits for delivery. */
void harness_produce(const struct harness *h, const char *topic, const char *key,
                     const char *const *values, size_t n);

/* A producer that lives for a whole test. harness_send queues one record, whose key picks
 * the partition. harness_producer_close waits up to 15 s for delivery and fails the test
 * when records are left. */
typedef struct rd_kafka_s harness_producer;
harness_producer *harness_producer_new(const struct harness *h);
void harness_send(harness_producer *p, const char *topic, const char *key, const char *value);
void harness_producer_close(harness_producer *p);

/* Consume everything currently in a topic (all partitions from the beginning) for up to
 * timeout_ms; calls fn for each record. Returns the number of records seen. */
typedef void (*harness_record_fn)(const char *key, size_t key_len, const char *value,
                                  size_t len, const char *reason_header, void *arg);
size_t harness_consume_all(const struct harness *h, const char *topic, int timeout_ms,
                           harness_record_fn fn, void *arg);

/* Poll the profile until counters.events == events or timeout_s passes; returns the
 * last events value seen. */
int64_t harness_wait_events(const struct harness *h, const char *profile_id, int64_t events,
                            int timeout_s);

/* Value of a metric line ("vitrine_events_total{type=\"product_view\",outcome=\"applied\"}")
 * from /metrics, 0 when absent. */
double harness_metric(const struct harness *h, const char *series);

/* A Redis command on the test's server; returns the reply as text ("(nil)", integers as
 * digits, arrays joined by newlines). Caller frees. */
char *harness_redis(const struct harness *h, const char *fmt, ...);

void harness_sleep_ms(int ms);

/* Run path (looked up in PATH when it has no '/') with argv and env, its output appended
 * to log_path. The child is killed when the test process ends. */
pid_t harness_spawn(const char *path, char *const argv[], char *const env[],
                    const char *log_path);

/* A redis-server of the test's own on port, so that the test may stop it, and wait until
 * it replies to PING. With dir, it keeps an append-only file there, fsynced on every
 * write, so that a SIGKILL loses nothing Redis acknowledged; without, it keeps nothing. */
pid_t harness_start_redis(int port, const char *dir);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int harness_free_port(void);

#endif
