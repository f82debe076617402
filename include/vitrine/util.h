/*
 * vitrine: small helpers every module uses: bounded string copies, checked number parsing,
 * id validation, timestamps, random ids and a growable buffer with a maximum.
 *
 * All functions are thread-safe unless noted. None of them allocates except vt_buf and
 * vt_read_file.
 */
#ifndef VITRINE_UTIL_H
#define VITRINE_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Copy src into dst of size dstsize, always NUL-terminated. Returns strlen(src); a value
 * >= dstsize means the copy was truncated. */
size_t vt_strlcpy(char *dst, const char *src, size_t dstsize);

/* Copy at most n bytes of src into dst (NUL-terminated), cutting at a UTF-8 character
 * boundary when the input does not fit. Returns the number of bytes written. */
size_t vt_copy_utf8(char *dst, size_t dstsize, const char *src, size_t n);

/* Case-insensitive ASCII comparison of the first n bytes; true when equal. */
bool vt_strncaseeq(const char *a, const char *b, size_t n);

/* Parse a whole string as a base-10 integer in [min, max]. Leading and trailing spaces are
 * not accepted. Returns 0 on success, -1 on syntax error or range. */
int vt_parse_int64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Write the decimal digits of v so that they end just before end (at most 20 bytes, no
 * NUL), and return where they start. For hot paths that must not call printf. */
char *vt_u64_digits(uint64_t v, char *end);

/* Parse a whole string as a finite double in [min, max]. Returns 0 or -1 as above. */
int vt_parse_double(const char *s, double min, double max, double *out);

/* Length of the UTF-8 character at s (at most n bytes available), or 0 when the bytes are
 * not valid UTF-8 (overlong forms, surrogates and code points above U+10FFFF included). */
size_t vt_utf8_sequence(const unsigned char *s, size_t n);

/* Offset of the first NUL in JSON text, as a byte or as the escape \u0000 inside a
 * string, or len when there is none; *escaped is true for the escape. cJSON skips a NUL
 * byte between tokens and ends a string at an escaped NUL ("a\u0000b" reads as "a"), so
 * callers reject both before parsing. Any thread. */
size_t vt_json_nul_at(const char *text, size_t len, bool *escaped);

/* True when s[0..len) is valid UTF-8. */
bool vt_utf8_valid(const char *s, size_t len);

/* True when s[0..len) is a valid external id: 1 to VT_ID_MAX bytes, each one of
 * A-Z a-z 0-9 . _ : @ -. Braces are excluded because ids become part of Redis hash tags. */
bool vt_id_valid(const char *s, size_t len);

/* Human description of the id rule, for error messages. */
extern const char vt_id_rule[];

/* Parse an ISO 8601 / RFC 3339 timestamp with a date, a time and an optional zone:
 * "2024-05-01T12:00:00Z", "2024-05-01T12:00:00.123+02:00", "2024-05-01 12:00:00 UTC",
 * "2024-05-01T12:00:00+0200". Without a zone the time is taken as UTC. Returns 0 and
 * milliseconds since the Unix epoch in *ms_out, or -1. */
int vt_time_parse_iso8601(const char *s, size_t len, int64_t *ms_out);

/* Format epoch milliseconds as "2024-05-01T12:00:00.123Z" into buf (at least 25 bytes). */
void vt_time_format_iso8601(int64_t ms, char *buf, size_t bufsize);

/* Wall-clock and monotonic clocks. */
int64_t vt_now_ms(void);
uint64_t vt_monotonic_ns(void);

/* Write a new random decision id (UUID version 7: time-ordered, 122 bits of which 74 are
 * random) as 36 characters plus NUL into buf (at least 37 bytes). Thread-safe: each thread
 * keeps its own generator state, seeded from getrandom(). */
void vt_uuid7(char *buf, size_t bufsize);

/* FNV-1a 64-bit hash of a byte string. */
uint64_t vt_hash64(const void *data, size_t len);

/*
 * A growable byte buffer with a hard maximum. Appends past max fail and set `overflow`,
 * so a caller can append freely and check once at the end. The buffer owns `data`.
 */
struct vt_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
    bool overflow;
};

/* Read a whole file of at most max bytes into a new buffer (NUL-terminated; the caller
 * frees it) and set *len. Returns NULL with a message naming the file as `what` ("rules
 * file") when it cannot be opened or read, or is larger than max. */
char *vt_read_file(const char *path, size_t max, const char *what, size_t *len, char *err,
                   size_t errsize);

void vt_buf_init(struct vt_buf *b, size_t max);
void vt_buf_free(struct vt_buf *b);
void vt_buf_reset(struct vt_buf *b);
int vt_buf_append(struct vt_buf *b, const void *data, size_t len);
int vt_buf_appends(struct vt_buf *b, const char *s);
int vt_buf_printf(struct vt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
