/*
 * libFuzzer target: a rules file, read as the alert rules and as the business rules.
 * Either loader accepts it or rejects it with a message; neither may crash, read out of
 * bounds or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vitrine/alerts.h"
#include "vitrine/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[1024];
    char *copy = malloc(size > 0 ? size : 1);

    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);

    err[0] = '\0';
    struct vt_alert_rules *alerts = vt_alert_rules_parse(copy, size, "fuzz.json", err,
                                                         sizeof err);
    if (alerts == NULL && err[0] == '\0')
        abort(); /* a rejection must come with its reason */
    vt_alert_rules_free(alerts);

    err[0] = '\0';
    struct vt_rules *rules = vt_rules_parse(copy, size, "fuzz.json", err, sizeof err);
    if (rules == NULL && err[0] == '\0')
        abort();
    vt_rules_free(rules);

    free(copy);
    return 0;
}
