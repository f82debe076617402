/*
 * Keep the unit tests' output to failures: log warnings and errors only, unless
 * VITRINE_TEST_LOG names another level (error, warn, info, debug). Every test runs in its
 * own process, so this runs before each of them.
 */
#include <stdlib.h>

#include "vitrine/log.h"

__attribute__((constructor)) static void quiet_logs(void)
{
    const char *level = getenv("VITRINE_TEST_LOG");

    if (level == NULL || vt_log_level_parse(level, &vt_log_threshold) != 0)
        vt_log_threshold = VT_LOG_WARN;
}
