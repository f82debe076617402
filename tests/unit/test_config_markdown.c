/*
 * The settings table as a Markdown page (vitrine --help-markdown), and docs/configuration.md,
 * which must be exactly that page.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vitrine/config.h"

#define DOC_PATH "docs/configuration.md"
#define DOC_SIZE_MAX (1024 * 1024)
#define REGENERATE "cmake --build build && build/vitrine --help-markdown > " DOC_PATH

/* Run a printer into a heap string, which the caller frees. */
static char *print_to_string(void (*print)(FILE *out))
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);

    cr_assert_not_null(out, "open_memstream failed");
    print(out);
    cr_assert_eq(fclose(out), 0);
    return text;
}


/* Copy the first line of text that starts with start into line. Returns false when there
 * is none. */
static bool find_line(const char *text, const char *start, char *line, size_t linesize)
{
    size_t n = strlen(start);

    for (const char *p = text; p != NULL && *p != '\0';) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);

        if (len >= n && strncmp(p, start, n) == 0) {
            snprintf(line, linesize, "%.*s", (int)len, p);
            return true;
        }
        p = end ? end + 1 : NULL;
    }
    return false;
}


/* Count the table borders in a line: each "|" not escaped by a backslash. */
static int count_borders(const char *line)
{
    int n = 0;

    for (const char *p = line; *p != '\0'; p++) {
        if (*p == '\\' && p[1] != '\0')
            p++;
        else if (*p == '|')
            n++;
    }
    return n;
}


Test(config_markdown, rows_have_five_cells)
{
    char *md = print_to_string(vt_config_print_markdown);
    int rows = 0;

    for (char *line = strtok(md, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (line[0] != '|')
            continue;
        rows++;
        cr_expect_eq(count_borders(line), 6, "a row has other than five cells: %s", line);
    }
    cr_expect_gt(rows, 80);
    free(md);
}


Test(config_markdown, one_row_per_setting)
{
    char *md = print_to_string(vt_config_print_markdown);
    char *help = print_to_string(vt_config_print_help);
    int settings = 0, rows = 0;

    /* --help prints "      env VITRINE_..." once per setting. */
    for (const char *p = strstr(help, "      env "); p != NULL; p = strstr(p + 1, "      env ")) {
        char env[128], cell[160];
        size_t len = strcspn(p + 10, "\n");

        snprintf(env, sizeof env, "%.*s", (int)len, p + 10);
        snprintf(cell, sizeof cell, " | `%s` | ", env);
        cr_expect(strstr(md, cell) != NULL, "setting %s has no row", env);
        settings++;
    }
    for (const char *p = strstr(md, "\n| `"); p != NULL; p = strstr(p + 1, "\n| `"))
        rows++;
    cr_expect_gt(settings, 80);
    cr_expect_eq(rows, settings, "%d rows for %d settings", rows, settings);
    free(md);
    free(help);
}


Test(config_markdown, row_shows_type_range_default)
{
    char *md = print_to_string(vt_config_print_markdown);
    char line[2048];

    cr_assert(find_line(md, "| `http.port` |", line, sizeof line));
    cr_expect(strstr(line, "| `VITRINE_HTTP_PORT` |") != NULL, "%s", line);
    cr_expect(strstr(line, "| integer, 1 to 65535 |") != NULL, "%s", line);
    cr_expect(strstr(line, "| `8080` |") != NULL, "%s", line);

    cr_assert(find_line(md, "| `log.level` |", line, sizeof line));
    cr_expect(strstr(line, "one of `error`, `warn`, `info`, `debug`") != NULL, "%s", line);

    /* Large ranges are written out, not as 3.1536e+08. */
    cr_assert(find_line(md, "| `agg.half_life_s` |", line, sizeof line));
    cr_expect(strstr(line, "number, 60 to 315360000") != NULL, "%s", line);
    free(md);
}


Test(config_markdown, secrets_are_marked_without_values)
{
    static const char *const secrets[] = {"http.token_storefront", "http.token_analyst",
                                          "redis.password", "kafka.sasl_password"};
    char *md = print_to_string(vt_config_print_markdown);
    char *help = print_to_string(vt_config_print_help);
    int marked_md = 0, marked_help = 0;

    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        char start[96], line[2048];

        snprintf(start, sizeof start, "| `%s` |", secrets[i]);
        cr_assert(find_line(md, start, line, sizeof line), "no row for %s", secrets[i]);
        cr_expect(strstr(line, "| **secret** text") != NULL, "%s", line);
        cr_expect(strstr(line, "| empty |") != NULL, "%s", line);
    }
    for (const char *p = strstr(md, "**secret** text"); p != NULL;
         p = strstr(p + 1, "**secret** text"))
        marked_md++;
    for (const char *p = strstr(help, "(secret, never printed)"); p != NULL;
         p = strstr(p + 1, "(secret, never printed)"))
        marked_help++;
    cr_expect_eq(marked_md, marked_help, "%d secrets marked, --help has %d", marked_md,
                 marked_help);

    /* The page shows defaults only: a configured secret cannot reach it. */
    cr_assert_eq(setenv("VITRINE_REDIS_PASSWORD", "pw-must-not-show", 1), 0);
    free(md);
    md = print_to_string(vt_config_print_markdown);
    cr_expect(strstr(md, "pw-must-not-show") == NULL);
    unsetenv("VITRINE_REDIS_PASSWORD");
    free(md);
    free(help);
}


Test(config_markdown, markup_in_help_is_escaped)
{
    char *md = print_to_string(vt_config_print_markdown);
    char line[2048];

    cr_assert(find_line(md, "| `mapp.brand_param` |", line, sizeof line));
    cr_expect(strstr(line, "ca&lt;N&gt;") != NULL, "%s", line);
    cr_expect(strstr(line, "<N>") == NULL, "%s", line);

    cr_assert(find_line(md, "| `kafka.sasl_mechanism` |", line, sizeof line));
    cr_expect(strstr(line, "sasl\\_\\*") != NULL, "%s", line);

    /* Underscores inside names stay, so that grep finds them. */
    cr_assert(find_line(md, "| `http.on_redis_error` |", line, sizeof line));
    cr_expect(strstr(line, "within redis.timeout_ms") != NULL, "%s", line);
    free(md);
}


Test(config_markdown, page_is_the_same_in_every_checkout)
{
    char *md = print_to_string(vt_config_print_markdown);
    char line[2048];

    cr_expect(strstr(md, VITRINE_SOURCE_DIR "/") == NULL,
              "the page contains this checkout's path %s", VITRINE_SOURCE_DIR);
    cr_assert(find_line(md, "| `http.openapi_path` |", line, sizeof line));
    cr_expect(strstr(line, "| `openapi/openapi.yaml` in the source tree") != NULL, "%s", line);
    free(md);
}


Test(config_markdown, doc_matches_settings_table)
{
    char *md = print_to_string(vt_config_print_markdown);
    char *doc = calloc(1, DOC_SIZE_MAX + 1);
    FILE *f = fopen(VITRINE_SOURCE_DIR "/" DOC_PATH, "r");
    size_t doc_len;
    const char *a, *b;
    int line = 1;

    cr_assert_not_null(doc);
    cr_assert_not_null(f, DOC_PATH " is missing; generate it: " REGENERATE);
    doc_len = fread(doc, 1, DOC_SIZE_MAX, f);
    fclose(f);
    cr_assert_lt(doc_len, (size_t)DOC_SIZE_MAX, DOC_PATH " is larger than 1 MiB");

    /* Find the first line that differs, for the message. */
    for (a = doc, b = md; *a != '\0' && *a == *b; a++, b++) {
        if (*a == '\n')
            line++;
    }
    if (*a != '\0' || *b != '\0') {
        const char *doc_line = a, *md_line = b;
        while (doc_line > doc && doc_line[-1] != '\n')
            doc_line--;
        while (md_line > md && md_line[-1] != '\n')
            md_line--;
        char message[1024];
        snprintf(message, sizeof message,
                 DOC_PATH " differs from the settings table in service/common/config.c at "
                 "line %d.\n  file:      %.*s\n  generated: %.*s\nRegenerate it: " REGENERATE,
                 line, (int)strcspn(doc_line, "\n"), doc_line, (int)strcspn(md_line, "\n"),
                 md_line);
        cr_assert_fail("%s", message);
    }
    free(doc);
    free(md);
}


/* The operator docs may name only real settings, besides the variables of the project's
 * scripts and its CMake options, so that a renamed setting cannot leave a stale name
 * behind in them. */
Test(config_markdown, docs_name_only_real_settings)
{
    static const char *const docs[] = {"README.md", "README.de.md", "docs/operations.md"};
    static const char *const other_names[] = {
        "VITRINE_DATA",     "VITRINE_LONG_TESTS", "VITRINE_SOAK_SECONDS", "VITRINE_FUZZ_SECONDS",
        "VITRINE_ROOT",     "VITRINE_BROKERS",    "VITRINE_TESTS",        "VITRINE_SANITIZE",
        "VITRINE_WERROR",   "VITRINE_TSAN",       "VITRINE_FUZZ"};
    char *md = print_to_string(vt_config_print_markdown);
    char *text = calloc(1, DOC_SIZE_MAX + 1);

    cr_assert_not_null(text);
    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        char path[512];
        FILE *f;
        int names = 0;

        snprintf(path, sizeof path, "%s/%s", VITRINE_SOURCE_DIR, docs[d]);
        f = fopen(path, "r");
        cr_assert_not_null(f, "cannot open %s", docs[d]);
        text[fread(text, 1, DOC_SIZE_MAX, f)] = '\0';
        fclose(f);

        for (const char *p = strstr(text, "VITRINE_"); p != NULL; p = strstr(p + 1, "VITRINE_")) {
            char name[128], cell[160];
            size_t len = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
            bool known = false;

            /* A prefix such as VITRINE_* or VITRINE_<NAME> names no single variable. */
            if (len >= sizeof name || p[len - 1] == '_')
                continue;
            snprintf(name, sizeof name, "%.*s", (int)len, p);
            snprintf(cell, sizeof cell, " | `%s` | ", name);
            known = strstr(md, cell) != NULL;
            for (size_t i = 0; i < sizeof other_names / sizeof other_names[0]; i++)
                known = known || strcmp(name, other_names[i]) == 0;
            cr_expect(known, "%s names %s, which is no setting (see %s)", docs[d], name,
                      DOC_PATH);
            names++;
        }
        cr_expect_gt(names, 0, "%s names no setting at all", docs[d]);
    }
    free(text);
    free(md);
}
