/*
 * vitrine: the daemon's entry point.
 *
 * Start-up order: configuration, catalog, business rules, segment definitions, alert
 * rules, the live updater (catalog topic and stream aggregates), the alerts thread, the
 * decisions producer, the ingest thread, the segment thread, the HTTP server. Then the
 * main thread waits for SIGTERM or SIGINT (reloading the segment definitions on SIGHUP
 * and returning free heap pages to the system every 10 s) and stops in reverse order.
 * HTTP stops first (no new decisions). Ingest finishes the batch,
 * commits its offsets and leaves the consumer group. The decisions producer and the alerts
 * thread deliver what is queued, and the alerts thread gives its lease up. The updater
 * stops last.
 */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vitrine/alerting.h"
#include "vitrine/alerts.h"
#include "vitrine/api.h"
#include "vitrine/catalog.h"
#include "vitrine/config.h"
#include "vitrine/decisions.h"
#include "vitrine/ingest.h"
#include "vitrine/log.h"
#include "vitrine/metrics.h"
#include "vitrine/rules.h"
#include "vitrine/segments_live.h"
#include "vitrine/world.h"

extern char **environ;

/*
 * Main thread: wait for SIGTERM or SIGINT and return it. Meanwhile, every
 * TRIM_INTERVAL_S, hand the heap's free pages back to the system. The HTTP workers
 * allocate each decision record that librdkafka's threads free after delivery; glibc keeps
 * what is freed that way in the workers' arenas. Under the benchmark's load that was about
 * 40 MB of free heap pages in vitrine's RSS. malloc_trim releases them (it takes the arena
 * locks for about a millisecond).
 */
#define TRIM_INTERVAL_S 10

static void reload_segments(struct vt_segments_live *segments, const struct vt_config *cfg)
{
    char err[1024];

    if (vt_segments_live_reload(segments, err, sizeof err) != 0) {
        VT_ERROR("MAIN", "SIGHUP: segment definitions not reloaded, the previous ones stay "
                 "active: %s", err);
        return;
    }
    VT_INFO("MAIN", "SIGHUP: reloaded %zu segment definitions from %s",
            vt_segments_count(vt_segments_live_current(segments)),
            cfg->segments_path[0] != '\0' ? cfg->segments_path : "(no segments.path)");
}


static int wait_for_stop(const sigset_t *signals, struct vt_segments_live *segments,
                         const struct vt_config *cfg)
{
    const struct timespec interval = {.tv_sec = TRIM_INTERVAL_S, .tv_nsec = 0};

    for (;;) {
        int sig = sigtimedwait(signals, NULL, &interval);
        if (sig == SIGHUP)
            reload_segments(segments, cfg);
        else if (sig > 0)
            return sig;
        else if (errno == EAGAIN)
            malloc_trim(0);
    }
}


int main(int argc, char **argv)
{
    static struct vt_config cfg; /* owned by main, read-only once threads start */
    char err[1024];
    struct vt_catalog *cat = NULL;
    struct vt_rules *rules = NULL;
    struct vt_segments_live *segments = NULL;
    struct vt_alert_rules *alert_rules = NULL;
    struct vt_alerting *alerting = NULL;
    struct vt_live *live = NULL;
    struct vt_decisions *decisions = NULL;
    struct vt_ingest *ingest = NULL;
    struct vt_api *api = NULL;
    sigset_t signals;
    int sig = 0;
    int status = EXIT_FAILURE;

    switch (vt_config_load(&cfg, argc, argv, environ, stdout, err, sizeof err)) {
    case VT_CONFIG_EXIT:
        return EXIT_SUCCESS;
    case VT_CONFIG_ERROR:
        fprintf(stderr, "vitrine: %s\n", err);
        return 2;
    case VT_CONFIG_OK:
        break;
    }
    vt_log_threshold = cfg.log_level;

    /* Block the stop signals in every thread; the main thread waits for them below. */
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    VT_INFO("MAIN", "vitrine %s starting", VITRINE_VERSION);
    vt_config_log(&cfg);

    cat = vt_catalog_load(cfg.catalog_path, &cfg, err, sizeof err);
    if (cat == NULL) {
        VT_ERROR("MAIN", "cannot load the catalog: %s", err);
        goto out;
    }
    vt_metrics_catalog(vt_catalog_size(cat), vt_catalog_stats(cat)->rejected);

    rules = vt_rules_load(cfg.rec_rules_path, err, sizeof err);
    if (rules == NULL) {
        VT_ERROR("MAIN", "cannot load the business rules: %s", err);
        goto out;
    }
    segments = vt_segments_live_new(&cfg, rules, err, sizeof err);
    if (segments == NULL) {
        VT_ERROR("MAIN", "cannot load the segment definitions (segments.path): %s", err);
        goto out;
    }
    alert_rules = vt_alert_rules_load(cfg.alerts_rules_path, err, sizeof err);
    if (alert_rules == NULL) {
        VT_ERROR("MAIN", "cannot load the alert rules (alerts.rules_path): %s", err);
        goto out;
    }
    /* The updater takes over the catalog and frees it. */
    live = vt_live_start(&cfg, cat, err, sizeof err);
    if (live == NULL) {
        VT_ERROR("MAIN", "cannot start the live updater: %s", err);
        goto out;
    }
    cat = NULL;
    alerting = vt_alerting_start(&cfg, alert_rules, live, err, sizeof err);
    if (alerting == NULL) {
        VT_ERROR("MAIN", "cannot start the alerts thread: %s", err);
        goto out;
    }
    decisions = vt_decisions_start(&cfg, err, sizeof err);
    if (decisions == NULL) {
        VT_ERROR("MAIN", "cannot start the decisions producer: %s", err);
        goto out;
    }
    ingest = vt_ingest_start(&cfg, live, alert_rules, err, sizeof err);
    if (ingest == NULL) {
        VT_ERROR("MAIN", "cannot start ingestion: %s", err);
        goto out;
    }
    if (vt_segments_live_start(segments, err, sizeof err) != 0) {
        VT_ERROR("MAIN", "cannot start the segment thread: %s", err);
        goto out;
    }
    struct vt_api_parts parts = {.live = live,
                                 .ingest = ingest,
                                 .rules = rules,
                                 .segments = segments,
                                 .decisions = decisions,
                                 .alerting = alerting};
    api = vt_api_start(&cfg, &parts, err, sizeof err);
    if (api == NULL) {
        VT_ERROR("MAIN", "cannot start the HTTP server: %s", err);
        goto out;
    }
    VT_INFO("MAIN", "running; stop with SIGTERM or SIGINT, reload segments with SIGHUP");

    sig = wait_for_stop(&signals, segments, &cfg);
    VT_INFO("MAIN", "received %s, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    status = EXIT_SUCCESS;

out:
    vt_api_stop(api);
    vt_ingest_stop(ingest);
    vt_segments_live_free(segments);
    vt_decisions_stop(decisions);
    vt_alerting_stop(alerting);
    vt_live_stop(live);
    vt_alert_rules_free(alert_rules);
    vt_rules_free(rules);
    vt_catalog_free(cat);
    VT_INFO("MAIN", "stopped");
    return status;
}
