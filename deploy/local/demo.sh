#!/usr/bin/env bash
# The whole path on the real REES46 cosmetics-shop clickstream: build vitrine, start a
# private redis-server and the local Kafka broker, convert the real catalogues, start
# vitrine, replay the real events through Kafka, then show a real session's segment,
# profile and recommendations.
#
#   deploy/local/demo.sh            leave everything running until Ctrl-C
#   deploy/local/demo.sh --exit     stop everything after printing
#   deploy/local/demo.sh --speed 60 replay at 60 times the recorded pace
#
# VITRINE_HTTP_PORT sets the HTTP port (default 8080). VITRINE_DATA points to the real
# data (default: ../shared/data/real next to the checkout).
set -euo pipefail

VITRINE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$VITRINE_ROOT/deploy/local/lib.sh"

exit_after=false
speed=max
while [ $# -gt 0 ]; do
    case $1 in
    --exit) exit_after=true ;;
    --speed)
        [ $# -ge 2 ] || vitrine_die "--speed needs a value, such as 60 or max"
        speed=$2
        shift
        ;;
    -h | --help)
        sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *) vitrine_die "unknown option $1; use --exit, --speed N or --help" ;;
    esac
    shift
done

data=${VITRINE_DATA:-$VITRINE_ROOT/../shared/data/real}
[ -d "$data/rees46_cosmetics" ] ||
    vitrine_die "real data not found at $data; set VITRINE_DATA to the folder with rees46_cosmetics/"
port=${VITRINE_HTTP_PORT:-8080}
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    vitrine_die "port $port is in use; set VITRINE_HTTP_PORT to a free port"
fi

work="$VITRINE_ROOT/build/demo"
mkdir -p "$work"
trap vitrine_stop_started EXIT
trap 'exit 130' INT TERM

vitrine_install_dependencies
vitrine_log "building (release)"
vitrine_build "$VITRINE_ROOT/build/release" -DCMAKE_BUILD_TYPE=Release -DVITRINE_TESTS=OFF
bin="$VITRINE_ROOT/build/release"

vitrine_log "converting the real catalogues"
"$bin/vitrine-catalog" \
    --rees46-items "$data/rees46_cosmetics/item.csv" \
    $(for f in "$data"/rees46_cosmetics/customer_data_*.csv; do printf -- '--rees46-events %s ' "$f"; done) \
    --noon "$data/perfume_catalogs/noon_perfumes.csv" \
    --ebay-men "$data/perfume_catalogs/ebay_mens_perfume.csv" \
    --ebay-women "$data/perfume_catalogs/ebay_womens_perfume.csv" \
    --fragdb "$data/perfume_catalogs/fragdb_sample_fragrances.csv" \
    -o "$work/catalog.jsonl" 2>"$work/catalog.log" ||
    { cat "$work/catalog.log" >&2; vitrine_die "catalog conversion failed"; }
vitrine_log "catalog: $(wc -l <"$work/catalog.jsonl") products"

vitrine_start_redis "$work"
vitrine_start_kafka "$bin" "$work" --topic events:4 --topic events.dead-letter:1

vitrine_log "starting vitrine on port $port"
VITRINE_HTTP_PORT=$port VITRINE_HTTP_BIND=127.0.0.1 \
    VITRINE_REDIS_PORT=$VITRINE_REDIS_PORT VITRINE_KAFKA_BROKERS=$VITRINE_BROKERS \
    VITRINE_CATALOG_PATH="$work/catalog.jsonl" \
    VITRINE_HTTP_OPENAPI_PATH="$VITRINE_ROOT/openapi/openapi.yaml" \
    VITRINE_ALERTS_RULES_PATH="$VITRINE_ROOT/deploy/alerts.example.json" VITRINE_ALERTS_PERIOD_MS=1000 \
    VITRINE_SEGMENTS_PATH="$VITRINE_ROOT/deploy/segments.example.json" \
    VITRINE_SEGMENTS_COUNT_INTERVAL_S=5 VITRINE_SEGMENTS_COUNT_SAMPLE=100000 \
    setsid "$bin/vitrine" >"$work/vitrine.log" 2>&1 &
vitrine_pid=$!
VITRINE_STARTED_PIDS+=("$vitrine_pid")
vitrine_wait_http "http://127.0.0.1:$port/readyz" 60 "$vitrine_pid" ||
    { tail -n 30 "$work/vitrine.log" >&2; vitrine_die "vitrine did not become ready"; }

# Wait for the consumer group to assign the partitions, so the timing below measures
# ingestion and not the group join.
for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$port/metrics" | grep -q '^vitrine_consumer_lag{' && break
    sleep 0.1
done

vitrine_log "replaying the REES46 events as Mapp Data Streams records (speed $speed)"
started=$(date +%s.%N)
"$bin/vitrine-replay" --brokers "$VITRINE_BROKERS" --topic events --format mapp \
    --speed "$speed" --summary-json "$work/replay.json" \
    "$data"/rees46_cosmetics/customer_data_*.csv
records=$(sed -n 's/.*"records":[ ]*\([0-9]*\).*/\1/p' "$work/replay.json")
[ -n "$records" ] || vitrine_die "replay summary has no record count ($work/replay.json)"

# Wait until vitrine has handled every record (applied, skipped or dead-lettered).
handled=0
for _ in $(seq 1 600); do
    handled=$(curl -fsS "http://127.0.0.1:$port/metrics" |
        awk '/^vitrine_events_total\{/ { sum += $2 } END { printf "%d", sum }')
    [ "$handled" -ge "$records" ] && break
    sleep 0.1
done
finished=$(date +%s.%N)
[ "$handled" -ge "$records" ] || vitrine_die "only $handled of $records records were handled; see $work/vitrine.log"
rate=$(awk -v n="$records" -v a="$started" -v b="$finished" 'BEGIN { printf "%.0f", n / (b - a) }')

# The real session with the most views, carts and purchases in the replayed files.
session=$(awk -F, 'FNR > 1 && $6 != "" && $2 != "remove_from_cart" { n[$6]++ }
                   END { for (s in n) if (n[s] > best) { best = n[s]; top = s } print top }' \
    "$data"/rees46_cosmetics/customer_data_*.csv)

# Wait for a segment count that started after the last record was applied: the sample
# (100,000) is larger than the replay, so the counts are exact.
applied_ms=$(awk -v b="$finished" 'BEGIN { printf "%d", b * 1000 }')
for _ in $(seq 1 150); do
    counted_ms=$(curl -fsS "http://127.0.0.1:$port/v1/stats/segments" |
        sed -n 's/.*"counted_at":"\([^"]*\)".*/\1/p' | { read -r t; [ -n "$t" ] && date -d "$t" +%s%3N || echo 0; })
    [ "$counted_ms" -gt "$applied_ms" ] && break
    sleep 0.2
done

show() {
    printf '\n== %s\n' "$1"
    curl -fsS -w '\n(%{http_code}, %{time_total} s)\n' "http://127.0.0.1:$port$2"
}
show "segment of session $session, with the analyst segments explained" "/v1/sessions/$session/segment?explain=true"
show "profile of session $session" "/v1/profiles/$session"
show "recommendations for session $session" "/v1/sessions/$session/recommendations?limit=5"
show "alerts (the example rules on the ordinary stream)" "/v1/alerts?state=all"
show "segment members (deploy/segments.example.json) and how often they were served" "/v1/stats/segments"

printf '\n== figures\n'
printf 'records replayed:          %s (%s rows)\n' "$records" \
    "$(sed -n 's/.*"rows":[ ]*\([0-9]*\).*/\1/p' "$work/replay.json")"
printf 'records handled by vitrine: %s, applied %s, dead-lettered %s\n' "$handled" \
    "$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '/^vitrine_events_total\{.*outcome="applied"/ { s += $2 } END { printf "%d", s }')" \
    "$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '/^vitrine_events_total\{.*outcome="dead_letter"/ { s += $2 } END { printf "%d", s }')"
printf 'replay to profiles:        %s records per second, from the first record produced to the last applied\n' "$rate"
printf 'ingest batches:            %s\n' "$(curl -fsS "http://127.0.0.1:$port/metrics" |
    awk '/^vitrine_ingest_batches_total/ { b = $2 } /^vitrine_ingest_batch_records_total/ { r = $2 }
         /^vitrine_ingest_batch_seconds_total/ { t = $2 }
         END { printf "%d batches, %d records, %.3f s in batches (%.0f records per second of batch time)", b, r, t, (t > 0 ? r / t : 0) }')"
printf 'alert evaluations:         %s, alerts fired %s\n' \
    "$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '/^vitrine_alert_evaluations_total\{result="ok"/ { printf "%d", $2 }')" \
    "$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '/^vitrine_alerts_fired_total\{/ { s += $2 } END { printf "%d", s }')"
printf 'visitors:                  %s sessions linked, %s records added to visitors, %s refused, %s blocked ids\n' \
    "$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '/^vitrine_visitor_links_total/ { printf "%d", $2 }')" \
    "$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '/^vitrine_visitor_records_total\{outcome="applied"/ { printf "%d", $2 }')" \
    "$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '/^vitrine_visitor_records_total\{outcome="refused"/ { printf "%d", $2 }')" \
    "$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '/^vitrine_visitor_ids_blocked_total/ { printf "%d", $2 }')"
printf 'segment members:           %s\n' "$(curl -fsS "http://127.0.0.1:$port/v1/stats/segments" |
    sed 's/},{/}\n{/g' | sed -n 's/.*"name":"\([^"]*\)","members":\([0-9null]*\).*/\1 \2/p' | paste -sd, | sed 's/,/, /g')"
printf 'logs and data:             %s\n' "$work"

if $exit_after; then
    vitrine_log "stopping (--exit)"
    exit 0
fi
printf '\nvitrine is running on http://127.0.0.1:%s (try /v1/sessions/%s/recommendations); Ctrl-C stops everything.\n' "$port" "$session"
wait
