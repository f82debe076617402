/*
 * vitrine: the updater's Redis connection and its reads of the stream aggregates (keys in
 * docs/architecture.md, "Stream aggregates"; see live_internal.h).
 *
 * Every read is a pipeline: all commands of a step are appended to hiredis' output buffer
 * and the replies are read after one flush. Product ids are passed as binary-safe
 * arguments. Replies use RESP2, where WITHSCORES gives a flat array of member, score.
 */
#include <errno.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "live_internal.h"
#include "vitrine/log.h"
#include "vitrine/util.h"

/* Trending lists one pipelined round trip reads at most. Redis executes a pipeline's
 * commands one after the other while other clients wait, so a chunk is kept to about 1,600
 * entries (a few hundred microseconds of Redis) for the HTTP workers' reads in between.
 * With 64 lists per chunk, a refresh raised the p99 of a neighbouring server's Redis
 * reads from 1.0 to 3.2 ms at 7,000 requests/s. */
#define GROUP_CHUNK 8
/* Bytes of one block of copied member ids. */
#define TEXT_BLOCK_SIZE (256 * 1024)

struct live_text_block {
    struct live_text_block *next;
    size_t used;
    char data[TEXT_BLOCK_SIZE];
};
/* Maximum key length: the prefix and "{agg}:" (< 64), "tr:" or "cv:", a suffix or a
 * product id. */
#define KEY_MAX (64 + 4 + VT_PRODUCT_ID_MAX + 2 * VT_NAME_MAX)


void live_reader_init(struct live_reader *r, const struct vt_config *cfg)
{
    memset(r, 0, sizeof *r);
    r->cfg = cfg;
    int n = snprintf(r->prefix, sizeof r->prefix, "%s{agg}:", cfg->redis_prefix);
    r->prefix_len = n > 0 && (size_t)n < sizeof r->prefix ? (size_t)n : 0;
}


void live_reader_close(struct live_reader *r)
{
    if (r->ctx != NULL) {
        redisFree(r->ctx);
        r->ctx = NULL;
    }
}


/* Describe the connection's error; hiredis reports a read timeout as an I/O error with
 * strerror(EAGAIN). Closes the connection. */
static void connection_failed(struct live_reader *r, char *err, size_t errsize)
{
    const struct vt_config *cfg = r->cfg;

    if (r->ctx == NULL) {
        snprintf(err, errsize, "redis %s:%" PRId64 ": out of memory", cfg->redis_host,
                 cfg->redis_port);
    } else if (r->ctx->err == REDIS_ERR_IO &&
               (errno == EAGAIN || errno == EWOULDBLOCK ||
                strstr(r->ctx->errstr, "temporarily") != NULL)) {
        snprintf(err, errsize, "redis %s:%" PRId64 ": timed out after %" PRId64 " ms",
                 cfg->redis_host, cfg->redis_port, cfg->redis_timeout_ms);
    } else {
        snprintf(err, errsize, "redis %s:%" PRId64 ": %s", cfg->redis_host, cfg->redis_port,
                 r->ctx->errstr);
    }
    live_reader_close(r);
}


/* Run one command and check that it did not fail. */
static int simple_command(struct live_reader *r, int argc, const char **argv,
                          const size_t *lens, char *err, size_t errsize)
{
    redisReply *reply = redisCommandArgv(r->ctx, argc, argv, lens);

    if (reply == NULL) {
        connection_failed(r, err, errsize);
        return -1;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(err, errsize, "redis %s failed: %.*s", argv[0], (int)reply->len, reply->str);
        freeReplyObject(reply);
        live_reader_close(r);
        return -1;
    }
    freeReplyObject(reply);
    return 0;
}


static int ensure_connected(struct live_reader *r, char *err, size_t errsize)
{
    const struct vt_config *cfg = r->cfg;
    struct timeval tv = {.tv_sec = cfg->redis_timeout_ms / 1000,
                         .tv_usec = (cfg->redis_timeout_ms % 1000) * 1000};

    if (r->ctx != NULL)
        return 0;
    if (r->prefix_len == 0) {
        snprintf(err, errsize, "redis.prefix %s is too long for the aggregate keys",
                 cfg->redis_prefix);
        return -1;
    }

    r->ctx = redisConnectWithTimeout(cfg->redis_host, (int)cfg->redis_port, tv);
    if (r->ctx == NULL || r->ctx->err) {
        char why[160];

        vt_strlcpy(why, r->ctx != NULL ? r->ctx->errstr : "out of memory", sizeof why);
        live_reader_close(r);
        snprintf(err, errsize, "cannot connect to redis %s:%" PRId64 ": %s", cfg->redis_host,
                 cfg->redis_port, why);
        return -1;
    }
    redisSetTimeout(r->ctx, tv);

    if (cfg->redis_password[0] != '\0') {
        const char *argv[] = {"AUTH", cfg->redis_password};
        size_t lens[] = {4, strlen(cfg->redis_password)};
        if (simple_command(r, 2, argv, lens, err, errsize) != 0)
            return -1;
    }
    if (cfg->redis_db != 0) {
        char db[24];
        int n = snprintf(db, sizeof db, "%" PRId64, cfg->redis_db);
        const char *argv[] = {"SELECT", db};
        size_t lens[] = {6, (size_t)n};
        if (simple_command(r, 2, argv, lens, err, errsize) != 0)
            return -1;
    }
    return 0;
}


/* Build "<prefix>{agg}:<part><name>" into key; returns its length, or 0 when too long. */
static size_t make_key(const struct live_reader *r, const char *part, const char *name,
                       size_t name_len, char key[KEY_MAX])
{
    size_t part_len = strlen(part);
    size_t len = r->prefix_len + part_len + name_len;

    if (len >= KEY_MAX)
        return 0;
    memcpy(key, r->prefix, r->prefix_len);
    memcpy(key + r->prefix_len, part, part_len);
    memcpy(key + r->prefix_len + part_len, name, name_len);
    key[len] = '\0';
    return len;
}


/* Queue ZREVRANGE key 0 count-1 WITHSCORES. */
static void append_zrevrange(struct live_reader *r, const char *key, size_t key_len,
                             int64_t count)
{
    char stop[24];
    int n = snprintf(stop, sizeof stop, "%" PRId64, count - 1);
    const char *argv[] = {"ZREVRANGE", key, "0", stop, "WITHSCORES"};
    size_t lens[] = {9, key_len, 1, (size_t)n, 10};

    redisAppendCommandArgv(r->ctx, 5, argv, lens);
}


/* Read n pipelined replies. A WRONGTYPE error (a key of another type under an aggregate
 * name) reads as an empty set. Any other error fails the whole read, because it hits every
 * command alike (authentication, a loading server). Returns 0, or -1 with the replies
 * read so far freed and the connection closed. */
static int read_replies(struct live_reader *r, redisReply **replies, size_t n, char *err,
                        size_t errsize)
{
    for (size_t i = 0; i < n; i++) {
        void *reply = NULL;

        if (redisGetReply(r->ctx, &reply) != REDIS_OK || reply == NULL) {
            connection_failed(r, err, errsize);
            goto fail;
        }
        replies[i] = reply;
        if (replies[i]->type == REDIS_REPLY_ERROR) {
            if (strncmp(replies[i]->str, "WRONGTYPE", 9) == 0) {
                VT_DEBUG("LIVE", "redis: %.*s", (int)replies[i]->len, replies[i]->str);
                freeReplyObject(replies[i]);
                replies[i] = NULL;
                continue;
            }
            snprintf(err, errsize, "redis read failed: %.*s", (int)replies[i]->len,
                     replies[i]->str);
            live_reader_close(r);
            n = i + 1;
            goto fail;
        }
    }
    return 0;

fail:
    for (size_t i = 0; i < n; i++) {
        if (replies[i] != NULL)
            freeReplyObject(replies[i]);
        replies[i] = NULL;
    }
    return -1;
}


/* Members of a WITHSCORES reply (NULL reads as empty). */
static size_t zset_length(const redisReply *reply)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
        return 0;
    return reply->elements / 2;
}


/* Fill out (room for capacity members) from a WITHSCORES reply, skipping entries that are
 * not a string with a number. */
static struct live_zset parse_zset(const redisReply *reply, struct live_member *out,
                                   size_t capacity)
{
    struct live_zset z = {.items = out, .n = 0};
    size_t n = zset_length(reply);

    if (n > capacity)
        n = capacity;
    for (size_t i = 0; i < n; i++) {
        const redisReply *member = reply->element[2 * i];
        const redisReply *score = reply->element[2 * i + 1];
        double value;

        if (member->type != REDIS_REPLY_STRING || score->type != REDIS_REPLY_STRING ||
            member->len == 0 || vt_parse_double(score->str, -1e300, 1e300, &value) != 0)
            continue;
        out[z.n].id = member->str;
        out[z.n].len = member->len;
        out[z.n].score = value;
        z.n++;
    }
    return z;
}


void live_trending_read_free(struct live_trending_read *t)
{
    for (size_t i = 0; i < 3; i++) {
        if (t->head[i] != NULL)
            freeReplyObject(t->head[i]);
    }
    while (t->texts != NULL) {
        struct live_text_block *next = t->texts->next;
        free(t->texts);
        t->texts = next;
    }
    free(t->group_members);
    free(t->members);
    free(t->groups);
    memset(t, 0, sizeof *t);
}


/* Round trip 1: the global list, the names of the per-category and per-brand lists (with
 * with_groups), and the products whose neighbours changed since dirty_since_ms (when >= 0).
 * Replies go to head[0], head[1] and head[2]. */
static int read_head(struct live_reader *r, int64_t dirty_since_ms, bool with_groups,
                     struct live_trending_read *out, char *err, size_t errsize)
{
    redisReply *replies[3] = {NULL};
    int slot[3] = {0, -1, -1};
    char key[KEY_MAX];
    size_t len;
    size_t n = 1;

    len = make_key(r, "tr", "", 0, key);
    append_zrevrange(r, key, len, LIVE_TRENDING_GLOBAL_MAX);

    if (with_groups) {
        len = make_key(r, "tr:keys", "", 0, key);
        const char *members_argv[] = {"SMEMBERS", key};
        size_t members_lens[] = {8, len};
        redisAppendCommandArgv(r->ctx, 2, members_argv, members_lens);
        slot[1] = (int)n++;
    }

    if (dirty_since_ms >= 0) {
        char since[24];
        int since_len = snprintf(since, sizeof since, "%" PRId64, dirty_since_ms);
        char dirty_key[KEY_MAX];
        size_t dirty_len = make_key(r, "i2i:dirty", "", 0, dirty_key);
        const char *argv[] = {"ZRANGEBYSCORE", dirty_key, since, "+inf", "WITHSCORES"};
        size_t lens[] = {13, dirty_len, (size_t)since_len, 4, 10};
        redisAppendCommandArgv(r->ctx, 5, argv, lens);
        slot[2] = (int)n++;
    }
    if (read_replies(r, replies, n, err, errsize) != 0)
        return -1;
    for (size_t i = 0; i < 3; i++)
        out->head[i] = slot[i] >= 0 ? replies[slot[i]] : NULL;
    return 0;
}


/* Copy len bytes (at most a member's length) into out's id blocks; NULL when out of
 * memory. */
static const char *copy_text(struct live_trending_read *out, const char *s, size_t len)
{
    struct live_text_block *b = out->texts;

    if (len > TEXT_BLOCK_SIZE)
        return NULL;
    if (b == NULL || TEXT_BLOCK_SIZE - b->used < len) {
        b = malloc(sizeof *b);
        if (b == NULL)
            return NULL;
        b->used = 0;
        b->next = out->texts;
        out->texts = b;
    }
    char *at = b->data + b->used;
    memcpy(at, s, len);
    b->used += len;
    return at;
}


/* Read the replies of groups[first .. first + n), copy their members into
 * out->group_members and free the replies. Each group records the index of its first
 * member in `first`, which live_read_trending turns into list.items. */
static int take_group_chunk(struct live_reader *r, struct live_trending_read *out,
                            size_t first, size_t n, char *err, size_t errsize)
{
    redisReply *replies[GROUP_CHUNK] = {NULL};
    int rc = -1;

    if (read_replies(r, replies, n, err, errsize) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        struct live_trend_group *g = &out->groups[first + i];
        size_t length = zset_length(replies[i]);

        if (out->n_group_members + length > out->group_members_capacity) {
            size_t capacity = 2 * out->group_members_capacity + length + 1024;
            struct live_member *grown =
                realloc(out->group_members, capacity * sizeof *grown);
            if (grown == NULL) {
                snprintf(err, errsize, "out of memory for %zu trending entries", capacity);
                goto out;
            }
            out->group_members = grown;
            out->group_members_capacity = capacity;
        }
        struct live_member *members = out->group_members + out->n_group_members;
        struct live_zset z = parse_zset(replies[i], members, length);
        for (size_t k = 0; k < z.n; k++) {
            members[k].id = copy_text(out, members[k].id, members[k].len);
            if (members[k].id == NULL) {
                snprintf(err, errsize, "out of memory for trending member ids");
                goto out;
            }
        }
        g->list.items = NULL;
        g->list.n = z.n;
        g->first = out->n_group_members;
        out->n_group_members += z.n;
    }
    rc = 0;

out:
    for (size_t i = 0; i < n; i++) {
        if (replies[i] != NULL)
            freeReplyObject(replies[i]);
    }
    return rc;
}


/* Round trips 2 and later: the lists named in tr:keys, GROUP_CHUNK per round trip. Names
 * that are not "c:<category>" or "b:<brand>" are skipped. */
static int read_groups(struct live_reader *r, struct live_trending_read *out, char *err,
                       size_t errsize)
{
    const redisReply *names = out->head[1];
    size_t count = names != NULL && names->type == REDIS_REPLY_ARRAY ? names->elements : 0;

    out->groups = calloc(count > 0 ? count : 1, sizeof *out->groups);
    if (out->groups == NULL) {
        snprintf(err, errsize, "out of memory for %zu trending lists", count);
        return -1;
    }

    size_t queued = 0, read = 0;
    for (size_t i = 0; i < count; i++) {
        const redisReply *name = names->element[i];
        struct live_trend_group *g = &out->groups[queued];
        char key[KEY_MAX];
        size_t len;

        if (name->type != REDIS_REPLY_STRING || name->len < 3 || name->str[1] != ':' ||
            (name->str[0] != 'c' && name->str[0] != 'b'))
            continue;
        len = make_key(r, "tr:", name->str, name->len, key);
        if (len == 0)
            continue;
        g->is_brand = name->str[0] == 'b';
        g->name = name->str + 2;
        g->len = name->len - 2;
        append_zrevrange(r, key, len, LIVE_TRENDING_LIST_MAX);
        queued++;

        if (queued - read == GROUP_CHUNK) {
            if (take_group_chunk(r, out, read, queued - read, err, errsize) != 0)
                return -1;
            read = queued;
        }
    }
    if (queued > read && take_group_chunk(r, out, read, queued - read, err, errsize) != 0)
        return -1;
    out->input.n_groups = queued;
    for (size_t i = 0; i < queued; i++)
        out->groups[i].list.items = out->group_members + out->groups[i].first;
    return 0;
}


int live_read_trending(struct live_reader *r, int64_t dirty_since_ms, bool with_groups,
                       struct live_trending_read *out, char *err, size_t errsize)
{
    memset(out, 0, sizeof *out);
    if (ensure_connected(r, err, errsize) != 0)
        return -1;
    if (read_head(r, dirty_since_ms, with_groups, out, err, errsize) != 0)
        goto fail;
    if (with_groups && read_groups(r, out, err, errsize) != 0)
        goto fail;

    /* One array contains the members of the global list and of i2i:dirty. */
    size_t total = zset_length(out->head[0]);
    total += zset_length(out->head[2]);
    out->members = malloc((total > 0 ? total : 1) * sizeof *out->members);
    if (out->members == NULL) {
        snprintf(err, errsize, "out of memory for %zu trending entries", total);
        goto fail;
    }

    struct live_member *next = out->members;
    out->input.global = parse_zset(out->head[0], next, zset_length(out->head[0]));
    next += out->input.global.n;
    out->dirty = parse_zset(out->head[2], next, zset_length(out->head[2]));
    out->input.groups = out->groups;
    return 0;

fail:
    live_trending_read_free(out);
    return -1;
}


int live_read_neighbors(struct live_reader *r, const struct vt_catalog *cat,
                        const uint32_t *products, size_t n, live_neighbors_fn fn, void *arg,
                        char *err, size_t errsize)
{
    redisReply *replies[2 * LIVE_NEIGHBOR_CHUNK] = {NULL};
    int64_t max = r->cfg->agg_neighbors_max;
    struct live_member *co_view = NULL, *co_buy = NULL;
    int rc = -1;

    if (n > LIVE_NEIGHBOR_CHUNK)
        n = LIVE_NEIGHBOR_CHUNK;
    if (ensure_connected(r, err, errsize) != 0)
        return -1;

    for (size_t i = 0; i < n; i++) {
        const struct vt_product *p = vt_catalog_get(cat, products[i]);
        char key[KEY_MAX];
        size_t len;

        len = make_key(r, "cv:", p->id, strlen(p->id), key);
        append_zrevrange(r, key, len, max);
        len = make_key(r, "cb:", p->id, strlen(p->id), key);
        append_zrevrange(r, key, len, max);
    }
    if (read_replies(r, replies, 2 * n, err, errsize) != 0)
        return -1;

    co_view = malloc((size_t)max * sizeof *co_view);
    co_buy = malloc((size_t)max * sizeof *co_buy);
    if (co_view == NULL || co_buy == NULL) {
        snprintf(err, errsize, "out of memory reading neighbour lists");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        struct live_zset cv = parse_zset(replies[2 * i], co_view, (size_t)max);
        struct live_zset cb = parse_zset(replies[2 * i + 1], co_buy, (size_t)max);

        if (fn(products[i], &cv, &cb, arg) != 0) {
            snprintf(err, errsize, "out of memory building neighbour lists");
            goto out;
        }
    }
    rc = 0;

out:
    for (size_t i = 0; i < 2 * n; i++) {
        if (replies[i] != NULL)
            freeReplyObject(replies[i]);
    }
    free(co_view);
    free(co_buy);
    return rc;
}
