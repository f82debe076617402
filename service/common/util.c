/*
 * vitrine: small helpers shared by every module (see include/vitrine/util.h).
 */
#include "vitrine/util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vitrine/limits.h"

const char vt_id_rule[] = "1 to 128 characters, each a letter, a digit or one of . _ : @ -";

size_t vt_strlcpy(char *dst, const char *src, size_t dstsize)
{
    size_t n = strlen(src);

    if (dstsize > 0) {
        size_t k = n < dstsize - 1 ? n : dstsize - 1;
        memcpy(dst, src, k);
        dst[k] = '\0';
    }
    return n;
}


size_t vt_copy_utf8(char *dst, size_t dstsize, const char *src, size_t n)
{
    if (dstsize == 0)
        return 0;
    if (n > dstsize - 1) {
        n = dstsize - 1;
        /* Step back over continuation bytes so that no character is cut in half. */
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}


bool vt_strncaseeq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y + 32);
        if (x != y)
            return false;
        if (x == '\0')
            return true;
    }
    return true;
}


char *vt_u64_digits(uint64_t v, char *end)
{
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    return end;
}


int vt_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end = NULL;
    long long v;

    if (s == NULL || *s == '\0' || isspace((unsigned char)*s) || *s == '+')
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0')
        return -1;
    if (v < min || v > max)
        return -1;
    *out = (int64_t)v;
    return 0;
}


int vt_parse_double(const char *s, double min, double max, double *out)
{
    char *end = NULL;
    double v;

    /* strtod also reads hexadecimal ("0x10"), which no setting or parameter means. */
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s) || strpbrk(s, "xX") != NULL)
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v))
        return -1;
    if (v < min || v > max)
        return -1;
    *out = v;
    return 0;
}


size_t vt_utf8_sequence(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        len = 2;
        cp = s[0] & 0x1F;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        len = 3;
        cp = s[0] & 0x0F;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    /* Reject overlong forms, UTF-16 surrogates and code points above U+10FFFF. */
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}


bool vt_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;

    for (size_t i = 0; i < len;) {
        size_t n = vt_utf8_sequence(p + i, len - i);
        if (n == 0)
            return false;
        i += n;
    }
    return true;
}


bool vt_id_valid(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > VT_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '@' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}


/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}


/* Read exactly n digits at s[*i]; returns -1 when any is missing. */
static int64_t read_digits(const char *s, size_t len, size_t *i, int n)
{
    int64_t v = 0;

    for (int k = 0; k < n; k++) {
        if (*i >= len || s[*i] < '0' || s[*i] > '9')
            return -1;
        v = v * 10 + (s[*i] - '0');
        (*i)++;
    }
    return v;
}


int vt_time_parse_iso8601(const char *s, size_t len, int64_t *ms_out)
{
    static const int month_days[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    size_t i = 0;
    int64_t year, month, day, hour, minute, second, millis = 0, offset_min = 0;

    while (len > 0 && (s[len - 1] == ' '))
        len--;
    year = read_digits(s, len, &i, 4);
    if (year < 0 || i >= len || s[i++] != '-')
        return -1;
    month = read_digits(s, len, &i, 2);
    if (month < 1 || month > 12 || i >= len || s[i++] != '-')
        return -1;
    day = read_digits(s, len, &i, 2);
    if (day < 1 || day > month_days[month - 1])
        return -1;
    if (i >= len || (s[i] != 'T' && s[i] != 't' && s[i] != ' '))
        return -1;
    i++;
    hour = read_digits(s, len, &i, 2);
    if (hour < 0 || hour > 23 || i >= len || s[i++] != ':')
        return -1;
    minute = read_digits(s, len, &i, 2);
    if (minute < 0 || minute > 59)
        return -1;
    second = 0;
    if (i < len && s[i] == ':') {
        i++;
        second = read_digits(s, len, &i, 2);
        if (second < 0 || second > 60)
            return -1;
    }
    if (i < len && (s[i] == '.' || s[i] == ',')) {
        int digits = 0;
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (digits < 3)
                millis = millis * 10 + (s[i] - '0');
            digits++;
            i++;
        }
        if (digits == 0)
            return -1;
        for (; digits < 3; digits++)
            millis *= 10;
    }

    if (i < len) {
        if (s[i] == ' ')
            i++;
        if (i < len && (s[i] == 'Z' || s[i] == 'z') && i + 1 == len) {
            i++;
        } else if (len - i == 3 && memcmp(s + i, "UTC", 3) == 0) {
            i += 3;
        } else if (i < len && (s[i] == '+' || s[i] == '-')) {
            int sign = s[i] == '-' ? -1 : 1;
            int64_t oh, om;
            i++;
            oh = read_digits(s, len, &i, 2);
            if (oh < 0 || oh > 23)
                return -1;
            if (i < len && s[i] == ':')
                i++;
            om = 0;
            if (i < len) {
                om = read_digits(s, len, &i, 2);
                if (om < 0 || om > 59)
                    return -1;
            }
            offset_min = sign * (oh * 60 + om);
        } else {
            return -1;
        }
    }
    if (i != len)
        return -1;
    if (month == 2 && day == 29 && !((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
        return -1;

    int64_t days = days_from_civil(year, month, day);
    int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    *ms_out = secs * 1000 + millis;
    return 0;
}


void vt_time_format_iso8601(int64_t ms, char *buf, size_t bufsize)
{
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int millis = (int)(ms - (int64_t)secs * 1000);
    struct tm tm;

    if (gmtime_r(&secs, &tm) == NULL) {
        vt_strlcpy(buf, "invalid-time", bufsize);
        return;
    }
    snprintf(buf, bufsize, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
}


int64_t vt_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


uint64_t vt_monotonic_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}


/* Per-thread xoshiro256** state, seeded from getrandom() on first use. */
static _Thread_local uint64_t rng_state[4];
static _Thread_local bool rng_seeded;

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}


static uint64_t rng_next(void)
{
    if (!rng_seeded) {
        if (getrandom(rng_state, sizeof rng_state, 0) != (ssize_t)sizeof rng_state) {
            /* getrandom cannot fail for 32 bytes after boot; mix time as a fallback. */
            rng_state[0] = vt_monotonic_ns() | 1;
            rng_state[1] = (uint64_t)vt_now_ms() * 0x9E3779B97F4A7C15ull;
            rng_state[2] = (uint64_t)(uintptr_t)&rng_state;
            rng_state[3] = 0xD1B54A32D192ED03ull;
        }
        rng_seeded = true;
    }
    uint64_t *s = rng_state;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}


void vt_uuid7(char *buf, size_t bufsize)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    uint64_t ms = (uint64_t)vt_now_ms();
    uint64_t r1 = rng_next(), r2 = rng_next();

    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(ms >> (40 - 8 * i));
    memcpy(b + 6, &r1, 2);
    memcpy(b + 8, &r2, 8);
    b[6] = (uint8_t)(0x70 | (b[6] & 0x0F)); /* version 7 */
    b[8] = (uint8_t)(0x80 | (b[8] & 0x3F)); /* RFC 4122 variant */

    if (bufsize < 37) {
        if (bufsize > 0)
            buf[0] = '\0';
        return;
    }
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            buf[o++] = '-';
        buf[o++] = hex[b[i] >> 4];
        buf[o++] = hex[b[i] & 0x0F];
    }
    buf[o] = '\0';
}


uint64_t vt_hash64(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}


void vt_buf_init(struct vt_buf *b, size_t max)
{
    memset(b, 0, sizeof *b);
    b->max = max;
}


void vt_buf_free(struct vt_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}


void vt_buf_reset(struct vt_buf *b)
{
    b->len = 0;
    b->overflow = false;
    if (b->data != NULL)
        b->data[0] = '\0';
}


/* Make room for `extra` more bytes plus a NUL; -1 past the maximum or on OOM. */
static int buf_reserve(struct vt_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    size_t cap;
    char *p;

    if (b->overflow || need > b->max + 1) {
        b->overflow = true;
        return -1;
    }
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    p = realloc(b->data, cap);
    if (p == NULL) {
        b->overflow = true;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}


int vt_buf_append(struct vt_buf *b, const void *data, size_t len)
{
    if (buf_reserve(b, len) != 0)
        return -1;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}


int vt_buf_appends(struct vt_buf *b, const char *s)
{
    return vt_buf_append(b, s, strlen(s));
}


int vt_buf_printf(struct vt_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n) != 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}


/* See util.h. */
size_t vt_json_nul_at(const char *text, size_t len, bool *escaped)
{
    bool in_string = false;

    *escaped = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];

        if (c == '\0')
            return i;
        if (!in_string) {
            if (c == '"')
                in_string = true;
            continue;
        }
        if (c == '"') {
            in_string = false;
            continue;
        }
        if (c != '\\' || i + 1 >= len)
            continue;
        if (len - i >= 6 && memcmp(text + i + 1, "u0000", 5) == 0) {
            *escaped = true;
            return i;
        }
        /* Skip the escaped character ("\\" or "\""), unless it is a NUL byte. */
        if (text[i + 1] != '\0')
            i++;
    }
    return len;
}


char *vt_read_file(const char *path, size_t max, const char *what, size_t *len, char *err,
                   size_t errsize)
{
    /* O_NONBLOCK makes a FIFO open at once instead of waiting for a writer. Only a regular
     * file or a directory (whose read then fails with EISDIR) gets further. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat info;
    if (fd < 0) {
        snprintf(err, errsize, "%s: cannot open the %s: %s", path, what, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &info) != 0 || (!S_ISREG(info.st_mode) && !S_ISDIR(info.st_mode))) {
        close(fd);
        snprintf(err, errsize, "%s: the %s is not a regular file", path, what);
        return NULL;
    }
    FILE *in = fdopen(fd, "rb");
    if (in == NULL) {
        snprintf(err, errsize, "%s: cannot open the %s: %s", path, what, strerror(errno));
        close(fd);
        return NULL;
    }

    char *text = malloc(max + 1);
    if (text == NULL) {
        fclose(in);
        snprintf(err, errsize, "%s: out of memory", path);
        return NULL;
    }

    /* Reading one byte more than the maximum detects a file that is too large. A
     * directory opens, and the read fails with EISDIR. */
    errno = 0;
    *len = fread(text, 1, max + 1, in);
    int read_errno = 0;
    if (ferror(in))
        read_errno = errno != 0 ? errno : EIO;
    fclose(in);

    if (read_errno != 0) {
        snprintf(err, errsize, "%s: cannot read the %s: %s", path, what, strerror(read_errno));
    } else if (*len > max) {
        snprintf(err, errsize, "%s: the %s is larger than %zu bytes", path, what, max);
    } else {
        text[*len] = '\0';
        return text;
    }
    free(text);
    return NULL;
}
