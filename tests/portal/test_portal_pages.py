"""Server-rendered pages on a live uvicorn: sessions, CSRF, throttling, run states, sorting,
languages, and nothing fetched from outside the portal."""

from __future__ import annotations

import re
import unicodedata

import httpx
import pytest
from portal_fixtures import (
    PASSWORD,
    RUN_DATES,
    add_run,
    live_server,
    login,
    make_accounts,
    publish_nights,
)

from popsync import store
from portal.app import PortalSettings, create_app
from portal.security import Throttle


def unidecode_vi(name: str) -> str:
    stripped = unicodedata.normalize("NFD", name.replace("Đ", "D").replace("đ", "d"))
    return "".join(ch for ch in stripped if not unicodedata.combining(ch)).lower()


def ranking_codes(html: str) -> list[str]:
    return re.findall(r'<tr data-code="(\d\d)">', html)


def test_public_ranking_is_vietnamese_and_impersonal(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "Xếp hạng tỉnh, thành phố theo tỷ lệ đồng bộ" in page.text
    assert len(ranking_codes(page.text)) == 63
    assert f"<strong>{RUN_DATES[-1]}</strong>" in page.text
    assert "<svg" in page.text and 'class="line"' in page.text  # trend chart
    assert page.text.count('<rect class="bar') == 63  # a bar per province
    assert "/provinces/" not in page.text  # anonymous: no province page links, no lists
    assert "unsynchronized" not in page.text


def test_scheme_line_and_language_switch(client):
    page = client.get("/", params={"scheme": "34", "line": "hi", "lang": "en"})
    assert len(ranking_codes(page.text)) == 34
    assert "Provinces ranked by synchronization rate" in page.text
    assert ('id="line-hi" href="/?scheme=34&amp;line=hi&amp;sort=rank&amp;order=asc" '
            'class="active"') in page.text
    # the language is remembered in a cookie
    assert "Provinces ranked" in client.get("/").text
    assert "Xếp hạng tỉnh" in client.get("/", params={"lang": "vi"}).text


@pytest.mark.parametrize(("sort", "order"), [("name", "asc"), ("sync_rate", "desc"),
                                             ("participants", "asc"), ("change", "desc"),
                                             ("code", "desc")])
def test_ranking_sorts(client, sort, order):
    api = client.get("/api/rankings").json()["provinces"]
    html = client.get("/", params={"sort": sort, "order": order}).text
    codes = ranking_codes(html)
    by_code = {p["code"]: p for p in api}
    if sort == "name":
        plain = [unidecode_vi(by_code[c]["name"]) for c in codes]
        assert plain == sorted(plain)
        assert codes[0] == "89"  # An Giang
        assert codes.index("67") < codes.index("87")  # Đắk Nông sorts as D, before Đồng Tháp
        assert codes.index("64") < codes.index("01")  # Gia Lai, Hà Nội
    else:
        values = [by_code[c][sort] if sort != "code" else c for c in codes]
        assert values == sorted(values, reverse=order == "desc")
    assert f'aria-sort="{"ascending" if order == "asc" else "descending"}"' in html


def test_bad_page_parameters_answer_422_with_a_message(client):
    page = client.get("/", params={"sort": "salary"}, headers={"accept": "text/html"})
    assert page.status_code == 422
    assert "sort: Input should be" in page.text
    assert client.get("/", params={"lang": "fr"}).status_code == 422


def test_province_page_requires_login_then_respects_the_rule(client):
    anonymous = client.get("/provinces/79", follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=%2Fprovinces%2F79%3Fscheme%3D63"
    assert client.get("/provinces/99", headers={"accept": "text/html"}).status_code == 404
    landed = login(client, "office79")
    assert landed.status_code == 200 and str(landed.url).endswith("/provinces/79?scheme=63")
    assert "TP Hồ Chí Minh" in landed.text and 'id="download-xlsx"' in landed.text
    assert 'id="by-reason"' in landed.text and 'id="trend"' in landed.text
    other = client.get("/provinces/01", headers={"accept": "text/html"})
    assert other.status_code == 403 and "download" not in other.text
    ranking = client.get("/").text
    assert 'href="/provinces/79?scheme=63"' in ranking and 'href="/provinces/01' not in ranking


def test_login_logout_and_csrf(client):
    page = client.get("/login")
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    forged = client.post("/login", data={"username": "lead", "password": PASSWORD,
                                         "csrf_token": "forged"})
    assert forged.status_code == 403 and "popsync_session" not in client.cookies
    wrong = client.post("/login", data={"username": "lead", "password": "nope-nope",
                                        "csrf_token": token})
    assert wrong.status_code == 401 and "Sai tên đăng nhập hoặc mật khẩu" in wrong.text
    ok = client.post("/login", data={"username": "lead", "password": PASSWORD,
                                     "csrf_token": token, "next": "//evil.example/x"},
                     follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/"  # no open redirect
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    home = client.get("/").text
    assert 'id="whoami"' in home and 'id="nav-audit"' in home
    # leadership opens every province: from the ranking, the map and the coverage table
    assert len(set(re.findall(r'href="/provinces/(\d\d)\?scheme=63"', home))) == 63
    assert home.count('href="/provinces/') == 3 * 63
    session_csrf = home.split('name="csrf_token" value="')[1].split('"')[0]
    assert client.post("/logout", data={"csrf_token": "forged"},
                       headers={"accept": "text/html"}).status_code == 403
    assert client.get("/audit").status_code == 200
    out = client.post("/logout", data={"csrf_token": session_csrf}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/audit", follow_redirects=False).status_code == 303


def test_audit_page_is_for_leadership(client):
    client.get("/provinces/79/lists/unsynchronized.csv", auth=("office79", PASSWORD))
    login(client, "office79")
    assert client.get("/audit", headers={"accept": "text/html"}).status_code == 403
    client.cookies.clear()
    login(client, "lead")
    page = client.get("/audit").text
    assert "office79" in page and "63/79/unsynchronized.csv" in page


def test_no_page_loads_anything_from_outside(client):
    login(client, "lead")
    for path in ("/", "/?scheme=34", "/provinces/79", "/login", "/audit", "/api/docs"):
        html = client.get(path).text
        for url in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert url.startswith("/") or url.startswith("#"), (path, url)
    assert client.get("/static/portal.css").status_code == 200


@pytest.fixture
def fresh(tmp_path):
    """A data folder of its own, for run states and throttling."""
    db_url = store.default_db_url(tmp_path)
    engine = store.engine_for(db_url)
    make_accounts(engine)
    return tmp_path, db_url, engine


def test_no_run_yet(fresh):
    data, db_url, _ = fresh
    with live_server(create_app(PortalSettings(db_url=db_url, data_dir=data))) as base:
        page = httpx.get(base + "/")
        assert page.status_code == 200 and 'id="state-no-run"' in page.text
        assert "Chưa có lần chạy nào" in page.text
        assert httpx.get(base + "/api/health").json()["latest_publication"] is None
        rankings = httpx.get(base + "/api/rankings").json()
        assert rankings["run_date"] is None and rankings["provinces"] == []
        assert httpx.get(base + "/api/provinces/79", auth=("lead", PASSWORD)).json()[
            "run_date"] is None
        assert httpx.get(base + "/provinces/79/lists/unsynchronized.xlsx",
                         auth=("lead", PASSWORD)).status_code == 404


def test_latest_night_failed_shows_last_good_publication(fresh):
    data, db_url, engine = fresh
    publish_nights(data, db_url, ["2026-11-20"], lists_of={("63", "79")})
    add_run(engine, "2026-11-21", "failed", "input validation failed: registry.parquet")
    with live_server(create_app(PortalSettings(db_url=db_url, data_dir=data))) as base:
        page = httpx.get(base + "/").text
        assert 'id="state-failed"' in page and "2026-11-21" in page
        assert "2026-11-21 01:05:00 UTC" in page
        assert "<strong>2026-11-20</strong>" in page and len(ranking_codes(page)) == 63
        assert "input validation failed" not in page  # the message is for leadership
        health = httpx.get(base + "/api/health").json()
        assert health["latest_run_failed"] is True
        assert health["latest_publication"] == "2026-11-20"
        assert health["latest_run"]["finished_at"] == "2026-11-21T01:05:00+00:00"
        csv = httpx.get(base + "/provinces/79/lists/unsynchronized.csv",
                        auth=("office79", PASSWORD))
        assert csv.status_code == 200
        assert "publications/2026-11-20" not in csv.headers["content-disposition"]
        assert "2026-11-20" in csv.headers["content-disposition"]
        with httpx.Client(base_url=base, follow_redirects=True) as lead:
            login(lead, "lead")
            assert "input validation failed" in lead.get("/").text


def test_repeated_failed_logins_are_slowed_down(fresh):
    data, db_url, _ = fresh
    throttle = Throttle(free_attempts_per_user_and_client=3, max_delay_seconds=60)
    settings = PortalSettings(db_url=db_url, data_dir=data, throttle=throttle)
    with (live_server(create_app(settings)) as base,
          httpx.Client(base_url=base, follow_redirects=True) as client):
        for _ in range(3):
            assert login(client, "lead", "guess-guess").status_code == 401
        throttled = login(client, "lead", PASSWORD)  # even the right password must wait
        assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1
        assert "Đăng nhập sai quá nhiều lần" in throttled.text
        assert httpx.get(base + "/api/provinces/79", auth=("lead", PASSWORD)).status_code == 429
        # another account from the same address is not locked by these failures
        assert login(client, "office79").status_code == 200


def test_a_run_in_progress_is_announced(fresh):
    data, db_url, engine = fresh
    publish_nights(data, db_url, ["2026-11-20"], lists_for_latest=False)
    add_run(engine, "2026-11-21", "running")
    with live_server(create_app(PortalSettings(db_url=db_url, data_dir=data))) as base:
        page = httpx.get(base + "/", params={"lang": "en"}).text
        assert 'id="state-running"' in page and "A run (for 2026-11-21) is in progress" in page
        assert "<strong>2026-11-20</strong>" in page
        assert httpx.get(base + "/api/health").json()["latest_run"]["status"] == "running"


def test_error_pages_keep_the_logged_in_header(client):
    login(client, "office79")
    page = client.get("/provinces/99", headers={"accept": "text/html"})
    assert page.status_code == 404 and 'id="whoami"' in page.text
    assert "Không tìm thấy trang hoặc tỉnh này" in page.text
