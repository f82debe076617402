/*
 * vitrine-catalog: converts product catalogues (REES46 item.csv with its events, the
 * Diginetica item views, Noon, eBay and FragDB perfume listings) into vitrine's catalog
 * JSON Lines.
 *
 * The conversion rules are in tools/catalog_rows.c and docs/catalog.md. This file reads the
 * command line, opens the files, runs the converters in a fixed order (REES46, Diginetica,
 * Noon, eBay men, eBay women, FragDB) and reports the counts on stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog_rows.h"
#include "csv.h"
#include "vitrine/log.h"
#include "vitrine/util.h"

#define EVENT_FILES_MAX 64
#define PATH_MAX_LEN 4096
#define EXIT_USAGE 2

struct options {
    const char *rees46_items;
    const char *rees46_events[EVENT_FILES_MAX];
    int n_rees46_events;
    const char *diginetica;
    int64_t events_before_ms; /* INT64_MAX: every event counts */
    const char *noon;
    const char *ebay_men;
    const char *ebay_women;
    const char *fragdb;
    const char *output;
};

struct output_sink {
    FILE *out;
    uint64_t lines;
};


static void print_usage(FILE *out)
{
    fputs("Usage: vitrine-catalog [SOURCES] [-o FILE]\n"
          "\n"
          "Convert product catalogues into vitrine's catalog JSON Lines (one product per\n"
          "line; see docs/catalog.md). Sources can be combined; their products are written\n"
          "one after the other, REES46 first, and ids never collide.\n"
          "\n"
          "Sources:\n"
          "  --rees46-items FILE    REES46 item.csv (product_id,category_id,category_code,\n"
          "                         brand); rows of one product are merged\n"
          "  --rees46-events FILE   REES46 events CSV giving price (latest event) and\n"
          "                         popularity (view 1, cart 3, purchase 5); repeatable,\n"
          "                         needs --rees46-items\n"
          "  --diginetica FILE      Diginetica train-item-views.csv (semicolon-separated);\n"
          "                         one product per item_id, popularity = its view rows\n"
          "  --noon FILE            Noon perfume listings; ids noon-<perfume_id>\n"
          "  --ebay-men FILE        eBay men's perfume listings; ids ebay-m-<row>\n"
          "  --ebay-women FILE      eBay women's perfume listings; ids ebay-w-<row>\n"
          "  --fragdb FILE          FragDB fragrances.csv (pipe-separated); ids fragdb-<pid>\n"
          "\n"
          "Time limit:\n"
          "  --events-before TIME   use only REES46 events and Diginetica views before TIME\n"
          "                         (RFC 3339, such as 2016-05-02T00:00:00Z) for price and\n"
          "                         popularity, so that an evaluation's test period does not\n"
          "                         leak into the catalog; every product is still written\n"
          "\n"
          "Output:\n"
          "  -o, --output FILE      write to FILE (through a temporary file that is renamed\n"
          "                         when complete) instead of stdout\n"
          "  --help                 print this help and exit\n"
          "\n"
          "A summary (rows read, products written, rows rejected by reason, duplicates\n"
          "merged) goes to stderr. Exit status: 0 on success, 1 when reading or writing\n"
          "fails, 2 for invalid arguments or unusable input files.\n"
          "\n"
          "Example:\n"
          "  vitrine-catalog --rees46-items item.csv \\\n"
          "      --rees46-events customer_data_2022_oct.csv --noon noon_perfumes.csv \\\n"
          "      -o catalog.jsonl\n",
          out);
}


/* Parse the command line. Returns 0 to run, 1 after --help, EXIT_USAGE on a bad argument. */
static int parse_options(int argc, char **argv, struct options *opt)
{
    enum { OPT_ITEMS = 256, OPT_EVENTS, OPT_DIGINETICA, OPT_EVENTS_BEFORE, OPT_NOON,
           OPT_EBAY_MEN, OPT_EBAY_WOMEN, OPT_FRAGDB, OPT_HELP };
    static const struct option longopts[] = {
        {"rees46-items", required_argument, NULL, OPT_ITEMS},
        {"rees46-events", required_argument, NULL, OPT_EVENTS},
        {"diginetica", required_argument, NULL, OPT_DIGINETICA},
        {"events-before", required_argument, NULL, OPT_EVENTS_BEFORE},
        {"noon", required_argument, NULL, OPT_NOON},
        {"ebay-men", required_argument, NULL, OPT_EBAY_MEN},
        {"ebay-women", required_argument, NULL, OPT_EBAY_WOMEN},
        {"fragdb", required_argument, NULL, OPT_FRAGDB},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    int c;

    memset(opt, 0, sizeof *opt);
    opt->events_before_ms = INT64_MAX;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_ITEMS:
            opt->rees46_items = optarg;
            break;
        case OPT_EVENTS:
            if (opt->n_rees46_events == EVENT_FILES_MAX) {
                fprintf(stderr, "vitrine-catalog: too many --rees46-events files: at most %d\n",
                        EVENT_FILES_MAX);
                return EXIT_USAGE;
            }
            opt->rees46_events[opt->n_rees46_events++] = optarg;
            break;
        case OPT_DIGINETICA:
            opt->diginetica = optarg;
            break;
        case OPT_EVENTS_BEFORE:
            if (vt_time_parse_iso8601(optarg, strlen(optarg), &opt->events_before_ms) != 0) {
                fprintf(stderr,
                        "vitrine-catalog: invalid --events-before '%s': expected a time "
                        "such as 2016-05-02T00:00:00Z\n",
                        optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_NOON:
            opt->noon = optarg;
            break;
        case OPT_EBAY_MEN:
            opt->ebay_men = optarg;
            break;
        case OPT_EBAY_WOMEN:
            opt->ebay_women = optarg;
            break;
        case OPT_FRAGDB:
            opt->fragdb = optarg;
            break;
        case 'o':
            opt->output = optarg;
            break;
        case OPT_HELP:
            print_usage(stdout);
            return 1;
        default:
            if (optopt != 0)
                fprintf(stderr, "vitrine-catalog: option '%s' needs a value; see --help\n",
                        argv[optind - 1]);
            else
                fprintf(stderr, "vitrine-catalog: unknown option '%s'; see --help\n",
                        argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr,
                "vitrine-catalog: unexpected argument '%s': name each file with its source "
                "option; see --help\n",
                argv[optind]);
        return EXIT_USAGE;
    }
    if (opt->n_rees46_events > 0 && opt->rees46_items == NULL) {
        fprintf(stderr, "vitrine-catalog: --rees46-events needs --rees46-items FILE as well\n");
        return EXIT_USAGE;
    }
    if (opt->rees46_items == NULL && opt->diginetica == NULL && opt->noon == NULL &&
        opt->ebay_men == NULL && opt->ebay_women == NULL && opt->fragdb == NULL) {
        fprintf(stderr, "vitrine-catalog: no source given: use at least one of --rees46-items, "
                        "--diginetica, --noon, --ebay-men, --ebay-women, --fragdb; see --help\n");
        return EXIT_USAGE;
    }
    if (opt->output != NULL && opt->output[0] == '\0') {
        fprintf(stderr, "vitrine-catalog: invalid --output '': give a file path\n");
        return EXIT_USAGE;
    }
    return 0;
}


/* Check that every input file can be opened, so that a typo fails before any output. */
static int check_readable(const char *option, const char *path)
{
    FILE *f;

    if (path == NULL)
        return 0;
    f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "vitrine-catalog: cannot open %s '%s': %s; check the path\n", option,
                path, strerror(errno));
        return -1;
    }
    fclose(f);
    return 0;
}


static int check_inputs(const struct options *opt)
{
    int bad = 0;

    bad |= check_readable("--rees46-items", opt->rees46_items);
    for (int i = 0; i < opt->n_rees46_events; i++)
        bad |= check_readable("--rees46-events", opt->rees46_events[i]);
    bad |= check_readable("--diginetica", opt->diginetica);
    bad |= check_readable("--noon", opt->noon);
    bad |= check_readable("--ebay-men", opt->ebay_men);
    bad |= check_readable("--ebay-women", opt->ebay_women);
    bad |= check_readable("--fragdb", opt->fragdb);
    return bad != 0 ? -1 : 0;
}


static int write_entry(const struct vt_catalog_entry *entry, void *arg)
{
    struct output_sink *sink = arg;

    if (vt_catalog_entry_write(entry, sink->out) != 0)
        return -1;
    sink->lines++;
    return 0;
}


/* The kinds of source file; each has its own converter call. */
enum source_kind { SOURCE_ITEMS, SOURCE_EVENTS, SOURCE_DIGINETICA, SOURCE_NOON,
                   SOURCE_EBAY_MEN, SOURCE_EBAY_WOMEN, SOURCE_FRAGDB };

/* Open path and run the converter of kind on it. Returns 0, or -1 with the error logged and
 * *usage_error set when the input file itself is unusable. */
static int convert_file(enum source_kind kind, const char *path, const struct options *opt,
                        struct vt_rees46 *rees46, struct vt_convert_ctx *ctx,
                        struct vt_convert_stats *stats, bool *usage_error)
{
    struct vt_csv_options csv_options = {
        .separator = ',',
        .max_record = 256 * 1024,
    };
    FILE *in = fopen(path, "r");
    struct vt_csv *reader;
    int rc;

    if (kind == SOURCE_FRAGDB)
        csv_options.separator = '|';
    if (kind == SOURCE_DIGINETICA)
        csv_options.separator = ';';

    if (in == NULL) {
        VT_ERROR("CATALOG", "cannot open %s: %s", path, strerror(errno));
        *usage_error = true;
        return -1;
    }
    reader = vt_csv_open(in, &csv_options);
    if (reader == NULL) {
        VT_ERROR("CATALOG", "out of memory opening %s", path);
        fclose(in);
        return -1;
    }

    switch (kind) {
    case SOURCE_ITEMS:
        rc = vt_rees46_add_items(rees46, reader, path, ctx, stats);
        break;
    case SOURCE_EVENTS:
        rc = vt_rees46_add_events(rees46, reader, path, ctx, stats);
        break;
    case SOURCE_DIGINETICA:
        rc = vt_convert_diginetica(reader, path, opt->events_before_ms, ctx, stats);
        break;
    case SOURCE_NOON:
        rc = vt_convert_noon(reader, path, ctx, stats);
        break;
    case SOURCE_EBAY_MEN:
        rc = vt_convert_ebay(reader, path, "ebay-m-", VT_GENDER_MALE, ctx, stats);
        break;
    case SOURCE_EBAY_WOMEN:
        rc = vt_convert_ebay(reader, path, "ebay-w-", VT_GENDER_FEMALE, ctx, stats);
        break;
    default:
        rc = vt_convert_fragdb(reader, path, ctx, stats);
        break;
    }
    if (rc != 0) {
        VT_ERROR("CATALOG", "%s", ctx->error);
        *usage_error = ctx->input_invalid;
    }
    vt_csv_close(reader);
    fclose(in);
    return rc;
}


static void log_stats(const struct vt_convert_stats *stats)
{
    char rejected[512], dropped[512], skipped[512];

    vt_counts_format(&stats->rejected, rejected, sizeof rejected);
    vt_counts_format(&stats->dropped, dropped, sizeof dropped);
    VT_INFO("CATALOG",
            "%s: %llu rows read, %llu products written, %llu duplicate rows merged, rows "
            "rejected: %s; values left out: %s",
            stats->source, (unsigned long long)stats->rows, (unsigned long long)stats->written,
            (unsigned long long)stats->merged, rejected, dropped);
    if (stats->event_rows > 0) {
        vt_counts_format(&stats->event_skipped, skipped, sizeof skipped);
        VT_INFO("CATALOG", "%s events: %llu rows read, %llu used, skipped: %s", stats->source,
                (unsigned long long)stats->event_rows,
                (unsigned long long)stats->event_rows_used, skipped);
    }
}


/* Run every requested source into sink. Returns 0, 1 on a read or write error, EXIT_USAGE
 * for an unusable input file. */
static int convert_all(const struct options *opt, struct output_sink *sink)
{
    struct vt_convert_ctx ctx;
    struct vt_convert_stats stats[6];
    struct vt_rees46 *rees46 = NULL;
    bool usage_error = false;
    int rc = 0;
    uint64_t total = 0;

    memset(stats, 0, sizeof stats);
    stats[0].source = "rees46";
    stats[1].source = "diginetica";
    stats[2].source = "noon";
    stats[3].source = "ebay-men";
    stats[4].source = "ebay-women";
    stats[5].source = "fragdb";
    vt_convert_ctx_init(&ctx, write_entry, sink);

    if (opt->rees46_items != NULL) {
        rees46 = vt_rees46_new();
        if (rees46 == NULL) {
            VT_ERROR("CATALOG", "out of memory");
            return 1;
        }
        vt_rees46_set_events_before(rees46, opt->events_before_ms);
        rc = convert_file(SOURCE_ITEMS, opt->rees46_items, opt, rees46, &ctx, &stats[0],
                          &usage_error);
        for (int i = 0; rc == 0 && i < opt->n_rees46_events; i++)
            rc = convert_file(SOURCE_EVENTS, opt->rees46_events[i], opt, rees46, &ctx,
                              &stats[0], &usage_error);
        if (rc == 0 && vt_rees46_emit(rees46, &ctx, &stats[0]) != 0) {
            VT_ERROR("CATALOG", "%s", ctx.error);
            rc = -1;
        }
        vt_rees46_free(rees46);
    }
    if (rc == 0 && opt->diginetica != NULL)
        rc = convert_file(SOURCE_DIGINETICA, opt->diginetica, opt, NULL, &ctx, &stats[1],
                          &usage_error);
    if (rc == 0 && opt->noon != NULL)
        rc = convert_file(SOURCE_NOON, opt->noon, opt, NULL, &ctx, &stats[2], &usage_error);
    if (rc == 0 && opt->ebay_men != NULL)
        rc = convert_file(SOURCE_EBAY_MEN, opt->ebay_men, opt, NULL, &ctx, &stats[3],
                          &usage_error);
    if (rc == 0 && opt->ebay_women != NULL)
        rc = convert_file(SOURCE_EBAY_WOMEN, opt->ebay_women, opt, NULL, &ctx, &stats[4],
                          &usage_error);
    if (rc == 0 && opt->fragdb != NULL)
        rc = convert_file(SOURCE_FRAGDB, opt->fragdb, opt, NULL, &ctx, &stats[5],
                          &usage_error);
    vt_convert_ctx_free(&ctx);

    for (int i = 0; i < 6; i++) {
        if (stats[i].rows > 0 || stats[i].event_rows > 0) {
            log_stats(&stats[i]);
            total += stats[i].written;
        }
    }
    if (rc != 0)
        return usage_error ? EXIT_USAGE : 1;
    VT_INFO("CATALOG", "%llu products written in total", (unsigned long long)total);
    return 0;
}


int main(int argc, char **argv)
{
    struct options opt;
    struct output_sink sink = {.out = stdout};
    char tmp_path[PATH_MAX_LEN + 32];
    int status;

    status = parse_options(argc, argv, &opt);
    if (status != 0)
        return status == 1 ? 0 : status;
    if (check_inputs(&opt) != 0)
        return EXIT_USAGE;

    if (opt.output != NULL) {
        int n = snprintf(tmp_path, sizeof tmp_path, "%s.tmp.%ld", opt.output, (long)getpid());

        if (n < 0 || (size_t)n >= sizeof tmp_path) {
            fprintf(stderr, "vitrine-catalog: invalid --output '%s': path too long\n",
                    opt.output);
            return EXIT_USAGE;
        }
        sink.out = fopen(tmp_path, "w");
        if (sink.out == NULL) {
            fprintf(stderr, "vitrine-catalog: cannot create '%s': %s; check the --output path\n",
                    tmp_path, strerror(errno));
            return EXIT_USAGE;
        }
    }

    status = convert_all(&opt, &sink);

    if (fflush(sink.out) != 0 || ferror(sink.out)) {
        VT_ERROR("CATALOG", "writing %s failed: %s", opt.output != NULL ? tmp_path : "stdout",
                 strerror(errno));
        status = 1;
    }
    if (opt.output != NULL) {
        if (fclose(sink.out) != 0 && status == 0) {
            VT_ERROR("CATALOG", "writing %s failed: %s", tmp_path, strerror(errno));
            status = 1;
        }
        if (status == 0 && rename(tmp_path, opt.output) != 0) {
            VT_ERROR("CATALOG", "cannot rename %s to %s: %s", tmp_path, opt.output,
                     strerror(errno));
            status = 1;
        }
        if (status != 0)
            unlink(tmp_path);
        else
            VT_INFO("CATALOG", "wrote %llu lines to %s", (unsigned long long)sink.lines,
                    opt.output);
    }
    return status;
}
