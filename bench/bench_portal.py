"""Measure the portal over a published data folder, served by ``popsync serve`` in its own
process, as production runs it.

    .venv/bin/python bench/bench_portal.py --data /tmp/pub1m [--workers 2] [--users 50]
        [--history 30]

Adds two temporary accounts (removed at the end), then:
1. times sequential requests per endpoint (p50 / p95 / max in ms, requests per second);
2. puts ``--users`` concurrent users on each of the ranking page, a province page (browser
   session), ``/api/rankings`` and ``/api/provinces/{code}`` (HTTP Basic, as scripts call it)
   for ``--seconds`` each: every user sends its next request as soon as the last is answered
   (no think time), from ``--client-processes`` processes of threads on this same machine.
The target of issue 14 is p99 < 500 ms under 50 users on a 1M publication; the leadership
view's (issue 13) is p95 <= 300 ms for the ranking page and ``/api/rankings``.

``--history N``: first gives the database N published nights, the latest real one and N - 1
earlier nights whose rows (runs, publications, metrics, reason counts, breakdowns, coverage)
are copies of the latest's under earlier dates: the pages read as many rows as after N real
nights. It writes into the database: use a scratch copy of the data folder.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from popsync import store  # noqa: E402
from portal import security  # noqa: E402

TARGET_P99_MS = 500.0
LEAD, OFFICE = "bench-lead", "bench-office"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(data: Path, db_url: str, workers: int) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "serve", "--data", str(data), "--db-url", db_url,
         "--port", str(port), "--workers", str(workers)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/api/health", timeout=2).status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("popsync serve did not start")
        time.sleep(0.2)


def _session(client: httpx.Client, username: str, password: str) -> None:
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    answer = client.post("/login", data={"username": username, "password": password,
                                         "csrf_token": token})
    if answer.status_code != 303:
        raise SystemExit(f"login of {username}: HTTP {answer.status_code}")


def _timed(client: httpx.Client, path: str, n: int, **kwargs) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.get(path, **kwargs)
        times.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path}: HTTP {response.status_code}")
    return times


def _percentile(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def _sequential_row(name: str, times: list[float], size: int) -> str:
    return (f"| {name} | {len(times)} | {statistics.median(times):.1f} | "
            f"{_percentile(times, 0.95):.1f} | {max(times):.1f} | "
            f"{1000 * len(times) / sum(times):.0f} | {size / 1024:.0f} |")


def _users(job: tuple) -> tuple[list[float], int, float]:
    """One client process: ``users`` threads, each a client of its own (kept-alive connection,
    its own session or Basic credentials), all logged in first, then requesting ``path`` for
    ``seconds``; returns the latencies, the errors and the wall time."""
    base, path, users, seconds, login, auth = job
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    window = {}
    # the window opens when every user has logged in (a login is a password hash: ~50 ms each)
    ready = threading.Barrier(users + 1, action=lambda: window.update(
        started=time.monotonic(), until=time.monotonic() + seconds))

    def user():
        with httpx.Client(base_url=base, timeout=60, follow_redirects=False) as client:
            if login:
                _session(client, *login)
            ready.wait()
            mine = []
            while time.monotonic() < window["until"]:
                start = time.perf_counter()
                status = client.get(path, auth=auth).status_code
                mine.append((time.perf_counter() - start) * 1000)
                if status != 200:
                    with lock:
                        errors[0] += 1
            with lock:
                latencies.extend(mine)

    threads = [threading.Thread(target=user) for _ in range(users)]
    for thread in threads:
        thread.start()
    ready.wait()
    for thread in threads:
        thread.join()
    return latencies, errors[0], time.monotonic() - window["started"]


def _load(base: str, path: str, users: int, seconds: float, processes: int,
          login: tuple | None = None, auth: tuple | None = None) -> dict:
    shares = [users // processes + (i < users % processes) for i in range(processes)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        parts = pool.map(_users, [(base, path, n, seconds, login, auth) for n in shares if n])
    latencies = [t for part, _, _ in parts for t in part]
    return {"n": len(latencies), "errors": sum(e for _, e, _ in parts),
            "p50": statistics.median(latencies), "p95": _percentile(latencies, 0.95),
            "p99": _percentile(latencies, 0.99), "max": max(latencies),
            "rate": sum(len(part) / wall for part, _, wall in parts)}


def add_history(engine, nights: int) -> None:
    """Copies of the latest publication's rows under the ``nights - 1`` dates before it."""
    import sqlalchemy as sa

    tables = (store.metrics, store.reason_counts, store.breakdowns, store.coverage)
    with engine.begin() as conn:
        latest = conn.execute(sa.select(store.publications).order_by(
            store.publications.c.run_date.desc()).limit(1)).mappings().one()
        day = datetime.fromisoformat(latest["run_date"]).date()
        rows = {t.name: conn.execute(sa.select(t).where(t.c.run_date == latest["run_date"]))
                .mappings().all() for t in tables}
        for back in range(1, nights):
            run_date = (day - timedelta(days=back)).isoformat()
            if conn.execute(sa.select(store.publications.c.run_date).where(
                    store.publications.c.run_date == run_date)).first():
                continue
            run_id = conn.execute(sa.insert(store.runs).values(
                run_date=run_date, started_at=datetime.now(UTC), finished_at=datetime.now(UTC),
                status="succeeded")).inserted_primary_key[0]
            conn.execute(sa.insert(store.publications).values(
                run_date=run_date, run_id=run_id, published_at=datetime.now(UTC),
                path=latest["path"]))
            for table in tables:
                if rows[table.name]:
                    conn.execute(sa.insert(table), [{**r, "run_date": run_date}
                                                    for r in rows[table.name]])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a published data folder")
    parser.add_argument("--db-url", help="default: SQLite in --data")
    parser.add_argument("--requests", type=int, default=100, help="sequential requests each")
    parser.add_argument("--users", type=int, default=50, help="concurrent users")
    parser.add_argument("--seconds", type=float, default=20.0, help="load per endpoint")
    parser.add_argument("--workers", type=int, default=2, help="popsync serve --workers")
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--province", default="79", help="63-scheme province of the office")
    parser.add_argument("--history", type=int, default=0,
                        help="make the database hold this many nights (see above)")
    args = parser.parse_args()
    db_url = args.db_url or store.default_db_url(args.data)
    engine = store.engine_for(db_url)
    if args.history > 1:
        add_history(engine, args.history)
    password = secrets.token_urlsafe(12)
    security.save_user(engine, LEAD, password, "leadership", replace=True)
    security.save_user(engine, OFFICE, password, "office", args.province, "63", replace=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    registry_rows = None
    with engine.connect() as connection:
        latest = connection.execute(store.runs.select().where(store.runs.c.status == "succeeded")
                                    .order_by(store.runs.c.run_date.desc())).mappings().first()
        if latest is not None:
            registry_rows = latest["participants"]
    lines = [
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; commit {commit}; machine: "
        f"{platform.machine()}, {os.cpu_count()} cores shared with other jobs; publication: "
        f"{registry_rows:,} participants; command: bench/bench_portal.py --data {args.data} "
        f"--workers {args.workers} --users {args.users} --seconds {args.seconds:g} "
        f"--client-processes {args.client_processes}"
        f"{f' --history {args.history}' if args.history else ''}",
        "",
        "Sequential requests:",
        "",
        "| request | n | p50 ms | p95 ms | max ms | req/s | KiB |",
        "|---|---|---|---|---|---|---|",
    ]
    server, base = _serve(args.data, db_url, args.workers)
    code = args.province
    basic = (OFFICE, password)
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            n = args.requests
            for name, path in (
                    ("GET / (ranking page, 63, anonymous)", "/"),
                    ("GET /?scheme=34&line=hi", "/?scheme=34&line=hi"),
                    ("GET /?map=coverage", "/?map=coverage"),
                    ("GET /api/health", "/api/health"),
                    ("GET /api/rankings?scheme=63", "/api/rankings?scheme=63"),
                    ("GET /api/rankings?scheme=34&line=hi", "/api/rankings?scheme=34&line=hi"),
                    ("GET /api/breakdowns?scheme=63", "/api/breakdowns?scheme=63"),
                    ("GET /api/coverage?scheme=63&line=hi", "/api/coverage?scheme=63&line=hi")):
                lines.append(_sequential_row(name, _timed(client, path, n),
                                             len(client.get(path).content)))
            _session(client, OFFICE, password)
            for name, path, times in (
                    (f"GET /provinces/{code} (session)", f"/provinces/{code}", n),
                    (f"GET /provinces/{code}/lists/unsynchronized.xlsx (session, audited)",
                     f"/provinces/{code}/lists/unsynchronized.xlsx", n // 4),
                    (f"GET /provinces/{code}/lists/unsynchronized.csv (session, audited)",
                     f"/provinces/{code}/lists/unsynchronized.csv", n // 4),
                    (f"GET /provinces/{code}/coverage/uninsured.xlsx (session, audited)",
                     f"/provinces/{code}/coverage/uninsured.xlsx", n // 4),
                    ("GET /exports/leadership.xlsx (session)", "/exports/leadership.xlsx",
                     n // 4)):
                lines.append(_sequential_row(name, _timed(client, path, times),
                                             len(client.get(path).content)))
            client.cookies.clear()
            path = f"/api/provinces/{code}"
            lines.append(_sequential_row(f"GET {path} (HTTP Basic)",
                                         _timed(client, path, n, auth=basic),
                                         len(client.get(path, auth=basic).content)))
        lines += [
            "",
            f"{args.users} concurrent users per endpoint, {args.seconds:g} s each (target: p99 "
            f"< {TARGET_P99_MS:.0f} ms):",
            "",
            "| request | requests | errors | p50 ms | p95 ms | p99 ms | max ms | req/s | "
            "target |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, path, login, auth in (
                ("GET / (ranking page, anonymous)", "/", None, None),
                (f"GET /provinces/{code} (session)", f"/provinces/{code}", basic, None),
                ("GET /api/rankings", "/api/rankings", None, None),
                (f"GET /api/provinces/{code} (HTTP Basic)", f"/api/provinces/{code}", None,
                 basic)):
            result = _load(base, path, args.users, args.seconds, args.client_processes, login,
                           auth)
            met = "met" if result["p99"] < TARGET_P99_MS and not result["errors"] else "NOT met"
            lines.append(
                f"| {name} | {result['n']:,} | {result['errors']} | {result['p50']:.0f} | "
                f"{result['p95']:.0f} | {result['p99']:.0f} | {result['max']:.0f} | "
                f"{result['rate']:.0f} | {met} |")
            print(lines[-1], file=sys.stderr, flush=True)
    finally:
        server.terminate()
        server.wait(30)
        security.delete_user(engine, LEAD)
        security.delete_user(engine, OFFICE)
    lines += ["", "load average (1, 5, 15 min) at the end, other jobs included: "
              + ", ".join(f"{v:.1f}" for v in os.getloadavg())]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
