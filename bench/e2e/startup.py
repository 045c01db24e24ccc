#!/usr/bin/env python3
"""Start-up: time from launch to a listening port, ours (`shadowsocks server`) and ss-server alternately.

usage: bench/e2e/startup.py [rounds=10]
"""
import os, socket, statistics, subprocess, sys, time

from common import SS, free_port
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 10


def listening(port):
    # A connect attempt, not a read of /proc/net/tcp: after a connection benchmark that file holds tens of thousands
    # of TIME_WAIT lines and reading it took ~0.4 s, which became the figure. A refused attempt costs microseconds; an
    # accepted one is closed at once (the server sees a client that sent nothing).
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def launch(cmd, port):
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not listening(port):
        if time.perf_counter() - start > 10:
            raise RuntimeError("never listened")
        time.sleep(0.001)
    elapsed = time.perf_counter() - start
    p.kill(); p.wait()
    return elapsed


ours, libev = [], []
for _ in range(ROUNDS):
    port = free_port(); ours.append(launch([SS, "server", "-s", "127.0.0.1", "-p", str(port), "-k", "x", "-m", "aes-256-gcm"], port))
    port = free_port(); libev.append(launch(["ss-server", "-s", "127.0.0.1", "-p", str(port), "-k", "x", "-m", "aes-256-gcm"], port))
print(f"launch to listening, median of {ROUNDS}: ours {statistics.median(ours) * 1000:.0f} ms, ss-server {statistics.median(libev) * 1000:.0f} ms")
