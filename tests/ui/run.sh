#!/usr/bin/env bash
# Browser test of the dashboard at /ui/. It starts vitrine with a small catalog, an alert
# rule and a segments file. It produces events for one session, a session with a visitor
# id and a session without consent, and background traffic for the live charts. Then it
# drives Debian's headless Chromium with playwright-core (dashboard.test.mjs). Saves
# build/ui/dashboard.png and build/ui/dashboard.de.png, and the profile card and the
# segments panel as build/ui/segments-profile.png and build/ui/segments-panel.png (.de.png
# in German).
#
#   tests/ui/run.sh [BUILD_DIR]    BUILD_DIR holds vitrine, vitrine-replay and
#                                  vitrine-kafka-local (default: build/release)
#
# Uses the redis-server and broker that tests/run.sh exported (VITRINE_TEST_REDIS_PORT,
# VITRINE_TEST_BROKERS) when both are set, else starts its own. Installs chromium with
# apt-get (as root) when it is missing, and playwright-core with `npm ci`;
# VITRINE_UI_CHROMIUM names another browser binary. Every wait is bounded, and whatever
# the script started is stopped when it exits.
set -euo pipefail

VITRINE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$VITRINE_ROOT/deploy/local/lib.sh"
here="$VITRINE_ROOT/tests/ui"
build=$(cd "${1:-$VITRINE_ROOT/build/release}" && pwd)
shots="$VITRINE_ROOT/build/ui"

for tool in vitrine vitrine-replay vitrine-kafka-local; do
    [ -x "$build/$tool" ] || vitrine_die "$build/$tool is missing; build first (cmake --build $build)"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/vitrine-ui.XXXXXX")
traffic_pid=""
cleanup() {
    [ -n "$traffic_pid" ] && vitrine_stop_pid "$traffic_pid"
    vitrine_stop_started
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- what the test needs: chromium from Debian, playwright-core from npm ----

vitrine_install_dependencies chromium
command -v node >/dev/null || vitrine_die "node is missing; install Node.js 20 or later"
(cd "$here" && timeout 300 npm ci --no-audit --no-fund --loglevel=error >"$work/npm.log" 2>&1) ||
    { cat "$work/npm.log" >&2; vitrine_die "npm ci in tests/ui failed"; }

# ---- servers ----

if [ -n "${VITRINE_TEST_REDIS_PORT:-}" ] && [ -n "${VITRINE_TEST_BROKERS:-}" ]; then
    redis_port=$VITRINE_TEST_REDIS_PORT
    brokers=$VITRINE_TEST_BROKERS
else
    vitrine_start_redis "$work"
    vitrine_start_kafka "$build" "$work"
    redis_port=$VITRINE_REDIS_PORT
    brokers=$VITRINE_BROKERS
fi

# Names of this run only, so that runs sharing the servers do not see each other's data.
run="ui$$r$RANDOM"
token="analyst-$run"
session="s-$run"
visitor_session="v-$run"
visitor="c-$run"
denied_session="d-$run"

# The test catalog, plus one product whose name and brand are HTML: the page must show
# them as text.
cp "$VITRINE_ROOT/tests/data/catalog.jsonl" "$work/catalog.jsonl"
printf '%s\n' '{"id": "x-1", "name": "<img src=x onerror=\"window.__xss=1\"> Markup Mist", "brand": "<b>Bold</b>", "categories": ["perfume", "perfume.women"], "gender": "female", "price": 33, "popularity": 60, "stock": 10}' \
    >>"$work/catalog.jsonl"

# One rule that fires within seconds and stays active for minutes: five views of one
# brand in five minutes.
cat >"$work/alerts.json" <<'EOF'
{"rules": [{"name": "ui-brand-views", "event": "product_view", "group_by": "brand",
  "window_s": 300, "condition": {"type": "above", "threshold": 5}, "min_volume": 5,
  "cooldown_s": 600, "severity": "warning", "recipients": ["analysts@shop.example"],
  "reaction": "Views of this brand are high: check its campaign and its stock."}]}
EOF

# Segments that the session s-... meets (perfume_fan, markup_brand, engaged_browser) and
# one that it does not (mens_shopper). markup_brand names the brand "<b>Bold</b>", so its
# condition text is markup that the page must show as text. The "last" condition on
# add_to_wishlist has no value, because no session sends that event.
cat >"$work/segments.json" <<'EOF'
{"segments": [
  {"name": "perfume_fan", "when": {"category": {"name": "perfume", "min_share": 0.3}}},
  {"name": "mens_shopper", "when": {"any": [
    {"gender": {"is": "male", "min_probability": 0.7}},
    {"last": {"event": "add_to_wishlist", "within_s": 600}}
  ]}},
  {"name": "markup_brand", "when": {"all": [
    {"brand": {"name": "<b>Bold</b>", "min_share": 0.01}},
    {"last": {"event": "purchase", "within_s": 86400}}
  ]}},
  {"name": "engaged_browser", "score": {"min": 3, "points": [
    {"points": 2, "when": {"count": {"event": "product_view", "min": 5}}},
    {"points": 2, "when": {"cart": {"min_lines": 1}}},
    {"points": -1, "when": {"first_visit": false}}
  ]}}
]}
EOF

http_port=$(vitrine_free_port)
VITRINE_HTTP_PORT=$http_port VITRINE_HTTP_TOKEN_ANALYST=$token \
VITRINE_HTTP_TOKEN_STOREFRONT="storefront-$run" \
VITRINE_REDIS_PORT=$redis_port VITRINE_REDIS_PREFIX="$run:" \
VITRINE_KAFKA_BROKERS=$brokers VITRINE_KAFKA_TOPIC="$run-events" \
VITRINE_KAFKA_GROUP="$run" VITRINE_KAFKA_DEAD_LETTER_TOPIC="$run-dead-letter" \
VITRINE_KAFKA_CATALOG_TOPIC="$run-catalog" VITRINE_KAFKA_DECISIONS_TOPIC="$run-decisions" \
VITRINE_KAFKA_ALERTS_TOPIC="$run-alerts" VITRINE_KAFKA_OFFSET_RESET=earliest \
VITRINE_KAFKA_PROPERTIES=session.timeout.ms=6000,heartbeat.interval.ms=500 \
VITRINE_CATALOG_PATH="$work/catalog.jsonl" VITRINE_ALERTS_RULES_PATH="$work/alerts.json" \
VITRINE_ALERTS_PERIOD_MS=1000 VITRINE_LIVE_REFRESH_MS=500 \
VITRINE_SEGMENTS_PATH="$work/segments.json" VITRINE_SEGMENTS_COUNT_INTERVAL_S=5 \
VITRINE_HTTP_OPENAPI_PATH="$VITRINE_ROOT/openapi/openapi.yaml" \
    setsid "$build/vitrine" >"$work/vitrine.log" 2>&1 &
vitrine_pid=$!
VITRINE_STARTED_PIDS+=("$vitrine_pid")
base="http://127.0.0.1:$http_port"
vitrine_wait_http "$base/readyz" 60 "$vitrine_pid" ||
    { tail -n 30 "$work/vitrine.log" >&2; vitrine_die "vitrine did not become ready at $base/readyz"; }
vitrine_log "vitrine at $base (pid $vitrine_pid)"

# ---- events ----

# The session views women's perfumes and one skin care product, carts one and buys one;
# eight other sessions view the Aurelle perfumes and the markup product, so that they
# trend and the brand rule fires. One more session logs in as a customer (a visitor), and
# one refuses consent.
now_ms=$(($(date +%s%N) / 1000000))
{
    i=0
    for product in w-1 w-2 w-3 c-1 w-4 x-1; do
        printf '{"type": "product_view", "session_id": "%s", "ts": %d, "campaign": "insta.spring", "products": [{"id": "%s"}]}\n' \
            "$session" $((now_ms - 60000 + i * 5000)) "$product"
        i=$((i + 1))
    done
    printf '{"type": "add_to_cart", "session_id": "%s", "ts": %d, "products": [{"id": "w-2", "quantity": 1}]}\n' \
        "$session" $((now_ms - 20000))
    printf '{"type": "purchase", "session_id": "%s", "ts": %d, "order_id": "o-%s", "products": [{"id": "w-1", "quantity": 1, "price": 45}]}\n' \
        "$session" $((now_ms - 10000)) "$run"
    for product in w-7 w-8; do
        printf '{"type": "product_view", "session_id": "%s", "customer_id": "%s", "ts": %d, "products": [{"id": "%s"}]}\n' \
            "$visitor_session" "$visitor" $((now_ms - 30000)) "$product"
    done
    printf '{"type": "product_view", "session_id": "%s", "consent": false, "ts": %d, "products": [{"id": "w-7"}]}\n' \
        "$denied_session" $((now_ms - 30000))
    for k in 1 2 3 4 5 6 7 8; do
        for product in w-5 w-6 x-1; do
            printf '{"type": "product_view", "session_id": "o%d-%s", "ts": %d, "campaign": "insta.spring", "products": [{"id": "%s"}]}\n' \
                "$k" "$run" $((now_ms - 5000)) "$product"
        done
    done
} >"$work/events.jsonl"
session_events=8
"$build/vitrine-replay" --brokers "$brokers" --topic "$run-events" --jsonl "$work/events.jsonl" \
    >"$work/replay.log" 2>&1 || { cat "$work/replay.log" >&2; vitrine_die "vitrine-replay failed"; }

# Background traffic while the browser looks: events of other sessions for the ingestion
# chart (stamped as they are produced), and storefront requests for the latency chart.
{
    for k in $(seq 1 400); do
        printf '{"type": "product_view", "session_id": "bg%d-%s", "ts": 0, "products": [{"id": "c-%d"}]}\n' \
            "$((k % 40))" "$run" "$((k % 6 + 1))"
    done
} >"$work/traffic.jsonl"
(
    "$build/vitrine-replay" --brokers "$brokers" --topic "$run-events" --jsonl "$work/traffic.jsonl" \
        --shift-time --rate 10 --repeat 3 >"$work/traffic.log" 2>&1 &
    replay=$!
    trap 'kill $replay 2>/dev/null; exit 0' TERM
    for _ in $(seq 1 600); do
        curl -fsS -o /dev/null -H "Authorization: Bearer storefront-$run" \
            "$base/v1/sessions/$session/segment" 2>/dev/null || true
        curl -fsS -o /dev/null -H "Authorization: Bearer storefront-$run" \
            "$base/v1/sessions/bg1-$run/recommendations?limit=4" 2>/dev/null || true
        sleep 0.2
    done
    kill $replay 2>/dev/null
) &
traffic_pid=$!

# ---- wait until the data is there (bounded) ----

wait_for() { # DESCRIPTION SECONDS COMMAND...
    local what=$1 seconds=$2
    shift 2
    for _ in $(seq 1 $((seconds * 4))); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.25
    done
    tail -n 20 "$work/vitrine.log" >&2
    vitrine_die "timed out after ${seconds}s waiting for $what"
}
analyst_get() {
    curl -fsS -H "Authorization: Bearer $token" "$base$1"
}
wait_for "the session's $session_events events" 60 \
    bash -c "curl -fsS -H 'Authorization: Bearer $token' '$base/v1/profiles/$session' | grep -q '\"events\":$session_events,'"
wait_for "an active alert" 60 \
    bash -c "curl -fsS -H 'Authorization: Bearer $token' '$base/v1/alerts?state=active' | grep -q '\"count\":[1-9]'"
wait_for "trending products" 30 \
    bash -c "curl -fsS -H 'Authorization: Bearer $token' '$base/v1/trending?limit=3' | grep -q '\"product_id\"'"
wait_for "the visitor of $visitor_session" 60 \
    bash -c "curl -fsS -H 'Authorization: Bearer $token' '$base/v1/profiles/$visitor_session' | grep -q '\"linked\":true'"
wait_for "the consent refusal of $denied_session" 60 \
    bash -c "curl -fsS -H 'Authorization: Bearer $token' '$base/v1/profiles/$denied_session' | grep -q '\"personalised\":false'"
# The segment thread counts members every 5 s, and each instance sends its served counts
# every 5 s. The served counts come from the background traffic's segment requests.
wait_for "segment member counts" 60 \
    bash -c "curl -fsS -H 'Authorization: Bearer $token' '$base/v1/stats/segments' | grep -q '\"counted_at\":\"'"
wait_for "served segment counts" 60 \
    bash -c "curl -fsS -H 'Authorization: Bearer $token' '$base/v1/stats/segments' | grep -q '\"served\":[1-9]'"
analyst_get "/v1/profiles/$session" >"$work/profile.json"
vitrine_log "profile, alert, trending and segment counts are in; starting the browser"

# ---- the browser test ----

mkdir -p "$shots"
VITRINE_UI_URL="$base/ui/" VITRINE_UI_TOKEN="$token" VITRINE_UI_SESSION="$session" \
VITRINE_UI_VISITOR_SESSION="$visitor_session" VITRINE_UI_VISITOR="$visitor" \
VITRINE_UI_DENIED_SESSION="$denied_session" \
VITRINE_UI_SCREENSHOTS="$shots" VITRINE_UI_CHROMIUM="${VITRINE_UI_CHROMIUM:-/usr/bin/chromium}" \
    timeout 180 node --test --test-reporter=spec "$here/dashboard.test.mjs" ||
    { tail -n 20 "$work/vitrine.log" >&2; vitrine_die "dashboard test failed (see above)"; }
vitrine_log "screenshots in $shots: dashboard.png, segments-profile.png, segments-panel.png" \
    "and each as .de.png"
