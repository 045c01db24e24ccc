"""Shared helpers for the Python end-to-end benchmarks (imported, not run); common.sh is the shell scripts' twin.
Everything listens on 127.0.0.1."""
import os, socket, subprocess, threading, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SS = os.environ.get("SS_BINARY") or os.path.join(ROOT, "Pipeline.Hosts", "bin", "Release", "net10.0", "shadowsocks")  # SS_BINARY: e.g. a published build


_given = set()


def free_port():
    """A loopback port free now and not handed out before in this run: the kernel may give the same port to two binds
    in a row, and a local started on its server's port fails while the server answers its port check."""
    while True:
        s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
        if p not in _given:
            _given.add(p)
            return p


def wait_listening(port, timeout=10):
    """Waits for a TCP listener on the port by looking at the socket table (a probe connection would reach it)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if "LISTEN" in subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout:
            return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


def status_kib(pid, field):
    """A KiB figure from /proc/PID/status: VmRSS (resident now), VmHWM (the peak); 0 when the process has none."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_kib(pid):
    return status_kib(pid, "VmRSS")


def cpu_seconds(pid):
    """User + system CPU time of a process so far, in seconds (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def udp_echo_server():
    """A UDP echo on loopback, served by a daemon thread; returns its socket."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)

    def run():
        while True:
            try:
                data, peer = s.recvfrom(65536); s.sendto(data, peer)
            except OSError:
                return
    threading.Thread(target=run, daemon=True).start()
    return s


def socks5_connect(port):
    """A SOCKS5 greeting (no authentication) and, pipelined behind it, a CONNECT to 127.0.0.1:`port`."""
    return bytes([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, port >> 8, port & 255])


def socks5_udp_header(port):
    """The SOCKS5 UDP request header of a datagram to 127.0.0.1:`port` (no fragmentation)."""
    return bytes([0, 0, 0, 1, 127, 0, 0, 1, port >> 8, port & 255])


def socks5_udp_associate(port):
    """SOCKS5 UDP ASSOCIATE on the local at `port`: returns the control connection (the association lives while it is
    open) and the relay's address for the datagrams."""
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    c.sendall(bytes([5, 1, 0])); assert c.recv(2) == bytes([5, 0])
    c.sendall(bytes([5, 3, 0, 1, 0, 0, 0, 0, 0, 0]))
    r = c.recv(10); assert r[1] == 0, r
    return c, (socket.inet_ntoa(r[4:8]), (r[8] << 8) | r[9])
