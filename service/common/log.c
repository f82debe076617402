/*
 * vitrine: the logger (see include/vitrine/log.h).
 */
#include "vitrine/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "vitrine/util.h"

enum vt_log_level vt_log_threshold = VT_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const char level_letters[] = "EWID";

int vt_log_level_parse(const char *s, enum vt_log_level *out)
{
    for (int i = 0; i <= VT_LOG_DEBUG; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum vt_log_level)i;
            return 0;
        }
    }
    return -1;
}


const char *vt_log_level_name(enum vt_log_level level)
{
    return level <= VT_LOG_DEBUG ? level_names[level] : "unknown";
}


enum vt_log_level vt_log_level_from_syslog(int syslog_level)
{
    if (syslog_level <= LOG_ERR)
        return VT_LOG_ERROR;
    if (syslog_level == LOG_WARNING)
        return VT_LOG_WARN;
    if (syslog_level <= LOG_INFO)
        return VT_LOG_INFO;
    return VT_LOG_DEBUG;
}


void vt_log_write(enum vt_log_level level, const char *facility, const char *fmt, ...)
{
    char line[2048];
    char stamp[32];
    size_t n;
    int k;
    va_list ap;

    vt_time_format_iso8601(vt_now_ms(), stamp, sizeof stamp);
    k = snprintf(line, sizeof line, "%s %c %-7s ", stamp,
                 level <= VT_LOG_DEBUG ? level_letters[level] : '?', facility);
    n = k > 0 ? (size_t)k : 0;
    if (n >= sizeof line)
        n = sizeof line - 1;

    va_start(ap, fmt);
    k = vsnprintf(line + n, sizeof line - n, fmt, ap);
    va_end(ap);
    if (k > 0)
        n += (size_t)k;
    if (n >= sizeof line - 1)
        n = sizeof line - 2; /* truncated: keep the line, end it */

    /* One line, one write: newlines inside a message would split it, so flatten them. */
    for (size_t i = 0; i < n; i++) {
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    }
    line[n++] = '\n';

    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}
