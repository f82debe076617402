/*
 * vitrine: Redis storage of profiles (see include/vitrine/store.h).
 *
 * Writes go through one Lua script per event, so an event is applied to all keys of its
 * profile atomically, together with the redelivery check. A batch of events is one
 * pipeline: every EVALSHA is appended to hiredis' output buffer and the replies are read
 * after a single flush.
 */
#include "vitrine/store.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vitrine/log.h"
#include "vitrine/util.h"

/* Key suffixes, in the order the script's KEYS use them. */
enum profile_key {
    KEY_PROFILE = 0,
    KEY_CATEGORIES,
    KEY_BRANDS,
    KEY_TIERS,
    KEY_RECENT,
    KEY_CART,
    KEY_PURCHASED,
    KEY_COUNT
};

static const char *const key_suffixes[KEY_COUNT] = {"p", "cat", "brand", "tier",
                                                    "rv",  "cart", "buy"};

/* Cart lines and purchased products kept in Redis; reads return at most as many. */
#define CART_CAP VT_PROFILE_CART_MAX
#define PURCHASED_CAP VT_PROFILE_PURCHASED_MAX

/*
 * Apply one event to one profile. ARGV[1] is the redelivery field "o:<source tag>:<partition>"
 * and ARGV[2] the record's offset. Returns 1 when applied, 0 when the profile has already
 * applied this offset or a later one of the same source and partition. Affinities combine with log-add-exp (see profile.h); numbers are
 * formatted with 17 significant digits because Redis' Lua turns numbers into strings with
 * only 14, which would lose precision in the log-scores.
 */
static const char apply_script[] =
    "local p = KEYS[1]\n"
    "local off_field = ARGV[1]\n"
    "local last = redis.call('HGET', p, off_field)\n"
    "if last and tonumber(last) >= tonumber(ARGV[2]) then return 0 end\n"
    "local ts = tonumber(ARGV[3])\n"
    "local ttl = tonumber(ARGV[4])\n"
    "redis.call('HSET', p, off_field, ARGV[2])\n"
    "redis.call('HINCRBY', p, 'events', 1)\n"
    "redis.call('HINCRBY', p, 'n:' .. ARGV[5], 1)\n"
    "if ARGV[6] ~= '' then redis.call('HSET', p, 'user', ARGV[6]) end\n"
    "local first = tonumber(redis.call('HGET', p, 'first') or '')\n"
    "if not first or ts < first then redis.call('HSET', p, 'first', ARGV[3]) end\n"
    "local seen = tonumber(redis.call('HGET', p, 'last') or '')\n"
    "if not seen or ts > seen then redis.call('HSET', p, 'last', ARGV[3]) end\n"
    "if tonumber(ARGV[12]) ~= 0 then redis.call('HINCRBYFLOAT', p, 'g_lo', ARGV[12]) end\n"
    "if tonumber(ARGV[13]) > 0 then redis.call('HINCRBY', p, 'g_n', ARGV[13]) end\n"
    "if tonumber(ARGV[14]) > 0 then redis.call('HINCRBYFLOAT', p, 'revenue', ARGV[14]) end\n"
    "local i = 15\n"
    "local function logadd(a, b)\n"
    "  if b > a then a, b = b, a end\n"
    "  return a + math.log(1 + math.exp(b - a))\n"
    "end\n"
    "local function decayed(key, cap)\n"
    "  local n = tonumber(ARGV[i]); i = i + 1\n"
    "  for k = 1, n do\n"
    "    local name, x = ARGV[i], tonumber(ARGV[i + 1]); i = i + 2\n"
    "    local cur = redis.call('ZSCORE', key, name)\n"
    "    if cur then x = logadd(tonumber(cur), x) end\n"
    "    redis.call('ZADD', key, string.format('%.17g', x), name)\n"
    "  end\n"
    "  if n > 0 then redis.call('ZREMRANGEBYRANK', key, 0, -(cap + 1)) end\n"
    "end\n"
    "decayed(KEYS[2], tonumber(ARGV[7]))\n"
    "decayed(KEYS[3], tonumber(ARGV[8]))\n"
    "decayed(KEYS[4], 4)\n"
    "local n = tonumber(ARGV[i]); i = i + 1\n"
    "for k = 1, n do redis.call('ZADD', KEYS[5], 'GT', ARGV[3], ARGV[i]); i = i + 1 end\n"
    "if n > 0 then redis.call('ZREMRANGEBYRANK', KEYS[5], 0, -(tonumber(ARGV[9]) + 1)) end\n"
    "n = tonumber(ARGV[i]); i = i + 1\n"
    "for k = 1, n do\n"
    "  local id, q = ARGV[i], ARGV[i + 1]; i = i + 2\n"
    "  if redis.call('HEXISTS', KEYS[6], id) == 1 or\n"
    "     redis.call('HLEN', KEYS[6]) < tonumber(ARGV[10]) then\n"
    "    redis.call('HINCRBY', KEYS[6], id, q)\n"
    "  end\n"
    "end\n"
    "n = tonumber(ARGV[i]); i = i + 1\n"
    "for k = 1, n do\n"
    "  local id, q = ARGV[i], tonumber(ARGV[i + 1]); i = i + 2\n"
    "  if q == 0 or redis.call('HINCRBY', KEYS[6], id, -q) <= 0 then\n"
    "    redis.call('HDEL', KEYS[6], id)\n"
    "  end\n"
    "end\n"
    "n = tonumber(ARGV[i]); i = i + 1\n"
    "for k = 1, n do\n"
    "  redis.call('ZADD', KEYS[7], 'GT', ARGV[3], ARGV[i])\n"
    "  redis.call('HDEL', KEYS[6], ARGV[i]); i = i + 1\n"
    "end\n"
    "if n > 0 then redis.call('ZREMRANGEBYRANK', KEYS[7], 0, -(tonumber(ARGV[11]) + 1)) end\n"
    "for k = 1, 7 do redis.call('EXPIRE', KEYS[k], ttl) end\n"
    "return 1\n";

/* Fixed arguments before the variable sections (see ARGV[1..14] in the script). */
#define APPLY_FIXED_ARGS 14
/* Upper bound of arguments of one EVALSHA: command, sha, key count, keys, fixed args, and
 * each section's count and entries. */
#define APPLY_ARGS_MAX                                                                     \
    (3 + KEY_COUNT + APPLY_FIXED_ARGS + 7 + 2 * VT_DELTA_NAMES_MAX +                       \
     2 * VT_EVENT_ITEMS_MAX + 2 * VT_TIER_COUNT + VT_EVENT_ITEMS_MAX +                      \
     2 * VT_EVENT_ITEMS_MAX + 2 * VT_EVENT_ITEMS_MAX + VT_EVENT_ITEMS_MAX)
/* Bytes of formatted numbers in one call: at most one number per argument, 32 bytes
 * each. */
#define NUMBER_SCRATCH (APPLY_ARGS_MAX * 32)
/* Key name: prefix (< 32) + "{" + id (<= 128) + "}:" + suffix (<= 5). */
#define KEY_MAX 176

struct vt_store {
    const struct vt_config *cfg;
    int64_t timeout_ms;
    redisContext *ctx;
    char sha[41];
    bool script_loaded;

    /* Batch state. */
    size_t queued;
    bool failed;
    char fail_reason[256];

    /* Scratch for building one command, reused. */
    char offset_field[VT_SOURCE_TAG_LEN + 16];
    const char *argv[APPLY_ARGS_MAX];
    size_t argvlen[APPLY_ARGS_MAX];
    char numbers[NUMBER_SCRATCH];
    size_t numbers_used;
    char keys[KEY_COUNT][KEY_MAX];
};

/* hiredis reports a read timeout as an I/O error with strerror(EAGAIN); say what it is. */
static const char *describe_error(const struct vt_store *st, char *buf, size_t bufsize)
{
    if (st->ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK ||
                                         strstr(st->ctx->errstr, "temporarily") != NULL)) {
        snprintf(buf, bufsize, "timed out after %" PRId64 " ms", st->timeout_ms);
        return buf;
    }
    return st->ctx->errstr;
}


static void close_connection(struct vt_store *st)
{
    if (st->ctx != NULL) {
        redisFree(st->ctx);
        st->ctx = NULL;
    }
    st->script_loaded = false;
}


/* Run one command synchronously; returns the reply or NULL with err filled. */
static redisReply *command_argv(struct vt_store *st, int argc, const char **argv,
                                const size_t *argvlen, char *err, size_t errsize)
{
    redisReply *r = redisCommandArgv(st->ctx, argc, argv, argvlen);
    char why[64];

    if (r == NULL) {
        snprintf(err, errsize, "redis %s:%" PRId64 ": %s", st->cfg->redis_host,
                 st->cfg->redis_port, describe_error(st, why, sizeof why));
        close_connection(st);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errsize, "redis %s failed: %.*s", argv[0], (int)r->len, r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}


static int open_connection(struct vt_store *st, char *err, size_t errsize)
{
    struct timeval tv = {.tv_sec = st->timeout_ms / 1000,
                         .tv_usec = (st->timeout_ms % 1000) * 1000};
    redisReply *r;

    st->ctx = redisConnectWithTimeout(st->cfg->redis_host, (int)st->cfg->redis_port, tv);
    if (st->ctx == NULL || st->ctx->err) {
        snprintf(err, errsize, "cannot connect to redis %s:%" PRId64 ": %s",
                 st->cfg->redis_host, st->cfg->redis_port,
                 st->ctx ? st->ctx->errstr : "out of memory");
        close_connection(st);
        return -1;
    }
    redisSetTimeout(st->ctx, tv);

    if (st->cfg->redis_password[0] != '\0') {
        const char *argv[] = {"AUTH", st->cfg->redis_password};
        size_t lens[] = {4, strlen(st->cfg->redis_password)};
        r = command_argv(st, 2, argv, lens, err, errsize);
        if (r == NULL)
            goto fail;
        freeReplyObject(r);
    }
    if (st->cfg->redis_db != 0) {
        char db[24];
        int n = snprintf(db, sizeof db, "%" PRId64, st->cfg->redis_db);
        const char *argv[] = {"SELECT", db};
        size_t lens[] = {6, (size_t)n};
        r = command_argv(st, 2, argv, lens, err, errsize);
        if (r == NULL)
            goto fail;
        freeReplyObject(r);
    }

    const char *load[] = {"SCRIPT", "LOAD", apply_script};
    size_t load_lens[] = {6, 4, sizeof apply_script - 1};
    r = command_argv(st, 3, load, load_lens, err, errsize);
    if (r == NULL)
        goto fail;
    if (r->type != REDIS_REPLY_STRING || r->len != 40) {
        snprintf(err, errsize, "redis SCRIPT LOAD returned an unexpected reply");
        freeReplyObject(r);
        goto fail;
    }
    memcpy(st->sha, r->str, 40);
    st->sha[40] = '\0';
    st->script_loaded = true;
    freeReplyObject(r);
    return 0;

fail:
    close_connection(st);
    return -1;
}


static int ensure_connected(struct vt_store *st, char *err, size_t errsize)
{
    if (st->ctx != NULL && st->script_loaded)
        return 0;
    close_connection(st);
    return open_connection(st, err, errsize);
}


struct vt_store *vt_store_connect(const struct vt_config *cfg, int64_t timeout_ms, char *err,
                                  size_t errsize)
{
    struct vt_store *st = calloc(1, sizeof *st);

    if (st == NULL) {
        snprintf(err, errsize, "out of memory");
        return NULL;
    }
    st->cfg = cfg;
    st->timeout_ms = timeout_ms;
    if (open_connection(st, err, errsize) != 0) {
        free(st);
        return NULL;
    }
    return st;
}


void vt_store_free(struct vt_store *st)
{
    if (st == NULL)
        return;
    close_connection(st);
    free(st);
}


int vt_store_ping(struct vt_store *st, char *err, size_t errsize)
{
    const char *argv[] = {"PING"};
    size_t lens[] = {4};
    redisReply *r;

    if (ensure_connected(st, err, errsize) != 0)
        return -1;
    r = command_argv(st, 1, argv, lens, err, errsize);
    if (r == NULL)
        return -1;
    freeReplyObject(r);
    return 0;
}


/* Build the key names of one profile into st->keys. */
static void build_keys(struct vt_store *st, const char *id, size_t id_len)
{
    for (int k = 0; k < KEY_COUNT; k++)
        snprintf(st->keys[k], KEY_MAX, "%s{%.*s}:%s", st->cfg->redis_prefix, (int)id_len, id,
                 key_suffixes[k]);
}


/* Argument-list builder for one command. */
struct args {
    struct vt_store *st;
    int argc;
};

static void arg_str(struct args *a, const char *s)
{
    a->st->argv[a->argc] = s;
    a->st->argvlen[a->argc] = strlen(s);
    a->argc++;
}


static void arg_fmt_int(struct args *a, int64_t v)
{
    struct vt_store *st = a->st;
    char *p = st->numbers + st->numbers_used;
    int n = snprintf(p, 32, "%" PRId64, v);

    st->numbers_used += (size_t)n + 1;
    st->argv[a->argc] = p;
    st->argvlen[a->argc] = (size_t)n;
    a->argc++;
}


static void arg_fmt_double(struct args *a, double v)
{
    struct vt_store *st = a->st;
    char *p = st->numbers + st->numbers_used;
    int n = snprintf(p, 32, "%.17g", isfinite(v) ? v : 0.0);

    st->numbers_used += (size_t)n + 1;
    st->argv[a->argc] = p;
    st->argvlen[a->argc] = (size_t)n;
    a->argc++;
}


static void arg_scores(struct args *a, const struct vt_named_score *list, size_t n)
{
    arg_fmt_int(a, (int64_t)n);
    for (size_t i = 0; i < n; i++) {
        arg_str(a, list[i].name);
        arg_fmt_double(a, list[i].log_score);
    }
}


static void arg_ids(struct args *a, const char (*ids)[VT_PRODUCT_ID_MAX + 1], size_t n)
{
    arg_fmt_int(a, (int64_t)n);
    for (size_t i = 0; i < n; i++)
        arg_str(a, ids[i]);
}


void vt_store_batch_begin(struct vt_store *st)
{
    st->queued = 0;
    st->failed = false;
    st->fail_reason[0] = '\0';
    if (ensure_connected(st, st->fail_reason, sizeof st->fail_reason) != 0)
        st->failed = true;
}


void vt_store_batch_add(struct vt_store *st, const struct vt_profile_delta *d)
{
    const struct vt_config *cfg = st->cfg;
    struct args a = {.st = st, .argc = 0};

    if (st->failed)
        return;
    st->numbers_used = 0;
    build_keys(st, d->profile_id, strlen(d->profile_id));

    arg_str(&a, "EVALSHA");
    arg_str(&a, st->sha);
    arg_fmt_int(&a, KEY_COUNT);
    for (int k = 0; k < KEY_COUNT; k++)
        arg_str(&a, st->keys[k]);
    snprintf(st->offset_field, sizeof st->offset_field, "o:%s:%" PRId32, d->source_tag,
             d->partition);
    arg_str(&a, st->offset_field);
    arg_fmt_int(&a, d->offset);
    arg_fmt_int(&a, d->ts_ms);
    arg_fmt_int(&a, cfg->profile_ttl_s);
    arg_str(&a, vt_event_type_name(d->type));
    arg_str(&a, d->user_id);
    arg_fmt_int(&a, cfg->profile_categories_max);
    arg_fmt_int(&a, cfg->profile_brands_max);
    arg_fmt_int(&a, cfg->profile_recent_max);
    arg_fmt_int(&a, CART_CAP);
    arg_fmt_int(&a, PURCHASED_CAP);
    arg_fmt_double(&a, d->gender_step);
    arg_fmt_int(&a, d->gender_evidence);
    arg_fmt_double(&a, d->revenue);

    arg_scores(&a, d->categories, d->n_categories);
    arg_scores(&a, d->brands, d->n_brands);
    arg_scores(&a, d->tiers, d->n_tiers);
    arg_ids(&a, d->viewed, d->n_viewed);
    arg_fmt_int(&a, (int64_t)d->n_cart_add);
    for (size_t i = 0; i < d->n_cart_add; i++) {
        arg_str(&a, d->cart_add[i].id);
        arg_fmt_int(&a, d->cart_add[i].quantity);
    }
    arg_fmt_int(&a, (int64_t)d->n_cart_remove);
    for (size_t i = 0; i < d->n_cart_remove; i++) {
        arg_str(&a, d->cart_remove[i].id);
        arg_fmt_int(&a, d->cart_remove[i].quantity);
    }
    arg_ids(&a, d->purchased, d->n_purchased);

    /* hiredis copies the arguments into its output buffer, so the scratch can be reused. */
    if (redisAppendCommandArgv(st->ctx, a.argc, st->argv, st->argvlen) != REDIS_OK) {
        st->failed = true;
        snprintf(st->fail_reason, sizeof st->fail_reason, "redis append failed: %s",
                 st->ctx->errstr);
        return;
    }
    st->queued++;
}


int vt_store_batch_commit(struct vt_store *st, int *applied, size_t n, char *err,
                          size_t errsize)
{
    bool ok = !st->failed;

    if (st->failed) {
        vt_strlcpy(err, st->fail_reason, errsize);
        close_connection(st);
        return -1;
    }
    if (n != st->queued) {
        snprintf(err, errsize, "batch has %zu queued calls but %zu results were requested",
                 st->queued, n);
        close_connection(st);
        return -1;
    }

    /* Read every reply, also after an error reply, so that the connection stays in step;
     * a lost connection ends the loop. */
    for (size_t i = 0; i < st->queued; i++) {
        redisReply *r = NULL;

        if (redisGetReply(st->ctx, (void **)&r) != REDIS_OK || r == NULL) {
            char why[64];
            snprintf(err, errsize, "redis %s:%" PRId64 ": %s", st->cfg->redis_host,
                     st->cfg->redis_port, describe_error(st, why, sizeof why));
            close_connection(st);
            return -1;
        }
        if (r->type == REDIS_REPLY_INTEGER) {
            applied[i] = r->integer == 1;
        } else {
            if (ok) {
                if (r->type == REDIS_REPLY_ERROR)
                    snprintf(err, errsize, "redis profile script failed: %.*s", (int)r->len,
                             r->str);
                else
                    snprintf(err, errsize, "redis profile script returned reply type %d",
                             r->type);
            }
            ok = false;
            /* NOSCRIPT after a Redis restart or SCRIPT FLUSH: reload on the next batch. */
            if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0)
                st->script_loaded = false;
        }
        freeReplyObject(r);
    }
    st->queued = 0;
    if (!ok)
        close_connection(st);
    return ok ? 0 : -1;
}


/* ---- reads ---- */

/* Parse a reply element as a number; 0 when absent or malformed. */
static double reply_double(const redisReply *r)
{
    char buf[64];
    double v;

    if (r == NULL || r->type != REDIS_REPLY_STRING || r->len == 0 || r->len >= sizeof buf)
        return 0;
    memcpy(buf, r->str, r->len);
    buf[r->len] = '\0';
    if (vt_parse_double(buf, -1e300, 1e300, &v) != 0)
        return 0;
    return v;
}


static int64_t reply_int(const redisReply *r)
{
    double v = reply_double(r);
    return (int64_t)v;
}


static bool reply_is(const redisReply *r, const char *s)
{
    size_t n = strlen(s);
    return r->type == REDIS_REPLY_STRING && r->len == n && memcmp(r->str, s, n) == 0;
}


static void copy_reply_string(char *dst, size_t dstsize, const redisReply *r)
{
    if (r->type != REDIS_REPLY_STRING) {
        dst[0] = '\0';
        return;
    }
    vt_copy_utf8(dst, dstsize, r->str, r->len);
}


static void parse_profile_hash(const redisReply *r, struct vt_profile *p)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
        return;
    p->exists = true;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];

        if (k->type != REDIS_REPLY_STRING)
            continue;
        if (reply_is(k, "events")) {
            p->events = reply_int(v);
        } else if (reply_is(k, "first")) {
            p->first_seen_ms = reply_int(v);
        } else if (reply_is(k, "last")) {
            p->last_seen_ms = reply_int(v);
        } else if (reply_is(k, "user")) {
            copy_reply_string(p->user_id, sizeof p->user_id, v);
        } else if (reply_is(k, "g_lo")) {
            p->gender_log_odds = reply_double(v);
        } else if (reply_is(k, "g_n")) {
            p->gender_evidence = reply_int(v);
        } else if (reply_is(k, "revenue")) {
            p->revenue = reply_double(v);
        } else if (k->len > 2 && memcmp(k->str, "n:", 2) == 0) {
            enum vt_event_type type;
            if (vt_event_type_parse(k->str + 2, k->len - 2, &type) == 0)
                p->count_by_type[type] = reply_int(v);
        }
    }
}


static size_t parse_scored(const redisReply *r, struct vt_scored_name *out, size_t max,
                           int64_t ref_ms, double half_life_s)
{
    size_t n = 0;

    if (r->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t i = 0; i + 1 < r->elements && n < max; i += 2) {
        copy_reply_string(out[n].name, sizeof out[n].name, r->element[i]);
        out[n].log_score = reply_double(r->element[i + 1]);
        out[n].value = vt_decay_value(out[n].log_score, ref_ms, half_life_s);
        n++;
    }
    return n;
}


static size_t parse_timed(const redisReply *r, struct vt_timed_id *out, size_t max)
{
    size_t n = 0;

    if (r->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t i = 0; i + 1 < r->elements && n < max; i += 2) {
        copy_reply_string(out[n].id, sizeof out[n].id, r->element[i]);
        out[n].ts_ms = reply_int(r->element[i + 1]);
        n++;
    }
    return n;
}


static size_t parse_cart(const redisReply *r, struct vt_cart_line *out, size_t max)
{
    size_t n = 0;

    if (r->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t i = 0; i + 1 < r->elements && n < max; i += 2) {
        int64_t q = reply_int(r->element[i + 1]);
        if (q <= 0)
            continue;
        copy_reply_string(out[n].id, sizeof out[n].id, r->element[i]);
        out[n].quantity = q;
        n++;
    }
    return n;
}


int vt_store_profile_read(struct vt_store *st, const char *id, size_t id_len, int64_t now_ms,
                          struct vt_profile *p, char *err, size_t errsize)
{
    const struct vt_config *cfg = st->cfg;
    char top_cat[24], top_brand[24], top_recent[24], top_buy[24];
    enum { READS = 8 };
    redisReply *replies[READS] = {0};
    int rc = -1;

    vt_profile_clear(p);
    if (ensure_connected(st, err, errsize) != 0)
        return -1;
    build_keys(st, id, id_len);
    snprintf(top_cat, sizeof top_cat, "%" PRId64, cfg->profile_categories_max - 1);
    snprintf(top_brand, sizeof top_brand, "%" PRId64, cfg->profile_brands_max - 1);
    snprintf(top_recent, sizeof top_recent, "%" PRId64, cfg->profile_recent_max - 1);
    snprintf(top_buy, sizeof top_buy, "%d", PURCHASED_CAP - 1);

    /* One pipeline, one round trip. The keys go as binary-safe arguments (%b). */
    const char *k[KEY_COUNT];
    size_t kl[KEY_COUNT];
    for (int i = 0; i < KEY_COUNT; i++) {
        k[i] = st->keys[i];
        kl[i] = strlen(st->keys[i]);
    }
    redisAppendCommand(st->ctx, "HGETALL %b", k[KEY_PROFILE], kl[KEY_PROFILE]);
    redisAppendCommand(st->ctx, "ZREVRANGE %b 0 %s WITHSCORES", k[KEY_CATEGORIES],
                       kl[KEY_CATEGORIES], top_cat);
    redisAppendCommand(st->ctx, "ZREVRANGE %b 0 %s WITHSCORES", k[KEY_BRANDS], kl[KEY_BRANDS],
                       top_brand);
    redisAppendCommand(st->ctx, "ZREVRANGE %b 0 -1 WITHSCORES", k[KEY_TIERS], kl[KEY_TIERS]);
    redisAppendCommand(st->ctx, "ZREVRANGE %b 0 %s WITHSCORES", k[KEY_RECENT], kl[KEY_RECENT],
                       top_recent);
    redisAppendCommand(st->ctx, "HGETALL %b", k[KEY_CART], kl[KEY_CART]);
    redisAppendCommand(st->ctx, "ZREVRANGE %b 0 %s WITHSCORES", k[KEY_PURCHASED],
                       kl[KEY_PURCHASED], top_buy);
    redisAppendCommand(st->ctx, "TTL %b", k[KEY_PROFILE], kl[KEY_PROFILE]);

    for (int i = 0; i < READS; i++) {
        if (redisGetReply(st->ctx, (void **)&replies[i]) != REDIS_OK || replies[i] == NULL) {
            char why[64];
            snprintf(err, errsize, "redis %s:%" PRId64 ": %s", cfg->redis_host,
                     cfg->redis_port, describe_error(st, why, sizeof why));
            close_connection(st);
            goto out;
        }
    }
    for (int i = 0; i < READS; i++) {
        if (replies[i]->type == REDIS_REPLY_ERROR) {
            snprintf(err, errsize, "redis profile read failed: %.*s", (int)replies[i]->len,
                     replies[i]->str);
            goto out;
        }
    }

    parse_profile_hash(replies[0], p);
    /* Values are decayed to the profile's last event, not to the wall clock: the shares
     * and the ranking are the same either way, and an idle or replayed profile keeps
     * readable values instead of underflowing to zero. */
    int64_t ref_ms = p->last_seen_ms > 0 ? p->last_seen_ms : now_ms;
    p->n_categories = parse_scored(replies[1], p->categories, VT_PROFILE_TOP_MAX, ref_ms,
                                   cfg->profile_half_life_s);
    p->n_brands = parse_scored(replies[2], p->brands, VT_PROFILE_TOP_MAX, ref_ms,
                               cfg->profile_half_life_s);
    p->n_tiers = parse_scored(replies[3], p->tiers, VT_TIER_COUNT, ref_ms,
                              cfg->profile_half_life_s);
    p->n_recent = parse_timed(replies[4], p->recent, VT_PROFILE_RECENT_MAX);
    p->n_cart = parse_cart(replies[5], p->cart, VT_PROFILE_CART_MAX);
    p->n_purchased = parse_timed(replies[6], p->purchased, VT_PROFILE_PURCHASED_MAX);
    if (replies[7]->type == REDIS_REPLY_INTEGER)
        p->ttl_s = replies[7]->integer;
    rc = 0;

out:
    for (int i = 0; i < READS; i++) {
        if (replies[i] != NULL)
            freeReplyObject(replies[i]);
    }
    return rc;
}


int vt_store_profile_delete(struct vt_store *st, const char *id, size_t id_len,
                            int64_t *deleted, char *err, size_t errsize)
{
    const char *argv[1 + KEY_COUNT];
    size_t lens[1 + KEY_COUNT];
    redisReply *r;

    if (ensure_connected(st, err, errsize) != 0)
        return -1;
    build_keys(st, id, id_len);
    argv[0] = "DEL";
    lens[0] = 3;
    for (int i = 0; i < KEY_COUNT; i++) {
        argv[1 + i] = st->keys[i];
        lens[1 + i] = strlen(st->keys[i]);
    }
    r = command_argv(st, 1 + KEY_COUNT, argv, lens, err, errsize);
    if (r == NULL)
        return -1;
    *deleted = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    return 0;
}
