/*
 * vitrine: the web dashboard at /ui/. Its files (service/ui/assets/) are built into the
 * binary: service/ui/embed.cmake turns them into the table vt_ui_assets at build time, so
 * no path is needed at run time.
 *
 * This module finds a file by name and builds its response with the headers every
 * dashboard response carries (Content-Type, ETag, Cache-Control, Content-Security-Policy,
 * X-Content-Type-Options and the like). The table is constant; any HTTP worker thread may
 * call these functions.
 */
#ifndef VITRINE_UI_H
#define VITRINE_UI_H

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

/* One file of the dashboard. */
struct vt_ui_asset {
    const char *name;          /* file name, such as "dashboard.js" */
    const char *content_type;  /* from the extension, such as "text/javascript; charset=utf-8" */
    const unsigned char *data; /* len bytes (followed by a 0 byte) */
    size_t len;
    const char *etag; /* quoted, from the file's SHA-256 */
};

/* The generated table (service/ui/embed.cmake). */
extern const struct vt_ui_asset vt_ui_assets[];
extern const size_t vt_ui_asset_count;

/* The file the path /ui/ serves. */
#define VT_UI_INDEX "index.html"

/* The file called name (len bytes, not NUL-terminated), or NULL when there is none. */
const struct vt_ui_asset *vt_ui_find(const char *name, size_t len);

/* Return true when an If-None-Match header value (NULL: none) names the file's ETag. The
 * client's copy is then current, and the reply is a 304. */
bool vt_ui_not_modified(const struct vt_ui_asset *asset, const char *if_none_match);

/* A response for the file, with its headers: the whole file, or an empty body for a 304
 * when not_modified. The file's bytes are not copied. NULL when out of memory. */
struct MHD_Response *vt_ui_response(const struct vt_ui_asset *asset, bool not_modified);

#endif
