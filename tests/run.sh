#!/usr/bin/env bash
# Build vitrine and run every test suite: criterion unit tests, then integration tests
# against a private redis-server and the local Kafka broker on loopback. Installs the
# Debian packages it needs (as root) and stops everything it started. In order:
#   1. a release build (-Werror) and an AddressSanitizer/UndefinedBehaviorSanitizer build;
#   2. the unit and integration tests on the sanitizer build;
#   3. on the release build: the HTTP contract (tests/contract/run.sh), the deploy files
#      (tests/deploy/run.sh) and the dashboard in headless Chromium (tests/ui/run.sh);
#   4. the soak test on the release build (memory figures without sanitizer quarantine);
#   5. the threaded suites with the daemon built with ThreadSanitizer (tests/tsan/run.sh);
#   6. each libFuzzer target for a bounded time (tests/fuzz/run.sh).
#
#   tests/run.sh            all of it; fuzz targets for $VITRINE_FUZZ_SECONDS (default 15)
#                           seconds each
#   tests/run.sh unit       unit tests only (no servers)
#
# Long versions: VITRINE_LONG_TESTS=1 makes the crash test kill vitrine 30 times instead of
# 6 and the soak test run 600 s instead of 60 (VITRINE_SOAK_SECONDS sets the soak alone).
set -euo pipefail

VITRINE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$VITRINE_ROOT/deploy/local/lib.sh"
suites=${1:-all}

work=$(mktemp -d "${TMPDIR:-/tmp}/vitrine-tests.XXXXXX")
cleanup() {
    vitrine_stop_started
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

vitrine_install_dependencies

vitrine_log "release build (-Werror)"
vitrine_build "$VITRINE_ROOT/build/release" -DCMAKE_BUILD_TYPE=Release
vitrine_log "sanitizer build (ASan + UBSan)"
vitrine_build "$VITRINE_ROOT/build/asan" -DCMAKE_BUILD_TYPE=Debug -DVITRINE_SANITIZE=ON
build="$VITRINE_ROOT/build/asan"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS="suppressions=$VITRINE_ROOT/tests/lsan.supp"
# The real data is read where it lies, never copied into the project; some unit tests and
# the demo need it.
export VITRINE_TEST_DATA=${VITRINE_DATA:-$VITRINE_ROOT/../shared/data/real}
[ -d "$VITRINE_TEST_DATA/rees46_cosmetics" ] ||
    vitrine_die "real data not found at $VITRINE_TEST_DATA; set VITRINE_DATA to the folder with rees46_cosmetics/"
export VITRINE_TEST_CATALOG="$work/catalog.jsonl"
vitrine_test_catalog "$build" "$VITRINE_TEST_DATA" "$VITRINE_TEST_CATALOG"

vitrine_log "unit tests"
"$build/unit_tests" --jobs 2

if [ "$suites" = unit ]; then
    exit 0
fi

vitrine_start_redis "$work"
vitrine_start_kafka "$build" "$work"
export VITRINE_TEST_REDIS_PORT=$VITRINE_REDIS_PORT
export VITRINE_TEST_BROKERS=$VITRINE_BROKERS
export VITRINE_TEST_WORK="$work"

vitrine_log "integration tests (redis 127.0.0.1:$VITRINE_REDIS_PORT, kafka $VITRINE_BROKERS)"
"$build/integration_tests" --jobs 2 --filter '!(soak)/*'

# The HTTP contract: openapi.yaml linted, and real responses of every operation checked
# against it (tests/contract/run.sh).
vitrine_log "HTTP contract: lint and responses against openapi/openapi.yaml"
"$VITRINE_ROOT/tests/contract/run.sh" "$VITRINE_ROOT/build/release"

# The container, compose, Kubernetes and monitoring files, checked without a Docker engine
# (docker-compose config, promtool, and vitrine started with the Kubernetes environment).
vitrine_log "deploy files (tests/deploy/run.sh)"
"$VITRINE_ROOT/tests/deploy/run.sh" "$VITRINE_ROOT/build/release/vitrine"

# The dashboard at /ui/ in Debian's headless Chromium, with screenshots in build/ui/.
vitrine_log "dashboard in headless Chromium (tests/ui/run.sh)"
"$VITRINE_ROOT/tests/ui/run.sh" "$VITRINE_ROOT/build/release"

# Memory figures mean something only without the sanitizers' quarantine: the soak runs on
# the release build.
vitrine_log "soak test on the release build (${VITRINE_SOAK_SECONDS:-60} s unless VITRINE_LONG_TESTS=1)"
"$VITRINE_ROOT/build/release/integration_tests" --filter 'soak/*'

# The threaded paths again, with the daemon built with ThreadSanitizer, on the same servers.
VITRINE_DATA="$VITRINE_TEST_DATA" "$VITRINE_ROOT/tests/tsan/run.sh"

vitrine_stop_started
VITRINE_DATA="$VITRINE_TEST_DATA" "$VITRINE_ROOT/tests/fuzz/run.sh" "${VITRINE_FUZZ_SECONDS:-15}"

vitrine_log "all suites passed"
