/*
 * vitrine: business rules for recommendations: boosts, pins and filters.
 *
 * Loaded at start from a JSON file (rec.rules_path; format in docs/recommendations.md,
 * examples in deploy/rules.example.json). A rule names what it matches (brands,
 * categories, gender, price range, products), where it applies (placements, the session's
 * gender segment or one of the analyst segments of segments.h) and what it does:
 *   boost  - multiply the score of matching products by a factor;
 *   pin    - put one product at a fixed position when it may be served;
 *   filter - never serve matching products.
 * Besides the five placements, a rule may name the scope "rerank", which is vt_rerank.
 * Filter rules there move matching products to the end instead of removing them.
 * An invalid file stops start-up with a message naming the file, the rule and the reason.
 * After loading the rules are immutable and any thread may read them. Names are matched
 * against the catalog of each world version, so rules keep working when the catalog
 * changes.
 */
#ifndef VITRINE_RULES_H
#define VITRINE_RULES_H

#include <stddef.h>

/* Maximum rules in one file. Each rule is one bit in the per-request match masks. */
#define VT_RULES_MAX 64

/* Maximum entries in one list of a rule's match (brands, categories, products). */
#define VT_RULE_VALUES_MAX 32

/* Brand names and product ids over all rules of a file together: each request resolves
 * those of the rules in scope against its catalog, into a table of this size. */
#define VT_RULES_LOOKUPS_MAX 256

/* Bytes of a rules file that vt_rules_load reads; a larger file is rejected. */
#define VT_RULES_FILE_MAX (1024 * 1024)

struct vt_rules;

/* Load rules from path. An empty path gives an empty rule set. Returns NULL with a
 * message in err (naming the file, the rule index or name, and the reason) when the file
 * cannot be read or a rule is invalid. */
struct vt_rules *vt_rules_load(const char *path, char *err, size_t errsize);

/* The same from JSON text; name is used in messages. */
struct vt_rules *vt_rules_parse(const char *json, size_t len, const char *name, char *err,
                                size_t errsize);

void vt_rules_free(struct vt_rules *rules);

/* The first analyst segment a rule names ("segment") that segments does not define, or
 * NULL when every one is defined; *rule gets the rule's name. */
struct vt_segments;
const char *vt_rules_unknown_segment(const struct vt_rules *rules,
                                     const struct vt_segments *segments, const char **rule);
size_t vt_rules_count(const struct vt_rules *rules);

#endif
