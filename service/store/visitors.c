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
 * (ms). Sessions whose last record is older than ARGV[5] ms are dropped from both lists:
 * their keys have expired. A session not yet linked is linked while fewer than ARGV[7]
 * are; otherwise it goes into the refused list and the record changes nothing else.
 * ARGV[8] and ARGV[9] cap the category and brand lists, ARGV[10] is the event time,
 * ARGV[11..13] gender step, gender evidence and revenue, ARGV[14] a visitor this one
 * takes the session over from ("" when none), ARGV[15] "1" when the session's profile
 * follows the record's own lists, to be added instead of them when this visitor takes
 * over a session it never had (a login); a session it had before (a login back and forth)
 * adds only the record's own lists, so that nothing counts twice.
 *
 * Returns 0 for a redelivery, 1 for a linked session, 2 for a refused one and 3 for a
 * session linked by this record.
 */
const char store_visit_script[] =
    "local SCALE = " VT_SCORE_SCALE_TEXT "\n"
    "local p = KEYS[1]\n"
    "local last = redis.call('HGET', p, ARGV[1])\n"
    "if last and tonumber(last) >= tonumber(ARGV[2]) then return 0 end\n"
    "local sid, ttl = ARGV[3], ARGV[6]\n"
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
    "    return 2\n"
    "  end\n"
    "  outcome = 3\n"
    "  redis.call('HINCRBY', p, 'sessions', '1')\n"
    "end\n"
    "redis.call('ZADD', KEYS[5], ARGV[4], sid)\n"
    "local i = 16\n"
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
    "return outcome\n";
const size_t store_visit_script_len = sizeof store_visit_script - 1;

/*
 * Remember, in the visitor a session came from (KEYS[1], its ":to" set), the visitor that
 * took the session over at a login (ARGV[1]), so that erasing the first one can remove
 * its traces from the second. At most 1,000; the set expires with the visitor (ARGV[2]).
 * Returns 4, which the visit step's replies do not use otherwise.
 */
const char store_link_script[] =
    "if redis.call('SCARD', KEYS[1]) < 1000 then redis.call('SADD', KEYS[1], ARGV[1]) end\n"
    "redis.call('EXPIRE', KEYS[1], ARGV[2])\n"
    "return 4\n";
const size_t store_link_script_len = sizeof store_link_script - 1;

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
    st->visitor_calls = 0;
}


void vt_store_visitors_add(struct vt_store *st, const struct vt_profile_delta *d,
                           const struct vt_apply_result *r, const struct vt_profile *session,
                           bool covered, int64_t now_ms)
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
    st->visitor_calls++;

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


static bool count_visits(const redisReply *r, size_t index, void *arg, char *err,
                         size_t errsize)
{
    struct vt_visitor_counts *counts = arg;

    (void)index;
    if (r->type != REDIS_REPLY_INTEGER || r->integer < 0 || r->integer > 4) {
        snprintf(err, errsize, "redis visit script returned an unexpected reply (type %d)",
                 r->type);
        return false;
    }
    counts->applied += r->integer == 1 || r->integer == 3;
    counts->linked += r->integer == 3;
    counts->refused += r->integer == 2;
    return true;
}


int vt_store_visitors_commit(struct vt_store *st, struct vt_visitor_counts *counts, char *err,
                             size_t errsize)
{
    memset(counts, 0, sizeof *counts);
    return store_pipeline_commit(st, count_visits, counts, err, errsize);
}


/* ---- reads ---- */

static size_t parse_visitor_scored(const redisReply *r, struct vt_scored_name *out,
                                   size_t max, int64_t ref_ms, double half_life_s)
{
    size_t n = 0;

    if (r->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t i = 0; i + 1 < r->elements && n < max; i += 2) {
        store_reply_copy(out[n].name, sizeof out[n].name, r->element[i]);
        out[n].log_score = vt_score_from_stored(store_reply_double(r->element[i + 1]));
        out[n].value = vt_decay_value(out[n].log_score, ref_ms, half_life_s);
        n++;
    }
    return n;
}


static void parse_visitor_hash(const redisReply *r, struct vt_visitor_profile *v)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
        return;
    v->exists = true;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *val = r->element[i + 1];

        if (store_reply_is(k, "events"))
            v->events = store_reply_int(val);
        else if (store_reply_is(k, "sessions"))
            v->sessions = store_reply_int(val);
        else if (store_reply_is(k, "first"))
            v->first_seen_ms = store_reply_int(val);
        else if (store_reply_is(k, "last"))
            v->last_seen_ms = store_reply_int(val);
        else if (store_reply_is(k, "g_lo"))
            v->gender_log_odds = store_reply_double(val);
        else if (store_reply_is(k, "g_n"))
            v->gender_evidence = store_reply_int(val);
        else if (store_reply_is(k, "revenue"))
            v->revenue = store_reply_double(val);
    }
}


int vt_store_visitor_read(struct vt_store *st, const char *visitor, const char *sid,
                          size_t sid_len, int64_t ref_ms, struct vt_visitor_profile *v,
                          char *err, size_t errsize)
{
    const struct vt_config *cfg = st->cfg;
    enum { READS = 5 };
    redisReply *replies[READS] = {0};
    char top_cat[24], top_brand[24];
    int rc = -1;

    vt_visitor_profile_clear(v);
    if (store_ensure_connected(st, err, errsize) != 0)
        return -1;
    build_visitor_keys(st, visitor, strlen(visitor));
    const char *top_cat_s = store_last_rank(top_cat, cfg->profile_categories_max);
    const char *top_brand_s = store_last_rank(top_brand, cfg->profile_brands_max);

    /* One round trip, written as protocol text as the profile read is. */
    struct store_batch batch = {.len = 0};
    store_batch_read(&batch, st, "HGETALL", VKEY_PROFILE, NULL);
    store_batch_read(&batch, st, "ZREVRANGE", VKEY_CATEGORIES, top_cat_s);
    store_batch_read(&batch, st, "ZREVRANGE", VKEY_BRANDS, top_brand_s);
    store_batch_read(&batch, st, "ZREVRANGE", VKEY_TIERS, "-1");
    store_batch_member(&batch, st, "ZSCORE", VKEY_SESSIONS, sid, sid_len);
    if (store_batch_send(st, &batch, err, errsize) != 0)
        return -1;
    if (store_read_replies(st, replies, READS, "visitor read", err, errsize) != 0)
        goto out;

    parse_visitor_hash(replies[0], v);
    v->n_categories = parse_visitor_scored(replies[1], v->categories, VT_PROFILE_TOP_MAX,
                                           ref_ms, cfg->visitor_half_life_s);
    v->n_brands = parse_visitor_scored(replies[2], v->brands, VT_PROFILE_TOP_MAX, ref_ms,
                                       cfg->visitor_half_life_s);
    v->n_tiers = parse_visitor_scored(replies[3], v->tiers, VT_TIER_COUNT, ref_ms,
                                      cfg->visitor_half_life_s);
    v->linked = v->exists && replies[4]->type != REDIS_REPLY_NIL;
    rc = 0;

out:
    for (int i = 0; i < READS; i++) {
        if (replies[i] != NULL)
            freeReplyObject(replies[i]);
    }
    return rc;
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
 * The order makes a retry finish what a failure interrupted: first the sessions of the
 * visitor and of the visitors it took sessions over from are deleted, following the
 * aliases; then the visitors that keep something (takers, shared aliases, and theirs in
 * turn) lose the erased ids; then the erased visitors' own keys go, the requested one
 * last. Until then its lists still lead to everything that is left.
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


int vt_store_profile_read_linked(struct vt_store *st, const char *id, size_t id_len,
                                 int64_t now_ms, struct vt_profile *p,
                                 struct vt_visitor_profile *v, char *err, size_t errsize)
{
    if (vt_store_profile_read(st, id, id_len, now_ms, p, err, errsize) != 0)
        return -1;
    if (!p->exists || p->visitor_id[0] == '\0')
        return 0;
    int64_t ref = p->last_seen_ms > 0 ? p->last_seen_ms : now_ms;
    if (vt_store_visitor_read(st, p->visitor_id, id, id_len, ref, v, err, errsize) != 0)
        return -1;
    vt_profile_add_visitor(p, v, st->cfg->visitor_weight, st->cfg->profile_half_life_s);
    return 0;
}
