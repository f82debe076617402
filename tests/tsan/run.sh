#!/usr/bin/env bash
# Build vitrine with ThreadSanitizer (build/tsan) and run the integration suites that drive
# all of the daemon's threads at once: ingest, the libmicrohttpd workers, the live updater,
# the alerts thread and its webhook thread, and the decisions producer. A data race makes
# the daemon stop with exit status 66, which fails the test that started it. The script
# also fails when any daemon log of the run contains a TSan report, and prints the reports.
#
#   tests/tsan/run.sh [FILTER]   criterion filter (default: the suites listed below)
#
# Only the daemon is instrumented. The criterion test runners are not, because criterion
# 2.4.1 fails at start under TSan in most runs (see CMakeLists.txt), so threads that the
# unit tests and the in-process live suite start in the test runner are not checked here.
#
# Uses the redis-server and Kafka broker named by VITRINE_TEST_REDIS_PORT and
# VITRINE_TEST_BROKERS when both are set, and otherwise starts its own on loopback and
# stops them on exit. Needs the real data (VITRINE_DATA, as tests/run.sh) for the alerts
# suite's recorded stream.
set -euo pipefail

VITRINE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$VITRINE_ROOT/deploy/local/lib.sh"
# Every suite that starts the daemon, except the long SIGKILL and rebalance runs of the
# restarts suite. Its SIGTERM test is included because it keeps HTTP clients and ingest
# busy while the daemon stops.
filter=${1:-'@(served/*|aggregates/*|pipeline/*|alerts/*|faults/*|http/*|poison/*|segments/*|visitors/*|privacy/*|restarts/sigterm_under_load_drains_cleanly)'}
started_at=$(date +%s)

data=${VITRINE_DATA:-$VITRINE_ROOT/../shared/data/real}
[ -d "$data/rees46_cosmetics" ] ||
    vitrine_die "real data not found at $data; set VITRINE_DATA to the folder with rees46_cosmetics/"

vitrine_install_dependencies
build="$VITRINE_ROOT/build/tsan"
vitrine_log "ThreadSanitizer build of the daemon"
vitrine_build "$build" -DCMAKE_BUILD_TYPE=Debug -DVITRINE_TSAN=ON

work=$(mktemp -d "${TMPDIR:-/tmp}/vitrine-tsan.XXXXXX")
cleanup() {
    vitrine_stop_started
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1:suppressions=$VITRINE_ROOT/tests/tsan.supp"

# Older TSan runtimes, gcc 12's among them, may die at start with "FATAL: ThreadSanitizer:
# unexpected memory mapping" when the kernel randomizes mmap addresses with more bits than
# the x86-64 default of 28 (some newer kernels use vm.mmap_rnd_bits 32). setarch -R turns
# address randomization off for the test runner and the daemons it starts.
runner=()
rnd_bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 28)
probe() {
    local i
    for i in 1 2 3 4 5; do
        "${runner[@]}" "$build/vitrine" --version >/dev/null 2>"$work/probe.log" || return 1
    done
}
if [ "$rnd_bits" -gt 28 ] || ! probe; then
    vitrine_log "vm.mmap_rnd_bits is $rnd_bits or TSan failed at start: running under setarch -R"
    runner=(setarch "$(uname -m)" -R)
    probe || {
        cat "$work/probe.log" >&2
        vitrine_die "the ThreadSanitizer build does not start, also under setarch -R; as root, run 'sysctl vm.mmap_rnd_bits=28' and try again"
    }
fi

if [ -n "${VITRINE_TEST_REDIS_PORT:-}" ] && [ -n "${VITRINE_TEST_BROKERS:-}" ]; then
    vitrine_log "using redis 127.0.0.1:$VITRINE_TEST_REDIS_PORT and kafka $VITRINE_TEST_BROKERS"
else
    vitrine_start_redis "$work"
    vitrine_start_kafka "$build" "$work"
    export VITRINE_TEST_REDIS_PORT=$VITRINE_REDIS_PORT
    export VITRINE_TEST_BROKERS=$VITRINE_BROKERS
fi
export VITRINE_TEST_DATA="$data"
export VITRINE_TEST_CATALOG="$work/catalog.jsonl"
mkdir -p "$work/logs"
export VITRINE_TEST_WORK="$work/logs"
vitrine_test_catalog "$build" "$data" "$VITRINE_TEST_CATALOG"

vitrine_log "integration tests under ThreadSanitizer: $filter"
tests_status=0
"${runner[@]}" "$build/integration_tests" --jobs 2 --filter "$filter" || tests_status=$?

# A test that fails for another reason, or stops the daemon with SIGKILL before it exits,
# still leaves the report in the daemon's log.
reports=$(grep -l -E '(WARNING|ERROR|FATAL): ThreadSanitizer' "$work"/logs/*.log 2>/dev/null || true)
for log in $reports; do
    printf -- '---- ThreadSanitizer report in %s ----\n' "$(basename "$log")" >&2
    sed -n '/\(WARNING\|ERROR\|FATAL\): ThreadSanitizer/,/^SUMMARY: ThreadSanitizer/p' "$log" >&2
done
elapsed=$(($(date +%s) - started_at))
[ -z "$reports" ] ||
    vitrine_die "ThreadSanitizer reported a problem in $(echo "$reports" | wc -l) daemon run(s) (${elapsed} s)"
[ "$tests_status" -eq 0 ] ||
    vitrine_die "integration tests failed under ThreadSanitizer (exit status $tests_status, ${elapsed} s)"
vitrine_log "measured: ThreadSanitizer step took ${elapsed} s (build and tests); no data race reported"
