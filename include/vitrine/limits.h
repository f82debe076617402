/*
 * vitrine: size limits shared by every module.
 *
 * Every buffer in vitrine has a maximum. The values here bound what one event, one profile
 * and one HTTP response may hold; input longer than a limit is rejected or truncated as the
 * module that reads it documents.
 */
#ifndef VITRINE_LIMITS_H
#define VITRINE_LIMITS_H

/* Session, user and decision ids: 1 to 128 bytes of [A-Za-z0-9._:@-] (see vt_id_valid). */
#define VT_ID_MAX 128

/* Product ids. Mapp limits one product id to 110 characters; we accept up to 128. */
#define VT_PRODUCT_ID_MAX 128

/* Brand, category and price-tier names, in bytes of UTF-8. Longer names are truncated at a
 * character boundary. */
#define VT_NAME_MAX 96

/* Products in one event. Mapp custom streams carry at most 25; the root stream and the
 * canonical format may carry more, and the rest is dropped and counted. */
#define VT_EVENT_ITEMS_MAX 50

/* Categories kept per product in one event or catalog entry (a path such as
 * "makeup", "makeup.eyes", "makeup.eyes.mascara" uses three). */
#define VT_ITEM_CATEGORIES_MAX 4

/* Short free-text fields of an event (page name, referrer, campaign, search phrase). */
#define VT_TEXT_MAX 256

/* Placement names such as "home" or "product". */
#define VT_PLACEMENT_MAX 32

/* Largest Kafka record value that is decoded; larger ones go to the dead-letter topic. */
#define VT_RECORD_MAX (1024 * 1024)

/* Entries returned per ranked profile list (categories, brands, price tiers). */
#define VT_PROFILE_TOP_MAX 32

/* Recently viewed products kept per profile. */
#define VT_PROFILE_RECENT_MAX 64

/* Cart lines and purchased products kept per profile. */
#define VT_PROFILE_CART_MAX 100
#define VT_PROFILE_PURCHASED_MAX 100

/* Products in one recommendation response, and ids a caller may exclude. */
#define VT_REC_LIMIT_MAX 100
#define VT_REC_EXCLUDE_MAX 100

/* Categories or brands one request may restrict to (category=a,b,c). */
#define VT_REC_FILTER_MAX 20

/* Product ids one rerank request may carry. */
#define VT_RERANK_MAX 500

/* Products a profile remembers as shown to the session (for rotation). */
#define VT_PROFILE_SEEN_MAX 100

#endif
