"""The portal when something goes wrong: hostile form values, a server error, the publication
database down, a publication folder a crashed night left missing. Each on a live uvicorn."""

from __future__ import annotations

import socket

import httpx
import pytest
import sqlalchemy as sa
from portal_fixtures import PASSWORD, live_server, login, make_accounts, publish_nights

from popsync import store
from portal.app import PortalSettings, create_app

HTML = {"accept": "text/html"}


def assert_secured(response: httpx.Response) -> None:
    """The headers every response carries, errors included."""
    headers = response.headers
    assert "default-src 'self'" in headers.get("content-security-policy", ""), response
    assert headers.get("x-frame-options") == "DENY", response
    assert headers.get("x-content-type-options") == "nosniff", response
    assert headers.get("referrer-policy") == "same-origin", response
    assert headers.get("cache-control") == "no-store", response


# --- hostile form values and server errors -----------------------------------------------------


@pytest.mark.parametrize("token", ["đăng-nhập", "🔑" * 30])
def test_a_non_ascii_csrf_token_is_refused_not_a_server_error(client, token):
    client.get("/login")  # the login form's CSRF cookie
    page = client.post("/login", data={"username": "lead", "password": PASSWORD,
                                       "csrf_token": token})
    assert page.status_code == 403 and "Biểu mẫu đã hết hạn" in page.text
    assert "popsync_session" not in client.cookies
    assert_secured(page)
    assert login(client, "lead").status_code == 200
    out = client.post("/logout", data={"csrf_token": token}, headers=HTML)
    assert out.status_code == 403
    assert_secured(out)
    assert client.get("/audit", follow_redirects=False).status_code == 200  # still logged in


def test_a_server_error_is_a_plain_page_with_the_security_headers(tmp_path):
    db_url = store.default_db_url(tmp_path)
    engine = publish_nights(tmp_path, db_url, ["2026-11-20"], lists_of=set())
    # A run row written by hand, outside popsync, with a start time no reader can parse.
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO runs (run_date, started_at, status) "
                             "VALUES ('2026-11-21', 'not a time', 'running')"))
    with live_server(create_app(PortalSettings(db_url=db_url, data_dir=tmp_path))) as base:
        page = httpx.get(base + "/", headers=HTML, params={"lang": "en"})
        assert page.status_code == 500
        assert_secured(page)
        assert page.headers["content-type"].startswith("text/html")
        assert "Something went wrong on the server" in page.text
        assert "not a time" not in page.text and "Traceback" not in page.text
        api = httpx.get(base + "/api/rankings")
        assert api.status_code == 500 and api.json() == {"detail": "internal server error"}
        assert_secured(api)


# --- the publication database down -------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again on return: nothing listens there


@pytest.fixture(params=["sqlite-path-is-a-directory", "postgresql-port-closed"])
def unreachable_db_url(request, tmp_path) -> str:
    if request.param.startswith("sqlite"):
        (tmp_path / store.DB_FILE).mkdir()
        return store.default_db_url(tmp_path)
    return f"postgresql+psycopg://popsync@127.0.0.1:{_closed_port()}/popsync?connect_timeout=5"


def test_database_down_answers_503_with_a_clear_page_and_health_agrees(
        tmp_path, unreachable_db_url):
    app = create_app(PortalSettings(db_url=unreachable_db_url, data_dir=tmp_path))
    with live_server(app) as base, httpx.Client(base_url=base) as client:
        health = client.get("/api/health")
        assert health.status_code == 503
        assert health.json() == {"status": "error", "detail": "database unreachable"}
        pages = [
            client.get("/", headers=HTML),
            client.get("/", headers=HTML, params={"lang": "en"}),
            client.get("/provinces/79", headers=HTML, auth=("lead", PASSWORD)),
            client.get("/audit", headers={**HTML, "cookie": "popsync_session=a-session"}),
        ]
        form = client.get("/login", headers=HTML)  # needs no database
        assert form.status_code == 200
        token = form.text.split('name="csrf_token" value="')[1].split('"')[0]
        pages.append(client.post("/login", headers=HTML, data={
            "username": "lead", "password": PASSWORD, "csrf_token": token}))
        for page in pages:
            assert page.status_code == 503, page.request.url
            assert page.headers["content-type"].startswith("text/html")
            assert page.headers["retry-after"]
            assert_secured(page)
        assert "Cơ sở dữ liệu công bố tạm thời không truy cập được" in pages[0].text
        assert "The publication database cannot be reached" in pages[1].text
        for path, auth in (("/api/rankings", None), ("/api/provinces/79", ("lead", PASSWORD)),
                           ("/provinces/79/lists/unsynchronized.csv", ("office79", PASSWORD))):
            api = client.get(path, auth=auth)
            assert api.status_code == 503, path
            assert "database" in api.json()["detail"] and api.headers["retry-after"]
            assert_secured(api)


def test_the_portal_started_without_its_database_serves_once_it_is_back(tmp_path):
    db_url = store.default_db_url(tmp_path)
    publish_nights(tmp_path, db_url, ["2026-11-20"], lists_of=set()).dispose()
    database = tmp_path / store.DB_FILE
    database.rename(tmp_path / "away.db")
    database.mkdir()  # the database's path is not a database
    with live_server(create_app(PortalSettings(db_url=db_url, data_dir=tmp_path))) as base:
        assert httpx.get(base + "/api/health").status_code == 503
        assert httpx.get(base + "/", headers=HTML).status_code == 503
        database.rmdir()
        (tmp_path / "away.db").rename(database)
        health = httpx.get(base + "/api/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        page = httpx.get(base + "/", headers=HTML)
        assert page.status_code == 200 and "<strong>2026-11-20</strong>" in page.text


# --- a publication folder missing ---------------------------------------------------------------


@pytest.mark.parametrize("crash", ["folder-renamed-aside", "manifest-missing"])
def test_the_portal_serves_the_last_complete_publication(tmp_path, crash):
    db_url = store.default_db_url(tmp_path)
    publish_nights(tmp_path, db_url, ["2026-11-20"], lists_of={("63", "79")})
    engine = publish_nights(tmp_path, db_url, ["2026-11-21"], lists_of={("63", "79")})
    make_accounts(engine)
    latest = tmp_path / store.publication_path("2026-11-21")
    if crash == "folder-renamed-aside":
        # What a crash between publishing's two renames leaves: the date's folder moved aside,
        # the new one not yet in its place, the database still naming the folder.
        latest.rename(latest.with_name(".replaced-2026-11-21-r2"))
    else:
        (latest / "manifest.json").unlink()
    with live_server(create_app(PortalSettings(db_url=db_url, data_dir=tmp_path))) as base:
        health = httpx.get(base + "/api/health")
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "degraded" and body["latest_publication"] == "2026-11-20"
        assert body["incomplete_publications"] == ["2026-11-21"]
        assert "2026-11-21" in body["detail"]
        page = httpx.get(base + "/", params={"lang": "en"}).text
        assert "<strong>2026-11-20</strong>" in page
        assert 'id="state-incomplete"' in page and "2026-11-21" in page
        rankings = httpx.get(base + "/api/rankings").json()
        assert rankings["run_date"] == "2026-11-20"
        assert [p["run_date"] for p in rankings["national_trend"]] == ["2026-11-20"]
        detail = httpx.get(base + "/api/provinces/79", auth=("office79", PASSWORD)).json()
        assert detail["run_date"] == "2026-11-20"
        assert [p["run_date"] for p in detail["trend"]] == ["2026-11-20"]
        assert set(detail["lists"]) == {"xlsx", "csv"}
        csv = httpx.get(base + "/provinces/79/lists/unsynchronized.csv",
                        auth=("office79", PASSWORD))
        assert csv.status_code == 200
        assert "2026-11-20" in csv.headers["content-disposition"]
