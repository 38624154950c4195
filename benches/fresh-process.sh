#!/usr/bin/env bash
# The Exim-fork case: a whole `mtasts lookup` process, from exec to answer, with a warm shared
# cache (SQLite file, and Redis when redis-server is installed). Prints mean, p50 and p95 in
# milliseconds over N runs. Everything runs on loopback against the test world.
#
#   benches/fresh-process.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-200}

cargo build --release --locked -q -p mtasts-cli -p mtasts-testworld
bin=target/release/mtasts
tmp=$(mktemp -d)
cleanup() {
  exec 3>&- 2>/dev/null || true
  [ -n "${world_pid:-}" ] && kill "$world_pid" 2>/dev/null || true
  [ -n "${redis_pid:-}" ] && kill "$redis_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# The test world: DNS + HTTPS on loopback; it serves until its stdin closes.
mkfifo "$tmp/world-in"
target/release/mtasts-testworld < "$tmp/world-in" > "$tmp/world.json" &
world_pid=$!
exec 3> "$tmp/world-in"
for _ in $(seq 100); do [ -s "$tmp/world.json" ] && break; sleep 0.05; done
read -r dns port ca < <(python3 -c 'import json,sys; w=json.load(open(sys.argv[1])); print(w["dns"], w["https_port"], w["ca_pem"])' "$tmp/world.json")

measure() { # label cache-location
  local label=$1 cache=$2
  local args=(--nameserver "$dns" --trust-roots "$ca" --policy-port "$port" --cache "$cache" -q lookup s01.mtasts.test)
  "$bin" "${args[@]}" > /dev/null  # warm the cache
  local times=()
  for _ in $(seq "$runs"); do
    local t0 t1
    t0=$(date +%s%N)
    "$bin" "${args[@]}" > /dev/null
    t1=$(date +%s%N)
    times+=($(( (t1 - t0) / 1000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk -v label="$label" -v n="$runs" '
    { v[NR] = $1; sum += $1 }
    END { printf "%-34s mean %6.2f ms  p50 %6.2f ms  p95 %6.2f ms  (%d runs)\n",
          label, sum / NR / 1000, v[int(NR * 0.5)] / 1000, v[int(NR * 0.95)] / 1000, n }'
}

echo "fresh process, warm cache, start to answer (mtasts lookup):"
measure "memory (cold: fetches each time)" memory
measure "SQLite file" "$tmp/cache.db"
if command -v redis-server > /dev/null; then
  rport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  redis-server --bind 127.0.0.1 --port "$rport" --save "" --appendonly no --dir "$tmp" > /dev/null &
  redis_pid=$!
  for _ in $(seq 100); do redis-cli -p "$rport" ping > /dev/null 2>&1 && break; sleep 0.05; done
  measure "Redis" "redis://127.0.0.1:$rport/0"
fi
