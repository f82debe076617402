/*
 * vitrine: world versions and their read accessors (see include/vitrine/world.h).
 *
 * This file contains what readers and tests need. build.c turns aggregates into world parts,
 * publish.c publishes and reclaims versions, updater.c runs the updater thread.
 */
#include "vitrine/world.h"

#include <stdlib.h>

#include "live_internal.h"

const struct vt_product_list live_empty_list = {.n = 0};


const struct vt_product_list *vt_world_trending(const struct vt_world *w, uint32_t category,
                                                uint32_t brand)
{
    const struct vt_trending *t = w->trending;
    const struct vt_product_list *list = NULL;

    if (category != VT_CATALOG_NONE) {
        if (category < t->n_categories && t->by_category != NULL)
            list = t->by_category[category];
    } else if (brand != VT_CATALOG_NONE) {
        if (brand < t->n_brands && t->by_brand != NULL)
            list = t->by_brand[brand];
    } else {
        list = t->global;
    }
    return list != NULL ? list : &live_empty_list;
}


const struct vt_neighbors *vt_world_neighbors(const struct vt_world *w, uint32_t product)
{
    if (w->neighbors == NULL || product >= vt_catalog_size(w->catalog))
        return NULL;
    return w->neighbors[product];
}


struct vt_world *vt_world_new_static(const struct vt_catalog *cat)
{
    struct vt_world *w = calloc(1, sizeof *w);
    struct vt_trending *t = calloc(1, sizeof *t);

    if (w == NULL || t == NULL) {
        free(w);
        free(t);
        return NULL;
    }
    t->global = &live_empty_list;
    w->catalog = cat;
    w->trending = t;
    w->neighbors = NULL;
    w->aggregates_ms = -1;
    return w;
}


void vt_world_free(struct vt_world *w)
{
    if (w == NULL)
        return;
    live_trending_free((struct vt_trending *)w->trending);
    free(w);
}


static void free_list(const struct vt_product_list *list)
{
    if (list != NULL && list != &live_empty_list)
        free((void *)list);
}


void live_trending_free_shell(struct vt_trending *t)
{
    if (t == NULL)
        return;
    free_list(t->global);
    free(t);
}


void live_trending_free(struct vt_trending *t)
{
    if (t == NULL)
        return;
    free_list(t->global);
    for (size_t i = 0; t->by_category != NULL && i < t->n_categories; i++)
        free_list(t->by_category[i]);
    for (size_t i = 0; t->by_brand != NULL && i < t->n_brands; i++)
        free_list(t->by_brand[i]);
    free((void *)t->by_category);
    free((void *)t->by_brand);
    free(t);
}
