#!/usr/bin/env python3
"""UDP datagram rate through local -> server: ours and shadowsocks-libev alternately, in the same run.

usage: bench/e2e/udp_rate.py [seconds=5] [rounds=3] [method=aes-256-gcm] [window=32] [warmup=2]

A SOCKS5 UDP ASSOCIATE client keeps `window` datagrams in flight to a loopback UDP echo through
`local -u` -> `server -u` and counts echoed datagrams per second, for 64-byte and 1,400-byte payloads.
Each implementation first runs `warmup` seconds of the same load, not counted (a running server's figure, after JIT).
Reports medians per implementation and the ratio ours/libev, and the CPU time each process spent per echoed datagram
(from /proc/PID/stat over the counted seconds). Loopback only; every process is killed at the end.
"""
import os, socket, statistics, subprocess, sys, time

from common import SS, cpu_seconds, free_port, socks5_udp_associate, socks5_udp_header, udp_echo_server, wait_listening
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 5
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
METHOD = sys.argv[3] if len(sys.argv) > 3 else "aes-256-gcm"
# OURS_METHOD=2022-blake3-aes-256-gcm: ours with that method (a fresh key), ss-libev with METHOD (it has no 2022 methods).
OURS_METHOD = os.environ.get("OURS_METHOD") or METHOD
OURS_KEY = subprocess.check_output([SS, "genkey", "-m", OURS_METHOD], text=True).strip() if os.environ.get("OURS_METHOD") else "bench"
WINDOW = int(sys.argv[4]) if len(sys.argv) > 4 else 32
WARMUP = float(sys.argv[5]) if len(sys.argv) > 5 else 2


def start(impl, echo_port):
    sport, lport = free_port(), free_port()
    if impl == "ours":
        cmds = [[SS, "server", "-s", "127.0.0.1", "-p", str(sport), "-k", OURS_KEY, "-m", OURS_METHOD, "-u", "--forbidden-ip", ""],
                [SS, "local", "-s", "127.0.0.1", "-p", str(sport), "-b", "127.0.0.1", "-l", str(lport), "-k", OURS_KEY, "-m", OURS_METHOD, "-u"]]
    else:
        cmds = [["ss-server", "-s", "127.0.0.1", "-p", str(sport), "-k", "bench", "-m", METHOD, "-u"],
                ["ss-local", "-s", "127.0.0.1", "-p", str(sport), "-b", "127.0.0.1", "-l", str(lport), "-k", "bench", "-m", METHOD, "-u"]]
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for c in cmds]
    wait_listening(sport); wait_listening(lport)
    return procs, lport


def measure(impl, echo_port, size):
    procs, lport = start(impl, echo_port)
    try:
        control, relay = socks5_udp_associate(lport)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0)); u.settimeout(0.2)
        u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        packet = socks5_udp_header(echo_port) + os.urandom(size)
        for _ in range(WINDOW):
            u.sendto(packet, relay)
        warm_until = time.time() + WARMUP
        while time.time() < warm_until:
            try:
                u.recvfrom(65536)
            except socket.timeout:
                for _ in range(WINDOW):
                    u.sendto(packet, relay)
                continue
            u.sendto(packet, relay)
        cpu_before = [cpu_seconds(p.pid) for p in procs]
        got, deadline, start_t = 0, time.time() + SECONDS, time.time()
        while time.time() < deadline:
            try:
                u.recvfrom(65536); got += 1
            except socket.timeout:
                for _ in range(WINDOW):  # refill the window after a loss
                    u.sendto(packet, relay)
                continue
            u.sendto(packet, relay)
        elapsed = time.time() - start_t
        cpu = [after - before for after, before in zip([cpu_seconds(p.pid) for p in procs], cpu_before)]
        control.close()
        return got / elapsed, [c * 1e6 / max(got, 1) for c in cpu]
    finally:
        for p in procs:
            p.kill(); p.wait()


def main():
    echo = udp_echo_server(); port = echo.getsockname()[1]
    print(f"{'method':<24}{'payload':>8}{'ours dgram/s':>14}{'libev dgram/s':>15}{'ratio':>7}"
          f"{'ours µs/dgram server+local':>28}{'libev µs/dgram server+local':>29}")
    for size in (64, 1400):
        ours, libev = [], []
        for _ in range(ROUNDS):
            ours.append(measure("ours", port, size)); libev.append(measure("libev", port, size))
        mo, ml = statistics.median(r for r, _ in ours), statistics.median(r for r, _ in libev)
        co = [statistics.median(c[i] for _, c in ours) for i in (0, 1)]
        cl = [statistics.median(c[i] for _, c in libev) for i in (0, 1)]
        print(f"{(OURS_METHOD + ' vs ' if OURS_METHOD != METHOD else '') + METHOD:<24}{size:>8}{mo:>14.0f}{ml:>15.0f}{mo / ml:>7.2f}"
              f"{co[0]:>19.1f} + {co[1]:<6.1f}{cl[0]:>20.1f} + {cl[1]:<6.1f}")


if __name__ == "__main__":
    main()
