#!/usr/bin/env bash
# Build the libFuzzer targets of tests/fuzz with clang (ASan and UBSan included) and run
# each for a bounded time. The seed corpora are made at run time from the real sample
# records (both event formats, through vitrine-replay --dry-run) and the shipped rules
# files. They live in a temporary folder and are never stored in the project.
#
#   tests/fuzz/run.sh [SECONDS]    seconds per target (default $VITRINE_FUZZ_SECONDS or 20)
#
# The targets: the decoder entry point on raw record values, the Mapp and the canonical
# decoder on any JSON object, the alert and business rules loaders, the segments loader
# with evaluation and explain, and HTTP requests to the API server running in the
# fuzzer's process. A crash, a sanitizer report or a failed check stops the run with the
# input that caused it. Turn that input into a unit test when fixing the cause.
set -euo pipefail

VITRINE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$VITRINE_ROOT/deploy/local/lib.sh"
seconds=${1:-${VITRINE_FUZZ_SECONDS:-20}}
[[ "$seconds" =~ ^[0-9]+$ ]] && [ "$seconds" -ge 1 ] ||
    vitrine_die "invalid fuzzing time '$seconds': give whole seconds, 1 or more"
data=${VITRINE_DATA:-$VITRINE_ROOT/../shared/data/real}
[ -d "$data/rees46_cosmetics" ] ||
    vitrine_die "real data not found at $data; set VITRINE_DATA to the folder with rees46_cosmetics/"

vitrine_install_dependencies clang libclang-rt-14-dev
build="$VITRINE_ROOT/build/fuzz"
vitrine_log "fuzz build (clang, libFuzzer, ASan + UBSan)"
CC=clang vitrine_build "$build" -DCMAKE_BUILD_TYPE=Debug -DVITRINE_FUZZ=ON -DVITRINE_TESTS=OFF

work=$(mktemp -d "${TMPDIR:-/tmp}/vitrine-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

# One file per record: every fifth record of the sample in each event format.
seed_records() {
    local dir=$1 name=$2
    shift 2
    mkdir -p "$dir"
    "$build/vitrine-replay" --dry-run "$@" "$data"/rees46_cosmetics/customer_data_*.csv 2>/dev/null |
        awk -F'\t' -v dir="$dir" -v name="$name" \
            'NR % 5 == 1 { f = sprintf("%s/%s%05d.json", dir, name, NR); printf "%s", $2 > f; close(f) }'
}
seed_records "$work/seed/mapp" root --format mapp --with-attributes
seed_records "$work/seed/mapp" flat --format mapp --flatten
seed_records "$work/seed/canonical" canonical --format canonical
mkdir -p "$work/seed/rules"
cp "$VITRINE_ROOT"/deploy/*.json "$work/seed/rules/"

# Requests for fuzz_http: method byte (0 GET, 1 POST, 2 DELETE), target after /v1/, then a
# newline and the body.
mkdir -p "$work/seed/http"
i=0
while IFS= read -r line; do
    i=$((i + 1))
    printf '%b' "$line" >"$work/seed/http/request$i"
done <<'REQUESTS'
\x00sessions/s-1/segment
\x00sessions/s-1/recommendations?limit=5&exclude=w-1,w-2&placement=home&price_min=10
\x01sessions/s-1/rerank\n{"product_ids":["w-1","m-2","c-3"]}
\x00products/w-1/similar?limit=3
\x00trending?category=perfume&brand=Aurelle&gender=female&limit=2
\x00profiles/s-1
\x02profiles/s-1
\x00stats/products/w-1
\x00stats/placements/home
\x00alerts?state=all&severity=critical&rule=brand-views-surge&acknowledged=false&limit=3
\x00alerts/01900000-0000-7000-8000-000000000000
\x01alerts/01900000-0000-7000-8000-000000000000/ack\n{"by":"anna","note":"taken"}
REQUESTS

run_target() {
    local target=$1
    shift
    mkdir -p "$work/corpus/$target"
    vitrine_log "fuzzing $target for $seconds s ($(find "$@" -type f | wc -l) seed inputs)"
    # -close_fd_mask=3 keeps the decoders' log lines out of the output.
    if ! "$build/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -close_fd_mask=3 -print_final_stats=1 -artifact_prefix="$work/$target-" \
        "$work/corpus/$target" "$@" >"$work/$target.log" 2>&1; then
        tail -n 60 "$work/$target.log" >&2
        mkdir -p "$VITRINE_ROOT/build/fuzz-findings"
        cp "$work/$target"-* "$VITRINE_ROOT/build/fuzz-findings/" 2>/dev/null || true
        vitrine_die "$target found a problem; its input is in build/fuzz-findings/"
    fi
    grep -E '^stat::number_of_executed_units|^stat::new_units_added' "$work/$target.log" |
        tr '\n' ' ' >&2
    echo >&2
}
run_target fuzz_decode "$work/seed/mapp" "$work/seed/canonical"
run_target fuzz_decode_mapp "$work/seed/mapp"
run_target fuzz_decode_canonical "$work/seed/canonical"
run_target fuzz_rules_files "$work/seed/rules"
run_target fuzz_segments_file "$work/seed/rules"
run_target fuzz_http "$work/seed/http"
vitrine_log "fuzzing found nothing"
