#!/usr/bin/env python3
"""Connection rate: short SOCKS5 connections through local -> server fetching a small file, ours and ss-libev alternately.

usage: bench/e2e/conn_rate.py [seconds=5] [rounds=3] [concurrency=50] [method=aes-256-gcm] [warmup=3]
       FAST_OPEN=1 bench/e2e/conn_rate.py ...   # both implementations with --fast-open (needs net.ipv4.tcp_fastopen=3)
       OURS_METHOD=2022-blake3-aes-256-gcm bench/e2e/conn_rate.py ...   # ours with that method (a fresh key), ss-libev with `method`
       OURS_METHOD=2022-blake3-aes-256-gcm OURS_USERS=1000 bench/e2e/conn_rate.py ...   # ours as a multi-user server (SIP023)
           with that many users, the local as the last of them (iPSK:uPSK)

Each worker loops: connect to the local, SOCKS5 CONNECT to a loopback HTTP server, GET a 1 KiB file, read it to the
end, close. Reports requests per second, p50 and p99 latency (connect to last byte) per implementation (medians over
rounds) and the ratios ours/libev. Each implementation first runs `warmup` seconds of the same load, not counted, so
the figures are a running server's (ours JIT-compiles and tiers up its hot paths in the first seconds; libev needs no
warm-up, and gets the same). Loopback only; every process is killed at the end.
"""
import asyncio, base64, json, os, socket, statistics, subprocess, sys, tempfile, time

from common import SS, free_port, socks5_connect, wait_listening
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 5
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
CONCURRENCY = int(sys.argv[3]) if len(sys.argv) > 3 else 50
METHOD = sys.argv[4] if len(sys.argv) > 4 else "aes-256-gcm"
WARMUP = float(sys.argv[5]) if len(sys.argv) > 5 else 3
BODY = b"x" * 1024
FAST_OPEN = ["--fast-open"] if os.environ.get("FAST_OPEN") == "1" else []
OURS_METHOD = os.environ.get("OURS_METHOD") or METHOD
OURS_KEY = subprocess.check_output([SS, "genkey", "-m", OURS_METHOD], text=True).strip() if os.environ.get("OURS_METHOD") else "bench"
OURS_USERS = int(os.environ.get("OURS_USERS") or 0)


def multi_user_config():
    """A server config with OURS_USERS users (OURS_KEY is the server's identity key); returns its path and the last user's key."""
    size = 16 if "128" in OURS_METHOD else 32
    keys = [base64.b64encode(os.urandom(size)).decode() for _ in range(OURS_USERS)]
    users = [{"name": "user%d" % i, "password": k} for i, k in enumerate(keys)]
    handle, path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(handle, "w") as f:
        json.dump({"users": users}, f)
    return path, keys[-1]


async def http_server():
    async def handle(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY)
        await writer.drain(); writer.close()
    return await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)


async def one(lport, hport):
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", lport)
    writer.write(socks5_connect(hport))
    await reader.readexactly(2 + 10)
    writer.write(b"GET / HTTP/1.0\r\n\r\n")
    data = await reader.read()
    writer.close()
    if not data.endswith(BODY):
        raise RuntimeError("short response")
    return time.perf_counter() - start


async def measure(impl, hport):
    sport, lport = free_port(), free_port()
    if impl == "ours":
        users, local_key = [], OURS_KEY
        if OURS_USERS:
            config, user_key = multi_user_config()
            users, local_key = ["-c", config], OURS_KEY + ":" + user_key
        cmds = [[SS, "server", "-s", "127.0.0.1", "-p", str(sport), "-k", OURS_KEY, "-m", OURS_METHOD, "--forbidden-ip", ""] + users + FAST_OPEN,
                [SS, "local", "-s", "127.0.0.1", "-p", str(sport), "-b", "127.0.0.1", "-l", str(lport), "-k", local_key, "-m", OURS_METHOD] + FAST_OPEN]
    else:
        cmds = [["ss-server", "-s", "127.0.0.1", "-p", str(sport), "-k", "bench", "-m", METHOD] + FAST_OPEN,
                ["ss-local", "-s", "127.0.0.1", "-p", str(sport), "-b", "127.0.0.1", "-l", str(lport), "-k", "bench", "-m", METHOD] + FAST_OPEN]
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in cmds]
    try:
        wait_listening(sport); wait_listening(lport)
        latencies, failures = [], 0

        async def worker(deadline, record):
            nonlocal failures
            while time.perf_counter() < deadline:
                try:
                    latency = await one(lport, hport)
                    if record:
                        latencies.append(latency)
                except (OSError, RuntimeError, asyncio.IncompleteReadError):
                    if record:
                        failures += 1

        if WARMUP > 0:
            warm_until = time.perf_counter() + WARMUP
            await asyncio.gather(*[worker(warm_until, False) for _ in range(CONCURRENCY)])
        deadline = time.perf_counter() + SECONDS
        await asyncio.gather(*[worker(deadline, True) for _ in range(CONCURRENCY)])
        latencies.sort()
        return len(latencies) / SECONDS, latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)], failures
    finally:
        for p in procs:
            p.kill(); p.wait()


async def main():
    server = await http_server(); hport = server.sockets[0].getsockname()[1]
    results = {"ours": [], "libev": []}
    for _ in range(ROUNDS):
        for impl in ("ours", "libev"):
            results[impl].append(await measure(impl, hport))
    print(f"{'impl':<8}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'failed':>8}")
    med = {}
    for impl, rows in results.items():
        med[impl] = [statistics.median(r[i] for r in rows) for i in range(4)]
        rps, p50, p99, failed = med[impl]
        print(f"{impl:<8}{rps:>10.0f}{p50 * 1000:>10.2f}{p99 * 1000:>10.2f}{failed:>8.0f}")
    print(f"ratio ours/libev: req/s {med['ours'][0] / med['libev'][0]:.2f}, p99 {med['ours'][2] / med['libev'][2]:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
