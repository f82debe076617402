/*
 * vitrine: the bounded JSON writer (see include/vitrine/jsonw.h).
 */
#include "vitrine/jsonw.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vitrine/util.h"

static void put(struct vt_jsonw *w, const char *s, size_t n)
{
    if (w->overflow || n > w->cap - w->len - 1) {
        w->overflow = true;
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}


static void put_char(struct vt_jsonw *w, char c)
{
    put(w, &c, 1);
}


/* Write the comma that separates this value from the previous one, if any. */
static void before_value(struct vt_jsonw *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (w->depth > 0) {
        if (!w->first[w->depth])
            put_char(w, ',');
        w->first[w->depth] = false;
    }
}


void vt_jsonw_init(struct vt_jsonw *w, char *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->overflow = cap == 0;
    w->depth = 0;
    w->after_key = false;
    w->first[0] = true;
}


static void open_container(struct vt_jsonw *w, char c)
{
    before_value(w);
    put_char(w, c);
    if (w->depth + 1 >= VT_JSONW_DEPTH_MAX) {
        w->overflow = true;
        return;
    }
    w->depth++;
    w->first[w->depth] = true;
}


static void close_container(struct vt_jsonw *w, char c)
{
    put_char(w, c);
    if (w->depth > 0)
        w->depth--;
}


void vt_jsonw_object_begin(struct vt_jsonw *w)
{
    open_container(w, '{');
}


void vt_jsonw_object_end(struct vt_jsonw *w)
{
    close_container(w, '}');
}


void vt_jsonw_array_begin(struct vt_jsonw *w)
{
    open_container(w, '[');
}


void vt_jsonw_array_end(struct vt_jsonw *w)
{
    close_container(w, ']');
}


static void put_escaped(struct vt_jsonw *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    put_char(w, '"');
    while (i < n) {
        unsigned char c = p[i];
        size_t run = i;

        /* Copy the longest run of bytes that need no escaping in one step. */
        while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
            run++;
        if (run > i) {
            put(w, s + i, run - i);
            i = run;
            continue;
        }
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(w, esc, 2);
            i++;
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xF]};
            put(w, esc, 6);
            i++;
        } else {
            size_t len = vt_utf8_sequence(p + i, n - i);
            if (len == 0) {
                put(w, "\xEF\xBF\xBD", 3); /* U+FFFD REPLACEMENT CHARACTER */
                i++;
            } else {
                put(w, s + i, len);
                i += len;
            }
        }
    }
    put_char(w, '"');
}


void vt_jsonw_key(struct vt_jsonw *w, const char *key)
{
    before_value(w);
    put_escaped(w, key, strlen(key));
    put_char(w, ':');
    w->after_key = true;
}


void vt_jsonw_string(struct vt_jsonw *w, const char *s)
{
    vt_jsonw_stringn(w, s, strlen(s));
}


void vt_jsonw_stringn(struct vt_jsonw *w, const char *s, size_t len)
{
    before_value(w);
    put_escaped(w, s, len);
}


void vt_jsonw_int(struct vt_jsonw *w, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%" PRId64, v);

    before_value(w);
    put(w, num, (size_t)n);
}


void vt_jsonw_double(struct vt_jsonw *w, double v)
{
    char num[32];
    int n;

    before_value(w);
    if (!isfinite(v)) {
        put(w, "null", 4);
        return;
    }
    /* Nine significant digits: enough for scores and prices, short on the wire. */
    n = snprintf(num, sizeof num, "%.9g", v);
    put(w, num, (size_t)n);
}


void vt_jsonw_bool(struct vt_jsonw *w, bool v)
{
    before_value(w);
    put(w, v ? "true" : "false", v ? 4 : 5);
}


void vt_jsonw_null(struct vt_jsonw *w)
{
    before_value(w);
    put(w, "null", 4);
}


void vt_jsonw_raw(struct vt_jsonw *w, const char *json, size_t len)
{
    before_value(w);
    put(w, json, len);
}


int64_t vt_jsonw_finish(struct vt_jsonw *w)
{
    if (w->overflow || w->len >= w->cap) {
        if (w->cap > 0)
            w->buf[0] = '\0';
        return -1;
    }
    w->buf[w->len] = '\0';
    return (int64_t)w->len;
}
