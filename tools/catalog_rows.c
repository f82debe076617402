/*
 * vitrine tools: catalogue sources converted into catalog entries (see tools/catalog_rows.h).
 */
#include "catalog_rows.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "vitrine/util.h"

/* Upper bound of the REES46 string pool, so that a huge or endless input fails cleanly. */
#define POOL_MAX ((size_t)1 << 30)

/* Popularity weights of REES46 event types. */
#define WEIGHT_VIEW 1.0
#define WEIGHT_CART 3.0
#define WEIGHT_PURCHASE 5.0


/* ---- counters ------------------------------------------------------------------------ */

void vt_counts_add(struct vt_counts *counts, const char *name, uint64_t n)
{
    for (size_t i = 0; i < counts->n; i++) {
        if (strcmp(counts->names[i], name) == 0) {
            counts->values[i] += n;
            return;
        }
    }
    if (counts->n < VT_COUNTS_MAX - 1 ||
        (counts->n == VT_COUNTS_MAX - 1 && strcmp(name, "other") == 0)) {
        counts->names[counts->n] = name;
        counts->values[counts->n] = n;
        counts->n++;
        return;
    }
    vt_counts_add(counts, "other", n);
}


uint64_t vt_counts_total(const struct vt_counts *counts)
{
    uint64_t total = 0;

    for (size_t i = 0; i < counts->n; i++)
        total += counts->values[i];
    return total;
}


void vt_counts_format(const struct vt_counts *counts, char *buf, size_t bufsize)
{
    struct vt_buf text;

    vt_buf_init(&text, bufsize > 0 ? bufsize - 1 : 0);
    for (size_t i = 0; i < counts->n; i++)
        vt_buf_printf(&text, "%s%s %llu", i > 0 ? ", " : "", counts->names[i],
                      (unsigned long long)counts->values[i]);
    if (counts->n == 0)
        vt_strlcpy(buf, "none", bufsize);
    else if (text.data != NULL)
        vt_strlcpy(buf, text.data, bufsize);
    else if (bufsize > 0)
        buf[0] = '\0';
    vt_buf_free(&text);
}


/* ---- entries and JSON ---------------------------------------------------------------- */

void vt_catalog_entry_init(struct vt_catalog_entry *entry)
{
    memset(entry, 0, sizeof *entry);
    entry->gender = VT_GENDER_UNKNOWN;
    entry->price = -1;
    entry->stock = -1;
    entry->popularity = -1;
}


char *vt_catalog_entry_json(const struct vt_catalog_entry *entry)
{
    cJSON *obj = cJSON_CreateObject();
    char *text = NULL;
    bool ok = obj != NULL && cJSON_AddStringToObject(obj, "id", entry->id) != NULL;

    if (ok && entry->name[0] != '\0')
        ok = cJSON_AddStringToObject(obj, "name", entry->name) != NULL;
    if (ok && entry->brand[0] != '\0')
        ok = cJSON_AddStringToObject(obj, "brand", entry->brand) != NULL;
    if (ok && entry->n_categories > 0) {
        cJSON *list = cJSON_AddArrayToObject(obj, "categories");

        ok = list != NULL;
        for (uint8_t i = 0; ok && i < entry->n_categories; i++) {
            cJSON *item = cJSON_CreateString(entry->categories[i]);

            ok = item != NULL;
            if (ok)
                cJSON_AddItemToArray(list, item);
        }
    }
    if (ok && entry->gender != VT_GENDER_UNKNOWN)
        ok = cJSON_AddStringToObject(obj, "gender", vt_gender_name(entry->gender)) != NULL;
    if (ok && entry->price >= 0)
        ok = cJSON_AddNumberToObject(obj, "price", entry->price) != NULL;
    if (ok && entry->stock >= 0)
        ok = cJSON_AddNumberToObject(obj, "stock", (double)entry->stock) != NULL;
    if (ok && entry->popularity >= 0)
        ok = cJSON_AddNumberToObject(obj, "popularity", entry->popularity) != NULL;

    if (ok)
        text = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    return text;
}


int vt_catalog_entry_write(const struct vt_catalog_entry *entry, FILE *out)
{
    char *text = vt_catalog_entry_json(entry);
    int rc = 0;

    if (text == NULL)
        return -1;
    if (fputs(text, out) == EOF || fputc('\n', out) == EOF)
        rc = -1;
    free(text);
    return rc;
}


size_t vt_category_path(const char *code, char out[][VT_NAME_MAX + 1], size_t max)
{
    size_t n = 0;
    size_t len = strlen(code);
    size_t start = 0;

    /* A prefix ends at each '.' that follows a non-empty segment, and at the end. */
    for (size_t i = 0; i <= len && n < max; i++) {
        if (i < len && code[i] != '.')
            continue;
        if (i > start) {
            vt_utf8_clean(out[n], VT_NAME_MAX + 1, code, i);
            n++;
        }
        start = i + 1;
    }
    return n;
}


/* Length of the valid UTF-8 sequence at s[0..len), or 0 when it is invalid. */
static size_t utf8_sequence_length(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (len < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++) {
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    }
    return need;
}


size_t vt_utf8_clean(char *dst, size_t dstsize, const char *src, size_t len)
{
    static const char replacement[] = "\xEF\xBF\xBD";
    const unsigned char *s = (const unsigned char *)src;
    size_t in = 0, out = 0;

    if (dstsize == 0)
        return 0;
    while (in < len) {
        size_t k = utf8_sequence_length(s + in, len - in);
        const char *piece = k > 0 ? src + in : replacement;
        size_t piece_len = k > 0 ? k : 3;

        if (out + piece_len > dstsize - 1)
            break;
        memcpy(dst + out, piece, piece_len);
        out += piece_len;
        in += k > 0 ? k : 1;
    }
    dst[out] = '\0';
    return out;
}


/* ---- the conversion context ---------------------------------------------------------- */

void vt_convert_ctx_init(struct vt_convert_ctx *ctx, vt_catalog_sink sink, void *sink_arg)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->sink = sink;
    ctx->sink_arg = sink_arg;
}


void vt_convert_ctx_free(struct vt_convert_ctx *ctx)
{
    for (size_t i = 0; i < ctx->ids_cap; i++)
        free(ctx->ids[i]);
    free(ctx->ids);
    ctx->ids = NULL;
    ctx->ids_cap = 0;
    ctx->ids_len = 0;
}


/* Insert id into the open-addressing set. Returns 1 when added, 0 when already present,
 * -1 when out of memory. */
static int id_set_insert(struct vt_convert_ctx *ctx, const char *id)
{
    if ((ctx->ids_len + 1) * 2 > ctx->ids_cap) {
        size_t cap = ctx->ids_cap > 0 ? ctx->ids_cap * 2 : 1024;
        char **slots = calloc(cap, sizeof *slots);

        if (slots == NULL)
            return -1;
        for (size_t i = 0; i < ctx->ids_cap; i++) {
            char *old = ctx->ids[i];

            if (old == NULL)
                continue;
            size_t j = vt_hash64(old, strlen(old)) & (cap - 1);
            while (slots[j] != NULL)
                j = (j + 1) & (cap - 1);
            slots[j] = old;
        }
        free(ctx->ids);
        ctx->ids = slots;
        ctx->ids_cap = cap;
    }

    size_t j = vt_hash64(id, strlen(id)) & (ctx->ids_cap - 1);
    while (ctx->ids[j] != NULL) {
        if (strcmp(ctx->ids[j], id) == 0)
            return 0;
        j = (j + 1) & (ctx->ids_cap - 1);
    }
    ctx->ids[j] = strdup(id);
    if (ctx->ids[j] == NULL)
        return -1;
    ctx->ids_len++;
    return 1;
}


/* Check the id, then hand the entry to the sink. Returns 0 (also for a rejected entry), or
 * -1 when the sink fails or memory runs out. */
static int emit_entry(struct vt_convert_ctx *ctx, struct vt_convert_stats *stats,
                      const struct vt_catalog_entry *entry)
{
    int added;

    if (entry->id[0] == '\0') {
        vt_counts_add(&stats->rejected, "missing_id", 1);
        return 0;
    }
    if (!vt_id_valid(entry->id, strlen(entry->id))) {
        vt_counts_add(&stats->rejected, "invalid_id", 1);
        return 0;
    }
    added = id_set_insert(ctx, entry->id);
    if (added < 0) {
        snprintf(ctx->error, sizeof ctx->error, "out of memory for the product id set");
        return -1;
    }
    if (added == 0) {
        vt_counts_add(&stats->rejected, "duplicate_id", 1);
        return 0;
    }
    if (ctx->sink(entry, ctx->sink_arg) != 0) {
        snprintf(ctx->error, sizeof ctx->error, "writing product %s failed", entry->id);
        return -1;
    }
    stats->written++;
    return 0;
}


/* ---- reading rows -------------------------------------------------------------------- */

/* The value of column col in the current record with surrounding spaces removed, or "" when
 * the column is absent; *len receives its length. */
static const char *column_value(const struct vt_csv *reader, int col, size_t *len)
{
    size_t n = 0;
    const char *s = col >= 0 ? vt_csv_field(reader, (size_t)col, &n) : NULL;

    if (s == NULL) {
        *len = 0;
        return "";
    }
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    *len = n;
    return s;
}


static void copy_column(char *dst, size_t dstsize, const struct vt_csv *reader, int col)
{
    size_t len;
    const char *s = column_value(reader, col, &len);

    vt_utf8_clean(dst, dstsize, s, len);
}


/* Parse column col as a number into *out. Returns 1 when parsed, 0 when empty, -1 when
 * invalid. */
static int column_double(const struct vt_csv *reader, int col, double *out)
{
    char text[64];
    size_t len;
    const char *s = column_value(reader, col, &len);

    if (len == 0)
        return 0;
    if (len >= sizeof text)
        return -1;
    memcpy(text, s, len);
    text[len] = '\0';
    return vt_parse_double(text, 0, 1e12, out) == 0 ? 1 : -1;
}


static int column_int(const struct vt_csv *reader, int col, int64_t *out)
{
    char text[32];
    size_t len;
    const char *s = column_value(reader, col, &len);

    if (len == 0)
        return 0;
    if (len >= sizeof text)
        return -1;
    memcpy(text, s, len);
    text[len] = '\0';
    return vt_parse_int64(text, 0, INT64_MAX, out) == 0 ? 1 : -1;
}


/* Lowercase ASCII letters and collapse runs of spaces into one. */
static void normalise_label(char *s)
{
    size_t out = 0;
    bool space = false;

    for (size_t i = 0; s[i] != '\0'; i++) {
        char c = s[i];

        if (c == ' ' || c == '\t') {
            space = out > 0;
            continue;
        }
        if (space)
            s[out++] = ' ';
        space = false;
        s[out++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    s[out] = '\0';
}


/* Set categories to "perfume" and, when label is not empty, "perfume.<label normalised>". */
static void set_perfume_categories(struct vt_catalog_entry *entry, const char *label)
{
    char kind[VT_NAME_MAX + 1];
    char path[VT_NAME_MAX + 16];
    int n;

    vt_strlcpy(entry->categories[0], "perfume", sizeof entry->categories[0]);
    entry->n_categories = 1;
    vt_strlcpy(kind, label, sizeof kind);
    normalise_label(kind);
    if (kind[0] == '\0')
        return;

    /* A path over VT_NAME_MAX bytes is cut at a character boundary. */
    n = snprintf(path, sizeof path, "perfume.%s", kind);
    vt_copy_utf8(entry->categories[1], sizeof entry->categories[1], path,
                 n > 0 ? strlen(path) : 0);
    entry->n_categories = 2;
}


/* Requirement that read_header checks for one column of the header. */
enum column_need {
    COLUMN_OPTIONAL,
    COLUMN_REQUIRED,
    COLUMN_ANY_OF, /* at least one of the columns marked so must exist */
};


/* Append 'column' to the list in buf (NUL-terminated, bufsize bytes), after ", " unless
 * the list is empty. A name that does not fit is cut. */
static void append_column_name(char *buf, size_t bufsize, const char *column)
{
    size_t used = strlen(buf);

    if (used + 1 < bufsize)
        snprintf(buf + used, bufsize - used, "%s'%s'", used > 0 ? ", " : "", column);
}


/*
 * Read the header and look up the columns in names (NULL-terminated). Every column marked
 * COLUMN_REQUIRED must exist, and at least one of those marked COLUMN_ANY_OF. Returns 0,
 * or -1 with ctx->error naming the file and all missing columns, so that a file passed to
 * the wrong option fails before any product is written.
 */
static int read_header(struct vt_csv *reader, const char *name, struct vt_convert_ctx *ctx,
                       const char *const *names, const enum column_need *needs, int *cols)
{
    enum vt_csv_status status = vt_csv_read_header(reader);
    char missing[160] = "";
    char any_of[160] = "";
    bool any_of_found = false;
    bool any_of_missing;

    ctx->input_invalid = status != VT_CSV_IO_ERROR;

    if (status == VT_CSV_END) {
        snprintf(ctx->error, sizeof ctx->error, "%s: the file is empty, expected a header row",
                 name);
        return -1;
    }
    if (status != VT_CSV_RECORD) {
        snprintf(ctx->error, sizeof ctx->error, "%s: cannot read the header: %s", name,
                 vt_csv_error(reader));
        return -1;
    }

    for (size_t i = 0; names[i] != NULL; i++) {
        cols[i] = vt_csv_column(reader, names[i]);
        if (needs[i] == COLUMN_REQUIRED && cols[i] < 0)
            append_column_name(missing, sizeof missing, names[i]);
        if (needs[i] == COLUMN_ANY_OF) {
            append_column_name(any_of, sizeof any_of, names[i]);
            any_of_found = any_of_found || cols[i] >= 0;
        }
    }
    any_of_missing = any_of[0] != '\0' && !any_of_found;

    if (missing[0] != '\0' || any_of_missing) {
        snprintf(ctx->error, sizeof ctx->error,
                 "%s: missing in the header: %s%s%s%s; is this the right file for this option?",
                 name, missing, missing[0] != '\0' && any_of_missing ? " and " : "",
                 any_of_missing ? "one of " : "", any_of_missing ? any_of : "");
        return -1;
    }
    ctx->input_invalid = false;
    return 0;
}


/* Read the next data row. Returns 1 for a row, 0 at the end, -1 on a read error (ctx->error
 * set). Rejected records are counted and skipped. */
static int next_row(struct vt_csv *reader, const char *name, struct vt_convert_ctx *ctx,
                    struct vt_convert_stats *stats, bool events)
{
    for (;;) {
        enum vt_csv_status status = vt_csv_next(reader);

        if (status == VT_CSV_RECORD) {
            if (events)
                stats->event_rows++;
            else
                stats->rows++;
            return 1;
        }
        if (status == VT_CSV_END)
            return 0;
        if (status == VT_CSV_IO_ERROR) {
            snprintf(ctx->error, sizeof ctx->error, "%s: %s", name, vt_csv_error(reader));
            return -1;
        }
        if (events) {
            stats->event_rows++;
            vt_counts_add(&stats->event_skipped, "bad_record", 1);
        } else {
            stats->rows++;
            vt_counts_add(&stats->rejected, "bad_record", 1);
        }
    }
}


/* Write prefix + raw into id. Returns 0, or -1 when the result would not fit. */
static int make_prefixed_id(char *id, size_t idsize, const char *prefix, const char *raw)
{
    size_t plen = strlen(prefix), rlen = strlen(raw);

    if (plen + rlen + 1 > idsize)
        return -1;
    memcpy(id, prefix, plen);
    memcpy(id + plen, raw, rlen + 1);
    return 0;
}


/* ---- single-file sources ------------------------------------------------------------- */

int vt_convert_noon(struct vt_csv *reader, const char *name, struct vt_convert_ctx *ctx,
                    struct vt_convert_stats *stats)
{
    enum { COL_ID, COL_BRAND, COL_NAME, COL_PRICE, COL_CONCENTRATION, COL_DEPARTMENT };
    static const char *const names[] = {"perfume_id", "brand", "name", "new_price",
                                        "concentration", "department", NULL};
    static const enum column_need needs[] = {COLUMN_REQUIRED, COLUMN_OPTIONAL, COLUMN_REQUIRED,
                                              COLUMN_OPTIONAL, COLUMN_OPTIONAL, COLUMN_OPTIONAL};
    int cols[6];
    int more;

    if (read_header(reader, name, ctx, names, needs, cols) != 0)
        return -1;

    while ((more = next_row(reader, name, ctx, stats, false)) == 1) {
        struct vt_catalog_entry entry;
        char raw_id[VT_PRODUCT_ID_MAX + 1];
        char label[VT_NAME_MAX + 1];
        size_t len;
        const char *department;

        vt_catalog_entry_init(&entry);
        copy_column(raw_id, sizeof raw_id, reader, cols[COL_ID]);
        if (raw_id[0] == '\0') {
            vt_counts_add(&stats->rejected, "missing_id", 1);
            continue;
        }
        if (make_prefixed_id(entry.id, sizeof entry.id, "noon-", raw_id) != 0) {
            vt_counts_add(&stats->rejected, "invalid_id", 1);
            continue;
        }
        copy_column(entry.name, sizeof entry.name, reader, cols[COL_NAME]);
        copy_column(entry.brand, sizeof entry.brand, reader, cols[COL_BRAND]);

        department = column_value(reader, cols[COL_DEPARTMENT], &len);
        entry.gender = vt_gender_parse(department, len);
        if (len > 0 && entry.gender == VT_GENDER_UNKNOWN)
            vt_counts_add(&stats->dropped, "unknown_department", 1);

        if (column_double(reader, cols[COL_PRICE], &entry.price) < 0) {
            entry.price = -1;
            vt_counts_add(&stats->dropped, "invalid_price", 1);
        }
        copy_column(label, sizeof label, reader, cols[COL_CONCENTRATION]);
        set_perfume_categories(&entry, label);

        if (emit_entry(ctx, stats, &entry) != 0)
            return -1;
    }
    return more < 0 ? -1 : 0;
}


bool vt_brand_is_placeholder(const char *brand)
{
    static const char *const placeholders[] = {
        "",
        "as show",
        "as shown",
        "as showed",
        "as picture",
        "as pictured",
        "as picture show",
        "as picture shown",
        "as picture showed",
        "unbranded",
        "branded",
        "unbrand",
        "no brand",
        "multiple brands",
        "n/a",
        "na",
        "none",
        "does not apply",
        "generic",
        NULL,
    };
    char label[VT_NAME_MAX + 1];

    vt_strlcpy(label, brand, sizeof label);
    normalise_label(label);
    for (size_t i = 0; placeholders[i] != NULL; i++) {
        if (strcmp(label, placeholders[i]) == 0)
            return true;
    }
    return false;
}


/* True when text contains word, ignoring ASCII case. */
static bool contains_word(const char *text, const char *word)
{
    size_t n = strlen(word);

    for (const char *p = text; *p != '\0'; p++) {
        if (vt_strncaseeq(p, word, n))
            return true;
    }
    return false;
}


int vt_convert_ebay(struct vt_csv *reader, const char *name, const char *id_prefix,
                    enum vt_gender file_gender, struct vt_convert_ctx *ctx,
                    struct vt_convert_stats *stats)
{
    enum { COL_BRAND, COL_TITLE, COL_TYPE, COL_PRICE, COL_AVAILABLE, COL_SOLD };
    static const char *const names[] = {"brand", "title", "type", "price", "available", "sold",
                                        NULL};
    static const enum column_need needs[] = {COLUMN_REQUIRED, COLUMN_REQUIRED, COLUMN_OPTIONAL,
                                              COLUMN_OPTIONAL, COLUMN_OPTIONAL, COLUMN_OPTIONAL};
    int cols[6];
    uint64_t row_number = 0;
    int more;

    if (read_header(reader, name, ctx, names, needs, cols) != 0)
        return -1;

    while ((more = next_row(reader, name, ctx, stats, false)) == 1) {
        struct vt_catalog_entry entry;
        char label[VT_NAME_MAX + 1];
        int64_t count;
        double sold;

        /* The files have no id column, so the data row number (from 1) is the id. */
        row_number++;
        vt_catalog_entry_init(&entry);
        snprintf(entry.id, sizeof entry.id, "%s%llu", id_prefix,
                 (unsigned long long)row_number);
        copy_column(entry.name, sizeof entry.name, reader, cols[COL_TITLE]);
        copy_column(entry.brand, sizeof entry.brand, reader, cols[COL_BRAND]);
        if (vt_brand_is_placeholder(entry.brand)) {
            if (entry.brand[0] != '\0')
                vt_counts_add(&stats->dropped, "placeholder_brand", 1);
            entry.brand[0] = '\0';
        }

        entry.gender = contains_word(entry.name, "unisex") ? VT_GENDER_UNISEX : file_gender;

        if (column_double(reader, cols[COL_PRICE], &entry.price) < 0) {
            entry.price = -1;
            vt_counts_add(&stats->dropped, "invalid_price", 1);
        }
        int rc = column_int(reader, cols[COL_AVAILABLE], &count);
        if (rc > 0)
            entry.stock = count;
        else if (rc < 0)
            vt_counts_add(&stats->dropped, "invalid_available", 1);
        rc = column_double(reader, cols[COL_SOLD], &sold);
        if (rc > 0)
            entry.popularity = sold;
        else if (rc < 0)
            vt_counts_add(&stats->dropped, "invalid_sold", 1);

        copy_column(label, sizeof label, reader, cols[COL_TYPE]);
        set_perfume_categories(&entry, label);

        if (emit_entry(ctx, stats, &entry) != 0)
            return -1;
    }
    return more < 0 ? -1 : 0;
}


int vt_convert_fragdb(struct vt_csv *reader, const char *name, struct vt_convert_ctx *ctx,
                      struct vt_convert_stats *stats)
{
    enum { COL_ID, COL_BRAND, COL_NAME, COL_GENDER, COL_RATING };
    static const char *const names[] = {"pid", "brand", "name", "gender", "rating", NULL};
    static const enum column_need needs[] = {COLUMN_REQUIRED, COLUMN_REQUIRED, COLUMN_REQUIRED,
                                              COLUMN_OPTIONAL, COLUMN_OPTIONAL};
    int cols[5];
    int more;

    if (read_header(reader, name, ctx, names, needs, cols) != 0)
        return -1;

    while ((more = next_row(reader, name, ctx, stats, false)) == 1) {
        struct vt_catalog_entry entry;
        char raw_id[VT_PRODUCT_ID_MAX + 1];
        size_t len;
        const char *value;

        vt_catalog_entry_init(&entry);
        copy_column(raw_id, sizeof raw_id, reader, cols[COL_ID]);
        if (raw_id[0] == '\0') {
            vt_counts_add(&stats->rejected, "missing_id", 1);
            continue;
        }
        if (make_prefixed_id(entry.id, sizeof entry.id, "fragdb-", raw_id) != 0) {
            vt_counts_add(&stats->rejected, "invalid_id", 1);
            continue;
        }
        copy_column(entry.name, sizeof entry.name, reader, cols[COL_NAME]);

        /* brand is "Name;brandId". */
        value = column_value(reader, cols[COL_BRAND], &len);
        const char *semicolon = memchr(value, ';', len);
        vt_utf8_clean(entry.brand, sizeof entry.brand, value,
                      semicolon != NULL ? (size_t)(semicolon - value) : len);

        value = column_value(reader, cols[COL_GENDER], &len);
        entry.gender = vt_gender_parse(value, len);
        if (len > 0 && entry.gender == VT_GENDER_UNKNOWN)
            vt_counts_add(&stats->dropped, "unknown_gender", 1);

        /* rating is "value;count"; the number of ratings serves as popularity. */
        value = column_value(reader, cols[COL_RATING], &len);
        semicolon = memchr(value, ';', len);
        if (semicolon != NULL) {
            char count_text[32];
            size_t count_len = len - (size_t)(semicolon + 1 - value);
            int64_t count;

            if (count_len < sizeof count_text) {
                memcpy(count_text, semicolon + 1, count_len);
                count_text[count_len] = '\0';
                if (vt_parse_int64(count_text, 0, INT64_MAX, &count) == 0)
                    entry.popularity = (double)count;
            }
            if (entry.popularity < 0)
                vt_counts_add(&stats->dropped, "invalid_rating", 1);
        }

        set_perfume_categories(&entry, "");

        if (emit_entry(ctx, stats, &entry) != 0)
            return -1;
    }
    return more < 0 ? -1 : 0;
}


/* ---- REES46 -------------------------------------------------------------------------- */

/* Strings of the REES46 rows, stored once; offset 0 is the empty string. */
struct string_pool {
    char *data;
    size_t len;
    size_t cap;
};

struct item_row {
    uint32_t id;
    uint32_t category_id;
    uint32_t category_code;
    uint32_t brand;
    uint32_t row; /* data row number in the order read, from 0 */
};

struct rees46_product {
    uint32_t id;
    uint32_t category_id;
    uint32_t category_code;
    uint32_t brand;
    uint32_t first_row;
    double price;
    int64_t price_time_ms;
    double popularity;
};

struct vt_rees46 {
    struct string_pool pool;
    struct item_row *rows;
    size_t n_rows;
    size_t rows_cap;
    struct rees46_product *products; /* sorted by id after merging */
    size_t n_products;
    bool merged;
    int64_t events_before_ms; /* events at or after this time are skipped */
};

/* A value with the row that carried it, for the vote among a product's rows. */
struct vote {
    uint32_t value;
    uint32_t row;
};


/* Add s[0..len) to the pool. Returns its offset, 0 for an empty string, or UINT32_MAX when
 * the pool would exceed POOL_MAX or memory runs out. */
static uint32_t pool_add(struct string_pool *pool, const char *s, size_t len)
{
    size_t need;

    if (len == 0)
        return 0;
    if (pool->len == 0) {
        pool->data = malloc(65536);
        if (pool->data == NULL)
            return UINT32_MAX;
        pool->cap = 65536;
        pool->data[0] = '\0';
        pool->len = 1;
    }
    need = pool->len + len + 1;
    if (need > POOL_MAX)
        return UINT32_MAX;
    if (need > pool->cap) {
        size_t cap = pool->cap * 2;
        char *p;

        while (cap < need)
            cap *= 2;
        p = realloc(pool->data, cap);
        if (p == NULL)
            return UINT32_MAX;
        pool->data = p;
        pool->cap = cap;
    }
    uint32_t offset = (uint32_t)pool->len;
    memcpy(pool->data + pool->len, s, len);
    pool->data[pool->len + len] = '\0';
    pool->len = need;
    return offset;
}


static const char *pool_get(const struct string_pool *pool, uint32_t offset)
{
    return offset == 0 || pool->data == NULL ? "" : pool->data + offset;
}


struct vt_rees46 *vt_rees46_new(void)
{
    struct vt_rees46 *catalog = calloc(1, sizeof *catalog);

    if (catalog != NULL)
        catalog->events_before_ms = INT64_MAX;
    return catalog;
}


void vt_rees46_set_events_before(struct vt_rees46 *catalog, int64_t before_ms)
{
    catalog->events_before_ms = before_ms;
}


void vt_rees46_free(struct vt_rees46 *catalog)
{
    if (catalog == NULL)
        return;
    free(catalog->pool.data);
    free(catalog->rows);
    free(catalog->products);
    free(catalog);
}


/* Add the cleaned value of column col to the pool; UINT32_MAX on failure. */
static uint32_t pool_add_column(struct string_pool *pool, const struct vt_csv *reader, int col)
{
    char value[VT_NAME_MAX + 1];
    size_t len;
    const char *s = column_value(reader, col, &len);

    len = vt_utf8_clean(value, sizeof value, s, len);
    return pool_add(pool, value, len);
}


int vt_rees46_add_items(struct vt_rees46 *catalog, struct vt_csv *reader, const char *name,
                        struct vt_convert_ctx *ctx, struct vt_convert_stats *stats)
{
    enum { COL_ID, COL_CATEGORY_ID, COL_CATEGORY_CODE, COL_BRAND };
    static const char *const names[] = {"product_id", "category_id", "category_code", "brand",
                                        NULL};
    /* An events file passed by mistake has product_id but none of the other three columns. */
    static const enum column_need needs[] = {COLUMN_REQUIRED, COLUMN_ANY_OF, COLUMN_ANY_OF,
                                              COLUMN_ANY_OF};
    int cols[4];
    int more;

    if (catalog->merged) {
        snprintf(ctx->error, sizeof ctx->error,
                 "%s: REES46 items must be added before the events", name);
        return -1;
    }
    if (read_header(reader, name, ctx, names, needs, cols) != 0)
        return -1;

    while ((more = next_row(reader, name, ctx, stats, false)) == 1) {
        struct item_row row;
        char id[VT_PRODUCT_ID_MAX + 1];

        copy_column(id, sizeof id, reader, cols[COL_ID]);
        if (id[0] == '\0') {
            vt_counts_add(&stats->rejected, "missing_id", 1);
            continue;
        }
        if (!vt_id_valid(id, strlen(id))) {
            vt_counts_add(&stats->rejected, "invalid_id", 1);
            continue;
        }
        row.id = pool_add(&catalog->pool, id, strlen(id));
        row.category_id = pool_add_column(&catalog->pool, reader, cols[COL_CATEGORY_ID]);
        row.category_code = pool_add_column(&catalog->pool, reader, cols[COL_CATEGORY_CODE]);
        row.brand = pool_add_column(&catalog->pool, reader, cols[COL_BRAND]);
        row.row = (uint32_t)catalog->n_rows;
        if (row.id == UINT32_MAX || row.category_id == UINT32_MAX ||
            row.category_code == UINT32_MAX || row.brand == UINT32_MAX ||
            catalog->n_rows >= UINT32_MAX - 1) {
            snprintf(ctx->error, sizeof ctx->error,
                     "%s: line %llu: too much item data (limit %zu MiB of text)", name,
                     (unsigned long long)vt_csv_line(reader), POOL_MAX >> 20);
            return -1;
        }

        if (catalog->n_rows == catalog->rows_cap) {
            size_t cap = catalog->rows_cap > 0 ? catalog->rows_cap * 2 : 4096;
            struct item_row *p = realloc(catalog->rows, cap * sizeof *p);

            if (p == NULL) {
                snprintf(ctx->error, sizeof ctx->error, "%s: out of memory", name);
                return -1;
            }
            catalog->rows = p;
            catalog->rows_cap = cap;
        }
        catalog->rows[catalog->n_rows++] = row;
    }
    return more < 0 ? -1 : 0;
}


/* qsort has no context argument, so the comparators read the pool through this pointer. It
 * is set only for the duration of one sort. */
static const struct string_pool *sort_pool;


static int compare_rows_by_id(const void *a, const void *b)
{
    const struct item_row *x = a, *y = b;
    int c = strcmp(pool_get(sort_pool, x->id), pool_get(sort_pool, y->id));

    if (c != 0)
        return c;
    return x->row < y->row ? -1 : x->row > y->row;
}


static int compare_votes(const void *a, const void *b)
{
    const struct vote *x = a, *y = b;
    int c = strcmp(pool_get(sort_pool, x->value), pool_get(sort_pool, y->value));

    if (c != 0)
        return c;
    return x->row < y->row ? -1 : x->row > y->row;
}


/* The most frequent non-empty value among votes[0..n), ties going to the value whose first
 * row came first; 0 (empty) when there is none. Sorts votes. */
static uint32_t elect_value(const struct string_pool *pool, struct vote *votes, size_t n)
{
    uint32_t best = 0;
    size_t best_count = 0;
    uint32_t best_row = UINT32_MAX;
    size_t i = 0;

    sort_pool = pool;
    qsort(votes, n, sizeof *votes, compare_votes);
    while (i < n) {
        size_t j = i + 1;

        while (j < n && strcmp(pool_get(pool, votes[j].value), pool_get(pool, votes[i].value)) == 0)
            j++;
        /* votes[i] has the smallest row of this value, because ties sort by row. */
        if (j - i > best_count || (j - i == best_count && votes[i].row < best_row)) {
            best = votes[i].value;
            best_count = j - i;
            best_row = votes[i].row;
        }
        i = j;
    }
    return best;
}


/* Collect the non-empty values of one field of rows[0..n) into votes and elect one. */
static uint32_t elect_field(const struct string_pool *pool, const struct item_row *rows,
                            size_t n, size_t field_offset, struct vote *votes)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        uint32_t value;

        memcpy(&value, (const char *)&rows[i] + field_offset, sizeof value);
        if (value != 0) {
            votes[k].value = value;
            votes[k].row = rows[i].row;
            k++;
        }
    }
    return elect_value(pool, votes, k);
}


/* Merge the item rows into one product per id. */
static int rees46_merge(struct vt_rees46 *catalog, struct vt_convert_ctx *ctx,
                        struct vt_convert_stats *stats)
{
    struct vote *votes;
    size_t i = 0;

    if (catalog->merged)
        return 0;
    catalog->merged = true;
    if (catalog->n_rows == 0)
        return 0;

    sort_pool = &catalog->pool;
    qsort(catalog->rows, catalog->n_rows, sizeof *catalog->rows, compare_rows_by_id);
    catalog->products = calloc(catalog->n_rows, sizeof *catalog->products);
    votes = calloc(catalog->n_rows, sizeof *votes);
    if (catalog->products == NULL || votes == NULL) {
        free(votes);
        snprintf(ctx->error, sizeof ctx->error, "out of memory merging %zu REES46 item rows",
                 catalog->n_rows);
        return -1;
    }

    while (i < catalog->n_rows) {
        const struct item_row *run = &catalog->rows[i];
        const char *id = pool_get(&catalog->pool, run->id);
        size_t n = 1;
        struct rees46_product *p = &catalog->products[catalog->n_products++];

        while (i + n < catalog->n_rows &&
               strcmp(pool_get(&catalog->pool, catalog->rows[i + n].id), id) == 0)
            n++;

        p->id = run->id;
        p->first_row = run->row;
        p->brand = elect_field(&catalog->pool, run, n, offsetof(struct item_row, brand), votes);
        p->category_id =
            elect_field(&catalog->pool, run, n, offsetof(struct item_row, category_id), votes);
        p->category_code =
            elect_field(&catalog->pool, run, n, offsetof(struct item_row, category_code), votes);
        p->price = -1;
        p->price_time_ms = INT64_MIN;
        p->popularity = 0;
        stats->merged += n - 1;
        i += n;
    }
    free(votes);
    return 0;
}


static int compare_product_id(const void *key, const void *element)
{
    const struct rees46_product *p = element;

    return strcmp(key, pool_get(sort_pool, p->id));
}


int vt_rees46_add_events(struct vt_rees46 *catalog, struct vt_csv *reader, const char *name,
                         struct vt_convert_ctx *ctx, struct vt_convert_stats *stats)
{
    enum { COL_TIME, COL_TYPE, COL_ID, COL_PRICE };
    static const char *const names[] = {"event_time", "event_type", "product_id", "price",
                                        NULL};
    static const enum column_need needs[] = {COLUMN_REQUIRED, COLUMN_REQUIRED, COLUMN_REQUIRED,
                                              COLUMN_REQUIRED};
    int cols[4];
    int more;

    if (rees46_merge(catalog, ctx, stats) != 0)
        return -1;
    if (read_header(reader, name, ctx, names, needs, cols) != 0)
        return -1;

    while ((more = next_row(reader, name, ctx, stats, true)) == 1) {
        char id[VT_PRODUCT_ID_MAX + 1];
        size_t len;
        const char *value;
        int64_t time_ms;
        double weight, price;
        struct rees46_product *p;

        value = column_value(reader, cols[COL_TIME], &len);
        if (vt_time_parse_iso8601(value, len, &time_ms) != 0) {
            vt_counts_add(&stats->event_skipped, "invalid_time", 1);
            continue;
        }
        if (time_ms >= catalog->events_before_ms) {
            vt_counts_add(&stats->event_skipped, "after_cut", 1);
            continue;
        }
        value = column_value(reader, cols[COL_TYPE], &len);
        if (len == 4 && memcmp(value, "view", 4) == 0) {
            weight = WEIGHT_VIEW;
        } else if (len == 4 && memcmp(value, "cart", 4) == 0) {
            weight = WEIGHT_CART;
        } else if (len == 8 && memcmp(value, "purchase", 8) == 0) {
            weight = WEIGHT_PURCHASE;
        } else if (len == 16 && memcmp(value, "remove_from_cart", 16) == 0) {
            weight = 0;
        } else {
            vt_counts_add(&stats->event_skipped, "unknown_event_type", 1);
            continue;
        }

        copy_column(id, sizeof id, reader, cols[COL_ID]);
        sort_pool = &catalog->pool;
        p = catalog->n_products > 0 ? bsearch(id, catalog->products, catalog->n_products,
                                              sizeof *catalog->products, compare_product_id)
                                    : NULL;
        if (p == NULL) {
            vt_counts_add(&stats->event_skipped, "unknown_product", 1);
            continue;
        }

        p->popularity += weight;
        int rc = column_double(reader, cols[COL_PRICE], &price);
        if (rc < 0)
            vt_counts_add(&stats->dropped, "invalid_event_price", 1);
        /* Rows are read in file order, so of two events at the same time the later row wins. */
        if (rc > 0 && time_ms >= p->price_time_ms) {
            p->price = price;
            p->price_time_ms = time_ms;
        }
        stats->event_rows_used++;
    }
    return more < 0 ? -1 : 0;
}


static int compare_first_row(const void *a, const void *b)
{
    const struct rees46_product *x = *(const struct rees46_product *const *)a;
    const struct rees46_product *y = *(const struct rees46_product *const *)b;

    return x->first_row < y->first_row ? -1 : x->first_row > y->first_row;
}


int vt_rees46_emit(struct vt_rees46 *catalog, struct vt_convert_ctx *ctx,
                   struct vt_convert_stats *stats)
{
    const struct rees46_product **order;
    int rc = 0;

    if (rees46_merge(catalog, ctx, stats) != 0)
        return -1;
    if (catalog->n_products == 0)
        return 0;

    order = calloc(catalog->n_products, sizeof *order);
    if (order == NULL) {
        snprintf(ctx->error, sizeof ctx->error, "out of memory ordering REES46 products");
        return -1;
    }
    for (size_t i = 0; i < catalog->n_products; i++)
        order[i] = &catalog->products[i];
    qsort(order, catalog->n_products, sizeof *order, compare_first_row);

    for (size_t i = 0; i < catalog->n_products && rc == 0; i++) {
        const struct rees46_product *p = order[i];
        const char *code = pool_get(&catalog->pool, p->category_code);
        const char *category_id = pool_get(&catalog->pool, p->category_id);
        struct vt_catalog_entry entry;

        vt_catalog_entry_init(&entry);
        vt_strlcpy(entry.id, pool_get(&catalog->pool, p->id), sizeof entry.id);
        vt_strlcpy(entry.brand, pool_get(&catalog->pool, p->brand), sizeof entry.brand);
        if (code[0] != '\0') {
            entry.n_categories =
                (uint8_t)vt_category_path(code, entry.categories, VT_ITEM_CATEGORIES_MAX);
        } else if (category_id[0] != '\0') {
            snprintf(entry.categories[0], sizeof entry.categories[0], "cat-%s", category_id);
            entry.n_categories = 1;
        }
        entry.price = p->price;
        if (p->popularity > 0)
            entry.popularity = p->popularity;
        rc = emit_entry(ctx, stats, &entry);
    }
    free(order);
    return rc;
}


/* ---- Diginetica ---------------------------------------------------------------------- */

/* Longest accepted timeframe: about 31 years in milliseconds, so that adding it to a date
 * cannot overflow. */
#define DIGINETICA_TIMEFRAME_MAX 1000000000000LL

struct diginetica_item {
    char *id;
    double views; /* view rows before the popularity cut */
};

/* Distinct item ids in the order of their first row, with a hash index over them. */
struct diginetica_items {
    struct diginetica_item *items;
    size_t n;
    size_t cap;
    uint32_t *slots; /* item index + 1, 0 when empty */
    size_t n_slots;
};


int vt_diginetica_time(const char *date, size_t date_len, const char *timeframe,
                       size_t timeframe_len, int64_t *ms)
{
    char stamp[32];
    char number[24];
    int64_t midnight, offset;

    if (date_len != 10 || timeframe_len == 0 || timeframe_len >= sizeof number)
        return -1;
    snprintf(stamp, sizeof stamp, "%.10sT00:00:00Z", date);
    if (vt_time_parse_iso8601(stamp, strlen(stamp), &midnight) != 0)
        return -1;
    memcpy(number, timeframe, timeframe_len);
    number[timeframe_len] = '\0';
    if (vt_parse_int64(number, 0, DIGINETICA_TIMEFRAME_MAX, &offset) != 0)
        return -1;
    *ms = midnight + offset;
    return 0;
}


static void diginetica_items_free(struct diginetica_items *table)
{
    for (size_t i = 0; i < table->n; i++)
        free(table->items[i].id);
    free(table->items);
    free(table->slots);
}


/* Rebuild the hash index with twice the slots. Returns 0, or -1 when out of memory. */
static int diginetica_items_grow_index(struct diginetica_items *table)
{
    size_t n_slots = table->n_slots > 0 ? table->n_slots * 2 : 4096;
    uint32_t *slots = calloc(n_slots, sizeof *slots);

    if (slots == NULL)
        return -1;
    for (size_t i = 0; i < table->n; i++) {
        const char *id = table->items[i].id;
        size_t j = vt_hash64(id, strlen(id)) & (n_slots - 1);

        while (slots[j] != 0)
            j = (j + 1) & (n_slots - 1);
        slots[j] = (uint32_t)i + 1;
    }
    free(table->slots);
    table->slots = slots;
    table->n_slots = n_slots;
    return 0;
}


/* The entry of id, added with no views when it is new; NULL when out of memory. */
static struct diginetica_item *diginetica_items_get(struct diginetica_items *table,
                                                    const char *id)
{
    size_t j;

    if ((table->n + 1) * 2 > table->n_slots && diginetica_items_grow_index(table) != 0)
        return NULL;
    j = vt_hash64(id, strlen(id)) & (table->n_slots - 1);
    while (table->slots[j] != 0) {
        struct diginetica_item *item = &table->items[table->slots[j] - 1];

        if (strcmp(item->id, id) == 0)
            return item;
        j = (j + 1) & (table->n_slots - 1);
    }

    if (table->n == table->cap) {
        size_t cap = table->cap > 0 ? table->cap * 2 : 4096;
        struct diginetica_item *items;

        if (cap >= UINT32_MAX)
            return NULL;
        items = realloc(table->items, cap * sizeof *items);
        if (items == NULL)
            return NULL;
        table->items = items;
        table->cap = cap;
    }
    table->items[table->n].id = strdup(id);
    if (table->items[table->n].id == NULL)
        return NULL;
    table->items[table->n].views = 0;
    table->slots[j] = (uint32_t)table->n + 1;
    return &table->items[table->n++];
}


/* Hand one product per distinct item to the sink, in the order of first appearance. */
static int diginetica_emit(const struct diginetica_items *table, struct vt_convert_ctx *ctx,
                           struct vt_convert_stats *stats)
{
    for (size_t i = 0; i < table->n; i++) {
        struct vt_catalog_entry entry;

        vt_catalog_entry_init(&entry);
        vt_strlcpy(entry.id, table->items[i].id, sizeof entry.id);
        if (table->items[i].views > 0)
            entry.popularity = table->items[i].views;
        if (emit_entry(ctx, stats, &entry) != 0)
            return -1;
    }
    return 0;
}


int vt_convert_diginetica(struct vt_csv *reader, const char *name,
                          int64_t views_before_ms, struct vt_convert_ctx *ctx,
                          struct vt_convert_stats *stats)
{
    enum { COL_ITEM, COL_TIMEFRAME, COL_DATE };
    static const char *const names[] = {"item_id", "timeframe", "eventdate", NULL};
    static const enum column_need needs[] = {COLUMN_REQUIRED, COLUMN_REQUIRED,
                                              COLUMN_REQUIRED};
    struct diginetica_items table = {0};
    int cols[3];
    int more;
    int rc = 0;

    if (read_header(reader, name, ctx, names, needs, cols) != 0)
        return -1;

    while ((more = next_row(reader, name, ctx, stats, false)) == 1) {
        char id[VT_PRODUCT_ID_MAX + 1];
        size_t date_len, timeframe_len;
        const char *date = column_value(reader, cols[COL_DATE], &date_len);
        const char *timeframe = column_value(reader, cols[COL_TIMEFRAME], &timeframe_len);
        struct diginetica_item *item;
        int64_t time_ms;

        stats->event_rows++;
        copy_column(id, sizeof id, reader, cols[COL_ITEM]);
        if (id[0] == '\0') {
            vt_counts_add(&stats->rejected, "missing_id", 1);
            continue;
        }
        if (!vt_id_valid(id, strlen(id))) {
            vt_counts_add(&stats->rejected, "invalid_id", 1);
            continue;
        }
        item = diginetica_items_get(&table, id);
        if (item == NULL) {
            snprintf(ctx->error, sizeof ctx->error, "%s: out of memory for the item table",
                     name);
            rc = -1;
            break;
        }

        /* A row with a bad time still names a product; it only adds no popularity. */
        if (vt_diginetica_time(date, date_len, timeframe, timeframe_len, &time_ms) != 0) {
            vt_counts_add(&stats->event_skipped, "invalid_time", 1);
            continue;
        }
        if (time_ms >= views_before_ms) {
            vt_counts_add(&stats->event_skipped, "after_cut", 1);
            continue;
        }
        item->views += 1;
        stats->event_rows_used++;
    }

    if (more < 0)
        rc = -1;
    if (rc == 0)
        rc = diginetica_emit(&table, ctx, stats);
    diginetica_items_free(&table);
    return rc;
}
