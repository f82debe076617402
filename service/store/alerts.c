/*
 * vitrine: the alerts' Redis keys (see include/vitrine/store.h): the leader lease, the
 * stream clock, counting buckets, episode states and alert records. All of them live under
 * the hash tag {agg} next to the other shared aggregates.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "vitrine/util.h"

/* Key of one alert record: prefix (< 32) + "{agg}:al:a:" + id (<= VT_ALERT_ID_MAX). */
#define ALERT_KEY_MAX 96

/* Take the lease when it is free, renew it when this instance holds it. Returns 1 when
 * this instance leads afterwards, 0 otherwise. */
static const char lease_script[] =
    "local holder = redis.call('GET', KEYS[1])\n"
    "if holder == ARGV[1] then\n"
    "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    "  return 1\n"
    "end\n"
    "if not holder then\n"
    "  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "  return 1\n"
    "end\n"
    "return 0\n";

/* Give the lease up if this instance holds it. */
static const char release_script[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end\n"
    "return 0\n";

static void agg_key(const struct vt_store *st, char *out, size_t outsize, const char *suffix)
{
    snprintf(out, outsize, "%s{agg}:%s", st->cfg->redis_prefix, suffix);
}


static redisReply *eval(struct vt_store *st, const char *script, const char *key,
                        const char *arg1, const char *arg2, char *err, size_t errsize)
{
    const char *argv[] = {"EVAL", script, "1", key, arg1, arg2};
    size_t lens[] = {4, strlen(script), 1, strlen(key), strlen(arg1), arg2 ? strlen(arg2) : 0};

    return store_command(st, arg2 ? 6 : 5, argv, lens, err, errsize);
}


int vt_store_alert_lease(struct vt_store *st, const char *instance, int64_t lease_ms,
                         bool *leader, char *err, size_t errsize)
{
    char key[STORE_KEY_MAX], ms[24];
    redisReply *r;

    if (store_ensure_connected(st, err, errsize) != 0)
        return -1;
    agg_key(st, key, sizeof key, "al:leader");
    snprintf(ms, sizeof ms, "%" PRId64, lease_ms);
    r = eval(st, lease_script, key, instance, ms, err, errsize);
    if (r == NULL)
        return -1;
    *leader = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    return 0;
}


int vt_store_alert_release(struct vt_store *st, const char *instance, char *err,
                           size_t errsize)
{
    char key[STORE_KEY_MAX];
    redisReply *r;

    if (store_ensure_connected(st, err, errsize) != 0)
        return -1;
    agg_key(st, key, sizeof key, "al:leader");
    r = eval(st, release_script, key, instance, NULL, err, errsize);
    if (r == NULL)
        return -1;
    freeReplyObject(r);
    return 0;
}


int vt_store_alert_clock(struct vt_store *st, int64_t *event_ms, int64_t *wall_ms, char *err,
                         size_t errsize)
{
    char key[STORE_KEY_MAX];
    const char *argv[4] = {"HMGET", key, "event", "wall"};
    size_t lens[4] = {5, 0, 5, 4};
    redisReply *r;

    *event_ms = -1;
    *wall_ms = -1;
    if (store_ensure_connected(st, err, errsize) != 0)
        return -1;
    agg_key(st, key, sizeof key, "al:clock");
    lens[1] = strlen(key);
    r = store_command(st, 4, argv, lens, err, errsize);
    if (r == NULL)
        return -1;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING) {
        *event_ms = store_reply_int(r->element[0]);
        *wall_ms = store_reply_int(r->element[1]);
    }
    freeReplyObject(r);
    return 0;
}


int vt_store_alert_buckets(struct vt_store *st, const char *rule, const int64_t *starts,
                           size_t n, vt_store_bucket_fn fn, void *arg, char *err,
                           size_t errsize)
{
    int rc = 0;

    if (store_ensure_connected(st, err, errsize) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char key[STORE_KEY_MAX];
        int len = snprintf(key, sizeof key, "%s{agg}:al:%s:%" PRId64, st->cfg->redis_prefix,
                           rule, starts[i]);
        redisAppendCommand(st->ctx, "HGETALL %b", key, (size_t)len);
    }
    /* Read every reply, also after an error, so that the connection stays in step. */
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;

        if (redisGetReply(st->ctx, (void **)&r) != REDIS_OK || r == NULL) {
            char why[64];
            snprintf(err, errsize, "redis %s:%" PRId64 ": %s", st->cfg->redis_host,
                     st->cfg->redis_port, store_describe_error(st, why, sizeof why));
            store_close(st);
            return -1;
        }
        if (r->type == REDIS_REPLY_ARRAY && rc == 0) {
            for (size_t k = 0; k + 1 < r->elements; k += 2) {
                const redisReply *field = r->element[k];
                if (field->type == REDIS_REPLY_STRING)
                    fn(arg, i, field->str, field->len, store_reply_double(r->element[k + 1]));
            }
        } else if (r->type == REDIS_REPLY_ERROR && rc == 0) {
            snprintf(err, errsize, "redis alert bucket read failed: %.*s", (int)r->len, r->str);
            rc = -1;
        }
        freeReplyObject(r);
    }
    return rc;
}


int vt_store_alert_states(struct vt_store *st, vt_store_field_fn fn, void *arg, char *err,
                          size_t errsize)
{
    char key[STORE_KEY_MAX];
    const char *argv[2] = {"HGETALL", key};
    size_t lens[2];
    redisReply *r;

    if (store_ensure_connected(st, err, errsize) != 0)
        return -1;
    agg_key(st, key, sizeof key, "al:state");
    lens[0] = 7;
    lens[1] = strlen(key);
    r = store_command(st, 2, argv, lens, err, errsize);
    if (r == NULL)
        return -1;
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t k = 0; k + 1 < r->elements; k += 2) {
            const redisReply *f = r->element[k], *v = r->element[k + 1];
            if (f->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING)
                fn(arg, f->str, f->len, v->str, v->len);
        }
    }
    freeReplyObject(r);
    return 0;
}


int vt_store_alert_state_set(struct vt_store *st, const char *field, const char *value,
                             char *err, size_t errsize)
{
    char key[STORE_KEY_MAX];
    redisReply *r;

    if (store_ensure_connected(st, err, errsize) != 0)
        return -1;
    agg_key(st, key, sizeof key, "al:state");
    if (value != NULL) {
        const char *argv[4] = {"HSET", key, field, value};
        size_t lens[4] = {4, strlen(key), strlen(field), strlen(value)};
        r = store_command(st, 4, argv, lens, err, errsize);
    } else {
        const char *argv[3] = {"HDEL", key, field};
        size_t lens[3] = {4, strlen(key), strlen(field)};
        r = store_command(st, 3, argv, lens, err, errsize);
    }
    if (r == NULL)
        return -1;
    freeReplyObject(r);
    return 0;
}


/* Store a record, list it, and delete the records beyond the newest `keep` that have
 * resolved (or expired). Active ones stay listed and readable until they resolve, so that
 * their resolution is still stored and delivered; a later store deletes them. */
static const char put_script[] =
    "redis.call('SET', KEYS[1], ARGV[1], 'EX', 2592000)\n"
    "redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])\n"
    "for _, id in ipairs(redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[4]))) do\n"
    "  local rec = redis.call('GET', ARGV[5] .. id)\n"
    "  if not rec or cjson.decode(rec).state == 'resolved' then\n"
    "    redis.call('DEL', ARGV[5] .. id)\n"
    "    redis.call('ZREM', KEYS[2], id)\n"
    "  end\n"
    "end\n"
    "return 1\n";

int vt_store_alert_put(struct vt_store *st, const char *id, const char *json, size_t len,
                       int64_t fired_ms, int64_t keep, char *err, size_t errsize)
{
    char record[STORE_KEY_MAX], list[STORE_KEY_MAX], score[24], last[24], prefix[STORE_KEY_MAX];
    const char *argv[10];
    size_t lens[10];
    redisReply *r;

    if (store_ensure_connected(st, err, errsize) != 0)
        return -1;
    snprintf(record, sizeof record, "%s{agg}:al:a:%s", st->cfg->redis_prefix, id);
    snprintf(prefix, sizeof prefix, "%s{agg}:al:a:", st->cfg->redis_prefix);
    agg_key(st, list, sizeof list, "al:list");
    snprintf(score, sizeof score, "%" PRId64, fired_ms);
    snprintf(last, sizeof last, "%" PRId64, -(keep + 1));

    argv[0] = "EVAL";
    argv[1] = put_script;
    argv[2] = "2";
    argv[3] = record;
    argv[4] = list;
    argv[5] = json;
    argv[6] = score;
    argv[7] = id;
    argv[8] = last;
    argv[9] = prefix;
    for (size_t i = 0; i < 10; i++)
        lens[i] = i == 5 ? len : strlen(argv[i]);
    r = store_command(st, 10, argv, lens, err, errsize);
    if (r == NULL)
        return -1;
    freeReplyObject(r);
    return 0;
}


int vt_store_alert_get(struct vt_store *st, const char *id, size_t id_len, struct vt_buf *json,
                       char *err, size_t errsize)
{
    char record[STORE_KEY_MAX];
    const char *argv[2] = {"GET", record};
    size_t lens[2];
    redisReply *r;

    vt_buf_reset(json);
    if (store_ensure_connected(st, err, errsize) != 0)
        return -1;
    snprintf(record, sizeof record, "%s{agg}:al:a:%.*s", st->cfg->redis_prefix, (int)id_len, id);
    lens[0] = 3;
    lens[1] = strlen(record);
    r = store_command(st, 2, argv, lens, err, errsize);
    if (r == NULL)
        return -1;
    if (r->type == REDIS_REPLY_STRING)
        vt_buf_append(json, r->str, r->len);
    freeReplyObject(r);
    return 0;
}


int vt_store_alert_list(struct vt_store *st, size_t limit, vt_store_record_fn fn, void *arg,
                        char *err, size_t errsize)
{
    char list[STORE_KEY_MAX], stop[24];
    const char *argv[4] = {"ZREVRANGE", list, "0", stop};
    size_t lens[4];
    redisReply *ids, *records = NULL;
    int rc = 0;

    if (store_ensure_connected(st, err, errsize) != 0)
        return -1;
    agg_key(st, list, sizeof list, "al:list");
    snprintf(stop, sizeof stop, "%zu", limit > 0 ? limit - 1 : 0);
    lens[0] = 9;
    lens[1] = strlen(list);
    lens[2] = 1;
    lens[3] = strlen(stop);
    ids = store_command(st, 4, argv, lens, err, errsize);
    if (ids == NULL)
        return -1;
    if (ids->type != REDIS_REPLY_ARRAY || ids->elements == 0 || limit == 0)
        goto out;

    /* MGET of every record, in the list's order (newest first). */
    const char *margv[1 + VT_ALERT_LIST_MAX];
    size_t mlens[1 + VT_ALERT_LIST_MAX];
    char keys[VT_ALERT_LIST_MAX][ALERT_KEY_MAX];
    size_t n = ids->elements < VT_ALERT_LIST_MAX ? ids->elements : VT_ALERT_LIST_MAX;
    margv[0] = "MGET";
    mlens[0] = 4;
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(keys[i], sizeof keys[i], "%s{agg}:al:a:%.*s", st->cfg->redis_prefix,
                           (int)ids->element[i]->len, ids->element[i]->str);
        margv[1 + i] = keys[i];
        mlens[1 + i] = (size_t)len;
    }
    records = store_command(st, (int)(1 + n), margv, mlens, err, errsize);
    if (records == NULL) {
        rc = -1;
        goto out;
    }
    for (size_t i = 0; records->type == REDIS_REPLY_ARRAY && i < records->elements; i++) {
        const redisReply *rec = records->element[i];
        if (rec->type == REDIS_REPLY_STRING)
            fn(arg, rec->str, rec->len);
    }

out:
    if (records != NULL)
        freeReplyObject(records);
    freeReplyObject(ids);
    return rc;
}


/* Record changes run as scripts that decode and re-encode the record (Redis' built-in
 * cjson), so that the leader's updates and an analyst's acknowledgement never overwrite
 * each other. Each returns the new record, or false when there is none. */
static const char ack_script[] =
    "local rec = redis.call('GET', KEYS[1])\n"
    "if not rec then return false end\n"
    "local a = cjson.decode(rec)\n"
    "a.ack = {by = ARGV[1], note = ARGV[2], at = ARGV[3]}\n"
    "local out = cjson.encode(a)\n"
    "redis.call('SET', KEYS[1], out, 'KEEPTTL')\n"
    "return out\n";

static const char resolve_script[] =
    "local rec = redis.call('GET', KEYS[1])\n"
    "if not rec then return false end\n"
    "local a = cjson.decode(rec)\n"
    "local open = 0\n"
    "for _, s in ipairs(a.series) do\n"
    "  if s.rule == ARGV[1] and s.group == ARGV[2] and s.state ~= 'resolved' then\n"
    "    s.state = 'resolved'\n"
    "    s.resolved_at = ARGV[3]\n"
    "  end\n"
    "  if s.state ~= 'resolved' then open = open + 1 end\n"
    "end\n"
    "if open == 0 and a.state ~= 'resolved' then\n"
    "  a.state = 'resolved'\n"
    "  a.resolved_at = ARGV[3]\n"
    "end\n"
    "local out = cjson.encode(a)\n"
    "redis.call('SET', KEYS[1], out, 'KEEPTTL')\n"
    "return out\n";

static const char merge_script[] =
    "local rec = redis.call('GET', KEYS[1])\n"
    "if not rec then return false end\n"
    "local a = cjson.decode(rec)\n"
    "if a.state == 'resolved' then return false end\n"
    "table.insert(a.series, cjson.decode(ARGV[1]))\n"
    "a.merged = (a.merged or 0) + 1\n"
    "local rank = {info = 0, warning = 1, critical = 2}\n"
    "if (rank[ARGV[2]] or 0) > (rank[a.severity] or 0) then\n"
    "  a.severity, a.rule, a.reaction = ARGV[2], ARGV[4], ARGV[5]\n"
    "end\n"
    "a.recipients = a.recipients or {}\n"
    "for _, r in ipairs(cjson.decode(ARGV[3])) do\n"
    "  local known = false\n"
    "  for _, q in ipairs(a.recipients) do if q == r then known = true end end\n"
    "  if not known then table.insert(a.recipients, r) end\n"
    "end\n"
    "local out = cjson.encode(a)\n"
    "redis.call('SET', KEYS[1], out, 'KEEPTTL')\n"
    "return out\n";

static int record_script(struct vt_store *st, const char *script, const char *id, size_t id_len,
                         const char *const *args, size_t n_args, struct vt_buf *out, char *err,
                         size_t errsize)
{
    char record[ALERT_KEY_MAX];
    const char *argv[4 + 5];
    size_t lens[4 + 5];
    redisReply *r;

    vt_buf_reset(out);
    if (store_ensure_connected(st, err, errsize) != 0)
        return -1;
    snprintf(record, sizeof record, "%s{agg}:al:a:%.*s", st->cfg->redis_prefix, (int)id_len, id);
    argv[0] = "EVAL";
    argv[1] = script;
    argv[2] = "1";
    argv[3] = record;
    for (size_t i = 0; i < n_args && i < 5; i++)
        argv[4 + i] = args[i];
    for (size_t i = 0; i < 4 + n_args; i++)
        lens[i] = strlen(argv[i]);
    r = store_command(st, (int)(4 + n_args), argv, lens, err, errsize);
    if (r == NULL)
        return -1;
    if (r->type == REDIS_REPLY_STRING)
        vt_buf_append(out, r->str, r->len);
    freeReplyObject(r);
    return 0;
}


int vt_store_alert_ack(struct vt_store *st, const char *id, size_t id_len, const char *by,
                       const char *note, const char *at, struct vt_buf *out, char *err,
                       size_t errsize)
{
    const char *args[3] = {by, note, at};

    return record_script(st, ack_script, id, id_len, args, 3, out, err, errsize);
}


int vt_store_alert_resolve_series(struct vt_store *st, const char *id, const char *rule,
                                  const char *group, const char *at, struct vt_buf *out,
                                  char *err, size_t errsize)
{
    const char *args[3] = {rule, group, at};

    return record_script(st, resolve_script, id, strlen(id), args, 3, out, err, errsize);
}


int vt_store_alert_add_series(struct vt_store *st, const char *id, const char *series_json,
                              const struct vt_alert_join *join, struct vt_buf *out, char *err,
                              size_t errsize)
{
    const char *args[5] = {series_json, join->severity, join->recipients_json, join->rule,
                           join->reaction};

    return record_script(st, merge_script, id, strlen(id), args, 5, out, err, errsize);
}
