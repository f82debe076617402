/*
 * vitrine: the store's Redis connection: connect, load the scripts, run commands,
 * pipelines and argument building (see store_internal.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"
#include "vitrine/util.h"

const char *store_describe_error(const struct vt_store *st, char *buf, size_t bufsize)
{
    /* hiredis reports a read timeout as an I/O error with strerror(EAGAIN). */
    if (st->ctx->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK ||
                                         strstr(st->ctx->errstr, "temporarily") != NULL)) {
        snprintf(buf, bufsize, "timed out after %" PRId64 " ms", st->timeout_ms);
        return buf;
    }
    return st->ctx->errstr;
}


void store_close(struct vt_store *st)
{
    if (st->ctx != NULL) {
        redisFree(st->ctx);
        st->ctx = NULL;
    }
    st->scripts_loaded = false;
}


redisReply *store_command(struct vt_store *st, int argc, const char **argv,
                          const size_t *argvlen, char *err, size_t errsize)
{
    redisReply *r = redisCommandArgv(st->ctx, argc, argv, argvlen);
    char why[64];

    if (r == NULL) {
        snprintf(err, errsize, "redis %s:%" PRId64 ": %s", st->cfg->redis_host,
                 st->cfg->redis_port, store_describe_error(st, why, sizeof why));
        store_close(st);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errsize, "redis %s failed: %.*s", argv[0], (int)r->len, r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}


static int load_script(struct vt_store *st, const char *text, size_t len, char *sha, char *err,
                       size_t errsize)
{
    const char *argv[] = {"SCRIPT", "LOAD", text};
    size_t lens[] = {6, 4, len};
    redisReply *r = store_command(st, 3, argv, lens, err, errsize);

    if (r == NULL)
        return -1;
    if (r->type != REDIS_REPLY_STRING || r->len != 40) {
        snprintf(err, errsize, "redis SCRIPT LOAD returned an unexpected reply");
        freeReplyObject(r);
        return -1;
    }
    memcpy(sha, r->str, 40);
    sha[40] = '\0';
    freeReplyObject(r);
    return 0;
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
        store_close(st);
        return -1;
    }
    redisSetTimeout(st->ctx, tv);

    if (st->cfg->redis_password[0] != '\0') {
        const char *argv[] = {"AUTH", st->cfg->redis_password};
        size_t lens[] = {4, strlen(st->cfg->redis_password)};
        r = store_command(st, 2, argv, lens, err, errsize);
        if (r == NULL)
            goto fail;
        freeReplyObject(r);
    }
    if (st->cfg->redis_db != 0) {
        char db[24];
        int n = snprintf(db, sizeof db, "%" PRId64, st->cfg->redis_db);
        const char *argv[] = {"SELECT", db};
        size_t lens[] = {6, (size_t)n};
        r = store_command(st, 2, argv, lens, err, errsize);
        if (r == NULL)
            goto fail;
        freeReplyObject(r);
    }

    if (load_script(st, store_apply_script, store_apply_script_len, st->sha[SCRIPT_APPLY], err,
                    errsize) != 0 ||
        load_script(st, store_aggregate_script, store_aggregate_script_len,
                    st->sha[SCRIPT_AGGREGATE], err, errsize) != 0 ||
        load_script(st, store_visit_script, store_visit_script_len, st->sha[SCRIPT_VISIT], err,
                    errsize) != 0 ||
        load_script(st, store_link_script, store_link_script_len, st->sha[SCRIPT_LINK], err,
                    errsize) != 0 ||
        load_script(st, store_snapshot_script, store_snapshot_script_len,
                    st->sha[SCRIPT_SNAPSHOT], err, errsize) != 0)
        goto fail;
    st->scripts_loaded = true;
    return 0;

fail:
    store_close(st);
    return -1;
}


int store_ensure_connected(struct vt_store *st, char *err, size_t errsize)
{
    if (st->ctx != NULL && st->scripts_loaded)
        return 0;
    store_close(st);
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
    vt_buf_init(&st->snapshots, STORE_SNAPSHOTS_MAX);
    if (open_connection(st, err, errsize) != 0) {
        vt_buf_free(&st->snapshots);
        free(st);
        return NULL;
    }
    return st;
}


void vt_store_free(struct vt_store *st)
{
    if (st == NULL)
        return;
    store_close(st);
    vt_buf_free(&st->snapshots);
    free(st);
}


int vt_store_ping(struct vt_store *st, char *err, size_t errsize)
{
    const char *argv[] = {"PING"};
    size_t lens[] = {4};
    redisReply *r;

    if (store_ensure_connected(st, err, errsize) != 0)
        return -1;
    r = store_command(st, 1, argv, lens, err, errsize);
    if (r == NULL)
        return -1;
    freeReplyObject(r);
    return 0;
}


/* ---- pipelines ---- */

void store_pipeline_begin(struct vt_store *st)
{
    st->queued = 0;
    st->failed = false;
    st->fail_reason[0] = '\0';
    if (store_ensure_connected(st, st->fail_reason, sizeof st->fail_reason) != 0)
        st->failed = true;
}


int store_read_replies(struct vt_store *st, redisReply **replies, size_t n, const char *what,
                       char *err, size_t errsize)
{
    for (size_t i = 0; i < n; i++) {
        if (redisGetReply(st->ctx, (void **)&replies[i]) != REDIS_OK || replies[i] == NULL) {
            char why[64];
            snprintf(err, errsize, "redis %s:%" PRId64 ": %s", st->cfg->redis_host,
                     st->cfg->redis_port, store_describe_error(st, why, sizeof why));
            store_close(st);
            return -1;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (replies[i]->type == REDIS_REPLY_ERROR) {
            snprintf(err, errsize, "redis %s failed: %.*s", what, (int)replies[i]->len,
                     replies[i]->str);
            return -1;
        }
    }
    return 0;
}


int store_pipeline_commit(struct vt_store *st, store_reply_fn on_reply, void *arg, char *err,
                          size_t errsize)
{
    bool ok = !st->failed;

    if (st->failed) {
        vt_strlcpy(err, st->fail_reason, errsize);
        store_close(st);
        return -1;
    }

    /* Read every reply, also after an error reply, so that the connection stays in step;
     * a lost connection ends the loop. */
    for (size_t i = 0; i < st->queued; i++) {
        redisReply *r = NULL;

        if (redisGetReply(st->ctx, (void **)&r) != REDIS_OK || r == NULL) {
            char why[64];
            snprintf(err, errsize, "redis %s:%" PRId64 ": %s", st->cfg->redis_host,
                     st->cfg->redis_port, store_describe_error(st, why, sizeof why));
            store_close(st);
            return -1;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            if (ok)
                snprintf(err, errsize, "redis script failed: %.*s", (int)r->len, r->str);
            ok = false;
            /* NOSCRIPT after a Redis restart or SCRIPT FLUSH: reload on the next batch. */
            if (strncmp(r->str, "NOSCRIPT", 8) == 0)
                st->scripts_loaded = false;
        } else if (ok && !on_reply(r, i, arg, err, errsize)) {
            ok = false;
        }
        freeReplyObject(r);
    }
    st->queued = 0;
    if (!ok)
        store_close(st);
    return ok ? 0 : -1;
}


/* ---- argument building ---- */

void store_args_reset(struct vt_store *st)
{
    st->argc = 0;
    st->args_overflow = false;
    st->numbers_used = 0;
    st->texts_used = 0;
    st->copies_used = 0;
}


void store_arg_len(struct vt_store *st, const char *s, size_t len)
{
    if (st->argc >= STORE_ARGS_MAX) {
        st->args_overflow = true;
        return;
    }
    st->argv[st->argc] = s;
    st->argvlen[st->argc] = len;
    st->argc++;
}


void store_arg(struct vt_store *st, const char *s)
{
    store_arg_len(st, s, strlen(s));
}


void store_arg_copy(struct vt_store *st, const char *s)
{
    size_t len = strlen(s);

    if (st->copies_used + len + 1 > STORE_COPIES_MAX) {
        st->args_overflow = true;
        return;
    }
    memcpy(st->copies + st->copies_used, s, len + 1);
    store_arg_len(st, st->copies + st->copies_used, len);
    st->copies_used += len + 1;
}


void store_args_script(struct vt_store *st, enum store_script script, int numkeys)
{
    store_arg(st, "EVALSHA");
    store_arg(st, st->sha[script]);
    store_arg_int(st, numkeys);
}


/* Take the n bytes just formatted at the end of the number scratch as an argument; n < 0
 * means they did not fit. */
static void arg_number(struct vt_store *st, int n)
{
    if (n < 0 || st->numbers_used + (size_t)n + 1 > STORE_NUMBERS_MAX) {
        st->args_overflow = true;
        return;
    }
    store_arg_len(st, st->numbers + st->numbers_used, (size_t)n);
    st->numbers_used += (size_t)n + 1;
}


void store_arg_int(struct vt_store *st, int64_t v)
{
    char *p = st->numbers + st->numbers_used;
    size_t room = STORE_NUMBERS_MAX - st->numbers_used;
    int n = room > 0 ? snprintf(p, room, "%" PRId64, v) : -1;

    arg_number(st, n >= 0 && (size_t)n < room ? n : -1);
}


void store_arg_double(struct vt_store *st, double v)
{
    char *p = st->numbers + st->numbers_used;
    size_t room = STORE_NUMBERS_MAX - st->numbers_used;
    /* 17 significant digits round-trip a double exactly. */
    int n = room > 0 ? snprintf(p, room, "%.17g", isfinite(v) ? v : 0.0) : -1;

    arg_number(st, n >= 0 && (size_t)n < room ? n : -1);
}


void store_arg_printf(struct vt_store *st, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (st->texts_used >= sizeof st->texts / sizeof st->texts[0]) {
        st->args_overflow = true;
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(st->texts[st->texts_used], STORE_KEY_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= STORE_KEY_MAX) {
        st->args_overflow = true;
        return;
    }
    store_arg_len(st, st->texts[st->texts_used], (size_t)n);
    st->texts_used++;
}


void store_queue(struct vt_store *st)
{
    if (st->failed)
        return;
    if (st->args_overflow) {
        st->failed = true;
        snprintf(st->fail_reason, sizeof st->fail_reason,
                 "a script call needs more than %d arguments", STORE_ARGS_MAX);
        return;
    }
    /* hiredis copies the arguments into its output buffer, so the scratch can be reused. */
    if (redisAppendCommandArgv(st->ctx, st->argc, st->argv, st->argvlen) != REDIS_OK) {
        st->failed = true;
        snprintf(st->fail_reason, sizeof st->fail_reason, "redis append failed: %s",
                 st->ctx->errstr);
        return;
    }
    st->queued++;
}


/* ---- replies ---- */

/* A string reply of an optional '-' and 1 to 15 digits, as Redis writes counters, times
 * and the stored scores, read without strtod. False for anything else. */
static bool reply_small_integer(const redisReply *r, int64_t *out)
{
    size_t i = r->len > 0 && r->str[0] == '-' ? 1 : 0;
    int64_t v = 0;

    if (r->len <= i || r->len - i > 15)
        return false;
    for (; i < r->len; i++) {
        if (r->str[i] < '0' || r->str[i] > '9')
            return false;
        v = v * 10 + (r->str[i] - '0');
    }
    *out = r->str[0] == '-' ? -v : v;
    return true;
}


double store_reply_double(const redisReply *r)
{
    char buf[64];
    double v;
    int64_t whole;

    if (r == NULL || r->type == REDIS_REPLY_INTEGER)
        return r != NULL ? (double)r->integer : 0;
    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len >= sizeof buf)
        return 0;
    if (reply_small_integer(r, &whole))
        return (double)whole;
    memcpy(buf, r->str, r->len);
    buf[r->len] = '\0';
    if (vt_parse_double(buf, -1e300, 1e300, &v) != 0)
        return 0;
    return v;
}


int64_t store_reply_int(const redisReply *r)
{
    int64_t whole;

    if (r != NULL && r->type == REDIS_REPLY_STRING && reply_small_integer(r, &whole))
        return whole;
    return (int64_t)store_reply_double(r);
}


bool store_reply_is(const redisReply *r, const char *s)
{
    size_t n = strlen(s);
    return r->type == REDIS_REPLY_STRING && r->len == n && memcmp(r->str, s, n) == 0;
}


void store_reply_copy(char *dst, size_t dstsize, const redisReply *r)
{
    if (r->type != REDIS_REPLY_STRING) {
        dst[0] = '\0';
        return;
    }
    vt_copy_utf8(dst, dstsize, r->str, r->len);
}


/* ---- reads written as protocol text ---- */

/* Write v as decimal text into buf (24 bytes) and return where the text starts. */
const char *store_decimal(char *buf, uint64_t v)
{
    buf[23] = '\0';
    return vt_u64_digits(v, buf + 23);
}


const char *store_last_rank(char *buf, int64_t n)
{
    return store_decimal(buf, n > 1 ? (uint64_t)(n - 1) : 0);
}


static void batch_put(struct store_batch *b, const char *s, size_t n)
{
    memcpy(b->text + b->len, s, n);
    b->len += n;
}


/* One bulk string: "$<length>\r\n<bytes>\r\n". */
static void batch_bulk(struct store_batch *b, const char *s, size_t n)
{
    char digits[24];
    const char *count = store_decimal(digits, n);

    batch_put(b, "$", 1);
    batch_put(b, count, strlen(count));
    batch_put(b, "\r\n", 2);
    batch_put(b, s, n);
    batch_put(b, "\r\n", 2);
}


void store_batch_read(struct store_batch *b, const struct vt_store *st, const char *command,
                      int k, const char *stop)
{
    batch_put(b, stop != NULL ? "*5\r\n" : "*2\r\n", 4);
    batch_bulk(b, command, strlen(command));
    batch_bulk(b, st->keys[k], st->key_lens[k]);
    if (stop != NULL) {
        batch_bulk(b, "0", 1);
        batch_bulk(b, stop, strlen(stop));
        batch_bulk(b, "WITHSCORES", 10);
    }
}


void store_batch_member(struct store_batch *b, const struct vt_store *st, const char *command,
                        int k, const char *member, size_t len)
{
    batch_put(b, "*3\r\n", 4);
    batch_bulk(b, command, strlen(command));
    batch_bulk(b, st->keys[k], st->key_lens[k]);
    batch_bulk(b, member, len);
}


void store_batch_args(struct store_batch *b, int argc, const char *const *argv,
                      const size_t *lens)
{
    char digits[24];
    const char *count = store_decimal(digits, (uint64_t)argc);

    batch_put(b, "*", 1);
    batch_put(b, count, strlen(count));
    batch_put(b, "\r\n", 2);
    for (int i = 0; i < argc; i++)
        batch_bulk(b, argv[i], lens[i]);
}


int store_batch_send(struct vt_store *st, const struct store_batch *b, char *err,
                     size_t errsize)
{
    if (redisAppendFormattedCommand(st->ctx, b->text, b->len) == REDIS_OK)
        return 0;
    snprintf(err, errsize, "redis append failed: %s", st->ctx->errstr);
    store_close(st);
    return -1;
}
