/*
 * vitrine: the visitor key of an event.
 *
 * A visitor is a person across sessions, identified by a customer id or a user id that
 * the event carries (visitor.id_fields lists which, in order of preference). Ids that do
 * not identify one person, such as "0", "null" or an all-zero UUID, are blocked and never
 * link sessions (visitor.blocked lists them beyond the built-in forms). Both functions
 * only read cfg and the event, so any thread may call them.
 */
#ifndef VITRINE_VISITOR_H
#define VITRINE_VISITOR_H

#include <stdbool.h>

#include "vitrine/config.h"
#include "vitrine/event.h"
#include "vitrine/limits.h"

enum vt_visitor_pick {
    VT_VISITOR_NONE = 0, /* no listed field has a value, or visitors are off */
    VT_VISITOR_PICKED,
    VT_VISITOR_BLOCKED, /* every listed field with a value was blocked */
};

/* Choose the visitor key of an event: the first of cfg->visitor_fields whose value is
 * present and not blocked. NONE when no field has a value (or visitors are off), BLOCKED
 * when every present value was blocked. out gets the id ("" unless PICKED). *field gets
 * the field the id came from, or VT_VISITOR_FIELD_COUNT unless PICKED; field may be
 * NULL. */
enum vt_visitor_pick vt_visitor_pick(const struct vt_config *cfg, const struct vt_event *ev,
                                     char out[VT_ID_MAX + 1], enum vt_visitor_field *field);

/* True when id must never link sessions: it is empty or white space only, it consists
 * only of zeros and the separators - : . _ and space (such as
 * "00000000-0000-0000-0000-000000000000"), or it equals an entry of visitor.blocked after
 * trimming, without regard to ASCII case. */
bool vt_visitor_id_blocked(const struct vt_config *cfg, const char *id);

#endif
