/*
 * vitrine: profiles in Redis: the apply script, batched writes, reads and erasure (see
 * include/vitrine/store.h for the keys).
 *
 * Writes go through one Lua script per event, so an event is applied to all keys of its
 * profile atomically, together with the redelivery check. A batch of events is one
 * pipeline: every EVALSHA is appended to hiredis' output buffer and the replies are read
 * after a single flush.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "vitrine/util.h"

static const char *const key_suffixes[KEY_COUNT] = {"p",    "cat",  "brand", "tier", "rv",
                                                    "cart", "buy",  "seen",  "clk",  "ax",
                                                    "v"};

/* Lines kept per profile: cart, purchases, products shown (impressions), clicks. */
#define CART_CAP VT_PROFILE_CART_MAX
#define PURCHASED_CAP VT_PROFILE_PURCHASED_MAX
#define SEEN_CAP VT_PROFILE_SEEN_MAX
#define CLICKS_CAP 50

/*
 * Apply one event to one profile.
 *
 * ARGV[1] is the redelivery field "o:<source tag>:<partition>" and ARGV[2] the record's
 * offset; the profile ignores an offset at or below the one it applied last for that
 * field. Affinities combine with log-add-exp (see profile.h) and are stored as integers in
 * units of 1/SCALE (VT_SCORE_SCALE). string.format('%d') writes them exactly, whereas Lua's
 * own number-to-text conversion keeps only 14 digits. A bounded set is trimmed only when a
 * member was added to it.
 *
 * Returns {applied (1 or 0), n, previous products..., m, (product, click)..., fresh}: the
 * products viewed before this view (or purchased before this purchase), newest first, the
 * earlier clicks on the products this event carts or purchases, and one character per
 * viewed product, "1" when the session had not viewed it before. The aggregate step runs
 * on this reply after the whole batch reached the profiles. So a process killed in between
 * must get the same reply again for a redelivery. An applied record's reply is saved in
 * KEYS[10] (field "<redelivery field>:<offset>"), and a redelivery returns the saved one.
 * ARGV[15] is the first offset of this partition in the batch: every record below it had
 * both steps acknowledged, so saved replies below it are deleted, once per batch. KEYS[10]
 * expires after at most an hour: a redelivery comes within that time unless vitrine stays
 * down longer, and then its aggregate inputs come from the current state.
 *
 * ARGV[17] is the visitor the record names and ARGV[18] the rank of the field it came
 * from in visitor.id_fields (0 first). The session keeps its visitor in "vis" and that
 * rank in "visr". A record moves the session to another visitor only by an id from a field
 * of the same or a better rank. So a login (user id, then customer id) moves it, and a
 * later record that carries only the user id does not move it back.
 *
 * ARGV[16] is the consent mode (vt_profile_delta.consent). Without consent the script
 * deletes every key of the profile and keeps only the redelivery field in KEYS[1], and the
 * answer when the session gave one, so that its later records without a consent signal
 * stay unpersonalised. A session that never answered follows consent.default as it is
 * when each record comes. The reply ends with
 * personal (1, or 0 without consent), the visitor before the record and the visitor after
 * it (they differ at a login), and 1 when KEYS[11] holds a snapshot of the visitor. A
 * login record's reply is kept like a view's.
 */
const char store_apply_script[] =
    "local SCALE = " VT_SCORE_SCALE_TEXT "\n"
    "local p = KEYS[1]\n"
    "local off_field = ARGV[1]\n"
    "local state = redis.call('HMGET', p, off_field, 'consent', 'vis', 'first', 'last', 'visr')\n"
    "local last = state[1]\n"
    "local applied = not (last and tonumber(last) >= tonumber(ARGV[2]))\n"
    "local ts = tonumber(ARGV[3])\n"
    "local ttl = tonumber(ARGV[4])\n"
    "local i = 19\n"
    "local function scored()\n"
    "  local n = tonumber(ARGV[i]); i = i + 1\n"
    "  local list = {}\n"
    "  for k = 1, n do list[k] = {ARGV[i], tonumber(ARGV[i + 1])}; i = i + 2 end\n"
    "  return list\n"
    "end\n"
    "local function ids()\n"
    "  local n = tonumber(ARGV[i]); i = i + 1\n"
    "  local list = {}\n"
    "  for k = 1, n do list[k] = ARGV[i]; i = i + 1 end\n"
    "  return list\n"
    "end\n"
    "local function pairs_of()\n"
    "  local n = tonumber(ARGV[i]); i = i + 1\n"
    "  local list = {}\n"
    "  for k = 1, n do list[k] = {ARGV[i], ARGV[i + 1]}; i = i + 2 end\n"
    "  return list\n"
    "end\n"
    "local cats, brands, tiers = scored(), scored(), scored()\n"
    "local viewed, cart_add, cart_del = ids(), pairs_of(), pairs_of()\n"
    "local bought, shown, clicked = ids(), ids(), pairs_of()\n"
    "local ax, ctx_field = KEYS[10], off_field .. ':' .. ARGV[2]\n"
    "local settled = tonumber(ARGV[15])\n"
    "if settled >= 0 then\n"
    "  local floor_field = 'f:' .. off_field\n"
    "  if settled > tonumber(redis.call('HGET', ax, floor_field) or '-1') then\n"
    "    local head = off_field .. ':'\n"
    "    for _, f in ipairs(redis.call('HKEYS', ax)) do\n"
    "      if f:sub(1, #head) == head and tonumber(f:sub(#head + 1)) < settled then\n"
    "        redis.call('HDEL', ax, f)\n"
    "      end\n"
    "    end\n"
    "    redis.call('HSET', ax, floor_field, ARGV[15])\n"
    "  end\n"
    "end\n"
    "local denied\n"
    "if ARGV[16] == '1' or ARGV[16] == '0' then denied = ARGV[16] == '0'\n"
    "else\n"
    "  local said = state[2]\n"
    "  if said then denied = said == '0' else denied = ARGV[16] == 'j' end\n"
    "end\n"
    "if denied then\n"
    "  if applied then\n"
    "    for k = 1, 11 do redis.call('DEL', KEYS[k]) end\n"
    "    redis.call('HSET', p, off_field, ARGV[2])\n"
    "    if ARGV[16] == '0' or state[2] == '0' then redis.call('HSET', p, 'consent', '0') end\n"
    "    redis.call('EXPIRE', p, ARGV[4])\n"
    "  end\n"
    "  return {applied and 1 or 0, 0, 0, '', 0, '', ''}\n"
    "end\n"
    "local vis_before, rank_before = state[3] or '', tonumber(state[6] or '9')\n"
    "local vis, rank = vis_before, rank_before\n"
    "if ARGV[17] ~= '' and (vis_before == '' or tonumber(ARGV[18]) <= rank_before) then\n"
    "  vis, rank = ARGV[17], tonumber(ARGV[18])\n"
    "end\n"
    "local switched = vis_before ~= '' and vis ~= vis_before\n"
    "if not applied then\n"
    "  local saved = redis.call('HGET', ax, ctx_field)\n"
    "  if saved then\n"
    "    local reply = cjson.decode(saved)\n"
    "    reply[1] = 0\n"
    "    return reply\n"
    "  end\n"
    "end\n"
    "local result = {applied and 1 or 0}\n"
    "local previous = {}\n"
    "if #viewed > 0 then previous = redis.call('ZREVRANGE', KEYS[5], '0', '4')\n"
    "elseif #bought > 0 then previous = redis.call('ZREVRANGE', KEYS[7], '0', '4') end\n"
    "result[#result + 1] = #previous\n"
    "for k = 1, #previous do result[#result + 1] = previous[k] end\n"
    "local attributions = {}\n"
    "local function attribute(id)\n"
    "  local click = redis.call('HGET', KEYS[9], id)\n"
    "  if click and #attributions < 16 then\n"
    "    attributions[#attributions + 1] = id; attributions[#attributions + 1] = click\n"
    "  end\n"
    "end\n"
    "for k = 1, #cart_add do attribute(cart_add[k][1]) end\n"
    "for k = 1, #bought do attribute(bought[k]) end\n"
    "result[#result + 1] = #attributions / 2\n"
    "for k = 1, #attributions do result[#result + 1] = attributions[k] end\n"
    "local fresh = {}\n"
    "for k = 1, #viewed do\n"
    "  if redis.call('ZSCORE', KEYS[5], viewed[k]) then fresh[k] = '0' else fresh[k] = '1' end\n"
    "end\n"
    "result[#result + 1] = table.concat(fresh)\n"
    "result[#result + 1] = 1\n"
    "result[#result + 1] = vis_before\n"
    "result[#result + 1] = vis\n"
    "result[#result + 1] = redis.call('EXISTS', KEYS[11])\n"
    "if not applied then return result end\n"
    "if #viewed > 0 or #bought > 0 or #cart_add > 0 or switched then\n"
    "  redis.call('HSET', ax, ctx_field, cjson.encode(result))\n"
    "end\n"
    "redis.call('HSET', p, off_field, ARGV[2])\n"
    "redis.call('HINCRBY', p, 'events', '1')\n"
    "redis.call('HINCRBY', p, 'n:' .. ARGV[5], '1')\n"
    "if ARGV[16] == '1' then redis.call('HSET', p, 'consent', '1') end\n"
    "if vis ~= vis_before or rank ~= rank_before then\n"
    "  redis.call('HSET', p, 'vis', vis, 'visr', tostring(rank))\n"
    "end\n"

    "if ARGV[6] ~= '' then redis.call('HSET', p, 'user', ARGV[6]) end\n"
    "local first = tonumber(state[4] or '')\n"
    "if not first or ts < first then redis.call('HSET', p, 'first', ARGV[3]) end\n"
    "local seen = tonumber(state[5] or '')\n"
    "if not seen or ts > seen then redis.call('HSET', p, 'last', ARGV[3]) end\n"
    "local type_field = 't:' .. ARGV[5]\n"
    "if not seen or ts >= seen then redis.call('HSET', p, type_field, ARGV[3])\n"
    "else\n"
    "  local type_last = tonumber(redis.call('HGET', p, type_field) or '')\n"
    "  if not type_last or ts > type_last then redis.call('HSET', p, type_field, ARGV[3]) end\n"
    "end\n"
    "if tonumber(ARGV[12]) ~= 0 then redis.call('HINCRBYFLOAT', p, 'g_lo', ARGV[12]) end\n"
    "if tonumber(ARGV[13]) > 0 then redis.call('HINCRBY', p, 'g_n', ARGV[13]) end\n"
    "if tonumber(ARGV[14]) > 0 then redis.call('HINCRBYFLOAT', p, 'revenue', ARGV[14]) end\n"
    "local function logadd(a, b)\n"
    "  if b > a then a, b = b, a end\n"
    "  return a + SCALE * math.log(1 + math.exp((b - a) / SCALE))\n"
    "end\n"
    "local function decayed(key, list, cap)\n"
    "  local trim = tostring(-(cap + 1))\n"
    "  local added = 0\n"
    "  for k = 1, #list do\n"
    "    local x = list[k][2]\n"
    "    local cur = redis.call('ZSCORE', key, list[k][1])\n"
    "    if cur then x = logadd(tonumber(cur), x) end\n"
    "    added = added + redis.call('ZADD', key, string.format('%d', math.floor(x + 0.5)), list[k][1])\n"
    "  end\n"
    "  if added > 0 then redis.call('ZREMRANGEBYRANK', key, '0', trim) end\n"
    "end\n"
    "decayed(KEYS[2], cats, tonumber(ARGV[7]))\n"
    "decayed(KEYS[3], brands, tonumber(ARGV[8]))\n"
    "decayed(KEYS[4], tiers, 4)\n"
    "for k = 1, #viewed do redis.call('ZADD', KEYS[5], 'GT', ARGV[3], viewed[k]) end\n"
    "if #viewed > 0 then\n"
    "  redis.call('ZREMRANGEBYRANK', KEYS[5], '0', tostring(-(tonumber(ARGV[9]) + 1)))\n"
    "end\n"
    "for k = 1, #cart_add do\n"
    "  local id, q = cart_add[k][1], cart_add[k][2]\n"
    "  if redis.call('HEXISTS', KEYS[6], id) == 1 or\n"
    "     redis.call('HLEN', KEYS[6]) < tonumber(ARGV[10]) then\n"
    "    redis.call('HINCRBY', KEYS[6], id, q)\n"
    "  end\n"
    "end\n"
    "for k = 1, #cart_del do\n"
    "  local id, q = cart_del[k][1], tonumber(cart_del[k][2])\n"
    "  if q == 0 or redis.call('HINCRBY', KEYS[6], id, -q) <= 0 then\n"
    "    redis.call('HDEL', KEYS[6], id)\n"
    "  end\n"
    "end\n"
    "for k = 1, #bought do\n"
    "  redis.call('ZADD', KEYS[7], 'GT', ARGV[3], bought[k])\n"
    "  redis.call('HDEL', KEYS[6], bought[k])\n"
    "end\n"
    "if #bought > 0 then\n"
    "  redis.call('ZREMRANGEBYRANK', KEYS[7], '0', tostring(-(tonumber(ARGV[11]) + 1)))\n"
    "end\n"
    "for k = 1, #shown do redis.call('ZINCRBY', KEYS[8], '1', shown[k]) end\n"
    "if #shown > 0 then redis.call('ZREMRANGEBYRANK', KEYS[8], '0', '-101') end\n"
    "for k = 1, #clicked do\n"
    "  local id = clicked[k][1]\n"
    "  if redis.call('HEXISTS', KEYS[9], id) == 1 or redis.call('HLEN', KEYS[9]) < 50 then\n"
    "    redis.call('HSET', KEYS[9], id, clicked[k][2])\n"
    "  end\n"
    "end\n"
    "for k = 1, 9 do redis.call('EXPIRE', KEYS[k], ARGV[4]) end\n"
    "redis.call('EXPIRE', KEYS[11], ARGV[4])\n"
    "redis.call('EXPIRE', ax, tostring(math.min(ttl, 3600)))\n"
    "return result\n";
const size_t store_apply_script_len = sizeof store_apply_script - 1;

/* The script keeps the 100 most shown products (-101 in ZREMRANGEBYRANK) and 50 clicks. */
/* The script refreshes the TTL of KEYS[1..9] and KEYS[11] and gives KEYS[10] (the kept
 * replies) its own. */
_Static_assert(KEY_CONTEXTS == 9 && KEY_VISITOR == 10 && KEY_COUNT == 11,
               "the key positions are written into the apply script as literals");
_Static_assert(SEEN_CAP == 100 && CLICKS_CAP == 50,
               "the caps are written into the apply script as literals");

/* Append n bytes of s at *at in key, as far as they fit before its last byte. */
static void key_put(char *key, size_t *at, const char *s, size_t n)
{
    if (n > STORE_KEY_MAX - 1 - *at)
        n = STORE_KEY_MAX - 1 - *at;
    memcpy(key + *at, s, n);
    *at += n;
}


/* Build the key names of one profile, "<prefix>{<id>}:<suffix>", into st->keys and
 * st->key_lens. A name longer than STORE_KEY_MAX - 1 bytes is cut there; the id and prefix
 * limits keep every real one shorter. */
static void build_keys(struct vt_store *st, const char *id, size_t id_len)
{
    const char *prefix = st->cfg->redis_prefix;
    size_t prefix_len = strlen(prefix);

    for (int k = 0; k < KEY_COUNT; k++) {
        char *key = st->keys[k];
        size_t at = 0;

        key_put(key, &at, prefix, prefix_len);
        key_put(key, &at, "{", 1);
        key_put(key, &at, id, id_len);
        key_put(key, &at, "}:", 2);
        key_put(key, &at, key_suffixes[k], strlen(key_suffixes[k]));
        key[at] = '\0';
        st->key_lens[k] = at;
    }
}


static void arg_scores(struct vt_store *st, const struct vt_named_score *list, size_t n)
{
    store_arg_int(st, (int64_t)n);
    for (size_t i = 0; i < n; i++) {
        store_arg(st, list[i].name);
        store_arg_int(st, vt_score_stored(list[i].log_score));
    }
}


static void arg_ids(struct vt_store *st, const char (*ids)[VT_PRODUCT_ID_MAX + 1], size_t n)
{
    store_arg_int(st, (int64_t)n);
    for (size_t i = 0; i < n; i++)
        store_arg(st, ids[i]);
}


static void arg_lines(struct vt_store *st, const struct vt_quantity_line *lines, size_t n)
{
    store_arg_int(st, (int64_t)n);
    for (size_t i = 0; i < n; i++) {
        store_arg(st, lines[i].id);
        store_arg_int(st, lines[i].quantity);
    }
}


void vt_store_batch_begin(struct vt_store *st)
{
    store_pipeline_begin(st);
}


void vt_store_batch_add(struct vt_store *st, const struct vt_profile_delta *d)
{
    const struct vt_config *cfg = st->cfg;

    if (st->failed)
        return;
    store_args_reset(st);
    build_keys(st, d->profile_id, strlen(d->profile_id));

    store_args_script(st, SCRIPT_APPLY, KEY_COUNT);
    for (int k = 0; k < KEY_COUNT; k++)
        store_arg_len(st, st->keys[k], st->key_lens[k]);
    store_arg_printf(st, "o:%s:%" PRId32, d->source_tag, d->partition);
    store_arg_int(st, d->offset);
    store_arg_int(st, d->ts_ms);
    store_arg_int(st, cfg->profile_ttl_s);
    store_arg(st, vt_event_type_name(d->type));
    store_arg(st, d->user_id);
    store_arg_int(st, cfg->profile_categories_max);
    store_arg_int(st, cfg->profile_brands_max);
    store_arg_int(st, cfg->profile_recent_max);
    store_arg_int(st, CART_CAP);
    store_arg_int(st, PURCHASED_CAP);
    store_arg_double(st, d->gender_step);
    store_arg_int(st, d->gender_evidence);
    store_arg_double(st, d->revenue);
    store_arg_int(st, d->settled_offset);
    store_arg_len(st, &d->consent, 1);
    store_arg(st, d->visitor_id);
    store_arg_int(st, d->visitor_rank);

    arg_scores(st, d->categories, d->n_categories);
    arg_scores(st, d->brands, d->n_brands);
    arg_scores(st, d->tiers, d->n_tiers);
    arg_ids(st, d->viewed, d->n_viewed);
    arg_lines(st, d->cart_add, d->n_cart_add);
    arg_lines(st, d->cart_remove, d->n_cart_remove);
    arg_ids(st, d->purchased, d->n_purchased);
    arg_ids(st, d->shown, d->n_shown);
    store_arg_int(st, (int64_t)d->n_clicked);
    for (size_t i = 0; i < d->n_clicked; i++) {
        store_arg(st, d->clicked[i].id);
        store_arg_printf(st, "%s|%" PRId64 "|%s", d->placement, d->clicked[i].quantity,
                         d->decision_id);
    }
    store_queue(st);
}


/* Split a stored click "<placement>|<position>|<decision id>" into an attribution. */
static void parse_click(const redisReply *product, const redisReply *click,
                        struct vt_attribution *out)
{
    char text[VT_PLACEMENT_MAX + VT_ID_MAX + 32];
    char *bar, *bar2;
    int64_t position;

    store_reply_copy(out->product, sizeof out->product, product);
    store_reply_copy(text, sizeof text, click);
    out->placement[0] = '\0';
    out->position = -1;
    bar = strchr(text, '|');
    if (bar == NULL)
        return;
    *bar = '\0';
    vt_strlcpy(out->placement, text, sizeof out->placement);
    bar2 = strchr(bar + 1, '|');
    if (bar2 != NULL)
        *bar2 = '\0';
    if (vt_parse_int64(bar + 1, 1, INT32_MAX, &position) == 0)
        out->position = (int32_t)position;
}


/* Read one apply-script reply into results[index]. */
static bool read_apply_reply(const redisReply *r, size_t index, void *arg, char *err,
                             size_t errsize)
{
    struct vt_apply_result *res = (struct vt_apply_result *)arg + index;
    size_t i = 0, n;

    res->applied = false;
    res->personal = true;
    res->has_snapshot = false;
    res->visitor_before[0] = res->visitor[0] = '\0';
    res->n_previous = 0;
    res->n_attributions = 0;
    res->fresh_views = 0;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_INTEGER) {
        snprintf(err, errsize, "redis profile script returned an unexpected reply (type %d)",
                 r->type);
        return false;
    }
    res->applied = r->element[i++]->integer == 1;

    n = (size_t)store_reply_int(r->element[i++]);
    for (size_t k = 0; k < n && i < r->elements; k++, i++) {
        if (res->n_previous < VT_APPLY_PREVIOUS_MAX)
            store_reply_copy(res->previous[res->n_previous++], VT_PRODUCT_ID_MAX + 1,
                             r->element[i]);
    }

    n = i < r->elements ? (size_t)store_reply_int(r->element[i++]) : 0;
    for (size_t k = 0; k < n && i + 1 < r->elements; k++, i += 2) {
        if (res->n_attributions < VT_APPLY_ATTRIBUTION_MAX)
            parse_click(r->element[i], r->element[i + 1],
                        &res->attributions[res->n_attributions++]);
    }

    res->fresh_views = 0;
    if (i < r->elements && r->element[i]->type == REDIS_REPLY_STRING) {
        const redisReply *fresh = r->element[i];
        for (size_t k = 0; k < fresh->len && k < 64; k++) {
            if (fresh->str[k] == '1')
                res->fresh_views |= UINT64_C(1) << k;
        }
    }
    i++;

    /* A reply kept before the consent and visitor fields existed ends here. */
    res->personal = i >= r->elements || store_reply_int(r->element[i]) == 1;
    res->visitor_before[0] = res->visitor[0] = '\0';
    if (i + 2 < r->elements) {
        store_reply_copy(res->visitor_before, sizeof res->visitor_before, r->element[i + 1]);
        store_reply_copy(res->visitor, sizeof res->visitor, r->element[i + 2]);
    }
    res->has_snapshot = i + 3 < r->elements && store_reply_int(r->element[i + 3]) == 1;
    /* Nothing records what a session without consent viewed, so each of its views counts
     * for trending. */
    if (!res->personal)
        res->fresh_views = ~UINT64_C(0);
    return true;
}


int vt_store_batch_commit(struct vt_store *st, struct vt_apply_result *results, size_t n,
                          char *err, size_t errsize)
{
    if (!st->failed && n != st->queued) {
        snprintf(err, errsize, "batch has %zu queued calls but %zu results were requested",
                 st->queued, n);
        store_close(st);
        return -1;
    }
    return store_pipeline_commit(st, read_apply_reply, results, err, errsize);
}


/* ---- reads ---- */

static void parse_profile_hash(const redisReply *r, struct vt_profile *p)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
        return;
    p->exists = true;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];

        if (k->type != REDIS_REPLY_STRING)
            continue;
        if (store_reply_is(k, "events")) {
            p->events = store_reply_int(v);
        } else if (store_reply_is(k, "first")) {
            p->first_seen_ms = store_reply_int(v);
        } else if (store_reply_is(k, "last")) {
            p->last_seen_ms = store_reply_int(v);
        } else if (store_reply_is(k, "user")) {
            store_reply_copy(p->user_id, sizeof p->user_id, v);
        } else if (store_reply_is(k, "g_lo")) {
            p->gender_log_odds = store_reply_double(v);
        } else if (store_reply_is(k, "g_n")) {
            p->gender_evidence = store_reply_int(v);
        } else if (store_reply_is(k, "revenue")) {
            p->revenue = store_reply_double(v);
        } else if (store_reply_is(k, "vis")) {
            store_reply_copy(p->visitor_id, sizeof p->visitor_id, v);
        } else if (store_reply_is(k, "consent")) {
            p->consent_denied = store_reply_is(v, "0");
            p->consent_given = store_reply_is(v, "1");
        } else if (k->len > 2 && k->str[1] == ':' && (k->str[0] == 'n' || k->str[0] == 't')) {
            enum vt_event_type type;
            if (vt_event_type_parse(k->str + 2, k->len - 2, &type) != 0)
                continue;
            if (k->str[0] == 'n')
                p->count_by_type[type] = store_reply_int(v);
            else
                p->last_by_type_ms[type] = store_reply_int(v);
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
        store_reply_copy(out[n].name, sizeof out[n].name, r->element[i]);
        out[n].log_score = vt_score_from_stored(store_reply_double(r->element[i + 1]));
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
        store_reply_copy(out[n].id, sizeof out[n].id, r->element[i]);
        out[n].ts_ms = store_reply_int(r->element[i + 1]);
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
        int64_t q = store_reply_int(r->element[i + 1]);
        if (q <= 0)
            continue;
        store_reply_copy(out[n].id, sizeof out[n].id, r->element[i]);
        out[n].quantity = q;
        n++;
    }
    return n;
}


static size_t parse_seen(const redisReply *r, struct vt_seen_product *out, size_t max)
{
    size_t n = 0;

    if (r->type != REDIS_REPLY_ARRAY)
        return 0;
    for (size_t i = 0; i + 1 < r->elements && n < max; i += 2) {
        store_reply_copy(out[n].id, sizeof out[n].id, r->element[i]);
        out[n].count = store_reply_int(r->element[i + 1]);
        n++;
    }
    return n;
}


/* Sort a list strongest first (insertion sort: at most VT_PROFILE_TOP_MAX entries). */
static void sort_scored(struct vt_scored_name *list, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        struct vt_scored_name e = list[i];
        size_t j = i;
        while (j > 0 && list[j - 1].value < e.value) {
            list[j] = list[j - 1];
            j--;
        }
        list[j] = e;
    }
}


/* Read the snapshot of the session's visitor (vt:{id}:v, written by visitors.c) into v:
 * "linked", "sessions", "revenue", "g_lo", "g_n", and "c:", "b:", "t:" before each
 * category, brand and tier with its stored score at visitor.half_life_s, decayed to
 * ref_ms. */
static void parse_snapshot(const redisReply *r, const struct vt_config *cfg, int64_t ref_ms,
                           struct vt_visitor_profile *v)
{
    vt_visitor_profile_clear(v);
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0)
        return;
    v->exists = true;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *val = r->element[i + 1];
        struct vt_scored_name *list = NULL;
        size_t *n = NULL, max = VT_PROFILE_TOP_MAX;

        if (k->type != REDIS_REPLY_STRING)
            continue;
        if (store_reply_is(k, "linked"))
            v->linked = store_reply_int(val) == 1;
        else if (store_reply_is(k, "sessions"))
            v->sessions = store_reply_int(val);
        else if (store_reply_is(k, "revenue"))
            v->revenue = store_reply_double(val);
        else if (store_reply_is(k, "g_lo"))
            v->gender_log_odds = store_reply_double(val);
        else if (store_reply_is(k, "g_n"))
            v->gender_evidence = store_reply_int(val);
        else if (k->len > 2 && k->str[1] == ':' && k->str[0] == 'c')
            list = v->categories, n = &v->n_categories;
        else if (k->len > 2 && k->str[1] == ':' && k->str[0] == 'b')
            list = v->brands, n = &v->n_brands;
        else if (k->len > 2 && k->str[1] == ':' && k->str[0] == 't')
            list = v->tiers, n = &v->n_tiers, max = VT_TIER_COUNT;
        if (list == NULL || *n >= max)
            continue;
        struct vt_scored_name *e = &list[(*n)++];
        vt_copy_utf8(e->name, sizeof e->name, k->str + 2, k->len - 2);
        e->log_score = vt_score_from_stored(store_reply_double(val));
        e->value = vt_decay_value(e->log_score, ref_ms, cfg->visitor_half_life_s);
    }
    sort_scored(v->categories, v->n_categories);
    sort_scored(v->brands, v->n_brands);
    sort_scored(v->tiers, v->n_tiers);
}


/* Read a profile, and with v also the snapshot of its visitor, in one round trip. */
static int profile_read(struct vt_store *st, const char *id, size_t id_len, int64_t now_ms,
                        struct vt_profile *p, struct vt_visitor_profile *v, char *err,
                        size_t errsize)
{
    const struct vt_config *cfg = st->cfg;
    char top_cat[24], top_brand[24], top_recent[24], top_buy[24], top_seen[24];
    enum { READS_MAX = 10 };
    const int reads = v != NULL ? 10 : 9;
    redisReply *replies[READS_MAX] = {0};
    int rc = -1;

    vt_profile_clear(p);
    if (v != NULL)
        vt_visitor_profile_clear(v);
    if (store_ensure_connected(st, err, errsize) != 0)
        return -1;
    build_keys(st, id, id_len);
    const char *top_cat_s = store_last_rank(top_cat, cfg->profile_categories_max);
    const char *top_brand_s = store_last_rank(top_brand, cfg->profile_brands_max);
    const char *top_recent_s = store_last_rank(top_recent, cfg->profile_recent_max);
    const char *top_buy_s = store_last_rank(top_buy, PURCHASED_CAP);
    const char *top_seen_s = store_last_rank(top_seen, SEEN_CAP);

    /* One pipeline, one round trip: the nine commands written as protocol text here and
     * handed to hiredis in one piece, which saves formatting them one by one. */
    struct store_batch batch = {.len = 0};
    store_batch_read(&batch, st, "HGETALL", KEY_PROFILE, NULL);
    store_batch_read(&batch, st, "ZREVRANGE", KEY_CATEGORIES, top_cat_s);
    store_batch_read(&batch, st, "ZREVRANGE", KEY_BRANDS, top_brand_s);
    store_batch_read(&batch, st, "ZREVRANGE", KEY_TIERS, "-1");
    store_batch_read(&batch, st, "ZREVRANGE", KEY_RECENT, top_recent_s);
    store_batch_read(&batch, st, "HGETALL", KEY_CART, NULL);
    store_batch_read(&batch, st, "ZREVRANGE", KEY_PURCHASED, top_buy_s);
    store_batch_read(&batch, st, "ZREVRANGE", KEY_SEEN, top_seen_s);
    store_batch_read(&batch, st, "TTL", KEY_PROFILE, NULL);
    if (v != NULL)
        store_batch_read(&batch, st, "HGETALL", KEY_VISITOR, NULL);
    if (store_batch_send(st, &batch, err, errsize) != 0)
        return -1;

    if (store_read_replies(st, replies, (size_t)reads, "profile read", err, errsize) != 0)
        goto out;

    parse_profile_hash(replies[0], p);
    if (!p->consent_given && !cfg->consent_default_granted)
        p->consent_denied = true;
    if (p->consent_denied) {
        /* Consent was denied: the hash contains only the consent value and offsets, so
         * the profile reads as one without events. */
        vt_profile_clear(p);
        p->consent_denied = true;
        rc = 0;
        goto out;
    }
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
    p->n_seen = parse_seen(replies[7], p->seen, VT_PROFILE_SEEN_MAX);
    if (replies[8]->type == REDIS_REPLY_INTEGER)
        p->ttl_s = replies[8]->integer;
    if (v != NULL && p->visitor_id[0] != '\0')
        parse_snapshot(replies[9], cfg, ref_ms, v);
    rc = 0;

out:
    for (int i = 0; i < READS_MAX; i++) {
        if (replies[i] != NULL)
            freeReplyObject(replies[i]);
    }
    return rc;
}


int vt_store_profile_read(struct vt_store *st, const char *id, size_t id_len, int64_t now_ms,
                          struct vt_profile *p, char *err, size_t errsize)
{
    return profile_read(st, id, id_len, now_ms, p, NULL, err, errsize);
}


int vt_store_profile_read_linked(struct vt_store *st, const char *id, size_t id_len,
                                 int64_t now_ms, struct vt_profile *p,
                                 struct vt_visitor_profile *v, char *err, size_t errsize)
{
    if (profile_read(st, id, id_len, now_ms, p, v, err, errsize) != 0)
        return -1;
    if (p->exists && v->exists)
        vt_profile_add_visitor(p, v, st->cfg->visitor_weight, st->cfg->profile_half_life_s);
    return 0;
}


int vt_store_profile_delete(struct vt_store *st, const char *id, size_t id_len,
                            int64_t *deleted, char *err, size_t errsize)
{
    const char *argv[1 + KEY_COUNT];
    size_t lens[1 + KEY_COUNT];
    redisReply *r;

    if (store_ensure_connected(st, err, errsize) != 0)
        return -1;
    build_keys(st, id, id_len);
    argv[0] = "DEL";
    lens[0] = 3;
    for (int i = 0; i < KEY_COUNT; i++) {
        argv[1 + i] = st->keys[i];
        lens[1 + i] = st->key_lens[i];
    }
    r = store_command(st, 1 + KEY_COUNT, argv, lens, err, errsize);
    if (r == NULL)
        return -1;
    *deleted = r->type == REDIS_REPLY_INTEGER ? r->integer : 0;
    freeReplyObject(r);
    return 0;
}
