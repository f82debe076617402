/*
 * vitrine: analyst-defined segments: loading and validation of the segments file, and
 * evaluation against one profile (see include/vitrine/segments.h).
 *
 * The conditions of a segment are stored as one array in pre-order: the children of an
 * all/any/not node follow it, and each node records where its subtree ends, so that
 * evaluation walks the tree without pointers. Loading resolves event types, price tiers
 * and gender names to indexes, writes each condition's text for explain, and collects the
 * category and brand names into one hash table. Evaluation then sums the value of every
 * such name in one pass over the profile's lists, and the conditions compare numbers.
 *
 * Shares are computed over the entries the profile returns (the strongest
 * VT_PROFILE_TOP_MAX categories and brands, and all price tiers), not over everything the
 * session ever touched.
 */
#include "vitrine/segments.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vitrine/log.h"
#include "vitrine/util.h"

/* Event type index of "any": the profile's totals (events, last_seen_ms). */
#define EVENT_ANY -1

/* Bound of "count" and "sessions" numbers: 2^53, the largest integer up to which a double
 * represents every integer exactly. */
#define WHOLE_MAX 9007199254740992.0

/* Bound of within_s and older_than_s: one year of 365 days. */
#define AGE_MAX_S 31536000.0

#define POINTS_LIMIT 1000.0

/* Buckets of the affinity name hash table: a power of two, at least twice
 * VT_SEGMENTS_NAMES_MAX, so that a lookup meets an empty bucket soon. */
#define NAME_TABLE_SIZE 512
_Static_assert(NAME_TABLE_SIZE >= 2 * VT_SEGMENTS_NAMES_MAX, "the name table is too small");
_Static_assert((NAME_TABLE_SIZE & (NAME_TABLE_SIZE - 1)) == 0, "a power of two");

#define CONDITION_TYPES "all, any, not, category, brand, tier, count, last, gender, " \
                        "first_visit, sessions, cart or revenue"

enum cond_kind {
    COND_ALL,
    COND_ANY,
    COND_NOT,
    COND_CATEGORY,
    COND_BRAND,
    COND_TIER,
    COND_COUNT,
    COND_LAST,
    COND_GENDER,
    COND_FIRST_VISIT,
    COND_SESSIONS,
    COND_CART,
    COND_REVENUE,
};

/* One condition node. min and max bound the observed value; for COND_LAST, max is
 * within_s and min is older_than_s (the age must be above it). */
struct cond {
    enum cond_kind kind;
    uint8_t end;         /* index after the last node of this node's subtree */
    int index;           /* price tier, event type (EVENT_ANY) or enum vt_segment */
    bool first_visit;    /* COND_FIRST_VISIT: true requests a first visit */
    bool has_min, has_max;
    double min, max;
    int name_slot;       /* category or brand: index in the set's affinity names */
    bool strongest;      /* name "*": the strongest entry of the list, whichever it is */
    char text[VT_NAME_MAX + 80]; /* the condition as explain shows it */
};

struct point_entry {
    double points;
    uint8_t root; /* node index of its condition */
};

struct segment {
    char name[VT_SEGMENT_NAME_MAX + 1];
    bool scored;
    double min_score;
    size_t n_points;
    struct point_entry points[VT_SEGMENT_POINTS_MAX];
    size_t n_nodes;
    struct cond *nodes; /* n_nodes, pre-order; node 0 is "when" of a condition segment */
};

/* A category or brand name that conditions of the set use, lower-cased. */
struct affinity_name {
    bool brand; /* false: category */
    size_t len;
    uint64_t hash; /* name_hash of the lower-cased name */
    char name[VT_NAME_MAX + 1];
};

struct vt_segments {
    size_t n;
    _Atomic uint64_t served[VT_SEGMENTS_MAX];
    /* Distinct category and brand names over all conditions, and a hash table of them
     * (slot + 1, 0 for empty). Evaluation sums the shares of every name in one pass over
     * the profile's lists, however many conditions use them. */
    size_t n_names;
    struct affinity_name names[VT_SEGMENTS_NAMES_MAX];
    uint16_t name_table[NAME_TABLE_SIZE];
    struct segment items[];
};

/* Parser state for error messages. */
struct parser {
    const char *file;
    size_t index;
    const char *segment_name; /* NULL until the segment's name was read */
    char *err;
    size_t errsize;
    struct segment *seg;
    struct vt_segments *set;
};


/* ---- messages ---- */

static int fail(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Write "<file>: segment <i> ("<name>"): <reason>" to the error buffer. Returns -1. */
static int fail(struct parser *ps, const char *fmt, ...)
{
    char reason[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);

    if (ps->segment_name != NULL)
        snprintf(ps->err, ps->errsize, "%s: segment %zu (\"%s\"): %s", ps->file, ps->index,
                 ps->segment_name, reason);
    else
        snprintf(ps->err, ps->errsize, "%s: segment %zu: %s", ps->file, ps->index, reason);
    return -1;
}


static void fail_file(char *err, size_t errsize, const char *file, const char *reason)
{
    snprintf(err, errsize, "%s: %s", file, reason);
}


/* ---- freeing and access ---- */

void vt_segments_free(struct vt_segments *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->items[i].nodes);
    free(s);
}


size_t vt_segments_count(const struct vt_segments *s)
{
    return s != NULL ? s->n : 0;
}


const char *vt_segments_name(const struct vt_segments *s, size_t i)
{
    return s != NULL && i < s->n ? s->items[i].name : NULL;
}


int vt_segments_find(const struct vt_segments *s, const char *name)
{
    if (s == NULL || name == NULL)
        return -1;
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->items[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}


/* ---- parsing helpers ---- */

/* Reject unknown keys and keys that appear twice in one object; cJSON keeps both copies
 * of a repeated key, and only the first would count. allowed_text lists the keys for the
 * message. */
static int check_keys(struct parser *ps, const cJSON *obj, const char *where,
                      const char *const *allowed, size_t n_allowed, const char *allowed_text)
{
    for (const cJSON *item = obj->child; item != NULL; item = item->next) {
        bool known = false;

        for (size_t i = 0; i < n_allowed && !known; i++)
            known = strcmp(item->string, allowed[i]) == 0;
        if (!known)
            return fail(ps, "unknown key \"%.60s\" in %s; allowed: %s", item->string, where,
                        allowed_text);
        for (const cJSON *before = obj->child; before != item; before = before->next) {
            if (strcmp(before->string, item->string) == 0)
                return fail(ps, "key \"%s\" appears twice in %s", item->string, where);
        }
    }
    return 0;
}


static void format_path(char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Write the path of a condition for messages ("when.all[1].count"). The longest path,
 * VT_SEGMENT_DEPTH_MAX levels of ".any[15]" under "score.points[31].when", fits the
 * buffers used. A longer one would only be truncated in the message. */
static void format_path(char *out, size_t size, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out, size, fmt, ap);
    va_end(ap);
}


/* Read the optional number key of obj into *out and set *present. The number must be
 * finite, within [lo, hi], and a whole number when whole is set. */
static int read_number(struct parser *ps, const cJSON *obj, const char *key, const char *where,
                       double lo, double hi, bool whole, double *out, bool *present)
{
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(obj, key);

    *present = false;
    if (value == NULL)
        return 0;
    if (!cJSON_IsNumber(value))
        return fail(ps, "%s.%s must be a number from %.16g to %.16g", where, key, lo, hi);

    double v = value->valuedouble;
    if (!isfinite(v))
        return fail(ps, "%s.%s must be a finite number", where, key);
    if ((v < lo || v > hi) && isinf(hi))
        return fail(ps, "%s.%s %.16g is out of range; expected %.16g or more", where, key, v,
                    lo);
    if (v < lo || v > hi)
        return fail(ps, "%s.%s %.16g is out of range; expected %.16g to %.16g", where, key, v,
                    lo, hi);
    if (whole && v != floor(v))
        return fail(ps, "%s.%s %.16g must be a whole number", where, key, v);
    *out = v;
    *present = true;
    return 0;
}


/* Read a pair of optional bounds of which at least one is given, with min <= max. */
static int read_bounds(struct parser *ps, const cJSON *obj, const char *where,
                       const char *min_key, const char *max_key, double lo, double hi,
                       bool whole, struct cond *c)
{
    if (read_number(ps, obj, min_key, where, lo, hi, whole, &c->min, &c->has_min) != 0 ||
        read_number(ps, obj, max_key, where, lo, hi, whole, &c->max, &c->has_max) != 0)
        return -1;
    if (!c->has_min && !c->has_max)
        return fail(ps, "%s needs \"%s\", \"%s\" or both", where, min_key, max_key);
    if (c->has_min && c->has_max && c->min > c->max)
        return fail(ps, "%s.%s %.16g is above %s %.16g, so the condition never holds", where,
                    min_key, c->min, max_key, c->max);
    return 0;
}


/* Check that value is an object whose keys are all in allowed. */
static int check_object(struct parser *ps, const cJSON *value, const char *where,
                        const char *const *allowed, size_t n_allowed, const char *allowed_text)
{
    if (!cJSON_IsObject(value))
        return fail(ps, "%s must be an object with the keys %s", where, allowed_text);
    return check_keys(ps, value, where, allowed, n_allowed, allowed_text);
}


/* Append " >= min", " <= max" or both to the condition's text. */
static void append_bounds(struct cond *c, const char *subject)
{
    size_t used = strlen(c->text);
    char *out = c->text + used;
    size_t room = sizeof c->text - used;

    if (c->has_min && c->has_max)
        snprintf(out, room, "%s >= %.16g and <= %.16g", subject, c->min, c->max);
    else if (c->has_min)
        snprintf(out, room, "%s >= %.16g", subject, c->min);
    else
        snprintf(out, room, "%s <= %.16g", subject, c->max);
}


/* Read "event": an event type name or "any". */
static int read_event(struct parser *ps, const cJSON *obj, const char *where, int *index)
{
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(obj, "event");
    enum vt_event_type type;

    if (!cJSON_IsString(value))
        return fail(ps, "%s needs \"event\": an event type such as add_to_cart, or any", where);
    if (strcmp(value->valuestring, "any") == 0) {
        *index = EVENT_ANY;
        return 0;
    }
    if (vt_event_type_parse(value->valuestring, strlen(value->valuestring), &type) != 0)
        return fail(ps, "%s.event \"%.60s\" is not an event type; expected any, page_view, "
                        "product_view, product_image_view, impression, click, add_to_cart, "
                        "remove_from_cart, add_to_wishlist, remove_from_wishlist, checkout, "
                        "purchase or search",
                    where, value->valuestring);
    *index = (int)type;
    return 0;
}


static const char *event_label(int index)
{
    return index == EVENT_ANY ? "any" : vt_event_type_name((enum vt_event_type)index);
}


/* ---- affinity names ---- */

#define NAME_HASH_START UINT64_C(14695981039346656037)

/* One step of FNV-1a over the ASCII-lower-cased byte. */
static uint64_t name_hash_step(uint64_t hash, char c)
{
    unsigned char ch = (unsigned char)c;

    if (ch >= 'A' && ch <= 'Z')
        ch = (unsigned char)(ch - 'A' + 'a');
    return (hash ^ ch) * UINT64_C(1099511628211);
}


/* FNV-1a of the ASCII-lower-cased bytes s[0..len). */
static uint64_t name_hash(const char *s, size_t len)
{
    uint64_t hash = NAME_HASH_START;

    for (size_t i = 0; i < len; i++)
        hash = name_hash_step(hash, s[i]);
    return hash;
}


/* Slot of the name s[0..len) of this kind, or -1 when no condition names it. */
static int find_name(const struct vt_segments *set, bool brand, const char *s, size_t len,
                     uint64_t hash)
{
    for (size_t b = hash & (NAME_TABLE_SIZE - 1); set->name_table[b] != 0;
         b = (b + 1) & (NAME_TABLE_SIZE - 1)) {
        const struct affinity_name *n = &set->names[set->name_table[b] - 1];

        if (n->hash == hash && n->brand == brand && n->len == len &&
            strncasecmp(n->name, s, len) == 0)
            return set->name_table[b] - 1;
    }
    return -1;
}


/* Slot of a condition's category or brand name, added to the set when new. */
static int add_name(struct parser *ps, const char *where, bool brand, const char *s,
                    size_t len)
{
    struct vt_segments *set = ps->set;
    uint64_t hash = name_hash(s, len);
    int slot = find_name(set, brand, s, len, hash);

    if (slot >= 0)
        return slot;
    if (set->n_names >= VT_SEGMENTS_NAMES_MAX)
        return fail(ps, "%s: the segments use more than %d distinct category and brand names "
                        "together; merge or remove some", where, VT_SEGMENTS_NAMES_MAX);

    struct affinity_name *n = &set->names[set->n_names];
    n->brand = brand;
    n->len = len;
    n->hash = hash;
    for (size_t i = 0; i < len; i++)
        n->name[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    n->name[len] = '\0';

    size_t b = hash & (NAME_TABLE_SIZE - 1);
    while (set->name_table[b] != 0)
        b = (b + 1) & (NAME_TABLE_SIZE - 1);
    set->name_table[b] = (uint16_t)(set->n_names + 1);
    return (int)set->n_names++;
}


/* ---- leaf conditions ---- */

/* {"category"|"brand"|"tier": {"name": ..., "min_share": ..., "max_share": ...}} */
static int parse_affinity(struct parser *ps, const cJSON *value, const char *where,
                          const char *type, struct cond *c)
{
    static const char *const keys[] = {"name", "min_share", "max_share"};
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(value, "name");

    if (check_object(ps, value, where, keys, 3, "name, min_share, max_share") != 0)
        return -1;
    if (!cJSON_IsString(name) || name->valuestring[0] == '\0')
        return fail(ps, "%s needs \"name\": a non-empty string", where);

    size_t len = strlen(name->valuestring);
    if (len > VT_NAME_MAX)
        return fail(ps, "%s.name is longer than %d bytes", where, VT_NAME_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name->valuestring[i];

        if (ch < 0x20 || ch == 0x7F)
            return fail(ps, "%s.name contains the control character 0x%02X at byte %zu", where,
                        ch, i + 1);
    }
    if (strcmp(name->valuestring, "*") == 0) {
        c->strongest = true;
    } else if (c->kind == COND_TIER) {
        enum vt_price_tier tier;

        if (vt_price_tier_parse(name->valuestring, len, &tier) != 0)
            return fail(ps, "%s.name \"%s\" is not a price tier; expected drugstore, mid, "
                            "premium or luxury",
                        where, name->valuestring);
        c->index = (int)tier;
    } else {
        c->name_slot = add_name(ps, where, c->kind == COND_BRAND, name->valuestring, len);
        if (c->name_slot < 0)
            return -1;
    }

    if (read_bounds(ps, value, where, "min_share", "max_share", 0, 1, false, c) != 0)
        return -1;
    snprintf(c->text, sizeof c->text, "%s %s ", type, name->valuestring);
    append_bounds(c, "share");
    return 0;
}


/* {"count": {"event": ..., "min": ..., "max": ...}} */
static int parse_count(struct parser *ps, const cJSON *value, const char *where, struct cond *c)
{
    static const char *const keys[] = {"event", "min", "max"};

    if (check_object(ps, value, where, keys, 3, "event, min, max") != 0 ||
        read_event(ps, value, where, &c->index) != 0 ||
        read_bounds(ps, value, where, "min", "max", 0, WHOLE_MAX, true, c) != 0)
        return -1;
    snprintf(c->text, sizeof c->text, "count %s ", event_label(c->index));
    append_bounds(c, "events");
    return 0;
}


/* {"last": {"event": ..., "within_s": ..., "older_than_s": ...}} */
static int parse_last(struct parser *ps, const cJSON *value, const char *where, struct cond *c)
{
    static const char *const keys[] = {"event", "within_s", "older_than_s"};

    if (check_object(ps, value, where, keys, 3, "event, within_s, older_than_s") != 0 ||
        read_event(ps, value, where, &c->index) != 0)
        return -1;
    if (read_number(ps, value, "within_s", where, 0, AGE_MAX_S, false, &c->max,
                    &c->has_max) != 0 ||
        read_number(ps, value, "older_than_s", where, 0, AGE_MAX_S, false, &c->min,
                    &c->has_min) != 0)
        return -1;
    if (!c->has_min && !c->has_max)
        return fail(ps, "%s needs \"within_s\", \"older_than_s\" or both", where);
    if ((c->has_max && c->max <= 0) || (c->has_min && c->min <= 0))
        return fail(ps, "%s: within_s and older_than_s must be above 0", where);
    if (c->has_min && c->has_max && c->min >= c->max)
        return fail(ps, "%s.older_than_s %.16g is not below within_s %.16g, so the condition never "
                        "holds", where, c->min, c->max);

    const char *event = event_label(c->index);
    if (c->has_min && c->has_max)
        snprintf(c->text, sizeof c->text, "last %s within %.16g s and older than %.16g s", event,
                 c->max, c->min);
    else if (c->has_max)
        snprintf(c->text, sizeof c->text, "last %s within %.16g s", event, c->max);
    else
        snprintf(c->text, sizeof c->text, "last %s older than %.16g s", event, c->min);
    return 0;
}


static int gender_index(const char *s)
{
    if (strcmp(s, "female") == 0)
        return VT_SEGMENT_FEMALE;
    if (strcmp(s, "male") == 0)
        return VT_SEGMENT_MALE;
    if (strcmp(s, "unknown") == 0)
        return VT_SEGMENT_UNKNOWN;
    return -1;
}


/* {"gender": "male"} or {"gender": {"is": ..., "min_probability": ...}} */
static int parse_gender(struct parser *ps, const cJSON *value, const char *where,
                        struct cond *c)
{
    static const char *const keys[] = {"is", "min_probability"};
    const cJSON *is = value;

    if (!cJSON_IsString(value)) {
        if (!cJSON_IsObject(value))
            return fail(ps, "%s must be female, male, unknown or an object with the keys is, "
                            "min_probability", where);
        if (check_keys(ps, value, where, keys, 2, "is, min_probability") != 0)
            return -1;
        is = cJSON_GetObjectItemCaseSensitive(value, "is");
        if (!cJSON_IsString(is))
            return fail(ps, "%s needs \"is\": female, male or unknown", where);
        if (read_number(ps, value, "min_probability", where, 0.5, 1, false, &c->min,
                        &c->has_min) != 0)
            return -1;
    }

    c->index = gender_index(is->valuestring);
    if (c->index < 0)
        return fail(ps, "%s \"%.60s\" is not a gender; expected female, male or unknown", where,
                    is->valuestring);
    if (c->has_min && c->index == VT_SEGMENT_UNKNOWN)
        return fail(ps, "%s: min_probability applies only to female or male", where);

    if (c->has_min)
        snprintf(c->text, sizeof c->text, "gender %s with probability >= %.16g",
                 vt_segment_name((enum vt_segment)c->index), c->min);
    else
        snprintf(c->text, sizeof c->text, "gender %s",
                 vt_segment_name((enum vt_segment)c->index));
    return 0;
}


static int parse_first_visit(struct parser *ps, const cJSON *value, const char *where,
                             struct cond *c)
{
    if (!cJSON_IsBool(value))
        return fail(ps, "%s must be true (first visit) or false (returning visitor)", where);
    c->first_visit = cJSON_IsTrue(value);
    snprintf(c->text, sizeof c->text, "%s", c->first_visit ? "first visit" : "returning visitor");
    return 0;
}


static int parse_sessions(struct parser *ps, const cJSON *value, const char *where,
                          struct cond *c)
{
    static const char *const keys[] = {"min", "max"};

    if (check_object(ps, value, where, keys, 2, "min, max") != 0 ||
        read_bounds(ps, value, where, "min", "max", 0, WHOLE_MAX, true, c) != 0)
        return -1;
    append_bounds(c, "visitor sessions");
    return 0;
}


static int parse_cart(struct parser *ps, const cJSON *value, const char *where, struct cond *c)
{
    static const char *const keys[] = {"min_lines", "max_lines"};

    if (check_object(ps, value, where, keys, 2, "min_lines, max_lines") != 0 ||
        read_bounds(ps, value, where, "min_lines", "max_lines", 0, WHOLE_MAX, true, c) != 0)
        return -1;
    append_bounds(c, "cart lines");
    return 0;
}


/* {"revenue": {"min": ..., "max": ..., "of": "session"|"visitor"}}: index 1 reads the
 * visitor's revenue over all its sessions. */
static int parse_revenue(struct parser *ps, const cJSON *value, const char *where,
                         struct cond *c)
{
    static const char *const keys[] = {"min", "max", "of"};
    const cJSON *of;

    if (check_object(ps, value, where, keys, 3, "min, max, of") != 0)
        return -1;
    of = cJSON_GetObjectItemCaseSensitive(value, "of");
    c->index = 0;
    if (of != NULL) {
        if (!cJSON_IsString(of) ||
            (strcmp(of->valuestring, "session") != 0 && strcmp(of->valuestring, "visitor") != 0))
            return fail(ps, "%s.of must be \"session\" or \"visitor\"", where);
        c->index = strcmp(of->valuestring, "visitor") == 0;
    }
    if (read_bounds(ps, value, where, "min", "max", 0, HUGE_VAL, false, c) != 0)
        return -1;
    append_bounds(c, c->index == 1 ? "visitor revenue" : "revenue");
    return 0;
}


/* ---- conditions ---- */

static int parse_cond(struct parser *ps, const cJSON *json, const char *where, int depth);


/* {"all"|"any": [COND, ...]} */
static int parse_list(struct parser *ps, const cJSON *value, const char *where, int depth)
{
    if (!cJSON_IsArray(value))
        return fail(ps, "%s must be an array of 1 to %d conditions", where,
                    VT_SEGMENT_LIST_MAX);

    int count = cJSON_GetArraySize(value);
    if (count < 1 || count > VT_SEGMENT_LIST_MAX)
        return fail(ps, "%s lists %d conditions; expected 1 to %d", where, count,
                    VT_SEGMENT_LIST_MAX);

    int i = 0;
    for (const cJSON *item = value->child; item != NULL; item = item->next, i++) {
        char here[256];

        format_path(here, sizeof here, "%s[%d]", where, i);
        if (parse_cond(ps, item, here, depth + 1) != 0)
            return -1;
    }
    return 0;
}


static int parse_leaf(struct parser *ps, const char *type, const cJSON *value,
                      const char *where, struct cond *c)
{
    if (strcmp(type, "category") == 0) {
        c->kind = COND_CATEGORY;
        return parse_affinity(ps, value, where, type, c);
    }
    if (strcmp(type, "brand") == 0) {
        c->kind = COND_BRAND;
        return parse_affinity(ps, value, where, type, c);
    }
    if (strcmp(type, "tier") == 0) {
        c->kind = COND_TIER;
        return parse_affinity(ps, value, where, type, c);
    }
    if (strcmp(type, "count") == 0) {
        c->kind = COND_COUNT;
        return parse_count(ps, value, where, c);
    }
    if (strcmp(type, "last") == 0) {
        c->kind = COND_LAST;
        return parse_last(ps, value, where, c);
    }
    if (strcmp(type, "gender") == 0) {
        c->kind = COND_GENDER;
        return parse_gender(ps, value, where, c);
    }
    if (strcmp(type, "first_visit") == 0) {
        c->kind = COND_FIRST_VISIT;
        return parse_first_visit(ps, value, where, c);
    }
    if (strcmp(type, "sessions") == 0) {
        c->kind = COND_SESSIONS;
        return parse_sessions(ps, value, where, c);
    }
    if (strcmp(type, "cart") == 0) {
        c->kind = COND_CART;
        return parse_cart(ps, value, where, c);
    }
    if (strcmp(type, "revenue") == 0) {
        c->kind = COND_REVENUE;
        return parse_revenue(ps, value, where, c);
    }
    return fail(ps, "%s: unknown condition \"%.60s\"; expected " CONDITION_TYPES, where, type);
}


/* Parse one condition object into the next node of the current segment, then its
 * children. where names the condition in messages ("when.all[1]"). */
static int parse_cond(struct parser *ps, const cJSON *json, const char *where, int depth)
{
    struct segment *seg = ps->seg;

    if (depth > VT_SEGMENT_DEPTH_MAX)
        return fail(ps, "%s nests conditions deeper than %d levels", where,
                    VT_SEGMENT_DEPTH_MAX);
    if (!cJSON_IsObject(json) || json->child == NULL || json->child->next != NULL)
        return fail(ps, "%s must be an object with exactly one key, the condition type: "
                        CONDITION_TYPES, where);
    if (seg->n_nodes >= VT_SEGMENT_CONDITIONS_MAX)
        return fail(ps, "%s: the segment has more than %d conditions (all, any and not "
                        "count as well)", where, VT_SEGMENT_CONDITIONS_MAX);

    size_t at = seg->n_nodes++;
    struct cond *c = &seg->nodes[at];
    const cJSON *value = json->child;
    const char *type = value->string;
    char here[256];
    int rc;

    memset(c, 0, sizeof *c);
    format_path(here, sizeof here, "%s.%.60s", where, type);
    if (strcmp(type, "all") == 0 || strcmp(type, "any") == 0) {
        c->kind = type[1] == 'l' ? COND_ALL : COND_ANY;
        snprintf(c->text, sizeof c->text, "%s", type);
        rc = parse_list(ps, value, here, depth);
    } else if (strcmp(type, "not") == 0) {
        c->kind = COND_NOT;
        snprintf(c->text, sizeof c->text, "not");
        rc = parse_cond(ps, value, here, depth + 1);
    } else {
        rc = parse_leaf(ps, type, value, here, c);
    }
    c->end = (uint8_t)seg->n_nodes;
    return rc;
}


/* ---- segments ---- */

static int read_name(struct parser *ps, const cJSON *item, char *name)
{
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(item, "name");

    if (value == NULL)
        return fail(ps, "missing \"name\"");
    if (!cJSON_IsString(value))
        return fail(ps, "\"name\" must be a string of a-z, 0-9, _ and -");

    size_t len = strlen(value->valuestring);
    if (len == 0)
        return fail(ps, "\"name\" is empty");
    if (len > VT_SEGMENT_NAME_MAX)
        return fail(ps, "\"name\" is longer than %d bytes", VT_SEGMENT_NAME_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)value->valuestring[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
            return fail(ps, "\"name\" contains the byte 0x%02X at position %zu; a segment "
                            "name consists of a-z, 0-9, _ and -", ch, i + 1);
    }
    /* A name starting with _ or - would collide with the count's totals ("_at"). A
     * gender name would be read as the gender segment in a business rule. */
    if (value->valuestring[0] == '_' || value->valuestring[0] == '-')
        return fail(ps, "\"name\" \"%s\" starts with \"%c\"; start it with a letter or a "
                        "digit", value->valuestring, value->valuestring[0]);
    static const char *const reserved[] = {"female", "male", "unknown", "any"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        if (strcmp(value->valuestring, reserved[i]) == 0)
            return fail(ps, "\"name\" \"%s\" is the name of a gender segment in business "
                            "rules; choose another", value->valuestring);
    }
    memcpy(name, value->valuestring, len + 1);
    return 0;
}


/* {"min": ..., "points": [{"points": ..., "when": COND}, ...]} */
static int read_score(struct parser *ps, const cJSON *score, struct segment *seg)
{
    static const char *const keys[] = {"min", "points"};
    static const char *const entry_keys[] = {"points", "when"};
    bool present;

    if (check_object(ps, score, "score", keys, 2, "min, points") != 0)
        return -1;
    if (read_number(ps, score, "min", "score", -HUGE_VAL, HUGE_VAL, false, &seg->min_score,
                    &present) != 0)
        return -1;
    if (!present)
        return fail(ps, "score needs \"min\": the total that makes a member");

    const cJSON *points = cJSON_GetObjectItemCaseSensitive(score, "points");
    int count = cJSON_IsArray(points) ? cJSON_GetArraySize(points) : -1;
    if (count < 1 || count > VT_SEGMENT_POINTS_MAX)
        return fail(ps, "score.points must be an array of 1 to %d entries",
                    VT_SEGMENT_POINTS_MAX);

    for (const cJSON *item = points->child; item != NULL; item = item->next) {
        struct point_entry *entry = &seg->points[seg->n_points];
        char where[64];

        format_path(where, sizeof where, "score.points[%zu]", seg->n_points);
        if (check_object(ps, item, where, entry_keys, 2, "points, when") != 0)
            return -1;
        if (read_number(ps, item, "points", where, -POINTS_LIMIT, POINTS_LIMIT, false,
                        &entry->points, &present) != 0)
            return -1;
        if (!present)
            return fail(ps, "%s needs \"points\": a number from %.16g to %.16g", where,
                        -POINTS_LIMIT, POINTS_LIMIT);

        const cJSON *when = cJSON_GetObjectItemCaseSensitive(item, "when");
        if (when == NULL)
            return fail(ps, "%s needs \"when\": the condition that earns the points", where);
        entry->root = (uint8_t)seg->n_nodes;
        char path[80];
        format_path(path, sizeof path, "%s.when", where);
        if (parse_cond(ps, when, path, 1) != 0)
            return -1;
        seg->n_points++;
    }
    return 0;
}


static int read_segment(struct parser *ps, const cJSON *item, struct vt_segments *s)
{
    static const char *const keys[] = {"name", "description", "when", "score"};
    struct segment *seg = &s->items[s->n];

    memset(seg, 0, sizeof *seg);
    s->n++; /* counted now, so that vt_segments_free releases what was read on failure */
    ps->seg = seg;

    if (!cJSON_IsObject(item))
        return fail(ps, "a segment must be an object");
    if (read_name(ps, item, seg->name) != 0)
        return -1;
    ps->segment_name = seg->name;
    for (size_t i = 0; i + 1 < s->n; i++) {
        if (strcmp(s->items[i].name, seg->name) == 0)
            return fail(ps, "the name is already used by segment %zu", i);
    }
    if (check_keys(ps, item, "the segment", keys, 4, "name, description, when, score") != 0)
        return -1;

    const cJSON *description = cJSON_GetObjectItemCaseSensitive(item, "description");
    if (description != NULL && !cJSON_IsString(description))
        return fail(ps, "\"description\" must be a string");

    const cJSON *when = cJSON_GetObjectItemCaseSensitive(item, "when");
    const cJSON *score = cJSON_GetObjectItemCaseSensitive(item, "score");
    if ((when == NULL) == (score == NULL))
        return fail(ps, "give exactly one of \"when\" (a condition) and \"score\" (points "
                        "per condition)");

    seg->nodes = calloc(VT_SEGMENT_CONDITIONS_MAX, sizeof *seg->nodes);
    if (seg->nodes == NULL)
        return fail(ps, "out of memory");
    if (when != NULL && parse_cond(ps, when, "when", 1) != 0)
        return -1;
    if (score != NULL) {
        seg->scored = true;
        if (read_score(ps, score, seg) != 0)
            return -1;
    }

    /* Keep only the nodes in use; a valid segment has at least one. */
    struct cond *fitted = realloc(seg->nodes, seg->n_nodes * sizeof *seg->nodes);
    if (fitted != NULL && seg->n_nodes > 0)
        seg->nodes = fitted;
    return 0;
}


/* ---- the file ---- */

/* Offset of the first NUL in the text: a NUL byte, or the escape \u0000, which cJSON
 * would accept and which would cut a string short. Returns len when there is none. Text
 * that is not JSON may mislead the scan, and the parse rejects such text anyway. */
static size_t find_nul(const char *json, size_t len)
{
    bool in_string = false;

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
            if (len - i >= 6 && memcmp(json + i + 1, "u0000", 5) == 0)
                return i;
            if (i + 1 < len && json[i + 1] != '\0')
                i++; /* the escaped character starts no escape */
        }
    }
    return len;
}


/* Line and column (1-based) of a byte offset. */
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


/* Parse the text as one JSON value followed only by white space. */
static cJSON *parse_text(const char *json, size_t len, const char *name, char *err,
                         size_t errsize)
{
    char reason[256];
    size_t line, column;

    size_t nul = find_nul(json, len);
    if (nul < len) {
        line_and_column(json, nul, &line, &column);
        snprintf(reason, sizeof reason, "a NUL (byte or \\u0000) at line %zu, column %zu is "
                 "not accepted in a segments file", line, column);
        fail_file(err, errsize, name, reason);
        return NULL;
    }

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, false);
    size_t offset = end != NULL && end >= json && end <= json + len ? (size_t)(end - json) : 0;
    if (root == NULL) {
        line_and_column(json, offset, &line, &column);
        snprintf(reason, sizeof reason, "invalid JSON at line %zu, column %zu", line, column);
        fail_file(err, errsize, name, reason);
        return NULL;
    }
    while (offset < len && (json[offset] == ' ' || json[offset] == '\t' ||
                            json[offset] == '\n' || json[offset] == '\r'))
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


struct vt_segments *vt_segments_parse(const char *json, size_t len, const char *name,
                                      char *err, size_t errsize)
{
    struct parser ps = {.file = name, .err = err, .errsize = errsize};
    char reason[256];

    cJSON *root = parse_text(json, len, name, err, errsize);
    if (root == NULL)
        return NULL;

    struct vt_segments *s = NULL;
    const cJSON *list = cJSON_IsObject(root)
                            ? cJSON_GetObjectItemCaseSensitive(root, "segments")
                            : NULL;
    if (!cJSON_IsArray(list)) {
        fail_file(err, errsize, name, "expected an object with an array \"segments\"");
        goto out;
    }
    for (const cJSON *item = root->child; item != NULL; item = item->next) {
        if (strcmp(item->string, "segments") != 0 || item != list) {
            snprintf(reason, sizeof reason, "unknown or repeated top-level key \"%.100s\"; "
                     "only one \"segments\" is allowed", item->string);
            fail_file(err, errsize, name, reason);
            goto out;
        }
    }

    int count = cJSON_GetArraySize(list);
    if (count > VT_SEGMENTS_MAX) {
        snprintf(reason, sizeof reason, "%d segments; the maximum is %d", count,
                 VT_SEGMENTS_MAX);
        fail_file(err, errsize, name, reason);
        goto out;
    }
    s = calloc(1, sizeof *s + (size_t)count * sizeof s->items[0]);
    if (s == NULL) {
        fail_file(err, errsize, name, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < VT_SEGMENTS_MAX; i++)
        atomic_init(&s->served[i], 0);
    ps.set = s;

    for (const cJSON *item = list->child; item != NULL; item = item->next) {
        ps.index = s->n;
        ps.segment_name = NULL;
        if (read_segment(&ps, item, s) != 0) {
            vt_segments_free(s);
            s = NULL;
            goto out;
        }
    }

out:
    cJSON_Delete(root);
    return s;
}


struct vt_segments *vt_segments_load(const char *path, char *err, size_t errsize)
{
    if (path == NULL || path[0] == '\0') {
        struct vt_segments *none = calloc(1, sizeof *none);

        if (none == NULL)
            snprintf(err, errsize, "out of memory");
        return none;
    }

    size_t len = 0;
    char *text = vt_read_file(path, VT_SEGMENTS_FILE_MAX, "segments file", &len, err, errsize);
    if (text == NULL)
        return NULL;
    struct vt_segments *s = vt_segments_parse(text, len, path, err, errsize);
    free(text);

    if (s != NULL)
        VT_INFO("SEGMENTS", "loaded %s: %zu segments", path, s->n);
    return s;
}


/* ---- evaluation ---- */

/* Profile figures that the conditions of one evaluation read, computed once per call. */
struct observed {
    const struct vt_profile *p;
    int64_t now_ms;
    double category_total;
    double brand_total;
    double tier_share[VT_TIER_COUNT];
    double category_top, brand_top, tier_top; /* shares of each list's strongest entry */
    double name_value[VT_SEGMENTS_NAMES_MAX]; /* summed value per affinity name slot */
    enum vt_segment gender;
    double p_female;
    double gender_probability; /* of the estimated segment */
};


static double list_total(const struct vt_scored_name *list, size_t n)
{
    double total = 0;

    for (size_t i = 0; i < n; i++)
        total += list[i].value;
    return total;
}


/* Share of the strongest entry of a list with this total. */
static double list_top_share(const struct vt_scored_name *list, size_t n, double total)
{
    double top = 0;

    for (size_t i = 0; i < n; i++) {
        if (list[i].value > top)
            top = list[i].value;
    }
    return total > 0 ? top / total : 0;
}


/* Add each category entry's value to the slots of the names it matches: itself and each
 * prefix that ends before a ".", so that "perfume" collects "perfume" and "perfume.edp".
 * Names compare ignoring ASCII case, as the business rules match categories. */
static void sum_categories(const struct vt_segments *s, struct observed *o)
{
    const struct vt_profile *p = o->p;

    for (size_t i = 0; i < p->n_categories; i++) {
        const char *name = p->categories[i].name;
        uint64_t hash = NAME_HASH_START;
        size_t end = 0;

        /* The hash of each prefix is the running hash where the prefix ends. */
        for (;;) {
            if (end > 0 && (name[end] == '.' || name[end] == '\0')) {
                int slot = find_name(s, false, name, end, hash);

                if (slot >= 0)
                    o->name_value[slot] += p->categories[i].value;
            }
            if (name[end] == '\0')
                break;
            hash = name_hash_step(hash, name[end]);
            end++;
        }
    }
}


static void sum_brands(const struct vt_segments *s, struct observed *o)
{
    const struct vt_profile *p = o->p;

    for (size_t i = 0; i < p->n_brands; i++) {
        const char *name = p->brands[i].name;
        size_t len = strlen(name);
        int slot = find_name(s, true, name, len, name_hash(name, len));

        if (slot >= 0)
            o->name_value[slot] += p->brands[i].value;
    }
}


static void observe(const struct vt_segments *s, const struct vt_segment_facts *f,
                    struct observed *o)
{
    const struct vt_profile *p = f->profile;

    o->p = p;
    o->now_ms = f->now_ms;
    o->category_total = list_total(p->categories, p->n_categories);
    o->brand_total = list_total(p->brands, p->n_brands);
    o->category_top = list_top_share(p->categories, p->n_categories, o->category_total);
    o->brand_top = list_top_share(p->brands, p->n_brands, o->brand_total);
    for (size_t i = 0; i < s->n_names; i++)
        o->name_value[i] = 0;
    if (s->n_names > 0) {
        sum_categories(s, o);
        sum_brands(s, o);
    }

    double tier_total = list_total(p->tiers, p->n_tiers);
    for (size_t t = 0; t < VT_TIER_COUNT; t++)
        o->tier_share[t] = 0;
    for (size_t i = 0; i < p->n_tiers && tier_total > 0; i++) {
        enum vt_price_tier tier;
        const char *name = p->tiers[i].name;

        if (vt_price_tier_parse(name, strlen(name), &tier) == 0)
            o->tier_share[tier] += p->tiers[i].value / tier_total;
    }
    o->tier_top = 0;
    for (size_t t = 0; t < VT_TIER_COUNT; t++) {
        if (o->tier_share[t] > o->tier_top)
            o->tier_top = o->tier_share[t];
    }

    if (f->gender != NULL) {
        o->gender = f->gender->segment;
        o->p_female = f->gender->p_female;
        o->gender_probability = f->gender->probability;
    } else {
        o->gender = VT_SEGMENT_UNKNOWN;
        o->p_female = 0.5;
        o->gender_probability = 0.5;
    }
}


static double affinity_share(const struct cond *c, const struct observed *o)
{
    double total = c->kind == COND_CATEGORY ? o->category_total : o->brand_total;

    if (c->strongest && c->kind == COND_CATEGORY)
        return o->category_top;
    if (c->strongest && c->kind == COND_BRAND)
        return o->brand_top;
    if (c->strongest)
        return o->tier_top;
    if (c->kind == COND_TIER)
        return o->tier_share[c->index];
    return total > 0 ? o->name_value[c->name_slot] / total : 0;
}


static bool within_bounds(const struct cond *c, double v)
{
    return (!c->has_min || v >= c->min) && (!c->has_max || v <= c->max);
}


/* Evaluate a leaf: whether it holds, and the observed value (*has_value false when there
 * is none, as for a "last" condition on a type never seen). */
static bool eval_leaf(const struct cond *c, const struct observed *o, double *value,
                      bool *has_value)
{
    const struct vt_profile *p = o->p;

    *has_value = true;
    switch (c->kind) {
    case COND_CATEGORY:
    case COND_BRAND:
    case COND_TIER:
        *value = affinity_share(c, o);
        return within_bounds(c, *value);
    case COND_COUNT:
        *value = (double)(c->index == EVENT_ANY ? p->events : p->count_by_type[c->index]);
        return within_bounds(c, *value);
    case COND_LAST: {
        int64_t last = c->index == EVENT_ANY ? p->last_seen_ms : p->last_by_type_ms[c->index];

        /* -1 marks a type never seen; 0 is what a profile without the field reads as. */
        if (last <= 0) {
            *has_value = false;
            *value = 0;
            return false;
        }
        *value = (double)(o->now_ms - last) / 1000.0;
        return (!c->has_max || *value <= c->max) && (!c->has_min || *value > c->min);
    }
    case COND_GENDER:
        if (c->index == VT_SEGMENT_FEMALE)
            *value = o->p_female;
        else if (c->index == VT_SEGMENT_MALE)
            *value = 1 - o->p_female;
        else
            *value = o->gender_probability;
        return (int)o->gender == c->index && (!c->has_min || *value >= c->min);
    case COND_FIRST_VISIT:
        *value = (double)p->visitor_sessions;
        return (p->visitor_sessions <= 1) == c->first_visit;
    case COND_SESSIONS:
        *value = (double)p->visitor_sessions;
        return within_bounds(c, *value);
    case COND_CART:
        *value = (double)p->n_cart;
        return within_bounds(c, *value);
    case COND_REVENUE:
        /* A session without a linked visitor is all the visitor there is. */
        *value = c->index == 1 && p->visitor_linked ? p->visitor_revenue : p->revenue;
        return within_bounds(c, *value);
    default:
        *has_value = false;
        *value = 0;
        return false;
    }
}


/* Whether node i holds, stopping early in all and any. */
static bool eval_node(const struct cond *nodes, size_t i, const struct observed *o)
{
    const struct cond *c = &nodes[i];
    double value;
    bool has_value;

    switch (c->kind) {
    case COND_ALL:
        for (size_t child = i + 1; child < c->end; child = nodes[child].end) {
            if (!eval_node(nodes, child, o))
                return false;
        }
        return true;
    case COND_ANY:
        for (size_t child = i + 1; child < c->end; child = nodes[child].end) {
            if (eval_node(nodes, child, o))
                return true;
        }
        return false;
    case COND_NOT:
        return !eval_node(nodes, i + 1, o);
    default:
        return eval_leaf(c, o, &value, &has_value);
    }
}


static double segment_score(const struct segment *seg, const struct observed *o)
{
    double score = 0;

    for (size_t k = 0; k < seg->n_points; k++) {
        if (eval_node(seg->nodes, seg->points[k].root, o))
            score += seg->points[k].points;
    }
    return score;
}


static bool segment_holds(const struct segment *seg, const struct observed *o)
{
    if (seg->scored)
        return segment_score(seg, o) >= seg->min_score;
    return eval_node(seg->nodes, 0, o);
}


/* The reason a profile is in no segment, or NULL when its conditions decide. */
static const char *no_member_reason(const struct vt_segment_facts *f)
{
    /* A profile without consent is stored empty, so it reads as not existing too. */
    if (f != NULL && f->profile != NULL && f->profile->consent_denied)
        return "no consent";
    if (f == NULL || f->profile == NULL || !f->profile->exists)
        return "no profile";
    return NULL;
}


uint64_t vt_segments_evaluate(const struct vt_segments *s, const struct vt_segment_facts *f)
{
    struct observed o;
    uint64_t mask = 0;

    if (s == NULL || s->n == 0 || no_member_reason(f) != NULL)
        return 0;

    observe(s, f, &o);
    for (size_t i = 0; i < s->n; i++) {
        if (segment_holds(&s->items[i], &o))
            mask |= UINT64_C(1) << i;
    }
    return mask;
}


/* ---- explain ---- */

/* Write node i and its subtree, evaluating every condition. */
static void explain_node(const struct cond *nodes, size_t i, const struct observed *o,
                         struct vt_jsonw *w)
{
    const struct cond *c = &nodes[i];

    vt_jsonw_object_begin(w);
    vt_jsonw_key(w, "condition");
    vt_jsonw_string(w, c->text);
    vt_jsonw_key(w, "held");
    if (c->kind == COND_ALL || c->kind == COND_ANY || c->kind == COND_NOT) {
        vt_jsonw_bool(w, eval_node(nodes, i, o));
        vt_jsonw_key(w, "of");
        vt_jsonw_array_begin(w);
        for (size_t child = i + 1; child < c->end; child = nodes[child].end)
            explain_node(nodes, child, o, w);
        vt_jsonw_array_end(w);
    } else {
        double value;
        bool has_value;

        vt_jsonw_bool(w, eval_leaf(c, o, &value, &has_value));
        vt_jsonw_key(w, "value");
        if (!has_value)
            vt_jsonw_null(w);
        else if (c->kind == COND_CATEGORY || c->kind == COND_BRAND || c->kind == COND_TIER ||
                 c->kind == COND_LAST || c->kind == COND_GENDER || c->kind == COND_REVENUE)
            vt_jsonw_double(w, value);
        else
            vt_jsonw_int(w, (int64_t)value);
    }
    vt_jsonw_object_end(w);
}


static void explain_segment(const struct segment *seg, const struct observed *o,
                            struct vt_jsonw *w)
{
    vt_jsonw_object_begin(w);
    vt_jsonw_key(w, "segment");
    vt_jsonw_string(w, seg->name);
    vt_jsonw_key(w, "member");
    vt_jsonw_bool(w, segment_holds(seg, o));

    if (seg->scored) {
        vt_jsonw_key(w, "score");
        vt_jsonw_double(w, segment_score(seg, o));
        vt_jsonw_key(w, "min");
        vt_jsonw_double(w, seg->min_score);
    }

    vt_jsonw_key(w, "conditions");
    vt_jsonw_array_begin(w);
    if (!seg->scored)
        explain_node(seg->nodes, 0, o, w);
    for (size_t k = 0; seg->scored && k < seg->n_points; k++) {
        const struct point_entry *entry = &seg->points[k];

        vt_jsonw_object_begin(w);
        vt_jsonw_key(w, "points");
        vt_jsonw_double(w, entry->points);
        vt_jsonw_key(w, "held");
        vt_jsonw_bool(w, eval_node(seg->nodes, entry->root, o));
        vt_jsonw_key(w, "condition");
        explain_node(seg->nodes, entry->root, o, w);
        vt_jsonw_object_end(w);
    }
    vt_jsonw_array_end(w);
    vt_jsonw_object_end(w);
}


void vt_segments_explain(const struct vt_segments *s, const struct vt_segment_facts *f,
                         struct vt_jsonw *w)
{
    const char *reason = no_member_reason(f);
    struct observed o;

    vt_jsonw_array_begin(w);
    if (reason == NULL && s != NULL)
        observe(s, f, &o);
    for (size_t i = 0; s != NULL && i < s->n; i++) {
        if (reason == NULL) {
            explain_segment(&s->items[i], &o, w);
            continue;
        }
        vt_jsonw_object_begin(w);
        vt_jsonw_key(w, "segment");
        vt_jsonw_string(w, s->items[i].name);
        vt_jsonw_key(w, "member");
        vt_jsonw_bool(w, false);
        vt_jsonw_key(w, "reason");
        vt_jsonw_string(w, reason);
        vt_jsonw_object_end(w);
    }
    vt_jsonw_array_end(w);
}


/* ---- served counters ---- */

void vt_segments_count_served(struct vt_segments *s, uint64_t mask)
{
    if (s == NULL)
        return;
    if (s->n < VT_SEGMENTS_MAX)
        mask &= (UINT64_C(1) << s->n) - 1;
    while (mask != 0) {
        int i = __builtin_ctzll(mask);

        atomic_fetch_add_explicit(&s->served[i], 1, memory_order_relaxed);
        mask &= mask - 1;
    }
}


uint64_t vt_segments_take_served(struct vt_segments *s, size_t i)
{
    if (s == NULL || i >= s->n)
        return 0;
    return atomic_exchange_explicit(&s->served[i], 0, memory_order_relaxed);
}
