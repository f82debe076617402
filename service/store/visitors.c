/*
 * vitrine: visitors in Redis: the long-term profile a session is linked to, its sessions,
 * and erasure (see include/vitrine/store.h for the keys and docs/privacy.md for the
 * guarantees).
 *
 * A visitor's keys share the hash tag "{#<visitor id>}". '#' is not allowed in ids, so
 * they never meet a session's keys. The ingest thread writes them in a step of its own
 * after the profiles of a batch: one script call per record of a linked session with
 * consent, pipelined in one round trip. HTTP workers read them when a linked session is
 * served, and erase them on request.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "vitrine/util.h"

enum visitor_key {
    VKEY_PROFILE = 0, /* hash: events, sessions, first, last, g_lo, g_n, revenue, offsets */
    VKEY_CATEGORIES,  /* sorted set: category -> log-score at visitor.half_life_s */
    VKEY_BRANDS,
    VKEY_TIERS,
    VKEY_SESSIONS, /* sorted set: linked session -> wall time of its last record (ms) */
    VKEY_REFUSED,  /* sorted set: session over visitor.sessions_max -> the same */
    VKEY_ALIASES,  /* set: visitors this one took sessions over from at a login */
    VKEY_TAKEN_BY, /* set: visitors that took sessions over from this one */
    VKEY_COUNT
};

static const char *const visitor_suffixes[VKEY_COUNT] = {"p", "cat", "brand", "tier",
                                                        "s", "x",   "al",    "to"};

/* Sessions kept in the refused list, and visitors in the alias set. */
#define REFUSED_CAP 10000
#define ALIASES_CAP 1000
/* A linked session is forgotten this long after its keys expired at the latest. */
#define SESSION_SLACK_MS (3600 * 1000)

_Static_assert((int)VKEY_COUNT <= (int)KEY_COUNT, "visitor keys are built in the profile key scratch");
_Static_assert(32 + 2 + VT_ID_MAX + 2 + 8 < STORE_KEY_MAX, "a visitor key fits the scratch");
/* The visit script takes the keys up to the aliases; ":to" is written by the link script. */
#define VKEY_VISIT_COUNT VKEY_TAKEN_BY
_Static_assert(REFUSED_CAP == 10000 && ALIASES_CAP == 1000,
               "the caps are written into the visit script as literals");

/*
 * Apply one record of a linked session to its visitor.
 *
 * KEYS: the first seven visitor keys above. ARGV[1] and ARGV[2] are the redelivery field and
 * the offset, checked like the profile's. ARGV[3] is the session, ARGV[4] the wall time
 * (ms). Sessions whose last record is older than ARGV[5] ms are dropped from both lists,
 * because their keys have expired. A session not yet linked is linked while fewer than
 * ARGV[7] are. Otherwise it goes into the rejected list and the record changes nothing
 * else.
 *
 * ARGV[8] and ARGV[9] cap the category and brand lists. ARGV[10] is the event time, and
 * ARGV[11..13] are the gender step, gender evidence and revenue. ARGV[14] is a visitor
 * this one takes the session over from ("" when none). ARGV[15] is "1" when the session's
 * profile follows the record's own lists: it replaces them when this visitor takes over a
 * session it never had (a login). A session it had before (a login back and forth) adds
 * only the record's own lists, so nothing counts twice. ARGV[16] "1" requests a snapshot
 * of the visitor for the session, because it has none or a login moved it.
 *
 * Returns {outcome} or, when a snapshot was asked for, {outcome, session, login, linked,
 * sessions, revenue, g_lo, g_n, n, (category, score)..., m, (brand, score)..., k, (tier,
 * score)...}; login is 1 when ARGV[14] names a visitor the session came from. The outcome is 0 for a redelivery, 1 for a linked session, 2 for a refused
 * one and 3 for a session linked by this record. The snapshot of a session the record
 * links is taken before the record's own contributions, so that serving the session does
 * not count them twice.
 */
const char store_visit_script[] =
    "local SCALE = " VT_SCORE_SCALE_TEXT "\n"
    "local p = KEYS[1]\n"
    "local sid, ttl = ARGV[3], ARGV[6]\n"
    "local want = ARGV[16] == '1'\n"
    "local function snapshot(outcome, linked)\n"
    "  local out = {outcome, sid, ARGV[14] ~= '' and 1 or 0, linked and 1 or 0}\n"
    "  local h = redis.call('HMGET', p, 'sessions', 'revenue', 'g_lo', 'g_n')\n"
    "  for k = 1, 4 do out[#out + 1] = h[k] or '0' end\n"
    "  local caps = {tonumber(ARGV[8]), tonumber(ARGV[9]), 4}\n"
    "  for k = 2, 4 do\n"
    "    local r = {}\n"
    "    if linked then r = redis.call('ZREVRANGE', KEYS[k], '0', tostring(caps[k - 1] - 1), 'WITHSCORES') end\n"
    "    out[#out + 1] = #r / 2\n"
    "    for j = 1, #r do out[#out + 1] = r[j] end\n"
    "  end\n"
    "  return out\n"
    "end\n"
    "local last = redis.call('HGET', p, ARGV[1])\n"
    "if last and tonumber(last) >= tonumber(ARGV[2]) then\n"
    "  if want then return snapshot(0, redis.call('ZSCORE', KEYS[5], sid) ~= false) end\n"
    "  return {0}\n"
    "end\n"
    "local keep_from = string.format('(%d', tonumber(ARGV[4]) - tonumber(ARGV[5]))\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', keep_from)\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', keep_from)\n"
    "redis.call('HSET', p, ARGV[1], ARGV[2])\n"
    "local function expire_all() for k = 1, 7 do redis.call('EXPIRE', KEYS[k], ttl) end end\n"
    "local function add_alias()\n"
    "  if ARGV[14] ~= '' and redis.call('SCARD', KEYS[7]) < 1000 then\n"
    "    redis.call('SADD', KEYS[7], ARGV[14])\n"
    "  end\n"
    "end\n"
    "local outcome = 1\n"
    "local was_linked = redis.call('ZSCORE', KEYS[5], sid)\n"
    "if not was_linked then\n"
    "  if redis.call('ZCARD', KEYS[5]) >= tonumber(ARGV[7]) then\n"
    "    redis.call('ZADD', KEYS[6], ARGV[4], sid)\n"
    "    redis.call('ZREMRANGEBYRANK', KEYS[6], '0', '-10001')\n"
    "    add_alias()\n"
    "    expire_all()\n"
    "    if want then return snapshot(2, false) end\n"
    "    return {2}\n"
    "  end\n"
    "  outcome = 3\n"
    "  redis.call('HINCRBY', p, 'sessions', '1')\n"
    "end\n"
    "redis.call('ZADD', KEYS[5], ARGV[4], sid)\n"
    "local result = {outcome}\n"
    "if want then result = snapshot(outcome, true) end\n"
    "local i = 17\n"
    "local function scored()\n"
    "  local n = tonumber(ARGV[i]); i = i + 1\n"
    "  local list = {}\n"
    "  for k = 1, n do list[k] = {ARGV[i], tonumber(ARGV[i + 1])}; i = i + 2 end\n"
    "  return list\n"
    "end\n"
    "local function logadd(a, b)\n"
    "  if b > a then a, b = b, a end\n"
    "  return a + SCALE * math.log(1 + math.exp((b - a) / SCALE))\n"
    "end\n"
    "local function decayed(key, list, cap)\n"
    "  local added = 0\n"
    "  for k = 1, #list do\n"
    "    local x = list[k][2]\n"
    "    local cur = redis.call('ZSCORE', key, list[k][1])\n"
    "    if cur then x = logadd(tonumber(cur), x) end\n"
    "    added = added + redis.call('ZADD', key, string.format('%d', math.floor(x + 0.5)), list[k][1])\n"
    "  end\n"
    "  if added > 0 then redis.call('ZREMRANGEBYRANK', key, '0', tostring(-(cap + 1))) end\n"
    "end\n"
    "local cats, brands, tiers = scored(), scored(), scored()\n"
    "local g_step, g_n, revenue = ARGV[11], tonumber(ARGV[12]), ARGV[13]\n"
    "if ARGV[15] == '1' and not was_linked then\n"
    "  cats, brands, tiers = scored(), scored(), scored()\n"
    "  g_step, g_n, revenue = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]\n"
    "end\n"
    "local ts = tonumber(ARGV[10])\n"
    "redis.call('HINCRBY', p, 'events', '1')\n"
    "local first = tonumber(redis.call('HGET', p, 'first') or '')\n"
    "if not first or ts < first then redis.call('HSET', p, 'first', ARGV[10]) end\n"
    "local seen = tonumber(redis.call('HGET', p, 'last') or '')\n"
    "if not seen or ts > seen then redis.call('HSET', p, 'last', ARGV[10]) end\n"
    "if tonumber(g_step) ~= 0 then redis.call('HINCRBYFLOAT', p, 'g_lo', g_step) end\n"
    "if g_n > 0 then redis.call('HINCRBY', p, 'g_n', g_n) end\n"
    "if tonumber(revenue) > 0 then redis.call('HINCRBYFLOAT', p, 'revenue', revenue) end\n"
    "decayed(KEYS[2], cats, tonumber(ARGV[8]))\n"
    "decayed(KEYS[3], brands, tonumber(ARGV[9]))\n"
    "decayed(KEYS[4], tiers, 4)\n"
    "add_alias()\n"
    "expire_all()\n"
    "return result\n";
const size_t store_visit_script_len = sizeof store_visit_script - 1;

/*
 * Remember, in the visitor a session came from (KEYS[1], its ":to" set), the visitor that
 * took the session over at a login (ARGV[1]), so that erasing the first one can remove
 * its traces from the second. At most 1,000; the set expires with the visitor (ARGV[2]).
 * Returns {4}, an outcome the visit script never returns.
 */
const char store_link_script[] =
    "if redis.call('SCARD', KEYS[1]) < 1000 then redis.call('SADD', KEYS[1], ARGV[1]) end\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[2])\n"
    "return {4}\n";
const size_t store_link_script_len = sizeof store_link_script - 1;

/*
 * Write a session's snapshot of its visitor. KEYS[1] is the session's hash and KEYS[2] its
 * snapshot. ARGV[1] is the session TTL, then field/value pairs from ARGV[3] on. ARGV[2] "1"
 * replaces a snapshot (a login). Any other value keeps an existing one, because the first
 * record of a batch wrote it before the later ones reached the visitor. A session without
 * events (no consent, or erased meanwhile) gets none. Returns 1 when written.
 */
const char store_snapshot_script[] =
    "local state = redis.call('HMGET', KEYS[1], 'consent', 'events')\n"
    "if state[1] == '0' or not state[2] then return 0 end\n"
    "if ARGV[2] ~= '1' and redis.call('EXISTS', KEYS[2]) == 1 then return 0 end\n"
    "redis.call('DEL', KEYS[2])\n"
    "if #ARGV > 2 then redis.call('HSET', KEYS[2], unpack(ARGV, 3)) end\n"
    "redis.call('EXPIRE', KEYS[2], ARGV[1])\n"
    "return 1\n";
const size_t store_snapshot_script_len = sizeof store_snapshot_script - 1;

/* Build the visitor's key names, "<prefix>{#<visitor>}:<suffix>", into st->keys. The
 * prefix (< 32 bytes) and the id (at most VT_ID_MAX) keep each one far below
 * STORE_KEY_MAX. */
static void build_visitor_keys(struct vt_store *st, const char *visitor, size_t len)
{
    const char *prefix = st->cfg->redis_prefix;
    size_t prefix_len = strlen(prefix);

    if (len > VT_ID_MAX)
        len = VT_ID_MAX;
    for (int k = 0; k < VKEY_COUNT; k++) {
        char *key = st->keys[k];
        size_t suffix_len = strlen(visitor_suffixes[k]);
        size_t at = 0;

        memcpy(key + at, prefix, prefix_len);
        at += prefix_len;
        memcpy(key + at, "{#", 2);
        at += 2;
        memcpy(key + at, visitor, len);
        at += len;
        memcpy(key + at, "}:", 2);
        at += 2;
        memcpy(key + at, visitor_suffixes[k], suffix_len + 1);
        st->key_lens[k] = at + suffix_len;
    }
}


/* A delta's log-scores are at the session's half-life; a visitor keeps its own. All
 * entries of one delta share the event time, so the change is one shift. */
static void arg_delta_scores(struct vt_store *st, const struct vt_named_score *list, size_t n,
                             double shift)
{
    store_arg_int(st, (int64_t)n);
    for (size_t i = 0; i < n; i++) {
        store_arg(st, list[i].name);
        store_arg_int(st, vt_score_stored(list[i].log_score + shift));
    }
}


/* A session's entries, decayed to its last event, as one contribution each at that time. */
static void arg_session_scores(struct vt_store *st, const struct vt_scored_name *list,
                               size_t n, int64_t at_ms, double half_life_s)
{
    size_t usable = 0;

    for (size_t i = 0; i < n; i++)
        usable += list[i].value > 0 && isfinite(list[i].value);
    store_arg_int(st, (int64_t)usable);
    for (size_t i = 0; i < n; i++) {
        if (!(list[i].value > 0 && isfinite(list[i].value)))
            continue;
        store_arg(st, list[i].name);
        store_arg_int(st, vt_score_stored(vt_decay_log_score(list[i].value, at_ms, half_life_s)));
    }
}


void vt_store_visitors_begin(struct vt_store *st)
{
    store_pipeline_begin(st);
    vt_buf_reset(&st->snapshots);
    st->n_snapshots = 0;
}


void vt_store_visitors_add(struct vt_store *st, const struct vt_profile_delta *d,
                           const struct vt_apply_result *r, const struct vt_profile *session,
                           bool covered, bool want_snapshot, int64_t now_ms)
{
    const struct vt_config *cfg = st->cfg;
    double shift = ((double)d->ts_ms / 1000.0) * M_LN2 *
                   (1.0 / cfg->visitor_half_life_s - 1.0 / cfg->profile_half_life_s);
    bool login = r->visitor_before[0] != '\0' && strcmp(r->visitor_before, r->visitor) != 0;

    if (st->failed || !r->personal || r->visitor[0] == '\0')
        return;
    store_args_reset(st);
    build_visitor_keys(st, r->visitor, strlen(r->visitor));

    store_args_script(st, SCRIPT_VISIT, VKEY_VISIT_COUNT);
    for (int k = 0; k < VKEY_VISIT_COUNT; k++)
        store_arg_len(st, st->keys[k], st->key_lens[k]);
    store_arg_printf(st, "o:%s:%" PRId32, d->source_tag, d->partition);
    store_arg_int(st, d->offset);
    store_arg(st, d->profile_id);
    store_arg_int(st, now_ms);
    store_arg_int(st, cfg->profile_ttl_s * 1000 + SESSION_SLACK_MS);
    store_arg_int(st, cfg->visitor_ttl_s);
    store_arg_int(st, cfg->visitor_sessions_max);
    store_arg_int(st, cfg->profile_categories_max);
    store_arg_int(st, cfg->profile_brands_max);
    store_arg_int(st, d->ts_ms);
    store_arg_double(st, covered ? 0 : d->gender_step);
    store_arg_int(st, covered ? 0 : d->gender_evidence);
    store_arg_double(st, covered ? 0 : d->revenue);
    store_arg(st, login ? r->visitor_before : "");
    store_arg(st, session != NULL ? "1" : "0");
    store_arg(st, want_snapshot ? "1" : "0");

    arg_delta_scores(st, d->categories, covered ? 0 : d->n_categories, shift);
    arg_delta_scores(st, d->brands, covered ? 0 : d->n_brands, shift);
    arg_delta_scores(st, d->tiers, covered ? 0 : d->n_tiers, shift);
    if (session != NULL) {
        int64_t at = session->last_seen_ms > 0 ? session->last_seen_ms : d->ts_ms;
        arg_session_scores(st, session->categories, session->n_categories, at,
                           cfg->visitor_half_life_s);
        arg_session_scores(st, session->brands, session->n_brands, at,
                           cfg->visitor_half_life_s);
        arg_session_scores(st, session->tiers, session->n_tiers, at, cfg->visitor_half_life_s);
        store_arg_double(st, session->gender_log_odds);
        store_arg_int(st, session->gender_evidence);
        store_arg_double(st, session->revenue);
    }
    store_queue(st);

    if (login) {
        store_args_reset(st);
        build_visitor_keys(st, r->visitor_before, strlen(r->visitor_before));
        store_args_script(st, SCRIPT_LINK, 1);
        store_arg_len(st, st->keys[VKEY_TAKEN_BY], st->key_lens[VKEY_TAKEN_BY]);
        store_arg(st, r->visitor);
        store_arg_int(st, cfg->visitor_ttl_s);
        store_queue(st);
    }
}


/* ---- snapshots ---- */

static void snap_put(struct vt_buf *b, const char *s, size_t n)
{
    char digits[24];
    const char *count = store_decimal(digits, n);

    vt_buf_append(b, "$", 1);
    vt_buf_appends(b, count);
    vt_buf_append(b, "\r\n", 2);
    vt_buf_append(b, s, n);
    vt_buf_append(b, "\r\n", 2);
}


static void snap_put_reply(struct vt_buf *b, const redisReply *r)
{
    if (r->type == REDIS_REPLY_STRING)
        snap_put(b, r->str, r->len);
    else if (r->type == REDIS_REPLY_INTEGER) {
        char digits[24];
        const char *text = store_decimal(digits, r->integer > 0 ? (uint64_t)r->integer : 0);
        snap_put(b, text, strlen(text));
    } else {
        snap_put(b, "0", 1);
    }
}


/* A session key "<prefix>{<session>}:<suffix>" as one bulk string. */
static void snap_put_key(struct vt_buf *b, const struct vt_store *st, const redisReply *sid,
                         const char *suffix)
{
    char key[STORE_KEY_MAX];
    int n = snprintf(key, sizeof key, "%s{%.*s}:%s", st->cfg->redis_prefix, (int)sid->len,
                     sid->str, suffix);

    snap_put(b, key, n > 0 && (size_t)n < sizeof key ? (size_t)n : 0);
}


/*
 * Turn the snapshot part of a visit reply ({outcome, session, login, linked, sessions,
 * revenue, g_lo, g_n, n, pairs..., m, pairs..., k, pairs...}) into one call of the
 * snapshot script,
 * appended to st->snapshots as protocol text. Fields of the snapshot hash: linked,
 * sessions, revenue, g_lo, g_n, and "c:", "b:", "t:" before each category, brand and tier
 * with its stored score.
 */
static bool queue_snapshot(struct vt_store *st, const redisReply *r, char *err, size_t errsize)
{
    static const char *const fields[] = {"linked", "sessions", "revenue", "g_lo", "g_n"};
    static const char *const kinds[] = {"c:", "b:", "t:"};
    const redisReply *sid = r->element[1];
    size_t pairs = 5, i = 8;
    char digits[24], name[VT_NAME_MAX + 3];

    if (sid->type != REDIS_REPLY_STRING || r->elements < 11) {
        snprintf(err, errsize, "redis visit script returned a short snapshot");
        return false;
    }
    /* Count the pairs first: the command starts with its length. */
    for (int kind = 0; kind < 3 && i < r->elements; kind++) {
        size_t n = (size_t)store_reply_int(r->element[i]);
        pairs += n;
        i += 1 + 2 * n;
    }
    if (i > r->elements) {
        snprintf(err, errsize, "redis visit script returned a malformed snapshot");
        return false;
    }

    struct vt_buf *b = &st->snapshots;
    const char *argc = store_decimal(digits, 7 + 2 * pairs);
    vt_buf_append(b, "*", 1);
    vt_buf_appends(b, argc);
    vt_buf_append(b, "\r\n", 2);
    snap_put(b, "EVALSHA", 7);
    snap_put(b, st->sha[SCRIPT_SNAPSHOT], strlen(st->sha[SCRIPT_SNAPSHOT]));
    snap_put(b, "2", 1);
    snap_put_key(b, st, sid, "p");
    snap_put_key(b, st, sid, "v");
    const char *ttl = store_decimal(digits, (uint64_t)st->cfg->profile_ttl_s);
    snap_put(b, ttl, strlen(ttl));
    snap_put(b, store_reply_int(r->element[2]) == 1 ? "1" : "0", 1);
    for (size_t f = 0; f < 5; f++) {
        snap_put(b, fields[f], strlen(fields[f]));
        snap_put_reply(b, r->element[3 + f]);
    }
    i = 8;
    for (int kind = 0; kind < 3; kind++) {
        size_t n = (size_t)store_reply_int(r->element[i++]);
        for (size_t k = 0; k < n; k++, i += 2) {
            const redisReply *entry = r->element[i];
            size_t len = entry->type == REDIS_REPLY_STRING && entry->len <= VT_NAME_MAX
                             ? entry->len : 0;
            memcpy(name, kinds[kind], 2);
            if (len > 0)
                memcpy(name + 2, entry->str, len);
            snap_put(b, name, 2 + len);
            snap_put_reply(b, r->element[i + 1]);
        }
    }
    st->n_snapshots++;
    return true;
}


static bool count_visits(const redisReply *r, size_t index, void *arg, char *err,
                         size_t errsize)
{
    struct vt_store *st = arg;
    struct vt_visitor_counts *counts = st->visit_counts;

    (void)index;
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[0]->integer < 0 ||
        r->element[0]->integer > 4) {
        snprintf(err, errsize, "redis visit script returned an unexpected reply (type %d)",
                 r->type);
        return false;
    }
    long long outcome = r->element[0]->integer;
    counts->applied += outcome == 1 || outcome == 3;
    counts->linked += outcome == 3;
    counts->refused += outcome == 2;
    return r->elements == 1 || queue_snapshot(st, r, err, errsize);
}


/* Write the snapshots the visit replies carried: one more round trip, only when a
 * session was linked or moved. */
static int write_snapshots(struct vt_store *st, char *err, size_t errsize)
{
    size_t n = st->n_snapshots;
    int rc;

    if (n == 0)
        return 0;
    if (st->snapshots.overflow) {
        snprintf(err, errsize, "the snapshots of one batch exceed %d bytes",
                 STORE_SNAPSHOTS_MAX);
        return -1;
    }
    if (redisAppendFormattedCommand(st->ctx, st->snapshots.data, st->snapshots.len) !=
        REDIS_OK) {
        snprintf(err, errsize, "redis append failed: %s", st->ctx->errstr);
        store_close(st);
        return -1;
    }
    redisReply **replies = calloc(n, sizeof *replies);
    if (replies == NULL) {
        snprintf(err, errsize, "out of memory");
        store_close(st);
        return -1;
    }
    rc = store_read_replies(st, replies, n, "snapshot write", err, errsize);
    for (size_t i = 0; i < n; i++) {
        if (replies[i] != NULL)
            freeReplyObject(replies[i]);
    }
    free(replies);
    if (rc != 0)
        store_close(st);
    return rc;
}


int vt_store_visitors_commit(struct vt_store *st, struct vt_visitor_counts *counts, char *err,
                             size_t errsize)
{
    memset(counts, 0, sizeof *counts);
    st->visit_counts = counts;
    if (store_pipeline_commit(st, count_visits, st, err, errsize) != 0)
        return -1;
    return write_snapshots(st, err, errsize);
}


/* ---- erasure ---- */

#define ERASE_VISITORS_MAX VT_ERASE_VISITORS_MAX
#define ERASE_SESSIONS_MAX VT_ERASE_SESSIONS_MAX
_Static_assert(VT_ERASE_SESSIONS_MAX >= 1000 + REFUSED_CAP,
               "an erasure holds every session one visitor lists");

struct id_list {
    size_t n, max;
    bool full; /* an id did not fit */
    char (*ids)[VT_ID_MAX + 1];
};

struct erase_work {
    struct id_list visitors; /* to erase, the requested one first */
    bool *kept;              /* per visitor: shared with someone else, only cleaned */
    struct id_list sessions; /* every session deleted */
    struct id_list clean;    /* visitors to remove erased ids from */
    struct id_list found;    /* scratch: one reply's ids */
    struct id_list takers;   /* scratch: the current visitor's takers */
};


static bool list_init(struct id_list *list, size_t max)
{
    list->n = 0;
    list->max = max;
    list->full = false;
    list->ids = calloc(max, sizeof *list->ids);
    return list->ids != NULL;
}


static bool list_has(const struct id_list *list, const char *id, size_t len)
{
    for (size_t i = 0; i < list->n; i++) {
        if (strlen(list->ids[i]) == len && memcmp(list->ids[i], id, len) == 0)
            return true;
    }
    return false;
}


/* Append the id unless it is there already or is no id; a full list remembers it. */
static void list_add(struct id_list *list, const char *id, size_t len)
{
    if (len == 0 || len > VT_ID_MAX || !vt_id_valid(id, len) || list_has(list, id, len))
        return;
    if (list->n == list->max) {
        list->full = true;
        return;
    }
    memcpy(list->ids[list->n], id, len);
    list->ids[list->n][len] = '\0';
    list->n++;
}


static void list_add_reply(struct id_list *list, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < r->elements; i++) {
        if (r->element[i]->type == REDIS_REPLY_STRING)
            list_add(list, r->element[i]->str, r->element[i]->len);
    }
}


/* Read the members of some of a visitor's sets into lists: its sessions (linked and
 * refused), aliases and takers, each list NULL when not wanted. One round trip. */
static int read_sets(struct vt_store *st, const char *visitor, struct id_list *sessions,
                     struct id_list *aliases, struct id_list *takers, char *err,
                     size_t errsize)
{
    enum { READS = 4 };
    static const int keys[READS] = {VKEY_SESSIONS, VKEY_REFUSED, VKEY_ALIASES, VKEY_TAKEN_BY};
    struct id_list *into[READS] = {sessions, sessions, aliases, takers};
    redisReply *replies[READS] = {0};
    struct store_batch batch = {.len = 0};
    int rc = -1;

    build_visitor_keys(st, visitor, strlen(visitor));
    for (int i = 0; i < READS; i++) {
        bool sorted = keys[i] == VKEY_SESSIONS || keys[i] == VKEY_REFUSED;
        const char *argv[] = {sorted ? "ZRANGE" : "SMEMBERS", st->keys[keys[i]], "0", "-1"};
        size_t lens[] = {sorted ? 6 : 8, st->key_lens[keys[i]], 1, 2};
        store_batch_args(&batch, sorted ? 4 : 2, argv, lens);
    }
    if (store_batch_send(st, &batch, err, errsize) != 0)
        return -1;
    if (store_read_replies(st, replies, READS, "visitor erasure read", err, errsize) == 0) {
        for (int i = 0; i < READS; i++) {
            if (into[i] != NULL)
                list_add_reply(into[i], replies[i]);
        }
        rc = 0;
    }
    for (int i = 0; i < READS; i++) {
        if (replies[i] != NULL)
            freeReplyObject(replies[i]);
    }
    return rc;
}


/* One command "<command> <key> <member>..." with the members of a list; nothing for an
 * empty list. */
static int remove_members(struct vt_store *st, const char *command, int key,
                          const struct id_list *members, char *err, size_t errsize)
{
    if (members->n == 0)
        return 0;
    const char **argv = calloc(members->n + 2, sizeof *argv);
    size_t *lens = calloc(members->n + 2, sizeof *lens);
    int rc = -1;

    if (argv == NULL || lens == NULL) {
        snprintf(err, errsize, "out of memory");
        goto out;
    }
    argv[0] = command;
    lens[0] = strlen(command);
    argv[1] = st->keys[key];
    lens[1] = st->key_lens[key];
    for (size_t i = 0; i < members->n; i++) {
        argv[2 + i] = members->ids[i];
        lens[2 + i] = strlen(members->ids[i]);
    }
    redisReply *r = store_command(st, (int)members->n + 2, argv, lens, err, errsize);
    if (r != NULL) {
        freeReplyObject(r);
        rc = 0;
    }

out:
    free(argv);
    free(lens);
    return rc;
}


/* Remove from a visitor every erased visitor's id and every deleted session's id. */
static int clean_visitor(struct vt_store *st, const char *visitor, const struct id_list *erased,
                         const struct id_list *sessions, char *err, size_t errsize)
{
    build_visitor_keys(st, visitor, strlen(visitor));
    if (remove_members(st, "SREM", VKEY_ALIASES, erased, err, errsize) != 0 ||
        remove_members(st, "SREM", VKEY_TAKEN_BY, erased, err, errsize) != 0 ||
        remove_members(st, "ZREM", VKEY_SESSIONS, sessions, err, errsize) != 0 ||
        remove_members(st, "ZREM", VKEY_REFUSED, sessions, err, errsize) != 0)
        return -1;
    return 0;
}


static int delete_visitor_keys(struct vt_store *st, const char *visitor, int64_t *deleted,
                               char *err, size_t errsize)
{
    const char *argv[1 + VKEY_COUNT];
    size_t lens[1 + VKEY_COUNT];

    build_visitor_keys(st, visitor, strlen(visitor));
    argv[0] = "DEL";
    lens[0] = 3;
    for (int k = 0; k < VKEY_COUNT; k++) {
        argv[1 + k] = st->keys[k];
        lens[1 + k] = st->key_lens[k];
    }
    redisReply *r = store_command(st, 1 + VKEY_COUNT, argv, lens, err, errsize);
    if (r == NULL)
        return -1;
    *deleted = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    return 0;
}


static void work_free(struct erase_work *work)
{
    free(work->visitors.ids);
    free(work->kept);
    free(work->sessions.ids);
    free(work->clean.ids);
    free(work->found.ids);
    free(work->takers.ids);
}


/* Delete the sessions of one visitor to erase, and queue its aliases for erasure and its
 * takers for cleaning. An alias that someone else took sessions over from too (a shared
 * device's cookie id) is not erased: it is only cleaned, and its other sessions stay. */
static int erase_sessions_of(struct vt_store *st, size_t index, struct erase_work *work,
                             struct vt_erasure *out, char *err, size_t errsize)
{
    const char *current = work->visitors.ids[index];
    size_t first_alias = work->visitors.n;

    work->found.n = 0;
    work->takers.n = 0;
    if (index > 0) {
        if (read_sets(st, current, NULL, NULL, &work->takers, err, errsize) != 0)
            return -1;
        for (size_t k = 0; k < work->takers.n; k++) {
            const char *t = work->takers.ids[k];
            if (!list_has(&work->visitors, t, strlen(t))) {
                work->kept[index] = true;
                list_add(&work->clean, current, strlen(current));
                return 0;
            }
        }
    }
    if (read_sets(st, current, &work->found, &work->visitors, &work->takers, err,
                  errsize) != 0)
        return -1;
    for (size_t k = first_alias; k < work->visitors.n; k++)
        work->kept[k] = false;
    for (size_t k = 0; k < work->takers.n; k++)
        list_add(&work->clean, work->takers.ids[k], strlen(work->takers.ids[k]));

    for (size_t k = 0; k < work->found.n; k++) {
        int64_t deleted = 0;
        if (vt_store_profile_delete(st, work->found.ids[k], strlen(work->found.ids[k]),
                                    &deleted, err, errsize) != 0)
            return -1;
        out->keys += deleted;
        out->sessions += deleted > 0;
        list_add(&work->sessions, work->found.ids[k], strlen(work->found.ids[k]));
    }
    work->sessions.full = work->sessions.full || work->found.full;
    return 0;
}


/*
 * The order lets a retry finish what a failure interrupted. First the sessions of the
 * visitor and of its aliases are deleted. Then the visitors that keep something (takers,
 * shared aliases, and theirs in turn) lose the erased ids. Last the erased visitors' own
 * keys go, the requested one at the very end, so its lists lead to everything left.
 */
int vt_store_visitor_erase(struct vt_store *st, const char *visitor, size_t len,
                           struct vt_erasure *out, char *err, size_t errsize)
{
    struct erase_work work = {0};
    int rc = -1;

    out->complete = true;
    if (!list_init(&work.visitors, ERASE_VISITORS_MAX) ||
        !list_init(&work.sessions, ERASE_SESSIONS_MAX) ||
        !list_init(&work.clean, ERASE_VISITORS_MAX) ||
        !list_init(&work.found, ERASE_SESSIONS_MAX) ||
        !list_init(&work.takers, ERASE_VISITORS_MAX) ||
        (work.kept = calloc(ERASE_VISITORS_MAX, sizeof *work.kept)) == NULL) {
        snprintf(err, errsize, "out of memory");
        goto out;
    }
    if (store_ensure_connected(st, err, errsize) != 0)
        goto out;
    list_add(&work.visitors, visitor, len);

    /* Under profile.key=user the profile is keyed by the user id itself. */
    if (st->cfg->profile_key == VT_PROFILE_KEY_USER && work.visitors.n == 1) {
        int64_t deleted = 0;
        if (vt_store_profile_delete(st, visitor, len, &deleted, err, errsize) != 0)
            goto out;
        out->keys += deleted;
        out->sessions += deleted > 0;
    }

    for (size_t i = 0; i < work.visitors.n; i++) {
        if (erase_sessions_of(st, i, &work, out, err, errsize) != 0)
            goto out;
    }

    /* The erased ids, for cleaning the visitors that keep something. */
    struct id_list *erased = &work.found;
    erased->n = 0;
    for (size_t i = 0; i < work.visitors.n; i++) {
        if (!work.kept[i])
            list_add(erased, work.visitors.ids[i], strlen(work.visitors.ids[i]));
    }
    /* A taker's own takers hold the sessions too: follow them. */
    for (size_t i = 0; i < work.clean.n; i++) {
        const char *c = work.clean.ids[i];
        if (list_has(erased, c, strlen(c)))
            continue;
        if (read_sets(st, c, NULL, NULL, &work.clean, err, errsize) != 0 ||
            clean_visitor(st, c, erased, &work.sessions, err, errsize) != 0)
            goto out;
    }

    for (size_t i = work.visitors.n; i-- > 0;) {
        int64_t deleted = 0;
        if (work.kept[i])
            continue;
        if (delete_visitor_keys(st, work.visitors.ids[i], &deleted, err, errsize) != 0)
            goto out;
        out->keys += deleted;
        out->visitors += deleted > 0;
    }
    out->complete = !work.visitors.full && !work.sessions.full && !work.clean.full;
    rc = 0;

out:
    work_free(&work);
    return rc;
}

