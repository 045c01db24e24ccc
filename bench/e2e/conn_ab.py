#!/usr/bin/env python3
"""Connection cost, A/B of two builds of ours: conn_rate.py's load (short SOCKS5 fetches, 50 concurrent) through
local -> server of build A, then of build B, alternately, with the CPU each process spent per request.

usage: SS_A=/path/a/shadowsocks SS_B=/path/b/shadowsocks bench/e2e/conn_ab.py [rounds=4] [concurrency=50]

Each run: 1 s of load not counted, then 2.5 s counted: requests per second, CPU µs per request of server and local
(from /proc) and of the client (this process, which also serves the fetched file). Prints each run and the medians.
Loopback only; every process is killed at the end.
"""
import asyncio, os, statistics, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 4
CONCURRENCY = sys.argv[2] if len(sys.argv) > 2 else "50"
sys.argv = [sys.argv[0], "4", "1", CONCURRENCY, "aes-256-gcm", "0"]  # conn_rate.py's arguments: a 4 s run, no warm-up of its own
import conn_rate  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
started = []


class Recording(subprocess.Popen):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        started.append(self)


conn_rate.subprocess.Popen = Recording


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def run(binary, http_port):
    conn_rate.SS = binary
    started.clear()
    measuring = asyncio.create_task(conn_rate.measure("ours", http_port))
    await asyncio.sleep(1.0)
    server, local = started[0].pid, started[1].pid
    before = (cpu_seconds(server), cpu_seconds(local), time.process_time(), time.time())
    await asyncio.sleep(2.5)
    after = (cpu_seconds(server), cpu_seconds(local), time.process_time(), time.time())
    rps, _, _, _ = await measuring
    requests = rps * (after[3] - before[3])
    return rps, *((after[i] - before[i]) / requests * 1e6 for i in range(3))


async def main():
    builds = {"A": os.environ.get("SS_A"), "B": os.environ.get("SS_B")}
    if not all(builds.values()):
        sys.exit("set SS_A and SS_B to the two shadowsocks binaries")
    server = await conn_rate.http_server()
    http_port = server.sockets[0].getsockname()[1]
    results = {name: [] for name in builds}
    for _ in range(ROUNDS):
        for name, binary in builds.items():
            row = await run(binary, http_port)
            results[name].append(row)
            print(f"{name} {row[0]:7.0f} req/s  server {row[1]:5.0f} us  local {row[2]:5.0f} us  client {row[3]:5.0f} us", flush=True)
    for name, rows in results.items():
        medians = [statistics.median(r[i] for r in rows) for i in range(4)]
        print(f"{name} median {medians[0]:7.0f} req/s  server {medians[1]:5.0f} us  local {medians[2]:5.0f} us  client {medians[3]:5.0f} us")
    a, b = (statistics.median(r[0] for r in results[n]) for n in ("A", "B"))
    print(f"ratio A/B: req/s {a / b:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
