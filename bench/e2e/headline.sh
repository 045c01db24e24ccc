#!/usr/bin/env bash
# The performance issue's headline figures in one command: every target benchmark, one after another, ours beside
# shadowsocks-libev in each (about 12 minutes on 2 cores). Runs the native build users install: $SS_BINARY if set,
# else a fresh `dotnet publish` (needs clang) into $TMPDIR. Prints each script's summary lines; record them in
# RESULTS.md with the date.
# usage: bench/e2e/headline.sh
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
if [ -z "${SS_BINARY:-}" ]; then
  OUT="${TMPDIR:-/tmp}/shadowsocks-native"
  dotnet publish "$ROOT/Pipeline.Hosts" -c Release -r linux-x64 -o "$OUT" -v q -nologo >/dev/null
  export SS_BINARY="$OUT/shadowsocks"
fi
export SKIP_BUILD=1
echo "build: $SS_BINARY ($(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')), $(date -u '+%F %H:%M UTC')"
cd "$HERE"
step() { # title, command...
  echo "== $1"
  shift
  "$@" 2>&1 | tail -"${TAIL:-4}"
}
step "connection rate: conn_rate.py 5 3 50" python3 conn_rate.py 5 3 50
TAIL=10 step "bulk: throughput.sh 3 3 (aes-256-gcm, chacha20-ietf-poly1305; 1 and 8 streams)" \
  bash throughput.sh 3 3 "aes-256-gcm chacha20-ietf-poly1305" "1 8"
step "idle memory: idle_memory.py 5000 1" python3 idle_memory.py 5000 1
step "start-up: startup.py 10" python3 startup.py 10
step "silent clients: silent_memory.py 5000 2" python3 silent_memory.py 5000 2
step "load: load.py 1000 1 2" python3 load.py 1000 1 2
step "connection rate again, at the end: conn_rate.py 5 3 50" python3 conn_rate.py 5 3 50
TAIL=6 step "idle wake-ups: idle_wakeups.py 130 128" python3 idle_wakeups.py 130 128
echo "done: $(date -u '+%F %H:%M UTC')"
