"""Real parts for the service tests: a private PostgreSQL server, a `medzoo serve` process, form tokens."""

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_bin():
    """The folder of Debian's PostgreSQL server programs, or None when the server is not installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return os.path.dirname(found[-1]) if found else None


class PostgresServer:
    """A throw-away PostgreSQL cluster on a Unix socket in a temporary folder (as user postgres under root)."""

    def __init__(self):
        self.bin = postgres_bin()
        self.base = tempfile.mkdtemp(prefix="medzoo-pg-")
        self.data, self.socket_dir, self.port = f"{self.base}/data", f"{self.base}/socket", free_port()
        os.makedirs(self.socket_dir)
        self.prefix = []
        if os.geteuid() == 0:  # the server refuses to run as root
            shutil.chown(self.base, "postgres")
            shutil.chown(self.socket_dir, "postgres")
            self.prefix = ["runuser", "-u", "postgres", "--"]

    def _run(self, *command):
        subprocess.run(self.prefix + list(command), check=True, capture_output=True, text=True)

    def start(self):
        self._run(f"{self.bin}/initdb", "-D", self.data, "-U", "medzoo", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-k {self.socket_dir} -p {self.port} -c listen_addresses='' -c fsync=off"
        self._run(f"{self.bin}/pg_ctl", "-D", self.data, "-o", options, "-l", f"{self.base}/server.log", "-w", "start")
        self._run(f"{self.bin}/createdb", "-h", self.socket_dir, "-p", str(self.port), "-U", "medzoo", "medzoo_test")
        return self

    @property
    def url(self):
        return f"postgresql+psycopg://medzoo@/medzoo_test?host={self.socket_dir}&port={self.port}"

    def stop(self):
        try:
            self._run(f"{self.bin}/pg_ctl", "-D", self.data, "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


class ServeProcess:
    """`medzoo serve` in a child process on a free port; `stop(kill=True)` is SIGKILL."""

    def __init__(self, model, data_dir, *options):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(data_dir + "-logs", f"serve-{self.port}.log")
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "medzoo.cli", "serve", "--model", model, "--data-dir", data_dir,
             "--port", str(self.port), *options], stdout=self.log, stderr=subprocess.STDOUT)  # fmt: skip

    def wait_ready(self, timeout=180):
        import httpx

        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"medzoo serve exited: {self.output()}")
            try:
                httpx.get(self.url + "/login", timeout=2)
                return self
            except httpx.TransportError:
                time.sleep(0.5)
        raise RuntimeError(f"medzoo serve did not start in {timeout} s: {self.output()}")

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as handle:
            return handle.read()

    def stop(self, kill=False):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            self.process.wait(30)
        self.log.close()


def form_token(html):
    """The CSRF token a page's form carries."""
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
