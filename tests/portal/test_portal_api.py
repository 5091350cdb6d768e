"""The HTTP contract on a live uvicorn: every endpoint, anonymous and wrong-province access,
bad input, path tricks and the download audit."""

from __future__ import annotations

import csv
import http.client
import io
from urllib.parse import urlsplit

import httpx
import openpyxl
import pytest
import sqlalchemy as sa
from portal_fixtures import PASSWORD, RUN_DATES, live_server, make_accounts, publish_nights

from popsync import store
from popsync.reference import PROVINCES_34, PROVINCES_63
from portal import publication
from portal.app import PortalSettings, create_app

LINES = ("all", "si_compulsory", "si_voluntary", "hi", "ui")


def basic(username: str, password: str = PASSWORD) -> tuple[str, str]:
    return (username, password)


def raw_get(base_url: str, path: str) -> tuple[int, bytes]:
    """GET a path exactly as written (no client-side normalization of ``..`` or ``%2F``)."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    auth = httpx.BasicAuth("lead", PASSWORD)
    header = next(auth.auth_flow(httpx.Request("GET", base_url))).headers["authorization"]
    conn.request("GET", path, headers={"Authorization": header})
    response = conn.getresponse()
    return response.status, response.read()


def test_health(client):
    body = client.get("/api/health").json()
    assert body["status"] == "ok"
    assert body["latest_publication"] == RUN_DATES[-1]
    assert body["latest_run"]["status"] == "succeeded"
    assert body["latest_run_failed"] is False


@pytest.mark.parametrize("scheme", ["63", "34"])
@pytest.mark.parametrize("line", LINES)
def test_rankings_match_published_metrics(client, published, scheme, line):
    body = client.get("/api/rankings", params={"scheme": scheme, "line": line}).json()
    table = PROVINCES_63 if scheme == "63" else PROVINCES_34
    assert body["run_date"] == RUN_DATES[-1]
    assert [p["code"] for p in body["provinces"]] and {
        p["code"] for p in body["provinces"]} == set(table)
    assert [p["rank"] for p in body["provinces"]] == sorted(p["rank"] for p in body["provinces"])
    engine = store.engine_for(published[1])
    m = store.metrics
    with engine.connect() as conn:
        rows = {r.province_code: r for r in conn.execute(sa.select(m).where(
            m.c.run_date == RUN_DATES[-1], m.c.scheme == scheme, m.c.line == line))}
    for province in body["provinces"]:
        row = rows[province["code"]]
        assert province["name"] == table[province["code"]].name
        assert (province["participants"], province["synchronized"], province["rank"]) == (
            row.participants, row.synchronized, row.rank)
        assert province["sync_rate"] == pytest.approx(row.sync_rate)
        assert province["change"] == pytest.approx(row.change)
        assert "needs_correction" not in province  # the ranking shows public figures only
    trend = body["national_trend"]
    assert [p["run_date"] for p in trend] == RUN_DATES
    assert trend[-1]["participants"] == sum(r.participants for r in rows.values())


@pytest.mark.parametrize(
    ("params", "field"),
    [({"scheme": "12"}, "scheme"), ({"line": "life"}, "line"), ({"scheme": ""}, "scheme")],
)
def test_rankings_reject_malformed_parameters(client, params, field):
    response = client.get("/api/rankings", params=params)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", field]
    assert response.json()["detail"][0]["msg"].startswith("Input should be")


def test_province_api_needs_authentication(client):
    response = client.get("/api/provinces/79")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert "needs_correction" not in response.text
    wrong = client.get("/api/provinces/79", auth=basic("lead", "not-the-password"))
    assert wrong.status_code == 401


@pytest.mark.parametrize(
    ("username", "scheme", "code", "status"),
    [
        ("lead", "63", "01", 200),
        ("office79", "63", "79", 200),
        ("office79", "63", "74", 403),
        ("office79", "34", "79", 403),
        ("unit79", "34", "79", 200),
        ("unit79", "63", "77", 200),
        ("unit79", "63", "01", 403),
        ("office74", "34", "79", 403),
        ("lead", "63", "99", 404),
        ("lead", "34", "74", 404),  # 74 is no 34-scheme unit
        ("lead", "63", "7", 404),
        ("lead", "63", "abc", 404),
        ("office79", "63", "03", 404),  # unknown code: 404 before any access question
    ],
)
def test_province_api_access(client, username, scheme, code, status):
    response = client.get(f"/api/provinces/{code}", params={"scheme": scheme},
                          auth=basic(username))
    assert response.status_code == status, response.text
    if status == 403:
        assert set(response.json()) == {"detail"}


def test_province_api_figures(client, published):
    body = client.get("/api/provinces/79", auth=basic("office79")).json()
    assert body["name"] == "TP Hồ Chí Minh" and body["run_date"] == RUN_DATES[-1]
    assert set(body["lines"]) == set(LINES)
    all_line = body["lines"]["all"]
    assert all_line["participants"] == sum(
        all_line[s] for s in ("synchronized", "needs_correction", "needs_review", "unmatched"))
    by_status = {}
    for row in body["reasons"]:
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["count"]
    assert by_status.get("needs_review", 0) == all_line["needs_review"]
    assert [p["run_date"] for p in body["trend"]] == RUN_DATES
    assert body["lists"] == {"xlsx": "/provinces/79/lists/unsynchronized.xlsx?scheme=63",
                             "csv": "/provinces/79/lists/unsynchronized.csv?scheme=63"}


def test_same_code_in_two_schemes(client):
    binh_dinh = client.get("/api/provinces/52", params={"scheme": "63"}, auth=basic("lead"))
    gia_lai = client.get("/api/provinces/52", params={"scheme": "34"}, auth=basic("lead"))
    assert binh_dinh.json()["name"] == "Bình Định"
    assert gia_lai.json()["name"] == "Gia Lai"
    assert (gia_lai.json()["lines"]["all"]["participants"]
            > binh_dinh.json()["lines"]["all"]["participants"])


def _unsynchronized(client, code, scheme="63"):
    line = client.get(f"/api/provinces/{code}", params={"scheme": scheme},
                      auth=basic("lead")).json()["lines"]["all"]
    return line["participants"] - line["synchronized"]


def test_office_downloads_its_own_lists(client):
    xlsx = client.get("/provinces/79/lists/unsynchronized.xlsx", auth=basic("office79"))
    assert xlsx.status_code == 200
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in xlsx.headers["content-disposition"]
    assert xlsx.headers["cache-control"] == "no-store"
    workbook = openpyxl.load_workbook(io.BytesIO(xlsx.content), read_only=True)
    rows = [row for sheet in workbook.worksheets for row in sheet.iter_rows(min_row=2,
                                                                             values_only=True)]
    assert len(rows) == _unsynchronized(client, "79")
    assert all(row[5] == "79" for row in rows)
    text = client.get("/provinces/79/lists/unsynchronized.csv", auth=basic("office79"))
    assert text.status_code == 200 and text.content.startswith(b"\xef\xbb\xbf")
    assert len(list(csv.DictReader(io.StringIO(text.content.decode("utf-8-sig"))))) == len(rows)


@pytest.mark.parametrize(
    ("username", "scheme", "code", "status"),
    [
        (None, "63", "79", 401),
        ("office79", "63", "01", 403),
        ("office79", "34", "79", 403),
        ("office74", "63", "79", 403),
        ("unit79", "63", "74", 200),
        ("unit79", "34", "79", 200),
        ("unit79", "63", "75", 403),
        ("lead", "34", "52", 200),
        ("lead", "63", "00", 404),
    ],
)
@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_download_access(client, username, scheme, code, status, fmt):
    response = client.get(f"/provinces/{code}/lists/unsynchronized.{fmt}",
                          params={"scheme": scheme}, auth=basic(username) if username else None)
    assert response.status_code == status
    if status != 200:
        assert b"Nguy" not in response.content and len(response.content) < 2000
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    "path",
    [
        "/provinces/..%2F..%2F..%2Fetc/lists/unsynchronized.csv",
        "/provinces/../../../../etc/passwd",
        "/provinces/79/lists/../../../../../popsync.db",
        "/provinces/79/lists/unsynchronized.db",
        "/provinces/79/lists/unsynchronized.csv%00.xlsx",
        "/provinces/%2e%2e/lists/unsynchronized.csv",
        "/provinces/79/lists/unsynchronized.csv?scheme=..%2F..",
        "/static/../popsync.db",
        "/static/..%2F..%2Fpyproject.toml",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/popsync.db",
        "/publications/2026-11-21/lists/63/79/unsynchronized.csv",
    ],
)
def test_path_tricks_never_reach_files(server, path):
    status, body = raw_get(server, path)
    assert status in (400, 404, 422), (path, status)
    assert b"SQLite format" not in body and b"Nguy" not in body and b"[project]" not in body


def test_downloads_are_audited_and_leadership_reads_the_log(client):
    client.get("/provinces/77/lists/unsynchronized.csv", auth=basic("unit79"))
    client.get("/provinces/01/lists/unsynchronized.csv", auth=basic("office74"))
    assert client.get("/api/audit").status_code == 401
    assert client.get("/api/audit", auth=basic("office79")).status_code == 403
    entries = client.get("/api/audit", auth=basic("lead")).json()["entries"]
    granted, refused = entries[1], entries[0]
    assert (granted["username"], granted["scheme"], granted["province_code"],
            granted["file_format"], granted["outcome"], granted["run_date"]) == (
        "unit79", "63", "77", "csv", "granted", RUN_DATES[-1])
    assert (refused["username"], refused["province_code"], refused["outcome"]) == (
        "office74", "01", "refused")
    assert refused["at"].endswith("+00:00") and refused["client"] == "127.0.0.1"
    assert client.get("/api/audit", params={"limit": 0}, auth=basic("lead")).status_code == 422


def test_openapi_documents_the_contract_locally(client):
    spec = client.get("/openapi.json").json()
    for path in ("/api/health", "/api/rankings", "/api/provinces/{code}",
                 "/provinces/{code}/lists/unsynchronized.{fmt}"):
        assert path in spec["paths"]
    assert client.get("/docs").status_code == 404  # FastAPI's CDN-backed page is off
    page = client.get("/api/docs")
    assert page.status_code == 200 and "/api/rankings" in page.text
    assert "cdn" not in page.text.lower() and 'src="http' not in page.text


def test_security_headers(client):
    response = client.get("/")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


def test_nan_figures_read_as_missing(tmp_path):
    """A missing or NaN change (PostgreSQL keeps NaN floats) must not break JSON or pages."""
    db_url = store.default_db_url(tmp_path)
    engine = publish_nights(tmp_path, db_url, ["2026-11-20"], lists_of=set())
    make_accounts(engine)
    with engine.begin() as conn:
        conn.execute(store.metrics.update().where(store.metrics.c.province_code == "79")
                     .values(change=None))
    detail = publication.province_detail(engine, "2026-11-20", "63", "79", 5)
    assert detail["lines"]["all"]["change"] is None
    assert publication._value(float("nan")) is None and publication._value(0.5) == 0.5
    with live_server(create_app(PortalSettings(db_url=db_url, data_dir=tmp_path))) as base:
        assert httpx.get(base + "/api/rankings").status_code == 200
        assert httpx.get(base + "/").status_code == 200
