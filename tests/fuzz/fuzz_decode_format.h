/*
 * The body shared by fuzz_decode_mapp.c and fuzz_decode_canonical.c: parse the input as
 * JSON and hand any object straight to one decoder, past the format detection, so that
 * each decoder meets shapes the detection would send elsewhere. What the entry point
 * guarantees every decoder (a JSON object, no NUL byte or \u0000) is true here too.
 */
#ifndef VITRINE_FUZZ_DECODE_FORMAT_H
#define VITRINE_FUZZ_DECODE_FORMAT_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vitrine/config.h"
#include "vitrine/event.h"
#include "vitrine/util.h"
#include "../../service/ingest/decode_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decode root with the decoder under test. */
static enum vt_decode_status decode_one(const cJSON *root, const struct vt_config *cfg,
                                        struct vt_event *ev, char *msg, size_t msgsize);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct vt_config cfg;
    static struct vt_event ev;
    static int configured;
    char msg[512];

    if (!configured) {
        vt_config_defaults(&cfg);
        vt_config_set(&cfg, "mapp.brand_param", "ca1", msg, sizeof msg);
        vt_config_set(&cfg, "mapp.category_param", "ca2", msg, sizeof msg);
        vt_config_set(&cfg, "mapp.gender_param", "cb5", msg, sizeof msg);
        configured = 1;
    }
    bool escaped;
    if (vt_json_nul_at((const char *)data, size, &escaped) < size)
        return 0;
    cJSON *root = cJSON_ParseWithLength((const char *)data, size);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return 0;
    }
    memset(&ev, 0, sizeof ev);
    msg[0] = '\0';
    enum vt_decode_status status = decode_one(root, &cfg, &ev, msg, sizeof msg);
    if (memchr(msg, '\0', sizeof msg) == NULL ||
        (status == VT_DECODE_OK &&
         (memchr(ev.session_id, '\0', sizeof ev.session_id) == NULL ||
          ev.n_items > VT_EVENT_ITEMS_MAX)))
        abort();
    cJSON_Delete(root);
    return 0;
}

#endif
