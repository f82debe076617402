#!/usr/bin/env bash
# Check the deployment files without a Docker engine or a Kubernetes cluster:
#   1. `docker-compose config` (Debian's docker-compose 1.29) validates docker-compose.yml,
#      with and without the archive profile;
#   2. vitrine starts with the Kubernetes ConfigMap and Secret as its environment (only the
#      addresses of Redis, Kafka and the HTTP port replaced by the test's), gets a few
#      requests and replayed events, and its /metrics page is saved;
#   3. tests/deploy/check.mjs checks the Dockerfile, the compose file, the manifests and
#      the monitoring files against that binary, its --help and the /metrics page;
#   4. promtool (from Debian's prometheus package, unpacked, never installed as a
#      service) runs `check rules` and the rule tests in tests/deploy/rules-test.yaml;
#   5. vitrine, running as PID 1 of its own PID namespace as in a container, stops cleanly
#      on SIGTERM.
#
#   tests/deploy/run.sh BUILD_DIR/vitrine
#
# Uses the Redis and Kafka broker of tests/run.sh when VITRINE_TEST_REDIS_PORT and
# VITRINE_TEST_BROKERS are set, else starts its own through deploy/local/lib.sh. Needs
# root (or sudo) only to install missing Debian packages; node 20 and npm must be there.
# Stops everything it started. Takes about 30 s after the first run.
set -euo pipefail

VITRINE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$VITRINE_ROOT/deploy/local/lib.sh"
here="$VITRINE_ROOT/tests/deploy"

[ $# -eq 1 ] && [ -x "$1" ] || vitrine_die "usage: tests/deploy/run.sh BUILD_DIR/vitrine (a built vitrine binary)"
vitrine_bin=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
bin_dir=$(dirname "$vitrine_bin")
for tool in vitrine-replay vitrine-catalog vitrine-kafka-local vitrine-evaluate; do
    [ -x "$bin_dir/$tool" ] || vitrine_die "$bin_dir/$tool is missing; build it next to vitrine"
done
data=${VITRINE_TEST_DATA:-${VITRINE_DATA:-$VITRINE_ROOT/../shared/data/real}}
[ -d "$data/rees46_cosmetics" ] || vitrine_die "real data not found at $data; set VITRINE_DATA"
export VITRINE_TEST_DATA="$data"

work=$(mktemp -d "${TMPDIR:-/tmp}/vitrine-deploy.XXXXXX")
cleanup() {
    vitrine_stop_started
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

vitrine_install_dependencies docker-compose
command -v node >/dev/null && command -v npm >/dev/null || vitrine_die "node and npm are needed (node 20)"

vitrine_log "npm ci in tests/deploy"
(cd "$here" && timeout 120 npm ci --no-audit --no-fund --loglevel=error >/dev/null) ||
    vitrine_die "npm ci failed in $here"

# promtool: unpacked from Debian's prometheus package into the build folder, once.
tools="$bin_dir/deploy-tools"
promtool="$tools/root/usr/bin/promtool"
if [ ! -x "$promtool" ]; then
    vitrine_log "fetching promtool from Debian's prometheus package"
    mkdir -p "$tools"
    (cd "$tools" && rm -f prometheus_*.deb && timeout 300 apt-get download -q prometheus >/dev/null 2>&1) ||
        { apt-get update -q >/dev/null && (cd "$tools" && timeout 300 apt-get download -q prometheus >/dev/null 2>&1); } ||
        vitrine_die "apt-get download prometheus failed"
    dpkg-deb -x "$tools"/prometheus_*.deb "$tools/root"
fi

failed=0
pass() { vitrine_log "ok: $*"; }
fail() { vitrine_log "FAIL: $*"; failed=$((failed + 1)); }
passed=0

# 1. docker-compose's own validation.
for profile in "" archive; do
    args=(-f "$VITRINE_ROOT/docker-compose.yml")
    [ -n "$profile" ] && args+=(--profile "$profile")
    if (cd "$VITRINE_ROOT" && timeout 60 docker-compose "${args[@]}" config -q) 2>"$work/compose.err"; then
        pass "docker-compose config ${profile:+(profile $profile)}"
        passed=$((passed + 1))
    else
        fail "docker-compose config ${profile:+(profile $profile)}: $(cat "$work/compose.err")"
    fi
done

# 2. vitrine with the Kubernetes configuration.
if [ -n "${VITRINE_TEST_REDIS_PORT:-}" ] && [ -n "${VITRINE_TEST_BROKERS:-}" ]; then
    redis_port=$VITRINE_TEST_REDIS_PORT
    brokers=$VITRINE_TEST_BROKERS
else
    vitrine_start_redis "$work"
    vitrine_start_kafka "$bin_dir" "$work"
    redis_port=$VITRINE_REDIS_PORT
    brokers=$VITRINE_BROKERS
fi
port=$(vitrine_free_port)
run_id="deploycheck-$$-$RANDOM"
node "$here/check.mjs" env "$VITRINE_ROOT" >"$work/k8s.env"
storefront_token=$(sed -n "s/^VITRINE_HTTP_TOKEN_STOREFRONT='\(.*\)'$/\1/p" "$work/k8s.env")
cat >>"$work/k8s.env" <<EOF
VITRINE_HTTP_BIND=127.0.0.1
VITRINE_HTTP_PORT=$port
VITRINE_REDIS_HOST=127.0.0.1
VITRINE_REDIS_PORT=$redis_port
VITRINE_REDIS_PASSWORD=
VITRINE_REDIS_PREFIX=$run_id:
VITRINE_KAFKA_BROKERS=$brokers
VITRINE_KAFKA_TOPIC=$run_id-events
VITRINE_KAFKA_GROUP=$run_id
VITRINE_KAFKA_DEAD_LETTER_TOPIC=$run_id-dead-letter
VITRINE_KAFKA_CATALOG_TOPIC=$run_id-catalog
VITRINE_KAFKA_DECISIONS_TOPIC=$run_id-decisions
VITRINE_KAFKA_ALERTS_TOPIC=$run_id-alerts
VITRINE_ALERTS_RULES_PATH=$VITRINE_ROOT/deploy/alerts.example.json
VITRINE_HTTP_OPENAPI_PATH=$VITRINE_ROOT/openapi/openapi.yaml
EOF
"$vitrine_bin" --help >"$work/vitrine-help.txt"
"$bin_dir/vitrine-replay" --help >"$work/replay-help.txt"
"$bin_dir/vitrine-catalog" --help >"$work/catalog-help.txt"

# Requests on the storefront routes with the Secret's token fill the latency histograms;
# real events give the ingestion series (events, lag per partition) samples.
feed_vitrine() {
    local route
    for route in sessions/deploy-check/segment sessions/deploy-check/recommendations trending; do
        curl -fsS -o /dev/null -H "Authorization: Bearer $storefront_token" \
            "http://127.0.0.1:$port/v1/$route" ||
            fail "GET /v1/$route with the Secret's storefront token"
    done
    timeout 60 "$bin_dir/vitrine-replay" --brokers "$brokers" --topic "$run_id-events" \
        --limit 300 --log-level warn "$data/rees46_cosmetics/customer_data_2022_oct.csv" ||
        fail "vitrine-replay could not produce the sample events"
    for _ in $(seq 1 150); do
        curl -fsS "http://127.0.0.1:$port/metrics" >"$work/metrics.txt" || true
        grep -q '^vitrine_events_total{' "$work/metrics.txt" &&
            grep -q '^vitrine_consumer_lag{' "$work/metrics.txt" && return 0
        sleep 0.2
    done
    fail "no vitrine_events_total and vitrine_consumer_lag samples 30 s after replaying 300 events"
}

# In a container vitrine is PID 1, and the kernel discards signals that PID 1 leaves at
# their default action. Where unshare works (root), vitrine runs as PID 1 of its own PID
# namespace, as in the image, and step 5 stops it with SIGTERM as `docker stop` and
# Kubernetes do.
pid1=()
if unshare --pid --fork --kill-child true 2>/dev/null; then
    pid1=(unshare --pid --fork --kill-child)
fi
vitrine_log "starting vitrine with the ConfigMap and Secret on 127.0.0.1:$port${pid1:+ as PID 1}"
"${pid1[@]}" env -i PATH="$PATH" bash -c 'set -a; source "$1"; exec "$2"' _ "$work/k8s.env" \
    "$vitrine_bin" </dev/null >"$work/vitrine.log" 2>&1 &
vitrine_pid=$!
VITRINE_STARTED_PIDS+=("$vitrine_pid")
: >"$work/metrics.txt"
if vitrine_wait_http "http://127.0.0.1:$port/readyz" 30 "$vitrine_pid"; then
    feed_vitrine
else
    # The static checks below still run and name what is wrong in the files.
    fail "vitrine did not become ready with the Kubernetes configuration: $(tail -n 3 "$work/vitrine.log")"
fi

# 3. The structural checks.
if timeout 180 node "$here/check.mjs" check "$VITRINE_ROOT" "$work" "http://127.0.0.1:$port/" "$bin_dir"; then
    passed=$((passed + 1))
else
    fail "tests/deploy/check.mjs (its failures are listed above)"
fi

# 4. promtool on the rules.
if "$promtool" check rules "$VITRINE_ROOT/deploy/monitoring/prometheus-rules.yaml" >"$work/promtool.out" 2>&1; then
    pass "promtool check rules"
    passed=$((passed + 1))
else
    fail "promtool check rules: $(cat "$work/promtool.out")"
fi
mkdir -p "$work/rules"
cp "$here/rules-test.yaml" "$work/rules/"
(cd "$here" && node --input-type=module -e '
    import { parse, stringify } from "yaml";
    import fs from "node:fs";
    const rules = parse(fs.readFileSync(process.argv[1], "utf8"));
    for (const group of rules.groups) for (const rule of group.rules) delete rule.annotations;
    fs.writeFileSync(process.argv[2], stringify(rules));
' "$VITRINE_ROOT/deploy/monitoring/prometheus-rules.yaml" "$work/rules/prometheus-rules.yaml")
if (cd "$work/rules" && "$promtool" test rules rules-test.yaml) >"$work/promtool.out" 2>&1; then
    pass "promtool test rules"
    passed=$((passed + 1))
else
    fail "promtool test rules: $(cat "$work/promtool.out")"
fi

# 5. vitrine as PID 1 stops cleanly on SIGTERM. The time is only printed, because
# check.mjs already compared the grace periods with the stop's worst case.
if ! kill -0 "$vitrine_pid" 2>/dev/null; then
    fail "vitrine exited during the checks: $(tail -n 5 "$work/vitrine.log")"
elif [ ${#pid1[@]} -gt 0 ]; then
    daemon=$(pgrep -P "$vitrine_pid" || true)
    [ "$(awk '/^NSpid:/ {print $NF}' "/proc/$daemon/status" 2>/dev/null)" = 1 ] ||
        fail "vitrine (pid $daemon) is not PID 1 of its namespace"
    started=$(date +%s%N)
    kill -TERM "$daemon"
    status=0
    timeout 60 tail --pid="$vitrine_pid" -f /dev/null || status=$?
    wait "$vitrine_pid" || status=$?
    elapsed_ms=$((($(date +%s%N) - started) / 1000000))
    if [ "$status" -eq 0 ] && grep -q 'MAIN    stopped' "$work/vitrine.log"; then
        pass "vitrine as PID 1 stopped on SIGTERM in $elapsed_ms ms"
        passed=$((passed + 1))
    else
        fail "vitrine as PID 1 did not stop cleanly on SIGTERM (status $status after $elapsed_ms ms): $(tail -n 3 "$work/vitrine.log")"
    fi
else
    vitrine_log "unshare --pid is not available (not root): the stop as PID 1 is not checked"
fi
vitrine_stop_started
if [ -z "${VITRINE_REDIS_PORT:-}" ]; then
    # The shared Redis of tests/run.sh: remove this run's keys.
    redis-cli -p "$redis_port" --scan --pattern "$run_id:*" |
        xargs -r redis-cli -p "$redis_port" del >/dev/null || true
fi
echo "deploy-steps: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
