/*
 * vitrine: the web dashboard's files, built into the binary (see include/vitrine/ui.h),
 * and their responses. Runs on HTTP worker threads; reads only constant tables.
 */
#include "vitrine/ui.h"

#include <string.h>

/* Scripts, styles, images and data come from this origin only, no inline script or
 * style, no plugin, no framing, no form posts. Trusted Types make the browser refuse any
 * HTML string written into the page (innerHTML and the like): the dashboard builds its
 * elements with textContent only, so an API value can never become markup. */
#define UI_CSP                                                                           \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "          \
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; " \
    "require-trusted-types-for 'script'; trusted-types 'none'"

/* The files are small and change only with the binary. The browser caches them but
 * revalidates each time (a 304 when the ETag matches). */
#define UI_CACHE_CONTROL "no-cache"

const struct vt_ui_asset *vt_ui_find(const char *name, size_t len)
{
    for (size_t i = 0; i < vt_ui_asset_count; i++) {
        const struct vt_ui_asset *a = &vt_ui_assets[i];
        if (strlen(a->name) == len && memcmp(a->name, name, len) == 0)
            return a;
    }
    return NULL;
}


bool vt_ui_not_modified(const struct vt_ui_asset *asset, const char *if_none_match)
{
    if (if_none_match == NULL)
        return false;
    /* "*", one ETag, or a comma-separated list; a weak "W/" prefix compares equal. */
    return strcmp(if_none_match, "*") == 0 || strstr(if_none_match, asset->etag) != NULL;
}


struct MHD_Response *vt_ui_response(const struct vt_ui_asset *asset, bool not_modified)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        not_modified ? 0 : asset->len, (void *)asset->data, MHD_RESPMEM_PERSISTENT);

    if (resp == NULL)
        return NULL;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, asset->content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, asset->etag);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, UI_CACHE_CONTROL);
    MHD_add_response_header(resp, "Content-Security-Policy", UI_CSP);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
    return resp;
}
