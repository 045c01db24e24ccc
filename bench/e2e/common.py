"""Shared helpers for the Python end-to-end benchmarks (imported, not run); common.sh is the shell scripts' twin.
Everything listens on 127.0.0.1."""
import os, socket, subprocess, time

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
