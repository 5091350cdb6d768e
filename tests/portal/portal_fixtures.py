"""Test helpers: publish nights into the publication database the way the nightly run does
(through ``popsync.store``), write small list files, and serve an app on a real uvicorn."""

from __future__ import annotations

import contextlib
import json
import random
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import openpyxl
import pandas as pd
import sqlalchemy as sa
import uvicorn

from popsync import store
from popsync.contracts import LINES, NEEDS_CORRECTION, NEEDS_REVIEW, UNMATCHED
from popsync.reference import PROVINCES_34, PROVINCES_63, codes_63_of
from portal import security
from portal.cli import UVICORN_OPTIONS

RUN_DATES = ["2026-11-19", "2026-11-20", "2026-11-21"]
PASSWORD = "correct-horse-9"
# username -> (role, province, scheme)
ACCOUNTS = {
    "lead": ("leadership", None, None),
    "office79": ("office", "79", "63"),
    "office74": ("office", "74", "63"),
    "unit79": ("office", "79", "34"),
    "unit52": ("office", "52", "34"),
    "engineer": ("engineer", None, None),
}
LINE_SHARE = {"all": 1.0, "si_compulsory": 0.3, "si_voluntary": 0.08, "hi": 0.9, "ui": 0.25}
UNSYNC_STATUSES = (NEEDS_CORRECTION, NEEDS_REVIEW, UNMATCHED)
STATUS_SHEETS = {NEEDS_CORRECTION: "Cần điều chỉnh", NEEDS_REVIEW: "Cần xác minh",
                 UNMATCHED: "Không tìm thấy"}
HEADERS = ["Mã số BHXH", "Họ và tên", "Ngày sinh", "Giới tính", "Số định danh cá nhân",
           "Mã tỉnh", "Tình trạng", "Lý do"]
REASON_OF = {NEEDS_CORRECTION: ("name_mismatch", "missing_id"), NEEDS_REVIEW: ("ambiguous",),
             UNMATCHED: ("no_candidate",)}


def _counts_63(night: int, seed: int, improvement: float = 0.85,
               size: int = 1) -> dict[str, dict[str, dict[str, int]]]:
    """line -> province -> status counts (63 scheme); rates improve a little every night (the
    unsynchronized share times ``improvement``); ``size`` times the participants."""
    rng = random.Random(seed)
    result: dict[str, dict[str, dict[str, int]]] = {line: {} for line in LINES}
    for code in PROVINCES_63:
        participants = rng.randint(30, 120) * size
        unsynced_share = rng.uniform(0.04, 0.25) * (improvement ** night)
        for line, share in LINE_SHARE.items():
            n = max(1, round(participants * share))
            unsynced = round(n * unsynced_share)
            correction = round(unsynced * 0.6)
            review = round(unsynced * 0.25)
            unmatched = unsynced - correction - review
            result[line][code] = {
                "participants": n, "synchronized": n - unsynced,
                NEEDS_CORRECTION: correction, NEEDS_REVIEW: review, UNMATCHED: unmatched,
            }
    return result


def _in_34(counts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {
        unit: {key: sum(counts[old][key] for old in codes_63_of(unit))
               for key in counts[next(iter(counts))]}
        for unit in PROVINCES_34
    }


def _metric_rows(run_date: str, counts_by_scheme, previous: dict | None) -> list[dict]:
    rows = []
    for scheme, by_line in counts_by_scheme.items():
        for line, by_province in by_line.items():
            frame = pd.DataFrame.from_dict(by_province, orient="index")
            frame["sync_rate"] = frame["synchronized"] / frame["participants"]
            frame["rank"] = frame["sync_rate"].rank(ascending=False, method="min").astype(int)
            for code, row in frame.iterrows():
                before = (previous or {}).get((scheme, line, code))
                rows.append({
                    "run_date": run_date, "scheme": scheme, "line": line, "province_code": code,
                    **{k: int(row[k]) for k in ("participants", "synchronized", *UNSYNC_STATUSES,
                                                "rank")},
                    "sync_rate": float(row["sync_rate"]),
                    "change": None if before is None else float(row["sync_rate"]) - before,
                })
    return rows


AGE_SHARES = {"0-5": 0.08, "6-17": 0.2, "18-39": 0.34, "40-59": 0.26, "60+": 0.12}
GENDER_SHARES = {"M": 0.49, "F": 0.51}
COUNT_KEYS = ("participants", "synchronized", NEEDS_CORRECTION, NEEDS_REVIEW, UNMATCHED)


def _split(counts: dict[str, int], shares: dict[str, float]) -> dict[str, dict[str, int]]:
    """Counts cut into groups by shares, the remainders in the last group: they add up."""
    groups, left = {}, dict(counts)
    for i, (group, share) in enumerate(shares.items()):
        last = i == len(shares) - 1
        part = {k: left[k] if last else round(counts[k] * share) for k in
                (NEEDS_CORRECTION, NEEDS_REVIEW, UNMATCHED, "synchronized")}
        part = {k: min(v, left[k]) for k, v in part.items()}
        part["participants"] = sum(part.values())
        groups[group] = part
        left = {k: left[k] - part.get(k, 0) for k in left}
    return groups


def _group_rows(run_date: str, counts_by_scheme) -> tuple[list[dict], list[dict]]:
    """Breakdowns (age band, gender) that add up to the metrics, and coverage rows (residents a
    little above the participants, covered a little below)."""
    breakdowns, coverage = [], []
    for scheme, by_line in counts_by_scheme.items():
        for line, by_province in by_line.items():
            for code, counts in by_province.items():
                for dimension, shares in (("age_band", AGE_SHARES), ("gender", GENDER_SHARES)):
                    for value, part in _split(counts, shares).items():
                        if part["participants"]:
                            breakdowns.append({
                                "run_date": run_date, "scheme": scheme, "line": line,
                                "province_code": code, "dimension": dimension, "value": value,
                                **part, "sync_rate": part["synchronized"] / part["participants"]})
            residents = {code: round(c["participants"] * 1.12) + 3
                         for code, c in by_line["all"].items()}
            covered = {code: min(residents[code], by_province[code]["participants"])
                       for code in by_province}
            rates = pd.Series({code: covered[code] / residents[code] for code in by_province})
            ranks = rates.rank(ascending=False, method="min").astype(int)
            coverage += [{"run_date": run_date, "scheme": scheme, "line": line,
                          "province_code": code, "age_band": "all", "residents": residents[code],
                          "covered": covered[code], "coverage_rate": float(rates[code]),
                          "rank": int(ranks[code])} for code in by_province]
    return breakdowns, coverage


def _write_list(folder: Path, scheme: str, code: str, counts: dict[str, int]) -> None:
    """A province's xlsx (a sheet per status) and csv, one synthetic row per participant."""
    xlsx = folder / store.list_path(scheme, code, "xlsx")
    xlsx.parent.mkdir(parents=True, exist_ok=True)
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    csv_rows = []
    serial = 0
    for status in UNSYNC_STATUSES:
        sheet = workbook.create_sheet(STATUS_SHEETS[status])
        sheet.append(HEADERS)
        for i in range(counts[status]):
            serial += 1
            row = [f"{code}{serial:08d}", f"Nguyễn Văn {scheme}-{code}-{serial}", "1980-01-01",
                   "Nam", "", code, STATUS_SHEETS[status], REASON_OF[status][i % len(
                       REASON_OF[status])]]
            sheet.append(row)
            csv_rows.append(row)
    workbook.save(xlsx)
    pd.DataFrame(csv_rows, columns=HEADERS).to_csv(
        folder / store.list_path(scheme, code, "csv"), index=False, encoding="utf-8-sig"
    )


def publish_nights(data_dir: Path, db_url: str, run_dates: list[str], seed: int = 7,
                   lists_for_latest: bool = True,
                   lists_of: set[tuple[str, str]] | None = None, improvement: float = 0.85,
                   size: int = 1) -> sa.Engine:
    """Publish ``run_dates`` (oldest first) like the nightly run: runs, publications, metrics,
    reason counts, a publication folder holding its ``manifest.json``; list files for the latest
    night (only the (scheme, code) in ``lists_of`` when given, to keep a test quick)."""
    engine = store.engine_for(db_url)
    previous = None
    for night, run_date in enumerate(run_dates):
        counts_63 = _counts_63(night, seed, improvement, size)
        by_scheme = {"63": counts_63, "34": {line: _in_34(c) for line, c in counts_63.items()}}
        metric_rows = _metric_rows(run_date, by_scheme, previous)
        previous = {(r["scheme"], r["line"], r["province_code"]): r["sync_rate"]
                    for r in metric_rows}
        reason_rows = []
        for scheme, by_line in by_scheme.items():
            for code, counts in by_line["all"].items():
                for status in UNSYNC_STATUSES:
                    reasons = REASON_OF[status]
                    for i, reason in enumerate(reasons):
                        count = len(range(i, counts[status], len(reasons)))
                        if count:
                            reason_rows.append({
                                "run_date": run_date, "scheme": scheme, "province_code": code,
                                "status": status, "reason": reason, "count": count,
                            })
        started = datetime(*map(int, run_date.split("-")), 1, 0, tzinfo=UTC)
        path = store.publication_path(run_date)
        with engine.begin() as conn:
            run_id = conn.execute(store.runs.insert().values(
                run_date=run_date, started_at=started, finished_at=started + timedelta(minutes=20),
                status="succeeded", message="ok",
            )).inserted_primary_key[0]
            conn.execute(store.publications.insert().values(
                run_date=run_date, run_id=run_id, published_at=started + timedelta(minutes=20),
                path=path,
            ))
            conn.execute(store.metrics.insert(), metric_rows)
            if reason_rows:
                conn.execute(store.reason_counts.insert(), reason_rows)
            breakdown_rows, coverage_rows = _group_rows(run_date, by_scheme)
            conn.execute(store.breakdowns.insert(), breakdown_rows)
            conn.execute(store.coverage.insert(), coverage_rows)
        folder = data_dir / path
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "manifest.json").write_text(
            json.dumps({"run_id": run_id, "run_date": run_date}), "utf-8")
        if lists_for_latest and night == len(run_dates) - 1:
            for scheme, by_line in by_scheme.items():
                for code, counts in by_line["all"].items():
                    if lists_of is None or (scheme, code) in lists_of:
                        _write_list(folder, scheme, code, counts)
                        _write_uninsured(folder, scheme, code)
    return engine


def _write_uninsured(folder: Path, scheme: str, code: str) -> None:
    """A province's list of residents without health insurance: two rows naming it."""
    rows = pd.DataFrame({"Số định danh cá nhân": [f"0{code}2{i:08d}" for i in range(2)],
                         "Mã tỉnh": [code, code], "Nhóm tuổi": ["0-5", "18-39"]})
    target = folder / store.uninsured_list_path(scheme, code, "csv")
    target.parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(target, index=False, encoding="utf-8-sig")
    with pd.ExcelWriter(folder / store.uninsured_list_path(scheme, code, "xlsx")) as book:
        rows.to_excel(book, index=False)


def add_run(engine: sa.Engine, run_date: str, status: str, message: str = "") -> None:
    started = datetime(*map(int, run_date.split("-")), 1, 0, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(store.runs.insert().values(
            run_date=run_date, started_at=started,
            finished_at=None if status == "running" else started + timedelta(minutes=5),
            status=status, message=message,
        ))


@contextlib.contextmanager
def live_server(app):
    """Serve ``app`` on a free 127.0.0.1 port with the uvicorn settings of ``popsync serve``;
    yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", **UVICORN_OPTIONS)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def make_accounts(engine: sa.Engine) -> None:
    for username, (role, province, scheme) in ACCOUNTS.items():
        security.save_user(engine, username, PASSWORD, role, province, scheme)


def login(client: httpx.Client, username: str, password: str = PASSWORD) -> httpx.Response:
    """Log in through the form, as a browser would (CSRF cookie from GET /login first)."""
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": token})
