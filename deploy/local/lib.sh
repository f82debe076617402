# Shared shell functions of tests/run.sh and deploy/local/demo.sh: install what is missing,
# build, start a private redis-server and the local Kafka broker on loopback, and stop
# everything that was started when the calling script exits.
#
# Source it from bash after setting VITRINE_ROOT to the checkout.

VITRINE_PACKAGES=(build-essential cmake pkg-config libmicrohttpd-dev libhiredis-dev
                  librdkafka-dev libcjson-dev libcriterion-dev redis-server redis-tools curl)

# PIDs of the processes this script started, stopped in reverse order on exit. Servers
# run in their own session (setsid), so that Ctrl-C in the terminal reaches only the
# script, which then stops vitrine before Redis and Kafka.
VITRINE_STARTED_PIDS=()

vitrine_log() {
    printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

vitrine_die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Install the Debian packages that are missing: VITRINE_PACKAGES and the packages named as
# arguments. Needs root (or sudo) only when something is missing.
vitrine_install_dependencies() {
    local missing=()
    local pkg
    for pkg in "${VITRINE_PACKAGES[@]}" "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
            missing+=("$pkg")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0

    vitrine_log "installing: ${missing[*]}"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || vitrine_die "missing packages ${missing[*]}; run as root or install them"
        sudo=(sudo)
    fi
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null ||
        vitrine_die "apt-get update failed"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >/dev/null || vitrine_die "apt-get install ${missing[*]} failed"
}

# vitrine_build BUILD_DIR [cmake options...]
vitrine_build() {
    local dir=$1
    shift
    cmake -S "$VITRINE_ROOT" -B "$dir" -DVITRINE_WERROR=ON "$@" >/dev/null ||
        vitrine_die "cmake configure failed for $dir"
    cmake --build "$dir" -j "$(nproc)" >"$dir/build.log" 2>&1 || {
        tail -n 40 "$dir/build.log" >&2
        vitrine_die "build failed in $dir (full log: $dir/build.log)"
    }
}

# vitrine_test_catalog BUILD DATA OUT: convert the catalog the tests read (REES46 items and
# events, the noon perfumes) from the real data in DATA to OUT with BUILD's
# vitrine-catalog. Stops with the converter's messages when the conversion fails.
vitrine_test_catalog() {
    local build=$1 data=$2 out=$3
    "$build/vitrine-catalog" --rees46-items "$data/rees46_cosmetics/item.csv" \
        $(for f in "$data"/rees46_cosmetics/customer_data_*.csv; do printf -- '--rees46-events %s ' "$f"; done) \
        --noon "$data/perfume_catalogs/noon_perfumes.csv" \
        -o "$out" 2>"$out.log" ||
        { cat "$out.log" >&2; vitrine_die "catalog conversion failed"; }
}

# vitrine_stop_pid PID: SIGTERM a process this script started, SIGKILL it after 10 s, and
# drop it from the list vitrine_stop_started works through.
vitrine_stop_pid() {
    local pid=$1 kept=() p
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    for p in "${VITRINE_STARTED_PIDS[@]}"; do
        [ "$p" = "$pid" ] || kept+=("$p")
    done
    VITRINE_STARTED_PIDS=("${kept[@]}")
}

# vitrine_stop_started: stop everything this script started, the newest first.
vitrine_stop_started() {
    local i
    for ((i = ${#VITRINE_STARTED_PIDS[@]} - 1; i >= 0; i--))
    do
        vitrine_stop_pid "${VITRINE_STARTED_PIDS[$i]}"
    done
    VITRINE_STARTED_PIDS=()
}

# A TCP port on 127.0.0.1 that nothing listens on right now.
vitrine_free_port() {
    local port low=20000 span=40000 ephemeral
    # Below the kernel's range for outgoing connections when there is room: a port in that
    # range can be taken by a client socket between this check and the server's bind.
    ephemeral=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 0)
    if [ "${ephemeral:-0}" -gt 12000 ]; then
        low=10000
        span=$((ephemeral - low))
    fi
    for _ in $(seq 1 100); do
        port=$((low + RANDOM % span))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    vitrine_die "no free TCP port found on 127.0.0.1"
}

# vitrine_start_redis WORK_DIR: sets VITRINE_REDIS_PORT.
vitrine_start_redis() {
    local dir=$1 port pid
    for _ in 1 2 3; do
        port=$(vitrine_free_port)
        setsid redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
            --dir "$dir" --logfile "$dir/redis.log" &
        pid=$!
        for _ in $(seq 1 50); do
            if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
                VITRINE_STARTED_PIDS+=("$pid")
                VITRINE_REDIS_PORT=$port
                vitrine_log "redis-server on 127.0.0.1:$port (pid $pid)"
                return 0
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill "$pid" 2>/dev/null || true
    done
    vitrine_die "redis-server did not start (see $dir/redis.log)"
}

# vitrine_start_kafka BUILD_DIR WORK_DIR [--topic name:partitions ...]: sets VITRINE_BROKERS.
vitrine_start_kafka() {
    local build=$1 dir=$2 pid
    shift 2
    rm -f "$dir/bootstrap"
    setsid "$build/vitrine-kafka-local" --bootstrap-file "$dir/bootstrap" "$@" \
        >"$dir/kafka.out" 2>"$dir/kafka.log" &
    pid=$!
    for _ in $(seq 1 100); do
        if [ -s "$dir/bootstrap" ]; then
            VITRINE_STARTED_PIDS+=("$pid")
            VITRINE_BROKERS=$(cat "$dir/bootstrap")
            vitrine_log "local Kafka broker at $VITRINE_BROKERS (pid $pid)"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$dir/kafka.log" >&2
    vitrine_die "local Kafka broker did not start (see $dir/kafka.log)"
}

# vitrine_wait_http URL SECONDS [PID]: wait until URL answers 200; give up early when the
# process PID has exited.
vitrine_wait_http() {
    local url=$1 seconds=$2 pid=${3:-}
    for _ in $(seq 1 $((seconds * 10))); do
        if curl -fsS -o /dev/null "$url" 2>/dev/null; then
            return 0
        fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
    done
    return 1
}
