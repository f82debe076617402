/*
 * vitrine: alert rules: loading and validation of the alert rules file, and the names of
 * the rules' enumerations (see include/vitrine/alerts.h).
 *
 * The file is one JSON object {"rules": [...]}, and docs/alerts.md describes every key.
 * Loading checks everything, so that counting and judging never meet an invalid rule. It
 * rejects unknown or repeated keys, wrong types, values out of range and invalid names.
 * It also rejects combinations that could never match (a brand filter on page views) and
 * conditions without what they need (a stock projection needs a group per product).
 * Every message names the file, the rule (index and name), the key and the reason.
 *
 * Loading does not know the counting bucket width (the setting alerts.bucket_s). The
 * alerts thread checks at start that every window is a multiple of it.
 */
#include "vitrine/alerts.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vitrine/log.h"
#include "vitrine/util.h"

/* Largest rules file read. 64 rules with long texts take about 100 KB. */
#define RULES_FILE_MAX (1024 * 1024)

#define WINDOW_S_MAX 86400         /* one day */
#define COOLDOWN_S_MAX 604800      /* one week */
#define RESOLVE_AFTER_MAX 1000
#define HYSTERESIS_MAX 0.9
#define RATIO_MAX 1000.0
#define HOURS_MAX 720.0            /* 30 days */
#define AMOUNT_MAX 1e12            /* thresholds and minimum volumes */
#define RECIPIENT_MAX (VT_ALERT_NAME_MAX * 2)
#define DESCRIPTION_MAX 1024

#define DEFAULT_BASELINE_WINDOWS 12
#define DEFAULT_MIN_BASELINE_WINDOWS 3
#define DEFAULT_RESOLVE_AFTER 3
#define DEFAULT_HYSTERESIS 0.2

#define COUNT_OF(array) (sizeof(array) / sizeof((array)[0]))

static const char *const dimension_names[VT_DIM_COUNT] = {
    [VT_DIM_PRODUCT] = "product",   [VT_DIM_BRAND] = "brand",
    [VT_DIM_CATEGORY] = "category", [VT_DIM_CAMPAIGN] = "campaign",
    [VT_DIM_REFERRER] = "referrer",
};

static const char *const severity_names[] = {
    [VT_SEVERITY_INFO] = "info",
    [VT_SEVERITY_WARNING] = "warning",
    [VT_SEVERITY_CRITICAL] = "critical",
};

static const char *const aggregate_names[] = {
    [VT_ALERT_COUNT] = "count",
    [VT_ALERT_SUM_QUANTITY] = "sum_quantity",
    [VT_ALERT_SUM_VALUE] = "sum_value",
};

static const char *const condition_names[] = {
    [VT_ALERT_RATIO] = "ratio",
    [VT_ALERT_ABOVE] = "above",
    [VT_ALERT_BELOW] = "below",
    [VT_ALERT_STOCK] = "stock",
};

static const char *const rule_keys[] = {
    "name",       "description", "event",         "aggregate",  "filter",
    "group_by",   "window_s",    "condition",     "min_volume", "cooldown_s",
    "resolve_after", "hysteresis", "severity",    "recipients", "reaction",
};


const char *vt_alert_dimension_name(enum vt_alert_dimension dim)
{
    if ((unsigned)dim < VT_DIM_COUNT)
        return dimension_names[dim];
    return dim == VT_DIM_NONE ? "none" : "unknown";
}


const char *vt_alert_severity_name(enum vt_alert_severity severity)
{
    return (unsigned)severity < COUNT_OF(severity_names) ? severity_names[severity]
                                                         : "unknown";
}


const char *vt_alert_aggregate_name(enum vt_alert_aggregate aggregate)
{
    return (unsigned)aggregate < COUNT_OF(aggregate_names) ? aggregate_names[aggregate]
                                                           : "unknown";
}


const char *vt_alert_condition_name(enum vt_alert_condition condition)
{
    return (unsigned)condition < COUNT_OF(condition_names) ? condition_names[condition]
                                                           : "unknown";
}


/* ---- messages ---- */

/* The position of the parser for messages: the file, and the rule once the list is
 * reached. */
struct load_context {
    const char *file;
    bool in_rule;
    size_t index;
    const char *rule_name; /* NULL until the rule's name was read */
    char *err;
    size_t errsize;
};

static int reject(struct load_context *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Write "<file>: rules[<index>] "<name>": <reason>" (the parts that are known) to the error
 * buffer. Returns -1. */
static int reject(struct load_context *ctx, const char *fmt, ...)
{
    char reason[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);

    if (!ctx->in_rule)
        snprintf(ctx->err, ctx->errsize, "%s: %s", ctx->file, reason);
    else if (ctx->rule_name == NULL)
        snprintf(ctx->err, ctx->errsize, "%s: rules[%zu]: %s", ctx->file, ctx->index, reason);
    else
        snprintf(ctx->err, ctx->errsize, "%s: rules[%zu] \"%s\": %s", ctx->file, ctx->index,
                 ctx->rule_name, reason);
    return -1;
}


/* The JSON type of a value, for "must be ..., not <type>" messages. */
static const char *json_type(const cJSON *value)
{
    if (cJSON_IsString(value))
        return "a string";
    if (cJSON_IsNumber(value))
        return "a number";
    if (cJSON_IsBool(value))
        return "a boolean";
    if (cJSON_IsNull(value))
        return "null";
    if (cJSON_IsArray(value))
        return "an array";
    if (cJSON_IsObject(value))
        return "an object";
    return "an invalid value";
}


/* Write the names as "a, b or c" into buf. */
static void join_names(const char *const *names, size_t n, char *buf, size_t bufsize)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && used < bufsize; i++) {
        const char *separator = ", ";

        if (i == 0)
            separator = "";
        else if (i + 1 == n)
            separator = " or ";
        int written = snprintf(buf + used, bufsize - used, "%s%s", separator, names[i]);

        if (written < 0)
            return;
        used += (size_t)written;
    }
}


/* ---- text checks ---- */

/* Offset of the first control character in s[0..len), or len: below 0x20, 0x7F, and the
 * C1 controls U+0080 to U+009F (UTF-8 0xC2 0x80 to 0xC2 0x9F), which include the line
 * break U+0085. */
static size_t control_character_at(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c == 0x7F)
            return i;
        if (c == 0xC2 && i + 1 < len && (unsigned char)s[i + 1] >= 0x80 &&
            (unsigned char)s[i + 1] <= 0x9F)
            return i;
    }
    return len;
}


static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}


/* Narrow s[0..*len) to its text without ASCII white space at either end. */
static const char *trim(const char *s, size_t *len)
{
    while (*len > 0 && is_space(s[0])) {
        s++;
        (*len)--;
    }
    while (*len > 0 && is_space(s[*len - 1]))
        (*len)--;
    return s;
}


/*
 * Read a string value into out (of outsize bytes): no control characters, at most max
 * bytes, and not empty. With trimmed set, white space at both ends is dropped first.
 * path names the key in messages ("filter.brand").
 */
static int read_string(struct load_context *ctx, const cJSON *value, const char *path,
                       size_t max, bool trimmed, char *out, size_t outsize)
{
    if (!cJSON_IsString(value))
        return reject(ctx, "\"%s\" must be a string, not %s", path, json_type(value));

    size_t len = strlen(value->valuestring);
    size_t at = control_character_at(value->valuestring, len);
    if (at < len)
        return reject(ctx, "\"%s\" contains the control character 0x%02X at byte %zu; "
                           "remove it (line breaks and tabs included)",
                      path,
                      (unsigned char)value->valuestring[at] == 0xC2
                          ? (unsigned char)value->valuestring[at + 1]
                          : (unsigned char)value->valuestring[at],
                      at + 1);

    const char *s = trimmed ? trim(value->valuestring, &len) : value->valuestring;
    if (len == 0)
        return reject(ctx, "\"%s\" is empty", path);
    if (len > max || len >= outsize)
        return reject(ctx, "\"%s\" is %zu bytes long; the maximum is %zu", path, len,
                      max < outsize - 1 ? max : outsize - 1);
    memcpy(out, s, len);
    out[len] = '\0';
    return 0;
}


/* Find name among names[0..n). Returns its index or -1. */
static int find_name(const char *name, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (names[i] != NULL && strcmp(name, names[i]) == 0)
            return (int)i;
    }
    return -1;
}


/*
 * Read a string that must be one of names[0..n) and store its index. An absent key gives
 * fallback, or is rejected when fallback is -1. path names the key in messages.
 */
static int read_choice(struct load_context *ctx, const cJSON *obj, const char *key,
                       const char *path, const char *const *names, size_t n, int fallback,
                       int *out)
{
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(obj, key);
    char expected[256];

    join_names(names, n, expected, sizeof expected);
    if (value == NULL) {
        if (fallback < 0)
            return reject(ctx, "missing \"%s\" (%s)", path, expected);
        *out = fallback;
        return 0;
    }
    if (!cJSON_IsString(value))
        return reject(ctx, "\"%s\" must be a string (%s), not %s", path, expected,
                      json_type(value));

    int found = find_name(value->valuestring, names, n);
    if (found < 0)
        return reject(ctx, "unknown \"%s\" \"%.100s\"; expected %s", path, value->valuestring,
                      expected);
    *out = found;
    return 0;
}


/* ---- numbers ---- */

/* The accepted values of a number key. */
struct number_range {
    double min;
    double max;
    bool above_min; /* min itself is not accepted */
    bool whole;     /* whole numbers only */
};


static void describe_range(const struct number_range *range, char *buf, size_t bufsize)
{
    const char *kind = range->whole ? "a whole number" : "a number";

    if (range->above_min)
        snprintf(buf, bufsize, "%s above %.15g and at most %.15g", kind, range->min,
                 range->max);
    else
        snprintf(buf, bufsize, "%s from %.15g to %.15g", kind, range->min, range->max);
}


/* Read a number in range. An absent key keeps *out when optional, and is rejected
 * otherwise. */
static int read_number(struct load_context *ctx, const cJSON *obj, const char *key,
                       const char *path, const struct number_range *range, bool optional,
                       double *out)
{
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(obj, key);
    char expected[128];

    describe_range(range, expected, sizeof expected);
    if (value == NULL) {
        if (optional)
            return 0;
        return reject(ctx, "missing \"%s\" (%s)", path, expected);
    }
    if (!cJSON_IsNumber(value))
        return reject(ctx, "\"%s\" must be %s, not %s", path, expected, json_type(value));

    double v = value->valuedouble;
    bool fits = isfinite(v) && v <= range->max && (range->above_min ? v > range->min
                                                                    : v >= range->min);
    if (fits && range->whole)
        fits = v == floor(v);
    if (!fits)
        return reject(ctx, "\"%s\" is %.15g; expected %s", path, v, expected);
    *out = v;
    return 0;
}


static int read_whole(struct load_context *ctx, const cJSON *obj, const char *key,
                      const char *path, int64_t min, int64_t max, bool optional, int64_t *out)
{
    struct number_range range = {.min = (double)min, .max = (double)max, .whole = true};
    double v = (double)*out;

    if (read_number(ctx, obj, key, path, &range, optional, &v) != 0)
        return -1;
    *out = (int64_t)v;
    return 0;
}


/* ---- objects ---- */

/*
 * Reject keys that are not in allowed and keys that appear twice (cJSON keeps both copies
 * and lookups would see only the first). where names the object in messages.
 */
static int check_keys(struct load_context *ctx, const cJSON *obj, const char *where,
                      const char *const *allowed, size_t n_allowed)
{
    for (const cJSON *item = obj->child; item != NULL; item = item->next) {
        if (find_name(item->string, allowed, n_allowed) < 0) {
            char expected[512];

            join_names(allowed, n_allowed, expected, sizeof expected);
            return reject(ctx, "unknown key \"%.100s\" in %s; expected %s", item->string,
                          where, expected);
        }
        for (const cJSON *earlier = obj->child; earlier != item; earlier = earlier->next) {
            if (strcmp(earlier->string, item->string) == 0)
                return reject(ctx, "key \"%s\" appears twice in %s", item->string, where);
        }
    }
    return 0;
}


/* ---- the keys of a rule ---- */

static bool name_character(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}


bool vt_alert_name_valid(const char *s)
{
    size_t n = 0;

    for (; s[n] != '\0'; n++) {
        if (n >= VT_ALERT_NAME_MAX || !name_character(s[n]))
            return false;
    }
    return n > 0;
}


static int read_name(struct load_context *ctx, const cJSON *item, struct vt_alert_rule *rule)
{
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(item, "name");

    if (value == NULL)
        return reject(ctx, "missing \"name\"");
    if (read_string(ctx, value, "name", VT_ALERT_NAME_MAX, false, rule->name,
                    sizeof rule->name) != 0)
        return -1;
    for (const char *c = rule->name; *c != '\0'; c++) {
        if ((unsigned char)*c >= 0x80)
            return reject(ctx, "\"name\" \"%s\" contains a character outside ASCII at byte "
                               "%zu; a name uses only letters A to Z, digits, '_', '.' and '-'",
                          rule->name, (size_t)(c - rule->name) + 1);
        if (!name_character(*c))
            return reject(ctx, "\"name\" \"%s\" contains '%c'; a name uses only letters, "
                               "digits, '_', '.' and '-'",
                          rule->name, *c);
    }
    return 0;
}


static int read_event(struct load_context *ctx, const cJSON *item, struct vt_alert_rule *rule)
{
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(item, "event");

    if (value == NULL)
        return reject(ctx, "missing \"event\" (an event type such as purchase, or any)");
    if (!cJSON_IsString(value))
        return reject(ctx, "\"event\" must be a string (an event type such as purchase, or "
                           "any), not %s",
                      json_type(value));
    if (strcmp(value->valuestring, "any") == 0) {
        rule->any_event = true;
        return 0;
    }
    if (vt_event_type_parse(value->valuestring, strlen(value->valuestring), &rule->event) == 0)
        return 0;

    char expected[512];
    const char *names[VT_EV_TYPE_COUNT + 1];
    for (int i = 0; i < VT_EV_TYPE_COUNT; i++)
        names[i] = vt_event_type_name((enum vt_event_type)i);
    names[VT_EV_TYPE_COUNT] = "any";
    join_names(names, COUNT_OF(names), expected, sizeof expected);
    return reject(ctx, "unknown \"event\" \"%.100s\"; expected %s", value->valuestring,
                  expected);
}


static int read_filter(struct load_context *ctx, const cJSON *item, struct vt_alert_rule *rule)
{
    const cJSON *filter = cJSON_GetObjectItemCaseSensitive(item, "filter");

    if (filter == NULL)
        return 0;
    if (!cJSON_IsObject(filter))
        return reject(ctx, "\"filter\" must be an object, not %s", json_type(filter));
    if (check_keys(ctx, filter, "\"filter\"", dimension_names, VT_DIM_COUNT) != 0)
        return -1;
    if (filter->child == NULL)
        return reject(ctx, "\"filter\" is empty; leave it out to count every event of the "
                           "type");

    for (int dim = 0; dim < VT_DIM_COUNT; dim++) {
        const cJSON *value = cJSON_GetObjectItemCaseSensitive(filter, dimension_names[dim]);
        char path[32];

        if (value == NULL)
            continue;
        snprintf(path, sizeof path, "filter.%s", dimension_names[dim]);
        if (read_string(ctx, value, path, VT_NAME_MAX, true, rule->filter[dim],
                        sizeof rule->filter[dim]) != 0)
            return -1;
        if (dim != VT_DIM_REFERRER)
            continue;

        /* Events are compared by the referrer's host, so the filter is reduced to its host
         * as well: "https://www.Instagram.com/" filters "instagram.com". */
        char host[VT_NAME_MAX + 1];
        vt_alert_referrer_host(rule->filter[dim], host, sizeof host);
        if (host[0] == '\0')
            return reject(ctx, "\"filter.referrer\" \"%s\" names no host; give a host such "
                               "as instagram.com",
                          rule->filter[dim]);
        vt_strlcpy(rule->filter[dim], host, sizeof rule->filter[dim]);
    }
    return 0;
}


static int read_group_by(struct load_context *ctx, const cJSON *item,
                         struct vt_alert_rule *rule)
{
    int dim = VT_DIM_NONE;

    if (read_choice(ctx, item, "group_by", "group_by", dimension_names, VT_DIM_COUNT,
                    VT_DIM_NONE, &dim) != 0)
        return -1;
    rule->group_by = (enum vt_alert_dimension)dim;
    return 0;
}


/* Read baseline_windows and min_baseline_windows of a ratio or below condition. */
static int read_baseline(struct load_context *ctx, const cJSON *condition,
                         struct vt_alert_rule *rule)
{
    int64_t windows = DEFAULT_BASELINE_WINDOWS;

    if (read_whole(ctx, condition, "baseline_windows", "condition.baseline_windows", 1,
                   VT_ALERT_BASELINE_MAX, true, &windows) != 0)
        return -1;
    rule->baseline_windows = (size_t)windows;

    /* A ratio to a baseline without data would compare the value with the floor of 1
     * only, so a ratio rule needs at least one window with data. A below rule may do
     * without. */
    int64_t minimum = windows < DEFAULT_MIN_BASELINE_WINDOWS ? windows
                                                             : DEFAULT_MIN_BASELINE_WINDOWS;
    int64_t lowest = rule->condition == VT_ALERT_RATIO ? 1 : 0;
    if (read_whole(ctx, condition, "min_baseline_windows", "condition.min_baseline_windows",
                   lowest, windows, true, &minimum) != 0)
        return -1;
    rule->min_baseline_windows = (size_t)minimum;
    return 0;
}


static int read_condition(struct load_context *ctx, const cJSON *item,
                          struct vt_alert_rule *rule)
{
    static const char *const ratio_keys[] = {"type", "ratio", "baseline_windows",
                                             "min_baseline_windows"};
    static const char *const above_keys[] = {"type", "threshold"};
    static const char *const below_keys[] = {"type", "threshold", "baseline_windows",
                                             "min_baseline_windows"};
    static const char *const stock_keys[] = {"type", "hours"};
    const cJSON *condition = cJSON_GetObjectItemCaseSensitive(item, "condition");

    if (condition == NULL)
        return reject(ctx, "missing \"condition\" (an object with \"type\" ratio, above, below "
                           "or stock)");
    if (!cJSON_IsObject(condition))
        return reject(ctx, "\"condition\" must be an object, not %s", json_type(condition));

    int type = 0;
    if (read_choice(ctx, condition, "type", "condition.type", condition_names,
                    COUNT_OF(condition_names), -1, &type) != 0)
        return -1;
    rule->condition = (enum vt_alert_condition)type;

    char where[64];
    snprintf(where, sizeof where, "\"condition\" (type %s)", condition_names[type]);

    switch (rule->condition) {
    case VT_ALERT_RATIO: {
        struct number_range range = {.min = 1, .max = RATIO_MAX, .above_min = true};
        if (check_keys(ctx, condition, where, ratio_keys, COUNT_OF(ratio_keys)) != 0 ||
            read_number(ctx, condition, "ratio", "condition.ratio", &range, false,
                        &rule->ratio) != 0)
            return -1;
        return read_baseline(ctx, condition, rule);
    }
    case VT_ALERT_ABOVE: {
        struct number_range range = {.min = 0, .max = AMOUNT_MAX, .above_min = true};
        if (check_keys(ctx, condition, where, above_keys, COUNT_OF(above_keys)) != 0 ||
            read_number(ctx, condition, "threshold", "condition.threshold", &range, false,
                        &rule->threshold) != 0)
            return -1;
        break;
    }
    case VT_ALERT_BELOW: {
        struct number_range range = {.min = 0, .max = AMOUNT_MAX};
        if (check_keys(ctx, condition, where, below_keys, COUNT_OF(below_keys)) != 0 ||
            read_number(ctx, condition, "threshold", "condition.threshold", &range, false,
                        &rule->threshold) != 0)
            return -1;
        return read_baseline(ctx, condition, rule);
    }
    case VT_ALERT_STOCK: {
        struct number_range range = {.min = 0, .max = HOURS_MAX, .above_min = true};
        if (check_keys(ctx, condition, where, stock_keys, COUNT_OF(stock_keys)) != 0 ||
            read_number(ctx, condition, "hours", "condition.hours", &range, false,
                        &rule->hours) != 0)
            return -1;
        break;
    }
    }
    return 0;
}


static int read_recipients(struct load_context *ctx, const cJSON *item,
                           struct vt_alert_rule *rule)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(item, "recipients");

    if (list == NULL)
        return reject(ctx, "missing \"recipients\" (an array of 1 to %d names or addresses)",
                      VT_ALERT_RECIPIENTS_MAX);
    if (!cJSON_IsArray(list))
        return reject(ctx, "\"recipients\" must be an array of strings, not %s",
                      json_type(list));

    int count = cJSON_GetArraySize(list);
    if (count == 0)
        return reject(ctx, "\"recipients\" is empty; name at least one recipient");
    if (count > VT_ALERT_RECIPIENTS_MAX)
        return reject(ctx, "\"recipients\" lists %d entries; the maximum is %d", count,
                      VT_ALERT_RECIPIENTS_MAX);

    for (const cJSON *entry = list->child; entry != NULL; entry = entry->next) {
        char path[32];
        size_t i = rule->n_recipients;

        snprintf(path, sizeof path, "recipients[%zu]", i);
        if (read_string(ctx, entry, path, RECIPIENT_MAX, true, rule->recipients[i],
                        sizeof rule->recipients[i]) != 0)
            return -1;
        for (size_t k = 0; k < i; k++) {
            if (strcmp(rule->recipients[k], rule->recipients[i]) == 0)
                return reject(ctx, "\"%s\" \"%s\" is listed twice", path, rule->recipients[i]);
        }
        rule->n_recipients++;
    }
    return 0;
}


static int read_texts(struct load_context *ctx, const cJSON *item, struct vt_alert_rule *rule)
{
    const cJSON *reaction = cJSON_GetObjectItemCaseSensitive(item, "reaction");
    const cJSON *description = cJSON_GetObjectItemCaseSensitive(item, "description");

    if (reaction == NULL)
        return reject(ctx, "missing \"reaction\" (the text that tells the recipients what to "
                           "do)");
    if (read_string(ctx, reaction, "reaction", VT_ALERT_TEXT_MAX, true, rule->reaction,
                    sizeof rule->reaction) != 0)
        return -1;

    /* The description is for readers of the file only and is not kept. */
    char unused[DESCRIPTION_MAX + 1];
    if (description != NULL &&
        read_string(ctx, description, "description", DESCRIPTION_MAX, true, unused,
                    sizeof unused) != 0)
        return -1;
    return 0;
}


static int read_limits(struct load_context *ctx, const cJSON *item, struct vt_alert_rule *rule)
{
    struct number_range volume = {.min = 0, .max = AMOUNT_MAX};
    struct number_range hysteresis = {.min = 0, .max = HYSTERESIS_MAX};
    int64_t resolve_after = DEFAULT_RESOLVE_AFTER;
    int severity = 0;

    rule->hysteresis = DEFAULT_HYSTERESIS;
    if (read_number(ctx, item, "min_volume", "min_volume", &volume, false,
                    &rule->min_volume) != 0 ||
        read_whole(ctx, item, "cooldown_s", "cooldown_s", 0, COOLDOWN_S_MAX, false,
                   &rule->cooldown_s) != 0 ||
        read_whole(ctx, item, "resolve_after", "resolve_after", 1, RESOLVE_AFTER_MAX, true,
                   &resolve_after) != 0 ||
        read_number(ctx, item, "hysteresis", "hysteresis", &hysteresis, true,
                    &rule->hysteresis) != 0 ||
        read_choice(ctx, item, "severity", "severity", severity_names,
                    COUNT_OF(severity_names), -1, &severity) != 0)
        return -1;
    rule->resolve_after = (size_t)resolve_after;
    rule->severity = (enum vt_alert_severity)severity;
    return 0;
}


static bool type_has_products(enum vt_event_type type)
{
    return type != VT_EV_PAGE_VIEW && type != VT_EV_SEARCH;
}


static bool item_dimension(int dim)
{
    return dim == VT_DIM_PRODUCT || dim == VT_DIM_BRAND || dim == VT_DIM_CATEGORY;
}


/* Reject combinations that could never match an event or that a condition cannot judge. */
static int check_combination(struct load_context *ctx, const struct vt_alert_rule *rule)
{
    if (!rule->any_event && !type_has_products(rule->event)) {
        const char *type = vt_event_type_name(rule->event);

        for (int dim = 0; dim < VT_DIM_COUNT; dim++) {
            if (item_dimension(dim) && rule->filter[dim][0] != '\0')
                return reject(ctx, "\"filter.%s\" never matches: %s events carry no "
                                   "products",
                              dimension_names[dim], type);
        }
        if (rule->group_by != VT_DIM_NONE && item_dimension(rule->group_by))
            return reject(ctx, "\"group_by\" %s never matches: %s events carry no products",
                          dimension_names[rule->group_by], type);
        if (rule->aggregate != VT_ALERT_COUNT)
            return reject(ctx, "\"aggregate\" %s needs products; %s events carry none, so "
                               "use count",
                          aggregate_names[rule->aggregate], type);
    }

    if (rule->condition != VT_ALERT_STOCK)
        return 0;
    if (rule->any_event)
        return reject(ctx, "a stock condition needs one event type (usually purchase), not "
                           "any");
    if (rule->group_by != VT_DIM_PRODUCT)
        return reject(ctx, "a stock condition needs \"group_by\": \"product\", because stock "
                           "is known per product");
    if (rule->aggregate == VT_ALERT_SUM_VALUE)
        return reject(ctx, "a stock condition needs \"aggregate\" sum_quantity or count, "
                           "because it compares units with the stock");
    return 0;
}


static int read_rule(struct load_context *ctx, const cJSON *item, struct vt_alert_rules *rules)
{
    struct vt_alert_rule *rule = &rules->rules[rules->n];
    int aggregate = VT_ALERT_COUNT;

    memset(rule, 0, sizeof *rule);
    if (!cJSON_IsObject(item))
        return reject(ctx, "a rule must be an object, not %s", json_type(item));
    if (read_name(ctx, item, rule) != 0)
        return -1;
    ctx->rule_name = rule->name;
    for (size_t i = 0; i < rules->n; i++) {
        if (strcmp(rules->rules[i].name, rule->name) == 0)
            return reject(ctx, "the name is already used by rules[%zu]", i);
    }

    if (check_keys(ctx, item, "the rule", rule_keys, COUNT_OF(rule_keys)) != 0 ||
        read_event(ctx, item, rule) != 0 ||
        read_choice(ctx, item, "aggregate", "aggregate", aggregate_names,
                    COUNT_OF(aggregate_names), VT_ALERT_COUNT, &aggregate) != 0)
        return -1;
    rule->aggregate = (enum vt_alert_aggregate)aggregate;

    if (read_filter(ctx, item, rule) != 0 || read_group_by(ctx, item, rule) != 0 ||
        read_whole(ctx, item, "window_s", "window_s", 1, WINDOW_S_MAX, false,
                   &rule->window_s) != 0 ||
        read_condition(ctx, item, rule) != 0 || read_limits(ctx, item, rule) != 0 ||
        read_recipients(ctx, item, rule) != 0 || read_texts(ctx, item, rule) != 0 ||
        check_combination(ctx, rule) != 0)
        return -1;

    rules->n++;
    return 0;
}


/* ---- the file as a whole ---- */

/* Line and column (both from 1) of a byte offset, for messages about the text. */
static void locate(const char *text, size_t offset, size_t *line, size_t *column)
{
    *line = 1;
    *column = 1;
    for (size_t i = 0; i < offset; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *column = 1;
        } else {
            (*column)++;
        }
    }
}


/* Offset of the first byte that is not valid UTF-8, or len. */
static size_t invalid_utf8_at(const char *text, size_t len)
{
    size_t i = 0;

    while (i < len) {
        size_t step = vt_utf8_sequence((const unsigned char *)text + i, len - i);

        if (step == 0)
            return i;
        i += step;
    }
    return len;
}


/* Parse the text as one JSON value followed by nothing but white space. */
static cJSON *parse_json(struct load_context *ctx, const char *text, size_t len)
{
    size_t line, column;
    bool escaped;

    size_t at = vt_json_nul_at(text, len, &escaped);
    if (at < len) {
        locate(text, at, &line, &column);
        if (escaped)
            reject(ctx, "the escape \\u0000 at line %zu, column %zu is not accepted, because "
                        "it would end the string there",
                   line, column);
        else
            reject(ctx, "a NUL byte at line %zu, column %zu; a rules file is UTF-8 text", line,
                   column);
        return NULL;
    }

    at = invalid_utf8_at(text, len);
    if (at < len) {
        locate(text, at, &line, &column);
        reject(ctx, "invalid UTF-8 at line %zu, column %zu; save the file as UTF-8", line,
               column);
        return NULL;
    }

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (root == NULL) {
        at = end != NULL && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        locate(text, at, &line, &column);
        reject(ctx, "invalid JSON at line %zu, column %zu", line, column);
        return NULL;
    }

    at = (size_t)(end - text);
    while (at < len && is_space(text[at]))
        at++;
    if (at < len) {
        locate(text, at, &line, &column);
        reject(ctx, "unexpected text after the JSON object at line %zu, column %zu", line,
               column);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}


/* Check the top-level object and read every rule into rules. */
static int read_rules(struct load_context *ctx, const cJSON *root, struct vt_alert_rules *rules)
{
    static const char *const top_keys[] = {"rules"};

    if (!cJSON_IsObject(root))
        return reject(ctx, "expected an object with an array \"rules\", not %s",
                      json_type(root));
    if (check_keys(ctx, root, "the top-level object", top_keys, COUNT_OF(top_keys)) != 0)
        return -1;

    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "rules");
    if (list == NULL)
        return reject(ctx, "missing \"rules\" (an array of rules, which may be empty)");
    if (!cJSON_IsArray(list))
        return reject(ctx, "\"rules\" must be an array, not %s", json_type(list));

    int count = cJSON_GetArraySize(list);
    if (count > VT_ALERT_RULES_MAX)
        return reject(ctx, "%d rules; the maximum is %d", count, VT_ALERT_RULES_MAX);

    ctx->in_rule = true;
    for (const cJSON *item = list->child; item != NULL; item = item->next) {
        ctx->index = rules->n;
        ctx->rule_name = NULL;
        if (read_rule(ctx, item, rules) != 0)
            return -1;
    }
    return 0;
}


struct vt_alert_rules *vt_alert_rules_parse(const char *json, size_t len, const char *name,
                                            char *err, size_t errsize)
{
    struct load_context ctx = {.file = name != NULL ? name : "alert rules", .err = err,
                               .errsize = errsize};

    cJSON *root = parse_json(&ctx, json, len);
    if (root == NULL)
        return NULL;

    struct vt_alert_rules *rules = calloc(1, sizeof *rules);
    if (rules == NULL) {
        reject(&ctx, "out of memory");
    } else if (read_rules(&ctx, root, rules) != 0) {
        free(rules);
        rules = NULL;
    }
    cJSON_Delete(root);
    return rules;
}


void vt_alert_rules_free(struct vt_alert_rules *rules)
{
    free(rules);
}


struct vt_alert_rules *vt_alert_rules_load(const char *path, char *err, size_t errsize)
{
    if (path == NULL || path[0] == '\0') {
        struct vt_alert_rules *none = calloc(1, sizeof *none);

        if (none == NULL)
            snprintf(err, errsize, "out of memory");
        else
            VT_INFO("ALERTS", "no alert rules: alerts.rules_path is empty");
        return none;
    }

    size_t len = 0;
    char *text = vt_read_file(path, RULES_FILE_MAX, "alert rules file", &len, err, errsize);
    if (text == NULL)
        return NULL;
    struct vt_alert_rules *rules = vt_alert_rules_parse(text, len, path, err, errsize);
    free(text);

    if (rules != NULL)
        VT_INFO("ALERTS", "loaded %s: %zu alert rules", path, rules->n);
    return rules;
}

