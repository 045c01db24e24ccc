#!/usr/bin/env bash
# Bulk throughput: iperf3 through tunnel -> server, ours and shadowsocks-libev alternately (A B A B ...).
# usage: bench/e2e/throughput.sh [rounds=3] [seconds=5] [methods="aes-256-gcm chacha20-ietf-poly1305"] [streams="1 8"]
# Reports Gbit/s (medians, and the ratio ours/libev) and what it costs: CPU seconds of tunnel + server per GB moved.
# SS_B=/path/to/another/shadowsocks: the second slot runs that build of ours instead of ss-libev (an A/B of two builds).
# OURS_METHOD=2022-blake3-aes-256-gcm: ours runs that method (with a fresh key) against the other slot's method from
# the list (ss-libev has no 2022 methods), e.g. OURS_METHOD=2022-blake3-aes-256-gcm bench/e2e/throughput.sh 3 5 aes-256-gcm
source "$(dirname "$0")/common.sh"
ROUNDS=${1:-3}; SECS=${2:-5}; METHODS=${3:-"aes-256-gcm chacha20-ietf-poly1305"}; STREAMS=${4:-"1 8"}
build
OURS_KEY=bench
[ -n "${OURS_METHOD:-}" ] && OURS_KEY=$("$SS" genkey -m "$OURS_METHOD")
command -v iperf3 >/dev/null || { echo "iperf3 not found: apt-get install iperf3" >&2; exit 1; }
IPERF_PORT=$(free_port)
start iperf3 -s -p "$IPERF_PORT"
wait_port "$IPERF_PORT"

cpu_ticks() { # pid... -> user + system clock ticks, summed
  local total=0 pid
  for pid in "$@"; do total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
  echo "$total"
}

run_one() { # impl method streams reverse -> "Gbit/s CPU-seconds-per-GB" (the CPU of tunnel + server)
  local impl=$1 method=$2 streams=$3 reverse=$4 sport tport server tunnel before after
  sport=$(free_port); tport=$(free_port)
  if [ "$impl" = ours ]; then
    local m=${OURS_METHOD:-$method}
    start "$SS" server -s 127.0.0.1 -p "$sport" -k "$OURS_KEY" -m "$m" -t 60 --forbidden-ip ""; server=$LAST_PID
    start "$SS" tunnel -s 127.0.0.1 -p "$sport" -l "$tport" -L "127.0.0.1:$IPERF_PORT" -k "$OURS_KEY" -m "$m" -t 60; tunnel=$LAST_PID
  elif [ -n "${SS_B:-}" ]; then
    start "$SS_B" server -s 127.0.0.1 -p "$sport" -k bench -m "$method" -t 60 --forbidden-ip ""; server=$LAST_PID
    start "$SS_B" tunnel -s 127.0.0.1 -p "$sport" -l "$tport" -L "127.0.0.1:$IPERF_PORT" -k bench -m "$method" -t 60; tunnel=$LAST_PID
  else
    start ss-server -s 127.0.0.1 -p "$sport" -k bench -m "$method" -t 60; server=$LAST_PID
    start ss-tunnel -s 127.0.0.1 -p "$sport" -l "$tport" -L "127.0.0.1:$IPERF_PORT" -k bench -m "$method" -t 60; tunnel=$LAST_PID
  fi
  wait_port "$sport"; wait_port "$tport"
  local flags=(-c 127.0.0.1 -p "$tport" -t "$SECS" -P "$streams" -J)
  [ "$reverse" = 1 ] && flags+=(-R)
  before=$(cpu_ticks "$server" "$tunnel")
  iperf3 "${flags[@]}" > "$RESULT_JSON"
  after=$(cpu_ticks "$server" "$tunnel")
  python3 -c 'import json,sys,os; d=json.load(open(sys.argv[1])); e=d["end"]["sum_received"]; cpu=(int(sys.argv[3])-int(sys.argv[2]))/os.sysconf("SC_CLK_TCK"); print("%.3f %.3f" % (e["bits_per_second"]/1e9, cpu/(e["bytes"]/1e9)))' "$RESULT_JSON" "$before" "$after"
  stop_last_two
}

RESULT_JSON=$(mktemp); trap 'rm -f "$RESULT_JSON"; cleanup' EXIT
B=$([ -n "${SS_B:-}" ] && echo B || echo libev)
printf "%-24s %-7s %-9s %10s %10s %7s %13s %13s\n" method streams direction "ours Gb/s" "$B Gb/s" ratio "ours CPU s/GB" "$B CPU s/GB"
for method in $METHODS; do
  for streams in $STREAMS; do
    for reverse in 0 1; do
      ours=(); libev=(); ours_cpu=(); libev_cpu=()
      for _ in $(seq "$ROUNDS"); do
        read -r gbps cpu <<< "$(run_one ours "$method" "$streams" "$reverse")"; ours+=("$gbps"); ours_cpu+=("$cpu")
        read -r gbps cpu <<< "$(run_one libev "$method" "$streams" "$reverse")"; libev+=("$gbps"); libev_cpu+=("$cpu")
      done
      mo=$(median "${ours[@]}"); ml=$(median "${libev[@]}")
      dir=$([ "$reverse" = 1 ] && echo download || echo upload)
      printf "%-24s %-7s %-9s %10s %10s %7s %13s %13s\n" "${OURS_METHOD:+$OURS_METHOD vs }$method" "$streams" "$dir" "$mo" "$ml" "$(python3 -c "print(f'{$mo/$ml:.2f}')")" \
        "$(median "${ours_cpu[@]}")" "$(median "${libev_cpu[@]}")"
    done
  done
done
