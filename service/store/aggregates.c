/*
 * vitrine: the shared stream aggregates in Redis: item-to-item relations, trending and
 * impression/click statistics (keys in docs/architecture.md, "Stream aggregates").
 *
 * The ingest thread calls the aggregate script once per record, after the profiles of the
 * batch were acknowledged. Every key lives under the hash tag {agg}, so one script can
 * check the aggregates' own redelivery watermark and update them atomically.
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
 * ARGV: 1 key prefix ("vt:{agg}:"), 2 watermark field "<source tag>:<partition>",
 * 3 offset, 4 event time (ms), 5 wall time (ms), 6 event type, 7 placement, 8 ttl (s),
 * 9 neighbours kept per product, 10 log-score of one co-view or co-purchase at the event
 * time, 11 log-score of the event's intent weight for trending ("none": no trending),
 * 12 global and 13 per-list trending caps, 14 dirty window (ms);
 * then n items (id, position, brand, fresh, n categories, categories...), n previous
 * products, n attributions (product, placement, position). fresh is "1" unless the item is
 * a view of a product the session had viewed before: such a view adds no co-view and no
 * trending weight. Last the alert counting: bucket start (ms), bucket lifetime (s), n
 * increments (rule, group, amount, then product, brand, category, campaign and referrer,
 * "" when unknown). The stream clock (al:clock) keeps the newest event time and the wall
 * time it was applied at. An event more than a minute ahead of the wall clock is counted
 * but does not move the clock, so one bad timestamp cannot push every window ahead.
 * Returns 1 when applied, 0 for a record at or below the watermark.
 */
const char store_aggregate_script[] =
    "local P = ARGV[1]\n"
    "local last = redis.call('HGET', KEYS[1], ARGV[2])\n"
    "if last and tonumber(last) >= tonumber(ARGV[3]) then return 0 end\n"
    "local ttl = tonumber(ARGV[8])\n"
    "redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])\n"
    "redis.call('EXPIRE', KEYS[1], ttl)\n"
    "local now, etype, pl = tonumber(ARGV[5]), ARGV[6], ARGV[7]\n"
    "local cap, xcv = tonumber(ARGV[9]), tonumber(ARGV[10])\n"
    "local xtr = nil\n"
    "if ARGV[11] ~= 'none' then xtr = tonumber(ARGV[11]) end\n"
    "local trend_all, trend_list = tonumber(ARGV[12]), tonumber(ARGV[13])\n"
    "local window = tonumber(ARGV[14])\n"
    "local i = 15\n"
    "local items = {}\n"
    "local n = tonumber(ARGV[i]); i = i + 1\n"
    "for k = 1, n do\n"
    "  local item = {id = ARGV[i], pos = tonumber(ARGV[i + 1]), brand = ARGV[i + 2],\n"
    "                fresh = ARGV[i + 3] == '1'}\n"
    "  local nc = tonumber(ARGV[i + 4]); i = i + 5\n"
    "  item.cats = {}\n"
    "  for c = 1, nc do item.cats[c] = ARGV[i]; i = i + 1 end\n"
    "  items[k] = item\n"
    "end\n"
    "local previous = {}\n"
    "n = tonumber(ARGV[i]); i = i + 1\n"
    "for k = 1, n do previous[k] = ARGV[i]; i = i + 1 end\n"
    "local attributions = {}\n"
    "n = tonumber(ARGV[i]); i = i + 1\n"
    "for k = 1, n do\n"
    "  attributions[k] = {id = ARGV[i], pl = ARGV[i + 1], pos = tonumber(ARGV[i + 2])}\n"
    "  i = i + 3\n"
    "end\n"
    "local function logadd(a, b)\n"
    "  if b > a then a, b = b, a end\n"
    "  return a + math.log(1 + math.exp(b - a))\n"
    "end\n"
    "local function bump(key, member, x, keep)\n"
    "  local cur = redis.call('ZSCORE', key, member)\n"
    "  if cur then x = logadd(tonumber(cur), x) end\n"
    "  redis.call('ZADD', key, string.format('%.17g', x), member)\n"
    "  redis.call('ZREMRANGEBYRANK', key, 0, -(keep + 1))\n"
    "  redis.call('EXPIRE', key, ttl)\n"
    "end\n"
    "local dirty = P .. 'i2i:dirty'\n"
    "local function relate(kind, a, b)\n"
    "  if a == b then return end\n"
    "  bump(P .. kind .. ':' .. a, b, xcv, cap)\n"
    "  bump(P .. kind .. ':' .. b, a, xcv, cap)\n"
    "  redis.call('ZADD', dirty, now, a)\n"
    "  redis.call('ZADD', dirty, now, b)\n"
    "end\n"
    "if etype == 'product_view' or etype == 'product_image_view' or etype == 'click' then\n"
    "  for k = 1, #items do\n"
    "    if items[k].fresh then\n"
    "      for q = 1, #previous do relate('cv', previous[q], items[k].id) end\n"
    "    end\n"
    "  end\n"
    "elseif etype == 'purchase' then\n"
    "  for k = 1, #items do\n"
    "    for q = k + 1, #items do relate('cb', items[k].id, items[q].id) end\n"
    "    for q = 1, #previous do relate('cb', previous[q], items[k].id) end\n"
    "  end\n"
    "end\n"
    "if #items > 0 then\n"
    "  redis.call('ZREMRANGEBYSCORE', dirty, '-inf', now - window)\n"
    "  redis.call('EXPIRE', dirty, ttl)\n"
    "end\n"
    "if xtr then\n"
    "  local tkeys = P .. 'tr:keys'\n"
    "  for k = 1, #items do\n"
    "    local it = items[k]\n"
    "    if it.fresh then\n"
    "      bump(P .. 'tr', it.id, xtr, trend_all)\n"
    "      for c = 1, #it.cats do\n"
    "        bump(P .. 'tr:c:' .. it.cats[c], it.id, xtr, trend_list)\n"
    "        redis.call('SADD', tkeys, 'c:' .. it.cats[c])\n"
    "      end\n"
    "      if it.brand ~= '' then\n"
    "        bump(P .. 'tr:b:' .. it.brand, it.id, xtr, trend_list)\n"
    "        redis.call('SADD', tkeys, 'b:' .. it.brand)\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "  redis.call('EXPIRE', tkeys, ttl)\n"
    "end\n"
    "local function at(field, position)\n"
    "  if position and position >= 1 and position <= 100 then\n"
    "    return field .. ':' .. position\n"
    "  end\n"
    "  return field .. ':other'\n"
    "end\n"
    "local function count(key, field, position, placement)\n"
    "  redis.call('HINCRBY', key, field, 1)\n"
    "  if position then redis.call('HINCRBY', key, at(field, position), 1) end\n"
    "  if placement then redis.call('HINCRBY', key, field .. '@' .. placement, 1) end\n"
    "  redis.call('EXPIRE', key, ttl)\n"
    "end\n"
    "if etype == 'impression' or etype == 'click' then\n"
    "  local f = 'imp'\n"
    "  if etype == 'click' then f = 'clk' end\n"
    "  for k = 1, #items do\n"
    "    count(P .. 'st:p:' .. items[k].id, f, items[k].pos, pl)\n"
    "    count(P .. 'st:pl:' .. pl, f, items[k].pos, nil)\n"
    "  end\n"
    "elseif etype == 'add_to_cart' or etype == 'purchase' then\n"
    "  local f = 'cart'\n"
    "  if etype == 'purchase' then f = 'buy' end\n"
    "  for k = 1, #items do count(P .. 'st:p:' .. items[k].id, f, nil, nil) end\n"
    "  for k = 1, #attributions do\n"
    "    local a = attributions[k]\n"
    "    local pk = P .. 'st:p:' .. a.id\n"
    "    redis.call('HINCRBY', pk, at(f, a.pos), 1)\n"
    "    redis.call('HINCRBY', pk, f .. '@' .. a.pl, 1)\n"
    "    count(P .. 'st:pl:' .. a.pl, f, a.pos, nil)\n"
    "  end\n"
    "end\n"
    "local bucket, bucket_ttl = ARGV[i], tonumber(ARGV[i + 1])\n"
    "n = tonumber(ARGV[i + 2]); i = i + 3\n"
    "local dims = {'product', 'brand', 'category', 'campaign', 'referrer'}\n"
    "for k = 1, n do\n"
    "  local key = P .. 'al:' .. ARGV[i] .. ':' .. bucket\n"
    "  local group, amount = ARGV[i + 1], ARGV[i + 2]\n"
    "  redis.call('HINCRBYFLOAT', key, 'g:' .. group, amount)\n"
    "  for d = 1, 5 do\n"
    "    local v = ARGV[i + 2 + d]\n"
    "    if v ~= '' then\n"
    "      redis.call('HINCRBYFLOAT', key, 'd:' .. #group .. ':' .. group .. '|' .. dims[d] .. '|' .. v, amount)\n"
    "    end\n"
    "  end\n"
    "  redis.call('EXPIRE', key, bucket_ttl)\n"
    "  i = i + 8\n"
    "end\n"
    "local clock, t = P .. 'al:clock', tonumber(ARGV[4])\n"
    "if t >= tonumber(redis.call('HGET', clock, 'event') or '0') and t <= now + 60000 then\n"
    "  redis.call('HSET', clock, 'event', ARGV[4], 'wall', ARGV[5])\n"
    "  redis.call('EXPIRE', clock, ttl)\n"
    "end\n"
    "return 1\n";
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


void vt_store_aggregates_begin(struct vt_store *st)
{
    store_pipeline_begin(st);
}


void vt_store_aggregates_add(struct vt_store *st, const struct vt_event *ev,
                             const struct vt_profile_delta *d,
                             const struct vt_apply_result *r,
                             const struct vt_alert_counts *counts, int64_t now_ms)
{
    const struct vt_config *cfg = st->cfg;
    double weight = cfg->intent_weight[ev->type];

    if (st->failed)
        return;
    store_args_reset(st);
    store_args_script(st, SCRIPT_AGGREGATE, 1);
    store_arg_printf(st, "%s{agg}:off", cfg->redis_prefix);
    store_arg_printf(st, "%s{agg}:", cfg->redis_prefix);
    store_arg_printf(st, "%s:%" PRId32, d->source_tag, d->partition);
    store_arg_int(st, d->offset);
    store_arg_int(st, ev->ts_ms);
    store_arg_int(st, now_ms);
    store_arg(st, vt_event_type_name(ev->type));
    store_arg(st, placement_of(ev));
    store_arg_int(st, cfg->agg_ttl_s);
    store_arg_int(st, cfg->agg_neighbors_max);
    store_arg_double(st, vt_decay_log_score(1.0, ev->ts_ms, cfg->agg_half_life_s));
    if (weight > 0)
        store_arg_double(st, vt_decay_log_score(weight, ev->ts_ms, cfg->trend_half_life_s));
    else
        store_arg(st, "none");
    store_arg_int(st, TRENDING_GLOBAL_MAX);
    store_arg_int(st, TRENDING_LIST_MAX);
    store_arg_int(st, DIRTY_WINDOW_MS);

    /* Only views have a fresh mask; carts and purchases always count. */
    bool is_view = ev->type == VT_EV_PRODUCT_VIEW || ev->type == VT_EV_PRODUCT_IMAGE_VIEW ||
                   ev->type == VT_EV_CLICK;
    store_arg_int(st, (int64_t)ev->n_items);
    for (size_t i = 0; i < ev->n_items; i++) {
        const struct vt_event_item *item = &ev->items[i];
        bool fresh = !is_view || i >= 64 || (r->fresh_views >> i) & 1;
        store_arg(st, item->id);
        store_arg_int(st, item->position);
        store_arg(st, item->brand);
        store_arg(st, fresh ? "1" : "0");
        store_arg_int(st, item->n_categories);
        for (size_t c = 0; c < item->n_categories; c++)
            store_arg(st, item->categories[c]);
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
        store_arg(st, inc->group);
        store_arg_double(st, inc->amount);
        for (int dim = 0; dim < VT_DIM_COUNT; dim++)
            store_arg(st, inc->dims[dim]);
    }
    store_queue(st);
}


static bool count_applied(const redisReply *r, size_t index, void *arg, char *err,
                          size_t errsize)
{
    size_t *applied = arg;

    (void)index;
    if (r->type != REDIS_REPLY_INTEGER) {
        snprintf(err, errsize, "redis aggregate script returned reply type %d", r->type);
        return false;
    }
    *applied += r->integer == 1;
    return true;
}


int vt_store_aggregates_commit(struct vt_store *st, size_t *applied, char *err,
                               size_t errsize)
{
    *applied = 0;
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
