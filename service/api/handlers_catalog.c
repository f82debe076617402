/*
 * vitrine: the storefront's catalog endpoints: trending products and similar products.
 * They read only the request's world version (no Redis), on HTTP worker threads.
 */
#include <string.h>

#include "api_internal.h"
#include "vitrine/recommend.h"
#include "vitrine/util.h"

/* Products per response when the request gives no limit. */
#define LIST_LIMIT_DEFAULT 20

static _Thread_local struct vt_scored_product worker_trending[VT_REC_LIMIT_MAX];
static _Thread_local struct vt_rec_item worker_similar[VT_REC_LIMIT_MAX];

/* The limit parameter, 1..VT_REC_LIMIT_MAX; false after queueing a 400. */
static bool parse_limit(struct vt_request *req, size_t *limit, enum MHD_Result *reply)
{
    const char *value = vt_query(req, "limit");
    int64_t n;

    *limit = LIST_LIMIT_DEFAULT;
    if (value == NULL)
        return true;
    if (vt_parse_int64(value, 1, VT_REC_LIMIT_MAX, &n) != 0) {
        *reply = vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                                "invalid limit: expected an integer from 1 to %d",
                                VT_REC_LIMIT_MAX);
        return false;
    }
    *limit = (size_t)n;
    return true;
}


static void write_product(struct vt_jsonw *w, const struct vt_catalog *cat, uint32_t index,
                          size_t position, double score)
{
    const struct vt_product *prod = vt_catalog_get(cat, index);

    vt_jsonw_key(w, "product_id");
    vt_jsonw_string(w, prod->id);
    vt_jsonw_key(w, "position");
    vt_jsonw_int(w, (int64_t)position);
    vt_jsonw_key(w, "score");
    vt_jsonw_double(w, score);
    if (prod->name[0] != '\0') {
        vt_jsonw_key(w, "name");
        vt_jsonw_string(w, prod->name);
    }
    if (prod->brand != VT_CATALOG_NONE) {
        vt_jsonw_key(w, "brand");
        vt_jsonw_string(w, vt_catalog_brand_name(cat, prod->brand));
    }
    if (prod->price >= 0) {
        vt_jsonw_key(w, "price");
        vt_jsonw_double(w, prod->price);
    }
}


enum MHD_Result vt_handle_trending(struct vt_request *req)
{
    const struct vt_catalog *cat = req->world->catalog;
    const char *category = vt_query(req, "category");
    const char *brand = vt_query(req, "brand");
    const char *gender_text = vt_query(req, "gender");
    uint32_t category_index = VT_CATALOG_NONE, brand_index = VT_CATALOG_NONE;
    enum vt_gender gender = VT_GENDER_UNKNOWN;
    enum MHD_Result reply;
    struct vt_jsonw w;
    size_t limit, n;

    if (!parse_limit(req, &limit, &reply))
        return reply;
    if (gender_text != NULL) {
        gender = vt_gender_parse(gender_text, strlen(gender_text));
        if (gender == VT_GENDER_UNKNOWN)
            return vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                                  "invalid gender: expected female, male or unisex");
    }
    /* A category or brand the catalog does not know has no trending products. */
    if (category != NULL) {
        category_index = vt_catalog_category_find(cat, category, strlen(category));
        if (category_index == VT_CATALOG_NONE)
            limit = 0;
    }
    if (brand != NULL) {
        brand_index = vt_catalog_brand_find(cat, brand, strlen(brand));
        if (brand_index == VT_CATALOG_NONE)
            limit = 0;
    }
    n = limit > 0 ? vt_trending_query(req->world, category_index, brand_index, gender, limit,
                                      worker_trending)
                  : 0;

    vt_jsonw_init(&w, vt_api_worker_buffer(), VT_RESPONSE_MAX);
    vt_jsonw_object_begin(&w);
    vt_jsonw_key(&w, "items");
    vt_jsonw_array_begin(&w);
    for (size_t i = 0; i < n; i++) {
        vt_jsonw_object_begin(&w);
        write_product(&w, cat, worker_trending[i].product, i + 1, worker_trending[i].score);
        vt_jsonw_object_end(&w);
    }
    vt_jsonw_array_end(&w);
    vt_jsonw_key(&w, "refreshed");
    if (req->world->aggregates_ms >= 0) {
        char stamp[40];
        vt_time_format_iso8601(req->world->aggregates_ms, stamp, sizeof stamp);
        vt_jsonw_string(&w, stamp);
    } else {
        vt_jsonw_null(&w);
    }
    vt_jsonw_object_end(&w);
    return vt_reply_writer(req, MHD_HTTP_OK, &w);
}


enum MHD_Result vt_handle_similar(struct vt_request *req)
{
    const struct vt_catalog *cat = req->world->catalog;
    enum MHD_Result reply;
    struct vt_jsonw w;
    uint32_t product;
    size_t limit, n, from_neighbors = 0;
    char id[VT_PRODUCT_ID_MAX * 3 + 1];
    size_t id_len = vt_api_path_id(req, id, sizeof id);

    if (!vt_api_product_id_valid(id, id_len))
        return vt_reply_error(req, MHD_HTTP_BAD_REQUEST, "INVALID_ARGUMENT", false,
                              "invalid product id: expected 1 to %d bytes of UTF-8 without "
                              "control characters", VT_PRODUCT_ID_MAX);
    if (!parse_limit(req, &limit, &reply))
        return reply;
    product = vt_catalog_find(cat, id, id_len);
    if (product == VT_CATALOG_NONE)
        return vt_reply_error(req, MHD_HTTP_NOT_FOUND, "NOT_FOUND", false,
                              "product %s is not in the catalog", id);

    n = vt_similar_query(req->world, product, limit, worker_similar, &from_neighbors);

    vt_jsonw_init(&w, vt_api_worker_buffer(), VT_RESPONSE_MAX);
    vt_jsonw_object_begin(&w);
    vt_jsonw_key(&w, "product_id");
    vt_jsonw_string(&w, vt_catalog_get(cat, product)->id);
    vt_jsonw_key(&w, "from_neighbors");
    vt_jsonw_int(&w, (int64_t)from_neighbors);
    vt_jsonw_key(&w, "items");
    vt_jsonw_array_begin(&w);
    for (size_t i = 0; i < n; i++) {
        const struct vt_rec_item *item = &worker_similar[i];

        vt_jsonw_object_begin(&w);
        write_product(&w, cat, item->product, i + 1, item->score);
        vt_jsonw_key(&w, "reasons");
        vt_jsonw_array_begin(&w);
        if (item->reasons & VT_REASON_SIMILAR)
            vt_jsonw_string(&w, "co_viewed");
        if (item->reasons & VT_REASON_BOUGHT_TOGETHER)
            vt_jsonw_string(&w, "bought_together");
        if (item->reasons & VT_REASON_SAME_CATEGORY)
            vt_jsonw_string(&w, "same_category");
        if (item->reasons & (VT_REASON_TRENDING | VT_REASON_POPULAR))
            vt_jsonw_string(&w, "popular");
        vt_jsonw_array_end(&w);
        vt_jsonw_object_end(&w);
    }
    vt_jsonw_array_end(&w);
    vt_jsonw_object_end(&w);
    return vt_reply_writer(req, MHD_HTTP_OK, &w);
}
