#!/usr/bin/env python3
"""Start-up and memory of a multi-user 2022 server (SIP023) by the size of its users list.

usage: bench/e2e/users_startup.py [users=1000] [rounds=3]      (SS_BINARY as for the other scripts)

Writes a server config with that many users (random keys; 0 gives a one-key server), starts `shadowsocks server -c`
`rounds` times, and prints the median time from launch to a TCP connect on its port, and its resident memory 0.3 s
after. Loopback only; the server is stopped each round and the config removed at the end.
"""
import base64, json, os, socket, statistics, subprocess, sys, tempfile, time

from common import SS, free_port

USERS = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 3


def key():
    return base64.b64encode(os.urandom(32)).decode()


def main():
    port = free_port()
    config = {"server": "127.0.0.1", "server_port": port, "method": "2022-blake3-aes-256-gcm", "password": key(), "mode": "tcp_and_udp"}
    if USERS:
        config["users"] = [{"name": "user%d" % i, "password": key()} for i in range(USERS)]
    handle, path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(handle, "w") as f:
        json.dump(config, f)
    times, rss = [], []
    try:
        for _ in range(ROUNDS):
            start = time.perf_counter()
            server = subprocess.Popen([SS, "server", "-c", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                while True:
                    try:
                        socket.create_connection(("127.0.0.1", port), timeout=0.05).close()
                        break
                    except OSError:
                        if time.perf_counter() - start > 30:
                            raise RuntimeError("the server did not listen within 30 s")
                        time.sleep(0.002)
                times.append((time.perf_counter() - start) * 1000)
                time.sleep(0.3)
                with open("/proc/%d/status" % server.pid) as f:
                    rss.append(int(next(line for line in f if line.startswith("VmRSS")).split()[1]))
            finally:
                server.terminate()
                server.wait()
    finally:
        os.remove(path)
    print("%d users: listening after %.0f ms, resident %d KiB (medians of %d)" % (USERS, statistics.median(times), statistics.median(rss), ROUNDS))


main()
