"""Measure the clerks' work list page over a published data folder, served by ``popsync serve``
in its own process (as production runs it), for the province with the most rows to fix.

    .venv/bin/python bench/bench_worklist.py --data /tmp/pub1m [--db-url URL] [--requests 400]

The data folder is a real night's output (``popsync run``; its ``worklist`` step loaded the
rows). Adds a temporary office account of the biggest province (removed at the end), logs in
with a browser session, then sends ``--requests`` page requests one after another, cycling
through a mix a clerk makes: the first page, a deep page, sorted by name descending, a name
typed without diacritics (full, and its first syllables), a VSS code, a personal ID, a status,
a reason and an insurance line filter, the 34-scheme unit holding the province. Prints p50,
p95 and max per kind and over all, against the target of issue 11 (p95 <= 300 ms), and the
number of rows in the province's list.
"""

from __future__ import annotations

import argparse
import platform
import random
import secrets
import statistics
import sys
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_portal import _percentile, _serve, _session  # noqa: E402

from popsync import store  # noqa: E402
from popsync.reference.provinces import SCHEME_63_TO_34  # noqa: E402
from popsync.text import folded_name  # noqa: E402
from portal import security  # noqa: E402

TARGET_P95_MS = 300.0
OFFICE = "bench-worklist-office"


def _samples(engine: sa.Engine, run_id: int, code: str, n: int, seed: int) -> dict[str, list]:
    """Names, VSS codes and personal IDs of the province's list to search for."""
    rows = store.worklist_rows
    with engine.connect() as connection:
        found = connection.execute(
            sa.select(rows.c.vss_code, rows.c.full_name, rows.c.national_id)
            .where(rows.c.run_id == run_id, rows.c.province_code == code)).all()
    picked = random.Random(seed).sample(found, min(n, len(found)))
    return {"names": [folded_name(r.full_name) for r in picked if r.full_name],
            "vss": [r.vss_code for r in picked],
            "ids": [r.national_id for r in picked if r.national_id and len(r.national_id) == 12]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--db-url")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    db_url = args.db_url or store.default_db_url(args.data)
    engine = store.engine_for(db_url)
    pubs, rows = store.publications, store.worklist_rows
    with engine.connect() as connection:
        run_date, run_id = connection.execute(
            sa.select(pubs.c.run_date, pubs.c.run_id).order_by(pubs.c.run_date.desc()).limit(1)
        ).one()
        by_province = connection.execute(
            sa.select(rows.c.province_code, sa.func.count()).where(rows.c.run_id == run_id)
            .group_by(rows.c.province_code).order_by(sa.func.count().desc())).all()
        participants = connection.execute(sa.select(store.runs.c.participants).where(
            store.runs.c.run_id == run_id)).scalar()
    code, listed = by_province[0]
    unit = SCHEME_63_TO_34.get(code, code)
    samples = _samples(engine, run_id, code, args.requests, args.seed)
    password = secrets.token_urlsafe(16)
    security.save_user(engine, OFFICE, password, "office", unit, "34", replace=True)
    server, base = _serve(args.data, db_url, args.workers)
    times: dict[str, list[float]] = {}
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            _session(client, OFFICE, password)
            page = f"/provinces/{code}/worklist"
            names = samples["names"]
            kinds = {
                "first page": lambda i: (page, {}),
                "page 40": lambda i: (page, {"page": 40}),
                "sorted by name, desc": lambda i: (page, {"sort": "name", "order": "desc"}),
                "name without diacritics": lambda i: (page, {"q": names[i % len(names)]}),
                "first syllables of a name": lambda i: (
                    page, {"q": " ".join(names[i % len(names)].split()[:2])}),
                "VSS code": lambda i: (page, {"q": samples["vss"][i % len(samples["vss"])]}),
                "personal ID": lambda i: (page, {"q": samples["ids"][i % len(samples["ids"])]}),
                "status filter": lambda i: (page, {"status": "needs_correction"}),
                "reason filter": lambda i: (page, {"reason": "name_mismatch"}),
                "line filter, page 5": lambda i: (page, {"line": "si_compulsory", "page": 5}),
                "34-scheme unit": lambda i: (f"/provinces/{unit}/worklist", {}),
            }
            for path, params in (kind(0) for kind in kinds.values()):  # warm up once each
                client.get(path, params={"scheme": "63", **params})
            names_of = list(kinds)
            for i in range(args.requests):
                kind = names_of[i % len(names_of)]
                path, params = kinds[kind](i // len(names_of))
                scheme = "34" if kind == "34-scheme unit" else "63"
                start = time.perf_counter()
                answer = client.get(path, params={"scheme": scheme, **params})
                times.setdefault(kind, []).append((time.perf_counter() - start) * 1000)
                if answer.status_code != 200:
                    raise SystemExit(f"{path} {params}: HTTP {answer.status_code}")
    finally:
        server.terminate()
        server.wait(10)
        security.delete_user(engine, OFFICE)
    every = [t for values in times.values() for t in values]
    print(f"work list page, {run_date}: {participants:,} participants; province {code} lists "
          f"{listed:,} rows (unit {unit} of the 34 scheme); {engine.dialect.name}; "
          f"{platform.node()}, {args.workers} server process(es)")
    print("| request | n | p50 ms | p95 ms | max ms |")
    print("|---|---|---|---|---|")
    for kind, values in [*times.items(), ("all", every)]:
        print(f"| {kind} | {len(values)} | {statistics.median(values):.1f} | "
              f"{_percentile(values, 0.95):.1f} | {max(values):.1f} |")
    p95 = _percentile(every, 0.95)
    print(f"p95 over all {len(every)} requests: {p95:.1f} ms (target <= {TARGET_P95_MS:.0f} ms):"
          f" {'met' if p95 <= TARGET_P95_MS else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
