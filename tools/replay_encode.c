/*
 * vitrine-replay: encoding grouped records as Mapp Intelligence Data Streams records (nested
 * root stream or flattened custom stream) or as canonical events, and rewriting JSON Lines
 * records for --repeat and --shift-time.
 */
#include <cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "catalog_rows.h"
#include "replay_internal.h"
#include "vitrine/event.h"
#include "vitrine/util.h"


static const char *mapp_status(enum vt_event_type type)
{
    switch (type) {
    case VT_EV_ADD_TO_CART:
        return "add";
    case VT_EV_REMOVE_FROM_CART:
        return "del";
    case VT_EV_PURCHASE:
        return "conf";
    default:
        return "view";
    }
}


static const char *mapp_page_name(enum vt_event_type type)
{
    switch (type) {
    case VT_EV_REMOVE_FROM_CART:
        return "cart";
    case VT_EV_PURCHASE:
        return "order confirmation";
    default:
        return "product detail";
    }
}


/* "2022-10-01T00:00:03.000+00:00", Mapp's form of an ISO 8601 time. */
static void format_mapp_time(int64_t ms, char *buf, size_t bufsize)
{
    char utc[40];
    size_t n;

    vt_time_format_iso8601(ms, utc, sizeof utc);
    n = strlen(utc);
    if (n > 0 && utc[n - 1] == 'Z')
        utc[n - 1] = '\0';
    snprintf(buf, bufsize, "%s+00:00", utc);
}


/* The item's category for Mapp and the canonical format: the category_code when present,
 * else "cat-<category_id>", else "". */
static void item_category(const struct item *item, char *buf, size_t bufsize)
{
    if (item->category_code[0] != '\0')
        vt_strlcpy(buf, item->category_code, bufsize);
    else if (item->category_id[0] != '\0')
        snprintf(buf, bufsize, "cat-%s", item->category_id);
    else if (bufsize > 0)
        buf[0] = '\0';
}


/* Add {"<n>": {"key": "<n>", "value": value}} to a textValues map. */
static bool add_text_value(cJSON *map, int number, const char *value)
{
    char key[16];
    cJSON *entry;

    snprintf(key, sizeof key, "%d", number);
    entry = cJSON_AddObjectToObject(map, key);
    return entry != NULL && cJSON_AddStringToObject(entry, "key", key) != NULL &&
           cJSON_AddStringToObject(entry, "value", value) != NULL;
}


/* Request id of a Mapp record: 16 hex digits of a hash over session, time, status, part and
 * the first product, so that replaying the same input gives the same ids. */
static void mapp_record_id(const struct record *rec, int64_t time_ms, char *buf, size_t bufsize)
{
    struct vt_buf key;
    uint64_t h;

    vt_buf_init(&key, 1024);
    vt_buf_printf(&key, "%s|%" PRId64 "|%s|%d|%s", rec->session, time_ms,
                  mapp_status(rec->type), rec->part, rec->n_items > 0 ? rec->items[0].product : "");
    h = vt_hash64(key.data != NULL ? key.data : "", key.len);
    vt_buf_free(&key);
    snprintf(buf, bufsize, "%016" PRIx64, h);
}


static cJSON *build_mapp(const struct record *rec, int64_t out_ms, bool with_attributes)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *obj, *basket, *items;
    char text[VT_ID_MAX + 64];
    double order_value = 0;
    bool have_value = false;
    bool ok = root != NULL;

    mapp_record_id(rec, rec->time_ms, text, sizeof text);
    ok = ok && cJSON_AddStringToObject(root, "id", text) != NULL;
    format_mapp_time(out_ms, text, sizeof text);
    ok = ok && cJSON_AddStringToObject(root, "timestamp", text) != NULL;
    obj = ok ? cJSON_AddObjectToObject(root, "session") : NULL;
    ok = obj != NULL && cJSON_AddStringToObject(obj, "id", rec->session) != NULL;
    if (ok && rec->user[0] != '\0') {
        obj = cJSON_AddObjectToObject(root, "user");
        ok = obj != NULL && cJSON_AddStringToObject(obj, "id", rec->user) != NULL;
    }
    obj = ok ? cJSON_AddObjectToObject(root, "processingMetadata") : NULL;
    ok = obj != NULL && cJSON_AddStringToObject(obj, "detectedContext", "Action") != NULL;
    obj = ok ? cJSON_AddObjectToObject(root, "page") : NULL;
    ok = obj != NULL && cJSON_AddStringToObject(obj, "name", mapp_page_name(rec->type)) != NULL;

    basket = ok ? cJSON_AddObjectToObject(root, "basket") : NULL;
    ok = basket != NULL && cJSON_AddStringToObject(basket, "status", mapp_status(rec->type));
    items = ok ? cJSON_AddArrayToObject(basket, "items") : NULL;
    ok = items != NULL;

    for (size_t i = 0; ok && i < rec->n_items; i++) {
        const struct item *it = &rec->items[i];
        cJSON *item = cJSON_CreateObject();
        cJSON *product;

        ok = item != NULL;
        if (ok)
            cJSON_AddItemToArray(items, item);
        ok = ok && cJSON_AddNumberToObject(item, "quantity", it->quantity) != NULL;
        if (ok && it->price >= 0) {
            ok = cJSON_AddNumberToObject(item, "price", it->price) != NULL;
            order_value += it->price * it->quantity;
            have_value = true;
        }
        product = ok ? cJSON_AddObjectToObject(item, "product") : NULL;
        ok = product != NULL && cJSON_AddStringToObject(product, "name", it->product) != NULL;

        if (ok && with_attributes) {
            char category[VT_NAME_MAX + 8];

            item_category(it, category, sizeof category);
            if (it->brand[0] != '\0' || category[0] != '\0') {
                cJSON *categories = cJSON_AddObjectToObject(product, "categories");
                cJSON *values = categories != NULL
                                    ? cJSON_AddObjectToObject(categories, "textValues")
                                    : NULL;

                ok = values != NULL;
                if (ok && it->brand[0] != '\0')
                    ok = add_text_value(values, 1, it->brand);
                if (ok && category[0] != '\0')
                    ok = add_text_value(values, 2, category);
            }
        }
    }

    if (ok && rec->type == VT_EV_PURCHASE) {
        obj = cJSON_AddObjectToObject(root, "order");
        ok = obj != NULL;
        if (ok && rec->part > 1)
            snprintf(text, sizeof text, "%s-%" PRId64 "-%d", rec->session, rec->time_ms,
                     rec->part);
        else if (ok)
            snprintf(text, sizeof text, "%s-%" PRId64, rec->session, rec->time_ms);
        ok = ok && cJSON_AddStringToObject(obj, "id", text) != NULL;
        /* A sum of decimal prices carries binary rounding noise (0.1 + 0.2 is
         * 0.30000000000000004), so it is rounded to millionths. */
        if (ok && have_value)
            ok = cJSON_AddNumberToObject(obj, "value", round(order_value * 1e6) / 1e6) != NULL;
    }

    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}


/* Copy the members of src into dst with keys joined by '_' and array elements numbered from
 * 1, as Mapp's custom streams flatten records. */
static bool flatten_into(cJSON *dst, const cJSON *src, const char *prefix)
{
    const cJSON *child;
    int index = 0;

    cJSON_ArrayForEach(child, src)
    {
        char key[512];
        int n;

        index++;
        if (cJSON_IsArray(src))
            n = snprintf(key, sizeof key, "%s_%d", prefix, index);
        else if (prefix[0] != '\0')
            n = snprintf(key, sizeof key, "%s_%s", prefix, child->string);
        else
            n = snprintf(key, sizeof key, "%s", child->string);
        if (n < 0 || (size_t)n >= sizeof key)
            return false;

        if (cJSON_IsObject(child) || cJSON_IsArray(child)) {
            if (!flatten_into(dst, child, key))
                return false;
        } else {
            cJSON *copy = cJSON_Duplicate(child, false);

            if (copy == NULL)
                return false;
            cJSON_AddItemToObject(dst, key, copy);
        }
    }
    return true;
}


static cJSON *build_canonical(const struct record *rec, int64_t out_ms)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *products;
    char ts[40];
    bool ok = root != NULL;

    vt_time_format_iso8601(out_ms, ts, sizeof ts);
    ok = ok && cJSON_AddStringToObject(root, "type", vt_event_type_name(rec->type)) != NULL;
    ok = ok && cJSON_AddStringToObject(root, "session_id", rec->session) != NULL;
    if (ok && rec->user[0] != '\0')
        ok = cJSON_AddStringToObject(root, "user_id", rec->user) != NULL;
    ok = ok && cJSON_AddStringToObject(root, "ts", ts) != NULL;
    products = ok ? cJSON_AddArrayToObject(root, "products") : NULL;
    ok = products != NULL;

    for (size_t i = 0; ok && i < rec->n_items; i++) {
        const struct item *it = &rec->items[i];
        cJSON *product = cJSON_CreateObject();
        char paths[VT_ITEM_CATEGORIES_MAX][VT_NAME_MAX + 1];
        size_t n_paths = 0;

        ok = product != NULL;
        if (ok)
            cJSON_AddItemToArray(products, product);
        ok = ok && cJSON_AddStringToObject(product, "id", it->product) != NULL;
        if (ok && it->price >= 0)
            ok = cJSON_AddNumberToObject(product, "price", it->price) != NULL;
        ok = ok && cJSON_AddNumberToObject(product, "quantity", it->quantity) != NULL;
        if (ok && it->brand[0] != '\0')
            ok = cJSON_AddStringToObject(product, "brand", it->brand) != NULL;

        if (it->category_code[0] != '\0') {
            n_paths = vt_category_path(it->category_code, paths, VT_ITEM_CATEGORIES_MAX);
        } else if (it->category_id[0] != '\0') {
            item_category(it, paths[0], sizeof paths[0]);
            n_paths = 1;
        }
        if (ok && n_paths > 0) {
            cJSON *list = cJSON_AddArrayToObject(product, "categories");

            ok = list != NULL;
            for (size_t k = 0; ok && k < n_paths; k++) {
                cJSON *name = cJSON_CreateString(paths[k]);

                ok = name != NULL;
                if (ok)
                    cJSON_AddItemToArray(list, name);
            }
        }
    }

    if (!ok) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}


/* Encode a grouped record; the caller frees the text with free(). */
char *replay_encode_record(const struct options *opt, const struct record *rec, int64_t out_ms)
{
    cJSON *root = opt->format == OUTPUT_CANONICAL ? build_canonical(rec, out_ms)
                                                  : build_mapp(rec, out_ms, opt->with_attributes);
    char *text = NULL;

    if (root == NULL)
        return NULL;
    if (opt->flatten) {
        cJSON *flat = cJSON_CreateObject();

        if (flat != NULL && flatten_into(flat, root, ""))
            text = cJSON_PrintUnformatted(flat);
        cJSON_Delete(flat);
    } else {
        text = cJSON_PrintUnformatted(root);
    }
    cJSON_Delete(root);
    return text;
}


/* Append suffix to the string member name of obj, when it is a string. */
static bool append_to_string(cJSON *obj, const char *name, const char *suffix)
{
    cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, name);
    char text[VT_ID_MAX + 32];

    if (!cJSON_IsString(item))
        return true;
    snprintf(text, sizeof text, "%s%s", item->valuestring, suffix);
    return cJSON_ReplaceItemInObjectCaseSensitive(obj, name, cJSON_CreateString(text));
}


static bool replace_string(cJSON *obj, const char *name, const char *value)
{
    cJSON *item = cJSON_CreateString(value);

    if (item == NULL)
        return false;
    if (cJSON_GetObjectItemCaseSensitive(obj, name) != NULL)
        return cJSON_ReplaceItemInObjectCaseSensitive(obj, name, item);
    cJSON_AddItemToObject(obj, name, item);
    return true;
}


/* Rewrite a JSON Lines record for a repeat pass or a shifted time: the session id (and the
 * Mapp request id) get the pass suffix, the time becomes out_ms. Returns new text to free(),
 * or NULL. */
char *replay_rewrite_json(const struct row *row, const char *session, const char *suffix,
                          bool set_time, int64_t out_ms)
{
    cJSON *obj = cJSON_ParseWithLength(row->json, row->json_len);
    cJSON *nested;
    char ts[48];
    bool ok = obj != NULL;
    char *text = NULL;

    if (ok && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(obj, "type"))) {
        ok = replace_string(obj, "session_id", session);
        if (ok && set_time) {
            vt_time_format_iso8601(out_ms, ts, sizeof ts);
            ok = replace_string(obj, "ts", ts);
        }
    } else if (ok) {
        nested = cJSON_GetObjectItemCaseSensitive(obj, "session");
        if (cJSON_IsObject(nested))
            ok = replace_string(nested, "id", session);
        else
            ok = replace_string(obj, "session_id", session);
        if (ok && suffix[0] != '\0')
            ok = append_to_string(obj, "id", suffix);
        if (ok && set_time) {
            format_mapp_time(out_ms, ts, sizeof ts);
            ok = replace_string(obj, "timestamp", ts);
        }
    }
    if (ok)
        text = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    return text;
}
