"""End to end on a real nightly run: ``popsync demo --no-serve`` (generate, two nights with
corrections between them, demo accounts), then the portal over what the run published."""

from __future__ import annotations

import csv
import io
import re

import httpx
import openpyxl
import pytest
import sqlalchemy as sa
from portal_fixtures import live_server

from pipelines import demo
from popsync import store
from portal.app import PortalSettings, create_app

pytestmark = pytest.mark.slow


def _run_demo(out, capsys) -> tuple[str, str]:
    from pipelines.cli import main

    assert main(["demo", "--people", "3000", "--seed", "1", "--out", str(out),
                 "--no-serve"]) == 0
    printed = capsys.readouterr().out
    return re.search(rf"{demo.LEADERSHIP_USER} / (\S+)", printed).group(1), printed


def _list_rows(content: bytes) -> list[tuple]:
    workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    return [row for sheet in workbook.worksheets
            for row in sheet.iter_rows(min_row=2, values_only=True)]


def test_demo_then_portal_over_the_real_publication(tmp_path, capsys):
    password, printed = _run_demo(tmp_path, capsys)
    assert "http://127.0.0.1:8000/" in printed
    data = tmp_path / "published"
    engine = store.engine_for(store.default_db_url(data))
    with engine.connect() as conn:
        dates = [r.run_date for r in conn.execute(
            sa.select(store.publications.c.run_date).order_by(store.publications.c.run_date))]
    assert len(dates) == 2

    app = create_app(PortalSettings(db_url=store.default_db_url(data), data_dir=data))
    lead, office = (demo.LEADERSHIP_USER, password), (demo.OFFICE_USER, password)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        health = client.get("/api/health").json()
        assert health["latest_publication"] == dates[-1] and not health["latest_run_failed"]
        for scheme in ("63", "34"):
            body = client.get("/api/rankings", params={"scheme": scheme}).json()
            assert len(body["provinces"]) > 0
            trend = body["national_trend"]
            assert [p["run_date"] for p in trend] == dates
            # offices corrected records between the nights: the national rate rose
            assert trend[1]["sync_rate"] > trend[0]["sync_rate"]
            assert any(p["change"] for p in body["provinces"])

        figures = client.get("/api/provinces/79", auth=office).json()["lines"]["all"]
        xlsx = client.get("/provinces/79/lists/unsynchronized.xlsx", auth=office)
        assert xlsx.status_code == 200
        rows = _list_rows(xlsx.content)
        assert len(rows) == figures["participants"] - figures["synchronized"] > 0
        text = client.get("/provinces/79/lists/unsynchronized.csv", auth=office)
        assert len(list(csv.reader(io.StringIO(text.content.decode("utf-8-sig"))))) == (
            len(rows) + 1)
        assert client.get("/provinces/01/lists/unsynchronized.xlsx",
                          auth=office).status_code == 403

        unit = client.get("/api/provinces/79", params={"scheme": "34"}, auth=lead).json()
        merged = _list_rows(client.get("/provinces/79/lists/unsynchronized.xlsx",
                                       params={"scheme": "34"}, auth=lead).content)
        line = unit["lines"]["all"]
        assert len(merged) == line["participants"] - line["synchronized"]
        assert client.get("/", params={"scheme": "34"}).status_code == 200

    # Rerunning reuses the nation, replaces both nights and resets the demo passwords.
    new_password, printed = _run_demo(tmp_path, capsys)
    assert "reusing the synthetic nation" in printed
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(
            store.publications)).scalar_one() == 2
    with live_server(create_app(PortalSettings(db_url=store.default_db_url(data),
                                               data_dir=data))) as base:
        assert httpx.get(base + "/api/audit", auth=(demo.LEADERSHIP_USER, new_password)
                         ).status_code == 200
        if new_password != password:
            assert httpx.get(base + "/api/audit", auth=lead).status_code == 401
