/*
 * vitrine: the shared stream aggregates in Redis: item-to-item relations, trending and
 * impression/click statistics (keys in docs/architecture.md, "Stream aggregates").
 *
 * The ingest thread calls the aggregate script for runs of records of a batch, after the
 * profiles of the batch were acknowledged. Every key lives under the hash tag {agg}, so
 * one script can check the aggregates' own redelivery watermark and update them
 * atomically.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "vitrine/profile.h"
#include "vitrine/util.h"

/* Entries kept in the global trending list and in each category or brand list. */
#define TRENDING_GLOBAL_MAX 2000
#define TRENDING_LIST_MAX 200
/* Milliseconds a product stays in i2i:dirty after its neighbours changed. */
#define DIRTY_WINDOW_MS 3600000

/*
 * One call applies a run of consecutive records of the batch, in order. KEYS[1] is the
 * watermark hash. The first arguments are shared by all records: ARGV 1 key prefix
 * ("vt:{agg}:"), 2 wall time (ms), 3 ttl (s), 4 neighbours kept per product, 5 global and
 * 6 per-list trending caps, 7 dirty window (ms). One block per record follows:
 *   watermark field "<source tag>:<partition>", offset, event time (ms), event type,
 *   placement, log-score of one co-view or co-purchase at the event time, log-score of the
 *   event's intent weight for trending ("none": no trending); n items (id, position,
 *   brand, fresh, n categories, categories...); n previous products; n attributions
 *   (product, placement, position); the alert counting: bucket start (ms), bucket
 *   lifetime (s), n increments (rule, group, amount, then product, brand, category,
 *   campaign and referrer, "" when unknown).
 * fresh is "1" unless the item is a view of a product the session had viewed before: such
 * a view adds no co-view and no trending weight. A record at or below its watermark
 * changes nothing. The stream clock (al:clock) keeps the newest event time and the wall
 * time it was applied at. An event more than a minute ahead of the wall clock is counted
 * but does not move the clock, so one bad timestamp cannot push every window ahead.
 *
 * Scores are integers in units of 1/SCALE (VT_SCORE_SCALE in profile.h), as the profile
 * script keeps them. Every key the call changed gets its TTL once, at the end, and the products whose
 * neighbours changed enter i2i:dirty in one ZADD. A bounded list is trimmed only when a
 * member was added to it: an update of a member cannot make it longer.
 * Returns the number of records applied.
 */
const char store_aggregate_script[] =
    "local SCALE = " VT_SCORE_SCALE_TEXT "\n"
    "local P = ARGV[1]\n"
    "local now, cap = tonumber(ARGV[2]), tonumber(ARGV[4])\n"
    "local trend_all, trend_list = tonumber(ARGV[5]), tonumber(ARGV[6])\n"
    "local window = tonumber(ARGV[7])\n"
    "local ttl_text = ARGV[3]\n"
    "local trims = {}\n"
    "for _, keep in ipairs({cap, trend_all, trend_list}) do\n"
    "  trims[keep] = tostring(-(keep + 1))\n"
    "end\n"
    "local expiring, bucket_ttls = {}, {}\n"
    "local dirty_members, dirty_touched = {}, false\n"
    "local trend_keys, trend_touched = {}, false\n"
    "local function logadd(a, b)\n"
    "  if b > a then a, b = b, a end\n"
    "  return a + SCALE * math.log(1 + math.exp((b - a) / SCALE))\n"
    "end\n"
    "local function bump(key, member, x, keep)\n"
    "  local cur = redis.call('ZSCORE', key, member)\n"
    "  if cur then x = logadd(tonumber(cur), x) end\n"
    "  local stored = string.format('%d', math.floor(x + 0.5))\n"
    "  if redis.call('ZADD', key, stored, member) == 1 then\n"
    "    redis.call('ZREMRANGEBYRANK', key, '0', trims[keep])\n"
    "  end\n"
    "  expiring[key] = true\n"
    "end\n"
    "local function relate(kind, a, b, x)\n"
    "  if a == b then return end\n"
    "  bump(P .. kind .. ':' .. a, b, x, cap)\n"
    "  bump(P .. kind .. ':' .. b, a, x, cap)\n"
    "  dirty_members[a] = true\n"
    "  dirty_members[b] = true\n"
    "end\n"
    "local function at(field, position)\n"
    "  if position and position >= 1 and position <= 100 then\n"
    "    return field .. ':' .. position\n"
    "  end\n"
    "  return field .. ':other'\n"
    "end\n"
    "local function count(key, field, position, placement)\n"
    "  redis.call('HINCRBY', key, field, '1')\n"
    "  if position then redis.call('HINCRBY', key, at(field, position), '1') end\n"
    "  if placement then redis.call('HINCRBY', key, field .. '@' .. placement, '1') end\n"
    "  expiring[key] = true\n"
    "end\n"
    "local dims = {'product', 'brand', 'category', 'campaign', 'referrer'}\n"
    "local clock = P .. 'al:clock'\n"
    "local newest = tonumber(redis.call('HGET', clock, 'event') or '0')\n"
    "local newest_text = nil\n"
    "local applied = 0\n"
    "local i = 8\n"
    "while i <= #ARGV do\n"
    "  local field, offset = ARGV[i], ARGV[i + 1]\n"
    "  local t_text, etype, pl = ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]\n"
    "  local xcv, xtr = tonumber(ARGV[i + 5]), nil\n"
    "  if ARGV[i + 6] ~= 'none' then xtr = tonumber(ARGV[i + 6]) end\n"
    "  i = i + 7\n"
    "  local items = {}\n"
    "  local n = tonumber(ARGV[i]); i = i + 1\n"
    "  for k = 1, n do\n"
    "    local item = {id = ARGV[i], pos = tonumber(ARGV[i + 1]), brand = ARGV[i + 2],\n"
    "                  fresh = ARGV[i + 3] == '1'}\n"
    "    local nc = tonumber(ARGV[i + 4]); i = i + 5\n"
    "    item.cats = {}\n"
    "    for c = 1, nc do item.cats[c] = ARGV[i]; i = i + 1 end\n"
    "    items[k] = item\n"
    "  end\n"
    "  local previous = {}\n"
    "  n = tonumber(ARGV[i]); i = i + 1\n"
    "  for k = 1, n do previous[k] = ARGV[i]; i = i + 1 end\n"
    "  local attributions = {}\n"
    "  n = tonumber(ARGV[i]); i = i + 1\n"
    "  for k = 1, n do\n"
    "    attributions[k] = {id = ARGV[i], pl = ARGV[i + 1], pos = tonumber(ARGV[i + 2])}\n"
    "    i = i + 3\n"
    "  end\n"
    "  local bucket, bucket_ttl = ARGV[i], ARGV[i + 1]\n"
    "  local n_counts = tonumber(ARGV[i + 2]); i = i + 3\n"
    "  local counts_at = i\n"
    "  i = i + 8 * n_counts\n"
    "  local last = redis.call('HGET', KEYS[1], field)\n"
    "  if not (last and tonumber(last) >= tonumber(offset)) then\n"
    "    applied = applied + 1\n"
    "    redis.call('HSET', KEYS[1], field, offset)\n"
    "    if etype == 'product_view' or etype == 'product_image_view' or etype == 'click' then\n"
    "      for k = 1, #items do\n"
    "        if items[k].fresh then\n"
    "          for q = 1, #previous do relate('cv', previous[q], items[k].id, xcv) end\n"
    "        end\n"
    "      end\n"
    "    elseif etype == 'purchase' then\n"
    "      for k = 1, #items do\n"
    "        for q = k + 1, #items do relate('cb', items[k].id, items[q].id, xcv) end\n"
    "        for q = 1, #previous do relate('cb', previous[q], items[k].id, xcv) end\n"
    "      end\n"
    "    end\n"
    "    if #items > 0 then dirty_touched = true end\n"
    "    if xtr then\n"
    "      trend_touched = true\n"
    "      for k = 1, #items do\n"
    "        local it = items[k]\n"
    "        if it.fresh then\n"
    "          bump(P .. 'tr', it.id, xtr, trend_all)\n"
    "          for c = 1, #it.cats do\n"
    "            bump(P .. 'tr:c:' .. it.cats[c], it.id, xtr, trend_list)\n"
    "            trend_keys['c:' .. it.cats[c]] = true\n"
    "          end\n"
    "          if it.brand ~= '' then\n"
    "            bump(P .. 'tr:b:' .. it.brand, it.id, xtr, trend_list)\n"
    "            trend_keys['b:' .. it.brand] = true\n"
    "          end\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "    if etype == 'impression' or etype == 'click' then\n"
    "      local f = 'imp'\n"
    "      if etype == 'click' then f = 'clk' end\n"
    "      for k = 1, #items do\n"
    "        count(P .. 'st:p:' .. items[k].id, f, items[k].pos, pl)\n"
    "        count(P .. 'st:pl:' .. pl, f, items[k].pos, nil)\n"
    "      end\n"
    "    elseif etype == 'add_to_cart' or etype == 'purchase' then\n"
    "      local f = 'cart'\n"
    "      if etype == 'purchase' then f = 'buy' end\n"
    "      for k = 1, #items do count(P .. 'st:p:' .. items[k].id, f, nil, nil) end\n"
    "      for k = 1, #attributions do\n"
    "        local a = attributions[k]\n"
    "        local pk = P .. 'st:p:' .. a.id\n"
    "        redis.call('HINCRBY', pk, at(f, a.pos), '1')\n"
    "        redis.call('HINCRBY', pk, f .. '@' .. a.pl, '1')\n"
    "        expiring[pk] = true\n"
    "        count(P .. 'st:pl:' .. a.pl, f, a.pos, nil)\n"
    "      end\n"
    "    end\n"
    "    local j = counts_at\n"
    "    for k = 1, n_counts do\n"
    "      local key = P .. 'al:' .. ARGV[j] .. ':' .. bucket\n"
    "      local group, amount = ARGV[j + 1], ARGV[j + 2]\n"
    "      redis.call('HINCRBYFLOAT', key, 'g:' .. group, amount)\n"
    "      for d = 1, 5 do\n"
    "        local v = ARGV[j + 2 + d]\n"
    "        if v ~= '' then\n"
    "          redis.call('HINCRBYFLOAT', key, 'd:' .. #group .. ':' .. group .. '|' .. dims[d] .. '|' .. v, amount)\n"
    "        end\n"
    "      end\n"
    "      bucket_ttls[key] = bucket_ttl\n"
    "      j = j + 8\n"
    "    end\n"
    "    local t = tonumber(t_text)\n"
    "    if t >= newest and t <= now + 60000 then newest, newest_text = t, t_text end\n"
    "  end\n"
    "end\n"
    "if applied == 0 then return 0 end\n"
    "redis.call('EXPIRE', KEYS[1], ttl_text)\n"
    "if dirty_touched then\n"
    "  local dirty = P .. 'i2i:dirty'\n"
    "  local args = {}\n"
    "  for member in pairs(dirty_members) do\n"
    "    args[#args + 1] = ARGV[2]; args[#args + 1] = member\n"
    "    if #args >= 512 then redis.call('ZADD', dirty, unpack(args)); args = {} end\n"
    "  end\n"
    "  if #args > 0 then redis.call('ZADD', dirty, unpack(args)) end\n"
    "  redis.call('ZREMRANGEBYSCORE', dirty, '-inf', now - window)\n"
    "  redis.call('EXPIRE', dirty, ttl_text)\n"
    "end\n"
    "if trend_touched then\n"
    "  local tkeys, args = P .. 'tr:keys', {}\n"
    "  for member in pairs(trend_keys) do\n"
    "    args[#args + 1] = member\n"
    "    if #args >= 512 then redis.call('SADD', tkeys, unpack(args)); args = {} end\n"
    "  end\n"
    "  if #args > 0 then redis.call('SADD', tkeys, unpack(args)) end\n"
    "  redis.call('EXPIRE', tkeys, ttl_text)\n"
    "end\n"
    "for key in pairs(expiring) do redis.call('EXPIRE', key, ttl_text) end\n"
    "for key, lifetime in pairs(bucket_ttls) do redis.call('EXPIRE', key, lifetime) end\n"
    "if newest_text then\n"
    "  redis.call('HSET', clock, 'event', newest_text, 'wall', ARGV[2])\n"
    "  redis.call('EXPIRE', clock, ttl_text)\n"
    "end\n"
    "return applied\n";
const size_t store_aggregate_script_len = sizeof store_aggregate_script - 1;

_Static_assert(VT_DIM_PRODUCT == 0 && VT_DIM_BRAND == 1 && VT_DIM_CATEGORY == 2 &&
                   VT_DIM_CAMPAIGN == 3 && VT_DIM_REFERRER == 4 && VT_DIM_COUNT == 5,
               "the aggregate script names the dimensions in this order");

/* Placement recorded for impressions and clicks that name none. */
static const char *placement_of(const struct vt_event *ev)
{
    if (ev->placement[0] != '\0')
        return ev->placement;
    return ev->type == VT_EV_IMPRESSION ? "list" : "none";
}


/* A call takes records until it has this many arguments: a script blocks Redis while it
 * runs, so a call is kept short (about 16 typical records) for the HTTP reads waiting. */
#define AGG_CALL_ARGS_SOFT_MAX 512

void vt_store_aggregates_begin(struct vt_store *st)
{
    store_pipeline_begin(st);
    st->agg_records = 0;
}


/* Start a script call with the header every record of the batch shares. */
static void open_call(struct vt_store *st, int64_t now_ms)
{
    const struct vt_config *cfg = st->cfg;

    store_args_reset(st);
    store_args_script(st, SCRIPT_AGGREGATE, 1);
    store_arg_printf(st, "%s{agg}:off", cfg->redis_prefix);
    store_arg_printf(st, "%s{agg}:", cfg->redis_prefix);
    store_arg_int(st, now_ms);
    store_arg_int(st, cfg->agg_ttl_s);
    store_arg_int(st, cfg->agg_neighbors_max);
    store_arg_int(st, TRENDING_GLOBAL_MAX);
    store_arg_int(st, TRENDING_LIST_MAX);
    store_arg_int(st, DIRTY_WINDOW_MS);
    st->agg_records = 0;
}


/* Append one record's block to the open call (layout above the script). The event, the
 * delta and the increments are reused for the next record before the call is queued, so
 * their strings are copied. The results and the rules stay until the commit. */
static void add_record(struct vt_store *st, const struct vt_event *ev,
                       const struct vt_profile_delta *d, const struct vt_apply_result *r,
                       const struct vt_alert_counts *counts)
{
    const struct vt_config *cfg = st->cfg;
    double weight = cfg->intent_weight[ev->type];

    store_arg_printf(st, "%s:%" PRId32, d->source_tag, d->partition);
    store_arg_int(st, d->offset);
    store_arg_int(st, ev->ts_ms);
    store_arg(st, vt_event_type_name(ev->type));
    store_arg_copy(st, placement_of(ev));
    store_arg_int(st, vt_score_stored(vt_decay_log_score(1.0, ev->ts_ms, cfg->agg_half_life_s)));
    if (weight > 0)
        store_arg_int(st, vt_score_stored(
                              vt_decay_log_score(weight, ev->ts_ms, cfg->trend_half_life_s)));
    else
        store_arg(st, "none");

    /* Only views have a fresh mask; carts and purchases always count. */
    bool is_view = ev->type == VT_EV_PRODUCT_VIEW || ev->type == VT_EV_PRODUCT_IMAGE_VIEW ||
                   ev->type == VT_EV_CLICK;
    store_arg_int(st, (int64_t)ev->n_items);
    for (size_t i = 0; i < ev->n_items; i++) {
        const struct vt_event_item *item = &ev->items[i];
        bool fresh = !is_view || i >= 64 || (r->fresh_views >> i) & 1;
        store_arg_copy(st, item->id);
        store_arg_int(st, item->position);
        store_arg_copy(st, item->brand);
        store_arg(st, fresh ? "1" : "0");
        store_arg_int(st, item->n_categories);
        for (size_t c = 0; c < item->n_categories; c++)
            store_arg_copy(st, item->categories[c]);
    }
    store_arg_int(st, (int64_t)r->n_previous);
    for (size_t i = 0; i < r->n_previous; i++)
        store_arg(st, r->previous[i]);
    store_arg_int(st, (int64_t)r->n_attributions);
    for (size_t i = 0; i < r->n_attributions; i++) {
        const struct vt_attribution *a = &r->attributions[i];
        store_arg(st, a->product);
        store_arg(st, a->placement[0] != '\0' ? a->placement : "none");
        store_arg_int(st, a->position);
    }

    /* Alert counting: the bucket of the event's time. */
    int64_t bucket_ms = counts != NULL && counts->bucket_ms > 0 ? counts->bucket_ms : 10000;
    int64_t bucket = ev->ts_ms - ((ev->ts_ms % bucket_ms) + bucket_ms) % bucket_ms;
    size_t n_counts = counts != NULL ? counts->n : 0;
    store_arg_int(st, bucket);
    store_arg_int(st, counts != NULL && counts->ttl_s > 0 ? counts->ttl_s : cfg->agg_ttl_s);
    store_arg_int(st, (int64_t)n_counts);
    for (size_t i = 0; i < n_counts; i++) {
        const struct vt_alert_increment *inc = &counts->increments[i];
        store_arg(st, counts->rules->rules[inc->rule].name);
        store_arg_copy(st, inc->group);
        store_arg_double(st, inc->amount);
        for (int dim = 0; dim < VT_DIM_COUNT; dim++)
            store_arg_copy(st, inc->dims[dim]);
    }
}


/* Queue the open call, if it contains a record. */
static void close_call(struct vt_store *st)
{
    if (st->agg_records > 0)
        store_queue(st);
    st->agg_records = 0;
}


void vt_store_aggregates_add(struct vt_store *st, const struct vt_event *ev,
                             const struct vt_profile_delta *d,
                             const struct vt_apply_result *r,
                             const struct vt_alert_counts *counts, int64_t now_ms)
{
    if (st->failed)
        return;
    if (st->agg_records == 0)
        open_call(st, now_ms);

    /* A record that does not fit the open call goes into a call of its own. A record that
     * does not fit even alone fails the batch in store_queue. */
    int argc = st->argc;
    size_t numbers_used = st->numbers_used, texts_used = st->texts_used;
    size_t copies_used = st->copies_used;
    add_record(st, ev, d, r, counts);
    if (st->args_overflow && st->agg_records > 0) {
        st->argc = argc;
        st->numbers_used = numbers_used;
        st->texts_used = texts_used;
        st->copies_used = copies_used;
        st->args_overflow = false;
        close_call(st);
        open_call(st, now_ms);
        add_record(st, ev, d, r, counts);
    }
    st->agg_records++;
    if (st->args_overflow || st->argc >= AGG_CALL_ARGS_SOFT_MAX)
        close_call(st);
}


static bool count_applied(const redisReply *r, size_t index, void *arg, char *err,
                          size_t errsize)
{
    size_t *applied = arg;

    (void)index;
    if (r->type != REDIS_REPLY_INTEGER || r->integer < 0) {
        snprintf(err, errsize, "redis aggregate script returned reply type %d", r->type);
        return false;
    }
    *applied += (size_t)r->integer;
    return true;
}


int vt_store_aggregates_commit(struct vt_store *st, size_t *applied, char *err,
                               size_t errsize)
{
    *applied = 0;
    if (!st->failed)
        close_call(st);
    return store_pipeline_commit(st, count_applied, applied, err, errsize);
}


/* ---- statistics reads ---- */

static int64_t *counter_of(struct vt_stats_counts *c, const char *field, size_t len)
{
    if (len == 3 && memcmp(field, "imp", 3) == 0)
        return &c->impressions;
    if (len == 3 && memcmp(field, "clk", 3) == 0)
        return &c->clicks;
    if (len == 4 && memcmp(field, "cart", 4) == 0)
        return &c->carts;
    if (len == 3 && memcmp(field, "buy", 3) == 0)
        return &c->purchases;
    return NULL;
}


/* Sort one hash field ("imp", "imp:3", "imp:other", "clk@home") into the statistics. */
static void add_stats_field(struct vt_stats *out, const redisReply *key, int64_t value)
{
    const char *s = key->str;
    size_t len = key->len;
    const char *colon = memchr(s, ':', len);
    const char *at = memchr(s, '@', len);
    size_t base = len; /* length of the counter name before '@' or ':' */
    int64_t *counter;

    /* A placement name may itself contain ':', so '@' decides first. */
    if (at != NULL) {
        base = (size_t)(at - s);
        colon = NULL;
    } else if (colon != NULL) {
        base = (size_t)(colon - s);
    }

    if (colon != NULL) {
        char digits[8];
        int64_t position = 0;
        size_t dl = len - base - 1;

        if (dl < sizeof digits) {
            memcpy(digits, colon + 1, dl);
            digits[dl] = '\0';
            if (vt_parse_int64(digits, 1, VT_STATS_POSITIONS, &position) != 0)
                position = 0;
        }
        counter = counter_of(&out->by_position[position], s, base);
    } else if (at != NULL) {
        size_t k;
        size_t nl = len - base - 1;

        for (k = 0; k < out->n_placements; k++) {
            if (strlen(out->placements[k].name) == nl &&
                memcmp(out->placements[k].name, at + 1, nl) == 0)
                break;
        }
        if (k == out->n_placements) {
            if (k >= VT_STATS_PLACEMENTS_MAX || nl > VT_PLACEMENT_MAX)
                return;
            vt_copy_utf8(out->placements[k].name, sizeof out->placements[k].name, at + 1, nl);
            memset(&out->placements[k].counts, 0, sizeof out->placements[k].counts);
            out->n_placements++;
        }
        counter = counter_of(&out->placements[k].counts, s, base);
    } else {
        counter = counter_of(&out->total, s, base);
    }
    if (counter != NULL)
        *counter += value;
}


int vt_store_stats_read(struct vt_store *st, bool is_product, const char *name, size_t len,
                        struct vt_stats *out, char *err, size_t errsize)
{
    char key[STORE_KEY_MAX];
    const char *argv[2];
    size_t lens[2];
    redisReply *r;
    int n;

    memset(out, 0, sizeof *out);
    if (store_ensure_connected(st, err, errsize) != 0)
        return -1;
    n = snprintf(key, sizeof key, "%s{agg}:%s%.*s", st->cfg->redis_prefix,
                 is_product ? "st:p:" : "st:pl:", (int)len, name);
    if (n < 0 || (size_t)n >= sizeof key) {
        snprintf(err, errsize, "statistics key too long");
        return -1;
    }
    argv[0] = "HGETALL";
    lens[0] = 7;
    argv[1] = key;
    lens[1] = (size_t)n;
    r = store_command(st, 2, argv, lens, err, errsize);
    if (r == NULL)
        return -1;
    if (r->type == REDIS_REPLY_ARRAY) {
        out->exists = r->elements > 0;
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
            if (r->element[i]->type == REDIS_REPLY_STRING)
                add_stats_field(out, r->element[i], store_reply_int(r->element[i + 1]));
        }
    }
    freeReplyObject(r);
    return 0;
}
