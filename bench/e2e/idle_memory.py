#!/usr/bin/env python3
"""Idle cost: resident memory per idle connection through local -> server, ours and shadowsocks-libev.

usage: bench/e2e/idle_memory.py [connections=5000] [rounds=1]

Opens N SOCKS5 CONNECTs through the local to a loopback destination that accepts and holds them,
waits for everything to settle, and reports (RSS(local)+RSS(server) after - before) / N for each
implementation, run alternately in the same process. Loopback only; every process is killed at the end.
"""
import asyncio, os, resource, socket, statistics, subprocess, sys, time

from common import SS, free_port, rss_kib, socks5_connect, wait_listening
METHOD = "aes-256-gcm"
# OURS_METHOD=2022-blake3-aes-256-gcm: ours with that method (a fresh key), ss-libev with METHOD (it has no 2022 methods).
OURS_METHOD = os.environ.get("OURS_METHOD") or METHOD
OURS_KEY = subprocess.check_output([SS, "genkey", "-m", OURS_METHOD], text=True).strip() if os.environ.get("OURS_METHOD") else "bench"


async def socks_connect(local_port, dest_port):
    reader, writer = await asyncio.open_connection("127.0.0.1", local_port)
    writer.write(socks5_connect(dest_port))
    await writer.drain()
    reply = await reader.readexactly(12)
    if reply[1] != 0 or reply[3] != 0:
        raise RuntimeError(f"bad reply {reply!r}")
    return writer


async def measure(impl, n):
    held = []

    async def hold(reader, writer):
        held.append(writer)

    dest = await asyncio.start_server(hold, "127.0.0.1", 0, backlog=4096)
    dest_port = dest.sockets[0].getsockname()[1]
    sport, lport = free_port(), free_port()
    if impl == "ours":
        server = subprocess.Popen([SS, "server", "-s", "127.0.0.1", "-p", str(sport), "-k", OURS_KEY, "-m", OURS_METHOD, "-t", "600", "--forbidden-ip", ""], stdout=subprocess.DEVNULL)
        local = subprocess.Popen([SS, "local", "-s", "127.0.0.1", "-p", str(sport), "-l", str(lport), "-k", OURS_KEY, "-m", OURS_METHOD, "-t", "600", "--forbidden-ip", ""], stdout=subprocess.DEVNULL)
    else:
        server = subprocess.Popen(["ss-server", "-s", "127.0.0.1", "-p", str(sport), "-k", "bench", "-m", METHOD, "-t", "600", "-n", "65535"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        local = subprocess.Popen(["ss-local", "-s", "127.0.0.1", "-p", str(sport), "-l", str(lport), "-k", "bench", "-m", METHOD, "-t", "600", "-n", "65535"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(sport); wait_listening(lport)
        # Warm up: a few connections so one-time costs (JIT, pools) are not counted per connection.
        warm = [await socks_connect(lport, dest_port) for _ in range(50)]
        for w in warm:
            w.write(b"x"); await w.drain()
        await asyncio.sleep(1.0)
        for w in warm:
            w.close()
        await asyncio.sleep(1.0)
        before = rss_kib(local.pid) + rss_kib(server.pid)
        start = time.time()
        writers = []
        for i in range(0, n, 250):
            writers += await asyncio.gather(*[socks_connect(lport, dest_port) for _ in range(min(250, n - i))])
        # A byte each, so the server has read the header and connected: a fully relayed idle connection.
        for w in writers:
            w.write(b"x")
        await asyncio.gather(*[w.drain() for w in writers])
        deadline = time.time() + 30
        while len(held) < n + 50 and time.time() < deadline:
            await asyncio.sleep(0.1)
        # Idle means idle for a while: 5 s lets a process finish what a burst set off (ours returns the burst's
        # garbage to the system on the first quiet second, see Pipeline.Hosts/Service/IdleMemoryTrim.cs).
        await asyncio.sleep(5.0)
        after = rss_kib(local.pid) + rss_kib(server.pid)
        elapsed = time.time() - start
        if len(held) < n + 50:
            raise RuntimeError(f"{impl}: only {len(held) - 50} of {n} connections reached the destination")
        for w in writers:
            w.close()
        return (after - before) / n, before, after, elapsed
    finally:
        for p in (local, server):
            p.kill(); p.wait()
        dest.close()


async def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results = {"ours": [], "libev": []}
    for _ in range(rounds):
        for impl in os.environ.get("IMPLS", "ours libev").split():  # IMPLS=ours measures ours alone
            per, before, after, elapsed = await measure(impl, n)
            results[impl].append(per)
            print(f"{impl:6} {n} idle connections: RSS local+server {before} KiB -> {after} KiB, {per:.2f} KiB per connection ({elapsed:.1f} s to open)")
    medians = {impl: statistics.median(values) for impl, values in results.items() if values}
    line = ", ".join(f"{impl} {value:.2f}" for impl, value in medians.items())
    ratio = f", ratio {medians['ours'] / medians['libev']:.2f}" if len(medians) == 2 else ""
    print(f"median KiB per idle connection: {line}{ratio}")


asyncio.run(main())
