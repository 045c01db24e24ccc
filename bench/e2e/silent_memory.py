#!/usr/bin/env python3
"""Silent clients: resident memory per connection that a server holds for clients that connect and send nothing
(probes, slow or stalled clients), ours and ss-server alternately.

usage: bench/e2e/silent_memory.py [connections=5000] [rounds=2]

Opens N plain TCP connections to the server and sends nothing; 3 s later reads the server's RSS and reports
(after - before) / N per implementation (median over rounds) and the ratio. Both servers keep them open (the
handshake timeout, ss-server's -t, is set far beyond the run). Loopback only; every process is killed at the end.
"""
import os, resource, socket, statistics, subprocess, sys, time

from common import SS, free_port, wait_listening, rss_kib
N = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 2
METHOD = "aes-256-gcm"


def measure(impl):
    port = free_port()
    if impl == "ours":
        cmd = [SS, "server", "-s", "127.0.0.1", "-p", str(port), "-k", "bench", "-m", METHOD, "-t", "600"]
    else:
        cmd = ["ss-server", "-s", "127.0.0.1", "-p", str(port), "-k", "bench", "-m", METHOD, "-t", "600"]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    clients = []
    try:
        wait_listening(port)
        time.sleep(0.5)
        before = rss_kib(server.pid)
        for _ in range(N):
            clients.append(socket.create_connection(("127.0.0.1", port)))
        time.sleep(3)
        if server.poll() is not None:
            raise RuntimeError(f"{impl} server exited")
        return (rss_kib(server.pid) - before) / N
    finally:
        for c in clients:
            c.close()
        server.kill(); server.wait()


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < N + 100:
        sys.exit(f"needs {N + 100} open files; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    results = {"ours": [], "libev": []}
    for _ in range(ROUNDS):
        for impl in results:
            per = measure(impl)
            results[impl].append(per)
            print(f"{impl:<6} {N} silent connections: {per:.2f} KiB each", flush=True)
    med = {impl: statistics.median(v) for impl, v in results.items()}
    print(f"median KiB per silent connection: ours {med['ours']:.2f}, libev {med['libev']:.2f}, ratio {med['ours'] / med['libev']:.2f}")


if __name__ == "__main__":
    main()
