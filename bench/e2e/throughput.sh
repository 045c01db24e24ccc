#!/usr/bin/env bash
# Bulk throughput: iperf3 through tunnel -> server, ours and shadowsocks-libev alternately (A B A B ...).
# usage: bench/e2e/throughput.sh [rounds=3] [seconds=5] [methods="aes-256-gcm chacha20-ietf-poly1305"] [streams="1 8"]
source "$(dirname "$0")/common.sh"
ROUNDS=${1:-3}; SECS=${2:-5}; METHODS=${3:-"aes-256-gcm chacha20-ietf-poly1305"}; STREAMS=${4:-"1 8"}
build
command -v iperf3 >/dev/null || { echo "iperf3 not found: apt-get install iperf3" >&2; exit 1; }
IPERF_PORT=$(free_port)
start iperf3 -s -p "$IPERF_PORT"
wait_port "$IPERF_PORT"

run_one() { # impl method streams reverse -> Gbit/s
  local impl=$1 method=$2 streams=$3 reverse=$4 sport tport
  sport=$(free_port); tport=$(free_port)
  if [ "$impl" = ours ]; then
    start "$SS" server -s 127.0.0.1 -p "$sport" -k bench -m "$method" -t 60 --forbidden-ip ""
    start "$SS" tunnel -s 127.0.0.1 -p "$sport" -l "$tport" -L "127.0.0.1:$IPERF_PORT" -k bench -m "$method" -t 60
  else
    start ss-server -s 127.0.0.1 -p "$sport" -k bench -m "$method" -t 60
    start ss-tunnel -s 127.0.0.1 -p "$sport" -l "$tport" -L "127.0.0.1:$IPERF_PORT" -k bench -m "$method" -t 60
  fi
  wait_port "$sport"; wait_port "$tport"
  local flags=(-c 127.0.0.1 -p "$tport" -t "$SECS" -P "$streams" -J)
  [ "$reverse" = 1 ] && flags+=(-R)
  iperf3 "${flags[@]}" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.3f" % (d["end"]["sum_received"]["bits_per_second"]/1e9))'
  stop_last_two
}

printf "%-24s %-7s %-9s %10s %10s %7s\n" method streams direction "ours Gb/s" "libev Gb/s" ratio
for method in $METHODS; do
  for streams in $STREAMS; do
    for reverse in 0 1; do
      ours=(); libev=()
      for _ in $(seq "$ROUNDS"); do
        ours+=("$(run_one ours "$method" "$streams" "$reverse")")
        libev+=("$(run_one libev "$method" "$streams" "$reverse")")
      done
      mo=$(median "${ours[@]}"); ml=$(median "${libev[@]}")
      dir=$([ "$reverse" = 1 ] && echo download || echo upload)
      printf "%-24s %-7s %-9s %10s %10s %7s\n" "$method" "$streams" "$dir" "$mo" "$ml" "$(python3 -c "print(f'{$mo/$ml:.2f}')")"
    done
  done
done
