# Shared helpers for the end-to-end benchmark scripts (sourced, not run).
# Everything listens on 127.0.0.1; every process started here is killed on exit.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SS="${SS_BINARY:-$ROOT/Pipeline.Hosts/bin/Release/net10.0/shadowsocks}" # SS_BINARY: e.g. the native (AOT) publish
PIDS=()

cleanup() {
  for pid in "${PIDS[@]:-}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  rm -f "$GIVEN_PORTS"
}
trap cleanup EXIT

build() {
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    dotnet build "$ROOT/Pipeline.Hosts" -c Release -v q -nologo >/dev/null
  fi
  for tool in ss-server ss-tunnel ss-local; do
    command -v "$tool" >/dev/null || { echo "$tool not found: apt-get install shadowsocks-libev" >&2; exit 1; }
  done
}

GIVEN_PORTS="$(mktemp)" # ports handed out in this run: the kernel may give the same port to two binds in a row

free_port() {
  python3 - "$GIVEN_PORTS" <<'PY'
import socket, sys
given = set(open(sys.argv[1]).read().split())
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = str(s.getsockname()[1]); s.close()
    if p not in given:
        break
open(sys.argv[1], "a").write(p + "\n")
print(p)
PY
}

wait_port() { # port [seconds]
  local port=$1 deadline=$((SECONDS + ${2:-10}))
  # Look for the listening socket instead of connecting: a probe connection would reach the destination.
  until ss -Hltn "sport = :$port" | grep -q LISTEN; do
    [ $SECONDS -ge $deadline ] && { echo "port $port never opened" >&2; return 1; }
    sleep 0.05
  done
}

start() { # command...: runs in the background, records the pid
  "$@" >/dev/null 2>&1 &
  PIDS+=($!)
  LAST_PID=$!
}

stop_last_two() {
  local n=${#PIDS[@]}
  for i in $((n - 1)) $((n - 2)); do
    kill "${PIDS[$i]}" 2>/dev/null || true
    wait "${PIDS[$i]}" 2>/dev/null || true
    PIDS[$i]=""
  done
}

median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:]]; print(f"{statistics.median(v):.2f}")' "$@"; }
