/*
 * vitrine: the logger.
 *
 * One line per lifecycle event, retry and caught error, never one per request on the hot
 * path. A line reads
 *
 *   2026-12-04T20:14:40.123Z W INGEST  redis batch failed, retrying in 400 ms: ...
 *
 * with the level letter (E, W, I, D) and an upper-case facility tag naming the module.
 * VT_LOG checks the level before it formats anything. Each line is written with a single
 * write(2), so lines from different threads do not interleave.
 */
#ifndef VITRINE_LOG_H
#define VITRINE_LOG_H

enum vt_log_level {
    VT_LOG_ERROR = 0,
    VT_LOG_WARN = 1,
    VT_LOG_INFO = 2,
    VT_LOG_DEBUG = 3,
};

/* Current threshold. Owned by main(): set once from the configuration before any thread
 * starts, read-only afterwards. */
extern enum vt_log_level vt_log_threshold;

/* Parse "error", "warn", "info" or "debug". Returns 0 or -1. */
int vt_log_level_parse(const char *s, enum vt_log_level *out);
const char *vt_log_level_name(enum vt_log_level level);

/* Write one line. Use the macros, which skip formatting below the threshold. */
void vt_log_write(enum vt_log_level level, const char *facility, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define VT_LOG(level, facility, ...)                                                     \
    do {                                                                                 \
        if ((level) <= vt_log_threshold)                                                 \
            vt_log_write((level), (facility), __VA_ARGS__);                              \
    } while (0)

#define VT_ERROR(facility, ...) VT_LOG(VT_LOG_ERROR, facility, __VA_ARGS__)
#define VT_WARN(facility, ...) VT_LOG(VT_LOG_WARN, facility, __VA_ARGS__)
#define VT_INFO(facility, ...) VT_LOG(VT_LOG_INFO, facility, __VA_ARGS__)
#define VT_DEBUG(facility, ...) VT_LOG(VT_LOG_DEBUG, facility, __VA_ARGS__)

/* Map a syslog level (as librdkafka passes to its log callback) to ours. */
enum vt_log_level vt_log_level_from_syslog(int syslog_level);

#endif
