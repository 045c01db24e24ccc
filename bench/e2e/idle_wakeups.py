#!/usr/bin/env python3
"""Idle wake-ups: how often an idle local and server run at all (a laptop's local sits idle most of the day), ours
and shadowsocks-libev side by side.

usage: bench/e2e/idle_wakeups.py [settle=130] [measure=128] [udp=0]

Starts ours (local + server) and ss-local + ss-server at once, with no traffic, waits `settle` seconds, then counts
over `measure` seconds the times each process's threads were scheduled and the CPU they used. With `udp=1`, each
local first relays one datagram through a SOCKS5 UDP association (to a UDP echo on loopback, through its server) and
keeps the association open while the measurement runs: a proxy whose UDP flows (DNS, say) wait to expire (keep
`measure` below the 300 s the NAT entries live). With `perf` installed it counts each process's thread switches
(`sched:sched_switch`, all threads, also those that exit meanwhile) and its wake-ups: runs of switches less than
10 ms apart, however many switches its threads make in one (the thread pool's workers spin before they sleep, each
spin a switch), and its CPU time (`perf stat -e task-clock`, which also keeps what exiting threads used). Without perf,
the third field of /proc/PID/task/*/schedstat (threads that exit meanwhile are not counted). Loopback only; every
process is killed at the end.
"""
import glob, os, shutil, socket, subprocess, sys, tempfile, time

from common import SS, free_port, socks5_udp_associate, socks5_udp_header, udp_echo_server
SETTLE = float(sys.argv[1]) if len(sys.argv) > 1 else 130
MEASURE = float(sys.argv[2]) if len(sys.argv) > 2 else 128
UDP = len(sys.argv) > 3 and sys.argv[3] == "1"
METHOD = "aes-256-gcm"
PERF = shutil.which("perf")
EPISODE_GAP = 0.010  # seconds between two switches of one process that make them two wake-ups


def sched(pid):
    runs, ns = 0, 0
    for path in glob.glob(f"/proc/{pid}/task/*/schedstat"):
        try:
            fields = open(path).read().split()
        except OSError:
            continue
        ns += int(fields[0]); runs += int(fields[2])
    return runs, ns


def one_datagram(local_port, echo_port):
    """One datagram through a SOCKS5 UDP association on the local to the echo, and its reply; returns the control
    connection (the association lives as long as it stays open)."""
    control, relay = socks5_udp_associate(local_port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(5)
        header = socks5_udp_header(echo_port)
        udp.sendto(header + b"ping", relay)
        assert udp.recvfrom(100)[0] == header + b"ping"
    return control


def switches(pids, seconds):
    """Each pid's thread switches over `seconds` (times one of its threads was switched out; all threads counted) and
    its episodes: runs of switches less than EPISODE_GAP apart (one wake-up of the process, however many switches its
    threads make in it, e.g. the pool's workers spinning before they sleep)."""
    with tempfile.TemporaryDirectory() as scratch:
        data = os.path.join(scratch, "switches.data")
        subprocess.run([PERF, "record", "-q", "-e", "sched:sched_switch", "-a", "-o", data, "--", "sleep", str(seconds)],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lines = subprocess.run([PERF, "script", "-i", data, "-F", "pid,time"], check=True, capture_output=True, text=True).stdout.splitlines()
    times = {pid: [] for pid in pids}
    for line in lines:
        fields = line.replace(":", " ").split()
        if len(fields) >= 2 and fields[0].isdigit() and int(fields[0]) in times:
            times[int(fields[0])].append(float(fields[1]))
    result = {}
    for pid, seen in times.items():
        seen.sort()
        episodes = sum(1 for i, t in enumerate(seen) if i == 0 or t - seen[i - 1] > EPISODE_GAP)
        result[pid] = (len(seen), episodes)
    return result


def task_clock_ms(perf_stat_output):
    """The milliseconds `perf stat -x ,` counted; "<not counted>" when the process never ran in the window."""
    value = perf_stat_output.strip().splitlines()[-1].split(",")[0]
    return 0.0 if value.startswith("<") else float(value)


def main():
    ports = {impl: (free_port(), free_port()) for impl in ("ours", "libev")}
    udp = ["-u"] if UDP else []
    commands = {
        "ours server": [SS, "server", "-s", "127.0.0.1", "-p", str(ports["ours"][0]), "-k", "bench", "-m", METHOD, "--forbidden-ip", ""] + udp,
        "ours local": [SS, "local", "-s", "127.0.0.1", "-p", str(ports["ours"][0]), "-l", str(ports["ours"][1]), "-k", "bench", "-m", METHOD] + udp,
        "libev server": ["ss-server", "-s", "127.0.0.1", "-p", str(ports["libev"][0]), "-k", "bench", "-m", METHOD] + udp,
        "libev local": ["ss-local", "-s", "127.0.0.1", "-p", str(ports["libev"][0]), "-l", str(ports["libev"][1]), "-k", "bench", "-m", METHOD] + udp,
    }
    procs = {name: subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for name, cmd in commands.items()}
    controls = []
    try:
        time.sleep(SETTLE)
        if UDP:
            echo_port = udp_echo_server().getsockname()[1]
            controls = [one_datagram(ports[impl][1], echo_port) for impl in ("ours", "libev")]
        if PERF:
            # CPU time with perf too: schedstat loses the threads that exit within the window (the pool's idle workers).
            clocks = {name: subprocess.Popen([PERF, "stat", "-e", "task-clock", "-x", ",", "-p", str(p.pid), "--", "sleep", str(MEASURE)],
                                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                      for name, p in procs.items()}
            counted = switches([p.pid for p in procs.values()], MEASURE)
            task_ms = {name: task_clock_ms(c.communicate()[1]) for name, c in clocks.items()}
        else:
            before = {name: sched(p.pid) for name, p in procs.items()}
            time.sleep(MEASURE)
            after = {name: sched(p.pid) for name, p in procs.items()}
        for name, p in procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited")
        print(f"idle for {SETTLE:.0f} s{', one UDP datagram through each local' if UDP else ''}, then measured over {MEASURE:.0f} s"
              + ("" if PERF else " (no perf: threads scheduled, from schedstat, without those that exited meanwhile)"))
        for name, p in procs.items():
            if PERF:
                switched, episodes = counted[p.pid]
                cpu_ms = task_ms[name]
                print(f"{name:<13} {episodes / MEASURE:8.2f} wake-ups/s {switched / MEASURE:8.2f} thread switches/s {cpu_ms / MEASURE * 1000:8.1f} us CPU/s")
            else:
                cpu_ms = (after[name][1] - before[name][1]) / 1e6
                print(f"{name:<13} {(after[name][0] - before[name][0]) / MEASURE:8.2f} runs/s {cpu_ms / MEASURE * 1000:8.1f} us CPU/s")
    finally:
        for control in controls:
            control.close()
        for p in procs.values():
            p.kill(); p.wait()


if __name__ == "__main__":
    main()
