#!/usr/bin/env bash
# The HTTP contract check: lint openapi/openapi.yaml with Redocly CLI (rules in redocly.yaml
# beside this script), then start vitrine against a real Redis and Kafka broker and check
# the real responses of every operation against the document (check.mjs).
#
#   tests/contract/run.sh BUILD_DIR
#
# BUILD_DIR contains a built vitrine, vitrine-replay and vitrine-kafka-local. When tests/run.sh
# exported VITRINE_TEST_REDIS_PORT and VITRINE_TEST_BROKERS, those servers are used (with
# keys and topics of this run's own); otherwise the script starts a private redis-server and
# local Kafka broker. Needs Node.js 20.19 or later and npm (installs Debian's nodejs and npm
# when node is missing). Stops everything it started; gives up after
# VITRINE_CONTRACT_TIMEOUT_S seconds (default 300) for the servers' part.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VITRINE_ROOT=$(cd "$here/../.." && pwd)
source "$VITRINE_ROOT/deploy/local/lib.sh"

[ $# -eq 1 ] || vitrine_die "usage: tests/contract/run.sh BUILD_DIR (a build with vitrine and vitrine-replay)"
build=$(cd "$1" && pwd) || vitrine_die "build directory $1 not found"
for tool in vitrine vitrine-replay vitrine-kafka-local; do
    [ -x "$build/$tool" ] || vitrine_die "$build/$tool is missing; build vitrine first (cmake --build $build)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/vitrine-contract.XXXXXX")
redis_port=
redis_prefix="contract$$-"
# Keys this run wrote to a Redis it did not start.
delete_keys() {
    [ -n "$redis_port" ] && [ "$redis_port" = "${VITRINE_TEST_REDIS_PORT:-}" ] || return 0
    command -v redis-cli >/dev/null || return 0
    redis-cli -p "$redis_port" --scan --pattern "$redis_prefix*" |
        xargs -r -d '\n' -n 100 redis-cli -p "$redis_port" del >/dev/null || true
}
# Instances that check.mjs started, in case it is killed before it stops them itself.
stop_instances() {
    local pid
    [ -f "$work/pids" ] || return 0
    while read -r pid; do
        if kill -0 "$pid" 2>/dev/null; then
            vitrine_stop_pid "$pid"
        fi
    done <"$work/pids"
}
cleanup() {
    stop_instances
    delete_keys
    vitrine_stop_started
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v node >/dev/null || vitrine_install_dependencies nodejs npm
node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' ||
    vitrine_die "Node.js $(node --version) is too old: @redocly/cli needs 20.19 or later"

vitrine_log "npm ci in tests/contract"
(cd "$here" && timeout 600 npm ci --no-audit --no-fund --loglevel=error) ||
    vitrine_die "npm ci failed in $here"

# Redocly CLI sends usage data and looks for a newer version unless told not to.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
vitrine_log "lint openapi/openapi.yaml (Redocly CLI, rules in tests/contract/redocly.yaml)"
lint_output=$(cd "$here" && timeout 120 npx --no-install redocly lint --config redocly.yaml \
    "$VITRINE_ROOT/openapi/openapi.yaml" 2>&1) || {
    printf '%s\n' "$lint_output" >&2
    vitrine_die "openapi/openapi.yaml does not pass the lint"
}
printf '%s\n' "$lint_output" | grep -v '^\s*$' >&2
# A rule set to warn in redocly.yaml would pass the run above: no warning is allowed either.
if printf '%s\n' "$lint_output" | grep -q 'You have [0-9]* warning'; then
    vitrine_die "the lint of openapi/openapi.yaml reports warnings; fix them or make the rule an error"
fi

if [ -n "${VITRINE_TEST_REDIS_PORT:-}" ] && [ -n "${VITRINE_TEST_BROKERS:-}" ]; then
    redis_port=$VITRINE_TEST_REDIS_PORT
    brokers=$VITRINE_TEST_BROKERS
else
    vitrine_install_dependencies
    vitrine_start_redis "$work"
    vitrine_start_kafka "$build" "$work"
    redis_port=$VITRINE_REDIS_PORT
    brokers=$VITRINE_BROKERS
fi

vitrine_log "check real responses against openapi/openapi.yaml (redis 127.0.0.1:$redis_port, kafka $brokers)"
CONTRACT_BUILD=$build CONTRACT_SOURCE=$VITRINE_ROOT CONTRACT_WORK=$work \
    CONTRACT_REDIS_PORT=$redis_port CONTRACT_REDIS_PREFIX=$redis_prefix CONTRACT_BROKERS=$brokers \
    timeout --signal=TERM --kill-after=30 "${VITRINE_CONTRACT_TIMEOUT_S:-300}" node "$here/check.mjs" || {
    status=$?
    for log in "$work"/*.log; do
        [ -f "$log" ] || continue
        printf -- '---- %s (last 20 lines) ----\n' "$log" >&2
        tail -n 20 "$log" >&2
    done
    vitrine_die "the contract check failed (status $status)"
}
