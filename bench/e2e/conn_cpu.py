#!/usr/bin/env python3
"""Where a connection's CPU goes: conn_rate.py's load, with each process's CPU time per request.

usage: bench/e2e/conn_cpu.py [rounds=1] [concurrency=50]      (SS_BINARY, FAST_OPEN as for conn_rate.py)
       SS_B=/path/to/another/shadowsocks bench/e2e/conn_cpu.py [rounds] ...   # an A/B of two builds: B in libev's place
       THREADS=1 bench/e2e/conn_cpu.py ...   # also each process's threads (same names summed): CPU and switches per request

For ours and ss-libev in turn: runs conn_rate.py's client (one asyncio process, which also serves the HTTP file) for
1 s, then measures 2.5 s: requests per second, CPU microseconds per request of the server and of the local
(/proc/PID/stat utime + stime), the client's own CPU share, and how idle the machine was (/proc/stat). A process
that uses less CPU per request while the rate stays put is waiting, not working. With more than one round, the
medians and the ratio of the rates follow. With THREADS=1, each process's threads follow, those of one name summed
(the pool's workers): CPU per request, and context switches per request, voluntary (the thread blocked: it slept until
woken) and involuntary (it was preempted, or yielded the core while it spun), from /proc/PID/task/*/status. Loopback only.
"""
import asyncio, os, statistics, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 1
CONCURRENCY = sys.argv[2] if len(sys.argv) > 2 else "50"
sys.argv = [sys.argv[0], "4", "1", CONCURRENCY, "aes-256-gcm", "0"]  # conn_rate.py's settings: 4 s, no warm-up
import conn_rate  # noqa: E402  (reads sys.argv at import)
from common import cpu_seconds  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
OURS = conn_rate.SS
started = []


class Recorded(subprocess.Popen):
    """conn_rate.py starts the server, then the local: remember both."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        started.append(self)


conn_rate.subprocess.Popen = Recorded


def threads(pid):
    """{thread name: [count, CPU seconds, voluntary switches, involuntary switches]}, threads of one name summed."""
    named = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                status = dict(line.split(":", 1) for line in f if ":" in line)
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        row = named.setdefault(status["Name"].strip(), [0, 0.0, 0, 0])
        row[0] += 1
        row[1] += (int(fields[11]) + int(fields[12])) / TICKS
        row[2] += int(status["voluntary_ctxt_switches"])
        row[3] += int(status["nonvoluntary_ctxt_switches"])
    return named


def print_threads(role, before, after, requests):
    for name, (count, cpu, voluntary, involuntary) in sorted(after.items(), key=lambda kv: -kv[1][1]):
        b = before.get(name, [0, 0.0, 0, 0])
        cpu_us, vol, invol = (cpu - b[1]) / requests * 1e6, (voluntary - b[2]) / requests, (involuntary - b[3]) / requests
        if cpu_us >= 0.5 or vol + invol >= 0.05:
            print(f"    {role:<6} {name:<16} x{count:<2} CPU {cpu_us:5.1f} µs  switches per request: voluntary {vol:4.2f}, "
                  f"involuntary {invol:4.2f}")


def idle_seconds():
    return int(open("/proc/stat").readline().split()[4]) / TICKS


async def run(impl, hport):
    started.clear()
    conn_rate.SS = os.environ["SS_B"] if impl == "B" else OURS  # "B" runs as ours, another build
    measuring = asyncio.create_task(conn_rate.measure("libev" if impl == "libev" else "ours", hport))
    await asyncio.sleep(1.0)
    server, local = started[0].pid, started[1].pid
    per_thread = os.environ.get("THREADS") == "1"
    th0 = (threads(server), threads(local)) if per_thread else None
    c0, t0, own0, idle0 = (cpu_seconds(server), cpu_seconds(local)), time.time(), sum(os.times()[:2]), idle_seconds()
    await asyncio.sleep(2.5)
    c1, elapsed, own1, idle1 = (cpu_seconds(server), cpu_seconds(local)), time.time() - t0, sum(os.times()[:2]), idle_seconds()
    th1 = (threads(server), threads(local)) if per_thread else None
    rps, _, p99, _ = await measuring
    requests = rps * elapsed
    server_us, local_us = (c1[0] - c0[0]) / requests * 1e6, (c1[1] - c0[1]) / requests * 1e6
    print(f"{impl:<6} {rps:7.0f} req/s  p99 {p99 * 1000:5.1f} ms  CPU per request: server {server_us:4.0f} µs, "
          f"local {local_us:4.0f} µs  client {(own1 - own0) / elapsed * 100:3.0f} %  "
          f"machine idle {(idle1 - idle0) / (os.cpu_count() * elapsed) * 100:3.0f} %", flush=True)
    if per_thread:
        print_threads("server", th0[0], th1[0], requests)
        print_threads("local", th0[1], th1[1], requests)
    return rps, server_us, local_us


async def main():
    server = await conn_rate.http_server()
    hport = server.sockets[0].getsockname()[1]
    impls = ("ours", "B" if os.environ.get("SS_B") else "libev")
    results = {impl: [] for impl in impls}
    for _ in range(ROUNDS):
        for impl in impls:
            results[impl].append(await run(impl, hport))
    if ROUNDS > 1:
        for impl, rows in results.items():
            rps, server_us, local_us = (statistics.median(r[i] for r in rows) for i in range(3))
            print(f"{impl:<6} median {rps:7.0f} req/s  server {server_us:4.0f} µs  local {local_us:4.0f} µs")
        a, b = (statistics.median(r[0] for r in results[impl]) for impl in impls)
        print(f"ratio ours/{impls[1]}: req/s {a / b:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
