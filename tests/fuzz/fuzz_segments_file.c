/*
 * libFuzzer target: a segments file. The loader accepts it or rejects it with a message.
 * An accepted file is evaluated and explained against a profile that the input's last
 * bytes vary, and the explain output must be valid JSON that reports the same
 * membership as vt_segments_evaluate. Nothing may crash, read out of bounds or leak.
 */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vitrine/segments.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Large enough for 64 segments of 64 conditions with the longest texts. */
#define EXPLAIN_MAX (4 * 1024 * 1024)

static struct vt_profile profile;


/* A profile with a little of everything; the input's last bytes set some of its numbers,
 * so that conditions both hold and fail across runs. */
static void make_profile(const uint8_t *data, size_t size)
{
    uint8_t knobs[4] = {0};

    for (size_t i = 0; i < 4 && i < size; i++)
        knobs[i] = data[size - 1 - i];

    vt_profile_clear(&profile);
    profile.exists = true;
    profile.last_seen_ms = 1767225600000 - knobs[0] * 1000;
    profile.events = knobs[1];
    profile.count_by_type[VT_EV_ADD_TO_CART] = knobs[1] / 4;
    profile.last_by_type_ms[VT_EV_ADD_TO_CART] = knobs[0] % 2 ? 1767225600000 - 900000 : -1;
    profile.revenue = knobs[2] * 3.5;
    profile.visitor_sessions = knobs[3] % 4;
    profile.n_cart = knobs[3] % 3;

    snprintf(profile.categories[0].name, sizeof profile.categories[0].name, "perfume.edp");
    profile.categories[0].value = 2;
    snprintf(profile.categories[1].name, sizeof profile.categories[1].name, "Stationery");
    profile.categories[1].value = knobs[2];
    profile.n_categories = 2;
    snprintf(profile.brands[0].name, sizeof profile.brands[0].name, "runail");
    profile.brands[0].value = 1;
    profile.n_brands = 1;
    snprintf(profile.tiers[0].name, sizeof profile.tiers[0].name, "luxury");
    profile.tiers[0].value = knobs[1];
    profile.n_tiers = 1;
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char explained[EXPLAIN_MAX];
    char err[1024];
    char *copy = malloc(size > 0 ? size : 1);

    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);

    err[0] = '\0';
    struct vt_segments *s = vt_segments_parse(copy, size, "fuzz.json", err, sizeof err);
    free(copy);
    if (s == NULL) {
        if (err[0] == '\0')
            abort(); /* a rejection must come with its reason */
        return 0;
    }

    struct vt_gender_estimate gender = {VT_SEGMENT_FEMALE, 0.8, 0.8};
    struct vt_segment_facts facts = {&profile, &gender, 1767225600000};
    struct vt_jsonw w;

    make_profile(data, size);
    uint64_t mask = vt_segments_evaluate(s, &facts);
    vt_jsonw_init(&w, explained, sizeof explained);
    vt_segments_explain(s, &facts, &w);
    if (vt_jsonw_finish(&w) < 0)
        abort();

    cJSON *root = cJSON_Parse(explained);
    if (root == NULL || (size_t)cJSON_GetArraySize(root) != vt_segments_count(s))
        abort();
    for (size_t i = 0; i < vt_segments_count(s); i++) {
        const cJSON *member = cJSON_GetObjectItem(cJSON_GetArrayItem(root, (int)i), "member");

        if (cJSON_IsTrue(member) != ((mask >> i & 1) != 0))
            abort();
    }
    cJSON_Delete(root);

    vt_segments_count_served(s, mask);
    vt_segments_free(s);
    return 0;
}
