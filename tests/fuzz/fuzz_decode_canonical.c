/* libFuzzer target: any JSON value through the canonical event decoder. */
#include "fuzz_decode_format.h"

static enum vt_decode_status decode_one(const cJSON *root, const struct vt_config *cfg,
                                        struct vt_event *ev, char *msg, size_t msgsize)
{
    (void)cfg;
    /* The entry point sends only objects with a member "type" here. */
    if (cJSON_GetObjectItemCaseSensitive(root, "type") == NULL)
        return VT_DECODE_SKIP;
    return vt_decode_canonical(root, ev, msg, msgsize);
}
