"""Measure the portal's response times over a published data folder, on a real uvicorn.

    .venv/bin/python bench/bench_portal.py --data demo-data/published [--requests 200]
        [--history 30]

Serves the folder in this process (one uvicorn worker, as ``popsync serve`` does), adds two
temporary accounts, and times sequential requests per endpoint (p50 / p95 / max in ms and
requests per second), then the ranking page under 8 concurrent clients. The accounts are
removed at the end.

``--history N``: first gives the database N published nights, the latest real one and N - 1
earlier nights whose rows (runs, publications, metrics, reason counts, breakdowns, coverage)
are copies of the latest's under earlier dates: the pages read as many rows as after N real
nights. It writes into the database: use a scratch copy of the data folder.
"""

from __future__ import annotations

import argparse
import platform
import secrets
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "portal"))

from portal_fixtures import live_server  # noqa: E402

from popsync import store  # noqa: E402
from portal import security  # noqa: E402
from portal.app import PortalSettings, create_app  # noqa: E402


def timed(client: httpx.Client, path: str, n: int, **kwargs) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        response = client.get(path, **kwargs)
        times.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path}: HTTP {response.status_code}")
    return times


def row(name: str, times: list[float], size: int) -> str:
    times = sorted(times)
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    return (f"| {name} | {len(times)} | {statistics.median(times):.1f} | {p95:.1f} | "
            f"{times[-1]:.1f} | {1000 * len(times) / sum(times):.0f} | {size / 1024:.0f} |")


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
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--province", default="79", help="63-scheme province of the office")
    parser.add_argument("--history", type=int, default=0,
                        help="make the database hold this many nights (see above)")
    args = parser.parse_args()
    db_url = args.db_url or store.default_db_url(args.data)
    engine = store.engine_for(db_url)
    if args.history > 1:
        add_history(engine, args.history)
    password = secrets.token_urlsafe(12)
    lead, office = "bench-lead", "bench-office"
    security.save_user(engine, lead, password, "leadership", replace=True)
    security.save_user(engine, office, password, "office", args.province, "63", replace=True)
    n = args.requests
    app = create_app(PortalSettings(db_url=db_url, data_dir=args.data))
    lines = [
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; machine: {platform.machine()}, "
        f"2 cores shared; command: bench/bench_portal.py --data {args.data} --requests {n}"
        f"{f' --history {args.history}' if args.history else ''}",
        "",
        "| request | n | p50 ms | p95 ms | max ms | req/s | KiB |",
        "|---|---|---|---|---|---|---|",
    ]
    try:
        with live_server(app) as base, httpx.Client(base_url=base, timeout=60) as client:
            cases = [
                ("GET / (ranking page, 63, anonymous)", "/", {}),
                ("GET /?scheme=34&line=hi", "/?scheme=34&line=hi", {}),
                ("GET /?map=coverage", "/?map=coverage", {}),
                ("GET /api/health", "/api/health", {}),
                ("GET /api/rankings?scheme=63", "/api/rankings?scheme=63", {}),
                ("GET /api/rankings?scheme=34&line=hi", "/api/rankings?scheme=34&line=hi", {}),
                ("GET /api/breakdowns?scheme=63", "/api/breakdowns?scheme=63", {}),
                ("GET /api/coverage?scheme=63&line=hi", "/api/coverage?scheme=63&line=hi", {}),
            ]
            for name, path, kwargs in cases:
                size = len(client.get(path, **kwargs).content)
                lines.append(row(name, timed(client, path, n, **kwargs), size))
            # a session as a browser has it, then HTTP Basic as scripts do (scrypt per request)
            page = client.get("/login")
            token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
            client.post("/login", data={"username": office, "password": password,
                                        "csrf_token": token})
            path = f"/provinces/{args.province}"
            lines.append(row(f"GET {path} (province page, session)",
                             timed(client, path, n), len(client.get(path).content)))
            for path in (f"/provinces/{args.province}/lists/unsynchronized.xlsx",
                         f"/provinces/{args.province}/lists/unsynchronized.csv",
                         f"/provinces/{args.province}/coverage/uninsured.xlsx",
                         "/exports/leadership.xlsx"):
                lines.append(row(f"GET {path} (session)", timed(client, path, n // 4),
                                 len(client.get(path).content)))
            client.cookies.clear()
            path = f"/api/provinces/{args.province}"
            lines.append(row(f"GET {path} (HTTP Basic: scrypt each time)",
                             timed(client, path, n // 4, auth=(office, password)),
                             len(client.get(path, auth=(office, password)).content)))

            def one(_):
                with httpx.Client(base_url=base, timeout=60) as c:
                    return timed(c, "/", 10)

            start = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                concurrent = [t for ts in pool.map(one, range(n // 10)) for t in ts]
            wall = time.perf_counter() - start
            lines.append(row("GET / with 8 concurrent clients (latency each)", concurrent,
                             len(client.get("/").content)))
            lines.append("")
            lines.append(f"8 concurrent clients: {len(concurrent) / wall:.0f} ranking pages/s "
                         "overall")
    finally:
        security.delete_user(engine, lead)
        security.delete_user(engine, office)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
