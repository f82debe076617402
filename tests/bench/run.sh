#!/usr/bin/env bash
# The benchmark: vitrine beside the limits of the same machine, measured in one run.
#
# Builds the release build with the benchmark tools, starts its own redis-server, local
# Kafka broker and vitrine with a catalog of 50,000 products (the real catalogues plus
# generated ones) and a profile population derived from the real REES46 sessions, then
# measures:
#   - the floors: redis-benchmark GET, wrk on vitrine's /healthz (the HTTP floor), and wrk
#     on bench_floor_server, which does only the segment endpoint's Redis round trip;
#   - wrk on segment, recommendations, rerank and similar at fixed concurrency;
#   - the latency of each at half of its maximum throughput (bench_rate_load, open loop),
#     and of the floor, segment and recommendations at a quarter of it;
#   - ingestion from Kafka and the event-to-profile latency (bench_ingest), with the
#     low-latency consumer settings that bench_ingest --print-settings lists;
#   - vitrine's resident memory and Redis memory per profile (bench_memory);
#   - recommendations with catalogs of 5,000, 50,000 and 500,000 products, for typical and
#     near-cap profiles.
# It prints one table with each figure and its ratio to the floors and writes it to
# build/bench/results.md. The tools' raw "result:" lines go to build/bench/raw.txt.
#
#   tests/bench/run.sh                 the full run (about 13 minutes with the build)
#   tests/bench/run.sh --quick         short measurements on small data, as a smoke run
#   tests/bench/run.sh --connections N HTTP concurrency of wrk and redis-benchmark (64)
#   tests/bench/run.sh --perf          also record perf profiles of vitrine during the wrk
#                                      runs of the endpoints (build/bench/perf-NAME.txt).
#                                      The sampling costs some throughput.
#   tests/bench/run.sh --build DIR --out DIR
#                                      another build folder (default build/release) and
#                                      output folder (default build/bench)
#
# VITRINE_DATA points to the real data (default: ../shared/data/real next to the
# checkout). Every figure comes from this run; nothing is carried over. The load
# generators share the machine's cores with vitrine, Redis and the broker, so run it with
# nothing else busy.
set -euo pipefail

VITRINE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$VITRINE_ROOT/deploy/local/lib.sh"

mode=full
connections=64
profile=false
bin="$VITRINE_ROOT/build/release"
out="$VITRINE_ROOT/build/bench"
while [ $# -gt 0 ]; do
    case $1 in
    --quick) mode=quick ;;
    --perf) profile=true ;;
    --connections)
        # vitrine accepts at most 256 connections from one address by default.
        [ $# -ge 2 ] && [[ $2 =~ ^[1-9][0-9]{0,2}$ ]] && [ "$2" -le 256 ] ||
            vitrine_die "--connections needs a whole number from 1 to 256"
        connections=$2
        shift
        ;;
    --build | --out)
        [ $# -ge 2 ] && [ -n "$2" ] || vitrine_die "$1 needs a folder"
        if [ "$1" = --build ]; then bin=$(realpath -m "$2"); else out=$(realpath -m "$2"); fi
        shift
        ;;
    -h | --help)
        sed -n '2,33p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) vitrine_die "unknown option $1; use --quick, --connections N, --perf, --build DIR, --out DIR or --help" ;;
    esac
    shift
done

# Sizes and durations of the two modes. The full run gives each HTTP measurement 30 s and
# ingestion 60 s, because the targets are about sustained figures. The quick run only
# shows that every step works.
if [ "$mode" = full ]; then
    sessions=100000
    http_seconds=30
    warmup_seconds=3
    rate_seconds=30
    ingest_seconds=60
    ingest_latency_seconds=20
    growth_seconds=10
    growth_catalogs="5000 50000 500000"
    redis_requests=2000000
else
    sessions=10000
    http_seconds=5
    warmup_seconds=1
    rate_seconds=5
    ingest_seconds=10
    ingest_latency_seconds=5
    growth_seconds=3
    growth_catalogs="5000 50000"
    redis_requests=200000
fi
catalog_products=50000
wrk_threads=2

data=${VITRINE_DATA:-$VITRINE_ROOT/../shared/data/real}
[ -d "$data/rees46_cosmetics" ] ||
    vitrine_die "real data not found at $data; set VITRINE_DATA to the folder with rees46_cosmetics/"

work="$out/work"
results="$out/results.md"
raw="$out/raw.txt"

started_at=$(date +%s)
trap vitrine_stop_started EXIT
trap 'exit 130' INT TERM

extra_packages=(wrk redis-tools)
$profile && extra_packages+=(linux-perf)
vitrine_install_dependencies "${extra_packages[@]}"
vitrine_log "release build with the benchmark tools"
vitrine_build "$bin" -DCMAKE_BUILD_TYPE=Release -DVITRINE_TESTS=ON

rm -rf "$work"
mkdir -p "$work" "$work/results"
: >"$raw"


# ---- helpers -------------------------------------------------------------------------

# field FILE KEY: the value of KEY=value on the last "result:" line of FILE, or empty.
field() {
    awk -v key="$2" '/^result:/ { line = $0 }
        END { n = split(line, parts, " ")
              for (i = 2; i <= n; i++) if (index(parts[i], key "=") == 1) value = substr(parts[i], length(key) + 2)
              print value }' "$1"
}

# keep NAME FILE: copy FILE's "result:" line to the raw file, labelled with NAME; stop
# when there is none.
keep() {
    local line
    line=$(grep '^result:' "$2" | tail -n 1) || true
    [ -n "$line" ] || { tail -n 20 "$2" >&2; vitrine_die "$1 printed no result line (see $2)"; }
    printf '%s %s\n' "$1" "$line" >>"$raw"
}

# ratio A B: A / B with two decimals, or "-" when either is missing or B is 0.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}

# ms MICROSECONDS: the value in milliseconds, or "-" when missing.
ms() {
    awk -v us="$1" 'BEGIN { if (us == "") print "-"; else printf "%.2f", us / 1000 }'
}

http_port=$(vitrine_free_port)
base="http://127.0.0.1:$http_port"
vitrine_pid=

# start_vitrine NAME CATALOG [NAME=value ...]: start vitrine on $http_port with the
# catalog and extra settings, wait until it is ready and has partitions assigned.
start_vitrine() {
    local name=$1 catalog=$2
    shift 2
    vitrine_log "starting vitrine ($name, $(wc -l <"$catalog") products)"
    env VITRINE_HTTP_PORT="$http_port" VITRINE_HTTP_BIND=127.0.0.1 \
        VITRINE_REDIS_PORT="$VITRINE_REDIS_PORT" VITRINE_KAFKA_BROKERS="$VITRINE_BROKERS" \
        VITRINE_CATALOG_PATH="$catalog" \
        VITRINE_HTTP_OPENAPI_PATH="$VITRINE_ROOT/openapi/openapi.yaml" \
        VITRINE_KAFKA_PROPERTIES=session.timeout.ms=6000,heartbeat.interval.ms=500 \
        "$@" setsid "$bin/vitrine" >"$work/vitrine-$name.log" 2>&1 &
    vitrine_pid=$!
    VITRINE_STARTED_PIDS+=("$vitrine_pid")
    vitrine_wait_http "$base/readyz" 120 "$vitrine_pid" ||
        { tail -n 30 "$work/vitrine-$name.log" >&2; vitrine_die "vitrine did not become ready"; }
    local metrics
    for _ in $(seq 1 300); do
        metrics=$(curl -fsS "$base/metrics") || true
        grep -q '^vitrine_consumer_lag{' <<<"$metrics" && return 0
        sleep 0.1
    done
    vitrine_die "vitrine got no partition within 30 s (see $work/vitrine-$name.log)"
}

stop_vitrine() {
    vitrine_stop_pid "$vitrine_pid"
    vitrine_pid=
}

# handled_events: records vitrine has handled so far (applied, skipped or dead-lettered).
handled_events() {
    curl -fsS "$base/metrics" | awk '/^vitrine_events_total\{/ { sum += $2 } END { printf "%d", sum }'
}

# run_wrk NAME URL [TARGETS [BODY]]: a warm-up, then the measured wrk run at $connections.
run_wrk() {
    local name=$1 url=$2
    shift 2
    local args=(-t "$wrk_threads" -c "$connections" --timeout 10s
                -s "$VITRINE_ROOT/tests/bench/wrk/targets.lua" "$url" -- "$name" "$@")
    wrk -d "${warmup_seconds}s" "${args[@]}" >/dev/null
    vitrine_log "wrk: $name, $connections connections, ${http_seconds} s"
    local perf_pid=
    if $profile && [ -n "$vitrine_pid" ] && [ "$url" = "$base" ]; then
        perf record -F 499 -g -p "$vitrine_pid" -o "$work/perf-$name.data" -- sleep "$http_seconds" \
            >/dev/null 2>"$work/perf-$name.log" &
        perf_pid=$!
    fi
    wrk -d "${http_seconds}s" "${args[@]}" >"$work/results/wrk-$name.txt" 2>&1 ||
        { cat "$work/results/wrk-$name.txt" >&2; vitrine_die "wrk failed on $name"; }
    if [ -n "$perf_pid" ]; then
        wait "$perf_pid" || vitrine_log "warning: perf record failed on $name (see $work/perf-$name.log)"
        perf report -i "$work/perf-$name.data" --stdio --no-children --sort symbol 2>/dev/null |
            grep -v '^$' | head -n 200 >"$out/perf-$name.txt" || true
    fi
    keep "wrk-$name" "$work/results/wrk-$name.txt"
    local errors
    errors=$(awk '/^result:/ { for (i = 2; i <= NF; i++) if ($i ~ /^errors_/) { split($i, kv, "="); s += kv[2] } } END { print s + 0 }' \
        "$work/results/wrk-$name.txt")
    [ "$errors" -eq 0 ] || vitrine_log "warning: $errors failed requests on $name (see $work/results/wrk-$name.txt)"
}

# run_rate NAME URL RATE [TARGETS [BODY]]: open-loop load at RATE requests per second.
run_rate() {
    local name=$1 url=$2 rate=$3 targets=${4:-} body=${5:-}
    local args=(--url "$url" --rate "$rate" --duration "$rate_seconds" --warmup "$warmup_seconds"
                --connections "$connections" --name "$name")
    [ -n "$targets" ] && args+=(--targets "$targets")
    [ -n "$body" ] && args+=(--method POST --body "$body")
    vitrine_log "fixed rate: $name at $rate requests/s, ${rate_seconds} s"
    "$bin/bench_rate_load" "${args[@]}" >"$work/results/rate-$name.txt" 2>&1 ||
        { cat "$work/results/rate-$name.txt" >&2; vitrine_die "bench_rate_load failed on $name"; }
    keep "rate-$name" "$work/results/rate-$name.txt"
}

half_of() {
    awk -v r="$1" 'BEGIN { h = int(r / 2); print (h < 1 ? 1 : h) }'
}

quarter_of() {
    awk -v r="$1" 'BEGIN { h = int(r / 4); print (h < 1 ? 1 : h) }'
}


# ---- data ----------------------------------------------------------------------------

vitrine_log "converting the real catalogues"
vitrine_test_catalog "$bin" "$data" "$work/catalog-real.jsonl"

for n in $growth_catalogs $catalog_products; do
    [ -s "$work/catalog-$n.jsonl" ] && continue
    "$bin/bench_gen_catalog" --products "$n" --base "$work/catalog-real.jsonl" \
        -o "$work/catalog-$n.jsonl" >"$work/results/catalog-$n.txt" 2>&1 ||
        { cat "$work/results/catalog-$n.txt" >&2; vitrine_die "bench_gen_catalog failed for $n products"; }
    keep "catalog-$n" "$work/results/catalog-$n.txt"
done
catalog="$work/catalog-$catalog_products.jsonl"

# ---- servers and population ----------------------------------------------------------

vitrine_start_redis "$work"
vitrine_start_kafka "$bin" "$work" --topic events:4 --topic events.dead-letter:1
start_vitrine main "$catalog"

"$VITRINE_ROOT/tests/bench/populate.sh" --build "$bin" --data "$data" --catalog "$catalog" \
    --brokers "$VITRINE_BROKERS" --topic events --http "$base" --redis-port "$VITRINE_REDIS_PORT" \
    --sessions "$sessions" --work "$work/population" >"$work/results/populate.txt" ||
    vitrine_die "populate.sh failed"
keep populate "$work/results/populate.txt"
ids_typical=$(field "$work/results/populate.txt" ids_typical)
ids_heavy=$(field "$work/results/populate.txt" ids_heavy)
[ -s "$ids_typical" ] && [ -s "$ids_heavy" ] || vitrine_die "populate.sh wrote no session ids"

# Before any other load touches Redis: memory per profile, and vitrine's resident memory
# with the population applied.
"$bin/bench_memory" --redis-port "$VITRINE_REDIS_PORT" --pid "$vitrine_pid" \
    --used-before "$(field "$work/results/populate.txt" redis_used_before)" \
    >"$work/results/memory.txt" 2>"$work/memory.log" ||
    { cat "$work/memory.log" >&2; vitrine_die "bench_memory failed"; }
keep memory "$work/results/memory.txt"

# Request targets. Product ids are taken from the catalog, every 5th line, limited to the
# characters that need no escaping in a URL.
sed -n 's/^{"id":"\([A-Za-z0-9._-]*\)".*/\1/p' "$catalog" | awk 'NR % 5 == 1' | head -n 10000 \
    >"$work/products.txt"
[ -s "$work/products.txt" ] || vitrine_die "no product ids found in $catalog"
awk '{ print "/v1/sessions/" $1 "/segment" }' "$ids_typical" >"$work/targets-segment.txt"
# Recommendations: home pages and product pages in turn, 10 items each.
awk 'NR == FNR { products[n++] = $1; next }
     FNR % 2 == 1 { print "/v1/sessions/" $1 "/recommendations?placement=home&limit=10"; next }
     { print "/v1/sessions/" $1 "/recommendations?placement=product&product=" products[FNR % n] "&limit=10" }' \
    "$work/products.txt" "$ids_typical" >"$work/targets-recommendations.txt"
awk '{ print "/v1/sessions/" $1 "/rerank" }' "$ids_typical" >"$work/targets-rerank.txt"
awk '{ print "/v1/products/" $1 "/similar?limit=10" }' "$work/products.txt" >"$work/targets-similar.txt"
# A category page of 48 products to put in the session's order.
head -n 48 "$work/products.txt" | awk 'BEGIN { printf "{\"product_ids\":[" }
    { printf "%s\"%s\"", (NR > 1 ? "," : ""), $1 } END { print "]}" }' >"$work/rerank-body.json"


# ---- floors --------------------------------------------------------------------------

vitrine_log "redis-benchmark GET, $connections connections, $redis_requests requests"
# Database 15 keeps the benchmark's keys away from the profiles; it is emptied afterwards.
redis-benchmark -p "$VITRINE_REDIS_PORT" --dbnum 15 -c "$connections" -n "$redis_requests" \
    -r 100000 -d 100 -t set,get --csv >"$work/results/redis-benchmark.csv" 2>&1 ||
    { cat "$work/results/redis-benchmark.csv" >&2; vitrine_die "redis-benchmark failed"; }
redis-cli -p "$VITRINE_REDIS_PORT" -n 15 FLUSHDB >/dev/null
awk -F'"' '$2 == "GET" { printf "result: name=redis-get rps=%.0f p50_us=%.0f p99_us=%.0f\n", $4, $10 * 1000, $14 * 1000 }' \
    "$work/results/redis-benchmark.csv" >"$work/results/redis-get.txt"
keep redis-get "$work/results/redis-get.txt"

run_wrk healthz "$base/healthz"

floor_port=$(vitrine_free_port)
setsid "$bin/bench_floor_server" --http-port "$floor_port" --redis-port "$VITRINE_REDIS_PORT" \
    >"$work/floor.out" 2>"$work/floor.log" &
floor_pid=$!
VITRINE_STARTED_PIDS+=("$floor_pid")
vitrine_wait_http "http://127.0.0.1:$floor_port/healthz" 30 "$floor_pid" ||
    { cat "$work/floor.log" >&2; vitrine_die "bench_floor_server did not start"; }
run_wrk floor "http://127.0.0.1:$floor_port" "$work/targets-segment.txt"


# ---- endpoints -----------------------------------------------------------------------

run_wrk segment "$base" "$work/targets-segment.txt"
run_wrk recommendations "$base" "$work/targets-recommendations.txt"
run_wrk rerank "$base" "$work/targets-rerank.txt" "$work/rerank-body.json"
run_wrk similar "$base" "$work/targets-similar.txt"

for name in floor segment recommendations rerank similar; do
    rate=$(half_of "$(field "$work/results/wrk-$name.txt" rps)")
    case $name in
    floor) run_rate floor "http://127.0.0.1:$floor_port/" "$rate" "$work/targets-segment.txt" ;;
    rerank) run_rate rerank "$base/" "$rate" "$work/targets-rerank.txt" "$work/rerank-body.json" ;;
    *) run_rate "$name" "$base/" "$rate" "$work/targets-$name.txt" ;;
    esac
done
# Where the p99 knee lies: a quarter of the maximum, for the floor and the two endpoints
# every page calls.
for name in floor segment recommendations; do
    rate=$(quarter_of "$(field "$work/results/wrk-$name.txt" rps)")
    case $name in
    floor) run_rate quarter-floor "http://127.0.0.1:$floor_port/" "$rate" "$work/targets-segment.txt" ;;
    *) run_rate "quarter-$name" "$base/" "$rate" "$work/targets-$name.txt" ;;
    esac
done
vitrine_stop_pid "$floor_pid"

# Resident memory after the HTTP load, with the 50,000-product catalog.
rss_kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$vitrine_pid/status")
hwm_kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$vitrine_pid/status")
printf 'result: name=vitrine-rss rss_kib=%s hwm_kib=%s\n' "$rss_kib" "$hwm_kib" >"$work/results/rss.txt"
keep vitrine-rss "$work/results/rss.txt"
stop_vitrine


# ---- ingestion -----------------------------------------------------------------------

mapfile -t ingest_settings < <("$bin/bench_ingest" --print-settings)
[ ${#ingest_settings[@]} -gt 0 ] || vitrine_die "bench_ingest --print-settings printed no settings"
start_vitrine ingest "$catalog" "${ingest_settings[@]}"
"$bin/vitrine-replay" --jsonl "$work/population/population.jsonl" --dry-run --log-level warn \
    >"$work/ingest-records.tsv" 2>"$work/ingest-records.log" ||
    { cat "$work/ingest-records.log" >&2; vitrine_die "vitrine-replay --dry-run failed"; }
vitrine_log "ingestion: ${ingest_seconds} s at the highest rate, then ${ingest_latency_seconds} s at half of it (${ingest_settings[*]})"
"$bin/bench_ingest" --brokers "$VITRINE_BROKERS" --url "$base" --records "$work/ingest-records.tsv" \
    --topic events --seconds "$ingest_seconds" --latency-seconds "$ingest_latency_seconds" \
    >"$work/results/ingest.txt" 2>"$work/ingest.log" ||
    { tail -n 20 "$work/ingest.log" >&2; vitrine_die "bench_ingest failed"; }
keep ingest "$work/results/ingest.txt"
stop_vitrine


# ---- cost growth ---------------------------------------------------------------------

awk '{ print "/v1/sessions/" $1 "/recommendations?placement=home&limit=10" }' "$ids_typical" \
    >"$work/targets-growth-typical.txt"
awk '{ print "/v1/sessions/" $1 "/recommendations?placement=home&limit=10" }' "$ids_heavy" \
    >"$work/targets-growth-heavy.txt"
http_seconds_saved=$http_seconds
http_seconds=$growth_seconds
for n in $growth_catalogs; do
    start_vitrine "catalog-$n" "$work/catalog-$n.jsonl"
    run_wrk "growth-$n-typical" "$base" "$work/targets-growth-typical.txt"
    run_wrk "growth-$n-heavy" "$base" "$work/targets-growth-heavy.txt"
    printf 'result: name=rss-%s rss_kib=%s\n' "$n" "$(awk '/^VmRSS:/ { print $2 }' "/proc/$vitrine_pid/status")" \
        >"$work/results/rss-$n.txt"
    keep "rss-$n" "$work/results/rss-$n.txt"
    stop_vitrine
done
http_seconds=$http_seconds_saved


# ---- table ---------------------------------------------------------------------------

r="$work/results"

# verdict VALUE OP LIMIT: "met" or "not met" for VALUE >= LIMIT (OP ge) or < LIMIT (lt).
verdict() {
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        if (v == "" || v == "-") { print "not measured"; exit }
        ok = (op == "ge") ? (v + 0 >= l + 0) : (v + 0 < l + 0)
        print (ok ? "met" : "not met") }'
}

floor_rps=$(field "$r/wrk-floor.txt" rps)
http_rps=$(field "$r/wrk-healthz.txt" rps)
floor_p99_rate=$(field "$r/rate-floor.txt" p99_us)

# failures FILE KEY...: the sum of the named counts on FILE's result line, as " (N failed)"
# to append to a figure, or nothing when it is 0.
failures() {
    local file=$1 key sum=0 value
    shift
    for key in "$@"; do
        value=$(field "$file" "$key")
        sum=$((sum + ${value:-0}))
    done
    [ "$sum" -eq 0 ] || printf ' (%s failed)' "$sum"
}

http_row() {
    local label=$1 file=$2 target_ratio=${3:-}
    local rps vs_floor target=""
    rps=$(field "$file" rps)$(failures "$file" errors_connect errors_read errors_write errors_status errors_timeout)
    vs_floor=$(ratio "$(field "$file" rps)" "$floor_rps")
    [ -n "$target_ratio" ] && target="≥ $target_ratio of the round-trip floor: $(verdict "$vs_floor" ge "$target_ratio")"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$rps" \
        "$(ms "$(field "$file" p50_us)")" "$(ms "$(field "$file" p99_us)")" \
        "$(ms "$(field "$file" p999_us)")" "$vs_floor" "$(ratio "$(field "$file" rps)" "$http_rps")" "$target"
}

# rate_row LABEL FILE [FLOOR_P99_US]: one fixed-rate run, its p99 against the floor's at
# the same share of the maximum (the half-rate floor unless given).
rate_row() {
    local label=$1 file=$2 floor=${3:-$floor_p99_rate} p99
    p99=$(field "$file" p99_us)
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$(field "$file" target_rps)" \
        "$(field "$file" achieved_rps)$(failures "$file" errors non_2xx unfinished)" "$(ms "$(field "$file" p50_us)")" "$(ms "$p99")" \
        "$(ms "$(field "$file" p999_us)")" "$(ratio "$p99" "$floor")" \
        "p99 < 2 ms: $(verdict "$(ms "$p99")" lt 2)"
}

# growth_row N FIRST: one catalog size, with its throughput relative to catalog size FIRST.
growth_row() {
    local n=$1 typical="$r/wrk-growth-$1-typical.txt" heavy="$r/wrk-growth-$1-heavy.txt"
    local first="$r/wrk-growth-$2-typical.txt"
    printf '| %s | %s | %s | %s | %s / %s | %s | %s / %s | %s |\n' "$n" \
        "$(mb "$(field "$r/rss-$n.txt" rss_kib)")" \
        "$(field "$typical" rps)" "$(ratio "$(field "$typical" rps)" "$(field "$first" rps)")" \
        "$(ms "$(field "$typical" p50_us)")" "$(ms "$(field "$typical" p99_us)")" \
        "$(field "$heavy" rps)" "$(ms "$(field "$heavy" p50_us)")" "$(ms "$(field "$heavy" p99_us)")" \
        "$(ratio "$(field "$heavy" rps)" "$(field "$typical" rps)")"
}

ingest_rate=$(field "$r/ingest.txt" ingest_events_per_s)
e2p_p99=$(field "$r/ingest.txt" e2p_p99_ms)
# Resident memory in MB (10^6 bytes), the unit of the 64 MB target.
mb() {
    awk -v k="$1" 'BEGIN { if (k == "") print "-"; else printf "%.1f", k * 1024 / 1e6 }'
}
rss_mb=$(mb "$rss_kib")
commit=$(git -C "$VITRINE_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
[ -z "$(git -C "$VITRINE_ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ] || commit="$commit with local changes"

{
    printf '# Benchmark results\n\n'
    printf 'Command: `tests/bench/run.sh%s%s` on %s, %s minutes with the build.\n' \
        "$([ "$mode" = quick ] && echo ' --quick')" "$($profile && echo ' --perf')" \
        "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(( ($(date +%s) - started_at + 30) / 60 ))"
    printf 'Machine: %s, %s cores, %s of memory, Linux %s. Commit %s.\n' \
        "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$(nproc)" \
        "$(free -h | awk '/^Mem:/ { print $2 }')" "$(uname -r)" "$commit"
    printf 'Tools: %s, wrk %s, %s HTTP connections over %s wrk threads. Redis, the broker, vitrine\n' \
        "$(redis-server --version | awk '{ print $1, $2, $3 }')" \
        "$(wrk --version 2>&1 | awk 'NR == 1 { print $2 }')" "$connections" "$wrk_threads"
    printf 'and the load generators share the same cores. Every figure below was measured in this run.\n'
    $profile && printf 'perf sampled vitrine at 499 Hz during the wrk runs of the endpoints, which costs them some throughput.\n'
    printf '\n'

    printf '## HTTP at fixed concurrency (%s s each, wrk)\n\n' "$http_seconds"
    printf '| measurement | requests/s | p50 ms | p99 ms | p99.9 ms | vs round-trip floor | vs HTTP floor | target |\n'
    printf '|---|---|---|---|---|---|---|---|\n'
    printf '| Redis GET floor (redis-benchmark, one GET per round trip) | %s | %s | %s | - | %s | %s | |\n' \
        "$(field "$r/redis-get.txt" rps)" "$(ms "$(field "$r/redis-get.txt" p50_us)")" \
        "$(ms "$(field "$r/redis-get.txt" p99_us)")" "$(ratio "$(field "$r/redis-get.txt" rps)" "$floor_rps")" \
        "$(ratio "$(field "$r/redis-get.txt" rps)" "$http_rps")"
    http_row 'HTTP floor: vitrine `/healthz`' "$r/wrk-healthz.txt"
    http_row 'round-trip floor: bench_floor_server (the segment read, constant body)' "$r/wrk-floor.txt"
    http_row 'segment' "$r/wrk-segment.txt" 0.90
    http_row 'recommendations (home and product pages, 10 items)' "$r/wrk-recommendations.txt" 0.75
    http_row 'rerank (48 products)' "$r/wrk-rerank.txt" 0.60
    http_row 'similar (10 items)' "$r/wrk-similar.txt"

    printf '\n## Latency at half of the maximum throughput (%s s each, open loop, bench_rate_load)\n\n' "$rate_seconds"
    printf 'The rate is half of the requests/s above; latency counts from each request'"'"'s scheduled send time.\n\n'
    printf '| endpoint | rate requests/s | achieved requests/s | p50 ms | p99 ms | p99.9 ms | p99 vs round-trip floor | target |\n'
    printf '|---|---|---|---|---|---|---|---|\n'
    rate_row 'round-trip floor' "$r/rate-floor.txt"
    rate_row segment "$r/rate-segment.txt"
    rate_row recommendations "$r/rate-recommendations.txt"
    rate_row rerank "$r/rate-rerank.txt"
    rate_row similar "$r/rate-similar.txt"

    printf '\n## Latency at a quarter of the maximum throughput (%s s each, open loop, bench_rate_load)\n\n' "$rate_seconds"
    printf 'The same, at a quarter of the requests/s of the wrk runs: where the p99 knee of this machine lies.\n\n'
    printf '| endpoint | rate requests/s | achieved requests/s | p50 ms | p99 ms | p99.9 ms | p99 vs round-trip floor | target |\n'
    printf '|---|---|---|---|---|---|---|---|\n'
    quarter_floor=""
    quarter_floor=$(field "$r/rate-quarter-floor.txt" p99_us)
    rate_row 'round-trip floor' "$r/rate-quarter-floor.txt" "$quarter_floor"
    rate_row segment "$r/rate-quarter-segment.txt" "$quarter_floor"
    rate_row recommendations "$r/rate-quarter-recommendations.txt" "$quarter_floor"

    printf '\n## Ingestion (bench_ingest; %s)\n\n' "${ingest_settings[*]}"
    printf '| figure | value | target |\n|---|---|---|\n'
    printf '| events applied per second, sustained over %s s | %s | ≥ 50,000: %s |\n' \
        "$(field "$r/ingest.txt" ingest_seconds)" "$ingest_rate" "$(verdict "$ingest_rate" ge 50000)"
    printf '| event-to-profile latency p50 at %s events/s | %s ms | |\n' \
        "$(field "$r/ingest.txt" latency_applied_per_s)" "$(field "$r/ingest.txt" e2p_p50_ms)"
    printf '| event-to-profile latency p99 at %s events/s (%s probes, %s lost) | %s ms | < 100 ms: %s |\n' \
        "$(field "$r/ingest.txt" latency_applied_per_s)" "$(field "$r/ingest.txt" e2p_probes)" \
        "$(field "$r/ingest.txt" e2p_lost)" "$e2p_p99" "$(verdict "$e2p_p99" lt 100)"
    printf '| event-to-profile latency p50 / p99 at the highest rate (behind the backlog) | %s / %s ms | |\n' \
        "$(field "$r/ingest.txt" saturated_p50_ms)" "$(field "$r/ingest.txt" saturated_p99_ms)"

    printf '\n## Memory\n\n'
    printf '| figure | value | target |\n|---|---|---|\n'
    printf '| vitrine resident memory with %s products, after the HTTP runs | %s MB (peak %s MB) | < 64 MB: %s |\n' \
        "$(wc -l <"$catalog")" "$rss_mb" "$(mb "$hwm_kib")" "$(verdict "$rss_mb" lt 64)"
    m="$r/memory.txt"
    typical_bytes=$(field "$m" typical_bytes_mean)
    printf '| vitrine resident memory right after the population was applied | %s MB (peak %s MB) | |\n' \
        "$(mb "$(field "$m" vitrine_rss_kib)")" "$(mb "$(field "$m" vitrine_rss_peak_kib)")"
    printf '| Redis memory per typical profile, mean of MEMORY USAGE over its keys (%s profiles; p50 %s, p90 %s bytes) | %s bytes | < 2 KB (2,000 bytes): %s |\n' \
        "$(field "$m" profiles_typical)" "$(field "$m" typical_bytes_p50)" "$(field "$m" typical_bytes_p90)" \
        "$typical_bytes" "$(verdict "$typical_bytes" lt 2000)"
    printf '| Redis memory per near-cap profile, mean (%s profiles) | %s bytes | |\n' \
        "$(field "$m" profiles_heavy)" "$(field "$m" heavy_bytes_mean)"
    printf '| growth of Redis used_memory per profile, aggregates and allocator overhead included | %s bytes | |\n' \
        "$(field "$m" used_growth_per_profile)"
    printf '| Redis memory per visitor (sessions linked across visits), mean (%s visitors) | %s bytes | |\n' \
        "$(field "$m" visitors)" "$(field "$m" visitor_bytes_mean)"

    printf '\n## Cost growth of recommendations (home, 10 items; %s s each, wrk)\n\n' "$growth_seconds"
    first_catalog=${growth_catalogs%% *}
    printf '| catalog products | vitrine RSS MB | typical profiles requests/s | vs %s products | p50 / p99 ms | near-cap profiles requests/s | p50 / p99 ms | near-cap vs typical |\n' "$first_catalog"
    printf '|---|---|---|---|---|---|---|---|\n'
    for n in $growth_catalogs; do
        growth_row "$n" "$first_catalog"
    done
} >"$results"

cat "$results"
vitrine_log "table written to $results, raw result lines to $raw"
