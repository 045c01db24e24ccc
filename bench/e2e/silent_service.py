#!/usr/bin/env python3
"""Service beside silent clients: does a server still serve a client with the key while N others are connected and
say nothing (probes, port scanners, a cheap attack: they need no key), ours and ss-server alternately.

usage: bench/e2e/silent_service.py [silent=5000] [rounds=2]

Starts server and local, opens N plain TCP connections to the server that send nothing, then fetches a 1 KiB file
from a loopback HTTP server through the local (SOCKS5) and reports how long the fetch took (20 s at most: "not served"
past that). Idle timeouts are set far beyond the run. Loopback only; every process is killed at the end.
"""
import asyncio, resource, socket, statistics, subprocess, sys, time

from common import SS, free_port, socks5_connect, wait_listening
N = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 2
METHOD = "aes-256-gcm"
BODY = b"x" * 1024
LIMIT = 20.0


async def fetch(lport, hport):
    reader, writer = await asyncio.open_connection("127.0.0.1", lport)
    writer.write(socks5_connect(hport))
    await reader.readexactly(2 + 10)
    writer.write(b"GET / HTTP/1.0\r\n\r\n")
    data = await reader.read()
    writer.close()
    return data.endswith(BODY)


async def measure(impl, hport):
    sport, lport = free_port(), free_port()
    if impl == "ours":
        cmds = [[SS, "server", "-s", "127.0.0.1", "-p", str(sport), "-k", "bench", "-m", METHOD, "-t", "600", "--forbidden-ip", ""],
                [SS, "local", "-s", "127.0.0.1", "-p", str(sport), "-b", "127.0.0.1", "-l", str(lport), "-k", "bench", "-m", METHOD]]
    else:
        cmds = [["ss-server", "-s", "127.0.0.1", "-p", str(sport), "-k", "bench", "-m", METHOD, "-t", "600"],
                ["ss-local", "-s", "127.0.0.1", "-p", str(sport), "-b", "127.0.0.1", "-l", str(lport), "-k", "bench", "-m", METHOD]]
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in cmds]
    silent = []
    try:
        wait_listening(sport); wait_listening(lport)
        for _ in range(N):
            silent.append(socket.create_connection(("127.0.0.1", sport)))
        await asyncio.sleep(1)
        start = time.perf_counter()
        try:
            ok = await asyncio.wait_for(fetch(lport, hport), LIMIT)
        except (asyncio.TimeoutError, OSError, asyncio.IncompleteReadError):
            ok = False
        return time.perf_counter() - start if ok else None
    finally:
        for s in silent:
            s.close()
        for p in procs:
            p.kill(); p.wait()


async def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 2 * N + 1000)), hard))

    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY)
        await writer.drain(); writer.close()
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    hport = server.sockets[0].getsockname()[1]
    results = {"ours": [], "libev": []}
    for r in range(ROUNDS):
        for impl in ("ours", "libev"):
            t = await measure(impl, hport)
            results[impl].append(t)
            print(f"round {r + 1} {impl:5}  {N} silent: " + ("not served within %.0f s" % LIMIT if t is None else "served in %.3f s" % t), flush=True)
    for impl, ts in results.items():
        served = [t for t in ts if t is not None]
        print(f"{impl:5} served {len(served)} of {len(ts)}" + (f", median {statistics.median(served):.3f} s" if served else ""))
    server.close()


asyncio.run(main())
