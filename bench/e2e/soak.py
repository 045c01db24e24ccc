#!/usr/bin/env python3
"""Soak: our local -> server under a mixed load for a while, watching for leaks.

usage: bench/e2e/soak.py [phases=4] [seconds=15] [concurrency=50] [method=aes-256-gcm]

Each phase runs `concurrency` workers for `seconds`: most fetch 1 KiB over SOCKS5 from a loopback HTTP server; one in
twelve each resets its connection mid-request (SO_LINGER 0), asks for a closed port, or sends random bytes as its
greeting. After every phase, and after 5 s idle at the end, it prints each process's open descriptors, resident memory
and threads: flat descriptors and threads, and memory that settles, mean nothing leaks. Ours only (a leak check, not a
comparison). Loopback only; both processes are killed at the end.
"""
import asyncio, os, random, socket, subprocess, sys, time

ARGS = sys.argv[1:]
sys.argv = sys.argv[:1]  # conn_rate (helpers shared with it) reads its own arguments when imported
import conn_rate as c  # noqa: E402
from common import rss_kib, socks5_connect  # noqa: E402

PHASES = int(ARGS[0]) if len(ARGS) > 0 else 4
SECONDS = float(ARGS[1]) if len(ARGS) > 1 else 15
CONCURRENCY = int(ARGS[2]) if len(ARGS) > 2 else 50
METHOD = ARGS[3] if len(ARGS) > 3 else "aes-256-gcm"
# A 2022 method takes a base64 key of its size, never a password.
KEY = subprocess.check_output([c.SS, "genkey", "-m", METHOD], text=True).strip() if METHOD.startswith("2022-") else "soak"


def stat(pid):
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    rss = rss_kib(pid)
    threads = len(os.listdir(f"/proc/{pid}/task"))
    return f"fds {fds:>4}  rss {rss:>7} KiB  threads {threads:>3}"


async def resetting(lport, hport):
    reader, writer = await asyncio.open_connection("127.0.0.1", lport)
    writer.write(socks5_connect(hport))
    await reader.readexactly(12)
    writer.write(b"GET / HTTP/1.0\r\n")  # half a request, then a reset
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    writer.close()


async def closed_port(lport):
    reader, writer = await asyncio.open_connection("127.0.0.1", lport)
    writer.write(socks5_connect(9))  # nothing listens on port 9
    try:
        await reader.read()
    finally:
        writer.close()


async def garbage(lport):
    reader, writer = await asyncio.open_connection("127.0.0.1", lport)
    writer.write(os.urandom(random.randint(1, 64)))
    try:
        await asyncio.wait_for(reader.read(), 15)
    finally:
        writer.close()


async def quiet_http_server():
    async def handle(reader, writer):
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(c.BODY) + c.BODY)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the resetting clients
        finally:
            writer.close()
    return await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)


async def main():
    server = await quiet_http_server()
    hport = server.sockets[0].getsockname()[1]
    sport, lport = c.free_port(), c.free_port()
    procs = [subprocess.Popen([c.SS, "server", "-s", "127.0.0.1", "-p", str(sport), "-k", KEY, "-m", METHOD, "--forbidden-ip", ""],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
             subprocess.Popen([c.SS, "local", "-s", "127.0.0.1", "-p", str(sport), "-b", "127.0.0.1", "-l", str(lport), "-k", KEY, "-m", METHOD],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        c.wait_listening(sport); c.wait_listening(lport)
        print(f"{'start':<8} server {stat(procs[0].pid)} | local {stat(procs[1].pid)}", flush=True)
        for phase in range(PHASES):
            end = time.perf_counter() + SECONDS
            counts = {"done": 0, "failed": 0}

            async def worker(kind):
                while time.perf_counter() < end:
                    try:
                        if kind == 1:
                            await resetting(lport, hport)
                        elif kind == 2:
                            await closed_port(lport)
                        elif kind == 3:
                            await garbage(lport)
                        else:
                            await c.one(lport, hport)
                        counts["done"] += 1
                    except (OSError, RuntimeError, asyncio.IncompleteReadError, asyncio.TimeoutError):
                        counts["failed"] += 1

            await asyncio.gather(*[worker(i % 12 if i % 12 < 4 else 0) for i in range(CONCURRENCY)])
            print(f"phase {phase:<2} server {stat(procs[0].pid)} | local {stat(procs[1].pid)} | "
                  f"{counts['done']} connections, {counts['failed']} failed", flush=True)
        await asyncio.sleep(5)
        print(f"{'idle 5s':<8} server {stat(procs[0].pid)} | local {stat(procs[1].pid)}", flush=True)
    finally:
        for p in procs:
            p.kill(); p.wait()


if __name__ == "__main__":
    asyncio.run(main())
