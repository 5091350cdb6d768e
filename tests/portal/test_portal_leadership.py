"""The leadership view on 35 published nights: the headline, rank out of the scheme, trends,
bars from zero, the tile map, breakdowns and coverage served from the database, the uninsured
residents' lists (own province only) and the xlsx export."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta

import httpx
import openpyxl
import pytest
import sqlalchemy as sa
from portal_fixtures import live_server, login, make_accounts, publish_nights

from popsync import store
from popsync.reference import PROVINCES_34, PROVINCES_63
from portal.app import PortalSettings, create_app

NIGHTS = [(date(2026, 10, 20) + timedelta(days=i)).isoformat() for i in range(35)]
LATEST = NIGHTS[-1]


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    data = tmp_path_factory.mktemp("history")
    db_url = store.default_db_url(data)
    engine = publish_nights(data, db_url, NIGHTS, improvement=0.97,
                            lists_of={("63", "79"), ("63", "01"), ("34", "79")})
    make_accounts(engine)
    return data, db_url, engine


@pytest.fixture(scope="module")
def base(history):
    data, db_url, _ = history
    app = create_app(PortalSettings(db_url=db_url, data_dir=data, target_rate=0.97))
    with live_server(app) as url:
        yield url


@pytest.fixture
def web(base):
    with httpx.Client(base_url=base, timeout=30, follow_redirects=True) as client:
        yield client


def national(engine, run_date: str, scheme="63", line="all") -> tuple[int, int]:
    m = store.metrics
    with engine.connect() as conn:
        return tuple(conn.execute(
            sa.select(sa.func.sum(m.c.participants), sa.func.sum(m.c.synchronized)).where(
                m.c.run_date == run_date, m.c.scheme == scheme, m.c.line == line)).one())


def rate_text(value: float) -> str:
    return f"{value * 100:.2f}".replace(".", ",") + " %"


def change_text(value: float) -> str:
    return f"{value * 100:+.2f}".replace(".", ",") + " điểm %"


def test_headline_gives_the_national_rate_its_changes_and_the_count_to_fix(web, history):
    engine = history[2]
    page = web.get("/").text
    participants, synchronized = national(engine, LATEST)
    headline = page.split('id="headline"')[1].split("</section>")[0]
    assert f'id="national-rate">{rate_text(synchronized / participants)}<' in headline
    to_fix = f"{participants - synchronized:,}".replace(",", ".")
    assert re.search(rf'id="to-fix">.*?<strong>{re.escape(to_fix)}</strong>', headline)
    for nights, before in ((1, NIGHTS[-2]), (7, NIGHTS[-8]), (30, NIGHTS[-31])):
        p, s = national(engine, before)
        expected = change_text(synchronized / participants - s / p)
        item = headline.split(f'id="change-{nights}"')[1].split("</li>")[0]
        assert expected in item and f"({before})" in item, (nights, item)
    # the target is the portal's setting, and the gap to it is said
    assert f"<strong>{rate_text(0.97)}</strong>" in headline


def test_changes_say_when_there_is_no_earlier_night(tmp_path):
    data = tmp_path
    engine = publish_nights(data, store.default_db_url(data), NIGHTS[-3:], lists_for_latest=False)
    app = create_app(PortalSettings(db_url=store.default_db_url(data), data_dir=data))
    with live_server(app) as url:
        page = httpx.get(url + "/").text
    assert "chưa có số liệu" in page.split('id="change-7"')[1].split("</li>")[0]
    assert "chưa có số liệu" not in page.split('id="change-1"')[1].split("</li>")[0]
    engine.dispose()


@pytest.mark.parametrize("scheme", ["63", "34"])
def test_rank_reads_out_of_the_schemes_provinces_with_trend_and_count_to_fix(web, history,
                                                                             scheme):
    page = web.get("/", params={"scheme": scheme}).text
    size = 63 if scheme == "63" else 34
    rows = re.findall(r'<tr data-code="(\d\d)">(.*?)</tr>', page, re.S)
    assert len(rows) == size
    m = store.metrics
    with history[2].connect() as conn:
        metrics = {r.province_code: r for r in conn.execute(sa.select(m).where(
            m.c.run_date == LATEST, m.c.scheme == scheme, m.c.line == "all"))}
    for code, html in rows:
        row = metrics[code]
        assert f"<strong>{row.rank}</strong>&nbsp;/&nbsp;{size}<" in html
        fix = f"{row.participants - row.synchronized:,}".replace(",", ".")
        assert f'class="num to-fix">{fix}<' in html
        # a sparkline of the last 30 nights: 30 points, 29 segments
        path = re.search(r'<svg class="spark".*?<path class="line" d="([^"]+)"', html).group(1)
        assert path.count("L") == 29


def test_bars_start_at_zero_and_show_the_target(web):
    page = web.get("/").text
    bars = page.split('class="chart bars"')[1].split("</svg>")[0]
    plot = 960 - 190 - 70
    for width, label in re.findall(r'<rect class="bar[^"]*" x="190" y="[\d.]+" width="([\d.]+)"'
                                   r' height="\d+"><title>[^:]+: ([\d,]+) %', bars)[:10]:
        rate = float(label.replace(",", ".")) / 100
        assert float(width) == pytest.approx(plot * rate, abs=plot * 0.001)  # from 0, not 85 %
    target = re.search(r'<line class="target" x1="([\d.]+)"', bars).group(1)
    assert float(target) == pytest.approx(190 + plot * 0.97, abs=0.1)


def test_tile_map_has_every_province_coloured_by_its_rate(web, history):
    for scheme, table in (("63", PROVINCES_63), ("34", PROVINCES_34)):
        for shown in ("sync", "coverage"):
            page = web.get("/", params={"scheme": scheme, "map": shown}).text
            tiles = re.findall(r'<rect class="tile"[^>]*fill="(#[0-9a-f]{6})" data-code="(\d\d)">'
                               r'<title>[^<]*: ([\d,]+) %', page)
            assert {code for _, code, _ in tiles} == set(table)
            by_rate = sorted(tiles, key=lambda t: float(t[2].replace(",", ".")))
            # the worst province gets the worst colour of the legend, the best the best
            assert by_rate[0][0] == "#b42318" and by_rate[-1][0] == "#1a6b3c"


def test_breakdowns_are_served_from_the_database_and_add_up(web, history):
    engine = history[2]
    body = web.get("/api/breakdowns", params={"scheme": "63", "line": "hi"}).json()
    b = store.breakdowns
    with engine.connect() as conn:
        stored = conn.execute(sa.select(b.c.dimension, b.c.value, sa.func.sum(b.c.participants),
                                        sa.func.sum(b.c.synchronized))
                              .where(b.c.run_date == LATEST, b.c.scheme == "63", b.c.line == "hi")
                              .group_by(b.c.dimension, b.c.value)).all()
    served = {(d, g["value"]): (g["participants"], g["synchronized"])
              for d, groups in body["groups"].items() for g in groups}
    assert served == {(d, v): (p, s) for d, v, p, s in stored}
    participants, _ = national(engine, LATEST, line="hi")
    for dimension in ("age_band", "gender"):
        assert sum(g["participants"] for g in body["groups"][dimension]) == participants
    assert [g["value"] for g in body["groups"]["age_band"]][0] == "0-5"
    one = web.get("/api/breakdowns", params={"scheme": "34", "code": "79"}).json()
    assert one["code"] == "79" and one["groups"]["gender"]
    assert web.get("/api/breakdowns", params={"scheme": "34", "code": "02"}).status_code == 404
    page = web.get("/", params={"line": "hi"}).text
    assert 'id="breakdown-age_band"' in page and 'id="breakdown-gender"' in page


def test_coverage_ranking_is_public_and_ranked(web):
    body = web.get("/api/coverage", params={"scheme": "34", "line": "hi"}).json()
    rates = [p["coverage_rate"] for p in body["provinces"]]
    assert len(rates) == 34 and rates == sorted(rates, reverse=True)
    assert all(p["uncovered"] == p["residents"] - p["covered"] for p in body["provinces"])
    page = web.get("/", params={"scheme": "34"}).text
    assert len(re.findall(r'<tr data-coverage-code="\d\d">', page)) == 34


def test_an_office_downloads_its_uninsured_residents_and_not_anothers(base, history):
    with httpx.Client(base_url=base, follow_redirects=True) as office:
        assert office.get("/provinces/79/coverage/uninsured.csv").status_code == 401
        login(office, "office79")
        own = office.get("/provinces/79/coverage/uninsured.csv")
        assert own.status_code == 200 and own.text.count("\n") == 3
        assert "attachment" in own.headers["content-disposition"]
        assert set(re.findall(r",(\d\d),", own.text)) == {"79"}
        assert office.get("/provinces/01/coverage/uninsured.csv").status_code == 403
        assert office.get("/provinces/79/coverage/uninsured.xlsx").status_code == 200
        page = office.get("/provinces/79").text
        assert 'id="download-uninsured-xlsx"' in page
        assert re.search(r'id="province-rank">\d+ / 63<', page)
        assert 'id="province-coverage"' in page and 'id="breakdown-age_band"' in page
        # its own rank, out of 63, in the headline
        ranking = office.get("/").text
        assert re.search(r'id="my-rank">.*?<strong>\d+ / 63</strong>', ranking)
        assert re.findall(r'<rect class="tile own"[^>]*data-code="(\d\d)"', ranking) == ["79"]
    own_tile = r'<rect class="tile own"[^>]*data-code="(\d\d)"'
    with httpx.Client(base_url=base, follow_redirects=True) as office:
        login(office, "office74")  # Bình Dương: part of TP Hồ Chí Minh (79) since July 2025
        assert re.findall(own_tile, office.get("/").text) == ["74"]
        assert re.findall(own_tile, office.get("/", params={"scheme": "34"}).text) == ["79"]
    from portal.tables import audit_log
    with history[2].connect() as conn:
        actions = conn.execute(sa.select(audit_log.c.province_code, audit_log.c.outcome).where(
            audit_log.c.action == "download_uninsured")).all()
    assert ("01", "refused") in actions and ("79", "granted") in actions


def test_export_workbook_holds_ranking_breakdowns_and_coverage(web, history):
    response = web.get("/exports/leadership.xlsx", params={"scheme": "34", "lang": "en"})
    assert response.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(response.content), read_only=True)
    assert book.sheetnames == ["Ranking", "Age and gender", "Coverage"]
    ranking = list(book["Ranking"].iter_rows(values_only=True))
    assert ranking[0][:4] == ("Run date", "Insurance line", "Rank", "Out of")
    assert len(ranking) == 1 + 34 * 5 and {r[3] for r in ranking[1:]} == {34}
    m = store.metrics
    with history[2].connect() as conn:
        hcmc = conn.execute(sa.select(m).where(m.c.run_date == LATEST, m.c.scheme == "34",
                                               m.c.line == "all", m.c.province_code == "79")
                            ).one()
    row = next(r for r in ranking[1:] if r[1] == "All" and r[4] == "79")
    assert (row[2], row[6], row[7], row[8]) == (
        hcmc.rank, hcmc.participants, hcmc.synchronized, hcmc.participants - hcmc.synchronized)
    coverage = list(book["Coverage"].iter_rows(values_only=True))
    assert len(coverage) == 1 + 34 * 5
    groups = list(book["Age and gender"].iter_rows(values_only=True))
    assert {r[2] for r in groups[1:]} == {"Nation", *PROVINCES_34}
    b = store.breakdowns
    with history[2].connect() as conn:
        stored = conn.execute(sa.select(b.c.province_code, b.c.value, b.c.participants,
                                        b.c.synchronized).where(
            b.c.run_date == LATEST, b.c.scheme == "34", b.c.line == "ui",
            b.c.dimension == "gender")).all()
    sheet = {(r[2], r[4]): (r[5], r[6]) for r in groups[1:]
             if r[1] == "Unemployment insurance" and r[3] == "Gender"}
    names = {"M": "Male", "F": "Female"}
    assert {k: v for k, v in sheet.items() if k[0] != "Nation"} == {
        (code, names[value]): (p, s) for code, value, p, s in stored}
    for value in ("M", "F"):
        assert sheet[("Nation", names[value])] == tuple(
            sum(row[i] for row in stored if row[1] == value) for i in (2, 3))


def test_rankings_api_carries_the_headline_rank_out_of_and_trends(web, history):
    body = web.get("/api/rankings", params={"scheme": "34"}).json()
    participants, synchronized = national(history[2], LATEST, "34")
    assert body["headline"]["to_fix"] == participants - synchronized
    assert body["headline"]["changes"]["30"]["run_date"] == NIGHTS[-31]
    assert body["target"] == 0.97
    assert all(p["rank_of"] == 34 and len(p["trend"]) == 30 for p in body["provinces"])
    assert len(body["national_trend"]) == 30


def test_print_stylesheet_leaves_out_navigation_and_controls():
    from pathlib import Path

    css = (Path(__file__).resolve().parents[2] / "portal/static/portal.css").read_text()
    rules = css.split("@media print")[1]
    for hidden in ("header.top nav", ".controls", ".no-print"):
        assert hidden in rules.split("display: none")[0]


def test_a_night_published_before_breakdowns_and_coverage_still_shows(tmp_path):
    engine = publish_nights(tmp_path, store.default_db_url(tmp_path), NIGHTS[-2:],
                            lists_for_latest=False)
    with engine.begin() as conn:
        conn.execute(sa.delete(store.breakdowns))
        conn.execute(sa.delete(store.coverage))
    app = create_app(PortalSettings(db_url=store.default_db_url(tmp_path), data_dir=tmp_path))
    with live_server(app) as url:
        page = httpx.get(url + "/", params={"map": "coverage"})
        assert page.status_code == 200 and 'id="national-rate"' in page.text
        assert 'id="breakdowns"' not in page.text and 'id="coverage"' not in page.text
        assert page.text.count('fill="#d0d5db"') == 63  # every tile grey: no coverage figures
        assert 'id="map-empty"' in page.text  # and the map says so
        assert httpx.get(url + "/api/coverage").json()["provinces"] == []
    engine.dispose()
