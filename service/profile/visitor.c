/*
 * vitrine: the visitor key of an event (see include/vitrine/visitor.h).
 */
#include "vitrine/visitor.h"

#include <string.h>

#include "vitrine/util.h"

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}


/* True when s[0..len) consists only of '0' and the separators - : . _ and space. An id
 * made of separators alone counts too, because it identifies no person either. */
static bool only_zeros(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '0' && strchr("-:._ ", s[i]) == NULL)
            return false;
    }
    return true;
}


bool vt_visitor_id_blocked(const struct vt_config *cfg, const char *id)
{
    size_t len = strlen(id);

    while (len > 0 && is_blank(*id)) {
        id++;
        len--;
    }
    while (len > 0 && is_blank(id[len - 1]))
        len--;

    if (len == 0 || only_zeros(id, len))
        return true;
    for (size_t i = 0; i < cfg->n_visitor_blocked; i++) {
        const char *entry = cfg->visitor_blocked_values[i];
        if (strlen(entry) == len && vt_strncaseeq(entry, id, len))
            return true;
    }
    return false;
}


static const char *field_value(const struct vt_event *ev, enum vt_visitor_field field)
{
    switch (field) {
    case VT_VISITOR_FIELD_CUSTOMER_ID:
        return ev->customer_id;
    case VT_VISITOR_FIELD_USER_ID:
        return ev->user_id;
    default:
        return "";
    }
}


enum vt_visitor_pick vt_visitor_pick(const struct vt_config *cfg, const struct vt_event *ev,
                                     char out[VT_ID_MAX + 1], enum vt_visitor_field *field)
{
    bool present = false;

    out[0] = '\0';
    if (field != NULL)
        *field = VT_VISITOR_FIELD_COUNT;

    for (size_t i = 0; i < cfg->n_visitor_fields; i++) {
        const char *value = field_value(ev, cfg->visitor_fields[i]);

        /* The event stores an absent id as "". */
        if (value[0] == '\0')
            continue;
        present = true;
        if (vt_visitor_id_blocked(cfg, value))
            continue;
        vt_strlcpy(out, value, VT_ID_MAX + 1);
        if (field != NULL)
            *field = cfg->visitor_fields[i];
        return VT_VISITOR_PICKED;
    }
    return present ? VT_VISITOR_BLOCKED : VT_VISITOR_NONE;
}
