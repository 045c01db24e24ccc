#!/usr/bin/env python3
"""Idle wake-ups: how often an idle local and server run at all (a laptop's local sits idle most of the day), ours
and shadowsocks-libev side by side.

usage: bench/e2e/idle_wakeups.py [settle=130] [measure=128]

Starts ours (local + server) and ss-local + ss-server at once, with no traffic, waits `settle` seconds, then counts
over `measure` seconds the times each process's threads were scheduled (the third field of
/proc/PID/task/*/schedstat) and the CPU they used. Loopback only; every process is killed at the end.
"""
import glob, os, socket, subprocess, sys, time

from common import SS, free_port
SETTLE = float(sys.argv[1]) if len(sys.argv) > 1 else 130
MEASURE = float(sys.argv[2]) if len(sys.argv) > 2 else 128
METHOD = "aes-256-gcm"


def sched(pid):
    runs, ns = 0, 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            fields = open(path).read().split()
        except OSError:
            continue
        ns += int(fields[0]); runs += int(fields[2])
    return runs, ns


def main():
    ports = {impl: (free_port(), free_port()) for impl in ("ours", "libev")}
    commands = {
        "ours server": [SS, "server", "-s", "127.0.0.1", "-p", str(ports["ours"][0]), "-k", "bench", "-m", METHOD],
        "ours local": [SS, "local", "-s", "127.0.0.1", "-p", str(ports["ours"][0]), "-l", str(ports["ours"][1]), "-k", "bench", "-m", METHOD],
        "libev server": ["ss-server", "-s", "127.0.0.1", "-p", str(ports["libev"][0]), "-k", "bench", "-m", METHOD],
        "libev local": ["ss-local", "-s", "127.0.0.1", "-p", str(ports["libev"][0]), "-l", str(ports["libev"][1]), "-k", "bench", "-m", METHOD],
    }
    procs = {name: subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for name, cmd in commands.items()}
    try:
        time.sleep(SETTLE)
        before = {name: sched(p.pid) for name, p in procs.items()}
        time.sleep(MEASURE)
        after = {name: sched(p.pid) for name, p in procs.items()}
        for name, p in procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited")
        print(f"idle for {SETTLE:.0f} s, then measured over {MEASURE:.0f} s:")
        for name in procs:
            runs = after[name][0] - before[name][0]
            cpu_ms = (after[name][1] - before[name][1]) / 1e6
            print(f"{name:<13} {runs / MEASURE:8.2f} wake-ups/s {cpu_ms / MEASURE * 1000:8.1f} us CPU/s")
    finally:
        for p in procs.values():
            p.kill(); p.wait()


if __name__ == "__main__":
    main()
