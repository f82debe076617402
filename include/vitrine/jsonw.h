/*
 * vitrine: a JSON writer into a caller-supplied buffer.
 *
 * Used for HTTP responses so that the request path does not build a cJSON tree. Writes
 * past the end of the buffer are dropped and set `overflow`; the caller checks it once
 * after writing. Strings are escaped as RFC 8259 requires; bytes that are not valid UTF-8
 * are replaced by U+FFFD, so the output is always valid JSON. Commas between members and
 * elements are inserted automatically.
 */
#ifndef VITRINE_JSONW_H
#define VITRINE_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VT_JSONW_DEPTH_MAX 32

struct vt_jsonw {
    char *buf;
    size_t len;
    size_t cap;
    bool overflow;
    int depth;
    bool first[VT_JSONW_DEPTH_MAX]; /* no member written yet at this depth */
    bool after_key;
};

void vt_jsonw_init(struct vt_jsonw *w, char *buf, size_t cap);
void vt_jsonw_object_begin(struct vt_jsonw *w);
void vt_jsonw_object_end(struct vt_jsonw *w);
void vt_jsonw_array_begin(struct vt_jsonw *w);
void vt_jsonw_array_end(struct vt_jsonw *w);
void vt_jsonw_key(struct vt_jsonw *w, const char *key);
void vt_jsonw_string(struct vt_jsonw *w, const char *s);
void vt_jsonw_stringn(struct vt_jsonw *w, const char *s, size_t len);
/* One string value made of prefix and s ("brand:" and "Dior" give "brand:Dior"). */
void vt_jsonw_string_prefixed(struct vt_jsonw *w, const char *prefix, const char *s);
void vt_jsonw_int(struct vt_jsonw *w, int64_t v);
/* Nine significant digits, as printf's "%.9g" writes them; non-finite values become null. */
void vt_jsonw_double(struct vt_jsonw *w, double v);
void vt_jsonw_bool(struct vt_jsonw *w, bool v);
void vt_jsonw_null(struct vt_jsonw *w);
/* A value that is already JSON (a stored record, say), written as it is: the caller
 * vouches that it is one complete, valid JSON value. */
void vt_jsonw_raw(struct vt_jsonw *w, const char *json, size_t len);

/* Terminate the buffer with NUL and return the length, or -1 on overflow. */
int64_t vt_jsonw_finish(struct vt_jsonw *w);

#endif
