/*
 * A synthetic profile population for the benchmarks, derived from real REES46 sessions.
 *
 *   bench_populate --catalog FILE --events CSV [--events CSV ...] --sessions N
 *                  [--heavy-every N] [--heavy-products K] [--tag TAG] [--seed N]
 *                  [--ids-out PREFIX] [--ids-max N] -o FILE
 *
 * Inputs: the catalog vitrine runs with (JSON Lines) and REES46 events files
 * (event_time,event_type,product_id,user_session; docs/tools.md). Each real session is read
 * as a shape, the sequence of its records. Rows of the same time and type form one record
 * with several products, as vitrine-replay groups them. A product is named by its slot, the
 * position of its first row among the session's distinct products. So the counts of records
 * per session, their types and how often a session comes back to a product are those of
 * the real data.
 *
 * Output (-o): canonical events in JSON Lines (docs/events.md), for
 * `vitrine-replay --jsonl FILE`. Session i of N copies the shape of a real session drawn
 * at random. Each slot becomes a catalog product from the most specific category of the
 * real product (skewed towards the popular ones), or a popular product of the whole
 * catalog when the real product is not in the catalog or has no category. Every
 * --heavy-every'th session (default 100, 0 for none) is instead a near-cap session built
 * to fill every bounded list of a profile (docs/architecture.md, "Redis keys"): 40 views of
 * products of distinct brands (recently viewed, categories and brands at their maximum of
 * 20), 10 impressions of 10 products (100 seen), 50 clicks, 2 purchases of 50 products
 * (100 bought) and then 100 carts of distinct products (100 cart lines). Its products are
 * among the first K catalog lines (--heavy-products, default 5000), so that they are in
 * every catalog of bench_gen_catalog that has at least K products. 128 sessions are open
 * at a time and their records interleave. Event times start one hour before now and
 * advance 5 ms per record.
 *
 * Session ids are "<tag>-t-NNNNNNN" (typical) and "<tag>-cap-NNNNNNN" (near cap), with the
 * session number; --tag defaults to "bench". With --ids-out, PREFIX.typical and PREFIX.heavy
 * receive up to --ids-max (default 1000) session ids of each kind, one per line.
 *
 * The last line on stdout is
 *
 *   result: sessions=N typical=T heavy=H records=R real_sessions=S real_records=Q
 *
 * The exit status is 0 on success, 1 when reading or writing fails, and 2 for invalid
 * arguments.
 */
#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "csv.h"
#include "vitrine/catalog.h"
#include "vitrine/config.h"
#include "vitrine/log.h"
#include "vitrine/util.h"

#include "synthetic.h"

#define EVENT_FILES_MAX 32
#define SESSIONS_MAX 10000000

/* Sessions open at a time, whose records interleave in the output. */
#define OPEN_SESSIONS 128

/* Event times: the first record one hour before now, then 5 ms per record. */
#define START_BEFORE_NOW_MS 3600000
#define STEP_MS 5

/* The near-cap session. */
#define HEAVY_VIEWS 40
#define HEAVY_IMPRESSIONS 10
#define HEAVY_IMPRESSION_ITEMS 10
#define HEAVY_CLICKS 50
#define HEAVY_PURCHASES 2
#define HEAVY_PURCHASE_ITEMS 50
#define HEAVY_CARTS 100
#define HEAVY_RECORDS                                                                              \
    (HEAVY_VIEWS + HEAVY_IMPRESSIONS + HEAVY_CLICKS + HEAVY_PURCHASES + HEAVY_CARTS)
#define HEAVY_ITEMS                                                                                \
    (HEAVY_VIEWS + HEAVY_IMPRESSIONS * HEAVY_IMPRESSION_ITEMS + HEAVY_CLICKS +                     \
     HEAVY_PURCHASES * HEAVY_PURCHASE_ITEMS + HEAVY_CARTS)

/* Draws of a product with a brand not used yet, before a used brand is accepted. */
#define DISTINCT_TRIES 200

enum record_type { REC_VIEW, REC_CART, REC_REMOVE, REC_PURCHASE, REC_IMPRESSION, REC_CLICK };

static const char *const type_names[] = {
    [REC_VIEW] = "product_view", [REC_CART] = "add_to_cart",      [REC_REMOVE] = "remove_from_cart",
    [REC_PURCHASE] = "purchase", [REC_IMPRESSION] = "impression", [REC_CLICK] = "click",
};

struct options {
    const char *catalog;
    const char *events[EVENT_FILES_MAX];
    size_t n_events;
    const char *output;
    const char *ids_out;
    const char *tag;
    long sessions;
    long heavy_every;
    long heavy_products;
    long ids_max;
    uint64_t seed;
};

/* One REES46 row while the shapes are built. */
struct row {
    char *session;
    char *time;
    char *product;
    double price; /* -1 when the row has none */
    enum record_type type;
    bool has_user;
    size_t order;
};

/* A record of a shape or of a generated session: items[first .. first + n) of its owner. */
struct record {
    enum record_type type;
    uint32_t first;
    uint32_t n;
};

/* A real session: records[first_record ..], items as slots, slot_product[first_slot ..]
 * the catalog index of each slot's real product (VT_CATALOG_NONE when unknown) and
 * slot_price[first_slot ..] the price of its first row (-1 when it has none). */
struct shape {
    size_t first_record;
    uint32_t n_records;
    size_t first_slot;
    uint32_t n_slots;
    bool has_user;
};

struct shapes {
    struct shape *items;
    size_t n;
    struct record *records;
    size_t n_records;
    uint32_t *slots; /* per record item: the slot number within its session */
    size_t n_slot_items;
    uint32_t *slot_product;
    double *slot_price;
    size_t n_slot_products;
};

/* A session being written: its records and their products as catalog indexes. */
struct open_session {
    bool active;
    long number;
    bool heavy;
    bool has_user;
    struct record *records;
    uint32_t n_records;
    uint32_t next;
    uint32_t *products;
    double *prices; /* per product: the price an event sends, -1 for none */
    uint32_t n_products;
};

struct generator {
    const struct options *o;
    const struct vt_catalog *cat;
    const struct shapes *shapes;
    struct bench_rng rng;
    FILE *out;
    FILE *ids_typical;
    FILE *ids_heavy;
    long ids_typical_written;
    long ids_heavy_written;
    long next_session;
    long typical;
    long heavy;
    long records;
    int64_t start_ms;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: bench_populate --catalog FILE --events CSV [--events CSV ...] --sessions N\n"
            "                      [--heavy-every N] [--heavy-products K] [--tag TAG]\n"
            "                      [--seed N] [--ids-out PREFIX] [--ids-max N] -o FILE\n"
            "  --catalog FILE       catalog in JSON Lines that vitrine runs with\n"
            "  --events CSV         REES46 events file whose sessions give the shapes\n"
            "  --sessions N         sessions to write\n"
            "  --heavy-every N      every Nth session fills the profile's caps (default 100,\n"
            "                       0 for none)\n"
            "  --heavy-products K   near-cap sessions use the first K catalog lines (default "
            "5000)\n"
            "  --tag TAG            session id prefix (default bench)\n"
            "  --seed N             seed of the random choices (default 1)\n"
            "  --ids-out PREFIX     write session ids to PREFIX.typical and PREFIX.heavy\n"
            "  --ids-max N          ids per file (default 1000)\n"
            "  -o FILE              output events in JSON Lines\n");
}

static int parse_options(int argc, char **argv, struct options *o)
{
    memset(o, 0, sizeof *o);
    o->tag = "bench";
    o->heavy_every = 100;
    o->heavy_products = 5000;
    o->ids_max = 1000;
    o->seed = 1;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        long *target = NULL;
        int64_t min = 1, max = SESSIONS_MAX, value;

        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            usage(stdout);
            exit(0);
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_populate: option %s needs a value\n", arg);
            return -1;
        }
        const char *val = argv[++i];
        if (strcmp(arg, "--catalog") == 0) {
            o->catalog = val;
            continue;
        }
        if (strcmp(arg, "--events") == 0) {
            if (o->n_events == EVENT_FILES_MAX) {
                fprintf(stderr, "bench_populate: at most %d --events files\n", EVENT_FILES_MAX);
                return -1;
            }
            o->events[o->n_events++] = val;
            continue;
        }
        if (strcmp(arg, "-o") == 0 || strcmp(arg, "--output") == 0) {
            o->output = val;
            continue;
        }
        if (strcmp(arg, "--ids-out") == 0) {
            o->ids_out = val;
            continue;
        }
        if (strcmp(arg, "--tag") == 0) {
            if (!vt_id_valid(val, strlen(val)) || strlen(val) > 64) {
                fprintf(stderr,
                        "bench_populate: invalid --tag %s: use 1 to 64 characters of "
                        "A-Z a-z 0-9 . _ : @ -\n",
                        val);
                return -1;
            }
            o->tag = val;
            continue;
        }
        if (strcmp(arg, "--sessions") == 0) {
            target = &o->sessions;
        } else if (strcmp(arg, "--heavy-every") == 0) {
            target = &o->heavy_every;
            min = 0;
        } else if (strcmp(arg, "--heavy-products") == 0) {
            target = &o->heavy_products;
            min = HEAVY_CARTS + HEAVY_PURCHASES * HEAVY_PURCHASE_ITEMS;
        } else if (strcmp(arg, "--ids-max") == 0) {
            target = &o->ids_max;
            min = 0;
        } else if (strcmp(arg, "--seed") == 0) {
            if (vt_parse_int64(val, 0, INT64_MAX, &value) != 0)
                goto invalid;
            o->seed = (uint64_t)value;
            continue;
        }
        if (target == NULL || vt_parse_int64(val, min, max, &value) != 0)
            goto invalid;
        *target = (long)value;
        continue;
    invalid:
        fprintf(stderr, "bench_populate: unknown option or invalid value: %s %s\n", arg, val);
        return -1;
    }
    if (o->catalog == NULL || o->n_events == 0 || o->sessions == 0 || o->output == NULL) {
        fprintf(stderr, "bench_populate: --catalog, --events, --sessions and -o are required\n");
        return -1;
    }
    return 0;
}

static int parse_type(const char *text, enum record_type *out)
{
    if (strcmp(text, "view") == 0)
        *out = REC_VIEW;
    else if (strcmp(text, "cart") == 0)
        *out = REC_CART;
    else if (strcmp(text, "remove_from_cart") == 0)
        *out = REC_REMOVE;
    else if (strcmp(text, "purchase") == 0)
        *out = REC_PURCHASE;
    else
        return -1;
    return 0;
}

static void *grow(void *items, size_t *capacity, size_t n, size_t size)
{
    if (n < *capacity)
        return items;
    size_t next = *capacity == 0 ? 1024 : *capacity * 2;
    void *grown = realloc(items, next * size);
    if (grown != NULL)
        *capacity = next;
    return grown;
}

/* Append the usable rows of one REES46 file. Rows without a session, product or known
 * type are skipped, as vitrine-replay skips them. */
static int read_rows(const char *path, struct row **rows, size_t *n, size_t *capacity)
{
    FILE *in = fopen(path, "r");
    if (in == NULL) {
        fprintf(stderr, "bench_populate: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct vt_csv_options csv_options = {.separator = ',', .max_record = 64 * 1024};
    struct vt_csv *csv = vt_csv_open(in, &csv_options);
    if (csv == NULL || vt_csv_read_header(csv) != VT_CSV_RECORD) {
        fprintf(stderr, "bench_populate: %s has no CSV header\n", path);
        vt_csv_close(csv);
        fclose(in);
        return -1;
    }
    int c_time = vt_csv_column(csv, "event_time"), c_type = vt_csv_column(csv, "event_type");
    int c_product = vt_csv_column(csv, "product_id"),
        c_session = vt_csv_column(csv, "user_session");
    int c_user = vt_csv_column(csv, "user_id"), c_price = vt_csv_column(csv, "price");
    if (c_time < 0 || c_type < 0 || c_product < 0 || c_session < 0) {
        fprintf(stderr,
                "bench_populate: %s lacks one of the columns event_time, event_type, "
                "product_id, user_session\n",
                path);
        vt_csv_close(csv);
        fclose(in);
        return -1;
    }

    enum vt_csv_status status;
    int result = 0;
    while ((status = vt_csv_next(csv)) != VT_CSV_END) {
        if (status == VT_CSV_IO_ERROR) {
            fprintf(stderr, "bench_populate: reading %s failed: %s\n", path, vt_csv_error(csv));
            result = -1;
            break;
        }
        if (status != VT_CSV_RECORD)
            continue;
        const char *time = vt_csv_field(csv, (size_t)c_time, NULL);
        const char *type = vt_csv_field(csv, (size_t)c_type, NULL);
        const char *product = vt_csv_field(csv, (size_t)c_product, NULL);
        const char *session = vt_csv_field(csv, (size_t)c_session, NULL);
        const char *user = c_user >= 0 ? vt_csv_field(csv, (size_t)c_user, NULL) : NULL;
        const char *price = c_price >= 0 ? vt_csv_field(csv, (size_t)c_price, NULL) : NULL;
        enum record_type t;
        if (time == NULL || type == NULL || product == NULL || session == NULL ||
            session[0] == '\0' || product[0] == '\0' || parse_type(type, &t) != 0)
            continue;

        struct row *grown = grow(*rows, capacity, *n, sizeof **rows);
        if (grown == NULL) {
            result = -1;
            break;
        }
        *rows = grown;
        struct row *r = &(*rows)[*n];
        r->session = strdup(session);
        r->time = strdup(time);
        r->product = strdup(product);
        r->type = t;
        if (price == NULL || vt_parse_double(price, 0, 1e9, &r->price) != 0)
            r->price = -1;
        r->has_user = user != NULL && user[0] != '\0';
        r->order = *n;
        if (r->session == NULL || r->time == NULL || r->product == NULL) {
            result = -1;
            break;
        }
        (*n)++;
    }
    vt_csv_close(csv);
    fclose(in);
    return result;
}

static int compare_rows(const void *a, const void *b)
{
    const struct row *x = a, *y = b;
    int c = strcmp(x->session, y->session);

    if (c != 0)
        return c;
    return (x->order > y->order) - (x->order < y->order);
}

/* Index of name among names[0 .. n), or n when it is not there. */
static size_t find_name(const char *const *names, size_t n, const char *name)
{
    size_t i = 0;

    while (i < n && strcmp(names[i], name) != 0)
        i++;
    return i;
}

/* Group the rows, sorted by session and input order, into shapes. */
static int build_shapes(struct row *rows, size_t n_rows, const struct vt_catalog *cat,
                        struct shapes *s)
{
    size_t cap_shapes = 0, cap_records = 0, cap_items = 0, cap_slots = 0, cap_names = 0;
    const char **names = NULL;
    void *grown;

    memset(s, 0, sizeof *s);
    qsort(rows, n_rows, sizeof *rows, compare_rows);
    for (size_t i = 0; i < n_rows;) {
        size_t end = i;
        while (end < n_rows && strcmp(rows[end].session, rows[i].session) == 0)
            end++;

        if ((grown = grow(s->items, &cap_shapes, s->n, sizeof *s->items)) == NULL)
            return -1;
        s->items = grown;
        struct shape *shape = &s->items[s->n++];
        *shape = (struct shape){.first_record = s->n_records,
                                .first_slot = s->n_slot_products,
                                .has_user = rows[i].has_user};
        size_t n_names = 0;

        for (size_t j = i; j < end; j++) {
            bool same_record = j > i && rows[j].type == rows[j - 1].type &&
                               strcmp(rows[j].time, rows[j - 1].time) == 0 &&
                               s->records[s->n_records - 1].n < VT_EVENT_ITEMS_MAX;
            if (!same_record) {
                if ((grown = grow(s->records, &cap_records, s->n_records, sizeof *s->records)) ==
                    NULL)
                    return -1;
                s->records = grown;
                s->records[s->n_records++] =
                    (struct record){.type = rows[j].type, .first = (uint32_t)s->n_slot_items};
                shape->n_records++;
            }

            size_t slot = find_name(names, n_names, rows[j].product);
            if (slot == n_names) {
                if ((grown = grow(names, &cap_names, n_names, sizeof *names)) == NULL)
                    return -1;
                names = grown;
                names[n_names++] = rows[j].product;
                size_t cap = cap_slots;
                if ((grown = grow(s->slot_product, &cap_slots, s->n_slot_products,
                                  sizeof *s->slot_product)) == NULL)
                    return -1;
                s->slot_product = grown;
                if ((grown = grow(s->slot_price, &cap, s->n_slot_products,
                                  sizeof *s->slot_price)) == NULL)
                    return -1;
                s->slot_price = grown;
                s->slot_price[s->n_slot_products] = rows[j].price;
                s->slot_product[s->n_slot_products++] =
                    vt_catalog_find(cat, rows[j].product, strlen(rows[j].product));
                shape->n_slots++;
            }
            if ((grown = grow(s->slots, &cap_items, s->n_slot_items, sizeof *s->slots)) == NULL)
                return -1;
            s->slots = grown;
            s->slots[s->n_slot_items++] = (uint32_t)slot;
            s->records[s->n_records - 1].n++;
        }
        i = end;
    }
    free(names);
    return 0;
}

/* A product of the whole catalog, skewed towards the popular ones. */
static uint32_t pick_popular(struct generator *g)
{
    size_t n;
    const uint32_t *list = vt_catalog_popular(g->cat, &n);

    return list[bench_rng_skewed(&g->rng, (long)n)];
}

/* A product among the first `below` catalog lines, uniformly. */
static uint32_t pick_first(struct generator *g, size_t below)
{
    return (uint32_t)bench_rng_below(&g->rng, (long)below);
}

/* A catalog product like the real product `real`: from its most specific category. */
static uint32_t pick_like(struct generator *g, uint32_t real)
{
    if (real != VT_CATALOG_NONE) {
        const struct vt_product *p = vt_catalog_get(g->cat, real);
        size_t n = 0;
        const uint32_t *list =
            p->n_categories > 0
                ? vt_catalog_by_category(g->cat, p->categories[p->n_categories - 1], &n)
                : NULL;
        if (n > 0)
            return list[bench_rng_skewed(&g->rng, (long)n)];
    }
    return pick_popular(g);
}

static bool contains(const uint32_t *items, size_t n, uint32_t x)
{
    for (size_t i = 0; i < n; i++) {
        if (items[i] == x)
            return true;
    }
    return false;
}

static void close_session(struct open_session *os)
{
    free(os->records);
    free(os->products);
    free(os->prices);
    memset(os, 0, sizeof *os);
}

static int open_typical(struct generator *g, struct open_session *os)
{
    const struct shapes *s = g->shapes;
    const struct shape *shape = &s->items[bench_rng_below(&g->rng, (long)s->n)];
    const struct record *first = &s->records[shape->first_record];
    const struct record *last = &first[shape->n_records - 1];
    size_t n_items = last->first + last->n - first->first;
    uint32_t *mapping = malloc(shape->n_slots * sizeof *mapping);

    os->records = malloc(shape->n_records * sizeof *os->records);
    os->products = malloc(n_items * sizeof *os->products);
    os->prices = malloc(n_items * sizeof *os->prices);
    if (mapping == NULL || os->records == NULL || os->products == NULL || os->prices == NULL) {
        free(mapping);
        return -1;
    }
    for (uint32_t k = 0; k < shape->n_slots; k++)
        mapping[k] = pick_like(g, s->slot_product[shape->first_slot + k]);

    for (uint32_t r = 0; r < shape->n_records; r++) {
        os->records[r] =
            (struct record){.type = first[r].type, .first = os->n_products, .n = first[r].n};
        for (uint32_t k = 0; k < first[r].n; k++) {
            uint32_t slot = s->slots[first[r].first + k];
            const struct vt_product *p = vt_catalog_get(g->cat, mapping[slot]);

            /* The catalog's price, else the real row's, as a shop sends a price with most
             * events. */
            os->prices[os->n_products] =
                p->price >= 0 ? p->price : s->slot_price[shape->first_slot + slot];
            os->products[os->n_products++] = mapping[slot];
        }
    }
    os->n_records = shape->n_records;
    os->has_user = shape->has_user;
    free(mapping);
    return 0;
}

/* Append one record of n products to a near-cap session. Products are drawn among the
 * first `below` catalog lines, distinct from the products of the session's records of
 * this type so far (from `distinct_from` on), and for views of distinct brands where
 * DISTINCT_TRIES draws allow. */
static void add_heavy_record(struct generator *g, struct open_session *os, enum record_type type,
                             uint32_t n, size_t below, uint32_t distinct_from)
{
    struct record *r = &os->records[os->n_records++];

    *r = (struct record){.type = type, .first = os->n_products, .n = n};
    for (uint32_t k = 0; k < n; k++) {
        uint32_t product = pick_first(g, below);

        for (int tries = 0; tries < DISTINCT_TRIES; tries++) {
            bool repeated =
                contains(&os->products[distinct_from], os->n_products - distinct_from, product);
            if (!repeated && type == REC_VIEW) {
                uint32_t brand = vt_catalog_get(g->cat, product)->brand;
                for (uint32_t m = distinct_from; m < os->n_products && !repeated; m++)
                    repeated = vt_catalog_get(g->cat, os->products[m])->brand == brand;
            }
            if (!repeated)
                break;
            product = pick_first(g, below);
        }
        os->prices[os->n_products] = vt_catalog_get(g->cat, product)->price;
        os->products[os->n_products++] = product;
    }
}

static int open_heavy(struct generator *g, struct open_session *os)
{
    size_t below = vt_catalog_size(g->cat);

    if ((size_t)g->o->heavy_products < below)
        below = (size_t)g->o->heavy_products;
    os->records = malloc(HEAVY_RECORDS * sizeof *os->records);
    os->products = malloc(HEAVY_ITEMS * sizeof *os->products);
    os->prices = malloc(HEAVY_ITEMS * sizeof *os->prices);
    if (os->records == NULL || os->products == NULL || os->prices == NULL)
        return -1;

    for (int i = 0; i < HEAVY_VIEWS; i++)
        add_heavy_record(g, os, REC_VIEW, 1, below, 0);
    uint32_t start = os->n_products;
    for (int i = 0; i < HEAVY_IMPRESSIONS; i++)
        add_heavy_record(g, os, REC_IMPRESSION, HEAVY_IMPRESSION_ITEMS, below, start);
    start = os->n_products;
    for (int i = 0; i < HEAVY_CLICKS; i++)
        add_heavy_record(g, os, REC_CLICK, 1, below, start);
    start = os->n_products;
    for (int i = 0; i < HEAVY_PURCHASES; i++)
        add_heavy_record(g, os, REC_PURCHASE, HEAVY_PURCHASE_ITEMS, below, start);
    /* Carts after the purchases, distinct from what was bought, so that the cart ends full. */
    for (int i = 0; i < HEAVY_CARTS; i++)
        add_heavy_record(g, os, REC_CART, 1, below, start);
    os->has_user = true;
    return 0;
}

static void session_id(const struct generator *g, const struct open_session *os, char *out,
                       size_t size)
{
    snprintf(out, size, "%s-%s-%07ld", g->o->tag, os->heavy ? "cap" : "t", os->number);
}

/* Open the next session in os, or leave it inactive when all are written. */
static int open_next(struct generator *g, struct open_session *os)
{
    if (g->next_session >= g->o->sessions)
        return 0;
    os->number = g->next_session++;
    os->heavy = g->o->heavy_every > 0 && os->number % g->o->heavy_every == 0;
    if ((os->heavy ? open_heavy(g, os) : open_typical(g, os)) != 0)
        return -1;
    os->active = true;

    char id[VT_ID_MAX + 1];
    session_id(g, os, id, sizeof id);
    FILE *ids = os->heavy ? g->ids_heavy : g->ids_typical;
    long *written = os->heavy ? &g->ids_heavy_written : &g->ids_typical_written;
    if (ids != NULL && *written < g->o->ids_max) {
        fprintf(ids, "%s\n", id);
        (*written)++;
    }
    if (os->heavy)
        g->heavy++;
    else
        g->typical++;
    return 0;
}

static int add_product(struct generator *g, cJSON *products, uint32_t index, double price,
                       int position, double *value)
{
    const struct vt_product *p = vt_catalog_get(g->cat, index);
    cJSON *item = cJSON_CreateObject();

    if (item == NULL || !cJSON_AddItemToArray(products, item) ||
        cJSON_AddStringToObject(item, "id", p->id) == NULL ||
        cJSON_AddNumberToObject(item, "quantity", 1) == NULL)
        return -1;
    if (price >= 0) {
        if (cJSON_AddNumberToObject(item, "price", price) == NULL)
            return -1;
        *value += price;
    }
    if (position > 0 && cJSON_AddNumberToObject(item, "position", position) == NULL)
        return -1;
    return 0;
}

/* Write the next record of os as one canonical event line. */
static int emit_record(struct generator *g, struct open_session *os)
{
    const struct record *r = &os->records[os->next++];
    char id[VT_ID_MAX + 1];
    char other[VT_ID_MAX + 32];
    double value = 0;
    int result = -1;

    session_id(g, os, id, sizeof id);
    cJSON *ev = cJSON_CreateObject();
    if (ev == NULL || cJSON_AddStringToObject(ev, "type", type_names[r->type]) == NULL ||
        cJSON_AddStringToObject(ev, "session_id", id) == NULL ||
        cJSON_AddNumberToObject(ev, "ts", (double)(g->start_ms + g->records * STEP_MS)) == NULL)
        goto done;
    if (os->has_user) {
        snprintf(other, sizeof other, "%s-u-%07ld", g->o->tag, os->number);
        if (cJSON_AddStringToObject(ev, "user_id", other) == NULL)
            goto done;
    }
    if (r->type == REC_IMPRESSION || r->type == REC_CLICK) {
        if (cJSON_AddStringToObject(ev, "placement", r->type == REC_CLICK ? "reco" : "home") ==
            NULL)
            goto done;
    }

    cJSON *products = cJSON_AddArrayToObject(ev, "products");
    if (products == NULL)
        goto done;
    for (uint32_t k = 0; k < r->n; k++) {
        int position = 0;
        if (r->type == REC_IMPRESSION)
            position = (int)k + 1;
        else if (r->type == REC_CLICK)
            position = 1 + (int)bench_rng_below(&g->rng, 10);
        if (add_product(g, products, os->products[r->first + k], os->prices[r->first + k], position,
                        &value) != 0)
            goto done;
    }
    if (r->type == REC_PURCHASE) {
        snprintf(other, sizeof other, "%s-%u", id, os->next);
        if (cJSON_AddStringToObject(ev, "order_id", other) == NULL ||
            cJSON_AddNumberToObject(ev, "order_value", value) == NULL)
            goto done;
    }

    char *text = cJSON_PrintUnformatted(ev);
    if (text == NULL)
        goto done;
    if (fprintf(g->out, "%s\n", text) >= 0)
        result = 0;
    cJSON_free(text);
    g->records++;
done:
    cJSON_Delete(ev);
    return result;
}

static int generate(struct generator *g)
{
    static struct open_session open[OPEN_SESSIONS];
    long active = 0;

    for (int k = 0; k < OPEN_SESSIONS; k++) {
        if (open_next(g, &open[k]) != 0)
            return -1;
        active += open[k].active;
    }
    while (active > 0) {
        struct open_session *os = &open[bench_rng_below(&g->rng, OPEN_SESSIONS)];

        if (!os->active)
            continue;
        if (emit_record(g, os) != 0)
            return -1;
        if (os->next < os->n_records)
            continue;
        close_session(os);
        active--;
        if (open_next(g, os) != 0)
            return -1;
        active += os->active;
    }
    return 0;
}

static FILE *open_ids(const char *prefix, const char *suffix)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof path, "%s.%s", prefix, suffix);
    if ((f = fopen(path, "w")) == NULL)
        fprintf(stderr, "bench_populate: cannot write %s: %s\n", path, strerror(errno));
    return f;
}

int main(int argc, char **argv)
{
    struct options o;
    struct vt_config cfg;
    char err[512];

    if (parse_options(argc, argv, &o) != 0) {
        usage(stderr);
        return 2;
    }
    vt_log_threshold = VT_LOG_WARN;
    vt_config_defaults(&cfg);

    struct vt_catalog *cat = vt_catalog_load(o.catalog, &cfg, err, sizeof err);
    if (cat == NULL) {
        fprintf(stderr, "bench_populate: %s\n", err);
        return 1;
    }
    if (vt_catalog_stats(cat)->products == 0) {
        fprintf(stderr, "bench_populate: the catalog %s has no products\n", o.catalog);
        return 1;
    }

    struct row *rows = NULL;
    size_t n_rows = 0, cap_rows = 0;
    for (size_t i = 0; i < o.n_events; i++) {
        if (read_rows(o.events[i], &rows, &n_rows, &cap_rows) != 0)
            return 1;
    }
    struct shapes shapes;
    if (build_shapes(rows, n_rows, cat, &shapes) != 0) {
        fprintf(stderr, "bench_populate: out of memory building the session shapes\n");
        return 1;
    }
    if (shapes.n == 0) {
        fprintf(stderr, "bench_populate: the events files have no usable rows\n");
        return 1;
    }

    struct generator g = {.o = &o,
                          .cat = cat,
                          .shapes = &shapes,
                          .rng = {o.seed},
                          .start_ms = vt_now_ms() - START_BEFORE_NOW_MS};
    g.out = fopen(o.output, "w");
    if (g.out == NULL) {
        fprintf(stderr, "bench_populate: cannot write %s: %s\n", o.output, strerror(errno));
        return 1;
    }
    if (o.ids_out != NULL && ((g.ids_typical = open_ids(o.ids_out, "typical")) == NULL ||
                              (g.ids_heavy = open_ids(o.ids_out, "heavy")) == NULL))
        return 1;
    if (generate(&g) != 0) {
        fprintf(stderr, "bench_populate: writing %s failed (or out of memory)\n", o.output);
        return 1;
    }
    if (fclose(g.out) != 0 || (g.ids_typical != NULL && fclose(g.ids_typical) != 0) ||
        (g.ids_heavy != NULL && fclose(g.ids_heavy) != 0)) {
        fprintf(stderr, "bench_populate: writing the output failed: %s\n", strerror(errno));
        return 1;
    }

    printf("result: sessions=%ld typical=%ld heavy=%ld records=%ld real_sessions=%zu "
           "real_records=%zu\n",
           o.sessions, g.typical, g.heavy, g.records, shapes.n, shapes.n_records);

    for (size_t i = 0; i < n_rows; i++) {
        free(rows[i].session);
        free(rows[i].time);
        free(rows[i].product);
    }
    free(rows);
    free(shapes.items);
    free(shapes.records);
    free(shapes.slots);
    free(shapes.slot_product);
    free(shapes.slot_price);
    vt_catalog_free(cat);
    return 0;
}
