/*
 * Unit tests of catalog topic records between catalog versions (service/live/pending.c):
 * which stock changes go in place at once, and which wait for the next version.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../service/live/live_internal.h"
#include "vitrine/catalog.h"
#include "vitrine/config.h"

static struct vt_config test_cfg;

static const char catalog_text[] = "{\"id\":\"a1\",\"name\":\"Rose water\",\"stock\":5}\n"
                                   "{\"id\":\"a2\",\"name\":\"Night cream\",\"stock\":3}\n";


static struct vt_catalog *load_catalog(void)
{
    char err[256] = "";

    vt_config_defaults(&test_cfg);
    FILE *in = fmemopen((void *)catalog_text, sizeof catalog_text - 1, "r");
    cr_assert_not_null(in);
    struct vt_catalog *cat = vt_catalog_load_stream(in, "test", &test_cfg, err, sizeof err);
    fclose(in);
    cr_assert_not_null(cat, "load failed: %s", err);
    return cat;
}


/* Feed one record (value NULL: tombstone) to the queue. */
static enum live_record_outcome record(struct live_pending *p, const struct vt_catalog *cat,
                                       const char *key, const char *value)
{
    struct vt_catalog_change c;
    char reason[256] = "";

    cr_assert_eq(vt_catalog_change_parse(key, strlen(key), value, value ? strlen(value) : 0, &c,
                                         reason, sizeof reason),
                 0, "record rejected: %s", reason);
    enum live_record_outcome outcome = live_pending_record(p, cat, &c);
    cr_assert_eq(c.fields, 0, "the change was not emptied");
    return outcome;
}


static int64_t stock_of(const struct vt_catalog *cat, const char *id)
{
    return vt_product_stock(vt_catalog_get(cat, vt_catalog_find(cat, id, strlen(id))));
}


/* Build the next version from the queue, as the updater does. */
static struct vt_catalog *next_version(const struct vt_catalog *cat, struct live_pending *p)
{
    char err[256] = "";
    struct vt_catalog *next = vt_catalog_apply(cat, p->changes, p->n, &test_cfg, NULL, err,
                                               sizeof err);

    cr_assert_not_null(next, "%s", err);
    live_pending_clear(p);
    return next;
}


Test(world_pending, stock_change_goes_in_place)
{
    struct vt_catalog *cat = load_catalog();
    struct live_pending p;

    live_pending_init(&p);
    cr_assert_eq(record(&p, cat, "a1", "{\"stock\":0}"), LIVE_RECORD_STOCK);
    cr_assert_eq(stock_of(cat, "a1"), 0, "the product is out of stock at once");
    cr_assert_eq(p.n, 0, "nothing waits for a version");

    /* Stock together with other fields: stock at once, the rest queued. */
    cr_assert_eq(record(&p, cat, "a2", "{\"stock\":7,\"price\":12}"), LIVE_RECORD_QUEUED);
    cr_assert_eq(stock_of(cat, "a2"), 7);
    cr_assert_eq(p.n, 1);
    cr_assert_eq(p.changes[0].fields, VT_FIELD_PRICE, "the queued change no longer sets stock");

    /* A record that changes nothing. */
    cr_assert_eq(record(&p, cat, "a1", "{}"), LIVE_RECORD_UNCHANGED);
    live_pending_free(&p);
    vt_catalog_free(cat);
}


Test(world_pending, new_product_waits_for_version)
{
    struct vt_catalog *cat = load_catalog();
    struct live_pending p;

    live_pending_init(&p);
    cr_assert_eq(record(&p, cat, "n1", "{\"name\":\"New\",\"stock\":4}"), LIVE_RECORD_QUEUED);
    cr_assert_eq(record(&p, cat, "n1", "{\"stock\":0}"), LIVE_RECORD_QUEUED,
                 "stock of a product not served yet waits with it");
    cr_assert_eq(p.n, 1, "one queued change per product");

    struct vt_catalog *next = next_version(cat, &p);
    cr_assert_eq(stock_of(next, "n1"), 0);
    cr_assert_str_eq(vt_catalog_get(next, 2)->name, "New");
    live_pending_free(&p);
    vt_catalog_free(cat);
    vt_catalog_free(next);
}


Test(world_pending, removal_stops_serving_at_once)
{
    struct vt_catalog *cat = load_catalog();
    struct live_pending p;

    live_pending_init(&p);
    cr_assert_eq(record(&p, cat, "a1", NULL), LIVE_RECORD_REMOVED);
    cr_assert_eq(stock_of(cat, "a1"), 0, "stock 0 until the next version removes it");

    /* After a queued removal, a stock record waits too, so the version shows the last
     * record and the current one keeps stock 0. */
    cr_assert_eq(record(&p, cat, "a1", "{\"stock\":9}"), LIVE_RECORD_QUEUED);
    cr_assert_eq(stock_of(cat, "a1"), 0);

    struct vt_catalog *next = next_version(cat, &p);
    const struct vt_product *a1 = vt_catalog_get(next, vt_catalog_find(next, "a1", 2));
    cr_assert_not(a1->removed);
    cr_assert_eq(vt_product_stock(a1), 9);
    cr_assert_str_eq(a1->name, "", "a record after a removal starts afresh");
    live_pending_free(&p);
    vt_catalog_free(cat);
    vt_catalog_free(next);
}


Test(world_pending, removal_of_unknown_or_removed_changes_nothing)
{
    struct vt_catalog *cat = load_catalog();
    struct live_pending p;

    live_pending_init(&p);
    cr_assert_eq(record(&p, cat, "zz", NULL), LIVE_RECORD_UNCHANGED);
    cr_assert_eq(p.n, 0);

    cr_assert_eq(record(&p, cat, "a2", NULL), LIVE_RECORD_REMOVED);
    struct vt_catalog *next = next_version(cat, &p);
    cr_assert_eq(record(&p, next, "a2", NULL), LIVE_RECORD_UNCHANGED);
    cr_assert_eq(record(&p, next, "a2", "{\"stock\":2}"), LIVE_RECORD_QUEUED,
                 "a removed product comes back only with the next version");
    cr_assert_eq(vt_catalog_find(next, "a2", 2), VT_CATALOG_NONE);
    cr_assert_eq(vt_product_stock(vt_catalog_get(next, vt_catalog_find(cat, "a2", 2))), 0);
    live_pending_free(&p);
    vt_catalog_free(cat);
    vt_catalog_free(next);
}


Test(world_pending, many_products_in_queue)
{
    struct vt_catalog *cat = load_catalog();
    struct live_pending p;
    char key[32], value[64];

    live_pending_init(&p);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 500; i++) {
            snprintf(key, sizeof key, "n%d", i);
            snprintf(value, sizeof value, "{\"popularity\":%d}", round * 1000 + i);
            cr_assert_eq(record(&p, cat, key, value), LIVE_RECORD_QUEUED);
        }
    }
    cr_assert_eq(p.n, 500, "changes of one product merge");

    struct vt_catalog *next = next_version(cat, &p);
    cr_assert_eq(vt_catalog_size(next), 502);
    cr_assert_float_eq(vt_catalog_get(next, vt_catalog_find(next, "n7", 2))->popularity, 1007,
                       1e-9);
    live_pending_free(&p);
    vt_catalog_free(cat);
    vt_catalog_free(next);
}
