/*
 * vitrine: business rules: loading and validation of the rules file, and matching against
 * the catalog of one request (see include/vitrine/rules.h).
 *
 * The file is one JSON object {"rules": [...]}; docs/recommendations.md describes every
 * key. Loading checks everything, so that a request never meets an invalid rule: unknown
 * or repeated keys, wrong types, empty lists, factor and position ranges, names. Brand and
 * category names, product ids and the rule names are copied; after loading nothing
 * changes.
 *
 * Matching works on catalog indexes, which differ between world versions, so each request
 * looks up the brand names and product ids of the rules in its scope (rec_rules_begin).
 * Categories match by name: a product matches the rule's category "makeup" when one of its
 * categories is "makeup" or starts with "makeup.", ignoring ASCII case. A per-request memo
 * keeps the result per catalog category.
 */
#include "recommend_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vitrine/log.h"
#include "vitrine/segments.h"
#include "vitrine/util.h"

#define FACTOR_MIN 0.01
#define FACTOR_MAX 100.0
/* Bound for numeric product ids, as in the catalog: 2^53, the largest integer up to which
 * a double is exact. */
#define PRODUCT_NUMBER_MAX 9007199254740992.0
#define POSITION_MAX VT_REC_LIMIT_MAX
#define SCOPE_ALL ((1u << (REC_SCOPE_RERANK + 1)) - 1)

_Static_assert(REC_CATEGORY_MEMO_SLOTS == 1 << 8, "category_rules keeps the top 8 bits");

/* A segment condition of -1 matches any session; gender and prices use -1 for "none". */
#define ANY -1

struct name_list {
    size_t n;
    char **names;
};

struct rule_match {
    struct name_list brands;
    struct name_list categories;
    struct name_list products;
    int gender; /* enum vt_gender, or ANY */
    double price_min;
    double price_max;
};

struct rule {
    char name[VT_NAME_MAX + 1];
    enum rec_rule_action action;
    double factor;     /* boost */
    unsigned position; /* pin */
    char *product;     /* pin */
    uint32_t scopes;   /* bit per placement, and REC_SCOPE_RERANK */
    int segment;       /* enum vt_segment, or ANY */
    /* An analyst segment (segments.h) the session must be in; "" for none. */
    char named_segment[VT_SEGMENT_NAME_MAX + 1];
    struct rule_match match;
};

struct vt_rules {
    size_t n;
    struct rule items[];
};

/* Parser state for error messages. */
struct parser {
    const char *file;
    size_t index;
    const char *rule_name; /* NULL until the rule's name was read */
    char *err;
    size_t errsize;
    size_t lookups; /* brand names and product ids so far, for VT_RULES_LOOKUPS_MAX */
};

static const char *const action_names[] = {
    [REC_RULE_BOOST] = "boost",
    [REC_RULE_PIN] = "pin",
    [REC_RULE_FILTER] = "filter",
};


/* ---- messages ---- */

static int fail(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Write "<file>: rules[<i>] "<name>": <reason>" to the error buffer. Returns -1. */
static int fail(struct parser *ps, const char *fmt, ...)
{
    char reason[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);

    if (ps->rule_name != NULL)
        snprintf(ps->err, ps->errsize, "%s: rules[%zu] \"%s\": %s", ps->file, ps->index,
                 ps->rule_name, reason);
    else
        snprintf(ps->err, ps->errsize, "%s: rules[%zu]: %s", ps->file, ps->index, reason);
    return -1;
}


static int fail_file(char *err, size_t errsize, const char *file, const char *reason)
{
    snprintf(err, errsize, "%s: %s", file, reason);
    return -1;
}


/* ---- freeing ---- */

static void name_list_free(struct name_list *list)
{
    for (size_t i = 0; i < list->n; i++)
        free(list->names[i]);
    free(list->names);
    list->names = NULL;
    list->n = 0;
}


static void rule_free(struct rule *r)
{
    free(r->product);
    name_list_free(&r->match.brands);
    name_list_free(&r->match.categories);
    name_list_free(&r->match.products);
}


void vt_rules_free(struct vt_rules *rules)
{
    if (rules == NULL)
        return;
    for (size_t i = 0; i < rules->n; i++)
        rule_free(&rules->items[i]);
    free(rules);
}


size_t vt_rules_count(const struct vt_rules *rules)
{
    return rules != NULL ? rules->n : 0;
}


/* ---- parsing helpers ---- */

static char *copy_string(const char *s, size_t len)
{
    char *copy = malloc(len + 1);

    if (copy == NULL)
        return NULL;
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}


/* Strip ASCII white space from both ends, as the catalog does with its names. */
static const char *trim(const char *s, size_t *len)
{
    while (*len > 0 && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')) {
        s++;
        (*len)--;
    }
    while (*len > 0 && (s[*len - 1] == ' ' || s[*len - 1] == '\t' || s[*len - 1] == '\r' ||
                        s[*len - 1] == '\n'))
        (*len)--;
    return s;
}


/* Offset of the first control character (a byte below 0x20, or 0x7F) in s[0..len), or
 * len when there is none. */
static size_t control_character_at(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c < 0x20 || c == 0x7F)
            return i;
    }
    return len;
}


/* Reject a rule name or product id with a control character, which no catalog id
 * contains and which would corrupt log lines and reasons. key names the value. */
static int check_no_control(struct parser *ps, const char *s, size_t len, const char *key)
{
    size_t at = control_character_at(s, len);

    if (at < len)
        return fail(ps, "\"%s\" contains the control character 0x%02X at byte %zu; rule "
                        "names and product ids must not contain control characters",
                    key, (unsigned char)s[at], at + 1);
    return 0;
}


/*
 * Write a JSON number that is a product id into buf as its decimal text, as the catalog
 * and rerank read a numeric id (4958 gives "4958"). Returns the length, or 0 when the
 * number is not a whole number from 0 to 2^53.
 */
static size_t format_product_number(const cJSON *item, char *buf, size_t bufsize)
{
    double v = item->valuedouble;

    if (!(v >= 0 && v <= PRODUCT_NUMBER_MAX) || v != floor(v))
        return 0;
    int n = snprintf(buf, bufsize, "%lld", (long long)v);
    return n > 0 && (size_t)n < bufsize ? (size_t)n : 0;
}


/* Reject unknown keys and keys that appear twice in one object. cJSON keeps both copies
 * of a repeated key, and only the first would count. */
static int check_keys(struct parser *ps, const cJSON *obj, const char *where,
                      const char *const *allowed, size_t n_allowed)
{
    for (const cJSON *item = obj->child; item != NULL; item = item->next) {
        bool known = false;

        for (size_t i = 0; i < n_allowed && !known; i++)
            known = strcmp(item->string, allowed[i]) == 0;
        if (!known)
            return fail(ps, "unknown key \"%s\" in %s", item->string, where);
        for (const cJSON *before = obj->child; before != item; before = before->next) {
            if (strcmp(before->string, item->string) == 0)
                return fail(ps, "key \"%s\" appears twice in %s", item->string, where);
        }
    }
    return 0;
}


static int read_name(struct parser *ps, const cJSON *rule, char *name, size_t namesize)
{
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(rule, "name");

    if (value == NULL)
        return fail(ps, "missing \"name\"");
    if (!cJSON_IsString(value))
        return fail(ps, "\"name\" must be a string");

    size_t len = strlen(value->valuestring);
    if (check_no_control(ps, value->valuestring, len, "name") != 0)
        return -1;
    const char *s = trim(value->valuestring, &len);
    if (len == 0)
        return fail(ps, "\"name\" is empty");
    if (len >= namesize)
        return fail(ps, "\"name\" is longer than %zu bytes", namesize - 1);
    memcpy(name, s, len);
    name[len] = '\0';
    return 0;
}


static int read_action(struct parser *ps, const cJSON *rule, enum rec_rule_action *out)
{
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(rule, "action");

    if (value == NULL)
        return fail(ps, "missing \"action\" (boost, pin or filter)");
    if (!cJSON_IsString(value))
        return fail(ps, "\"action\" must be a string: boost, pin or filter");
    for (size_t i = 0; i < sizeof action_names / sizeof action_names[0]; i++) {
        if (strcmp(value->valuestring, action_names[i]) == 0) {
            *out = (enum rec_rule_action)i;
            return 0;
        }
    }
    return fail(ps, "unknown action \"%s\"; expected boost, pin or filter", value->valuestring);
}


/* Read an array of 1 to VT_RULE_VALUES_MAX non-empty strings of at most maxlen bytes. With
 * product_ids set, entries may also be whole numbers (read as their decimal text), and
 * strings must not contain control characters. */
static int read_names(struct parser *ps, const cJSON *array, const char *key, size_t maxlen,
                      bool product_ids, struct name_list *out)
{
    if (!cJSON_IsArray(array))
        return fail(ps, "\"%s\" must be an array of strings", key);

    int count = cJSON_GetArraySize(array);
    if (count == 0)
        return fail(ps, "\"%s\" is empty; list at least one value or leave the key out", key);
    if (count > VT_RULE_VALUES_MAX)
        return fail(ps, "\"%s\" lists %d values; the maximum is %d", key, count,
                    VT_RULE_VALUES_MAX);

    out->names = calloc((size_t)count, sizeof *out->names);
    if (out->names == NULL)
        return fail(ps, "out of memory");

    for (const cJSON *item = array->child; item != NULL; item = item->next) {
        char number[32];
        const char *s;
        size_t len;

        if (product_ids && cJSON_IsNumber(item)) {
            len = format_product_number(item, number, sizeof number);
            if (len == 0)
                return fail(ps, "\"%s\" contains the number %g; a numeric product id must be "
                                "a whole number from 0 to 2^53", key, item->valuedouble);
            s = number;
        } else if (cJSON_IsString(item)) {
            len = strlen(item->valuestring);
            if (product_ids && check_no_control(ps, item->valuestring, len, key) != 0)
                return -1;
            s = trim(item->valuestring, &len);
        } else if (product_ids) {
            return fail(ps, "\"%s\" must contain product ids only: strings or whole numbers",
                        key);
        } else {
            return fail(ps, "\"%s\" must contain strings only", key);
        }

        if (len == 0)
            return fail(ps, "\"%s\" contains an empty string", key);
        if (len > maxlen)
            return fail(ps, "\"%s\" contains a value longer than %zu bytes: \"%.40s...\"", key,
                        maxlen, s);

        out->names[out->n] = copy_string(s, len);
        if (out->names[out->n] == NULL)
            return fail(ps, "out of memory");
        out->n++;
    }
    return 0;
}


static int read_price(struct parser *ps, const cJSON *match, const char *key, double *out)
{
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(match, key);

    *out = ANY;
    if (value == NULL)
        return 0;
    if (!cJSON_IsNumber(value) || !(value->valuedouble >= 0))
        return fail(ps, "\"match.%s\" must be a number of at least 0", key);
    *out = value->valuedouble;
    return 0;
}


static int read_match(struct parser *ps, const cJSON *rule, struct rule_match *m)
{
    static const char *const keys[] = {"brands",    "categories", "gender",
                                       "price_min", "price_max",  "products"};
    const cJSON *match = cJSON_GetObjectItemCaseSensitive(rule, "match");
    const cJSON *value;

    if (match == NULL)
        return fail(ps, "missing \"match\"; a boost or filter rule needs at least one "
                        "condition");
    if (!cJSON_IsObject(match))
        return fail(ps, "\"match\" must be an object");
    if (check_keys(ps, match, "\"match\"", keys, sizeof keys / sizeof keys[0]) != 0)
        return -1;
    if (match->child == NULL)
        return fail(ps, "\"match\" is empty; give at least one of brands, categories, "
                        "gender, price_min, price_max, products");

    if ((value = cJSON_GetObjectItemCaseSensitive(match, "brands")) != NULL &&
        read_names(ps, value, "match.brands", VT_NAME_MAX, false, &m->brands) != 0)
        return -1;
    if ((value = cJSON_GetObjectItemCaseSensitive(match, "categories")) != NULL &&
        read_names(ps, value, "match.categories", VT_NAME_MAX, false, &m->categories) != 0)
        return -1;
    if ((value = cJSON_GetObjectItemCaseSensitive(match, "products")) != NULL &&
        read_names(ps, value, "match.products", VT_PRODUCT_ID_MAX, true, &m->products) != 0)
        return -1;

    value = cJSON_GetObjectItemCaseSensitive(match, "gender");
    if (value != NULL) {
        if (!cJSON_IsString(value))
            return fail(ps, "\"match.gender\" must be a string: female, male or unisex");
        if (strcmp(value->valuestring, "female") == 0)
            m->gender = VT_GENDER_FEMALE;
        else if (strcmp(value->valuestring, "male") == 0)
            m->gender = VT_GENDER_MALE;
        else if (strcmp(value->valuestring, "unisex") == 0)
            m->gender = VT_GENDER_UNISEX;
        else
            return fail(ps, "unknown \"match.gender\" \"%s\"; expected female, male or unisex",
                        value->valuestring);
    }

    if (read_price(ps, match, "price_min", &m->price_min) != 0 ||
        read_price(ps, match, "price_max", &m->price_max) != 0)
        return -1;
    if (m->price_min >= 0 && m->price_max >= 0 && m->price_min > m->price_max)
        return fail(ps, "\"match.price_min\" %g is above \"match.price_max\" %g", m->price_min,
                    m->price_max);

    ps->lookups += m->brands.n + m->products.n;
    if (ps->lookups > VT_RULES_LOOKUPS_MAX)
        return fail(ps, "the rules list more than %d brand names and product ids together",
                    VT_RULES_LOOKUPS_MAX);
    return 0;
}


static int read_placements(struct parser *ps, const cJSON *rule, uint32_t *scopes)
{
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(rule, "placements");

    *scopes = SCOPE_ALL;
    if (value == NULL)
        return 0;
    if (!cJSON_IsArray(value) || value->child == NULL)
        return fail(ps, "\"placements\" must be a non-empty array of placement names; leave "
                        "it out for all placements");

    *scopes = 0;
    for (const cJSON *item = value->child; item != NULL; item = item->next) {
        enum vt_placement placement;

        if (!cJSON_IsString(item))
            return fail(ps, "\"placements\" must contain strings only");
        if (strcmp(item->valuestring, "rerank") == 0) {
            *scopes |= 1u << REC_SCOPE_RERANK;
            continue;
        }
        if (vt_placement_parse(item->valuestring, strlen(item->valuestring), &placement) != 0)
            return fail(ps, "unknown placement \"%s\"; expected home, product, cart, "
                            "category, search or rerank",
                        item->valuestring);
        *scopes |= 1u << placement;
    }
    return 0;
}


/* The form of an analyst segment's name, as segments.path requires it. */
static bool segment_name_valid(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > VT_SEGMENT_NAME_MAX || s[0] == '_' || s[0] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}


/* "segment": a gender segment (female, male, unknown), any, or the name of an analyst
 * segment from segments.path, which is checked when the segments are loaded. */
static int read_segment(struct parser *ps, const cJSON *rule, int *segment, char *named)
{
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(rule, "segment");

    *segment = ANY;
    named[0] = '\0';
    if (value == NULL)
        return 0;
    if (!cJSON_IsString(value))
        return fail(ps, "\"segment\" must be a string: female, male, unknown, any or the "
                        "name of a segment in segments.path");
    if (strcmp(value->valuestring, "female") == 0) {
        *segment = VT_SEGMENT_FEMALE;
    } else if (strcmp(value->valuestring, "male") == 0) {
        *segment = VT_SEGMENT_MALE;
    } else if (strcmp(value->valuestring, "unknown") == 0) {
        *segment = VT_SEGMENT_UNKNOWN;
    } else if (strcmp(value->valuestring, "any") != 0) {
        if (!segment_name_valid(value->valuestring))
            return fail(ps, "\"segment\" \"%s\" is neither female, male, unknown nor any, "
                            "nor a segment name (1 to %d of a-z, 0-9, _ and -, starting with a "
                            "letter or a digit)",
                        value->valuestring, VT_SEGMENT_NAME_MAX);
        vt_strlcpy(named, value->valuestring, VT_SEGMENT_NAME_MAX + 1);
    }
    return 0;
}


static int read_factor(struct parser *ps, const cJSON *rule, double *factor)
{
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(rule, "factor");

    if (value == NULL)
        return fail(ps, "missing \"factor\"; a boost rule needs one from %g to %g",
                    FACTOR_MIN, FACTOR_MAX);
    if (!cJSON_IsNumber(value))
        return fail(ps, "\"factor\" must be a number from %g to %g", FACTOR_MIN, FACTOR_MAX);
    if (!(value->valuedouble >= FACTOR_MIN && value->valuedouble <= FACTOR_MAX))
        return fail(ps, "\"factor\" %g is out of range; expected %g to %g",
                    value->valuedouble, FACTOR_MIN, FACTOR_MAX);
    *factor = value->valuedouble;
    return 0;
}


static int read_pin(struct parser *ps, const cJSON *rule, struct rule *r)
{
    const cJSON *product = cJSON_GetObjectItemCaseSensitive(rule, "product");
    const cJSON *position = cJSON_GetObjectItemCaseSensitive(rule, "position");

    char number[32];
    const char *id;
    size_t len;

    if (product == NULL)
        return fail(ps, "missing \"product\"; a pin rule names the product id it places");
    if (cJSON_IsNumber(product)) {
        len = format_product_number(product, number, sizeof number);
        if (len == 0)
            return fail(ps, "\"product\" %g is not a product id; a numeric id must be a whole "
                            "number from 0 to 2^53", product->valuedouble);
        id = number;
    } else if (cJSON_IsString(product) && product->valuestring[0] != '\0') {
        id = product->valuestring;
        len = strlen(id);
    } else {
        return fail(ps, "\"product\" must be a non-empty string or a whole number (a "
                        "product id)");
    }

    if (len > VT_PRODUCT_ID_MAX)
        return fail(ps, "\"product\" is longer than %d bytes", VT_PRODUCT_ID_MAX);
    if (check_no_control(ps, id, len, "product") != 0)
        return -1;

    if (position == NULL)
        return fail(ps, "missing \"position\"; a pin rule needs one from 1 to %d",
                    POSITION_MAX);
    if (!cJSON_IsNumber(position) || !(position->valuedouble >= 1) ||
        position->valuedouble > POSITION_MAX ||
        position->valuedouble != (double)(unsigned)position->valuedouble)
        return fail(ps, "\"position\" must be a whole number from 1 to %d", POSITION_MAX);

    r->product = copy_string(id, len);
    if (r->product == NULL)
        return fail(ps, "out of memory");
    r->position = (unsigned)position->valuedouble;

    if (++ps->lookups > VT_RULES_LOOKUPS_MAX)
        return fail(ps, "the rules list more than %d brand names and product ids together",
                    VT_RULES_LOOKUPS_MAX);
    return 0;
}


/* Reject keys that belong to another action, naming the action they belong to. */
static int check_action_keys(struct parser *ps, const cJSON *rule, enum rec_rule_action action)
{
    static const char *const boost_only[] = {"factor"};
    static const char *const pin_only[] = {"product", "position"};

    for (size_t i = 0; i < sizeof boost_only / sizeof boost_only[0]; i++) {
        if (action != REC_RULE_BOOST && cJSON_HasObjectItem(rule, boost_only[i]))
            return fail(ps, "\"%s\" applies only to boost rules", boost_only[i]);
    }
    for (size_t i = 0; i < sizeof pin_only / sizeof pin_only[0]; i++) {
        if (action != REC_RULE_PIN && cJSON_HasObjectItem(rule, pin_only[i]))
            return fail(ps, "\"%s\" applies only to pin rules", pin_only[i]);
    }
    if (action == REC_RULE_PIN && cJSON_HasObjectItem(rule, "match"))
        return fail(ps, "\"match\" does not apply to pin rules; \"product\" names the pinned "
                        "product");
    return 0;
}


static int read_rule(struct parser *ps, const cJSON *item, struct vt_rules *rules)
{
    static const char *const keys[] = {"name",     "description", "action",     "factor",
                                       "product",  "position",    "match",      "placements",
                                       "segment"};
    struct rule *r = &rules->items[rules->n];

    memset(r, 0, sizeof *r);
    r->match.gender = ANY;
    r->match.price_min = ANY;
    r->match.price_max = ANY;
    rules->n++; /* counted now, so that vt_rules_free releases what was read on failure */

    if (!cJSON_IsObject(item))
        return fail(ps, "a rule must be an object");
    if (read_name(ps, item, r->name, sizeof r->name) != 0)
        return -1;
    ps->rule_name = r->name;
    for (size_t i = 0; i + 1 < rules->n; i++) {
        if (strcmp(rules->items[i].name, r->name) == 0)
            return fail(ps, "the name is already used by rules[%zu]", i);
    }

    if (check_keys(ps, item, "the rule", keys, sizeof keys / sizeof keys[0]) != 0)
        return -1;
    const cJSON *description = cJSON_GetObjectItemCaseSensitive(item, "description");
    if (description != NULL && !cJSON_IsString(description))
        return fail(ps, "\"description\" must be a string");
    if (read_action(ps, item, &r->action) != 0 || check_action_keys(ps, item, r->action) != 0)
        return -1;

    if (r->action == REC_RULE_BOOST && read_factor(ps, item, &r->factor) != 0)
        return -1;
    if (r->action == REC_RULE_PIN && read_pin(ps, item, r) != 0)
        return -1;
    if (r->action != REC_RULE_PIN && read_match(ps, item, &r->match) != 0)
        return -1;
    if (read_placements(ps, item, &r->scopes) != 0 || read_segment(ps, item, &r->segment, r->named_segment) != 0)
        return -1;
    return 0;
}


/* Line and column (1-based) of a byte offset, for messages about invalid JSON. */
static void line_and_column(const char *text, size_t offset, size_t *line, size_t *column)
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


/*
 * Find a NUL that cJSON 1.7 would accept: a NUL byte anywhere, or the escape \u0000 in a
 * string. cJSON returns strings as C strings, which end at the first NUL ("a\u0000b" would
 * read as "a"), and it skips a NUL byte between tokens as white space. Returns the offset
 * of the first, or len when there is none, and sets *escape for the escape. The scan
 * follows strings only far enough to find escapes. Text that is not JSON may mislead it,
 * and the parse rejects such text anyway.
 */
static size_t find_nul(const char *json, size_t len, bool *escape)
{
    bool in_string = false;

    *escape = false;
    for (size_t i = 0; i < len; i++) {
        if (json[i] == '\0')
            return i;
        if (!in_string) {
            in_string = json[i] == '"';
            continue;
        }
        if (json[i] == '"') {
            in_string = false;
        } else if (json[i] == '\\') {
            if (len - i >= 6 && memcmp(json + i + 1, "u0000", 5) == 0) {
                *escape = true;
                return i;
            }
            /* Step over the escaped character, so that the second backslash of "\\u0000"
             * starts no escape, unless it is a NUL byte that the next step must see. */
            if (i + 1 < len && json[i + 1] != '\0')
                i++;
        }
    }
    return len;
}


static bool is_json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}


/* Parse the text as one JSON value with nothing but white space after it. Returns the
 * value, or NULL with a message that names the line and column. */
static cJSON *parse_text(const char *json, size_t len, const char *name, char *err,
                         size_t errsize)
{
    const char *end = NULL;
    bool escape = false;
    size_t line, column;
    char reason[256];

    size_t nul = find_nul(json, len, &escape);
    if (nul < len) {
        line_and_column(json, nul, &line, &column);
        if (escape)
            snprintf(reason, sizeof reason, "the escape \\u0000 (NUL) in a string at line "
                     "%zu, column %zu is not accepted, because it would cut the string short",
                     line, column);
        else
            snprintf(reason, sizeof reason, "a NUL byte at line %zu, column %zu is not "
                     "accepted; a rules file is UTF-8 text without NUL bytes", line, column);
        fail_file(err, errsize, name, reason);
        return NULL;
    }

    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, false);
    if (root == NULL) {
        size_t offset = end != NULL && end >= json && end <= json + len ? (size_t)(end - json)
                                                                         : 0;
        line_and_column(json, offset, &line, &column);
        snprintf(reason, sizeof reason, "invalid JSON at line %zu, column %zu", line, column);
        fail_file(err, errsize, name, reason);
        return NULL;
    }

    /* cJSON stops after the first value, and only white space may follow it. */
    size_t offset = (size_t)(end - json);
    while (offset < len && is_json_space(json[offset]))
        offset++;
    if (offset < len) {
        line_and_column(json, offset, &line, &column);
        snprintf(reason, sizeof reason, "unexpected text after the JSON object at line %zu, "
                 "column %zu", line, column);
        fail_file(err, errsize, name, reason);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}


struct vt_rules *vt_rules_parse(const char *json, size_t len, const char *name, char *err,
                                size_t errsize)
{
    struct parser ps = {.file = name, .err = err, .errsize = errsize};
    char reason[256];

    cJSON *root = parse_text(json, len, name, err, errsize);
    if (root == NULL)
        return NULL;

    struct vt_rules *rules = NULL;
    const cJSON *list = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "rules")
                                             : NULL;
    if (!cJSON_IsArray(list)) {
        fail_file(err, errsize, name, "expected an object with an array \"rules\"");
        goto out;
    }
    for (const cJSON *item = root->child; item != NULL; item = item->next) {
        if (strcmp(item->string, "rules") != 0) {
            snprintf(reason, sizeof reason, "unknown top-level key \"%.100s\"; only \"rules\" "
                     "is allowed", item->string);
            fail_file(err, errsize, name, reason);
            goto out;
        }
    }

    int count = cJSON_GetArraySize(list);
    if (count > VT_RULES_MAX) {
        snprintf(reason, sizeof reason, "%d rules; the maximum is %d", count, VT_RULES_MAX);
        fail_file(err, errsize, name, reason);
        goto out;
    }
    rules = calloc(1, sizeof *rules + (size_t)count * sizeof rules->items[0]);
    if (rules == NULL) {
        fail_file(err, errsize, name, "out of memory");
        goto out;
    }

    for (const cJSON *item = list->child; item != NULL; item = item->next) {
        ps.index = rules->n;
        ps.rule_name = NULL;
        if (read_rule(&ps, item, rules) != 0) {
            vt_rules_free(rules);
            rules = NULL;
            goto out;
        }
    }

out:
    cJSON_Delete(root);
    return rules;
}


static void log_loaded(const struct vt_rules *rules, const char *path)
{
    size_t by_action[sizeof action_names / sizeof action_names[0]] = {0};

    for (size_t i = 0; i < rules->n; i++)
        by_action[rules->items[i].action]++;
    VT_INFO("RULES", "loaded %s: %zu rules (%zu boost, %zu pin, %zu filter)", path, rules->n,
            by_action[REC_RULE_BOOST], by_action[REC_RULE_PIN], by_action[REC_RULE_FILTER]);
}


struct vt_rules *vt_rules_load(const char *path, char *err, size_t errsize)
{
    if (path == NULL || path[0] == '\0') {
        struct vt_rules *none = calloc(1, sizeof(struct vt_rules));

        if (none == NULL)
            snprintf(err, errsize, "out of memory");
        else
            VT_INFO("RULES", "no business rules: rec.rules_path is empty");
        return none;
    }

    size_t len = 0;
    char *text = vt_read_file(path, VT_RULES_FILE_MAX, "rules file", &len, err, errsize);
    if (text == NULL)
        return NULL;
    struct vt_rules *rules = vt_rules_parse(text, len, path, err, errsize);
    free(text);

    if (rules != NULL)
        log_loaded(rules, path);
    return rules;
}


/* ---- matching in one request ---- */

static bool scope_fits(const struct rule *r, unsigned scope, enum vt_segment segment,
                       const struct vt_profile *p)
{
    if ((r->scopes & (1u << scope)) == 0)
        return false;
    if (r->named_segment[0] != '\0') {
        int index = p != NULL && p->segments != NULL
                        ? vt_segments_find(p->segments, r->named_segment) : -1;
        return index >= 0 && (p->segment_mask >> index) & 1;
    }
    return r->segment == ANY || r->segment == (int)segment;
}


/* Look up a list of names with find() and append the indexes found to rr->values. */
static uint8_t resolve(struct rec_rules *rr, const struct name_list *list,
                       uint32_t (*find)(const struct vt_catalog *, const char *, size_t))
{
    uint8_t found = 0;

    for (size_t i = 0; i < list->n && rr->n_values < VT_RULES_LOOKUPS_MAX; i++) {
        uint32_t index = find(rr->cat, list->names[i], strlen(list->names[i]));
        if (index == VT_CATALOG_NONE)
            continue;
        rr->values[rr->n_values++] = index;
        found++;
    }
    return found;
}


void rec_rules_begin(struct rec_rules *rr, const struct vt_rules *rules,
                     const struct vt_catalog *cat, unsigned scope, enum vt_segment segment,
                     const struct vt_profile *p)
{
    rr->rules = rules;
    rr->cat = cat;
    rr->n_active = 0;
    rr->n_values = 0;
    rr->filters = 0;
    rr->boosts = 0;
    rr->pins = 0;
    rr->memo_count = 0;
    if (rules == NULL || rules->n == 0)
        return;
    memset(rr->memo_keys, 0xFF, sizeof rr->memo_keys);

    for (size_t i = 0; i < rules->n; i++) {
        const struct rule *r = &rules->items[i];
        size_t a = rr->n_active;

        if (!scope_fits(r, scope, segment, p))
            continue;
        rr->rule[a] = (uint8_t)i;
        rr->brands_start[a] = (uint16_t)rr->n_values;
        rr->n_brands[a] = resolve(rr, &r->match.brands, vt_catalog_brand_find);
        rr->products_start[a] = (uint16_t)rr->n_values;
        rr->n_products[a] = resolve(rr, &r->match.products, vt_catalog_find);

        uint64_t bit = (uint64_t)1 << a;
        if (r->action == REC_RULE_FILTER)
            rr->filters |= bit;
        else if (r->action == REC_RULE_BOOST)
            rr->boosts |= bit;
        else
            rr->pins |= bit;
        rr->n_active++;
    }
}


/* True when the category name is the rule's category or one below it ("makeup.eyes" is
 * below "makeup"), ignoring ASCII case. */
static bool category_below(const char *name, const char *rule_category)
{
    size_t len = strlen(rule_category);

    if (strncasecmp(name, rule_category, len) != 0)
        return false;
    return name[len] == '\0' || name[len] == '.';
}


/* Active rules in rule_mask whose category condition the catalog category meets. */
static uint64_t category_rules(struct rec_rules *rr, uint32_t category, uint64_t rule_mask)
{
    uint32_t k = (uint32_t)(category * 2654435761u) >> 24;
    uint64_t mask = 0;

    for (;; k = (k + 1) & (REC_CATEGORY_MEMO_SLOTS - 1)) {
        if (rr->memo_keys[k] == category)
            return rr->memo_masks[k] & rule_mask;
        if (rr->memo_keys[k] == VT_CATALOG_NONE)
            break;
    }

    /* Not seen yet in this request: compare the name with every active rule's categories,
     * so that the memo entry serves any later rule_mask. */
    const char *name = vt_catalog_category_name(rr->cat, category);
    for (size_t a = 0; a < rr->n_active && name != NULL; a++) {
        const struct name_list *list = &rr->rules->items[rr->rule[a]].match.categories;
        for (size_t i = 0; i < list->n; i++) {
            if (category_below(name, list->names[i])) {
                mask |= (uint64_t)1 << a;
                break;
            }
        }
    }
    if ((rr->memo_count + 1) * 2 <= REC_CATEGORY_MEMO_SLOTS) {
        rr->memo_keys[k] = category;
        rr->memo_masks[k] = mask;
        rr->memo_count++;
    }
    return mask & rule_mask;
}


static bool value_listed(const struct rec_rules *rr, size_t start, size_t n, uint32_t value)
{
    for (size_t i = 0; i < n; i++) {
        if (rr->values[start + i] == value)
            return true;
    }
    return false;
}


static bool rule_matches(struct rec_rules *rr, size_t a, const struct vt_product *p,
                         uint32_t index)
{
    const struct rule_match *m = &rr->rules->items[rr->rule[a]].match;

    if (m->gender != ANY && (int)p->gender != m->gender)
        return false;
    if (m->price_min >= 0 && !(p->price >= 0 && p->price >= m->price_min))
        return false;
    if (m->price_max >= 0 && !(p->price >= 0 && p->price <= m->price_max))
        return false;
    if (m->brands.n > 0 && !value_listed(rr, rr->brands_start[a], rr->n_brands[a], p->brand))
        return false;
    if (m->products.n > 0 && !value_listed(rr, rr->products_start[a], rr->n_products[a], index))
        return false;
    if (m->categories.n > 0) {
        uint64_t bit = (uint64_t)1 << a;
        for (uint8_t k = 0; k < p->n_categories; k++) {
            if (category_rules(rr, p->categories[k], bit) != 0)
                return true;
        }
        return false;
    }
    return true;
}


/* Active rules in rule_mask that match the product. */
static uint64_t rules_matching(struct rec_rules *rr, uint32_t product, uint64_t rule_mask)
{
    const struct vt_product *p = vt_catalog_get(rr->cat, product);
    uint64_t mask = 0;

    if (p == NULL)
        return 0;
    for (size_t a = 0; a < rr->n_active; a++) {
        uint64_t bit = (uint64_t)1 << a;
        if ((rule_mask & bit) != 0 && rule_matches(rr, a, p, product))
            mask |= bit;
    }
    return mask;
}


bool rec_rules_filtered(struct rec_rules *rr, uint32_t product)
{
    if (rr->filters == 0)
        return false;
    return rules_matching(rr, product, rr->filters) != 0;
}


double rec_rules_boost(struct rec_rules *rr, uint32_t product, const char **rule)
{
    double factor = 1;

    *rule = NULL;
    if (rr->boosts == 0)
        return 1;

    uint64_t mask = rules_matching(rr, product, rr->boosts);
    for (size_t a = 0; a < rr->n_active && mask != 0; a++) {
        if ((mask & ((uint64_t)1 << a)) == 0)
            continue;
        const struct rule *r = &rr->rules->items[rr->rule[a]];
        factor *= r->factor;
        if (*rule == NULL)
            *rule = r->name;
    }
    return factor;
}


size_t rec_rules_pins(const struct rec_rules *rr, struct rec_pin *out, size_t max)
{
    size_t n = 0;

    for (size_t a = 0; a < rr->n_active && n < max; a++) {
        if ((rr->pins & ((uint64_t)1 << a)) == 0)
            continue;
        const struct rule *r = &rr->rules->items[rr->rule[a]];
        uint32_t index = vt_catalog_find(rr->cat, r->product, strlen(r->product));
        if (index == VT_CATALOG_NONE)
            continue;
        out[n].product = index;
        out[n].position = r->position;
        out[n].rule = r->name;
        n++;
    }
    return n;
}


const char *vt_rules_unknown_segment(const struct vt_rules *rules,
                                     const struct vt_segments *segments, const char **rule)
{
    for (size_t i = 0; rules != NULL && i < rules->n; i++) {
        const struct rule *r = &rules->items[i];
        if (r->named_segment[0] != '\0' && vt_segments_find(segments, r->named_segment) < 0) {
            *rule = r->name;
            return r->named_segment;
        }
    }
    return NULL;
}
