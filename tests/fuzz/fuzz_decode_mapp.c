/* libFuzzer target: any JSON value through the Mapp Data Streams decoder. */
#include "fuzz_decode_format.h"

static enum vt_decode_status decode_one(const cJSON *root, const struct vt_config *cfg,
                                        struct vt_event *ev, char *msg, size_t msgsize)
{
    return vt_decode_mapp(root, cfg, ev, msg, msgsize);
}
