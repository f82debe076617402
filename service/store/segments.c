/*
 * vitrine: segment statistics in Redis: the estimated member counts, the served counts,
 * the lock that lets one instance count at a time, and the scan of the profile keys the
 * count samples from.
 *
 *   vt:{agg}:seg:n       hash: segment -> estimated members; "_profiles" (profiles
 *                        seen by the last count), "_sampled" (profiles read), "_at" (ms)
 *   vt:{agg}:seg:served  hash: segment -> responses that reported the segment
 *   vt:{agg}:seg:lock    string: the instance counting now, expires after one interval
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "vitrine/segments.h"
#include "vitrine/util.h"

static void seg_key(const struct vt_store *st, char *out, size_t outsize, const char *suffix)
{
    snprintf(out, outsize, "%s{agg}:seg:%s", st->cfg->redis_prefix, suffix);
}


int vt_store_segment_lock(struct vt_store *st, const char *instance, int64_t ttl_ms,
                          bool *taken, char *err, size_t errsize)
{
    char key[STORE_KEY_MAX], ms[24];
    redisReply *r;

    *taken = false;
    if (store_ensure_connected(st, err, errsize) != 0)
        return -1;
    seg_key(st, key, sizeof key, "lock");
    snprintf(ms, sizeof ms, "%" PRId64, ttl_ms);
    const char *argv[] = {"SET", key, instance, "NX", "PX", ms};
    size_t lens[] = {3, strlen(key), strlen(instance), 2, 2, strlen(ms)};
    r = store_command(st, 6, argv, lens, err, errsize);
    if (r == NULL)
        return -1;
    *taken = r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    return 0;
}


/* Whether a key is a session profile's hash "<prefix>{<id>}:p" and not a visitor's
 * ("{#...}") or an aggregate ("{agg}"); *id and *len get the id. */
static bool session_hash(const struct vt_store *st, const char *key, size_t key_len,
                         const char **id, size_t *len)
{
    size_t prefix_len = strlen(st->cfg->redis_prefix);

    if (key_len < prefix_len + 5 || memcmp(key, st->cfg->redis_prefix, prefix_len) != 0)
        return false;
    if (key[prefix_len] != '{' || memcmp(key + key_len - 3, "}:p", 3) != 0)
        return false;
    *id = key + prefix_len + 1;
    *len = key_len - prefix_len - 4;
    if (*len == 0 || (*id)[0] == '#' || (*len == 3 && memcmp(*id, "agg", 3) == 0))
        return false;
    return vt_id_valid(*id, *len);
}


int vt_store_scan_profiles(struct vt_store *st, uint64_t *cursor, vt_store_id_fn fn, void *arg,
                           char *err, size_t errsize)
{
    char pattern[STORE_KEY_MAX], at[24];
    redisReply *r;

    if (store_ensure_connected(st, err, errsize) != 0)
        return -1;
    snprintf(pattern, sizeof pattern, "%s{*}:p", st->cfg->redis_prefix);
    snprintf(at, sizeof at, "%" PRIu64, *cursor);
    const char *argv[] = {"SCAN", at, "MATCH", pattern, "COUNT", "1000"};
    size_t lens[] = {4, strlen(at), 5, strlen(pattern), 5, 4};
    r = store_command(st, 6, argv, lens, err, errsize);
    if (r == NULL)
        return -1;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errsize, "redis SCAN returned an unexpected reply (type %d)", r->type);
        freeReplyObject(r);
        return -1;
    }
    *cursor = strtoull(r->element[0]->str, NULL, 10);
    for (size_t i = 0; i < r->element[1]->elements; i++) {
        const redisReply *key = r->element[1]->element[i];
        const char *id;
        size_t len;

        if (key->type == REDIS_REPLY_STRING && session_hash(st, key->str, key->len, &id, &len))
            fn(arg, id, len);
    }
    freeReplyObject(r);
    return 0;
}


/* Commands in one transaction: a HINCRBY per segment and an EXPIRE. */
#define TRANSACTION_MAX (VT_SEGMENTS_MAX + 1)

/* Run a MULTI ... EXEC of n (at most TRANSACTION_MAX) commands built by the caller; each
 * argv row is one command. */
static int transaction(struct vt_store *st, size_t n, const char *const *const *argv,
                       const size_t *const *lens, const int *argc, char *err, size_t errsize)
{
    static const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
    static const size_t multi_len[] = {5}, exec_len[] = {4};
    bool ok = true;

    if (n > TRANSACTION_MAX) {
        snprintf(err, errsize, "a segment write of %zu commands; the maximum is %d", n,
                 TRANSACTION_MAX);
        return -1;
    }
    if (redisAppendCommandArgv(st->ctx, 1, multi, multi_len) != REDIS_OK)
        ok = false;
    for (size_t i = 0; ok && i < n; i++) {
        if (redisAppendCommandArgv(st->ctx, argc[i], (const char **)argv[i], lens[i]) != REDIS_OK)
            ok = false;
    }
    if (ok && redisAppendCommandArgv(st->ctx, 1, exec, exec_len) != REDIS_OK)
        ok = false;
    if (!ok) {
        snprintf(err, errsize, "redis append failed: %s", st->ctx->errstr);
        store_close(st);
        return -1;
    }
    redisReply *replies[TRANSACTION_MAX + 2] = {0};
    int rc = store_read_replies(st, replies, n + 2, "segment write", err, errsize);
    for (size_t i = 0; i < n + 2; i++) {
        if (replies[i] != NULL)
            freeReplyObject(replies[i]);
    }
    return rc;
}


int vt_store_segment_counts_put(struct vt_store *st, const char *const *names,
                                const int64_t *members, size_t n, int64_t profiles,
                                int64_t sampled, int64_t at_ms, char *err, size_t errsize)
{
    char key[STORE_KEY_MAX];
    enum { FIELDS_MAX = VT_SEGMENTS_MAX + 3 };
    const char *hset[2 + 2 * FIELDS_MAX];
    size_t hset_lens[2 + 2 * FIELDS_MAX];
    char numbers[FIELDS_MAX][24];
    int argc = 0;

    if (n > 64) {
        snprintf(err, errsize, "%zu segments to count; the maximum is 64", n);
        return -1;
    }
    if (store_ensure_connected(st, err, errsize) != 0)
        return -1;
    seg_key(st, key, sizeof key, "n");

    hset[argc] = "HSET";
    hset_lens[argc++] = 4;
    hset[argc] = key;
    hset_lens[argc++] = strlen(key);
    static const char *const totals[] = {"_profiles", "_sampled", "_at"};
    int64_t total_values[] = {profiles, sampled, at_ms};
    for (size_t i = 0; i < n + 3; i++) {
        const char *field = i < n ? names[i] : totals[i - n];
        int64_t value = i < n ? members[i] : total_values[i - n];
        snprintf(numbers[i], sizeof numbers[i], "%" PRId64, value);
        hset[argc] = field;
        hset_lens[argc++] = strlen(field);
        hset[argc] = numbers[i];
        hset_lens[argc++] = strlen(numbers[i]);
    }

    /* Replace the hash whole, so that a segment removed by a reload disappears. */
    const char *del[] = {"DEL", key};
    size_t del_lens[] = {3, strlen(key)};
    const char *const *argv[] = {del, hset};
    const size_t *lens[] = {del_lens, hset_lens};
    int argcs[] = {2, argc};
    return transaction(st, 2, argv, lens, argcs, err, errsize);
}


int vt_store_segment_served_add(struct vt_store *st, const char *const *names,
                                const int64_t *served, size_t n, int64_t ttl_s, char *err,
                                size_t errsize)
{
    char key[STORE_KEY_MAX], ttl[24];
    enum { ROWS_MAX = TRANSACTION_MAX };
    const char *rows[ROWS_MAX][4];
    size_t row_lens[ROWS_MAX][4];
    const char *const *argv[ROWS_MAX];
    const size_t *lens[ROWS_MAX];
    char numbers[ROWS_MAX][24];
    int argcs[ROWS_MAX];
    size_t k = 0;

    if (n > 64) {
        snprintf(err, errsize, "%zu segments to count; the maximum is 64", n);
        return -1;
    }
    if (store_ensure_connected(st, err, errsize) != 0)
        return -1;
    seg_key(st, key, sizeof key, "served");
    for (size_t i = 0; i < n; i++) {
        if (served[i] == 0)
            continue;
        snprintf(numbers[k], sizeof numbers[k], "%" PRId64, served[i]);
        rows[k][0] = "HINCRBY";
        rows[k][1] = key;
        rows[k][2] = names[i];
        rows[k][3] = numbers[k];
        row_lens[k][0] = 7;
        row_lens[k][1] = strlen(key);
        row_lens[k][2] = strlen(names[i]);
        row_lens[k][3] = strlen(numbers[k]);
        argv[k] = rows[k];
        lens[k] = row_lens[k];
        argcs[k] = 4;
        k++;
    }
    if (k == 0)
        return 0;
    snprintf(ttl, sizeof ttl, "%" PRId64, ttl_s);
    rows[k][0] = "EXPIRE";
    rows[k][1] = key;
    rows[k][2] = ttl;
    row_lens[k][0] = 6;
    row_lens[k][1] = strlen(key);
    row_lens[k][2] = strlen(ttl);
    argv[k] = rows[k];
    lens[k] = row_lens[k];
    argcs[k] = 3;
    k++;
    return transaction(st, k, argv, lens, argcs, err, errsize);
}


int vt_store_segment_stats_read(struct vt_store *st, vt_store_count_fn fn, void *arg,
                                char *err, size_t errsize)
{
    char counts_key[STORE_KEY_MAX], served_key[STORE_KEY_MAX];
    redisReply *replies[2] = {0};
    int rc = -1;

    if (store_ensure_connected(st, err, errsize) != 0)
        return -1;
    seg_key(st, counts_key, sizeof counts_key, "n");
    seg_key(st, served_key, sizeof served_key, "served");
    const char *counts[] = {"HGETALL", counts_key};
    size_t counts_lens[] = {7, strlen(counts_key)};
    const char *served[] = {"HGETALL", served_key};
    size_t served_lens[] = {7, strlen(served_key)};
    if (redisAppendCommandArgv(st->ctx, 2, counts, counts_lens) != REDIS_OK ||
        redisAppendCommandArgv(st->ctx, 2, served, served_lens) != REDIS_OK) {
        snprintf(err, errsize, "redis append failed: %s", st->ctx->errstr);
        store_close(st);
        return -1;
    }
    if (store_read_replies(st, replies, 2, "segment statistics read", err, errsize) != 0)
        goto out;
    for (int i = 0; i < 2; i++) {
        const redisReply *r = replies[i];
        if (r->type != REDIS_REPLY_ARRAY)
            continue;
        for (size_t k = 0; k + 1 < r->elements; k += 2) {
            if (r->element[k]->type == REDIS_REPLY_STRING)
                fn(arg, i == 1, r->element[k]->str, r->element[k]->len,
                   store_reply_int(r->element[k + 1]));
        }
    }
    rc = 0;

out:
    for (int i = 0; i < 2; i++) {
        if (replies[i] != NULL)
            freeReplyObject(replies[i]);
    }
    return rc;
}
