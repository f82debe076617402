/*
 * libFuzzer target: one Kafka record value through the decoder entry point, as the ingest
 * thread hands it over (either format, detected per record). Built with -DVITRINE_FUZZ=ON
 * (see tests/fuzz/run.sh).
 *
 * Besides crashes and sanitizer reports, it checks what ingest relies on: a decoded event
 * has a known type, a session id and a time inside the accepted window, and its strings
 * end within their buffers.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vitrine/config.h"
#include "vitrine/decode.h"
#include "vitrine/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vt_config cfg;
static int configured;


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct vt_event ev;
    char msg[512];

    if (!configured) {
        vt_config_defaults(&cfg);
        /* Mapp parameters as a shop would map them, so those paths run too. */
        vt_config_set(&cfg, "mapp.brand_param", "ca1", msg, sizeof msg);
        vt_config_set(&cfg, "mapp.category_param", "ca2", msg, sizeof msg);
        vt_config_set(&cfg, "mapp.gender_param", "cb5", msg, sizeof msg);
        configured = 1;
    }
    /* A copy of exactly size bytes, so that ASan reports a read past the record's end. */
    char *copy = malloc(size > 0 ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);

    enum vt_decode_status status = vt_decode_event(copy, size, &cfg, &ev, msg, sizeof msg);
    if (memchr(msg, '\0', sizeof msg) == NULL)
        abort(); /* the message must end inside its buffer */
    if (status == VT_DECODE_OK) {
        if ((unsigned)ev.type >= VT_EV_TYPE_COUNT || ev.session_id[0] == '\0' ||
            ev.ts_ms < VT_DECODE_TS_MIN_MS ||
            memchr(ev.session_id, '\0', sizeof ev.session_id) == NULL ||
            ev.n_items > VT_EVENT_ITEMS_MAX)
            abort();
    }
    free(copy);
    return 0;
}
