/*
 * vitrine: the product catalog, loaded from JSON Lines (see include/vitrine/catalog.h).
 *
 * Each line is parsed with cJSON into a struct vt_product. Strings live in an arena of
 * fixed-size blocks, so pointers to them stay valid while the product array grows. Product
 * ids, brand names and category names are kept in open-addressing hash tables with
 * power-of-two slot counts and linear probing, at most half full. Brand and category names
 * compare case-insensitively in ASCII. After the last line, all products are sorted once by
 * popularity, and the per-brand and per-category lists are filled by walking that order,
 * so they share it without sorting again.
 *
 * Changes from the catalog topic (vt_catalog_apply) copy the whole catalog into a new one
 * (products, strings, hash tables, name tables in index order), apply the changes there and
 * rebuild the popularity, brand and category lists. Copying keeps every index and makes the
 * new catalog independent of the old one, which the updater frees later.
 */
#include "vitrine/catalog.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "vitrine/decode.h"
#include "vitrine/log.h"
#include "vitrine/profile.h"
#include "vitrine/util.h"

/* Longest accepted line in bytes, without the line break. Longer lines are rejected. */
#define LINE_MAX_BYTES (64 * 1024)

/* Invalid lines logged one by one. The rest are summarized in one line at the end. */
#define INVALID_LINES_LOGGED 10

/* Largest product count. Category lists hold up to VT_ITEM_CATEGORIES_MAX entries per
 * product in uint32_t offsets, and VT_CATALOG_NONE must stay out of range. */
#define PRODUCTS_MAX (UINT32_MAX / (2 * VT_ITEM_CATEGORIES_MAX))

/* Bytes per arena block. A longer string gets a block of its own. */
#define ARENA_BLOCK_BYTES (256 * 1024)

/* Unknown members of a catalog topic record: the bytes of each name shown in messages,
 * and the size of the whole list. A reason of 256 bytes has room for the list and its
 * text. */
#define UNKNOWN_NAME_SHOWN 32
#define UNKNOWN_LIST_BYTES 128

/* Bound for numeric ids: 2^53, the largest integer up to which a double is exact. */
#define ID_NUMBER_MAX 9007199254740992.0

#define TABLE_SLOTS_MIN 64

struct arena_block {
    struct arena_block *next;
    size_t used;
    size_t size;
    char data[];
};

/* One slot of a hash table: the index of a product or name, and the key's hash. */
struct slot {
    uint32_t index;
    uint32_t hash;
};

/* Brand or category names with their lookup table and product lists. */
struct name_table {
    const char **names; /* display names: the first spelling seen */
    uint32_t *lengths;
    uint32_t count;
    uint32_t capacity;
    struct slot *slots;
    size_t mask; /* slot count - 1 */
    /* The products of name i are members[offsets[i]] .. members[offsets[i + 1] - 1]. */
    uint32_t *offsets;
    uint32_t *members;
};

struct vt_catalog {
    struct vt_catalog_stats stats;
    struct vt_product *products;
    uint32_t *id_lengths;
    /* Per product: the gender came from a recognized "gender" label, so a change of name
     * or categories keeps it instead of inferring it again. */
    bool *gender_labeled;
    size_t count;
    size_t capacity;
    struct slot *id_slots;
    size_t id_mask;
    uint32_t *popular; /* products that are not removed, by popularity */
    size_t n_popular;
    double max_popularity;
    struct name_table brands;
    struct name_table categories;
    struct arena_block *arena;
};

/* State of one load: where the lines come from and how many were logged. */
struct loader {
    struct vt_catalog *cat;
    const struct vt_config *cfg;
    const char *name;
    size_t line_number;
    size_t invalid_logged;
};

/* Returned by the accessors for an empty list, so that callers never get NULL. */
static const uint32_t empty_list[1] = {VT_CATALOG_NONE};


static char *arena_alloc(struct vt_catalog *cat, size_t size)
{
    struct arena_block *block = cat->arena;

    if (block == NULL || block->size - block->used < size) {
        size_t block_size = size > ARENA_BLOCK_BYTES ? size : ARENA_BLOCK_BYTES;

        block = malloc(sizeof *block + block_size);
        if (block == NULL)
            return NULL;
        block->size = block_size;
        block->used = 0;
        block->next = cat->arena;
        cat->arena = block;
    }

    char *p = block->data + block->used;
    block->used += size;
    return p;
}


static const char *arena_strndup(struct vt_catalog *cat, const char *s, size_t len)
{
    char *copy = arena_alloc(cat, len + 1);

    if (copy == NULL)
        return NULL;
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}


static unsigned char ascii_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}


/* FNV-1a over the ASCII-lowercased bytes, so that case variants of a name collide. */
static uint32_t hash_name(const char *s, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        h ^= ascii_lower((unsigned char)s[i]);
        h *= 16777619u;
    }
    return h;
}


static uint32_t hash_id(const char *s, size_t len)
{
    uint64_t h = vt_hash64(s, len);

    return (uint32_t)(h ^ (h >> 32));
}


static size_t slot_start(uint32_t hash, size_t mask)
{
    return (size_t)(hash ^ (hash >> 15)) & mask;
}


/* Allocate a table of `count` empty slots (count is a power of two). */
static struct slot *slots_new(size_t count)
{
    struct slot *slots = malloc(count * sizeof *slots);

    if (slots == NULL)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        slots[i].index = VT_CATALOG_NONE;
        slots[i].hash = 0;
    }
    return slots;
}


/* Double a table's slot count and reinsert its entries by their stored hashes. */
static int slots_grow(struct slot **slots, size_t *mask)
{
    size_t old_count = *mask + 1;
    size_t new_mask = old_count * 2 - 1;
    struct slot *grown = slots_new(old_count * 2);

    if (grown == NULL)
        return -1;
    for (size_t i = 0; i < old_count; i++) {
        struct slot s = (*slots)[i];
        if (s.index == VT_CATALOG_NONE)
            continue;
        size_t k = slot_start(s.hash, new_mask);
        while (grown[k].index != VT_CATALOG_NONE)
            k = (k + 1) & new_mask;
        grown[k] = s;
    }
    free(*slots);
    *slots = grown;
    *mask = new_mask;
    return 0;
}


/* Strip ASCII spaces, tabs and line breaks from both ends of s[0..*len). */
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


/* Trim a brand or category name and cut it to VT_NAME_MAX bytes at a UTF-8 character
 * boundary, the same way for loading and for lookups, so that both see the same key. */
static const char *normalize_name(const char *s, size_t *len)
{
    s = trim(s, len);
    if (*len > VT_NAME_MAX) {
        size_t n = VT_NAME_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
        *len = n;
    }
    return s;
}


static uint32_t name_lookup(const struct name_table *t, const char *name, size_t len)
{
    if (t->slots == NULL)
        return VT_CATALOG_NONE;
    name = normalize_name(name, &len);
    if (len == 0)
        return VT_CATALOG_NONE;

    uint32_t hash = hash_name(name, len);
    for (size_t k = slot_start(hash, t->mask);; k = (k + 1) & t->mask) {
        const struct slot *s = &t->slots[k];
        if (s->index == VT_CATALOG_NONE)
            return VT_CATALOG_NONE;
        if (s->hash == hash && t->lengths[s->index] == len &&
            vt_strncaseeq(t->names[s->index], name, len))
            return s->index;
    }
}


/* Index of a brand or category name, adding it when new. Returns VT_CATALOG_NONE for an
 * empty name, and also when memory runs out, which sets *oom. */
static uint32_t name_intern(struct vt_catalog *cat, struct name_table *t, const char *name,
                            size_t len, bool *oom)
{
    name = normalize_name(name, &len);
    if (len == 0)
        return VT_CATALOG_NONE;

    uint32_t found = name_lookup(t, name, len);
    if (found != VT_CATALOG_NONE)
        return found;

    if (t->slots == NULL) {
        t->slots = slots_new(TABLE_SLOTS_MIN);
        t->mask = TABLE_SLOTS_MIN - 1;
        if (t->slots == NULL)
            goto oom;
    }
    if ((size_t)(t->count + 1) * 2 > t->mask + 1 && slots_grow(&t->slots, &t->mask) != 0)
        goto oom;
    if (t->count == t->capacity) {
        uint32_t capacity = t->capacity ? t->capacity * 2 : 64;
        const char **names = realloc(t->names, capacity * sizeof *names);
        if (names == NULL)
            goto oom;
        t->names = names;
        uint32_t *lengths = realloc(t->lengths, capacity * sizeof *lengths);
        if (lengths == NULL)
            goto oom;
        t->lengths = lengths;
        t->capacity = capacity;
    }

    const char *copy = arena_strndup(cat, name, len);
    if (copy == NULL)
        goto oom;
    uint32_t index = t->count++;
    t->names[index] = copy;
    t->lengths[index] = (uint32_t)len;

    uint32_t hash = hash_name(name, len);
    size_t k = slot_start(hash, t->mask);
    while (t->slots[k].index != VT_CATALOG_NONE)
        k = (k + 1) & t->mask;
    t->slots[k].index = index;
    t->slots[k].hash = hash;
    return index;

oom:
    *oom = true;
    return VT_CATALOG_NONE;
}


static void name_table_free(struct name_table *t)
{
    free(t->names);
    free(t->lengths);
    free(t->slots);
    free(t->offsets);
    free(t->members);
    memset(t, 0, sizeof *t);
}


/* Slot of the product with this id, or of the empty slot where it would go. */
static size_t id_slot(const struct vt_catalog *cat, const char *id, size_t len, uint32_t hash)
{
    for (size_t k = slot_start(hash, cat->id_mask);; k = (k + 1) & cat->id_mask) {
        const struct slot *s = &cat->id_slots[k];
        if (s->index == VT_CATALOG_NONE)
            return k;
        if (s->hash == hash && cat->id_lengths[s->index] == len &&
            memcmp(cat->products[s->index].id, id, len) == 0)
            return k;
    }
}


/* Format the reason of a rejected line into reason and return -1. */
static int reject(char *reason, size_t reason_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int reject(char *reason, size_t reason_size, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(reason, reason_size, fmt, ap);
    va_end(ap);
    return -1;
}


/* Length of the UTF-8 character at s[0..avail), or 0 when the bytes there are not valid
 * UTF-8. The narrower ranges of the second byte after E0, ED, F0 and F4 exclude overlong
 * forms, UTF-16 surrogates (U+D800 to U+DFFF) and code points above U+10FFFF. */
static size_t utf8_char_length(const unsigned char *s, size_t avail)
{
    unsigned char second_min = 0x80;
    unsigned char second_max = 0xBF;
    size_t n;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        n = 2;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        n = 3;
        second_min = s[0] == 0xE0 ? 0xA0 : 0x80;
        second_max = s[0] == 0xED ? 0x9F : 0xBF;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        n = 4;
        second_min = s[0] == 0xF0 ? 0x90 : 0x80;
        second_max = s[0] == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }

    if (avail < n || s[1] < second_min || s[1] > second_max)
        return 0;
    for (size_t i = 2; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    }
    return n;
}


/* Check the bytes of a product id: valid UTF-8 without control characters (bytes below
 * 0x20 and 0x7F). Product ids never become part of a Redis key, so any other character,
 * spaces, quotes and braces included, is allowed. */
static int check_id_bytes(const char *id, size_t len, char *reason, size_t reason_size)
{
    const unsigned char *s = (const unsigned char *)id;
    size_t i = 0;

    while (i < len) {
        size_t n;

        if (s[i] < 0x20 || s[i] == 0x7F)
            return reject(reason, reason_size,
                          "\"id\" contains the control character 0x%02X at byte %zu of the id",
                          s[i], i + 1);
        n = utf8_char_length(s + i, len - i);
        if (n == 0)
            return reject(reason, reason_size, "\"id\" is not valid UTF-8 at byte %zu of the id",
                          i + 1);
        i += n;
    }
    return 0;
}


/* Read the "id" member, a string or a whole number, into buf. */
static int read_id(const cJSON *obj, char *buf, size_t bufsize, size_t *len, char *reason,
                   size_t reason_size)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, "id");

    if (item == NULL || cJSON_IsNull(item))
        return reject(reason, reason_size, "missing \"id\"");

    if (cJSON_IsString(item)) {
        *len = strlen(item->valuestring);
        if (*len == 0 || *len >= bufsize)
            return reject(reason, reason_size, "\"id\" must be 1 to %d bytes long",
                          VT_PRODUCT_ID_MAX);
        memcpy(buf, item->valuestring, *len + 1);
    } else if (cJSON_IsNumber(item)) {
        double v = item->valuedouble;
        if (v != floor(v) || v < 0 || v > ID_NUMBER_MAX)
            return reject(reason, reason_size,
                          "numeric \"id\" must be a whole number from 0 to 2^53");
        int n = snprintf(buf, bufsize, "%lld", (long long)v);
        *len = n > 0 ? (size_t)n : 0;
    } else {
        return reject(reason, reason_size, "\"id\" must be a string or a number");
    }
    return check_id_bytes(buf, *len, reason, reason_size);
}


/* Read an optional string member. Absent and null give *out = NULL. */
static int read_string(const cJSON *obj, const char *field, const char **out, char *reason,
                       size_t reason_size)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, field);

    *out = NULL;
    if (item == NULL || cJSON_IsNull(item))
        return 0;
    if (!cJSON_IsString(item))
        return reject(reason, reason_size, "\"%s\" must be a string", field);
    *out = item->valuestring;
    return 0;
}


/* Read an optional number member >= 0. Absent and null leave *out unchanged. With
 * whole_number set, the value must also be an integer. */
static int read_number(const cJSON *obj, const char *field, bool whole_number, double *out,
                       char *reason, size_t reason_size)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, field);

    if (item == NULL || cJSON_IsNull(item))
        return 0;
    if (!cJSON_IsNumber(item))
        return reject(reason, reason_size, "\"%s\" must be a number", field);

    double v = item->valuedouble;
    if (!isfinite(v) || v < 0)
        return reject(reason, reason_size, "\"%s\" must be a number >= 0", field);
    if (whole_number && (v != floor(v) || v > ID_NUMBER_MAX))
        return reject(reason, reason_size, "\"%s\" must be a whole number >= 0", field);
    *out = v;
    return 0;
}


/* Collect the "categories" member, an array of strings or one string, into names. Empty
 * strings are skipped, and entries past VT_ITEM_CATEGORIES_MAX are ignored. */
static int read_categories(const cJSON *obj, const char *names[VT_ITEM_CATEGORIES_MAX],
                           size_t *count, char *reason, size_t reason_size)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, "categories");
    const cJSON *entry;

    *count = 0;
    if (item == NULL || cJSON_IsNull(item))
        return 0;
    if (cJSON_IsString(item)) {
        names[(*count)++] = item->valuestring;
        return 0;
    }
    if (!cJSON_IsArray(item))
        return reject(reason, reason_size,
                      "\"categories\" must be an array of strings or a string");

    cJSON_ArrayForEach(entry, item) {
        if (!cJSON_IsString(entry))
            return reject(reason, reason_size, "\"categories\" must contain only strings");
        if (*count < VT_ITEM_CATEGORIES_MAX && entry->valuestring[0] != '\0')
            names[(*count)++] = entry->valuestring;
    }
    return 0;
}


/* Fields of one line or change, checked and not yet stored. Strings point into the parsed
 * JSON or into a struct vt_catalog_change. */
struct line_fields {
    char id[VT_PRODUCT_ID_MAX + 1];
    size_t id_length;
    unsigned fields; /* enum vt_catalog_field bits: members present, null included */
    const char *name;
    const char *brand;
    const char *categories[VT_ITEM_CATEGORIES_MAX];
    size_t n_categories;
    const char *gender;
    double price;
    double stock;
    double popularity;
};


static void mark_present(const cJSON *obj, const char *field, unsigned bit, unsigned *fields)
{
    if (cJSON_GetObjectItemCaseSensitive(obj, field) != NULL)
        *fields |= bit;
}


/* Read every member but "id". Absent and null members give the defaults. */
static int read_product_fields(const cJSON *obj, struct line_fields *f, char *reason,
                               size_t reason_size)
{
    f->fields = 0;
    f->name = NULL;
    f->brand = NULL;
    f->n_categories = 0;
    f->gender = NULL;
    f->price = -1;
    f->stock = -1;
    f->popularity = 0;

    if (read_string(obj, "name", &f->name, reason, reason_size) != 0)
        return -1;
    if (read_string(obj, "brand", &f->brand, reason, reason_size) != 0)
        return -1;
    if (read_categories(obj, f->categories, &f->n_categories, reason, reason_size) != 0)
        return -1;
    if (read_string(obj, "gender", &f->gender, reason, reason_size) != 0)
        return -1;
    if (read_number(obj, "price", false, &f->price, reason, reason_size) != 0)
        return -1;
    if (f->price > VT_DECODE_AMOUNT_MAX)
        return reject(reason, reason_size, "\"price\" must be at most %g, the largest "
                      "price an event may carry", VT_DECODE_AMOUNT_MAX);
    if (read_number(obj, "stock", true, &f->stock, reason, reason_size) != 0)
        return -1;
    if (read_number(obj, "popularity", false, &f->popularity, reason, reason_size) != 0)
        return -1;

    mark_present(obj, "name", VT_FIELD_NAME, &f->fields);
    mark_present(obj, "brand", VT_FIELD_BRAND, &f->fields);
    mark_present(obj, "categories", VT_FIELD_CATEGORIES, &f->fields);
    mark_present(obj, "gender", VT_FIELD_GENDER, &f->fields);
    mark_present(obj, "price", VT_FIELD_PRICE, &f->fields);
    mark_present(obj, "stock", VT_FIELD_STOCK, &f->fields);
    mark_present(obj, "popularity", VT_FIELD_POPULARITY, &f->fields);
    return 0;
}


static int read_fields(const cJSON *obj, struct line_fields *f, char *reason,
                       size_t reason_size)
{
    if (!cJSON_IsObject(obj))
        return reject(reason, reason_size, "the line is not a JSON object");
    if (read_id(obj, f->id, sizeof f->id, &f->id_length, reason, reason_size) != 0)
        return -1;
    return read_product_fields(obj, f, reason, reason_size);
}


/* Make room for one more product and grow the id table when it would pass half full. */
static int reserve_product(struct vt_catalog *cat)
{
    if (cat->count == cat->capacity) {
        size_t capacity = cat->capacity ? cat->capacity * 2 : 1024;
        struct vt_product *products = realloc(cat->products, capacity * sizeof *products);
        if (products == NULL)
            return -1;
        cat->products = products;
        uint32_t *lengths = realloc(cat->id_lengths, capacity * sizeof *lengths);
        if (lengths == NULL)
            return -1;
        cat->id_lengths = lengths;
        bool *labeled = realloc(cat->gender_labeled, capacity * sizeof *labeled);
        if (labeled == NULL)
            return -1;
        cat->gender_labeled = labeled;
        cat->capacity = capacity;
    }
    if ((cat->count + 1) * 2 > cat->id_mask + 1)
        return slots_grow(&cat->id_slots, &cat->id_mask);
    return 0;
}


/*
 * Set the gender of p, whose name and categories are already stored, and return true when
 * it came from the label. A label that vt_gender_parse recognizes wins. Otherwise the
 * configured keywords decide, first in the name and then in each category name in order.
 * The recommender's gender filter reads this gender, and ingest uses it too, so both treat
 * the product alike. A non-empty label that vt_gender_parse does not recognize is counted
 * in unknown_gender_labels and read as unknown. Without a configuration no keywords apply.
 */
static bool set_gender(struct vt_catalog *cat, const struct vt_config *cfg, const char *label,
                       struct vt_product *p)
{
    const struct name_table *categories = &cat->categories;

    p->gender = VT_GENDER_UNKNOWN;
    if (label != NULL) {
        size_t len = strlen(label);
        const char *text = trim(label, &len);

        if (len > 0) {
            p->gender = vt_gender_parse(text, len);
            if (p->gender == VT_GENDER_UNKNOWN)
                cat->stats.unknown_gender_labels++;
        }
    }
    if (p->gender != VT_GENDER_UNKNOWN)
        return true;
    if (cfg == NULL)
        return false;

    if (p->name[0] != '\0')
        p->gender = vt_gender_from_text(cfg, p->name, strlen(p->name));
    for (uint8_t i = 0; i < p->n_categories && p->gender == VT_GENDER_UNKNOWN; i++) {
        uint32_t c = p->categories[i];
        p->gender = vt_gender_from_text(cfg, categories->names[c], categories->lengths[c]);
    }
    return false;
}


/* A product with every field at its default, before its id is set. */
static void product_defaults(struct vt_product *p)
{
    memset(p, 0, sizeof *p);
    p->name = "";
    p->brand = VT_CATALOG_NONE;
    for (size_t i = 0; i < VT_ITEM_CATEGORIES_MAX; i++)
        p->categories[i] = VT_CATALOG_NONE;
    p->gender = VT_GENDER_UNKNOWN;
    p->tier = VT_TIER_DRUGSTORE;
    p->price = -1;
    atomic_init(&p->stock, -1);
    p->popularity = 0;
    p->log_popularity = 0;
}


/*
 * Store the fields of f that are present (f->fields) into p, interning brand and category
 * names in cat; the other fields keep p's values. The gender is set again when the change
 * sends one, and inferred again when name or categories change and the old gender did not
 * come from a label. Returns 0, or -1 when memory runs out.
 */
static int set_fields(struct vt_catalog *cat, const struct vt_config *cfg,
                      const struct line_fields *f, struct vt_product *p, bool *gender_labeled)
{
    bool oom = false;

    if (f->fields & VT_FIELD_NAME) {
        p->name = "";
        if (f->name != NULL && f->name[0] != '\0') {
            p->name = arena_strndup(cat, f->name, strlen(f->name));
            if (p->name == NULL)
                return -1;
        }
    }

    if (f->fields & VT_FIELD_BRAND) {
        p->brand = VT_CATALOG_NONE;
        if (f->brand != NULL)
            p->brand = name_intern(cat, &cat->brands, f->brand, strlen(f->brand), &oom);
    }

    if (f->fields & VT_FIELD_CATEGORIES) {
        p->n_categories = 0;
        for (size_t i = 0; i < f->n_categories; i++) {
            uint32_t c = name_intern(cat, &cat->categories, f->categories[i],
                                     strlen(f->categories[i]), &oom);
            bool seen = c == VT_CATALOG_NONE;
            for (size_t k = 0; k < p->n_categories && !seen; k++)
                seen = p->categories[k] == c;
            if (!seen)
                p->categories[p->n_categories++] = c;
        }
        for (size_t i = p->n_categories; i < VT_ITEM_CATEGORIES_MAX; i++)
            p->categories[i] = VT_CATALOG_NONE;
    }
    if (oom)
        return -1;

    if (f->fields & VT_FIELD_GENDER)
        *gender_labeled = set_gender(cat, cfg, f->gender, p);
    else if (!*gender_labeled && (f->fields & (VT_FIELD_NAME | VT_FIELD_CATEGORIES)))
        *gender_labeled = set_gender(cat, cfg, NULL, p);

    if (f->fields & VT_FIELD_PRICE) {
        p->price = f->price;
        p->tier = VT_TIER_DRUGSTORE;
        if (f->price >= 0 && cfg != NULL)
            p->tier = vt_config_price_tier(cfg, f->price);
    }
    if (f->fields & VT_FIELD_STOCK)
        atomic_store_explicit(&p->stock, (int64_t)f->stock, memory_order_relaxed);
    if (f->fields & VT_FIELD_POPULARITY) {
        p->popularity = f->popularity;
        p->log_popularity = log1p(f->popularity);
    }
    return 0;
}


/* Fill p as a new product from f: absent fields take their defaults, and the gender is
 * inferred when f has no recognized label. */
static int set_fresh_fields(struct vt_catalog *cat, const struct vt_config *cfg,
                            const struct line_fields *f, struct vt_product *p,
                            bool *gender_labeled)
{
    struct line_fields all = *f;

    product_defaults(p);
    *gender_labeled = false;
    all.fields |= VT_FIELD_GENDER;
    return set_fields(cat, cfg, &all, p, gender_labeled);
}


/* Append a new product with the id of f at the empty id slot k. The caller reserved room.
 * Returns its index, or VT_CATALOG_NONE when memory runs out. */
static uint32_t append_product(struct vt_catalog *cat, const struct line_fields *f, size_t k,
                               uint32_t hash, const struct vt_product *p, bool gender_labeled)
{
    const char *id = arena_strndup(cat, f->id, f->id_length);

    if (id == NULL)
        return VT_CATALOG_NONE;
    uint32_t index = (uint32_t)cat->count++;
    cat->products[index] = *p;
    cat->products[index].id = id;
    cat->id_lengths[index] = (uint32_t)f->id_length;
    cat->gender_labeled[index] = gender_labeled;
    cat->id_slots[k].index = index;
    cat->id_slots[k].hash = hash;
    return index;
}


/* Store checked fields as a new product or in place of the one with the same id. Returns 0,
 * or -1 when memory runs out. */
static int store_product(struct loader *ld, const struct line_fields *f)
{
    struct vt_catalog *cat = ld->cat;
    struct vt_product p;
    bool gender_labeled = false;

    if (set_fresh_fields(cat, ld->cfg, f, &p, &gender_labeled) != 0)
        return -1;

    /* A later line with a known id replaces the product and keeps its index and id. */
    uint32_t hash = hash_id(f->id, f->id_length);
    size_t k = id_slot(cat, f->id, f->id_length, hash);
    if (cat->id_slots[k].index != VT_CATALOG_NONE) {
        uint32_t index = cat->id_slots[k].index;
        p.id = cat->products[index].id;
        cat->products[index] = p;
        cat->gender_labeled[index] = gender_labeled;
        cat->stats.duplicates++;
        return 0;
    }

    return append_product(cat, f, k, hash, &p, gender_labeled) != VT_CATALOG_NONE ? 0 : -1;
}


static void log_invalid_line(struct loader *ld, const char *reason)
{
    ld->cat->stats.rejected++;
    if (ld->invalid_logged < INVALID_LINES_LOGGED) {
        VT_WARN("CATALOG", "%s line %zu skipped: %s", ld->name, ld->line_number, reason);
        ld->invalid_logged++;
    }
}


/* Byte offset of the first escape \u0000 in a JSON line, or len when there is none. cJSON
 * turns the escape into a NUL byte, which would silently cut a string such as an id short
 * ("a\u0000b" would load as "a"). */
static size_t find_nul_escape(const char *line, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (line[i] != '\\')
            continue;
        if (len - i >= 6 && memcmp(line + i + 1, "u0000", 5) == 0)
            return i;
        /* Step over the escaped character, so that in "\\u0000" the second backslash
         * starts no escape. */
        i++;
    }
    return len;
}


/* Parse text as one JSON value with nothing but spaces after it. Returns the value (the
 * caller deletes it), or NULL with the reason. */
static cJSON *parse_json(const char *text, size_t len, char *reason, size_t reason_size)
{
    const char *end = NULL;

    size_t nul = find_nul_escape(text, len);
    if (nul < len) {
        reject(reason, reason_size,
               "the escape \\u0000 (NUL) at byte %zu is not accepted, because it would cut a "
               "string short",
               nul + 1);
        return NULL;
    }

    cJSON *obj = cJSON_ParseWithLengthOpts(text, len, &end, false);
    if (obj == NULL) {
        size_t offset = end != NULL && end >= text ? (size_t)(end - text) : 0;
        reject(reason, reason_size, "invalid JSON near byte %zu", offset + 1);
        return NULL;
    }
    size_t rest = len - (size_t)(end - text);
    trim(end, &rest);
    if (rest > 0) {
        reject(reason, reason_size, "unexpected text after the JSON value at byte %zu",
               (size_t)(end - text) + 1);
        cJSON_Delete(obj);
        return NULL;
    }
    return obj;
}


/* Parse and store one non-empty line. Returns 0 (stored or rejected) or -1 when memory
 * runs out. */
static int load_line(struct loader *ld, const char *line, size_t len)
{
    struct line_fields fields;
    char reason[160];

    if (ld->cat->count >= PRODUCTS_MAX) {
        snprintf(reason, sizeof reason, "the catalog already holds the maximum of %zu products",
                 (size_t)PRODUCTS_MAX);
        log_invalid_line(ld, reason);
        return 0;
    }

    cJSON *obj = parse_json(line, len, reason, sizeof reason);
    if (obj == NULL) {
        log_invalid_line(ld, reason);
        return 0;
    }

    int rc = 0;
    if (read_fields(obj, &fields, reason, sizeof reason) != 0)
        log_invalid_line(ld, reason);
    else if (reserve_product(ld->cat) != 0 || store_product(ld, &fields) != 0)
        rc = -1;
    cJSON_Delete(obj);
    return rc;
}


/* Read one line into buf (without its line break) and return 1, or return 0 at the end of
 * the input. A line longer than maxlen bytes sets *too_long and is read to its end. */
static int read_line(FILE *in, char *buf, size_t maxlen, size_t *len, bool *too_long)
{
    int c = EOF;
    size_t n = 0;

    *too_long = false;
    while ((c = getc_unlocked(in)) != EOF && c != '\n') {
        if (n < maxlen)
            buf[n++] = (char)c;
        else
            *too_long = true;
    }
    if (c == EOF && n == 0 && !*too_long)
        return 0;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    *len = n;
    return 1;
}


static int compare_by_popularity(const void *a, const void *b, void *arg)
{
    const struct vt_catalog *cat = arg;
    const struct vt_product *x = &cat->products[*(const uint32_t *)a];
    const struct vt_product *y = &cat->products[*(const uint32_t *)b];

    if (x->popularity != y->popularity)
        return x->popularity > y->popularity ? -1 : 1;
    return strcmp(x->id, y->id);
}


/* Fill the per-name product lists of t by walking the popularity order, so that each list
 * keeps that order and leaves out removed products. With categories set, a product joins
 * each of its categories. */
static int build_member_lists(struct vt_catalog *cat, struct name_table *t, bool categories)
{
    size_t total = 0;

    t->offsets = calloc((size_t)t->count + 1, sizeof *t->offsets);
    if (t->offsets == NULL)
        return -1;
    for (size_t i = 0; i < cat->n_popular; i++) {
        const struct vt_product *p = &cat->products[cat->popular[i]];
        if (categories) {
            for (uint8_t k = 0; k < p->n_categories; k++)
                t->offsets[p->categories[k] + 1]++;
            total += p->n_categories;
        } else if (p->brand != VT_CATALOG_NONE) {
            t->offsets[p->brand + 1]++;
            total++;
        }
    }
    for (uint32_t i = 0; i < t->count; i++)
        t->offsets[i + 1] += t->offsets[i];

    t->members = malloc((total > 0 ? total : 1) * sizeof *t->members);
    uint32_t *fill = malloc(((size_t)t->count + 1) * sizeof *fill);
    if (t->members == NULL || fill == NULL) {
        free(fill);
        return -1;
    }
    memcpy(fill, t->offsets, ((size_t)t->count + 1) * sizeof *fill);
    for (size_t i = 0; i < cat->n_popular; i++) {
        uint32_t index = cat->popular[i];
        const struct vt_product *p = &cat->products[index];
        if (categories) {
            for (uint8_t k = 0; k < p->n_categories; k++)
                t->members[fill[p->categories[k]]++] = index;
        } else if (p->brand != VT_CATALOG_NONE) {
            t->members[fill[p->brand]++] = index;
        }
    }
    free(fill);
    return 0;
}


/* Build the popularity order and the brand and category lists once all lines are read or
 * all changes are applied. Removed products stay out of all of them. */
static int build_indexes(struct vt_catalog *cat)
{
    cat->popular = malloc((cat->count > 0 ? cat->count : 1) * sizeof *cat->popular);
    if (cat->popular == NULL)
        return -1;
    cat->n_popular = 0;
    for (size_t i = 0; i < cat->count; i++) {
        if (!cat->products[i].removed)
            cat->popular[cat->n_popular++] = (uint32_t)i;
    }
    qsort_r(cat->popular, cat->n_popular, sizeof *cat->popular, compare_by_popularity, cat);
    cat->max_popularity = cat->n_popular > 0 ? cat->products[cat->popular[0]].popularity : 0;

    if (build_member_lists(cat, &cat->brands, false) != 0)
        return -1;
    if (build_member_lists(cat, &cat->categories, true) != 0)
        return -1;

    cat->stats.products = cat->n_popular;
    cat->stats.removed = cat->count - cat->n_popular;
    cat->stats.brands = cat->brands.count;
    cat->stats.categories = cat->categories.count;
    return 0;
}


static struct vt_catalog *catalog_new(void)
{
    struct vt_catalog *cat = calloc(1, sizeof *cat);

    if (cat == NULL)
        return NULL;
    cat->id_slots = slots_new(TABLE_SLOTS_MIN);
    cat->id_mask = TABLE_SLOTS_MIN - 1;
    if (cat->id_slots == NULL) {
        free(cat);
        return NULL;
    }
    return cat;
}


static void log_summary(const struct vt_catalog *cat, const char *name, uint64_t start_ns)
{
    double ms = (double)(vt_monotonic_ns() - start_ns) / 1e6;

    VT_INFO("CATALOG",
            "loaded %s: %zu products, %zu brands, %zu categories, %zu lines rejected, "
            "%zu duplicate ids replaced, %zu unknown gender labels, %.1f ms",
            name, cat->stats.products, cat->stats.brands, cat->stats.categories,
            cat->stats.rejected, cat->stats.duplicates, cat->stats.unknown_gender_labels, ms);
}


struct vt_catalog *vt_catalog_load_stream(FILE *in, const char *name,
                                          const struct vt_config *cfg, char *err,
                                          size_t errsize)
{
    uint64_t start_ns = vt_monotonic_ns();
    struct vt_catalog *cat = catalog_new();
    char *line = malloc(LINE_MAX_BYTES + 1);
    struct loader ld = {.cat = cat, .cfg = cfg, .name = name != NULL ? name : "catalog"};
    size_t len = 0;
    bool too_long = false;

    if (cat == NULL || line == NULL) {
        snprintf(err, errsize, "out of memory while loading catalog %s", ld.name);
        goto fail;
    }
    if (in == NULL) {
        snprintf(err, errsize, "no input stream given for catalog %s", ld.name);
        goto fail;
    }

    flockfile(in);
    while (read_line(in, line, LINE_MAX_BYTES, &len, &too_long) == 1) {
        ld.line_number++;
        if (too_long) {
            char reason[96];
            cat->stats.lines++;
            snprintf(reason, sizeof reason, "line longer than the maximum of %d bytes",
                     LINE_MAX_BYTES);
            log_invalid_line(&ld, reason);
            continue;
        }
        const char *text = trim(line, &len);
        if (len == 0)
            continue;
        cat->stats.lines++;
        if (load_line(&ld, text, len) != 0) {
            funlockfile(in);
            snprintf(err, errsize, "out of memory while loading catalog %s at line %zu",
                     ld.name, ld.line_number);
            goto fail;
        }
    }
    funlockfile(in);

    if (ferror(in)) {
        snprintf(err, errsize, "reading catalog %s failed after line %zu: %s", ld.name,
                 ld.line_number, strerror(errno));
        goto fail;
    }
    if (cat->stats.rejected > ld.invalid_logged)
        VT_WARN("CATALOG", "%s: %zu more invalid lines skipped (only the first %d are logged)",
                ld.name, cat->stats.rejected - ld.invalid_logged, INVALID_LINES_LOGGED);
    if (build_indexes(cat) != 0) {
        snprintf(err, errsize, "out of memory while indexing catalog %s", ld.name);
        goto fail;
    }

    free(line);
    log_summary(cat, ld.name, start_ns);
    return cat;

fail:
    free(line);
    vt_catalog_free(cat);
    return NULL;
}


struct vt_catalog *vt_catalog_load(const char *path, const struct vt_config *cfg, char *err,
                                   size_t errsize)
{
    if (path == NULL || path[0] == '\0') {
        uint64_t start_ns = vt_monotonic_ns();
        struct vt_catalog *cat = catalog_new();

        if (cat == NULL || build_indexes(cat) != 0) {
            snprintf(err, errsize, "out of memory while creating an empty catalog");
            vt_catalog_free(cat);
            return NULL;
        }
        log_summary(cat, "(no catalog file set)", start_ns);
        return cat;
    }

    FILE *in = fopen(path, "r");
    if (in == NULL) {
        snprintf(err, errsize, "cannot open catalog file %s: %s", path, strerror(errno));
        return NULL;
    }
    struct vt_catalog *cat = vt_catalog_load_stream(in, path, cfg, err, errsize);
    fclose(in);
    return cat;
}


void vt_catalog_free(struct vt_catalog *cat)
{
    if (cat == NULL)
        return;

    struct arena_block *block = cat->arena;
    while (block != NULL) {
        struct arena_block *next = block->next;
        free(block);
        block = next;
    }
    name_table_free(&cat->brands);
    name_table_free(&cat->categories);
    free(cat->products);
    free(cat->id_lengths);
    free(cat->gender_labeled);
    free(cat->id_slots);
    free(cat->popular);
    free(cat);
}


const struct vt_catalog_stats *vt_catalog_stats(const struct vt_catalog *cat)
{
    static const struct vt_catalog_stats no_stats;

    return cat != NULL ? &cat->stats : &no_stats;
}


size_t vt_catalog_size(const struct vt_catalog *cat)
{
    return cat != NULL ? cat->count : 0;
}


const struct vt_product *vt_catalog_get(const struct vt_catalog *cat, uint32_t index)
{
    if (cat == NULL || index >= cat->count)
        return NULL;
    return &cat->products[index];
}


uint32_t vt_catalog_find(const struct vt_catalog *cat, const char *id, size_t len)
{
    if (cat == NULL || id == NULL || len == 0 || len > VT_PRODUCT_ID_MAX)
        return VT_CATALOG_NONE;

    /* A removed product keeps its slot, so that apply_change can bring it back under its
     * old index. Lookups treat it as unknown, because an instance started after the
     * tombstone never loaded the product, and both instances must return the same. */
    uint32_t index = cat->id_slots[id_slot(cat, id, len, hash_id(id, len))].index;
    if (index == VT_CATALOG_NONE || cat->products[index].removed)
        return VT_CATALOG_NONE;
    return index;
}


const char *vt_catalog_brand_name(const struct vt_catalog *cat, uint32_t brand)
{
    if (cat == NULL || brand >= cat->brands.count)
        return NULL;
    return cat->brands.names[brand];
}


uint32_t vt_catalog_brand_find(const struct vt_catalog *cat, const char *name, size_t len)
{
    if (cat == NULL || name == NULL)
        return VT_CATALOG_NONE;
    return name_lookup(&cat->brands, name, len);
}


const char *vt_catalog_category_name(const struct vt_catalog *cat, uint32_t category)
{
    if (cat == NULL || category >= cat->categories.count)
        return NULL;
    return cat->categories.names[category];
}


uint32_t vt_catalog_category_find(const struct vt_catalog *cat, const char *name,
                                  size_t len)
{
    if (cat == NULL || name == NULL)
        return VT_CATALOG_NONE;
    return name_lookup(&cat->categories, name, len);
}


const uint32_t *vt_catalog_popular(const struct vt_catalog *cat, size_t *n)
{
    if (cat == NULL || cat->n_popular == 0) {
        *n = 0;
        return empty_list;
    }
    *n = cat->n_popular;
    return cat->popular;
}


static const uint32_t *member_list(const struct name_table *t, uint32_t index, size_t *n)
{
    if (index >= t->count || t->offsets == NULL) {
        *n = 0;
        return empty_list;
    }
    *n = t->offsets[index + 1] - t->offsets[index];
    return *n > 0 ? t->members + t->offsets[index] : empty_list;
}


const uint32_t *vt_catalog_by_brand(const struct vt_catalog *cat, uint32_t brand, size_t *n)
{
    if (cat == NULL) {
        *n = 0;
        return empty_list;
    }
    return member_list(&cat->brands, brand, n);
}


const uint32_t *vt_catalog_by_category(const struct vt_catalog *cat, uint32_t category,
                                       size_t *n)
{
    if (cat == NULL) {
        *n = 0;
        return empty_list;
    }
    return member_list(&cat->categories, category, n);
}


double vt_catalog_max_popularity(const struct vt_catalog *cat)
{
    return cat != NULL ? cat->max_popularity : 0;
}


/* ---- stock in place and changes from the catalog topic ---- */

void vt_catalog_set_stock(const struct vt_catalog *cat, uint32_t index, int64_t stock)
{
    if (cat == NULL || index >= cat->count)
        return;
    atomic_store_explicit(&cat->products[index].stock, stock, memory_order_relaxed);
}


static char *copy_string(const char *s, bool *oom)
{
    char *copy;

    if (s == NULL)
        return NULL;
    copy = strdup(s);
    if (copy == NULL)
        *oom = true;
    return copy;
}


/* True when a member name is "id" or one of the fields of enum vt_catalog_field. */
static bool is_catalog_member(const char *name)
{
    static const char *const members[] = {"id",     "name",  "brand", "categories",
                                          "gender", "price", "stock", "popularity"};

    for (size_t i = 0; i < sizeof members / sizeof members[0]; i++) {
        if (strcmp(name, members[i]) == 0)
            return true;
    }
    return false;
}


/*
 * Write the names of obj's members that are no catalog field into buf, quoted and
 * comma-separated for a log line. Each name is cut to UNKNOWN_NAME_SHOWN bytes, with bytes
 * outside printable ASCII written as '?'. When the next name does not fit, the list ends
 * with ", ...". Returns the number of such members, listed or not.
 */
static size_t list_unknown_members(const cJSON *obj, char *buf, size_t size)
{
    static const char more[] = ", ...";
    size_t count = 0, used = 0;
    bool full = false;

    buf[0] = '\0';
    for (const cJSON *item = obj->child; item != NULL; item = item->next) {
        char shown[UNKNOWN_NAME_SHOWN + 8];
        size_t n = 0;

        if (item->string == NULL || is_catalog_member(item->string))
            continue;
        count++;
        if (full)
            continue;

        if (count > 1) {
            shown[n++] = ',';
            shown[n++] = ' ';
        }
        shown[n++] = '"';
        for (size_t i = 0; item->string[i] != '\0' && i < UNKNOWN_NAME_SHOWN; i++) {
            unsigned char c = (unsigned char)item->string[i];
            shown[n++] = c >= 0x20 && c < 0x7F ? (char)c : '?';
        }
        shown[n++] = '"';

        /* Keep room for the ending ", ..." after every name. */
        if (used + n + sizeof more > size) {
            full = true;
            memcpy(buf + used, more, sizeof more);
            continue;
        }
        memcpy(buf + used, shown, n);
        used += n;
        buf[used] = '\0';
    }
    return count;
}


/* Fill the fields of a change from a parsed record value. */
static int read_change(const cJSON *obj, struct vt_catalog_change *out, char *reason,
                       size_t reason_size)
{
    struct line_fields f;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");
    char unknown[UNKNOWN_LIST_BYTES];
    bool oom = false;

    if (!cJSON_IsObject(obj))
        return reject(reason, reason_size, "the value is not a JSON object");
    if (id != NULL && !cJSON_IsNull(id)) {
        if (read_id(obj, f.id, sizeof f.id, &f.id_length, reason, reason_size) != 0)
            return -1;
        if (f.id_length != out->id_length || memcmp(f.id, out->id, f.id_length) != 0)
            return reject(reason, reason_size, "\"id\" in the value differs from the key");
    }
    if (read_product_fields(obj, &f, reason, reason_size) != 0)
        return -1;

    /* Unknown members next to known fields are reported and ignored. A value of unknown
     * members alone would change nothing, or add a product with defaults only, so it is
     * rejected: most likely a field name is misspelt. */
    size_t n_unknown = list_unknown_members(obj, unknown, sizeof unknown);
    if (n_unknown > 0 && f.fields == 0)
        return reject(reason, reason_size,
                      "no catalog field in the value, only the unknown member%s %s; expected "
                      "name, brand, categories, gender, price, stock or popularity",
                      n_unknown > 1 ? "s" : "", unknown);
    if (n_unknown > 0)
        out->unknown_members = copy_string(unknown, &oom);

    out->fields = f.fields;
    out->name = copy_string(f.name, &oom);
    out->brand = copy_string(f.brand, &oom);
    for (size_t i = 0; i < f.n_categories; i++) {
        out->categories[i] = copy_string(f.categories[i], &oom);
        out->n_categories = (uint8_t)(i + 1);
    }
    out->gender = copy_string(f.gender, &oom);
    out->price = f.price;
    out->stock = (int64_t)f.stock;
    out->popularity = f.popularity;
    if (oom)
        return reject(reason, reason_size, "out of memory while copying the record");
    return 0;
}


int vt_catalog_change_parse(const char *key, size_t key_len, const char *value,
                            size_t value_len, struct vt_catalog_change *out, char *reason,
                            size_t reason_size)
{
    memset(out, 0, sizeof *out);
    out->price = -1;
    out->stock = -1;

    if (key == NULL || key_len == 0 || key_len > VT_PRODUCT_ID_MAX)
        return reject(reason, reason_size,
                      "the key must be the product id, 1 to %d bytes long", VT_PRODUCT_ID_MAX);
    if (check_id_bytes(key, key_len, reason, reason_size) != 0)
        return -1;
    memcpy(out->id, key, key_len);
    out->id[key_len] = '\0';
    out->id_length = key_len;

    if (value == NULL) {
        out->remove = true;
        return 0;
    }
    if (value_len == 0)
        return reject(reason, reason_size,
                      "the value is empty; a removal is a record with a null value");
    if (value_len > LINE_MAX_BYTES)
        return reject(reason, reason_size, "the value is longer than the maximum of %d bytes",
                      LINE_MAX_BYTES);

    cJSON *obj = parse_json(value, value_len, reason, reason_size);
    if (obj == NULL)
        return -1;
    int rc = read_change(obj, out, reason, reason_size);
    cJSON_Delete(obj);
    if (rc != 0)
        vt_catalog_change_clear(out);
    return rc;
}


void vt_catalog_change_clear(struct vt_catalog_change *c)
{
    free(c->name);
    free(c->brand);
    for (size_t i = 0; i < c->n_categories; i++)
        free(c->categories[i]);
    free(c->gender);
    free(c->unknown_members);
    memset(c, 0, sizeof *c);
    c->price = -1;
    c->stock = -1;
}


/* Move *from into *to, freeing what *to held. */
static void move_string(char **to, char **from)
{
    free(*to);
    *to = *from;
    *from = NULL;
}


void vt_catalog_change_merge(struct vt_catalog_change *into, struct vt_catalog_change *later)
{
    /* A removal wipes what came before it, and a change after a removal (or one that
     * already carries a removal, `replace`) starts the product afresh. */
    if (later->remove || later->replace || into->remove) {
        bool replace = later->replace || (into->remove && !later->remove);

        vt_catalog_change_clear(into);
        *into = *later;
        into->replace = replace;
        memset(later, 0, sizeof *later);
        vt_catalog_change_clear(later);
        return;
    }

    if (later->fields & VT_FIELD_NAME)
        move_string(&into->name, &later->name);
    if (later->fields & VT_FIELD_BRAND)
        move_string(&into->brand, &later->brand);
    if (later->fields & VT_FIELD_CATEGORIES) {
        for (size_t i = 0; i < into->n_categories; i++)
            free(into->categories[i]);
        for (size_t i = 0; i < later->n_categories; i++) {
            into->categories[i] = later->categories[i];
            later->categories[i] = NULL;
        }
        into->n_categories = later->n_categories;
        later->n_categories = 0;
    }
    if (later->fields & VT_FIELD_GENDER)
        move_string(&into->gender, &later->gender);
    if (later->fields & VT_FIELD_PRICE)
        into->price = later->price;
    if (later->fields & VT_FIELD_STOCK)
        into->stock = later->stock;
    if (later->fields & VT_FIELD_POPULARITY)
        into->popularity = later->popularity;
    into->fields |= later->fields;
    vt_catalog_change_clear(later);
}


/* Copy a brand or category table with its names in index order, so that every name keeps
 * its index. The product lists are left for build_indexes. */
static int name_table_copy(struct vt_catalog *cat, struct name_table *to,
                           const struct name_table *from)
{
    memset(to, 0, sizeof *to);
    if (from->count > 0) {
        to->names = malloc(from->count * sizeof *to->names);
        to->lengths = malloc(from->count * sizeof *to->lengths);
        if (to->names == NULL || to->lengths == NULL)
            return -1;
        to->capacity = from->count;
        for (uint32_t i = 0; i < from->count; i++) {
            to->names[i] = arena_strndup(cat, from->names[i], from->lengths[i]);
            if (to->names[i] == NULL)
                return -1;
            to->lengths[i] = from->lengths[i];
            to->count = i + 1;
        }
    }
    if (from->slots != NULL) {
        to->slots = malloc((from->mask + 1) * sizeof *to->slots);
        if (to->slots == NULL)
            return -1;
        memcpy(to->slots, from->slots, (from->mask + 1) * sizeof *to->slots);
        to->mask = from->mask;
    }
    return 0;
}


/* A copy of old with its own strings and tables, without the popularity, brand and
 * category lists. Stock is copied as it is now: the caller is the only thread that
 * changes it. */
static struct vt_catalog *catalog_copy(const struct vt_catalog *old)
{
    struct vt_catalog *cat = calloc(1, sizeof *cat);
    size_t n = old->count;

    if (cat == NULL)
        return NULL;
    cat->stats = old->stats;
    if (n > 0) {
        cat->products = malloc(n * sizeof *cat->products);
        cat->id_lengths = malloc(n * sizeof *cat->id_lengths);
        cat->gender_labeled = malloc(n * sizeof *cat->gender_labeled);
        if (cat->products == NULL || cat->id_lengths == NULL || cat->gender_labeled == NULL)
            goto fail;
        memcpy(cat->products, old->products, n * sizeof *cat->products);
        memcpy(cat->id_lengths, old->id_lengths, n * sizeof *cat->id_lengths);
        memcpy(cat->gender_labeled, old->gender_labeled, n * sizeof *cat->gender_labeled);
    }
    cat->count = n;
    cat->capacity = n;

    cat->id_slots = malloc((old->id_mask + 1) * sizeof *cat->id_slots);
    if (cat->id_slots == NULL)
        goto fail;
    memcpy(cat->id_slots, old->id_slots, (old->id_mask + 1) * sizeof *cat->id_slots);
    cat->id_mask = old->id_mask;

    /* The copied products still point at old's strings until this loop replaces them. */
    for (size_t i = 0; i < n; i++) {
        struct vt_product *p = &cat->products[i];

        p->id = arena_strndup(cat, old->products[i].id, old->id_lengths[i]);
        if (p->id == NULL)
            goto fail;
        if (p->name[0] != '\0') {
            p->name = arena_strndup(cat, p->name, strlen(p->name));
            if (p->name == NULL)
                goto fail;
        } else {
            p->name = "";
        }
    }

    if (name_table_copy(cat, &cat->brands, &old->brands) != 0 ||
        name_table_copy(cat, &cat->categories, &old->categories) != 0)
        goto fail;
    return cat;

fail:
    vt_catalog_free(cat);
    return NULL;
}


/* A view of a change as line fields, for set_fields. */
static void change_fields(const struct vt_catalog_change *c, struct line_fields *f)
{
    memcpy(f->id, c->id, c->id_length + 1);
    f->id_length = c->id_length;
    f->fields = c->fields;
    f->name = c->name;
    f->brand = c->brand;
    for (size_t i = 0; i < c->n_categories; i++)
        f->categories[i] = c->categories[i];
    f->n_categories = c->n_categories;
    f->gender = c->gender;
    f->price = c->price;
    f->stock = (double)c->stock;
    f->popularity = c->popularity;
}


/* Apply one change to a catalog that no other thread sees yet. Returns 0, or -1 when memory
 * runs out. */
static int apply_change(struct vt_catalog *cat, const struct vt_config *cfg,
                        const struct vt_catalog_change *c, struct vt_catalog_apply_stats *stats)
{
    struct line_fields f;
    uint32_t hash = hash_id(c->id, c->id_length);
    size_t k = id_slot(cat, c->id, c->id_length, hash);
    uint32_t index = cat->id_slots[k].index;

    if (c->remove) {
        if (index == VT_CATALOG_NONE || cat->products[index].removed) {
            stats->ignored++;
            return 0;
        }
        cat->products[index].removed = true;
        atomic_store_explicit(&cat->products[index].stock, 0, memory_order_relaxed);
        stats->removed++;
        return 0;
    }

    change_fields(c, &f);
    if (index != VT_CATALOG_NONE) {
        struct vt_product *p = &cat->products[index];
        bool *labeled = &cat->gender_labeled[index];

        if (p->removed || c->replace) {
            struct vt_product fresh;

            if (set_fresh_fields(cat, cfg, &f, &fresh, labeled) != 0)
                return -1;
            fresh.id = p->id;
            *p = fresh;
        } else if (set_fields(cat, cfg, &f, p, labeled) != 0) {
            return -1;
        }
        stats->updated++;
        return 0;
    }

    if (cat->count >= PRODUCTS_MAX) {
        stats->rejected++;
        return 0;
    }
    if (reserve_product(cat) != 0)
        return -1;
    /* Reserving may have grown the id table, which moves the empty slot. */
    k = id_slot(cat, c->id, c->id_length, hash);

    struct vt_product p;
    bool labeled = false;
    if (set_fresh_fields(cat, cfg, &f, &p, &labeled) != 0)
        return -1;
    if (append_product(cat, &f, k, hash, &p, labeled) == VT_CATALOG_NONE)
        return -1;
    stats->added++;
    return 0;
}


struct vt_catalog *vt_catalog_apply(const struct vt_catalog *old,
                                    const struct vt_catalog_change *changes, size_t n,
                                    const struct vt_config *cfg,
                                    struct vt_catalog_apply_stats *stats, char *err,
                                    size_t errsize)
{
    struct vt_catalog_apply_stats unused;
    struct vt_catalog *cat;

    if (stats == NULL)
        stats = &unused;
    memset(stats, 0, sizeof *stats);

    cat = catalog_copy(old);
    if (cat == NULL)
        goto oom;
    for (size_t i = 0; i < n; i++) {
        if (apply_change(cat, cfg, &changes[i], stats) != 0)
            goto oom;
    }
    if (build_indexes(cat) != 0)
        goto oom;
    return cat;

oom:
    snprintf(err, errsize, "out of memory while applying %zu catalog changes", n);
    vt_catalog_free(cat);
    return NULL;
}
