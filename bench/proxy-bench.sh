#!/usr/bin/env bash
# bedrock-meter against nginx `proxy_pass` and against no hop, in one run on one machine.
# Method: bench/README.md ("proxy-bench"). Results are spliced into bench/RESULTS.md.
#
#   bench/proxy-bench.sh            # every scenario (about 6 minutes)
#   bench/proxy-bench.sh soak       # RSS across a million requests in 10 minutes
#   bench/proxy-bench.sh alloc      # heap allocations per call, counted by valgrind's dhat
#
# Knobs (environment): WORKERS (tokio worker threads = nginx worker processes, default 1),
# PROXY_CPUS (cores for bedrock-meter and nginx, default 1), DRIVER_CPUS (cores for the
# simulator and the load generator, default 0), RATE, SECS, ROUNDS, CONNS, ONLY (comma list of
# fixed,saturation,families,features,limits,upstream,stream,memory,scrape), SOAK_REQUESTS, SOAK_SECS, BASE_PORT, NO_RESULTS=1
# (print only, leave RESULTS.md alone), METER_BIN (another bedrock-meter build to measure; the
# simulator always comes from this tree's build), ALLOC_CALLS (the alloc mode's two call counts,
# default "2000 6000").
set -euo pipefail

mode=${1:-run}
case "$mode" in
run | soak | alloc) ;;
*)
    echo "usage: $0 [run|soak|alloc]" >&2
    exit 2
    ;;
esac
cd "$(dirname "$0")/.."

# The command as given, knobs set in the environment included, for RESULTS.md.
command_line="bench/proxy-bench.sh $mode"
for v in ALLOC_CALLS METER_BIN SOAK_SECS SOAK_REQUESTS ONLY CONNS ROUNDS SECS RATE DRIVER_CPUS PROXY_CPUS WORKERS; do
    if [ -n "${!v:-}" ]; then
        command_line="$v=${!v} $command_line"
    fi
done

WORKERS=${WORKERS:-1}
PROXY_CPUS=${PROXY_CPUS:-1}
DRIVER_CPUS=${DRIVER_CPUS:-0}
RATE=${RATE:-1000}
SECS=${SECS:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
ONLY=${ONLY:-}
SOAK_REQUESTS=${SOAK_REQUESTS:-1000000}
SOAK_SECS=${SOAK_SECS:-600}
BASE_PORT=${BASE_PORT:-19180}

if ! command -v nginx >/dev/null; then
    echo "nginx not found; installing Debian's nginx-light" >&2
    apt-get install -y nginx-light >&2
fi
command -v taskset >/dev/null || {
    echo "taskset (util-linux) is needed" >&2
    exit 1
}

cargo build --release --bin bedrock-meter --example proxy-bench >&2
target=${CARGO_TARGET_DIR:-target}
bin=${METER_BIN:-$target/release/bedrock-meter}
loadgen=$target/release/examples/proxy-bench

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Many sockets at once in the open-streams scenario.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
    for _ in $(seq "${2:-200}"); do
        port_free "$1" || return 0
        sleep 0.05
    done
    echo "nothing listens on port $1" >&2
    exit 1
}
sim=$BASE_PORT meter=$((BASE_PORT + 1)) admin=$((BASE_PORT + 2)) ngx=$((BASE_PORT + 3))
# The `features` scenario's other meters: without request metadata, and over TLS.
plain=$((BASE_PORT + 4)) plain_admin=$((BASE_PORT + 5)) tls=$((BASE_PORT + 6)) tls_admin=$((BASE_PORT + 7))
# The `limits` scenario's meters (limits in process, limits in Redis) and its redis-server.
lim=$((BASE_PORT + 8)) lim_admin=$((BASE_PORT + 9)) rlim=$((BASE_PORT + 10)) rlim_admin=$((BASE_PORT + 11))
redis=$((BASE_PORT + 12))
# The `features` scenario's meter without request facts (`--request-facts false`).
nofacts=$((BASE_PORT + 13)) nofacts_admin=$((BASE_PORT + 14))
# The `upstream` scenario's meter speaking HTTP/2 to the simulator (`--upstream-http2 true`).
h2up=$((BASE_PORT + 15)) h2up_admin=$((BASE_PORT + 16))
for p in $sim $meter $admin $ngx $plain $plain_admin $tls $tls_admin $lim $lim_admin $rlim $rlim_admin $redis $nofacts $nofacts_admin $h2up $h2up_admin; do
    port_free "$p" || {
        echo "port $p is taken; set BASE_PORT" >&2
        exit 1
    }
done

export BEDROCK_METER_LOG=warn
TOKIO_WORKER_THREADS=$WORKERS taskset -c "$DRIVER_CPUS" \
    "$target/release/bedrock-meter" simulate --listen "127.0.0.1:$sim" >"$tmp/sim.log" 2>&1 &
pids+=($!)

if [ "$mode" = alloc ]; then
    # Heap allocations per call: the meter under valgrind's dhat serves ALLOC_CALLS' two counts
    # of calls, a fresh process each time; the difference of the totals, divided by the
    # difference of the counts, is what a call allocates (start-up and shutdown cancel out).
    if ! command -v valgrind >/dev/null; then
        echo "valgrind not found; installing Debian's valgrind" >&2
        apt-get install -y valgrind >&2
    fi
    read -r calls_a calls_b <<<"${ALLOC_CALLS:-2000 6000}"
    wait_port "$sim"
    for calls in "$calls_a" "$calls_b"; do
        AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench TOKIO_WORKER_THREADS=1 \
            taskset -c "$PROXY_CPUS" valgrind --tool=dhat --dhat-out-file="$tmp/dhat.$calls.json" \
            "$bin" serve --listen "127.0.0.1:$meter" --admin-listen "127.0.0.1:$admin" \
            --upstream "http://127.0.0.1:$sim" --region us-east-1 >"$tmp/meter-dhat.log" 2>&1 &
        dhat_pid=$!
        wait_port "$meter" 1200
        taskset -c "$DRIVER_CPUS" "$loadgen" count --meter "127.0.0.1:$meter" \
            --requests "$calls" --conns 4
        kill -TERM "$dhat_pid"
        wait "$dhat_pid" || true
        for _ in $(seq 100); do
            port_free "$meter" && break
            sleep 0.1
        done
    done
    "$loadgen" alloc-report --dhat-a "$tmp/dhat.$calls_a.json" --dhat-b "$tmp/dhat.$calls_b.json" \
        --calls-a "$calls_a" --calls-b "$calls_b" --command "$command_line" --out "$tmp/section.md"
    marker=proxy-bench-alloc
    title="## proxy-bench alloc: heap allocations per call"
else
AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench TOKIO_WORKER_THREADS=$WORKERS \
    taskset -c "$PROXY_CPUS" "$bin" serve --listen "127.0.0.1:$meter" \
    --admin-listen "127.0.0.1:$admin" --upstream "http://127.0.0.1:$sim" \
    --region us-east-1 >"$tmp/meter.log" 2>&1 &
meter_pid=$!
pids+=("$meter_pid")

# A test CA and a certificate for 127.0.0.1 (openssl, Debian's), for the TLS meter.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=proxy-bench-ca -keyout "$tmp/ca.key" -out "$tmp/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=meter \
    -addext "subjectAltName=IP:127.0.0.1" -keyout "$tmp/tls.key" -out "$tmp/tls.csr" 2>/dev/null
openssl x509 -req -in "$tmp/tls.csr" -CA "$tmp/ca.crt" -CAkey "$tmp/ca.key" -CAcreateserial \
    -days 2 -copy_extensions copy -out "$tmp/tls.crt" 2>/dev/null
# Idle until the `features` scenario loads them; pinned with the others.
AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench TOKIO_WORKER_THREADS=$WORKERS \
    taskset -c "$PROXY_CPUS" "$bin" serve --listen "127.0.0.1:$plain" \
    --admin-listen "127.0.0.1:$plain_admin" --upstream "http://127.0.0.1:$sim" \
    --region us-east-1 --request-metadata false >"$tmp/meter-plain.log" 2>&1 &
plain_pid=$!
pids+=("$plain_pid")
AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench TOKIO_WORKER_THREADS=$WORKERS \
    taskset -c "$PROXY_CPUS" "$bin" serve --listen "127.0.0.1:$tls" \
    --admin-listen "127.0.0.1:$tls_admin" --upstream "http://127.0.0.1:$sim" \
    --region us-east-1 --tls-cert "$tmp/tls.crt" --tls-key "$tmp/tls.key" >"$tmp/meter-tls.log" 2>&1 &
tls_pid=$!
pids+=("$tls_pid")
AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench TOKIO_WORKER_THREADS=$WORKERS \
    taskset -c "$PROXY_CPUS" "$bin" serve --listen "127.0.0.1:$nofacts" \
    --admin-listen "127.0.0.1:$nofacts_admin" --upstream "http://127.0.0.1:$sim" \
    --region us-east-1 --request-facts false >"$tmp/meter-nofacts.log" 2>&1 &
nofacts_pid=$!
pids+=("$nofacts_pid")
AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench TOKIO_WORKER_THREADS=$WORKERS \
    taskset -c "$PROXY_CPUS" "$bin" serve --listen "127.0.0.1:$h2up" \
    --admin-listen "127.0.0.1:$h2up_admin" --upstream "http://127.0.0.1:$sim" \
    --region us-east-1 --upstream-http2 true >"$tmp/meter-h2up.log" 2>&1 &
h2up_pid=$!
pids+=("$h2up_pid")

# Limits that apply to every call and are never reached: four counters per call.
cat >"$tmp/limits.toml" <<EOF
[default]
requests_per_minute = 1000000000
tokens_per_minute = 1000000000000
daily_usd = "1000000"
monthly_usd = "9000000"
EOF
if ! command -v redis-server >/dev/null; then
    echo "redis-server not found; installing Debian's redis-server" >&2
    apt-get install -y redis-server >&2
fi
taskset -c "$DRIVER_CPUS" redis-server --port "$redis" --bind 127.0.0.1 --save "" \
    --appendonly no >"$tmp/redis.log" 2>&1 &
pids+=($!)
AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench TOKIO_WORKER_THREADS=$WORKERS \
    taskset -c "$PROXY_CPUS" "$bin" serve --listen "127.0.0.1:$lim" \
    --admin-listen "127.0.0.1:$lim_admin" --upstream "http://127.0.0.1:$sim" \
    --region us-east-1 --limits "$tmp/limits.toml" >"$tmp/meter-limits.log" 2>&1 &
lim_pid=$!
pids+=("$lim_pid")
AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench TOKIO_WORKER_THREADS=$WORKERS \
    taskset -c "$PROXY_CPUS" "$bin" serve --listen "127.0.0.1:$rlim" \
    --admin-listen "127.0.0.1:$rlim_admin" --upstream "http://127.0.0.1:$sim" \
    --region us-east-1 --limits "$tmp/limits.toml" --redis "redis://127.0.0.1:$redis/" \
    >"$tmp/meter-redis.log" 2>&1 &
rlim_pid=$!
pids+=("$rlim_pid")

# nginx as a plain extra hop: keep-alive both sides, no buffering (streams pass as they come),
# no access log, the same number of workers as bedrock-meter has threads.
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes $WORKERS;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 120s;
    upstream simulator {
        server 127.0.0.1:$sim;
        keepalive 1024;
        keepalive_requests 100000000;
    }
    server {
        listen 127.0.0.1:$ngx;
        client_max_body_size 16m;
        client_body_buffer_size 64k;
        location / {
            proxy_pass http://simulator;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 300s;
        }
    }
}
EOF
if [ "$mode" = run ]; then
    taskset -c "$PROXY_CPUS" nginx -p "$tmp/nginx" -e "$tmp/nginx/error.log" \
        -c "$tmp/nginx/nginx.conf" &
    nginx_pid=$!
    pids+=("$nginx_pid")
    wait_port "$ngx"
    nginx_workers=$(pgrep -P "$nginx_pid" | paste -sd, -)
fi
wait_port "$sim"
wait_port "$meter"
wait_port "$admin"
wait_port "$plain"
wait_port "$tls"
wait_port "$nofacts"
wait_port "$h2up"
wait_port "$redis"
wait_port "$lim"
wait_port "$rlim"

layout="bedrock-meter and nginx on CPU $PROXY_CPUS ($WORKERS tokio worker thread(s) / nginx worker process(es)); simulator and load generator on CPU $DRIVER_CPUS"

if [ "$mode" = run ]; then
    TOKIO_WORKER_THREADS=$WORKERS taskset -c "$DRIVER_CPUS" "$loadgen" run \
        --direct "127.0.0.1:$sim" --meter "127.0.0.1:$meter" --nginx "127.0.0.1:$ngx" \
        --admin "127.0.0.1:$admin" --meter-pid "$meter_pid" --nginx-pids "$nginx_workers" \
        --clk-tck "$(getconf CLK_TCK)" --rate "$RATE" --secs "$SECS" --rounds "$ROUNDS" \
        --conns "$CONNS" --only "$ONLY" --layout "$layout" --command "$command_line" \
        --meter-plain "127.0.0.1:$plain" --meter-plain-pid "$plain_pid" \
        --meter-tls "127.0.0.1:$tls" --meter-tls-pid "$tls_pid" --tls-ca "$tmp/ca.crt" \
        --meter-nofacts "127.0.0.1:$nofacts" --meter-nofacts-pid "$nofacts_pid" \
        --meter-h2up "127.0.0.1:$h2up" --meter-h2up-pid "$h2up_pid" \
        --meter-limits "127.0.0.1:$lim" --meter-limits-pid "$lim_pid" \
        --meter-redis "127.0.0.1:$rlim" --meter-redis-pid "$rlim_pid" \
        --out "$tmp/section.md"
    marker=proxy-bench
    title="## proxy-bench: bedrock-meter vs nginx proxy_pass"
else
    TOKIO_WORKER_THREADS=$WORKERS taskset -c "$DRIVER_CPUS" "$loadgen" soak \
        --meter "127.0.0.1:$meter" --meter-pid "$meter_pid" --requests "$SOAK_REQUESTS" \
        --secs "$SOAK_SECS" --command "$command_line" --out "$tmp/section.md"
    marker=proxy-bench-soak
    title="## proxy-bench soak: RSS across a long run"
fi

fi

if [ -n "${NO_RESULTS:-}" ]; then
    exit 0
fi
# Replace the section between this mode's markers in RESULTS.md (appended the first time).
results=bench/RESULTS.md
{
    echo "<!-- $marker:begin -->"
    echo "$title"
    cat "$tmp/section.md"
    echo "<!-- $marker:end -->"
} >"$tmp/block.md"
if grep -q "<!-- $marker:begin -->" "$results"; then
    awk -v begin="<!-- $marker:begin -->" -v end="<!-- $marker:end -->" -v block="$tmp/block.md" '
        $0 == begin { while ((getline line < block) > 0) print line; skip = 1; next }
        $0 == end { skip = 0; next }
        !skip { print }
    ' "$results" >"$tmp/results.md"
else
    { cat "$results"; echo; cat "$tmp/block.md"; } >"$tmp/results.md"
fi
cp "$tmp/results.md" "$results"
echo "wrote the $marker section of $results" >&2
