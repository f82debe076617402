/*
 * vitrine: enrichment of decoded events from the catalog.
 *
 * Fills what a record left out: brand, categories, gender target and unit price of each
 * product come from the catalog when the record did not carry them (the catalog already
 * inferred missing genders from keywords at load). A product that is not in the catalog
 * and of unknown gender gets one from the configured keywords in the event's own category
 * names. Runs in the ingest thread; reads the immutable catalog.
 */
#ifndef VITRINE_ENRICH_H
#define VITRINE_ENRICH_H

#include "vitrine/catalog.h"
#include "vitrine/config.h"
#include "vitrine/event.h"

/* Enrich ev in place. Returns the number of products found in the catalog. */
size_t vt_event_enrich(struct vt_event *ev, const struct vt_catalog *cat,
                       const struct vt_config *cfg);

#endif
