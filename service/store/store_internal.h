/*
 * vitrine: what the store's files share (connection.c, profiles.c, aggregates.c). Not a
 * public header. A struct vt_store is one Redis connection owned by one thread.
 */
#ifndef VITRINE_STORE_INTERNAL_H
#define VITRINE_STORE_INTERNAL_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vitrine/store.h"
#include "vitrine/util.h"

/* The Lua scripts, loaded on every new connection. */
enum store_script {
    SCRIPT_APPLY = 0,
    SCRIPT_AGGREGATE,
    SCRIPT_VISIT,
    SCRIPT_LINK,
    SCRIPT_SNAPSHOT,
    SCRIPT_COUNT
};

extern const char store_apply_script[];
extern const size_t store_apply_script_len;
extern const char store_aggregate_script[];
extern const size_t store_aggregate_script_len;
extern const char store_visit_script[];
extern const size_t store_visit_script_len;
extern const char store_link_script[];
extern const size_t store_link_script_len;
extern const char store_snapshot_script[];
extern const size_t store_snapshot_script_len;

/* Keys of one profile, in the order the apply script's KEYS use them. */
enum profile_key {
    KEY_PROFILE = 0,
    KEY_CATEGORIES,
    KEY_BRANDS,
    KEY_TIERS,
    KEY_RECENT,
    KEY_CART,
    KEY_PURCHASED,
    KEY_SEEN,
    KEY_CLICKS,
    KEY_CONTEXTS,
    KEY_VISITOR, /* the linked visitor as it stood when the session was linked */
    KEY_COUNT
};

/* Upper bound of arguments of one script call, and of the bytes of formatted numbers in
 * one call (at most one number of 32 bytes per argument). */
#define STORE_ARGS_MAX 2048
#define STORE_NUMBERS_MAX (STORE_ARGS_MAX * 32)
/* Bytes of the snapshot writes of one visitor step (visitors.c): about 5 KB each. */
#define STORE_SNAPSHOTS_MAX (16 * 1024 * 1024)
/* Bytes of copied string arguments in one call (store_arg_copy). */
#define STORE_COPIES_MAX (STORE_ARGS_MAX * 64)
/* Key name: prefix (< 32) + "{" + id (<= 128) + "}:" + suffix, or a long aggregate key. */
#define STORE_KEY_MAX 512

struct vt_store {
    const struct vt_config *cfg;
    int64_t timeout_ms;
    redisContext *ctx;
    char sha[SCRIPT_COUNT][41];
    bool scripts_loaded;

    /* Pipeline state of the current batch. */
    size_t queued;
    bool failed;
    size_t agg_records; /* records in the aggregate call being built (aggregates.c) */
    struct vt_buf snapshots; /* snapshot writes the visit replies asked for (visitors.c) */
    size_t n_snapshots;
    struct vt_visitor_counts *visit_counts; /* of the visit step being committed */
    char fail_reason[256];

    /* Scratch for building one command, reused. */
    const char *argv[STORE_ARGS_MAX];
    size_t argvlen[STORE_ARGS_MAX];
    int argc;
    bool args_overflow;
    char numbers[STORE_NUMBERS_MAX];
    size_t numbers_used;
    char copies[STORE_COPIES_MAX];
    size_t copies_used;
    char keys[KEY_COUNT][STORE_KEY_MAX];
    size_t key_lens[KEY_COUNT];
    char texts[VT_EVENT_ITEMS_MAX + 8][STORE_KEY_MAX]; /* composed string arguments */
    size_t texts_used;
};

/* ---- connection.c ---- */

/* Open the connection (and load the scripts) unless it is open. */
int store_ensure_connected(struct vt_store *st, char *err, size_t errsize);
void store_close(struct vt_store *st);

/* A human reason for the connection's last I/O error ("timed out after 250 ms"). */
const char *store_describe_error(const struct vt_store *st, char *buf, size_t bufsize);

/* Run one command; the reply, or NULL with err filled (an error reply is an error). */
redisReply *store_command(struct vt_store *st, int argc, const char **argv,
                          const size_t *argvlen, char *err, size_t errsize);

/* Read n pipelined replies into replies[0..n) (the caller frees them, also after a
 * failure). Returns 0, or -1 with a message when the connection failed (it is closed) or a
 * reply is an error ("redis <what> failed: ..."). */
int store_read_replies(struct vt_store *st, redisReply **replies, size_t n, const char *what,
                       char *err, size_t errsize);

/* Begin and end a pipelined batch of script calls: commit reads every reply and hands each
 * to on_reply (which returns false to mark the batch failed with its own message). */
void store_pipeline_begin(struct vt_store *st);
typedef bool (*store_reply_fn)(const redisReply *r, size_t index, void *arg, char *err,
                               size_t errsize);
int store_pipeline_commit(struct vt_store *st, store_reply_fn on_reply, void *arg, char *err,
                          size_t errsize);

/* ---- argument building (connection.c) ---- */

void store_args_reset(struct vt_store *st);
/* Start a script call: EVALSHA <sha> <numkeys>. */
void store_args_script(struct vt_store *st, enum store_script script, int numkeys);
void store_arg(struct vt_store *st, const char *s);
void store_arg_len(struct vt_store *st, const char *s, size_t len);
/* An argument copied into the call's own scratch: for strings that change before the call
 * is queued (a call of the aggregate step takes several records). */
void store_arg_copy(struct vt_store *st, const char *s);
void store_arg_int(struct vt_store *st, int64_t v);
void store_arg_double(struct vt_store *st, double v);
/* Compose a string argument with printf formatting (kept until the next reset). */
void store_arg_printf(struct vt_store *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Append the built command to the pipeline; a command that did not fit STORE_ARGS_MAX
 * marks the batch failed. */
void store_queue(struct vt_store *st);

/* ---- reads written as protocol text (connection.c) ----
 *
 * A read of several keys is written as Redis protocol text into one buffer and handed to
 * hiredis in one piece, which saves formatting each command. Each command contains one
 * key of st->keys (at most STORE_KEY_MAX - 1 bytes) and under 160 bytes besides, so twelve
 * fit a batch; the profile read with the visitor snapshot writes ten. */
struct store_batch {
    char text[12 * (STORE_KEY_MAX + 160)];
    size_t len;
};

/* v as decimal text in buf (24 bytes); returns where the text starts. */
const char *store_decimal(char *buf, uint64_t v);
/* The last rank of a list of n entries (n - 1) as text in buf (24 bytes). */
const char *store_last_rank(char *buf, int64_t n);
/* "<command> <key k>", or with stop "<command> <key k> 0 <stop> WITHSCORES". */
void store_batch_read(struct store_batch *b, const struct vt_store *st, const char *command,
                      int k, const char *stop);
/* "<command> <key k> <member>", member at most VT_ID_MAX bytes. */
void store_batch_member(struct store_batch *b, const struct vt_store *st, const char *command,
                        int k, const char *member, size_t len);
/* Any command; its arguments must fit the rule above. */
void store_batch_args(struct store_batch *b, int argc, const char *const *argv,
                      const size_t *lens);
/* Append the batch to the connection's output; -1 with a message (connection closed). */
int store_batch_send(struct vt_store *st, const struct store_batch *b, char *err,
                     size_t errsize);

/* ---- reply helpers (connection.c) ---- */

double store_reply_double(const redisReply *r);
int64_t store_reply_int(const redisReply *r);
bool store_reply_is(const redisReply *r, const char *s);
void store_reply_copy(char *dst, size_t dstsize, const redisReply *r);

#endif
