#!/usr/bin/env python3
"""Load: N concurrent SOCKS5 connections through local -> server, each sending S bytes to an echo and reading them
back, ours and ss-libev alternately. Reports throughput (both directions, all connections), p99 connect time
(TCP connect + SOCKS5 reply) and peak resident memory of local + server (VmHWM).

usage: bench/e2e/load.py [connections=1000] [mib_each=1] [rounds=2] [method=aes-128-gcm]
"""
import asyncio, os, socket, statistics, subprocess, sys, time

from common import SS, free_port, socks5_connect, status_kib, wait_listening
N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
SIZE = int(float(sys.argv[2]) * (1 << 20)) if len(sys.argv) > 2 else 1 << 20
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 2
METHOD = sys.argv[4] if len(sys.argv) > 4 else "aes-128-gcm"
PAYLOAD = os.urandom(SIZE)


async def echo_server():
    async def handle(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data); await writer.drain()
        except (asyncio.CancelledError, ConnectionError):
            pass
        finally:
            writer.close()
    return await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)


async def one(lport, eport):
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", lport, limit=1 << 20)
    writer.write(socks5_connect(eport))
    reply = await reader.readexactly(12)
    connected = time.perf_counter() - start
    if reply[3] != 0:
        raise RuntimeError("refused")

    async def send():
        writer.write(PAYLOAD); await writer.drain()
    sender = asyncio.ensure_future(send())
    received = 0
    while received < SIZE:
        chunk = await reader.read(1 << 20)
        if not chunk:
            raise RuntimeError("short echo")
        received += len(chunk)
    await sender
    writer.close()
    return connected


async def measure(impl, eport):
    sport, lport = free_port(), free_port()
    if impl == "ours":
        cmds = [[SS, "server", "-s", "127.0.0.1", "-p", str(sport), "-k", "bench", "-m", METHOD, "--forbidden-ip", ""],
                [SS, "local", "-s", "127.0.0.1", "-p", str(sport), "-b", "127.0.0.1", "-l", str(lport), "-k", "bench", "-m", METHOD]]
    else:
        cmds = [["ss-server", "-s", "127.0.0.1", "-p", str(sport), "-k", "bench", "-m", METHOD],
                ["ss-local", "-s", "127.0.0.1", "-p", str(sport), "-b", "127.0.0.1", "-l", str(lport), "-k", "bench", "-m", METHOD]]
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in cmds]
    try:
        wait_listening(sport); wait_listening(lport)
        start = time.perf_counter()
        results = await asyncio.gather(*[asyncio.wait_for(one(lport, eport), 120) for _ in range(N)], return_exceptions=True)
        elapsed = time.perf_counter() - start
        ok = [r for r in results if isinstance(r, float)]
        ok.sort()
        peak = sum(status_kib(p.pid, "VmHWM") for p in procs)
        return 2 * SIZE * len(ok) * 8 / elapsed / 1e9, ok[int(len(ok) * 0.99) - 1] * 1000 if ok else float("nan"), peak / 1024, N - len(ok)
    finally:
        for p in procs:
            p.kill(); p.wait()


async def main():
    server = await echo_server(); eport = server.sockets[0].getsockname()[1]
    rows = {"ours": [], "libev": []}
    impls = [sys.argv[5]] if len(sys.argv) > 5 else ["ours", "libev"]
    rows = {impl: [] for impl in impls}
    for _ in range(ROUNDS):
        for impl in impls:
            rows[impl].append(await measure(impl, eport))
    print(f"{N} connections x {SIZE >> 20} MiB each way, {METHOD}")
    print(f"{'impl':<8}{'Gbit/s':>9}{'p99 connect ms':>16}{'peak RSS MiB':>14}{'failed':>8}")
    med = {}
    for impl, r in rows.items():
        med[impl] = [statistics.median(x[i] for x in r) for i in range(4)]
        print(f"{impl:<8}{med[impl][0]:>9.2f}{med[impl][1]:>16.1f}{med[impl][2]:>14.0f}{med[impl][3]:>8.0f}")
    if len(impls) < 2:
        return
    o, l = med["ours"], med["libev"]
    print(f"ratio ours/libev: throughput {o[0] / l[0]:.2f}, p99 connect {o[1] / l[1]:.2f}, peak memory {o[2] / l[2]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
