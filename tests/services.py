"""Throwaway servers for the tests: a PostgreSQL cluster (``initdb`` in a temporary folder, a free
port, trust authentication inside that cluster only) and a Redis server, each started by the test
session from Debian's binaries and removed after it, so the tests depend on no server of the
machine and on none of its settings. ``make services`` installs the binaries when missing."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PG_USER = "postgres"  # initdb refuses to run as root: as root, the cluster runs as this user


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]))
    if not found:
        raise RuntimeError("PostgreSQL's server binaries are missing (/usr/lib/postgresql/*/bin): "
                           "run `make services` (apt-get install postgresql) first")
    return Path(found[-1]).parent


def _wait(ready, what: str, log: Path | None = None, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    detail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} did not start within {seconds:.0f} s\n{detail}")


@contextmanager
def postgres_cluster() -> Iterator[str]:
    """A new PostgreSQL cluster; yields its server URL (user postgres, no password)."""
    binaries = _postgres_bin()
    folder = Path(tempfile.mkdtemp(prefix="popsync-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", PG_USER, "--"]
        shutil.chown(folder, PG_USER)
    data, log, port = folder / "data", folder / "server.log", free_port()
    quiet = {"capture_output": True, "text": True, "check": True}
    try:
        subprocess.run([*as_user, str(binaries / "initdb"), "-D", str(data), "-U", "postgres",
                        "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"], **quiet)
        subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log),
                        "-w", "-t", "60", "-o",
                        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
                        "-c synchronous_commit=off -c full_page_writes=off", "start"], **quiet)
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL cluster: {exc.cmd[len(as_user)]} failed: "
                           f"{exc.stderr[-2000:]}") from None
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "-w", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def redis_server() -> Iterator[str]:
    """A new Redis server without persistence; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is missing: run `make services` (apt-get install "
                           "redis-server) first")
    folder = Path(tempfile.mkdtemp(prefix="popsync-redis-"))
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder), "--logfile", str(folder / "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def ready() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    try:
        _wait(ready, "redis-server", folder / "redis.log")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
