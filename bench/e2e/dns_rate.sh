#!/usr/bin/env bash
# DNS lookups per second: our resolver (uncached, cached) beside the system resolver, against dnsmasq.
# usage: bench/e2e/dns_rate.sh [seconds=5]      (needs root, dnsmasq-base, util-linux unshare)
# dnsmasq and the benchmark run in a private network and mount namespace: there dnsmasq owns 127.0.0.1:53 and a
# private resolv.conf points glibc at it; the machine's own resolv.conf and port 53 are untouched.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
SECS=${1:-5}
dotnet build "$ROOT/bench/Pipeline.Bench" -c Release -v q -nologo >/dev/null
BENCH="$ROOT/bench/Pipeline.Bench/bin/Release/net10.0/Pipeline.Bench.dll"
exec unshare --net --mount bash -c "
  set -e
  ip link set lo up
  echo 'nameserver 127.0.0.1' > /tmp/ss-bench-resolv.conf
  mount --bind /tmp/ss-bench-resolv.conf /etc/resolv.conf
  dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts --user=root --pid-file= --port=53 \
    --listen-address=127.0.0.1 --bind-interfaces --address=/bench.test/10.0.0.1 --local-ttl=300 --cache-size=10000 &
  trap 'kill \$!' EXIT
  sleep 0.5
  dotnet '$BENCH' dns 127.0.0.1:53 $SECS
"
