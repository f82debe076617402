/*
 * vitrine-evaluate: loading the recorded sessions and splitting them by time.
 *
 * A data set is a list of events (view, cart, remove from cart, purchase), each with a
 * session, an item and a time. After loading, vt_eval_dataset_finish orders every
 * session's events and derives its interactions: the items of its view and cart events,
 * with consecutive repeats of the same item collapsed. vt_eval_dataset_split then marks the
 * sessions that start at or after a cut time as test sessions.
 *
 * Replay plan of one session: chunk k (0 <= k < max(1, interactions)) contains the events
 * from the end of chunk k - 1 up to, but not including, the first event of interaction
 * k + 1. The last chunk ends with the session. After chunk k, step k predicts interaction k + 1
 * from the session so far. A step is scored only when that item is novel: the session has
 * not interacted with it before.
 *
 * Not thread-safe: one data set per thread.
 */
#ifndef VITRINE_TOOLS_EVALUATE_DATA_H
#define VITRINE_TOOLS_EVALUATE_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog_rows.h"
#include "csv.h"

#define VT_EVAL_NONE UINT32_MAX
#define VT_EVAL_ERROR_MAX 512

/* Interned strings: each distinct string gets a dense index from 0. */
struct vt_eval_names {
    char *pool;
    size_t pool_len;
    size_t pool_cap;
    uint32_t *offsets; /* index -> offset in pool */
    size_t n;
    size_t cap;
    uint32_t *slots; /* hash index: string index + 1, 0 when empty */
    size_t n_slots;
};

enum vt_eval_kind {
    VT_EVAL_VIEW = 0,
    VT_EVAL_CART,
    VT_EVAL_REMOVE,
    VT_EVAL_PURCHASE,
};

struct vt_eval_event {
    int64_t time_ms;
    int64_t order; /* sort key inside the session: Diginetica timeframe, REES46 time_ms */
    double price;  /* -1 when unknown */
    uint32_t session;
    uint32_t item;
    uint32_t user; /* index into users, or VT_EVAL_NONE */
    uint32_t row;  /* input row number over all files, so that equal keys keep file order */
    enum vt_eval_kind kind;
};

struct vt_eval_session {
    int64_t start_ms; /* time of the earliest event */
    size_t first_event;
    size_t n_events;
    size_t first_interaction;
    size_t n_interactions;
    bool test;
};

struct vt_eval_interaction {
    uint32_t item;
    size_t event; /* index of the interaction's first event in the data set */
};

struct vt_eval_split_stats {
    size_t train_sessions, test_sessions;
    size_t train_events, test_events;
    size_t train_events_after_cut; /* events of train sessions at or after the cut */
    size_t test_sessions_scored;   /* test sessions with at least 2 interactions */
    size_t steps;                  /* prediction steps of those sessions */
    size_t steps_not_novel;        /* steps whose next item the session already had */
    size_t steps_scored;
    size_t targets_unseen;         /* scored targets that no train interaction has */
};

struct vt_eval_dataset {
    struct vt_eval_names session_ids;
    struct vt_eval_names item_ids;
    struct vt_eval_names user_ids;
    struct vt_eval_event *events; /* ordered by session, then order key, then row */
    size_t n_events;
    size_t events_cap;
    struct vt_eval_session *sessions; /* [session_ids.n] after finish */
    struct vt_eval_interaction *interactions;
    size_t n_interactions;
    bool *item_in_train; /* [item_ids.n] after split: some train interaction has the item */
    int64_t min_ms, max_ms;
    int64_t cut_ms;
    uint64_t rows;             /* data rows read over all files */
    struct vt_counts skipped;  /* rows not loaded, by reason */
    bool finished;
    struct vt_eval_split_stats split;
    char error[VT_EVAL_ERROR_MAX];
};

void vt_eval_names_init(struct vt_eval_names *names);
void vt_eval_names_free(struct vt_eval_names *names);

/* Index of s[0..len), added when new. Returns 0, or -1 when out of memory. */
int vt_eval_names_intern(struct vt_eval_names *names, const char *s, size_t len,
                         uint32_t *index);

/* Index of s[0..len), or VT_EVAL_NONE. */
uint32_t vt_eval_names_find(const struct vt_eval_names *names, const char *s, size_t len);

const char *vt_eval_names_get(const struct vt_eval_names *names, uint32_t index);

void vt_eval_dataset_init(struct vt_eval_dataset *d);
void vt_eval_dataset_free(struct vt_eval_dataset *d);

/*
 * Add the rows of a Diginetica train-item-views.csv, read with ';' as the separator. Each
 * row is a view at vt_diginetica_time(eventdate, timeframe), ordered inside its session by
 * timeframe, and user_id NA means no user. Returns 0, or -1 with d->error set when the
 * header lacks a column or reading fails. Invalid rows are counted in d->skipped.
 */
int vt_eval_load_diginetica(struct vt_eval_dataset *d, struct vt_csv *reader,
                            const char *name);

/*
 * Add the rows of a REES46 events CSV (event_time, event_type, product_id, user_session;
 * price and user_id when present). Event types view, cart, remove_from_cart and purchase
 * are loaded; others are counted in d->skipped. Returns 0 or -1 as above.
 */
int vt_eval_load_rees46(struct vt_eval_dataset *d, struct vt_csv *reader, const char *name);

/* Order the events and derive sessions and interactions. Call once, after all files.
 * Returns 0, or -1 with d->error set when out of memory or when no event was loaded. */
int vt_eval_dataset_finish(struct vt_eval_dataset *d);

/* The cut that leaves the last test_fraction (0 < f < 1) of the event time range for
 * testing: max - f * (max - min), in epoch milliseconds. */
int64_t vt_eval_cut_for_fraction(const struct vt_eval_dataset *d, double test_fraction);

/* Mark sessions starting at or after cut_ms as test sessions, mark the items of train
 * interactions, and fill d->split. Returns 0, or -1 when out of memory. */
int vt_eval_dataset_split(struct vt_eval_dataset *d, int64_t cut_ms);

/* Chunks of a session's replay plan: max(1, n_interactions). */
size_t vt_eval_chunk_count(const struct vt_eval_session *s);

/* Index one past the last event of chunk k. Chunk 0 starts at s->first_event, chunk k > 0
 * at the end of chunk k - 1. */
size_t vt_eval_chunk_end(const struct vt_eval_dataset *d, const struct vt_eval_session *s,
                         size_t k);

/* True when step k (0 <= k < n_interactions - 1) is scored: interaction k + 1 names an
 * item that interactions 0..k do not. */
bool vt_eval_step_novel(const struct vt_eval_dataset *d, const struct vt_eval_session *s,
                        size_t k);

/* The item of interaction k of session s. */
uint32_t vt_eval_interaction_item(const struct vt_eval_dataset *d,
                                  const struct vt_eval_session *s, size_t k);

const char *vt_eval_kind_name(enum vt_eval_kind kind);

#endif
