/*
 * The OpenAPI description must describe every route the server answers.
 *
 * openapi/openapi.yaml keeps the usual layout: paths as two-space indented keys under
 * "paths:", operations as four-space indented method keys below each path. The test reads
 * that layout line by line rather than pulling in a YAML parser.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "vitrine/api.h"
#include "vitrine/util.h"

#define OPERATIONS_MAX 64

struct operation {
    char path[128];
    char method[16];
};

static size_t read_operations(struct operation *ops, size_t max)
{
    char line[512], path[128] = "";
    bool in_paths = false;
    size_t n = 0;
    FILE *f = fopen(VITRINE_SOURCE_DIR "/openapi/openapi.yaml", "r");

    cr_assert_not_null(f, "cannot open openapi/openapi.yaml");
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "paths:", 6) == 0) {
            in_paths = true;
            continue;
        }
        if (in_paths && line[0] != ' ' && line[0] != '\n')
            break; /* the next top-level key ends the paths section */
        if (!in_paths)
            continue;
        if (strncmp(line, "  /", 3) == 0) {
            char *colon = strrchr(line, ':');
            if (colon != NULL)
                vt_copy_utf8(path, sizeof path, line + 2, (size_t)(colon - line - 2));
        } else if (strncmp(line, "    ", 4) == 0 && isalpha((unsigned char)line[4])) {
            char *colon = strchr(line + 4, ':');
            if (colon == NULL || n >= max)
                continue;
            vt_strlcpy(ops[n].path, path, sizeof ops[n].path);
            vt_copy_utf8(ops[n].method, sizeof ops[n].method, line + 4,
                         (size_t)(colon - line - 4));
            for (char *c = ops[n].method; *c; c++)
                *c = (char)toupper((unsigned char)*c);
            n++;
        }
    }
    fclose(f);
    return n;
}


Test(openapi, describes_every_server_route)
{
    struct operation ops[OPERATIONS_MAX];
    size_t n = read_operations(ops, OPERATIONS_MAX);

    cr_assert_gt(n, 0, "no operations found under paths:");
    for (size_t i = 0; i < vt_api_route_count(); i++) {
        struct vt_api_route_info route = vt_api_route_at(i);
        bool found = false;
        for (size_t k = 0; k < n && !found; k++)
            found = strcmp(ops[k].path, route.path) == 0 &&
                    strcmp(ops[k].method, route.method) == 0;
        cr_expect(found, "route %s %s is not described in openapi/openapi.yaml", route.method,
                  route.path);
    }
}


Test(openapi, describes_no_route_the_server_lacks)
{
    struct operation ops[OPERATIONS_MAX];
    size_t n = read_operations(ops, OPERATIONS_MAX);

    for (size_t k = 0; k < n; k++) {
        bool found = false;
        for (size_t i = 0; i < vt_api_route_count() && !found; i++) {
            struct vt_api_route_info route = vt_api_route_at(i);
            found = strcmp(ops[k].path, route.path) == 0 &&
                    strcmp(ops[k].method, route.method) == 0;
        }
        cr_expect(found, "openapi/openapi.yaml describes %s %s, which the server does not "
                  "answer", ops[k].method, ops[k].path);
    }
}
