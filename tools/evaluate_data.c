/*
 * vitrine-evaluate: loading the recorded sessions and splitting them by time (see
 * tools/evaluate_data.h).
 */
#include "evaluate_data.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vitrine/util.h"

/* Upper bound of the string pool, so that a huge input fails cleanly. */
#define POOL_MAX ((size_t)1 << 30)


/* ---- interned strings ---------------------------------------------------------------- */

void vt_eval_names_init(struct vt_eval_names *names)
{
    memset(names, 0, sizeof *names);
}


void vt_eval_names_free(struct vt_eval_names *names)
{
    free(names->pool);
    free(names->offsets);
    free(names->slots);
    memset(names, 0, sizeof *names);
}


const char *vt_eval_names_get(const struct vt_eval_names *names, uint32_t index)
{
    return index < names->n ? names->pool + names->offsets[index] : "";
}


/* Slot of s[0..len): the slot holding it, or the empty slot where it would go. */
static size_t names_slot(const struct vt_eval_names *names, const char *s, size_t len)
{
    size_t mask = names->n_slots - 1;
    size_t j = vt_hash64(s, len) & mask;

    while (names->slots[j] != 0) {
        const char *other = names->pool + names->offsets[names->slots[j] - 1];

        if (strncmp(other, s, len) == 0 && other[len] == '\0')
            return j;
        j = (j + 1) & mask;
    }
    return j;
}


uint32_t vt_eval_names_find(const struct vt_eval_names *names, const char *s, size_t len)
{
    size_t j;

    if (names->n_slots == 0)
        return VT_EVAL_NONE;
    j = names_slot(names, s, len);
    return names->slots[j] != 0 ? names->slots[j] - 1 : VT_EVAL_NONE;
}


static int names_grow_index(struct vt_eval_names *names)
{
    size_t n_slots = names->n_slots > 0 ? names->n_slots * 2 : 1024;
    uint32_t *old = names->slots;

    names->slots = calloc(n_slots, sizeof *names->slots);
    if (names->slots == NULL) {
        names->slots = old;
        return -1;
    }
    names->n_slots = n_slots;
    for (size_t i = 0; i < names->n; i++) {
        const char *s = names->pool + names->offsets[i];
        size_t j = names_slot(names, s, strlen(s));

        names->slots[j] = (uint32_t)i + 1;
    }
    free(old);
    return 0;
}


/* Make room for one more string of len bytes. Returns 0, or -1 when out of memory or past
 * POOL_MAX. */
static int names_reserve(struct vt_eval_names *names, size_t len)
{
    size_t need = names->pool_len + len + 1;

    if (need > POOL_MAX || names->n >= UINT32_MAX - 1)
        return -1;
    if (need > names->pool_cap) {
        size_t cap = names->pool_cap > 0 ? names->pool_cap * 2 : 65536;
        char *pool;

        while (cap < need)
            cap *= 2;
        pool = realloc(names->pool, cap);
        if (pool == NULL)
            return -1;
        names->pool = pool;
        names->pool_cap = cap;
    }
    if (names->n == names->cap) {
        size_t cap = names->cap > 0 ? names->cap * 2 : 1024;
        uint32_t *offsets = realloc(names->offsets, cap * sizeof *offsets);

        if (offsets == NULL)
            return -1;
        names->offsets = offsets;
        names->cap = cap;
    }
    if ((names->n + 1) * 2 > names->n_slots)
        return names_grow_index(names);
    return 0;
}


int vt_eval_names_intern(struct vt_eval_names *names, const char *s, size_t len,
                         uint32_t *index)
{
    size_t j;

    if (names_reserve(names, len) != 0)
        return -1;
    j = names_slot(names, s, len);
    if (names->slots[j] != 0) {
        *index = names->slots[j] - 1;
        return 0;
    }

    names->offsets[names->n] = (uint32_t)names->pool_len;
    memcpy(names->pool + names->pool_len, s, len);
    names->pool[names->pool_len + len] = '\0';
    names->pool_len += len + 1;
    names->slots[j] = (uint32_t)names->n + 1;
    *index = (uint32_t)names->n;
    names->n++;
    return 0;
}


/* ---- the data set -------------------------------------------------------------------- */

void vt_eval_dataset_init(struct vt_eval_dataset *d)
{
    memset(d, 0, sizeof *d);
    vt_eval_names_init(&d->session_ids);
    vt_eval_names_init(&d->item_ids);
    vt_eval_names_init(&d->user_ids);
    d->cut_ms = INT64_MAX;
}


void vt_eval_dataset_free(struct vt_eval_dataset *d)
{
    vt_eval_names_free(&d->session_ids);
    vt_eval_names_free(&d->item_ids);
    vt_eval_names_free(&d->user_ids);
    free(d->events);
    free(d->sessions);
    free(d->interactions);
    free(d->item_in_train);
    memset(d, 0, sizeof *d);
}


const char *vt_eval_kind_name(enum vt_eval_kind kind)
{
    switch (kind) {
    case VT_EVAL_VIEW:
        return "view";
    case VT_EVAL_CART:
        return "cart";
    case VT_EVAL_REMOVE:
        return "remove_from_cart";
    case VT_EVAL_PURCHASE:
        return "purchase";
    }
    return "unknown";
}


/* Field col of the current record without surrounding spaces, or "" when absent. */
static const char *field(const struct vt_csv *reader, int col, size_t *len)
{
    size_t n = 0;
    const char *s = col >= 0 ? vt_csv_field(reader, (size_t)col, &n) : NULL;

    if (s == NULL) {
        *len = 0;
        return "";
    }
    while (n > 0 && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    *len = n;
    return s;
}


/* Read the header and find the columns in names (NULL-terminated); the first n_required
 * must exist. Returns 0, or -1 with d->error naming the file and the first missing column. */
static int read_columns(struct vt_eval_dataset *d, struct vt_csv *reader, const char *name,
                        const char *const *names, size_t n_required, int *cols)
{
    enum vt_csv_status status = vt_csv_read_header(reader);

    if (status == VT_CSV_END) {
        snprintf(d->error, sizeof d->error, "%s: the file is empty, expected a header row",
                 name);
        return -1;
    }
    if (status != VT_CSV_RECORD) {
        snprintf(d->error, sizeof d->error, "%s: cannot read the header: %s", name,
                 vt_csv_error(reader));
        return -1;
    }
    for (size_t i = 0; names[i] != NULL; i++) {
        cols[i] = vt_csv_column(reader, names[i]);
        if (i < n_required && cols[i] < 0) {
            snprintf(d->error, sizeof d->error,
                     "%s: the header has no column '%s'; is this the right file for this "
                     "option?",
                     name, names[i]);
            return -1;
        }
    }
    return 0;
}


/* Read the next data row. Returns 1 for a row, 0 at the end, -1 on a read error (d->error
 * set). Malformed records are counted and skipped. */
static int next_row(struct vt_eval_dataset *d, struct vt_csv *reader, const char *name)
{
    for (;;) {
        enum vt_csv_status status = vt_csv_next(reader);

        if (status == VT_CSV_END)
            return 0;
        if (status == VT_CSV_IO_ERROR) {
            snprintf(d->error, sizeof d->error, "%s: %s", name, vt_csv_error(reader));
            return -1;
        }
        d->rows++;
        if (status == VT_CSV_RECORD)
            return 1;
        vt_counts_add(&d->skipped, "bad_record", 1);
    }
}


/* Append an event. Returns 0, or -1 with d->error set when out of memory. */
static int add_event(struct vt_eval_dataset *d, const struct vt_eval_event *event)
{
    if (d->n_events == d->events_cap) {
        size_t cap = d->events_cap > 0 ? d->events_cap * 2 : 4096;
        struct vt_eval_event *events = realloc(d->events, cap * sizeof *events);

        if (events == NULL) {
            snprintf(d->error, sizeof d->error, "out of memory after %zu events", d->n_events);
            return -1;
        }
        d->events = events;
        d->events_cap = cap;
    }
    d->events[d->n_events++] = *event;
    return 0;
}


/* Intern the session, item and user of a row into *event. Returns 1 when done, 0 when the
 * row is skipped (counted by reason), -1 when out of memory (d->error set). */
static int intern_row_ids(struct vt_eval_dataset *d, const char *session, size_t session_len,
                          const char *item, size_t item_len, const char *user,
                          size_t user_len, struct vt_eval_event *event)
{
    if (session_len == 0) {
        vt_counts_add(&d->skipped, "missing_session", 1);
        return 0;
    }
    if (!vt_id_valid(session, session_len)) {
        vt_counts_add(&d->skipped, "invalid_session", 1);
        return 0;
    }
    if (item_len == 0) {
        vt_counts_add(&d->skipped, "missing_item", 1);
        return 0;
    }
    if (!vt_id_valid(item, item_len)) {
        vt_counts_add(&d->skipped, "invalid_item", 1);
        return 0;
    }

    event->user = VT_EVAL_NONE;
    if (vt_eval_names_intern(&d->session_ids, session, session_len, &event->session) != 0 ||
        vt_eval_names_intern(&d->item_ids, item, item_len, &event->item) != 0)
        goto out_of_memory;
    /* Diginetica writes NA for anonymous sessions; an invalid user id only loses the user. */
    if (user_len > 0 && !(user_len == 2 && memcmp(user, "NA", 2) == 0) &&
        vt_id_valid(user, user_len) &&
        vt_eval_names_intern(&d->user_ids, user, user_len, &event->user) != 0)
        goto out_of_memory;
    return 1;

out_of_memory:
    snprintf(d->error, sizeof d->error, "out of memory for the ids after %zu events",
             d->n_events);
    return -1;
}


int vt_eval_load_diginetica(struct vt_eval_dataset *d, struct vt_csv *reader,
                            const char *name)
{
    enum { COL_SESSION, COL_ITEM, COL_TIMEFRAME, COL_DATE, COL_USER };
    static const char *const names[] = {"session_id", "item_id", "timeframe", "eventdate",
                                        "user_id", NULL};
    int cols[5];
    int more;

    if (read_columns(d, reader, name, names, 4, cols) != 0)
        return -1;

    while ((more = next_row(d, reader, name)) == 1) {
        struct vt_eval_event event = {.price = -1, .kind = VT_EVAL_VIEW};
        size_t session_len, item_len, user_len, timeframe_len, date_len;
        const char *session = field(reader, cols[COL_SESSION], &session_len);
        const char *item = field(reader, cols[COL_ITEM], &item_len);
        const char *user = field(reader, cols[COL_USER], &user_len);
        const char *timeframe = field(reader, cols[COL_TIMEFRAME], &timeframe_len);
        const char *date = field(reader, cols[COL_DATE], &date_len);
        char number[24];
        int rc;

        if (vt_diginetica_time(date, date_len, timeframe, timeframe_len, &event.time_ms) != 0) {
            vt_counts_add(&d->skipped, "invalid_time", 1);
            continue;
        }
        /* The session's events are ordered by timeframe, the time since the session began,
         * which vt_diginetica_time has just checked to be a number of fewer than 24 bytes. */
        memcpy(number, timeframe, timeframe_len);
        number[timeframe_len] = '\0';
        if (vt_parse_int64(number, 0, INT64_MAX, &event.order) != 0) {
            vt_counts_add(&d->skipped, "invalid_time", 1);
            continue;
        }

        rc = intern_row_ids(d, session, session_len, item, item_len, user, user_len, &event);
        if (rc < 0)
            return -1;
        if (rc == 0)
            continue;
        event.row = (uint32_t)d->rows;
        if (add_event(d, &event) != 0)
            return -1;
    }
    return more < 0 ? -1 : 0;
}


/* The kind of a REES46 event_type, or -1 for another type. */
static int rees46_kind(const char *s, size_t len)
{
    static const struct {
        const char *name;
        enum vt_eval_kind kind;
    } kinds[] = {
        {"view", VT_EVAL_VIEW},
        {"cart", VT_EVAL_CART},
        {"remove_from_cart", VT_EVAL_REMOVE},
        {"purchase", VT_EVAL_PURCHASE},
    };

    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (strlen(kinds[i].name) == len && memcmp(kinds[i].name, s, len) == 0)
            return (int)kinds[i].kind;
    }
    return -1;
}


int vt_eval_load_rees46(struct vt_eval_dataset *d, struct vt_csv *reader, const char *name)
{
    enum { COL_TIME, COL_TYPE, COL_ITEM, COL_SESSION, COL_PRICE, COL_USER };
    static const char *const names[] = {"event_time", "event_type", "product_id",
                                        "user_session", "price", "user_id", NULL};
    int cols[6];
    int more;

    if (read_columns(d, reader, name, names, 4, cols) != 0)
        return -1;

    while ((more = next_row(d, reader, name)) == 1) {
        struct vt_eval_event event = {.price = -1};
        size_t time_len, type_len, session_len, item_len, user_len, price_len;
        const char *time = field(reader, cols[COL_TIME], &time_len);
        const char *type = field(reader, cols[COL_TYPE], &type_len);
        const char *session = field(reader, cols[COL_SESSION], &session_len);
        const char *item = field(reader, cols[COL_ITEM], &item_len);
        const char *user = field(reader, cols[COL_USER], &user_len);
        const char *price = field(reader, cols[COL_PRICE], &price_len);
        int kind = rees46_kind(type, type_len);
        int rc;

        if (kind < 0) {
            vt_counts_add(&d->skipped, "unknown_event_type", 1);
            continue;
        }
        if (vt_time_parse_iso8601(time, time_len, &event.time_ms) != 0) {
            vt_counts_add(&d->skipped, "invalid_time", 1);
            continue;
        }
        event.kind = (enum vt_eval_kind)kind;
        event.order = event.time_ms;
        if (price_len > 0 && price_len < 32) {
            char text[32];

            memcpy(text, price, price_len);
            text[price_len] = '\0';
            if (vt_parse_double(text, 0, 1e12, &event.price) != 0)
                event.price = -1;
        }

        rc = intern_row_ids(d, session, session_len, item, item_len, user, user_len, &event);
        if (rc < 0)
            return -1;
        if (rc == 0)
            continue;
        event.row = (uint32_t)d->rows;
        if (add_event(d, &event) != 0)
            return -1;
    }
    return more < 0 ? -1 : 0;
}


static int compare_events(const void *a, const void *b)
{
    const struct vt_eval_event *x = a, *y = b;

    if (x->session != y->session)
        return x->session < y->session ? -1 : 1;
    if (x->order != y->order)
        return x->order < y->order ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}


int vt_eval_dataset_finish(struct vt_eval_dataset *d)
{
    size_t n_sessions = d->session_ids.n;

    if (d->n_events == 0) {
        snprintf(d->error, sizeof d->error, "no usable event in the input (%llu rows read)",
                 (unsigned long long)d->rows);
        return -1;
    }
    qsort(d->events, d->n_events, sizeof *d->events, compare_events);

    d->sessions = calloc(n_sessions, sizeof *d->sessions);
    d->interactions = calloc(d->n_events, sizeof *d->interactions);
    if (d->sessions == NULL || d->interactions == NULL) {
        snprintf(d->error, sizeof d->error, "out of memory for %zu sessions", n_sessions);
        return -1;
    }

    d->min_ms = INT64_MAX;
    d->max_ms = INT64_MIN;
    for (size_t i = 0; i < d->n_events; i++) {
        const struct vt_eval_event *e = &d->events[i];
        struct vt_eval_session *s = &d->sessions[e->session];

        if (s->n_events == 0) {
            s->first_event = i;
            s->first_interaction = d->n_interactions;
            s->start_ms = e->time_ms;
        }
        s->n_events++;
        if (e->time_ms < s->start_ms)
            s->start_ms = e->time_ms;
        if (e->time_ms < d->min_ms)
            d->min_ms = e->time_ms;
        if (e->time_ms > d->max_ms)
            d->max_ms = e->time_ms;

        if (e->kind != VT_EVAL_VIEW && e->kind != VT_EVAL_CART)
            continue;
        /* Consecutive repeats of one item are one interaction. */
        if (s->n_interactions > 0 && d->interactions[d->n_interactions - 1].item == e->item)
            continue;
        d->interactions[d->n_interactions].item = e->item;
        d->interactions[d->n_interactions].event = i;
        d->n_interactions++;
        s->n_interactions++;
    }
    d->finished = true;
    return 0;
}


int64_t vt_eval_cut_for_fraction(const struct vt_eval_dataset *d, double test_fraction)
{
    double range = (double)(d->max_ms - d->min_ms);

    return d->max_ms - (int64_t)(test_fraction * range);
}


int vt_eval_dataset_split(struct vt_eval_dataset *d, int64_t cut_ms)
{
    struct vt_eval_split_stats *st = &d->split;

    free(d->item_in_train);
    d->item_in_train = calloc(d->item_ids.n > 0 ? d->item_ids.n : 1, sizeof *d->item_in_train);
    if (d->item_in_train == NULL) {
        snprintf(d->error, sizeof d->error, "out of memory for %zu items", d->item_ids.n);
        return -1;
    }
    d->cut_ms = cut_ms;
    memset(st, 0, sizeof *st);

    for (size_t i = 0; i < d->session_ids.n; i++) {
        struct vt_eval_session *s = &d->sessions[i];

        s->test = s->start_ms >= cut_ms;
        if (s->test) {
            st->test_sessions++;
            st->test_events += s->n_events;
            continue;
        }
        st->train_sessions++;
        st->train_events += s->n_events;
        for (size_t k = 0; k < s->n_events; k++)
            st->train_events_after_cut += d->events[s->first_event + k].time_ms >= cut_ms;
        for (size_t k = 0; k < s->n_interactions; k++)
            d->item_in_train[vt_eval_interaction_item(d, s, k)] = true;
    }

    for (size_t i = 0; i < d->session_ids.n; i++) {
        const struct vt_eval_session *s = &d->sessions[i];

        if (!s->test || s->n_interactions < 2)
            continue;
        st->test_sessions_scored++;
        for (size_t k = 0; k + 1 < s->n_interactions; k++) {
            st->steps++;
            if (!vt_eval_step_novel(d, s, k)) {
                st->steps_not_novel++;
                continue;
            }
            st->steps_scored++;
            st->targets_unseen += !d->item_in_train[vt_eval_interaction_item(d, s, k + 1)];
        }
    }
    return 0;
}


/* ---- replay plan --------------------------------------------------------------------- */

size_t vt_eval_chunk_count(const struct vt_eval_session *s)
{
    return s->n_interactions > 0 ? s->n_interactions : 1;
}


size_t vt_eval_chunk_end(const struct vt_eval_dataset *d, const struct vt_eval_session *s,
                         size_t k)
{
    if (k + 1 < s->n_interactions)
        return d->interactions[s->first_interaction + k + 1].event;
    return s->first_event + s->n_events;
}


uint32_t vt_eval_interaction_item(const struct vt_eval_dataset *d,
                                  const struct vt_eval_session *s, size_t k)
{
    return d->interactions[s->first_interaction + k].item;
}


bool vt_eval_step_novel(const struct vt_eval_dataset *d, const struct vt_eval_session *s,
                        size_t k)
{
    uint32_t next = vt_eval_interaction_item(d, s, k + 1);

    for (size_t j = 0; j <= k; j++) {
        if (vt_eval_interaction_item(d, s, j) == next)
            return false;
    }
    return true;
}
