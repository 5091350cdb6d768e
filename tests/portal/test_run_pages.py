"""The engineers' run pages over real nights: a published night and one a gate stopped, as an
engineer reads them (steps, attempts, hosts, gates, quarantine, the validation report), and
refused to everyone else."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa
from portal_fixtures import PASSWORD, live_server, login
from worklist_fixtures import NIGHTS

from pipelines import cli
from popsync import store
from portal.app import PortalSettings, create_app

STOPPED = "2026-12-03"


def _cells(html: str, table: str, key: str) -> dict[str, list[str]]:
    """Rows of a page's table by their ``key`` attribute: {value: [cell texts]}."""
    body = html.split(f'<table id="{table}">')[1].split("</table>")[0]
    rows = {}
    for value, row in re.findall(rf'<tr\b[^>]*\s{key}="([^"]+)"[^>]*>(.*?)</tr>', body, re.S):
        rows[value] = [re.sub(r"<[^>]+>", "", c).strip()
                     for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
    return rows


@pytest.fixture(scope="module")
def nights(worklist_nation, tmp_path_factory):
    """The shared published night, copied with its work folder, then a night whose registry
    lost 40 % of its rows: the volume-drop gate stops it."""
    nation, published = worklist_nation
    out = tmp_path_factory.mktemp("run_pages") / "out"
    shutil.copytree(published, out)
    registry = pd.read_parquet(nation / "registry.parquet")
    truncated = out.parent / "registry_truncated.parquet"
    registry.iloc[: int(len(registry) * 0.6)].to_parquet(truncated, index=False)
    assert cli.main(["run", "--registry", str(truncated), "--population",
                     str(nation / "population.parquet"), "--out", str(out),
                     "--run-date", STOPPED]) == 2
    return out, registry


@pytest.fixture(scope="module")
def base(nights):
    out, _ = nights
    app = create_app(PortalSettings(db_url=store.default_db_url(out), data_dir=out))
    with live_server(app) as url:
        yield url


@contextlib.contextmanager
def _client(base: str, username: str | None):
    with httpx.Client(base_url=base, timeout=60) as client:
        if username:
            assert login(client, username, PASSWORD).status_code == 303
        yield client


def test_an_engineer_reads_every_step_of_a_published_night_as_the_night_ran_it(nights, base):
    out, registry = nights
    engine = store.engine_for(store.default_db_url(out))
    with engine.connect() as connection:
        runs = connection.execute(sa.select(store.runs).order_by(store.runs.c.run_id)).all()
    published, stopped = runs[0], runs[-1]
    assert published.run_date == NIGHTS[0] and stopped.run_date == STOPPED
    # what the night itself wrote of each task: the page must count the same
    work = out / store.work_path(published.run_date, published.run_id)
    timings = [json.loads(p.read_text()) for p in (work / "timings").glob("*.json")]
    tasks_of: dict[str, int] = {}
    for timing in timings:
        tasks_of[timing["step"]] = tasks_of.get(timing["step"], 0) + 1

    with _client(base, "engineer") as client:
        listing = client.get("/runs")
        assert listing.status_code == 200
        rows = _cells(listing.text, "runs", "data-run")
        assert list(rows) == [str(stopped.run_id), str(published.run_id)]  # newest first
        assert "Published" in client.get("/runs", params={"lang": "en"}).text

        page = client.get(f"/runs/{published.run_id}", params={"lang": "en"})
        assert page.status_code == 200
        steps = _cells(page.text, "steps", "data-step")
        assert {step: int(cells[1]) for step, cells in steps.items()} == tasks_of
        for step in ("extract", "validate_chunk", "match", "resolve", "publish"):
            assert steps[step][2] == steps[step][1] and steps[step][3] == "0"  # one attempt each
        assert all(cells[7] == socket.gethostname() for cells in steps.values())
        gates = _cells(page.text, "gates", "data-gate")
        assert {g: cells[1] for g, cells in gates.items()} == {
            "check_keys": "Passed", "gate_inputs": "Passed", "check_results": "Passed"}
        quarantine = _cells(page.text, "quarantine", "data-key")
        assert quarantine["registry/all"][-1].replace(",", "") == str(published.quarantined)
        by_reason = [int(cells[-1].replace(",", "")) for key, cells in quarantine.items()
                     if key.startswith("registry/") and key != "registry/all"]
        assert sum(by_reason) >= published.quarantined  # a row may have several reasons
        # the night's own estimate of its errors, for the nation and each office, adding up
        estimates = _cells(page.text, "estimates", "data-estimate")
        assert "nation" in estimates and len(estimates) > 2
        links = [int(cells[1].replace(",", "")) for code, cells in estimates.items()
                 if code != "nation"]
        assert sum(links) == int(estimates["nation"][1].replace(",", "")) > 0
        assert 0 <= float(estimates["nation"][3]) < 0.01  # the false-link rate
        report = client.get(f"/runs/{published.run_id}/validation_report.html")
        assert report.status_code == 200 and "<html" in report.text.lower()

        # no personal data on the pages: no VSS code of the registry appears
        codes = set(registry["vss_code"].astype(str))
        for html in (listing.text, page.text):
            assert not codes & set(re.findall(r"\b\d{10}\b", html))


def test_an_engineer_sees_which_gate_stopped_a_night_and_why(nights, base):
    out, registry = nights
    engine = store.engine_for(store.default_db_url(out))
    with engine.connect() as connection:
        stopped = connection.execute(sa.select(store.runs).where(
            store.runs.c.run_date == STOPPED)).one()
    with _client(base, "engineer") as client:
        page = client.get(f"/runs/{stopped.run_id}", params={"lang": "en"}).text
        assert 'data-status="failed"' in page and "check_keys" in page
        gates = _cells(page, "gates", "data-gate")
        assert list(gates) == ["check_keys"] and gates["check_keys"][1] == "Stopped the run"
        assert "volume" in gates["check_keys"][3]
        failures = _cells(page, "failures", "data-label")
        assert list(failures) == ["check_keys"]
        assert "input validation stopped the night" in failures["check_keys"][3]
        steps = _cells(page, "steps", "data-step")
        assert "match" not in steps and steps["check_keys"][3] == "1"
        # the stopped night's report is in its work folder: the page links it
        report = client.get(f"/runs/{stopped.run_id}/validation_report.html")
        assert report.status_code == 200 and "volume" in report.text
        assert not set(registry["vss_code"].astype(str)) & set(re.findall(r"\b\d{10}\b", page))
        assert client.get("/runs/999").status_code == 404


@pytest.mark.parametrize("username", ["lead", "office79"])
def test_offices_and_leadership_may_not_read_the_runs(base, username):
    with _client(base, username) as client:
        for path in ("/runs", "/runs/1", "/runs/1/validation_report.html"):
            assert client.get(path).status_code == 403, path


def test_a_visitor_is_sent_to_log_in_first(base):
    with _client(base, None) as client:
        answer = client.get("/runs/1")
        assert answer.status_code == 303 and answer.headers["location"] == "/login?next=%2Fruns%2F1"
    with _client(base, "engineer") as client:
        assert 'id="nav-runs"' in client.get("/").text
