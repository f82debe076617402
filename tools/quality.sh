#!/usr/bin/env bash
# Measure vitrine's recommendation quality on the real Diginetica and REES46 sessions and
# write docs/quality.md. The script builds, then for each data set it converts the catalog
# (price and popularity from the train period only) and starts a private redis-server, the
# local Kafka broker and vitrine on loopback. vitrine-evaluate then compares vitrine with
# global popularity and item-KNN, and everything started is stopped again.
#
#   tools/quality.sh                        both data sets, written to docs/quality.md
#   tools/quality.sh --dataset rees46       one data set (diginetica or rees46)
#   tools/quality.sh --test-fraction 0.3    test = sessions starting in the last 30% of the
#                                           event time range (default 0.2)
#   tools/quality.sh --knn-window 10        item-KNN pairs interactions up to 10 apart
#   tools/quality.sh --sessions-per-round 50   test sessions replayed side by side
#   tools/quality.sh --vitrine-setting rec.candidates=120   pass a setting to vitrine
#                                           (repeatable)
#   tools/quality.sh --recorded-times       send the recorded event times instead of times
#                                           moved so that the last event is now
#   tools/quality.sh --output FILE          write the report elsewhere
#
# VITRINE_DATA points to the real data (default: ../shared/data/real next to the checkout),
# which is read where it lies and never copied into the project.
set -euo pipefail

VITRINE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$VITRINE_ROOT/deploy/local/lib.sh"

command_line="tools/quality.sh${*:+ $*}"
datasets=(diginetica rees46)
test_fraction=0.2
knn_window=5
sessions_per_round=100
# Refresh the aggregates often: the evaluator waits for two refreshes after each round.
vitrine_settings=(--live-refresh-ms 100)
time_options=(--shift-time)
output="$VITRINE_ROOT/docs/quality.md"
durations=""

while [ $# -gt 0 ]; do
    case $1 in
    --dataset)
        [ $# -ge 2 ] || vitrine_die "--dataset needs a value: diginetica or rees46"
        case $2 in
        diginetica | rees46) datasets=("$2") ;;
        *) vitrine_die "invalid --dataset '$2': use diginetica or rees46" ;;
        esac
        shift
        ;;
    --test-fraction | --knn-window | --sessions-per-round | --output)
        [ $# -ge 2 ] || vitrine_die "$1 needs a value; see --help"
        case $1 in
        --test-fraction) test_fraction=$2 ;;
        --knn-window) knn_window=$2 ;;
        --sessions-per-round) sessions_per_round=$2 ;;
        --output) output=$2 ;;
        esac
        shift
        ;;
    --recorded-times) time_options=() ;;
    --vitrine-setting)
        [ $# -ge 2 ] && [[ $2 == *=* ]] ||
            vitrine_die "--vitrine-setting needs NAME=VALUE, such as rec.candidates=120"
        vitrine_settings+=("--$2")
        shift
        ;;
    -h | --help)
        sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) vitrine_die "unknown option $1; see --help" ;;
    esac
    shift
done

data=${VITRINE_DATA:-$VITRINE_ROOT/../shared/data/real}
[ -d "$data/diginetica" ] && [ -d "$data/rees46_cosmetics" ] ||
    vitrine_die "real data not found at $data; set VITRINE_DATA to the folder with" \
        "diginetica/ and rees46_cosmetics/"

build="$VITRINE_ROOT/build/quality"
work="$build/run"
rm -rf "$work"
mkdir -p "$work"
trap vitrine_stop_started EXIT
trap 'exit 130' INT TERM
started=$(date +%s)
load_at_start=$(cut -d ' ' -f 1-3 /proc/loadavg)

vitrine_install_dependencies
vitrine_log "building (release)"
vitrine_build "$build" -DCMAKE_BUILD_TYPE=Release -DVITRINE_TESTS=OFF
[ -x "$build/vitrine-evaluate" ] ||
    vitrine_die "the build has no vitrine-evaluate; CMakeLists.txt needs its target" \
        "(tools/evaluate.c and tools/evaluate_*.c)"

# The input options of vitrine-evaluate and the catalog options of vitrine-catalog for a
# data set, in arrays eval_inputs and catalog_inputs. REES46 files go in month order.
dataset_inputs() {
    local name=$1 month file
    eval_inputs=()
    catalog_inputs=()
    case $name in
    diginetica)
        file="$data/diginetica/sample_train-item-views.csv"
        eval_inputs=(--diginetica "$file")
        catalog_inputs=(--diginetica "$file")
        ;;
    rees46)
        catalog_inputs=(--rees46-items "$data/rees46_cosmetics/item.csv")
        for month in 2022_oct 2022_nov 2022_dec 2023_jan 2023_feb; do
            file="$data/rees46_cosmetics/customer_data_$month.csv"
            eval_inputs+=(--rees46 "$file")
            catalog_inputs+=(--rees46-events "$file")
        done
        ;;
    esac
}

# Evaluate one data set against a fresh Redis, Kafka and vitrine, which are stopped after.
evaluate_dataset() {
    local name=$1 cut port vitrine_pid begun
    local dir="$work/$name"
    begun=$(date +%s)
    mkdir -p "$dir"
    dataset_inputs "$name"

    cut=$("$build/vitrine-evaluate" "${eval_inputs[@]}" --test-fraction "$test_fraction" \
        --print-cut --log-level warn) || vitrine_die "cannot compute the split of $name"
    vitrine_log "$name: test sessions start at or after $cut"

    "$build/vitrine-catalog" "${catalog_inputs[@]}" --events-before "$cut" \
        -o "$dir/catalog.jsonl" 2>"$dir/catalog.log" ||
        { cat "$dir/catalog.log" >&2; vitrine_die "catalog conversion failed for $name"; }
    vitrine_log "$name: catalog of $(wc -l <"$dir/catalog.jsonl") products"

    vitrine_start_redis "$dir"
    vitrine_start_kafka "$build" "$dir" --topic events:4 --topic events.dead-letter:1
    port=$(vitrine_free_port)

    # Only delivery settings differ from the defaults. The consumer fetches and applies
    # small batches at once, so each test round waits milliseconds instead of up to 50 ms
    # (ingest.batch_wait_ms) plus 500 ms (librdkafka's fetch.wait.max.ms). They do not
    # change what vitrine recommends.
    VITRINE_HTTP_PORT=$port VITRINE_HTTP_BIND=127.0.0.1 \
        VITRINE_REDIS_PORT=$VITRINE_REDIS_PORT VITRINE_KAFKA_BROKERS=$VITRINE_BROKERS \
        VITRINE_KAFKA_GROUP="quality-$name" VITRINE_CATALOG_PATH="$dir/catalog.jsonl" \
        VITRINE_KAFKA_CONSUMER_PROPERTIES=fetch.wait.max.ms=5 VITRINE_INGEST_BATCH_WAIT_MS=5 \
        VITRINE_HTTP_OPENAPI_PATH="$VITRINE_ROOT/openapi/openapi.yaml" \
        setsid "$build/vitrine" "${vitrine_settings[@]}" >"$dir/vitrine.log" 2>&1 &
    vitrine_pid=$!
    VITRINE_STARTED_PIDS+=("$vitrine_pid")
    vitrine_wait_http "http://127.0.0.1:$port/readyz" 60 "$vitrine_pid" ||
        { tail -n 30 "$dir/vitrine.log" >&2; vitrine_die "vitrine did not become ready for $name"; }
    vitrine_log "$name: vitrine on 127.0.0.1:$port (pid $vitrine_pid), evaluating"

    "$build/vitrine-evaluate" "${eval_inputs[@]}" --name "$name" \
        --test-fraction "$test_fraction" --knn-window "$knn_window" \
        --sessions-per-round "$sessions_per_round" "${time_options[@]}" \
        --vitrine "http://127.0.0.1:$port" --brokers "$VITRINE_BROKERS" --topic events \
        --table "$work/table.md" --details "$work/$name.md" >"$dir/evaluate.out" \
        2>"$dir/evaluate.log" ||
        {
            tail -n 30 "$dir/evaluate.log" >&2
            vitrine_die "vitrine-evaluate failed for $name (logs in $dir)"
        }

    vitrine_stop_started
    durations="${durations:+$durations, }$name $(($(date +%s) - begun)) s"
    vitrine_log "$name: done in $(($(date +%s) - begun)) s"
}

for name in "${datasets[@]}"; do
    evaluate_dataset "$name"
done

# ---- the report ----------------------------------------------------------------------

commit=$(git -C "$VITRINE_ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
changed=$({ git -C "$VITRINE_ROOT" status --porcelain 2>/dev/null || true; } | wc -l)
changed_text=""
if [ "$changed" -gt 0 ] && [ "$changed" -le 30 ]; then
    changed_text=", with uncommitted changes in $(git -C "$VITRINE_ROOT" status --porcelain |
        awk '{ printf "%s%s", (NR > 1 ? ", " : ""), $2 }')"
elif [ "$changed" -gt 30 ]; then
    changed_text=", with $changed uncommitted changes in the working tree"
fi
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
memory=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
os=$(. /etc/os-release && echo "$PRETTY_NAME")
total=$(($(date +%s) - started))
settings_text="none"
time_text="All event times sent to vitrine are therefore moved forward by one offset per data
set, so that the last event of the data set is at the start of the run; distances between
events stay as recorded (\`vitrine-evaluate --shift-time\`)."
[ ${#time_options[@]} -gt 0 ] || time_text="This run sent the recorded event times
(\`--recorded-times\`)."
test_percent=$(awk -v f="$test_fraction" 'BEGIN { printf "%g", f * 100 }')
[ ${#vitrine_settings[@]} -eq 0 ] || settings_text="${vitrine_settings[*]}"

{
    cat <<EOF
# Recommendation quality

Next-item prediction on real recorded sessions: how often the item a shopper looks at next is
in the 20 products recommended at that moment, for vitrine and for two simple baselines,
measured in the same run on the same split. This file is generated by \`tools/quality.sh\`; do
not edit it by hand.

## Results

EOF
    cat "$work/table.md"
    cat <<EOF

- command: \`$command_line\`: $total s in total, including the build; per data set, with
  catalog conversion and start-up: $durations
- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)
- vitrine commit: \`$commit\`$changed_text
- machine: $(nproc) CPUs ($cpu), $memory memory, $os; $(cc --version | head -n 1); load
  average at the start $load_at_start (other processes on the machine affect the latency)
- vitrine settings passed with --vitrine-setting: $settings_text

HitRate@20 is the share of scored steps whose next item is among the first 20 recommended
products; MRR@20 is the mean of 1/rank over the same steps, with 0 when the item is not in the
first 20. "sessions" counts the test sessions with at least one scored step. The latency is
measured by the evaluator around each recommendation request (one request at a time over a
kept-alive connection on loopback), so it includes the HTTP round trip but no queueing.

## Method

**Data.** Diginetica: \`sample_train-item-views.csv\` of the CIKM Cup 2016 (12,391 product
views); the time of a view is midnight UTC of its \`eventdate\` plus \`timeframe\`
milliseconds, and the views of a session are ordered by \`timeframe\`. REES46: the five
monthly \`customer_data_*.csv\` files of a cosmetics shop (4,994 events, the first 30 to 85
minutes of each month). Views and carts are interactions; removals from the cart and
purchases are replayed to vitrine as well, because they are real events, but they are never
prediction targets. The data is read from \`\$VITRINE_DATA\` and not stored in the project.

**Sessions and targets.** Consecutive repeats of the same item in a session's interactions
are collapsed into one. After each interaction except the last, the evaluator predicts the
next interaction. A step is scored only when that next item is novel, that is, the session has
not interacted with it before; steps whose next item the session already had are counted but
not scored. All methods are scored on exactly the same steps. Test sessions with fewer than
two interactions give no step but are still replayed to vitrine.

**Split.** Sessions are ordered by the time of their first event. Sessions that start in the
last $test_percent% of the time range of all events are test sessions, all earlier ones
are train sessions (\`--test-fraction\`; \`vitrine-evaluate --test-from TIME\` sets the cut
directly). Targets whose item never occurs in a train interaction are counted and reported
below: the static baselines cannot recommend them.

**Baselines**, implemented in \`tools/evaluate_baselines.c\` and trained on the train
sessions' interactions only:

- *popularity*: items ranked by their number of interactions.
- *item-KNN*: sessions(i) is the number of sessions that interacted with item i. co(i, j) is
  the number of sessions in which i and j occur at most $knn_window interactions apart, and
  each pair counts once per session. sim(i, j) = co(i, j) / sqrt(sessions(i) · sessions(j)).
  A candidate c scores the sum over the session's distinct items x of sim(x, c) / (1 + a(x)),
  where a(x) is the number of interactions since x was last seen (0 for the current item).
  Lists shorter than 20 are filled with popular items.
- Ties go to the more popular item, then to the item seen first in the input. Both leave out
  every item of the session's events so far, as vitrine never serves what is in the cart or
  purchased, and neither recommends an item it has no interaction for.
- *online* variants start from the same training and also learn every test interaction at
  the moment vitrine receives it, so they know exactly what vitrine could know.

**Event times.** vitrine decays its stream aggregates (trending products and co-views, see
docs/architecture.md) to the current time when it reads them; lists whose data is many
half-lives old are rescaled, which keeps their order but not their age. Sending the
recorded times would therefore replay years-old data as if it were stale.
$time_text

**vitrine.** For each data set the script starts a private redis-server, the local Kafka
broker and vitrine with the data set's catalog. The Diginetica catalog has one product per
item id of the file, items seen only in the test period included, as a shop's catalog lists
them; it has no attribute but popularity (views). The REES46 catalog is \`item.csv\` (54,043
products with brand and category), with the price of each product's latest event and
popularity = views + 3 × carts + 5 × purchases. In both, price and popularity come only from
events before the cut (\`vitrine-catalog --events-before\`), so the test period does not
leak into the catalog. The evaluator produces every train event to
Kafka as a canonical event keyed by session id, waits until vitrine's
\`vitrine_events_total\` shows them all handled and until vitrine has re-read its shared
aggregates twice (\`vitrine_live_refreshes_total\`, every 100 ms here), so every request sees
everything sent before it and runs are reproducible. Then it replays the test sessions in
rounds, $sessions_per_round sessions side by side in order of their start, and a finished
session is replaced by the next one. Each round sends every active session's events up to
its next interaction, waits in the same way, and requests
\`GET /v1/sessions/{id}/recommendations?placement=product&product=<current item>&limit=20\`
for every scored step, as the storefront does on a product page. A failed request counts as a
miss.

**Differences between the methods** that the numbers include:

- vitrine keeps learning from the test events as they arrive, which is its design; the static
  baselines do not, the online variants do.
- vitrine applies its own rules (docs/recommendations.md), for example a limit of products
  per brand and a lower score for recently viewed products, and it leaves out the product on
  the page, the cart and purchases. The baselines leave out everything the session touched.
- vitrine recommends from its whole catalog (items that have no train interaction included),
  the baselines only from items with an interaction.

## Details per data set

EOF
    for name in "${datasets[@]}"; do
        cat "$work/$name.md"
    done
} >"$work/quality.md"

mkdir -p "$(dirname "$output")"
mv "$work/quality.md" "$output"
vitrine_log "wrote $output"
printf '\n'
cat "$work/table.md"
