/*
 * vitrine tools: conversion of product catalogue CSV files into vitrine's catalog JSON
 * Lines (one product per line, see include/vitrine/catalog.h and docs/catalog.md).
 *
 * Each source has a converter that reads an open CSV reader (header not yet read) and hands
 * every product to a sink callback. vitrine-catalog's sink writes JSON lines, and the unit
 * tests' sink collects entries. A conversion context checks that ids do not collide across sources
 * and keeps per-source counts. The REES46 converter is two-phase: it collects item.csv rows
 * and event rows first, then merges and emits. The Diginetica converter reads the whole file
 * before it emits, because a product's popularity is its number of view rows.
 *
 * Nothing here is thread-safe; use one context per thread.
 */
#ifndef VITRINE_TOOLS_CATALOG_ROWS_H
#define VITRINE_TOOLS_CATALOG_ROWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "csv.h"
#include "vitrine/event.h"
#include "vitrine/limits.h"

/* Product names, in bytes of UTF-8; longer names are cut at a character boundary. */
#define VT_CATALOG_NAME_MAX 512

/* Distinct reasons kept per counter table; further reasons are added up under "other". */
#define VT_COUNTS_MAX 16

#define VT_CONVERT_ERROR_MAX 512

/* One product as written to the catalog JSON Lines. Empty strings, negative numbers and an
 * unknown gender mean "not given", and such fields are left out of the JSON line. */
struct vt_catalog_entry {
    char id[VT_PRODUCT_ID_MAX + 1];
    char name[VT_CATALOG_NAME_MAX + 1];
    char brand[VT_NAME_MAX + 1];
    char categories[VT_ITEM_CATEGORIES_MAX][VT_NAME_MAX + 1];
    uint8_t n_categories;
    enum vt_gender gender;
    double price;      /* unit price, -1 when unknown */
    int64_t stock;     /* units available, -1 when unknown */
    double popularity; /* -1 when unknown */
};

/* Counts by reason name; names must be string literals (they are not copied). */
struct vt_counts {
    const char *names[VT_COUNTS_MAX];
    uint64_t values[VT_COUNTS_MAX];
    size_t n;
};

struct vt_convert_stats {
    const char *source;       /* "rees46", "diginetica", "noon", "ebay-men", "ebay-women",
                                 "fragdb" */
    uint64_t rows;            /* data rows read (header excluded), rejected ones included */
    uint64_t written;         /* products handed to the sink */
    uint64_t merged;          /* rows merged into a product of an earlier row (REES46) */
    struct vt_counts rejected; /* rows that gave no product, by reason */
    struct vt_counts dropped;  /* values left out of a product that was kept, by reason */
    uint64_t event_rows;      /* REES46 event rows read */
    uint64_t event_rows_used; /* event rows that set a price or added popularity */
    struct vt_counts event_skipped; /* event rows not used, by reason */
};

typedef int (*vt_catalog_sink)(const struct vt_catalog_entry *entry, void *arg);

struct vt_convert_ctx {
    vt_catalog_sink sink;
    void *sink_arg;
    char error[VT_CONVERT_ERROR_MAX]; /* message of the last failed call */
    bool input_invalid; /* the last failure was an unusable input file (no header, missing
                           column), not a read, write or memory error */
    /* Set of ids already written, for collision checks across sources. */
    char **ids;
    size_t ids_cap;
    size_t ids_len;
};

void vt_counts_add(struct vt_counts *counts, const char *name, uint64_t n);
uint64_t vt_counts_total(const struct vt_counts *counts);

/* Append "name count, name count" to buf (NUL-terminated, at most bufsize bytes), or "none". */
void vt_counts_format(const struct vt_counts *counts, char *buf, size_t bufsize);

void vt_catalog_entry_init(struct vt_catalog_entry *entry);

/* Write the entry as one JSON line (with '\n') to out. Returns 0, or -1 when out of memory or
 * when writing fails. */
int vt_catalog_entry_write(const struct vt_catalog_entry *entry, FILE *out);

/* Build the JSON text of an entry without the line end; the caller frees it with free().
 * Returns NULL when out of memory. */
char *vt_catalog_entry_json(const struct vt_catalog_entry *entry);

/* Expand a dotted category code "a.b.c" into its prefixes "a", "a.b", "a.b.c", at most max
 * of them (the longest ones are dropped first). Empty segments are skipped. Returns the
 * number written. */
size_t vt_category_path(const char *code, char out[][VT_NAME_MAX + 1], size_t max);

/* Copy src (len bytes) to dst, replacing bytes that are not valid UTF-8 by U+FFFD and cutting
 * at a character boundary when dst is too small. Returns the length written. */
size_t vt_utf8_clean(char *dst, size_t dstsize, const char *src, size_t len);

void vt_convert_ctx_init(struct vt_convert_ctx *ctx, vt_catalog_sink sink, void *sink_arg);
void vt_convert_ctx_free(struct vt_convert_ctx *ctx);

/*
 * The single-file sources. Each reads the header and every row of reader, and returns 0, or
 * -1 with a message in ctx->error when the header lacks a required column, the sink fails
 * or reading fails. name is the file name used in messages.
 *
 *   noon:   noon-<perfume_id>; brand, name, gender from department, price = new_price,
 *           categories perfume and perfume.<concentration lowercased>.
 *   ebay:   <prefix><data row number>; name = title, brand without placeholders such as
 *           "As Shown" or "Unbranded", gender = file_gender unless the title contains "unisex",
 *           price, stock = available, popularity = sold, categories perfume and
 *           perfume.<type lowercased>.
 *   fragdb: fragdb-<pid>, pipe-separated; brand from "Name;brandId", gender from the
 *           gender_for_* labels, popularity = number of ratings, category perfume.
 */
int vt_convert_noon(struct vt_csv *reader, const char *name, struct vt_convert_ctx *ctx,
                    struct vt_convert_stats *stats);
int vt_convert_ebay(struct vt_csv *reader, const char *name, const char *id_prefix,
                    enum vt_gender file_gender, struct vt_convert_ctx *ctx,
                    struct vt_convert_stats *stats);
int vt_convert_fragdb(struct vt_csv *reader, const char *name, struct vt_convert_ctx *ctx,
                      struct vt_convert_stats *stats);

/* True when an eBay brand string is a placeholder ("AS SHOW", "As Shown", "Unbranded", ...)
 * rather than a brand. */
bool vt_brand_is_placeholder(const char *brand);

/*
 * REES46: item.csv rows (product_id, category_id, category_code, brand), several per product,
 * are merged per product. A non-empty value wins over an empty one, and the most frequent
 * non-empty value wins when rows disagree, ties going to the value seen first. Events
 * (event_time, event_type, product_id, price) give the price of the latest event and
 * popularity = views + 3 carts + 5 purchases. category_code "a.b.c" gives categories a, a.b,
 * a.b.c, and without a code category_id gives "cat-<category_id>". Products are emitted in the
 * order of their first item row.
 *
 * The header of item.csv must have product_id and at least one of brand, category_id and
 * category_code, and the header of an events file event_time, event_type, product_id and
 * price. Otherwise the call returns -1 with ctx->input_invalid set and every missing column
 * named in ctx->error.
 */
struct vt_rees46;

struct vt_rees46 *vt_rees46_new(void);
void vt_rees46_free(struct vt_rees46 *catalog);

int vt_rees46_add_items(struct vt_rees46 *catalog, struct vt_csv *reader, const char *name,
                        struct vt_convert_ctx *ctx, struct vt_convert_stats *stats);

/* Use only events before before_ms (epoch milliseconds) for price and popularity; later
 * events are counted as skipped (after_cut). The default, INT64_MAX, uses every event. Call
 * before adding events. */
void vt_rees46_set_events_before(struct vt_rees46 *catalog, int64_t before_ms);

/* Events must be added after all items, because they refer to merged products. */
int vt_rees46_add_events(struct vt_rees46 *catalog, struct vt_csv *reader, const char *name,
                         struct vt_convert_ctx *ctx, struct vt_convert_stats *stats);

int vt_rees46_emit(struct vt_rees46 *catalog, struct vt_convert_ctx *ctx,
                   struct vt_convert_stats *stats);

/*
 * Diginetica: the CIKM Cup 2016 train-item-views.csv (session_id;user_id;item_id;timeframe;
 * eventdate, separated by semicolons). The file has no product attributes, so each distinct
 * item_id gives one product with its id and, when above 0, popularity = the number of its
 * rows whose time (vt_diginetica_time) is before views_before_ms (INT64_MAX: all rows).
 * Products are emitted in the order of their first row. A row with an invalid time still
 * gives its product. Returns 0, or -1 as the single-file sources.
 */
int vt_convert_diginetica(struct vt_csv *reader, const char *name,
                          int64_t views_before_ms, struct vt_convert_ctx *ctx,
                          struct vt_convert_stats *stats);

/* Time of a Diginetica row: midnight UTC of eventdate (YYYY-MM-DD) plus timeframe
 * milliseconds (0 to 10^12). Returns 0 with epoch milliseconds in *ms, or -1 when either
 * field is invalid. */
int vt_diginetica_time(const char *date, size_t date_len, const char *timeframe,
                       size_t timeframe_len, int64_t *ms);

#endif
