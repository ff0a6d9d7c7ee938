"""Real parts for the service tests: a private PostgreSQL server, form tokens (the server process: medzoo.bench)."""

import glob
import os
import re
import shutil
import subprocess
import tempfile

from medzoo.bench.serve_load import free_port


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


def form_token(html):
    """The CSRF token a page's form carries."""
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
