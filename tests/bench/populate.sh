#!/usr/bin/env bash
# Write a realistic profile population into a running vitrine through Kafka, and measure
# Redis memory around it.
#
#   tests/bench/populate.sh --build DIR --data DIR --catalog FILE --brokers LIST
#       --topic NAME --http URL --redis-port PORT --sessions N --work DIR
#       [--redis-host HOST] [--tag TAG] [--heavy-every N] [--timeout SECONDS]
#       [--group GROUP] [--max-ahead N]
#
# Inputs:
#   - the build with bench_populate and vitrine-replay;
#   - the real data, with the REES46 cosmetics events under DATA/rees46_cosmetics;
#   - the catalog vitrine runs with, the topic it consumes, its base URL (for /metrics) and
#     its Redis.
# Nothing else may write to that Redis or produce to that topic meanwhile, because the
# figures are differences.
#
# Steps: bench_populate derives N sessions from the real sessions (every 100th near the
# profile caps; see tests/bench/populate.c) into WORK/population.jsonl; Redis INFO
# used_memory is read; vitrine-replay produces the events as fast as vitrine's consumer group
# (--group, default vitrine) commits them, at most --max-ahead records (default 50,000)
# ahead, because the local broker keeps only 5 MiB per partition and drops older records
# (docs/tools.md); the records are about 175 bytes, so 50,000 of them over 4 partitions stay
# far below that, while vitrine commits its offsets every 5 s (librdkafka's default
# auto.commit.interval.ms). The script waits
# until vitrine has handled them all (the sum of vitrine_events_total over all outcomes
# grew by the number of records; at most --timeout seconds, default 600); used_memory is
# read again.
#
# Output: WORK/population.ids.typical and WORK/population.ids.heavy (session ids for load
# tests, 1,000 of each kind at most), progress on stderr and, as the last line on stdout:
#
#   result: sessions=N typical=T heavy=H records=R applied=A other_outcomes=O seconds=S
#           events_per_s=E redis_used_before=B redis_used_after=C
#           ids_typical=PATH ids_heavy=PATH
#
# (one line). seconds runs from the start of the replay to the last record handled, so
# events_per_s is bounded by the pacing above; bench_ingest measures the sustained rate. Exit status 0 on success, 1 when a step fails or times
# out, 2 for invalid arguments.
set -euo pipefail

die() {
    printf 'populate.sh: %s\n' "$1" >&2
    exit "${2:-1}"
}

build='' data='' catalog='' brokers='' topic='' http='' redis_port='' sessions='' work=''
redis_host=127.0.0.1 tag=bench heavy_every=100 timeout=600 group=vitrine max_ahead=50000
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || die "option $1 needs a value" 2
    case $1 in
    --build) build=$2 ;;
    --data) data=$2 ;;
    --catalog) catalog=$2 ;;
    --brokers) brokers=$2 ;;
    --topic) topic=$2 ;;
    --http) http=$2 ;;
    --redis-port) redis_port=$2 ;;
    --redis-host) redis_host=$2 ;;
    --sessions) sessions=$2 ;;
    --work) work=$2 ;;
    --tag) tag=$2 ;;
    --heavy-every) heavy_every=$2 ;;
    --timeout) timeout=$2 ;;
    --group) group=$2 ;;
    --max-ahead) max_ahead=$2 ;;
    *) die "unknown option $1; see the header of $0" 2 ;;
    esac
    shift 2
done
for name in build data catalog brokers topic http redis_port sessions work; do
    [ -n "${!name}" ] || die "--${name//_/-} is required" 2
done
[[ $timeout =~ ^[0-9]+$ ]] || die "invalid --timeout $timeout: expected whole seconds" 2
mkdir -p "$work"

redis_used_memory() {
    redis-cli -h "$redis_host" -p "$redis_port" INFO memory |
        awk -F: '/^used_memory:/ { gsub("\r", "", $2); print $2 }'
}

# Records vitrine has handled: applied, skipped, rejected or dead-lettered.
handled_records() {
    curl -fsS "$http/metrics" | awk '/^vitrine_events_total\{/ { s += $2 } END { printf "%d", s }'
}

applied_records() {
    curl -fsS "$http/metrics" |
        awk '/^vitrine_events_total\{.*outcome="applied"/ { s += $2 } END { printf "%d", s }'
}

events=$work/population.jsonl
event_args=()
for f in "$data"/rees46_cosmetics/customer_data_*.csv; do
    event_args+=(--events "$f")
done
"$build/bench_populate" --catalog "$catalog" "${event_args[@]}" \
    --sessions "$sessions" --heavy-every "$heavy_every" --tag "$tag" \
    --ids-out "$work/population.ids" -o "$events" >"$work/populate.out" ||
    die "bench_populate failed"
generated=$(tail -n 1 "$work/populate.out")
records=$(sed -n 's/.* records=\([0-9]*\).*/\1/p' <<<"$generated")
[ -n "$records" ] || die "bench_populate printed no record count: $generated"
printf 'populate.sh: %s\n' "$generated" >&2

used_before=$(redis_used_memory)
handled_before=$(handled_records)
applied_before=$(applied_records)
started=$(date +%s.%N)
"$build/vitrine-replay" --brokers "$brokers" --topic "$topic" --jsonl "$events" \
    --max-ahead "$max_ahead" --wait-group "$group" \
    --summary-json "$work/population.replay.json" 2>"$work/population.replay.log" ||
    die "vitrine-replay failed; see $work/population.replay.log"

deadline=$(($(date +%s) + timeout))
handled=0
while :; do
    handled=$(($(handled_records) - handled_before))
    [ "$handled" -ge "$records" ] && break
    [ "$(date +%s)" -lt "$deadline" ] ||
        die "vitrine handled $handled of $records records within $timeout s"
    sleep 0.2
done
finished=$(date +%s.%N)
applied=$(($(applied_records) - applied_before))
used_after=$(redis_used_memory)
seconds=$(awk -v a="$started" -v b="$finished" 'BEGIN { printf "%.2f", b - a }')
rate=$(awk -v n="$records" -v s="$seconds" 'BEGIN { printf "%.0f", n / s }')

printf 'result: %s records=%s applied=%s other_outcomes=%s seconds=%s events_per_s=%s redis_used_before=%s redis_used_after=%s ids_typical=%s ids_heavy=%s\n' \
    "$(sed -e 's/^result: //' -e 's/ records=[0-9]*//' -e 's/ real_sessions=[0-9]*//' \
        -e 's/ real_records=[0-9]*//' <<<"$generated")" \
    "$records" "$applied" "$((handled - applied))" "$seconds" "$rate" "$used_before" \
    "$used_after" "$work/population.ids.typical" "$work/population.ids.heavy"
