/*
 * vitrine: enrichment of decoded events from the catalog (see include/vitrine/enrich.h).
 */
#include "vitrine/enrich.h"

#include <string.h>

#include "vitrine/profile.h"
#include "vitrine/util.h"


/* Gender from the configured keywords in the event's own category names of a product that
 * is missing from the catalog. Catalog products get theirs at load (vt_catalog_load), so
 * that ingest and the recommender's gender filter agree. */
static enum vt_gender gender_from_event_categories(const struct vt_event_item *item,
                                                   const struct vt_config *cfg)
{
    enum vt_gender g = VT_GENDER_UNKNOWN;

    for (uint8_t i = 0; i < item->n_categories && g == VT_GENDER_UNKNOWN; i++)
        g = vt_gender_from_text(cfg, item->categories[i], strlen(item->categories[i]));
    return g;
}


/* Copy the catalog's brand, categories, gender and price into the fields the event left
 * empty. The catalog's gender already includes what its keywords give. */
static void fill_from_catalog(struct vt_event_item *item, const struct vt_product *p,
                              const struct vt_catalog *cat)
{
    bool own_categories = item->n_categories > 0;

    if (item->brand[0] == '\0' && p->brand != VT_CATALOG_NONE) {
        const char *brand = vt_catalog_brand_name(cat, p->brand);
        if (brand != NULL)
            vt_copy_utf8(item->brand, sizeof item->brand, brand, strlen(brand));
    }

    if (!own_categories) {
        for (uint8_t i = 0; i < p->n_categories && i < VT_ITEM_CATEGORIES_MAX; i++) {
            const char *name = vt_catalog_category_name(cat, p->categories[i]);
            if (name == NULL)
                continue;
            vt_copy_utf8(item->categories[item->n_categories],
                         sizeof item->categories[item->n_categories], name, strlen(name));
            item->n_categories++;
        }
    }

    if (item->gender == VT_GENDER_UNKNOWN)
        item->gender = p->gender;
    if (item->price < 0 && p->price >= 0)
        item->price = p->price;
}


/*
 * A product missing from the catalog keeps what the event carried, but still gets a gender
 * from the keywords in its event category names, because those are known here too. A
 * catalog product with a gender the event left unknown takes the catalog's, and no
 * keywords apply to it here.
 */
size_t vt_event_enrich(struct vt_event *ev, const struct vt_catalog *cat,
                       const struct vt_config *cfg)
{
    size_t found = 0;

    for (size_t i = 0; i < ev->n_items && i < VT_EVENT_ITEMS_MAX; i++) {
        struct vt_event_item *item = &ev->items[i];
        size_t id_length = strnlen(item->id, sizeof item->id);
        uint32_t index = vt_catalog_find(cat, item->id, id_length);
        const struct vt_product *p = vt_catalog_get(cat, index);

        if (p != NULL) {
            found++;
            fill_from_catalog(item, p, cat);
        } else if (item->gender == VT_GENDER_UNKNOWN) {
            item->gender = gender_from_event_categories(item, cfg);
        }
    }
    return found;
}
